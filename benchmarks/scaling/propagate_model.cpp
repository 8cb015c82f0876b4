// propagate (the driver, propagate.cpp): modelled mode, the app's callbacks and the Model
// class. See propagate_model.hpp.
#include "propagate_model.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#include "braid.h"
#include "braid_layerbraid.h"

namespace propagate_driver {

namespace {

// ------------------------------------------------------------------------------------------
// Injecting a cost: simulated computation under SMPI, a busy wait under the real MPI.
// ------------------------------------------------------------------------------------------
void spend(double seconds) {
  if (seconds <= 0) return;
#if PROPAGATE_UNDER_SMPI
  smpi_execute_benched(seconds);
#else
  using clock = std::chrono::steady_clock;
  const auto until = clock::now() + std::chrono::duration<double>(seconds);
  while (clock::now() < until) {
  }
#endif
}

// Propagation's messages: the state's values; with low-resolution coarse states
// (--spatial-states) a 16-byte header (the state's spatial index) first, and pack reports the
// bytes at the state's resolution (braid_BufferStatusSetSize).
constexpr std::size_t message_header = 16;

// A vector of the modelled app: no data, only the spatial level of the image it stands for
// (0: full resolution; always 0 for dense networks and without --spatial).
struct Token {
  int s;
};

ModelApp* model(braid_App app) { return reinterpret_cast<ModelApp*>(app); }
braid_Vector token(int s) { return reinterpret_cast<braid_Vector>(new Token{s}); }
int level_of(braid_Vector u) { return reinterpret_cast<Token*>(u)->s; }

braid_Int m_step(braid_App app, braid_Vector, braid_Vector, braid_Vector, braid_StepStatus st) {
  braid_Int level = 0;
  braid_StepStatusGetLevel(st, &level);
  const ModelApp& m = *model(app);
  spend(level == 0 ? m.fine : m.coarse[std::min<std::size_t>(level, m.spatial)]);
  return 0;
}
braid_Int m_init(braid_App app, braid_Real, braid_Vector* u) {
  spend(model(app)->init);
  *u = token(0);
  return 0;
}
braid_Int m_clone(braid_App app, braid_Vector u, braid_Vector* v) {
  const int s = level_of(u);
  spend(model(app)->clone[s]);
  *v = token(s);
  return 0;
}
braid_Int m_free(braid_App, braid_Vector u) {
  delete reinterpret_cast<Token*>(u);
  return 0;
}
braid_Int m_sum(braid_App app, braid_Real, braid_Vector, braid_Real, braid_Vector y) {
  spend(model(app)->sum[level_of(y)]);
  return 0;
}
// A constant, nonzero norm: with tolerance 0 the engine never stops early.
braid_Int m_norm(braid_App app, braid_Vector u, braid_Real* norm) {
  spend(model(app)->norm[level_of(u)]);
  *norm = 1.0;
  return 0;
}
braid_Int m_access(braid_App, braid_Vector, braid_AccessStatus) { return 0; }
// The largest message (the engine takes the maximum over the levels): a full-size state.
braid_Int m_bufsize(braid_App app, braid_Int* size, braid_BufferStatus) {
  *size = static_cast<braid_Int>(model(app)->header + model(app)->bytes[0]);
  return 0;
}
// With spatial coarsening, the bytes of this level's state (as Propagation's pack reports).
braid_Int m_pack(braid_App app, braid_Vector u, void*, braid_BufferStatus status) {
  const ModelApp& m = *model(app);
  const int s = level_of(u);
  spend(m.pack[s]);
  if (m.set_size) {
    braid_BufferStatusSetSize(status, static_cast<braid_Real>(m.header + m.bytes[s]));
  }
  return 0;
}
braid_Int m_unpack(braid_App app, void*, braid_Vector* u, braid_BufferStatus status) {
  const ModelApp& m = *model(app);
  braid_Int level = 0;
  braid_BufferStatusGetLevel(status, &level);
  const int s = m.low_states ? std::min<int>(level, m.spatial) : 0;
  spend(m.unpack[s]);
  *u = token(s);
  return 0;
}
// The engine's spatial coarsen / refine between time levels l and l + 1 (the status gives the
// fine level l): below `spatial` the image is halved (2x2 means) or doubled (each coarse pixel
// on its 2x2 block); from there on a plain copy.
braid_Int m_scoarsen(braid_App app, braid_Vector, braid_Vector* cu,
                     braid_CoarsenRefStatus status) {
  const ModelApp& m = *model(app);
  braid_Int level = 0;
  braid_CoarsenRefStatusGetLevel(status, &level);
  const int from = std::min<int>(level, m.spatial), to = std::min<int>(level + 1, m.spatial);
  spend(from != to ? m.coarsen[std::size_t(to)] : m.clone[std::size_t(from)]);
  *cu = token(to);
  return 0;
}
braid_Int m_srefine(braid_App app, braid_Vector, braid_Vector* fu,
                    braid_CoarsenRefStatus status) {
  const ModelApp& m = *model(app);
  braid_Int level = 0;
  braid_CoarsenRefStatusGetLevel(status, &level);
  const int from = std::min<int>(level + 1, m.spatial), to = std::min<int>(level, m.spatial);
  spend(from != to ? m.refine[std::size_t(from)] : m.clone[std::size_t(from)]);
  *fu = token(to);
  return 0;
}

}  // namespace

Model::Model(const Options& o, const Costs& c, MPI_Comm world) : o_(o) {
  MPI_Comm_dup(world, &comm_);
  int size = 0, rank = 0;
  MPI_Comm_size(comm_, &size);
  MPI_Comm_rank(comm_, &rank);
  layout_ = std::make_unique<lr::Layout>(static_cast<int>(o.depth), size, rank);
  ns_ = o.state_size();
  nl_ = o.layer_size();
  const int S = o.conv ? o.spatial : 0;
  for (ModelApp* a : {&fwd_, &bwd_}) {
    a->spatial = S;
    a->low_states = o.spatial_states;
    a->header = o.spatial_states ? message_header : 0;
    a->set_size = o.spatial_states;
    a->init = c.get("init");
    a->coarsen.assign(1, 0.0);
    a->refine.assign(1, 0.0);
    for (int l = 0; l <= S; ++l) {
      a->bytes.push_back(o.state_size(l) * sizeof(double));
      a->coarse.push_back(
          c.get(level_name(a == &fwd_ ? "step_forward_coarse" : "step_adjoint_coarse", l)));
      a->clone.push_back(c.get(level_name("clone", l)));
      a->sum.push_back(c.get(level_name("sum", l)));
      a->norm.push_back(c.get(level_name("norm", l)));
      a->pack.push_back(c.get(level_name("pack", l)));
      a->unpack.push_back(c.get(level_name("unpack", l)));
      if (l > 0) {
        a->coarsen.push_back(c.get(level_name("coarsen", l)));
        a->refine.push_back(c.get(level_name("refine", l)));
      }
    }
  }
  fwd_.fine = c.get("step_forward_fine");
  bwd_.adjoint = true;
  bwd_.fine = c.get("step_adjoint_fine");
  if (!o.spatial_states) {
    // Full-size states: a step on a level of spatial index s > 0 restricts the state s
    // times, keeps a copy of the small image, steps it, subtracts the copy and refines the
    // update s times back onto the state.
    for (ModelApp* a : {&fwd_, &bwd_}) {
      for (int l = 1; l <= S; ++l) {
        double move = 0;
        for (int t = 1; t <= l; ++t) move += a->coarsen[t] + a->refine[t];
        a->coarse[l] += move + a->pack[l] + a->sum[l];
      }
    }
  }
  // Before each solve Propagation coarsens the kernels of its layers S times (forward: the
  // layers this rank owns; adjoint: those whose adjoint steps it takes, which also get
  // sigma'(z_n) restricted S times).
  if (S > 0) {
    const double kc = c.get("kernel_coarsen");
    double deriv = 0;
    for (int l = 1; l <= S; ++l) deriv += c.get(level_name("coarsen", l));
    prepare_forward_ = layout_->owned_layers().count * S * kc;
    prepare_adjoint_ = layout_->adjoint_layers().count * (S * kc + deriv);
  }
  const lr::LayerRange own = layout_->owned_layers(), back = layout_->adjoint_layers();
  for (int n = back.first; n < back.end(); ++n)
    if (!own.contains(n)) foreign_.push_back(n);
  for (int n = own.first; n < own.end(); ++n)
    if (layout_->adjoint_owner(n) != rank) sent_.push_back(n);
  recv_.assign(std::max<std::size_t>(1, foreign_.size() * (nl_ + 2 * ns_)), 0.0);
  send_.assign(std::max(ns_, nl_), 0.0);
}

Run Model::once() {
  Run r;
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = MPI_Wtime();
  agree();
  spend(prepare_forward_);
  solve(fwd_, o_.iters_forward, r.it_forward, r.levels, r.profile);
  const double t1 = MPI_Wtime();
  agree();
  send_adjoint_inputs();
  spend(prepare_adjoint_);
  int levels = 0;
  solve(bwd_, o_.iters_adjoint, r.it_adjoint, levels, r.profile);
  return_gradients();
  const double t2 = MPI_Wtime();
  r.t_forward = t1 - t0;
  r.t_adjoint = t2 - t1;
  return r;
}

// Propagation checks its inputs on every rank with one MPI_Allreduce before each solve.
void Model::agree() {
  int mine = 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm_);
}

