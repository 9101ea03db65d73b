/* test_user_cli: what a user of PyTorch meets first (issue 21): a warning when the
 * weights do not say how pixels are normalised, a torch.save file answered with
 * the export command, and the tools/ scripts runnable as they are (executable,
 * a shebang naming the Python that has torch, a clear message under another one).
 * Not for: the exit codes of bad flags (test_cli.c), the preprocessing itself
 * (test_resize.c). */
#include "core/err.h"
#include "io/file.h"
#include "nn/model.h"
#include "test.h"
#include "gad.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char warned[4096];
static int nwarned;
static void grab(const char *m, void *ud) {
    (void)ud;
    nwarned++;
    strncat(warned, m, sizeof warned - strlen(warned) - 2);
    strcat(warned, "\n");
}

/* Run a shell command; its stderr in *err (caller frees). Returns the exit status. */
static int sh(const char *cmd, char **err) {
    char c[2048];
    snprintf(c, sizeof c, "%s >/dev/null 2>%s", cmd, test_path("stderr.txt"));
    int st = system(c);
    size_t n = 0;
    unsigned char *b = test_slurp(test_path("stderr.txt"), &n);
    *err = calloc(n + 1, 1); /* test_slurp's buffer is not a string */
    if (b) memcpy(*err, b, n);
    free(b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

TEST(user_norm_warning_only_when_unstated) {
    Model m;
    REQUIRE(model_init(&m, ARCH_RESNET18, 2, 0.125f, 0, 1) == 0);
    err_set_warn_hook(grab, NULL);
    model_warn_norm(&m, "w.safetensors"); /* nothing said: warned */
    CHECKF(nwarned == 1 && strstr(warned, "no mean/std in w.safetensors: pixels are fed as 0..1"), "%s", warned);
    CHECK(!strchr(warned, '\n') || strchr(warned, '\n') == warned + strlen(warned) - 1); /* one line */
    meta_set(&m.meta, "normalize", "none");
    model_warn_norm(&m, "w.safetensors");
    CHECK(nwarned == 1 && model_norm_stated(&m));
    Model g;
    REQUIRE(model_init(&g, ARCH_RESNET18, 2, 0.125f, 0, 1) == 0);
    meta_set(&g.meta, "trained_by", "gad train");
    CHECK(model_norm_stated(&g));
    g.cfg.has_norm = 0;
    model_free(&g);
    REQUIRE(model_init(&g, ARCH_RESNET18, 2, 0.125f, 0, 1) == 0);
    g.cfg.has_norm = 1;
    CHECK(model_norm_stated(&g));
    model_free(&g);
    model_free(&m);
}

/* The warning on gad predict and explain with an image, once, and not for an .npy
 * (fed as it is) or for weights that state their normalisation. */
TEST(user_norm_warning_on_commands) {
    Model m;
    REQUIRE(model_init(&m, ARCH_RESNET18, 2, 0.125f, 0, 1) == 0);
    m.cfg.in_c = 3;
    m.cfg.in_h = m.cfg.in_w = 32;
    char w[512], ws[512];
    snprintf(w, sizeof w, "%s", test_path("plain.safetensors"));
    snprintf(ws, sizeof ws, "%s", test_path("said.safetensors"));
    REQUIRE(model_save(&m, w) == 0);
    meta_set(&m.meta, "normalize", "none");
    REQUIRE(model_save(&m, ws) == 0);
    model_free(&m);
    char cmd[1024], *e;
    snprintf(cmd, sizeof cmd, "./gad predict --weights %s --input tests/fixtures/jpeg/photo_420.jpg", w);
    CHECK(sh(cmd, &e) == 0);
    CHECKF(strstr(e, "gad: warning: no mean/std in") && strstr(e, "plain.safetensors") &&
               !strchr(strchr(e, '\n') + 1, '\n') /* one line */, "%s", e);
    free(e);
    snprintf(cmd, sizeof cmd, "./gad explain --weights %s --input tests/fixtures/jpeg/photo_420.jpg --method saliency", w);
    CHECK(sh(cmd, &e) == 0);
    CHECKF(strstr(e, "no mean/std"), "%s", e);
    free(e);
    snprintf(cmd, sizeof cmd, "./gad predict --weights %s --input tests/fixtures/jpeg/photo_420.jpg", ws);
    CHECK(sh(cmd, &e) == 0);
    CHECKF(!strstr(e, "warning"), "%s", e);
    free(e);
}

/* torch.save files (zip and legacy pickle) are answered with the export command. */
TEST(user_torch_file_says_export) {
    static const unsigned char zip[] = {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char pickle[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20};
    const char *names[] = {"model.pth", "old.bin", "junk.pt"};
    test_spit(test_path(names[0]), zip, sizeof zip);
    test_spit(test_path(names[1]), pickle, sizeof pickle);
    test_spit(test_path(names[2]), "not a model", 11);
    for (int k = 0; k < 3; k++) {
        Model m;
        int rc = model_load(&m, test_path(names[k]));
        const char *msg = err_get();
        CHECKF(rc == -1 && strstr(msg, names[k]) && strstr(msg, "tools/data/export_torchvision.py --pth") &&
                   !strchr(msg, '\n'),
               "%s: %s", names[k], msg);
        printf("    %s\n", msg);
    }
    char cmd[1024], *e;
    snprintf(cmd, sizeof cmd, "./gad predict --weights %s --input tests/fixtures/jpeg/photo_420.jpg",
             test_path(names[0]));
    CHECK(sh(cmd, &e) == 1);
    CHECKF(strstr(e, "export it with tools/data/export_torchvision.py"), "%s", e);
    free(e);
}

/* Every Python script in tools/ and its folders is executable, starts with #!/usr/bin/python3 (the
 * Debian Python that has python3-torch), and checks its imports through tools/needs.py. */
static int check_scripts(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st)) { closedir(d); return -1; }
        if (S_ISDIR(st.st_mode)) {
            if (depth > 0) {
                int k = check_scripts(p, depth - 1);
                if (k < 0) { closedir(d); return -1; }
                n += k;
            }
            continue;
        }
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".py")) continue;
        CHECKF(st.st_mode & S_IXUSR, "%s is not executable", p);
        size_t sz;
        unsigned char *b = test_slurp(p, &sz);
        if (!b) { closedir(d); return -1; }
        CHECKF(!strncmp((char *)b, "#!/usr/bin/python3\n", 19), "%s: no #!/usr/bin/python3 line", p);
        int heavy = strstr((char *)b, "\nimport torch") || strstr((char *)b, "\nimport numpy") ||
                    strstr((char *)b, "\nfrom PIL") || strstr((char *)b, "\nimport torchvision");
        CHECKF(!heavy || strstr((char *)b, "needs.modules("), "%s imports torch/numpy/PIL without needs.modules", p);
        free(b);
        n++;
    }
    closedir(d);
    return n;
}

