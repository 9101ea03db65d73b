/* inflate: DEFLATE decoder (RFC 1951) and the zlib (RFC 1950) / gzip (RFC 1952)
 * wrappers, plus the CRC-32 and Adler-32 checksums (see io/zlib.h).
 * How it works: bits are read LSB-first from a 64-bit buffer; a Huffman symbol is
 * found with a 2^10-entry lookup table for short codes and a canonical
 * code-by-code walk for the longer ones (puff.c style). Reading past the end of the
 * input feeds zero "pad" bits, and consuming one of them marks the stream truncated,
 * so no read ever goes out of bounds and truncation is reported as such.
 * Limits: the output never exceeds the caller's max_out (the buffer doubles up to
 * it, no further: a small zip bomb gets "exceeds the limit"); back-references are
 * checked against what this stream has produced; code lengths, repeat counts and
 * code sets are validated before use; gzip's ISIZE is compared with the output, not
 * used to allocate.
 * Not for: streaming input, preset dictionaries, speed tricks beyond the table. */
#include "io/zlib.h"
#include "core/err.h"
#include <stdlib.h>
#include <string.h>

/* ---- checksums ---------------------------------------------------------------- */

uint32_t zlib_crc32(uint32_t crc, const unsigned char *p, size_t n) {
    /* reflected polynomial 0xEDB88320, four bits at a time */
    static const uint32_t tab[16] = {0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
                                     0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
                                     0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ tab[crc & 15];
        crc = (crc >> 4) ^ tab[crc & 15];
    }
    return ~crc;
}

uint32_t zlib_adler32(uint32_t adler, const unsigned char *p, size_t n) {
    uint32_t a = adler & 0xffff, b = adler >> 16;
    while (n > 0) {
        size_t k = n < 5552 ? n : 5552; /* largest run before b can overflow 32 bits */
        n -= k;
        while (k--) { a += *p++; b += a; }
        a %= 65521;
        b %= 65521;
    }
    return (b << 16) | a;
}

/* ---- bit reader and output buffer --------------------------------------------- */

typedef struct {
    const unsigned char *in;
    size_t n, pos;         /* input and next byte to load */
    uint64_t bits;         /* loaded, not yet consumed bits (LSB first) */
    int nbits;             /* how many */
    int pad;               /* how many of the top `nbits` are zeros from past the end */
    int truncated;         /* a pad bit was consumed */
    unsigned char *out;    /* [cap] output (owned until handed to the caller) */
    size_t len, cap, max;  /* bytes written, allocated, allowed */
    size_t start;          /* where this stream's output starts (gzip members) */
} Inflater;

static void refill(Inflater *s, int need) {
    while (s->nbits < need) {
        if (s->pos < s->n) s->bits |= (uint64_t)s->in[s->pos++] << s->nbits;
        else s->pad += 8;
        s->nbits += 8;
    }
}

static void drop(Inflater *s, int k) {
    s->bits >>= k;
    s->nbits -= k;
    if (s->nbits < s->pad) s->truncated = 1;
}

static unsigned getbits(Inflater *s, int k) {
    if (k == 0) return 0;
    refill(s, k);
    unsigned v = (unsigned)(s->bits & ((1u << k) - 1));
    drop(s, k);
    return v;
}

static int reserve(Inflater *s, size_t k) {
    if (k > s->max - s->len) return err_set("inflated data exceeds the limit of %zu bytes", s->max);
    if (s->len + k > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + k) cap = cap > s->max / 2 ? s->max : cap * 2;
        s->out = xrealloc(s->out, cap);
        s->cap = cap;
    }
    return 0;
}

/* ---- Huffman decoding --------------------------------------------------------- */

#define FAST_BITS 10
#define MAXBITS 15

typedef struct {
    uint16_t fast[1 << FAST_BITS]; /* next FAST_BITS input bits -> (length << 9) | symbol; 0: slow path */
    uint16_t count[MAXBITS + 1];   /* number of codes of each length */
    uint16_t sym[288];             /* symbols in canonical order (by length, then value) */
} Huff;

/* Build the canonical code for lens[0..n). Over-subscribed codes are refused;
 * incomplete ones only in the single-code-of-length-1 case zlib also allows
 * (and never for the code-length code). An empty code is allowed: decoding from it
 * fails. Returns 0 or -1 (err set). */
