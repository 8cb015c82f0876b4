// C++ consumer of an installed layerbraid, written only against XBraid's C++ wrapper braid.hpp:
// XBraid_Adjoint on upstream's scalar reference problem (examples/c/scalar_adjoint.c),
//
//    u' = lambda u,  u(0) = 1,  lambda = -1,  t in [0, 25],  50 backward Euler steps,
//    J = (1/50) sum_{i=0}^{50} u_i^2,  and dJ/dlambda,
//
// as a BraidApp with ObjectiveT, ObjectiveT_diff, Step_diff and ResetGradient, solved by one
// BraidCore::Drive after BraidCore::InitAdjoint (2 levels, cfactor 2, max_iter 20, absolute
// tolerance 1e-6 for state and adjoint, print level 1: the residual table). Prints, on rank 0,
//
//    cxx_adjoint: iterations <n> objective <J> gradient <dJ/dlambda> r_adj <r>
//    cxx_adjoint: OK
//
// with J and dJ/dlambda as %.14e (the gradient summed over the ranks), which
// tests/test_install_tree.py compares with upstream's reference run on 1 and 2 ranks.
#include <cmath>
#include <cstdio>

#include <braid.hpp>

struct _braid_Vector_struct
{
   double value;
};

class ScalarAdjoint : public BraidApp
{
public:
   double lambda;
   double gradient;   // dJ/dlambda of this rank's steps
   int bad_status;    // objective calls whose status was not a level-0 point in [0, ntime]

   ScalarAdjoint(MPI_Comm comm, double t0, double t1, int n)
      : BraidApp(comm, t0, t1, n), lambda(-1.0), gradient(0.0), bad_status(0)
   {
   }

   braid_Int Step(braid_Vector u_, braid_Vector ustop_, braid_Vector fstop_,
                  BraidStepStatus &pstatus) override
   {
      braid_Real t0 = 0.0, t1 = 0.0;
      (void)ustop_;
      pstatus.GetTstartTstop(&t0, &t1);
      if (fstop_ != NULL) u_->value += fstop_->value;
      u_->value /= 1.0 - lambda * (t1 - t0);
      return 0;
   }

   braid_Int Residual(braid_Vector u_, braid_Vector r_, BraidStepStatus &pstatus) override
   {
      braid_Real t0 = 0.0, t1 = 0.0;
      pstatus.GetTstartTstop(&t0, &t1);
      r_->value = (1.0 - lambda * (t1 - t0)) * u_->value - r_->value;
      return 0;
   }

   // u_bar_: the adjoint of the result on entry, of the input on return
   braid_Int Step_diff(braid_Vector ustop_, braid_Vector u_, braid_Vector ustop_bar_,
                       braid_Vector u_bar_, BraidStepStatus &pstatus) override
   {
      braid_Real t0 = 0.0, t1 = 0.0;
      (void)ustop_;
      (void)ustop_bar_;
      pstatus.GetTstartTstop(&t0, &t1);
      double d = 1.0 - lambda * (t1 - t0);
      gradient += u_->value * (t1 - t0) / (d * d) * u_bar_->value;
      u_bar_->value /= d;
      return 0;
   }

   braid_Int ObjectiveT(braid_Vector u_, BraidObjectiveStatus &ostatus,
                        braid_Real *objectiveT_ptr) override
   {
      braid_Int level = -1, index = -1;
      ostatus.GetLevel(&level);
      ostatus.GetTIndex(&index);
      if (level != 0 || index < 0 || index > ntime) bad_status++;
      *objectiveT_ptr = u_->value * u_->value / ntime;
      return 0;
   }

   braid_Int ObjectiveT_diff(braid_Vector u_, braid_Vector u_bar_, braid_Real F_bar,
                             BraidObjectiveStatus &ostatus) override
   {
      (void)ostatus;
      u_bar_->value = 2.0 * u_->value / ntime * F_bar;
      return 0;
   }

   braid_Int ResetGradient() override
   {
      gradient = 0.0;
      return 0;
   }

   braid_Int Clone(braid_Vector u_, braid_Vector *v_ptr) override
   {
      *v_ptr = new _braid_Vector_struct(*u_);
      return 0;
   }

   braid_Int Init(braid_Real t, braid_Vector *u_ptr) override
   {
      *u_ptr = new _braid_Vector_struct;
      (*u_ptr)->value = (t == tstart) ? 1.0 : 0.456;
      return 0;
   }

   braid_Int Free(braid_Vector u_) override
   {
      delete u_;
      return 0;
   }

   braid_Int Sum(braid_Real alpha, braid_Vector x_, braid_Real beta, braid_Vector y_) override
   {
      y_->value = alpha * x_->value + beta * y_->value;
      return 0;
   }

   braid_Int SpatialNorm(braid_Vector u_, braid_Real *norm_ptr) override
   {
      *norm_ptr = std::fabs(u_->value);
      return 0;
   }

   braid_Int Access(braid_Vector u_, BraidAccessStatus &astatus) override
   {
      (void)u_;
      (void)astatus;
      return 0;
   }

   braid_Int BufSize(braid_Int *size_ptr, BraidBufferStatus &bstatus) override
   {
      (void)bstatus;
      *size_ptr = (braid_Int)sizeof(double);
      return 0;
   }

   braid_Int BufPack(braid_Vector u_, void *buffer, BraidBufferStatus &bstatus) override
   {
      *static_cast<double *>(buffer) = u_->value;
      bstatus.SetSize((braid_Int)sizeof(double));
      return 0;
   }

   braid_Int BufUnpack(void *buffer, braid_Vector *u_ptr, BraidBufferStatus &bstatus) override
   {
      (void)bstatus;
      *u_ptr = new _braid_Vector_struct;
      (*u_ptr)->value = *static_cast<double *>(buffer);
      return 0;
   }
};

int main(int argc, char *argv[])
{
   MPI_Init(&argc, &argv);
   int rank = 0, failed = 0, bad_status = 0;
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);

   ScalarAdjoint app(MPI_COMM_WORLD, 0.0, 25.0, 50);
   braid_Int niter = -1;
   braid_Real objective = 0.0, rnorm_adj = -1.0, gradient = 0.0;
   {
      BraidCore core(MPI_COMM_WORLD, &app);
      core.InitAdjoint();
      core.SetMaxLevels(2);
      core.SetCFactor(-1, 2);
      core.SetMaxIter(20);
      core.SetAbsTol(1e-6);
      core.SetAbsTolAdjoint(1e-6);
      core.SetPrintLevel(1);
      core.Drive();
      core.GetNumIter(&niter);
      core.GetObjective(&objective);
      core.GetRNormAdjoint(&rnorm_adj);
   }
   // each rank holds the gradient of its own steps: the user sums it over the ranks
   MPI_Allreduce(&app.gradient, &gradient, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
   MPI_Allreduce(&app.bad_status, &bad_status, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
   if (bad_status != 0 || niter < 1) failed = 1;

   if (rank == 0)
   {
      std::printf("cxx_adjoint: iterations %d objective %.14e gradient %.14e r_adj %.6e\n",
                  (int)niter, objective, gradient, rnorm_adj);
      std::printf("cxx_adjoint: %s\n", failed ? "FAILED" : "OK");
   }
   MPI_Finalize();
   return failed;
}
