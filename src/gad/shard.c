/* shard: a GAD run split over its images for schedulers (Slurm job arrays,
 * Kubernetes Indexed Jobs, GNU parallel) and merged back (see gad/run.h, "shards").
 * A shard writes everything the end of the run needs: the settings, the inputs'
 * hashes, every per-image result (cells and curves, numbers written so that they
 * read back as the same bits) and its figure candidates; gad_merge puts the images
 * back in the run's order and ends the run as one process would
 * (gad_model_finish, gad_print_tables, gad_write_report).
 * Not for: computing anything (run.c), the report's files (report.c), scheduling
 * (tools/cluster/). */
#include "gad/run.h"
#include "core/err.h"
#include "io/file.h"
#include "io/json.h"
#include "io/npy.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARD_FORMAT 1

/* ---- which shard ---- */

static int env_int(const char *name, long *v) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *e;
    errno = 0;
    *v = strtol(s, &e, 10);
    if (errno || *e) return -1;
    return 1;
}

/* K and N from the environment of a scheduler's task. A Slurm array's task ids are
 * the shard numbers themselves (--array=1-N), so that resubmitting some of them
 * (--array=2,5) reruns those shards; N is --shards, or the array's size when the
 * array is exactly 1-N. */
static int shard_auto(int shards, int *k, int *n) {
    long id, lo, hi, count, idx;
    int got = env_int("SLURM_ARRAY_TASK_ID", &id);
    if (got < 0) return err_set_usage("--shard auto: SLURM_ARRAY_TASK_ID is not a whole number");
    if (got > 0) {
        if (shards <= 0) {
            if (env_int("SLURM_ARRAY_TASK_MIN", &lo) <= 0 || env_int("SLURM_ARRAY_TASK_MAX", &hi) <= 0 ||
                env_int("SLURM_ARRAY_TASK_COUNT", &count) <= 0)
                return err_set_usage("--shard auto: SLURM_ARRAY_TASK_ID is set but not _MIN, _MAX and _COUNT");
            if (lo != 1 || hi != count)
                return err_set_usage("--shard auto: the job array is %ld-%ld (%ld tasks), not 1-N: give --shards N "
                                     "(the task ids are the shard numbers; a rerun of some shards needs it)",
                                     lo, hi, count);
            shards = (int)count;
        }
        if (id < 1 || id > shards)
            return err_set_usage("--shard auto: array task %ld is not a shard of 1..%d (submit --array=1-%d, or "
                                 "a part of it)",
                                 id, shards, shards);
        *k = (int)id;
        *n = shards;
        return 0;
    }
    const char *which = NULL;
    if ((got = env_int("JOB_COMPLETION_INDEX", &idx)) > 0) which = "JOB_COMPLETION_INDEX";
    else if ((got = env_int("PARALLEL_SEQ", &idx)) > 0) which = "PARALLEL_SEQ", idx--;
    if (got < 0) return err_set_usage("--shard auto: the scheduler's index is not a whole number");
    if (!which)
        return err_set_usage("--shard auto: no scheduler index in the environment (SLURM_ARRAY_TASK_ID, "
                             "JOB_COMPLETION_INDEX or PARALLEL_SEQ): give --shard K/N");
    if (shards <= 0) return err_set_usage("--shard auto with %s: give the number of shards, --shards N", which);
    *k = (int)idx + 1;
    *n = shards;
    return 0;
}

int gad_shard_parse(const char *spec, int shards, int *k, int *n) {
    if (!strcmp(spec, "auto")) {
        if (shard_auto(shards, k, n) != 0) return -1;
    } else {
        char *e;
        long a = strtol(spec, &e, 10), b;
        if (e == spec || *e != '/') return err_set_usage("--shard: K/N or auto, not '%s'", spec);
        const char *t = e + 1;
        b = strtol(t, &e, 10);
        if (e == t || *e || a < 1 || b < 1 || a > b || b > 100000)
            return err_set_usage("--shard: K/N with 1 <= K <= N, not '%s'", spec);
        *k = (int)a;
        *n = (int)b;
    }
    if (shards > 0 && *n != shards) return err_set_usage("--shard %s gives %d shards, --shards %d", spec, *n, shards);
    if (*k < 1 || *k > *n) return err_set_usage("--shard %s: shard %d of %d does not exist", spec, *k, *n);
    return 0;
}

