/* png: PNG decoder and encoder (see io/image.h for what is supported).
 * Decoding: walk the chunks (checking each CRC-32), validate IHDR, gather the IDAT
 * data, inflate it with the exact expected size as the limit, then undo the row
 * filters in place and expand each row to 8-bit samples, pass by pass for Adam7.
 * Encoding: per row, the filter whose output has the smallest sum of |signed bytes|
 * (the usual libpng heuristic), deflate at level 6, one IHDR / IDAT... / IEND.
 * Limits (each a one-line error, checked before any buffer of that size exists):
 * file <= IMAGE_MAX_FILE (image_load); chunk length <= 2^31 - 1 and within the
 * file; IHDR width and height <= IMAGE_MAX_DIM and width x height <=
 * IMAGE_MAX_PIXELS; the image data inflates to at most the exact size the IHDR
 * implies (the inflate limit), and less is refused too.
 * Not for: ancillary chunks (tRNS, gAMA, text... are skipped), APNG, writing
 * palette or 16-bit images. */
#include "core/err.h"
#include "io/file.h"
#include "io/image.h"
#include "io/zlib.h"
#include <stdlib.h>
#include <string.h>

static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
}

/* ---- decoding ----------------------------------------------------------------- */

typedef struct {
    int w, h, depth, ctype, interlace;
    int spp;                  /* samples per pixel in the file: 1 gray/palette, 2, 3, 4 */
    int npal;
    unsigned char pal[256 * 3];
} PngInfo;

/* Undo the filter of one row in place; prev is the previous unfiltered row or NULL. */
static int unfilter(unsigned char *row, const unsigned char *prev, size_t len, int bpp, int ft) {
    size_t i, b = (size_t)bpp;
    switch (ft) {
    case 0: break;
    case 1: for (i = b; i < len; i++) row[i] = (unsigned char)(row[i] + row[i - b]); break;
    case 2: if (prev) for (i = 0; i < len; i++) row[i] = (unsigned char)(row[i] + prev[i]); break;
    case 3:
        for (i = 0; i < len; i++) {
            int a = i >= b ? row[i - b] : 0, up = prev ? prev[i] : 0;
            row[i] = (unsigned char)(row[i] + ((a + up) >> 1));
        }
        break;
    case 4:
        for (i = 0; i < len; i++) {
            int a = i >= b ? row[i - b] : 0, up = prev ? prev[i] : 0, c = (i >= b && prev) ? prev[i - b] : 0;
            row[i] = (unsigned char)(row[i] + paeth(a, up, c));
        }
        break;
    default: return -1;
    }
    return 0;
}

/* Expand n pixels of an unfiltered row to 8-bit samples at dst, dst + step, ... */
static int expand_row(const PngInfo *pi, const unsigned char *row, int n, unsigned char *dst, size_t step) {
    for (int x = 0; x < n; x++, dst += step) {
        if (pi->depth == 8) {
            for (int k = 0; k < pi->spp; k++) dst[k] = row[(size_t)x * pi->spp + k];
        } else if (pi->depth == 16) {
            for (int k = 0; k < pi->spp; k++) dst[k] = row[2 * ((size_t)x * pi->spp + k)]; /* high byte */
        } else { /* 1, 2, 4 bits, one sample per pixel, MSB first */
            size_t bit = (size_t)x * pi->depth;
            int v = (row[bit / 8] >> (8 - pi->depth - (int)(bit % 8))) & ((1 << pi->depth) - 1);
            dst[0] = pi->ctype == 3 ? (unsigned char)v : (unsigned char)(v * 255 / ((1 << pi->depth) - 1));
        }
        if (pi->ctype == 3) {
            int idx = dst[0];
            if (idx >= pi->npal) return err_set("palette index %d out of range (palette has %d colours)", idx, pi->npal);
            memcpy(dst, pi->pal + 3 * idx, 3);
        }
    }
    return 0;
}

