// C++ consumer of an installed layerbraid, written only against XBraid's C++ wrapper braid.hpp:
// the scalar test equation of examples/c/scalar_ode.c,
//
//    u' = -u,  u(0) = 1,  t in [0, 5],  backward Euler with dt = 1/2 (10 steps),
//
// as a BraidApp, solved by BraidCore::Drive with 2 levels, cfactor 2 and absolute tolerance
// 1e-6. Checks that the solution is the sequential one, u_i = (1 / 1.5)^i, and that the
// BraidUtil checks of the app's methods pass; prints, on rank 0,
//
//    cxx_consumer: iterations 4 nlevels 2 rnorms <r_0> <r_1> ... max_error <e>
//    cxx_consumer: OK
//
// (the residual history r_0 .. from BraidCore::GetRNorms, -1 where not computed), which
// tests/test_install_tree.py compares for 1 and 2 ranks. Exit status 0 on success.
#include <cmath>
#include <cstdio>
#include <vector>

#include <braid.hpp>

struct _braid_Vector_struct
{
   double value;
};

class ScalarODE : public BraidApp
{
public:
   double lambda;
   double max_error;   // largest |u_i - (1/1.5)^i| seen by Access at the end of the solve
   int final_points;   // fine points this rank saw at the end of the solve
   int steps;          // Step calls

   ScalarODE(MPI_Comm comm, double t0, double t1, int n)
      : BraidApp(comm, t0, t1, n), lambda(-1.0), max_error(0.0), final_points(0), steps(0)
   {
   }

   // (1 - lambda dt) u_new = u_old (+ fstop when a residual function is set)
   braid_Int Step(braid_Vector u_, braid_Vector ustop_, braid_Vector fstop_,
                  BraidStepStatus &pstatus) override
   {
      braid_Real t0 = 0.0, t1 = 0.0;
      (void)ustop_;
      pstatus.GetTstartTstop(&t0, &t1);
      if (fstop_ != NULL)
      {
         u_->value += fstop_->value;
      }
      u_->value /= 1.0 - lambda * (t1 - t0);
      steps++;
      return 0;
   }

   // r = (1 - lambda dt) u(tstop) - u(tstart); on entry r_ holds u(tstart)
   braid_Int Residual(braid_Vector u_, braid_Vector r_, BraidStepStatus &pstatus) override
   {
      braid_Real t0 = 0.0, t1 = 0.0;
      pstatus.GetTstartTstop(&t0, &t1);
      r_->value = (1.0 - lambda * (t1 - t0)) * u_->value - r_->value;
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
      braid_Real t = 0.0;
      braid_Int iter = 0, level = 0, done = 0, index = 0, wrapper_test = 0;
      astatus.GetTILD(&t, &iter, &level, &done);
      astatus.GetTIndex(&index);
      astatus.GetWrapperTest(&wrapper_test);
      if (done && level == 0 && !wrapper_test)
      {
         double exact = std::pow(1.0 / (1.0 - lambda * (tstop - tstart) / ntime), index);
         max_error = std::fmax(max_error, std::fabs(u_->value - exact));
         final_points++;
      }
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
   int rank = 0, failed = 0;
   MPI_Comm_rank(MPI_COMM_WORLD, &rank);

   const int ntime = 10;
   ScalarODE app(MPI_COMM_WORLD, 0.0, ntime / 2.0, ntime);

   // The app's methods through BraidUtil (logs go to a scratch file).
   {
      BraidUtil util;
      std::FILE *log = std::tmpfile();
      if (!util.TestSpatialNorm(&app, MPI_COMM_WORLD, log, 0.0) ||
          !util.TestBuf(&app, MPI_COMM_WORLD, log, 0.5))
      {
         if (rank == 0) std::printf("cxx_consumer: a BraidUtil test failed\n");
         failed = 1;
      }
      util.TestInitAccess(&app, MPI_COMM_WORLD, log, 0.0);
      util.TestClone(&app, MPI_COMM_WORLD, log, 0.0);
      util.TestSum(&app, MPI_COMM_WORLD, log, 0.0);
      if (log != NULL) std::fclose(log);
   }

   braid_Int niter = -1, nlevels = -1, nrequest = 0;
   std::vector<braid_Real> rnorms;
   {
      BraidCore core(MPI_COMM_WORLD, &app);
      core.SetMaxLevels(2);
      core.SetCFactor(-1, 2);
      core.SetAbsTol(1e-6);
      core.SetMaxIter(100);
      core.SetPrintLevel(0);
      core.Drive();
      core.GetNumIter(&niter);
      core.GetNLevels(&nlevels);
      nrequest = niter + 1;
      rnorms.assign(nrequest > 0 ? nrequest : 1, -2.0);
      core.GetRNorms(&nrequest, rnorms.data());
   }

   // every fine point seen once at the end, all equal to the sequential solution
   double local[2] = {app.max_error, (double)app.final_points}, global[2] = {0.0, 0.0};
   MPI_Allreduce(&local[0], &global[0], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
   MPI_Allreduce(&local[1], &global[1], 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
   if (global[0] > 1e-12 || global[1] != ntime + 1) failed = 1;
   if (niter < 1 || nrequest < 1) failed = 1;

   if (rank == 0)
   {
      std::printf("cxx_consumer: iterations %d nlevels %d rnorms", (int)niter, (int)nlevels);
      for (int i = 0; i < nrequest; i++) std::printf(" %.6e", rnorms[i]);
      std::printf(" max_error %.3e points %d\n", global[0], (int)global[1]);
      std::printf("cxx_consumer: %s\n", failed ? "FAILED" : "OK");
   }
   MPI_Finalize();
   return failed;
}
