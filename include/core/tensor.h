/* tensor: an owned float32 array with a shape, the currency of the file formats
 * (npy, safetensors) and of the command line. Kernels never see this struct: they
 * take flat arrays and explicit sizes. Row-major (C order). */
#ifndef GAD_CORE_TENSOR_H
#define GAD_CORE_TENSOR_H
#include <stddef.h>
#include <stdint.h>

#define TENSOR_MAXDIM 8
/* Documented limit on elements of one tensor read from a file (2^31 - 1). */
#define TENSOR_MAXNUMEL ((int64_t)2147483647)

typedef struct {
    float *data;               /* [numel], owned (free with tensor_free) */
    int ndim;                  /* 0..TENSOR_MAXDIM */
    int64_t dim[TENSOR_MAXDIM];
} Tensor;

/* Zeroed tensor of the given shape; the caller owns it. */
Tensor tensor_new(int ndim, const int64_t *dim);
Tensor tensor_new4(int64_t n, int64_t c, int64_t h, int64_t w);
size_t tensor_numel(const Tensor *t);
void tensor_free(Tensor *t);
/* "[2,3,32,32]" into buf (for messages); dims_str: the same for ndim sizes dim. */
const char *tensor_shape_str(const Tensor *t, char *buf, size_t len);
const char *dims_str(int ndim, const int64_t *dim, char *buf, size_t len);

#endif
