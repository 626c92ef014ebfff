/* core/dtype_internal.h - conversions shared between core/dtype.c (the traits table) and
 * core/dtype_kquants.c; not part of the public API.
 *
 * Each to_f32 converts n elements (a multiple of the type's block size) from the block
 * layouts declared in core/dtype.h, reading src and writing dst, both borrowed.
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

#endif
