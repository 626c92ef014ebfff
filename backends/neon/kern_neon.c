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
 *
 * Activations to Q8_0: ggml's rule (d = amax/127 rounded to f16, codes = x/d rounded half
 * away from zero, FCVTAS), with a NaN anywhere making the block's scale NaN: the codes are
 * bit-identical to the scalar path's (tests/unit/test_neon.c checks them).
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

/* Rows [8g, 8g+8) of columns m0..m0+C-1; the last group may be partial. */
AI void store_tile(const struct cpu_mm *mm, int64_t g, int64_t m0, int C, const float32x4_t *a0,
                   const float32x4_t *a1)
{
    int64_t n0 = g * R, left = mm->N - n0;
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
        for (int c = 0; c < MAXC; c++)                                                             \
            a0[c] = a1[c] = xv[c] = vdupq_n_f32(0.0f);                                             \
        int64_t k = 0;                                                                             \
        for (; k + 4 <= K; k += 4) {                                                               \
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
    for (int c = 0; c < MAXC; c++)
        a0[c] = a1[c] = xv[c] = vdupq_n_f32(0.0f);
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
        for (int c = 0; c < C; c++)
            xv[c] = vld1q_f32(x + c * K + k);
        BF16_STEP(k / 2, 0, 1);
        BF16_STEP(k / 2 + 1, 2, 3);
    }
    for (; k < K; k += 2) {
        float32x4_t e0, e1, o0, o1;
        bf16_pair(wg + (size_t)(k / 2) * R, &e0, &e1, &o0, &o1);
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
    for (int c = 0; c < MAXC; c++) {
        a0[c] = a1[c] = vdupq_n_f32(0.0f);
        xa[c] = xb[c] = vdupq_n_f16(0.0f);
    }
    for (int64_t ch = 0; ch < nch; ch++) {
        const int64_t k0 = ch * 16;
        const float16_t *wk = wg + (size_t)k0 * R;
        for (int c = 0; c < MAXC; c++)
            h[c] = vdupq_n_f16(0.0f);
        if (k0 + 16 <= K) {
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
                for (int c = 0; c < C; c++)
                    h[c] = vfmaq_n_f16(h[c], w, xh[c * K16 + k]);
            }
        }
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
        for (int c = 0; c < C; c++) {
            xa[c] = vld1q_s8(a->xq + (m0 + c) * K + b * 32);
            xb[c] = vld1q_s8(a->xq + (m0 + c) * K + b * 32 + 16);
            DOT_INIT(c);
        }
        Q4_STEP(0, xa, 0);
        Q4_STEP(1, xa, 2);
        Q4_STEP(2, xb, 0);
        Q4_STEP(3, xb, 2);
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

/* Column tiling: 4 columns at a time (2 for the fallback integer kernels, whose
 * accumulators need twice the registers), then 2, 1. The tile functions take C as a
 * run-time value but are inlined per call site with a constant, so loops over c unroll. */
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
               [MQ_DTYPE_Q4_0] = mm_q4_0},
    .quantize_q8 = quantize_q8,
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
