/* backends/cpu/kern_avx2.c - AVX2 + FMA + F16C kernels on 8-row groups (kern.h layouts).
 *
 * The same tile scheme as the AVX-512 path with 8-lane vectors: one vector holds 8 rows
 * of one output column; up to 4 columns per tile (16 registers). Integer dot products use
 * vpmaddubsw (unsigned x signed byte pairs into 16 bits) and vpmaddwd:
 *   q8_0: |w| times x with w's sign applied (ggml's trick; no 16-bit saturation since
 *         2 * 128 * 127 < 32768)
 *   q4_0: codes 0..15 times x, minus 8 * sum x per block
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backends/cpu/kern.h"
#include "core/fp16.h"

#define R 8
#define CMAX 4

typedef __attribute__((aligned(1))) int32_t unaligned_i32;

static inline int32_t load_i32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void store_tile(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, const __m256 *acc)
{
    int64_t left = mm->N - g * R;
    for (int c = 0; c < C; c++) {
        float *y = mm->y + (m0 + c) * mm->N + g * R;
        if (left >= R) {
            _mm256_storeu_ps(y, acc[c]);
        } else {
            float tmp[R];
            _mm256_storeu_ps(tmp, acc[c]);
            memcpy(y, tmp, (size_t)left * sizeof(float));
        }
    }
}

#define LOAD_F32(wg, k) _mm256_loadu_ps((const float *)(wg) + (size_t)(k) * R)
#define LOAD_F16(wg, k) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)(wg) + (size_t)(k) * R)))

#define FLOAT_TILE(NAME, LOADW)                                                                   \
    static inline __attribute__((always_inline)) void NAME(const struct cpu_mm *mm, int64_t g,    \
                                                           int64_t m0, int C)                     \
    {                                                                                             \
        const int64_t K = mm->K;                                                                  \
        const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;                       \
        const float *x = mm->a->x + m0 * K;                                                       \
        __m256 acc[CMAX], acc2[CMAX];                                                             \
        for (int c = 0; c < CMAX; c++)                                                            \
            acc[c] = acc2[c] = _mm256_setzero_ps();                                               \
        int64_t k = 0;                                                                            \
        for (; k + 2 <= K; k += 2) {                                                              \
            __m256 w0 = LOADW(wg, k), w1 = LOADW(wg, k + 1);                                      \
            for (int c = 0; c < C; c++) {                                                         \
                acc[c] = _mm256_fmadd_ps(w0, _mm256_set1_ps(x[c * K + k]), acc[c]);               \
                acc2[c] = _mm256_fmadd_ps(w1, _mm256_set1_ps(x[c * K + k + 1]), acc2[c]);         \
            }                                                                                     \
        }                                                                                         \
        for (; k < K; k++) {                                                                      \
            __m256 w0 = LOADW(wg, k);                                                             \
            for (int c = 0; c < C; c++)                                                           \
                acc[c] = _mm256_fmadd_ps(w0, _mm256_set1_ps(x[c * K + k]), acc[c]);               \
        }                                                                                         \
        for (int c = 0; c < C; c++)                                                               \
            acc[c] = _mm256_add_ps(acc[c], acc2[c]);                                              \
        store_tile(mm, g, m0, C, acc);                                                            \
    }

FLOAT_TILE(tile_f32, LOAD_F32)
FLOAT_TILE(tile_f16, LOAD_F16)

static inline __attribute__((always_inline)) void tile_bf16(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    const int64_t K = mm->K;
    const __m256i *wg = (const __m256i *)((const char *)mm->w + (size_t)g * mm->group_bytes);
    const float *x = mm->a->x + m0 * K;
    const __m256i hi_mask = _mm256_set1_epi32((int)0xFFFF0000u);
    __m256 acc[CMAX], acc2[CMAX];
    for (int c = 0; c < CMAX; c++)
        acc[c] = acc2[c] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k += 2) {
        __m256i v = _mm256_loadu_si256(wg + k / 2);
        __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(v, hi_mask));
        for (int c = 0; c < C; c++) {
            acc[c] = _mm256_fmadd_ps(we, _mm256_set1_ps(x[c * K + k]), acc[c]);
            if (k + 1 < K)
                acc2[c] = _mm256_fmadd_ps(wo, _mm256_set1_ps(x[c * K + k + 1]), acc2[c]);
        }
    }
    for (int c = 0; c < C; c++)
        acc[c] = _mm256_add_ps(acc[c], acc2[c]);
    store_tile(mm, g, m0, C, acc);
}

static inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s)
{
    __m256i p16 = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

static inline __attribute__((always_inline)) void tile_q8_0(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    __m256 acc[CMAX];
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const char *blk = wg + (size_t)b * R * sizeof(struct mq_block_q8_0);
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        const __m256i *qs = (const __m256i *)(blk + R * 2);
        __m256i isum[CMAX];
        for (int c = 0; c < CMAX; c++)
            isum[c] = _mm256_setzero_si256();
        for (int q = 0; q < 8; q++) {
            __m256i w = _mm256_loadu_si256(qs + q);
            __m256i aw = _mm256_sign_epi8(w, w);
            for (int c = 0; c < C; c++) {
                __m256i xv = _mm256_set1_epi32(load_i32(a->xq + (m0 + c) * K + b * 32 + q * 4));
                isum[c] = dot_u8s8(isum[c], aw, _mm256_sign_epi8(xv, w));
            }
        }
        for (int c = 0; c < C; c++) {
            __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a->xd[(m0 + c) * nb + b]));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), scale, acc[c]);
        }
    }
    store_tile(mm, g, m0, C, acc);
}

static inline __attribute__((always_inline)) void tile_q4_0(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc[CMAX];
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const char *blk = wg + (size_t)b * R * sizeof(struct mq_block_q4_0);
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        const __m256i *qs = (const __m256i *)(blk + R * 2);
        __m256i isum[CMAX];
        for (int c = 0; c < CMAX; c++)
            isum[c] = _mm256_setzero_si256();
        for (int t = 0; t < 4; t++) {
            __m256i v = _mm256_loadu_si256(qs + t);
            __m256i lo = _mm256_and_si256(v, low4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
            for (int c = 0; c < C; c++) {
                const int8_t *xq = a->xq + (m0 + c) * K + b * 32 + t * 8;
                isum[c] = dot_u8s8(isum[c], lo, _mm256_set1_epi32(load_i32(xq)));
                isum[c] = dot_u8s8(isum[c], hi, _mm256_set1_epi32(load_i32(xq + 4)));
            }
        }
        for (int c = 0; c < C; c++) {
            __m256i s = _mm256_sub_epi32(isum[c], _mm256_set1_epi32(8 * a->xs[(m0 + c) * nb + b]));
            __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a->xd[(m0 + c) * nb + b]));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc[c]);
        }
    }
    store_tile(mm, g, m0, C, acc);
}

typedef void (*tile_fn)(const struct cpu_mm *mm, int64_t g, int64_t m0, int C);

static inline __attribute__((always_inline)) void run_tiles(const struct cpu_mm *mm, int64_t g0,
                                                            int64_t g1, tile_fn tile)
{
    const int64_t M = mm->a->M;
    for (int64_t g = g0; g < g1; g++) {
        int64_t m = 0;
        for (; m + 4 <= M; m += 4)
            tile(mm, g, m, 4);
        if (m + 2 <= M) {
            tile(mm, g, m, 2);
            m += 2;
        }
        if (m < M)
            tile(mm, g, m, 1);
    }
}

#define MM_ENTRY(NAME, TILE)                                                                      \
    static void NAME(const struct cpu_mm *mm, int64_t g0, int64_t g1) { run_tiles(mm, g0, g1, TILE); }

MM_ENTRY(mm_f32, tile_f32)
MM_ENTRY(mm_f16, tile_f16)
MM_ENTRY(mm_bf16, tile_bf16)
MM_ENTRY(mm_q8_0, tile_q8_0)
MM_ENTRY(mm_q4_0, tile_q4_0)

/* ---- activations to Q8_0, bit-identical to the scalar path ---- */

