// layerbraid._native: the C++ ResNet engine app (layerbraid::resnet::Propagation) for
// Propagator(backend="native").
//
// Conversion only, as in _core: Python hands over contiguous arrays of the right dtype (the
// propagator checks them), each solve runs in C++ with the GIL released and no Python
// callbacks, and results come back as new arrays. Errors of the C++ library arrive as Python
// exceptions: std::invalid_argument as ValueError, std::runtime_error as RuntimeError, and a
// solve that another rank's failure stopped (resnet::RemoteFailure) as
// layerbraid._core.RemoteRankError, as with the Python engine.
//
// Interrupts: each Propagation's interrupt check (resnet_app.hpp) reads the process-wide
// interrupt flag of layerbraid._core (interrupt.hpp) at every step (and every 50 ms while the
// engine waits for another rank), and, in a solve on Python's main thread (the only one that
// runs signal handlers), at most every 50 ms takes the GIL to run Python's signal handlers
// (PyErr_CheckSignals), so that Ctrl-C and handlers that set the flag take effect within a
// solve. A solve the flag stopped raises layerbraid._core.Interrupted on that rank; one stopped
// by an exception of a signal handler (the default SIGINT handler's KeyboardInterrupt) raises
// that exception; the other ranks raise RemoteRankError.
#include <mpi.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "interrupt.hpp"
#include "layerbraid/resnet_app.hpp"

namespace py = pybind11;
namespace rn = layerbraid::resnet;

namespace {

// Set once, when the module is imported (and never released: they outlive the interpreter's
// module teardown).
const layerbraid::InterruptApi* g_interrupt = nullptr;  // _core's interrupt flag
PyObject* g_interrupted = nullptr;                      // layerbraid._core.Interrupted
PyObject* g_remote_error = nullptr;                     // layerbraid._core.RemoteRankError
unsigned long g_main_thread = 0;  // Python's main thread: the only one that runs signal handlers

// How often a solve stops to run Python's signal handlers.
constexpr std::chrono::milliseconds signal_check_interval{50};

rn::Layer make_layer(const std::string& kind, const std::vector<std::int64_t>& dims) {
  if (kind == "dense" && dims.size() == 1) return rn::Dense(dims[0]);
  if (kind == "conv" && dims.size() == 4) return rn::Conv(dims[0], dims[1], dims[2], dims[3]);
  throw py::value_error("layer kind=" + kind + " with " + std::to_string(dims.size()) +
                        " sizes is not supported; use dense (width) or conv (channels, height, "
                        "width, kernel)");
}

py::dict info_dict(const rn::SolveInfo& info) {
  py::dict d;
  d["iterations"] = info.iterations;
  d["levels"] = info.levels;
  d["rnorms"] = info.rnorms;
  d["steps"] = info.steps;  // this rank's profile of the solve (SolveInfo)
  d["steps_coarsest"] = info.steps_coarsest;
  d["messages_sent"] = info.messages_sent;
  d["messages_received"] = info.messages_received;
  d["bytes_sent"] = info.bytes_sent;
  d["time_step"] = info.time_step;
  d["time_step_coarsest"] = info.time_step_coarsest;
  d["time_wait"] = info.time_wait;
  d["time_solve"] = info.time_solve;
  return d;
}

// A copy of a span as a flat array (None for an empty span: "not on this rank").
template <class T>
py::object to_array(rn::CSpan<T> s) {
  if (s.empty()) return py::none();
  py::array_t<T> a(static_cast<py::ssize_t>(s.size()));
  std::memcpy(a.mutable_data(), s.data(), s.size() * sizeof(T));
  return std::move(a);
}

template <class T>
using CArray = py::array_t<T, py::array::c_style>;

template <class T>
typename rn::Propagation<T>::Direction parse_direction(const std::string& name) {
  using D = typename rn::Propagation<T>::Direction;
  if (name == "forward") return D::forward;
  if (name == "adjoint") return D::adjoint;
  throw py::value_error("direction=" + name + " is not supported; use forward or adjoint");
}

// Propagation<T> with array arguments. Parameters and gradients travel as two lists, the
// weights and the biases of this rank's layers in order (copied in C++: a Python loop over
// the layers cost more than the copies).
template <class T>
class NativePropagation {
 public:
  NativePropagation(const std::string& kind, const std::vector<std::int64_t>& dims,
                    const std::string& activation, int depth, double final_time,
                    std::int64_t batch, long comm_f, const rn::SolverOptions& forward,
                    const rn::SolverOptions& adjoint,
                    const std::vector<py::ssize_t>& weight_shape)
      : prop_(make_layer(kind, dims), rn::parse_activation(activation), depth, final_time,
              batch, MPI_Comm_f2c(static_cast<MPI_Fint>(comm_f)), forward, adjoint),
        params_(prop_.make_parameters()),
        weight_shape_(weight_shape) {
    prop_.set_interrupt_check([this] { return interrupt_check(); });
  }

