/*
 * Delta correction and Lyapunov estimation (doc/delta.md): the options, the status functions
 * that hand basis vectors and exponents to step and access, and the hooks the cycle calls.
 */
#include <math.h>
#include <string.h>

#include "core_internal.h"
#include "delta.h"

/* ---- options ---- */

braid_Int braid_SetDeltaCorrection(braid_Core core, braid_Int rank,
                                   braid_PtFcnInitBasis basis_init,
                                   braid_PtFcnInnerProd inner_prod)
{
   const char *fn = "braid_SetDeltaCorrection";
   CHECK_CORE(fn);
   CHECK_NOT_BUILT(fn);
   if (rank < 0)
   {
      return _braid_Error(fn, "rank = %d is invalid; it must be >= 0 (0 turns Delta correction "
                          "off)", (int) rank);
   }
   if (rank > 0 && (basis_init == NULL || inner_prod == NULL))
   {
      return _braid_Error(fn, "basis_init and inner_prod must not be NULL when rank > 0 "
                          "(rank = %d)", (int) rank);
   }
   core->delta_rank = rank;
   core->basis_init = basis_init;
   if (inner_prod != NULL) core->inner_prod = inner_prod;
   return _braid_Error(fn, "Delta correction is not implemented yet");
}

braid_Int braid_SetDeferDelta(braid_Core core, braid_Int level, braid_Int iter)
{
   const char *fn = "braid_SetDeferDelta";
   CHECK_CORE(fn);
   CHECK_NOT_BUILT(fn);
   if (level < 1 || iter < 0)
   {
      return _braid_Error(fn, "level = %d, iter = %d is invalid; Delta correction acts on "
                          "coarse levels (level >= 1) from an iteration >= 0", (int) level,
                          (int) iter);
   }
   core->delta_defer_level = level;
   core->delta_defer_iter = iter;
   return 0;
}

braid_Int braid_SetLyapunovEstimation(braid_Core core, braid_Int relax, braid_Int cglv,
                                      braid_Int exponents)
{
   const char *fn = "braid_SetLyapunovEstimation";
   CHECK_CORE(fn);
   CHECK_NOT_BUILT(fn);
   if (relax < 0 || relax > 1 || cglv < 0 || cglv > 1 || exponents < 0 || exponents > 1)
   {
      return _braid_Error(fn, "relax = %d, cglv = %d, exponents = %d: each must be 0 or 1",
                          (int) relax, (int) cglv, (int) exponents);
   }
   core->lyap_relax = relax;
   core->lyap_cglv = cglv;
   core->lyap_exponents = exponents;
   core->lyapunov = relax || cglv || exponents;
   return 0;
}

/* ---- status functions ---- */

#define S ((_braid_Status *) status)

braid_Int braid_StatusGetDeltaRank(braid_Status status, braid_Int *rank_ptr)
{
   if (status == NULL || rank_ptr == NULL) return braid_ERROR_ARG;
   *rank_ptr = S->delta_rank;
   return 0;
}

braid_Int braid_StatusGetBasisVec(braid_Status status, braid_Vector *v_ptr, braid_Int index)
{
   if (status == NULL || v_ptr == NULL) return braid_ERROR_ARG;
   *v_ptr = (S->basis != NULL && index >= 0 && index < S->delta_rank) ? S->basis[index] : NULL;
   return 0;
}

braid_Int braid_StatusGetLocalLyapExponents(braid_Status status, braid_Real *exp_ptr,
                                            braid_Int *num_returned)
{
   braid_Int n;
   if (status == NULL || num_returned == NULL || (exp_ptr == NULL && *num_returned > 0))
   {
      return braid_ERROR_ARG;
   }
   n = S->lyap_exps == NULL ? 0 : _braid_min(*num_returned, S->delta_rank);
   if (n > 0) memcpy(exp_ptr, S->lyap_exps, (size_t) n * sizeof(braid_Real));
   *num_returned = n < 0 ? 0 : n;
   return 0;
}

braid_Int braid_StatusSetBasisSize(braid_Status status, braid_Real size)
{
   if (status == NULL || !(size >= 0.0)) return braid_ERROR_ARG;
   S->basis_size = size;
   return 0;
}

#undef S

braid_Int braid_StepStatusGetDeltaRank(braid_StepStatus s, braid_Int *rank_ptr)
{ return braid_StatusGetDeltaRank((braid_Status) s, rank_ptr); }
braid_Int braid_StepStatusGetBasisVec(braid_StepStatus s, braid_Vector *v_ptr, braid_Int index)
{ return braid_StatusGetBasisVec((braid_Status) s, v_ptr, index); }
braid_Int braid_AccessStatusGetDeltaRank(braid_AccessStatus s, braid_Int *rank_ptr)
{ return braid_StatusGetDeltaRank((braid_Status) s, rank_ptr); }
braid_Int braid_AccessStatusGetBasisVec(braid_AccessStatus s, braid_Vector *v_ptr,
                                        braid_Int index)
{ return braid_StatusGetBasisVec((braid_Status) s, v_ptr, index); }
braid_Int braid_AccessStatusGetLocalLyapExponents(braid_AccessStatus s, braid_Real *exp_ptr,
                                                  braid_Int *num_returned)
{ return braid_StatusGetLocalLyapExponents((braid_Status) s, exp_ptr, num_returned); }
braid_Int braid_BufferStatusSetBasisSize(braid_BufferStatus s, braid_Real size)
{ return braid_StatusSetBasisSize((braid_Status) s, size); }

void _braid_DeltaFree(braid_Core core)
{
   (void) core;
}

/* ---- braid_Test* of the Delta callbacks ---- */

braid_Int braid_TestInnerProd(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t1,
                              braid_Real t2, braid_PtFcnInit init, braid_PtFcnFree free_fn,
                              braid_PtFcnSum sum, braid_PtFcnInnerProd inner_prod)
{
   (void) app; (void) comm_x; (void) fp; (void) t1; (void) t2; (void) init; (void) free_fn;
   (void) sum; (void) inner_prod;
   return _braid_Error("braid_TestInnerProd", "not implemented yet");
}

braid_Int braid_TestDelta(braid_App app, MPI_Comm comm_x, FILE *fp, braid_Real t, braid_Real dt,
                          braid_Int rank, braid_PtFcnInit myinit,
                          braid_PtFcnInitBasis myinit_basis, braid_PtFcnAccess myaccess,
                          braid_PtFcnFree myfree, braid_PtFcnClone myclone,
                          braid_PtFcnSum mysum, braid_PtFcnBufSize bufsize,
                          braid_PtFcnBufPack bufpack, braid_PtFcnBufUnpack bufunpack,
                          braid_PtFcnInnerProd myinner_prod, braid_PtFcnStep mystep)
{
   (void) app; (void) comm_x; (void) fp; (void) t; (void) dt; (void) rank; (void) myinit;
   (void) myinit_basis; (void) myaccess; (void) myfree; (void) myclone; (void) mysum;
   (void) bufsize; (void) bufpack; (void) bufunpack; (void) myinner_prod; (void) mystep;
   return _braid_Error("braid_TestDelta", "not implemented yet");
}
