/* core/dtype.c - the traits table, the plain conversions (f32, f16, bf16), the legacy and
 * IQ4 dequantizers, and the weight conversion every plan uses.
 *
 * The dequantizers follow ggml's dequantize_row_* operation for operation (code times
 * scale, then plus the offset), so that they give ggml's floats bit for bit; the K-quants'
 * are in core/dtype_kquants.c, and every quantizer (bit-exact with ggml's quantize_*) in
 * core/dtype_quant.c. */
#include "core/dtype.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/compensate.h"
#include "core/dtype_internal.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "core/status.h"

/* from_f32 of every written type: its quantize without importance weights */
#define FROM_F32(type)                                                                          \
    static void type##_from_f32(const float *src, void *dst, int64_t n) { mq_quantize_##type(src, dst, 1, n, NULL); }
FROM_F32(q8_0)
FROM_F32(q4_0)
FROM_F32(q4_1)
FROM_F32(q5_0)
FROM_F32(q5_1)
FROM_F32(q2_k)
FROM_F32(q3_k)
FROM_F32(q4_k)
FROM_F32(q5_k)
FROM_F32(q6_k)
FROM_F32(iq4_nl)
FROM_F32(iq4_xs)
FROM_F32(q8_k)
#define q2_k_to_f32 mq_q2_k_to_f32
#define q3_k_to_f32 mq_q3_k_to_f32
#define q4_k_to_f32 mq_q4_k_to_f32
#define q5_k_to_f32 mq_q5_k_to_f32
#define q6_k_to_f32 mq_q6_k_to_f32

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

/* the plain types' quantize: an element-wise conversion (importance weights have no use) */
void mq_quantize_f32(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp)
{
    (void)imp;
    f32_from_f32(src, dst, n_rows * n_per_row);
}

void mq_quantize_f16(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp)
{
    (void)imp;
    f16_from_f32(src, dst, n_rows * n_per_row);
}

void mq_quantize_bf16(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp)
{
    (void)imp;
    bf16_from_f32(src, dst, n_rows * n_per_row);
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

static void iq4_nl_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / MQ_QK4_NL; i++) {
        float d = mq_f16_to_f32(b[i].d);
        for (int j = 0; j < MQ_QK4_NL / 2; j++) {
            dst[i * MQ_QK4_NL + j] = d * (float)mq_iq4nl_values[b[i].qs[j] & 0x0F];
            dst[i * MQ_QK4_NL + j + MQ_QK4_NL / 2] = d * (float)mq_iq4nl_values[b[i].qs[j] >> 4];
        }
    }
}

static void iq4_xs_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_iq4_xs *b = src;
    for (int64_t i = 0; i < n / MQ_QK_K; i++) {
        float d = mq_f16_to_f32(b[i].d);
        for (int ib = 0; ib < MQ_QK_K / 32; ib++) {
            int ls = ((b[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0x0F) | (((b[i].scales_h >> 2 * ib) & 3) << 4);
            float dl = d * (float)(ls - 32);
            const uint8_t *qs = b[i].qs + 16 * ib;
            float *y = dst + i * MQ_QK_K + 32 * ib;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)mq_iq4nl_values[qs[j] & 0x0F];
                y[j + 16] = dl * (float)mq_iq4nl_values[qs[j] >> 4];
            }
        }
    }
}

static void q8_k_to_f32(const void *src, float *dst, int64_t n)
{
    const struct mq_block_q8_k *b = src;
    for (int64_t i = 0; i < n / MQ_QK_K; i++)
        for (int j = 0; j < MQ_QK_K; j++)
            dst[i * MQ_QK_K + j] = b[i].d * (float)b[i].qs[j];
}

const int8_t mq_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

/* llama_ftype numbers (llama.h), as they reach general.file_type */
enum {
    FT_ALL_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_M = 12, FT_Q4_K_M = 15, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ4_NL = 25,
    FT_IQ4_XS = 30, FT_BF16 = 32,
};

/* A weight format: block-quantized, written by mixq, multiplied by integer kernels with
 * activations in `act` blocks. */
