/* tests/unit/test_sensitivity.c - calibrated sensitivity: the fit recovers a known map and
 * its leave-one-out check; on the bundled model every analysed loss is there and says where
 * it came from (measured, shared or predicted), the shares add up to the measured group
 * KL, the predictions are the fit's, the weight error is importance-weighted when the
 * model has importance weights; sensitivity.yaml keeps the sources and reads old files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/status.h"
#include "model/imatrix.h"
#include "model/model.h"
#include "profiler/quality.h"
#include "reports/sensitivity_io.h"
#include "search/sensitivity.h"
#include "tests/unit/test.h"

#define TINY "examples/tinyllm/tinyllm.gguf"
#define EVAL "examples/data/kjv-eval.txt"

/* Points of log(kl/n) = a[g] + b[role] log(err), exactly: the fit finds a and b, and every
 * point left out is predicted exactly from the others. */
static int test_calib_fit_exact(void)
{
    enum { G = 6 };
    const int group_role[G] = {MQ_ROLE_ATTN_Q, MQ_ROLE_ATTN_Q, MQ_ROLE_ATTN_Q, MQ_ROLE_FFN_DOWN, MQ_ROLE_FFN_DOWN,
                               MQ_ROLE_OUTPUT};
    const double a_true[G] = {-3.0, -2.2, -4.1, -1.5, -0.7, -2.0};
    double b_true[MQ_ROLE_COUNT];
    b_true[MQ_ROLE_ATTN_Q] = 0.8;
    b_true[MQ_ROLE_FFN_DOWN] = 1.3;
    b_true[MQ_ROLE_OUTPUT] = 0.6;
    const double errs[3] = {2e-2, 3e-3, 4e-5};
    struct srch_calib_point pt[G * 3];
    int n = 0;
    for (int g = 0; g < G; g++)
        for (int k = 0; k < 3; k++) {
            int r = group_role[g], size = 1 + g % 3;
            double e = errs[k] * (1 + 0.1 * g);
            pt[n++] = (struct srch_calib_point){.group = g, .role = r, .n = size, .fmt = MQ_DTYPE_Q4_0 + k, .err = e,
                                                .kl = size * exp(a_true[g] + b_true[r] * log(e))};
        }
    double a[G], b[MQ_ROLE_COUNT];
    T_CHECK(srch_calib_fit(pt, n, -1, G, group_role, a, b) == MQ_OK);
    for (int g = 0; g < G; g++)
        T_CHECK_MSG(fabs(a[g] - a_true[g]) < 1e-9, "group %d: a %g, want %g", g, a[g], a_true[g]);
    for (int g = 0; g < G; g++)
        T_CHECK_MSG(fabs(b[group_role[g]] - b_true[group_role[g]]) < 1e-9, "role %d: b %g", group_role[g],
                    b[group_role[g]]);
    /* a role without points takes the slope pooled over all roles: between the roles' slopes */
    T_CHECK(b[MQ_ROLE_ATTN_V] > 0.6 && b[MQ_ROLE_ATTN_V] < 1.3);
    for (int k = 0; k < n; k++) {
        double p;
        T_CHECK(srch_calib_loo(pt, n, k, G, group_role, &p) == MQ_OK);
        T_CHECK_MSG(fabs(p / pt[k].kl - 1) < 1e-9, "point %d: %g, want %g", k, p, pt[k].kl);
    }
    return T_PASS;
}

/* What the fit does with what it cannot use: points without a positive err or kl are
 * ignored, a group left with no point takes its role's mean intercept, a role whose points
 * have no spread within a group takes the pooled slope, slopes are clamped, and a point
 * whose group has no other point is predicted from its role's other groups. */
