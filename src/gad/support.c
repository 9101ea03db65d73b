/* support: GAD's support regression models (§4.2): a clone of the original model
 * fine-tuned with MSE + Adam on the distanced targets, saved as safetensors with a
 * cache key in the metadata and reused when the key comes again (see gad/run.h).
 * Not for: the targets (distance.c) or the training loop itself (train/). */
#include "gad/run.h"
#include "core/err.h"
#include "io/file.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t gad_hash(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;  /* FNV-1a 64 prime */
    }
    return h;
}

int gad_hash_file(const char *path, uint64_t *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    unsigned char buf[1 << 16];
    for (size_t r; (r = fread(buf, 1, sizeof buf, f)) > 0;) *h = gad_hash(*h, buf, r);
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    return bad ? err_set("%s: read error: %s", path, strerror(bad)) : 0;
}

void gad_support_key(uint64_t weights_hash, uint64_t data_hash, int o1, int o2, const SupportOpts *o,
                     char key[17]) {
    char text[512];
    /* every field that changes the trained weights; %.9g round-trips a float */
    snprintf(text, sizeof text,
             "gad-support-v1 weights=%016llx data=%016llx outputs=%d,%d alpha=%.9g epochs=%d batch=%d "
             "lr=%.9g wd=%.9g train_mode=%d seed=%llu",
             (unsigned long long)weights_hash, (unsigned long long)data_hash, o1, o2, (double)o->alpha,
             o->epochs, o->batch, (double)o->lr, (double)o->weight_decay, o->train_mode,
             (unsigned long long)o->seed);
    uint64_t h = gad_hash(GAD_FNV_INIT, text, strlen(text));
    snprintf(key, 17, "%016llx", (unsigned long long)h);
}

void gad_support_id(SupportId *id, const char *model_name, uint64_t weights_hash, uint64_t data_hash, int o1,
                    int o2, const SupportOpts *o) {
    id->opts = *o;
    gad_support_key(weights_hash, data_hash, o1, o2, o, id->key);
    snprintf(id->file, sizeof id->file, "%.200s-%d-%d-a%g-%.8s.safetensors", model_name, o1, o2, (double)o->alpha,
             id->key);
}

/* Does the file hold the support model of this key? Loads it into out. */
static int try_cache(const Model *orig, const char *path, const char *key, Model *out, float *loss) {
    if (!file_exists(path)) return 0;
    Model m;
    memset(&m, 0, sizeof m);
    if (model_load(&m, path) != 0) {
        fprintf(stderr, "gad: cached support model unusable (%s), training it again\n", err_get());
        return 0;
    }
    const char *k = meta_get(&m.meta, "gad_support_key");
    int ok = k && !strcmp(k, key) && m.cfg.arch == orig->cfg.arch &&
             m.cfg.num_classes == orig->cfg.num_classes && m.n_params == orig->n_params &&
             m.n_buffers == orig->n_buffers;
    if (!ok) {
        model_free(&m);
        return 0;
    }
    const char *l = meta_get(&m.meta, "gad_final_loss");
    if (loss) *loss = l ? strtof(l, NULL) : NAN;
    *out = m;
    return 1;
}

int gad_support_find(const SupportId *id, const char *ro_dir, const char *dir, const Model *orig, Model *out,
                     float *loss, char *path, size_t len) {
    if (loss) *loss = NAN;
    if (ro_dir) {
        snprintf(path, len, "%s/%s", ro_dir, id->file);
        if (try_cache(orig, path, id->key, out, loss)) return 1;
    }
    snprintf(path, len, "%s/%s", dir, id->file);
    return try_cache(orig, path, id->key, out, loss);
}

int gad_support_train(const SupportId *id, const Model *orig, const float *x, const float *targets, int n, int H,
                      int W, const char *path, int verbose, const char *label, Model *out, float *loss) {
    const SupportOpts *o = &id->opts;
    if (loss) *loss = NAN;
    model_clone(out, orig);
    TrainOpts t;
    train_opts_default(&t);
    t.epochs = o->epochs;
    t.batch = o->batch;
    t.lr = o->lr;
    t.weight_decay = o->weight_decay;
    t.train_mode = o->train_mode;
    t.seed = o->seed;
    t.verbose = verbose;
    t.label = label;
    float l = train_regression(out, x, targets, n, H, W, &t);
    if (!isfinite(l) || l < 0) {
        model_free(out);
        if (!isfinite(l)) return err_set("%s: support model training diverged (loss %g)", path, (double)l);
        return -1;  /* train_regression set the error */
    }
    char buf[64];
    meta_set(&out->meta, "gad_support_key", id->key);
    snprintf(buf, sizeof buf, "%.9g", (double)o->alpha);
    meta_set(&out->meta, "gad_alpha", buf);
    snprintf(buf, sizeof buf, "%d", o->epochs);
    meta_set(&out->meta, "gad_epochs", buf);
    snprintf(buf, sizeof buf, "%.9g", (double)o->lr);
    meta_set(&out->meta, "gad_lr", buf);
    meta_set(&out->meta, "gad_bn_dropout", o->train_mode ? "train" : "eval");
    snprintf(buf, sizeof buf, "%.9g", (double)l);
    meta_set(&out->meta, "gad_final_loss", buf);

    /* the cache directory, then an atomic save */
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = 0;
        rc = file_mkdirs(dir);
    }
    free(dir);
    if (rc == 0) rc = model_save(out, path);
    if (rc != 0) {
        model_free(out);
        return -1;
    }
    if (loss) *loss = l;
    return 0;
}
