/* threads: the worker pool behind par_run (see core/threads.h).
 * One generation counter and a condition variable wake the workers; the caller
 * runs ith = 0 itself. -DGAD_NO_THREADS removes pthreads entirely. */
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
#include <unistd.h>

static struct {
    int n;                 /* threads including the caller; 0 = not started */
    pthread_t *tid;        /* [n-1] workers */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;     /* bumped for each job */
    unsigned long start_gen; /* gen when the current pool was started */
    int pending;           /* workers still running the current job */
    int quit;
    par_fn fn;
    void *ctx;
    int busy;              /* a job is running: nested calls run serially */
} P = {0, NULL, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, NULL, NULL, 0};

static void *worker(void *arg) {
    int ith = (int)(size_t)arg;
    pthread_mutex_lock(&P.mu);
    unsigned long seen = P.start_gen; /* jobs before this pool started are not ours */
    for (;;) {
        while (P.gen == seen && !P.quit) pthread_cond_wait(&P.go, &P.mu);
        if (P.quit) break;
        seen = P.gen;
        par_fn fn = P.fn;
        void *ctx = P.ctx;
        int nth = P.n;
        pthread_mutex_unlock(&P.mu);
        fn(ctx, ith, nth);
        pthread_mutex_lock(&P.mu);
        if (--P.pending == 0) pthread_cond_signal(&P.done);
    }
    pthread_mutex_unlock(&P.mu);
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
    P.quit = 1;
    pthread_cond_broadcast(&P.go);
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < P.n - 1; i++) pthread_join(P.tid[i], NULL);
    free(P.tid);
    P.tid = NULL;
    P.n = 0;
    P.quit = 0;
}

void par_init(int n) {
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
            /* fall back to fewer threads rather than failing */
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
    if (n == 1 || P.busy) { fn(ctx, 0, 1); return; }
    pthread_mutex_lock(&P.mu);
    P.busy = 1;
    P.fn = fn;
    P.ctx = ctx;
    P.pending = n - 1;
    P.gen++;
    pthread_cond_broadcast(&P.go);
    pthread_mutex_unlock(&P.mu);
    fn(ctx, 0, n);
    pthread_mutex_lock(&P.mu);
    while (P.pending > 0) pthread_cond_wait(&P.done, &P.mu);
    P.busy = 0;
    pthread_mutex_unlock(&P.mu);
}
#endif
