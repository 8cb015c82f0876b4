// The Python views of the engine's status objects: what each callback's status argument
// shows (status.hpp). Conversion only: every property is one braid_*StatusGet* call; step's
// refinement requests (set_rfactor, set_refinement_dt) are checked here, so that a bad one
// raises in step like any callback's exception; status.basis (Delta correction) reads and
// writes the engine's own basis vectors.
#include "status.hpp"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include "braid_status.h"
}

namespace py = pybind11;

namespace layerbraid {
namespace {

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

}  // namespace

void bind_status(py::module_ &m) {
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
}

}  // namespace layerbraid
