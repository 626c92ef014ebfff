/* model/runner.h - running any model kind the same way: sessions that run a workload
 * on a backend with a plan, the matmul work of each layer, and the memory model. The
 * profiler, the sensitivity analysis and the search use only this interface, so llama
 * (GGUF) and ONNX models go through the same code.
 *
 *     void *s;
 *     if (m->runner->session_new(m, plan, be, &workload, &s) < 0) return -1;  // weights uploaded once
 *     for (...) m->runner->session_run(s);                                     // one workload run each
 *     m->runner->session_free(s);
 *
 * Ownership: a session borrows the model, plan (only during session_new), backend and
 * workload, which must outlive it.
 *
 * Dependency rule: model/ depends on gguf/, tokenizer/, backends/ and core/; only eval.c,
 * imatrix.c (the llama forward pass) and loader.c (the loaders) reach llm/ and onnx/.
 */
#ifndef MQ_MODEL_RUNNER_H
#define MQ_MODEL_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backends/backend.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/workload.h"

/* Memory of one workload run, in bytes: what mixq's memory budget counts, which is what a
 * run touches. Weights count once whether the backend holds a copy (repacked, converted)
 * or borrows the file's mapped pages (be_lend: a layer kept in its stored type on a backend
 * that keeps ggml's layout): a run reads every weight, so every borrowed page is resident
 * while it runs; the source pages of what was copied are released after the upload and
 * are not counted. */
struct mq_memory {
    uint64_t weights;    /* quantizable layers in their plan formats + other weights (norms) */
    uint64_t kv_cache;   /* LLMs: K and V for the workload's context */
    uint64_t scratch;    /* activations and temporaries of the largest batch */
    uint64_t overhead;   /* runtime overhead: tokenizer, tables, code (measured once) */
    uint64_t total;
};

/* Quality of one plan against the full-precision model on evaluation data. */
struct mq_quality {
    double loss; /* what the search minimizes: mean KL divergence of the outputs
                  * (next-token or class distributions) from full precision, >= 0;
                  * generic ONNX outputs that are no distribution: relative MSE
                  * (runner loss_name says which) */
    double loss_stderr;
    double metric;           /* the task metric: "ppl", "f1", "cer", "accuracy", ... */
    double ref_metric;       /* the same for the full-precision model */
    const char *metric_name;
    bool higher_is_better;   /* for the metric */
    double top1_agree;       /* fraction of samples where the top choice matches full precision
                              * (NaN: the outputs are no distributions) */
    int64_t n_samples;       /* scored positions / frames / images */
    double seconds;          /* wall time of this plan's evaluation */
    char note[128];          /* a kind-specific extra figure, one line ("mean |p - p_f32| 0.0021
                              * over 600 frames"); "" when none */
};

struct mq_quality_config {
    const char *data;   /* evaluation data (LLMs: a text file); NULL: the kind's default */
    int64_t ctx;        /* LLMs: chunk length (0: min(training context, 512)) */
    int64_t max_chunks; /* LLMs: chunks to score (0: all); other kinds: samples (0: all) */
    bool progress;      /* progress on stderr when it is a terminal */
};

/* Receives one matmul input of layer `layer`: x holds K x M floats (M columns of K), a
 * host copy valid during the call. A negative return stops the run. */
typedef int (*mq_capture_fn)(void *arg, int layer, const float *x, int64_t K, int64_t M);

struct mq_runner_ops {
    const char *kind; /* "llama", "onnx" */
    /* The workload a model of this kind is measured on by default ("decode:512", "infer:1"). */
    const char *default_workload;
    /* Whether this kind runs that workload kind (LLMs: decode/prefill/generate; ONNX: infer). */
    bool (*accepts)(const struct mq_model *m, const struct mq_workload *w);
    /* Optional (NULL: every accepted workload runs): MQ_OK when this model can run w,
     * else one error line saying what the user must give (an ONNX input whose size only
     * --shapes can say). mq_runner_check calls it, so a command fails once, up front. */
    int (*check)(const struct mq_model *m, const struct mq_workload *w);
    int (*session_new)(const struct mq_model *m, const struct mq_plan *p, struct be_backend *be,
                       const struct mq_workload *w, void **out);
    /* One run of the workload; returns after the backend finished it (synced). */
    int (*session_run)(void *s);
    void (*session_free)(void *s);
    /* The matmul of layer i in one workload run: columns M per call and calls per run
     * (decode: M = 1, once; prefill:N: M = N; generate:P,G: M = P once and M = 1 G times,
     * reported as two entries; conv: M = output pixels x batch; an ONNX weight that several
     * nodes read: one entry per distinct M). Returns the number of (M, calls) entries
     * written (at most 4); 0, quietly, when the layer does not run or the workload cannot
     * be priced (mq_runner_check says why). */
    int (*layer_work)(const struct mq_model *m, int layer, const struct mq_workload *w, int64_t M[4],
                      int64_t calls[4]);
    /* Predicted memory of a workload run under a plan. */
    int (*memory)(const struct mq_model *m, const struct mq_plan *p, const struct mq_workload *w,
                  struct mq_memory *out);
    /* Frees m->impl (other kinds than llama); NULL when there is nothing. */
    void (*free_impl)(struct mq_model *m);
    /* Prints the kind-specific lines of `mixq info` (architecture, hyperparameters or
     * graph inputs and outputs), each "key  value". */
    void (*describe)(const struct mq_model *m, FILE *f);

    /* Quality: quality_new loads the evaluation data and computes the reference outputs
     * once on `be` (LLMs: mq_plan_reference, each layer as stored; ONNX: the f32 plan,
     * which is how ONNX files store their weights); quality_eval measures one plan
     * against them. */
    int (*quality_new)(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg,
                       void **out);
    int (*quality_eval)(void *q, const struct mq_plan *p, struct mq_quality *out);
    void (*quality_free)(void *q);
    /* Optional (NULL: "kl"): the unit of quality_eval's loss with cfg's data, as the
     * sensitivity tables name it ("kl", "rel_mse", "kl+rel_mse"). */
    const char *(*loss_name)(const struct mq_model *m, const struct mq_quality_config *cfg);
    /* Runs the reference (mq_plan_reference) model on a calibration sample of the evaluation
     * data (LLMs: the first chunk of cfg->ctx tokens) and hands every matmul's input to fn,
     * for the proxy sensitivity (each layer's own output error). Layers without a matmul
     * (an untied token_embd is a lookup) are never handed. */
    int (*capture)(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg,
                   mq_capture_fn fn, void *arg);
};

/* Checks that the model kind runs the workload (MQ_EINVAL with one line otherwise) and
 * that this model can (the runner's check). */
int mq_runner_check(const struct mq_model *m, const struct mq_workload *w);

#endif
