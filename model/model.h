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
 * with a role. Everything else (norm weights, the attention arithmetic, activations) is
 * glue and stays F32. A model with a tied output (no output.weight) uses token_embd
 * both for the lookup and as the output matrix: one layer, two uses.
 *
 * Supported: general.architecture "llama" (the llama family's hyperparameter keys).
 * Other architectures, and tensors or shapes that do not fit the llama layout, are
 * refused with one line naming what is wrong.
 *
 * Ownership: mq_model owns the mapped GGUF and everything it points to; layer tensor
 * pointers are borrowed from it and live until mq_model_free.
 *
 * Dependency rule: model/ depends on backends/ and core/ only.
 */
#ifndef MQ_MODEL_MODEL_H
#define MQ_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "model/gguf.h"

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
    MQ_ROLE_COUNT
};

/* "attn_q", ... (the tensor-name part, as in files) */
const char *mq_layer_role_name(enum mq_layer_role role);

struct mq_layer {
    char name[MQ_GGUF_MAX_NAME + 1];
    enum mq_layer_role role;
    int block;                           /* transformer block, -1 for token_embd and output */
    int64_t n_in, n_out;                 /* ne[0] (reduction) and ne[1] (rows) */
    const struct mq_gguf_tensor *tensor; /* source weights, borrowed from the model */
};

struct mq_hparams {
    int64_t n_vocab;
    int64_t n_ctx_train;
    int64_t n_embd;
    int64_t n_layer;
    int64_t n_ff;
    int64_t n_head;
    int64_t n_head_kv;
    int64_t head_dim; /* n_embd / n_head */
    int n_rot;        /* rotary dimensions per head */
    int rope_mode;    /* BE_ROPE_NORM for llama */
    float rope_theta;
    float rope_freq_scale; /* 1 / linear scaling factor */
    float norm_eps;
    bool tied_output;
};

struct mq_vocab;

struct mq_model {
    char path[4096];
    char arch[64];
    char name[256];
    struct mq_hparams hp;
    int n_layers;
    struct mq_layer *layers; /* quantizable layers, in file order */
    int layer_token_embd;    /* index into layers */
    int layer_output;        /* == layer_token_embd when the output is tied */
    /* glue */
    const struct mq_gguf_tensor **attn_norm; /* [n_layer] */
    const struct mq_gguf_tensor **ffn_norm;  /* [n_layer] */
    const struct mq_gguf_tensor *output_norm;
    /* index into layers of block b's role r, or -1: block_layer[b * MQ_ROLE_COUNT + r] */
    int *block_layer;
    struct mq_vocab *vocab;
    struct mq_gguf *gguf;
    int64_t n_params;    /* every tensor's elements */
    uint64_t file_bytes; /* size of the file */
};

int mq_model_load(const char *path, struct mq_model **out);
/* NULL is a no-op. */
void mq_model_free(struct mq_model *m);

/* The layer index of `name`, or -1. */
int mq_model_find_layer(const struct mq_model *m, const char *name);

/* The source type that weights were stored in, when all quantizable layers share one;
 * otherwise *mixed = true and the most common one is returned. */
enum mq_dtype mq_model_source_type(const struct mq_model *m, bool *mixed);

#endif
