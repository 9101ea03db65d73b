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
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

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
        CHECKF(rc == -1 && strstr(msg, names[k]) && strstr(msg, "tools/export_torchvision.py --pth") &&
                   !strchr(msg, '\n'),
               "%s: %s", names[k], msg);
        printf("    %s\n", msg);
    }
    char cmd[1024], *e;
    snprintf(cmd, sizeof cmd, "./gad predict --weights %s --input tests/fixtures/jpeg/photo_420.jpg",
             test_path(names[0]));
    CHECK(sh(cmd, &e) == 1);
    CHECKF(strstr(e, "export it with tools/export_torchvision.py"), "%s", e);
    free(e);
}

/* Every Python script in tools/ is executable, starts with #!/usr/bin/python3 (the Debian Python
 * that has python3-torch), and checks its imports through tools/needs.py. */
TEST(user_tools_scripts_runnable) {
    DIR *d = opendir("tools");
    REQUIRE(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".py")) continue;
        char p[512];
        snprintf(p, sizeof p, "tools/%s", de->d_name);
        struct stat st;
        REQUIRE(stat(p, &st) == 0);
        CHECKF(st.st_mode & S_IXUSR, "%s is not executable", p);
        size_t sz;
        unsigned char *b = test_slurp(p, &sz);
        REQUIRE(b);
        CHECKF(!strncmp((char *)b, "#!/usr/bin/python3\n", 19), "%s: no #!/usr/bin/python3 line", p);
        int heavy = strstr((char *)b, "\nimport torch") || strstr((char *)b, "\nimport numpy") ||
                    strstr((char *)b, "\nfrom PIL") || strstr((char *)b, "\nimport torchvision");
        CHECKF(!heavy || strstr((char *)b, "needs.modules("), "%s imports torch/numpy/PIL without needs.modules", p);
        free(b);
        n++;
    }
    closedir(d);
    CHECK(n >= 15);
    printf("    %d scripts\n", n);
}
