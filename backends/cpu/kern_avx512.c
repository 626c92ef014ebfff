/* backends/cpu/kern_avx512.c - AVX-512 kernels on 16-row groups (kern.h layouts).
 *
 * Compiled twice: as the "avx512" path (F/BW/VL/DQ + FMA + F16C; integer dot products
 * with vpmaddubsw) and, with CPU_VNNI defined, as the "avx512vnni" path (vpdpbusd for
 * integer dot products and, when CPU_BF16 is also defined, vdpbf16ps for bf16 weights).
 *
 * Every matmul kernel computes a 16-row x C-column tile: one vector holds 16 rows of
 * one output column, so a weight vector loaded once serves C columns and the activation
 * of a column is a broadcast. Integer formats accumulate a block (32 weights) in int32,
 * then scale by d_w (16 rows) * d_x (the column) into float accumulators.
 *
 *   q8_0 (VNNI):  sum (x + 128) * w over the block, minus 128 * sum w (computed with the
 *                 same instruction against a vector of ones), since vpdpbusd multiplies
 *                 unsigned by signed bytes
 *   q4_0:         codes 0..15 (unsigned) times x (signed), minus 8 * sum x (carried with
 *                 the activations)
 *   q8_0 (no VNNI): |w| times x with w's sign (vpmaddubsw pairs, then vpmaddwd)
 *
 * From 8 columns on (prefill), q8_0, q4_0 and f16 walk a row group in K chunks (32
 * blocks, or 256 values for f16) so that the chunk's weights stay in L1 across all column
 * tiles; per chunk, what depends only on the weights is made once (VNNI q8_0's 128 * sum w
 * per block, f16 widened to f32), and tiles carry their float sums through y between
 * chunks, so every output gets the same operations in the same order as one pass over K
 * (bit-identical to it). Integer corrections seed the int32 sums instead of being
 * subtracted after (same int32). Loops over columns and quads are unrolled by pragma: the
 * tiles' register arrays must not live in memory.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backends/cpu/kern.h"
#include "core/fp16.h"

#define R 16

#ifdef CPU_VNNI
#define KERN cpu_kern_avx512vnni
#define ISA_NAME "avx512vnni"
#else
#define KERN cpu_kern_avx512
#define ISA_NAME "avx512"
#endif

static inline __mmask16 row_mask(const struct cpu_mm *mm, int64_t g)
{
    int64_t left = mm->N - g * R;
    return left >= R ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

static inline void store_tile(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, const __m512 *acc)
{
    __mmask16 mask = row_mask(mm, g);
    for (int c = 0; c < C; c++)
        _mm512_mask_storeu_ps(mm->y + (m0 + c) * mm->N + g * R, mask, acc[c]);
}

static inline float bcast_f(const float *p) { return *p; }

/* ---- float formats: k-major groups; w(k) is a vector of 16 rows ---- */

