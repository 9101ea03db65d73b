/* args: flag parsing helpers shared by the commands (see cli/cli.h). */
#include "cli/cli.h"
#include "core/err.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void arg_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gad %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\ntry 'gad %s --help'\n", cmd);
    va_end(ap);
    exit(2);
}

int arg_is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

int arg_str(int argc, char **argv, int *i, const char *name, const char **out) {
    if (strcmp(argv[*i], name)) return 0;
    if (*i + 1 >= argc) arg_usage_error(argv[0], "%s needs a value", name);
    *out = argv[++*i];
    return 1;
}

int arg_int(int argc, char **argv, int *i, const char *name, int *out, int lo, int hi) {
    const char *s;
    if (!arg_str(argc, argv, i, name, &s)) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) arg_usage_error(argv[0], "%s takes a whole number, not '%s'", name, s);
    if (v < lo || v > hi) arg_usage_error(argv[0], "%s must be between %d and %d, not %ld", name, lo, hi, v);
    *out = (int)v;
    return 1;
}

int arg_float(int argc, char **argv, int *i, const char *name, float *out, float lo, float hi) {
    const char *s;
    if (!arg_str(argc, argv, i, name, &s)) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) arg_usage_error(argv[0], "%s takes a number, not '%s'", name, s);
    if (v < lo || v > hi) arg_usage_error(argv[0], "%s must be between %g and %g, not %s", name, lo, hi, s);
    *out = (float)v;
    return 1;
}

int arg_flag(char **argv, int *i, const char *name, int *out) {
    if (strcmp(argv[*i], name)) return 0;
    *out = 1;
    return 1;
}

int cli_fail(void) {
    fprintf(stderr, "gad: %s\n", err_get());
    return err_is_usage() ? 2 : 1;
}

/* "N", "HxW" (1..16384 each) or "none". */
static void parse_size_flag(const char *cmd, const char *flag, const char *s, SizeFlag *f) {
    if (!strcmp(s, "none")) {
        f->set = -1;
        f->a = f->b = 0;
        return;
    }
    long v[2] = {0, 0};
    const char *p = s;
    for (int k = 0; k < 2; k++) {
        char *end;
        errno = 0;
        v[k] = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : -1;
        if (v[k] < 1 || v[k] > 16384 || errno) break;
        p = end;
        if (k == 0 && *p == 'x') p++;
        else break;
    }
    if (v[0] < 1 || v[0] > 16384 || (strchr(s, 'x') && (v[1] < 1 || v[1] > 16384)) || *p)
        arg_usage_error(cmd, "%s takes N, HxW (1..16384) or 'none', not '%s'", flag, s);
    f->set = 1;
    f->a = (int)v[0];
    f->b = (int)v[1];
}

int arg_prep(int argc, char **argv, int *i, const char *cmd, PrepFlags *f) {
    const char *s;
    if (arg_str(argc, argv, i, "--resize", &s)) { parse_size_flag(cmd, "--resize", s, &f->resize); return 1; }
    if (arg_str(argc, argv, i, "--crop", &s)) { parse_size_flag(cmd, "--crop", s, &f->crop); return 1; }
    return 0;
}

/* ---- bundled files ---- */

static const char *argv0_seen;

void cli_set_argv0(const char *argv0) { argv0_seen = argv0; }

/* The folder of the running executable into dir (no trailing '/'): 0, or -1. */
static int exe_dir(char *dir, size_t cap) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) buf[n] = 0;
    else if (argv0_seen && strchr(argv0_seen, '/')) snprintf(buf, sizeof buf, "%s", argv0_seen);
    else if (argv0_seen && getenv("PATH")) { /* a bare name: the first PATH entry that has it */
        const char *p = getenv("PATH");
        buf[0] = 0;
        while (*p && !buf[0]) {
            size_t len = strcspn(p, ":");
            char cand[4096];
            snprintf(cand, sizeof cand, "%.*s/%s", (int)(len ? len : 1), len ? p : ".", argv0_seen);
            if (access(cand, X_OK) == 0) snprintf(buf, sizeof buf, "%s", cand);
            p += len + (p[len] == ':');
        }
        if (!buf[0]) return -1;
    } else return -1;
    char *sl = strrchr(buf, '/');
    if (!sl) return -1;
    *sl = 0;
    if (snprintf(dir, cap, "%s", sl == buf ? "/" : buf) >= (int)cap) return -1;
    return 0;
}

static int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

const char *cli_bundled(const char *rel) {
    static char pool[8][4096 + 64];
    static int next;
    char dir[4096];
    if (exe_dir(dir, sizeof dir) != 0) return rel;
    static const char *const where[] = {"%s/%s", "%s/../share/gad/%s"};
    for (int k = 0; k < 2; k++) {
        char *out = pool[next];
        snprintf(out, sizeof pool[0], where[k], dir, rel);
        if (access(out, R_OK) != 0) continue;
        if (same_file(out, rel)) return rel;
        next = (next + 1) % 8;
        return out;
    }
    return rel;
}
