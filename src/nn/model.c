/* model: building torchvision's vgg16 and resnet18 as a layer list with
 * torchvision's state_dict names, shapes and order, their initialisation, and the
 * bookkeeping around them (find, clone, gradients, free).
 * The passes are in plan.c, loading and saving in model_io.c.
 * Width: channels round(base * width) >= 1 (model_channels); VGG's hidden size is
 * its own number, hidden <= 0 meaning round(4096 * width).
 * Not for: any other architecture; batch-norm VGG; PyTorch's random streams (the
 * initialisation follows torchvision's distributions, not its numbers). */
#include "nn/model.h"
#include "core/err.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nn/layers.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *model_arch_name(Arch a) { return a == ARCH_VGG16 ? "vgg16" : "resnet18"; }

const char *layer_kind_name(LayerKind k) {
    static const char *names[] = {"conv", "bn", "relu", "maxpool", "avgpool", "linear", "dropout", "add"};
    return names[k];
}

int model_min_input(const Model *m) { (void)m; return 32; }

int model_channels(int base, float width) {
    double c = floor((double)base * (double)width + 0.5);
    return c < 1 ? 1 : (int)c;
}

/* ---- the builder: one growing list of params and one of layers ---------------- */

typedef struct {
    Model *m;
    size_t *off;  /* [nparams] offset into params or buffers */
    int cap_p, cap_l;
    int act;      /* the activation the next layer reads */
} Builder;

static int add_param(Builder *B, int is_buffer, int ndim, const int64_t *dim, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static int add_param(Builder *B, int is_buffer, int ndim, const int64_t *dim, const char *fmt, ...) {
    Model *m = B->m;
    if (m->nparams == B->cap_p) {
        B->cap_p = B->cap_p ? 2 * B->cap_p : 64;
        m->params_info = xrealloc(m->params_info, (size_t)B->cap_p * sizeof *m->params_info);
        B->off = xrealloc(B->off, (size_t)B->cap_p * sizeof *B->off);
    }
    Param *p = &m->params_info[m->nparams];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) { p->dim[i] = dim[i]; p->numel *= (size_t)dim[i]; }
    p->is_buffer = is_buffer;
    size_t *total = is_buffer ? &m->n_buffers : &m->n_params;
    B->off[m->nparams] = *total;
    *total += p->numel;
    return m->nparams++;
}

/* Append a layer reading B->act (and in2); returns it for the caller to fill in. */
static Layer *add_layer(Builder *B, LayerKind kind, int in2) {
    Model *m = B->m;
    if (m->nlayers == B->cap_l) {
        B->cap_l = B->cap_l ? 2 * B->cap_l : 64;
        m->layers = xrealloc(m->layers, (size_t)B->cap_l * sizeof *m->layers);
    }
    Layer *L = &m->layers[m->nlayers++];
    memset(L, 0, sizeof *L);
    L->kind = kind;
    L->in = B->act;
    L->in2 = in2;
    L->w = L->b = L->rm = L->rv = -1;
    B->act = m->nlayers; /* layer l writes activation l + 1 */
    return L;
}

static void conv(Builder *B, const char *name, int cin, int cout, int k, int s, int pad, int bias) {
    int64_t wd[4] = {cout, cin, k, k}, bd[1] = {cout};
    int w = add_param(B, 0, 4, wd, "%s.weight", name);
    int b = bias ? add_param(B, 0, 1, bd, "%s.bias", name) : -1;
    Layer *L = add_layer(B, LK_CONV, -1);
    L->w = w; L->b = b; L->cout = cout; L->k = k; L->s = s; L->pad = pad;
}

static void bn(Builder *B, const char *name, int c) {
    int64_t d[1] = {c};
    int w = add_param(B, 0, 1, d, "%s.weight", name);
    int b = add_param(B, 0, 1, d, "%s.bias", name);
    int rm = add_param(B, 1, 1, d, "%s.running_mean", name);
    int rv = add_param(B, 1, 1, d, "%s.running_var", name);
    Layer *L = add_layer(B, LK_BN, -1);
    L->w = w; L->b = b; L->rm = rm; L->rv = rv;
}

