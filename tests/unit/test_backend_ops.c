/* tests/unit/test_backend_ops.c - every registered backend, on every path it has, against
 * the ref backend (the oracle): every plan format, the ops that read weights (MATMUL and
 * GET_ROWS), with a named error budget per format.
 *
 * Targets: each backend of the registry but ref, once per path, the path forced the way
 * the backend reads it (cpu: MIXQ_CPU_ISA scalar/avx2/avx512/avx512vnni/avx512amx; neon:
 * MIXQ_NEON_PATH fallback/fp16/dotprod/dotprod+fp16; others, cuda included: their own
 * choice). A target whose probe refuses (a path the CPU lacks, no GPU, neon on x86) is
 * skipped with the probe's reason; one that probes usable but does not open fails.
 *
 * MATMUL: every plan format (core/dtype.h) on GEMV shapes (M = 1..4) and GEMM shapes
 * (M >= 8); N not a multiple of 8 or 16, a single row, N = 130 by M = 100 (over 64-row
 * tiles); K of 1 to 8 blocks and of 67 blocks (over two chunks of 32 blocks of the avx512
 * drivers, the last one partial: K = 2144 for 32-blocks, 17152 for 256-blocks);
 * activations that are a view from column 1; float formats also on K that is no multiple
 * of 8. Weights from the format's quantizer (random
 * values, and values with zero blocks) and, for block formats, t_random_blocks (random
 * bytes, so that every code and packed sub-scale occurs); activations random, with zero
 * blocks, huge (near the f16 maximum), f32 subnormals, and mixed magnitudes 1e-30..1e30.
 *
 * The error of an output is |y - y_ref| / (sum_k |w_k x_k| + 1e-30), with w the weights
 * as to_f32 gives them and x the F32 activations: relative to the size of the dot
 * product's terms, which is what rounding scales with. Formats with an offset (q4_1,
 * q5_1: w = d*q + m; q2_k, q4_k, q5_k: w = d*sc*q - dmin*mn) count |w_k| + |offset_k|
 * instead of |w_k|: kernels sum the scaled codes and the offsets apart, each rounded to
 * its own size, and where the two cancel |w| understates what was rounded (with |w| alone,
 * q4_k reached 5.8e-6 on mixed-magnitude activations whose largest element met a weight
 * near 0; with the offset, 2.3e-7). Where ref gives NaN or Inf (an activation scale beyond
 * f16 with mixed magnitudes), the target must too.
 *
 * Budgets per format (max error per output):
 *   f32, f16, bf16   1e-5  weights widened exactly to F32, products summed in F32 (in
 *                          partial sums, in another order) where ref sums in double
 *   q8_0 q4_0 q4_1   1e-5  activation codes (Q8_0) bit-identical to ref's and integer
 *   q5_0 q5_1 iq4_nl       block sums exact; only the F32 sum of the K/32 block terms
 *                          (for q4_1/q5_1 two per block: d*dx*sum(q*x), m*dx*sum(x))
 *                          differs from ref's double
 *   q2_k .. q6_k     1e-5  activation codes (Q8_K) bit-identical to ref's, sub-block sums
 *   iq4_xs                 and their scale products exact in int32; the F32 sum of the
 *                          K/256 super-block terms (scale term and min term) differs
 * (measured on the cpu paths, exceptions aside: at most 4e-7; the budgets leave room for
 * other summation orders, not for a wrong term: a dropped block, an f16-rounded sum or a
 * misplaced bit costs 1e-4 and more)
 * Named exceptions (a path that rounds more, by design):
 *   cpu/avx512vnni bf16        8e-3  AVX512-BF16 dot products round activations to bf16
 *   (and cpu/avx512amx)
 *                                    (8 significant bits): 2^-8 relative per term, twice
 *                                    that bound (mixed magnitudes reach 3.3e-3)
 *   neon fp16 paths f16        4e-3  FP16 arithmetic: x rounded to f16 (2^-11), up to 16
 *                                    FP16 FMAs per chunk before the F32 sum; each chunk of
 *                                    16 activations is scaled by its largest, so f16's
 *                                    range is relative to that element: the error is
 *                                    measured against sum over chunks of sum|w| x max|x|
 *                                    (with mixed magnitudes a 1e30 activation meeting a zero
 *                                    weight flushes its chunk's 1e-30 ones, by design)
 *   cuda, every format         2e-5  F32 sums in the kernels' own (warp) order
 *   cuda f16, M > 8 columns    1e-3  cuBLAS GEMM on f16 inputs: activations rounded to
 *                                    f16 once (2^-11 relative): twice that bound
 * GET_ROWS: exact (a row lookup is to_f32 of the row, bit for bit; NaN and Inf weights of
 * float formats copied); an id outside the table is MQ_ERANGE, from be_run or (device
 * backends) from the next be_sync.
 *
 * A target that does not support a plan format (be_supports false) fails the test: every
 * backend must run every plan format. Each test prints, per format, the worst error per
 * target (or "unsup" / "FAIL"), so one run shows the state of every kernel.
 *
 * Size: all shapes natively (about 7 s of CPU on 4 x86 paths); under AddressSanitizer,
 * qemu (be_neon_emulated) or with MIXQ_TEST_QUICK=1 a reduced set of 4 + 2 shapes, K over
 * one chunk (33 blocks) instead of two: every path, format, weight source and fill still
 * runs.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/neon/neon.h"
#include "core/dtype.h"
#include "core/status.h"
#include "tests/unit/test.h"

/* ---- budgets ---- */

struct budget {
    double rel;
    const char *why;
    bool chunked; /* relative to sum over chunks of 16 of sum|w| * max|x| (FP16 arithmetic) */
};

static const struct budget budgets[MQ_DTYPE_COUNT] = {
    [MQ_DTYPE_F32] = {1e-5, "F32 accumulation where ref sums in double"},
    [MQ_DTYPE_F16] = {1e-5, "weights widened exactly; F32 accumulation"},
    [MQ_DTYPE_BF16] = {1e-5, "weights widened exactly; F32 accumulation"},
    [MQ_DTYPE_Q8_0] = {1e-5, "exact Q8_0 codes and int32 block sums; F32 sum of block terms"},
    [MQ_DTYPE_Q4_0] = {1e-5, "exact Q8_0 codes and int32 block sums; F32 sum of block terms"},
    [MQ_DTYPE_Q4_1] = {1e-5, "exact Q8_0 codes and sums; F32 sum of scale and min terms"},
    [MQ_DTYPE_Q5_0] = {1e-5, "exact Q8_0 codes and int32 block sums; F32 sum of block terms"},
    [MQ_DTYPE_Q5_1] = {1e-5, "exact Q8_0 codes and sums; F32 sum of scale and min terms"},
    [MQ_DTYPE_IQ4_NL] = {1e-5, "exact Q8_0 codes and int32 block sums; F32 sum of block terms"},
    [MQ_DTYPE_Q2_K] = {1e-5,
                       "exact Q8_K codes and int32 sub-block sums; F32 sum of super-block terms"},
    [MQ_DTYPE_Q3_K] = {1e-5,
                       "exact Q8_K codes and int32 sub-block sums; F32 sum of super-block terms"},
    [MQ_DTYPE_Q4_K] = {1e-5,
                       "exact Q8_K codes and int32 sub-block sums; F32 sum of super-block terms"},
    [MQ_DTYPE_Q5_K] = {1e-5,
                       "exact Q8_K codes and int32 sub-block sums; F32 sum of super-block terms"},
    [MQ_DTYPE_Q6_K] = {1e-5,
                       "exact Q8_K codes and int32 sub-block sums; F32 sum of super-block terms"},
    [MQ_DTYPE_IQ4_XS] = {1e-5,
                         "exact Q8_K codes and int32 sub-block sums; F32 sum of super-block terms"},
};

