/* onnx/onnx_ops.c - the ONNX ops mixq interprets, on host tensors (onnx/onnx_internal.h):
 * the helpers every op uses (outputs, attributes, broadcasting), the elementwise ops
 * (n-ary Max/Min/Sum/Mean and Gelu among them), Cast/Shape/Constant/Range, and the table
 * of ops with the node runner. Shape ops, reductions and normalization are in
 * onnx_ops_shape.c; spatial ops and the layers in onnx_ops_nn.c.
 *
 * Every op checks its inputs' ranks, shapes and types against the ONNX operator spec
 * before touching data (a model's shapes are data from a file), computes its output
 * shapes, and asks ox_out() whether to compute values. Floats are F32; integer
 * arithmetic is int64 (narrower ONNX integer types wrap on Cast). Layers (Conv,
 * ConvTranspose, Gemm, MatMul and matmul-like Einsum with a constant weight) multiply
 * through ox_matmul(), which runs the layer on the backend in a session, or in f32 on the
 * host. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp16.h"
#include "core/status.h"
#include "onnx/onnx_internal.h"

int ox_fail(const struct ox_ctx *c, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c && c->node)
        return mq_error(code, "node '%s' (%s): %s", c->node->src->name[0] ? c->node->src->name : c->node->src->outputs[0],
                        c->node->src->op_type, msg);
    return mq_error(code, "%s", msg);
}

static int64_t f2i(float x);

uint64_t ox_tensor_bytes(const struct ox_tensor *t) { return (uint64_t)t->n * ox_type_size(t->type); }

void ox_tensor_release(struct ox_tensor *t)
{
    if (!t)
        return;
    if (!t->borrowed)
        free(t->data);
    memset(t, 0, sizeof(*t));
}

int ox_out(struct ox_ctx *c, struct ox_tensor *t, enum ox_type type, int nd, const int64_t *dims)
{
    if (nd < 0 || nd > MQ_ONNX_MAX_DIMS)
        return ox_fail(c, MQ_EUNSUPPORTED, "output of rank %d (at most %d)", nd, MQ_ONNX_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] < 0)
            return ox_fail(c, MQ_EFORMAT, "output dimension %d is negative (%" PRId64 ")", i, dims[i]);
        if (dims[i] > 0 && n > OX_MAX_ELEMS / dims[i])
            return ox_fail(c, MQ_ENOMEM, "output of more than 2^34 elements");
        n *= dims[i];
    }
    if (c->max_elems && n > c->max_elems)
        return ox_fail(c, MQ_EUNSUPPORTED, "a constant of %" PRId64 " elements (mixq folds at most %" PRId64 ")", n,
                       c->max_elems);
    memset(t, 0, sizeof(*t));
    t->type = type;
    t->nd = nd;
    for (int i = 0; i < nd; i++)
        t->dims[i] = dims[i];
    t->n = n;
    if (c->shape_only && !(c->inputs_have_data && n <= OX_SHAPE_DATA_MAX))
        return 0;
    t->data = calloc((size_t)(n ? n : 1), ox_type_size(type));
    if (!t->data)
        return ox_fail(c, MQ_ENOMEM, "cannot allocate %" PRId64 " elements", n);
    return 1;
}

/* ---- attributes and small integer inputs ------------------------------------------------ */

const struct mq_onnx_attr *ox_attr(const struct ox_node *n, const char *name)
{
    for (int i = 0; i < n->src->n_attrs; i++)
        if (strcmp(n->src->attrs[i].name, name) == 0)
            return &n->src->attrs[i];
    return NULL;
}

int64_t ox_attr_int(const struct ox_node *n, const char *name, int64_t def)
{
    const struct mq_onnx_attr *a = ox_attr(n, name);
    return a ? a->i : def;
}

float ox_attr_float(const struct ox_node *n, const char *name, float def)
{
    const struct mq_onnx_attr *a = ox_attr(n, name);
    return a ? a->f : def;
}

/* The attribute's string, in buf; `def` when absent. */
const char *ox_attr_str(const struct ox_node *n, const char *name, const char *def, char *buf, size_t size)
{
    const struct mq_onnx_attr *a = ox_attr(n, name);
    if (!a)
        return def;
    size_t k = a->s.n < size - 1 ? a->s.n : size - 1;
    if (k)
        memcpy(buf, a->s.p, k);
    buf[k] = '\0';
    return buf;
}

/* Integer list from an attribute: count in *n (-1 when absent). */
const int64_t *ox_attr_ints(const struct ox_node *n, const char *name, int64_t *count)
{
    const struct mq_onnx_attr *a = ox_attr(n, name);
    *count = a ? a->n_ints : -1;
    return a ? a->ints : NULL;
}

/* The values of a small integer input (axes, pads, shapes), which must have data. */
int ox_input_ints(struct ox_ctx *c, const struct ox_tensor *t, const char *what, int64_t *vals, int max, int *n)
{
    if (t->type == OX_F32)
        return ox_fail(c, MQ_EFORMAT, "%s is a float tensor", what);
    if (!t->data)
        return ox_fail(c, MQ_EUNSUPPORTED, "%s depends on data that mixq computes only at run time", what);
    if (t->nd > 1 || t->n > max)
        return ox_fail(c, MQ_EUNSUPPORTED, "%s has %" PRId64 " values (at most %d)", what, t->n, max);
    for (int64_t i = 0; i < t->n; i++)
        vals[i] = ((const int64_t *)t->data)[i];
    *n = (int)t->n;
    return MQ_OK;
}

/* Axis in [-rank, rank) to [0, rank). */
int ox_norm_axis(struct ox_ctx *c, int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank)
        return ox_fail(c, MQ_EFORMAT, "axis %" PRId64 " outside a tensor of rank %d", axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return MQ_OK;
}

int ox_need(struct ox_ctx *c, const struct ox_tensor *t, const char *what)
{
    if (!t)
        return ox_fail(c, MQ_EFORMAT, "input %s is missing", what);
    return MQ_OK;
}

int ox_need_f32(struct ox_ctx *c, const struct ox_tensor *t, const char *what)
{
    int rc = ox_need(c, t, what);
    if (rc == MQ_OK && t->type != OX_F32)
        rc = ox_fail(c, MQ_EUNSUPPORTED, "input %s is an integer tensor; mixq runs this op on floats", what);
    return rc;
}

