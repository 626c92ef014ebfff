/* backends/cuda/layout_pack.h - ggml blocks to the cuda plugin's device layouts (layout.h)
 * and back, on the host.
 *
 *     enum cu_wtype wt = cu_wtypes[MQ_DTYPE_Q4_K].wt;
 *     cu_layout_pack(wt, ggml_blocks, planes, K, N);    // at upload: N*K/256 blocks -> planes
 *     cu_layout_unpack(wt, planes, ggml_blocks, K, N);  // the inverse (tests)
 *
 * Both buffers have the matrix's ggml size (N * row bytes); they must not overlap. Fields
 * that layout.h keeps verbatim (scales, d, and codes already in Q4_0's nibble order) are
 * copied; codes in other orders are moved weight by weight, each weight's bits found by a
 * position rule taken from core/dtype.h's block comments (below), and put at the weight's
 * place in its 32-weight slice. Every bit of a ggml block is in exactly one field, so
 * unpack(pack(x)) == x for any bytes (tests/unit/test_cuda_layout.c checks that, and that
 * the kernels' decoding of the packed planes gives core's to_f32 bit for bit).
 *
 * C only (core/dtype.h): plugin.c and the tests include it; the kernels see layout.h alone.
 * Dependency rule: the plugin depends on core/ and the CUDA toolkit only.
 */
#ifndef MQ_BACKENDS_CUDA_LAYOUT_PACK_H
#define MQ_BACKENDS_CUDA_LAYOUT_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backends/cuda/layout.h"
#include "core/dtype.h"
#include "core/status.h"

/* Weight formats with cuda kernels, and the kernels' name for each. */
static const struct {
    bool ok;
    enum cu_wtype wt;
} cu_wtypes[MQ_DTYPE_COUNT] = {
    [MQ_DTYPE_F32] = {true, CU_W_F32},       [MQ_DTYPE_F16] = {true, CU_W_F16},
    [MQ_DTYPE_BF16] = {true, CU_W_BF16},     [MQ_DTYPE_Q8_0] = {true, CU_W_Q8_0},
    [MQ_DTYPE_Q4_0] = {true, CU_W_Q4_0},     [MQ_DTYPE_Q4_1] = {true, CU_W_Q4_1},
    [MQ_DTYPE_Q5_0] = {true, CU_W_Q5_0},     [MQ_DTYPE_Q5_1] = {true, CU_W_Q5_1},
    [MQ_DTYPE_IQ4_NL] = {true, CU_W_IQ4_NL}, [MQ_DTYPE_Q2_K] = {true, CU_W_Q2_K},
    [MQ_DTYPE_Q3_K] = {true, CU_W_Q3_K},     [MQ_DTYPE_Q4_K] = {true, CU_W_Q4_K},
    [MQ_DTYPE_Q5_K] = {true, CU_W_Q5_K},     [MQ_DTYPE_Q6_K] = {true, CU_W_Q6_K},
    [MQ_DTYPE_IQ4_XS] = {true, CU_W_IQ4_XS},
};

/* Where weight e of a ggml block keeps a field: byte `byte` of the field's array, bits from
 * `shift` (the field's width is the plane's: 4, 1 or 2). */
struct cu_bitpos {
    uint8_t byte, shift;
};
typedef struct cu_bitpos (*cu_pos_fn)(int e);

/* q5_0/q5_1 qh: bit e of the little-endian u32 */
static inline struct cu_bitpos cu_pos_q5_qh(int e)
{
    return (struct cu_bitpos){(uint8_t)(e / 8), (uint8_t)(e % 8)};
}
/* q2_k/q3_k qs: bits 2*((e%128)/32) of qs[32*(e/128) + e%32] */
static inline struct cu_bitpos cu_pos_k_2bit(int e)
{
    return (struct cu_bitpos){(uint8_t)(32 * (e / 128) + e % 32), (uint8_t)(2 * (e % 128 / 32))};
}
/* q3_k hmask, q5_k qh: bit e/32 of byte e%32 */
static inline struct cu_bitpos cu_pos_k_hbit(int e)
{
    return (struct cu_bitpos){(uint8_t)(e % 32), (uint8_t)(e / 32)};
}
/* q4_k/q5_k qs: chunk e/64 holds its first 32 weights in the low nibbles of
 * qs[32*(e/64) ..], the next 32 in the high nibbles */
