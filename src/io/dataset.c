/* dataset: a data SPEC (folder of class folders, or IDX images + labels) decoded
 * and preprocessed into one float block, with the fixed held-out split; and the
 * single-input loader (see io/dataset.h for the contract).
 * Choices made here:
 *   - classes = NULL means every class that has images: all class folders (an empty
 *     one is an error), or, for IDX, the labels that occur, ascending (so the
 *     bundled Pullover/Coat file gives 2 classes, not 10).
 *   - a --classes entry is matched by name first; an entry of digits that is no
 *     class name is an index into the full class list (the sorted folders, or the
 *     X-classes.txt lines / label numbers for IDX).
 *   - folder datasets list the selected classes in the order given, each one's
 *     entries sorted by name (byte order, as Python's sorted() on UTF-8 names);
 *     hidden entries (".name") are passed over silently; every other entry is
 *     decoded by its magic bytes, whatever its extension, and one that is not an
 *     image gad can read is skipped with a warning naming it (the first ten by
 *     name, then a count), or is the error under `strict`; IDX datasets keep file
 *     order.
 *   - held out per class: the last floor(n_c * val_frac + 0.5) images.
 * Not for: augmentation, lazy loading, writing datasets. */
#include "io/dataset.h"
#include "core/err.h"
#include "io/file.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/npy.h"
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- small helpers ------------------------------------------------------------ */

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = xmalloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

