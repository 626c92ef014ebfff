/* tests/unit/test_backend.c - the dispatcher's checks and the ref backend's ops against
 * independent formulas (the ref backend is the oracle; these tests are its oracle). */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/ref/ref.h"
#include "core/dtype.h"
#include "core/status.h"
#include "tests/unit/test.h"

static struct be_backend *open_ref(int threads)
{
    struct be_backend *be = NULL;
    if (be_open("ref", &(struct be_config){.n_threads = threads}, &be) < 0)
        return NULL;
    return be;
}

static void fill(float *x, int64_t n, unsigned long long seed, float scale)
{
    struct t_rng r = {seed};
    for (int64_t i = 0; i < n; i++)
        x[i] = t_rng_float(&r) * scale;
}

static int test_registry(void)
{
    T_CHECK(be_registry_count() >= 1);
    T_CHECK(be_registry_find("ref") == &be_ref_ops);
    T_CHECK(be_registry_find("nope") == NULL);
    struct be_backend *be = NULL;
    T_CHECK(be_open("nope", NULL, &be) == MQ_ENOTFOUND && be == NULL);
    for (int i = 0; i < be_registry_count(); i++) {
        const struct be_ops *ops = be_registry_get(i);
        T_CHECK(ops->abi == BE_ABI_VERSION && ops->name && ops->probe && ops->open && ops->close &&
                ops->supports && ops->upload && ops->run);
        struct be_info info;
        ops->probe(&info);
        T_CHECK(info.usable || info.reason[0]);
    }
    be_close(NULL);
    return T_PASS;
}

/* Y = W X for every format, against a double computation from the dequantized weights
 * (and, for block formats, the activations quantized to the format's act_type blocks,
 * Q8_0 or Q8_K, and dequantized: the format's math). The other backends are tested against
 * ref in test_backend_ops.c; this is ref's own check. */
static int test_matmul_all_formats(void)
{
    enum { K = 256, N = 7, M = 5 }; /* K: one block of every format */
    static float w[N * K], x[M * K], xd[M * K], wd[N * K], y[N * M];
    static char wq[N * K * 4], xq[M * K * 2];
    fill(w, N * K, 1, 1.0f);
    fill(x, M * K, 2, 3.0f);
    for (int threads = 1; threads <= 3; threads += 2) {
        struct be_backend *be = open_ref(threads);
        T_CHECK(be);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
            if (!tr->is_plan_format)
                continue;
            tr->from_f32(w, wq, N * K);
            tr->to_f32(wq, wd, N * K);
            memcpy(xd, x, sizeof(x));
            if (tr->is_quantized) {
                const struct mq_dtype_traits *act = mq_dtype_get(tr->act_type);
                act->from_f32(x, xq, M * K);
                act->to_f32(xq, xd, M * K);
            }
            struct be_tensor tw, tx, ty;
            T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, N}, wq, BE_USE_MATRIX) == MQ_OK);
            T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
            T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M}) == MQ_OK);
            T_CHECK(be_write(be, &tx, 0, x, sizeof(x)) == MQ_OK);
            T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {&tw, &tx}, .dst = &ty}) == MQ_OK);
            T_CHECK(be_read(be, &ty, 0, y, sizeof(y)) == MQ_OK);
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double want = 0;
                    for (int k = 0; k < K; k++)
                        want += (double)wd[n * K + k] * (double)xd[m * K + k];
                    T_CHECK_MSG(fabs(y[m * N + n] - want) <= 1e-6 * (1 + fabs(want)), "%s: y[%d][%d] %g want %g",
                                tr->name, m, n, (double)y[m * N + n], want);
                }
            be_free(be, &tw);
            be_free(be, &tx);
            be_free(be, &ty);
            T_CHECK(tw.data == NULL);
        }
        be_close(be);
    }
    return T_PASS;
}

