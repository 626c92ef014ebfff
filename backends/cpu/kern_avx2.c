/* backends/cpu/kern_avx2.c - AVX2 + FMA + F16C kernels on 8-row groups (kern.h layouts).
 *
 * The same tile scheme as the AVX-512 path with 8-lane vectors: one vector holds 8 rows
 * of one output column; up to 4 columns per tile (16 registers). Integer dot products use
 * vpmaddubsw (unsigned x signed byte pairs into 16 bits) and vpmaddwd:
 *   q8_0: |w| times x with w's sign applied (ggml's trick; no 16-bit saturation since
 *         2 * 128 * 127 < 32768)
 *   q4_0: codes 0..15 times x, minus 8 * sum x per block
 *   the other block formats (q4_1 .. iq4_xs, "words" layouts): codes unpacked lane-parallel
 *         to unsigned bytes (iq4 values signed, with q8_0's sign trick), sub-block sums
 *         scaled by vpmaddwd with each row's scale; see "words" layouts below
 * Activations are quantized to Q8_0 and Q8_K here too (Q8_K bit-identical to
 * cpu_quantize_q8k_scalar, as every path's).
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

/* ---- the other block formats: "words" layouts (kern.h) ----
 *
 * A 32-byte load of word w of a group-block holds word w (4 bytes) of the 8 rows' blocks,
 * one row per 32-bit lane. Codes and scales are unpacked lane-parallel with shifts, masks
 * and in-lane byte shuffles (the same for every row), so a vector of unpacked codes holds
 * 4 consecutive weights of 8 rows, and one broadcast of the 4 matching activation codes
 * multiplies it (vpmaddubsw: unsigned codes x signed activations, pairs into 16 bits).
 * 16-bit sums run as long as they cannot overflow (bounds noted per format; activation
 * codes are within -127..127), then vpmaddwd adds pairs into 32 bits: against ones, or
 * against each row's 16-bit sub-block scale, which scales a sub-block in the same
 * instruction. Offsets of codes (q5_0's 16, q3_k's 4, q6_k's 32) and the "_1" mins are
 * applied with the activations' exact integer sums (xs), never per element. Per block
 * (Q8_0) or super-block (Q8_K) the int32 sums are scaled into float accumulators. */

#define UNROLL _Pragma("GCC unroll 16")
#define WORD(wv, w) _mm256_loadu_si256((wv) + (w))

static inline __m256i bcast4(const void *p)
{
    return _mm256_set1_epi32(load_i32(p));
}

/* vpshufb control: byte i of every 32-bit lane takes byte b_i of the same lane, or zero
 * where b_i < 0 */
static inline __m256i lane_ctrl(int b0, int b1, int b2, int b3)
{
    const __m256i lane = _mm256_setr_epi32(0, 0x04040404, 0x08080808, 0x0C0C0C0C, 0, 0x04040404,
                                           0x08080808, 0x0C0C0C0C);
    uint32_t pat = (uint32_t)(b0 < 0 ? 0x80 : b0) | (uint32_t)(b1 < 0 ? 0x80 : b1) << 8 |
                   (uint32_t)(b2 < 0 ? 0x80 : b2) << 16 | (uint32_t)(b3 < 0 ? 0x80 : b3) << 24;
    return _mm256_add_epi8(_mm256_set1_epi32((int)pat), lane);
}

/* Bytes b0 and b1 of every 32-bit lane as two sign-extended 16-bit values (b0 low):
 * a vpmaddwd operand of per-row scales */
static inline __m256i lane_pair16(__m256i v, int b0, int b1)
{
    return _mm256_srai_epi16(_mm256_shuffle_epi8(v, lane_ctrl(-1, b0, -1, b1)), 8);
}

/* The f16 pair of every 32-bit lane (a block's (d, m) or (d, dmin) word) as floats */
static inline void lane_f16_pair(__m256i v, __m256 *lo, __m256 *hi)
{
    __m256i p = _mm256_packus_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)),
                                    _mm256_srli_epi32(v, 16));
    p = _mm256_permute4x64_epi64(p, _MM_SHUFFLE(3, 1, 2, 0)); /* 8 lo halves, 8 hi halves */
    *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(p));
    *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(p, 1));
}

/* Bits from..from+n-1 of every byte moved to bits to..to+n-1, the other bits cleared */
static inline __m256i byte_bits(__m256i v, int from, int to, int n)
{
    __m256i t = from >= to ? _mm256_srli_epi16(v, from - to) : _mm256_slli_epi16(v, to - from);
    return _mm256_and_si256(t, _mm256_set1_epi8((char)(((1 << n) - 1) << to)));
}

static inline __m256i low_nibbles(__m256i v)
{
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}
static inline __m256i high_nibbles(__m256i v)
{
    return low_nibbles(_mm256_srli_epi16(v, 4));
}

/* The Q8_K sums per 16 codes of one super-block (|s| <= 16 * 127) as int16, so that
 * bcast4(out + 2p) is the pair (s[2p], s[2p+1]) for vpmaddwd */
static inline void bsums16(const int32_t *xs, int16_t out[16])
{
    __m256i p = _mm256_packs_epi32(_mm256_loadu_si256((const __m256i *)xs),
                                   _mm256_loadu_si256((const __m256i *)(xs + 8)));
    _mm256_storeu_si256((__m256i *)out, _mm256_permute4x64_epi64(p, _MM_SHUFFLE(3, 1, 2, 0)));
}