TEST(user_tools_scripts_runnable) {
    int n = check_scripts("tools", 1);
    REQUIRE(n >= 0);
    CHECK(n >= 15);
    printf("    %d scripts\n", n);
}

/* ---- many files and their names ------------------------------------------------- */

/* stdout of a shell command into a new string (caller frees), exit status in *st. */
static char *sh_out(const char *cmd, int *st) {
    char c[2048];
    snprintf(c, sizeof c, "%s >%s 2>%s", cmd, test_path("stdout.txt"), test_path("stderr2.txt"));
    int s = system(c);
    *st = WIFEXITED(s) ? WEXITSTATUS(s) : 128;
    size_t n = 0;
    unsigned char *b = test_slurp(test_path("stdout.txt"), &n);
    char *o = calloc(n + 1, 1);
    if (b) memcpy(o, b, n);
    free(b);
    return o;
}

static char *slurp_str(const char *path) {
    size_t n = 0;
    unsigned char *b = test_slurp(path, &n);
    char *o = calloc(n + 1, 1);
    if (b) memcpy(o, b, n);
    free(b);
    return o;
}

/* A folder (with a text file and a name holding a comma), a file and a list: every
 * image is predicted once, in order, named by its path in stdout and the CSV; the
 * logits are those of predicting it alone. */
