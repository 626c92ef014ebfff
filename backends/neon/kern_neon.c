/* backends/neon/kern_neon.c - NEON kernels on 8-row groups (backends/cpu/kern.h layouts).
 *
 * Compiled once per path (backends/neon/kern.h, Makefile): NEON_DOTPROD selects SDOT for
 * the integer formats (else vmull_s8 + vpadalq_s16, ARMv8.0), NEON_FP16 selects FP16
 * arithmetic for F16 weights (else they are widened to F32 exactly).
 *
 * Every matmul kernel computes an 8-row x C-column tile (C = 4, 2, 1): two float32x4
 * accumulators hold the 8 rows of one output column, so a weight vector loaded once
 * serves C columns and each column's activations are lane operands.
 *
 *   f32, bf16, f16 widened:  F32 FMA per k, one chain per row and column
 *   f16 in FP16 arithmetic:  FP16 FMA over chunks of 16 k, the activations of each chunk
 *                            scaled by a power of two so that |x'| < 1 (cpu_act.xh, made
 *                            by f16_act); each chunk's f16 sums are widened, scaled back
 *                            (exactly) and added in F32. Rounding: x to f16 and each FP16
 *                            FMA, 2^-11 relative each; no overflow (CPU_F16_ARITH_MAX_W)
 *   q8_0:  int32 sums of w * x codes per 32-block (SDOT: 4 products per lane; fallback:
 *          vmull_s8 int16 products added pairwise into int32), then scaled by d_w * d_x
 *          into the F32 accumulators, as the x86 kernels do
 *   q4_0:  codes 0..15 (unpacked nibbles) times x codes, minus 8 * sum(x codes) per block
 *   q4_1, q5_0, q5_1, iq4_nl (Q8_0 activations) and q2_k .. q6_k, iq4_xs (Q8_K): the
 *          words layout, decoded one word at a time into int8 weights for the same dot
 *          products; K-quant sub-block sums times their integer scales summed exactly in
 *          int32 per 256-block (see "the other block formats" below)
 *
 * Activations to Q8_0: ggml's rule (d = amax/127 rounded to f16, codes = x/d rounded half
 * away from zero, FCVTAS), with a NaN anywhere making the block's scale NaN: the codes are
 * bit-identical to the scalar path's (tests/unit/test_neon.c checks them). To Q8_K: ggml's
 * quantize_row_q8_K_ref (iscale = -127/max, round half to even, FCVTNS), bit-identical to
 * cpu_quantize_q8k_scalar.
 */
#include <arm_neon.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "backends/neon/kern.h"
#include "core/fp16.h"

#define R 8
#define MAXC 4

#if defined(NEON_DOTPROD) && defined(NEON_FP16)
#define KERN neon_kern_dotprod_fp16
#define PATH_NAME "dotprod+fp16"
#elif defined(NEON_DOTPROD)
#define KERN neon_kern_dotprod
#define PATH_NAME "dotprod"
#elif defined(NEON_FP16)
#define KERN neon_kern_fp16
#define PATH_NAME "fp16"
#else
#define KERN neon_kern_fallback
#define PATH_NAME "fallback"
#endif

#define AI static inline __attribute__((always_inline))
/* The loops over a tile's C columns (and a word's 2 row halves) must unroll completely for
 * the arrays they index to stay in registers; GCC 12 at -O2 otherwise keeps some of them as
 * loops over accumulators in memory (a load and a store around every SDOT). */
#define UNROLL _Pragma("GCC unroll 8")

/* Rows [8g, 8g+8) of columns m0..m0+C-1; the last group may be partial. */
AI void store_tile(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, const float32x4_t *a0,
                   const float32x4_t *a1)
{
    int64_t n0 = g * R, left = mm->N - n0;
    UNROLL
    for (int c = 0; c < C; c++) {
        float *y = mm->y + (m0 + c) * mm->N + n0;
        if (left >= R) {
            vst1q_f32(y, a0[c]);
            vst1q_f32(y + 4, a1[c]);
        } else {
            float t[R];
            vst1q_f32(t, a0[c]);
            vst1q_f32(t + 4, a1[c]);
            memcpy(y, t, (size_t)left * sizeof(float));
        }
    }
}

AI const char *group_of(const struct cpu_mm *mm, int64_t g)
{
    return (const char *)mm->w + (size_t)g * mm->group_bytes;
}

/* ---- float formats: k-major groups; position k of the 8 rows is w0 (rows 0-3), w1 ---- */

#define LOAD_F32(wg, k, w0, w1)                                                                    \
    do {                                                                                           \
        w0 = vld1q_f32((const float *)(const void *)(wg) + (size_t)(k)*R);                         \
        w1 = vld1q_f32((const float *)(const void *)(wg) + (size_t)(k)*R + 4);                     \
    } while (0)

#define LOAD_F16W(wg, k, w0, w1)                                                                   \
    do {                                                                                           \
        uint16x8_t h_ = vld1q_u16((const uint16_t *)(const void *)(wg) + (size_t)(k)*R);           \
        w0 = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h_)));                                 \
        w1 = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h_)));                                \
    } while (0)

#define FLOAT_TILE(NAME, LOADW)                                                                    \
    AI void NAME(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)                            \
    {                                                                                              \
        const int64_t K = mm->K;                                                                   \
        const char *wg = group_of(mm, g);                                                          \
        const float *x = mm->a->x + m0 * K;                                                        \
        float32x4_t a0[MAXC], a1[MAXC], xv[MAXC];                                                  \
        UNROLL                                                                                     \
        for (int c = 0; c < MAXC; c++)                                                             \
            a0[c] = a1[c] = xv[c] = vdupq_n_f32(0.0f);                                             \
        int64_t k = 0;                                                                             \
        for (; k + 4 <= K; k += 4) {                                                               \
            UNROLL                                                                                 \
            for (int c = 0; c < C; c++)                                                            \
                xv[c] = vld1q_f32(x + c * K + k);                                                  \
            FLOAT_STEP(LOADW, 0);                                                                  \
            FLOAT_STEP(LOADW, 1);                                                                  \
            FLOAT_STEP(LOADW, 2);                                                                  \
            FLOAT_STEP(LOADW, 3);                                                                  \
        }                                                                                          \
        for (; k < K; k++) {                                                                       \
            float32x4_t w0, w1;                                                                    \
            LOADW(wg, k, w0, w1);                                                                  \
            UNROLL                                                                                 \
            for (int c = 0; c < C; c++) {                                                          \
                a0[c] = vfmaq_n_f32(a0[c], w0, x[c * K + k]);                                      \
                a1[c] = vfmaq_n_f32(a1[c], w1, x[c * K + k]);                                      \
            }                                                                                      \
        }                                                                                          \
        store_tile(mm, g, m0, C, a0, a1);                                                          \
    }

#define FLOAT_STEP(LOADW, j)                                                                       \
    do {                                                                                           \
        float32x4_t w0, w1;                                                                        \
        LOADW(wg, k + j, w0, w1);                                                                  \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++) {                                                              \
            a0[c] = vfmaq_laneq_f32(a0[c], w0, xv[c], j);                                          \
            a1[c] = vfmaq_laneq_f32(a1[c], w1, xv[c], j);                                          \
        }                                                                                          \
    } while (0)

FLOAT_TILE(tile_f32, LOAD_F32)
FLOAT_TILE(tile_f16w, LOAD_F16W)

/* bf16: a (k, k+1) pair of 8 rows is 8 u32 lanes (rows 0-3, rows 4-7), k in the low half;
 * widening is a shift (even k) or a mask (odd k). */
AI void bf16_pair(const uint32_t *wp, float32x4_t *e0, float32x4_t *e1, float32x4_t *o0,
                  float32x4_t *o1)
{
    const uint32x4_t hi = vdupq_n_u32(0xFFFF0000u);
    uint32x4_t v0 = vld1q_u32(wp), v1 = vld1q_u32(wp + 4);
    *e0 = vreinterpretq_f32_u32(vshlq_n_u32(v0, 16));
    *e1 = vreinterpretq_f32_u32(vshlq_n_u32(v1, 16));
    *o0 = vreinterpretq_f32_u32(vandq_u32(v0, hi));
    *o1 = vreinterpretq_f32_u32(vandq_u32(v1, hi));
}