void Model::solve(ModelApp& app, int iters, int& it, int& levels, Profile& profile) {
  braid_Core core = nullptr;
  if (braid_Init(comm_, comm_, 0.0, o_.final_time, static_cast<braid_Int>(o_.depth),
                 reinterpret_cast<braid_App>(&app), m_step, m_init, m_clone, m_free, m_sum,
                 m_norm, m_access, m_bufsize, m_pack, m_unpack, &core) != 0) {
    throw std::runtime_error("modelled: braid_Init failed");
  }
  braid_SetMaxLevels(core, o_.levels);
  braid_SetMinCoarse(core, o_.min_coarse);
  braid_SetCFactor(core, -1, o_.cfactor);
  braid_SetNRelax(core, -1, o_.nrelax);
  braid_SetSkip(core, o_.skip ? 1 : 0);
  braid_SetAbsTol(core, 0.0);
  braid_SetMaxIter(core, std::max(iters, 1));
  braid_SetPrintLevel(core, 0);
  braid_SetAccessLevel(core, 1);
  layerbraid_SetTimeCalls(core, 1);  // as SolverOptions::profile: step and wait times
  layerbraid_SetQuietFailures(core, 1);
  // no poll hook, as Propagation without an interrupt check: the engine's waits block in
  // MPI_Waitany (extern/braid/doc/waits.md)
  if (app.adjoint) braid_SetRevertedRanks(core, 1);
  if (app.spatial > 0 && app.low_states) {  // as Propagation: only with small states
    braid_SetSpatialCoarsen(core, m_scoarsen);
    braid_SetSpatialRefine(core, m_srefine);
  }
  const int err = braid_Drive(core);
  braid_Int n = 0, l = 0;
  braid_GetNumIter(core, &n);
  braid_GetNLevels(core, &l);
  layerbraid_Profile p;
  layerbraid_GetProfile(core, &p);
  braid_Destroy(core);
  if (err != 0) {
    throw std::runtime_error("modelled: braid_Drive failed with code " + std::to_string(err));
  }
  it = n;
  levels = l;
  profile.add(p);
}

