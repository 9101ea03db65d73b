/* test_hardening: the io parsers against hostile files (issue 7).
 *   - every input a fuzz target once crashed on (tests/fuzz/regress/) now gives a
 *     clean one-line error naming the file;
 *   - every size a file header states is checked against the documented limits
 *     (TENSOR_MAXNUMEL, IMAGE_MAX_DIM / IMAGE_MAX_PIXELS, IDX_MAX_BYTES, header
 *     lengths) and against the real data before anything of that size is
 *     allocated: the headers here claim terabytes, so a missing check would end the
 *     test with "out of memory" rather than a message;
 *   - a tensor whose bytes a 32-bit size_t cannot count is refused, not wrapped;
 *   - file_read_all's limit is exact;
 *   - a process killed while writing leaves neither the output nor its temporary.
 * Not for: the formats' normal behaviour (test_io_formats.c, test_io_images.c). */
#include "core/err.h"
#include "core/tensor.h"
#include "io/file.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/json.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/zlib.h"
#include "test.h"
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* rc must be -1 with a one-line message containing name (when given) and want. */
static void refused(int rc, const char *name, const char *want, const char *file, int line) {
    const char *e = err_get();
    if (rc != -1) { test_fail(file, line, "accepted (rc %d), want an error with \"%s\"", rc, want); return; }
    if (strchr(e, '\n')) test_fail(file, line, "message has a newline: %s", e);
    if (name && !strstr(e, name)) test_fail(file, line, "message does not name %s: %s", name, e);
    if (!strstr(e, want)) test_fail(file, line, "message lacks \"%s\": %s", want, e);
}
#define REFUSED(rc, name, want) refused((rc), (name), (want), __FILE__, __LINE__)

static const char *tmp_write(const char *name, const void *d, size_t n) {
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0) {
        test_fail(__FILE__, __LINE__, "cannot write %s", p);
        return p;
    }
    return p;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* ---- fuzz regressions ---------------------------------------------------------- */

static const char *regress(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "tests/fuzz/regress/%s", name);
    return p;
}

/* fuzz_png: an empty IDAT chunk before any other made png_decode compute
 * NULL + 0 (undefined behaviour, UBSan); the file is then cut inside a chunk. */
TEST(hard_regress_png_empty_idat) {
    const char *p = regress("png-empty-idat.png");
    Image im;
    REFUSED(image_load(p, &im), p, "PNG");
    CHECK(im.data == NULL);
    /* a valid image with an empty IDAT before its data still decodes */
    unsigned char *enc;
    size_t n;
    unsigned char px[6] = {1, 2, 3, 4, 5, 6};
    Image src = {2, 1, 3, px};
    REQUIRE(png_encode(&src, &enc, &n) == 0);
    unsigned char *b = xmalloc(n + 12);
    size_t at = 8 + 25; /* after the signature and IHDR */
    memcpy(b, enc, at);
    put_be32(b + at, 0);
    memcpy(b + at + 4, "IDAT", 4);
    put_be32(b + at + 8, zlib_crc32(0, (const unsigned char *)"IDAT", 4));
    memcpy(b + at + 12, enc + at, n - at);
    CHECKF(png_decode(b, n + 12, "empty-idat", &im) == 0, "%s", err_get());
    CHECK(im.w == 2 && im.h == 1 && im.c == 3 && im.data && !memcmp(im.data, px, 6));
    image_free(&im);
    free(b);
    free(enc);
}

/* ---- sizes and limits ---------------------------------------------------------- */

TEST(hard_file_read_all_limit_is_exact) {
    unsigned char d[300];
    for (int i = 0; i < 300; i++) d[i] = (unsigned char)i;
    const char *p = tmp_write("limit.bin", d, sizeof d);
    unsigned char *b;
    size_t n;
    REQUIRE(file_read_all(p, 300, &b, &n) == 0); /* exactly at the limit */
    CHECK(n == 300 && !memcmp(b, d, 300));
    free(b);
    REFUSED(file_read_all(p, 299, &b, &n), p, "limit of 299 bytes"); /* a limit under 64 KiB holds */
    REFUSED(file_read_all(p, 0, &b, &n), p, "limit");
    const char *e = tmp_write("empty.bin", d, 0);
    REQUIRE(file_read_all(e, 0, &b, &n) == 0);
    CHECK(n == 0);
    free(b);
    REFUSED(file_read_all(test_tmpdir(), 100, &b, &n), test_tmpdir(), "read error");
}

