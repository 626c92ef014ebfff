/* core/dtype.h - the data types mixq stores weights in, one traits table for all.
 *
 *     const struct mq_dtype_traits *t = mq_dtype_get(MQ_DTYPE_Q4_0);
 *     size_t bytes;
 *     if (mq_dtype_row_bytes(MQ_DTYPE_Q4_0, n, &bytes) < 0) ...   // n % 32 != 0
 *     t->from_f32(src, blocks, n);       // reference quantization, bit-exact with ggml
 *     t->to_f32(blocks, dst, n);
 *
 * Q8_0 and Q4_0 are bit-for-bit ggml's block layouts (so a plan can be written as a GGUF
 * file that llama.cpp runs): Q8_0 is 32 weights as one f16 scale d and 32 int8 q with
 * w = d*q; Q4_0 is 32 weights as one f16 scale and 16 bytes of 4-bit codes, low nibbles
 * holding elements 0..15 and high nibbles 16..31, with w = d*(code - 8).
 *
 * Source-only types: Q4_1, Q5_0, Q5_1 (blocks of 32) and the K-quants Q2_K, Q3_K, Q4_K,
 * Q5_K, Q6_K (super-blocks of 256) are read so that published GGUF files load; to_f32
 * is bit-exact with ggml's dequantize_row_* (tests/unit/test_quant_src.c checks it on
 * blocks written by llama-quantize). mixq never writes them (from_f32 NULL) and a plan
 * cannot choose them. The struct comments below give each element's bits; "element e"
 * counts from 0 within its block or super-block.
 *
 * Names ("q4_0") and ggml type numbers reach files; enum values never do, so the enum
 * may be reordered but the table's name and ggml_type fields must never change.
 *
 * Dependency rule: core/ depends on nothing but libc.
 */
#ifndef MQ_CORE_DTYPE_H
#define MQ_CORE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mq_dtype {
    MQ_DTYPE_F32,
    MQ_DTYPE_F16,
    MQ_DTYPE_BF16,
    MQ_DTYPE_Q8_0,
    MQ_DTYPE_Q4_0,
    MQ_DTYPE_Q4_1, /* Q4_1 .. Q6_K: read from files only, never written */
    MQ_DTYPE_Q5_0,
    MQ_DTYPE_Q5_1,
    MQ_DTYPE_Q2_K,
    MQ_DTYPE_Q3_K,
    MQ_DTYPE_Q4_K,
    MQ_DTYPE_Q5_K,
    MQ_DTYPE_Q6_K,
    MQ_DTYPE_I32, /* token ids and other integer tensors; not a weight format */
    MQ_DTYPE_COUNT
};

#define MQ_QK8_0 32
#define MQ_QK4_0 32

struct mq_block_q8_0 {
    uint16_t d;          /* f16 scale */
    int8_t qs[MQ_QK8_0]; /* w[i] = d * qs[i] */
};
_Static_assert(sizeof(struct mq_block_q8_0) == 34, "q8_0 block must be ggml's 34 bytes");

struct mq_block_q4_0 {
    uint16_t d;               /* f16 scale */
    uint8_t qs[MQ_QK4_0 / 2]; /* w[j] = d*((qs[j]&15)-8), w[j+16] = d*((qs[j]>>4)-8) */
};
_Static_assert(sizeof(struct mq_block_q4_0) == 18, "q4_0 block must be ggml's 18 bytes");

/* ---- legacy source-only types: blocks of 32, codes split as in Q4_0 ---- */

#define MQ_QK4_1 32
#define MQ_QK5_0 32
#define MQ_QK5_1 32

/* Like Q4_0 but unsigned codes and an offset: w[j] = (qs[j]&15)*d + m,
 * w[j+16] = (qs[j]>>4)*d + m. */
struct mq_block_q4_1 {
    uint16_t d;               /* f16 scale */
    uint16_t m;               /* f16 offset (the block's minimum) */
    uint8_t qs[MQ_QK4_1 / 2]; /* 4-bit codes: low nibbles elements 0..15, high 16..31 */
};
_Static_assert(sizeof(struct mq_block_q4_1) == 20, "q4_1 block must be ggml's 20 bytes");

/* 5-bit codes c in 0..31: the low 4 bits as in Q4_0, bit 4 of element e in bit e of the
 * little-endian u32 qh. w[e] = (c[e] - 16)*d. */