/* ---- writing ---- */

static void jstr_or_null(FILE *f, const char *s) {
    if (s) json_write_string(f, s);
    else fputs("null", f);
}

/* A float that reads back as the same float (%.9g), NaN as null. */
static void jf(FILE *f, float v) {
    if (isnan(v)) fputs("null", f);
    else fprintf(f, "%.9g", (double)v);
}

/* The settings: every option that changes a result (compared between shards) and
 * the cache's directories (kept, not compared: a node may have its own). */
static void write_settings(FILE *f, const RunOpts *o) {
    fprintf(f, "\"settings\":{\"weights\":[");
    for (int k = 0; k < o->nweights; k++) {
        if (k) fputc(',', f);
        json_write_string(f, o->weights[k]);
    }
    fprintf(f, "],\"data\":");
    json_write_string(f, o->data);
    fprintf(f, ",\"classes\":");
    jstr_or_null(f, o->classes);
    fprintf(f, ",\"outputs\":");
    jstr_or_null(f, o->outputs);
    fprintf(f, ",\"methods\":[");
    for (int m = 0; m < o->nmethods; m++) fprintf(f, "%s%d", m ? "," : "", (int)o->methods[m]);
    fprintf(f, "],\"images\":%d,\"alphas\":[", o->images);
    for (int a = 0; a < o->nalphas; a++) {
        if (a) fputc(',', f);
        jf(f, o->alphas[a]);
    }
    fprintf(f, "],\"epochs\":%d,\"batch\":%d,\"lr\":", o->epochs, o->batch);
    jf(f, o->lr);
    fprintf(f, ",\"weight_decay\":");
    jf(f, o->weight_decay);
    fprintf(f, ",\"train_mode\":%d,\"seed\":\"%llu\",\"train_images\":%d,\"val_frac\":", o->train_mode,
            (unsigned long long)o->seed, o->train_images);
    jf(f, o->val_frac);
    fprintf(f, ",\"size\":%d,\"present_rule\":%d,\"present\":", o->size, (int)o->present.rule);
    jf(f, o->present.value);
    fprintf(f, ",\"hull_of\":%d,\"hull_keep\":", (int)o->hull_of);
    jf(f, o->hull_keep);
    fprintf(f, ",\"rc_area\":%d,\"count_empty\":%d,\"occlude_black\":%d,\"control_draws\":%d,\"curves\":%d,"
               "\"curve_steps\":%d,\"ig_steps\":%d,\"fig_images\":%d,\"fig_least\":%d",
            (int)o->rc_area, o->count_empty, o->occlude_black, o->control_draws, o->curves, o->curve_steps,
            o->ig_steps, o->fig_images, o->fig_least);
    /* --images-list: its path and its text's hash (a list edited between shards differs) */
    fprintf(f, ",\"images_list\":");
    jstr_or_null(f, o->images_list);
    unsigned char *text = NULL;
    size_t len = 0;
    if (o->images_list && file_read_all(o->images_list, (size_t)1 << 30, &text, &len) == 0)
        fprintf(f, ",\"images_list_fnv\":\"%016llx\"", (unsigned long long)gad_hash(GAD_FNV_INIT, text, len));
    free(text);
    fprintf(f, "},\n");
    fprintf(f, "\"cache\":{\"support_dir\":");
    jstr_or_null(f, o->support_dir);
    fprintf(f, ",\"support_ro\":");
    jstr_or_null(f, o->support_ro);
    fprintf(f, "}");
}

static void write_hull(FILE *f, const GadHull *h) {
    fprintf(f, "[%d,%d,", h->npoints, h->nvert);
    json_write_number(f, h->area);
    fprintf(f, ",%d]", h->pixels);
}

/* One image: [index, class, out1, out2, [cells], "curve", "path"]; a cell is
 * [orig hull, GAD hull, gad_nnz, forced, sup_pixels, rc, rs_gad, rs_sup, rs_ctl]. */
