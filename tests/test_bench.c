/* test_bench: what `gad bench` counts. The multiply-adds of a forward pass come from
 * the model's own layer list (model_forward_macs); torchvision's full-width models
 * have the published counts (the arithmetic of their layers written out by hand: vgg16
 * 15.47 G at 224x224, resnet18 1.81 G). */
#include "test.h"
#include "core/err.h"
#include "nn/layers.h"
#include "nn/model.h"
#include <stdlib.h>

/* The model's structure only (no weights: a full-width vgg16 takes a minute to
 * initialise on a busy machine, and the count needs none). */
static int spec(Model *m, Arch arch, int classes, float width) {
    size_t *offsets = NULL;
    int rc = model_build_spec(m, arch, classes, width, 0, &offsets);
    free(offsets);
    return rc;
}

TEST(bench_forward_macs_from_the_layer_list) {
    static const struct { Arch arch; int side; double macs; } cases[] = {
        {ARCH_VGG16, 224, 15470264320.0}, {ARCH_VGG16, 32, 436830208.0},
        {ARCH_RESNET18, 224, 1814073344.0}, {ARCH_RESNET18, 32, 37523456.0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Model m;
        REQUIRE(spec(&m, cases[i].arch, 1000, 1.0f) == 0);
        double got = model_forward_macs(&m, cases[i].side, cases[i].side);
        CHECKF(got == cases[i].macs, "%s %dx%d: %.0f multiply-adds, not %.0f", model_arch_name(cases[i].arch),
               cases[i].side, cases[i].side, got, cases[i].macs);
        model_free(&m);
    }
    Model m;
    REQUIRE(spec(&m, ARCH_RESNET18, 10, 0.125f) == 0);
    CHECK(model_forward_macs(&m, 16, 16) < 0.0); /* too small: refused with a message */
    CHECK(err_get()[0] != '\0');
    model_free(&m);
}