/* A safetensors file with this header and `data` data bytes. */
static const char *st_file(const char *name, const char *hdr, size_t data) {
    size_t h = strlen(hdr), n = 8 + h + data;
    unsigned char *b = xcalloc(n, 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)h >> (8 * k));
    memcpy(b + 8, hdr, h);
    const char *p = tmp_write(name, b, n);
    free(b);
    return p;
}

TEST(hard_safetensors_sizes) {
    StFile f;
    /* 2^32 elements: over TENSOR_MAXNUMEL, refused before the offsets are looked at */
    const char *p = st_file("big.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[65536,65536],\"data_offsets\":[0,16]}}", 16);
    REFUSED(st_read(p, &f), p, "more than 2147483647 elements");
    /* a product that overflows int64 */
    p = st_file("ovf.st", "{\"a\":{\"dtype\":\"I64\",\"shape\":[4294967296,4294967296,4294967296],"
                          "\"data_offsets\":[0,8]}}", 8);
    REFUSED(st_read(p, &f), p, "elements");
    /* the largest allowed count, but the file does not hold it: refused before allocating 8 GiB */
    p = st_file("lie.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647],\"data_offsets\":[0,8589934588]}}", 8);
    REFUSED(st_read(p, &f), p, "out of range");
    /* offsets that wrap around */
    p = st_file("wrap.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[9223372036854775807,-9223372036854775801]}}", 8);
    REFUSED(st_read(p, &f), p, "out of range");
    /* a zero dimension beside a huge one holds nothing and is fine */
    p = st_file("zero.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,9223372036854775807],\"data_offsets\":[0,0]}}", 0);
    CHECKF(st_read(p, &f) == 0, "%s", err_get());
    CHECK(f.n == 1 && f.t[0].numel == 0);
    st_free(&f);
    /* more than 8 dimensions */
    p = st_file("dims.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
    REFUSED(st_read(p, &f), p, "at most 8");
    /* header length: 2^64 - 1 */
    unsigned char b[16];
    memset(b, 0xff, 8);
    memcpy(b + 8, "{}      ", 8);
    p = tmp_write("hlen.st", b, 16);
    REFUSED(st_read(p, &f), p, "over the limit");
}

/* An .npy v1.0 file with this header dict and `data` data bytes. */
static const char *npy_file(const char *name, const char *dict, size_t data) {
    char hdr[256];
    size_t h = (size_t)snprintf(hdr, sizeof hdr, "%s", dict);
    while ((10 + h + 1) % 64) hdr[h++] = ' ';
    hdr[h++] = '\n';
    size_t n = 10 + h + data;
    unsigned char *b = xcalloc(n, 1);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(h & 255);
    b[9] = (unsigned char)(h >> 8);
    memcpy(b + 10, hdr, h);
    const char *p = tmp_write(name, b, n);
    free(b);
    return p;
}

TEST(hard_npy_sizes) {
    Tensor t;
    const char *p = npy_file("big.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536), }", 16);
    REFUSED(npy_read(p, &t), p, "more than 2147483647 elements");
    p = npy_file("ovf.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 16);
    REFUSED(npy_read(p, &t), p, "elements");
    p = npy_file("digits.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 16);
    REFUSED(npy_read(p, &t), p, "too large");
    /* allowed count, data missing: refused before allocating 8 GiB */
    p = npy_file("lie.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647,), }", 16);
    REFUSED(npy_read(p, &t), p, "truncated");
    CHECK(t.data == NULL);
    p = npy_file("dims.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4);
    REFUSED(npy_read(p, &t), p, "dimensions");
    /* a zero dimension beside a huge one: an empty array */
    p = npy_file("zero.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 9223372036854775000), }", 0);
    CHECKF(npy_read(p, &t) == 0, "%s", err_get());
    CHECK(t.ndim == 2 && tensor_numel(&t) == 0);
    tensor_free(&t);
}

/* Files that really hold a tensor of 2^30 + 1 floats (sparse: no disk is used), whose
 * 4 GiB + 4 bytes a 32-bit size_t cannot count (it wraps to 4): refused there with a
 * message, not read into a 4-byte buffer. A 64-bit machine can address them: nothing
 * to check there (it would only read 4 GiB of zeros). */
TEST(hard_tensor_bytes_beyond_size_t) {
    if (SIZE_MAX > 0xffffffffu) {
        printf("    64-bit size_t: nothing to check\n");
        return;
    }
    REQUIRE(sizeof(off_t) >= 8); /* the Makefile's -D_FILE_OFFSET_BITS=64 */
    const off_t data = ((off_t)1 << 32) + 4;
    StFile f;
    const char *p = st_file("big.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1073741825],\"data_offsets\":[0,4294967300]}}", 0);
    struct stat sb;
    REQUIRE(stat(p, &sb) == 0 && truncate(p, sb.st_size + data) == 0);
    REFUSED(st_read(p, &f), p, "more than this machine can address");
    Tensor t;
    p = npy_file("big.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1073741825,), }", 0);
    REQUIRE(stat(p, &sb) == 0 && truncate(p, sb.st_size + data) == 0);
    REFUSED(npy_read(p, &t), p, "more than this machine can address");
}

TEST(hard_idx_sizes) {
    IdxU8 a;
    unsigned char b[32] = {0, 0, 8, 3};
    /* 65536^3 bytes: over IDX_MAX_BYTES */
    put_be32(b + 4, 65536); put_be32(b + 8, 65536); put_be32(b + 12, 65536);
    REFUSED(idx_parse(b, 20, "big.idx", &a), "big.idx", "too large");
    /* a size over INT_MAX */
    put_be32(b + 4, 0x80000000u); put_be32(b + 8, 1); put_be32(b + 12, 1);
    REFUSED(idx_parse(b, 20, "int.idx", &a), "int.idx", "too large");
    /* within the limit but the data is not there: nothing of that size allocated */
    put_be32(b + 4, 1 << 20); put_be32(b + 8, 1 << 10); put_be32(b + 12, 1);
    REFUSED(idx_parse(b, 20, "lie.idx", &a), "lie.idx", "size mismatch");
    CHECK(a.data == NULL);
    /* a gzip'd file whose ISIZE lies: the size is never trusted, the mismatch is refused */
    unsigned char plain[16] = {0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4};
    unsigned char *gz;
    size_t gn;
    zlib_gzip(plain, 12, 6, &gz, &gn);
    gz[gn - 1] = 0xff; /* ISIZE = 0xff00000c */
    REFUSED(idx_parse(gz, gn, "isize.idx.gz", &a), "isize.idx.gz", "length mismatch");
    free(gz);
}

TEST(hard_image_sizes) {
    Image im;
    /* PNM: a side over IMAGE_MAX_DIM, an area over IMAGE_MAX_PIXELS, absurd numbers */
    const char *s1 = "P5 16385 1 255\n", *s2 = "P6 16384 16384 255\n", *s3 = "P5 99999999999 1 255\n";
    REFUSED(pnm_decode((const unsigned char *)s1, strlen(s1), "a.pgm", &im), "a.pgm", "limit");
    REFUSED(pnm_decode((const unsigned char *)s2, strlen(s2), "b.ppm", &im), "b.ppm", "limit");
    REFUSED(pnm_decode((const unsigned char *)s3, strlen(s3), "c.pgm", &im), "c.pgm", "header");
    /* PNG: IHDR of 16384 x 16384 (each side allowed, the area not), and of 2^31 - 1 wide */
    unsigned char *enc;
    size_t n;
    unsigned char px[3] = {0, 0, 0};
    Image one = {1, 1, 3, px};
    REQUIRE(png_encode(&one, &enc, &n) == 0);
    uint32_t sizes[3][2] = {{16384, 16384}, {0x7fffffffu, 1}, {1, 0}};
    const char *want[3] = {"limit", "limit", "zero"};
    for (int k = 0; k < 3; k++) {
        put_be32(enc + 16, sizes[k][0]);
        put_be32(enc + 20, sizes[k][1]);
        put_be32(enc + 29, zlib_crc32(0, enc + 12, 17));
        REFUSED(png_decode(enc, n, "big.png", &im), "big.png", want[k]);
    }
    free(enc);
}

/* An 8-bit RGB PNG of w x h whose image data is zlib(raw[0..n)), whatever n is. */
static size_t build_png(int w, int h, const unsigned char *raw, size_t n, unsigned char **out) {
    unsigned char *z;
    size_t zn;
    zlib_compress(raw, n, 6, &z, &zn);
    unsigned char *b = xmalloc(8 + 25 + 12 + zn + 12);
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    size_t at = 8;
    unsigned char ihdr[13] = {0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0};
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    const char *type[3] = {"IHDR", "IDAT", "IEND"};
    const unsigned char *data[3] = {ihdr, z, NULL};
    size_t len[3] = {13, zn, 0};
    for (int c = 0; c < 3; c++) {
        put_be32(b + at, (uint32_t)len[c]);
        memcpy(b + at + 4, type[c], 4);
        if (len[c]) memcpy(b + at + 8, data[c], len[c]);
        put_be32(b + at + 8 + len[c], zlib_crc32(0, b + at + 4, len[c] + 4));
        at += 12 + len[c];
    }
    free(z);
    *out = b;
    return at;
}

TEST(hard_inflate_output_bounded) {
    /* 64 MiB of zeros deflate to ~64 KiB: every decoder stops at its limit */
    size_t big = (size_t)64 << 20;
    unsigned char *zeros = xcalloc(big, 1), *z, *out;
    size_t zn, on;
    zlib_compress(zeros, big, 9, &z, &zn);
    free(zeros);
    CHECK(zn < big / 500);
    REFUSED(zlib_decompress(z, zn, 1 << 20, &out, &on), NULL, "limit");
    free(z);
    /* a PNG whose image data inflates to more, or less, than its IHDR needs */
    unsigned char raw[100] = {0};
    Image im;
    size_t need = 1 + 4 * 3; /* one row of 4 RGB pixels and its filter byte */
    size_t lens[2] = {sizeof raw, need - 1};
    const char *want[2] = {"limit", "too short"};
    for (int k = 0; k < 2; k++) {
        unsigned char *png;
        size_t pn = build_png(4, 1, raw, lens[k], &png);
        REFUSED(png_decode(png, pn, "odd.png", &im), "odd.png", want[k]);
        free(png);
    }
    unsigned char *png;
    size_t pn = build_png(4, 1, raw, need, &png);
    CHECKF(png_decode(png, pn, "ok.png", &im) == 0, "%s", err_get());
    image_free(&im);
    free(png);
}

/* ---- interrupted writes ---------------------------------------------------------- */

static int count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

TEST(hard_interrupted_write_leaves_nothing) {
    char dir[512], a[600], b[600];
    snprintf(dir, sizeof dir, "%s/kill", test_tmpdir());
    REQUIRE(file_mkdirs(dir) == 0);
    snprintf(a, sizeof a, "%s/out_a.npy", dir);
    snprintf(b, sizeof b, "%s/out_b.png", dir);
    int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int k = 0; k < 3; k++) {
        /* a signal ignored when the tests started (SIGINT and SIGHUP in a background job)
           stays ignored in gad as in any program, so there is no cleanup of it to test */
        struct sigaction was;
        if (sigaction(sigs[k], NULL, &was) == 0 && was.sa_handler == SIG_IGN) continue;
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) { /* two outputs half written, then the signal */
            AtomicFile fa, fb;
            if (afile_open(&fa, a) || afile_open(&fb, b)) _exit(3);
            fputs("half of an output", fa.f);
            fputs("the other half", fb.f);
            fflush(fa.f);
            fflush(fb.f);
            if (count_prefix(dir, "out_") != 2) _exit(4); /* the temporaries do exist */
            kill(getpid(), sigs[k]);
            _exit(5);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == sigs[k], "signal %d: child status 0x%x", sigs[k], st);
        CHECKF(count_prefix(dir, "out_") == 0, "signal %d: %d files left in %s", sigs[k], count_prefix(dir, "out_"),
               dir);
    }
    /* a commit still works, and leaves only the output */
    AtomicFile af;
    REQUIRE(afile_open(&af, a) == 0);
    fputs("whole", af.f);
    REQUIRE(afile_commit(&af) == 0);
    CHECK(count_prefix(dir, "out_") == 1 && file_exists(a));
}