static void write_image(FILE *f, const RunOpts *o, const GadImageResult *im) {
    fprintf(f, "[%d,%d,", im->index, im->cls);
    jf(f, im->out[0]);
    fputc(',', f);
    jf(f, im->out[1]);
    fprintf(f, ",[");
    for (int q = 0; q < o->nmethods * 2; q++) {
        const GadCell *c = &im->cell[q];
        fprintf(f, "%s[", q ? "," : "");
        write_hull(f, &c->orig);
        fputc(',', f);
        write_hull(f, &c->gad);
        fprintf(f, ",%d,%d,%d", c->gad_nnz, c->forced, c->sup_pixels);
        const double v[4] = {c->rc, c->rs_gad, c->rs_sup, c->rs_ctl};
        for (int k = 0; k < 4; k++) {
            fputc(',', f);
            json_write_number(f, v[k]);
        }
        fputc(']', f);
    }
    /* the curves as one string of C99 hex floats: exact, and one JSON value */
    fprintf(f, "],\"");
    int nv = im->curve ? GAD_NCURVES(o->nmethods) * o->curves * (o->curve_steps + 1) : 0;
    for (int k = 0; k < nv; k++) fprintf(f, "%s%a", k ? " " : "", im->curve[k]);
    fprintf(f, "\",");
    json_write_string(f, im->name ? im->name : "");
    fputc(']', f);
}

static void write_model(FILE *f, const RunOpts *o, const GadModelResult *r) {
    fprintf(f, "{\"name\":");
    json_write_string(f, r->name);
    fprintf(f, ",\"weights\":");
    json_write_string(f, r->weights);
    fprintf(f, ",\"arch\":\"%s\",\"outputs\":[%d,%d],\"class_names\":[", r->arch, r->o[0], r->o[1]);
    json_write_string(f, r->class_name[0]);
    fputc(',', f);
    json_write_string(f, r->class_name[1]);
    fprintf(f, "],\"H\":%d,\"W\":%d,\"run_images\":%d,\"weights_fnv\":\"%016llx\",\"data_fnv\":\"%016llx\","
               "\"has_norm\":%d,\"norm\":[",
            r->H, r->W, r->run_images, (unsigned long long)r->weights_fnv, (unsigned long long)r->data_fnv, r->has_norm);
    for (int k = 0; k < 6; k++) {
        if (k) fputc(',', f);
        jf(f, k < 3 ? r->mean[k] : r->std[k - 3]);
    }
    fprintf(f, "],\"seconds\":");
    json_write_number(f, r->seconds);
    fprintf(f, ",\"phase\":[");
    for (int p = 0; p < GAD_NPHASES; p++) {
        if (p) fputc(',', f);
        json_write_number(f, r->phase[p]);
    }
    fprintf(f, "],\"supports\":[");
    for (int a = 0; a < o->nalphas; a++) {
        fprintf(f, "%s[", a ? "," : "");
        json_write_string(f, r->support_path[a]);
        fprintf(f, ",%d,", r->support_trained[a]);
        jf(f, r->support_loss[a]);
        fputc(']', f);
    }
    fprintf(f, "],\"fig\":[");
    for (int j = 0; j < r->nfig; j++) fprintf(f, "%s%d", j ? "," : "", r->fig[j].pos);
    fprintf(f, "],\n\"images\":[");
    for (int i = 0; i < r->nimages; i++) {
        fprintf(f, "%s\n", i ? "," : "");
        write_image(f, o, &r->img[i]);
    }
    fprintf(f, "]}");
}

static void shard_dir(char *buf, size_t len, const char *out, int k, int n) {
    snprintf(buf, len, "%s/shards/%d-of-%d", out, k, n);
}

/* The figure candidates of model r: [nfig, 3 + 2 * nmethods, H, W] (input, then
 * each method's original and GAD maps). */
static int write_figs(const char *dir, const RunOpts *o, const GadModelResult *r) {
    char path[1200];
    snprintf(path, sizeof path, "%s/fig-%s.npy", dir, r->name);
    size_t npix = (size_t)r->H * r->W, per = (3 + 2 * (size_t)o->nmethods) * npix;
    float *buf = xmalloc(sizeof(float) * per * (size_t)(r->nfig > 0 ? r->nfig : 1));
    for (int j = 0; j < r->nfig; j++) {
        memcpy(buf + per * j, r->fig[j].x, sizeof(float) * 3 * npix);
        memcpy(buf + per * j + 3 * npix, r->fig[j].maps, sizeof(float) * 2 * o->nmethods * npix);
    }
    int64_t dim[4] = {r->nfig, 3 + 2 * o->nmethods, r->H, r->W};
    int rc = npy_write_data(path, buf, 4, dim);
    free(buf);
    return rc;
}