static void free_names(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in dir: its sub-folders (want_dirs) or every entry (files and
 * folders alike, for a class folder); hidden ones (".name") are skipped.
 * Returns the count (>= 0) or -1 (err set). */
int dataset_dir_entries(const char *dir, int want_dirs, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return err_set("%s: cannot open folder", dir);
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (want_dirs) {
            char *p = join(dir, e->d_name);
            int ok = is_dir(p);
            free(p);
            if (!ok) continue;
        }
        if (n == cap) v = xrealloc(v, sizeof *v * (size_t)(cap = cap ? 2 * cap : 16));
        v[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

/* ---- class selection ---------------------------------------------------------- */

/* Resolve `classes` ("a,b,..." by name or index, or NULL) against full[0..nfull).
 * NULL selects every class with present[k] != 0 (every class if present is NULL).
 * *sel = new array of full-list indices. Returns the count or -1 (err set). */
static int resolve_classes(const char *spec, const char *classes, char **full, int nfull, const int *present,
                           int **sel) {
    int n = 0;
    *sel = xmalloc(sizeof(int) * (size_t)(nfull + 1));
    if (!classes) {
        for (int k = 0; k < nfull; k++)
            if (!present || present[k]) (*sel)[n++] = k;
        if (!n) { free(*sel); *sel = NULL; return err_set("%s: no classes", spec); }
        return n;
    }
    char *s = xstrdup(classes), *save = s;
    int err = 0;
    for (char *tok = s;; ) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = 0;
        while (isspace((unsigned char)*tok)) tok++;
        size_t len = strlen(tok);
        while (len && isspace((unsigned char)tok[len - 1])) tok[--len] = 0;
        int k = -1;
        if (!len) { err = err_set_usage("%s: empty class name in the class list \"%s\"", spec, classes); break; }
        for (int i = 0; i < nfull && k < 0; i++)
            if (!strcmp(full[i], tok)) k = i;
        if (k < 0 && strspn(tok, "0123456789") == len) {
            long v = len < 10 ? strtol(tok, NULL, 10) : -1;
            if (v < 0 || v >= nfull) {
                err = err_set_usage("%s: class index %s out of range (%d classes: 0..%d)", spec, tok, nfull, nfull - 1);
                break;
            }
            k = (int)v;
        }
        if (k < 0) {
            char known[256] = "";
            for (int i = 0; i < nfull && strlen(known) < 200; i++) {
                strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
                strncat(known, full[i], sizeof known - strlen(known) - 1);
            }
            err = err_set_usage("%s: unknown class '%s' (classes: %s%s)", spec, tok, known, strlen(known) >= 200 ? ", ..." : "");
            break;
        }
        for (int i = 0; i < n; i++)
            if ((*sel)[i] == k) { err = err_set_usage("%s: class '%s' listed twice", spec, full[k]); break; }
        if (err) break;
        if (n == nfull) { err = err_set_usage("%s: too many classes listed", spec); break; }
        (*sel)[n++] = k;
        if (!comma) break;
        tok = comma + 1;
    }
    free(save);
    if (err) { free(*sel); *sel = NULL; return -1; }
    return n;
}

/* ---- building the Dataset ------------------------------------------------------ */

/* Allocate d for n images of [3,h,w] and k classes; copies the names. */
static int dataset_alloc(Dataset *d, const char *spec, int n, int h, int w, int k, char **full, const int *sel) {
    const double floats = (double)n * 3.0 * h * w; /* a 32-bit size_t holds bytes of 2^30 floats */
    if (floats > (double)TENSOR_MAXNUMEL || floats * sizeof(float) > (double)SIZE_MAX)
        return err_set("%s: %d images of 3x%dx%d are too many floats for one block", spec, n, h, w);
    d->n = n;
    d->c = 3;
    d->h = h;
    d->w = w;
    d->x = xmalloc(sizeof(float) * (size_t)n * 3 * h * w);
    d->y = xmalloc(sizeof(int) * (size_t)(n ? n : 1));
    d->held_out = xcalloc((size_t)(n ? n : 1), sizeof(int));
    d->nclasses = k;
    d->class_names = xmalloc(sizeof(char *) * (size_t)k);
    for (int i = 0; i < k; i++) d->class_names[i] = xstrdup(full[sel[i]]);
    d->source = xstrdup(spec);
    d->names = xcalloc((size_t)(n ? n : 1), sizeof(char *));
    return 0;
}

/* The last floor(n_c * frac + 0.5) images of each class, in dataset order. */
static void mark_held_out(Dataset *d, float val_frac) {
    int *count = xcalloc((size_t)d->nclasses, sizeof(int)), *seen = xcalloc((size_t)d->nclasses, sizeof(int));
    for (int i = 0; i < d->n; i++) count[d->y[i]]++;
    for (int i = 0; i < d->n; i++) {
        int c = d->y[i], hold = (int)floor((double)count[c] * (double)val_frac + 0.5);
        d->held_out[i] = seen[c]++ >= count[c] - hold;
    }
    free(count);
    free(seen);
}

/* ---- IDX ---------------------------------------------------------------------- */

/* From ".../X-images-idx3-ubyte[.gz]" find the labels file and the classes file name. */
static int idx_companions(const char *spec, char **labels, char **names_txt) {
    const char *base = strrchr(spec, '/');
    base = base ? base + 1 : spec;
    const char *m = NULL, *p = base;
    char sep = 0;
    while ((p = strstr(p, "images")) != NULL) { /* the last "images-idx3-ubyte" / "images.idx3-ubyte" */
        if ((p[6] == '-' || p[6] == '.') && !strncmp(p + 7, "idx3-ubyte", 10)) { m = p; sep = p[6]; }
        p++;
    }
    if (!m)
        return err_set("%s: cannot find the labels file: an IDX images file must be named like "
                       "X-images-idx3-ubyte[.gz] (labels in X-labels-idx1-ubyte[.gz])", spec);
    size_t head = (size_t)(m - spec), n = strlen(spec) + 16;
    const char *tail = m + 17;
    char *lab = xmalloc(n);
    snprintf(lab, n, "%.*slabels%cidx1-ubyte%s", (int)head, spec, sep, tail);
    if (!file_exists(lab)) { /* the same with or without .gz */
        size_t tl = strlen(tail);
        if (tl >= 3 && !strcmp(tail + tl - 3, ".gz")) snprintf(lab, n, "%.*slabels%cidx1-ubyte%.*s", (int)head, spec, sep, (int)(tl - 3), tail);
        else snprintf(lab, n, "%.*slabels%cidx1-ubyte%s.gz", (int)head, spec, sep, tail);
        if (!file_exists(lab)) {
            snprintf(lab, n, "%.*slabels%cidx1-ubyte%s", (int)head, spec, sep, tail);
            err_set("%s: labels file %s not found", spec, lab);
            free(lab);
            return -1;
        }
    }
    size_t ph = head; /* "dir/X-" -> "dir/X-classes.txt"; "dir/" -> "dir/classes.txt" */
    if (ph > 0 && (spec[ph - 1] == '-' || spec[ph - 1] == '_' || spec[ph - 1] == '.')) ph--;
    char *txt = xmalloc(ph + 16);
    if (ph > 0 && spec[ph - 1] != '/') snprintf(txt, ph + 16, "%.*s-classes.txt", (int)ph, spec);
    else snprintf(txt, ph + 16, "%.*sclasses.txt", (int)ph, spec);
    *labels = lab;
    *names_txt = txt;
    return 0;
}

/* Lines of a classes file: *names (count returned) or -1 (err set). */
static int read_names(const char *path, char ***names) {
    unsigned char *buf;
    size_t n;
    if (file_read_all(path, 1 << 20, &buf, &n)) return -1;
    char **v = NULL;
    int k = 0, cap = 0, last_nonempty = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && buf[j] != '\n') j++;
        size_t e = j;
        while (e > i && isspace(buf[e - 1])) e--;
        if (k == cap) v = xrealloc(v, sizeof *v * (size_t)(cap = cap ? 2 * cap : 16));
        v[k] = xmalloc(e - i + 1);
        memcpy(v[k], buf + i, e - i);
        v[k][e - i] = 0;
        k++;
        if (e > i) last_nonempty = k;
        i = j + 1;
    }
    free(buf);
    for (int i = last_nonempty; i < k; i++) free(v[i]); /* trailing empty lines */
    k = last_nonempty;
    for (int i = 0; i < k; i++)
        if (!v[i][0]) {
            free_names(v, k);
            return err_set("%s: empty class name on line %d", path, i + 1);
        }
    if (!k) { free(v); return err_set("%s: no class names", path); }
    *names = v;
    return k;
}

