/* test_io_images: inflate/deflate, PNG, PNM, IDX, bilinear resize and datasets.
 * Fixtures (tests/fixtures/images, made by tools/fixtures/gen_fixtures_images.py) come from
 * Python's zlib, /usr/bin/gzip, PIL, torch and torchvision; our compressor is
 * round-tripped here (tools/checks/check_deflate.py checks once that Python reads it); and
 * corrupt inputs must give -1 with a one-line message, never a crash.
 * Run alone with ./build/run_tests img_ (and under `make asan T=img_`). */
#include "test.h"
#include "core/err.h"
#include "core/tensor.h"
#include "io/dataset.h"
#include "io/file.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/zlib.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- helpers */

/* Warnings (err_warn) collected instead of printed, one per line. */
static char warned[8192];
static int nwarned;
static void grab(const char *m, void *ud) {
    (void)ud;
    nwarned++;
    strncat(warned, m, sizeof warned - strlen(warned) - 2);
    strcat(warned, "\n");
}
static void grab_warnings(void) {
    warned[0] = 0;
    nwarned = 0;
    err_set_warn_hook(grab, NULL);
}

static const char *fx(const char *rel) { /* fixture path, 4 rotating buffers */
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s", fixture(rel));
    return buf[k];
}

/* A refusal: -1, one non-empty line containing `want` (and `name` when given). */
static int refused(int rc, const char *name, const char *want, const char *file, int line) {
    const char *m = err_get();
    int ok = rc == -1 && m[0] && !strchr(m, '\n') && (!want || strstr(m, want)) && (!name || strstr(m, name));
    if (!ok) test_fail(file, line, "want -1 and a message with \"%s\", got %d: \"%s\"", want ? want : "", rc, m);
    else printf("    refused: %s\n", m);
    return ok;
}
#define REFUSED(rc, name, want) refused((rc), (name), (want), __FILE__, __LINE__)

static StFile expect_file;
static int expect_loaded;

static const StTensor *want(const char *name) {
    if (!expect_loaded) {
        if (st_read(fx("images/expect.safetensors"), &expect_file)) {
            printf("    %s\n", err_get());
            return NULL;
        }
        expect_loaded = 1;
    }
    const StTensor *t = st_find(&expect_file, name);
    if (!t) printf("    fixture tensor %s missing\n", name);
    return t;
}

static void want_free(void) {
    if (expect_loaded) st_free(&expect_file);
    expect_loaded = 0;
}

static void parse3(const char *s, float *v) {
    char *end;
    for (int i = 0; i < 3; i++) {
        v[i] = s ? strtof(s, &end) : 0.0f;
        if (s) s = *end == ',' ? end + 1 : end;
    }
}

static void mean_std(float *mean, float *std) {
    want("idx_x");
    parse3(meta_get(&expect_file.meta, "mean"), mean);
    parse3(meta_get(&expect_file.meta, "std"), std);
}

static void fill_inputs(unsigned char *buf, size_t n, int kind, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        switch (kind) {
        case 0: buf[i] = (unsigned char)(s >> 24); break;                          /* random */
        case 1: buf[i] = 0; break;                                                 /* zeros */
        case 2: buf[i] = "the quick brown fox jumps over the lazy dog. "[(i * 7 + (i / 45)) % 45]; break;
        default: buf[i] = (unsigned char)((s >> 29) == 0 ? s >> 20 : (s >> 30)); /* skewed */
        }
    }
}

/* ---------------------------------------------------------------- zlib */

TEST(img_checksums_known_values) {
    CHECK(zlib_crc32(0, (const unsigned char *)"123456789", 9) == 0xCBF43926u);
    CHECK(zlib_adler32(1, (const unsigned char *)"Wikipedia", 9) == 0x11E60398u);
    CHECK(zlib_crc32(0, NULL, 0) == 0 && zlib_adler32(1, NULL, 0) == 1);
    /* running = all at once */
    unsigned char b[10000];
    fill_inputs(b, sizeof b, 0, 3);
    CHECK(zlib_crc32(zlib_crc32(0, b, 3333), b + 3333, sizeof b - 3333) == zlib_crc32(0, b, sizeof b));
    CHECK(zlib_adler32(zlib_adler32(1, b, 6000), b + 6000, sizeof b - 6000) == zlib_adler32(1, b, sizeof b));
}

TEST(img_inflate_python_zlib_fixtures) {
    size_t n, zn, on;
    unsigned char *blob = test_slurp(fx("images/z/blob.bin"), &n), *z, *o;
    REQUIRE(blob);
    const char *names[] = {"blob.zlib0", "blob.zlib1", "blob.zlib9", "blob.zlib_fixed", "blob.zlib_huff", "blob.zlib_rle"};
    for (int i = 0; i < 6; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "images/z/%s", names[i]);
        z = test_slurp(fx(rel), &zn);
        REQUIRE(z);
        int rc = zlib_decompress(z, zn, n, &o, &on);
        CHECKF(rc == 0, "%s: %s", names[i], err_get());
        if (!rc) {
            CHECKF(on == n && !memcmp(o, blob, n), "%s: wrong output", names[i]);
            free(o);
        }
        /* one byte less room than needed must be refused */
        CHECK(zlib_decompress(z, zn, n - 1, &o, &on) == -1 && strstr(err_get(), "limit"));
        free(z);
    }
    free(blob);
}

TEST(img_gunzip_real_gzip_fixtures) {
    size_t n, zn, on;
    unsigned char *blob = test_slurp(fx("images/z/blob.bin"), &n), *z, *o;
    REQUIRE(blob);
    const char *names[] = {"blob.gz", "blob_hdr.gz", "blob_multi.gz"};
    for (int i = 0; i < 3; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "images/z/%s", names[i]);
        z = test_slurp(fx(rel), &zn);
        REQUIRE(z);
        int rc = zlib_gunzip(z, zn, (size_t)1 << 20, &o, &on);
        CHECKF(rc == 0, "%s: %s", names[i], err_get());
        if (!rc) {
            CHECKF(on == n && !memcmp(o, blob, n), "%s: wrong output", names[i]);
            free(o);
        }
        if (i == 2) REFUSED(zlib_gunzip(z, zn, n - 1, &o, &on), NULL, "limit"); /* the total is bounded */
        free(z);
    }
    free(blob);
}

TEST(img_deflate_round_trip_and_ratio) {
    size_t sizes[] = {0, 1, 2, 3, 100, 4096, 70000, 300000};
    int levels[] = {0, 1, 4, 6, 9};
    unsigned char *buf = xmalloc(300000);
    for (int kind = 0; kind < 4; kind++) {
        for (int si = 0; si < 8; si++) {
            size_t n = sizes[si];
            fill_inputs(buf, n, kind, (uint32_t)si);
            for (int li = 0; li < 5; li++) {
                unsigned char *z, *o;
                size_t zn, on;
                zlib_compress(buf, n, levels[li], &z, &zn);
                int rc = zlib_decompress(z, zn, n, &o, &on);
                CHECKF(rc == 0 && on == n && (!n || !memcmp(o, buf, n)), "kind %d n %zu level %d: %s", kind, n,
                       levels[li], rc ? err_get() : "wrong bytes");
                if (!rc) free(o);
                if (n == 300000 && levels[li] == 6)
                    printf("    kind %d (random/zeros/text/skewed) 300000 -> %zu bytes at level 6 (%.4f)\n", kind, zn,
                           (double)zn / n);
                if (n == 300000 && levels[li] == 6) {
                    if (kind == 0) CHECK(zn < n + n / 1000 + 64);  /* stored blocks: small overhead */
                    if (kind == 1) CHECK(zn < 1000);               /* long matches */
                    if (kind == 2) CHECK(zn < 2000);               /* periodic text */
                    if (kind == 3) CHECK(zn < n * 55 / 100);       /* entropy ~41%; zlib gets the same */
                }
                free(z);
                zlib_gzip(buf, n, levels[li], &z, &zn);
                rc = zlib_gunzip(z, zn, n, &o, &on);
                CHECKF(rc == 0 && on == n && (!n || !memcmp(o, buf, n)), "gzip kind %d n %zu level %d: %s", kind, n,
                       levels[li], rc ? err_get() : "wrong bytes");
                if (!rc) free(o);
                free(z);
            }
        }
    }
    free(buf);
}

