// Row-major GEMM on raw pointers through the Fortran BLAS that libtorch_cpu is linked with
// (MKL on x86 wheels, OpenBLAS elsewhere): the same sgemm_/dgemm_ ABI that ATen's own BLAS
// kernels declare. Used on small, cache-resident blocks inside the fused CPU kernels.
#pragma once

#include <algorithm>
#include <cstdint>

extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
}

namespace matnet::cpu {

inline void fortran_gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                         const float* alpha, const float* a, const int* lda, const float* b,
                         const int* ldb, const float* beta, float* c, const int* ldc) {
  sgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

inline void fortran_gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                         const double* alpha, const double* a, const int* lda, const double* b,
                         const int* ldb, const double* beta, double* c, const int* ldc) {
  dgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// C (rows×cols) = op(A) op(B) + beta·C, all row-major, where op(A) is rows×inner and op(B) is
// inner×cols; `transpose_a` means A is stored inner×rows (likewise B). A row-major C is a
// column-major Cᵀ = op(B)ᵀ op(A)ᵀ, so BLAS is called with the operands swapped.
// Blocks are small (sizes fit in int); an empty inner dimension leaves beta·C.
template <typename T>
void gemm_row_major(bool transpose_a, bool transpose_b, int64_t rows, int64_t cols, int64_t inner,
                    const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (rows == 0 || cols == 0) return;
  if (inner == 0) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t col = 0; col < cols; ++col) c[r * ldc + col] = beta == T(0) ? T(0) : beta * c[r * ldc + col];
    return;
  }
  const char ta = transpose_a ? 'T' : 'N', tb = transpose_b ? 'T' : 'N';
  const int m = static_cast<int>(cols), n = static_cast<int>(rows), k = static_cast<int>(inner);
  const int lda_ = static_cast<int>(std::max<int64_t>(lda, 1));
  const int ldb_ = static_cast<int>(std::max<int64_t>(ldb, 1));
  const int ldc_ = static_cast<int>(std::max<int64_t>(ldc, 1));
  const T one = T(1);
  fortran_gemm(&tb, &ta, &m, &n, &k, &one, b, &ldb_, a, &lda_, &beta, c, &ldc_);
}

}  // namespace matnet::cpu