#define BF16_STEP(p, je, jo)                                                                       \
    do {                                                                                           \
        float32x4_t e0, e1, o0, o1;                                                                \
        bf16_pair(wg + (size_t)(p)*R, &e0, &e1, &o0, &o1);                                         \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++) {                                                              \
            a0[c] = vfmaq_laneq_f32(a0[c], e0, xv[c], je);                                         \
            a1[c] = vfmaq_laneq_f32(a1[c], e1, xv[c], je);                                         \
            a0[c] = vfmaq_laneq_f32(a0[c], o0, xv[c], jo);                                         \
            a1[c] = vfmaq_laneq_f32(a1[c], o1, xv[c], jo);                                         \
        }                                                                                          \
    } while (0)

AI void tile_bf16(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    const int64_t K = mm->K;
    const uint32_t *wg = (const uint32_t *)(const void *)group_of(mm, g);
    const float *x = mm->a->x + m0 * K;
    float32x4_t a0[MAXC], a1[MAXC], xv[MAXC];
    UNROLL
    for (int c = 0; c < MAXC; c++)
        a0[c] = a1[c] = xv[c] = vdupq_n_f32(0.0f);
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
        UNROLL
        for (int c = 0; c < C; c++)
            xv[c] = vld1q_f32(x + c * K + k);
        BF16_STEP(k / 2, 0, 1);
        BF16_STEP(k / 2 + 1, 2, 3);
    }
    for (; k < K; k += 2) {
        float32x4_t e0, e1, o0, o1;
        bf16_pair(wg + (size_t)(k / 2) * R, &e0, &e1, &o0, &o1);
        UNROLL
        for (int c = 0; c < C; c++) {
            a0[c] = vfmaq_n_f32(a0[c], e0, x[c * K + k]);
            a1[c] = vfmaq_n_f32(a1[c], e1, x[c * K + k]);
            if (k + 1 < K) {
                a0[c] = vfmaq_n_f32(a0[c], o0, x[c * K + k + 1]);
                a1[c] = vfmaq_n_f32(a1[c], o1, x[c * K + k + 1]);
            }
        }
    }
    store_tile(mm, g, m0, C, a0, a1);
}

#ifdef NEON_FP16
/* f16 in FP16 arithmetic: one float16x8 is position k of the 8 rows. */
#define F16_STEP(j, X)                                                                             \
    do {                                                                                           \
        float16x8_t w = vld1q_f16(wk + (j)*R);                                                     \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++)                                                                \
            h[c] = vfmaq_laneq_f16(h[c], w, X[c], (j) % 8);                                        \
    } while (0)

AI void tile_f16h(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    const int64_t K = mm->K, K16 = (K + 15) / 16 * 16, nch = K16 / 16;
    const float16_t *wg = (const float16_t *)(const void *)group_of(mm, g);
    const float16_t *xh = (const float16_t *)(const void *)mm->a->xh + m0 * K16;
    const float *xs = mm->a->xhs + m0 * nch;
    float32x4_t a0[MAXC], a1[MAXC];
    float16x8_t xa[MAXC], xb[MAXC], h[MAXC];
    UNROLL
    for (int c = 0; c < MAXC; c++) {
        a0[c] = a1[c] = vdupq_n_f32(0.0f);
        xa[c] = xb[c] = vdupq_n_f16(0.0f);
    }
    for (int64_t ch = 0; ch < nch; ch++) {
        const int64_t k0 = ch * 16;
        const float16_t *wk = wg + (size_t)k0 * R;
        UNROLL
        for (int c = 0; c < MAXC; c++)
            h[c] = vdupq_n_f16(0.0f);
        if (k0 + 16 <= K) {
            UNROLL
            for (int c = 0; c < C; c++) {
                xa[c] = vld1q_f16(xh + c * K16 + k0);
                xb[c] = vld1q_f16(xh + c * K16 + k0 + 8);
            }
            F16_STEP(0, xa);
            F16_STEP(1, xa);
            F16_STEP(2, xa);
            F16_STEP(3, xa);
            F16_STEP(4, xa);
            F16_STEP(5, xa);
            F16_STEP(6, xa);
            F16_STEP(7, xa);
            F16_STEP(8, xb);
            F16_STEP(9, xb);
            F16_STEP(10, xb);
            F16_STEP(11, xb);
            F16_STEP(12, xb);
            F16_STEP(13, xb);
            F16_STEP(14, xb);
            F16_STEP(15, xb);
        } else {
            for (int64_t k = k0; k < K; k++) {
                float16x8_t w = vld1q_f16(wg + (size_t)k * R);
                UNROLL
                for (int c = 0; c < C; c++)
                    h[c] = vfmaq_n_f16(h[c], w, xh[c * K16 + k]);
            }
        }
        UNROLL
        for (int c = 0; c < C; c++) {
            float s = xs[c * nch + ch];
            a0[c] = vfmaq_n_f32(a0[c], vcvt_f32_f16(vget_low_f16(h[c])), s);
            a1[c] = vfmaq_n_f32(a1[c], vcvt_high_f32_f16(h[c]), s);
        }
    }
    store_tile(mm, g, m0, C, a0, a1);
}

/* One column to f16 chunks: x'[k] = x[k] * 2^-e with 2^(e-1) <= amax < 2^e over the chunk
 * (e <= 127), converted with round-to-nearest-even; scale 2^e. Chunks holding NaN or Inf
 * keep scale 1 so that they reach the output. The scalar twin is in test_neon.c. */
static void f16_act(const float *x, int64_t K, uint16_t *xh, float *xhs)
{
    const float32x4_t fmax = vdupq_n_f32(FLT_MAX);
    for (int64_t k0 = 0, ch = 0; k0 < K; k0 += 16, ch++) {
        int64_t kn = K - k0 < 16 ? K - k0 : 16;
        float t[16] = {0};
        memcpy(t, x + k0, (size_t)kn * sizeof(float));
        float32x4_t v[4];
        for (int i = 0; i < 4; i++)
            v[i] = vld1q_f32(t + 4 * i);
        float32x4_t m = vabsq_f32(v[0]);
        uint32x4_t fin = vcleq_f32(m, fmax);
        for (int i = 1; i < 4; i++) {
            m = vmaxq_f32(m, vabsq_f32(v[i]));
            fin = vandq_u32(fin, vcleq_f32(vabsq_f32(v[i]), fmax));
        }
        float amax = vmaxvq_f32(m);
        int e = 0;
        if (vminvq_u32(fin) != 0 && amax > 0.0f) {
            (void)frexpf(amax, &e);
            e = e > 127 ? 127 : e;
        }
        /* 2^-e may not be a float (e < -126): two exact steps */
        float s1 = ldexpf(1.0f, -e / 2), s2 = ldexpf(1.0f, -e - (-e / 2));
        for (int i = 0; i < 4; i++)
            v[i] = vmulq_n_f32(vmulq_n_f32(v[i], s1), s2);
        uint16x8_t h0 = vreinterpretq_u16_f16(vcombine_f16(vcvt_f16_f32(v[0]), vcvt_f16_f32(v[1])));
        uint16x8_t h1 = vreinterpretq_u16_f16(vcombine_f16(vcvt_f16_f32(v[2]), vcvt_f16_f32(v[3])));
        vst1q_u16(xh + k0, h0);
        vst1q_u16(xh + k0 + 8, h1);
        xhs[ch] = ldexpf(1.0f, e);
    }
}
#endif

/* ---- integer formats ----
 * A weight vector holds one quad (4 consecutive weights) of 4 rows; X is the 32 codes of
 * a column's block in two int8x16 (quads 0-3, 4-7), lane l picks the quad. Rows 0-3 sum
 * into i0[c], rows 4-7 into i1[c]. */

#ifdef NEON_DOTPROD
#define DOT_DECL int32x4_t i0[MAXC], i1[MAXC]
#define DOT_INIT(c) (i0[c] = i1[c] = vdupq_n_s32(0))
#define DOT_LO(c, w, xv, l) (i0[c] = vdotq_laneq_s32(i0[c], w, xv, l))
#define DOT_HI(c, w, xv, l) (i1[c] = vdotq_laneq_s32(i1[c], w, xv, l))
#define DOT_DONE(c) ((void)0)
#define INT_MAXC 4
#else
/* vmull_s8 gives int16 products of 2 rows x 4 weights; vpadalq_s16 adds them pairwise
 * into (row, half-quad) int32 lanes, vpaddq_s32 finishes the rows at the block's end.
 * |w * x| <= 128 * 127 fits int16. */
