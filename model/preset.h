/* model/preset.h - llama.cpp's quantization presets (Q4_K_M, Q3_K_S, ...) as mixq plans.
 *
 *     struct mq_plan *p;
 *     if (mq_plan_preset(model, "q4_k_m", &p) < 0) return -1;   // one line printed
 *     // p->fmt[i]: what llama-quantize MODEL OUT Q4_K_M gives layer i; p->ftype == 15
 *     mq_plan_free(p);
 *
 *     struct mq_preset_result r;
 *     mq_plan_preset_ex(model, "Q3_K_M", NULL, &p, &r);
 *     printf("%d of %d tensor(s) required fallback quantization\n", r.n_fallback, r.n_tensors);
 *
 * A preset is not "every layer in one format": llama-quantize picks each tensor's type by
 * rules that look at the tensor's role, its block index, the model (grouped-query
 * attention, block count, tied output, architecture), the row length, and whether an
 * importance matrix was given. This module computes those choices with the rules of the
 * pinned llama.cpp (src/llama-quant.cpp at commit 0c1e57098bba, vendored by
 * llama-cpp-python 0.3.36, scripts/models.lock): the same per-tensor types llama-quantize
 * writes, so a preset is a plan like any other (priced, evaluated, written by mixq
 * quantize) and the baseline every tune is compared with. The rules are rewritten in C
 * from the facts of that file, not copied; preset.c cites the function and lines of each.
 *
 * What a preset depends on, and where mixq takes it from:
 *   - the preset's base type (llama_ftype_get_default_type): every tensor no rule changes;
 *   - role and block of each layer (model.h's mq_layer), visited in llama.cpp's order;
 *   - row length n_in: a type whose block does not divide it falls back (Q4_K -> Q5_0,
 *     Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0, IQ4_XS -> IQ4_NL; f16 when even the
 *     fallback does not fit), and each such tensor is counted as llama-quantize counts it;
 *   - the model: n_head / n_head_kv, the block count, whether token_embd is the output;
 *   - the architecture, from a table in preset.c ("llama" only for now); GGUF models of
 *     other architectures and ONNX models are refused (MQ_EUNSUPPORTED);
 *   - whether an imatrix is given (the Q4_0/Q5_0 and IQ4_NL/IQ4_XS ffn_down rules): by
 *     default, whether any layer of the model has importance weights (mq_model_set_imatrix,
 *     as 'mixq quantize --imatrix' sets them before the plan is made).
 * Tensors that are not quantizable layers in mixq (norm weights, rope factors) are not in
 * the plan; llama-quantize leaves them as they are (1-D tensors are never quantized), and
 * so does mixq quantize. A model with a 2-D weight that llama-quantize would quantize but
 * that is not a mixq layer is refused, since the plan could not say its type.
 *
 * Presets (llama-quantize's names, case-insensitive; Q3_K, Q4_K and Q5_K are accepted as
 * llama-quantize's aliases of the _M presets): Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M
 * Q5_K_S Q5_K_M Q6_K Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL IQ4_XS F16 BF16 F32. The others
 * (IQ1..IQ3, Q2_K_S, TQ*, MXFP4_MOE) choose types mixq does not have.
 *
 * Ownership: plans returned are the caller's (mq_plan_free); names and preset rows are
 * static.
 *
 * Dependency rule: model/ depends on gguf/, tokenizer/, backends/ and core/; only eval.c,
 * imatrix.c (the llama forward pass) and loader.c (the loaders) reach llm/ and onnx/.
 */
#ifndef MQ_MODEL_PRESET_H
#define MQ_MODEL_PRESET_H

#include <stdbool.h>
#include <stddef.h>

#include "core/dtype.h"
#include "model/model.h"
#include "model/plan.h"

struct mq_preset {
    const char *name;   /* as llama-quantize spells it: "Q4_K_M" */
    int ftype;          /* its llama_ftype, what general.file_type says: 15 */
    enum mq_dtype base; /* llama_ftype_get_default_type: the type no rule changes */
};

/* The preset named `name` (case-insensitive, aliases included), or NULL without printing. */
const struct mq_preset *mq_preset_find(const char *name);

/* The presets' names in table order (aliases left out); *n receives the count. Static. */
const char *const *mq_preset_names(size_t *n);

/* The llama_ftype of a preset, or -1 when `name` is not one. */
int mq_preset_ftype(const char *name);

/* Writes the preset names as "Q2_K, Q3_K_S, ..." into buf (for messages and help). */
void mq_preset_list(char *buf, size_t size);

enum mq_preset_imatrix {
    MQ_PRESET_IMATRIX_MODEL, /* an imatrix is given when one was applied to the model (has_imatrix) */
    MQ_PRESET_IMATRIX_NO,    /* as llama-quantize without --imatrix */
    MQ_PRESET_IMATRIX_YES,   /* as llama-quantize --imatrix FILE */
};

struct mq_preset_options {
    enum mq_preset_imatrix imatrix;
};

struct mq_preset_result {
    const struct mq_preset *preset;
    bool imatrix;   /* whether the rules saw an imatrix */
    int n_fallback; /* tensors whose chosen type did not divide their rows: llama-quantize's
                       "N of M tensor(s) required fallback quantization" */
    int n_tensors;  /* M: every tensor of the file, norms included */
};

/* The plan llama-quantize's preset `name` gives model m: p->fmt as llama-quantize would
 * write each layer, p->ftype the preset's llama_ftype, p->label "llama.cpp Q4_K_M".
 * Errors (one line): an unknown name (MQ_ENOTFOUND, listing the presets), a model the
 * rules do not cover (MQ_EUNSUPPORTED), out of memory. The fallback count is logged at
 * debug level. */
int mq_plan_preset(const struct mq_model *m, const char *name, struct mq_plan **out);

/* The same with options (NULL: the defaults) and the counts in *res (may be NULL). */
int mq_plan_preset_ex(const struct mq_model *m, const char *name, const struct mq_preset_options *o,
                      struct mq_plan **out, struct mq_preset_result *res);

#endif