int gad_shard_write(const GadRunResult *rr) {
    const RunOpts *o = rr->opts;
    char dir[1024], path[1100];
    shard_dir(dir, sizeof dir, o->out_dir, o->shard_k, o->shard_n);
    if (file_mkdirs(dir) != 0) return -1;
    for (int k = 0; k < rr->nmodels; k++)
        if (rr->model[k].nfig > 0 && write_figs(dir, o, &rr->model[k]) != 0) return -1;
    snprintf(path, sizeof path, "%s/shard.json", dir);
    AtomicFile af;
    if (afile_open(&af, path) != 0) return -1;
    FILE *f = af.f;
    fprintf(f, "{\"gad_shard\":%d,\"shard\":%d,\"shards\":%d,\"seconds\":", SHARD_FORMAT, o->shard_k, o->shard_n);
    json_write_number(f, rr->seconds);
    /* the report's chosen images: not a result, so not compared between shards */
    fprintf(f, ",\"explain_images\":");
    if (o->explain_n < 0) fputs("null", f);
    else {
        fputc('[', f);
        for (int k = 0; k < o->explain_n; k++) fprintf(f, "%s%d", k ? "," : "", o->explain_images[k]);
        fputc(']', f);
    }
    fprintf(f, ",\n");
    write_settings(f, o);
    fprintf(f, ",\n\"models\":[");
    for (int k = 0; k < rr->nmodels; k++) {
        fprintf(f, "%s\n", k ? "," : "");
        write_model(f, o, &rr->model[k]);
    }
    fprintf(f, "]}\n");
    return afile_commit(&af);
}

/* ---- merging ---- */

typedef struct {
    int k, n;
    Json root;
    char path[1100];
} Shard;

static int json_equal(const Json *a, const Json *b) {
    if (a->type != b->type || a->n != b->n) return 0;
    switch (a->type) {
    case JSON_NULL: return 1;
    case JSON_BOOL: return a->boolean == b->boolean;
    case JSON_NUMBER: return a->num == b->num;
    case JSON_STRING: return !strcmp(a->str, b->str);
    case JSON_ARRAY:
    case JSON_OBJECT:
        for (int i = 0; i < a->n; i++)
            if ((a->type == JSON_OBJECT && strcmp(a->key[i], b->key[i])) || !json_equal(&a->kid[i], &b->kid[i]))
                return 0;
        return 1;
    }
    return 0;
}

/* The split present under OUT/shards: *n (refused when several), which of 1..n
 * have their shard.json. Returns the count found, or -1 (err set). */
static int list_shards(const char *out, int *n, unsigned char **done) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/shards", out);
    DIR *d = opendir(dir);
    if (!d) return err_set("%s: no shards here (run gad run ... --shard K/N --out %s first)", dir, out);
    *n = 0;
    char other[300] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int k, nn;
        char tail;
        if (sscanf(e->d_name, "%d-of-%d%c", &k, &nn, &tail) != 2 || k < 1 || k > nn) continue;
        if (*n == 0) *n = nn;
        else if (nn != *n && !*other) snprintf(other, sizeof other, "%s", e->d_name);
    }
    closedir(d);
    if (*n == 0) return err_set("%s: no shards here (run gad run ... --shard K/N --out %s first)", dir, out);
    if (*other)
        return err_set("%s: shards of two splits (%s and ?-of-%d): remove the stale ones or use another --out", dir,
                       other, *n);
    *done = xcalloc((size_t)*n + 1, 1);
    int found = 0;
    for (int k = 1; k <= *n; k++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%d-of-%d/shard.json", dir, k, *n);
        (*done)[k] = (unsigned char)file_exists(path);
        found += (*done)[k];
    }
    return found;
}

