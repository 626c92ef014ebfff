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
 *   q8_0  group: for each 32-wide block: R f16 scales, then 8 "quads" of R x 4 int8
 *         ([quad][r][4]: weights 4q..4q+3 of row r)
 *   q4_0  group: for each block: R f16 scales, then 4 x (R x 4) bytes; byte (t, r, j)
 *         holds weight 8t+j of row r in its low nibble... see cpu_pack_q4_0 in cpu.c:
 *         low nibbles of vector t are quad 2t, high nibbles quad 2t+1, codes 0..15
 *
 * R = 1 is ggml's own layout for every format (blocks of a row contiguous), which the
 * scalar path uses. Bytes per weight are those of the format (plus the padding rows).
 *
 * Activations for integer paths are quantized to Q8_0 blocks per column (token) with
 * the same rule as ggml (d = amax/127 rounded to f16), and carry per-block code sums
 * for Q4_0's "- 8 * sum(x)" correction and, for VNNI, u8 copies (x + 128).
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
    /* integer paths: Q8_0 blocks per column */
    float *xd;        /* [M][K/32] f32 of the f16-rounded scale */
    int8_t *xq;       /* [M][K] codes */
    uint8_t *xu;      /* [M][K] codes + 128 (VNNI, Q8_0 weights) */
    int32_t *xs;      /* [M][K/32] sum of codes per block */
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
    const char *isa;  /* "scalar", "avx2", "avx512", "avx512vnni" */
    int rows;         /* R */
    bool bf16_dot;    /* bf16 matmul rounds activations to bf16 (AVX512-BF16) */
    /* matmul of row groups [g0, g1) against all M columns; NULL: format unsupported */
    cpu_mm_fn matmul[MQ_DTYPE_COUNT];
    /* quantize n (multiple of 32) activations: codes, scales, sums, u8 codes (xu may be NULL) */
    void (*quantize_q8)(const float *x, int64_t n, float *d, int8_t *q, uint8_t *u, int32_t *s);
    /* elementwise, n floats */
    void (*add)(const float *a, const float *b, float *y, int64_t n);
    void (*swiglu)(const float *g, const float *u, float *y, int64_t n);
    /* y = x * scale * w, and the sum of squares of x (double) */
    double (*sumsq)(const float *x, int64_t n);
    void (*scale_mul)(const float *x, float scale, const float *w, float *y, int64_t n);
    float (*dot)(const float *a, const float *b, int64_t n);
    /* y += s * x */
    void (*axpy)(float s, const float *x, float *y, int64_t n);
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
#endif

/* Packed size and packing of a [K, N] weight matrix in ggml layout (src) for R-row
 * groups; shared by all paths (it is byte shuffling). */
size_t cpu_group_bytes(enum mq_dtype type, int64_t K, int rows);
void cpu_pack(enum mq_dtype type, const void *src, void *dst, int64_t K, int64_t N, int rows);
/* Row n of a packed matrix as K floats (for embedding lookups). */
void cpu_unpack_row(enum mq_dtype type, const void *packed, int64_t K, int rows, int64_t n, float *out);

#endif