// As Propagation: layers this rank owns whose adjoint steps run elsewhere send their
// parameters (weight + bias) and the two cached states there; gradients come back after.
void Model::send_adjoint_inputs() {
  std::vector<MPI_Request> req;
  const int ns = static_cast<int>(ns_), nl = static_cast<int>(nl_);
  for (std::size_t k = 0; k < foreign_.size(); ++k) {
    const int src = layout_->layer_owner(foreign_[k]);
    double* base = recv_.data() + k * (nl_ + 2 * ns_);
    req.resize(req.size() + 3);
    MPI_Irecv(base, nl, MPI_DOUBLE, src, 1, comm_, &req[req.size() - 3]);
    MPI_Irecv(base + nl_, ns, MPI_DOUBLE, src, 2, comm_, &req[req.size() - 2]);
    MPI_Irecv(base + nl_ + ns_, ns, MPI_DOUBLE, src, 3, comm_, &req[req.size() - 1]);
  }
  for (int n : sent_) {
    const int dest = layout_->adjoint_owner(n);
    req.resize(req.size() + 3);
    MPI_Isend(send_.data(), nl, MPI_DOUBLE, dest, 1, comm_, &req[req.size() - 3]);
    MPI_Isend(send_.data(), ns, MPI_DOUBLE, dest, 2, comm_, &req[req.size() - 2]);
    MPI_Isend(send_.data(), ns, MPI_DOUBLE, dest, 3, comm_, &req[req.size() - 1]);
  }
  MPI_Waitall(static_cast<int>(req.size()), req.data(), MPI_STATUSES_IGNORE);
}

void Model::return_gradients() {
  std::vector<MPI_Request> req(sent_.size() + foreign_.size());
  const int nl = static_cast<int>(nl_);
  grad_in_.resize(std::max<std::size_t>(1, sent_.size() * nl_));
  std::size_t i = 0;
  for (std::size_t k = 0; k < sent_.size(); ++k) {
    MPI_Irecv(grad_in_.data() + k * nl_, nl, MPI_DOUBLE, layout_->adjoint_owner(sent_[k]), 4,
              comm_, &req[i++]);
  }
  for (std::size_t k = 0; k < foreign_.size(); ++k) {
    MPI_Isend(send_.data(), nl, MPI_DOUBLE, layout_->layer_owner(foreign_[k]), 4, comm_,
              &req[i++]);
  }
  MPI_Waitall(static_cast<int>(req.size()), req.data(), MPI_STATUSES_IGNORE);
}

}  // namespace propagate_driver
