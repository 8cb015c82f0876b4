// propagate: forward + backward propagation through a tanh ResNet (dense, or convolutional with
// optional spatial coarsening on the MGRIT levels) with MGRIT, timed.
// One source for the real MPI (mpiexec) and SimGrid SMPI (smpirun); see README.md here.
//
//   real      layerbraid::resnet::Propagation<double>: random weights, a random batch u_0 (or
//             --input FILE), the forward solve, then the adjoint solve from lambda_N = u_N (the
//             gradient of 0.5 |u_N|^2), giving every layer's weight and bias gradients.
//             --network dense (default): Dense(--width). --network conv: Conv(--channels,
//             --image HxW, --kernel), and with --spatial S the time level l works on images
//             halved min(l, S) times (SolverOptions::spatial_coarsen): by default full-size
//             states with low-resolution updates, with --spatial-states small states on the
//             coarse levels (SolverOptions::spatial_states).
//   modelled  the same engine, options and reverted-rank adjoint solve, with an app whose
//             callbacks do no arithmetic but take the time that callback costs (--costs, a
//             table written by --calibrate): under SMPI smpi_execute_benched(seconds) (the
//             simulated host computes that long), under the real MPI a busy wait. Vectors hold
//             no data but messages have the real size, and the exchanges Propagation makes
//             around the adjoint solve (boundary layers' parameters and caches, gradients back)
//             are sent with their real sizes. With --spatial S a coarse step costs the step at
//             its resolution (plus the moves of the low-resolution update); with
//             --spatial-states the vectors carry their resolution, the engine's spatial
//             coarsen/refine callbacks are set as Propagation sets them, and every cost and
//             message size is that resolution's. The iteration counts come
//             from --iters-forward / --iters-adjoint (a real run's counts: MGRIT's iterations do
//             not depend on the number of ranks).
//   --calibrate FILE   times each callback's work with the library's kernels and writes FILE.
//
// Rank 0 prints one summary line and, with --json FILE, writes one JSON object.
//
// Files (one concern each; the shared names in namespace propagate_driver):
//   propagate.cpp           real mode, the serial reference, reporting and main
//   propagate_options.*     options: parsing and checks, usage text, random parameters and u_0
//   propagate_costs.*       the cost table: its keys, the JSON reader (--costs), --calibrate
//   propagate_model.*       modelled mode: the app that spends the costs, the Model class
//   propagate_results.hpp   one run's per-rank results (Profile, Run)
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "layerbraid/resnet.hpp"
#include "layerbraid/resnet_app.hpp"
#include "propagate_costs.hpp"
#include "propagate_model.hpp"
#include "propagate_options.hpp"
#include "propagate_results.hpp"

