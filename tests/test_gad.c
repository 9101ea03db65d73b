/* test_gad: importance maps, presence rules and intersection, monotone-chain hulls
 * (hand-made sets and a brute-force hull on random sets), hull masks, RC and RS;
 * distancing, support models (alpha = 0 bitwise, the cache) and a tiny whole run. */
#include "test.h"
#include "core/err.h"
#include "core/rng.h"
#include "gad/gad.h"
#include "gad/run.h"
#include "io/dataset.h"
#include "io/file.h"
#include "io/image.h"
#include "io/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t xcross(GadPoint a, GadPoint b, GadPoint c) {
    return (int64_t)(b.x - a.x) * (c.y - a.y) - (int64_t)(b.y - a.y) * (c.x - a.x);
}

/* hull of a literal point list; returns vertex count, hull in h */
static int hull_of(const int *xy, int n, GadPoint *h) {
    GadPoint pts[64];
    for (int i = 0; i < n; i++) {
        pts[i].x = xy[2 * i];
        pts[i].y = xy[2 * i + 1];
    }
    return gad_convex_hull(pts, n, h);
}

static int same_pt(GadPoint p, int x, int y) { return p.x == x && p.y == y; }

/* hull point rules: the top half / all of the non-zero pixels, the top half of the
 * image's pixels, the present pixels (>= 10% of the max) */
static const HullRule NZ_HALF = {HULL_OF_NONZERO, 0.5f, {PRESENT_FRAC, 0.1f}};
static const HullRule NZ_ALL = {HULL_OF_NONZERO, 1.0f, {PRESENT_FRAC, 0.1f}};
static const HullRule IMG_HALF = {HULL_OF_IMAGE, 0.5f, {PRESENT_FRAC, 0.1f}};
static const HullRule PRESENT10 = {HULL_OF_PRESENT, 0.5f, {PRESENT_FRAC, 0.1f}};

TEST(gad_importance_abs_channel_sum) {
    /* [3,2,2]: pixel 0 cancels, pixel 1 negative sum, pixel 3 positive */
    float a[12] = {1, -1, 0, 2, /**/ -1, -2, 0, 2, /**/ 0, 0.5f, 0, -1};
    float imp[4];
    gad_importance(a, 3, 2, 2, imp);
    CHECK_NEAR(imp[0], 0.0, 0);
    CHECK_NEAR(imp[1], 2.5, 0);
    CHECK_NEAR(imp[2], 0.0, 0);
    CHECK_NEAR(imp[3], 3.0, 0);
}

TEST(gad_frac_count_rounding) {
    CHECK(gad_frac_count(0.5, 0) == 0);
    CHECK(gad_frac_count(0.5, 1) == 1);
    CHECK(gad_frac_count(0.5, 7) == 4);
    CHECK(gad_frac_count(0.5, 8) == 4);
    CHECK(gad_frac_count(0.1f, 10) == 1);  /* float 0.1 is a hair above 0.1 */
    CHECK(gad_frac_count(0.1f, 11) == 2);
    CHECK(gad_frac_count(1.0, 9) == 9);
    CHECK(gad_frac_count(0.0, 9) == 0);
    CHECK(gad_frac_count(0.01, 9) == 1);
}

TEST(gad_hull_degenerate_sets) {
    GadPoint h[64];
    CHECK(hull_of(NULL, 0, h) == 0);
    int one[] = {3, 4};
    REQUIRE(hull_of(one, 1, h) == 1);
    CHECK(same_pt(h[0], 3, 4));
    int dup[] = {2, 2, 2, 2, 2, 2, 2, 2};
    REQUIRE(hull_of(dup, 4, h) == 1);
    CHECK(same_pt(h[0], 2, 2));
    int two[] = {5, 1, 0, 3};
    REQUIRE(hull_of(two, 2, h) == 2);
    CHECK(same_pt(h[0], 0, 3) && same_pt(h[1], 5, 1));
    int two_dup[] = {5, 1, 0, 3, 5, 1, 0, 3, 5, 1};
    REQUIRE(hull_of(two_dup, 5, h) == 2);
    CHECK(same_pt(h[0], 0, 3) && same_pt(h[1], 5, 1));
    int horiz[] = {3, 2, 0, 2, 7, 2, 1, 2, 5, 2};
    REQUIRE(hull_of(horiz, 5, h) == 2);
    CHECK(same_pt(h[0], 0, 2) && same_pt(h[1], 7, 2));
    int vert[] = {4, 9, 4, 0, 4, 3, 4, 3};
    REQUIRE(hull_of(vert, 4, h) == 2);
    CHECK(same_pt(h[0], 4, 0) && same_pt(h[1], 4, 9));
    int diag[] = {2, 2, 0, 0, 3, 3, 1, 1, 1, 1};
    REQUIRE(hull_of(diag, 5, h) == 2);
    CHECK(same_pt(h[0], 0, 0) && same_pt(h[1], 3, 3));
    CHECK(gad_area2(h, 2) == 0);
    /* a line's mask is the pixels on the segment */
    unsigned char m[16];
    CHECK(gad_hull_mask(h, 2, 4, 4, m) == 4);
    CHECK(m[0] && m[5] && m[10] && m[15] && !m[1] && !m[4]);
    CHECK(gad_hull_mask(h, 1, 4, 4, m) == 1 && m[0]);
    CHECK(gad_hull_mask(h, 0, 4, 4, m) == 0);
}

TEST(gad_hull_square_and_triangle) {
    GadPoint h[64];
    /* square 0..3 with interior points, mid-edge (collinear) points and duplicates */
    int sq[] = {1, 1, 3, 3, 0, 0, 2, 1, 3, 0, 0, 3, 1, 0, 3, 2, 0, 2, 2, 2, 3, 3, 0, 0, 1, 3};
    int nh = hull_of(sq, 13, h);
    REQUIRE(nh == 4);
    /* counter-clockwise from the smallest (x, y): (0,0) (3,0) (3,3) (0,3) */
    CHECK(same_pt(h[0], 0, 0) && same_pt(h[1], 3, 0) && same_pt(h[2], 3, 3) && same_pt(h[3], 0, 3));
    CHECK(gad_area2(h, nh) == 18);
    unsigned char m[36];
    CHECK(gad_hull_mask(h, nh, 6, 6, m) == 16);
    CHECK(m[0] && m[3] && m[3 * 6 + 3] && !m[4] && !m[4 * 6]);
    /* right triangle legs 4: area 8, lattice points x + y <= 4: 15 */
    int tri[] = {0, 4, 4, 0, 0, 0, 1, 1, 2, 2, 0, 2};
    nh = hull_of(tri, 6, h);
    REQUIRE(nh == 3);
    CHECK(same_pt(h[0], 0, 0) && same_pt(h[1], 4, 0) && same_pt(h[2], 0, 4));
    CHECK(gad_area2(h, nh) == 16);
    unsigned char t[25];
    CHECK(gad_hull_mask(h, nh, 5, 5, t) == 15);
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 5; x++) CHECKF(t[y * 5 + x] == (x + y <= 4), "triangle pixel (%d,%d)", x, y);
    /* a hull reaching outside the grid is clipped, not a crash */
    unsigned char s[4];
    CHECK(gad_hull_mask(h, nh, 2, 2, s) == 4);
}

/* Brute force: directed pair (p,q) is a hull edge when every point is strictly left
 * of p->q or on the closed segment [p,q]; its start p is then a strict vertex. */
static int brute_vertex(const GadPoint *p, int n, int i) {
    for (int j = 0; j < n; j++) {
        if (p[j].x == p[i].x && p[j].y == p[i].y) continue;
        int ok = 1;
        for (int k = 0; k < n && ok; k++) {
            int64_t c = xcross(p[i], p[j], p[k]);
            if (c < 0) ok = 0;
            else if (c == 0) {
                /* on the closed segment: dot products of both ends */
                int64_t d1 = (int64_t)(p[k].x - p[i].x) * (p[j].x - p[i].x) + (int64_t)(p[k].y - p[i].y) * (p[j].y - p[i].y);
                int64_t d2 = (int64_t)(p[k].x - p[j].x) * (p[i].x - p[j].x) + (int64_t)(p[k].y - p[j].y) * (p[i].y - p[j].y);
                if (d1 < 0 || d2 < 0) ok = 0;
            }
        }
        if (ok) return 1;
    }
    return 0;
}

/* Is q in the closed convex hull of p[n]? (Caratheodory: a point, a segment or a
 * triangle of the set contains it.) */
static int brute_inside(const GadPoint *p, int n, GadPoint q) {
    for (int i = 0; i < n; i++) {
        if (p[i].x == q.x && p[i].y == q.y) return 1;
        for (int j = i + 1; j < n; j++) {
            if (xcross(p[i], p[j], q) == 0) {
                int x0 = p[i].x < p[j].x ? p[i].x : p[j].x, x1 = p[i].x ^ p[j].x ^ x0;
                int y0 = p[i].y < p[j].y ? p[i].y : p[j].y, y1 = p[i].y ^ p[j].y ^ y0;
                if (q.x >= x0 && q.x <= x1 && q.y >= y0 && q.y <= y1) return 1;
            }
            for (int k = j + 1; k < n; k++) {
                int64_t a = xcross(p[i], p[j], q), b = xcross(p[j], p[k], q), c = xcross(p[k], p[i], q);
                if ((a >= 0 && b >= 0 && c >= 0) || (a <= 0 && b <= 0 && c <= 0)) {
                    if (xcross(p[i], p[j], p[k]) != 0) return 1;
                }
            }
        }
    }
    return 0;
}

static int64_t igcd(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) { int64_t t = a % b; a = b; b = t; }
    return a;
}