/* Targets whose arithmetic rounds more than the format's budget assumes, by design.
 * type MQ_DTYPE_COUNT: every format; min_cols: from that many activation columns on. */
static const struct budget_exception {
    const char *target;
    enum mq_dtype type;
    int64_t min_cols;
    struct budget b;
} exceptions[] = {
    {"cpu/avx512vnni", MQ_DTYPE_BF16, 1, {8e-3, "activations rounded to bf16 (2^-8 relative)", false}},
    {"cpu/avx512amx", MQ_DTYPE_BF16, 1, {8e-3, "activations rounded to bf16 (2^-8 relative)", false}},
    {"neon/fp16", MQ_DTYPE_F16, 1, {4e-3, "FP16 arithmetic (x rounded to f16, FP16 FMAs)", true}},
    {"neon/dotprod+fp16", MQ_DTYPE_F16, 1, {4e-3, "FP16 arithmetic (x rounded to f16, FP16 FMAs)", true}},
    {"cuda", MQ_DTYPE_F16, 9, {1e-3, "cuBLAS GEMM on f16 inputs (x rounded to f16 once)", false}},
    {"cuda", MQ_DTYPE_COUNT, 1, {2e-5, "F32 sums in the kernels' warp order", false}},
};

static struct budget budget_of(const char *target, enum mq_dtype type, int64_t M)
{
    for (size_t i = 0; i < sizeof(exceptions) / sizeof(exceptions[0]); i++) {
        const struct budget_exception *e = &exceptions[i];
        if (!strcmp(e->target, target) && (e->type == type || e->type == MQ_DTYPE_COUNT) &&
            M >= e->min_cols)
            return e->b;
    }
    return budgets[type];
}

/* ---- targets: every registered backend on every path ---- */

#define MAX_TARGETS 16

struct target {
    char name[48]; /* "cpu/avx2"; a backend without forced paths: its name */
    struct be_backend *be;
};

/* How a backend's paths are forced: the variable its probe and open read, and the paths. */
static const struct path_set {
    const char *backend;
    const char *env;
    const char *paths[5];
} path_sets[] = {
    {"cpu", "MIXQ_CPU_ISA", {"scalar", "avx2", "avx512", "avx512vnni", "avx512amx"}},
    {"neon", "MIXQ_NEON_PATH", {"fallback", "fp16", "dotprod", "dotprod+fp16"}},
};

static const struct path_set *path_set_of(const char *backend)
{
    for (size_t i = 0; i < sizeof(path_sets) / sizeof(path_sets[0]); i++)
        if (!strcmp(path_sets[i].backend, backend))
            return &path_sets[i];
    return NULL;
}

/* Probes and opens one backend with env=path (env NULL: as it is), restoring the variable.
 * Returns the backend, or NULL with *usable false and the probe's reason in why. */
static struct be_backend *open_on_path(const struct be_ops *ops, const char *env, const char *path,
                                       int threads, bool *usable, char *why, size_t size)
{
    char *saved = NULL;
    if (env) {
        const char *old = getenv(env);
        saved = old ? strdup(old) : NULL;
        setenv(env, path, 1);
    }
    struct be_info info;
    ops->probe(&info);
    *usable = info.usable;
    snprintf(why, size, "%s", info.usable ? info.detail : info.reason);
    struct be_backend *be = NULL;
    if (info.usable && be_open(ops->name, &(struct be_config){.n_threads = threads}, &be) < 0)
        be = NULL;
    if (env) {
        if (saved)
            setenv(env, saved, 1);
        else
            unsetenv(env);
        free(saved);
    }
    return be;
}

/* Opens every target; *n_broken counts those that probe usable but do not open. */
static int open_targets(struct target tg[MAX_TARGETS], int *n_broken)
{
    int n = 0;
    *n_broken = 0;
    for (int i = 0; i < be_registry_count(); i++) {
        const struct be_ops *ops = be_registry_get(i);
        if (!strcmp(ops->name, "ref"))
            continue; /* the oracle */
        const struct path_set *ps = path_set_of(ops->name);
        int n_paths = ps ? (int)(sizeof(ps->paths) / sizeof(ps->paths[0])) : 1;
        for (int p = 0; p < n_paths && (!ps || ps->paths[p]); p++) {
            char name[48], why[256];
            if (ps)
                snprintf(name, sizeof(name), "%s/%s", ops->name, ps->paths[p]);
            else
                snprintf(name, sizeof(name), "%s", ops->name);
            bool usable;
            struct be_backend *be = open_on_path(ops, ps ? ps->env : NULL, ps ? ps->paths[p] : NULL,
                                                 1 + n % 2, &usable, why, sizeof(why));
            if (!usable) {
                fprintf(stderr, "    %-18s skipped: %s\n", name, why);
                continue;
            }
            if (!be) {
                fprintf(stderr, "    %-18s FAIL: probes usable (%s) but does not open\n", name,
                        why);
                ++*n_broken;
                continue;
            }
            MQ_ASSERT(n < MAX_TARGETS);
            snprintf(tg[n].name, sizeof(tg[n].name), "%s", name);
            tg[n++].be = be;
        }
    }
    return n;
}

static void close_targets(struct target *tg, int n)
{
    for (int i = 0; i < n; i++)
        be_close(tg[i].be);
}

/* Fewer shapes where every instruction is slow: sanitizers, emulation, or when asked. */
static bool reduced_run(char *why, size_t size)
{
    char em[256];
    const char *quick = getenv("MIXQ_TEST_QUICK");
    if (T_UNDER_ASAN)
        snprintf(why, size, "AddressSanitizer build");
    else if (be_neon_emulated(em, sizeof(em)))
        snprintf(why, size, "emulated (%s)", em);
    else if (quick && atoi(quick))
        snprintf(why, size, "MIXQ_TEST_QUICK=%s", quick);
    else
        return false;
    return true;
}

/* ---- per target and format: what happened ---- */

