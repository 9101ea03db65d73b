/* test_cli: the exit status and message of the built ./gad (run from the repository
 * root, as `make test` does after building it) for every kind of bad command line:
 *   2  unknown command or flag, missing or non-numeric value, a value out of range
 *      (a class, target or output the data or model lacks, a method, a thread count);
 *   1  other errors (a missing file);
 *   0  success (--help of every command).
 * Each error must come with a first stderr line starting "gad" that names the
 * problem (the flag, the value or the file). Every case exits before any real work,
 * so the whole file takes about a second.
 * Not for: what the commands compute (test_model, test_train, test_attr, test_gad). */
#include "test.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#define GAD "./gad"
#define DATA "data/fashion-pc-images-idx3-ubyte.gz"
#define VGG "weights/vgg16.safetensors"
#define IMG "tests/fixtures/images/png/rgb8.png"

/* Run ./gad with argv (NULL-terminated; argv[0] is "gad") and GAD_THREADS = threads
 * (NULL: unset). Returns the exit status (128 + signal when killed); stderr's
 * first line goes to line. */
static int run_gad(const char *threads, char *const *argv, char *line, size_t cap) {
    char errf[512];
    snprintf(errf, sizeof errf, "%s/stderr.txt", test_tmpdir());
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644), o = open("/dev/null", O_WRONLY);
        if (e < 0 || o < 0 || dup2(e, 2) < 0 || dup2(o, 1) < 0) _exit(98);
        if (threads) setenv("GAD_THREADS", threads, 1);
        else unsetenv("GAD_THREADS");
        execv(GAD, argv);
        _exit(97);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    line[0] = 0;
    FILE *f = fopen(errf, "r");
    if (f) {
        if (!fgets(line, (int)cap, f)) line[0] = 0;
        fclose(f);
    }
    line[strcspn(line, "\n")] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* gad ARGS... (NULL-terminated) must exit `want`; for want != 0 stderr's first
 * line must start with "gad" and contain `names`. */
static void expect_at(const char *file, int line, int want, const char *names, const char *threads, ...) {
    char *argv[32];
    int n = 0;
    va_list ap;
    va_start(ap, threads);
    argv[n++] = "gad";
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 31;) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char cmd[512] = "gad", msg[1024];
    for (int i = 1; i < n; i++) {
        strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
        strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 1);
    }
    int rc = run_gad(threads, argv, msg, sizeof msg);
    if (rc != want) test_fail(file, line, "`%s`: exit %d, want %d (stderr: %s)", cmd, rc, want, msg);
    else if (want != 0 && (strncmp(msg, "gad", 3) != 0 || !strstr(msg, names)))
        test_fail(file, line, "`%s`: stderr's first line \"%s\" does not name \"%s\"", cmd, msg, names);
}
#define EXPECT(want, names, ...) expect_at(__FILE__, __LINE__, want, names, NULL, __VA_ARGS__, (char *)NULL)
#define EXPECT_ENV(threads, want, names, ...) expect_at(__FILE__, __LINE__, want, names, threads, __VA_ARGS__, (char *)NULL)

TEST(cli_gad_binary_exists) {
    REQUIRE(access(GAD, X_OK) == 0); /* `make test` builds it first */
}

TEST(cli_unknown_command_and_help) {
    EXPECT(2, "unknown command 'frob'", "frob");
    EXPECT(2, "unknown command '--frob'", "--frob");
    EXPECT(0, "", "--help");
    EXPECT(0, "", "help");
    const char *cmds[] = {"predict", "train", "explain", "run", "bench"};
    for (int k = 0; k < 5; k++) {
        EXPECT(0, "", (char *)cmds[k], "--help");
        EXPECT(0, "", (char *)cmds[k], "-h");
        EXPECT(2, "--frob", (char *)cmds[k], "--frob");      /* unknown flag */
        EXPECT(2, "'stray'", (char *)cmds[k], "stray");      /* a stray argument */
    }
}

