/* test_explain: one image's GAD steps (gad/steps.h), the fit of a support model,
 * the step figures (gad/figures.h), and the `gad explain-gad` and `gad tour`
 * commands.
 *   - steps on hand-made maps, worked out by hand; on random maps, the same GAD map,
 *     hulls and RC as gad_intersect and gad_map_hull called directly;
 *   - RS through an evaluator whose outputs are sums of the input (known drops);
 *   - the fit: a support model on its targets fits, one that stayed the original
 *     does not, half way is the boundary;
 *   - the figures: blue original maps, red GAD maps, red and green hulls, and the
 *     red warning of Fig. 1 exactly when a support model did not fit;
 *   - explain-gad on a small run agrees with the run's results.json, writes its
 *     pictures, and refuses a missing run, a bad class or image with a clear message.
 * Not for: the pipeline's tables (test_gad.c), the tour's text (test_tour.c). */
#include "test.h"
#include "core/err.h"
#include "gad/figures.h"
#include "gad/run.h"
#include "io/json.h"
#include "gad/steps.h"
#include "io/file.h"
#include "io/image.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A whole text file as a NUL-terminated string (caller frees), or NULL. */
static char *slurp_text(const char *path) {
    size_t len;
    unsigned char *d = test_slurp(path, &len);
    if (!d) return NULL;
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, d, len);
        t[len] = 0;
    }
    free(d);
    return t;
}

/* attr [3,H,W] whose channel sum is imp (all of it in channel 0). */
static void attr_of(const float *imp, int npix, float *attr) {
    memset(attr, 0, sizeof(float) * 3 * (size_t)npix);
    memcpy(attr, imp, sizeof(float) * (size_t)npix);
}

/* The worked example: 5x5 maps, importance 0.01 everywhere but the corners (1) and the
 * centre (0.5). Support 1 loses corner (4,4); support 2 is the original. */
static void example(GadSteps *s, float keep) {
    enum { N = 25 };
    float imp[3][N], attr[3 * N];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < N; i++) imp[k][i] = 0.01f;
        imp[k][0] = imp[k][4] = imp[k][20] = imp[k][24] = 1;
        imp[k][12] = 0.5f;
    }
    imp[1][24] = 0;
    gad_steps_init(s, 3, 5, 5);
    for (int k = 0; k < 3; k++) {
        attr_of(imp[k], N, attr);
        gad_steps_set(s, k, attr);
    }
    Presence p = {PRESENT_FRAC, 0.1f};
    HullRule hr = {HULL_OF_NONZERO, keep, p};
    gad_steps_finish(s, p, &hr, RC_AREA_POLYGON);
}

TEST(steps_worked_example) {
    GadSteps s;
    example(&s, 1.0f);
    CHECK(s.npresent[0] == 5 && s.npresent[1] == 4 && s.npresent[2] == 5);
    CHECK(s.maxima[0] == 1 && s.maxima[1] == 1);
    CHECK(s.nall == 4 && s.all[0] && s.all[4] && s.all[20] && s.all[12] && !s.all[24]);
    CHECK(s.gad_nnz == 4 && s.gad[0] == 1 && s.gad[12] == 0.5f && s.gad[24] == 0 && s.gad[1] == 0);
    /* keep = 1: every non-zero pixel is a hull point. The original's hull is the
     * 4x4 square (area 16, 25 pixels); GAD's the triangle (0,0) (4,0) (0,4): area 8,
     * the 15 pixels with x + y <= 4 */
    CHECK(s.npts[0] == 25 && s.npts[1] == 4);
    CHECK(s.hull[0].nvert == 4 && s.hull[0].area == 16 && s.hull[0].pixels == 25);
    CHECK(s.hull[1].nvert == 3 && s.hull[1].area == 8 && s.hull[1].pixels == 15);
    CHECK_NEAR(s.rc, 0.5, 0);
    CHECK(s.mask_pixels[0] == 25 && s.mask_pixels[1] == 15 && s.mask_pixels[2] == 10);
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 5; x++) CHECK(s.mask[1][y * 5 + x] == (x + y <= 4) && s.mask[2][y * 5 + x] == (x + y > 4));
    gad_steps_free(&s);
}