struct tally {
    long cases;       /* outputs compared */
    double worst;     /* largest error seen */
    bool failed;      /* a case over budget or an op error (the first one is printed) */
    bool unsupported; /* be_supports said no */
};

static bool tally_ok(const struct tally *t)
{
    return !t->failed && !t->unsupported;
}

/* One line per format: its budget, then each target's worst error (or unsup / FAIL). */
static void print_table(const char *op, const struct target *tg, int n_tg,
                        struct tally tally[][MQ_DTYPE_COUNT], bool errors)
{
    fprintf(stderr, "    %-7s %-7s", op, errors ? "budget" : "");
    for (int i = 0; i < n_tg; i++)
        fprintf(stderr, " %-*s", (int)(strlen(tg[i].name) > 9 ? strlen(tg[i].name) : 9),
                tg[i].name);
    fputc('\n', stderr);
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (!mq_dtype_get((enum mq_dtype)t)->is_plan_format)
            continue;
        fprintf(stderr, "    %-7s ", mq_dtype_name((enum mq_dtype)t));
        if (errors)
            fprintf(stderr, "%-7.0e", budgets[t].rel);
        else
            fprintf(stderr, "%-7s", "");
        for (int i = 0; i < n_tg; i++) {
            const struct tally *c = &tally[i][t];
            int w = (int)(strlen(tg[i].name) > 9 ? strlen(tg[i].name) : 9);
            char cell[32];
            if (c->unsupported)
                snprintf(cell, sizeof(cell), "unsup");
            else if (c->failed)
                snprintf(cell, sizeof(cell), "FAIL");
            else if (errors)
                snprintf(cell, sizeof(cell), "%.1e", c->worst);
            else
                snprintf(cell, sizeof(cell), "ok");
            fprintf(stderr, " %-*s", w, cell);
        }
        fputc('\n', stderr);
    }
}

/* Counts failed and unsupported (target, format) pairs and prints the totals. */
static int summarize(const char *op, const struct target *tg, int n_tg,
                     struct tally tally[][MQ_DTYPE_COUNT])
{
    int n_fail = 0, n_unsup = 0, n_ok = 0;
    long cases = 0;
    for (int i = 0; i < n_tg; i++)
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            if (!mq_dtype_get((enum mq_dtype)t)->is_plan_format)
                continue;
            n_fail += tally[i][t].failed;
            n_unsup += tally[i][t].unsupported;
            n_ok += tally_ok(&tally[i][t]);
            cases += tally[i][t].cases;
        }
    fprintf(stderr,
            "    %s: %d targets, %ld outputs compared; target x format: %d ok, %d failed, %d "
            "unsupported\n",
            op, n_tg, cases, n_ok, n_fail, n_unsup);
    if (n_unsup) {
        fprintf(stderr, "    unsupported (every backend must run every plan format):");
        for (int i = 0; i < n_tg; i++)
            for (int t = 0; t < MQ_DTYPE_COUNT; t++)
                if (mq_dtype_get((enum mq_dtype)t)->is_plan_format && tally[i][t].unsupported)
                    fprintf(stderr, " %s:%s", tg[i].name, mq_dtype_name((enum mq_dtype)t));
        fputc('\n', stderr);
    }
    return n_fail + n_unsup;
}

/* ---- test data ---- */

enum fill_kind { FILL_RANDOM, FILL_ZERO_BLOCKS, FILL_HUGE, FILL_DENORMAL, FILL_MIXED, FILL_COUNT };
static const char *const fill_names[FILL_COUNT] = {"random", "zero-blocks", "huge", "denormal",
                                                   "mixed"};

static void fill(float *x, int64_t n, unsigned long long seed, enum fill_kind kind)
{
    struct t_rng r = {seed};
    for (int64_t i = 0; i < n; i++) {
        float v = t_rng_float(&r);
        switch (kind) {
        case FILL_RANDOM: x[i] = v; break;
        case FILL_ZERO_BLOCKS: x[i] = (i / 32) % 3 == 1 ? 0.0f : v; break;
        case FILL_HUGE: x[i] = v * 6.0e4f; break;       /* near the f16 maximum */
        case FILL_DENORMAL: x[i] = v * 1.0e-39f; break; /* f32 subnormals */
        case FILL_MIXED: /* magnitudes from 1e-30 to 1e30 side by side */
            x[i] = v * powf(10.0f, (float)((int)(t_rng_next(&r) % 61) - 30));
            break;
        case FILL_COUNT: break;
        }
    }
}

/* Where weights come from: the format's quantizer (on random values, or on values with
 * zero blocks), or random bytes with sane scales (block formats: every bit pattern). */
enum w_source { W_QUANT, W_QUANT_ZEROS, W_BITS, W_COUNT };
static const char *const w_names[W_COUNT] = {"quantized", "quantized-zero-blocks", "random-bits"};

/* n_rows rows of K weights of `type` from `src` into wq (ggml layout), and as floats into
 * wd (to_f32). Float formats have no W_BITS (random bytes would be NaN). */
static void make_weights(enum mq_dtype type, enum w_source src, int64_t K, int64_t n_rows,
                         unsigned long long seed, void *wq, float *wd)
{
    const struct mq_dtype_traits *tr = mq_dtype_get(type);
    if (src == W_BITS) {
        MQ_ASSERT(tr->is_quantized);
        t_random_blocks(type, K, n_rows, seed, wq);
    } else {
        float *w = malloc((size_t)(K * n_rows) * sizeof(float));
        MQ_ASSERT(w);
        fill(w, K * n_rows, seed, src == W_QUANT_ZEROS ? FILL_ZERO_BLOCKS : FILL_RANDOM);
        tr->quantize(w, wq, n_rows, K, NULL);
        free(w);
    }
    if (wd)
        tr->to_f32(wq, wd, K * n_rows);
}

/* Formats whose weight is a scaled code plus an offset, w = d*q + m (q4_1, q5_1) or
 * d*sc*q - dmin*mn (q2_k, q4_k, q5_k): kernels sum the two parts apart (ggml's vec_dot
 * does), each rounded to its own size, and where they cancel (w near 0 from two large
 * parts) |w| understates what rounds. For these the magnitude of a term is
 * (|w| + |offset|) * |x|. The offset of each weight is to_f32 of its block with the code
 * bytes zeroed (these byte ranges). */
