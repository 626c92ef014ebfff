/* backends/cpu/kern.h - the cpu backend's kernel table: one per instruction-set path.
 *
 * Internal to the host backends: backends/cpu (x86) and backends/neon (aarch64). cpu.c
 * picks one table at open (from CPUID, or from MIXQ_CPU_ISA), neon.c likewise (from
 * HWCAP, or MIXQ_NEON_PATH), and both call only through it, by way of the shared op
 * drivers in ops.h. Each path lives in its own file, compiled with that path's -m/-march
 * flags, so the binary runs on any CPU of the architecture and uses what the CPU has.
 *
 * Weight layouts (made once by cpu_pack() at upload, never per call). With R rows per
 * group (R = kern->rows: 1 scalar, 8 avx2 and neon, 16 avx512), the N rows of a [K, N] matrix
 * are cut into ceil(N/R) groups, the last one padded with zero rows, and each group is
 * stored so that one vector load holds the same position of R rows:
 *
 *   f32   group: K x R floats, k-major ([k][r])
 *   f16   group: K x R halves, k-major
 *   bf16  group: ceil(K/2) x R x 2 bfloat16 ([k/2][r][k%2]): each 32-bit lane holds a
 *         (k, k+1) pair of one row, as AVX512-BF16's dot instruction wants
 *   q4_0  group: for each block: R f16 scales, then 4 x (R x 4) bytes; byte (t, r, j)
 *         holds codes 0..15 of row r: low nibble weight 8t+j, high nibble weight 8t+4+j
 *         (low nibbles of vector t are quad 2t, high nibbles quad 2t+1)
 *   every other block format: the group's rows are stored block by block (K / block_elems
 *         group-blocks of R * block_bytes bytes), and within a group-block the R rows'
 *         blocks are transposed at 4-byte granularity ("words"): word w of the block
 *         (its bytes 4w..4w+3) of row r is at [w][r][4], so one vector load of R x 4 bytes
 *         holds the same word of R rows. A block of 4m + 2 bytes has one f16 scale d
 *         that does not fit a word: the R rows' d come first as R halves ([r][2]), then the
 *         words of the other bytes. CPU_LAYOUT_WORDS_D_HEAD: d is the block's first 2
 *         bytes (q8_0, q5_0, iq4_nl), CPU_LAYOUT_WORDS_D_TAIL: its last 2 (q3_k, q6_k),
 *         CPU_LAYOUT_WORDS: no such d (4m-byte blocks: q4_1, q5_1, q2_k, q4_k, q5_k,
 *         iq4_xs; their f16 pairs such as (d, dmin) are a word). So for q8_0 the words
 *         are its 8 quads of 4 codes; for q4_k word 0 is (d, dmin), words 1..3 the packed
 *         scales, words 4..35 qs; for q6_k (D_TAIL) words 0..31 ql, 32..47 qh, 48..51
 *         scales. cpu_layout_of() gives each format's layout.
 *
 * R = 1 is ggml's own layout for every format (blocks of a row contiguous), which the
 * scalar path uses. Bytes per weight are those of the format (plus the padding rows).
 *
 * Activations for integer paths are quantized per column (token) to the blocks ggml
 * quantizes them to for the weight's format (core/dtype.h act_type), with ggml's rules:
 *   Q8_0 (q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl): blocks of 32, d = amax/127 rounded to f16;
 *        xd [M][K/32] holds d as f32, xs [M][K/32] the sum of the block's codes (Q4_0's
 *        "- 8 * sum(x)" correction, the _1 types' min term: ggml's Q8_1 without rounding
 *        d*sum to f16)
 *   Q8_K (q2_k .. q6_k, iq4_xs): blocks of 256, d = 1/iscale with iscale = -127/max (the
 *        largest-magnitude element maps to -127), as an f32; xd [M][K/256], xs [M][K/16]
 *        the sum of each 16 codes (ggml's bsums)
 * and both carry the codes xq [M][K] and, for kernels that want unsigned bytes (VNNI),
 * u8 copies xu = xq + 128.
 *
 * Dependency rule: backends/ depends on core/ only.
 */
#ifndef MQ_BACKENDS_CPU_KERN_H
#define MQ_BACKENDS_CPU_KERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

/* Activations of one matmul, prepared once per call. */
struct cpu_act {
    const float *x;   /* [M][K] f32 */
    int64_t K, M;
    /* integer paths: Q8_0 or Q8_K blocks per column (see above) */
    float *xd;        /* Q8_0: [M][K/32] f32 of the f16-rounded scale; Q8_K: [M][K/256] */
    int8_t *xq;       /* [M][K] codes */
    uint8_t *xu;      /* [M][K] codes + 128 */
    int32_t *xs;      /* Q8_0: [M][K/32] sum of codes per block; Q8_K: [M][K/16] per 16 */
    /* bf16 dot path: activations rounded to bf16, [M][ceil(K/2)*2] */
    uint16_t *xb;
    /* f16 arithmetic path (f16_act): activations as f16 in chunks of 16 with one
     * power-of-two scale each, x[k] = xh[k] * xhs[k/16]; [M][K16] with K16 = K rounded up
     * to 16 (zero padded), and [M][K16/16] */
    uint16_t *xh;
    float *xhs;
};

