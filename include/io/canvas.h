/* canvas: an RGB picture in memory to compose figures on: tiles blitted with
 * nearest-neighbour upscaling, rectangles, lines, polygon outlines, point markers
 * and text in gad's bitmap font (io/font.h), written as a PNG (io/image.h,
 * atomically). Coordinates are canvas pixels, x to the right, y down; everything
 * drawn outside the canvas is clipped.
 * Not for: anti-aliasing, alpha blending, colour maps (attr/heatmap.h), layout of
 * labelled figures (io/figure.h). */
#ifndef GAD_IO_CANVAS_H
#define GAD_IO_CANVAS_H

typedef struct {
    int w, h;
    unsigned char *rgb;  /* [h,w,3] row-major (owned: canvas_free) */
} Canvas;

/* A w x h canvas filled with bg (NULL: white). */
void canvas_init(Canvas *c, int w, int h, const unsigned char *bg);
void canvas_free(Canvas *c);
/* Copy a tile rgb [th,tw,3] with its top-left corner at (x, y), each pixel
 * becoming a scale x scale block. */
void canvas_blit(Canvas *c, int x, int y, const unsigned char *rgb, int tw, int th, int scale);
void canvas_fill_rect(Canvas *c, int x, int y, int w, int h, const unsigned char col[3]);
/* The outline of the rectangle [x, x+w) x [y, y+h), `thick` pixels inwards. */
void canvas_rect(Canvas *c, int x, int y, int w, int h, const unsigned char col[3], int thick);
/* A line between canvas points (x0,y0) and (x1,y1), `thick` pixels wide (>= 1). */
void canvas_line(Canvas *c, double x0, double y0, double x1, double y1, const unsigned char col[3], int thick);
/* Closed polygon outline through n points xy [2n] = x0,y0,x1,y1,... given in pixel
 * coordinates (x = column, y = row) of a tile blitted at (ox, oy) with `scale`:
 * point (x, y) is drawn at the centre of its block, (ox + (x+.5) s, oy + (y+.5) s).
 * n = 1 draws a dot, n = 2 a segment. */
void canvas_polygon(Canvas *c, const int *xy, int n, int ox, int oy, int scale, const unsigned char col[3],
                    int thick);

typedef enum {
    MARK_DISC = 0,   /* filled disc */
    MARK_CIRCLE,     /* ring */
    MARK_SQUARE,     /* filled square */
    MARK_CROSS,      /* x */
    MARK_PLUS        /* + */
} CanvasMark;
/* A marker of diameter `size` pixels centred on (x, y). */
void canvas_mark(Canvas *c, double x, double y, CanvasMark m, int size, const unsigned char col[3]);

/* Text (UTF-8, '\n' starts a line) with its top-left corner at (x, y), each font
 * pixel a scale x scale block (scale >= 1). bg (may be NULL: transparent) fills
 * the text's box first. Returns the width drawn (font_measure's). */
int canvas_text(Canvas *c, int x, int y, const char *text, const unsigned char fg[3], const unsigned char *bg,
                int scale);
/* The same turned 90 degrees counter-clockwise (read bottom to top, as a y-axis
 * label): the text's box is font_measure's h wide and w high, its top-left corner
 * at (x, y). Returns the height drawn. */
int canvas_text_up(Canvas *c, int x, int y, const char *text, const unsigned char fg[3], int scale);

/* Write the canvas as an RGB PNG, atomically. Returns 0 or -1 (err set). */
int canvas_write_png(const Canvas *c, const char *path);

#endif