TEST(img_deflate_compresses_like_zlib) {
    /* the Fashion-MNIST images bundled in data/: ours at level 6 vs Python's zlib
     * level 6 on the same bytes (measured by tools/checks/check_deflate.py: within 1%) */
    size_t n, rn;
    unsigned char *gz = test_slurp("data/fashion-pc-images-idx3-ubyte.gz", &n), *raw, *z;
    if (!gz) { printf("    data/ missing: skipped\n"); return; }
    REQUIRE(zlib_gunzip(gz, n, (size_t)1 << 24, &raw, &rn) == 0);
    size_t zn;
    zlib_compress(raw, rn, 6, &z, &zn);
    printf("    %zu bytes -> %zu (ratio %.3f; Python's gzip -9 file: %zu)\n", rn, zn, (double)zn / rn, n);
    CHECK(zn < n + n / 50);
    free(gz);
    free(raw);
    free(z);
}

/* a tiny MSB-first Huffman / LSB-first bits writer to craft streams */
typedef struct { unsigned char b[64]; int bit; } Bits;
static void bput(Bits *s, unsigned v, int n) {
    for (int i = 0; i < n; i++, s->bit++)
        if ((v >> i) & 1) s->b[s->bit / 8] |= (unsigned char)(1 << (s->bit % 8));
}
static void bput_code(Bits *s, unsigned code, int n) { /* Huffman codes go MSB first */
    for (int i = n - 1; i >= 0; i--) bput(s, (code >> i) & 1, 1);
}

TEST(img_inflate_corrupt_streams_refused) {
    unsigned char *o;
    size_t on, used;
    Bits s;
    memset(&s, 0, sizeof s);
    bput(&s, 1, 1); bput(&s, 3, 2);
    REFUSED(zlib_inflate_raw(s.b, 1, 100, &o, &on, &used), NULL, "block type");
    unsigned char stored[] = {0x01, 5, 0, 0xfa, 0xfe, 'h', 'e', 'l', 'l', 'o'};
    REFUSED(zlib_inflate_raw(stored, sizeof stored, 100, &o, &on, &used), NULL, "length check");
    stored[4] = 0xff;
    REQUIRE(zlib_inflate_raw(stored, sizeof stored, 100, &o, &on, &used) == 0);
    CHECK(on == 5 && !memcmp(o, "hello", 5) && used == sizeof stored);
    free(o);
    REFUSED(zlib_inflate_raw(stored, sizeof stored - 1, 100, &o, &on, &used), NULL, "truncated");
    /* fixed block: a match (length code 257, distance code 0) with no output yet */
    memset(&s, 0, sizeof s);
    bput(&s, 1, 1); bput(&s, 1, 2); bput_code(&s, 1, 7); bput_code(&s, 0, 5); bput_code(&s, 0, 7);
    REFUSED(zlib_inflate_raw(s.b, 3, 100, &o, &on, &used), NULL, "too far back");
    /* fixed block: literal 'a' then distance code 30 (invalid) */
    memset(&s, 0, sizeof s);
    bput(&s, 1, 1); bput(&s, 1, 2); bput_code(&s, 0x30 + 'a', 8); bput_code(&s, 1, 7); bput_code(&s, 30, 5);
    REFUSED(zlib_inflate_raw(s.b, 4, 100, &o, &on, &used), NULL, "distance code");
    /* fixed block: literal/length code 286 (invalid): 11000110 */
    memset(&s, 0, sizeof s);
    bput(&s, 1, 1); bput(&s, 1, 2); bput_code(&s, 0xc6, 8);
    REFUSED(zlib_inflate_raw(s.b, 2, 100, &o, &on, &used), NULL, "length code");
    /* dynamic: a code-length code that is over-subscribed (three codes of length 1) */
    memset(&s, 0, sizeof s);
    bput(&s, 1, 1); bput(&s, 2, 2); bput(&s, 0, 5); bput(&s, 0, 5); bput(&s, 0, 4);
    bput(&s, 1, 3); bput(&s, 1, 3); bput(&s, 1, 3); bput(&s, 0, 3);
    REFUSED(zlib_inflate_raw(s.b, 5, 100, &o, &on, &used), NULL, "over-subscribed");
    /* dynamic: repeat code 16 first */
    memset(&s, 0, sizeof s);
    bput(&s, 1, 1); bput(&s, 2, 2); bput(&s, 0, 5); bput(&s, 0, 5); bput(&s, 0, 4);
    bput(&s, 1, 3); bput(&s, 0, 3); bput(&s, 0, 3); bput(&s, 1, 3); /* lengths: 16 -> 1, 0 -> 1 */
    bput_code(&s, 1, 1);                                              /* symbol 16 (code 1) */
    REFUSED(zlib_inflate_raw(s.b, 6, 100, &o, &on, &used), NULL, "repeat");
    /* zlib wrapper */
    unsigned char *z;
    size_t zn;
    const unsigned char msg[] = "some text some text some text";
    zlib_compress(msg, sizeof msg, 6, &z, &zn);
    unsigned char bad[128];
    memcpy(bad, z, zn);
    bad[1] ^= 1;
    REFUSED(zlib_decompress(bad, zn, 100, &o, &on), NULL, "check bits");
    memcpy(bad, z, zn);
    bad[0] = 0x79;
    REFUSED(zlib_decompress(bad, zn, 100, &o, &on), NULL, "compression method");
    memcpy(bad, z, zn);
    bad[1] = 0xbb; /* FDICT set, check bits right: 0x78bb % 31 == 0 */
    REFUSED(zlib_decompress(bad, zn, 100, &o, &on), NULL, "dictionary");
    memcpy(bad, z, zn);
    bad[zn - 1] ^= 0x40;
    REFUSED(zlib_decompress(bad, zn, 100, &o, &on), NULL, "Adler-32");
    REFUSED(zlib_decompress(z, zn - 2, 100, &o, &on), NULL, "truncated");
    /* every truncation and every single-bit flip: -1, or (never, in practice) the right bytes */
    int refusedn = 0, total = 0;
    for (size_t k = 0; k < zn; k++) {
        CHECKF(zlib_decompress(z, k, 100, &o, &on) == -1, "prefix %zu accepted", k);
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, z, zn);
            bad[k] ^= (unsigned char)(1 << bit);
            int rc = zlib_decompress(bad, zn, 100, &o, &on);
            total++;
            if (rc) { refusedn++; continue; }
            CHECKF(on == sizeof msg && !memcmp(o, msg, on), "flip %zu.%d: wrong output accepted", k, bit);
            free(o);
        }
    }
    printf("    %d of %d single-bit flips refused\n", refusedn, total);
    free(z);
}

