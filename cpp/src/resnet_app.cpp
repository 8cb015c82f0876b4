// The engine app of layerbraid::resnet: the callbacks through which the MGRIT engine steps
// forward and backward through the residual layers, the layer layout over the ranks, and the
// exchange of boundary layers, caches and gradients between ranks (see resnet_app.hpp).
//
// A state is one array of T: a 16-byte header holding its spatial index s (how many times its
// image is halved: 0 on the finest level, min(level, spatial_coarsen) on the others), then
// the batch's values at that resolution. The engine's braid_Vector is that array's pointer
// (new T[] in init/clone/unpack/coarsen/refine, delete[] in free), so a clone is one
// allocation and a step allocates nothing. A message is the values; only a solve with
// low-resolution states (spatial_states) sends the header too, so unpack knows the size.
// braid_App is a pointer to one Solve.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

#include "_braid.h"  // _braid_GetBlockDistProc: the engine's own distribution
#include "braid.h"
#include "layerbraid/resnet_app.hpp"
#include "mpi_types.hpp"
#include "spatial_levels.hpp"

#if __has_include("braid_layerbraid.h")
#include "braid_layerbraid.h"
#define LAYERBRAID_RESNET_ENGINE_EXTENSIONS 1
#else
#define LAYERBRAID_RESNET_ENGINE_EXTENSIONS 0
#endif

namespace layerbraid::resnet {

using detail::mpi_type;

namespace {

std::string str(long long v) { return std::to_string(v); }

// A message or buffer length that must fit an int (MPI counts, braid_Int byte sizes).
int int_size(const char* what, std::size_t n) {
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw std::length_error("Propagation: " + std::string(what) + " = " + std::to_string(n) +
                            " does not fit the engine's and MPI's int sizes (at most " +
                            str(std::numeric_limits<int>::max()) + ")");
  }
  return static_cast<int>(n);
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Layout
// ------------------------------------------------------------------------------------------
Layout::Layout(int depth, int size, int rank) : depth_(depth), size_(size), rank_(rank) {
  if (depth < 1) throw std::invalid_argument("Layout: depth=" + str(depth) + " must be >= 1");
  if (size < 1 || size > depth + 1) {
    throw std::invalid_argument("Layout: size=" + str(size) + " ranks cannot share " +
                                str(depth) + " layers (" + str(depth + 1) +
                                " points); use 1 to " + str(depth + 1) + " ranks");
  }
  if (rank < 0 || rank >= size) {
    throw std::invalid_argument("Layout: rank=" + str(rank) + " must lie in [0, " +
                                str(size - 1) + "]");
  }
  // Both sets are contiguous: owners are monotone in the layer index.
  auto span = [&](auto owner) {
    LayerRange r;
    int n = 0;
    while (n < depth && owner(n) != rank) ++n;
    r.first = n;
    while (n < depth && owner(n) == rank) ++n;
    r.count = n - r.first;
    if (r.count == 0) r.first = 0;
    return r;
  };
  owned_ = span([this](int n) { return layer_owner(n); });
  adjoint_ = span([this](int n) { return adjoint_owner(n); });
}

int Layout::block(int point) const {
  if (point < 0 || point > depth_) {
    throw std::out_of_range("Layout: point=" + str(point) + " must lie in [0, " + str(depth_) +
                            "]");
  }
  braid_Int proc = -1;
  _braid_GetBlockDistProc(depth_ + 1, size_, point, 0, &proc);
  return proc;
}

int Layout::forward_owner(int point) const { return block(point); }
// Reverted ranks hold the mirror image of their forward block: adjoint time index N - point
// lives where forward point point does.
int Layout::adjoint_owner(int point) const { return block(point); }

int Layout::layer_owner(int n) const {
  if (n < 0 || n >= depth_) {
    throw std::out_of_range("Layout: layer n=" + str(n) + " must lie in [0, " +
                            str(depth_ - 1) + "]");
  }
  return forward_owner(n + 1);
}

// ------------------------------------------------------------------------------------------
// LayerParameters
// ------------------------------------------------------------------------------------------
template <class T>
LayerParameters<T>::LayerParameters(LayerRange layers, std::size_t weight_size,
                                    std::size_t bias_size)
    : layers_(layers), weight_size_(weight_size), bias_size_(bias_size) {
  if (layers.count < 0 || layers.first < 0) {
    throw std::invalid_argument("LayerParameters: layers [" + str(layers.first) + ", " +
                                str(layers.end()) + ") is not a valid range");
  }
  values_.assign(static_cast<std::size_t>(layers.count) * (weight_size + bias_size), T(0));
}

template <class T>
std::size_t LayerParameters<T>::offset(int n) const {
  if (!holds(n)) {
    throw std::out_of_range("LayerParameters: layer n=" + str(n) + " is not held here (layers [" +
                            str(layers_.first) + ", " + str(layers_.end()) + "))");
  }
  return static_cast<std::size_t>(n - layers_.first) * (weight_size_ + bias_size_);
}

template <class T>
Span<T> LayerParameters<T>::weight(int n) {
  return Span<T>(values_.data() + offset(n), weight_size_);
}
template <class T>
CSpan<T> LayerParameters<T>::weight(int n) const {
  return CSpan<T>(values_.data() + offset(n), weight_size_);
}
template <class T>
Span<T> LayerParameters<T>::bias(int n) {
  return Span<T>(values_.data() + offset(n) + weight_size_, bias_size_);
}
template <class T>
CSpan<T> LayerParameters<T>::bias(int n) const {
  return CSpan<T>(values_.data() + offset(n) + weight_size_, bias_size_);
}
template <class T>
Span<T> LayerParameters<T>::layer(int n) {
  return Span<T>(values_.data() + offset(n), weight_size_ + bias_size_);
}
template <class T>
CSpan<T> LayerParameters<T>::layer(int n) const {
  return CSpan<T>(values_.data() + offset(n), weight_size_ + bias_size_);
}

// ------------------------------------------------------------------------------------------
// SolverOptions
// ------------------------------------------------------------------------------------------
void SolverOptions::validate(const std::string& who) const {
  auto bad = [&](const std::string& what) { throw std::invalid_argument(who + ": " + what); };
  if (max_levels < 1) bad("max_levels=" + str(max_levels) + " must be >= 1");
  if (min_coarse < 1) bad("min_coarse=" + str(min_coarse) + " must be >= 1");
  if (cfactor < 2) bad("cfactor=" + str(cfactor) + " must be >= 2");
  if (nrelax < 0) bad("nrelax=" + str(nrelax) + " must be >= 0 (0 = F, 1 = FCF, 2 = FCFCF)");
  if (fine_nrelax < -1) {
    bad("fine_nrelax=" + str(fine_nrelax) + " must be >= 0, or -1 for the value of nrelax");
  }
  if (!(abs_tol > 0) || !std::isfinite(abs_tol)) {
    bad("abs_tol=" + std::to_string(abs_tol) + " must be a finite number > 0");
  }
  if (max_iter < 1) bad("max_iter=" + str(max_iter) + " must be >= 1");
  if (print_level < 0 || print_level > 3) {
    bad("print_level=" + str(print_level) + " must lie in [0, 3]");
  }
  if (spatial_coarsen < 0 || spatial_coarsen > 30) {
    bad("spatial_coarsen=" + str(spatial_coarsen) + " must lie in [0, 30] (0 = off)");
  }
  // F-relaxation never updates the C-points' fine detail, and a low-resolution coarse grid
  // cannot correct it: such a solve would not converge.
  if (spatial_states && spatial_coarsen > 0 && (nrelax == 0 || fine_nrelax == 0)) {
    bad("spatial_states with F-relaxation (nrelax=" + str(nrelax) + ", fine_nrelax=" +
        str(fine_nrelax) + ") never corrects the fine detail of the C-points; use nrelax >= 1 "
        "(FCF) or spatial_states = false");
  }
}

// ------------------------------------------------------------------------------------------
// Propagation: the state behind the two solves
// ------------------------------------------------------------------------------------------
template <class T>
struct Propagation<T>::Impl {
  // One engine solve: what braid_App points to.
  struct Solve {
    Impl* impl = nullptr;
    bool adjoint = false;
    SolverOptions options;
    int spatial = 0;         // options.spatial_coarsen
    bool low_states = false;  // options.spatial_states: coarse states are low resolution
    braid_Core core = nullptr;
    bool failed = false;        // the last Drive failed: the core must be rebuilt
    std::string error;          // the exception a callback caught on this rank
    CSpan<T> initial;           // the state at tstart during a solve (where this rank has it)
    std::vector<T> final;       // the state at tstop after a solve (where this rank has it)
    bool has_final = false;
    SolveInfo info;
    std::map<int, std::vector<T>> kept;     // warm_start: C-points after the last solve
    bool record = false;                    // keep every point's state after each solve
    std::map<int, std::vector<T>> recorded;
    std::map<int, std::vector<T>> restore;  // states the next solve's init starts from
    bool restored = false;  // the core starts from restored states: never skip its first cycle
    bool interrupted = false;  // the last Drive was stopped by this rank's interrupt check
  };

