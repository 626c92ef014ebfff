/* tests/unit/test_neon.c - what is particular to the neon backend's paths: the probe and
 * the path choice (also under emulation), the activation quantizers and the f16
 * conversion of every path against their scalar twins bit for bit, F16 weights too large
 * for FP16 arithmetic, the F32 ops of the forward pass, NaN and Inf activations, and the
 * forward pass on the bundled model.
 *
 * MATMUL and GET_ROWS of every path and format against the ref backend, with the error
 * budgets (f16 in FP16 arithmetic: 4e-3), are in tests/unit/test_backend_ops.c, which
 * loops over every backend and path.
 *
 * Paths are forced with MIXQ_NEON_PATH; a path the CPU lacks is skipped and said so.
 * make check-aarch64 runs this under qemu-aarch64 twice: -cpu max (every path runs) and
 * -cpu cortex-a57 (no dot product, no FP16: only the fallback runs, the others must
 * refuse). It sets MIXQ_EXPECT_NEON_PATHS (the paths that must be usable) and
 * MIXQ_EXPECT_EMULATED (1 under qemu), which the probe test checks when they are set, and
 * MIXQ_TEST_QUICK=1, which shortens the forward pass (1 chunk of 64 tokens instead of 2
 * of 256) but still runs every path and format.
 *
 * Budgets here: F16 weights beyond CPU_F16_ARITH_MAX_W run widened, 1e-5 relative to
 * sum |w x| as for f32; the ops 2e-6 relative to 1 + |ref|; forward-pass perplexity within
 * 1e-5 of ref's for f32, bf16 and f16 widened, 2e-3 for the integer formats (activation
 * codes re-quantized at every layer) and f16 in FP16 arithmetic.
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
#include "tests/unit/test.h"
#include "tokenizer/tokenizer.h"

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

/* Whether a uniform plan runs on the backend: every format in it supported. Formats a
 * path does not support yet fail tests/unit/test_backend_ops.c; the tests here skip them
 * (and say so) to test the rest. */
