/* data: the images of a GAD run, prepared as the run prepares them: the two
 * classes of o->data at the original model's input size, resized and cropped as the
 * weights' metadata says (torchvision's pipeline) unless --size is given, normalised
 * with the model's mean and std, split with the held-out fraction of --val-frac or
 * of the weights' metadata (0.2 when neither says). One definition for the pipeline
 * (run.c) and for what recomputes steps of a finished run (explain.c), so that an
 * image index means the same image with the same pixels in both.
 * Also the black image as the model takes it (the occlusion baseline of --occlude black).
 * Not for: choosing which images a run explains (run.c). */
#include "gad/run.h"
#include "core/err.h"
#include <stdlib.h>
#include <string.h>

int gad_run_data(const RunOpts *o, const Model *orig, Dataset *d) {
    const ModelConfig *mc = &orig->cfg;
    float vf = o->val_frac;
    if (vf < 0) {
        const char *v = meta_get(&orig->meta, "val_frac");
        vf = v ? strtof(v, NULL) : 0.2f;
    }
    DatasetOpts dop;
    memset(&dop, 0, sizeof dop);
    dop.classes = o->classes;
    dop.h = o->size ? o->size : mc->in_h;
    dop.w = o->size ? o->size : mc->in_w;
    if (!o->size) {
        ImagePrep tv = {mc->resize_short, mc->resize_h, mc->resize_w, mc->crop_h, mc->crop_w, NULL, NULL};
        dop.prep = tv;
    }
    dop.prep.mean = mc->has_norm ? mc->mean : NULL;
    dop.prep.std = mc->has_norm ? mc->std : NULL;
    dop.val_frac = vf;
    dop.strict = o->strict;
    if (dataset_load_opts(d, o->data, &dop) != 0) return -1;
    if (d->nclasses != 2) {
        dataset_free(d);
        return err_set("%s: GAD compares two classes, the data has %d (give --classes a,b)", o->data, d->nclasses);
    }
    return 0;
}

float *gad_black_input(const float *mean, const float *std, int H, int W) {
    size_t npix = (size_t)H * W;
    float *b = xmalloc(sizeof(float) * 3 * npix);
    for (int ch = 0; ch < 3; ch++)
        for (size_t k = 0; k < npix; k++) b[ch * npix + k] = mean ? (0.0f - mean[ch]) / std[ch] : 0.0f;
    return b;
}
