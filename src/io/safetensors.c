/* safetensors: reader and atomic writer (see io/safetensors.h).
 * Reading streams the file: the 8-byte length, the JSON header, then every tensor
 * straight into its own buffer, converted from little-endian by assembling bytes
 * (no assumption about the host's byte order). Everything the header claims is
 * checked against the real file size before any tensor buffer is allocated, so a
 * corrupt header cannot make us allocate memory the file does not back.
 * The tensors must tile the data section exactly (no overlap, no gap, nothing
 * after the last one), as the reference implementation requires.
 * Limits (each a one-line error, checked before anything of that size is allocated):
 * header length <= ST_MAX_HEADER (100 MiB) and within the file; JSON nesting and
 * value count as io/json.h says; at most 8 dimensions; elements per tensor <=
 * TENSOR_MAXNUMEL (2^31 - 1, products checked for overflow); every data_offsets
 * range within the data section, which is the real file size minus the header; a
 * tensor's bytes within size_t (4 GiB on a 32-bit machine).
 * Not for: memory mapping, lazy loading, dtypes other than F32 and I64. */
#include "io/safetensors.h"
#include "core/err.h"
#include "core/tensor.h"
#include "io/file.h"
#include "io/json.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A name for a one-line message: at most 60 bytes, control bytes shown as '?'. */
static const char *show(const char *s, char *buf, size_t cap) {
    size_t o = 0;
    for (; *s && o + 4 < cap && o < 60; s++) buf[o++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    if (*s) { buf[o++] = '.'; buf[o++] = '.'; buf[o++] = '.'; }
    buf[o] = 0;
    return buf;
}

static uint64_t get_le64(const unsigned char *b) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = v << 8 | b[k];
    return v;
}

static void put_le64(unsigned char *b, uint64_t v) {
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
}

static size_t itemsize(StDtype d) { return d == ST_F32 ? 4 : 8; }
static const char *dtype_name(StDtype d) { return d == ST_F32 ? "F32" : "I64"; }

/* ---------------------------------------------------------------- reading */

typedef struct {
    int idx;                /* into StFile.t */
    int64_t begin, end;     /* byte range in the data section */
} Span;