/* ---- broadcasting ----------------------------------------------------------------------- */

int ox_bcast(struct ox_ctx *c, struct ox_tensor *const *ts, int n_ts, int *nd, int64_t *dims)
{
    *nd = 0;
    for (int k = 0; k < n_ts; k++)
        if (ts[k]->nd > *nd)
            *nd = ts[k]->nd;
    for (int i = 0; i < *nd; i++) {
        int64_t d = 1;
        for (int k = 0; k < n_ts; k++) {
            int j = i - (*nd - ts[k]->nd);
            if (j < 0)
                continue;
            int64_t e = ts[k]->dims[j];
            if (e == d || e == 1)
                continue;
            if (d != 1)
                return ox_fail(c, MQ_EFORMAT, "shapes do not broadcast (dimension %d: %" PRId64 " vs %" PRId64 ")", i,
                               d, e);
            d = e;
        }
        dims[i] = d;
    }
    return MQ_OK;
}

/* Element strides of t seen with the broadcast shape (0 along broadcast dims). */
static void bstrides(const struct ox_tensor *t, int nd, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int j = i - (nd - t->nd);
        if (j < 0 || t->dims[j] == 1 || dims[i] == 1) {
            st[i] = 0;
        } else {
            st[i] = s;
        }
        if (j >= 0)
            s *= t->dims[j];
    }
}

void ox_biter_init(struct ox_biter *it, struct ox_tensor *const *ts, int k, int nd, const int64_t *dims)
{
    memset(it, 0, sizeof(*it));
    it->nd = nd;
    it->k = k;
    memcpy(it->dims, dims, (size_t)nd * sizeof(*dims));
    for (int i = 0; i < k; i++)
        bstrides(ts[i], nd, dims, it->st[i]);
}

void ox_biter_next(struct ox_biter *it)
{
    for (int d = it->nd - 1; d >= 0; d--) {
        it->idx[d]++;
        for (int i = 0; i < it->k; i++)
            it->off[i] += it->st[i][d];
        if (it->idx[d] < it->dims[d])
            return;
        for (int i = 0; i < it->k; i++)
            it->off[i] -= it->st[i][d] * it->dims[d];
        it->idx[d] = 0;
    }
}

/* ---- elementwise binary ----------------------------------------------------------------- */

enum bin { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_EQ, B_LT, B_GT, B_AND, B_OR, B_MOD, B_COUNT };

static float fbin(enum bin op, float a, float b)
{
    switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_POW: return b == 2.0f ? a * a : b == 0.5f ? sqrtf(a) : powf(a, b);
    case B_MOD: return fmodf(a, b);
    default: return 0.0f;
    }
}

/* o[i] = x[i*sx] op y[i*sy] for i < n, strides 0 or 1: the op chosen once per run. */
static void fbin_run(enum bin op, const float *x, int sx, const float *y, int sy, float *o, int64_t n)
{
#define RUN_LOOP(expr)                                                                            \
    do {                                                                                          \
        if (sx && sy)                                                                             \
            for (int64_t i = 0; i < n; i++) {                                                     \
                float a = x[i], b = y[i];                                                         \
                o[i] = (expr);                                                                    \
            }                                                                                     \
        else if (sx)                                                                              \
            for (int64_t i = 0; i < n; i++) {                                                     \
                float a = x[i], b = y[0];                                                         \
                o[i] = (expr);                                                                    \
            }                                                                                     \
        else                                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                     \
                float a = x[0], b = y[i * sy];                                                    \
                o[i] = (expr);                                                                    \
            }                                                                                     \
    } while (0)
    switch (op) {
    case B_ADD: RUN_LOOP(a + b); break;
    case B_SUB: RUN_LOOP(a - b); break;
    case B_MUL: RUN_LOOP(a * b); break;
    case B_DIV: RUN_LOOP(a / b); break;
    default: RUN_LOOP(fbin(op, a, b)); break;
    }
#undef RUN_LOOP
}

static int binary(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out,
                  enum bin op)
{
    int rc;
    if ((rc = ox_need(c, in[0], "A")) < 0 || (rc = ox_need(c, in[1], "B")) < 0)
        return rc;
    const struct ox_tensor *a = in[0], *b = in[1];
    int nd;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    if ((rc = ox_bcast(c, in, 2, &nd, dims)) < 0)
        return rc;
    bool cmp = op == B_EQ || op == B_LT || op == B_GT || op == B_AND || op == B_OR;
    bool fl = a->type == OX_F32 || b->type == OX_F32;
    if (!cmp && op != B_POW && a->type != b->type)
        return ox_fail(c, MQ_EFORMAT, "operands of different types");
    enum ox_type ot = cmp ? OX_BOOL : fl ? OX_F32 : a->type;
    if ((rc = ox_out(c, out, ot, nd, dims)) <= 0)
        return rc;
    struct ox_biter it;
    ox_biter_init(&it, in, 2, nd, dims);
    if (ot == OX_F32 && a->type == OX_F32 && b->type == OX_F32 && out->n > 0) {
        /* runs of the innermost dims along which each operand is contiguous or constant
         * (x * scale[c] over [N, C, H, W] is runs of H*W against one scale) */
        int64_t run = 1;
        int inner = nd, sa = -1, sb = -1;
        while (inner > 0) {
            int d = inner - 1;
            int ka = it.st[0][d] == run ? 1 : it.st[0][d] == 0 ? 0 : -1;
            int kb = it.st[1][d] == run ? 1 : it.st[1][d] == 0 ? 0 : -1;
            if (dims[d] == 1) {
                inner--;
                continue;
            }
            if (ka < 0 || kb < 0 || (sa >= 0 && ka != sa) || (sb >= 0 && kb != sb))
                break;
            sa = ka, sb = kb;
            run *= dims[d];
            inner--;
        }
        sa = sa < 0 ? 1 : sa;
        sb = sb < 0 ? 1 : sb;
        struct ox_biter outer;
        ox_biter_init(&outer, in, 2, inner, dims);
        for (int k = 0; k < 2; k++)
            memcpy(outer.st[k], it.st[k], (size_t)inner * sizeof(int64_t));
        const float *x = a->data, *y = b->data;
        float *o = out->data;
        for (int64_t i = 0; i < out->n; i += run, ox_biter_next(&outer))
            fbin_run(op, x + outer.off[0], sa, y + outer.off[1], sb, o + i, run);
        return MQ_OK;
    }
    for (int64_t i = 0; i < out->n; i++, ox_biter_next(&it)) {
        if (fl) {
            float x = ox_fget(a, it.off[0]), y = ox_fget(b, it.off[1]);
            if (ot == OX_BOOL)
                ((int64_t *)out->data)[i] = op == B_EQ ? x == y : op == B_LT ? x < y : op == B_GT ? x > y : 0;
            else
                ((float *)out->data)[i] = fbin(op, x, y);
            continue;
        }
        int64_t x = ((const int64_t *)a->data)[it.off[0]], y = ((const int64_t *)b->data)[it.off[1]], r = 0;
        switch (op) {
        case B_ADD: r = (int64_t)((uint64_t)x + (uint64_t)y); break;
        case B_SUB: r = (int64_t)((uint64_t)x - (uint64_t)y); break;
        case B_MUL: r = (int64_t)((uint64_t)x * (uint64_t)y); break;
        case B_DIV:
        case B_MOD:
            if (y == 0 || (x == INT64_MIN && y == -1))
                return ox_fail(c, MQ_EFORMAT, "integer division by zero or overflow");
            r = op == B_DIV ? x / y : x % y;
            break;
        case B_POW: {
            r = 1;
            for (int64_t e = 0; e < y && e < 64; e++)
                r = (int64_t)((uint64_t)r * (uint64_t)x);
            break;
        }
        case B_EQ: r = x == y; break;
        case B_LT: r = x < y; break;
        case B_GT: r = x > y; break;
        case B_AND: r = x && y; break;
        case B_OR: r = x || y; break;
        case B_COUNT: break;
        }
        ((int64_t *)out->data)[i] = r;
    }
    (void)n;
    return MQ_OK;
}

