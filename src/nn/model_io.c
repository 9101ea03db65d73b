/* model_io: a model from and to a safetensors state_dict.
 * Loading infers everything from torchvision's key names and shapes: the arch
 * (features.* / classifier.* -> vgg16; conv1, bn1, layer1..4, fc -> resnet18), the
 * width (first conv's output channels / 64, or the "width" metadata when it agrees),
 * VGG's hidden size (classifier.0.weight) and the classes (the last layer). Then
 * every expected tensor must be there, F32, with exactly the expected shape, and
 * nothing else may be (BN's num_batches_tracked is optional, I64 or F32).
 * Metadata read: "input_size" ("3x224x224"), "mean" / "std" ("0.485,0.456,0.406"),
 * "resize" ("256": Resize(256), or "256x320") and "crop" ("224" or "224x200"), the
 * torchvision preprocessing (a crop must agree with input_size, and gives it when
 * absent), "normalize" ("none": trained without Normalize, said on purpose),
 * "classes" (a JSON array of names), "arch" (must agree). A torch.save file
 * (zip or pickle, or named .pth/.pt/.ckpt) is refused with the export command. All entries are kept in
 * Model.meta and written back by model_save, which also writes arch, width, hidden.
 * Not for: other architectures, renamed keys (e.g. a "module." prefix), fp16. */
#include "core/err.h"
#include "core/tensor.h"
#include "io/json.h"
#include "nn/layers.h"
#include "nn/model.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when name is "<prefix>.num_batches_tracked" for a BN layer of m. */
static int is_nbt_of(const Model *m, const char *name) {
    static const char suffix[] = ".num_batches_tracked";
    size_t n = strlen(name), s = sizeof suffix - 1;
    if (n <= s || n - s + sizeof ".running_mean" > sizeof m->params_info[0].name) return 0;
    if (strcmp(name + n - s, suffix)) return 0;
    char want[128];
    snprintf(want, sizeof want, "%.*s.running_mean", (int)(n - s), name);
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params_info[i].name, want)) return 1;
    return 0;
}

/* "a,b,c" -> three floats. */
static int parse3(const char *s, float *v) {
    for (int i = 0; i < 3; i++) {
        char *end;
        double x = strtod(s, &end);
        if (end == s || !isfinite(x)) return -1;
        v[i] = (float)x;
        s = end;
        while (*s == ' ') s++;
        if (i < 2) { if (*s != ',') return -1; s++; }
    }
    return *s ? -1 : 0;
}

/* "N" (*a = N, *b = 0) or "HxW" (*a = H, *b = W), each 1..65536. Returns 0 or -1. */
static int parse_size(const char *s, int *a, int *b) {
    long v[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        char *end;
        if (*s < '0' || *s > '9') return -1;
        errno = 0;
        v[i] = strtol(s, &end, 10);
        if (errno || v[i] < 1 || v[i] > 65536) return -1;
        s = end;
        if (i == 0 && *s != 'x') break;
        if (i == 0) s++;
    }
    if (*s) return -1;
    *a = (int)v[0];
    *b = (int)v[1];
    return 0;
}

/* The torchvision preprocessing keys "resize" and "crop". */
static int parse_prep_meta(Model *m, const char *path) {
    ModelConfig *c = &m->cfg;
    const char *v;
    if ((v = meta_get(&m->meta, "resize"))) {
        int a, b;
        if (parse_size(v, &a, &b))
            return err_set("%s: metadata 'resize' is '%.40s', expected N (shorter side) or HxW like 256 or 256x320",
                           path, v);
        if (b) { c->resize_h = a; c->resize_w = b; }
        else c->resize_short = a;
    }
    if ((v = meta_get(&m->meta, "crop"))) {
        int a, b;
        if (parse_size(v, &a, &b))
            return err_set("%s: metadata 'crop' is '%.40s', expected N or HxW like 224 or 224x200", path, v);
        c->crop_h = a;
        c->crop_w = b ? b : a;
        if (c->in_h && (c->in_h != c->crop_h || c->in_w != c->crop_w))
            return err_set("%s: metadata 'crop' %s disagrees with 'input_size' %dx%dx%d", path, v, c->in_c, c->in_h,
                           c->in_w);
        c->in_c = 3;
        c->in_h = c->crop_h;
        c->in_w = c->crop_w;
    } else if (c->resize_h && !c->in_h) {
        c->in_c = 3;
        c->in_h = c->resize_h;
        c->in_w = c->resize_w;
    }
    return 0;
}

