/* core/dtype.h - the data types mixq stores weights in: one traits table, one row per type.
 *
 *     const struct mq_dtype_traits *t = mq_dtype_get(MQ_DTYPE_Q4_K);
 *     if (!mq_dtype_row_ok(MQ_DTYPE_Q4_K, n)) ...          // n % 256 != 0: not offered
 *     size_t bytes;
 *     if (mq_dtype_row_bytes(MQ_DTYPE_Q4_K, n, &bytes) < 0) ...
 *     t->quantize(src, blocks, rows, n, imp);  // llama-quantize's bytes; imp NULL: no imatrix
 *     t->to_f32(blocks, dst, rows * n);
 *
 * A format is one row of the table below and nothing else in core: its name, ggml type
 * number, block size and bytes, llama.cpp's file type for a file mostly of it, its
 * quantizer and dequantizer, the activation blocks its integer kernels multiply with, and
 * whether the search offers it by default. Backends keep a kernel table per format; the
 * rest of mixq reads this table.
 *
 * Every block layout below is bit for bit ggml's, and every quantizer gives ggml's bytes
 * from the same f32 input: `quantize` is ggml's quantize_<type>() (ggml-quants.c, the
 * function llama-quantize calls through ggml_quantize_chunk), with the importance weights
 * an imatrix gives (one per input column, quant_weights in ggml) or, with NULL, the plain
 * path llama-quantize takes without an imatrix (quantize_row_<type>_ref for every type but
 * IQ4_NL/IQ4_XS, whose plain path is their weighted search with x^2 weights). `from_f32`
 * is `quantize` without weights, over n elements. to_f32 is bit-exact with ggml's
 * dequantize_row_*. (core/dtype_quant.c, core/dtype_kquants.c and tests/unit/test_quant.c
 * say how that is checked.)
 *
 * Activation types: Q8_K (and Q8_0 itself) are the blocks ggml quantizes activations to
 * before an integer dot product with a weight row: Q8_0 for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
 * and IQ4_NL (ggml uses Q8_1, Q8_0 plus the block's sum, for the "_1" types: mixq keeps
 * the exact integer sum of the codes beside Q8_0 blocks instead of ggml's f16 d*sum), Q8_K
 * for the K-quants and IQ4_XS. Q8_K is in the table (from_f32 = ggml's
 * quantize_row_q8_K_ref) but is not a weight format.
 *
 * Names ("q4_k") and ggml type numbers reach files; enum values never do, so the enum
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
    MQ_DTYPE_Q4_1,
    MQ_DTYPE_Q5_0,
    MQ_DTYPE_Q5_1,
    MQ_DTYPE_Q2_K,
    MQ_DTYPE_Q3_K,
    MQ_DTYPE_Q4_K,
    MQ_DTYPE_Q5_K,
    MQ_DTYPE_Q6_K,
    MQ_DTYPE_IQ4_NL,
    MQ_DTYPE_IQ4_XS,
    MQ_DTYPE_Q8_K, /* activations of K-quant and IQ4_XS integer kernels; not a weight format */
    MQ_DTYPE_I32,  /* token ids and other integer tensors; not a weight format */
    MQ_DTYPE_COUNT
};
/* Format sets are bit masks of (1u << type) (search menus, layer choices). */
_Static_assert(MQ_DTYPE_COUNT <= 32, "format masks are 32-bit");

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

/* ---- the other legacy types: blocks of 32, codes split as in Q4_0 ---- */

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

/* ---- non-linear 4-bit: codes index a table of 16 int8 values ---- */

#define MQ_QK4_NL 32

/* ggml's kvalues_iq4nl: the value of each 4-bit code */
extern const int8_t mq_iq4nl_values[16];

/* Q4_0's nibble layout, values from the table: w[j] = d*values[qs[j]&15],
 * w[j+16] = d*values[qs[j]>>4]. */
struct mq_block_iq4_nl {
    uint16_t d;                /* f16 scale */
    uint8_t qs[MQ_QK4_NL / 2]; /* 4-bit codes: low nibbles elements 0..15, high 16..31 */
};
_Static_assert(sizeof(struct mq_block_iq4_nl) == 18, "iq4_nl block must be ggml's 18 bytes");

