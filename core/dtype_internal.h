/* core/dtype_internal.h - conversions shared between core/dtype.c (the traits table),
 * core/dtype_kquants.c (K-quant dequantizers) and core/dtype_quant.c (quantizers); not
 * part of the public API: everything else reaches them through mq_dtype_get().
 *
 * Each to_f32 converts n elements (a multiple of the type's block size) from the block
 * layouts declared in core/dtype.h, reading src and writing dst, both borrowed. Each
 * mq_quantize_<type> is an mq_quantize_fn (core/dtype.h): ggml's quantize_<type>.
 *
 * Dependency rule: core/ depends on nothing but libc.
 */
#ifndef MQ_CORE_DTYPE_INTERNAL_H
#define MQ_CORE_DTYPE_INTERNAL_H

#include <stdint.h>

void mq_q2_k_to_f32(const void *src, float *dst, int64_t n);
void mq_q3_k_to_f32(const void *src, float *dst, int64_t n);
void mq_q4_k_to_f32(const void *src, float *dst, int64_t n);
void mq_q5_k_to_f32(const void *src, float *dst, int64_t n);
void mq_q6_k_to_f32(const void *src, float *dst, int64_t n);

void mq_quantize_f32(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_f16(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_bf16(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q8_0(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q4_0(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q4_1(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q5_0(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q5_1(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q2_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q3_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q4_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q5_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_q6_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_iq4_nl(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
void mq_quantize_iq4_xs(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);
/* activations: ggml's quantize_row_q8_K_ref over n_rows * n_per_row values; imp unused */
void mq_quantize_q8_k(const float *src, void *dst, int64_t n_rows, int64_t n_per_row, const float *imp);

#endif