/* "2, 5 and 7" of the shards not done. */
static void missing_list(const unsigned char *done, int n, char *buf, size_t len) {
    int miss = 0, shown = 0;
    buf[0] = 0;
    for (int k = 1; k <= n; k++) miss += !done[k];
    for (int k = 1; k <= n; k++)
        if (!done[k]) {
            size_t l = strlen(buf);
            if (l + 24 >= len) {
                snprintf(buf + l, len - l, " ...");
                return;
            }
            snprintf(buf + l, len - l, "%s%d", shown == 0 ? "" : shown == miss - 1 ? " and " : ", ", k);
            shown++;
        }
}

static int load_shard(Shard *s, const char *out, int k, int n) {
    s->k = k;
    s->n = n;
    snprintf(s->path, sizeof s->path, "%s/shards/%d-of-%d/shard.json", out, k, n);
    unsigned char *text;
    size_t len;
    if (file_read_all(s->path, (size_t)1 << 31, &text, &len) != 0) return -1;
    int rc = json_parse((const char *)text, len, &s->root);
    free(text);
    if (rc != 0) return err_prefix(s->path);
    const Json *fmt = json_get(&s->root, "gad_shard"), *kk = json_get(&s->root, "shard"), *nn = json_get(&s->root, "shards");
    if (!fmt || fmt->num != SHARD_FORMAT || !kk || kk->num != k || !nn || nn->num != n || !json_get(&s->root, "settings") ||
        !json_get(&s->root, "models"))
        return err_set("%s: not shard %d of %d of a gad run of this version", s->path, k, n);
    return 0;
}

/* Shard s made with shard 1's settings, weights and data? The first difference. */
static int same_run(const Shard *s, const Shard *first) {
    const Json *a = json_get(&first->root, "settings"), *b = json_get(&s->root, "settings");
    for (int i = 0; i < a->n; i++) {
        const Json *v = json_get(b, a->key[i]);
        if (!v || !json_equal(&a->kid[i], v))
            return err_set("%s: made with other settings than %s (%s differs): two runs went to the same --out; "
                           "run the odd shards again with the same flags, or use another --out",
                           s->path, first->path, a->key[i]);
    }
    if (b->n != a->n) return err_set("%s: made with other settings than %s", s->path, first->path);
    const Json *ma = json_get(&first->root, "models"), *mb = json_get(&s->root, "models");
    static const char *keys[] = {"name", "weights_fnv", "data_fnv", "run_images", "H", "W", "arch", "outputs"};
    if (mb->n != ma->n) return err_set("%s: %d models, %s has %d", s->path, mb->n, first->path, ma->n);
    for (int m = 0; m < ma->n; m++)
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const Json *x = json_get(&ma->kid[m], keys[i]), *y = json_get(&mb->kid[m], keys[i]);
            if (!x || !y || !json_equal(x, y))
                return err_set("%s: model %d's %s differs from %s's (%s): other weights or data than the other "
                               "shards",
                               s->path, m + 1, keys[i], first->path,
                               !strcmp(keys[i], "weights_fnv") ? "the weights file changed"
                               : !strcmp(keys[i], "data_fnv")  ? "the data changed"
                                                               : "another model or input");
        }
    return 0;
}

static double num(const Json *o, const char *k) {
    const Json *v = json_get(o, k);
    return v && v->type == JSON_NUMBER ? v->num : NAN;
}
static float fnum(const Json *v) { return v->type == JSON_NUMBER ? (float)v->num : NAN; }
static double dnum(const Json *v) { return v->type == JSON_NUMBER ? v->num : NAN; }
static const char *str(const Json *o, const char *k) {
    const Json *v = json_get(o, k);
    return v && v->type == JSON_STRING ? v->str : NULL;
}

