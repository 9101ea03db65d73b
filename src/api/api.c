/* api: the public C API of gad.h, a thin layer over the library's own modules (nn
 * for models, io for images, attr for attribution maps, gad for the run). Each
 * function checks its arguments, calls the module and turns its result into the
 * API's (NULL or -1, the message in gad_last_error).
 * Not for: anything the modules below do not already do. */
#include "gad.h"
#include "attr/attr.h"
#include "core/err.h"
#include "gad/run.h"
#include "io/dataset.h"
#include "nn/model.h"
#include <stdlib.h>
#include <string.h>

struct gad_model {
    Model m;
    Plan *plan;   /* for inputs of plan_h x plan_w, made on first use */
    int plan_h, plan_w;
};

const char *gad_version(void) { return GAD_VERSION; }
const char *gad_last_error(void) { return err_get(); }
void gad_set_oom_hook(gad_oom_hook hook, void *ud) { err_set_oom_hook(hook, ud); }
void gad_free(void *p) { free(p); }

gad_model *gad_model_load(const char *path) {
    if (!path) {
        err_set("gad_model_load: no path");
        return NULL;
    }
    gad_model *g = xcalloc(1, sizeof *g);
    if (model_load(&g->m, path) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

void gad_model_close(gad_model *g) {
    if (!g) return;
    if (g->plan) plan_free(g->plan);
    model_free(&g->m);
    free(g);
}

int gad_model_classes(const gad_model *g) { return g ? g->m.cfg.num_classes : 0; }

const char *gad_model_class_name(const gad_model *g, int k) {
    if (!g || k < 0 || k >= g->m.cfg.num_classes || !g->m.cfg.class_names) return NULL;
    return g->m.cfg.class_names[k];
}

float *gad_image_load(const gad_model *g, const char *path, int *h, int *w) {
    if (!g || !path || !h || !w) {
        err_set("gad_image_load: a NULL argument");
        return NULL;
    }
    const ModelConfig *c = &g->m.cfg;
    ImagePrep p = {c->resize_short, c->resize_h, c->resize_w, c->crop_h, c->crop_w, NULL, NULL};
    if (c->has_norm) {
        p.mean = c->mean;
        p.std = c->std;
    }
    int ih = c->in_h, iw = c->in_w;
    if (p.crop_h > 0) ih = p.crop_h, iw = p.crop_w;
    else if (p.resize_h > 0) ih = p.resize_h, iw = p.resize_w;
    Tensor x;
    if (input_load_prep(path, &p, ih, iw, &x) != 0) return NULL;
    *h = x.dim[2];
    *w = x.dim[3];
    return x.data; /* one image: the tensor's data is the whole of it, freed with free() */
}

/* g's plan for h x w inputs, one at a time. */
static Plan *plan_for(gad_model *g, int h, int w) {
    if (g->plan && g->plan_h == h && g->plan_w == w) return g->plan;
    if (g->plan) plan_free(g->plan);
    g->plan = plan_new(&g->m, 1, h, w);
    g->plan_h = h;
    g->plan_w = w;
    return g->plan;
}

int gad_predict(gad_model *g, const float *x, int h, int w, float *logits) {
    if (!g || !x || !logits || h < 1 || w < 1) return err_set("gad_predict: a NULL argument or an empty size");
    Plan *p = plan_for(g, h, w);
    if (!p) return -1;
    gad_logits(&g->m, p, x, 1, logits);
    return 0;
}

int gad_explain_map(gad_model *g, const float *x, int h, int w, int target, gad_method method, float *map) {
    if (!g || !x || !map || h < 1 || w < 1) return err_set("gad_explain_map: a NULL argument or an empty size");
    if ((int)method < 0 || (int)method >= ATTR_NMETHODS) return err_set("gad_explain_map: unknown method %d", (int)method);
    if (target < 0 || target >= g->m.cfg.num_classes)
        return err_set("gad_explain_map: target %d: the model has outputs 0..%d", target, g->m.cfg.num_classes - 1);
    Plan *p = plan_for(g, h, w);
    if (!p) return -1;
    AttrOpts o;
    attr_opts_default(&o);
    static const AttrMethod to[] = {ATTR_SALIENCY, ATTR_DECONV, ATTR_GXI, ATTR_GUIDED, ATTR_IG};
    o.method = to[method];
    return attr_compute(&g->m, p, x, 1, &target, &o, map, NULL);
}

int gad_run_report(const gad_run_spec *s) {
    if (!s || !s->weights || s->nweights < 1 || !s->data) {
        err_set_usage("gad_run_report: give weights and data");
        return -2;
    }
    if (s->nweights > GAD_MAX_WEIGHTS) {
        err_set_usage("gad_run_report: at most %d models", GAD_MAX_WEIGHTS);
        return -2;
    }
    RunOpts o;
    run_opts_default(&o);
    for (int k = 0; k < s->nweights; k++) o.weights[k] = s->weights[k];
    o.nweights = s->nweights;
    o.data = s->data;
    o.classes = s->classes;
    if (s->images > 0) o.images = s->images;
    if (s->out_dir) o.out_dir = s->out_dir;
    o.verbose = !s->quiet;
    if (gad_run(&o) == 0) return 0;
    return err_is_usage() ? -2 : -1;
}