#define DOT_DECL int32x4_t i0[MAXC], i1[MAXC], e0[MAXC], e1[MAXC], e2[MAXC], e3[MAXC]
#define DOT_INIT(c) (e0[c] = e1[c] = e2[c] = e3[c] = vdupq_n_s32(0))
#define BCAST_QUAD(xv, l) vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(xv), l))
#define DOT_LO(c, w, xv, l)                                                                        \
    (e0[c] = vpadalq_s16(e0[c], vmull_s8(vget_low_s8(w), vget_low_s8(BCAST_QUAD(xv, l)))),         \
     e1[c] = vpadalq_s16(e1[c], vmull_high_s8(w, BCAST_QUAD(xv, l))))
#define DOT_HI(c, w, xv, l)                                                                        \
    (e2[c] = vpadalq_s16(e2[c], vmull_s8(vget_low_s8(w), vget_low_s8(BCAST_QUAD(xv, l)))),         \
     e3[c] = vpadalq_s16(e3[c], vmull_high_s8(w, BCAST_QUAD(xv, l))))
#define DOT_DONE(c) (i0[c] = vpaddq_s32(e0[c], e1[c]), i1[c] = vpaddq_s32(e2[c], e3[c]))
#define INT_MAXC 2
#endif

/* f16 scales of the 8 rows at p, widened */
AI void load_scales(const char *p, float32x4_t *d0, float32x4_t *d1)
{
    uint16x8_t d = vld1q_u16((const uint16_t *)(const void *)p);
    *d0 = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(d)));
    *d1 = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(d)));
}

#define Q8_STEP(q, X, l)                                                                           \
    do {                                                                                           \
        int8x16_t w0 = vld1q_s8(qs + (q)*32), w1 = vld1q_s8(qs + (q)*32 + 16);                     \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++) {                                                              \
            DOT_LO(c, w0, X[c], l);                                                                \
            DOT_HI(c, w1, X[c], l);                                                                \
        }                                                                                          \
    } while (0)

AI void tile_q8_0(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = group_of(mm, g);
    const struct cpu_act *a = mm->a;
    float32x4_t a0[MAXC], a1[MAXC];
    int8x16_t xa[MAXC], xb[MAXC];
    DOT_DECL;
    UNROLL
    for (int c = 0; c < MAXC; c++) {
        a0[c] = a1[c] = vdupq_n_f32(0.0f);
        xa[c] = xb[c] = vdupq_n_s8(0);
        i0[c] = i1[c] = vdupq_n_s32(0);
    }
    for (int64_t b = 0; b < nb; b++) {
        const char *blk = wg + (size_t)b * R * sizeof(struct mq_block_q8_0);
        float32x4_t dw0, dw1;
        load_scales(blk, &dw0, &dw1);
        const int8_t *qs = (const int8_t *)(blk + R * 2);
        UNROLL
        for (int c = 0; c < C; c++) {
            xa[c] = vld1q_s8(a->xq + (m0 + c) * K + b * 32);
            xb[c] = vld1q_s8(a->xq + (m0 + c) * K + b * 32 + 16);
            DOT_INIT(c);
        }
        Q8_STEP(0, xa, 0);
        Q8_STEP(1, xa, 1);
        Q8_STEP(2, xa, 2);
        Q8_STEP(3, xa, 3);
        Q8_STEP(4, xb, 0);
        Q8_STEP(5, xb, 1);
        Q8_STEP(6, xb, 2);
        Q8_STEP(7, xb, 3);
        UNROLL
        for (int c = 0; c < C; c++) {
            DOT_DONE(c);
            float d = a->xd[(m0 + c) * nb + b];
            a0[c] = vfmaq_f32(a0[c], vcvtq_f32_s32(i0[c]), vmulq_n_f32(dw0, d));
            a1[c] = vfmaq_f32(a1[c], vcvtq_f32_s32(i1[c]), vmulq_n_f32(dw1, d));
        }
    }
    store_tile(mm, g, m0, C, a0, a1);
}

/* Vector t of a Q4_0 block holds quad 2t in its low nibbles and 2t+1 in its high ones. */
#define Q4_STEP(t, X, l)                                                                           \
    do {                                                                                           \
        uint8x16_t v0 = vld1q_u8(qs + (t)*32), v1 = vld1q_u8(qs + (t)*32 + 16);                    \
        int8x16_t lo0 = vreinterpretq_s8_u8(vandq_u8(v0, low4));                                   \
        int8x16_t hi0 = vreinterpretq_s8_u8(vshrq_n_u8(v0, 4));                                    \
        int8x16_t lo1 = vreinterpretq_s8_u8(vandq_u8(v1, low4));                                   \
        int8x16_t hi1 = vreinterpretq_s8_u8(vshrq_n_u8(v1, 4));                                    \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++) {                                                              \
            DOT_LO(c, lo0, X[c], l);                                                               \
            DOT_LO(c, hi0, X[c], (l) + 1);                                                         \
            DOT_HI(c, lo1, X[c], l);                                                               \
            DOT_HI(c, hi1, X[c], (l) + 1);                                                         \
        }                                                                                          \
    } while (0)

AI void tile_q4_0(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    const int64_t K = mm->K, nb = K / 32;
    const char *wg = group_of(mm, g);
    const struct cpu_act *a = mm->a;
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    float32x4_t a0[MAXC], a1[MAXC];
    int8x16_t xa[MAXC], xb[MAXC];
    DOT_DECL;
    UNROLL
    for (int c = 0; c < MAXC; c++) {
        a0[c] = a1[c] = vdupq_n_f32(0.0f);
        xa[c] = xb[c] = vdupq_n_s8(0);
        i0[c] = i1[c] = vdupq_n_s32(0);
    }
    for (int64_t b = 0; b < nb; b++) {
        const char *blk = wg + (size_t)b * R * sizeof(struct mq_block_q4_0);
        float32x4_t dw0, dw1;
        load_scales(blk, &dw0, &dw1);
        const uint8_t *qs = (const uint8_t *)(blk + R * 2);
        UNROLL
        for (int c = 0; c < C; c++) {
            xa[c] = vld1q_s8(a->xq + (m0 + c) * K + b * 32);
            xb[c] = vld1q_s8(a->xq + (m0 + c) * K + b * 32 + 16);
            DOT_INIT(c);
        }
        Q4_STEP(0, xa, 0);
        Q4_STEP(1, xa, 2);
        Q4_STEP(2, xb, 0);
        Q4_STEP(3, xb, 2);
        UNROLL
        for (int c = 0; c < C; c++) {
            DOT_DONE(c);
            int32x4_t corr = vdupq_n_s32(8 * a->xs[(m0 + c) * nb + b]);
            float d = a->xd[(m0 + c) * nb + b];
            a0[c] = vfmaq_f32(a0[c], vcvtq_f32_s32(vsubq_s32(i0[c], corr)), vmulq_n_f32(dw0, d));
            a1[c] = vfmaq_f32(a1[c], vcvtq_f32_s32(vsubq_s32(i1[c], corr)), vmulq_n_f32(dw1, d));
        }
    }
    store_tile(mm, g, m0, C, a0, a1);
}

/* ---- the other block formats: the words layout (kern.h) ----
 * Word w of a group-block is 32 bytes: that word (block bytes 4w..4w+3) of rows 0-3, then
 * of rows 4-7. ggml's layouts keep 4 consecutive weights in 4 consecutive bytes (one
 * nibble, 2-bit field or bit plane of each), so a word decodes (shifts, masks, TBL; once
 * for all C columns) into int8 weights q[0] (rows 0-3) and q[1] (rows 4-7) whose 4 bytes
 * per row are 4 consecutive weights: quad l of a run of 16, which DOT_QUAD multiplies with
 * lane l of each column's 16 activation codes. One word is decoded at a time, as in Q4_0,
 * so that the decoded weights take 2 registers.
 *
 *   Q8_0 activations, blocks of 32: the low nibbles of qs word t are weights 4t..4t+3, the
 *   high nibbles 16+4t..16+4t+3; per block i = sum q x (int32, exact), and with xs the
 *   block's code sum:
 *     q4_1, q5_1:  y += d dx i + m dx xs
 *     q5_0:        y += d dx (i - 16 xs)        q = nibble | fifth bit << 4
 *     iq4_nl:      y += d dx i                  q = values[nibble] (TBL)
 *   Q8_K activations, blocks of 256: per sub-block j an int32 i_j (16 or 32 weights) times
 *   its integer scale, summed exactly over the block in int32 (the largest, q6_k's
 *   16 * 128 * 16 * 32 * 128 and iq4_xs's 8 * 32 * 32 * 127 * 128, are below 2^28), then
 *   scaled once per block; bsum_j are the activation sums per 16 (xs):
 *     q2_k:        y += dx (d sum sc_j i_j - dmin sum mn_j bsum_j)            16 subs of 16
 *     q3_k:        y += d dx sum (s_j - 32) i_j, q = (q2 | hbit << 2) - 4     16 of 16
 *     q4_k, q5_k:  y += dx (d sum sc_j i_j - dmin sum mn_j (bsum_2j + bsum_2j+1))  8 of 32
 *     q6_k:        y += d dx sum sc_j i_j, q = (ql | qh << 4) - 32            16 of 16
 *     iq4_xs:      y += d dx sum (ls_j - 32) i_j, q = values[nibble]          8 of 32
 * The integer sums are the scalar kernels' (exact); only the float accumulation of the
 * per-block terms differs from ref's double, which is what the tests' budgets cover.
 */

