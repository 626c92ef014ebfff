/* llm/llama_model.c - transformer models from GGUF, every architecture of llm/arch.h's
 * table: hyperparameters, layers, glue. The GGUF row of model/loader.c's table; contract
 * in llm/llama.h (mq_llama_model_load). */
#include <inttypes.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "llm/arch.h"
#include "llm/llama.h"
#include "model/model.h"
#include "model/runner.h"
#include "tokenizer/tokenizer.h"

/* The file's content hash: every byte for files up to 4 GiB; beyond, the head (metadata
 * and tensor infos), 4 KiB of every MiB and the size, so that opening a 14 GB model does
 * not read it all. The samples are read with pread, not through the mapping: a page fault
 * there maps its neighbours too (fault-around, large folios), which put most of an 8B
 * model's 16 GB in the resident set at load. */
static uint64_t content_hash(const struct mq_gguf *g, const char *path)
{
    const uint64_t full_limit = (uint64_t)4 << 30;
    if (g->file_size <= full_limit)
        return mq_hash64(g->base, g->file_size, 0x6d69787100000001ULL);
    uint64_t h = mq_hash64(g->base, g->data_offset, 0x6d69787100000002ULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char sample[4096];
    for (size_t off = g->data_offset; off + 4096 <= g->file_size; off += (size_t)1 << 20) {
        const void *p = g->base + off; /* the mapping only where pread fails */
        if (fd >= 0 && pread(fd, sample, sizeof(sample), (off_t)off) == (ssize_t)sizeof(sample))
            p = sample;
        h = mq_hash64(p, 4096, h);
    }
    if (fd >= 0)
        close(fd);
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
    const struct mq_arch *a = m->arch_row;
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
    if (hp->n_head % hp->n_head_kv)
        return mq_error(MQ_EFORMAT, "'%s': %" PRId64 " heads are not a multiple of %" PRId64 " kv heads",
                        m->path, hp->n_head, hp->n_head_kv);
    /* the head size: attention.key_length where the file gives it (qwen3, gemma), else
     * n_embd / n_head */
    int64_t key_len = 0, value_len = 0;
    if ((rc = hp_int(m, "attention.key_length", 0, &key_len)) < 0 ||
        (rc = hp_int(m, "attention.value_length", key_len, &value_len)) < 0)
        return rc;
    if (key_len == 0) {
        if (hp->n_embd % hp->n_head)
            return mq_error(MQ_EFORMAT, "'%s': embedding length %" PRId64 " is not a multiple of %" PRId64
                            " heads", m->path, hp->n_embd, hp->n_head);
        key_len = value_len = hp->n_embd / hp->n_head;
    }
    if (value_len != key_len)
        return mq_error(MQ_EUNSUPPORTED, "'%s': heads of %" PRId64 " for K and %" PRId64
                        " for V are not supported", m->path, key_len, value_len);
    if (key_len > 4096 || key_len * hp->n_head > ((int64_t)1 << 24))
        return mq_error(MQ_EFORMAT, "'%s': heads of %" PRId64 " x %" PRId64 " are absurd", m->path,
                        hp->n_head, key_len);
    hp->head_dim = key_len;
    int64_t n_rot;
    if ((rc = hp_int(m, "rope.dimension_count", hp->head_dim, &n_rot)) < 0)
        return rc;
    if (n_rot > hp->head_dim || n_rot % 2)
        return mq_error(MQ_EFORMAT, "'%s': rope.dimension_count %" PRId64 " does not fit heads of %" PRId64,
                        m->path, n_rot, hp->head_dim);
    hp->n_rot = (int)n_rot;
    hp->rope_mode = a->rope_mode;
    if ((rc = hp_float(m, "rope.freq_base", 10000.0f, 1.0f, 1e12f, &hp->rope_theta)) < 0 ||
        (rc = hp_float(m, "attention.layer_norm_rms_epsilon", 1e-5f, 0.0f, 1.0f, &hp->norm_eps)) < 0)
        return rc;
    hp->rope_freq_scale = 1.0f;
    char key[160], scaling[32];
    snprintf(key, sizeof(key), "%s.rope.scaling.type", m->arch);
    rc = mq_gguf_get_str(m->gguf, key, scaling, sizeof(scaling));
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
    if ((rc = hp_float(m, "rope.scaling.attn_factor", 1.0f, 1e-3f, 1e3f, &hp->rope_attn_factor)) < 0 ||
        (rc = hp_int(m, "rope.scaling.original_context_length", hp->n_ctx_train, &hp->n_ctx_orig)) < 0)
        return rc;

    /* what the architecture adds (llm/arch.h) */
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    if ((a->flags & MQ_ARCH_GEMMA_Q_SCALE) && a->n_layer_27b && hp->n_layer == a->n_layer_27b)
        hp->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    bool softcap = a->flags & MQ_ARCH_SOFTCAP;
    if ((rc = hp_float(m, "attn_logit_softcapping", softcap ? 50.0f : 0.0f, 0.0f, 1e6f, &hp->attn_softcap)) < 0 ||
        (rc = hp_float(m, "final_logit_softcapping", softcap ? 30.0f : 0.0f, 0.0f, 1e6f, &hp->final_softcap)) < 0)
        return rc;
    if (!softcap)
        hp->attn_softcap = 0.0f; /* llama.cpp caps attention only where the architecture does */
    hp->embd_scale = (a->flags & MQ_ARCH_EMBD_SCALE) ? sqrtf((float)hp->n_embd) : 1.0f;
    hp->n_swa = 0;
    hp->rope_theta_swa = hp->rope_theta;
    hp->rope_freq_scale_swa = hp->rope_freq_scale;
    if (a->swa_pattern) {
        if ((rc = hp_int(m, "attention.sliding_window", a->swa_window_default, &hp->n_swa)) < 0)
            return rc;
        float base_default = a->swa_base_is_global ? hp->rope_theta : 10000.0f;
        if ((rc = hp_float(m, "rope.freq_base_swa", base_default, 1.0f, 1e12f, &hp->rope_theta_swa)) < 0)
            return rc;
        if (!a->swa_base_is_global)
            hp->rope_freq_scale_swa = 1.0f;
    }
    return MQ_OK;
}

/* Which blocks slide: every block but each swa_pattern-th, or as the file's
 * attention.sliding_window_pattern (a count) says. */
static int read_swa_layers(struct mq_model *m)
{
    const struct mq_hparams *hp = &m->hp;
    if (hp->n_swa == 0)
        return MQ_OK;
    int64_t pattern;
    int rc = hp_int(m, "attention.sliding_window_pattern", m->arch_row->swa_pattern, &pattern);
    if (rc < 0)
        return rc;
    for (int64_t b = 0; b < hp->n_layer; b++)
        m->blocks[b].swa = b % pattern < pattern - 1;
    return MQ_OK;
}

/* Finds a tensor and checks its shape, marking it used; `required` false returns NULL
 * silently. */
static int want_tensor(struct mq_model *m, bool *used, const char *name, int64_t ne0, int64_t ne1,
                       bool required, const struct mq_gguf_tensor **out)
{
    const struct mq_gguf_tensor *t = mq_gguf_find_tensor(m->gguf, name);
    *out = t;
    if (!t)
        return required ? mq_error(MQ_EFORMAT, "'%s': tensor '%s' is missing", m->path, name) : MQ_OK;
    used[t - m->gguf->tensors] = true;
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

/* A block tensor "blk.<b>.<part>.<suffix>" (want_tensor's contract). */
static int want_block(struct mq_model *m, bool *used, int b, const char *part, const char *suffix,
                      int64_t ne0, int64_t ne1, bool required, const struct mq_gguf_tensor **out)
{
    char name[MQ_GGUF_MAX_NAME + 1];
    snprintf(name, sizeof(name), "blk.%d.%s.%s", b, part, suffix);
    return want_tensor(m, used, name, ne0, ne1, required, out);
}

/* A block's weight matrix as a layer of `role`, named by the role. */
static int block_layer(struct mq_model *m, bool *used, int b, enum mq_layer_role role, int64_t n_in,
                       int64_t n_out, bool required, const struct mq_gguf_tensor **out)
{
    int rc = want_block(m, used, b, mq_layer_role_name(role), "weight", n_in, n_out, required, out);
    if (rc == MQ_OK && *out)
        add_layer(m, *out, role, b);
    return rc;
}

static int build_block(struct mq_model *m, bool *used, int b)
{
    const struct mq_hparams *hp = &m->hp;
    uint32_t flags = m->arch_row->flags;
    int64_t E = hp->n_embd, D = hp->head_dim, Q = D * hp->n_head, KV = D * hp->n_head_kv, F = hp->n_ff;
    const struct mq_gguf_tensor **gl = m->blocks[b].glue, *t;
    int rc;
    if ((rc = want_block(m, used, b, "attn_norm", "weight", E, 0, true, &gl[MQ_GLUE_ATTN_NORM])) < 0 ||
        (rc = block_layer(m, used, b, MQ_ROLE_ATTN_QKV, E, Q + 2 * KV, false, &t)) < 0)
        return rc;
    if (t) { /* fused Q, K, V rows */
        if ((rc = want_block(m, used, b, "attn_qkv", "bias", Q + 2 * KV, 0, false, &gl[MQ_GLUE_BIAS_Q])) < 0)
            return rc;
    } else {
        static const enum mq_layer_role qkv[3] = {MQ_ROLE_ATTN_Q, MQ_ROLE_ATTN_K, MQ_ROLE_ATTN_V};
        for (int k = 0; k < 3; k++) {
            int64_t rows = k == 0 ? Q : KV;
            if ((rc = block_layer(m, used, b, qkv[k], E, rows, true, &t)) < 0 ||
                (rc = want_block(m, used, b, mq_layer_role_name(qkv[k]), "bias", rows, 0, false,
                                 &gl[MQ_GLUE_BIAS_Q + k])) < 0)
                return rc;
        }
    }
    if ((flags & MQ_ARCH_QK_NORM) &&
        ((rc = want_block(m, used, b, "attn_q_norm", "weight", D, 0, true, &gl[MQ_GLUE_Q_NORM])) < 0 ||
         (rc = want_block(m, used, b, "attn_k_norm", "weight", D, 0, true, &gl[MQ_GLUE_K_NORM])) < 0))
        return rc;
    if ((rc = block_layer(m, used, b, MQ_ROLE_ATTN_OUTPUT, Q, E, true, &t)) < 0 ||
        (rc = want_block(m, used, b, "ffn_norm", "weight", E, 0, true, &gl[MQ_GLUE_FFN_NORM])) < 0)
        return rc;
    if ((flags & MQ_ARCH_POST_NORMS) &&
        ((rc = want_block(m, used, b, "post_attention_norm", "weight", E, 0, true, &gl[MQ_GLUE_ATTN_POST_NORM])) < 0 ||
         (rc = want_block(m, used, b, "post_ffw_norm", "weight", E, 0, true, &gl[MQ_GLUE_FFN_POST_NORM])) < 0))
        return rc;
    if (flags & MQ_ARCH_FUSED_GATE_UP) {
        if ((rc = block_layer(m, used, b, MQ_ROLE_FFN_UP, E, 2 * F, true, &t)) < 0)
            return rc;
    } else if ((rc = block_layer(m, used, b, MQ_ROLE_FFN_GATE, E, F, true, &t)) < 0 ||
               (rc = block_layer(m, used, b, MQ_ROLE_FFN_UP, E, F, true, &t)) < 0) {
        return rc;
    }
    return block_layer(m, used, b, MQ_ROLE_FFN_DOWN, F, E, true, &t);
}

static int build_layers(struct mq_model *m, bool *used)
{
    const struct mq_hparams *hp = &m->hp;
    const struct mq_gguf_tensor *embd, *out = NULL;
    int rc;
    embd = mq_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!embd)
        return mq_error(MQ_EFORMAT, "'%s': tensor 'token_embd.weight' is missing", m->path);
    m->hp.n_vocab = embd->ne[1];
    if ((rc = want_tensor(m, used, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &embd)) < 0 ||
        (!(m->arch_row->flags & MQ_ARCH_TIED) &&
         (rc = want_tensor(m, used, "output.weight", hp->n_embd, hp->n_vocab, false, &out)) < 0) ||
        (rc = want_tensor(m, used, "output_norm.weight", hp->n_embd, 0, true, &m->output_norm)) < 0)
        return rc;
    /* llama.cpp reads it for every block (one tensor, duplicated); mixq uploads it once */
    if ((m->arch_row->flags & MQ_ARCH_ROPE_FREQS) &&
        (rc = want_tensor(m, used, "rope_freqs.weight", hp->n_rot / 2, 0, false, &m->rope_freqs)) < 0)
        return rc;
    if ((m->arch_row->flags & MQ_ARCH_LONGROPE) &&
        ((rc = want_tensor(m, used, "rope_factors_long.weight", hp->n_rot / 2, 0, false, &m->rope_long)) < 0 ||
         (rc = want_tensor(m, used, "rope_factors_short.weight", hp->n_rot / 2, 0, false, &m->rope_short)) < 0))
        return rc;
    m->hp.tied_output = out == NULL;

    size_t n_max = (size_t)hp->n_layer * 7 + 2;
    m->layers = calloc(n_max, sizeof(*m->layers));
    m->block_layer = malloc((size_t)hp->n_layer * MQ_ROLE_COUNT * sizeof(*m->block_layer));
    m->blocks = calloc((size_t)hp->n_layer, sizeof(*m->blocks));
    if (!m->layers || !m->block_layer || !m->blocks)
        return mq_error(MQ_ENOMEM, "cannot allocate %zu layers", n_max);
    for (int64_t i = 0; i < hp->n_layer * MQ_ROLE_COUNT; i++)
        m->block_layer[i] = -1;

    m->layer_token_embd = add_layer(m, embd, MQ_ROLE_TOKEN_EMBD, -1);
    for (int b = 0; b < hp->n_layer; b++)
        if ((rc = build_block(m, used, b)) < 0)
            return rc;
    m->layer_output = out ? add_layer(m, out, MQ_ROLE_OUTPUT, -1) : m->layer_token_embd;
    if ((rc = read_swa_layers(m)) < 0)
        return rc;
    /* a tensor nothing reads is a feature mixq does not run (experts, biases it does not
     * expect, rope factors of another architecture): running without it would be wrong */
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++)
        if (!used[i])
            return mq_error(MQ_EUNSUPPORTED, "'%s': tensor '%s' is not used by mixq's '%s' architecture, "
                            "so the file needs a feature mixq does not run yet", m->path,
                            m->gguf->tensors[i].name, m->arch);
    return MQ_OK;
}

