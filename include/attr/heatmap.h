/* heatmap: attribution maps as pictures a person can read.
 * A map [C,H,W] becomes one value per pixel the way Captum's visualize_image_attr
 * does it: the channel sum, then _normalize_attr with outlier_perc = 2: the value
 * at which the sorted absolute values reach 98% of their cumulative sum maps to 1,
 * and the result is clipped to [-1,1]. Signed maps ("all") keep the sign; absolute
 * maps (saliency) use |channel sum| and land in [0,1].
 * Colours (HeatRamp): a diverging blue-white-red map for signed values (-1 blue,
 * 0 white, +1 red) and two sequential maps for absolute values, white to dark blue
 * and white to dark red (0 white): the paper draws original maps in blue and GAD
 * maps in red (Fig. 5), and so do gad's figures.
 * Overlay: the input's grayscale, blended towards the map's colour with weight
 * 0.8 |v| (unimportant pixels show the image, important ones the colour).
 * Figures are drawn on io/canvas.h's Canvas (included here for the callers).
 * Not for: text, labels and layout (io/canvas.h, io/figure.h), file formats. */
#ifndef GAD_ATTR_HEATMAP_H
#define GAD_ATTR_HEATMAP_H
#include "io/canvas.h"
#include <stddef.h>

/* Captum's _cumulative_sum_threshold over values v [n] (all >= 0): sort
 * ascending, cumulative sums, the first value whose cumulative sum reaches
 * percent% of the total. 0 for an empty or all-zero input. */
float heatmap_cumsum_threshold(const float *v, size_t n, double percent);
/* out [H*W] = the normalised channel sum of attr [C,H,W] (see above). An all-zero
 * map gives all zeros. Returns the threshold that maps to 1 (0 if none). */
float heatmap_normalize(const float *attr, int C, int H, int W, int absolute, float *out);
typedef enum {
    HEAT_DIVERGING = 0,  /* [-1,1]: blue, white, red */
    HEAT_BLUES,          /* [0,1]: white to dark blue (original maps) */
    HEAT_REDS            /* [0,1]: white to dark red (GAD maps) */
} HeatRamp;
/* Colour of v under ramp r, v clipped to the ramp's range (NaN as its low end). */
void heatmap_ramp(HeatRamp r, float v, unsigned char rgb[3]);
/* rgb [n*3] = n colours evenly spaced over the ramp's range, low end first (a
 * colour bar). n >= 2. */
void heatmap_ramp_table(HeatRamp r, int n, unsigned char *rgb);
/* Colour of a normalised value: heatmap_ramp with HEAT_BLUES when absolute, else
 * HEAT_DIVERGING. */
void heatmap_colour(float v, int absolute, unsigned char rgb[3]);
/* Displayable RGB bytes [H*W*3] of a model input x [3,H,W]: x * std + mean when
 * mean and std are given, else the image's own min..max stretched to 0..1. */
void heatmap_input_rgb(const float *x, int H, int W, const float *mean, const float *std, unsigned char *rgb);
/* rgb [H*W*3] = colours of norm [H*W]. */
void heatmap_render(const float *norm, int H, int W, int absolute, unsigned char *rgb);
/* The same under ramp r. */
void heatmap_render_ramp(const float *norm, int H, int W, HeatRamp r, unsigned char *rgb);
/* rgb [H*W*3] = grayscale of img [H*W*3] blended with the colours of norm [H*W]. */
void heatmap_overlay(const float *norm, const unsigned char *img, int H, int W, int absolute,
                     unsigned char *rgb);
/* Write PATH (PNG): for each of the n images a pair [heatmap | overlay] of
 * attr [n,3,H,W] over input x [n,3,H,W], upscaled `scale` times (nearest
 * neighbour); several images go in a grid of ceil(sqrt(n)) pairs per row.
 * mean/std as heatmap_input_rgb. Returns 0 or -1 (err set). */
int heatmap_write_png(const char *path, const float *attr, const float *x, int n, int H, int W, int absolute,
                      const float *mean, const float *std, int scale);
/* A scale that makes a side of `side` pixels about 112 pixels or more (>= 1). */
int heatmap_auto_scale(int side);

#endif
