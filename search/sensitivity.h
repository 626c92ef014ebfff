/* search/sensitivity.h - how much quality each layer loses in each format.
 *
 *     struct srch_sensitivity *s;
 *     struct srch_sens_options o = {.method = SRCH_SENS_MEASURED, .quality = {.data = "eval.txt"}};
 *     if (srch_sensitivity_run(model, backend, &o, &s) < 0) return -1;
 *     double kl = s->loss[layer * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0];
 *     srch_sensitivity_free(s);
 *
 * Measured: for each layer and format, that layer alone is stored in the format (every
 * other layer f32) and the model is evaluated against the full-precision model on the
 * evaluation data (the runner's quality: LLMs take the mean KL divergence of next-token
 * distributions and the perplexity). The reference outputs are computed once; one
 * evaluation context is kept and only the changed layers are re-uploaded.
 *
 * Proxy: the full-precision model runs once on a calibration sample (the runner's
 * capture); each layer's captured input X is multiplied by the layer in each format on
 * the backend, and the relative error ||Y_f - Y_f32||^2 / ||Y_f32||^2 of the layer's own
 * output is the proxy (layers without a matmul, such as an untied token_embd lookup, use
 * the relative error of the weights themselves). Far cheaper: one forward pass.
 *
 * Grouped: measured on groups of layers instead of single layers, and shared out by
 * weight count. A group is the layers of one role (attn_v, ffn_down, ...) within a range of depth:
 * the first block alone, the last block alone, and the blocks between split evenly into
 * depth_groups - 2 ranges (layers outside blocks, such as token_embd and output, are
 * groups of their own; ONNX layers take their order among the layers of their role as
 * depth). Each group is quantized as a whole to each narrow format and evaluated once;
 * a 16-bit format, near lossless, is evaluated once with every layer in it. A layer's loss
 * is its group's measured KL times its share of the group's weights (layers of a group
 * have one shape in llama models: an even split). Sharing by the proxy error instead was
 * worse on the bundled model's measured table (Spearman rank correlation with the per-layer
 * measured KL 0.85 and 0.86 for q8_0 and q4_0, against 0.90 and 0.89 for the even split). The number of
 * evaluations grows with roles x depth_groups, not with layers: for a 30-block model about
 * 60 instead of 630, and it catches what the proxy misses most, that layers of some roles
 * (attn_v, ffn_down, output) and at some depths matter far more than their own output error
 * says. Layers are assumed additive within a group.
 *
 * Calibrated: no pass per layer and format. For every layer and format, the weight error
 * (profiler/quality.h: the importance-weighted relative squared error of the quantized
 * weights, plain where the layer has no importance weights; no forward pass). Then, on the
 * groups of `grouped`, a few measured points: each group quantized as a whole to three
 * narrow formats of its menu, the cheapest, the middle and the dearest by bits per weight
 * (fewer where its menu has fewer), and 16-bit formats once over every layer. The fitted
 * map from error to KL, per group g of role r:
 *     log(KL_g(f) / n_g) = a_g + b_r log(mean err of g's layers in f)
 * least squares with an intercept per group (depth matters: first and last blocks differ
 * from the middle ones) and a slope per role (pooled within the role's groups; see
 * srch_calib_fit). A layer's loss in format f is exp(a_g) err_l(f)^b_r (`predicted`); at
 * the formats its group was measured at, the group's measured KL is shared out in
 * proportion to err^b_r (`shared`; `measured` where the group is the layer alone); 16-bit
 * formats share the all-layer KL in proportion to err. The evaluations grow with groups,
 * not layers x formats: 91 instead of 226 on the bundled model (6 blocks, 44 layers),
 * about 90 instead of 1600 for a 30-block model with 7 narrow formats. Why this form
 * (slopes per role, three points) is in docs/sensitivity.md, with the bundled model's
 * numbers. rank_corr is then the leave-one-out check of the fit: every measured group
 * point predicted by the fit made without it, and the Spearman rank correlation of those
 * predictions with the measured KL; loo_median_err and loo_worst_err are their relative
 * errors.
 *
 * Automatic (SRCH_SENS_AUTO, the default of mixq tune and mixq sensitivity): measured when
 * it needs at most SRCH_SENS_AUTO_MAX_EVALS evaluations, calibrated above.
 *
 * The proxy is not computed for grouped and calibrated tables (nothing uses it there); the
 * weight error is computed for measured and calibrated tables (`err`).
 *
 * With the measured method the proxy is computed too, and the Spearman rank correlation
 * between proxy and measured losses is reported, so users can judge --sensitivity proxy.
 *
 * The search treats losses as additive over layers; the measured validation of the front
 * catches where they are not.
 *
 * Cache: each measured (layer or group, format) is stored under (model content, importance
 * weights, layer or group, format, evaluation data content, context, chunks, backend) as
 * soon as it is known, so that an interrupted analysis resumes where it stopped; grouped
 * and calibrated share their group evaluations. Weight errors are cached too.
 *
 * The passes themselves (evaluations, captures, matmuls) are profiler/quality.h's: this
 * module decides what to measure and what the numbers mean, and calls no backend.
 *
 * Ownership: srch_sensitivity_run returns a table the caller frees with
 * srch_sensitivity_free; tables read from YAML (reports/sensitivity_io.h) are the same.
 *
 * Dependency rule: search/ depends on profiler/, model/, llm/, gguf/, backends/ and
 * core/.
 */
