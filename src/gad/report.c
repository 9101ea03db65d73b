/* report: what a GAD run leaves behind: Tables 1 and 2 in the terminal (laid out as
 * in the paper), table1.csv, table2.csv, results.json (every per-image number),
 * the figure grids (Fig. 5 maps, Fig. 6 hulls) and index.html, a static page that
 * shows it all offline (no script, images referenced relatively). Every file is
 * written atomically.
 * Not for: computing anything (run.c), drawing figures (gad/figures.h). */
#include "gad/run.h"
#include "gad.h" /* GAD_VERSION */
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

/* ---- figures and phases ---- */

const char *gad_phase_name(int phase) {
    static const char *s[GAD_NPHASES] = {"model, data and outputs", "original maps", "training support models",
                                         "support models' maps", "GAD maps, hulls, RC, RS", "faithfulness curves",
                                         "Figures 5 and 6", "report: steps, distancing, pictures"};
    return phase >= 0 && phase < GAD_NPHASES ? s[phase] : "?";
}

void gad_fig_name(char *buf, size_t len, const char *model, const char *kind) {
    snprintf(buf, len, "fig/%s/%s.png", model, kind);
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

/* Table 1's rows: the two columns per class, then what they leave out or owe to
 * the rules. */
enum { T1_ORIG, T1_GAD, T1_FORCED, T1_TIE, T1_EMPTY, T1_NORC, T1_NROWS };
static int t1_value(const GadModelResult *mr, AttrMethod am, int a, int row) {
    const GadRcTally *t = &mr->rc[am][a];
    int v[T1_NROWS] = {t->orig, t->gad, t->forced, t->tie, t->empty, t->undefined};
    return v[row];
}

static void print_table1(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    int nm = o->nmethods;
    static const char *lab[T1_NROWS] = {"Orig.%d", "GAD %d (ours)", "forced %d", "ties %d (RC=1)", "empty GAD %d",
                                        "no RC %d"};
    fprintf(f, "\nTable 1: images where each visualization has the smaller hull area\n"
               "         (RC = A(CH_GAD)/A(CH_orig); RC < 1 counts for GAD, RC >= 1 for the original)\n"
               "         forced: RC <= 1 whatever the model (the GAD hull points are among the original's),\n"
               "         in GAD or, when RC = 1, in Orig.; ties: RC = 1, in Orig.; empty GAD: no pixel\n"
               "         present in every map, %s; no RC: the original's hull has no area,\n"
               "         in neither column\n",
            o->count_empty ? "in GAD (RC = 0)" : "in neither column");
    table_head(f, o);
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        for (int a = 0; a < 2; a++)  /* the paper's rows: Orig.1, GAD 1, Orig.2, GAD 2 */
            for (int row = T1_ORIG; row <= T1_GAD; row++) {
                row_label(f, a == 0 && row == T1_ORIG ? mr->name : "", lab[row], a);
                for (int m = 0; m < nm; m++) fprintf(f, " %8d", t1_value(mr, o->methods[m], a, row));
                fputc('\n', f);
            }
        for (int row = T1_FORCED; row < T1_NROWS; row++) {
            int any = row == T1_FORCED;  /* the others only when they happen */
            for (int a = 0; a < 2; a++)
                for (int m = 0; m < nm; m++) any |= t1_value(mr, o->methods[m], a, row) > 0;
            for (int a = 0; a < 2 && any; a++) {
                row_label(f, "", lab[row], a);
                for (int m = 0; m < nm; m++) fprintf(f, " %8d", t1_value(mr, o->methods[m], a, row));
                fputc('\n', f);
            }
        }
        char names[64] = "";
        int nstruct = 0;
        row_label(f, "", "structural", 0);
        for (int m = 0; m < nm; m++) {
            int st = gad_rc_structural(mr->rc[o->methods[m]], 2);
            fprintf(f, " %8s", st ? "yes" : "-");
            if (st) {
                size_t l = strlen(names);
                snprintf(names + l, sizeof names - l, "%s%s", nstruct++ ? ", " : "", short_name(o->methods[m]));
            }
        }
        fprintf(f, "\n%-10s class 1 = %s, class 2 = %s; %d images\n", "", mr->class_name[0], mr->class_name[1],
                mr->nimages);
        if (nstruct)
            fprintf(f, "%-10s %s: structural: every counted image was forced; says nothing about the model\n", "",
                    names);
        rule(f, nm);
    }
}

/* Table 2's mean rows: Sup., GAD and the control per class. */
static const GadRsMean *t2_mean(const GadModelResult *mr, AttrMethod am, int a, int row) {
    return row == 0 ? &mr->rs_sup[am][a] : row == 1 ? &mr->rs_gad[am][a] : &mr->rs_ctl[am][a];
}

/* The number of sign tests in the paired table (for Bonferroni's threshold). */
static int n_tests(const GadRunResult *r) {
    int n = 0;
    for (int k = 0; k < r->nmodels; k++)
        for (int m = 0; m < r->opts->nmethods; m++)
            for (int a = 0; a < 2; a++) {
                AttrMethod am = r->opts->methods[m];
                n += !isnan(r->model[k].vs_sup[am][a].p) + !isnan(r->model[k].vs_ctl[am][a].p);
            }
    return n;
}