/* Kept whole: the checks of the images file, its labels file and the class names read in
 * order, each failure a message naming its file, then one pass that prepares the selected
 * images; one exit frees whatever was read. */
static int load_idx(Dataset *d, const char *spec, const DatasetOpts *o) {
    const char *classes = o->classes;
    int h = o->h, w = o->w;
    IdxU8 im, lb;
    char *lab_path = NULL, *txt_path = NULL, **full = NULL;
    int nfull = 0, *sel = NULL, *present = NULL, *pos = NULL, r = -1;
    memset(&lb, 0, sizeof lb);
    if (idx_read(spec, &im)) return -1;
    if (im.ndim != 3) {
        err_set("%s: IDX images must have 3 dimensions [n,rows,cols] (magic 0x00000803), this has %d", spec, im.ndim);
        goto done;
    }
    if (im.dim[1] < 1 || im.dim[2] < 1) { err_set("%s: images of size %dx%d", spec, im.dim[1], im.dim[2]); goto done; }
    if (idx_companions(spec, &lab_path, &txt_path)) goto done;
    if (idx_read(lab_path, &lb)) goto done;
    if (lb.ndim != 1) {
        err_set("%s: IDX labels must have 1 dimension [n] (magic 0x00000801), this has %d", lab_path, lb.ndim);
        goto done;
    }
    if (lb.dim[0] != im.dim[0]) {
        err_set("%s: %d labels, but %s has %d images", lab_path, lb.dim[0], spec, im.dim[0]);
        goto done;
    }
    int n = im.dim[0], maxlab = -1;
    for (int i = 0; i < n; i++) if (lb.data[i] > maxlab) maxlab = lb.data[i];
    if (file_exists(txt_path)) {
        if ((nfull = read_names(txt_path, &full)) < 0) { nfull = 0; goto done; }
        if (maxlab >= nfull) {
            err_set("%s: label %d has no name in %s (%d names)", lab_path, maxlab, txt_path, nfull);
            goto done;
        }
    } else {
        nfull = maxlab + 1;
        full = xmalloc(sizeof(char *) * (size_t)(nfull ? nfull : 1));
        for (int k = 0; k < nfull; k++) {
            char b[16];
            snprintf(b, sizeof b, "%d", k);
            full[k] = xstrdup(b);
        }
    }
    if (!n) { err_set("%s: no images", spec); goto done; }
    present = xcalloc((size_t)nfull, sizeof(int));
    for (int i = 0; i < n; i++) present[lb.data[i]]++;
    int k = resolve_classes(spec, classes, full, nfull, present, &sel);
    if (k < 0) goto done;
    pos = xmalloc(sizeof(int) * (size_t)nfull);
    for (int c = 0; c < nfull; c++) pos[c] = -1;
    int m = 0;
    for (int j = 0; j < k; j++) {
        if (!present[sel[j]]) { err_set("%s: class '%s' has no images", spec, full[sel[j]]); goto done; }
        pos[sel[j]] = j;
        m += present[sel[j]];
    }
    int ih = im.dim[1], iw = im.dim[2];
    if (!h) image_prep_size(&o->prep, iw, ih, &w, &h);
    if (dataset_alloc(d, spec, m, h, w, k, full, sel)) goto done;
    size_t per = (size_t)ih * iw, out = (size_t)3 * h * w;
    for (int i = 0, j = 0; i < n; i++) {
        if (pos[lb.data[i]] < 0) continue;
        Image g = {iw, ih, 1, im.data + (size_t)i * per};
        if (image_prepare(&g, &o->prep, h, w, spec, d->x + (size_t)j * out)) {
            dataset_free(d);
            goto done;
        }
        size_t nl = strlen(spec) + 16;
        d->names[j] = xmalloc(nl);
        snprintf(d->names[j], nl, "%s[%d]", spec, i); /* the image's index in the IDX file */
        d->y[j++] = pos[lb.data[i]];
    }
    r = 0;
done:
    idx_free(&im);
    idx_free(&lb);
    free(lab_path);
    free(txt_path);
    free_names(full, nfull);
    free(sel);
    free(present);
    free(pos);
    return r;
}