#define FLOAT_TILE(NAME, LOADW)                                                                   \
    static inline __attribute__((always_inline)) void NAME(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)                        \
    {                                                                                             \
        const int64_t K = mm->K;                                                                  \
        const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;                       \
        const float *x = mm->a->x + m0 * K;                                                       \
        __m512 acc[8], acc2[8];                                                                   \
        for (int c = 0; c < 8; c++)                                                               \
            acc[c] = acc2[c] = _mm512_setzero_ps();                                               \
        int64_t k = 0;                                                                            \
        if (C <= 2) { /* few columns: two k streams to hide FMA latency */                       \
            for (; k + 2 <= K; k += 2) {                                                          \
                __m512 w0 = LOADW(wg, k), w1 = LOADW(wg, k + 1);                                  \
                for (int c = 0; c < C; c++) {                                                     \
                    acc[c] = _mm512_fmadd_ps(w0, _mm512_set1_ps(bcast_f(x + c * K + k)), acc[c]); \
                    acc2[c] = _mm512_fmadd_ps(w1, _mm512_set1_ps(bcast_f(x + c * K + k + 1)), acc2[c]); \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        for (; k < K; k++) {                                                                      \
            __m512 w0 = LOADW(wg, k);                                                             \
            for (int c = 0; c < C; c++)                                                           \
                acc[c] = _mm512_fmadd_ps(w0, _mm512_set1_ps(bcast_f(x + c * K + k)), acc[c]);     \
        }                                                                                         \
        for (int c = 0; c < C; c++)                                                               \
            acc[c] = _mm512_add_ps(acc[c], acc2[c]);                                              \
        store_tile(mm, g, m0, C, acc);                                                            \
    }

#define LOAD_F32(wg, k) _mm512_loadu_ps((const float *)(wg) + (size_t)(k) * R)
#define LOAD_F16(wg, k) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)(wg) + (size_t)(k) * R)))

FLOAT_TILE(tile_f32, LOAD_F32)
FLOAT_TILE(tile_f16, LOAD_F16)

#ifndef CPU_BF16
/* bf16 widened to f32: a 64-byte load holds (k, k+1) pairs of 16 rows */
static inline __attribute__((always_inline)) void tile_bf16(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    const int64_t K = mm->K;
    const __m512i *wg = (const __m512i *)((const char *)mm->w + (size_t)g * mm->group_bytes);
    const float *x = mm->a->x + m0 * K;
    const __m512i hi_mask = _mm512_set1_epi32((int)0xFFFF0000u);
    __m512 acc[8], acc2[8];
    for (int c = 0; c < 8; c++)
        acc[c] = acc2[c] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 2) {
        __m512i v = _mm512_loadu_si512(wg + k / 2);
        __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
        __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));
        for (int c = 0; c < C; c++) {
            acc[c] = _mm512_fmadd_ps(we, _mm512_set1_ps(x[c * K + k]), acc[c]);
            if (k + 1 < K)
                acc2[c] = _mm512_fmadd_ps(wo, _mm512_set1_ps(x[c * K + k + 1]), acc2[c]);
        }
    }
    for (int c = 0; c < C; c++)
        acc[c] = _mm512_add_ps(acc[c], acc2[c]);
    store_tile(mm, g, m0, C, acc);
}
#endif

#ifdef CPU_BF16
/* bf16 dot products: activations rounded to bf16 (mm->a->xb, pairs), vdpbf16ps adds
 * w_k * x_k + w_k+1 * x_k+1 per lane. */
static inline __attribute__((always_inline)) void tile_bf16_dot(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    const int64_t K2 = (mm->K + 1) / 2;
    const __m512i *wg = (const __m512i *)((const char *)mm->w + (size_t)g * mm->group_bytes);
    const uint32_t *xb = (const uint32_t *)(const void *)mm->a->xb + m0 * K2;
    __m512 acc[8], acc2[8];
    for (int c = 0; c < 8; c++)
        acc[c] = acc2[c] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 2 <= K2; k += 2) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(wg + k), w1 = (__m512bh)_mm512_loadu_si512(wg + k + 1);
        for (int c = 0; c < C; c++) {
            acc[c] = _mm512_dpbf16_ps(acc[c], w0, (__m512bh)_mm512_set1_epi32((int)xb[c * K2 + k]));
            acc2[c] = _mm512_dpbf16_ps(acc2[c], w1, (__m512bh)_mm512_set1_epi32((int)xb[c * K2 + k + 1]));
        }
    }
    for (; k < K2; k++) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(wg + k);
        for (int c = 0; c < C; c++)
            acc[c] = _mm512_dpbf16_ps(acc[c], w0, (__m512bh)_mm512_set1_epi32((int)xb[c * K2 + k]));
    }
    for (int c = 0; c < C; c++)
        acc[c] = _mm512_add_ps(acc[c], acc2[c]);
    store_tile(mm, g, m0, C, acc);
}
#endif

/* Column tiling: 8 columns at a time, then 4, 2, 1, of one row group over units [k0, k1)
 * of K (blocks or k; the chunked drivers below). The tile functions take C as a run-time
 * value but are inlined per call site with a constant (gcc -O2 still keeps loops over c
 * rolled unless told: see UNROLL below). */
typedef void (*ktile_fn)(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, int64_t k0, int64_t k1, const void *aux);