static int test_get_rows(void)
{
    enum { K = 256, V = 9, M = 4 }; /* K: one block of every format */
    static float w[V * K], y[M * K], want[K];
    static char wq[V * K * 4];
    fill(w, V * K, 3, 2.0f);
    int32_t ids[M] = {8, 0, 3, 3};
    struct be_backend *be = open_ref(1);
    T_CHECK(be);
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
        if (!tr->is_plan_format)
            continue;
        tr->from_f32(w, wq, V * K);
        struct be_tensor tw, ti, ty;
        T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, V}, wq, BE_USE_MATRIX) == MQ_OK);
        T_CHECK(be_alloc(be, &ti, MQ_DTYPE_I32, 1, (int64_t[]){M}) == MQ_OK);
        T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
        T_CHECK(be_write(be, &ti, 0, ids, sizeof(ids)) == MQ_OK);
        T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_GET_ROWS, .src = {&tw, &ti}, .dst = &ty}) == MQ_OK);
        T_CHECK(be_read(be, &ty, 0, y, sizeof(y)) == MQ_OK);
        size_t rb = tw.nbytes / V;
        for (int m = 0; m < M; m++) {
            tr->to_f32(wq + (size_t)ids[m] * rb, want, K);
            T_CHECK(memcmp(want, y + m * K, sizeof(want)) == 0);
        }
        /* an id outside the table is an error, not a read out of bounds */
        int32_t bad = V;
        T_CHECK(be_write(be, &ti, 0, &bad, sizeof(bad)) == MQ_OK);
        T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_GET_ROWS, .src = {&tw, &ti}, .dst = &ty}) == MQ_ERANGE);
        be_free(be, &tw);
        be_free(be, &ti);
        be_free(be, &ty);
    }
    be_close(be);
    return T_PASS;
}

/* Runs a one-op node on host-memory tensors of the ref backend. */
static int run_op(struct be_backend *be, struct be_node *node)
{
    return be_run(be, node);
}

static int test_rmsnorm_swiglu_add(void)
{
    enum { K = 40, M = 3 };
    float x[K * M], g[K], y[K * M], u[K * M];
    fill(x, K * M, 4, 5.0f);
    fill(g, K, 5, 1.0f);
    fill(u, K * M, 6, 1.0f);
    struct be_backend *be = open_ref(2);
    T_CHECK(be);
    struct be_tensor tx = {.type = MQ_DTYPE_F32, .ne = {K, M, 1, 1}, .nbytes = sizeof(x), .data = x, .is_view = true};
    struct be_tensor tg = {.type = MQ_DTYPE_F32, .ne = {K, 1, 1, 1}, .nbytes = sizeof(g), .data = g, .is_view = true};
    struct be_tensor ty = {.type = MQ_DTYPE_F32, .ne = {K, M, 1, 1}, .nbytes = sizeof(y), .data = y, .is_view = true};
    struct be_tensor tu = {.type = MQ_DTYPE_F32, .ne = {K, M, 1, 1}, .nbytes = sizeof(u), .data = u, .is_view = true};
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_RMSNORM, .src = {&tx, &tg}, .dst = &ty, .p.rmsnorm.eps = 1e-5f}) == MQ_OK);
    for (int m = 0; m < M; m++) {
        double ss = 0;
        for (int k = 0; k < K; k++)
            ss += (double)x[m * K + k] * x[m * K + k];
        double s = 1.0 / sqrt(ss / K + 1e-5);
        for (int k = 0; k < K; k++)
            T_CHECK(fabs(y[m * K + k] - x[m * K + k] * s * g[k]) < 1e-5);
    }
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_SWIGLU, .src = {&tx, &tu}, .dst = &ty}) == MQ_OK);
    for (int i = 0; i < K * M; i++)
        T_CHECK(fabs(y[i] - x[i] / (1 + exp(-x[i])) * u[i]) < 1e-5);
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ADD, .src = {&tx, &tu}, .dst = &ty}) == MQ_OK);
    for (int i = 0; i < K * M; i++)
        T_CHECK(y[i] == x[i] + u[i]);
    /* shape mismatch is refused before the backend runs */
    struct be_tensor bad = tu;
    bad.ne[0] = K / 2;
    bad.ne[1] = M * 2;
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ADD, .src = {&tx, &bad}, .dst = &ty}) == MQ_EINVAL);
    be_close(be);
    return T_PASS;
}

/* GELU with tanh, in double: what ggml's table approximates (f16 input and output) */
static double gelu_d(double x)
{
    return 0.5 * x * (1.0 + tanh(0.79788456080286535587989211986876 * x * (1.0 + 0.044715 * x * x)));
}

/* The ops of the other architectures (qwen2 bias ADD, SCALE, GEGLU, SOFTCAP) against
 * formulas in double. GEGLU is ggml's CPU GELU: input and result rounded to f16, so
 * |y - gelu(x) u| <= 2^-11 (|gelu| + 1.13 |x|) |u| (gelu' < 1.13) plus f16 subnormal
 * steps: budget 1.5e-3 |x| |u| + 1e-7. SOFTCAP: F32 tanhf of an F32 quotient, 1e-6
 * relative to 1 + |y|. ADD and SCALE: one F32 rounding, exact. */