  // What an adjoint step to point n needs: layer n's weight, its input u_n, sigma'(z_n) and
  // where its gradient goes.
  struct AdjointLayer {
    const T* weight = nullptr;
    const T* u = nullptr;
    const T* deriv = nullptr;
    T* grad_weight = nullptr;
    T* grad_bias = nullptr;
  };

  Layer layer;
  Activation act;
  int depth;
  double final_time;
  std::int64_t batch;
  MPI_Comm comm = MPI_COMM_NULL;  // our duplicate, for the exchanges outside the engine
  Layout layout;
  std::size_t n_state, n_weight, n_bias, n_layer;
  Workspace<T> work;
  std::unique_ptr<detail::SpatialLevels<T>> levels;  // by spatial index s (images halved s times)
  LayerParameters<T> params, grads;  // this rank's layers
  std::vector<T> cache_u, cache_deriv;  // this rank's layers: u_n and sigma'(z_n)
  // Layers this rank's adjoint steps through but does not own ("foreign"), by slot.
  std::vector<int> foreign;  // layer index of each slot
  std::vector<T> foreign_params, foreign_u, foreign_deriv, foreign_grads;
  std::vector<AdjointLayer> adj;  // by n - layout.adjoint_layers().first
  // Spatial coarsening, by s - 1: the coarse kernels of this rank's layers (forward), and of
  // its adjoint layers with their averaged sigma'(z_n) (adjoint), remade before each solve.
  std::vector<std::vector<T>> coarse_weights, adjoint_coarse_weights, adjoint_coarse_derivs;
  std::vector<MPI_Request> requests;
  bool forward_ready = false;  // a forward solve succeeded; its caches are current
  std::function<bool()> interrupt_check;  // asked every step and while waiting (may be empty)
  Solve fwd, bwd;