/* ---- Q8_0 activations: blocks of 32 ---- */

/* q4_1 (5 words: (d, m), then qs): word 1+t holds codes 4t..4t+3 in its low nibbles and
 * 16+4t..16+4t+3 in its high ones. y += d*dx*sum(q*x) + m*dx*sum(x); the 16-bit sums of a
 * block reach 8 * 2 * 15 * 127 = 30480. */
static inline __attribute__((always_inline)) void tile_q4_1(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    __m256 acc[CMAX];
    UNROLL
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i *wv = (const __m256i *)(wg + (size_t)b * R * sizeof(struct mq_block_q4_1));
        __m256 d, m;
        lane_f16_pair(WORD(wv, 0), &d, &m);
        __m256i p[CMAX];
        UNROLL
        for (int c = 0; c < CMAX; c++)
            p[c] = _mm256_setzero_si256();
        UNROLL
        for (int t = 0; t < 4; t++) {
            __m256i v = WORD(wv, 1 + t), lo = low_nibbles(v), hi = high_nibbles(v);
            UNROLL
            for (int c = 0; c < C; c++) {
                const int8_t *x = a->xq + (m0 + c) * K + b * 32 + 4 * t;
                p[c] = _mm256_add_epi16(p[c], _mm256_maddubs_epi16(lo, bcast4(x)));
                p[c] = _mm256_add_epi16(p[c], _mm256_maddubs_epi16(hi, bcast4(x + 16)));
            }
        }
        UNROLL
        for (int c = 0; c < C; c++) {
            float dx = a->xd[(m0 + c) * nb + b];
            __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(p[c], _mm256_set1_epi16(1)));
            acc[c] = _mm256_fmadd_ps(s, _mm256_mul_ps(d, _mm256_set1_ps(dx)), acc[c]);
            acc[c] =
                _mm256_fmadd_ps(m, _mm256_set1_ps(dx * (float)a->xs[(m0 + c) * nb + b]), acc[c]);
        }
    }
    store_tile(mm, g, m0, C, acc);
}

/* Bit 4 of byte i (0..3) of every lane set to bit first+i of the lane (first % 4 == 0), the
 * other bits clear: q5's high bits, spread by a byte broadcast, a bit test and a compare */
static inline __m256i q5_hbits(__m256i qh, int first)
{
    int byte = first / 8;
    __m256i m = _mm256_set1_epi32((int)(0x08040201u << (first % 8)));
    __m256i t = _mm256_and_si256(_mm256_shuffle_epi8(qh, lane_ctrl(byte, byte, byte, byte)), m);
    return _mm256_and_si256(_mm256_cmpeq_epi8(t, m), _mm256_set1_epi8(0x10));
}

/* q5_0 (d apart, 5 words: qh, then qs as q4_1's) and q5_1 (6 words: (d, m), qh, qs): bit 4
 * of code e is bit e of the lane's qh word. Codes 0..31: y += d*dx*(sum(q*x) - 16*sum(x))
 * for q5_0, d*dx*sum(q*x) + m*dx*sum(x) for q5_1. 16-bit sums cover two words (lo and hi
 * nibbles): 4 * 2 * 31 * 127 = 31496. */
static inline __attribute__((always_inline)) void tile_q5(const struct cpu_mm *mm, int64_t g,
                                                          int64_t m0, int C, bool q5_1)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    const size_t bytes = q5_1 ? sizeof(struct mq_block_q5_1) : sizeof(struct mq_block_q5_0);
    __m256 acc[CMAX];
    UNROLL
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const char *blk = wg + (size_t)b * R * bytes;
        __m256 d, m = _mm256_setzero_ps();
        const __m256i *wv;
        if (q5_1) { /* word 0 (d, m), the others as q5_0's */
            lane_f16_pair(_mm256_loadu_si256((const __m256i *)blk), &d, &m);
            wv = (const __m256i *)blk + 1;
        } else {
            wv = (const __m256i *)(blk + R * 2);
            d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        }
        __m256i qh = WORD(wv, 0), isum[CMAX];
        UNROLL
        for (int c = 0; c < CMAX; c++)
            isum[c] = _mm256_setzero_si256();
        UNROLL
        for (int t0 = 0; t0 < 4; t0 += 2) {
            __m256i p[CMAX];
            UNROLL
            for (int c = 0; c < CMAX; c++)
                p[c] = _mm256_setzero_si256();
            UNROLL
            for (int t = t0; t < t0 + 2; t++) {
                __m256i v = WORD(wv, 1 + t);
                __m256i lo = _mm256_or_si256(low_nibbles(v), q5_hbits(qh, 4 * t));
                __m256i hi = _mm256_or_si256(high_nibbles(v), q5_hbits(qh, 16 + 4 * t));
                UNROLL
                for (int c = 0; c < C; c++) {
                    const int8_t *x = a->xq + (m0 + c) * K + b * 32 + 4 * t;
                    p[c] = _mm256_add_epi16(p[c], _mm256_maddubs_epi16(lo, bcast4(x)));
                    p[c] = _mm256_add_epi16(p[c], _mm256_maddubs_epi16(hi, bcast4(x + 16)));
                }
            }
            UNROLL
            for (int c = 0; c < C; c++)
                isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(p[c], _mm256_set1_epi16(1)));
        }
        UNROLL
        for (int c = 0; c < C; c++) {
            float dx = a->xd[(m0 + c) * nb + b];
            int32_t xs = a->xs[(m0 + c) * nb + b];
            __m256i s = q5_1 ? isum[c] : _mm256_sub_epi32(isum[c], _mm256_set1_epi32(16 * xs));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, _mm256_set1_ps(dx)),
                                     acc[c]);
            if (q5_1)
                acc[c] = _mm256_fmadd_ps(m, _mm256_set1_ps(dx * (float)xs), acc[c]);
        }
    }
    store_tile(mm, g, m0, C, acc);
}