static inline __m256i round_half_away(__m256 v)
{
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
    __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    t = _mm256_add_ps(t, _mm256_and_ps(up, _mm256_or_ps(_mm256_set1_ps(1.0f), sign)));
    return _mm256_cvttps_epi32(t);
}

static void quantize_q8(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (int64_t b = 0; b < n / 32; b++) {
        __m256 v[4], mx = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + b * 32 + i * 8);
            mx = _mm256_max_ps(mx, _mm256_and_ps(v[i], absmask));
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[i], v[i], _CMP_UNORD_Q));
        }
        float m8[8];
        _mm256_storeu_ps(m8, mx);
        float amax = 0.0f;
        for (int i = 0; i < 8; i++)
            amax = amax > m8[i] ? amax : m8[i];
        if (_mm256_movemask_ps(nan))
            amax = NAN;
        float dd = amax / 127.0f;
        float id = dd != 0.0f ? 1.0f / dd : 0.0f;
        __m256i sum = _mm256_setzero_si256();
        int32_t codes[32];
        for (int i = 0; i < 4; i++) {
            __m256 p = _mm256_mul_ps(v[i], _mm256_set1_ps(id));
            p = _mm256_and_ps(p, _mm256_cmp_ps(p, p, _CMP_ORD_Q)); /* NaN -> 0 */
            /* infinite when the scale is subnormal (its f16 is 0): clamped, as on every path */
            p = _mm256_min_ps(_mm256_max_ps(p, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
            __m256i c = round_half_away(p);
            sum = _mm256_add_epi32(sum, c);
            _mm256_storeu_si256((__m256i *)(codes + 8 * i), c);
        }
        int32_t s8[8];
        _mm256_storeu_si256((__m256i *)s8, sum);
        int32_t total = 0;
        for (int i = 0; i < 32; i++) {
            q[b * 32 + i] = (int8_t)codes[i];
            if (u)
                u[b * 32 + i] = (uint8_t)(codes[i] + 128);
        }
        for (int i = 0; i < 8; i++)
            total += s8[i];
        s[b] = total;
        d[b] = mq_f16_to_f32(mq_f32_to_f16(dd));
    }
}