static int parse_config_meta(Model *m, const char *path) {
    ModelConfig *c = &m->cfg;
    const char *v;
    if ((v = meta_get(&m->meta, "arch")) && strcmp(v, model_arch_name(c->arch)))
        return err_set("%s: metadata says arch '%.40s' but the tensors are a %s state_dict", path, v,
                       model_arch_name(c->arch));
    if ((v = meta_get(&m->meta, "input_size"))) {
        long dims[3] = {0, 0, 0}; /* strtol, not sscanf %d: an int overflow there is undefined */
        const char *q = v;
        int ok = 1;
        for (int i = 0; i < 3 && ok; i++) {
            char *end;
            errno = 0;
            dims[i] = (*q >= '0' && *q <= '9') ? strtol(q, &end, 10) : 0;
            ok = dims[i] >= 1 && dims[i] <= 65536 && !errno && *end == (i < 2 ? 'x' : 0);
            q = ok ? end + (i < 2) : q;
        }
        if (!ok) return err_set("%s: metadata 'input_size' is '%.40s', expected CxHxW like 3x224x224", path, v);
        c->in_c = (int)dims[0]; c->in_h = (int)dims[1]; c->in_w = (int)dims[2];
    }
    const char *mean = meta_get(&m->meta, "mean"), *std = meta_get(&m->meta, "std");
    if (mean || std) {
        if (!mean || !std) return err_set("%s: metadata has '%s' but not '%s'", path, mean ? "mean" : "std",
                                          mean ? "std" : "mean");
        if (parse3(mean, c->mean)) return err_set("%s: metadata 'mean' is '%.40s', expected 3 numbers like 0.485,0.456,0.406", path, mean);
        if (parse3(std, c->std) || !(c->std[0] > 0 && c->std[1] > 0 && c->std[2] > 0))
            return err_set("%s: metadata 'std' is '%.40s', expected 3 positive numbers like 0.229,0.224,0.225", path, std);
        c->has_norm = 1;
    }
    if (parse_prep_meta(m, path)) return -1;
    if ((v = meta_get(&m->meta, "classes"))) {
        Json j;
        if (json_parse(v, strlen(v), &j)) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", err_get());
            return err_set("%s: metadata 'classes': %s", path, msg);
        }
        int ok = j.type == JSON_ARRAY;
        for (int i = 0; ok && i < j.n; i++) ok = j.kid[i].type == JSON_STRING;
        if (!ok) { json_free(&j); return err_set("%s: metadata 'classes' is not a JSON array of strings", path); }
        if (j.n != c->num_classes) {
            int n = j.n;
            json_free(&j);
            return err_set("%s: metadata 'classes' has %d names but the model has %d outputs", path, n,
                           c->num_classes);
        }
        c->class_names = xmalloc((size_t)j.n * sizeof(char *));
        for (int i = 0; i < j.n; i++) c->class_names[i] = xstrdup(j.kid[i].str);
        json_free(&j);
    }
    return 0;
}

/* Out channels of the first conv, checked to be a 4-D F32 tensor. */
static int first_conv_channels(const char *path, const StTensor *t, int k) {
    char b[96];
    if (t->dtype != ST_F32 || t->ndim != 4 || t->dim[0] < 1 || t->dim[0] > 65536 || t->dim[1] != 3 ||
        t->dim[2] != k || t->dim[3] != k)
        return err_set("%s: tensor '%s' has shape %s, expected [C,3,%d,%d]", path, t->name,
                       dims_str(t->ndim, t->dim, b, sizeof b), k, k);
    return (int)t->dim[0];
}

/* Output size (dim 0) of a 2-D F32 tensor that must exist. */
static int linear_out(const char *path, const StFile *f, const char *name) {
    const StTensor *t = st_find(f, name);
    char b[96];
    if (!t) return err_set("%s: missing tensor '%s'", path, name);
    if (t->dtype != ST_F32 || t->ndim != 2 || t->dim[0] < 1 || t->dim[0] > (1 << 24))
        return err_set("%s: tensor '%s' has shape %s, expected [out,in]", path, name,
                       dims_str(t->ndim, t->dim, b, sizeof b));
    return (int)t->dim[0];
}