/* Word w of the 8 rows at `words`: r = 0 rows 0-3, r = 1 rows 4-7. */
AI uint8x16_t word_of(const uint8_t *words, int w, int r)
{
    return vld1q_u8(words + (size_t)w * 32 + (size_t)r * 16);
}

/* Each byte of v shifted right by n (left by -n when n < 0). */
AI uint8x16_t shr_u8(uint8x16_t v, int n)
{
    return vshlq_u8(v, vdupq_n_s8((int8_t)-n));
}

/* Byte j of each 32-bit lane (a row's word), unsigned or sign-extended. */
AI int32x4_t lane_byte_u(uint8x16_t v, int j)
{
    uint32x4_t w = vshlq_u32(vreinterpretq_u32_u8(v), vdupq_n_s32(-8 * j));
    return vreinterpretq_s32_u32(vandq_u32(w, vdupq_n_u32(0xFF)));
}

AI int32x4_t lane_byte_s(uint8x16_t v, int j)
{
    return vshrq_n_s32(vshlq_s32(vreinterpretq_s32_u8(v), vdupq_n_s32(24 - 8 * j)), 24);
}

/* A word of f16 pairs (d in the low half, m or dmin in the high half) of the 8 rows,
 * widened: d[0] rows 0-3, d[1] rows 4-7. */
AI void load_scale_pairs(const uint8_t *p, float32x4_t d[2], float32x4_t m[2])
{
    uint16x8x2_t h = vld2q_u16((const uint16_t *)(const void *)p);
    d[0] = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h.val[0])));
    d[1] = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h.val[0])));
    m[0] = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h.val[1])));
    m[1] = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h.val[1])));
}

/* i0/i1 += quad l of a run of 16 weights (q[0] rows 0-3, q[1] rows 4-7) times lane l of
 * each column's 16 codes X[c]. */
#define DOT_QUAD(q, X, l)                                                                          \
    do {                                                                                           \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++) {                                                              \
            DOT_LO(c, q[0], X[c], l);                                                              \
            DOT_HI(c, q[1], X[c], l);                                                              \
        }                                                                                          \
    } while (0)

/* A run of 16 weights times X; QUAD(i, q) decodes its quad i into q[2]. */
#define DOT16(QUAD, X)                                                                             \
    do {                                                                                           \
        int8x16_t q_[2];                                                                           \
        QUAD(0, q_);                                                                               \
        DOT_QUAD(q_, X, 0);                                                                        \
        QUAD(1, q_);                                                                               \
        DOT_QUAD(q_, X, 1);                                                                        \
        QUAD(2, q_);                                                                               \
        DOT_QUAD(q_, X, 2);                                                                        \
        QUAD(3, q_);                                                                               \
        DOT_QUAD(q_, X, 3);                                                                        \
    } while (0)

/* The 16 codes at offset `off` of each column's activations (xq: column m0's). */
#define LOAD_X(X, off)                                                                             \
    do {                                                                                           \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++)                                                                \
            X[c] = vld1q_s8(xq + c * K + (off));                                                   \
    } while (0)

/* Q5's fifth bits (0x10 where set) of the 4 weights of each row that byte `byte` of the
 * row's qh word holds in bits 4*half..4*half+3: TBL copies the byte into the row's 4 bytes,
 * TST tests one bit in each. qh: the qh word of 4 rows. */
AI uint8x16_t q5_bits(uint8x16_t qh, int byte, int half)
{
    static const uint8_t spread[4][16] = {{0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12},
                                          {1, 1, 1, 1, 5, 5, 5, 5, 9, 9, 9, 9, 13, 13, 13, 13},
                                          {2, 2, 2, 2, 6, 6, 6, 6, 10, 10, 10, 10, 14, 14, 14, 14},
                                          {3, 3, 3, 3, 7, 7, 7, 7, 11, 11, 11, 11, 15, 15, 15, 15}};
    static const uint8_t bit[2][16] = {
        {1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8},
        {16, 32, 64, 128, 16, 32, 64, 128, 16, 32, 64, 128, 16, 32, 64, 128}};
    uint8x16_t t = vtstq_u8(vqtbl1q_u8(qh, vld1q_u8(spread[byte])), vld1q_u8(bit[half]));
    return vandq_u8(t, vdupq_n_u8(0x10));
}

/* qs word t of a 32-block of q4_1, q5_0, q5_1 or iq4_nl, decoded: lo = weights 4t..4t+3
 * (low nibbles), hi = weights 16+4t.. (high nibbles); q5: plus their fifth bits, bits
 * 4t.. and 16+4t.. of the row's qh word (qh[r]). */
AI void nib32_quad(const uint8_t *words, int w_qs, const uint8x16_t qh[2], int t,
                   const enum mq_dtype T, int8x16_t lo[2], int8x16_t hi[2])
{
    const int8x16_t values = vld1q_s8(mq_iq4nl_values);
    UNROLL
    for (int r = 0; r < 2; r++) {
        uint8x16_t v = word_of(words, w_qs + t, r);
        uint8x16_t l = vandq_u8(v, vdupq_n_u8(0x0F)), h = vshrq_n_u8(v, 4);
        if (T == MQ_DTYPE_Q5_0 || T == MQ_DTYPE_Q5_1) {
            l = vorrq_u8(l, q5_bits(qh[r], t / 2, t % 2));
            h = vorrq_u8(h, q5_bits(qh[r], 2 + t / 2, t % 2));
        }
        if (T == MQ_DTYPE_IQ4_NL) {
            lo[r] = vqtbl1q_s8(values, l);
            hi[r] = vqtbl1q_s8(values, h);
        } else {
            lo[r] = vreinterpretq_s8_u8(l);
            hi[r] = vreinterpretq_s8_u8(h);
        }
    }
}

#define NIB32_STEP(t)                                                                              \
    do {                                                                                           \
        int8x16_t lo[2], hi[2];                                                                    \
        nib32_quad(words, w_qs, qh, t, T, lo, hi);                                                 \
        DOT_QUAD(lo, xa, t);                                                                       \
        DOT_QUAD(hi, xb, t);                                                                       \
    } while (0)

/* q4_1, q5_0, q5_1, iq4_nl: blocks of 32 in Q4_0's nibble order, Q8_0 activations. T is a
 * constant at every call site, so the format's branches fold away. Words: q4_1 (d, m),
 * qs x4; q5_0 (d first) qh, qs x4; q5_1 (d, m), qh, qs x4; iq4_nl (d first) qs x4. */
