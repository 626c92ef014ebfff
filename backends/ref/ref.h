/* backends/ref/ref.h - the reference backend: plain scalar C, the oracle.
 *
 * Every op in every format, written for clarity and exactness rather than speed: float
 * formats accumulate in double; Q8_0/Q4_0 weights meet activations quantized to Q8_0
 * with core/dtype's reference quantizer, block sums in int32, scaled and accumulated in
 * double. Other backends are tested against it with a stated error budget per format.
 * Matrix rows are split over a core/ thread pool; every output element is computed by
 * one thread in a fixed order, so results do not depend on the thread count.
 *
 * The row kernels are public so that tests can use them as the scalar twin of each fast
 * path.
 *
 * Dependency rule: backends/ depends on core/ only.
 */
#ifndef MQ_BACKENDS_REF_H
#define MQ_BACKENDS_REF_H

#include <stdint.h>

#include "backends/backend.h"

extern const struct be_ops be_ref_ops;

/* Dot product of one weight row (n elements of `type`, ggml layout) with activations x.
 * For Q8_0/Q4_0, x_q8 must hold x quantized to n/32 Q8_0 blocks; float formats use x. */
double be_ref_dot(enum mq_dtype type, const void *w_row, const float *x,
                  const struct mq_block_q8_0 *x_q8, int64_t n);

#endif