static void print_table2(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    int nm = o->nmethods, ctl = o->control_draws > 0;
    static const char *lab[3] = {"Sup.%d", "GAD %d (ours)", "control %d"}, *elab[3] = {"empty Sup.%d",
                                                                                       "empty GAD %d", ""};
    fprintf(f, "\nTable 2: mean RS = |N_a(I) - N_a(I*(1-M))| / sum(M) on the original model, values x 10^2\n"
               "         (Sup. = M_orig - M_GAD, GAD = M_GAD");
    if (ctl)
        fprintf(f, "; control = a region of M_GAD's size drawn at random\n         inside M_orig OR M_GAD, "
                   "the mean of %d draws per image",
                o->control_draws);
    fprintf(f, ")\n");
    table_head(f, o);
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        for (int a = 0; a < 2; a++)
            for (int row = 0; row < 2 + ctl; row++) {
                row_label(f, a == 0 && row == 0 ? mr->name : "", lab[row], a);
                for (int m = 0; m < nm; m++) {
                    double v = gad_rs_mean(t2_mean(mr, o->methods[m], a, row));
                    if (isnan(v)) fprintf(f, " %8s", "-");
                    else fprintf(f, " %8.4f", 100 * v);
                }
                fputc('\n', f);
            }
        for (int row = 0; row < 2; row++) {
            int any = 0;
            for (int a = 0; a < 2; a++)
                for (int m = 0; m < nm; m++) any |= t2_mean(mr, o->methods[m], a, row)->empty > 0;
            for (int a = 0; a < 2 && any; a++) {
                row_label(f, "", elab[row], a);
                for (int m = 0; m < nm; m++) fprintf(f, " %8d", t2_mean(mr, o->methods[m], a, row)->empty);
                fputc('\n', f);
            }
        }
        rule(f, nm);
    }
}

/* The paired comparisons behind Table 2: per image, is RS(GAD) the larger? */
static void print_table2_paired(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    int nm = o->nmethods, nt = n_tests(r);
    double thr = nt > 0 ? 0.05 / nt : 0;
    fprintf(f, "\nTable 2, paired over images: %% of images where RS(GAD) is the larger, the median of\n"
               "         RS(GAD) / RS(other), and the two-sided sign test's p (* below 0.05/%d: Bonferroni\n"
               "         over the %d tests here)\n",
            nt, nt);
    table_head(f, o);
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        for (int a = 0; a < 2; a++)
            for (int cmp = 0; cmp < 1 + (o->control_draws > 0); cmp++) {
                static const char *lab[2][3] = {{"GAD>Sup. %d", "  median ratio", "  sign test p"},
                                                {"GAD>control %d", "  median ratio", "  sign test p"}};
                for (int row = 0; row < 3; row++) {
                    row_label(f, a == 0 && cmp == 0 && row == 0 ? mr->name : "", lab[cmp][row], a);
                    for (int m = 0; m < nm; m++) {
                        const GadPaired *pr = cmp == 0 ? &mr->vs_sup[o->methods[m]][a] : &mr->vs_ctl[o->methods[m]][a];
                        if (pr->n == 0) fprintf(f, " %8s", "-");
                        else if (row == 0) fprintf(f, " %7.0f%%", 100.0 * pr->wins / pr->n);
                        else if (row == 1) fprintf(f, " %8.3g", pr->median_ratio);
                        else if (isnan(pr->p)) fprintf(f, " %8s", "- ");
                        else fprintf(f, " %7.1e%c", pr->p, pr->p < thr ? '*' : ' ');
                    }
                    fputc('\n', f);
                }
            }
        rule(f, nm);
    }
}

static const char *dir_name(int d) { return d == 0 ? "deletion" : "insertion"; }

/* The curves' rows per direction: mean AUCs, then per image how often the GAD
 * map's curve is the better one, against the original map and against the
 * original cut to the GAD map's size. */
enum { CV_ORIG, CV_TOPN, CV_GAD, CV_RANDOM, CV_VS_ORIG, CV_P_ORIG, CV_VS_TOPN, CV_P_TOPN, CV_NROWS };
static const char *cv_label[CV_NROWS] = {"%s orig.", "%s top-n", "%s GAD", "%s random",
                                         "  GAD > orig.", "    sign test p", "  GAD > top-n", "    sign test p"};

/* Row `row` of method slot m, direction d: 0 and the value, or 1 with *pr set for
 * a share (even rows from CV_VS_ORIG) or a p (odd ones), or 2 for none. */
static int cv_value(const GadModelResult *mr, int nm, int m, int d, int row, double *v, const GadPaired **pr) {
    static const int kind[4] = {CURVE_ORIG, CURVE_TOPN, CURVE_GAD, -1};
    if (row <= CV_RANDOM) {
        *v = mr->auc_mean[row == CV_RANDOM ? GAD_CURVE_RANDOM(nm) : GAD_CURVE(m, kind[row])][d];
        return 0;
    }
    *pr = &mr->auc_vs[m][row >= CV_VS_TOPN][d];
    return (*pr)->n > 0 ? 1 : 2;
}

static void print_curves(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    int nm = o->nmethods;
    if (o->curves == 0) return;
    fprintf(f, "\nFaithfulness (beyond the paper): area under the curve of the target logit as a map's pixels\n"
               "         are removed (deletion: lower is better) or restored (insertion: higher is better) in\n"
               "         its order, %d steps, each image's own class. top-n: the original map cut to its n most\n"
               "         important pixels, n the GAD map's size. Ties (the zeros of sparse maps) and the random\n"
               "         row follow one random order per image. GAD > X: %% of images where the GAD map's curve\n"
               "         is the better; p: sign test\n",
            o->curve_steps);
    table_head(f, o);
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        for (int d = 0; d < o->curves; d++)
            for (int row = 0; row < CV_NROWS; row++) {
                char l[32];
                snprintf(l, sizeof l, cv_label[row], dir_name(d));
                fprintf(f, "%-10.10s %-16s", d == 0 && row == 0 ? mr->name : "", l);
                for (int m = 0; m < nm; m++) {
                    double v;
                    const GadPaired *pr;
                    int t = cv_value(mr, nm, m, d, row, &v, &pr);
                    if (t == 0) fprintf(f, " %8.4f", v);
                    else if (t == 2) fprintf(f, " %8s", "-");
                    else if ((row - CV_VS_ORIG) % 2 == 0) fprintf(f, " %7.0f%%", 100.0 * pr->wins / pr->n);
                    else if (isnan(pr->p)) fprintf(f, " %8s", "-");
                    else fprintf(f, " %8.1e", pr->p);
                }
                fputc('\n', f);
            }
        rule(f, nm);
    }
}