TEST(gad_hull_matches_brute_force) {
    Rng r;
    rng_seed(&r, 42);
    enum { G = 11 };
    int bad_vert = 0, bad_mask = 0, bad_pick = 0;
    for (int trial = 0; trial < 400; trial++) {
        int n = 1 + (int)rng_below(&r, 24);
        int span = 2 + (int)rng_below(&r, G - 2);  /* small spans give many collinear sets */
        GadPoint p[32], s[32], h[33];
        for (int i = 0; i < n; i++) {
            p[i].x = (int)rng_below(&r, (uint32_t)span);
            p[i].y = trial % 5 == 0 ? 3 : (int)rng_below(&r, (uint32_t)span);  /* some all-collinear */
        }
        memcpy(s, p, sizeof(GadPoint) * n);
        int nh = gad_convex_hull(s, n, h);
        /* vertex set equals the brute-force extreme points (distinct) */
        int nbrute = 0, distinct = 0;
        for (int i = 0; i < n; i++) {
            int first = 1;
            for (int j = 0; j < i; j++) if (p[j].x == p[i].x && p[j].y == p[i].y) first = 0;
            if (!first) continue;
            distinct++;
            int v = brute_vertex(p, n, i), in_h = 0;
            for (int k = 0; k < nh; k++) in_h |= h[k].x == p[i].x && h[k].y == p[i].y;
            nbrute += v;
            if (v != in_h && distinct > 1) bad_vert++;
        }
        if (distinct == 1) { if (nh != 1) bad_vert++; }
        else if (nbrute != nh) bad_vert++;
        /* strictly convex and counter-clockwise */
        if (nh >= 3)
            for (int k = 0; k < nh; k++)
                if (xcross(h[k], h[(k + 1) % nh], h[(k + 2) % nh]) <= 0) bad_vert++;
        /* mask vs brute-force membership */
        unsigned char m[G * G];
        int cnt = gad_hull_mask(h, nh, G, G, m);
        for (int y = 0; y < G; y++)
            for (int x = 0; x < G; x++) {
                GadPoint q = {x, y};
                if (m[y * G + x] != brute_inside(p, n, q)) bad_mask++;
            }
        /* Pick's theorem ties the area to the mask: 2A = 2I + B - 2, count = I + B */
        if (nh >= 3) {
            int64_t B = 0;
            for (int k = 0; k < nh; k++) B += igcd(h[(k + 1) % nh].x - h[k].x, h[(k + 1) % nh].y - h[k].y);
            if (gad_area2(h, nh) != 2 * (cnt - B) + B - 2) bad_pick++;
        }
    }
    CHECKF(bad_vert == 0, "%d vertex mismatches", bad_vert);
    CHECKF(bad_mask == 0, "%d mask pixels differ from brute force", bad_mask);
    CHECKF(bad_pick == 0, "%d areas violate Pick's theorem", bad_pick);
}

TEST(gad_hull_points_top_half_of_nonzero) {
    /* 3x4 map: 5 non-zero pixels -> top ceil(2.5) = 3; tie at 2.0 broken by index */
    float imp[12] = {0, 2, 0, 0, /**/ 5, 0, 2, 0, /**/ 0, 2, 0, 1};
    GadPoint pts[12];
    int k = gad_hull_points(imp, 3, 4, &NZ_HALF, pts);
    REQUIRE(k == 3);
    CHECK(same_pt(pts[0], 0, 1));  /* 5 at index 4 */
    CHECK(same_pt(pts[1], 1, 0));  /* 2 at index 1 */
    CHECK(same_pt(pts[2], 2, 1));  /* 2 at index 6, before index 9 */
    float zero[12] = {0};
    CHECK(gad_hull_points(zero, 3, 4, &NZ_HALF, pts) == 0);
    GadHull h;
    unsigned char m[12];
    gad_map_hull(zero, 3, 4, &NZ_HALF, &h, NULL, m);
    CHECK(h.npoints == 0 && h.nvert == 0 && h.area == 0 && h.pixels == 0);
    gad_map_hull(imp, 3, 4, &NZ_HALF, &h, NULL, m);  /* triangle (0,1) (1,0) (2,1) */
    CHECK(h.npoints == 3 && h.nvert == 3 && h.pixels == 4);  /* + (1,1) on an edge */
    CHECK_NEAR(h.area, 1.0, 0);
}

TEST(gad_presence_rules) {
    float imp[6] = {10, 1, 0.999f, 0, 4, 1};
    unsigned char pr[6];
    Presence frac = {PRESENT_FRAC, 0.1f};
    /* "reaches 10% of the max": 1 of 10 is present (0.1f * 10 rounds to 1.0f), 0.999 not */
    CHECK(gad_present(imp, 6, frac, pr) == 4);
    CHECK(pr[0] && pr[1] && !pr[2] && !pr[3] && pr[4] && pr[5]);
    Presence half = {PRESENT_FRAC, 0.4f};  /* >= 4 exactly */
    CHECK(gad_present(imp, 6, half, pr) == 2 && pr[0] && pr[4]);
    float zero[6] = {0};
    CHECK(gad_present(zero, 6, frac, pr) == 0);
    Presence none = {PRESENT_FRAC, 0.0f};  /* frac 0: every pixel of a non-zero map */
    CHECK(gad_present(imp, 6, none, pr) == 6);
    /* top: 5 non-zero, ceil(0.5*5) = 3 -> 10, 4, then the first 1 (index 1) */
    Presence top = {PRESENT_TOP, 0.5f};
    CHECK(gad_present(imp, 6, top, pr) == 3);
    CHECK(pr[0] && pr[1] && !pr[2] && !pr[3] && pr[4] && !pr[5]);
    CHECK(gad_present(zero, 6, top, pr) == 0);
}

TEST(gad_intersection_keeps_original_values) {
    float orig[6] = {10, 5, 3, 2, 0.5f, 0};
    float s1[6] = {0.5f, 0, 9, 9, 9, 9};   /* max 9: pixel 0 (0.5) is below 0.9: absent */
    float s2[6] = {0, 0, 1, 2, 8, 5};
    const float *maps[3] = {orig, s1, s2};
    float out[6];
    Presence p = {PRESENT_FRAC, 0.1f};
    /* orig present: 10,5,3,2; s1: 2..5; s2: 2..5 */
    int nnz = gad_intersect(maps, 3, 6, p, out);
    float want[6] = {0, 0, 3, 2, 0, 0};
    CHECK(nnz == 2);
    CHECK_CLOSE("gad map", out, want, 6, 0, 0);
    /* with only the original, GAD is the original's present pixels */
    nnz = gad_intersect(maps, 1, 6, p, out);
    float want1[6] = {10, 5, 3, 2, 0, 0};
    CHECK(nnz == 4);
    CHECK_CLOSE("orig only", out, want1, 6, 0, 0);
    /* top rule: orig top ceil(2.5)=3 {0,1,2}; s1 top 3 of 5 {2,3,4}; s2 top 2 of 4 {4,5} */
    Presence t = {PRESENT_TOP, 0.5f};
    nnz = gad_intersect(maps, 3, 6, t, out);
    CHECK(nnz == 0);
    const float *m2[2] = {orig, s1};
    nnz = gad_intersect(m2, 2, 6, t, out);
    float want2[6] = {0, 0, 3, 0, 0, 0};
    CHECK(nnz == 1);
    CHECK_CLOSE("top rule", out, want2, 6, 0, 0);
}

static void random_map(Rng *r, float *m, int npix, float pzero) {
    for (int i = 0; i < npix; i++) m[i] = rng_uniform(r) < pzero ? 0.0f : rng_uniform(r);
}

/* The top-half presence + top-half hull points reading: the GAD hull points are a
 * subset of the original's, so RC <= 1 always (documented in gad/gad.h). */
TEST(gad_top_half_reading_is_a_subset) {
    Rng r;
    rng_seed(&r, 7);
    enum { H = 12, W = 10, N = H * W };
    int violations = 0, rc_above = 0;
    for (int trial = 0; trial < 200; trial++) {
        float orig[N], s[4][N], g[N];
        random_map(&r, orig, N, 0.3f);
        for (int k = 0; k < 4; k++) random_map(&r, s[k], N, 0.3f);
        const float *maps[5] = {orig, s[0], s[1], s[2], s[3]};
        Presence t = {PRESENT_TOP, 0.5f};
        gad_intersect(maps, 1 + trial % 5, N, t, g);
        GadPoint po[N], pg[N];
        int no = gad_hull_points(orig, H, W, &NZ_HALF, po);
        int ng = gad_hull_points(g, H, W, &NZ_HALF, pg);
        for (int i = 0; i < ng; i++) {
            int found = 0;
            for (int j = 0; j < no; j++) found |= po[j].x == pg[i].x && po[j].y == pg[i].y;
            violations += !found;
        }
        GadHull ho, hg;
        unsigned char mo[N], mg[N];
        gad_map_hull(orig, H, W, &NZ_HALF, &ho, NULL, mo);
        gad_map_hull(g, H, W, &NZ_HALF, &hg, NULL, mg);
        for (int i = 0; i < N; i++) violations += mg[i] && !mo[i];
        double rc = gad_rc(&hg, &ho, RC_AREA_POLYGON);
        rc_above += rc > 1.0;
        violations += !gad_rc_forced(orig, g, H, W, &NZ_HALF);
    }
    CHECKF(violations == 0, "%d GAD points or mask pixels outside the original's, or cells not forced", violations);
    CHECK(rc_above == 0);
}

/* Under PRESENT_FRAC, when the original's present pixels are no more than its hull
 * points, the GAD hull points are again a subset of the original's, under every hull
 * rule (gad/gad.h), and gad_rc_forced says so; under --hull-of present always. */
TEST(gad_frac_rule_subset_when_few_present) {
    Rng r;
    rng_seed(&r, 9);
    enum { H = 10, W = 12, N = H * W };
    const HullRule *rules[3] = {&NZ_HALF, &IMG_HALF, &PRESENT10};
    int checked[3] = {0}, violations = 0, unforced = 0;
    for (int trial = 0; trial < 300; trial++) {
        float orig[N], s[3][N], g[N];
        /* peaky maps: few pixels reach 10% of the max */
        for (int i = 0; i < N; i++) {
            float u = rng_uniform(&r);
            orig[i] = trial % 2 ? u * u * u * u * u * u : u * u;
        }
        for (int k = 0; k < 3; k++) random_map(&r, s[k], N, 0.2f);
        Presence p = {PRESENT_FRAC, 0.1f};
        unsigned char pr[N];
        int npres = gad_present(orig, N, p, pr);
        const float *maps[4] = {orig, s[0], s[1], s[2]};
        gad_intersect(maps, 4, N, p, g);
        for (int ri = 0; ri < 3; ri++) {
            GadPoint po[N], pg[N];
            int no = gad_hull_points(orig, H, W, rules[ri], po), ng = gad_hull_points(g, H, W, rules[ri], pg);
            if (npres > no) {
                unforced += !gad_rc_forced(orig, g, H, W, rules[ri]);
                continue;
            }
            checked[ri]++;
            int sub = 1;
            for (int i = 0; i < ng; i++) {
                int found = 0;
                for (int j = 0; j < no; j++) found |= po[j].x == pg[i].x && po[j].y == pg[i].y;
                sub &= found;
            }
            violations += !sub || !gad_rc_forced(orig, g, H, W, rules[ri]);
        }
    }
    CHECKF(checked[0] > 100 && checked[1] > 100 && checked[2] == 300, "checked %d %d %d", checked[0], checked[1],
           checked[2]);
    CHECKF(violations == 0, "%d GAD points outside the original's", violations);
    CHECKF(unforced > 50, "only %d cells not forced where the present pixels exceed the budget", unforced);
}