/* ---- folder of class folders -------------------------------------------------- */

/* Warnings named one by one before the rest are only counted. */
#define SKIP_NAMED 10

/* Every entry of the selected class folders, decoded and preprocessed in order. An
 * entry that is not an image gad can read (another format, a corrupt file, a
 * folder) is a warning naming it, or with o->strict the error. */
static int load_folder(Dataset *d, const char *spec, const DatasetOpts *o) {
    char **full = NULL, ***files = NULL;
    int *sel = NULL, *nfiles = NULL, *count = NULL, k = 0, r = -1, skipped = 0, h = o->h, w = o->w;
    int nfull = dataset_dir_entries(spec, 1, &full);
    if (nfull < 0) return -1;
    if (nfull == 0) { free(full); return err_set("%s: no class folders in this folder", spec); }
    if ((k = resolve_classes(spec, o->classes, full, nfull, NULL, &sel)) < 0) { k = 0; goto done; }
    files = xcalloc((size_t)k, sizeof *files);
    nfiles = xcalloc((size_t)k, sizeof *nfiles);
    count = xcalloc((size_t)k, sizeof *count);
    int m = 0;
    for (int j = 0; j < k; j++) {
        char *dir = join(spec, full[sel[j]]);
        nfiles[j] = dataset_dir_entries(dir, 0, &files[j]);
        if (nfiles[j] == 0) err_set("%s: empty class folder", dir);
        free(dir);
        if (nfiles[j] <= 0) { nfiles[j] = 0; goto done; }
        m += nfiles[j];
    }
    int keep = !h, n = 0; /* no size given: every image must have the first one's size */
    for (int j = 0; j < k; j++) {
        for (int f = 0; f < nfiles[j]; f++) {
            char *dir = join(spec, full[sel[j]]), *p = join(dir, files[j][f]);
            free(dir);
            Image im;
            memset(&im, 0, sizeof im);
            int bad = is_dir(p) ? err_set("%s: a folder inside a class folder (gad reads the files directly in it)", p)
                                : image_load(p, &im);
            if (bad && !o->strict) { /* skip it, and say so */
                if (++skipped <= SKIP_NAMED) err_warn("%s; skipped", err_get());
                free(p);
                continue;
            }
            int pw = 0, ph = 0;
            if (!bad) image_prep_size(&o->prep, im.w, im.h, &pw, &ph);
            if (!bad && n == 0) {
                if (keep) { h = ph; w = pw; }
                bad = dataset_alloc(d, spec, m, h, w, k, full, sel);
            } else if (!bad && keep && (ph != h || pw != w)) {
                bad = err_set("%s: image is %dx%d, the first one is %dx%d (give a size to resize them all)", p,
                              pw, ph, w, h);
            }
            if (!bad) bad = image_prepare(&im, &o->prep, h, w, p, d->x + (size_t)n * 3 * h * w);
            image_free(&im);
            if (bad) {
                free(p);
                goto done;
            }
            d->names[n] = p;
            d->y[n++] = j;
            count[j]++;
        }
    }
    if (skipped > SKIP_NAMED)
        err_warn("%s: %d files skipped in all (the first %d named above); --strict makes them errors", spec, skipped,
                 SKIP_NAMED);
    for (int j = 0; j < k; j++)
        if (!count[j]) {
            char *dir = join(spec, full[sel[j]]);
            err_set("%s: no image gad can read in this class folder (%d files skipped)", dir, nfiles[j]);
            free(dir);
            goto done;
        }
    d->n = n; /* fewer than allocated when files were skipped */
    d->x = xrealloc(d->x, sizeof(float) * (size_t)n * 3 * h * w);
    r = 0;
done:
    if (r && d->x) dataset_free(d);
    for (int j = 0; files && j < k; j++) free_names(files[j], nfiles[j]);
    free(files);
    free(nfiles);
    free(count);
    free_names(full, nfull);
    free(sel);
    return r;
}

