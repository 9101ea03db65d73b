/* stats: paired comparisons over images for Table 2 and the curves (not in the
 * paper): the share of images where one value beats the other, the median ratio,
 * and the two-sided sign test, exact (binomial with p = 1/2, ties dropped).
 * Not for: the values compared (metrics.c, control.c, curves.c). */
#include "gad/gad.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>

double gad_sign_test(int wins, int losses) {
    int n = wins + losses, k = wins < losses ? wins : losses;
    if (n == 0) return NAN;
    /* P(X <= k) for X ~ Bin(n, 1/2), summed from the largest term down in log space */
    double lnc = lgamma(n + 1.0) - n * log(2.0), sum = 0;
    for (int i = k; i >= 0; i--) {
        double t = exp(lnc - lgamma(i + 1.0) - lgamma(n - i + 1.0));
        sum += t;
        if (t < sum * 1e-17) break;
    }
    double p = 2 * sum;
    return p > 1 ? 1 : p;
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void gad_paired(const double *a, const double *b, int n, GadPaired *out) {
    double *ratio = xmalloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    out->n = out->wins = out->losses = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) continue;
        out->wins += a[i] > b[i];
        out->losses += a[i] < b[i];
        ratio[out->n++] = a[i] == b[i] ? 1.0 : b[i] == 0 ? INFINITY : a[i] / b[i];
    }
    qsort(ratio, (size_t)out->n, sizeof *ratio, dbl_cmp);
    int m = out->n;
    out->median_ratio = m == 0 ? NAN : m % 2 ? ratio[m / 2] : 0.5 * (ratio[m / 2 - 1] + ratio[m / 2]);
    out->p = gad_sign_test(out->wins, out->losses);
    free(ratio);
}
