// layerbraid::resnet: forward and adjoint propagation through N residual layers, serial or
// layer-parallel with MGRIT, over the ranks of an MPI communicator.
//
// This is the C++ twin of python/layerbraid/propagate.py and layout.py:
//   - The forward solve is an engine solve over the points u_0 .. u_N (time t_p = p T / N);
//     the step to point p applies layer p - 1 with dt = tstop - tstart (h = T/N on the fine
//     grid, the longer coarse step on coarse grids). Fine-grid steps cache the layer's input
//     u_n and sigma'(z_n), which the adjoint needs.
//   - The adjoint solve runs over the same points in reverse order (time index N - n), with
//     reverted ranks: the engine gives each rank the mirror image of its forward block, so
//     lambda_n lives on the rank that holds u_n, the last rank starts from lambda_N and
//     rank 0 ends with lambda_0.
//     The step to point n applies layer n's transposed Jacobian at u_n with the cached
//     sigma'(z_n); only fine-grid steps write layer n's weight and bias gradients.
//   - Layer n's parameters live on the forward owner of point n + 1 (Layout::layer_owner).
//     The few layers (and caches) at block boundaries that another rank's adjoint steps need
//     are sent there before the adjoint solve, and their gradients are sent back.
//
// With max_levels = 1 (the default) both solves are plain sequential sweeps: exact
// backpropagation. Results do not depend on the number of ranks.
//
// Errors: bad arguments throw std::invalid_argument naming the bad value. Inputs are checked
// on every rank and agreed on before a solve, so a bad input on one rank makes every rank
// throw instead of hanging. An exception inside an engine callback is caught at the callback
// boundary (it never unwinds through the engine's C frames); the solve then fails on every
// rank and forward()/adjoint() throw std::runtime_error with the callback's message: on the
// rank where it happened a plain std::runtime_error, on the ranks the engine stopped because
// of it a RemoteFailure (with layerbraid's engine; see braid_layerbraid.h).
//
// Interrupts: an optional interrupt check (Propagation::set_interrupt_check) is asked at every
// step, and about every 50 ms while a rank waits for others inside the engine; when it says
// stop, the solve ends on every rank: that rank throws Interrupted, the others RemoteFailure.
// The library itself knows nothing of signals or of Python: the host decides what the check
// looks at (layerbraid._native: a process-wide flag that Python signal handlers set).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "layerbraid/resnet.hpp"

namespace layerbraid::resnet {

// A residual layer type: dense or convolutional.
using Layer = std::variant<Dense, Conv>;

// A contiguous range of layer indices [first, first + count).
struct LayerRange {
  int first = 0;
  int count = 0;
  int end() const noexcept { return first + count; }
  bool contains(int n) const noexcept { return n >= first && n < first + count; }
};

// Which rank holds which points and layers: the engine's block distribution of the N + 1
// points over `size` ranks (asked of the engine, _braid_GetBlockDistProc). With reverted
// ranks the engine mirrors each rank's block, so the adjoint's lambda_n sits with u_n.
class Layout {
 public:
  Layout(int depth, int size, int rank);

  int depth() const noexcept { return depth_; }
  int size() const noexcept { return size_; }
  int rank() const noexcept { return rank_; }

  int forward_owner(int point) const;  // holds u_point in the forward solve
  int adjoint_owner(int point) const;  // holds lambda_point (adjoint time index N - point):
                                       // the forward owner of point, by the mirror layout
  int layer_owner(int n) const;        // holds layer n's parameters: forward_owner(n + 1)

  LayerRange owned_layers() const noexcept { return owned_; }      // layer_owner(n) == rank
  LayerRange adjoint_layers() const noexcept { return adjoint_; }  // adjoint_owner(n) == rank
  bool has_first_point() const noexcept { return rank_ == 0; }         // u_0 and lambda_0
  bool has_last_point() const noexcept { return rank_ == size_ - 1; }  // u_N and lambda_N

 private:
  int block(int point) const;
  int depth_, size_, rank_;
  LayerRange owned_, adjoint_;
};

// The weights and biases of a contiguous range of layers, stored layer after layer as
// [weight (weight_size), bias (bias_size)]. Used for parameters and for gradients.
template <class T>
class LayerParameters {
 public:
  LayerParameters() = default;
  LayerParameters(LayerRange layers, std::size_t weight_size, std::size_t bias_size);

  LayerRange layers() const noexcept { return layers_; }
  bool holds(int n) const noexcept { return layers_.contains(n); }
  std::size_t weight_size() const noexcept { return weight_size_; }
  std::size_t bias_size() const noexcept { return bias_size_; }