static int huff_build(Huff *h, const unsigned char *lens, int n, int is_codelen_code, const char *what) {
    int offs[MAXBITS + 2];
    memset(h, 0, sizeof *h);
    for (int i = 0; i < n; i++) h->count[lens[i]]++;
    int left = 1, ncodes = n - h->count[0];
    for (int len = 1; len <= MAXBITS; len++) {
        left = 2 * left - h->count[len];
        if (left < 0) return err_set("corrupt deflate stream: over-subscribed %s code", what);
    }
    if (left > 0 && ncodes > 0 && (is_codelen_code || ncodes != 1 || h->count[1] != 1))
        return err_set("corrupt deflate stream: incomplete %s code", what);
    offs[1] = 0;
    for (int len = 1; len <= MAXBITS; len++) offs[len + 1] = offs[len] + h->count[len];
    for (int i = 0; i < n; i++)
        if (lens[i]) h->sym[offs[lens[i]]++] = (uint16_t)i;
    /* fast table: codes are sent MSB-first, but we peek LSB-first, so reverse them */
    unsigned code = 0;
    int k = 0;
    for (int len = 1; len <= MAXBITS; len++) {
        for (int j = 0; j < h->count[len]; j++, k++, code++) {
            if (len > FAST_BITS) continue;
            unsigned r = 0;
            for (int b = 0; b < len; b++) r |= ((code >> b) & 1u) << (len - 1 - b);
            for (unsigned f = r; f < (1u << FAST_BITS); f += 1u << len)
                h->fast[f] = (uint16_t)((len << 9) | h->sym[k]);
        }
        code <<= 1;
    }
    return 0;
}

