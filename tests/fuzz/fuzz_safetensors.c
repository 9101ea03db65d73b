/* fuzz_safetensors: st_read (io/safetensors.h, with its JSON header) on an arbitrary
 * file. A file that reads is written back with st_write and read again: the
 * tensors and metadata must survive the round trip. */
#include "fuzz.h"
#include "io/safetensors.h"
#include <stdint.h>

static void same(const StFile *a, const StFile *b) {
    FUZZ_CHECK(a->n == b->n && a->meta.n == b->meta.n);
    for (int i = 0; i < a->n; i++) {
        const StTensor *x = &a->t[i], *y = st_find(b, x->name);
        FUZZ_CHECK(y && x->dtype == y->dtype && x->ndim == y->ndim && x->numel == y->numel);
        for (int k = 0; k < x->ndim; k++) FUZZ_CHECK(x->dim[k] == y->dim[k]);
        if (x->numel)
            FUZZ_CHECK(x->dtype == ST_F32 ? !memcmp(x->f32, y->f32, 4 * x->numel) : !memcmp(x->i64, y->i64, 8 * x->numel));
    }
    for (int i = 0; i < a->meta.n; i++) {
        const char *v = meta_get(&b->meta, a->meta.key[i]);
        FUZZ_CHECK(v && !strcmp(v, a->meta.val[i]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    const char *path = fuzz_tmpfile("st", d, n);
    StFile f, g;
    if (st_read(path, &f) != 0) {
        fuzz_check_err();
        FUZZ_CHECK(f.n == 0 && f.t == NULL && f.meta.n == 0);
        return 0;
    }
    char out[160];
    snprintf(out, sizeof out, "%s.out", path);
    FUZZ_CHECK(st_write(out, &f) == 0);
    FUZZ_CHECK(st_read(out, &g) == 0);
    same(&f, &g);
    remove(out);
    st_free(&f);
    st_free(&g);
    return 0;
}
