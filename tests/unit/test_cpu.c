/* tests/unit/test_cpu.c - what is particular to the cpu backend's paths (scalar, avx2,
 * avx512, avx512vnni, avx512amx, forced with MIXQ_CPU_ISA; a path the CPU lacks is
 * skipped).
 *
 * MATMUL and GET_ROWS of every path and format against the ref backend, with the budgets,
 * are in tests/unit/test_backend_ops.c (every backend, one harness). Here: the activation
 * quantizers of every path against the scalar path's, bit for bit (the contract of kern.h:
 * Q8_0 codes, scales and sums; Q8_K as cpu_quantize_q8k_scalar, which itself gives ggml's
 * quantize_row_q8_K_ref for finite input), the defined behaviour for NaN and Inf
 * activations, the F32 ops of the forward pass (budget 2e-6 relative to 1 + |ref|: float
 * sums in another order, a vectorized exp) and the forward pass on the bundled model
 * (perplexity within 1e-5 of ref's for float formats; 2e-3 for the integer formats, whose
 * activation codes are re-quantized at every layer so that upstream rounding flips a few,
 * and for bf16 where activations are rounded to bf16).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cpu/kern.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "core/status.h"
#include "llm/llama.h"
#include "model/eval.h"
#include "model/model.h"
#include "model/plan.h"
#include "tests/unit/test.h"
#include "tokenizer/tokenizer.h"

/* The paths compiled into this build (kern->isa: the MIXQ_CPU_ISA name that forces one) */
static const struct cpu_kern *const kern_paths[] = {
    &cpu_kern_scalar,
#if defined(__x86_64__)
    &cpu_kern_avx2,
    &cpu_kern_avx512,
    &cpu_kern_avx512vnni,
    &cpu_kern_avx512amx,
#endif
};
#define N_KERN_PATHS ((int)(sizeof(kern_paths) / sizeof(kern_paths[0])))

/* Opens the cpu backend on a forced path (threads > 0), or only probes it (threads 0);
 * NULL (and *skip) when the CPU or this build lacks it. MIXQ_CPU_ISA is restored. */
static struct be_backend *open_cpu(const char *isa, int threads, bool *skip)
{
    const char *old = getenv("MIXQ_CPU_ISA");
    char *saved = old ? strdup(old) : NULL;
    setenv("MIXQ_CPU_ISA", isa, 1);
    const struct be_ops *ops = be_registry_find("cpu");
    struct be_info info;
    ops->probe(&info);
    *skip = !info.usable;
    struct be_backend *be = NULL;
    if (info.usable && threads > 0 &&
        be_open("cpu", &(struct be_config){.n_threads = threads}, &be) < 0)
        be = NULL;
    if (saved)
        setenv("MIXQ_CPU_ISA", saved, 1);
    else
        unsetenv("MIXQ_CPU_ISA");
    free(saved);
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

/* ---- the activation quantizers of every path, bit for bit ---- */


/* Blocks of 32 that exercise Q8_0's rule: ties at +-k.5 (amax 127 makes d = 1), NaN, Inf,
 * -0, all zero, FLT_MAX, the smallest scale whose inverse is finite, one whose inverse
 * overflows; the rest random. */
static void fill_q8_cases(float *x, int64_t n)
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
        x[7 * 32 + j] = (float)(j % 3 - 1) * FLT_MAX;       /* block 7: FLT_MAX */
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

static bool same_bits_or_nan(float a, float b)
{
    return memcmp(&a, &b, sizeof(a)) == 0 || (isnan(a) && isnan(b));
}

/* quantize_q8 of `path` against the scalar path's, and finite blocks against ggml's Q8_0
 * quantizer; returns T_PASS or T_FAIL. */
static int check_q8(const char *path, const struct cpu_kern *k, const float *x, int64_t n,
                    const char *what)
{
    enum { NB_MAX = 64 };
    static float d1[NB_MAX], d2[NB_MAX];
    static int8_t q1[NB_MAX * 32], q2[NB_MAX * 32];
    static uint8_t u1[NB_MAX * 32];
    static int32_t s1[NB_MAX], s2[NB_MAX];
    static struct mq_block_q8_0 ggml[NB_MAX];
    MQ_ASSERT(n <= NB_MAX * 32);
    memset(u1, 0xA5, sizeof(u1));
    k->quantize_q8(x, n, d1, q1, u1, s1);
    cpu_kern_scalar.quantize_q8(x, n, d2, q2, NULL, s2);
    mq_dtype_get(MQ_DTYPE_Q8_0)->from_f32(x, ggml, n);
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        bool nan = false;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            nan |= isnan(xb[j]);
            amax = fmaxf(amax, fabsf(xb[j]));
        }
        float dd = amax / 127.0f;
        bool codes_defined = nan || isinf(amax) || dd == 0.0f || isfinite(1.0f / dd);
        T_CHECK_MSG(same_bits_or_nan(d1[b], d2[b]), "%s q8 %s block %lld: d %g vs scalar %g", path,
                    what, (long long)b, (double)d1[b], (double)d2[b]);
        T_CHECK_MSG(nan == isnan(d1[b]), "%s q8 %s block %lld: a NaN in the block must make d NaN",
                    path, what, (long long)b);
        if (!codes_defined) { /* 1/d overflowed: d is 0 in f16, the codes contribute 0 */
            T_CHECK(mq_f32_to_f16(d1[b]) == 0);
            continue;
        }
        T_CHECK_MSG(memcmp(q1 + b * 32, q2 + b * 32, 32) == 0 && s1[b] == s2[b],
                    "%s q8 %s block %lld: codes or sum differ from scalar's", path, what,
                    (long long)b);
        for (int j = 0; j < 32; j++)
            T_CHECK(u1[b * 32 + j] == (uint8_t)(q1[b * 32 + j] + 128));
        if (!nan) /* ggml's reference (which lets a NaN through unless last) */
            T_CHECK_MSG(memcmp(q1 + b * 32, ggml[b].qs, 32) == 0 &&
                            mq_f32_to_f16(d1[b]) == ggml[b].d,
                        "%s q8 %s block %lld: codes differ from ggml's quantizer", path, what,
                        (long long)b);
    }
    return T_PASS;
}