static const struct code_bytes {
    enum mq_dtype type;
    size_t at[2], len[2];
} code_bytes[] = {
    {MQ_DTYPE_Q4_1,
     {offsetof(struct mq_block_q4_1, qs)},
     {sizeof(((struct mq_block_q4_1 *)0)->qs)}},
    {MQ_DTYPE_Q5_1,
     {offsetof(struct mq_block_q5_1, qh), offsetof(struct mq_block_q5_1, qs)},
     {sizeof(((struct mq_block_q5_1 *)0)->qh), sizeof(((struct mq_block_q5_1 *)0)->qs)}},
    {MQ_DTYPE_Q2_K,
     {offsetof(struct mq_block_q2_k, qs)},
     {sizeof(((struct mq_block_q2_k *)0)->qs)}},
    {MQ_DTYPE_Q4_K,
     {offsetof(struct mq_block_q4_k, qs)},
     {sizeof(((struct mq_block_q4_k *)0)->qs)}},
    {MQ_DTYPE_Q5_K,
     {offsetof(struct mq_block_q5_k, qh), offsetof(struct mq_block_q5_k, qs)},
     {sizeof(((struct mq_block_q5_k *)0)->qh), sizeof(((struct mq_block_q5_k *)0)->qs)}},
};

/* The offset part of n_rows rows of K weights (see code_bytes) into off; false (off
 * untouched) for formats without one. */
static bool weight_offsets(enum mq_dtype type, const void *wq, int64_t K, int64_t n_rows,
                           float *off)
{
    const struct mq_dtype_traits *tr = mq_dtype_get(type);
    for (size_t i = 0; i < sizeof(code_bytes) / sizeof(code_bytes[0]); i++) {
        const struct code_bytes *cb = &code_bytes[i];
        if (cb->type != type)
            continue;
        int64_t n_blocks = K / tr->block_elems * n_rows;
        unsigned char *tmp = malloc((size_t)n_blocks * tr->block_bytes);
        MQ_ASSERT(tmp);
        memcpy(tmp, wq, (size_t)n_blocks * tr->block_bytes);
        for (int64_t b = 0; b < n_blocks; b++)
            for (int r = 0; r < 2; r++)
                memset(tmp + (size_t)b * tr->block_bytes + cb->at[r], 0, cb->len[r]);
        tr->to_f32(tmp, off, K * n_rows);
        free(tmp);
        return true;
    }
    return false;
}

/* ---- MATMUL ---- */

/* K in blocks of the format's activations (32, or 256 for Q8_K formats); float formats
 * use 32. col0: the activations are a view starting at this column. */
struct mm_shape {
    int64_t kb, N, M, col0;
};

static const struct mm_shape shapes_full[] = {
    {2, 37, 1, 0},  {3, 16, 2, 0},    {8, 33, 3, 1}, {1, 1, 4, 0},   /* GEMV */
    {5, 8, 1, 0},   {4, 50, 8, 0},    {8, 33, 9, 0}, {2, 23, 17, 1}, /* GEMM from 8 columns */
    {1, 70, 64, 0}, {1, 130, 100, 0},                                /* N and M over 64-row tiles */
    {67, 21, 3, 0}, {67, 19, 10, 0}, /* K over two 32-block chunks and a partial one */
};
static const struct mm_shape shapes_reduced[] = {
    {2, 37, 1, 0}, {8, 33, 3, 1}, {4, 50, 9, 0}, {33, 9, 10, 0}, /* K over one chunk */
};
/* float formats take any K (kb is K itself here): tails of the vector loops, odd bf16
 * pairs */
static const struct mm_shape float_shapes[] = {
    {37, 9, 3, 1}, {1, 5, 2, 0}, {17, 8, 1, 0}, {33, 11, 5, 0}, {250, 3, 4, 0}, {45, 70, 12, 0},
};

/* y [N][M] = W x on one backend, x holding col0 + M columns of which the last M are used.
 * tw is uploaded. Returns the status of the first call that failed. */
static int run_matmul(struct be_backend *be, struct be_tensor *tw, const float *x, int64_t K,
                      int64_t N, int64_t M, int64_t col0, float *y)
{
    struct be_tensor tx = {0}, xv, ty = {0};
    int rc = be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, col0 + M});
    if (rc == MQ_OK)
        rc = be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M});
    if (rc == MQ_OK)
        rc = be_write(be, &tx, 0, x, (size_t)(K * (col0 + M)) * sizeof(float));
    if (rc == MQ_OK)
        rc = be_view_rows(&tx, col0, M, &xv);
    if (rc == MQ_OK)
        rc = be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {tw, &xv}, .dst = &ty});
    if (rc == MQ_OK)
        rc = be_read(be, &ty, 0, y, (size_t)(N * M) * sizeof(float));
    be_free(be, &tx);
    be_free(be, &ty);
    return rc;
}

struct mm_case {
    enum mq_dtype type;
    int64_t K, N, M, col0;
    enum w_source src;
    enum fill_kind fill;
};

static void print_case(const char *target, const struct mm_case *c)
{
    fprintf(stderr, "    %s %s K=%lld N=%lld M=%lld col0=%lld weights %s, activations %s", target,
            mq_dtype_name(c->type), (long long)c->K, (long long)c->N, (long long)c->M,
            (long long)c->col0, w_names[c->src], fill_names[c->fill]);
}

/* Compares one target's y with ref's; prints the first failure of this target and format. */
static void compare(const char *target, const struct mm_case *c, const float *y, const float *yr,
                    const double *mag_elem, const double *mag_chunk, struct tally *tl)
{
    struct budget b = budget_of(target, c->type, c->M);
    const double *mag = b.chunked ? mag_chunk : mag_elem;
    for (int64_t i = 0; i < c->N * c->M; i++) {
        double err = 0.0;
        bool ok;
        if (!isfinite(yr[i]) || !isfinite(y[i])) {
            ok = !isfinite(yr[i]) && !isfinite(y[i]);
        } else {
            err = fabs((double)y[i] - (double)yr[i]) / (mag[i] + 1e-30);
            ok = err <= b.rel;
        }
        tl->cases++;
        if (ok) {
            tl->worst = fmax(tl->worst, err);
            continue;
        }
        if (!tl->failed) {
            print_case(target, c);
            fprintf(stderr, ": y[m=%lld][n=%lld] %g, ref %g (error %.3g > %.0e: %s)\n",
                    (long long)(i / c->N), (long long)(i % c->N), (double)y[i], (double)yr[i], err,
                    b.rel, b.why);
        }
        tl->failed = true;
        return;
    }
}