static inline __attribute__((always_inline)) void tile_q5_0(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    tile_q5(mm, g, m0, C, false);
}

static inline __attribute__((always_inline)) void tile_q5_1(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    tile_q5(mm, g, m0, C, true);
}

/* The 16 iq4 values in both 128-bit halves, for vpshufb */
static inline __m256i iq4_table(void)
{
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)mq_iq4nl_values));
}

/* Products of iq4 values w (-127..113) and activations x into 16-bit pairs: |w| times x
 * with w's sign (as q8_0). Made unsigned (+128) the values would saturate vpmaddubsw
 * (2 * 241 * 127 > 32767); this way a pair is at most 2 * 127 * 127 = 32258, so pairs go
 * to 32 bits per word. */
static inline __m256i iq4_dot16(__m256i w, __m256i aw, __m256i x)
{
    return _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w));
}

/* iq4_nl (d apart, 4 words of q4_1's nibble layout): values by vpshufb of the nibbles. */
static inline __attribute__((always_inline)) void tile_iq4_nl(const struct cpu_mm *mm, int64_t g,
                                                              int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    const __m256i table = iq4_table(), ones = _mm256_set1_epi16(1);
    __m256 acc[CMAX];
    UNROLL
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const char *blk = wg + (size_t)b * R * sizeof(struct mq_block_iq4_nl);
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        const __m256i *wv = (const __m256i *)(blk + R * 2);
        __m256i isum[CMAX];
        UNROLL
        for (int c = 0; c < CMAX; c++)
            isum[c] = _mm256_setzero_si256();
        UNROLL
        for (int t = 0; t < 4; t++) {
            __m256i v = WORD(wv, t);
            __m256i lo = _mm256_shuffle_epi8(table, low_nibbles(v));
            __m256i hi = _mm256_shuffle_epi8(table, high_nibbles(v));
            __m256i alo = _mm256_abs_epi8(lo), ahi = _mm256_abs_epi8(hi);
            UNROLL
            for (int c = 0; c < C; c++) {
                const int8_t *x = a->xq + (m0 + c) * K + b * 32 + 4 * t;
                isum[c] = _mm256_add_epi32(isum[c],
                                           _mm256_madd_epi16(iq4_dot16(lo, alo, bcast4(x)), ones));
                isum[c] = _mm256_add_epi32(
                    isum[c], _mm256_madd_epi16(iq4_dot16(hi, ahi, bcast4(x + 16)), ones));
            }
        }
        UNROLL
        for (int c = 0; c < C; c++) {
            __m256 scale = _mm256_mul_ps(d, _mm256_set1_ps(a->xd[(m0 + c) * nb + b]));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), scale, acc[c]);
        }
    }
    store_tile(mm, g, m0, C, acc);
}

/* ---- Q8_K activations: super-blocks of 256 ----
 *
 * Per super-block and column: isum = sum_j sc_j * (sum of q*x over sub-block j), formed by
 * vpmaddwd of the sub-block's 16-bit sums with (sc_j, sc_j) per row; corrections (mins,
 * code offsets) = sum_j c_j * bsum_j by vpmaddwd of per-row (c_j, c_j+1) pairs with the
 * column's (bsum_j, bsum_j+1) pairs (bsums16). Then y += dx * (d * isum - dmin * msum). */

/* Per column, the int16 bsums of super-block b of a tile */
static inline __attribute__((always_inline)) void tile_bsums(const struct cpu_act *a, int64_t m0,
                                                             int C, int64_t b, int16_t bs[CMAX][16])
{
    const int64_t ns = a->K / 16;
    UNROLL
    for (int c = 0; c < C; c++)
        bsums16(a->xs + (m0 + c) * ns + b * 16, bs[c]);
}

/* acc += dx * (d * isum - dmin * msum) per column (dmin NULL: no msum) */
static inline __attribute__((always_inline)) void
tile_scale_k(const struct cpu_act *a, int64_t m0, int C, int64_t b, __m256 d, const __m256 *dmin,
             const __m256i *isum, const __m256i *msum, __m256 *acc)
{
    const int64_t nb = a->K / 256;
    UNROLL
    for (int c = 0; c < C; c++) {
        __m256 dx = _mm256_set1_ps(a->xd[(m0 + c) * nb + b]);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(d, dx), acc[c]);
        if (dmin)
            acc[c] =
                _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[c]), _mm256_mul_ps(*dmin, dx), acc[c]);
    }
}

/* sum over 4 words of codes q[i] times the activations at x + 4i, in 16 bits */
static inline __m256i dot4_16(const __m256i q[4], const int8_t *x)
{
    __m256i s = _mm256_maddubs_epi16(q[0], bcast4(x));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q[1], bcast4(x + 4)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q[2], bcast4(x + 8)));
    return _mm256_add_epi16(s, _mm256_maddubs_epi16(q[3], bcast4(x + 12)));
}

