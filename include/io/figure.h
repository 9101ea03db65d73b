/* figure: the layout of figures that stand alone on a slide. Two kinds:
 *   a grid of equal tiles (attribution maps, hulls) with a title, column labels
 *   above the columns, row labels left of the rows, colour bars on the right, a key
 *   of line and marker colours and a note under the grid, all drawn into the PNG in
 *   gad's bitmap font;
 *   axes for scatter plots: a frame, round-number ticks with their values, a title
 *   and axis labels, and points and lines clipped to the plot area.
 * The title and the note are wrapped at spaces to the width of the grid and its
 * labels and bars (at least 32 and 48 characters), so they never widen a figure.
 * Text is scaled with the tiles (text_scale 0: 2 for tiles of 96 pixels or more,
 * else 1); when a column label is too wide for its column at that scale, all of
 * them are drawn at 1.
 * Not for: colour maps (attr/heatmap.h gives the ramps of the bars), what the tiles
 * show, any layout but a grid. */
#ifndef GAD_IO_FIGURE_H
#define GAD_IO_FIGURE_H
#include "io/canvas.h"

#define FIG_MAX_BARS 3
#define FIG_MAX_KEYS 8

typedef struct {
    const unsigned char *ramp;   /* [n*3] colours, low end first */
    int n;                       /* >= 2 */
    const char *lo, *hi;         /* labels of the two ends (may be NULL) */
    const char *label;           /* what the colour means, drawn up the bar's side (may be NULL) */
} FigBar;

typedef struct {
    unsigned char rgb[3];
    int line;                    /* 1: a short line (an outline's colour), 0: a marker */
    CanvasMark mark;             /* when line = 0 */
    const char *text;
} FigKey;

typedef struct {
    const char *title;           /* above everything (may be NULL; '\n' breaks a line) */
    const char *note;            /* under everything (may be NULL; '\n' breaks a line) */
    int rows, cols;              /* >= 1 */
    int tile_w, tile_h;          /* canvas pixels of one tile */
    const char *const *col_labels;       /* [cols] or NULL; entries may be NULL or hold '\n' */
    const unsigned char *col_label_rgb;  /* [cols*3] colours of the column labels, or NULL (black) */
    const char *const *row_labels;       /* [rows] or NULL */
    FigBar bar[FIG_MAX_BARS];
    int nbars;
    FigKey key[FIG_MAX_KEYS];
    int nkeys;
    int text_scale;              /* 0: automatic */
} FigSpec;

typedef struct {
    Canvas canvas;
    int rows, cols, tile_w, tile_h;
    int gap;                     /* pixels between tiles */
    int gx, gy;                  /* top-left corner of tile (0, 0) */
    int scale;                   /* text scale of the labels */
} Figure;

/* Lay the figure out, make its canvas and draw everything but the tiles. Returns 0,
 * or -1 with err set when the picture would exceed io/image.h's limits (nothing
 * allocated then). The caller ends with fig_write or fig_free. */
int fig_init(Figure *f, const FigSpec *s);
/* Top-left corner of tile (row, col) on the canvas. */
void fig_cell(const Figure *f, int row, int col, int *x, int *y);
/* Put rgb [h,w,3] at tile (row, col), each pixel a scale x scale block, with a
 * light grey line around the tile (in the gap) so that white tiles stay visible. */
void fig_tile(Figure *f, int row, int col, const unsigned char *rgb, int w, int h, int scale);
/* A frame of colour rgb in the gap around tile (row, col) (e.g. a misclassified image). */
void fig_frame(Figure *f, int row, int col, const unsigned char rgb[3]);
/* A short label centred on tile (row, col), on a box of colour bg (e.g. "empty"). */
void fig_badge(Figure *f, int row, int col, const char *text, const unsigned char fg[3], const unsigned char bg[3]);
/* Write the PNG (atomically) and free the figure, also on error. Returns 0 or -1. */
int fig_write(Figure *f, const char *path);
void fig_free(Figure *f);

/* ---- axes ---- */

typedef struct {
    int x, y, w, h;              /* the plot area on the canvas */
    double x0, x1, y0, y1;       /* data range shown (x0 < x1, y0 < y1) */
} FigAxes;
/* Space needed around a plot area for fig_axes_draw's labels at text scale s
 * (tick values of up to five characters, a title of up to two lines). */
#define FIG_AXES_LEFT(s) (44 * (s) + 6)
#define FIG_AXES_BOTTOM(s) (24 * (s) + 8)
#define FIG_AXES_TOP(s) (22 * (s) + 4)
/* Widen [*lo, *hi] to round limits (multiples of a 1, 2 or 5 step giving about
 * `ticks` intervals). An empty or non-finite range becomes a unit one around it. */
void fig_nice_range(double *lo, double *hi, int ticks);
/* The tick step fig_axes_draw uses for a range. */
double fig_tick_step(double lo, double hi, int ticks);
/* Draw the frame, grid ticks with their values, title (above), x label (below) and
 * y label (left, turned). Any text may be NULL. */
void fig_axes_draw(Canvas *c, const FigAxes *a, const char *title, const char *xlabel, const char *ylabel,
                   int scale);
/* Canvas position of data point (x, y). */
void fig_axes_px(const FigAxes *a, double x, double y, double *px, double *py);
/* A marker at data point (x, y), skipped when the point is outside the range. */
void fig_axes_mark(Canvas *c, const FigAxes *a, double x, double y, CanvasMark m, int size,
                   const unsigned char rgb[3]);
/* The part of the segment (x0,y0)-(x1,y1) inside the range. */
void fig_axes_line(Canvas *c, const FigAxes *a, double x0, double y0, double x1, double y1,
                   const unsigned char rgb[3], int thick);

#endif
