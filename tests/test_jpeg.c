/* test_jpeg: the JPEG decoder (io/jpeg.h) against Pillow.
 * Fixtures (tests/fixtures/jpeg, made by tools/fixtures/gen_fixtures_jpeg.py with
 * libjpeg-turbo's cjpeg/jpegtran and Pillow): each NAME.jpg beside NAME.png, Pillow's
 * decode of it; manifest.txt says what each must give. Every mode must give
 * Pillow's pixels exactly (the mean and largest difference per channel are printed
 * for each file); the one documented exception, prog_incomplete, within its bound.
 * Files gad refuses must give -1 and a one-line message with the reason, and every
 * prefix and many corruptions of a file must give a clean error, never a crash
 * (run under `make asan T=jpeg_` after changing the decoder). */
#include "core/err.h"
#include "io/file.h"
#include "io/image.h"
#include "io/jpeg.h"
#include "test.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[64], kind[16], words[64];
    int orientation, tol;
} Entry;

/* The manifest's lines; returns the count (0 on failure, after a test failure). */
static int manifest(Entry *e, int max) {
    FILE *f = fopen(fixture("jpeg/manifest.txt"), "r");
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot open %s", fixture("jpeg/manifest.txt"));
        return 0;
    }
    char line[256];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        Entry *x = &e[n];
        memset(x, 0, sizeof *x);
        if (sscanf(line, "%63s %15s", x->name, x->kind) != 2) continue;
        if (!strcmp(x->kind, "pixels")) {
            if (sscanf(line, "%*s %*s %d %d", &x->orientation, &x->tol) != 2) continue;
        } else {
            const char *w = strstr(line, ": ");
            if (!w) continue;
            snprintf(x->words, sizeof x->words, "%s", w + 2);
            x->words[strcspn(x->words, "\n")] = 0;
        }
        n++;
    }
    fclose(f);
    return n;
}

static const char *jpg_path(const char *name, const char *ext) {
    static char buf[2][512];
    static int k;
    k ^= 1;
    char rel[128];
    snprintf(rel, sizeof rel, "jpeg/%s.%s", name, ext);
    snprintf(buf[k], sizeof buf[k], "%s", fixture(rel));
    return buf[k];
}

/* A clean refusal: -1, img zeroed, one non-empty line. */
static int clean_error(int rc, const Image *im) {
    const char *m = err_get();
    return rc == -1 && im->data == NULL && m[0] && !strchr(m, '\n');
}

TEST(jpeg_fixtures_match_pillow) {
    Entry e[128];
    int n = manifest(e, 128), checked = 0, exact = 0;
    REQUIRE(n > 30);
    for (int i = 0; i < n; i++) {
        if (strcmp(e[i].kind, "pixels")) continue;
        unsigned char *buf;
        size_t len;
        Image a, b;
        const char *jp = jpg_path(e[i].name, "jpg");
        REQUIRE(file_read_all(jp, 1 << 20, &buf, &len) == 0);
        int ra = jpeg_decode(buf, len, jp, &a);
        CHECKF(ra == 0, "%s", err_get());
        CHECKF(jpeg_exif_orientation(buf, len) == e[i].orientation, "%s: orientation %d, want %d", e[i].name,
               jpeg_exif_orientation(buf, len), e[i].orientation);
        free(buf);
        int rb = image_load(jpg_path(e[i].name, "png"), &b);
        CHECKF(rb == 0, "%s", err_get());
        if (ra || rb) { image_free(&a); image_free(&b); continue; }
        CHECKF(a.w == b.w && a.h == b.h && a.c == b.c, "%s: %dx%dx%d, Pillow %dx%dx%d", e[i].name, a.w, a.h, a.c, b.w,
               b.h, b.c);
        if (a.w == b.w && a.h == b.h && a.c == b.c) {
            double sum[3] = {0, 0, 0};
            int mx[3] = {0, 0, 0}, worst = 0;
            size_t px = (size_t)a.w * a.h;
            for (size_t p = 0; p < px; p++)
                for (int k = 0; k < a.c; k++) {
                    int dd = abs((int)a.data[p * a.c + k] - (int)b.data[p * a.c + k]);
                    sum[k] += dd;
                    if (dd > mx[k]) mx[k] = dd;
                    if (dd > worst) worst = dd;
                }
            printf("    %-22s %3dx%-3d c=%d  mean |diff| per channel", e[i].name, a.w, a.h, a.c);
            for (int k = 0; k < a.c; k++) printf(" %.4f", sum[k] / (double)px);
            printf("  max");
            for (int k = 0; k < a.c; k++) printf(" %d", mx[k]);
            printf("\n");
            CHECKF(worst <= e[i].tol, "%s: differs from Pillow by %d (allowed %d)", e[i].name, worst, e[i].tol);
            if (e[i].tol) CHECKF(worst > 0, "%s: now exact: tighten its bound and the docs", e[i].name);
            exact += worst == 0;
            checked++;
        }
        image_free(&a);
        image_free(&b);
    }
    printf("    %d files, %d identical to Pillow's decode\n", checked, exact);
    CHECK(checked > 25);
}