static int test_calib_fit_edges(void)
{
    const int group_role[4] = {MQ_ROLE_ATTN_V, MQ_ROLE_ATTN_V, MQ_ROLE_ATTN_V, MQ_ROLE_ATTN_K};
    struct srch_calib_point pt[] = {
        {.group = 0, .role = MQ_ROLE_ATTN_V, .n = 1, .err = 1e-2, .kl = exp(-2.0) * 1e-2},
        {.group = 0, .role = MQ_ROLE_ATTN_V, .n = 1, .err = 1e-4, .kl = exp(-2.0) * 1e-4},
        {.group = 1, .role = MQ_ROLE_ATTN_V, .n = 1, .err = 1e-2, .kl = exp(-4.0) * 1e-2},
        {.group = 1, .role = MQ_ROLE_ATTN_V, .n = 1, .err = 0, .kl = 1},      /* ignored: err 0 */
        {.group = 1, .role = MQ_ROLE_ATTN_V, .n = 1, .err = 1e-3, .kl = -1},  /* ignored: kl < 0 */
        {.group = 3, .role = MQ_ROLE_ATTN_K, .n = 2, .err = 1e-3, .kl = 1e-9}, /* one point: no spread */
    };
    int n = (int)(sizeof(pt) / sizeof(pt[0]));
    double a[4], b[MQ_ROLE_COUNT];
    T_CHECK(srch_calib_fit(pt, n, -1, 4, group_role, a, b) == MQ_OK);
    T_CHECK(fabs(b[MQ_ROLE_ATTN_V] - 1) < 1e-9);
    T_CHECK(fabs(a[0] + 2) < 1e-9 && fabs(a[1] + 4) < 1e-9);
    T_CHECK(fabs(a[2] + 3) < 1e-9);             /* no point: the mean of its role's groups */
    T_CHECK(fabs(b[MQ_ROLE_ATTN_K] - 1) < 1e-9); /* no spread: the pooled slope */
    T_CHECK(fabs(a[3] - (log(1e-9 / 2) - log(1e-3))) < 1e-9);
    double p;
    T_CHECK(srch_calib_loo(pt, n, 2, 4, group_role, &p) == MQ_OK); /* group 1's only usable point */
    T_CHECK_MSG(fabs(p / (exp(-2.0) * 1e-2) - 1) < 1e-9, "%g", p);   /* from group 0, the role's other */
    /* a steep pair of points: the slope stops at 4 */
    struct srch_calib_point steep[] = {
        {.group = 0, .role = MQ_ROLE_OUTPUT, .n = 1, .err = 1e-2, .kl = 1},
        {.group = 0, .role = MQ_ROLE_OUTPUT, .n = 1, .err = 1e-3, .kl = 1e-9},
    };
    const int steep_role[1] = {MQ_ROLE_OUTPUT};
    T_CHECK(srch_calib_fit(steep, 2, -1, 1, steep_role, a, b) == MQ_OK);
    T_CHECK(b[MQ_ROLE_OUTPUT] == 4.0);
    return T_PASS;
}

/* The bundled model in three narrow formats and f16: each group measured at its cheapest,
 * middle and dearest format and f16 once; every analysed loss present with its source; the
 * single-layer groups' measured KL is the measured method's; shares add up to the group's
 * KL; predictions follow the fit; sensitivity.yaml round-trips the sources. */