static int test_arch_elementwise(void)
{
    enum { K = 40, M = 3 };
    float x[K * M], u[K * M], bias[K], y[K * M];
    fill(x, K * M, 11, 12.0f); /* past +-10: ggml's GELU has no table there */
    fill(u, K * M, 12, 2.0f);
    fill(bias, K, 13, 1.0f);
    x[0] = -10.0f;
    x[1] = 10.0f;
    x[2] = 1e-6f; /* an f16 subnormal */
    x[3] = -9.99f;
    struct be_backend *be = open_ref(1);
    T_CHECK(be);
    struct be_tensor tx = {.type = MQ_DTYPE_F32, .n_dims = 2, .ne = {K, M, 1, 1}, .nbytes = sizeof(x), .data = x, .is_view = true};
    struct be_tensor tu = tx, ty = tx, tb = tx;
    tu.data = u;
    ty.data = y;
    tb.n_dims = 1;
    tb.ne[1] = 1;
    tb.nbytes = sizeof(bias);
    tb.data = bias;
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_GEGLU, .src = {&tx, &tu}, .dst = &ty}) == MQ_OK);
    for (int i = 0; i < K * M; i++) {
        double want = x[i] <= -10.0f ? 0.0 : gelu_d(x[i]) * u[i];
        T_CHECK_MSG(fabs(y[i] - want) <= 1.5e-3 * fabs(x[i]) * fabs(u[i]) + 1e-7, "geglu x %g u %g: %g want %g",
                    (double)x[i], (double)u[i], (double)y[i], want);
    }
    T_CHECK(y[0] == 0.0f && y[1] == 10.0f * u[1]);
    /* both a 1-d bias and a [K, 1] one go to every column; same-shape ADD still works */
    for (int nd = 1; nd <= 2; nd++) {
        tb.n_dims = nd;
        T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ADD, .src = {&tx, &tb}, .dst = &ty}) == MQ_OK);
        for (int i = 0; i < K * M; i++)
            T_CHECK(y[i] == x[i] + bias[i % K]);
    }
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ADD, .src = {&tx, &tu}, .dst = &ty}) == MQ_OK);
    for (int i = 0; i < K * M; i++)
        T_CHECK(y[i] == x[i] + u[i]);
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_SCALE, .src = {&tx}, .dst = &ty, .p.scale.s = -0.37f}) == MQ_OK);
    for (int i = 0; i < K * M; i++)
        T_CHECK(y[i] == x[i] * -0.37f);
    float cap = 5.0f;
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_SOFTCAP, .src = {&tx}, .dst = &ty, .p.softcap.cap = cap}) == MQ_OK);
    for (int i = 0; i < K * M; i++) {
        double want = cap * tanh((double)x[i] / cap);
        T_CHECK_MSG(fabs(y[i] - want) <= 1e-6 * (1.0 + fabs(want)), "softcap %g: %g want %g", (double)x[i],
                    (double)y[i], want);
        T_CHECK(fabs(y[i]) <= cap);
    }
    /* in place (dst aliases src0) */
    memcpy(y, x, sizeof(x));
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ADD, .src = {&ty, &tb}, .dst = &ty}) == MQ_OK);
    for (int i = 0; i < K * M; i++)
        T_CHECK(y[i] == x[i] + bias[i % K]);
    /* refused before the backend runs: a bias of another length, a [K, 2] "bias", a cap
     * of 0, GEGLU of unequal shapes */
    fprintf(stderr, "    (error lines about shape checks follow)\n");
    struct be_tensor bad = tb;
    bad.ne[0] = K / 2;
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ADD, .src = {&tx, &bad}, .dst = &ty}) == MQ_EINVAL);
    bad = tu;
    bad.ne[1] = 2;
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ADD, .src = {&tx, &bad}, .dst = &ty}) == MQ_EINVAL);
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_GEGLU, .src = {&tx, &bad}, .dst = &ty}) == MQ_EINVAL);
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_GEGLU, .src = {&tx, &tb}, .dst = &ty}) == MQ_EINVAL);
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_SOFTCAP, .src = {&tx}, .dst = &ty}) == MQ_EINVAL);
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_SOFTCAP, .src = {&tx}, .dst = &ty, .p.softcap.cap = -1.0f}) == MQ_EINVAL);
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_SCALE, .src = {&tx}, .dst = &tb, .p.scale.s = 1.0f}) == MQ_EINVAL);
    T_CHECK(strcmp(be_op_name(BE_OP_GEGLU), "geglu") == 0 && strcmp(be_op_name(BE_OP_SCALE), "scale") == 0 &&
            strcmp(be_op_name(BE_OP_SOFTCAP), "softcap") == 0);
    be_close(be);
    return T_PASS;
}

