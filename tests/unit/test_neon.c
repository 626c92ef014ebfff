/* tests/unit/test_neon.c - every neon backend path against the ref backend, every format,
 * random and adversarial data, with a stated error budget per format; the activation
 * quantizer and the f16 conversion of every path against their scalar twins, bit for bit.
 *
 * Paths are forced with MIXQ_NEON_PATH; a path the CPU lacks is skipped and said so.
 * make check-aarch64 runs this under qemu-aarch64 twice: -cpu max (every path runs) and
 * -cpu cortex-a57 (no dot product, no FP16: only the fallback runs, the others must
 * refuse). It sets MIXQ_EXPECT_NEON_PATHS (the paths that must be usable) and
 * MIXQ_EXPECT_EMULATED (1 under qemu), which the probe test checks when they are set, and
 * MIXQ_TEST_QUICK=1, which shortens the forward pass (1 chunk of 64 tokens instead of 2
 * of 256) but still runs every path and format.
 *
 * Error budgets (max |y_neon - y_ref| / (sum_k |w_k x_k| + 1e-30) per output, relative to
 * the size of the dot product's terms, which is what rounding scales with):
 *   f32, bf16, f16 widened:  1e-5  (F32 accumulation in another order than ref's double)
 *   f16 in FP16 arithmetic:  4e-3  (x rounded to f16, then up to 16 FP16 FMAs per chunk,
 *                            2^-11 relative each, before the F32 sum)
 *   q8_0, q4_0:              1e-5  (activation codes and block int32 sums bit-identical to
 *                            ref's; only the float accumulation differs)
 * Forward pass, perplexity against ref's: 1e-5 relative for f32, bf16 and f16 widened;
 * 2e-3 for q8_0, q4_0 and f16 in FP16 arithmetic (the budgets of test_cpu.c).
 *
 * On other architectures the suite compiles and every test skips.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/neon/neon.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "core/status.h"
#include "model/eval.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/tokenizer.h"
#include "tests/unit/test.h"

#if defined(__aarch64__) && !defined(MIXQ_NO_NEON)
#define HAVE_NEON_BACKEND 1
#include "backends/neon/kern.h"
#else
#define HAVE_NEON_BACKEND 0
#endif

static const char *const paths[] = {"fallback", "fp16", "dotprod", "dotprod+fp16"};
#define N_PATHS ((int)(sizeof(paths) / sizeof(paths[0])))

static bool path_fp16(const char *p)
{
    return strstr(p, "fp16") != NULL;
}

#define SKIP_UNLESS_NEON()                                                                         \
    T_SKIP_IF(!be_registry_find("neon"), "the neon backend is not compiled in (%s)",               \
              HAVE_NEON_BACKEND ? "WITH_NEON=no" : "not an aarch64 build")

/* Whether the CPU runs `path` (the backend's own probe with the path forced). */
static bool path_usable(const char *path, char *reason, size_t size)
{
    setenv("MIXQ_NEON_PATH", path, 1);
    struct be_info info;
    be_registry_find("neon")->probe(&info);
    unsetenv("MIXQ_NEON_PATH");
    if (reason)
        snprintf(reason, size, "%s", info.usable ? info.detail : info.reason);
    return info.usable;
}

/* Opens the neon backend on a forced path; NULL with *skip when the CPU lacks it. */
static struct be_backend *open_neon(const char *path, int threads, bool *skip)
{
    *skip = !path_usable(path, NULL, 0);
    if (*skip)
        return NULL;
    setenv("MIXQ_NEON_PATH", path, 1);
    struct be_backend *be = NULL;
    if (be_open("neon", &(struct be_config){.n_threads = threads}, &be) < 0)
        be = NULL;
    unsetenv("MIXQ_NEON_PATH");
    return be;
}

/* ---- probe, path choice, emulation ---- */