  // pybind11 keeps the object in place: the interrupt check holds `this`.
  NativePropagation(const NativePropagation&) = delete;
  NativePropagation& operator=(const NativePropagation&) = delete;

  py::tuple owned_layers() const {
    const rn::LayerRange r = prop_.layout().owned_layers();
    return py::make_tuple(r.first, r.count);
  }

  py::dict forward(const std::vector<CArray<T>>& weights, const std::vector<CArray<T>>& biases,
                   const py::object& u0) {
    const rn::LayerRange own = params_.layers();
    if (weights.size() != static_cast<std::size_t>(own.count) || biases.size() != weights.size()) {
      throw py::value_error("got " + std::to_string(weights.size()) + " weights and " +
                            std::to_string(biases.size()) + " biases; this rank holds " +
                            std::to_string(own.count) + " layers");
    }
    for (int i = 0; i < own.count; ++i) {
      copy_into(params_.weight(own.first + i), weights[static_cast<std::size_t>(i)], "weight");
      copy_into(params_.bias(own.first + i), biases[static_cast<std::size_t>(i)], "bias");
    }
    rn::CSpan<T> start;
    CArray<T> u0_array;
    if (!u0.is_none()) {
      u0_array = u0.cast<CArray<T>>();
      start = rn::CSpan<T>(u0_array.data(), static_cast<std::size_t>(u0_array.size()));
    }
    return info_dict(solve([&]() -> const rn::SolveInfo& {
      return prop_.forward(params_, start);
    }));
  }

  py::dict adjoint(const py::object& lambda_N) {
    rn::CSpan<T> start;
    CArray<T> lam_array;
    if (!lambda_N.is_none()) {
      lam_array = lambda_N.cast<CArray<T>>();
      start = rn::CSpan<T>(lam_array.data(), static_cast<std::size_t>(lam_array.size()));
    }
    return info_dict(solve([&]() -> const rn::SolveInfo& { return prop_.adjoint(start); }));
  }

  py::object final_state() const { return to_array<T>(prop_.final_state()); }
  py::object initial_adjoint() const { return to_array<T>(prop_.initial_adjoint()); }
  py::object state(int n) const { return to_array<T>(prop_.state(n)); }

  // Warm-start states: {time index: flat state} of one direction ("forward" or "adjoint").
  py::dict kept_states(const std::string& direction) const {
    return as_dict(prop_.kept_states(parse_direction<T>(direction)));
  }

  void record_states(const std::string& direction, bool on) {
    prop_.record_states(parse_direction<T>(direction), on);
  }

  py::dict recorded_states(const std::string& direction) const {
    return as_dict(prop_.recorded_states(parse_direction<T>(direction)));
  }

  void restore_states(const std::string& direction, const std::map<int, CArray<T>>& states) {
    std::map<int, std::vector<T>> copies;
    for (const auto& [index, a] : states) copies[index].assign(a.data(), a.data() + a.size());
    prop_.restore_states(parse_direction<T>(direction), std::move(copies));
  }

