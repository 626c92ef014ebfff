/* backends/cpu/kern_avx512.c - AVX-512 kernels on 16-row groups (kern.h layouts).
 *
 * Compiled twice: as the "avx512" path (F/BW/VL/DQ + FMA + F16C; integer dot products
 * with vpmaddubsw) and, with CPU_VNNI defined, as the "avx512vnni" path (vpdpbusd for
 * integer dot products and, when CPU_BF16 is also defined, vdpbf16ps for bf16 weights).
 * The VNNI object also holds the "avx512amx" path: avx512vnni with the GEMMs of q8_0,
 * q4_0, q2_k and q3_k on the AMX tile unit ("AMX" below), bit-identical to it.
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
 *
 * The other block formats (q4_1, q5_0, q5_1, iq4_nl; q2_k .. q6_k, iq4_xs) are decoded
 * from kern.h's words layout into bytes first, by one decoder per format that serves a
 * fused one-column decode path, a buffered path for 2..7 columns and a blocked GEMM path
 * (see "the other block formats" below for the arithmetic of each).
 *
 * Activations to Q8_K (quantize_q8k) are vectorized here too, bit-identical to
 * cpu_quantize_q8k_scalar.
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
/* loops whose index picks shift counts or masks: fully unrolled, so that they are immediates */
#define UNROLL_ALL _Pragma("GCC unroll 64")

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

/* ---- the other block formats: decoded to bytes, then one dot-product tile per kind ----
 *
 * Their words layout (kern.h) puts the same word of 16 rows in one vector, but the codes
 * in a word are rarely 4 consecutive weights of one kind. So each format has a decoder
 * that makes code vector v: weights 4v..4v+3 of the 16 rows as bytes, which a 4-byte
 * broadcast of one column's activations multiplies (vpdpbusd; without VNNI vpmaddubsw),
 * plus what the block's sum needs (f32 scales, sub-block scales, corrections). Three
 * drivers use the same decoders and the same block arithmetic:
 *   one column (decode): the codes go from the decoder straight into the dot products,
 *     with the next weights prefetched; the accumulator stays in a register over K
 *   2..7 columns: K chunks of a row group decoded into a buffer (prep_*), then the
 *     column tiles over it
 *   8 columns and more (GEMM, Goto's blocking): for a block of GB row groups, each K
 *     chunk of the GB groups is decoded (about 90 KiB, in L2), then each column tile runs
 *     over the GB groups while its activations (8 x 1 KiB) stay in L1 (VNNI q2_k, q3_k:
 *     tiles of 8 columns x 2 groups, tilen_sb)
 * so an output gets the same float operations for any M. Integer sums are exact (no
 * saturation: bounds in the comments), so their grouping may differ between drivers (the
 * q2_k and q3_k GEMM preparations below) without changing a bit.
 *
 * 32-weight blocks (Q8_0 activations): isum = sum code * xq over the block (codes 0..31,
 * VNNI iq4_nl: table value + 128), seeded with corr * xs (q5_0: -16, VNNI iq4_nl: -128),
 * then dx * (d * isum) (q5_0, iq4_nl) or dx * (d * isum + m * xs) (q4_1, q5_1), summed in
 * fours of blocks before the accumulator.
 *
 * 256-weight super-blocks (Q8_K activations): one int32 tot per super-block and column,
 *   tot = sum over sub-blocks of scale * (sum code * x) + sum_i pair_i . (xs_2i, xs_2i+1)
 * where the pairs are 16-bit (vpdpwssd) against the column's sums of 16 codes, and
 * y += dx * (d * tot) [- dx * (dmin * msum)], msum the pairs' sum for formats with mins.
 * How the scales enter depends on what fits (VNNI; without VNNI vpmaddubsw's 16-bit pairs
 * go through vpmaddwd with the scale, which costs nothing extra):
 *   q2_k   decode: chains of 16 weights (one sub-block, |sum| <= 16*3*127 fits int16) into
 *          vpdpwssd with the scale; GEMM: codes prescaled, sc * q <= 45 fits a byte, one
 *          dpbusd chain
 *   q3_k   decode: the same with codes c = q + 4 * hbit (|sum| <= 16*7*127); GEMM:
 *          prescaled signed codes s' * (c - 3) in -128..124 against xu = x + 128 (the
 *          -128 * sum of codes is per row, made in the preparation), since s' * (c - 4) =
 *          s' * (c - 3) - s' and the -s' goes with the pairs
 *   q4_k   chains of 16 weights (<= 16*15*127) into vpdpwssd with the scale
 *   q5_k, iq4_xs  chains of 32 weights times the scale (vpmulld)
 *   q6_k   chains of 16 weights times the scale (vpmulld)
 * The 6-bit packed scales are decoded lane-parallel (16 rows' words as 32-bit lanes) once
 * per super-block and moved to byte or 16-bit lane positions with vpshufb.
 */
#define KC_B32 32      /* 32-weight blocks per chunk: 20 KiB decoded */
#define KC_B32_DEC 8   /* the same for 2..7 columns */
#define KC_SB 4        /* super-blocks per chunk: 23 KiB decoded */
#define KC_SB_DEC 1
#define GB 4           /* GEMM: row groups per block */
/* Decode prefetches the weights two ways: into L2 this far ahead of the group-block it
 * reads (about what DRAM needs in flight: the L1 has too few fill buffers for that), and
 * into L1 this far (measured: 0.93..1.1 of a plain read's bandwidth, against 0.81..0.97
 * with L1 prefetches 2 KiB ahead only) */
#define PF_FAR 8192
#define PF_NEAR 1024
#define ALWAYS_INLINE inline __attribute__((always_inline))

#ifdef CPU_VNNI
/* acc + sum of 4 u8 * s8 products per lane (vpdpbusd), and of 2 s16 * s16 (vpdpwssd).
 * In asm so that gcc keeps the accumulator in place: with the intrinsics, unrolled tiles
 * get a register copy around most instructions (measured: 500 instead of 720 GOP/s on
 * the tile's pattern, broadcasts as separate loads). */
static ALWAYS_INLINE __m512i dpbusd(__m512i acc, __m512i u, __m512i s)
{
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    return acc;
}
static ALWAYS_INLINE __m512i dpwssd(__m512i acc, __m512i a, __m512i b)
{
    __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}
#else
static ALWAYS_INLINE __m512i dpwssd(__m512i acc, __m512i a, __m512i b)
{
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}
#endif

/* *p in every lane, loaded as such (vpbroadcastd from memory: a load, no shuffle; gcc
 * otherwise turns broadcasts of a just-stored array into register shuffles) */
static ALWAYS_INLINE __m512i bcast_mem(const int32_t *p)
{
    __m512i v;
    __asm__("vpbroadcastd %1, %0" : "=v"(v) : "m"(*p));
    return v;
}

static ALWAYS_INLINE __m512i load_word(const char *words, int w)
{
    return _mm512_loadu_si512(words + 64 * w);
}

/* the f16 d's of a D_HEAD / D_TAIL group-block (its first 32 bytes) as 16 floats */
static ALWAYS_INLINE __m512 d_halves(const char *blk)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
}

/* the f16 in the low (hi = 0) or high 16 bits of each lane as floats */
static ALWAYS_INLINE __m512 half_lanes(__m512i w, int hi)
{
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hi ? _mm512_srli_epi32(w, 16) : w));
}

static ALWAYS_INLINE __m512i nib_lo(__m512i w) { return _mm512_and_si512(w, _mm512_set1_epi8(0x0F)); }
static ALWAYS_INLINE __m512i nib_hi(__m512i w)
{
    return _mm512_and_si512(_mm512_srli_epi16(w, 4), _mm512_set1_epi8(0x0F));
}

/* vpshufb control that makes byte j of every 32-bit lane a copy of byte bj of the same
 * lane (bj < 0: zero): the lane's byte offsets plus the lane's base in its 128 bits (a
 * zeroing index stays >= 0x80) */
#define LB(b) ((uint32_t)((b) < 0 ? 0x80 : (b)))
static ALWAYS_INLINE __m512i lane_bytes(int b0, int b1, int b2, int b3)
{
    const __m512i base = _mm512_set4_epi32(0x0C0C0C0C, 0x08080808, 0x04040404, 0);
    return _mm512_add_epi8(_mm512_set1_epi32((int)(LB(b0) | LB(b1) << 8 | LB(b2) << 16 | LB(b3) << 24)), base);
}
#define Z (-1)

/* byte b (0..3) of each lane of v as a 16-bit value in both halves of the lane (through
 * the high byte and back when sgn: sign-extended) */
static ALWAYS_INLINE __m512i lane_byte_x2(__m512i v, int b, bool sgn)
{
    if (sgn)
        return _mm512_srai_epi16(_mm512_shuffle_epi8(v, lane_bytes(Z, b, Z, b)), 8);
    return _mm512_shuffle_epi8(v, lane_bytes(b, Z, b, Z));
}

/* bytes b and b + 1 of each lane as the lane's two 16-bit halves */
static ALWAYS_INLINE __m512i lane_byte_pair(__m512i v, int b, bool sgn)
{
    if (sgn)
        return _mm512_srai_epi16(_mm512_shuffle_epi8(v, lane_bytes(Z, b, Z, b + 1)), 8);
    return _mm512_shuffle_epi8(v, lane_bytes(b, Z, b + 1, Z));
}

/* byte b of each lane as an int32 (sgn: sign-extended); its low 16 bits with 0 above are
 * also the (scale, 0) pair vpdpwssd wants */
static ALWAYS_INLINE __m512i lane_byte_i32(__m512i v, int b, bool sgn)
{
    if (sgn)
        return _mm512_srai_epi32(_mm512_shuffle_epi8(v, lane_bytes(Z, Z, Z, b)), 24);
    return _mm512_shuffle_epi8(v, lane_bytes(b, Z, Z, Z));
}

/* each byte's bit `from` moved to bit `to` (other bits: garbage from shifting 16-bit
 * lanes, which the caller masks off) */
static ALWAYS_INLINE __m512i bit_to(__m512i v, int from, int to)
{
    if (from > to)
        return _mm512_srli_epi16(v, (unsigned)(from - to));
    if (from < to)
        return _mm512_slli_epi16(v, (unsigned)(to - from));
    return v;
}

/* a | (b & c) */
static ALWAYS_INLINE __m512i or_and(__m512i a, __m512i b, __m512i c)
{
    return _mm512_ternarylogic_epi32(a, b, c, 0xF8);
}

/* the 16-byte table of iq4 codes in every 128 bits: VNNI, value + 128 (unsigned,
 * corrected with -128 * the activation sums); else the signed values */
static ALWAYS_INLINE __m512i iq4_table(void)
{
    __m512i t = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)mq_iq4nl_values));
#ifdef CPU_VNNI
    t = _mm512_xor_si512(t, _mm512_set1_epi8((char)0x80));
#endif
    return t;
}

/* the lines of the bytes [p, p + bytes) of the weight stream, PF_FAR and PF_NEAR ahead */
static ALWAYS_INLINE void prefetch_lines(const char *p, size_t bytes)
{
    for (size_t i = 0; i < bytes; i += 64) {
        _mm_prefetch(p + PF_FAR + i, _MM_HINT_T1);
        _mm_prefetch(p + PF_NEAR + i, _MM_HINT_T0);
    }
}

/* ---- drivers shared by both block sizes ---- */

