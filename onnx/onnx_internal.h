/* onnx/onnx_internal.h - what the ONNX reader, graph compiler, interpreter and runner
 * share inside onnx/ (not a public interface: use onnx/onnx.h).
 *
 * Tensors in the interpreter are dense, row-major, and of three kinds: F32 (every float
 * type is widened on reading), I64 (every integer type) and BOOL (stored as int64 0/1).
 * An op computes its outputs' shapes first and asks ox_out() for memory; in a shape pass
 * ox_out() gives memory only to small outputs whose inputs all have data (shape
 * arithmetic: Shape, Gather, Concat, Cast on a few int64 values), so a whole model's
 * shapes, matmul sizes and live memory are known without running its arithmetic.
 *
 * Dependency rule: onnx/ depends on model/, backends/ and core/ only.
 */
#ifndef MQ_ONNX_ONNX_INTERNAL_H
#define MQ_ONNX_ONNX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "model/runner.h"
#include "onnx/onnx.h"

#define OX_SHAPE_DATA_MAX 4096 /* elements an output may have to be computed in a shape pass */

enum ox_type { OX_F32, OX_I64, OX_BOOL };

struct ox_tensor {
    enum ox_type type;
    int nd;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    int64_t n;  /* elements */
    void *data; /* float * (F32) or int64_t * (I64, BOOL); NULL when not computed */
    bool borrowed;
};

struct ox_node {
    int op;                         /* index into ox_ops */
    const struct mq_onnx_node *src; /* name, attributes */
    int n_in, n_out;
    int *in;                        /* value ids; -1 for an omitted optional input */
    int *out;
    int layer;                      /* model layer (the first of an RNN's two), or -1 */
};

struct ox_value {
    const char *name;  /* borrowed from the file */
    bool is_const;
    struct ox_tensor c; /* the constant's value (owned) */
    int input;          /* graph input index, or -1 */
    int last_use;       /* last node (execution index) that reads it */
    bool is_output;
    int copy_of;        /* a constant folded from Identity: the constant it copies (the
                           first, never itself a copy), or -1 */
    int32_t elem;       /* the file's element type (enum mq_onnx_elem) of an initializer, a
                           Constant node's value or a graph input; 0 when not known */
};

enum ox_layer_kind { OX_LAYER_CONV, OX_LAYER_CONV_T, OX_LAYER_GEMM };

/* One quantizable layer per weight tensor: every Conv/ConvTranspose/Gemm/MatMul/Einsum that
 * reads the same constant (directly or through Identity) with the same row layout runs this
 * layer, so the tensor has one format, one upload and is counted once. An LSTM or GRU node
 * has two layers of its own, consecutive, the first in ox_node.layer (W, then R). */
struct ox_layer {
    int node;            /* execution index of the first node that reads it */
    int weight;          /* value id of the weight tensor (not a copy: copy_of followed) */
    int n_nodes;         /* nodes that run it (>= 1) */
    int input;           /* the node's input that is the weight: 1, or 2 for an RNN's R */
    enum ox_layer_kind kind;
    int64_t groups;
    int64_t K, N;        /* per group: K inputs, N rows (n_out = groups * N) */
    float *w;            /* [groups * N][K], owned */
};

struct ox_input {
    int value;
    const struct mq_onnx_value_info *vi;
    bool bound;          /* fixed by the task: not passed by callers */
    int shape_nd;        /* > 0: the shape the user fixed (--shapes), at batch 1 */
    int64_t shape[MQ_ONNX_MAX_DIMS];
};

struct ox_op_count {
    const char *op;
    int count;
};

struct onnx_task;

/* The compiled model: mq_model->impl of an ONNX model. */
struct ox_graph {
    struct mq_onnx_file *file;
    const struct onnx_task *task;
    int64_t opset;
    int n_values, cap_values;
    struct ox_value *values;
    int n_nodes, cap_nodes;
    struct ox_node *nodes; /* execution order */
    int n_inputs;
    struct ox_input *inputs;
    int n_outputs;
    int *outputs;        /* value ids */
    const struct mq_onnx_value_info **output_vi;
    struct ox_layer *layers;  /* [model->n_layers] */
    int n_layers;
    int n_op_counts;
    struct ox_op_count *op_counts; /* nodes in the file (subgraphs included) by op */
    int n_file_nodes;
    int n_folded;
    int n_ifs_folded;
    int n_dequantized;     /* weights the file stores as integers, made f32 at load: constants
                              DequantizeLinear reads (QDQ), MatMulInteger's constant B */
    uint64_t const_bytes;  /* constants other than layer weights, as f32/int64 */
    char bound_desc[256];  /* "sr = 16000" */
};

