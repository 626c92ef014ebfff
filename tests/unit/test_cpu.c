/* tests/unit/test_cpu.c - every cpu backend path against the ref backend, every format,
 * random and adversarial data, with a stated error budget per format.
 *
 * Error budgets (max |y_cpu - y_ref| / (sum_k |w_k x_k| + 1e-30) per output, i.e. relative
 * to the size of the dot product's terms, which is what float rounding scales with):
 *   f32, f16:  1e-5  (F32 accumulation in another order than ref's double sums)
 *   bf16:      1e-5 widened; 1e-2 where activations are rounded to bf16 (AVX512-BF16
 *              dot products: one bf16 rounding of x, relative 2^-9, per term)
 *   q8_0, q4_0: 1e-5 (activation codes and block int32 sums are bit-identical to ref's;
 *              only the float accumulation of block results differs)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/dtype.h"
#include "core/status.h"
#include "model/eval.h"
#include "model/llama.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/tokenizer.h"
#include "tests/unit/test.h"

static const char *const isas[] = {"scalar", "avx2", "avx512", "avx512vnni"};

/* Opens the cpu backend on a forced path; NULL (and *skip) when the CPU lacks it. */
static struct be_backend *open_cpu(const char *isa, int threads, bool *skip)
{
    setenv("MIXQ_CPU_ISA", isa, 1);
    const struct be_ops *ops = be_registry_find("cpu");
    struct be_info info;
    ops->probe(&info);
    *skip = !info.usable;
    struct be_backend *be = NULL;
    if (info.usable && be_open("cpu", &(struct be_config){.n_threads = threads}, &be) < 0)
        be = NULL;
    unsetenv("MIXQ_CPU_ISA");
    return be;
}

enum fill_kind { FILL_RANDOM, FILL_ZERO_BLOCKS, FILL_HUGE, FILL_DENORMAL };

static void fill(float *x, int64_t n, unsigned long long seed, enum fill_kind kind)
{
    struct t_rng r = {seed};
    for (int64_t i = 0; i < n; i++) {
        float v = t_rng_float(&r);
        switch (kind) {
        case FILL_RANDOM: x[i] = v; break;
        case FILL_ZERO_BLOCKS: x[i] = (i / 32) % 3 == 1 ? 0.0f : v; break;
        case FILL_HUGE: x[i] = v * 6.0e4f; break;          /* near the f16 maximum */
        case FILL_DENORMAL: x[i] = v * 1.0e-39f; break;    /* f32 subnormals */
        }
    }
}

struct mm_case {
    int64_t K, N, M;
};