/* The run's options from a shard's settings (strings point into s). */
static int settings_opts(const Json *s, RunOpts *o) {
    run_opts_default(o);
    const Json *w = json_get(s, "weights"), *m = json_get(s, "methods"), *al = json_get(s, "alphas");
    if (!w || !m || !al || w->n > GAD_MAX_WEIGHTS || m->n > ATTR_NMETHODS || al->n > GAD_MAX_ALPHAS || !str(s, "data"))
        return -1;
    o->nweights = w->n;
    for (int k = 0; k < w->n; k++) o->weights[k] = w->kid[k].str;
    o->data = str(s, "data");
    o->classes = str(s, "classes");
    o->outputs = str(s, "outputs");
    o->nmethods = m->n;
    for (int k = 0; k < m->n; k++) o->methods[k] = (AttrMethod)m->kid[k].num;
    o->nalphas = al->n;
    for (int k = 0; k < al->n; k++) o->alphas[k] = fnum(&al->kid[k]);
    const char *seed = str(s, "seed");
    o->seed = seed ? strtoull(seed, NULL, 10) : 0;
    o->images = (int)num(s, "images");
    o->epochs = (int)num(s, "epochs");
    o->batch = (int)num(s, "batch");
    o->lr = (float)num(s, "lr");
    o->weight_decay = (float)num(s, "weight_decay");
    o->train_mode = (int)num(s, "train_mode");
    o->train_images = (int)num(s, "train_images");
    o->val_frac = (float)num(s, "val_frac");
    o->size = (int)num(s, "size");
    o->present.rule = (PresentRule)num(s, "present_rule");
    o->present.value = (float)num(s, "present");
    o->hull_of = (HullOf)num(s, "hull_of");
    o->hull_keep = (float)num(s, "hull_keep");
    o->rc_area = (RcArea)num(s, "rc_area");
    o->count_empty = (int)num(s, "count_empty");
    o->occlude_black = (int)num(s, "occlude_black");
    o->control_draws = (int)num(s, "control_draws");
    o->curves = (int)num(s, "curves");
    o->curve_steps = (int)num(s, "curve_steps");
    o->ig_steps = (int)num(s, "ig_steps");
    o->fig_images = (int)num(s, "fig_images");
    o->fig_least = (int)num(s, "fig_least");
    o->images_list = str(s, "images_list");
    return 0;
}

static void read_hull(const Json *v, GadHull *h) {
    h->npoints = (int)v->kid[0].num;
    h->nvert = (int)v->kid[1].num;
    h->area = v->kid[2].num;
    h->pixels = (int)v->kid[3].num;
}

/* Image i of a shard's model into im (the run's place pos). */
static int read_image(const RunOpts *o, const Json *v, GadImageResult *im) {
    int nc = o->nmethods * 2, nv = o->curves ? GAD_NCURVES(o->nmethods) * o->curves * (o->curve_steps + 1) : 0;
    if (v->type != JSON_ARRAY || v->n != 7 || v->kid[4].n != nc || v->kid[5].type != JSON_STRING ||
        v->kid[6].type != JSON_STRING)
        return -1;
    im->index = (int)v->kid[0].num;
    im->name = xstrdup(v->kid[6].str);
    im->cls = (int)v->kid[1].num;
    im->out[0] = fnum(&v->kid[2]);
    im->out[1] = fnum(&v->kid[3]);
    im->cell = xcalloc((size_t)nc, sizeof(GadCell));
    for (int q = 0; q < nc; q++) {
        const Json *c = &v->kid[4].kid[q];
        if (c->type != JSON_ARRAY || c->n != 9 || c->kid[0].n != 4 || c->kid[1].n != 4) return -1;
        GadCell *cell = &im->cell[q];
        read_hull(&c->kid[0], &cell->orig);
        read_hull(&c->kid[1], &cell->gad);
        cell->gad_nnz = (int)c->kid[2].num;
        cell->forced = (int)c->kid[3].num;
        cell->sup_pixels = (int)c->kid[4].num;
        cell->rc = dnum(&c->kid[5]);
        cell->rs_gad = dnum(&c->kid[6]);
        cell->rs_sup = dnum(&c->kid[7]);
        cell->rs_ctl = dnum(&c->kid[8]);
    }
    if (nv == 0) return 0;
    im->curve = xmalloc(sizeof(double) * (size_t)nv);
    const char *p = v->kid[5].str;
    for (int k = 0; k < nv; k++) {
        char *e;
        im->curve[k] = strtod(p, &e);
        if (e == p) return -1;
        p = e;
    }
    return 0;
}

