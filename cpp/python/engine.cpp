// layerbraid._core.Engine: the MGRIT engine driven by a Python app.
//
// Conversion only. A braid_Vector is a box around one Python object (the user's state); the
// trampolines below turn engine callbacks into calls of the app's methods. The GIL is released
// while the engine runs its own C code and taken back inside each callback. An exception in a
// callback is kept, the engine stops (telling the other ranks), and drive() raises it again.
//
// Optional callbacks (set after construction, before the first drive): set_time_grid takes a
// Python function (ilower, iupper) -> the times of fine points ilower..iupper (braid_SetTimeGrid),
// set_residual uses the app's residual(ustop, r, status) (braid_SetResidual); from then on the
// app's step is called with the FAS right-hand side as the keyword fstop (None where zero);
// set_spatial uses the app's coarsen(fu, status) and refine(cu, status) between time levels
// (braid_SetSpatialCoarsen / braid_SetSpatialRefine); set_full_residual computes the full
// residual norm over every fine point with that same residual method (braid_SetFullRNormRes).
//
// The adjoint (set_adjoint, braid_InitAdjoint): drive() then runs the piggy-back iteration
// and calls the app's objective(u, status) -> float, objective_diff(u, u_bar, f_bar, status),
// step_diff(ustop, u, ustop_bar, u_bar, status) and reset_gradient(); objective_diff and
// step_diff change u_bar in place or return its new value, as step does with u.
// set_postprocess adds postprocess_objective(J) and postprocess_objective_diff(J).
//
// Delta correction (set_delta, braid_SetDeltaCorrection) uses the app's init_basis(t, index)
// and inner_prod(u, v); step and access then see the basis vectors as status.basis, a
// sequence of the engine's own states (read them, change them in place, or assign
// status.basis[k] = new_state).
//
// Temporal refinement and Richardson extrapolation are engine options (set_refine, ...,
// set_richardson); the step status lets step ask for its interval to be refined
// (set_rfactor, set_refinement_dt: the values are checked here, a bad one raises in step like
// any callback's exception) and shows nrefine, ntpoints and the Richardson error estimate.
//
// Interrupts: this file owns the process-wide interrupt flag (interrupt.hpp). Every trampoline
// but free checks it on entry, and so does the poll hook after running Python's signal
// handlers: when it is set, the callback raises Interrupted, which ends the solve like any
// callback's exception (Interrupted here, RemoteRankError on the other ranks).
#include "engine.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "interrupt.hpp"

extern "C" {
#include "_braid.h"
#include "braid.h"
#include "braid_layerbraid.h"
}

namespace py = pybind11;

struct _braid_Vector_struct {
  py::object state;
};

namespace layerbraid {
namespace {

// Python views of the engine's status objects. One instance of each lives as long as the
// Engine and is handed to every callback: read it inside the callback, do not keep it.
struct StepStatus {
  braid_StepStatus s = nullptr;
};
struct AccessStatus {
  braid_AccessStatus s = nullptr;
};
struct BufferStatus {
  braid_BufferStatus s = nullptr;
};
struct CoarsenRefStatus {
  braid_CoarsenRefStatus s = nullptr;
};
struct ObjectiveStatus {
  braid_ObjectiveStatus s = nullptr;
};

// Points a Python status view at the engine's status for the length of one callback, and
// clears it again however the callback ends (a view kept past its callback must not dangle).
template <typename View, typename Raw>
class StatusScope {
 public:
  StatusScope(View *view, Raw raw) : view_(view) { view_->s = raw; }
  ~StatusScope() { view_->s = nullptr; }
  StatusScope(const StatusScope &) = delete;
  StatusScope &operator=(const StatusScope &) = delete;

 private:
  View *view_;
};

// The basis vectors step or access sees (Delta correction): the engine's own states. Reads
// and writes go through the status, so they fail once the callback has returned.
struct Basis {
  std::function<braid_Status()> status;  // the callback's status; throws outside of it