static int test_paths_and_probe(void)
{
    SKIP_UNLESS_NEON();
    char why[256], list[128] = "";
    const char *expect = getenv("MIXQ_EXPECT_NEON_PATHS"); /* e.g. "fallback,dotprod" */
    for (int i = 0; i < N_PATHS; i++) {
        bool ok = path_usable(paths[i], why, sizeof(why));
        fprintf(stderr, "    path %-12s %s: %s\n", paths[i], ok ? "usable" : "refused", why);
        if (ok) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof(list) - used, "%s%s", used ? "," : "", paths[i]);
            T_CHECK_MSG(strstr(why, paths[i]) && strstr(why, "forced"), "detail '%s'", why);
        } else {
            T_CHECK_MSG(strstr(why, "lacks"), "reason '%s'", why);
            setenv("MIXQ_NEON_PATH", paths[i], 1);
            struct be_backend *be = NULL;
            int rc = be_open("neon", NULL, &be);
            unsetenv("MIXQ_NEON_PATH");
            T_CHECK(rc == MQ_EBACKEND && be == NULL);
        }
    }
    T_CHECK(path_usable("fallback", NULL, 0)); /* every aarch64 CPU has Advanced SIMD */
    if (expect) {
        /* same set, whatever the order */
        for (int i = 0; i < N_PATHS; i++) {
            char tok[32];
            snprintf(tok, sizeof(tok), ",%s,", paths[i]);
            char e[160], l[160];
            snprintf(e, sizeof(e), ",%s,", expect);
            snprintf(l, sizeof(l), ",%s,", list);
            T_CHECK_MSG((strstr(e, tok) != NULL) == (strstr(l, tok) != NULL),
                        "usable paths '%s', expected '%s'", list, expect);
        }
    }
    /* a name that is no path: unusable, and the reason lists the paths */
    T_CHECK(!path_usable("sve2", why, sizeof(why)));
    T_CHECK_MSG(strstr(why, "not a path") && strstr(why, "fallback"), "reason '%s'", why);
    /* unforced: the best usable path, in preference order */
    static const char *const best_first[] = {"dotprod+fp16", "dotprod", "fp16", "fallback"};
    const char *best = NULL;
    for (int i = 0; i < N_PATHS && !best; i++)
        if (path_usable(best_first[i], NULL, 0))
            best = best_first[i];
    struct be_info info;
    be_registry_find("neon")->probe(&info);
    T_CHECK(info.usable && info.host_memory);
    char head[64];
    snprintf(head, sizeof(head), "path %s: the best", best);
    T_CHECK_MSG(strncmp(info.detail, head, strlen(head)) == 0, "detail '%s', best '%s'",
                info.detail, best);
    /* the neon backend comes first in the registry: preferred over cpu's scalar path */
    T_CHECK(be_registry_count() >= 1 && be_registry_get(0) == be_registry_find("neon"));
    /* ops and formats it supports; source-only types refused at upload */
    struct be_backend *be;
    T_CHECK(be_open("neon", &(struct be_config){.n_threads = 2}, &be) == MQ_OK);
    T_CHECK(be_threads(be) == 2);
    for (int t = 0; t < MQ_DTYPE_COUNT; t++)
        T_CHECK(be_supports(be, BE_OP_MATMUL, (enum mq_dtype)t) ==
                mq_dtype_get((enum mq_dtype)t)->is_plan_format);
    static const unsigned char src[1024];
    struct be_tensor w;
    T_CHECK(be_upload(be, &w, MQ_DTYPE_Q4_K, 2, (int64_t[]){256, 1}, src, BE_USE_MATRIX) ==
            MQ_EUNSUPPORTED);
    be_close(be);
    /* emulation: checked where the caller knows the answer */
    bool em = be_neon_emulated(why, sizeof(why));
    fprintf(stderr, "    emulated: %s (%s)\n", em ? "yes" : "no", why);
    T_CHECK(why[0]);
    const char *want = getenv("MIXQ_EXPECT_EMULATED");
    if (want && *want)
        T_CHECK_MSG(em == (atoi(want) != 0), "emulated %d, MIXQ_EXPECT_EMULATED=%s: %s", em, want,
                    why);
    if (em) {
        be_registry_find("neon")->probe(&info);
        T_CHECK_MSG(strstr(info.detail, "EMULATED"), "detail '%s'", info.detail);
    }
    return T_PASS;
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

/* ---- the activation quantizer and the f16 conversion, bit for bit ---- */

#if HAVE_NEON_BACKEND
static const struct cpu_kern *const kerns[N_PATHS] = {&neon_kern_fallback, &neon_kern_fp16,
                                                      &neon_kern_dotprod, &neon_kern_dotprod_fp16};

/* Blocks that exercise the rounding rule: ties at +-k.5 (amax 127 makes d = 1), NaN,
 * Inf, -0, all zero, FLT_MAX, the smallest scale whose inverse is finite. */
static void fill_quant_cases(float *x, int64_t n)
{
    fill(x, n, 99, FILL_RANDOM);
    for (int j = 0; j < 32; j++) /* block 0: ties, d = 1 */
        x[j] = j == 0 ? 127.0f : (float)(j - 16) + 0.5f;
    for (int j = 0; j < 32; j++) /* block 1: ties, negative amax */
        x[32 + j] = j == 31 ? -127.0f : -(float)j * 0.5f;
    x[2 * 32 + 7] = NAN;       /* block 2: NaN in the middle */
    x[3 * 32 + 31] = NAN;      /* block 3: NaN last */
    x[4 * 32 + 3] = INFINITY;  /* block 4: Inf */
    x[5 * 32 + 9] = -INFINITY; /* block 5: -Inf */
    for (int j = 0; j < 32; j++) {
        x[6 * 32 + j] = j % 2 ? -0.0f : 0.0f;               /* block 6: zeros */
        x[7 * 32 + j] = (j % 3 - 1) * FLT_MAX;              /* block 7: FLT_MAX */
        x[8 * 32 + j] = (float)(j - 16) * 1.0e-36f / 16.0f; /* block 8: tiny, 1/d finite */
        x[9 * 32 + j] = (float)(j - 16) * 1.0e-44f;         /* block 9: 1/d overflows */
        x[10 * 32 + j] = (float)(j - 16) * 3.0e4f;          /* block 10: large */
    }
}

