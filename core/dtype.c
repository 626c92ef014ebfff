/* core/dtype.c - traits table and reference conversions of every type.
 *
 * The quantizers follow ggml's reference code (quantize_row_q8_0_ref and
 * quantize_row_q4_0_ref) operation for operation, so that the blocks are bit-identical
 * to what llama-quantize writes from the same f32 input. The dequantizers of the
 * source-only types follow ggml's dequantize_row_* the same way (code times scale, then
 * plus the offset), so that they give ggml's floats bit for bit; the K-quants are in
 * core/dtype_kquants.c. */
#include "core/dtype.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/dtype_internal.h"
#include "core/fp16.h"
#include "core/status.h"

static void f32_to_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f32_from_f32(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f16_to_f32(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = mq_f16_to_f32(h[i]);
}

static void f16_from_f32(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = mq_f32_to_f16(src[i]);
}

static void bf16_to_f32(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = mq_bf16_to_f32(h[i]);
}

static void bf16_from_f32(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = mq_f32_to_bf16(src[i]);
}

static void q8_0_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / MQ_QK8_0; i++) {
        float d = mq_f16_to_f32(b[i].d);
        for (int j = 0; j < MQ_QK8_0; j++)
            dst[i * MQ_QK8_0 + j] = (float)b[i].qs[j] * d;
    }
}

static void q8_0_from_f32(const float *src, void *dst, int64_t n)
{
    struct mq_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / MQ_QK8_0; i++) {
        const float *x = src + i * MQ_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < MQ_QK8_0; j++) {
            float v = fabsf(x[j]);
            amax = amax > v ? amax : v; /* ggml's MAX(): a NaN input makes amax NaN */
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = mq_f32_to_f16(d);
        for (int j = 0; j < MQ_QK8_0; j++) {
            /* |x*id| <= 127 for finite input; NaN (from NaN or Inf weights) becomes 0
             * instead of an undefined float-to-int conversion */
            float r = roundf(x[j] * id);
            b[i].qs[j] = r == r ? (int8_t)r : 0;
        }
    }
}

