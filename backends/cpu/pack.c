/* backends/cpu/pack.c - ggml layout -> R-row interleaved groups (see kern.h). */
#include <string.h>

#include "backends/cpu/kern.h"
#include "core/fp16.h"
#include "core/status.h"

/* The layout of each block format; plain types are CPU_LAYOUT_NONE. */
static const enum cpu_layout layout_table[MQ_DTYPE_COUNT] = {
    [MQ_DTYPE_Q8_0] = CPU_LAYOUT_WORDS_D_HEAD, [MQ_DTYPE_Q4_0] = CPU_LAYOUT_Q4_0,
    [MQ_DTYPE_Q4_1] = CPU_LAYOUT_WORDS,        [MQ_DTYPE_Q5_0] = CPU_LAYOUT_WORDS_D_HEAD,
    [MQ_DTYPE_Q5_1] = CPU_LAYOUT_WORDS,        [MQ_DTYPE_Q2_K] = CPU_LAYOUT_WORDS,
    [MQ_DTYPE_Q3_K] = CPU_LAYOUT_WORDS_D_TAIL, [MQ_DTYPE_Q4_K] = CPU_LAYOUT_WORDS,
    [MQ_DTYPE_Q5_K] = CPU_LAYOUT_WORDS,        [MQ_DTYPE_Q6_K] = CPU_LAYOUT_WORDS_D_TAIL,
    [MQ_DTYPE_IQ4_NL] = CPU_LAYOUT_WORDS_D_HEAD, [MQ_DTYPE_IQ4_XS] = CPU_LAYOUT_WORDS,
};

enum cpu_layout cpu_layout_of(enum mq_dtype type)
{
    return (unsigned)type < MQ_DTYPE_COUNT ? layout_table[type] : CPU_LAYOUT_NONE;
}

/* The block bytes of every word layout must be what the layout says. */
_Static_assert(sizeof(struct mq_block_q8_0) % 4 == 2 && sizeof(struct mq_block_q5_0) % 4 == 2 &&
                   sizeof(struct mq_block_iq4_nl) % 4 == 2 && sizeof(struct mq_block_q3_k) % 4 == 2 &&
                   sizeof(struct mq_block_q6_k) % 4 == 2,
               "D_HEAD / D_TAIL blocks are 4m + 2 bytes");
_Static_assert(sizeof(struct mq_block_q4_1) % 4 == 0 && sizeof(struct mq_block_q5_1) % 4 == 0 &&
                   sizeof(struct mq_block_q2_k) % 4 == 0 && sizeof(struct mq_block_q4_k) % 4 == 0 &&
                   sizeof(struct mq_block_q5_k) % 4 == 0 && sizeof(struct mq_block_iq4_xs) % 4 == 0,
               "WORDS blocks are whole words");

size_t cpu_group_bytes(enum mq_dtype type, int64_t K, int rows)
{
    size_t R = (size_t)rows;
    const struct mq_dtype_traits *t = mq_dtype_get(type);
    switch (type) {
    case MQ_DTYPE_F32:
        return (size_t)K * R * 4;
    case MQ_DTYPE_F16:
        return (size_t)K * R * 2;
    case MQ_DTYPE_BF16:
        return rows == 1 ? (size_t)K * 2 : (size_t)((K + 1) / 2) * R * 4;
    default:
        if (layout_table[type] == CPU_LAYOUT_NONE || K % t->block_elems)
            return 0;
        return (size_t)(K / t->block_elems) * R * t->block_bytes;
    }
}

/* Element e of row r of a plain-typed source as raw bits (elem bytes wide). */
static void copy_elem(void *dst, const char *src, size_t row_bytes, int64_t r, int64_t k, size_t elem)
{
    memcpy(dst, src + (size_t)r * row_bytes + (size_t)k * elem, elem);
}

/* Offset in a block of B bytes of the f16 d a D_HEAD/D_TAIL layout keeps apart, and of the
 * first byte of its words. */
static void words_split(enum cpu_layout lay, size_t B, size_t *d_at, size_t *words_at, size_t *n_words)
{
    *d_at = lay == CPU_LAYOUT_WORDS_D_TAIL ? B - 2 : 0;
    *words_at = lay == CPU_LAYOUT_WORDS_D_HEAD ? 2 : 0;
    *n_words = (lay == CPU_LAYOUT_WORDS ? B : B - 2) / 4;
}

/* Row r's block (ggml bytes) into / out of group-block gb of R rows (word layouts). */
static void words_put(enum cpu_layout lay, size_t B, int R, int r, const char *blk, char *gb)
{
    size_t d_at, words_at, n_words;
    words_split(lay, B, &d_at, &words_at, &n_words);
    char *w = gb;
    if (lay != CPU_LAYOUT_WORDS) {
        memcpy(gb + (size_t)r * 2, blk + d_at, 2);
        w = gb + (size_t)R * 2;
    }
    for (size_t i = 0; i < n_words; i++)
        memcpy(w + (i * (size_t)R + (size_t)r) * 4, blk + words_at + 4 * i, 4);
}

static void words_get(enum cpu_layout lay, size_t B, int R, int r, const char *gb, char *blk)
{
    size_t d_at, words_at, n_words;
    words_split(lay, B, &d_at, &words_at, &n_words);
    const char *w = gb;
    if (lay != CPU_LAYOUT_WORDS) {
        memcpy(blk + d_at, gb + (size_t)r * 2, 2);
        w = gb + (size_t)R * 2;
    }
    for (size_t i = 0; i < n_words; i++)
        memcpy(blk + words_at + 4 * i, w + (i * (size_t)R + (size_t)r) * 4, 4);
}