struct mq_block_q5_0 {
    uint16_t d;               /* f16 scale */
    uint8_t qh[4];            /* bit 4 of each code, element e at bit e (little-endian) */
    uint8_t qs[MQ_QK5_0 / 2]; /* low 4 bits: low nibbles elements 0..15, high 16..31 */
};
_Static_assert(sizeof(struct mq_block_q5_0) == 22, "q5_0 block must be ggml's 22 bytes");

/* Q5_0's codes without the bias, plus an offset: w[e] = c[e]*d + m. */
struct mq_block_q5_1 {
    uint16_t d;               /* f16 scale */
    uint16_t m;               /* f16 offset */
    uint8_t qh[4];            /* bit 4 of each code, element e at bit e (little-endian) */
    uint8_t qs[MQ_QK5_1 / 2]; /* low 4 bits: low nibbles elements 0..15, high 16..31 */
};
_Static_assert(sizeof(struct mq_block_q5_1) == 24, "q5_1 block must be ggml's 24 bytes");

/* ---- K-quants: super-blocks of 256 weights in 16 sub-blocks of 16 or 8 of 32 ----
 *
 * Each sub-block has a small integer scale (and for the "_1"-like types a min), which the
 * super-block's f16 d (and dmin) scale: w = (d*sc)*q - (dmin*mn). Codes of 2 or 3 bits
 * are interleaved in 128-element halves: within half h (elements 128h..128h+127), quarter
 * k = (e%128)/32 sits at bits 2k..2k+1 of qs[32h + e%32]. */

#define MQ_QK_K 256

/* 2-bit codes q in 0..3; 16 sub-blocks of 16, each with a 4-bit scale and 4-bit min:
 * w[e] = (d*(scales[e/16] & 15)) * q[e] - dmin*(scales[e/16] >> 4), where
 * q[e] = (qs[32*(e/128) + e%32] >> (2*((e%128)/32))) & 3. */
struct mq_block_q2_k {
    uint8_t scales[MQ_QK_K / 16]; /* low nibble: scale, high nibble: min of sub-block e/16 */
    uint8_t qs[MQ_QK_K / 4];      /* 2-bit codes, interleaved as above */
    uint16_t d;                   /* f16 super-block scale of the scales */
    uint16_t dmin;                /* f16 super-block scale of the mins */
};
_Static_assert(sizeof(struct mq_block_q2_k) == 84, "q2_K block must be ggml's 84 bytes");

/* 3-bit signed codes: Q2_K's 2-bit q[e] plus a high bit in hmask, subtracting 4 when the
 * bit is clear: w[e] = (d*(s[e/16] - 32)) * (q[e] - (hbit ? 0 : 4)), with
 * hbit = hmask[e%32] >> (e/32) & 1 and s[] sixteen 6-bit scales packed in 12 bytes:
 * s[i] low 4 bits = i < 8 ? scales[i] & 15 : scales[i-8] >> 4,
 * s[i] high 2 bits = (scales[8 + i%4] >> (2*(i/4))) & 3. No min. */
struct mq_block_q3_k {
    uint8_t hmask[MQ_QK_K / 8]; /* high bit of element e: bit e/32 of byte e%32 */
    uint8_t qs[MQ_QK_K / 4];    /* low 2 bits, interleaved as in Q2_K */
    uint8_t scales[12];         /* 16 6-bit scales, biased by 32 */
    uint16_t d;                 /* f16 super-block scale */
};
_Static_assert(sizeof(struct mq_block_q3_k) == 110, "q3_K block must be ggml's 110 bytes");

/* The 6-bit scale and min of sub-block i (0..7) of Q4_K and Q5_K, packed in 12 bytes:
 * i < 4: sc = scales[i] & 63, mn = scales[i+4] & 63;
 * i >= 4: sc = (scales[i+4] & 15) | (scales[i-4] >> 6) << 4,
 *         mn = (scales[i+4] >> 4) | (scales[i] >> 6) << 4. */
#define MQ_K_SCALE_BYTES 12

/* 4-bit codes; 8 sub-blocks of 32: w[e] = (d*sc[e/32]) * q[e] - dmin*mn[e/32], where
 * chunk c = e/64 holds its first 32 elements in the low nibbles of qs[32c..32c+31] and
 * the next 32 in the high nibbles. */