static int cmp_span(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int read_meta(const char *path, const Json *obj, Meta *m) {
    char kb[80];
    if (obj->type != JSON_OBJECT)
        return err_set("%s: __metadata__ must be an object of strings, got %s", path, json_type_name(obj->type));
    for (int k = 0; k < obj->n; k++) {
        if (obj->kid[k].type != JSON_STRING)
            return err_set("%s: __metadata__ value of \"%s\" must be a string, got %s", path,
                           show(obj->key[k], kb, sizeof kb), json_type_name(obj->kid[k].type));
        meta_set(m, obj->key[k], obj->kid[k].str);
    }
    return 0;
}

/* Check one header entry and fill t (name, dtype, shape, numel) and its span. */
static int read_entry(const char *path, const char *name, const Json *e, uint64_t data_size, StTensor *t,
                      Span *sp) {
    char nb[80], sb[160];
    const char *nm = show(name, nb, sizeof nb);
    if (e->type != JSON_OBJECT)
        return err_set("%s: tensor \"%s\": expected an object, got %s", path, nm, json_type_name(e->type));
    for (int k = 0; k < e->n; k++) {
        const char *f = e->key[k];
        if (strcmp(f, "dtype") && strcmp(f, "shape") && strcmp(f, "data_offsets")) {
            char fb[80];
            return err_set("%s: tensor \"%s\": unknown field \"%s\"", path, nm, show(f, fb, sizeof fb));
        }
    }
    const Json *dt = json_get(e, "dtype"), *sh = json_get(e, "shape"), *of = json_get(e, "data_offsets");
    if (!dt || !sh || !of)
        return err_set("%s: tensor \"%s\": missing \"%s\"", path, nm, !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (dt->type != JSON_STRING)
        return err_set("%s: tensor \"%s\": dtype must be a string, got %s", path, nm, json_type_name(dt->type));
    if (strcmp(dt->str, "F32") == 0) t->dtype = ST_F32;
    else if (strcmp(dt->str, "I64") == 0) t->dtype = ST_I64;
    else {
        char db[80];
        return err_set("%s: tensor \"%s\" has dtype %s; only F32 and I64 are supported (export as float32)", path,
                       nm, show(dt->str, db, sizeof db));
    }

    if (sh->type != JSON_ARRAY)
        return err_set("%s: tensor \"%s\": shape must be an array, got %s", path, nm, json_type_name(sh->type));
    if (sh->n > 8) return err_set("%s: tensor \"%s\" has %d dimensions; at most 8 are supported", path, nm, sh->n);
    int zero = 0;
    for (int k = 0; k < sh->n; k++) {
        if (sh->kid[k].type != JSON_NUMBER || !sh->kid[k].is_int || sh->kid[k].ival < 0)
            return err_set("%s: tensor \"%s\": shape must hold non-negative integers", path, nm);
        t->dim[k] = sh->kid[k].ival;
        if (t->dim[k] == 0) zero = 1;
    }
    t->ndim = sh->n;
    int64_t numel = 1;
    for (int k = 0; k < t->ndim && !zero; k++) {
        if (numel > TENSOR_MAXNUMEL / t->dim[k])
            return err_set("%s: tensor \"%s\": shape %s has more than %lld elements", path, nm,
                           dims_str(t->ndim, t->dim, sb, sizeof sb), (long long)TENSOR_MAXNUMEL);
        numel *= t->dim[k];
    }
    t->numel = zero ? 0 : (size_t)numel;

    if (of->type != JSON_ARRAY || of->n != 2 || of->kid[0].type != JSON_NUMBER || !of->kid[0].is_int ||
        of->kid[1].type != JSON_NUMBER || !of->kid[1].is_int)
        return err_set("%s: tensor \"%s\": data_offsets must be [begin, end] integers", path, nm);
    int64_t b = of->kid[0].ival, en = of->kid[1].ival;
    if (b < 0 || en < b || (uint64_t)en > data_size)
        return err_set("%s: tensor \"%s\": data_offsets [%lld, %lld] out of range (the data section has %llu bytes)",
                       path, nm, (long long)b, (long long)en, (unsigned long long)data_size);
    uint64_t need = (uint64_t)t->numel * itemsize(t->dtype);
    if ((uint64_t)(en - b) != need)
        return err_set("%s: tensor \"%s\": data_offsets [%lld, %lld] hold %lld bytes but %s %s needs %llu", path, nm,
                       (long long)b, (long long)en, (long long)(en - b), dtype_name(t->dtype),
                       dims_str(t->ndim, t->dim, sb, sizeof sb), (unsigned long long)need);
    if (need > SIZE_MAX) /* 32-bit machines */
        return err_set("%s: tensor \"%s\" holds %llu bytes, more than this machine can address", path, nm,
                       (unsigned long long)need);
    sp->begin = b;
    sp->end = en;
    return 0;
}

/* The tensors must tile [0, data_size) exactly. */
static int check_tiling(const char *path, const StFile *out, Span *sp, uint64_t data_size) {
    char ab[80], bb[80];
    qsort(sp, (size_t)out->n, sizeof *sp, cmp_span);
    int64_t at = 0;
    for (int k = 0; k < out->n; k++) {
        if (sp[k].begin < at)
            return err_set("%s: tensors \"%s\" and \"%s\" overlap in the file", path,
                           show(out->t[sp[k - 1].idx].name, ab, sizeof ab), show(out->t[sp[k].idx].name, bb, sizeof bb));
        if (sp[k].begin > at)
            return err_set("%s: bytes %lld..%lld of the data section belong to no tensor", path, (long long)at,
                           (long long)sp[k].begin);
        at = sp[k].end;
    }
    if ((uint64_t)at != data_size)
        return err_set("%s: %llu bytes after the last tensor belong to no tensor", path,
                       (unsigned long long)(data_size - (uint64_t)at));
    return 0;
}

/* Read t's bytes from f and convert them in place (element k's bytes are read
 * before element k is written, and never after). */
static int read_data(const char *path, FILE *f, StTensor *t) {
    char nb[80];
    size_t isz = itemsize(t->dtype);
    unsigned char *raw = xmalloc(t->numel * isz);
    if (fread(raw, 1, t->numel * isz, f) != t->numel * isz) {
        free(raw);
        return err_set("%s: truncated while reading tensor \"%s\"", path, show(t->name, nb, sizeof nb));
    }
    if (t->dtype == ST_F32) {
        t->f32 = (float *)(void *)raw;
        for (size_t k = 0; k < t->numel; k++) {
            const unsigned char *b = raw + 4 * k;
            uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
            float v;
            memcpy(&v, &u, 4);
            t->f32[k] = v;
        }
    } else {
        t->i64 = (int64_t *)(void *)raw;
        for (size_t k = 0; k < t->numel; k++) {
            uint64_t u = get_le64(raw + 8 * k);
            int64_t v;
            memcpy(&v, &u, 8);
            t->i64[k] = v;
        }
    }
    return 0;
}

int st_read(const char *path, StFile *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return err_set("%s: not a regular file", path);
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    unsigned char lenb[8];
    if (fsize < 8 || fread(lenb, 1, 8, f) != 8) {
        fclose(f);
        return err_set("%s: too short for a safetensors file (%llu bytes)", path, (unsigned long long)fsize);
    }
    uint64_t hlen = get_le64(lenb);
    if (hlen > ST_MAX_HEADER) {
        fclose(f);
        return err_set("%s: header length %llu is over the limit of %u bytes (not a safetensors file?)", path,
                       (unsigned long long)hlen, ST_MAX_HEADER);
    }
    if (hlen > fsize - 8) {
        fclose(f);
        return err_set("%s: header length %llu is larger than the rest of the file (%llu bytes): truncated?", path,
                       (unsigned long long)hlen, (unsigned long long)(fsize - 8));
    }
    uint64_t data_size = fsize - 8 - hlen;
    char *htext = xmalloc((size_t)hlen);
    if (fread(htext, 1, (size_t)hlen, f) != hlen) {
        free(htext);
        fclose(f);
        return err_set("%s: read error in the header", path);
    }
    Json root;
    int rc = json_parse(htext, (size_t)hlen, &root);
    free(htext);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", err_get());
        fclose(f);
        return err_set("%s: header: %s", path, msg);
    }
    Span *sp = NULL;
    if (root.type != JSON_OBJECT)
        rc = err_set("%s: header must be a JSON object, got %s", path, json_type_name(root.type));
    if (!rc) {
        int n = 0;
        for (int k = 0; k < root.n; k++) n += strcmp(root.key[k], "__metadata__") != 0;
        out->t = xcalloc((size_t)(n ? n : 1), sizeof(StTensor));
        sp = xcalloc((size_t)(n ? n : 1), sizeof(Span));
    }
    for (int k = 0; k < root.n && !rc; k++) {
        if (strcmp(root.key[k], "__metadata__") == 0) {
            rc = read_meta(path, &root.kid[k], &out->meta);
            continue;
        }
        StTensor *t = &out->t[out->n];
        t->name = xstrdup(root.key[k]);
        sp[out->n].idx = out->n;
        out->n++; /* counted now so that st_free releases the name on error */
        rc = read_entry(path, root.key[k], &root.kid[k], data_size, t, &sp[out->n - 1]);
    }
    if (!rc) rc = check_tiling(path, out, sp, data_size);
    /* sp is now in file order: read sequentially, no seeking needed */
    for (int k = 0; k < out->n && !rc; k++) rc = read_data(path, f, &out->t[sp[k].idx]);
    free(sp);
    json_free(&root);
    fclose(f);
    if (rc) st_free(out);
    return rc;
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void buf_str(Buf *b, const char *s) { buf_add(b, s, strlen(s)); }
static void buf_quoted(Buf *b, const char *s) {
    char *q = json_quote(s);
    buf_str(b, q);
    free(q);
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static char *make_header(const StFile *f, size_t *len) {
    Buf b = {NULL, 0, 0};
    char num[64];
    int first = 1;
    buf_str(&b, "{");
    if (f->meta.n > 0) {
        buf_str(&b, "\"__metadata__\":{");
        for (int k = 0; k < f->meta.n; k++) {
            if (k) buf_str(&b, ",");
            buf_quoted(&b, f->meta.key[k]);
            buf_str(&b, ":");
            buf_quoted(&b, f->meta.val[k]);
        }
        buf_str(&b, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < f->n; i++) {
        const StTensor *t = &f->t[i];
        if (!first) buf_str(&b, ",");
        first = 0;
        buf_quoted(&b, t->name);
        buf_str(&b, ":{\"dtype\":\"");
        buf_str(&b, dtype_name(t->dtype));
        buf_str(&b, "\",\"shape\":[");
        for (int k = 0; k < t->ndim; k++) {
            snprintf(num, sizeof num, k ? ",%lld" : "%lld", (long long)t->dim[k]);
            buf_str(&b, num);
        }
        uint64_t end = off + (uint64_t)t->numel * itemsize(t->dtype);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)end);
        buf_str(&b, num);
        off = end;
    }
    buf_str(&b, "}");
    while (b.n % 8) buf_str(&b, " ");
    *len = b.n;
    return b.s;
}

/* Little-endian bytes of t, written in 64 KiB chunks. Returns 0 or -1 (write error). */
static int write_data(FILE *fp, const StTensor *t) {
    unsigned char chunk[1 << 16];
    size_t isz = itemsize(t->dtype), per = sizeof chunk / isz;
    for (size_t k0 = 0; k0 < t->numel; k0 += per) {
        size_t m = t->numel - k0 < per ? t->numel - k0 : per;
        for (size_t k = 0; k < m; k++) {
            if (t->dtype == ST_F32) {
                uint32_t u;
                memcpy(&u, &t->f32[k0 + k], 4);
                for (int j = 0; j < 4; j++) chunk[4 * k + (size_t)j] = (unsigned char)(u >> (8 * j));
            } else {
                uint64_t u;
                memcpy(&u, &t->i64[k0 + k], 8);
                put_le64(chunk + 8 * k, u);
            }
        }
        if (fwrite(chunk, isz, m, fp) != m) return -1;
    }
    return 0;
}

int st_write(const char *path, const StFile *f) {
    char nb[80];
    /* refuse what the reader would refuse (n^2 name check: files hold hundreds at most) */
    for (int i = 0; i < f->n; i++) {
        const StTensor *t = &f->t[i];
        GAD_ASSERT(t->name && t->ndim >= 0 && t->ndim <= 8);
        GAD_ASSERT(t->dtype == ST_F32 ? (t->f32 || !t->numel) : (t->i64 || !t->numel));
        size_t numel = 1;
        for (int k = 0; k < t->ndim; k++) { GAD_ASSERT(t->dim[k] >= 0); numel *= (size_t)t->dim[k]; }
        GAD_ASSERT(numel == t->numel);
        if (strcmp(t->name, "__metadata__") == 0)
            return err_set("%s: a tensor may not be called __metadata__", path);
        for (int j = 0; j < i; j++)
            if (strcmp(f->t[j].name, t->name) == 0)
                return err_set("%s: duplicate tensor name \"%s\"", path, show(t->name, nb, sizeof nb));
    }
    size_t hlen;
    char *header = make_header(f, &hlen);
    if (hlen > ST_MAX_HEADER) {
        free(header);
        return err_set("%s: header of %zu bytes is over the limit of %u", path, hlen, ST_MAX_HEADER);
    }
    AtomicFile af;
    if (afile_open(&af, path)) { free(header); return -1; }
    unsigned char lenb[8];
    put_le64(lenb, (uint64_t)hlen);
    int bad = fwrite(lenb, 1, 8, af.f) != 8 || fwrite(header, 1, hlen, af.f) != hlen;
    free(header);
    for (int i = 0; i < f->n && !bad; i++) bad = write_data(af.f, &f->t[i]);
    if (bad) {
        err_set("%s: write failed: %s", path, strerror(errno));
        afile_abort(&af);
        return -1;
    }
    return afile_commit(&af);
}

/* ---------------------------------------------------------------- building, lookup */

void st_free(StFile *f) {
    for (int i = 0; i < f->n; i++) {
        free(f->t[i].name);
        free(f->t[i].f32);
        free(f->t[i].i64);
    }
    free(f->t);
    meta_free(&f->meta);
    memset(f, 0, sizeof *f);
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

static StTensor *add(StFile *f, const char *name, StDtype dt, int ndim, const int64_t *dim) {
    GAD_ASSERT(ndim >= 0 && ndim <= 8);
    f->t = xrealloc(f->t, sizeof(StTensor) * (size_t)(f->n + 1));
    StTensor *t = &f->t[f->n++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->dtype = dt;
    t->ndim = ndim;
    t->numel = 1;
    for (int k = 0; k < ndim; k++) {
        GAD_ASSERT(dim[k] >= 0);
        t->dim[k] = dim[k];
        t->numel *= (size_t)dim[k];
    }
    return t;
}

void st_add_f32(StFile *f, const char *name, int ndim, const int64_t *dim, const float *data) {
    StTensor *t = add(f, name, ST_F32, ndim, dim);
    GAD_ASSERT(data || !t->numel);
    t->f32 = xmalloc(t->numel * sizeof(float));
    if (t->numel) memcpy(t->f32, data, t->numel * sizeof(float));
}

void st_add_i64(StFile *f, const char *name, int ndim, const int64_t *dim, const int64_t *idata) {
    StTensor *t = add(f, name, ST_I64, ndim, dim);
    GAD_ASSERT(idata || !t->numel);
    t->i64 = xmalloc(t->numel * sizeof(int64_t));
    if (t->numel) memcpy(t->i64, idata, t->numel * sizeof(int64_t));
}

const char *meta_get(const Meta *m, const char *key) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->key[i], key) == 0) return m->val[i];
    return NULL;
}

void meta_set(Meta *m, const char *key, const char *val) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->key[i], key) == 0) {
            char *v = xstrdup(val); /* val may point into the old value */
            free(m->val[i]);
            m->val[i] = v;
            return;
        }
    m->key = xrealloc(m->key, sizeof(char *) * (size_t)(m->n + 1));
    m->val = xrealloc(m->val, sizeof(char *) * (size_t)(m->n + 1));
    m->key[m->n] = xstrdup(key);
    m->val[m->n] = xstrdup(val);
    m->n++;
}

void meta_copy(Meta *dst, const Meta *src) {
    memset(dst, 0, sizeof *dst);
    for (int i = 0; i < src->n; i++) meta_set(dst, src->key[i], src->val[i]);
}

void meta_free(Meta *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->key[i]);
        free(m->val[i]);
    }
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}
