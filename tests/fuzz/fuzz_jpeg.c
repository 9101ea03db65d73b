/* fuzz_jpeg: the JPEG decoder (io/jpeg.h) through image_decode. The first byte
 * picks how the rest is used, so that the fuzzer reaches the entropy decoder
 * without having to invent valid tables first:
 *   0  the bytes as a JPEG file, as they are (seeds: the test fixtures)
 *   1  a sequential frame built here: size, components, sampling factors and the
 *      restart interval from the next 5 bytes, tables that give every symbol a
 *      code, the rest as the scan's entropy-coded data
 *   2  a progressive frame built the same way, then scans: each takes 5 bytes
 *      (component or all, Ss, Se, Ah/Al, data length) and that much data
 * A decoded image must have the frame's size and 1 or 3 channels, and its model
 * input must lie in [0,1]; jpeg_exif_orientation must return 0..8. */
#include "fuzz.h"
#include "io/image.h"
#include "io/jpeg.h"
#include <stdint.h>

static size_t seg(unsigned char *b, size_t at, int marker, const unsigned char *d, size_t n) {
    b[at] = 0xFF;
    b[at + 1] = (unsigned char)marker;
    b[at + 2] = (unsigned char)((n + 2) >> 8);
    b[at + 3] = (unsigned char)(n + 2);
    memcpy(b + at + 4, d, n);
    return at + 4 + n;
}

/* SOI, a quantization table, a DC table (15 codes of 4 bits, one of 5) and an AC
 * table (255 codes of 8 bits, one of 9) as tables 0 and 1, a frame header, DRI. */
static size_t header(unsigned char *b, int sof, const uint8_t *p, int *w, int *h, int *nc) {
    static const unsigned char combos[][3] = {{0x11, 0x11, 0x11}, {0x21, 0x11, 0x11}, {0x22, 0x11, 0x11},
                                              {0x12, 0x11, 0x11}, {0x41, 0x11, 0x11}, {0x22, 0x12, 0x21},
                                              {0x31, 0x11, 0x11}, {0x42, 0x11, 0x11}};
    unsigned char t[600];
    size_t at = 2, k;
    b[0] = 0xFF;
    b[1] = 0xD8;
    t[0] = 0;
    for (k = 0; k < 64; k++) t[1 + k] = (unsigned char)(1 + (k * p[4]) % 40);
    at = seg(b, at, 0xDB, t, 65);
    for (int cls = 0; cls < 2; cls++)
        for (int id = 0; id < 2; id++) {
            memset(t, 0, 17);
            t[0] = (unsigned char)(cls << 4 | id);
            int nsym = cls ? 256 : 16;
            if (cls) { t[8] = 255; t[9] = 1; }
            else { t[4] = 15; t[5] = 1; }
            for (int s = 0; s < nsym; s++) t[17 + s] = (unsigned char)s;
            at = seg(b, at, 0xC4, t, 17 + (size_t)nsym);
        }
    *w = 1 + p[0] % 48;
    *h = 1 + p[1] % 48;
    *nc = p[2] & 1 ? 1 : 3;
    const unsigned char *c = combos[(p[2] >> 1) % 8];
    t[0] = 8;
    t[1] = 0, t[2] = (unsigned char)*h, t[3] = 0, t[4] = (unsigned char)*w, t[5] = (unsigned char)*nc;
    for (int i = 0; i < *nc; i++) {
        t[6 + 3 * i] = (unsigned char)(i + 1);
        t[7 + 3 * i] = c[i];
        t[8 + 3 * i] = 0;
    }
    at = seg(b, at, sof, t, 6 + 3 * (size_t)*nc);
    t[0] = 0;
    t[1] = (unsigned char)(p[3] % 5); /* restart interval 0..4 */
    return seg(b, at, 0xDD, t, 2);
}

/* SOS for components (all when comp < 0) with Ss, Se, Ah/Al, tables 0/0 or 1/1. */
static size_t sos(unsigned char *b, size_t at, int nc, int comp, int ss, int se, int ahal) {
    unsigned char t[16];
    int n = comp < 0 ? nc : 1;
    t[0] = (unsigned char)n;
    for (int i = 0; i < n; i++) {
        int id = comp < 0 ? i : comp;
        t[1 + 2 * i] = (unsigned char)(id + 1);
        t[2 + 2 * i] = id ? 0x11 : 0x00;
    }
    t[1 + 2 * n] = (unsigned char)ss;
    t[2 + 2 * n] = (unsigned char)se;
    t[3 + 2 * n] = (unsigned char)ahal;
    return seg(b, at, 0xDA, t, 4 + 2 * (size_t)n);
}

static void check(const unsigned char *p, size_t n, int w, int h) {
    Image img;
    int o = jpeg_exif_orientation(p, n);
    FUZZ_CHECK(o >= 0 && o <= 8);
    if (image_decode(p, n, "fuzz.jpg", &img) != 0) {
        fuzz_check_err();
        FUZZ_CHECK(img.data == NULL);
        return;
    }
    FUZZ_CHECK(img.data && (img.c == 1 || img.c == 3) && img.w >= 1 && img.h >= 1);
    if (w) FUZZ_CHECK(img.w == w && img.h == h);
    float x[3 * 5 * 7];
    image_to_input(&img, 5, 7, NULL, NULL, x);
    for (int i = 0; i < 3 * 5 * 7; i++) FUZZ_CHECK(x[i] >= 0.0f && x[i] <= 1.0f);
    image_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    int mode = d[0] % 3, w = 0, h = 0, nc;
    d++;
    n--;
    if (mode == 0) {
        check(d, n, 0, 0);
        return 0;
    }
    if (n < 5) return 0;
    unsigned char *b = malloc(2000 + 2 * n);
    size_t at = header(b, mode == 1 ? 0xC0 : 0xC2, d, &w, &h, &nc);
    d += 5;
    n -= 5;
    if (mode == 1) {
        at = sos(b, at, nc, -1, 0, 63, 0);
        memcpy(b + at, d, n);
        at += n;
    } else {
        while (n >= 5) {
            int comp = d[0] % 4 == 3 ? -1 : d[0] % 4 % nc, ss = d[1] % 64, se = d[2] % 64;
            size_t len = d[4] < n - 5 ? d[4] : n - 5;
            at = sos(b, at, nc, ss ? (comp < 0 ? 0 : comp) : comp, ss, ss ? se : 0, d[3]);
            memcpy(b + at, d + 5, len);
            at += len;
            d += 5 + len;
            n -= 5 + len;
        }
    }
    b[at++] = 0xFF;
    b[at++] = 0xD9;
    check(b, at, w, h);
    free(b);
    return 0;
}
