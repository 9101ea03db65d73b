/* fuzz_npy: npy_read (io/npy.h) on an arbitrary file. An array that reads is written
 * back with npy_write and read again: shape and bits must survive. */
#include "fuzz.h"
#include "io/npy.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    const char *path = fuzz_tmpfile("npy", d, n);
    Tensor t, u;
    if (npy_read(path, &t) != 0) {
        fuzz_check_err();
        FUZZ_CHECK(t.data == NULL);
        return 0;
    }
    char out[160];
    snprintf(out, sizeof out, "%s.out", path);
    FUZZ_CHECK(npy_write(out, &t) == 0);
    FUZZ_CHECK(npy_read(out, &u) == 0);
    FUZZ_CHECK(t.ndim == u.ndim && tensor_numel(&t) == tensor_numel(&u));
    for (int k = 0; k < t.ndim; k++) FUZZ_CHECK(t.dim[k] == u.dim[k]);
    if (tensor_numel(&t)) FUZZ_CHECK(!memcmp(t.data, u.data, 4 * tensor_numel(&t)));
    remove(out);
    tensor_free(&t);
    tensor_free(&u);
    return 0;
}