static int test_sensitivity_calibrated(void)
{
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK && be_open("cpu", NULL, &be) == MQ_OK);
    uint32_t f4 = (1u << MQ_DTYPE_F16) | (1u << MQ_DTYPE_Q8_0) | (1u << MQ_DTYPE_Q5_0) | (1u << MQ_DTYPE_Q4_0);
    struct srch_sens_options o = {.method = SRCH_SENS_CALIBRATED, .formats = f4,
                                  .quality = {.data = EVAL, .ctx = 64, .max_chunks = 1}};
    struct srch_sensitivity *c = NULL, *meas = NULL, *back = NULL;
    T_CHECK(srch_sensitivity_run(m, be, &o, &c) == MQ_OK);
    T_CHECK(c->method == SRCH_SENS_CALIBRATED && !strcmp(c->loss_name, "kl"));
    T_CHECK_MSG(c->n_evaluated + c->n_cached == 3 * c->n_groups + 1, "%d evaluations, %d groups",
                c->n_evaluated + c->n_cached, c->n_groups);
    T_CHECK(c->n_points == 3 * c->n_groups);
    T_CHECK_MSG(isfinite(c->rank_corr) && c->rank_corr > 0.5, "leave-one-out Spearman %g", c->rank_corr);
    T_CHECK(isfinite(c->loo_median_err) && c->loo_worst_err >= c->loo_median_err);
    o.method = SRCH_SENS_MEASURED;
    o.formats = 1u << MQ_DTYPE_Q4_0;
    T_CHECK(srch_sensitivity_run(m, be, &o, &meas) == MQ_OK);
    int n_src[SRCH_SRC_COUNT] = {0};
    for (int l = 0; l < m->n_layers; l++) {
        int g = c->group[l];
        T_CHECK(g >= 0);
        double b = c->role_b[m->layers[l].role], a = c->group_a[g];
        T_CHECK(isfinite(a) && b >= 0.25 && b <= 4);
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            size_t i = (size_t)l * MQ_DTYPE_COUNT + (size_t)f;
            if (!prof_quality_analysed(f4, &m->layers[l], f)) {
                T_CHECK(isnan(c->loss[i]) || f == (int)m->layers[l].src_type);
                continue;
            }
            T_CHECK_MSG(isfinite(c->loss[i]) && c->loss[i] >= 0 && isfinite(c->err[i]) && c->err[i] > 0,
                        "%s %s: loss %g err %g", m->layers[l].name, mq_dtype_name((enum mq_dtype)f), c->loss[i],
                        c->err[i]);
            n_src[c->source[i]]++;
            double gk = c->group_kl[g * MQ_DTYPE_COUNT + f];
            if (f == MQ_DTYPE_F16) {
                T_CHECK(c->source[i] == SRCH_SRC_SHARED);
            } else if (isnan(gk)) { /* the fit */
                T_CHECK(c->source[i] == SRCH_SRC_PREDICTED);
                double want = exp(a + b * log(c->err[i]));
                T_CHECK_MSG(fabs(c->loss[i] / want - 1) < 1e-12, "%g vs %g", c->loss[i], want);
            } else if (c->group_size[g] == 1) { /* the layer alone, measured */
                T_CHECK(c->source[i] == SRCH_SRC_MEASURED && c->loss[i] == fmax(gk, 0) && c->kl[i] == gk);
                if (f == MQ_DTYPE_Q4_0)
                    T_CHECK_MSG(c->kl[i] == meas->kl[i], "%s: %g vs %g", m->layers[l].name, c->kl[i], meas->kl[i]);
            } else {
                T_CHECK(c->source[i] == SRCH_SRC_SHARED);
            }
        }
    }
    /* 192-wide rows: q4_0, q5_0, q8_0 all measured; ffn_down likewise (no K-quants asked) */
    T_CHECK(n_src[SRCH_SRC_MEASURED] > 0 && n_src[SRCH_SRC_SHARED] > 0);
    for (int g = 0; g < c->n_groups; g++)
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            double gk = c->group_kl[g * MQ_DTYPE_COUNT + f], sum = 0;
            if (isnan(gk))
                continue;
            for (int l = 0; l < m->n_layers; l++)
                if (c->group[l] == g)
                    sum += c->loss[l * MQ_DTYPE_COUNT + f];
            T_CHECK_MSG(fabs(sum - fmax(gk, 0)) <= 1e-12 + 1e-9 * gk, "group %s %s: %g vs %g", c->group_names[g],
                        mq_dtype_name((enum mq_dtype)f), sum, gk);
        }
    /* with q4_0 alone measured per group, the other narrow formats are predicted */
    o.method = SRCH_SENS_CALIBRATED;
    o.formats = (1u << MQ_DTYPE_Q8_0) | (1u << MQ_DTYPE_Q5_0) | (1u << MQ_DTYPE_Q4_0) | (1u << MQ_DTYPE_Q5_1);
    struct srch_sensitivity *c4 = NULL;
    T_CHECK(srch_sensitivity_run(m, be, &o, &c4) == MQ_OK);
    int n_pred = 0;
    for (int i = 0; i < m->n_layers * MQ_DTYPE_COUNT; i++)
        n_pred += c4->source[i] == SRCH_SRC_PREDICTED;
    T_CHECK_MSG(n_pred == m->n_layers, "%d predicted", n_pred); /* q5_0: the one of four not measured */
    srch_sensitivity_free(c4);

    char path[4200];
    snprintf(path, sizeof(path), "%s/calibrated.yaml", t_tmpdir());
    T_CHECK(rpt_sensitivity_write(c, path) == MQ_OK);
    T_CHECK(rpt_sensitivity_read(path, &back) == MQ_OK && back->method == SRCH_SENS_CALIBRATED);
    for (int i = 0; i < m->n_layers * MQ_DTYPE_COUNT; i++) {
        T_CHECK(isnan(c->loss[i]) ? isnan(back->loss[i]) : fabs(back->loss[i] - c->loss[i]) <= 1e-5 * c->loss[i]);
        T_CHECK(isnan(c->loss[i]) || back->source[i] == c->source[i]);
        T_CHECK(isnan(c->err[i]) ? isnan(back->err[i]) : fabs(back->err[i] - c->err[i]) <= 1e-5 * c->err[i]);
    }
    T_CHECK(fabs(back->rank_corr - c->rank_corr) < 1e-3);
    srch_sensitivity_free(back);
    back = NULL;
    /* a file from before `source`: its losses read as the method made them */
    snprintf(path, sizeof(path), "%s/measured.yaml", t_tmpdir());
    T_CHECK(rpt_sensitivity_write(meas, path) == MQ_OK);
    char cmd[9000];
    snprintf(cmd, sizeof(cmd), "sed -i '/^ *source: /d; /^ *err: /d' '%s'", path);
    T_CHECK(system(cmd) == 0);
    T_CHECK(rpt_sensitivity_read(path, &back) == MQ_OK);
    for (int i = 0; i < m->n_layers * MQ_DTYPE_COUNT; i++)
        T_CHECK(isnan(back->loss[i]) ? back->source[i] == SRCH_SRC_NONE
                                     : back->source[i] == SRCH_SRC_MEASURED && isnan(back->err[i]));
    srch_sensitivity_free(back);
    back = NULL;
    /* an unknown source is refused */
    snprintf(cmd, sizeof(cmd), "sed -i '0,/^\\(  *\\)loss: \\(.*\\)$/s//\\1loss: \\2\\n\\1source: guessed/' '%s'", path);
    T_CHECK(system(cmd) == 0);
    T_CHECK(rpt_sensitivity_read(path, &back) == MQ_EFORMAT && !back);
    srch_sensitivity_free(c);
    srch_sensitivity_free(meas);
    be_close(be);
    mq_model_free(m);
    return T_PASS;
}

