/* file: bounded whole-file reads and atomic writes (see io/file.h).
 * The temporaries being written are also listed for a SIGINT / SIGTERM / SIGHUP
 * handler (installed by the first afile_open, unless the signal is ignored or
 * handled already) that removes them before the process dies of the signal, so an
 * interrupted run leaves neither a half-written output nor a stray "X.tmp.PID". */
#include "io/file.h"
#include "core/err.h"
#include <errno.h>
#include <signal.h>
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

/* ---- temporaries removed on a fatal signal ---- */

#define AFILE_LIVE 16 /* more open at once are still atomic, only not cleaned up */
static char *volatile live[AFILE_LIVE];

static void on_signal(int sig) {
    for (int i = 0; i < AFILE_LIVE; i++) {
        char *p = live[i];
        if (p) unlink(p); /* async-signal-safe */
    }
    signal(sig, SIG_DFL); /* then die of the signal as we would have */
    raise(sig);
}

static void install_handlers(void) {
    static int done;
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    if (done) return;
    done = 1;
    for (int i = 0; i < 3; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static void live_set(char *old, char *now) {
    for (int i = 0; i < AFILE_LIVE; i++)
        if (live[i] == old) { live[i] = now; return; }
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
    install_handlers();
    live_set(NULL, af->tmp);
    return 0;
}

void afile_abort(AtomicFile *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) remove(af->tmp);
    if (af->tmp) live_set(af->tmp, NULL);
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
    live_set(af->tmp, NULL);
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