/* A GEMM tile over NG row groups g .. g + NG - 1 whose decoded chunks are stride bytes
 * apart (from aux on), and C columns */
typedef void (*ktilen_fn)(const struct cpu_mm *mm, int64_t g, int64_t m0, int NG, int C, int64_t k0, int64_t k1,
                          const void *aux, size_t stride);
/* the main multi-group tile: groups and columns (NG * C integer sums) */
#define TILEN_NG 2
#define TILEN_C 8

/* GEMM: the column tiles from column m on of row groups [ga, gz) over decoded chunks aux +
 * (g - ga) * stride; with tilen (else NULL), tiles of TILEN_C columns take the groups
 * TILEN_NG at a time */
static ALWAYS_INLINE void run_cols_groups(const struct cpu_mm *mm, int64_t m, int64_t ga, int64_t gz, int64_t k0,
                                          int64_t k1, const char *aux, size_t stride, ktile_fn tile, ktilen_fn tilen)
{
    const int64_t M = mm->a->M;
    if (tilen) {
        for (; m + TILEN_C <= M; m += TILEN_C) {
            int64_t g = ga;
            for (; g + TILEN_NG <= gz; g += TILEN_NG)
                tilen(mm, g, m, TILEN_NG, TILEN_C, k0, k1, aux + (size_t)(g - ga) * stride, stride);
            for (; g < gz; g++)
                tile(mm, g, m, TILEN_C, k0, k1, aux + (size_t)(g - ga) * stride);
        }
    }
    for (; m + 8 <= M; m += 8)
        for (int64_t g = ga; g < gz; g++)
            tile(mm, g, m, 8, k0, k1, aux + (size_t)(g - ga) * stride);
    if (m + 4 <= M) {
        for (int64_t g = ga; g < gz; g++)
            tile(mm, g, m, 4, k0, k1, aux + (size_t)(g - ga) * stride);
        m += 4;
    }
    if (m + 2 <= M) {
        for (int64_t g = ga; g < gz; g++)
            tile(mm, g, m, 2, k0, k1, aux + (size_t)(g - ga) * stride);
        m += 2;
    }
    if (m < M)
        for (int64_t g = ga; g < gz; g++)
            tile(mm, g, m, 1, k0, k1, aux + (size_t)(g - ga) * stride);
}

/* No tile unit: every GEMM column goes to run_cols_groups */
static ALWAYS_INLINE int64_t amx_none(const struct cpu_mm *mm, int64_t ga, int64_t gz, int64_t k0, int64_t k1,
                                      const char *aux, size_t stride)
{
    (void)mm, (void)ga, (void)gz, (void)k0, (void)k1, (void)aux, (void)stride;
    return 0;
}

/* The entry of a format: DEC1 for one column, PREP_DEC + TILE_DEC for 2..7, PREP + TILE
 * for GEMM, where AMX (amx_none, or the avx512amx path's tile-unit GEMM) takes the columns
 * it can first and returns where the rest begin. */
#define DECODED_ENTRY(NAME, DEC1, PREP_DEC, TILE_DEC, PREP, TILE, TILEN, AMX, AUX, ELEMS, KC, KC_DEC) \
    static void NAME(const struct cpu_mm *mm, int64_t g0, int64_t g1)                             \
    {                                                                                             \
        const int64_t nb = mm->K / (ELEMS);                                                       \
        if (mm->a->M == 1) {                                                                      \
            for (int64_t g = g0; g < g1; g++)                                                     \
                DEC1(mm, g);                                                                      \
            return;                                                                               \
        }                                                                                         \
        struct AUX aux[GB][KC];                                                                   \
        if (mm->a->M < 8) {                                                                       \
            for (int64_t g = g0; g < g1; g++) {                                                   \
                const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;               \
                for (int64_t b0 = 0; b0 < nb; b0 += (KC_DEC)) {                                   \
                    int64_t b1 = b0 + (KC_DEC) < nb ? b0 + (KC_DEC) : nb;                         \
                    PREP_DEC(wg, b0, b1, aux[0], true);                                           \
                    run_cols(mm, g, b0, b1, aux[0], TILE_DEC);                                    \
                }                                                                                 \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        for (int64_t ga = g0; ga < g1; ga += GB) {                                                \
            int64_t gz = ga + GB < g1 ? ga + GB : g1;                                             \
            for (int64_t b0 = 0; b0 < nb; b0 += (KC)) {                                           \
                int64_t b1 = b0 + (KC) < nb ? b0 + (KC) : nb;                                     \
                for (int64_t g = ga; g < gz; g++)                                                 \
                    PREP((const char *)mm->w + (size_t)g * mm->group_bytes, b0, b1, aux[g - ga], false); \
                int64_t m = AMX(mm, ga, gz, b0, b1, (const char *)aux, sizeof(aux[0]));            \
                run_cols_groups(mm, m, ga, gz, b0, b1, (const char *)aux, sizeof(aux[0]), TILE, TILEN); \
            }                                                                                     \
        }                                                                                         \
    }

#ifdef CPU_VNNI
/* ---- AMX (the avx512amx path): GEMM products on the tile unit ----
 *
 * The tile unit's int8 products (tdpbssd, tdpbsud: C[16 x 16] int32 += A[16 x KB] . B,
 * with B as KB / 4 rows of 16 columns x 4 bytes) fit the layouts here as they lie: the
 * activation codes xq [M][K] are A tiles (16 columns, stride K), and a code vector of 16
 * rows (weights 4v..4v+3 of each row, the packed q8_0 block's and every decoded chunk's)
 * is a row of B. So a C tile holds, for 16 columns and 16 rows, the exact integer sum the
 * VNNI tiles make with vpdpbusd, and each format finishes it with its VNNI tile's float
 * operations in the same order: the results are the avx512vnni path's bit for bit
 * (tests/unit/test_cpu.c, cpu/amx_matches_vnni). Formats whose sums are scaled per
 * sub-block of 16 or 32 weights inside a super-block (q4_k .. q6_k, iq4_xs) do not fit
 * one product per block and stay on the VNNI tiles.
 *
 * Tiles: C in tmm0..3, A in tmm4, tmm5, B in tmm6, tmm7, configured (ldtilecfg) per
 * call and released after it. The instructions are written in asm: the path needs no
 * -mamx flags, and cpu.c enables it only where CPUID and the kernel's XTILEDATA permission
 * allow. */
struct amx_tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* C tiles 0..3 of 16 x 16 int32; A tiles 4, 5 of 16 rows x KB bytes; B tiles 6, 7 of KB / 4
 * rows x 64 bytes (KB: the K of one product, 64 or 32) */
static void amx_begin(int KB)
{
    struct amx_tilecfg cfg __attribute__((aligned(64)));
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = (uint16_t)(i == 4 || i == 5 ? KB : 64);
        cfg.rows[i] = (uint8_t)(i >= 6 ? KB / 4 : 16);
    }
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
}

static void amx_end(void) { __asm__ volatile("tilerelease" ::: "memory"); }

#define AMX_ZERO(T) __asm__ volatile("tilezero %%tmm" #T ::)
#define AMX_LOAD(T, P, S) __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #T ::"r"(P), "r"((int64_t)(S)) : "memory")
#define AMX_STORE(T, P, S) __asm__ volatile("tilestored %%tmm" #T ", (%0,%1,1)" ::"r"(P), "r"((int64_t)(S)) : "memory")
/* C += A . B, A signed, B unsigned (SGN false) or signed */
#define AMX_DP(C, A, B, SGN)                                                                      \
    do {                                                                                          \
        if (SGN)                                                                                  \
            __asm__ volatile("tdpbssd %%tmm" #B ", %%tmm" #A ", %%tmm" #C ::);                   \
        else                                                                                      \
            __asm__ volatile("tdpbsud %%tmm" #B ", %%tmm" #A ", %%tmm" #C ::);                   \
    } while (0)

/* q8_0 and q4_0: blocks [b0, b1) of row group g for columns m0 .. m0 + 15, each finished
 * as tile_q8_0 / tile_q4_0 finish it (the integer sum from corr * xs, q4_0's -8; its
 * scale product and FMA, blocks in order; the sums of y between chunks), into 16
 * accumulators in registers. Block b's B tile: bsrc + (b - b0) * bstride (q8_0: the
 * packed block's code vectors as they lie; q4_0: its decoded codes), its f16 scales at the
 * packed block's start. Blocks two at a time in C0, C1. */
static ALWAYS_INLINE void amx_q_blocks(const struct cpu_mm *mm, int64_t g, int64_t m0, int64_t b0, int64_t b1,
                                       const char *bsrc, size_t bstride, size_t bb, int corr, bool sgn)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    int32_t cb[2][16][16] __attribute__((aligned(64)));
    __m512 acc[16];
    acc_load(mm, g, m0, 8, b0 == 0, acc);
    acc_load(mm, g, m0 + 8, 8, b0 == 0, acc + 8);
    for (int64_t b = b0; b < b1; b += 2) {
        const int nblk = b + 1 < b1 ? 2 : 1;
        const char *bt = bsrc + (size_t)(b - b0) * bstride;
        AMX_ZERO(0);
        AMX_LOAD(4, a->xq + m0 * K + b * 32, K);
        AMX_LOAD(6, bt, 64);
        AMX_DP(0, 4, 6, sgn);
        if (nblk == 2) {
            AMX_ZERO(1);
            AMX_LOAD(5, a->xq + m0 * K + (b + 1) * 32, K);
            AMX_LOAD(7, bt + bstride, 64);
            AMX_DP(1, 5, 7, sgn);
        }
        AMX_STORE(0, cb[0], 64);
        if (nblk == 2)
            AMX_STORE(1, cb[1], 64);
        for (int i = 0; i < nblk; i++) {
            const char *blk = wg + (size_t)(b + i) * bb;
            __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
            UNROLL
            for (int c = 0; c < 16; c++) {
                __m512i isum = _mm512_load_si512(cb[i][c]);
                if (corr)
                    isum = _mm512_add_epi32(isum, _mm512_set1_epi32(corr * a->xs[(m0 + c) * nb + b + i]));
                __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(a->xd[(m0 + c) * nb + b + i]));
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc[c]);
            }
        }
    }
    store_tile(mm, g, m0, 8, acc);
    store_tile(mm, g, m0 + 8, 8, acc + 8);
}

/* mm restricted to its columns from m on (the per-column arrays of an integer path) */
static void cols_from(const struct cpu_mm *mm, int64_t m, struct cpu_mm *out, struct cpu_act *act)
{
    const struct cpu_act *a = mm->a;
    const int64_t nx = a->K / 32; /* Q8_0 scales and sums per column */
    *act = *a;
    act->M = a->M - m;
    act->xd = a->xd + m * nx;
    act->xs = a->xs + m * nx;
    act->xq = a->xq + m * a->K;
    act->xu = a->xu ? a->xu + m * a->K : NULL;
    *out = *mm;
    out->a = act;
    out->y = mm->y + m * mm->N;
}

/* q4_0's codes of blocks [b0, b1) of a packed row group as B tiles: [b - b0][8 rows of 64
 * bytes] (u8 0..15; the packed vector t holds weights 8t..8t+3 in its low nibbles and
 * 8t+4..8t+7 in its high ones) */
