/* safetensors: read and write the safetensors format
 *   [u64 little-endian header length][JSON header][raw tensor bytes]
 * The header maps names to {"dtype", "shape", "data_offsets": [begin, end]} and may
 * hold "__metadata__": {string: string}. Accepted dtypes: F32, and I64 (for
 * BatchNorm's num_batches_tracked). Refused, with "PATH: reason": any other dtype,
 * offsets out of range, overlapping or not matching dtype x shape, a malformed or
 * oversized header (limit ST_MAX_HEADER), duplicate names, a truncated file.
 * Not for: knowing what the tensors mean (that is nn/). */
#ifndef GAD_IO_SAFETENSORS_H
#define GAD_IO_SAFETENSORS_H
#include <stdint.h>
#include <stddef.h>

#define ST_MAX_HEADER (100u << 20) /* bytes of JSON header we accept */

typedef enum { ST_F32 = 0, ST_I64 = 1 } StDtype;

typedef struct {
    char *name;          /* owned */
    StDtype dtype;
    int ndim;            /* 0..8 */
    int64_t dim[8];
    size_t numel;
    float *f32;          /* [numel] when dtype == ST_F32 (owned), else NULL */
    int64_t *i64;        /* [numel] when dtype == ST_I64 (owned), else NULL */
} StTensor;

/* String key/value pairs (the __metadata__ object). */
typedef struct {
    int n;
    char **key;          /* [n] owned */
    char **val;          /* [n] owned */
} Meta;

typedef struct {
    int n;
    StTensor *t;         /* [n] owned, in file order */
    Meta meta;
} StFile;

/* Read a whole file. Returns 0, or -1 with err_get() naming the file and problem
 * (out is then empty). The caller frees with st_free(). */
int st_read(const char *path, StFile *out);
/* Write atomically (temporary + rename). Tensors are written in the given order,
 * 8-byte aligned. Returns 0 or -1 (err set, nothing left behind). */
int st_write(const char *path, const StFile *f);
void st_free(StFile *f);
/* NULL when absent. */
const StTensor *st_find(const StFile *f, const char *name);
/* Append a tensor that copies `data` (F32) or `idata` (I64). */
void st_add_f32(StFile *f, const char *name, int ndim, const int64_t *dim, const float *data);
void st_add_i64(StFile *f, const char *name, int ndim, const int64_t *dim, const int64_t *idata);

/* Metadata helpers: get returns NULL when absent; set replaces or appends (copies). */
const char *meta_get(const Meta *m, const char *key);
void meta_set(Meta *m, const char *key, const char *val);
void meta_copy(Meta *dst, const Meta *src);
void meta_free(Meta *m);

#endif
