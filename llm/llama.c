/* llm/llama.c - the llama forward pass as a sequence of backend ops. */
#include "llm/llama.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/status.h"

struct mq_llama {
    const struct mq_model *m;
    struct be_backend *be;
    int64_t n_ctx, n_batch;
    uint64_t weight_bytes;
    struct be_tensor *w;        /* [n_layers] quantizable layers in plan formats */
    struct be_tensor *attn_norm, *ffn_norm, output_norm;
    struct be_tensor *k_cache, *v_cache; /* [n_layer] of [head_dim * n_head_kv, n_ctx] */
    /* activations for n_batch tokens */
    struct be_tensor ids, x, h, q, attn, o, g, u, logits;
    enum mq_dtype *fmt;         /* [n_layers] current format of each layer */
    mq_llama_capture_fn capture;
    void *capture_arg;
    float *capture_buf;         /* host copy of one matmul input */
    size_t capture_cap;
};

static int upload_norm(struct mq_llama *l, const struct mq_gguf_tensor *src, struct be_tensor *dst)
{
    const void *data;
    void *buf;
    int rc = mq_convert_weights(src->name, src->type, src->data, src->ne[0], src->n_elems / src->ne[0],
                                MQ_DTYPE_F32, NULL, &data, &buf);
    if (rc < 0)
        return rc;
    rc = be_upload(l->be, dst, MQ_DTYPE_F32, 1, &src->ne[0], data, BE_USE_VECTOR);
    free(buf);
    l->weight_bytes += dst->nbytes;
    return rc;
}

static int alloc2(struct mq_llama *l, struct be_tensor *t, enum mq_dtype type, int64_t ne0, int64_t ne1)
{
    return be_alloc(l->be, t, type, 2, (int64_t[]){ne0, ne1});
}

