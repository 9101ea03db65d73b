/* jpeg: the JPEG decoder of io/jpeg.h.
 * Steps: walk the markers (tables, frame header, scans); entropy-decode every scan
 * into one array of coefficients per component (sequential and progressive files
 * alike, so a file of several scans needs no path of its own); then per component
 * the inverse DCT into a plane of samples, the chroma planes upsampled to full size,
 * and the colour conversion. The last three follow libjpeg-turbo 2.1's C code step
 * by step, so the pixels are those of Pillow's default decode:
 *   IDCT     jidctint.c's "islow": 13-bit constants, 2 extra bits between the
 *            column and row passes, and its range-limit table (out-of-range sums
 *            wrap modulo 1024 before the clamp, as there);
 *   upsample jdsample.c's triangle filters for 2:1 ratios ("fancy upsampling",
 *            with its alternating rounding), plain replication for the others and
 *            for planes 2 samples wide or less; at the plane's edges the nearest
 *            row or column stands for the missing neighbour, as jdmainct.c's
 *            context rows and the filters' edge cases do;
 *   colour   jdcolor.c's tables (16-bit fixed point, FIX(1.40200) etc.).
 * Coefficients are kept as 16-bit values, as libjpeg's JCOEF; intermediates are
 * 64-bit, as its JLONG on 64-bit Linux, so a corrupt file cannot overflow them.
 * Not for: encoding, arithmetic coding, 12-bit, lossless, CMYK (refused, jpeg.h). */
#include "io/jpeg.h"
#include "core/err.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FAST_BITS 9 /* Huffman codes up to this long are decoded by one table look-up */