static int test_quantize_q8_vs_scalar(void)
{
    SKIP_UNLESS_NEON();
    enum { N = 32 * 64 };
    static float x[N], d1[N / 32], d2[N / 32];
    static int8_t q1[N], q2[N];
    static uint8_t u1[N];
    static int32_t s1[N / 32], s2[N / 32];
    static struct mq_block_q8_0 ref[N / 32];
    int ran = 0;
    for (int kind = 0; kind <= FILL_COUNT; kind++) {
        if (kind == FILL_COUNT)
            fill_quant_cases(x, N);
        else
            fill(x, N, 31 + (unsigned)kind, (enum fill_kind)kind);
        cpu_kern_scalar.quantize_q8(x, N, d2, q2, NULL, s2);
        mq_dtype_get(MQ_DTYPE_Q8_0)->from_f32(x, ref, N);
        for (int p = 0; p < N_PATHS; p++) {
            if (!path_usable(paths[p], NULL, 0))
                continue;
            ran++;
            kerns[p]->quantize_q8(x, N, d1, q1, u1, s1);
            for (int b = 0; b < N / 32; b++) {
                const float *xb = x + b * 32;
                bool nan = false;
                float amax = 0.0f;
                for (int j = 0; j < 32; j++) {
                    nan |= isnan(xb[j]);
                    amax = fmaxf(amax, fabsf(xb[j]));
                }
                float dd = amax / 127.0f;
                bool codes_defined = nan || isinf(amax) || dd == 0.0f || isfinite(1.0f / dd);
                T_CHECK_MSG(memcmp(&d1[b], &d2[b], 4) == 0 || (isnan(d1[b]) && isnan(d2[b])),
                            "%s fill %s block %d: d %g vs scalar %g", paths[p],
                            kind < FILL_COUNT ? fill_names[kind] : "cases", b, (double)d1[b],
                            (double)d2[b]);
                T_CHECK_MSG(nan == isnan(d1[b]), "%s block %d: NaN in the block must make d NaN",
                            paths[p], b);
                if (!codes_defined) { /* 1/d overflowed: d is 0 in f16, codes contribute 0 */
                    T_CHECK(mq_f32_to_f16(d1[b]) == 0);
                    continue;
                }
                T_CHECK_MSG(memcmp(q1 + b * 32, q2 + b * 32, 32) == 0 && s1[b] == s2[b],
                            "%s fill %s block %d: codes differ", paths[p],
                            kind < FILL_COUNT ? fill_names[kind] : "cases", b);
                for (int j = 0; j < 32; j++)
                    T_CHECK(u1[b * 32 + j] == (uint8_t)(q1[b * 32 + j] + 128));
                /* and ggml's reference quantizer (which lets a NaN through unless last) */
                if (!nan) {
                    T_CHECK_MSG(memcmp(q1 + b * 32, ref[b].qs, 32) == 0 &&
                                    mq_f32_to_f16(d1[b]) == ref[b].d,
                                "%s block %d: codes differ from ggml's reference", paths[p], b);
                }
            }
        }
    }
    /* the tie block rounds half away from zero: 0.5 -> 1, -0.5 -> -1, 1.5 -> 2 */
    fill_quant_cases(x, N);
    kerns[0]->quantize_q8(x, N, d1, q1, u1, s1);
    T_CHECK(d1[0] == 1.0f && q1[16] == 1 && q1[15] == -1 && q1[17] == 2 && q1[1] == -15);
    T_CHECK(ran >= 1);
    return T_PASS;
}

/* The scalar twin of f16_act (kern.h): per chunk of 16, e with 2^(e-1) <= amax < 2^e
 * (capped at 127; 0 for chunks with NaN/Inf or all zero), x' = x * 2^-e to f16. */
static void f16_act_scalar(const float *x, int64_t K, uint16_t *xh, float *xhs)
{
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        float amax = 0.0f;
        bool finite = true;
        for (int64_t k = k0; k < k0 + 16 && k < K; k++) {
            finite &= isfinite(x[k]);
            amax = fmaxf(amax, fabsf(x[k]));
        }
        int e = 0;
        if (finite && amax > 0.0f) {
            (void)frexpf(amax, &e);
            e = e > 127 ? 127 : e;
        }
        for (int64_t k = k0; k < k0 + 16; k++)
            xh[k] = k < K ? mq_f32_to_f16(ldexpf(x[k], -e)) : 0;
        xhs[k0 / 16] = ldexpf(1.0f, e);
    }
}