/* Each hull budget on a hand-made map (gad/gad.h, "Hull points"). */
TEST(gad_hull_points_each_budget) {
    /* 4x4, 5 non-zero pixels: 9 8 7 6 0.5 */
    float imp[16] = {9, 8, 0, 0, /**/ 7, 0, 0, 0, /**/ 0, 0, 0.5f, 0, /**/ 0, 0, 0, 6};
    GadPoint p[16];
    /* image: ceil(0.5 * 16) = 8 > 5 non-zero: all five, none of importance 0 */
    REQUIRE(gad_hull_points(imp, 4, 4, &IMG_HALF, p) == 5);
    CHECK(same_pt(p[0], 0, 0) && same_pt(p[1], 1, 0) && same_pt(p[2], 0, 1) && same_pt(p[3], 3, 3) &&
          same_pt(p[4], 2, 2));
    HullRule quarter = {HULL_OF_IMAGE, 0.25f, {PRESENT_FRAC, 0.1f}};  /* 4 of 16 */
    REQUIRE(gad_hull_points(imp, 4, 4, &quarter, p) == 4);
    CHECK(same_pt(p[3], 3, 3));
    /* nonzero: ceil(0.5 * 5) = 3 */
    REQUIRE(gad_hull_points(imp, 4, 4, &NZ_HALF, p) == 3);
    CHECK(same_pt(p[2], 0, 1));
    /* present (>= 0.9): 9 8 7 6, not 0.5; with the top rule, the top 3 of 5 */
    REQUIRE(gad_hull_points(imp, 4, 4, &PRESENT10, p) == 4);
    HullRule ptop = {HULL_OF_PRESENT, 0.5f, {PRESENT_TOP, 0.5f}};
    REQUIRE(gad_hull_points(imp, 4, 4, &ptop, p) == 3);
    /* the hull of the five: (0,0) (1,0) (3,3) (0,1), (2,2) inside; area 3 */
    GadHull h;
    GadPoint v[17];
    unsigned char m[16];
    gad_map_hull(imp, 4, 4, &IMG_HALF, &h, v, m);
    CHECK(h.npoints == 5 && h.nvert == 4);
    CHECK_NEAR(h.area, 3.0, 0);
    CHECK(same_pt(v[0], 0, 0) && same_pt(v[1], 1, 0) && same_pt(v[2], 3, 3) && same_pt(v[3], 0, 1));
    CHECK(m[0] && m[1] && m[4] && m[5] && m[10] && m[15] && !m[2] && !m[8] && !m[3]);
    /* an all-zero map has no point under any rule */
    float zero[16] = {0};
    CHECK(gad_hull_points(zero, 4, 4, &IMG_HALF, p) == 0 && gad_hull_points(zero, 4, 4, &NZ_HALF, p) == 0 &&
          gad_hull_points(zero, 4, 4, &PRESENT10, p) == 0);
    /* forced: the map against itself, and an empty GAD map, always are */
    CHECK(gad_rc_forced(imp, imp, 4, 4, &IMG_HALF) && gad_rc_forced(imp, zero, 4, 4, &NZ_HALF));
}

/* The paper's budget (half of the image's pixels) lets the GAD hull be larger: the
 * original's top half is a bright block, the supports keep only weaker spread
 * pixels, all of which the GAD map's budget takes. Not forced. */
TEST(gad_rc_above_one_half_of_the_image) {
    enum { H = 8, W = 8, N = H * W };
    float orig[N] = {0}, sup[N] = {0}, g[N];
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++) orig[y * W + x] = 10.0f;  /* 36 bright: the top 32 */
    int far[4][2] = {{7, 0}, {0, 7}, {7, 7}, {6, 7}};
    for (int i = 0; i < 4; i++) {
        orig[far[i][1] * W + far[i][0]] = 2.0f;
        sup[far[i][1] * W + far[i][0]] = 1.0f;
    }
    sup[0] = 1.0f;  /* and one pixel of the block */
    const float *maps[2] = {orig, sup};
    Presence p = {PRESENT_FRAC, 0.1f};
    REQUIRE(gad_intersect(maps, 2, N, p, g) == 5);
    GadHull ho, hg;
    gad_map_hull(orig, H, W, &IMG_HALF, &ho, NULL, NULL);
    gad_map_hull(g, H, W, &IMG_HALF, &hg, NULL, NULL);
    CHECK(ho.npoints == 32 && hg.npoints == 5);
    CHECK_NEAR(ho.area, 23.0, 0);  /* rows 0-4 of the block and 2 pixels of row 5: (0,0) (5,0) (5,4) (1,5) (0,5) */
    CHECK_NEAR(hg.area, 49.0, 0);  /* the corners */
    CHECK(gad_rc(&hg, &ho, RC_AREA_POLYGON) > 1.0);
    CHECK(!gad_rc_forced(orig, g, H, W, &IMG_HALF));
    /* under --hull-of present the same maps are forced: the GAD points are present in the original */
    CHECK(gad_rc_forced(orig, g, H, W, &PRESENT10));
}

/* Under the default 10% rule the GAD map can keep pixels outside the original's top
 * half: a small bright cluster dominates the original's hull points, the supports
 * drop it, and what remains is a wide spread of weaker (but >= 10%) pixels. */
TEST(gad_rc_above_one_under_default_rule) {
    enum { H = 16, W = 16, N = H * W };
    float orig[N] = {0}, sup[N] = {0};
    for (int y = 7; y <= 9; y++)
        for (int x = 7; x <= 9; x++) orig[y * W + x] = 10.0f;  /* 9 bright, 3x3 */
    int far[9][2] = {{0, 0}, {15, 0}, {0, 15}, {15, 15}, {7, 0}, {0, 7}, {15, 8}, {8, 15}, {3, 3}};
    for (int i = 0; i < 9; i++) {
        orig[far[i][1] * W + far[i][0]] = 2.0f + 0.1f * i;  /* >= 10% of 10 */
        sup[far[i][1] * W + far[i][0]] = 1.0f;
    }
    const float *maps[2] = {orig, sup};
    float g[N];
    Presence p = {PRESENT_FRAC, 0.1f};
    REQUIRE(gad_intersect(maps, 2, N, p, g) == 9);
    GadHull ho, hg;
    gad_map_hull(orig, H, W, &NZ_HALF, &ho, NULL, NULL);  /* top 9 of 18: the 3x3 block */
    gad_map_hull(g, H, W, &NZ_HALF, &hg, NULL, NULL);     /* top 5 of the 9 spread pixels */
    CHECK(ho.npoints == 9 && ho.nvert == 4 && ho.pixels == 9);
    CHECK_NEAR(ho.area, 4.0, 0);
    CHECK(hg.npoints == 5);
    double rc = gad_rc(&hg, &ho, RC_AREA_POLYGON);
    CHECKF(rc > 1.0, "RC = %g", rc);
    CHECK(gad_rc(&hg, &ho, RC_AREA_PIXELS) > 1.0);
    GadRcTally t = {0};
    gad_tally_rc(&t, rc, 0, 0, 0);
    CHECK(t.orig == 1 && t.gad == 0 && t.forced == 0 && t.tie == 0);
}

TEST(gad_rc_zero_area_original) {
    enum { H = 8, W = 8, N = H * W };
    float orig[N] = {0}, g[N] = {0};
    orig[3 * W + 1] = 5; orig[3 * W + 4] = 4;      /* two points: a line */
    GadHull ho, hg;
    gad_map_hull(orig, H, W, &NZ_ALL, &ho, NULL, NULL);
    CHECK(ho.nvert == 2 && ho.area == 0 && ho.pixels == 4);
    gad_map_hull(g, H, W, &NZ_ALL, &hg, NULL, NULL);  /* empty GAD map */
    CHECK(isnan(gad_rc(&hg, &ho, RC_AREA_POLYGON)));
    CHECK_NEAR(gad_rc(&hg, &ho, RC_AREA_PIXELS), 0.0, 0);
    g[3 * W + 2] = 1;
    gad_map_hull(g, H, W, &NZ_ALL, &hg, NULL, NULL);
    CHECK_NEAR(gad_rc(&hg, &ho, RC_AREA_PIXELS), 0.25, 1e-12);
    GadRcTally t = {0};
    gad_tally_rc(&t, gad_rc(&hg, &ho, RC_AREA_POLYGON), 0, 0, 0);
    gad_tally_rc(&t, 0.5, 0, 0, 0);
    gad_tally_rc(&t, 1.0, 0, 1, 0);
    CHECK(t.undefined == 1 && t.gad == 1 && t.orig == 1 && t.tie == 1 && t.forced == 1);
}

/* Each count of Table 1 on hand-made cells: forced, tie, empty (left out or for
 * GAD), degenerate original; and the structural flag. */