struct ox_ctx;

/* How a layer's matmul runs: X [M][K] row-major -> Y [M][N] for one group. */
typedef int (*ox_matmul_fn)(struct ox_ctx *c, int layer, int64_t group, const float *X, int64_t M, float *Y);

struct ox_ctx {
    const struct ox_graph *g;
    const struct ox_node *node;  /* the node being run (errors name it) */
    bool shape_only;
    bool inputs_have_data;       /* set per node in shape passes */
    int64_t max_elems;           /* largest output allowed (0: no limit but 2^34) */
    ox_matmul_fn matmul;         /* NULL: host f32 from the layer's weights */
    void *mm_arg;
    float *col;                  /* im2col / col2im scratch, grown as needed */
    size_t col_cap;              /* floats */
    /* shape-pass accounting: mq_onnx_shape_report's arrays, filled by ox_note_layer_work */
    int64_t *layer_M, *layer_calls;
    uint64_t scratch_bytes;
};

struct ox_op {
    const char *name;
    int (*run)(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out);
    int min_in, max_in;  /* max_in -1: any */
    int min_out, max_out;
};

extern const struct ox_op ox_ops[];
extern const int ox_n_ops;
int ox_op_find(const char *name);
int ox_op_index_conv(void), ox_op_index_conv_t(void), ox_op_index_gemm(void),
    ox_op_index_matmul(void), ox_op_index_einsum(void), ox_op_index_lstm(void),
    ox_op_index_gru(void), ox_op_index_matmul_int(void), ox_op_index_conv_int(void);

/* Error for the current node: "node 'NAME' (OP): ..." ; returns `code`. */
int ox_fail(const struct ox_ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets t's shape and type; gives it memory unless this is a shape pass and the output is
 * large or an input had no data. Returns 1 when the op must compute data, 0 when only
 * the shape is wanted, < 0 on error. */
int ox_out(struct ox_ctx *c, struct ox_tensor *t, enum ox_type type, int nd, const int64_t *dims);
void ox_tensor_release(struct ox_tensor *t);
uint64_t ox_tensor_bytes(const struct ox_tensor *t);

/* The weight rows [groups*N][K] of a Conv/ConvTranspose/Gemm/MatMul/Einsum node with constant
 * weight w, or of an LSTM/GRU's W or R (one group per direction), malloc'd into *rows, and
 * K, N per group. MQ_EUNSUPPORTED when the weight's rank does not fit. */
int ox_weight_rows(const struct ox_node *n, int op, const struct ox_tensor *w, enum ox_layer_kind *kind,
                   int64_t *groups, int64_t *K, int64_t *N, float **rows);

/* A shape pass's record of `calls` matmuls of M columns by layer `layer`. */
void ox_note_layer_work(struct ox_ctx *c, int layer, int64_t M, int64_t calls);
/* Whether an Einsum node with constant second operand w is a layer: a matmul form whose w
 * has no batch labels and no ellipsis (its rows: w as [w's output labels][contracted]). */
bool ox_einsum_layer_ok(const struct ox_node *n, const struct ox_tensor *w);

/* Runs one node: in[] NULL for omitted inputs; out[] zeroed tensors. */
int ox_run_node(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out);

const struct mq_onnx_attr *ox_attr(const struct ox_node *n, const char *name);
int64_t ox_attr_int(const struct ox_node *n, const char *name, int64_t def);

/* ---- what the ops share (onnx_ops.c), for onnx_ops_shape.c and onnx_ops_nn.c ---------- */

#define OX_MAX_ELEMS ((int64_t)1 << 34) /* 64 GiB of f32: beyond, a shape is absurd */

static inline size_t ox_type_size(enum ox_type t)
{
    return t == OX_F32 ? sizeof(float) : sizeof(int64_t);
}

/* Element i of an F32 or I64/BOOL tensor, as a float. */
static inline float ox_fget(const struct ox_tensor *t, int64_t i)
{
    return t->type == OX_F32 ? ((const float *)t->data)[i] : (float)((const int64_t *)t->data)[i];
}

/* The product of d[from] .. d[to - 1] (1 when empty). */
static inline int64_t ox_prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= d[i];
    return p;
}

