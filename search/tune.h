/* search/tune.h - from a profile and a sensitivity table to a plan measured to meet the
 * budgets: the search problem, the front, its validation on the target.
 *
 *     struct srch_tune *t;
 *     struct srch_tune_options o = {.mem_budget = 8e9, .lat_budget = 200e6, ...};
 *     if (srch_tune_run(model, backend, profile, sens, &o, &t) < 0) return -1;
 *     if (t->chosen >= 0) ... t->cand[t->chosen].plan ...
 *     srch_tune_free(t);
 *
 * The problem: each layer may take the formats that are asked for, that its rows allow,
 * that the profile priced and the sensitivity table scored (a pinned layer takes only its
 * pin). A choice costs the format's weight bytes, the layer's profiled time scaled by the
 * profile's latency model, and the layer's loss. The constants are what every plan pays:
 * memory for everything but the quantizable weights (norms, KV cache, scratch, the
 * measured runtime overhead), and the latency model's glue.
 *
 * The file size budget (--size, GGUF models): a plan's file is its source's metadata and
 * glue tensors plus its layers' weights, so it is the memory objective up to a constant:
 * the search runs with the memory budget min(mem_budget, mem_from_size), where
 * mem_from_size bounds every layer's alignment padding and the provenance keys from above,
 * and validation computes each plan's exact file size (o->file_bytes), which must be within
 * size_budget for the plan to meet the budgets.
 *
 * Validation: the front points nearest the budgets (at least n_validate, search/search.h's
 * srch_front_nearest) and, for comparison, the uniform f16 and q8_0 plans and, for GGUF
 * models, llama.cpp's presets users deploy (srch_tune_presets: Q3_K_M, Q4_K_M, Q5_K_M,
 * Q6_K, as llama-quantize makes them; other models: uniform q4_0) are built and measured
 * end to end on the target: workload latency (median of repeated
 * runs), peak RSS of a process running it (prof_memory_probe) or, without probes, the
 * memory model with the measured overhead, and the quality against full precision (KL
 * divergence, the task metric). The chosen plan is the lowest measured loss among the
 * validated front points that meet both budgets as measured. When none does, the
 * predictions were off: each budget a measured front point missed is tightened by the
 * predictions' miss over the measured front points (bytes over the predicted memory, the
 * ratio of measured to predicted latency): the median miss after the first round, so that
 * one disturbed measurement cannot tighten a budget past every plan, the worst miss after
 * the second; the front is queried again with the tightened budgets and the points nearest
 * them are measured, up to SRCH_TUNE_MAX_ROUNDS rounds; none is chosen (chosen = -1) when
 * still no validated point meets the budgets.
 *
 * A KL bound (o->has_max_kl, mixq tune --max-kl X): the chosen plan is instead the validated
 * front point of the lowest measured latency (then memory, then KL) among those that meet the
 * budgets as measured and whose measured loss (the runner's: mean KL divergence of the
 * next-token distributions for LLMs, of the output distributions for ONNX models) is at most
 * X; a candidate's `meets` includes that bound. Predicted loss is a sum of per-layer losses,
 * in the sensitivity table's unit (kl, or rel_mse for the proxy), so it is not the measured
 * KL: validation first measures the baselines, then queries the front at the predicted loss
 * bar X / r, r the median ratio of measured KL to predicted loss over the (at most 3)
 * measured plans whose KL is nearest X (srch_tune_loss_ratio; none: r = 1 for a kl table;
 * a rel_mse table without one is queried as without the bound), and measures the points
 * srch_front_nearest_loss gives there (the fastest under the bar, faster ones over it, and
 * slower fallbacks), the lowest-loss point within the budgets and the lowest-loss point of
 * the front (the smallest KL any plan reaches). Later rounds refit r on every measured plan
 * and query again: when none was chosen, with the memory and latency budgets tightened as
 * above where points under the bar missed them; when one was, where the refitted bar's
 * fastest point is predicted faster than the chosen plan and is not measured yet. No plan
 * chosen: srch_tune_kl_reach tells why (the bound is below every plan's KL, or the plans
 * under it miss the other budgets).
 *
 * Several targets (mixq tune --target A --target B): the search runs on one combined
 * profile (srch_tune_worst_profile: each layer's time in each format is the largest of the
 * targets', so a plan's predicted latency, a sum of per-layer maxima, is at least its
 * latency on any one target: conservative), and validation measures every plan on every
 * target through measure_target; a plan meets the budgets only when it meets them on each
 * target as measured. The candidate's lat and mem are then its worst target's, so the
 * tightening rounds tighten by the misses of the worst target, and cand[i].tgt[] keeps
 * each target's own figures.
 *
 * The deployment runtime (mixq tune --runtime llama.cpp): o->runtime_measure is called for
 * every validated plan after it is measured here, and fills the runtime's own figures
 * (latency per workload run, its KL from its own reference). A plan then meets the
 * latency budget only where its runtime latency does (srch_cand_lat: the latency the
 * budgets, the tightening rounds, the chosen plan's order and the measured front see);
 * lat keeps mixq's measurement, for the side-by-side report.
 *
 * The memory model: the runner's (weights, KV cache, scratch) plus the measured runtime
 * overhead plus mem_calibration, the mean residual of the profile's peak-RSS runs of its
 * uniform plans (what the model does not see of a running process).
 *
 * Ownership: srch_tune_run returns a result the caller frees with srch_tune_free; it
 * borrows nothing after returning.
 *
 * Dependency rule: search/ depends on profiler/, model/, llm/, gguf/, backends/ and
 * core/.
 */
