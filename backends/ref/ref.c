/* backends/ref/ref.c - scalar reference kernels for every op and format. */
#include "backends/ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp16.h"
#include "core/pool.h"
#include "core/status.h"

struct ref_ctx {
    struct mq_pool *pool;
};

static void ref_probe(struct be_info *info)
{
    memset(info, 0, sizeof(*info));
    info->usable = true;
    info->host_memory = true;
    snprintf(info->detail, sizeof(info->detail),
             "portable scalar C; double accumulation; the oracle for other backends");
}

static int ref_open(const struct be_config *cfg, void **out)
{
    struct ref_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return mq_error(MQ_ENOMEM, "cannot allocate the ref backend");
    int n = cfg->n_threads > 0 ? cfg->n_threads : mq_pool_default_threads();
    int rc = mq_pool_new(n, &ctx->pool);
    if (rc < 0) {
        free(ctx);
        return rc;
    }
    *out = ctx;
    return MQ_OK;
}

static void ref_close(void *p)
{
    struct ref_ctx *ctx = p;
    if (!ctx)
        return;
    mq_pool_free(ctx->pool);
    free(ctx);
}

static int ref_threads(void *p) { return mq_pool_threads(((struct ref_ctx *)p)->pool); }

static int ref_thread_ids(void *p, int *tids, int max)
{
    return mq_pool_tids(((struct ref_ctx *)p)->pool, tids, max);
}

static bool ref_supports(void *p, enum be_op op, enum mq_dtype type)
{
    if (op != BE_OP_MATMUL && op != BE_OP_GET_ROWS)
        return true;
    return mq_dtype_get(type)->is_plan_format;
}

/* The ref backend keeps ggml's layout: a lent source is borrowed as it is. */
static int ref_upload(void *p, struct be_tensor *t, const void *src)
{
    (void)p;
    if (t->may_borrow) {
        t->data = (void *)src;
        t->borrowed = true;
        return MQ_OK;
    }
    t->data = aligned_alloc(64, t->nbytes ? (t->nbytes + 63) / 64 * 64 : 64);
    if (!t->data)
        return mq_error(MQ_ENOMEM, "cannot allocate %zu bytes of weights", t->nbytes);
    memcpy(t->data, src, t->nbytes);
    return MQ_OK;
}

/* ---- dot products ---- */

/* Activation i of a row quantized to `act` blocks, exactly (d * code in double). */
static double act_value(enum mq_dtype act, const void *x_act, int64_t i)
{
    if (act == MQ_DTYPE_Q8_K) {
        const struct mq_block_q8_k *b = (const struct mq_block_q8_k *)x_act + i / MQ_QK_K;
        return (double)b->d * (double)b->qs[i % MQ_QK_K];
    }
    MQ_ASSERT(act == MQ_DTYPE_Q8_0);
    const struct mq_block_q8_0 *b = (const struct mq_block_q8_0 *)x_act + i / MQ_QK8_0;
    return (double)mq_f16_to_f32(b->d) * (double)b->qs[i % MQ_QK8_0];
}

double be_ref_dot(enum mq_dtype type, const void *w_row, const float *x, const void *x_act, float *wf,
                  int64_t n)
{
    const struct mq_dtype_traits *t = mq_dtype_get(type);
    MQ_ASSERT(t->to_f32 && "be_ref_dot: type without numbers");
    t->to_f32(w_row, wf, n);
    double sum = 0.0;
    if (!t->is_quantized) {
        for (int64_t i = 0; i < n; i++)
            sum += (double)wf[i] * (double)x[i];
        return sum;
    }
    for (int64_t i = 0; i < n; i++)
        sum += (double)wf[i] * act_value(t->act_type, x_act, i);
    return sum;
}

/* ---- matmul: rows of W split over the pool ---- */

struct matmul_job {
    const struct be_tensor *w;
    const float *x;        /* [M][K] */
    const char *x_act;     /* [M] rows of act_bytes activation blocks, or NULL */
    size_t act_bytes;
    float *y;              /* [M][N] */
    float *wf;             /* per thread: K floats */
    int64_t K, N, M;
    size_t row_bytes;
};