static void amx_q4_0_decode(const char *wg, int64_t b0, int64_t b1, __m512i *out)
{
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int64_t b = b0; b < b1; b++, out += 8) {
        const __m512i *qs = (const __m512i *)(wg + (size_t)b * R * sizeof(struct mq_block_q4_0) + R * 2);
        UNROLL
        for (int t = 0; t < 4; t++) {
            __m512i v = _mm512_loadu_si512(qs + t);
            _mm512_store_si512(out + 2 * t, _mm512_and_si512(v, low4));
            _mm512_store_si512(out + 2 * t + 1, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
        }
    }
}

/* the avx512amx path's q8_0 and q4_0: columns 16 at a time on the tile unit (q4_0: per
 * chunk of KC_INT blocks decoded once for all columns), the rest (fewer than 16) as
 * avx512vnni does them */
#define AMX_Q_ENTRY(X, BLOCK, CORR, SGN, DECODE)                                                  \
    static void mm_##X##_amx(const struct cpu_mm *mm, int64_t g0, int64_t g1)                     \
    {                                                                                             \
        const int64_t M = mm->a->M, m_end = M / 16 * 16, nb = mm->K / 32;                         \
        const size_t bb = R * sizeof(BLOCK);                                                      \
        if (m_end > 0) {                                                                          \
            __m512i codes[KC_INT * 8];                                                            \
            amx_begin(32);                                                                        \
            for (int64_t g = g0; g < g1; g++) {                                                   \
                const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;               \
                for (int64_t b0 = 0; b0 < nb; b0 += (DECODE ? KC_INT : nb)) {                     \
                    int64_t b1 = DECODE && b0 + KC_INT < nb ? b0 + KC_INT : nb;                   \
                    if (DECODE)                                                                   \
                        amx_q4_0_decode(wg, b0, b1, codes);                                       \
                    const char *bsrc = DECODE ? (const char *)codes : wg + (size_t)b0 * bb + R * 2; \
                    for (int64_t m = 0; m < m_end; m += 16)                                       \
                        amx_q_blocks(mm, g, m, b0, b1, bsrc, DECODE ? 512 : bb, bb, CORR, SGN);   \
                }                                                                                 \
            }                                                                                     \
            amx_end();                                                                            \
        }                                                                                         \
        if (m_end < M) {                                                                          \
            struct cpu_mm rest;                                                                   \
            struct cpu_act act;                                                                   \
            cols_from(mm, m_end, &rest, &act);                                                    \
            mm_##X(&rest, g0, g1);                                                                \
        }                                                                                         \
    }
AMX_Q_ENTRY(q8_0, struct mq_block_q8_0, 0, true, false)
AMX_Q_ENTRY(q4_0, struct mq_block_q4_0, -8, false, true)
#endif

/* ---- 32-weight blocks ---- */

struct b32_aux {
    __m512i q[8]; /* q[t]: weights 4t..4t+3 of 16 rows */
    __m512 d, m;  /* f32 scale and (q4_1, q5_1) offset of 16 rows */
};

/* q4_1 (5 words): (d, m), then qs: word 1+i holds weights 4i..4i+3 (low nibbles) and
 * 16+4i..16+4i+3 (high) */
static ALWAYS_INLINE void q4_1_block(const char *blk, struct b32_aux *o)
{
    __m512i w0 = load_word(blk, 0);
    o->d = half_lanes(w0, 0);
    o->m = half_lanes(w0, 1);
    UNROLL_ALL
    for (int i = 0; i < 4; i++) {
        __m512i w = load_word(blk, 1 + i);
        o->q[i] = nib_lo(w);
        o->q[4 + i] = nib_hi(w);
    }
}

/* bit 4 of q5 codes: weight e of the block takes bit e of its row's qh (a 32-bit lane);
 * codes[] holds weights 4i..4i+3 (hi = 0) or 16+4i..16+4i+3 (hi = 1) */
static ALWAYS_INLINE __m512i q5_high(__m512i codes, __m512i qh, int i, int hi)
{
    int byte = 2 * hi + i / 2;
    __m512i rep = _mm512_shuffle_epi8(qh, lane_bytes(byte, byte, byte, byte));
    __mmask64 k = _mm512_test_epi8_mask(rep, _mm512_set1_epi32(i % 2 ? (int)0x80402010 : 0x08040201));
    return _mm512_mask_add_epi8(codes, k, codes, _mm512_set1_epi8(16));
}

/* q5_0 (d; words: qh, qs x 4) and q5_1 (words: (d, m), qh, qs x 4) */
static ALWAYS_INLINE void q5_block(const char *blk, struct b32_aux *o, bool q5_1)
{
    const char *words = blk;
    if (q5_1) {
        __m512i w0 = load_word(words, 0);
        o->d = half_lanes(w0, 0);
        o->m = half_lanes(w0, 1);
        words += 64;
    } else {
        o->d = d_halves(blk);
        words += R * 2;
    }
    __m512i qh = load_word(words, 0);
    UNROLL_ALL
    for (int i = 0; i < 4; i++) {
        __m512i w = load_word(words, 1 + i);
        o->q[i] = q5_high(nib_lo(w), qh, i, 0);
        o->q[4 + i] = q5_high(nib_hi(w), qh, i, 1);
    }
}
static ALWAYS_INLINE void q5_0_block(const char *blk, struct b32_aux *o) { q5_block(blk, o, false); }
static ALWAYS_INLINE void q5_1_block(const char *blk, struct b32_aux *o) { q5_block(blk, o, true); }

/* iq4_nl (d; 4 words of qs as q4_1's) through the table */
static ALWAYS_INLINE void iq4_nl_block(const char *blk, struct b32_aux *o)
{
    const __m512i tab = iq4_table();
    const char *words = blk + R * 2;
    o->d = d_halves(blk);
    UNROLL_ALL
    for (int i = 0; i < 4; i++) {
        __m512i w = load_word(words, i);
        o->q[i] = _mm512_shuffle_epi8(tab, nib_lo(w));
        o->q[4 + i] = _mm512_shuffle_epi8(tab, nib_hi(w));
    }
}

/* One decoded 32-block b for C columns: its float term into gs[c], which it starts
 * (first) or adds to. corr: the multiple of xs the sums start from; has_m: the term has
 * m * dx * xs too; sgn (no VNNI, iq4_nl): signed codes, multiplied as |w| * (x with w's
 * sign) (vpmaddubsw pairs of 2 * 127 * 127 do not saturate). */
static ALWAYS_INLINE void b32_block(const struct cpu_mm *mm, int64_t m0, int C, int64_t b, const struct b32_aux *ax,
                                    int corr, bool has_m, bool sgn, bool first, __m512 *gs)
{
    const int64_t K = mm->K, nb = K / 32;
    const struct cpu_act *a = mm->a;
    __m512i isum[8];
#ifdef CPU_VNNI
    (void)sgn;
#endif
    UNROLL
    for (int c = 0; c < C; c++)
        isum[c] = corr ? _mm512_set1_epi32(corr * a->xs[(m0 + c) * nb + b]) : _mm512_setzero_si512();
    UNROLL
    for (int t = 0; t < 8; t++) {
        __m512i w = ax->q[t];
#ifdef CPU_VNNI
        UNROLL
        for (int c = 0; c < C; c++)
            isum[c] = dpbusd(isum[c], w, _mm512_set1_epi32(load_i32(a->xq + (m0 + c) * K + b * 32 + t * 4)));
#else
        __m512i aw = sgn ? _mm512_abs_epi8(w) : w;
        __mmask64 neg = sgn ? _mm512_movepi8_mask(w) : 0;
        UNROLL
        for (int c = 0; c < C; c++) {
            __m512i xv = _mm512_set1_epi32(load_i32(a->xq + (m0 + c) * K + b * 32 + t * 4));
            if (sgn)
                xv = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
            isum[c] = dot_u8s8(isum[c], aw, xv);
        }
#endif
    }
    UNROLL
    for (int c = 0; c < C; c++) {
        __m512 dx = _mm512_set1_ps(a->xd[(m0 + c) * nb + b]);
        if (has_m) {
            __m512 xs = _mm512_cvtepi32_ps(_mm512_set1_epi32(a->xs[(m0 + c) * nb + b]));
            __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), ax->d, _mm512_mul_ps(ax->m, xs));
            gs[c] = first ? _mm512_mul_ps(t, dx) : _mm512_fmadd_ps(t, dx, gs[c]);
        } else {
            __m512 s = _mm512_mul_ps(ax->d, dx), v = _mm512_cvtepi32_ps(isum[c]);
            gs[c] = first ? _mm512_mul_ps(v, s) : _mm512_fmadd_ps(v, s, gs[c]);
        }
    }
}

/* Blocks [b0, b1) of decoded 32-blocks. The block terms are summed in fours (blocks
 * 4i..4i+3; chunks are multiples of 4) before they reach the accumulator: one FMA per
 * block into one register would chain K/32 latencies per row group in decode, slower
 * than memory. */
static ALWAYS_INLINE void tile_b32(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, int64_t b0,
                                   int64_t b1, const void *aux, int corr, bool has_m, bool sgn)
{
    const struct b32_aux *ax = (const struct b32_aux *)aux - b0;
    __m512 acc[8];
    acc_load(mm, g, m0, C, b0 == 0, acc);
    for (int64_t bq = b0; bq < b1; bq += 4) {
        __m512 gs[8];
        int64_t n = b1 - bq < 4 ? b1 - bq : 4; /* 4 but for the matrix's last blocks */
        b32_block(mm, m0, C, bq, &ax[bq], corr, has_m, sgn, true, gs);
        if (n == 4) {
            UNROLL
            for (int j = 1; j < 4; j++)
                b32_block(mm, m0, C, bq + j, &ax[bq + j], corr, has_m, sgn, false, gs);
        } else {
            for (int64_t j = 1; j < n; j++)
                b32_block(mm, m0, C, bq + j, &ax[bq + j], corr, has_m, sgn, false, gs);
        }
        UNROLL
        for (int c = 0; c < C; c++)
            acc[c] = _mm512_add_ps(acc[c], gs[c]);
    }
    store_tile(mm, g, m0, C, acc);
}
_Static_assert(KC_B32 % 4 == 0 && KC_B32_DEC % 4 == 0, "32-block chunks are whole groups of 4 blocks");

/* One column: row group g over all of K, each block decoded into registers (the same
 * operations as tile_b32 with C = 1) */
static ALWAYS_INLINE void dec1_b32(const struct cpu_mm *mm, int64_t g, size_t bb, void (*decode)(const char *, struct b32_aux *),
                                   int corr, bool has_m, bool sgn)
{
    const int64_t nb = mm->K / 32;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t bq = 0; bq < nb; bq += 4) {
        int64_t n = nb - bq < 4 ? nb - bq : 4;
        __m512 gs;
        struct b32_aux blk;
        prefetch_lines(wg + (size_t)bq * R * bb, 4 * R * bb);
        decode(wg + (size_t)bq * R * bb, &blk);
        b32_block(mm, 0, 1, bq, &blk, corr, has_m, sgn, true, &gs);
        if (n == 4) {
            UNROLL
            for (int j = 1; j < 4; j++) {
                decode(wg + (size_t)(bq + j) * R * bb, &blk);
                b32_block(mm, 0, 1, bq + j, &blk, corr, has_m, sgn, false, &gs);
            }
        } else {
            for (int64_t j = 1; j < n; j++) {
                decode(wg + (size_t)(bq + j) * R * bb, &blk);
                b32_block(mm, 0, 1, bq + j, &blk, corr, has_m, sgn, false, &gs);
            }
        }
        acc = _mm512_add_ps(acc, gs);
    }
    store_tile(mm, g, 0, 1, &acc);
}

