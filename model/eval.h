/* model/eval.h - quality of a model under a plan: perplexity and KL divergence against
 * the full-precision model, measured as llama.cpp's llama-perplexity measures them.
 *
 *     struct mq_eval_config cfg = {.n_ctx = 256};
 *     struct mq_eval_result r;
 *     if (mq_eval_text(model, test_ctx, ref_ctx, tokens, n, &cfg, &r) < 0) return -1;
 *     printf("ppl %.4f, mean KL %.6f\n", r.ppl, r.kl_mean);
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
 * Ownership: everything is borrowed; results are plain values.
 *
 * Dependency rule: model/ depends on backends/ and core/ only.
 */
#ifndef MQ_MODEL_EVAL_H
#define MQ_MODEL_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/llama.h"
#include "model/model.h"

struct mq_eval_config {
    int64_t n_ctx;      /* chunk length; must not exceed either context's n_ctx */
    int64_t max_chunks; /* 0: every whole chunk */
    bool progress;      /* "chunk i/n" on stderr when it is a terminal */
    /* When set, the test model's log-probabilities at the scored positions are written
     * there in llama-perplexity's --kl-divergence-base format ("_logits_" header, n_ctx,
     * n_vocab, n_chunk, the chunks' tokens, then per scored position a float scale, a
     * float min log-prob and n_vocab uint16 codes, padded to an even count), so that
     * `llama-perplexity --kl-divergence-base FILE --kl-divergence` compares llama.cpp
     * with mixq. Written atomically. */
    const char *save_logits;
};

struct mq_eval_result {
    int64_t n_tokens, n_chunks, n_scored;
    double nll_mean, nll_stderr; /* nats per scored token */
    double ppl, ppl_stderr;
    bool has_ref;
    double ref_ppl;
    double kl_mean, kl_stderr, kl_median, kl_p99, kl_max;
    double top1_agree;           /* fraction in [0, 1] */
    double seconds, ref_seconds; /* wall time in the test and the reference passes */
};

/* `ref` may be NULL (no KL). Needs at least 2 * n_ctx tokens, as llama-perplexity does. */
int mq_eval_text(const struct mq_model *m, struct mq_llama *test, struct mq_llama *ref,
                 const int32_t *tokens, size_t n_tokens, const struct mq_eval_config *cfg,
                 struct mq_eval_result *res);

#endif