/* Runs W x on both backends and checks the budget; returns T_PASS or T_FAIL. */
static int check_matmul(struct be_backend *cpu, struct be_backend *ref, enum mq_dtype type,
                        struct mm_case c, enum fill_kind kind, const char *isa, double budget)
{
    const struct mq_dtype_traits *tr = mq_dtype_get(type);
    float *w = malloc((size_t)(c.K * c.N) * sizeof(float));
    float *wd = malloc((size_t)(c.K * c.N) * sizeof(float));
    float *x = malloc((size_t)(c.K * c.M) * sizeof(float));
    float *y1 = malloc((size_t)(c.N * c.M) * sizeof(float));
    float *y2 = malloc((size_t)(c.N * c.M) * sizeof(float));
    size_t row_bytes;
    T_CHECK(mq_dtype_row_bytes(type, c.K, &row_bytes) == MQ_OK);
    void *wq = malloc(row_bytes * (size_t)c.N);
    T_CHECK(w && wd && x && y1 && y2 && wq);
    fill(w, c.K * c.N, 11 + (unsigned)c.K, kind == FILL_HUGE ? FILL_RANDOM : kind);
    fill(x, c.K * c.M, 12 + (unsigned)c.N, kind);
    tr->from_f32(w, wq, c.K * c.N);
    tr->to_f32(wq, wd, c.K * c.N);
    struct be_backend *bes[2] = {cpu, ref};
    float *ys[2] = {y1, y2};
    for (int b = 0; b < 2; b++) {
        struct be_tensor tw, tx, ty;
        T_CHECK(be_upload(bes[b], &tw, type, 2, (int64_t[]){c.K, c.N}, wq, BE_USE_MATRIX) == MQ_OK);
        T_CHECK(be_alloc(bes[b], &tx, MQ_DTYPE_F32, 2, (int64_t[]){c.K, c.M}) == MQ_OK);
        T_CHECK(be_alloc(bes[b], &ty, MQ_DTYPE_F32, 2, (int64_t[]){c.N, c.M}) == MQ_OK);
        T_CHECK(be_write(bes[b], &tx, 0, x, (size_t)(c.K * c.M) * sizeof(float)) == MQ_OK);
        T_CHECK(be_run(bes[b], &(struct be_node){.op = BE_OP_MATMUL, .src = {&tw, &tx}, .dst = &ty}) == MQ_OK);
        T_CHECK(be_read(bes[b], &ty, 0, ys[b], (size_t)(c.N * c.M) * sizeof(float)) == MQ_OK);
        be_free(bes[b], &tw);
        be_free(bes[b], &tx);
        be_free(bes[b], &ty);
    }
    double worst = 0;
    for (int64_t m = 0; m < c.M; m++)
        for (int64_t n = 0; n < c.N; n++) {
            double mag = 0;
            for (int64_t k = 0; k < c.K; k++)
                mag += fabs((double)wd[n * c.K + k] * (double)x[m * c.K + k]);
            double err = fabs((double)y1[m * c.N + n] - (double)y2[m * c.N + n]) / (mag + 1e-30);
            if (!(err <= budget)) {
                fprintf(stderr, "    %s %s K=%lld N=%lld M=%lld fill %d: y[%lld][%lld] cpu %g ref %g (rel %g > %g)\n",
                        isa, tr->name, (long long)c.K, (long long)c.N, (long long)c.M, (int)kind, (long long)m,
                        (long long)n, (double)y1[m * c.N + n], (double)y2[m * c.N + n], err, budget);
                free(w); free(wd); free(x); free(y1); free(y2); free(wq);
                return T_FAIL;
            }
            worst = fmax(worst, err);
        }
    free(w); free(wd); free(x); free(y1); free(y2); free(wq);
    return T_PASS;
}

static double budget_for(enum mq_dtype t, const char *isa)
{
    if (t == MQ_DTYPE_BF16 && !strcmp(isa, "avx512vnni"))
        return 1e-2;
    return 1e-5;
}

static int test_matmul_paths(void)
{
    struct be_backend *ref;
    T_CHECK(be_open("ref", &(struct be_config){.n_threads = 2}, &ref) == MQ_OK);
    /* shapes: GEMV and GEMM; N not a multiple of 8 or 16; single row; single column; K
     * over several cache chunks of the avx512 kernels (1024 for integer formats, 256 for
     * f16), the last one partial */
    static const struct mm_case cases[] = {
        {64, 37, 1}, {96, 16, 3}, {256, 33, 9}, {32, 1, 5}, {128, 50, 17}, {160, 8, 1}, {64, 23, 64},
        {2144, 21, 10},
    };
    int tested = 0;
    for (size_t i = 0; i < sizeof(isas) / sizeof(isas[0]); i++) {
        bool skip;
        struct be_backend *cpu = open_cpu(isas[i], 1 + (int)(i % 2), &skip);
        if (skip) {
            fprintf(stderr, "    path %s: not supported by this CPU, skipped\n", isas[i]);
            continue;
        }
        T_CHECK(cpu);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            if (!mq_dtype_get((enum mq_dtype)t)->is_plan_format)
                continue;
            for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
                for (int kind = 0; kind <= FILL_DENORMAL; kind++) {
                    if (check_matmul(cpu, ref, (enum mq_dtype)t, cases[c], (enum fill_kind)kind, isas[i],
                                     budget_for((enum mq_dtype)t, isas[i])) != T_PASS)
                        return T_FAIL;
                }
        }
        tested++;
        be_close(cpu);
    }
    be_close(ref);
    T_CHECK(tested >= 1);
    return T_PASS;
}

