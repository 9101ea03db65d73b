/* test_figure: gad's bitmap font, text on a canvas, the layout of labelled figures
 * and scatter axes (io/font.h, io/canvas.h, io/figure.h).
 *   - every printable ASCII character and every listed symbol has a glyph of its
 *     own, within 5 bits, and distinct glyphs where the characters differ;
 *   - UTF-8 decoding, including malformed bytes, and text measurement;
 *   - text drawn pixel for pixel as the glyph says, turned text its transpose;
 *   - a figure's title, labels and colour bars sit outside its tiles, the bar's
 *     colours run from its low end (bottom) to its high end (top);
 *   - round axis limits and ticks, clipping of points and lines.
 * Not for: what the GAD figures show (test_figures.c). */
#include "test.h"
#include "core/err.h"
#include "io/canvas.h"
#include "io/figure.h"
#include "io/font.h"
#include "io/image.h"
#include <stdlib.h>
#include <string.h>

static const unsigned char K0[3] = {0, 0, 0}, W1[3] = {255, 255, 255};

static int is_white(const Canvas *c, int x, int y) {
    const unsigned char *p = c->rgb + 3 * ((size_t)y * c->w + x);
    return p[0] == 255 && p[1] == 255 && p[2] == 255;
}

/* Pixels that are not white in the rectangle [x0,x1) x [y0,y1). */
static int inked(const Canvas *c, int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < c->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < c->w; x++) n += !is_white(c, x, y);
    return n;
}

TEST(font_covers_ascii_and_symbols) {
    uint8_t box[FONT_H], g[FONT_H], h[FONT_H];
    font_glyph(0x4e00, box); /* a CJK character: not covered */
    CHECK(!font_has(0x4e00));
    for (uint32_t cp = 32; cp < 127; cp++) {
        CHECKF(font_has(cp), "no glyph for '%c'", (int)cp);
        font_glyph(cp, g);
        int on = 0;
        for (int r = 0; r < FONT_H; r++) {
            CHECK(g[r] < 32);
            on += g[r] != 0;
        }
        CHECKF((cp == ' ') == (on == 0), "'%c': %d rows lit", (int)cp, on);
        CHECKF(memcmp(g, box, FONT_H) != 0, "'%c' is drawn as the box", (int)cp);
    }
    /* the symbols of the GAD figures */
    uint32_t sym[] = {0x3b1, 0x3a3, 0xd7, 0x2264, 0x2265, 0x2212, 0x2013, 0xb7, 0xb2, 0x2717};
    for (size_t i = 0; i < sizeof sym / sizeof sym[0]; i++) CHECKF(font_has(sym[i]), "U+%04X", (unsigned)sym[i]);
    /* characters that differ look different (a copy-paste slip in the table would not) */
    for (uint32_t a = 33; a < 127; a++)
        for (uint32_t b = a + 1; b < 127; b++) {
            font_glyph(a, g);
            font_glyph(b, h);
            CHECKF(memcmp(g, h, FONT_H) != 0, "'%c' and '%c' share a glyph", (int)a, (int)b);
        }
    /* descenders below row 6 only for the letters that have them */
    for (uint32_t cp = 'a'; cp <= 'z'; cp++) {
        font_glyph(cp, g);
        int desc = g[7] || g[8];
        CHECKF(desc == (strchr("gjpqy", (int)cp) != NULL), "'%c' descender %d", (int)cp, desc);
    }
}

TEST(font_utf8_and_measure) {
    const char *s = "a\xce\xb1\xe2\x9c\x97\xff" "b\xce";
    CHECK(font_next(&s) == 'a');
    CHECK(font_next(&s) == 0x3b1);
    CHECK(font_next(&s) == 0x2717);
    CHECK(font_next(&s) == 0xfffd); /* a stray byte */
    CHECK(font_next(&s) == 'b');
    CHECK(font_next(&s) == 0xfffd); /* truncated at the end */
    CHECK(font_next(&s) == 0 && *s == 0);
    int w, h;
    font_measure("ab\nc", 2, &w, &h);
    CHECK(w == (2 * FONT_ADV - 1) * 2 && h == (2 * FONT_LINE - 2) * 2);
    font_measure("", 3, &w, &h);
    CHECK(w == 0 && h == 0);
    font_measure("\xce\xb1=1", 1, &w, &h); /* one character per code point, not per byte */
    CHECK(w == 3 * FONT_ADV - 1 && h == FONT_H);
}