TEST(user_predict_many_files_named) {
    char dir[600], c[3000], list[600];
    snprintf(dir, sizeof dir, "%s/imgs", test_tmpdir());
    snprintf(c, sizeof c, "mkdir -p %s && cp tests/fixtures/jpeg/photo_420.jpg %s/a.jpg && "
             "cp tests/fixtures/jpeg/photo_gray.jpg '%s/b,c.jpg' && echo hi > %s/notes.txt", dir, dir, dir, dir);
    REQUIRE(system(c) == 0);
    snprintf(list, sizeof list, "%s/list.txt", test_tmpdir());
    FILE *f = fopen(list, "w");
    REQUIRE(f);
    fprintf(f, "# images\ntests/fixtures/jpeg/camera_crop.jpg\n\n  tests/fixtures/images/png/rgb8.png  \n");
    fclose(f);
    const char *csv = test_path("p.csv");
    char csvp[600];
    snprintf(csvp, sizeof csvp, "%s", csv);
    int st;
    snprintf(c, sizeof c, "./gad predict --weights weights/vgg16.safetensors %s --input tests/fixtures/jpeg/syn_420.jpg "
             "--input-list %s --csv %s", dir, list, csvp);
    char *o = sh_out(c, &st), *e = slurp_str(test_path("stderr2.txt"));
    CHECKF(st == 0, "exit %d: %s", st, e);
    CHECKF(strstr(e, "notes.txt") && strstr(e, "skipped"), "%s", e);
    const char *order[] = {"/a.jpg", "/b,c.jpg", "syn_420.jpg", "camera_crop.jpg", "rgb8.png"};
    const char *at = o;
    for (int k = 0; k < 5; k++) {
        char want[64];
        snprintf(want, sizeof want, "image %d (", k);
        const char *q = strstr(at, want);
        CHECKF(q && strstr(q, order[k]) && (!strstr(q + 1, "image ") || strstr(q, order[k]) < strstr(q + 1, "image ")),
               "image %d should be %s: %s", k, order[k], o);
        if (q) at = q + 1;
    }
    char *csvs = slurp_str(csvp);
    CHECKF(!strncmp(csvs, "index,path,class,class_name,p,p_Pullover,p_Coat,logit_Pullover,logit_Coat\n", 74), "%s", csvs);
    CHECKF(strstr(csvs, "\n1,\"") && strstr(csvs, "b,c.jpg\",") && strstr(csvs, "\n4,tests/fixtures/images/png/rgb8.png,"),
           "%s", csvs);
    int rows = 0;
    for (const char *q = csvs; (q = strchr(q, '\n')) != NULL; q++) rows++;
    CHECK(rows == 6);
    /* the same logits as camera_crop.jpg alone */
    char *one = sh_out("./gad predict --weights weights/vgg16.safetensors --input tests/fixtures/jpeg/camera_crop.jpg",
                       &st);
    const char *l1 = strstr(one, "logits:"), *l3 = strstr(strstr(o, "image 3 ("), "logits:");
    CHECKF(l1 && l3 && !strncmp(l1, l3, strcspn(l1, "\n")), "%s\n---\n%s", one, o);
    free(one);
    free(csvs);
    free(o);
    free(e);
    /* --strict: the text file is the error; a missing list entry names its line */
    snprintf(c, sizeof c, "./gad predict --weights weights/vgg16.safetensors --strict %s --csv %s/s.csv", dir,
             test_tmpdir());
    o = sh_out(c, &st);
    e = slurp_str(test_path("stderr2.txt"));
    CHECKF(st == 1 && strstr(e, "notes.txt"), "%d %s", st, e);
    snprintf(c, sizeof c, "%s/s.csv", test_tmpdir());
    CHECKF(!file_exists(c), "a partial CSV was left behind");
    free(o);
    free(e);
    f = fopen(list, "w");
    fprintf(f, "tests/fixtures/jpeg/photo_420.jpg\nno/such.jpg\n");
    fclose(f);
    snprintf(c, sizeof c, "./gad predict --weights weights/vgg16.safetensors --input-list %s", list);
    o = sh_out(c, &st);
    e = slurp_str(test_path("stderr2.txt"));
    CHECKF(st == 1 && strstr(e, "list.txt: line 2: no/such.jpg"), "%d %s", st, e);
    free(o);
    free(e);
}

