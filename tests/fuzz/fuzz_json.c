/* fuzz_json: the strict JSON parser (io/json.h) on arbitrary text, as used for the
 * safetensors header. On success the tree is walked (every node reachable, every
 * string NUL-terminated) and freed; on failure the message must be one line. */
#include "fuzz.h"
#include "io/json.h"
#include <stdint.h>

static size_t walk(const Json *j, int depth) {
    size_t n = 1;
    FUZZ_CHECK(depth <= JSON_MAX_DEPTH + 1);
    if (j->type == JSON_STRING) FUZZ_CHECK(j->str && strlen(j->str) < 1u << 30);
    for (int k = 0; k < j->n; k++) {
        if (j->type == JSON_OBJECT) FUZZ_CHECK(j->key[k] != NULL);
        n += walk(&j->kid[k], depth + 1);
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    Json root;
    if (json_parse((const char *)d, n, &root) == 0) {
        FUZZ_CHECK(walk(&root, 0) <= JSON_MAX_NODES);
        json_free(&root);
    } else {
        fuzz_check_err();
        FUZZ_CHECK(root.type == JSON_NULL && root.n == 0);
    }
    return 0;
}
