/* input: the model input of `gad predict` and `gad explain`, shared by both.
 * An .npy (recognised by its magic) is fed as it is ([N,3,H,W] or [3,H,W], any H,W);
 * an image file is preprocessed as cli_prep says: --resize / --crop where given,
 * else the weights' metadata (resize, crop, input size, mean/std).
 * Not for: datasets (io/dataset.h). */
#include "cli/cli.h"
#include "core/err.h"
#include "io/dataset.h"
#include "io/image.h"
#include <stdio.h>
#include <string.h>

int cli_is_npy(const char *path) {
    unsigned char b[6] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(b, 1, 6, f);
    fclose(f);
    return n == 6 && !memcmp(b, "\x93NUMPY", 6);
}

void cli_prep(const Model *m, const PrepFlags *f, ImagePrep *p, int *h, int *w) {
    const ModelConfig *c = &m->cfg;
    memset(p, 0, sizeof *p);
    if (f && f->resize.set) {
        if (f->resize.set > 0 && f->resize.b) { p->resize_h = f->resize.a; p->resize_w = f->resize.b; }
        else if (f->resize.set > 0) p->resize_short = f->resize.a;
    } else {
        p->resize_short = c->resize_short;
        p->resize_h = c->resize_h;
        p->resize_w = c->resize_w;
    }
    if (f && f->crop.set) {
        if (f->crop.set > 0) { p->crop_h = f->crop.a; p->crop_w = f->crop.b ? f->crop.b : f->crop.a; }
    } else {
        p->crop_h = c->crop_h;
        p->crop_w = c->crop_w;
    }
    if (c->has_norm) {
        p->mean = c->mean;
        p->std = c->std;
    }
    *h = c->in_h; /* 0: the image's own size (or what the resize makes of it) */
    *w = c->in_w;
    if (p->crop_h > 0) { *h = p->crop_h; *w = p->crop_w; }
    else if (p->resize_h > 0) { *h = p->resize_h; *w = p->resize_w; }
}

int cli_load_input(const char *path, const Model *m, const PrepFlags *f, Tensor *x) {
    memset(x, 0, sizeof *x);
    if (cli_is_npy(path)) {
        if (input_load(path, 0, 0, NULL, NULL, x)) return -1;
        if (x->dim[2] > 1 << 16 || x->dim[3] > 1 << 16) {
            char b[96];
            tensor_shape_str(x, b, sizeof b);
            tensor_free(x);
            return err_set("%s: input of shape %s is over the limit of %d per side", path, b, 1 << 16);
        }
        return 0;
    }
    ImagePrep p;
    int h, w;
    cli_prep(m, f, &p, &h, &w);
    if (h > IMAGE_MAX_DIM || w > IMAGE_MAX_DIM || (long)h * w > IMAGE_MAX_PIXELS) /* sizes from the metadata */
        return err_set("%s: the weights' input size %dx%d is over the image limit (%d per side, %ld pixels)", path, h,
                       w, IMAGE_MAX_DIM, (long)IMAGE_MAX_PIXELS);
    return input_load_prep(path, &p, h, w, x);
}
