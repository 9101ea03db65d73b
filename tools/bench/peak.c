/* peak: the machine's fp32 peak for the build's ISA, and gemm's speed against it, in
 * one process (`make perfcheck` runs it with --check).
 *
 * The peak: CHAINS independent chains of vector multiply-adds per thread,
 * acc = simd_madd(acc, x, y) (core/simd.h: the ISA's FMA instruction, or a multiply
 * and an add where it has none, written out, not left to the compiler's vectoriser
 * or contraction), in named register variables: enough chains hide the latency, so
 * the loop runs at the issue rate whatever the tuning and optimisation level.
 * sgemm: C = A B, n x n x n, through gemm() (or gemm_st with one thread).
 * Each round measures the peak and then every sgemm size, so the two see the same
 * machine (a shared one changes speed from second to second); each is the best of
 * runs of about the same length (20-30 ms) for about 0.3 s, and a figure the best of
 * the rounds.
 *
 *   make build/peak && ./build/peak [--threads N] [--rounds R] [--size N[,N...]]
 *                                   [--check MIN]
 *   --threads N   threads for both (default 1: timed by the thread's CPU clock, so
 *                 the time other processes hold the core is not counted)
 *   --rounds R    rounds (default 3)
 *   --size LIST   sgemm sizes (default 1024)
 *   --check MIN   exit 1 when the first size's sgemm is below MIN x the peak
 * Not part of ./gad; not a test. Not for: memory bandwidth, fp64, latency. */
#include "core/gemm.h"
#include "core/simd.h"
#include "core/threads.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef GAD_NO_THREADS
#include <pthread.h>
#endif

/* independent vector accumulators: >= latency x ports of every ISA seen (4 x 2 for
 * FMAs, 6 x 2 for a multiply and an add), and with x and y in the register file */
#define CHAINS (SIMD_REGS >= 32 ? 16 : SIMD_REGS >= 16 ? 12 : SIMD_REGS - 2)
#define CHAIN16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

/* With one thread, the calling thread's CPU time: the seconds another process holds
 * the core are not counted (the machines are shared); with more, the wall clock. */