  Impl(const Layer& layer_, Activation act_, int depth_, double final_time_,
       std::int64_t batch_, MPI_Comm user_comm, const SolverOptions& fo, const SolverOptions& ao)
      : layer(layer_), act(act_), depth(depth_), final_time(final_time_), batch(batch_),
        layout(checked_layout(depth_, user_comm)) {
    n_state = std::visit([&](const auto& l) { return l.state_size(batch); }, layer);
    n_weight = std::visit([](const auto& l) { return l.weight_size(); }, layer);
    n_bias = std::visit([](const auto& l) { return l.bias_size(); }, layer);
    n_layer = n_weight + n_bias;
    // the largest message: a fine state, with the header of low-resolution-state solves
    int_size("state_size() * sizeof(T) + 16 in bytes", header_bytes + n_state * sizeof(T));
    levels = std::make_unique<detail::SpatialLevels<T>>(
        layer, batch, std::max(fo.spatial_coarsen, ao.spatial_coarsen));
    int_size("weight_size() + bias_size()", n_layer);
    std::visit([&](const auto& l) { work.reserve(l, batch); }, layer);

    const LayerRange own = layout.owned_layers(), back = layout.adjoint_layers();
    params = LayerParameters<T>(own, n_weight, n_bias);
    grads = LayerParameters<T>(own, n_weight, n_bias);
    cache_u.assign(static_cast<std::size_t>(own.count) * n_state, T(0));
    cache_deriv.assign(cache_u.size(), T(0));
    for (int n = back.first; n < back.end(); ++n)
      if (!own.contains(n)) foreign.push_back(n);
    const std::size_t nf = foreign.size();
    foreign_params.assign(nf * n_layer, T(0));
    foreign_grads.assign(nf * n_layer, T(0));
    foreign_u.assign(nf * n_state, T(0));
    foreign_deriv.assign(nf * n_state, T(0));
    adj.resize(static_cast<std::size_t>(back.count));
    std::size_t slot = 0;
    for (int n = back.first; n < back.end(); ++n) {
      AdjointLayer& a = adj[static_cast<std::size_t>(n - back.first)];
      if (own.contains(n)) {
        const std::size_t i = static_cast<std::size_t>(n - own.first);
        a = {params.weight(n).data(), cache_u.data() + i * n_state,
             cache_deriv.data() + i * n_state, grads.weight(n).data(), grads.bias(n).data()};
      } else {
        a = {foreign_params.data() + slot * n_layer, foreign_u.data() + slot * n_state,
             foreign_deriv.data() + slot * n_state, foreign_grads.data() + slot * n_layer,
             foreign_grads.data() + slot * n_layer + n_weight};
        ++slot;
      }
    }
    // The most requests one exchange posts: 3 per layer sent or received.
    std::size_t sent = 0;
    for (int n = own.first; n < own.end(); ++n)
      if (layout.adjoint_owner(n) != layout.rank()) ++sent;
    requests.reserve(3 * (sent + nf));

    fwd.impl = bwd.impl = this;
    fwd.adjoint = false;
    bwd.adjoint = true;
    fwd.options = fo;
    bwd.options = ao;
    fwd.spatial = fo.spatial_coarsen;
    bwd.spatial = ao.spatial_coarsen;
    fwd.low_states = fo.spatial_states && fo.spatial_coarsen > 0;
    bwd.low_states = ao.spatial_states && ao.spatial_coarsen > 0;
    for (Solve* s : {&fwd, &bwd}) s->final.assign(n_state, T(0));
    if (MPI_Comm_dup(user_comm, &comm) != MPI_SUCCESS) {
      throw std::runtime_error("Propagation: MPI_Comm_dup failed");
    }
  }

  ~Impl() {
    for (Solve* s : {&fwd, &bwd}) destroy_core(*s);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm);
  }

  static Layout checked_layout(int depth, MPI_Comm comm) {
    if (comm == MPI_COMM_NULL) {
      throw std::invalid_argument("Propagation: comm is MPI_COMM_NULL; pass a communicator");
    }
    int size = 0, rank = 0;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    if (size > depth + 1) {
      throw std::invalid_argument("Propagation: " + str(size) + " ranks cannot share depth=" +
                                  str(depth) + " layers (" + str(depth + 1) +
                                  " points); use at most " + str(depth + 1) + " ranks");
    }
    return Layout(depth, size, rank);
  }

  // ---- the engine's cores ----

  static braid_App as_app(Solve* s) { return reinterpret_cast<braid_App>(s); }
  static Solve& solve_of(braid_App app) { return *reinterpret_cast<Solve*>(app); }

  // A state's array: header (its spatial index), then its values.
  static constexpr std::size_t header_bytes = 16;
  static constexpr std::size_t header = header_bytes / sizeof(T);
  static T* data(braid_Vector v) { return reinterpret_cast<T*>(v) + header; }
  static int spatial_of(braid_Vector v) {
    int s = 0;
    std::memcpy(&s, v, sizeof s);
    return s;
  }
  std::size_t size_of(braid_Vector v) const {
    return levels->state_size(spatial_of(v));
  }
  // A new state of spatial index s; its values are not set.
  braid_Vector new_state(int s) const {
    T* block = new T[header + levels->state_size(s)];
    std::memset(block, 0, header_bytes);
    std::memcpy(block, &s, sizeof s);
    return reinterpret_cast<braid_Vector>(block);
  }
  static void delete_state(braid_Vector v) noexcept { delete[] reinterpret_cast<T*>(v); }

  void destroy_core(Solve& s) noexcept {
    if (s.core != nullptr) braid_Destroy(s.core);
    s.core = nullptr;
    s.failed = false;
  }

  void build_core(Solve& s) {
    const char* who = s.adjoint ? "Propagation::adjoint" : "Propagation::forward";
    braid_Core core = nullptr;
    int err = braid_Init(comm, comm, 0.0, final_time, depth, as_app(&s), step_cb, init_cb,
                         clone_cb, free_cb, sum_cb, norm_cb, access_cb, bufsize_cb, pack_cb,
                         unpack_cb, &core);
    if (err != 0 || core == nullptr) {
      throw std::runtime_error(std::string(who) + ": braid_Init failed with code " + str(err) +
                               " (depth=" + str(depth) + ", final_time=" +
                               std::to_string(final_time) + ")");
    }
    s.core = core;
    s.failed = true;  // until every option is set: a half-configured core is never driven
    const SolverOptions& o = s.options;
    auto set = [&](const char* name, int code) {
      if (code != 0) {
        throw std::invalid_argument(std::string(who) + ": the engine refused " + name +
                                    " (code " + str(code) + ")");
      }
    };
    set("max_levels", braid_SetMaxLevels(core, o.max_levels));
    set("min_coarse", braid_SetMinCoarse(core, o.min_coarse));
    set("cfactor", braid_SetCFactor(core, -1, o.cfactor));
    set("nrelax", braid_SetNRelax(core, -1, o.nrelax));
    if (o.fine_nrelax >= 0) set("fine_nrelax", braid_SetNRelax(core, 0, o.fine_nrelax));
    set("skip", braid_SetSkip(core, o.skip && !s.restored ? 1 : 0));
    set("abs_tol", braid_SetAbsTol(core, o.abs_tol));
    set("max_iter", braid_SetMaxIter(core, o.max_iter));
    set("print_level", braid_SetPrintLevel(core, o.print_level));
    set("file_io_level", braid_SetFileIOLevel(core, 0));
    set("access_level", braid_SetAccessLevel(core, 1));
    if (s.adjoint) set("reverted_ranks", braid_SetRevertedRanks(core, 1));
    if (s.low_states) {
      set("spatial_coarsen", braid_SetSpatialCoarsen(core, coarsen_cb));
      set("spatial_refine", braid_SetSpatialRefine(core, refine_cb));
    }
#if LAYERBRAID_RESNET_ENGINE_EXTENSIONS
    set("profile", layerbraid_SetTimeCalls(core, o.profile ? 1 : 0));  // no timer files
    set("counts", layerbraid_SetProfile(core, 1));  // SolveInfo's counts, always
#else
    set("profile", braid_SetTimings(core, o.profile ? 2 : 1));  // upstream: writes its files
#endif
#if LAYERBRAID_RESNET_ENGINE_EXTENSIONS
    layerbraid_SetQuietFailures(core, 1);  // we report failures ourselves, as exceptions
    set_poll_hook(s);
#endif
    s.failed = false;
  }

