/* core/compensate.h - error-compensated quantization: GPTQ (Frantar et al., 2022) with the
 * block formats' own quantizers.
 *
 *     float *u;
 *     if (mq_gram_factor(gram, rows, n_in, &u) < 0) return -1;   // once per layer input
 *     for each weight row w[n_in] (f32, overwritten):
 *         if (mq_quantize_compensated(fmt, w, n_in, imp, u, dst_row) < 0) ...
 *     free(u);
 *
 * Plain quantization rounds each block of a weight row on its own. With the Gram matrix of
 * the layer's inputs over calibration text, G = sum over tokens of x x^T [n_in x n_in],
 * the error a block leaves can be pushed onto the columns still to be quantized, where
 * the inputs are correlated with it, so that the row's output error over that text, not
 * each weight's error, is what gets small. A row is quantized a block at a time, left to
 * right: block B (block_elems columns) is rounded by the format's own quantizer
 * (mq_quantize_segment, with the importance weights), its error d = w_B - q_B, and the
 * later columns R move by -d U_BB^-1 U_BR, where U is the upper Cholesky factor of the
 * damped inverse, (G / rows + damp I)^-1 = U^T U. That is GPTQ's update for a block
 * rounded at once (the optimal change of the remaining weights for a fixed error on B).
 * The bytes are ordinary blocks of fmt that any reader of the format (llama.cpp included)
 * runs; only llama-quantize cannot make the same ones, having no Gram matrix.
 *
 * Units: G in squared activations summed over `rows` activation rows; damp is
 * MQ_COMPENSATE_DAMP times the mean of G's diagonal over rows (GPTQ's percdamp); a column
 * whose inputs were always 0 gets 1 on the diagonal (its weight is free to move).
 *
 * Ownership: mq_gram_factor's *u_out is malloc'd, the caller frees it;
 * mq_quantize_compensated's scratch is its own.
 *
 * Dependency rule: core/ depends on nothing above it.
 */
#ifndef MQ_CORE_COMPENSATE_H
#define MQ_CORE_COMPENSATE_H

#include <stdint.h>

#include "core/dtype.h"

#define MQ_COMPENSATE_DAMP 0.01 /* fraction of the mean diagonal added to it (GPTQ's default) */

/* The upper Cholesky factor U [n][n] (row-major, float; below the diagonal 0) of
 * (gram / rows + damp I)^-1, for a gram [n][n] of sums over `rows` activation rows.
 * Errors (one line): MQ_EINVAL for n < 1, rows <= 0 or a non-finite gram; MQ_ERANGE when
 * the damped matrix is not positive definite (it always is for a true Gram matrix);
 * MQ_ENOMEM. */
int mq_gram_factor(const float *gram, double rows, int64_t n, float **u_out);

/* v^T A v for a row v[n], where A = G / rows + damp I is the matrix u factors (U^T U =
 * A^-1): |y|^2 with U^T y = v. For a weight error v, the output error it makes over the
 * calibration inputs (per row summed, averaged over rows, plus damp |v|^2), which
 * compensation minimizes. y[n] is scratch. */
double mq_gram_norm2(const float *u, const float *v, int64_t n, double *y);

/* One weight row w[n] (n a multiple of fmt's blocks; overwritten) quantized into dst
 * (n / block_elems blocks of fmt) with error compensation through u (mq_gram_factor's
 * factor of this layer's inputs); imp[n] the importance weights or NULL. The row's output
 * error over the calibration inputs, (w - q)^T (G / rows + damp I) (w - q), is then
 * compared with plain rounding's (fmt's quantize with imp), and dst keeps the smaller:
 * block-wise updates can lose where one block's rounding moves a later block's range (the
 * K-quants' 256 columns at once), so compensation never makes a row worse by that measure.
 * MQ_ENOMEM (one line). */
int mq_quantize_compensated(enum mq_dtype fmt, float *w, int64_t n, const float *imp,
                            const float *u, void *dst);

#endif