/* One matmul: W [K, N] packed, activations, output y [M][N]. */
struct cpu_mm {
    enum mq_dtype type;
    const void *w;    /* packed groups */
    size_t group_bytes;
    int64_t K, N;
    const struct cpu_act *a;
    float *y;
};

typedef void (*cpu_mm_fn)(const struct cpu_mm *mm, int64_t g0, int64_t g1);

struct cpu_kern {
    const char *isa;  /* "scalar", "avx2", "avx512", "avx512vnni", "avx512amx" */
    int rows;         /* R */
    bool bf16_dot;    /* bf16 matmul rounds activations to bf16 (AVX512-BF16) */
    /* matmul of row groups [g0, g1) against all M columns; NULL: format unsupported */
    cpu_mm_fn matmul[MQ_DTYPE_COUNT];
    /* quantize n (multiple of 32) activations to Q8_0: codes, scales, sums, u8 codes (u may
     * be NULL) */
    void (*quantize_q8)(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s);
    /* quantize n (multiple of 256) activations to Q8_K: d per 256, codes, u8 codes (u may be
     * NULL), sums per 16; bit-identical to cpu_quantize_q8k_scalar */
    void (*quantize_q8k)(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s);
    /* elementwise, n floats */
    void (*add)(const float *a, const float *b, float *y, int64_t n);
    void (*swiglu)(const float *g, const float *u, float *y, int64_t n);
    /* y = x * scale * w, and the sum of squares of x (double) */
    double (*sumsq)(const float *x, int64_t n);
    void (*scale_mul)(const float *x, float scale, const float *w, float *y, int64_t n);
    float (*dot)(const float *a, const float *b, int64_t n);
    /* y += s * x */
    void (*axpy)(float s, const float *x, float *y, int64_t n);
    /* Attention rows, or NULL (ops.c then loops over dot and axpy): out[p] = dot(q, k + p *
     * stride, D) * scale, returning the largest out[p] (-INFINITY if none: NaN is skipped,
     * as out[p] > mx ? out[p] : mx does), and o += w[p] * (v + p * stride) for p < n in
     * order; the same operations as those loops, bit for bit */
    float (*dots)(const float *q, const float *k, int64_t stride, int64_t n, int64_t D, float scale, float *out);
    void (*axpys)(const float *w, const float *v, int64_t stride, int64_t n, int64_t D, float *o);
    /* x[i] = exp(x[i] - mx), returns the sum */
    float (*exp_sum)(float *x, float mx, int64_t n);
    /* F16 weights in FP16 arithmetic (NULL: matmul[F16] takes f32 activations). Converts
     * one column of K activations to xh/xhs (see cpu_act); matmul[F16] then reads those.
     * Matrices holding a weight of magnitude > CPU_F16_ARITH_MAX_W (or non-finite) use
     * matmul_f16_wide instead, which widens to F32 and reads x: FP16 partial sums of 16
     * products of such weights could overflow. */
    void (*f16_act)(const float *x, int64_t K, uint16_t *xh, float *xhs);
    cpu_mm_fn matmul_f16_wide;
};

/* Largest F16 weight magnitude the FP16-arithmetic kernels take: 16 products with scaled
 * activations |x'| < 2 then sum to at most 32768, below the f16 maximum 65504. */
#define CPU_F16_ARITH_MAX_W 1024.0f

extern const struct cpu_kern cpu_kern_scalar;
#if defined(__x86_64__)
extern const struct cpu_kern cpu_kern_avx2;
extern const struct cpu_kern cpu_kern_avx512;
extern const struct cpu_kern cpu_kern_avx512vnni;
extern const struct cpu_kern cpu_kern_avx512amx; /* avx512vnni; AMX for q8_0, q4_0, q2_k, q3_k GEMMs */
#endif

/* Weight layouts of the block formats (see above). */
enum cpu_layout {
    CPU_LAYOUT_NONE,        /* not a packed block format (plain types) */
    CPU_LAYOUT_Q4_0,        /* q4_0's nibble-reordered quads */
    CPU_LAYOUT_WORDS,       /* words of the whole block */
    CPU_LAYOUT_WORDS_D_HEAD, /* R f16 d (the block's first 2 bytes), then words of the rest */
    CPU_LAYOUT_WORDS_D_TAIL, /* R f16 d (the block's last 2 bytes), then words of the rest */
};
enum cpu_layout cpu_layout_of(enum mq_dtype type);

/* ggml's Q8_K rule (quantize_row_q8_K_ref) in plain C: the reference every path's
 * quantize_q8k must match bit for bit (arguments as quantize_q8k). */
void cpu_quantize_q8k_scalar(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s);

/* Packed size and packing of a [K, N] weight matrix in ggml layout (src) for R-row
 * groups; shared by all paths (it is byte shuffling). */
size_t cpu_group_bytes(enum mq_dtype type, int64_t K, int rows);
void cpu_pack(enum mq_dtype type, const void *src, void *dst, int64_t K, int64_t N, int rows);
/* Row n of a packed matrix as K floats (for embedding lookups). */
void cpu_unpack_row(enum mq_dtype type, const void *packed, int64_t K, int rows, int64_t n, float *out);

#endif