/* q2_k (21 words): scales (words 0..3; byte j: scale j | min j << 4), qs (words 4..19),
 * (d, dmin) (word 20). Bits 2k..2k+1 of qs word 4+w hold elements 128h + 32k + 4(w%8)..+3
 * (h = w/8), so sub-block j = 8h + 2k + p is words 4 + 8h + 4p + i, shifted by 2k.
 * 16-bit sums of a sub-block: at most 4 * 2 * 3 * 127. */
static inline __attribute__((always_inline)) void tile_q2_k(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 256;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    const __m256i three = _mm256_set1_epi8(3);
    __m256 acc[CMAX];
    UNROLL
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i *wv = (const __m256i *)(wg + (size_t)b * R * sizeof(struct mq_block_q2_k));
        __m256 d, dmin;
        lane_f16_pair(WORD(wv, 20), &d, &dmin);
        int16_t bs[CMAX][16];
        tile_bsums(a, m0, C, b, bs);
        __m256i isum[CMAX], msum[CMAX];
        UNROLL
        for (int c = 0; c < CMAX; c++)
            isum[c] = msum[c] = _mm256_setzero_si256();
        UNROLL
        for (int p = 0; p < 8; p++) { /* mins of sub-blocks 2p, 2p+1 */
            __m256i mn = lane_pair16(high_nibbles(WORD(wv, p / 2)), 2 * (p % 2), 2 * (p % 2) + 1);
            UNROLL
            for (int c = 0; c < C; c++)
                msum[c] = _mm256_add_epi32(msum[c], _mm256_madd_epi16(mn, bcast4(bs[c] + 2 * p)));
        }
        UNROLL
        for (int j = 0; j < 16; j++) {
            const int h = j / 8, k = (j % 8) / 2, p = j % 2;
            __m256i sc = lane_pair16(low_nibbles(WORD(wv, j / 4)), j % 4, j % 4), q[4];
            UNROLL
            for (int i = 0; i < 4; i++)
                q[i] = _mm256_and_si256(_mm256_srli_epi16(WORD(wv, 4 + 8 * h + 4 * p + i), 2 * k),
                                        three);
            UNROLL
            for (int c = 0; c < C; c++) {
                __m256i s = dot4_16(q, a->xq + (m0 + c) * K + b * 256 + 16 * j);
                isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(s, sc));
            }
        }
        tile_scale_k(a, m0, C, b, d, &dmin, isum, msum, acc);
    }
    store_tile(mm, g, m0, C, acc);
}

/* q3_k (d apart, 27 words): hmask (words 0..7), qs (8..23) as q2_k's, scales (24..26).
 * Code = q2 + 4*hbit - 4 with hbit of element 128h+32k+l at bit 4h+k of hmask byte l: the
 * kernel takes q' = q2 | hbit << 2 (0..7) and subtracts 4 * sum_j s_j * bsum_j. Per qs word
 * Q (sub-blocks 8h + 2k + p, k = 0..3) and hmask word H, n = nibble h of H holds the 4
 * high bits: codes k = 0, 2 are the 3-bit fields of Q & 0x33 | lut_e[n] (bits 0..2, 4..6),
 * codes 1, 3 those of (Q >> 2) & 0x33 | lut_o[n]. The 16 6-bit scales, from scale words
 * A, B, C, decoded lane-parallel into S_0..S_3 (S_i holds scales 4i..4i+3, one per byte):
 * S_0 = A & 15 | (C & 3) << 4, S_1 = B & 15 | (C >> 2 & 3) << 4, S_2 = A >> 4 | (C >> 4 & 3)
 * << 4, S_3 = B >> 4 | (C >> 6) << 4; minus 32. 16-bit sums of a sub-block: at most
 * 4 * 2 * 7 * 127. */
#define Q3_LUT1(n, o) (char)((((n) >> (o)) & 1) << 2 | (((n) >> ((o) + 2)) & 1) << 6)
#define Q3_LUT(o)                                                                                  \
    Q3_LUT1(0, o), Q3_LUT1(1, o), Q3_LUT1(2, o), Q3_LUT1(3, o), Q3_LUT1(4, o), Q3_LUT1(5, o),      \
        Q3_LUT1(6, o), Q3_LUT1(7, o), Q3_LUT1(8, o), Q3_LUT1(9, o), Q3_LUT1(10, o),                \
        Q3_LUT1(11, o), Q3_LUT1(12, o), Q3_LUT1(13, o), Q3_LUT1(14, o), Q3_LUT1(15, o)

