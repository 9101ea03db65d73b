/* conv_blocks: how the convolution's products cut their columns into blocks (a column
 * is one position of one image): an image with more positions than the block's target
 * is cut into pieces, at places that depend on its shape only; smaller images are
 * grouped, several to a block. The targets come from cache budgets. Used by the
 * product over blocks (conv_gemm.c) and the weight gradients (conv_im2col.c,
 * conv_wide.c).
 * Not for: the direct route (conv_direct.c groups images by positions). */
#include "core/err.h"
#include "ops/conv_route.h"
#include "core/threads.h"

/* ---- tuning: block widths (columns) and the cache budgets that set them ---- */
#define COLS_TARGET 1024         /* forward / input-gradient block: enough columns that
                                  * packing the weights once per block is cheap */
#define COLS_MIN 128
#define SLICE_BYTES (16u << 20)  /* one thread's gathered block at most: big enough that a
                                 * 28x28 map of VGG's 512-channel layers is one block */
#define DW_BYTES (16u << 20)     /* weight gradient: gathered x and dy of one block */
#define DW_MIN 256
#define DW_MAX 16384

/* Block width for a product whose gathered operand has `rows` rows. */
int conv_cols_target(int rows) {
    long t = SLICE_BYTES / (sizeof(float) * (size_t)rows);
    t = t > COLS_TARGET ? COLS_TARGET : t < COLS_MIN ? COLS_MIN : t;
    return (int)(t & ~31L);
}

int conv_dw_target(int rows) {
    long t = DW_BYTES / (sizeof(float) * (size_t)rows);
    t = t > DW_MAX ? DW_MAX : t < DW_MIN ? DW_MIN : t;
    return (int)(t & ~31L);
}

Blocks conv_make_blocks(int N, int G, int target) {
    Blocks b = {N, G, 0, 0, 0, 0};
    if (G > target) {
        b.pieces = (G + target - 1) / target;  /* depends on the shape only */
        b.nblocks = N * b.pieces;
        b.width = (G + b.pieces - 1) / b.pieces;
    } else {
        int per = target / G;                  /* images per block at most */
        b.nblocks = (N + per - 1) / per;
        b.width = (N + b.nblocks - 1) / b.nblocks * G;
    }
    return b;
}

size_t conv_slice_floats(int rows, int M, int width) {
    return ws_round(size_mul(sizeof(float) * (size_t)(rows + M), (size_t)width)) / sizeof(float);
}

/* Block i: images [n0, n1), columns [p0, p1) of each. */
void conv_block_of(const Blocks *b, int i, int *n0, int *n1, int *p0, int *p1) {
    long lo, hi;
    if (b->pieces) {
        *n0 = i / b->pieces;
        *n1 = *n0 + 1;
        if (b->cut32) {
            par_range((b->G + 31) / 32, i % b->pieces, b->pieces, &lo, &hi);
            lo *= 32;
            hi = hi * 32 < b->G ? hi * 32 : b->G;
        } else {
            par_range(b->G, i % b->pieces, b->pieces, &lo, &hi);
        }
        *p0 = (int)lo;
        *p1 = (int)hi;
    } else {
        par_range(b->N, i, b->nblocks, &lo, &hi);
        *n0 = (int)lo;
        *n1 = (int)hi;
        *p0 = 0;
        *p1 = b->G;
    }
}

/* ---- scratch ----
 * Sized for any batch up to s->N: a grouped block never holds more than
 * min(N, target / G) images. */

int conv_max_width(int N, int G, int target) {
    if (G > target) {
        int pieces = (G + target - 1) / target;
        return (G + pieces - 1) / pieces;
    }
    return imin(N, target / G) * G;
}

