/* control: the size-matched control masks of Table 2 (not in the paper). RS per
 * pixel falls steeply with a mask's size, so "RS(GAD) > RS(Sup.)" partly says which
 * mask is smaller; a control region of exactly the GAD mask's size, drawn at random
 * inside the region the original explanation calls important, tells a real effect
 * from a size effect (see gad/gad.h).
 * Not for: RS itself (metrics.c), the statistics over images (stats.c). */
#include "gad/gad.h"
#include "core/err.h"
#include <stdlib.h>

/* Region pixels sorted by squared distance to the seed, then index. */
typedef struct { int d2, i; } Near;
static int near_cmp(const void *a, const void *b) {
    const Near *x = a, *y = b;
    if (x->d2 != y->d2) return (x->d2 > y->d2) - (x->d2 < y->d2);
    return (x->i > y->i) - (x->i < y->i);
}

int gad_control_mask(const unsigned char *region, int H, int W, int k, Rng *rng, unsigned char *mask) {
    int npix = H * W, n = 0;
    for (int i = 0; i < npix; i++) {
        mask[i] = 0;
        n += region[i] != 0;
    }
    GAD_ASSERT(k >= 0 && k <= n);
    if (k == 0) return 0;
    Near *r = xmalloc(sizeof(Near) * (size_t)n);
    int seed = (int)rng_below(rng, (uint32_t)n), sx = 0, sy = 0;
    for (int i = 0, j = 0; i < npix; i++)
        if (region[i] && j++ == seed) {
            sx = i % W;
            sy = i / W;
        }
    for (int i = 0, j = 0; i < npix; i++)
        if (region[i]) {
            int dx = i % W - sx, dy = i / W - sy;
            r[j].d2 = dx * dx + dy * dy;
            r[j++].i = i;
        }
    qsort(r, (size_t)n, sizeof *r, near_cmp);
    for (int j = 0; j < k; j++) mask[r[j].i] = 1;
    free(r);
    return k;
}