static inline __attribute__((always_inline)) void tile_q3_k(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 256;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    const __m256i m33 = _mm256_set1_epi8(0x33), seven = _mm256_set1_epi8(7),
                  bias = _mm256_set1_epi8(32);
    /* hmask nibble n (bits k = 0..3) to the high bits of codes k = 0, 2 (lut_e) and
     * k = 1, 3 (lut_o) at bits 2 and 6 */
    const __m256i lut_e = _mm256_setr_epi8(Q3_LUT(0), Q3_LUT(0)),
                  lut_o = _mm256_setr_epi8(Q3_LUT(1), Q3_LUT(1));
    __m256 acc[CMAX];
    UNROLL
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const char *blk = wg + (size_t)b * R * sizeof(struct mq_block_q3_k);
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        const __m256i *wv = (const __m256i *)(blk + R * 2);
        __m256i A = WORD(wv, 24), B = WORD(wv, 25), Cw = WORD(wv, 26), S[4];
        S[0] = _mm256_or_si256(low_nibbles(A), byte_bits(Cw, 0, 4, 2));
        S[1] = _mm256_or_si256(low_nibbles(B), byte_bits(Cw, 2, 4, 2));
        S[2] = _mm256_or_si256(high_nibbles(A), byte_bits(Cw, 4, 4, 2));
        S[3] = _mm256_or_si256(high_nibbles(B), byte_bits(Cw, 6, 4, 2));
        UNROLL
        for (int i = 0; i < 4; i++)
            S[i] = _mm256_sub_epi8(S[i], bias);
        int16_t bs[CMAX][16];
        tile_bsums(a, m0, C, b, bs);
        __m256i isum[CMAX], msum[CMAX];
        UNROLL
        for (int c = 0; c < CMAX; c++)
            isum[c] = msum[c] = _mm256_setzero_si256();
        UNROLL
        for (int p = 0; p < 8; p++) { /* s_j * bsum_j, j = 2p, 2p+1 */
            __m256i s = lane_pair16(S[p / 2], 2 * (p % 2), 2 * (p % 2) + 1);
            UNROLL
            for (int c = 0; c < C; c++)
                msum[c] = _mm256_add_epi32(msum[c], _mm256_madd_epi16(s, bcast4(bs[c] + 2 * p)));
        }
        UNROLL
        for (int hp = 0; hp < 4; hp++) {
            const int h = hp / 2, p = hp % 2;
            __m256i q[4][4]; /* [k][i]: sub-block 8h + 2k + p, word i */
            UNROLL
            for (int i = 0; i < 4; i++) {
                __m256i Q = WORD(wv, 8 + 8 * h + 4 * p + i), H = WORD(wv, 4 * p + i);
                __m256i hn = h ? high_nibbles(H) : low_nibbles(H);
                __m256i ve =
                    _mm256_or_si256(_mm256_and_si256(Q, m33), _mm256_shuffle_epi8(lut_e, hn));
                __m256i vo = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(Q, 2), m33),
                                             _mm256_shuffle_epi8(lut_o, hn));
                q[0][i] = _mm256_and_si256(ve, seven);
                q[1][i] = _mm256_and_si256(vo, seven);
                q[2][i] = _mm256_and_si256(_mm256_srli_epi16(ve, 4), seven);
                q[3][i] = _mm256_and_si256(_mm256_srli_epi16(vo, 4), seven);
            }
            UNROLL
            for (int k = 0; k < 4; k++) {
                const int j = 8 * h + 2 * k + p;
                __m256i sc = lane_pair16(S[j / 4], j % 4, j % 4);
                UNROLL
                for (int c = 0; c < C; c++) {
                    __m256i t = dot4_16(q[k], a->xq + (m0 + c) * K + b * 256 + 16 * j);
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(t, sc));
                }
            }
        }
        UNROLL
        for (int c = 0; c < C; c++)
            isum[c] = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(msum[c], 2));
        tile_scale_k(a, m0, C, b, d, NULL, isum, NULL, acc);
    }
    store_tile(mm, g, m0, C, acc);
}

/* The 6-bit scales and mins of q4_k / q5_k from scale words A, B, Cw (block words 1..3),
 * lane-parallel, one per byte: sc[0] sub-blocks 0..3 = A & 63, sc[1] 4..7 = Cw & 15 |
 * (A >> 6) << 4; mn[0] = B & 63, mn[1] = Cw >> 4 | (B >> 6) << 4. */
static inline void k4_scales(const __m256i *wv, __m256i sc[2], __m256i mn[2])
{
    __m256i A = WORD(wv, 1), B = WORD(wv, 2), Cw = WORD(wv, 3), m63 = _mm256_set1_epi8(63);
    sc[0] = _mm256_and_si256(A, m63);
    mn[0] = _mm256_and_si256(B, m63);
    sc[1] = _mm256_or_si256(low_nibbles(Cw), byte_bits(A, 6, 4, 2));
    mn[1] = _mm256_or_si256(high_nibbles(Cw), byte_bits(B, 6, 4, 2));
}

/* q4_k (36 words): (d, dmin), scales (words 1..3), qs (4..35). Sub-block j (0..7) is nibble
 * j%2 of words 4 + 8(j/2) + i (elements 32j + 4i..+3). The min of sub-block j multiplies
 * its two bsums: (mn_j, mn_j) against (bsum_2j, bsum_2j+1). 16-bit sums of a sub-block:
 * 8 * 2 * 15 * 127 = 30480. */
