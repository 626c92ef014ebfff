/* model/model.h - a model as mixq sees it: hyperparameters, the list of quantizable
 * layers, the glue tensors, and the vocabulary, loaded from a GGUF file.
 *
 *     struct mq_model *m;
 *     if (mq_model_load("tinyllm.gguf", &m) < 0) return -1;   // one line printed
 *     for (int i = 0; i < m->n_layers; i++)
 *         printf("%s %s [%lld x %lld]\n", m->layers[i].name, mq_layer_role_name(m->layers[i].role),
 *                m->layers[i].n_in, m->layers[i].n_out);
 *     mq_model_free(m);
 *
 * A quantizable layer is one weight matrix named as in the file ("blk.3.attn_q.weight")
 * with a role; a fused matrix (attn_qkv, phi3's gate-and-up ffn_up) is one layer, stored
 * in one format. Everything else (norm weights, the attention arithmetic, activations) is
 * glue and stays F32. A model with a tied output (no output.weight) uses token_embd
 * both for the lookup and as the output matrix: one layer, two uses.
 *
 * Supported: GGUF files of the architectures in llm/arch.h's table (llama, qwen2, qwen3,
 * phi3, gemma, gemma2, gemma3), and ONNX files (onnx/onnx.h). mq_model_load picks
 * the loader by the file's first bytes from model/loader.h's table. Other architectures,
 * and tensors or shapes that do not fit, are refused with one line naming what is wrong.
 * How a model runs (sessions for workloads, its memory model) is behind model/runner.h,
 * so that the profiler and the search treat every kind alike.
 *
 * Ownership: mq_model owns the mapped GGUF and everything it points to; layer tensor
 * pointers are borrowed from it and live until mq_model_free.
 *
 * Dependency rule: model/ depends on gguf/, tokenizer/, backends/ and core/; only eval.c,
 * imatrix.c (the forward pass), loader.c (the loaders) and synth.c (the architecture
 * table) reach llm/ and onnx/.
 */
#ifndef MQ_MODEL_MODEL_H
#define MQ_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/progress.h"
#include "gguf/gguf.h"

#include <stddef.h>

enum mq_layer_role {
    MQ_ROLE_TOKEN_EMBD,
    MQ_ROLE_ATTN_Q,
    MQ_ROLE_ATTN_K,
    MQ_ROLE_ATTN_V,
    MQ_ROLE_ATTN_OUTPUT,
    MQ_ROLE_FFN_GATE,
    MQ_ROLE_FFN_UP,
    MQ_ROLE_FFN_DOWN,
    MQ_ROLE_OUTPUT,
    /* ONNX models */
    MQ_ROLE_CONV,           /* Conv: N = output channels, K = input channels / groups x kernel */
    MQ_ROLE_CONV_TRANSPOSE, /* ConvTranspose, seen as a matmul of the same shape */
    MQ_ROLE_GEMM,           /* Gemm, and MatMul with a constant weight */
    /* GGUF architectures with fused tensors (llm/arch.h): Q, K and V rows in one matrix */
    MQ_ROLE_ATTN_QKV,
    MQ_ROLE_COUNT
};

/* "attn_q", ... (the tensor-name part, as in files) */
const char *mq_layer_role_name(enum mq_layer_role role);

struct mq_layer {
    char name[MQ_GGUF_MAX_NAME + 1]; /* as in the file: "blk.3.attn_q.weight", an ONNX initializer */
    enum mq_layer_role role;
    int block;          /* transformer block, -1 where there is none */
    int64_t n_in;       /* K: the reduction length of one output (blocks run along it) */
    int64_t n_out;      /* N: output rows */
    /* the weights as stored: n_out rows of n_in values of src_type, row-major */
    enum mq_dtype src_type;
    const void *src_data; /* borrowed from the model (its mapping or its own buffers) */
    size_t src_nbytes;
    uint32_t formats;   /* bit per enum mq_dtype: formats this layer can be stored in */
    /* importance weights [n_in] (an imatrix's mean squared activations per input column)
     * every quantization of this layer uses, or NULL (plain quantization); owned by the
     * model, set by mq_model_set_imatrix (model/imatrix.h) */
    const float *imp;
    /* the upper factor [n_in][n_in] of the damped inverse Gram matrix of this layer's
     * inputs (core/compensate.h): quantizations are error-compensated with it; NULL:
     * none. Owned by the model (gram_data), set by mq_model_set_imatrix */
    const float *gram_u;
};