static inline __attribute__((always_inline)) void run_cols(const struct cpu_mm *mm, int64_t g, int64_t k0, int64_t k1, const void *aux, ktile_fn tile)
{
    const int64_t M = mm->a->M;
    int64_t m = 0;
    for (; m + 8 <= M; m += 8)
        tile(mm, g, m, 8, k0, k1, aux);
    if (m + 4 <= M) {
        tile(mm, g, m, 4, k0, k1, aux);
        m += 4;
    }
    if (m + 2 <= M) {
        tile(mm, g, m, 2, k0, k1, aux);
        m += 2;
    }
    if (m < M)
        tile(mm, g, m, 1, k0, k1, aux);
}

/* The float tiles run over all of K in one call: as ktile_fn, k0, k1 and aux unused. */
#define WHOLE_K(TILE)                                                                             \
    static inline __attribute__((always_inline)) void TILE##_k(const struct cpu_mm *mm, int64_t g, int64_t m0, \
                                                               int C, int64_t k0, int64_t k1, const void *aux) \
    {                                                                                             \
        (void)k0, (void)k1, (void)aux;                                                            \
        TILE(mm, g, m0, C);                                                                       \
    }

#define MM_ENTRY(NAME, TILE)                                                                      \
    WHOLE_K(TILE)                                                                                 \
    static void NAME(const struct cpu_mm *mm, int64_t g0, int64_t g1)                             \
    {                                                                                             \
        for (int64_t g = g0; g < g1; g++)                                                         \
            run_cols(mm, g, 0, mm->K, NULL, TILE##_k);                                            \
    }

MM_ENTRY(mm_f32, tile_f32)
#ifdef CPU_BF16
MM_ENTRY(mm_bf16_dot, tile_bf16_dot)
#else
MM_ENTRY(mm_bf16, tile_bf16)
#endif
WHOLE_K(tile_f16)

/* ---- integer formats ---- */

static inline int32_t load_i32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#ifndef CPU_VNNI
/* sum over 4-byte groups of u[i] * s[i] into 32-bit lanes (no saturation for |products|
 * the callers produce: 2 * 255 * 127 would saturate, 2 * 127 * 127 and 2 * 15 * 127 do not) */
static inline __m512i dot_u8s8(__m512i acc, __m512i u, __m512i s)
{
    __m512i p16 = _mm512_maddubs_epi16(u, s);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p16, _mm512_set1_epi16(1)));
}
#endif

/* ---- matrix-matrix driver: K chunks of a row group against all columns ----
 *
 * A group is processed one K chunk at a time: the chunk's weights (16 rows x KC_INT
 * blocks, or KC_F16 values) stay in L1 while every column tile runs over them, and what
 * depends only on the weights is prepared once per chunk into a small buffer (aux): the
 * VNNI q8_0 correction -128 * sum(w) per block, the f16 weights widened to f32. A tile
 * resumes its accumulators from y after the first chunk, so each output sees the same
 * sequence of float operations as an unchunked pass over K. */
#define KC_INT 32   /* integer formats: blocks (of 32 weights) per chunk */
#define KC_F16 256  /* f16: k per chunk (16 KiB of f32 weights) */
#define UNROLL _Pragma("GCC unroll 16")

/* k0 == 0: zero; else the tile's partial sums from y (padding rows read as zero) */
static inline __attribute__((always_inline)) void acc_load(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, bool first, __m512 *acc)
{
    __mmask16 mask = row_mask(mm, g);
    UNROLL
    for (int c = 0; c < C; c++)
        acc[c] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, mm->y + (m0 + c) * mm->N + g * R);
}

/* q8_0 over blocks [b0, b1); aux (VNNI): -128 * sum(w) per block of the chunk, 16 rows,
 * or NULL to compute it in the tile */
static inline __attribute__((always_inline)) void tile_q8_0(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, int64_t b0, int64_t b1, const void *aux)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    __m512 acc[8];
    acc_load(mm, g, m0, C, b0 == 0, acc);
#ifdef CPU_VNNI
    const __m512i *nwsum = aux;
#else
    (void)aux;