/* RMSNORM per head (qwen3, gemma3 q/k norm): a [D*H, M] activation seen as [D, H*M] or
 * [D, H, M], one weight [D] for every head; into another view and in place. */
static int test_rmsnorm_heads(void)
{
    enum { D = 12, H = 5, M = 3 };
    float x[D * H * M], g[D], y[D * H * M], want[D * H * M];
    fill(x, D * H * M, 14, 3.0f);
    fill(g, D, 15, 1.0f);
    for (int r = 0; r < H * M; r++) {
        double ss = 0;
        for (int d = 0; d < D; d++)
            ss += (double)x[r * D + d] * x[r * D + d];
        double s = 1.0 / sqrt(ss / D + 1e-6);
        for (int d = 0; d < D; d++)
            want[r * D + d] = (float)(x[r * D + d] * s * g[d]);
    }
    struct be_backend *be = open_ref(2);
    T_CHECK(be);
    struct be_tensor tx, tg, ty, vx, vy;
    T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){D * H, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){D * H, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &tg, MQ_DTYPE_F32, 1, (int64_t[]){D}) == MQ_OK);
    T_CHECK(be_write(be, &tg, 0, g, sizeof(g)) == MQ_OK);
    for (int shape = 0; shape < 2; shape++) {
        const int64_t *ne = shape ? (const int64_t[]){D, H, M} : (const int64_t[]){D, H * M};
        T_CHECK(be_write(be, &tx, 0, x, sizeof(x)) == MQ_OK);
        T_CHECK(be_view_reshape(&tx, 2 + shape, ne, &vx) == MQ_OK);
        T_CHECK(be_view_reshape(&ty, 2 + shape, ne, &vy) == MQ_OK);
        struct be_node n = {.op = BE_OP_RMSNORM, .src = {&vx, &tg}, .dst = &vy, .p.rmsnorm.eps = 1e-6f};
        T_CHECK(be_run(be, &n) == MQ_OK);
        T_CHECK(be_read(be, &ty, 0, y, sizeof(y)) == MQ_OK);
        for (int i = 0; i < D * H * M; i++)
            T_CHECK_MSG(fabs(y[i] - want[i]) <= 1e-6 * (1 + fabs(want[i])), "shape %d [%d]", shape, i);
        /* dst the unreshaped activation: the same rows, so accepted */
        n.dst = &ty;
        T_CHECK(be_run(be, &n) == MQ_OK);
        /* in place */
        n.dst = &vx;
        T_CHECK(be_run(be, &n) == MQ_OK);
        T_CHECK(be_read(be, &tx, 0, y, sizeof(y)) == MQ_OK);
        for (int i = 0; i < D * H * M; i++)
            T_CHECK(fabs(y[i] - want[i]) <= 1e-6 * (1 + fabs(want[i])));
    }
    /* the weight must match the rows: [D*H] against [D, H*M] is refused */
    struct be_tensor gw;
    T_CHECK(be_alloc(be, &gw, MQ_DTYPE_F32, 1, (int64_t[]){D * H}) == MQ_OK);
    T_CHECK(be_view_reshape(&tx, 2, (int64_t[]){D, H * M}, &vx) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_RMSNORM, .src = {&vx, &gw}, .dst = &vx, .p.rmsnorm.eps = 1e-6f}) == MQ_EINVAL);
    be_free(be, &gw);
    be_free(be, &tx);
    be_free(be, &ty);
    be_free(be, &tg);
    be_close(be);
    return T_PASS;
}

