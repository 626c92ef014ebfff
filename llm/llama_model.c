/* llm/llama_model.c - llama-family models from GGUF: hyperparameters, layers, glue. The
 * GGUF row of model/loader.c's table; contract in llm/llama.h (mq_llama_model_load). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "llm/llama.h"
#include "model/model.h"
#include "model/runner.h"
#include "tokenizer/tokenizer.h"

/* The file's content hash: every byte for files up to 4 GiB; beyond, the head (metadata
 * and tensor infos), 4 KiB of every MiB and the size, so that opening a 14 GB model does
 * not read it all. */
static uint64_t content_hash(const struct mq_gguf *g)
{
    const uint64_t full_limit = (uint64_t)4 << 30;
    if (g->file_size <= full_limit)
        return mq_hash64(g->base, g->file_size, 0x6d69787100000001ULL);
    uint64_t h = mq_hash64(g->base, g->data_offset, 0x6d69787100000002ULL);
    for (size_t off = g->data_offset; off + 4096 <= g->file_size; off += (size_t)1 << 20)
        h = mq_hash64(g->base + off, 4096, h);
    return h ^ (uint64_t)g->file_size;
}

/* Reads "<arch>.<key>" as a positive integer; `def` < 0 means required. */
static int hp_int(const struct mq_model *m, const char *key, int64_t def, int64_t *out)
{
    char full[160];
    snprintf(full, sizeof(full), "%s.%s", m->arch, key);
    uint64_t v;
    int rc = mq_gguf_get_u64(m->gguf, full, &v);
    if (rc == MQ_ENOTFOUND) {
        if (def < 0)
            return mq_error(MQ_EFORMAT, "'%s': required key '%s' is missing", m->path, full);
        *out = def;
        return MQ_OK;
    }
    if (rc < 0)
        return rc;
    if (v == 0 || v > (1u << 30))
        return mq_error(MQ_EFORMAT, "'%s': %s = %" PRIu64 " is out of range 1..2^30", m->path, full, v);
    *out = (int64_t)v;
    return MQ_OK;
}

static int hp_float(const struct mq_model *m, const char *key, float def, float lo, float hi, float *out)
{
    char full[160];
    snprintf(full, sizeof(full), "%s.%s", m->arch, key);
    int rc = mq_gguf_get_f32(m->gguf, full, out);
    if (rc == MQ_ENOTFOUND) {
        *out = def;
        return MQ_OK;
    }
    if (rc < 0)
        return rc;
    if (!(*out >= lo && *out <= hi))
        return mq_error(MQ_EFORMAT, "'%s': %s = %g is out of range %g..%g", m->path, full, (double)*out,
                        (double)lo, (double)hi);
    return MQ_OK;
}