static void linear(Builder *B, const char *name, int in, int out) {
    int64_t wd[2] = {out, in}, bd[1] = {out};
    int w = add_param(B, 0, 2, wd, "%s.weight", name);
    int b = add_param(B, 0, 1, bd, "%s.bias", name);
    Layer *L = add_layer(B, LK_LINEAR, -1);
    L->w = w; L->b = b; L->cout = out;
}

static void simple(Builder *B, LayerKind kind, int k, int s, int pad, float p) {
    Layer *L = add_layer(B, kind, -1);
    L->k = k; L->s = s; L->pad = pad; L->p = p;
}

/* torchvision.models.vgg.make_layers(cfgs["D"]) + VGG's avgpool and classifier. */
static void build_vgg16(Builder *B, float width, int hidden, int K) {
    static const int cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
    int cin = 3, fi = 0;
    char name[64];
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        if (!cfg[i]) { simple(B, LK_MAXPOOL, 2, 2, 0, 0); fi += 1; continue; }
        int c = model_channels(cfg[i], width);
        snprintf(name, sizeof name, "features.%d", fi);
        conv(B, name, cin, c, 3, 1, 1, 1);
        simple(B, LK_RELU, 0, 0, 0, 0);
        fi += 2;
        cin = c;
    }
    simple(B, LK_AVGPOOL, 7, 0, 0, 0);
    linear(B, "classifier.0", cin * 7 * 7, hidden);
    simple(B, LK_RELU, 0, 0, 0, 0);
    simple(B, LK_DROPOUT, 0, 0, 0, 0.5f);
    linear(B, "classifier.3", hidden, hidden);
    simple(B, LK_RELU, 0, 0, 0, 0);
    simple(B, LK_DROPOUT, 0, 0, 0, 0.5f);
    linear(B, "classifier.6", hidden, K);
}

/* torchvision.models.resnet18: BasicBlock, layers [2,2,2,2]. */
static void build_resnet18(Builder *B, float width, int K) {
    char name[64];
    int inplanes = model_channels(64, width);
    conv(B, "conv1", 3, inplanes, 7, 2, 3, 0);
    bn(B, "bn1", inplanes);
    simple(B, LK_RELU, 0, 0, 0, 0);
    simple(B, LK_MAXPOOL, 3, 2, 1, 0);
    for (int li = 1; li <= 4; li++) {
        int planes = model_channels(64 << (li - 1), width);
        for (int bi = 0; bi < 2; bi++) {
            int s = (li > 1 && bi == 0) ? 2 : 1;
            int x = B->act;
            snprintf(name, sizeof name, "layer%d.%d.conv1", li, bi);
            conv(B, name, inplanes, planes, 3, s, 1, 0);
            snprintf(name, sizeof name, "layer%d.%d.bn1", li, bi);
            bn(B, name, planes);
            simple(B, LK_RELU, 0, 0, 0, 0);
            snprintf(name, sizeof name, "layer%d.%d.conv2", li, bi);
            conv(B, name, planes, planes, 3, 1, 1, 0);
            snprintf(name, sizeof name, "layer%d.%d.bn2", li, bi);
            bn(B, name, planes);
            int main_path = B->act, identity = x;
            if (s != 1 || inplanes != planes) {
                B->act = x;
                snprintf(name, sizeof name, "layer%d.%d.downsample.0", li, bi);
                conv(B, name, inplanes, planes, 1, s, 0, 0);
                snprintf(name, sizeof name, "layer%d.%d.downsample.1", li, bi);
                bn(B, name, planes);
                identity = B->act;
            }
            B->act = main_path;
            add_layer(B, LK_ADD, identity);
            simple(B, LK_RELU, 0, 0, 0, 0);
            inplanes = planes;
        }
    }
    simple(B, LK_AVGPOOL, 1, 0, 0, 0);
    linear(B, "fc", inplanes, K);
}