#ifndef MQ_SEARCH_TUNE_H
#define MQ_SEARCH_TUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/runner.h"
#include "profiler/measure.h"
#include "profiler/profile.h"
#include "search/pins.h"
#include "search/search.h"
#include "search/sensitivity.h"

#define SRCH_TUNE_MAX_ROUNDS 3
#define SRCH_TUNE_MAX_TARGETS 8

/* One plan measured in the deployment runtime (mixq tune --runtime). */
struct srch_runtime_meas {
    struct prof_stats lat; /* ns per workload run there */
    double kl, kl_stderr;  /* the runtime's mean KL divergence from its own reference */
    double ppl;            /* the runtime's perplexity of the plan on the same text */
};

struct srch_tune_options {
    double mem_budget, lat_budget; /* bytes and ns; SRCH_NO_BUDGET where none */
    double size_budget;            /* bytes of the GGUF file the plan writes; 0 or SRCH_NO_BUDGET:
                                      none (GGUF models only) */
    /* The exact size of the file a plan writes (mixq quantize's, provenance keys included);
     * NULL: mq_quantize_file_bytes without extra keys. */
    int (*file_bytes)(void *ctx, const struct mq_plan *plan, uint64_t *bytes);
    void *file_bytes_ctx;
    uint32_t formats;              /* formats layers may take (0: the default menu, core/dtype.h);
                                      each layer also keeps its stored format (mq_layer_menu) */
    const struct srch_pins *pins;  /* NULL: none */
    bool has_max_kl;               /* a bound on the measured loss (--max-kl); otherwise none */
    double max_kl;                 /* with has_max_kl: the bound, >= 0 (nats of mean KL) */
    int n_validate;                /* front points to re-measure (at least 8) */
    double max_seconds;            /* per latency measurement (0: 2 s) */
    bool probe_memory;             /* peak RSS of a process per validated plan */
    const char *backend;           /* for the memory probes (the backend's name) */
    struct mq_quality_config quality;
    bool progress;
    /* Where validation measures latency and memory: NULL here (the backend passed to
     * srch_tune_validate; prof_memory_probe when probe_memory); otherwise this callback,
     * e.g. a remote target's agent. It fills the latency per workload run and the memory
     * (*mem_measured: a peak RSS; else 0 asks for the memory model). Quality is always
     * measured here. */
    int (*measure_plan)(void *ctx, const struct mq_plan *plan, struct prof_stats *lat, double *mem,
                        bool *mem_measured);
    void *measure_ctx;
    /* Several targets: n_targets > 0 measures every plan on targets 0..n_targets-1 through
     * measure_target (same contract as measure_plan; ctx is measure_ctx), and measure_plan
     * is not used. target_labels[i] names target i in results ("cpu:isa=scalar"). */
    int n_targets;
    const char *target_labels[SRCH_TUNE_MAX_TARGETS];
    int (*measure_target)(void *ctx, int target, const struct mq_plan *plan, struct prof_stats *lat,
                          double *mem, bool *mem_measured);
    /* The deployment runtime (NULL: none; see above). runtime_name names it in results
     * ("llama.cpp"), runtime_detail says where and how it ran (its tools' folder). */
    int (*runtime_measure)(void *ctx, const struct mq_plan *plan, struct srch_runtime_meas *out);
    void *runtime_ctx;
    const char *runtime_name, *runtime_detail;
};

