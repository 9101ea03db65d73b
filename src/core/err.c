/* err: implementation of the error buffer and checked allocation (see core/err.h).
 * The message buffer is process-global: parsers run on the main thread.
 * Large blocks are offered to the kernel for transparent huge pages (Linux's
 * madvise(MADV_HUGEPAGE), a hint, compiled only where it exists): with 4 KiB pages
 * a 500 MB model costs ~128k first-touch faults and the TLB misses of strided
 * reads; huge pages cut both by 512x. Nothing else changes: same memory, same bits. */
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* madvise and MADV_HUGEPAGE beside _POSIX_C_SOURCE */
#endif
#include "core/err.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

static char err_buf[1024];
static int err_usage; /* the current message is about a bad argument */

static int err_vset(int usage, const char *fmt, va_list ap) {
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    err_usage = usage;
    return -1;
}

int err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(0, fmt, ap);
    va_end(ap);
    return -1;
}

int err_set_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(1, fmt, ap);
    va_end(ap);
    return -1;
}

int err_is_usage(void) { return err_usage; }

const char *err_get(void) { return err_buf; }

int err_prefix(const char *prefix) {
    char tmp[sizeof err_buf];
    if (snprintf(tmp, sizeof tmp, "%s: %s", prefix, err_buf) < 0) return -1; /* long: cut (checked: no gcc warning) */
    memcpy(err_buf, tmp, sizeof err_buf);
    return -1;
}

static void (*warn_hook)(const char *, void *);
static void *warn_ud;
static long warn_count;

void err_warn(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    warn_count++;
    if (warn_hook) warn_hook(msg, warn_ud);
    else fprintf(stderr, "gad: warning: %s\n", msg);
}

void err_set_warn_hook(void (*hook)(const char *msg, void *ud), void *ud) {
    warn_hook = hook;
    warn_ud = ud;
}

long err_warn_count(void) { return warn_count; }

static int (*oom_hook)(size_t, void *);
static void *oom_ud;

void err_set_oom_hook(int (*hook)(size_t bytes, void *ud), void *ud) {
    oom_hook = hook;
    oom_ud = ud;
}

/* An allocation of n bytes failed: returns when the hook asks to try again (it
 * freed memory); else the message and exit(1). */
static void oom(size_t n) {
    if (oom_hook && oom_hook(n, oom_ud)) return;
    if (n == SIZE_MAX) fprintf(stderr, "gad: out of memory (more bytes than this machine can address)\n");
    else fprintf(stderr, "gad: out of memory (%zu bytes)\n", n);
    exit(1);
}

size_t size_mul(size_t a, size_t b) { return b && a > SIZE_MAX / b ? SIZE_MAX : a * b; }
size_t size_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)4 << 20) /* smaller blocks keep the allocator's pages */

/* Ask for huge pages on the whole 2 MiB pages inside [p, p + n). A hint: failure
 * (no THP, or THP off) changes nothing, so it is not reported. */
static void advise_huge(void *p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n < HUGE_MIN) return;
    uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p, (void)n;
#endif
}

void *xmalloc(size_t n) {
    void *p;
    while (!(p = malloc(n ? n : 1))) oom(n);
    advise_huge(p, n);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    if (size && count > (size_t)-1 / size) { /* no retry can help */
        if (oom_hook) (void)oom_hook((size_t)-1, oom_ud);
        fprintf(stderr, "gad: out of memory (%zu x %zu bytes)\n", count, size);
        exit(1);
    }
    void *p;
    while (!(p = calloc(count ? count : 1, size ? size : 1))) oom(count * size);
    advise_huge(p, count * size); /* before the first touch: calloc's large blocks are fresh zero pages */
    return p;
}

void *xrealloc(void *q, size_t n) {
    void *p;
    while (!(p = realloc(q, n ? n : 1))) oom(n);
    return p;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

/* posix_memalign, so that the block starts at the pointer we hand out: a buffer
 * kept on purpose until exit (gemm's per-thread packing buffers) is then "still
 * reachable" for valgrind, not "possibly lost" as an over-allocated block whose
 * only pointer is interior would be. */
void *xmalloc_aligned(size_t n) {
    void *p = NULL;
    while (posix_memalign(&p, n >= HUGE_MIN ? HUGE_PAGE : 64, n ? n : 1) != 0 || !p) oom(n);
    advise_huge(p, n);
    return p;
}

void xfree_aligned(void *p) { free(p); }

void gad_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "gad: internal error: %s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}