/* The other ops of the forward pass, on every path, against ref. Shapes are odd on
 * purpose (not multiples of the vector width). Budget: 2e-6 relative (float sums in
 * another order, and the vectorized exp: relative error < 2e-7 per call). */
static int run_ops(struct be_backend *be, float *const in[4], float *out[5], int64_t D, int64_t H, int64_t Hkv,
                   int64_t M, int64_t pos0)
{
    int64_t E = D * H, KV = D * Hkv, T = pos0 + M;
    struct be_tensor x, g, q, k, v, y, a, rn, at, sw;
    T_CHECK(be_alloc(be, &x, MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &g, MQ_DTYPE_F32, 1, (int64_t[]){E}) == MQ_OK);
    T_CHECK(be_alloc(be, &k, MQ_DTYPE_F32, 2, (int64_t[]){KV, T}) == MQ_OK);
    T_CHECK(be_alloc(be, &v, MQ_DTYPE_F32, 2, (int64_t[]){KV, T}) == MQ_OK);
    T_CHECK(be_alloc(be, &y, MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &a, MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &rn, MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &at, MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &sw, MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
    T_CHECK(be_write(be, &x, 0, in[0], (size_t)(E * M) * 4) == MQ_OK);
    T_CHECK(be_write(be, &g, 0, in[1], (size_t)E * 4) == MQ_OK);
    T_CHECK(be_write(be, &k, 0, in[2], (size_t)(KV * T) * 4) == MQ_OK);
    T_CHECK(be_write(be, &v, 0, in[3], (size_t)(KV * T) * 4) == MQ_OK);
    T_CHECK(be_view_reshape(&x, 3, (int64_t[]){D, H, M}, &q) == MQ_OK);
    struct be_tensor y3;
    T_CHECK(be_view_reshape(&y, 3, (int64_t[]){D, H, M}, &y3) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_RMSNORM, .src = {&x, &g}, .dst = &rn, .p.rmsnorm.eps = 1e-5f}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ROPE, .src = {&q}, .dst = &y3,
                                         .p.rope = {.pos0 = pos0, .n_rot = (int)D - 2, .theta = 10000.0f, .freq_scale = 1.0f}}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ATTENTION, .src = {&y3, &k, &v}, .dst = &at,
                                         .p.attention = {.pos0 = pos0, .n_kv = T, .scale = 0.3f}}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_SWIGLU, .src = {&x, &rn}, .dst = &sw}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ADD, .src = {&x, &rn}, .dst = &a}) == MQ_OK);
    struct be_tensor *outs[5] = {&rn, &y, &at, &sw, &a};
    for (int i = 0; i < 5; i++)
        T_CHECK(be_read(be, outs[i], 0, out[i], (size_t)(E * M) * 4) == MQ_OK);
    struct be_tensor *all[] = {&x, &g, &k, &v, &y, &a, &rn, &at, &sw};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        be_free(be, all[i]);
    return T_PASS;
}