static void matmul_rows(void *arg, int ith, int nth)
{
    const struct matmul_job *j = arg;
    float *wf = j->wf + (size_t)ith * (size_t)j->K;
    int64_t lo, hi;
    mq_pool_split(j->N, ith, nth, &lo, &hi);
    for (int64_t n = lo; n < hi; n++) {
        const char *row = (const char *)j->w->data + (size_t)n * j->row_bytes;
        for (int64_t m = 0; m < j->M; m++) {
            const float *x = j->x + m * j->K;
            const void *xa = j->x_act ? j->x_act + (size_t)m * j->act_bytes : NULL;
            j->y[m * j->N + n] = (float)be_ref_dot(j->w->type, row, x, xa, wf, j->K);
        }
    }
}

static int ref_matmul(struct ref_ctx *ctx, const struct be_node *node)
{
    const struct be_tensor *w = node->src[0], *xt = node->src[1];
    const struct mq_dtype_traits *t = mq_dtype_get(w->type);
    struct matmul_job j = {
        .w = w, .x = xt->data, .y = node->dst->data,
        .K = w->ne[0], .N = w->ne[1], .M = xt->ne[1], .row_bytes = w->nbytes / (size_t)w->ne[1],
    };
    char *xa = NULL;
    if (t->is_quantized) {
        enum mq_dtype act = t->act_type;
        /* the weight's blocks (32 or 256) are whole activation blocks: checked at upload */
        MQ_ASSERT(mq_dtype_row_bytes(act, j.K, &j.act_bytes) == MQ_OK);
        xa = malloc(j.act_bytes * (size_t)j.M + 1);
        if (!xa)
            return mq_error(MQ_ENOMEM, "matmul: cannot allocate activation blocks");
        for (int64_t m = 0; m < j.M; m++)
            mq_dtype_get(act)->from_f32(j.x + m * j.K, xa + (size_t)m * j.act_bytes, j.K);
        j.x_act = xa;
    }
    j.wf = malloc((size_t)mq_pool_threads(ctx->pool) * (size_t)j.K * sizeof(float) + 1);
    if (!j.wf) {
        free(xa);
        return mq_error(MQ_ENOMEM, "matmul: cannot allocate a row buffer");
    }
    mq_pool_run(ctx->pool, matmul_rows, &j);
    free(j.wf);
    free(xa);
    return MQ_OK;
}

static int ref_get_rows(const struct be_node *node)
{
    const struct be_tensor *w = node->src[0];
    const int32_t *ids = node->src[1]->data;
    float *y = node->dst->data;
    int64_t K = w->ne[0], V = w->ne[1], M = be_nelements(node->src[1]);
    size_t row_bytes = w->nbytes / (size_t)V;
    for (int64_t m = 0; m < M; m++) {
        if (ids[m] < 0 || ids[m] >= V)
            return mq_error(MQ_ERANGE, "get_rows: token id %d outside 0..%lld", ids[m], (long long)V - 1);
        mq_dtype_get(w->type)->to_f32((const char *)w->data + (size_t)ids[m] * row_bytes, y + m * K, K);
    }
    return MQ_OK;
}

static void ref_rmsnorm(const struct be_node *node)
{
    const float *x = node->src[0]->data, *g = node->src[1]->data;
    float *y = node->dst->data;
    int64_t K = node->src[0]->ne[0], rows = be_nelements(node->src[0]) / K;
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0.0;
        for (int64_t k = 0; k < K; k++)
            ss += (double)x[r * K + k] * (double)x[r * K + k];
        float scale = (float)(1.0 / sqrt(ss / (double)K + (double)node->p.rmsnorm.eps));
        for (int64_t k = 0; k < K; k++)
            y[r * K + k] = x[r * K + k] * scale * g[k];
    }
}

