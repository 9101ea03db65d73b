/* pingpong: the round trip of one cache line between two threads, in ns: what a value
 * written on one core costs to read on another. On this VM it is 50-110 ns most of the
 * time and 350-530 ns in stretches of a minute or so (after a large process, say);
 * gad's two-thread ResNet passes lose up to a third of their speed in those stretches,
 * so tools/bench/bench_compare.sh prints it beside every case group.
 * Two threads take turns on one counter (odd: the caller's turn is over, even: the
 * other's), ROUNDS times; the median of REPEATS such runs is printed.
 *   make build/pingpong && ./build/pingpong
 * Needs pthreads and the GCC/clang __atomic builtins. Not part of ./gad; not a test.
 * Not for: bandwidth; more than two threads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 100000
#define REPEATS 5

static long counter __attribute__((aligned(64))); /* the line that travels */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The other side: waits for each odd value and answers with the next even one. */
static void *answer(void *arg) {
    (void)arg;
    for (long i = 0; i < ROUNDS; i++) {
        while (__atomic_load_n(&counter, __ATOMIC_ACQUIRE) != 2 * i + 1) {
        }
        __atomic_store_n(&counter, 2 * i + 2, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* One run: ns per round trip, or -1 if the thread could not start. */
static double run(void) {
    pthread_t t;
    __atomic_store_n(&counter, 0, __ATOMIC_RELEASE);
    if (pthread_create(&t, NULL, answer, NULL) != 0) return -1.0;
    const double t0 = now();
    for (long i = 0; i < ROUNDS; i++) {
        __atomic_store_n(&counter, 2 * i + 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(&counter, __ATOMIC_ACQUIRE) != 2 * i + 2) {
        }
    }
    const double t1 = now();
    pthread_join(t, NULL);
    return (t1 - t0) / ROUNDS * 1e9;
}

static int cmpd(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    double ns[REPEATS];
    for (int r = 0; r < REPEATS; r++)
        if ((ns[r] = run()) < 0) {
            fprintf(stderr, "pingpong: cannot start a thread\n");
            return 1;
        }
    qsort(ns, REPEATS, sizeof ns[0], cmpd);
    printf("core-to-core round trip: %.0f ns (median of %d runs of %d)\n", ns[REPEATS / 2], REPEATS, ROUNDS);
    return 0;
}