static bool plan_supported(const struct be_backend *be, const struct mq_plan *p)
{
    for (int i = 0; i < p->n_layers; i++)
        if (!be_supports(be, BE_OP_MATMUL, p->fmt[i]))
            return false;
    return true;
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
    /* types that are no weight format refused (that every plan format is supported is
     * test_backend_ops's check) */
    struct be_backend *be;
    T_CHECK(be_open("neon", &(struct be_config){.n_threads = 2}, &be) == MQ_OK);
    T_CHECK(be_threads(be) == 2);
    for (int t = 0; t < MQ_DTYPE_COUNT; t++)
        if (!mq_dtype_get((enum mq_dtype)t)->is_plan_format)
            T_CHECK(!be_supports(be, BE_OP_MATMUL, (enum mq_dtype)t));
    static const unsigned char src[1024];
    struct be_tensor w;
    T_CHECK(be_upload(be, &w, MQ_DTYPE_Q8_K, 2, (int64_t[]){256, 1}, src, BE_USE_MATRIX) ==
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
static const char *const fill_names[FILL_COUNT] = {"random", "zero-blocks", "huge", "denormal",
                                                   "mixed"};

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

/* The same for Q8_K's blocks of 256 (d = max / -127 in f32, codes rounded half to even). */
static void fill_q8k_cases(float *x, int64_t n)
{
    fill(x, n, 98, FILL_RANDOM);
    float *b = x;
    for (int j = 0; j < 256; j++) /* block 0: max 127 makes iscale -1: codes -x, ties */
        b[j] = j == 0 ? 127.0f : (float)(j % 8 - 4) + 0.5f;
    b += 256;
    for (int j = 0; j < 256; j++) /* block 1: negative max, ties */
        b[j] = j == 255 ? -127.0f : -(float)(j % 16) * 0.5f;
    b[256 + 100] = NAN;           /* block 2: NaN in the middle */
    b[2 * 256 + 0] = NAN;         /* block 3: NaN first */
    b[3 * 256 + 17] = INFINITY;   /* block 4: Inf */
    b[4 * 256 + 255] = -INFINITY; /* block 5: -Inf */
    b += 5 * 256;
    for (int j = 0; j < 256; j++) {
        b[j] = j % 2 ? -0.0f : 0.0f;                  /* block 6: zeros */
        b[256 + j] = (float)(j % 3 - 1) * FLT_MAX;    /* block 7: FLT_MAX */
        b[2 * 256 + j] = (float)(j - 128) * 1.0e-39f; /* block 8: -127/max overflows */
        b[3 * 256 + j] = (float)(j - 128) * 1.4e-45f; /* block 9: subnormal steps */
        b[4 * 256 + j] = (float)(j - 128) * 3.0e4f;   /* block 10: large */
        b[5 * 256 + j] = j == 77 ? 1.0e-30f : 0.0f;   /* block 11: one tiny element */
    }
}

/* quantize_q8k of a path against cpu_quantize_q8k_scalar (every block, bit for bit: the
 * contract of kern.h), and finite blocks against ggml's quantize_row_q8_K_ref (core). */
static int check_q8k(const char *path, const struct cpu_kern *k, const float *x, int64_t n,
                     const char *what)
{
    enum { NB_MAX = 16 };
    static float d1[NB_MAX], d2[NB_MAX];
    static int8_t q1[NB_MAX * 256], q2[NB_MAX * 256];
    static uint8_t u1[NB_MAX * 256];
    static int32_t s1[NB_MAX * 16], s2[NB_MAX * 16];
    static struct mq_block_q8_k ggml[NB_MAX];
    T_CHECK(n <= NB_MAX * 256);
    memset(u1, 0xA5, sizeof(u1));
    k->quantize_q8k(x, n, d1, q1, u1, s1);
    cpu_quantize_q8k_scalar(x, n, d2, q2, NULL, s2);
    mq_dtype_get(MQ_DTYPE_Q8_K)->from_f32(x, ggml, n);
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        bool finite = true;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 256; j++) {
            finite &= isfinite(xb[j]) != 0;
            if (fabsf(xb[j]) > amax) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        T_CHECK_MSG(memcmp(&d1[b], &d2[b], 4) == 0 || (isnan(d1[b]) && isnan(d2[b])),
                    "%s q8k %s block %lld: d %g vs scalar %g", path, what, (long long)b,
                    (double)d1[b], (double)d2[b]);
        T_CHECK_MSG(finite != isnan(d1[b]),
                    "%s q8k %s block %lld: NaN/Inf in the block must make d NaN, and only then",
                    path, what, (long long)b);
        T_CHECK_MSG(memcmp(q1 + b * 256, q2 + b * 256, 256) == 0 &&
                        memcmp(s1 + b * 16, s2 + b * 16, 16 * sizeof(int32_t)) == 0,
                    "%s q8k %s block %lld: codes or sums differ from scalar's", path, what,
                    (long long)b);
        for (int j = 0; j < 256; j++)
            T_CHECK(u1[b * 256 + j] == (uint8_t)(q1[b * 256 + j] + 128));
        /* ggml's codes, where they are defined (finite input, -127/max finite) */
        if (!finite || (amax != 0.0f && !isfinite(-127.0f / max)))
            continue;
        T_CHECK_MSG(
            memcmp(&d1[b], &ggml[b].d, 4) == 0 && memcmp(q1 + b * 256, ggml[b].qs, 256) == 0,
            "%s q8k %s block %lld: codes differ from ggml's quantizer", path, what, (long long)b);
        for (int j = 0; j < 16; j++)
            T_CHECK(s1[b * 16 + j] == ggml[b].bsums[j]);
    }
    return T_PASS;
}

/* quantize_q8 (Q8_0) and quantize_q8k (Q8_K) of every path against the scalar path's. */
static int test_quantize_vs_scalar(void)
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
            if (kind == FILL_COUNT) {
                static float xk[256 * 16];
                fill_q8k_cases(xk, 256 * 16);
                T_CHECK(check_q8k(paths[p], kerns[p], xk, 256 * 16, "cases") == T_PASS);
            } else {
                T_CHECK(check_q8k(paths[p], kerns[p], x, N, fill_names[kind]) == T_PASS);
            }
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
static int test_quantize_vs_scalar(void)
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

/* ---- F16 weights too large for FP16 arithmetic ---- */

/* y = W x on one backend (W F16 [K, N] in ggml layout, x [K, M]). */
static int run_f16_matmul(struct be_backend *be, const uint16_t *wq, const float *x, int64_t K,
                          int64_t N, int64_t M, float *y)
{
    struct be_tensor tw, tx, ty;
    T_CHECK(be_upload(be, &tw, MQ_DTYPE_F16, 2, (int64_t[]){K, N}, wq, BE_USE_MATRIX) == MQ_OK);
    T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M}) == MQ_OK);
    T_CHECK(be_write(be, &tx, 0, x, (size_t)(K * M) * sizeof(float)) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {&tw, &tx}, .dst = &ty}) ==
            MQ_OK);
    T_CHECK(be_read(be, &ty, 0, y, (size_t)(N * M) * sizeof(float)) == MQ_OK);
    be_free(be, &tw);
    be_free(be, &tx);
    be_free(be, &ty);
    return T_PASS;
}

/* An F16 matrix with weights above CPU_F16_ARITH_MAX_W runs widened on every path (FP16
 * partial sums of such weights could overflow): the F32 budget, 1e-5 relative to
 * sum |w x|, holds on the fp16 paths too, not only FP16 arithmetic's 4e-3. */