static void ref_rope(const struct be_node *node)
{
    const float *x = node->src[0]->data;
    float *y = node->dst->data;
    int64_t D = node->src[0]->ne[0], H = node->src[0]->ne[1];
    int64_t M = node->src[0]->ne[2] * node->src[0]->ne[3];
    int n_rot = node->p.rope.n_rot;
    bool neox = node->p.rope.mode == BE_ROPE_NEOX;
    const float *ff = node->src[1] ? node->src[1]->data : NULL; /* frequency factors [n_rot/2] */
    float ms = node->p.rope.attn_factor > 0.0f ? node->p.rope.attn_factor : 1.0f;
    for (int64_t m = 0; m < M; m++) {
        double pos = (double)(node->p.rope.pos0 + m) * (double)node->p.rope.freq_scale;
        for (int i = 0; i < n_rot / 2; i++) {
            double ang = pos * pow((double)node->p.rope.theta, -2.0 * i / n_rot) / (ff ? (double)ff[i] : 1.0);
            float c = (float)cos(ang) * ms, s = (float)sin(ang) * ms;
            int i0 = neox ? i : 2 * i, i1 = neox ? i + n_rot / 2 : 2 * i + 1;
            for (int64_t h = 0; h < H; h++) {
                const float *xh = x + (m * H + h) * D;
                float *yh = y + (m * H + h) * D;
                float x0 = xh[i0], x1 = xh[i1];
                yh[i0] = x0 * c - x1 * s;
                yh[i1] = x0 * s + x1 * c;
            }
        }
        if (y != x)
            for (int64_t h = 0; h < H; h++)
                memcpy(y + (m * H + h) * D + n_rot, x + (m * H + h) * D + n_rot,
                       (size_t)(D - n_rot) * sizeof(float));
    }
}

struct attn_job {
    const struct be_node *node;
    int64_t D, H, Hkv, M;
    double *scratch; /* per thread: n_kv scores, then D accumulators */
};

static void attention_heads(void *arg, int ith, int nth)
{
    const struct attn_job *j = arg;
    const struct be_node *node = j->node;
    const float *q = node->src[0]->data, *kc = node->src[1]->data, *vc = node->src[2]->data;
    float *out = node->dst->data;
    int64_t D = j->D, H = j->H, Hkv = j->Hkv, rowkv = D * Hkv;
    int64_t n_kv = node->p.attention.n_kv;
    double *score = j->scratch + (size_t)ith * (size_t)(n_kv + D);
    double *acc = score + n_kv;
    int64_t lo, hi;
    mq_pool_split(H * j->M, ith, nth, &lo, &hi);
    double cap = (double)node->p.attention.softcap;
    int64_t window = node->p.attention.window;
    for (int64_t t = lo; t < hi; t++) {
        int64_t m = t / H, h = t % H, g = h / (H / Hkv);
        int64_t last = node->p.attention.pos0 + m; /* attends to positions first..last */
        int64_t first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;
        const float *qh = q + (m * H + h) * D;
        double mx = -INFINITY;
        for (int64_t p = first; p <= last; p++) {
            const float *k = kc + p * rowkv + g * D;
            double s = 0.0;
            for (int64_t d = 0; d < D; d++)
                s += (double)qh[d] * (double)k[d];
            s *= (double)node->p.attention.scale;
            if (cap > 0.0)
                s = cap * tanh(s / cap);
            score[p] = s;
            mx = score[p] > mx ? score[p] : mx;
        }
        double sum = 0.0;
        for (int64_t p = first; p <= last; p++) {
            score[p] = exp(score[p] - mx);
            sum += score[p];
        }
        for (int64_t d = 0; d < D; d++)
            acc[d] = 0.0;
        for (int64_t p = first; p <= last; p++) {
            const float *v = vc + p * rowkv + g * D;
            for (int64_t d = 0; d < D; d++)
                acc[d] += score[p] * (double)v[d];
        }
        for (int64_t d = 0; d < D; d++)
            out[m * D * H + h * D + d] = (float)(acc[d] / sum);
    }
}

static int ref_attention(struct ref_ctx *ctx, const struct be_node *node)
{
    struct attn_job j = {.node = node, .D = node->src[0]->ne[0], .H = node->src[0]->ne[1],
                         .M = node->src[0]->ne[2]};
    j.Hkv = node->src[1]->ne[0] / j.D;
    size_t per_thread = (size_t)(node->p.attention.n_kv + j.D);
    j.scratch = malloc((size_t)mq_pool_threads(ctx->pool) * per_thread * sizeof(double));
    if (!j.scratch)
        return mq_error(MQ_ENOMEM, "attention: cannot allocate scratch");
    mq_pool_run(ctx->pool, attention_heads, &j);
    free(j.scratch);
    return MQ_OK;
}