static int test_f16_act_vs_scalar(void)
{
    SKIP_UNLESS_NEON();
    enum { K = 16 * 23 + 7 };
    enum { K16 = (K + 15) / 16 * 16 };
    static float x[K], s1[K16 / 16], s2[K16 / 16];
    static uint16_t h1[K16], h2[K16];
    int ran = 0;
    for (int p = 0; p < N_PATHS; p++) {
        T_CHECK(!kerns[p]->f16_act == !path_fp16(paths[p])); /* exactly the fp16 paths */
        if (!kerns[p]->f16_act || !path_usable(paths[p], NULL, 0))
            continue;
        ran++;
        for (int kind = 0; kind <= FILL_COUNT; kind++) {
            if (kind == FILL_COUNT) {
                fill(x, K, 5, FILL_RANDOM);
                x[3] = NAN;                   /* chunk 0 */
                x[16 + 5] = INFINITY;         /* chunk 1 */
                x[32] = FLT_MAX;              /* chunk 2: e capped at 127 */
                for (int k = 48; k < 64; k++) /* chunk 3: the smallest subnormals */
                    x[k] = (float)(k - 56) * 1.4e-45f;
                for (int k = 64; k < 80; k++) /* chunk 4: all zero */
                    x[k] = 0.0f;
                x[81] = 1e30f; /* chunk 5: 1e30 beside values near 1 */
            } else {
                fill(x, K, 17 + (unsigned)kind, (enum fill_kind)kind);
            }
            memset(h1, 0xAB, sizeof(h1));
            kerns[p]->f16_act(x, K, h1, s1);
            f16_act_scalar(x, K, h2, s2);
            for (int k = 0; k < K16; k++) {
                bool both_nan = (h1[k] & 0x7FFF) > 0x7C00 && (h2[k] & 0x7FFF) > 0x7C00;
                T_CHECK_MSG(h1[k] == h2[k] || both_nan, "%s fill %d k=%d: %04x vs scalar %04x",
                            paths[p], kind, k, h1[k], h2[k]);
            }
            T_CHECK(memcmp(s1, s2, sizeof(s1)) == 0);
            /* the round trip: every finite chunk value within f16 rounding of x */
            for (int k = 0; k < K; k++) {
                if (!isfinite(x[k]) || !isfinite(s1[k / 16]))
                    continue;
                double back = (double)mq_f16_to_f32(h1[k]) * (double)s1[k / 16];
                double tol = ldexp(fabs((double)x[k]), -11) + ldexp((double)s1[k / 16], -25);
                T_CHECK_MSG(fabs(back - (double)x[k]) <= tol, "%s k=%d: %g back as %g", paths[p], k,
                            (double)x[k], back);
            }
        }
    }
    T_SKIP_IF(ran == 0, "no fp16 path on this CPU");
    return T_PASS;
}
#else
static int test_quantize_q8_vs_scalar(void)
{
    SKIP_UNLESS_NEON();
    return T_FAIL;
}
static int test_f16_act_vs_scalar(void)
{
    SKIP_UNLESS_NEON();
    return T_FAIL;
}
#endif

/* ---- matmul against ref ---- */

struct mm_case {
    int64_t K, N, M;
};

