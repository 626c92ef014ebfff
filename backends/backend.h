/* backends/backend.h - the backend contract: how mixq runs ops on a target.
 *
 * A backend is a `const struct be_ops` vtable with an ABI number. The dispatcher
 * functions below (be_*) are what the rest of mixq calls: they check shapes and types
 * once, supply defaults for optional slots, and keep backends small.
 *
 *     struct be_backend *be;
 *     if (be_open("ref", &(struct be_config){.n_threads = 2}, &be) < 0) return -1;
 *     struct be_tensor w = {0}, x = {0}, y = {0};
 *     be_upload(be, &w, MQ_DTYPE_Q4_0, 2, (int64_t[]){4096, 4096}, blocks, BE_USE_MATRIX);
 *     be_alloc(be, &x, MQ_DTYPE_F32, 2, (int64_t[]){4096, 1});               // activations
 *     be_alloc(be, &y, MQ_DTYPE_F32, 2, (int64_t[]){4096, 1});
 *     be_write(be, &x, 0, host_x, 4096 * sizeof(float));
 *     be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {&w, &x}, .dst = &y});
 *     be_read(be, &y, 0, host_y, 4096 * sizeof(float));                    // syncs first
 *     be_free(be, &x); be_free(be, &y); be_free(be, &w);
 *     be_close(be);
 *
 * Tensors are dense and contiguous; ne[0] is the contiguous dimension (ggml's order), so
 * a weight matrix of N rows of K inputs has ne = {K, N}. Unused dimensions are 1. A
 * tensor's `data` lives in the backend's memory: host memory for host backends, device
 * memory for device backends (never dereference it outside the backend; use be_read and
 * be_write). be_view_rows() makes a view of whole rows along the outermost dimension,
 * which is how the KV cache is written at a position; be_view_reshape() sees the same
 * elements with another shape ([D*H, M] as [D, H, M]).
 *
 * Ops and their shapes (M = tokens in the batch; all activations F32):
 *   GET_ROWS   src0 weights [K, V] any format, src1 ids I32 [M]   -> dst [K, M]
 *   MATMUL     src0 weights [K, N] any format, src1 [K, M]        -> dst [N, M]
 *              dst[m][n] = sum_k W[n][k] * X[m][k]. Block-quantized weights: X is
 *              quantized on the fly to the weight format's activation blocks (core/dtype.h
 *              act_type: Q8_0 or Q8_K) and blocks are multiplied in int32 (as ggml does);
 *              F16/BF16 weights are widened and accumulated in F32 or better.
 *   RMSNORM    src0 [K, M], src1 weight [K]                        -> dst [K, M]
 *              dst = src0 / sqrt(mean(src0^2) + eps) * src1, per row of K. src0 may have
 *              more dimensions ([K, H, M]) and be a be_view_reshape: a [D*H, M] activation
 *              seen as [D, H*M] or [D, H, M] normalizes each head of D on its own with one
 *              weight [D] (qwen3, gemma3 q/k norm). dst: src0's element count, ne[0] a
 *              multiple of src0's ([D, H*M], [D, H, M] or [D*H, M]); may alias src0
 *   ROPE       src0 [D, H, M], optional src1 factors [n_rot/2]     -> dst [D, H, M] (may alias)
 *              rotates the first n_rot dims of each head at position pos0 + m; mode NORM
 *              pairs (2i, 2i+1), mode NEOX pairs (i, i + n_rot/2); angle
 *              (pos0 + m) * freq_scale * theta^(-2i/n_rot), divided by src1[i] when given
 *              (llama.cpp's rope_freqs, ggml_rope_ext's frequency factors: llama 3.1+,
 *              phi3's LongRoPE); the rotated dims times attn_factor (ggml's mscale: its
 *              cos and sin are float cos and sin times it; 0 means 1)
 *   ATTENTION  src0 q [D, H, M], src1 K [D*Hkv, T], src2 V [D*Hkv, T] -> dst [D*H, M]
 *              causal: query m (at position p = pos0 + m) attends to positions 0..p,
 *              which must be < n_kv <= T; query head h reads K/V head h / (H / Hkv);
 *              score = (q . k) * scale; with softcap > 0 then score = softcap *
 *              tanh(score / softcap) (gemma2's attn_logit_softcapping; llama.cpp caps
 *              k.q before soft_max_ext's kq_scale, and gemma2 scales q beforehand with
 *              kq_scale 1, which is this order); softmax over the positions attended.
 *              window > 0: sliding window (llama.cpp's LLAMA_SWA_TYPE_STANDARD,
 *              is_masked_swa): only key positions k with p - k < window, i.e.
 *              max(0, p - window + 1)..p. window 0 and softcap 0: plain causal attention
 *   SWIGLU     src0 gate [K, M], src1 up [K, M]                    -> dst = silu(gate) * up
 *              (may alias src0)
 *   GEGLU      src0 gate [K, M], src1 up [K, M]                    -> dst = gelu(gate) * up
 *              (may alias src0). gelu is ggml's CPU GELU (tanh approximation with
 *              GGML_GELU_FP16, ggml_vec_geglu_f32): gate <= -10 gives 0, gate >= 10 gives
 *              gate * up, else gate rounded to f16, 0.5x(1 + tanh(sqrt(2/pi) x (1 +
 *              0.044715 x^2))) in F32 on that, the result rounded to f16, times up in F32
 *              (ggml's 64K-entry f16 table, computed per element)
 *   ADD        src0 [K, M], src1 [K, M] or [K] (n_dims 1, or [K, 1]) -> dst [K, M]
 *              dst = src0 + src1; a vector src1 is added to every column (qwen2's q/k/v
 *              bias). dst may alias src0
 *   SCALE      src0 [any shape]                                    -> dst = src0 * scale.s
 *              (F32 multiply; same shape, may alias)
 *   SOFTCAP    src0 [any shape]                                    -> dst = cap * tanh(src0 / cap)
 *              softcap.cap > 0 (gemma2's final logit soft-capping), computed as ggml's
 *              scale-tanh-scale: tanhf(src0 * (1/cap)) * cap in F32. Same shape, may alias
 *
 * Device backends run asynchronously: be_run may return before the op finished.
 * be_sync waits; be_read syncs first. Timing: be_clock_ns is a host clock; device-side
 * intervals use be_event_* where the backend has events (others return MQ_EUNSUPPORTED).
 *
 * Ownership: be_open returns a backend the caller closes with be_close. Tensors filled
 * by be_alloc/be_upload belong to that backend until be_free; the struct itself is the
 * caller's. be_close does not free tensors: free them first.
 *
 * Borrowed weights (be_lend): a caller that holds weights in a read-only file mapping (a
 * GGUF model's) lends that range to the backend once. An upload whose source lies wholly
 * inside a lent range may then borrow it: a host backend that stores the tensor in exactly
 * ggml's layout (ref always; cpu/neon for what they do not repack: vectors, and every
 * matrix on the scalar path) points t->data at the source instead of copying it and sets
 * t->borrowed, so the weights are the file's pages, counted in RSS only where a run touches
 * them (tensors under BE_BORROW_MIN_BYTES are always copied). Where the backend copies
 * (repacks, or a device), the dispatcher releases the
 * source's whole pages after the upload (madvise MADV_DONTNEED: they are re-read from
 * the file if anything reads them again), so a weight is not resident twice. Outside a lent
 * range nothing changes: every upload copies, as before.
 *
 * Dependency rule: backends/ depends on core/ only. Nothing in backends/ calls upward.
 */