/* quantize_q8k of `path` against cpu_quantize_q8k_scalar (every block, bit for bit: the
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
    MQ_ASSERT(n <= NB_MAX * 256);
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
        T_CHECK_MSG(same_bits_or_nan(d1[b], d2[b]), "%s q8k %s block %lld: d %g vs scalar %g", path,
                    what, (long long)b, (double)d1[b], (double)d2[b]);
        T_CHECK_MSG(finite != isnan(d1[b]),
                    "%s q8k %s block %lld: NaN/Inf in the block must make "
                    "d NaN, and only then",
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
        T_CHECK_MSG(memcmp(&d1[b], &ggml[b].d, 4) == 0 &&
                        memcmp(q1 + b * 256, ggml[b].qs, 256) == 0,
                    "%s q8k %s block %lld: d %g, codes differ from ggml's quantizer (d %g)", path,
                    what, (long long)b, (double)d1[b], (double)ggml[b].d);
        for (int j = 0; j < 16; j++)
            T_CHECK(s1[b * 16 + j] == ggml[b].bsums[j]);
    }
    return T_PASS;
}

static int test_quantize_vs_scalar(void)
{
    enum { N = 256 * 16 };
    static float x[N];
    int ran = 0;
    for (int p = 0; p < N_KERN_PATHS; p++) {
        bool skip;
        open_cpu(kern_paths[p]->isa, 0, &skip);
        if (skip) {
            fprintf(stderr, "    path %s: not supported by this CPU, skipped\n", kern_paths[p]->isa);
            continue;
        }
        ran++;
        const struct cpu_kern *k = kern_paths[p];
        for (int kind = 0; kind <= FILL_DENORMAL + 1; kind++) {
            const char *what = kind <= FILL_DENORMAL ? "fill" : "cases";
            if (kind <= FILL_DENORMAL)
                fill(x, N, 31 + (unsigned)kind, (enum fill_kind)kind);
            else
                fill_q8_cases(x, 32 * 64);
            T_CHECK(check_q8(kern_paths[p]->isa, k, x, 32 * 64, what) == T_PASS);
            if (kind > FILL_DENORMAL)
                fill_q8k_cases(x, N);
            T_CHECK(check_q8k(kern_paths[p]->isa, k, x, N, what) == T_PASS);
        }
    }
    /* the rounding rules: Q8_0 half away from zero (0.5 -> 1, -0.5 -> -1, 1.5 -> 2),
     * Q8_K half to even on -x (iscale -1: 0.5 -> 0, 1.5 -> -2, 2.5 -> -2, -1.5 -> 2) */
    static float d[N / 32];
    static int8_t q[N];
    static int32_t sums[N / 16];
    fill_q8_cases(x, 32 * 64);
    cpu_kern_scalar.quantize_q8(x, 32 * 64, d, q, NULL, sums);
    T_CHECK(d[0] == 1.0f && q[16] == 1 && q[15] == -1 && q[17] == 2 && q[1] == -15);
    fill_q8k_cases(x, N);
    cpu_quantize_q8k_scalar(x, N, d, q, NULL, sums);
    T_CHECK(d[0] == -1.0f && x[4] == 0.5f && q[4] == 0 && x[5] == 1.5f && q[5] == -2 &&
            x[6] == 2.5f && q[6] == -2 && x[2] == -1.5f && q[2] == 2);
    T_CHECK(ran >= 1);
    return T_PASS;
}
/* The attention rows (dots, axpys) of every path that has them against loops over its own
 * dot and axpy, bit for bit (kern.h's contract): head sizes under, at and over a vector
 * and the 64 outputs axpys keeps in registers, rows strided as a KV cache's. */
