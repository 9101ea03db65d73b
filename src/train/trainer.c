/* trainer: the training loops. One loop serves both uses:
 *   - classifier training: cross-entropy to integer labels, validation accuracy
 *     after each epoch (gad train);
 *   - regression: MSE to given target logits (GAD's support models, paper §4.2).
 * Each epoch visits the images in a new seeded random order, in mini-batches of
 * o->batch; the last partial batch is included (in train mode a last batch of a
 * single image is merged into the one before: batch norm cannot take batch
 * statistics of one value per channel). Everything the loop needs (one Plan, the
 * batch buffers, Adam's moments) is allocated once before the first batch.
 * Progress goes to stderr: one line rewritten with \r on a terminal, otherwise a
 * plain line every few seconds, and a summary line per epoch.
 * Learning rate: constant, or cosine decay over all steps (o->cosine).
 * Not for: augmentation, other schedules, early stopping, checkpoints. */
#include "train/train.h"
#include "core/err.h"
#include "core/rng.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void train_opts_default(TrainOpts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 32;
    o->lr = 1e-3f; /* everything else 0: eval mode, no decay, no schedule, quiet */
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(char *buf, size_t len, double s) {
    if (!(s >= 0) || s > 1e7) { snprintf(buf, len, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, len, "%lds", t);
}

/* ---- progress on stderr ---- */

typedef struct {
    int on, tty;
    const char *label;
    double t_start, t_print, t_train; /* t_train: seconds spent in training batches */
    long done, total;                 /* training images processed / to process */
    int open_line;                    /* a \r line is on screen */
} Progress;

static void prog_init(Progress *pg, const TrainOpts *o, long total) {
    memset(pg, 0, sizeof *pg);
    pg->on = o->verbose;
    pg->tty = isatty(fileno(stderr));
    pg->label = o->label ? o->label : "train";
    pg->t_start = pg->t_print = now_s();
    pg->total = total;
}

static void prog_batch(Progress *pg, int epoch, int epochs, int b, int nb, double loss) {
    if (!pg->on) return;
    double t = now_s();
    if (pg->tty ? t - pg->t_print < 0.2 && b + 1 < nb : t - pg->t_print < 5.0) return;
    pg->t_print = t;
    double rate = pg->t_train > 0 ? pg->done / pg->t_train : 0;
    char eta[32];
    fmt_time(eta, sizeof eta, rate > 0 ? (pg->total - pg->done) / rate : -1);
    fprintf(stderr, "%s%s: epoch %d/%d batch %d/%d loss %.4f %.1f img/s ETA %s%s", pg->tty ? "\r" : "",
            pg->label, epoch + 1, epochs, b + 1, nb, loss, rate, eta, pg->tty ? "\033[K" : "\n");
    pg->open_line = pg->tty;
    fflush(stderr);
}

static void prog_epoch(Progress *pg, int epoch, int epochs, double loss, float val_acc, int nval) {
    if (!pg->on) return;
    char el[32], eta[32];
    double rate = pg->t_train > 0 ? pg->done / pg->t_train : 0;
    fmt_time(el, sizeof el, now_s() - pg->t_start);
    fmt_time(eta, sizeof eta, rate > 0 ? (pg->total - pg->done) / rate : -1);
    if (pg->open_line) fputc('\r', stderr);
    fprintf(stderr, "%s: epoch %d/%d loss %.4f", pg->label, epoch + 1, epochs, loss);
    if (nval > 0) fprintf(stderr, " val_acc %.2f%% (%d images)", 100.0 * val_acc, nval);
    fprintf(stderr, " %.1f img/s elapsed %s ETA %s%s\n", rate, el, eta, pg->tty ? "\033[K" : "");
    pg->open_line = 0;
    fflush(stderr);
}

/* ---- evaluation ---- */

static int argmax_row(const float *z, int K) {
    int best = 0;
    for (int j = 1; j < K; j++) if (z[j] > z[best]) best = j;
    return best;
}

/* Accuracy with an existing plan (eval mode, chunks of the plan's batch). */
static float accuracy_with(Model *m, Plan *p, int cap, const float *x, const int *labels, int n, int H, int W) {
    size_t per = (size_t)3 * H * W;
    int K = m->cfg.num_classes;
    long right = 0;
    PassMode mode = {0, RELU_STANDARD, 0, 0};
    for (int i = 0; i < n; i += cap) {
        int nb = n - i < cap ? n - i : cap;
        const float *z = model_forward(m, p, x + (size_t)i * per, nb, mode);
        for (int k = 0; k < nb; k++) right += argmax_row(z + (size_t)k * K, K) == labels[i + k];
    }
    return n > 0 ? (float)((double)right / n) : 0.0f;
}

float eval_accuracy(Model *m, const float *x, const int *labels, int n, int H, int W, int batch) {
    if (n <= 0) return 0.0f;
    int cap = batch > 0 ? batch : 32;
    if (cap > n) cap = n;
    Plan *p = plan_new(m, cap, H, W);
    if (!p) return -1.0f;
    float acc = accuracy_with(m, p, cap, x, labels, n, H, W);
    plan_free(p);
    return acc;
}

/* ---- the loop ---- */

/* Exactly one of labels (classification) and targets [n,K] (regression) is given. */
/* Kept whole, as llm.c's training loop: the checks, the batches (a lone last image
 * folded into the batch before in train mode), then epoch by epoch shuffle, forward,
 * loss, backward, Adam, progress and validation, read in the order they run. */
static float train_loop(Model *m, const float *x, const int *labels, const float *targets, int n, const float *val_x,
                        const int *val_y, int nval, int H, int W, const TrainOpts *o, float *val_acc) {
    int K = m->cfg.num_classes;
    if (n < 1) return err_set("no training images"), -1.0f;
    if (o->epochs < 1 || o->batch < 1) return err_set("epochs and batch size must be at least 1"), -1.0f;
    if (labels)
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= K)
                return err_set("label %d of image %d is outside the model's %d classes", labels[i], i, K), -1.0f;
    for (int i = 0; i < nval; i++)
        if (val_y[i] < 0 || val_y[i] >= K)
            return err_set("validation label %d is outside the model's %d classes", val_y[i], K), -1.0f;

    /* batches: B images each, the last one partial; in train mode a lone last image
     * joins the batch before (hence a capacity of B + 1) */
    int B = o->batch < n ? o->batch : n;
    int nb = (n + B - 1) / B;
    int fold = o->train_mode && n > 1 && n % B == 1;
    if (fold) nb--;
    if (o->train_mode && n == 1) return err_set("train mode needs at least 2 images (batch statistics)"), -1.0f;
    int cap = fold ? B + 1 : B;
    Plan *p = plan_new(m, cap, H, W);
    if (!p) return -1.0f;

    size_t per = (size_t)3 * H * W;
    float *xb = xmalloc_aligned((size_t)cap * per * sizeof(float));
    float *tb = xmalloc((size_t)cap * K * sizeof(float)); /* batch targets */
    float *dl = xmalloc((size_t)cap * K * sizeof(float)); /* d loss / d logits */
    int *yb = xmalloc((size_t)cap * sizeof(int));
    int *order = xmalloc((size_t)n * sizeof(int));
    model_alloc_grads(m);
    Adam adam;
    adam_init(&adam, m->n_params, o->lr, o->weight_decay);
    Rng rng;
    rng_seed(&rng, o->seed);
    Progress pg;
    prog_init(&pg, o, (long)o->epochs * n);

    float result = -1.0f;
    long step = 0, nsteps = (long)o->epochs * nb;
    for (int e = 0; e < o->epochs; e++) {
        for (int i = 0; i < n; i++) order[i] = i;
        rng_shuffle(&rng, order, n);
        double loss_sum = 0; /* sum over images of the batch mean loss x batch size */
        long seen = 0;
        for (int b = 0; b < nb; b++) {
            double t0 = now_s();
            int i0 = b * B, cnt = (b == nb - 1) ? n - i0 : B;
            for (int k = 0; k < cnt; k++) {
                int src = order[i0 + k];
                memcpy(xb + (size_t)k * per, x + (size_t)src * per, per * sizeof(float));
                if (labels) yb[k] = labels[src];
                else memcpy(tb + (size_t)k * K, targets + (size_t)src * K, (size_t)K * sizeof(float));
            }
            /* dropout masks differ per step, reproducibly */
            PassMode mode = {o->train_mode, RELU_STANDARD, o->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)++step), 1};
            if (o->cosine) adam.lr = 0.5 * (double)o->lr * (1.0 + cos(3.14159265358979323846 * (step - 1) / nsteps));
            model_zero_grads(m);
            const float *z = model_forward(m, p, xb, cnt, mode);
            float loss = labels ? loss_xent(cnt, K, z, yb, dl) : loss_mse((size_t)cnt * K, z, tb, dl);
            if (!isfinite(loss)) {
                err_set("training diverged: the loss is %g at epoch %d, batch %d (try a lower learning rate)",
                        (double)loss, e + 1, b + 1);
                goto done;
            }
            model_backward(m, p, dl, NULL, 1, mode);
            adam_step(&adam, m->params, m->grads);
            model_params_changed(m);
            loss_sum += (double)loss * cnt;
            seen += cnt;
            pg.done += cnt;
            pg.t_train += now_s() - t0;
            prog_batch(&pg, e, o->epochs, b, nb, loss_sum / seen);
        }
        result = (float)(loss_sum / seen);
        if (o->epoch_loss) o->epoch_loss[e] = result;
        float acc = 0;
        if (nval > 0) {
            acc = accuracy_with(m, p, cap, val_x, val_y, nval, H, W);
            if (val_acc) *val_acc = acc;
        }
        prog_epoch(&pg, e, o->epochs, result, acc, nval);
    }
done:
    adam_free(&adam);
    free(order); free(yb); free(dl); free(tb);
    xfree_aligned(xb);
    plan_free(p);
    return result;
}

float train_regression(Model *m, const float *x, const float *targets, int n, int H, int W, const TrainOpts *o) {
    return train_loop(m, x, NULL, targets, n, NULL, NULL, 0, H, W, o, NULL);
}

float train_classifier(Model *m, const float *x, const int *labels, int n, const float *val_x, const int *val_y,
                       int nval, int H, int W, const TrainOpts *o, float *val_acc) {
    return train_loop(m, x, labels, NULL, n, val_x, val_y, nval, H, W, o, val_acc);
}