static int read_hparams(struct mq_model *m)
{
    struct mq_hparams *hp = &m->hp;
    int rc;
    if ((rc = hp_int(m, "context_length", -1, &hp->n_ctx_train)) < 0 ||
        (rc = hp_int(m, "embedding_length", -1, &hp->n_embd)) < 0 ||
        (rc = hp_int(m, "block_count", -1, &hp->n_layer)) < 0 ||
        (rc = hp_int(m, "feed_forward_length", -1, &hp->n_ff)) < 0 ||
        (rc = hp_int(m, "attention.head_count", -1, &hp->n_head)) < 0 ||
        (rc = hp_int(m, "attention.head_count_kv", hp->n_head, &hp->n_head_kv)) < 0)
        return rc;
    if (hp->n_layer > 4096)
        return mq_error(MQ_EFORMAT, "'%s': block_count %" PRId64 " is absurd", m->path, hp->n_layer);
    if (hp->n_embd % hp->n_head)
        return mq_error(MQ_EFORMAT, "'%s': embedding length %" PRId64 " is not a multiple of %" PRId64 " heads",
                        m->path, hp->n_embd, hp->n_head);
    if (hp->n_head % hp->n_head_kv)
        return mq_error(MQ_EFORMAT, "'%s': %" PRId64 " heads are not a multiple of %" PRId64 " kv heads",
                        m->path, hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    int64_t n_rot;
    if ((rc = hp_int(m, "rope.dimension_count", hp->head_dim, &n_rot)) < 0)
        return rc;
    if (n_rot > hp->head_dim || n_rot % 2)
        return mq_error(MQ_EFORMAT, "'%s': rope.dimension_count %" PRId64 " does not fit heads of %" PRId64,
                        m->path, n_rot, hp->head_dim);
    hp->n_rot = (int)n_rot;
    hp->rope_mode = BE_ROPE_NORM;
    if ((rc = hp_float(m, "rope.freq_base", 10000.0f, 1.0f, 1e12f, &hp->rope_theta)) < 0 ||
        (rc = hp_float(m, "attention.layer_norm_rms_epsilon", 1e-5f, 0.0f, 1.0f, &hp->norm_eps)) < 0)
        return rc;
    hp->rope_freq_scale = 1.0f;
    char scaling[32];
    rc = mq_gguf_get_str(m->gguf, "llama.rope.scaling.type", scaling, sizeof(scaling));
    if (rc == MQ_OK && strcmp(scaling, "none") != 0) {
        if (strcmp(scaling, "linear") != 0)
            return mq_error(MQ_EUNSUPPORTED, "'%s': rope scaling '%s' is not supported yet", m->path, scaling);
        float factor;
        if ((rc = hp_float(m, "rope.scaling.factor", 1.0f, 1e-3f, 1e3f, &factor)) < 0)
            return rc;
        hp->rope_freq_scale = 1.0f / factor;
    } else if (rc < 0 && rc != MQ_ENOTFOUND) {
        return rc;
    }
    return MQ_OK;
}

/* Finds a tensor and checks its shape; `required` false returns NULL silently. */
static int want_tensor(struct mq_model *m, const char *name, int64_t ne0, int64_t ne1, bool required,
                       const struct mq_gguf_tensor **out)
{
    const struct mq_gguf_tensor *t = mq_gguf_find_tensor(m->gguf, name);
    *out = t;
    if (!t)
        return required ? mq_error(MQ_EFORMAT, "'%s': tensor '%s' is missing", m->path, name) : MQ_OK;
    int64_t want1 = ne1 ? ne1 : 1;
    if (t->ne[0] != ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1)
        return mq_error(MQ_EFORMAT, "'%s': tensor '%s' is [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                        "], want [%" PRId64 ", %" PRId64 "]",
                        m->path, name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0, want1);
    if (!mq_dtype_get(t->type)->to_f32 || mq_dtype_get(t->type)->is_activation)
        return mq_error(MQ_EUNSUPPORTED, "'%s': tensor '%s' has type %s, which is not a weight type",
                        m->path, name, mq_dtype_name(t->type));
    return MQ_OK;
}

static int add_layer(struct mq_model *m, const struct mq_gguf_tensor *t, enum mq_layer_role role, int block)
{
    struct mq_layer *l = &m->layers[m->n_layers];
    snprintf(l->name, sizeof(l->name), "%s", t->name);
    l->role = role;
    l->block = block;
    l->n_in = t->ne[0];
    l->n_out = t->ne[1];
    l->src_type = t->type;
    l->src_data = t->data;
    l->src_nbytes = t->nbytes;
    l->formats = mq_layer_formats_for(l->n_in);
    if (block >= 0)
        m->block_layer[block * MQ_ROLE_COUNT + role] = m->n_layers;
    return m->n_layers++;
}

