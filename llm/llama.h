/* llm/llama.h - transformers from GGUF, the llama family and every architecture of
 * llm/arch.h's table: loading one (mq_llama_model_load, the hyperparameters and layers;
 * llm/llama_model.c), its forward pass on any backend with a plan applied (llm/llama.c),
 * and its runner (llm/llama_runner.c).
 *
 *     struct mq_llama *l;
 *     struct mq_llama_config cfg = {.n_ctx = 256, .n_batch = 256};
 *     if (mq_llama_new(model, plan, backend, &cfg, &l) < 0) return -1;
 *     float *logits = malloc(n * model->hp.n_vocab * sizeof(float));
 *     mq_llama_decode(l, tokens, n, 0, logits);     // positions 0..n-1
 *     mq_llama_decode(l, &next, 1, n, logits);      // one more token at position n
 *     mq_llama_free(l);
 *
 * mq_llama_new converts each quantizable layer's weights to the plan's format with
 * core/dtype's reference quantizer (from the source weights dequantized to F32, or the
 * source bytes unchanged when the plan keeps the source format) and uploads them once.
 * A fused layer (attn_qkv, phi3's gate-and-up ffn_up) is converted once, in one format,
 * and uploaded as one tensor per row range. Norm weights and biases are F32. The KV cache
 * is F32, n_ctx positions per layer.
 *
 * One forward pass: token embedding lookup (scaled where the architecture scales it); per
 * block RMSNorm, Q/K/V projections (plus biases; per-head RMSNorm of Q and K where the
 * architecture has them), RoPE on Q and K (the architecture's pairing; the sliding
 * layers' own base), K and V written into the cache at their positions, causal
 * grouped-query attention over the cache (a sliding window and soft cap where the
 * architecture has them), output projection (post norm) and residual add, RMSNorm, SwiGLU
 * or GELU-gated feed-forward (post norm) and residual add; final RMSNorm, the output
 * matrix (token_embd when tied) and the final soft cap. Positions must be consecutive within a call; a call at pos0 overwrites the
 * cache from pos0 on, so a new sequence simply starts again at 0.
 *
 * Ownership: the model and backend are borrowed and must outlive the mq_llama.
 * Logits are written to caller memory, [n][n_vocab] row-major.
 *
 * Dependency rule: llm/ depends on model/, tokenizer/, gguf/, backends/ and core/.
 */
#ifndef MQ_LLM_LLAMA_H
#define MQ_LLM_LLAMA_H

#include <stdint.h>

#include "backends/backend.h"
#include "model/model.h"
#include "model/plan.h"

struct mq_llama_config {
    int64_t n_ctx;   /* KV cache positions; 0: the model's training context */
    int64_t n_batch; /* most tokens per decode call; 0: n_ctx */
};

struct mq_llama;

int mq_llama_new(const struct mq_model *m, const struct mq_plan *plan, struct be_backend *be,
                 const struct mq_llama_config *cfg, struct mq_llama **out);
void mq_llama_free(struct mq_llama *l);

/* Runs n tokens at positions pos0..pos0+n-1 (n <= n_batch, pos0 + n <= n_ctx). Writes
 * n * n_vocab logits when `logits` is not NULL. */
int mq_llama_decode(struct mq_llama *l, const int32_t *tokens, int64_t n, int64_t pos0, float *logits);

int64_t mq_llama_n_ctx(const struct mq_llama *l);

/* Re-uploads one layer's weights in another format (converted from the source), leaving
 * the rest as it is: sensitivity analysis changes one layer at a time. */
int mq_llama_set_layer(struct mq_llama *l, int layer, enum mq_dtype fmt);

/* Called with each matmul's input activations before the matmul runs: x holds K x M
 * floats (M columns of K, host copy, valid during the call). A negative return stops the
 * forward pass with that status. NULL turns capturing off. */
typedef int (*mq_llama_capture_fn)(void *arg, int layer, const float *x, int64_t K, int64_t M);
void mq_llama_set_capture(struct mq_llama *l, mq_llama_capture_fn fn, void *arg);
int64_t mq_llama_n_batch(const struct mq_llama *l);

/* Bytes of weights uploaded (quantizable layers in their plan formats plus norms). */
uint64_t mq_llama_weight_bytes(const struct mq_llama *l);

/* Loads a GGUF file of an architecture of llm/arch.h as a model (llm/llama_model.c; the
 * GGUF row of model/loader.c's table, so mq_model_load calls it for files that start with
 * GGUF's magic): hyperparameters, quantizable layers, glue tensors and vocabulary. The
 * caller frees with mq_model_free. */
int mq_llama_model_load(const char *path, struct mq_model **out);

/* The runner (model/runner.h) of llama models (llm/llama_runner.c). */
extern const struct mq_runner_ops mq_llama_runner;

#endif
