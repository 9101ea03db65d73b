/* idx: IDX reader (see io/idx.h). The whole file is read, gunzipped if it starts
 * with the gzip magic, and the header checked against the data length.
 * Limits (each a one-line error, checked before the data buffer is allocated):
 * file and gunzipped size <= IDX_MAX_BYTES (2 GiB); each dimension <= INT_MAX and
 * their product <= IDX_MAX_BYTES (checked for overflow); the data length must
 * equal the product exactly. A gzip ISIZE is only compared, never trusted.
 * Not for: element types other than unsigned bytes, streaming. */
#include "io/idx.h"
#include "core/err.h"
#include "io/file.h"
#include "io/zlib.h"
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int parse_plain(const unsigned char *b, size_t n, const char *name, IdxU8 *out) {
    if (n < 4) return err_set("%s: truncated IDX file (%zu bytes, no header)", name, n);
    if (b[0] != 0 || b[1] != 0)
        return err_set("%s: not an IDX file (magic %02x%02x%02x%02x)", name, b[0], b[1], b[2], b[3]);
    if (b[2] != 0x08) return err_set("%s: IDX element type 0x%02x not supported (only unsigned bytes, 0x08)", name, b[2]);
    int nd = b[3];
    if (nd < 1 || nd > 4) return err_set("%s: IDX file with %d dimensions (want 1 to 4)", name, nd);
    if (n < 4 + 4 * (size_t)nd) return err_set("%s: truncated IDX header", name);
    size_t numel = 1;
    for (int i = 0; i < nd; i++) {
        const unsigned char *p = b + 4 + 4 * i;
        uint32_t d = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (d > INT_MAX || (d && numel > IDX_MAX_BYTES / d))
            return err_set("%s: IDX size %u in dimension %d is too large", name, d, i);
        out->dim[i] = (int)d;
        numel *= d;
    }
    size_t have = n - 4 - 4 * (size_t)nd;
    if (have != numel)
        return err_set("%s: IDX size mismatch: the header says %zu bytes of data, the file has %zu", name, numel, have);
    out->ndim = nd;
    out->numel = numel;
    out->data = xmalloc(numel);
    memcpy(out->data, b + 4 + 4 * nd, numel);
    return 0;
}

int idx_parse(const unsigned char *buf, size_t n, const char *name, IdxU8 *out) {
    memset(out, 0, sizeof *out);
    if (n >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
        unsigned char *raw;
        size_t len;
        if (zlib_gunzip(buf, n, IDX_MAX_BYTES, &raw, &len)) return err_prefix(name);
        int r = parse_plain(raw, len, name, out);
        free(raw);
        return r;
    }
    return parse_plain(buf, n, name, out);
}

int idx_read(const char *path, IdxU8 *out) {
    unsigned char *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    if (file_read_all(path, IDX_MAX_BYTES, &buf, &n)) return -1;
    int r = idx_parse(buf, n, path, out);
    free(buf);
    return r;
}

void idx_free(IdxU8 *a) {
    free(a->data);
    memset(a, 0, sizeof *a);
}