TEST(img_gunzip_corrupt_refused) {
    size_t zn, on;
    unsigned char *z = test_slurp(fx("images/z/blob_hdr.gz"), &zn), *o;
    REQUIRE(z);
    unsigned char *bad = xmalloc(zn + 8);
    memcpy(bad, z, zn);
    bad[zn - 6] ^= 1; /* CRC-32 */
    REFUSED(zlib_gunzip(bad, zn, 1 << 20, &o, &on), NULL, "CRC-32 mismatch");
    memcpy(bad, z, zn);
    bad[zn - 1] ^= 1; /* ISIZE */
    REFUSED(zlib_gunzip(bad, zn, 1 << 20, &o, &on), NULL, "length mismatch");
    memcpy(bad, z, zn);
    bad[14] ^= 1; /* inside FEXTRA: the header CRC must catch it */
    REFUSED(zlib_gunzip(bad, zn, 1 << 20, &o, &on), NULL, "header CRC");
    memcpy(bad, z, zn);
    bad[3] |= 0x20;
    REFUSED(zlib_gunzip(bad, zn, 1 << 20, &o, &on), NULL, "reserved");
    memcpy(bad, z, zn);
    memcpy(bad + zn, "junk", 4);
    REFUSED(zlib_gunzip(bad, zn + 4, 1 << 20, &o, &on), NULL, "trailing garbage");
    memset(bad + zn, 0, 8); /* zero padding is fine */
    REQUIRE(zlib_gunzip(bad, zn + 8, 1 << 20, &o, &on) == 0);
    free(o);
    size_t cuts[] = {0, 1, 5, 10, 12, 20, 30, 40, 200, zn / 2, zn - 9, zn - 8, zn - 4, zn - 1};
    for (int i = 0; i < 14; i++) {
        int rc = zlib_gunzip(z, cuts[i], 1 << 20, &o, &on);
        CHECKF(rc == -1 && strstr(err_get(), "truncated"), "cut at %zu: rc %d, \"%s\"", cuts[i], rc, err_get());
    }
    REFUSED(zlib_gunzip((const unsigned char *)"PK\3\4xxxxxxxxxx", 14, 100, &o, &on), NULL, "not gzip");
    /* a 10 MB bomb against a 1 MB limit */
    unsigned char *zeros = xcalloc(10 << 20, 1), *g;
    size_t gn;
    zlib_gzip(zeros, 10 << 20, 6, &g, &gn);
    printf("    10 MiB of zeros -> %zu bytes of gzip\n", gn);
    REFUSED(zlib_gunzip(g, gn, 1 << 20, &o, &on), NULL, "limit");
    free(zeros);
    free(g);
    free(bad);
    free(z);
}

/* ---------------------------------------------------------------- PNG */

static const char *png_names[] = {"g1", "g2", "g4", "g8", "g16", "ga8", "ga16", "rgb8", "rgb16", "rgba8", "rgba16",
                                  "p1", "p2", "p4", "p8", "g8_i", "g1_i", "rgb8_i", "rgb16_i", "rgba8_i", "p2_i",
                                  "ga8_i", "rgb8_i1x1", "g8_i3x2", "rgb8_big", "pil_L", "pil_LA", "pil_RGB",
                                  "pil_RGBA", "pil_P", "pil_1"};

TEST(img_png_every_kind_vs_fixture) {
    int nin = 0;
    for (size_t i = 0; i < sizeof png_names / sizeof *png_names; i++) {
        char rel[128], key[64];
        snprintf(rel, sizeof rel, "images/png/%s.png", png_names[i]);
        Image im;
        int rc = image_load(fx(rel), &im);
        CHECKF(rc == 0, "%s", err_get());
        if (rc) continue;
        snprintf(key, sizeof key, "png_%s", png_names[i]);
        const StTensor *t = want(key);
        REQUIRE(t);
        CHECKF(t->dim[0] == im.h && t->dim[1] == im.w && t->dim[2] == im.c, "%s: %dx%dx%d, want %lldx%lldx%lld",
               png_names[i], im.h, im.w, im.c, (long long)t->dim[0], (long long)t->dim[1], (long long)t->dim[2]);
        if (t->numel == (size_t)im.h * im.w * im.c) {
            size_t bad = 0;
            for (size_t k = 0; k < t->numel; k++) bad += im.data[k] != (unsigned char)t->f32[k];
            CHECKF(bad == 0, "%s: %zu samples differ", png_names[i], bad);
        }
        snprintf(key, sizeof key, "in_%s", png_names[i]);
        if (st_find(&expect_file, key)) { /* convert('RGB') + ToTensor, as PIL does it */
            t = want(key);
            float *x = xmalloc(sizeof(float) * 3 * im.h * im.w);
            image_to_input(&im, im.h, im.w, NULL, NULL, x);
            CHECK_CLOSE(key, x, t->f32, t->numel, 0, 0);
            free(x);
            nin++;
        }
        image_free(&im);
    }
    CHECK(nin >= 29);
    want_free();
}

/* Rebuild a PNG's chunk CRC after editing chunk data at offset `chunk` (its length field). */
static void fix_crc(unsigned char *p, size_t chunk) {
    uint32_t len = (uint32_t)p[chunk] << 24 | p[chunk + 1] << 16 | p[chunk + 2] << 8 | p[chunk + 3];
    uint32_t c = zlib_crc32(0, p + chunk + 4, len + 4);
    unsigned char *q = p + chunk + 8 + len;
    q[0] = (unsigned char)(c >> 24); q[1] = (unsigned char)(c >> 16); q[2] = (unsigned char)(c >> 8); q[3] = (unsigned char)c;
}

static size_t find_chunk(const unsigned char *p, size_t n, const char *type) {
    for (size_t pos = 8; pos + 12 <= n;) {
        uint32_t len = (uint32_t)p[pos] << 24 | p[pos + 1] << 16 | p[pos + 2] << 8 | p[pos + 3];
        if (!memcmp(p + pos + 4, type, 4)) return pos;
        pos += 12 + len;
    }
    return 0;
}