/* ---- public ------------------------------------------------------------------- */

int dataset_load_opts(Dataset *d, const char *spec, const DatasetOpts *o) {
    memset(d, 0, sizeof *d);
    float val_frac = o->val_frac;
    int h = o->h, w = o->w;
    if (!(val_frac >= 0.0f && val_frac < 1.0f)) return err_set("%s: held-out fraction %g not in [0,1)", spec, (double)val_frac);
    if (h < 0 || w < 0 || (h == 0) != (w == 0)) return err_set("%s: bad image size %dx%d", spec, h, w);
    const float *sd = o->prep.std;
    for (int k = 0; sd && k < 3; k++)
        if (!(sd[k] > 0.0f)) return err_set("%s: normalisation std[%d] = %g must be > 0", spec, k, (double)sd[k]);
    int r;
    if (is_dir(spec)) r = load_folder(d, spec, o);
    else if (file_exists(spec)) r = load_idx(d, spec, o);
    else r = err_set("%s: no such folder or file", spec);
    if (r) { memset(d, 0, sizeof *d); return -1; }
    d->prep = o->prep;
    d->prep.mean = d->prep.std = NULL;
    d->has_norm = o->prep.mean || o->prep.std;
    for (int k = 0; k < 3; k++) {
        d->mean[k] = o->prep.mean ? o->prep.mean[k] : 0.0f;
        d->std[k] = o->prep.std ? o->prep.std[k] : 1.0f;
    }
    mark_held_out(d, val_frac);
    return 0;
}

