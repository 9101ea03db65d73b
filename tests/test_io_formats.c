/* test_io_formats: JSON, safetensors and npy. Files written by numpy / tools/stio.py
 * (tests/fixtures/io, made by tools/fixtures/gen_fixtures_io.py) must read back with exact
 * values; our writers must round-trip and match numpy's bytes; and every corrupt
 * input (every truncation of a valid file, bad dtypes, bad offsets, malformed headers)
 * must be refused with a one-line message naming the file, with nothing left behind.
 * Leaks are checked by `make asan T=io_`. */
#include "test.h"
#include "core/err.h"
#include "core/tensor.h"
#include "io/file.h"
#include "io/json.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include <dirent.h>
#include <float.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- helpers */

/* Number of entries in a directory besides . and .. */
static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* The rules for a refusal: -1, one non-empty line naming the file, containing `want`. */
static int refused_ok(int rc, const char *path, const char *want, const char *what, const char *file, int line) {
    const char *m = err_get();
    int ok = rc == -1 && m[0] && strstr(m, path) && !strchr(m, '\n') && (!want || strstr(m, want));
    if (!ok) test_fail(file, line, "%s: rc=%d message \"%s\" (want path and \"%s\")", what, rc, m, want ? want : "");
    return ok;
}
#define REFUSED(rc, path, want, what) refused_ok(rc, path, want, what, __FILE__, __LINE__)

static uint32_t fbits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

/* Same formula as tools/fixtures/gen_fixtures_io.py: exact in float32. */
static float ramp(long i) { return (float)((double)((i * 37) % 101 - 50) / 8.0); }

/* The special values of the fixtures, NaN at index 6. */
static void special(float *v) {
    float s[8] = {INFINITY, -INFINITY, -0.0f, 0x1p-149f, FLT_MAX, 1.0f / 3.0f, NAN, 16777216.0f};
    memcpy(v, s, sizeof s);
}

static void check_special(const float *got, const char *what) {
    float want[8];
    special(want);
    for (int i = 0; i < 8; i++) {
        if (i == 6) CHECKF(isnan(got[i]), "%s[6] = %g, want NaN", what, got[i]);
        else CHECKF(fbits(got[i]) == fbits(want[i]), "%s[%d] = %.9g (0x%08x), want %.9g", what, i, got[i],
                    (unsigned)fbits(got[i]), want[i]);
    }
}

/* The Python-side checksum: sum of x[i] * (i % 7 + 1) in double, in order. */
static double checksum(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)(i % 7 + 1);
    return s;
}