void gad_print_tables(FILE *f, const GadRunResult *r) {
    print_table1(f, r);
    print_table2(f, r);
    print_table2_paired(f, r);
    print_curves(f, r);
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

/* ",pairs,wins,losses,median_ratio,p" */
static void csv_paired(FILE *f, const GadPaired *p) {
    fprintf(f, ",%d,%d,%d,", p->n, p->wins, p->losses);
    csv_num(f, p->median_ratio);
    fputc(',', f);
    csv_num(f, p->p);
}

static int write_csv(const GadRunResult *r, int which) {
    const RunOpts *o = r->opts;
    char path[1024];
    snprintf(path, sizeof path, "%s/table%d.csv", o->out_dir, which);
    AtomicFile af;
    if (afile_open(&af, path) != 0) return -1;
    FILE *f = af.f;
    if (which == 1)
        fprintf(f, "model,class,class_name,method,orig,gad,ties,forced,empty_left_out,no_rc,gad_map_empty,images,"
                   "structural\n");
    else
        fprintf(f, "model,class,class_name,method,rs_sup_mean,rs_gad_mean,rs_control_mean,n_sup,n_gad,n_control,"
                   "empty_sup,empty_gad,pairs_sup,gad_gt_sup,gad_lt_sup,median_ratio_sup,p_sign_sup,pairs_control,"
                   "gad_gt_control,gad_lt_control,median_ratio_control,p_sign_control\n");
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
                    fprintf(f, "%d,%d,%d,%d,%d,%d,%d,%d,%d\n", t->orig, t->gad, t->tie, t->forced, t->empty,
                            t->undefined, mr->gad_empty[am][a], mr->nimages, gad_rc_structural(mr->rc[am], 2));
                } else {
                    const GadRsMean *s = &mr->rs_sup[am][a], *g = &mr->rs_gad[am][a], *c = &mr->rs_ctl[am][a];
                    csv_num(f, gad_rs_mean(s));
                    fputc(',', f);
                    csv_num(f, gad_rs_mean(g));
                    fputc(',', f);
                    csv_num(f, gad_rs_mean(c));
                    fprintf(f, ",%d,%d,%d,%d,%d", s->n, g->n, c->n, s->empty, g->empty);
                    csv_paired(f, &mr->vs_sup[am][a]);
                    csv_paired(f, &mr->vs_ctl[am][a]);
                    fputc('\n', f);
                }
            }
    }
    return afile_commit(&af);
}

