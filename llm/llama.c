/* llm/llama.c - the transformer forward pass as a sequence of backend ops, for every
 * architecture of llm/arch.h (the model's hyperparameters and blocks say where it differs
 * from llama's). */
#include "llm/llama.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/status.h"
#include "llm/arch.h"

#define MAX_PARTS 3 /* row ranges of a fused layer: attn_qkv's Q, K, V; phi3's gate, up */

/* A block's glue on the backend, indexed by enum mq_glue (F32 vectors; absent ones stay
 * unallocated; a fused Q/K/V bias is split into the three bias slots). */
struct block_glue {
    struct be_tensor t[MQ_GLUE_COUNT];
};

struct mq_llama {
    const struct mq_model *m;
    struct be_backend *be;
    int64_t n_ctx, n_batch;
    uint64_t weight_bytes;
    /* [n_layers][MAX_PARTS]: each quantizable layer in its plan format, as one tensor or,
     * for a fused layer, one per row range (layer_parts) */
    struct be_tensor (*w)[MAX_PARTS];
    struct block_glue *glue;             /* [n_layer] */
    struct be_tensor output_norm;
    bool timing_only; /* the plan's: weights rounded plainly (model/plan.h) */
    struct be_tensor rope_freqs; /* [n_rot/2] the RoPE frequency factors this context takes */
    bool has_rope_freqs;
    struct be_tensor *k_cache, *v_cache; /* [n_layer] of [head_dim * n_head_kv, n_ctx] */
    /* activations for n_batch tokens */
    struct be_tensor ids, x, h, q, attn, o, g, u, logits;
    enum mq_dtype *fmt;         /* [n_layers] current format of each layer */
    mq_llama_capture_fn capture;
    void *capture_arg;
    float *capture_buf;         /* host copy of one matmul input */
    size_t capture_cap;
};

/* The row ranges a layer runs as: one, or those of a fused layer (Q, K, V of attn_qkv;
 * gate and up of phi3's ffn_up). Returns the count; rows[k] are the k-th range's rows. */
static int layer_parts(const struct mq_model *m, const struct mq_layer *ly, int64_t rows[MAX_PARTS])
{
    const struct mq_hparams *hp = &m->hp;
    if (ly->role == MQ_ROLE_ATTN_QKV) {
        rows[0] = hp->head_dim * hp->n_head;
        rows[1] = rows[2] = hp->head_dim * hp->n_head_kv;
        return 3;
    }
    if (ly->role == MQ_ROLE_FFN_UP && (m->arch_row->flags & MQ_ARCH_FUSED_GATE_UP)) {
        rows[0] = rows[1] = hp->n_ff;
        return 2;
    }
    rows[0] = ly->n_out;
    return 1;
}

/* Converts layer i to `fmt` and uploads it into parts[] (one tensor per row range). */
static int upload_layer(struct mq_llama *l, int i, enum mq_dtype fmt, struct be_tensor parts[MAX_PARTS])
{
    const struct mq_layer *ly = &l->m->layers[i];
    const void *data;
    void *buf;
    int64_t rows[MAX_PARTS];
    int n = layer_parts(l->m, ly, rows);
    size_t row_bytes;
    int rc = mq_dtype_row_bytes(fmt, ly->n_in, &row_bytes);
    if (rc < 0)
        return rc;
    if ((rc = mq_convert_weights(ly->name, ly->src_type, ly->src_data, ly->n_in, ly->n_out, fmt,
                                 l->timing_only ? NULL : ly->imp, l->timing_only ? NULL : ly->gram_u, &data, &buf)) < 0)
        return rc;
    size_t off = 0;
    for (int k = 0; k < n && rc == MQ_OK; k++) {
        rc = be_upload(l->be, &parts[k], fmt, 2, (int64_t[]){ly->n_in, rows[k]}, (const char *)data + off,
                       BE_USE_MATRIX);
        off += (size_t)rows[k] * row_bytes;
    }
    if (buf) /* converted: the stored pages need not stay resident beside the result */
        mq_model_release_layer(l->m, i);
    free(buf);
    if (rc < 0)
        for (int k = 0; k < n; k++)
            be_free(l->be, &parts[k]);
    return rc;
}