#define BINOP(fn, op)                                                                             \
    static int fn(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out) \
    {                                                                                             \
        return binary(c, n, in, out, op);                                                         \
    }
BINOP(op_add, B_ADD)
BINOP(op_sub, B_SUB)
BINOP(op_mul, B_MUL)
BINOP(op_div, B_DIV)
BINOP(op_pow, B_POW)
BINOP(op_equal, B_EQ)
BINOP(op_less, B_LT)
BINOP(op_greater, B_GT)
BINOP(op_and, B_AND)
BINOP(op_or, B_OR)
BINOP(op_mod, B_MOD)

/* ---- n-ary elementwise: Max, Min, Sum, Mean ------------------------------------------------ */

enum nary { N_MAX, N_MIN, N_SUM, N_MEAN };

/* One or more inputs broadcast together (numpy rules); Max and Min also on integers. */
static int nary(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out,
                enum nary op)
{
    int rc;
    for (int k = 0; k < n->n_in; k++)
        if ((rc = ox_need(c, in[k], "data_0..")) < 0)
            return rc;
    enum ox_type t = in[0]->type;
    for (int k = 1; k < n->n_in; k++)
        if (in[k]->type != t)
            return ox_fail(c, MQ_EFORMAT, "inputs of different types");
    if (t == OX_BOOL || (t == OX_I64 && (op == N_SUM || op == N_MEAN)))
        return ox_fail(c, MQ_EUNSUPPORTED, "integer inputs; mixq runs %s on floats", op == N_SUM ? "Sum" : "Mean");
    int nd;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    if ((rc = ox_bcast(c, in, n->n_in, &nd, dims)) < 0 || (rc = ox_out(c, out, t, nd, dims)) <= 0)
        return rc;
    for (int k = 0; k < n->n_in; k++) {
        struct ox_biter it;
        ox_biter_init(&it, &in[k], 1, nd, dims);
        for (int64_t i = 0; i < out->n; i++, ox_biter_next(&it)) {
            if (t == OX_I64) {
                int64_t v = ((const int64_t *)in[k]->data)[it.off[0]], *o = (int64_t *)out->data + i;
                *o = k == 0 ? v : op == N_MAX ? (v > *o ? v : *o) : (v < *o ? v : *o);
                continue;
            }
            float v = ((const float *)in[k]->data)[it.off[0]], *o = (float *)out->data + i;
            if (k == 0)
                *o = v;
            else if (op == N_MAX)
                *o = v > *o || v != v ? v : *o; /* NaN propagates, as numpy's maximum */
            else if (op == N_MIN)
                *o = v < *o || v != v ? v : *o;
            else
                *o += v;
        }
    }
    if (op == N_MEAN)
        for (int64_t i = 0; i < out->n; i++)
            ((float *)out->data)[i] /= (float)n->n_in;
    return MQ_OK;
}

#define NARY(fn, op)                                                                              \
    static int fn(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out) \
    {                                                                                             \
        return nary(c, n, in, out, op);                                                           \
    }
NARY(op_max, N_MAX)
NARY(op_min, N_MIN)
NARY(op_sum, N_SUM)
NARY(op_mean, N_MEAN)

static int op_where(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need(c, in[0], "condition")) < 0 || (rc = ox_need(c, in[1], "X")) < 0 || (rc = ox_need(c, in[2], "Y")) < 0)
        return rc;
    if (in[1]->type != in[2]->type)
        return ox_fail(c, MQ_EFORMAT, "X and Y of different types");
    int nd;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    if ((rc = ox_bcast(c, in, 3, &nd, dims)) < 0 || (rc = ox_out(c, out, in[1]->type, nd, dims)) <= 0)
        return rc;
    if (in[0]->type == OX_F32)
        return ox_fail(c, MQ_EFORMAT, "condition is not bool");
    struct ox_biter it;
    ox_biter_init(&it, in, 3, nd, dims);
    const int64_t *cond = in[0]->data;
    for (int64_t i = 0; i < out->n; i++, ox_biter_next(&it)) {
        const struct ox_tensor *s = cond[it.off[0]] ? in[1] : in[2];
        int64_t off = cond[it.off[0]] ? it.off[1] : it.off[2];
        if (out->type == OX_F32)
            ((float *)out->data)[i] = ((const float *)s->data)[off];
        else
            ((int64_t *)out->data)[i] = ((const int64_t *)s->data)[off];
    }
    (void)n;
    return MQ_OK;
}

/* ---- elementwise unary ------------------------------------------------------------------ */

