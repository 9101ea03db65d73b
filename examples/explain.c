/* explain: a short program that embeds libgad, built against the installed library:
 *   cc explain.c $(pkg-config --cflags --libs gad) -o explain
 *   ./explain WEIGHTS.safetensors IMAGE [ig|saliency|deconv|gxi|guided]
 * Prints the predicted class and where the attribution map of that class is
 * strongest. It defines its own gemm() on purpose: libgad's internal names are local
 * to the library, so they cannot clash with a program's. */
#include <gad/gad.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A name gad uses inside (its matrix multiply): the program's own, unrelated one. */
int gemm(int a, int b) { return a * b; }

/* Out of memory inside gad: say so in our words, then let gad stop as it does. */
static int on_oom(size_t bytes, void *ud) {
    fprintf(stderr, "%s: gad could not allocate %zu bytes\n", (const char *)ud, bytes);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s WEIGHTS IMAGE [method]\n", argv[0]);
        return 2;
    }
    static const char *names[] = {"saliency", "deconv", "gxi", "guided", "ig"};
    gad_method method = GAD_IG;
    for (int k = 0; argc > 3 && k < 5; k++)
        if (!strcmp(argv[3], names[k])) method = (gad_method)k;
    gad_set_oom_hook(on_oom, argv[0]);
    printf("gad %s (gemm(6, 7) = %d is ours)\n", gad_version(), gemm(6, 7));

    gad_model *m = gad_model_load(argv[1]);
    if (!m) {
        fprintf(stderr, "%s\n", gad_last_error());
        return 1;
    }
    int h, w, rc = 1, K = gad_model_classes(m);
    float *x = gad_image_load(m, argv[2], &h, &w);
    float *logits = malloc(sizeof(float) * (size_t)K), *map = malloc(sizeof(float) * 3 * (size_t)h * w);
    if (!x || !logits || !map || gad_predict(m, x, h, w, logits) != 0) {
        fprintf(stderr, "%s\n", gad_last_error());
        goto done;
    }
    int best = 0;
    for (int k = 1; k < K; k++)
        if (logits[k] > logits[best]) best = k;
    const char *cname = gad_model_class_name(m, best);
    printf("%s: class %d (%s), logit %.4f, input 3x%dx%d\n", argv[2], best, cname ? cname : "?", logits[best], h, w);
    if (gad_explain_map(m, x, h, w, best, method, map) != 0) {
        fprintf(stderr, "%s\n", gad_last_error());
        goto done;
    }
    int bi = 0;
    double sum = 0, bv = -1;
    for (int i = 0; i < h * w; i++) { /* |channel sum|, as gad's maps are read */
        double v = fabs((double)map[i] + map[h * w + i] + map[2 * h * w + i]);
        sum += v;
        if (v > bv) bv = v, bi = i;
    }
    printf("%s map: strongest at row %d, column %d (%.3g of the total %.3g)\n", names[method], bi / w, bi % w, bv, sum);
    rc = 0;
done:
    free(map);
    free(logits);
    gad_free(x);
    gad_model_close(m);
    return rc;
}