  // (weights, biases) of this rank's layers as two new arrays, (layers, *weight shape) and
  // (layers, bias size).
  py::tuple gradient() const {
    const rn::LayerParameters<T>& g = prop_.gradient();
    const rn::LayerRange own = g.layers();
    std::vector<py::ssize_t> wshape{own.count};
    wshape.insert(wshape.end(), weight_shape_.begin(), weight_shape_.end());
    CArray<T> weights(wshape);
    CArray<T> biases({static_cast<py::ssize_t>(own.count),
                      static_cast<py::ssize_t>(g.bias_size())});
    T* w = weights.mutable_data();
    T* b = biases.mutable_data();
    for (int n = own.first; n < own.end(); ++n) {
      std::memcpy(w, g.weight(n).data(), g.weight_size() * sizeof(T));
      std::memcpy(b, g.bias(n).data(), g.bias_size() * sizeof(T));
      w += g.weight_size();
      b += g.bias_size();
    }
    return py::make_tuple(weights, biases);
  }

 private:
  // Runs a solve with the GIL released; an interrupted one raises as the module doc says.
  template <class F>
  const rn::SolveInfo& solve(F&& run) {
    stop_signal_ = 0;
    handler_error_.reset();
    run_handlers_ = PyThread_get_thread_ident() == g_main_thread;
    next_signal_check_ = std::chrono::steady_clock::now() + signal_check_interval;
    try {
      py::gil_scoped_release free_python;
      return run();
    } catch (const rn::Interrupted&) {  // the GIL is ours again here
      if (handler_error_) {
        py::error_already_set e = std::move(*handler_error_);
        handler_error_.reset();
        throw e;
      }
      PyErr_SetString(g_interrupted,
                      ("interrupted by signal " + std::to_string(stop_signal_)).c_str());
      throw py::error_already_set();
    } catch (const rn::RemoteFailure& e) {
      PyErr_SetString(g_remote_error, e.what());
      throw py::error_already_set();
    }
  }

  // The Propagation's interrupt check, called without the GIL at every step (and while the
  // engine waits): true when the flag is set, or a signal handler raised.
  bool interrupt_check() {
    stop_signal_ = g_interrupt->requested();
    if (stop_signal_ != 0 || !run_handlers_) return stop_signal_ != 0;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_signal_check_) return false;
    next_signal_check_ = now + signal_check_interval;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      handler_error_.emplace();  // takes the handler's exception
      return true;
    }
    stop_signal_ = g_interrupt->requested();  // a handler may have set the flag
    return stop_signal_ != 0;
  }

  static py::dict as_dict(const std::map<int, std::vector<T>>& states) {
    py::dict out;
    for (const auto& [index, state] : states) {
      out[py::int_(index)] = to_array<T>(rn::CSpan<T>(state.data(), state.size()));
    }
    return out;
  }

  static void copy_into(rn::Span<T> target, const CArray<T>& source, const char* what) {
    if (static_cast<std::size_t>(source.size()) != target.size()) {
      throw py::value_error(std::string("a layer's ") + what + " has " +
                            std::to_string(source.size()) + " values, expected " +
                            std::to_string(target.size()));
    }
    std::memcpy(target.data(), source.data(), target.size() * sizeof(T));
  }

  rn::Propagation<T> prop_;
  rn::LayerParameters<T> params_;
  std::vector<py::ssize_t> weight_shape_;
  // The interrupt check's state during a solve.
  int stop_signal_ = 0;  // the flag's value when it stopped the solve
  bool run_handlers_ = false;  // solving on the main thread: run Python's signal handlers
  std::chrono::steady_clock::time_point next_signal_check_;
  std::optional<py::error_already_set> handler_error_;  // raised by a Python signal handler
};