/* One (format, shape, weights) case over every fill on ref and every target. */
static int matmul_case(struct be_backend *ref, const struct target *tg, int n_tg,
                       struct tally tally[][MQ_DTYPE_COUNT], enum mq_dtype type, struct mm_shape s,
                       int64_t K, enum w_source src, unsigned long long seed)
{
    int64_t N = s.N, M = s.M, cols = s.col0 + M;
    size_t row_bytes;
    T_CHECK(mq_dtype_row_bytes(type, K, &row_bytes) == MQ_OK);
    void *wq = malloc(row_bytes * (size_t)N);
    float *wd = malloc((size_t)(K * N) * sizeof(float));
    float *x = malloc((size_t)(K * cols) * sizeof(float));
    float *yr = malloc((size_t)(N * M) * sizeof(float));
    float *y = malloc((size_t)(N * M) * sizeof(float));
    double *mag = malloc((size_t)(N * M) * sizeof(double)), *magc = malloc((size_t)(N * M) * sizeof(double));
    float *wmag = malloc((size_t)(K * N) * sizeof(float));
    struct be_tensor *tw = calloc((size_t)n_tg, sizeof(*tw));
    struct be_tensor twr = {0};
    int rc = T_FAIL;
    if (!wq || !wd || !x || !yr || !y || !mag || !magc || !wmag || !tw)
        goto done;
    make_weights(type, src, K, N, seed, wq, wd);
    /* the size of each weight as the kernels round it: |w|, + |offset| (see code_bytes) */
    if (weight_offsets(type, wq, K, N, wmag))
        for (int64_t i = 0; i < K * N; i++)
            wmag[i] = fabsf(wd[i]) + fabsf(wmag[i]);
    else
        for (int64_t i = 0; i < K * N; i++)
            wmag[i] = fabsf(wd[i]);
    if (be_upload(ref, &twr, type, 2, (int64_t[]){K, N}, wq, BE_USE_MATRIX) != MQ_OK)
        goto done;
    for (int i = 0; i < n_tg; i++) {
        struct tally *tl = &tally[i][type];
        if (tl->unsupported || tl->failed)
            continue;
        if (!be_supports(tg[i].be, BE_OP_MATMUL, type)) {
            tl->unsupported = true;
            continue;
        }
        if (be_upload(tg[i].be, &tw[i], type, 2, (int64_t[]){K, N}, wq, BE_USE_MATRIX) != MQ_OK) {
            fprintf(stderr, "    %s %s K=%lld N=%lld: upload failed\n", tg[i].name,
                    mq_dtype_name(type), (long long)K, (long long)N);
            tl->failed = true;
        }
    }
    for (int f = 0; f < FILL_COUNT; f++) {
        struct mm_case c = {type, K, N, M, s.col0, src, (enum fill_kind)f};
        fill(x, K * cols, seed * 31 + (unsigned)f, (enum fill_kind)f);
        if (run_matmul(ref, &twr, x, K, N, M, s.col0, yr) != MQ_OK) {
            print_case("ref", &c);
            fprintf(stderr, ": the oracle failed\n");
            goto done;
        }
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                const float *xm = x + (s.col0 + m) * K, *wn = wmag + n * K;
                double sum = 0.0, sumc = 0.0;
                for (int64_t k = 0; k < K; k++)
                    sum += (double)wn[k] * fabs((double)xm[k]);
                for (int64_t k0 = 0; k0 < K; k0 += 16) { /* the FP16 paths' chunks of 16 */
                    double w = 0.0, xmax = 0.0;
                    for (int64_t k = k0; k < K && k < k0 + 16; k++) {
                        w += (double)wn[k];
                        xmax = fmax(xmax, fabs((double)xm[k]));
                    }
                    sumc += w * xmax;
                }
                mag[m * N + n] = sum;
                magc[m * N + n] = sumc;
            }
        for (int i = 0; i < n_tg; i++) {
            struct tally *tl = &tally[i][type];
            if (tl->unsupported || tl->failed)
                continue;
            int err = run_matmul(tg[i].be, &tw[i], x, K, N, M, s.col0, y);
            if (err != MQ_OK) {
                print_case(tg[i].name, &c);
                fprintf(stderr, ": matmul failed (%s)\n", mq_strerror(err));
                tl->failed = true;
                continue;
            }
            compare(tg[i].name, &c, y, yr, mag, magc, tl);
        }
    }
    rc = T_PASS;
done:
    for (int i = 0; tw && i < n_tg; i++)
        if (tw[i].data)
            be_free(tg[i].be, &tw[i]);
    be_free(ref, &twr);
    free(wq);
    free(wd);
    free(x);
    free(yr);
    free(y);
    free(mag);
    free(magc);
    free(wmag);
    free(tw);
    return rc;
}

static int test_matmul(void)
{
    char why[300];
    bool reduced = reduced_run(why, sizeof(why));
    fprintf(stderr, "    shapes: %s%s\n", reduced ? "a reduced set: " : "all", reduced ? why : "");
    struct target tg[MAX_TARGETS];
    int n_broken;
    int n_tg = open_targets(tg, &n_broken);
    struct be_backend *ref;
    T_CHECK(be_open("ref", &(struct be_config){.n_threads = 2}, &ref) == MQ_OK);
    static struct tally tally[MAX_TARGETS][MQ_DTYPE_COUNT];
    memset(tally, 0, sizeof(tally));
    const struct mm_shape *shapes = reduced ? shapes_reduced : shapes_full;
    size_t n_shapes = reduced ? sizeof(shapes_reduced) / sizeof(shapes_reduced[0])
                              : sizeof(shapes_full) / sizeof(shapes_full[0]);
    size_t n_float = reduced ? 2 : sizeof(float_shapes) / sizeof(float_shapes[0]);
    int rc = T_PASS;
    for (int t = 0; t < MQ_DTYPE_COUNT && rc == T_PASS; t++) {
        enum mq_dtype type = (enum mq_dtype)t;
        const struct mq_dtype_traits *tr = mq_dtype_get(type);
        if (!tr->is_plan_format)
            continue;
        int64_t qk = tr->act_type == MQ_DTYPE_Q8_K ? MQ_QK_K : 32;
        size_t n_all = n_shapes + (tr->is_quantized ? 0 : n_float);
        for (size_t i = 0; i < n_all && rc == T_PASS; i++) {
            struct mm_shape s = i < n_shapes ? shapes[i] : float_shapes[i - n_shapes];
            int64_t K = i < n_shapes ? s.kb * qk : s.kb;
            for (int src = 0; src < W_COUNT && rc == T_PASS; src++) {
                if (src == W_BITS && !tr->is_quantized)
                    continue;
                unsigned long long seed = 1000003ULL * (unsigned)t + 1009ULL * i + (unsigned)src;
                rc = matmul_case(ref, tg, n_tg, tally, type, s, K, (enum w_source)src, seed);
            }
        }
    }
    be_close(ref);
    print_table("matmul", tg, n_tg, tally, true);
    int bad = summarize("matmul", tg, n_tg, tally);
    close_targets(tg, n_tg);
    T_CHECK(rc == T_PASS);
    T_CHECK_MSG(n_broken == 0, "%d targets probe usable but do not open", n_broken);
    T_CHECK_MSG(bad == 0, "%d target x format pairs failed or are unsupported (table above)", bad);
    T_CHECK(n_tg >= 1); /* the cpu backend's scalar path runs everywhere */
    return T_PASS;
}

/* ---- GET_ROWS ---- */

static bool same_floats(const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(isnan(a[i]) && isnan(b[i])))
            return false;
    return true;
}

