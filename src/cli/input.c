/* input: the model input of `gad predict` and `gad explain`, shared by both.
 * An .npy (recognised by its magic) is fed as it is ([N,3,H,W] or [3,H,W], any H,W);
 * an image file is preprocessed as cli_prep says: --resize / --crop where given,
 * else the weights' metadata (resize, crop, input size, mean/std).
 * Not for: datasets (io/dataset.h). */
#include "cli/cli.h"
#include "core/err.h"
#include "io/dataset.h"
#include "io/file.h"
#include "io/image.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* ---- lists of inputs ------------------------------------------------------------ */

static void push(InputList *l, char *path, int listed) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->path = xrealloc(l->path, sizeof *l->path * (size_t)l->cap);
        l->listed = xrealloc(l->listed, sizeof *l->listed * (size_t)l->cap);
    }
    l->path[l->n] = path;
    l->listed[l->n++] = listed;
}

int cli_inputs_add(InputList *l, const char *arg) {
    struct stat st;
    if (stat(arg, &st) != 0) return err_set("%s: no such file or folder", arg);
    if (!S_ISDIR(st.st_mode)) {
        push(l, xstrdup(arg), 0);
        return 0;
    }
    char **names;
    int n = dataset_dir_entries(arg, 0, &names);
    if (n < 0) return -1;
    size_t len = strlen(arg);
    int slash = len && arg[len - 1] == '/';
    for (int i = 0; i < n; i++) {
        size_t cap = len + strlen(names[i]) + 2;
        char *p = xmalloc(cap);
        snprintf(p, cap, "%s%s%s", arg, slash ? "" : "/", names[i]);
        push(l, p, 1);
        free(names[i]);
    }
    free(names);
    if (!n) err_warn("%s: an empty folder", arg);
    return 0;
}

int cli_inputs_add_list(InputList *l, const char *file) {
    unsigned char *buf;
    size_t n;
    if (file_read_all(file, (size_t)1 << 28, &buf, &n)) return -1;
    int line = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && buf[j] != '\n') j++;
        size_t a = i, e = j;
        line++;
        while (a < e && (buf[a] == ' ' || buf[a] == '\t')) a++;
        while (e > a && (buf[e - 1] == '\r' || buf[e - 1] == ' ' || buf[e - 1] == '\t')) e--;
        i = j + 1;
        if (a == e || buf[a] == '#') continue;
        if (memchr(buf + a, 0, e - a)) {
            free(buf);
            return err_set("%s: line %d is not a path (a NUL byte)", file, line);
        }
        char *p = xmalloc(e - a + 1);
        memcpy(p, buf + a, e - a);
        p[e - a] = 0;
        struct stat st;
        if (stat(p, &st) != 0 || S_ISDIR(st.st_mode)) {
            err_set("%s: line %d: %s: %s", file, line, p, stat(p, &st) ? "no such file" : "a folder, not an image file");
            free(p);
            free(buf);
            return -1;
        }
        push(l, p, 0);
    }
    free(buf);
    return 0;
}

void cli_inputs_free(InputList *l) {
    for (int i = 0; i < l->n; i++) free(l->path[i]);
    free(l->path);
    free(l->listed);
    memset(l, 0, sizeof *l);
}

const char *cli_image_name(const char *path, int n, int k, char *buf, size_t cap) {
    if (n == 1) snprintf(buf, cap, "%s", path);
    else snprintf(buf, cap, "%s[%d]", path, k);
    return buf;
}

void cli_csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int cli_load_item(const InputList *l, int it, const Model *m, const PrepFlags *f, int strict, Tensor *x) {
    if (cli_load_input(l->path[it], m, f, x) == 0) return 0;
    if (!l->listed[it] || strict) return -1;
    err_warn("%s; skipped", err_get());
    return 1;
}