/* curves.csv: per model, method and direction the mean AUCs and the paired tests. */
static int write_curves_csv(const GadRunResult *r) {
    const RunOpts *o = r->opts;
    int nm = o->nmethods;
    char path[1024];
    snprintf(path, sizeof path, "%s/curves.csv", o->out_dir);
    AtomicFile af;
    if (afile_open(&af, path) != 0) return -1;
    FILE *f = af.f;
    fprintf(f, "model,method,curve,auc_orig,auc_topn,auc_gad,auc_random,images,gad_better_than_orig,"
               "gad_worse_than_orig,p_sign_orig,gad_better_than_topn,gad_worse_than_topn,p_sign_topn\n");
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        for (int m = 0; m < nm; m++)
            for (int d = 0; d < o->curves; d++) {
                csv_str(f, mr->name);
                fprintf(f, ",%s,%s", attr_method_name(o->methods[m]), dir_name(d));
                for (int row = CV_ORIG; row <= CV_RANDOM; row++) {
                    double v;
                    const GadPaired *pr;
                    cv_value(mr, nm, m, d, row, &v, &pr);
                    fputc(',', f);
                    csv_num(f, v);
                }
                fprintf(f, ",%d", mr->auc_vs[m][0][d].n);
                for (int vs = 0; vs < 2; vs++) {
                    const GadPaired *p = &mr->auc_vs[m][vs][d];
                    fprintf(f, ",%d,%d,", p->wins, p->losses);
                    csv_num(f, p->p);
                }
                fputc('\n', f);
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

/* "name":{"pairs":..,"gad_larger":..,"gad_smaller":..,"median_ratio":..,"p_sign":..} */
static void jpaired(FILE *f, const char *name, const GadPaired *p) {
    jkey(f, name);
    fprintf(f, "{\"pairs\":%d,\"gad_larger\":%d,\"gad_smaller\":%d,\"median_ratio\":", p->n, p->wins, p->losses);
    json_write_number(f, p->median_ratio);
    fprintf(f, ",\"p_sign\":");
    json_write_number(f, p->p);
    fputc('}', f);
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

static const char *hull_of_name(HullOf h) {
    return h == HULL_OF_IMAGE ? "image" : h == HULL_OF_NONZERO ? "nonzero" : "present";
}

static const char *rc_count_name(RcCount k) {
    static const char *s[] = {"gad", "orig", "empty", "no_rc"};
    return s[k];
}

static const char *present_name(const RunOpts *o) { return o->present.rule == PRESENT_FRAC ? "frac" : "top"; }

static void json_settings(FILE *f, const RunOpts *o) {
    fprintf(f, "\"settings\":{");
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
    fprintf(f, "},\"hull_of\":\"%s\",\"hull_keep\":", hull_of_name(o->hull_of));
    jfloat(f, o->hull_keep);
    fprintf(f, ",\"rc_area\":\"%s\",\"empty_gad\":\"%s\",\"occlusion\":\"%s\",\"control_draws\":%d,"
               "\"curves\":\"%s\",\"curve_steps\":%d,\"ig_steps\":%d",
            o->rc_area == RC_AREA_POLYGON ? "polygon" : "pixels", o->count_empty ? "gad" : "left_out",
            o->occlude_black ? "black" : "zero", o->control_draws,
            o->curves == 0 ? "off" : o->curves == 1 ? "deletion" : "both", o->curve_steps, o->ig_steps);
    /* what the data's preparation needs (gad_run_data): 0 / null = from the weights */
    fprintf(f, ",\"size\":%d,\"val_frac\":", o->size);
    if (o->val_frac < 0) fprintf(f, "null");
    else jfloat(f, o->val_frac);
    fprintf(f, ",\"images_list\":"); /* null: the held-out part */
    if (o->images_list) json_write_string(f, o->images_list);
    else fprintf(f, "null");
    fputc('}', f);
}

/* The model's identity, classes and support models. */
static void json_model_head(FILE *f, const RunOpts *o, const GadModelResult *mr) {
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
    fputc(']', f);
}

static void json_tables(FILE *f, const RunOpts *o, const GadModelResult *mr) {
    fprintf(f, "\"table1\":[");
    for (int a = 0, first = 1; a < 2; a++)
        for (int m = 0; m < o->nmethods; m++, first = 0) {
            AttrMethod am = o->methods[m];
            const GadRcTally *t = &mr->rc[am][a];
            fprintf(f,
                    "%s{\"class\":%d,\"method\":\"%s\",\"orig\":%d,\"gad\":%d,\"ties\":%d,\"forced\":%d,"
                    "\"empty_left_out\":%d,\"no_rc\":%d,\"gad_map_empty\":%d,\"structural\":%s}",
                    first ? "" : ",", a + 1, attr_method_name(am), t->orig, t->gad, t->tie, t->forced, t->empty,
                    t->undefined, mr->gad_empty[am][a], gad_rc_structural(mr->rc[am], 2) ? "true" : "false");
        }
    fprintf(f, "],\n\"table2\":[");
    for (int a = 0, first = 1; a < 2; a++)
        for (int m = 0; m < o->nmethods; m++, first = 0) {
            AttrMethod am = o->methods[m];
            const GadRsMean *s = &mr->rs_sup[am][a], *g = &mr->rs_gad[am][a];
            fprintf(f, "%s{\"class\":%d,\"method\":\"%s\",\"rs_sup_mean\":", first ? "" : ",", a + 1,
                    attr_method_name(am));
            json_write_number(f, gad_rs_mean(s));
            fprintf(f, ",\"rs_gad_mean\":");
            json_write_number(f, gad_rs_mean(g));
            fprintf(f, ",\"rs_control_mean\":");
            json_write_number(f, gad_rs_mean(&mr->rs_ctl[am][a]));
            fprintf(f, ",\"n_sup\":%d,\"n_gad\":%d,\"n_control\":%d,\"empty_sup\":%d,\"empty_gad\":%d,", s->n, g->n,
                    mr->rs_ctl[am][a].n, s->empty, g->empty);
            jpaired(f, "gad_vs_sup", &mr->vs_sup[am][a]);
            fputc(',', f);
            jpaired(f, "gad_vs_control", &mr->vs_ctl[am][a]);
            fputc('}', f);
        }
    fputc(']', f);
}

static void jarray(FILE *f, const double *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputc(',', f);
        json_write_number(f, v[i]);
    }
    fputc(']', f);
}

/* "curves": per method and direction the mean AUCs, the paired tests and the mean
 * curves; the random order's once. */
static void json_curves(FILE *f, const RunOpts *o, const GadModelResult *mr) {
    int nm = o->nmethods, nd = o->curves, len = o->curve_steps + 1;
    static const char *kname[CURVES_PER_METHOD] = {"orig", "gad", "topn"};
    fprintf(f, "\"curves\":{\"steps\":%d,\"target\":\"own class\",\"methods\":[", o->curve_steps);
    for (int m = 0; m < nm; m++) {
        fprintf(f, "%s{\"method\":\"%s\"", m ? "," : "", attr_method_name(o->methods[m]));
        for (int d = 0; d < nd; d++) {
            fprintf(f, ",\"%s\":{", dir_name(d));
            for (int kind = 0; kind < CURVES_PER_METHOD; kind++) {
                fprintf(f, "%s\"auc_%s\":", kind ? "," : "", kname[kind]);
                json_write_number(f, mr->auc_mean[GAD_CURVE(m, kind)][d]);
            }
            for (int vs = 0; vs < 2; vs++) {
                const GadPaired *p = &mr->auc_vs[m][vs][d];
                fprintf(f, ",\"gad_vs_%s\":{\"images\":%d,\"gad_better\":%d,\"gad_worse\":%d,\"p_sign\":",
                        vs ? "topn" : "orig", p->n, p->wins, p->losses);
                json_write_number(f, p->p);
                fputc('}', f);
            }
            for (int kind = 0; kind < CURVES_PER_METHOD; kind++) {
                fprintf(f, ",\"mean_%s\":", kname[kind]);
                jarray(f, mr->curve_mean + ((size_t)GAD_CURVE(m, kind) * nd + d) * len, len);
            }
            fputc('}', f);
        }
        fputc('}', f);
    }
    fprintf(f, "],\"random\":{");
    for (int d = 0; d < nd; d++) {
        fprintf(f, "%s\"%s\":{\"auc\":", d ? "," : "", dir_name(d));
        json_write_number(f, mr->auc_mean[GAD_CURVE_RANDOM(nm)][d]);
        fprintf(f, ",\"mean\":");
        jarray(f, mr->curve_mean + ((size_t)GAD_CURVE_RANDOM(nm) * nd + d) * len, len);
        fputc('}', f);
    }
    fprintf(f, "}}");
}

/* One image: its cells, and its curves' AUCs. */
static void json_image(FILE *f, const RunOpts *o, const GadImageResult *im) {
    fprintf(f, "{\"index\":%d,\"path\":", im->index);
    json_write_string(f, im->name ? im->name : "");
    fprintf(f, ",\"class\":%d,\"outputs\":[", im->cls + 1);
    jfloat(f, im->out[0]);
    fputc(',', f);
    jfloat(f, im->out[1]);
    fprintf(f, "],\"cells\":[");
    for (int m = 0; m < o->nmethods; m++)
        for (int a = 0; a < 2; a++) {
            const GadCell *c = &im->cell[m * 2 + a];
            fprintf(f, "%s{\"method\":\"%s\",\"class\":%d,\"orig\":", m + a ? "," : "", attr_method_name(o->methods[m]),
                    a + 1);
            jhull(f, &c->orig);
            fprintf(f, ",\"gad\":");
            jhull(f, &c->gad);
            fprintf(f, ",\"gad_nonzero\":%d,\"sup_pixels\":%d,\"rc\":", c->gad_nnz, c->sup_pixels);
            json_write_number(f, c->rc);
            fprintf(f, ",\"table1\":\"%s\",\"forced\":%s", rc_count_name(gad_rc_count(c->rc, c->gad_nnz == 0, o->count_empty)),
                    c->forced ? "true" : "false");
            fprintf(f, ",\"rs_gad\":");
            json_write_number(f, c->rs_gad);
            fprintf(f, ",\"rs_sup\":");
            json_write_number(f, c->rs_sup);
            fprintf(f, ",\"rs_control\":");
            json_write_number(f, c->rs_ctl);
            fputc('}', f);
        }
    fputc(']', f);
    if (im->curve) {  /* AUC of each curve: [orig, GAD, top-n] per method then random, per direction */
        int nc = GAD_NCURVES(o->nmethods), nd = o->curves, len = o->curve_steps + 1;
        for (int d = 0; d < nd; d++) {
            fprintf(f, ",\"auc_%s\":[", dir_name(d));
            for (int k = 0; k < nc; k++) {
                if (k) fputc(',', f);
                json_write_number(f, gad_auc(im->curve + ((size_t)k * nd + d) * len, o->curve_steps));
            }
            fputc(']', f);
        }
    }
    fputc('}', f);
}

static int write_json(const GadRunResult *r) {
    const RunOpts *o = r->opts;
    char path[1024];
    snprintf(path, sizeof path, "%s/results.json", o->out_dir);
    AtomicFile af;
    if (afile_open(&af, path) != 0) return -1;
    FILE *f = af.f;
    fprintf(f, "{\n\"gad_version\":\"" GAD_VERSION "\",\n");
    json_settings(f, o);
    fprintf(f, ",\n\"seconds\":");
    json_write_number(f, r->seconds);
    fprintf(f, ",\n\"models\":[");
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        fprintf(f, "%s\n{", k ? "," : "");
        json_model_head(f, o, mr);
        fprintf(f, ",\n");
        json_tables(f, o, mr);
        if (o->curves) {
            fprintf(f, ",\n");
            json_curves(f, o, mr);
        }
        fprintf(f, ",\n\"images\":[");
        for (int i = 0; i < mr->nimages; i++) {
            fprintf(f, "%s\n", i ? "," : "");
            json_image(f, o, &mr->img[i]);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n]}\n");
    return afile_commit(&af);
}

/* ---- HTML ---- */

void gad_html_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* The head of an HTML table: model, row label, the methods. */
static void html_table_head(FILE *f, const RunOpts *o) {
    fprintf(f, "<div class=\"scroll\"><table class=\"t\"><tr><th>model</th><th></th>");
    for (int m = 0; m < o->nmethods; m++)
        fprintf(f, "<th><abbr title=\"%s\">%s</abbr></th>", long_name(o->methods[m]), short_name(o->methods[m]));
    fprintf(f, "</tr>\n");
}

/* The first cells of a row: the model (rowspan nrows) on its first row, the label. */
static void html_row_start(FILE *f, const GadModelResult *mr, int first, int nrows, const char *fmt, int a, int ours,
                           int class_name) {
    fprintf(f, "<tr%s>", ours ? " class=\"ours\"" : "");
    if (first) {
        fprintf(f, "<td class=\"l\" rowspan=\"%d\">", nrows);
        gad_html_esc(f, mr->name);
        if (strcmp(mr->name, mr->arch)) fprintf(f, "<br><small>%s</small>", mr->arch);
        fprintf(f, "</td>");
    }
    fprintf(f, "<td class=\"l\">");
    fprintf(f, fmt, a + 1);
    if (class_name) {
        fprintf(f, " <small>(");
        gad_html_esc(f, mr->class_name[a]);
        fprintf(f, ")</small>");
    }
    fprintf(f, "</td>");
}

/* Table 1 on this run, in words: per model, GAD's share of the counted cells, how
 * many of those the rules forced, GAD's share among the cells not forced, and the
 * structural columns. */
static void html_table1_reading(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    fprintf(f, "<p class=\"reading\"><b>On this run:</b> ");
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        int gad = 0, cnt = 0, forced = 0, forced_gad = 0, left = 0, nst = 0;
        char st[128] = "";
        for (int i = 0; i < mr->nimages; i++)
            for (int q = 0; q < 2 * o->nmethods; q++) {
                const GadCell *c = &mr->img[i].cell[q];
                RcCount rc = gad_rc_count(c->rc, c->gad_nnz == 0, o->count_empty);
                if (rc != RC_COUNT_GAD && rc != RC_COUNT_ORIG) {
                    left++;
                    continue;
                }
                cnt++;
                gad += rc == RC_COUNT_GAD;
                forced += c->forced != 0;
                forced_gad += c->forced && rc == RC_COUNT_GAD;
            }
        for (int m = 0; m < o->nmethods; m++)
            if (gad_rc_structural(mr->rc[o->methods[m]], 2)) {
                size_t l = strlen(st);
                snprintf(st + l, sizeof st - l, "%s%s", nst++ ? ", " : "", short_name(o->methods[m]));
            }
        fprintf(f, "%s%s: GAD's hull is the smaller for %d of %d counted cells (image &times; class &times; method, "
                   "%.0f%%)",
                k ? "<br>" : "", mr->name, gad, cnt, cnt ? 100.0 * gad / cnt : 0.0);
        if (nst == o->nmethods) fprintf(f, "; every column is structural, so Table 1 says nothing about this model");
        else {
            if (forced_gad)
                fprintf(f, ", but the rules forced %d of those %d: they are not a finding; in the %d cells not forced, "
                           "GAD is the smaller for %d (%.0f%%)",
                        forced_gad, gad, cnt - forced, gad - forced_gad,
                        cnt > forced ? 100.0 * (gad - forced_gad) / (cnt - forced) : 0.0);
            if (nst) fprintf(f, "; %s %s structural (forced in every counted image)", st, nst > 1 ? "are" : "is");
            else fprintf(f, "; no column is structural");
        }
        if (left) fprintf(f, "; %d cells left out (empty GAD maps, degenerate original hulls)", left);
        fputc('.', f);
    }
    fprintf(f, "</p>\n");
}