  // The interrupt check while this rank waits, only when there is one: without a poll hook the
  // engine blocks in MPI (MPI_Waitany on the message and the failure notice), which wakes at
  // once when the message arrives; the hook's test-and-sleep loop may wake up to 0.25 ms late
  // and costs a simulator host time in every waiting rank (extern/braid/doc/waits.md).
  void set_poll_hook(Solve& s) const {
#if LAYERBRAID_RESNET_ENGINE_EXTENSIONS
    if (s.core != nullptr) {
      layerbraid_SetPollHook(s.core, interrupt_check ? poll_cb : nullptr,
                             interrupt_check ? &s : nullptr);
    }
#else
    (void)s;
#endif
  }

  // One solve on every rank. When it fails: Interrupted on a rank whose interrupt check
  // stopped it, RemoteFailure on a rank stopped by another rank's failure, else
  // std::runtime_error; each with the failed callback's message.
  void drive(Solve& s) {
    const char* who = s.adjoint ? "Propagation::adjoint" : "Propagation::forward";
    if (s.core != nullptr && (s.failed || !s.options.warm_start || !s.restore.empty())) {
      destroy_core(s);
    }
    if (!s.restore.empty()) s.restored = true;
    if (s.core == nullptr) build_core(s);
    s.error.clear();
    s.has_final = false;
    s.interrupted = false;
    braid_ResetTimer(s.core);  // this solve's counts only (a warm-started core keeps them)
    const int err = braid_Drive(s.core);
    s.initial = {};
    read_profile(s);
    if (err != 0) {
      s.failed = true;
      std::string text;
#if LAYERBRAID_RESNET_ENGINE_EXTENSIONS
      braid_Int rank = -1;
      std::string buf(layerbraid_FAILURE_TEXT_MAX, '\0');
      layerbraid_GetFailure(s.core, &rank, buf.data(), static_cast<braid_Int>(buf.size()));
      text = buf.c_str();
#endif
      if (text.empty()) text = s.error;
      if (text.empty()) {
        text = "braid_Drive returned " + str(err) +
               " (see the engine's message on stderr; a NaN or infinite residual means the "
               "iteration diverged)";
      }
      if (s.interrupted) {
        throw Interrupted(std::string(who) + " interrupted on rank " + str(layout.rank()) +
                          " (its interrupt check asked to stop)");
      }
#if LAYERBRAID_RESNET_ENGINE_EXTENSIONS
      if (err == layerbraid_ERROR_REMOTE) {
        throw RemoteFailure(std::string(who) + " failed: " + text);
      }
#endif
      throw std::runtime_error(std::string(who) + " failed: " + text);
    }
    braid_Int niter = 0, nlevels = 0;
    braid_GetNumIter(s.core, &niter);
    braid_GetNLevels(s.core, &nlevels);
    s.info.iterations = niter;
    s.info.levels = nlevels;
    braid_Int count = niter + 1;
    s.info.rnorms.assign(static_cast<std::size_t>(count), -1.0);
    braid_GetRNorms(s.core, &count, s.info.rnorms.data());
    s.info.rnorms.resize(static_cast<std::size_t>(std::max<braid_Int>(count, 0)));
  }

  // The engine's counts and times of the solve that just ran (reset before it).
  static void read_profile(Solve& s) {
#if LAYERBRAID_RESNET_ENGINE_EXTENSIONS
    layerbraid_Profile p{};
    if (layerbraid_GetProfile(s.core, &p) != 0) return;
    SolveInfo& i = s.info;
    i.steps = p.steps;
    i.steps_coarsest = p.steps_coarsest;
    i.messages_sent = p.messages_sent;
    i.messages_received = p.messages_received;
    i.bytes_sent = p.bytes_sent;
    i.time_step = p.time_step;
    i.time_step_coarsest = p.time_step_coarsest;
    i.time_wait = p.time_wait;
#else
    (void)s;
#endif
  }

  // ---- the callbacks ----

  // Runs body; an exception ends the callback with a nonzero code and its message recorded
  // (nothing unwinds into the engine).
  template <class F>
  static braid_Int guarded(braid_App app, const char* callback, F&& body) noexcept {
    Solve& s = solve_of(app);
    try {
      body(s);
      return 0;
    } catch (const std::exception& e) {
      fail(s, callback, e.what());
    } catch (...) {
      fail(s, callback, "an exception that is not a std::exception");
    }
    return 1;
  }

  static void fail(Solve& s, const char* callback, const char* what) noexcept {
    try {
      s.error = std::string(callback) + ": " + what;
    } catch (...) {
      // no memory for the message: the engine still reports the failed callback
    }
#if LAYERBRAID_RESNET_ENGINE_EXTENSIONS
    if (s.core != nullptr) layerbraid_SetFailureText(s.core, s.error.c_str());
#endif
  }

  // The fine point index of time t (times are exact multiples of T / N up to round-off).
  int point_of(double t) const {
    const long p = std::lround(t / final_time * depth);
    if (p < 0 || p > depth) {
      throw std::logic_error("time t=" + std::to_string(t) + " is outside [0, " +
                             std::to_string(final_time) + "]");
    }
    return static_cast<int>(p);
  }

  // The interrupt check, if there is one: Interrupted (a failed callback) when it says stop.
  static void interrupt_if_asked(Solve& s) {
    const std::function<bool()>& check = s.impl->interrupt_check;
    if (check && check()) {
      s.interrupted = true;
      throw Interrupted("interrupted");
    }
  }