TEST(gad_table1_counts) {
    CHECK(gad_rc_count(0.5, 0, 0) == RC_COUNT_GAD && gad_rc_count(1.0, 0, 0) == RC_COUNT_ORIG &&
          gad_rc_count(2.0, 0, 1) == RC_COUNT_ORIG && gad_rc_count(NAN, 0, 0) == RC_COUNT_UNDEFINED);
    CHECK(gad_rc_count(0.0, 1, 0) == RC_COUNT_EMPTY && gad_rc_count(0.0, 1, 1) == RC_COUNT_GAD);
    /* an empty GAD map beside a degenerate original: left out as empty, or (counted
     * for GAD) undefined, as the paper's rule has no RC for it */
    CHECK(gad_rc_count(NAN, 1, 0) == RC_COUNT_EMPTY && gad_rc_count(NAN, 1, 1) == RC_COUNT_UNDEFINED);
    /* hand-made maps through the documented functions: one cell of each kind */
    enum { H = 6, W = 6, N = H * W };
    float orig[N] = {0}, g[N] = {0}, line[N] = {0};
    for (int y = 1; y < 5; y++)
        for (int x = 1; x < 5; x++) orig[y * W + x] = 1.0f + (float)(y * W + x);  /* 16 px block */
    for (int x = 0; x < 6; x++) line[2 * W + x] = 1.0f;                        /* one row: no area */
    GadRcTally t[2] = {{0}, {0}};
    struct { const float *o, *g; } cells[4] = {{orig, orig}, {orig, g}, {line, line}, {orig, orig}};
    g[1 * W + 1] = orig[1 * W + 1];  /* cell 1: one pixel of the block, forced, RC = 0 */
    for (int k = 0; k < 4; k++) {
        GadHull ho, hg;
        float gm[N];
        memcpy(gm, cells[k].g, sizeof gm);
        if (k == 3) memset(gm, 0, sizeof gm);  /* cell 3: empty GAD map */
        gad_map_hull(cells[k].o, H, W, &IMG_HALF, &ho, NULL, NULL);
        gad_map_hull(gm, H, W, &IMG_HALF, &hg, NULL, NULL);
        int nnz = 0;
        for (int i = 0; i < N; i++) nnz += gm[i] > 0;
        gad_tally_rc(&t[0], gad_rc(&hg, &ho, RC_AREA_POLYGON), nnz == 0, gad_rc_forced(cells[k].o, gm, H, W, &IMG_HALF),
                     0);
    }
    /* cell 0: GAD = original (tie, forced, in Orig.); 1: GAD; 2: no RC; 3: empty */
    CHECKF(t[0].orig == 1 && t[0].tie == 1 && t[0].gad == 1 && t[0].forced == 2 && t[0].undefined == 1 &&
               t[0].empty == 1,
           "orig %d tie %d gad %d forced %d undefined %d empty %d", t[0].orig, t[0].tie, t[0].gad, t[0].forced,
           t[0].undefined, t[0].empty);
    CHECK(gad_rc_structural(t, 1));
    CHECK(!gad_rc_structural(&t[1], 1));  /* nothing counted: not structural */
    CHECK(gad_rc_structural(t, 2));
    gad_tally_rc(&t[1], 1.5, 0, 0, 0);   /* one cell the rules did not decide */
    CHECK(!gad_rc_structural(t, 2));
}

TEST(gad_sup_mask_is_orig_minus_gad) {
    unsigned char o[6] = {1, 1, 1, 0, 0, 1}, g[6] = {0, 1, 0, 1, 0, 1}, s[6];
    CHECK(gad_sup_mask(o, g, 6, s) == 2);
    CHECK(s[0] && !s[1] && s[2] && !s[3] && !s[4] && !s[5]);
}

/* Fake network: output k of x[C,H,W] = (k + 1) * sum of x + k. Records batch sizes. */
typedef struct { int npix_c, calls, max_seen, images; } Fake;
static int fake_eval(void *ctx, const float *x, int n, float *out) {
    Fake *f = ctx;
    f->calls++;
    f->images += n;
    if (n > f->max_seen) f->max_seen = n;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < f->npix_c; j++) s += x[(size_t)i * f->npix_c + j];
        for (int k = 0; k < 2; k++) out[i * 2 + k] = (float)((k + 1) * s + k);
    }
    return 0;
}

TEST(gad_rs_with_fake_evaluator) {
    enum { C = 3, H = 2, W = 3, P = H * W };
    float x[C * P];
    for (int i = 0; i < C * P; i++) x[i] = (float)(i % 5) + 0.5f;
    /* masks: single pixel 0, pixels {1,4}, empty, all */
    unsigned char m[4][P] = {{1, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 1, 0}, {0}, {1, 1, 1, 1, 1, 1}};
    GadRsJob jobs[7];
    for (int j = 0; j < 7; j++) {
        jobs[j].x = x;
        jobs[j].mask = m[j % 4];
        jobs[j].target = j % 2;
        jobs[j].y0 = NAN;
    }
    Fake f = {C * P, 0, 0, 0};
    GadEval ev = {fake_eval, &f, 2, 3};
    double rs[7];
    int empty = gad_rs(&ev, C, H, W, jobs, 7, NULL, rs);
    CHECK(empty == 2);
    CHECK(f.max_seen == 3);
    CHECK(f.images == 10);  /* 5 unoccluded + 5 occluded, the empty masks skipped */
    for (int j = 0; j < 7; j++) {
        const unsigned char *mk = m[j % 4];
        double removed = 0, area = 0;
        for (int i = 0; i < P; i++) {
            area += mk[i];
            if (mk[i]) for (int c = 0; c < C; c++) removed += x[c * P + i];
        }
        if (area == 0) {
            CHECK(isnan(rs[j]));
            continue;
        }
        double want = (j % 2 + 1) * removed / area;  /* the +k offset cancels */
        CHECKF(fabs(rs[j] - want) <= 1e-4 * want, "job %d: rs %g want %g", j, rs[j], want);
    }
    /* baseline occlusion: x*(1-M) + b*M, with y0 given (no unoccluded pass) */
    float b[C * P];
    for (int i = 0; i < C * P; i++) b[i] = -1.0f;
    double sx = 0;
    for (int i = 0; i < C * P; i++) sx += x[i];
    for (int j = 0; j < 7; j++) jobs[j].y0 = (float)((j % 2 + 1) * sx + j % 2);
    f.images = 0;
    CHECK(gad_rs(&ev, C, H, W, jobs, 7, b, rs) == 2);
    CHECK(f.images == 5);
    for (int j = 0; j < 7; j++) {
        const unsigned char *mk = m[j % 4];
        double delta = 0, area = 0;
        for (int i = 0; i < P; i++) {
            area += mk[i];
            if (mk[i]) for (int c = 0; c < C; c++) delta += x[c * P + i] - b[c * P + i];
        }
        if (area == 0) continue;
        double want = (j % 2 + 1) * delta / area;
        CHECKF(fabs(rs[j] - want) <= 1e-4 * want, "baseline job %d: rs %g want %g", j, rs[j], want);
    }
    GadRsMean mean = {0, 0, 0};
    for (int j = 0; j < 7; j++) gad_tally_rs(&mean, rs[j]);
    CHECK(mean.n == 5 && mean.empty == 2);
    double sum = 0;
    for (int j = 0; j < 7; j++) if (!isnan(rs[j])) sum += rs[j];
    CHECK_NEAR(gad_rs_mean(&mean), sum / 5, 1e-12);
    GadRsMean none = {0, 0, 0};
    CHECK(isnan(gad_rs_mean(&none)));
}

static int failing_eval(void *ctx, const float *x, int n, float *out) {
    (void)ctx; (void)x; (void)n; (void)out;
    return -1;
}

TEST(gad_rs_propagates_evaluator_error) {
    float x[3] = {1, 2, 3};
    unsigned char m[1] = {1};
    GadRsJob job = {x, m, 0, NAN};
    GadEval ev = {failing_eval, NULL, 1, 4};
    double rs;
    CHECK(gad_rs(&ev, 3, 1, 1, &job, 1, NULL, &rs) == -1);
}

/* The control masks: exactly k pixels, all inside the region, the k nearest to a
 * seed of the region (a compact disc), the same for the same seed. */
TEST(gad_control_masks) {
    enum { H = 10, W = 12, N = H * W };
    unsigned char region[N] = {0}, m[N], m2[N];
    int nreg = 0;
    for (int y = 2; y < 9; y++)
        for (int x = 1; x < 10; x++) {
            region[y * W + x] = (x + y) % 7 != 0;  /* a region with holes */
            nreg += region[y * W + x];
        }
    int bad = 0, seen[N] = {0};
    for (int t = 0; t < 400; t++) {
        Rng r;
        rng_seed(&r, (uint64_t)t);
        int k = t % 50 == 49 ? nreg : 1 + t % 40;
        REQUIRE(gad_control_mask(region, H, W, k, &r, m) == k);
        int cnt = 0;
        for (int i = 0; i < N; i++) {
            cnt += m[i];
            bad += m[i] && !region[i];
        }
        bad += cnt != k;
        /* compact: some pixel of the mask (the seed) has every mask pixel no farther
         * than every region pixel outside the mask */
        int compact = 0;
        for (int c = 0; c < N && !compact; c++) {
            if (!m[c]) continue;
            int in_max = 0, out_min = 1 << 30;
            for (int i = 0; i < N; i++) {
                if (!region[i]) continue;
                int dx = i % W - c % W, dy = i / W - c / W, d2 = dx * dx + dy * dy;
                if (m[i] && d2 > in_max) in_max = d2;
                if (!m[i] && d2 < out_min) out_min = d2;
            }
            compact = in_max <= out_min;
        }
        bad += !compact;
        /* the same seed, the same mask */
        rng_seed(&r, (uint64_t)t);
        gad_control_mask(region, H, W, k, &r, m2);
        bad += memcmp(m, m2, N) != 0;
    }
    CHECKF(bad == 0, "%d control masks wrong", bad);
    Rng r1;  /* the seed is drawn over the whole region */
    rng_seed(&r1, 3);
    for (int t = 0; t < 1000; t++) {
        gad_control_mask(region, H, W, 1, &r1, m);
        for (int i = 0; i < N; i++) seen[i] += m[i];
    }
    int never = 0;
    for (int i = 0; i < N; i++) never += region[i] && seen[i] == 0;
    CHECKF(never == 0, "%d of %d region pixels never drawn as a 1-pixel control", never, nreg);
    Rng r;
    rng_seed(&r, 1);
    CHECK(gad_control_mask(region, H, W, 0, &r, m) == 0);
    for (int i = 0; i < N; i++) CHECK(m[i] == 0);
}