int mq_llama_new(const struct mq_model *m, const struct mq_plan *plan, struct be_backend *be,
                 const struct mq_llama_config *cfg, struct mq_llama **out)
{
    *out = NULL;
    int rc = mq_plan_check(m, plan);
    if (rc < 0)
        return rc;
    const struct mq_hparams *hp = &m->hp;
    struct mq_llama *l = calloc(1, sizeof(*l));
    if (!l)
        return mq_error(MQ_ENOMEM, "cannot allocate a forward-pass context");
    l->m = m;
    l->be = be;
    l->n_ctx = cfg && cfg->n_ctx > 0 ? cfg->n_ctx : hp->n_ctx_train;
    l->n_batch = cfg && cfg->n_batch > 0 ? cfg->n_batch : l->n_ctx;
    if (l->n_batch > l->n_ctx)
        l->n_batch = l->n_ctx;
    l->w = calloc((size_t)m->n_layers, sizeof(*l->w));
    l->fmt = calloc((size_t)m->n_layers + 1, sizeof(*l->fmt));
    l->attn_norm = calloc((size_t)hp->n_layer, sizeof(*l->attn_norm));
    l->ffn_norm = calloc((size_t)hp->n_layer, sizeof(*l->ffn_norm));
    l->k_cache = calloc((size_t)hp->n_layer, sizeof(*l->k_cache));
    l->v_cache = calloc((size_t)hp->n_layer, sizeof(*l->v_cache));
    if (!l->w || !l->fmt || !l->attn_norm || !l->ffn_norm || !l->k_cache || !l->v_cache) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate a forward-pass context");
        goto fail;
    }
    for (int i = 0; i < m->n_layers; i++) {
        const struct mq_layer *ly = &m->layers[i];
        const void *data;
        void *buf;
        if ((rc = mq_convert_weights(ly->name, ly->src_type, ly->src_data, ly->n_in, ly->n_out, plan->fmt[i],
                                     ly->imp, &data, &buf)) < 0)
            goto fail;
        rc = be_upload(be, &l->w[i], plan->fmt[i], 2, (int64_t[]){ly->n_in, ly->n_out}, data, BE_USE_MATRIX);
        if (buf) /* converted: the stored pages need not stay resident beside the result */
            mq_model_release_layer(m, i);
        free(buf);
        if (rc < 0)
            goto fail;
        l->weight_bytes += l->w[i].nbytes;
        l->fmt[i] = plan->fmt[i];
    }
    for (int b = 0; b < hp->n_layer; b++)
        if ((rc = upload_norm(l, m->attn_norm[b], &l->attn_norm[b])) < 0 ||
            (rc = upload_norm(l, m->ffn_norm[b], &l->ffn_norm[b])) < 0)
            goto fail;
    if ((rc = upload_norm(l, m->output_norm, &l->output_norm)) < 0)
        goto fail;

    int64_t kv = hp->head_dim * hp->n_head_kv, B = l->n_batch;
    /* the cache starts zeroed: a session may time a decode at position ctx - 1 without
     * filling the cache first, and must not meet NaN bit patterns there */
    float *zeros = calloc((size_t)kv, sizeof(float));
    if (!zeros) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate a forward-pass context");
        goto fail;
    }
    for (int b = 0; b < hp->n_layer && rc == MQ_OK; b++) {
        if ((rc = alloc2(l, &l->k_cache[b], MQ_DTYPE_F32, kv, l->n_ctx)) < 0 ||
            (rc = alloc2(l, &l->v_cache[b], MQ_DTYPE_F32, kv, l->n_ctx)) < 0)
            break;
        for (int64_t p = 0; p < l->n_ctx && rc == MQ_OK; p++)
            if ((rc = be_write(be, &l->k_cache[b], (size_t)p * (size_t)kv * 4, zeros, (size_t)kv * 4)) == MQ_OK)
                rc = be_write(be, &l->v_cache[b], (size_t)p * (size_t)kv * 4, zeros, (size_t)kv * 4);
    }
    free(zeros);
    if (rc < 0)
        goto fail;
    if ((rc = be_alloc(be, &l->ids, MQ_DTYPE_I32, 1, &B)) < 0 ||
        (rc = alloc2(l, &l->x, MQ_DTYPE_F32, hp->n_embd, B)) < 0 ||
        (rc = alloc2(l, &l->h, MQ_DTYPE_F32, hp->n_embd, B)) < 0 ||
        (rc = alloc2(l, &l->q, MQ_DTYPE_F32, hp->head_dim * hp->n_head, B)) < 0 ||
        (rc = alloc2(l, &l->attn, MQ_DTYPE_F32, hp->head_dim * hp->n_head, B)) < 0 ||
        (rc = alloc2(l, &l->o, MQ_DTYPE_F32, hp->n_embd, B)) < 0 ||
        (rc = alloc2(l, &l->g, MQ_DTYPE_F32, hp->n_ff, B)) < 0 ||
        (rc = alloc2(l, &l->u, MQ_DTYPE_F32, hp->n_ff, B)) < 0 ||
        (rc = alloc2(l, &l->logits, MQ_DTYPE_F32, hp->n_vocab, B)) < 0)
        goto fail;
    *out = l;
    return MQ_OK;
fail:
    mq_llama_free(l);
    return rc;
}

void mq_llama_free(struct mq_llama *l)
{
    if (!l)
        return;
    const struct mq_hparams *hp = &l->m->hp;
    if (l->w)
        for (int i = 0; i < l->m->n_layers; i++)
            be_free(l->be, &l->w[i]);
    for (int b = 0; b < hp->n_layer; b++) {
        if (l->attn_norm)
            be_free(l->be, &l->attn_norm[b]);
        if (l->ffn_norm)
            be_free(l->be, &l->ffn_norm[b]);
        if (l->k_cache)
            be_free(l->be, &l->k_cache[b]);
        if (l->v_cache)
            be_free(l->be, &l->v_cache[b]);
    }
    be_free(l->be, &l->output_norm);
    struct be_tensor *acts[] = {&l->ids, &l->x, &l->h, &l->q, &l->attn, &l->o, &l->g, &l->u, &l->logits};
    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
        be_free(l->be, acts[i]);
    free(l->w);
    free(l->fmt);
    free(l->capture_buf);
    free(l->attn_norm);
    free(l->ffn_norm);
    free(l->k_cache);
    free(l->v_cache);
    free(l);
}

int64_t mq_llama_n_ctx(const struct mq_llama *l) { return l->n_ctx; }