template <class T>
void bind_propagation(py::module_& m, const char* name) {
  using P = NativePropagation<T>;
  py::class_<P>(m, name)
      .def(py::init<const std::string&, const std::vector<std::int64_t>&, const std::string&,
                    int, double, std::int64_t, long, const rn::SolverOptions&,
                    const rn::SolverOptions&, const std::vector<py::ssize_t>&>(),
           py::arg("kind"), py::arg("dims"), py::arg("activation"), py::arg("depth"),
           py::arg("final_time"), py::arg("batch"), py::arg("comm_f"), py::arg("forward"),
           py::arg("adjoint"), py::arg("weight_shape"))
      .def("owned_layers", &P::owned_layers, "(first, count) of this rank's layers")
      .def("forward", &P::forward, py::arg("weights"), py::arg("biases"), py::arg("u0"),
           "Forward solve (collective; GIL released); the solve's iterations, levels, rnorms "
           "and this rank's profile (steps, messages, times: SolveInfo)")
      .def("adjoint", &P::adjoint, py::arg("lambda_N"),
           "Adjoint solve of the last forward (collective; GIL released)")
      .def("final_state", &P::final_state, "u_N as a flat array on the last rank, else None")
      .def("initial_adjoint", &P::initial_adjoint,
           "lambda_0 as a flat array on rank 0, else None")
      .def("state", &P::state, py::arg("n"), "u_n of an owned layer n (flat)")
      .def("kept_states", &P::kept_states, py::arg("direction"),
           "warm_start: {time index: flat state} of the C-points kept after the last solve")
      .def("record_states", &P::record_states, py::arg("direction"), py::arg("on"),
           "Keep every point's state after each solve of that direction (or stop)")
      .def("recorded_states", &P::recorded_states, py::arg("direction"),
           "{time index: flat state} of the last recorded solve, at this rank's points")
      .def("restore_states", &P::restore_states, py::arg("direction"), py::arg("states"),
           "Start the next solve of that direction from these {time index: flat state}")
      .def("gradient", &P::gradient,
           "(weights, biases): this rank's layers' gradients, stacked along a first axis");
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "layerbraid native backend: C++ ResNet propagation (layerbraid::resnet)";

  // The interrupt flag and the exception types are layerbraid._core's (one of each per
  // process).
  g_interrupt = static_cast<const layerbraid::InterruptApi*>(
      PyCapsule_Import(layerbraid::interrupt_capsule_name, 0));
  if (g_interrupt == nullptr) throw py::error_already_set();
  if (g_interrupt->version != layerbraid::interrupt_api_version) {
    throw py::import_error("layerbraid._native: layerbraid._core's interrupt interface has "
                           "version " + std::to_string(g_interrupt->version) + ", expected " +
                           std::to_string(layerbraid::interrupt_api_version) +
                           "; the two modules come from different builds (reinstall layerbraid)");
  }
  py::module_ core = py::module_::import("layerbraid._core");
  g_interrupted = py::object(core.attr("Interrupted")).release().ptr();
  g_remote_error = py::object(core.attr("RemoteRankError")).release().ptr();
  g_main_thread = py::module_::import("threading").attr("main_thread")().attr("ident")
                      .cast<unsigned long>();

  py::class_<rn::SolverOptions>(m, "SolverOptions")
      .def(py::init<>())
      .def_readwrite("max_levels", &rn::SolverOptions::max_levels)
      .def_readwrite("min_coarse", &rn::SolverOptions::min_coarse)
      .def_readwrite("cfactor", &rn::SolverOptions::cfactor)
      .def_readwrite("nrelax", &rn::SolverOptions::nrelax)
      .def_readwrite("fine_nrelax", &rn::SolverOptions::fine_nrelax)
      .def_readwrite("abs_tol", &rn::SolverOptions::abs_tol)
      .def_readwrite("max_iter", &rn::SolverOptions::max_iter)
      .def_readwrite("skip", &rn::SolverOptions::skip)
      .def_readwrite("warm_start", &rn::SolverOptions::warm_start)
      .def_readwrite("print_level", &rn::SolverOptions::print_level)
      .def_readwrite("profile", &rn::SolverOptions::profile)
      .def_readwrite("spatial_coarsen", &rn::SolverOptions::spatial_coarsen)
      .def_readwrite("spatial_states", &rn::SolverOptions::spatial_states);

  bind_propagation<double>(m, "Propagation64");
  bind_propagation<float>(m, "Propagation32");

  m.def("active_isa", &rn::active_isa,
        "The instruction set of the C++ element-wise passes: 'avx2' or 'baseline', chosen at "
        "the first use from LAYERBRAID_NATIVE_ISA (auto, the default | avx2 | baseline); "
        "ValueError for a value that cannot be honoured");
  m.def("blas_description", &rn::blas_description, "The BLAS the kernels were built on");
  m.def("blas_threads", &rn::blas_threads, "The BLAS's thread count (-1: unknown)");
  m.def("set_blas_threads", &rn::set_blas_threads, py::arg("threads"),
        "Set the BLAS's thread count; False for a BLAS without a thread control");
}