AI void tile_nib32(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, const enum mq_dtype T)
{
    const bool d_head = T == MQ_DTYPE_Q5_0 || T == MQ_DTYPE_IQ4_NL; /* else word 0 is (d, m) */
    const bool has_m = !d_head, has_qh = T == MQ_DTYPE_Q5_0 || T == MQ_DTYPE_Q5_1;
    const size_t bytes = T == MQ_DTYPE_Q4_1   ? sizeof(struct mq_block_q4_1)
                         : T == MQ_DTYPE_Q5_0 ? sizeof(struct mq_block_q5_0)
                         : T == MQ_DTYPE_Q5_1 ? sizeof(struct mq_block_q5_1)
                                              : sizeof(struct mq_block_iq4_nl);
    const int w_qh = has_m ? 1 : 0, w_qs = w_qh + (has_qh ? 1 : 0);
    const int64_t K = mm->K, nb = K / 32;
    const uint8_t *wg = (const uint8_t *)group_of(mm, g);
    const int8_t *xq = mm->a->xq + m0 * K;
    const float *xd = mm->a->xd + m0 * nb;
    const int32_t *xs = mm->a->xs + m0 * nb;
    float32x4_t a0[MAXC], a1[MAXC];
    int8x16_t xa[MAXC], xb[MAXC];
    DOT_DECL;
    UNROLL
    for (int c = 0; c < MAXC; c++) {
        a0[c] = a1[c] = vdupq_n_f32(0.0f);
        xa[c] = xb[c] = vdupq_n_s8(0);
        i0[c] = i1[c] = vdupq_n_s32(0);
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wg + (size_t)b * R * bytes;
        const uint8_t *words = blk + (d_head ? R * 2 : 0);
        float32x4_t dw[2], mw[2];
        uint8x16_t qh[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};
        if (d_head)
            load_scales((const char *)blk, &dw[0], &dw[1]);
        else
            load_scale_pairs(blk, dw, mw);
        if (has_qh)
            UNROLL
        for (int r = 0; r < 2; r++)
            qh[r] = word_of(words, w_qh, r);
        UNROLL
        for (int c = 0; c < C; c++) {
            xa[c] = vld1q_s8(xq + c * K + b * 32);
            xb[c] = vld1q_s8(xq + c * K + b * 32 + 16);
            DOT_INIT(c);
        }
        NIB32_STEP(0);
        NIB32_STEP(1);
        NIB32_STEP(2);
        NIB32_STEP(3);
        UNROLL
        for (int c = 0; c < C; c++) {
            DOT_DONE(c);
            float dx = xd[c * nb + b];
            int32x4_t s0 = i0[c], s1 = i1[c];
            if (T == MQ_DTYPE_Q5_0) { /* codes 0..31 stand for q - 16 */
                int32x4_t corr = vdupq_n_s32(16 * xs[c * nb + b]);
                s0 = vsubq_s32(s0, corr);
                s1 = vsubq_s32(s1, corr);
            }
            a0[c] = vfmaq_f32(a0[c], vcvtq_f32_s32(s0), vmulq_n_f32(dw[0], dx));
            a1[c] = vfmaq_f32(a1[c], vcvtq_f32_s32(s1), vmulq_n_f32(dw[1], dx));
            if (has_m) {
                float mx = dx * (float)xs[c * nb + b];
                a0[c] = vfmaq_n_f32(a0[c], mw[0], mx);
                a1[c] = vfmaq_n_f32(a1[c], mw[1], mx);
            }
        }
    }
    store_tile(mm, g, m0, C, a0, a1);
}

AI void tile_q4_1(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    tile_nib32(mm, g, m0, C, MQ_DTYPE_Q4_1);
}

AI void tile_q5_0(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    tile_nib32(mm, g, m0, C, MQ_DTYPE_Q5_0);
}

AI void tile_q5_1(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    tile_nib32(mm, g, m0, C, MQ_DTYPE_Q5_1);
}

AI void tile_iq4_nl(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    tile_nib32(mm, g, m0, C, MQ_DTYPE_IQ4_NL);
}

/* ---- Q8_K-activation formats (K-quants, iq4_xs): 256-blocks, sub-block scales ----
 * Shared shape: per block, s0/s1 (rows 0-3, 4-7) of each column sum i_j * scale_j over the
 * sub-blocks (SUB_BEGIN, DOT16, SUB_DONE), then KQ_ADD scales them by d dx into a0/a1;
 * formats with mins sum mn_j * bsum_j into s0/s1 afresh (KQ_MIN) and KQ_SUB takes
 * dmin dx times that away. */

#define KQ_DECL                                                                                    \
    const int64_t K = mm->K, nb = K / 256, ns = K / 16;                                            \
    const uint8_t *wg = (const uint8_t *)group_of(mm, g);                                          \
    const int8_t *xq = mm->a->xq + m0 * K;                                                         \
    const float *xd = mm->a->xd + m0 * nb;                                                         \
    const int32_t *xs = mm->a->xs + m0 * ns;                                                       \
    float32x4_t a0[MAXC], a1[MAXC];                                                                \
    int32x4_t s0[MAXC], s1[MAXC];                                                                  \
    int8x16_t X[MAXC];                                                                             \
    DOT_DECL;                                                                                      \
    UNROLL                                                                                         \
    for (int c = 0; c < MAXC; c++) {                                                               \
        a0[c] = a1[c] = vdupq_n_f32(0.0f);                                                         \
        s0[c] = s1[c] = i0[c] = i1[c] = vdupq_n_s32(0);                                            \
        X[c] = vdupq_n_s8(0);                                                                      \
    }                                                                                              \
    (void)xs; /* read by the formats with mins only */

#define SUB_BEGIN()                                                                                \
    do {                                                                                           \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++)                                                                \
            DOT_INIT(c);                                                                           \
    } while (0)

/* s += i_j * scale_j (sc0: rows 0-3, sc1: rows 4-7, int32) */
#define SUB_DONE(sc0, sc1)                                                                         \
    do {                                                                                           \
        int32x4_t sc0_ = (sc0), sc1_ = (sc1);                                                      \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++) {                                                              \
            DOT_DONE(c);                                                                           \
            s0[c] = vmlaq_s32(s0[c], i0[c], sc0_);                                                 \
            s1[c] = vmlaq_s32(s1[c], i1[c], sc1_);                                                 \
        }                                                                                          \
    } while (0)

/* a += s * d * dx, s := 0 (for the mins) */
#define KQ_ADD(d)                                                                                  \
    do {                                                                                           \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++) {                                                              \
            float dx = xd[c * nb + b];                                                             \
            a0[c] = vfmaq_f32(a0[c], vcvtq_f32_s32(s0[c]), vmulq_n_f32(d[0], dx));                 \
            a1[c] = vfmaq_f32(a1[c], vcvtq_f32_s32(s1[c]), vmulq_n_f32(d[1], dx));                 \
            s0[c] = s1[c] = vdupq_n_s32(0);                                                        \
        }                                                                                          \
    } while (0)

/* s += mn * bsum (the mins of the 8 rows, int32, times each column's code sum `at`) */
#define KQ_MIN(mn0, mn1, at)                                                                       \
    do {                                                                                           \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++) {                                                              \
            s0[c] = vmlaq_n_s32(s0[c], mn0, xs[c * ns + (at)]);                                    \
            s1[c] = vmlaq_n_s32(s1[c], mn1, xs[c * ns + (at)]);                                    \
        }                                                                                          \
    } while (0)

/* a -= s * dmin * dx, s := 0 */
#define KQ_SUB(dmin)                                                                               \
    do {                                                                                           \
        UNROLL                                                                                     \
        for (int c = 0; c < C; c++) {                                                              \
            float dx = xd[c * nb + b];                                                             \
            a0[c] = vfmsq_f32(a0[c], vcvtq_f32_s32(s0[c]), vmulq_n_f32(dmin[0], dx));              \
            a1[c] = vfmsq_f32(a1[c], vcvtq_f32_s32(s1[c]), vmulq_n_f32(dmin[1], dx));              \
            s0[c] = s1[c] = vdupq_n_s32(0);                                                        \
        }                                                                                          \
    } while (0)

/* q2_k: field k (bits 2k, 2k+1) of word wi */
AI void q2_quad(const uint8_t *w, int wi, int k, int8x16_t q[2])
{
    UNROLL
    for (int r = 0; r < 2; r++)
        q[r] = vreinterpretq_s8_u8(vandq_u8(shr_u8(word_of(w, wi, r), 2 * k), vdupq_n_u8(3)));
}

/* q2_k words: 0-3 the scale/min bytes (sub-blocks 4i..4i+3 in word i), 4-19 qs, 20 (d, dmin).
 * Sub-block 8h + 2k + u (16 weights) is field k of qs words 4 + 8h + 4u..+3. */