/* ---- vector helpers ---- */

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* exp as in the AVX-512 path (Cephes polynomial), 2^n built from the exponent bits */
static inline __m256 exp_ps(__m256 x)
{
    __m256 xc = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), _mm256_set1_ps(-87.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(88.7f), _CMP_GT_OQ));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

static void add(const float *a, const float *b, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++)
        y[i] = a[i] + b[i];
}

static void swiglu(const float *g, const float *u, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), gv));
        __m256 r = _mm256_div_ps(gv, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(r, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static double sumsq(const float *x, int64_t n)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
    double s = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return s;
}

static void scale_mul(const float *x, float scale, const float *w, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(scale)),
                                              _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

static float dot(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy(float s, const float *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_set1_ps(s), _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += s * x[i];
}

static float exp_sum(float *x, float mx, int64_t n)
{
    __m256 s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(mx)));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    float sum = hsum(s);
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    return sum;
}

const struct cpu_kern cpu_kern_avx2 = {
    .isa = "avx2",
    .rows = R,
    .matmul = {[MQ_DTYPE_F32] = mm_f32, [MQ_DTYPE_F16] = mm_f16, [MQ_DTYPE_BF16] = mm_bf16,
               [MQ_DTYPE_Q8_0] = mm_q8_0, [MQ_DTYPE_Q4_0] = mm_q4_0},
    .quantize_q8 = quantize_q8,
    .add = add,
    .swiglu = swiglu,
    .sumsq = sumsq,
    .scale_mul = scale_mul,
    .dot = dot,
    .axpy = axpy,
    .exp_sum = exp_sum,
};