static inline struct cu_bitpos cu_pos_k_nib(int e)
{
    return (struct cu_bitpos){(uint8_t)(32 * (e / 64) + e % 32), (uint8_t)(4 * (e / 32 % 2))};
}
/* q6_k ql: half h = e/128, quarter k = (e%128)/32: the (k < 2 ? low : high) nibble of
 * ql[64h + 32*(k&1) + e%32] */
static inline struct cu_bitpos cu_pos_q6_low(int e)
{
    int k = e % 128 / 32;
    return (struct cu_bitpos){(uint8_t)(64 * (e / 128) + 32 * (k & 1) + e % 32),
                              (uint8_t)(4 * (k >> 1))};
}
/* q6_k qh: bits 2k of qh[32h + e%32] */
static inline struct cu_bitpos cu_pos_q6_high(int e)
{
    return (struct cu_bitpos){(uint8_t)(32 * (e / 128) + e % 32), (uint8_t)(2 * (e % 128 / 32))};
}

/* For each format: the ggml offsets of the fields that fill each plane, and the position
 * rule for code fields not in the plane's order (NULL: copied verbatim). */
struct cu_pack_desc {
    uint16_t codes_at, h2_at, h1_at, scales_at, d_at;
    cu_pos_fn codes_pos, h2_pos, h1_pos;
};

static const struct cu_pack_desc cu_pack_descs[CU_W_COUNT] = {
    [CU_W_Q8_0] = {.codes_at = offsetof(struct mq_block_q8_0, qs),
                   .d_at = offsetof(struct mq_block_q8_0, d)},
    [CU_W_Q4_0] = {.codes_at = offsetof(struct mq_block_q4_0, qs),
                   .d_at = offsetof(struct mq_block_q4_0, d)},
    [CU_W_Q4_1] = {.codes_at = offsetof(struct mq_block_q4_1, qs),
                   .d_at = offsetof(struct mq_block_q4_1, d)},
    [CU_W_Q5_0] = {.codes_at = offsetof(struct mq_block_q5_0, qs),
                   .h1_at = offsetof(struct mq_block_q5_0, qh),
                   .h1_pos = cu_pos_q5_qh,
                   .d_at = offsetof(struct mq_block_q5_0, d)},
    [CU_W_Q5_1] = {.codes_at = offsetof(struct mq_block_q5_1, qs),
                   .h1_at = offsetof(struct mq_block_q5_1, qh),
                   .h1_pos = cu_pos_q5_qh,
                   .d_at = offsetof(struct mq_block_q5_1, d)},
    [CU_W_IQ4_NL] = {.codes_at = offsetof(struct mq_block_iq4_nl, qs),
                     .d_at = offsetof(struct mq_block_iq4_nl, d)},
    [CU_W_Q2_K] = {.h2_at = offsetof(struct mq_block_q2_k, qs),
                   .h2_pos = cu_pos_k_2bit,
                   .scales_at = offsetof(struct mq_block_q2_k, scales),
                   .d_at = offsetof(struct mq_block_q2_k, d)},
    [CU_W_Q3_K] = {.h2_at = offsetof(struct mq_block_q3_k, qs),
                   .h2_pos = cu_pos_k_2bit,
                   .h1_at = offsetof(struct mq_block_q3_k, hmask),
                   .h1_pos = cu_pos_k_hbit,
                   .scales_at = offsetof(struct mq_block_q3_k, scales),
                   .d_at = offsetof(struct mq_block_q3_k, d)},
    [CU_W_Q4_K] = {.codes_at = offsetof(struct mq_block_q4_k, qs),
                   .codes_pos = cu_pos_k_nib,
                   .scales_at = offsetof(struct mq_block_q4_k, scales),
                   .d_at = offsetof(struct mq_block_q4_k, d)},
    [CU_W_Q5_K] = {.codes_at = offsetof(struct mq_block_q5_k, qs),
                   .codes_pos = cu_pos_k_nib,
                   .h1_at = offsetof(struct mq_block_q5_k, qh),
                   .h1_pos = cu_pos_k_hbit,
                   .scales_at = offsetof(struct mq_block_q5_k, scales),
                   .d_at = offsetof(struct mq_block_q5_k, d)},
    [CU_W_Q6_K] = {.codes_at = offsetof(struct mq_block_q6_k, ql),
                   .codes_pos = cu_pos_q6_low,
                   .h2_at = offsetof(struct mq_block_q6_k, qh),
                   .h2_pos = cu_pos_q6_high,
                   .scales_at = offsetof(struct mq_block_q6_k, scales),
                   .d_at = offsetof(struct mq_block_q6_k, d)},
    [CU_W_IQ4_XS] = {.codes_at = offsetof(struct mq_block_iq4_xs, qs),
                     .scales_at = offsetof(struct mq_block_iq4_xs, scales_l),
                     .d_at = offsetof(struct mq_block_iq4_xs, d)},
};
/* the 4-byte d planes take ggml's two adjacent 16-bit fields: (d, m), (d, dmin) and iq4_xs's
 * (d, scales_h) */