static uint64_t parts_bytes(const struct be_tensor parts[MAX_PARTS])
{
    uint64_t n = 0;
    for (int k = 0; k < MAX_PARTS; k++)
        n += parts[k].nbytes;
    return n;
}

/* Uploads n values of a glue tensor from element `first` on as an F32 vector (a NULL
 * source leaves dst unallocated). */
static int upload_vector(struct mq_llama *l, const struct mq_gguf_tensor *src, int64_t first, int64_t n,
                         struct be_tensor *dst)
{
    if (!src)
        return MQ_OK;
    const void *data;
    void *buf;
    int rc = mq_convert_weights(src->name, src->type, src->data, src->ne[0], src->n_elems / src->ne[0],
                                MQ_DTYPE_F32, NULL, NULL, &data, &buf);
    if (rc < 0)
        return rc;
    rc = be_upload(l->be, dst, MQ_DTYPE_F32, 1, &n, (const float *)data + first, BE_USE_VECTOR);
    free(buf);
    l->weight_bytes += dst->nbytes;
    return rc;
}

static int upload_norm(struct mq_llama *l, const struct mq_gguf_tensor *src, struct be_tensor *dst)
{
    return src ? upload_vector(l, src, 0, src->ne[0], dst) : MQ_OK;
}

static int upload_glue(struct mq_llama *l, int b)
{
    const struct mq_model *m = l->m;
    const struct mq_gguf_tensor *const *src = m->blocks[b].glue;
    struct be_tensor *gl = l->glue[b].t;
    int rc;
    for (int k = 0; k < MQ_GLUE_BIAS_Q; k++)
        if ((rc = upload_norm(l, src[k], &gl[k])) < 0)
            return rc;
    int64_t Q = m->hp.head_dim * m->hp.n_head, KV = m->hp.head_dim * m->hp.n_head_kv;
    int64_t rows[3] = {Q, KV, KV}, first = 0;
    bool fused = m->block_layer[b * MQ_ROLE_COUNT + MQ_ROLE_ATTN_QKV] >= 0;
    for (int k = 0; k < 3; k++) {
        const struct mq_gguf_tensor *bias = src[fused ? MQ_GLUE_BIAS_Q : MQ_GLUE_BIAS_Q + k];
        if ((rc = upload_vector(l, bias, fused ? first : 0, rows[k], &gl[MQ_GLUE_BIAS_Q + k])) < 0)
            return rc;
        first += rows[k];
    }
    return MQ_OK;
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
    l->timing_only = plan->timing_only;
    l->n_ctx = cfg && cfg->n_ctx > 0 ? cfg->n_ctx : hp->n_ctx_train;
    l->n_batch = cfg && cfg->n_batch > 0 ? cfg->n_batch : l->n_ctx;
    if (l->n_batch > l->n_ctx)
        l->n_batch = l->n_ctx;
    l->w = calloc((size_t)m->n_layers, sizeof(*l->w));
    l->fmt = calloc((size_t)m->n_layers + 1, sizeof(*l->fmt));
    l->glue = calloc((size_t)hp->n_layer, sizeof(*l->glue));
    l->k_cache = calloc((size_t)hp->n_layer, sizeof(*l->k_cache));
    l->v_cache = calloc((size_t)hp->n_layer, sizeof(*l->v_cache));
    if (!l->w || !l->fmt || !l->glue || !l->k_cache || !l->v_cache) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate a forward-pass context");
        goto fail;
    }
    for (int i = 0; i < m->n_layers; i++) {
        if ((rc = upload_layer(l, i, plan->fmt[i], l->w[i])) < 0)
            goto fail;
        l->weight_bytes += parts_bytes(l->w[i]);
        l->fmt[i] = plan->fmt[i];
    }
    for (int b = 0; b < hp->n_layer; b++)
        if ((rc = upload_glue(l, b)) < 0)
            goto fail;
    /* llama.cpp's get_rope_factors: rope_freqs, else phi3's long factors for a context over
     * the original one, else its short ones; llama.cpp pads the context it compares to a
     * multiple of 256 (llama_context's n_ctx_seq), and so does this */
    int64_t n_ctx_seq = (l->n_ctx + 255) / 256 * 256;
    const struct mq_gguf_tensor *ff =
        m->rope_freqs ? m->rope_freqs : n_ctx_seq > hp->n_ctx_orig ? m->rope_long : m->rope_short;
    l->has_rope_freqs = ff != NULL;
    if ((rc = upload_norm(l, m->output_norm, &l->output_norm)) < 0 || (rc = upload_norm(l, ff, &l->rope_freqs)) < 0)
        goto fail;

    int64_t kv = hp->head_dim * hp->n_head_kv, B = l->n_batch, qdim = hp->head_dim * hp->n_head;
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
        (rc = alloc2(l, &l->q, MQ_DTYPE_F32, qdim, B)) < 0 ||
        (rc = alloc2(l, &l->attn, MQ_DTYPE_F32, qdim, B)) < 0 ||
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
            for (int k = 0; k < MAX_PARTS; k++)
                be_free(l->be, &l->w[i][k]);
    for (int b = 0; b < hp->n_layer; b++) {
        if (l->glue)
            for (int k = 0; k < MQ_GLUE_COUNT; k++)
                be_free(l->be, &l->glue[b].t[k]);
        if (l->k_cache)
            be_free(l->be, &l->k_cache[b]);
        if (l->v_cache)
            be_free(l->be, &l->v_cache[b]);
    }
    be_free(l->be, &l->output_norm);
    be_free(l->be, &l->rope_freqs);
    struct be_tensor *acts[] = {&l->ids, &l->x, &l->h, &l->q, &l->attn, &l->o, &l->g, &l->u, &l->logits};
    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
        be_free(l->be, acts[i]);
    free(l->w);
    free(l->fmt);
    free(l->capture_buf);
    free(l->glue);
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
    struct be_tensor parts[MAX_PARTS] = {0};
    int rc = upload_layer(l, layer, fmt, parts);
    if (rc < 0)
        return rc;
    l->weight_bytes -= parts_bytes(l->w[layer]);
    for (int k = 0; k < MAX_PARTS; k++) {
        be_free(l->be, &l->w[layer][k]);
        l->w[layer][k] = parts[k];
    }
    l->weight_bytes += parts_bytes(parts);
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