/* Uploads W, runs W x on both backends, checks the budget; *worst gets the largest error. */
static int check_matmul(struct be_backend *be, struct be_backend *ref, enum mq_dtype type,
                        const float *w, struct mm_case c, enum fill_kind kind, const char *path,
                        double budget, double *worst)
{
    const struct mq_dtype_traits *tr = mq_dtype_get(type);
    size_t row_bytes;
    T_CHECK(mq_dtype_row_bytes(type, c.K, &row_bytes) == MQ_OK);
    float *wd = malloc((size_t)(c.K * c.N) * sizeof(float));
    float *x = malloc((size_t)(c.K * c.M) * sizeof(float));
    float *ys[2] = {malloc((size_t)(c.N * c.M) * sizeof(float)),
                    malloc((size_t)(c.N * c.M) * sizeof(float))};
    void *wq = malloc(row_bytes * (size_t)c.N);
    int rc = T_FAIL;
    if (!wd || !x || !ys[0] || !ys[1] || !wq)
        goto done;
    fill(x, c.K * c.M, 12 + (unsigned)c.N, kind);
    tr->from_f32(w, wq, c.K * c.N);
    tr->to_f32(wq, wd, c.K * c.N);
    struct be_backend *bes[2] = {be, ref};
    for (int b = 0; b < 2; b++) {
        struct be_tensor tw, tx, ty;
        if (be_upload(bes[b], &tw, type, 2, (int64_t[]){c.K, c.N}, wq, BE_USE_MATRIX) != MQ_OK ||
            be_alloc(bes[b], &tx, MQ_DTYPE_F32, 2, (int64_t[]){c.K, c.M}) != MQ_OK ||
            be_alloc(bes[b], &ty, MQ_DTYPE_F32, 2, (int64_t[]){c.N, c.M}) != MQ_OK ||
            be_write(bes[b], &tx, 0, x, (size_t)(c.K * c.M) * sizeof(float)) != MQ_OK ||
            be_run(bes[b], &(struct be_node){.op = BE_OP_MATMUL, .src = {&tw, &tx}, .dst = &ty}) !=
                MQ_OK ||
            be_read(bes[b], &ty, 0, ys[b], (size_t)(c.N * c.M) * sizeof(float)) != MQ_OK) {
            fprintf(stderr, "    %s %s: matmul failed\n", path, tr->name);
            goto done;
        }
        be_free(bes[b], &tw);
        be_free(bes[b], &tx);
        be_free(bes[b], &ty);
    }
    for (int64_t m = 0; m < c.M; m++)
        for (int64_t n = 0; n < c.N; n++) {
            double mag = 0;
            for (int64_t k = 0; k < c.K; k++)
                mag += fabs((double)wd[n * c.K + k] * (double)x[m * c.K + k]);
            double y = ys[0][m * c.N + n], yr = ys[1][m * c.N + n];
            if (!isfinite(yr) && !isfinite(y))
                continue; /* an activation scale beyond f16 (mixed fill, q formats): both NaN/Inf */
            double err = fabs(y - yr) / (mag + 1e-30);
            if (!(err <= budget)) {
                fprintf(stderr,
                        "    %s %s K=%lld N=%lld M=%lld fill %s: y[%lld][%lld] neon %g ref %g (rel "
                        "%g > %g)\n",
                        path, tr->name, (long long)c.K, (long long)c.N, (long long)c.M,
                        fill_names[kind], (long long)m, (long long)n, y, yr, err, budget);
                goto done;
            }
            *worst = fmax(*worst, err);
        }
    rc = T_PASS;
done:
    free(wd);
    free(x);
    free(ys[0]);
    free(ys[1]);
    free(wq);
    return rc;
}

static double budget_for(enum mq_dtype t, const char *path)
{
    return t == MQ_DTYPE_F16 && path_fp16(path) ? 4e-3 : 1e-5;
}

static int test_matmul_paths(void)
{
    SKIP_UNLESS_NEON();
    struct be_backend *ref;
    T_CHECK(be_open("ref", &(struct be_config){.n_threads = 2}, &ref) == MQ_OK);
    /* GEMV and GEMM; N not a multiple of 8; a single row; a single column; M of 1..4
     * (activations quantized by every thread) and above (once, in parallel) */
    static const struct mm_case cases[] = {
        {64, 37, 1},   {96, 16, 3}, {256, 33, 9}, {32, 1, 5},
        {128, 50, 17}, {160, 8, 1}, {64, 23, 6},  {512, 9, 2},
    };
    /* float formats take any K: tails of the 4-wide and 16-wide loops, odd bf16 pairs */
    static const struct mm_case float_cases[] = {
        {37, 9, 3}, {1, 5, 2}, {17, 8, 1}, {33, 11, 5}, {250, 3, 4}};
    int tested = 0;
    for (int p = 0; p < N_PATHS; p++) {
        bool skip;
        struct be_backend *be = open_neon(paths[p], 1 + p % 2, &skip);
        if (skip) {
            fprintf(stderr, "    path %s: not supported by this CPU, skipped\n", paths[p]);
            continue;
        }
        T_CHECK(be);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
            if (!tr->is_plan_format)
                continue;
            double worst = 0;
            int n_cases = (int)(sizeof(cases) / sizeof(cases[0]));
            int n_float =
                tr->is_quantized ? 0 : (int)(sizeof(float_cases) / sizeof(float_cases[0]));
            for (int c = 0; c < n_cases + n_float; c++) {
                struct mm_case mc = c < n_cases ? cases[c] : float_cases[c - n_cases];
                float *w = malloc((size_t)(mc.K * mc.N) * sizeof(float));
                T_CHECK(w);
                fill(w, mc.K * mc.N, 11 + (unsigned)mc.K, FILL_RANDOM);
                for (int kind = 0; kind < FILL_COUNT; kind++) {
                    if (check_matmul(be, ref, (enum mq_dtype)t, w, mc, (enum fill_kind)kind,
                                     paths[p], budget_for((enum mq_dtype)t, paths[p]),
                                     &worst) != T_PASS) {
                        free(w);
                        return T_FAIL;
                    }
                }
                free(w);
            }
            fprintf(stderr, "    %-12s %-5s worst error %.2e (budget %.0e)\n", paths[p], tr->name,
                    worst, budget_for((enum mq_dtype)t, paths[p]));
        }
        /* F16 weights too large for FP16 arithmetic run widened: the F32 budget holds */
        struct mm_case big = {96, 13, 3};
        float *w = malloc((size_t)(big.K * big.N) * sizeof(float));
        T_CHECK(w);
        fill(w, big.K * big.N, 3, FILL_RANDOM);
        for (int i = 0; i < big.K * big.N; i += 5)
            w[i] *= 3.0e4f;
        double worst = 0;
        T_CHECK(check_matmul(be, ref, MQ_DTYPE_F16, w, big, FILL_RANDOM, paths[p], 1e-5, &worst) ==
                T_PASS);
        free(w);
        tested++;
        be_close(be);
    }
    be_close(ref);
    T_CHECK(tested >= 1);
    return T_PASS;
}

