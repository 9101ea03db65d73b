/* cli: the `gad` commands and the small argument helpers they share.
 * Exit codes: 0 success, 1 an error (bad file, bad data: the message names it),
 * 2 a usage error (unknown command or flag, missing or non-numeric value, value out
 * of range). Every command prints its help for --help and exits 0.
 * Not for: any computation; a command parses flags, calls the layers below, prints. */
#ifndef GAD_CLI_H
#define GAD_CLI_H
#include "core/tensor.h"
#include "io/image.h"
#include "nn/model.h"
#include <stdio.h>

int cmd_predict(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_support(int argc, char **argv);
int cmd_merge(int argc, char **argv);
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
/* --resize N|HxW|none and --crop N|HxW|none: torchvision's preprocessing chosen on
 * the command line, over the weights' metadata ("resize", "crop"). */
typedef struct {
    int set;  /* 0 not given, 1 given, -1 'none' */
    int a, b; /* N (b = 0) or H x W */
} SizeFlag;
typedef struct {
    SizeFlag resize, crop;
} PrepFlags;
#define CLI_PREP_HELP                                                                   \
    "  --resize N|HxW     torchvision's Resize: the shorter side to N (or exactly\n"     \
    "                     HxW), Pillow's antialiased bilinear; 'none': gad's own\n"      \
    "                     bilinear resize to the input size (default: the weights'\n"   \
    "                     metadata 'resize')\n"                                          \
    "  --crop N|HxW       torchvision's CenterCrop after it; 'none' (default: the\n"     \
    "                     weights' 'crop')\n"
/* Parse --resize / --crop at argv[*i] into f (1 when it was one of them; a bad value
 * is a usage error of command cmd, exit 2). */
int arg_prep(int argc, char **argv, int *i, const char *cmd, PrepFlags *f);
/* The preprocessing of images fed to m: f's choices where given, else the weights'
 * metadata, with their mean/std; *h, *w the input size (0: what p makes of each
 * image). f may be NULL. */
void cli_prep(const Model *m, const PrepFlags *f, ImagePrep *p, int *h, int *w);
/* The images given to predict/explain: every --input (a file, or a folder whose
 * entries are all taken, sorted by name) and the lines of every --input-list file
 * (one path per line, relative to the current folder; blank lines and lines
 * starting with '#' skipped), in the order given. */
typedef struct {
    int n, cap;
    char **path;   /* [n] owned */
    int *listed;   /* [n] 1 when found by listing a folder: unreadable, it is skipped
                    * with a warning (an error with --strict); a file named on the
                    * command line or in a list that cannot be read is an error */
} InputList;
/* Add one --input. Returns 0 or -1 (err set: no such file or folder). */
int cli_inputs_add(InputList *l, const char *arg);
/* Add the paths listed in file. Returns 0 or -1 (err set, naming file and line). */
int cli_inputs_add_list(InputList *l, const char *file);
void cli_inputs_free(InputList *l);
/* Item `it` of l loaded for m as cli_load_input does. Returns 0 (the caller owns
 * *x), 1 when it was skipped with a warning (a file found in a folder that is not
 * an image gad can read, unless strict), or -1 (err set). */
int cli_load_item(const InputList *l, int it, const Model *m, const PrepFlags *f, int strict, Tensor *x);
/* Help lines of the input flags shared by predict and explain. */
#define CLI_INPUTS_HELP                                                                 \
    "  --input X          an image (JPEG, PNG, PPM, PGM), an .npy float32\n"             \
    "                     [N,3,H,W] or [3,H,W] fed as it is, or a folder of images;\n"   \
    "                     repeat it, or name the files after the flags\n"                \
    "  --input-list F     a text file of image paths, one per line ('#' comments)\n"     \
    "  --strict           a file in a folder that is not an image gad can read is\n"     \
    "                     an error (default: a warning naming it, and skipped)\n"
/* The name of image k of item `path` holding n images: the path itself, or
 * "path[k]" for an .npy of several. Into buf (cap bytes). */
const char *cli_image_name(const char *path, int n, int k, char *buf, size_t cap);
/* One CSV field, quoted as RFC 4180 asks when it holds a comma, quote or newline. */
void cli_csv_field(FILE *f, const char *s);
/* 1 when path is an .npy file (by its magic bytes). */
int cli_is_npy(const char *path);
/* The input of predict/explain: an .npy as it is, or an image preprocessed for m
 * (cli_prep). Returns 0 (the caller owns *x: tensor_free) or -1 with err set. */
int cli_load_input(const char *path, const Model *m, const PrepFlags *f, Tensor *x);
/* Print "gad: " + err_get() and return 1, or 2 when the error is a bad argument
 * (set with err_set_usage: e.g. a class the data does not have), for
 * `return cli_fail();`. */
int cli_fail(void);
/* Where the bundled file `rel` (e.g. "weights/vgg16.safetensors") is, so that gad
 * finds its data and weights from any folder: beside the executable (the repository,
 * /proc/self/exe where there is one, else argv[0] as given to cli_set_argv0, looked
 * up in PATH when it has no '/'), else in the installed share folder
 * (EXE_DIR/../share/gad/rel, what `make install` writes). Gives rel itself when the
 * current folder holds the same file (so paths stay short in what gad writes) or when
 * neither place has it (the error then names rel). The result lives until the 8th
 * next call. */
const char *cli_bundled(const char *rel);
void cli_set_argv0(const char *argv0);

#endif
