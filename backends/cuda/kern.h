/* backends/cuda/kern.h - the cuda plugin's kernels, as plain C launchers.
 *
 * Internal to the plugin: plugin.c (the be_ops, C11) calls these; kern_mm.cu and kern_ops.cu
 * (CUDA C++) define them. Every launcher enqueues its kernels on `st` and returns what
 * cudaGetLastError() says after the launch (cudaSuccess, or a launch error); errors that
 * happen while the kernels run surface at the next synchronisation, as CUDA does.
 * Nothing here allocates: callers pass device buffers.
 *
 * Weight layouts on the device (made once at upload by plugin.c, never per call): float
 * formats keep ggml's (row n at n*K elements, also what cuBLAS reads, transposed); every
 * block format is in the "planes" layout of layout.h (the codes of all blocks, then their
 * high bits, then their scales), which has exactly ggml's bytes per weight, 16-byte aligned
 * code loads (ggml's blocks are only 2-byte aligned) and one decoding of 32 weights into
 * int8 words for every format (cu_slice_decode). q8_0 and q4_0 planes are their old
 * "split" layout: codes [N][K] int8 / [N][K/2] nibble bytes, then the f16 scales.
 *
 * Activations for the integer kernels are quantized on the device in a split layout too,
 * to the blocks the weight's format multiplies with (core/dtype.h act_type):
 *   Q8_0 (q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl): ggml's rule (d = amax/127 rounded to f16,
 *        q = round(x * (1/d))), the bits of core/dtype.c's reference quantizer; codes
 *        [M][K] int8, scales [M][K/32] float (the f16-rounded value), code sums [M][K/32]
 *        int32 (Q4_0's "- 8 * sum", the _1 types' min term). A NaN anywhere in a block makes
 *        its scale NaN (cpu.h's defined behaviour).
 *   Q8_K (q2_k .. q6_k, iq4_xs): cpu_quantize_q8k_scalar's bits (ggml's quantize_row_q8_K_ref:
 *        the first element of largest magnitude maps to -127, d = 1/iscale as f32); codes
 *        [M][K] int8, scales [M][K/256] float, code sums per 16 [M][K/16] int32. As there,
 *        a NaN or infinite element makes the block's d NaN and its codes 0 (layout.h
 *        cu_q8k_*).
 *
 * Dependency rule: the plugin depends on core/ and the CUDA toolkit only.
 */
#ifndef MQ_BACKENDS_CUDA_KERN_H
#define MQ_BACKENDS_CUDA_KERN_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "backends/cuda/layout.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Matrix-vector kernels take up to this many columns; more go to the GEMM paths. */
#define CU_GEMV_MAX_COLS 8
/* Attention keeps a head in registers: head dimensions up to this. */
#define CU_ATTN_MAX_HEAD_DIM 256
/* Rotary dimensions the rope kernel's shared table holds. */
#define CU_ROPE_MAX_ROT 4096

/* Quantized activations of M columns of K, split layout (above): Q8_0 or Q8_K blocks. */
struct cu_q8act {
    int8_t *q;  /* [M][K] codes */
    float *d;   /* Q8_0: [M][K/32] scales (f16-rounded); Q8_K: [M][K/256] */
    int32_t *s; /* Q8_0: [M][K/32] sums of codes; Q8_K: [M][K/16] sums of 16 codes */
};

/* x [M][K] f32 -> a: Q8_0 blocks (K a multiple of 32). */
cudaError_t cu_quantize_q8(const float *x, int64_t K, int64_t M, struct cu_q8act a,
                           cudaStream_t st);
/* x [M][K] f32 -> a: Q8_K blocks (K a multiple of 256); one warp per block. */
cudaError_t cu_quantize_q8k(const float *x, int64_t K, int64_t M, struct cu_q8act a,
                            cudaStream_t st);

/* y [M][N] = W x for M <= CU_GEMV_MAX_COLS. Float formats read x (f32, widening W in
 * registers, F32 accumulation); block formats read a, quantized to the format's activation
 * blocks (dp4a on the codes, int32 per block or slice, F32 across them). One warp per row;
 * q8_0/q4_0 have their own kernels, every other block format takes one 32-weight slice
 * per lane (cu_slice_decode, cu_slice_dot). */