  braid_Vector vector(py::ssize_t k) const {
    braid_Status s = status();
    braid_Int rank = 0;
    braid_StatusGetDeltaRank(s, &rank);
    if (k < 0) k += rank;  // Python's negative indices
    braid_Vector v = nullptr;
    if (k >= 0 && k < rank) braid_StatusGetBasisVec(s, &v, static_cast<braid_Int>(k));
    if (v == nullptr) {
      throw py::index_error("basis index " + std::to_string(k) + " out of range (" +
                            std::to_string(rank) + " basis vectors)");
    }
    return v;
  }
  py::ssize_t size() const {
    braid_Int rank = 0;
    braid_StatusGetDeltaRank(status(), &rank);
    return rank;
  }
};

template <typename T, typename Status, typename Getter>
T get(Status s, Getter getter) {
  T value{};
  if (s == nullptr) throw std::runtime_error("status used outside of its callback");
  getter(s, &value);
  return value;
}

// A Richardson error estimate, None where the engine has none (it reports -1).
template <typename Status, typename Getter>
std::optional<double> estimate(Status s, Getter getter) {
  const double value = get<double>(s, getter);
  if (value < 0.0) return std::nullopt;
  return value;
}

std::string text_of(const py::handle &value) { return py::repr(value).cast<std::string>(); }
std::string text_of(double value) { return text_of(py::float_(value)); }

// An int in [lo, INT_MAX] from a Python int (or anything with __index__, but not a bool):
// TypeError for another type, ValueError naming the value when it is out of range.
int int_arg(const char *name, const py::handle &value, long lo) {
  if (PyBool_Check(value.ptr()) || !PyIndex_Check(value.ptr())) {
    throw py::type_error(std::string(name) + " must be an int, got " +
                         Py_TYPE(value.ptr())->tp_name + " " + text_of(value));
  }
  const py::int_ index = py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
  if (!index) throw py::error_already_set();
  const py::int_ low(lo), high(std::numeric_limits<int>::max());
  if (index < low || index > high) {
    throw py::value_error(std::string(name) + "=" + text_of(index) + " is out of range; it must "
                          "be in [" + std::to_string(lo) + ", " +
                          std::to_string(std::numeric_limits<int>::max()) + "]");
  }
  return index.cast<int>();
}

// step's request for its interval to be refined into rfactor steps (braid_SetRefine).
void set_rfactor(braid_StepStatus s, const py::handle &rfactor) {
  if (s == nullptr) throw std::runtime_error("status used outside of its callback");
  const int r = int_arg("rfactor", rfactor, 1);
  if (braid_StepStatusSetRFactor(s, static_cast<double>(r)) != 0) {
    throw py::value_error("rfactor=" + std::to_string(r) + " was refused by the engine");
  }
}

// step's request for its interval to be refined at the given step sizes: the first
// rfactor - 1 of them, each finite and > 0, together shorter than the interval (the last
// step is what remains). rfactor, if given, must be len(dts) + 1.
void set_refinement_dt(braid_StepStatus s, const py::handle &dts, const py::handle &rfactor) {
  if (s == nullptr) throw std::runtime_error("status used outside of its callback");
  const char *what = "set_refinement_dt(dts)";
  py::object np = py::module_::import("numpy");
  py::array values;
  try {
    values = np.attr("asarray")(dts);
  } catch (py::error_already_set &e) {  // e.g. a CuPy array: implicit conversion is refused
    throw py::type_error(std::string(what) + ": dts must be a NumPy array or a sequence of "
                         "floats, got " + Py_TYPE(dts.ptr())->tp_name + " (" + e.what() + ")");
  }
  const char kind = values.dtype().kind();
  if (kind != 'i' && kind != 'u' && kind != 'f') {
    throw py::type_error(std::string(what) + ": dts must hold real numbers, got dtype " +
                         text_of(values.dtype()) + " (" + Py_TYPE(dts.ptr())->tp_name + ")");
  }
  if (values.ndim() != 1) {
    throw py::value_error(std::string(what) + ": dts must be 1-D, got shape " +
                          text_of(values.attr("shape")));
  }
  using Reals = py::array_t<double, py::array::c_style | py::array::forcecast>;
  Reals dt = Reals::ensure(values);
  if (!dt) throw py::error_already_set();
  const py::ssize_t n = dt.shape(0);
  if (n < 1) {
    throw py::value_error(std::string(what) + ": dts is empty; it holds the first rfactor - 1 "
                          "step sizes of the refined interval, so rfactor >= 2 needs at least "
                          "one (ask for no refinement with set_rfactor(1))");
  }
  if (n + 1 > std::numeric_limits<int>::max()) {
    throw py::value_error(std::string(what) + ": " + std::to_string(n) + " step sizes are too "
                          "many (rfactor = len(dts) + 1 must be a C int)");
  }
  if (!rfactor.is_none()) {
    const int r = int_arg("rfactor", rfactor, 2);
    if (r != n + 1) {
      throw py::value_error(std::string(what) + ": got " + std::to_string(n) + " step sizes "
                            "for rfactor=" + std::to_string(r) + "; it takes the first "
                            "rfactor - 1 = " + std::to_string(r - 1) + " (the last step is what "
                            "remains of the interval)");
    }
  }
  double tstart = 0.0, tstop = 0.0;
  braid_StepStatusGetTstartTstop(s, &tstart, &tstop);
  const double length = std::fabs(tstop - tstart);
  const double *d = dt.data();
  double sum = 0.0;
  for (py::ssize_t k = 0; k < n; k++) {
    if (!(d[k] > 0.0) || !std::isfinite(d[k])) {
      throw py::value_error(std::string(what) + ": step size " + std::to_string(k) + " is " +
                            text_of(d[k]) + "; every step size must be finite and "
                            "> 0");
    }
    sum += d[k];  // in order, as the engine adds them
  }
  if (!(sum < length)) {
    throw py::value_error(std::string(what) + ": the " + std::to_string(n) + " step sizes add "
                          "up to " + text_of(sum) + ", not less than the length " +
                          text_of(length) + " of the interval [" +
                          text_of(tstart) + ", " + text_of(tstop) +
                          "]; they are the first rfactor - 1 steps, the last step is what "
                          "remains");
  }
  if (braid_StatusSetRefinementDtValues(reinterpret_cast<braid_Status>(s),
                                        static_cast<double>(n + 1),
                                        const_cast<double *>(d)) != 0) {
    throw py::value_error(std::string(what) + " was refused by the engine");
  }
}

py::object g_remote_error;      // layerbraid RemoteRankError
py::object g_divergence_error;  // layerbraid DivergenceError
py::object g_interrupted;       // layerbraid._core.Interrupted (a KeyboardInterrupt)

// The process-wide interrupt request (interrupt.hpp): a signal number, 0 for none.
std::atomic<int> g_interrupt{0};

int interrupt_requested() { return g_interrupt.load(std::memory_order_relaxed); }
void request_interrupt(int signum) { g_interrupt.store(signum, std::memory_order_relaxed); }

const InterruptApi g_interrupt_api{interrupt_api_version, interrupt_requested,
                                   request_interrupt};

// Interrupted, when the flag is set (the GIL held).
void raise_if_interrupted() {
  const int signum = interrupt_requested();
  if (signum == 0) return;
  const std::string text = "interrupted by signal " + std::to_string(signum);
  PyErr_SetString(g_interrupted.ptr(), text.c_str());
  throw py::error_already_set();
}

}  // namespace

class Engine {
 public:
  Engine(py::object app, long comm_f, double tstart, double tstop, int ntime)
      : app_(std::move(app)) {
    f_init_ = method("init");
    f_step_ = method("step");
    f_clone_ = method("clone");
    f_sum_ = method("sum");
    f_norm_ = method("norm");
    f_access_ = method("access");
    f_bufsize_ = method("bufsize");
    f_pack_ = method("pack");
    f_unpack_ = method("unpack");
    step_status_ = py::cast(StepStatus{});
    access_status_ = py::cast(AccessStatus{});
    buffer_status_ = py::cast(BufferStatus{});
    coarsen_status_ = py::cast(CoarsenRefStatus{});
    objective_status_ = py::cast(ObjectiveStatus{});
    step_status_ptr_ = step_status_.cast<StepStatus *>();
    access_status_ptr_ = access_status_.cast<AccessStatus *>();
    buffer_status_ptr_ = buffer_status_.cast<BufferStatus *>();
    coarsen_status_ptr_ = coarsen_status_.cast<CoarsenRefStatus *>();
    objective_status_ptr_ = objective_status_.cast<ObjectiveStatus *>();

    MPI_Comm comm = MPI_Comm_f2c(static_cast<MPI_Fint>(comm_f));
    int err = braid_Init(comm, comm, tstart, tstop, ntime, reinterpret_cast<braid_App>(this),
                         step_cb, init_cb, clone_cb, free_cb, sum_cb, norm_cb, access_cb,
                         bufsize_cb, pack_cb, unpack_cb, &core_);
    if (err != 0 || core_ == nullptr) {
      throw py::value_error("braid_Init refused the problem (tstart=" + std::to_string(tstart) +
                            ", tstop=" + std::to_string(tstop) +
                            ", ntime=" + std::to_string(ntime) + "); see the message above");
    }
    layerbraid_SetQuietFailures(core_, 1);
    layerbraid_SetPollHook(core_, poll_cb, this);
  }

  Engine(const Engine &) = delete;
  Engine &operator=(const Engine &) = delete;
  ~Engine() { close(); }