  // Called by the engine about every 50 ms while this rank waits for another one.
  static braid_Int poll_cb(void* data) {
    return guarded(as_app(static_cast<Solve*>(data)), "poll",
                   [](Solve& s) { interrupt_if_asked(s); });
  }

  static braid_Int step_cb(braid_App app, braid_Vector, braid_Vector, braid_Vector u,
                           braid_StepStatus status) {
    return guarded(app, "step", [&](Solve& s) {
      interrupt_if_asked(s);
      braid_Real tstart = 0, tstop = 0;
      braid_Int level = 0;
      braid_StepStatusGetTstartTstop(status, &tstart, &tstop);
      braid_StepStatusGetLevel(status, &level);
      const int sp = std::min<int>(level, s.spatial);
      if (spatial_of(u) != (s.low_states ? sp : 0)) {
        throw std::logic_error("a state of spatial index " + str(spatial_of(u)) +
                               " on level " + str(level) + ", which works at index " + str(sp));
      }
      Impl& m = *s.impl;
      auto step = [&](T* v) {
        if (s.adjoint) m.adjoint_step(v, tstart, tstop, level == 0, sp);
        else m.forward_step(v, tstart, tstop, level == 0, sp);
      };
      if (sp == 0 || s.low_states) step(data(u));
      else m.levels->low_resolution_update(data(u), sp, step);
    });
  }

  // Spatial coarsening from `level` to level + 1 (status level: the finer one): halve the
  // image while level < spatial, else copy.
  static braid_Int coarsen_cb(braid_App app, braid_Vector fu, braid_Vector* cu_ptr,
                              braid_CoarsenRefStatus status) {
    *cu_ptr = nullptr;
    return guarded(app, "coarsen", [&](Solve& s) {
      braid_Int level = 0;
      braid_CoarsenRefStatusGetLevel(status, &level);
      *cu_ptr = s.impl->move_between_levels(fu, level, s.spatial, true);
    });
  }

  // The correction from level + 1 back to `level`: each coarse pixel to its 2x2 block while
  // level < spatial, else a copy.
  static braid_Int refine_cb(braid_App app, braid_Vector cu, braid_Vector* fu_ptr,
                             braid_CoarsenRefStatus status) {
    *fu_ptr = nullptr;
    return guarded(app, "refine", [&](Solve& s) {
      braid_Int level = 0;
      braid_CoarsenRefStatusGetLevel(status, &level);
      *fu_ptr = s.impl->move_between_levels(cu, level, s.spatial, false);
    });
  }

  braid_Vector move_between_levels(braid_Vector v, int level, int spatial, bool down) const {
    const int from = std::min(down ? level : level + 1, spatial);
    const int to = std::min(down ? level + 1 : level, spatial);
    if (spatial_of(v) != from) {
      throw std::logic_error("a state of spatial index " + str(spatial_of(v)) + " moved " +
                             (down ? "down from" : "up to") + " level " + str(level) +
                             ", expected index " + str(from));
    }
    std::unique_ptr<T[]> block(reinterpret_cast<T*>(new_state(to)));
    const braid_Vector out = reinterpret_cast<braid_Vector>(block.get());
    const std::size_t n_to = levels->state_size(to);
    if (from == to) {
      std::memcpy(data(out), data(v), n_to * sizeof(T));
    } else if (down) {
      levels->restrict_state(data(v), from, data(out));
    } else {
      std::fill(data(out), data(out) + n_to, T(0));
      levels->refine_add(data(v), to, data(out));
    }
    block.release();
    return out;
  }

  // The step to point p applies layer p - 1; fine steps cache its input and sigma'(z).
  // Spatial index sp > 0: the layer on the halved images, with its coarse kernel.
  void forward_step(T* u, double tstart, double tstop, bool fine, int sp) {
    const int n = point_of(tstop) - 1;
    const LayerRange own = layout.owned_layers();
    if (!own.contains(n)) {
      throw std::logic_error("forward step to point " + str(n + 1) + " on rank " +
                             str(layout.rank()) + ", which does not own layer " + str(n));
    }
    Span<T> cu, cd;
    if (fine) {
      const std::size_t i = static_cast<std::size_t>(n - own.first) * n_state;
      cu = Span<T>(cache_u.data() + i, n_state);
      cd = Span<T>(cache_deriv.data() + i, n_state);
    }
    const double dt = tstop - tstart;
    const std::size_t k = static_cast<std::size_t>(sp);
    const CSpan<T> weight =
        sp == 0 ? CSpan<T>(params.weight(n))
                : CSpan<T>(coarse_weights[k - 1].data() +
                               static_cast<std::size_t>(n - own.first) * n_weight,
                           n_weight);
    std::visit([&](const auto& l) {
      l.template forward<T>(Span<T>(u, levels->state_size(sp)), batch, weight, params.bias(n),
                            dt, act, work, cu, cd);
    }, levels->layer(sp));
  }

  // The adjoint step to point n (adjoint time index N - n) applies layer n's transpose at
  // u_n; fine steps write layer n's gradient.
  void adjoint_step(T* lam, double tstart, double tstop, bool fine, int sp) {
    const int n = depth - point_of(tstop);
    const LayerRange back = layout.adjoint_layers();
    if (!back.contains(n)) {
      throw std::logic_error("adjoint step to point " + str(n) + " on rank " +
                             str(layout.rank()) + ", whose adjoint layers are [" +
                             str(back.first) + ", " + str(back.end()) + ")");
    }
    const std::size_t i = static_cast<std::size_t>(n - back.first);
    const AdjointLayer& a = adj[i];
    const double dt = tstop - tstart;
    const std::size_t k = static_cast<std::size_t>(sp), ns = levels->state_size(sp);
    const T* weight = sp == 0 ? a.weight : adjoint_coarse_weights[k - 1].data() + i * n_weight;
    const T* deriv = sp == 0 ? a.deriv : adjoint_coarse_derivs[k - 1].data() + i * ns;
    CSpan<T> u_in;
    Span<T> gw, gb;
    if (fine) {
      u_in = CSpan<T>(a.u, n_state);
      gw = Span<T>(a.grad_weight, n_weight);
      gb = Span<T>(a.grad_bias, n_bias);
    }
    std::visit([&](const auto& l) {
      l.template adjoint<T>(Span<T>(lam, ns), batch, CSpan<T>(weight, n_weight), dt,
                            CSpan<T>(deriv, ns), work, u_in, gw, gb);
    }, levels->layer(sp));
  }

