/* fuzz.h: helpers shared by the libFuzzer targets in tests/fuzz/ (built by `make fuzz`,
 * never part of `make test`). Each target feeds arbitrary bytes to one io parser and
 * checks that it either succeeds or returns -1 with a one-line message: a crash,
 * a sanitizer report, a leak, a hang or a wild allocation is a bug.
 * Where a parser succeeds, a target also checks a round trip through the matching
 * writer (an oracle beyond "no crash").
 * Not for: anything shipped in ./gad. */
#ifndef GAD_FUZZ_H
#define GAD_FUZZ_H
#include "core/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A bug that is no memory error (a broken round trip, an empty message): abort
 * with the reason so that libFuzzer saves the input. */
#define FUZZ_CHECK(c)                                                                         \
    do {                                                                                      \
        if (!(c)) {                                                                           \
            fprintf(stderr, "fuzz check failed: %s (%s:%d), err: %s\n", #c, __FILE__, __LINE__, \
                    err_get());                                                               \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* An error message must be one non-empty line. */
static inline void fuzz_check_err(void) {
    const char *e = err_get();
    FUZZ_CHECK(e[0] != 0);
    FUZZ_CHECK(strchr(e, '\n') == NULL);
}

static char fuzz_path[128];
static inline void fuzz_cleanup(void) {
    char out[160];
    snprintf(out, sizeof out, "%s.out", fuzz_path);
    remove(fuzz_path);
    remove(out);
}

/* The parsers of path-only modules read files: write the input to a file in
 * /dev/shm (memory, private to this process; removed at exit) and return its name. */
static inline const char *fuzz_tmpfile(const char *tag, const unsigned char *d, size_t n) {
    char *path = fuzz_path;
    if (!path[0]) atexit(fuzz_cleanup);
    snprintf(path, sizeof fuzz_path, "/dev/shm/gadfuzz-%s-%ld", tag, (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

#endif