/* The sign test against exact values (Python fractions), and the paired summary. */
TEST(gad_sign_test_and_paired) {
    CHECK_NEAR(gad_sign_test(0, 10), 0.001953125, 1e-15);
    CHECK_NEAR(gad_sign_test(10, 0), 0.001953125, 1e-15);
    CHECK_NEAR(gad_sign_test(2, 8), 0.109375, 1e-15);
    CHECK_NEAR(gad_sign_test(5, 5), 1.0, 0);
    CHECK_NEAR(gad_sign_test(1, 0), 1.0, 0);
    CHECK_NEAR(gad_sign_test(60, 40), 0.05688793364098079, 1e-12);
    CHECK_NEAR(gad_sign_test(300, 212) / 0.00011638908240451843, 1.0, 1e-9);
    CHECK(isnan(gad_sign_test(0, 0)));
    /* pairs: 3 > , 1 <, 1 tie, 1 left out (NaN), one with b = 0 */
    double a[7] = {2, 3, 1, 5, NAN, 4, 0}, b[7] = {1, 1, 2, 5, 1, 0, 0};
    GadPaired p;
    gad_paired(a, b, 7, &p);
    CHECK(p.n == 6 && p.wins == 3 && p.losses == 1);
    /* ratios: 2, 3, 0.5, 1, inf, 1 -> sorted 0.5 1 1 2 3 inf: median (1 + 2) / 2 */
    CHECK_NEAR(p.median_ratio, 1.5, 0);
    CHECK_NEAR(p.p, gad_sign_test(3, 1), 0);
    gad_paired(a, b, 0, &p);
    CHECK(p.n == 0 && isnan(p.median_ratio) && isnan(p.p));
}

/* A linear "network" (output 0 = sum of w * x over the pixels of channel 0, output
 * 1 = minus that) whose deletion and insertion curves are known in closed form. */
typedef struct { const float *w; int npix, calls; } Linear;
static int linear_eval(void *ctx, const float *x, int n, float *out) {
    Linear *l = ctx;
    l->calls++;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < l->npix; k++) s += l->w[k] * x[(size_t)i * 3 * l->npix + k];
        out[2 * i] = (float)s;
        out[2 * i + 1] = (float)-s;
    }
    return 0;
}

TEST(gad_curves_on_a_known_model) {
    enum { H = 2, W = 3, N = H * W, STEPS = 3 };
    float w[N] = {1, 2, 3, 4, 5, 6}, x[3 * N];
    for (int i = 0; i < 3 * N; i++) x[i] = 1.0f;
    Linear lin = {w, N, 0};
    const double want_bad_1 = 18;
    GadEval ev = {linear_eval, &lin, 2, 4};
    /* a map that ranks the pixels by weight (the true order), one that ranks them
     * backwards, and an all-zero map whose order is the tie-break's */
    float good[N] = {1, 2, 3, 4, 5, 6}, bad[N] = {6, 5, 4, 3, 2, 1}, zero[N] = {0};
    int tie[N] = {5, 4, 3, 2, 1, 0}, og[N], ob[N], oz[N];
    gad_curve_order(good, N, tie, og);
    gad_curve_order(bad, N, tie, ob);
    gad_curve_order(zero, N, tie, oz);
    CHECK(og[0] == 5 && og[5] == 0 && ob[0] == 0 && oz[0] == 5);  /* ties: pixel 5 has key 0 */
    GadCurveJob jobs[3] = {{x, og, 0}, {x, ob, 0}, {x, oz, 1}};
    double del[3 * (STEPS + 1)], ins[3 * (STEPS + 1)];
    REQUIRE(gad_curves(&ev, 3, H, W, jobs, 3, STEPS, 0, NULL, del) == 0);
    CHECK(lin.calls == 3);  /* 10 images (jobs 0 and 1 share their ends) in batches of 4 */
    /* the same image and target: the second job's ends are the first's */
    GadCurveJob twice[2] = {{x, og, 0}, {x, ob, 0}};
    lin.calls = 0;
    ev.max_batch = 1;
    REQUIRE(gad_curves(&ev, 3, H, W, twice, 2, STEPS, 0, NULL, del) == 0);
    CHECK(lin.calls == 6);
    CHECK_NEAR(del[4], 21, 1e-5);
    CHECK_NEAR(del[7], 0, 1e-5);
    CHECK_NEAR(del[5], want_bad_1, 1e-5);
    ev.max_batch = 4;
    REQUIRE(gad_curves(&ev, 3, H, W, jobs, 3, STEPS, 0, NULL, del) == 0);
    REQUIRE(gad_curves(&ev, 3, H, W, jobs, 3, STEPS, 1, NULL, ins) == 0);
    /* steps of 2 pixels: deleting 6+5, then 4+3, then 2+1 */
    double want_good[4] = {21, 10, 3, 0}, want_bad[4] = {21, 18, 11, 0};
    for (int s2 = 0; s2 <= STEPS; s2++) {
        CHECK_NEAR(del[s2], want_good[s2], 1e-5);
        CHECK_NEAR(del[4 + s2], want_bad[s2], 1e-5);
        CHECK_NEAR(del[8 + s2], -want_good[s2], 1e-5);  /* output 1, the tie order = the good one */
        CHECK_NEAR(ins[s2], 21 - want_good[s2], 1e-5);
        CHECK_NEAR(ins[4 + s2], 21 - want_bad[s2], 1e-5);
    }
    /* AUC by the trapezoid rule: the faithful order deletes faster */
    CHECK_NEAR(gad_auc(del, STEPS), ((21 + 10) / 2.0 + (10 + 3) / 2.0 + (3 + 0) / 2.0) / 3, 1e-9);
    CHECK(gad_auc(del, STEPS) < gad_auc(del + 4, STEPS));
    CHECK(gad_auc(ins, STEPS) > gad_auc(ins + 4, STEPS));
    /* a baseline replaces deleted pixels: with b = x nothing changes */
    REQUIRE(gad_curves(&ev, 3, H, W, jobs, 1, STEPS, 0, x, del) == 0);
    for (int s2 = 0; s2 <= STEPS; s2++) CHECK_NEAR(del[s2], 21, 1e-5);
    /* step counts round: 5 steps over 6 pixels change 0, 1, 2, 4, 5, 6 pixels */
    double d5[6];
    REQUIRE(gad_curves(&ev, 3, H, W, jobs, 1, 5, 0, NULL, d5) == 0);
    double want5[6] = {21, 15, 10, 3, 1, 0};
    for (int s2 = 0; s2 < 6; s2++) CHECK_NEAR(d5[s2], want5[s2], 1e-5);
}

/* ---- part 2: distancing, support models, the whole run ---- */

TEST(gad_distance_lowers_the_other_class) {
    float logits[9] = {1, 2, 3, /**/ 4, 5, 6, /**/ -1, 0, 1};
    int cls[3] = {0, 1, 0};
    float t[9];
    /* classes c1 -> output 2, c2 -> output 0 */
    gad_distance(logits, cls, 3, 3, 2, 0, 1.5f, t);
    float want[9] = {-0.5f, 2, 3, /**/ 4, 5, 4.5f, /**/ -2.5f, 0, 1};
    CHECK_CLOSE("targets", t, want, 9, 0, 0);
    gad_distance(logits, cls, 3, 3, 2, 0, 1.5f, logits);  /* in place */
    CHECK_CLOSE("in place", logits, want, 9, 0, 0);
}

static void random_inputs(float *x, size_t n, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform(&r);
}

/* alpha = 0 in eval mode: the targets are the model's own outputs, so training
 * leaves every weight bit for bit as it was; the saved model is then reused. */
TEST(gad_support_alpha0_is_the_original_and_is_cached) {
    Model m;
    REQUIRE(model_init(&m, ARCH_RESNET18, 2, 0.0625f, 0, 3) == 0);
    enum { N = 8, S = 32 };
    float *x = malloc(sizeof(float) * N * 3 * S * S), logits[N * 2], t[N * 2];
    random_inputs(x, (size_t)N * 3 * S * S, 5);
    int cls[N] = {0, 1, 0, 1, 0, 1, 0, 1};
    Plan *p = plan_new(&m, 4, S, S);
    REQUIRE(p);
    gad_logits(&m, p, x, N, logits);
    plan_free(p);
    gad_distance(logits, cls, N, 2, 0, 1, 0.0f, t);
    SupportOpts so = {0.0f, 2, 4, 4e-5f, 0, 0, 0};
    SupportId id;
    gad_support_id(&id, "m", 1, 2, 0, 1, &so);
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "%s/cache", test_tmpdir());
    CHECK(!strncmp(id.file, "m-0-1-a0-", 9) && !strncmp(id.file + 9, id.key, 8));
    Model s;
    float loss;
    REQUIRE(gad_support_find(&id, NULL, dir, &m, &s, &loss, path, sizeof path) == 0);
    CHECK(isnan(loss));
    CHECK(!strncmp(path, dir, strlen(dir)) && strstr(path, id.file));
    REQUIRE(gad_support_train(&id, &m, x, t, N, S, S, path, 0, NULL, &s, &loss) == 0);
    CHECK(loss == 0.0f);
    CHECK(s.n_params == m.n_params && !memcmp(s.params, m.params, sizeof(float) * m.n_params));
    CHECK(s.n_buffers == m.n_buffers && !memcmp(s.buffers, m.buffers, sizeof(float) * m.n_buffers));
    model_free(&s);
    /* the same key again: loaded, not trained (targets not even needed) */
    REQUIRE(gad_support_find(&id, NULL, dir, &m, &s, &loss, path, sizeof path) == 1);
    CHECK(loss == 0.0f);
    CHECK(!memcmp(s.params, m.params, sizeof(float) * m.n_params));
    model_free(&s);
    /* a read-only directory is searched first; an absent one is no error */
    char ro[600];
    snprintf(ro, sizeof ro, "%s/nothing-here", test_tmpdir());
    REQUIRE(gad_support_find(&id, ro, dir, &m, &s, &loss, path, sizeof path) == 1);
    CHECK(!strncmp(path, dir, strlen(dir)));
    model_free(&s);
    REQUIRE(gad_support_find(&id, dir, ro, &m, &s, &loss, path, sizeof path) == 1);
    CHECK(!strncmp(path, dir, strlen(dir)));
    model_free(&s);
    /* another alpha, another key: training needed */
    SupportOpts s2 = so;
    s2.alpha = 2;
    SupportId id2;
    gad_support_id(&id2, "m", 1, 2, 0, 1, &s2);
    CHECK(strcmp(id.key, id2.key) != 0);
    CHECK(gad_support_find(&id2, NULL, dir, &m, &s, &loss, path, sizeof path) == 0);
    /* alpha = 2 moves the weights */
    gad_distance(logits, cls, N, 2, 0, 1, 2.0f, t);
    REQUIRE(gad_support_train(&id2, &m, x, t, N, S, S, path, 0, NULL, &s, &loss) == 0);
    CHECK(loss > 0);
    CHECK(memcmp(s.params, m.params, sizeof(float) * m.n_params) != 0);
    model_free(&s);
    /* a file under the right name with another key is not taken */
    SupportId wrong = id2;
    wrong.key[0] = wrong.key[0] == '0' ? '1' : '0';
    CHECK(gad_support_find(&wrong, NULL, dir, &m, &s, &loss, path, sizeof path) == 0);
    free(x);
    model_free(&m);
}

