/* backends/cpu/kern_scalar.c - the portable path: plain C on ggml's layout (R = 1).
 * F32 accumulation in 8 independent partial sums (which compilers vectorize), int32
 * block sums for the integer formats. The fallback on any CPU, and what MIXQ_CPU_ISA=scalar
 * forces for comparisons. */
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