int mq_llama_model_load(const char *path, struct mq_model **out)
{
    *out = NULL;
    bool *used = NULL; /* [n_tensors]: read by the loader */
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
    m->content_hash = content_hash(m->gguf, path);
    rc = mq_gguf_get_str(m->gguf, "general.architecture", m->arch, sizeof(m->arch));
    if (rc == MQ_ENOTFOUND) {
        rc = mq_error(MQ_EFORMAT, "'%s': general.architecture is missing: not a model file", path);
        goto fail;
    }
    if (rc < 0)
        goto fail;
    m->arch_row = mq_arch_find(m->arch);
    if (!m->arch_row) {
        char list[256];
        mq_arch_list(list, sizeof(list));
        rc = mq_error(MQ_EUNSUPPORTED, "'%s': architecture '%s' is not supported (mixq runs %s)", path,
                      m->arch, list);
        goto fail;
    }
    if (mq_gguf_get_str(m->gguf, "general.name", m->name, sizeof(m->name)) < 0)
        m->name[0] = '\0';
    if ((rc = read_hparams(m)) < 0)
        goto fail;
    used = calloc(m->gguf->n_tensors + 1, sizeof(*used));
    if (!used) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate a model");
        goto fail;
    }
    if ((rc = build_layers(m, used)) < 0)
        goto fail;
    free(used);
    used = NULL;
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
    free(used);
    mq_model_free(m);
    return rc;
}