/* explain over a folder: one map PNG and .npy per image, named by index and file,
 * listed with the image's path in explain.csv; each map is the one explain gives
 * for that image alone. */
TEST(user_explain_many_files_out_dir) {
    char dir[600], od[600], c[3000];
    snprintf(dir, sizeof dir, "%s/imgs", test_tmpdir());
    snprintf(od, sizeof od, "%s/maps", test_tmpdir());
    snprintf(c, sizeof c, "mkdir -p %s && cp tests/fixtures/jpeg/photo_420.jpg tests/fixtures/jpeg/syn_rgb.jpg %s/", dir,
             dir);
    REQUIRE(system(c) == 0);
    int st;
    snprintf(c, sizeof c, "./gad explain --weights weights/resnet18.safetensors --method gxi --input %s --out-dir %s", dir,
             od);
    char *o = sh_out(c, &st);
    CHECKF(st == 0, "%s", o);
    snprintf(c, sizeof c, "%s/explain.csv", od);
    char *csv = slurp_str(c);
    CHECKF(strstr(csv, "index,path,target,target_name,logit,completeness_error,map_png,map_npy\n0,") &&
               strstr(csv, "/photo_420.jpg,") && strstr(csv, "0000_photo_420.png") && strstr(csv, "0001_syn_rgb.npy"),
           "%s", csv);
    snprintf(c, sizeof c, "%s/0001_syn_rgb.png", od);
    CHECK(file_exists(c));
    snprintf(c, sizeof c,
             "./gad explain --weights weights/resnet18.safetensors --method gxi --input tests/fixtures/jpeg/syn_rgb.jpg "
             "--out %s/alone.npy", test_tmpdir());
    free(sh_out(c, &st));
    CHECK(st == 0);
    size_t na, nb;
    snprintf(c, sizeof c, "%s/alone.npy", test_tmpdir());
    unsigned char *a = test_slurp(c, &na);
    snprintf(c, sizeof c, "%s/0001_syn_rgb.npy", od);
    unsigned char *b = test_slurp(c, &nb);
    /* the same floats: [1,3,H,W] and [3,H,W] differ only in their headers */
    CHECK(a && b && na > 128 && nb > 128 && na - 128 > 0 && !memcmp(a + na - (nb - 128), b + 128, nb - 128));
    free(a);
    free(b);
    free(csv);
    free(o);
}

/* gad run names every image: results.json and index.html give each one's path (FILE[i]
 * for IDX data), and --images-list explains the images it names: one of the data by
 * its name, one from outside with its class as its folder's name, one with its class
 * after a tab. A small run: one method, one alpha, one epoch on 16 images. */