static int test_attention_rows(void)
{
    enum { DMAX = 200, NMAX = 33 };
    const int64_t Ds[] = {1, 16, 17, 64, 80, 128, 200}, ns[] = {1, 5, 33};
    static float q[DMAX], kv[NMAX * (3 * DMAX + 5)], s1[NMAX], s2[NMAX], o1[DMAX], o2[DMAX];
    int ran = 0;
    for (int p = 0; p < N_KERN_PATHS; p++) {
        const struct cpu_kern *k = kern_paths[p];
        bool skip;
        open_cpu(kern_paths[p]->isa, 0, &skip);
        if (skip || !k->dots || !k->axpys)
            continue;
        ran++;
        for (size_t di = 0; di < sizeof(Ds) / sizeof(Ds[0]); di++)
            for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
                const int64_t D = Ds[di], n = ns[ni], stride = 3 * D + 5;
                fill(q, D, 41 + (unsigned)di, FILL_RANDOM);
                fill(kv, n * stride, 43 + (unsigned)ni, FILL_RANDOM);
                if (ni == 1)
                    kv[2 * stride] = NAN; /* a NaN score: the largest skips it */
                float mx1 = k->dots(q, kv, stride, n, D, 0.125f, s1), mx2 = -INFINITY;
                for (int64_t j = 0; j < n; j++) {
                    s2[j] = k->dot(q, kv + j * stride, D) * 0.125f;
                    mx2 = s2[j] > mx2 ? s2[j] : mx2;
                }
                T_CHECK_MSG(memcmp(s1, s2, (size_t)n * sizeof(float)) == 0 && same_bits_or_nan(mx1, mx2) &&
                                !isnan(mx1),
                            "%s dots D=%lld n=%lld", kern_paths[p]->isa, (long long)D, (long long)n);
                fill(o1, D, 47, FILL_RANDOM);
                memcpy(o2, o1, (size_t)D * sizeof(float));
                k->axpys(s1, kv, stride, n, D, o1);
                for (int64_t j = 0; j < n; j++)
                    k->axpy(s1[j], kv + j * stride, o2, D);
                T_CHECK_MSG(memcmp(o1, o2, (size_t)D * sizeof(float)) == 0, "%s axpys D=%lld n=%lld",
                            kern_paths[p]->isa, (long long)D, (long long)n);
            }
    }
    T_SKIP_IF(ran == 0, "no path with attention rows (dots, axpys) runs on this CPU");
    fprintf(stderr, "    %d paths' attention rows match their dot and axpy bit for bit\n", ran);
    return T_PASS;
}

/* The other ops of the forward pass, on every path, against ref. Shapes are odd on
 * purpose (not multiples of the vector width). Budget: 2e-6 relative (float sums in
 * another order, and the vectorized exp: relative error < 2e-7 per call). */
