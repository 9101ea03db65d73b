/* err: one-line error messages for bad input (stb_image style), checked allocation,
 * and always-on invariant asserts.
 * Not for: logging or recovery. A broken invariant is a bug: GAD_ASSERT aborts with
 * file and line. Bad input is not a bug: the function that found it calls err_set()
 * with a message naming the file and the problem and returns -1; the CLI prints
 * err_get() and exits 1. */
#ifndef GAD_CORE_ERR_H
#define GAD_CORE_ERR_H
#include "core/port.h"
#include <stddef.h>

/* Record the current error (printf-style, one line, no trailing newline).
 * Returns -1 so that `return err_set(...)` reads naturally. */
int err_set(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* The same for a bad argument rather than bad data (a class name or index the data
 * does not have, an output index the model lacks): the CLI then exits 2, not 1.
 * err_set clears the mark, err_prefix keeps it. Returns -1. */
int err_set_usage(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* 1 when the current message was set by err_set_usage. */
int err_is_usage(void);
/* The last message set (static storage, never NULL; "" when none). */
const char *err_get(void);
/* Prefix the current message with "prefix: " (e.g. the file name). Returns -1. */
int err_prefix(const char *prefix);

/* A warning: something was skipped or assumed, and the user must hear of it (a
 * file in a data folder that is not a readable image, a model fed pixels without
 * normalisation). Prints "gad: warning: MESSAGE" on stderr, or hands MESSAGE to
 * the hook an embedding program set with err_set_warn_hook (NULL: stderr again). */
void err_warn(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void err_set_warn_hook(void (*hook)(const char *msg, void *ud), void *ud);
/* Warnings given since the process started. */
long err_warn_count(void);

/* Checked allocation: on failure print "gad: out of memory (N bytes)" and exit(1).
 * The caller owns the result and frees it with free(). xcalloc checks count * size
 * for overflow; a size computed by the caller is checked with size_mul / size_add. */
void *xmalloc(size_t n);
/* Called before that message with the size that could not be had (gad_set_oom_hook
 * of gad.h): nonzero asks to try the allocation again; a hook may also not return.
 * NULL: none. */
void err_set_oom_hook(int (*hook)(size_t bytes, void *ud), void *ud);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* 64-byte aligned, checked; free with xfree_aligned(). */
void *xmalloc_aligned(size_t n);
void xfree_aligned(void *p);

/* a * b and a + b for sizes in bytes or elements, saturating: SIZE_MAX when the result
 * does not fit size_t (32 bits on a 32-bit machine), and SIZE_MAX in gives SIZE_MAX
 * out. No allocation of SIZE_MAX bytes succeeds, so a size too large for the machine
 * ends as "out of memory" instead of wrapping round into a buffer too small for what
 * is then written to it. */
size_t size_mul(size_t a, size_t b);
size_t size_add(size_t a, size_t b);

/* Always on, whatever NDEBUG says. */
void gad_assert_fail(const char *expr, const char *file, int line);
#define GAD_ASSERT(c) ((c) ? (void)0 : gad_assert_fail(#c, __FILE__, __LINE__))

#endif