static int use_thread_clock;
static double now(void) {
    struct timespec t;
    clock_gettime(use_thread_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* iters x CHAINS x SIMD_W multiply-adds (2 flops each); the sum is returned so that
 * nothing is optimised away. x and y come through volatile so they are not constants. */
static float chains(long iters) {
    volatile float vx = 0.999f, vy = 1e-4f;
    const simd_v x = simd_splat(vx), y = simd_splat(vy);
#define DECL(c) simd_v a##c = simd_splat(0.01f * (float)(c));
#define STEP(c) if (c < CHAINS) a##c = simd_madd(a##c, x, y);
#define SUM(c) if (c < CHAINS) { simd_store(out, a##c); for (int l = 0; l < SIMD_W; l++) s += out[l]; }
    CHAIN16(DECL)
    for (long it = 0; it < iters; it++) { CHAIN16(STEP) }
    float s = 0.0f, out[SIMD_W];
    CHAIN16(SUM)
    return s;
}

static const double flops_per_iter = 2.0 * CHAINS * SIMD_W;
static long iters = 1000000;
static volatile float sink;

#ifndef GAD_NO_THREADS
static void *thread_main(void *arg) {
    (void)arg;
    sink = chains(iters);
    return NULL;
}
#endif

/* GFLOP/s of n threads running the chains at once, one run. */
static double peak_run(int n) {
    double t0 = now();
#ifndef GAD_NO_THREADS
    pthread_t tid[256];
    int started = 0;
    for (int i = 1; i < n && i < 256; i++)
        if (pthread_create(&tid[started], NULL, thread_main, NULL) == 0) started++;
    sink = chains(iters);
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    n = started + 1;
#else
    n = 1;
    sink = chains(iters);
#endif
    return n * flops_per_iter * (double)iters / (now() - t0) / 1e9;
}

/* The best of runs of about 20 ms for about 0.3 s: runs as long as one sgemm 1024^3
 * call, so that both figures are the best of the same kind of time slice. */
static double peak_once(int n) {
    double best = 0.0, start = now();
    for (int run = 0; run < 3 || (run < 100 && now() - start < 0.3); run++) {
        double g = peak_run(n);
        best = g > best ? g : best;
    }
    return best;
}

/* GFLOP/s of sgemm n^3, the best of enough calls for about 0.3 s. */
static double sgemm_once(int n, int threads, const float *A, const float *B, float *C) {
    double best = 0.0, start = now();
    for (int call = 0; call < 3 || (call < 50 && now() - start < 0.3); call++) {
        double t0 = now();
        if (threads == 1) gemm_st(0, 0, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        else gemm(0, 0, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        double g = 2.0 * n * (double)n * n / (now() - t0) / 1e9;
        if (g > best) best = g;
    }
    return best;
}

static void usage(void) {
    fprintf(stderr, "usage: peak [--threads N] [--rounds R] [--size N[,N...]] [--check MIN]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int threads = 1, rounds = 3, nsizes = 0, sizes[8];
    double check = 0.0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--threads") && v) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && v) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--check") && v) check = atof(argv[++i]);
        else if (!strcmp(argv[i], "--size") && v) {
            for (char *p = argv[++i]; *p && nsizes < 8;) {
                sizes[nsizes++] = (int)strtol(p, &p, 10);
                if (*p == ',') p++;
                else if (*p) usage();
            }
        } else usage();
    }
    if (threads < 1 || threads > 256 || rounds < 1) usage();
    if (!nsizes) sizes[nsizes++] = 1024;
    for (int s = 0; s < nsizes; s++)
        if (sizes[s] < 1 || sizes[s] > 16384) usage();
    par_init(threads);
    use_thread_clock = threads == 1;

    /* calibrate the peak loop: about 20 ms per run (the fastest of a few tries) */
    double dt = 1e30;
    for (int i = 0; i < 5; i++) {
        double t0 = now();
        sink = chains(iters);
        dt = now() - t0 < dt ? now() - t0 : dt;
    }
    if (dt > 0) iters = (long)((double)iters * 0.02 / dt) + 1;

    int nmax = 0;
    for (int s = 0; s < nsizes; s++) nmax = sizes[s] > nmax ? sizes[s] : nmax;
    size_t nn = (size_t)nmax * nmax;
    float *A = malloc(nn * sizeof(float)), *B = malloc(nn * sizeof(float)), *C = malloc(nn * sizeof(float));
    if (!A || !B || !C) { fprintf(stderr, "peak: out of memory\n"); return 1; }
    for (size_t i = 0; i < nn; i++) {
        A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        B[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
        C[i] = 0.0f;
    }
    double peak = 0.0, best[8] = {0};
    for (int r = 0; r < rounds; r++) {
        double p = peak_once(threads);
        peak = p > peak ? p : peak;
        for (int s = 0; s < nsizes; s++) {
            double g = sgemm_once(sizes[s], threads, A, B, C);
            best[s] = g > best[s] ? g : best[s];
        }
    }
    printf("fp32 peak (%s), %d thread%s: %7.1f GFLOP/s (best of %d rounds)\n", SIMD_ISA, threads,
           threads > 1 ? "s" : "", peak, rounds);
    for (int s = 0; s < nsizes; s++)
        printf("sgemm %d^3, %d thread%s:   %7.1f GFLOP/s = %.2f of the peak\n", sizes[s], threads,
               threads > 1 ? "s" : "", best[s], best[s] / peak);
    free(A); free(B); free(C);
    par_shutdown();
    if (check > 0.0 && best[0] < check * peak) {
        printf("perfcheck: sgemm %d^3 at %.2f of the peak, below %.2f\n", sizes[0], best[0] / peak, check);
        return 1;
    }
    if (check > 0.0) printf("perfcheck: sgemm %d^3 at %.2f of the peak (>= %.2f): ok\n", sizes[0], best[0] / peak, check);
    return 0;
}
