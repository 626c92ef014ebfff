/* model/plan.h - a plan: one storage format per quantizable layer of a model.
 *
 *     struct mq_plan *p;
 *     mq_plan_uniform(model, MQ_DTYPE_Q4_0, &p);     // every layer Q4_0
 *     p->fmt[mq_model_find_layer(model, "output.weight")] = MQ_DTYPE_Q8_0;
 *     mq_plan_check(model, p);                        // every format fits its layer
 *     mq_plan_free(p);
 *
 * Plans are what the search chooses and what profiler and sensitivity analysis price.
 * Plan files (YAML) are read by reports/plan_io.h.
 *
 * Ownership: mq_plan_uniform returns a plan the caller frees with mq_plan_free.
 *
 * Dependency rule: model/ depends on gguf/, tokenizer/, backends/ and core/; only eval.c,
 * imatrix.c (the llama forward pass) and loader.c (the loaders) reach llm/ and onnx/.
 */
#ifndef MQ_MODEL_PLAN_H
#define MQ_MODEL_PLAN_H

#include <stdint.h>

#include "core/dtype.h"
#include "model/model.h"

struct mq_plan {
    int n_layers;        /* == model->n_layers */
    enum mq_dtype *fmt;  /* [n_layers], indexed like model->layers */
    char label[128];     /* for reports: "q4_0", "mixed (plan.yaml)", "llama.cpp Q4_K_M" */
    int ftype;           /* the llama_ftype general.file_type says (a preset's, model/preset.h),
                            -1: the plan's most common format's (model/quantize.h); every
                            constructor below sets -1 */
    bool timing_only;    /* a session of it is timed or its memory measured, its outputs never
                            read: weights are rounded plainly (no importance weights or error
                            compensation; same formats and bytes per row, other values), which
                            saves the compensation's O(n_out * n_in^2) per layer. false from
                            every constructor; not part of the plan's text */
};

int mq_plan_uniform(const struct mq_model *m, enum mq_dtype fmt, struct mq_plan **out);
/* Every layer in the type it is stored in ("source"): MQ_EUNSUPPORTED (printed, naming
 * the layer) when a stored type is not a plan format (e.g. q6_k). */
int mq_plan_source(const struct mq_model *m, struct mq_plan **out);
struct be_backend;
/* The reference every quality figure is measured against ("full precision"): each layer
 * in the type it is stored in, where that is a plan format the layer allows and `be` has
 * matmul and row-lookup kernels for, else f32 (the stored values widened exactly). The
 * forward pass then runs the shipped weights through the backend's kernels for their type
 * (block formats: activations quantized on the fly to q8_0 / q8_K blocks), which is how
 * llama-perplexity computes its base logits from the same file; an f16 file is never widened
 * into an f32 copy. For an f32 file it is the all-f32 plan. Label "reference (...)". */
int mq_plan_reference(const struct mq_model *m, const struct be_backend *be, struct mq_plan **out);
/* A hash of the plan's formats by name (cache keys of what depends on a plan). */
uint64_t mq_plan_hash(const struct mq_plan *p);
/* A copy; the caller frees it. */
int mq_plan_clone(const struct mq_plan *p, struct mq_plan **out);
void mq_plan_free(struct mq_plan *p);

/* MQ_EINVAL (printed, naming the layer) when a format is not a plan format or does not
 * divide the layer's row length into whole blocks; the plan must match the model. */
int mq_plan_check(const struct mq_model *m, const struct mq_plan *p);

/* Bytes of all quantizable layers' weights in the plan's formats. */
uint64_t mq_plan_weight_bytes(const struct mq_model *m, const struct mq_plan *p);

/* A plan as text: one format name per layer, comma-separated ("f16,q4_0,q4_0,...").
 * *out is malloc'd (the caller frees it). */
int mq_plan_to_string(const struct mq_plan *p, char **out);
/* The reverse; also accepts a single format name for every layer. MQ_EINVAL (printed)
 * on a count that does not match the model or an unknown format. */
int mq_plan_from_string(const struct mq_model *m, const char *text, struct mq_plan **out);

/* Fills label with the common format name, or "mixed". */
void mq_plan_describe(const struct mq_plan *p, char *buf, size_t size);

#endif
