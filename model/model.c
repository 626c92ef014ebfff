/* model/model.c - the model every kind loads into: layer roles and formats, loading
 * through model/loader.h's table, freeing, lookups. */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/pages.h"
#include "core/status.h"

#include "core/pages.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "model/loader.h"
#include "model/runner.h"
#include "tokenizer/tokenizer.h"

static const char *const role_names[MQ_ROLE_COUNT] = {
    [MQ_ROLE_TOKEN_EMBD] = "token_embd", [MQ_ROLE_ATTN_Q] = "attn_q",
    [MQ_ROLE_ATTN_K] = "attn_k",         [MQ_ROLE_ATTN_V] = "attn_v",
    [MQ_ROLE_ATTN_OUTPUT] = "attn_output", [MQ_ROLE_FFN_GATE] = "ffn_gate",
    [MQ_ROLE_FFN_UP] = "ffn_up",         [MQ_ROLE_FFN_DOWN] = "ffn_down",
    [MQ_ROLE_OUTPUT] = "output",         [MQ_ROLE_CONV] = "conv",
    [MQ_ROLE_CONV_TRANSPOSE] = "conv_transpose", [MQ_ROLE_GEMM] = "gemm",
    [MQ_ROLE_ATTN_QKV] = "attn_qkv",
};

uint32_t mq_layer_formats_for(int64_t n_in) { return mq_dtype_formats_for_row(n_in); }

uint32_t mq_layer_menu(const struct mq_layer *l, uint32_t menu)
{
    uint32_t asked = menu ? menu : mq_dtype_default_formats(), m = 0;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if ((asked >> f) & 1u)
            m |= 1u << mq_dtype_fallback_for_row((enum mq_dtype)f, l->n_in);
    m &= l->formats;
    if (mq_dtype_get(l->src_type)->is_plan_format)
        m |= 1u << l->src_type;
    return m;
}

uint32_t mq_model_menu(const struct mq_model *m, uint32_t menu)
{
    uint32_t u = 0;
    for (int i = 0; i < m->n_layers; i++)
        u |= mq_layer_menu(&m->layers[i], menu);
    return u;
}

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* xxh64-style: four 8-byte lanes multiplied and rotated, then mixed. */
uint64_t mq_hash64(const void *data, size_t n, uint64_t seed)
{
    const uint64_t P1 = 11400714785074694791ULL, P2 = 14029467366897019727ULL, P3 = 1609587929392839161ULL;
    const unsigned char *p = data;
    uint64_t v[4] = {seed + P1 + P2, seed + P2, seed, seed - P1};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t x;
            memcpy(&x, p + i + 8 * k, 8);
            v[k] = rotl64(v[k] + x * P2, 31) * P1;
        }
    uint64_t h = rotl64(v[0], 1) + rotl64(v[1], 7) + rotl64(v[2], 12) + rotl64(v[3], 18) + (uint64_t)n;
    for (; i < n; i++)
        h = rotl64(h ^ (p[i] * P3), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    return h ^ (h >> 32);
}

const char *mq_layer_role_name(enum mq_layer_role role)
{
    return (unsigned)role < MQ_ROLE_COUNT ? role_names[role] : "unknown";
}

/* The loader of a file, told by its first bytes: the first row whose magic they start with,
 * else the row without a magic. Files that cannot be read, or are too short to tell, go to
 * the first row (the GGUF reader), which says why. */
static const struct mq_model_loader *loader_for(const char *path)
{
    unsigned char head[MQ_MODEL_MAGIC_MAX];
    FILE *f = fopen(path, "rb");
    if (!f)
        return &mq_model_loaders[0];
    size_t n = fread(head, 1, sizeof(head), f);
    fclose(f);
    if (n < mq_model_loaders[0].magic_len)
        return &mq_model_loaders[0];
    const struct mq_model_loader *other = &mq_model_loaders[0];
    for (int i = 0; i < mq_model_n_loaders; i++) {
        const struct mq_model_loader *l = &mq_model_loaders[i];
        if (l->magic_len == 0)
            other = l;
        else if (n >= l->magic_len && memcmp(head, l->magic, l->magic_len) == 0)
            return l;
    }
    return other;
}