TEST(jpeg_refusals_say_why) {
    Entry e[128];
    int n = manifest(e, 128), refusals = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(e[i].kind, "refuse:")) continue;
        Image im;
        const char *p = jpg_path(e[i].name, "jpg");
        int rc = image_load(p, &im);
        const char *m = err_get();
        CHECKF(clean_error(rc, &im) && strstr(m, e[i].words) && strstr(m, p), "%s: rc %d, \"%s\" (want \"%s\")",
               e[i].name, rc, m, e[i].words);
        printf("    refused: %s\n", m);
        if (rc == 0) image_free(&im);
        refusals++;
    }
    CHECK(refusals >= 8);
}

/* image_load picks the decoder by the magic bytes FF D8 FF, whatever the name. */
TEST(jpeg_found_by_magic) {
    unsigned char *buf;
    size_t len;
    REQUIRE(file_read_all(jpg_path("syn_420", "jpg"), 1 << 20, &buf, &len) == 0);
    const char *p = test_path("picture.png"); /* a misleading extension */
    test_spit(p, buf, len);
    Image a, b;
    CHECKF(image_load(p, &a) == 0, "%s", err_get());
    CHECKF(image_load(jpg_path("syn_420", "png"), &b) == 0, "%s", err_get());
    CHECK(a.w == b.w && a.h == b.h && a.c == 3 && !memcmp(a.data, b.data, (size_t)a.w * a.h * 3));
    image_free(&a);
    image_free(&b);
    free(buf);
}

/* Every prefix of a file is a clean error (or, at full length, the image). */
static void every_prefix(const char *name) {
    unsigned char *buf;
    size_t len;
    REQUIRE(file_read_all(jpg_path(name, "jpg"), 1 << 20, &buf, &len) == 0);
    int bad = 0;
    for (size_t k = 0; k <= len; k++) {
        Image im;
        unsigned char *copy = malloc(k ? k : 1); /* exact size: asan sees any over-read */
        memcpy(copy, buf, k);
        int rc = jpeg_decode(copy, k, "cut.jpg", &im);
        if (k == len) CHECKF(rc == 0, "%s: %s", name, err_get());
        else if (!clean_error(rc, &im) || !strstr(err_get(), "cut.jpg")) bad++;
        if (rc == 0) image_free(&im);
        free(copy);
    }
    CHECKF(bad == 0, "%s: %d prefixes did not give a clean error", name, bad);
    printf("    %s: %zu prefixes refused cleanly\n", name, len);
    free(buf);
}

TEST(jpeg_every_prefix_refused) {
    every_prefix("syn_restart_prog");
    every_prefix("photo_420");
    every_prefix("syn_multiscan");
}

/* Bytes overwritten one at a time (several values each) in a baseline and a
 * progressive file: decoded or refused, never a crash (asan: no bad access). */
TEST(jpeg_corrupt_bytes_never_crash) {
    const char *names[] = {"syn_restart_rows", "photo_422_prog", "tiny_5x3_2x2"};
    static const unsigned char vals[] = {0x00, 0xFF, 0x01, 0x80, 0x7F, 0xC2};
    for (int f = 0; f < 3; f++) {
        unsigned char *buf;
        size_t len;
        REQUIRE(file_read_all(jpg_path(names[f], "jpg"), 1 << 20, &buf, &len) == 0);
        int ok = 0, refused = 0, bad = 0;
        for (size_t i = 2; i < len; i++)
            for (size_t v = 0; v < sizeof vals; v++) {
                unsigned char *c = malloc(len);
                memcpy(c, buf, len);
                c[i] = (unsigned char)(vals[v] ^ (i & 1 ? buf[i] : 0));
                Image im;
                int rc = jpeg_decode(c, len, "bad.jpg", &im);
                if (rc == 0) {
                    ok++;
                    if (im.w < 1 || im.h < 1 || (im.c != 1 && im.c != 3)) bad++;
                    image_free(&im);
                } else if (clean_error(rc, &im)) {
                    refused++;
                } else {
                    bad++;
                }
                free(c);
            }
        printf("    %s: %d corrupt copies decoded, %d refused\n", names[f], ok, refused);
        CHECK(bad == 0);
        CHECK(refused > 0);
        free(buf);
    }
}