static int run_ops(struct be_backend *be, float *const in[4], float *out[5], int64_t D, int64_t H, int64_t Hkv,
                   int64_t M, int64_t pos0)
{
    int64_t E = D * H, KV = D * Hkv, T = pos0 + M;
    struct be_tensor x, g, q, k, v, y, a, rn, at, sw, ff;
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
    /* rope frequency factors (llama 3.1's rope_freqs) for the D - 2 rotated dimensions */
    float ffv[256];
    for (int64_t i = 0; i < (D - 2) / 2; i++)
        ffv[i] = 1.0f + 7.0f * (float)i / (float)((D - 2) / 2);
    T_CHECK(be_alloc(be, &ff, MQ_DTYPE_F32, 1, (int64_t[]){(D - 2) / 2}) == MQ_OK);
    T_CHECK(be_write(be, &ff, 0, ffv, (size_t)((D - 2) / 2) * 4) == MQ_OK);
    T_CHECK(be_view_reshape(&x, 3, (int64_t[]){D, H, M}, &q) == MQ_OK);
    struct be_tensor y3;
    T_CHECK(be_view_reshape(&y, 3, (int64_t[]){D, H, M}, &y3) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_RMSNORM, .src = {&x, &g}, .dst = &rn, .p.rmsnorm.eps = 1e-5f}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ROPE, .src = {&q, &ff}, .dst = &y3,
                                         .p.rope = {.pos0 = pos0, .n_rot = (int)D - 2, .theta = 10000.0f, .freq_scale = 1.0f,
                                                    .attn_factor = 1.19f}}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ATTENTION, .src = {&y3, &k, &v}, .dst = &at,
                                         .p.attention = {.pos0 = pos0, .n_kv = T, .scale = 0.3f}}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_SWIGLU, .src = {&x, &rn}, .dst = &sw}) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_ADD, .src = {&x, &rn}, .dst = &a}) == MQ_OK);
    struct be_tensor *outs[5] = {&rn, &y, &at, &sw, &a};
    for (int i = 0; i < 5; i++)
        T_CHECK(be_read(be, outs[i], 0, out[i], (size_t)(E * M) * 4) == MQ_OK);
    struct be_tensor *all[] = {&x, &g, &k, &v, &y, &a, &rn, &at, &sw, &ff};
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
    for (int i = 0; i < N_KERN_PATHS; i++) {
        bool skip;
        struct be_backend *cpu = open_cpu(kern_paths[i]->isa, 2, &skip);
        if (skip)
            continue;
        T_CHECK(cpu);
        T_CHECK(run_ops(cpu, in, co, D, H, HKV, M, POS0) == T_PASS);
        for (int op = 0; op < 5; op++)
            for (int j = 0; j < E * M; j++) {
                double d = fabs((double)co[op][j] - (double)ro[op][j]);
                T_CHECK_MSG(d <= 2e-6 * (1.0 + fabs((double)ro[op][j])), "%s %s[%d]: cpu %g ref %g", kern_paths[i]->isa,
                            names[op], j, (double)co[op][j], (double)ro[op][j]);
            }
        be_close(cpu);
    }
    return T_PASS;
}

/* The avx512amx path against avx512vnni, bit for bit: its tile-unit GEMM (q2_k, q3_k; 16
 * columns or more) makes the VNNI tiles' exact integer sums and finishes them with the same
 * float operations in the same order (kern_avx512.c). Every plan format (the two tables
 * differ in q8_0, q4_0, q2_k and q3_k only), N = 130 (a partial row group; an odd count of
 * groups per block), K = 1280 (a partial chunk) and 1312 (an odd count of 32-blocks, for
 * the formats it fits), M = 16 (one column tile), 37 (two, then 5 columns
 * for the VNNI tiles), 48 (two, then one) and 100; weights from the quantizer and random
 * bytes (every code and sub-scale), a NaN activation in one column. */
