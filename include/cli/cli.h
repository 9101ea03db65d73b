/* cli: the `gad` commands and the small argument helpers they share.
 * Exit codes: 0 success, 1 an error (bad file, bad data: the message names it),
 * 2 a usage error (unknown command or flag, missing or non-numeric value, value out
 * of range). Every command prints its help for --help and exits 0.
 * Not for: any computation; a command parses flags, calls the layers below, prints. */
#ifndef GAD_CLI_H
#define GAD_CLI_H
#include "core/tensor.h"
#include "nn/model.h"

int cmd_predict(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_explain_gad(int argc, char **argv);
int cmd_tour(int argc, char **argv);

/* Flag parsing over argv[1..argc-1] (argv[0] is the command name). Each returns 1
 * when argv[*i] is the flag `name` (e.g. "--weights"), stores the value, and moves
 * *i past it; 0 when argv[*i] is another flag. A missing, non-numeric or out-of-range
 * value prints "gad CMD: ..." and exits 2. */
int arg_str(int argc, char **argv, int *i, const char *name, const char **out);
int arg_int(int argc, char **argv, int *i, const char *name, int *out, int lo, int hi);
int arg_float(int argc, char **argv, int *i, const char *name, float *out, float lo, float hi);
int arg_flag(char **argv, int *i, const char *name, int *out);
/* True for -h / --help. */
int arg_is_help(const char *a);
/* Print "gad CMD: MESSAGE" and "try 'gad CMD --help'", exit 2. */
void arg_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;
/* The input of predict/explain: an .npy as it is, or an image preprocessed for m.
 * Returns 0 (the caller owns *x: tensor_free) or -1 with err set. */
int cli_load_input(const char *path, const Model *m, Tensor *x);
/* Print "gad: " + err_get() and return 1, or 2 when the error is a bad argument
 * (set with err_set_usage: e.g. a class the data does not have), for
 * `return cli_fail();`. */
int cli_fail(void);

#endif
