/* profiler/limits.c - peak-throughput and bandwidth loops, per architecture: x86-64
 * (AVX2/FMA, AVX-512, VNNI, BF16 through function target attributes), aarch64 (Advanced
 * SIMD, SDOT where the CPU has the dot-product extension), and portable C elsewhere. Each
 * function checks the CPU before using an instruction set. */
#include "profiler/limits.h"

#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "core/status.h"
#include "profiler/measure.h"

static float sink_f;
static int sink_i;

#define ACC12(T, INIT) T a0 = INIT, a1 = INIT, a2 = INIT, a3 = INIT, a4 = INIT, a5 = INIT, \
                         a6 = INIT, a7 = INIT, a8 = INIT, a9 = INIT, a10 = INIT, a11 = INIT
#define APPLY12(OP) OP(a0); OP(a1); OP(a2); OP(a3); OP(a4); OP(a5); OP(a6); OP(a7); OP(a8); \
                    OP(a9); OP(a10); OP(a11)

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static double read_avx2(const void *buf, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const __m256 *p = buf;
    for (size_t i = 0; i < n / 32; i += 4) {
        a0 = _mm256_add_ps(a0, p[i]);
        a1 = _mm256_add_ps(a1, p[i + 1]);
        a2 = _mm256_add_ps(a2, p[i + 2]);
        a3 = _mm256_add_ps(a3, p[i + 3]);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float t[8];
    _mm256_storeu_ps(t, s);
    return (double)(t[0] + t[7]);
}

__attribute__((target("avx512f"))) static double read_avx512(const void *buf, size_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const __m512 *p = buf;
    for (size_t i = 0; i < n / 64; i += 4) {
        a0 = _mm512_add_ps(a0, p[i]);
        a1 = _mm512_add_ps(a1, p[i + 1]);
        a2 = _mm512_add_ps(a2, p[i + 2]);
        a3 = _mm512_add_ps(a3, p[i + 3]);
    }
    return (double)_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

double prof_read_bytes(const void *buf, size_t n)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return read_avx512(buf, n);
    if (__builtin_cpu_supports("avx2"))
        return read_avx2(buf, n);
    const double *p = buf;
    double s = 0;
    for (size_t i = 0; i < n / 8; i++)
        s += p[i];
    return s;
}

/* makes the compiler treat the accumulators as changed each iteration, so it must do
 * every operation (no closed forms, no hoisting); emits no instruction itself */
#define OPAQUE12() __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), \
                                         "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11))

__attribute__((target("avx512f"))) static double fma512(int64_t iters)
{
    const __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    ACC12(__m512, _mm512_set1_ps(0.5f));
#define F(a) a = _mm512_fmadd_ps(a, x, y)
    for (int64_t i = 0; i < iters; i++) {
        APPLY12(F);
        OPAQUE12();
    }
#undef F
    __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    sink_f = _mm512_reduce_add_ps(s);
    return (double)iters * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma256(int64_t iters)
{
    const __m256 x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(0.9999999f);
    ACC12(__m256, _mm256_set1_ps(0.5f));
#define F(a) a = _mm256_fmadd_ps(a, x, y)
    for (int64_t i = 0; i < iters; i++) {
        APPLY12(F);
        OPAQUE12();
    }
#undef F
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a11));
    float t[8];
    _mm256_storeu_ps(t, s);
    sink_f = t[0] + (float)(a3[0] + a4[0] + a5[0] + a6[0] + a7[0] + a8[0] + a9[0] + a10[0]);
    return (double)iters * 12 * 8 * 2;
}

double prof_peak_fma_f32(int64_t iters, const char **isa)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *isa = "avx512 fma";
        return fma512(iters);
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *isa = "avx2 fma";
        return fma256(iters);
    }
    *isa = NULL;
    return 0;
}

__attribute__((target("avx512f,avx512vnni"))) static double vnni512(int64_t iters)
{
    const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
    ACC12(__m512i, _mm512_setzero_si512());
#define F(a) a = _mm512_dpbusd_epi32(a, x, y)
    for (int64_t i = 0; i < iters; i++) {
        APPLY12(F);
        OPAQUE12();
    }
#undef F
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
    sink_i = _mm512_reduce_add_epi32(s);
    return (double)iters * 12 * 64 * 2;
}

__attribute__((target("avx2"))) static double maddubs256(int64_t iters)
{
    const __m256i x = _mm256_set1_epi8(3), y = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
    ACC12(__m256i, _mm256_setzero_si256());
#define F(a) a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), ones))
    for (int64_t i = 0; i < iters; i++) {
        APPLY12(F);
        OPAQUE12();
    }
#undef F
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
    s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
    s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(a8, a9), _mm256_add_epi32(a10, a11)));
    sink_i = _mm256_extract_epi32(s, 0);
    return (double)iters * 12 * 32 * 2;
}

