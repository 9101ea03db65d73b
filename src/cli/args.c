/* args: flag parsing helpers shared by the commands (see cli/cli.h). */
#include "cli/cli.h"
#include "core/err.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