TEST(font_wrap_breaks_at_spaces) {
    char out[256];
    CHECK(font_wrap("one two three four", 9, out, sizeof out) == 3 && !strcmp(out, "one two\nthree\nfour"));
    CHECK(font_wrap("a\nbb cc", 4, out, sizeof out) == 3 && !strcmp(out, "a\nbb\ncc"));
    /* a word longer than the width stays whole; widths count characters, not bytes */
    CHECK(font_wrap("x supercalifragilistic y", 5, out, sizeof out) == 3 && !strcmp(out, "x\nsupercalifragilistic\ny"));
    CHECK(font_wrap("\xce\xb1\xce\xb1\xce\xb1 \xce\xb1\xce\xb1", 5, out, sizeof out) == 2);
    CHECK(font_wrap("", 5, out, sizeof out) == 0 && out[0] == 0);
    CHECK(font_wrap("abc def", 3, out, 4) >= 1 && strlen(out) == 3); /* truncated, terminated */
}

TEST(canvas_text_draws_the_glyphs) {
    Canvas c;
    canvas_init(&c, 40, 30, NULL);
    int w = canvas_text(&c, 3, 2, "Ag", K0, NULL, 2);
    CHECK(w == (2 * FONT_ADV - 1) * 2);
    uint8_t g[FONT_H];
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        font_glyph(k ? 'g' : 'A', g);
        for (int r = 0; r < FONT_H; r++)
            for (int b = 0; b < FONT_W; b++)
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        int on = g[r] >> (FONT_W - 1 - b) & 1;
                        int x = 3 + (k * FONT_ADV + b) * 2 + i, y = 2 + r * 2 + j;
                        bad += on == is_white(&c, x, y);
                    }
    }
    CHECK(bad == 0);
    CHECK(inked(&c, 0, 0, 40, 2) == 0 && inked(&c, 0, 2 + FONT_H * 2, 40, 30) == 0);
    /* turned text: pixel (u, v) of the text goes to (v, w - 1 - u) of its box */
    Canvas t;
    canvas_init(&t, 30, 40, NULL);
    canvas_text_up(&t, 0, 0, "Ag", K0, 2);
    bad = 0;
    for (int v = 0; v < FONT_H * 2; v++)
        for (int u = 0; u < w; u++) bad += is_white(&c, 3 + u, 2 + v) != is_white(&t, v, w - 1 - u);
    CHECK(bad == 0);
    /* a background box and clipping at the border */
    canvas_text(&c, 35, 25, "MMM", K0, K0, 1);
    CHECK(!is_white(&c, 39, 29) && !is_white(&c, 34, 24));
    canvas_free(&t);
    canvas_free(&c);
}

TEST(canvas_marks_and_rects) {
    Canvas c;
    canvas_init(&c, 30, 30, NULL);
    canvas_mark(&c, 10, 10, MARK_DISC, 7, K0);
    CHECK(!is_white(&c, 10, 10) && !is_white(&c, 7, 10) && is_white(&c, 6, 6) && is_white(&c, 14, 10));
    canvas_mark(&c, 20, 20, MARK_CIRCLE, 9, K0);
    CHECK(is_white(&c, 20, 20) && !is_white(&c, 16, 20));
    canvas_mark(&c, NAN, 3, MARK_CROSS, 5, K0); /* nothing, no crash */
    canvas_rect(&c, 0, 0, 30, 30, K0, 2);
    CHECK(!is_white(&c, 1, 15) && !is_white(&c, 28, 15) && is_white(&c, 2, 15) && !is_white(&c, 15, 29));
    canvas_free(&c);
}