/* 256 weights in 8 sub-blocks of 32 with 6-bit scales ls (biased by 32):
 * w[e] = d*(ls[e/32] - 32)*values[code e], codes of sub-block i as in IQ4_NL at
 * qs[16i..16i+15]; ls[i] = (scales_l[i/2] >> 4*(i%2) & 15) | (scales_h >> 2i & 3) << 4. */
struct mq_block_iq4_xs {
    uint16_t d;               /* f16 super-block scale */
    uint16_t scales_h;        /* high 2 bits of the 8 scales */
    uint8_t scales_l[MQ_QK_K / 64]; /* low 4 bits of the 8 scales, two per byte */
    uint8_t qs[MQ_QK_K / 2];  /* 4-bit codes */
};
_Static_assert(sizeof(struct mq_block_iq4_xs) == 136, "iq4_xs block must be ggml's 136 bytes");

/* ---- activation blocks of K-quant kernels ---- */

/* 256 activations: x[e] ~ d*qs[e], d a float (not f16), bsums[i] = sum of qs[16i..16i+15].
 * ggml's quantize_row_q8_K_ref: the element of largest magnitude maps to -127. */
struct mq_block_q8_k {
    float d;
    int8_t qs[MQ_QK_K];
    int16_t bsums[MQ_QK_K / 16];
};
_Static_assert(sizeof(struct mq_block_q8_k) == 292, "q8_K block must be ggml's 292 bytes");

/* Converts n elements (n a multiple of block_elems) between the type and f32. */
typedef void (*mq_to_f32_fn)(const void *src, float *dst, int64_t n);
typedef void (*mq_from_f32_fn)(const float *src, void *dst, int64_t n);
/* Quantizes n_rows rows of n_per_row values (a multiple of block_elems) into n_rows rows
 * of blocks, as ggml's quantize_<type>(src, dst, nrow, n_per_row, quant_weights): imp holds
 * n_per_row importance weights (one per input column, the same for every row), or NULL. */
typedef void (*mq_quantize_fn)(const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                               const float *imp);

struct mq_dtype_traits {
    const char *name;      /* lower case, as in files and on the command line */
    uint32_t ggml_type;    /* the type number in GGUF files */
    int64_t block_elems;   /* elements per block (1 for plain types); a row's length must be
                              a multiple of it */
    size_t block_bytes;    /* bytes per block */
    bool is_quantized;     /* block-quantized with scales */
    bool is_plan_format;   /* a weight format mixq writes: a plan may choose it */
    bool is_activation;    /* an activation block type (q8_k): GGUF files may hold it (ggml
                              can), but never as a model's weights */
    bool search_default;   /* in the search's default menu (--formats changes it) */
    int llama_ftype;       /* llama.cpp's general.file_type of a file mostly of this type
                              (its loader's guess: Q4_K -> MOSTLY_Q4_K_M), -1: none */
    enum mq_dtype act_type; /* blocks its integer kernels quantize activations to (Q8_0,
                               Q8_K); F32 for the float formats */
    enum mq_dtype fallback; /* for rows that are not whole blocks: llama.cpp's fallback
                               (llama-quant.cpp tensor_type_fallback: q4_k -> q5_0, q5_k ->
                               q5_1, q6_k -> q8_0, q2_k/q3_k -> q4_0, iq4_xs -> iq4_nl), F16
                               where it has none (32-block types) or that does not fit */
    mq_to_f32_fn to_f32;   /* NULL: cannot be read as numbers (I32) */
    mq_from_f32_fn from_f32; /* NULL: mixq does not write this type */
    mq_quantize_fn quantize; /* NULL: mixq does not write this type */
};

/* The traits of `type`; MQ_ASSERTs that type is in range. Never NULL. */
const struct mq_dtype_traits *mq_dtype_get(enum mq_dtype type);