#ifndef MQ_BACKENDS_BACKEND_H
#define MQ_BACKENDS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

#define BE_ABI_VERSION 5 /* 3: SCALE, GEGLU, SOFTCAP; attention window, softcap; 4: be_tensor.borrowed, may_borrow (be_lend); 5: ROPE factors (src1), attn_factor */
#define BE_MAX_DIMS 4
#define BE_MAX_SRC 3

enum be_op {
    BE_OP_GET_ROWS,
    BE_OP_MATMUL,
    BE_OP_RMSNORM,
    BE_OP_ROPE,
    BE_OP_ATTENTION,
    BE_OP_SWIGLU,
    BE_OP_ADD,
    BE_OP_SCALE,
    BE_OP_GEGLU,
    BE_OP_SOFTCAP,
    BE_OP_COUNT
};

enum be_rope_mode { BE_ROPE_NORM = 0, BE_ROPE_NEOX = 2 }; /* ggml's numbers */

/* What uploaded weights are for: matrices (MATMUL and GET_ROWS operands) may be repacked
 * into the backend's own layout; vectors (norm weights) stay plain and contiguous. */
enum be_use { BE_USE_MATRIX, BE_USE_VECTOR };

struct be_tensor {
    enum mq_dtype type;
    enum be_use use;
    int n_dims; /* as allocated (views keep it); rows of be_view_rows run along ne[n_dims - 1] */
    int64_t ne[BE_MAX_DIMS];
    size_t nbytes;
    void *data;  /* backend memory; NULL until allocated */
    void *extra; /* backend-private: repacked layout, device handles */
    bool is_view;
    /* data is the lent source itself (be_lend), not backend memory: be_free releases only
     * `extra` and never writes or frees data. Set by the backend's upload slot. */
    bool borrowed;
    /* set by the dispatcher before calling the upload slot: the source lies in a lent
     * range, outlives the tensor and is read-only, so the backend may borrow it */
    bool may_borrow;
};