static FigSpec spec_3x2(void) {
    static const char *cols[] = {"left", "right column"};
    static const char *rows[] = {"first", "second", "third row"};
    static unsigned char ramp[2 * 3] = {255, 255, 255, 200, 0, 0};
    FigSpec s;
    memset(&s, 0, sizeof s);
    s.title = "A title";
    s.note = "a note\nof two lines";
    s.rows = 3;
    s.cols = 2;
    s.tile_w = 40;
    s.tile_h = 30;
    s.col_labels = cols;
    s.row_labels = rows;
    s.nbars = 1;
    s.bar[0] = (FigBar){ramp, 2, "0", "1", "importance"};
    s.nkeys = 1;
    s.key[0] = (FigKey){{0, 160, 0}, 1, MARK_DISC, "a key"};
    return s;
}

TEST(figure_layout_keeps_text_off_the_tiles) {
    FigSpec s = spec_3x2();
    Figure f;
    REQUIRE(fig_init(&f, &s) == 0);
    const Canvas *c = &f.canvas;
    int x0, y0, x1, y1;
    fig_cell(&f, 0, 0, &x0, &y0);
    fig_cell(&f, 2, 1, &x1, &y1);
    x1 += s.tile_w;
    y1 += s.tile_h;
    CHECK(f.scale == 1 && x1 < c->w && y1 < c->h);
    /* before any tile is put, the grid (with its gaps) is blank: no text ran into it */
    CHECK(inked(c, x0 - f.gap, y0 - f.gap, x1 + f.gap, y1 + f.gap) == 0);
    CHECK(inked(c, 0, 0, c->w, y0 - f.gap) > 0);          /* title and column labels above */
    CHECK(inked(c, 0, y0, x0 - f.gap, y1) > 0);           /* row labels left */
    CHECK(inked(c, x1 + f.gap, y0, c->w, y1) > 0);        /* the colour bar right */
    CHECK(inked(c, 0, y1 + f.gap, c->w, c->h) > 0);       /* key and note below */
    /* each row label sits beside its own row */
    for (int r = 0; r < 3; r++) {
        int x, y;
        fig_cell(&f, r, 0, &x, &y);
        CHECKF(inked(c, 0, y, x - f.gap, y + s.tile_h) > 0, "row %d", r);
    }
    /* the bar: high end (red) at the top, low end (white) at the bottom */
    int red_top = 0, red_bottom = 0;
    for (int x = x1 + f.gap; x < c->w; x++) {
        const unsigned char *t = c->rgb + 3 * ((size_t)(y0 + 1) * c->w + x);
        const unsigned char *b = c->rgb + 3 * ((size_t)(y0 + 60) * c->w + x);
        red_top += t[0] > 150 && t[1] < 60;
        red_bottom += b[0] > 150 && b[1] < 60;
    }
    CHECK(red_top > 0 && red_bottom == 0);
    /* tiles, frames and badges land where fig_cell says */
    unsigned char tile[4 * 3 * 3];
    memset(tile, 50, sizeof tile);
    fig_tile(&f, 1, 1, tile, 4, 3, 10);
    int x, y;
    fig_cell(&f, 1, 1, &x, &y);
    CHECK(c->rgb[3 * ((size_t)y * c->w + x)] == 50 && c->rgb[3 * ((size_t)(y + 29) * c->w + x + 39)] == 50);
    /* a light outline just outside the tile, white beyond it */
    CHECK(c->rgb[3 * ((size_t)y * c->w + x - 1)] == 225 && c->rgb[3 * ((size_t)y * c->w + x + 40)] == 225);
    CHECK(is_white(c, x - 3, y) && is_white(c, x + 42, y));
    fig_frame(&f, 1, 1, K0);
    CHECK(c->rgb[3 * ((size_t)y * c->w + x - 1)] == 0 && c->rgb[3 * ((size_t)(y + 29) * c->w + x + 40)] == 0 &&
          c->rgb[3 * ((size_t)y * c->w + x)] == 50);
    fig_badge(&f, 0, 0, "empty", K0, W1);
    CHECK(inked(c, x0, y0, x0 + s.tile_w, y0 + s.tile_h) > 0);
    char path[512];
    snprintf(path, sizeof path, "%s/fig.png", test_tmpdir());
    int w = c->w, h = c->h;
    REQUIRE(fig_write(&f, path) == 0);
    Image img;
    REQUIRE(image_load(path, &img) == 0);
    CHECK(img.w == w && img.h == h && img.c == 3);
    image_free(&img);
}