#ifdef CPU_VNNI
#define IQ4_CORR (-128)
#define IQ4_SGN false
#else
#define IQ4_CORR 0
#define IQ4_SGN true
#endif

#define B32_FORMAT(X, BLOCK, CORR, HAS_M, SGN)                                                    \
    static ALWAYS_INLINE void prep_##X(const char *wg, int64_t b0, int64_t b1, struct b32_aux *ax, bool pf) \
    {                                                                                             \
        for (int64_t b = b0; b < b1; b++, ax++) {                                                 \
            const char *blk = wg + (size_t)b * R * sizeof(BLOCK);                                 \
            if (pf)                                                                               \
                prefetch_lines(blk, R * sizeof(BLOCK));                                \
            X##_block(blk, ax);                                                                   \
        }                                                                                         \
    }                                                                                             \
    static ALWAYS_INLINE void tile_##X(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, int64_t b0, \
                                       int64_t b1, const void *aux)                               \
    {                                                                                             \
        tile_b32(mm, g, m0, C, b0, b1, aux, CORR, HAS_M, SGN);                                    \
    }                                                                                             \
    static void dec1_##X(const struct cpu_mm *mm, int64_t g)                                      \
    {                                                                                             \
        dec1_b32(mm, g, sizeof(BLOCK), X##_block, CORR, HAS_M, SGN);                              \
    }                                                                                             \
    DECODED_ENTRY(mm_##X, dec1_##X, prep_##X, tile_##X, prep_##X, tile_##X, NULL, amx_none, b32_aux, 32, KC_B32, \
                  KC_B32_DEC)

B32_FORMAT(q4_1, struct mq_block_q4_1, 0, true, false)
B32_FORMAT(q5_0, struct mq_block_q5_0, -16, false, false)
B32_FORMAT(q5_1, struct mq_block_q5_1, 0, true, false)
B32_FORMAT(iq4_nl, struct mq_block_iq4_nl, IQ4_CORR, false, IQ4_SGN)

/* ---- 256-weight super-blocks ---- */

struct sb_aux {
    __m512i q[64];   /* q[v]: weights 4v..4v+3 of 16 rows (u8; VNNI q3_k GEMM: s8) */
    __m512i sc[16];  /* scale of the chain of 16 weights 16t..16t+15, as the kind wants it */
    __m512i pair[8]; /* 16-bit pairs against the column's (xs[2i], xs[2i+1]) */
    __m512i corr;    /* where tot starts (VNNI q3_k GEMM: -128 * sum of the codes) */
    __m512 d, dmin;  /* f32 super-block scales of 16 rows */
};

enum sb_kind {
    SB_ONE,      /* one sum of code * xq (prescaled codes) */
    SB_ONE_XU,   /* one sum of xu * signed code (VNNI only) */
    SB_DPW,      /* chains of 16 weights, vpdpwssd with sc[t] = (scale, 0) (VNNI only) */
    SB_MUL8,     /* chains of 32 weights times sc[t] (int32) (VNNI only) */
    SB_MUL4,     /* chains of 16 weights times sc[t] (int32) (VNNI only) */
    SB_MADD,     /* no VNNI: vpmaddubsw, then vpmaddwd with sc[t] = (scale, scale) */
    SB_MADD_SGN, /* the same with signed codes: |w| * (x with w's sign) */
};
enum sb_pairs { SB_PAIRS_NONE, SB_PAIRS_TOT, SB_PAIRS_MIN };

/* Where one super-block's vectors come from: a decoded buffer (ax), or the group-block's
 * words (blk, w: its words after any d's; s: scale bytes the format decoded once). The
 * accessors below read one or the other; sb_dot takes them as constants, so each use is
 * inlined. */
struct sb_src {
    const struct sb_aux *ax;
    const char *blk, *w;
    __m512i s[4];
};
typedef __m512i (*sb_vec_fn)(const struct sb_src *s, int i);
typedef __m512 (*sb_f32_fn)(const struct sb_src *s);

static ALWAYS_INLINE __m512i ax_q(const struct sb_src *s, int v) { return _mm512_load_si512(&s->ax->q[v]); }
static ALWAYS_INLINE __m512i ax_sc(const struct sb_src *s, int t) { return _mm512_load_si512(&s->ax->sc[t]); }
static ALWAYS_INLINE __m512i ax_pair(const struct sb_src *s, int i) { return _mm512_load_si512(&s->ax->pair[i]); }
static ALWAYS_INLINE __m512i ax_corr(const struct sb_src *s, int i) { (void)i; return _mm512_load_si512(&s->ax->corr); }
static ALWAYS_INLINE __m512 ax_d(const struct sb_src *s) { return s->ax->d; }
static ALWAYS_INLINE __m512 ax_dmin(const struct sb_src *s) { return s->ax->dmin; }
static ALWAYS_INLINE __m512i zero_vec(const struct sb_src *s, int i) { (void)s, (void)i; return _mm512_setzero_si512(); }
static ALWAYS_INLINE __m512 zero_f32(const struct sb_src *s) { (void)s; return _mm512_setzero_ps(); }

/* One-chain kinds: vectors v0 .. v0 + NA - 1 into the sums part[c][i] */
static ALWAYS_INLINE void sb_one_step(const struct sb_src *src, sb_vec_fn getq, sb_vec_fn getsc, enum sb_kind kind,
                                      const int8_t *xb, int64_t K, int C, int NA, int v0, __m512i part[][8])
{
#ifdef CPU_VNNI
    (void)getsc;
#endif
    UNROLL
    for (int i = 0; i < NA; i++) {
        const int v = v0 + i;
        __m512i w = getq(src, v);
#ifndef CPU_VNNI
        __m512i aw = kind == SB_MADD_SGN ? _mm512_abs_epi8(w) : w;
        __mmask64 neg = kind == SB_MADD_SGN ? _mm512_movepi8_mask(w) : 0;
        __m512i s = kind == SB_ONE ? _mm512_set1_epi16(1) : getsc(src, v / 4);
#endif
        UNROLL
        for (int c = 0; c < C; c++) {
            __m512i xv = _mm512_set1_epi32(load_i32(xb + c * K + v * 4));
#ifdef CPU_VNNI
            part[c][i] = kind == SB_ONE ? dpbusd(part[c][i], w, xv) : dpbusd(part[c][i], xv, w);
#else
            if (kind == SB_MADD_SGN)
                xv = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
            part[c][i] = _mm512_add_epi32(part[c][i], _mm512_madd_epi16(_mm512_maddubs_epi16(aw, xv), s));
#endif
        }
    }
}

#ifdef CPU_VNNI
/* Chained kinds: the NT chains of L vectors from v0 on, scaled into tt[c][i] */
static ALWAYS_INLINE void sb_chain_step(const struct sb_src *src, sb_vec_fn getq, sb_vec_fn getsc, enum sb_kind kind,
                                        const int8_t *xb, int64_t K, int C, int L, int NT, int v0, __m512i tt[][2])
{
    UNROLL
    for (int i = 0; i < NT; i++) {
        const int vc = v0 + i * L;
        __m512i ch[8];
        UNROLL
        for (int c = 0; c < C; c++)
            ch[c] = _mm512_setzero_si512();
        UNROLL
        for (int v = vc; v < vc + L; v++) {
            __m512i w = getq(src, v);
            UNROLL
            for (int c = 0; c < C; c++)
                ch[c] = dpbusd(ch[c], w, _mm512_set1_epi32(load_i32(xb + c * K + v * 4)));
        }
        __m512i s = getsc(src, vc / 4);
        UNROLL
        for (int c = 0; c < C; c++)
            tt[c][i] = kind == SB_DPW ? dpwssd(tt[c][i], ch[c], s) : _mm512_add_epi32(tt[c][i], _mm512_mullo_epi32(ch[c], s));
    }
}
#endif

/* Super-block b for C columns into acc[c]. words: the vectors come from the decoders
 * (their loops are fully unrolled, so that shift counts and word indices are immediates),
 * else from a decoded buffer (partly unrolled: smaller code). */
static ALWAYS_INLINE void sb_dot(const struct cpu_mm *mm, int64_t m0, int C, int64_t b, const struct sb_src *src,
                                 sb_vec_fn getq, sb_vec_fn getsc, sb_vec_fn getpair, sb_vec_fn getcorr,
                                 sb_f32_fn getd, sb_f32_fn getdmin, enum sb_kind kind, enum sb_pairs pairs, __m512 *acc,
                                 bool words)
{
    const int64_t K = mm->K, nsb = K / 256, ns = K / 16;
    const struct cpu_act *a = mm->a;
    const int8_t *xb = (kind == SB_ONE_XU ? (const int8_t *)a->xu : a->xq) + m0 * K + b * 256;
    __m512i tot[8];
    if (kind == SB_ONE || kind == SB_ONE_XU || kind == SB_MADD || kind == SB_MADD_SGN) {
        /* independent sums per column: dpbusd's latency wants about 10 in flight */
        const int NA = C >= 4 ? 2 : C == 2 ? 4 : 8;
        __m512i part[8][8];
        UNROLL
        for (int c = 0; c < C; c++)
            for (int i = 0; i < NA; i++)
                part[c][i] = i ? _mm512_setzero_si512() : getcorr(src, 0);
        if (words) {
            UNROLL_ALL
            for (int v0 = 0; v0 < 64; v0 += NA)
                sb_one_step(src, getq, getsc, kind, xb, K, C, NA, v0, part);
        } else {
            _Pragma("GCC unroll 4")
            for (int v0 = 0; v0 < 64; v0 += NA)
                sb_one_step(src, getq, getsc, kind, xb, K, C, NA, v0, part);
        }
        UNROLL
        for (int c = 0; c < C; c++) {
            tot[c] = part[c][0];
            for (int i = 1; i < NA; i++)
                tot[c] = _mm512_add_epi32(tot[c], part[c][i]);
        }
    } else {
#ifdef CPU_VNNI
        const int L = kind == SB_MUL8 ? 8 : 4; /* vectors per chain */
        /* scaled chains into two sums per column where registers allow (one column:
         * vpdpwssd's latency would chain 16 of them) */
        const int NT = C <= 4 ? 2 : 1;
        __m512i tt[8][2];
        UNROLL
        for (int c = 0; c < C; c++)
            for (int i = 0; i < NT; i++)
                tt[c][i] = i ? _mm512_setzero_si512() : getcorr(src, 0);
        if (words) {
            UNROLL_ALL
            for (int v0 = 0; v0 < 64; v0 += L * NT)
                sb_chain_step(src, getq, getsc, kind, xb, K, C, L, NT, v0, tt);
        } else {
            _Pragma("GCC unroll 2")
            for (int v0 = 0; v0 < 64; v0 += L * NT)
                sb_chain_step(src, getq, getsc, kind, xb, K, C, L, NT, v0, tt);
        }
        UNROLL
        for (int c = 0; c < C; c++)
            tot[c] = NT == 2 ? _mm512_add_epi32(tt[c][0], tt[c][1]) : tt[c][0];
#endif
    }
    __m512i msum[8];
    if (pairs != SB_PAIRS_NONE) {
        UNROLL
        for (int c = 0; c < C; c++) {
            /* the column's 16 sums as 8 pairs of int16 (|sum| <= 16 * 127) */
            int32_t pk[8];
            _mm256_storeu_si256((__m256i *)pk, _mm512_cvtepi32_epi16(_mm512_loadu_si512(a->xs + (m0 + c) * ns + b * 16)));
            __m512i s0 = pairs == SB_PAIRS_TOT ? tot[c] : _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
            UNROLL_ALL
            for (int i = 0; i < 8; i += 2) {
                s0 = dpwssd(s0, getpair(src, i), bcast_mem(&pk[i]));
                s1 = dpwssd(s1, getpair(src, i + 1), bcast_mem(&pk[i + 1]));
            }
            s0 = _mm512_add_epi32(s0, s1);
            if (pairs == SB_PAIRS_TOT)
                tot[c] = s0;
            else
                msum[c] = s0;
        }
    }
    __m512 d = getd(src);
    UNROLL
    for (int c = 0; c < C; c++) {
        __m512 dx = _mm512_set1_ps(a->xd[(m0 + c) * nsb + b]);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[c]), _mm512_mul_ps(d, dx), acc[c]);
        if (pairs == SB_PAIRS_MIN)
            acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum[c]), _mm512_mul_ps(getdmin(src), dx), acc[c]);
    }
}

