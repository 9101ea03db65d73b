/* idx: MNIST-style IDX files of unsigned bytes, plain or gzip'd (recognised by the
 * gzip magic 1f 8b, not by the name):
 *   [00 00 08 ndim] [ndim big-endian u32 sizes] [the bytes, C order]
 * e.g. images 0x00000803 [n,rows,cols], labels 0x00000801 [n]. The header sizes must
 * account for the data exactly (no overflow, nothing missing, nothing extra).
 * Not for: other element types (0x09..0x0E are refused), writing IDX files. */
#ifndef GAD_IO_IDX_H
#define GAD_IO_IDX_H
#include <stddef.h>

#define IDX_MAX_BYTES ((size_t)1 << 31) /* limit on the (decompressed) file size */

typedef struct {
    int ndim;             /* 1..4 */
    int dim[4];           /* sizes, each <= INT_MAX */
    size_t numel;         /* product of dim */
    unsigned char *data;  /* [numel] (owned: idx_free) */
} IdxU8;

/* Read PATH. Returns 0, or -1 with err_get() = "PATH: reason" (nothing allocated).
 * The caller frees with idx_free(). */
int idx_read(const char *path, IdxU8 *out);
/* The same from bytes in memory (gzip'd or not); name is used in messages. */
int idx_parse(const unsigned char *buf, size_t n, const char *name, IdxU8 *out);
void idx_free(IdxU8 *a);

#endif
