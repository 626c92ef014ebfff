/* backends/cpu/kern_scalar.c - the portable path: plain C on ggml's layout (R = 1).
 * F32 accumulation in 8 independent partial sums (which compilers vectorize), int32
 * block sums for the integer formats, in the structure of ggml's generic vec_dot: integer
 * sums per (sub-)block, their scale products in float. The fallback on any CPU, and what
 * MIXQ_CPU_ISA=scalar forces for comparisons. */
#include <math.h>
#include <string.h>

#include "backends/cpu/kern.h"
#include "core/fp16.h"

static float hsum8(const float s[8])
{
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static void mm_f32(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    const int64_t K = mm->K;
    for (int64_t n = g0; n < g1; n++) {
        const float *w = (const float *)mm->w + n * K;
        for (int64_t m = 0; m < mm->a->M; m++) {
            const float *x = mm->a->x + m * K;
            float s[8] = {0};
            int64_t k = 0;
            for (; k + 8 <= K; k += 8)
                for (int j = 0; j < 8; j++)
                    s[j] += w[k + j] * x[k + j];
            for (; k < K; k++)
                s[0] += w[k] * x[k];
            mm->y[m * mm->N + n] = hsum8(s);
        }
    }
}

static void mm_f16(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    const int64_t K = mm->K;
    float wf[256];
    for (int64_t n = g0; n < g1; n++) {
        const uint16_t *w = (const uint16_t *)mm->w + n * K;
        for (int64_t m = 0; m < mm->a->M; m++) {
            const float *x = mm->a->x + m * K;
            float s[8] = {0};
            for (int64_t k0 = 0; k0 < K; k0 += 256) {
                int64_t kn = K - k0 < 256 ? K - k0 : 256;
                for (int64_t k = 0; k < kn; k++)
                    wf[k] = mq_f16_to_f32(w[k0 + k]);
                int64_t k = 0;
                for (; k + 8 <= kn; k += 8)
                    for (int j = 0; j < 8; j++)
                        s[j] += wf[k + j] * x[k0 + k + j];
                for (; k < kn; k++)
                    s[0] += wf[k] * x[k0 + k];
            }
            mm->y[m * mm->N + n] = hsum8(s);
        }
    }
}

static void mm_bf16(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    const int64_t K = mm->K;
    for (int64_t n = g0; n < g1; n++) {
        const uint16_t *w = (const uint16_t *)mm->w + n * K;
        for (int64_t m = 0; m < mm->a->M; m++) {
            const float *x = mm->a->x + m * K;
            float s[8] = {0};
            int64_t k = 0;
            for (; k + 8 <= K; k += 8)
                for (int j = 0; j < 8; j++)
                    s[j] += mq_bf16_to_f32(w[k + j]) * x[k + j];
            for (; k < K; k++)
                s[0] += mq_bf16_to_f32(w[k]) * x[k];
            mm->y[m * mm->N + n] = hsum8(s);
        }
    }
}

static void mm_q8_0(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    const int64_t nb = mm->K / 32;
    for (int64_t n = g0; n < g1; n++) {
        const struct mq_block_q8_0 *w = (const struct mq_block_q8_0 *)mm->w + n * nb;
        for (int64_t m = 0; m < mm->a->M; m++) {
            const int8_t *xq = mm->a->xq + m * mm->K;
            const float *xd = mm->a->xd + m * nb;
            float s = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t sumi = 0;
                for (int j = 0; j < 32; j++)
                    sumi += (int32_t)w[b].qs[j] * (int32_t)xq[b * 32 + j];
                s += (float)sumi * (mq_f16_to_f32(w[b].d) * xd[b]);
            }
            mm->y[m * mm->N + n] = s;
        }
    }
}

