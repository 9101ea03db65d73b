/* err: implementation of the error buffer and checked allocation (see core/err.h).
 * The message buffer is process-global: parsers run on the main thread. */
#include "core/err.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err_buf[1024];
static int err_usage; /* the current message is about a bad argument */

int err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    err_usage = 0;
    return -1;
}

int err_set_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    err_usage = 1;
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

static void oom(size_t n) {
    fprintf(stderr, "gad: out of memory (%zu bytes)\n", n);
    exit(1);
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    if (size && count > (size_t)-1 / size) oom((size_t)-1);
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    return p;
}

void *xrealloc(void *q, size_t n) {
    void *p = realloc(q, n ? n : 1);
    if (!p) oom(n);
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
    if (posix_memalign(&p, 64, n ? n : 1) != 0 || !p) oom(n);
    return p;
}

void xfree_aligned(void *p) { free(p); }

void gad_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "gad: internal error: %s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}
