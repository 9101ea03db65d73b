/* test_core: workspace, thread pool, rng and gemm against its naive reference. */
#include "test.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "core/threads.h"
#include "core/ws.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sizes saturate at SIZE_MAX instead of wrapping round (32-bit machines). */
TEST(core_size_arithmetic_saturates) {
    const size_t big = SIZE_MAX / 2 + 1;
    CHECK(size_mul(3, 5) == 15 && size_mul(0, SIZE_MAX) == 0 && size_mul(SIZE_MAX, 1) == SIZE_MAX);
    CHECK(size_mul(big, 2) == SIZE_MAX && size_mul(2, big) == SIZE_MAX && size_mul(big - 1, 2) == SIZE_MAX - 1);
    CHECK(size_mul(SIZE_MAX, SIZE_MAX) == SIZE_MAX);
    CHECK(size_add(3, 5) == 8 && size_add(big, big - 1) == SIZE_MAX && size_add(big, big) == SIZE_MAX);
    CHECK(size_add(SIZE_MAX, 0) == SIZE_MAX && size_add(1, SIZE_MAX) == SIZE_MAX);
    CHECK(ws_round(1) == 64 && ws_round(64) == 64 && ws_round(SIZE_MAX - 100) == SIZE_MAX - 63);
    CHECK(ws_round(SIZE_MAX - 62) == SIZE_MAX && ws_round(SIZE_MAX) == SIZE_MAX);
    /* what a 32-bit plan once computed for 16384x16384 x 4 channels at batch 64 */
    const size_t act = ws_round(size_mul(size_mul(64, (size_t)4 << 28), sizeof(float)));
    CHECK(SIZE_MAX > 0xffffffffu ? (double)act == 274877906944.0 : act == SIZE_MAX); /* 2^38 bytes */
}

TEST(core_ws) {
    Workspace ws;
    ws_init(&ws);
    ws_reserve(&ws, 1000);
    size_t m = ws_mark(&ws);
    float *a = ws_floats(&ws, 10);
    CHECK(((size_t)a & 63) == 0);
    float *b = ws_floats(&ws, 10);
    CHECK(b - a == 16);
    ws_release(&ws, m);
    CHECK(ws_floats(&ws, 3) == a);
    ws_free(&ws);
}

/* Large blocks carry the huge-page advice: the mapping holding a fresh 8 MiB block
 * shows "hg" (MADV_HUGEPAGE) in its VmFlags. A kernel without transparent huge
 * pages (or no /proc) skips the check. Whether huge pages are then really given is
 * the kernel's business (memory fragmentation), so that is not asserted. */
TEST(core_large_blocks_ask_for_huge_pages) {
    FILE *thp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    FILE *f = thp ? fopen("/proc/self/smaps", "r") : NULL;
    if (thp) fclose(thp);
    if (!f) { printf("    skipped: no transparent huge pages or no /proc/self/smaps\n"); return; }
    fclose(f);
    const size_t n = (size_t)8 << 20;
    unsigned char *p = xmalloc_aligned(n);
    CHECK(((size_t)p & (((size_t)2 << 20) - 1)) == 0); /* whole 2 MiB pages */
    memset(p, 1, n);
    f = fopen("/proc/self/smaps", "r");
    REQUIRE(f);
    char line[512];
    int inside = 0, found = 0, advised = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = (unsigned long)(size_t)p >= lo && (unsigned long)(size_t)p < hi;
            found |= inside;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            advised = strstr(line, " hg") != NULL;
        }
    }
    fclose(f);
    CHECKF(found, "no mapping holds the block at %p", (void *)p);
    CHECKF(advised, "the block's mapping lacks the MADV_HUGEPAGE flag (hg)");
    xfree_aligned(p);
}

static void count_job(void *ctx, int ith, int nth) {
    long lo, hi;
    int *v = ctx;
    par_range(1000, ith, nth, &lo, &hi);
    for (long i = lo; i < hi; i++) v[i] += 1;
}

TEST(core_threads_cover_every_item_once) {
    int v[1000];
    for (int n = 1; n <= 4; n++) {
        memset(v, 0, sizeof v);
        par_init(n);
        par_run(count_job, v);
        int bad = -1;
        for (int i = 0; i < 1000 && bad < 0; i++) if (v[i] != 1) bad = i;
        CHECKF(bad < 0, "threads=%d: item %d ran %d times", n, bad, bad < 0 ? 1 : v[bad]);
    }
    par_shutdown();
}

TEST(core_gemm_matches_reference) {
    Rng r;
    rng_seed(&r, 1);
    int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {64, 64, 64}, {100, 37, 300}, {129, 255, 31}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int tA = 0; tA < 2; tA++)
            for (int tB = 0; tB < 2; tB++) {
                int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
                float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
                for (int i = 0; i < M * K; i++) A[i] = rng_normal(&r);
                for (int i = 0; i < K * N; i++) B[i] = rng_normal(&r);
                for (int i = 0; i < M * N; i++) C[i] = R[i] = rng_normal(&r);
                gemm(tA, tB, M, N, K, 0.5f, A, tA ? M : K, B, tB ? K : N, 2.0f, C, N);
                gemm_ref(tA, tB, M, N, K, 0.5f, A, tA ? M : K, B, tB ? K : N, 2.0f, R, N);
                char what[64];
                snprintf(what, sizeof what, "gemm %dx%dx%d tA=%d tB=%d", M, N, K, tA, tB);
                CHECK_CLOSE(what, C, R, (size_t)M * N, 1e-4f, 1e-4f);
                free(A); free(B); free(C); free(R);
            }
}
