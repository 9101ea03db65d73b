/* peak: measures this machine's fp32 peak in GFLOP/s, so that gemm's speed can be
 * stated as a fraction of it. Each thread runs CHAINS independent multiply-add
 * chains over WIDTH lanes, acc = acc * x + y, which the compiler turns into
 * vector FMAs (with -ffp-contract=fast and an FMA-capable -march) on registers only:
 * enough independent chains hide the FMA latency, so the loop runs at the FMA
 * issue rate. Prints the single-thread and the all-thread figure (one chain set per
 * thread, all started together), best of a few runs.
 *   make build/peak && ./build/peak [threads]      (default: the online cores)
 * Not part of ./gad; not a test. Not for: memory bandwidth, fp64, latency. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifndef GAD_NO_THREADS
#include <pthread.h>
#include <unistd.h>
#endif

#define CHAINS 12  /* independent vector accumulators (>= FMA latency x FMA ports) */
#define WIDTH 16   /* lanes per chain: one 512-bit vector, or two 256-bit ones */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* iters x CHAINS x WIDTH FMAs (2 flops each); the sum is returned so that nothing is
 * optimised away. x and y come through volatile so they are not constants. */
static float chains(long iters) {
    volatile float vx = 0.999f, vy = 1e-4f;
    float x = vx, y = vy, acc[CHAINS][WIDTH];
    for (int c = 0; c < CHAINS; c++)
        for (int l = 0; l < WIDTH; l++) acc[c][l] = 0.01f * (float)(c + l);
    for (long it = 0; it < iters; it++)
        for (int c = 0; c < CHAINS; c++)
            for (int l = 0; l < WIDTH; l++) acc[c][l] = acc[c][l] * x + y;
    float s = 0.0f;
    for (int c = 0; c < CHAINS; c++)
        for (int l = 0; l < WIDTH; l++) s += acc[c][l];
    return s;
}

static const double flops_per_iter = 2.0 * CHAINS * WIDTH;
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
    printf("fp32 peak, 1 thread:  %7.1f GFLOP/s\n", one);
    if (n > 1) {
        double all = measure(n, 5);
        printf("fp32 peak, %d threads: %7.1f GFLOP/s (%.2fx one)\n", n, all, all / one);
    }
    return 0;
}