/* Relative squared error of layer l in q4_0 by hand, quantized with the layer's importance
 * weights; columns at or past `cols` not counted. */
static double error_by_hand(const struct mq_model *m, int l, int64_t cols)
{
    const struct mq_layer *ly = &m->layers[l];
    int64_t n = ly->n_in * ly->n_out;
    float *w = malloc((size_t)n * sizeof(float)), *back = malloc((size_t)n * sizeof(float));
    const void *data;
    void *buf;
    double e = 0, s = 0;
    if (w && back && mq_convert_weights(ly->name, ly->src_type, ly->src_data, ly->n_in, ly->n_out, MQ_DTYPE_Q4_0,
                                        ly->imp, ly->gram_u, &data, &buf) == MQ_OK) {
        mq_dtype_get(ly->src_type)->to_f32(ly->src_data, w, n);
        mq_dtype_get(MQ_DTYPE_Q4_0)->to_f32(data, back, n);
        free(buf);
        for (int64_t i = 0; i < n; i++)
            if (i % ly->n_in < cols) {
                double d = (double)back[i] - (double)w[i];
                e += d * d;
                s += (double)w[i] * w[i];
            }
    }
    free(w);
    free(back);
    return s > 0 ? e / s : NAN;
}

/* The weight error: plain, the relative squared error; with importance weights, each
 * column's error weighted by its importance (columns of importance 0 no longer count), the
 * weights quantized with them as every plan quantizes them. */
static int test_weight_error(void)
{
    struct mq_model *m = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    int l = 1; /* blk.0.attn_q: 192 x 192 */
    int64_t K = m->layers[l].n_in;
    uint32_t menu = 1u << MQ_DTYPE_Q4_0;
    double got[MQ_DTYPE_COUNT];
    T_CHECK(prof_quality_weight_error(m, l, menu, true, NULL, false, got) == MQ_OK);
    double want = error_by_hand(m, l, K);
    T_CHECK_MSG(fabs(got[MQ_DTYPE_Q4_0] / want - 1) < 1e-9, "%g vs %g", got[MQ_DTYPE_Q4_0], want);
    /* importance 1 on the first half of the columns, 0 on the rest */
    struct mq_imatrix im = {0};
    struct mq_imatrix_entry ent = {.n_in = K, .n_mat = 1};
    snprintf(ent.name, sizeof(ent.name), "%s", m->layers[l].name);
    float *sums = malloc((size_t)K * sizeof(float)), count = 1;
    T_CHECK(sums);
    for (int64_t j = 0; j < K; j++)
        sums[j] = j < K / 2 ? 1.0f : 0.0f;
    ent.sums = sums;
    ent.counts = &count;
    im.n_entries = 1;
    im.entries = &ent;
    int used = 0;
    T_CHECK(mq_model_set_imatrix(m, &im, true, &used) == MQ_OK && used == 1 && m->layers[l].imp);
    free(sums);
    T_CHECK(prof_quality_weight_error(m, l, menu, true, NULL, false, got) == MQ_OK);
    want = error_by_hand(m, l, K / 2);
    T_CHECK_MSG(fabs(got[MQ_DTYPE_Q4_0] / want - 1) < 1e-6, "weighted %g vs %g", got[MQ_DTYPE_Q4_0], want);
    T_CHECK(prof_quality_weight_error(m, l, menu, false, NULL, false, got) == MQ_OK);
    want = error_by_hand(m, l, K);
    T_CHECK_MSG(fabs(got[MQ_DTYPE_Q4_0] / want - 1) < 1e-9, "unweighted %g vs %g", got[MQ_DTYPE_Q4_0], want);
    mq_model_free(m);
    return T_PASS;
}

const struct mq_test sensitivity_tests[] = {
    {"sensitivity/calib_fit_exact", test_calib_fit_exact},
    {"sensitivity/calib_fit_edges", test_calib_fit_edges},
    {"sensitivity/calibrated", test_sensitivity_calibrated},
    {"sensitivity/weight_error", test_weight_error},
    {NULL, NULL},
};