#ifndef MQ_SEARCH_SENSITIVITY_H
#define MQ_SEARCH_SENSITIVITY_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "model/runner.h"
#include "search/pins.h"

/* SRCH_SENS_AUTO is an option only (resolved by srch_sens_auto); tables hold the others. */
enum srch_sens_method { SRCH_SENS_MEASURED, SRCH_SENS_PROXY, SRCH_SENS_GROUPED, SRCH_SENS_CALIBRATED, SRCH_SENS_AUTO };

/* Where a table's loss of one (layer, format) comes from (sensitivity.yaml's `source`). */
enum srch_sens_source {
    SRCH_SRC_NONE,      /* no loss */
    SRCH_SRC_MEASURED,  /* this layer alone in this format, measured */
    SRCH_SRC_SHARED,    /* a share of its group's measured KL (grouped; calibrated at the
                           formats its group was measured at) */
    SRCH_SRC_PREDICTED, /* calibrated: the fitted map applied to the layer's weight error */
    SRCH_SRC_PROXY,     /* the proxy's own output error (proxy tables) */
    SRCH_SRC_COUNT
};

#define SRCH_SENS_DEFAULT_DEPTH_GROUPS 4
#define SRCH_SENS_MAX_GROUPS 4096
/* SRCH_SENS_AUTO: measured up to this many evaluations (layers x formats analysed),
 * calibrated above: about 4 minutes of the bundled model's evaluations on 2 cores, an
 * hour or more for any model of a billion parameters. */
#define SRCH_SENS_AUTO_MAX_EVALS 100

struct srch_sens_options {
    enum srch_sens_method method;
    uint32_t formats;                 /* bit per format; 0: the default menu (core/dtype.h); each
                                         layer's stored format is always in (mq_layer_menu) */
    struct mq_quality_config quality; /* evaluation data, context, chunks */
    const struct srch_pins *pins;     /* measured, grouped: pinned layers are not analysed (NULL: none) */
    int depth_groups;                 /* grouped: groups per role along depth (0: the default 4) */
    const char *cache_dir;            /* NULL: no cache */
    bool cache_refresh;               /* measure again, then store */
    bool progress;
};

struct srch_sensitivity {
    char model_path[4096];
    uint64_t model_hash;
    int n_layers;
    char (*names)[MQ_GGUF_MAX_NAME + 1];
    enum srch_sens_method method;
    uint32_t formats;
    char data[4096];        /* evaluation data as given */
    int64_t ctx, chunks;
    char loss_name[32];     /* "kl" (measured, grouped, calibrated) or "rel_mse" (proxy): what `loss` holds */
    double *loss;           /* [n_layers * MQ_DTYPE_COUNT]: the search's loss; NaN where absent */
    double *kl;             /* measured KL; NaN where not measured */
    double *metric;         /* measured task metric with that layer alone quantized */
    double *proxy;          /* relative output error */
    double *err;            /* measured, calibrated: the weight error (profiler/quality.h) */
    uint8_t *source;        /* enum srch_sens_source of each loss */
    bool err_weighted;      /* some layer's err was weighted by importance (an imatrix) */
    double ref_metric;
    char metric_name[16];
    bool higher_is_better;
    double rank_corr;       /* measured: Spearman(proxy, kl); calibrated: Spearman of the
                               leave-one-out predictions and the measured group KL; NaN
                               when not known */
    /* grouped: the groups measured, and each layer's group (-1: none) */
    int n_groups;
    int *group;                              /* [n_layers] */
    char (*group_names)[64];                 /* [n_groups]: "attn_v blk.1-14" */
    int *group_size;                         /* [n_groups]: layers in the group */
    double *group_kl, *group_metric;         /* [n_groups * MQ_DTYPE_COUNT]; NaN where not measured */
    double all_kl[MQ_DTYPE_COUNT];           /* grouped, 16-bit formats: every analysed layer in it */
    double all_metric[MQ_DTYPE_COUNT];
    /* calibrated: the fit (search/sensitivity.h) and its leave-one-out check */
    double *group_err;                       /* [n_groups * MQ_DTYPE_COUNT]: mean err where measured */
    double *group_loo;                       /* [n_groups * MQ_DTYPE_COUNT]: leave-one-out prediction */
    double *group_a;                         /* [n_groups]: intercept a_g (NaN: none) */
    double role_b[MQ_ROLE_COUNT];            /* slope b_r (NaN: role not analysed) */
    int n_points;                            /* measured group points the fit used */
    double loo_median_err, loo_worst_err;    /* |predicted / measured - 1| over the points */
    int64_t n_samples;
    double wall_seconds;
    int n_evaluated, n_cached;
};

