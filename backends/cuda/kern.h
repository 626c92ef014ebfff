/* backends/cuda/kern.h - the cuda plugin's kernels, as plain C launchers.
 *
 * Internal to the plugin: cuda.c (the be_ops, C11) calls these; kern_mm.cu and kern_ops.cu
 * (CUDA C++) define them. Every launcher enqueues its kernels on `st` and returns what
 * cudaGetLastError() says after the launch (cudaSuccess, or a launch error); errors that
 * happen while the kernels run surface at the next synchronisation, as CUDA does.
 * Nothing here allocates: callers pass device buffers.
 *
 * Weight layouts on the device (made once by cuda.c at upload, never per call); N rows of
 * K weights:
 *
 *   f32, f16, bf16  ggml's: row n at n*K elements (also what cuBLAS reads, transposed)
 *   q8_0            "split": all codes first, row-major (row n's K int8 codes at n*K),
 *                   then all f16 scales (row n's K/32 scales at n*K/32 halves)
 *   q4_0            "split": all codes first (row n's K/2 bytes at n*K/2; within each
 *                   block of 32 the 16 bytes keep ggml's order: byte j holds element j in
 *                   its low nibble and element j+16 in its high nibble), then the scales
 *
 * The split layout has exactly ggml's bytes per weight (34/32 and 18/32); it makes every
 * block's codes 16-byte aligned (ggml's 34- and 18-byte blocks are only 2-byte aligned),
 * so a warp reads a row with coalesced 16-byte loads.
 *
 * Activations for the integer kernels are quantized on the device to Q8_0 blocks with
 * ggml's rule (d = amax/127 rounded to f16, q = round(x * (1/d))), the bits of
 * core/dtype.c's reference quantizer, in a split layout too: codes [M][K] int8, scales
 * [M][K/32] float (the f16-rounded value), code sums [M][K/32] int32 (Q4_0's "- 8 * sum").
 * A NaN anywhere in a block makes its scale NaN (cpu.h's defined behaviour).
 *
 * Dependency rule: the plugin depends on core/ and the CUDA toolkit only.
 */
#ifndef MQ_BACKENDS_CUDA_KERN_H
#define MQ_BACKENDS_CUDA_KERN_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Weight formats the kernels know (core/dtype.h is C-only; cuda.c maps mq_dtype here). */
enum cu_wtype { CU_W_F32, CU_W_F16, CU_W_BF16, CU_W_Q8_0, CU_W_Q4_0, CU_W_COUNT };

/* Matrix-vector kernels take up to this many columns; more go to the GEMM paths. */
#define CU_GEMV_MAX_COLS 8
/* Attention keeps a head in registers: head dimensions up to this. */
#define CU_ATTN_MAX_HEAD_DIM 256
/* Rotary dimensions the rope kernel's shared table holds. */
#define CU_ROPE_MAX_ROT 4096

/* Q8_0 activations of M columns of K (K a multiple of 32), split layout (above). */
struct cu_q8act {
    int8_t *q;  /* [M][K] codes */
    float *d;   /* [M][K/32] scales (f16-rounded) */
    int32_t *s; /* [M][K/32] sums of codes */
};

/* Bytes of the codes part of a split q8_0/q4_0 matrix (the scales follow). */
static inline size_t cu_codes_bytes(enum cu_wtype t, int64_t K, int64_t N)
{
    return t == CU_W_Q8_0 ? (size_t)K * (size_t)N : (size_t)K / 2 * (size_t)N;
}

/* x [M][K] f32 -> a (M*K/32 blocks). */
cudaError_t cu_quantize_q8(const float *x, int64_t K, int64_t M, struct cu_q8act a,
                           cudaStream_t st);

/* y [M][N] = W x for M <= CU_GEMV_MAX_COLS. Float formats read x (f32, widening W in
 * registers, F32 accumulation); q8_0/q4_0 read a (dp4a on the codes, int32 per block,
 * F32 across blocks). One warp per row. */
cudaError_t cu_gemv(enum cu_wtype t, const void *w, int64_t K, int64_t N, const float *x,
                    const struct cu_q8act *a, int64_t M, float *y, cudaStream_t st);

/* y [M][N] = W a for q8_0/q4_0 weights and any M: 64x64 output tiles, dp4a on codes
 * staged in shared memory (q4_0 codes unpacked to code - 8 there), int32 per block. */
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

/* y [M][K] = rows ids[0..M) of W [K, V] (any format, device layout), exact. An id outside
 * 0..V-1 gives a zero row and sets err[0] = 1, err[1] = the id (err: mapped host memory,
 * read after the stream synchronises). */
cudaError_t cu_get_rows(enum cu_wtype t, const void *w, int64_t K, int64_t V, const int32_t *ids,
                        int64_t M, float *y, int32_t *err, cudaStream_t st);

/* The glue ops of backend.h, same semantics and shapes. */
cudaError_t cu_rmsnorm(const float *x, const float *g, float *y, int64_t K, int64_t rows, float eps,
                       cudaStream_t st);
cudaError_t cu_rope(const float *x, float *y, int64_t D, int64_t H, int64_t M, int n_rot, int neox,
                    int64_t pos0, float theta, float freq_scale, cudaStream_t st);
cudaError_t cu_attention(const float *q, const float *k, const float *v, float *out, int64_t D,
                         int64_t H, int64_t Hkv, int64_t M, int64_t pos0, float scale,
                         cudaStream_t st);
cudaError_t cu_swiglu(const float *g, const float *u, float *y, int64_t n, cudaStream_t st);
cudaError_t cu_add(const float *a, const float *b, float *y, int64_t n, cudaStream_t st);

/* Whether this build has code the current device can run: cudaSuccess, or
 * cudaErrorNoKernelImageForDevice / cudaErrorUnsupportedPtxVersion / ... */
cudaError_t cu_check_image(void);

#ifdef __cplusplus
}
#endif

#endif