#define WEIGHT(nm, ggml, elems, block, ft, act, fb, dflt, type)                                  \
    {.name = nm, .ggml_type = ggml, .block_elems = elems, .block_bytes = sizeof(block),          \
     .is_quantized = true, .is_plan_format = true, .search_default = dflt, .llama_ftype = ft,   \
     .act_type = act, .fallback = fb, .to_f32 = type##_to_f32, .from_f32 = type##_from_f32,     \
     .quantize = mq_quantize_##type}

static const struct mq_dtype_traits dtype_table[MQ_DTYPE_COUNT] = {
    [MQ_DTYPE_F32] = {.name = "f32", .ggml_type = 0, .block_elems = 1, .block_bytes = 4,
                      .is_plan_format = true, .llama_ftype = FT_ALL_F32, .act_type = MQ_DTYPE_F32,
                      .fallback = MQ_DTYPE_F32,
                      .to_f32 = f32_to_f32, .from_f32 = f32_from_f32, .quantize = mq_quantize_f32},
    [MQ_DTYPE_F16] = {.name = "f16", .ggml_type = 1, .block_elems = 1, .block_bytes = 2,
                      .is_plan_format = true, .search_default = true, .llama_ftype = FT_F16,
                      .act_type = MQ_DTYPE_F32, .fallback = MQ_DTYPE_F32, .to_f32 = f16_to_f32, .from_f32 = f16_from_f32,
                      .quantize = mq_quantize_f16},
    [MQ_DTYPE_BF16] = {.name = "bf16", .ggml_type = 30, .block_elems = 1, .block_bytes = 2,
                       .is_plan_format = true, .llama_ftype = FT_BF16, .act_type = MQ_DTYPE_F32,
                       .fallback = MQ_DTYPE_F32,
                       .to_f32 = bf16_to_f32, .from_f32 = bf16_from_f32, .quantize = mq_quantize_bf16},
    /* ggml's numbers: Q4_1=3, Q5_0=6, Q5_1=7, Q2_K=10 .. Q6_K=14, IQ4_NL=20, IQ4_XS=23 (4, 5
     * were the removed Q4_2/Q4_3) */
    [MQ_DTYPE_Q8_0] = WEIGHT("q8_0", 8, MQ_QK8_0, struct mq_block_q8_0, FT_Q8_0, MQ_DTYPE_Q8_0, MQ_DTYPE_F16, true, q8_0),
    [MQ_DTYPE_Q4_0] = WEIGHT("q4_0", 2, MQ_QK4_0, struct mq_block_q4_0, FT_Q4_0, MQ_DTYPE_Q8_0, MQ_DTYPE_F16, false, q4_0),
    [MQ_DTYPE_Q4_1] = WEIGHT("q4_1", 3, MQ_QK4_1, struct mq_block_q4_1, FT_Q4_1, MQ_DTYPE_Q8_0, MQ_DTYPE_F16, false, q4_1),
    [MQ_DTYPE_Q5_0] = WEIGHT("q5_0", 6, MQ_QK5_0, struct mq_block_q5_0, FT_Q5_0, MQ_DTYPE_Q8_0, MQ_DTYPE_F16, false, q5_0),
    [MQ_DTYPE_Q5_1] = WEIGHT("q5_1", 7, MQ_QK5_1, struct mq_block_q5_1, FT_Q5_1, MQ_DTYPE_Q8_0, MQ_DTYPE_F16, false, q5_1),
    [MQ_DTYPE_Q2_K] = WEIGHT("q2_k", 10, MQ_QK_K, struct mq_block_q2_k, FT_Q2_K, MQ_DTYPE_Q8_K, MQ_DTYPE_Q4_0, false, q2_k),
    [MQ_DTYPE_Q3_K] = WEIGHT("q3_k", 11, MQ_QK_K, struct mq_block_q3_k, FT_Q3_K_M, MQ_DTYPE_Q8_K, MQ_DTYPE_Q4_0, true, q3_k),
    [MQ_DTYPE_Q4_K] = WEIGHT("q4_k", 12, MQ_QK_K, struct mq_block_q4_k, FT_Q4_K_M, MQ_DTYPE_Q8_K, MQ_DTYPE_Q5_0, true, q4_k),
    [MQ_DTYPE_Q5_K] = WEIGHT("q5_k", 13, MQ_QK_K, struct mq_block_q5_k, FT_Q5_K_M, MQ_DTYPE_Q8_K, MQ_DTYPE_Q5_1, true, q5_k),
    [MQ_DTYPE_Q6_K] = WEIGHT("q6_k", 14, MQ_QK_K, struct mq_block_q6_k, FT_Q6_K, MQ_DTYPE_Q8_K, MQ_DTYPE_Q8_0, true, q6_k),
    [MQ_DTYPE_IQ4_NL] = WEIGHT("iq4_nl", 20, MQ_QK4_NL, struct mq_block_iq4_nl, FT_IQ4_NL, MQ_DTYPE_Q8_0, MQ_DTYPE_F16, false, iq4_nl),
    [MQ_DTYPE_IQ4_XS] = WEIGHT("iq4_xs", 23, MQ_QK_K, struct mq_block_iq4_xs, FT_IQ4_XS, MQ_DTYPE_Q8_K, MQ_DTYPE_IQ4_NL, false, iq4_xs),
    [MQ_DTYPE_Q8_K] = {.name = "q8_k", .ggml_type = 15, .block_elems = MQ_QK_K,
                       .block_bytes = sizeof(struct mq_block_q8_k), .is_quantized = true,
                       .is_activation = true, .llama_ftype = -1, .act_type = MQ_DTYPE_Q8_K, .fallback = MQ_DTYPE_F32, .to_f32 = q8_k_to_f32,
                       .from_f32 = q8_k_from_f32, .quantize = mq_quantize_q8_k},
    [MQ_DTYPE_I32] = {.name = "i32", .ggml_type = 26, .block_elems = 1, .block_bytes = 4,
                      .llama_ftype = -1, .act_type = MQ_DTYPE_I32, .fallback = MQ_DTYPE_I32},
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

bool mq_dtype_row_ok(enum mq_dtype type, int64_t n)
{
    const struct mq_dtype_traits *t = mq_dtype_get(type);
    return n > 0 && n % t->block_elems == 0;
}

enum mq_dtype mq_dtype_fallback_for_row(enum mq_dtype type, int64_t n)
{
    if (mq_dtype_row_ok(type, n))
        return type;
    enum mq_dtype fb = dtype_table[type].fallback;
    if (fb != type && mq_dtype_row_ok(fb, n))
        return fb;
    return mq_dtype_row_ok(MQ_DTYPE_F16, n) ? MQ_DTYPE_F16 : MQ_DTYPE_F32;
}

uint32_t mq_dtype_formats_for_row(int64_t n)
{
    uint32_t mask = 0;
    for (int t = 0; t < MQ_DTYPE_COUNT; t++)
        if (dtype_table[t].is_plan_format && mq_dtype_row_ok((enum mq_dtype)t, n))
            mask |= 1u << t;
    return mask;
}

uint32_t mq_dtype_default_formats(void)
{
    uint32_t mask = 0;
    for (int t = 0; t < MQ_DTYPE_COUNT; t++)
        if (dtype_table[t].search_default)
            mask |= 1u << t;
    return mask;
}

int mq_dtype_parse_formats(const char *list, uint32_t *mask, char *why, size_t why_size)
{
    uint32_t m = 0;
    char known[256];
    mq_dtype_list_formats(0, known, sizeof(known));
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        char word[32];
        enum mq_dtype t;
        if (len == 0 || len >= sizeof(word)) {
            snprintf(why, why_size, "an empty or overlong name in '%s' (formats: %s)", list, known);
            return MQ_EINVAL;
        }
        memcpy(word, p, len);
        word[len] = '\0';
        if (mq_dtype_from_name(word, &t) < 0 || !dtype_table[t].is_plan_format) {
            snprintf(why, why_size, "'%s' is not a format (formats: %s)", word, known);
            return MQ_EINVAL;
        }
        m |= 1u << t;
        p += len;
        if (*p == ',')
            p++;
    }
    if (!m) {
        snprintf(why, why_size, "the format list is empty (formats: %s)", known);
        return MQ_EINVAL;
    }
    *mask = m;
    return MQ_OK;
}

void mq_dtype_list_formats(uint32_t mask, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (mask ? !(mask & (1u << t)) : !dtype_table[t].is_plan_format)
            continue;
        int k = snprintf(buf + used, size - used, "%s%s", used ? "," : "", dtype_table[t].name);
        if (k < 0 || (size_t)k >= size - used)
            return;
        used += (size_t)k;
    }
}

