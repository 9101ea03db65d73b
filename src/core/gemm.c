/* gemm: matrix product (see core/gemm.h). This first version partitions rows of C
 * over the pool and runs a plain loop; a blocked, packed micro-kernel replaces it. */
#include "core/gemm.h"
#include "core/threads.h"
#include "core/err.h"

#define AT(P, ld, i, j, t) ((t) ? (P)[(size_t)(j) * (ld) + (i)] : (P)[(size_t)(i) * (ld) + (j)])

void gemm_ref(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += AT(A, lda, i, k, transA) * AT(B, ldb, k, j, transB);
            float *c = &C[(size_t)i * ldc + j];
            *c = alpha * s + (beta == 0.0f ? 0.0f : beta * *c);
        }
}

void gemm_st(int transA, int transB, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_ref(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

typedef struct {
    int tA, tB, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} GemmJob;

static void gemm_worker(void *p, int ith, int nth) {
    GemmJob *j = p;
    long lo, hi;
    par_range(j->M, ith, nth, &lo, &hi);
    if (hi <= lo) return;
    const float *A = j->tA ? j->A + lo : j->A + (size_t)lo * j->lda;
    gemm_st(j->tA, j->tB, (int)(hi - lo), j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb, j->beta,
            j->C + (size_t)lo * j->ldc, j->ldc);
}

void gemm(int transA, int transB, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    GemmJob j = {transA, transB, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
    if ((double)M * N * K < 1e6) { gemm_worker(&j, 0, 1); return; }
    par_run(gemm_worker, &j);
}
