/* peak: measures this machine's fp32 peak in GFLOP/s for the build's ISA, so that
 * gemm's speed can be stated as a fraction of it. Each thread runs CHAINS independent
 * chains of vector multiply-adds, acc = simd_madd(acc, x, y) (core/simd.h: the FMA
 * instruction of the ISA, or a multiply and an add where it has none, written out,
 * not left to the compiler's vectoriser or contraction), in named register
 * variables: enough independent chains hide the latency, so the loop runs at the
 * issue rate whatever the tuning and optimisation level. Prints the single-thread
 * and the all-thread figure (one chain set per thread, all started together), best
 * of a few runs.
 *   make build/peak && ./build/peak [threads]      (default: the online cores)
 * Not part of ./gad; not a test. Not for: memory bandwidth, fp64, latency. */
#include "core/simd.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifndef GAD_NO_THREADS
#include <pthread.h>
#include <unistd.h>
#endif

/* independent vector accumulators: >= latency x ports of every ISA seen (4 x 2 for
 * FMAs, 6 x 2 for a multiply and an add), and with x and y in the register file */
#define CHAINS (SIMD_REGS >= 32 ? 16 : SIMD_REGS >= 16 ? 12 : SIMD_REGS - 2)
#define CHAIN16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
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
static long iters = 20000000;  /* ~0.1-0.5 s per run on a modern core */
static volatile float sink;

#ifndef GAD_NO_THREADS
static void *thread_main(void *arg) {
    (void)arg;
    sink = chains(iters);
    return NULL;
}
#endif

/* GFLOP/s of n threads running the chains at once (best of `reps`). */
static double measure(int n, int reps) {
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
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
        double g = n * flops_per_iter * (double)iters / (now() - t0) / 1e9;
        if (g > best) best = g;
    }
    return best;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 0;
#ifndef GAD_NO_THREADS
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
#endif
    if (n <= 0) n = 1;
    /* calibrate: about 0.2 s per run */
    iters = 1000000;
    double t0 = now();
    sink = chains(iters);
    double dt = now() - t0;
    if (dt > 0) iters = (long)(iters * 0.2 / dt) + 1;
    double one = measure(1, 5);
    printf("fp32 peak (%s), 1 thread:  %7.1f GFLOP/s\n", SIMD_ISA, one);
    if (n > 1) {
        double all = measure(n, 5);
        printf("fp32 peak (%s), %d threads: %7.1f GFLOP/s (%.2fx one)\n", SIMD_ISA, n, all, all / one);
    }
    return 0;
}