/* Zigzag position -> natural (row-major) position in an 8x8 block. */
static const unsigned char natural[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

typedef struct {
    uint16_t fast[1 << FAST_BITS]; /* next FAST_BITS bits -> length << 8 | symbol; 0: a longer code */
    int maxcode[17];               /* largest code of each length (1..16), -1 when none */
    int valoff[17];                /* vals index of a code of that length = code + valoff */
    unsigned char vals[256];
    int defined;
} Huff;

typedef struct {
    int id, h, v, tq;   /* component id, sampling factors (1..4), quantization table */
    int cw, ch;         /* size in samples: ceil(W * h / hmax) x ceil(H * v / vmax) */
    int bw, bh;         /* blocks per row and per column, padded to whole MCUs */
    int16_t *coef;      /* [bh * bw][64] coefficients, natural order (owned) */
    int q[64];          /* quantization table latched at the first scan, natural order */
    int latched;        /* 1 once q holds the table */
    int has_dc;         /* 1 once a scan has carried the DC coefficients */
    int dc_pred;        /* DC predictor of the current scan */
    int td, ta;         /* Huffman tables of the current scan */
} Comp;

typedef struct {
    const char *name;
    const unsigned char *buf;
    size_t n, pos;                /* the file and the read position */
    int sof;                      /* 0 before the frame header, else its marker */
    int w, h, ncomp, progressive, hmax, vmax, mcux, mcuy;
    Comp comp[3];
    int qt[4][64], qt_set[4];     /* quantization tables, natural order */
    Huff dc[4], ac[4];
    int restart;                  /* restart interval in MCUs (0: none) */
    int jfif, adobe, adobe_transform;
    int nscans;
    /* the current scan */
    int ns, sc[4], ss, se, ah, al, eobrun;
    uint64_t acc;                 /* bit buffer, MSB first */
    int nbits;                    /* valid bits in acc */
    int fake;                     /* zero bits put in acc past the scan's data */
    int at_marker;                /* the scan's data ended at a marker (pos is on its 0xFF) */
} Dec;

/* ---- small helpers ------------------------------------------------------------ */

static int be16(const unsigned char *p) { return p[0] << 8 | p[1]; }

/* x >> s rounding down, also for negative x (the arithmetic shift libjpeg assumes). */
static int64_t sra(int64_t x, int s) { return x >= 0 ? x >> s : ~(~x >> s); }

/* Truncate to 16 bits as a store into libjpeg's JCOEF does. */
static int16_t s16(int64_t v) {
    uint16_t u = (uint16_t)(uint64_t)v;
    return u < 0x8000 ? (int16_t)u : (int16_t)((int)u - 0x10000);
}

static uint8_t clamp255(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* ---- Huffman tables and the bit reader ----------------------------------------- */

/* Build t from the 16 code-length counts and the symbols (canonical codes). The
 * checks are libjpeg's: no code may be all ones or overflow its length, and a DC
 * table's symbols (difference sizes) are at most 15. Returns 0 or -1. */
static int huff_build(Huff *t, const unsigned char counts[16], const unsigned char *vals, int nvals, int is_dc) {
    int code = 0, k = 0;
    memset(t, 0, sizeof *t);
    memcpy(t->vals, vals, (size_t)nvals);
    for (int i = 0; i < nvals; i++)
        if (is_dc && vals[i] > 15) return -1;
    for (int len = 1; len <= 16; len++) {
        int cnt = counts[len - 1];
        t->valoff[len] = k - code;
        for (int i = 0; i < cnt; i++, k++, code++) {
            if (code >= (1 << len) - 1) return -1; /* all ones, or past the length's codes */
            if (len <= FAST_BITS) {
                int shift = FAST_BITS - len;
                for (int j = 0; j < 1 << shift; j++) t->fast[code << shift | j] = (uint16_t)(len << 8 | vals[k]);
            }
        }
        t->maxcode[len] = cnt ? code - 1 : -1;
        code <<= 1;
    }
    t->defined = 1;
    return 0;
}

/* Top up the bit buffer to more than 56 bits. A stuffed FF 00 is a data byte FF;
 * FF followed by anything else is a marker: the scan's data ends there and zero
 * bits are appended (counted in d->fake, so that using them is caught). */
static void fill(Dec *d) {
    while (d->nbits <= 56) {
        unsigned v = 0;
        int got = 0;
        if (!d->at_marker && d->pos < d->n) {
            v = d->buf[d->pos];
            if (v != 0xFF) {
                d->pos++;
                got = 1;
            } else {
                size_t q = d->pos + 1;
                while (q < d->n && d->buf[q] == 0xFF) q++; /* fill bytes */
                if (q < d->n && d->buf[q] == 0) {
                    d->pos = q + 1;
                    got = 1;
                } else {
                    d->at_marker = 1;
                }
            }
        }
        if (!got) {
            v = 0;
            d->fake += 8;
        }
        d->acc |= (uint64_t)v << (56 - d->nbits);
        d->nbits += 8;
    }
}

/* 1 when the decoder has used bits past the end of the scan's data. */
static int overrun(const Dec *d) { return d->nbits < d->fake; }

static void bits_reset(Dec *d) {
    d->acc = 0;
    d->nbits = d->fake = d->at_marker = 0;
}

/* The next n bits (1..16) as an unsigned number. */
static unsigned getbits(Dec *d, int n) {
    if (d->nbits < n) fill(d);
    unsigned v = (unsigned)(d->acc >> (64 - n));
    d->acc <<= n;
    d->nbits -= n;
    return v;
}

/* A coefficient's value from its s-bit (1..16) representation (JPEG's EXTEND). */
static int extend(unsigned v, int s) { return v < 1u << (s - 1) ? (int)v - (1 << s) + 1 : (int)v; }

/* The next Huffman symbol, or -1 for a code the table does not have. */
static int huff_decode(Dec *d, const Huff *t) {
    if (d->nbits < 16) fill(d);
    int e = t->fast[d->acc >> (64 - FAST_BITS)], len, sym;
    if (e) {
        len = e >> 8;
        sym = e & 255;
    } else {
        unsigned c16 = (unsigned)(d->acc >> 48);
        for (len = FAST_BITS + 1; len <= 16; len++)
            if ((int)(c16 >> (16 - len)) <= t->maxcode[len]) break;
        if (len > 16) return -1;
        sym = t->vals[t->valoff[len] + (int)(c16 >> (16 - len))];
    }
    d->acc <<= len;
    d->nbits -= len;
    return sym;
}

/* ---- entropy decoding of one block ---------------------------------------------- */

static int bad_code(Dec *d) {
    return err_set("%s: corrupt JPEG data (bad Huffman code in scan %d)", d->name, d->nscans);
}

/* The DC difference of a block (sequential and DC-first scans). */
static int dc_diff(Dec *d, Comp *c, int *diff) {
    int s = huff_decode(d, &d->dc[c->td]);
    if (s < 0) return bad_code(d);
    *diff = s ? extend(getbits(d, s), s) : 0;
    return 0;
}

/* Sequential: the whole block. */
static int block_seq(Dec *d, Comp *c, int16_t *b) {
    int diff;
    if (dc_diff(d, c, &diff)) return -1;
    c->dc_pred = s16((int64_t)c->dc_pred + diff);
    b[0] = (int16_t)c->dc_pred;
    const Huff *t = &d->ac[c->ta];
    for (int k = 1; k < 64; k++) {
        int rs = huff_decode(d, t);
        if (rs < 0) return bad_code(d);
        int r = rs >> 4, s = rs & 15;
        if (s) {
            k += r;
            if (k > 63) return bad_code(d);
            b[natural[k]] = (int16_t)extend(getbits(d, s), s);
        } else {
            if (r != 15) break; /* end of block */
            k += 15;            /* sixteen zeros */
        }
    }
    return 0;
}

/* Progressive, first DC scan: the DC value scaled by 2^Al. */
static int block_dc_first(Dec *d, Comp *c, int16_t *b) {
    int diff;
    if (dc_diff(d, c, &diff)) return -1;
    c->dc_pred = s16((int64_t)c->dc_pred + diff);
    b[0] = s16((int64_t)c->dc_pred * ((int64_t)1 << d->al));
    return 0;
}

/* Progressive, DC refinement: one more bit of the DC value. */
static int block_dc_refine(Dec *d, int16_t *b) {
    if (getbits(d, 1)) b[0] = (int16_t)(b[0] | 1 << d->al);
    return 0;
}

/* Progressive, first AC scan of the band Ss..Se (one component), with end-of-band runs. */
static int block_ac_first(Dec *d, Comp *c, int16_t *b) {
    if (d->eobrun > 0) {
        d->eobrun--;
        return 0;
    }
    const Huff *t = &d->ac[c->ta];
    for (int k = d->ss; k <= d->se; k++) {
        int rs = huff_decode(d, t);
        if (rs < 0) return bad_code(d);
        int r = rs >> 4, s = rs & 15;
        if (s) {
            k += r;
            if (k > d->se) return bad_code(d);
            b[natural[k]] = s16((int64_t)extend(getbits(d, s), s) * ((int64_t)1 << d->al));
        } else if (r == 15) {
            k += 15;
        } else {
            d->eobrun = 1 << r;
            if (r) d->eobrun += (int)getbits(d, r);
            d->eobrun--;
            break;
        }
    }
    return 0;
}

/* One correction bit for an already non-zero coefficient (AC refinement). */
static void refine_coef(Dec *d, int16_t *x, int p1) {
    if (getbits(d, 1) && (*x & p1) == 0) *x = (int16_t)(*x >= 0 ? *x + p1 : *x - p1);
}

/* Progressive AC refinement of the band Ss..Se, as libjpeg's decode_mcu_AC_refine:
 * new coefficients are +-2^Al, and each one already non-zero that the run passes
 * over gets a correction bit. */
static int block_ac_refine(Dec *d, Comp *c, int16_t *b) {
    int p1 = 1 << d->al, k = d->ss;
    const Huff *t = &d->ac[c->ta];
    if (d->eobrun == 0) {
        for (; k <= d->se; k++) {
            int rs = huff_decode(d, t);
            if (rs < 0) return bad_code(d);
            int r = rs >> 4, s = rs & 15, val = 0;
            if (s) {
                if (s != 1) return bad_code(d);
                val = getbits(d, 1) ? p1 : -p1;
            } else if (r != 15) {
                d->eobrun = 1 << r;
                if (r) d->eobrun += (int)getbits(d, r);
                break; /* the rest of this block is done below */
            }
            for (; k <= d->se; k++) { /* skip r zero coefficients, refining the non-zero ones */
                int16_t *x = &b[natural[k]];
                if (*x) refine_coef(d, x, p1);
                else if (--r < 0) break;
            }
            if (val) {
                if (k > d->se) return bad_code(d);
                b[natural[k]] = (int16_t)val;
            }
        }
    }
    if (d->eobrun > 0) {
        for (; k <= d->se; k++)
            if (b[natural[k]]) refine_coef(d, &b[natural[k]], p1);
        d->eobrun--;
    }
    return 0;
}

static int decode_block(Dec *d, Comp *c, int16_t *b) {
    if (!d->progressive) return block_seq(d, c, b);
    if (d->ss == 0) return d->ah == 0 ? block_dc_first(d, c, b) : block_dc_refine(d, b);
    return d->ah == 0 ? block_ac_first(d, c, b) : block_ac_refine(d, c, b);
}

/* ---- scans -------------------------------------------------------------------------- */

/* Move pos to the next marker (FF followed by neither 00 nor FF) and return its
 * code, skipping any stray bytes before it; 0 at the end of the file. */
static int find_marker(Dec *d) {
    for (; d->pos + 1 < d->n; d->pos++) {
        if (d->buf[d->pos] != 0xFF) continue;
        int m = d->buf[d->pos + 1];
        if (m != 0 && m != 0xFF) return m;
    }
    d->pos = d->n;
    return 0;
}

/* At a restart interval's end: the marker RSTn must follow; the bit buffer, the DC
 * predictors and the end-of-band run start afresh. */
static int restart(Dec *d, int *next) {
    bits_reset(d);
    int m = find_marker(d);
    if (m != 0xD0 + *next)
        return err_set("%s: corrupt JPEG data (scan %d: restart marker RST%d missing)", d->name, d->nscans, *next);
    d->pos += 2;
    *next = (*next + 1) & 7;
    for (int i = 0; i < d->ns; i++) d->comp[d->sc[i]].dc_pred = 0;
    d->eobrun = 0;
    return 0;
}

static int decode_scan(Dec *d) {
    int nx = d->mcux, ny = d->mcuy;
    if (d->ns == 1) { /* one component: an MCU is one block, only the blocks that hold samples */
        const Comp *c = &d->comp[d->sc[0]];
        nx = (c->cw + 7) / 8;
        ny = (c->ch + 7) / 8;
    }
    bits_reset(d);
    for (int i = 0; i < d->ns; i++) d->comp[d->sc[i]].dc_pred = 0;
    d->eobrun = 0;
    int left = d->restart, next = 0;
    for (int my = 0; my < ny; my++)
        for (int mx = 0; mx < nx; mx++) {
            if (d->restart && left == 0) {
                if (restart(d, &next)) return -1;
                left = d->restart;
            }
            for (int i = 0; i < d->ns; i++) {
                Comp *c = &d->comp[d->sc[i]];
                if (d->ns == 1) {
                    if (decode_block(d, c, c->coef + ((size_t)my * c->bw + mx) * 64)) return -1;
                    continue;
                }
                for (int by = 0; by < c->v; by++)
                    for (int bx = 0; bx < c->h; bx++) {
                        size_t blk = (size_t)(my * c->v + by) * c->bw + (size_t)(mx * c->h + bx);
                        if (decode_block(d, c, c->coef + blk * 64)) return -1;
                    }
            }
            if (overrun(d))
                return err_set("%s: JPEG data ends inside scan %d (truncated or corrupt file)", d->name, d->nscans);
            left--;
        }
    return 0;
}

/* ---- markers ---------------------------------------------------------------------- */

static int seg_error(Dec *d, int m, const char *what) {
    return err_set("%s: corrupt JPEG (marker FF%02X: %s)", d->name, m, what);
}

static int read_dqt(Dec *d, const unsigned char *p, int len) {
    while (len > 0) {
        int pq = p[0] >> 4, tq = p[0] & 15, n = pq ? 129 : 65;
        if (pq > 1 || tq > 3) return seg_error(d, 0xDB, "bad table precision or number");
        if (len < n) return seg_error(d, 0xDB, "table runs past its segment");
        for (int k = 0; k < 64; k++) {
            int v = pq ? be16(p + 1 + 2 * k) : p[1 + k];
            d->qt[tq][natural[k]] = s16(v); /* libjpeg-turbo's multiplier table holds 16-bit signed values */
        }
        d->qt_set[tq] = 1;
        p += n;
        len -= n;
    }
    return 0;
}

static int read_dht(Dec *d, const unsigned char *p, int len) {
    while (len > 0) {
        if (len < 17) return seg_error(d, 0xC4, "table runs past its segment");
        int tc = p[0] >> 4, th = p[0] & 15, total = 0;
        if (tc > 1 || th > 3) return seg_error(d, 0xC4, "bad table class or number");
        for (int i = 0; i < 16; i++) total += p[1 + i];
        if (total > 256 || 17 + total > len) return seg_error(d, 0xC4, "bad symbol count");
        if (huff_build(tc ? &d->ac[th] : &d->dc[th], p + 1, p + 17, total, !tc))
            return seg_error(d, 0xC4, "bad Huffman table");
        p += 17 + total;
        len -= 17 + total;
    }
    return 0;
}

static int read_sof(Dec *d, int m, const unsigned char *p, int len) {
    if (d->sof) return seg_error(d, m, "a second frame header");
    if (len < 6) return seg_error(d, m, "short frame header");
    int prec = p[0], nf = p[5];
    d->h = be16(p + 1);
    d->w = be16(p + 3);
    if (prec != 8)
        return err_set("%s: %d-bit JPEG is not supported (8-bit samples only)", d->name, prec);
    if (nf == 4)
        return err_set("%s: CMYK/YCCK JPEG (4 components) is not supported: convert it to RGB first", d->name);
    if (nf != 1 && nf != 3)
        return err_set("%s: JPEG with %d components is not supported (1 gray or 3 colour)", d->name, nf);
    if (len != 6 + 3 * nf) return seg_error(d, m, "frame header length does not match its components");
    if (d->h == 0) return err_set("%s: JPEG of height 0 (set later by a DNL marker) is not supported", d->name);
    if (d->w == 0) return seg_error(d, m, "width 0");
    if (d->w > IMAGE_MAX_DIM || d->h > IMAGE_MAX_DIM || (long)d->w * d->h > IMAGE_MAX_PIXELS)
        return err_set("%s: JPEG of %dx%d is over the limit (%d per side, %ld pixels)", d->name, d->w, d->h,
                       IMAGE_MAX_DIM, (long)IMAGE_MAX_PIXELS);
    d->sof = m;
    d->progressive = m == 0xC2;
    d->ncomp = nf;
    d->hmax = d->vmax = 1;
    for (int i = 0; i < nf; i++) {
        Comp *c = &d->comp[i];
        const unsigned char *q = p + 6 + 3 * i;
        c->id = q[0];
        c->h = q[1] >> 4;
        c->v = q[1] & 15;
        c->tq = q[2];
        if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4) return seg_error(d, m, "bad sampling factors");
        if (c->tq > 3) return seg_error(d, m, "bad quantization table number");
        for (int j = 0; j < i; j++)
            if (d->comp[j].id == c->id) return seg_error(d, m, "two components with the same id");
        if (c->h > d->hmax) d->hmax = c->h;
        if (c->v > d->vmax) d->vmax = c->v;
    }
    d->mcux = (d->w + 8 * d->hmax - 1) / (8 * d->hmax);
    d->mcuy = (d->h + 8 * d->vmax - 1) / (8 * d->vmax);
    size_t blocks = 0;
    for (int i = 0; i < nf; i++) {
        Comp *c = &d->comp[i];
        if (d->hmax % c->h || d->vmax % c->v)
            return err_set("%s: JPEG with fractional sampling ratios (%dx%d against %dx%d) is not supported",
                           d->name, c->h, c->v, d->hmax, d->vmax);
        c->cw = (int)(((long)d->w * c->h + d->hmax - 1) / d->hmax);
        c->ch = (int)(((long)d->h * c->v + d->vmax - 1) / d->vmax);
        c->bw = d->mcux * c->h;
        c->bh = d->mcuy * c->v;
        blocks += (size_t)c->bw * c->bh;
    }
    /* Every block costs at least one bit in some scan, and padding to whole MCUs adds
     * at most 16 times the coded blocks: a frame bigger than that is no real file. */
    if ((uint64_t)blocks > 128 * (uint64_t)(d->n - d->pos) + 65536)
        return err_set("%s: JPEG of %dx%d cannot be coded in %zu bytes (truncated or corrupt file)", d->name, d->w,
                       d->h, d->n);
    for (int i = 0; i < nf; i++) {
        Comp *c = &d->comp[i];
        c->coef = xcalloc((size_t)c->bw * c->bh * 64, sizeof(int16_t));
    }
    return 0;
}

static int read_sos(Dec *d, const unsigned char *p, int len) {
    if (!d->sof) return seg_error(d, 0xDA, "scan before the frame header");
    int ns = len > 0 ? p[0] : 0;
    if (ns < 1 || ns > 4 || len != 4 + 2 * ns) return seg_error(d, 0xDA, "bad scan header length");
    d->ns = ns;
    int blocks = 0;
    for (int i = 0; i < ns; i++) {
        int id = p[1 + 2 * i], k = -1;
        for (int j = 0; j < d->ncomp; j++)
            if (d->comp[j].id == id) k = j;
        if (k < 0) return seg_error(d, 0xDA, "scan of a component the frame does not have");
        for (int j = 0; j < i; j++)
            if (d->sc[j] == k) return seg_error(d, 0xDA, "a component twice in one scan");
        Comp *c = &d->comp[k];
        d->sc[i] = k;
        c->td = p[2 + 2 * i] >> 4;
        c->ta = p[2 + 2 * i] & 15;
        if (c->td > 3 || c->ta > 3) return seg_error(d, 0xDA, "bad Huffman table number");
        blocks += c->h * c->v;
    }
    if (ns > 1 && blocks > 10) return seg_error(d, 0xDA, "more than 10 blocks per MCU");
    const unsigned char *q = p + 1 + 2 * ns;
    d->ss = q[0];
    d->se = q[1];
    d->ah = q[2] >> 4;
    d->al = q[2] & 15;
    if (d->progressive) {
        int bad = d->ah > 13 || d->al > 13 || (d->ah && d->al != d->ah - 1);
        if (d->ss == 0) bad |= d->se != 0;
        else bad |= d->ss > d->se || d->se > 63 || ns != 1;
        if (bad) return seg_error(d, 0xDA, "bad progressive scan parameters");
    } else { /* libjpeg ignores these in a sequential scan */
        d->ss = 0;
        d->se = 63;
        d->ah = d->al = 0;
    }
    for (int i = 0; i < ns; i++) {
        Comp *c = &d->comp[d->sc[i]];
        int need_dc = d->ss == 0 && d->ah == 0, need_ac = d->ss > 0 || !d->progressive;
        if (need_dc && !d->dc[c->td].defined)
            return err_set("%s: corrupt JPEG (scan %d uses DC Huffman table %d, never defined)", d->name, d->nscans + 1,
                           c->td);
        if (need_ac && !d->ac[c->ta].defined)
            return err_set("%s: corrupt JPEG (scan %d uses AC Huffman table %d, never defined)", d->name, d->nscans + 1,
                           c->ta);
        if (!c->latched) { /* libjpeg takes the table as it is at the component's first scan */
            if (!d->qt_set[c->tq])
                return err_set("%s: corrupt JPEG (quantization table %d used, never defined)", d->name, c->tq);
            memcpy(c->q, d->qt[c->tq], sizeof c->q);
            c->latched = 1;
        }
        if (d->ss == 0) c->has_dc = 1;
    }
    return 0;
}

/* TIFF orientation tag (0x0112) of an Exif block (after "Exif\0\0"); 0 if none. */
static int exif_tag(const unsigned char *p, size_t n) {
    if (n < 8) return 0;
    int le = p[0] == 'I' && p[1] == 'I';
    if (!le && !(p[0] == 'M' && p[1] == 'M')) return 0;
#define RD16(o) (le ? (unsigned)p[o] | (unsigned)p[(o) + 1] << 8 : (unsigned)p[o] << 8 | p[(o) + 1])
#define RD32(o) (le ? RD16(o) | (uint32_t)RD16((o) + 2) << 16 : (uint32_t)RD16(o) << 16 | RD16((o) + 2))
    if (RD16(2) != 42) return 0;
    uint32_t off = RD32(4);
    if (off < 8 || off > n - 2) return 0;
    unsigned cnt = RD16(off);
    for (unsigned i = 0; i < cnt; i++) {
        size_t e = off + 2 + 12 * (size_t)i;
        if (e + 12 > n) break;
        if (RD16(e) == 0x0112) {
            unsigned v = RD16(e + 8);
            return RD16(e + 2) == 3 && RD32(e + 4) == 1 && v >= 1 && v <= 8 ? (int)v : 0;
        }
    }
    return 0;
#undef RD16
#undef RD32
}

int jpeg_exif_orientation(const unsigned char *buf, size_t n) {
    if (n < 4 || buf[0] != 0xFF || buf[1] != 0xD8) return 0;
    for (size_t pos = 2; pos + 4 <= n;) {
        if (buf[pos] != 0xFF) return 0;
        int m = buf[pos + 1];
        if (m == 0xFF) { pos++; continue; }
        if (m == 0xDA || m == 0xD9) return 0;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { pos += 2; continue; }
        size_t len = (size_t)be16(buf + pos + 2);
        if (len < 2 || pos + 2 + len > n) return 0;
        if (m == 0xE1 && len >= 8 && !memcmp(buf + pos + 4, "Exif\0\0", 6)) return exif_tag(buf + pos + 10, len - 8);
        pos += 2 + len;
    }
    return 0;
}

static void read_app(Dec *d, int m, const unsigned char *p, int len) {
    if (m == 0xE0 && len >= 14 && !memcmp(p, "JFIF\0", 5)) d->jfif = 1;
    if (m == 0xEE && len >= 12 && !memcmp(p, "Adobe", 5)) {
        d->adobe = 1;
        d->adobe_transform = p[11];
    }
}

/* ---- reconstruction ---------------------------------------------------------------- */

/* Output of the islow IDCT through libjpeg's range-limit table: 128 is added, and
 * the sum is taken modulo 1024 before clamping to 0..255 (as RANGE_MASK does). */
static uint8_t idct_out(int64_t x) {
    int v = (int)((uint64_t)x & 1023);
    if (v < 128) return (uint8_t)(v + 128);
    if (v < 512) return 255;
    if (v < 896) return 0;
    return (uint8_t)(v - 896);
}

#define CONST_BITS 13
#define PASS1_BITS 2
#define DESCALE(x, n) sra((x) + ((int64_t)1 << ((n) - 1)), n)

/* One 8-bit IDCT pass over 8 values in[0], in[s], ... (the even and odd parts of
 * jidctint.c); out[0..7] before descaling. */
static void idct_1d(int64_t i0, int64_t i1, int64_t i2, int64_t i3, int64_t i4, int64_t i5, int64_t i6, int64_t i7,
                    int64_t o[8]) {
    int64_t z1 = (i2 + i6) * 4433;               /* FIX(0.541196100) */
    int64_t t2 = z1 + i6 * -15137;               /* FIX(1.847759065) */
    int64_t t3 = z1 + i2 * 6270;                 /* FIX(0.765366865) */
    int64_t t0 = (i0 + i4) * (1 << CONST_BITS), t1 = (i0 - i4) * (1 << CONST_BITS);
    int64_t t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
    /* odd part: i7, i5, i3, i1 */
    int64_t a0 = i7, a1 = i5, a2 = i3, a3 = i1;
    int64_t y1 = a0 + a3, y2 = a1 + a2, y3 = a0 + a2, y4 = a1 + a3;
    int64_t z5 = (y3 + y4) * 9633;               /* FIX(1.175875602) */
    a0 *= 2446;                                  /* FIX(0.298631336) */
    a1 *= 16819;                                 /* FIX(2.053119869) */
    a2 *= 25172;                                 /* FIX(3.072711026) */
    a3 *= 12299;                                 /* FIX(1.501321110) */
    y1 *= -7373;                                 /* FIX(0.899976223) */
    y2 *= -20995;                                /* FIX(2.562915447) */
    y3 = y3 * -16069 + z5;                       /* FIX(1.961570560) */
    y4 = y4 * -3196 + z5;                        /* FIX(0.390180644) */
    a0 += y1 + y3;
    a1 += y2 + y4;
    a2 += y2 + y3;
    a3 += y1 + y4;
    o[0] = t10 + a3;
    o[7] = t10 - a3;
    o[1] = t11 + a2;
    o[6] = t11 - a2;
    o[2] = t12 + a1;
    o[5] = t12 - a1;
    o[3] = t13 + a0;
    o[4] = t13 - a0;
}

/* jidctint.c's jpeg_idct_islow: coefficients (natural order) times the table, columns
 * then rows, 8x8 samples to out (row stride `stride`). Its shortcuts for all-zero AC
 * columns and rows give the same values as the full pass, and are kept for speed. */
static void idct_block(const int16_t *in, const int *q, uint8_t *out, size_t stride) {
    int ws[64];
    int64_t o[8];
    for (int x = 0; x < 8; x++) {
        const int16_t *c = in + x;
        const int *qq = q + x;
        if (!(c[8] | c[16] | c[24] | c[32] | c[40] | c[48] | c[56])) {
            int dc = (int)((int64_t)c[0] * qq[0] * (1 << PASS1_BITS));
            for (int y = 0; y < 8; y++) ws[8 * y + x] = dc;
            continue;
        }
        idct_1d((int64_t)c[0] * qq[0], (int64_t)c[8] * qq[8], (int64_t)c[16] * qq[16], (int64_t)c[24] * qq[24],
                (int64_t)c[32] * qq[32], (int64_t)c[40] * qq[40], (int64_t)c[48] * qq[48], (int64_t)c[56] * qq[56], o);
        for (int y = 0; y < 8; y++) ws[8 * y + x] = (int)DESCALE(o[y], CONST_BITS - PASS1_BITS);
    }
    for (int y = 0; y < 8; y++) {
        const int *w = ws + 8 * y;
        uint8_t *r = out + (size_t)y * stride;
        if (!(w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])) {
            uint8_t v = idct_out(DESCALE((int64_t)w[0], PASS1_BITS + 3));
            for (int x = 0; x < 8; x++) r[x] = v;
            continue;
        }
        idct_1d(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], o);
        for (int x = 0; x < 8; x++) r[x] = idct_out(DESCALE(o[x], CONST_BITS + PASS1_BITS + 3));
    }
}