/* A safetensors file from a header text and data bytes. */
static const char *make_st(const char *name, const char *header, const void *data, size_t dlen) {
    const char *path = test_path(name);
    size_t hl = strlen(header);
    unsigned char *b = malloc(8 + hl + dlen + 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(b + 8, header, hl);
    if (dlen) memcpy(b + 8 + hl, data, dlen);
    test_spit(path, b, 8 + hl + dlen);
    free(b);
    return path;
}

/* A v1.0 npy file from a header text (padding added) and the first dlen bytes of the
 * floats v, little-endian whatever the host's byte order (as '<f4' says). */
static const char *make_npy(const char *name, const char *header, const float *v, size_t dlen) {
    const char *path = test_path(name);
    char h[512];
    size_t n = (size_t)snprintf(h, sizeof h, "%s", header);
    while ((10 + n + 1) % 64) h[n++] = ' ';
    h[n++] = '\n';
    unsigned char *b = malloc(10 + n + dlen + 1);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(n & 255);
    b[9] = (unsigned char)(n >> 8);
    memcpy(b + 10, h, n);
    for (size_t k = 0; k < dlen; k++) {
        uint32_t u;
        memcpy(&u, &v[k / 4], 4);
        b[10 + n + k] = (unsigned char)(u >> (8 * (k % 4)));
    }
    test_spit(path, b, 10 + n + dlen);
    free(b);
    return path;
}

/* ---------------------------------------------------------------- JSON */

TEST(io_json_values) {
    const char *doc = " {\"a\": [1, -0, 2.5e1, -9223372036854775808, 9223372036854775807, 9223372036854775808, 1E2],"
                      " \"s\": \"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\u20AC \\ud83d\\ude00 \xc3\xa9\","
                      " \"t\": true, \"f\": false, \"n\": null, \"o\": {}, \"e\": []} \n";
    Json j;
    REQUIRE(json_parse(doc, strlen(doc), &j) == 0);
    REQUIRE(j.type == JSON_OBJECT && j.n == 7);
    const Json *a = json_get(&j, "a");
    REQUIRE(a && a->type == JSON_ARRAY && a->n == 7);
    CHECK(a->kid[0].is_int && a->kid[0].ival == 1);
    CHECK(a->kid[1].is_int && a->kid[1].ival == 0);
    CHECK(!a->kid[2].is_int && a->kid[2].num == 25.0);
    CHECK(a->kid[3].is_int && a->kid[3].ival == INT64_MIN);
    CHECK(a->kid[4].is_int && a->kid[4].ival == INT64_MAX);
    CHECK(!a->kid[5].is_int && a->kid[5].num == 9223372036854775808.0);
    CHECK(!a->kid[6].is_int && a->kid[6].num == 100.0);
    CHECK(a->kid[2].pos == 15); /* byte offsets of values */
    const Json *s = json_get(&j, "s");
    REQUIRE(s && s->type == JSON_STRING);
    const char *want = "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9";
    CHECKF(strcmp(s->str, want) == 0, "decoded string \"%s\"", s->str);
    CHECK(json_get(&j, "t")->type == JSON_BOOL && json_get(&j, "t")->boolean == 1);
    CHECK(json_get(&j, "f")->type == JSON_BOOL && json_get(&j, "f")->boolean == 0);
    CHECK(json_get(&j, "n")->type == JSON_NULL);
    CHECK(json_get(&j, "o")->type == JSON_OBJECT && json_get(&j, "o")->n == 0);
    CHECK(json_get(&j, "e")->type == JSON_ARRAY && json_get(&j, "e")->n == 0);
    CHECK(json_get(&j, "missing") == NULL && json_get(a, "a") == NULL);
    json_free(&j);
    CHECK(j.type == JSON_NULL && j.n == 0);

    /* nesting up to the limit is fine, one more is refused */
    char deep[2 * JSON_MAX_DEPTH + 4];
    for (int d = JSON_MAX_DEPTH; d <= JSON_MAX_DEPTH + 1; d++) {
        int n = 0;
        for (int k = 0; k < d; k++) deep[n++] = '[';
        for (int k = 0; k < d; k++) deep[n++] = ']';
        int rc = json_parse(deep, (size_t)n, &j);
        CHECKF(rc == (d <= JSON_MAX_DEPTH ? 0 : -1), "depth %d: rc %d (%s)", d, rc, err_get());
        json_free(&j);
    }
}

TEST(io_json_rejects) {
    static const struct { const char *doc; const char *want; } bad[] = {
        {"", "end of input"}, {"   ", "end of input"}, {"{", "byte 1"}, {"[1,]", "byte 3"},
        {"{\"a\":1,}", "string key"}, {"01", "leading zero"}, {"1.", "digit"}, {".5", "'.'"},
        {"-", "digit"}, {"+1", "'+'"}, {"NaN", "'N'"}, {"Infinity", "'I'"}, {"'a'", "'''"},
        {"\"\\x\"", "bad escape"}, {"\"\\u12\"", "hex"}, {"\"\\ud800\"", "unpaired high"},
        {"\"\\ud800\\u0041\"", "unpaired high"}, {"\"\\udc00\"", "unpaired low"}, {"\"\\u0000\"", "\\u0000"},
        {"\"a\tb\"", "control character"}, {"\"\xff\"", "UTF-8"}, {"\"\xc0\xaf\"", "UTF-8"},
        {"\"\xed\xa0\x80\"", "UTF-8"}, {"\"\xe2\x82\"", "UTF-8"}, {"{\"a\":1,\"b\":2,\"a\":3}", "duplicate key \"a\""},
        {"[1] 2", "after the value"}, {"tru", "'t'"}, {"nul", "'n'"}, {"1e999", "out of range"},
        {"{1:2}", "string key"}, {"[1 2]", "expected ','"}, {"{\"a\" 1}", "':'"}, {"\"abc", "unterminated"},
        {"[1, 2, x]", "byte 7"}, {"1e", "exponent"}, {"[\"a\\", "unterminated"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Json j;
        err_set("%s", "");
        int rc = json_parse(bad[i].doc, strlen(bad[i].doc), &j);
        CHECKF(rc == -1 && strstr(err_get(), "invalid JSON at byte") && strstr(err_get(), bad[i].want),
               "'%s': rc %d, message \"%s\", want \"%s\"", bad[i].doc, rc, err_get(), bad[i].want);
        CHECK(j.type == JSON_NULL && j.n == 0 && !j.kid && !j.str);
        json_free(&j);
    }
    /* every proper prefix of a valid object is invalid, and never crashes */
    const char *doc = "{\"k\": [1, 2.5, \"s\\u00e9\\ud83d\\ude00\", {\"x\": null}], \"t\": true}";
    for (size_t n = 0; n < strlen(doc); n++) {
        Json j;
        CHECKF(json_parse(doc, n, &j) == -1, "prefix of %zu bytes accepted", n);
        json_free(&j);
    }
}

TEST(io_json_writers) {
    const char *strs[] = {"", "plain", "q\"b\\s/", "\x01\x02\x1f\x7f ctl \n\r\t\b\f", "\xc3\xa9\xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        char *q = json_quote(strs[i]);
        Json j;
        REQUIRE(json_parse(q, strlen(q), &j) == 0);
        CHECKF(j.type == JSON_STRING && strcmp(j.str, strs[i]) == 0, "round trip of %s", q);
        json_free(&j);
        free(q);
    }
    /* json_write_string / json_write_number through a file */
    const char *path = test_path("w.json");
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    double nums[] = {0.1, -0.0, 1e300, 5e-324, 123456789.0, 1.0 / 3.0, -2.5};
    fputs("[", f);
    json_write_string(f, strs[3]);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) { fputs(",", f); json_write_number(f, nums[i]); }
    fputs(",", f);
    json_write_number(f, NAN);
    fputs(",", f);
    json_write_number(f, -INFINITY);
    fputs("]", f);
    fclose(f);
    size_t len;
    unsigned char *d = test_slurp(path, &len);
    REQUIRE(d);
    Json j;
    REQUIRE(json_parse((const char *)d, len, &j) == 0);
    REQUIRE(j.type == JSON_ARRAY && j.n == 10);
    CHECK(strcmp(j.kid[0].str, strs[3]) == 0);
    for (int i = 0; i < 7; i++)
        CHECKF(j.kid[1 + i].num == nums[i] && signbit(j.kid[1 + i].num) == signbit(nums[i]), "number %d", i);
    CHECK(j.kid[8].type == JSON_NULL && j.kid[9].type == JSON_NULL);
    CHECKF(strstr((const char *)d, "0.1,") != NULL, "0.1 written shortest: %.*s", (int)len, d);
    json_free(&j);
    free(d);
}

/* ---------------------------------------------------------------- safetensors: good files */

TEST(io_st_reads_stio_fixture) {
    StFile f;
    REQUIRE(st_read(fixture("io/synthetic.safetensors"), &f) == 0);
    REQUIRE(f.n == 6);
    const char *order[] = {"ramp", "scalar", "special", "empty", "ids", "bn.num_batches_tracked"};
    for (int i = 0; i < 6; i++) CHECKF(strcmp(f.t[i].name, order[i]) == 0, "tensor %d is %s", i, f.t[i].name);

    const StTensor *t = st_find(&f, "ramp");
    REQUIRE(t && t->dtype == ST_F32 && t->ndim == 3 && t->dim[0] == 2 && t->dim[1] == 3 && t->dim[2] == 4);
    REQUIRE(t->numel == 24 && t->f32 && !t->i64);
    int bad = 0;
    for (long i = 0; i < 24; i++) bad += fbits(t->f32[i]) != fbits(ramp(i));
    CHECKF(bad == 0, "%d ramp values differ", bad);

    t = st_find(&f, "scalar");
    REQUIRE(t && t->ndim == 0 && t->numel == 1);
    CHECK(fbits(t->f32[0]) == fbits(0.1f));
    t = st_find(&f, "special");
    REQUIRE(t && t->numel == 8);
    check_special(t->f32, "special");
    t = st_find(&f, "empty");
    REQUIRE(t && t->dtype == ST_F32 && t->ndim == 2 && t->dim[0] == 0 && t->dim[1] == 3 && t->numel == 0);
    t = st_find(&f, "ids");
    REQUIRE(t && t->dtype == ST_I64 && t->numel == 5 && t->i64 && !t->f32);
    CHECK(t->i64[0] == 0 && t->i64[1] == -1 && t->i64[2] == ((int64_t)1 << 40) + 5);
    CHECK(t->i64[3] == INT64_MAX && t->i64[4] == INT64_MIN);
    t = st_find(&f, "bn.num_batches_tracked");
    REQUIRE(t && t->dtype == ST_I64 && t->ndim == 0 && t->numel == 1);
    CHECK(t->i64[0] == 1234567);
    CHECK(st_find(&f, "nope") == NULL);

    /* metadata: escapes decoded, and the class list is itself JSON */
    REQUIRE(f.meta.n == 3);
    CHECK(strcmp(meta_get(&f.meta, "input_size"), "3x32x32") == 0);
    CHECK(strcmp(meta_get(&f.meta, "note"), "quote \" backslash \\ newline \n tab \t") == 0);
    CHECK(meta_get(&f.meta, "absent") == NULL);
    const char *cl = meta_get(&f.meta, "classes");
    REQUIRE(cl);
    Json j;
    REQUIRE(json_parse(cl, strlen(cl), &j) == 0);
    REQUIRE(j.type == JSON_ARRAY && j.n == 3);
    CHECK(strcmp(j.kid[0].str, "cat") == 0);
    CHECK(strcmp(j.kid[1].str, "d\xc3\xb6g") == 0);
    CHECK(strcmp(j.kid[2].str, "\xf0\x9f\x90\xb1") == 0);
    json_free(&j);
    st_free(&f);
    CHECK(f.n == 0 && f.t == NULL && f.meta.n == 0);
}

TEST(io_st_reads_torch_state_dict) {
    StFile f;
    REQUIRE(st_read(fixture("io/torch_small.safetensors"), &f) == 0);
    REQUIRE(f.n == 9);
    int checked = 0;
    for (int i = 0; i < f.n; i++) {
        const StTensor *t = &f.t[i];
        if (t->dtype != ST_F32) continue;
        char key[128];
        snprintf(key, sizeof key, "check:%s", t->name);
        const char *want = meta_get(&f.meta, key);
        REQUIRE(want);
        double w = strtod(want, NULL), got = checksum(t->f32, t->numel);
        CHECKF(got == w, "%s: checksum %a, python says %s", t->name, got, want);
        checked++;
    }
    CHECK(checked == 8);
    const StTensor *nb = st_find(&f, "1.num_batches_tracked");
    REQUIRE(nb && nb->dtype == ST_I64 && nb->ndim == 0 && nb->i64[0] == 1);
    const StTensor *w = st_find(&f, "0.weight");
    REQUIRE(w && w->ndim == 4 && w->dim[0] == 4 && w->dim[1] == 3 && w->dim[2] == 3 && w->dim[3] == 3);
    /* the same tensor through numpy's .npy: bit-identical */
    Tensor t;
    REQUIRE(npy_read(fixture("io/torch_conv_weight.npy"), &t) == 0);
    REQUIRE(t.ndim == 4 && tensor_numel(&t) == w->numel);
    CHECK(memcmp(t.data, w->f32, w->numel * 4) == 0);
    tensor_free(&t);
    st_free(&f);
}

TEST(io_st_roundtrip_and_bytes) {
    /* re-writing the stio fixture gives the same bytes (same header layout as stio) */
    StFile f, g;
    REQUIRE(st_read(fixture("io/synthetic.safetensors"), &f) == 0);
    const char *p1 = test_path("re.safetensors");
    REQUIRE(st_write(p1, &f) == 0);
    size_t la, lb;
    unsigned char *a = test_slurp(fixture("io/synthetic.safetensors"), &la), *b = test_slurp(p1, &lb);
    REQUIRE(a && b);
    CHECKF(la == lb && memcmp(a, b, la) == 0, "rewritten file differs (%zu vs %zu bytes)", la, lb);
    free(a);
    free(b);
    st_free(&f);

    /* built in memory: odd sizes, UTF-8 and control characters in names and metadata */
    memset(&f, 0, sizeof f);
    float x[7];
    for (int i = 0; i < 7; i++) x[i] = ramp(i * 3 + 1);
    int64_t d3[3] = {1, 7, 1}, d0[1] = {0}, d1[1] = {3};
    int64_t iv[3] = {-5, 0, INT64_MAX};
    st_add_f32(&f, "w\xc3\xa9ight \"q\"", 3, d3, x);
    st_add_i64(&f, "n", 0, NULL, iv + 2);
    st_add_f32(&f, "empty", 1, d0, NULL);
    st_add_i64(&f, "iv", 1, d1, iv);
    meta_set(&f.meta, "classes", "[\"a\",\"b\\u00e9\"]");
    meta_set(&f.meta, "ctl", "line1\nline2\t\x01");
    meta_set(&f.meta, "classes", "[\"x\"]"); /* replaces */
    REQUIRE(f.meta.n == 2);
    const char *p2 = test_path("mem.safetensors");
    REQUIRE(st_write(p2, &f) == 0);
    REQUIRE(st_read(p2, &g) == 0);
    REQUIRE(g.n == 4);
    for (int i = 0; i < 4; i++) {
        CHECK(strcmp(f.t[i].name, g.t[i].name) == 0);
        CHECK(f.t[i].dtype == g.t[i].dtype && f.t[i].ndim == g.t[i].ndim && f.t[i].numel == g.t[i].numel);
        for (int k = 0; k < f.t[i].ndim; k++) CHECK(f.t[i].dim[k] == g.t[i].dim[k]);
        size_t bytes = f.t[i].numel * (f.t[i].dtype == ST_F32 ? 4 : 8);
        if (bytes) CHECK(memcmp(f.t[i].dtype == ST_F32 ? (void *)f.t[i].f32 : (void *)f.t[i].i64,
                                g.t[i].dtype == ST_F32 ? (void *)g.t[i].f32 : (void *)g.t[i].i64, bytes) == 0);
    }
    CHECK(strcmp(meta_get(&g.meta, "classes"), "[\"x\"]") == 0);
    CHECK(strcmp(meta_get(&g.meta, "ctl"), "line1\nline2\t\x01") == 0);
    /* layout: header length a multiple of 8, starts with '{' */
    a = test_slurp(p2, &la);
    REQUIRE(a && la > 8);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = hl << 8 | a[k];
    CHECKF(hl % 8 == 0 && a[8] == '{', "header length %llu", (unsigned long long)hl);
    /* data: LE bytes of the first tensor right after the header */
    uint32_t u0 = (uint32_t)a[8 + hl] | (uint32_t)a[9 + hl] << 8 | (uint32_t)a[10 + hl] << 16 |
                  (uint32_t)a[11 + hl] << 24;
    CHECK(u0 == fbits(x[0]));
    free(a);
    /* copies of metadata are deep */
    Meta m;
    meta_copy(&m, &g.meta);
    meta_set(&g.meta, "ctl", "changed");
    CHECK(strcmp(meta_get(&m, "ctl"), "line1\nline2\t\x01") == 0);
    meta_free(&m);
    st_free(&g);
    st_free(&f);

    /* an empty file round-trips */
    memset(&f, 0, sizeof f);
    const char *p3 = test_path("none.safetensors");
    REQUIRE(st_write(p3, &f) == 0);
    REQUIRE(st_read(p3, &g) == 0);
    CHECK(g.n == 0 && g.meta.n == 0);
    st_free(&g);
}

/* ---------------------------------------------------------------- safetensors: refusals */

TEST(io_st_every_truncation_refused) {
    size_t len;
    unsigned char *d = test_slurp(fixture("io/synthetic.safetensors"), &len);
    REQUIRE(d && len > 100);
    const char *path = test_path("cut.safetensors");
    int bad = 0;
    for (size_t n = 0; n < len; n++) {
        test_spit(path, d, n);
        StFile f;
        int rc = st_read(path, &f);
        if (!REFUSED(rc, path, NULL, "truncated safetensors")) { if (++bad > 5) break; }
        CHECK(f.n == 0 && f.t == NULL && f.meta.n == 0);
        if (rc == 0) st_free(&f);
    }
    /* one byte too many is refused too */
    unsigned char *e = malloc(len + 1);
    memcpy(e, d, len);
    e[len] = 0;
    test_spit(path, e, len + 1);
    StFile f;
    REFUSED(st_read(path, &f), path, "after the last tensor", "extra byte");
    free(e);
    free(d);
}

TEST(io_st_corrupt_inputs_refused) {
    unsigned char data[64];
    for (int i = 0; i < 64; i++) data[i] = (unsigned char)i;
    static const struct { const char *header; size_t dlen; const char *want; } cases[] = {
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "dtype F16"},
        {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "dtype BF16"},
        {"{\"a\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype I32"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "dtype F64"},
        {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype f32"},
        {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype must be a string"},
        /* overlap, gap, out of range, size mismatch */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "out of range"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "out of range"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "out of range"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551616]}}", 8, "data_offsets must"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12"},
        {"{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "needs 16"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets must"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.0,8]}}", 8, "data_offsets must"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 9, "after the last tensor"},
        /* shapes */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "non-negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "non-negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "shape must be an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "9 dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648],\"data_offsets\":[0,8]}}", 8, "more than 2147483647"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[65536,65536],\"data_offsets\":[0,8]}}", 8, "more than"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,9223372036854775807,2],\"data_offsets\":[0,8]}}",
         8, "more than"},
        /* entries */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing \"data_offsets\""},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unknown field \"x\""},
        {"{\"a\":[1,2]}", 8, "expected an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "duplicate key \"a\""},
        /* header */
        {"[1,2]", 0, "must be a JSON object"},
        {"{\"a\":", 0, "invalid JSON at byte 5"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],}}", 8, "invalid JSON"},
        {"", 0, "invalid JSON"},
        {"{} junk", 0, "invalid JSON"},
        /* metadata */
        {"{\"__metadata__\":{\"k\":1}}", 0, "value of \"k\" must be a string, got number"},
        {"{\"__metadata__\":{\"k\":\"v\",\"l\":[\"x\"]}}", 0, "must be a string, got array"},
        {"{\"__metadata__\":\"x\"}", 0, "must be an object of strings"},
        {"{\"__metadata__\":{\"k\":\"v\"},\"__metadata__\":{}}", 0, "duplicate key"},
        /* a name with a newline is shown on one line */
        {"{\"a\\nb\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "\"a?b\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%zu.safetensors", i);
        const char *path = make_st(name, cases[i].header, data, cases[i].dlen);
        StFile f;
        char what[48];
        snprintf(what, sizeof what, "case %zu", i);
        int rc = st_read(path, &f);
        REFUSED(rc, path, cases[i].want, what);
        CHECK(f.n == 0 && f.t == NULL && f.meta.n == 0);
        if (rc == 0) st_free(&f);
    }

    /* files that are not safetensors at all, or whose length field lies */
    StFile f;
    const char *path = test_path("len.safetensors");
    unsigned char b[64];
    memset(b, ' ', sizeof b);
    b[0] = 200; /* header length 200 > 56 bytes that follow */
    memset(b + 1, 0, 7);
    test_spit(path, b, sizeof b);
    REFUSED(st_read(path, &f), path, "larger than the rest of the file", "header length > file");
    memset(b, 0, 8);
    b[5] = 1; /* 2^40 */
    test_spit(path, b, sizeof b);
    REFUSED(st_read(path, &f), path, "over the limit", "huge header length");
    test_spit(path, "PK\x03\x04\x14\x00\x00\x00\x08\x00", 10); /* a zip (torch.save) file */
    REFUSED(st_read(path, &f), path, NULL, "zip file");
    test_spit(path, "", 0);
    REFUSED(st_read(path, &f), path, "too short", "empty file");
    test_spit(path, "\x02\0\0\0\0\0\0", 7);
    REFUSED(st_read(path, &f), path, "too short", "7 bytes");
    REFUSED(st_read(test_path("does-not-exist"), &f), test_path("does-not-exist"), "cannot open", "missing");
    REFUSED(st_read(test_tmpdir(), &f), test_tmpdir(), "not a regular file", "directory");
}