int model_build_spec(Model *m, Arch arch, int num_classes, float width, int hidden, size_t **offsets) {
    memset(m, 0, sizeof *m);
    if (arch != ARCH_VGG16 && arch != ARCH_RESNET18) return err_set("unknown architecture %d", (int)arch);
    if (!(width > 0) || width > 64) return err_set("width %g out of range (0, 64]", (double)width);
    if (num_classes < 1 || num_classes > (1 << 24))
        return err_set("number of classes %d out of range [1, %d]", num_classes, 1 << 24);
    if (arch == ARCH_VGG16) {
        if (hidden <= 0) hidden = model_channels(4096, width);
        if (hidden > (1 << 24)) return err_set("hidden size %d out of range", hidden);
    } else {
        hidden = 0;
    }
    m->cfg.arch = arch;
    m->cfg.num_classes = num_classes;
    m->cfg.width = width;
    m->cfg.hidden = hidden;
    Builder B = {m, NULL, 0, 0, 0};
    if (arch == ARCH_VGG16) build_vgg16(&B, width, hidden, num_classes);
    else build_resnet18(&B, width, num_classes);
    *offsets = B.off;
    return 0;
}

static uint64_t last_stamp; /* process-wide: a stamp names one model's values */

void model_params_changed(Model *m) { m->stamp = ++last_stamp; }

void model_build_alloc(Model *m, const size_t *off) {
    model_params_changed(m);
    m->params = xcalloc(m->n_params ? m->n_params : 1, sizeof(float));
    m->buffers = xcalloc(m->n_buffers ? m->n_buffers : 1, sizeof(float));
    for (int i = 0; i < m->nparams; i++) {
        Param *p = &m->params_info[i];
        p->data = (p->is_buffer ? m->buffers : m->params) + off[i];
        p->grad = NULL;
    }
}

/* ---- initialisation as torchvision ---------------------------------------------- */

static void fill_normal(Rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(r);
}
static void fill_uniform(Rng *r, float *x, size_t n, float bound) {
    for (size_t i = 0; i < n; i++) x[i] = bound * (2.0f * rng_uniform(r) - 1.0f);
}
static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

int model_init(Model *m, Arch arch, int num_classes, float width, int hidden, uint64_t seed) {
    size_t *off = NULL;
    if (model_build_spec(m, arch, num_classes, width, hidden, &off)) {
        free(off);
        model_free(m);
        return -1;
    }
    model_build_alloc(m, off);
    free(off);
    Rng r;
    rng_seed(&r, seed);
    for (int l = 0; l < m->nlayers; l++) {
        const Layer *L = &m->layers[l];
        Param *w = L->w >= 0 ? &m->params_info[L->w] : NULL;
        Param *b = L->b >= 0 ? &m->params_info[L->b] : NULL;
        if (L->kind == LK_CONV) {
            /* kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / fan_out) */
            double fan_out = (double)w->dim[0] * (double)w->dim[2] * (double)w->dim[3];
            fill_normal(&r, w->data, w->numel, (float)sqrt(2.0 / fan_out));
            if (b) fill_const(b->data, b->numel, 0.0f);
        } else if (L->kind == LK_BN) {
            fill_const(w->data, w->numel, 1.0f);
            fill_const(b->data, b->numel, 0.0f);
            fill_const(m->params_info[L->rm].data, b->numel, 0.0f);
            fill_const(m->params_info[L->rv].data, b->numel, 1.0f);
        } else if (L->kind == LK_LINEAR) {
            if (arch == ARCH_VGG16) { /* nn.init.normal_(w, 0, 0.01); constant_(b, 0) */
                fill_normal(&r, w->data, w->numel, 0.01f);
                fill_const(b->data, b->numel, 0.0f);
            } else { /* PyTorch's default Linear init: U(-1/sqrt(in), 1/sqrt(in)) for both */
                float bound = (float)(1.0 / sqrt((double)w->dim[1]));
                fill_uniform(&r, w->data, w->numel, bound);
                fill_uniform(&r, b->data, b->numel, bound);
            }
        }
    }
    return 0;
}