struct mq_hparams {
    int64_t n_vocab;
    int64_t n_ctx_train;
    int64_t n_embd;
    int64_t n_layer;
    int64_t n_ff;
    int64_t n_head;
    int64_t n_head_kv;
    int64_t head_dim; /* per head, Q, K and V alike: attention.key_length, else n_embd / n_head */
    int n_rot;        /* rotary dimensions per head */
    int rope_mode;    /* enum be_rope_mode: the architecture's (llm/arch.h) */
    float rope_theta;
    float rope_freq_scale; /* 1 / linear scaling factor */
    float rope_attn_factor; /* rope.scaling.attn_factor: the rotated values times it (phi3's
                               LongRoPE); 1: none */
    int64_t n_ctx_orig;     /* rope.scaling.original_context_length (n_ctx_train when absent):
                               contexts longer than it (rounded up to 256, as llama.cpp
                               rounds) take phi3's long RoPE factors */
    float norm_eps;
    bool tied_output;
    /* what the architecture adds (llm/arch.h; the llama values are the defaults) */
    float attn_scale;      /* of the Q.K scores: 1/sqrt(head_dim) unless the architecture says */
    float attn_softcap;    /* attention logits c * tanh(x / c); 0: none */
    float final_softcap;   /* output logits, the same; 0: none */
    float embd_scale;      /* token embeddings times this; 1: none */
    int64_t n_swa;         /* sliding window of the sliding layers (mq_block.swa); 0: none */
    float rope_theta_swa;  /* RoPE base and frequency scale of the sliding layers */
    float rope_freq_scale_swa;
};

/* A block's glue tensors: the norm weights every architecture has, and those only some
 * have. The forward pass keeps them as F32 vectors in the same order. */
enum mq_glue {
    MQ_GLUE_ATTN_NORM,      /* [n_embd] */
    MQ_GLUE_FFN_NORM,       /* [n_embd] */
    MQ_GLUE_Q_NORM,         /* [head_dim] per-head norms (qwen3, gemma3) */
    MQ_GLUE_K_NORM,
    MQ_GLUE_ATTN_POST_NORM, /* [n_embd] (gemma2, gemma3) */
    MQ_GLUE_FFN_POST_NORM,
    MQ_GLUE_BIAS_Q,         /* [its rows]; a fused attn_qkv's bias [Q + 2 KV] is here alone */
    MQ_GLUE_BIAS_K,
    MQ_GLUE_BIAS_V,
    MQ_GLUE_COUNT
};

struct mq_block {
    const struct mq_gguf_tensor *glue[MQ_GLUE_COUNT]; /* borrowed from the GGUF; NULL: absent */
    bool swa; /* attends over the last n_swa positions only */
};

/* MQ_MODEL_LLAMA: a GGUF transformer of any architecture in llm/arch.h's table (the llama
 * family and the others that differ from it in a few places) */
enum mq_model_kind { MQ_MODEL_LLAMA, MQ_MODEL_ONNX };

struct mq_vocab;
struct mq_arch;
struct mq_runner_ops;

struct mq_model {
    char path[4096];
    enum mq_model_kind kind;
    const struct mq_runner_ops *runner; /* how to run it (model/runner.h) */
    char arch[64];
    char name[256];
    int n_layers;
    struct mq_layer *layers; /* quantizable layers, in file order */
    int64_t n_params;        /* every weight's elements */
    uint64_t file_bytes;     /* size of the file */
    uint64_t content_hash;   /* hash of the file's bytes, and of the input shapes given at
                                load (cache keys) */
    char *input_shapes;      /* the shapes given at load (model/shapes.h's canonical text),
                                owned; NULL when none */

    /* GGUF transformers (kind MQ_MODEL_LLAMA: every architecture of llm/arch.h) */
    const struct mq_arch *arch_row; /* the architecture's row */
    struct mq_hparams hp;
    int layer_token_embd;    /* index into layers */
    int layer_output;        /* == layer_token_embd when the output is tied */
    struct mq_block *blocks; /* [n_layer] */
    const struct mq_gguf_tensor *output_norm;
    /* RoPE frequency factors [n_rot/2] (rope_freqs.weight: llama 3.1+, whose long-context
     * scaling is baked into them), or NULL: each pair's angle is divided by its factor.
     * phi3's LongRoPE has two (rope_factors_long/short.weight): a forward pass takes the
     * long ones when its context is over hp.n_ctx_orig, as llama.cpp does */
    const struct mq_gguf_tensor *rope_freqs, *rope_long, *rope_short;
    /* index into layers of block b's role r, or -1: block_layer[b * MQ_ROLE_COUNT + r] */
    int *block_layer;
    struct mq_vocab *vocab;
    struct mq_gguf *gguf;