_Static_assert(offsetof(struct mq_block_q4_1, m) == 2 && offsetof(struct mq_block_q5_1, m) == 2 &&
                   offsetof(struct mq_block_q2_k, dmin) == offsetof(struct mq_block_q2_k, d) + 2 &&
                   offsetof(struct mq_block_q4_k, dmin) == 2 &&
                   offsetof(struct mq_block_q5_k, dmin) == 2 &&
                   offsetof(struct mq_block_iq4_xs, scales_h) == 2,
               "d-plane pairs must be adjacent in ggml's blocks");

/* Weight i (0..31) of a slice's fields in the device planes (layout.h). */
static inline struct cu_bitpos cu_dev_nib(int i)
{
    return (struct cu_bitpos){(uint8_t)(i % 16), (uint8_t)(4 * (i / 16))};
}
static inline struct cu_bitpos cu_dev_bit2(int i)
{
    return (struct cu_bitpos){(uint8_t)(4 * (i / 16) + i % 4), (uint8_t)(2 * (i % 16 / 4))};
}
static inline struct cu_bitpos cu_dev_bit1(int i)
{
    return (struct cu_bitpos){(uint8_t)(i % 4), (uint8_t)(i / 4)};
}

/* One plane of code fields of one format, as a gather: byte i of the target (a device
 * plane's bytes of one block, or the ggml array's) is the OR of the fields src[i][k]
 * (k = 0 .. 8/width-1) of the source, field k at bits k*width. Both layouts pack fields
 * into whole bytes, so every target byte is written and nothing else is read. */
struct cu_gather {
    struct cu_bitpos src[MQ_QK_K / 2][8];
    int n_bytes, width;
};

/* Builds the gather of a plane for `elems` weights; the position rules must put exactly one
 * field in every slot of the target bytes (MQ_ASSERTed: a wrong rule is a programmer bug). */
static inline void cu_gather_init(struct cu_gather *g, int elems, cu_pos_fn ggml_pos,
                                  cu_pos_fn dev_pos, int width, int slice_bytes, bool to_device)
{
    g->n_bytes = elems * width / 8;
    g->width = width;
    uint8_t set[MQ_QK_K / 2][8] = {{0}};
    for (int e = 0; e < elems; e++) {
        struct cu_bitpos gp = ggml_pos(e), dp = dev_pos(e % 32);
        dp.byte = (uint8_t)(dp.byte + slice_bytes * (e / 32));
        struct cu_bitpos from = to_device ? gp : dp, to = to_device ? dp : gp;
        MQ_ASSERT(to.byte < g->n_bytes && to.shift % width == 0 && to.shift < 8);
        MQ_ASSERT(from.byte < g->n_bytes && from.shift % width == 0 && from.shift < 8);
        MQ_ASSERT(!set[to.byte][to.shift / width]++);
        g->src[to.byte][to.shift / width] = from;
    }
}