static void mm_q4_0(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    const int64_t nb = mm->K / 32;
    for (int64_t n = g0; n < g1; n++) {
        const struct mq_block_q4_0 *w = (const struct mq_block_q4_0 *)mm->w + n * nb;
        for (int64_t m = 0; m < mm->a->M; m++) {
            const int8_t *xq = mm->a->xq + m * mm->K;
            const float *xd = mm->a->xd + m * nb;
            const int32_t *xs = mm->a->xs + m * nb;
            float s = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t sumi = 0;
                for (int j = 0; j < 16; j++)
                    sumi += (int32_t)(w[b].qs[j] & 15) * xq[b * 32 + j] +
                            (int32_t)(w[b].qs[j] >> 4) * xq[b * 32 + j + 16];
                sumi -= 8 * xs[b];
                s += (float)sumi * (mq_f16_to_f32(w[b].d) * xd[b]);
            }
            mm->y[m * mm->N + n] = s;
        }
    }
}

/* The other Q8_0-activation formats walk their blocks like q4_0 (one block of 32 per
 * step, the int32 code sum times the two f16 scales in float). */

/* q4_1: w = d*q + m, q the unbiased Q4_0 nibbles: d*dx*sum(q*xq) + m*dx*sum(xq) */
static void mm_q4_1(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    const int64_t nb = mm->K / 32;
    for (int64_t n = g0; n < g1; n++) {
        const struct mq_block_q4_1 *w = (const struct mq_block_q4_1 *)mm->w + n * nb;
        for (int64_t m = 0; m < mm->a->M; m++) {
            const int8_t *xq = mm->a->xq + m * mm->K;
            const float *xd = mm->a->xd + m * nb;
            const int32_t *xs = mm->a->xs + m * nb;
            float s = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t sumi = 0;
                for (int j = 0; j < 16; j++)
                    sumi += (int32_t)(w[b].qs[j] & 15) * xq[b * 32 + j] +
                            (int32_t)(w[b].qs[j] >> 4) * xq[b * 32 + j + 16];
                s += (float)sumi * (mq_f16_to_f32(w[b].d) * xd[b]) +
                     (mq_f16_to_f32(w[b].m) * xd[b]) * (float)xs[b];
            }
            mm->y[m * mm->N + n] = s;
        }
    }
}

/* qh of a Q5 block: bit e is bit 4 of element e's code (little-endian bytes) */
static inline uint32_t q5_high_bits(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

/* sum over a Q5 block of code * xq, codes 0..31 (Q4_0 nibbles plus bit 4 from qh) */
static inline int32_t q5_sum(const uint8_t qs[16], uint32_t qh, const int8_t *xq)
{
    int32_t sumi = 0;
    for (int j = 0; j < 16; j++) {
        int32_t lo = (qs[j] & 15) | (int32_t)((qh >> j) & 1) << 4;
        int32_t hi = (qs[j] >> 4) | (int32_t)((qh >> (j + 16)) & 1) << 4;
        sumi += lo * xq[j] + hi * xq[j + 16];
    }
    return sumi;
}

/* q5_0: w = d*(q - 16): d*dx*(sum(q*xq) - 16*sum(xq)) */
static void mm_q5_0(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    const int64_t nb = mm->K / 32;
    for (int64_t n = g0; n < g1; n++) {
        const struct mq_block_q5_0 *w = (const struct mq_block_q5_0 *)mm->w + n * nb;
        for (int64_t m = 0; m < mm->a->M; m++) {
            const int8_t *xq = mm->a->xq + m * mm->K;
            const float *xd = mm->a->xd + m * nb;
            const int32_t *xs = mm->a->xs + m * nb;
            float s = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t sumi = q5_sum(w[b].qs, q5_high_bits(w[b].qh), xq + b * 32) - 16 * xs[b];
                s += (float)sumi * (mq_f16_to_f32(w[b].d) * xd[b]);
            }
            mm->y[m * mm->N + n] = s;
        }
    }
}