/* out[0] = sum of every input value, out[1] = sum of channel 0 */
static int sums_fn(void *ctx, const float *x, int n, float *out) {
    int npix = *(const int *)ctx;
    for (int i = 0; i < n; i++) {
        double a = 0, b = 0;
        for (int e = 0; e < 3 * npix; e++) {
            a += x[(size_t)i * 3 * npix + e];
            if (e < npix) b += x[(size_t)i * 3 * npix + e];
        }
        out[2 * i] = (float)a;
        out[2 * i + 1] = (float)b;
    }
    return 0;
}

TEST(steps_rs_known_drops) {
    GadSteps s;
    example(&s, 1.0f);
    int npix = 25;
    GadEval ev = {sums_fn, &npix, 2, 4};
    float x[75];
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < npix; i++) x[c * npix + i] = s.mask[1][i] ? 2.0f : 1.0f;
    /* output 0: occluding the GAD region (15 pixels of 2, 3 channels) drops 90 -> RS 6;
     * the supplementary region (10 pixels of 1) drops 30 -> RS 3 */
    REQUIRE(gad_steps_rs(&s, &ev, x, 0, NAN, NULL) == 0);
    CHECK_NEAR(s.y0, 3 * (15 * 2 + 10), 1e-4);
    CHECK_NEAR(s.rs[0], 6, 1e-6);
    CHECK_NEAR(s.rs[1], 3, 1e-6);
    CHECK_NEAR(s.drop[0], 90, 1e-4);
    CHECK_NEAR(s.drop[1], 30, 1e-4);
    /* output 1 (channel 0 only): 30 and 10, RS 2 and 1 */
    REQUIRE(gad_steps_rs(&s, &ev, x, 1, NAN, NULL) == 0);
    CHECK_NEAR(s.rs[0], 2, 1e-6);
    CHECK_NEAR(s.rs[1], 1, 1e-6);
    CHECK(s.target == 1);
    gad_steps_free(&s);
}

TEST(steps_agree_with_gad_functions) {
    enum { H = 12, W = 10, N = H * W, M = 5 };
    srand(7);
    int forced = 0;
    for (int trial = 0; trial < 20; trial++) {
        float imp[M][N], attr[3 * N], out[N];
        const float *maps[M];
        for (int k = 0; k < M; k++) {
            for (int i = 0; i < N; i++) imp[k][i] = rand() % 4 == 0 ? 0.0f : (float)(rand() % 1000) / 999.0f;
            maps[k] = imp[k];
        }
        Presence p = {trial % 2 ? PRESENT_TOP : PRESENT_FRAC, trial % 2 ? 0.5f : 0.1f * (1 + trial % 5)};
        float keep = 0.25f + 0.05f * (trial % 10);
        GadSteps s;
        gad_steps_init(&s, M, H, W);
        for (int k = 0; k < M; k++) {
            memset(attr, 0, sizeof attr); /* the importance is |channel sum|: a sign or a channel changes nothing */
            for (int i = 0; i < N; i++) attr[(size_t)(k % 3) * N + i] = k % 2 ? -imp[k][i] : imp[k][i];
            gad_steps_set(&s, k, attr);
        }
        HullRule hr = {(HullOf)(trial % 3), keep, p};
        gad_steps_finish(&s, p, &hr, RC_AREA_PIXELS);
        int nnz = gad_intersect(maps, M, N, p, out);
        CHECK(nnz == s.gad_nnz && !memcmp(out, s.gad, sizeof out));
        GadHull ho, hg;
        gad_map_hull(imp[0], H, W, &hr, &ho, NULL, NULL);
        gad_map_hull(out, H, W, &hr, &hg, NULL, NULL);
        CHECK(ho.area == s.hull[0].area && ho.pixels == s.hull[0].pixels && ho.nvert == s.hull[0].nvert);
        CHECK(hg.area == s.hull[1].area && hg.pixels == s.hull[1].pixels && hg.npoints == s.npts[1]);
        double rc = gad_rc(&hg, &ho, RC_AREA_PIXELS);
        CHECK((isnan(rc) && isnan(s.rc)) || rc == s.rc);
        CHECK(s.forced == gad_rc_forced(imp[0], out, H, W, &hr));
        forced += s.forced;
        gad_steps_free(&s);
    }
    CHECK(forced > 0 && forced < 20); /* both kinds were seen */
}

