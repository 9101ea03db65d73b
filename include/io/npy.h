/* npy: NumPy .npy files, version 1.0/2.0/3.0 headers, float32 ('<f4'), C order,
 * little-endian; any other dtype, Fortran order, a bad magic, a shape that does not
 * match the data length or a truncated file is refused with "PATH: reason".
 * Not for: .npz archives, other dtypes, object arrays. */
#ifndef GAD_IO_NPY_H
#define GAD_IO_NPY_H
#include "core/tensor.h"

/* Returns 0, or -1 with err_get() set; on success the caller owns *out (tensor_free). */
int npy_read(const char *path, Tensor *out);
/* Atomic write (temporary + rename). Returns 0 or -1. */
int npy_write(const char *path, const Tensor *t);
int npy_write_data(const char *path, const float *data, int ndim, const int64_t *dim);

#endif