/* One plan measured on one of several targets. */
struct srch_target_meas {
    struct prof_stats lat; /* ns per workload run */
    double mem;            /* bytes: peak RSS there, or the memory model */
    bool mem_measured;
    bool meets;            /* meets both budgets on this target as measured */
};

/* One plan measured on the target. */
struct srch_candidate {
    char label[96];        /* "front point 12", "uniform q8_0", "llama.cpp Q4_K_M" */
    int point;             /* index into the front, -1 for baselines */
    struct mq_plan *plan;
    double pred_mem, pred_lat, pred_loss;
    double pred_size;      /* bytes of its GGUF file as the search bounds it (NaN: not a GGUF model) */
    bool pred_meets;
    double size;           /* bytes of its GGUF file, exact (NaN: not a GGUF model) */
    struct prof_stats lat; /* ns per workload run */
    double mem;            /* bytes: measured peak RSS, or the memory model with measured overhead */
    bool mem_measured;     /* mem is a peak RSS */
    double loss;           /* measured KL divergence from full precision (the runner's loss) */
    double loss_stderr;
    double metric;         /* measured task metric */
    bool meets;            /* meets the budgets as measured (memory, latency, size, max_kl) */
    int round;             /* validation round that measured it (0: the first) */
    bool on_measured_front;
    /* several targets: each one's figures (lat and mem above are the worst of them) */
    int n_targets;
    int worst_target; /* the target of the largest median latency */
    struct srch_target_meas tgt[SRCH_TUNE_MAX_TARGETS];
    bool has_rt;                 /* measured in the deployment runtime too */
    struct srch_runtime_meas rt;
};

struct srch_tune {
    struct srch_problem problem; /* layers point into `layers` */
    struct srch_layer *layers;
    char (*layer_names)[MQ_GGUF_MAX_NAME + 1];
    struct srch_front *front;
    double mem_budget, lat_budget;
    double size_budget;          /* SRCH_NO_BUDGET: none */
    double max_kl;               /* the bound on measured loss; SRCH_NO_BUDGET: none */
    double loss_bar;             /* with max_kl: the predicted loss the front was last queried at
                                    (NaN: none, a rel_mse table before any ratio was fitted) */
    double loss_ratio;           /* with max_kl: the ratio r that bar was made with (NaN: none) */
    /* a plan's file is at most size_base + the sum of its layers' weight bytes + 31 bytes of
     * alignment per layer (NaN: not a GGUF model); size_base includes an allowance for the
     * provenance keys that name layers (search/tune.c) */
    double size_base;
    double mem_from_size;        /* the memory budget the size budget alone implies (inf: none) */
    int n_cand;
    struct srch_candidate *cand;
    int best;                    /* front point with the lowest predicted loss within the budgets;
                                    with max_kl and a kl table, the fastest of them predicted
                                    within it where there is one */
    bool validated;              /* srch_tune_validate ran: cand holds measured plans */
    int chosen;                  /* index into cand, -1 when no validated point meets the budgets */
    int rounds;                  /* validation rounds run (1..SRCH_TUNE_MAX_ROUNDS) */
    double eff_mem_budget, eff_lat_budget; /* the budgets the front was last queried with */
    double mem_calibration;      /* bytes added to the memory model: the profile's mean peak-RSS residual */
    char loss_name[32];          /* the predicted loss's unit: kl or rel_mse */
    char metric_name[16];
    bool higher_is_better;
    double ref_metric;
    double search_seconds, validate_seconds;
    int n_targets; /* 0: one target; else the validation measured on each of these */
    char target_labels[SRCH_TUNE_MAX_TARGETS][96];
    char runtime_name[32];      /* the deployment runtime every plan was measured in ("": none) */
    char runtime_detail[4200];  /* where and how it ran */
};