static int check_ihdr(PngInfo *pi, const unsigned char *d, const char *name) {
    uint32_t w = be32(d), h = be32(d + 4);
    pi->depth = d[8];
    pi->ctype = d[9];
    pi->interlace = d[12];
    if (w == 0 || h == 0) return err_set("%s: corrupt PNG: zero width or height", name);
    if (w > IMAGE_MAX_DIM || h > IMAGE_MAX_DIM || (long)w * (long)h > IMAGE_MAX_PIXELS)
        return err_set("%s: PNG is %ux%u, larger than the limit (%d per side, %ld pixels)", name, w, h,
                       IMAGE_MAX_DIM, IMAGE_MAX_PIXELS);
    pi->w = (int)w;
    pi->h = (int)h;
    int dp = pi->depth, ok;
    switch (pi->ctype) {
    case 0: pi->spp = 1; ok = dp == 1 || dp == 2 || dp == 4 || dp == 8 || dp == 16; break;
    case 3: pi->spp = 1; ok = dp == 1 || dp == 2 || dp == 4 || dp == 8; break;
    case 2: pi->spp = 3; ok = dp == 8 || dp == 16; break;
    case 4: pi->spp = 2; ok = dp == 8 || dp == 16; break;
    case 6: pi->spp = 4; ok = dp == 8 || dp == 16; break;
    default: return err_set("%s: corrupt PNG: colour type %d", name, pi->ctype);
    }
    if (!ok) return err_set("%s: corrupt PNG: bit depth %d not allowed for colour type %d", name, dp, pi->ctype);
    if (d[10] != 0 || d[11] != 0) return err_set("%s: corrupt PNG: unknown compression or filter method", name);
    if (pi->interlace > 1) return err_set("%s: corrupt PNG: unknown interlace method %d", name, pi->interlace);
    return 0;
}