static int test_rope(void)
{
    enum { D = 16, H = 3, M = 4 };
    float x[D * H * M], y[D * H * M];
    fill(x, D * H * M, 7, 1.0f);
    struct be_backend *be = open_ref(1);
    T_CHECK(be);
    struct be_tensor tx = {.type = MQ_DTYPE_F32, .ne = {D, H, M, 1}, .nbytes = sizeof(x), .data = x, .is_view = true};
    struct be_tensor ty = tx;
    ty.data = y;
    for (int mode = 0; mode <= 2; mode += 2) {
        int n_rot = 12; /* fewer than D: the tail passes through */
        T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ROPE, .src = {&tx}, .dst = &ty,
                                             .p.rope = {.pos0 = 5, .n_rot = n_rot, .mode = (enum be_rope_mode)mode,
                                                        .theta = 10000.0f, .freq_scale = 0.5f}}) == MQ_OK);
        for (int m = 0; m < M; m++)
            for (int h = 0; h < H; h++) {
                const float *xs = x + (m * H + h) * D;
                const float *ys = y + (m * H + h) * D;
                for (int i = 0; i < n_rot / 2; i++) {
                    double ang = (5 + m) * 0.5 * pow(10000.0, -2.0 * i / n_rot);
                    int a = mode ? i : 2 * i, b = mode ? i + n_rot / 2 : 2 * i + 1;
                    T_CHECK(fabs(ys[a] - (xs[a] * cos(ang) - xs[b] * sin(ang))) < 1e-5);
                    T_CHECK(fabs(ys[b] - (xs[a] * sin(ang) + xs[b] * cos(ang))) < 1e-5);
                }
                for (int d = n_rot; d < D; d++)
                    T_CHECK(ys[d] == xs[d]);
            }
    }
    /* frequency factors (llama 3.1's rope_freqs, phi3's LongRoPE): pair i's angle divided by
     * ff[i], and the rotated values times attn_factor; a factor vector of another length is
     * refused */
    float ff[6] = {1.0f, 1.5f, 2.0f, 4.0f, 8.0f, 8.0f};
    struct be_tensor tf = {.type = MQ_DTYPE_F32, .ne = {6, 1, 1, 1}, .nbytes = sizeof(ff), .data = ff, .is_view = true};
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ROPE, .src = {&tx, &tf}, .dst = &ty,
                                         .p.rope = {.pos0 = 5, .n_rot = 12, .theta = 10000.0f, .freq_scale = 0.5f,
                                                    .attn_factor = 1.25f}}) == MQ_OK);
    for (int m = 0; m < M; m++)
        for (int h = 0; h < H; h++) {
            const float *xs = x + (m * H + h) * D, *ys = y + (m * H + h) * D;
            for (int i = 0; i < 6; i++) {
                double ang = (5 + m) * 0.5 * pow(10000.0, -2.0 * i / 12) / ff[i];
                T_CHECK(fabs(ys[2 * i] - 1.25 * (xs[2 * i] * cos(ang) - xs[2 * i + 1] * sin(ang))) < 1e-5);
                T_CHECK(fabs(ys[2 * i + 1] - 1.25 * (xs[2 * i] * sin(ang) + xs[2 * i + 1] * cos(ang))) < 1e-5);
            }
            for (int d = 12; d < D; d++)
                T_CHECK(ys[d] == xs[d]); /* the tail is not scaled */
        }
    tf.ne[0] = 5;
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ROPE, .src = {&tx, &tf}, .dst = &ty,
                                         .p.rope = {.pos0 = 5, .n_rot = 12, .theta = 10000.0f, .freq_scale = 0.5f}}) ==
            MQ_EINVAL);
    /* position 0 is the identity; in place works */
    memcpy(y, x, sizeof(x));
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ROPE, .src = {&ty}, .dst = &ty,
                                         .p.rope = {.pos0 = 0, .n_rot = D, .theta = 10000.0f, .freq_scale = 1.0f}}) == MQ_OK);
    for (int i = 0; i < D * H; i++)
        T_CHECK(y[i] == x[i]);
    be_close(be);
    return T_PASS;
}

/* Attention against a direct computation, with grouped-query heads whose V rows differ
 * per kv head so that a wrong head mapping shows. */