TEST(img_png_corrupt_refused) {
    size_t n;
    unsigned char *png = test_slurp(fx("images/png/rgb8.png"), &n), *b = xmalloc(n + 64);
    REQUIRE(png);
    Image im;
    const char *nm = "x.png";
    size_t ihdr = 8, idat = find_chunk(png, n, "IDAT");
    REQUIRE(idat > 0);
    memcpy(b, png, n);
    b[idat + 10] ^= 0x10;
    REFUSED(png_decode(b, n, nm, &im), nm, "CRC mismatch in chunk IDAT");
    fix_crc(b, idat); /* now the zlib data itself is broken */
    REFUSED(png_decode(b, n, nm, &im), nm, "corrupt PNG image data");
    memcpy(b, png, n);
    b[0] = 0x88;
    REFUSED(png_decode(b, n, nm, &im), nm, "signature");
    REFUSED(image_decode(b, n, nm, &im), nm, "magic");
    memcpy(b, png, n);
    memset(b + ihdr + 8, 0, 4); fix_crc(b, ihdr); /* width 0 */
    REFUSED(png_decode(b, n, nm, &im), nm, "zero width");
    memcpy(b, png, n);
    b[ihdr + 8 + 1] = 0x01; fix_crc(b, ihdr); /* width 65536+: over the limit, refused before allocating */
    REFUSED(png_decode(b, n, nm, &im), nm, "limit");
    memcpy(b, png, n);
    b[ihdr + 8 + 2] = 0x20; b[ihdr + 8 + 6] = 0x20; fix_crc(b, ihdr); /* 8192 x 8192 > 2^26 pixels */
    REFUSED(png_decode(b, n, nm, &im), nm, "limit");
    memcpy(b, png, n);
    b[ihdr + 8 + 8] = 4; fix_crc(b, ihdr); /* RGB at 4 bits */
    REFUSED(png_decode(b, n, nm, &im), nm, "bit depth");
    memcpy(b, png, n);
    b[ihdr + 8 + 12] = 2; fix_crc(b, ihdr);
    REFUSED(png_decode(b, n, nm, &im), nm, "interlace");
    memcpy(b, png, n);
    memcpy(b + idat + 4, "IDAX", 4); fix_crc(b, idat); /* unknown critical chunk */
    REFUSED(png_decode(b, n, nm, &im), nm, "critical");
    memcpy(b, png, n);
    memcpy(b + idat + 4, "iDAT", 4); fix_crc(b, idat); /* now ancillary: skipped, data missing */
    REFUSED(png_decode(b, n, nm, &im), nm, NULL);
    size_t cuts[] = {0, 7, 8, 20, 33, idat + 5, idat + 30, n - 12, n - 1};
    for (int i = 0; i < 9; i++) {
        int rc = png_decode(png, cuts[i], nm, &im);
        CHECKF(rc == -1 && (strstr(err_get(), "truncated") || strstr(err_get(), "signature")), "cut %zu: %s",
               cuts[i], err_get());
    }
    /* a bad filter type and a palette index out of range: build the images ourselves */
    unsigned char raw[2 * 3] = {7, 1, 2, 0, 3, 4}; /* 2 rows of 2 gray pixels, filter 7 first */
    unsigned char *z;
    size_t zn;
    zlib_compress(raw, sizeof raw, 6, &z, &zn);
    unsigned char hdr[] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                           0, 0, 0, 2, 0, 0, 0, 2, 8, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t m = 0;
    memcpy(b, hdr, sizeof hdr); fix_crc(b, 8); m = sizeof hdr;
    b[m] = 0; b[m + 1] = 0; b[m + 2] = 0; b[m + 3] = (unsigned char)zn; memcpy(b + m + 4, "IDAT", 4);
    memcpy(b + m + 8, z, zn); fix_crc(b, m); m += 12 + zn;
    memcpy(b + m, "\0\0\0\0IEND", 8); fix_crc(b, m); m += 12;
    REFUSED(png_decode(b, m, nm, &im), nm, "filter type 7");
    raw[0] = 0;
    free(z);
    zlib_compress(raw, sizeof raw, 6, &z, &zn);
    REQUIRE(png_decode(b, m, nm, &im) == -1); /* old CRC... */
    memcpy(b + sizeof hdr + 8, z, zn); fix_crc(b, sizeof hdr);
    REQUIRE(png_decode(b, m, nm, &im) == 0);
    CHECK(im.c == 1 && im.data[0] == 1 && im.data[3] == 4);
    image_free(&im);
    b[8 + 8 + 9] = 3; fix_crc(b, 8); /* palette type with no PLTE */
    REFUSED(png_decode(b, m, nm, &im), nm, "PLTE");
    free(z);
    free(b);
    free(png);
}

TEST(img_png_mutations_never_crash) {
    /* change bytes all over real files (fixing the CRCs, so that the mutations reach
     * IHDR, the zlib data and the filters): each decode must return 0 or -1 */
    const char *names[] = {"rgb8", "p4", "g1_i", "rgba16", "pil_P"};
    uint32_t s = 12345;
    int rejected = 0, total = 0;
    for (int f = 0; f < 5; f++) {
        char rel[64];
        snprintf(rel, sizeof rel, "images/png/%s.png", names[f]);
        size_t n;
        unsigned char *png = test_slurp(fx(rel), &n), *b = xmalloc(n);
        REQUIRE(png);
        for (int trial = 0; trial < 300; trial++) {
            memcpy(b, png, n);
            int k = 1 + trial % 4;
            for (int j = 0; j < k; j++) {
                s = s * 1664525u + 1013904223u;
                size_t pos = 8 + (s >> 8) % (n - 8);
                b[pos] = (unsigned char)(s >> 3);
            }
            for (size_t pos = 8; pos + 12 <= n;) { /* re-sign every chunk that still fits */
                uint32_t len = (uint32_t)b[pos] << 24 | b[pos + 1] << 16 | b[pos + 2] << 8 | b[pos + 3];
                if (len > n - pos - 12) break;
                fix_crc(b, pos);
                pos += 12 + len;
            }
            Image im;
            int rc = png_decode(b, n, "m.png", &im);
            CHECK(rc == 0 || rc == -1);
            total++;
            if (rc) rejected++;
            else image_free(&im);
        }
        free(b);
        free(png);
    }
    printf("    %d of %d mutated files refused, the rest decoded\n", rejected, total);
}

TEST(img_png_writer_round_trip) {
    int sizes[][2] = {{1, 1}, {7, 5}, {64, 33}, {3, 200}};
    for (int c = 1; c <= 4; c++) {
        for (int si = 0; si < 4; si++) {
            Image im = {sizes[si][0], sizes[si][1], c, NULL};
            size_t n = (size_t)im.w * im.h * c;
            im.data = xmalloc(n);
            for (size_t i = 0; i < n; i++) /* smooth + noisy rows so that different filters win */
                im.data[i] = (unsigned char)(((i / c) % im.w) * 3 + (i / ((size_t)im.w * c)) * 5 + (i % c) * 50 +
                                              ((i / ((size_t)im.w * c)) % 3 == 0 ? (i * 2654435761u) >> 27 : 0));
            unsigned char *buf;
            size_t len;
            REQUIRE(png_encode(&im, &buf, &len) == 0);
            Image back;
            int rc = png_decode(buf, len, "mem", &back);
            CHECKF(rc == 0, "%s", err_get());
            if (!rc) {
                CHECK(back.w == im.w && back.h == im.h && back.c == c && !memcmp(back.data, im.data, n));
                image_free(&back);
            }
            if (c == 3 && si == 2) printf("    64x33 RGB: %zu raw bytes -> %zu byte PNG\n", n, len);
            free(buf);
            const char *p = test_path("w.png");
            REQUIRE(png_write(p, &im) == 0);
            rc = image_load(p, &back);
            CHECK(rc == 0 && back.c == c && !memcmp(back.data, im.data, n));
            if (!rc) image_free(&back);
            free(im.data);
        }
    }
    unsigned char px[6] = {0};
    Image bad = {1, 1, 5, px};
    unsigned char *buf;
    size_t len;
    REFUSED(png_encode(&bad, &buf, &len), NULL, "channels");
    bad.c = 3;
    REFUSED(png_write(test_path("no/such/dir/x.png"), &bad), "x.png", NULL);
    struct stat st;
    CHECK(stat(test_path("no/such/dir/x.png"), &st) != 0);
}

/* ---------------------------------------------------------------- PNM */