static int load_from(Model *m, const char *path, const StFile *f) {
    const StTensor *t0 = st_find(f, "features.0.weight"), *t1 = st_find(f, "conv1.weight");
    if ((t0 != NULL) == (t1 != NULL) || (t0 && !st_find(f, "classifier.0.weight")) || (t1 && !st_find(f, "fc.weight")))
        return err_set("%s: not a vgg16 or resnet18 state_dict", path);
    Arch arch = t0 ? ARCH_VGG16 : ARCH_RESNET18;
    int c0 = first_conv_channels(path, t0 ? t0 : t1, t0 ? 3 : 7);
    if (c0 < 0) return -1;
    float width = (float)c0 / 64.0f;
    const char *wm = meta_get(&f->meta, "width");
    if (wm) { /* a width whose rounding gives c0 (e.g. 0.01 -> 1 channel everywhere) */
        char *end;
        double w = strtod(wm, &end);
        if (end != wm && !*end && w > 0 && w <= 64 && model_channels(64, (float)w) == c0) width = (float)w;
    }
    int hidden = 0, K;
    if (arch == ARCH_VGG16) {
        if ((hidden = linear_out(path, f, "classifier.0.weight")) < 0) return -1;
        K = linear_out(path, f, "classifier.6.weight");
    } else {
        K = linear_out(path, f, "fc.weight");
    }
    if (K < 0) return -1;
    size_t *off = NULL;
    if (model_build_spec(m, arch, K, width, hidden, &off)) { free(off); return err_prefix(path); }

    /* nothing unexpected, then everything expected with its exact shape */
    for (int i = 0; i < f->n; i++) {
        const StTensor *t = &f->t[i];
        if (is_nbt_of(m, t->name)) {
            if (t->numel != 1 || t->ndim > 1) {
                char b[96];
                free(off);
                return err_set("%s: tensor '%.80s' has shape %s, expected []", path, t->name,
                               dims_str(t->ndim, t->dim, b, sizeof b));
            }
            int64_t v = t->dtype == ST_I64 ? t->i64[0] : (int64_t)t->f32[0];
            if (v > m->bn_batches) m->bn_batches = v;
            continue;
        }
        if (!model_find(m, t->name)) {
            free(off);
            return err_set("%s: unexpected tensor '%.80s' (not in %s)", path, t->name, model_arch_name(arch));
        }
    }
    for (int i = 0; i < m->nparams; i++) {
        const Param *p = &m->params_info[i];
        const StTensor *t = st_find(f, p->name);
        int same = t && t->ndim == p->ndim;
        for (int k = 0; same && k < p->ndim; k++) same = t->dim[k] == p->dim[k];
        if (!t || !same) {
            char a[96], b[96];
            free(off);
            if (!t) return err_set("%s: missing tensor '%s'", path, p->name);
            return err_set("%s: tensor '%s' has shape %s, expected %s", path, p->name,
                           dims_str(t->ndim, t->dim, a, sizeof a), dims_str(p->ndim, p->dim, b, sizeof b));
        }
        if (t->dtype != ST_F32) { free(off); return err_set("%s: tensor '%s' is not F32", path, p->name); }
    }
    model_build_alloc(m, off);
    free(off);
    for (int i = 0; i < m->nparams; i++) {
        Param *p = &m->params_info[i];
        memcpy(p->data, st_find(f, p->name)->f32, p->numel * sizeof(float));
    }
    meta_copy(&m->meta, &f->meta);
    return parse_config_meta(m, path);
}

/* A file torch.save wrote: a zip archive (PyTorch 1.6 on) or a pickle (protocol 2-5
 * starting with LONG1 or FRAME; a safetensors header length never looks like one). */
static int is_torch_file(const char *path) {
    unsigned char b[4] = {0, 0, 0, 0};
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    int zip = n == 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4;
    int pickle = n >= 3 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5 && (b[2] == 0x8a || b[2] == 0x95);
    return zip || pickle;
}

#define EXPORT_HINT "export it with tools/data/export_torchvision.py --pth %s --out W.safetensors (run with the Python that has torch)"