/* Rows ids of W [K, V] on one backend (tw uploaded) into y [M][K]. */
static int run_get_rows(struct be_backend *be, struct be_tensor *tw, const int32_t *ids, int64_t M,
                        int64_t K, float *y)
{
    struct be_tensor ti = {0}, ty = {0};
    int rc = be_alloc(be, &ti, MQ_DTYPE_I32, 1, (int64_t[]){M});
    if (rc == MQ_OK)
        rc = be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){K, M});
    if (rc == MQ_OK)
        rc = be_write(be, &ti, 0, ids, (size_t)M * sizeof(int32_t));
    if (rc == MQ_OK)
        rc = be_run(be, &(struct be_node){.op = BE_OP_GET_ROWS, .src = {tw, &ti}, .dst = &ty});
    if (rc == MQ_OK)
        rc = be_read(be, &ty, 0, y, (size_t)(M * K) * sizeof(float));
    be_free(be, &ti);
    be_free(be, &ty);
    return rc;
}

/* An id outside the table: MQ_ERANGE from be_run, or from the next be_sync on a device
 * backend that finds it there; the backend stays usable. */
static bool bad_id_refused(struct be_backend *be, struct be_tensor *tw, int64_t V, int64_t K)
{
    struct be_tensor ti = {0}, ty = {0};
    int32_t bad = (int32_t)V;
    bool ok = false;
    if (be_alloc(be, &ti, MQ_DTYPE_I32, 1, (int64_t[]){1}) == MQ_OK &&
        be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){K, 1}) == MQ_OK &&
        be_write(be, &ti, 0, &bad, sizeof(bad)) == MQ_OK) {
        int rc = be_run(be, &(struct be_node){.op = BE_OP_GET_ROWS, .src = {tw, &ti}, .dst = &ty});
        if (rc == MQ_OK)
            rc = be_sync(be);
        ok = rc == MQ_ERANGE && be_sync(be) == MQ_OK;
    }
    be_free(be, &ti);
    be_free(be, &ty);
    return ok;
}

static int test_get_rows(void)
{
    enum { V = 37, M = 8 };
    static const int32_t ids[M] = {0, 36, 15, 16, 17, 31, 8, 7}; /* across 8- and 16-row groups */
    struct target tg[MAX_TARGETS];
    int n_broken;
    int n_tg = open_targets(tg, &n_broken);
    struct be_backend *ref;
    T_CHECK(be_open("ref", NULL, &ref) == MQ_OK);
    static struct tally tally[MAX_TARGETS][MQ_DTYPE_COUNT];
    memset(tally, 0, sizeof(tally));
    bool range_checked[MAX_TARGETS] = {false};
    int n_range_bad = 0;
    fprintf(stderr, "    (error lines about token id %d follow: each backend must refuse it)\n", V);
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        enum mq_dtype type = (enum mq_dtype)t;
        const struct mq_dtype_traits *tr = mq_dtype_get(type);
        if (!tr->is_plan_format)
            continue;
        /* three blocks; float formats an odd K (the last bf16 pair is half full) */
        int64_t K = tr->is_quantized ? 3 * tr->block_elems : 101;
        size_t row_bytes;
        T_CHECK(mq_dtype_row_bytes(type, K, &row_bytes) == MQ_OK);
        char *wq = malloc(row_bytes * V);
        float *w = malloc((size_t)(K * V) * sizeof(float));
        float *want = malloc((size_t)(K * M) * sizeof(float));
        float *y = malloc((size_t)(K * M) * sizeof(float));
        T_CHECK(wq && w && want && y);
        for (int src = 0; src < W_COUNT; src++) {
            if (src == W_QUANT_ZEROS || (src == W_BITS && !tr->is_quantized))
                continue;
            if (src == W_BITS) {
                t_random_blocks(type, K, V, 77 + (unsigned)t, wq);
            } else {
                fill(w, K * V, 5 + (unsigned)t, FILL_RANDOM);
                if (!tr->is_quantized) { /* copied, not computed with */
                    w[3] = NAN;
                    w[K + 4] = -INFINITY;
                    w[16 * K + 2] = INFINITY;
                }
                tr->quantize(w, wq, V, K, NULL);
            }
            struct be_tensor twr;
            T_CHECK(be_upload(ref, &twr, type, 2, (int64_t[]){K, V}, wq, BE_USE_MATRIX) == MQ_OK);
            T_CHECK(run_get_rows(ref, &twr, ids, M, K, want) == MQ_OK);
            be_free(ref, &twr);
            for (int i = 0; i < n_tg; i++) {
                struct tally *tl = &tally[i][type];
                if (tl->unsupported || tl->failed)
                    continue;
                if (!be_supports(tg[i].be, BE_OP_GET_ROWS, type)) {
                    tl->unsupported = true;
                    continue;
                }
                struct be_tensor tw;
                if (be_upload(tg[i].be, &tw, type, 2, (int64_t[]){K, V}, wq, BE_USE_MATRIX) !=
                    MQ_OK) {
                    fprintf(stderr, "    %s %s: upload failed\n", tg[i].name, tr->name);
                    tl->failed = true;
                    continue;
                }
                int rc = run_get_rows(tg[i].be, &tw, ids, M, K, y);
                tl->cases += M * K;
                if (rc != MQ_OK || !same_floats(y, want, M * K)) {
                    fprintf(stderr, "    %s %s K=%lld weights %s: %s\n", tg[i].name, tr->name,
                            (long long)K, w_names[src],
                            rc != MQ_OK ? mq_strerror(rc) : "rows differ from ref's");
                    tl->failed = true;
                }
                if (!range_checked[i] && rc == MQ_OK) {
                    range_checked[i] = true;
                    if (!bad_id_refused(tg[i].be, &tw, V, K)) {
                        fprintf(stderr,
                                "    %s: token id %d of %d rows not refused with MQ_ERANGE\n",
                                tg[i].name, V, V);
                        n_range_bad++;
                    }
                }
                be_free(tg[i].be, &tw);
            }
        }
        free(wq);
        free(w);
        free(want);
        free(y);
    }
    be_close(ref);
    print_table("get_rows", tg, n_tg, tally, false);
    int bad = summarize("get_rows", tg, n_tg, tally);
    close_targets(tg, n_tg);
    T_CHECK_MSG(n_broken == 0, "%d targets probe usable but do not open", n_broken);
    T_CHECK_MSG(n_range_bad == 0, "%d targets read an id outside the table", n_range_bad);
    T_CHECK_MSG(bad == 0, "%d target x format pairs failed or are unsupported (table above)", bad);
    T_CHECK(n_tg >= 1);
    return T_PASS;
}