void gad_html_table1(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    int nm = o->nmethods;
    static const char *lab[T1_NROWS] = {"Orig.%d", "GAD %d (ours)", "forced %d", "ties %d (RC = 1)",
                                        "empty GAD %d", "no RC %d"};
    fprintf(f, "<h2 id=\"table1\">Table 1: complexity (RC)</h2>\n<p><b>How to read it:</b> a column is a method; "
               "for each model and class, the <i>Orig.</i> and <i>GAD</i> rows count the images whose hull is the "
               "smaller for that visualization (RC &ge; 1 or RC &lt; 1), as in the paper's Table 1; the rows below "
               "say how many of those counts the rules forced and which images were left out (empty GAD maps %s, "
               "degenerate original hulls). A <b>structural</b> column was forced in every counted image: it says "
               "nothing about the model.</p>\n",
            o->count_empty ? "are counted for GAD" : "in neither column");
    html_table1_reading(f, r);
    html_table_head(f, o);
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        int nrows = 2 * T1_NROWS + 1, first = 1;
        for (int a = 0; a < 2; a++)
            for (int row = T1_ORIG; row <= T1_GAD; row++) {
                html_row_start(f, mr, first, nrows, lab[row], a, row == T1_GAD, row == T1_ORIG);
                first = 0;
                for (int m = 0; m < nm; m++) fprintf(f, "<td>%d</td>", t1_value(mr, o->methods[m], a, row));
                fprintf(f, "</tr>\n");
            }
        for (int row = T1_FORCED; row < T1_NROWS; row++)
            for (int a = 0; a < 2; a++) {
                html_row_start(f, mr, 0, 0, lab[row], a, 0, 0);
                for (int m = 0; m < nm; m++) fprintf(f, "<td>%d</td>", t1_value(mr, o->methods[m], a, row));
                fprintf(f, "</tr>\n");
            }
        html_row_start(f, mr, 0, 0, "structural", 0, 0, 0);
        for (int m = 0; m < nm; m++)
            fprintf(f, "<td>%s</td>", gad_rc_structural(mr->rc[o->methods[m]], 2) ? "<b>yes</b>" : "no");
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table></div>\n");
}