static float u_relu(float x, float a, float b) { (void)a, (void)b; return x > 0.0f ? x : 0.0f; }
static float u_leaky(float x, float a, float b) { (void)b; return x >= 0.0f ? x : a * x; }
static float u_sigmoid(float x, float a, float b) { (void)a, (void)b; return 1.0f / (1.0f + expf(-x)); }
static float u_tanh(float x, float a, float b) { (void)a, (void)b; return tanhf(x); }
static float u_hsig(float x, float a, float b) { return fmaxf(0.0f, fminf(1.0f, a * x + b)); }
static float u_hswish(float x, float a, float b)
{
    (void)a, (void)b;
    return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f));
}
static float u_exp(float x, float a, float b) { (void)a, (void)b; return expf(x); }
static float u_log(float x, float a, float b) { (void)a, (void)b; return logf(x); }
static float u_sqrt(float x, float a, float b) { (void)a, (void)b; return sqrtf(x); }
static float u_erf(float x, float a, float b) { (void)a, (void)b; return erff(x); }
static float u_neg(float x, float a, float b) { (void)a, (void)b; return -x; }
static float u_abs(float x, float a, float b) { (void)a, (void)b; return fabsf(x); }
static float u_recip(float x, float a, float b) { (void)a, (void)b; return 1.0f / x; }
static float u_floor(float x, float a, float b) { (void)a, (void)b; return floorf(x); }
static float u_ceil(float x, float a, float b) { (void)a, (void)b; return ceilf(x); }
static float u_round(float x, float a, float b) { (void)a, (void)b; return nearbyintf(x); }
static float u_clip(float x, float a, float b) { return x < a ? a : x > b ? b : x; }
static float u_sin(float x, float a, float b) { (void)a, (void)b; return sinf(x); }
static float u_cos(float x, float a, float b) { (void)a, (void)b; return cosf(x); }
static float u_softplus(float x, float a, float b) { (void)a, (void)b; return x > 20.0f ? x : log1pf(expf(x)); }
static float u_elu(float x, float a, float b) { (void)b; return x >= 0.0f ? x : a * (expf(x) - 1.0f); }

static int unary(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out,
                 float (*f)(float, float, float), float a, float b, bool ints_ok)
{
    int rc = ox_need(c, in[0], "X");
    if (rc < 0)
        return rc;
    if (in[0]->type != OX_F32 && !ints_ok)
        return ox_fail(c, MQ_EUNSUPPORTED, "integer input; mixq runs this op on floats");
    if ((rc = ox_out(c, out, in[0]->type, in[0]->nd, in[0]->dims)) <= 0)
        return rc;
    if (in[0]->type == OX_F32) {
        const float *x = in[0]->data;
        float *y = out->data;
        for (int64_t i = 0; i < out->n; i++)
            y[i] = f(x[i], a, b);
    } else { /* integers: Neg, Abs and Clip only (ints_ok), exact */
        const int64_t *x = in[0]->data;
        int64_t *y = out->data, lo = f2i(a), hi = f2i(b);
        for (int64_t i = 0; i < out->n; i++) {
            int64_t v = x[i];
            if (f == u_neg)
                y[i] = (int64_t)(0 - (uint64_t)v);
            else if (f == u_abs)
                y[i] = v < 0 ? (int64_t)(0 - (uint64_t)v) : v;
            else
                y[i] = v < lo ? lo : v > hi ? hi : v;
        }
    }
    (void)n;
    return MQ_OK;
}

#define UNOP(fn, f, ints)                                                                         \
    static int fn(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out) \
    {                                                                                             \
        return unary(c, n, in, out, f, 0.0f, 0.0f, ints);                                         \
    }
UNOP(op_relu, u_relu, false)
UNOP(op_sigmoid, u_sigmoid, false)
UNOP(op_tanh, u_tanh, false)
UNOP(op_hswish, u_hswish, false)
UNOP(op_exp, u_exp, false)
UNOP(op_log, u_log, false)
UNOP(op_sqrt, u_sqrt, false)
UNOP(op_erf, u_erf, false)
UNOP(op_neg, u_neg, true)
UNOP(op_abs, u_abs, true)
UNOP(op_recip, u_recip, false)
UNOP(op_floor, u_floor, false)
UNOP(op_ceil, u_ceil, false)
UNOP(op_round, u_round, false)
UNOP(op_sin, u_sin, false)
UNOP(op_cos, u_cos, false)
UNOP(op_softplus, u_softplus, false)

static int op_leaky(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return unary(c, n, in, out, u_leaky, ox_attr_float(n, "alpha", 0.01f), 0.0f, false);
}

static int op_elu(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return unary(c, n, in, out, u_elu, ox_attr_float(n, "alpha", 1.0f), 0.0f, false);
}

static int op_hsig(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return unary(c, n, in, out, u_hsig, ox_attr_float(n, "alpha", 0.2f), ox_attr_float(n, "beta", 0.5f), false);
}

/* Gelu (opset 20): approximate "none" (erf) or "tanh". */
static float u_gelu(float x, float a, float b)
{
    (void)a, (void)b;
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}
static float u_gelu_tanh(float x, float a, float b)
{
    (void)a, (void)b;
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}

static int op_gelu(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    char buf[16];
    const char *ap = ox_attr_str(n, "approximate", "none", buf, sizeof(buf));
    if (strcmp(ap, "none") != 0 && strcmp(ap, "tanh") != 0)
        return ox_fail(c, MQ_EFORMAT, "approximate '%s' (want none or tanh)", ap);
    return unary(c, n, in, out, ap[0] == 't' ? u_gelu_tanh : u_gelu, 0.0f, 0.0f, false);
}

static int op_clip(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    float lo = ox_attr_float(n, "min", -FLT_MAX), hi = ox_attr_float(n, "max", FLT_MAX);
    for (int k = 1; k <= 2; k++) {
        if (n->n_in <= k || !in[k])
            continue;
        if (in[k]->n != 1)
            return ox_fail(c, MQ_EFORMAT, "clip bound is not a scalar");
        if (!in[k]->data) {
            if (c->shape_only)
                return unary(c, n, in, out, u_clip, lo, hi, true);
            return ox_fail(c, MQ_EINTERNAL, "clip bound has no data");
        }
        float v = ox_fget(in[k], 0);
        if (k == 1)
            lo = v;
        else
            hi = v;
    }
    return unary(c, n, in, out, u_clip, lo, hi, true);
}

