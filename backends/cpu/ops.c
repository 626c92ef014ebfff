/* backends/cpu/ops.c - op drivers of the host backends (cpu, neon): packing at upload,
 * threaded matmul and F32 ops through the chosen kernel table. Moved out of cpu.c so
 * that backends/neon runs the same drivers; the x86 behaviour is unchanged. */
#include "backends/cpu/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp16.h"
#include "core/status.h"

/* ---- upload ---- */

/* Whether FP16 arithmetic could overflow on this F16 matrix (see CPU_F16_ARITH_MAX_W). */
static bool f16_too_wide(const uint16_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = fabsf(mq_f16_to_f32(w[i]));
        if (!(v <= CPU_F16_ARITH_MAX_W))
            return true;
    }
    return false;
}

int cpu_ops_upload(void *p, struct be_tensor *t, const void *src)
{
    struct cpu_ctx *ctx = p;
    int R = t->use == BE_USE_MATRIX ? ctx->kern->rows : 1;
    int64_t K = t->ne[0], N = t->nbytes ? (int64_t)(be_nelements(t) / K) : 0;
    size_t gb = cpu_group_bytes(t->type, K, R);
    size_t n_groups = (size_t)((N + R - 1) / R);
    if (gb == 0)
        return mq_error(MQ_EUNSUPPORTED, "%s backend: cannot pack %s weights", ctx->name,
                        mq_dtype_name(t->type));
    if (n_groups && gb > SIZE_MAX / n_groups)
        return mq_error(MQ_ENOMEM, "%s backend: packed weights overflow", ctx->name);
    struct cpu_weights *cw = malloc(sizeof(*cw));
    size_t bytes = gb * n_groups;
    /* one row per group is ggml's layout byte for byte: a lent source is borrowed (kernels
     * read weights with unaligned loads; F32 needs 4-byte alignment, GGUF gives 32) */
    bool borrow = t->may_borrow && R == 1 && (uintptr_t)src % 4 == 0;
    void *data = borrow ? (void *)src : aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (!cw || !data) {
        free(cw);
        if (!borrow)
            free(data);
        return mq_error(MQ_ENOMEM, "%s backend: cannot allocate %zu bytes of packed weights",
                        ctx->name, bytes);
    }
    if (!borrow)
        cpu_pack(t->type, src, data, K, N, R);
    cw->rows = R;
    cw->group_bytes = gb;
    cw->f16_wide =
        t->type == MQ_DTYPE_F16 && ctx->kern->f16_act && f16_too_wide(src, (size_t)K * (size_t)N);
    t->data = data;
    t->extra = cw;
    t->borrowed = borrow;
    return MQ_OK;
}

void cpu_ops_release(void *p, struct be_tensor *t)
{
    (void)p;
    if (!t->borrowed)
        free(t->data);
    free(t->extra);
}

int cpu_ops_open(const char *name, const struct cpu_kern *kern, const struct be_config *cfg, void **out)
{
    struct cpu_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return mq_error(MQ_ENOMEM, "cannot allocate the %s backend", name);
    ctx->name = name;
    ctx->kern = kern;
    int n = cfg->n_threads > 0 ? cfg->n_threads : mq_pool_default_threads();
    int rc = mq_pool_new(n, &ctx->pool);
    if (rc < 0) {
        free(ctx);
        return rc;
    }
    *out = ctx;
    return MQ_OK;
}

void cpu_ops_close(void *p)
{
    struct cpu_ctx *ctx = p;
    if (!ctx)
        return;
    mq_pool_free(ctx->pool);
    free(ctx->act_buf);
    free(ctx->attn_buf);
    free(ctx);
}

bool cpu_ops_supports(void *p, enum be_op op, enum mq_dtype type)
{
    const struct cpu_ctx *ctx = p;
    if (op != BE_OP_MATMUL && op != BE_OP_GET_ROWS)
        return true;
    return ctx->kern->matmul[type] != NULL;
}

int cpu_ops_threads(void *p) { return mq_pool_threads(((struct cpu_ctx *)p)->pool); }

