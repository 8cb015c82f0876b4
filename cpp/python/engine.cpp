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
// and inner_prod(u, v); step and access then see the basis vectors as status.basis.
//
// Temporal refinement and Richardson extrapolation are engine options (set_refine, ...,
// set_richardson). The status views the callbacks get, with step's refinement requests and
// the basis of Delta correction, are in status.cpp.
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
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "interrupt.hpp"
#include "status.hpp"

extern "C" {
#include "_braid.h"
#include "braid.h"
#include "braid_layerbraid.h"
}

namespace py = pybind11;

namespace layerbraid {
namespace {

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
  // step_diff and reset_gradient (solver_checks.py checks they exist).
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
  // (time_grid.py checks the values; here only their number and type).
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

void bind_engine(py::module_ &m) {
  bind_status(m);

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
