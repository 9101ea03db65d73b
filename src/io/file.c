/* file: bounded whole-file reads and atomic writes (see io/file.h). */
#include "io/file.h"
#include "core/err.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

int file_read_all(const char *path, size_t max_bytes, unsigned char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    size_t cap = max_bytes < 1 << 16 ? max_bytes : 1 << 16, n = 0;
    unsigned char *buf = xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) { /* at the limit: fine only if nothing follows */
                if (fgetc(f) == EOF && !ferror(f)) break;
                free(buf);
                fclose(f);
                return err_set("%s: larger than the limit of %zu bytes", path, max_bytes);
            }
            cap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            buf = xrealloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    if (bad) { free(buf); return err_set("%s: read error: %s", path, strerror(bad)); }
    *data = buf;
    *len = n;
    return 0;
}

int afile_open(AtomicFile *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = xstrdup(path);
    af->tmp = xmalloc(n);
    snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        err_set("%s: cannot write: %s", path, strerror(errno));
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return -1;
    }
    return 0;
}

void afile_abort(AtomicFile *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) remove(af->tmp);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

int afile_commit(AtomicFile *af) {
    int bad = fflush(af->f) != 0 || ferror(af->f);
    if (!bad) bad = fsync(fileno(af->f)) != 0 && errno != EINVAL;
    if (fclose(af->f) != 0) bad = 1;
    af->f = NULL;
    if (bad) {
        err_set("%s: write failed: %s", af->path, strerror(errno));
        afile_abort(af);
        return -1;
    }
    if (rename(af->tmp, af->path) != 0) {
        err_set("%s: cannot rename into place: %s", af->path, strerror(errno));
        afile_abort(af);
        return -1;
    }
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
    return 0;
}

int file_mkdirs(const char *dir) {
    char *p = xstrdup(dir);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c == '/' || c == 0) {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                err_set("%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    return 0;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}
