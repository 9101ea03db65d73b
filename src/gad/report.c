/* report: what a GAD run leaves behind: Tables 1 and 2 in the terminal (laid out as
 * in the paper), table1.csv, table2.csv, results.json (every per-image number),
 * the figure grids (Fig. 5 maps, Fig. 6 hulls) and index.html, a static page that
 * shows it all offline (no script, images referenced relatively). Every file is
 * written atomically.
 * Not for: computing anything (run.c), colours and PNG encoding (attr/heatmap.h). */
#include "gad/run.h"
#include "core/err.h"
#include "io/file.h"
#include "io/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *short_name(AttrMethod m) {
    static const char *s[] = {"S", "D", "GxI", "GB", "IG"};
    return m < ATTR_NMETHODS ? s[m] : "?";
}
static const char *long_name(AttrMethod m) {
    static const char *s[] = {"Saliency", "Deconvolution", "Gradient x Input", "Guided Backprop",
                              "Integrated Gradients"};
    return m < ATTR_NMETHODS ? s[m] : "?";
}

/* ---- figures ---- */

void gad_fig_name(char *buf, size_t len, const char *model, const char *kind, AttrMethod m, int col) {
    if (!strcmp(kind, "fig5") || !strcmp(kind, "fig6")) snprintf(buf, len, "fig/%s/%s.png", model, kind);
    else if (!strcmp(kind, "input")) snprintf(buf, len, "fig/%s/f5_input_%d.png", model, col);
    else if (!strcmp(kind, "hull")) snprintf(buf, len, "fig/%s/f6_%s_%d.png", model, attr_method_name(m), col);
    else snprintf(buf, len, "fig/%s/f5_%s_%s_%d.png", model, attr_method_name(m), kind, col);
}

float gad_tile_map(const float *imp, float thr, int H, int W, unsigned char *rgb) {
    size_t n = (size_t)H * W;
    float *norm = xmalloc(sizeof(float) * (n > 0 ? n : 1));
    if (thr <= 0) {
        thr = heatmap_normalize(imp, 1, H, W, 1, norm);
    } else {
        for (size_t i = 0; i < n; i++) {
            float v = imp[i] / thr;
            norm[i] = v > 1 ? 1 : v;
        }
    }
    heatmap_render(norm, H, W, 1, rgb);
    free(norm);
    return thr;
}

static const unsigned char RED[3] = {220, 30, 30}, GREEN[3] = {20, 190, 40}, BG[3] = {200, 200, 200};

void gad_grid_init(GadGrid *g, int rows, int cols, int H, int W, int scale) {
    g->rows = rows;
    g->cols = cols;
    g->H = H;
    g->W = W;
    g->scale = scale;
    g->gap = 4;
    canvas_init(&g->canvas, cols * (W * scale + g->gap) + g->gap, rows * (H * scale + g->gap) + g->gap, BG);
}

static void draw_hull(Canvas *c, const GadPoint *h, int n, int ox, int oy, int scale, const unsigned char col[3]) {
    if (!h || n <= 0) return;
    int *xy = xmalloc(sizeof(int) * 2 * (size_t)n);
    for (int i = 0; i < n; i++) {
        xy[2 * i] = h[i].x;
        xy[2 * i + 1] = h[i].y;
    }
    canvas_polygon(c, xy, n, ox, oy, scale, col, scale >= 4 ? 2 : 1);
    free(xy);
}

int gad_grid_put(GadGrid *g, int row, int col, const unsigned char *rgb, const GadPoint *h1, int n1,
                 const GadPoint *h2, int n2, const char *cell_path) {
    int s = g->scale;
    int ox = g->gap + col * (g->W * s + g->gap), oy = g->gap + row * (g->H * s + g->gap);
    canvas_blit(&g->canvas, ox, oy, rgb, g->W, g->H, s);
    draw_hull(&g->canvas, h1, n1, ox, oy, s, RED);
    draw_hull(&g->canvas, h2, n2, ox, oy, s, GREEN);
    if (!cell_path) return 0;
    Canvas c;
    canvas_init(&c, g->W * s, g->H * s, NULL);
    canvas_blit(&c, 0, 0, rgb, g->W, g->H, s);
    draw_hull(&c, h1, n1, 0, 0, s, RED);
    draw_hull(&c, h2, n2, 0, 0, s, GREEN);
    int rc = canvas_write_png(&c, cell_path);
    canvas_free(&c);
    return rc;
}