static int test_ops_paths(void)
{
    enum { D = 24, H = 6, HKV = 2, M = 5, POS0 = 37 };
    enum { E = D * H, KV = D * HKV, T = POS0 + M };
    static float x[E * M], g[E], k[KV * T], v[KV * T];
    static float ref_out[5][E * M], cpu_out[5][E * M];
    fill(x, E * M, 1, FILL_RANDOM);
    fill(g, E, 2, FILL_RANDOM);
    fill(k, KV * T, 3, FILL_RANDOM);
    fill(v, KV * T, 4, FILL_RANDOM);
    for (int i = 0; i < E * M; i += 7)
        x[i] *= 9.0f; /* a few large gate values for silu */
    float *in[4] = {x, g, k, v};
    float *ro[5] = {ref_out[0], ref_out[1], ref_out[2], ref_out[3], ref_out[4]};
    float *co[5] = {cpu_out[0], cpu_out[1], cpu_out[2], cpu_out[3], cpu_out[4]};
    static const char *const names[5] = {"rmsnorm", "rope", "attention", "swiglu", "add"};
    struct be_backend *ref;
    T_CHECK(be_open("ref", NULL, &ref) == MQ_OK);
    T_CHECK(run_ops(ref, in, ro, D, H, HKV, M, POS0) == T_PASS);
    be_close(ref);
    for (size_t i = 0; i < sizeof(isas) / sizeof(isas[0]); i++) {
        bool skip;
        struct be_backend *cpu = open_cpu(isas[i], 2, &skip);
        if (skip)
            continue;
        T_CHECK(cpu);
        T_CHECK(run_ops(cpu, in, co, D, H, HKV, M, POS0) == T_PASS);
        for (int op = 0; op < 5; op++)
            for (int j = 0; j < E * M; j++) {
                double d = fabs((double)co[op][j] - (double)ro[op][j]);
                T_CHECK_MSG(d <= 2e-6 * (1.0 + fabs((double)ro[op][j])), "%s %s[%d]: cpu %g ref %g", isas[i],
                            names[op], j, (double)co[op][j], (double)ro[op][j]);
            }
        be_close(cpu);
    }
    return T_PASS;
}

/* Embedding lookups read rows back out of the packed layouts exactly. */
static int test_get_rows_paths(void)
{
    enum { K = 96, V = 37, M = 6 };
    static float w[K * V], y[M * K], want[K];
    static char wq[K * V * 4];
    int32_t ids[M] = {0, 36, 15, 16, 17, 31};
    fill(w, K * V, 5, FILL_RANDOM);
    for (size_t i = 0; i < sizeof(isas) / sizeof(isas[0]); i++) {
        bool skip;
        struct be_backend *be = open_cpu(isas[i], 1, &skip);
        if (skip)
            continue;
        T_CHECK(be);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
            if (!tr->is_plan_format)
                continue;
            tr->from_f32(w, wq, K * V);
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
                T_CHECK_MSG(memcmp(want, y + m * K, sizeof(want)) == 0, "%s %s row %d", isas[i], tr->name, ids[m]);
            }
            be_free(be, &tw);
            be_free(be, &ti);
            be_free(be, &ty);
        }
        be_close(be);
    }
    return T_PASS;
}

/* NaN and Inf in activations: defined behaviour (cpu.h). The columns that hold them give
 * non-finite outputs on every path and format; the other columns are unaffected. */
static int test_nonfinite_paths(void)
{
    enum { K = 64, N = 19, M = 3 };
    static float w[K * N], x[K * M], y[N * M], y_clean[N * M];
    static char wq[K * N * 4];
    fill(w, K * N, 7, FILL_RANDOM);
    for (size_t i = 0; i < sizeof(isas) / sizeof(isas[0]); i++) {
        bool skip;
        struct be_backend *be = open_cpu(isas[i], 2, &skip);
        if (skip)
            continue;
        T_CHECK(be);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
            if (!tr->is_plan_format)
                continue;
            tr->from_f32(w, wq, K * N);
            struct be_tensor tw, tx, ty;
            T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, N}, wq, BE_USE_MATRIX) == MQ_OK);
            T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
            T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M}) == MQ_OK);
            for (int pass = 0; pass < 2; pass++) {
                fill(x, K * M, 8, FILL_RANDOM);
                if (pass) {
                    x[5] = NAN;          /* column 0 */
                    x[2 * K + 40] = INFINITY; /* column 2 */
                }
                T_CHECK(be_write(be, &tx, 0, x, sizeof(x)) == MQ_OK);
                T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {&tw, &tx}, .dst = &ty}) == MQ_OK);
                T_CHECK(be_read(be, &ty, 0, pass ? y : y_clean, sizeof(y)) == MQ_OK);
            }
            for (int n = 0; n < N; n++) {
                T_CHECK_MSG(!isfinite(y[0 * N + n]) && !isfinite(y[2 * N + n]), "%s %s row %d", isas[i], tr->name, n);
                T_CHECK(y[1 * N + n] == y_clean[1 * N + n]);
            }
            be_free(be, &tw);
            be_free(be, &tx);
            be_free(be, &ty);
        }
        be_close(be);
    }
    return T_PASS;
}

