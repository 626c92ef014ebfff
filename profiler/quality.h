/* profiler/quality.h - the quality passes the sensitivity analysis (search/sensitivity.h)
 * is built from: whole-model evaluations of plans against full precision, each layer's
 * own output error on captured activations, and the quantization error of the weights.
 * search/ decides what to measure and what it means; this module runs the passes on the
 * backend (through the model's runner) and keeps their results in the cache.
 *
 *     struct prof_quality pq;
 *     prof_quality_init(&pq, model, backend, &(struct mq_quality_config){.data = "eval.txt"},
 *                       cache_dir, false, true);
 *     double v[4];
 *     if (prof_quality_eval(&pq, "sens/1 model=... fmt=q4_0", plan, v) < 0) ...   // v[0]: KL
 *     prof_quality_release(&pq);
 *
 * Evaluations: the runner's quality_new computes the full-precision reference outputs on
 * the first evaluation that is not in the cache (never when every result is cached); each
 * plan is then one quality_eval. A result is stored as soon as it is known, under the
 * caller's key followed by the evaluation data's content hash, context, chunks and the
 * backend's name, so that an interrupted analysis resumes where it stopped.
 *
 * Proxy (prof_quality_proxy): the reference model (mq_plan_reference: the weights as
 * stored) runs once on a calibration sample (the runner's capture); each layer's captured
 * input X is multiplied by the layer in each format on the backend, and
 * ||Y_f - Y_ref||^2 / ||Y_ref||^2 of the layer's own output is recorded (Y_ref: the layer
 * in its stored type where the backend runs it, else f32). Layers the capture never hands (an
 * untied token_embd is a lookup) get the relative error of their weights instead.
 *
 * Weight error (prof_quality_weight_error): no forward pass. The layer is converted to
 * each format as every plan converts it (mq_convert_weights, with the layer's importance
 * weights when it has them) and dequantized; the error is
 *     sum_rows sum_j imp[j] (w - dequant(quant(w)))^2 / sum_rows sum_j imp[j] w^2
 * with imp[j] the layer's importance of input column j, or 1 for every column where the
 * layer has none (plain relative squared error).
 *
 * Ownership: prof_quality_init borrows the model, backend, configuration and cache folder
 * until prof_quality_release, which frees what distributed runs noted; the rest allocate
 * nothing that outlives a call.
 *
 * Dependency rule: profiler/ depends on model/, llm/, backends/ and core/ only.
 */
#ifndef MQ_PROFILER_QUALITY_H
#define MQ_PROFILER_QUALITY_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "core/dist.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/runner.h"

struct prof_quality {
    const struct mq_model *m;
    struct be_backend *be;
    struct mq_quality_config cfg; /* data, ctx, chunks (borrowed strings) */
    const char *cache_dir;        /* NULL: no cache */
    bool cache_refresh;           /* evaluate again, then store */
    uint64_t data_hash;           /* the evaluation data's content (0: unreadable or default) */
    void *q;                      /* the runner's quality state, opened on first need */
    /* what the evaluations reported (from the cache when nothing was evaluated) */
    double ref_metric;            /* NaN until known */
    char metric_name[16];         /* "" until an evaluation ran */
    bool higher_is_better;
    int64_t n_samples;
    int n_evaluated, n_cached;
    char backend_name[32];
    uint64_t ref_hash; /* mq_plan_hash of the reference plan on the backend (in every key:
                        * what a loss is measured against); 0 without a backend */
    /* distributed runs (prof_quality_flush) */
    bool collect;                    /* note evaluations instead of running them */
    struct prof_quality_unit *units; /* noted, then done (their results) */
    int n_units, cap_units;
};

void prof_quality_init(struct prof_quality *pq, const struct mq_model *m, struct be_backend *be,
                       const struct mq_quality_config *cfg, const char *cache_dir, bool cache_refresh,
                       bool progress);
void prof_quality_release(struct prof_quality *pq);

/* Evaluates `plan` against full precision through the cache: v[0] the loss (mean KL
 * divergence), v[1] the task metric, v[2] the reference metric, v[3] the samples scored.
 * `what` names the plan for the cache (its prefix and what makes it distinct, e.g.
 * "sens/1 model=... layer=3:blk.0.attn_q.weight fmt=q4_0"); the data, context, chunks and
 * backend are appended. Errors: the runner's (printed). */
int prof_quality_eval(struct prof_quality *pq, const char *what, const struct mq_plan *plan, double v[4]);

/* Distributed runs (core/dist.h: `mpirun -np N`, N > 1): a caller runs its loop of
 * evaluations twice. First with pq->collect set: prof_quality_eval then only notes each
 * evaluation that is not cached (v all NaN; cached ones are returned as always). Then
 * prof_quality_flush spreads the noted evaluations over every rank (each worker loads the
 * model, its importance matrix and the data itself), storing each result in the cache as
 * it arrives, and clears collect. Then the loop again, which finds every result (counted
 * as evaluated). prof_quality_distributed says whether the first pass is worth it (more
 * than one rank); with one rank the loop runs once, as it always did. Errors: one line. */
bool prof_quality_distributed(const struct prof_quality *pq);
int prof_quality_flush(struct prof_quality *pq);
/* The job worker ranks run (cli/main.c registers it). */
extern const struct mq_dist_job prof_quality_dist_job;

/* A file's content hash (0 for NULL or an unreadable file), for cache keys. */
uint64_t prof_quality_data_hash(const char *path);

/* Whether layer ly is analysed in format f under `menu` (0: the default menu): offered
 * (mq_layer_menu) and not its stored format, whose loss is 0 (it is the reference). */
bool prof_quality_analysed(uint32_t menu, const struct mq_layer *ly, int f);

/* The proxy of every layer in every analysed format of `menu`, into
 * proxy[layer * MQ_DTYPE_COUNT + format] (other entries untouched). A progress line on
 * stderr when `progress` and it is a terminal. */
int prof_quality_proxy(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg,
                       uint32_t menu, bool progress, double *proxy);

/* The relative weight error of layer ly in every analysed format of `menu`, into
 * out[format] (other entries untouched); importance-weighted when `weighted` and the
 * layer has importance weights. Through the cache when cache_dir is not NULL (keyed by
 * the model's content and importance hashes, the layer and the format). */
int prof_quality_weight_error(const struct mq_model *m, int layer, uint32_t menu, bool weighted,
                              const char *cache_dir, bool cache_refresh, double out[MQ_DTYPE_COUNT]);

/* prof_quality_weight_error of every layer l with want[l] into out[l * MQ_DTYPE_COUNT + f],
 * each layer's memory released after it: cached layers from the cache, the others spread
 * over the MPI ranks (core/dist.h: a layer a unit; rank 0 stores each result in the cache
 * as it arrives), in order in a single process. A progress line when `progress`. */
int prof_quality_weight_errors(const struct mq_model *m, const uint8_t *want, uint32_t menu,
                               bool weighted, const char *cache_dir, bool cache_refresh,
                               bool progress, double *out);
extern const struct mq_dist_job prof_qerr_dist_job;

#endif