int gad_grid_write(GadGrid *g, const char *path) {
    int rc = canvas_write_png(&g->canvas, path);
    canvas_free(&g->canvas);
    return rc;
}

/* ---- terminal tables ---- */

static void rule(FILE *f, int nm) {
    for (int i = 0; i < 28 + 9 * nm; i++) fputc('-', f);
    fputc('\n', f);
}

/* The column header of a table: a rule, "model" and the method names, a rule. */
static void table_head(FILE *f, const RunOpts *o) {
    rule(f, o->nmethods);
    fprintf(f, "%-10s %-16s", "model", "");
    for (int m = 0; m < o->nmethods; m++) fprintf(f, " %8s", short_name(o->methods[m]));
    fputc('\n', f);
    rule(f, o->nmethods);
}

/* The start of a row: the model name (or blank) and the label fmt with class a+1. */
static void row_label(FILE *f, const char *model, const char *fmt, int a) {
    char lab[32];
    snprintf(lab, sizeof lab, fmt, a + 1);
    fprintf(f, "%-10.10s %-16s", model, lab);
}

void gad_print_tables(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    int nm = o->nmethods;
    fprintf(f, "\nTable 1: images where each visualization has the smaller hull area\n"
               "         (RC = A(CH_GAD)/A(CH_orig); RC < 1 counts for GAD, RC >= 1 for the original)\n");
    table_head(f, o);
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        int any_undef = 0, any_empty = 0;
        for (int a = 0; a < 2; a++)
            for (int row = 0; row < 2; row++) {
                row_label(f, a == 0 && row == 0 ? mr->name : "", row == 0 ? "Orig.%d" : "GAD %d (ours)", a);
                for (int m = 0; m < nm; m++) {
                    const GadRcTally *t = &mr->rc[o->methods[m]][a];
                    fprintf(f, " %8d", row == 0 ? t->orig : t->gad);
                    any_undef |= t->undefined > 0;
                    any_empty |= mr->gad_empty[o->methods[m]][a] > 0;
                }
                fputc('\n', f);
            }
        if (any_undef)
            for (int a = 0; a < 2; a++) {
                row_label(f, "", "no RC %d", a);
                for (int m = 0; m < nm; m++) fprintf(f, " %8d", mr->rc[o->methods[m]][a].undefined);
                fputc('\n', f);
            }
        if (any_empty)
            for (int a = 0; a < 2; a++) {
                row_label(f, "", "empty GAD %d", a);
                for (int m = 0; m < nm; m++) fprintf(f, " %8d", mr->gad_empty[o->methods[m]][a]);
                fputc('\n', f);
            }
        fprintf(f, "%-10s class 1 = %s, class 2 = %s; %d images\n", "", mr->class_name[0], mr->class_name[1],
                mr->nimages);
        rule(f, nm);
    }
    fprintf(f, "\nTable 2: mean RS = |N_a(I) - N_a(I*(1-M))| / sum(M) on the original model, "
               "values x 10^2\n         (Sup. = M_orig - M_GAD, GAD = M_GAD)\n");
    table_head(f, o);
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        int any_empty = 0;
        for (int a = 0; a < 2; a++)
            for (int row = 0; row < 2; row++) {
                row_label(f, a == 0 && row == 0 ? mr->name : "", row == 0 ? "Sup.%d" : "GAD %d (ours)", a);
                for (int m = 0; m < nm; m++) {
                    const GadRsMean *s = row == 0 ? &mr->rs_sup[o->methods[m]][a] : &mr->rs_gad[o->methods[m]][a];
                    double v = gad_rs_mean(s);
                    if (isnan(v)) fprintf(f, " %8s", "-");
                    else fprintf(f, " %8.4f", 100 * v);
                    any_empty |= s->empty > 0;
                }
                fputc('\n', f);
            }
        if (any_empty)
            for (int a = 0; a < 2; a++)
                for (int row = 0; row < 2; row++) {
                    row_label(f, "", row == 0 ? "empty Sup.%d" : "empty GAD %d", a);
                    for (int m = 0; m < nm; m++)
                        fprintf(f, " %8d", (row == 0 ? &mr->rs_sup[o->methods[m]][a] : &mr->rs_gad[o->methods[m]][a])->empty);
                    fputc('\n', f);
                }
        rule(f, nm);
    }
}