static int test_attention(void)
{
    enum { D = 8, H = 4, HKV = 2, T = 6, M = 3, POS0 = 2 };
    float q[D * H * M], k[D * HKV * T], v[D * HKV * T], out[D * H * M];
    fill(q, D * H * M, 8, 1.0f);
    fill(k, D * HKV * T, 9, 1.0f);
    fill(v, D * HKV * T, 10, 1.0f);
    struct be_backend *be = open_ref(2);
    T_CHECK(be);
    struct be_tensor tq = {.type = MQ_DTYPE_F32, .ne = {D, H, M, 1}, .nbytes = sizeof(q), .data = q, .is_view = true};
    struct be_tensor tk = {.type = MQ_DTYPE_F32, .ne = {D * HKV, T, 1, 1}, .nbytes = sizeof(k), .data = k, .is_view = true};
    struct be_tensor tv = tk;
    tv.data = v;
    struct be_tensor to = {.type = MQ_DTYPE_F32, .ne = {D * H, M, 1, 1}, .nbytes = sizeof(out), .data = out, .is_view = true};
    float scale = 0.35f;
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ATTENTION, .src = {&tq, &tk, &tv}, .dst = &to,
                                         .p.attention = {.pos0 = POS0, .n_kv = POS0 + M, .scale = scale}}) == MQ_OK);
    for (int m = 0; m < M; m++)
        for (int h = 0; h < H; h++) {
            int g = h / (H / HKV);
            double s[T], mx = -1e300, sum = 0;
            for (int p = 0; p <= POS0 + m; p++) {
                s[p] = 0;
                for (int d = 0; d < D; d++)
                    s[p] += (double)q[(m * H + h) * D + d] * k[p * D * HKV + g * D + d];
                s[p] *= scale;
                mx = fmax(mx, s[p]);
            }
            for (int p = 0; p <= POS0 + m; p++)
                sum += (s[p] = exp(s[p] - mx));
            for (int d = 0; d < D; d++) {
                double o = 0;
                for (int p = 0; p <= POS0 + m; p++)
                    o += s[p] / sum * v[p * D * HKV + g * D + d];
                T_CHECK_MSG(fabs(out[m * D * H + h * D + d] - o) < 1e-6, "m %d h %d d %d", m, h, d);
            }
        }
    /* sliding window (p - k < window) and logit soft-capping, against the same direct
     * computation; a window of all positions is plain causal attention */
    static const struct {
        int64_t window;
        float softcap;
    } variants[] = {{1, 0.0f}, {2, 0.0f}, {3, 0.0f}, {100, 0.0f}, {0, 0.8f}, {2, 0.8f}};
    float out0[D * H * M];
    memcpy(out0, out, sizeof(out));
    for (size_t vi = 0; vi < sizeof(variants) / sizeof(variants[0]); vi++) {
        int64_t window = variants[vi].window;
        double cap = variants[vi].softcap;
        T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ATTENTION, .src = {&tq, &tk, &tv}, .dst = &to,
                                             .p.attention = {.pos0 = POS0, .n_kv = POS0 + M, .scale = scale,
                                                             .softcap = variants[vi].softcap, .window = window}}) == MQ_OK);
        if (window >= POS0 + M && cap == 0)
            T_CHECK(memcmp(out, out0, sizeof(out)) == 0);
        for (int m = 0; m < M; m++)
            for (int h = 0; h < H; h++) {
                int g = h / (H / HKV), pos = POS0 + m;
                double s[T], mx = -1e300, sum = 0;
                int first = 0;
                while (window > 0 && pos - first >= window)
                    first++;
                for (int p = first; p <= pos; p++) {
                    s[p] = 0;
                    for (int d = 0; d < D; d++)
                        s[p] += (double)q[(m * H + h) * D + d] * k[p * D * HKV + g * D + d];
                    s[p] *= scale;
                    if (cap > 0)
                        s[p] = cap * tanh(s[p] / cap);
                    mx = fmax(mx, s[p]);
                }
                for (int p = first; p <= pos; p++)
                    sum += (s[p] = exp(s[p] - mx));
                for (int d = 0; d < D; d++) {
                    double o = 0;
                    for (int p = first; p <= pos; p++)
                        o += s[p] / sum * v[p * D * HKV + g * D + d];
                    T_CHECK_MSG(fabs(out[m * D * H + h * D + d] - o) < 1e-6, "window %lld softcap %g m %d h %d d %d",
                                (long long)window, cap, m, h, d);
                }
            }
    }
    /* a window of 1: each query sees only its own position's V */
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ATTENTION, .src = {&tq, &tk, &tv}, .dst = &to,
                                         .p.attention = {.pos0 = POS0, .n_kv = POS0 + M, .scale = scale, .window = 1}}) == MQ_OK);
    for (int m = 0; m < M; m++)
        for (int h = 0; h < H; h++)
            for (int d = 0; d < D; d++)
                T_CHECK(out[m * D * H + h * D + d] == v[(POS0 + m) * D * HKV + (h / (H / HKV)) * D + d]);
    fprintf(stderr, "    (error lines about shape checks follow)\n");
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ATTENTION, .src = {&tq, &tk, &tv}, .dst = &to,
                                         .p.attention = {.pos0 = POS0, .n_kv = POS0 + M, .scale = scale, .window = -1}}) == MQ_EINVAL);
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ATTENTION, .src = {&tq, &tk, &tv}, .dst = &to,
                                         .p.attention = {.pos0 = POS0, .n_kv = POS0 + M, .scale = scale, .softcap = -2.0f}}) == MQ_EINVAL);
    /* a query past n_kv is refused */
    T_CHECK(run_op(be, &(struct be_node){.op = BE_OP_ATTENTION, .src = {&tq, &tk, &tv}, .dst = &to,
                                         .p.attention = {.pos0 = POS0, .n_kv = POS0 + M - 1, .scale = scale}}) == MQ_EINVAL);
    be_close(be);
    return T_PASS;
}