  static braid_Int init_cb(braid_App app, braid_Real t, braid_Vector* u_ptr) {
    *u_ptr = nullptr;
    return guarded(app, "init", [&](Solve& s) {
      Impl& m = *s.impl;
      const braid_Vector v = m.new_state(0);
      T* u = data(v);
      const int index = m.point_of(t);  // the solve's time index
      const auto saved = s.restore.find(index);
      if (index == 0 && s.initial.size() == m.n_state) {
        std::memcpy(u, s.initial.data(), m.n_state * sizeof(T));
      } else if (saved != s.restore.end()) {
        std::memcpy(u, saved->second.data(), m.n_state * sizeof(T));
        s.restore.erase(saved);
      } else {
        std::fill(u, u + m.n_state, T(0));
      }
      *u_ptr = v;
    });
  }

  static braid_Int clone_cb(braid_App app, braid_Vector u, braid_Vector* v_ptr) {
    *v_ptr = nullptr;
    return guarded(app, "clone", [&](Solve& s) {
      const braid_Vector v = s.impl->new_state(spatial_of(u));
      std::memcpy(data(v), data(u), s.impl->size_of(u) * sizeof(T));
      *v_ptr = v;
    });
  }

  static braid_Int free_cb(braid_App, braid_Vector u) {
    delete_state(u);
    return 0;
  }

  // y <- alpha x + beta y (beta = 0: y <- alpha x, whatever y held, NaN included).
  static braid_Int sum_cb(braid_App app, braid_Real alpha, braid_Vector x, braid_Real beta,
                          braid_Vector y) {
    Solve& s = solve_of(app);
    if (spatial_of(x) != spatial_of(y)) {
      fail(s, "sum", ("states of spatial index " + str(spatial_of(x)) + " and " +
                      str(spatial_of(y)) + " added").c_str());
      return 1;
    }
    const std::size_t n = s.impl->size_of(x);
    // x and y are distinct states or the same one, never partly overlapping: element-wise,
    // either is safe, and restrict lets the loop be vectorised.
    const T* __restrict__ xs = data(x);
    T* __restrict__ ys = data(y);
    const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
    if (beta == 0.0) {
      if (alpha == 1.0) std::memcpy(ys, xs, n * sizeof(T));
      else for (std::size_t i = 0; i < n; ++i) ys[i] = a * xs[i];
    } else {
      for (std::size_t i = 0; i < n; ++i) ys[i] = a * xs[i] + b * ys[i];
    }
    return 0;
  }

  // Euclidean norm of the whole batch state, accumulated in double.
  static braid_Int norm_cb(braid_App app, braid_Vector u, braid_Real* norm_ptr) {
    const Solve& s = solve_of(app);
    const T* v = data(u);
    double sum = 0.0;
    const std::size_t n = s.impl->size_of(u);
    for (std::size_t i = 0; i < n; ++i) {
      const double x = static_cast<double>(v[i]);
      sum += x * x;
    }
    *norm_ptr = std::sqrt(sum);
    return 0;
  }

  // After the solve: keep the state at tstop (u_N forward, lambda_0 adjoint), and with
  // warm_start the C-points.
  static braid_Int access_cb(braid_App app, braid_Vector u, braid_AccessStatus status) {
    return guarded(app, "access", [&](Solve& s) {
      braid_Int done = 0, index = 0;
      braid_AccessStatusGetDone(status, &done);
      braid_AccessStatusGetTIndex(status, &index);
      if (!done) return;
      const std::size_t n = s.impl->n_state;
      if (index == s.impl->depth) {
        std::memcpy(s.final.data(), data(u), n * sizeof(T));
        s.has_final = true;
      }
      if (s.options.warm_start && index % s.options.cfactor == 0) {
        std::vector<T>& kept = s.kept[index];
        kept.assign(data(u), data(u) + n);
      }
      if (s.record) s.recorded[index].assign(data(u), data(u) + n);
    });
  }

  static braid_Int bufsize_cb(braid_App app, braid_Int* size_ptr, braid_BufferStatus) {
    const Solve& s = solve_of(app);
    *size_ptr = static_cast<braid_Int>(s.impl->n_state * sizeof(T) +
                                       (s.low_states ? header_bytes : 0));
    return 0;
  }

  // The values; with low-resolution states the array as it is, header included, and a
  // coarser state sends fewer bytes.
  static braid_Int pack_cb(braid_App app, braid_Vector u, void* buffer,
                           braid_BufferStatus status) {
    const Solve& s = solve_of(app);
    if (!s.low_states) {
      std::memcpy(buffer, data(u), s.impl->n_state * sizeof(T));
      return 0;
    }
    const std::size_t bytes = header_bytes + s.impl->size_of(u) * sizeof(T);
    std::memcpy(buffer, u, bytes);
    braid_BufferStatusSetSize(status, static_cast<braid_Real>(bytes));
    return 0;
  }

  static braid_Int unpack_cb(braid_App app, void* buffer, braid_Vector* u_ptr,
                             braid_BufferStatus) {
    *u_ptr = nullptr;
    return guarded(app, "bufunpack", [&](Solve& s) {
      if (!s.low_states) {
        const braid_Vector u = s.impl->new_state(0);
        std::memcpy(data(u), buffer, s.impl->n_state * sizeof(T));
        *u_ptr = u;
        return;
      }
      int sp = -1;
      std::memcpy(&sp, buffer, sizeof sp);
      if (sp < 0 || sp > s.spatial) {
        throw std::runtime_error("a message holds a state of spatial index " + str(sp) +
                                 ", outside [0, " + str(s.spatial) + "]");
      }
      const braid_Vector u = s.impl->new_state(sp);
      std::memcpy(data(u), static_cast<const char*>(buffer) + header_bytes,
                  s.impl->levels->state_size(sp) * sizeof(T));
      *u_ptr = u;
    });
  }

  // ---- agreement and exchanges between ranks ----