static int test_amx_matches_vnni(void)
{
    enum { KMAX = 1312, N = 130, MMAX = 100 };
    bool skip_amx, skip_vnni;
    struct be_backend *amx = open_cpu("avx512amx", 2, &skip_amx);
    T_SKIP_IF(skip_amx, "no AMX (CPUID AMX-TILE/AMX-INT8 and the kernel's XTILEDATA permission): the "
                        "avx512amx path is unavailable here");
    struct be_backend *vnni = open_cpu("avx512vnni", 2, &skip_vnni);
    T_CHECK(amx && vnni && !skip_vnni);
    static float w[KMAX * N], x[KMAX * MMAX], ya[N * MMAX], yv[N * MMAX];
    static char wq[KMAX * N * 4];
    fill(w, KMAX * N, 11, FILL_RANDOM);
    const int64_t Ms[] = {16, 37, 48, 100}, Ks[2] = {1280, 1312};
    int n_cmp = 0;
    for (int tk = 0; tk < 2 * MQ_DTYPE_COUNT; tk++) {
        const int t = tk / 2;
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
        const int64_t K = Ks[tk % 2];
        if (!tr->is_plan_format || !be_supports(vnni, BE_OP_MATMUL, (enum mq_dtype)t) || K % tr->block_elems)
            continue;
        fill(x, K * MMAX, 12, FILL_RANDOM);
        x[3 * K + 700] = NAN; /* column 3 */
        for (int wk = 0; wk < (tr->block_elems > 1 ? 2 : 1); wk++) {
            if (wk)
                t_random_blocks((enum mq_dtype)t, K, N, 13, wq);
            else
                tr->from_f32(w, wq, K * N);
            for (size_t mi = 0; mi < sizeof(Ms) / sizeof(Ms[0]); mi++) {
                const int64_t M = Ms[mi];
                struct be_backend *bes[2] = {amx, vnni};
                float *ys[2] = {ya, yv};
                for (int k = 0; k < 2; k++) {
                    struct be_tensor tw, tx, ty;
                    T_CHECK(be_upload(bes[k], &tw, (enum mq_dtype)t, 2, (int64_t[]){K, N}, wq, BE_USE_MATRIX) == MQ_OK);
                    T_CHECK(be_upload(bes[k], &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, M}, x, BE_USE_VECTOR) == MQ_OK);
                    T_CHECK(be_alloc(bes[k], &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M}) == MQ_OK);
                    T_CHECK(be_run(bes[k], &(struct be_node){.op = BE_OP_MATMUL, .src = {&tw, &tx}, .dst = &ty}) ==
                            MQ_OK);
                    T_CHECK(be_read(bes[k], &ty, 0, ys[k], (size_t)(N * M) * sizeof(float)) == MQ_OK);
                    be_free(bes[k], &tw);
                    be_free(bes[k], &tx);
                    be_free(bes[k], &ty);
                }
                for (int64_t i = 0; i < N * M; i++)
                    T_CHECK_MSG(same_bits_or_nan(ya[i], yv[i]), "%s (%s weights) M=%lld output %lld: amx %.9g vnni %.9g",
                                tr->name, wk ? "random-byte" : "quantized", (long long)M, (long long)i, ya[i], yv[i]);
                n_cmp++;
            }
        }
    }
    fprintf(stderr, "    %d matmuls of avx512amx and avx512vnni compared bit for bit\n", n_cmp);
    be_close(amx);
    be_close(vnni);
    return T_PASS;
}

/* NaN and Inf in activations: defined behaviour (cpu.h). The columns that hold them give
 * non-finite outputs on every path and format; the other columns are unaffected. */
