/* ws: bump allocator over one aligned block (see core/ws.h). */
#include "core/ws.h"
#include "core/err.h"
#include <stdint.h>
#include <string.h>

void ws_init(Workspace *ws) { memset(ws, 0, sizeof *ws); }

size_t ws_round(size_t bytes) { return bytes > SIZE_MAX - 63 ? SIZE_MAX : (bytes + 63) & ~(size_t)63; }

void ws_reserve(Workspace *ws, size_t bytes) {
    GAD_ASSERT(ws->used == 0);
    bytes = ws_round(bytes);
    if (bytes <= ws->cap) return;
    xfree_aligned(ws->base);
    ws->base = xmalloc_aligned(bytes);
    ws->cap = bytes;
}

void *ws_alloc(Workspace *ws, size_t bytes) {
    bytes = ws_round(bytes);
    GAD_ASSERT(bytes <= ws->cap - ws->used);
    void *p = ws->base + ws->used;
    ws->used += bytes;
    if (ws->used > ws->peak) ws->peak = ws->used;
    return p;
}

float *ws_floats(Workspace *ws, size_t n) { return ws_alloc(ws, n * sizeof(float)); }

size_t ws_mark(const Workspace *ws) { return ws->used; }

void ws_release(Workspace *ws, size_t mark) {
    GAD_ASSERT(mark <= ws->used);
    ws->used = mark;
}

void ws_free(Workspace *ws) {
    xfree_aligned(ws->base);
    memset(ws, 0, sizeof *ws);
}