TEST(img_pnm_vs_pil) {
    const char *names[] = {"p5.pgm", "p6.ppm", "p2.pgm", "p3.ppm", "p5_m100.pgm", "p6_m7.ppm", "p2_m7.pgm"};
    for (int i = 0; i < 7; i++) {
        char rel[64], key[64];
        snprintf(rel, sizeof rel, "images/pnm/%s", names[i]);
        Image im;
        int rc = image_load(fx(rel), &im);
        CHECKF(rc == 0, "%s", err_get());
        if (rc) continue;
        snprintf(key, sizeof key, "pnm_%.*s", (int)(strchr(names[i], '.') - names[i]), names[i]);
        const StTensor *t = want(key);
        REQUIRE(t);
        CHECK(t->dim[0] == im.h && t->dim[1] == im.w && t->dim[2] == im.c);
        size_t bad = 0;
        for (size_t k = 0; k < t->numel && t->numel == (size_t)im.h * im.w * im.c; k++)
            bad += im.data[k] != (unsigned char)t->f32[k];
        CHECKF(bad == 0, "%s: %zu samples differ from PIL", names[i], bad);
        image_free(&im);
    }
    want_free();
}

TEST(img_pnm_corrupt_refused) {
    Image im;
    const char *nm = "y.pgm";
#define PNM(s) pnm_decode((const unsigned char *)(s), sizeof(s) - 1, nm, &im)
    REFUSED(PNM("P5\n2 2\n255\n\1\2\3"), nm, "truncated");
    REFUSED(PNM("P5\n2 2\n0\n\1\2\3\4"), nm, "maxval");
    REFUSED(PNM("P5\n2 2\n65535\n\1\2\3\4\5\6\7\10"), nm, "16-bit");
    REFUSED(PNM("P4\n8 1\n\1"), nm, "PBM");
    REFUSED(PNM("P5 2x2 255\n\1\2\3\4"), nm, "header");
    REFUSED(PNM("P5\n2 2"), nm, "header");
    REFUSED(PNM("P5\n0 2\n255\n"), nm, "zero");
    REFUSED(PNM("P5\n99999 99999\n255\n"), nm, "limit");
    REFUSED(PNM("P2\n2 2\n7\n1 2 3 8"), nm, "above maxval");
    REFUSED(PNM("P2\n2 2\n7\n1 2 3"), nm, "truncated");
    REFUSED(PNM("P3\n1 1\n255\n1 x 3"), nm, "bad sample");
    REFUSED(PNM("P9\n"), nm, "magic");
    REQUIRE(PNM("P5\n2 1\n255\n\1\377extra") == 0);
    CHECK(im.w == 2 && im.h == 1 && im.c == 1 && im.data[1] == 255);
    image_free(&im);
#undef PNM
    test_spit(test_path("garbage.png"), "GIF89a....", 10);
    REFUSED(image_load(test_path("garbage.png"), &im), "garbage.png", "unknown magic");
    REFUSED(image_load(test_path("missing.png"), &im), "missing.png", NULL);
}

TEST(img_load_by_magic_not_extension) {
    size_t n;
    unsigned char *b = test_slurp(fx("images/png/g8.png"), &n);
    REQUIRE(b);
    test_spit(test_path("actually_png.ppm"), b, n);
    Image a, c;
    REQUIRE(image_load(test_path("actually_png.ppm"), &a) == 0);
    REQUIRE(image_load(fx("images/png/g8.png"), &c) == 0);
    CHECK(a.w == c.w && a.h == c.h && a.c == 1 && !memcmp(a.data, c.data, (size_t)a.w * a.h));
    image_free(&a);
    image_free(&c);
    free(b);
}

/* ---------------------------------------------------------------- resize, inputs */

TEST(img_bilinear_resize_vs_torch) {
    for (int k = 0; k < 9; k++) {
        char kin[32], kout[32];
        snprintf(kin, sizeof kin, "rs%d_in", k);
        snprintf(kout, sizeof kout, "rs%d_out", k);
        const StTensor *in = want(kin), *out = want(kout);
        REQUIRE(in && out);
        float *y = xmalloc(sizeof(float) * out->numel);
        image_resize_bilinear(in->f32, 3, (int)in->dim[1], (int)in->dim[2], y, (int)out->dim[1], (int)out->dim[2]);
        char what[96];
        snprintf(what, sizeof what, "resize %lldx%lld -> %lldx%lld", (long long)in->dim[1], (long long)in->dim[2],
                 (long long)out->dim[1], (long long)out->dim[2]);
        CHECK_CLOSE(what, y, out->f32, out->numel, 1e-6f, 1e-6f);
        free(y);
    }
    want_free();
}

TEST(img_input_load_vs_torch) {
    float mean[3], std[3];
    mean_std(mean, std);
    const char *names[] = {"rgb8", "g8", "p4", "pil_RGBA"};
    for (int i = 0; i < 4; i++) {
        char rel[64], key[64];
        snprintf(rel, sizeof rel, "images/png/%s.png", names[i]);
        snprintf(key, sizeof key, "pipe_%s", names[i]);
        const StTensor *t = want(key);
        REQUIRE(t);
        Tensor x;
        int rc = input_load(fx(rel), (int)t->dim[1], (int)t->dim[2], mean, std, &x);
        CHECKF(rc == 0, "%s", err_get());
        if (rc) continue;
        CHECK(x.ndim == 4 && x.dim[0] == 1 && x.dim[1] == 3 && x.dim[2] == t->dim[1] && x.dim[3] == t->dim[2]);
        CHECK_CLOSE(key, x.data, t->f32, t->numel, 2e-6f, 1e-6f);
        tensor_free(&x);
    }
    /* h = w = 0 keeps the file's size */
    Tensor x;
    REQUIRE(input_load(fx("images/png/g8.png"), 0, 0, NULL, NULL, &x) == 0);
    CHECK(x.dim[2] == 11 && x.dim[3] == 13);
    const StTensor *g = want("in_g8");
    REQUIRE(g);
    CHECK_CLOSE("g8 unnormalised", x.data, g->f32, g->numel, 0, 0);
    /* .npy is taken as it is; [3,h,w] gains a batch dimension */
    int64_t dim[3] = {3, 11, 13};
    REQUIRE(npy_write_data(test_path("in.npy"), x.data, 3, dim) == 0);
    Tensor y;
    REQUIRE(input_load(test_path("in.npy"), 11, 13, mean, std, &y) == 0);
    CHECK(y.ndim == 4 && y.dim[0] == 1 && y.dim[1] == 3);
    CHECK_CLOSE("npy as is", y.data, x.data, tensor_numel(&x), 0, 0);
    tensor_free(&y);
    REFUSED(input_load(test_path("in.npy"), 28, 28, NULL, NULL, &y), "in.npy", "want [n,3,28,28]");
    int64_t d2[2] = {11, 39};
    REQUIRE(npy_write_data(test_path("flat.npy"), x.data, 2, d2) == 0);
    REFUSED(input_load(test_path("flat.npy"), 0, 0, NULL, NULL, &y), "flat.npy", "shape");
    REFUSED(input_load(test_path("nothing.png"), 0, 0, NULL, NULL, &y), "nothing.png", NULL);
    tensor_free(&x);
    want_free();
}

/* ---------------------------------------------------------------- IDX */

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