/* Next symbol, or -1 (err set). */
static int decode(Inflater *s, const Huff *h) {
    refill(s, MAXBITS);
    unsigned e = h->fast[s->bits & ((1u << FAST_BITS) - 1)];
    if (e) {
        drop(s, (int)(e >> 9));
        return (int)(e & 511);
    }
    int code = 0, first = 0, index = 0; /* canonical walk, one bit at a time */
    for (int len = 1; len <= MAXBITS; len++) {
        code |= (int)((s->bits >> (len - 1)) & 1);
        int count = h->count[len];
        if (code - first < count) {
            drop(s, len);
            return h->sym[index + code - first];
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    if (s->nbits - s->pad < MAXBITS) return err_set("truncated deflate stream");
    return err_set("corrupt deflate stream: invalid Huffman code");
}

/* ---- blocks ------------------------------------------------------------------- */

/* RFC 1951 3.2.5 tables, shared with deflate.c (declared in io/zlib.h). */
const uint16_t zlib_len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
const uint8_t zlib_len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
const uint16_t zlib_dist_base[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                       193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
const uint8_t zlib_dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
const uint8_t zlib_cl_order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

static int truncated(void) { return err_set("truncated deflate stream"); }

static int stored_block(Inflater *s) {
    getbits(s, s->nbits % 8); /* to a byte boundary */
    unsigned len = getbits(s, 16), nlen = getbits(s, 16);
    if (s->truncated) return truncated();
    if ((len ^ 0xffff) != nlen) return err_set("corrupt deflate stream: stored block length check fails");
    /* give the whole bytes still in the bit buffer back to the input */
    s->pos -= (size_t)(s->nbits - s->pad) / 8;
    s->bits = 0;
    s->nbits = s->pad = 0;
    if (s->n - s->pos < len) return truncated();
    if (reserve(s, len)) return -1;
    memcpy(s->out + s->len, s->in + s->pos, len);
    s->len += len;
    s->pos += len;
    return 0;
}

static int codes(Inflater *s, const Huff *lit, const Huff *dist) {
    for (;;) {
        int sym = decode(s, lit);
        if (sym < 0) return -1;
        if (sym < 256) {
            if (reserve(s, 1)) return -1;
            s->out[s->len++] = (unsigned char)sym;
        } else if (sym == 256) {
            return s->truncated ? truncated() : 0;
        } else {
            sym -= 257;
            if (sym >= 29) return err_set("corrupt deflate stream: invalid length code %d", sym + 257);
            size_t len = zlib_len_base[sym] + getbits(s, zlib_len_extra[sym]);
            int ds = decode(s, dist);
            if (ds < 0) return -1;
            if (ds >= 30) return err_set("corrupt deflate stream: invalid distance code %d", ds);
            size_t d = zlib_dist_base[ds] + getbits(s, zlib_dist_extra[ds]);
            if (s->truncated) return truncated();
            if (d > s->len - s->start) return err_set("corrupt deflate stream: distance %zu too far back", d);
            if (reserve(s, len)) return -1;
            unsigned char *o = s->out + s->len;
            for (size_t i = 0; i < len; i++) o[i] = o[(ptrdiff_t)i - (ptrdiff_t)d]; /* may overlap */
            s->len += len;
        }
        if (s->truncated) return truncated();
    }
}

static int fixed_block(Inflater *s) {
    unsigned char lens[288 + 32]; /* the fixed distance code has 32 codes; 30, 31 are invalid */
    Huff *lit = xmalloc(sizeof *lit), *dist = xmalloc(sizeof *dist);
    int i = 0;
    for (; i < 144; i++) lens[i] = 8;
    for (; i < 256; i++) lens[i] = 9;
    for (; i < 280; i++) lens[i] = 7;
    for (; i < 288; i++) lens[i] = 8;
    for (; i < 288 + 32; i++) lens[i] = 5;
    int r = huff_build(lit, lens, 288, 0, "literal/length");
    if (!r) r = huff_build(dist, lens + 288, 32, 0, "distance");
    if (!r) r = codes(s, lit, dist);
    free(lit);
    free(dist);
    return r;
}

static int dynamic_block(Inflater *s) {
    unsigned char lens[286 + 30];
    int nlen = (int)getbits(s, 5) + 257, ndist = (int)getbits(s, 5) + 1, ncode = (int)getbits(s, 4) + 4;
    if (s->truncated) return truncated();
    if (nlen > 286 || ndist > 30) return err_set("corrupt deflate stream: too many length or distance codes");
    Huff *lit = xmalloc(sizeof *lit), *dist = xmalloc(sizeof *dist);
    int r = 0;
    memset(lens, 0, 19);
    for (int i = 0; i < ncode; i++) lens[zlib_cl_order[i]] = (unsigned char)getbits(s, 3);
    if (s->truncated) { r = truncated(); goto done; }
    if ((r = huff_build(lit, lens, 19, 1, "code length")) != 0) goto done;
    for (int i = 0; i < nlen + ndist;) {
        int sym = decode(s, lit);
        if (sym < 0) { r = -1; goto done; }
        if (sym < 16) { lens[i++] = (unsigned char)sym; continue; }
        int rep, val = 0;
        if (sym == 16) {
            if (i == 0) { r = err_set("corrupt deflate stream: repeat with no previous length"); goto done; }
            val = lens[i - 1];
            rep = 3 + (int)getbits(s, 2);
        } else if (sym == 17) {
            rep = 3 + (int)getbits(s, 3);
        } else {
            rep = 11 + (int)getbits(s, 7);
        }
        if (i + rep > nlen + ndist) { r = err_set("corrupt deflate stream: too many code lengths"); goto done; }
        while (rep--) lens[i++] = (unsigned char)val;
    }
    if (s->truncated) { r = truncated(); goto done; }
    if (lens[256] == 0) { r = err_set("corrupt deflate stream: no end-of-block code"); goto done; }
    if ((r = huff_build(lit, lens, nlen, 0, "literal/length")) != 0) goto done;
    if ((r = huff_build(dist, lens + nlen, ndist, 0, "distance")) != 0) goto done;
    r = codes(s, lit, dist);
done:
    free(lit);
    free(dist);
    return r;
}

/* Decode one DEFLATE stream from in[0..n) appending to s->out. *used = bytes consumed. */
static int inflate_stream(Inflater *s, const unsigned char *in, size_t n, size_t *used) {
    s->in = in;
    s->n = n;
    s->pos = 0;
    s->bits = 0;
    s->nbits = s->pad = s->truncated = 0;
    s->start = s->len;
    int final;
    do {
        final = (int)getbits(s, 1);
        int type = (int)getbits(s, 2);
        if (s->truncated) return truncated();
        int r;
        if (type == 0) r = stored_block(s);
        else if (type == 1) r = fixed_block(s);
        else if (type == 2) r = dynamic_block(s);
        else r = err_set("corrupt deflate stream: invalid block type 3");
        if (r) return -1;
    } while (!final);
    *used = s->pos - (size_t)(s->nbits - s->pad) / 8;
    return 0;
}

static void inflater_init(Inflater *s, size_t n, size_t max_out) {
    memset(s, 0, sizeof *s);
    s->max = max_out;
    s->cap = n < max_out / 4 ? 4 * n + 64 : max_out; /* a guess; grows by doubling */
    if (s->cap > max_out) s->cap = max_out;
    s->out = xmalloc(s->cap);
}

static int inflater_finish(Inflater *s, int r, unsigned char **out, size_t *out_len) {
    if (r) {
        free(s->out);
        return -1;
    }
    *out = s->out;
    *out_len = s->len;
    return 0;
}

int zlib_inflate_raw(const unsigned char *in, size_t n, size_t max_out, unsigned char **out,
                     size_t *out_len, size_t *used) {
    Inflater s;
    size_t u = 0;
    inflater_init(&s, n, max_out);
    int r = inflate_stream(&s, in, n, &u);
    if (!r && used) *used = u;
    return inflater_finish(&s, r, out, out_len);
}

/* ---- zlib and gzip wrappers --------------------------------------------------- */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int zlib_decompress(const unsigned char *in, size_t n, size_t max_out, unsigned char **out,
                    size_t *out_len) {
    if (n < 2) return err_set("truncated zlib stream (no header)");
    if ((in[0] & 15) != 8) return err_set("not a zlib stream (compression method %d, want 8)", in[0] & 15);
    if ((in[0] >> 4) > 7) return err_set("corrupt zlib header (window size)");
    if (((unsigned)in[0] << 8 | in[1]) % 31) return err_set("corrupt zlib header (check bits)");
    if (in[1] & 0x20) return err_set("zlib stream needs a preset dictionary (not supported)");
    Inflater s;
    size_t used = 0;
    inflater_init(&s, n, max_out);
    int r = inflate_stream(&s, in + 2, n - 2, &used);
    if (!r && n - 2 - used < 4) r = err_set("truncated zlib stream (no Adler-32)");
    if (!r) {
        uint32_t want = be32(in + 2 + used), got = zlib_adler32(1, s.out, s.len);
        if (want != got) r = err_set("corrupt zlib stream: Adler-32 mismatch (stored %08x, computed %08x)", want, got);
    }
    return inflater_finish(&s, r, out, out_len);
}

/* Parse a gzip member header at in[0..n); *hlen = its length. */
static int gzip_header(const unsigned char *in, size_t n, int member, size_t *hlen) {
    if (n < 10) return err_set("truncated gzip header (member %d)", member);
    if (in[0] != 0x1f || in[1] != 0x8b) return err_set("not gzip data (member %d: bad magic)", member);
    if (in[2] != 8) return err_set("gzip member %d: compression method %d (want 8)", member, in[2]);
    int flg = in[3];
    if (flg & 0xe0) return err_set("gzip member %d: reserved flag bits set", member);
    size_t p = 10;
    if (flg & 4) { /* FEXTRA */
        if (n - p < 2) return err_set("truncated gzip header (member %d, FEXTRA)", member);
        size_t xlen = in[p] | (size_t)in[p + 1] << 8;
        p += 2;
        if (n - p < xlen) return err_set("truncated gzip header (member %d, FEXTRA)", member);
        p += xlen;
    }
    for (int f = 8; f <= 16; f += 8) { /* FNAME, then FCOMMENT: zero-terminated */
        if (!(flg & f)) continue;
        const unsigned char *z = memchr(in + p, 0, n - p);
        if (!z) return err_set("truncated gzip header (member %d, %s)", member, f == 8 ? "FNAME" : "FCOMMENT");
        p = (size_t)(z - in) + 1;
    }
    if (flg & 2) { /* FHCRC: low 16 bits of the CRC-32 of the header so far */
        if (n - p < 2) return err_set("truncated gzip header (member %d, FHCRC)", member);
        unsigned want = in[p] | (unsigned)in[p + 1] << 8;
        if ((zlib_crc32(0, in, p) & 0xffff) != want) return err_set("gzip member %d: header CRC mismatch", member);
        p += 2;
    }
    *hlen = p;
    return 0;
}

int zlib_gunzip(const unsigned char *in, size_t n, size_t max_out, unsigned char **out, size_t *out_len) {
    Inflater s;
    inflater_init(&s, n, max_out);
    size_t p = 0;
    int r = 0;
    for (int member = 1;; member++) {
        size_t hlen = 0, used = 0;
        if ((r = gzip_header(in + p, n - p, member, &hlen)) != 0) break;
        p += hlen;
        size_t start = s.len;
        if ((r = inflate_stream(&s, in + p, n - p, &used)) != 0) {
            err_prefix("gzip");
            break;
        }
        p += used;
        if (n - p < 8) { r = err_set("truncated gzip data (member %d has no CRC-32/ISIZE trailer)", member); break; }
        uint32_t crc = zlib_crc32(0, s.out + start, s.len - start);
        if (crc != le32(in + p)) {
            r = err_set("corrupt gzip data: CRC-32 mismatch in member %d (stored %08x, computed %08x)", member,
                        le32(in + p), crc);
            break;
        }
        if ((uint32_t)(s.len - start) != le32(in + p + 4)) {
            r = err_set("corrupt gzip data: length mismatch in member %d (ISIZE %u, got %zu bytes)", member,
                        le32(in + p + 4), s.len - start);
            break;
        }
        p += 8;
        size_t z = p;
        while (z < n && in[z] == 0) z++;
        if (z == n) break;                /* end, or zero padding */
        if (z > p || in[p] != 0x1f) {     /* another member must follow directly */
            r = err_set("trailing garbage after gzip member %d", member);
            break;
        }
    }
    return inflater_finish(&s, r, out, out_len);
}