static int test_f16_wide_paths(void)
{
    SKIP_UNLESS_NEON();
    enum { K = 96, N = 13, M = 3 };
    static float w[K * N], wd[K * N], x[K * M], y[N * M], yr[N * M];
    static uint16_t wq[K * N];
    fill(w, K * N, 3, FILL_RANDOM);
    for (int i = 0; i < K * N; i += 5)
        w[i] *= 3.0e4f;
    fill(x, K * M, 4, FILL_RANDOM);
    mq_dtype_get(MQ_DTYPE_F16)->from_f32(w, wq, K * N);
    mq_dtype_get(MQ_DTYPE_F16)->to_f32(wq, wd, K * N);
    struct be_backend *ref;
    T_CHECK(be_open("ref", NULL, &ref) == MQ_OK);
    T_CHECK(run_f16_matmul(ref, wq, x, K, N, M, yr) == T_PASS);
    be_close(ref);
    int ran = 0;
    for (int p = 0; p < N_PATHS; p++) {
        bool skip;
        struct be_backend *be = open_neon(paths[p], 2, &skip);
        if (skip)
            continue;
        T_CHECK(be);
        ran++;
        T_CHECK(run_f16_matmul(be, wq, x, K, N, M, y) == T_PASS);
        be_close(be);
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double mag = 0;
                for (int k = 0; k < K; k++)
                    mag += fabs((double)wd[n * K + k] * (double)x[m * K + k]);
                double err = fabs((double)y[m * N + n] - (double)yr[m * N + n]) / (mag + 1e-30);
                T_CHECK_MSG(err <= 1e-5, "%s y[%d][%d]: neon %g ref %g (error %.3g > 1e-5)",
                            paths[p], m, n, (double)y[m * N + n], (double)yr[m * N + n], err);
            }
    }
    T_CHECK(ran >= 1);
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
    /* rope in place, NORM mode, with frequency factors (llama 3.1's rope_freqs): written
     * over its input */
    struct be_tensor ff;
    float ffv[512];
    for (int64_t i = 0; i < D / 2; i++)
        ffv[i] = 1.0f + 7.0f * (float)i / (float)(D / 2);
    T_CHECK(be_alloc(be, &ff, MQ_DTYPE_F32, 1, (int64_t[]){D / 2}) == MQ_OK);
    T_CHECK(be_write(be, &ff, 0, ffv, (size_t)(D / 2) * 4) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ROPE,
                                         .src = {&q, &ff},
                                         .dst = &q,
                                         .p.rope = {.pos0 = pos0,
                                                    .n_rot = (int)D,
                                                    .mode = BE_ROPE_NORM,
                                                    .theta = 500.0f,
                                                    .freq_scale = 0.5f,
                                                    .attn_factor = 1.19f}}) == MQ_OK);
    T_CHECK(be_read(be, &x, 0, out[5], (size_t)(E * M) * 4) == MQ_OK);
    struct be_tensor *all[] = {&x, &g, &k, &v, &y, &a, &rn, &at, &sw, &ff};
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

/* NaN and Inf in activations: defined behaviour (neon.h). The columns that hold them give
 * non-finite outputs on every path and format; the other columns are unaffected, bit for
 * bit. NaN weights give NaN rows. */
static int test_nonfinite_paths(void)
{
    SKIP_UNLESS_NEON();
    enum { K = 256, N = 19, M = 3 }; /* K: one block of every format */
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
            if (!be_supports(be, BE_OP_MATMUL, (enum mq_dtype)t)) {
                fprintf(stderr, "    %s %s: unsupported (test_backend_ops fails it), skipped\n",
                        paths[p], tr->name);
                continue;
            }
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
            if (!t_format_in_run((enum mq_dtype)t, quick || T_UNDER_ASAN))
                continue;
            struct mq_plan *p;
            T_CHECK(mq_plan_uniform(m, (enum mq_dtype)t, &p) == MQ_OK);
            if (pass >= 0 && !plan_supported(be, p)) {
                fprintf(stderr, "    %-12s %-6s unsupported (test_backend_ops fails it), skipped\n",
                        paths[pass], mq_dtype_name((enum mq_dtype)t));
                mq_plan_free(p);
                continue;
            }
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
            fprintf(stderr, "    %-12s %-6s ppl %.6f (ref %.6f, rel %.1e)\n", paths[pass],
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
    {"neon/quantize_vs_scalar", test_quantize_vs_scalar},
    {"neon/f16_act_vs_scalar", test_f16_act_vs_scalar},
    {"neon/f16_wide_vs_ref", test_f16_wide_paths},
    {"neon/ops_paths_vs_ref", test_ops_paths},
    {"neon/nonfinite_paths", test_nonfinite_paths},
    {"neon/forward_paths_vs_ref", test_forward_paths},
    {NULL, NULL},
};