TEST(img_idx_read_and_refuse) {
    IdxU8 a, b;
    REQUIRE(idx_read(fx("images/idx/tiny-images-idx3-ubyte.gz"), &a) == 0);
    REQUIRE(idx_read(fx("images/idx/raw-images-idx3-ubyte"), &b) == 0);
    const StTensor *t = want("idx_raw");
    REQUIRE(t);
    CHECK(a.ndim == 3 && a.dim[0] == 17 && a.dim[1] == 4 && a.dim[2] == 5 && a.numel == 340);
    CHECK(b.numel == a.numel && !memcmp(a.data, b.data, a.numel));
    size_t bad = 0;
    for (size_t i = 0; i < t->numel && i < a.numel; i++) bad += a.data[i] != (unsigned char)t->f32[i];
    CHECK(bad == 0);
    idx_free(&b);
    size_t n;
    unsigned char *raw = test_slurp(fx("images/idx/raw-images-idx3-ubyte"), &n), *w = xmalloc(n + 16);
    REQUIRE(raw);
    const char *p = test_path("t-images-idx3-ubyte");
    memcpy(w, raw, n);
    test_spit(p, w, n - 1);
    REFUSED(idx_read(p, &b), "t-images", "size mismatch");
    w[n] = 9;
    test_spit(p, w, n + 1);
    REFUSED(idx_read(p, &b), "t-images", "size mismatch");
    w[2] = 0x0d;
    test_spit(p, w, n);
    REFUSED(idx_read(p, &b), "t-images", "element type");
    memcpy(w, raw, n);
    w[0] = 0x1f; w[1] = 0x9d;
    test_spit(p, w, n);
    REFUSED(idx_read(p, &b), "t-images", "not an IDX");
    memcpy(w, raw, n);
    w[3] = 7;
    test_spit(p, w, n);
    REFUSED(idx_read(p, &b), "t-images", "dimensions");
    memcpy(w, raw, n);
    put_be32(w + 4, 0xffffffffu); put_be32(w + 8, 0xffffffffu); /* would overflow */
    test_spit(p, w, n);
    REFUSED(idx_read(p, &b), "t-images", "too large");
    put_be32(w + 4, 0x10000u); put_be32(w + 8, 0x10000u); put_be32(w + 12, 0x10000u);
    test_spit(p, w, n);
    REFUSED(idx_read(p, &b), "t-images", "too large");
    test_spit(p, w, 6);
    REFUSED(idx_read(p, &b), "t-images", "truncated");
    free(raw);
    /* a truncated gzip'd IDX */
    raw = test_slurp(fx("images/idx/tiny-images-idx3-ubyte.gz"), &n);
    REQUIRE(raw);
    test_spit(p, raw, n - 5);
    REFUSED(idx_read(p, &b), "t-images", "truncated");
    test_spit(p, raw, n / 2);
    REFUSED(idx_read(p, &b), "t-images", "truncated");
    free(raw);
    free(w);
    idx_free(&a);
    want_free();
}

TEST(img_fashion_mnist_debian_labels) {
    const char *p = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (!file_exists(p)) { printf("    %s absent (package dataset-fashion-mnist): skipped\n", p); return; }
    IdxU8 a;
    REQUIRE(idx_read(p, &a) == 0);
    CHECK(a.ndim == 1 && a.dim[0] == 10000);
    int count[256] = {0};
    for (size_t i = 0; i < a.numel; i++) count[a.data[i]]++;
    for (int c = 0; c < 10; c++) CHECKF(count[c] == 1000, "class %d: %d labels", c, count[c]);
    idx_free(&a);
}

/* ---------------------------------------------------------------- datasets */

TEST(img_dataset_idx_vs_torch) {
    float mean[3], std[3];
    mean_std(mean, std);
    Dataset d;
    int rc = dataset_load(&d, fx("images/idx/tiny-images-idx3-ubyte.gz"), "cat,ant", 6, 5, mean, std, 0.3f);
    REQUIRE(rc == 0 || (printf("    %s\n", err_get()), 0));
    const StTensor *x = want("idx_x"), *y = want("idx_y"), *h = want("idx_held");
    REQUIRE(x && y && h);
    CHECK(d.n == (int)y->numel && d.c == 3 && d.h == 6 && d.w == 5 && d.nclasses == 2);
    CHECK(!strcmp(d.class_names[0], "cat") && !strcmp(d.class_names[1], "ant"));
    REQUIRE(d.n == (int)y->numel);
    CHECK_CLOSE("idx dataset x", d.x, x->f32, x->numel, 2e-6f, 1e-6f);
    int bad = 0;
    for (int i = 0; i < d.n; i++) bad += d.y[i] != y->i64[i] || d.held_out[i] != h->i64[i];
    CHECKF(bad == 0, "%d labels or held-out flags differ", bad);
    /* names: the file and each image's index in it (classes not selected are passed over) */
    int last = -1, names_ok = 1;
    for (int i = 0; i < d.n; i++) {
        const char *q = strstr(d.names[i], "tiny-images-idx3-ubyte.gz[");
        int k = q ? atoi(q + 26) : -1;
        names_ok &= q && k > last;
        last = k;
    }
    CHECKF(names_ok, "names: %s ... %s", d.names[0], d.names[d.n - 1]);
    /* dataset_select */
    int *idx, k = dataset_select(&d, 1, -1, 0, &idx), heldn = 0;
    for (int i = 0; i < d.n; i++) heldn += d.held_out[i];
    CHECK(k == heldn);
    for (int i = 0; i < k; i++) CHECK(d.held_out[idx[i]] == 1 && (i == 0 || idx[i] > idx[i - 1]));
    free(idx);
    k = dataset_select(&d, 0, 1, 2, &idx);
    CHECK(k == 2 && d.y[idx[0]] == 1 && d.y[idx[1]] == 1 && !d.held_out[idx[0]]);
    free(idx);
    dataset_free(&d);
    /* the same classes by index give the same data */
    Dataset e;
    REQUIRE(dataset_load(&e, fx("images/idx/tiny-images-idx3-ubyte.gz"), "2, 0", 6, 5, mean, std, 0.3f) == 0);
    CHECK_CLOSE("by index", e.x, x->f32, x->numel, 2e-6f, 1e-6f);
    CHECK(!strcmp(e.class_names[0], "cat"));
    dataset_free(&e);
    want_free();
}