static int op_not(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = ox_need(c, in[0], "X");
    if (rc < 0)
        return rc;
    if (in[0]->type != OX_BOOL)
        return ox_fail(c, MQ_EFORMAT, "input is not bool");
    if ((rc = ox_out(c, out, OX_BOOL, in[0]->nd, in[0]->dims)) <= 0)
        return rc;
    for (int64_t i = 0; i < out->n; i++)
        ((int64_t *)out->data)[i] = !((const int64_t *)in[0]->data)[i];
    (void)n;
    return MQ_OK;
}

int ox_copy_tensor(struct ox_ctx *c, const struct ox_tensor *x, struct ox_tensor *out, int nd, const int64_t *dims)
{
    int rc = ox_out(c, out, x->type, nd, dims);
    if (rc <= 0)
        return rc;
    if (!x->data)
        return ox_fail(c, MQ_EINTERNAL, "input has no data");
    memcpy(out->data, x->data, (size_t)x->n * ox_type_size(x->type));
    return MQ_OK;
}

static int op_identity(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = ox_need(c, in[0], "input");
    (void)n;
    return rc < 0 ? rc : ox_copy_tensor(c, in[0], out, in[0]->nd, in[0]->dims);
}

/* ---- Cast, Shape, Constant, ConstantOfShape, Range --------------------------------------- */

static int cast_kind(int32_t to, enum ox_type *t)
{
    switch (to) {
    case MQ_ONNX_FLOAT: case MQ_ONNX_FLOAT16: case MQ_ONNX_DOUBLE: case MQ_ONNX_BFLOAT16: *t = OX_F32; return MQ_OK;
    case MQ_ONNX_BOOL: *t = OX_BOOL; return MQ_OK;
    case MQ_ONNX_INT8: case MQ_ONNX_UINT8: case MQ_ONNX_INT16: case MQ_ONNX_UINT16: case MQ_ONNX_INT32:
    case MQ_ONNX_UINT32: case MQ_ONNX_INT64: case MQ_ONNX_UINT64: *t = OX_I64; return MQ_OK;
    }
    return MQ_EUNSUPPORTED;
}

static int64_t wrap_int(int32_t to, int64_t v)
{
    switch (to) {
    case MQ_ONNX_INT8: return (int8_t)(uint8_t)(uint64_t)v;
    case MQ_ONNX_UINT8: return (uint8_t)(uint64_t)v;
    case MQ_ONNX_INT16: return (int16_t)(uint16_t)(uint64_t)v;
    case MQ_ONNX_UINT16: return (uint16_t)(uint64_t)v;
    case MQ_ONNX_INT32: return (int32_t)(uint32_t)(uint64_t)v;
    case MQ_ONNX_UINT32: return (uint32_t)(uint64_t)v;
    }
    return v;
}

static int64_t f2i(float x)
{
    if (!(x == x))
        return 0;
    if (x >= 9.2e18f)
        return INT64_MAX;
    if (x <= -9.2e18f)
        return INT64_MIN;
    return (int64_t)x;
}

static int op_cast(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = ox_need(c, in[0], "input");
    if (rc < 0)
        return rc;
    int32_t to = (int32_t)ox_attr_int(n, "to", 0);
    enum ox_type t;
    if (cast_kind(to, &t) < 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "cast to %s", mq_onnx_elem_name(to));
    if ((rc = ox_out(c, out, t, in[0]->nd, in[0]->dims)) <= 0)
        return rc;
    for (int64_t i = 0; i < out->n; i++) {
        if (t == OX_F32) {
            float v = ox_fget(in[0], i);
            if (to == MQ_ONNX_FLOAT16) /* round as the narrow type would */
                v = mq_f16_to_f32(mq_f32_to_f16(v));
            else if (to == MQ_ONNX_BFLOAT16)
                v = mq_bf16_to_f32(mq_f32_to_bf16(v));
            ((float *)out->data)[i] = v;
        } else {
            int64_t v = in[0]->type == OX_F32 ? f2i(((const float *)in[0]->data)[i]) : ((const int64_t *)in[0]->data)[i];
            ((int64_t *)out->data)[i] = t == OX_BOOL ? v != 0 || (in[0]->type == OX_F32 && ((const float *)in[0]->data)[i] != 0.0f)
                                                     : wrap_int(to, v);
        }
    }
    return MQ_OK;
}

static int op_shape(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = ox_need(c, in[0], "data");
    if (rc < 0)
        return rc;
    int64_t r = in[0]->nd, s = ox_attr_int(n, "start", 0), e = ox_attr_int(n, "end", r);
    s = s < 0 ? s + r : s;
    e = e < 0 ? e + r : e;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t len = e > s ? e - s : 0;
    c->inputs_have_data = true; /* the shape is known even when the values are not */
    if ((rc = ox_out(c, out, OX_I64, 1, &len)) <= 0)
        return rc;
    for (int64_t i = 0; i < len; i++)
        ((int64_t *)out->data)[i] = in[0]->dims[s + i];
    return MQ_OK;
}

static int op_size(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = ox_need(c, in[0], "data");
    if (rc < 0)
        return rc;
    c->inputs_have_data = true;
    if ((rc = ox_out(c, out, OX_I64, 0, NULL)) <= 0)
        return rc;
    ((int64_t *)out->data)[0] = in[0]->n;
    (void)n;
    return MQ_OK;
}

/* A tensor attribute's value as an interpreter tensor. */
static int from_proto(struct ox_ctx *c, const struct mq_onnx_tensor *p, struct ox_tensor *out)
{
    enum ox_type t;
    if (cast_kind(p->elem, &t) < 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "tensor of %s", mq_onnx_elem_name(p->elem));
    bool saved = c->inputs_have_data;
    c->inputs_have_data = true;
    int rc = ox_out(c, out, t, p->n_dims, p->dims);
    c->inputs_have_data = saved;
    if (rc <= 0)
        return rc;
    rc = t == OX_F32 ? mq_onnx_tensor_f32(p, out->data) : mq_onnx_tensor_i64(p, out->data);
    if (rc == MQ_OK && t == OX_BOOL)
        for (int64_t i = 0; i < out->n; i++)
            ((int64_t *)out->data)[i] = ((int64_t *)out->data)[i] != 0;
    return rc;
}