#define RUN(...)                                                                                  \
    do {                                                                                          \
        int rc_ = be_run(l->be, &(struct be_node){__VA_ARGS__});                                  \
        if (rc_ < 0)                                                                              \
            return rc_;                                                                           \
    } while (0)

/* Layer li's matmul(s) on input `in`, the capture hook in front when set (once per layer,
 * also for a fused one): out[k] receives row range k. */
static int matmul_parts(struct mq_llama *l, int li, struct be_tensor *in, struct be_tensor *const *out, int n)
{
    if (l->capture) {
        int rc = capture_input(l, li, in);
        if (rc < 0)
            return rc;
    }
    for (int k = 0; k < n; k++)
        RUN(.op = BE_OP_MATMUL, .src = {&l->w[li][k], in}, .dst = out[k]);
    return MQ_OK;
}

#define MATMUL(li, in, out)                                                                       \
    do {                                                                                          \
        int rc_m = matmul_parts(l, (li), (in), (struct be_tensor *const[]){(out)}, 1);            \
        if (rc_m < 0)                                                                             \
            return rc_m;                                                                          \
    } while (0)

/* RMSNorm of each head of a [D * heads, n] activation in place, with weights [D]. */
static int head_norm(struct mq_llama *l, const struct be_tensor *t, int64_t D, struct be_tensor *w)
{
    struct be_tensor v;
    int rc = be_view_reshape(t, 2, (int64_t[]){D, t->ne[0] / D * t->ne[1]}, &v);
    if (rc < 0)
        return rc;
    RUN(.op = BE_OP_RMSNORM, .src = {&v, w}, .dst = &v, .p.rmsnorm.eps = l->m->hp.norm_eps);
    return MQ_OK;
}