  void close() {
    if (core_ != nullptr) {
      braid_Destroy(core_);  // frees every stored state (free_cb needs the GIL: we hold it)
      core_ = nullptr;
    }
  }

  braid_Core core() const {
    if (core_ == nullptr) throw std::runtime_error("the solver is closed");
    return core_;
  }

  // Run braid_Drive without the GIL; turn a failure into the right Python exception.
  void drive() {
    braid_Core c = core();
    int err;
    {
      py::gil_scoped_release release;
      err = braid_Drive(c);
    }
    if (err == 0) return;
    if (error_) {
      py::error_already_set e = std::move(*error_);
      error_.reset();
      throw e;  // the callback's own exception, traceback included
    }
    braid_Int rank = -1;
    std::string text(layerbraid_FAILURE_TEXT_MAX, '\0');
    layerbraid_GetFailure(c, &rank, text.data(), static_cast<braid_Int>(text.size()));
    text.resize(text.find('\0'));
    if (err == layerbraid_ERROR_REMOTE) {
      PyErr_SetString(g_remote_error.ptr(),
                      ("stopped because another rank failed: " + text).c_str());
      throw py::error_already_set();
    }
    std::vector<double> history = rnorms();
    if (!history.empty() && !std::isfinite(history.back())) {
      PyErr_SetString(g_divergence_error.ptr(),
                      ("MGRIT diverged: the residual norm is " + std::to_string(history.back()) +
                       " at iteration " + std::to_string(history.size() - 1))
                          .c_str());
      throw py::error_already_set();
    }
    if (err == braid_ERROR_MEMORY) {  // the engine's storage did not fit on this rank
      PyErr_SetString(PyExc_MemoryError, text.c_str());  // "rank R: out of memory: ..."
      throw py::error_already_set();
    }
    throw std::runtime_error("braid_Drive failed with code " + std::to_string(err) +
                             (text.empty() ? std::string() : ": " + text));
  }

  // Use the app's residual method (braid_SetResidual); step then gets fstop.
  void set_residual() {
    f_residual_ = method("residual");
    int err = braid_SetResidual(core(), residual_cb);
    if (err != 0) throw py::value_error("set_residual was refused by the engine");
    has_residual_ = true;
  }

  // Also compute the residual norm over every fine point with the app's residual, which
  // then decides halting (braid_SetFullRNormRes); needs set_residual first.
  void set_full_residual() {
    if (!has_residual_) {
      throw std::runtime_error("set_full_residual needs the app's residual (set_residual)");
    }
    int err = braid_SetFullRNormRes(core(), residual_cb);
    if (err != 0) throw py::value_error("set_full_residual was refused by the engine");
  }

  // Use the app's coarsen and refine methods between time levels.
  void set_spatial() {
    f_coarsen_ = method("coarsen");
    f_refine_ = method("refine");
    int err = braid_SetSpatialCoarsen(core(), scoarsen_cb);
    if (err == 0) err = braid_SetSpatialRefine(core(), srefine_cb);
    if (err != 0) throw py::value_error("set_spatial was refused by the engine");
  }

  // times(ilower, iupper) -> the times of fine points ilower..iupper (braid_SetTimeGrid).
  void set_time_grid(py::function times) {
    int err = braid_SetTimeGrid(core(), tgrid_cb);
    if (err != 0) throw py::value_error("set_time_grid was refused by the engine");
    f_time_grid_ = std::move(times);
  }

  // The piggy-back adjoint iteration (braid_InitAdjoint): the app's objective, objective_diff,
  // step_diff and reset_gradient (braid.py checks they exist).
  void set_adjoint() {
    f_objective_ = method("objective");
    f_objective_diff_ = method("objective_diff");
    f_step_diff_ = method("step_diff");
    f_reset_gradient_ = method("reset_gradient");
    core();  // a closed solver raises here, before braid_InitAdjoint could see a NULL core
    int err = braid_InitAdjoint(objective_cb, objective_diff_cb, step_diff_cb,
                                reset_gradient_cb, &core_);
    if (err != 0) throw py::value_error("set_adjoint was refused by the engine");
  }

  // J = postprocess_objective(sum of the objective terms), F_bar its derivative
  // (braid_SetPostprocessObjective and _diff); needs set_adjoint first.
  void set_postprocess() {
    f_postprocess_ = method("postprocess_objective");
    f_postprocess_diff_ = method("postprocess_objective_diff");
    int err = braid_SetPostprocessObjective(core(), postprocess_cb);
    if (err == 0) err = braid_SetPostprocessObjective_diff(core(), postprocess_diff_cb);
    if (err != 0) throw py::value_error("set_postprocess was refused by the engine");
  }

  // Delta correction of the given rank with the app's init_basis and inner_prod.
  void set_delta(int rank) {
    f_init_basis_ = method("init_basis");
    f_inner_prod_ = method("inner_prod");
    int err = braid_SetDeltaCorrection(core(), rank, init_basis_cb, inner_prod_cb);
    if (err != 0) throw py::value_error("set_delta was refused by the engine");
  }

  double objective() const {
    double value = 0.0;
    if (braid_GetObjective(core(), &value) != 0) {
      throw std::runtime_error("the objective is only there in adjoint mode (set_adjoint)");
    }
    return value;
  }

  // The adjoint residual norm of every iteration (braid_GetRNorms' convention and layout).
  std::vector<double> rnorms_adjoint() const {
    braid_Int n = 0;
    braid_GetNumIter(core(), &n);
    std::vector<double> out(static_cast<size_t>(n) + 1);
    braid_Int count = static_cast<braid_Int>(out.size());
    if (layerbraid_GetRNormsAdjoint(core(), &count, out.data()) != 0) {
      throw std::runtime_error("the adjoint residuals are only there in adjoint mode");
    }
    out.resize(static_cast<size_t>(count));
    return out;
  }

  // dJ/du_0 after the last drive on the rank that owns point 0; None on the others.
  py::object initial_adjoint() {
    braid_Vector ubar = nullptr;
    if (layerbraid_GetInitialAdjoint(core(), &ubar) != 0) {
      if (error_) {  // the app's clone raised
        py::error_already_set e = std::move(*error_);
        error_.reset();
        throw e;
      }
      throw std::runtime_error("no initial adjoint: it needs a completed adjoint drive "
                               "without objective_only");
    }
    if (ubar == nullptr) return py::none();
    py::object state = std::move(ubar->state);
    delete ubar;
    return state;
  }

  std::vector<double> rnorms() const {
    braid_Int n = 0;
    braid_GetNumIter(core(), &n);
    std::vector<double> out(static_cast<size_t>(n) + 1);
    braid_Int count = static_cast<braid_Int>(out.size());
    braid_GetRNorms(core(), &count, out.data());
    out.resize(static_cast<size_t>(count));
    return out;
  }

