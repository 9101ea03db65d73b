/* gemm: single-precision matrix product, row-major, BLAS-like.
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
 * op(A) = A (transA = 0, A is [M,lda>=K]) or A^T (transA = 1, A is [K,lda>=M]);
 * likewise B ([K,ldb>=N] or, transposed, [N,ldb>=K]). beta = 0 ignores C's old
 * contents (NaN in C does not propagate).
 * Determinism contract: every C element is summed over k in the same order whatever
 * M, N, the position of the element and the thread count, so results are bitwise
 * independent of batching and of threads.
 * gemm() may use the thread pool; gemm_st() never does (call it from inside a worker).
 * gemm_ref() is the naive triple loop that tests compare against. */
#ifndef GAD_CORE_GEMM_H
#define GAD_CORE_GEMM_H

#include <stddef.h>

void gemm(int transA, int transB, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void gemm_st(int transA, int transB, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void gemm_ref(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* A packed once for many products (a convolution's weights, reused by every block
 * of columns): op(A) [Mall, K] in the layout gemm packs its blocks in, so that the
 * products below skip their own packing. gemm_packed_floats(Mall, K) floats; fill
 * it with gemm_pack over all row panels (gemm_mr() rows each, the last one zero-
 * padded): threads may pack disjoint panel ranges [p0, p1) side by side.
 * Borrows A; writes Ap only. */
int gemm_mr(void);
size_t gemm_packed_floats(int Mall, int K);
void gemm_pack(int transA, int Mall, int K, const float *A, int lda, float *Ap, int p0, int p1);
/* The layout, for a producer that writes packed values itself (no gemm_pack, no
 * copy): when K is one k-block (gemm_kblocks(K) == 1), row panel p is the block
 * Ap[p*MR*K .. (p+1)*MR*K) with op(A)(p*MR + i, k) at Ap[p*MR*K + k*MR + i], MR =
 * gemm_mr(), rows past Mall zero. (More k-blocks interleave: use gemm_pack.) */
/* C[M,N] = rows [m0, m0 + M) of the packed A . B (+ C when beta = 1; beta is 0 or 1),
 * B row-major [K, ldb >= N], single-threaded; m0 a multiple of gemm_mr(). Each C
 * element is the same chain as gemm's: the same bits. Borrows Ap, B; writes C only. */
void gemm_packed_st(int M, int N, int K, const float *Ap, int Mall, int m0, const float *B, int ldb, float beta,
                    float *C, int ldc);
/* Whether gemm would pack A for this product (rather than read it in place or run
 * it transposed): then a packed A costs nothing extra. */
int gemm_packs_a(int transA, int M, int N, int K);
/* C[M,N] = rows [m0, m0 + M) of the packed A . B' (+ C when beta = 1; beta is 0 or
 * 1), single-threaded, where B' has its rows scattered in one array:
 * B'(k, j) = B[off[k] + j] (an implicit im2col: each row of a convolution's column
 * matrix is a shifted window of its zero-bordered input). m0 a multiple of
 * gemm_mr(). Reads B[off[k] + j] for j up to N rounded up to 32, so the caller keeps
 * that much readable (the values past N are never used). Each C element is the same
 * chain as gemm's: the same bits. Borrows Ap, B, off; writes C only. */
void gemm_rows_st(int M, int N, int K, const float *Ap, int Mall, int m0, const float *B, const ptrdiff_t *off,
                  float beta, float *C, int ldc);

/* C (+)= A' . B^T, single-threaded, with A's rows scattered in one array:
 * A'(i, k) = A[off[i] + k] (read in place), B row-major [N, ldb >= K] (so op(B) = B^T:
 * a convolution's weight gradient, dw^T = X . dy^T, X's rows windows of a frame); C
 * element (i, j) at C[i*rs + j*cs]; beta is 0 or 1. Each C element is the same chain
 * as gemm's: the same bits. Borrows A, off, B; writes C only. */
void gemm_arows_st(int M, int N, int K, const float *A, const ptrdiff_t *off, const float *B, int ldb, float beta,
                   float *C, size_t rs, size_t cs);

/* B packed once for many products, by column panels of gemm_nr(): B [K, Nall] with
 * element (k, j) at B[roff[k] + j*cs] (row-major: roff[k] = k*ldb, cs = 1; transposed:
 * roff NULL, meaning roff[k] = k, and cs = ldb; or rows picked from anywhere: a
 * convolution's flipped kernel taps), in gemm_packed_b_floats(K, Nall) floats,
 * filled by gemm_pack_b over all panels (the last one zero-padded); threads may pack
 * disjoint panel ranges [p0, p1). Borrows B, roff; writes Bp only. */
int gemm_nr(void);
size_t gemm_packed_b_floats(int K, int Nall);
void gemm_pack_b(int K, int Nall, const float *B, const ptrdiff_t *roff, size_t cs, float *Bp, int p0, int p1);
/* C[M,N] = A' . columns [n0, n0 + N) of the packed B (+ C when beta = 1; beta is 0 or
 * 1), single-threaded, where A's rows are pointers sharing one set of offsets:
 * A'(i, k) = a[i][off[k]] (a direct convolution on small maps: row i is one output
 * position, a[i] where its window starts in a zero-bordered frame, off[k] a channel
 * and tap of the window). n0 a multiple of gemm_nr(). Each C element is the same
 * chain as gemm's: the same bits. Borrows a, off, Bp; writes C only. */
void gemm_pix_st(int M, int N, int K, const float *const *a, const ptrdiff_t *off, const float *Bp, int Nall, int n0,
                 float beta, float *C, int ldc);

/* The k-blocks gemm splits K into (depends on K alone): block kb of gemm_kblocks(K)
 * is [*k0, *k1). C gets c + t per block in order, t being one chain from 0 over the
 * block's k ascending, t = simd_madd1(a, b, t) (core/simd.h): a caller computing the
 * same product another way in this order gets the same bits. */
int gemm_kblocks(int K);
void gemm_kblock(int K, int kb, int *k0, int *k1);

#endif
