/* main: `gad COMMAND ...` dispatch and the top-level help. With no arguments, gad
 * runs the whole GAD method on the bundled data and weights (`gad run` defaults). */
#include "cli/cli.h"
#include "core/threads.h"
#include "gad.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *what;
} commands[] = {
    {"predict", cmd_predict, "logits, probabilities and class of images under a model"},
    {"train", cmd_train, "train a vgg16 or resnet18 classifier on an image folder or IDX data"},
    {"explain", cmd_explain, "attribution maps (saliency, deconv, gxi, guided, ig) as .npy and PNG"},
    {"explain-gad", cmd_explain_gad, "every step of GAD for one image of a finished run, printed and drawn"},
    {"run", cmd_run, "the whole GAD method: support models, maps, hulls, RC/RS tables, report"},
    {"support", cmd_support, "train a run's support models only (a first step for schedulers)"},
    {"merge", cmd_merge, "put the shards of a run (gad run --shard K/N) together into its report"},
    {"bench", cmd_bench, "speed of the kernels and models (images/s, GFLOP/s)"},
    {"tour", cmd_tour, "the printed steps of docs/tour.md's walks (relu, ig)"},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: gad [COMMAND [FLAGS]]\n"
            "GAD (Gradient Artificial Distancing): gradient-based explanations made interpretable.\n"
            "With no command, runs `gad run` on the bundled data (data/) and models (weights/).\n\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\n`gad COMMAND --help` describes a command's flags; `gad --version` the build.\n"
               "Threads: GAD_THREADS=N in the environment (default: the online cores).\n");
}

/* GAD_THREADS, when set, must be a whole number 1..256: a typo should not silently
 * run on every core. Returns 0, or prints a one-line usage message and returns 2. */
static int check_threads_env(void) {
    const char *e = getenv("GAD_THREADS");
    if (!e || !*e) return 0;
    char *end;
    errno = 0;
    long v = strtol(e, &end, 10);
    if (errno || end == e || *end || v < 1 || v > 256) {
        fprintf(stderr, "gad: GAD_THREADS must be a whole number between 1 and 256, not '%s'\n", e);
        return 2;
    }
    return 0;
}

/* The version, and how this binary was built (for a bug report or an audit). */
static void version(void) {
    printf("gad " GAD_VERSION "\n");
#if defined(__clang__)
    printf("compiler: clang %d.%d.%d", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    printf("compiler: gcc %d.%d.%d", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    printf("compiler: unknown");
#endif
    printf(", C %ld; vectors:", (long)__STDC_VERSION__);
#if defined(__AVX512F__)
    printf(" AVX-512");
#elif defined(__AVX2__)
    printf(" AVX2");
#elif defined(__SSE2__)
    printf(" SSE2");
#elif defined(__ARM_NEON)
    printf(" NEON");
#else
    printf(" none");
#endif
#if defined(__FMA__)
    printf("+FMA");
#endif
#ifdef GAD_NO_THREADS
    printf("; threads: off");
#else
    printf("; threads: pthreads");
#endif
#ifdef GAD_REFERENCE
    printf("; reference path");
#endif
    printf("\n");
}

int main(int argc, char **argv) {
    int rc;
    cli_set_argv0(argv[0]);
    if (check_threads_env()) return 2;
    if (argc < 2) {
        char *args[] = {"run", NULL};
        rc = cmd_run(1, args);
    } else if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        version();
        rc = 0;
    } else if (arg_is_help(argv[1]) || !strcmp(argv[1], "help")) {
        usage(stdout);
        rc = 0;
    } else {
        rc = -1;
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (!strcmp(argv[1], commands[i].name)) { rc = commands[i].fn(argc - 1, argv + 1); break; }
        if (rc == -1) {
            fprintf(stderr, "gad: unknown command '%s'\n", argv[1]);
            usage(stderr);
            rc = 2;
        }
    }
    par_shutdown();
    return rc;
}
