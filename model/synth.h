/* model/synth.h - synthetic models: GGUF files of random weights at the shapes of real
 * models, for cost profiling, and of every architecture mixq runs (llm/arch.h), small, as
 * oracles of the forward pass against llama.cpp.
 *
 *     struct mq_synth_config c;
 *     if (mq_synth_preset("7B", &c) < 0) ...                  // MQ_ENOTFOUND, silent
 *     struct mq_synth_options o = {.type = MQ_DTYPE_Q4_0, .seed = 1};
 *     if (mq_synth_write(&c, &o, "llama-7b-synth.gguf") < 0) return -1;   // one line printed
 *
 * What a cost measurement needs from a model is its shapes and storage types: a matmul
 * of 4096 x 11008 q4_0 weights takes the same time whatever the weights are. These files
 * give the profiler real model sizes (Llama-3.2-1B, Llama-2-7B, ...) without downloading
 * anything. Their outputs are meaningless: never measure quality (perplexity, KL,
 * sensitivity) on them. The file says so twice: general.name starts with "synthetic" and
 * the key mixq.synthetic is true (mq_synth_is_marked), with the preset, seed and
 * weight scale under mixq.synthetic.*.
 *
 * The file: general.architecture (the config's, "llama" by default), its hyperparameter
 * keys, token_embd, n_layer blocks (attn_norm, attn_q/k/v/output, ffn_norm,
 * ffn_gate/up/down), output_norm and an untied output, in that order. Other
 * architectures get what their row says they have: qwen2 Q/K/V biases (random, uniform
 * in +-0.5), phi3 fused attn_qkv and gate-and-up ffn_up, qwen3 and gemma3 per-head Q/K
 * norms, gemma2 and gemma3 post norms, gemma's tied output, gemma2's soft caps (10 for
 * attention and 3 for the output, smaller than the real 50 and 30 so that capping shows
 * in a small model's logits) and a sliding window (config n_swa) where the architecture
 * slides; attention.key_length when head_dim is set. Weight matrices are normal(0, stddev) (0.02 unless
 * set), drawn by a fast deterministic generator (the same seed gives the same bytes,
 * whatever the thread count) and stored in the chosen type (q8_0 and q4_0 by mixq's
 * reference quantizers); norm weights are 1, in f32. The vocabulary is gpt2-kind and
 * byte-level like the bundled model's: 256 byte tokens in GPT-2's byte-to-unicode
 * spelling (token id = byte value), BOS "<s>" (256), EOS "</s>" (257), one NUL-NUL merge
 * (258, never seen in text), pre-tokenizer "default", then unused filler tokens
 * "<filler_N>" up to the vocabulary size, so mixq and llama.cpp load and tokenize it.
 *
 * Writing streams tensor by tensor through the GGUF writer's row callbacks: memory use is
 * a few MiB whatever the model size. The file is written atomically; before anything is
 * generated, the free space of the destination's file system is checked against the
 * file's exact size and a request that does not fit is refused.
 *
 * Ownership: configs are plain values (their strings are static); nothing is allocated
 * that outlives a call.
 *
 * Dependency rule: model/ depends on gguf/, tokenizer/, backends/ and core/; this file on
 * core/, gguf/gguf.h and llm/arch.h (the architecture table, to write each one's tensors).
 */
#ifndef MQ_MODEL_SYNTH_H
#define MQ_MODEL_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "gguf/gguf.h"

/* The smallest vocabulary: 256 bytes, BOS, EOS and the merge result. */
#define MQ_SYNTH_MIN_VOCAB 259
#define MQ_SYNTH_MAX_VOCAB (1 << 22)

struct mq_synth_config {
    const char *name; /* preset name, "1B" (static) */
    const char *like; /* the model whose shapes these are, "Llama-3.2-1B" (static) */
    int64_t n_vocab, n_ctx, n_embd, n_layer, n_ff, n_head, n_head_kv;
    float rope_theta, norm_eps;
    /* the architecture (a row of llm/arch.h; NULL: "llama") and what only some have */
    const char *arch;
    int64_t head_dim; /* per head; 0: n_embd / n_head (written as attention.key_length) */
    int64_t n_swa;    /* sliding window of the sliding layers; 0: the architecture's default */
    /* RoPE frequency factors. llama (MQ_ARCH_ROPE_FREQS): rope_freqs.weight, llama 3.1's,
     * by convert_hf_to_gguf's "llama3" rule (factor 8, low/high frequency factors 1 and 4)
     * with n_ctx as the original context. phi3 (MQ_ARCH_LONGROPE): LongRoPE's
     * rope_factors_long/short.weight (made-up ramps), an original context of n_ctx / 8 and
     * the attention factor convert_hf_to_gguf derives from it, sqrt(1 + ln 8 / ln(n_ctx/8)) */
    bool rope_freqs;
};

/* The presets, in table order (tiny, 1B, 3B, 7B, 8B, 13B, 70B); *n receives the count. */
const struct mq_synth_config *mq_synth_presets(size_t *n);

/* The preset named `name` (case-insensitive), copied into *out; MQ_ENOTFOUND, silent. */
int mq_synth_preset(const char *name, struct mq_synth_config *out);

/* Checks a config's shapes (heads divide the embedding, kv heads divide the heads, rows a
 * multiple of 32 so that every plan format fits, vocabulary in range) and architecture:
 * MQ_EINVAL with one line otherwise. */
int mq_synth_check(const struct mq_synth_config *c);

/* Weight elements of the whole model (matrices and norms); 0 without heads. */
int64_t mq_synth_n_params(const struct mq_synth_config *c);

struct mq_synth_options {
    enum mq_dtype type; /* weight type: f32, f16, bf16, q8_0 or q4_0 (0 is f32) */
    uint64_t seed;
    double stddev; /* of the weights; 0: 0.02 */
    int threads;   /* generating and quantizing; 0: mq_pool_default_threads() */
    /* Bytes the file may take. 0: the free space of the destination's file system less
     * a reserve of MQ_SYNTH_DISK_RESERVE (tests set a budget). */
    uint64_t disk_budget;
    bool progress; /* progress on stderr when it is a terminal */
};

#define MQ_SYNTH_DISK_RESERVE ((uint64_t)64 << 20)

/* The exact size of the file mq_synth_write would write. */
int mq_synth_file_bytes(const struct mq_synth_config *c, const struct mq_synth_options *o,
                        uint64_t *bytes);

/* Writes the model to path (atomically). Refuses, before writing anything, a file larger
 * than the disk budget (MQ_EIO, naming both sizes and what q4_0 would take). */
int mq_synth_write(const struct mq_synth_config *c, const struct mq_synth_options *o,
                   const char *path);

/* Whether a GGUF file says it is synthetic (mixq.synthetic = true). */
bool mq_synth_is_marked(const struct mq_gguf *g);

#endif