int mq_llama_set_layer(struct mq_llama *l, int layer, enum mq_dtype fmt)
{
    const struct mq_model *m = l->m;
    if (layer < 0 || layer >= m->n_layers)
        return mq_error(MQ_EINVAL, "layer %d outside 0..%d", layer, m->n_layers - 1);
    if (l->fmt[layer] == fmt)
        return MQ_OK;
    const struct mq_layer *ly = &m->layers[layer];
    if (!mq_dtype_get(fmt)->is_plan_format || !mq_layer_allows(ly, fmt))
        return mq_error(MQ_EINVAL, "layer '%s' cannot be stored as %s", ly->name, mq_dtype_name(fmt));
    const void *data;
    void *buf;
    int rc = mq_convert_weights(ly->name, ly->src_type, ly->src_data, ly->n_in, ly->n_out, fmt, ly->imp, &data,
                                &buf);
    if (rc < 0)
        return rc;
    struct be_tensor t;
    rc = be_upload(l->be, &t, fmt, 2, (int64_t[]){ly->n_in, ly->n_out}, data, BE_USE_MATRIX);
    if (buf) /* converted: the stored pages need not stay resident beside the result */
        mq_model_release_layer(m, layer);
    free(buf);
    if (rc < 0)
        return rc;
    l->weight_bytes -= l->w[layer].nbytes;
    be_free(l->be, &l->w[layer]);
    l->w[layer] = t;
    l->weight_bytes += t.nbytes;
    l->fmt[layer] = fmt;
    return MQ_OK;
}

void mq_llama_set_capture(struct mq_llama *l, mq_llama_capture_fn fn, void *arg)
{
    l->capture = fn;
    l->capture_arg = arg;
}

/* Hands a matmul's input x [K, M] to the capture hook (host copy). */
static int capture_input(struct mq_llama *l, int layer, const struct be_tensor *x)
{
    size_t n = x->nbytes;
    if (n > l->capture_cap) {
        float *nb = realloc(l->capture_buf, n);
        if (!nb)
            return mq_error(MQ_ENOMEM, "cannot allocate %zu bytes to capture activations", n);
        l->capture_buf = nb;
        l->capture_cap = n;
    }
    int rc = be_read(l->be, x, 0, l->capture_buf, n);
    if (rc < 0)
        return rc;
    return l->capture(l->capture_arg, layer, l->capture_buf, x->ne[0], x->ne[1]);
}

int64_t mq_llama_n_batch(const struct mq_llama *l) { return l->n_batch; }

uint64_t mq_llama_weight_bytes(const struct mq_llama *l) { return l->weight_bytes; }

/* The first n columns (tokens) of an activation buffer. */
static struct be_tensor cols(const struct be_tensor *t, int64_t n)
{
    struct be_tensor v;
    MQ_ASSERT(be_view_rows(t, 0, n, &v) == MQ_OK);
    return v;
}

static struct be_tensor as3(const struct be_tensor *t, int64_t d0, int64_t d1, int64_t d2)
{
    struct be_tensor v;
    MQ_ASSERT(be_view_reshape(t, 3, (int64_t[]){d0, d1, d2}, &v) == MQ_OK);
    return v;
}

/* A matmul of layer `li` on input `in`, with the capture hook in front when set. */
#define MATMUL(li, in, out)                                                                       \
    do {                                                                                          \
        if (l->capture) {                                                                         \
            int rc_c = capture_input(l, (li), (in));                                              \
            if (rc_c < 0)                                                                         \
                return rc_c;                                                                      \
        }                                                                                         \
        RUN(.op = BE_OP_MATMUL, .src = {&l->w[(li)], (in)}, .dst = (out));                       \
    } while (0)

#define RUN(...)                                                                                  \
    do {                                                                                          \
        int rc_ = be_run(l->be, &(struct be_node){__VA_ARGS__});                                  \
        if (rc_ < 0)                                                                              \
            return rc_;                                                                           \
    } while (0)

