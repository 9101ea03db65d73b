/* main: `gad COMMAND ...` dispatch and the top-level help. With no arguments, gad
 * runs the whole GAD method on the bundled data and weights (`gad run` defaults). */
#include "cli/cli.h"
#include "core/threads.h"
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
    fprintf(f, "\n`gad COMMAND --help` describes a command's flags.\n"
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

int main(int argc, char **argv) {
    int rc;
    if (check_threads_env()) return 2;
    if (argc < 2) {
        char *args[] = {"run", NULL};
        rc = cmd_run(1, args);
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
