/* font: gad's own bitmap font, so that figures carry their titles, labels and
 * numbers inside the PNG (a figure must stand alone on a slide) without a font
 * file or library. Each glyph is 5 x 9 pixels: rows 0-6 hold capitals and digits
 * (the baseline is under row 6), rows 7-8 the descenders of g, j, p, q, y.
 * Characters advance FONT_ADV pixels; lines advance FONT_LINE.
 * Covered: printable ASCII (32-126) and the few symbols the GAD figures use:
 * α Σ × ≤ ≥ − – · ² ✗ (UTF-8). Anything else is drawn as a hollow box.
 * Not for: drawing (io/canvas.h draws text with these glyphs), kerning, other
 * sizes than integer multiples. */
#ifndef GAD_IO_FONT_H
#define GAD_IO_FONT_H
#include <stddef.h>
#include <stdint.h>

#define FONT_W 5      /* glyph width in pixels */
#define FONT_H 9      /* glyph height in pixels, descenders included */
#define FONT_ADV 6    /* horizontal advance per character */
#define FONT_LINE 11  /* vertical advance per line */

/* rows[FONT_H] = the glyph of code point cp, one byte per row, bit 4 = the leftmost
 * pixel, bit 0 = the rightmost. Unknown code points give the hollow box. */
void font_glyph(uint32_t cp, uint8_t rows[FONT_H]);
/* 1 if cp has a glyph of its own (not the box). */
int font_has(uint32_t cp);
/* Decode one UTF-8 character at *s and advance *s past it. A malformed byte is
 * taken as one character U+FFFD (drawn as the box). Returns 0 at the end. */
uint32_t font_next(const char **s);
/* Width and height in pixels of text at integer scale `scale` (>= 1), with '\n'
 * starting a new line: width of the longest line (no trailing gap), height
 * lines * FONT_LINE * scale minus the gap under the last line. "" is 0 x 0. */
void font_measure(const char *text, int scale, int *w, int *h);
/* out [len] = text with every line longer than `width` characters broken at its
 * last space that fits (a '\n' in text is kept; a word longer than width stays
 * whole). Truncated to fit len (always NUL-terminated). Returns the line count. */
int font_wrap(const char *text, int width, char *out, size_t len);

#endif
