/* hull: the convex hull of a map's most important pixels (§5, §6): point selection,
 * Andrew's monotone chain, the shoelace area and the inside-or-on mask. Everything
 * on integer pixel coordinates with exact 64-bit cross products, so degenerate
 * cases (duplicates, collinear points, one point) are decided exactly.
 * Not for: drawing hulls (the report does), RC/RS (metrics.c). */
#include "gad/gad.h"
#include "core/err.h"
#include <stdlib.h>

/* (b - a) x (c - a): > 0 when a, b, c turn counter-clockwise (x right, y up). */
static int64_t cross(GadPoint a, GadPoint b, GadPoint c) {
    return (int64_t)(b.x - a.x) * (c.y - a.y) - (int64_t)(b.y - a.y) * (c.x - a.x);
}

int gad_hull_points(const float *imp, int H, int W, const HullRule *r, GadPoint *pts) {
    int npix = H * W;
    int *order = xmalloc(sizeof(int) * (size_t)(npix > 0 ? npix : 1));
    int nnz = gad_rank(imp, npix, order), k;
    if (r->of == HULL_OF_PRESENT) {
        /* the present pixels are a prefix of the ranking under either rule (for a
         * finite map): take as many */
        unsigned char *pr = xmalloc((size_t)(npix > 0 ? npix : 1));
        k = gad_present(imp, npix, r->present, pr);
        free(pr);
    } else if (r->of == HULL_OF_NONZERO) {
        k = gad_frac_count(r->keep, nnz);
    } else {
        GAD_ASSERT(r->of == HULL_OF_IMAGE);
        k = gad_frac_count(r->keep, npix);
        if (k > nnz) k = nnz;
    }
    for (int i = 0; i < k; i++) {
        pts[i].x = order[i] % W;
        pts[i].y = order[i] / W;
    }
    free(order);
    return k;
}

int gad_rc_forced(const float *orig, const float *gad, int H, int W, const HullRule *r) {
    size_t npix = (size_t)H * W;
    GadPoint *po = xmalloc(sizeof(GadPoint) * (npix + 1)), *pg = xmalloc(sizeof(GadPoint) * (npix + 1));
    unsigned char *in = xcalloc(npix > 0 ? npix : 1, 1);
    int no = gad_hull_points(orig, H, W, r, po), ng = gad_hull_points(gad, H, W, r, pg), forced = 1;
    for (int i = 0; i < no; i++) in[(size_t)po[i].y * W + po[i].x] = 1;
    for (int i = 0; i < ng && forced; i++) forced = in[(size_t)pg[i].y * W + pg[i].x];
    free(in);
    free(pg);
    free(po);
    return forced;
}

static int point_cmp(const void *a, const void *b) {
    const GadPoint *p = a, *q = b;
    if (p->x != q->x) return (p->x > q->x) - (p->x < q->x);
    return (p->y > q->y) - (p->y < q->y);
}

int gad_convex_hull(GadPoint *pts, int n, GadPoint *hull) {
    if (n <= 0) return 0;
    qsort(pts, (size_t)n, sizeof *pts, point_cmp);
    int m = 1;  /* drop duplicates (adjacent after sorting) */
    for (int i = 1; i < n; i++)
        if (pts[i].x != pts[m - 1].x || pts[i].y != pts[m - 1].y) pts[m++] = pts[i];
    if (m == 1) {
        hull[0] = pts[0];
        return 1;
    }
    /* Lower chain left to right, then upper chain right to left; a point that does
     * not make a strict left turn is popped, so collinear points never stay. */
    int k = 0;
    for (int i = 0; i < m; i++) {
        while (k >= 2 && cross(hull[k - 2], hull[k - 1], pts[i]) <= 0) k--;
        hull[k++] = pts[i];
    }
    for (int i = m - 2, lower = k + 1; i >= 0; i--) {
        while (k >= lower && cross(hull[k - 2], hull[k - 1], pts[i]) <= 0) k--;
        hull[k++] = pts[i];
    }
    return k - 1;  /* the last point is the first again */
}

int64_t gad_area2(const GadPoint *hull, int nh) {
    int64_t s = 0;
    for (int i = 0; i < nh; i++) {
        GadPoint a = hull[i], b = hull[(i + 1) % nh];
        s += (int64_t)a.x * b.y - (int64_t)b.x * a.y;
    }
    return s;
}

/* Is p inside or on the hull (CCW, no collinear vertices)? */
static int inside(const GadPoint *hull, int nh, GadPoint p) {
    if (nh == 1) return p.x == hull[0].x && p.y == hull[0].y;
    if (nh == 2) {  /* on the segment: collinear and within its bounding box */
        GadPoint a = hull[0], b = hull[1];
        if (cross(a, b, p) != 0) return 0;
        int x0 = a.x < b.x ? a.x : b.x, x1 = a.x < b.x ? b.x : a.x;
        int y0 = a.y < b.y ? a.y : b.y, y1 = a.y < b.y ? b.y : a.y;
        return p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1;
    }
    for (int i = 0; i < nh; i++)
        if (cross(hull[i], hull[(i + 1) % nh], p) < 0) return 0;
    return 1;
}

int gad_hull_mask(const GadPoint *hull, int nh, int H, int W, unsigned char *mask) {
    int count = 0;
    for (int i = 0; i < H * W; i++) mask[i] = 0;
    if (nh <= 0) return 0;
    int x0 = hull[0].x, x1 = hull[0].x, y0 = hull[0].y, y1 = hull[0].y;
    for (int i = 1; i < nh; i++) {
        if (hull[i].x < x0) x0 = hull[i].x;
        if (hull[i].x > x1) x1 = hull[i].x;
        if (hull[i].y < y0) y0 = hull[i].y;
        if (hull[i].y > y1) y1 = hull[i].y;
    }
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > W - 1) x1 = W - 1;
    if (y1 > H - 1) y1 = H - 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            GadPoint p = {x, y};
            if (inside(hull, nh, p)) {
                mask[y * W + x] = 1;
                count++;
            }
        }
    return count;
}

void gad_map_hull(const float *imp, int H, int W, const HullRule *r, GadHull *h, GadPoint *verts,
                  unsigned char *mask) {
    size_t npix = (size_t)H * W;
    GadPoint *pts = xmalloc(sizeof(GadPoint) * (npix + 1));
    GadPoint *hull = verts ? verts : xmalloc(sizeof(GadPoint) * (npix + 1));
    h->npoints = gad_hull_points(imp, H, W, r, pts);
    h->nvert = gad_convex_hull(pts, h->npoints, hull);
    h->area = (double)gad_area2(hull, h->nvert) / 2.0;
    unsigned char *m = mask ? mask : xmalloc(npix > 0 ? npix : 1);
    h->pixels = gad_hull_mask(hull, h->nvert, H, W, m);
    if (!mask) free(m);
    if (!verts) free(hull);
    free(pts);
}