/* super-blocks [b0, b1) of a decoded buffer */
static ALWAYS_INLINE void tile_sb(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, int64_t b0, int64_t b1,
                                  const void *aux, enum sb_kind kind, enum sb_pairs pairs)
{
    const struct sb_aux *ax = (const struct sb_aux *)aux - b0;
    __m512 acc[8];
    acc_load(mm, g, m0, C, b0 == 0, acc);
    for (int64_t b = b0; b < b1; b++) {
        struct sb_src src = {.ax = &ax[b]};
        sb_dot(mm, m0, C, b, &src, ax_q, ax_sc, ax_pair, ax_corr, ax_d, ax_dmin, kind, pairs, acc, false);
    }
    store_tile(mm, g, m0, C, acc);
}

#ifdef CPU_VNNI
/* t[r][c] += pair_i . (pk[c][2i], pk[c][2i+1]) over the 8 pairs of groups r < NG */
static ALWAYS_INLINE void tilen_pairs(const struct sb_aux *const *p, int NG, int C, int32_t pk[][8], __m512i t[][8])
{
    UNROLL_ALL
    for (int i = 0; i < 8; i++) {
        __m512i pv[4];
        UNROLL
        for (int r = 0; r < NG; r++)
            pv[r] = _mm512_load_si512(&p[r]->pair[i]);
        UNROLL
        for (int c = 0; c < C; c++) {
            __m512i xp = bcast_mem(&pk[c][i]);
            UNROLL
            for (int r = 0; r < NG; r++)
                t[r][c] = dpwssd(t[r][c], pv[r], xp);
        }
    }
}

/* super-block b's float terms of NG groups x C columns into y: d * dx * t (t NULL: none),
 * then minus dmin * dx * ms (ms NULL: none), one pass over y; the scale term of a matrix's
 * first super-block starts the sums */
static ALWAYS_INLINE void tilen_acc(const struct cpu_mm *mm, int64_t g, int64_t m0, int NG, int C, int64_t b,
                                   const struct sb_aux *const *p, float *y, __m512i (*t)[8], __m512i (*ms)[8])
{
    const int64_t N = mm->N, nsb = mm->K / 256;
    UNROLL
    for (int c = 0; c < C; c++) {
        __m512 dx = _mm512_set1_ps(mm->a->xd[(m0 + c) * nsb + b]);
        UNROLL
        for (int r = 0; r < NG; r++) {
            __mmask16 mk = row_mask(mm, g + r);
            float *yc = y + c * N + r * R;
            __m512 acc = b == 0 && t ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mk, yc);
            if (t)
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t[r][c]), _mm512_mul_ps(p[r]->d, dx), acc);
            if (ms)
                acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms[r][c]), _mm512_mul_ps(p[r]->dmin, dx), acc);
            _mm512_mask_storeu_ps(yc, mk, acc);
        }
    }
}

/* GEMM, one-sum kinds (VNNI: SB_ONE, SB_ONE_XU): super-blocks [b0, b1) of NG row
 * groups g .. g + NG - 1 (decoded chunks aux + i * stride) for C columns, NG * C <= 16.
 * An activation broadcast serves NG groups and a code vector C columns, and the pairs run
 * pair vector first (one load for the C columns, NG * C independent vpdpwssd chains):
 * tile_sb's pairs (a vpmovdw, 8 loads and a chain of 8 per group and column, per
 * super-block) cost about a fifth of the GEMM for q2_k / q3_k. Measured (8 columns x 2
 * groups; 4 x 4 is the same): 1.07x (q2_k) and 1.09x (q3_k) tile_sb's GOP/s. Each output
 * gets tile_sb's float operations in tile_sb's order (integer sums are exact, whatever
 * their grouping); the float sums stay in y between super-blocks, since the tile's integer
 * sums take the registers. */
static ALWAYS_INLINE void tilen_sb(const struct cpu_mm *mm, int64_t g, int64_t m0, int NG, int C, int64_t b0,
                                   int64_t b1, const void *aux, size_t stride, enum sb_kind kind, enum sb_pairs pairs)
{
    const int64_t K = mm->K, ns = K / 16;
    const struct cpu_act *a = mm->a;
    float *y = mm->y + m0 * mm->N + g * R;
    for (int64_t b = b0; b < b1; b++) {
        const struct sb_aux *p[4];
        for (int r = 0; r < NG; r++)
            p[r] = (const struct sb_aux *)(const void *)((const char *)aux + (size_t)r * stride) + (b - b0);
        const int8_t *xb = (kind == SB_ONE_XU ? (const int8_t *)a->xu : a->xq) + m0 * K + b * 256;
        __m512i t[4][8];
        UNROLL
        for (int r = 0; r < NG; r++)
            UNROLL
            for (int c = 0; c < C; c++)
                t[r][c] = _mm512_load_si512(&p[r]->corr);
        /* fully unrolled: with a loop, gcc copies every sum each iteration */
        const int32_t *xc[8];
        UNROLL
        for (int c = 0; c < C; c++)
            xc[c] = (const int32_t *)(const void *)(xb + c * K);
        UNROLL_ALL
        for (int v = 0; v < 64; v++) {
            __m512i w[4];
            UNROLL
            for (int r = 0; r < NG; r++)
                w[r] = _mm512_load_si512(&p[r]->q[v]);
            UNROLL
            for (int c = 0; c < C; c++) {
                __m512i xv = bcast_mem(xc[c] + v);
                UNROLL
                for (int r = 0; r < NG; r++)
                    t[r][c] = kind == SB_ONE_XU ? dpbusd(t[r][c], xv, w[r]) : dpbusd(t[r][c], w[r], xv);
            }
        }
        /* the columns' 16 sums as 8 pairs of int16 (|sum| <= 16 * 127) */
        int32_t pk[8][8];
        if (pairs != SB_PAIRS_NONE) {
            UNROLL
            for (int c = 0; c < C; c++)
                _mm256_storeu_si256((__m256i *)pk[c],
                                    _mm512_cvtepi32_epi16(_mm512_loadu_si512(a->xs + (m0 + c) * ns + b * 16)));
        }
        /* pairs, each pair vector loaded once for the C columns */
        if (pairs == SB_PAIRS_TOT)
            tilen_pairs(p, NG, C, pk, t);
        tilen_acc(mm, g, m0, NG, C, b, p, y, t, NULL);
        if (pairs == SB_PAIRS_MIN) {
            UNROLL
            for (int r = 0; r < NG; r++)
                UNROLL
                for (int c = 0; c < C; c++)
                    t[r][c] = _mm512_setzero_si512();
            tilen_pairs(p, NG, C, pk, t);
            tilen_acc(mm, g, m0, NG, C, b, p, y, NULL, t);
        }
    }
}
#endif

#ifdef CPU_VNNI
/* ---- AMX, super-block formats: q2_k and q3_k ----
 *
 * q2_k's prescaled codes (u8) and q3_k's prescaled signed codes are one integer sum per
 * super-block and row, and the decoded chunk's code vectors q[v] are B tiles of K = 64
 * (16 vectors). So a C tile is t[r][c] of tilen_sb for 16 columns: C[c][row] = sum_k
 * xq[c][k] * code[row][k] (tdpbsud: s8 x u8, q2_k; tdpbssd: s8 x s8, q3_k, where the
 * VNNI tile sums xu * code from -128 * sum of codes: the same integer). The tiles of a
 * super-block (K = 256, 4 products) are stored, and tilen_pairs and tilen_acc's float
 * terms finish them 8 columns at a time: every output gets tilen_sb's integer sum and its
 * float operations in its order. C0..C3 hold 2 row groups x 2 column tiles of 16. */
/* Super-blocks [b0, b1) of NG (1, 2) row groups from g (decoded chunks aux + i * stride)
 * for NC (1, 2) tiles of 16 columns from m0. SGN: signed codes (q3_k). */
static ALWAYS_INLINE void amx_sb(const struct cpu_mm *mm, int64_t g, int64_t m0, int NG, int NC, int64_t b0, int64_t b1,
                                 const char *aux, size_t stride, enum sb_pairs pairs, bool sgn)
{
    const int64_t K = mm->K, N = mm->N, ns = K / 16;
    const struct cpu_act *a = mm->a;
    int32_t cb[4][16][16] __attribute__((aligned(64))); /* [group * 2 + column tile][column][row] */
    int32_t pk[32][8];                                    /* the columns' 16 sums as 8 pairs of int16 */
    for (int64_t b = b0; b < b1; b++) {
        const struct sb_aux *p[2];
        for (int r = 0; r < NG; r++)
            p[r] = (const struct sb_aux *)(const void *)(aux + (size_t)r * stride) + (b - b0);
        const int8_t *x0 = a->xq + m0 * K + b * 256, *x1 = x0 + 16 * K;
        AMX_ZERO(0);
        AMX_ZERO(1);
        AMX_ZERO(2);
        AMX_ZERO(3);
        for (int kk = 0; kk < 4; kk++) {
            AMX_LOAD(4, x0 + 64 * kk, K);
            AMX_LOAD(6, &p[0]->q[16 * kk], 64);
            AMX_DP(0, 4, 6, sgn);
            if (NG == 2) {
                AMX_LOAD(7, &p[1]->q[16 * kk], 64);
                AMX_DP(2, 4, 7, sgn);
            }
            if (NC == 2) {
                AMX_LOAD(5, x1 + 64 * kk, K);
                AMX_DP(1, 5, 6, sgn);
                if (NG == 2)
                    AMX_DP(3, 5, 7, sgn);
            }
        }
        AMX_STORE(0, cb[0], 64);
        if (NC == 2)
            AMX_STORE(1, cb[1], 64);
        if (NG == 2) {
            AMX_STORE(2, cb[2], 64);
            if (NC == 2)
                AMX_STORE(3, cb[3], 64);
        }
        if (pairs != SB_PAIRS_NONE)
            for (int c = 0; c < 16 * NC; c++)
                _mm256_storeu_si256((__m256i *)pk[c],
                                    _mm512_cvtepi32_epi16(_mm512_loadu_si512(a->xs + (m0 + c) * ns + b * 16)));
        /* tilen_sb's finish, 8 columns of one group at a time */
        for (int r = 0; r < NG; r++) {
            for (int h = 0; h < 2 * NC; h++) {
                const int64_t m = m0 + 8 * h;
                const int32_t(*cc)[16] = cb[2 * r + h / 2] + 8 * (h % 2);
                float *y = mm->y + m * N + (g + r) * R;
                __m512i t[1][8], ms[1][8];
                UNROLL
                for (int c = 0; c < 8; c++) {
                    t[0][c] = _mm512_load_si512(cc[c]);
                    ms[0][c] = _mm512_setzero_si512();
                }
                if (pairs == SB_PAIRS_TOT)
                    tilen_pairs(&p[r], 1, 8, pk + 8 * h, t);
                if (pairs == SB_PAIRS_MIN)
                    tilen_pairs(&p[r], 1, 8, pk + 8 * h, ms);
                tilen_acc(mm, g + r, m, 1, 8, b, &p[r], y, t, pairs == SB_PAIRS_MIN ? ms : NULL);
            }
        }
    }
}