/* q5_1: w = d*q + m with 5-bit q: d*dx*sum(q*xq) + m*dx*sum(xq) */
static void mm_q5_1(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    const int64_t nb = mm->K / 32;
    for (int64_t n = g0; n < g1; n++) {
        const struct mq_block_q5_1 *w = (const struct mq_block_q5_1 *)mm->w + n * nb;
        for (int64_t m = 0; m < mm->a->M; m++) {
            const int8_t *xq = mm->a->xq + m * mm->K;
            const float *xd = mm->a->xd + m * nb;
            const int32_t *xs = mm->a->xs + m * nb;
            float s = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t sumi = q5_sum(w[b].qs, q5_high_bits(w[b].qh), xq + b * 32);
                s += (float)sumi * (mq_f16_to_f32(w[b].d) * xd[b]) +
                     (mq_f16_to_f32(w[b].m) * xd[b]) * (float)xs[b];
            }
            mm->y[m * mm->N + n] = s;
        }
    }
}

/* iq4_nl: w = d*values[nibble] (int8 values): d*dx*sum(values*xq) */
static void mm_iq4_nl(const struct cpu_mm *mm, int64_t g0, int64_t g1)
{
    const int64_t nb = mm->K / 32;
    for (int64_t n = g0; n < g1; n++) {
        const struct mq_block_iq4_nl *w = (const struct mq_block_iq4_nl *)mm->w + n * nb;
        for (int64_t m = 0; m < mm->a->M; m++) {
            const int8_t *xq = mm->a->xq + m * mm->K;
            const float *xd = mm->a->xd + m * nb;
            float s = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t sumi = 0;
                for (int j = 0; j < 16; j++)
                    sumi += (int32_t)mq_iq4nl_values[w[b].qs[j] & 15] * xq[b * 32 + j] +
                            (int32_t)mq_iq4nl_values[w[b].qs[j] >> 4] * xq[b * 32 + j + 16];
                s += (float)sumi * (mq_f16_to_f32(w[b].d) * xd[b]);
            }
            mm->y[m * mm->N + n] = s;
        }
    }
}

/* ---- K-quants and IQ4_XS: super-blocks of 256 against Q8_K activations ----
 *
 * Every such format is w = d*sc_j*q - dmin*mn_j over sub-blocks j of 16 (a sub-block of
 * 32 is two of 16 with the same sc and mn), q a signed integer code. A row is decoded
 * KQ_CHUNK super-blocks at a time into int8 codes and per-16 scales and mins, once for
 * all M columns. Each column then takes, per super-block, sum_j sc_j * sum(q*xq) in 8
 * int32 lanes and sum_j mn_j * bsum_j (Q8_K's sums of 16 codes) exactly, scales them by
 * d*dx and dmin*dx in float and accumulates the scale terms in 8 float partial sums, as
 * ggml's generic vec_dot does. The int32 sums cannot overflow: |sc*q*xq| summed over 256
 * elements is at most 128*32*127*256 (q6_k) or 32*127*127*256 (iq4_xs), below 2^28. */

#define KQ_CHUNK 8 /* super-blocks decoded per step: 2 KiB of codes, L1-resident */

struct kq_chunk {
    int8_t q[KQ_CHUNK][MQ_QK_K];
    int16_t sc[KQ_CHUNK][16];
    int16_t mn[KQ_CHUNK][16]; /* formats with mins only */
    float d[KQ_CHUNK], dmin[KQ_CHUNK];
};

/* One super-block of a format into codes, scales and mins (i of the chunk). */
typedef void (*kq_decode_fn)(const void *blk, struct kq_chunk *c, int i);

static void kq_dec_q2_k(const void *blk, struct kq_chunk *c, int i)
{
    const struct mq_block_q2_k *b = blk;
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++)
                c->q[i][128 * h + 32 * k + l] = (int8_t)((b->qs[32 * h + l] >> (2 * k)) & 3);
    for (int j = 0; j < 16; j++) {
        c->sc[i][j] = b->scales[j] & 15;
        c->mn[i][j] = b->scales[j] >> 4;
    }
    c->d[i] = mq_f16_to_f32(b->d);
    c->dmin[i] = mq_f16_to_f32(b->dmin);
}