TEST(user_run_names_images_and_takes_a_list) {
    char dir[600], c[3000], list[700];
    snprintf(dir, sizeof dir, "%s/Coat", test_tmpdir());
    snprintf(c, sizeof c, "mkdir -p %s && cp tests/fixtures/jpeg/photo_gray.jpg %s/c1.jpg", dir, dir);
    REQUIRE(system(c) == 0);
    snprintf(list, sizeof list, "%s/list.txt", test_tmpdir());
    FILE *f = fopen(list, "w");
    REQUIRE(f);
    fprintf(f, "data/fashion-pc-images-idx3-ubyte.gz[5]\n# a comment\n%s/c1.jpg\ntests/fixtures/jpeg/photo_420.jpg\tPullover\n",
            dir);
    fclose(f);
    const char *common = "./gad run --weights weights/resnet18.safetensors --data data/fashion-pc-images-idx3-ubyte.gz "
                         "--classes 2,4 --methods saliency --alphas 2 --epochs 1 --train-images 16 --curves off "
                         "--control-draws 0 --quiet";
    int st;
    snprintf(c, sizeof c, "%s --images 4 --out %s/r1", common, test_tmpdir());
    free(sh_out(c, &st));
    REQUIRE(st == 0);
    snprintf(c, sizeof c, "%s/r1/results.json", test_tmpdir());
    char *js = slurp_str(c);
    CHECKF(strstr(js, "\"path\":\"data/fashion-pc-images-idx3-ubyte.gz[") != NULL, "%.300s", js);
    CHECKF(!strncmp(js, "{\n\"gad_version\":\"" GAD_VERSION "\",", strlen(GAD_VERSION) + 18), "%.300s", js);
    free(js);
    snprintf(c, sizeof c, "%s/r1/index.html", test_tmpdir());
    char *html = slurp_str(c);
    CHECK(strstr(html, "<li><code>data/fashion-pc-images-idx3-ubyte.gz[") != NULL);
    free(html);
    snprintf(c, sizeof c, "%s --images-list %s --out %s/r2", common, list, test_tmpdir());
    char *o = sh_out(c, &st), *e = slurp_str(test_path("stderr2.txt"));
    CHECKF(st == 0, "%s", e);
    free(o);
    free(e);
    snprintf(c, sizeof c, "%s/r2/results.json", test_tmpdir());
    js = slurp_str(c);
    char want[800];
    snprintf(want, sizeof want, "\"index\":3001,\"path\":\"%s/c1.jpg\",\"class\":2", dir);
    CHECKF(strstr(js, "\"index\":5,\"path\":\"data/fashion-pc-images-idx3-ubyte.gz[5]\",\"class\":1") &&
               strstr(js, want) && strstr(js, "\"path\":\"tests/fixtures/jpeg/photo_420.jpg\",\"class\":1"),
           "%.600s", js);
    free(js);
    /* explain-gad takes the run's first image of the data; one from outside is refused, said why */
    snprintf(c, sizeof c, "./gad explain-gad --run %s/r2", test_tmpdir());
    free(sh_out(c, &st));
    e = slurp_str(test_path("stderr2.txt"));
    CHECKF(st == 0, "%d %s", st, e);
    free(e);
    snprintf(c, sizeof c, "./gad explain-gad --run %s/r2 --image 3001", test_tmpdir());
    free(sh_out(c, &st));
    e = slurp_str(test_path("stderr2.txt"));
    CHECKF(st == 2 && strstr(e, "from outside the data are not explained"), "%d %s", st, e);
    free(e);
    /* the same run in two shards, merged: the same tables and figures, the same names */
    for (int k = 2; k >= 1; k--) {
        snprintf(c, sizeof c, "%s --images-list %s --shard %d/2 --out %s/r4", common, list, k, test_tmpdir());
        free(sh_out(c, &st));
        CHECK(st == 0);
    }
    snprintf(c, sizeof c, "./gad merge %s/r4 --quiet", test_tmpdir());
    free(sh_out(c, &st));
    CHECK(st == 0);
    static const char *same[] = {"table1.csv", "fig/resnet18/fig5.png"};
    for (int i = 0; i < 2; i++) {
        snprintf(c, sizeof c, "cmp -s %s/r2/%s %s/r4/%s", test_tmpdir(), same[i], test_tmpdir(), same[i]);
        CHECKF(system(c) == 0, "%s differs after the merge", same[i]);
    }
    snprintf(c, sizeof c, "%s/r4/results.json", test_tmpdir());
    js = slurp_str(c);
    CHECKF(strstr(js, want) && strstr(js, "\"images_list\":\""), "%.600s", js);
    free(js);
    /* a shard made from an edited list does not merge with the others */
    f = fopen(list, "a");
    fprintf(f, "# edited\n");
    fclose(f);
    snprintf(c, sizeof c, "%s --images-list %s --shard 2/2 --out %s/r4", common, list, test_tmpdir());
    free(sh_out(c, &st));
    snprintf(c, sizeof c, "./gad merge %s/r4 --quiet", test_tmpdir());
    free(sh_out(c, &st));
    e = slurp_str(test_path("stderr2.txt"));
    CHECKF(st != 0 && strstr(e, "images_list_fnv differs"), "%d %s", st, e);
    free(e);
    /* a class that is not the data's is a usage error; an image without a class an error */
    f = fopen(list, "w");
    fprintf(f, "x.jpg\tDog\n");
    fclose(f);
    snprintf(c, sizeof c, "%s --images-list %s --out %s/r3", common, list, test_tmpdir());
    free(sh_out(c, &st));
    e = slurp_str(test_path("stderr2.txt"));
    CHECKF(st == 2 && strstr(e, "list.txt: line 1: class 'Dog'"), "%d %s", st, e);
    free(e);
    f = fopen(list, "w");
    fprintf(f, "tests/fixtures/jpeg/photo_420.jpg\n");
    fclose(f);
    free(sh_out(c, &st));
    e = slurp_str(test_path("stderr2.txt"));
    CHECKF(st == 1 && strstr(e, "line 1: the class of"), "%d %s", st, e);
    free(e);
}