#endif
    for (int64_t b = b0; b < b1; b++) {
        const char *blk = wg + (size_t)b * R * sizeof(struct mq_block_q8_0);
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512i *qs = (const __m512i *)(blk + R * 2);
        __m512i isum[8];
#ifdef CPU_VNNI
        /* starting from the correction gives the same int32 as subtracting it after */
        __m512i corr;
        if (nwsum) {
            corr = _mm512_load_si512(nwsum + (b - b0));
        } else { /* few columns: no per-chunk pass over the weights */
            const __m512i ones = _mm512_set1_epi8(1);
            corr = _mm512_setzero_si512();
            UNROLL
            for (int q = 0; q < 8; q++)
                corr = _mm512_dpbusd_epi32(corr, ones, _mm512_loadu_si512(qs + q));
            corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(corr, 7));
        }
        UNROLL
        for (int c = 0; c < C; c++)
            isum[c] = corr;
        UNROLL
        for (int q = 0; q < 8; q++) {
            __m512i w = _mm512_loadu_si512(qs + q);
            UNROLL
            for (int c = 0; c < C; c++)
                isum[c] = _mm512_dpbusd_epi32(
                    isum[c], _mm512_set1_epi32(load_i32(a->xu + (m0 + c) * K + b * 32 + q * 4)), w);
        }
#else
        UNROLL
        for (int c = 0; c < C; c++)
            isum[c] = _mm512_setzero_si512();
        UNROLL
        for (int q = 0; q < 8; q++) {
            __m512i w = _mm512_loadu_si512(qs + q);
            __m512i aw = _mm512_abs_epi8(w);
            __mmask64 neg = _mm512_movepi8_mask(w);
            UNROLL
            for (int c = 0; c < C; c++) {
                __m512i xv = _mm512_set1_epi32(load_i32(a->xq + (m0 + c) * K + b * 32 + q * 4));
                xv = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
                isum[c] = dot_u8s8(isum[c], aw, xv);
            }
        }
#endif
        UNROLL
        for (int c = 0; c < C; c++) {
            __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(a->xd[(m0 + c) * nb + b]));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), scale, acc[c]);
        }
    }
    store_tile(mm, g, m0, C, acc);
}

static inline __attribute__((always_inline)) void tile_q4_0(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, int64_t b0, int64_t b1, const void *aux)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    (void)aux;
    __m512 acc[8];
    acc_load(mm, g, m0, C, b0 == 0, acc);
    for (int64_t b = b0; b < b1; b++) {
        const char *blk = wg + (size_t)b * R * sizeof(struct mq_block_q4_0);
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512i *qs = (const __m512i *)(blk + R * 2);
        __m512i isum[8];
        /* starting from -8 * sum(x) gives the same int32 as subtracting it after */
        UNROLL
        for (int c = 0; c < C; c++)
            isum[c] = _mm512_set1_epi32(-8 * a->xs[(m0 + c) * nb + b]);
        UNROLL
        for (int t = 0; t < 4; t++) {
            __m512i v = _mm512_loadu_si512(qs + t);
            __m512i lo = _mm512_and_si512(v, low4);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
            UNROLL
            for (int c = 0; c < C; c++) {
                const int8_t *xq = a->xq + (m0 + c) * K + b * 32 + t * 8;
#ifdef CPU_VNNI
                isum[c] = _mm512_dpbusd_epi32(isum[c], lo, _mm512_set1_epi32(load_i32(xq)));
                isum[c] = _mm512_dpbusd_epi32(isum[c], hi, _mm512_set1_epi32(load_i32(xq + 4)));
#else
                isum[c] = dot_u8s8(isum[c], lo, _mm512_set1_epi32(load_i32(xq)));
                isum[c] = dot_u8s8(isum[c], hi, _mm512_set1_epi32(load_i32(xq + 4)));
#endif
            }
        }
        UNROLL
        for (int c = 0; c < C; c++) {
            __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(a->xd[(m0 + c) * nb + b]));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), scale, acc[c]);
        }
    }
    store_tile(mm, g, m0, C, acc);
}

/* f16 over k [k0, k1); aux: the chunk's weights widened to f32, [k - k0][16 rows] */
static inline __attribute__((always_inline)) void tile_f16_chunk(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, int64_t k0, int64_t k1, const void *aux)
{
    const int64_t K = mm->K;
    const float *wf = (const float *)aux - k0 * R;
    const float *x = mm->a->x + m0 * K;
    __m512 acc[8];
    acc_load(mm, g, m0, C, k0 == 0, acc);
    for (int64_t k = k0; k < k1; k++) {
        __m512 w0 = _mm512_load_ps(wf + k * R);
        UNROLL
        for (int c = 0; c < C; c++)
            acc[c] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[c * K + k]), acc[c]);
    }
    store_tile(mm, g, m0, C, acc);
}

