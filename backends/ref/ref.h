/* backends/ref/ref.h - the reference backend: plain scalar C, the oracle.
 *
 * Every op in every format, written for clarity and exactness rather than speed, and
 * from core/dtype's traits alone (no per-format code): a weight row is dequantized with
 * its to_f32 (bit-exact with ggml's), block-quantized weights meet activations quantized
 * to their act_type blocks (Q8_0 or Q8_K) with core/dtype's reference quantizer, exactly
 * as ggml's integer dot products see them, and every product and sum is taken in double.
 * This is the exact value of what an integer kernel approximates: ggml's (and mixq's fast
 * paths') integer block sums times the scales equal it up to the float rounding of the
 * scale products and of the accumulation. Other backends are tested against it with a
 * stated error budget per format.
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
 * wf: scratch for n floats. For block-quantized types x_act must hold x quantized to the
 * type's act_type blocks (mq_dtype_get(type)->act_type's from_f32 of x); float formats
 * use x and ignore x_act. */
double be_ref_dot(enum mq_dtype type, const void *w_row, const float *x, const void *x_act, float *wf,
                  int64_t n);

#endif