struct mq_block_q4_k {
    uint16_t d;                        /* f16 super-block scale of the scales */
    uint16_t dmin;                     /* f16 super-block scale of the mins */
    uint8_t scales[MQ_K_SCALE_BYTES];  /* 6-bit scales and mins, packed as above */
    uint8_t qs[MQ_QK_K / 2];           /* 4-bit codes, nibbles as above */
};
_Static_assert(sizeof(struct mq_block_q4_k) == 144, "q4_K block must be ggml's 144 bytes");

/* Q4_K plus a fifth bit: q[e] = nibble + 16*(qh[e%32] >> (e/32) & 1). */
struct mq_block_q5_k {
    uint16_t d;                        /* f16 super-block scale of the scales */
    uint16_t dmin;                     /* f16 super-block scale of the mins */
    uint8_t scales[MQ_K_SCALE_BYTES];  /* 6-bit scales and mins, packed as in Q4_K */
    uint8_t qh[MQ_QK_K / 8];           /* bit 4 of element e: bit e/32 of byte e%32 */
    uint8_t qs[MQ_QK_K / 2];           /* low 4 bits, nibbles as in Q4_K */
};
_Static_assert(sizeof(struct mq_block_q5_k) == 176, "q5_K block must be ggml's 176 bytes");

/* 6-bit codes biased by 32; 16 sub-blocks of 16 with int8 scales: w[e] = (d*scales[e/16])
 * * (q[e] - 32). In half h, quarter k = (e%128)/32, l = e%32: the low 4 bits are the
 * (k < 2 ? low : high) nibble of ql[64h + 32*(k&1) + l], the high 2 bits are bits 2k..2k+1
 * of qh[32h + l]. */
struct mq_block_q6_k {
    uint8_t ql[MQ_QK_K / 2];     /* low 4 bits */
    uint8_t qh[MQ_QK_K / 4];     /* high 2 bits */
    int8_t scales[MQ_QK_K / 16]; /* signed scale of sub-block e/16 */
    uint16_t d;                  /* f16 super-block scale */
};
_Static_assert(sizeof(struct mq_block_q6_k) == 210, "q6_K block must be ggml's 210 bytes");

/* Converts n elements (n a multiple of block_elems) between the type and f32. */
typedef void (*mq_to_f32_fn)(const void *src, float *dst, int64_t n);
typedef void (*mq_from_f32_fn)(const float *src, void *dst, int64_t n);

struct mq_dtype_traits {
    const char *name;      /* lower case, as in files and on the command line */
    uint32_t ggml_type;    /* the type number in GGUF files */
    int64_t block_elems;   /* elements per block (1 for plain types) */
    size_t block_bytes;    /* bytes per block */
    bool is_quantized;     /* block-quantized with scales */
    bool is_plan_format;   /* may be chosen for a layer by a plan */
    mq_to_f32_fn to_f32;   /* NULL: cannot be read as numbers (I32) */
    mq_from_f32_fn from_f32; /* NULL: mixq does not write this type */
};

/* The traits of `type`; MQ_ASSERTs that type is in range. Never NULL. */
const struct mq_dtype_traits *mq_dtype_get(enum mq_dtype type);

static inline const char *mq_dtype_name(enum mq_dtype type) { return mq_dtype_get(type)->name; }

/* Looks a type up by its name ("q8_0", case-insensitive) or its ggml number.
 * Return 0 and set *out, or MQ_ENOTFOUND without printing. */
int mq_dtype_from_name(const char *name, enum mq_dtype *out);
int mq_dtype_from_ggml(uint32_t ggml_type, enum mq_dtype *out);

/* Bytes of a row of n elements: MQ_EINVAL (printed) when n is not a multiple of the
 * block size, MQ_ENOMEM (printed) on overflow. */
int mq_dtype_row_bytes(enum mq_dtype type, int64_t n, size_t *bytes);

/* Storage bits per weight, e.g. 4.5 for Q4_0. */
double mq_dtype_bits_per_weight(enum mq_dtype type);

/* Writes the plan formats as "f32,f16,bf16,q8_0,q4_0" into buf (for messages). */
void mq_dtype_list_plan_formats(char *buf, size_t size);

#endif
