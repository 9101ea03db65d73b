/* npy: NumPy .npy reader and atomic writer for float32 arrays (see io/npy.h).
 * File: "\x93NUMPY", version (1.0: u16 LE header length; 2.0 and 3.0: u32 LE), then
 * a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ended by '\n', then the raw C-order data.
 * The header is parsed by a tiny recogniser for exactly that dict (string, bool and
 * tuple-of-int values), not by a general Python literal parser. The data length must
 * match the shape exactly. Values are assembled from little-endian bytes, so the host's
 * byte order does not matter. Writes byte-for-byte what numpy.save writes (version 1.0).
 * Limits (each a one-line error, checked before the data buffer is allocated):
 * header length <= NPY_MAX_HEADER (1 MiB) and within the file; at most
 * TENSOR_MAXDIM dimensions; each dimension parsed without overflow; elements <=
 * TENSOR_MAXNUMEL (2^31 - 1, products checked for overflow); the data length must
 * equal 4 x elements exactly, compared with the real file size, and fit size_t (4 GiB
 * on a 32-bit machine).
 * Not for: other dtypes, Fortran order, .npz, object or structured arrays. */
#include "io/npy.h"
#include "core/err.h"
#include "io/file.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAX_HEADER (1u << 20) /* numpy writes < 100 bytes for float arrays */

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---------------------------------------------------------------- header */

typedef struct {
    const char *s;          /* [len] header text */
    size_t len, i;
    size_t base;            /* file offset of the header (for messages) */
    const char *path;
} Hdr;

static void hskip(Hdr *h) {
    while (h->i < h->len && (h->s[h->i] == ' ' || h->s[h->i] == '\t' || h->s[h->i] == '\n' || h->s[h->i] == '\r'))
        h->i++;
}

static int hpeek(Hdr *h) { return h->i < h->len ? (unsigned char)h->s[h->i] : -1; }

static int hbad(Hdr *h, const char *what) {
    return err_set("%s: malformed header at byte %zu: %s", h->path, h->base + h->i, what);
}

/* A quoted string without escapes ('...' or "..."), copied into buf. */
static int hstring(Hdr *h, char *buf, size_t cap) {
    int q = hpeek(h);
    if (q != '\'' && q != '"') return hbad(h, "expected a quoted string");
    size_t start = ++h->i;
    while (h->i < h->len && h->s[h->i] != q) {
        if (h->s[h->i] == '\\' || h->s[h->i] == '\n') return hbad(h, "unsupported character in string");
        h->i++;
    }
    if (h->i >= h->len) return hbad(h, "unterminated string");
    size_t n = h->i - start;
    h->i++;
    if (n >= cap) n = cap - 1; /* long strings are cut: only used for comparisons and messages */
    memcpy(buf, h->s + start, n);
    buf[n] = 0;
    return 0;
}

/* (d0, d1, ...) with Python's tuple rules: "()" , "(3,)", "(2, 3)", "(2, 3,)".
 * "(3)" is an int, not a tuple, and is refused. Python 2's "3L" is accepted. */
static int hshape(Hdr *h, int *ndim, int64_t *dim) {
    if (hpeek(h) != '(') return hbad(h, "shape must be a tuple");
    h->i++;
    int n = 0, trailing_comma = 0;
    for (;;) {
        hskip(h);
        if (hpeek(h) == ')') break;
        int c = hpeek(h);
        if (c < '0' || c > '9') return hbad(h, "shape must hold non-negative integers");
        if (n == TENSOR_MAXDIM) return err_set("%s: more than %d dimensions", h->path, TENSOR_MAXDIM);
        int64_t v = 0;
        while ((c = hpeek(h)) >= '0' && c <= '9') {
            if (v > (INT64_MAX - 9) / 10) return err_set("%s: shape dimension too large", h->path);
            v = v * 10 + (c - '0');
            h->i++;
        }
        if (hpeek(h) == 'L' || hpeek(h) == 'l') h->i++;
        dim[n++] = v;
        hskip(h);
        trailing_comma = 0;
        if (hpeek(h) == ',') { h->i++; trailing_comma = 1; continue; }
        if (hpeek(h) != ')') return hbad(h, "expected ',' or ')' in shape");
        break;
    }
    if (n == 1 && !trailing_comma) return hbad(h, "shape (N) is not a tuple (needs \"(N,)\")");
    h->i++;
    *ndim = n;
    return 0;
}