int cpu_ops_thread_ids(void *p, int *tids, int max) { return mq_pool_tids(((struct cpu_ctx *)p)->pool, tids, max); }

/* ---- matmul ---- */

static void *scratch(void **buf, size_t *cap, size_t need)
{
    if (need > *cap) {
        free(*buf);
        *buf = aligned_alloc(64, (need + 63) / 64 * 64);
        *cap = *buf ? need : 0;
    }
    return *buf;
}

struct mm_job {
    struct cpu_ctx *ctx;
    struct cpu_act act;
    struct cpu_mm mm;
    cpu_mm_fn fn;
    int64_t n_groups;
    bool q8k; /* activations in Q8_K blocks (else Q8_0) */
    /* few columns: each thread quantizes them itself into its slice of `own` (saves a
     * second pool run per matmul in decode) */
    bool own_quant;
    char *own;
    size_t own_bytes;
};

/* Per column: scales (Q8_0: per 32; Q8_K: per 256) and sums (Q8_0: per 32; Q8_K: per 16). */
static int64_t act_nd(int64_t K, bool q8k) { return q8k ? K / 256 : K / 32; }
static int64_t act_ns(int64_t K, bool q8k) { return q8k ? K / 16 : K / 32; }

/* Lays out activation buffers for M columns of K at s (see cpu_act). */
static void act_layout(struct cpu_act *a, char *s, int64_t M, int64_t K, bool q8k)
{
    size_t nd = (size_t)act_nd(K, q8k), ns = (size_t)act_ns(K, q8k);
    a->xd = (float *)s;
    a->xs = (int32_t *)(s + (size_t)M * nd * 4);
    a->xq = (int8_t *)(s + (size_t)M * (nd + ns) * 4);
    a->xu = (uint8_t *)(s + (size_t)M * (nd + ns) * 4 + (size_t)M * K);
}

static size_t act_bytes(int64_t M, int64_t K, bool q8k)
{
    size_t nd = (size_t)act_nd(K, q8k), ns = (size_t)act_ns(K, q8k);
    return ((size_t)M * ((nd + ns) * 4 + (size_t)K * 2) + 63) / 64 * 64;
}

/* Quantizes column m of j's activations into act's buffers. */
static void act_quantize(const struct mm_job *j, const struct cpu_act *act, int64_t m)
{
    const struct cpu_kern *k = j->ctx->kern;
    int64_t K = act->K, nd = act_nd(K, j->q8k), ns = act_ns(K, j->q8k);
    (j->q8k ? k->quantize_q8k : k->quantize_q8)(act->x + m * K, K, act->xd + m * nd, act->xq + m * K,
                                                 act->xu ? act->xu + m * K : NULL, act->xs + m * ns);
}

static void mm_quantize(void *arg, int ith, int nth)
{
    struct mm_job *j = arg;
    int64_t lo, hi;
    mq_pool_split(j->act.M, ith, nth, &lo, &hi);
    for (int64_t m = lo; m < hi; m++)
        act_quantize(j, &j->act, m);
}