/* Samples of component c (plane p, row stride ps, cw x ch valid) at full size W x H
 * in out, as libjpeg-turbo's upsamplers with fancy upsampling on. */
static void upsample(const Comp *c, int hmax, int vmax, const uint8_t *p, size_t ps, int W, int H, uint8_t *out) {
    int fh = hmax / c->h, fv = vmax / c->v, cw = c->cw, ch = c->ch;
    int fancy_h = fh == 2 && (fv == 1 || fv == 2) && cw > 2; /* h2v1 and h2v2 need 3+ columns */
    int fancy_v = fh == 1 && fv == 2;                         /* h1v2 has no such condition */
    for (int y = 0; y < H; y++) {
        uint8_t *o = out + (size_t)y * W;
        int near = y / fv;
        if (fh == 1 && fv == 1) {
            memcpy(o, p + (size_t)y * ps, (size_t)W);
        } else if (fancy_v) { /* 3/4 nearer row + 1/4 the other, rounding 1 above and 2 below */
            int far = y & 1 ? (near + 1 < ch ? near + 1 : near) : (near > 0 ? near - 1 : 0);
            const uint8_t *a = p + (size_t)near * ps, *b = p + (size_t)far * ps;
            int bias = y & 1 ? 2 : 1;
            for (int x = 0; x < W; x++) o[x] = (uint8_t)((3 * a[x] + b[x] + bias) >> 2);
        } else if (fancy_h && fv == 1) { /* 3/4 nearer + 1/4 the other column, rounding 1 left and 2 right */
            const uint8_t *a = p + (size_t)y * ps;
            for (int x = 0; x < W; x++) {
                int i = x >> 1;
                o[x] = x & 1 ? (uint8_t)((3 * a[i] + a[i + 1 < cw ? i + 1 : i] + 2) >> 2)
                             : (uint8_t)((3 * a[i] + a[i > 0 ? i - 1 : 0] + 1) >> 2);
            }
        } else if (fancy_h) { /* both: column sums of 3 nearer + 1 other row, then 3:1 again, /16 */
            int far = y & 1 ? (near + 1 < ch ? near + 1 : near) : (near > 0 ? near - 1 : 0);
            const uint8_t *a = p + (size_t)near * ps, *b = p + (size_t)far * ps;
            for (int x = 0; x < W; x++) {
                int i = x >> 1, j = x & 1 ? (i + 1 < cw ? i + 1 : i) : (i > 0 ? i - 1 : 0);
                int si = 3 * a[i] + b[i], sj = 3 * a[j] + b[j];
                o[x] = (uint8_t)((3 * si + sj + (x & 1 ? 7 : 8)) >> 4);
            }
        } else { /* any other integral ratio, or narrow planes: replication */
            const uint8_t *a = p + (size_t)near * ps;
            for (int x = 0; x < W; x++) o[x] = a[x / fh];
        }
    }
}

