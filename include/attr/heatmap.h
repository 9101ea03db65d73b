/* heatmap: attribution maps as pictures a person can read, and a tiny RGB canvas
 * for figures.
 * A map [C,H,W] becomes one value per pixel the way Captum's visualize_image_attr
 * does it: the channel sum, then _normalize_attr with outlier_perc = 2: the value
 * at which the sorted absolute values reach 98% of their cumulative sum maps to 1,
 * and the result is clipped to [-1,1]. Signed maps ("all") keep the sign; absolute
 * maps (saliency) use |channel sum| and land in [0,1].
 * Colours: a diverging blue-white-red map for signed values (-1 blue, 0 white,
 * +1 red) and a sequential white-to-dark-blue map for absolute values (0 white).
 * Overlay: the input's grayscale, blended towards the map's colour with weight
 * 0.8 |v| (unimportant pixels show the image, important ones the colour).
 * Canvas: an RGB byte picture [h,w,3] to blit tiles into, draw lines, polygon
 * outlines and rectangles on, and write as PNG (io/image.h png_write, atomic).
 * Not for: colour bars, text, anti-aliasing, any other file format. */
#ifndef GAD_ATTR_HEATMAP_H
#define GAD_ATTR_HEATMAP_H
#include <stddef.h>

/* Captum's _cumulative_sum_threshold over values v [n] (all >= 0): sort
 * ascending, cumulative sums, the first value whose cumulative sum reaches
 * percent% of the total. 0 for an empty or all-zero input. */
float heatmap_cumsum_threshold(const float *v, size_t n, double percent);
/* out [H*W] = the normalised channel sum of attr [C,H,W] (see above). An all-zero
 * map gives all zeros. Returns the threshold that maps to 1 (0 if none). */
float heatmap_normalize(const float *attr, int C, int H, int W, int absolute, float *out);
/* Colour of a normalised value (clipped to [-1,1], or [0,1] when absolute). */
void heatmap_colour(float v, int absolute, unsigned char rgb[3]);
/* Displayable RGB bytes [H*W*3] of a model input x [3,H,W]: x * std + mean when
 * mean and std are given, else the image's own min..max stretched to 0..1. */
void heatmap_input_rgb(const float *x, int H, int W, const float *mean, const float *std, unsigned char *rgb);
/* rgb [H*W*3] = colours of norm [H*W]. */
void heatmap_render(const float *norm, int H, int W, int absolute, unsigned char *rgb);
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

/* ---- canvas: for figures (e.g. maps with hull outlines) ---- */
typedef struct {
    int w, h;
    unsigned char *rgb;  /* [h,w,3] row-major (owned: canvas_free) */
} Canvas;

/* A w x h canvas filled with bg (NULL: white). */
void canvas_init(Canvas *c, int w, int h, const unsigned char *bg);
void canvas_free(Canvas *c);
/* Copy a tile rgb [th,tw,3] with its top-left corner at (x, y), each pixel
 * becoming a scale x scale block; parts outside the canvas are clipped. */
void canvas_blit(Canvas *c, int x, int y, const unsigned char *rgb, int tw, int th, int scale);
void canvas_fill_rect(Canvas *c, int x, int y, int w, int h, const unsigned char col[3]);
/* A line between canvas points (x0,y0) and (x1,y1), `thick` pixels wide (>= 1). */
void canvas_line(Canvas *c, double x0, double y0, double x1, double y1, const unsigned char col[3], int thick);
/* Closed polygon outline through n points xy [2n] = x0,y0,x1,y1,... given in pixel
 * coordinates (x = column, y = row) of a tile blitted at (ox, oy) with `scale`:
 * point (x, y) is drawn at the centre of its block, (ox + (x+.5) s, oy + (y+.5) s).
 * n = 1 draws a dot, n = 2 a segment. */
void canvas_polygon(Canvas *c, const int *xy, int n, int ox, int oy, int scale, const unsigned char col[3],
                    int thick);
/* Write the canvas as an RGB PNG, atomically. Returns 0 or -1 (err set). */
int canvas_write_png(const Canvas *c, const char *path);

#endif