/* Make every write bigger than `bytes` fail (EFBIG) in this (forked) test process. */
static void limit_file_size(rlim_t bytes) {
    struct rlimit r;
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &r);
    r.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &r);
}

TEST(io_st_failed_write_leaves_nothing) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/w", test_tmpdir());
    REQUIRE(file_mkdirs(dir) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/out.safetensors", dir);
    StFile f;
    memset(&f, 0, sizeof f);
    static float big[50000];
    int64_t d1[1] = {50000};
    for (int i = 0; i < 50000; i++) big[i] = ramp(i);

    /* refused before anything is opened */
    st_add_f32(&f, "a", 1, d1, big);
    st_add_f32(&f, "a", 1, d1, big);
    REFUSED(st_write(path, &f), path, "duplicate tensor name", "duplicate");
    CHECK(dir_entries(dir) == 0);
    st_free(&f);
    st_add_f32(&f, "__metadata__", 1, d1, big);
    REFUSED(st_write(path, &f), path, "__metadata__", "reserved name");
    CHECK(dir_entries(dir) == 0);
    st_free(&f);

    /* a write that fails half way (file size limit) leaves neither target nor temporary */
    st_add_f32(&f, "a", 1, d1, big);
    limit_file_size(8192); /* only around the write: test output may go to a file */
    int rc = st_write(path, &f);
    limit_file_size(RLIM_INFINITY);
    REFUSED(rc, path, NULL, "EFBIG");
    CHECK(!file_exists(path));
    CHECKF(dir_entries(dir) == 0, "%d files left in %s", dir_entries(dir), dir);

    /* an existing good file survives a failed overwrite */
    StFile small;
    memset(&small, 0, sizeof small);
    int64_t d2[1] = {2};
    st_add_f32(&small, "s", 1, d2, big + 1);
    REQUIRE(st_write(path, &small) == 0);
    limit_file_size(8192);
    rc = st_write(path, &f);
    limit_file_size(RLIM_INFINITY);
    REFUSED(rc, path, NULL, "EFBIG over existing");
    StFile g;
    REQUIRE(st_read(path, &g) == 0);
    CHECK(g.n == 1 && strcmp(g.t[0].name, "s") == 0 && g.t[0].f32[1] == big[2]);
    CHECK(dir_entries(dir) == 1);
    st_free(&g);
    st_free(&small);

    /* target is a directory: rename fails, the temporary is removed */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    REQUIRE(file_mkdirs(sub) == 0);
    REFUSED(st_write(sub, &f), sub, NULL, "directory target");
    CHECK(dir_entries(dir) == 2 && dir_entries(sub) == 0);
    /* missing directory */
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/nodir/x.safetensors", dir);
    REFUSED(st_write(nodir, &f), nodir, "cannot write", "missing directory");
    st_free(&f);
}