static void ref_swiglu(const struct be_node *node)
{
    const float *g = node->src[0]->data, *u = node->src[1]->data;
    float *y = node->dst->data;
    for (int64_t i = 0, n = be_nelements(node->dst); i < n; i++)
        y[i] = (float)((double)g[i] / (1.0 + exp(-(double)g[i])) * (double)u[i]);
}

/* ggml's CPU GELU with GGML_GELU_FP16 (ggml-cpu/vec.h ggml_vec_geglu_f32): the table
 * entry ggml_table_gelu_f16[fp16(x)] = fp16(ggml_gelu_f32(f32(fp16(x)))), computed here
 * for the one element instead of looked up; outside (-10, 10) no table. */
static float ref_geglu_one(float x, float up)
{
    if (x <= -10.0f)
        return 0.0f;
    if (x >= 10.0f)
        return x * up;
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f, coef_a = 0.044715f;
    float xh = mq_f16_to_f32(mq_f32_to_f16(x));
    float gelu = 0.5f * xh * (1.0f + tanhf(sqrt_2_over_pi * xh * (1.0f + coef_a * xh * xh)));
    return mq_f16_to_f32(mq_f32_to_f16(gelu)) * up;
}

static void ref_geglu(const struct be_node *node)
{
    const float *g = node->src[0]->data, *u = node->src[1]->data;
    float *y = node->dst->data;
    for (int64_t i = 0, n = be_nelements(node->dst); i < n; i++)
        y[i] = ref_geglu_one(g[i], u[i]);
}

/* src1 the same shape, or one column added to every column */
static void ref_add(const struct be_node *node)
{
    const float *a = node->src[0]->data, *b = node->src[1]->data;
    float *y = node->dst->data;
    int64_t nb = be_nelements(node->src[1]);
    for (int64_t i = 0, n = be_nelements(node->dst); i < n; i++)
        y[i] = a[i] + b[i % nb];
}

static void ref_scale(const struct be_node *node)
{
    const float *x = node->src[0]->data;
    float *y = node->dst->data;
    float s = node->p.scale.s;
    for (int64_t i = 0, n = be_nelements(node->dst); i < n; i++)
        y[i] = x[i] * s;
}

/* as ggml's scale(1/cap), tanh, scale(cap), in F32 */
static void ref_softcap(const struct be_node *node)
{
    const float *x = node->src[0]->data;
    float *y = node->dst->data;
    float cap = node->p.softcap.cap, inv = 1.0f / cap;
    for (int64_t i = 0, n = be_nelements(node->dst); i < n; i++)
        y[i] = tanhf(x[i] * inv) * cap;
}

static int ref_run(void *p, const struct be_node *node)
{
    struct ref_ctx *ctx = p;
    switch (node->op) {
    case BE_OP_GET_ROWS:
        return ref_get_rows(node);
    case BE_OP_MATMUL:
        return ref_matmul(ctx, node);
    case BE_OP_RMSNORM:
        ref_rmsnorm(node);
        return MQ_OK;
    case BE_OP_ROPE:
        ref_rope(node);
        return MQ_OK;
    case BE_OP_ATTENTION:
        return ref_attention(ctx, node);
    case BE_OP_SWIGLU:
        ref_swiglu(node);
        return MQ_OK;
    case BE_OP_ADD:
        ref_add(node);
        return MQ_OK;
    case BE_OP_SCALE:
        ref_scale(node);
        return MQ_OK;
    case BE_OP_GEGLU:
        ref_geglu(node);
        return MQ_OK;
    case BE_OP_SOFTCAP:
        ref_softcap(node);
        return MQ_OK;
    case BE_OP_COUNT:
        break;
    }
    return mq_error(MQ_EINTERNAL, "ref: unknown op %d", (int)node->op);
}

const struct be_ops be_ref_ops = {
    .abi = BE_ABI_VERSION,
    .name = "ref",
    .summary = "scalar reference kernels (the oracle)",
    .probe = ref_probe,
    .open = ref_open,
    .close = ref_close,
    .supports = ref_supports,
    .upload = ref_upload,
    .run = ref_run,
    .threads = ref_threads,
    .thread_ids = ref_thread_ids,
};
