/* canvas: an RGB picture to draw figures on (see io/canvas.h). Every primitive
 * writes whole pixels through put(), which clips, so callers may draw partly (or
 * wholly) outside the canvas.
 * Not for: blending, curves, filled polygons. */
#include "io/canvas.h"
#include "core/err.h"
#include "io/font.h"
#include "io/image.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void canvas_init(Canvas *c, int w, int h, const unsigned char *bg) {
    static const unsigned char white[3] = {255, 255, 255};
    GAD_ASSERT(w >= 1 && h >= 1);
    if (!bg) bg = white;
    c->w = w;
    c->h = h;
    c->rgb = xmalloc((size_t)w * h * 3);
    for (size_t p = 0; p < (size_t)w * h; p++) memcpy(c->rgb + 3 * p, bg, 3);
}

void canvas_free(Canvas *c) {
    free(c->rgb);
    c->rgb = NULL;
    c->w = c->h = 0;
}

static void put(Canvas *c, int x, int y, const unsigned char col[3]) {
    if (x >= 0 && y >= 0 && x < c->w && y < c->h) memcpy(c->rgb + 3 * ((size_t)y * c->w + x), col, 3);
}

void canvas_blit(Canvas *c, int x, int y, const unsigned char *rgb, int tw, int th, int scale) {
    for (int r = 0; r < th * scale; r++)
        for (int q = 0; q < tw * scale; q++) put(c, x + q, y + r, rgb + 3 * ((size_t)(r / scale) * tw + q / scale));
}

void canvas_fill_rect(Canvas *c, int x, int y, int w, int h, const unsigned char col[3]) {
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > c->w ? c->w : x + w, y1 = y + h > c->h ? c->h : y + h;
    for (int r = y0; r < y1; r++)
        for (int q = x0; q < x1; q++) memcpy(c->rgb + 3 * ((size_t)r * c->w + q), col, 3);
}

void canvas_rect(Canvas *c, int x, int y, int w, int h, const unsigned char col[3], int thick) {
    if (thick < 1) thick = 1;
    canvas_fill_rect(c, x, y, w, thick, col);
    canvas_fill_rect(c, x, y + h - thick, w, thick, col);
    canvas_fill_rect(c, x, y, thick, h, col);
    canvas_fill_rect(c, x + w - thick, y, thick, h, col);
}

void canvas_line(Canvas *c, double x0, double y0, double x1, double y1, const unsigned char col[3], int thick) {
    if (thick < 1) thick = 1;
    double len = hypot(x1 - x0, y1 - y0);
    if (!(len < 1e6)) return;  /* NaN or absurd: nothing sensible to draw */
    int steps = (int)ceil(len * 2) + 1;
    for (int i = 0; i <= steps; i++) {
        double t = (double)i / steps;
        /* pixel (q, r) covers [q, q+1): a point at x falls in pixel floor(x) */
        int cx = (int)floor(x0 + t * (x1 - x0) - (thick - 1) * 0.5);
        int cy = (int)floor(y0 + t * (y1 - y0) - (thick - 1) * 0.5);
        canvas_fill_rect(c, cx, cy, thick, thick, col);
    }
}

void canvas_polygon(Canvas *c, const int *xy, int n, int ox, int oy, int scale, const unsigned char col[3],
                    int thick) {
    for (int i = 0; i < n; i++) {
        int j = (i + 1) % n;
        canvas_line(c, ox + (xy[2 * i] + 0.5) * scale, oy + (xy[2 * i + 1] + 0.5) * scale,
                    ox + (xy[2 * j] + 0.5) * scale, oy + (xy[2 * j + 1] + 0.5) * scale, col, thick);
    }
}

void canvas_mark(Canvas *c, double x, double y, CanvasMark m, int size, const unsigned char col[3]) {
    if (size < 1) size = 1;
    if (!(fabs(x) < 1e6 && fabs(y) < 1e6)) return;
    double r = size * 0.5;
    int x0 = (int)floor(x - r), y0 = (int)floor(y - r);
    for (int q = 0; q < size; q++)
        for (int p = 0; p < size; p++) {
            /* the offset of pixel (x0+p, y0+q)'s centre from (x, y) */
            double dx = x0 + p + 0.5 - x, dy = y0 + q + 0.5 - y, d = hypot(dx, dy);
            int on = 0;
            switch (m) {
            case MARK_DISC: on = d <= r; break;
            case MARK_CIRCLE: on = d <= r && d > r - (size >= 7 ? 2 : 1.2); break;
            case MARK_SQUARE: on = 1; break;
            case MARK_CROSS: on = fabs(fabs(dx) - fabs(dy)) < (size >= 7 ? 1.2 : 0.8); break;
            case MARK_PLUS: on = fabs(dx) < (size >= 7 ? 1 : 0.6) || fabs(dy) < (size >= 7 ? 1 : 0.6); break;
            }
            if (on) put(c, x0 + p, y0 + q, col);
        }
}

/* Draw text; `up` turns it a quarter counter-clockwise inside its box at (x, y). */
static void text_at(Canvas *c, int x, int y, const char *text, const unsigned char fg[3], int scale, int up) {
    int tw, th;
    font_measure(text, scale, &tw, &th);
    int line = 0, col = 0;
    const char *s = text;
    uint32_t cp;
    uint8_t rows[FONT_H];
    while ((cp = font_next(&s)) != 0) {
        if (cp == '\n') {
            line++;
            col = 0;
            continue;
        }
        font_glyph(cp, rows);
        for (int r = 0; r < FONT_H; r++)
            for (int b = 0; b < FONT_W; b++)
                if (rows[r] >> (FONT_W - 1 - b) & 1) {
                    /* the pixel's place in unturned text */
                    int u = (col * FONT_ADV + b) * scale, v = (line * FONT_LINE + r) * scale;
                    for (int i = 0; i < scale; i++)
                        for (int j = 0; j < scale; j++) {
                            if (up) put(c, x + v + j, y + tw - 1 - (u + i), fg);
                            else put(c, x + u + i, y + v + j, fg);
                        }
                }
        col++;
    }
}

int canvas_text(Canvas *c, int x, int y, const char *text, const unsigned char fg[3], const unsigned char *bg,
                int scale) {
    if (scale < 1) scale = 1;
    int w, h;
    font_measure(text, scale, &w, &h);
    if (bg && w > 0) canvas_fill_rect(c, x - scale, y - scale, w + 2 * scale, h + 2 * scale, bg);
    text_at(c, x, y, text, fg, scale, 0);
    return w;
}

int canvas_text_up(Canvas *c, int x, int y, const char *text, const unsigned char fg[3], int scale) {
    if (scale < 1) scale = 1;
    int w, h;
    font_measure(text, scale, &w, &h);
    text_at(c, x, y, text, fg, scale, 1);
    return w;
}

int canvas_write_png(const Canvas *c, const char *path) {
    Image img;
    img.w = c->w;
    img.h = c->h;
    img.c = 3;
    img.data = c->rgb;
    return png_write(path, &img);
}