/* o->method SRCH_SENS_AUTO is resolved by srch_sens_auto. */
int srch_sensitivity_run(const struct mq_model *m, struct be_backend *be, const struct srch_sens_options *o,
                         struct srch_sensitivity **out);
/* The evaluations measured sensitivity would run on m (each unpinned layer in each format
 * of the menu but its stored one; pins NULL: none); -1 on a bad pin (printed). */
int srch_sens_measured_evals(const struct mq_model *m, uint32_t formats, const struct srch_pins *pins);
/* What SRCH_SENS_AUTO means for m: measured up to SRCH_SENS_AUTO_MAX_EVALS evaluations,
 * calibrated above; *n_measured (may be NULL) receives srch_sens_measured_evals. */
enum srch_sens_method srch_sens_auto(const struct mq_model *m, uint32_t formats, const struct srch_pins *pins,
                                     int *n_measured);
int srch_sensitivity_alloc(int n_layers, struct srch_sensitivity **out);
void srch_sensitivity_free(struct srch_sensitivity *s);
/* MQ_EINVAL (printed) unless the table's layers are the model's. */
int srch_sensitivity_matches(const struct srch_sensitivity *s, const struct mq_model *m);

/* "measured", "grouped", "proxy", "calibrated", "auto", and back (MQ_EINVAL, silent, for
 * other text). */
const char *srch_sens_method_name(enum srch_sens_method m);
int srch_sens_method_parse(const char *text, enum srch_sens_method *out);

/* Spearman's rank correlation of the pairs (a[i], b[i]) with both finite; NaN when fewer
 * than 3 such pairs. */
double srch_spearman(const double *a, const double *b, int n);

/* "measured", "shared", "predicted", "proxy" ("" for none), and back (MQ_EINVAL, silent). */
const char *srch_sens_source_name(enum srch_sens_source src);
int srch_sens_source_parse(const char *text, enum srch_sens_source *out);

/* ---- the calibrated fit, on its own (search/sensitivity.h, calibrated) ---- */

/* One measured group point: the group, its role, its n layers, the format, their mean
 * weight error and the measured KL of the group in that format. */
struct srch_calib_point {
    int group, role, n, fmt;
    double err, kl;
};

/* Fits log(kl / n) = a[group] + b[role] log(err) by least squares over the points with
 * err > 0 and kl > 0 (others are ignored), leaving out point `skip` (-1: none): b[r] the
 * slope within groups pooled over role r's groups; the slope pooled over all roles where
 * a role's points have no spread within groups (and for roles without points); 1 where no
 * role has; every slope clamped to [0.25, 4]. a[g] is the mean of log(kl/n) - b log(err)
 * over g's points; a group without one (group_role[g] its role) takes the mean intercept
 * of its role's groups, else of all groups, else NaN. a[n_groups], b[MQ_ROLE_COUNT].
 * MQ_ENOMEM (printed) only. */
int srch_calib_fit(const struct srch_calib_point *pt, int n, int skip, int n_groups, const int *group_role,
                   double *a, double *b);

/* Point k as the fit made without it predicts it: n exp(a_g + b_r log err), into *pred
 * (NaN when the fit has no intercept for its group). MQ_ENOMEM (printed) only. */
int srch_calib_loo(const struct srch_calib_point *pt, int n, int k, int n_groups, const int *group_role,
                   double *pred);

#endif