int dataset_load(Dataset *d, const char *spec, const char *classes, int h, int w, const float *mean,
                 const float *std, float val_frac) {
    DatasetOpts o = {0};
    o.classes = classes;
    o.h = h;
    o.w = w;
    o.prep.mean = mean;
    o.prep.std = std;
    o.val_frac = val_frac;
    return dataset_load_opts(d, spec, &o);
}

void dataset_free(Dataset *d) {
    free(d->x);
    free(d->y);
    free(d->held_out);
    if (d->class_names) free_names(d->class_names, d->nclasses);
    free(d->source);
    for (int i = 0; d->names && i < d->n; i++) free(d->names[i]);
    free(d->names);
    memset(d, 0, sizeof *d);
}

/* A class name of d, or -1. */
static int class_of(const Dataset *d, const char *name, size_t len) {
    for (int k = 0; k < d->nclasses; k++)
        if (strlen(d->class_names[k]) == len && !strncmp(d->class_names[k], name, len)) return k;
    return -1;
}

/* Kept whole: one loop over the list's lines, each line an image of the data or a file
 * prepared as the data are, with its class, every error naming the list's line; one exit
 * frees the partial outputs. */
int dataset_images_from_list(const Dataset *d, const char *list, float **x, int **y, int **index, char ***names) {
    ImagePrep pp = d->prep, *prep = &pp;
    pp.mean = d->has_norm ? d->mean : NULL;
    pp.std = d->has_norm ? d->std : NULL;
    unsigned char *buf;
    size_t len;
    if (file_read_all(list, (size_t)1 << 28, &buf, &len)) return -1;
    size_t per = (size_t)3 * d->h * d->w;
    int n = 0, cap = 0, line = 0, r = -1;
    float *xs = NULL;
    int *ys = NULL, *is = NULL;
    char **ns = NULL;
    for (size_t i = 0; i < len;) {
        size_t a = i, e = i;
        while (e < len && buf[e] != '\n') e++;
        i = e + 1;
        line++;
        while (e > a && (buf[e - 1] == '\r' || buf[e - 1] == ' ')) e--;
        while (a < e && buf[a] == ' ') a++;
        if (a == e || buf[a] == '#') continue;
        if (memchr(buf + a, 0, e - a)) { err_set("%s: line %d is not a path (a NUL byte)", list, line); goto done; }
        char *path = xmalloc(e - a + 1), *tab;
        memcpy(path, buf + a, e - a);
        path[e - a] = 0;
        int cls = -1, idx = -1;
        if ((tab = strchr(path, '\t')) != NULL) {
            *tab = 0;
            if ((cls = class_of(d, tab + 1, strlen(tab + 1))) < 0) {
                err_set_usage("%s: line %d: class '%s' is not one of the data's", list, line, tab + 1);
                free(path);
                goto done;
            }
        }
        for (int j = 0; j < d->n && idx < 0; j++)
            if (!strcmp(d->names[j], path)) idx = j;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            xs = xrealloc(xs, sizeof(float) * per * (size_t)cap);
            ys = xrealloc(ys, sizeof(int) * (size_t)cap);
            is = xrealloc(is, sizeof(int) * (size_t)cap);
            ns = xrealloc(ns, sizeof(char *) * (size_t)cap);
        }
        if (idx >= 0) { /* an image of the data */
            if (cls >= 0 && cls != d->y[idx]) {
                err_set("%s: line %d: %s is of class '%s' in the data, not '%s'", list, line, path,
                        d->class_names[d->y[idx]], d->class_names[cls]);
                free(path);
                goto done;
            }
            memcpy(xs + per * n, d->x + per * idx, sizeof(float) * per);
            cls = d->y[idx];
        } else {
            if (cls < 0) { /* the folder's name */
                const char *sl = strrchr(path, '/'), *b = sl;
                while (b && b > path && b[-1] != '/') b--;
                if (sl && sl > path) cls = class_of(d, b, (size_t)(sl - b));
                if (cls < 0) {
                    err_set("%s: line %d: the class of %s is neither given (PATH<TAB>CLASS) nor its folder's name", list,
                            line, path);
                    free(path);
                    goto done;
                }
            }
            Tensor t;
            if (input_load_prep(path, prep, d->h, d->w, &t)) {
                char msg[600];
                snprintf(msg, sizeof msg, "%s", err_get());
                err_set("%s: line %d: %s", list, line, msg);
                free(path);
                goto done;
            }
            int one = t.dim[0] == 1;
            if (one) memcpy(xs + per * n, t.data, sizeof(float) * per);
            tensor_free(&t);
            if (!one) {
                err_set("%s: line %d: %s holds several images; list one image per line", list, line, path);
                free(path);
                goto done;
            }
            idx = d->n + n;
        }
        ys[n] = cls;
        is[n] = idx;
        ns[n++] = path;
    }
    if (!n) { err_set("%s: no image listed", list); goto done; }
    *x = xs;
    *y = ys;
    *index = is;
    *names = ns;
    r = n;