/* ---- CSV ---- */

static void csv_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_num(FILE *f, double v) {
    if (isnan(v)) return;  /* empty field */
    fprintf(f, "%.9g", v);
}

static int write_csv(const GadRunResult *r, int which) {
    const RunOpts *o = r->opts;
    char path[1024];
    snprintf(path, sizeof path, "%s/table%d.csv", o->out_dir, which);
    AtomicFile af;
    if (afile_open(&af, path) != 0) return -1;
    FILE *f = af.f;
    if (which == 1) fprintf(f, "model,class,class_name,method,orig,gad,no_rc,gad_map_empty,images\n");
    else fprintf(f, "model,class,class_name,method,rs_sup_mean,rs_gad_mean,n_sup,n_gad,empty_sup,empty_gad\n");
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        for (int a = 0; a < 2; a++)
            for (int m = 0; m < o->nmethods; m++) {
                AttrMethod am = o->methods[m];
                csv_str(f, mr->name);
                fprintf(f, ",%d,", a + 1);
                csv_str(f, mr->class_name[a]);
                fprintf(f, ",%s,", attr_method_name(am));
                if (which == 1) {
                    const GadRcTally *t = &mr->rc[am][a];
                    fprintf(f, "%d,%d,%d,%d,%d\n", t->orig, t->gad, t->undefined, mr->gad_empty[am][a], mr->nimages);
                } else {
                    const GadRsMean *s = &mr->rs_sup[am][a], *g = &mr->rs_gad[am][a];
                    csv_num(f, gad_rs_mean(s));
                    fputc(',', f);
                    csv_num(f, gad_rs_mean(g));
                    fprintf(f, ",%d,%d,%d,%d\n", s->n, g->n, s->empty, g->empty);
                }
            }
    }
    return afile_commit(&af);
}

/* ---- JSON ---- */

static void jkey(FILE *f, const char *k) {
    json_write_string(f, k);
    fputc(':', f);
}

static void jhull(FILE *f, const GadHull *h) {
    fprintf(f, "{\"points\":%d,\"vertices\":%d,\"area\":", h->npoints, h->nvert);
    json_write_number(f, h->area);
    fprintf(f, ",\"pixels\":%d}", h->pixels);
}

/* A float as the shortest decimal that reads back as the same float (4e-05, not
 * 3.9999998989515007e-05). */
static void jfloat(FILE *f, float v) {
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    json_write_number(f, strtod(buf, NULL));
}

static const char *present_name(const RunOpts *o) { return o->present.rule == PRESENT_FRAC ? "frac" : "top"; }

