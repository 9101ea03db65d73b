/* tensor: allocation and shape helpers (see core/tensor.h). */
#include "core/tensor.h"
#include "core/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Tensor tensor_new(int ndim, const int64_t *dim) {
    Tensor t;
    memset(&t, 0, sizeof t);
    GAD_ASSERT(ndim >= 0 && ndim <= TENSOR_MAXDIM);
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) { GAD_ASSERT(dim[i] >= 0); t.dim[i] = dim[i]; }
    t.data = xcalloc(tensor_numel(&t), sizeof(float));
    return t;
}

Tensor tensor_new4(int64_t n, int64_t c, int64_t h, int64_t w) {
    int64_t d[4] = {n, c, h, w};
    return tensor_new(4, d);
}

size_t tensor_numel(const Tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->dim[i];
    return n;
}

void tensor_free(Tensor *t) {
    free(t->data);
    memset(t, 0, sizeof *t);
}

const char *dims_str(int ndim, const int64_t *dim, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ",%lld" : "%lld", (long long)dim[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

const char *tensor_shape_str(const Tensor *t, char *buf, size_t len) { return dims_str(t->ndim, t->dim, buf, len); }