  // Every rank learns whether any rank's input check failed; then all throw the lowest
  // failing rank's message (std::invalid_argument), so no rank waits in a solve alone.
  void agree(const std::string& local_error) {
    const int size = layout.size();
    int mine = local_error.empty() ? size : layout.rank(), first = size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == size) return;
    std::string text = local_error;
    int len = static_cast<int>(text.size());
    MPI_Bcast(&len, 1, MPI_INT, first, comm);
    text.resize(static_cast<std::size_t>(len));
    MPI_Bcast(text.data(), len, MPI_CHAR, first, comm);
    if (first != layout.rank()) text += " (on rank " + str(first) + ")";
    throw std::invalid_argument(text);
  }

  void wait_all(const char* who) {
    if (requests.empty()) return;
    const int err = MPI_Waitall(static_cast<int>(requests.size()), requests.data(),
                                MPI_STATUSES_IGNORE);
    requests.clear();
    if (err != MPI_SUCCESS) {
      throw std::runtime_error(std::string(who) + ": MPI_Waitall failed with code " + str(err));
    }
  }

  enum Tag { tag_params = 1, tag_u = 2, tag_deriv = 3, tag_grads = 4 };

  // Before the adjoint: the parameters and caches of this rank's layers that another rank's
  // adjoint steps through go there. Layers are sent and received in increasing order, so
  // messages of one tag match in order.
  void send_adjoint_inputs() {
    const MPI_Datatype type = mpi_type<T>();
    const int me = layout.rank(), ns = static_cast<int>(n_state), nl = static_cast<int>(n_layer);
    for (std::size_t k = 0; k < foreign.size(); ++k) {
      const int src = layout.layer_owner(foreign[k]);
      requests.emplace_back();
      MPI_Irecv(foreign_params.data() + k * n_layer, nl, type, src, tag_params, comm,
                &requests.back());
      requests.emplace_back();
      MPI_Irecv(foreign_u.data() + k * n_state, ns, type, src, tag_u, comm, &requests.back());
      requests.emplace_back();
      MPI_Irecv(foreign_deriv.data() + k * n_state, ns, type, src, tag_deriv, comm,
                &requests.back());
    }
    const LayerRange own = layout.owned_layers();
    for (int n = own.first; n < own.end(); ++n) {
      const int dest = layout.adjoint_owner(n);
      if (dest == me) continue;
      const std::size_t i = static_cast<std::size_t>(n - own.first) * n_state;
      requests.emplace_back();
      MPI_Isend(params.layer(n).data(), nl, type, dest, tag_params, comm, &requests.back());
      requests.emplace_back();
      MPI_Isend(cache_u.data() + i, ns, type, dest, tag_u, comm, &requests.back());
      requests.emplace_back();
      MPI_Isend(cache_deriv.data() + i, ns, type, dest, tag_deriv, comm, &requests.back());
    }
    wait_all("Propagation::adjoint");
  }

  // After the adjoint: gradients computed here for other ranks' layers go to their owners.
  void return_gradients() {
    const MPI_Datatype type = mpi_type<T>();
    const int me = layout.rank(), nl = static_cast<int>(n_layer);
    const LayerRange own = layout.owned_layers();
    for (int n = own.first; n < own.end(); ++n) {
      const int src = layout.adjoint_owner(n);
      if (src == me) continue;
      requests.emplace_back();
      MPI_Irecv(grads.layer(n).data(), nl, type, src, tag_grads, comm, &requests.back());
    }
    for (std::size_t k = 0; k < foreign.size(); ++k) {
      requests.emplace_back();
      MPI_Isend(foreign_grads.data() + k * n_layer, nl, type, layout.layer_owner(foreign[k]),
                tag_grads, comm, &requests.back());
    }
    wait_all("Propagation::adjoint");
  }

  // ---- the two solves ----

  void forward(const LayerParameters<T>& given, CSpan<T> u0) {
    std::string error;
    const LayerRange own = layout.owned_layers(), got = given.layers();
    if (got.first != own.first || got.count != own.count || given.weight_size() != n_weight ||
        given.bias_size() != n_bias) {
      error = "Propagation::forward: params hold layers [" + str(got.first) + ", " +
              str(got.end()) + ") with weight/bias sizes " + str(long(given.weight_size())) +
              "/" + str(long(given.bias_size())) + "; rank " + str(layout.rank()) +
              " owns layers [" + str(own.first) + ", " + str(own.end()) + ") of sizes " +
              str(long(n_weight)) + "/" + str(long(n_bias)) + " (use make_parameters())";
    } else if (layout.has_first_point() && u0.size() != n_state) {
      error = "Propagation::forward: u0 has " + str(long(u0.size())) +
              " elements, expected state_size() = " + str(long(n_state));
    }
    agree(error);
    forward_ready = false;
    std::copy(given.values().data(), given.values().data() + given.values().size(),
              params.values().data());
    const LayerRange own_now = layout.owned_layers();
    levels->coarsen_layers(
        fwd.spatial, own_now.count,
        [&](std::size_t i) { return params.weight(own_now.first + int(i)).data(); },
        coarse_weights, [](std::size_t) { return static_cast<const T*>(nullptr); }, nullptr);
    fwd.initial = layout.has_first_point() ? u0 : CSpan<T>();
    drive(fwd);
    forward_ready = true;
  }

  void adjoint(CSpan<T> lambda_N) {
    std::string error;
    if (!forward_ready) {
      error = "Propagation::adjoint: no forward solve to take the states from; call forward() "
              "first";
    } else if (layout.has_last_point() && lambda_N.size() != n_state) {
      error = "Propagation::adjoint: lambda_N has " + str(long(lambda_N.size())) +
              " elements, expected state_size() = " + str(long(n_state));
    }
    agree(error);
    send_adjoint_inputs();
    levels->coarsen_layers(bwd.spatial, static_cast<int>(adj.size()),
                           [&](std::size_t i) { return adj[i].weight; }, adjoint_coarse_weights,
                           [&](std::size_t i) { return adj[i].deriv; }, &adjoint_coarse_derivs);
    std::fill(grads.values().data(), grads.values().data() + grads.values().size(), T(0));
    std::fill(foreign_grads.begin(), foreign_grads.end(), T(0));
    bwd.initial = layout.has_last_point() ? lambda_N : CSpan<T>();
    drive(bwd);
    return_gradients();
  }
};