static int write_json(const GadRunResult *r) {
    const RunOpts *o = r->opts;
    char path[1024];
    snprintf(path, sizeof path, "%s/results.json", o->out_dir);
    AtomicFile af;
    if (afile_open(&af, path) != 0) return -1;
    FILE *f = af.f;
    fprintf(f, "{\n\"settings\":{");
    jkey(f, "data");
    json_write_string(f, o->data);
    fprintf(f, ",\"classes\":");
    json_write_string(f, o->classes ? o->classes : "");
    fprintf(f, ",\"methods\":[");
    for (int m = 0; m < o->nmethods; m++) fprintf(f, "%s\"%s\"", m ? "," : "", attr_method_name(o->methods[m]));
    fprintf(f, "],\"images\":%d,\"alphas\":[", o->images);
    for (int i = 0; i < o->nalphas; i++) {
        if (i) fputc(',', f);
        jfloat(f, o->alphas[i]);
    }
    fprintf(f, "],\"epochs\":%d,\"batch\":%d,\"lr\":", o->epochs, o->batch);
    jfloat(f, o->lr);
    fprintf(f, ",\"weight_decay\":");
    jfloat(f, o->weight_decay);
    fprintf(f, ",\"bn_dropout\":\"%s\",\"seed\":%llu,\"train_images_per_class\":%d,\"present\":{\"rule\":\"%s\",\"value\":",
            o->train_mode ? "train" : "eval", (unsigned long long)o->seed, o->train_images, present_name(o));
    jfloat(f, o->present.value);
    fprintf(f, "},\"hull_keep\":");
    jfloat(f, o->hull_keep);
    fprintf(f, ",\"rc_area\":\"%s\",\"occlusion\":\"%s\",\"ig_steps\":%d},\n\"seconds\":",
            o->rc_area == RC_AREA_POLYGON ? "polygon" : "pixels", o->occlude_black ? "black" : "zero", o->ig_steps);
    json_write_number(f, r->seconds);
    fprintf(f, ",\n\"models\":[");
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        fprintf(f, "%s\n{", k ? "," : "");
        jkey(f, "name");
        json_write_string(f, mr->name);
        fputc(',', f);
        jkey(f, "weights");
        json_write_string(f, mr->weights);
        fprintf(f, ",\"arch\":\"%s\",\"input\":[3,%d,%d],\"seconds\":", mr->arch, mr->H, mr->W);
        json_write_number(f, mr->seconds);
        fprintf(f, ",\"classes\":[");
        for (int a = 0; a < 2; a++) {
            fprintf(f, "%s{\"name\":", a ? "," : "");
            json_write_string(f, mr->class_name[a]);
            fprintf(f, ",\"output\":%d}", mr->o[a]);
        }
        fprintf(f, "],\n\"supports\":[");
        for (int i = 0; i < o->nalphas; i++) {
            fprintf(f, "%s{\"alpha\":", i ? "," : "");
            jfloat(f, o->alphas[i]);
            fprintf(f, ",\"path\":");
            json_write_string(f, mr->support_path[i]);
            fprintf(f, ",\"trained\":%s,\"final_loss\":", mr->support_trained[i] ? "true" : "false");
            jfloat(f, mr->support_loss[i]);
            fputc('}', f);
        }
        fprintf(f, "],\n\"table1\":[");
        int first = 1;
        for (int a = 0; a < 2; a++)
            for (int m = 0; m < o->nmethods; m++) {
                AttrMethod am = o->methods[m];
                const GadRcTally *t = &mr->rc[am][a];
                fprintf(f, "%s{\"class\":%d,\"method\":\"%s\",\"orig\":%d,\"gad\":%d,\"no_rc\":%d,\"gad_map_empty\":%d}",
                        first ? "" : ",", a + 1, attr_method_name(am), t->orig, t->gad, t->undefined,
                        mr->gad_empty[am][a]);
                first = 0;
            }
        fprintf(f, "],\n\"table2\":[");
        first = 1;
        for (int a = 0; a < 2; a++)
            for (int m = 0; m < o->nmethods; m++) {
                AttrMethod am = o->methods[m];
                const GadRsMean *s = &mr->rs_sup[am][a], *g = &mr->rs_gad[am][a];
                fprintf(f, "%s{\"class\":%d,\"method\":\"%s\",\"rs_sup_mean\":", first ? "" : ",", a + 1,
                        attr_method_name(am));
                json_write_number(f, gad_rs_mean(s));
                fprintf(f, ",\"rs_gad_mean\":");
                json_write_number(f, gad_rs_mean(g));
                fprintf(f, ",\"n_sup\":%d,\"n_gad\":%d,\"empty_sup\":%d,\"empty_gad\":%d}", s->n, g->n, s->empty,
                        g->empty);
                first = 0;
            }
        fprintf(f, "],\n\"images\":[");
        for (int i = 0; i < mr->nimages; i++) {
            const GadImageResult *im = &mr->img[i];
            fprintf(f, "%s\n{\"index\":%d,\"class\":%d,\"outputs\":[", i ? "," : "", im->index, im->cls + 1);
            jfloat(f, im->out[0]);
            fputc(',', f);
            jfloat(f, im->out[1]);
            fprintf(f, "],\"cells\":[");
            for (int m = 0; m < o->nmethods; m++)
                for (int a = 0; a < 2; a++) {
                    const GadCell *c = &im->cell[m * 2 + a];
                    fprintf(f, "%s{\"method\":\"%s\",\"class\":%d,\"orig\":", m + a ? "," : "",
                            attr_method_name(o->methods[m]), a + 1);
                    jhull(f, &c->orig);
                    fprintf(f, ",\"gad\":");
                    jhull(f, &c->gad);
                    fprintf(f, ",\"gad_nonzero\":%d,\"sup_pixels\":%d,\"rc\":", c->gad_nnz, c->sup_pixels);
                    json_write_number(f, c->rc);
                    fprintf(f, ",\"rs_gad\":");
                    json_write_number(f, c->rs_gad);
                    fprintf(f, ",\"rs_sup\":");
                    json_write_number(f, c->rs_sup);
                    fputc('}', f);
                }
            fprintf(f, "]}");
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n]}\n");
    return afile_commit(&af);
}