/* Adam7 passes: x0, y0, dx, dy; a plain image is the single pass {0,0,1,1}. */
static const int adam7[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

/* Kept whole: the file's order (chunks, then the inflated data, then the rows of
 * each pass unfiltered) with one exit that frees the compressed data on every error. */
int png_decode(const unsigned char *buf, size_t n, const char *name, Image *img) {
    PngInfo pi;
    memset(img, 0, sizeof *img);
    memset(&pi, 0, sizeof pi);
    if (n < 8 || memcmp(buf, png_sig, 8) != 0) return err_set("%s: not a PNG file (bad signature)", name);
    unsigned char *idat = NULL;
    size_t idat_len = 0, idat_cap = 0, pos = 8;
    int seen_ihdr = 0, seen_iend = 0, r = 0;
    while (!seen_iend) {
        if (n - pos < 12) { r = err_set("%s: truncated PNG (ends at byte %zu, inside a chunk header)", name, n); goto fail; }
        uint32_t len = be32(buf + pos);
        const unsigned char *type = buf + pos + 4, *data = buf + pos + 8;
        char t[5];
        for (int i = 0; i < 4; i++) t[i] = (char)(((type[i] | 32) >= 'a' && (type[i] | 32) <= 'z') ? type[i] : '?');
        t[4] = 0;
        if (len > 0x7fffffffu) { r = err_set("%s: corrupt PNG: chunk length %u too large", name, len); goto fail; }
        if (n - pos - 12 < len) { r = err_set("%s: truncated PNG (chunk %s needs %u bytes, file ends)", name, t, len); goto fail; }
        if (strchr(t, '?')) { r = err_set("%s: corrupt PNG: bad chunk type at byte %zu", name, pos); goto fail; }
        uint32_t crc = zlib_crc32(0, type, (size_t)len + 4);
        if (crc != be32(data + len)) { r = err_set("%s: corrupt PNG: CRC mismatch in chunk %s", name, t); goto fail; }
        pos += 12 + (size_t)len;
        if (!seen_ihdr && strcmp(t, "IHDR") != 0) { r = err_set("%s: corrupt PNG: first chunk is %s, not IHDR", name, t); goto fail; }
        if (!strcmp(t, "IHDR")) {
            if (seen_ihdr || len != 13) { r = err_set("%s: corrupt PNG: bad IHDR", name); goto fail; }
            if ((r = check_ihdr(&pi, data, name)) != 0) goto fail;
            seen_ihdr = 1;
        } else if (!strcmp(t, "PLTE")) {
            if (len % 3 || len == 0 || len > 768 || pi.npal) { r = err_set("%s: corrupt PNG: bad PLTE chunk", name); goto fail; }
            pi.npal = (int)len / 3;
            memcpy(pi.pal, data, len);
        } else if (!strcmp(t, "IDAT")) {
            if (len == 0) continue; /* an empty IDAT is legal; idat may still be NULL (NULL + 0 is UB) */
            if (idat_len + len > idat_cap) { /* geometric growth: files may hold many small IDATs */
                idat_cap = idat_len + len > 2 * idat_cap ? idat_len + len : 2 * idat_cap;
                idat = xrealloc(idat, idat_cap);
            }
            memcpy(idat + idat_len, data, len);
            idat_len += len;
        } else if (!strcmp(t, "IEND")) {
            seen_iend = 1;
        } else if (!(type[0] & 32)) { /* upper-case first letter: critical, must not be skipped */
            r = err_set("%s: unsupported critical PNG chunk %s", name, t);
            goto fail;
        }
    }
    if (!idat_len) { r = err_set("%s: corrupt PNG: no image data (IDAT)", name); goto fail; }
    if (pi.ctype == 3 && !pi.npal) { r = err_set("%s: corrupt PNG: palette image without PLTE", name); goto fail; }

    int npass = pi.interlace ? 7 : 1, bits = pi.depth * pi.spp, bpp = bits < 8 ? 1 : bits / 8;
    const int plain[4] = {0, 0, 1, 1};
    size_t expect = 0;
    for (int p = 0; p < npass; p++) {
        const int *a = pi.interlace ? adam7[p] : plain;
        if (pi.w <= a[0] || pi.h <= a[1]) continue; /* empty pass: no data at all */
        size_t pw = (size_t)(pi.w - a[0] + a[2] - 1) / a[2], ph = (size_t)(pi.h - a[1] + a[3] - 1) / a[3];
        expect += ph * (1 + (pw * bits + 7) / 8);
    }
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    if (zlib_decompress(idat, idat_len, expect, &raw, &raw_len)) {
        err_prefix("corrupt PNG image data");
        r = err_prefix(name);
        goto fail;
    }
    free(idat);
    idat = NULL;
    if (raw_len != expect) {
        free(raw);
        return err_set("%s: corrupt PNG: image data too short (%zu of %zu bytes)", name, raw_len, expect);
    }

    img->w = pi.w;
    img->h = pi.h;
    img->c = pi.ctype == 3 ? 3 : pi.spp;
    img->data = xmalloc((size_t)pi.w * pi.h * img->c);
    unsigned char *row = raw;
    for (int p = 0; p < npass; p++) {
        const int *a = pi.interlace ? adam7[p] : plain;
        if (pi.w <= a[0] || pi.h <= a[1]) continue; /* empty pass */
        int pw = (pi.w - a[0] + a[2] - 1) / a[2], ph = (pi.h - a[1] + a[3] - 1) / a[3];
        size_t rb = ((size_t)pw * bits + 7) / 8;
        const unsigned char *prev = NULL;
        for (int y = 0; y < ph; y++) {
            int ft = row[0];
            if (unfilter(row + 1, prev, rb, bpp, ft)) {
                r = err_set("%s: corrupt PNG: bad filter type %d in row %d", name, ft, y);
                break;
            }
            size_t yy = (size_t)a[1] + (size_t)y * a[3];
            unsigned char *dst = img->data + (yy * pi.w + a[0]) * img->c;
            if (expand_row(&pi, row + 1, pw, dst, (size_t)a[2] * img->c)) {
                r = err_prefix(name);
                break;
            }
            prev = row + 1;
            row += 1 + rb;
        }
        if (r) break;
    }
    free(raw);
    if (r) image_free(img);
    return r;
fail:
    free(idat);
    return r;
}

/* ---- encoding ----------------------------------------------------------------- */

static void put_chunk(unsigned char **out, size_t *len, size_t *cap, const char *type, const unsigned char *d, size_t n) {
    while (*len + n + 12 > *cap) {
        *cap = *cap ? 2 * *cap : 4096;
        *out = xrealloc(*out, *cap);
    }
    unsigned char *p = *out + *len;
    put32(p, (uint32_t)n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, d, n);
    put32(p + 8 + n, zlib_crc32(0, p + 4, n + 4));
    *len += n + 12;
}

int png_encode(const Image *img, unsigned char **out, size_t *out_len) {
    static const unsigned char ctype[5] = {0, 0, 4, 2, 6};
    if (img->c < 1 || img->c > 4) return err_set("PNG writer: %d channels (want 1 to 4)", img->c);
    if (img->w < 1 || img->h < 1 || img->w > IMAGE_MAX_DIM || img->h > IMAGE_MAX_DIM ||
        (long)img->w * img->h > IMAGE_MAX_PIXELS)
        return err_set("PNG writer: bad image size %dx%d", img->w, img->h);
    size_t bpp = (size_t)img->c, rb = (size_t)img->w * bpp;
    unsigned char *raw = xmalloc((1 + rb) * img->h), *trial = xmalloc(5 * rb);
    for (int y = 0; y < img->h; y++) {
        const unsigned char *cur = img->data + y * rb, *up = y ? cur - rb : NULL;
        long best_sum = -1;
        int best = 0;
        for (int f = 0; f < 5; f++) {
            unsigned char *t = trial + f * rb;
            long sum = 0;
            for (size_t i = 0; i < rb; i++) {
                int a = i >= bpp ? cur[i - bpp] : 0, b = up ? up[i] : 0, c = (up && i >= bpp) ? up[i - bpp] : 0;
                int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) >> 1 : paeth(a, b, c);
                t[i] = (unsigned char)(cur[i] - pred);
                sum += abs((signed char)t[i]);
            }
            if (best_sum < 0 || sum < best_sum) { best_sum = sum; best = f; }
        }
        raw[y * (1 + rb)] = (unsigned char)best;
        memcpy(raw + y * (1 + rb) + 1, trial + best * rb, rb);
    }
    free(trial);
    unsigned char *z;
    size_t zlen;
    zlib_compress(raw, (1 + rb) * img->h, 6, &z, &zlen);
    free(raw);

    unsigned char ihdr[13], *o = NULL;
    size_t len = 0, cap = zlen + zlen / 16 + 128;
    o = xmalloc(cap);
    put32(ihdr, (uint32_t)img->w);
    put32(ihdr + 4, (uint32_t)img->h);
    ihdr[8] = 8;
    ihdr[9] = ctype[img->c];
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    memcpy(o, png_sig, 8);
    len = 8;
    put_chunk(&o, &len, &cap, "IHDR", ihdr, 13);
    for (size_t p = 0; p < zlen; p += 1 << 20)
        put_chunk(&o, &len, &cap, "IDAT", z + p, zlen - p < (1u << 20) ? zlen - p : 1u << 20);
    put_chunk(&o, &len, &cap, "IEND", NULL, 0);
    free(z);
    *out = o;
    *out_len = len;
    return 0;
}

int png_write(const char *path, const Image *img) {
    unsigned char *buf;
    size_t len;
    if (png_encode(img, &buf, &len)) return err_prefix(path);
    AtomicFile af;
    if (afile_open(&af, path)) { free(buf); return -1; }
    if (fwrite(buf, 1, len, af.f) != len) {
        free(buf);
        afile_abort(&af);
        return err_set("%s: write failed", path);
    }
    free(buf);
    return afile_commit(&af);
}