/* The conversion's rows, split over threads: each converts the rows [lo, hi) of its
 * share through its own row of f32. rc: the first error (an allocation) any share met. */
struct convert_job {
    enum mq_dtype type, fmt;
    const char *src;
    size_t src_row_bytes, row_bytes;
    int64_t n_in, rows;
    const float *imp, *u;
    char *out;
    _Atomic int rc;
};

static void convert_rows(void *arg, int ith, int nth)
{
    struct convert_job *j = arg;
    int64_t lo, hi;
    mq_pool_split(j->rows, ith, nth, &lo, &hi);
    if (lo >= hi)
        return;
    float *f32 = malloc((size_t)j->n_in * sizeof(float) + 1);
    if (!f32) {
        int none = MQ_OK; /* printed by the first share that fails */
        if (atomic_compare_exchange_strong(&j->rc, &none, MQ_ENOMEM))
            mq_error(MQ_ENOMEM, "cannot allocate a row of %lld weights to convert", (long long)j->n_in);
        return;
    }
    const struct mq_dtype_traits *ft = mq_dtype_get(j->fmt), *st = mq_dtype_get(j->type);
    for (int64_t r = lo; r < hi && atomic_load_explicit(&j->rc, memory_order_relaxed) == MQ_OK; r++) {
        char *dst = j->out + (size_t)r * j->row_bytes;
        st->to_f32(j->src + (size_t)r * j->src_row_bytes, f32, j->n_in);
        if (!j->u) {
            ft->quantize(f32, dst, 1, j->n_in, j->imp);
        } else {
            int rc = mq_quantize_compensated(j->fmt, f32, j->n_in, j->imp, j->u, dst);
            int none = MQ_OK;
            if (rc < 0)
                atomic_compare_exchange_strong(&j->rc, &none, rc);
        }
    }
    free(f32);
}