/* ---- HTML ---- */

static void html_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static void html_tables(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    int nm = o->nmethods;
    for (int t = 1; t <= 2; t++) {
        if (t == 1)
            fprintf(f, "<h2>Table 1: complexity</h2>\n<p>Images for which each visualization has the smaller hull: "
                       "RC = A(CH<sub>GAD</sub>) / A(CH<sub>orig</sub>) &lt; 1 counts for GAD, RC &ge; 1 for the "
                       "original. <i>no RC</i>: the original hull has no area (RC undefined, counted in neither "
                       "row). <i>empty GAD</i>: no pixel present in every map (RC = 0).</p>\n");
        else
            fprintf(f, "<h2>Table 2: sensitivity</h2>\n<p>Mean RS = |N<sub>a</sub>(I) &minus; "
                       "N<sub>a</sub>(I&middot;(1&minus;M))| / &Sigma;M on the original model, values &times; "
                       "10<sup>2</sup>. Sup. = M<sub>orig</sub> &minus; M<sub>GAD</sub>; an empty mask gives no "
                       "RS and is counted apart.</p>\n");
        fprintf(f, "<table class=\"t\"><tr><th>model</th><th></th>");
        for (int m = 0; m < nm; m++) fprintf(f, "<th>%s</th>", short_name(o->methods[m]));
        fprintf(f, "</tr>\n");
        for (int k = 0; k < r->nmodels; k++) {
            const GadModelResult *mr = &r->model[k];
            int nrows = 8;  /* 2 classes x 4 rows */
            for (int a = 0; a < 2; a++)
                for (int row = 0; row < 4; row++) {
                    fprintf(f, "<tr%s>", row == 1 ? " class=\"ours\"" : "");
                    if (a == 0 && row == 0) {
                        fprintf(f, "<td rowspan=\"%d\">", nrows);
                        html_esc(f, mr->name);
                        fprintf(f, "<br><small>%s</small></td>", mr->arch);
                    }
                    static const char *lab1[] = {"Orig.%d", "GAD %d (ours)", "no RC %d", "empty GAD %d"};
                    static const char *lab2[] = {"Sup.%d", "GAD %d (ours)", "empty Sup.%d", "empty GAD %d"};
                    fprintf(f, "<td>");
                    fprintf(f, t == 1 ? lab1[row] : lab2[row], a + 1);
                    if (row == 0) {
                        fprintf(f, " <small>(");
                        html_esc(f, mr->class_name[a]);
                        fprintf(f, ")</small>");
                    }
                    fprintf(f, "</td>");
                    for (int m = 0; m < nm; m++) {
                        AttrMethod am = o->methods[m];
                        if (t == 1) {
                            const GadRcTally *tt = &mr->rc[am][a];
                            int v = row == 0 ? tt->orig : row == 1 ? tt->gad : row == 2 ? tt->undefined : mr->gad_empty[am][a];
                            fprintf(f, "<td>%d</td>", v);
                        } else {
                            const GadRsMean *s = &mr->rs_sup[am][a], *g = &mr->rs_gad[am][a];
                            if (row >= 2) fprintf(f, "<td>%d</td>", row == 2 ? s->empty : g->empty);
                            else {
                                double v = gad_rs_mean(row == 0 ? s : g);
                                if (isnan(v)) fprintf(f, "<td>&ndash;</td>");
                                else fprintf(f, "<td>%.4f</td>", 100 * v);
                            }
                        }
                    }
                    fprintf(f, "</tr>\n");
                }
        }
        fprintf(f, "</table>\n");
    }
}