  // Layer n's values (n must be in layers(); std::out_of_range otherwise).
  Span<T> weight(int n);
  CSpan<T> weight(int n) const;
  Span<T> bias(int n);
  CSpan<T> bias(int n) const;
  Span<T> layer(int n);  // weight then bias
  CSpan<T> layer(int n) const;

  // Every value, layer after layer.
  Span<T> values() noexcept { return Span<T>(values_.data(), values_.size()); }
  CSpan<T> values() const noexcept { return CSpan<T>(values_.data(), values_.size()); }

 private:
  std::size_t offset(int n) const;
  LayerRange layers_;
  std::size_t weight_size_ = 0, bias_size_ = 0;
  std::vector<T> values_;
};

// Options of one solve. The defaults give exact serial propagation (max_levels = 1).
struct SolverOptions {
  int max_levels = 1;     // >= 1; 1 = sequential stepping
  int min_coarse = 2;     // >= 1: coarsest grid has at least this many intervals
  int cfactor = 2;        // >= 2, every level
  int nrelax = 1;         // >= 0: 0 = F-relaxation, 1 = FCF, 2 = FCFCF
  int fine_nrelax = -1;   // >= 0: the finest level's relaxation instead of nrelax; -1 = nrelax
  double abs_tol = 1e-10; // > 0: stop when the residual norm is below it
  int max_iter = 100;     // >= 1 MGRIT iterations at most
  bool skip = true;       // skip the work of the first down-cycle (the initial guess is zero)
  bool warm_start = false;  // keep the engine's solution between calls as the initial guess
  int print_level = 0;    // the engine's printing (0 none, 1 residuals, 2 + statistics)
  // Time the engine's step calls and waits (layerbraid_SetTimeCalls), so that SolveInfo's
  // time_step, time_step_coarsest and time_wait are filled; its counts are filled either way.
  // (Against upstream XBraid: braid_SetTimings level 2, which also writes its timer file
  // braid_timings_<rank>.txt in the working directory after each solve.)
  bool profile = false;
  // Spatial coarsening (Conv layers only; 0 = off): time level l computes on images halved
  // s = min(l, spatial_coarsen) times in height and width (which must be divisible by
  // 2^spatial_coarsen), with R = the 2x2 mean, P = the copy of a coarse pixel to its 2x2 block,
  // each layer's Galerkin coarse kernel K_c = R K P (coarsen_kernel in resnet.hpp) and, in the
  // adjoint, sigma'(z_n) averaged by R. The solution the iteration converges to is the fine
  // one whatever the choice; the coarse levels only change how fast it gets there. Two kinds:
  //   spatial_states = false (default): the states stay full size on every level and a coarse
  //     step is u <- u + P^s (Phi_c(R^s u) - R^s u): the layer's update computed at low
  //     resolution (4^s times fewer operations), while the identity part of the residual layer
  //     carries the fine detail along. Messages keep their size.
  //   spatial_states = true: the coarse levels' states themselves are low resolution (the
  //     engine's braid_SetSpatialCoarsen/Refine), so messages shrink 4x per halving too. The
  //     coarse grid then cannot correct the fine detail, which a residual layer does not damp:
  //     that part of the error only converges by relaxation, about depth / cfactor iterations
  //     (measured in benchmarks/scaling; kept for that comparison and for smooth problems).
  int spatial_coarsen = 0;
  bool spatial_states = false;

  // std::invalid_argument naming the first bad value; `who` prefixes the message.
  void validate(const std::string& who) const;
};

// forward()/adjoint() on the rank whose interrupt check asked to stop the solve.
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// forward()/adjoint() on a rank that stopped because another rank's solve failed (a failed
// callback or an interrupt there); the message names that rank and its error.
class RemoteFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What one solve did.
struct SolveInfo {
  int iterations = 0;           // MGRIT iterations (0 for sequential stepping)
  int levels = 0;               // grid levels used
  std::vector<double> rnorms;   // residual history as braid_GetRNorms reports it (-1 = none)
  // This rank's share of the solve (layerbraid_GetProfile; 0 when built against upstream
  // XBraid, which has no such counts): calls of the layer step on every level and on the
  // coarsest one, point-to-point engine messages and the bytes sent; with
  // SolverOptions::profile the seconds in steps (all levels, coarsest level) and in waits for
  // other ranks. time_solve: seconds (MPI_Wtime; simulated time under SMPI) of the whole
  // forward()/adjoint() call on this rank, always filled.
  long steps = 0, steps_coarsest = 0, messages_sent = 0, messages_received = 0;
  double bytes_sent = 0, time_step = 0, time_step_coarsest = 0, time_wait = 0, time_solve = 0;
};

// Forward and adjoint propagation of a batch through `depth` residual layers of one kind and
// activation, on the ranks of `comm`. T is double or float. All ranks call every member that
// runs a solve (forward, adjoint) together.
template <class T>
class Propagation {
 public:
  // Throws std::invalid_argument for a bad depth (>= 1), final_time (finite, > 0), batch
  // (>= 1), options, more ranks than points (size > depth + 1), or a LAYERBRAID_NATIVE_ISA
  // that cannot be honoured on some rank (active_isa(); then on every rank). `adjoint`
  // defaults to the forward options. Collective over comm (duplicates it).
  Propagation(const Layer& layer, Activation act, int depth, double final_time,
              std::int64_t batch, MPI_Comm comm, const SolverOptions& forward = {});
  Propagation(const Layer& layer, Activation act, int depth, double final_time,
              std::int64_t batch, MPI_Comm comm, const SolverOptions& forward,
              const SolverOptions& adjoint);
  ~Propagation();
  Propagation(const Propagation&) = delete;
  Propagation& operator=(const Propagation&) = delete;
  Propagation(Propagation&&) noexcept;
  Propagation& operator=(Propagation&&) noexcept;