/* Table 2 on this run, in words: per model and comparison, in how many cells
 * (method x class) GAD's region moved the output more in most images, and in how
 * many the sign test says so (or the opposite) below Bonferroni's threshold. */
static void html_table2_reading(FILE *f, const GadRunResult *r, double thr) {
    const RunOpts *o = r->opts;
    fprintf(f, "<p class=\"reading\"><b>On this run:</b> ");
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        fprintf(f, "%s%s: ", k ? "<br>" : "", mr->name);
        for (int cmp = 0; cmp < 1 + (o->control_draws > 0); cmp++) {
            int cells = 0, more = 0, sig_more = 0, sig_less = 0;
            for (int m = 0; m < o->nmethods; m++)
                for (int a = 0; a < 2; a++) {
                    const GadPaired *p = cmp ? &mr->vs_ctl[o->methods[m]][a] : &mr->vs_sup[o->methods[m]][a];
                    if (p->n == 0) continue;
                    cells++;
                    more += p->wins > p->losses;
                    sig_more += p->p < thr && p->wins > p->losses;
                    sig_less += p->p < thr && p->wins < p->losses;
                }
            fprintf(f, "%sRS(GAD) &gt; RS(%s) in most images for %d of %d cells (method &times; class), "
                       "significantly in %d, significantly the other way in %d",
                    cmp ? "; " : "", cmp ? "control" : "Sup.", more, cells, sig_more, sig_less);
        }
        fputc('.', f);
    }
    fprintf(f, "</p>\n");
}