TEST(cli_missing_and_non_numeric_values) {
    /* a flag at the end without its value */
    EXPECT(2, "--weights", "predict", "--weights");
    EXPECT(2, "--batch", "predict", "--weights", VGG, "--batch");
    EXPECT(2, "--epochs", "train", "--epochs");
    EXPECT(2, "--data", "train", "--model", "vgg16", "--data");
    EXPECT(2, "--method", "explain", "--method");
    EXPECT(2, "--steps", "explain", "--steps");
    EXPECT(2, "--images", "run", "--images");
    EXPECT(2, "--classes", "run", "--classes");
    EXPECT(2, "--threads", "bench", "--threads");
    /* required flags left out */
    EXPECT(2, "--input", "predict", "--weights", VGG);
    EXPECT(2, "--data", "train", "--model", "vgg16", "--out", "x.safetensors");
    EXPECT(2, "--method", "explain", "--weights", VGG, "--input", IMG);
    /* non-numeric values */
    EXPECT(2, "'many'", "predict", "--weights", VGG, "--input", IMG, "--batch", "many");
    EXPECT(2, "'3x'", "predict", "--weights", VGG, "--input", IMG, "--batch", "3x");
    EXPECT(2, "'ten'", "train", "--model", "vgg16", "--data", DATA, "--out", "x.st", "--epochs", "ten");
    EXPECT(2, "'fast'", "train", "--model", "vgg16", "--data", DATA, "--out", "x.st", "--lr", "fast");
    EXPECT(2, "'nan'", "train", "--model", "vgg16", "--data", DATA, "--out", "x.st", "--lr", "nan");
    EXPECT(2, "'1e'", "explain", "--weights", VGG, "--input", IMG, "--method", "ig", "--steps", "1e");
    EXPECT(2, "'a,b'", "explain", "--weights", VGG, "--input", IMG, "--method", "ig", "--smooth", "a,b");
    EXPECT(2, "'four'", "run", "--images", "four");
    EXPECT(2, "'x'", "run", "--alphas", "2,x");
    EXPECT(2, "'1.5'", "run", "--epochs", "1.5");
    EXPECT(2, "'two'", "bench", "--threads", "two");
    EXPECT(2, "'big'", "bench", "--size", "big");
}