namespace propagate_driver {
namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// ------------------------------------------------------------------------------------------
// Real mode
// ------------------------------------------------------------------------------------------
lr::SolverOptions solver_options(const Options& o, int iters) {
  lr::SolverOptions s;
  s.max_levels = o.levels;
  s.min_coarse = o.min_coarse;
  s.cfactor = o.cfactor;
  s.nrelax = o.nrelax;
  s.skip = o.skip;
  if (iters >= 0) {  // exactly `iters` iterations: a tolerance no residual reaches
    s.abs_tol = std::numeric_limits<double>::min();
    s.max_iter = std::max(iters, 1);
  } else {
    s.abs_tol = o.tol;
    s.max_iter = 100;
  }
  s.profile = true;
  s.spatial_coarsen = o.conv ? o.spatial : 0;
  s.spatial_states = o.spatial_states;
  return s;
}

struct RealSetup {
  std::unique_ptr<lr::Propagation<double>> prop;
  lr::LayerParameters<double> params;
  std::vector<double> u0;
};

// u_0 (rank 0 of comm) is `input` when given (--input), else N(0, 1).
RealSetup real_setup(const Options& o, MPI_Comm comm, const lr::SolverOptions& fo,
                     const lr::SolverOptions& ao, const std::vector<double>& input) {
  RealSetup s;
  s.prop = std::make_unique<lr::Propagation<double>>(o.layer(), lr::Activation::tanh,
                                                     static_cast<int>(o.depth), o.final_time,
                                                     o.batch, comm, fo, ao);
  s.params = s.prop->make_parameters();
  const lr::LayerRange own = s.params.layers();
  for (int n = own.first; n < own.end(); ++n) {
    fill_layer(o, n, s.params.weight(n), s.params.bias(n));
  }
  if (s.prop->layout().has_first_point()) s.u0 = o.input_file.empty() ? make_u0(o) : input;
  return s;
}

// lambda_N = u_N: the gradient of 0.5 |u_N|^2 (on the last rank).
Run real_once(RealSetup& s) {
  Run r;
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = MPI_Wtime();
  const lr::SolveInfo fi = s.prop->forward(s.params, s.u0);
  const double t1 = MPI_Wtime();
  const std::vector<double> lambda(s.prop->final_state().data(),
                                   s.prop->final_state().data() + s.prop->final_state().size());
  const lr::SolveInfo ai = s.prop->adjoint(lambda);
  const double t2 = MPI_Wtime();
  r.t_forward = t1 - t0;
  r.t_adjoint = t2 - t1;
  r.it_forward = fi.iterations;
  r.it_adjoint = ai.iterations;
  r.levels = fi.levels;
  r.profile.add(fi);
  r.profile.add(ai);
  return r;
}

// ------------------------------------------------------------------------------------------
// The serial reference on rank 0, and the gradient comparison
// ------------------------------------------------------------------------------------------
struct Reference {
  double time = -1, rel_error = -1;
};

Reference serial_reference(const Options& o, const RealSetup& par,
                           const std::vector<double>& input) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // The parallel gradients, layer after layer, gathered on rank 0 (owned ranges are in rank order).
  const lr::LayerParameters<double>& g = par.prop->gradient();
  const int mine = static_cast<int>(g.values().size());
  std::vector<int> counts(size), displs(size);
  MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<double> all;
  if (rank == 0) {
    for (int r = 1; r < size; ++r) displs[r] = displs[r - 1] + counts[r - 1];
    all.resize(static_cast<std::size_t>(displs[size - 1] + counts[size - 1]));
  }
  MPI_Gatherv(g.values().data(), mine, MPI_DOUBLE, all.data(), counts.data(), displs.data(),
              MPI_DOUBLE, 0, MPI_COMM_WORLD);
  Reference ref;
  if (rank == 0) {
    lr::SolverOptions serial;  // max_levels 1: sequential stepping, exact backpropagation
    serial.profile = false;
    RealSetup s = real_setup(o, MPI_COMM_SELF, serial, serial, input);
    const double t0 = MPI_Wtime();
    s.prop->forward(s.params, s.u0);
    const std::vector<double> lambda(s.prop->final_state().data(),
                                     s.prop->final_state().data() + s.prop->final_state().size());
    s.prop->adjoint(lambda);
    ref.time = MPI_Wtime() - t0;
    const lr::CSpan<double> gs = s.prop->gradient().values();
    if (gs.size() != all.size()) throw std::logic_error("gradient sizes differ");
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < gs.size(); ++i) {
      diff = std::max(diff, std::fabs(all[i] - gs[i]));
      scale = std::max(scale, std::fabs(gs[i]));
    }
    ref.rel_error = scale > 0 ? diff / scale : diff;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return ref;
}

// ------------------------------------------------------------------------------------------
// Reporting
// ------------------------------------------------------------------------------------------
std::string opt_number(bool given, double v) { return given ? json_number(v) : "null"; }

void report(const Options& o, int size, const Run& best, double time, double tf, double ta,
            const std::vector<double>& per_rank, const Reference& ref) {
  std::ostringstream j;
  j << "{\"mode\": \"" << (o.modelled ? "modelled" : "real") << "\", \"simulated\": "
    << (PROPAGATE_UNDER_SMPI ? "true" : "false") << ", \"ranks\": " << size
    << ", \"depth\": " << o.depth << ", \"width\": " << o.width << ", \"batch\": " << o.batch;
  if (o.conv) {  // dense runs keep the keys they always had
    j << ", \"network\": \"conv\", \"channels\": " << o.channels << ", \"height\": " << o.height
      << ", \"image_width\": " << o.image_width << ", \"kernel\": " << o.kernel
      << ", \"spatial\": " << o.spatial
      << ", \"spatial_states\": " << (o.spatial_states ? "true" : "false");
  }
  j << ", \"final_time\": " << json_number(o.final_time) << ", \"seed\": " << o.seed
    << ", \"levels\": " << o.levels << ", \"cfactor\": " << o.cfactor
    << ", \"min_coarse\": " << o.min_coarse << ", \"relax\": \""
    << (o.nrelax == 0 ? "F" : "FCF") << "\", \"skip\": " << (o.skip ? "true" : "false")
    << ", \"tol\": " << opt_number(o.tol_given, o.tol)
    << ", \"iters\": " << (o.iters >= 0 ? std::to_string(o.iters) : "null")
    << ", \"repeat\": " << o.repeat
    << ", \"iterations_forward\": " << best.it_forward
    << ", \"iterations_adjoint\": " << best.it_adjoint << ", \"levels_used\": " << best.levels
    << ", \"time\": " << json_number(time) << ", \"time_forward\": " << json_number(tf)
    << ", \"time_adjoint\": " << json_number(ta)
    << ", \"serial_time\": " << opt_number(ref.time >= 0, ref.time)
    << ", \"gradient_rel_error\": " << opt_number(ref.rel_error >= 0, ref.rel_error)
    << ", \"per_rank\": {";
  for (int f = 0; f < Profile::fields; ++f) {
    j << (f ? ", " : "") << "\"" << profile_names[f] << "\": [";
    for (int r = 0; r < size; ++r) {
      const double v = per_rank[static_cast<std::size_t>(r * Profile::fields + f)];
      j << (r ? ", " : "") << (f < 4 ? std::to_string(std::llround(v)) : json_number(v));
    }
    j << "]";
  }
  j << "}}\n";
  if (!o.json_file.empty()) {
    std::ofstream out(o.json_file);
    out << j.str();
    if (!out) throw std::runtime_error("--json " + o.json_file + ": cannot be written");
  }
  double steps = 0;
  for (int r = 0; r < size; ++r) steps += per_rank[static_cast<std::size_t>(r * Profile::fields)];
  std::string shape = "width=" + std::to_string(o.width);
  if (o.conv) {
    shape = "conv channels=" + std::to_string(o.channels) + " image=" +
            std::to_string(o.height) + "x" + std::to_string(o.image_width) + " kernel=" +
            std::to_string(o.kernel) + " spatial=" + std::to_string(o.spatial) +
            (o.spatial_states ? " (states)" : "");
  }
  std::printf("propagate %s%s: ranks=%d depth=%ld %s batch=%ld levels=%d(%d) cf=%d %s "
              "iters=%d/%d time=%.6g s (fwd %.6g, adj %.6g) steps=%.0f",
              o.modelled ? "modelled" : "real", PROPAGATE_UNDER_SMPI ? " (SMPI)" : "", size,
              o.depth, shape.c_str(), o.batch, o.levels, best.levels, o.cfactor,
              o.nrelax == 0 ? "F" : "FCF", best.it_forward, best.it_adjoint, time, tf, ta, steps);
  if (ref.time >= 0) {
    std::printf(" serial_time=%.6g s grad_rel_err=%.3e", ref.time, ref.rel_error);
  }
  std::printf("\n");
  std::fflush(stdout);
}