static int test_views(void)
{
    struct be_backend *be = open_ref(1);
    T_CHECK(be);
    struct be_tensor t, v;
    T_CHECK(be_alloc(be, &t, MQ_DTYPE_F32, 2, (int64_t[]){10, 6}) == MQ_OK);
    T_CHECK(be_view_rows(&t, 2, 3, &v) == MQ_OK);
    T_CHECK(v.ne[1] == 3 && v.nbytes == 120 && (char *)v.data == (char *)t.data + 80 && v.is_view);
    T_CHECK(be_view_rows(&t, 4, 3, &v) == MQ_EINVAL);
    T_CHECK(be_view_reshape(&t, 3, (int64_t[]){5, 2, 6}, &v) == MQ_OK && v.ne[2] == 6);
    T_CHECK(be_view_reshape(&t, 2, (int64_t[]){7, 9}, &v) == MQ_EINVAL);
    char buf[8];
    T_CHECK(be_write(be, &t, 236, buf, 8) == MQ_EINVAL);
    T_CHECK(be_read(be, &t, 240, buf, 1) == MQ_EINVAL);
    be_free(be, &v); /* a view frees nothing */
    be_free(be, &t);
    /* rows run along the declared outermost dimension even when it has size 1 (a batch
     * of one token is [K, 1], not K rows of one element) */
    T_CHECK(be_alloc(be, &t, MQ_DTYPE_F32, 2, (int64_t[]){10, 1}) == MQ_OK);
    T_CHECK(be_view_rows(&t, 0, 1, &v) == MQ_OK && v.ne[0] == 10 && v.ne[1] == 1 && v.nbytes == 40);
    T_CHECK(be_view_rows(&t, 0, 2, &v) == MQ_EINVAL);
    be_free(be, &t);
    struct be_tensor q;
    T_CHECK(be_alloc(be, &q, MQ_DTYPE_Q4_0, 2, (int64_t[]){33, 2}) == MQ_EINVAL);
    T_CHECK(be_alloc(be, &q, MQ_DTYPE_F32, 2, (int64_t[]){0, 2}) == MQ_EINVAL);
    be_close(be);
    return T_PASS;
}

/* Y = W X with W [K, N] from `src` and X filled from a seed; y receives N floats. */
static int matmul_once(struct be_backend *be, const struct be_tensor *w, int64_t K, int64_t N, float *y)
{
    struct be_tensor x = {0}, t = {0};
    float xs[1024];
    fill(xs, K, 11, 1.0f);
    int rc = be_alloc(be, &x, MQ_DTYPE_F32, 2, (int64_t[]){K, 1});
    if (rc == MQ_OK && (rc = be_alloc(be, &t, MQ_DTYPE_F32, 2, (int64_t[]){N, 1})) == MQ_OK &&
        (rc = be_write(be, &x, 0, xs, (size_t)K * 4)) == MQ_OK &&
        (rc = be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {(struct be_tensor *)w, &x}, .dst = &t})) ==
            MQ_OK)
        rc = be_read(be, &t, 0, y, (size_t)N * 4);
    be_free(be, &x);
    be_free(be, &t);
    return rc;
}

/* be_lend: weights in a read-only file mapping. ref borrows a 1 MiB matrix; cpu repacks it
 * (matrices are borrowed only on its scalar path) and releases its source pages; a small
 * vector is copied by both (BE_BORROW_MIN_BYTES) and its pages released; the results
 * equal uploads of a heap copy; borrowed tensors refuse writes; outside a lent range, and
 * after be_unlend, uploads copy. */
