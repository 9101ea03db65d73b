/* test_resize: torchvision's preprocessing on PIL images (io/image.h: ImagePrep,
 * image_prepare, image_resize_pil) against Pillow and torchvision.
 * Fixtures (tests/fixtures/resize, made by tools/fixtures/gen_fixtures_resize.py): each
 * pipeline of cases.txt (Resize, CenterCrop, ToTensor, Normalize) run by torchvision
 * on a source image, and plain Image.resize(BILINEAR) outputs. Both must be
 * matched exactly: the largest difference is printed for each. */
#include "core/err.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* "-" -> 0; "N" -> *a = N; "HxW" -> *a = H, *b = W (returns 1 for the HxW form). */
static int parse_size(const char *s, int *a, int *b) {
    *a = *b = 0;
    if (!strcmp(s, "-")) return 0;
    if (strchr(s, 'x')) return sscanf(s, "%dx%d", a, b) == 2;
    *a = atoi(s);
    return 0;
}

static float worst_diff(const float *a, const float *b, size_t n) {
    float w = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= w)) w = d;
    }
    return w;
}

TEST(resize_torchvision_pipelines_exact) {
    StFile f;
    REQUIRE(st_read(fixture("resize/expect.safetensors"), &f) == 0);
    FILE *cf = fopen(fixture("resize/cases.txt"), "r");
    REQUIRE(cf);
    char line[512];
    int cases = 0, resizes = 0;
    while (fgets(line, sizeof line, cf)) {
        char name[64], src[128], rs[32], cr[32], norm[32], rel[160];
        int n = sscanf(line, "%63s %127s %31s %31s %31s", name, src, rs, cr, norm);
        Image im;
        snprintf(rel, sizeof rel, "%s", src);
        if (n >= 3) REQUIRE(image_load(fixture(rel), &im) == 0);
        if (n == 5) { /* a pipeline */
            char key[80];
            snprintf(key, sizeof key, "tv_%s", name);
            const StTensor *t = st_find(&f, key);
            REQUIRE(t && t->ndim == 3 && t->dim[0] == 3);
            ImagePrep p = {0};
            if (parse_size(rs, &p.resize_h, &p.resize_w) == 0) {
                p.resize_short = p.resize_h;
                p.resize_h = 0;
            }
            if (parse_size(cr, &p.crop_h, &p.crop_w) == 0) p.crop_w = p.crop_h;
            if (!strcmp(norm, "imagenet")) {
                p.mean = imagenet_mean;
                p.std = imagenet_std;
            }
            int h = (int)t->dim[1], w = (int)t->dim[2];
            float *out = malloc(sizeof(float) * 3 * h * w);
            int rc = image_prepare(&im, &p, h, w, name, out);
            CHECKF(rc == 0, "%s", err_get());
            if (!rc) {
                float d = worst_diff(out, t->f32, (size_t)3 * h * w);
                printf("    %-14s %3dx%-3d resize %-5s crop %-5s -> %dx%d  max|diff| vs torchvision %g\n", name, im.w,
                       im.h, rs, cr, w, h, (double)d);
                CHECKF(d == 0.0f, "%s: %g", name, (double)d);
            }
            free(out);
            cases++;
        } else if (n == 3) { /* a plain resize: "resizeK SRC HxW" */
            int h, w;
            REQUIRE(sscanf(rs, "%dx%d", &h, &w) == 2);
            char key[80];
            snprintf(key, sizeof key, "rs_%s", name + 6);
            if (im.c == 2 || im.c == 4) { /* convert('RGB') first, as the fixture does */
                Image t3 = {im.w, im.h, im.c == 4 ? 3 : 1, NULL};
                size_t np = (size_t)im.w * im.h;
                t3.data = malloc(np * t3.c);
                for (size_t i = 0; i < np; i++)
                    for (int k = 0; k < t3.c; k++) t3.data[i * t3.c + k] = im.data[i * im.c + k];
                image_free(&im);
                im = t3;
            }
            const StTensor *t = st_find(&f, key);
            REQUIRE(t && t->ndim == 3 && t->dim[0] == h && t->dim[1] == w && t->dim[2] == im.c);
            Image r;
            image_resize_pil(&im, w, h, &r);
            size_t nv = (size_t)w * h * im.c;
            float worst = 0;
            for (size_t i = 0; i < nv; i++) {
                float d = fabsf((float)r.data[i] - (t->f32)[i]);
                if (d > worst) worst = d;
            }
            printf("    %-14s %3dx%-3d c=%d -> %dx%d  max|diff| vs Pillow %g\n", name, im.w, im.h, im.c, w, h,
                   (double)worst);
            CHECKF(worst == 0.0f, "%s: %g", name, (double)worst);
            image_free(&r);
            resizes++;
        }
        if (n >= 3) image_free(&im);
    }
    fclose(cf);
    st_free(&f);
    CHECK(cases >= 10 && resizes >= 7);
}