double prof_peak_dot_i8(int64_t iters, const char **isa)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni")) {
        *isa = "avx512vnni vpdpbusd";
        return vnni512(iters);
    }
    if (__builtin_cpu_supports("avx2")) {
        *isa = "avx2 vpmaddubsw+vpmaddwd";
        return maddubs256(iters);
    }
    *isa = NULL;
    return 0;
}

__attribute__((target("avx512f,avx512bf16"))) static double bf16dot(int64_t iters)
{
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3F80), y = (__m512bh)_mm512_set1_epi16(0x3F00);
    ACC12(__m512, _mm512_setzero_ps());
#define F(a) a = _mm512_dpbf16_ps(a, x, y)
    for (int64_t i = 0; i < iters; i++) {
        APPLY12(F);
        OPAQUE12();
    }
#undef F
    __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    sink_f = _mm512_reduce_add_ps(s);
    return (double)iters * 12 * 32 * 2;
}

double prof_peak_dot_bf16(int64_t iters, const char **isa)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16")) {
        *isa = "avx512bf16 vdpbf16ps";
        return bf16dot(iters);
    }
    *isa = NULL;
    return 0;
}

#elif defined(__aarch64__)
#include <arm_neon.h>
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

double prof_read_bytes(const void *buf, size_t n)
{
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    const float *p = buf;
    for (size_t i = 0; i + 16 <= n / 4; i += 16) {
        a0 = vaddq_f32(a0, vld1q_f32(p + i));
        a1 = vaddq_f32(a1, vld1q_f32(p + i + 4));
        a2 = vaddq_f32(a2, vld1q_f32(p + i + 8));
        a3 = vaddq_f32(a3, vld1q_f32(p + i + 12));
    }
    return (double)vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
}

/* the accumulators live in vector registers ("w"), changed each iteration as far as the
 * compiler knows */
#define OPAQUE12() __asm__ volatile("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3), "+w"(a4), "+w"(a5), \
                                         "+w"(a6), "+w"(a7), "+w"(a8), "+w"(a9), "+w"(a10), "+w"(a11))

double prof_peak_fma_f32(int64_t iters, const char **isa)
{
    const float32x4_t x = vdupq_n_f32(1.0000001f), y = vdupq_n_f32(0.9999999f);
    ACC12(float32x4_t, vdupq_n_f32(0.5f));
#define F(a) a = vfmaq_f32(a, x, y)
    for (int64_t i = 0; i < iters; i++) {
        APPLY12(F);
        OPAQUE12();
    }
#undef F
    float32x4_t s = vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3));
    s = vaddq_f32(s, vaddq_f32(vaddq_f32(a4, a5), vaddq_f32(a6, a7)));
    s = vaddq_f32(s, vaddq_f32(vaddq_f32(a8, a9), vaddq_f32(a10, a11)));
    sink_f = vaddvq_f32(s);
    *isa = "neon fmla";
    return (double)iters * 12 * 4 * 2;
}

__attribute__((target("arch=armv8.2-a+dotprod"))) static double sdot128(int64_t iters)
{
    const int8x16_t x = vdupq_n_s8(3), y = vdupq_n_s8(-2);
    ACC12(int32x4_t, vdupq_n_s32(0));
#define F(a) a = vdotq_s32(a, x, y)
    for (int64_t i = 0; i < iters; i++) {
        APPLY12(F);
        OPAQUE12();
    }
#undef F
    int32x4_t s = vaddq_s32(vaddq_s32(a0, a1), vaddq_s32(a2, a3));
    s = vaddq_s32(s, vaddq_s32(vaddq_s32(a4, a5), vaddq_s32(a6, a7)));
    s = vaddq_s32(s, vaddq_s32(vaddq_s32(a8, a9), vaddq_s32(a10, a11)));
    sink_i = vaddvq_s32(s);
    return (double)iters * 12 * 16 * 2;
}

static double smull128(int64_t iters)
{
    const int8x8_t x = vdup_n_s8(3), y = vdup_n_s8(-2);
    ACC12(int32x4_t, vdupq_n_s32(0));
#define F(a) a = vpadalq_s16(a, vmull_s8(x, y))
    for (int64_t i = 0; i < iters; i++) {
        APPLY12(F);
        OPAQUE12();
    }
#undef F
    int32x4_t s = vaddq_s32(vaddq_s32(a0, a1), vaddq_s32(a2, a3));
    s = vaddq_s32(s, vaddq_s32(vaddq_s32(a4, a5), vaddq_s32(a6, a7)));
    s = vaddq_s32(s, vaddq_s32(vaddq_s32(a8, a9), vaddq_s32(a10, a11)));
    sink_i = vaddvq_s32(s);
    return (double)iters * 12 * 8 * 2;
}