/* ---- the F32 ops of the other architectures (qwen2, qwen3, gemma2, gemma3, phi3) ----
 *
 * Every target against ref on the ops that llama does not need: ADD of a bias column
 * ([K] and [K, 1], also in place), SCALE (in place), GEGLU (in place; gates past +-10,
 * exactly +-10, f16 subnormals, NaN), SOFTCAP (in place), ATTENTION with a sliding window
 * (1, 7, and one longer than the context, which must equal plain causal attention bit for
 * bit), with logit soft-capping, and both, and RMSNORM per head on a reshaped view ([D*H,
 * M] as [D, H*M] into a [D*H, M] tensor, and as [D, H, M] in place). Two shapes: one small
 * enough to run on the caller, one over the host backends' pool threshold.
 *
 * Error: |y - y_ref| / (1 + |y_ref|); NaN must meet NaN. Budgets:
 *   ADD, SCALE           0     one F32 rounding of the same operation, everywhere
 *   GEGLU, SOFTCAP       0     host backends: the same F32 expression (-ffp-contract=off)
 *                              and the same libm tanhf as ref
 *                        1e-3  cuda GEGLU: the device tanhf (2 ulp) can move gelu across an
 *                              f16 rounding boundary: one f16 ulp, 2^-10 relative
 *                        1e-6  cuda SOFTCAP: the device tanhf, 2 ulp
 *   ATTENTION, RMSNORM   2e-6  host (F32 sums in another order, vectorized exp; as
 *                              test_cpu.c), 1e-5 cuda (as test_cuda.c)
 */
enum arch_op { AO_ADD_BIAS, AO_ADD_BIAS2, AO_SCALE, AO_GEGLU, AO_SOFTCAP, AO_ATTN_WIN1,
               AO_ATTN_WIN7, AO_ATTN_WIN_ALL, AO_ATTN_CAP, AO_ATTN_WIN_CAP, AO_NORM_HEADS,
               AO_NORM_HEADS3, AO_COUNT };
static const char *const arch_op_names[AO_COUNT] = {
    "add bias [K] in place", "add bias [K,1]", "scale in place", "geglu in place",
    "softcap in place", "attention window 1", "attention window 7", "attention window > T",
    "attention softcap", "attention window 7 softcap", "rmsnorm [D,H*M] to [D*H,M]",
    "rmsnorm [D,H,M] in place"};

/* {host backends, cuda} */
static const double arch_budgets[AO_COUNT][2] = {
    [AO_ADD_BIAS] = {0.0, 0.0},      [AO_ADD_BIAS2] = {0.0, 0.0},
    [AO_SCALE] = {0.0, 0.0},         [AO_GEGLU] = {0.0, 1e-3},
    [AO_SOFTCAP] = {0.0, 1e-6},      [AO_ATTN_WIN1] = {2e-6, 1e-5},
    [AO_ATTN_WIN7] = {2e-6, 1e-5},   [AO_ATTN_WIN_ALL] = {2e-6, 1e-5},
    [AO_ATTN_CAP] = {2e-6, 1e-5},    [AO_ATTN_WIN_CAP] = {2e-6, 1e-5},
    [AO_NORM_HEADS] = {2e-6, 1e-5},  [AO_NORM_HEADS3] = {2e-6, 1e-5},
};

static double arch_budget(const char *target, enum arch_op op)
{
    return arch_budgets[op][!strncmp(target, "cuda", 4)];
}

struct arch_shape {
    int64_t D, H, Hkv, M, pos0;
};

/* Runs every arch op on be: inputs x [E, M] (E = D*H), bias [E], K and V [D*Hkv, T]; each
 * output out[op] is E*M floats, out[AO_COUNT] plain causal attention. */