/* A tiny image folder: class "a" bright top-left, class "b" bright bottom-right. */
static int make_folder(const char *root, int per_class) {
    Rng r;
    rng_seed(&r, 11);
    unsigned char px[32 * 32];
    char path[1024];
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/%c", root, 'a' + c);
        if (file_mkdirs(path) != 0) return -1;
        for (int i = 0; i < per_class; i++) {
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    int on = c == 0 ? (x < 16 && y < 16) : (x >= 12 && y >= 12);
                    px[y * 32 + x] = (unsigned char)(on ? 150 + rng_below(&r, 100) : rng_below(&r, 40));
                }
            Image img = {32, 32, 1, px};
            snprintf(path, sizeof path, "%s/%c/%02d.png", root, 'a' + c, i);
            if (png_write(path, &img) != 0) return -1;
        }
    }
    return 0;
}

static int read_json(const char *path, Json *j) {
    unsigned char *b;
    size_t n;
    if (file_read_all(path, 1 << 26, &b, &n) != 0) return -1;
    int rc = json_parse((const char *)b, n, j);
    free(b);
    return rc;
}

/* What ./gad runs with no arguments (the bundled weights and data), cut to the least
 * work. The support cache key hashes the weights file: a 32-bit build once read it
 * whole under a limit of 2^40 bytes, which a 32-bit size_t holds as 0, and every run
 * failed ("larger than the limit of 0 bytes"). */
TEST(gad_run_bundled_weights_and_data) {
    RunOpts o;
    run_opts_default(&o);
    o.weights[0] = "weights/vgg16.safetensors";
    o.nweights = 1;
    o.data = "data/fashion-pc-images-idx3-ubyte.gz";
    o.classes = "2,4";
    o.images = 2;
    o.train_images = 4;
    o.nalphas = 1;
    o.epochs = 1;
    o.batch = 4;
    o.methods[0] = ATTR_SALIENCY;
    o.nmethods = 1;
    o.out_dir = test_path("out");
    o.fig_images = 1;
    o.fig_least = 1;
    o.verbose = 0;
    int rc = gad_run(&o);
    CHECKF(rc == 0, "gad_run: %s", err_get());
    /* the key covers the weights' bytes: gad_hash_file agrees with gad_hash of them */
    size_t n;
    unsigned char *b = test_slurp(o.weights[0], &n);
    REQUIRE(b);
    uint64_t h = GAD_FNV_INIT;
    CHECKF(gad_hash_file(o.weights[0], &h) == 0, "%s", err_get());
    CHECK(h == gad_hash(GAD_FNV_INIT, b, n));
    free(b);
    h = GAD_FNV_INIT;
    CHECK(gad_hash_file(test_path("none"), &h) == -1 && strstr(err_get(), "none") && h == GAD_FNV_INIT);
}

TEST(gad_run_end_to_end_tiny) {
    char root[512], wpath[512], out[512], f[1024];
    snprintf(root, sizeof root, "%s/data", test_tmpdir());
    snprintf(wpath, sizeof wpath, "%s/tiny.safetensors", test_tmpdir());
    snprintf(out, sizeof out, "%s/out", test_tmpdir());
    REQUIRE(make_folder(root, 8) == 0);
    Model m;
    REQUIRE(model_init(&m, ARCH_VGG16, 2, 0.0625f, 16, 1) == 0);
    REQUIRE(model_save(&m, wpath) == 0);
    model_free(&m);
    RunOpts o;
    run_opts_default(&o);
    o.weights[0] = wpath;
    o.nweights = 1;
    o.data = root;
    o.images = 6;            /* 3 per class from the 4 held-out */
    o.val_frac = 0.5f;
    o.nalphas = 2;           /* 2, 4 */
    o.epochs = 1;
    o.batch = 4;
    o.methods[0] = ATTR_SALIENCY;
    o.methods[1] = ATTR_GXI;
    o.methods[2] = ATTR_IG;
    o.nmethods = 3;
    o.ig_steps = 4;
    o.out_dir = out;
    o.fig_images = 1;
    o.fig_least = 2;
    o.verbose = 0;
    int rc = gad_run(&o);
    CHECKF(rc == 0, "gad_run: %s", err_get());
    REQUIRE(rc == 0);
    const char *files[] = {"table1.csv", "table2.csv", "results.json", "index.html", "fig/tiny/fig5.png",
                           "fig/tiny/fig6.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(f, sizeof f, "%s/%s", out, files[i]);
        CHECKF(file_exists(f), "%s missing", f);
    }
    Json j;
    snprintf(f, sizeof f, "%s/results.json", out);
    REQUIRE(read_json(f, &j) == 0);
    const Json *models = json_get(&j, "models");
    REQUIRE(models && models->n == 1);
    const Json *mm = &models->kid[0];
    const Json *imgs = json_get(mm, "images"), *t1 = json_get(mm, "table1"), *sup = json_get(mm, "supports");
    REQUIRE(imgs && t1 && sup);
    CHECK(imgs->n == 6);
    CHECK(sup->n == 2 && json_get(&sup->kid[0], "trained")->boolean == 1);
    /* every image is counted once per method and class in Table 1 */
    REQUIRE(t1->n == 6);
    for (int k = 0; k < t1->n; k++) {
        int tot = (int)(json_get(&t1->kid[k], "orig")->num + json_get(&t1->kid[k], "gad")->num +
                        json_get(&t1->kid[k], "no_rc")->num + json_get(&t1->kid[k], "empty_left_out")->num);
        CHECKF(tot == 6, "table1 row %d counts %d images", k, tot);
    }
    /* per image: the GAD hull lies within what the maps allow, RS finite or null */
    for (int i = 0; i < imgs->n; i++) {
        const Json *cells = json_get(&imgs->kid[i], "cells");
        REQUIRE(cells && cells->n == 6);
        for (int c = 0; c < cells->n; c++) {
            const Json *g = json_get(&cells->kid[c], "gad"), *og = json_get(&cells->kid[c], "orig");
            CHECK(json_get(og, "points")->num >= 1);
            CHECK(json_get(g, "points")->num <= json_get(&cells->kid[c], "gad_nonzero")->num);
        }
    }
    /* Table 2's control and paired statistics, the curves (deletion by default) */
    const Json *t2 = json_get(mm, "table2"), *cv = json_get(mm, "curves");
    REQUIRE(t2 && t2->n == 6 && cv);
    for (int k = 0; k < t2->n; k++) {
        const Json *vc = json_get(&t2->kid[k], "gad_vs_control");
        REQUIRE(vc);
        CHECK(json_get(vc, "pairs")->num == json_get(&t2->kid[k], "n_gad")->num);
    }
    REQUIRE(json_get(cv, "methods") && json_get(cv, "methods")->n == 3);
    const Json *del = json_get(&json_get(cv, "methods")->kid[0], "deletion");
    REQUIRE(del && json_get(del, "mean_topn")->n == o.curve_steps + 1);
    CHECK(json_get(&json_get(cv, "methods")->kid[0], "insertion") == NULL);
    CHECK(json_get(json_get(del, "gad_vs_topn"), "images")->num == 6);
    for (int i = 0; i < imgs->n; i++) {
        const Json *auc = json_get(&imgs->kid[i], "auc_deletion");
        REQUIRE(auc && auc->n == 10);
    }
    snprintf(f, sizeof f, "%s/curves.csv", out);
    CHECK(file_exists(f));
    snprintf(f, sizeof f, "%s/results.json", out);
    json_free(&j);
    /* a second run reuses both support models */
    REQUIRE(gad_run(&o) == 0);
    REQUIRE(read_json(f, &j) == 0);
    sup = json_get(&json_get(&j, "models")->kid[0], "supports");
    CHECK(json_get(&sup->kid[0], "trained")->boolean == 0 && json_get(&sup->kid[1], "trained")->boolean == 0);
    json_free(&j);
    /* support models moved beside the weights are found there, read-only */
    char moved[600], out2[512];
    snprintf(f, sizeof f, "%s/support", out);
    snprintf(moved, sizeof moved, "%s/support", test_tmpdir());
    REQUIRE(rename(f, moved) == 0);
    snprintf(out2, sizeof out2, "%s/out2", test_tmpdir());
    o.out_dir = out2;
    REQUIRE(gad_run(&o) == 0);
    snprintf(f, sizeof f, "%s/results.json", out2);
    REQUIRE(read_json(f, &j) == 0);
    sup = json_get(&json_get(&j, "models")->kid[0], "supports");
    CHECK(json_get(&sup->kid[0], "trained")->boolean == 0 && json_get(&sup->kid[1], "trained")->boolean == 0);
    json_free(&j);
    snprintf(f, sizeof f, "%s/support", out2);
    CHECK(!file_exists(f));
    /* a file of a class folder that is not an image: skipped with a warning, an
     * error naming it with --strict (o.strict), and no report written */
    snprintf(f, sizeof f, "%s/a/notes.txt", root);
    FILE *nf = fopen(f, "w");
    REQUIRE(nf && fputs("not an image\n", nf) >= 0 && fclose(nf) == 0);
    CHECK(gad_run(&o) == 0);
    char out3[512];
    snprintf(out3, sizeof out3, "%s/out3", test_tmpdir());
    o.out_dir = out3;
    o.strict = 1;
    CHECK(gad_run(&o) == -1);
    CHECKF(strstr(err_get(), "notes.txt") != NULL, "%s", err_get());
    snprintf(f, sizeof f, "%s/results.json", out3);
    CHECK(!file_exists(f));
    o.strict = 0;
    /* a bad class is an error, not a crash */
    o.classes = "a,zzz";
    CHECK(gad_run(&o) == -1);
}