/* GEMM columns [0, M rounded down to 16) of row groups [ga, gz) on the tile unit; returns
 * where the columns it left (fewer than 16) begin */
static ALWAYS_INLINE int64_t amx_cols_groups(const struct cpu_mm *mm, int64_t ga, int64_t gz, int64_t k0, int64_t k1,
                                             const char *aux, size_t stride, enum sb_pairs pairs, bool sgn)
{
    const int64_t M = mm->a->M;
    int64_t m = 0;
    while (M - m >= 16) {
        const int NC = M - m >= 32 ? 2 : 1;
        int64_t g = ga;
        for (; g + 2 <= gz; g += 2)
            if (NC == 2)
                amx_sb(mm, g, m, 2, 2, k0, k1, aux + (size_t)(g - ga) * stride, stride, pairs, sgn);
            else
                amx_sb(mm, g, m, 2, 1, k0, k1, aux + (size_t)(g - ga) * stride, stride, pairs, sgn);
        if (g < gz) {
            if (NC == 2)
                amx_sb(mm, g, m, 1, 2, k0, k1, aux + (size_t)(g - ga) * stride, stride, pairs, sgn);
            else
                amx_sb(mm, g, m, 1, 1, k0, k1, aux + (size_t)(g - ga) * stride, stride, pairs, sgn);
        }
        m += 16 * NC;
    }
    return m;
}

#endif

/* ---- the super-block formats' decoders: FMT_begin (words, scale bytes) and accessors ---- */

/* the 2-bit codes of q2_k / q3_k: vector v is crumb k = (v%32)/8 of qs word 8(v/32) + v%8 */
static ALWAYS_INLINE __m512i crumbs(const char *words, int qs0, int v)
{
    int k = (v % 32) / 8;
    __m512i w = load_word(words, qs0 + 8 * (v / 32) + v % 8);
    return k ? _mm512_srli_epi16(w, (unsigned)(2 * k)) : w;
}

/* q2_k (21 words): scales (words 0..3: sub-block j in byte j%4 of word j/4, scale in the
 * low nibble, min in the high), qs (4..19), (d, dmin) (20). Sub-block = v/4 = chain. */
static ALWAYS_INLINE void q2_k_begin(struct sb_src *s, const char *blk) { s->blk = s->w = blk; }
static ALWAYS_INLINE __m512i q2_k_q(const struct sb_src *s, int v)
{
    return _mm512_and_si512(crumbs(s->w, 4, v), _mm512_set1_epi8(3));
}
static ALWAYS_INLINE __m512i q2_k_sc(const struct sb_src *s, int t) /* (scale, 0) */
{
    return _mm512_and_si512(lane_byte_i32(load_word(s->w, t / 4), t % 4, false), _mm512_set1_epi32(15));
}
static ALWAYS_INLINE __m512i q2_k_pair(const struct sb_src *s, int i) /* mins of sub-blocks 2i, 2i+1 */
{
    return _mm512_srli_epi16(lane_byte_pair(load_word(s->w, i / 2), 2 * (i % 2), false), 4);
}
static ALWAYS_INLINE __m512 q2_k_d(const struct sb_src *s) { return half_lanes(load_word(s->w, 20), 0); }
static ALWAYS_INLINE __m512 q2_k_dmin(const struct sb_src *s) { return half_lanes(load_word(s->w, 20), 1); }
/* prescaled codes sc * q (vpmullw of bytes: sc * q <= 45 never carries into the next byte) */
static ALWAYS_INLINE __m512i q2_k_qpre(const struct sb_src *s, int v)
{
    int j = v / 4;
    __m512i sc = _mm512_and_si512(lane_byte_x2(load_word(s->w, j / 4), j % 4, false), _mm512_set1_epi16(15));
    return _mm512_mullo_epi16(q2_k_q(s, v), sc);
}

/* q3_k (d; words: hmask 0..7, qs 8..23, scales 24..26). Codes c = q2 + 4 * hbit (0..7),
 * weight d * s' * (c - 4) with s' the 6-bit scale - 32. s[i]: the scales of sub-blocks
 * 4i..4i+3 as signed bytes. */
static ALWAYS_INLINE void q3_k_begin(struct sb_src *s, const char *blk)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    s->blk = blk;
    s->w = blk + R * 2;
    __m512i A = load_word(s->w, 24), B = load_word(s->w, 25), Cw = load_word(s->w, 26);
    s->s[0] = or_and(_mm512_and_si512(A, m4), _mm512_slli_epi16(Cw, 4), m30);
    s->s[1] = or_and(_mm512_and_si512(B, m4), _mm512_slli_epi16(Cw, 2), m30);
    s->s[2] = or_and(nib_hi(A), Cw, m30);
    s->s[3] = or_and(nib_hi(B), _mm512_srli_epi16(Cw, 2), m30);
    for (int i = 0; i < 4; i++)
        s->s[i] = _mm512_sub_epi8(s->s[i], _mm512_set1_epi8(32));
}
static ALWAYS_INLINE __m512i q3_k_q(const struct sb_src *s, int v)
{
    /* bits 0..1 from the crumb, bit 2 from the hmask word's bit v/8 (of byte e%32) */
    __m512i hb = bit_to(load_word(s->w, v % 8), v / 8, 2);
    return _mm512_and_si512(_mm512_ternarylogic_epi32(_mm512_set1_epi8(3), crumbs(s->w, 8, v), hb, 0xCA),
                            _mm512_set1_epi8(7));
}
static ALWAYS_INLINE __m512i q3_k_sc(const struct sb_src *s, int t)
{
#ifdef CPU_VNNI
    return _mm512_srai_epi16(_mm512_shuffle_epi8(s->s[t / 4], lane_bytes(Z, t % 4, Z, Z)), 8); /* (s', 0) */
#else
    return lane_byte_x2(s->s[t / 4], t % 4, true);
#endif
}
static ALWAYS_INLINE __m512i q3_k_pair(const struct sb_src *s, int i) /* -4 s' */
{
    return _mm512_sub_epi16(_mm512_setzero_si512(),
                            _mm512_slli_epi16(lane_byte_pair(s->s[i / 2], 2 * (i % 2), true), 2));
}
static ALWAYS_INLINE __m512 q3_k_d(const struct sb_src *s) { return d_halves(s->blk); }
#ifdef CPU_VNNI
/* GEMM: codes s' * (c - 3) (signed, -128..124), pairs -s' */
static ALWAYS_INLINE __m512i q3_k_qpre(const struct sb_src *s, int v)
{
    const __m512i ev = _mm512_set1_epi16(0x00FF);
    int j = v / 4;
    __m512i c = q3_k_q(s, v), sv = _mm512_shuffle_epi8(s->s[j / 4], lane_bytes(j % 4, j % 4, j % 4, j % 4));
    /* s' * c per byte: vpmaddubsw of the even, then of the odd bytes (the other zeroed) */
    __m512i lo = _mm512_maddubs_epi16(_mm512_and_si512(c, ev), sv);
    __m512i hi = _mm512_maddubs_epi16(_mm512_andnot_si512(ev, c), sv);
    __m512i pc = _mm512_mask_blend_epi8((__mmask64)0xAAAAAAAAAAAAAAAAull, lo, _mm512_slli_epi16(hi, 8));
    return _mm512_sub_epi8(pc, _mm512_add_epi8(sv, _mm512_add_epi8(sv, sv)));
}
static ALWAYS_INLINE __m512i q3_k_pairpre(const struct sb_src *s, int i)
{
    return _mm512_sub_epi16(_mm512_setzero_si512(), lane_byte_pair(s->s[i / 2], 2 * (i % 2), true));
}
#endif

/* q4_k / q5_k: the 6-bit scales and mins of sub-blocks 0..3 and 4..7 as bytes of each
 * lane (s[0], s[1]: scales; s[2], s[3]: mins), from scale words 1..3 */
static ALWAYS_INLINE void k4_begin(struct sb_src *s, const char *blk)
{
    const __m512i m6 = _mm512_set1_epi8(0x3F), m30 = _mm512_set1_epi8(0x30);
    s->blk = s->w = blk;
    __m512i A = load_word(blk, 1), B = load_word(blk, 2), Cw = load_word(blk, 3);
    s->s[0] = _mm512_and_si512(A, m6);
    s->s[1] = or_and(nib_lo(Cw), _mm512_srli_epi16(A, 2), m30);
    s->s[2] = _mm512_and_si512(B, m6);
    s->s[3] = or_and(nib_hi(Cw), _mm512_srli_epi16(B, 2), m30);
}
static ALWAYS_INLINE __m512i k4_sc(const struct sb_src *s, int t) /* chain t is in sub-block t/2 */
{
    int j = t / 2;
#ifdef CPU_VNNI
    return lane_byte_i32(s->s[j / 4], j % 4, false); /* int32 for vpmulld, (scale, 0) for vpdpwssd */
#else
    return lane_byte_x2(s->s[j / 4], j % 4, false);
#endif
}
static ALWAYS_INLINE __m512i k4_pair(const struct sb_src *s, int j) /* (min, min) of sub-block j */
{
    return lane_byte_x2(s->s[2 + j / 4], j % 4, false);
}
static ALWAYS_INLINE __m512 k4_d(const struct sb_src *s) { return half_lanes(load_word(s->w, 0), 0); }
static ALWAYS_INLINE __m512 k4_dmin(const struct sb_src *s) { return half_lanes(load_word(s->w, 0), 1); }

/* q4_k (36 words): (d, dmin), scales (1..3), qs (4..35): word 4+i holds in its low nibbles
 * weights 64c + 4(i%8).. (c = i/8) and in its high nibbles those 32 further */
static ALWAYS_INLINE __m512i q4_k_q(const struct sb_src *s, int v)
{
    __m512i w = load_word(s->w, 4 + 8 * (v / 16) + v % 8);
    return (v / 8) % 2 ? nib_hi(w) : nib_lo(w);
}

/* q5_k (44 words): as q4_k with qh (4..11) before qs (12..43): bit 4 of weight e is bit
 * e/32 of byte e%32 of qh, so word 4 + v%8's bit 2c (low nibbles) or 2c+1 (high) */
static ALWAYS_INLINE __m512i q5_k_q(const struct sb_src *s, int v)
{
    int c = v / 16, hi = (v / 8) % 2;
    __m512i w = load_word(s->w, 12 + 8 * c + v % 8), h = load_word(s->w, 4 + v % 8);
    return or_and(hi ? nib_hi(w) : nib_lo(w), bit_to(h, 2 * c + hi, 4), _mm512_set1_epi8(0x10));
}