/* The forward pass on every path and format gives the ref backend's perplexity on the
 * bundled model (2 chunks), within 1e-5 relative for float formats, 2e-3 for integer
 * formats and for bf16 with bf16-rounded activations. */
static int test_forward_paths(void)
{
    struct mq_model *m;
    T_CHECK(mq_model_load("examples/tinyllm/tinyllm.gguf", &m) == MQ_OK);
    FILE *f = fopen("examples/data/kjv-eval.txt", "rb");
    T_CHECK(f);
    static char text[4096];
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    int32_t *toks;
    size_t n_toks;
    T_CHECK(mq_vocab_tokenize(m->vocab, text, len, true, &toks, &n_toks) == MQ_OK);
    double ref_ppl[MQ_DTYPE_COUNT] = {0};
    for (int pass = -1; pass < (int)(sizeof(isas) / sizeof(isas[0])); pass++) {
        bool skip = false;
        struct be_backend *be = NULL;
        if (pass < 0)
            T_CHECK(be_open("ref", NULL, &be) == MQ_OK);
        else
            be = open_cpu(isas[pass], 2, &skip);
        if (skip)
            continue;
        T_CHECK(be);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            if (!mq_dtype_get((enum mq_dtype)t)->is_plan_format)
                continue;
            struct mq_plan *p;
            struct mq_eval *ev;
            T_CHECK(mq_plan_uniform(m, (enum mq_dtype)t, &p) == MQ_OK);
            T_CHECK(mq_eval_new(m, be, toks, n_toks, &(struct mq_eval_config){.n_ctx = 256, .max_chunks = 2}, &ev) == MQ_OK);
            struct mq_eval_result r;
            T_CHECK(mq_eval_plan(ev, p, NULL, &r) == MQ_OK);
            mq_eval_free(ev);
            if (pass < 0) {
                ref_ppl[t] = r.ppl;
            } else {
                /* integer formats: activation codes are re-quantized at every layer, so
                 * float-rounding differences upstream flip a few codes: 2e-3 */
                double tol = mq_dtype_get((enum mq_dtype)t)->is_quantized ? 2e-3
                             : t == MQ_DTYPE_BF16 && !strcmp(isas[pass], "avx512vnni") ? 2e-3 : 1e-5;
                fprintf(stderr, "    %-10s %-5s ppl %.6f (ref %.6f)\n", isas[pass], mq_dtype_name((enum mq_dtype)t), r.ppl, ref_ppl[t]);
                T_CHECK_MSG(fabs(r.ppl / ref_ppl[t] - 1.0) < tol, "%s %s: ppl %.6f vs ref %.6f", isas[pass],
                            mq_dtype_name((enum mq_dtype)t), r.ppl, ref_ppl[t]);
            }
            mq_plan_free(p);
        }
        be_close(be);
    }
    free(toks);
    mq_model_free(m);
    return T_PASS;
}

const struct mq_test cpu_tests[] = {
    {"cpu/get_rows_paths", test_get_rows_paths},
    {"cpu/nonfinite_paths", test_nonfinite_paths},
    {"cpu/forward_paths_vs_ref", test_forward_paths},
    {"cpu/matmul_paths_vs_ref", test_matmul_paths},
    {"cpu/ops_paths_vs_ref", test_ops_paths},
    {NULL, NULL},
};