static int op_constant(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    (void)in;
    const struct mq_onnx_attr *a;
    if ((a = ox_attr(n, "value")) && a->t)
        return from_proto(c, a->t, out);
    bool saved = c->inputs_have_data;
    c->inputs_have_data = true;
    int rc = MQ_OK;
    if ((a = ox_attr(n, "value_float"))) {
        if ((rc = ox_out(c, out, OX_F32, 0, NULL)) > 0)
            ((float *)out->data)[0] = a->f;
    } else if ((a = ox_attr(n, "value_int"))) {
        if ((rc = ox_out(c, out, OX_I64, 0, NULL)) > 0)
            ((int64_t *)out->data)[0] = a->i;
    } else if ((a = ox_attr(n, "value_floats"))) {
        if ((rc = ox_out(c, out, OX_F32, 1, &a->n_floats)) > 0 && a->n_floats)
            memcpy(out->data, a->floats, (size_t)a->n_floats * sizeof(float));
    } else if ((a = ox_attr(n, "value_ints"))) {
        if ((rc = ox_out(c, out, OX_I64, 1, &a->n_ints)) > 0 && a->n_ints)
            memcpy(out->data, a->ints, (size_t)a->n_ints * sizeof(int64_t));
    } else {
        rc = ox_fail(c, MQ_EUNSUPPORTED, "constant without a value, value_float(s) or value_int(s) attribute");
    }
    c->inputs_have_data = saved;
    return rc < 0 ? rc : MQ_OK;
}

static int op_const_of_shape(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                             struct ox_tensor *out)
{
    int64_t dims[MQ_ONNX_MAX_DIMS];
    int nd, rc;
    if ((rc = ox_need(c, in[0], "input")) < 0 || (rc = ox_input_ints(c, in[0], "shape", dims, MQ_ONNX_MAX_DIMS, &nd)) < 0)
        return rc;
    const struct mq_onnx_attr *a = ox_attr(n, "value");
    struct ox_tensor v = {0};
    enum ox_type t = OX_F32;
    if (a && a->t) {
        if (a->t->n_elems != 1)
            return ox_fail(c, MQ_EFORMAT, "value is not one element");
        bool saved = c->shape_only;
        c->shape_only = false;
        rc = from_proto(c, a->t, &v);
        c->shape_only = saved;
        if (rc < 0)
            return rc;
        t = v.type;
    }
    if ((rc = ox_out(c, out, t, nd, dims)) > 0 && v.data)
        for (int64_t i = 0; i < out->n; i++) {
            if (t == OX_F32)
                ((float *)out->data)[i] = ((float *)v.data)[0];
            else
                ((int64_t *)out->data)[i] = ((int64_t *)v.data)[0];
        }
    ox_tensor_release(&v);
    return rc < 0 ? rc : MQ_OK;
}

static int op_range(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    for (int k = 0; k < 3; k++) {
        int rc = ox_need(c, in[k], "start/limit/delta");
        if (rc < 0)
            return rc;
        if (in[k]->n != 1 || !in[k]->data)
            return ox_fail(c, in[k]->data ? MQ_EFORMAT : MQ_EUNSUPPORTED, "start, limit and delta must be known scalars");
    }
    enum ox_type t = in[0]->type;
    double s = ox_fget(in[0], 0), l = ox_fget(in[1], 0), d = ox_fget(in[2], 0);
    if (d == 0.0)
        return ox_fail(c, MQ_EFORMAT, "delta is 0");
    double cnt = ceil((l - s) / d);
    int64_t len = cnt > 0 ? (int64_t)cnt : 0;
    if (cnt > 1e9)
        return ox_fail(c, MQ_ENOMEM, "range of %.0f elements", cnt);
    int rc = ox_out(c, out, t, 1, &len);
    if (rc <= 0)
        return rc;
    for (int64_t i = 0; i < len; i++) {
        if (t == OX_F32)
            ((float *)out->data)[i] = (float)(s + (double)i * d);
        else
            ((int64_t *)out->data)[i] = ((const int64_t *)in[0]->data)[0] + i * ((const int64_t *)in[2]->data)[0];
    }
    (void)n;
    return MQ_OK;
}

static int op_if(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    (void)n, (void)in, (void)out;
    return ox_fail(c, MQ_EUNSUPPORTED, "If whose condition is known only at run time");
}

/* ---- the table ------------------------------------------------------------------------- */

#define ANY -1

/* ---- QuantizeLinear, DequantizeLinear: per tensor or per axis ------------------------------- */

/* The file's element type of the node's input k (a constant's or graph input's), 0 unknown. */
static int32_t input_elem(const struct ox_ctx *c, const struct ox_node *n, int k)
{
    if (!n->in || k >= n->n_in || n->in[k] < 0 || !c->g)
        return 0;
    return c->g->values[n->in[k]].elem;
}

/* Which scale serves element i of x: per tensor (one scale: *len 1), or per axis (a 1-D
 * scale of x's dims[axis] values: element i takes scale (i / *inner) % *len). */
static int qdq_layout(struct ox_ctx *c, const struct ox_node *n, const struct ox_tensor *x,
                      const struct ox_tensor *scale, const struct ox_tensor *zp, int64_t *len,
                      int64_t *inner)
{
    if (ox_attr_int(n, "block_size", 0) != 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "blocked quantization (block_size %" PRId64 ")",
                       ox_attr_int(n, "block_size", 0));
    *len = 1;
    *inner = 1;
    if (scale->n != 1 || scale->nd > 1) {
        int64_t axis = ox_attr_int(n, "axis", 1);
        axis = axis < 0 ? axis + x->nd : axis;
        if (scale->nd != 1 || axis < 0 || axis >= x->nd || x->dims[axis] != scale->n)
            return ox_fail(c, MQ_EFORMAT,
                           "a scale of %" PRId64 " values for axis %" PRId64 " of a rank-%d input",
                           scale->n, ox_attr_int(n, "axis", 1), x->nd);
        *len = scale->n;
        for (int d = (int)axis + 1; d < x->nd; d++)
            *inner *= x->dims[d];
    }
    if (zp && zp->n != scale->n)
        return ox_fail(c, MQ_EFORMAT, "a zero point of %" PRId64 " values for %" PRId64 " scales",
                       zp->n, scale->n);
    return MQ_OK;
}