int mq_llama_decode(struct mq_llama *l, const int32_t *tokens, int64_t n, int64_t pos0, float *logits)
{
    const struct mq_model *m = l->m;
    const struct mq_hparams *hp = &m->hp;
    if (n < 1 || n > l->n_batch)
        return mq_error(MQ_EINVAL, "decode of %lld tokens: batch holds 1..%lld", (long long)n,
                        (long long)l->n_batch);
    if (pos0 < 0 || pos0 > l->n_ctx - n)
        return mq_error(MQ_EINVAL, "decode at positions %lld..%lld: the context holds %lld",
                        (long long)pos0, (long long)(pos0 + n - 1), (long long)l->n_ctx);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return mq_error(MQ_EINVAL, "token id %d outside the vocabulary of %lld", tokens[i],
                            (long long)hp->n_vocab);
    int64_t D = hp->head_dim, H = hp->n_head, Hkv = hp->n_head_kv;
    struct be_tensor ids = cols(&l->ids, n), x = cols(&l->x, n), h = cols(&l->h, n);
    struct be_tensor q = cols(&l->q, n), attn = cols(&l->attn, n), o = cols(&l->o, n);
    struct be_tensor g = cols(&l->g, n), u = cols(&l->u, n), lg = cols(&l->logits, n);
    struct be_tensor q3 = as3(&q, D, H, n);
    int rc = be_write(l->be, &ids, 0, tokens, (size_t)n * sizeof(int32_t));
    if (rc < 0)
        return rc;
    RUN(.op = BE_OP_GET_ROWS, .src = {&l->w[m->layer_token_embd], &ids}, .dst = &x);
    for (int b = 0; b < hp->n_layer; b++) {
        const int *bl = &m->block_layer[b * MQ_ROLE_COUNT];
        struct be_tensor kc, vc;
        if ((rc = be_view_rows(&l->k_cache[b], pos0, n, &kc)) < 0 ||
            (rc = be_view_rows(&l->v_cache[b], pos0, n, &vc)) < 0)
            return rc;
        struct be_tensor kc3 = as3(&kc, D, Hkv, n);
        RUN(.op = BE_OP_RMSNORM, .src = {&x, &l->attn_norm[b]}, .dst = &h, .p.rmsnorm.eps = hp->norm_eps);
        MATMUL(bl[MQ_ROLE_ATTN_Q], &h, &q);
        MATMUL(bl[MQ_ROLE_ATTN_K], &h, &kc);
        MATMUL(bl[MQ_ROLE_ATTN_V], &h, &vc);
        RUN(.op = BE_OP_ROPE, .src = {&q3}, .dst = &q3,
            .p.rope = {.pos0 = pos0, .n_rot = hp->n_rot, .mode = hp->rope_mode,
                       .theta = hp->rope_theta, .freq_scale = hp->rope_freq_scale});
        RUN(.op = BE_OP_ROPE, .src = {&kc3}, .dst = &kc3,
            .p.rope = {.pos0 = pos0, .n_rot = hp->n_rot, .mode = hp->rope_mode,
                       .theta = hp->rope_theta, .freq_scale = hp->rope_freq_scale});
        RUN(.op = BE_OP_ATTENTION, .src = {&q3, &l->k_cache[b], &l->v_cache[b]}, .dst = &attn,
            .p.attention = {.pos0 = pos0, .n_kv = pos0 + n, .scale = 1.0f / sqrtf((float)D)});
        MATMUL(bl[MQ_ROLE_ATTN_OUTPUT], &attn, &o);
        RUN(.op = BE_OP_ADD, .src = {&x, &o}, .dst = &x);
        RUN(.op = BE_OP_RMSNORM, .src = {&x, &l->ffn_norm[b]}, .dst = &h, .p.rmsnorm.eps = hp->norm_eps);
        MATMUL(bl[MQ_ROLE_FFN_GATE], &h, &g);
        MATMUL(bl[MQ_ROLE_FFN_UP], &h, &u);
        RUN(.op = BE_OP_SWIGLU, .src = {&g, &u}, .dst = &g);
        MATMUL(bl[MQ_ROLE_FFN_DOWN], &g, &o);
        RUN(.op = BE_OP_ADD, .src = {&x, &o}, .dst = &x);
    }
    RUN(.op = BE_OP_RMSNORM, .src = {&x, &l->output_norm}, .dst = &h, .p.rmsnorm.eps = hp->norm_eps);
    MATMUL(m->layer_output, &h, &lg);
    if (logits)
        return be_read(l->be, &lg, 0, logits, (size_t)n * (size_t)hp->n_vocab * sizeof(float));
    return be_sync(l->be);
}