/* IDCT of every block, upsampling and colour conversion into img. */
static void reconstruct(Dec *d, Image *img) {
    int W = d->w, H = d->h, nc = d->ncomp;
    uint8_t *full[3] = {NULL, NULL, NULL};
    img->w = W;
    img->h = H;
    img->c = nc;
    img->data = xmalloc((size_t)W * H * nc);
    for (int i = 0; i < nc; i++) {
        Comp *c = &d->comp[i];
        size_t ps = (size_t)c->bw * 8;
        uint8_t *plane = xmalloc(ps * (size_t)c->bh * 8);
        for (int by = 0; by < c->bh; by++)
            for (int bx = 0; bx < c->bw; bx++)
                idct_block(c->coef + ((size_t)by * c->bw + bx) * 64, c->q, plane + (size_t)by * 8 * ps + (size_t)bx * 8,
                           ps);
        free(c->coef);
        c->coef = NULL;
        full[i] = nc == 1 ? img->data : xmalloc((size_t)W * H);
        upsample(c, d->hmax, d->vmax, plane, ps, W, H, full[i]);
        free(plane);
    }
    if (nc == 1) return;
    /* jdapimin.c's choice: JFIF means YCbCr; else Adobe's transform flag (0: RGB);
     * else component ids 'R','G','B' mean RGB; anything else is taken as YCbCr. */
    int rgb = !d->jfif && (d->adobe ? d->adobe_transform == 0
                                     : d->comp[0].id == 'R' && d->comp[1].id == 'G' && d->comp[2].id == 'B');
    size_t n = (size_t)W * H;
    uint8_t *o = img->data;
    if (rgb) {
        for (size_t k = 0; k < n; k++) {
            o[3 * k] = full[0][k];
            o[3 * k + 1] = full[1][k];
            o[3 * k + 2] = full[2][k];
        }
    } else { /* jdcolor.c: R = Y + 1.402 Cr, G = Y - 0.34414 Cb - 0.71414 Cr, B = Y + 1.772 Cb */
        int crr[256], cbb[256];
        int64_t crg[256], cbg[256];
        for (int i = 0; i < 256; i++) {
            int64_t x = i - 128;
            crr[i] = (int)sra(91881 * x + 32768, 16);
            cbb[i] = (int)sra(116130 * x + 32768, 16);
            crg[i] = -46802 * x;
            cbg[i] = -22554 * x + 32768;
        }
        for (size_t k = 0; k < n; k++) {
            int y = full[0][k], cb = full[1][k], cr = full[2][k];
            o[3 * k] = clamp255(y + crr[cr]);
            o[3 * k + 1] = clamp255(y + (int)sra(cbg[cb] + crg[cr], 16));
            o[3 * k + 2] = clamp255(y + cbb[cb]);
        }
    }
    for (int i = 0; i < nc; i++) free(full[i]);
}