/* The conversions' thread pool: one per process, made on the first conversion worth
 * splitting, with a thread per online CPU, kept until exit (its helpers sleep between
 * runs). One conversion uses it at a time; another thread's conversion meanwhile runs on
 * its caller alone. */
static pthread_mutex_t convert_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mq_pool *convert_pool;
static bool convert_pool_failed;

static void convert_run(struct convert_job *j, double work)
{
    /* below ~1 M weight-operations a conversion takes well under a millisecond: threads
     * would cost more than they save */
    if (work < (double)(1 << 20) || pthread_mutex_trylock(&convert_lock) != 0) {
        convert_rows(j, 0, 1);
        return;
    }
    if (!convert_pool && !convert_pool_failed) {
        int n = mq_pool_default_threads();
        convert_pool_failed = n < 2 || mq_pool_new(n, &convert_pool) < 0;
    }
    mq_pool_run(convert_pool, convert_rows, j); /* a NULL pool: on the caller */
    pthread_mutex_unlock(&convert_lock);
}

int mq_convert_weights(const char *name, enum mq_dtype type, const void *src, int64_t n_in,
                       int64_t rows, enum mq_dtype fmt, const float *imp, const float *u,
                       const void **data, void **buf)
{
    *buf = NULL;
    if (type == fmt) {
        *data = src;
        return MQ_OK;
    }
    const struct mq_dtype_traits *ft = mq_dtype_get(fmt);
    if (!ft->quantize || !mq_dtype_get(type)->to_f32)
        return mq_error(MQ_EUNSUPPORTED, "cannot convert weights '%s' from %s to %s", name,
                        mq_dtype_name(type), ft->name);
    if (!mq_dtype_row_ok(fmt, n_in))
        return mq_error(MQ_EINVAL, "weights '%s': rows of %lld values cannot be %s (blocks of %lld)", name,
                        (long long)n_in, ft->name, (long long)ft->block_elems);
    size_t row_bytes;
    int rc = mq_dtype_row_bytes(fmt, n_in, &row_bytes);
    if (rc < 0)
        return rc;
    if (rows < 0 || (rows && (uint64_t)n_in > SIZE_MAX / sizeof(float) / (uint64_t)rows) ||
        (rows && row_bytes > SIZE_MAX / (uint64_t)rows))
        return mq_error(MQ_ENOMEM, "cannot convert weights '%s': size overflows", name);
    /* a row at a time through f32 on each thread: memory stays at a row of floats per
     * thread (and the compensation's few rows of scratch) */
    if (u && !ft->is_quantized)
        u = NULL; /* 16-bit floats: nothing to compensate */
    struct convert_job j = {.type = type, .fmt = fmt, .src = src, .row_bytes = row_bytes, .n_in = n_in,
                            .rows = rows, .imp = imp, .u = u, .out = malloc(row_bytes * (size_t)rows + 1)};
    if ((rc = mq_dtype_row_bytes(type, n_in, &j.src_row_bytes)) < 0 || !j.out) {
        free(j.out);
        return rc < 0 ? rc
                      : mq_error(MQ_ENOMEM, "cannot convert weights '%s' (%lld x %lld)", name, (long long)rows,
                                 (long long)n_in);
    }
    atomic_init(&j.rc, MQ_OK);
    /* compensation costs O(n_in) per weight, plain rounding O(1) */
    convert_run(&j, (double)rows * (double)n_in * (u ? (double)n_in : 1.0));
    if ((rc = atomic_load(&j.rc)) < 0) { /* printed where it happened */
        free(j.out);
        return rc;
    }
    *data = j.out;
    *buf = j.out;
    return MQ_OK;
}