AI void tile_q2_k(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    KQ_DECL
    const int32x4_t m4 = vdupq_n_s32(15);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = wg + (size_t)b * R * sizeof(struct mq_block_q2_k);
        float32x4_t d[2], dmin[2];
        load_scale_pairs(w + 20 * 32, d, dmin);
        for (int h = 0; h < 2; h++)
            for (int u = 0; u < 2; u++)
                for (int k = 0; k < 4; k++) {
                    const int j = 8 * h + 2 * k + u, w0 = 4 + 8 * h + 4 * u;
                    uint8x16_t sc0 = word_of(w, j / 4, 0), sc1 = word_of(w, j / 4, 1);
#define Q2_QUAD(i, q) q2_quad(w, w0 + (i), k, q)
                    SUB_BEGIN();
                    LOAD_X(X, b * 256 + 16 * j);
                    DOT16(Q2_QUAD, X);
                    SUB_DONE(vandq_s32(lane_byte_u(sc0, j % 4), m4),
                             vandq_s32(lane_byte_u(sc1, j % 4), m4));
#undef Q2_QUAD
                }
        KQ_ADD(d);
        for (int j = 0; j < 16; j++) {
            uint8x16_t sc0 = word_of(w, j / 4, 0), sc1 = word_of(w, j / 4, 1);
            KQ_MIN(vshrq_n_s32(lane_byte_u(sc0, j % 4), 4), vshrq_n_s32(lane_byte_u(sc1, j % 4), 4),
                   b * 16 + j);
        }
        KQ_SUB(dmin);
    }
    store_tile(mm, g, m0, C, a0, a1);
}

/* q3_k: field k of qs word wq, minus 4 unless bit `hbit` of hmask word wh is set */
AI void q3_quad(const uint8_t *words, int wq, int wh, int k, int hbit, int8x16_t q[2])
{
    UNROLL
    for (int r = 0; r < 2; r++) {
        uint8x16_t v = vorrq_u8(vandq_u8(shr_u8(word_of(words, wq, r), 2 * k), vdupq_n_u8(3)),
                                vandq_u8(shr_u8(word_of(words, wh, r), hbit - 2), vdupq_n_u8(4)));
        q[r] = vsubq_s8(vreinterpretq_s8_u8(v), vdupq_n_s8(4));
    }
}

/* q3_k: s_j - 32 of sub-block j for rows 4r..4r+3 (core/dtype.h): the low 4 bits are
 * nibble j/8 of byte j%8 of scales[0..7] (words 24, 25), the high 2 bits 2(j/4).. of byte
 * j%4 of scales[8..11] (word 26). */
AI int32x4_t q3_scale(const uint8_t *words, int j, int r)
{
    uint32x4_t lo = vreinterpretq_u32_u8(word_of(words, 24 + (j % 8) / 4, r));
    uint32x4_t hi = vreinterpretq_u32_u8(word_of(words, 26, r));
    uint32x4_t l =
        vandq_u32(vshlq_u32(lo, vdupq_n_s32(-(8 * (j % 4) + 4 * (j / 8)))), vdupq_n_u32(0x0F));
    uint32x4_t h =
        vandq_u32(vshlq_u32(hi, vdupq_n_s32(-(8 * (j % 4) + 2 * (j / 4)))), vdupq_n_u32(0x03));
    return vsubq_s32(vreinterpretq_s32_u32(vorrq_u32(l, vshlq_n_u32(h, 4))), vdupq_n_s32(32));
}

/* q3_k (d first, then words): 0-7 hmask, 8-23 qs, 24-26 the packed scales. Sub-block
 * 8h + 2k + u: field k of qs words 8 + 8h + 4u..+3, high bit 4h + k of hmask words 4u..+3. */
AI void tile_q3_k(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    KQ_DECL
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = wg + (size_t)b * R * sizeof(struct mq_block_q3_k);
        const uint8_t *words = w + R * 2;
        float32x4_t d[2];
        load_scales((const char *)w, &d[0], &d[1]);
        /* k outermost: the words of one (h, u) then change every sub-block, which keeps
         * the compiler from holding all 16 of them in registers across k */
        for (int k = 0; k < 4; k++)
            for (int h = 0; h < 2; h++)
                for (int u = 0; u < 2; u++) {
                    const int j = 8 * h + 2 * k + u;
#define Q3_QUAD(i, q) q3_quad(words, 8 + 8 * h + 4 * u + (i), 4 * u + (i), k, 4 * h + k, q)
                    SUB_BEGIN();
                    LOAD_X(X, b * 256 + 16 * j);
                    DOT16(Q3_QUAD, X);
                    SUB_DONE(q3_scale(words, j, 0), q3_scale(words, j, 1));
#undef Q3_QUAD
                }
        KQ_ADD(d);
    }
    store_tile(mm, g, m0, C, a0, a1);
}

/* q4_k/q5_k: the 6-bit scale (mn false) or min (mn true) of sub-block j for rows
 * 4r..4r+3, from words 1-3 (core/dtype.h: j < 4: byte j of scales[0..3] or [4..7], low 6
 * bits; j >= 4: a nibble of byte j-4 of scales[8..11] and the top 2 bits of byte j-4 of
 * scales[0..3] or [4..7]). */
AI int32x4_t k4_scale(const uint8_t *w, int j, int r, const bool mn)
{
    uint32x4_t a = vreinterpretq_u32_u8(word_of(w, mn ? 2 : 1, r));
    int sh = 8 * (j % 4);
    if (j < 4)
        return vreinterpretq_s32_u32(vandq_u32(vshlq_u32(a, vdupq_n_s32(-sh)), vdupq_n_u32(63)));
    uint32x4_t c = vreinterpretq_u32_u8(word_of(w, 3, r));
    uint32x4_t l = vandq_u32(vshlq_u32(c, vdupq_n_s32(-(sh + (mn ? 4 : 0)))), vdupq_n_u32(0x0F));
    uint32x4_t h = vandq_u32(vshlq_u32(a, vdupq_n_s32(-(sh + 2))), vdupq_n_u32(0x30));
    return vreinterpretq_s32_u32(vorrq_u32(l, h));
}

/* q4_k/q5_k: nibble j%2 of qs word wq; q5_k: bit j of qh word wh is the fifth bit */
AI void k4_quad(const uint8_t *w, const bool q5, int wq, int wh, int j, int8x16_t q[2])
{
    UNROLL
    for (int r = 0; r < 2; r++) {
        uint8x16_t v = vandq_u8(shr_u8(word_of(w, wq, r), 4 * (j % 2)), vdupq_n_u8(0x0F));
        if (q5)
            v = vorrq_u8(v, vandq_u8(shr_u8(word_of(w, wh, r), j - 4), vdupq_n_u8(0x10)));
        q[r] = vreinterpretq_s8_u8(v);
    }
}

/* q4_k (Q5 = false) and q5_k words: 0 (d, dmin), 1-3 scales; q4_k: 4-35 qs; q5_k: 4-11 qh,
 * 12-43 qs. Sub-block j (32 weights) is nibble j%2 of qs words 8(j/2)..+7 (the first 16
 * weights in words 0-3 of those), fifth bits bit j of qh words 0-7. */
AI void tile_k4(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, const bool Q5)
{
    KQ_DECL
    const int w_qs = Q5 ? 12 : 4;
    const size_t bytes = Q5 ? sizeof(struct mq_block_q5_k) : sizeof(struct mq_block_q4_k);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = wg + (size_t)b * R * bytes;
        float32x4_t d[2], dmin[2];
        load_scale_pairs(w, d, dmin);
        for (int j = 0; j < 8; j++) {
            SUB_BEGIN();
            for (int half = 0; half < 2; half++) {
#define K4_QUAD(i, q) k4_quad(w, Q5, w_qs + 8 * (j / 2) + 4 * half + (i), 4 + 4 * half + (i), j, q)
                LOAD_X(X, b * 256 + 32 * j + 16 * half);
                DOT16(K4_QUAD, X);
#undef K4_QUAD
            }
            SUB_DONE(k4_scale(w, j, 0, false), k4_scale(w, j, 1, false));
        }
        KQ_ADD(d);
        for (int j = 0; j < 8; j++) {
            int32x4_t n0 = k4_scale(w, j, 0, true), n1 = k4_scale(w, j, 1, true);
            KQ_MIN(n0, n1, b * 16 + 2 * j);
            KQ_MIN(n0, n1, b * 16 + 2 * j + 1);
        }
        KQ_SUB(dmin);
    }
    store_tile(mm, g, m0, C, a0, a1);
}

AI void tile_q4_k(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    tile_k4(mm, g, m0, C, false);
}

AI void tile_q5_k(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    tile_k4(mm, g, m0, C, true);
}

