// propagate (the driver, propagate.cpp): modelled mode. The engine driven as Propagation drives
// it, with an app whose callbacks compute nothing but spend the time of a cost table
// (propagate_costs.hpp): under SMPI smpi_execute_benched, under the real MPI a busy wait.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "layerbraid/resnet.hpp"
#include "layerbraid/resnet_app.hpp"
#include "propagate_costs.hpp"
#include "propagate_options.hpp"
#include "propagate_results.hpp"

// Under SMPI (smpicxx, LAYERBRAID_SMPI_BUILD): costs are simulated computation; the JSON's
// "simulated" says which.
#if defined(LAYERBRAID_SMPI_BUILD) || defined(SMPI_H)
#define PROPAGATE_UNDER_SMPI 1
#include <smpi/smpi.h>
#else
#define PROPAGATE_UNDER_SMPI 0
#endif

namespace propagate_driver {

// ------------------------------------------------------------------------------------------
// Modelled mode: the engine with an app that only spends the calibrated time
// ------------------------------------------------------------------------------------------
// One direction's costs, by spatial level s = 0..spatial (index s).
struct ModelApp {
  bool adjoint = false;
  int spatial = 0;          // --spatial (0 for dense)
  bool low_states = false;  // --spatial-states: the vectors of coarse levels are small images
  std::size_t header = 0;   // bytes before the state in a message (Propagation's header)
  bool set_size = false;    // pack reports its size (braid_BufferStatusSetSize)
  std::vector<std::size_t> bytes;  // of one state on level s
  double fine = 0, init = 0;
  // coarse: the step on time levels >= 1 (index min(level, spatial)); coarsen[s] / refine[s]:
  // between spatial levels s - 1 and s (index 0 unused)
  std::vector<double> coarse, clone, sum, norm, pack, unpack, coarsen, refine;
};

// One rank's part of the modelled forward + adjoint (MPI_COMM_WORLD duplicated).
class Model {
 public:
  Model(const Options& o, const Costs& c, MPI_Comm world);
  ~Model() { MPI_Comm_free(&comm_); }

  Run once();

 private:
  // Propagation checks its inputs on every rank with one MPI_Allreduce before each solve.
  void agree();

  void solve(ModelApp& app, int iters, int& it, int& levels, Profile& profile);

  // As Propagation: layers this rank owns whose adjoint steps run elsewhere send their
  // parameters (weight + bias) and the two cached states there; gradients come back after.
  void send_adjoint_inputs();
  void return_gradients();

  const Options& o_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::unique_ptr<lr::Layout> layout_;
  std::size_t ns_ = 0, nl_ = 0;
  ModelApp fwd_, bwd_;
  double prepare_forward_ = 0, prepare_adjoint_ = 0;  // seconds before each solve
  std::vector<int> foreign_, sent_;
  std::vector<double> recv_, send_, grad_in_;
};

}  // namespace propagate_driver