done:
    free(buf);
    if (r < 0) {
        for (int k = 0; k < n; k++) free(ns[k]);
        free(xs);
        free(ys);
        free(is);
        free(ns);
    }
    return r;
}

int dataset_select(const Dataset *d, int held_out, int cls, int max, int **idx) {
    int n = 0;
    *idx = xmalloc(sizeof(int) * (size_t)(d->n ? d->n : 1));
    for (int i = 0; i < d->n && (max <= 0 || n < max); i++)
        if (d->held_out[i] == (held_out != 0) && (cls < 0 || d->y[i] == cls)) (*idx)[n++] = i;
    return n;
}

int input_load(const char *path, int h, int w, const float *mean, const float *std, Tensor *out) {
    ImagePrep p = {0};
    p.mean = mean;
    p.std = std;
    return input_load_prep(path, &p, h, w, out);
}

int input_load_prep(const char *path, const ImagePrep *prep, int h, int w, Tensor *out) {
    memset(out, 0, sizeof *out);
    if ((h == 0) != (w == 0) || h < 0 || w < 0) return err_set("%s: bad input size %dx%d", path, h, w);
    unsigned char magic[6] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open", path);
    size_t got = fread(magic, 1, 6, f);
    fclose(f);
    if (got == 6 && !memcmp(magic, "\x93NUMPY", 6)) {
        if (npy_read(path, out)) return -1;
        if (out->ndim == 3) { /* [3,h,w] -> [1,3,h,w] */
            for (int i = 3; i > 0; i--) out->dim[i] = out->dim[i - 1];
            out->dim[0] = 1;
            out->ndim = 4;
        }
        char b[96];
        if (out->ndim == 4 && out->dim[1] != 3) {
            long c = (long)out->dim[1];
            tensor_shape_str(out, b, sizeof b);
            tensor_free(out);
            return err_set("%s: input of shape %s has %ld channels, want 3", path, b, c);
        }
        if (out->ndim != 4 || out->dim[1] != 3 || out->dim[0] < 1 || out->dim[0] > 1 << 30 || out->dim[2] < 1 ||
            out->dim[3] < 1 || (h && (out->dim[2] != h || out->dim[3] != w))) {
            tensor_shape_str(out, b, sizeof b);
            tensor_free(out);
            if (h) return err_set("%s: input of shape %s, want [n,3,%d,%d]", path, b, h, w);
            return err_set("%s: input of shape %s, want [n,3,h,w]", path, b);
        }
        return 0;
    }
    Image im;
    if (image_load(path, &im)) return -1;
    if (im.c < 1 || im.c > 4) { image_free(&im); return err_set("%s: unusable channel count %d", path, im.c); }
    if (!h) image_prep_size(prep, im.w, im.h, &w, &h);
    *out = tensor_new4(1, 3, h, w);
    int r = image_prepare(&im, prep, h, w, path, out->data);
    image_free(&im);
    if (r) tensor_free(out);
    return r;
}
