/* test_tour: docs/tour.md cannot rot.
 *   - every `./gad ...` line of its ```sh blocks runs, in order, from a scratch
 *     directory holding links to the built ./gad, data/ and weights/ (so the walks'
 *     output directories land there, not in the repository), and exits 0; then every
 *     `./gad ...` named inline in the text (the table, the "Try" paragraphs) runs in
 *     the same directory after them and exits 0 too;
 *   - every line of a ```text check block is a line of the previous command's output;
 *   - `gad explain-gad` finds its numbers the same as the run's (never "DIFFERENT");
 *   - every reference `PATH:A-B` (`NAME`) names lines A..B of PATH that contain NAME,
 *     and a range ends where its code ends (line B starts with '}').
 * The walks train four small support models: about 10 s of CPU in all.
 * Not for: what the commands compute (test_explain.c, test_attr.c, test_gad.c). */
#include "test.h"
#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A whole text file as a NUL-terminated string (caller frees), or NULL. */
static char *slurp_text(const char *path) {
    size_t len;
    unsigned char *d = test_slurp(path, &len);
    if (!d) return NULL;
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, d, len);
        t[len] = 0;
    }
    free(d);
    return t;
}

#define TOUR "docs/tour.md"

/* Run `cmd` with /bin/sh in dir, stdout and stderr into out_path. Returns the exit status. */
static int sh_in(const char *dir, const char *cmd, const char *out_path) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || chdir(dir) != 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(98);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(97);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run cmd in dir (output into outp); check it exits 0 and, for explain-gad, that
 * it agrees with its run. Returns the output (caller frees). */
static char *run_tour_command(const char *dir, const char *cmd, const char *outp) {
    int st = sh_in(dir, cmd, outp);
    char *out = slurp_text(outp);
    CHECKF(st == 0, "`%s` exited %d:\n%s", cmd, st, out ? out : "");
    if (strstr(cmd, "explain-gad"))
        CHECKF(out && strstr(out, ": the same") && !strstr(out, "DIFFERENT"), "`%s` does not agree with its run:\n%s",
               cmd, out ? out : "");
    return out;
}

/* 1 if `line` (without its newline) is a whole line of text. */
static int has_line(const char *text, const char *line, size_t len) {
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && !memcmp(p, line, len)) return 1;
    }
    return 0;
}

TEST(tour_commands_run) {
    char *doc = slurp_text(TOUR);
    REQUIRE(doc != NULL);
    char cwd[1024], dir[1024], cmd[8192], link[1200], outp[1100];
    REQUIRE(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(dir, sizeof dir, "%s/tour", test_tmpdir());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cd '%s' && ln -sf '%s/gad' gad && ln -sfn '%s/data' data && "
                              "ln -sfn '%s/weights' weights", dir, dir, cwd, cwd, cwd);
    REQUIRE(system(cmd) == 0);
    snprintf(outp, sizeof outp, "%s/out.txt", test_tmpdir());
    char *out = NULL, inline_cmd[16][512];
    int fence = 0, check = 0, ncmd = 0, nchecked = 0, ninline = 0;
    for (char *line = doc; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n >= 3 && !strncmp(line, "```", 3)) {
            if (fence) fence = check = 0;
            else {
                fence = 1;
                check = n >= 13 && !strncmp(line, "```text check", 13);
            }
        } else if (fence && n > 6 && !strncmp(line, "./gad ", 6)) {
            snprintf(cmd, sizeof cmd, "%.*s", (int)n, line);
            free(out);
            out = run_tour_command(dir, cmd, outp);
            ncmd++;
        } else if (fence && check && n > 0) {
            CHECKF(out && has_line(out, line, n), "the output of the command before does not have the line\n%.*s\n"
                   "it is:\n%s", (int)n, line, out ? out : "(none)");
            nchecked++;
        }
        if (!fence) /* `./gad ...` inline: run after the blocks */
            for (const char *s = line; (s = strstr(s, "`./gad ")) != NULL && s < line + n; s++) {
                const char *e = strchr(s + 1, '`');
                REQUIRE(e != NULL && e < line + n && e - s - 1 < 512);
                REQUIRE(ninline < 16);
                snprintf(inline_cmd[ninline++], 512, "%.*s", (int)(e - s - 1), s + 1);
                s = e;
            }
        line = nl ? nl + 1 : NULL;
    }
    for (int k = 0; k < ninline; k++) {
        free(out);
        out = run_tour_command(dir, inline_cmd[k], outp);
    }
    CHECKF(ncmd >= 6 && nchecked >= 3 && ninline >= 5, "%d commands, %d checked lines, %d inline commands", ncmd,
           nchecked, ninline);
    snprintf(link, sizeof link, "rm -rf '%s'", dir);
    CHECK(system(link) == 0);
    free(out);
    free(doc);
}

/* Lines a..b (1-based) of path contain name? *where gets the first line of the file
 * that has it (0: none). */
static int lines_have(const char *path, int a, int b, const char *name, int *where) {
    char *t = slurp_text(path);
    *where = 0;
    if (!t) return 0;
    int ln = 1, ok = 0;
    for (char *p = t; p && *p; ln++) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        if (strstr(p, name)) {
            if (!*where) *where = ln;
            if (ln >= a && ln <= b) ok = 1;
        }
        p = nl ? nl + 1 : NULL;
    }
    free(t);
    return ok;
}

/* Does line ln (1-based) of path start with c? */
static int line_starts(const char *path, int ln, char c) {
    char *t = slurp_text(path);
    if (!t) return 0;
    char *p = t;
    for (int k = 1; k < ln && p; k++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    int ok = p && *p == c;
    free(t);
    return ok;
}

TEST(tour_references_point_at_their_code) {
    char *doc = slurp_text(TOUR);
    REQUIRE(doc != NULL);
    int refs = 0;
    for (char *p = doc; (p = strchr(p, '`')) != NULL;) {
        /* `PATH:A` or `PATH:A-B`, then whitespace, then (`NAME`) */
        char *q = p + 1, *colon = NULL;
        while (*q && (isalnum((unsigned char)*q) || strchr("_./-:", *q))) {
            if (*q == ':' && !colon) colon = q;
            q++;
        }
        if (*q != '`' || !colon || colon == p + 1 || !isdigit((unsigned char)colon[1])) {
            p++;
            continue;
        }
        char path[256], name[256];
        snprintf(path, sizeof path, "%.*s", (int)(colon - p - 1), p + 1);
        int a = atoi(colon + 1), b = a;
        const char *dash = strchr(colon, '-');
        if (dash && dash < q) b = atoi(dash + 1);
        char *r = q + 1;
        while (*r == ' ' || *r == '\n') r++;
        CHECKF(r[0] == '(' && r[1] == '`', "%s:%d-%d has no (`NAME`) after it", path, a, b);
        if (r[0] == '(' && r[1] == '`') {
            char *e = strchr(r + 2, '`');
            REQUIRE(e != NULL);
            snprintf(name, sizeof name, "%.*s", (int)(e - r - 2), r + 2);
            int where;
            CHECKF(b >= a && b - a <= 150, "%s:%d-%d: a range of at most 150 lines", path, a, b);
            CHECKF(lines_have(path, a, b, name, &where),
                   "docs/tour.md: %s:%d-%d should show `%s`; it is at line %d now: update the tour", path, a, b, name,
                   where);
            CHECKF(b == a || line_starts(path, b, '}'), "docs/tour.md: %s:%d-%d should end where `%s` ends (a '}')",
                   path, a, b, name);
            refs++;
        }
        p = q + 1;
    }
    CHECKF(refs >= 20, "only %d references found", refs);
    free(doc);
}