static int op_dequant(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                      struct ox_tensor *out)
{
    int rc;
    const struct ox_tensor *zp = n->n_in > 2 ? in[2] : NULL;
    int64_t len, inner;
    if ((rc = ox_need(c, in[0], "x")) < 0 || (rc = ox_need_f32(c, in[1], "x_scale")) < 0 ||
        (zp && (rc = ox_need(c, zp, "x_zero_point")) < 0) ||
        (rc = qdq_layout(c, n, in[0], in[1], zp, &len, &inner)) < 0)
        return rc;
    if ((rc = ox_out(c, out, OX_F32, in[0]->nd, in[0]->dims)) <= 0)
        return rc;
    const float *s = in[1]->data;
    for (int64_t i = 0; i < out->n; i++) {
        int64_t q = len == 1 ? 0 : (i / inner) % len;
        float x = ox_fget(in[0], i), z = zp ? ox_fget(zp, q) : 0.0f;
        ((float *)out->data)[i] = (x - z) * s[q];
    }
    return MQ_OK;
}

static int op_quant(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                    struct ox_tensor *out)
{
    int rc;
    const struct ox_tensor *zp = n->n_in > 2 ? in[2] : NULL;
    int64_t len, inner;
    if ((rc = ox_need_f32(c, in[0], "x")) < 0 || (rc = ox_need_f32(c, in[1], "y_scale")) < 0 ||
        (zp && (rc = ox_need(c, zp, "y_zero_point")) < 0) ||
        (rc = qdq_layout(c, n, in[0], in[1], zp, &len, &inner)) < 0)
        return rc;
    /* the output type: the zero point's, else output_dtype (opset 21), else uint8 */
    int32_t to = zp ? input_elem(c, n, 2) : (int32_t)ox_attr_int(n, "output_dtype", MQ_ONNX_UINT8);
    int64_t lo, hi;
    switch (to) {
    case MQ_ONNX_UINT8: lo = 0, hi = 255; break;
    case MQ_ONNX_INT8: lo = -128, hi = 127; break;
    case MQ_ONNX_UINT16: lo = 0, hi = 65535; break;
    case MQ_ONNX_INT16: lo = -32768, hi = 32767; break;
    default:
        return ox_fail(c, MQ_EUNSUPPORTED, "quantization to %s",
                       to ? mq_onnx_elem_name(to)
                          : "the type of a zero point computed at run time");
    }
    if ((rc = ox_out(c, out, OX_I64, in[0]->nd, in[0]->dims)) <= 0)
        return rc;
    const float *x = in[0]->data, *s = in[1]->data;
    for (int64_t i = 0; i < out->n; i++) {
        int64_t q = len == 1 ? 0 : (i / inner) % len;
        float r = rintf(x[i] / s[q]); /* round half to even, as the spec says */
        double v = (double)r + (zp ? (double)ox_fget(zp, q) : 0.0);
        ((int64_t *)out->data)[i] = v != v           ? 0
                                    : v < (double)lo ? lo
                                    : v > (double)hi ? hi
                                                     : (int64_t)v;
    }
    return MQ_OK;
}

/* DynamicQuantizeLinear: uint8 with a scale and zero point from the input's range, which
 * always holds 0: scale = (max(0, max x) - min(0, min x)) / 255, zero point = round(0 -
 * min / scale) in [0, 255], y = saturate(round(x / scale) + zero point) (rounding half to
 * even). An all-zero input has scale 0: y and the zero point are 0. */