/* No second implementation: for every image, method and class of a small run, the
 * attributions (as `gad explain` computes them) of the original and the cached
 * support models, put through the documented functions (gad_importance,
 * gad_intersect, gad_map_hull, gad_rc, gad_rc_forced, gad_rs), give the numbers
 * results.json holds. */
TEST(gad_run_matches_documented_functions) {
    char root[512], wpath[512], out[512], f[1024];
    snprintf(root, sizeof root, "%s/data", test_tmpdir());
    snprintf(wpath, sizeof wpath, "%s/tiny.safetensors", test_tmpdir());
    snprintf(out, sizeof out, "%s/out", test_tmpdir());
    REQUIRE(make_folder(root, 8) == 0);
    Model m;
    REQUIRE(model_init(&m, ARCH_RESNET18, 2, 0.0625f, 0, 4) == 0);
    REQUIRE(model_save(&m, wpath) == 0);
    RunOpts o;
    run_opts_default(&o);
    o.weights[0] = wpath;
    o.nweights = 1;
    o.data = root;
    o.images = 8;
    o.val_frac = 0.5f;
    o.nalphas = 2;
    o.epochs = 1;
    o.batch = 4;
    o.methods[0] = ATTR_SALIENCY;
    o.methods[1] = ATTR_GUIDED;
    o.nmethods = 2;
    o.out_dir = out;
    o.fig_images = 0;
    o.fig_least = 0;
    o.curves = 0;
    o.verbose = 0;
    REQUIRE(gad_run(&o) == 0);
    Json j;
    snprintf(f, sizeof f, "%s/results.json", out);
    REQUIRE(read_json(f, &j) == 0);
    const Json *mm = &json_get(&j, "models")->kid[0], *imgs = json_get(mm, "images"), *sup = json_get(mm, "supports");
    REQUIRE(imgs && imgs->n == 8 && sup && sup->n == 2);
    Dataset d;
    REQUIRE(dataset_load(&d, root, NULL, 32, 32, NULL, NULL, 0.5f) == 0);
    enum { S = 32, NP = S * S, NI = 8 };
    float *x = malloc(sizeof(float) * NI * 3 * NP), *attr = malloc(sizeof(float) * NI * 3 * NP);
    float *imp = malloc(sizeof(float) * 3 * NI * NP);  /* [model][image][NP] */
    for (int i = 0; i < NI; i++)
        memcpy(x + (size_t)i * 3 * NP, d.x + (size_t)json_get(&imgs->kid[i], "index")->num * 3 * NP,
               sizeof(float) * 3 * NP);
    Model models[3];
    models[0] = m;
    for (int k = 0; k < 2; k++) REQUIRE(model_load(&models[k + 1], json_get(&sup->kid[k], "path")->str) == 0);
    HullRule hr = {o.hull_of, o.hull_keep, o.present};
    int bad = 0, checked = 0;
    for (int mi = 0; mi < 2; mi++)
        for (int a = 0; a < 2; a++) {
            AttrOpts ao;
            attr_opts_default(&ao);
            ao.method = o.methods[mi];
            ao.steps = o.ig_steps;
            int targets[NI];
            for (int i = 0; i < NI; i++) targets[i] = a;
            for (int k = 0; k < 3; k++) {
                Plan *p = plan_new(&models[k], 32, S, S);
                REQUIRE(p && attr_compute(&models[k], p, x, NI, targets, &ao, attr, NULL) == 0);
                for (int i = 0; i < NI; i++)
                    gad_importance(attr + (size_t)i * 3 * NP, 3, S, S, imp + ((size_t)k * NI + i) * NP);
                plan_free(p);
            }
            Plan *p = plan_new(&m, 32, S, S);
            GadEval ev;
            GadModelCtx mc;
            gad_eval_model(&ev, &mc, &m, p, 32);
            for (int i = 0; i < NI; i++) {
                const float *maps[3] = {imp + (size_t)i * NP, imp + ((size_t)NI + i) * NP, imp + ((size_t)2 * NI + i) * NP};
                float g[NP];
                int nnz = gad_intersect(maps, 3, NP, o.present, g);
                GadHull ho, hg;
                unsigned char mo[NP], mg[NP], ms[NP];
                gad_map_hull(maps[0], S, S, &hr, &ho, NULL, mo);
                gad_map_hull(g, S, S, &hr, &hg, NULL, mg);
                gad_sup_mask(mo, mg, NP, ms);
                GadRsJob jobs[2] = {{x + (size_t)i * 3 * NP, mg, a, NAN}, {x + (size_t)i * 3 * NP, ms, a, NAN}};
                double rs[2];
                REQUIRE(gad_rs(&ev, 3, S, S, jobs, 2, NULL, rs) >= 0);
                const Json *cell = &json_get(&imgs->kid[i], "cells")->kid[mi * 2 + a];
                const Json *jo = json_get(cell, "orig"), *jg = json_get(cell, "gad");
                double rc = gad_rc(&hg, &ho, o.rc_area), jrc = json_get(cell, "rc")->type == JSON_NULL
                                                                   ? NAN : json_get(cell, "rc")->num;
                int same = json_get(jo, "points")->num == ho.npoints && json_get(jo, "pixels")->num == ho.pixels &&
                           json_get(jo, "area")->num == ho.area && json_get(jg, "points")->num == hg.npoints &&
                           json_get(jg, "pixels")->num == hg.pixels && json_get(jg, "area")->num == hg.area &&
                           json_get(cell, "gad_nonzero")->num == nnz && (rc == jrc || (isnan(rc) && isnan(jrc))) &&
                           json_get(cell, "forced")->boolean == gad_rc_forced(maps[0], g, S, S, &hr);
                for (int k = 0; k < 2; k++) {
                    const Json *v = json_get(cell, k ? "rs_sup" : "rs_gad");
                    double jv = v->type == JSON_NULL ? NAN : v->num;
                    same &= isnan(rs[k]) ? isnan(jv) : fabs(jv - rs[k]) <= 1e-6 * fabs(rs[k]);
                }
                bad += !same;
                checked++;
            }
            plan_free(p);
        }
    CHECKF(bad == 0, "%d of %d cells differ from the documented functions", bad, checked);
    for (int k = 1; k < 3; k++) model_free(&models[k]);
    model_free(&m);
    dataset_free(&d);
    free(imp);
    free(attr);
    free(x);
    json_free(&j);
}

/* ---- shards (issue 20) ---- */