cudaError_t cu_gemv(enum cu_wtype t, const void *w, int64_t K, int64_t N, const float *x,
                    const struct cu_q8act *a, int64_t M, float *y, cudaStream_t st);

/* y [M][N] = W a for block formats and any M: 64x64 output tiles, one 32-weight step at a
 * time, dp4a on codes staged in shared memory, int32 per block (q8_0/q4_0: q4_0 codes
 * unpacked to code - 8 there) or per 32-weight slice (the others: 64 threads decode one
 * slice of a row each, cu_slice_decode; the sums of cu_slice_dot). */
cudaError_t cu_gemm_q(enum cu_wtype t, const void *w, int64_t K, int64_t N,
                      const struct cu_q8act *a, int64_t M, float *y, cudaStream_t st);

/* y [M][N] = W x for bf16 weights widened to f32 in shared memory: F32 FMA, 64x64 tiles. */
cudaError_t cu_gemm_bf16(const uint16_t *w, int64_t K, int64_t N, const float *x, int64_t M,
                         float *y, cudaStream_t st);

/* f16 GEMM input: column m of x scaled by 2^e[m] (e[m] puts the column's largest finite
 * magnitude in [2^14, 2^15); 0 for an all-zero or non-finite column) and rounded to f16.
 * Power-of-two scaling is exact, so the only error is the f16 rounding (2^-11 relative)
 * and no finite activation overflows or flushes to zero. cu_scale_cols undoes it on y. */
cudaError_t cu_f16_cols(const float *x, int64_t K, int64_t M, uint16_t *xh, int32_t *e,
                        cudaStream_t st);
cudaError_t cu_scale_cols(float *y, int64_t N, int64_t M, const int32_t *e, cudaStream_t st);

/* y [M][K] = rows ids[0..M) of W [K, V] (any format, device layout), exact (block formats:
 * one thread per 32-weight slice, cu_slice_value). An id outside
 * 0..V-1 gives a zero row and sets err[0] = 1, err[1] = the id (err: mapped host memory,
 * read after the stream synchronises). */
cudaError_t cu_get_rows(enum cu_wtype t, const void *w, int64_t K, int64_t V, const int32_t *ids,
                        int64_t M, float *y, int32_t *err, cudaStream_t st);

/* The glue ops of backend.h, same semantics and shapes. */
cudaError_t cu_rmsnorm(const float *x, const float *g, float *y, int64_t K, int64_t rows, float eps,
                       cudaStream_t st);
/* ff: frequency factors [n_rot/2] on the device, or NULL; attn_factor 0 means 1 */
cudaError_t cu_rope(const float *x, const float *ff, float *y, int64_t D, int64_t H, int64_t M, int n_rot,
                    int neox, int64_t pos0, float theta, float freq_scale, float attn_factor, cudaStream_t st);
cudaError_t cu_attention(const float *q, const float *k, const float *v, float *out, int64_t D,
                         int64_t H, int64_t Hkv, int64_t M, int64_t pos0, float scale,
                         float softcap, int64_t window, cudaStream_t st);
cudaError_t cu_swiglu(const float *g, const float *u, float *y, int64_t n, cudaStream_t st);
cudaError_t cu_geglu(const float *g, const float *u, float *y, int64_t n, cudaStream_t st);
/* y[i] = a[i] + b[i % nb]: nb = n (same shape) or the column length (a bias column) */
cudaError_t cu_add(const float *a, const float *b, float *y, int64_t n, int64_t nb,
                   cudaStream_t st);
cudaError_t cu_scale(const float *x, float s, float *y, int64_t n, cudaStream_t st);
cudaError_t cu_softcap(const float *x, float cap, float *y, int64_t n, cudaStream_t st);

/* Whether this build has code the current device can run: cudaSuccess, or
 * cudaErrorNoKernelImageForDevice / cudaErrorUnsupportedPtxVersion / ... */
cudaError_t cu_check_image(void);

#ifdef __cplusplus
}
#endif

#endif