void gad_html_table2(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    int nm = o->nmethods, ctl = o->control_draws > 0, nt = n_tests(r);
    double thr = nt > 0 ? 0.05 / nt : 0;
    fprintf(f, "<h2 id=\"table2\">Table 2: sensitivity (RS)</h2>\n<p><b>How to read it:</b> a cell is the mean, "
               "over the images, of RS = |N<sub>a</sub>(I) &minus; N<sub>a</sub>(I&middot;(1&minus;M))| / &Sigma;M "
               "&times; 10<sup>2</sup>: how far occluding a region moves the original model's output for class "
               "<i>a</i>, per occluded pixel. <i>GAD</i> occludes GAD's hull, <i>Sup.</i> the rest of the "
               "original's hull (M<sub>orig</sub> &minus; M<sub>GAD</sub>)");
    if (ctl)
        fprintf(f, ", <i>control</i> a compact region of exactly GAD's size drawn at random inside "
                   "M<sub>orig</sub> &cup; M<sub>GAD</sub> (mean of %d draws per image). RS per pixel falls with "
                   "the mask's size, so GAD above Sup. may only mean that GAD's mask is smaller; GAD above the "
                   "control means its region matters more than a region of its size",
                o->control_draws);
    fprintf(f, ". GAD is meant to be the larger. Below the means, per image: the share of images where RS(GAD) is "
               "the larger, the median of RS(GAD)/RS(other), and the two-sided sign test's p (<b>bold</b> below "
               "0.05/%d, Bonferroni over the %d tests). An empty mask gives no RS and is counted apart.</p>\n",
            nt, nt);
    html_table2_reading(f, r, thr);
    html_table_head(f, o);
    static const char *lab[3] = {"Sup.%d", "GAD %d (ours)", "control %d"};
    static const char *plab[2][3] = {{"GAD &gt; Sup. %d", "median ratio", "sign test p"},
                                     {"GAD &gt; control %d", "median ratio", "sign test p"}};
    for (int k = 0; k < r->nmodels; k++) {
        const GadModelResult *mr = &r->model[k];
        int nrows = 2 * (2 + ctl) + 2 * 3 * (1 + ctl) + 4, first = 1;
        for (int a = 0; a < 2; a++)
            for (int row = 0; row < 2 + ctl; row++) {
                html_row_start(f, mr, first, nrows, lab[row], a, row == 1, row == 0);
                first = 0;
                for (int m = 0; m < nm; m++) {
                    double v = gad_rs_mean(t2_mean(mr, o->methods[m], a, row));
                    if (isnan(v)) fprintf(f, "<td>&ndash;</td>");
                    else fprintf(f, "<td>%.4f</td>", 100 * v);
                }
                fprintf(f, "</tr>\n");
            }
        for (int row = 0; row < 2; row++)
            for (int a = 0; a < 2; a++) {
                html_row_start(f, mr, 0, 0, row == 0 ? "empty Sup.%d" : "empty GAD %d", a, 0, 0);
                for (int m = 0; m < nm; m++) fprintf(f, "<td>%d</td>", t2_mean(mr, o->methods[m], a, row)->empty);
                fprintf(f, "</tr>\n");
            }
        for (int a = 0; a < 2; a++)
            for (int cmp = 0; cmp < 1 + ctl; cmp++)
                for (int row = 0; row < 3; row++) {
                    html_row_start(f, mr, 0, 0, plab[cmp][row], a, 0, 0);
                    for (int m = 0; m < nm; m++) {
                        const GadPaired *pr = cmp == 0 ? &mr->vs_sup[o->methods[m]][a] : &mr->vs_ctl[o->methods[m]][a];
                        if (pr->n == 0) fprintf(f, "<td>&ndash;</td>");
                        else if (row == 0) fprintf(f, "<td>%.0f%%</td>", 100.0 * pr->wins / pr->n);
                        else if (row == 1) fprintf(f, "<td>%.3g</td>", pr->median_ratio);
                        else if (isnan(pr->p)) fprintf(f, "<td>&ndash;</td>");
                        else fprintf(f, pr->p < thr ? "<td><b>%.1e</b></td>" : "<td>%.1e</td>", pr->p);
                    }
                    fprintf(f, "</tr>\n");
                }
    }
    fprintf(f, "</table></div>\n");
}

/* One chart of mean curves as inline SVG (no script): cv[0..3] = the original map,
 * its top n, the GAD map, the random order, on the y range [lo, hi]. */
static void svg_chart(FILE *f, const char *title, const double *const *cv, int len, double lo, double hi) {
    static const char *col[4] = {"#dc1e1e", "#e89a3c", "#14be28", "#888888"};
    static const char *dash[4] = {"", " stroke-dasharray=\"4 3\"", "", ""};
    int W = 230, H = 160, L = 44, B = 24, T = 18;
    double span = hi > lo ? hi - lo : 1;
    fprintf(f, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\"><title>", W, H, W, H);
    gad_html_esc(f, title);
    fprintf(f, "</title><text x=\"%d\" y=\"13\" font-size=\"12\">", L);
    gad_html_esc(f, title);
    fprintf(f, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>", L, T,
            W - L - 6, H - T - B);
    fprintf(f, "<text x=\"2\" y=\"%d\" font-size=\"10\">%.3g</text><text x=\"2\" y=\"%d\" font-size=\"10\">%.3g</text>",
            T + 9, hi, H - B, lo);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\">0</text><text x=\"%d\" y=\"%d\" font-size=\"10\">"
               "all pixels</text>",
            L, H - 8, W - 62, H - 8);
    for (int c = 0; c < 4; c++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\"%s stroke-width=\"1.5\" points=\"", col[c], dash[c]);
        for (int s = 0; s < len; s++)
            fprintf(f, "%s%.1f,%.1f", s ? " " : "", L + (double)(W - L - 6) * s / (len - 1),
                    T + (H - T - B) * (hi - cv[c][s]) / span);
        fprintf(f, "\"/>");
    }
    fprintf(f, "</svg>\n");
}