int run(int argc, char** argv) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  Options o;
  try {
    o = parse_options(argc, argv, size);
  } catch (const UsageError& e) {
    if (rank == 0) {
      if (std::string(e.what()) != "help") std::fprintf(stderr, "propagate: %s\n", e.what());
      std::fprintf(stderr, "%s", usage_text);
    }
    return std::string(e.what()) == "help" ? 0 : 2;
  }
  // --input: read and checked on rank 0 (which alone needs u_0); a bad file ends every rank
  // with code 2, as a bad argument does.
  std::vector<double> input;
  if (!o.input_file.empty()) {
    std::string error;
    if (rank == 0) {
      try {
        input = read_input(o);
      } catch (const UsageError& e) {
        error = e.what();
      }
    }
    int bad = error.empty() ? 0 : 1;
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (bad) {
      if (rank == 0) std::fprintf(stderr, "propagate: %s\n%s", error.c_str(), usage_text);
      return 2;
    }
  }
  lr::set_blas_threads(1);
  if (!o.calibrate_file.empty()) {
    if (rank == 0) calibrate(o);
    MPI_Barrier(MPI_COMM_WORLD);
    return 0;
  }

  std::vector<Run> runs;
  Reference ref;
  if (o.modelled) {
    const Costs costs = read_costs(o.costs_file, o);
    Model m(o, costs, MPI_COMM_WORLD);
    for (int k = 0; k < o.repeat; ++k) runs.push_back(m.once());
  } else {
    RealSetup s = real_setup(o, MPI_COMM_WORLD, solver_options(o, o.iters_forward),
                             solver_options(o, o.iters_adjoint), input);
    for (int k = 0; k < o.repeat; ++k) runs.push_back(real_once(s));
    if (o.serial_reference) ref = serial_reference(o, s, input);
  }
  // The fastest repetition by its total time (the slowest rank's); the first is a warm-up
  // when there are several.
  std::size_t best = runs.size() > 1 ? 1 : 0;
  double best_time = 0, best_f = 0, best_a = 0;
  for (std::size_t k = runs.size() > 1 ? 1 : 0; k < runs.size(); ++k) {
    double mine[3] = {runs[k].t_forward + runs[k].t_adjoint, runs[k].t_forward,
                      runs[k].t_adjoint};
    double all[3];
    MPI_Allreduce(mine, all, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (k == (runs.size() > 1 ? 1u : 0u) || all[0] < best_time) {
      best = k;
      best_time = all[0];
      best_f = all[1];
      best_a = all[2];
    }
  }
  double mine[Profile::fields];
  runs[best].profile.to(mine);
  std::vector<double> per_rank(rank == 0 ? static_cast<std::size_t>(size * Profile::fields) : 0);
  MPI_Gather(mine, Profile::fields, MPI_DOUBLE, per_rank.data(), Profile::fields, MPI_DOUBLE, 0,
             MPI_COMM_WORLD);
  if (rank == 0) report(o, size, runs[best], best_time, best_f, best_a, per_rank, ref);
  return 0;
}

}  // namespace
}  // namespace propagate_driver

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int code = 0;
  try {
    code = propagate_driver::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "propagate: rank %d: %s\n", propagate_driver::world_rank(), e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return code;
}
