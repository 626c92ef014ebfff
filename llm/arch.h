/* llm/arch.h - the transformer architectures mixq runs from GGUF, one table row each.
 *
 *     const struct mq_arch *a = mq_arch_find("qwen2");     // NULL: not supported
 *     if (a->flags & MQ_ARCH_QK_NORM) ...
 *
 * Every architecture is the llama block with a few differences, and a row names them:
 * its RoPE pairing, its feed-forward activation, the flags below and its sliding-window
 * pattern. What all rows share is read the same way for every architecture (llm/
 * llama_model.c), as llama.cpp's loader does: the hyperparameter keys "<arch>.*"
 * (attention.key_length sets the head size where it differs from n_embd / n_head); the
 * tensors token_embd, output_norm, output (absent: tied to token_embd), and per block
 * attn_norm, either attn_qkv (fused Q, K and V rows: one layer of the plan) or attn_q,
 * attn_k and attn_v, each with an optional bias, attn_output, ffn_norm, ffn_gate, ffn_up
 * and ffn_down. A file holding a tensor the row does not use (llama 3.1's rope_freqs,
 * phi3's long-context rope factors, experts) is refused: running it without that tensor
 * would be a silent wrong answer.
 *
 * Where each difference comes from (llama.cpp's src/models/<arch>.cpp, vendored by
 * llama-cpp-python 0.3.36):
 *   llama   pairs (2i, 2i+1), SiLU gate
 *   qwen2   NEOX pairs; Q/K/V biases (optional for every row, present in qwen2 files)
 *   qwen3   NEOX; RMSNorm of each Q and K head before RoPE (attn_q_norm, attn_k_norm)
 *   phi3    NEOX; ffn_up holds the gate rows then the up rows (no ffn_gate); files are
 *           usually fused attn_qkv. Long-context rope factors are refused.
 *   gemma   NEOX; GELU gate; embeddings scaled by sqrt(n_embd); output always tied
 *   gemma2  gemma's, plus RMSNorm of the attention and FFN outputs before their residual
 *           adds (post_attention_norm, post_ffw_norm); Q scaled by 1/sqrt(head size) (the
 *           27B shape: 1/sqrt(n_embd / n_head)); attention logits soft-capped (default 50)
 *           and the final logits (default 30); every second layer slides (window 4096
 *           unless the file says)
 *   gemma3  gemma2's norms and scaling, with q/k norms, no soft-capping unless the file
 *           says, and five of six layers sliding when the file gives a window; the sliding
 *           layers rotate with rope.freq_base_swa (default 10000) and no scaling
 *
 * Ownership: the table is static and constant.
 *
 * Dependency rule: llm/ depends on model/, tokenizer/, gguf/, backends/ and core/.
 */
#ifndef MQ_LLM_ARCH_H
#define MQ_LLM_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

enum mq_ffn_act { MQ_FFN_SILU, MQ_FFN_GELU };

enum mq_arch_flag {
    MQ_ARCH_QK_NORM = 1u << 0,       /* attn_q_norm, attn_k_norm [head size], before RoPE */
    MQ_ARCH_POST_NORMS = 1u << 1,    /* post_attention_norm, post_ffw_norm [n_embd] */
    MQ_ARCH_EMBD_SCALE = 1u << 2,    /* token embeddings times sqrt(n_embd) */
    MQ_ARCH_FUSED_GATE_UP = 1u << 3, /* ffn_up is [n_embd, 2 n_ff]: gate rows, then up rows */
    MQ_ARCH_GEMMA_Q_SCALE = 1u << 4, /* Q scale 1/sqrt(head size), 1/sqrt(n_embd/n_head) at 27B */
    MQ_ARCH_SOFTCAP = 1u << 5,       /* attention (default 50) and final (default 30) soft caps */
    MQ_ARCH_TIED = 1u << 6,          /* the output is always token_embd (no output tensor) */
    MQ_ARCH_ROPE_FREQS = 1u << 7,    /* optional rope_freqs [n_rot/2]: RoPE frequency factors */
    MQ_ARCH_LONGROPE = 1u << 8,      /* optional rope_factors_long/short [n_rot/2] (LongRoPE) */
};

struct mq_arch {
    const char *name;           /* general.architecture */
    enum be_rope_mode rope_mode;
    enum mq_ffn_act act;
    uint32_t flags;             /* enum mq_arch_flag */
    /* sliding-window attention: layer il slides when il % swa_pattern < swa_pattern - 1
     * (llama.cpp's set_swa_pattern); 0: no layer slides */
    int swa_pattern;
    int64_t swa_window_default; /* window when the file gives none; 0: no sliding then */
    bool swa_base_is_global;    /* sliding layers' default RoPE base: the global one (else 10000) */
    int64_t n_layer_27b;        /* gemma's 27B shape (Q scale), 0: none */
};

/* The row of general.architecture `name`, or NULL. */
const struct mq_arch *mq_arch_find(const char *name);

/* Row i in table order, or NULL past the end (i >= 0). */
const struct mq_arch *mq_arch_get(int i);

/* The supported names, comma-separated ("llama, qwen2, ..."), into buf. */
void mq_arch_list(char *buf, size_t size);

#endif