TEST(steps_fit_of_a_support_model) {
    /* image 0 of class 0 (its class-1 logit is lowered), image 1 of class 1 */
    const float orig[4] = {2, -1, -1, 3};
    const int cls[2] = {0, 1};
    const float on_target[4] = {2, -3, -3, 3}, half[4] = {2, -2, -2, 3};
    GadFit f;
    gad_fit(orig, on_target, cls, 2, 2, &f);
    CHECK(f.rmse == 0 && f.shift == 1 && f.fits);
    gad_fit(orig, orig, cls, 2, 2, &f); /* did not move: RMSE sqrt(2) > 1, shift 0 */
    CHECK_NEAR(f.rmse, sqrt(2.0), 1e-12);
    CHECK(f.shift == 0 && !f.fits);
    gad_fit(orig, half, cls, 2, 2, &f); /* half way: shift 0.5, RMSE 0.71: the boundary */
    CHECK_NEAR(f.shift, 0.5, 1e-12);
    CHECK(f.fits);
    const float overshoot[4] = {2, -6, -6, 3}; /* moved too far: RMSE 3/sqrt(2) > 1 */
    gad_fit(orig, overshoot, cls, 2, 2, &f);
    CHECK(f.shift == 2.5 && !f.fits);
}

/* Pixels of the PNG at path with colour close to rgb (within 40 per channel). */
static long count_colour(const char *path, const unsigned char rgb[3], int *w, int *h) {
    Image img;
    if (image_load(path, &img) != 0) return -1;
    long n = 0;
    for (long p = 0; p < (long)img.w * img.h; p++) {
        const unsigned char *q = img.data + p * img.c;
        n += abs(q[0] - rgb[0]) < 40 && abs(q[1] - rgb[1]) < 40 && abs(q[2] - rgb[2]) < 40;
    }
    if (w) *w = img.w;
    if (h) *h = img.h;
    image_free(&img);
    return n;
}

TEST(figures_steps_and_hulls) {
    GadSteps s;
    example(&s, 1.0f);
    unsigned char input[25 * 3];
    memset(input, 90, sizeof input);
    float alpha[2] = {2, 4};
    GadStepsInfo info = {"net", "Saliency", "image 7", "cat", alpha, input, {PRESENT_FRAC, 0.1f},
                         {HULL_OF_NONZERO, 1.0f, {PRESENT_FRAC, 0.1f}}, 8};
    const char *p3 = test_path("steps.png"), *p4 = test_path("hulls.png");
    REQUIRE(gad_fig_steps(p3, &s, &info) == 0);
    REQUIRE(gad_fig_hulls(p4, &s, &info) == 0);
    unsigned char dark_blue[3], dark_red[3];
    heatmap_ramp(HEAT_BLUES, 1, dark_blue);
    heatmap_ramp(HEAT_REDS, 1, dark_red);
    int w, h;
    /* Fig. 3: 4 columns of 40-pixel tiles at least; the corners drawn dark blue in the
     * three maps and dark red in the GAD map (and the colour bars) */
    CHECK(count_colour(p3, dark_blue, &w, &h) >= 3 * 4 * 64 && w >= 4 * 40 && h >= 2 * 40);
    CHECK(count_colour(p3, dark_red, NULL, NULL) >= 3 * 64);
    /* Fig. 4: both hull colours */
    CHECK(count_colour(p4, GAD_RGB_ORIG_HULL, NULL, NULL) > 50);
    CHECK(count_colour(p4, GAD_RGB_GAD_HULL, NULL, NULL) > 50);
    gad_steps_free(&s);
}