static void q4_0_put(int R, int r, const struct mq_block_q4_0 *b, char *ob)
{
    memcpy(ob + (size_t)r * 2, &b->d, 2);
    uint8_t *qs = (uint8_t *)(ob + (size_t)R * 2);
    uint8_t code[32]; /* codes of weights 0..31 of the block */
    for (int j = 0; j < 16; j++) {
        code[j] = b->qs[j] & 15;
        code[j + 16] = b->qs[j] >> 4;
    }
    for (int t = 0; t < 4; t++)
        for (int j = 0; j < 4; j++)
            qs[((size_t)t * R + r) * 4 + j] = (uint8_t)(code[8 * t + j] | (code[8 * t + 4 + j] << 4));
}

static void q4_0_get(int R, int r, const char *ob, struct mq_block_q4_0 *b)
{
    memcpy(&b->d, ob + (size_t)r * 2, 2);
    const uint8_t *qs = (const uint8_t *)(ob + (size_t)R * 2);
    uint8_t code[32];
    for (int t = 0; t < 4; t++)
        for (int j = 0; j < 4; j++) {
            uint8_t byte = qs[((size_t)t * R + r) * 4 + j];
            code[8 * t + j] = byte & 15;
            code[8 * t + 4 + j] = byte >> 4;
        }
    for (int j = 0; j < 16; j++)
        b->qs[j] = (uint8_t)(code[j] | (code[j + 16] << 4));
}

void cpu_pack(enum mq_dtype type, const void *src_v, void *dst_v, int64_t K, int64_t N, int rows)
{
    const char *src = src_v;
    char *dst = dst_v;
    size_t gb = cpu_group_bytes(type, K, rows);
    int64_t n_groups = (N + rows - 1) / rows;
    memset(dst, 0, gb * (size_t)n_groups); /* padding rows stay zero (scale 0) */
    size_t row_bytes;
    MQ_ASSERT(mq_dtype_row_bytes(type, K, &row_bytes) == MQ_OK);
    if (rows == 1) {
        memcpy(dst, src, row_bytes * (size_t)N);
        return;
    }
    const struct mq_dtype_traits *tr = mq_dtype_get(type);
    enum cpu_layout lay = layout_table[type];
    for (int64_t g = 0; g < n_groups; g++) {
        char *out = dst + (size_t)g * gb;
        for (int r = 0; r < rows; r++) {
            int64_t n = g * rows + r;
            if (n >= N)
                break;
            const char *row = src + (size_t)n * row_bytes;
            switch (type) {
            case MQ_DTYPE_F32:
            case MQ_DTYPE_F16: {
                size_t e = type == MQ_DTYPE_F32 ? 4 : 2;
                for (int64_t k = 0; k < K; k++)
                    copy_elem(out + ((size_t)k * rows + r) * e, src, row_bytes, n, k, e);
                break;
            }
            case MQ_DTYPE_BF16:
                for (int64_t k = 0; k < K; k++)
                    copy_elem(out + (((size_t)(k / 2) * rows + r) * 2 + (size_t)(k % 2)) * 2, src,
                              row_bytes, n, k, 2);
                break;
            default: {
                MQ_ASSERT(lay != CPU_LAYOUT_NONE && "cpu_pack: unsupported type");
                size_t B = tr->block_bytes;
                for (int64_t blk = 0; blk < K / tr->block_elems; blk++) {
                    char *ob = out + (size_t)blk * (size_t)rows * B;
                    if (lay == CPU_LAYOUT_Q4_0)
                        q4_0_put(rows, r, (const struct mq_block_q4_0 *)(const void *)(row + (size_t)blk * B), ob);
                    else
                        words_put(lay, B, rows, r, row + (size_t)blk * B, ob);
                }
                break;
            }
            }
        }
    }
}

void cpu_unpack_row(enum mq_dtype type, const void *packed, int64_t K, int rows, int64_t n, float *out)
{
    size_t gb = cpu_group_bytes(type, K, rows);
    const char *g = (const char *)packed + (size_t)(n / rows) * gb;
    int r = (int)(n % rows);
    const struct mq_dtype_traits *tr = mq_dtype_get(type);
    if (rows == 1) {
        tr->to_f32(g, out, K);
        return;
    }
    switch (type) {
    case MQ_DTYPE_F32:
        for (int64_t k = 0; k < K; k++)
            memcpy(&out[k], g + ((size_t)k * rows + r) * 4, 4);
        break;
    case MQ_DTYPE_F16:
    case MQ_DTYPE_BF16:
        for (int64_t k = 0; k < K; k++) {
            uint16_t h;
            size_t at = type == MQ_DTYPE_F16 ? ((size_t)k * rows + r) * 2
                                             : (((size_t)(k / 2) * rows + r) * 2 + (size_t)(k % 2)) * 2;
            memcpy(&h, g + at, 2);
            out[k] = type == MQ_DTYPE_F16 ? mq_f16_to_f32(h) : mq_bf16_to_f32(h);
        }
        break;
    default: {
        enum cpu_layout lay = layout_table[type];
        MQ_ASSERT(lay != CPU_LAYOUT_NONE && "cpu_unpack_row: unsupported type");
        size_t B = tr->block_bytes;
        _Alignas(8) char blk[512]; /* one ggml block: the largest is 292 bytes (q8_K) */
        MQ_ASSERT(B <= sizeof(blk));
        for (int64_t b = 0; b < K / tr->block_elems; b++) {
            const char *ob = g + (size_t)b * (size_t)rows * B;
            if (lay == CPU_LAYOUT_Q4_0)
                q4_0_get(rows, r, ob, (struct mq_block_q4_0 *)(void *)blk);
            else
                words_get(lay, B, rows, r, ob, blk);
            tr->to_f32(blk, out + b * tr->block_elems, tr->block_elems);
        }
        break;
    }
    }
}
