/* ws: a workspace, one aligned block of scratch memory handed out by a bump pointer.
 * Kernels take their scratch from it (never malloc); callers size it once with
 * ws_reserve() before a pass and reuse it, so no page is touched fresh in a hot loop.
 * Not thread-safe: a kernel that runs threads carves per-thread slices itself.
 * Not for: long-lived data (use xmalloc). */
#ifndef GAD_CORE_WS_H
#define GAD_CORE_WS_H
#include <stddef.h>

typedef struct {
    char *base;   /* [cap] bytes, 64-byte aligned, owned */
    size_t cap;   /* bytes */
    size_t used;  /* bytes handed out */
    size_t peak;  /* high-water mark of used */
} Workspace;

/* Zeroed struct is a valid empty workspace. */
void ws_init(Workspace *ws);
/* Make sure at least `bytes` are available in total; only allowed while used == 0
 * (between passes). Grows by reallocating; never shrinks. */
void ws_reserve(Workspace *ws, size_t bytes);
/* `bytes` rounded up to 64; asserts that it fits (a caller forgot ws_reserve). */
void *ws_alloc(Workspace *ws, size_t bytes);
float *ws_floats(Workspace *ws, size_t n);
/* Mark / release: everything allocated after the mark is given back. */
size_t ws_mark(const Workspace *ws);
void ws_release(Workspace *ws, size_t mark);
void ws_free(Workspace *ws);
/* Bytes that ws_alloc(bytes) really takes (for computing reservations); SIZE_MAX
 * (see size_add in core/err.h) when that does not fit size_t. */
size_t ws_round(size_t bytes);

#endif