/* q6_k (d; words: ql 0..31, qh 32..47, scales 48..51). Weight e = 4v + j, half h = v/32,
 * quarter k = (v%32)/8: low 4 bits from nibble (k < 2 ? low : high) of ql word
 * 16h + 8(k&1) + v%8, high 2 bits from bits 2k, 2k+1 of qh word 32 + 8h + v%8. Codes
 * 0..63, corrected by -32 * scale * sum in the pairs. */
static ALWAYS_INLINE void q6_k_begin(struct sb_src *s, const char *blk)
{
    s->blk = blk;
    s->w = blk + R * 2;
    for (int i = 0; i < 4; i++)
        s->s[i] = load_word(s->w, 48 + i);
}
static ALWAYS_INLINE __m512i q6_k_q(const struct sb_src *s, int v)
{
    int h = v / 32, k = (v % 32) / 8;
    __m512i ql = load_word(s->w, 16 * h + 8 * (k & 1) + v % 8), qh = load_word(s->w, 32 + 8 * h + v % 8);
    return or_and(k < 2 ? nib_lo(ql) : nib_hi(ql), bit_to(qh, 2 * k, 4), _mm512_set1_epi8(0x30));
}
static ALWAYS_INLINE __m512i q6_k_sc(const struct sb_src *s, int t)
{
#ifdef CPU_VNNI
    return lane_byte_i32(s->s[t / 4], t % 4, true);
#else
    return lane_byte_x2(s->s[t / 4], t % 4, true);
#endif
}
static ALWAYS_INLINE __m512i q6_k_pair(const struct sb_src *s, int i) /* -32 * scales 2i, 2i+1 */
{
    return _mm512_mullo_epi16(lane_byte_pair(s->s[i / 2], 2 * (i % 2), true), _mm512_set1_epi16(-32));
}
static ALWAYS_INLINE __m512 q6_k_d(const struct sb_src *s) { return d_halves(s->blk); }

/* iq4_xs (34 words): (d, scales_h), scales_l, qs (2..33): sub-block i's codes are qs words
 * 2 + 4i .. 2 + 4i + 3 (weights 32i + 4(w%4).. low nibbles, 16 further high); scale
 * s_i = ls_i - 32, ls_i = (scales_l >> 4i & 15) | (scales_h >> 2i & 3) << 4 per lane. */
static ALWAYS_INLINE void iq4_xs_begin(struct sb_src *s, const char *blk)
{
    s->blk = s->w = blk;
    s->s[0] = load_word(blk, 0);
    s->s[1] = load_word(blk, 1);
    s->s[2] = iq4_table();
}
static ALWAYS_INLINE __m512i iq4_xs_q(const struct sb_src *s, int v)
{
    __m512i w = load_word(s->w, 2 + 4 * (v / 8) + v % 4);
    return _mm512_shuffle_epi8(s->s[2], (v % 8) / 4 ? nib_hi(w) : nib_lo(w));
}
static ALWAYS_INLINE __m512i iq4_xs_s(const struct sb_src *s, int i) /* s_i as int32 */
{
    __m512i ls = or_and(_mm512_and_si512(_mm512_srli_epi32(s->s[1], (unsigned)(4 * i)), _mm512_set1_epi32(15)),
                        _mm512_srli_epi32(s->s[0], (unsigned)(12 + 2 * i)), _mm512_set1_epi32(0x30));
    return _mm512_sub_epi32(ls, _mm512_set1_epi32(32));
}
static ALWAYS_INLINE __m512i iq4_xs_sc(const struct sb_src *s, int t) /* chain t is in sub-block t/2 */
{
#ifdef CPU_VNNI
    return iq4_xs_s(s, t / 2);
#else
    __m512i v = _mm512_and_si512(iq4_xs_s(s, t / 2), _mm512_set1_epi32(0xFFFF));
    return _mm512_or_si512(v, _mm512_slli_epi32(v, 16));
#endif
}
static ALWAYS_INLINE __m512i iq4_xs_pair(const struct sb_src *s, int i) /* -128 * s_i in both halves */
{
    __m512i n = _mm512_and_si512(_mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(iq4_xs_s(s, i), 7)),
                                 _mm512_set1_epi32(0xFFFF));
    return _mm512_or_si512(n, _mm512_slli_epi32(n, 16));
}
static ALWAYS_INLINE __m512 iq4_xs_d(const struct sb_src *s) { return half_lanes(s->s[0], 0); }

/* Decoding a chunk into a buffer, with the accessors of a format (and, for the GEMM
 * preparations, other code and pair accessors and the per-row correction). */
static ALWAYS_INLINE void sb_prep(const char *wg, int64_t b0, int64_t b1, struct sb_aux *ax, bool pf, size_t bb,
                                  void (*begin)(struct sb_src *, const char *), sb_vec_fn getq, sb_vec_fn getsc,
                                  sb_vec_fn getpair, sb_f32_fn getd, sb_f32_fn getdmin, bool with_sc, bool corr_sum)
{
    for (int64_t b = b0; b < b1; b++, ax++) {
        const char *blk = wg + (size_t)b * R * bb;
        if (pf)
            prefetch_lines(blk, R * bb);
        struct sb_src s;
        begin(&s, blk);
        __m512i sum = _mm512_setzero_si512();
        UNROLL_ALL
        for (int v = 0; v < 64; v++) {
            __m512i q = getq(&s, v);
            _mm512_store_si512(&ax->q[v], q);
#ifdef CPU_VNNI
            if (corr_sum) /* sum of the signed codes of each row */
                sum = _mm512_dpbusd_epi32(sum, _mm512_set1_epi8(1), q);
#endif
        }
        if (with_sc) {
            UNROLL_ALL
            for (int t = 0; t < 16; t++)
                _mm512_store_si512(&ax->sc[t], getsc(&s, t));
        }
        UNROLL_ALL
        for (int i = 0; i < 8; i++)
            _mm512_store_si512(&ax->pair[i], getpair(&s, i));
        ax->corr = corr_sum ? _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)) : _mm512_setzero_si512();
        ax->d = getd(&s);
        ax->dmin = getdmin(&s);
    }
}

/* One column: row group g over all of K, the codes going from the words straight into
 * the dot products (the same operations as tile_sb with C = 1) */
static ALWAYS_INLINE void dec1_sb(const struct cpu_mm *mm, int64_t g, size_t bb, void (*begin)(struct sb_src *, const char *),
                                  sb_vec_fn getq, sb_vec_fn getsc, sb_vec_fn getpair, sb_f32_fn getd, sb_f32_fn getdmin,
                                  enum sb_kind kind, enum sb_pairs pairs)
{
    const int64_t nsb = mm->K / 256;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nsb; b++) {
        const char *blk = wg + (size_t)b * R * bb;
        prefetch_lines(blk, R * bb);
        struct sb_src s;
        begin(&s, blk);
        sb_dot(mm, 0, 1, b, &s, getq, getsc, getpair, zero_vec, getd, getdmin, kind, pairs, &acc, true);
    }
    store_tile(mm, g, 0, 1, &acc);
}

#ifdef CPU_VNNI
#define KIND_DEC_Q2 SB_DPW
#define KIND_MM_Q2 SB_ONE
#define KIND_Q3 SB_DPW
#define KIND_Q4 SB_DPW
#define KIND_Q5 SB_MUL8
#define KIND_Q6 SB_MUL4
#define KIND_IQ4XS SB_MUL8
#define PAIRS_IQ4XS SB_PAIRS_TOT
#else
#define KIND_DEC_Q2 SB_ONE
#define KIND_MM_Q2 SB_ONE
#define KIND_Q3 SB_MADD
#define KIND_Q4 SB_MADD
#define KIND_Q5 SB_MADD
#define KIND_Q6 SB_MADD
#define KIND_IQ4XS SB_MADD_SGN
#define PAIRS_IQ4XS SB_PAIRS_NONE
#endif

/* GEMM kinds that take several row groups per tile (tilen_sb, VNNI): the format's tile
 * there, else NULL (and the one-group tile_sb) */
#ifdef CPU_VNNI
#define SB_TILEN_KIND(K) ((K) == SB_ONE || (K) == SB_ONE_XU)
#define SB_TILEN_DEF(X, KIND, PAIRS)                                                              \
    static ALWAYS_INLINE void tilen_mm_##X(const struct cpu_mm *mm, int64_t g, int64_t m0, int NG, int C, \
                                           int64_t b0, int64_t b1, const void *aux, size_t stride) \
    {                                                                                             \
        tilen_sb(mm, g, m0, NG, C, b0, b1, aux, stride, KIND, PAIRS);                             \
    }
#define SB_TILEN_FN(X, KIND) (SB_TILEN_KIND(KIND) ? tilen_mm_##X : NULL)
#else
#define SB_TILEN_DEF(X, KIND, PAIRS)
#define SB_TILEN_FN(X, KIND) NULL
#endif

/* A super-block format: its decode-path (DEC, also for 2..7 columns) and GEMM-path (MM)
 * preparations and tiles, and its entry. */
#define SB_FORMAT(X, BLOCK, BEGIN, Q_DEC, SC, PAIR, D, DMIN, KIND_DEC, PAIRS, Q_MM, PAIR_MM, KIND_MM, CORR_MM)   \
    static ALWAYS_INLINE void prep_dec_##X(const char *wg, int64_t b0, int64_t b1, struct sb_aux *ax, bool pf) \
    {                                                                                             \
        sb_prep(wg, b0, b1, ax, pf, sizeof(BLOCK), BEGIN, Q_DEC, SC, PAIR, D, DMIN, KIND_DEC != SB_ONE, false); \
    }                                                                                             \
    static ALWAYS_INLINE void prep_mm_##X(const char *wg, int64_t b0, int64_t b1, struct sb_aux *ax, bool pf) \
    {                                                                                             \
        sb_prep(wg, b0, b1, ax, pf, sizeof(BLOCK), BEGIN, Q_MM, SC, PAIR_MM, D, DMIN, KIND_MM != SB_ONE && KIND_MM != SB_ONE_XU, \
                CORR_MM);                                                                         \
    }                                                                                             \
    static ALWAYS_INLINE void tile_dec_##X(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, int64_t b0, \
                                           int64_t b1, const void *aux)                           \
    {                                                                                             \
        tile_sb(mm, g, m0, C, b0, b1, aux, KIND_DEC, PAIRS);                                      \
    }                                                                                             \
    static ALWAYS_INLINE void tile_mm_##X(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, int64_t b0, \
                                          int64_t b1, const void *aux)                            \
    {                                                                                             \
        tile_sb(mm, g, m0, C, b0, b1, aux, KIND_MM, PAIRS);                                       \
    }                                                                                             \
    static void dec1_##X(const struct cpu_mm *mm, int64_t g)                                      \
    {                                                                                             \
        dec1_sb(mm, g, sizeof(BLOCK), BEGIN, Q_DEC, SC, PAIR, D, DMIN, KIND_DEC, PAIRS);         \
    }                                                                                             \
    SB_TILEN_DEF(X, KIND_MM, PAIRS)                                                               \
    DECODED_ENTRY(mm_##X, dec1_##X, prep_dec_##X, tile_dec_##X, prep_mm_##X, tile_mm_##X,         \
                  SB_TILEN_FN(X, KIND_MM), amx_none, sb_aux, 256, KC_SB, KC_SB_DEC)

