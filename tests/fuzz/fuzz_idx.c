/* fuzz_idx: gzip (io/zlib.h) and the IDX reader (io/idx.h). The first byte picks
 * how the rest is used, so that the fuzzer gets past the checksums:
 *   0  the bytes as an IDX file, as they are (gzip'd when they start with 1f 8b)
 *   1  the bytes as a raw DEFLATE stream: inflated here, and when that works,
 *      wrapped as a gzip member with the right CRC-32 and ISIZE (the stream's
 *      own bytes, not re-compressed) and read as a gzip'd IDX file
 *   2  the bytes as a plain IDX file, gzip'd by zlib_gzip at a level from the
 *      second byte: gunzip must give the bytes back, and the IDX result must be
 *      the same as for the plain bytes
 *   3  the bytes as gzip data (zlib_gunzip), limit 1 MiB
 */
#include "fuzz.h"
#include "io/idx.h"
#include "io/zlib.h"
#include <stdint.h>

static int parse(const unsigned char *p, size_t n, IdxU8 *out) {
    int r = idx_parse(p, n, "fuzz.idx", out);
    if (r) {
        fuzz_check_err();
        FUZZ_CHECK(out->data == NULL);
    } else {
        FUZZ_CHECK(out->ndim >= 1 && out->ndim <= 4);
        size_t m = 1;
        for (int k = 0; k < out->ndim; k++) m *= (size_t)out->dim[k];
        FUZZ_CHECK(m == out->numel);
    }
    return r;
}

static void le32(unsigned char *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    int mode = d[0] % 4;
    d++;
    n--;
    IdxU8 a, b;
    if (mode == 0) {
        if (!parse(d, n, &a)) idx_free(&a);
    } else if (mode == 1) {
        unsigned char *raw;
        size_t rlen, used = 0;
        if (zlib_inflate_raw(d, n, 1 << 20, &raw, &rlen, &used) != 0) {
            fuzz_check_err();
            return 0;
        }
        FUZZ_CHECK(used <= n && rlen <= 1 << 20);
        unsigned char *gz = malloc(used + 18);
        static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
        memcpy(gz, hdr, 10);
        memcpy(gz + 10, d, used);
        le32(gz + 10 + used, zlib_crc32(0, raw, rlen));
        le32(gz + 14 + used, (uint32_t)rlen);
        unsigned char *back;
        size_t blen;
        FUZZ_CHECK(zlib_gunzip(gz, used + 18, 1 << 20, &back, &blen) == 0);
        FUZZ_CHECK(blen == rlen && !memcmp(back, raw, rlen));
        free(back);
        if (!parse(gz, used + 18, &a)) idx_free(&a);
        free(gz);
        free(raw);
    } else if (mode == 2) {
        if (n < 1) return 0;
        int level = d[0] % 10;
        d++;
        n--;
        unsigned char *gz, *back;
        size_t glen, blen;
        zlib_gzip(d, n, level, &gz, &glen);
        FUZZ_CHECK(zlib_gunzip(gz, glen, n, &back, &blen) == 0);
        FUZZ_CHECK(blen == n && !memcmp(back, d, n));
        free(back);
        int ra = parse(d, n, &a), rb = parse(gz, glen, &b);
        FUZZ_CHECK(ra == rb);
        if (!ra) {
            FUZZ_CHECK(a.numel == b.numel && !memcmp(a.data, b.data, a.numel));
            idx_free(&a);
            idx_free(&b);
        }
        free(gz);
    } else {
        unsigned char *out;
        size_t olen;
        if (zlib_gunzip(d, n, 1 << 20, &out, &olen) == 0) free(out);
        else fuzz_check_err();
    }
    return 0;
}
