/* core/dtype_quant.c - every quantizer, byte-identical with ggml's quantize_<type>
 * (ggml/src/ggml-quants.c of the pinned llama.cpp, 0c1e57098bba, as llama-quantize runs it
 * through ggml_quantize_chunk on x86-64).
 *
 * Without importance weights each type takes ggml's plain path (quantize_row_<type>_ref,
 * over all rows as one stream of blocks; IQ4_NL and IQ4_XS: their weighted search with
 * x^2 weights); with them (imp[n_per_row], one per column) its _impl search, a row at a
 * time. The code is mixq's, but every float operation is ggml's, with the same operands
 * in the same order: sums accumulate left to right, a*b*c is (a*b)*c, integer codes become
 * floats where ggml's implicit conversions put them. That is what makes the bytes equal;
 * "simplifying" an expression (hoisting 1/d, merging two loops' sums, a fused
 * multiply-add) changes them. The Makefile builds with -ffp-contract=off; ggml-base is
 * built without -march flags on x86-64, so it has no FMA contraction either.
 *
 * Three places where ggml's C is undefined or platform-specific, and what mixq does:
 *   - float to int8/uint8 casts ((int8_t)(x*id + 8.5f) in Q4_0, Q4_1, Q5_0; (uint8_t) in
 *     Q5_1; roundf() to int8 in Q8_0) get NaN or out-of-range values not only from
 *     non-finite weights but from finite ones too: a block of tiny values (largest
 *     magnitude below 2e-38 .. 4e-37, by type) has a scale below 2^-128 whose inverse is
 *     Inf. x86-64 converts those to INT32_MIN ("integer indefinite"), low byte 0, and
 *     keeps the low byte of in-range values beyond int8; trunc_low_byte() gives that
 *     byte without an undefined conversion, so mixq matches ggml on x86-64 (an aarch64
 *     build of ggml saturates instead and differs from both here).
 *   - GGML_FP32_TO_FP16 turns every NaN into 0x7E00 with the sign kept; mq_f32_to_f16
 *     keeps the payload, so f16_of() below adds ggml's NaN rule (all other inputs round
 *     identically; tests/interop/check-quant.sh's tier compared all 2^32).
 *   - ggml's quantize_row_q8_K_ref leaves the bsums of an all-zero block unwritten
 *     (whatever the buffer held); mixq writes 0, their true value.
 * ggml's nearest_int is bit arithmetic (add 1.5*2^23, read the mantissa): defined for
 * every input, ported as is, garbage and all for |v| >= 2^22.
 *
 * Shapes: legacy blocks are 32 values, K-quant and IQ4_XS super-blocks 256 (sub-blocks of
 * 16 or 32); imp has one weight per column of a row, so super-block i of a row uses
 * imp[256*i ..]. Tests: tests/unit/test_quant.c against tests/golden/quant-ref.gguf
 * (ggml's bytes for real, random and adversarial rows, with and without weights), and
 * tests/interop/check-quant.sh against live ggml on whole models.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/dtype_internal.h"
#include "core/fp16.h"
#include "core/status.h"

/* ggml's GROUP_MAX_EPS: a group whose largest magnitude is below it counts as all zero */
static const float GROUP_EPS = 1e-15f;

/* ---- ggml's scalar helpers ---- */

/* ggml's nearest_int: round half to even through the float's bits (exact for |v| < 2^22). */
static inline int round_nearest(float v)
{
    float biased = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &biased, sizeof(i));
    return (i & 0x007FFFFF) - 0x00400000;
}

/* The low byte of a float converted to int32 as x86-64 does it: truncation, and INT32_MIN
 * (low byte 0) for NaN and values outside int32 (floats that large are multiples of 256,
 * so a 64-bit conversion has the same low byte). What ggml's (int8_t)/(uint8_t) casts of
 * floats store on x86-64. */
static inline uint8_t trunc_low_byte(float v)
{
    if (v >= -2147483648.0f && v < 2147483648.0f)
        return (uint8_t)(uint32_t)(int32_t)v;
    return 0;
}

/* ggml's MIN(cap, (int8_t)b) for a byte b, as a byte: negative int8 values pass. */
static inline uint8_t min_i8_byte(uint8_t b, uint8_t cap)
{
    return b > cap && b < 128 ? cap : b;
}

/* The int8 whose two's complement byte is the low byte of v (C's conversion of an
 * out-of-range int to int8_t is implementation-defined; this one is not). */
static inline int8_t wrap_i8(int v)
{
    int b = v & 0xFF;
    return (int8_t)(b < 128 ? b : b - 256);
}

/* GGML_FP32_TO_FP16: mq_f32_to_f16 for every non-NaN float; NaN becomes 0x7E00, signed. */
static inline uint16_t f16_of(float f)
{
    uint32_t bits = mq_f32_bits(f);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((bits >> 16 & 0x8000u) | 0x7E00u);
    return mq_f32_to_f16(f);
}

/* ggml's best_index_int8(16, values, x): the code whose table value is nearest x (ties to
 * the upper one; NaN gives 15). values[16] ascending. */
static int nl_index(const int8_t *values, float x)
{
    if (x <= values[0])
        return 0;
    if (x >= values[15])
        return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (x < values[mid])
            hi = mid;
        else
            lo = mid;
    }
    return x - values[hi - 1] < values[hi] - x ? hi - 1 : hi;
}

/* ---- ggml's scale searches ---- */

/* ggml's make_qx_quants(n, nmax, x, L, 1, qw): a signed scale s for x[n] with codes
 * L[i] + -nmax in -nmax..nmax-1 (L[n] receives 0..2nmax-1), maximizing the weighted fit
 * over 19 trial inverse scales around -nmax/max. Weights qw[n], or x^2 when qw is NULL.
 * Returns the scale (0 for an all-zero group). */