 private:
  py::object method(const char *name) {
    if (!py::hasattr(app_, name)) {
      throw py::type_error(std::string("the app has no '") + name +
                           "' method; derive it from layerbraid.App or implement the "
                           "layerbraid.AppProtocol methods");
    }
    return app_.attr(name);
  }

  static Engine *self(braid_App app) { return reinterpret_cast<Engine *>(app); }

  // Keep the exception of a failed callback and describe it to the other ranks.
  int fail(py::error_already_set &&e) {
    if (core_ != nullptr) {
      std::string what = e.what();
      layerbraid_SetFailureText(core_, what.c_str());
    }
    if (!error_) error_.emplace(std::move(e));
    return 1;
  }

  // Every trampoline: take the GIL, stop if an interrupt was requested (unless told not to),
  // call, keep any Python exception.
  template <typename F>
  static braid_Int guarded(braid_App app, F &&body, bool interruptible = true) {
    Engine *engine = self(app);
    py::gil_scoped_acquire gil;
    try {
      if (interruptible) raise_if_interrupted();
      body(engine);
      return 0;
    } catch (py::error_already_set &e) {
      return engine->fail(std::move(e));
    } catch (py::builtin_exception &e) {  // py::type_error, py::value_error, ...: their type
      e.set_error();
      return engine->fail(py::error_already_set());
    } catch (const std::exception &e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
      return engine->fail(py::error_already_set());
    }
  }

  static braid_Vector box(py::object state, const char *callback) {
    if (state.is_none()) {
      throw py::type_error(std::string("the app's ") + callback + " returned None; it must "
                           "return a state");
    }
    return new _braid_Vector_struct{std::move(state)};
  }

  static braid_Int init_cb(braid_App app, braid_Real t, braid_Vector *u_ptr) {
    return guarded(app, [&](Engine *e) { *u_ptr = box(e->f_init_(t), "init"); });
  }

  // With a residual (set_residual) the engine passes the FAS right-hand side, NULL where it
  // is zero; the app's step then gets it as the keyword fstop (None for NULL). Apps without
  // a residual are called as before, with three arguments.
  static braid_Int step_cb(braid_App app, braid_Vector ustop, braid_Vector fstop, braid_Vector u,
                           braid_StepStatus status) {
    return guarded(app, [&](Engine *e) {
      StatusScope<StepStatus, braid_StepStatus> scope(e->step_status_ptr_, status);
      py::object out;
      if (e->has_residual_) {
        py::object f = fstop != nullptr ? fstop->state : py::none();
        out = e->f_step_(u->state, ustop->state, e->step_status_, py::arg("fstop") = f);
      } else {
        out = e->f_step_(u->state, ustop->state, e->step_status_);
      }
      if (!out.is_none()) u->state = std::move(out);
    });
  }

  // r holds u(tstart) on entry; the app turns it into its residual A(ustop, r) at tstop, in
  // place or by returning the new state.
  static braid_Int residual_cb(braid_App app, braid_Vector ustop, braid_Vector r,
                               braid_StepStatus status) {
    return guarded(app, [&](Engine *e) {
      StatusScope<StepStatus, braid_StepStatus> scope(e->step_status_ptr_, status);
      py::object out = e->f_residual_(ustop->state, r->state, e->step_status_);
      if (!out.is_none()) r->state = std::move(out);
    });
  }

  // A state moved to the next coarser time level (coarsen) or back (refine): a new state,
  // never the argument itself (the engine owns and changes both).
  static braid_Vector box_new(py::object state, const py::object &from, const char *callback) {
    if (state.is(from)) {
      throw py::type_error(std::string("the app's ") + callback + " returned its argument; it "
                           "must return a new state (a copy where the grids are the same)");
    }
    return box(std::move(state), callback);
  }

  static braid_Int scoarsen_cb(braid_App app, braid_Vector fu, braid_Vector *cu_ptr,
                               braid_CoarsenRefStatus status) {
    return guarded(app, [&](Engine *e) {
      StatusScope<CoarsenRefStatus, braid_CoarsenRefStatus> scope(e->coarsen_status_ptr_,
                                                                  status);
      *cu_ptr = box_new(e->f_coarsen_(fu->state, e->coarsen_status_), fu->state, "coarsen");
    });
  }

  static braid_Int srefine_cb(braid_App app, braid_Vector cu, braid_Vector *fu_ptr,
                              braid_CoarsenRefStatus status) {
    return guarded(app, [&](Engine *e) {
      StatusScope<CoarsenRefStatus, braid_CoarsenRefStatus> scope(e->coarsen_status_ptr_,
                                                                  status);
      *fu_ptr = box_new(e->f_refine_(cu->state, e->coarsen_status_), cu->state, "refine");
    });
  }

  // The fine time points ilower..iupper from the Python function set_time_grid was given
  // (braid.py checks the values; here only their number and type).
  static braid_Int tgrid_cb(braid_App app, braid_Real *ta, braid_Int *ilower,
                            braid_Int *iupper) {
    return guarded(app, [&](Engine *e) {
      const long lo = *ilower, hi = *iupper;
      using Times = py::array_t<double, py::array::c_style | py::array::forcecast>;
      Times times = Times::ensure(e->f_time_grid_(lo, hi));
      if (!times) throw py::error_already_set();
      const py::ssize_t want = static_cast<py::ssize_t>(hi - lo + 1);
      if (times.ndim() != 1 || times.shape(0) != want) {
        throw py::value_error("the time grid gave " + std::to_string(times.size()) +
                              " values for the fine points " + std::to_string(lo) + ".." +
                              std::to_string(hi) + "; it must give " + std::to_string(want));
      }
      std::copy(times.data(), times.data() + want, ta);
    });
  }

  // ---- the adjoint's callbacks (set_adjoint, set_postprocess) ----

  static braid_Int objective_cb(braid_App app, braid_Vector u, braid_ObjectiveStatus status,
                                braid_Real *value_ptr) {
    return guarded(app, [&](Engine *e) {
      StatusScope<ObjectiveStatus, braid_ObjectiveStatus> scope(e->objective_status_ptr_,
                                                                status);
      *value_ptr = e->f_objective_(u->state, e->objective_status_).cast<double>();
    });
  }

  // u_bar arrives zeroed; it becomes f_bar times d objective / du.
  static braid_Int objective_diff_cb(braid_App app, braid_Vector u, braid_Vector u_bar,
                                     braid_Real f_bar, braid_ObjectiveStatus status) {
    return guarded(app, [&](Engine *e) {
      StatusScope<ObjectiveStatus, braid_ObjectiveStatus> scope(e->objective_status_ptr_,
                                                                status);
      py::object out = e->f_objective_diff_(u->state, u_bar->state, f_bar,
                                            e->objective_status_);
      if (!out.is_none()) u_bar->state = std::move(out);
    });
  }