static inline __attribute__((always_inline)) void tile_q4_k(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 256;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    __m256 acc[CMAX];
    UNROLL
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i *wv = (const __m256i *)(wg + (size_t)b * R * sizeof(struct mq_block_q4_k));
        __m256 d, dmin;
        lane_f16_pair(WORD(wv, 0), &d, &dmin);
        __m256i sc[2], mn[2];
        k4_scales(wv, sc, mn);
        int16_t bs[CMAX][16];
        tile_bsums(a, m0, C, b, bs);
        __m256i isum[CMAX], msum[CMAX];
        UNROLL
        for (int c = 0; c < CMAX; c++)
            isum[c] = msum[c] = _mm256_setzero_si256();
        UNROLL
        for (int j = 0; j < 8; j++) {
            __m256i m = lane_pair16(mn[j / 4], j % 4, j % 4);
            UNROLL
            for (int c = 0; c < C; c++)
                msum[c] = _mm256_add_epi32(msum[c], _mm256_madd_epi16(m, bcast4(bs[c] + 2 * j)));
        }
        UNROLL
        for (int j = 0; j < 8; j++) {
            __m256i s = lane_pair16(sc[j / 4], j % 4, j % 4), p[CMAX];
            UNROLL
            for (int c = 0; c < CMAX; c++)
                p[c] = _mm256_setzero_si256();
            UNROLL
            for (int i = 0; i < 8; i++) {
                __m256i v = WORD(wv, 4 + 8 * (j / 2) + i);
                __m256i q = j % 2 ? high_nibbles(v) : low_nibbles(v);
                UNROLL
                for (int c = 0; c < C; c++) {
                    const int8_t *x = a->xq + (m0 + c) * K + b * 256 + 32 * j + 4 * i;
                    p[c] = _mm256_add_epi16(p[c], _mm256_maddubs_epi16(q, bcast4(x)));
                }
            }
            UNROLL
            for (int c = 0; c < C; c++)
                isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(p[c], s));
        }
        tile_scale_k(a, m0, C, b, d, &dmin, isum, msum, acc);
    }
    store_tile(mm, g, m0, C, acc);
}

/* q5_k (44 words): (d, dmin), scales (1..3) as q4_k's, qh (4..11), qs (12..43) as q4_k's.
 * Bit 4 of the code of element 32j + 4i + e is bit j of byte e of qh word 4 + i. 16-bit
 * sums over 4 words: 4 * 2 * 31 * 127 = 31496, so a sub-block is two vpmaddwd. */
static inline __attribute__((always_inline)) void tile_q5_k(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 256;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    __m256 acc[CMAX];
    UNROLL
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i *wv = (const __m256i *)(wg + (size_t)b * R * sizeof(struct mq_block_q5_k));
        __m256 d, dmin;
        lane_f16_pair(WORD(wv, 0), &d, &dmin);
        __m256i sc[2], mn[2];
        k4_scales(wv, sc, mn);
        int16_t bs[CMAX][16];
        tile_bsums(a, m0, C, b, bs);
        __m256i isum[CMAX], msum[CMAX];
        UNROLL
        for (int c = 0; c < CMAX; c++)
            isum[c] = msum[c] = _mm256_setzero_si256();
        UNROLL
        for (int j = 0; j < 8; j++) {
            __m256i m = lane_pair16(mn[j / 4], j % 4, j % 4);
            UNROLL
            for (int c = 0; c < C; c++)
                msum[c] = _mm256_add_epi32(msum[c], _mm256_madd_epi16(m, bcast4(bs[c] + 2 * j)));
        }
        UNROLL
        for (int j = 0; j < 8; j++) {
            __m256i s = lane_pair16(sc[j / 4], j % 4, j % 4);
            UNROLL
            for (int i0 = 0; i0 < 8; i0 += 4) {
                __m256i p[CMAX];
                UNROLL
                for (int c = 0; c < CMAX; c++)
                    p[c] = _mm256_setzero_si256();
                UNROLL
                for (int i = i0; i < i0 + 4; i++) {
                    __m256i v = WORD(wv, 12 + 8 * (j / 2) + i);
                    __m256i q = _mm256_or_si256(j % 2 ? high_nibbles(v) : low_nibbles(v),
                                                byte_bits(WORD(wv, 4 + i), j, 4, 1));
                    UNROLL
                    for (int c = 0; c < C; c++) {
                        const int8_t *x = a->xq + (m0 + c) * K + b * 256 + 32 * j + 4 * i;
                        p[c] = _mm256_add_epi16(p[c], _mm256_maddubs_epi16(q, bcast4(x)));
                    }
                }
                UNROLL
                for (int c = 0; c < C; c++)
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(p[c], s));
            }
        }
        tile_scale_k(a, m0, C, b, d, &dmin, isum, msum, acc);
    }
    store_tile(mm, g, m0, C, acc);
}

/* q6_k (d apart, 52 words): ql (words 0..31), qh (32..47), int8 scales (48..51). Sub-block
 * j = 8h + 2k + p (elements 128h + 32k + 16p..+15) takes nibble k/2 of ql words
 * 16h + 8(k%2) + 4p + i and bits 2k..2k+1 of qh words 32 + 8h + 4p + i as code bits 4..5.
 * Codes 0..63: the kernel subtracts 32 * sum_j sc_j * bsum_j. 16-bit sums over 2 words:
 * 2 * 2 * 63 * 127 = 32004. */