int mq_model_load(const char *path, struct mq_model **out)
{
    *out = NULL;
    int rc = loader_for(path)->load(path, out);
    /* loading read the metadata and (files up to 4 GiB) hashed every byte: none of it is
     * what a run needs resident */
    if (rc == MQ_OK)
        mq_model_drop_pages(*out);
    return rc;
}

int mq_model_lend(const struct mq_model *m, struct be_backend *be)
{
    if (!m->gguf || !m->gguf->mapping)
        return MQ_OK;
    return be_lend(be, m->gguf->mapping, m->gguf->mapping_size);
}

void mq_model_unlend(const struct mq_model *m, struct be_backend *be)
{
    if (m->gguf && m->gguf->mapping)
        be_unlend(be, m->gguf->mapping);
}

void mq_model_release_layer(const struct mq_model *m, int i)
{
    if (!m->gguf || !m->gguf->mapping || i < 0 || i >= m->n_layers)
        return;
    const char *base = m->gguf->mapping, *src = m->layers[i].src_data;
    size_t n = m->layers[i].src_nbytes;
    if (src < base || src > base + m->gguf->mapping_size || n > (size_t)(base + m->gguf->mapping_size - src))
        return; /* not in the mapping (converted at load) */
    (void)mq_pages_release(src, n);
}

static void upload_step(void *arg, size_t nbytes)
{
    struct mq_upload_progress *u = arg;
    u->done += nbytes;
    int64_t mib = (int64_t)(u->done >> 20);
    mq_progress_step(&u->pr, mib < u->pr.total ? mib : u->pr.total, false, NULL);
}

void mq_upload_progress_begin(struct mq_upload_progress *u, struct be_backend *be, uint64_t total_bytes, bool enabled,
                              const char *what)
{
    char w[120];
    snprintf(w, sizeof(w), "uploading %s, MiB", what);
    mq_progress_init(&u->pr, enabled, w, (int64_t)(total_bytes >> 20) > 0 ? (int64_t)(total_bytes >> 20) : 1);
    u->done = 0;
    u->be = be;
    if (u->pr.tty) /* nothing to show otherwise: no hook */
        be_set_upload_hook(be, upload_step, u);
}

void mq_upload_progress_end(struct mq_upload_progress *u)
{
    if (u->be)
        be_set_upload_hook(u->be, NULL, NULL);
    mq_progress_end(&u->pr);
    u->be = NULL;
}

void mq_model_drop_pages(const struct mq_model *m)
{
    if (m->gguf && m->gguf->mapping)
        (void)mq_pages_release(m->gguf->mapping, m->gguf->mapping_size);
}

int mq_model_load_shaped(const char *path, const struct mq_input_shapes *shapes, struct mq_model **out)
{
    *out = NULL;
    const struct mq_model_loader *l = loader_for(path);
    if (!shapes || shapes->n == 0)
        return l->load(path, out);
    if (!l->load_shaped)
        return mq_error(MQ_EINVAL, "'%s' is a %s model: input shapes (--shapes) apply to ONNX models only", path,
                        l->format);
    return l->load_shaped(path, shapes, out);
}

void mq_model_free(struct mq_model *m)
{
    if (!m)
        return;
    if (m->runner && m->runner->free_impl)
        m->runner->free_impl(m);
    mq_vocab_free(m->vocab);
    free(m->layers);
    free(m->block_layer);
    free(m->blocks);
    mq_gguf_close(m->gguf);
    free(m->imp_data);
    free(m->gram_data);
    free(m->input_shapes);
    free(m);
}

int mq_model_find_layer(const struct mq_model *m, const char *name)
{
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].name, name) == 0)
            return i;
    return -1;
}

enum mq_dtype mq_model_source_type(const struct mq_model *m, bool *mixed)
{
    int count[MQ_DTYPE_COUNT] = {0};
    for (int i = 0; i < m->n_layers; i++)
        count[m->layers[i].src_type]++;
    int best = 0, kinds = 0;
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        kinds += count[t] > 0;
        if (count[t] > count[best])
            best = t;
    }
    *mixed = kinds > 1;
    return (enum mq_dtype)best;
}