TEST(figures_distancing_warns_when_a_support_did_not_fit) {
    enum { N = 40 };
    float orig[2 * N], sup[2][2 * N], alpha[2] = {2, 4};
    int cls[N];
    for (int i = 0; i < N; i++) {
        cls[i] = i % 2;
        orig[2 * i] = cls[i] ? -1.0f - i * 0.1f : 2.0f + i * 0.1f;
        orig[2 * i + 1] = -orig[2 * i];
    }
    gad_distance(orig, cls, N, 2, 0, 1, alpha[0], sup[0]);  /* alpha 2: exactly on target */
    memcpy(sup[1], orig, sizeof orig);                       /* alpha 4: never moved */
    GadDistFig d = {"net", {"cat", "dog"}, N, cls, orig, 2, alpha, sup[0], NULL, 0};
    GadFit fits[2];
    const char *path = test_path("dist.png");
    REQUIRE(gad_fig_distancing(path, &d, fits) == 0);
    CHECK(fits[0].fits && !fits[1].fits);
    CHECK(count_colour(path, GAD_RGB_WARN, NULL, NULL) > 20);
    d.nalpha = 1; /* only the support that fits: no warning drawn */
    REQUIRE(gad_fig_distancing(path, &d, fits) == 0);
    CHECK(count_colour(path, GAD_RGB_WARN, NULL, NULL) == 0);
}

/* ---- the commands ---- */

/* Run `cmd` with /bin/sh, stdout and stderr into a buffer (caller frees). *st: exit status. */
static char *sh(const char *cmd, int *st) {
    const char *out = test_path("cmd.txt");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(98);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(97);
    }
    int w = 0;
    waitpid(pid, &w, 0);
    *st = WIFEXITED(w) ? WEXITSTATUS(w) : 128;
    char *t = slurp_text(out);
    return t ? t : xstrdup("");
}

static int count_of(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++) n++;
    return n;
}