/* ---- the file ----------------------------------------------------------------------- */

static int decode(Dec *d, Image *img) {
    if (d->n < 3 || d->buf[0] != 0xFF || d->buf[1] != 0xD8)
        return err_set("%s: not a JPEG (no SOI marker)", d->name);
    d->pos = 2;
    for (;;) {
        int m = find_marker(d);
        if (m == 0xD9) break;
        if (m == 0) return err_set("%s: JPEG ends without its EOI marker (truncated file)", d->name);
        d->pos += 2;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; /* TEM, stray RSTn: no length, ignored */
        if (m == 0xD8) return seg_error(d, m, "a second SOI");
        if (d->pos + 2 > d->n) return seg_error(d, m, "segment length past the end of the file");
        int len = be16(d->buf + d->pos);
        if (len < 2 || d->pos + (size_t)len > d->n) return seg_error(d, m, "segment runs past the end of the file");
        const unsigned char *p = d->buf + d->pos + 2;
        d->pos += (size_t)len;
        len -= 2;
        int r = 0;
        if (m == 0xC0 || m == 0xC1 || m == 0xC2) r = read_sof(d, m, p, len);
        else if (m == 0xC3) r = err_set("%s: lossless JPEG (SOF3) is not supported", d->name);
        else if (m >= 0xC5 && m <= 0xC7) r = err_set("%s: hierarchical JPEG (SOF%d) is not supported", d->name, m - 0xC0);
        else if (m >= 0xC9 && m <= 0xCF && m != 0xCC && m != 0xC8)
            r = err_set("%s: arithmetic-coded JPEG (SOF%d) is not supported (jpegtran converts it to Huffman coding)",
                        d->name, m - 0xC0);
        else if (m == 0xCC)
            r = err_set("%s: arithmetic-coded JPEG (DAC marker) is not supported (jpegtran converts it to Huffman "
                        "coding)", d->name);
        else if (m == 0xC4) r = read_dht(d, p, len);
        else if (m == 0xDB) r = read_dqt(d, p, len);
        else if (m == 0xDD) {
            if (len != 2) r = seg_error(d, m, "bad restart interval length");
            else d->restart = be16(p);
        } else if (m == 0xDA) {
            r = read_sos(d, p, len);
            if (!r) {
                d->nscans++;
                r = decode_scan(d);
            }
        } else if (m == 0xF7) r = err_set("%s: JPEG-LS is not supported", d->name);
        else if ((m >= 0xE0 && m <= 0xEF) || m == 0xFE) read_app(d, m, p, len);
        else if (m == 0xDC) continue; /* DNL after a frame of known height: nothing to do */
        else r = seg_error(d, m, "unknown or unsupported marker");
        if (r) return -1;
    }
    if (!d->sof) return err_set("%s: JPEG without a frame header (truncated file?)", d->name);
    for (int i = 0; i < d->ncomp; i++)
        if (!d->comp[i].has_dc)
            return err_set("%s: JPEG component %d has no image data (truncated file?)", d->name, i + 1);
    reconstruct(d, img);
    return 0;
}

int jpeg_decode(const unsigned char *buf, size_t n, const char *name, Image *img) {
    memset(img, 0, sizeof *img);
    Dec *d = xcalloc(1, sizeof *d);
    d->name = name;
    d->buf = buf;
    d->n = n;
    int r = decode(d, img);
    for (int i = 0; i < 3; i++) free(d->comp[i].coef);
    free(d);
    if (r) image_free(img);
    return r;
}