/* The median latency (ns) the budgets see: the runtime's where the plan was measured there,
 * else the target's. */
double srch_cand_lat(const struct srch_candidate *c);

/* srch_tune_search then srch_tune_validate. */
int srch_tune_run(const struct mq_model *m, struct be_backend *be, const struct prof_profile *prof,
                  const struct srch_sensitivity *sens, const struct srch_tune_options *o, struct srch_tune **out);

/* The search alone: the problem, its front (refined for the budgets), `best`; nothing
 * measured (n_cand 0, chosen -1). Impossible budgets: MQ_ERANGE with the one-line error
 * of srch_budget_check. */
int srch_tune_search(const struct mq_model *m, const struct prof_profile *prof, const struct srch_sensitivity *sens,
                     const struct srch_tune_options *o, struct srch_tune **out);

/* Validation of a searched result on the target: builds and measures the points nearest
 * the budgets and the baselines, recomputes the front on measured values, and chooses. */
int srch_tune_validate(const struct mq_model *m, struct be_backend *be, const struct prof_profile *prof,
                       const struct srch_tune_options *o, struct srch_tune *t);
void srch_tune_free(struct srch_tune *t);

/* The choice among the measured candidates (see above): sets t->chosen from cand[].point,
 * meets, loss, lat and mem, by t->max_kl. */
void srch_tune_choose(struct srch_tune *t);

/* The ratio of measured loss to predicted loss over the (at most 3) measured candidates whose
 * loss is nearest max_kl (in log ratio; max_kl 0: the smallest), their median; candidates
 * without a finite positive pred_loss and loss do not count. NaN when none does. */
double srch_tune_loss_ratio(const struct srch_tune *t, double max_kl);

/* Why no plan met a KL bound: *smallest the measured candidate (front point or baseline) of
 * the lowest loss, *under the one of the lowest latency (then memory) among those whose loss
 * is within t->max_kl (-1: none; then the bound is below the smallest KL any plan reaches).
 * -1 and -1 when nothing was measured. */
void srch_tune_kl_reach(const struct srch_tune *t, int *smallest, int *under);

/* The combined profile several targets are searched on: the profiles must be of one model
 * (layer names and shapes) and one workload. Each layer's time in each format is the
 * largest over the targets of layer_scale x time (NaN where one target did not profile
 * it, so the search cannot pick it), layer_scale 1, glue the largest glue; the target,
 * end-to-end runs and memory overhead are those of the profile with the largest overhead
 * (its target's backend_detail says the table is combined). *out is the caller's
 * (prof_profile_free); the inputs are borrowed. */
int srch_tune_worst_profile(const struct prof_profile *const *profs, int n, struct prof_profile **out);

/* The largest file a plan of predicted memory pred_mem writes (the size model above); NaN
 * for models that are not GGUF. */
double srch_tune_size_bound(const struct srch_tune *t, double pred_mem);

/* The plan of front point i. The caller frees it. */
int srch_tune_point_plan(const struct mq_model *m, const struct srch_tune *t, int i, struct mq_plan **out);

/* The llama.cpp presets validated beside the front of a GGUF model (model/preset.h: the
 * per-tensor types llama-quantize gives them), NULL-terminated. */
extern const char *const srch_tune_presets[];

#endif
