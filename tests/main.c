/* main.c: the test runner. Runs every TEST found by the Makefile (build/test_registry.h),
 * each in a forked process; with arguments, only those whose name contains one of them
 * (if any is given without a leading '-') and none of those given with a '-'; a pattern
 * that ends in '$' matches a whole name ('-ops_linear$' leaves out ops_linear only).
 * A test that runs longer than GAD_TEST_TIMEOUT seconds (default 600) fails. Each test's
 * line gives its wall time and the CPU time of its process and what it waited for
 * (the measure of its cost on a loaded machine or under an emulator).
 * Ends with the line "N passed, N failed" and exits 1 if anything failed. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "core/err.h"
#include "io/file.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define X(name) void test_##name(void);
#include "test_registry.h"
#undef X

static const struct { const char *name; void (*fn)(void); } tests[] = {
#define X(name) {#name, test_##name},
#include "test_registry.h"
#undef X
    {NULL, NULL}};

int test_failures = 0;

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    fflush(stdout);
    test_failures++;
}

int test_close(const char *what, const float *a, const float *b, size_t n, float atol, float rtol,
               const char *file, int line) {
    double worst = 0, worst_abs = 0;
    size_t wi = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double tol = atol + rtol * fabs((double)b[i]);
        if (!(d <= tol)) bad = 1; /* NaN counts as bad */
        double r = d / tol;
        if (!(r <= worst)) { worst = r; wi = i; }
        if (d > worst_abs) worst_abs = d;
    }
    fprintf(stdout, "    %-40s n=%-8zu max|diff|=%.3g (worst at %zu: %.7g vs %.7g; tol atol=%g rtol=%g)\n",
            what, n, worst_abs, wi, n ? a[wi] : 0.0f, n ? b[wi] : 0.0f, atol, rtol);
    if (bad) test_fail(file, line, "%s: not within tolerance", what);
    return !bad;
}

const char *fixture(const char *rel) {
    static char buf[1024];
    const char *root = getenv("GAD_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : "tests/fixtures", rel);
    return buf;
}

/* Each test gets a fresh directory (mkdtemp, made by the runner before the fork),
 * removed after the test passes and kept, with its path printed, when it fails. A
 * directory named after the process id could hold an older run's files (ids are
 * reused), which once made a cache-dependent test fail. */
static char tmpdir_buf[256];
const char *test_tmpdir(void) { return tmpdir_buf; }

static void remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            char sub[1024];
            while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                    remove_tree(sub);
                }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

const char *test_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", test_tmpdir(), name);
    return buf[k];
}

unsigned char *test_slurp(const char *path, size_t *len) {
    unsigned char *d = NULL;
    if (file_read_all(path, (size_t)1 << 26, &d, len)) return NULL;
    return d;
}

void test_spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    GAD_ASSERT(f);
    if (len) GAD_ASSERT(fwrite(data, 1, len, f) == len);
    fclose(f);
}

static double cpu_seconds(const struct rusage *r) {
    return (double)r->ru_utime.tv_sec + (double)r->ru_stime.tv_sec +
           1e-6 * (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec);
}

/* Is the test `name` selected by argv (see the top of this file)? */
static int matches(const char *name, const char *pat) {
    const size_t n = strlen(pat);
    if (n && pat[n - 1] == '$') return strlen(name) == n - 1 && strncmp(name, pat, n - 1) == 0;
    return strstr(name, pat) != NULL;
}

static int selected(const char *name, int argc, char **argv) {
    int want = 0, hit = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            if (matches(name, argv[i] + 1)) return 0;
        } else {
            want = 1;
            hit |= matches(name, argv[i]);
        }
    }
    return !want || hit;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (int i = 0; tests[i].name; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        fprintf(stdout, "%s\n", tests[i].name);
        fflush(stdout);
        mkdir("build", 0777);
        mkdir("build/tmp", 0777);
        snprintf(tmpdir_buf, sizeof tmpdir_buf, "build/tmp/%.100s.XXXXXX", tests[i].name);
        if (!mkdtemp(tmpdir_buf)) {
            fprintf(stdout, "  FAIL %s (cannot make a directory %s)\n", tests[i].name, tmpdir_buf);
            failed++;
            continue;
        }
        struct timespec t0, t1;
        struct rusage r0, r1;
        getrusage(RUSAGE_CHILDREN, &r0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid_t pid = fork();
        if (pid == 0) {
            /* a hung test becomes a failure (SIGALRM) instead of a stuck run */
            const char *lim = getenv("GAD_TEST_TIMEOUT");
            alarm(lim && atoi(lim) > 0 ? (unsigned)atoi(lim) : 600u);
            tests[i].fn();
            fflush(stdout);
            _exit(test_failures ? 1 : 0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        getrusage(RUSAGE_CHILDREN, &r1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        double cpu = cpu_seconds(&r1) - cpu_seconds(&r0);
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (ok) passed++; else failed++;
        if (WIFSIGNALED(status))
            fprintf(stdout, "  FAIL %s (killed by signal %d)\n", tests[i].name, WTERMSIG(status));
        else
            fprintf(stdout, "  %s %s (%.2fs, cpu %.2fs)\n", ok ? "ok  " : "FAIL", tests[i].name, dt, cpu);
        if (ok) remove_tree(tmpdir_buf);
        else fprintf(stdout, "       its files are kept in %s\n", tmpdir_buf);
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
