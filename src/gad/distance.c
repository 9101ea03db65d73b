/* distance: GAD's artificial distancing (§4.1, Fig. 1): the regression targets of a
 * support model are the original model's logits with the other class's logit
 * lowered by alpha.
 * Not for: training (support.c). */
#include "gad/run.h"
#include "core/err.h"
#include <string.h>

void gad_distance(const float *logits, const int *cls, int n, int K, int o1, int o2, float alpha,
                  float *targets) {
    GAD_ASSERT(o1 >= 0 && o1 < K && o2 >= 0 && o2 < K && o1 != o2);
    if (targets != logits) memmove(targets, logits, sizeof(float) * (size_t)n * (size_t)K);
    for (int i = 0; i < n; i++) {
        GAD_ASSERT(cls[i] == 0 || cls[i] == 1);
        /* a c1 image should look less like c2, and a c2 image less like c1 */
        targets[(size_t)i * K + (cls[i] == 0 ? o2 : o1)] -= alpha;
    }
}

void gad_logits(Model *m, Plan *p, const float *x, int n, float *out) {
    int B, H, W;
    plan_size(p, &B, &H, &W);
    int K = m->cfg.num_classes;
    size_t isz = (size_t)3 * H * W;
    PassMode eval = {0, RELU_STANDARD, 0, 0};
    for (int i = 0; i < n; i += B) {
        int nb = n - i < B ? n - i : B;
        const float *y = model_forward(m, p, x + (size_t)i * isz, nb, eval);
        memcpy(out + (size_t)i * K, y, sizeof(float) * (size_t)nb * K);
    }
}