/* ---- bookkeeping ---------------------------------------------------------------- */

Param *model_find(Model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params_info[i].name, name)) return &m->params_info[i];
    return NULL;
}

void model_alloc_grads(Model *m) {
    if (!m->grads) {
        m->grads = xcalloc(m->n_params ? m->n_params : 1, sizeof(float));
        for (int i = 0; i < m->nparams; i++) {
            Param *p = &m->params_info[i];
            if (!p->is_buffer) p->grad = m->grads + (p->data - m->params);
        }
    }
    model_zero_grads(m);
}

/* Each thread clears its own contiguous slice (vgg16's 138M gradients are 553 MB). */
static void zero_worker(void *ctx, int ith, int nth) {
    Model *m = ctx;
    long lo, hi;
    par_range((long)m->n_params, ith, nth, &lo, &hi);
    if (hi > lo) memset(m->grads + lo, 0, (size_t)(hi - lo) * sizeof(float));
}

void model_zero_grads(Model *m) {
    if (!m->grads) return;
    if (m->n_params < (1u << 18)) memset(m->grads, 0, m->n_params * sizeof(float));
    else par_run(zero_worker, m);
}

static void free_class_names(ModelConfig *c) {
    if (c->class_names) {
        for (int i = 0; i < c->num_classes; i++) free(c->class_names[i]);
        free(c->class_names);
    }
    c->class_names = NULL;
}

void model_free(Model *m) {
    free_class_names(&m->cfg);
    free(m->params_info);
    free(m->params);
    free(m->grads);
    free(m->buffers);
    free(m->layers);
    meta_free(&m->meta);
    memset(m, 0, sizeof *m);
}

void model_clone(Model *dst, const Model *src) {
    memset(dst, 0, sizeof *dst);
    dst->cfg = src->cfg;
    if (src->cfg.class_names) {
        dst->cfg.class_names = xmalloc((size_t)src->cfg.num_classes * sizeof(char *));
        for (int i = 0; i < src->cfg.num_classes; i++) dst->cfg.class_names[i] = xstrdup(src->cfg.class_names[i]);
    }
    dst->nparams = src->nparams;
    dst->n_params = src->n_params;
    dst->n_buffers = src->n_buffers;
    dst->bn_batches = src->bn_batches;
    dst->params_info = xmalloc((size_t)src->nparams * sizeof(Param));
    memcpy(dst->params_info, src->params_info, (size_t)src->nparams * sizeof(Param));
    dst->params = xmalloc((src->n_params ? src->n_params : 1) * sizeof(float));
    dst->buffers = xmalloc((src->n_buffers ? src->n_buffers : 1) * sizeof(float));
    memcpy(dst->params, src->params, src->n_params * sizeof(float));
    memcpy(dst->buffers, src->buffers, src->n_buffers * sizeof(float));
    for (int i = 0; i < dst->nparams; i++) {
        Param *p = &dst->params_info[i];
        const Param *q = &src->params_info[i];
        p->data = q->is_buffer ? dst->buffers + (q->data - src->buffers) : dst->params + (q->data - src->params);
        p->grad = NULL;
    }
    dst->nlayers = src->nlayers;
    dst->layers = xmalloc((size_t)(src->nlayers ? src->nlayers : 1) * sizeof(Layer));
    memcpy(dst->layers, src->layers, (size_t)src->nlayers * sizeof(Layer));
    meta_copy(&dst->meta, &src->meta);
    model_params_changed(dst);
}