static int test_nonfinite_paths(void)
{
    enum { K = 256, N = 19, M = 3 }; /* K: one block of every format */
    static float w[K * N], x[K * M], y[N * M], y_clean[N * M];
    static char wq[K * N * 4];
    fill(w, K * N, 7, FILL_RANDOM);
    for (int i = 0; i < N_KERN_PATHS; i++) {
        bool skip;
        struct be_backend *be = open_cpu(kern_paths[i]->isa, 2, &skip);
        if (skip)
            continue;
        T_CHECK(be);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
            if (!tr->is_plan_format)
                continue;
            if (!be_supports(be, BE_OP_MATMUL, (enum mq_dtype)t)) {
                fprintf(stderr, "    %s %s: unsupported (test_backend_ops fails it), skipped\n",
                        kern_paths[i]->isa, tr->name);
                continue;
            }
            tr->from_f32(w, wq, K * N);
            struct be_tensor tw, tx, ty;
            T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, N}, wq, BE_USE_MATRIX) == MQ_OK);
            T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
            T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M}) == MQ_OK);
            for (int pass = 0; pass < 2; pass++) {
                fill(x, K * M, 8, FILL_RANDOM);
                if (pass) {
                    x[5] = NAN;               /* column 0 */
                    x[2 * K + 40] = INFINITY; /* column 2 */
                }
                T_CHECK(be_write(be, &tx, 0, x, sizeof(x)) == MQ_OK);
                T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {&tw, &tx}, .dst = &ty}) == MQ_OK);
                T_CHECK(be_read(be, &ty, 0, pass ? y : y_clean, sizeof(y)) == MQ_OK);
            }
            for (int n = 0; n < N; n++) {
                T_CHECK_MSG(!isfinite(y[0 * N + n]) && !isfinite(y[2 * N + n]), "%s %s row %d", kern_paths[i]->isa, tr->name, n);
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
 * bundled model (2 chunks of 256 tokens), within 1e-5 relative for float formats, 2e-3
 * for integer formats and for bf16 with bf16-rounded activations. (Not fewer tokens under
 * sanitizers: the integer formats' differences are activation codes flipped by upstream
 * rounding, noise that averages out over the tokens; measured with 2 chunks up to 1.5e-3
 * (q6_k, scalar), with 1 chunk of 256 up to 2.2e-3 (q3_k, avx2), of 64 2.2e-3 (q2_k).)
 * Every path but avx512amx, whose matmuls are avx512vnni's bit for bit. */
static int test_forward_paths(void)
{
    /* under sanitizers (or MIXQ_TEST_QUICK=1) one format of each kernel family */
    bool quick = T_UNDER_ASAN || (getenv("MIXQ_TEST_QUICK") && atoi(getenv("MIXQ_TEST_QUICK")));
    struct mq_eval_config cfg = {.n_ctx = 256, .max_chunks = 2};
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
    for (int pass = -1; pass < N_KERN_PATHS; pass++) {
        bool skip = false;
        struct be_backend *be = NULL;
        /* avx512amx's matmuls are avx512vnni's bit for bit (cpu/amx_matches_vnni): its
         * forward pass would repeat avx512vnni's, 10 s here */
        if (pass >= 0 && !strcmp(kern_paths[pass]->isa, "avx512amx"))
            continue;
        if (pass < 0)
            T_CHECK(be_open("ref", NULL, &be) == MQ_OK);
        else
            be = open_cpu(kern_paths[pass]->isa, 2, &skip);
        if (skip)
            continue;
        T_CHECK(be);
        for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
            if (!t_format_in_run((enum mq_dtype)t, quick))
                continue;
            struct mq_plan *p;
            struct mq_eval *ev;
            T_CHECK(mq_plan_uniform(m, (enum mq_dtype)t, &p) == MQ_OK);
            if (pass >= 0 && !plan_supported(be, p)) {
                fprintf(stderr, "    %-10s %-6s unsupported (test_backend_ops fails it), skipped\n",
                        kern_paths[pass]->isa, mq_dtype_name((enum mq_dtype)t));
                mq_plan_free(p);
                continue;
            }
            T_CHECK(mq_eval_new(m, be, toks, n_toks, &cfg, &ev) == MQ_OK);
            struct mq_eval_result r;
            T_CHECK(mq_eval_plan(ev, p, NULL, &r) == MQ_OK);
            mq_eval_free(ev);
            if (pass < 0) {
                ref_ppl[t] = r.ppl;
            } else {
                /* integer formats: activation codes are re-quantized at every layer, so
                 * float-rounding differences upstream flip a few codes: 2e-3 */
                double tol = mq_dtype_get((enum mq_dtype)t)->is_quantized ? 2e-3
                             : t == MQ_DTYPE_BF16 && kern_paths[pass]->bf16_dot ? 2e-3
                                                                                                   : 1e-5;
                fprintf(stderr, "    %-10s %-6s ppl %.6f (ref %.6f)\n", kern_paths[pass]->isa,
                        mq_dtype_name((enum mq_dtype)t), r.ppl, ref_ppl[t]);
                T_CHECK_MSG(fabs(r.ppl / ref_ppl[t] - 1.0) < tol, "%s %s: ppl %.6f vs ref %.6f", kern_paths[pass]->isa,
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
    {"cpu/quantize_vs_scalar", test_quantize_vs_scalar},
    {"cpu/nonfinite_paths", test_nonfinite_paths},
    {"cpu/amx_matches_vnni", test_amx_matches_vnni},
    {"cpu/attention_rows", test_attention_rows},
    {"cpu/forward_paths_vs_ref", test_forward_paths},
    {"cpu/ops_paths_vs_ref", test_ops_paths},
    {NULL, NULL},
};