/* One block's attention: Q, K, V (biases, per-head norms, RoPE), K and V into the cache at
 * pos0.., attention over the cache, the output projection into o. Reads h. */
static int block_attention(struct mq_llama *l, int b, int64_t n, int64_t pos0, struct be_tensor *h,
                           struct be_tensor *o)
{
    const struct mq_model *m = l->m;
    const struct mq_hparams *hp = &m->hp;
    const int *bl = &m->block_layer[b * MQ_ROLE_COUNT];
    struct be_tensor *gl = l->glue[b].t;
    int64_t D = hp->head_dim, H = hp->n_head, Hkv = hp->n_head_kv;
    struct be_tensor q = cols(&l->q, n), attn = cols(&l->attn, n), kc, vc;
    int rc;
    if ((rc = be_view_rows(&l->k_cache[b], pos0, n, &kc)) < 0 || (rc = be_view_rows(&l->v_cache[b], pos0, n, &vc)) < 0)
        return rc;
    struct be_tensor *qkv[3] = {&q, &kc, &vc};
    if (bl[MQ_ROLE_ATTN_QKV] >= 0) {
        if ((rc = matmul_parts(l, bl[MQ_ROLE_ATTN_QKV], h, qkv, 3)) < 0)
            return rc;
    } else {
        MATMUL(bl[MQ_ROLE_ATTN_Q], h, &q);
        MATMUL(bl[MQ_ROLE_ATTN_K], h, &kc);
        MATMUL(bl[MQ_ROLE_ATTN_V], h, &vc);
    }
    for (int k = 0; k < 3; k++)
        if (gl[MQ_GLUE_BIAS_Q + k].data)
            RUN(.op = BE_OP_ADD, .src = {qkv[k], &gl[MQ_GLUE_BIAS_Q + k]}, .dst = qkv[k]);
    if (gl[MQ_GLUE_Q_NORM].data && ((rc = head_norm(l, &q, D, &gl[MQ_GLUE_Q_NORM])) < 0 ||
                                    (rc = head_norm(l, &kc, D, &gl[MQ_GLUE_K_NORM])) < 0))
        return rc;
    bool swa = m->blocks[b].swa;
    float theta = swa ? hp->rope_theta_swa : hp->rope_theta;
    float freq_scale = swa ? hp->rope_freq_scale_swa : hp->rope_freq_scale;
    struct be_tensor q3 = as3(&q, D, H, n), kc3 = as3(&kc, D, Hkv, n);
    struct be_tensor *ff = l->has_rope_freqs ? &l->rope_freqs : NULL;
    RUN(.op = BE_OP_ROPE, .src = {&q3, ff}, .dst = &q3,
        .p.rope = {.pos0 = pos0, .n_rot = hp->n_rot, .mode = hp->rope_mode, .theta = theta, .freq_scale = freq_scale,
                   .attn_factor = hp->rope_attn_factor});
    RUN(.op = BE_OP_ROPE, .src = {&kc3, ff}, .dst = &kc3,
        .p.rope = {.pos0 = pos0, .n_rot = hp->n_rot, .mode = hp->rope_mode, .theta = theta, .freq_scale = freq_scale,
                   .attn_factor = hp->rope_attn_factor});
    RUN(.op = BE_OP_ATTENTION, .src = {&q3, &l->k_cache[b], &l->v_cache[b]}, .dst = &attn,
        .p.attention = {.pos0 = pos0,
                        .n_kv = pos0 + n,
                        .scale = hp->attn_scale,
                        .window = swa ? hp->n_swa : 0,
                        .softcap = hp->attn_softcap});
    MATMUL(bl[MQ_ROLE_ATTN_OUTPUT], &attn, o);
    if (gl[MQ_GLUE_ATTN_POST_NORM].data)
        RUN(.op = BE_OP_RMSNORM, .src = {o, &gl[MQ_GLUE_ATTN_POST_NORM]}, .dst = o, .p.rmsnorm.eps = hp->norm_eps);
    return MQ_OK;
}

