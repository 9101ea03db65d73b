/* test_bench: what `gad bench` counts. The multiply-adds of a forward pass come from
 * the model's own layer list (model_forward_macs); torchvision's full-width models
 * have the published counts (the arithmetic of their layers written out by hand: vgg16
 * 15.47 G at 224x224, resnet18 1.81 G). `gad bench --layers` runs every layer of both
 * models alone, every phase, and names its shape. */
#include "test.h"
#include "core/err.h"
#include "nn/layer_bench.h"
#include "nn/layers.h"
#include "nn/model.h"
#include <stdlib.h>
#include <string.h>

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

TEST(bench_layers_each_layer_alone) {
    for (int a = 0; a < 2; a++) {
        Model m;
        REQUIRE(model_init(&m, (Arch)a, 3, 0.125f, a == ARCH_VGG16 ? 16 : 0, 1) == 0);
        LayerBench *b = layer_bench_new(&m, 2, 32, 32);
        REQUIRE(b);
        int convs = 0, linears = 0;
        for (int l = 0; l < m.nlayers; l++) {
            for (int ph = 0; ph < LB_NPHASES; ph++) layer_bench_run(b, l, ph);
            const char *kind;
            char shape[48];
            int h, w;
            layer_bench_describe(b, l, &kind, shape, sizeof shape, &h, &w);
            if (!strcmp(kind, "conv")) {
                CHECKF(strchr(shape, '/') && strstr(shape, "->"), "conv %d: '%s'", l, shape);
                convs++;
            } else if (!strcmp(kind, "linear")) {
                CHECKF(strstr(shape, "->"), "linear %d: '%s'", l, shape);
                linears++;
            } else {
                CHECKF(!shape[0], "%s %d: '%s'", kind, l, shape);
            }
            if (l == 0) CHECK(h == 32 && w == 32 && !strcmp(shape, a == ARCH_VGG16 ? "3x3/1 3->8" : "7x7/2 3->8"));
        }
        CHECK(convs == (a == ARCH_VGG16 ? 13 : 20) && linears == (a == ARCH_VGG16 ? 3 : 1));
        layer_bench_free(b);
        CHECK(layer_bench_new(&m, 2, 8, 8) == NULL && err_get()[0]); /* too small: refused */
        model_free(&m);
    }
}