TEST(img_dataset_idx_classes_and_errors) {
    Dataset d;
    const char *tiny = fx("images/idx/tiny-images-idx3-ubyte.gz"), *raw = fx("images/idx/raw-images-idx3-ubyte");
    REQUIRE(dataset_load(&d, tiny, NULL, 0, 0, NULL, NULL, 0.0f) == 0);
    CHECK(d.n == 17 && d.h == 4 && d.w == 5 && d.nclasses == 3 && !strcmp(d.class_names[1], "bee"));
    int count[3] = {0}, held = 0;
    for (int i = 0; i < d.n; i++) { count[d.y[i]]++; held += d.held_out[i]; }
    CHECK(count[0] == 7 && count[1] == 3 && count[2] == 7 && held == 0);
    CHECK(d.x[0] >= 0 && d.x[0] <= 1);
    dataset_free(&d);
    REQUIRE(dataset_load(&d, raw, NULL, 0, 0, NULL, NULL, 0.5f) == 0); /* no classes file: label numbers */
    CHECK(d.nclasses == 3 && !strcmp(d.class_names[2], "2"));
    dataset_free(&d);
    REQUIRE(dataset_load(&d, raw, "1", 0, 0, NULL, NULL, 0.5f) == 0);
    CHECK(d.n == 3 && d.nclasses == 1 && d.y[0] == 0 && d.held_out[0] == 0 && d.held_out[1] == 1 && d.held_out[2] == 1);
    dataset_free(&d);
    REFUSED(dataset_load(&d, tiny, "cat,dog", 0, 0, NULL, NULL, 0.2f), "tiny-images", "unknown class 'dog'");
    REFUSED(dataset_load(&d, tiny, "3", 0, 0, NULL, NULL, 0.2f), "tiny-images", "out of range");
    REFUSED(dataset_load(&d, tiny, "cat,2", 0, 0, NULL, NULL, 0.2f), "tiny-images", "twice");
    REFUSED(dataset_load(&d, tiny, "cat,", 0, 0, NULL, NULL, 0.2f), "tiny-images", "empty class");
    REFUSED(dataset_load(&d, tiny, NULL, 0, 0, NULL, NULL, 1.0f), "tiny-images", "fraction");
    REFUSED(dataset_load(&d, tiny, NULL, 5, 0, NULL, NULL, 0.2f), "tiny-images", "size");
    CHECK(d.x == NULL && d.n == 0);
    /* count mismatch, missing labels, a label without a name, wrong files */
    IdxU8 a;
    REQUIRE(idx_read(raw, &a) == 0);
    unsigned char hdr[16] = {0, 0, 8, 3};
    put_be32(hdr + 4, 16); put_be32(hdr + 8, 4); put_be32(hdr + 12, 5);
    unsigned char *img = xmalloc(16 + 16 * 20);
    memcpy(img, hdr, 16);
    memcpy(img + 16, a.data, 16 * 20);
    test_spit(test_path("m-images-idx3-ubyte"), img, 16 + 16 * 20);
    REFUSED(dataset_load(&d, test_path("m-images-idx3-ubyte"), NULL, 0, 0, NULL, NULL, 0.2f), "m-images", "not found");
    unsigned char lab[8 + 17] = {0, 0, 8, 1};
    put_be32(lab + 4, 17);
    memset(lab + 8, 1, 17);
    test_spit(test_path("m-labels-idx1-ubyte"), lab, sizeof lab);
    REFUSED(dataset_load(&d, test_path("m-images-idx3-ubyte"), NULL, 0, 0, NULL, NULL, 0.2f), "m-labels", "16 images");
    put_be32(lab + 4, 16);
    lab[8 + 3] = 5;
    test_spit(test_path("m-labels-idx1-ubyte"), lab, sizeof lab - 1);
    test_spit(test_path("m-classes.txt"), "a\nb\n\n", 5);
    REFUSED(dataset_load(&d, test_path("m-images-idx3-ubyte"), NULL, 0, 0, NULL, NULL, 0.2f), "m-labels", "no name");
    test_spit(test_path("m-classes.txt"), "a\nb\nc\nd\ne\nf\n", 12);
    REQUIRE(dataset_load(&d, test_path("m-images-idx3-ubyte"), NULL, 0, 0, NULL, NULL, 0.2f) == 0);
    CHECK(d.nclasses == 2 && !strcmp(d.class_names[0], "b") && !strcmp(d.class_names[1], "f") && d.n == 16);
    dataset_free(&d);
    REFUSED(dataset_load(&d, test_path("m-images-idx3-ubyte"), "c", 0, 0, NULL, NULL, 0.2f), "m-images", "no images");
    REFUSED(dataset_load(&d, test_path("m-labels-idx1-ubyte"), NULL, 0, 0, NULL, NULL, 0.2f), "m-labels", "3 dimensions");
    test_spit(test_path("plain.bin"), hdr, 16);
    REFUSED(dataset_load(&d, test_path("plain.bin"), NULL, 0, 0, NULL, NULL, 0.2f), "plain.bin", NULL);
    REFUSED(dataset_load(&d, test_path("nope"), NULL, 0, 0, NULL, NULL, 0.2f), "nope", "no such");
    free(img);
    idx_free(&a);
}

TEST(img_dataset_folder_vs_torchvision) {
    float mean[3], std[3];
    mean_std(mean, std);
    Dataset d;
    int rc = dataset_load(&d, fx("images/folder"), NULL, 8, 8, mean, std, 0.34f);
    REQUIRE(rc == 0 || (printf("    %s\n", err_get()), 0));
    const StTensor *x = want("fold_x"), *y = want("fold_y");
    REQUIRE(x && y);
    CHECK(d.nclasses == 3 && !strcmp(d.class_names[0], "Dog") && !strcmp(d.class_names[1], "bird") &&
          !strcmp(d.class_names[2], "cat"));
    REQUIRE(d.n == (int)y->numel);
    CHECK_CLOSE("ImageFolder x", d.x, x->f32, x->numel, 2e-6f, 1e-6f);
    int bad = 0;
    for (int i = 0; i < d.n; i++) bad += d.y[i] != y->i64[i];
    CHECK(bad == 0);
    /* 3 Dog -> 1 held out (the last), 1 bird -> 0, 2 cat -> 1 */
    CHECK(d.held_out[0] == 0 && d.held_out[2] == 1 && d.held_out[3] == 0 && d.held_out[4] == 0 && d.held_out[5] == 1);
    dataset_free(&d);
    REQUIRE(dataset_load(&d, fx("images/folder"), "cat,0", 8, 8, NULL, NULL, 0.0f) == 0);
    CHECK(d.n == 5 && d.nclasses == 2 && !strcmp(d.class_names[1], "Dog") && d.y[0] == 0 && d.y[2] == 1);
    dataset_free(&d);
    REFUSED(dataset_load(&d, fx("images/folder"), NULL, 0, 0, NULL, NULL, 0.0f), "img", "first one");
    want_free();
}