  const Layout& layout() const noexcept;
  std::size_t state_size() const noexcept;  // values of one state u_n (the whole batch)
  double final_time() const noexcept;

  // Zero parameters (or gradients) for the layers this rank owns.
  LayerParameters<T> make_parameters() const;

  // The forward solve from u_0 (read on rank 0 only; other ranks may pass an empty span) with
  // the parameters of this rank's layers (layers() == layout().owned_layers()). The
  // parameters are copied: the adjoint uses these values even if the caller changes them.
  const SolveInfo& forward(const LayerParameters<T>& params, CSpan<T> u0);
  // u_N after forward(): on the last rank; empty elsewhere (and before the first solve).
  CSpan<T> final_state() const noexcept;
  // u_n as the last forward solve's fine steps used it (the adjoint's cache), for the layers
  // n this rank owns; std::out_of_range otherwise.
  CSpan<T> state(int n) const;

  // The adjoint solve from lambda_N (read on the last rank only; others may pass an empty
  // span), with the states and parameters of the last forward(). Needs a forward() first.
  const SolveInfo& adjoint(CSpan<T> lambda_N);
  // lambda_0 after adjoint(): on rank 0; empty elsewhere.
  CSpan<T> initial_adjoint() const noexcept;
  // dLoss/dtheta_n of the layers this rank owns, after adjoint().
  const LayerParameters<T>& gradient() const noexcept;

  // Warm starts that outlive this object (checkpoints of one-shot training). With
  // warm_start, each solve keeps a copy of the C-points (time index a multiple of cfactor)
  // this rank holds after it; kept_states returns them by time index (the adjoint's time index
  // is N - n). restore_states makes the next solve of that direction start from the given
  // states, where this rank holds their points, instead of zero (and without the skipped
  // first down-cycle, which would discard them). Each state must have state_size() values.
  enum class Direction { forward, adjoint };
  const std::map<int, std::vector<T>>& kept_states(Direction direction) const noexcept;
  void restore_states(Direction direction, std::map<int, std::vector<T>> states);

  // Every point's state after each solve of that direction, for analysis (off by default:
  // it keeps N + 1 states, split over the ranks). recorded_states: the last solve's states at
  // the points this rank holds, by time index; empty while recording is off.
  void record_states(Direction direction, bool on);
  const std::map<int, std::vector<T>>& recorded_states(Direction direction) const noexcept;

  // Interrupting a solve: `check` (empty: none, the default) is called on this rank at the
  // start of every step of both solves, and about every 50 ms while this rank waits inside the
  // engine for another rank (with layerbraid's engine; upstream XBraid has no such wait hook).
  // When it returns true the solve stops on every rank: here forward()/adjoint() throw
  // Interrupted, on the others RemoteFailure. It runs on the thread that called forward() or
  // adjoint(), so it must be cheap; an exception it throws fails the solve like a callback's
  // (std::runtime_error here). The Propagation stays usable: the next solve starts afresh
  // (from zero, or from restored states; a warm start's stored solution is dropped).
  // Without a check the engine's waits block in MPI, which wakes at once when the message
  // arrives; with one they poll (test, yield, sleep up to 0.25 ms) so the check can run.
  void set_interrupt_check(std::function<bool()> check);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

extern template class LayerParameters<double>;
extern template class LayerParameters<float>;
extern template class Propagation<double>;
extern template class Propagation<float>;

}  // namespace layerbraid::resnet