static void kq_dec_q3_k(const void *blk, struct kq_chunk *c, int i)
{
    const struct mq_block_q3_k *b = blk;
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int q = (b->qs[32 * h + l] >> (2 * k)) & 3;
                int hbit = (b->hmask[l] >> (4 * h + k)) & 1; /* bit e/32 of byte e%32 */
                c->q[i][128 * h + 32 * k + l] = (int8_t)(q - (hbit ? 0 : 4));
            }
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? b->scales[j] & 15 : b->scales[j - 8] >> 4;
        int hi = (b->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
        c->sc[i][j] = (int16_t)((lo | hi << 4) - 32);
    }
    c->d[i] = mq_f16_to_f32(b->d);
}

/* Q4_K/Q5_K's 6-bit scale and min of sub-block j (0..7) of 32, duplicated per 16 */
static void kq_scales_k4(const uint8_t p[MQ_K_SCALE_BYTES], struct kq_chunk *c, int i)
{
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        if (j < 4) {
            sc = p[j] & 63;
            mn = p[j + 4] & 63;
        } else {
            sc = (p[j + 4] & 15) | (p[j - 4] >> 6) << 4;
            mn = (p[j + 4] >> 4) | (p[j] >> 6) << 4;
        }
        c->sc[i][2 * j] = c->sc[i][2 * j + 1] = (int16_t)sc;
        c->mn[i][2 * j] = c->mn[i][2 * j + 1] = (int16_t)mn;
    }
}

static void kq_dec_q4_k(const void *blk, struct kq_chunk *c, int i)
{
    const struct mq_block_q4_k *b = blk;
    for (int ch = 0; ch < 4; ch++) /* 64 elements: low nibbles, then high */
        for (int l = 0; l < 32; l++) {
            c->q[i][64 * ch + l] = (int8_t)(b->qs[32 * ch + l] & 15);
            c->q[i][64 * ch + 32 + l] = (int8_t)(b->qs[32 * ch + l] >> 4);
        }
    kq_scales_k4(b->scales, c, i);
    c->d[i] = mq_f16_to_f32(b->d);
    c->dmin[i] = mq_f16_to_f32(b->dmin);
}

static void kq_dec_q5_k(const void *blk, struct kq_chunk *c, int i)
{
    const struct mq_block_q5_k *b = blk;
    for (int ch = 0; ch < 4; ch++)
        for (int l = 0; l < 32; l++) {
            int h0 = (b->qh[l] >> (2 * ch)) & 1, h1 = (b->qh[l] >> (2 * ch + 1)) & 1;
            c->q[i][64 * ch + l] = (int8_t)((b->qs[32 * ch + l] & 15) | h0 << 4);
            c->q[i][64 * ch + 32 + l] = (int8_t)((b->qs[32 * ch + l] >> 4) | h1 << 4);
        }
    kq_scales_k4(b->scales, c, i);
    c->d[i] = mq_f16_to_f32(b->d);
    c->dmin[i] = mq_f16_to_f32(b->dmin);
}