static inline __attribute__((always_inline)) void tile_q6_k(const struct cpu_mm *mm, int64_t g,
                                                            int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 256;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    __m256 acc[CMAX];
    UNROLL
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const char *blk = wg + (size_t)b * R * sizeof(struct mq_block_q6_k);
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        const __m256i *wv = (const __m256i *)(blk + R * 2);
        int16_t bs[CMAX][16];
        tile_bsums(a, m0, C, b, bs);
        __m256i isum[CMAX], msum[CMAX];
        UNROLL
        for (int c = 0; c < CMAX; c++)
            isum[c] = msum[c] = _mm256_setzero_si256();
        UNROLL
        for (int p = 0; p < 8; p++) { /* sc_j * bsum_j, j = 2p, 2p+1 */
            __m256i s = lane_pair16(WORD(wv, 48 + p / 2), 2 * (p % 2), 2 * (p % 2) + 1);
            UNROLL
            for (int c = 0; c < C; c++)
                msum[c] = _mm256_add_epi32(msum[c], _mm256_madd_epi16(s, bcast4(bs[c] + 2 * p)));
        }
        UNROLL
        for (int j = 0; j < 16; j++) {
            const int h = j / 8, k = (j % 8) / 2, p = j % 2;
            __m256i s = lane_pair16(WORD(wv, 48 + j / 4), j % 4, j % 4);
            UNROLL
            for (int i0 = 0; i0 < 4; i0 += 2) {
                __m256i q[2];
                UNROLL
                for (int i = 0; i < 2; i++) {
                    __m256i v = WORD(wv, 16 * h + 8 * (k % 2) + 4 * p + i0 + i);
                    q[i] = _mm256_or_si256(
                        k < 2 ? low_nibbles(v) : high_nibbles(v),
                        byte_bits(WORD(wv, 32 + 8 * h + 4 * p + i0 + i), 2 * k, 4, 2));
                }
                UNROLL
                for (int c = 0; c < C; c++) {
                    const int8_t *x = a->xq + (m0 + c) * K + b * 256 + 16 * j + 4 * i0;
                    __m256i t = _mm256_add_epi16(_mm256_maddubs_epi16(q[0], bcast4(x)),
                                                 _mm256_maddubs_epi16(q[1], bcast4(x + 4)));
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(t, s));
                }
            }
        }
        UNROLL
        for (int c = 0; c < C; c++)
            isum[c] = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(msum[c], 5));
        tile_scale_k(a, m0, C, b, d, NULL, isum, NULL, acc);
    }
    store_tile(mm, g, m0, C, acc);
}

/* iq4_xs (34 words): (d, scales_h), scales_l (word 1), qs (2..33): sub-block i (0..7) is
 * words 2 + 4i + t, t = 0..3, nibbles as iq4_nl's (elements 32i + 4t.. low, 32i + 16 + 4t..
 * high). Scales ls_i = scales_l nibble i | (scales_h bits 2i..2i+1) << 4, decoded
 * lane-parallel: N = scales_h's nibble n in byte n (a shuffle of bytes 2, 2, 3, 3 and a
 * 4-bit shift of the odd bytes); even sub-blocks: L & 15 | (N & 3) << 4, odd:
 * L >> 4 | (N >> 2 & 3) << 4, byte i/2; minus 32. Values as iq4_nl's, each word's pairs
 * scaled into 32 bits by vpmaddwd with (ls_i - 32). */