/* q6_k: nibble k/2 of ql word wl, field k of qh word wh as bits 4-5, minus 32 */
AI void q6_quad(const uint8_t *words, int wl, int wh, int k, int8x16_t q[2])
{
    UNROLL
    for (int r = 0; r < 2; r++) {
        uint8x16_t v =
            vorrq_u8(vandq_u8(shr_u8(word_of(words, wl, r), 4 * (k / 2)), vdupq_n_u8(0x0F)),
                     vandq_u8(shr_u8(word_of(words, wh, r), 2 * k - 4), vdupq_n_u8(0x30)));
        q[r] = vsubq_s8(vreinterpretq_s8_u8(v), vdupq_n_s8(32));
    }
}

/* q6_k (d first, then words): 0-31 ql, 32-47 qh, 48-51 int8 scales. Sub-block
 * 8h + 2k + u: nibble k/2 of ql words 16h + 8(k%2) + 4u..+3, field k of qh words
 * 32 + 8h + 4u..+3. */
AI void tile_q6_k(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    KQ_DECL
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = wg + (size_t)b * R * sizeof(struct mq_block_q6_k);
        const uint8_t *words = w + R * 2;
        float32x4_t d[2];
        load_scales((const char *)w, &d[0], &d[1]);
        for (int h = 0; h < 2; h++)
            for (int u = 0; u < 2; u++)
                for (int k = 0; k < 4; k++) {
                    const int j = 8 * h + 2 * k + u;
                    uint8x16_t sc0 = word_of(words, 48 + j / 4, 0),
                               sc1 = word_of(words, 48 + j / 4, 1);
#define Q6_QUAD(i, q)                                                                              \
    q6_quad(words, 16 * h + 8 * (k % 2) + 4 * u + (i), 32 + 8 * h + 4 * u + (i), k, q)
                    SUB_BEGIN();
                    LOAD_X(X, b * 256 + 16 * j);
                    DOT16(Q6_QUAD, X);
                    SUB_DONE(lane_byte_s(sc0, j % 4), lane_byte_s(sc1, j % 4));
#undef Q6_QUAD
                }
        KQ_ADD(d);
    }
    store_tile(mm, g, m0, C, a0, a1);
}

/* iq4_xs: nibble `nib` of word wi through the table */
AI void iq4_quad(const uint8_t *w, int wi, int nib, int8x16_t q[2])
{
    const int8x16_t values = vld1q_s8(mq_iq4nl_values);
    UNROLL
    for (int r = 0; r < 2; r++)
        q[r] = vqtbl1q_s8(values, vandq_u8(shr_u8(word_of(w, wi, r), 4 * nib), vdupq_n_u8(0x0F)));
}

/* iq4_xs words: 0 (d, scales_h), 1 scales_l, 2-33 qs. Sub-block j (32 weights): qs words
 * 2 + 4j..+3, low nibbles weights 0-15, high 16-31, values by TBL; its scale
 * ls_j = (scales_l >> 4j & 15) | (scales_h >> 2j & 3) << 4, minus 32. */
AI void tile_iq4_xs(const struct cpu_mm *mm, int64_t g, int64_t m0, int C)
{
    KQ_DECL
    const uint32x4_t m4 = vdupq_n_u32(0x0F), b45 = vdupq_n_u32(0x30);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = wg + (size_t)b * R * sizeof(struct mq_block_iq4_xs);
        float32x4_t d[2], unused[2];
        load_scale_pairs(w, d, unused);
        for (int j = 0; j < 8; j++) {
            int32x4_t ls[2];
            UNROLL
            for (int r = 0; r < 2; r++) {
                uint32x4_t hw = vreinterpretq_u32_u8(word_of(w, 0, r));
                uint32x4_t lw = vreinterpretq_u32_u8(word_of(w, 1, r));
                uint32x4_t l = vandq_u32(vshlq_u32(lw, vdupq_n_s32(-4 * j)), m4);
                uint32x4_t hb = vandq_u32(vshlq_u32(hw, vdupq_n_s32(-(12 + 2 * j))), b45);
                ls[r] = vsubq_s32(vreinterpretq_s32_u32(vorrq_u32(l, hb)), vdupq_n_s32(32));
            }
#define IQ4_LO(i, q) iq4_quad(w, 2 + 4 * j + (i), 0, q)
#define IQ4_HI(i, q) iq4_quad(w, 2 + 4 * j + (i), 1, q)
            SUB_BEGIN();
            LOAD_X(X, b * 256 + 32 * j);
            DOT16(IQ4_LO, X);
            LOAD_X(X, b * 256 + 32 * j + 16);
            DOT16(IQ4_HI, X);
            SUB_DONE(ls[0], ls[1]);
#undef IQ4_LO
#undef IQ4_HI
        }
        KQ_ADD(d);
    }
    store_tile(mm, g, m0, C, a0, a1);
}

/* Column tiling: 4 columns at a time (2 for the fallback integer kernels, whose
 * accumulators need twice the registers), then 2, 1. The tile functions take C as a
 * run-time value but are inlined per call site with a constant, so loops over c unroll
 * (UNROLL insists). */
typedef void (*tile_fn)(const struct cpu_mm *mm, int64_t g, int64_t m0, int C);

AI void run_tiles(const struct cpu_mm *mm, int64_t g0, int64_t g1, tile_fn tile, int maxc)
{
    const int64_t M = mm->a->M;
    for (int64_t g = g0; g < g1; g++) {
        int64_t m = 0;
        if (maxc >= 4)
            for (; m + 4 <= M; m += 4)
                tile(mm, g, m, 4);
        for (; m + 2 <= M; m += 2)
            tile(mm, g, m, 2);
        if (m < M)
            tile(mm, g, m, 1);
    }
}

#define MM_ENTRY(NAME, TILE, MAXC_)                                                                \
    static void NAME(const struct cpu_mm *mm, int64_t g0, int64_t g1)                              \
    {                                                                                              \
        run_tiles(mm, g0, g1, TILE, MAXC_);                                                        \
    }

MM_ENTRY(mm_f32, tile_f32, 4)
MM_ENTRY(mm_f16w, tile_f16w, 4)
MM_ENTRY(mm_bf16, tile_bf16, 4)
MM_ENTRY(mm_q8_0, tile_q8_0, INT_MAXC)
MM_ENTRY(mm_q4_0, tile_q4_0, INT_MAXC)
MM_ENTRY(mm_q4_1, tile_q4_1, INT_MAXC)
MM_ENTRY(mm_q5_0, tile_q5_0, INT_MAXC)
MM_ENTRY(mm_q5_1, tile_q5_1, INT_MAXC)
MM_ENTRY(mm_iq4_nl, tile_iq4_nl, INT_MAXC)
MM_ENTRY(mm_q2_k, tile_q2_k, INT_MAXC)
MM_ENTRY(mm_q3_k, tile_q3_k, INT_MAXC)
MM_ENTRY(mm_q4_k, tile_q4_k, INT_MAXC)
MM_ENTRY(mm_q5_k, tile_q5_k, INT_MAXC)
MM_ENTRY(mm_q6_k, tile_q6_k, INT_MAXC)
MM_ENTRY(mm_iq4_xs, tile_iq4_xs, INT_MAXC)
#ifdef NEON_FP16
MM_ENTRY(mm_f16h, tile_f16h, 4)
#endif

/* ---- activations to Q8_0 ---- */

