/* bench/limits.c - peak-throughput and bandwidth loops. Compiled with AVX-512 VNNI/BF16
 * flags; each function checks the CPU before using an instruction set. */
#include "bench/limits.h"

#include <immintrin.h>

static float sink_f;
static int sink_i;

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

double bench_read_bytes(const void *buf, size_t n)
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

#define ACC12(T, INIT) T a0 = INIT, a1 = INIT, a2 = INIT, a3 = INIT, a4 = INIT, a5 = INIT, \
                         a6 = INIT, a7 = INIT, a8 = INIT, a9 = INIT, a10 = INIT, a11 = INIT
#define APPLY12(OP) OP(a0); OP(a1); OP(a2); OP(a3); OP(a4); OP(a5); OP(a6); OP(a7); OP(a8); \
                    OP(a9); OP(a10); OP(a11)
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

double bench_fma_f32(int64_t iters, const char **isa)
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

double bench_dot_i8(int64_t iters, const char **isa)
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

double bench_dot_bf16(int64_t iters, const char **isa)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16")) {
        *isa = "avx512bf16 vdpbf16ps";
        return bf16dot(iters);
    }
    *isa = NULL;
    return 0;
}
