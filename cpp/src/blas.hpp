// Private: row-major gemm on the BLAS the library links, for float and double.
//
// The scipy-openblas32 wheel exports its CBLAS with a symbol prefix (scipy_cblas_dgemm), so
// that it cannot clash with another BLAS in the same process (NumPy's own, say); its cblas.h
// declares the prefixed names. CMake passes that prefix as BLAS_SYMBOL_PREFIX (and a suffix,
// for ILP64 builds, as BLAS_SYMBOL_SUFFIX), the macros the wheel's pkg-config file names; a
// system BLAS defines neither and gets the plain cblas_* names.
#pragma once

#include <cblas.h>

#include <climits>
#include <cstddef>
#include <stdexcept>
#include <string>

#ifndef BLAS_SYMBOL_PREFIX
#define BLAS_SYMBOL_PREFIX
#endif
#ifndef BLAS_SYMBOL_SUFFIX
#define BLAS_SYMBOL_SUFFIX
#endif
#define LAYERBRAID_BLAS_CAT3_(a, b, c) a##b##c
#define LAYERBRAID_BLAS_CAT3(a, b, c) LAYERBRAID_BLAS_CAT3_(a, b, c)
#define LAYERBRAID_CBLAS(name) LAYERBRAID_BLAS_CAT3(BLAS_SYMBOL_PREFIX, name, BLAS_SYMBOL_SUFFIX)

// OpenBLAS (the wheel's or a system one; its cblas.h includes openblas_config.h) has a thread
// count to set; other BLAS libraries are left as configured.
#if defined(OPENBLAS_CONFIG_H)
#define LAYERBRAID_BLAS_HAS_THREADS 1
#else
#define LAYERBRAID_BLAS_HAS_THREADS 0
#endif

namespace layerbraid::resnet::detail {

// A matrix dimension as the BLAS's integer, or std::length_error naming it.
inline int blas_int(std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(INT_MAX)) {
    throw std::length_error(std::string(what) + "=" + std::to_string(n) +
                            " exceeds the BLAS's 32-bit integer range (max " +
                            std::to_string(INT_MAX) + "); use a smaller batch");
  }
  return static_cast<int>(n);
}

// C (m x n) <- A' B', A' = A or A^T (m x k), B' = B or B^T (k x n); all row-major, dense
// (leading dimension = row length of the stored matrix).
inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, const double* a,
                 const double* b, double* c) {
  LAYERBRAID_CBLAS(cblas_dgemm)(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                                trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a,
                                trans_a ? m : k, b, trans_b ? k : n, 0.0, c, n);
}

inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a,
                 const float* b, float* c) {
  LAYERBRAID_CBLAS(cblas_sgemm)(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                                trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
                                trans_a ? m : k, b, trans_b ? k : n, 0.0f, c, n);
}

}  // namespace layerbraid::resnet::detail