#ifdef CPU_VNNI
#define Q2_K_DEC_Q q2_k_q
#define Q3_K_MM q3_k_qpre, q3_k_pairpre, SB_ONE_XU, true
#else
#define Q2_K_DEC_Q q2_k_qpre
#define Q3_K_MM q3_k_q, q3_k_pair, SB_MADD, false
#endif
SB_FORMAT(q2_k, struct mq_block_q2_k, q2_k_begin, Q2_K_DEC_Q, q2_k_sc, q2_k_pair, q2_k_d, q2_k_dmin, KIND_DEC_Q2,
          SB_PAIRS_MIN, q2_k_qpre, q2_k_pair, KIND_MM_Q2, false)
/* (Q3_K_MM is expanded into its four arguments first) */
#define SB_FORMAT_X(...) SB_FORMAT(__VA_ARGS__)
SB_FORMAT_X(q3_k, struct mq_block_q3_k, q3_k_begin, q3_k_q, q3_k_sc, q3_k_pair, q3_k_d, zero_f32, KIND_Q3,
            SB_PAIRS_TOT, Q3_K_MM)
#ifdef CPU_VNNI
/* The avx512amx path's q2_k and q3_k: the avx512vnni entries, with the tile unit taking
 * the GEMM's columns 16 at a time (tile configured per chunk: a few hundred cycles against
 * the chunk's 4 groups x 4 super-blocks x M columns) */
#define AMX_SB_ENTRY(X, PAIRS, SGN)                                                               \
    static int64_t amx_mm_##X(const struct cpu_mm *mm, int64_t ga, int64_t gz, int64_t k0, int64_t k1, \
                              const char *aux, size_t stride)                                     \
    {                                                                                             \
        if (mm->a->M < 16)                                                                        \
            return 0;                                                                             \
        amx_begin(64);                                                                            \
        int64_t m = amx_cols_groups(mm, ga, gz, k0, k1, aux, stride, PAIRS, SGN);                 \
        amx_end();                                                                                \
        return m;                                                                                 \
    }                                                                                             \
    DECODED_ENTRY(mm_##X##_amx, dec1_##X, prep_dec_##X, tile_dec_##X, prep_mm_##X, tile_mm_##X,   \
                  tilen_mm_##X, amx_mm_##X, sb_aux, 256, KC_SB, KC_SB_DEC)
AMX_SB_ENTRY(q2_k, SB_PAIRS_MIN, false)
AMX_SB_ENTRY(q3_k, SB_PAIRS_TOT, true)
#endif
SB_FORMAT(q4_k, struct mq_block_q4_k, k4_begin, q4_k_q, k4_sc, k4_pair, k4_d, k4_dmin, KIND_Q4, SB_PAIRS_MIN,
          q4_k_q, k4_pair, KIND_Q4, false)
SB_FORMAT(q5_k, struct mq_block_q5_k, k4_begin, q5_k_q, k4_sc, k4_pair, k4_d, k4_dmin, KIND_Q5, SB_PAIRS_MIN,
          q5_k_q, k4_pair, KIND_Q5, false)
SB_FORMAT(q6_k, struct mq_block_q6_k, q6_k_begin, q6_k_q, q6_k_sc, q6_k_pair, q6_k_d, zero_f32, KIND_Q6,
          SB_PAIRS_TOT, q6_k_q, q6_k_pair, KIND_Q6, false)
SB_FORMAT(iq4_xs, struct mq_block_iq4_xs, iq4_xs_begin, iq4_xs_q, iq4_xs_sc, iq4_xs_pair, iq4_xs_d, zero_f32,
          KIND_IQ4XS, PAIRS_IQ4XS, iq4_xs_q, iq4_xs_pair, KIND_IQ4XS, false)
#undef Z
#undef LB

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

/* ---- activations to Q8_K: bit-identical to cpu_quantize_q8k_scalar ----
 *
 * Per 256: amax over |x|; a NaN or infinite element (or all zero) gives codes 0 and a NaN
 * (zero) scale; else the first element of magnitude amax gives the signed max, iscale =
 * -127 / max, codes = ggml's nearest_int (the 1.5 * 2^23 trick, reproduced bit for bit,
 * also where iscale overflowed to infinity for a subnormal max), clamped to 127 and
 * truncated to int8 as the scalar cast does; NaN products (infinity times 0) give 0. Sums
 * of 16 codes come from vpsadbw on the u8 codes (code + 128), minus 16 * 128. */
static void quantize_q8k(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __m512i mant = _mm512_set1_epi32(0x007FFFFF), half = _mm512_set1_epi32(0x00400000);
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        int8_t *qb = q + b * 256;
        __m512 mx = _mm512_setzero_ps();
        __mmask16 nan = 0;
        for (int i = 0; i < 16; i++) {
            __m512 v = _mm512_loadu_ps(xb + 16 * i);
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            mx = _mm512_max_ps(_mm512_abs_ps(v), mx);
        }
        float amax = _mm512_reduce_max_ps(mx);
        if (amax == 0.0f || isinf(amax) || nan) {
            d[b] = amax == 0.0f && !nan ? 0.0f : NAN;
            memset(qb, 0, 256);
        } else {
            const __m512 va = _mm512_set1_ps(amax);
            float max = 0.0f;
            for (int i = 0; i < 16; i++) {
                __mmask16 k = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(xb + 16 * i)), va, _CMP_EQ_OQ);
                if (k) {
                    max = xb[16 * i + __builtin_ctz(k)];
                    break;
                }
            }
            float iscale = -127.0f / max;
            const __m512 vs = _mm512_set1_ps(iscale);
            for (int i = 0; i < 16; i++) {
                __m512 p = _mm512_mul_ps(vs, _mm512_loadu_ps(xb + 16 * i));
                __m512i t = _mm512_castps_si512(_mm512_add_ps(p, magic));
                __m512i v = _mm512_sub_epi32(_mm512_and_si512(t, mant), half);
                v = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(p, p, _CMP_ORD_Q), v);
                v = _mm512_min_epi32(v, _mm512_set1_epi32(127));
                _mm_storeu_si128((__m128i *)(qb + 16 * i), _mm512_cvtepi32_epi8(v));
            }
            d[b] = 1.0f / iscale;
        }
        for (int i = 0; i < 4; i++) {
            __m512i ub = _mm512_xor_si512(_mm512_loadu_si512(qb + 64 * i), _mm512_set1_epi8((char)0x80));
            if (u)
                _mm512_storeu_si512(u + b * 256 + 64 * i, ub);
            /* 8 sums of 8 bytes; neighbours make the 4 sums of 16 (u8 sums: + 16 * 128) */
            __m512i s8 = _mm512_sad_epu8(ub, _mm512_setzero_si512());
            __m512i s16 = _mm512_maskz_compress_epi64(0x55, _mm512_add_epi64(s8, _mm512_bsrli_epi128(s8, 8)));
            __m128i v = _mm256_castsi256_si128(_mm512_cvtepi64_epi32(s16));
            _mm_storeu_si128((__m128i *)(s + b * 16 + 4 * i), _mm_sub_epi32(v, _mm_set1_epi32(16 * 128)));
        }
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

static ALWAYS_INLINE float dot_body(const float *a, const float *b, int64_t n)
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

static float dot(const float *a, const float *b, int64_t n) { return dot_body(a, b, n); }

/* out[p] = dot(q, k + p * stride, D) * scale for p < n: an attention row's scores, each
 * with dot's operations; returns the largest (NaN scores skipped, as kern.h says) */
static float dots(const float *q, const float *k, int64_t stride, int64_t n, int64_t D, float scale, float *out)
{
    float mx = -INFINITY;
    for (int64_t p = 0; p < n; p++) {
        out[p] = dot_body(q, k + p * stride, D) * scale;
        mx = out[p] > mx ? out[p] : mx;
    }
    return mx;
}

/* o += w[p] * (v + p * stride) for p < n in order: axpy's operation on every element, with
 * 64 outputs at a time kept in registers over p */
static void axpys(const float *w, const float *v, int64_t stride, int64_t n, int64_t D, float *o)
{
    for (int64_t i = 0; i < D; i += 64) {
        __mmask16 mk[4];
        __m512 acc[4];
        UNROLL
        for (int u = 0; u < 4; u++) {
            int64_t e = i + 16 * u, left = D - e;
            mk[u] = left <= 0 ? (__mmask16)0 : left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
            acc[u] = _mm512_maskz_loadu_ps(mk[u], o + e);
        }
        for (int64_t p = 0; p < n; p++) {
            const __m512 sv = _mm512_set1_ps(w[p]);
            const float *vp = v + p * stride + i;
            UNROLL
            for (int u = 0; u < 4; u++)
                acc[u] = _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(mk[u], vp + 16 * u), acc[u]);
        }
        UNROLL
        for (int u = 0; u < 4; u++)
            _mm512_mask_storeu_ps(o + i + 16 * u, mk[u], acc[u]);
    }
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

/* A path's kernel table; the avx512amx path differs in q8_0, q4_0, q2_k and q3_k only */
#ifdef CPU_BF16
#define MM_BF16 mm_bf16_dot
#else
#define MM_BF16 mm_bf16
#endif
#define KERN_TABLE(NAME, ISA, MM_Q8_0, MM_Q4_0, MM_Q2_K, MM_Q3_K)                                                   \
    const struct cpu_kern NAME = {                                                                \
        .isa = ISA,                                                                               \
        .rows = R,                                                                                \
        .bf16_dot = BF16_DOT,                                                                     \
        .matmul = {[MQ_DTYPE_F32] = mm_f32, [MQ_DTYPE_F16] = mm_f16, [MQ_DTYPE_BF16] = MM_BF16,   \
                   [MQ_DTYPE_Q8_0] = MM_Q8_0, [MQ_DTYPE_Q4_0] = MM_Q4_0, [MQ_DTYPE_Q4_1] = mm_q4_1, \
                   [MQ_DTYPE_Q5_0] = mm_q5_0, [MQ_DTYPE_Q5_1] = mm_q5_1, [MQ_DTYPE_IQ4_NL] = mm_iq4_nl, \
                   [MQ_DTYPE_Q2_K] = MM_Q2_K, [MQ_DTYPE_Q3_K] = MM_Q3_K, [MQ_DTYPE_Q4_K] = mm_q4_k, \
                   [MQ_DTYPE_Q5_K] = mm_q5_k, [MQ_DTYPE_Q6_K] = mm_q6_k, [MQ_DTYPE_IQ4_XS] = mm_iq4_xs}, \
        .quantize_q8 = quantize_q8,                                                               \
        .quantize_q8k = quantize_q8k,                                                             \
        .add = add,                                                                               \
        .swiglu = swiglu,                                                                         \
        .sumsq = sumsq,                                                                           \
        .scale_mul = scale_mul,                                                                   \
        .dot = dot,                                                                               \
        .axpy = axpy,                                                                             \
        .dots = dots,                                                                             \
        .axpys = axpys,                                                                           \
        .exp_sum = exp_sum,                                                                       \
    };
#ifdef CPU_BF16
#define BF16_DOT true
#else
#define BF16_DOT false
#endif
KERN_TABLE(KERN, ISA_NAME, mm_q8_0, mm_q4_0, mm_q2_k, mm_q3_k)
#ifdef CPU_VNNI
KERN_TABLE(cpu_kern_avx512amx, "avx512amx", mm_q8_0_amx, mm_q4_0_amx, mm_q2_k_amx, mm_q3_k_amx)
#endif