int model_load(Model *m, const char *path) {
    StFile f;
    memset(m, 0, sizeof *m);
    if (is_torch_file(path))
        return err_set("%s: a PyTorch file (torch.save), not safetensors: " EXPORT_HINT, path, path);
    if (st_read(path, &f)) {
        const char *dot = strrchr(path, '.');
        if (dot && (!strcmp(dot, ".pth") || !strcmp(dot, ".pt") || !strcmp(dot, ".ckpt"))) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", err_get());
            return err_set("%s; if it is a PyTorch checkpoint, " EXPORT_HINT, msg, path);
        }
        return -1;
    }
    int rc = load_from(m, path, &f);
    st_free(&f);
    if (rc) model_free(m);
    return rc ? -1 : 0;
}

/* Write the config into m's metadata copy `meta`. */
static void config_to_meta(const Model *m, Meta *meta) {
    const ModelConfig *c = &m->cfg;
    char buf[128];
    meta_set(meta, "arch", model_arch_name(c->arch));
    snprintf(buf, sizeof buf, "%.9g", (double)c->width);
    meta_set(meta, "width", buf);
    if (c->arch == ARCH_VGG16) {
        snprintf(buf, sizeof buf, "%d", c->hidden);
        meta_set(meta, "hidden", buf);
    }
    if (c->in_c > 0 && c->in_h > 0 && c->in_w > 0) {
        snprintf(buf, sizeof buf, "%dx%dx%d", c->in_c, c->in_h, c->in_w);
        meta_set(meta, "input_size", buf);
    }
    if (c->has_norm) {
        snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", (double)c->mean[0], (double)c->mean[1], (double)c->mean[2]);
        meta_set(meta, "mean", buf);
        snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", (double)c->std[0], (double)c->std[1], (double)c->std[2]);
        meta_set(meta, "std", buf);
    }
    if (c->resize_short > 0 || c->resize_h > 0) {
        if (c->resize_h > 0) snprintf(buf, sizeof buf, "%dx%d", c->resize_h, c->resize_w);
        else snprintf(buf, sizeof buf, "%d", c->resize_short);
        meta_set(meta, "resize", buf);
    }
    if (c->crop_h > 0) {
        if (c->crop_h != c->crop_w) snprintf(buf, sizeof buf, "%dx%d", c->crop_h, c->crop_w);
        else snprintf(buf, sizeof buf, "%d", c->crop_h);
        meta_set(meta, "crop", buf);
    }
    if (c->class_names) {
        size_t len = 3, cap = 256;
        char *s = xmalloc(cap);
        strcpy(s, "[");
        for (int i = 0; i < c->num_classes; i++) {
            char *q = json_quote(c->class_names[i]);
            size_t ql = strlen(q);
            if (len + ql + 2 > cap) { while (len + ql + 2 > cap) cap *= 2; s = xrealloc(s, cap); }
            if (i) strcat(s, ",");
            strcat(s, q);
            len += ql + 1;
            free(q);
        }
        strcat(s, "]");
        meta_set(meta, "classes", s);
        free(s);
    }
}

int model_save(const Model *m, const char *path) {
    StFile f;
    memset(&f, 0, sizeof f);
    for (int i = 0; i < m->nparams; i++) {
        const Param *p = &m->params_info[i];
        st_add_f32(&f, p->name, p->ndim, p->dim, p->data);
        size_t n = strlen(p->name), s = strlen(".running_var");
        if (p->is_buffer && n > s && !strcmp(p->name + n - s, ".running_var")) {
            char name[128];
            int64_t d[1] = {1}, v = m->bn_batches;
            snprintf(name, sizeof name, "%.*s.num_batches_tracked", (int)(n - s), p->name);
            st_add_i64(&f, name, 0, d, &v);
        }
    }
    meta_copy(&f.meta, &m->meta);
    config_to_meta(m, &f.meta);
    int rc = st_write(path, &f);
    st_free(&f);
    return rc;
}

int model_norm_stated(const Model *m) {
    const char *v = meta_get(&m->meta, "normalize"), *by = meta_get(&m->meta, "trained_by");
    return m->cfg.has_norm || (v && !strcmp(v, "none")) || (by && !strcmp(by, "gad train"));
}

void model_warn_norm(const Model *m, const char *path) {
    if (!model_norm_stated(m))
        err_warn("no mean/std in %s: pixels are fed as 0..1 (if the model was trained with Normalize, export it "
                 "with --mean/--std; --no-normalize records that 0..1 is right)", path);
}