/* The header dict: exactly the keys descr, fortran_order, shape (any order). */
static int parse_header(Hdr *h, int *ndim, int64_t *dim) {
    int seen[3] = {0, 0, 0};
    char key[32], descr[64];
    int fortran = 0;
    hskip(h);
    if (hpeek(h) != '{') return hbad(h, "expected '{'");
    h->i++;
    for (;;) {
        hskip(h);
        if (hpeek(h) == '}') break;
        if (hstring(h, key, sizeof key)) return -1;
        int which = strcmp(key, "descr") == 0 ? 0 : strcmp(key, "fortran_order") == 0 ? 1
                  : strcmp(key, "shape") == 0 ? 2 : -1;
        if (which < 0) return err_set("%s: unexpected header key '%s'", h->path, key);
        if (seen[which]) return err_set("%s: header key '%s' appears twice", h->path, key);
        seen[which] = 1;
        hskip(h);
        if (hpeek(h) != ':') return hbad(h, "expected ':'");
        h->i++;
        hskip(h);
        if (which == 0) {
            if (hpeek(h) != '\'' && hpeek(h) != '"')
                return err_set("%s: structured dtypes are not supported (only float32 '<f4')", h->path);
            if (hstring(h, descr, sizeof descr)) return -1;
        } else if (which == 1) {
            if (h->len - h->i >= 4 && memcmp(h->s + h->i, "True", 4) == 0) { fortran = 1; h->i += 4; }
            else if (h->len - h->i >= 5 && memcmp(h->s + h->i, "False", 5) == 0) { fortran = 0; h->i += 5; }
            else return hbad(h, "fortran_order must be True or False");
        } else if (hshape(h, ndim, dim)) {
            return -1;
        }
        hskip(h);
        if (hpeek(h) == ',') { h->i++; continue; }
        if (hpeek(h) != '}') return hbad(h, "expected ',' or '}'");
    }
    h->i++;
    hskip(h);
    if (h->i != h->len) return hbad(h, "unexpected text after the dict");
    if (!seen[0] || !seen[1] || !seen[2])
        return err_set("%s: header lacks '%s'", h->path, !seen[0] ? "descr" : !seen[1] ? "fortran_order" : "shape");
    if (strcmp(descr, "<f4") != 0)
        return err_set("%s: dtype '%s' is not supported: only little-endian float32 ('<f4')", h->path, descr);
    if (fortran) return err_set("%s: Fortran-order arrays are not supported (save a C-order array)", h->path);
    return 0;
}

/* ---------------------------------------------------------------- reading */

static uint32_t get_le32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Reads everything but the data: returns the open file positioned at the data,
 * the shape, and the number of data bytes in the file. NULL on error. */
static FILE *open_npy(const char *path, int *ndim, int64_t *dim, uint64_t *data_bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) { err_set("%s: cannot open: %s", path, strerror(errno)); return NULL; }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        err_set("%s: not a regular file", path);
        return NULL;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (memcmp(pre, npy_magic, got < 6 ? got : 6) != 0) {
        fclose(f);
        err_set("%s: not a .npy file (bad magic)", path);
        return NULL;
    }
    if (got < 10) {
        fclose(f);
        err_set("%s: too short for a .npy file (%zu bytes)", path, got);
        return NULL;
    }
    int major = pre[6], minor = pre[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        fclose(f);
        err_set("%s: unsupported .npy version %d.%d", path, major, minor);
        return NULL;
    }
    size_t start = major == 1 ? 10 : 12;
    if (start == 12 && fread(pre + 10, 1, 2, f) != 2) {
        fclose(f);
        err_set("%s: truncated in the header length", path);
        return NULL;
    }
    uint64_t hlen = major == 1 ? (uint64_t)(pre[8] | pre[9] << 8) : get_le32(pre + 8);
    if (hlen > NPY_MAX_HEADER) {
        fclose(f);
        err_set("%s: header length %llu is over the limit of %u bytes", path, (unsigned long long)hlen, NPY_MAX_HEADER);
        return NULL;
    }
    if (hlen > fsize - start) {
        fclose(f);
        err_set("%s: header length %llu is larger than the rest of the file (%llu bytes): truncated?", path,
                (unsigned long long)hlen, (unsigned long long)(fsize - start));
        return NULL;
    }
    char *text = xmalloc((size_t)hlen + 1);
    if (fread(text, 1, (size_t)hlen, f) != hlen) {
        free(text);
        fclose(f);
        err_set("%s: read error in the header", path);
        return NULL;
    }
    Hdr h = {text, (size_t)hlen, 0, start, path};
    int rc = parse_header(&h, ndim, dim);
    free(text);
    if (rc) { fclose(f); return NULL; }
    *data_bytes = fsize - start - hlen;
    return f;
}