float ox_attr_float(const struct ox_node *n, const char *name, float def);
/* The attribute's string, in buf; `def` when absent. */
const char *ox_attr_str(const struct ox_node *n, const char *name, const char *def, char *buf,
                        size_t size);
/* Integer list from an attribute (borrowed from the file): count in *count (-1 when absent). */
const int64_t *ox_attr_ints(const struct ox_node *n, const char *name, int64_t *count);
/* The values of a small integer input (axes, pads, shapes), which must have data: at most
 * max into vals, their number in *n. */
int ox_input_ints(struct ox_ctx *c, const struct ox_tensor *t, const char *what, int64_t *vals,
                  int max, int *n);
/* Axis in [-rank, rank) to [0, rank). */
int ox_norm_axis(struct ox_ctx *c, int64_t axis, int rank, int *out);
/* MQ_EFORMAT when input `what` is missing (t NULL); ox_need_f32 also refuses integer
 * tensors (MQ_EUNSUPPORTED). */
int ox_need(struct ox_ctx *c, const struct ox_tensor *t, const char *what);
int ox_need_f32(struct ox_ctx *c, const struct ox_tensor *t, const char *what);
/* The broadcast shape of n_ts tensors (numpy rules) into *nd and dims; MQ_EFORMAT when
 * they do not broadcast. */
int ox_bcast(struct ox_ctx *c, struct ox_tensor *const *ts, int n_ts, int *nd, int64_t *dims);

/* Iterates the broadcast shape, giving each operand's offset. */
struct ox_biter {
    int nd, k;
    int64_t dims[MQ_ONNX_MAX_DIMS], idx[MQ_ONNX_MAX_DIMS], st[3][MQ_ONNX_MAX_DIMS], off[3];
};
/* Starts at index 0 of dims[nd] for the k (<= 3) tensors ts; ox_biter_next steps one
 * element in row-major order. */
void ox_biter_init(struct ox_biter *it, struct ox_tensor *const *ts, int k, int nd,
                   const int64_t *dims);
void ox_biter_next(struct ox_biter *it);

/* out = a copy of x's data with shape dims[nd] (same element count): what ox_out returns
 * when it gives no memory (a shape pass), else MQ_OK or an error. */
int ox_copy_tensor(struct ox_ctx *c, const struct ox_tensor *x, struct ox_tensor *out, int nd,
                   const int64_t *dims);

/* The ops of onnx_ops_shape.c and onnx_ops_nn.c, rows of ox_ops (onnx_ops.c). */
typedef int ox_op_fn(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                     struct ox_tensor *out);
ox_op_fn ox_op_reshape, ox_op_flatten, ox_op_squeeze, ox_op_unsqueeze, ox_op_transpose,
         ox_op_concat, ox_op_split, ox_op_slice, ox_op_gather, ox_op_expand, ox_op_pad, ox_op_rmean,
         ox_op_rsum, ox_op_rmax, ox_op_softmax, ox_op_logsoftmax, ox_op_batchnorm, ox_op_layernorm;
ox_op_fn ox_op_maxpool, ox_op_avgpool, ox_op_gap, ox_op_gmp, ox_op_resize, ox_op_conv, ox_op_conv_t,
         ox_op_gemm, ox_op_matmul;
ox_op_fn ox_op_rmin, ox_op_rprod, ox_op_rl2, ox_op_instnorm, ox_op_groupnorm, ox_op_argmax,
    ox_op_topk, ox_op_d2s, ox_op_s2d, ox_op_tile, ox_op_upsample, ox_op_einsum, ox_op_lstm,
    ox_op_gru, ox_op_matmul_int, ox_op_conv_int;

/* Hands every layer matmul's input ([M][K] row-major: M columns of K) to fn before it
 * runs; a grouped layer (conv with groups) hands one call per group, and group j's
 * columns meet the layer's rows j*N .. (j+1)*N - 1. */
void ox_exec_set_capture(struct mq_onnx_exec *x, mq_capture_fn fn, void *arg);

/* graph compilation (onnx_graph.c) */
int ox_graph_compile(struct mq_onnx_file *f, const struct onnx_task *task, struct ox_graph **out);
void ox_graph_free(struct ox_graph *g);

/* tasks (onnx_runner.c): constant inputs a model's task binds */
int onnx_task_bound_value(const struct onnx_task *t, const char *input, int64_t *value);
const struct onnx_task *onnx_task_detect(const struct mq_onnx_file *f);

#endif