/* A frame header claiming 16384 x 4096 in a file of a few hundred bytes is refused
 * before 400 MiB of coefficients are allocated. */
TEST(jpeg_frame_too_big_for_its_file) {
    unsigned char *buf;
    size_t len;
    REQUIRE(file_read_all(jpg_path("syn_420", "jpg"), 1 << 20, &buf, &len) == 0);
    size_t i;
    for (i = 2; i + 9 < len; i++)
        if (buf[i] == 0xFF && buf[i + 1] == 0xC0) break;
    REQUIRE(i + 9 < len);
    buf[i + 5] = 0x10; /* height 4096 */
    buf[i + 6] = 0x00;
    buf[i + 7] = 0x40; /* width 16384 */
    buf[i + 8] = 0x00;
    Image im;
    int rc = jpeg_decode(buf, len, "huge.jpg", &im);
    CHECKF(clean_error(rc, &im) && strstr(err_get(), "cannot be coded"), "%s", err_get());
    buf[i + 7] = 0x40; /* width 16385: over the per-side limit */
    buf[i + 8] = 0x01;
    rc = jpeg_decode(buf, len, "huge.jpg", &im);
    CHECKF(clean_error(rc, &im) && strstr(err_get(), "limit"), "%s", err_get());
    free(buf);
}

/* EXIF parsing: big- and little-endian TIFF headers, the tag found among others,
 * and malformed blocks read as "no orientation". */
TEST(jpeg_exif_orientation_read) {
    static const unsigned char mm[] = {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x2E, 'E', 'x', 'i', 'f', 0, 0,
                                       'M', 'M', 0, 42, 0, 0, 0, 8, 0, 2,
                                       0x01, 0x0F, 0, 2, 0, 0, 0, 4, 'a', 'b', 'c', 0, /* Make */
                                       0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0,       /* Orientation 8 */
                                       0, 0, 0, 0, 0xFF, 0xD9};
    unsigned char b[sizeof mm];
    CHECK(jpeg_exif_orientation(mm, sizeof mm) == 8);
    memcpy(b, mm, sizeof b); /* little-endian */
    b[12] = b[13] = 'I';
    b[14] = 42, b[15] = 0, b[16] = 8, b[17] = 0, b[18] = 0, b[19] = 0, b[20] = 2, b[21] = 0;
    b[22] = 0x0F, b[23] = 0x01, b[24] = 2, b[25] = 0, b[26] = 4, b[27] = b[28] = b[29] = 0;
    b[34] = 0x12, b[35] = 0x01, b[36] = 3, b[37] = 0, b[38] = 1, b[39] = b[40] = b[41] = 0, b[42] = 3, b[43] = 0;
    CHECK(jpeg_exif_orientation(b, sizeof b) == 3);
    memcpy(b, mm, sizeof b);
    b[43] = 9; /* out of range */
    CHECK(jpeg_exif_orientation(b, sizeof b) == 0);
    memcpy(b, mm, sizeof b);
    b[19] = 200; /* IFD offset past the block */
    CHECK(jpeg_exif_orientation(b, sizeof b) == 0);
    for (size_t k = 0; k <= sizeof mm; k++) CHECK(jpeg_exif_orientation(mm, k) == (k >= 50 ? 8 : 0));
}

/* fuzz_jpeg: a DHT whose counts overfill a code length made huff_build write past
 * its look-up table before it checked; now refused at that code. */
TEST(jpeg_regress_overfull_huffman_table) {
    Image im;
    const char *p = "tests/fuzz/regress/jpeg-huffman-overfull.jpg";
    int rc = image_load(p, &im);
    CHECKF(clean_error(rc, &im) && strstr(err_get(), "Huffman table") && strstr(err_get(), p), "%s", err_get());
}