/* The sizes the pipeline makes, and its refusal when it does not end at the
 * model's size. */
TEST(resize_prep_sizes_and_refusal) {
    ImagePrep p = {0};
    int w, h;
    image_prep_size(&p, 53, 37, &w, &h); /* gad's own pipeline: the image's size */
    CHECK(w == 53 && h == 37 && !image_prep_torchvision(&p));
    p.resize_short = 20;
    image_prep_size(&p, 53, 37, &w, &h); /* int(20 * 53 / 37) = 28 */
    CHECK(w == 28 && h == 20 && image_prep_torchvision(&p));
    image_prep_size(&p, 37, 53, &w, &h);
    CHECK(w == 20 && h == 28);
    p.crop_h = 16;
    p.crop_w = 12;
    image_prep_size(&p, 37, 53, &w, &h);
    CHECK(w == 12 && h == 16);
    ImagePrep q = {0};
    q.resize_short = 20;
    unsigned char px[53 * 37 * 3] = {0};
    Image im = {53, 37, 3, px};
    float out[3 * 20 * 20];
    CHECK(image_prepare(&im, &q, 20, 20, "wide.jpg", out) == -1);
    CHECKF(strstr(err_get(), "wide.jpg") && strstr(err_get(), "28x20") && strstr(err_get(), "crop"), "%s", err_get());
    printf("    refused: %s\n", err_get());
    q.crop_h = q.crop_w = 20;
    CHECK(image_prepare(&im, &q, 20, 20, "wide.jpg", out) == 0);
}

/* Without resize and crop, image_prepare is gad's own pipeline (image_to_input). */
TEST(resize_prep_default_is_interpolate) {
    unsigned char px[7 * 5 * 3];
    for (int i = 0; i < 7 * 5 * 3; i++) px[i] = (unsigned char)(i * 37);
    Image im = {7, 5, 3, px};
    float a[3 * 9 * 11], b[3 * 9 * 11];
    ImagePrep p = {0};
    p.mean = imagenet_mean;
    p.std = imagenet_std;
    CHECK(image_prepare(&im, &p, 9, 11, "x", a) == 0);
    image_to_input(&im, 9, 11, imagenet_mean, imagenet_std, b);
    CHECK(!memcmp(a, b, sizeof a));
}

/* ---- the weights' metadata and the CLI's choice ---------------------------------- */

#include "cli/cli.h"
#include "core/tensor.h"
#include "nn/model.h"

/* A small resnet18 saved with resize 40 and crop 32, loaded back. */
static int small_model(Model *m, const char *path, int rs, int crop) {
    if (model_init(m, ARCH_RESNET18, 2, 0.125f, 0, 1)) return -1;
    m->cfg.resize_short = rs;
    m->cfg.crop_h = m->cfg.crop_w = crop;
    m->cfg.in_c = 3;
    m->cfg.in_h = m->cfg.in_w = crop;
    int r = model_save(m, path);
    model_free(m);
    return r ? -1 : model_load(m, path);
}