static float fit_signed(int n, int nmax, const float *x, int8_t *L, const float *qw)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float w_all[32]; /* the weights once, not per trial: the same floats */
    MQ_ASSERT(n <= 32);
    for (int i = 0; i < n; i++)
        w_all[i] = qw ? qw[i] : x[i] * x[i];
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = round_nearest(iscale * x[i]);
        l = l < nmax - 1 ? l : nmax - 1;
        l = l > -nmax ? l : -nmax;
        L[i] = (int8_t)(l + nmax);
        float w = w_all[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = round_nearest(iscale * x[i]);
            l = l < nmax - 1 ? l : nmax - 1;
            l = l > -nmax ? l : -nmax;
            float w = w_all[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = round_nearest(iscale * x[i]);
                l = l < nmax - 1 ? l : nmax - 1;
                l = l > -nmax ? l : -nmax;
                L[i] = (int8_t)(nmax + l);
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* ggml's make_q3_quants(n, nmax, x, L, true): codes -nmax..nmax-1 (L[n] receives
 * 0..2nmax-1) from -nmax/max, then up to five rounds of moving single codes while the
 * x^2-weighted fit improves. Returns the least-squares scale. */
static float fit_q3(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = round_nearest(iscale * x[i]);
        l = l < nmax - 1 ? l : nmax - 1;
        l = l > -nmax ? l : -nmax;
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int new_l = round_nearest(x[i] * sl2 / slx);
                new_l = new_l < nmax - 1 ? new_l : nmax - 1;
                new_l = new_l > -nmax ? new_l : -nmax;
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* ggml's make_qkx2_quants and make_qkx3_quants with weights (they differ only in testing
 * max == min or max <= min, which agree: min <= max always holds here): a scale and a
 * min <= 0 for x[n] ~ scale*L + min with codes L[n] in 0..nmax, from nstep+1 trial
 * inverse scales (rmin + rdelta*is + nmax)/(max - min), each refitted by weighted least
 * squares, keeping the one with the smallest weighted error (|diff| with use_mad,
 * diff^2 without). Laux[n] is scratch. Returns the scale; *neg_min = -min. */
static float fit_affine(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                        float *neg_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                        bool use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = round_nearest(iscale * (x[i] - min));
        l = l < nmax ? l : nmax;
        L[i] = (uint8_t)(l > 0 ? l : 0);
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = round_nearest(iscale * (x[i] - min));
            l = l < nmax ? l : nmax;
            l = l > 0 ? l : 0;
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0))
            continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float cur_error = 0;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * (float)Laux[i] + this_min - x[i];
            diff = use_mad ? fabsf(diff) : diff * diff;
            cur_error += weights[i] * diff;
        }
        if (cur_error < best_error) {
            memcpy(L, Laux, (size_t)n);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

/* ggml's make_qp_quants: a scale for non-negative x[n] (sub-block scales or mins) with
 * codes L[n] in 0..nmax (bytes: ggml clamps only from above), from 9 trial inverse scales
 * by weighted squared error (weights qw[n]), then up to five rounds of moving single
 * codes. Returns the least-squares scale (0 for an all-zero group). */
static float fit_positive(int n, int nmax, const float *x, uint8_t *L, const float *qw)
{
    float max = 0;
    for (int i = 0; i < n; i++)
        max = max > x[i] ? max : x[i]; /* ggml's MAX(): a NaN x[i] is taken */
    if (max < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; i++)
        L[i] = (uint8_t)round_nearest(iscale * x[i]);
    float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; i++) {
        float diff = x[i] - scale * (float)L[i];
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0)
            continue;
        float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            int l = round_nearest(iscale_is * x[i]);
            l = l < nmax ? l : nmax;
            float diff = x[i] - scale_is * (float)l;
            mse += qw[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = round_nearest(iscale * x[i]);
        l = l < nmax ? l : nmax;
        L[i] = (uint8_t)l;
        float w = qw[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = qw[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = round_nearest(x[i] * sl2 / slx);
                new_l = new_l < nmax ? new_l : nmax;
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* The sum of squares of x[n], left to right (ggml's sigma2 numerators). */
static float sum_squares(const float *x, int64_t n)
{
    float s = 0;
    for (int64_t j = 0; j < n; j++)
        s += x[j] * x[j];
    return s;
}

/* ---- Q8_0 ---- */

static void q8_0_row_ref(const float *src, struct mq_block_q8_0 *b, int64_t n)
{
    for (int64_t i = 0; i < n / MQ_QK8_0; i++) {
        const float *x = src + i * MQ_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < MQ_QK8_0; j++) {
            float v = fabsf(x[j]);
            amax = amax > v ? amax : v; /* ggml's MAX(): a NaN input makes amax NaN */
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f16_of(d);
        for (int j = 0; j < MQ_QK8_0; j++)
            b[i].qs[j] = wrap_i8(trunc_low_byte(roundf(x[j] * id)));
    }
}

void mq_quantize_q8_0(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    (void)imp; /* ggml's quantize_q8_0 ignores importance weights too */
    q8_0_row_ref(src, dst, n_rows * n_per_row);
}

/* ---- Q4_0, Q5_0: symmetric, d = max/-8 (-16) without weights ---- */

static void q4_0_row_ref(const float *src, struct mq_block_q4_0 *b, int64_t n)
{
    for (int64_t i = 0; i < n / MQ_QK4_0; i++) {
        const float *x = src + i * MQ_QK4_0;
        float amax = 0.0f, max = 0.0f; /* max keeps the sign of the largest magnitude */
        for (int j = 0; j < MQ_QK4_0; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f16_of(d);
        for (int j = 0; j < MQ_QK4_0 / 2; j++) {
            uint8_t q0 = min_i8_byte(trunc_low_byte(x[j] * id + 8.5f), 15);
            uint8_t q1 = min_i8_byte(trunc_low_byte(x[j + MQ_QK4_0 / 2] * id + 8.5f), 15);
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* ggml's quantize_row_q4_0_impl: one row x[n] with weights imp[n] * sqrt(sigma2 + x^2). */
static void q4_0_row_imp(const float *x, struct mq_block_q4_0 *b, int64_t n, const float *imp, float sigma2)
{
    for (int64_t ib = 0; ib < n / MQ_QK4_0; ib++) {
        const float *xb = x + MQ_QK4_0 * ib, *qw = imp + MQ_QK4_0 * ib;
        float weight[MQ_QK4_0];
        int8_t L[MQ_QK4_0];
        for (int j = 0; j < MQ_QK4_0; j++)
            weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        b[ib].d = f16_of(fit_signed(MQ_QK4_0, 8, xb, L, weight));
        for (int j = 0; j < 16; j++)
            b[ib].qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
    }
}

void mq_quantize_q4_0(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    if (!imp) {
        q4_0_row_ref(src, dst, n_rows * n_per_row);
        return;
    }
    struct mq_block_q4_0 *b = dst;
    for (int64_t r = 0; r < n_rows; r++)
        q4_0_row_imp(src + r * n_per_row, b + r * (n_per_row / MQ_QK4_0), n_per_row, imp,
                   sum_squares(src + r * n_per_row, n_per_row) / (float)n_per_row);
}

/* Stores 32 five-bit codes: low nibbles of j and j+16 in qs[j], bit 4 of code e at bit e
 * of the little-endian qh. */
static void q5_pack(const uint8_t code[32], uint8_t qs[16], uint8_t qh_bytes[4])
{
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((code[j] & 0x0F) | (code[j + 16] & 0x0F) << 4);
        qh |= ((code[j] & 0x10u) >> 4) << j;
        qh |= ((code[j + 16] & 0x10u) >> 4) << (j + 16);
    }
    for (int k = 0; k < 4; k++)
        qh_bytes[k] = (uint8_t)(qh >> (8 * k));
}

static void q5_0_row_ref(const float *src, struct mq_block_q5_0 *b, int64_t n)
{
    for (int64_t i = 0; i < n / MQ_QK5_0; i++) {
        const float *x = src + i * MQ_QK5_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < MQ_QK5_0; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        float d = max / -16.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f16_of(d);
        uint8_t code[MQ_QK5_0];
        for (int j = 0; j < MQ_QK5_0; j++)
            code[j] = min_i8_byte(trunc_low_byte(x[j] * id + 16.5f), 31);
        q5_pack(code, b[i].qs, b[i].qh);
    }
}

static void q5_0_row_imp(const float *x, struct mq_block_q5_0 *b, int64_t n, const float *imp, float sigma2)
{
    for (int64_t ib = 0; ib < n / MQ_QK5_0; ib++) {
        const float *xb = x + MQ_QK5_0 * ib, *qw = imp + MQ_QK5_0 * ib;
        float weight[MQ_QK5_0];
        int8_t L[MQ_QK5_0];
        uint8_t code[MQ_QK5_0];
        for (int j = 0; j < MQ_QK5_0; j++)
            weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        b[ib].d = f16_of(fit_signed(MQ_QK5_0, 16, xb, L, weight));
        for (int j = 0; j < MQ_QK5_0; j++)
            code[j] = (uint8_t)L[j];
        q5_pack(code, b[ib].qs, b[ib].qh);
    }
}

void mq_quantize_q5_0(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    if (!imp) {
        q5_0_row_ref(src, dst, n_rows * n_per_row);
        return;
    }
    struct mq_block_q5_0 *b = dst;
    for (int64_t r = 0; r < n_rows; r++)
        q5_0_row_imp(src + r * n_per_row, b + r * (n_per_row / MQ_QK5_0), n_per_row, imp,
                   sum_squares(src + r * n_per_row, n_per_row) / (float)n_per_row);
}

/* ---- Q4_1, Q5_1: d and offset m, d = (max - min)/15 (31) without weights ---- */

/* The block's minimum and maximum from FLT_MAX / -FLT_MAX, as ggml starts them. */
static void block_min_max(const float *x, int n, float *min_out, float *max_out)
{
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    *min_out = min;
    *max_out = max;
}

static void q4_1_row_ref(const float *src, struct mq_block_q4_1 *b, int64_t n)
{
    for (int64_t i = 0; i < n / MQ_QK4_1; i++) {
        const float *x = src + i * MQ_QK4_1;
        float min, max;
        block_min_max(x, MQ_QK4_1, &min, &max);
        float d = (max - min) / 15.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f16_of(d);
        b[i].m = f16_of(min);
        for (int j = 0; j < MQ_QK4_1 / 2; j++) {
            uint8_t q0 = min_i8_byte(trunc_low_byte((x[j] - min) * id + 0.5f), 15);
            uint8_t q1 = min_i8_byte(trunc_low_byte((x[j + MQ_QK4_1 / 2] - min) * id + 0.5f), 15);
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

static void q4_1_row_imp(const float *x, struct mq_block_q4_1 *b, int64_t n, const float *imp, float sigma2)
{
    for (int64_t ib = 0; ib < n / MQ_QK4_1; ib++) {
        const float *xb = x + MQ_QK4_1 * ib, *qw = imp + MQ_QK4_1 * ib;
        float weight[MQ_QK4_1], neg_min;
        uint8_t L[MQ_QK4_1], Laux[MQ_QK4_1];
        for (int j = 0; j < MQ_QK4_1; j++)
            weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        float d = fit_affine(MQ_QK4_1, 15, xb, weight, L, &neg_min, Laux, -0.9f, 0.05f, 36, false);
        b[ib].d = f16_of(d);
        b[ib].m = f16_of(-neg_min);
        for (int j = 0; j < 16; j++)
            b[ib].qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
    }
}

void mq_quantize_q4_1(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    if (!imp) {
        q4_1_row_ref(src, dst, n_rows * n_per_row);
        return;
    }
    struct mq_block_q4_1 *b = dst;
    for (int64_t r = 0; r < n_rows; r++)
        q4_1_row_imp(src + r * n_per_row, b + r * (n_per_row / MQ_QK4_1), n_per_row, imp,
                   sum_squares(src + r * n_per_row, n_per_row) / (float)n_per_row);
}

static void q5_1_row_ref(const float *src, struct mq_block_q5_1 *b, int64_t n)
{
    for (int64_t i = 0; i < n / MQ_QK5_1; i++) {
        const float *x = src + i * MQ_QK5_1;
        float min, max;
        block_min_max(x, MQ_QK5_1, &min, &max);
        float d = (max - min) / 31.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f16_of(d);
        b[i].m = f16_of(min);
        uint8_t code[MQ_QK5_1];
        for (int j = 0; j < MQ_QK5_1; j++)
            code[j] = trunc_low_byte((x[j] - min) * id + 0.5f); /* ggml: no clamp to 31 */
        q5_pack(code, b[i].qs, b[i].qh);
    }
}

static void q5_1_row_imp(const float *x, struct mq_block_q5_1 *b, int64_t n, const float *imp, float sigma2)
{
    for (int64_t ib = 0; ib < n / MQ_QK5_1; ib++) {
        const float *xb = x + MQ_QK5_1 * ib, *qw = imp + MQ_QK5_1 * ib;
        float weight[MQ_QK5_1], neg_min;
        uint8_t L[MQ_QK5_1], Laux[MQ_QK5_1];
        for (int j = 0; j < MQ_QK5_1; j++)
            weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        float d = fit_affine(MQ_QK5_1, 31, xb, weight, L, &neg_min, Laux, -0.9f, 0.05f, 36, false);
        b[ib].d = f16_of(d);
        b[ib].m = f16_of(-neg_min);
        q5_pack(L, b[ib].qs, b[ib].qh);
    }
}

void mq_quantize_q5_1(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    if (!imp) {
        q5_1_row_ref(src, dst, n_rows * n_per_row);
        return;
    }
    struct mq_block_q5_1 *b = dst;
    for (int64_t r = 0; r < n_rows; r++)
        q5_1_row_imp(src + r * n_per_row, b + r * (n_per_row / MQ_QK5_1), n_per_row, imp,
                   sum_squares(src + r * n_per_row, n_per_row) / (float)n_per_row);
}

/* ---- K-quants ---- */

/* Q2_K/Q3_K's 2-bit interleave: code e of the super-block (L[256], 0..3) at bits
 * 2*((e%128)/32) of qs[32*(e/128) + e%32]. */
static void k_pack_2bit(const uint8_t *L, uint8_t qs[MQ_QK_K / 4])
{
    for (int j = 0; j < MQ_QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] =
                (uint8_t)(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6);
}

/* Requantizes sub-blocks of 16 to 0..3 against the stored f16 scales: d*sc and dmin*mn
 * (sub-blocks whose scale is 0 keep their codes), as both Q2_K paths end. */
static void q2_k_requantize(const float *x, const struct mq_block_q2_k *b, float dm, float mm,
                            uint8_t L[MQ_QK_K])
{
    for (int j = 0; j < MQ_QK_K / 16; j++) {
        const float d = dm * (float)(b->scales[j] & 0xF);
        if (d == 0.0f)
            continue;
        const float m = mm * (float)(b->scales[j] >> 4);
        for (int ii = 0; ii < 16; ii++) {
            int l = round_nearest((x[16 * j + ii] + m) / d);
            l = l < 3 ? l : 3;
            L[16 * j + ii] = (uint8_t)(l > 0 ? l : 0);
        }
    }
}

/* ggml's quantize_row_q2_K_ref: affine fits of 16 with |x| weights (mean absolute error),
 * 4-bit scales and mins relative to the largest. */
static void q2_k_row_ref(const float *x, struct mq_block_q2_k *b, int64_t n)
{
    const float q4scale = 15.0f;
    for (int64_t i = 0; i < n / MQ_QK_K; i++, b++, x += MQ_QK_K) {
        uint8_t L[MQ_QK_K], Laux[16];
        float weights[16], mins[MQ_QK_K / 16], scales[MQ_QK_K / 16];
        float max_scale = 0, max_min = 0; /* scales are positive: the min is deducted */
        for (int j = 0; j < MQ_QK_K / 16; j++) {
            for (int l = 0; l < 16; l++)
                weights[l] = fabsf(x[16 * j + l]);
            scales[j] = fit_affine(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                   0.1f, 15, true);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < MQ_QK_K / 16; j++)
                b->scales[j] = (uint8_t)round_nearest(iscale * scales[j]);
            b->d = f16_of(max_scale / q4scale);
        } else {
            memset(b->scales, 0, sizeof(b->scales));
            b->d = f16_of(0.0f);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < MQ_QK_K / 16; j++)
                b->scales[j] |= (uint8_t)((unsigned)round_nearest(iscale * mins[j]) << 4);
            b->dmin = f16_of(max_min / q4scale);
        } else {
            b->dmin = f16_of(0.0f);
        }
        q2_k_requantize(x, b, mq_f16_to_f32(b->d), mq_f16_to_f32(b->dmin), L);
        k_pack_2bit(L, b->qs);
    }
}

/* ggml's quantize_row_q2_K_impl: one row; weights imp * sqrt(sigma2 + x^2), 37-step
 * affine fits, scales and mins by make_qp_quants. */
static void q2_k_row_imp(const float *x, struct mq_block_q2_k *b, int64_t n, const float *imp)
{
    for (int64_t i = 0; i < n / MQ_QK_K; i++, b++, x += MQ_QK_K) {
        uint8_t L[MQ_QK_K], Laux[16], Ls[MQ_QK_K / 16], Lm[MQ_QK_K / 16];
        float mins[MQ_QK_K / 16], scales[MQ_QK_K / 16], sw[MQ_QK_K / 16], weight[16];
        float sigma2 = sum_squares(x, MQ_QK_K) / (float)MQ_QK_K;
        for (int j = 0; j < MQ_QK_K / 16; j++) {
            const float *qw = imp + MQ_QK_K * i + 16 * j;
            for (int l = 0; l < 16; l++)
                weight[l] = qw[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            sw[j] = 0;
            for (int l = 0; l < 16; l++)
                sw[j] += weight[l];
            scales[j] = fit_affine(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f,
                                   0.05f, 36, false);
        }
        float dm = fit_positive(MQ_QK_K / 16, 15, scales, Ls, sw);
        float mm = fit_positive(MQ_QK_K / 16, 15, mins, Lm, sw);
        b->d = f16_of(dm);
        b->dmin = f16_of(mm);
        for (int j = 0; j < MQ_QK_K / 16; j++)
            b->scales[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
        q2_k_requantize(x, b, mq_f16_to_f32(b->d), mq_f16_to_f32(b->dmin), L);
        k_pack_2bit(L, b->qs);
    }
}

void mq_quantize_q2_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    if (!imp) {
        q2_k_row_ref(src, dst, n_rows * n_per_row);
        return;
    }
    struct mq_block_q2_k *b = dst;
    for (int64_t r = 0; r < n_rows; r++)
        q2_k_row_imp(src + r * n_per_row, b + r * (n_per_row / MQ_QK_K), n_per_row, imp);
}

/* Q3_K's 16 six-bit scales, stored biased (0..63): low nibbles in bytes 0..7 (scales 8..15
 * in the high nibbles), high 2 bits in byte 8 + j%4 at bit pair j/4. */
static void q3_k_store_scale(uint8_t scales[12], int j, int biased)
{
    if (j < 8)
        scales[j] = (uint8_t)(biased & 0xF);
    else
        scales[j - 8] |= (uint8_t)((biased & 0xF) << 4);
    scales[j % 4 + 8] |= (uint8_t)((unsigned)(biased >> 4) << (2 * (j / 4)));
}

/* The codes against the stored scales (sub-blocks whose d*sc is 0 keep theirs), then the
 * high bits into hmask and the low 2 bits interleaved: how both Q3_K paths end. */
static void q3_k_finish(const float *x, struct mq_block_q3_k *b, int8_t L[MQ_QK_K])
{
    for (int j = 0; j < MQ_QK_K / 16; j++) {
        int sc = j < 8 ? b->scales[j] & 0xF : b->scales[j - 8] >> 4;
        sc = (sc | ((b->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
        float d = mq_f16_to_f32(b->d) * (float)sc;
        if (d == 0.0f)
            continue;
        for (int ii = 0; ii < 16; ii++) {
            int l = round_nearest(x[16 * j + ii] / d);
            l = l < 3 ? l : 3;
            l = l > -4 ? l : -4;
            L[16 * j + ii] = (int8_t)(l + 4);
        }
    }
    memset(b->hmask, 0, sizeof(b->hmask));
    uint8_t low[MQ_QK_K];
    for (int j = 0; j < MQ_QK_K; j++) {
        /* high bit of element j: bit j/32 of hmask[j%32] */
        if (L[j] > 3)
            b->hmask[j % 32] |= (uint8_t)(1u << (j / 32));
        low[j] = (uint8_t)(L[j] > 3 ? L[j] - 4 : L[j]);
    }
    k_pack_2bit(low, b->qs);
}

/* ggml's quantize_row_q3_K_ref: make_q3_quants per 16, 6-bit scales relative to the one
 * of largest magnitude (signed). */
static void q3_k_row_ref(const float *x, struct mq_block_q3_k *b, int64_t n)
{
    for (int64_t i = 0; i < n / MQ_QK_K; i++, b++, x += MQ_QK_K) {
        int8_t L[MQ_QK_K];
        float scales[MQ_QK_K / 16];
        float max_scale = 0, amax = 0;
        for (int j = 0; j < MQ_QK_K / 16; j++) {
            scales[j] = fit_q3(16, 4, x + 16 * j, L + 16 * j);
            float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        memset(b->scales, 0, sizeof(b->scales));
        if (max_scale != 0.0f) {
            float iscale = -32.0f / max_scale;
            for (int j = 0; j < MQ_QK_K / 16; j++) {
                int l = wrap_i8(round_nearest(iscale * scales[j])); /* ggml: int8_t l */
                l = l < 31 ? l : 31;
                l = l > -32 ? l : -32;
                q3_k_store_scale(b->scales, j, l + 32);
            }
            b->d = f16_of(1 / iscale);
        } else {
            b->d = f16_of(0.0f);
        }
        q3_k_finish(x, b, L);
    }
}

/* ggml's quantize_row_q3_K_impl: one row; weighted make_qx_quants per 16, the 16 scales
 * fitted by make_qx_quants too (weights: each sub-block's summed weight). */
static void q3_k_row_imp(const float *x, struct mq_block_q3_k *b, int64_t n, const float *imp)
{
    for (int64_t i = 0; i < n / MQ_QK_K; i++, b++, x += MQ_QK_K) {
        int8_t L[MQ_QK_K], Ls[MQ_QK_K / 16];
        float scales[MQ_QK_K / 16], weight[16], sw[MQ_QK_K / 16];
        float sigma2 = 2 * sum_squares(x, MQ_QK_K) / (float)MQ_QK_K;
        for (int j = 0; j < MQ_QK_K / 16; j++) {
            const float *qw = imp + MQ_QK_K * i + 16 * j;
            for (int l = 0; l < 16; l++)
                weight[l] = qw[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            float sumw = 0;
            for (int l = 0; l < 16; l++)
                sumw += weight[l];
            sw[j] = sumw;
            scales[j] = fit_signed(16, 4, x + 16 * j, L + 16 * j, weight);
        }
        memset(b->scales, 0, sizeof(b->scales));
        float d_block = fit_signed(MQ_QK_K / 16, 32, scales, Ls, sw);
        for (int j = 0; j < MQ_QK_K / 16; j++)
            q3_k_store_scale(b->scales, j, Ls[j]);
        b->d = f16_of(d_block);
        q3_k_finish(x, b, L);
    }
}

void mq_quantize_q3_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    if (!imp) {
        q3_k_row_ref(src, dst, n_rows * n_per_row);
        return;
    }
    struct mq_block_q3_k *b = dst;
    for (int64_t r = 0; r < n_rows; r++)
        q3_k_row_imp(src + r * n_per_row, b + r * (n_per_row / MQ_QK_K), n_per_row, imp);
}

/* Q4_K/Q5_K's eight 6-bit scales and mins into 12 bytes (core/dtype.h), and back
 * (ggml's get_scale_min_k4). */
static void k4_store_scale_min(uint8_t q[MQ_K_SCALE_BYTES], int j, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = (uint8_t)((ls & 0xF) | (lm & 0xF) << 4);
        q[j - 4] |= (uint8_t)((ls >> 4) << 6);
        q[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

static void k4_scale_min(int j, const uint8_t q[MQ_K_SCALE_BYTES], uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | (q[j - 4] >> 6) << 4);
        *m = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
    }
}

/* Codes 0..nmax of the 8 sub-blocks of 32 against the stored d*sc and dmin*m (sub-blocks
 * whose d*sc is 0 keep theirs), as every Q4_K/Q5_K path ends. */
static void k4_requantize(const float *x, uint16_t d16, uint16_t dmin16,
                          const uint8_t scales[MQ_K_SCALE_BYTES], int nmax, uint8_t L[MQ_QK_K])
{
    for (int j = 0; j < MQ_QK_K / 32; j++) {
        uint8_t sc, m;
        k4_scale_min(j, scales, &sc, &m);
        const float d = mq_f16_to_f32(d16) * (float)sc;
        if (d == 0.0f)
            continue;
        const float dm = mq_f16_to_f32(dmin16) * (float)m;
        for (int ii = 0; ii < 32; ii++) {
            int l = round_nearest((x[32 * j + ii] + dm) / d);
            l = l < nmax ? l : nmax;
            L[32 * j + ii] = (uint8_t)(l > 0 ? l : 0);
        }
    }
}

/* The plain Q4_K/Q5_K fit of one super-block: per 32, weights av_x + |x| (av_x the RMS of
 * the sub-block) and make_qkx2_quants; scales and mins in 6 bits relative to the largest.
 * Fills b's d, dmin, scales (given as pointers: the two blocks differ) and L[256]. */
static void k4_fit_ref(const float *x, int nmax, float rmin, int nstep, uint16_t *d16,
                       uint16_t *dmin16, uint8_t scales_out[MQ_K_SCALE_BYTES], uint8_t L[MQ_QK_K])
{
    uint8_t Laux[32];
    float weights[32], mins[MQ_QK_K / 32], scales[MQ_QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < MQ_QK_K / 32; j++) {
        float sum_x2 = sum_squares(x + 32 * j, 32);
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = fit_affine(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                               0.1f, nstep, false);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    for (int j = 0; j < MQ_QK_K / 32; j++) {
        uint8_t ls = (uint8_t)round_nearest(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)round_nearest(inv_min * mins[j]);
        k4_store_scale_min(scales_out, j, ls < 63 ? ls : 63, lm < 63 ? lm : 63);
    }
    *d16 = f16_of(max_scale / 63.0f);
    *dmin16 = f16_of(max_min / 63.0f);
    k4_requantize(x, *d16, *dmin16, scales_out, nmax, L);
}

/* The weighted Q4_K/Q5_K fit (ggml's quantize_row_q4_K_impl / q5_K_impl): weights
 * imp * sqrt(sigma2 + x^2), make_qkx3_quants per 32, scales and mins by make_qp_quants.
 * cap_63: Q5_K clamps the 6-bit codes to 63 (Q4_K stores them as they come). */
static void k4_fit_imp(const float *x, const float *qw_sb, int nmax, bool cap_63, uint16_t *d16,
                       uint16_t *dmin16, uint8_t scales_out[MQ_K_SCALE_BYTES], uint8_t L[MQ_QK_K])
{
    uint8_t Laux[32], Ls[MQ_QK_K / 32], Lm[MQ_QK_K / 32];
    float weights[32], sw[MQ_QK_K / 32], mins[MQ_QK_K / 32], scales[MQ_QK_K / 32];
    float sigma2 = 2 * sum_squares(x, MQ_QK_K) / (float)MQ_QK_K;
    for (int j = 0; j < MQ_QK_K / 32; j++) {
        const float *qw = qw_sb + 32 * j;
        for (int l = 0; l < 32; l++)
            weights[l] = qw[l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 32; l++)
            sumw += weights[l];
        sw[j] = sumw;
        scales[j] = fit_affine(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f,
                               0.05f, 36, false);
    }
    float d_block = fit_positive(MQ_QK_K / 32, 63, scales, Ls, sw);
    float m_block = fit_positive(MQ_QK_K / 32, 63, mins, Lm, sw);
    for (int j = 0; j < MQ_QK_K / 32; j++) {
        uint8_t ls = Ls[j], lm = Lm[j];
        if (cap_63) {
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
        }
        k4_store_scale_min(scales_out, j, ls, lm);
    }
    *d16 = f16_of(d_block);
    *dmin16 = f16_of(m_block);
    k4_requantize(x, *d16, *dmin16, scales_out, nmax, L);
}

/* Q4_K's nibbles: chunk c = e/64 has its first 32 codes low in qs[32c..], the next high. */
static void q4_k_pack(const uint8_t L[MQ_QK_K], uint8_t qs[MQ_QK_K / 2])
{
    for (int j = 0; j < MQ_QK_K; j += 64, qs += 32)
        for (int l = 0; l < 32; l++)
            qs[l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
}

void mq_quantize_q4_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    struct mq_block_q4_k *b = dst;
    uint8_t L[MQ_QK_K];
    for (int64_t i = 0; i < n_rows * (n_per_row / MQ_QK_K); i++, b++) {
        const float *x = src + i * MQ_QK_K;
        if (imp) {
            const float *qw = imp + (i % (n_per_row / MQ_QK_K)) * MQ_QK_K;
            k4_fit_imp(x, qw, 15, false, &b->d, &b->dmin, b->scales, L);
        } else {
            memset(b->scales, 0, sizeof(b->scales));
            k4_fit_ref(x, 15, -1.0f, 20, &b->d, &b->dmin, b->scales, L);
        }
        q4_k_pack(L, b->qs);
    }
}

/* Q5_K: Q4_K's nibbles plus bit 4 of code e at bit e/32 of qh[e%32]. */
static void q5_k_pack(const uint8_t L[MQ_QK_K], uint8_t qh[MQ_QK_K / 8], uint8_t qs[MQ_QK_K / 2])
{
    memset(qh, 0, MQ_QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < MQ_QK_K; n += 64, qs += 32) {
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            qs[j] = (uint8_t)(l1 | l2 << 4);
        }
        m1 = (uint8_t)(m1 << 2);
        m2 = (uint8_t)(m2 << 2);
    }
}

void mq_quantize_q5_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    struct mq_block_q5_k *b = dst;
    uint8_t L[MQ_QK_K];
    for (int64_t i = 0; i < n_rows * (n_per_row / MQ_QK_K); i++, b++) {
        const float *x = src + i * MQ_QK_K;
        if (imp) {
            const float *qw = imp + (i % (n_per_row / MQ_QK_K)) * MQ_QK_K;
            k4_fit_imp(x, qw, 31, true, &b->d, &b->dmin, b->scales, L);
        } else {
            memset(b->scales, 0, sizeof(b->scales));
            k4_fit_ref(x, 31, -0.5f, 15, &b->d, &b->dmin, b->scales, L);
        }
        q5_k_pack(L, b->qh, b->qs);
    }
}

/* Q6_K: make_qx_quants per 16 (x^2 weights, or the importance weights themselves, not
 * sigma2-scaled: ggml's choice), int8 scales relative to the one of largest magnitude. */
static void q6_k_superblock(const float *x, const float *qw, struct mq_block_q6_k *b)
{
    int8_t L[MQ_QK_K];
    float scales[MQ_QK_K / 16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < MQ_QK_K / 16; ib++) {
        float scale = fit_signed(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : NULL);
        scales[ib] = scale;
        float abs_scale = fabsf(scale);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if (max_abs_scale < GROUP_EPS) {
        memset(b, 0, sizeof(*b));
        b->d = f16_of(0.0f);
        return;
    }
    float iscale = -128.0f / max_scale;
    b->d = f16_of(1 / iscale);
    for (int ib = 0; ib < MQ_QK_K / 16; ib++) {
        int l = round_nearest(iscale * scales[ib]);
        b->scales[ib] = wrap_i8(l < 127 ? l : 127);
    }
    for (int j = 0; j < MQ_QK_K / 16; j++) {
        float d = mq_f16_to_f32(b->d) * (float)b->scales[j];
        if (d == 0.0f)
            continue;
        for (int ii = 0; ii < 16; ii++) {
            int l = round_nearest(x[16 * j + ii] / d);
            l = l < 31 ? l : 31;
            l = l > -32 ? l : -32;
            L[16 * j + ii] = (int8_t)(l + 32);
        }
    }
    uint8_t *ql = b->ql, *qh = b->qh;
    for (int j = 0; j < MQ_QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
            const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l] = (uint8_t)(q1 | q3 << 4);
            ql[l + 32] = (uint8_t)(q2 | q4 << 4);
            qh[l] = (uint8_t)((L[j + l] >> 4) | (L[j + l + 32] >> 4) << 2 |
                              (L[j + l + 64] >> 4) << 4 | (L[j + l + 96] >> 4) << 6);
        }
    }
}

void mq_quantize_q6_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    struct mq_block_q6_k *b = dst;
    for (int64_t i = 0; i < n_rows * (n_per_row / MQ_QK_K); i++) {
        const float *qw = imp ? imp + (i % (n_per_row / MQ_QK_K)) * MQ_QK_K : NULL;
        q6_k_superblock(src + i * MQ_QK_K, qw, b + i);
    }
}

/* ---- IQ4_NL, IQ4_XS: codes index mq_iq4nl_values ---- */

enum { IQ4_NTRY = 7 }; /* the search width ggml's quantize_iq4_nl/_xs pass */

/* ggml's quantize_row_iq4_nl_impl(sb, 32, ..., ntry 7): one super-block x[sb] (32: one
 * IQ4_NL block; 256: an IQ4_XS block of 8 sub-blocks of 32). Weights qw[sb] * sqrt(sigma2
 * + x^2), or x^2 without qw. Per 32: a scale from 15 trials around max/values[0] by
 * weighted least squares; with sub-blocks, their scales in 6 bits of d = -max_scale/32
 * (scales_h, scales_l) and the codes redone against them; q4[sb/2] the nibbles. */
static void iq4_superblock(int sb, const float *x, const float *qw, uint16_t *dh, uint8_t *q4,
                           uint16_t *scales_h, uint8_t *scales_l)
{
    const int8_t *values = mq_iq4nl_values;
    uint8_t L[MQ_QK_K];
    float weight[32], scales[MQ_QK_K / 32];
    float sigma2 = sum_squares(x, sb);
    sigma2 *= 2.0f / (float)sb;
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < sb / 32; ib++) {
        const float *xb = x + 32 * ib;
        uint8_t *Lb = L + 32 * ib;
        for (int j = 0; j < 32; j++)
            weight[j] = qw ? qw[32 * ib + j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < GROUP_EPS) {
            scales[ib] = 0;
            continue;
        }
        float d = -max / (float)values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            int l = nl_index(values, id * xb[j]);
            Lb[j] = (uint8_t)l;
            float q = values[l];
            float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
        float best = d * sumqx;
        for (int itry = -IQ4_NTRY; itry <= IQ4_NTRY; itry++) {
            id = (float)(itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                float q = values[nl_index(values, id * xb[j])];
                float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        float abs_d = fabsf(d);
        if (abs_d > amax_scale) {
            amax_scale = abs_d;
            max_scale = d;
        }
    }
    if (sb > 32) {
        *scales_h = 0;
        float d = -max_scale / 32;
        *dh = f16_of(d);
        float id = d != 0.0f ? 1 / d : 0.0f;
        for (int ib = 0; ib < sb / 32; ib++) {
            int l = round_nearest(id * scales[ib]);
            l = l < 31 ? l : 31;
            l = l > -32 ? l : -32;
            float dl = d * (float)l;
            float idl = dl != 0.0f ? 1 / dl : 0.0f;
            for (int j = 0; j < 32; j++)
                L[32 * ib + j] = (uint8_t)nl_index(values, idl * x[32 * ib + j]);
            l += 32;
            uint8_t l_l = (uint8_t)(l & 0xF), l_h = (uint8_t)(l >> 4);
            if (ib % 2 == 0)
                scales_l[ib / 2] = l_l;
            else
                scales_l[ib / 2] |= (uint8_t)(l_l << 4);
            *scales_h |= (uint16_t)(l_h << 2 * (ib % 8));
        }
    } else {
        *dh = f16_of(scales[0]);
        float id = scales[0] != 0.0f ? 1 / scales[0] : 0;
        for (int j = 0; j < sb; j++)
            L[j] = (uint8_t)nl_index(values, id * x[j]);
    }
    for (int i = 0; i < sb / 32; i++)
        for (int j = 0; j < 16; j++)
            q4[16 * i + j] = (uint8_t)(L[32 * i + j] | L[32 * i + 16 + j] << 4);
}

void mq_quantize_iq4_nl(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                        const float *imp)
{
    struct mq_block_iq4_nl *b = dst;
    int64_t nb = n_per_row / MQ_QK4_NL;
    for (int64_t i = 0; i < n_rows * nb; i++) {
        const float *qw = imp ? imp + (i % nb) * MQ_QK4_NL : NULL;
        iq4_superblock(MQ_QK4_NL, src + i * MQ_QK4_NL, qw, &b[i].d, b[i].qs, NULL, NULL);
    }
}

void mq_quantize_iq4_xs(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                        const float *imp)
{
    struct mq_block_iq4_xs *b = dst;
    int64_t nb = n_per_row / MQ_QK_K;
    for (int64_t i = 0; i < n_rows * nb; i++) {
        const float *qw = imp ? imp + (i % nb) * MQ_QK_K : NULL;
        iq4_superblock(MQ_QK_K, src + i * MQ_QK_K, qw, &b[i].d, b[i].qs, &b[i].scales_h,
                       b[i].scales_l);
    }
}

/* ---- Q8_K: activations ---- */

/* ggml's quantize_row_q8_K_ref: d = max/-127 (a float) for the element of largest
 * magnitude, codes by nearest_int, bsums the sums of 16. */
void mq_quantize_q8_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                      const float *imp)
{
    (void)imp;
    struct mq_block_q8_k *b = dst;
    for (int64_t i = 0; i < n_rows * n_per_row / MQ_QK_K; i++) {
        const float *x = src + i * MQ_QK_K;
        float max = 0, amax = 0;
        for (int j = 0; j < MQ_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&b[i], 0, sizeof(b[i])); /* ggml leaves bsums as they were */
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < MQ_QK_K; j++) {
            int v = round_nearest(iscale * x[j]);
            b[i].qs[j] = wrap_i8(v < 127 ? v : 127);
        }
        for (int j = 0; j < MQ_QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++)
                sum += b[i].qs[16 * j + ii];
            b[i].bsums[j] = (int16_t)sum;
        }
        b[i].d = 1 / iscale;
    }
}


void mq_quantize_segment(enum mq_dtype fmt, const float *row, int64_t n_row, int64_t s0, int64_t n,
                         const float *imp, void *dst)
{
    if (imp) {
        /* ggml's 32-block importance quantizers weigh by the whole row's mean square */
        const float sigma2 = fmt == MQ_DTYPE_Q4_0 || fmt == MQ_DTYPE_Q5_0 || fmt == MQ_DTYPE_Q4_1 ||
                                     fmt == MQ_DTYPE_Q5_1
                                 ? sum_squares(row, n_row) / (float)n_row
                                 : 0;
        switch (fmt) {
        case MQ_DTYPE_Q4_0: q4_0_row_imp(row + s0, dst, n, imp + s0, sigma2); return;
        case MQ_DTYPE_Q5_0: q5_0_row_imp(row + s0, dst, n, imp + s0, sigma2); return;
        case MQ_DTYPE_Q4_1: q4_1_row_imp(row + s0, dst, n, imp + s0, sigma2); return;
        case MQ_DTYPE_Q5_1: q5_1_row_imp(row + s0, dst, n, imp + s0, sigma2); return;
        default: break;
        }
    }
    mq_dtype_get(fmt)->quantize(row + s0, dst, 1, n, imp ? imp + s0 : NULL);
}
