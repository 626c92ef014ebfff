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
 * The proxy is not computed for grouped tables (nothing uses it there).
 *
 * With the measured method the proxy is computed too, and the Spearman rank correlation
 * between proxy and measured losses is reported, so users can judge --sensitivity proxy.
 *
 * The search treats losses as additive over layers; the measured validation of the front
 * catches where they are not.
 *
 * Cache: each measured (layer, format) is stored under (model content, layer, format,
 * evaluation data content, context, chunks, backend) as soon as it is known, so that an
 * interrupted analysis resumes where it stopped.
 *
 * Ownership: srch_sensitivity_run returns a table the caller frees with
 * srch_sensitivity_free; tables read from YAML (reports/sensitivity_io.h) are the same.
 *
 * Dependency rule: search/ depends on profiler/, model/, backends/ and core/.
 */
#ifndef MQ_SEARCH_SENSITIVITY_H
#define MQ_SEARCH_SENSITIVITY_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/runner.h"
#include "search/pins.h"

enum srch_sens_method { SRCH_SENS_MEASURED, SRCH_SENS_PROXY, SRCH_SENS_GROUPED };

#define SRCH_SENS_DEFAULT_DEPTH_GROUPS 4
#define SRCH_SENS_MAX_GROUPS 4096

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
    char loss_name[32];     /* "kl" (measured, grouped) or "rel_mse" (proxy): what `loss` holds */
    double *loss;           /* [n_layers * MQ_DTYPE_COUNT]: the search's loss; NaN where absent */
    double *kl;             /* measured KL; NaN where not measured */
    double *metric;         /* measured task metric with that layer alone quantized */
    double *proxy;          /* relative output error */
    double ref_metric;
    char metric_name[16];
    bool higher_is_better;
    double rank_corr;       /* Spearman(proxy, kl); NaN when not both */
    /* grouped: the groups measured, and each layer's group (-1: none) */
    int n_groups;
    int *group;                              /* [n_layers] */
    char (*group_names)[64];                 /* [n_groups]: "attn_v blk.1-14" */
    int *group_size;                         /* [n_groups]: layers in the group */
    double *group_kl, *group_metric;         /* [n_groups * MQ_DTYPE_COUNT]; NaN where not measured */
    double all_kl[MQ_DTYPE_COUNT];           /* grouped, 16-bit formats: every analysed layer in it */
    double all_metric[MQ_DTYPE_COUNT];
    int64_t n_samples;
    double wall_seconds;
    int n_evaluated, n_cached;
};

int srch_sensitivity_run(const struct mq_model *m, struct be_backend *be, const struct srch_sens_options *o,
                         struct srch_sensitivity **out);
int srch_sensitivity_alloc(int n_layers, struct srch_sensitivity **out);
void srch_sensitivity_free(struct srch_sensitivity *s);
/* MQ_EINVAL (printed) unless the table's layers are the model's. */
int srch_sensitivity_matches(const struct srch_sensitivity *s, const struct mq_model *m);

/* "measured", "grouped", "proxy", and back (MQ_EINVAL, silent, for other text). */
const char *srch_sens_method_name(enum srch_sens_method m);
int srch_sens_method_parse(const char *text, enum srch_sens_method *out);

/* Spearman's rank correlation of the pairs (a[i], b[i]) with both finite; NaN when fewer
 * than 3 such pairs. */
double srch_spearman(const double *a, const double *b, int n);

#endif