TEST(resize_metadata_round_trip_and_errors) {
    Model m;
    const char *p = test_path("m.safetensors");
    REQUIRE(small_model(&m, p, 40, 32) == 0);
    CHECK(m.cfg.resize_short == 40 && m.cfg.resize_h == 0 && m.cfg.crop_h == 32 && m.cfg.crop_w == 32);
    CHECK(m.cfg.in_h == 32 && m.cfg.in_w == 32);
    CHECK(!strcmp(meta_get(&m.meta, "resize"), "40") && !strcmp(meta_get(&m.meta, "crop"), "32"));
    /* bad values and a crop that disagrees with input_size */
    static const char *bad[][3] = {{"resize", "0", "resize"},      {"resize", "12x", "resize"},
                                   {"crop", "abc", "crop"},        {"crop", "48", "disagrees"},
                                   {"resize", "99999", "resize"}, {"crop", "32x-1", "crop"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        Model b;
        model_clone(&b, &m);
        meta_set(&b.meta, bad[k][0], bad[k][1]);
        b.cfg.resize_short = b.cfg.crop_h = b.cfg.crop_w = 0; /* let the metadata speak */
        if (!strcmp(bad[k][0], "crop")) meta_set(&b.meta, "resize", "40");
        const char *q = test_path("bad.safetensors");
        /* model_save writes cfg over meta: write the bad value by hand after */
        REQUIRE(model_save(&b, q) == 0);
        model_free(&b);
        StFile f;
        REQUIRE(st_read(q, &f) == 0);
        meta_set(&f.meta, bad[k][0], bad[k][1]);
        REQUIRE(st_write(q, &f) == 0);
        st_free(&f);
        Model c;
        int rc = model_load(&c, q);
        CHECKF(rc == -1 && strstr(err_get(), bad[k][2]) && strstr(err_get(), "bad.safetensors"), "%s=%s: %d %s",
               bad[k][0], bad[k][1], rc, err_get());
        printf("    refused: %s\n", err_get());
        if (rc == 0) model_free(&c);
    }
    model_free(&m);
}

/* cli_load_input: the metadata's resize/crop by default, the flags over them,
 * 'none' back to gad's own resize to the input size. */
TEST(resize_cli_input_follows_metadata_and_flags) {
    Model m;
    REQUIRE(small_model(&m, test_path("m.safetensors"), 40, 32) == 0);
    const char *img = fixture("jpeg/photo_420.jpg");
    Image im;
    REQUIRE(image_load(img, &im) == 0);
    Tensor x;
    float want[3 * 32 * 32];
    ImagePrep p = {0};
    p.resize_short = 40;
    p.crop_h = p.crop_w = 32;
    REQUIRE(image_prepare(&im, &p, 32, 32, "x", want) == 0);
    REQUIRE(cli_load_input(img, &m, NULL, &x) == 0);
    CHECK(x.dim[2] == 32 && x.dim[3] == 32 && !memcmp(x.data, want, sizeof want));
    tensor_free(&x);
    PrepFlags f = {{-1, 0, 0}, {-1, 0, 0}}; /* --resize none --crop none */
    REQUIRE(cli_load_input(img, &m, &f, &x) == 0);
    image_to_input(&im, 32, 32, NULL, NULL, want);
    CHECK(x.dim[2] == 32 && x.dim[3] == 32 && !memcmp(x.data, want, sizeof want));
    tensor_free(&x);
    PrepFlags g = {{1, 30, 0}, {1, 24, 0}}; /* --resize 30 --crop 24 */
    REQUIRE(cli_load_input(img, &m, &g, &x) == 0);
    p.resize_short = 30;
    p.crop_h = p.crop_w = 24;
    REQUIRE(image_prepare(&im, &p, 24, 24, "x", want) == 0);
    CHECK(x.dim[2] == 24 && x.dim[3] == 24 && !memcmp(x.data, want, (size_t)3 * 24 * 24 * sizeof(float)));
    tensor_free(&x);
    PrepFlags r = {{1, 20, 0}, {-1, 0, 0}}; /* Resize(20) alone: 28x20, not the model's 32x32 */
    CHECK(cli_load_input(img, &m, &r, &x) == -1 && strstr(err_get(), "give a crop"));
    printf("    refused: %s\n", err_get());
    image_free(&im);
    model_free(&m);
}

/* Bad --resize / --crop values are usage errors (exit 2) naming the flag. */
TEST(resize_cli_flags_usage_errors) {
    static const char *cmds[] = {
        "./gad predict --weights weights/vgg16.safetensors --input tests/fixtures/jpeg/photo_420.jpg --resize 0",
        "./gad predict --weights weights/vgg16.safetensors --input tests/fixtures/jpeg/photo_420.jpg --crop 12x",
        ("./gad explain --weights weights/vgg16.safetensors --input tests/fixtures/jpeg/photo_420.jpg --method saliency "
         "--resize big"),
        "./gad train --model resnet18 --data data/x --out /dev/null --crop 20000",
    };
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        char c[600];
        snprintf(c, sizeof c, "%s >/dev/null 2>%s", cmds[k], test_path("err.txt"));
        int st = system(c);
        size_t n = 0;
        unsigned char *b = test_slurp(test_path("err.txt"), &n);
        char *e = calloc(n + 1, 1); /* test_slurp's buffer is not a string */
        if (b) memcpy(e, b, n);
        free(b);
        CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 2 && (strstr(e, "--resize") || strstr(e, "--crop")),
               "%s: status %d, %s", cmds[k], st, e);
        free(e);
    }
}

/* gad train --resize --crop: the data is prepared that way and W records it. */
TEST(resize_train_writes_prep_metadata) {
    char root[512], c[1200];
    snprintf(root, sizeof root, "%s/data", test_tmpdir());
    const char *names[2][2] = {{"photo_420", "photo_444"}, {"photo_gray", "camera_crop"}};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 2; i++) {
            snprintf(c, sizeof c, "mkdir -p %s/c%d && cp tests/fixtures/jpeg/%s.jpg %s/c%d/", root, k, names[k][i], root, k);
            REQUIRE(system(c) == 0);
        }
    const char *w = test_path("w.safetensors");
    snprintf(c, sizeof c,
             "./gad train --model resnet18 --width 0.125 --data %s --out %s --resize 40 --crop 36x32 --epochs 1 "
             "--val-frac 0 --quiet >/dev/null 2>&1", root, w);
    REQUIRE(system(c) == 0);
    Model m;
    REQUIRE(model_load(&m, w) == 0);
    CHECK(m.cfg.resize_short == 40 && m.cfg.crop_h == 36 && m.cfg.crop_w == 32 && m.cfg.in_h == 36 && m.cfg.in_w == 32);
    CHECK(!strcmp(meta_get(&m.meta, "crop"), "36x32") && !strcmp(meta_get(&m.meta, "input_size"), "3x36x32"));
    model_free(&m);
}