static int test_lend(void)
{
    enum { K = 1024, N = 256 };
    _Static_assert((size_t)K * N * 4 >= BE_BORROW_MIN_BYTES, "the matrix is large enough to borrow");
    long page = sysconf(_SC_PAGESIZE);
    T_CHECK(page > 0 && page <= 65536);
    size_t off = (size_t)page, wbytes = (size_t)K * N * 4, size = off + wbytes + (size_t)K * 4;
    char path[4200];
    snprintf(path, sizeof(path), "%s/lend.bin", t_tmpdir());
    float *heap = malloc(wbytes + (size_t)K * 4);
    T_CHECK(heap);
    fill(heap, (int64_t)K * N + K, 5, 0.5f);
    FILE *f = fopen(path, "wb");
    T_CHECK(f);
    char zero[65536] = {0};
    T_CHECK(fwrite(zero, 1, off, f) == off && fwrite(heap, 1, wbytes + (size_t)K * 4, f) == wbytes + (size_t)K * 4);
    T_CHECK(fclose(f) == 0);
    int fd = open(path, O_RDONLY);
    T_CHECK(fd >= 0);
    char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    T_CHECK(map != MAP_FAILED);
    const float *wsrc = (const float *)(const void *)(map + off), *vsrc = wsrc + (size_t)K * N;
    const char *names[] = {"ref", "cpu"};
    for (int b = 0; b < 2; b++) {
        struct be_backend *be = NULL;
        if (be_open(names[b], &(struct be_config){.n_threads = 2}, &be) < 0)
            continue; /* the cpu backend may be unusable here; ref always opens */
        struct be_tensor wc = {0}, wl = {0}, vl = {0};
        float yc[N], yl[N];
        T_CHECK(be_upload(be, &wc, MQ_DTYPE_F32, 2, (int64_t[]){K, N}, heap, BE_USE_MATRIX) == MQ_OK);
        T_CHECK(!wc.borrowed && be->released_bytes == 0);
        T_CHECK(be_lend(be, map, size) == MQ_OK && be_lend(be, map, size) == MQ_OK);
        T_CHECK(be_upload(be, &wl, MQ_DTYPE_F32, 2, (int64_t[]){K, N}, wsrc, BE_USE_MATRIX) == MQ_OK);
        T_CHECK(be_upload(be, &vl, MQ_DTYPE_F32, 1, (int64_t[]){K}, vsrc, BE_USE_VECTOR) == MQ_OK);
        T_CHECK_MSG(!vl.borrowed, "%s: a small vector is copied", names[b]);
        bool repacks = b == 1 && !wl.borrowed;
        if (b == 0)
            T_CHECK(wl.borrowed && wl.data == wsrc && be->borrowed_bytes == wbytes);
        /* the copied sources' whole pages: all of them (both start on a page) */
        size_t vpages = (size_t)K * 4 / (size_t)page * (size_t)page;
        T_CHECK_MSG(be->released_bytes == (repacks ? wbytes : 0) + vpages, "%s: released %llu", names[b],
                    (unsigned long long)be->released_bytes);
        T_CHECK(matmul_once(be, &wc, K, N, yc) == MQ_OK && matmul_once(be, &wl, K, N, yl) == MQ_OK);
        T_CHECK_MSG(memcmp(yc, yl, sizeof(yc)) == 0, "%s: borrowed/released weights give other results", names[b]);
        T_CHECK(be_write(be, &wl, 0, zero, 4) == (wl.borrowed ? MQ_EINVAL : MQ_OK));
        be_free(be, &wl);
        be_free(be, &vl);
        T_CHECK(vsrc[0] == heap[(size_t)K * N]); /* the mapping is intact */
        be_unlend(be, map);
        T_CHECK(be_upload(be, &vl, MQ_DTYPE_F32, 1, (int64_t[]){K}, vsrc, BE_USE_VECTOR) == MQ_OK && !vl.borrowed);
        be_free(be, &vl);
        be_free(be, &wc);
        be_close(be);
    }
    munmap(map, size);
    free(heap);
    return T_PASS;
}

const struct mq_test backend_tests[] = {
    {"backend/registry", test_registry},
    {"backend/ref_matmul_all_formats", test_matmul_all_formats},
    {"backend/ref_get_rows", test_get_rows},
    {"backend/ref_rmsnorm_swiglu_add", test_rmsnorm_swiglu_add},
    {"backend/ref_arch_elementwise", test_arch_elementwise},
    {"backend/ref_rmsnorm_heads", test_rmsnorm_heads},
    {"backend/ref_rope", test_rope},
    {"backend/ref_attention", test_attention},
    {"backend/views", test_views},
    {"backend/lend", test_lend},
    {NULL, NULL},
};
