/* intersect: per-pixel importance of an attribution, pixel ranking, the presence
 * rules and GAD's intersection of the original map with the support maps (§4.3,
 * Fig. 3). See gad/gad.h for the rules and why presence-top counts non-zero pixels.
 * Not for: hulls or metrics (hull.c, metrics.c). */
#include "gad/gad.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void gad_importance(const float *attr, int C, int H, int W, float *imp) {
    size_t npix = (size_t)H * W;
    for (size_t i = 0; i < npix; i++) {
        float s = 0.0f;  /* channel order fixed: c = 0, 1, 2 */
        for (int c = 0; c < C; c++) s += attr[(size_t)c * npix + i];
        imp[i] = fabsf(s);
    }
}

int gad_frac_count(double f, int n) {
    if (n <= 0 || !(f > 0)) return 0;
    double k = ceil(f * n - 1e-6);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return (int)k;
}

/* Sorted as (value, key, index) triples so that qsort needs no context pointer
 * (and the ranking is thread-safe): importance descending, then key ascending. */
typedef struct { float v; int key, i; } Ranked;
static int rank_cmp(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->v > y->v) return -1;
    if (x->v < y->v) return 1;
    return (x->key > y->key) - (x->key < y->key);
}

int gad_rank_ties(const float *imp, int npix, const int *tiebreak, int *order) {
    int nnz = 0;
    Ranked *r = xmalloc(sizeof(Ranked) * (size_t)(npix > 0 ? npix : 1));
    for (int i = 0; i < npix; i++) {
        r[i].v = imp[i] > 0.0f ? imp[i] : 0.0f;  /* NaN ranks as 0, never present */
        r[i].key = tiebreak ? tiebreak[i] : i;
        r[i].i = i;
        nnz += imp[i] > 0.0f;
    }
    qsort(r, (size_t)npix, sizeof *r, rank_cmp);
    for (int i = 0; i < npix; i++) order[i] = r[i].i;
    free(r);
    return nnz;
}

int gad_rank(const float *imp, int npix, int *order) { return gad_rank_ties(imp, npix, NULL, order); }

int gad_present(const float *imp, int npix, Presence p, unsigned char *present) {
    int count = 0;
    memset(present, 0, (size_t)npix);
    if (p.rule == PRESENT_FRAC) {
        float mx = 0.0f;
        for (int i = 0; i < npix; i++) if (imp[i] > mx) mx = imp[i];
        if (mx <= 0.0f) return 0;
        float thr = p.value * mx;
        for (int i = 0; i < npix; i++) {
            present[i] = imp[i] >= thr;
            count += present[i];
        }
    } else {
        GAD_ASSERT(p.rule == PRESENT_TOP);
        int *order = xmalloc(sizeof(int) * (size_t)(npix > 0 ? npix : 1));
        int nnz = gad_rank(imp, npix, order);
        count = gad_frac_count(p.value, nnz);
        for (int r = 0; r < count; r++) present[order[r]] = 1;
        free(order);
    }
    return count;
}

void gad_present_and(const float *imp, int npix, Presence p, unsigned char *acc) {
    unsigned char *pr = xmalloc((size_t)(npix > 0 ? npix : 1));
    gad_present(imp, npix, p, pr);
    for (int i = 0; i < npix; i++) acc[i] &= pr[i];
    free(pr);
}

int gad_map_mask(const float *orig, const unsigned char *present_all, int npix, float *out) {
    int nnz = 0;
    for (int i = 0; i < npix; i++) {
        out[i] = present_all[i] ? orig[i] : 0.0f;
        nnz += out[i] > 0.0f;
    }
    return nnz;
}

int gad_intersect(const float *const *maps, int nmaps, int npix, Presence p, float *out) {
    GAD_ASSERT(nmaps >= 1);
    unsigned char *all = xmalloc((size_t)(npix > 0 ? npix : 1));
    gad_present(maps[0], npix, p, all);
    for (int k = 1; k < nmaps; k++) gad_present_and(maps[k], npix, p, all);
    int nnz = gad_map_mask(maps[0], all, npix, out);
    free(all);
    return nnz;
}
