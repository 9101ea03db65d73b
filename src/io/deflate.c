/* deflate: a DEFLATE compressor (RFC 1951) with zlib and gzip wrappers (see
 * io/zlib.h). Three stages:
 *   1. LZ77: each position is hashed on its next 3 bytes; a hash chain (head/prev)
 *      lists earlier positions with the same hash, searched for the longest match
 *      (up to `chain` candidates) within the 32 KiB window. From level 4 on, matching
 *      is lazy: a match is kept only if the next position does not start a longer one.
 *   2. Blocks of up to BLOCK_TOKENS literals/matches; for each one the cost of a
 *      dynamic Huffman block, a fixed one and stored blocks is computed and the
 *      cheapest is written.
 *   3. Huffman code lengths come from an ordinary Huffman tree; when a code would be
 *      longer than the format allows (15 bits, 7 for the code-length code), the
 *      frequencies are flattened and the tree rebuilt.
 * Not for: streaming, speed (it is simple, not fast), optimal parsing. */
#include "io/zlib.h"
#include "core/err.h"
#include <stdlib.h>
#include <string.h>

/* ---- bit writer --------------------------------------------------------------- */

typedef struct {
    unsigned char *buf;  /* [cap] output (owned until handed out) */
    size_t len, cap;
    uint64_t bits;       /* pending bits, LSB first */
    int nbits;
} BitOut;

static void out_byte(BitOut *o, unsigned char b) {
    if (o->len == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 1024;
        o->buf = xrealloc(o->buf, o->cap);
    }
    o->buf[o->len++] = b;
}

/* Append the low n (<= 32) bits of v. */
static void put_bits(BitOut *o, uint32_t v, int n) {
    o->bits |= (uint64_t)v << o->nbits;
    o->nbits += n;
    while (o->nbits >= 8) {
        out_byte(o, (unsigned char)o->bits);
        o->bits >>= 8;
        o->nbits -= 8;
    }
}

static void align_byte(BitOut *o) {
    if (o->nbits > 0) put_bits(o, 0, 8 - o->nbits);
}

/* The RFC 1951 length/distance tables are inflate.c's (io/zlib.h). */

static int len_code(int len) { /* 3..258 -> 0..28 */
    int c = 28;
    while (zlib_len_base[c] > len) c--;
    return c;
}