static void html_model(FILE *f, const GadRunResult *r, const GadModelResult *mr) {
    const RunOpts *o = r->opts;
    char rel[256];
    fprintf(f, "<h2>");
    html_esc(f, mr->name);
    fprintf(f, " (%s, inputs 3&times;%d&times;%d)</h2>\n<p>Weights <code>", mr->arch, mr->H, mr->W);
    html_esc(f, mr->weights);
    fprintf(f, "</code>; classes 1 = ");
    html_esc(f, mr->class_name[0]);
    fprintf(f, " (output %d), 2 = ", mr->o[0]);
    html_esc(f, mr->class_name[1]);
    fprintf(f, " (output %d); %d images; %.0f s.</p>\n<p>Support models:</p><ul>\n", mr->o[1], mr->nimages,
            mr->seconds);
    for (int i = 0; i < o->nalphas; i++) {
        fprintf(f, "<li>&alpha; = %g: %s, final MSE %.4g, <code>", (double)o->alphas[i],
                mr->support_trained[i] ? "trained" : "reused from the cache", (double)mr->support_loss[i]);
        html_esc(f, mr->support_path[i]);
        fprintf(f, "</code></li>\n");
    }
    fprintf(f, "</ul>\n");
    if (mr->fig5_cols > 0) {
        fprintf(f, "<h3>Figure 5: original and GAD maps</h3>\n<p>Each method's original map, then its GAD map (the "
                   "original's importance where the pixel is present in every map), for the image's own class, on "
                   "the same colour scale (Captum's 98%% normalisation of the original map).</p>\n"
                   "<table class=\"f\"><tr><th></th>");
        for (int col = 0; col < mr->fig5_cols; col++) {
            const GadImageResult *im = &mr->img[mr->fig5_img[col]];
            int pred = im->out[1] > im->out[0];
            fprintf(f, "<th>#%d ", im->index);
            html_esc(f, mr->class_name[im->cls]);
            fprintf(f, "<br><small>predicted ");
            html_esc(f, mr->class_name[pred]);
            fprintf(f, "</small></th>");
        }
        fprintf(f, "</tr>\n<tr><td>input</td>");
        for (int col = 0; col < mr->fig5_cols; col++) {
            gad_fig_name(rel, sizeof rel, mr->name, "input", ATTR_SALIENCY, col);
            fprintf(f, "<td><img src=\"%s\" alt=\"input\"></td>", rel);
        }
        fprintf(f, "</tr>\n");
        for (int m = 0; m < o->nmethods; m++)
            for (int kind = 0; kind < 2; kind++) {
                fprintf(f, "<tr%s><td>%s<br>%s</td>", kind ? " class=\"ours\"" : "", long_name(o->methods[m]),
                        kind ? "GAD" : "original");
                for (int col = 0; col < mr->fig5_cols; col++) {
                    gad_fig_name(rel, sizeof rel, mr->name, kind ? "gad" : "orig", o->methods[m], col);
                    fprintf(f, "<td><img src=\"%s\" alt=\"map\"></td>", rel);
                }
                fprintf(f, "</tr>\n");
            }
        gad_fig_name(rel, sizeof rel, mr->name, "fig5", ATTR_SALIENCY, 0);
        fprintf(f, "</table>\n<p>The whole grid as one picture: <a href=\"%s\">%s</a>.</p>\n", rel, rel);
    }
    if (mr->fig6_cols > 0) {
        fprintf(f, "<h3>Figure 6: hulls of the least activated images</h3>\n<p>The %d least activated images of each "
                   "class (the original model's output for the image's own class), with the convex hull of the "
                   "original map's most important pixels in <span style=\"color:#dc1e1e\">red</span> and of the GAD "
                   "map's in <span style=\"color:#14be28\">green</span>.</p>\n<table class=\"f\"><tr><th></th>",
                o->fig_least);
        for (int col = 0; col < mr->fig6_cols; col++) {
            const GadImageResult *im = &mr->img[mr->fig6_img[col]];
            fprintf(f, "<th>#%d ", im->index);
            html_esc(f, mr->class_name[im->cls]);
            fprintf(f, "<br><small>output %.3g</small></th>", (double)im->out[im->cls]);
        }
        fprintf(f, "</tr>\n");
        for (int m = 0; m < o->nmethods; m++) {
            fprintf(f, "<tr><td>%s</td>", long_name(o->methods[m]));
            for (int col = 0; col < mr->fig6_cols; col++) {
                gad_fig_name(rel, sizeof rel, mr->name, "hull", o->methods[m], col);
                fprintf(f, "<td><img src=\"%s\" alt=\"hulls\"></td>", rel);
            }
            fprintf(f, "</tr>\n");
        }
        gad_fig_name(rel, sizeof rel, mr->name, "fig6", ATTR_SALIENCY, 0);
        fprintf(f, "</table>\n<p>The whole grid as one picture: <a href=\"%s\">%s</a>.</p>\n", rel, rel);
    }
}