static void kq_dec_q6_k(const void *blk, struct kq_chunk *c, int i)
{
    const struct mq_block_q6_k *b = blk;
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        int8_t *q = c->q[i] + 128 * h;
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)(((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32);
            q[l + 32] = (int8_t)(((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32);
            q[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
            q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
        }
    }
    for (int j = 0; j < 16; j++)
        c->sc[i][j] = b->scales[j];
    c->d[i] = mq_f16_to_f32(b->d);
}

static void kq_dec_iq4_xs(const void *blk, struct kq_chunk *c, int i)
{
    const struct mq_block_iq4_xs *b = blk;
    for (int j = 0; j < 8; j++) {
        int ls = ((b->scales_l[j / 2] >> (4 * (j % 2))) & 15) | ((b->scales_h >> (2 * j)) & 3) << 4;
        c->sc[i][2 * j] = c->sc[i][2 * j + 1] = (int16_t)(ls - 32);
        for (int l = 0; l < 16; l++) {
            c->q[i][32 * j + l] = mq_iq4nl_values[b->qs[16 * j + l] & 15];
            c->q[i][32 * j + 16 + l] = mq_iq4nl_values[b->qs[16 * j + l] >> 4];
        }
    }
    c->d[i] = mq_f16_to_f32(b->d);
}

/* The dot product of nc decoded super-blocks with one column's Q8_K activations. */
static float kq_dot(const struct kq_chunk *c, int nc, bool has_min, const int8_t *xq,
                    const float *xd, const int32_t *xs)
{
    float sums[8] = {0}, mins = 0.0f;
    for (int i = 0; i < nc; i++) {
        const int8_t *q = c->q[i], *x = xq + i * MQ_QK_K;
        int32_t acc[8] = {0};
        for (int j = 0; j < 16; j++) {
            const int32_t sc = c->sc[i][j];
            for (int l = 0; l < 8; l++)
                acc[l] += sc * ((int32_t)q[16 * j + l] * x[16 * j + l] +
                                (int32_t)q[16 * j + 8 + l] * x[16 * j + 8 + l]);
        }
        const float d = c->d[i] * xd[i];
        for (int l = 0; l < 8; l++)
            sums[l] += d * (float)acc[l];
        if (has_min) {
            int32_t msum = 0;
            for (int j = 0; j < 16; j++)
                msum += (int32_t)c->mn[i][j] * xs[16 * i + j];
            mins += (c->dmin[i] * xd[i]) * (float)msum;
        }
    }
    return hsum8(sums) - mins;
}

static inline void mm_kquant(const struct cpu_mm *mm, int64_t g0, int64_t g1, size_t block_bytes,
                             kq_decode_fn decode, bool has_min)
{
    const int64_t K = mm->K, nb = K / MQ_QK_K, M = mm->a->M;
    struct kq_chunk c;
    for (int64_t n = g0; n < g1; n++) {
        const char *row = (const char *)mm->w + (size_t)n * (size_t)nb * block_bytes;
        for (int64_t b0 = 0; b0 < nb; b0 += KQ_CHUNK) {
            int nc = nb - b0 < KQ_CHUNK ? (int)(nb - b0) : KQ_CHUNK;
            for (int i = 0; i < nc; i++)
                decode(row + (size_t)(b0 + i) * block_bytes, &c, i);
            for (int64_t m = 0; m < M; m++) {
                float part = kq_dot(&c, nc, has_min, mm->a->xq + m * K + b0 * MQ_QK_K,
                                    mm->a->xd + m * nb + b0, mm->a->xs + m * (K / 16) + b0 * 16);
                float *y = &mm->y[m * mm->N + n];
                *y = b0 ? *y + part : part;
            }
        }
    }
}

#define MM_KQUANT(type, has_min)                                                                   \
    static void mm_##type(const struct cpu_mm *mm, int64_t g0, int64_t g1)                         \
    {                                                                                              \
        mm_kquant(mm, g0, g1, sizeof(struct mq_block_##type), kq_dec_##type, has_min);             \
    }
MM_KQUANT(q2_k, true)
MM_KQUANT(q3_k, false)
MM_KQUANT(q4_k, true)
MM_KQUANT(q5_k, true)
MM_KQUANT(q6_k, false)
MM_KQUANT(iq4_xs, false)

static void quantize_q8(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s)
{
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0.0f;
        bool nan = false;
        for (int j = 0; j < 32; j++) {
            float v = fabsf(xb[j]);
            amax = amax > v ? amax : v;
            nan |= v != v;
        }
        if (nan) /* any NaN makes the block's scale NaN (the SIMD paths do the same) */
            amax = NAN;
        float dd = amax / 127.0f;
        float id = dd != 0.0f ? 1.0f / dd : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            /* |x * id| <= 127 whenever id is finite; a subnormal scale (f16 scale 0: the
             * block adds 0 either way) makes it infinite: clamped, as on every path */
            float p = xb[j] * id;
            int8_t c = p == p ? (int8_t)roundf(fminf(fmaxf(p, -127.0f), 127.0f)) : 0;
            q[b * 32 + j] = c;
            sum += c;
            if (u)
                u[b * 32 + j] = (uint8_t)(c + 128);
        }
        d[b] = mq_f16_to_f32(mq_f32_to_f16(dd));
        s[b] = sum;
    }
}

/* ggml's nearest_int: round half to even by the 1.5 * 2^23 trick, for |v| < 2^22 */
static inline int nearest_int(float v)
{
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

void cpu_quantize_q8k_scalar(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s)
{
    for (int64_t b = 0; b < n / 256; b++) {
        const float *xb = x + b * 256;
        int8_t *qb = q + b * 256;
        float amax = 0.0f, max = 0.0f; /* max keeps the sign of the largest magnitude */
        bool nan = false;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(xb[j]);
            nan |= ax != ax;
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax == 0.0f || isinf(amax) || nan) {
            /* all zero (ggml: d = 0, codes 0); a NaN or infinite element: ggml's codes are
             * undefined there, mixq's are 0 with a NaN scale, so the block's dot is NaN as
             * with any non-finite input (cpu.h) */
            d[b] = amax == 0.0f && !nan ? 0.0f : NAN;
            memset(qb, 0, 256);
        } else {
            float iscale = -127.0f / max;
            for (int j = 0; j < 256; j++) {
                float p = iscale * xb[j]; /* |p| <= 127, or NaN where iscale overflowed */
                int v = p == p ? nearest_int(p) : 0;
                qb[j] = (int8_t)(v < 127 ? v : 127);
            }
            d[b] = 1.0f / iscale;
        }
        for (int j = 0; j < 16; j++) {
            int32_t sum = 0;
            for (int i = 0; i < 16; i++)
                sum += qb[16 * j + i];
            s[b * 16 + j] = sum;
        }
        if (u)
            for (int j = 0; j < 256; j++)
                u[b * 256 + j] = (uint8_t)(qb[j] + 128);
    }
}

static void add(const float *a, const float *b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

static void swiglu(const float *g, const float *u, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static double sumsq(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return s;
}

static void scale_mul(const float *x, float scale, const float *w, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

static float dot(const float *a, const float *b, int64_t n)
{
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += a[i + j] * b[i + j];
    for (; i < n; i++)
        s[0] += a[i] * b[i];
    return hsum8(s);
}

static void axpy(float s, const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += s * x[i];
}

static float exp_sum(float *x, float mx, int64_t n)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    return sum;
}

const struct cpu_kern cpu_kern_scalar = {
    .isa = "scalar",
    .rows = 1,
    .matmul = {[MQ_DTYPE_F32] = mm_f32,
               [MQ_DTYPE_F16] = mm_f16,
               [MQ_DTYPE_BF16] = mm_bf16,
               [MQ_DTYPE_Q8_0] = mm_q8_0,
               [MQ_DTYPE_Q4_0] = mm_q4_0,
               [MQ_DTYPE_Q4_1] = mm_q4_1,
               [MQ_DTYPE_Q5_0] = mm_q5_0,
               [MQ_DTYPE_Q5_1] = mm_q5_1,
               [MQ_DTYPE_IQ4_NL] = mm_iq4_nl,
               [MQ_DTYPE_Q2_K] = mm_q2_k,
               [MQ_DTYPE_Q3_K] = mm_q3_k,
               [MQ_DTYPE_Q4_K] = mm_q4_k,
               [MQ_DTYPE_Q5_K] = mm_q5_k,
               [MQ_DTYPE_Q6_K] = mm_q6_k,
               [MQ_DTYPE_IQ4_XS] = mm_iq4_xs},
    .quantize_q8 = quantize_q8,
    .quantize_q8k = cpu_quantize_q8k_scalar,
    .add = add,
    .swiglu = swiglu,
    .sumsq = sumsq,
    .scale_mul = scale_mul,
    .dot = dot,
    .axpy = axpy,
    .exp_sum = exp_sum,
};