static inline __attribute__((always_inline)) void tile_iq4_xs(const struct cpu_mm *mm, int64_t g,
                                                              int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 256;
    const char *wg = (const char *)mm->w + (size_t)g * mm->group_bytes;
    const struct cpu_act *a = mm->a;
    const __m256i table = iq4_table();
    __m256 acc[CMAX];
    UNROLL
    for (int c = 0; c < CMAX; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i *wv = (const __m256i *)(wg + (size_t)b * R * sizeof(struct mq_block_iq4_xs));
        __m256i w0 = WORD(wv, 0), L = WORD(wv, 1);
        __m256 d, unused;
        lane_f16_pair(w0, &d, &unused);
        __m256i h = _mm256_shuffle_epi8(w0, lane_ctrl(2, 2, 3, 3));
        __m256i N = _mm256_or_si256(
            _mm256_and_si256(h, _mm256_set1_epi32(0x000F000F)),
            _mm256_and_si256(_mm256_srli_epi16(h, 4), _mm256_set1_epi32(0x0F000F00)));
        __m256i ls[2] = {_mm256_or_si256(low_nibbles(L), byte_bits(N, 0, 4, 2)),
                         _mm256_or_si256(high_nibbles(L), byte_bits(N, 2, 4, 2))};
        ls[0] = _mm256_sub_epi8(ls[0], _mm256_set1_epi8(32));
        ls[1] = _mm256_sub_epi8(ls[1], _mm256_set1_epi8(32));
        __m256i isum[CMAX];
        UNROLL
        for (int c = 0; c < CMAX; c++)
            isum[c] = _mm256_setzero_si256();
        UNROLL
        for (int i = 0; i < 8; i++) {
            __m256i s = lane_pair16(ls[i % 2], i / 2, i / 2);
            UNROLL
            for (int t = 0; t < 4; t++) {
                __m256i v = WORD(wv, 2 + 4 * i + t);
                __m256i lo = _mm256_shuffle_epi8(table, low_nibbles(v));
                __m256i hi = _mm256_shuffle_epi8(table, high_nibbles(v));
                __m256i alo = _mm256_abs_epi8(lo), ahi = _mm256_abs_epi8(hi);
                UNROLL
                for (int c = 0; c < C; c++) {
                    const int8_t *x = a->xq + (m0 + c) * K + b * 256 + 32 * i + 4 * t;
                    isum[c] = _mm256_add_epi32(isum[c],
                                               _mm256_madd_epi16(iq4_dot16(lo, alo, bcast4(x)), s));
                    isum[c] = _mm256_add_epi32(
                        isum[c], _mm256_madd_epi16(iq4_dot16(hi, ahi, bcast4(x + 16)), s));
                }
            }
        }
        tile_scale_k(a, m0, C, b, d, NULL, isum, NULL, acc);
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
MM_ENTRY(mm_q4_1, tile_q4_1)
MM_ENTRY(mm_q5_0, tile_q5_0)
MM_ENTRY(mm_q5_1, tile_q5_1)
MM_ENTRY(mm_iq4_nl, tile_iq4_nl)
MM_ENTRY(mm_q2_k, tile_q2_k)
MM_ENTRY(mm_q3_k, tile_q3_k)
MM_ENTRY(mm_q4_k, tile_q4_k)
MM_ENTRY(mm_q5_k, tile_q5_k)
MM_ENTRY(mm_q6_k, tile_q6_k)
MM_ENTRY(mm_iq4_xs, tile_iq4_xs)

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

/* ---- activations to Q8_K, bit-identical to cpu_quantize_q8k_scalar ----
 *
 * amax by vmaxps (a block with a NaN takes the scalar's NaN-scale branch, so how vmaxps
 * orders NaNs does not matter); the sign comes from the first element of magnitude amax.
 * Codes: vroundps to nearest even is ggml's nearest_int for |p| < 2^22; NaN and infinite
 * p (0 * inf, or an infinite iscale when the max is tiny) give code 0, as nearest_int's
 * bits do there. */
static void quantize_q8k(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        int8_t *qb = q + b * 256;
        __m256 mx = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
        for (int i = 0; i < 32; i++) {
            __m256 v = _mm256_loadu_ps(xb + 8 * i);
            mx = _mm256_max_ps(_mm256_and_ps(v, absmask), mx);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        }
        float m8[8], amax = 0.0f;
        _mm256_storeu_ps(m8, mx);
        for (int i = 0; i < 8; i++)
            amax = m8[i] > amax ? m8[i] : amax;
        bool any_nan = _mm256_movemask_ps(nan) != 0;
        if (amax == 0.0f || isinf(amax) || any_nan) {
            d[b] = amax == 0.0f && !any_nan ? 0.0f : NAN;
            memset(qb, 0, 256);
        } else {
            int at = 0;
            for (int i = 0; i < 32; i++) {
                __m256 ax = _mm256_and_ps(_mm256_loadu_ps(xb + 8 * i), absmask);
                int hit = _mm256_movemask_ps(_mm256_cmp_ps(ax, _mm256_set1_ps(amax), _CMP_EQ_OQ));
                if (hit) {
                    at = 8 * i + __builtin_ctz((unsigned)hit);
                    break;
                }
            }
            float iscale = -127.0f / xb[at];
            const __m256 is = _mm256_set1_ps(iscale), inf = _mm256_set1_ps(INFINITY);
            for (int i = 0; i < 8; i++) {
                __m256i c[4];
                for (int k = 0; k < 4; k++) {
                    __m256 p = _mm256_mul_ps(is, _mm256_loadu_ps(xb + 32 * i + 8 * k));
                    p = _mm256_and_ps(p, _mm256_cmp_ps(_mm256_and_ps(p, absmask), inf, _CMP_LT_OQ));
                    p = _mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                    c[k] = _mm256_min_epi32(_mm256_cvtps_epi32(p), _mm256_set1_epi32(127));
                }
                __m256i c8 = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]),
                                                _mm256_packs_epi32(c[2], c[3]));
                _mm256_storeu_si256((__m256i *)(qb + 32 * i),
                                    _mm256_permutevar8x32_epi32(c8, order));
            }
            d[b] = 1.0f / iscale;
        }
        /* sums per 16 codes: quads by vpmaddubsw + vpmaddwd, then two rounds of vphaddd
         * over four 32-code vectors give sums 0, 2, 4, 6 | 1, 3, 5, 7 of 128 codes */
        for (int half = 0; half < 2; half++) {
            __m256i quads[4];
            for (int i = 0; i < 4; i++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(qb + 128 * half + 32 * i));
                quads[i] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), v),
                                             _mm256_set1_epi16(1));
                if (u)
                    _mm256_storeu_si256((__m256i *)(u + b * 256 + 128 * half + 32 * i),
                                        _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)));
            }
            __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(quads[0], quads[1]),
                                          _mm256_hadd_epi32(quads[2], quads[3]));
            _mm256_storeu_si256((__m256i *)(s + b * 16 + 8 * half),
                                _mm256_permutevar8x32_epi32(h, order));
        }
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
               [MQ_DTYPE_Q8_0] = mm_q8_0, [MQ_DTYPE_Q4_0] = mm_q4_0, [MQ_DTYPE_Q4_1] = mm_q4_1,
               [MQ_DTYPE_Q5_0] = mm_q5_0, [MQ_DTYPE_Q5_1] = mm_q5_1, [MQ_DTYPE_IQ4_NL] = mm_iq4_nl,
               [MQ_DTYPE_Q2_K] = mm_q2_k, [MQ_DTYPE_Q3_K] = mm_q3_k, [MQ_DTYPE_Q4_K] = mm_q4_k,
               [MQ_DTYPE_Q5_K] = mm_q5_k, [MQ_DTYPE_Q6_K] = mm_q6_k, [MQ_DTYPE_IQ4_XS] = mm_iq4_xs},
    .quantize_q8 = quantize_q8,
    .quantize_q8k = quantize_q8k,
    .add = add,
    .swiglu = swiglu,
    .sumsq = sumsq,
    .scale_mul = scale_mul,
    .dot = dot,
    .axpy = axpy,
    .exp_sum = exp_sum,
};