static void quantize_q8(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s)
{
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        float32x4_t v[8];
        for (int i = 0; i < 8; i++)
            v[i] = vld1q_f32(xb + 4 * i);
        float32x4_t m = vabsq_f32(v[0]);
        uint32x4_t ord = vceqq_f32(v[0], v[0]);
        for (int i = 1; i < 8; i++) {
            m = vmaxq_f32(m, vabsq_f32(v[i]));
            ord = vandq_u32(ord, vceqq_f32(v[i], v[i]));
        }
        float amax = vmaxvq_f32(m);
        if (vminvq_u32(ord) == 0) /* any NaN makes the block's scale NaN, as the scalar path */
            amax = NAN;
        float dd = amax / 127.0f;
        float id = dd != 0.0f ? 1.0f / dd : 0.0f;
        /* FCVTAS rounds half away from zero like roundf; NaN products (NaN or Inf input)
         * give 0 as in the scalar path (FMAX/FMIN keep the NaN); products are clamped to
         * +-127 (infinite when the scale is subnormal, its f16 0), as on every path */
        const float32x4_t lim = vdupq_n_f32(127.0f), nlim = vdupq_n_f32(-127.0f);
        int16x8_t h[4];
        for (int i = 0; i < 4; i++) {
            float32x4_t p0 = vminq_f32(vmaxq_f32(vmulq_n_f32(v[2 * i], id), nlim), lim);
            float32x4_t p1 = vminq_f32(vmaxq_f32(vmulq_n_f32(v[2 * i + 1], id), nlim), lim);
            h[i] = vcombine_s16(vqmovn_s32(vcvtaq_s32_f32(p0)), vqmovn_s32(vcvtaq_s32_f32(p1)));
        }
        int8x16_t q0 = vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1]));
        int8x16_t q1 = vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3]));
        vst1q_s8(q + b * 32, q0);
        vst1q_s8(q + b * 32 + 16, q1);
        if (u) {
            const uint8x16_t off = vdupq_n_u8(0x80);
            vst1q_u8(u + b * 32, veorq_u8(vreinterpretq_u8_s8(q0), off));
            vst1q_u8(u + b * 32 + 16, veorq_u8(vreinterpretq_u8_s8(q1), off));
        }
        s[b] = (int32_t)vaddlvq_s8(q0) + (int32_t)vaddlvq_s8(q1);
        d[b] = mq_f16_to_f32(mq_f32_to_f16(dd));
    }
}

/* ---- activations to Q8_K ----
 * Bit for bit cpu_quantize_q8k_scalar (ggml's quantize_row_q8_K_ref, with mixq's rule for
 * non-finite input): amax is the largest |x| (lane maxima by strict compare, as the scalar
 * loop's `>`), max the first element of that magnitude (its sign picks the codes' sign),
 * iscale = -127 / max, codes round half to even (FCVTNS: ggml's nearest_int is the same
 * for |p| < 2^22, and |p| <= 127 here), clamped above at 127, d = 1 / iscale. All zero:
 * d 0, codes 0; a NaN or Inf anywhere in the block: d NaN, codes 0. An infinite iscale
 * (max below 127 / FLT_MAX) gives the scalar path codes 0 (its nearest_int of +-Inf
 * truncates to 0, NaN products are 0) where FCVTNS would saturate: a special case here. */
static void quantize_q8k(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s)
{
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        int8_t *qb = q + b * 256;
        float32x4_t m = vdupq_n_f32(0.0f);
        uint32x4_t ord = vceqq_f32(m, m);
        for (int i = 0; i < 64; i++) {
            float32x4_t v = vld1q_f32(xb + 4 * i), ax = vabsq_f32(v);
            m = vbslq_f32(vcgtq_f32(ax, m), ax, m);
            ord = vandq_u32(ord, vceqq_f32(v, v));
        }
        float amax = vmaxvq_f32(m), iscale = 0.0f;
        bool nan = vminvq_u32(ord) == 0;
        if (amax != 0.0f && !isinf(amax) && !nan) {
            const float32x4_t av = vdupq_n_f32(amax);
            int j = 0;
            while (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(xb + j)), av)) == 0)
                j += 4;
            while (fabsf(xb[j]) != amax)
                j++;
            iscale = -127.0f / xb[j];
        }
        if (amax == 0.0f || isinf(amax) || nan || isinf(iscale)) {
            d[b] = amax == 0.0f && !nan ? 0.0f : isinf(amax) || nan ? NAN : 1.0f / iscale;
            memset(qb, 0, 256);
        } else {
            const int32x4_t lim = vdupq_n_s32(127);
            for (int i = 0; i < 16; i++) {
                int16x8_t h[2];
                for (int k = 0; k < 2; k++) {
                    const float *p = xb + 16 * i + 8 * k;
                    int32x4_t c0 =
                        vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(p), iscale)), lim);
                    int32x4_t c1 =
                        vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(p + 4), iscale)), lim);
                    h[k] = vcombine_s16(vqmovn_s32(c0), vqmovn_s32(c1));
                }
                vst1q_s8(qb + 16 * i, vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1])));
            }
            d[b] = 1.0f / iscale;
        }
        for (int i = 0; i < 16; i++) {
            int8x16_t c = vld1q_s8(qb + 16 * i);
            s[b * 16 + i] = (int32_t)vaddlvq_s8(c);
            if (u)
                vst1q_u8(u + b * 256 + 16 * i, veorq_u8(vreinterpretq_u8_s8(c), vdupq_n_u8(0x80)));
        }
    }
}

/* ---- vector helpers ---- */

/* exp(x): 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], degree-6 polynomial (relative
 * error < 2e-7), as the x86 kernels; 0 below -87.3, +Inf above 88.7, NaN propagates.
 * 2^n is applied in two exact halves since n reaches 128. */
static inline float32x4_t exp_ps(float32x4_t x)
{
    const float32x4_t hi = vdupq_n_f32(88.7f), lo = vdupq_n_f32(-87.3f);
    float32x4_t xc = vmaxq_f32(vminq_f32(x, hi), lo);
    float32x4_t n = vrndnq_f32(vmulq_n_f32(xc, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t ni = vcvtq_s32_f32(n);
    int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    float32x4_t p1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t p2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    float32x4_t y = vmulq_f32(vmulq_f32(p, p1), p2);
    y = vbslq_f32(vcgtq_f32(x, hi), vdupq_n_f32(INFINITY), y);
    y = vbslq_f32(vcltq_f32(x, lo), vdupq_n_f32(0.0f), y);
    return vbslq_f32(vceqq_f32(x, x), y, x);
}

static void add(const float *a, const float *b, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
    for (; i < n; i++)
        y[i] = a[i] + b[i];
}

static void swiglu(const float *g, const float *u, float *y, int64_t n)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t gv = vld1q_f32(g + i);
        float32x4_t e = exp_ps(vnegq_f32(gv));
        vst1q_f32(y + i, vmulq_f32(vdivq_f32(gv, vaddq_f32(one, e)), vld1q_f32(u + i)));
    }
    for (; i < n; i++)
        y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static double sumsq(const float *x, int64_t n)
{
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        s0 = vfmaq_f64(s0, lo, lo);
        s1 = vfmaq_f64(s1, hi, hi);
    }
    double s = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return s;
}

static void scale_mul(const float *x, float scale, const float *w, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
    for (; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

static float dot(const float *a, const float *b, int64_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy(float s, const float *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), s));
    for (; i < n; i++)
        y[i] += s * x[i];
}

static float exp_sum(float *x, float mx, int64_t n)
{
    float32x4_t s = vdupq_n_f32(0.0f), mv = vdupq_n_f32(mx);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = exp_ps(vsubq_f32(vld1q_f32(x + i), mv));
        vst1q_f32(x + i, e);
        s = vaddq_f32(s, e);
    }
    float sum = vaddvq_f32(s);
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    return sum;
}

const struct cpu_kern KERN = {
    .isa = PATH_NAME,
    .rows = R,
    .matmul = {[MQ_DTYPE_F32] = mm_f32,
#ifdef NEON_FP16
               [MQ_DTYPE_F16] = mm_f16h,
#else
               [MQ_DTYPE_F16] = mm_f16w,
#endif
               [MQ_DTYPE_BF16] = mm_bf16,
               [MQ_DTYPE_Q8_0] = mm_q8_0,
               [MQ_DTYPE_Q4_0] = mm_q4_0,
               [MQ_DTYPE_Q4_1] = mm_q4_1,
               [MQ_DTYPE_Q5_0] = mm_q5_0,
               [MQ_DTYPE_Q5_1] = mm_q5_1,
               [MQ_DTYPE_Q2_K] = mm_q2_k,
               [MQ_DTYPE_Q3_K] = mm_q3_k,
               [MQ_DTYPE_Q4_K] = mm_q4_k,
               [MQ_DTYPE_Q5_K] = mm_q5_k,
               [MQ_DTYPE_Q6_K] = mm_q6_k,
               [MQ_DTYPE_IQ4_NL] = mm_iq4_nl,
               [MQ_DTYPE_IQ4_XS] = mm_iq4_xs},
    .quantize_q8 = quantize_q8,
    .quantize_q8k = quantize_q8k,
    .add = add,
    .swiglu = swiglu,
    .sumsq = sumsq,
    .scale_mul = scale_mul,
    .dot = dot,
    .axpy = axpy,
    .exp_sum = exp_sum,
#ifdef NEON_FP16
    .f16_act = f16_act,
    .matmul_f16_wide = mm_f16w,
#endif
};
