/* core/dtype_kquants.c - dequantization of ggml's K-quants (Q2_K .. Q6_K), source-only.
 *
 * Bit-exact with ggml's dequantize_row_q{2,3,4,5,6}_K (ggml/src/ggml-quants.c, llama.cpp
 * 0c1e57098bba): every weight is computed with the same float operations in the same
 * order, the sub-block factor first and the code last: w = (d*sc)*q - (dmin*mn). The
 * products are exact in float in every type (an f16 has 11 significant bits; scales have
 * at most 7 and codes at most 5, so a product has at most 23 <= 24 bits), so the one
 * rounding is the final subtraction of the min (Q2_K, Q4_K, Q5_K); Q3_K and Q6_K values
 * are exact. That is why the grouping of the products and even a fused multiply-add would
 * not change a bit - but the shape "scaled code minus scaled min" must stay; computing
 * e.g. d*(sc*q - mn*dmin/d) would not be ggml's floats. (The Makefile builds with
 * -ffp-contract=off anyway.)
 *
 * The loops walk a super-block the way its bits are laid out (see the block structs in
 * core/dtype.h): 2- and 3-bit codes in two 128-element halves of four 32-element quarters,
 * 4- and 5-bit codes in four 64-element chunks of low then high nibbles.
 */
#include "core/dtype.h"
#include "core/dtype_internal.h"
#include "core/fp16.h"

void mq_q2_k_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q2_k *b = src;
    for (int64_t i = 0; i < n / MQ_QK_K; i++, b++) {
        const float d = mq_f16_to_f32(b->d);
        const float dmin = mq_f16_to_f32(b->dmin);
        float *y = dst + i * MQ_QK_K;
        int sub = 0; /* sub-block of 16 elements, 0..15 */
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = b->qs + 32 * half;
            for (int quarter = 0; quarter < 4; quarter++) {
                const int shift = 2 * quarter;
                /* two sub-blocks per quarter: bytes q[0..15], then q[16..31] */
                for (int part = 0; part < 2; part++, sub++) {
                    const float dl = d * (float)(b->scales[sub] & 15);
                    const float ml = dmin * (float)(b->scales[sub] >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((q[16 * part + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* The 16 scales of a Q3_K super-block, 6 bits each, unpacked from 12 bytes and unbiased
 * (-32..31): bytes 0..7 hold the low nibbles (scales 0..7 low, 8..15 high), bytes 8..11
 * the high 2 bits (byte 8 + i%4, bit pair i/4). */
static void q3_k_scales(const uint8_t packed[12], int scale[16])
{
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? packed[i] & 15 : packed[i - 8] >> 4;
        int hi = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        scale[i] = (lo | hi << 4) - 32;
    }
}

void mq_q3_k_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q3_k *b = src;
    for (int64_t i = 0; i < n / MQ_QK_K; i++, b++) {
        const float d = mq_f16_to_f32(b->d);
        int scale[16];
        q3_k_scales(b->scales, scale);
        float *y = dst + i * MQ_QK_K;
        int sub = 0;
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = b->qs + 32 * half;
            for (int quarter = 0; quarter < 4; quarter++) {
                const int shift = 2 * quarter;
                const uint8_t hbit = (uint8_t)(1u << (4 * half + quarter)); /* bit e/32 */
                for (int part = 0; part < 2; part++, sub++) {
                    const float dl = d * (float)scale[sub];
                    for (int l = 16 * part; l < 16 * part + 16; l++) {
                        int code = ((q[l] >> shift) & 3) - ((b->hmask[l] & hbit) ? 0 : 4);
                        *y++ = dl * (float)code;
                    }
                }
            }
        }
    }
}

/* Scale and min of sub-block j (0..7) of a Q4_K or Q5_K super-block: 6 bits each, the
 * first four in the low 6 bits of bytes 0..3 (scales) and 4..7 (mins), the last four
 * with their low 4 bits in bytes 8..11 (scale low nibble, min high nibble) and their high
 * 2 bits in the top bits of bytes 0..3 (scales) and 4..7 (mins). ggml: get_scale_min_k4. */
static void k4_scale_min(int j, const uint8_t packed[MQ_K_SCALE_BYTES], uint8_t *sc, uint8_t *mn)
{
    if (j < 4) {
        *sc = packed[j] & 63;
        *mn = packed[j + 4] & 63;
    } else {
        *sc = (uint8_t)((packed[j + 4] & 15) | (packed[j - 4] >> 6) << 4);
        *mn = (uint8_t)((packed[j + 4] >> 4) | (packed[j] >> 6) << 4);
    }
}

void mq_q4_k_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q4_k *b = src;
    for (int64_t i = 0; i < n / MQ_QK_K; i++, b++) {
        const float d = mq_f16_to_f32(b->d);
        const float dmin = mq_f16_to_f32(b->dmin);
        float *y = dst + i * MQ_QK_K;
        for (int chunk = 0; chunk < 4; chunk++) { /* 64 elements: sub-blocks 2c, 2c+1 */
            const uint8_t *q = b->qs + 32 * chunk;
            uint8_t sc, mn;
            k4_scale_min(2 * chunk, b->scales, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(2 * chunk + 1, b->scales, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)(q[l] & 15) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void mq_q5_k_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q5_k *b = src;
    for (int64_t i = 0; i < n / MQ_QK_K; i++, b++) {
        const float d = mq_f16_to_f32(b->d);
        const float dmin = mq_f16_to_f32(b->dmin);
        float *y = dst + i * MQ_QK_K;
        for (int chunk = 0; chunk < 4; chunk++) {
            const uint8_t *q = b->qs + 32 * chunk;
            const uint8_t h1 = (uint8_t)(1u << (2 * chunk)), h2 = (uint8_t)(2u << (2 * chunk));
            uint8_t sc, mn;
            k4_scale_min(2 * chunk, b->scales, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(2 * chunk + 1, b->scales, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((q[l] & 15) + ((b->qh[l] & h1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)((q[l] >> 4) + ((b->qh[l] & h2) ? 16 : 0)) - m2;
        }
    }
}

void mq_q6_k_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q6_k *b = src;
    for (int64_t i = 0; i < n / MQ_QK_K; i++, b++) {
        const float d = mq_f16_to_f32(b->d);
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = b->ql + 64 * half;
            const uint8_t *qh = b->qh + 32 * half;
            const int8_t *sc = b->scales + 8 * half;
            float *y = dst + i * MQ_QK_K + 128 * half;
            for (int l = 0; l < 32; l++) {
                const int s = l / 16; /* sub-block within the quarter */
                /* quarter k: nibble (k < 2 ? low : high) of ql[l + 32*(k&1)], qh bits 2k */
                const int q0 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q1 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q2 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q3 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                /* ggml: d * sc * q, i.e. (d*sc)*q in float (exact either way) */
                y[l + 0] = d * (float)sc[s + 0] * (float)q0;
                y[l + 32] = d * (float)sc[s + 2] * (float)q1;
                y[l + 64] = d * (float)sc[s + 4] * (float)q2;
                y[l + 96] = d * (float)sc[s + 6] * (float)q3;
            }
        }
    }
}
