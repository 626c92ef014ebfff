/* backends/cpu/ops.h - the op drivers shared by the host SIMD backends (cpu, neon).
 *
 * A host backend is a kernel table (kern.h) chosen at open, plus these drivers: packing
 * of weights at upload into the table's R-row groups, the threaded matmul (activations
 * quantized to Q8_0 once per call, or per thread for few columns; bf16 rounding and f16
 * conversion where the table asks for them), embedding lookups out of the packed layout,
 * and the row-parallel F32 ops of the forward pass (RMSNORM, ROPE, ATTENTION, SWIGLU,
 * GEGLU, ADD, SCALE, SOFTCAP) on a core/ thread pool. GEGLU, SCALE and SOFTCAP are plain
 * loops here for every path (libm's tanhf, or a multiply the compiler vectorizes), the
 * others go through the kernel table. The backend keeps its own probe and picks a table at open
 * (how is its business); everything else is here:
 *
 *     static int neon_open(const struct be_config *cfg, void **out) {
 *         const struct cpu_kern *k = ...;            // borrowed, static
 *         return cpu_ops_open("neon", k, cfg, out);  // name: in error messages
 *     }
 *     ... .open = neon_open, .close = cpu_ops_close, .supports = cpu_ops_supports,
 *         .upload = cpu_ops_upload, .release = cpu_ops_release, .run = cpu_ops_run,
 *         .threads = cpu_ops_threads, .thread_ids = cpu_ops_thread_ids ...
 *
 * Uploaded matrices hold the packed groups in t->data and a struct cpu_weights in
 * t->extra, both freed by cpu_ops_release. Every output element is computed by one thread
 * in an order that does not depend on the thread count.
 *
 * Internal to backends/cpu and backends/neon. Dependency rule: backends/ depends on core/
 * only.
 */
#ifndef MQ_BACKENDS_CPU_OPS_H
#define MQ_BACKENDS_CPU_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/backend.h"
#include "backends/cpu/kern.h"
#include "core/pool.h"

/* A host backend's context, made by cpu_ops_open and freed by cpu_ops_close. */
struct cpu_ctx {
    const char *name;            /* backend name for messages ("cpu", "neon"); static */
    const struct cpu_kern *kern; /* the chosen path; static */
    struct mq_pool *pool;        /* owned */
    /* activation scratch, grown on demand; owned */
    void *act_buf;
    size_t act_cap;
    /* attention scratch: per thread n_kv floats */
    void *attn_buf;
    size_t attn_cap;
};

/* What upload leaves in t->extra: the packing (rows per group) of t->data. Vectors are
 * "packed" with one row per group, which is a plain copy. */
struct cpu_weights {
    int rows;
    size_t group_bytes;
    bool f16_wide; /* F16 matrix too large for FP16 arithmetic: use kern->matmul_f16_wide */
};

/* The context of a backend that runs kern (borrowed, static) on cfg->n_threads threads
 * (0: the default); name (static) prefixes its error messages. */
int cpu_ops_open(const char *name, const struct cpu_kern *kern, const struct be_config *cfg, void **out);

/* be_ops slots (ctx is a struct cpu_ctx). close frees the pool, the scratch and ctx. */
void cpu_ops_close(void *ctx);
bool cpu_ops_supports(void *ctx, enum be_op op, enum mq_dtype type);
int cpu_ops_upload(void *ctx, struct be_tensor *t, const void *src);
void cpu_ops_release(void *ctx, struct be_tensor *t);
int cpu_ops_run(void *ctx, const struct be_node *node);
int cpu_ops_threads(void *ctx);
int cpu_ops_thread_ids(void *ctx, int *tids, int max);

#endif