static int build_layers(struct mq_model *m)
{
    const struct mq_hparams *hp = &m->hp;
    const struct mq_gguf_tensor *embd, *out, *t;
    int rc;
    embd = mq_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!embd)
        return mq_error(MQ_EFORMAT, "'%s': tensor 'token_embd.weight' is missing", m->path);
    m->hp.n_vocab = embd->ne[1];
    if ((rc = want_tensor(m, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &embd)) < 0 ||
        (rc = want_tensor(m, "output.weight", hp->n_embd, hp->n_vocab, false, &out)) < 0 ||
        (rc = want_tensor(m, "output_norm.weight", hp->n_embd, 0, true, &m->output_norm)) < 0)
        return rc;
    m->hp.tied_output = out == NULL;

    size_t n_max = (size_t)hp->n_layer * 7 + 2;
    m->layers = calloc(n_max, sizeof(*m->layers));
    m->block_layer = malloc((size_t)hp->n_layer * MQ_ROLE_COUNT * sizeof(*m->block_layer));
    m->attn_norm = calloc((size_t)hp->n_layer, sizeof(*m->attn_norm));
    m->ffn_norm = calloc((size_t)hp->n_layer, sizeof(*m->ffn_norm));
    if (!m->layers || !m->block_layer || !m->attn_norm || !m->ffn_norm)
        return mq_error(MQ_ENOMEM, "cannot allocate %zu layers", n_max);
    for (int64_t i = 0; i < hp->n_layer * MQ_ROLE_COUNT; i++)
        m->block_layer[i] = -1;

    m->layer_token_embd = add_layer(m, embd, MQ_ROLE_TOKEN_EMBD, -1);
    int64_t kv = hp->n_head_kv * hp->head_dim;
    static const struct {
        enum mq_layer_role role;
        int in_is_ff, out_kind; /* out: 0 embd, 1 kv, 2 ff */
    } block_tensors[] = {
        {MQ_ROLE_ATTN_Q, 0, 0},    {MQ_ROLE_ATTN_K, 0, 1},   {MQ_ROLE_ATTN_V, 0, 1},
        {MQ_ROLE_ATTN_OUTPUT, 0, 0}, {MQ_ROLE_FFN_GATE, 0, 2}, {MQ_ROLE_FFN_UP, 0, 2},
        {MQ_ROLE_FFN_DOWN, 1, 0},
    };
    for (int b = 0; b < hp->n_layer; b++) {
        char name[MQ_GGUF_MAX_NAME + 1];
        snprintf(name, sizeof(name), "blk.%d.attn_norm.weight", b);
        if ((rc = want_tensor(m, name, hp->n_embd, 0, true, &m->attn_norm[b])) < 0)
            return rc;
        snprintf(name, sizeof(name), "blk.%d.ffn_norm.weight", b);
        if ((rc = want_tensor(m, name, hp->n_embd, 0, true, &m->ffn_norm[b])) < 0)
            return rc;
        for (size_t k = 0; k < sizeof(block_tensors) / sizeof(block_tensors[0]); k++) {
            int64_t n_in = block_tensors[k].in_is_ff ? hp->n_ff : hp->n_embd;
            int64_t n_out = block_tensors[k].out_kind == 0 ? hp->n_embd
                            : block_tensors[k].out_kind == 1 ? kv : hp->n_ff;
            snprintf(name, sizeof(name), "blk.%d.%s.weight", b,
                     mq_layer_role_name(block_tensors[k].role));
            if ((rc = want_tensor(m, name, n_in, n_out, true, &t)) < 0)
                return rc;
            add_layer(m, t, block_tensors[k].role, b);
        }
    }
    m->layer_output = out ? add_layer(m, out, MQ_ROLE_OUTPUT, -1) : m->layer_token_embd;
    return MQ_OK;
}

int mq_llama_model_load(const char *path, struct mq_model **out)
{
    *out = NULL;
    struct mq_model *m = calloc(1, sizeof(*m));
    if (!m)
        return mq_error(MQ_ENOMEM, "cannot allocate a model");
    snprintf(m->path, sizeof(m->path), "%s", path);
    m->kind = MQ_MODEL_LLAMA;
    m->runner = &mq_llama_runner;
    int rc = mq_gguf_open(path, &m->gguf);
    if (rc < 0)
        goto fail;
    m->file_bytes = m->gguf->file_size;
    m->content_hash = content_hash(m->gguf);
    rc = mq_gguf_get_str(m->gguf, "general.architecture", m->arch, sizeof(m->arch));
    if (rc == MQ_ENOTFOUND) {
        rc = mq_error(MQ_EFORMAT, "'%s': general.architecture is missing: not a model file", path);
        goto fail;
    }
    if (rc < 0)
        goto fail;
    if (strcmp(m->arch, "llama") != 0) {
        rc = mq_error(MQ_EUNSUPPORTED, "'%s': architecture '%s' is not supported (mixq runs 'llama')",
                      path, m->arch);
        goto fail;
    }
    if (mq_gguf_get_str(m->gguf, "general.name", m->name, sizeof(m->name)) < 0)
        m->name[0] = '\0';
    if ((rc = read_hparams(m)) < 0 || (rc = build_layers(m)) < 0)
        goto fail;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++)
        m->n_params += m->gguf->tensors[i].n_elems;
    if ((rc = mq_vocab_load(m->gguf, path, &m->vocab)) < 0)
        goto fail;
    if (mq_vocab_size(m->vocab) != m->hp.n_vocab) {
        rc = mq_error(MQ_EFORMAT, "'%s': vocabulary has %lld tokens, token_embd has %lld rows", path,
                      (long long)mq_vocab_size(m->vocab), (long long)m->hp.n_vocab);
        goto fail;
    }
    *out = m;
    return MQ_OK;
fail:
    mq_model_free(m);
    return rc;
}