/* ---------------------------------------------------------------- npy */

TEST(io_npy_reads_numpy_files) {
    Tensor t;
    REQUIRE(npy_read(fixture("io/ramp_v1.npy"), &t) == 0);
    REQUIRE(t.ndim == 3 && t.dim[0] == 2 && t.dim[1] == 3 && t.dim[2] == 4);
    int bad = 0;
    for (long i = 0; i < 24; i++) bad += fbits(t.data[i]) != fbits(ramp(i));
    CHECKF(bad == 0, "%d ramp values differ", bad);
    tensor_free(&t);
    for (int v = 2; v <= 3; v++) {
        char rel[32];
        snprintf(rel, sizeof rel, "io/ramp_v%d.npy", v);
        REQUIRE(npy_read(fixture(rel), &t) == 0);
        REQUIRE(t.ndim == 2 && t.dim[0] == 3 && t.dim[1] == 5);
        bad = 0;
        for (long i = 0; i < 15; i++) bad += fbits(t.data[i]) != fbits(ramp(i));
        CHECKF(bad == 0, "v%d: %d ramp values differ", v, bad);
        tensor_free(&t);
    }
    REQUIRE(npy_read(fixture("io/scalar.npy"), &t) == 0);
    CHECK(t.ndim == 0 && tensor_numel(&t) == 1 && fbits(t.data[0]) == fbits(0.1f));
    tensor_free(&t);
    REQUIRE(npy_read(fixture("io/empty.npy"), &t) == 0);
    CHECK(t.ndim == 2 && t.dim[0] == 0 && t.dim[1] == 5 && tensor_numel(&t) == 0);
    tensor_free(&t);
    REQUIRE(npy_read(fixture("io/special.npy"), &t) == 0);
    REQUIRE(t.ndim == 1 && t.dim[0] == 8);
    check_special(t.data, "special.npy");
    tensor_free(&t);
    REQUIRE(npy_read(fixture("io/dims8.npy"), &t) == 0);
    int64_t want[8] = {1, 2, 1, 2, 1, 2, 1, 3};
    REQUIRE(t.ndim == 8);
    for (int k = 0; k < 8; k++) CHECK(t.dim[k] == want[k]);
    bad = 0;
    for (long i = 0; i < 24; i++) bad += fbits(t.data[i]) != fbits(ramp(i));
    CHECK(bad == 0);
    tensor_free(&t);
    /* numpy's refusable files */
    const char *refuse[][2] = {{"io/refuse_f8.npy", "'<f8'"}, {"io/refuse_fortran.npy", "Fortran"},
                               {"io/refuse_bigendian.npy", "'>f4'"}};
    for (int i = 0; i < 3; i++) {
        const char *p = fixture(refuse[i][0]);
        char pcopy[1024];
        snprintf(pcopy, sizeof pcopy, "%s", p);
        REFUSED(npy_read(pcopy, &t), pcopy, refuse[i][1], refuse[i][0]);
        CHECK(t.data == NULL);
    }
}

