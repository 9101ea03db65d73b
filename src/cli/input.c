/* input: the model input of `gad predict` and `gad explain`, shared by both.
 * An .npy (recognised by its magic) is fed as it is ([N,3,H,W] or [3,H,W], any H,W);
 * an image file is preprocessed by io/dataset's input_load to the weights' input
 * size (else its own) with their mean/std. Not for: datasets (io/dataset.h). */
#include "cli/cli.h"
#include "core/err.h"
#include "io/dataset.h"
#include "io/image.h"
#include <stdio.h>
#include <string.h>

static int is_npy(const char *path) {
    unsigned char b[6] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(b, 1, 6, f);
    fclose(f);
    return n == 6 && !memcmp(b, "\x93NUMPY", 6);
}

int cli_load_input(const char *path, const Model *m, Tensor *x) {
    memset(x, 0, sizeof *x);
    if (is_npy(path)) {
        if (input_load(path, 0, 0, NULL, NULL, x)) return -1;
        if (x->dim[2] > 1 << 16 || x->dim[3] > 1 << 16) {
            char b[96];
            tensor_shape_str(x, b, sizeof b);
            tensor_free(x);
            return err_set("%s: input of shape %s is over the limit of %d per side", path, b, 1 << 16);
        }
        return 0;
    }
    int h = m->cfg.in_h, w = m->cfg.in_w; /* 0: the image's own size */
    if (h > IMAGE_MAX_DIM || w > IMAGE_MAX_DIM || (long)h * w > IMAGE_MAX_PIXELS) /* sizes from the metadata */
        return err_set("%s: the weights' input size %dx%d is over the image limit (%d per side, %ld pixels)", path, h,
                       w, IMAGE_MAX_DIM, (long)IMAGE_MAX_PIXELS);
    const int norm = m->cfg.has_norm;
    return input_load(path, h, w, norm ? m->cfg.mean : NULL, norm ? m->cfg.std : NULL, x);
}