int npy_read(const char *path, Tensor *out) {
    memset(out, 0, sizeof *out);
    int ndim = 0;
    int64_t dim[TENSOR_MAXDIM];
    uint64_t have;
    FILE *f = open_npy(path, &ndim, dim, &have);
    if (!f) return -1;
    /* element count, overflow-checked against the documented limit */
    int64_t numel = 1;
    int zero = 0;
    for (int k = 0; k < ndim; k++) zero |= dim[k] == 0;
    for (int k = 0; k < ndim && !zero; k++) {
        if (numel > TENSOR_MAXNUMEL / dim[k]) {
            fclose(f);
            return err_set("%s: shape has more than %lld elements", path, (long long)TENSOR_MAXNUMEL);
        }
        numel *= dim[k];
    }
    if (zero) numel = 0;
    uint64_t need = (uint64_t)numel * 4;
    if (have != need) {
        Tensor tmp;
        char sb[160];
        memset(&tmp, 0, sizeof tmp);
        tmp.ndim = ndim;
        memcpy(tmp.dim, dim, sizeof(int64_t) * (size_t)ndim);
        fclose(f);
        return err_set("%s: shape %s needs %llu data bytes but the file has %llu (%s)", path,
                       tensor_shape_str(&tmp, sb, sizeof sb), (unsigned long long)need, (unsigned long long)have,
                       have < need ? "truncated" : "extra bytes at the end");
    }
    if (need > SIZE_MAX) { /* 32-bit machines */
        fclose(f);
        return err_set("%s: %llu data bytes, more than this machine can address", path, (unsigned long long)need);
    }
    Tensor t = tensor_new(ndim, dim);
    unsigned char *raw = (unsigned char *)t.data;
    if (fread(raw, 1, (size_t)need, f) != need) {
        tensor_free(&t);
        fclose(f);
        return err_set("%s: truncated while reading the data", path);
    }
    fclose(f);
    for (size_t k = 0; k < (size_t)numel; k++) { /* in place: element k's bytes are read before it is written */
        uint32_t u = get_le32(raw + 4 * k);
        float v;
        memcpy(&v, &u, 4);
        t.data[k] = v;
    }
    *out = t;
    return 0;
}

/* ---------------------------------------------------------------- writing */

int npy_write(const char *path, const Tensor *t) { return npy_write_data(path, t->data, t->ndim, t->dim); }

int npy_write_data(const char *path, const float *data, int ndim, const int64_t *dim) {
    GAD_ASSERT(ndim >= 0 && ndim <= TENSOR_MAXDIM);
    char hdr[512];
    size_t n = 0, numel = 1;
    n += (size_t)snprintf(hdr + n, sizeof hdr - n, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int k = 0; k < ndim; k++) {
        GAD_ASSERT(dim[k] >= 0);
        numel *= (size_t)dim[k];
        n += (size_t)snprintf(hdr + n, sizeof hdr - n, k ? ", %lld" : "%lld", (long long)dim[k]);
    }
    n += (size_t)snprintf(hdr + n, sizeof hdr - n, ndim == 1 ? ",), }" : "), }");
    /* pad with spaces so that the data starts at a multiple of 64, then '\n' */
    while ((10 + n + 1) % 64) hdr[n++] = ' ';
    hdr[n++] = '\n';
    GAD_ASSERT(n < sizeof hdr && (10 + n) % 64 == 0);
    GAD_ASSERT(data || !numel);

    AtomicFile af;
    if (afile_open(&af, path)) return -1;
    unsigned char pre[10];
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(n & 255);
    pre[9] = (unsigned char)(n >> 8);
    int bad = fwrite(pre, 1, 10, af.f) != 10 || fwrite(hdr, 1, n, af.f) != n;
    unsigned char chunk[1 << 16];
    for (size_t k0 = 0; k0 < numel && !bad; k0 += sizeof chunk / 4) {
        size_t m = numel - k0 < sizeof chunk / 4 ? numel - k0 : sizeof chunk / 4;
        for (size_t k = 0; k < m; k++) {
            uint32_t u;
            memcpy(&u, &data[k0 + k], 4);
            for (int j = 0; j < 4; j++) chunk[4 * k + (size_t)j] = (unsigned char)(u >> (8 * j));
        }
        bad = fwrite(chunk, 4, m, af.f) != m;
    }
    if (bad) {
        err_set("%s: write failed: %s", path, strerror(errno));
        afile_abort(&af);
        return -1;
    }
    return afile_commit(&af);
}