/* Shard sh's figure candidates of model mj (name) appended to r->fig. */
static int read_figs(const RunOpts *o, const Shard *sh, const Json *mj, GadModelResult *r) {
    const Json *pos = json_get(mj, "fig");
    if (!pos || pos->type != JSON_ARRAY) return err_set("%s: no figure list", sh->path);
    if (pos->n == 0) return 0;
    char path[1200];
    snprintf(path, sizeof path, "%s/shards/%d-of-%d/fig-%s.npy", o->out_dir, sh->k, sh->n, r->name);
    Tensor t;
    if (npy_read(path, &t) != 0) return -1;
    size_t npix = (size_t)r->H * r->W, per = (3 + 2 * (size_t)o->nmethods) * npix;
    if (t.ndim != 4 || t.dim[0] != pos->n || t.dim[1] != 3 + 2 * o->nmethods || t.dim[2] != r->H || t.dim[3] != r->W) {
        tensor_free(&t);
        return err_set("%s: not the %d figure images of %s", path, pos->n, sh->path);
    }
    r->fig = realloc(r->fig, sizeof(GadFigImage) * (size_t)(r->nfig + pos->n));
    GAD_ASSERT(r->fig);
    for (int j = 0; j < pos->n; j++) {
        GadFigImage *fi = &r->fig[r->nfig++];
        fi->pos = (int)pos->kid[j].num;
        fi->x = xmalloc(sizeof(float) * 3 * npix);
        fi->maps = xmalloc(sizeof(float) * 2 * (size_t)o->nmethods * npix);
        memcpy(fi->x, t.data + per * j, sizeof(float) * 3 * npix);
        memcpy(fi->maps, t.data + per * j + 3 * npix, sizeof(float) * 2 * (size_t)o->nmethods * npix);
    }
    tensor_free(&t);
    return 0;
}

static int fig_cmp(const void *a, const void *b) {
    int x = ((const GadFigImage *)a)->pos, y = ((const GadFigImage *)b)->pos;
    return (x > y) - (x < y);
}

/* Model m's fields, shared by every shard (checked by same_run), from the first. */
static int model_head(const RunOpts *o, const Json *mj, GadModelResult *r) {
    const Json *outs = json_get(mj, "outputs"), *cn = json_get(mj, "class_names"), *norm = json_get(mj, "norm");
    const Json *sup = json_get(mj, "supports");
    if (!str(mj, "name") || !str(mj, "weights") || !str(mj, "arch") || !outs || outs->n != 2 || !cn || cn->n != 2 ||
        !norm || norm->n != 6 || !sup || sup->n != o->nalphas)
        return -1;
    snprintf(r->name, sizeof r->name, "%s", str(mj, "name"));
    snprintf(r->weights, sizeof r->weights, "%s", str(mj, "weights"));
    snprintf(r->arch, sizeof r->arch, "%s", str(mj, "arch"));
    for (int a = 0; a < 2; a++) {
        r->o[a] = (int)outs->kid[a].num;
        snprintf(r->class_name[a], sizeof r->class_name[a], "%s", cn->kid[a].str);
    }
    r->H = (int)num(mj, "H");
    r->W = (int)num(mj, "W");
    r->run_images = r->nimages = (int)num(mj, "run_images");
    r->has_norm = (int)num(mj, "has_norm");
    for (int k = 0; k < 3; k++) {
        r->mean[k] = fnum(&norm->kid[k]);
        r->std[k] = fnum(&norm->kid[k + 3]);
    }
    for (int a = 0; a < o->nalphas; a++) {
        const Json *s = &sup->kid[a];
        snprintf(r->support_path[a], sizeof r->support_path[a], "%s", s->kid[0].str);
        r->support_loss[a] = fnum(&s->kid[2]);
    }
    return 0;
}