TEST(io_npy_writer_matches_numpy) {
    /* built from the formula, not from the reader: same bytes as numpy.save */
    const char *names[] = {"ramp_v1.npy", "scalar.npy", "empty.npy", "special.npy", "dims8.npy"};
    for (int i = 0; i < 5; i++) {
        Tensor t;
        memset(&t, 0, sizeof t);
        if (i == 0) {
            t = tensor_new(3, (int64_t[]){2, 3, 4});
            for (long k = 0; k < 24; k++) t.data[k] = ramp(k);
        } else if (i == 1) {
            t = tensor_new(0, NULL);
            t.data[0] = 0.1f;
        } else if (i == 2) {
            t = tensor_new(2, (int64_t[]){0, 5});
        } else if (i == 3) {
            t = tensor_new(1, (int64_t[]){8});
            special(t.data);
            uint32_t qnan = 0x7fc00000u; /* numpy's NaN bits */
            memcpy(&t.data[6], &qnan, 4);
        } else {
            t = tensor_new(8, (int64_t[]){1, 2, 1, 2, 1, 2, 1, 3});
            for (long k = 0; k < 24; k++) t.data[k] = ramp(k);
        }
        char rel[64];
        snprintf(rel, sizeof rel, "io/%s", names[i]);
        const char *out = test_path(names[i]);
        REQUIRE(npy_write(out, &t) == 0);
        size_t la, lb;
        unsigned char *a = test_slurp(fixture(rel), &la), *b = test_slurp(out, &lb);
        REQUIRE(a && b);
        CHECKF(la == lb && memcmp(a, b, la) == 0, "%s: %zu vs %zu bytes, differs from numpy", names[i], lb, la);
        CHECK((lb - 4 * tensor_numel(&t)) % 64 == 0 && b[lb - 4 * tensor_numel(&t) - 1] == '\n');
        free(a);
        free(b);
        tensor_free(&t);
    }
    /* and round trips through our own reader */
    float x[6] = {1.5f, -2.0f, 0.0f, 1e-40f, -FLT_MAX, 3.25f};
    const char *p = test_path("rt.npy");
    REQUIRE(npy_write_data(p, x, 2, (int64_t[]){3, 2}) == 0);
    Tensor t;
    REQUIRE(npy_read(p, &t) == 0);
    CHECK(t.ndim == 2 && t.dim[0] == 3 && t.dim[1] == 2 && memcmp(t.data, x, sizeof x) == 0);
    tensor_free(&t);
}