TEST(cli_out_of_range_values) {
    char out[512], runout[512];
    snprintf(out, sizeof out, "%s/w.safetensors", test_tmpdir());
    snprintf(runout, sizeof runout, "%s/run", test_tmpdir());
    /* counts and sizes */
    EXPECT(2, "--batch", "predict", "--weights", VGG, "--input", IMG, "--batch", "0");
    EXPECT(2, "--batch", "predict", "--weights", VGG, "--input", IMG, "--batch", "99999999999999999999");
    EXPECT(2, "--epochs", "train", "--model", "vgg16", "--data", DATA, "--out", out, "--epochs", "0");
    EXPECT(2, "--val-frac", "train", "--model", "vgg16", "--data", DATA, "--out", out, "--val-frac", "1");
    EXPECT(2, "--steps", "explain", "--weights", VGG, "--input", IMG, "--method", "ig", "--steps", "-3");
    EXPECT(2, "--images", "run", "--images", "1");
    EXPECT(2, "--size", "bench", "--size", "0");
    /* classes the data does not have (checked once the data is open) */
    EXPECT(2, "class index 99", "train", "--model", "vgg16", "--data", DATA, "--classes", "2,99", "--out", out);
    EXPECT(2, "unknown class 'Hat'", "train", "--model", "vgg16", "--data", DATA, "--classes", "Hat,Coat", "--out", out);
    EXPECT(2, "class index 99", "run", "--quiet", "--classes", "2,99", "--out", runout);
    EXPECT(2, "listed twice", "run", "--quiet", "--classes", "2,2", "--out", runout);
    /* a target or output the model does not have (it has 2 outputs) */
    EXPECT(2, "target 2", "explain", "--weights", VGG, "--input", IMG, "--method", "gxi", "--target", "2");
    EXPECT(2, "target -1", "explain", "--weights", VGG, "--input", IMG, "--method", "gxi", "--target", "-1");
    EXPECT(2, "'Hat'", "explain", "--weights", VGG, "--input", IMG, "--method", "gxi", "--target", "Hat");
    EXPECT(2, "output 5", "run", "--quiet", "--weights", VGG, "--data", DATA, "--classes", "2,4", "--outputs", "0,5",
           "--out", runout);
    /* methods */
    EXPECT(2, "'heat'", "explain", "--weights", VGG, "--input", IMG, "--method", "heat");
    EXPECT(2, "'wavy'", "explain", "--weights", VGG, "--input", IMG, "--method", "ig", "--ig-method", "wavy");
    EXPECT(2, "'heat'", "run", "--methods", "saliency,heat");
    EXPECT(2, "twice", "run", "--methods", "ig,ig");
    EXPECT(2, "'conv'", "bench", "--model", "conv");
    EXPECT(2, "'sideways'", "bench", "--pass", "sideways");
    EXPECT(2, "no case", "bench", "--model", "resnet18-2cls", "--batch", "16"); /* once printed a header only */
    EXPECT(2, "no case", "bench", "--model", "sgemm", "--pass", "forward");
    EXPECT(2, "no case", "bench", "--size", "64");
    EXPECT(2, "'sgemm'", "bench", "--layers", "--model", "sgemm");
    EXPECT(2, "no --pass", "bench", "--layers", "--pass", "forward");
    /* thread counts: GAD_THREADS for every command, --threads for bench */
    EXPECT(2, "--threads", "bench", "--threads", "0");
    EXPECT(2, "--threads", "bench", "--threads", "257");
    const char *cmds[] = {"predict", "train", "explain", "run", "bench"};
    for (int k = 0; k < 5; k++) {
        EXPECT_ENV("0", 2, "GAD_THREADS", (char *)cmds[k], "--help");
        EXPECT_ENV("1000", 2, "GAD_THREADS", (char *)cmds[k], "--help");
        EXPECT_ENV("two", 2, "GAD_THREADS", (char *)cmds[k], "--help");
        EXPECT_ENV("2", 0, "", (char *)cmds[k], "--help");
    }
}

TEST(cli_missing_files_exit_1) {
    char out[512], runout[512];
    snprintf(out, sizeof out, "%s/w.safetensors", test_tmpdir());
    snprintf(runout, sizeof runout, "%s/run", test_tmpdir());
    EXPECT(1, "/nonexistent/w.safetensors", "predict", "--weights", "/nonexistent/w.safetensors", "--input", IMG);
    EXPECT(1, "/nonexistent/x.png", "predict", "--weights", VGG, "--input", "/nonexistent/x.png");
    EXPECT(1, "/nonexistent/x.png", "explain", "--weights", VGG, "--input", "/nonexistent/x.png", "--method", "gxi");
    EXPECT(1, "/nonexistent/data", "train", "--model", "vgg16", "--data", "/nonexistent/data", "--out", out);
    EXPECT(1, "/nonexistent/w0.safetensors", "train", "--init", "/nonexistent/w0.safetensors", "--data", DATA,
           "--out", out);
    EXPECT(1, "/nonexistent/w.safetensors", "run", "--quiet", "--weights", "/nonexistent/w.safetensors", "--out",
           runout);
    EXPECT(1, "/nonexistent/data", "run", "--quiet", "--data", "/nonexistent/data", "--out", runout);
    /* a file that is not what it should be: exit 1, not a crash */
    EXPECT(1, "README.md", "predict", "--weights", "README.md", "--input", IMG);
    EXPECT(1, "README.md", "predict", "--weights", VGG, "--input", "README.md");
    CHECK(access(out, F_OK) != 0); /* nothing written */
}