#define Q_TILE_ENTRY(NAME, TILE, BLOCK)                                                           \
    static void NAME(const struct cpu_mm *mm, int64_t g0, int64_t g1)                             \
    {                                                                                             \
        const int64_t nb = mm->K / 32;                                                            \
        if (mm->a->M < 8) { /* decode: one pass over K, as memory-bound as it gets */             \
            for (int64_t g = g0; g < g1; g++)                                                     \
                run_cols(mm, g, 0, nb, NULL, TILE);                                               \
            return;                                                                               \
        }                                                                                         \
        for (int64_t g = g0; g < g1; g++) {                                                       \
            const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;                   \
            for (int64_t b0 = 0; b0 < nb; b0 += KC_INT) {                                         \
                int64_t b1 = b0 + KC_INT < nb ? b0 + KC_INT : nb;                                 \
                __m512i aux[KC_INT];                                                              \
                prep_##BLOCK(wg, b0, b1, aux);                                                    \
                run_cols(mm, g, b0, b1, aux, TILE);                                               \
            }                                                                                     \
        }                                                                                         \
    }

static inline void prep_q8_0(const char *wg, int64_t b0, int64_t b1, __m512i *aux)
{
#ifdef CPU_VNNI
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t b = b0; b < b1; b++) {
        const __m512i *qs = (const __m512i *)(wg + (size_t)b * R * sizeof(struct mq_block_q8_0) + R * 2);
        __m512i s = _mm512_setzero_si512();
        UNROLL
        for (int q = 0; q < 8; q++)
            s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(qs + q));
        aux[b - b0] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 7));
    }
#else
    (void)wg, (void)b0, (void)b1, (void)aux;
#endif
}

static inline void prep_q4_0(const char *wg, int64_t b0, int64_t b1, __m512i *aux)
{
    (void)wg, (void)b0, (void)b1, (void)aux;
}

Q_TILE_ENTRY(mm_q8_0, tile_q8_0, q8_0)
Q_TILE_ENTRY(mm_q4_0, tile_q4_0, q4_0)

/* f16: few columns (decode) keep the direct tile; from 8 columns on, each K chunk of a
 * group is widened once and reused by the 8- and 4-column tiles. Results are those of
 * the direct tile bit for bit (its 8- and 4-column tiles use one k stream too). */
static void mm_f16(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    if (mm->a->M < 8) {
        for (int64_t g = g0; g < g1; g++)
            run_cols(mm, g, 0, mm->K, NULL, tile_f16_k);
        return;
    }
    const int64_t K = mm->K, M = mm->a->M, M4 = M / 4 * 4;
    float wf[KC_F16 * R] __attribute__((aligned(64)));
    for (int64_t g = g0; g < g1; g++) {
        const uint16_t *wg = (const uint16_t *)((const char *)mm->w + (size_t)g * mm->group_bytes);
        for (int64_t k0 = 0; k0 < K; k0 += KC_F16) {
            int64_t k1 = k0 + KC_F16 < K ? k0 + KC_F16 : K;
            for (int64_t k = k0; k < k1; k++)
                _mm512_store_ps(wf + (k - k0) * R,
                                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wg + k * R))));
            int64_t m = 0;
            for (; m + 8 <= M4; m += 8)
                tile_f16_chunk(mm, g, m, 8, k0, k1, wf);
            if (m < M4)
                tile_f16_chunk(mm, g, m, 4, k0, k1, wf);
        }
        /* the last M % 4 columns keep the direct tile's two k streams (same sums as M < 8) */
        int64_t m = M4;
        if (m + 2 <= M) {
            tile_f16(mm, g, m, 2);
            m += 2;
        }
        if (m < M)
            tile_f16(mm, g, m, 1);
    }
}

/* ---- activations to Q8_0: ggml's rule, bit-identical to the scalar path ---- */