/* The other ops of the forward pass, on every path, against ref. Shapes are odd on
 * purpose (not multiples of the vector width). Budget: 2e-6 relative (float sums in
 * another order, and the vectorized exp: relative error < 2e-7 per call). */
static int run_ops(struct be_backend *be, float *const in[4], float *out[6], int64_t D, int64_t H,
                   int64_t Hkv, int64_t M, int64_t pos0)
{
    int64_t E = D * H, KV = D * Hkv, T = pos0 + M;
    struct be_tensor x, g, k, v, y, a, rn, at, sw, q, y3;
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
    T_CHECK(be_view_reshape(&y, 3, (int64_t[]){D, H, M}, &y3) == MQ_OK);
    T_CHECK(be_run(be,
                   &(struct be_node){
                       .op = BE_OP_RMSNORM, .src = {&x, &g}, .dst = &rn, .p.rmsnorm.eps = 1e-5f}) ==
            MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ROPE,
                                         .src = {&q},
                                         .dst = &y3,
                                         .p.rope = {.pos0 = pos0,
                                                    .n_rot = (int)D - 2,
                                                    .mode = BE_ROPE_NEOX,
                                                    .theta = 10000.0f,
                                                    .freq_scale = 1.0f}}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){
                           .op = BE_OP_ATTENTION,
                           .src = {&y3, &k, &v},
                           .dst = &at,
                           .p.attention = {.pos0 = pos0, .n_kv = T, .scale = 0.3f}}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_SWIGLU, .src = {&x, &rn}, .dst = &sw}) ==
            MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ADD, .src = {&x, &rn}, .dst = &a}) == MQ_OK);
    struct be_tensor *outs[5] = {&rn, &y, &at, &sw, &a};
    for (int i = 0; i < 5; i++)
        T_CHECK(be_read(be, outs[i], 0, out[i], (size_t)(E * M) * 4) == MQ_OK);
    /* rope in place, NORM mode: written over its input */
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ROPE,
                                         .src = {&q},
                                         .dst = &q,
                                         .p.rope = {.pos0 = pos0,
                                                    .n_rot = (int)D,
                                                    .mode = BE_ROPE_NORM,
                                                    .theta = 500.0f,
                                                    .freq_scale = 0.5f}}) == MQ_OK);
    T_CHECK(be_read(be, &x, 0, out[5], (size_t)(E * M) * 4) == MQ_OK);
    struct be_tensor *all[] = {&x, &g, &k, &v, &y, &a, &rn, &at, &sw};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        be_free(be, all[i]);
    return T_PASS;
}

static int test_ops_paths(void)
{
    SKIP_UNLESS_NEON();
    /* two sizes: a small one (runs inline on the caller) and one above the pool threshold */
    static const struct {
        int64_t D, H, Hkv, M, pos0;
    } shapes[] = {{24, 6, 2, 5, 37}, {66, 4, 2, 67, 3}};
    static const char *const names[6] = {"rmsnorm", "rope", "attention",
                                         "swiglu",  "add",  "rope-inplace"};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int64_t D = shapes[s].D, H = shapes[s].H, Hkv = shapes[s].Hkv, M = shapes[s].M,
                pos0 = shapes[s].pos0;
        int64_t E = D * H, KV = D * Hkv, T = pos0 + M;
        float *buf = malloc((size_t)(E * M + E + 2 * KV * T + 12 * E * M) * sizeof(float));
        T_CHECK(buf);
        float *x = buf, *g = x + E * M, *k = g + E, *v = k + KV * T, *outs = v + KV * T;
        fill(x, E * M, 1, FILL_RANDOM);
        fill(g, E, 2, FILL_RANDOM);
        fill(k, KV * T, 3, FILL_RANDOM);
        fill(v, KV * T, 4, FILL_RANDOM);
        for (int64_t i = 0; i < E * M; i += 7)
            x[i] *= 9.0f; /* a few large gate values for silu */
        x[1] = -100.0f;   /* exp underflow in silu */
        float *in[4] = {x, g, k, v};
        float *ro[6], *co[6];
        for (int i = 0; i < 6; i++) {
            ro[i] = outs + (size_t)i * (size_t)(E * M);
            co[i] = outs + (size_t)(6 + i) * (size_t)(E * M);
        }
        struct be_backend *ref;
        T_CHECK(be_open("ref", NULL, &ref) == MQ_OK);
        T_CHECK(run_ops(ref, in, ro, D, H, Hkv, M, pos0) == T_PASS);
        be_close(ref);
        for (int p = 0; p < N_PATHS; p++) {
            bool skip;
            struct be_backend *be = open_neon(paths[p], 2, &skip);
            if (skip)
                continue;
            T_CHECK(be);
            T_CHECK(run_ops(be, in, co, D, H, Hkv, M, pos0) == T_PASS);
            for (int op = 0; op < 6; op++)
                for (int64_t j = 0; j < E * M; j++) {
                    double d = fabs((double)co[op][j] - (double)ro[op][j]);
                    T_CHECK_MSG(d <= 2e-6 * (1.0 + fabs((double)ro[op][j])),
                                "%s %s[%lld]: neon %g ref %g", paths[p], names[op], (long long)j,
                                (double)co[op][j], (double)ro[op][j]);
                }
            be_close(be);
        }
        free(buf);
    }
    return T_PASS;
}