static void mm_bf16_round(void *arg, int ith, int nth)
{
    struct mm_job *j = arg;
    int64_t lo, hi, K = j->act.K, K2 = (K + 1) / 2 * 2;
    mq_pool_split(j->act.M, ith, nth, &lo, &hi);
    for (int64_t m = lo; m < hi; m++) {
        for (int64_t k = 0; k < K; k++) {
            uint32_t u;
            memcpy(&u, &j->act.x[m * K + k], 4);
            /* round to nearest even, as AVX512-BF16's vcvtne2ps2bf16 */
            j->act.xb[m * K2 + k] = (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
        }
        if (K2 != K)
            j->act.xb[m * K2 + K] = 0;
    }
}

/* FP16-arithmetic paths: every column converted once to f16 chunks (kern->f16_act). */
static void mm_f16_prep(void *arg, int ith, int nth)
{
    struct mm_job *j = arg;
    int64_t lo, hi, K = j->act.K, K16 = (K + 15) / 16 * 16;
    mq_pool_split(j->act.M, ith, nth, &lo, &hi);
    for (int64_t m = lo; m < hi; m++)
        j->ctx->kern->f16_act(j->act.x + m * K, K, j->act.xh + m * K16,
                              j->act.xhs + m * (K16 / 16));
}

static void mm_rows(void *arg, int ith, int nth)
{
    struct mm_job *j = arg;
    int64_t lo, hi;
    mq_pool_split(j->n_groups, ith, nth, &lo, &hi);
    if (lo >= hi)
        return;
    if (j->own_quant) {
        struct cpu_act act = j->act;
        struct cpu_mm mm = j->mm;
        act_layout(&act, j->own + (size_t)ith * j->own_bytes, act.M, act.K, j->q8k);
        for (int64_t m = 0; m < act.M; m++)
            act_quantize(j, &act, m);
        mm.a = &act;
        j->fn(&mm, lo, hi);
        return;
    }
    j->fn(&j->mm, lo, hi);
}

/* Work below this many elements runs on the calling thread: waking the pool costs
 * about a microsecond, more than a small elementwise op takes (decode runs dozens of
 * them per layer). */
#define CPU_INLINE_ELEMS 16384

static void run_maybe_inline(struct cpu_ctx *ctx, int64_t elems, mq_pool_fn fn, void *arg)
{
    if (elems < CPU_INLINE_ELEMS)
        fn(arg, 0, 1);
    else
        mq_pool_run(ctx->pool, fn, arg);
}

static int cpu_matmul(struct cpu_ctx *ctx, const struct be_node *node)
{
    const struct be_tensor *w = node->src[0], *x = node->src[1];
    const struct cpu_weights *cw = w->extra;
    const struct cpu_kern *k = ctx->kern;
    struct mm_job j = {.ctx = ctx, .fn = k->matmul[w->type]};
    int64_t K = w->ne[0], N = w->ne[1], M = x->ne[1];
    j.act = (struct cpu_act){.x = x->data, .K = K, .M = M};
    if (mq_dtype_get(w->type)->is_quantized) {
        j.q8k = mq_dtype_get(w->type)->act_type == MQ_DTYPE_Q8_K;
        if (K % (j.q8k ? 256 : 32))
            return mq_error(MQ_EINVAL, "%s matmul: K=%lld is not a whole number of %s blocks", ctx->name,
                            (long long)K, j.q8k ? "q8_k" : "q8_0");
        /* up to 4 columns, quantizing is cheaper than a barrier: every thread does it */
        j.own_quant = M <= 4;
        j.own_bytes = act_bytes(M, K, j.q8k);
        size_t need = j.own_quant ? j.own_bytes * (size_t)mq_pool_threads(ctx->pool) : j.own_bytes;
        char *s = scratch(&ctx->act_buf, &ctx->act_cap, need);
        if (!s)
            return mq_error(MQ_ENOMEM, "%s matmul: cannot allocate %zu bytes of activations",
                            ctx->name, need);
        if (j.own_quant) {
            j.own = s;
        } else {
            act_layout(&j.act, s, M, K, j.q8k);
            mq_pool_run(ctx->pool, mm_quantize, &j);
        }
    } else if (w->type == MQ_DTYPE_BF16 && k->bf16_dot) {
        size_t need = (size_t)M * (size_t)((K + 1) / 2 * 2) * 2 + 64;
        j.act.xb = scratch(&ctx->act_buf, &ctx->act_cap, need);
        if (!j.act.xb)
            return mq_error(MQ_ENOMEM, "%s matmul: cannot allocate %zu bytes of activations",
                            ctx->name, need);
        mq_pool_run(ctx->pool, mm_bf16_round, &j);
    } else if (w->type == MQ_DTYPE_F16 && k->f16_act && cw->f16_wide) {
        j.fn = k->matmul_f16_wide;
    } else if (w->type == MQ_DTYPE_F16 && k->f16_act) {
        int64_t K16 = (K + 15) / 16 * 16;
        size_t scales = ((size_t)M * (size_t)(K16 / 16) * sizeof(float) + 63) / 64 * 64;
        size_t need = scales + (size_t)M * (size_t)K16 * sizeof(uint16_t);
        char *s = scratch(&ctx->act_buf, &ctx->act_cap, need);
        if (!s)
            return mq_error(MQ_ENOMEM, "%s matmul: cannot allocate %zu bytes of activations",
                            ctx->name, need);
        j.act.xhs = (float *)s;
        j.act.xh = (uint16_t *)(s + scales);
        run_maybe_inline(ctx, M * K, mm_f16_prep, &j);
    }
    j.mm = (struct cpu_mm){.type = w->type,
                           .w = w->data,
                           .group_bytes = cw->group_bytes,
                           .K = K,
                           .N = N,
                           .a = &j.act,
                           .y = node->dst->data};
    j.n_groups = (N + cw->rows - 1) / cw->rows;
    mq_pool_run(ctx->pool, mm_rows, &j);
    return MQ_OK;
}

static int cpu_get_rows(const struct be_node *node)
{
    const struct be_tensor *w = node->src[0];
    const struct cpu_weights *cw = w->extra;
    const int32_t *ids = node->src[1]->data;
    float *y = node->dst->data;
    int64_t K = w->ne[0], V = w->ne[1], M = be_nelements(node->src[1]);
    for (int64_t m = 0; m < M; m++) {
        if (ids[m] < 0 || ids[m] >= V)
            return mq_error(MQ_ERANGE, "get_rows: token id %d outside 0..%lld", ids[m],
                            (long long)V - 1);
        cpu_unpack_row(w->type, w->data, K, cw->rows, ids[m], y + m * K);
    }
    return MQ_OK;
}

/* ---- row-parallel elementwise ops ---- */

struct rows_job {
    const struct cpu_kern *k;
    const struct be_node *node;
    int64_t K, rows;
};

static void rmsnorm_rows(void *arg, int ith, int nth)
{
    const struct rows_job *j = arg;
    const float *x = j->node->src[0]->data, *g = j->node->src[1]->data;
    float *y = j->node->dst->data;
    int64_t lo, hi;
    mq_pool_split(j->rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        double ss = j->k->sumsq(x + r * j->K, j->K);
        float scale = (float)(1.0 / sqrt(ss / (double)j->K + (double)j->node->p.rmsnorm.eps));
        j->k->scale_mul(x + r * j->K, scale, g, y + r * j->K, j->K);
    }
}

/* GEGLU as ggml's CPU computes it (backend.h; the scalar twin is ref.c's ref_geglu_one):
 * gelu from an f16-rounded input, rounded to f16, as ggml's f16 table holds it. Per
 * element (tanhf, two f16 roundings); a table would be 128 KiB per context. */
static void geglu(const float *g, const float *u, float *y, int64_t n)
{
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f, coef_a = 0.044715f;
    for (int64_t i = 0; i < n; i++) {
        float x = g[i];
        if (x <= -10.0f) {
            y[i] = 0.0f;
        } else if (x >= 10.0f) {
            y[i] = x * u[i];
        } else {
            float xh = mq_f16_to_f32(mq_f32_to_f16(x));
            float v = 0.5f * xh * (1.0f + tanhf(sqrt_2_over_pi * xh * (1.0f + coef_a * xh * xh)));
            y[i] = mq_f16_to_f32(mq_f32_to_f16(v)) * u[i];
        }
    }
}

/* plain loops the compiler vectorizes (SCALE) or that are libm-bound (SOFTCAP's tanhf) */
static void scale(const float *x, float s, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * s;
}

static void softcap(const float *x, float cap, float *y, int64_t n)
{
    float inv = 1.0f / cap; /* ggml: scale(1/cap), tanh, scale(cap) */
    for (int64_t i = 0; i < n; i++)
        y[i] = tanhf(x[i] * inv) * cap;
}

static void elementwise_rows(void *arg, int ith, int nth)
{
    const struct rows_job *j = arg;
    const struct be_node *node = j->node;
    const float *a = node->src[0]->data, *b = node->src[1] ? node->src[1]->data : NULL;
    float *y = node->dst->data;
    int64_t n = j->K * j->rows, lo, hi;
    /* split in 64-float chunks so threads never share a cache line of y */
    mq_pool_split((n + 63) / 64, ith, nth, &lo, &hi);
    lo *= 64;
    hi = hi * 64 < n ? hi * 64 : n;
    if (lo >= hi)
        return;
    switch (node->op) {
    case BE_OP_ADD:
        if (be_nelements(node->src[1]) == n) {
            j->k->add(a + lo, b + lo, y + lo, hi - lo);
            break;
        }
        /* a bias column: the chunk's pieces of rows, each against the column */
        for (int64_t i = lo; i < hi;) {
            int64_t k0 = i % j->K, len = j->K - k0 < hi - i ? j->K - k0 : hi - i;
            j->k->add(a + i, b + k0, y + i, len);
            i += len;
        }
        break;
    case BE_OP_SWIGLU: j->k->swiglu(a + lo, b + lo, y + lo, hi - lo); break;
    case BE_OP_GEGLU: geglu(a + lo, b + lo, y + lo, hi - lo); break;
    case BE_OP_SCALE: scale(a + lo, node->p.scale.s, y + lo, hi - lo); break;
    case BE_OP_SOFTCAP: softcap(a + lo, node->p.softcap.cap, y + lo, hi - lo); break;
    default: MQ_ASSERT(!"elementwise_rows: not an elementwise op"); break;
    }
}

static void rope_rows(void *arg, int ith, int nth)
{
    const struct rows_job *j = arg;
    const struct be_node *node = j->node;
    const float *x = node->src[0]->data;
    float *y = node->dst->data;
    int64_t D = node->src[0]->ne[0], H = node->src[0]->ne[1];
    int n_rot = node->p.rope.n_rot;
    bool neox = node->p.rope.mode == BE_ROPE_NEOX;
    const float *ff = node->src[1] ? node->src[1]->data : NULL; /* frequency factors [n_rot/2] */
    float ms = node->p.rope.attn_factor > 0.0f ? node->p.rope.attn_factor : 1.0f;
    float cs[2 * 512];
    int64_t lo, hi;
    mq_pool_split(j->rows, ith, nth, &lo, &hi);
    for (int64_t m = lo; m < hi; m++) {
        double pos = (double)(node->p.rope.pos0 + m) * (double)node->p.rope.freq_scale;
        for (int i = 0; i < n_rot / 2; i++) {
            double ang = pos * pow((double)node->p.rope.theta, -2.0 * i / n_rot) / (ff ? (double)ff[i] : 1.0);
            cs[2 * i] = (float)cos(ang) * ms;
            cs[2 * i + 1] = (float)sin(ang) * ms;
        }
        for (int64_t h = 0; h < H; h++) {
            const float *xh = x + (m * H + h) * D;
            float *yh = y + (m * H + h) * D;
            for (int i = 0; i < n_rot / 2; i++) {
                int i0 = neox ? i : 2 * i, i1 = neox ? i + n_rot / 2 : 2 * i + 1;
                float x0 = xh[i0], x1 = xh[i1], c = cs[2 * i], s = cs[2 * i + 1];
                yh[i0] = x0 * c - x1 * s;
                yh[i1] = x0 * s + x1 * c;
            }
            if (yh != xh)
                memcpy(yh + n_rot, xh + n_rot, (size_t)(D - n_rot) * sizeof(float));
        }
    }
}

struct attn_job {
    const struct cpu_kern *k;
    const struct be_node *node;
    int64_t D, H, Hkv, M;
    float *scratch; /* per thread: n_kv scores */
};

static void attention_heads(void *arg, int ith, int nth)
{
    const struct attn_job *j = arg;
    const struct be_node *node = j->node;
    const float *q = node->src[0]->data, *kc = node->src[1]->data, *vc = node->src[2]->data;
    float *out = node->dst->data;
    int64_t D = j->D, H = j->H, rowkv = D * j->Hkv, n_kv = node->p.attention.n_kv;
    float *score = j->scratch + (size_t)ith * (size_t)n_kv;
    float scale = node->p.attention.scale, cap = node->p.attention.softcap;
    float inv_cap = cap > 0.0f ? 1.0f / cap : 0.0f;
    int64_t window = node->p.attention.window;
    int64_t lo, hi;
    mq_pool_split(H * j->M, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        int64_t m = t / H, h = t % H, g = h / (H / j->Hkv);
        int64_t last = node->p.attention.pos0 + m; /* positions first..last */
        int64_t first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;
        int64_t n = last - first + 1;
        const float *qh = q + (m * H + h) * D;
        const float *kf = kc + first * rowkv + g * D, *vf = vc + first * rowkv + g * D;
        float mx = -INFINITY;
        if (j->k->dots) {
            mx = j->k->dots(qh, kf, rowkv, n, D, scale, score);
        } else {
            for (int64_t p = 0; p < n; p++) {
                score[p] = j->k->dot(qh, kf + p * rowkv, D) * scale;
                mx = score[p] > mx ? score[p] : mx;
            }
        }
        if (cap > 0.0f) { /* ggml: scale(1/cap), tanh, scale(cap) */
            mx = -INFINITY;
            for (int64_t p = 0; p < n; p++) {
                score[p] = tanhf(score[p] * inv_cap) * cap;
                mx = score[p] > mx ? score[p] : mx;
            }
        }
        float sum = j->k->exp_sum(score, mx, n);
        float *o = out + m * D * H + h * D;
        memset(o, 0, (size_t)D * sizeof(float));
        if (j->k->axpys)
            j->k->axpys(score, vf, rowkv, n, D, o);
        else
            for (int64_t p = 0; p < n; p++)
                j->k->axpy(score[p], vf + p * rowkv, o, D);
        float inv = 1.0f / sum;
        for (int64_t d = 0; d < D; d++)
            o[d] *= inv;
    }
}

int cpu_ops_run(void *p, const struct be_node *node)
{
    struct cpu_ctx *ctx = p;
    const struct be_tensor *a = node->src[0];
    struct rows_job rj = {.k = ctx->kern, .node = node, .K = a->ne[0]};
    switch (node->op) {
    case BE_OP_MATMUL: return cpu_matmul(ctx, node);
    case BE_OP_GET_ROWS: return cpu_get_rows(node);
    case BE_OP_RMSNORM:
        rj.rows = be_nelements(a) / a->ne[0];
        run_maybe_inline(ctx, be_nelements(a), rmsnorm_rows, &rj);
        return MQ_OK;
    case BE_OP_ADD:
    case BE_OP_SCALE:
    case BE_OP_SWIGLU:
    case BE_OP_GEGLU:
    case BE_OP_SOFTCAP: {
        /* cost in adds: exp or tanh per element is about 8 */
        int64_t cost = node->op == BE_OP_ADD || node->op == BE_OP_SCALE ? 1 : 8;
        rj.rows = be_nelements(a) / a->ne[0];
        run_maybe_inline(ctx, be_nelements(a) * cost, elementwise_rows, &rj);
        return MQ_OK;
    }
    case BE_OP_ROPE:
        if (node->p.rope.n_rot > 1024)
            return mq_error(MQ_EUNSUPPORTED, "rope: %d rotary dimensions (at most 1024)",
                            node->p.rope.n_rot);
        rj.rows = a->ne[2] * a->ne[3];
        run_maybe_inline(ctx, be_nelements(a) * 4, rope_rows, &rj);
        return MQ_OK;
    case BE_OP_ATTENTION: {
        struct attn_job j = {
            .k = ctx->kern, .node = node, .D = a->ne[0], .H = a->ne[1], .M = a->ne[2]};
        j.Hkv = node->src[1]->ne[0] / j.D;
        size_t need =
            (size_t)mq_pool_threads(ctx->pool) * (size_t)node->p.attention.n_kv * sizeof(float);
        j.scratch = scratch(&ctx->attn_buf, &ctx->attn_cap, need);
        if (!j.scratch)
            return mq_error(MQ_ENOMEM, "attention: cannot allocate scratch");
        run_maybe_inline(ctx, j.H * j.M * node->p.attention.n_kv * j.D * 2, attention_heads, &j);
        return MQ_OK;
    }
    case BE_OP_COUNT: break;
    }
    return mq_error(MQ_EINTERNAL, "%s: unknown op %d", ctx->name, (int)node->op);
}