  // u_bar holds the adjoint of the step's result on entry and must hold that of its input.
  static braid_Int step_diff_cb(braid_App app, braid_Vector ustop, braid_Vector u,
                                braid_Vector ustop_bar, braid_Vector u_bar,
                                braid_StepStatus status) {
    return guarded(app, [&](Engine *e) {
      StatusScope<StepStatus, braid_StepStatus> scope(e->step_status_ptr_, status);
      py::object out = e->f_step_diff_(ustop->state, u->state, ustop_bar->state, u_bar->state,
                                       e->step_status_);
      if (!out.is_none()) u_bar->state = std::move(out);
    });
  }

  static braid_Int reset_gradient_cb(braid_App app) {
    return guarded(app, [&](Engine *e) { e->f_reset_gradient_(); });
  }

  static braid_Int postprocess_cb(braid_App app, braid_Real sum, braid_Real *value_ptr) {
    return guarded(app, [&](Engine *e) { *value_ptr = e->f_postprocess_(sum).cast<double>(); });
  }

  static braid_Int postprocess_diff_cb(braid_App app, braid_Real sum, braid_Real *f_bar_ptr) {
    return guarded(app, [&](Engine *e) {
      *f_bar_ptr = e->f_postprocess_diff_(sum).cast<double>();
    });
  }

  // ---- Delta correction's callbacks (set_delta) ----

  static braid_Int init_basis_cb(braid_App app, braid_Real t, braid_Int index,
                                 braid_Vector *u_ptr) {
    return guarded(app, [&](Engine *e) {
      *u_ptr = box(e->f_init_basis_(t, index), "init_basis");
    });
  }

  static braid_Int inner_prod_cb(braid_App app, braid_Vector u, braid_Vector v,
                                 braid_Real *prod_ptr) {
    return guarded(app, [&](Engine *e) {
      *prod_ptr = e->f_inner_prod_(u->state, v->state).cast<double>();
    });
  }

  static braid_Int clone_cb(braid_App app, braid_Vector u, braid_Vector *v_ptr) {
    return guarded(app, [&](Engine *e) { *v_ptr = box(e->f_clone_(u->state), "clone"); });
  }

  // Never interrupted: the engine frees its states after a failure too.
  static braid_Int free_cb(braid_App app, braid_Vector u) {
    return guarded(app, [&](Engine *) { delete u; }, false);
  }

  static braid_Int sum_cb(braid_App app, braid_Real alpha, braid_Vector x, braid_Real beta,
                          braid_Vector y) {
    return guarded(app, [&](Engine *e) {
      py::object out = e->f_sum_(alpha, x->state, beta, y->state);
      if (!out.is_none()) y->state = std::move(out);
    });
  }

  static braid_Int norm_cb(braid_App app, braid_Vector u, braid_Real *norm_ptr) {
    return guarded(app, [&](Engine *e) { *norm_ptr = e->f_norm_(u->state).cast<double>(); });
  }

  static braid_Int access_cb(braid_App app, braid_Vector u, braid_AccessStatus status) {
    return guarded(app, [&](Engine *e) {
      StatusScope<AccessStatus, braid_AccessStatus> scope(e->access_status_ptr_, status);
      e->f_access_(u->state, e->access_status_);
    });
  }

  static braid_Int bufsize_cb(braid_App app, braid_Int *size_ptr, braid_BufferStatus status) {
    return guarded(app, [&](Engine *e) {
      long size;
      {
        StatusScope<BufferStatus, braid_BufferStatus> scope(e->buffer_status_ptr_, status);
        size = e->f_bufsize_(e->buffer_status_).cast<long>();
      }
      if (size < 0) throw py::value_error("bufsize returned " + std::to_string(size) +
                                          " bytes; it must be >= 0");
      *size_ptr = static_cast<braid_Int>(size);
      if (size > e->buffer_bytes_) e->buffer_bytes_ = size;
    });
  }

  static braid_Int pack_cb(braid_App app, braid_Vector u, void *buffer,
                           braid_BufferStatus status) {
    return guarded(app, [&](Engine *e) {
      py::object written;
      {
        StatusScope<BufferStatus, braid_BufferStatus> scope(e->buffer_status_ptr_, status);
        written = e->f_pack_(u->state, e->view(buffer), e->buffer_status_);
      }
      if (!written.is_none()) braid_BufferStatusSetSize(status, written.cast<double>());
    });
  }

  static braid_Int unpack_cb(braid_App app, void *buffer, braid_Vector *u_ptr,
                             braid_BufferStatus status) {
    return guarded(app, [&](Engine *e) {
      py::object state;
      {
        StatusScope<BufferStatus, braid_BufferStatus> scope(e->buffer_status_ptr_, status);
        state = e->f_unpack_(e->view(buffer), e->buffer_status_);
      }
      *u_ptr = box(std::move(state), "unpack");
    });
  }

  // Called by the engine while it waits for other ranks: lets Ctrl-C through (Python's
  // signal handlers run here; one that raises, or sets the interrupt flag, stops the solve).
  static braid_Int poll_cb(void *data) {
    return guarded(reinterpret_cast<braid_App>(data), [](Engine *) {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      raise_if_interrupted();
    });
  }

  py::memoryview view(void *buffer) const {
    return py::memoryview::from_memory(buffer, static_cast<py::ssize_t>(buffer_bytes_));
  }