/* The faithfulness section of a model: the table of AUCs and one chart per method
 * and direction, all of a direction on one y range. */
/* The curves on this run, in words: per direction, for how many methods the GAD
 * map's mean AUC beats the original map's and the cut original's. */
static void html_curves_reading(FILE *f, const RunOpts *o, const GadModelResult *mr) {
    int nm = o->nmethods;
    fprintf(f, "<p class=\"reading\"><b>On this run</b> (%s): ", mr->name);
    for (int d = 0; d < o->curves; d++) {
        int vs_orig = 0, vs_topn = 0;
        for (int m = 0; m < nm; m++) {
            double g = mr->auc_mean[GAD_CURVE(m, CURVE_GAD)][d], og = mr->auc_mean[GAD_CURVE(m, CURVE_ORIG)][d];
            double tn = mr->auc_mean[GAD_CURVE(m, CURVE_TOPN)][d];
            vs_orig += d == 0 ? g < og : g > og;
            vs_topn += d == 0 ? g < tn : g > tn;
        }
        fprintf(f, "%s%s: the GAD map's mean AUC is the better for %d of %d methods against the original map, for "
                   "%d against the original cut to the GAD map's size",
                d ? "; " : "", dir_name(d), vs_orig, nm, vs_topn);
    }
    fprintf(f, ".</p>\n");
}

void gad_html_curves(FILE *f, const RunOpts *o, const GadModelResult *mr) {
    int nm = o->nmethods, nc = GAD_NCURVES(nm), nd = o->curves, len = o->curve_steps + 1;
    if (nd == 0) return;
    fprintf(f, "<h3>Faithfulness: deletion%s curves (beyond the paper)</h3>\n<p><b>How to read it:</b> the model's "
               "output for each image's "
               "own class as its pixels are removed (deletion: the faster it falls, the more faithful the map) "
               "%sin the order of a map: the original map (<span style=\"color:#dc1e1e\">red</span>), the original "
               "map cut to its n most important pixels, n the GAD map's size (<span style=\"color:#e89a3c\">orange, "
               "dashed</span>), the GAD map (<span style=\"color:#14be28\">green</span>), a random order (<span "
               "style=\"color:#888\">grey</span>); %d steps, means over the images. Ties, notably the zeros of the "
               "sparse maps, follow the random order. AUC: area under the curve. GAD &gt; X: the share of images "
               "whose GAD curve has the better AUC, with the sign test's p. Against the cut original map, the "
               "question is whether GAD picks better pixels than the original's own top pixels of the same "
               "number.</p>\n",
            nd == 2 ? " and insertion" : "", nd == 2 ? "or restored onto the occlusion baseline (insertion: the faster it rises) " : "",
            o->curve_steps);
    html_curves_reading(f, o, mr);
    fprintf(f, "<div class=\"scroll\"><table class=\"t\"><tr><th></th>");
    for (int m = 0; m < nm; m++)
        fprintf(f, "<th><abbr title=\"%s\">%s</abbr></th>", long_name(o->methods[m]), short_name(o->methods[m]));
    fprintf(f, "</tr>\n");
    for (int d = 0; d < nd; d++)
        for (int row = 0; row < CV_NROWS; row++) {
            fprintf(f, "<tr><td class=\"l\">");
            fprintf(f, cv_label[row], dir_name(d));
            fprintf(f, "</td>");
            for (int m = 0; m < nm; m++) {
                double v;
                const GadPaired *pr;
                int t = cv_value(mr, nm, m, d, row, &v, &pr);
                if (t == 0) fprintf(f, "<td>%.4f</td>", v);
                else if (t == 2) fprintf(f, "<td>&ndash;</td>");
                else if ((row - CV_VS_ORIG) % 2 == 0) fprintf(f, "<td>%.0f%%</td>", 100.0 * pr->wins / pr->n);
                else if (isnan(pr->p)) fprintf(f, "<td>&ndash;</td>");
                else fprintf(f, "<td>%.1e</td>", pr->p);
            }
            fprintf(f, "</tr>\n");
        }
    fprintf(f, "</table></div>\n");
    for (int d = 0; d < nd; d++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int k = 0; k < nc; k++)
            for (int s = 0; s < len; s++) {
                double v = mr->curve_mean[((size_t)k * nd + d) * len + s];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        fprintf(f, "<div class=\"charts\">");
        for (int m = 0; m < nm; m++) {
            const double *cv[4];
            static const int kind[3] = {CURVE_ORIG, CURVE_TOPN, CURVE_GAD};
            for (int c = 0; c < 3; c++) cv[c] = mr->curve_mean + ((size_t)GAD_CURVE(m, kind[c]) * nd + d) * len;
            cv[3] = mr->curve_mean + ((size_t)GAD_CURVE_RANDOM(nm) * nd + d) * len;
            char title[96];
            snprintf(title, sizeof title, "%s, %s", long_name(o->methods[m]), dir_name(d));
            svg_chart(f, title, cv, len, lo, hi);
        }
        fprintf(f, "</div>\n");
    }
}

int gad_write_report(const GadRunResult *r) {
    if (write_csv(r, 1) != 0 || write_csv(r, 2) != 0 || write_json(r) != 0 || gad_write_page(r) != 0) return -1;
    if (r->opts->curves && write_curves_csv(r) != 0) return -1;
    return 0;
}
