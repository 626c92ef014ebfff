/* reports/front_io.h - front.yaml: the Pareto front of plans, predicted and measured, and
 * the chosen plan. Its points are plans other programs read (the schema below).
 *
 * Schema front/1:
 *   mixq_schema, mixq_version,
 *   model {path, name, arch, content_hash, layers},
 *   imatrix {source (computed | given), path, sha256, text, chunks, ctx (computed: the
 *            calibration text and its chunks)} or null: the importance matrix every plan
 *            was quantized with (mixq quantize --plan FRONT applies it),
 *   workload, target {cpu, backend, backend_detail, threads, topology, features, emulated,
 *           remote (the agent command that measured it, or null)},
 *   targets [LABEL, ...]   # only when tuned for several targets (mixq tune --target):
                          # `target` is then the combined profile's, see search/tune.h
   budgets {memory_bytes, latency_us, file_bytes, max_kl} (null: none),
 *   search {method, exact, eps_memory_bytes, eps_latency_us, seconds, points, written,
 *           latency_model, best_predicted (index or null), validated,
 *           memory_calibration_bytes, validation_rounds, queried_memory_bytes,
 *           queried_latency_us (the budgets the front was last queried with: tighter than
 *           the budgets after a round in which no measured point met them), queried_loss,
 *           loss_ratio (with max_kl: the predicted loss the front was last queried at, and
 *           the measured/predicted ratio it was made with; null: none)},
 *   sensitivity {method, loss, note, rank_correlation (calibrated: leave-one-out, of the
 *           measured group points), rank_correlation_of},
 *   calibration {plans [{label, predicted_kl, measured_kl, error_percent}],
 *           median_error_percent, worst_error_percent}   # validated, loss kl only
 *   metric {name, reference, higher_is_better},
 *   points [{index, predicted {memory_bytes, latency_us, loss}, meets_budgets,
 *            plan {default FORMAT, layers {NAME: FORMAT, ...}},
 *            measured {memory_bytes, memory_measured, latency_us, latency_min_us,
 *                      latency_mad_us, reps, kl, kl_stderr, metric, meets_budgets,
 *                      on_measured_front, round,   # validated points only
                      targets [{target (index into targets), memory_bytes, memory_measured,
                                latency_us, latency_min_us, latency_mad_us, reps,
                                meets_budgets}]}   # several targets; the fields above
                                                   # are then the worst target's
 *           }],
 *   baselines [{label, plan, predicted {...}, measured {...}}],
 *   chosen {index, label} (null when no validated point meets the budgets as measured;
 *           with max_kl the fastest that does, else the one of the lowest measured KL)
 * A plan lists its most common format as `default` and the other layers by name. Large
 * fronts are thinned for the file to at most max_points points spread over the front
 * (validated points, the chosen one and the extremes always kept); `search.points` says
 * how many the front had.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/.
 */
#ifndef MQ_REPORTS_FRONT_IO_H
#define MQ_REPORTS_FRONT_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "model/plan.h"
#include "profiler/profile.h"
#include "search/sensitivity.h"
#include "search/tune.h"

/* im: the importance matrix the plans were quantized with (reports/export.h; NULL or
 * unset: none, written as null). */
struct rpt_imatrix_ref;
int rpt_front_write(const char *path, const struct mq_model *m, const struct prof_profile *prof,
                    const struct srch_sensitivity *sens, const struct srch_tune *t, int max_points,
                    const struct rpt_imatrix_ref *im);

/* The plan of a front.yaml point: index >= 0 a point by its index, -1 the chosen one.
 * Errors (one line): not a front file, no such point, no chosen plan, a plan that does not
 * match the model (missing or extra layer names). */
/* The calibration of the predicted loss (mixq tune's summary and front.yaml): over the
 * validated plans (front points and baselines) with a finite predicted and a positive
 * measured KL, err_pct[i] = 100 (predicted - measured) / measured (NaN for the others,
 * err_pct[t->n_cand] is the caller's), and the median and worst |error| in percent (NaN
 * when no plan counts). Returns the number of plans that count (0 when the predicted loss
 * is not a KL). */
int rpt_front_loss_errors(const struct srch_sensitivity *sens, const struct srch_tune *t, double *err_pct,
                          double *median_pct, double *worst_pct);

int rpt_front_read_plan(const struct mq_model *m, const char *path, int index, struct mq_plan **out);

/* A front.yaml read back for reports (mixq compare): the model, the target and budgets,
 * and every point's predicted and (where validated) measured figures. Plans are summed up
 * as text ("q4_0 x 25, q8_0 x 19"); rpt_front_read_plan reads one in full.
 *
 *     struct rpt_front_file *f;
 *     if (rpt_front_file_read("out/front.yaml", &f) < 0) return -1;   // one line printed
 *     ... f->points[i].pred_lat_ns ...
 *     rpt_front_file_free(f);
 *
 * Errors (one line, naming file and line): not a front file, a newer schema version, a
 * missing or non-numeric field the report needs. */
struct rpt_front_pt {
    int index;        /* the point's index on the front; -1 for a baseline */
    char label[96];   /* a baseline's label ("uniform q4_0"); "" for front points */
    char plan[96];    /* the plan summed up: "q4_0 x 25, q8_0 x 19" */
    double pred_mem_bytes, pred_lat_ns, pred_loss;
    bool measured;    /* validated on the target: the fields below are set */
    double mem_bytes, lat_ns, lat_mad_ns, kl, metric;
    bool meets_budgets, on_measured_front;
};

struct rpt_front_file {
    char path[4096];
    char model_path[4096], model_name[256];
    uint64_t model_hash;
    int n_layers;
    char workload[48];
    char cpu[128], backend[32], backend_detail[256];
    int threads;
    bool emulated;
    double mem_budget_bytes, lat_budget_ns; /* INFINITY: no budget */
    double size_budget_bytes;               /* of the GGUF file; INFINITY: no budget */
    double max_kl;                          /* bound on measured KL (--max-kl); INFINITY: none */
    char sens_method[32], loss_name[32], metric_name[32];
    int front_points;                       /* points the front had before thinning */
    int n_points;
    struct rpt_front_pt *points;            /* [n_points], in file order */
    int n_baselines;
    struct rpt_front_pt *baselines;         /* [n_baselines] */
    int chosen;                             /* index into points[], -1: no front point chosen */
    int chosen_baseline;                    /* index into baselines[] where a baseline was
                                               chosen, else -1 */
};

/* Reads path; *out is the caller's, freed with rpt_front_file_free (NULL: no-op). */
int rpt_front_file_read(const char *path, struct rpt_front_file **out);
void rpt_front_file_free(struct rpt_front_file *f);

#endif