static int run_arch_ops(struct be_backend *be, const struct arch_shape *s, float *const in[4],
                        float *out[AO_COUNT + 1])
{
    int64_t D = s->D, H = s->H, M = s->M, E = D * H, KV = D * s->Hkv, T = s->pos0 + M;
    size_t act = (size_t)(E * M) * sizeof(float);
    struct be_tensor x, bias, bias2, k, v, g, t[AO_COUNT];
    T_CHECK(be_alloc(be, &x, MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &bias, MQ_DTYPE_F32, 1, (int64_t[]){E}) == MQ_OK);
    T_CHECK(be_alloc(be, &bias2, MQ_DTYPE_F32, 2, (int64_t[]){E, 1}) == MQ_OK);
    T_CHECK(be_alloc(be, &g, MQ_DTYPE_F32, 1, (int64_t[]){D}) == MQ_OK);
    T_CHECK(be_alloc(be, &k, MQ_DTYPE_F32, 2, (int64_t[]){KV, T}) == MQ_OK);
    T_CHECK(be_alloc(be, &v, MQ_DTYPE_F32, 2, (int64_t[]){KV, T}) == MQ_OK);
    for (int i = 0; i < AO_COUNT; i++) {
        T_CHECK(be_alloc(be, &t[i], MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
        T_CHECK(be_write(be, &t[i], 0, in[0], act) == MQ_OK); /* in place ops start from x */
    }
    T_CHECK(be_write(be, &x, 0, in[0], act) == MQ_OK);
    T_CHECK(be_write(be, &bias, 0, in[1], (size_t)E * sizeof(float)) == MQ_OK);
    T_CHECK(be_write(be, &bias2, 0, in[1], (size_t)E * sizeof(float)) == MQ_OK);
    T_CHECK(be_write(be, &g, 0, in[1], (size_t)D * sizeof(float)) == MQ_OK);
    T_CHECK(be_write(be, &k, 0, in[2], (size_t)(KV * T) * sizeof(float)) == MQ_OK);
    T_CHECK(be_write(be, &v, 0, in[3], (size_t)(KV * T) * sizeof(float)) == MQ_OK);
    struct be_tensor q3, xh, nh3;
    T_CHECK(be_view_reshape(&x, 3, (int64_t[]){D, H, M}, &q3) == MQ_OK);
    T_CHECK(be_view_reshape(&x, 2, (int64_t[]){D, H * M}, &xh) == MQ_OK);
    T_CHECK(be_view_reshape(&t[AO_NORM_HEADS3], 3, (int64_t[]){D, H, M}, &nh3) == MQ_OK);
    struct be_node attn = {.op = BE_OP_ATTENTION,
                           .src = {&q3, &k, &v},
                           .p.attention = {.pos0 = s->pos0, .n_kv = T, .scale = 0.3f}};
    struct be_node nodes[AO_COUNT] = {
        [AO_ADD_BIAS] = {.op = BE_OP_ADD, .src = {&t[AO_ADD_BIAS], &bias}, .dst = &t[AO_ADD_BIAS]},
        [AO_ADD_BIAS2] = {.op = BE_OP_ADD, .src = {&x, &bias2}, .dst = &t[AO_ADD_BIAS2]},
        [AO_SCALE] = {.op = BE_OP_SCALE, .src = {&t[AO_SCALE]}, .dst = &t[AO_SCALE], .p.scale.s = 0.125f},
        [AO_GEGLU] = {.op = BE_OP_GEGLU, .src = {&t[AO_GEGLU], &x}, .dst = &t[AO_GEGLU]},
        [AO_SOFTCAP] = {.op = BE_OP_SOFTCAP, .src = {&t[AO_SOFTCAP]}, .dst = &t[AO_SOFTCAP],
                        .p.softcap.cap = 3.0f},
        [AO_NORM_HEADS] = {.op = BE_OP_RMSNORM, .src = {&xh, &g}, .dst = &t[AO_NORM_HEADS],
                           .p.rmsnorm.eps = 1e-6f},
        [AO_NORM_HEADS3] = {.op = BE_OP_RMSNORM, .src = {&nh3, &g}, .dst = &nh3, .p.rmsnorm.eps = 1e-6f},
    };
    static const struct {
        enum arch_op op;
        int64_t window;
        float softcap;
    } attn_variants[] = {{AO_ATTN_WIN1, 1, 0.0f},    {AO_ATTN_WIN7, 7, 0.0f},
                         {AO_ATTN_WIN_ALL, 1 << 20, 0.0f}, {AO_ATTN_CAP, 0, 1.5f},
                         {AO_ATTN_WIN_CAP, 7, 1.5f}};
    for (size_t i = 0; i < sizeof(attn_variants) / sizeof(attn_variants[0]); i++) {
        struct be_node *n = &nodes[attn_variants[i].op];
        *n = attn;
        n->dst = &t[attn_variants[i].op];
        n->p.attention.window = attn_variants[i].window;
        n->p.attention.softcap = attn_variants[i].softcap;
    }
    for (int i = 0; i < AO_COUNT; i++)
        T_CHECK_MSG(be_run(be, &nodes[i]) == MQ_OK, "%s", arch_op_names[i]);
    for (int i = 0; i < AO_COUNT; i++)
        T_CHECK(be_read(be, &t[i], 0, out[i], act) == MQ_OK);
    /* plain causal attention, for the window longer than the context */
    attn.dst = &t[0];
    T_CHECK(be_run(be, &attn) == MQ_OK);
    T_CHECK(be_read(be, &t[0], 0, out[AO_COUNT], act) == MQ_OK);
    struct be_tensor *all[] = {&x, &bias, &bias2, &g, &k, &v};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        be_free(be, all[i]);
    for (int i = 0; i < AO_COUNT; i++)
        be_free(be, &t[i]);
    return T_PASS;
}

static int test_arch_ops(void)
{
    /* the second shape's E*M = 17688 is over the host pool threshold (16384) */
    static const struct arch_shape shapes[] = {{24, 6, 2, 5, 37}, {66, 4, 2, 67, 3}};
    struct target tg[MAX_TARGETS];
    int n_broken;
    int n_tg = open_targets(tg, &n_broken);
    struct be_backend *ref;
    T_CHECK(be_open("ref", NULL, &ref) == MQ_OK);
    double worst[MAX_TARGETS][AO_COUNT] = {{0}};
    int n_bad = 0;
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
        const struct arch_shape *s = &shapes[si];
        int64_t E = s->D * s->H, KV = s->D * s->Hkv, T = s->pos0 + s->M, EM = E * s->M;
        float *buf = malloc((size_t)(EM + E + 2 * KV * T + 2 * (AO_COUNT + 1) * EM) * sizeof(float));
        T_CHECK(buf);
        float *x = buf, *bias = x + EM, *k = bias + E, *v = k + KV * T, *o = v + KV * T;
        fill(x, EM, 21, FILL_RANDOM);
        fill(bias, E, 22, FILL_RANDOM);
        fill(k, KV * T, 23, FILL_RANDOM);
        fill(v, KV * T, 24, FILL_RANDOM);
        for (int64_t i = 0; i < EM; i += 5)
            x[i] *= 14.0f; /* gates past +-10, larger scores */
        x[1] = -10.0f;
        x[2] = 10.0f;
        x[3] = 3e-6f; /* an f16 subnormal */
        x[4] = NAN;   /* NaN in, NaN out (token 0's first head and norm row, too) */
        float *in[4] = {x, bias, k, v}, *ro[AO_COUNT + 1], *co[AO_COUNT + 1];
        for (int i = 0; i <= AO_COUNT; i++) {
            ro[i] = o + (size_t)i * (size_t)EM;
            co[i] = o + (size_t)(AO_COUNT + 1 + i) * (size_t)EM;
        }
        if (run_arch_ops(ref, s, in, ro) != T_PASS) {
            free(buf);
            return T_FAIL;
        }
        for (int i = 0; i < n_tg; i++) {
            if (run_arch_ops(tg[i].be, s, in, co) != T_PASS) {
                fprintf(stderr, "    %s: an op failed (shape %zu)\n", tg[i].name, si);
                n_bad++;
                continue;
            }
            for (int op = 0; op < AO_COUNT; op++) {
                double budget = arch_budget(tg[i].name, (enum arch_op)op);
                for (int64_t j = 0; j < EM; j++) {
                    double r = ro[op][j], c = co[op][j];
                    double e = isnan(r) && isnan(c) ? 0.0 : fabs(c - r) / (1.0 + fabs(r));
                    if (isnan(r) != isnan(c))
                        e = INFINITY;
                    worst[i][op] = e > worst[i][op] ? e : worst[i][op];
                    if (!(e <= budget)) {
                        fprintf(stderr, "    %s shape %zu %s[%lld]: %g, ref %g (budget %g)\n",
                                tg[i].name, si, arch_op_names[op], (long long)j, c, r, budget);
                        n_bad++;
                        break;
                    }
                }
            }
            /* a window longer than the context is plain causal attention, bit for bit */
            if (memcmp(co[AO_ATTN_WIN_ALL], co[AO_COUNT], (size_t)EM * sizeof(float)) != 0) {
                fprintf(stderr, "    %s shape %zu: window > T differs from plain attention\n",
                        tg[i].name, si);
                n_bad++;
            }
        }
        free(buf);
    }
    be_close(ref);
    fprintf(stderr, "    %-26s", "worst |y - ref|/(1+|ref|)");
    for (int i = 0; i < n_tg; i++)
        fprintf(stderr, " %-12s", tg[i].name);
    fputc('\n', stderr);
    for (int op = 0; op < AO_COUNT; op++) {
        fprintf(stderr, "    %-26s", arch_op_names[op]);
        for (int i = 0; i < n_tg; i++)
            fprintf(stderr, " %-12.1e", worst[i][op]);
        fputc('\n', stderr);
    }
    close_targets(tg, n_tg);
    T_CHECK_MSG(n_broken == 0, "%d targets probe usable but do not open", n_broken);
    T_CHECK_MSG(n_bad == 0, "%d (target, op) pairs over budget or failing (above)", n_bad);
    T_CHECK(n_tg >= 1);
    return T_PASS;
}

const struct mq_test backend_ops_tests[] = {
    {"backend_ops/arch_ops_vs_ref", test_arch_ops},
    {"backend_ops/get_rows_vs_ref", test_get_rows},
    {"backend_ops/matmul_vs_ref", test_matmul},
    {NULL, NULL},
};
