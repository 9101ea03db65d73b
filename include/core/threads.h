/* threads: a fixed pool of worker threads with ggml-style ith/nth partitioning.
 * par_run(fn, ctx) calls fn(ctx, ith, nth) once for every ith in [0, nth) and
 * returns when all are done; work is split by the callee from (ith, nth) alone, so
 * a result never depends on timing. Built without pthreads (-DGAD_NO_THREADS) it
 * runs everything on the caller with nth = 1.
 * Not for: nested parallelism (a call from inside a worker runs serially, nth = 1). */
#ifndef GAD_CORE_THREADS_H
#define GAD_CORE_THREADS_H

typedef void (*par_fn)(void *ctx, int ith, int nth);

/* Start the pool. n <= 0: GAD_THREADS from the environment, else the online cores.
 * Calling it again with another count restarts the pool. */
void par_init(int n);
int par_nthreads(void);  /* starts the default pool on first use */
void par_run(par_fn fn, void *ctx);
/* [lo, hi) of `count` items for thread ith of nth (contiguous, balanced). */
void par_range(long count, int ith, int nth, long *lo, long *hi);
void par_shutdown(void);

#endif