TEST(figure_scales_text_with_the_tiles) {
    FigSpec s = spec_3x2();
    s.tile_w = s.tile_h = 128;
    Figure f;
    REQUIRE(fig_init(&f, &s) == 0);
    CHECK(f.scale == 2);
    int wide = f.canvas.w;
    fig_free(&f);
    s.text_scale = 1;
    REQUIRE(fig_init(&f, &s) == 0);
    CHECK(f.scale == 1 && f.canvas.w < wide);
    fig_free(&f);
    /* a long title is wrapped to the figure's width (at least 32 characters): the
     * canvas grows down, not sideways */
    s.title = "A title";
    REQUIRE(fig_init(&f, &s) == 0);
    int w0 = f.canvas.w, h0 = f.canvas.h;
    fig_free(&f);
    s.title = "a title far wider than the two columns of this small figure, so that it wraps onto more lines";
    REQUIRE(fig_init(&f, &s) == 0);
    CHECK(f.canvas.w <= w0 + 32 * FONT_ADV * 2 && f.canvas.h > h0);
    fig_free(&f);
}

TEST(figure_too_large_is_an_error) {
    FigSpec s = spec_3x2();
    s.rows = 2000;
    s.cols = 2000;
    Figure f;
    CHECK(fig_init(&f, &s) == -1 && strstr(err_get(), "too large") != NULL && f.canvas.rgb == NULL);
}

TEST(figure_axes_ticks_and_clipping) {
    double lo = 0.3, hi = 9.7;
    fig_nice_range(&lo, &hi, 5);
    CHECK(lo == 0 && hi == 10);
    lo = -3.2, hi = 14.9;
    fig_nice_range(&lo, &hi, 5);
    CHECK(lo == -5 && hi == 15);
    lo = 2, hi = 2;
    fig_nice_range(&lo, &hi, 5);
    CHECK(lo < 2 && hi > 2);
    lo = NAN, hi = 1;
    fig_nice_range(&lo, &hi, 5);
    CHECK(lo == 0 && hi == 1);
    CHECK(fig_tick_step(0, 1, 5) == 0.2 && fig_tick_step(0, 100, 4) == 20 && fig_tick_step(-8, 8, 5) == 5);

    Canvas c;
    canvas_init(&c, 200, 160, NULL);
    FigAxes a = {FIG_AXES_LEFT(1), FIG_AXES_TOP(1), 100, 80, 0, 10, 0, 5};
    fig_axes_draw(&c, &a, "title", "x", "y", 1);
    double px, py;
    fig_axes_px(&a, 0, 0, &px, &py);
    CHECK(px == a.x && py == a.y + a.h - 1);
    fig_axes_px(&a, 10, 5, &px, &py);
    CHECK(px == a.x + a.w - 1 && py == a.y);
    /* a point outside the range is not drawn; one inside is */
    Canvas d;
    canvas_init(&d, 200, 160, NULL);
    fig_axes_mark(&d, &a, 11, 2, MARK_DISC, 5, K0);
    fig_axes_mark(&d, &a, -1, 2, MARK_DISC, 5, K0);
    CHECK(inked(&d, 0, 0, 200, 160) == 0);
    fig_axes_mark(&d, &a, 5, 2.5, MARK_DISC, 5, K0);
    CHECK(inked(&d, 0, 0, 200, 160) > 0);
    /* a line from far outside stays inside the plot area */
    canvas_free(&d);
    canvas_init(&d, 200, 160, NULL);
    fig_axes_line(&d, &a, -100, -50, 100, 50, K0, 1);
    CHECK(inked(&d, a.x, a.y, a.x + a.w, a.y + a.h) > 50);
    CHECK(inked(&d, 0, 0, 200, 160) == inked(&d, a.x, a.y, a.x + a.w, a.y + a.h));
    fig_axes_line(&d, &a, 20, 20, 30, 30, K0, 1); /* wholly outside: nothing */
    fig_axes_line(&d, &a, NAN, 0, 1, 1, K0, 1);
    CHECK(inked(&d, 0, 0, 200, 160) == inked(&d, a.x, a.y, a.x + a.w, a.y + a.h));
    canvas_free(&d);
    canvas_free(&c);
}