/* One block's feed-forward network on h into o (h is overwritten). */
static int block_ffn(struct mq_llama *l, int b, int64_t n, struct be_tensor *h, struct be_tensor *o)
{
    const struct mq_model *m = l->m;
    const struct mq_hparams *hp = &m->hp;
    const int *bl = &m->block_layer[b * MQ_ROLE_COUNT];
    struct be_tensor g = cols(&l->g, n), u = cols(&l->u, n);
    int rc;
    if (bl[MQ_ROLE_FFN_GATE] < 0) { /* fused gate and up rows (phi3) */
        if ((rc = matmul_parts(l, bl[MQ_ROLE_FFN_UP], h, (struct be_tensor *const[]){&g, &u}, 2)) < 0)
            return rc;
    } else {
        MATMUL(bl[MQ_ROLE_FFN_GATE], h, &g);
        MATMUL(bl[MQ_ROLE_FFN_UP], h, &u);
    }
    RUN(.op = m->arch_row->act == MQ_FFN_GELU ? BE_OP_GEGLU : BE_OP_SWIGLU, .src = {&g, &u}, .dst = &g);
    MATMUL(bl[MQ_ROLE_FFN_DOWN], &g, o);
    struct be_tensor *post = &l->glue[b].t[MQ_GLUE_FFN_POST_NORM];
    if (post->data)
        RUN(.op = BE_OP_RMSNORM, .src = {o, post}, .dst = o, .p.rmsnorm.eps = hp->norm_eps);
    return MQ_OK;
}

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
    struct be_tensor ids = cols(&l->ids, n), x = cols(&l->x, n), h = cols(&l->h, n);
    struct be_tensor o = cols(&l->o, n), lg = cols(&l->logits, n);
    int rc = be_write(l->be, &ids, 0, tokens, (size_t)n * sizeof(int32_t));
    if (rc < 0)
        return rc;
    RUN(.op = BE_OP_GET_ROWS, .src = {&l->w[m->layer_token_embd][0], &ids}, .dst = &x);
    if (hp->embd_scale != 1.0f)
        RUN(.op = BE_OP_SCALE, .src = {&x}, .dst = &x, .p.scale.s = hp->embd_scale);
    for (int b = 0; b < hp->n_layer; b++) {
        RUN(.op = BE_OP_RMSNORM, .src = {&x, &l->glue[b].t[MQ_GLUE_ATTN_NORM]}, .dst = &h, .p.rmsnorm.eps = hp->norm_eps);
        if ((rc = block_attention(l, b, n, pos0, &h, &o)) < 0)
            return rc;
        RUN(.op = BE_OP_ADD, .src = {&x, &o}, .dst = &x);
        RUN(.op = BE_OP_RMSNORM, .src = {&x, &l->glue[b].t[MQ_GLUE_FFN_NORM]}, .dst = &h, .p.rmsnorm.eps = hp->norm_eps);
        if ((rc = block_ffn(l, b, n, &h, &o)) < 0)
            return rc;
        RUN(.op = BE_OP_ADD, .src = {&x, &o}, .dst = &x);
    }
    RUN(.op = BE_OP_RMSNORM, .src = {&x, &l->output_norm}, .dst = &h, .p.rmsnorm.eps = hp->norm_eps);
    MATMUL(m->layer_output, &h, &lg);
    if (hp->final_softcap > 0.0f)
        RUN(.op = BE_OP_SOFTCAP, .src = {&lg}, .dst = &lg, .p.softcap.cap = hp->final_softcap);
    if (logits)
        return be_read(l->be, &lg, 0, logits, (size_t)n * (size_t)hp->n_vocab * sizeof(float));
    return be_sync(l->be);
}