    /* other kinds keep their own state here (freed by mq_model_free through the runner) */
    void *impl;
    /* the layers' importance weights (their `imp` point into it), or NULL; owned */
    float *imp_data;
    uint64_t imp_hash; /* hash of the importance weights and which layers have them; 0: none
                          (caches of anything quantized key on it beside content_hash) */
    bool has_imatrix;  /* an importance matrix was applied, even one that covers no layer (as
                          llama-quantize --imatrix: its preset rules then see one) */
    float *gram_data;  /* the layers' gram_u factors (one per distinct Gram matrix), or NULL; owned */
    int n_compensated; /* layers with a gram_u */
    /* the imatrix file applied and whether with its Gram factors (""; the caller that read
     * it says), so that another process (an MPI rank, core/dist.h) can apply the same */
    char imatrix_path[4096];
    bool imatrix_compensate;
};

/* Loads a model: GGUF (an architecture of llm/arch.h) or ONNX, told apart by the file's magic
 * (model/loader.h). The caller frees *out with mq_model_free. */
int mq_model_load(const char *path, struct mq_model **out);
/* The same with input shapes the user fixes (model/shapes.h; NULL or none: mq_model_load).
 * ONNX models check every name and rank against the file and fold the shapes into
 * content_hash (so caches and reports keyed by the model tell two input sizes apart);
 * other kinds refuse shapes with one line (MQ_EINVAL). `shapes` is borrowed. */
struct mq_input_shapes;
int mq_model_load_shaped(const char *path, const struct mq_input_shapes *shapes, struct mq_model **out);
/* NULL is a no-op. */
void mq_model_free(struct mq_model *m);

struct be_backend;
/* Lends the model's file mapping (GGUF models; others: nothing) to `be` (be_lend in
 * backends/backend.h): weights uploaded in their stored type borrow the file's pages where
 * the backend keeps ggml's layout, and the pages of what it copies are released after
 * the upload. The model must outlive every tensor uploaded after this (sessions borrow
 * the model already); be_close, or the model's mq_model_unlend, ends it. */
int mq_model_lend(const struct mq_model *m, struct be_backend *be);
void mq_model_unlend(const struct mq_model *m, struct be_backend *be);
/* Drops the resident pages of the model's file mapping (GGUF models; others: nothing):
 * they are re-read from the file when anything reads them again. For after loading
 * (hashing reads small files whole) and before measuring a process's RSS. */
void mq_model_drop_pages(const struct mq_model *m);
/* The same for the whole pages of layer i's stored weights: for after they were converted
 * (the conversion is what stays resident), so that a model converted layer by layer never
 * holds its source beside the result. */
void mq_model_release_layer(const struct mq_model *m, int i);

/* A progress line ("uploading WHAT MiB i/n", with the time left; core/progress.h) while
 * `be` uploads about total_bytes of weights, through be_set_upload_hook: begin before
 * building a context, end after (it clears the hook). */
struct mq_upload_progress {
    struct mq_progress pr;
    uint64_t done;
    struct be_backend *be;
};
void mq_upload_progress_begin(struct mq_upload_progress *u, struct be_backend *be, uint64_t total_bytes, bool enabled,
                              const char *what);
void mq_upload_progress_end(struct mq_upload_progress *u);

/* The layer index of `name`, or -1. */
int mq_model_find_layer(const struct mq_model *m, const char *name);

/* The source type that weights were stored in, when all quantizable layers share one;
 * otherwise *mixed = true and the most common one is returned. */
enum mq_dtype mq_model_source_type(const struct mq_model *m, bool *mixed);

/* Whether layer i may be stored in format t (block size divides its rows, plan format). */
static inline bool mq_layer_allows(const struct mq_layer *l, enum mq_dtype t)
{
    return (l->formats >> t) & 1u;
}

/* The formats a layer is offered from a menu (a mask of (1u << format); 0: the default
 * menu, core/dtype.h): the menu's formats its rows allow, or where they do not, the format
 * llama.cpp falls back to (mq_dtype_fallback_for_row: 192-wide rows get q5_0 for q4_k,
 * q5_1 for q5_k, q8_0 for q6_k, q4_0 for q3_k), and always the format it is stored in (kept byte for byte as shipped, with no requantization error, it is the one
 * choice that loses nothing: a user whose file is already quantized must see when keeping
 * a layer beats every requantization). */
uint32_t mq_layer_menu(const struct mq_layer *l, uint32_t menu);

/* The union of mq_layer_menu over the model's layers. */
uint32_t mq_model_menu(const struct mq_model *m, uint32_t menu);

/* The formats a layer with rows of n_in can take: every plan format whose block size
 * divides n_in (mq_dtype_formats_for_row). */
uint32_t mq_layer_formats_for(int64_t n_in);

/* A fast 64-bit hash of n bytes (for cache keys; not cryptographic). */
uint64_t mq_hash64(const void *data, size_t n, uint64_t seed);

#endif