TEST(gad_shard_spec_and_scheduler_env) {
    int k, n;
    CHECK(gad_shard_parse("2/5", 0, &k, &n) == 0 && k == 2 && n == 5);
    CHECK(gad_shard_parse("1/1", 1, &k, &n) == 0 && k == 1 && n == 1);
    const char *bad[] = {"0/5", "6/5", "x", "3", "2/", "/2", "2/5x", "-1/3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECKF(gad_shard_parse(bad[i], 0, &k, &n) == -1, "%s", bad[i]);
    CHECK(gad_shard_parse("2/5", 4, &k, &n) == -1);  /* --shards disagrees */
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("JOB_COMPLETION_INDEX");
    unsetenv("PARALLEL_SEQ");
    CHECK(gad_shard_parse("auto", 3, &k, &n) == -1);  /* no scheduler */
    /* Slurm: the task ids are the shard numbers; --array=1-4: task 3 is shard 3 of 4 */
    setenv("SLURM_ARRAY_TASK_ID", "3", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "1", 1);
    setenv("SLURM_ARRAY_TASK_MAX", "4", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
    CHECK(gad_shard_parse("auto", 0, &k, &n) == 0 && k == 3 && n == 4);
    CHECK(gad_shard_parse("auto", 4, &k, &n) == 0 && k == 3 && n == 4);
    CHECK(gad_shard_parse("auto", 5, &k, &n) == 0 && k == 3 && n == 5);
    /* a rerun of shard 3 alone (--array=3): N only from --shards */
    setenv("SLURM_ARRAY_TASK_MIN", "3", 1);
    setenv("SLURM_ARRAY_TASK_MAX", "3", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "1", 1);
    CHECK(gad_shard_parse("auto", 0, &k, &n) == -1);
    CHECK(gad_shard_parse("auto", 4, &k, &n) == 0 && k == 3 && n == 4);
    CHECK(gad_shard_parse("auto", 2, &k, &n) == -1);  /* task 3 of 2 shards */
    /* --array=1-7:2 (ids 1,3,5,7; 4 tasks): not 1-N without --shards */
    setenv("SLURM_ARRAY_TASK_MIN", "1", 1);
    setenv("SLURM_ARRAY_TASK_MAX", "7", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
    CHECK(gad_shard_parse("auto", 0, &k, &n) == -1);
    setenv("SLURM_ARRAY_TASK_ID", "0", 1);  /* --array=0-N: 0 is no shard */
    CHECK(gad_shard_parse("auto", 4, &k, &n) == -1);
    unsetenv("SLURM_ARRAY_TASK_ID");
    /* Kubernetes: 0-based index, the count from --shards */
    setenv("JOB_COMPLETION_INDEX", "0", 1);
    CHECK(gad_shard_parse("auto", 3, &k, &n) == 0 && k == 1 && n == 3);
    CHECK(gad_shard_parse("auto", 0, &k, &n) == -1);
    setenv("JOB_COMPLETION_INDEX", "3", 1);
    CHECK(gad_shard_parse("auto", 3, &k, &n) == -1);
    unsetenv("JOB_COMPLETION_INDEX");
    /* GNU parallel: 1-based */
    setenv("PARALLEL_SEQ", "3", 1);
    CHECK(gad_shard_parse("auto", 3, &k, &n) == 0 && k == 3 && n == 3);
    setenv("PARALLEL_SEQ", "x", 1);
    CHECK(gad_shard_parse("auto", 3, &k, &n) == -1);
}

/* A small two-model run whose supports are trained first by gad_supports (two
 * shares of the (model, alpha) pairs), into a shared cache. */
static int shard_setup(RunOpts *o, char *root, char *w1, char *w2, char *cache) {
    snprintf(root, 512, "%s/data", test_tmpdir());
    snprintf(w1, 512, "%s/tiny-vgg.safetensors", test_tmpdir());
    snprintf(w2, 512, "%s/tiny-res.safetensors", test_tmpdir());
    snprintf(cache, 512, "%s/cache", test_tmpdir());
    if (make_folder(root, 11) != 0) return -1;
    Model m;
    if (model_init(&m, ARCH_VGG16, 2, 0.0625f, 16, 1) != 0 || model_save(&m, w1) != 0) return -1;
    model_free(&m);
    if (model_init(&m, ARCH_RESNET18, 2, 0.0625f, 0, 2) != 0 || model_save(&m, w2) != 0) return -1;
    model_free(&m);
    run_opts_default(o);
    o->weights[0] = w1;
    o->weights[1] = w2;
    o->nweights = 2;
    o->data = root;
    o->images = 10;          /* 5 per class of the 6 held out */
    o->val_frac = 0.5f;
    o->nalphas = 2;
    o->epochs = 1;
    o->batch = 4;
    o->methods[0] = ATTR_SALIENCY;
    o->methods[1] = ATTR_GUIDED;
    o->methods[2] = ATTR_IG;
    o->nmethods = 3;
    o->ig_steps = 4;
    o->control_draws = 2;
    o->curves = 2;
    o->curve_steps = 4;
    o->fig_images = 1;
    o->fig_least = 2;
    o->support_dir = cache;
    o->verbose = 0;
    for (int k = 1; k <= 2; k++) {
        RunOpts s = *o;
        s.shard_k = k;
        s.shard_n = 2;
        if (gad_supports(&s) != 0) return -1;
    }
    return 0;
}

/* Drop the values of "seconds" (timings) from a JSON text of n bytes; the new length. */
static size_t strip_seconds(unsigned char *t, size_t n) {
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        if (i + 10 <= n && !memcmp(t + i, "\"seconds\":", 10)) {
            memmove(t + j, t + i, 10);
            j += 10;
            for (i += 10; i < n && t[i] != ',' && t[i] != '}'; i++) {}
        } else {
            t[j++] = t[i++];
        }
    }
    return j;
}

/* Is file rel the same under a and b (a JSON file without its timings)? */
static int same_file(const char *a, const char *b, const char *rel) {
    char pa[1024], pb[1024];
    snprintf(pa, sizeof pa, "%s/%s", a, rel);
    snprintf(pb, sizeof pb, "%s/%s", b, rel);
    size_t na = 0, nb = 0;
    unsigned char *x = test_slurp(pa, &na), *y = test_slurp(pb, &nb);
    if (x && y && strstr(rel, ".json")) {
        na = strip_seconds(x, na);
        nb = strip_seconds(y, nb);
    }
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

TEST(gad_shards_merge_bit_for_bit) {
    char root[512], w1[512], w2[512], cache[512], one[600], split[600];
    RunOpts o;
    REQUIRE(shard_setup(&o, root, w1, w2, cache) == 0);
    snprintf(one, sizeof one, "%s/one", test_tmpdir());
    o.out_dir = one;
    o.explain_n = 1;  /* the shards pass the report's chosen images to the merge */
    o.explain_images[0] = 3;
    REQUIRE(gad_run(&o) == 0);
    const char *files[] = {"table1.csv", "table2.csv", "curves.csv", "results.json", "fig/tiny-vgg/fig5.png",
                           "fig/tiny-vgg/fig6.png", "fig/tiny-res/fig5.png", "fig/tiny-res/fig6.png",
                           "fig/tiny-vgg/fig1.png", "fig/tiny-res/steps-3-guided.png", "fig/tiny-res/hulls-3-ig.png"};
    for (int n = 1; n <= 3; n++) {
        snprintf(split, sizeof split, "%s/split%d", test_tmpdir(), n);
        for (int k = n; k >= 1; k--) {  /* in any order */
            RunOpts s = o;
            s.out_dir = split;
            s.shard_k = k;
            s.shard_n = n;
            REQUIRE(gad_run(&s) == 0);
        }
        REQUIRE(gad_merge(split, 0) == 0);
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
            CHECKF(same_file(one, split, files[i]), "N = %d: %s differs from the run in one process", n, files[i]);
        /* the page says the times are the shards' added up */
        char page[700], says[64];
        snprintf(page, sizeof page, "%s/index.html", split);
        snprintf(says, sizeof says, "merged from %d shards", n);
        size_t len = 0;
        unsigned char *html = test_slurp(page, &len);
        REQUIRE(html);
        html = realloc(html, len + 1);
        REQUIRE(html);
        html[len] = 0;
        CHECKF(strstr((char *)html, says) && strstr((char *)html, "(shards)"), "N = %d: the page does not say it was merged",
               n);
        free(html);
    }
    /* the merge's Table 1 counts every image once */
    Json j;
    char f[700];
    snprintf(f, sizeof f, "%s/results.json", split);
    REQUIRE(read_json(f, &j) == 0);
    const Json *m = &json_get(&j, "models")->kid[1];
    CHECK(json_get(m, "images")->n == 10);
    json_free(&j);
}

TEST(gad_shards_faults) {
    char root[512], w1[512], w2[512], cache[512], out[600], p[800];
    RunOpts o;
    REQUIRE(shard_setup(&o, root, w1, w2, cache) == 0);
    snprintf(out, sizeof out, "%s/out", test_tmpdir());
    o.out_dir = out;
    o.nweights = 1;
    CHECK(gad_merge(out, 0) == -1);  /* nothing yet */
    CHECK(strstr(err_get(), "no shards"));
    RunOpts s = o;
    s.shard_n = 3;
    s.shard_k = 1;
    REQUIRE(gad_run(&s) == 0);
    s.shard_k = 3;
    REQUIRE(gad_run(&s) == 0);
    /* shard 2 killed half-way: its directory, a partial file, no shard.json */
    snprintf(p, sizeof p, "%s/shards/2-of-3", out);
    REQUIRE(file_mkdirs(p) == 0);
    snprintf(p, sizeof p, "%s/shards/2-of-3/shard.json.tmp.4242", out);
    test_spit(p, "{\"gad_shard\":1,", 15);
    CHECK(gad_merge(out, 0) == -1);
    CHECKF(strstr(err_get(), "1 of 3 shards are missing") && strstr(err_get(), ": 2;"), "%s", err_get());
    snprintf(p, sizeof p, "%s/results.json", out);
    CHECK(!file_exists(p));
    /* shard 2 run again: the run completes */
    s.shard_k = 2;
    REQUIRE(gad_run(&s) == 0);
    CHECKF(gad_merge(out, 0) == 0, "%s", err_get());
    CHECK(file_exists(p));
    /* shard 2 again with other settings: refused, and named */
    s.control_draws = 3;
    REQUIRE(gad_run(&s) == 0);
    CHECK(gad_merge(out, 0) == -1);
    CHECKF(strstr(err_get(), "control_draws") && strstr(err_get(), "2-of-3"), "%s", err_get());
    s.control_draws = o.control_draws;
    REQUIRE(gad_run(&s) == 0);
    CHECK(gad_merge(out, 0) == 0);
    /* another split in the same OUT: refused */
    RunOpts t = o;
    t.shard_k = 1;
    t.shard_n = 2;
    REQUIRE(gad_run(&t) == 0);
    CHECK(gad_merge(out, 0) == -1);
    CHECKF(strstr(err_get(), "two splits"), "%s", err_get());
    /* another model's weights under the same name: refused */
    char out2[600];
    snprintf(out2, sizeof out2, "%s/out2", test_tmpdir());
    s = o;
    s.out_dir = out2;
    s.shard_n = 2;
    s.shard_k = 1;
    REQUIRE(gad_run(&s) == 0);
    Model m;
    REQUIRE(model_init(&m, ARCH_VGG16, 2, 0.0625f, 16, 9) == 0 && model_save(&m, w1) == 0);
    model_free(&m);
    s.shard_k = 2;
    s.support_dir = NULL;  /* a cache of its own: the new weights need new supports */
    REQUIRE(gad_run(&s) == 0);
    CHECK(gad_merge(out2, 0) == -1);
    CHECKF(strstr(err_get(), "weights_fnv"), "%s", err_get());
}

/* The whole-run estimate's cost model: units counted by hand for a small run. */
TEST(gad_run_cost_arithmetic) {
    RunOpts o;
    run_opts_default(&o);
    o.nmethods = 2;
    o.methods[0] = ATTR_SALIENCY;
    o.methods[1] = ATTR_IG;
    o.ig_steps = 10;
    o.nalphas = 2;
    o.epochs = 3;
    o.control_draws = 4;
    o.curves = 2;
    o.curve_steps = 5;
    GadRunCost c;
    double t = gad_run_cost(&o, 8, 20, 2, &c);
    CHECK_NEAR(c.train, 2 * 3 * 20 * 3, 0);              /* 2 supports x 3 epochs x 20 images x fwd+bwd */
    CHECK_NEAR(c.maps, 3 * 8 * 2 * (1 + 10) * 3, 0);     /* original + 2 supports, 2 classes, 1 + 10 passes */
    CHECK_NEAR(c.metrics, 8 * 2 * 2 * (2 + 4), 0);       /* masks per cell: GAD, orig - GAD, 4 controls */
    CHECK_NEAR(c.curves, 8 * GAD_NCURVES(2) * 2 * 6, 0); /* deletion and insertion, 6 points */
    CHECK_NEAR(t, c.train + c.maps + c.metrics + c.curves, 0);
    gad_run_cost(&o, 8, 20, 0, &c); /* every support cached: no training */
    CHECK_NEAR(c.train, 0, 0);
    o.curves = 0;
    gad_run_cost(&o, 8, 20, 0, &c);
    CHECK_NEAR(c.curves, 0, 0);
}