/* Model m of the run from all n shards: the images back in the run's order. */
static int merge_model(const RunOpts *o, const Shard *sh, int n, int m, GadModelResult *r) {
    const Json *m0 = &json_get(&sh[0].root, "models")->kid[m];
    if (model_head(o, m0, r) != 0) return err_set("%s: model %d is incomplete", sh[0].path, m + 1);
    r->img = xcalloc((size_t)(r->nimages > 0 ? r->nimages : 1), sizeof(GadImageResult));
    int got = 0;
    for (int s = 0; s < n; s++) {
        const Json *mj = &json_get(&sh[s].root, "models")->kid[m], *imgs = json_get(mj, "images");
        if (!imgs || imgs->type != JSON_ARRAY) return err_set("%s: model %d has no images", sh[s].path, m + 1);
        for (int i = 0; i < imgs->n; i++) {
            int pos = s + i * n;
            if (pos >= r->nimages || r->img[pos].cell)
                return err_set("%s: image %d is not one of shard %d's", sh[s].path, i + 1, s + 1);
            if (read_image(o, &imgs->kid[i], &r->img[pos]) != 0)
                return err_set("%s: model %d, image %d is malformed", sh[s].path, m + 1, i + 1);
            got++;
        }
        r->seconds += num(mj, "seconds");
        const Json *ph = json_get(mj, "phase");
        for (int p = 0; ph && ph->type == JSON_ARRAY && p < ph->n && p < GAD_NPHASES; p++)
            if (p != GAD_PHASE_FIGURES && p != GAD_PHASE_REPORT) r->phase[p] += dnum(&ph->kid[p]);
        const Json *sup = json_get(mj, "supports");
        for (int a = 0; a < o->nalphas && sup && sup->n == o->nalphas; a++)
            r->support_trained[a] |= sup->kid[a].kid[1].num != 0;
        if (read_figs(o, &sh[s], mj, r) != 0) return -1;
    }
    r->shards = n;
    if (got != r->nimages)
        return err_set("%s: the shards hold %d of the run's %d images of %s", sh[0].path, got, r->nimages, r->name);
    qsort(r->fig, (size_t)r->nfig, sizeof *r->fig, fig_cmp);
    return 0;
}

static void free_shards(Shard *sh, int n) {
    for (int s = 0; s < n; s++) json_free(&sh[s].root);
    free(sh);
}

int gad_merge(const char *out_dir, int verbose) {
    int n = 0;
    unsigned char *done = NULL;
    int found = list_shards(out_dir, &n, &done);
    if (found < 0) return -1;
    if (found < n) {
        char miss[256];
        missing_list(done, n, miss, sizeof miss);
        free(done);
        return err_set("%s/shards: %d of %d shards are missing or unfinished (no shard.json): %s; run them (gad run "
                       "... --shard K/%d), then gad merge again",
                       out_dir, n - found, n, miss, n);
    }
    free(done);
    Shard *sh = xcalloc((size_t)n, sizeof(Shard));
    int rc = 0;
    for (int s = 0; s < n && rc == 0; s++) rc = load_shard(&sh[s], out_dir, s + 1, n);
    for (int s = 1; s < n && rc == 0; s++) rc = same_run(&sh[s], &sh[0]);
    RunOpts o;
    if (rc == 0 && settings_opts(json_get(&sh[0].root, "settings"), &o) != 0)
        rc = err_set("%s: the settings are incomplete", sh[0].path);
    if (rc != 0) {
        free_shards(sh, n);
        return -1;
    }
    o.out_dir = out_dir;
    o.verbose = verbose;
    const Json *ex = json_get(&sh[0].root, "explain_images");  /* shard 1's choice */
    if (ex && ex->type == JSON_ARRAY) {
        o.explain_n = 0;
        for (int k = 0; k < ex->n && k < GAD_MAX_EXPLAIN; k++) o.explain_images[o.explain_n++] = (int)ex->kid[k].num;
    }
    GadRunResult rr;
    rr.opts = &o;
    rr.nmodels = o.nweights;
    rr.model = xcalloc((size_t)o.nweights, sizeof(GadModelResult));
    rr.seconds = 0;
    for (int s = 0; s < n; s++) rr.seconds += num(&sh[s].root, "seconds");
    if (json_get(&sh[0].root, "models")->n != o.nweights) rc = err_set("%s: models and weights differ", sh[0].path);
    for (int m = 0; m < o.nweights && rc == 0; m++) {
        for (int a = 0; a < GAD_MAX_ALPHAS; a++) rr.model[m].support_loss[a] = NAN;
        rc = merge_model(&o, sh, n, m, &rr.model[m]);
        if (rc == 0) rc = gad_model_finish(&o, &rr.model[m]);
    }
    if (rc == 0) {
        gad_print_tables(stdout, &rr);
        rc = gad_write_report(&rr);
    }
    for (int m = 0; m < rr.nmodels; m++) gad_model_free(&rr.model[m]);
    free(rr.model);
    free_shards(sh, n);
    return rc;
}