static inline void cu_gather_run(const struct cu_gather *g, const uint8_t *in, uint8_t *out)
{
    const int per_byte = 8 / g->width;
    const unsigned mask = (1u << g->width) - 1;
    for (int i = 0; i < g->n_bytes; i++) {
        unsigned v = 0;
        for (int k = 0; k < per_byte; k++) {
            struct cu_bitpos p = g->src[i][k];
            v |= ((unsigned)in[p.byte] >> p.shift & mask) << (k * g->width);
        }
        out[i] = (uint8_t)v;
    }
}

/* ggml blocks <-> planes; to_device says which way. */
static inline void cu_layout_convert(enum cu_wtype t, uint8_t *ggml, uint8_t *dev, int64_t K,
                                     int64_t N, bool to_device)
{
    const struct cu_format f = cu_formats[t];
    const struct cu_pack_desc *pd = &cu_pack_descs[t];
    const int E = f.block_elems;
    const size_t n_blocks = (size_t)(K / E) * (size_t)N;
    struct cu_wplanes p = cu_planes(t, dev, K, N);
    uint8_t *codes = (uint8_t *)(uintptr_t)p.codes, *h2 = (uint8_t *)(uintptr_t)p.h2;
    uint8_t *h1 = (uint8_t *)(uintptr_t)p.h1, *scales = (uint8_t *)(uintptr_t)p.scales;
    uint8_t *d = (uint8_t *)(uintptr_t)p.d;
    /* code fields not in the device's order: codes (nibbles), h2, h1 */
    struct cu_gather *gc = NULL, *g2 = NULL, *g1 = NULL, gathers[3];
    if (pd->codes_pos)
        cu_gather_init(gc = &gathers[0], E, pd->codes_pos, cu_dev_nib, 4, 16, to_device);
    if (pd->h2_pos)
        cu_gather_init(g2 = &gathers[1], E, pd->h2_pos, cu_dev_bit2, 2, 8, to_device);
    if (pd->h1_pos)
        cu_gather_init(g1 = &gathers[2], E, pd->h1_pos, cu_dev_bit1, 1, 4, to_device);
    for (size_t b = 0; b < n_blocks; b++) {
        uint8_t *g = ggml + b * (size_t)f.block_bytes;
        if (f.codes) {
            uint8_t *dc = codes + b * (size_t)f.codes;
            if (gc)
                cu_gather_run(gc, to_device ? g + pd->codes_at : dc,
                              to_device ? dc : g + pd->codes_at);
            else if (to_device)
                memcpy(dc, g + pd->codes_at, (size_t)f.codes);
            else
                memcpy(g + pd->codes_at, dc, (size_t)f.codes);
        }
        if (f.h2) {
            uint8_t *dh = h2 + b * (size_t)f.h2;
            cu_gather_run(g2, to_device ? g + pd->h2_at : dh, to_device ? dh : g + pd->h2_at);
        }
        if (f.h1) {
            uint8_t *dh = h1 + b * (size_t)f.h1;
            cu_gather_run(g1, to_device ? g + pd->h1_at : dh, to_device ? dh : g + pd->h1_at);
        }
        if (f.scales) {
            uint8_t *ds = scales + b * (size_t)f.scales;
            memcpy(to_device ? ds : g + pd->scales_at, to_device ? g + pd->scales_at : ds,
                   (size_t)f.scales);
        }
        uint8_t *dd = d + b * (size_t)f.d;
        memcpy(to_device ? dd : g + pd->d_at, to_device ? g + pd->d_at : dd, (size_t)f.d);
    }
}

/* src: N rows of K weights in ggml blocks of format t (a block format); dst: the device
 * layout, the same number of bytes. */
static inline void cu_layout_pack(enum cu_wtype t, const void *src, void *dst, int64_t K, int64_t N)
{
    cu_layout_convert(t, (uint8_t *)(uintptr_t)src, dst, K, N, true);
}

/* The inverse of cu_layout_pack. */
static inline void cu_layout_unpack(enum cu_wtype t, const void *src, void *dst, int64_t K,
                                    int64_t N)
{
    cu_layout_convert(t, dst, (uint8_t *)(uintptr_t)src, K, N, false);
}

#endif
