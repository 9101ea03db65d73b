/* gad.h: the public C API of libgad, the one header an embedding program includes
 * (installed as <gad/gad.h>; build with `pkg-config --cflags --libs gad`).
 * Load a model exported by tools/data/export_torchvision.py or trained by `gad
 * train`, preprocess an image as the model's metadata says, predict, explain with one
 * attribution method, or run the whole GAD method and write its report.
 * The installed libraries export only the gad_ names declared here: gad's internal
 * functions (gemm, model_load, ...) are local to the library and cannot clash with
 * an embedding program's own.
 * Errors: a function that fails returns NULL or -1 and leaves a one-line message
 * (naming the file and what is wrong) for gad_last_error(); nothing is printed,
 * except by gad_run_report, which prints its progress unless told to be quiet.
 * Threads: gad uses its own worker threads inside a call (GAD_THREADS=N in the
 * environment bounds them); the API itself is not reentrant: call it from one
 * thread at a time. Memory: gad never frees what the caller owns; what a gad_
 * function hands out is freed by the function named beside it.
 * Not for: training, the report's options one by one (see `gad run --help`), gad's
 * internals (the other headers of include/ are not installed). */
#ifndef GAD_GAD_H
#define GAD_GAD_H
#include <stddef.h>

#define GAD_VERSION_MAJOR 0
#define GAD_VERSION_MINOR 1
#define GAD_VERSION_PATCH 0
#define GAD_VERSION "0.1.0"

#if defined(__GNUC__) || defined(__clang__)
#define GAD_API __attribute__((visibility("default")))
#else
#define GAD_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH" (GAD_VERSION of the built library). */
GAD_API const char *gad_version(void);
/* The message of the last call that failed (a static buffer, overwritten by the
 * next failure). */
GAD_API const char *gad_last_error(void);

/* Out of memory. By default gad prints "gad: out of memory (N bytes)" and calls
 * exit(1): every allocation inside gad is checked, and gad's code does not unwind.
 * An embedding program may set a hook instead; it is called with the size that could
 * not be had and `ud`, on whichever thread allocated (gad's workers allocate too):
 *   - return nonzero after freeing memory of your own: gad tries once more (and
 *     calls the hook again if that fails too);
 *   - do not return (exit, abort, or longjmp to a point of yours on the same thread;
 *     gad's state after such a jump is undefined: do not call gad again);
 *   - return 0: gad goes on as without a hook (message, exit(1)).
 * NULL restores the default. */
typedef int (*gad_oom_hook)(size_t bytes, void *ud);
GAD_API void gad_set_oom_hook(gad_oom_hook hook, void *ud);

/* ---- models ---- */

typedef struct gad_model gad_model; /* a loaded classifier (vgg16 or resnet18) */
/* Load a safetensors file with gad's metadata. Returns a model the caller frees
 * with gad_model_close, or NULL (gad_last_error: "PATH: what is wrong"). */
GAD_API gad_model *gad_model_load(const char *path);
GAD_API void gad_model_close(gad_model *m); /* NULL is a no-op */
/* Its number of outputs (classes). */
GAD_API int gad_model_classes(const gad_model *m);
/* The name of output k (owned by m), or NULL when the weights do not name it or k is
 * out of range. */
GAD_API const char *gad_model_class_name(const gad_model *m, int k);

/* ---- images ---- */

/* Read a JPEG, PNG, PPM or PGM file and preprocess it as m's metadata says
 * (torchvision's Resize/CenterCrop when the weights state them, else gad's resize to
 * the model's input size; the weights' mean/std). Returns a new [3,*h,*w] float array
 * (channel-major, row-major) the caller frees with gad_free, or NULL (error set). */
GAD_API float *gad_image_load(const gad_model *m, const char *path, int *h, int *w);
GAD_API void gad_free(void *p);

/* ---- predict and explain ---- */

/* logits [gad_model_classes(m)] (caller-allocated) of one input x [3,h,w] (as
 * gad_image_load gives). Returns 0, or -1 (error set: a size the model cannot take). */
GAD_API int gad_predict(gad_model *m, const float *x, int h, int w, float *logits);

typedef enum { GAD_SALIENCY = 0, GAD_DECONV, GAD_GXI, GAD_GUIDED, GAD_IG } gad_method;
/* The attribution of output `target` for x [3,h,w], written to map [3,h,w]
 * (caller-allocated), with Captum's semantics and defaults (Integrated Gradients:
 * 50 Gauss-Legendre steps from the black image; saliency: the absolute gradient).
 * Returns 0, or -1 (error set: a target out of range, a size the model cannot take). */
GAD_API int gad_explain_map(gad_model *m, const float *x, int h, int w, int target, gad_method method, float *map);

/* ---- the GAD method ---- */

/* What gad_run_report needs; every field not set (0 / NULL) takes `gad run`'s
 * default. */
typedef struct {
    const char *const *weights; /* [nweights] safetensors files of the models to explain */
    int nweights;
    const char *data;           /* an image folder (root/CLASS/...) or IDX images file */
    const char *classes;        /* "a,b": the two classes, by name or index */
    int images;                 /* images to explain, half per class, from the held-out part */
    const char *out_dir;        /* where the report goes ("gad-report") */
    int quiet;                  /* 1: print nothing */
} gad_run_spec;
/* Run GAD (support models, maps, hulls, RC and RS, figures) and write table1.csv,
 * table2.csv, results.json and index.html under out_dir. Returns 0, or -1 (error
 * set; -2 when the spec itself is wrong, e.g. a class the data does not have). */
GAD_API int gad_run_report(const gad_run_spec *spec);

#ifdef __cplusplus
}
#endif
#endif
