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
