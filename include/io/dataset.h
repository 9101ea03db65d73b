/* dataset: images with labels from a data SPEC, decoded and preprocessed into one
 * float block ready for a model:
 *   SPEC = a folder of class sub-folders (root/<class>/<file>: JPEG, PNG, PPM or PGM,
 *          told apart by their bytes; the torchvision ImageFolder convention;
 *          classes sorted by name; a file gad cannot read is a warning, or an
 *          error with `strict`), or
 *        = an IDX images file (MNIST naming, gzip'd or not) whose labels file sits
 *          beside it ("X-images-idx3-ubyte[.gz]" -> "X-labels-idx1-ubyte[.gz]");
 *          class names come from "X-classes.txt" beside it (one per line) if present,
 *          else they are the label numbers.
 * Classes: `classes` = NULL (all) or "a,b,..." by name or by index; labels in the
 * dataset are positions in that list (0..k-1), in the order given.
 * Preprocessing: io/image.h's ImagePrep: torchvision's Resize + CenterCrop (Pillow's
 * antialiased bilinear) when a resize or crop is given, else gad's own: gray is
 * repeated to three channels and alpha dropped (PIL's convert('RGB')), an image of
 * the requested size is not resized, otherwise a bilinear resize (half-pixel
 * centres, no antialiasing); pixels scaled to [0,1]; then (v - mean[c]) / std[c]
 * when mean/std are given.
 * Split: a fixed held-out part, the last round(n_c * val_frac) images of each class
 * in file order; the rest is the training part.
 * Not for: augmentation, lazy loading (everything is decoded up front). */
#ifndef GAD_IO_DATASET_H
#define GAD_IO_DATASET_H
#include "io/image.h"

typedef struct {
    int n, c, h, w;      /* images, and each one's [3,h,w] */
    float *x;            /* [n,3,h,w] preprocessed (owned) */
    int *y;              /* [n] labels in [0, nclasses) (owned) */
    int *held_out;       /* [n] 1 if the image is in the held-out part (owned) */
    int nclasses;
    char **class_names;  /* [nclasses] (owned) */
    char *source;        /* the SPEC (owned) */
    char **names;        /* [n] each image's name (owned): its path (SPEC/class/file)
                          * for a folder, "SPEC[i]" (i its index in the file) for IDX */
    ImagePrep prep;      /* how the images were prepared (resize, crop; mean and std
                          * are NULL here, their values below) */
    int has_norm;        /* 1: normalised with mean, std */
    float mean[3], std[3];
} Dataset;

typedef struct {
    const char *classes;   /* NULL: every class; "a,b,..." by name or index */
    int h, w;              /* size for the model (0, 0: what prep makes of the files,
                            * which must agree) */
    ImagePrep prep;        /* resize, crop, mean/std (io/image.h); all 0: gad's own
                            * resize to h x w, no normalisation */
    float val_frac;        /* held-out fraction, in [0,1) */
    int strict;            /* 1: an entry of a class folder that is not a readable image is an error */
} DatasetOpts;

/* Load SPEC as o says. Returns 0, or -1 with err set naming the file and the problem
 * (nothing allocated); skipped files were reported with err_warn. The caller frees
 * with dataset_free. */
int dataset_load_opts(Dataset *d, const char *spec, const DatasetOpts *o);
/* The same with strict = 0.
 * h, w: size for the model (0: keep the files' size, which must then agree).
 * mean, std: [3] or NULL. val_frac in [0,1). Returns 0, or -1 with err set naming
 * the file and the problem (nothing allocated). The caller frees with dataset_free. */
int dataset_load(Dataset *d, const char *spec, const char *classes, int h, int w, const float *mean,
                 const float *std, float val_frac);
void dataset_free(Dataset *d);
/* The images named in the text file `list`, as model inputs like d's: one per line,
 * PATH or PATH<TAB>CLASS (blank lines and lines starting with '#' skipped). A PATH
 * that is one of d's names (a file of a folder dataset, or FILE[i] of an IDX one) is
 * that image with its class; any other image file is read and prepared as d's were
 * (d->prep, mean, std) to d's size, its class the one after the tab, else the name of its folder, which
 * must be one of d's classes. Gives *x [n,3,h,w], *y [n] (class positions), *index
 * [n] (d's index, or d->n + k for the k-th line's image from outside d) and *names
 * [n] (the PATHs), all new. Returns n >= 1, or -1 (err set naming list and line). */
int dataset_images_from_list(const Dataset *d, const char *list, float **x, int **y, int **index, char ***names);
/* The names in folder dir, sorted by byte order: its sub-folders (want_dirs = 1) or
 * every entry (0); hidden ones (".name") skipped. Returns the count, *out a new
 * array of new strings (the caller frees both), or -1 (err set). */
int dataset_dir_entries(const char *dir, int want_dirs, char ***out);
/* Indices of the images of one part (held_out = 0 or 1), optionally only of class
 * `cls` (-1: all), at most `max` (<= 0: all), in file order. Returns the count;
 * *idx is a new array the caller frees. */
int dataset_select(const Dataset *d, int held_out, int cls, int max, int **idx);
/* Load one image file (PNG, PPM, PGM) or .npy as a model input [n,3,h,w]: see
 * preprocessing above (an .npy is taken as it is). Returns 0 or -1 (err set). */
#include "core/tensor.h"
int input_load(const char *path, int h, int w, const float *mean, const float *std, Tensor *out);
/* The same with the preprocessing of prep (an .npy is still taken as it is); h, w =
 * 0: the size prep makes of the image. */
int input_load_prep(const char *path, const ImagePrep *prep, int h, int w, Tensor *out);

#endif