static int op_dyn_quant(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                        struct ox_tensor *out)
{
    int rc;
    (void)n;
    if ((rc = ox_need_f32(c, in[0], "x")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    int r0 = ox_out(c, &out[0], OX_I64, x->nd, x->dims), r1 = 0, r2 = 0;
    if (r0 < 0 || (r1 = ox_out(c, &out[1], OX_F32, 0, NULL)) < 0 || (r2 = ox_out(c, &out[2], OX_I64, 0, NULL)) < 0)
        return r0 < 0 ? r0 : r1 < 0 ? r1 : r2;
    if (!r0 || !x->data)
        return MQ_OK;
    float lo = 0.0f, hi = 0.0f;
    const float *xd = x->data;
    for (int64_t i = 0; i < x->n; i++) {
        lo = xd[i] < lo ? xd[i] : lo;
        hi = xd[i] > hi ? xd[i] : hi;
    }
    float scale = (hi - lo) / 255.0f;
    float zpf = scale > 0.0f ? rintf(fminf(fmaxf(0.0f - lo / scale, 0.0f), 255.0f)) : 0.0f;
    for (int64_t i = 0; i < x->n; i++) {
        float v = scale > 0.0f ? rintf(xd[i] / scale) + zpf : 0.0f;
        ((int64_t *)out[0].data)[i] = v != v ? 0 : v < 0.0f ? 0 : v > 255.0f ? 255 : (int64_t)v;
    }
    if (r1 > 0)
        ((float *)out[1].data)[0] = scale;
    if (r2 > 0)
        ((int64_t *)out[2].data)[0] = (int64_t)zpf;
    return MQ_OK;
}

/* clang-format off */
const struct ox_op ox_ops[] = {
    {"Add", op_add, 2, 2, 1, 1},           {"Sub", op_sub, 2, 2, 1, 1},
    {"Mul", op_mul, 2, 2, 1, 1},           {"Div", op_div, 2, 2, 1, 1},
    {"Pow", op_pow, 2, 2, 1, 1},           {"Mod", op_mod, 2, 2, 1, 1},
    {"Equal", op_equal, 2, 2, 1, 1},       {"Less", op_less, 2, 2, 1, 1},
    {"Greater", op_greater, 2, 2, 1, 1},   {"And", op_and, 2, 2, 1, 1},
    {"Or", op_or, 2, 2, 1, 1},             {"Where", op_where, 3, 3, 1, 1},
    {"Not", op_not, 1, 1, 1, 1},           {"Neg", op_neg, 1, 1, 1, 1},
    {"Abs", op_abs, 1, 1, 1, 1},           {"Relu", op_relu, 1, 1, 1, 1},
    {"LeakyRelu", op_leaky, 1, 1, 1, 1},   {"Elu", op_elu, 1, 1, 1, 1},
    {"Sigmoid", op_sigmoid, 1, 1, 1, 1},   {"Tanh", op_tanh, 1, 1, 1, 1},
    {"HardSigmoid", op_hsig, 1, 1, 1, 1},  {"HardSwish", op_hswish, 1, 1, 1, 1},
    {"Softplus", op_softplus, 1, 1, 1, 1}, {"Clip", op_clip, 1, 3, 1, 1},
    {"Exp", op_exp, 1, 1, 1, 1},           {"Log", op_log, 1, 1, 1, 1},
    {"Sqrt", op_sqrt, 1, 1, 1, 1},         {"Erf", op_erf, 1, 1, 1, 1},
    {"Reciprocal", op_recip, 1, 1, 1, 1},  {"Floor", op_floor, 1, 1, 1, 1},
    {"Ceil", op_ceil, 1, 1, 1, 1},         {"Round", op_round, 1, 1, 1, 1},
    {"Sin", op_sin, 1, 1, 1, 1},           {"Cos", op_cos, 1, 1, 1, 1},
    {"Identity", op_identity, 1, 1, 1, 1}, {"Cast", op_cast, 1, 1, 1, 1},
    {"Shape", op_shape, 1, 1, 1, 1},       {"Size", op_size, 1, 1, 1, 1},
    {"Constant", op_constant, 0, 0, 1, 1}, {"ConstantOfShape", op_const_of_shape, 1, 1, 1, 1},
    {"Range", op_range, 3, 3, 1, 1},       {"Reshape", ox_op_reshape, 1, 2, 1, 1},
    {"Flatten", ox_op_flatten, 1, 1, 1, 1},   {"Squeeze", ox_op_squeeze, 1, 2, 1, 1},
    {"Unsqueeze", ox_op_unsqueeze, 1, 2, 1, 1}, {"Transpose", ox_op_transpose, 1, 1, 1, 1},
    {"Concat", ox_op_concat, 1, ANY, 1, 1},   {"Split", ox_op_split, 1, 2, 1, ANY},
    {"Slice", ox_op_slice, 1, 5, 1, 1},       {"Gather", ox_op_gather, 2, 2, 1, 1},
    {"Expand", ox_op_expand, 2, 2, 1, 1},     {"Pad", ox_op_pad, 1, 4, 1, 1},
    {"ReduceMean", ox_op_rmean, 1, 2, 1, 1},  {"ReduceSum", ox_op_rsum, 1, 2, 1, 1},
    {"ReduceMax", ox_op_rmax, 1, 2, 1, 1},    {"Softmax", ox_op_softmax, 1, 1, 1, 1},
    {"BatchNormalization", ox_op_batchnorm, 5, 5, 1, 5},
    {"LayerNormalization", ox_op_layernorm, 2, 3, 1, 3},
    {"MaxPool", ox_op_maxpool, 1, 1, 1, 2},   {"AveragePool", ox_op_avgpool, 1, 1, 1, 1},
    {"GlobalAveragePool", ox_op_gap, 1, 1, 1, 1}, {"GlobalMaxPool", ox_op_gmp, 1, 1, 1, 1},
    {"Resize", ox_op_resize, 2, 4, 1, 1},     {"Conv", ox_op_conv, 2, 3, 1, 1},
    {"ConvTranspose", ox_op_conv_t, 2, 3, 1, 1}, {"Gemm", ox_op_gemm, 2, 3, 1, 1},
    {"MatMul", ox_op_matmul, 2, 2, 1, 1},     {"If", op_if, 1, 1, 1, ANY},
    {"Max", op_max, 1, ANY, 1, 1},            {"Min", op_min, 1, ANY, 1, 1},
    {"Sum", op_sum, 1, ANY, 1, 1},            {"Mean", op_mean, 1, ANY, 1, 1},
    {"Gelu", op_gelu, 1, 1, 1, 1},            {"ReduceMin", ox_op_rmin, 1, 2, 1, 1},
    {"ReduceProd", ox_op_rprod, 1, 2, 1, 1},  {"ReduceL2", ox_op_rl2, 1, 2, 1, 1},
    {"InstanceNormalization", ox_op_instnorm, 3, 3, 1, 1},
    {"GroupNormalization", ox_op_groupnorm, 3, 3, 1, 1},
    {"ArgMax", ox_op_argmax, 1, 1, 1, 1},     {"TopK", ox_op_topk, 1, 2, 2, 2},
    {"DepthToSpace", ox_op_d2s, 1, 1, 1, 1},  {"SpaceToDepth", ox_op_s2d, 1, 1, 1, 1},
    {"Tile", ox_op_tile, 2, 2, 1, 1},         {"Upsample", ox_op_upsample, 1, 2, 1, 1},
    {"Einsum", ox_op_einsum, 1, ANY, 1, 1},
    {"LSTM", ox_op_lstm, 3, 8, 0, 3},         {"GRU", ox_op_gru, 3, 6, 0, 2},
    {"QuantizeLinear", op_quant, 2, 3, 1, 1},
    {"DequantizeLinear", op_dequant, 2, 3, 1, 1},
    {"DynamicQuantizeLinear", op_dyn_quant, 1, 1, 3, 3},
    {"MatMulInteger", ox_op_matmul_int, 2, 4, 1, 1},
    {"LogSoftmax", ox_op_logsoftmax, 1, 1, 1, 1},
    {"ConvInteger", ox_op_conv_int, 2, 4, 1, 1},
};
/* clang-format on */
const int ox_n_ops = (int)(sizeof(ox_ops) / sizeof(ox_ops[0]));

int ox_op_find(const char *name)
{
    for (int i = 0; i < ox_n_ops; i++)
        if (strcmp(ox_ops[i].name, name) == 0)
            return i;
    return -1;
}

int ox_op_index_conv(void) { return ox_op_find("Conv"); }
int ox_op_index_conv_t(void) { return ox_op_find("ConvTranspose"); }
int ox_op_index_gemm(void) { return ox_op_find("Gemm"); }
int ox_op_index_matmul(void) { return ox_op_find("MatMul"); }
int ox_op_index_einsum(void) { return ox_op_find("Einsum"); }
int ox_op_index_lstm(void) { return ox_op_find("LSTM"); }
int ox_op_index_gru(void) { return ox_op_find("GRU"); }
int ox_op_index_matmul_int(void) { return ox_op_find("MatMulInteger"); }
int ox_op_index_conv_int(void)
{
    return ox_op_find("ConvInteger");
}

int ox_run_node(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    c->node = n;
    int rc = ox_ops[n->op].run(c, n, in, out);
    if (rc < 0)
        for (int k = 0; k < n->n_out; k++)
            ox_tensor_release(&out[k]);
    c->node = NULL;
    return rc < 0 ? rc : MQ_OK;
}