/* roundf (half away from zero) for |v| <= 127.5, vectorized */
static inline __m512i round_half_away(__m512 v)
{
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
    __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512 one = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
                                                      _mm512_and_si512(_mm512_castps_si512(v),
                                                                       _mm512_set1_epi32((int)0x80000000u))));
    t = _mm512_mask_add_ps(t, up, t, one);
    return _mm512_cvttps_epi32(t);
}

static void quantize_q8(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s)
{
    for (int64_t b = 0; b < n / 32; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        __mmask16 nan = _mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        if (nan)
            amax = NAN;
        float dd = amax / 127.0f;
        float id = dd != 0.0f ? 1.0f / dd : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512 p0 = _mm512_mul_ps(v0, vid), p1 = _mm512_mul_ps(v1, vid);
        /* NaN products (NaN or Inf input) become code 0, as in the scalar path */
        p0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p0, p0, _CMP_ORD_Q), p0);
        p1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p1, p1, _CMP_ORD_Q), p1);
        /* infinite when the scale is subnormal (its f16 is 0): clamped, as on every path */
        const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
        p0 = _mm512_min_ps(_mm512_max_ps(p0, nlim), lim);
        p1 = _mm512_min_ps(_mm512_max_ps(p1, nlim), lim);
        __m512i i0 = round_half_away(p0), i1 = round_half_away(p1);
        __m128i c0 = _mm512_cvtsepi32_epi8(i0), c1 = _mm512_cvtsepi32_epi8(i1);
        _mm_storeu_si128((__m128i *)(q + b * 32), c0);
        _mm_storeu_si128((__m128i *)(q + b * 32 + 16), c1);
        if (u) {
            __m128i off = _mm_set1_epi8((char)0x80);
            _mm_storeu_si128((__m128i *)(u + b * 32), _mm_xor_si128(c0, off));
            _mm_storeu_si128((__m128i *)(u + b * 32 + 16), _mm_xor_si128(c1, off));
        }
        s[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        d[b] = mq_f16_to_f32(mq_f32_to_f16(dd));
    }
}

/* ---- vector helpers ---- */

/* exp(x) for x in float range: 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], degree-6
 * polynomial (relative error < 2e-7); saturates to 0 below -87.3 and +Inf above 88.7;
 * NaN propagates. */
static inline __m512 exp_ps(__m512 x)
{
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    __m512 xc = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-87.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_hi, xc);
    r = _mm512_fnmadd_ps(n, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512 y = _mm512_scalef_ps(p, n);
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(88.7f), _CMP_GT_OQ),
                           _mm512_set1_ps(INFINITY));
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ), _mm512_setzero_ps());
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

static void add(const float *a, const float *b, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
}

static void swiglu(const float *g, const float *u, float *y, int64_t n)
{
    int64_t i = 0;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), gv));
        __m512 r = _mm512_mul_ps(_mm512_div_ps(gv, _mm512_add_ps(one, e)), uv);
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

static double sumsq(const float *x, int64_t n)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        s0 = _mm512_fmadd_pd(lo, lo, s0);
        s1 = _mm512_fmadd_pd(hi, hi, s1);
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    for (; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return s;
}

static void scale_mul(const float *x, float scale, const float *w, float *y, int64_t n)
{
    const __m512 sv = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sv), _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static float dot(const float *a, const float *b, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void axpy(float s, const float *x, float *y, int64_t n)
{
    const __m512 sv = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static float exp_sum(float *x, float mx, int64_t n)
{
    __m512 s = _mm512_setzero_ps(), mv = _mm512_set1_ps(mx);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv));
        e = _mm512_maskz_mov_ps(m, e);
        _mm512_mask_storeu_ps(x + i, m, e);
        s = _mm512_add_ps(s, e);
    }
    return _mm512_reduce_add_ps(s);
}

const struct cpu_kern KERN = {
    .isa = ISA_NAME,
    .rows = R,
#ifdef CPU_BF16
    .bf16_dot = true,
#endif
    .matmul = {[MQ_DTYPE_F32] = mm_f32, [MQ_DTYPE_F16] = mm_f16,
#ifdef CPU_BF16
               [MQ_DTYPE_BF16] = mm_bf16_dot,
#else
               [MQ_DTYPE_BF16] = mm_bf16,
#endif
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