TEST(img_dataset_folder_errors) {
    char root[600], p[700];
    snprintf(root, sizeof root, "%s/ds", test_tmpdir());
    Dataset d;
    REFUSED(dataset_load(&d, root, NULL, 0, 0, NULL, NULL, 0.2f), "ds", "no such");
    snprintf(p, sizeof p, "%s/a", root);
    REQUIRE(file_mkdirs(p) == 0);
    snprintf(p, sizeof p, "%s/b", root);
    REQUIRE(file_mkdirs(p) == 0);
    unsigned char px[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    Image im = {2, 2, 3, px};
    snprintf(p, sizeof p, "%s/a/x.png", root);
    REQUIRE(png_write(p, &im) == 0);
    REFUSED(dataset_load(&d, root, NULL, 0, 0, NULL, NULL, 0.2f), "/b", "empty class folder");
    REQUIRE(dataset_load(&d, root, "a", 0, 0, NULL, NULL, 0.2f) == 0);
    CHECK(d.n == 1 && d.h == 2 && d.held_out[0] == 0 && fabsf(d.x[0] - 1 / 255.0f) < 1e-7f);
    dataset_free(&d);
    REFUSED(dataset_load(&d, root, "c", 0, 0, NULL, NULL, 0.2f), "ds", "unknown class 'c'");
    REFUSED(dataset_load(&d, root, "2", 0, 0, NULL, NULL, 0.2f), "ds", "out of range");
    snprintf(p, sizeof p, "%s/b/bad.png", root);
    size_t n;
    unsigned char *png;
    snprintf(p, sizeof p, "%s/a/x.png", root);
    png = test_slurp(p, &n);
    REQUIRE(png);
    png[n - 20] ^= 0xff; /* inside IDAT */
    snprintf(p, sizeof p, "%s/b/bad.png", root);
    test_spit(p, png, n);
    /* a corrupt file is skipped with a warning naming it (here it leaves class b
     * empty), or is the error with strict */
    grab_warnings();
    REFUSED(dataset_load(&d, root, NULL, 0, 0, NULL, NULL, 0.2f), "ds/b", "no image gad can read");
    CHECKF(nwarned == 1 && strstr(warned, "b/bad.png") && strstr(warned, "CRC") && strstr(warned, "skipped"), "%s",
           warned);
    DatasetOpts so = {0};
    so.strict = 1;
    so.val_frac = 0.2f;
    REFUSED(dataset_load_opts(&d, root, &so), "b/bad.png", "CRC");
    test_spit(p, png, n / 2);
    REFUSED(dataset_load_opts(&d, root, &so), "b/bad.png", "truncated");
    test_spit(p, "P6\n3 1\n255\nabcdefghi", 20); /* a good PPM of another size */
    REFUSED(dataset_load(&d, root, NULL, 0, 0, NULL, NULL, 0.2f), "bad.png", "first one");
    REQUIRE(dataset_load(&d, root, NULL, 4, 4, NULL, NULL, 0.2f) == 0); /* with a size: resized */
    CHECK(d.n == 2 && d.y[1] == 1 && d.h == 4);
    dataset_free(&d);
    free(png);
}

TEST(img_dataset_bundled_fashion) {
    const char *p = "data/fashion-pc-images-idx3-ubyte.gz";
    if (!file_exists(p)) { printf("    %s absent: skipped\n", p); return; }
    Dataset d;
    REQUIRE(dataset_load(&d, p, NULL, 0, 0, NULL, NULL, 0.2f) == 0);
    CHECK(d.n == 3000 && d.h == 28 && d.w == 28 && d.nclasses == 2);
    CHECK(!strcmp(d.class_names[0], "Pullover") && !strcmp(d.class_names[1], "Coat"));
    int held[2] = {0}, cnt[2] = {0};
    for (int i = 0; i < d.n; i++) { cnt[d.y[i]]++; held[d.y[i]] += d.held_out[i]; }
    CHECK(cnt[0] == 1500 && cnt[1] == 1500 && held[0] == 300 && held[1] == 300);
    int *idx, k = dataset_select(&d, 1, 1, 0, &idx);
    CHECK(k == 300);
    free(idx);
    Dataset e;
    REQUIRE(dataset_load(&e, p, "Coat,2", 0, 0, NULL, NULL, 0.2f) == 0);
    int flipped = e.n == d.n;
    for (int i = 0; flipped && i < d.n; i++) flipped = e.y[i] == 1 - d.y[i];
    CHECK(flipped && !strcmp(e.class_names[0], "Coat"));
    CHECK(!memcmp(e.x, d.x, sizeof(float) * 3 * 28 * 28 * (size_t)d.n));
    dataset_free(&e);
    dataset_free(&d);
    REFUSED(dataset_load(&d, p, "Sneaker", 0, 0, NULL, NULL, 0.2f), "fashion-pc", "no images");
}

/* A class folder as users have them: JPEGs (a misleading extension too), a PNG, a
 * text file, a sub-folder and a hidden file. Every image is read, in name order;
 * each other entry is a warning naming it (hidden files excepted), or with strict
 * the error; more than ten skipped are named up to ten, then counted. */
TEST(img_dataset_folder_mixed_formats) {
    char root[512], p[640];
    snprintf(root, sizeof root, "%s/mixed", test_tmpdir());
    snprintf(p, sizeof p, "%s/cats/sub", root);
    REQUIRE(file_mkdirs(p) == 0);
    snprintf(p, sizeof p, "%s/dogs", root);
    REQUIRE(file_mkdirs(p) == 0);
    size_t n;
    unsigned char *j1 = test_slurp(fx("jpeg/photo_420.jpg"), &n);
    REQUIRE(j1);
    snprintf(p, sizeof p, "%s/cats/a.jpg", root);
    test_spit(p, j1, n);
    snprintf(p, sizeof p, "%s/cats/b.JPEG", root);
    test_spit(p, j1, n);
    snprintf(p, sizeof p, "%s/cats/c.png", root); /* a JPEG named .png */
    test_spit(p, j1, n);
    free(j1);
    snprintf(p, sizeof p, "%s/cats/notes.txt", root);
    test_spit(p, "hello\n", 6);
    snprintf(p, sizeof p, "%s/cats/.DS_Store", root);
    test_spit(p, "junk", 4);
    unsigned char *g = test_slurp(fx("jpeg/photo_gray.png"), &n);
    REQUIRE(g);
    snprintf(p, sizeof p, "%s/dogs/d.png", root);
    test_spit(p, g, n);
    free(g);
    Image want, gray;
    REQUIRE(image_load(fx("jpeg/photo_420.png"), &want) == 0);
    REQUIRE(image_load(fx("jpeg/photo_gray.png"), &gray) == 0);
    grab_warnings();
    Dataset d;
    REQUIRE(dataset_load(&d, root, NULL, want.h, want.w, NULL, NULL, 0.0f) == 0);
    CHECK(d.n == 4 && d.nclasses == 2 && d.y[0] == 0 && d.y[2] == 0 && d.y[3] == 1);
    CHECKF(strstr(d.names[0], "mixed/cats/a.jpg") && strstr(d.names[1], "mixed/cats/b.JPEG") &&
               strstr(d.names[3], "mixed/dogs/d.png"), "%s %s %s", d.names[0], d.names[1], d.names[3]);
    CHECKF(nwarned == 2 && strstr(warned, "cats/notes.txt") && strstr(warned, "cats/sub") && !strstr(warned, "DS_Store"),
           "%d warnings: %s", nwarned, warned);
    size_t hw = (size_t)want.w * want.h;
    int same = 1;
    for (int i = 0; i < 3; i++) /* the three JPEGs give Pillow's pixels */
        for (size_t q = 0; q < hw; q++)
            for (int c = 0; c < 3; c++)
                same &= d.x[(size_t)i * 3 * hw + c * hw + q] == want.data[q * 3 + c] / 255.0f;
    for (size_t q = 0; q < hw; q++) same &= d.x[3 * 3 * hw + q] == gray.data[q] / 255.0f;
    CHECK(same);
    dataset_free(&d);
    DatasetOpts so = {0};
    so.strict = 1;
    so.h = want.h;
    so.w = want.w;
    REFUSED(dataset_load_opts(&d, root, &so), "cats/notes.txt", "not a PNG, JPEG");
    /* twelve bad files: ten named, then one line with the count */
    for (int i = 0; i < 10; i++) {
        snprintf(p, sizeof p, "%s/dogs/bad%02d.jpg", root, i);
        test_spit(p, "\xff\xd8\xff", 3);
    }
    grab_warnings();
    REQUIRE(dataset_load(&d, root, NULL, want.h, want.w, NULL, NULL, 0.0f) == 0);
    CHECKF(nwarned == 11 && strstr(warned, "12 files skipped in all") && !strstr(warned, "bad09"), "%d: %s", nwarned,
           warned);
    CHECK(d.n == 4);
    dataset_free(&d);
    image_free(&want);
    image_free(&gray);
}