  py::object app_;
  py::object f_init_, f_step_, f_clone_, f_sum_, f_norm_, f_access_, f_bufsize_, f_pack_,
      f_unpack_;
  py::object f_residual_, f_time_grid_, f_coarsen_, f_refine_;  // optional callbacks
  py::object f_objective_, f_objective_diff_, f_step_diff_, f_reset_gradient_, f_postprocess_,
      f_postprocess_diff_;  // the adjoint's (set_adjoint, set_postprocess)
  py::object f_init_basis_, f_inner_prod_;  // Delta correction's (set_delta)
  bool has_residual_ = false;
  py::object step_status_, access_status_, buffer_status_, coarsen_status_, objective_status_;
  StepStatus *step_status_ptr_ = nullptr;
  AccessStatus *access_status_ptr_ = nullptr;
  BufferStatus *buffer_status_ptr_ = nullptr;
  CoarsenRefStatus *coarsen_status_ptr_ = nullptr;
  ObjectiveStatus *objective_status_ptr_ = nullptr;
  long buffer_bytes_ = 0;
  std::optional<py::error_already_set> error_;
  braid_Core core_ = nullptr;
};

// Option setters: each forwards to one braid_Set* call and raises ValueError if the engine
// refuses the value (Python validates first, so this is a second line of defence).
namespace {

void check(int err, const char *what) {
  if (err != 0) throw py::value_error(std::string(what) + " was refused by the engine");
}

template <typename... Args>
void bind_setter(py::class_<Engine> &cls, const char *name, int (*fn)(braid_Core, Args...)) {
  cls.def(name, [fn, name](Engine &e, Args... args) { check(fn(e.core(), args...), name); });
}

}  // namespace

// status.basis of a step or access status view.
template <typename View>
Basis basis_of(const py::object &view) {
  View *raw = view.cast<View *>();
  // the lambda keeps the view alive, so raw stays valid; raw->s is cleared after the callback
  return Basis{[view, raw]() {
    if (raw->s == nullptr) throw std::runtime_error("status used outside of its callback");
    return reinterpret_cast<braid_Status>(raw->s);
  }};
}

void bind_engine(py::module_ &m) {
  py::class_<Basis>(m, "Basis",
                    "The basis vectors of Delta correction a step or access sees: the "
                    "engine's own states (change them in place, or assign basis[k] = state). "
                    "Valid only inside the callback.")
      .def("__len__", &Basis::size)
      .def("__getitem__", [](const Basis &b, py::ssize_t k) { return b.vector(k)->state; })
      .def("__setitem__", [](const Basis &b, py::ssize_t k, py::object state) {
        if (state.is_none()) throw py::type_error("a basis vector cannot be None");
        b.vector(k)->state = std::move(state);
      });

  py::class_<StepStatus>(m, "StepStatus",
                         "Where a step happens; valid only inside the step callback.")
      .def_property_readonly("tstart", [](const StepStatus &st) {
        double a = 0, b = 0;
        if (st.s == nullptr) throw std::runtime_error("status used outside of its callback");
        braid_StepStatusGetTstartTstop(st.s, &a, &b);
        return a;
      })
      .def_property_readonly("tstop", [](const StepStatus &st) {
        return get<double>(st.s, braid_StepStatusGetTstop);
      })
      .def_property_readonly("level", [](const StepStatus &st) {
        return get<int>(st.s, braid_StepStatusGetLevel);
      })
      .def_property_readonly("nlevels", [](const StepStatus &st) {
        return get<int>(st.s, braid_StepStatusGetNLevels);
      })
      .def_property_readonly("iteration", [](const StepStatus &st) {
        return get<int>(st.s, braid_StepStatusGetIter);
      })
      .def_property_readonly("tindex", [](const StepStatus &st) {
        return get<int>(st.s, braid_StepStatusGetTIndex);
      })
      .def_property_readonly("calling_function", [](const StepStatus &st) {
        return get<int>(st.s, braid_StepStatusGetCallingFunction);
      })
      .def_property_readonly("nrefine", [](const StepStatus &st) {
        return get<int>(st.s, braid_StepStatusGetNRefine);
      }, "Temporal refinements done so far.")
      .def_property_readonly("ntpoints", [](const StepStatus &st) {
        return get<int>(st.s, braid_StepStatusGetNTPoints);
      }, "The fine grid's number of time steps now (its points are 0..ntpoints).")
      .def_property_readonly("error_estimate", [](const StepStatus &st) {
        return estimate(st.s, braid_StepStatusGetSingleErrorEstStep);
      }, "The Richardson estimate of the local error at tstop (fine grid only), or None.")
      .def_property_readonly("delta_rank", [](const StepStatus &st) {
        return get<int>(st.s, braid_StepStatusGetDeltaRank);
      }, "How many basis vectors this step propagates (Delta correction; 0 for none).")
      .def_property_readonly("basis", [](const py::object &self) {
        return basis_of<StepStatus>(self);
      }, "The basis vectors this step must propagate with its linearisation, in place "
         "(Delta correction; empty when there are none).")
      .def("set_rfactor", [](const StepStatus &st, const py::object &rfactor) {
        set_rfactor(st.s, rfactor);
      }, py::arg("rfactor"),
           "Ask for this interval to be split into rfactor equal steps (an int >= 1; 1 = no "
           "refinement). Acted on with refine=True, for fine-grid steps.")
      .def("set_refinement_dt", [](const StepStatus &st, const py::object &dts,
                                   const py::object &rfactor) {
        set_refinement_dt(st.s, dts, rfactor);
      }, py::arg("dts"), py::arg("rfactor") = py::none(),
           "Ask for this interval to be split into len(dts) + 1 steps, the first of sizes dts "
           "(each finite and > 0, together shorter than the interval; the last step is what "
           "remains). rfactor, if given, must be len(dts) + 1.");

  py::class_<AccessStatus>(m, "AccessStatus",
                           "Which point access sees; valid only inside the access callback.")
      .def_property_readonly("t", [](const AccessStatus &st) {
        return get<double>(st.s, braid_AccessStatusGetT);
      })
      .def_property_readonly("tindex", [](const AccessStatus &st) {
        return get<int>(st.s, braid_AccessStatusGetTIndex);
      })
      .def_property_readonly("iteration", [](const AccessStatus &st) {
        return get<int>(st.s, braid_AccessStatusGetIter);
      })
      .def_property_readonly("level", [](const AccessStatus &st) {
        return get<int>(st.s, braid_AccessStatusGetLevel);
      })
      .def_property_readonly("nlevels", [](const AccessStatus &st) {
        return get<int>(st.s, braid_AccessStatusGetNLevels);
      })
      .def_property_readonly("done", [](const AccessStatus &st) {
        return get<int>(st.s, braid_AccessStatusGetDone) != 0;
      })
      .def_property_readonly("wrapper_test", [](const AccessStatus &st) {
        return get<int>(st.s, braid_AccessStatusGetWrapperTest) != 0;
      })
      .def_property_readonly("nrefine", [](const AccessStatus &st) {
        return get<int>(st.s, braid_AccessStatusGetNRefine);
      }, "Temporal refinements done so far.")
      .def_property_readonly("ntpoints", [](const AccessStatus &st) {
        return get<int>(st.s, braid_AccessStatusGetNTPoints);
      }, "The fine grid's number of time steps now (its points are 0..ntpoints).")
      .def_property_readonly("error_estimate", [](const AccessStatus &st) {
        return estimate(st.s, braid_AccessStatusGetSingleErrorEstAccess);
      }, "The Richardson estimate of the local error at this point (fine grid), or None.")
      .def_property_readonly("delta_rank", [](const AccessStatus &st) {
        return get<int>(st.s, braid_AccessStatusGetDeltaRank);
      }, "How many basis vectors this point has (Delta correction; 0 for none).")
      .def_property_readonly("basis", [](const py::object &self) {
        return basis_of<AccessStatus>(self);
      }, "The basis vectors at this point (with Lyapunov estimation: the Lyapunov vector "
         "estimates).")
      .def_property_readonly("local_lyapunov_exponents", [](const AccessStatus &st) {
        const int rank = get<int>(st.s, braid_AccessStatusGetDeltaRank);
        std::vector<double> out(static_cast<size_t>(std::max(rank, 0)));
        braid_Int n = static_cast<braid_Int>(out.size());
        braid_AccessStatusGetLocalLyapExponents(st.s, out.data(), &n);
        out.resize(static_cast<size_t>(n));
        return out;
      }, "The local Lyapunov exponents at this point (lyapunov=... with exponents on; "
         "empty where there are none).");

  py::class_<BufferStatus>(m, "BufferStatus",
                           "Which message a buffer callback serves; valid only inside it.")
      .def_property_readonly("level", [](const BufferStatus &st) {
        return get<int>(st.s, braid_BufferStatusGetLevel);
      })
      .def_property_readonly("tindex", [](const BufferStatus &st) {
        return get<int>(st.s, braid_BufferStatusGetTIndex);
      })
      .def_property_readonly("message_type", [](const BufferStatus &st) {
        return get<int>(st.s, braid_BufferStatusGetMessageType);
      })
      .def("set_basis_size", [](const BufferStatus &st, double size) {
        if (st.s == nullptr) throw std::runtime_error("status used outside of its callback");
        if (braid_BufferStatusSetBasisSize(st.s, size) != 0) {
          throw py::value_error("set_basis_size(" + text_of(size) + ") was refused by the "
                                "engine; it takes the bytes of one basis vector (>= 0)");
        }
      }, py::arg("size"), "In bufsize: the bytes one basis vector needs (Delta correction; "
                          "default: the state's size).");

  py::class_<CoarsenRefStatus>(m, "CoarsenRefStatus",
                               "Where a state moves between time levels; valid only inside "
                               "coarsen or refine. level is the finer of the two levels.")
      .def_property_readonly("t", [](const CoarsenRefStatus &st) {
        return get<double>(st.s, braid_CoarsenRefStatusGetT);
      })
      .def_property_readonly("tindex", [](const CoarsenRefStatus &st) {
        return get<int>(st.s, braid_CoarsenRefStatusGetTIndex);
      })
      .def_property_readonly("iteration", [](const CoarsenRefStatus &st) {
        return get<int>(st.s, braid_CoarsenRefStatusGetIter);
      })
      .def_property_readonly("level", [](const CoarsenRefStatus &st) {
        return get<int>(st.s, braid_CoarsenRefStatusGetLevel);
      })
      .def_property_readonly("nlevels", [](const CoarsenRefStatus &st) {
        return get<int>(st.s, braid_CoarsenRefStatusGetNLevels);
      })
      .def_property_readonly("ftprior", [](const CoarsenRefStatus &st) {
        return get<double>(st.s, braid_CoarsenRefStatusGetFTprior);
      })
      .def_property_readonly("ftstop", [](const CoarsenRefStatus &st) {
        return get<double>(st.s, braid_CoarsenRefStatusGetFTstop);
      })
      .def_property_readonly("ctprior", [](const CoarsenRefStatus &st) {
        return get<double>(st.s, braid_CoarsenRefStatusGetCTprior);
      })
      .def_property_readonly("ctstop", [](const CoarsenRefStatus &st) {
        return get<double>(st.s, braid_CoarsenRefStatusGetCTstop);
      });

  py::class_<ObjectiveStatus>(m, "ObjectiveStatus",
                              "Which fine point an objective term is taken at; valid only "
                              "inside objective or objective_diff.")
      .def_property_readonly("t", [](const ObjectiveStatus &st) {
        return get<double>(st.s, braid_ObjectiveStatusGetT);
      })
      .def_property_readonly("tindex", [](const ObjectiveStatus &st) {
        return get<int>(st.s, braid_ObjectiveStatusGetTIndex);
      })
      .def_property_readonly("iteration", [](const ObjectiveStatus &st) {
        return get<int>(st.s, braid_ObjectiveStatusGetIter);
      })
      .def_property_readonly("level", [](const ObjectiveStatus &st) {
        return get<int>(st.s, braid_ObjectiveStatusGetLevel);
      })
      .def_property_readonly("nlevels", [](const ObjectiveStatus &st) {
        return get<int>(st.s, braid_ObjectiveStatusGetNLevels);
      })
      .def_property_readonly("nrefine", [](const ObjectiveStatus &st) {
        return get<int>(st.s, braid_ObjectiveStatusGetNRefine);
      })
      .def_property_readonly("ntpoints", [](const ObjectiveStatus &st) {
        return get<int>(st.s, braid_ObjectiveStatusGetNTPoints);
      })
      .def_property_readonly("tol", [](const ObjectiveStatus &st) {
        return get<double>(st.s, braid_ObjectiveStatusGetTol);
      }, "The state's halting tolerance.");

  py::class_<Engine> cls(m, "Engine", "The MGRIT engine over a Python app (use layerbraid.Solver).");
  cls.def(py::init<py::object, long, double, double, int>(), py::arg("app"), py::arg("comm_f"),
          py::arg("tstart"), py::arg("tstop"), py::arg("ntime"))
      .def("drive", &Engine::drive)
      .def("close", &Engine::close)
      .def("rnorms", &Engine::rnorms)
      .def("num_iter", [](const Engine &e) {
        braid_Int n = 0;
        braid_GetNumIter(e.core(), &n);
        return n;
      })
      .def("nlevels", [](const Engine &e) {
        braid_Int n = 0;
        braid_GetNLevels(e.core(), &n);
        return n;
      })
      .def("nrefine", [](const Engine &e) { return static_cast<int>(e.core()->nrefine); },
           "Temporal refinements done (braid_SetRefine).")
      .def("ntime", [](const Engine &e) { return static_cast<int>(e.core()->ntime); },
           "The fine grid's number of time steps now (it grows with refinement).")
      .def("halting_norms", [](const Engine &e) {
        const braid_Core c = e.core();
        return std::make_tuple(c->rnorm0, c->full_rnorm, c->full_rnorm0);
      }, "(first residual norm on the final grid, last and first full residual norm) of the "
         "last drive, -1 where not computed: what the engine's halting test compared.")
      .def("set_full_residual", &Engine::set_full_residual,
           "Also compute the residual norm over every fine point with the app's residual; it "
           "then decides halting (braid_SetFullRNormRes).")
      .def("set_incr_max_levels",
           [](Engine &e) { check(braid_SetIncrMaxLevels(e.core()), "set_incr_max_levels"); })
      .def("set_timer_file", [](Engine &e, const std::string &stem) {
        check(braid_SetTimerFile(e.core(), static_cast<braid_Int>(stem.size()), stem.c_str()),
              "set_timer_file");
      })
      .def("set_residual", &Engine::set_residual,
           "Use the app's residual(ustop, r, status); step then receives fstop=.")
      .def("set_spatial", &Engine::set_spatial,
           "Use the app's coarsen(fu, status) and refine(cu, status) between time levels.")
      .def("set_time_grid", &Engine::set_time_grid, py::arg("times"),
           "times(ilower, iupper) -> the float64 times of fine points ilower..iupper.")
      .def("set_adjoint", &Engine::set_adjoint,
           "Piggy-back adjoint iteration with the app's objective, objective_diff, step_diff "
           "and reset_gradient (braid_InitAdjoint).")
      .def("set_postprocess", &Engine::set_postprocess,
           "J = app.postprocess_objective(sum), with app.postprocess_objective_diff(sum).")
      .def("objective", &Engine::objective, "J of the last adjoint drive.")
      .def("rnorms_adjoint", &Engine::rnorms_adjoint,
           "The adjoint residual norms of the last adjoint drive (the last one repeated).")
      .def("initial_adjoint", &Engine::initial_adjoint,
           "dJ/du_0 of the last adjoint drive on the rank holding point 0, else None.")
      .def("set_delta", &Engine::set_delta, py::arg("rank"),
           "Delta correction of this rank with the app's init_basis(t, index) and "
           "inner_prod(u, v) (braid_SetDeltaCorrection).")
      .def("set_fmg", [](Engine &e) { check(braid_SetFMG(e.core()), "set_fmg"); })
      .def("set_final_fcrelax",
           [](Engine &e) { check(braid_SetFinalFCRelax(e.core()), "set_final_fcrelax"); })
      .def("set_print_file", [](Engine &e, const std::string &path) {
        check(braid_SetPrintFile(e.core(), path.c_str()), "set_print_file");
      });
  bind_setter(cls, "set_max_levels", braid_SetMaxLevels);
  bind_setter(cls, "set_min_coarse", braid_SetMinCoarse);
  bind_setter(cls, "set_cfactor", braid_SetCFactor);
  bind_setter(cls, "set_nrelax", braid_SetNRelax);
  bind_setter(cls, "set_crelax_wt", braid_SetCRelaxWt);
  bind_setter(cls, "set_max_iter", braid_SetMaxIter);
  bind_setter(cls, "set_abs_tol", braid_SetAbsTol);
  bind_setter(cls, "set_rel_tol", braid_SetRelTol);
  bind_setter(cls, "set_temporal_norm", braid_SetTemporalNorm);
  bind_setter(cls, "set_skip", braid_SetSkip);
  bind_setter(cls, "set_nfmg", braid_SetNFMG);
  bind_setter(cls, "set_nfmg_vcyc", braid_SetNFMGVcyc);
  bind_setter(cls, "set_storage", braid_SetStorage);
  bind_setter(cls, "set_seq_soln", braid_SetSeqSoln);
  bind_setter(cls, "set_residual_computation", braid_SetResidualComputation);
  bind_setter(cls, "set_reverted_ranks", braid_SetRevertedRanks);
  bind_setter(cls, "set_print_level", braid_SetPrintLevel);
  bind_setter(cls, "set_access_level", braid_SetAccessLevel);
  bind_setter(cls, "set_periodic", braid_SetPeriodic);
  bind_setter(cls, "set_relax_only_cg", braid_SetRelaxOnlyCG);
  bind_setter(cls, "set_refine", braid_SetRefine);
  bind_setter(cls, "set_max_refinements", braid_SetMaxRefinements);
  bind_setter(cls, "set_tpoints_cutoff", braid_SetTPointsCutoff);
  bind_setter(cls, "set_richardson", braid_SetRichardsonEstimation);
  bind_setter(cls, "set_timings", braid_SetTimings);
  bind_setter(cls, "set_tstart_objective", braid_SetTStartObjective);
  bind_setter(cls, "set_tstop_objective", braid_SetTStopObjective);
  bind_setter(cls, "set_abs_tol_adjoint", braid_SetAbsTolAdjoint);
  bind_setter(cls, "set_rel_tol_adjoint", braid_SetRelTolAdjoint);
  bind_setter(cls, "set_objective_only", braid_SetObjectiveOnly);
  bind_setter(cls, "set_defer_delta", braid_SetDeferDelta);
  bind_setter(cls, "set_lyapunov", braid_SetLyapunovEstimation);

  g_remote_error = py::exception<void>(m, "RemoteRankError", PyExc_RuntimeError);
  g_divergence_error = py::exception<void>(m, "DivergenceError", PyExc_ArithmeticError);
  g_interrupted = py::exception<void>(m, "Interrupted", PyExc_KeyboardInterrupt);
  g_interrupted.attr("__doc__") =
      "A solve stopped because the interrupt flag was set (set_interrupt) on this rank; the "
      "other ranks raise RemoteRankError. A KeyboardInterrupt.";

  m.def("set_interrupt", [](int signum) {
    if (signum < 0) {
      throw py::value_error("signum=" + std::to_string(signum) + " must be >= 0 (a signal "
                            "number; 0 clears the request)");
    }
    request_interrupt(signum);
  }, py::arg("signum"),
        "Ask every running and future solve of this process (Solver.drive, the native "
        "backend's solves) to stop, naming the signal that asked; 0 clears the request. "
        "Safe to call from a signal handler. The flag stays set until cleared.");
  m.def("block_owner", [](int npoints, int nprocs, int index) {
    if (npoints < 1 || nprocs < 1 || index < 0 || index >= npoints) {
      throw py::value_error("block_owner: npoints=" + std::to_string(npoints) + ", nprocs=" +
                            std::to_string(nprocs) + ", index=" + std::to_string(index) +
                            ": need npoints >= 1, nprocs >= 1 and 0 <= index < npoints");
    }
    braid_Int proc = -1;
    _braid_GetBlockDistProc(npoints, nprocs, index, 0, &proc);
    return static_cast<int>(proc);
  }, py::arg("npoints"), py::arg("nprocs"), py::arg("index"),
        "The rank holding point `index` when the engine blocks npoints time points over "
        "nprocs ranks (its own _braid_GetBlockDistProc). With reverted ranks the engine gives "
        "each rank the mirror image of its forward block.");
  m.def("interrupt_requested", &interrupt_requested,
        "The signal number of the pending interrupt request, 0 for none.");
  // For layerbraid._native, which shares this flag (interrupt.hpp).
  m.attr("_interrupt_api") = py::capsule(static_cast<const void *>(&g_interrupt_api),
                                         interrupt_capsule_name);
}

}  // namespace layerbraid
