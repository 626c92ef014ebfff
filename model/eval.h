/* model/eval.h - quality of a model under a plan: perplexity and KL divergence against
 * the full-precision model, measured as llama.cpp's llama-perplexity measures them.
 *
 *     struct mq_eval *ev;
 *     struct mq_eval_config cfg = {.n_ctx = 256, .reference = true};
 *     if (mq_eval_new(model, backend, tokens, n, &cfg, &ev) < 0) return -1;  // reference pass once
 *     struct mq_eval_result r;
 *     if (mq_eval_plan(ev, plan, NULL, &r) < 0) ...
 *     printf("ppl %.4f, mean KL %.6f\n", r.ppl, r.kl_mean);
 *     mq_eval_free(ev);
 *
 * Method (llama-perplexity's): the token sequence (with BOS in front when the vocabulary
 * adds one) is cut into n_tokens / n_ctx chunks of n_ctx tokens; the first token of each
 * chunk is replaced by BOS (when the vocabulary adds BOS); each chunk is evaluated from
 * position 0, and only the second half is scored: the logits at positions
 * n_ctx/2 .. n_ctx-2 predict the next token. Perplexity is exp(mean negative
 * log-likelihood). With a reference context, the KL divergence KL(P_ref || P_test) of
 * the next-token distributions is taken at the same positions, and the fraction of
 * positions where both pick the same top token. All sums are in double.
 *
 * The reference is mq_plan_reference (model/plan.h): the weights exactly as the file ships
 * them, each layer in its stored type run by the backend's kernels for that type (f32
 * only where the backend has none), as llama-perplexity computes its base logits from the
 * same file (quantized weights; activations quantized to q8_0 / q8_K blocks by the integer
 * kernels). Nothing is widened into an all-f32 copy of the weights: an f16 8B model's
 * reference holds 16 GB of weights, not 32. For an f32 file it is the all-f32 plan.
 *
 * The reference logits are kept as floats (the forward pass's own output) and turned into
 * log-probabilities in double when a plan is compared, so that KL divergences down to
 * 1e-9 (f16 plans) are not drowned in storage rounding.
 *
 * Ownership: an mq_eval owns its copy of the tokens and the reference logits; it
 * borrows the model and backend.
 *
 * Dependency rule: model/ depends on gguf/, tokenizer/, backends/ and core/; only eval.c,
 * imatrix.c (the llama forward pass) and loader.c (the loaders) reach llm/ and onnx/.
 */
#ifndef MQ_MODEL_EVAL_H
#define MQ_MODEL_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "model/model.h"
#include "model/plan.h"

struct mq_eval_config {
    int64_t n_ctx;      /* chunk length */
    int64_t max_chunks; /* 0: every whole chunk */
    bool progress;      /* "chunk i/n" on stderr when it is a terminal */
    bool reference;     /* compute the reference (mq_plan_reference) logits for KL divergence */
};

struct mq_eval_result {
    int64_t n_tokens, n_chunks, n_scored;
    double nll_mean, nll_stderr; /* nats per scored token */
    double ppl, ppl_stderr;
    bool has_ref;
    double ref_ppl;
    double kl_mean, kl_stderr, kl_median, kl_p99, kl_max;
    double top1_agree;           /* fraction in [0, 1] */
    double seconds, ref_seconds; /* wall time of this plan's pass and of the reference pass */
};

struct mq_eval;

/* Cuts tokens (BOS in front when the vocabulary adds one, as llama-perplexity tokenizes)
 * into chunks and, with cfg->reference, runs the reference plan over them once on `be`,
 * keeping its logits at the scored positions (n_scored x n_vocab floats). Needs at least
 * 2 * n_ctx tokens, as llama-perplexity does. Borrows m, be and tokens (copied). */
int mq_eval_new(const struct mq_model *m, struct be_backend *be, const int32_t *tokens, size_t n_tokens,
                const struct mq_eval_config *cfg, struct mq_eval **out);
/* Evaluates one plan: perplexity, and KL divergence KL(P_ref || P_plan) when the
 * evaluation has a reference. When save_logits is not NULL, the plan's log-probabilities
 * at the scored positions are written there in llama-perplexity's --kl-divergence-base
 * format ("_logits_" header, n_ctx, n_vocab, n_chunk, the chunks' tokens, then per scored
 * position a float scale, a float min log-prob and n_vocab uint16 codes, padded to an
 * even count), so that `llama-perplexity --kl-divergence-base FILE --kl-divergence`
 * compares llama.cpp with mixq. Written atomically. */
int mq_eval_plan(struct mq_eval *ev, const struct mq_plan *p, const char *save_logits, struct mq_eval_result *res);
void mq_eval_free(struct mq_eval *ev);

/* The chunk length an evaluation of m uses: ctx, or for 0 the default, the model's
 * training context up to MQ_EVAL_DEFAULT_CTX tokens. */
#define MQ_EVAL_DEFAULT_CTX 512
int64_t mq_eval_ctx(const struct mq_model *m, int64_t ctx);

#endif