static int dist_code(int dist) { /* 1..32768 -> 0..29 (binary search) */
    int lo = 0, hi = 29;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (zlib_dist_base[mid] <= dist) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* ---- Huffman code lengths ----------------------------------------------------- */

typedef struct { uint32_t w; int sym; } Leaf;

static int leaf_cmp(const void *a, const void *b) {
    const Leaf *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? -1 : 1;
    return x->sym - y->sym;
}

/* Code lengths (<= maxbits) for freq[0..n) (n <= 288); unused symbols get 0.
 * At least two symbols always get a length, so the code is complete. */
static void huff_lengths(const uint32_t *freq, int n, int maxbits, uint8_t *len) {
    Leaf leaf[288];
    uint32_t w[2 * 288];
    int parent[2 * 288], depth[2 * 288];
    int m = 0;
    memset(len, 0, (size_t)n);
    for (int i = 0; i < n; i++)
        if (freq[i]) { leaf[m].w = freq[i]; leaf[m].sym = i; m++; }
    if (m < 2) { /* 0 or 1 symbols used: two codes of length 1 */
        int s = m ? leaf[0].sym : 0;
        len[s] = 1;
        len[s == 0 ? 1 : 0] = 1;
        return;
    }
    for (;;) {
        qsort(leaf, (size_t)m, sizeof *leaf, leaf_cmp);
        /* two queues: sorted leaves [0,m) and internal nodes [m, ..) created in
         * nondecreasing weight order; always merge the two lightest */
        for (int i = 0; i < m; i++) w[i] = leaf[i].w;
        int nl = 0, ni = m, end = m;
        while (end < 2 * m - 1) {
            int pick[2];
            for (int k = 0; k < 2; k++) {
                if (nl < m && (ni == end || w[nl] <= w[ni])) pick[k] = nl++;
                else pick[k] = ni++;
            }
            w[end] = w[pick[0]] + w[pick[1]];
            parent[pick[0]] = parent[pick[1]] = end;
            end++;
        }
        int maxd = 0;
        depth[end - 1] = 0;
        for (int i = end - 2; i >= 0; i--) { /* parents come after their children */
            depth[i] = depth[parent[i]] + 1;
            if (i < m && depth[i] > maxd) maxd = depth[i];
        }
        if (maxd <= maxbits) {
            for (int i = 0; i < m; i++) len[leaf[i].sym] = (uint8_t)depth[i];
            return;
        }
        for (int i = 0; i < m; i++) leaf[i].w = (leaf[i].w >> 1) + 1; /* flatten, retry */
    }
}

/* Canonical codes from lengths, bit-reversed for LSB-first output. */
static void huff_codes(const uint8_t *len, int n, uint16_t *code) {
    int count[16] = {0}, next[16];
    for (int i = 0; i < n; i++) count[len[i]]++;
    count[0] = 0;
    int c = 0;
    for (int b = 1; b < 16; b++) {
        c = (c + count[b - 1]) << 1;
        next[b] = c;
    }
    for (int i = 0; i < n; i++) {
        int l = len[i];
        if (!l) { code[i] = 0; continue; }
        unsigned v = (unsigned)next[l]++, r = 0;
        for (int b = 0; b < l; b++) r |= ((v >> b) & 1u) << (l - 1 - b);
        code[i] = (uint16_t)r;
    }
}

/* ---- blocks ------------------------------------------------------------------- */

#define BLOCK_TOKENS (1 << 15)

typedef struct {
    uint16_t lit;   /* literal byte, or match length 3..258 when dist > 0 */
    uint16_t dist;  /* 0 for a literal */
} Token;

typedef struct {
    uint8_t lit_len[288], dist_len[30];
    uint16_t lit_code[288], dist_code[30];
} Codes;

/* Code-length symbols for the dynamic header: run-length coded lens[0..n). */
static int rle_lengths(const uint8_t *lens, int n, uint8_t *sym, uint8_t *extra) {
    int k = 0;
    for (int i = 0; i < n;) {
        int v = lens[i], run = 1;
        while (i + run < n && lens[i + run] == v) run++;
        int left = run;
        if (v == 0) {
            while (left >= 11) { int r = left > 138 ? 138 : left; sym[k] = 18; extra[k++] = (uint8_t)(r - 11); left -= r; }
            if (left >= 3) { sym[k] = 17; extra[k++] = (uint8_t)(left - 3); left = 0; }
        } else {
            sym[k] = (uint8_t)v; extra[k++] = 0; left--;
            while (left >= 3) { int r = left > 6 ? 6 : left; sym[k] = 16; extra[k++] = (uint8_t)(r - 3); left -= r; }
        }
        while (left-- > 0) { sym[k] = (uint8_t)v; extra[k++] = 0; }
        i += run;
    }
    return k;
}

/* Bits of the token data (with end-of-block) under the given lengths. */
static uint64_t data_bits(const uint32_t *lf, const uint32_t *df, const uint8_t *ll, const uint8_t *dl) {
    uint64_t b = 0;
    for (int i = 0; i < 286; i++) b += (uint64_t)lf[i] * (ll[i] + (i >= 257 ? zlib_len_extra[i - 257] : 0));
    for (int i = 0; i < 30; i++) b += (uint64_t)df[i] * (dl[i] + zlib_dist_extra[i]);
    return b;
}

static void write_tokens(BitOut *o, const Token *t, int nt, const Codes *c) {
    for (int i = 0; i < nt; i++) {
        if (!t[i].dist) {
            put_bits(o, c->lit_code[t[i].lit], c->lit_len[t[i].lit]);
            continue;
        }
        int lc = len_code(t[i].lit), dc = dist_code(t[i].dist);
        put_bits(o, c->lit_code[257 + lc], c->lit_len[257 + lc]);
        put_bits(o, (uint32_t)(t[i].lit - zlib_len_base[lc]), zlib_len_extra[lc]);
        put_bits(o, c->dist_code[dc], c->dist_len[dc]);
        put_bits(o, (uint32_t)(t[i].dist - zlib_dist_base[dc]), zlib_dist_extra[dc]);
    }
    put_bits(o, c->lit_code[256], c->lit_len[256]);
}

/* Write one block holding tokens t[0..nt) which encode raw[0..rawlen). */
static void write_block(BitOut *o, const Token *t, int nt, const unsigned char *raw, size_t rawlen, int final) {
    uint32_t lf[288] = {0}, df[30] = {0}, cf[19] = {0};
    for (int i = 0; i < nt; i++) {
        if (!t[i].dist) lf[t[i].lit]++;
        else { lf[257 + len_code(t[i].lit)]++; df[dist_code(t[i].dist)]++; }
    }
    lf[256] = 1;
    Codes dyn, fix;
    /* dynamic: lengths, then the run-length coded header */
    huff_lengths(lf, 286, 15, dyn.lit_len);
    dyn.lit_len[286] = dyn.lit_len[287] = 0;
    huff_lengths(df, 30, 15, dyn.dist_len);
    int hlit = 286, hdist = 30;
    while (hlit > 257 && !dyn.lit_len[hlit - 1]) hlit--;
    while (hdist > 1 && !dyn.dist_len[hdist - 1]) hdist--;
    uint8_t all[286 + 30], sym[286 + 30], extra[286 + 30], cl_len[19];
    uint16_t cl_code[19];
    memcpy(all, dyn.lit_len, (size_t)hlit);
    memcpy(all + hlit, dyn.dist_len, (size_t)hdist);
    int ns = rle_lengths(all, hlit + hdist, sym, extra);
    for (int i = 0; i < ns; i++) cf[sym[i]]++;
    huff_lengths(cf, 19, 7, cl_len);
    huff_codes(cl_len, 19, cl_code);
    int hclen = 19;
    while (hclen > 4 && !cl_len[zlib_cl_order[hclen - 1]]) hclen--;
    uint64_t dyn_bits = 3 + 14 + 3 * (uint64_t)hclen + data_bits(lf, df, dyn.lit_len, dyn.dist_len);
    for (int i = 0; i < ns; i++) dyn_bits += cl_len[sym[i]] + (sym[i] == 16 ? 2 : sym[i] == 17 ? 3 : sym[i] == 18 ? 7 : 0);
    /* fixed */
    for (int i = 0; i < 288; i++) fix.lit_len[i] = (uint8_t)(i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8);
    for (int i = 0; i < 30; i++) fix.dist_len[i] = 5;
    uint64_t fix_bits = 3 + data_bits(lf, df, fix.lit_len, fix.dist_len);
    /* stored: 3 header bits, up to 7 to align, 32 for LEN/NLEN per 65535-byte piece */
    uint64_t pieces = rawlen ? (rawlen + 65534) / 65535 : 1;
    uint64_t stored_bits = pieces * (3 + 7 + 32) + 8 * (uint64_t)rawlen;

    if (stored_bits <= dyn_bits && stored_bits <= fix_bits) {
        size_t p = 0;
        do {
            size_t k = rawlen - p > 65535 ? 65535 : rawlen - p;
            put_bits(o, (final && p + k == rawlen) ? 1 : 0, 1);
            put_bits(o, 0, 2);
            align_byte(o);
            put_bits(o, (uint32_t)k, 16);
            put_bits(o, (uint32_t)k ^ 0xffff, 16);
            for (size_t i = 0; i < k; i++) out_byte(o, raw[p + i]);
            p += k;
        } while (p < rawlen);
    } else if (fix_bits <= dyn_bits) {
        huff_codes(fix.lit_len, 288, fix.lit_code);
        huff_codes(fix.dist_len, 30, fix.dist_code);
        put_bits(o, (uint32_t)final, 1);
        put_bits(o, 1, 2);
        write_tokens(o, t, nt, &fix);
    } else {
        huff_codes(dyn.lit_len, 286, dyn.lit_code);
        huff_codes(dyn.dist_len, 30, dyn.dist_code);
        put_bits(o, (uint32_t)final, 1);
        put_bits(o, 2, 2);
        put_bits(o, (uint32_t)(hlit - 257), 5);
        put_bits(o, (uint32_t)(hdist - 1), 5);
        put_bits(o, (uint32_t)(hclen - 4), 4);
        for (int i = 0; i < hclen; i++) put_bits(o, cl_len[zlib_cl_order[i]], 3);
        for (int i = 0; i < ns; i++) {
            put_bits(o, cl_code[sym[i]], cl_len[sym[i]]);
            if (sym[i] >= 16) put_bits(o, extra[i], sym[i] == 16 ? 2 : sym[i] == 17 ? 3 : 7);
        }
        write_tokens(o, t, nt, &dyn);
    }
}

/* ---- LZ77 --------------------------------------------------------------------- */

#define WSIZE 32768
#define HASH_BITS 15
#define MIN_MATCH 3
#define MAX_MATCH 258

typedef struct {
    const unsigned char *in;
    size_t n;
    size_t *head;   /* [1 << HASH_BITS] last position + 1 with that hash, 0: none */
    size_t *prev;   /* [WSIZE] position + 1 of the previous one with the same hash */
    int chain;      /* candidates to try */
    int nice;       /* stop searching at a match this long */
} Lz;

static unsigned hash3(const unsigned char *p) {
    return ((unsigned)p[0] << 10 ^ (unsigned)p[1] << 5 ^ p[2]) & ((1u << HASH_BITS) - 1);
}

static void lz_insert(Lz *z, size_t pos) {
    if (pos + MIN_MATCH > z->n) return;
    unsigned h = hash3(z->in + pos);
    z->prev[pos & (WSIZE - 1)] = z->head[h];
    z->head[h] = pos + 1;
}

/* Longest earlier match for position pos (positions < pos inserted). */
static int lz_find(const Lz *z, size_t pos, int *dist) {
    int best = MIN_MATCH - 1;
    *dist = 0;
    if (pos + MIN_MATCH > z->n) return 0;
    size_t maxlen = z->n - pos < MAX_MATCH ? z->n - pos : MAX_MATCH;
    const unsigned char *p = z->in + pos;
    size_t c1 = z->head[hash3(p)], prevpos = pos;
    int chain = z->chain;
    while (c1 && chain-- > 0) {
        size_t cand = c1 - 1;
        /* chains only go back; a slot overwritten by a newer position ends the walk */
        if (cand >= prevpos || pos - cand > WSIZE) break;
        const unsigned char *q = z->in + cand;
        if (q[best] == p[best] && q[0] == p[0] && q[1] == p[1]) {
            size_t l = 2;
            while (l < maxlen && q[l] == p[l]) l++;
            if ((int)l > best) {
                best = (int)l;
                *dist = (int)(pos - cand);
                if (best >= z->nice || l == maxlen) break;
            }
        }
        prevpos = cand;
        c1 = z->prev[cand & (WSIZE - 1)];
    }
    if (best == MIN_MATCH && *dist > 4096) best = 0; /* a far 3-byte match costs more than literals */
    return best >= MIN_MATCH ? best : 0;
}

static void deflate_raw(BitOut *o, const unsigned char *in, size_t n, int level) {
    static const int chains[10] = {0, 4, 8, 16, 32, 64, 128, 256, 1024, 4096};
    static const int nices[10] = {0, 8, 16, 32, 64, 128, 128, 258, 258, 258};
    if (level < 0) level = 6;
    if (level > 9) level = 9;
    Token *tok = xmalloc(BLOCK_TOKENS * sizeof *tok);
    Lz z;
    z.in = in;
    z.n = n;
    z.head = xcalloc((size_t)1 << HASH_BITS, sizeof(size_t));
    z.prev = xcalloc(WSIZE, sizeof(size_t));
    z.chain = chains[level];
    z.nice = nices[level];
    int lazy = level >= 4;
    size_t pos = 0, block_start = 0;
    int nt = 0, have_next = 0, next_len = 0, next_dist = 0;
    if (n == 0) write_block(o, tok, 0, in, 0, 1);
    while (pos < n) {
        int len = 0, dist = 0;
        if (level > 0) {
            if (have_next) { len = next_len; dist = next_dist; have_next = 0; }
            else len = lz_find(&z, pos, &dist);
        }
        if (level > 0) lz_insert(&z, pos);
        if (len && lazy && len < z.nice && pos + 1 < n) {
            next_len = lz_find(&z, pos + 1, &next_dist);
            have_next = 1;
            if (next_len > len) len = 0; /* emit a literal; the longer match comes next */
        }
        if (len) {
            have_next = 0;
            tok[nt].lit = (uint16_t)len;
            tok[nt].dist = (uint16_t)dist;
            for (size_t i = pos + 1; i < pos + (size_t)len; i++) lz_insert(&z, i);
            pos += (size_t)len;
        } else {
            tok[nt].lit = in[pos];
            tok[nt].dist = 0;
            pos++;
        }
        nt++;
        if (nt == BLOCK_TOKENS || pos == n) {
            write_block(o, tok, nt, in + block_start, pos - block_start, pos == n);
            block_start = pos;
            nt = 0;
        }
    }
    align_byte(o);
    free(tok);
    free(z.head);
    free(z.prev);
}

/* ---- wrappers ----------------------------------------------------------------- */

void zlib_compress(const unsigned char *in, size_t n, int level, unsigned char **out, size_t *out_len) {
    BitOut o;
    memset(&o, 0, sizeof o);
    int flevel = level <= 1 ? 0 : level <= 5 ? 1 : level == 6 ? 2 : 3;
    unsigned cmf = 0x78, flg = (unsigned)flevel << 6;
    flg += 31 - (cmf * 256 + flg) % 31;
    out_byte(&o, (unsigned char)cmf);
    out_byte(&o, (unsigned char)flg);
    deflate_raw(&o, in, n, level);
    uint32_t a = zlib_adler32(1, in, n);
    for (int s = 24; s >= 0; s -= 8) out_byte(&o, (unsigned char)(a >> s));
    *out = o.buf;
    *out_len = o.len;
}

void zlib_gzip(const unsigned char *in, size_t n, int level, unsigned char **out, size_t *out_len) {
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}; /* no flags, mtime 0, OS unknown */
    BitOut o;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < 10; i++) out_byte(&o, hdr[i]);
    deflate_raw(&o, in, n, level);
    uint32_t c = zlib_crc32(0, in, n), sz = (uint32_t)n;
    for (int s = 0; s < 32; s += 8) out_byte(&o, (unsigned char)(c >> s));
    for (int s = 0; s < 32; s += 8) out_byte(&o, (unsigned char)(sz >> s));
    *out = o.buf;
    *out_len = o.len;
}