/* Embedding lookups read rows back out of the packed layouts exactly, on every path. */
static int test_get_rows_paths(void)
{
    SKIP_UNLESS_NEON();
    enum { K = 96, V = 37, M = 7 };
    static float w[K * V], y[M * K], want[K];
    static char wq[K * V * 4];
    int32_t ids[M] = {0, 36, 15, 16, 17, 31, 8};
    fill(w, K * V, 5, FILL_RANDOM);
    w[3] = NAN; /* copied, not computed with */
    w[K + 4] = -INFINITY;
    for (int p = 0; p < N_PATHS; p++) {
        bool skip;
        struct be_backend *be = open_neon(paths[p], 1, &skip);
        if (skip)
            continue;
        T_CHECK(be);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
            if (!tr->is_plan_format)
                continue;
            tr->from_f32(w, wq, K * V);
            struct be_tensor tw, ti, ty;
            T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, V}, wq, BE_USE_MATRIX) ==
                    MQ_OK);
            T_CHECK(be_alloc(be, &ti, MQ_DTYPE_I32, 1, (int64_t[]){M}) == MQ_OK);
            T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
            T_CHECK(be_write(be, &ti, 0, ids, sizeof(ids)) == MQ_OK);
            T_CHECK(be_run(be, &(struct be_node){
                                   .op = BE_OP_GET_ROWS, .src = {&tw, &ti}, .dst = &ty}) == MQ_OK);
            T_CHECK(be_read(be, &ty, 0, y, sizeof(y)) == MQ_OK);
            size_t rb = tw.nbytes / V;
            for (int m = 0; m < M; m++) {
                tr->to_f32(wq + (size_t)ids[m] * rb, want, K);
                T_CHECK_MSG(memcmp(want, y + m * K, sizeof(want)) == 0, "%s %s row %d", paths[p],
                            tr->name, ids[m]);
            }
            /* an id outside the vocabulary is an error, not a read out of bounds */
            if (t == MQ_DTYPE_Q4_0) {
                int32_t bad = V;
                T_CHECK(be_write(be, &ti, 0, &bad, sizeof(bad)) == MQ_OK);
                T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_GET_ROWS,
                                                     .src = {&tw, &ti},
                                                     .dst = &ty}) == MQ_ERANGE);
            }
            be_free(be, &tw);
            be_free(be, &ti);
            be_free(be, &ty);
        }
        be_close(be);
    }
    return T_PASS;
}

/* NaN and Inf in activations: defined behaviour (neon.h). The columns that hold them give
 * non-finite outputs on every path and format; the other columns are unaffected, bit for
 * bit. NaN weights give NaN rows. */
