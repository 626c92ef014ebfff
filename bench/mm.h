/* bench/mm.h - the matmul harness the kernel benchmarks share (bench/kernels.c for cpu,
 * bench/cuda.c for cuda): one weight matrix in a format, uploaded as several copies so that
 * rotating through them keeps the weights out of cache, and activations, on a backend;
 * mm_once runs the backend's own MATMUL op (activation quantization included) on the
 * next copy. The benchmarks time mm_once in their own way.
 *
 * Shapes are N x K: N output rows, K inputs (a PyTorch Linear's weight shape). Weights and
 * activations are fixed deterministic patterns in [-1, 1].
 *
 * Ownership: mm_setup borrows the backend; what it allocates mm_release frees (also after
 * a failed mm_setup).
 */
#ifndef MQ_BENCH_MM_H
#define MQ_BENCH_MM_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "core/dtype.h"

struct bench_shape {
    const char *name; /* e.g. "7B attn_q" */
    int64_t N, K;
};

struct mm_run {
    struct be_backend *be;
    struct be_tensor *w; /* [n_copies] */
    int n_copies, next;
    struct be_tensor x, y; /* activations [M][K], outputs [M][N] */
};

/* Uploads the weights of shape s in type and M columns of activations. Copies:
 * ceil(cold_bytes / weight bytes) clamped to [min_copies, max_copies] when cold_bytes > 0,
 * else 1. *weight_bytes: one copy's size in bytes. */
int mm_setup(struct mm_run *r, struct be_backend *be, enum mq_dtype type, struct bench_shape s, int64_t M,
             size_t cold_bytes, int min_copies, int max_copies, double *weight_bytes);

/* One MATMUL on the next copy (a prof_measure / run_fn callback: arg is the mm_run). */
int mm_once(void *arg);

void mm_release(struct mm_run *r);

#endif
