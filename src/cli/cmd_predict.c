/* cmd_predict: `gad predict`: logits, softmax probabilities and the arg-max class of
 * each input image under a vgg16 / resnet18 safetensors model, optionally written
 * as an [N,K] .npy.
 * Input: an .npy [N,3,H,W] or [3,H,W] float32 fed as it is, or one JPEG/PNG/PPM/PGM image
 * preprocessed as the model's metadata says (input size, mean/std).
 * Not for: batches of image files (use an .npy), top-k lists, training. */
#include "cli/cli.h"
#include "core/err.h"
#include "core/tensor.h"
#include "io/image.h"
#include "io/npy.h"
#include "nn/model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: gad predict --weights W.safetensors --input X [--out logits.npy] [--batch B]\n"
           "Runs a vgg16 or resnet18 model (architecture, width and classes read from the\n"
           "safetensors state_dict) in eval mode and prints, per image, its logits, its\n"
           "softmax probabilities and the arg-max class (with its name when the weights'\n"
           "metadata has one).\n\n"
           "  --weights W   torchvision state_dict saved as safetensors (tools/export_torchvision.py)\n"
           "  --input X     .npy float32 [N,3,H,W] or [3,H,W], fed to the model as it is\n"
           "                (H, W >= 32); or one JPEG/PNG/PPM/PGM image, made RGB, resized\n"
           "                and cropped as --resize/--crop or the weights' metadata say (else\n"
           "                resized to the model's input_size), scaled to [0,1] and\n"
           "                normalised with the weights' mean/std when they give them\n"
           CLI_PREP_HELP
           "  --out F       also write the logits as an [N,K] float32 .npy\n"
           "  --batch B     images per forward pass (default 8; memory grows with B)\n"
           "  -h, --help    this text\n\n"
           "Exit status: 0 success, 1 bad file or input (the message names it), 2 usage error.\n");
}

static void print_image(const Model *m, int i, const float *z) {
    int K = m->cfg.num_classes, best = 0;
    double mx = z[0], sum = 0;
    for (int k = 1; k < K; k++) if (z[k] > mx || (isnan(mx) && !isnan(z[k]))) { mx = z[k]; best = k; }
    for (int k = 0; k < K; k++) sum += exp((double)z[k] - mx);
    printf("image %d: class %d", i, best);
    if (m->cfg.class_names) printf(" (%s)", m->cfg.class_names[best]);
    printf(", p = %.6f\n  logits:", exp((double)z[best] - mx) / sum);
    for (int k = 0; k < K; k++) printf(" %.6g", z[k]);
    printf("\n  probs: ");
    for (int k = 0; k < K; k++) printf(" %.6f", exp((double)z[k] - mx) / sum);
    printf("\n");
}

int cmd_predict(int argc, char **argv) {
    const char *weights = NULL, *input = NULL, *out = NULL;
    int batch = 8;
    PrepFlags prep = {{0, 0, 0}, {0, 0, 0}};
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) { help(); return 0; }
        if (arg_prep(argc, argv, &i, "predict", &prep)) continue;
        if (arg_str(argc, argv, &i, "--weights", &weights) || arg_str(argc, argv, &i, "--input", &input) ||
            arg_str(argc, argv, &i, "--out", &out) || arg_int(argc, argv, &i, "--batch", &batch, 1, 4096))
            continue;
        arg_usage_error("predict", "unknown argument '%s'", argv[i]);
    }
    if (!weights) arg_usage_error("predict", "--weights is required");
    if (!input) arg_usage_error("predict", "--input is required");

    Model m;
    Tensor x;
    if (model_load(&m, weights)) return cli_fail();
    if (cli_load_input(input, &m, &prep, &x)) { model_free(&m); return cli_fail(); }
    if (!cli_is_npy(input)) model_warn_norm(&m, weights);
    int n = (int)x.dim[0], H = (int)x.dim[2], W = (int)x.dim[3], K = m.cfg.num_classes;
    if (batch > n) batch = n;
    Plan *p = plan_new(&m, batch, H, W);
    if (!p) {
        err_prefix(input);
        tensor_free(&x);
        model_free(&m);
        return cli_fail();
    }
    float *logits = xmalloc((size_t)n * K * sizeof(float));
    PassMode mode = {0, RELU_STANDARD, 0, 0};
    size_t per = (size_t)3 * H * W;
    for (int i = 0; i < n; i += batch) {
        int nb = n - i < batch ? n - i : batch;
        const float *z = model_forward(&m, p, x.data + (size_t)i * per, nb, mode);
        memcpy(logits + (size_t)i * K, z, (size_t)nb * K * sizeof(float));
    }
    plan_free(p);
    printf("%s: %s, %d classes, input [%d,3,%d,%d]\n", weights, model_arch_name(m.cfg.arch), K, n, H, W);
    for (int i = 0; i < n; i++) print_image(&m, i, logits + (size_t)i * K);
    int rc = 0;
    if (out) {
        int64_t d[2] = {n, K};
        if (npy_write_data(out, logits, 2, d)) rc = cli_fail();
    }
    free(logits);
    tensor_free(&x);
    model_free(&m);
    return rc;
}
