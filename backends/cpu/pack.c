/* backends/cpu/pack.c - ggml layout -> R-row interleaved groups (see kern.h). */
#include <string.h>

#include "backends/cpu/kern.h"
#include "core/fp16.h"
#include "core/status.h"

size_t cpu_group_bytes(enum mq_dtype type, int64_t K, int rows)
{
    size_t R = (size_t)rows;
    switch (type) {
    case MQ_DTYPE_F32:
        return (size_t)K * R * 4;
    case MQ_DTYPE_F16:
        return (size_t)K * R * 2;
    case MQ_DTYPE_BF16:
        return rows == 1 ? (size_t)K * 2 : (size_t)((K + 1) / 2) * R * 4;
    case MQ_DTYPE_Q8_0:
        return (size_t)(K / 32) * R * sizeof(struct mq_block_q8_0);
    case MQ_DTYPE_Q4_0:
        return (size_t)(K / 32) * R * sizeof(struct mq_block_q4_0);
    default:
        return 0;
    }
}

/* Element e of row r of a plain-typed source as raw bits (elem bytes wide). */
static void copy_elem(void *dst, const char *src, size_t row_bytes, int64_t r, int64_t k, size_t elem)
{
    memcpy(dst, src + (size_t)r * row_bytes + (size_t)k * elem, elem);
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
            case MQ_DTYPE_Q8_0: {
                const struct mq_block_q8_0 *b = (const void *)row;
                for (int64_t blk = 0; blk < K / 32; blk++) {
                    char *ob = out + (size_t)blk * rows * sizeof(struct mq_block_q8_0);
                    memcpy(ob + (size_t)r * 2, &b[blk].d, 2);
                    int8_t *qs = (int8_t *)(ob + (size_t)rows * 2);
                    for (int q = 0; q < 8; q++)
                        memcpy(qs + ((size_t)q * rows + r) * 4, b[blk].qs + 4 * q, 4);
                }
                break;
            }
            case MQ_DTYPE_Q4_0: {
                const struct mq_block_q4_0 *b = (const void *)row;
                for (int64_t blk = 0; blk < K / 32; blk++) {
                    char *ob = out + (size_t)blk * rows * sizeof(struct mq_block_q4_0);
                    memcpy(ob + (size_t)r * 2, &b[blk].d, 2);
                    uint8_t *qs = (uint8_t *)(ob + (size_t)rows * 2);
                    uint8_t code[32]; /* codes of weights 0..31 of the block */
                    for (int j = 0; j < 16; j++) {
                        code[j] = b[blk].qs[j] & 15;
                        code[j + 16] = b[blk].qs[j] >> 4;
                    }
                    for (int t = 0; t < 4; t++)
                        for (int j = 0; j < 4; j++)
                            qs[((size_t)t * rows + r) * 4 + j] =
                                (uint8_t)(code[8 * t + j] | (code[8 * t + 4 + j] << 4));
                }
                break;
            }
            default:
                MQ_ASSERT(!"cpu_pack: unsupported type");
            }
        }
    }
}

void cpu_unpack_row(enum mq_dtype type, const void *packed, int64_t K, int rows, int64_t n, float *out)
{
    size_t gb = cpu_group_bytes(type, K, rows);
    const char *g = (const char *)packed + (size_t)(n / rows) * gb;
    int r = (int)(n % rows);
    if (rows == 1) {
        mq_dtype_get(type)->to_f32(g, out, K);
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
    case MQ_DTYPE_Q8_0:
        for (int64_t blk = 0; blk < K / 32; blk++) {
            const char *ob = g + (size_t)blk * rows * sizeof(struct mq_block_q8_0);
            uint16_t d;
            memcpy(&d, ob + (size_t)r * 2, 2);
            const int8_t *qs = (const int8_t *)(ob + (size_t)rows * 2);
            for (int j = 0; j < 32; j++)
                out[blk * 32 + j] = (float)qs[((size_t)(j / 4) * rows + r) * 4 + (size_t)(j % 4)] * mq_f16_to_f32(d);
        }
        break;
    case MQ_DTYPE_Q4_0:
        for (int64_t blk = 0; blk < K / 32; blk++) {
            const char *ob = g + (size_t)blk * rows * sizeof(struct mq_block_q4_0);
            uint16_t d;
            memcpy(&d, ob + (size_t)r * 2, 2);
            const uint8_t *qs = (const uint8_t *)(ob + (size_t)rows * 2);
            for (int j = 0; j < 32; j++) {
                int t = j / 8, hi = (j % 8) >= 4, jj = j % 4;
                uint8_t byte = qs[((size_t)t * rows + r) * 4 + (size_t)jj];
                int code = hi ? byte >> 4 : byte & 15;
                out[blk * 32 + j] = (float)(code - 8) * mq_f16_to_f32(d);
            }
        }
        break;
    default:
        MQ_ASSERT(!"cpu_unpack_row: unsupported type");
    }
}