struct be_node {
    enum be_op op;
    struct be_tensor *src[BE_MAX_SRC];
    struct be_tensor *dst;
    union {
        struct {
            float eps;
        } rmsnorm;
        struct {
            int64_t pos0;
            int n_rot;
            enum be_rope_mode mode;
            float theta;
            float freq_scale;
            float attn_factor; /* 0: 1 */
        } rope;
        struct {
            int64_t pos0;
            int64_t n_kv;
            float scale;
            float softcap;  /* 0: none; > 0: score = softcap * tanh(score / softcap) */
            int64_t window; /* 0: causal; > 0: sliding window of that many positions */
        } attention;
        struct {
            float s;
        } scale;
        struct {
            float cap; /* > 0 */
        } softcap;
    } p;
};

/* What probe() found: usable or not and why, and what the backend will use. */
struct be_info {
    bool usable;
    char reason[256];  /* why not usable; empty when usable */
    char detail[256];  /* e.g. "scalar reference kernels", the ISA path and why */
    bool host_memory;  /* tensor data are host pointers */
};

struct be_config {
    int n_threads; /* 0: the backend's default */
};

struct be_ops {
    uint32_t abi; /* BE_ABI_VERSION */
    const char *name;
    const char *summary;

    /* required */
    void (*probe)(struct be_info *info);
    int (*open)(const struct be_config *cfg, void **ctx);
    void (*close)(void *ctx);
    bool (*supports)(void *ctx, enum be_op op, enum mq_dtype weight_type);
    /* Converts `src` (t->nbytes of t->type in ggml's layout, host memory) into the
     * backend's own layout and memory; t->type, t->ne and t->use are set by the caller.
     * BE_USE_VECTOR data must stay plain (elementwise ops read it directly). When
     * t->may_borrow, a host backend that would store src byte for byte may instead set
     * t->data = (void *)src and t->borrowed (it must then never write or free data);
     * others ignore the flag and copy. */
    int (*upload)(void *ctx, struct be_tensor *t, const void *src);
    /* Runs one op whose shapes the dispatcher has checked. */
    int (*run)(void *ctx, const struct be_node *node);

    /* optional: NULL means host memory (64-byte aligned malloc), memcpy, synchronous
     * execution and the host monotonic clock */
    int (*alloc)(void *ctx, struct be_tensor *t);
    void (*release)(void *ctx, struct be_tensor *t); /* frees what alloc or upload made
                                                      * (not data when t->borrowed) */
    int (*write)(void *ctx, struct be_tensor *t, size_t offset, const void *src, size_t n);
    int (*read)(void *ctx, const struct be_tensor *t, size_t offset, void *dst, size_t n);
    int (*sync)(void *ctx);
    uint64_t (*clock_ns)(void *ctx);
    int (*event_new)(void *ctx, void **ev);
    void (*event_free)(void *ctx, void *ev);
    int (*event_record)(void *ctx, void *ev);
    int (*event_elapsed_ns)(void *ctx, void *start, void *end, uint64_t *ns);
    int (*threads)(void *ctx); /* threads in use; NULL means 1 */
    /* Linux thread ids of the threads that run ops (for pinning and per-thread counters);
     * returns the count written. NULL: the calling thread only (or a device). */
    int (*thread_ids)(void *ctx, int *tids, int max);
};

#define BE_MAX_LENT 4
/* Smaller tensors are copied even from a lent range: a page fault on a file mapping maps
 * its neighbours too (fault-around, 64 KiB; whole large folios), so borrowing a norm vector
 * of a few KiB would make more of the file resident than the copy costs. */
#define BE_BORROW_MIN_BYTES ((size_t)1 << 20)

