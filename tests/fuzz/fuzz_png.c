/* fuzz_png: the PNG decoder with its inflate (io/image.h, io/zlib.h). The first byte
 * picks how the rest is used, so that the fuzzer gets past the checksums:
 *   0  the bytes as a PNG file, as they are (checksum errors included)
 *   1  the bytes as a PNG file after every complete chunk's CRC is recomputed
 *      (exercises the chunk walk, IHDR checks and inflate on corrupt streams)
 *   2  a PNG built here: IHDR from the next 5 bytes (width, height, colour type
 *      and depth, interlace, palette size), the rest deflated as the image data
 *      (exercises unfiltering, bit-depth expansion, palettes and Adam7 on any
 *      filtered data, with valid CRCs and Adler-32)
 *   3  the bytes as a zlib stream (zlib_decompress), limit 1 MiB
 * A decoded image is written back with png_encode and decoded again: pixels must
 * survive the round trip. */
#include "fuzz.h"
#include "io/image.h"
#include "io/zlib.h"
#include <stdint.h>

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}
static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Append a chunk with a correct CRC to buf (large enough). */
static size_t chunk(unsigned char *buf, size_t at, const char *type, const unsigned char *d, size_t n) {
    put32(buf + at, (uint32_t)n);
    memcpy(buf + at + 4, type, 4);
    if (n) memcpy(buf + at + 8, d, n);
    put32(buf + at + 8 + n, zlib_crc32(0, buf + at + 4, n + 4));
    return at + 12 + n;
}

static void decode_and_check(const unsigned char *p, size_t n) {
    Image img, back;
    if (image_decode(p, n, "fuzz.png", &img) != 0) {
        fuzz_check_err();
        FUZZ_CHECK(img.data == NULL);
        return;
    }
    FUZZ_CHECK(img.w >= 1 && img.h >= 1 && img.c >= 1 && img.c <= 4 && img.data);
    unsigned char *enc;
    size_t elen;
    FUZZ_CHECK(png_encode(&img, &enc, &elen) == 0);
    FUZZ_CHECK(png_decode(enc, elen, "re-encoded", &back) == 0);
    FUZZ_CHECK(back.w == img.w && back.h == img.h && back.c == img.c);
    FUZZ_CHECK(!memcmp(back.data, img.data, (size_t)img.w * img.h * img.c));
    free(enc);
    image_free(&back);
    image_free(&img);
}

/* (colour type, bit depth) pairs: the 15 valid ones and two invalid ones */
static const unsigned char kinds[17][2] = {{0, 1}, {0, 2}, {0, 4}, {0, 8}, {0, 16}, {2, 8}, {2, 16}, {3, 1}, {3, 2},
                                           {3, 4}, {3, 8}, {4, 8}, {4, 16}, {6, 8}, {6, 16}, {2, 4}, {5, 8}};

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    int mode = d[0] % 4;
    d++;
    n--;
    if (mode == 0) {
        decode_and_check(d, n);
    } else if (mode == 1) {
        unsigned char *p = malloc(n ? n : 1);
        memcpy(p, d, n);
        for (size_t at = 8; n >= 12 && at <= n - 12;) {
            uint32_t len = get32(p + at);
            if (len > n - at - 12) break;
            put32(p + at + 8 + len, zlib_crc32(0, p + at + 4, (size_t)len + 4));
            at += 12 + (size_t)len;
        }
        decode_and_check(p, n);
        free(p);
    } else if (mode == 2) {
        if (n < 5) return 0;
        unsigned char ihdr[13], pal[768];
        int w = 1 + d[0] % 40, h = 1 + d[1] % 40, k = d[2] % 17, npal = d[4];
        put32(ihdr, (uint32_t)w);
        put32(ihdr + 4, (uint32_t)h);
        ihdr[8] = kinds[k][1];
        ihdr[9] = kinds[k][0];
        ihdr[10] = ihdr[11] = 0;
        ihdr[12] = d[3] % 3; /* 2: invalid interlace method */
        for (int i = 0; i < 768; i++) pal[i] = (unsigned char)(i * 7);
        unsigned char *z;
        size_t zlen;
        zlib_compress(d + 5, n - 5, d[3] / 3 % 10, &z, &zlen);
        unsigned char *png = malloc(8 + 25 + 780 + zlen + 24 + 12);
        static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        memcpy(png, sig, 8);
        size_t at = chunk(png, 8, "IHDR", ihdr, 13);
        if (npal) at = chunk(png, at, "PLTE", pal, 3 * (size_t)npal);
        size_t half = zlen / 2; /* two IDAT chunks */
        at = chunk(png, at, "IDAT", z, half);
        at = chunk(png, at, "IDAT", z + half, zlen - half);
        at = chunk(png, at, "IEND", NULL, 0);
        free(z);
        decode_and_check(png, at);
        free(png);
    } else {
        unsigned char *out;
        size_t olen;
        if (zlib_decompress(d, n, 1 << 20, &out, &olen) == 0) {
            FUZZ_CHECK(olen <= 1 << 20);
            free(out);
        } else {
            fuzz_check_err();
        }
    }
    return 0;
}