static int test_nonfinite_paths(void)
{
    SKIP_UNLESS_NEON();
    enum { K = 64, N = 19, M = 3 };
    static float w[K * N], x[K * M], y[N * M], y_clean[N * M];
    static char wq[K * N * 4];
    for (int p = 0; p < N_PATHS; p++) {
        bool skip;
        struct be_backend *be = open_neon(paths[p], 2, &skip);
        if (skip)
            continue;
        T_CHECK(be);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
            if (!tr->is_plan_format)
                continue;
            fill(w, K * N, 7, FILL_RANDOM);
            tr->from_f32(w, wq, K * N);
            struct be_tensor tw, tx, ty;
            T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, N}, wq, BE_USE_MATRIX) ==
                    MQ_OK);
            T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
            T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M}) == MQ_OK);
            for (int pass = 0; pass < 2; pass++) {
                fill(x, K * M, 8, FILL_RANDOM);
                if (pass) {
                    x[5] = NAN;               /* column 0 */
                    x[2 * K + 40] = INFINITY; /* column 2 */
                }
                T_CHECK(be_write(be, &tx, 0, x, sizeof(x)) == MQ_OK);
                T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_MATMUL,
                                                     .src = {&tw, &tx},
                                                     .dst = &ty}) == MQ_OK);
                T_CHECK(be_read(be, &ty, 0, pass ? y : y_clean, sizeof(y)) == MQ_OK);
            }
            for (int n = 0; n < N; n++) {
                T_CHECK_MSG(!isfinite(y[0 * N + n]) && !isfinite(y[2 * N + n]), "%s %s row %d",
                            paths[p], tr->name, n);
                T_CHECK(memcmp(&y[1 * N + n], &y_clean[1 * N + n], sizeof(float)) == 0);
                T_CHECK(isfinite(y_clean[n]));
            }
            be_free(be, &tw);
            /* a NaN weight in row 4 (float formats keep it; it is the scale in q formats) */
            if (t == MQ_DTYPE_F32 || t == MQ_DTYPE_F16 || t == MQ_DTYPE_BF16) {
                w[4 * K + 10] = NAN;
                tr->from_f32(w, wq, K * N);
                T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, N}, wq,
                                  BE_USE_MATRIX) == MQ_OK);
                T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_MATMUL,
                                                     .src = {&tw, &tx},
                                                     .dst = &ty}) == MQ_OK);
                T_CHECK(be_read(be, &ty, 0, y, sizeof(y)) == MQ_OK);
                T_CHECK_MSG(isnan(y[1 * N + 4]) && isfinite(y[1 * N + 5]), "%s %s: NaN weight",
                            paths[p], tr->name);
                be_free(be, &tw);
            }
            be_free(be, &tx);
            be_free(be, &ty);
        }
        be_close(be);
    }
    return T_PASS;
}

/* The forward pass on every path and format gives the ref backend's perplexity on the
 * bundled model (budgets at the top). */
static int test_forward_paths(void)
{
    SKIP_UNLESS_NEON();
    bool quick = getenv("MIXQ_TEST_QUICK") && atoi(getenv("MIXQ_TEST_QUICK"));
    struct mq_eval_config cfg = {.n_ctx = quick ? 64 : 256, .max_chunks = quick ? 1 : 2};
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
    for (int pass = -1; pass < N_PATHS; pass++) {
        bool skip = false;
        struct be_backend *be = NULL;
        if (pass < 0)
            T_CHECK(be_open("ref", NULL, &be) == MQ_OK);
        else
            be = open_neon(paths[pass], 2, &skip);
        if (skip)
            continue;
        T_CHECK(be);
        struct mq_eval *ev;
        T_CHECK(mq_eval_new(m, be, toks, n_toks, &cfg, &ev) == MQ_OK);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            if (!mq_dtype_get((enum mq_dtype)t)->is_plan_format)
                continue;
            struct mq_plan *p;
            T_CHECK(mq_plan_uniform(m, (enum mq_dtype)t, &p) == MQ_OK);
            struct mq_eval_result r;
            T_CHECK(mq_eval_plan(ev, p, NULL, &r) == MQ_OK);
            mq_plan_free(p);
            if (pass < 0) {
                ref_ppl[t] = r.ppl;
                continue;
            }
            /* integer formats: activation codes are re-quantized at every layer, so
             * float-rounding differences upstream flip a few codes: 2e-3, as is FP16
             * arithmetic's rounding */
            double tol = mq_dtype_get((enum mq_dtype)t)->is_quantized ||
                                 (t == MQ_DTYPE_F16 && path_fp16(paths[pass]))
                             ? 2e-3
                             : 1e-5;
            fprintf(stderr, "    %-12s %-5s ppl %.6f (ref %.6f, rel %.1e)\n", paths[pass],
                    mq_dtype_name((enum mq_dtype)t), r.ppl, ref_ppl[t],
                    fabs(r.ppl / ref_ppl[t] - 1.0));
            T_CHECK_MSG(fabs(r.ppl / ref_ppl[t] - 1.0) < tol, "%s %s: ppl %.6f vs ref %.6f",
                        paths[pass], mq_dtype_name((enum mq_dtype)t), r.ppl, ref_ppl[t]);
        }
        mq_eval_free(ev);
        be_close(be);
    }
    free(toks);
    mq_model_free(m);
    return T_PASS;
}

const struct mq_test neon_tests[] = {
    {"neon/paths_and_probe", test_paths_and_probe},
    {"neon/quantize_q8_vs_scalar", test_quantize_q8_vs_scalar},
    {"neon/f16_act_vs_scalar", test_f16_act_vs_scalar},
    {"neon/matmul_paths_vs_ref", test_matmul_paths},
    {"neon/ops_paths_vs_ref", test_ops_paths},
    {"neon/get_rows_paths", test_get_rows_paths},
    {"neon/nonfinite_paths", test_nonfinite_paths},
    {"neon/forward_paths_vs_ref", test_forward_paths},
    {NULL, NULL},
};