static void q4_0_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / MQ_QK4_0; i++) {
        float d = mq_f16_to_f32(b[i].d);
        for (int j = 0; j < MQ_QK4_0 / 2; j++) {
            dst[i * MQ_QK4_0 + j] = (float)((b[i].qs[j] & 0x0F) - 8) * d;
            dst[i * MQ_QK4_0 + j + MQ_QK4_0 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* ggml computes MIN(15, (int8_t)v) for v = x*id + 8.5 in [0.5, 16.5]; truncation of a
 * non-negative v is (int)v. Out-of-range and NaN v (non-finite weights) are clamped
 * here rather than left to an undefined conversion. */
static inline uint8_t q4_0_code(float v)
{
    if (v >= 15.0f)
        return 15;
    return v >= 0.0f ? (uint8_t)(int)v : 0;
}

static void q4_0_from_f32(const float *src, void *dst, int64_t n)
{
    struct mq_block_q4_0 *b = dst;
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
        b[i].d = mq_f32_to_f16(d);
        for (int j = 0; j < MQ_QK4_0 / 2; j++) {
            uint8_t q0 = q4_0_code(x[j] * id + 8.5f);
            uint8_t q1 = q4_0_code(x[j + MQ_QK4_0 / 2] * id + 8.5f);
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void q4_1_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / MQ_QK4_1; i++) {
        float d = mq_f16_to_f32(b[i].d), m = mq_f16_to_f32(b[i].m);
        for (int j = 0; j < MQ_QK4_1 / 2; j++) {
            dst[i * MQ_QK4_1 + j] = (float)(b[i].qs[j] & 0x0F) * d + m;
            dst[i * MQ_QK4_1 + j + MQ_QK4_1 / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

/* The 5-bit code of elements j and j+16 of a Q5_0/Q5_1 block: the nibbles of qs[j] and
 * bits j and j+16 of the little-endian qh. */
static inline void q5_codes(const uint8_t qh_bytes[4], uint8_t qs, int j, int *lo, int *hi)
{
    uint32_t qh = (uint32_t)qh_bytes[0] | (uint32_t)qh_bytes[1] << 8 |
                  (uint32_t)qh_bytes[2] << 16 | (uint32_t)qh_bytes[3] << 24;
    *lo = (qs & 0x0F) | (int)((qh >> j) & 1) << 4;
    *hi = (qs >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
}

static void q5_0_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q5_0 *b = src;
    for (int64_t i = 0; i < n / MQ_QK5_0; i++) {
        float d = mq_f16_to_f32(b[i].d);
        for (int j = 0; j < MQ_QK5_0 / 2; j++) {
            int lo, hi;
            q5_codes(b[i].qh, b[i].qs[j], j, &lo, &hi);
            dst[i * MQ_QK5_0 + j] = (float)(lo - 16) * d;
            dst[i * MQ_QK5_0 + j + MQ_QK5_0 / 2] = (float)(hi - 16) * d;
        }
    }
}

static void q5_1_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q5_1 *b = src;
    for (int64_t i = 0; i < n / MQ_QK5_1; i++) {
        float d = mq_f16_to_f32(b[i].d), m = mq_f16_to_f32(b[i].m);
        for (int j = 0; j < MQ_QK5_1 / 2; j++) {
            int lo, hi;
            q5_codes(b[i].qh, b[i].qs[j], j, &lo, &hi);
            dst[i * MQ_QK5_1 + j] = (float)lo * d + m;
            dst[i * MQ_QK5_1 + j + MQ_QK5_1 / 2] = (float)hi * d + m;
        }
    }
}

/* Source-only rows: read, never written or planned. */
#define SOURCE_ONLY(nm, ggml, elems, block, fn)                                                  \
    {.name = nm, .ggml_type = ggml, .block_elems = elems, .block_bytes = sizeof(block),          \
     .is_quantized = true, .is_plan_format = false, .to_f32 = fn, .from_f32 = NULL}

static const struct mq_dtype_traits dtype_table[MQ_DTYPE_COUNT] = {
    [MQ_DTYPE_F32] = {.name = "f32", .ggml_type = 0, .block_elems = 1, .block_bytes = 4,
                      .is_plan_format = true, .to_f32 = f32_to_f32, .from_f32 = f32_from_f32},
    [MQ_DTYPE_F16] = {.name = "f16", .ggml_type = 1, .block_elems = 1, .block_bytes = 2,
                      .is_plan_format = true, .to_f32 = f16_to_f32, .from_f32 = f16_from_f32},
    [MQ_DTYPE_BF16] = {.name = "bf16", .ggml_type = 30, .block_elems = 1, .block_bytes = 2,
                       .is_plan_format = true, .to_f32 = bf16_to_f32, .from_f32 = bf16_from_f32},
    [MQ_DTYPE_Q8_0] = {.name = "q8_0", .ggml_type = 8, .block_elems = MQ_QK8_0,
                       .block_bytes = sizeof(struct mq_block_q8_0), .is_quantized = true,
                       .is_plan_format = true, .to_f32 = q8_0_to_f32, .from_f32 = q8_0_from_f32},
    [MQ_DTYPE_Q4_0] = {.name = "q4_0", .ggml_type = 2, .block_elems = MQ_QK4_0,
                       .block_bytes = sizeof(struct mq_block_q4_0), .is_quantized = true,
                       .is_plan_format = true, .to_f32 = q4_0_to_f32, .from_f32 = q4_0_from_f32},
    /* ggml's numbers: Q4_1=3, Q5_0=6, Q5_1=7, Q2_K=10 .. Q6_K=14 (4, 5 were removed Q4_2/Q4_3) */
    [MQ_DTYPE_Q4_1] = SOURCE_ONLY("q4_1", 3, MQ_QK4_1, struct mq_block_q4_1, q4_1_to_f32),
    [MQ_DTYPE_Q5_0] = SOURCE_ONLY("q5_0", 6, MQ_QK5_0, struct mq_block_q5_0, q5_0_to_f32),
    [MQ_DTYPE_Q5_1] = SOURCE_ONLY("q5_1", 7, MQ_QK5_1, struct mq_block_q5_1, q5_1_to_f32),
    [MQ_DTYPE_Q2_K] = SOURCE_ONLY("q2_k", 10, MQ_QK_K, struct mq_block_q2_k, mq_q2_k_to_f32),
    [MQ_DTYPE_Q3_K] = SOURCE_ONLY("q3_k", 11, MQ_QK_K, struct mq_block_q3_k, mq_q3_k_to_f32),
    [MQ_DTYPE_Q4_K] = SOURCE_ONLY("q4_k", 12, MQ_QK_K, struct mq_block_q4_k, mq_q4_k_to_f32),
    [MQ_DTYPE_Q5_K] = SOURCE_ONLY("q5_k", 13, MQ_QK_K, struct mq_block_q5_k, mq_q5_k_to_f32),
    [MQ_DTYPE_Q6_K] = SOURCE_ONLY("q6_k", 14, MQ_QK_K, struct mq_block_q6_k, mq_q6_k_to_f32),
    [MQ_DTYPE_I32] = {.name = "i32", .ggml_type = 26, .block_elems = 1, .block_bytes = 4},
};

const struct mq_dtype_traits *mq_dtype_get(enum mq_dtype type)
{
    MQ_ASSERT((unsigned)type < MQ_DTYPE_COUNT);
    return &dtype_table[type];
}

int mq_dtype_from_name(const char *name, enum mq_dtype *out)
{
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (strcasecmp(name, dtype_table[t].name) == 0) {
            *out = (enum mq_dtype)t;
            return MQ_OK;
        }
    }
    return MQ_ENOTFOUND;
}

int mq_dtype_from_ggml(uint32_t ggml_type, enum mq_dtype *out)
{
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (dtype_table[t].ggml_type == ggml_type) {
            *out = (enum mq_dtype)t;
            return MQ_OK;
        }
    }
    return MQ_ENOTFOUND;
}

int mq_dtype_row_bytes(enum mq_dtype type, int64_t n, size_t *bytes)
{
    const struct mq_dtype_traits *t = mq_dtype_get(type);
    if (n < 0 || n % t->block_elems != 0)
        return mq_error(MQ_EINVAL, "%s row of %lld elements is not a whole number of %lld-element blocks",
                        t->name, (long long)n, (long long)t->block_elems);
    uint64_t blocks = (uint64_t)(n / t->block_elems);
    if (blocks > SIZE_MAX / t->block_bytes)
        return mq_error(MQ_ENOMEM, "%s row of %lld elements overflows size_t", t->name, (long long)n);
    *bytes = (size_t)blocks * t->block_bytes;
    return MQ_OK;
}

double mq_dtype_bits_per_weight(enum mq_dtype type)
{
    const struct mq_dtype_traits *t = mq_dtype_get(type);
    return 8.0 * (double)t->block_bytes / (double)t->block_elems;
}

void mq_dtype_list_plan_formats(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (!dtype_table[t].is_plan_format)
            continue;
        int k = snprintf(buf + used, size - used, "%s%s", used ? "," : "", dtype_table[t].name);
        if (k < 0 || (size_t)k >= size - used)
            return;
        used += (size_t)k;
    }
}