TEST(explain_gad_agrees_with_its_run) {
    char cmd[2048], run[600], png[600];
    int st;
    snprintf(run, sizeof run, "%s/run", test_tmpdir());
    snprintf(png, sizeof png, "%s/png", test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "./gad run --weights weights/resnet18.safetensors --images 4 --alphas 2,6 --epochs 1 --train-images 16 "
             "--methods ig,guided,saliency --out %s --quiet",
             run);
    char *out = sh(cmd, &st);
    REQUIRE(st == 0);
    free(out);
    /* the report explains itself: the paper, a glossary, how to read each table, the
     * steps of the least and most activated image of each class, Fig. 1, settings */
    char page[700];
    snprintf(page, sizeof page, "%s/index.html", run);
    char *html = slurp_text(page);
    REQUIRE(html != NULL);
    static const char *must[] = {"<meta name=\"viewport\" content=\"width=device-width",
                                 "Transforming gradient-based techniques into interpretable methods",
                                 "Caroline Mazini Rodrigues, Nicolas Boutry and Laurent Najman",
                                 "id=\"glossary\"", "<dt>RC</dt>", "<dt>Sup.</dt>", "<dt>&alpha; (alpha)</dt>",
                                 "<dt>N<sub>a</sub>(I)</dt>", "forced, structural", "How to read it:", "On this run:",
                                 "fig/resnet18/fig1.png", "the least activated", "the most activated",
                                 "<details><summary>Every setting", "id=\"time\"", "training support models"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) CHECKF(strstr(html, must[i]), "index.html lacks %s", must[i]);
    CHECK(count_of(html, "How to read it:") >= 6); /* Tables 1, 2, curves, supports, steps, Fig. 5, 6 */
    int pictures = 0;
    for (const char *q = html; (q = strstr(q, "src=\"")) != NULL; pictures++) {
        q += 5;
        const char *e = strchr(q, '"');
        REQUIRE(e != NULL);
        char file[900];
        snprintf(file, sizeof file, "%s/%.*s", run, (int)(e - q), q);
        CHECKF(file_exists(file), "index.html shows %s, which is missing", file);
    }
    CHECKF(pictures == 1 + 4 * 3 * 2 + 2, "%d pictures on the page", pictures); /* Fig. 1, 4 images x 3 methods x 2, Fig. 5, 6 */
    /* every picture the page shows exists */
    snprintf(page, sizeof page, "%s/fig/resnet18/fig1.png", run);
    Image im;
    CHECK(image_load(page, &im) == 0);
    image_free(&im);
    /* every image of the run, both classes: the run's numbers */
    char rj[700];
    snprintf(rj, sizeof rj, "%s/results.json", run);
    size_t len;
    char *text = (char *)test_slurp(rj, &len);
    REQUIRE(text != NULL);
    Json root;
    REQUIRE(json_parse(text, len, &root) == 0);
    free(text);
    const Json *imgs = json_get(&json_get(&root, "models")->kid[0], "images");
    REQUIRE(imgs && imgs->n == 4);
    int images[4], forced = 0;
    for (int k = 0; k < 4; k++) {
        images[k] = (int)json_get(&imgs->kid[k], "index")->num;
        /* the page's steps show every image here (least and most activated of 2 per
         * class) for its own class: a forced RC of results.json is marked there */
        const Json *cells = json_get(&imgs->kid[k], "cells");
        int cls = (int)json_get(&imgs->kid[k], "class")->num;
        for (int c = 0; c < cells->n; c++) {
            const Json *cell = &cells->kid[c];
            forced += (int)json_get(cell, "class")->num == cls && json_get(cell, "forced")->boolean &&
                      json_get(cell, "gad_nonzero")->num > 0;
        }
    }
    json_free(&root);
    CHECKF(forced > 0 && count_of(html, "forced</b></td>") == forced, "results.json: %d forced cells, the page marks %d",
           forced, count_of(html, "forced</b></td>")); /* IG and GB are forced on this data's black background */
    free(html);
    for (int k = 0; k < 4; k++)
        for (int a = 1; a <= 2; a++) {
            snprintf(cmd, sizeof cmd, "./gad explain-gad --run %s --image %d --class %d --verbose", run, images[k], a);
            out = sh(cmd, &st);
            CHECKF(st == 0 && count_of(out, ": the same") == 3 && !strstr(out, "DIFFERENT"), "%s:\n%s", cmd, out);
            CHECKF(strstr(out, "0. distancing") && strstr(out, "vertices:") && strstr(out, "7. RS"), "%s", out);
            free(out);
        }
    snprintf(cmd, sizeof cmd, "./gad explain-gad --run %s --method ig --png %s", run, png);
    out = sh(cmd, &st);
    CHECKF(st == 0 && count_of(out, "wrote ") == 3, "%s", out);
    free(out);
    static const char *files[] = {"resnet18-distancing.png", "resnet18-%d-ig-steps.png", "resnet18-%d-ig-hulls.png"};
    for (int i = 0; i < 3; i++) {
        char name[64], path[800];
        snprintf(name, sizeof name, files[i], images[0]);
        snprintf(path, sizeof path, "%s/%s", png, name);
        Image img;
        CHECKF(image_load(path, &img) == 0, "%s", path);
        image_free(&img);
    }
    /* errors: the message names the problem */
    struct { const char *args; int st; const char *says; } bad[] = {
        {"--run %s/nowhere", 1, "no finished run here"},
        {"--run %s/run --class 3", 2, "--class '3'"},
        {"--run %s/run --image 99999", 2, "--image 99999"},
        {"--run %s/run --model vgg", 2, "no model named 'vgg'"},
        {"--run %s/run --method lime", 2, "--method"},
        {"--run %s/run --frob", 2, "--frob"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[700];
        snprintf(args, sizeof args, bad[i].args, test_tmpdir());
        snprintf(cmd, sizeof cmd, "./gad explain-gad %s", args);
        out = sh(cmd, &st);
        CHECKF(st == bad[i].st && !strncmp(out, "gad", 3) && strstr(out, bad[i].says), "`%s`: exit %d:\n%s", cmd, st,
               out);
        free(out);
    }
}

TEST(tour_command_usage) {
    int st;
    char *out = sh("./gad tour", &st);
    CHECK(st == 2 && strstr(out, "usage: gad tour"));
    free(out);
    out = sh("./gad tour frob", &st);
    CHECK(st == 2 && strstr(out, "unknown walk 'frob'"));
    free(out);
    out = sh("./gad tour relu extra", &st);
    CHECK(st == 2 && strstr(out, "'extra'"));
    free(out);
    out = sh("./gad tour ig --image 99999999", &st);
    CHECK(st == 2 && strstr(out, "--image 99999999"));
    free(out);
    out = sh("./gad tour --help", &st);
    CHECK(st == 0 && strstr(out, "usage: gad tour"));
    free(out);
}

/* Fig. 5 and 6 of three 8x8 images: the middle one misclassified (a purple frame and
 * label), its GAD map empty (a badge); blue and red maps, red and green hulls; in
 * Fig. 6 a forced RC labelled (amber), never over an empty GAD map. */
TEST(figures_fig5_fig6) {
    enum { H = 8, W = 8, N = H * W, C = 3, M = 2 };
    static float orig[M * C][N], gadm[M * C][N];
    static unsigned char input[C][N * 3];
    const float *po[M * C], *pg[M * C];
    static GadPoint ho[M * C][4], hg[M * C][4];
    const GadPoint *pho[M * C], *phg[M * C];
    int nho[M * C], nhg[M * C], empty[M * C], forced[M * C];
    for (int c = 0; c < M * C; c++) {
        for (int i = 0; i < N; i++) {
            orig[c][i] = (float)(i % 7) / 6;
            gadm[c][i] = c % C == 1 ? 0 : (i % 7 >= 5 ? orig[c][i] : 0);
        }
        po[c] = orig[c];
        pg[c] = gadm[c];
        GadPoint sq[4] = {{0, 0}, {7, 0}, {7, 7}, {0, 7}}, tri[3] = {{1, 1}, {5, 1}, {1, 5}};
        memcpy(ho[c], sq, sizeof sq);
        memcpy(hg[c], tri, sizeof tri);
        pho[c] = ho[c];
        phg[c] = hg[c];
        nho[c] = 4;
        nhg[c] = c % C == 1 ? 0 : 3;
        empty[c] = c % C == 1;
        forced[c] = 0;
    }
    for (int j = 0; j < C; j++) memset(input[j], 60 + 40 * j, sizeof input[j]);
    GadFigColumn col[C] = {{input[0], "#1 cat", 0}, {input[1], "#2 dog\npred. cat \xe2\x9c\x97", 1}, {input[2], "#3 dog", 0}};
    const char *names[M] = {"Saliency", "Integrated Gradients"};
    GadGridFig g = {"Figure 5: test", "a note", H, W, 8, C, col, M, names, po, pg, pho, phg, nho, nhg, empty, forced};
    const char *p5 = test_path("fig5.png"), *p6 = test_path("fig6.png");
    REQUIRE(gad_fig_maps(p5, &g) == 0);
    g.title = "Figure 6: test";
    REQUIRE(gad_fig_hull_grid(p6, &g) == 0);
    unsigned char dark_blue[3], dark_red[3];
    heatmap_ramp(HEAT_BLUES, 1, dark_blue);
    heatmap_ramp(HEAT_REDS, 1, dark_red);
    int w, h;
    CHECK(count_colour(p5, dark_blue, &w, &h) > 6 * 64 && w > 3 * 64 && h > 5 * 64);
    CHECK(count_colour(p5, dark_red, NULL, NULL) > 4 * 64);
    CHECK(count_colour(p5, GAD_RGB_WRONG, NULL, NULL) > 4 * 64); /* the frame: 3 px around a 64 px tile */
    CHECK(count_colour(p5, GAD_RGB_WARN, NULL, NULL) > 2 * 20);  /* "empty" on both methods' GAD maps */
    CHECK(count_colour(p6, GAD_RGB_WARN, NULL, NULL) > 2 * 20);
    CHECK(count_colour(p6, GAD_RGB_FORCED, NULL, NULL) == 0);
    CHECK(count_colour(p6, GAD_RGB_ORIG_HULL, NULL, NULL) > 6 * 50);
    CHECK(count_colour(p6, GAD_RGB_GAD_HULL, NULL, NULL) > 4 * 30);
    /* the misclassified column framed in purple in every row, nothing purple without it */
    CHECK(count_colour(p6, GAD_RGB_WRONG, NULL, NULL) > 2 * 4 * 64);
    col[1].misclassified = 0;
    REQUIRE(gad_fig_hull_grid(p6, &g) == 0);
    CHECK(count_colour(p6, GAD_RGB_WRONG, NULL, NULL) == 0);
    /* forced: a badge on the first method's first image, none over the empty map */
    forced[0] = forced[1] = 1;
    REQUIRE(gad_fig_hull_grid(p6, &g) == 0);
    int one = count_colour(p6, GAD_RGB_FORCED, NULL, NULL);
    CHECK(one > 20);
    forced[C] = 1;
    REQUIRE(gad_fig_hull_grid(p6, &g) == 0);
    CHECK(count_colour(p6, GAD_RGB_FORCED, NULL, NULL) == 2 * one);
}

/* Table 1's sentence on a run where the rules forced most of GAD's counts: it says
 * how many were forced and GAD's share among the cells that were not; and that a
 * column forced in every image says nothing. Two methods, 5 images of class 1. */
TEST(report_table1_says_what_was_forced) {
    RunOpts o;
    run_opts_default(&o);
    o.nmethods = 2;
    o.methods[0] = ATTR_SALIENCY;
    o.methods[1] = ATTR_IG;
    GadModelResult mr;
    memset(&mr, 0, sizeof mr);
    snprintf(mr.name, sizeof mr.name, "m");
    snprintf(mr.class_name[0], sizeof mr.class_name[0], "cat");
    snprintf(mr.class_name[1], sizeof mr.class_name[1], "dog");
    GadImageResult img[5];
    GadCell cells[5][4];
    memset(cells, 0, sizeof cells);
    /* saliency (slot 0, class 1): GAD smaller in images 0-3, forced in 0-2; the original in 4.
     * IG (slot 2): GAD smaller and forced in every image: structural. Class 2: no RC. */
    for (int i = 0; i < 5; i++) {
        img[i].cell = cells[i];
        img[i].cls = 0;
        cells[i][0].rc = i < 4 ? 0.5 : 1.5;
        cells[i][0].forced = i < 3;
        cells[i][2].rc = 0.7;
        cells[i][2].forced = 1;
        for (int q = 0; q < 4; q++) {
            cells[i][q].gad_nnz = 10;
            if (q % 2) cells[i][q].rc = NAN;
            gad_tally_rc(&mr.rc[o.methods[q / 2]][q % 2], cells[i][q].rc, 0, cells[i][q].forced, 0);
        }
    }
    mr.img = img;
    mr.nimages = 5;
    GadRunResult r = {&o, 1, &mr, 0};
    const char *path = test_path("table1.html");
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    gad_html_table1(f, &r);
    fclose(f);
    char *html = slurp_text(path);
    REQUIRE(html != NULL);
    CHECKF(strstr(html, "GAD's hull is the smaller for 9 of 10 counted cells"), "%s", html);
    CHECKF(strstr(html, "the rules forced 8 of those 9: they are not a finding; in the 2 cells not forced, GAD is the "
                        "smaller for 1 (50%)"), "%s", html);
    CHECKF(strstr(html, "IG is structural"), "%s", html);
    CHECKF(strstr(html, "10 cells left out"), "%s", html);
    free(html);
    /* every column forced: nothing to say about the model */
    for (int i = 0; i < 5; i++) cells[i][0].forced = 1;
    memset(mr.rc, 0, sizeof mr.rc);
    for (int i = 0; i < 5; i++)
        for (int q = 0; q < 4; q++) gad_tally_rc(&mr.rc[o.methods[q / 2]][q % 2], cells[i][q].rc, 0, cells[i][q].forced, 0);
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    gad_html_table1(f, &r);
    fclose(f);
    html = slurp_text(path);
    REQUIRE(html != NULL);
    CHECKF(strstr(html, "every column is structural, so Table 1 says nothing about this model"), "%s", html);
    free(html);
}