double prof_peak_dot_i8(int64_t iters, const char **isa)
{
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) {
        *isa = "neon sdot";
        return sdot128(iters);
    }
    *isa = "neon smull+sadalp";
    return smull128(iters);
}

double prof_peak_dot_bf16(int64_t iters, const char **isa)
{
    (void)iters;
    *isa = NULL; /* BFDOT is not measured (no kernel of mixq uses it on aarch64) */
    return 0;
}

#else /* portable C: the compiler vectorizes what it can */

double prof_read_bytes(const void *buf, size_t n)
{
    const double *p = buf;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

double prof_peak_fma_f32(int64_t iters, const char **isa)
{
    (void)iters;
    *isa = NULL;
    return 0;
}

double prof_peak_dot_i8(int64_t iters, const char **isa)
{
    (void)iters;
    *isa = NULL;
    return 0;
}

double prof_peak_dot_bf16(int64_t iters, const char **isa)
{
    (void)iters;
    *isa = NULL;
    return 0;
}
#endif

/* ---- the limits, measured with a pool of 1 and n threads ---- */

#define LIMITS_READ_BYTES ((size_t)512 << 20)

struct read_job {
    const char *buf;
    size_t n;
    double sink;
};

static void read_part(void *arg, int ith, int nth)
{
    struct read_job *j = arg;
    int64_t lo, hi;
    mq_pool_split((int64_t)(j->n / 4096), ith, nth, &lo, &hi);
    double s = prof_read_bytes(j->buf + (size_t)lo * 4096, (size_t)(hi - lo) * 4096);
    if (ith == 0)
        j->sink = s;
}

struct peak_job {
    int kind; /* 0 fma, 1 i8, 2 bf16 */
    int64_t iters;
    double ops;
    const char *isa;
};

static void peak_part(void *arg, int ith, int nth)
{
    struct peak_job *j = arg;
    const char *isa = NULL;
    double ops = j->kind == 0 ? prof_peak_fma_f32(j->iters, &isa)
                 : j->kind == 1 ? prof_peak_dot_i8(j->iters, &isa)
                                : prof_peak_dot_bf16(j->iters, &isa);
    if (ith == 0) {
        j->ops = ops * nth;
        j->isa = isa;
    }
}

struct limits_run {
    struct mq_pool *pool;
    mq_pool_fn fn;
    void *job;
};

static int limits_once(void *arg)
{
    struct limits_run *r = arg;
    mq_pool_run(r->pool, r->fn, r->job);
    return 0;
}

int prof_limits_measure(int threads, struct prof_limits *L)
{
    memset(L, 0, sizeof(*L));
    char *buf = aligned_alloc(4096, LIMITS_READ_BYTES);
    if (!buf)
        return mq_error(MQ_ENOMEM, "cannot allocate the %zu MiB bandwidth buffer", LIMITS_READ_BYTES >> 20);
    for (size_t i = 0; i < LIMITS_READ_BYTES; i += 4096)
        memset(buf + i, (int)(i >> 12) & 0x3F, 4096);
    L->threads[0] = 1;
    L->threads[1] = threads;
    int rc = MQ_OK;
    for (int t = 0; t < 2 && rc == MQ_OK; t++) {
        struct mq_pool *pool;
        if ((rc = mq_pool_new(L->threads[t], &pool)) < 0)
            break;
        struct read_job rj = {.buf = buf, .n = LIMITS_READ_BYTES};
        struct limits_run run = {.pool = pool, .fn = read_part, .job = &rj};
        struct prof_stats st;
        rc = prof_measure(limits_once, &run, &(struct prof_config){.min_reps = 7, .max_seconds = 2}, &st);
        L->read_gbs[t] = rc == MQ_OK ? (double)LIMITS_READ_BYTES / st.median_ns : 0;
        for (int kind = 0; kind < 3 && rc == MQ_OK; kind++) {
            struct peak_job pj = {.kind = kind, .iters = 2000000};
            run.fn = peak_part;
            run.job = &pj;
            rc = prof_measure(limits_once, &run, &(struct prof_config){.min_reps = 5, .max_seconds = 1}, &st);
            double g = pj.isa ? pj.ops / st.median_ns : 0;
            if (kind == 0) {
                L->fma_gflops[t] = g;
                L->fma_isa = pj.isa;
            } else if (kind == 1) {
                L->i8_gops[t] = g;
                L->i8_isa = pj.isa;
            } else {
                L->bf16_gflops[t] = g;
                L->bf16_isa = pj.isa;
            }
        }
        mq_pool_free(pool);
    }
    free(buf);
    return rc;
}