static int write_html(const GadRunResult *r) {
    const RunOpts *o = r->opts;
    char path[1024];
    snprintf(path, sizeof path, "%s/index.html", o->out_dir);
    AtomicFile af;
    if (afile_open(&af, path) != 0) return -1;
    FILE *f = af.f;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>GAD report</title>\n"
               "<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}"
               "table.t{border-collapse:collapse}table.t td,table.t th{border:1px solid #bbb;padding:2px 8px;"
               "text-align:right}table.t td:first-child,table.t td:nth-child(2){text-align:left}"
               "tr.ours td{background:#eef6ee}table.f td,table.f th{padding:2px;font-size:small;text-align:center}"
               "table.f img{display:block;image-rendering:pixelated}code{font-size:small}</style>\n</head><body>\n"
               "<h1>GAD: Gradient Artificial Distancing</h1>\n<p>Data <code>");
    html_esc(f, o->data);
    fprintf(f, "</code>, classes <code>");
    html_esc(f, o->classes ? o->classes : "(all)");
    fprintf(f, "</code>. Support models: &alpha; &isin; {");
    for (int i = 0; i < o->nalphas; i++) fprintf(f, "%s%g", i ? ", " : "", (double)o->alphas[i]);
    fprintf(f, "}, %d epochs, Adam, learning rate %g, batch %d, MSE on the distanced logits, batch norm and dropout "
               "in %s mode. ",
            o->epochs, (double)o->lr, o->batch, o->train_mode ? "train" : "eval");
    if (o->present.rule == PRESENT_FRAC)
        fprintf(f, "A pixel is present in a map when its importance (|channel sum|) reaches %g%% of the map's "
                   "maximum. ",
                100 * (double)o->present.value);
    else
        fprintf(f, "A pixel is present in a map when it is among the top %g%% of the map's non-zero pixels "
                   "(with the same fraction for the hull points, the GAD hull can never be larger). ",
                100 * (double)o->present.value);
    fprintf(f, "Hulls enclose the top %g%% of a map's non-zero pixels (pixel centres); areas are %s. RS occludes by "
               "%s. Integrated Gradients with %d steps. Total time %.0f s.</p>\n",
            100 * (double)o->hull_keep,
            o->rc_area == RC_AREA_POLYGON ? "polygon areas (shoelace)" : "pixel counts inside or on the hull",
            o->occlude_black ? "the black image (x(1-M) + bM)" : "x&middot;(1&minus;M)", o->ig_steps, r->seconds);
    fprintf(f, "<p>Files: <a href=\"table1.csv\">table1.csv</a>, <a href=\"table2.csv\">table2.csv</a>, "
               "<a href=\"results.json\">results.json</a> (every per-image number).</p>\n");
    html_tables(f, r);
    for (int k = 0; k < r->nmodels; k++) html_model(f, r, &r->model[k]);
    fprintf(f, "</body></html>\n");
    return afile_commit(&af);
}

int gad_write_report(const GadRunResult *r) {
    if (write_csv(r, 1) != 0 || write_csv(r, 2) != 0 || write_json(r) != 0 || write_html(r) != 0) return -1;
    return 0;
}