TEST(io_npy_every_truncation_refused) {
    const char *files[] = {"io/ramp_v1.npy", "io/ramp_v2.npy", "io/scalar.npy"};
    for (int fi = 0; fi < 3; fi++) {
        size_t len;
        unsigned char *d = test_slurp(fixture(files[fi]), &len);
        REQUIRE(d);
        const char *path = test_path("cut.npy");
        int bad = 0;
        for (size_t n = 0; n < len && bad < 5; n++) {
            test_spit(path, d, n);
            Tensor t;
            int rc = npy_read(path, &t);
            if (!REFUSED(rc, path, NULL, files[fi])) bad++;
            CHECK(t.data == NULL);
            if (rc == 0) tensor_free(&t);
        }
        unsigned char *e = malloc(len + 4);
        memcpy(e, d, len);
        memset(e + len, 0, 4);
        test_spit(path, e, len + 4);
        Tensor t;
        REFUSED(npy_read(path, &t), path, "extra bytes", "4 extra bytes");
        free(e);
        free(d);
    }
}

TEST(io_npy_header_variants) {
    float v[6];
    for (int i = 0; i < 6; i++) v[i] = ramp(i);
    /* accepted spellings: trailing commas, double quotes, key order, Python 2 longs */
    static const struct { const char *h; int ndim; int64_t d0, d1; } good[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 2, 3},
        {"{'descr':'<f4','fortran_order':False,'shape':(2,3)}", 2, 2, 3},
        {"{'shape': (2, 3,), 'fortran_order': False, 'descr': '<f4'}", 2, 2, 3},
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (6,)}", 1, 6, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': ( 6 , ), }", 1, 6, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 2, 2, 3},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 6), }", 2, 1, 6},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *p = make_npy("good.npy", good[i].h, v, sizeof v);
        Tensor t;
        int rc = npy_read(p, &t);
        CHECKF(rc == 0, "%s: %s", good[i].h, err_get());
        if (rc) continue;
        CHECK(t.ndim == good[i].ndim && t.dim[0] == good[i].d0 && (t.ndim < 2 || t.dim[1] == good[i].d1));
        CHECK(memcmp(t.data, v, sizeof v) == 0);
        tensor_free(&t);
    }
    /* refused: dtype, order, shape, data length, malformed dicts */
    static const struct { const char *h; size_t dlen; const char *want; } badh[] = {
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", 24, "'>f4'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24, "'<f8'"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (6,), }", 24, "'|f4'"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }", 24, "'<i4'"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (12,), }", 24, "'<f2'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", 24, "structured"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, "Fortran"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }", 24, "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", 24, "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': 6, }", 24, "must be a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", 24, "non-negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (,), }", 24, "non-negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 24, "expected ','"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,6), }", 24, "more than 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 24, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536), }", 24, "more than"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }", 24, "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 24, "extra bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 24, "extra bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 24, "extra bytes"},
        {"{'descr': '<f4', 'shape': (6,), }", 24, "lacks 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", 24, "unexpected header key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 24, "twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,) ", 24, "expected ',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", 24, "after the dict"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (6,)}", 24, "malformed header at byte 19: expected ':'"},
        {"", 24, "expected '{'"},
    };
    for (size_t i = 0; i < sizeof badh / sizeof badh[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.npy", i);
        const char *p = make_npy(name, badh[i].h, v, badh[i].dlen);
        Tensor t;
        char what[32];
        snprintf(what, sizeof what, "npy case %zu", i);
        int rc = npy_read(p, &t);
        REFUSED(rc, p, badh[i].want, what);
        CHECK(t.data == NULL);
        if (rc == 0) tensor_free(&t);
    }
    /* the preamble: magic, version, header length */
    const char *p = make_npy("pre.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", v, sizeof v);
    size_t len;
    unsigned char *d = test_slurp(p, &len);
    REQUIRE(d);
    Tensor t;
    d[1] = 'n';
    test_spit(p, d, len);
    REFUSED(npy_read(p, &t), p, "bad magic", "magic");
    d[1] = 'N';
    d[6] = 4;
    test_spit(p, d, len);
    REFUSED(npy_read(p, &t), p, "version 4.0", "version 4");
    d[6] = 1;
    d[7] = 1;
    test_spit(p, d, len);
    REFUSED(npy_read(p, &t), p, "version 1.1", "version 1.1");
    d[7] = 0;
    d[8] = 0xff;
    d[9] = 0x7f;
    test_spit(p, d, len);
    REFUSED(npy_read(p, &t), p, "larger than the rest", "header length");
    d[6] = 2; /* v2 reads a u32 length: bytes 8..11 = ff 7f 7b 27 -> over the limit */
    test_spit(p, d, len);
    REFUSED(npy_read(p, &t), p, "over the limit", "v2 header length");
    test_spit(p, "\x93NUMPY\x01", 7);
    REFUSED(npy_read(p, &t), p, "too short", "7 bytes");
    test_spit(p, "GIF89a", 6);
    REFUSED(npy_read(p, &t), p, "bad magic", "gif");
    free(d);
}

TEST(io_npy_failed_write_leaves_nothing) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/w", test_tmpdir());
    REQUIRE(file_mkdirs(dir) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/out.npy", dir);
    Tensor t = tensor_new(2, (int64_t[]){100, 500});
    limit_file_size(4096);
    int rc = npy_write(path, &t);
    limit_file_size(RLIM_INFINITY);
    REFUSED(rc, path, NULL, "EFBIG");
    CHECKF(dir_entries(dir) == 0, "%d files left in %s", dir_entries(dir), dir);
    REQUIRE(npy_write(path, &t) == 0);
    Tensor u;
    REQUIRE(npy_read(path, &u) == 0);
    CHECK(u.dim[0] == 100 && u.dim[1] == 500);
    tensor_free(&u);
    tensor_free(&t);
}