/* ---- an installed tool ------------------------------------------------------------ */

/* Every command that `gad --help` lists: an unknown flag or a stray argument is a usage
 * error (exit 2, the flag named), --help exits 0; `gad --version` names the version. */
TEST(user_every_command_usage_exit_2) {
    int st;
    char *help = sh_out("./gad --help", &st), c[512];
    REQUIRE(st == 0);
    const char *p = strstr(help, "commands:\n");
    REQUIRE(p);
    int n = 0;
    for (p += 10; *p == ' ' && p[1] == ' '; p = strchr(p, '\n') + 1) {
        char cmd[32];
        if (sscanf(p, " %31s", cmd) != 1) break;
        n++;
        snprintf(c, sizeof c, "./gad %s --frob-nicate", cmd);
        free(sh_out(c, &st));
        char *e = slurp_str(test_path("stderr2.txt"));
        CHECKF(st == 2 && strstr(e, "--frob-nicate"), "gad %s --frob-nicate: exit %d, %s", cmd, st, e);
        free(e);
        snprintf(c, sizeof c, "./gad %s --help", cmd);
        free(sh_out(c, &st));
        CHECKF(st == 0, "gad %s --help: exit %d", cmd, st);
    }
    CHECKF(n >= 9, "%d commands in gad --help", n);
    free(help);
    char *v = sh_out("./gad --version", &st);
    CHECKF(st == 0 && !strncmp(v, "gad " GAD_VERSION "\n", strlen(GAD_VERSION) + 5), "%d %s", st, v);
    free(v);
}

/* The bundled data and weights are found from any folder: beside the executable
 * (called by its path or through a symbolic link), the paths in what gad prints then
 * absolute; from the repository's root they stay relative. */
TEST(user_bundled_files_from_any_folder) {
    char cwd[1024], c[6000], tmp[1600];
    REQUIRE(getcwd(cwd, sizeof cwd));
    if (test_tmpdir()[0] == '/') snprintf(tmp, sizeof tmp, "%s", test_tmpdir());
    else snprintf(tmp, sizeof tmp, "%s/%s", cwd, test_tmpdir());
    snprintf(c, sizeof c, "mkdir -p %s/bin && ln -sf %s/gad %s/bin/gad", tmp, cwd, tmp);
    REQUIRE(system(c) == 0);
    int st;
    snprintf(c, sizeof c, "(cd %s && %s/gad tour ig)", tmp, cwd);
    char *o = sh_out(c, &st);
    char want[1100];
    snprintf(want, sizeof want, "of %s/weights/resnet18.safetensors", cwd);
    CHECKF(st == 0 && strstr(o, want), "%d %.200s", st, o);
    free(o);
    snprintf(c, sizeof c, "(cd %s && PATH=%s/bin:$PATH gad tour ig)", tmp, tmp);
    o = sh_out(c, &st);
    CHECKF(st == 0 && strstr(o, want), "%d %.200s", st, o);
    free(o);
    o = sh_out("./gad tour ig", &st);
    CHECKF(st == 0 && strstr(o, "of weights/resnet18.safetensors"), "%d %.200s", st, o);
    free(o);
}

/* make install into a temporary prefix, the installed gad, gad(1), the libraries'
 * exported names and the example built with pkg-config against each, make uninstall
 * (tests/install.sh; it builds the libraries' own objects the first time). */
TEST(user_install_and_embed) {
    char c[2000], cwd[1024];
    REQUIRE(getcwd(cwd, sizeof cwd));
    if (test_tmpdir()[0] == '/') snprintf(c, sizeof c, "sh tests/install.sh %s", test_tmpdir());
    else snprintf(c, sizeof c, "sh tests/install.sh %s/%s", cwd, test_tmpdir());
    int st;
    char *o = sh_out(c, &st);
    CHECKF(st == 0 && strstr(o, "install.sh: ok"), "%s", o);
    free(o);
}