static inline const char *mq_dtype_name(enum mq_dtype type) { return mq_dtype_get(type)->name; }

/* Looks a type up by its name ("q8_0", case-insensitive) or its ggml number. Return 0 and
 * set *out, or MQ_ENOTFOUND without printing. */
int mq_dtype_from_name(const char *name, enum mq_dtype *out);
int mq_dtype_from_ggml(uint32_t ggml_type, enum mq_dtype *out);

/* Bytes of a row of n elements: MQ_EINVAL (printed) when n is not a multiple of the
 * block size, MQ_ENOMEM (printed) on overflow. */
int mq_dtype_row_bytes(enum mq_dtype type, int64_t n, size_t *bytes);

/* Whether rows of n elements can be stored in the type (n > 0, a whole number of blocks). */
bool mq_dtype_row_ok(enum mq_dtype type, int64_t n);

/* The format a row of n elements takes instead of `type` when n is not a whole number of
 * type's blocks, as llama-quantize falls back: type itself when it fits, else its fallback
 * row, else f16, else f32 (n odd... any n fits f32). */
enum mq_dtype mq_dtype_fallback_for_row(enum mq_dtype type, int64_t n);

/* The plan formats rows of n elements can take, as a mask of (1u << type). */
uint32_t mq_dtype_formats_for_row(int64_t n);

/* The search's default menu (search_default rows), as a mask of (1u << type). */
uint32_t mq_dtype_default_formats(void);

/* Parses a comma-separated list of plan format names ("f16,q8_0,q4_k") into a mask.
 * MQ_EINVAL, silent, with the reason in why[why_size] (naming the word and the plan
 * formats), on an unknown or non-plan name or an empty list. */
int mq_dtype_parse_formats(const char *list, uint32_t *mask, char *why, size_t why_size);

/* Converts `rows` rows of n_in values of `type` to `fmt` through f32 (dequantized with
 * to_f32, quantized with fmt's `quantize` and the importance weights imp[n_in], or NULL;
 * with u, the upper factor of the layer inputs' damped inverse Gram matrix [n_in][n_in]
 * (core/compensate.h), error-compensated a block at a time; NULL: each row plainly).
 * *buf receives malloc'd bytes (the caller frees them), or NULL when type == fmt: *data
 * then points at src itself (no requantization: a layer kept in its source format is its
 * bytes as shipped). The one conversion every plan uses, so what is measured is what is
 * written. Rows are independent: a conversion of over ~1 M weight-operations (rows x n_in,
 * times n_in with u) splits them over a process-wide pool with a thread per online CPU,
 * made on first use; the bytes are the same as row by row. Thread-safe: a conversion that
 * starts while another holds the pool runs on its caller alone. Errors (printed): a row
 * length fmt cannot take, out of memory; `name` names the tensor in them. */
int mq_convert_weights(const char *name, enum mq_dtype type, const void *src, int64_t n_in,
                       int64_t rows, enum mq_dtype fmt, const float *imp, const float *u,
                       const void **data, void **buf);

/* Quantizes the columns [s0, s0 + n) of a row[n_row] of f32 (s0 and n whole blocks of fmt)
 * into dst exactly as fmt's `quantize` quantizes them as part of the whole row: importance
 * weights imp[n_row] (or NULL) at the row's columns, and ggml's 32-block importance
 * quantizers' (q4_0, q4_1, q5_0, q5_1) mean square taken over the whole row. */
void mq_quantize_segment(enum mq_dtype fmt, const float *row, int64_t n_row, int64_t s0, int64_t n,
                         const float *imp, void *dst);

/* Storage bits per weight, e.g. 4.5 for Q4_0. */
double mq_dtype_bits_per_weight(enum mq_dtype type);

/* Writes the formats of a mask (every plan format when mask is 0) as "f16,q8_0,q4_0"
 * into buf (for messages and files), in table order. */
void mq_dtype_list_formats(uint32_t mask, char *buf, size_t size);
static inline void mq_dtype_list_plan_formats(char *buf, size_t size)
{
    mq_dtype_list_formats(0, buf, size);
}

#endif
