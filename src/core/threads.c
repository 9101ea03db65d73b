/* threads: the worker pool behind par_run (see core/threads.h).
 * The caller runs ith = 0 itself; workers 1..n-1 wait for the next job.
 *
 * Waking a sleeping thread costs tens of microseconds (a futex round trip, more in a
 * VM), which would dominate the many small jobs of a forward pass. So both sides
 * spin first: a worker that finished a job polls the job counter for a while
 * (SPIN_ROUNDS) before it sleeps on a condition variable, and the caller polls the
 * count of unfinished workers before it sleeps. Polling needs atomics: with gcc or
 * clang (__atomic builtins) the pool spins; with any other compiler it only sleeps
 * and wakes through the mutex, which is slower but the same results.
 * Results never depend on timing: which ith runs what is fixed by (ith, nth) alone.
 * -DGAD_NO_THREADS removes pthreads entirely.
 * A process forked while the pool runs starts a new pool of its own when it needs one.
 * Not for: more than one thread calling par_run at the same time (jobs from inside
 * a worker run serially, nth = 1, as the header says). */
#include "core/threads.h"
#include "core/err.h"
#include <stdlib.h>

void par_range(long count, int ith, int nth, long *lo, long *hi) {
    long base = count / nth, rem = count % nth;
    *lo = ith * base + (ith < rem ? ith : rem);
    *hi = *lo + base + (ith < rem ? 1 : 0);
}

#ifdef GAD_NO_THREADS
void par_init(int n) { (void)n; }
int par_nthreads(void) { return 1; }
void par_run(par_fn fn, void *ctx) { fn(ctx, 0, 1); }
void par_shutdown(void) {}
#else
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#if defined(__GNUC__) || defined(__clang__)
#define SPIN 1
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define DEC(x) __atomic_sub_fetch(&(x), 1, __ATOMIC_ACQ_REL)
#else
#define SPIN 0
#define LOAD(x) (x)
#define STORE(x, v) ((x) = (v))
#define DEC(x) (--(x))
#endif
/* polls before sleeping (~0.1 ms on an idle core), giving the core away now and
 * then in case the thread we wait for is waiting for it (more threads than cores) */
#ifndef SPIN_ROUNDS
#define SPIN_ROUNDS 50000
#endif
#ifndef YIELD_EVERY
#define YIELD_EVERY 256
#endif

static struct {
    int n;                   /* threads including the caller; 0 = not started */
    pthread_t *tid;          /* [n-1] workers */
    pthread_mutex_t mu;      /* guards the sleeps; with SPIN == 0 every field */
    pthread_cond_t go, done;
    unsigned long gen;       /* bumped for each job (atomic) */
    unsigned long start_gen; /* gen when the current pool was started */
    int pending;             /* workers still running the current job (atomic) */
    int quit;                /* (atomic) */
    par_fn fn;               /* the job: written before gen is bumped */
    void *ctx;
    int busy;                /* a job is running: nested calls run serially (atomic) */
} P = {0, NULL, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, NULL, NULL, 0};

/* Wait until gen moves past `seen` or quit is set; returns with the mutex unlocked. */
static void wait_job(unsigned long seen) {
#if SPIN
    for (long i = 0; i < SPIN_ROUNDS; i++) {
        if (LOAD(P.gen) != seen || LOAD(P.quit)) return;
        if (i % YIELD_EVERY == YIELD_EVERY - 1) sched_yield();
    }
#endif
    pthread_mutex_lock(&P.mu);
    while (LOAD(P.gen) == seen && !LOAD(P.quit)) pthread_cond_wait(&P.go, &P.mu);
    pthread_mutex_unlock(&P.mu);
}

static void *worker(void *arg) {
    int ith = (int)(size_t)arg;
    unsigned long seen = LOAD(P.start_gen); /* jobs before this pool started are not ours */
    for (;;) {
        wait_job(seen);
        if (LOAD(P.quit)) break;
        seen = LOAD(P.gen);
        P.fn(P.ctx, ith, P.n);
        if (SPIN ? DEC(P.pending) == 0 : 1) {
            pthread_mutex_lock(&P.mu);
            if (!SPIN) --P.pending;
            if (P.pending == 0) pthread_cond_signal(&P.done);
            pthread_mutex_unlock(&P.mu);
        }
    }
    return NULL;
}

static int default_threads(void) {
    const char *e = getenv("GAD_THREADS");
    if (e && atoi(e) > 0) return atoi(e);
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

void par_shutdown(void) {
    if (P.n <= 1) { P.n = 0; return; }
    pthread_mutex_lock(&P.mu);
    STORE(P.quit, 1);
    pthread_cond_broadcast(&P.go);
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < P.n - 1; i++) pthread_join(P.tid[i], NULL);
    free(P.tid);
    P.tid = NULL;
    P.n = 0;
    STORE(P.quit, 0);
}

/* A child forked while the pool runs has none of its workers (and a worker may have
 * held the mutex at the fork): it starts afresh, with a new pool on first use. */
static void forget_pool_in_child(void) {
    free(P.tid);
    P.tid = NULL;
    P.n = 0;
    P.pending = 0;
    P.quit = 0;
    P.busy = 0;
    pthread_mutex_init(&P.mu, NULL);
    pthread_cond_init(&P.go, NULL);
    pthread_cond_init(&P.done, NULL);
}

void par_init(int n) {
    static int atfork_done = 0;
    if (!atfork_done) atfork_done = pthread_atfork(NULL, NULL, forget_pool_in_child) == 0;
    if (n <= 0) n = default_threads();
    if (n > 256) n = 256;
    if (P.n == n) return;
    par_shutdown();
    P.n = n;
    if (n == 1) return;
    P.start_gen = P.gen;
    P.tid = xcalloc((size_t)n - 1, sizeof(pthread_t));
    for (int i = 1; i < n; i++)
        if (pthread_create(&P.tid[i - 1], NULL, worker, (void *)(size_t)i) != 0) {
            /* fall back to fewer threads rather than failing; the ones started see
             * the new count before their first job (P.n is read per job) */
            P.n = i;
            break;
        }
}

int par_nthreads(void) {
    if (P.n == 0) par_init(0);
    return P.n;
}

void par_run(par_fn fn, void *ctx) {
    int n = par_nthreads();
    if (n == 1 || LOAD(P.busy)) { fn(ctx, 0, 1); return; }
    STORE(P.busy, 1);
    P.fn = fn;
    P.ctx = ctx;
    STORE(P.pending, n - 1);
    /* publish the job, then wake whoever sleeps (a worker that checks gen under
     * the mutex before this lock sees the new value or gets the broadcast) */
    pthread_mutex_lock(&P.mu);
    STORE(P.gen, P.gen + 1);
    pthread_cond_broadcast(&P.go);
    pthread_mutex_unlock(&P.mu);
    fn(ctx, 0, n);
#if SPIN
    for (long i = 0; i < SPIN_ROUNDS && LOAD(P.pending) > 0; i++)
        if (i % YIELD_EVERY == YIELD_EVERY - 1) sched_yield();
#endif
    pthread_mutex_lock(&P.mu);
    while (LOAD(P.pending) > 0) pthread_cond_wait(&P.done, &P.mu);
    pthread_mutex_unlock(&P.mu);
    STORE(P.busy, 0);
}
#endif
