/* reference: the plain executor behind plan_new_reference (nn/model.h), private to
 * nn/ (plan.c hands a reference plan's passes to it). */
#ifndef GAD_NN_REFERENCE_H
#define GAD_NN_REFERENCE_H
#include "nn/layers.h"
#include "nn/model.h"

typedef struct RefPlan RefPlan;

/* Every activation and gradient of batches of up to max_batch images, shape [nlayers
 * + 1] (layer_shapes; copied). The caller frees with ref_free. */
RefPlan *ref_new(const Model *m, int max_batch, const ActShape *shape);
void ref_free(RefPlan *r);
/* model_forward and model_backward on the reference path: the same contracts. */
const float *ref_forward(Model *m, RefPlan *r, const float *x, int n, PassMode mode);
void ref_backward(Model *m, RefPlan *r, const float *dlogits, float *dx, int param_grads, PassMode mode);

#endif