struct be_backend {
    const struct be_ops *ops;
    void *ctx;
    struct be_info info;
    struct {
        const char *base;
        size_t size;
    } lent[BE_MAX_LENT]; /* be_lend's ranges; size 0: a free slot */
    uint64_t borrowed_bytes; /* uploads that borrowed instead of copying (since be_open) */
    uint64_t released_bytes; /* source pages released after copying uploads */
    void (*upload_hook)(void *arg, size_t nbytes); /* be_set_upload_hook */
    void *upload_hook_arg;
};

/* ---- registry ---- */

/* Backends compiled in, in preference order. */
int be_registry_count(void);
const struct be_ops *be_registry_get(int i);
/* NULL when no backend has that name. */
const struct be_ops *be_registry_find(const char *name);

/* ---- dispatcher ---- */

/* Probes and opens a backend by name. An unknown name or an unusable backend is an
 * error that says why (and lists the known names). */
int be_open(const char *name, const struct be_config *cfg, struct be_backend **out);
/* NULL is a no-op. */
void be_close(struct be_backend *be);

const char *be_name(const struct be_backend *be);
int be_threads(const struct be_backend *be);
bool be_supports(const struct be_backend *be, enum be_op op, enum mq_dtype weight_type);
/* The backend's host threads (thread_ids slot); default: the calling thread. */
int be_thread_ids(const struct be_backend *be, int *tids, int max);

/* Sets t's type and shape and allocates it in the backend (contents undefined). */
int be_alloc(struct be_backend *be, struct be_tensor *t, enum mq_dtype type, int n_dims,
             const int64_t *ne);
/* Lends [base, base + size): a read-only private file mapping (PROT_READ, MAP_PRIVATE) that
 * stays mapped and unchanged until be_close or be_unlend, and whose resident pages may be
 * dropped at any time (they are re-read from the file). Uploads from inside it borrow or
 * release pages as the header says. Lending the same range twice is a no-op; at most
 * BE_MAX_LENT ranges (MQ_ENOMEM beyond). Tensors that borrowed must be freed before the
 * range is unmapped. */
int be_lend(struct be_backend *be, const void *base, size_t size);
/* Withdraws a lent range (no-op when it is not lent): later uploads from it copy. */
void be_unlend(struct be_backend *be, const void *base);

/* Sets t's type and shape and uploads weights from host memory (ggml layout) for `use`.
 * From inside a lent range (be_lend) the tensor may borrow the source instead of copying
 * it (t->borrowed), or the source's pages are released after the copy. */
int be_upload(struct be_backend *be, struct be_tensor *t, enum mq_dtype type, int n_dims,
              const int64_t *ne, const void *src, enum be_use use);
/* fn(arg, t->nbytes) after every successful be_upload from now on (a progress line while a
 * model's weights are uploaded); fn NULL clears it. */
void be_set_upload_hook(struct be_backend *be, void (*fn)(void *arg, size_t nbytes), void *arg);
/* Frees what be_alloc/be_upload made (views: nothing) and zeroes t. */
void be_free(struct be_backend *be, struct be_tensor *t);

/* A view of rows [row0, row0 + n_rows) of t's outermost dimension, ne[n_dims - 1] (of
 * elements, for a 1-d tensor of a plain type). */
int be_view_rows(const struct be_tensor *t, int64_t row0, int64_t n_rows, struct be_tensor *view);
/* A view of t's elements with another shape of the same element count and the same
 * ne[0] (for block formats) or any ne[0] (plain F32/F16/BF16/I32). */
int be_view_reshape(const struct be_tensor *t, int n_dims, const int64_t *ne, struct be_tensor *view);

int be_write(struct be_backend *be, struct be_tensor *t, size_t offset, const void *src, size_t n);
int be_read(struct be_backend *be, const struct be_tensor *t, size_t offset, void *dst, size_t n);

/* Checks the node's shapes and types, then runs it. */
int be_run(struct be_backend *be, const struct be_node *node);
int be_sync(struct be_backend *be);
uint64_t be_clock_ns(struct be_backend *be);

/* Device-side timing; MQ_EUNSUPPORTED (silent) where the backend has no events. */
int be_event_new(struct be_backend *be, void **ev);
void be_event_free(struct be_backend *be, void *ev);
int be_event_record(struct be_backend *be, void *ev);
int be_event_elapsed_ns(struct be_backend *be, void *start, void *end, uint64_t *ns);

const char *be_op_name(enum be_op op);

/* Element count of t (product of ne). */
int64_t be_nelements(const struct be_tensor *t);

#endif