// ------------------------------------------------------------------------------------------
// Propagation: the public face
// ------------------------------------------------------------------------------------------
namespace {

void check_problem(int depth, double final_time, std::int64_t batch) {
  if (depth < 1) throw std::invalid_argument("Propagation: depth=" + str(depth) + " must be >= 1");
  if (!(final_time > 0) || !std::isfinite(final_time)) {
    throw std::invalid_argument("Propagation: final_time=" + std::to_string(final_time) +
                                " must be a finite number > 0");
  }
  if (batch < 1) throw std::invalid_argument("Propagation: batch=" + str(batch) + " must be >= 1");
}

}  // namespace

template <class T>
Propagation<T>::Propagation(const Layer& layer, Activation act, int depth, double final_time,
                            std::int64_t batch, MPI_Comm comm, const SolverOptions& forward)
    : Propagation(layer, act, depth, final_time, batch, comm, forward, forward) {}

template <class T>
Propagation<T>::Propagation(const Layer& layer, Activation act, int depth, double final_time,
                            std::int64_t batch, MPI_Comm comm, const SolverOptions& forward,
                            const SolverOptions& adjoint) {
  check_problem(depth, final_time, batch);
  activation_name(act);  // throws for a value outside the enum
  forward.validate("Propagation (forward options)");
  adjoint.validate("Propagation (adjoint options)");
  use_one_blas_thread_per_rank();
  impl_ = std::make_unique<Impl>(layer, act, depth, final_time, batch, comm, forward, adjoint);
  // The activation passes' instruction set (LAYERBRAID_NATIVE_ISA) is chosen now, so that a bad
  // choice fails here, on every rank, rather than in the first step on some.
  std::string isa_error;
  try {
    active_isa();
  } catch (const std::invalid_argument& e) {
    isa_error = std::string("Propagation: ") + e.what();
  }
  impl_->agree(isa_error);
}

template <class T>
Propagation<T>::~Propagation() = default;
template <class T>
Propagation<T>::Propagation(Propagation&&) noexcept = default;
template <class T>
Propagation<T>& Propagation<T>::operator=(Propagation&&) noexcept = default;

template <class T>
const Layout& Propagation<T>::layout() const noexcept { return impl_->layout; }
template <class T>
std::size_t Propagation<T>::state_size() const noexcept { return impl_->n_state; }
template <class T>
double Propagation<T>::final_time() const noexcept { return impl_->final_time; }

template <class T>
LayerParameters<T> Propagation<T>::make_parameters() const {
  return LayerParameters<T>(impl_->layout.owned_layers(), impl_->n_weight, impl_->n_bias);
}

template <class T>
const SolveInfo& Propagation<T>::forward(const LayerParameters<T>& params, CSpan<T> u0) {
  const double start = MPI_Wtime();
  impl_->forward(params, u0);
  impl_->fwd.info.time_solve = MPI_Wtime() - start;
  return impl_->fwd.info;
}

template <class T>
CSpan<T> Propagation<T>::final_state() const noexcept {
  const auto& s = impl_->fwd;
  return s.has_final ? CSpan<T>(s.final.data(), s.final.size()) : CSpan<T>();
}

template <class T>
CSpan<T> Propagation<T>::state(int n) const {
  const LayerRange own = impl_->layout.owned_layers();
  if (!own.contains(n)) {
    throw std::out_of_range("Propagation::state: layer n=" + str(n) + " is not owned by rank " +
                            str(impl_->layout.rank()) + " (layers [" + str(own.first) + ", " +
                            str(own.end()) + "))");
  }
  return CSpan<T>(impl_->cache_u.data() + static_cast<std::size_t>(n - own.first) * impl_->n_state,
                  impl_->n_state);
}

template <class T>
const SolveInfo& Propagation<T>::adjoint(CSpan<T> lambda_N) {
  const double start = MPI_Wtime();
  impl_->adjoint(lambda_N);
  impl_->bwd.info.time_solve = MPI_Wtime() - start;
  return impl_->bwd.info;
}

template <class T>
CSpan<T> Propagation<T>::initial_adjoint() const noexcept {
  const auto& s = impl_->bwd;
  return s.has_final ? CSpan<T>(s.final.data(), s.final.size()) : CSpan<T>();
}

template <class T>
const LayerParameters<T>& Propagation<T>::gradient() const noexcept { return impl_->grads; }

template <class T>
const std::map<int, std::vector<T>>& Propagation<T>::kept_states(
    Direction direction) const noexcept {
  return direction == Direction::adjoint ? impl_->bwd.kept : impl_->fwd.kept;
}

template <class T>
void Propagation<T>::record_states(Direction direction, bool on) {
  auto& solve = direction == Direction::adjoint ? impl_->bwd : impl_->fwd;
  solve.record = on;
  solve.recorded.clear();
}

template <class T>
const std::map<int, std::vector<T>>& Propagation<T>::recorded_states(
    Direction direction) const noexcept {
  return direction == Direction::adjoint ? impl_->bwd.recorded : impl_->fwd.recorded;
}

template <class T>
void Propagation<T>::set_interrupt_check(std::function<bool()> check) {
  impl_->interrupt_check = std::move(check);
  impl_->set_poll_hook(impl_->fwd);
  impl_->set_poll_hook(impl_->bwd);
}

template <class T>
void Propagation<T>::restore_states(Direction direction, std::map<int, std::vector<T>> states) {
  for (const auto& [index, state] : states) {
    if (index < 0 || index > impl_->depth || state.size() != impl_->n_state) {
      throw std::invalid_argument(
          "Propagation::restore_states: state " + str(index) + " has " +
          str(long(state.size())) + " values; time indices lie in [0, " + str(impl_->depth) +
          "] and states have state_size() = " + str(long(impl_->n_state)) + " values");
    }
  }
  auto& solve = direction == Direction::adjoint ? impl_->bwd : impl_->fwd;
  solve.restore = std::move(states);
}

template class LayerParameters<double>;
template class LayerParameters<float>;
template class Propagation<double>;
template class Propagation<float>;

}  // namespace layerbraid::resnet
