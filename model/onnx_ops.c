/* model/onnx_ops.c - the ONNX ops mixq interprets, on host tensors (model/onnx_internal.h).
 *
 * Every op checks its inputs' ranks, shapes and types against the ONNX operator spec
 * before touching data (a model's shapes are data from a file), computes its output
 * shapes, and asks ox_out() whether to compute values. Floats are F32; integer
 * arithmetic is int64 (narrower ONNX integer types wrap on Cast). Layers (Conv,
 * ConvTranspose, Gemm, MatMul with a constant weight) multiply through ox_matmul(), which
 * runs the layer on the backend in a session, or in f32 on the host. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp16.h"
#include "core/status.h"
#include "model/onnx_internal.h"

#define OX_MAX_ELEMS ((int64_t)1 << 34) /* 64 GiB of f32: beyond, a shape is absurd */

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

static size_t type_size(enum ox_type t) { return t == OX_F32 ? sizeof(float) : sizeof(int64_t); }

uint64_t ox_tensor_bytes(const struct ox_tensor *t) { return (uint64_t)t->n * type_size(t->type); }

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
    t->data = calloc((size_t)(n ? n : 1), type_size(type));
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

static float attr_float(const struct ox_node *n, const char *name, float def)
{
    const struct mq_onnx_attr *a = ox_attr(n, name);
    return a ? a->f : def;
}

/* The attribute's string, in buf; `def` when absent. */
static const char *attr_str(const struct ox_node *n, const char *name, const char *def, char *buf, size_t size)
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
static const int64_t *attr_ints(const struct ox_node *n, const char *name, int64_t *count)
{
    const struct mq_onnx_attr *a = ox_attr(n, name);
    *count = a ? a->n_ints : -1;
    return a ? a->ints : NULL;
}

/* The values of a small integer input (axes, pads, shapes), which must have data. */
static int input_ints(struct ox_ctx *c, const struct ox_tensor *t, const char *what, int64_t *vals, int max, int *n)
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
static int norm_axis(struct ox_ctx *c, int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank)
        return ox_fail(c, MQ_EFORMAT, "axis %" PRId64 " outside a tensor of rank %d", axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return MQ_OK;
}

static float fget(const struct ox_tensor *t, int64_t i)
{
    return t->type == OX_F32 ? ((const float *)t->data)[i] : (float)((const int64_t *)t->data)[i];
}

static int64_t prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= d[i];
    return p;
}

static int need(struct ox_ctx *c, const struct ox_tensor *t, const char *what)
{
    if (!t)
        return ox_fail(c, MQ_EFORMAT, "input %s is missing", what);
    return MQ_OK;
}

static int need_f32(struct ox_ctx *c, const struct ox_tensor *t, const char *what)
{
    int rc = need(c, t, what);
    if (rc == MQ_OK && t->type != OX_F32)
        rc = ox_fail(c, MQ_EUNSUPPORTED, "input %s is an integer tensor; mixq runs this op on floats", what);
    return rc;
}

/* ---- broadcasting ----------------------------------------------------------------------- */

static int bcast(struct ox_ctx *c, struct ox_tensor *const *ts, int n_ts, int *nd, int64_t *dims)
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

/* Iterates the broadcast shape, giving each operand's offset. */
struct biter {
    int nd, k;
    int64_t dims[MQ_ONNX_MAX_DIMS], idx[MQ_ONNX_MAX_DIMS], st[3][MQ_ONNX_MAX_DIMS], off[3];
};

static void biter_init(struct biter *it, struct ox_tensor *const *ts, int k, int nd, const int64_t *dims)
{
    memset(it, 0, sizeof(*it));
    it->nd = nd;
    it->k = k;
    memcpy(it->dims, dims, (size_t)nd * sizeof(*dims));
    for (int i = 0; i < k; i++)
        bstrides(ts[i], nd, dims, it->st[i]);
}

static void biter_next(struct biter *it)
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
    if ((rc = need(c, in[0], "A")) < 0 || (rc = need(c, in[1], "B")) < 0)
        return rc;
    const struct ox_tensor *a = in[0], *b = in[1];
    int nd;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    if ((rc = bcast(c, in, 2, &nd, dims)) < 0)
        return rc;
    bool cmp = op == B_EQ || op == B_LT || op == B_GT || op == B_AND || op == B_OR;
    bool fl = a->type == OX_F32 || b->type == OX_F32;
    if (!cmp && op != B_POW && a->type != b->type)
        return ox_fail(c, MQ_EFORMAT, "operands of different types");
    enum ox_type ot = cmp ? OX_BOOL : fl ? OX_F32 : a->type;
    if ((rc = ox_out(c, out, ot, nd, dims)) <= 0)
        return rc;
    struct biter it;
    biter_init(&it, in, 2, nd, dims);
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
        struct biter outer;
        biter_init(&outer, in, 2, inner, dims);
        for (int k = 0; k < 2; k++)
            memcpy(outer.st[k], it.st[k], (size_t)inner * sizeof(int64_t));
        const float *x = a->data, *y = b->data;
        float *o = out->data;
        for (int64_t i = 0; i < out->n; i += run, biter_next(&outer))
            fbin_run(op, x + outer.off[0], sa, y + outer.off[1], sb, o + i, run);
        return MQ_OK;
    }
    for (int64_t i = 0; i < out->n; i++, biter_next(&it)) {
        if (fl) {
            float x = fget(a, it.off[0]), y = fget(b, it.off[1]);
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

static int op_where(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = need(c, in[0], "condition")) < 0 || (rc = need(c, in[1], "X")) < 0 || (rc = need(c, in[2], "Y")) < 0)
        return rc;
    if (in[1]->type != in[2]->type)
        return ox_fail(c, MQ_EFORMAT, "X and Y of different types");
    int nd;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    if ((rc = bcast(c, in, 3, &nd, dims)) < 0 || (rc = ox_out(c, out, in[1]->type, nd, dims)) <= 0)
        return rc;
    if (in[0]->type == OX_F32)
        return ox_fail(c, MQ_EFORMAT, "condition is not bool");
    struct biter it;
    biter_init(&it, in, 3, nd, dims);
    const int64_t *cond = in[0]->data;
    for (int64_t i = 0; i < out->n; i++, biter_next(&it)) {
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
    int rc = need(c, in[0], "X");
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
    return unary(c, n, in, out, u_leaky, attr_float(n, "alpha", 0.01f), 0.0f, false);
}

static int op_elu(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return unary(c, n, in, out, u_elu, attr_float(n, "alpha", 1.0f), 0.0f, false);
}

static int op_hsig(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return unary(c, n, in, out, u_hsig, attr_float(n, "alpha", 0.2f), attr_float(n, "beta", 0.5f), false);
}

static int op_clip(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    float lo = attr_float(n, "min", -FLT_MAX), hi = attr_float(n, "max", FLT_MAX);
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
        float v = fget(in[k], 0);
        if (k == 1)
            lo = v;
        else
            hi = v;
    }
    return unary(c, n, in, out, u_clip, lo, hi, true);
}

static int op_not(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = need(c, in[0], "X");
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

static int copy_tensor(struct ox_ctx *c, const struct ox_tensor *x, struct ox_tensor *out, int nd, const int64_t *dims)
{
    int rc = ox_out(c, out, x->type, nd, dims);
    if (rc <= 0)
        return rc;
    if (!x->data)
        return ox_fail(c, MQ_EINTERNAL, "input has no data");
    memcpy(out->data, x->data, (size_t)x->n * type_size(x->type));
    return MQ_OK;
}

static int op_identity(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = need(c, in[0], "input");
    (void)n;
    return rc < 0 ? rc : copy_tensor(c, in[0], out, in[0]->nd, in[0]->dims);
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
    int rc = need(c, in[0], "input");
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
            float v = fget(in[0], i);
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
    int rc = need(c, in[0], "data");
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
    int rc = need(c, in[0], "data");
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
    if ((rc = need(c, in[0], "input")) < 0 || (rc = input_ints(c, in[0], "shape", dims, MQ_ONNX_MAX_DIMS, &nd)) < 0)
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
        int rc = need(c, in[k], "start/limit/delta");
        if (rc < 0)
            return rc;
        if (in[k]->n != 1 || !in[k]->data)
            return ox_fail(c, in[k]->data ? MQ_EFORMAT : MQ_EUNSUPPORTED, "start, limit and delta must be known scalars");
    }
    enum ox_type t = in[0]->type;
    double s = fget(in[0], 0), l = fget(in[1], 0), d = fget(in[2], 0);
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

/* ---- shape ops ------------------------------------------------------------------------- */

static int op_reshape(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int64_t dims[MQ_ONNX_MAX_DIMS];
    int nd, rc;
    if ((rc = need(c, in[0], "data")) < 0)
        return rc;
    const int64_t *attr_shape = NULL;
    int64_t attr_n;
    if (n->n_in < 2 && (attr_shape = attr_ints(n, "shape", &attr_n)) != NULL) { /* opset < 5 */
        if (attr_n > MQ_ONNX_MAX_DIMS)
            return ox_fail(c, MQ_EUNSUPPORTED, "shape of %" PRId64 " dims", attr_n);
        nd = (int)attr_n;
        memcpy(dims, attr_shape, (size_t)nd * sizeof(*dims));
    } else if ((rc = need(c, n->n_in > 1 ? in[1] : NULL, "shape")) < 0 ||
               (rc = input_ints(c, in[1], "shape", dims, MQ_ONNX_MAX_DIMS, &nd)) < 0) {
        return rc;
    }
    bool allowzero = ox_attr_int(n, "allowzero", 0) != 0;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] == 0 && !allowzero) {
            if (i >= in[0]->nd)
                return ox_fail(c, MQ_EFORMAT, "shape copies dimension %d of a rank-%d input", i, in[0]->nd);
            dims[i] = in[0]->dims[i];
        }
        if (dims[i] == -1) {
            if (infer >= 0)
                return ox_fail(c, MQ_EFORMAT, "shape has two -1 dimensions");
            infer = i;
        } else if (dims[i] < 0) {
            return ox_fail(c, MQ_EFORMAT, "shape has dimension %" PRId64, dims[i]);
        } else {
            if (dims[i] > 0 && known > OX_MAX_ELEMS / dims[i])
                return ox_fail(c, MQ_EFORMAT, "shape is absurd");
            known *= dims[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || in[0]->n % known)
            return ox_fail(c, MQ_EFORMAT, "cannot infer the -1 dimension: %" PRId64 " elements into parts of %" PRId64,
                           in[0]->n, known);
        dims[infer] = in[0]->n / known;
        known *= dims[infer];
    }
    if (known != in[0]->n)
        return ox_fail(c, MQ_EFORMAT, "reshape of %" PRId64 " elements to %" PRId64, in[0]->n, known);
    return copy_tensor(c, in[0], out, nd, dims);
}

static int op_flatten(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = need(c, in[0], "input"), axis = 0;
    if (rc < 0)
        return rc;
    int64_t a = ox_attr_int(n, "axis", 1);
    if (a == in[0]->nd)
        axis = in[0]->nd;
    else if ((rc = norm_axis(c, a, in[0]->nd, &axis)) < 0)
        return rc;
    int64_t dims[2] = {prod(in[0]->dims, 0, axis), prod(in[0]->dims, axis, in[0]->nd)};
    return copy_tensor(c, in[0], out, 2, dims);
}

/* Axes from the attribute (older opsets) or the second input. */
static int get_axes(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, int input, int64_t *axes,
                    int *n_axes)
{
    int64_t cnt;
    const int64_t *a = attr_ints(n, "axes", &cnt);
    if (a) {
        if (cnt > MQ_ONNX_MAX_DIMS)
            return ox_fail(c, MQ_EFORMAT, "%" PRId64 " axes", cnt);
        memcpy(axes, a, (size_t)cnt * sizeof(*axes));
        *n_axes = (int)cnt;
        return MQ_OK;
    }
    if (n->n_in > input && in[input])
        return input_ints(c, in[input], "axes", axes, MQ_ONNX_MAX_DIMS, n_axes);
    *n_axes = -1; /* absent */
    return MQ_OK;
}

static int op_squeeze(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int64_t axes[MQ_ONNX_MAX_DIMS], dims[MQ_ONNX_MAX_DIMS];
    int na, rc;
    if ((rc = need(c, in[0], "data")) < 0 || (rc = get_axes(c, n, in, 1, axes, &na)) < 0)
        return rc;
    bool drop[MQ_ONNX_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) {
        int ax = 0;
        if ((rc = norm_axis(c, axes[i], in[0]->nd, &ax)) < 0)
            return rc;
        if (in[0]->dims[ax] != 1)
            return ox_fail(c, MQ_EFORMAT, "squeezes axis %d of size %" PRId64, ax, in[0]->dims[ax]);
        drop[ax] = true;
    }
    int nd = 0;
    for (int i = 0; i < in[0]->nd; i++)
        if (!(na < 0 ? in[0]->dims[i] == 1 : drop[i]))
            dims[nd++] = in[0]->dims[i];
    return copy_tensor(c, in[0], out, nd, dims);
}

static int op_unsqueeze(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int64_t axes[MQ_ONNX_MAX_DIMS], dims[MQ_ONNX_MAX_DIMS];
    int na, rc;
    if ((rc = need(c, in[0], "data")) < 0 || (rc = get_axes(c, n, in, 1, axes, &na)) < 0)
        return rc;
    if (na < 0)
        return ox_fail(c, MQ_EFORMAT, "no axes");
    int nd = in[0]->nd + na;
    if (nd > MQ_ONNX_MAX_DIMS)
        return ox_fail(c, MQ_EUNSUPPORTED, "output of rank %d", nd);
    bool ins[MQ_ONNX_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) {
        int ax = 0;
        if ((rc = norm_axis(c, axes[i], nd, &ax)) < 0)
            return rc;
        if (ins[ax])
            return ox_fail(c, MQ_EFORMAT, "axis %d given twice", ax);
        ins[ax] = true;
    }
    for (int i = 0, j = 0; i < nd; i++)
        dims[i] = ins[i] ? 1 : in[0]->dims[j++];
    return copy_tensor(c, in[0], out, nd, dims);
}

static int op_transpose(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = need(c, in[0], "data");
    if (rc < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    int nd = x->nd;
    int64_t perm[MQ_ONNX_MAX_DIMS], cnt;
    const int64_t *p = attr_ints(n, "perm", &cnt);
    if (p && cnt != nd)
        return ox_fail(c, MQ_EFORMAT, "perm of %" PRId64 " for rank %d", cnt, nd);
    bool seen[MQ_ONNX_MAX_DIMS] = {false};
    int64_t dims[MQ_ONNX_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        perm[i] = p ? p[i] : nd - 1 - i;
        if (perm[i] < 0 || perm[i] >= nd || seen[perm[i]])
            return ox_fail(c, MQ_EFORMAT, "perm is not a permutation");
        seen[perm[i]] = true;
        dims[i] = x->dims[perm[i]];
    }
    if ((rc = ox_out(c, out, x->type, nd, dims)) <= 0)
        return rc;
    int64_t xs[MQ_ONNX_MAX_DIMS], st[MQ_ONNX_MAX_DIMS], idx[MQ_ONNX_MAX_DIMS] = {0};
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->dims[i];
    }
    for (int i = 0; i < nd; i++)
        st[i] = xs[perm[i]];
    size_t es = type_size(x->type);
    int64_t off = 0;
    for (int64_t i = 0; i < out->n; i++) {
        memcpy((char *)out->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            idx[d]++;
            off += st[d];
            if (idx[d] < dims[d])
                break;
            off -= st[d] * dims[d];
            idx[d] = 0;
        }
    }
    return MQ_OK;
}

static int op_concat(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = need(c, in[0], "inputs")) < 0)
        return rc;
    const struct ox_tensor *a = in[0];
    if ((rc = norm_axis(c, ox_attr_int(n, "axis", 0), a->nd, &axis)) < 0)
        return rc;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    memcpy(dims, a->dims, sizeof(dims));
    dims[axis] = 0;
    bool all_data = true;
    for (int k = 0; k < n->n_in; k++) {
        if ((rc = need(c, in[k], "inputs")) < 0)
            return rc;
        if (in[k]->nd != a->nd || in[k]->type != a->type)
            return ox_fail(c, MQ_EFORMAT, "inputs of different ranks or types");
        for (int i = 0; i < a->nd; i++)
            if (i != axis && in[k]->dims[i] != a->dims[i])
                return ox_fail(c, MQ_EFORMAT, "inputs differ in dimension %d", i);
        dims[axis] += in[k]->dims[axis];
        all_data &= in[k]->data != NULL || in[k]->n == 0;
    }
    if (!all_data)
        c->inputs_have_data = false;
    if ((rc = ox_out(c, out, a->type, a->nd, dims)) <= 0)
        return rc;
    int64_t outer = prod(dims, 0, axis), inner = prod(dims, axis + 1, a->nd);
    size_t es = type_size(a->type);
    char *o = out->data;
    for (int64_t i = 0; i < outer; i++)
        for (int k = 0; k < n->n_in; k++) {
            size_t chunk = (size_t)(in[k]->dims[axis] * inner) * es;
            if (chunk)
                memcpy(o, (const char *)in[k]->data + (size_t)i * chunk, chunk);
            o += chunk;
        }
    return MQ_OK;
}

static int op_split(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = need(c, in[0], "input")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if ((rc = norm_axis(c, ox_attr_int(n, "axis", 0), x->nd, &axis)) < 0)
        return rc;
    int64_t sizes[64], cnt;
    int ns = -1;
    const int64_t *sa = attr_ints(n, "split", &cnt);
    if (n->n_out > 64)
        return ox_fail(c, MQ_EUNSUPPORTED, "%d outputs", n->n_out);
    if (sa) {
        if (cnt > 64)
            return ox_fail(c, MQ_EUNSUPPORTED, "%" PRId64 " parts", cnt);
        ns = (int)cnt;
        memcpy(sizes, sa, (size_t)cnt * sizeof(*sizes));
    } else if (n->n_in > 1 && in[1]) {
        if ((rc = input_ints(c, in[1], "split", sizes, 64, &ns)) < 0)
            return rc;
    }
    int64_t total = x->dims[axis];
    if (ns < 0) {
        ns = n->n_out;
        int64_t part = (total + ns - 1) / ns; /* the last part may be smaller (opset 18) */
        for (int i = 0; i < ns; i++) {
            int64_t left = total - part * i;
            sizes[i] = left < part ? (left > 0 ? left : 0) : part;
        }
    }
    if (ns != n->n_out)
        return ox_fail(c, MQ_EFORMAT, "%d parts for %d outputs", ns, n->n_out);
    int64_t sum = 0;
    for (int i = 0; i < ns; i++) {
        if (sizes[i] < 0)
            return ox_fail(c, MQ_EFORMAT, "negative part");
        sum += sizes[i];
    }
    if (sum != total)
        return ox_fail(c, MQ_EFORMAT, "parts add up to %" PRId64 ", the axis has %" PRId64, sum, total);
    int64_t outer = prod(x->dims, 0, axis), inner = prod(x->dims, axis + 1, x->nd), start = 0;
    size_t es = type_size(x->type);
    for (int k = 0; k < ns; k++) {
        int64_t dims[MQ_ONNX_MAX_DIMS];
        memcpy(dims, x->dims, sizeof(dims));
        dims[axis] = sizes[k];
        if ((rc = ox_out(c, &out[k], x->type, x->nd, dims)) < 0)
            return rc;
        if (rc > 0)
            for (int64_t i = 0; i < outer; i++)
                memcpy((char *)out[k].data + (size_t)(i * sizes[k] * inner) * es,
                       (const char *)x->data + (size_t)((i * total + start) * inner) * es,
                       (size_t)(sizes[k] * inner) * es);
        start += sizes[k];
    }
    return MQ_OK;
}

static int op_slice(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = need(c, in[0], "data")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    int nd = x->nd;
    int64_t starts[MQ_ONNX_MAX_DIMS], ends[MQ_ONNX_MAX_DIMS], axes[MQ_ONNX_MAX_DIMS], steps[MQ_ONNX_MAX_DIMS];
    int ns, ne, na = -1, nst = -1;
    int64_t cnt;
    const int64_t *a;
    if ((a = attr_ints(n, "starts", &cnt))) { /* opset < 10 */
        if (cnt > nd)
            return ox_fail(c, MQ_EFORMAT, "too many starts");
        ns = (int)cnt;
        memcpy(starts, a, (size_t)cnt * 8);
        if (!(a = attr_ints(n, "ends", &cnt)) || cnt > nd)
            return ox_fail(c, MQ_EFORMAT, "ends missing or too many");
        ne = (int)cnt;
        memcpy(ends, a, (size_t)cnt * 8);
        if ((a = attr_ints(n, "axes", &cnt))) {
            if (cnt > nd)
                return ox_fail(c, MQ_EFORMAT, "too many axes");
            na = (int)cnt;
            memcpy(axes, a, (size_t)cnt * 8);
        }
    } else {
        if ((rc = need(c, n->n_in > 2 ? in[1] : NULL, "starts")) < 0 || (rc = need(c, in[2], "ends")) < 0 ||
            (rc = input_ints(c, in[1], "starts", starts, nd, &ns)) < 0 ||
            (rc = input_ints(c, in[2], "ends", ends, nd, &ne)) < 0)
            return rc;
        if (n->n_in > 3 && in[3] && (rc = input_ints(c, in[3], "axes", axes, nd, &na)) < 0)
            return rc;
        if (n->n_in > 4 && in[4] && (rc = input_ints(c, in[4], "steps", steps, nd, &nst)) < 0)
            return rc;
    }
    if (ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return ox_fail(c, MQ_EFORMAT, "starts, ends, axes and steps differ in length");
    int64_t st[MQ_ONNX_MAX_DIMS], step[MQ_ONNX_MAX_DIMS], dims[MQ_ONNX_MAX_DIMS];
    bool seen[MQ_ONNX_MAX_DIMS] = {false};
    for (int i = 0; i < nd; i++) {
        st[i] = 0;
        step[i] = 1;
        dims[i] = x->dims[i];
    }
    for (int i = 0; i < ns; i++) {
        int ax = i;
        if (na >= 0 && (rc = norm_axis(c, axes[i], nd, &ax)) < 0)
            return rc;
        if (seen[ax])
            return ox_fail(c, MQ_EFORMAT, "axis %d sliced twice", ax);
        seen[ax] = true;
        int64_t d = x->dims[ax], s = starts[i], e = ends[i], p = nst >= 0 ? steps[i] : 1;
        if (p == 0)
            return ox_fail(c, MQ_EFORMAT, "step 0");
        s = s < 0 ? s + d : s;
        e = e < 0 ? (e < -d ? -1 : e + d) : e; /* INT64_MIN-like ends stay before 0 */
        if (p > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            dims[ax] = e > s ? (e - s + p - 1) / p : 0;
        } else {
            s = s < 0 ? -1 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            dims[ax] = s > e ? (s - e - p - 1) / -p : 0;
        }
        st[ax] = s;
        step[ax] = p;
    }
    if ((rc = ox_out(c, out, x->type, nd, dims)) <= 0)
        return rc;
    int64_t xs[MQ_ONNX_MAX_DIMS], idx[MQ_ONNX_MAX_DIMS] = {0}, s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->dims[i];
    }
    size_t es = type_size(x->type);
    for (int64_t i = 0; i < out->n; i++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += (st[d] + idx[d] * step[d]) * xs[d];
        memcpy((char *)out->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < dims[d])
                break;
            idx[d] = 0;
        }
    }
    return MQ_OK;
}

static int op_gather(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = need(c, in[0], "data")) < 0 || (rc = need(c, in[1], "indices")) < 0)
        return rc;
    const struct ox_tensor *x = in[0], *ix = in[1];
    if (ix->type == OX_F32)
        return ox_fail(c, MQ_EFORMAT, "float indices");
    if ((rc = norm_axis(c, ox_attr_int(n, "axis", 0), x->nd, &axis)) < 0)
        return rc;
    int nd = x->nd - 1 + ix->nd;
    if (nd > MQ_ONNX_MAX_DIMS)
        return ox_fail(c, MQ_EUNSUPPORTED, "output of rank %d", nd);
    int64_t dims[MQ_ONNX_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < axis; i++)
        dims[k++] = x->dims[i];
    for (int i = 0; i < ix->nd; i++)
        dims[k++] = ix->dims[i];
    for (int i = axis + 1; i < x->nd; i++)
        dims[k++] = x->dims[i];
    if (!ix->data)
        c->inputs_have_data = false;
    if ((rc = ox_out(c, out, x->type, nd, dims)) <= 0)
        return rc;
    int64_t outer = prod(x->dims, 0, axis), inner = prod(x->dims, axis + 1, x->nd), d = x->dims[axis];
    size_t es = type_size(x->type);
    const int64_t *idx = ix->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ix->n; j++) {
            int64_t i = idx[j] < 0 ? idx[j] + d : idx[j];
            if (i < 0 || i >= d) {
                ox_tensor_release(out);
                return ox_fail(c, MQ_EFORMAT, "index %" PRId64 " outside 0..%" PRId64, idx[j], d - 1);
            }
            memcpy((char *)out->data + (size_t)((o * ix->n + j) * inner) * es,
                   (const char *)x->data + (size_t)((o * d + i) * inner) * es, (size_t)inner * es);
        }
    return MQ_OK;
}

static int op_expand(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int64_t shp[MQ_ONNX_MAX_DIMS];
    int ns, rc;
    if ((rc = need(c, in[0], "input")) < 0 || (rc = need(c, in[1], "shape")) < 0 ||
        (rc = input_ints(c, in[1], "shape", shp, MQ_ONNX_MAX_DIMS, &ns)) < 0)
        return rc;
    struct ox_tensor s = {.type = OX_F32, .nd = ns, .n = 1};
    memcpy(s.dims, shp, (size_t)ns * sizeof(*shp));
    struct ox_tensor *ts[2] = {in[0], &s};
    int nd;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    if ((rc = bcast(c, ts, 2, &nd, dims)) < 0 || (rc = ox_out(c, out, in[0]->type, nd, dims)) <= 0)
        return rc;
    struct biter it;
    biter_init(&it, in, 1, nd, dims);
    size_t es = type_size(in[0]->type);
    for (int64_t i = 0; i < out->n; i++, biter_next(&it))
        memcpy((char *)out->data + (size_t)i * es, (const char *)in[0]->data + (size_t)it.off[0] * es, es);
    (void)n;
    return MQ_OK;
}

static int op_pad(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = need(c, in[0], "data")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    int nd = x->nd, np;
    int64_t pads[2 * MQ_ONNX_MAX_DIMS], axes[MQ_ONNX_MAX_DIMS], cnt;
    const int64_t *pa = attr_ints(n, "pads", &cnt);
    float value = attr_float(n, "value", 0.0f);
    if (pa) {
        if (cnt > 2 * MQ_ONNX_MAX_DIMS)
            return ox_fail(c, MQ_EFORMAT, "too many pads");
        np = (int)cnt;
        memcpy(pads, pa, (size_t)cnt * 8);
    } else {
        if ((rc = need(c, n->n_in > 1 ? in[1] : NULL, "pads")) < 0 ||
            (rc = input_ints(c, in[1], "pads", pads, 2 * MQ_ONNX_MAX_DIMS, &np)) < 0)
            return rc;
        if (n->n_in > 2 && in[2] && in[2]->n == 1 && in[2]->data)
            value = fget(in[2], 0);
    }
    int na = nd;
    for (int i = 0; i < nd; i++)
        axes[i] = i;
    if (n->n_in > 3 && in[3]) {
        if ((rc = input_ints(c, in[3], "axes", axes, nd, &na)) < 0)
            return rc;
        for (int i = 0; i < na; i++) {
            int ax = 0;
            if ((rc = norm_axis(c, axes[i], nd, &ax)) < 0)
                return rc;
            axes[i] = ax;
        }
    }
    if (np != 2 * na)
        return ox_fail(c, MQ_EFORMAT, "%d pads for %d axes", np, na);
    int64_t lo[MQ_ONNX_MAX_DIMS] = {0}, dims[MQ_ONNX_MAX_DIMS];
    memcpy(dims, x->dims, sizeof(dims));
    for (int i = 0; i < na; i++) {
        lo[axes[i]] = pads[i];
        dims[axes[i]] += pads[i] + pads[i + na];
        if (pads[i] < -x->dims[axes[i]] || pads[i + na] < -x->dims[axes[i]] || pads[i] > (1 << 24) ||
            pads[i + na] > (1 << 24) || dims[axes[i]] < 0)
            return ox_fail(c, MQ_EFORMAT, "pads out of range");
    }
    char mbuf[16];
    const char *mode = attr_str(n, "mode", "constant", mbuf, sizeof(mbuf));
    int m = strcmp(mode, "constant") == 0 ? 0 : strcmp(mode, "reflect") == 0 ? 1 : strcmp(mode, "edge") == 0 ? 2 : -1;
    if (m < 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "pad mode '%s'", mode);
    for (int i = 0; i < nd && m == 1; i++)
        if (dims[i] != x->dims[i] && (x->dims[i] < 2 || lo[i] >= x->dims[i] || dims[i] - x->dims[i] - lo[i] >= x->dims[i]))
            return ox_fail(c, MQ_EFORMAT, "reflect padding wider than the input");
    for (int i = 0; i < nd && m == 2; i++)
        if (dims[i] != x->dims[i] && x->dims[i] == 0)
            return ox_fail(c, MQ_EFORMAT, "edge padding of an empty axis");
    if ((rc = ox_out(c, out, x->type, nd, dims)) <= 0)
        return rc;
    int64_t xs[MQ_ONNX_MAX_DIMS], idx[MQ_ONNX_MAX_DIMS] = {0}, s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->dims[i];
    }
    for (int64_t i = 0; i < out->n; i++) {
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < nd; d++) {
            int64_t j = idx[d] - lo[d], D = x->dims[d];
            if (j < 0 || j >= D) {
                if (m == 0) {
                    inside = false;
                    break;
                }
                if (m == 1)
                    j = j < 0 ? -j : 2 * (D - 1) - j;
                else
                    j = j < 0 ? 0 : D - 1;
            }
            off += j * xs[d];
        }
        if (x->type == OX_F32)
            ((float *)out->data)[i] = inside ? ((const float *)x->data)[off] : value;
        else
            ((int64_t *)out->data)[i] = inside ? ((const int64_t *)x->data)[off] : (int64_t)value;
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < dims[d])
                break;
            idx[d] = 0;
        }
    }
    return MQ_OK;
}

/* ---- reductions, softmax, normalization -------------------------------------------------- */

enum red { R_MEAN, R_SUM, R_MAX };

static int reduce(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out,
                  enum red kind)
{
    int rc, na;
    int64_t axes[MQ_ONNX_MAX_DIMS];
    if ((rc = need_f32(c, in[0], "data")) < 0 || (rc = get_axes(c, n, in, 1, axes, &na)) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    bool keep = ox_attr_int(n, "keepdims", 1) != 0, red[MQ_ONNX_MAX_DIMS] = {false};
    if (na <= 0 && ox_attr_int(n, "noop_with_empty_axes", 0))
        return copy_tensor(c, x, out, x->nd, x->dims);
    for (int i = 0; i < x->nd; i++)
        red[i] = na <= 0;
    for (int i = 0; i < na; i++) {
        int ax = 0;
        if ((rc = norm_axis(c, axes[i], x->nd, &ax)) < 0)
            return rc;
        red[ax] = true;
    }
    int64_t dims[MQ_ONNX_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->nd; i++)
        if (!red[i])
            dims[nd++] = x->dims[i];
        else if (keep)
            dims[nd++] = 1;
    if ((rc = ox_out(c, out, OX_F32, nd, dims)) <= 0)
        return rc;
    /* accumulate in double, element by element in input order */
    double *acc = calloc((size_t)(out->n ? out->n : 1), sizeof(double));
    if (!acc)
        return ox_fail(c, MQ_ENOMEM, "cannot allocate a reduction");
    for (int64_t i = 0; i < out->n; i++)
        acc[i] = kind == R_MAX ? -INFINITY : 0.0;
    int64_t idx[MQ_ONNX_MAX_DIMS] = {0}, os[MQ_ONNX_MAX_DIMS], s = 1;
    for (int i = x->nd - 1; i >= 0; i--) {
        os[i] = red[i] ? 0 : s;
        if (!red[i])
            s *= x->dims[i];
    }
    const float *xd = x->data;
    int64_t off = 0;
    for (int64_t i = 0; i < x->n; i++) {
        acc[off] = kind == R_MAX ? (xd[i] > acc[off] ? xd[i] : acc[off]) : acc[off] + xd[i];
        for (int d = x->nd - 1; d >= 0; d--) {
            idx[d]++;
            off += os[d];
            if (idx[d] < x->dims[d])
                break;
            off -= os[d] * x->dims[d];
            idx[d] = 0;
        }
    }
    int64_t per = out->n ? x->n / out->n : 0;
    for (int64_t i = 0; i < out->n; i++)
        ((float *)out->data)[i] = (float)(kind == R_MEAN ? acc[i] / (double)(per ? per : 1) : acc[i]);
    free(acc);
    return MQ_OK;
}

static int op_rmean(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return reduce(c, n, in, out, R_MEAN);
}
static int op_rsum(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return reduce(c, n, in, out, R_SUM);
}
static int op_rmax(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return reduce(c, n, in, out, R_MAX);
}

static int op_softmax(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = need_f32(c, in[0], "input")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    bool old = c->g && c->g->opset < 13;
    if ((rc = norm_axis(c, ox_attr_int(n, "axis", old ? 1 : -1), x->nd ? x->nd : 1, &axis)) < 0 ||
        (rc = ox_out(c, out, OX_F32, x->nd, x->dims)) <= 0)
        return rc;
    /* opset < 13 coerces to 2-D at axis; from 13 the softmax runs along one axis */
    int64_t outer = prod(x->dims, 0, axis), len = old ? prod(x->dims, axis, x->nd) : x->nd ? x->dims[axis] : 1;
    int64_t inner = old ? 1 : prod(x->dims, axis + 1, x->nd);
    const float *xd = x->data;
    float *y = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i;
            float mx = -INFINITY;
            for (int64_t k = 0; k < len; k++)
                mx = fmaxf(mx, xd[base + k * inner]);
            double sum = 0.0;
            for (int64_t k = 0; k < len; k++) {
                float e = expf(xd[base + k * inner] - mx);
                y[base + k * inner] = e;
                sum += e;
            }
            for (int64_t k = 0; k < len; k++)
                y[base + k * inner] = (float)(y[base + k * inner] / sum);
        }
    return MQ_OK;
}

static int op_batchnorm(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    const char *names[5] = {"X", "scale", "B", "mean", "var"};
    for (int k = 0; k < 5; k++)
        if ((rc = need_f32(c, k < n->n_in ? in[k] : NULL, names[k])) < 0)
            return rc;
    if (ox_attr_int(n, "training_mode", 0))
        return ox_fail(c, MQ_EUNSUPPORTED, "training mode");
    if (n->n_out > 1 && n->src->outputs[1][0])
        return ox_fail(c, MQ_EUNSUPPORTED, "running mean and variance outputs (training)");
    const struct ox_tensor *x = in[0];
    if (x->nd < 2)
        return ox_fail(c, MQ_EFORMAT, "input of rank %d", x->nd);
    int64_t C = x->dims[1];
    for (int k = 1; k < 5; k++)
        if (in[k]->n != C)
            return ox_fail(c, MQ_EFORMAT, "%s has %" PRId64 " values for %" PRId64 " channels", names[k], in[k]->n, C);
    if ((rc = ox_out(c, out, OX_F32, x->nd, x->dims)) <= 0)
        return rc;
    float eps = attr_float(n, "epsilon", 1e-5f);
    int64_t B = x->dims[0], P = prod(x->dims, 2, x->nd);
    const float *s = in[1]->data, *b = in[2]->data, *mu = in[3]->data, *var = in[4]->data, *xd = x->data;
    float *y = out->data;
    for (int64_t i = 0; i < B; i++)
        for (int64_t ch = 0; ch < C; ch++) {
            float a = s[ch] / sqrtf(var[ch] + eps), o = b[ch] - mu[ch] * a;
            const float *xp = xd + (i * C + ch) * P;
            float *yp = y + (i * C + ch) * P;
            for (int64_t p = 0; p < P; p++)
                yp[p] = xp[p] * a + o;
        }
    return MQ_OK;
}

static int op_layernorm(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = need_f32(c, in[0], "X")) < 0 || (rc = need_f32(c, n->n_in > 1 ? in[1] : NULL, "Scale")) < 0)
        return rc;
    if (n->n_out > 1)
        return ox_fail(c, MQ_EUNSUPPORTED, "mean and inverse standard deviation outputs");
    const struct ox_tensor *x = in[0], *s = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    if ((rc = norm_axis(c, ox_attr_int(n, "axis", -1), x->nd, &axis)) < 0)
        return rc;
    int64_t inner = prod(x->dims, axis, x->nd), outer = prod(x->dims, 0, axis);
    if (s->n != inner || (b && (b->type != OX_F32 || b->n != inner)))
        return ox_fail(c, MQ_EUNSUPPORTED, "scale or bias not of the normalized shape (%" PRId64 " values)", inner);
    if ((rc = ox_out(c, out, OX_F32, x->nd, x->dims)) <= 0)
        return rc;
    float eps = attr_float(n, "epsilon", 1e-5f);
    for (int64_t o = 0; o < outer; o++) {
        const float *xp = (const float *)x->data + o * inner;
        float *yp = (float *)out->data + o * inner;
        double m = 0.0, v = 0.0;
        for (int64_t i = 0; i < inner; i++)
            m += xp[i];
        m /= (double)inner;
        for (int64_t i = 0; i < inner; i++)
            v += (xp[i] - m) * (xp[i] - m);
        float r = 1.0f / sqrtf((float)(v / (double)inner) + eps);
        for (int64_t i = 0; i < inner; i++)
            yp[i] = (float)(xp[i] - m) * r * ((const float *)s->data)[i] + (b ? ((const float *)b->data)[i] : 0.0f);
    }
    return MQ_OK;
}

/* ---- spatial: conv geometry, pooling, resize -------------------------------------------- */

/* 1-D and 2-D spatial geometry, 1-D seen as 2-D with H = 1. */
struct geom {
    int sp;                    /* spatial dims: 1 or 2 */
    int64_t H, W, kh, kw, sh, sw, dh, dw, ph0, pw0, ph1, pw1, OH, OW;
};

static int spatial_geom(struct ox_ctx *c, const struct ox_node *n, const struct ox_tensor *x, const int64_t *kernel,
                        bool transpose, bool ceil_mode, struct geom *g)
{
    memset(g, 0, sizeof(*g));
    g->sp = x->nd - 2;
    if (g->sp != 1 && g->sp != 2)
        return ox_fail(c, MQ_EUNSUPPORTED, "%d spatial dimensions (mixq runs 1-D and 2-D)", g->sp);
    int64_t cnt;
    const int64_t *a;
    int64_t k[2], s[2] = {1, 1}, d[2] = {1, 1}, p[4] = {0, 0, 0, 0}, sz[2];
    for (int i = 0; i < g->sp; i++) {
        k[i] = kernel[i];
        sz[i] = x->dims[2 + i];
    }
    if ((a = attr_ints(n, "strides", &cnt))) {
        if (cnt != g->sp)
            return ox_fail(c, MQ_EFORMAT, "strides of %" PRId64 " values", cnt);
        memcpy(s, a, (size_t)cnt * 8);
    }
    if ((a = attr_ints(n, "dilations", &cnt))) {
        if (cnt != g->sp)
            return ox_fail(c, MQ_EFORMAT, "dilations of %" PRId64 " values", cnt);
        memcpy(d, a, (size_t)cnt * 8);
    }
    if ((a = attr_ints(n, "pads", &cnt))) {
        if (cnt != 2 * g->sp)
            return ox_fail(c, MQ_EFORMAT, "pads of %" PRId64 " values", cnt);
        memcpy(p, a, (size_t)cnt * 8);
    }
    for (int i = 0; i < g->sp; i++)
        if (s[i] < 1 || d[i] < 1 || k[i] < 1 || p[i] < 0 || p[i + g->sp] < 0 || s[i] > 4096 || d[i] > 4096 ||
            k[i] > 4096 || p[i] > 4096 || p[i + g->sp] > 4096)
            return ox_fail(c, MQ_EFORMAT, "kernel, stride, dilation or pad out of range");
    char buf[32];
    const char *ap = attr_str(n, "auto_pad", "NOTSET", buf, sizeof(buf));
    int64_t o[2];
    for (int i = 0; i < g->sp; i++) {
        int64_t ek = (k[i] - 1) * d[i] + 1;
        if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
            if (transpose)
                return ox_fail(c, MQ_EUNSUPPORTED, "auto_pad %s on a transposed convolution", ap);
            o[i] = (sz[i] + s[i] - 1) / s[i];
            int64_t tot = (o[i] - 1) * s[i] + ek - sz[i];
            tot = tot < 0 ? 0 : tot;
            p[i] = ap[5] == 'U' ? tot / 2 : tot - tot / 2;
            p[i + g->sp] = tot - p[i];
        } else if (strcmp(ap, "VALID") == 0) {
            p[i] = p[i + g->sp] = 0;
        } else if (strcmp(ap, "NOTSET") != 0) {
            return ox_fail(c, MQ_EUNSUPPORTED, "auto_pad '%s'", ap);
        }
        if (transpose) {
            int64_t op_ = 0;
            if ((a = attr_ints(n, "output_padding", &cnt)) && cnt == g->sp)
                op_ = a[i];
            if (attr_ints(n, "output_shape", &cnt))
                return ox_fail(c, MQ_EUNSUPPORTED, "output_shape (give pads instead)");
            o[i] = s[i] * (sz[i] - 1) + op_ + ek - p[i] - p[i + g->sp];
        } else {
            int64_t span = sz[i] + p[i] + p[i + g->sp] - ek;
            if (span < 0)
                return ox_fail(c, MQ_EFORMAT, "kernel of %" PRId64 " wider than the padded input of %" PRId64, ek,
                               sz[i] + p[i] + p[i + g->sp]);
            o[i] = (ceil_mode ? (span + s[i] - 1) / s[i] : span / s[i]) + 1;
            /* with ceil_mode the last window must start inside the input or the left pad */
            if (ceil_mode && (o[i] - 1) * s[i] >= sz[i] + p[i])
                o[i]--;
        }
        if (o[i] < 1)
            return ox_fail(c, MQ_EFORMAT, "output of size %" PRId64, o[i]);
    }
    if (g->sp == 1) {
        g->H = 1, g->kh = 1, g->sh = 1, g->dh = 1, g->OH = 1;
        g->W = sz[0], g->kw = k[0], g->sw = s[0], g->dw = d[0], g->pw0 = p[0], g->pw1 = p[1], g->OW = o[0];
    } else {
        g->H = sz[0], g->kh = k[0], g->sh = s[0], g->dh = d[0], g->ph0 = p[0], g->ph1 = p[2], g->OH = o[0];
        g->W = sz[1], g->kw = k[1], g->sw = s[1], g->dw = d[1], g->pw0 = p[1], g->pw1 = p[3], g->OW = o[1];
    }
    return MQ_OK;
}

static int pool(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out, bool avg,
                bool global)
{
    int rc;
    if ((rc = need_f32(c, in[0], "X")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (x->nd < 3)
        return ox_fail(c, MQ_EFORMAT, "input of rank %d", x->nd);
    if (n->n_out > 1)
        return ox_fail(c, MQ_EUNSUPPORTED, "the Indices output");
    struct geom g;
    int64_t kernel[2], cnt;
    if (global) {
        if (x->nd > 4)
            return ox_fail(c, MQ_EUNSUPPORTED, "%d spatial dimensions", x->nd - 2);
        for (int i = 0; i < x->nd - 2; i++)
            kernel[i] = x->dims[2 + i];
    } else {
        const int64_t *k = attr_ints(n, "kernel_shape", &cnt);
        if (!k || cnt != x->nd - 2 || cnt > 2)
            return ox_fail(c, MQ_EFORMAT, "kernel_shape missing or of the wrong rank");
        memcpy(kernel, k, (size_t)cnt * 8);
    }
    if (global) {
        memset(&g, 0, sizeof(g));
        g.sp = x->nd - 2;
        g.H = g.sp == 2 ? x->dims[2] : 1;
        g.W = x->dims[x->nd - 1];
        g.kh = g.H, g.kw = g.W, g.sh = g.sw = g.dh = g.dw = 1, g.OH = g.OW = 1;
    } else if ((rc = spatial_geom(c, n, x, kernel, false, ox_attr_int(n, "ceil_mode", 0) != 0, &g)) < 0) {
        return rc;
    }
    int64_t dims[4] = {x->dims[0], x->dims[1], g.OH, g.OW};
    if (g.sp == 1)
        dims[2] = g.OW;
    if ((rc = ox_out(c, out, OX_F32, x->nd, dims)) <= 0)
        return rc;
    bool incl = ox_attr_int(n, "count_include_pad", 0) != 0;
    int64_t planes = x->dims[0] * x->dims[1];
    const float *xd = x->data;
    float *y = out->data;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = xd + pl * g.H * g.W;
        float *yp = y + pl * g.OH * g.OW;
        for (int64_t oy = 0; oy < g.OH; oy++)
            for (int64_t ox_ = 0; ox_ < g.OW; ox_++) {
                double acc = avg ? 0.0 : -INFINITY;
                int64_t cntv = 0, cnt_pad = 0;
                for (int64_t ky = 0; ky < g.kh; ky++) {
                    int64_t iy = oy * g.sh - g.ph0 + ky * g.dh;
                    for (int64_t kx = 0; kx < g.kw; kx++) {
                        int64_t ix = ox_ * g.sw - g.pw0 + kx * g.dw;
                        /* windows past the input count padding only inside the pads */
                        if (iy < g.H + g.ph1 && ix < g.W + g.pw1)
                            cnt_pad++;
                        if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W)
                            continue;
                        float v = xp[iy * g.W + ix];
                        acc = avg ? acc + v : (v > acc ? v : acc);
                        cntv++;
                    }
                }
                yp[oy * g.OW + ox_] = (float)(avg ? acc / (double)((incl ? cnt_pad : cntv) ? (incl ? cnt_pad : cntv) : 1) : acc);
            }
    }
    return MQ_OK;
}

static int op_maxpool(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return pool(c, n, in, out, false, false);
}
static int op_avgpool(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return pool(c, n, in, out, true, false);
}
static int op_gap(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return pool(c, n, in, out, true, true);
}
static int op_gmp(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return pool(c, n, in, out, false, true);
}

static int op_resize(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = need_f32(c, in[0], "X")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (x->nd != 4 && x->nd != 3)
        return ox_fail(c, MQ_EUNSUPPORTED, "input of rank %d (mixq resizes NCW and NCHW)", x->nd);
    int nd = x->nd;
    int64_t dims[4];
    double scale[4] = {1, 1, 1, 1};
    /* opset 10: (X, scales); 11+: (X, roi, scales, sizes) */
    const struct ox_tensor *scales = n->n_in == 2 ? in[1] : n->n_in > 2 ? in[2] : NULL;
    const struct ox_tensor *sizes = n->n_in > 3 ? in[3] : NULL;
    if (sizes && sizes->n > 0) {
        int64_t sv[4];
        int ns;
        if ((rc = input_ints(c, sizes, "sizes", sv, 4, &ns)) < 0)
            return rc;
        if (ns != nd)
            return ox_fail(c, MQ_EFORMAT, "sizes of %d values for rank %d", ns, nd);
        for (int i = 0; i < nd; i++) {
            dims[i] = sv[i];
            scale[i] = x->dims[i] ? (double)sv[i] / (double)x->dims[i] : 1.0;
        }
    } else if (scales && scales->n > 0) {
        if (!scales->data || scales->type != OX_F32 || scales->n != nd)
            return ox_fail(c, scales->data ? MQ_EFORMAT : MQ_EUNSUPPORTED, "scales must be %d known floats", nd);
        for (int i = 0; i < nd; i++) {
            scale[i] = ((const float *)scales->data)[i];
            if (!(scale[i] > 0.0 && scale[i] < 4096.0))
                return ox_fail(c, MQ_EFORMAT, "scale %g", scale[i]);
            dims[i] = (int64_t)floor((double)x->dims[i] * scale[i]);
        }
    } else {
        return ox_fail(c, MQ_EFORMAT, "neither scales nor sizes");
    }
    if (dims[0] != x->dims[0] || dims[1] != x->dims[1])
        return ox_fail(c, MQ_EUNSUPPORTED, "resizing the batch or channel dimension");
    char mb[16], cb[32], nb[32];
    const char *mode = attr_str(n, "mode", "nearest", mb, sizeof(mb));
    const char *ct = attr_str(n, "coordinate_transformation_mode", "half_pixel", cb, sizeof(cb));
    const char *nm = attr_str(n, "nearest_mode", "round_prefer_floor", nb, sizeof(nb));
    bool linear = strcmp(mode, "linear") == 0;
    if (!linear && strcmp(mode, "nearest") != 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "resize mode '%s'", mode);
    int ctm = strcmp(ct, "half_pixel") == 0 ? 0 : strcmp(ct, "asymmetric") == 0 ? 1 : strcmp(ct, "align_corners") == 0 ? 2
              : strcmp(ct, "pytorch_half_pixel") == 0 ? 3 : -1;
    if (ctm < 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "coordinate transformation '%s'", ct);
    int nmode = strcmp(nm, "round_prefer_floor") == 0 ? 0 : strcmp(nm, "round_prefer_ceil") == 0 ? 1
                : strcmp(nm, "floor") == 0 ? 2 : strcmp(nm, "ceil") == 0 ? 3 : -1;
    if (nmode < 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "nearest mode '%s'", nm);
    if ((rc = ox_out(c, out, OX_F32, nd, dims)) <= 0)
        return rc;
    int64_t H = nd == 4 ? x->dims[2] : 1, W = x->dims[nd - 1], OH = nd == 4 ? dims[2] : 1, OW = dims[nd - 1];
    double sh = nd == 4 ? scale[2] : 1.0, sw = scale[nd - 1];
    int64_t planes = x->dims[0] * x->dims[1];
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox_ = 0; ox_ < OW; ox_++) {
                double src[2];
                int64_t o[2] = {oy, ox_}, len[2] = {OH, OW}, in_len[2] = {H, W};
                double sc[2] = {sh, sw};
                for (int k = 0; k < 2; k++) {
                    double v = (double)o[k];
                    switch (ctm) {
                    case 0: src[k] = (v + 0.5) / sc[k] - 0.5; break;
                    case 1: src[k] = v / sc[k]; break;
                    case 2: src[k] = len[k] > 1 ? v * (double)(in_len[k] - 1) / (double)(len[k] - 1) : 0.0; break;
                    default: src[k] = len[k] > 1 ? (v + 0.5) / sc[k] - 0.5 : 0.0; break;
                    }
                }
                const float *xp = (const float *)x->data + pl * H * W;
                float v;
                if (!linear) {
                    int64_t iy[2];
                    for (int k = 0; k < 2; k++) {
                        double s = src[k], f = floor(s);
                        double r = nmode == 2 ? f : nmode == 3 ? ceil(s)
                                   : (s - f == 0.5 ? (nmode == 0 ? f : f + 1.0) : floor(s + 0.5));
                        int64_t i = (int64_t)r;
                        iy[k] = i < 0 ? 0 : i >= in_len[k] ? in_len[k] - 1 : i;
                    }
                    v = xp[iy[0] * W + iy[1]];
                } else {
                    int64_t i0[2], i1[2];
                    double fr[2];
                    for (int k = 0; k < 2; k++) {
                        double s = src[k] < 0.0 ? 0.0 : src[k];
                        if (s > (double)(in_len[k] - 1))
                            s = (double)(in_len[k] - 1);
                        i0[k] = (int64_t)floor(s);
                        i1[k] = i0[k] + 1 < in_len[k] ? i0[k] + 1 : i0[k];
                        fr[k] = s - (double)i0[k];
                    }
                    double a = xp[i0[0] * W + i0[1]] * (1 - fr[1]) + xp[i0[0] * W + i1[1]] * fr[1];
                    double b = xp[i1[0] * W + i0[1]] * (1 - fr[1]) + xp[i1[0] * W + i1[1]] * fr[1];
                    v = (float)(a * (1 - fr[0]) + b * fr[0]);
                }
                ((float *)out->data)[(pl * OH + oy) * OW + ox_] = v;
            }
    return MQ_OK;
}

/* ---- layers: weights as rows, and the matmuls ------------------------------------------- */

int ox_weight_rows(const struct ox_node *n, int op, const struct ox_tensor *w, enum ox_layer_kind *kind, int64_t *groups,
                   int64_t *K, int64_t *N, float **rows)
{
    *rows = NULL;
    if (w->type != OX_F32 || !w->data)
        return MQ_EUNSUPPORTED;
    int64_t g = 1;
    if (op == ox_op_index_conv() || op == ox_op_index_conv_t()) {
        g = ox_attr_int(n, "group", 1);
        if (w->nd < 3 || w->nd > 4 || g < 1)
            return MQ_EUNSUPPORTED;
        int64_t ksz = prod(w->dims, 2, w->nd);
        if (op == ox_op_index_conv()) {
            if (w->dims[0] % g)
                return MQ_EUNSUPPORTED;
            *kind = OX_LAYER_CONV;
            *K = w->dims[1] * ksz;
            *N = w->dims[0] / g;
        } else {
            if (w->dims[0] % g)
                return MQ_EUNSUPPORTED;
            *kind = OX_LAYER_CONV_T;
            *K = w->dims[0] / g;   /* input channels per group */
            *N = w->dims[1] * ksz; /* output channels per group x kernel */
        }
    } else {
        if (w->nd != 2)
            return MQ_EUNSUPPORTED;
        bool trans = op == ox_op_index_gemm() && ox_attr_int(n, "transB", 0);
        *kind = OX_LAYER_GEMM;
        *K = trans ? w->dims[1] : w->dims[0];
        *N = trans ? w->dims[0] : w->dims[1];
    }
    if (*K < 1 || *N < 1)
        return MQ_EUNSUPPORTED;
    *groups = g;
    float *r = malloc((size_t)(g * *N * *K) * sizeof(float));
    if (!r)
        return mq_error(MQ_ENOMEM, "cannot allocate weights of %" PRId64 " values", g * *N * *K);
    const float *src = w->data;
    if (*kind == OX_LAYER_CONV || (*kind == OX_LAYER_GEMM && op == ox_op_index_gemm() && ox_attr_int(n, "transB", 0))) {
        memcpy(r, src, (size_t)(g * *N * *K) * sizeof(float)); /* already [N][K] */
    } else if (*kind == OX_LAYER_GEMM) {
        for (int64_t k = 0; k < *K; k++)
            for (int64_t j = 0; j < *N; j++)
                r[j * *K + k] = src[k * *N + j];
    } else { /* ConvTranspose: W [Cin][Cout/g * ksz] per group, transposed to [N][K] */
        for (int64_t gi = 0; gi < g; gi++)
            for (int64_t k = 0; k < *K; k++)
                for (int64_t j = 0; j < *N; j++)
                    r[(gi * *N + j) * *K + k] = src[(gi * *K + k) * *N + j];
    }
    *rows = r;
    *groups = g;
    return MQ_OK;
}

/* Y[M][N] = X[M][K] * rows^T, rows [N][K]: the host f32 reference. */
static void host_matmul(const float *rows, int64_t K, int64_t N, const float *X, int64_t M, float *Y)
{
    for (int64_t m = 0; m < M; m++) {
        const float *x = X + m * K;
        for (int64_t j = 0; j < N; j++) {
            const float *w = rows + j * K;
            double acc = 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)w[k] * x[k];
            Y[m * N + j] = (float)acc;
        }
    }
}

/* One group of a layer: through the session's matmul, or from weight rows on the host. */
static int layer_matmul(struct ox_ctx *c, const struct ox_node *n, const float *rows, int64_t K, int64_t N,
                        int64_t group, const float *X, int64_t M, float *Y)
{
    if (n->layer >= 0 && c->matmul)
        return c->matmul(c, n->layer, group, X, M, Y);
    const float *w = n->layer >= 0 ? c->g->layers[n->layer].w : rows;
    host_matmul(w + group * N * K, K, N, X, M, Y);
    return MQ_OK;
}

static int grow_col(struct ox_ctx *c, int64_t n)
{
    if ((size_t)n <= c->col_cap)
        return MQ_OK;
    float *p = realloc(c->col, (size_t)n * sizeof(float));
    if (!p)
        return ox_fail(c, MQ_ENOMEM, "cannot allocate %" PRId64 " floats of im2col scratch", n);
    c->col = p;
    c->col_cap = (size_t)n;
    return MQ_OK;
}

static void note_layer(struct ox_ctx *c, const struct ox_node *n, int64_t M, int64_t calls, uint64_t scratch)
{
    if (n->layer >= 0 && c->layer_M) {
        c->layer_M[n->layer] = M;
        c->layer_calls[n->layer] += calls;
    }
    if (scratch > c->scratch_bytes)
        c->scratch_bytes = scratch;
}

/* Weight rows for this node: the layer's, or built from a constant/computed weight. */
static int node_rows(struct ox_ctx *c, const struct ox_node *n, const struct ox_tensor *w, int64_t *g, int64_t *K,
                     int64_t *N, float **owned)
{
    *owned = NULL;
    if (n->layer >= 0) {
        const struct ox_layer *l = &c->g->layers[n->layer];
        *g = l->groups, *K = l->K, *N = l->N;
        return MQ_OK;
    }
    enum ox_layer_kind kind;
    if (!w->data)
        return ox_fail(c, MQ_EINTERNAL, "weight has no data");
    int rc = ox_weight_rows(n, n->op, w, &kind, g, K, N, owned);
    if (rc == MQ_EUNSUPPORTED)
        return ox_fail(c, MQ_EUNSUPPORTED, "weight of shape not supported (rank %d)", w->nd);
    return rc;
}

/* dst[c * dst_ld + r] = src[r * src_ld + c] for r < rows, c < cols, in cache-sized tiles. */
static void transpose_tiles(const float *src, int64_t rows, int64_t cols, int64_t src_ld, float *dst, int64_t dst_ld)
{
    const int64_t T = 32;
    for (int64_t r0 = 0; r0 < rows; r0 += T)
        for (int64_t c0 = 0; c0 < cols; c0 += T) {
            int64_t r1 = r0 + T < rows ? r0 + T : rows, c1 = c0 + T < cols ? c0 + T : cols;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t cc = c0; cc < c1; cc++)
                    dst[cc * dst_ld + r] = src[r * src_ld + cc];
        }
}

static int op_conv(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = need_f32(c, in[0], "X")) < 0 || (rc = need_f32(c, in[1], "W")) < 0)
        return rc;
    const struct ox_tensor *x = in[0], *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    if (w->nd != x->nd || x->nd < 3)
        return ox_fail(c, MQ_EFORMAT, "X of rank %d and W of rank %d", x->nd, w->nd);
    int64_t g = ox_attr_int(n, "group", 1), cnt;
    const int64_t *ks = attr_ints(n, "kernel_shape", &cnt);
    for (int i = 0; ks && i < cnt && i < w->nd - 2; i++)
        if (ks[i] != w->dims[2 + i])
            return ox_fail(c, MQ_EFORMAT, "kernel_shape differs from the weight's");
    int64_t Cin = x->dims[1], Cout = w->dims[0];
    if (g < 1 || Cin % g || Cout % g || w->dims[1] != Cin / g)
        return ox_fail(c, MQ_EFORMAT, "%" PRId64 " input channels, %" PRId64 " output channels, weight [%" PRId64
                       ", %" PRId64 "], %" PRId64 " groups", Cin, Cout, w->dims[0], w->dims[1], g);
    if (b && (b->type != OX_F32 || b->n != Cout))
        return ox_fail(c, MQ_EFORMAT, "bias of %" PRId64 " values for %" PRId64 " channels", b->n, Cout);
    struct geom gm;
    if ((rc = spatial_geom(c, n, x, w->dims + 2, false, false, &gm)) < 0)
        return rc;
    int64_t B = x->dims[0], P = gm.OH * gm.OW, Cg = Cin / g, Ng = Cout / g, K = Cg * gm.kh * gm.kw, M = B * P;
    int64_t dims[4] = {B, Cout, gm.OH, gm.OW};
    if (gm.sp == 1)
        dims[2] = gm.OW;
    note_layer(c, n, M, g, (uint64_t)(M * K + M * Ng) * 4);
    if ((rc = ox_out(c, out, OX_F32, x->nd, dims)) <= 0)
        return rc;
    float *rows = NULL;
    int64_t gg, KK = K, NN = Ng;
    if ((rc = node_rows(c, n, w, &gg, &KK, &NN, &rows)) < 0)
        return rc;
    MQ_ASSERT(gg == g && KK == K && NN == Ng);
    if ((rc = grow_col(c, M * K + M * Ng)) < 0)
        goto done;
    float *col = c->col, *res = c->col + M * K;
    const float *xd = x->data;
    float *y = out->data;
    bool pointwise = gm.kh == 1 && gm.kw == 1 && gm.sh == 1 && gm.sw == 1 && gm.ph0 == 0 && gm.pw0 == 0 &&
                     gm.ph1 == 0 && gm.pw1 == 0;
    for (int64_t gi = 0; gi < g; gi++) {
        /* im2col: col[m = b*P + p][k = (ci*kh + ky)*kw + kx] */
        for (int64_t bi = 0; bi < B; bi++) {
            if (pointwise) { /* a 1x1 conv: [Cg][P] transposed */
                transpose_tiles(xd + (bi * Cin + gi * Cg) * P, Cg, P, P, col + bi * P * K, K);
                continue;
            }
            for (int64_t ci = 0; ci < Cg; ci++) {
                const float *xp = xd + (bi * Cin + gi * Cg + ci) * gm.H * gm.W;
                for (int64_t ky = 0; ky < gm.kh; ky++)
                    for (int64_t kx = 0; kx < gm.kw; kx++) {
                        int64_t k = (ci * gm.kh + ky) * gm.kw + kx;
                        float *cp = col + bi * P * K + k;
                        /* output columns whose input column lies inside: [lo, hi) */
                        int64_t off = gm.pw0 - kx * gm.dw;
                        int64_t lo = off > 0 ? (off + gm.sw - 1) / gm.sw : 0;
                        int64_t hi = gm.W - 1 + off >= 0 ? (gm.W - 1 + off) / gm.sw + 1 : 0;
                        lo = lo > gm.OW ? gm.OW : lo;
                        hi = hi > gm.OW ? gm.OW : hi < lo ? lo : hi;
                        for (int64_t oy = 0; oy < gm.OH; oy++) {
                            int64_t iy = oy * gm.sh - gm.ph0 + ky * gm.dh;
                            if (iy < 0 || iy >= gm.H) {
                                for (int64_t ox_ = 0; ox_ < gm.OW; ox_++, cp += K)
                                    *cp = 0.0f;
                                continue;
                            }
                            const float *row = xp + iy * gm.W - off;
                            int64_t ox_ = 0;
                            for (; ox_ < lo; ox_++, cp += K)
                                *cp = 0.0f;
                            for (; ox_ < hi; ox_++, cp += K)
                                *cp = row[ox_ * gm.sw];
                            for (; ox_ < gm.OW; ox_++, cp += K)
                                *cp = 0.0f;
                        }
                    }
            }
        }
        if ((rc = layer_matmul(c, n, rows, K, Ng, gi, col, M, res)) < 0)
            goto done;
        for (int64_t bi = 0; bi < B; bi++) {
            float *yg = y + (bi * Cout + gi * Ng) * P;
            transpose_tiles(res + bi * P * Ng, P, Ng, Ng, yg, P);
            if (b)
                for (int64_t j = 0; j < Ng; j++) {
                    float bias = ((const float *)b->data)[gi * Ng + j];
                    for (int64_t p = 0; p < P; p++)
                        yg[j * P + p] += bias;
                }
        }
    }
    rc = MQ_OK;
done:
    free(rows);
    return rc;
}

static int op_conv_t(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = need_f32(c, in[0], "X")) < 0 || (rc = need_f32(c, in[1], "W")) < 0)
        return rc;
    const struct ox_tensor *x = in[0], *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    if (w->nd != x->nd || x->nd < 3)
        return ox_fail(c, MQ_EFORMAT, "X of rank %d and W of rank %d", x->nd, w->nd);
    int64_t g = ox_attr_int(n, "group", 1);
    int64_t Cin = x->dims[1];
    if (g < 1 || Cin % g || w->dims[0] != Cin)
        return ox_fail(c, MQ_EFORMAT, "%" PRId64 " input channels, weight [%" PRId64 ", ...], %" PRId64 " groups", Cin,
                       w->dims[0], g);
    int64_t Cg_out = w->dims[1], Cout = Cg_out * g;
    if (b && (b->type != OX_F32 || b->n != Cout))
        return ox_fail(c, MQ_EFORMAT, "bias of %" PRId64 " values for %" PRId64 " channels", b->n, Cout);
    struct geom gm;
    if ((rc = spatial_geom(c, n, x, w->dims + 2, true, false, &gm)) < 0)
        return rc;
    int64_t B = x->dims[0], Pin = gm.H * gm.W, K = Cin / g, ksz = gm.kh * gm.kw, Ng = Cg_out * ksz, M = B * Pin;
    int64_t dims[4] = {B, Cout, gm.OH, gm.OW};
    if (gm.sp == 1)
        dims[2] = gm.OW;
    note_layer(c, n, M, g, (uint64_t)(M * K + M * Ng) * 4);
    if ((rc = ox_out(c, out, OX_F32, x->nd, dims)) <= 0)
        return rc;
    float *rows = NULL;
    int64_t gg, KK = K, NN = Ng;
    if ((rc = node_rows(c, n, w, &gg, &KK, &NN, &rows)) < 0)
        return rc;
    MQ_ASSERT(gg == g && KK == K && NN == Ng);
    if ((rc = grow_col(c, M * K + M * Ng)) < 0)
        goto done;
    float *col = c->col, *res = c->col + M * K, *y = out->data;
    const float *xd = x->data;
    int64_t Pout = gm.OH * gm.OW;
    for (int64_t gi = 0; gi < g; gi++) {
        for (int64_t bi = 0; bi < B; bi++)
            for (int64_t p = 0; p < Pin; p++)
                for (int64_t k = 0; k < K; k++)
                    col[(bi * Pin + p) * K + k] = xd[(bi * Cin + gi * K + k) * Pin + p];
        if ((rc = layer_matmul(c, n, rows, K, Ng, gi, col, M, res)) < 0)
            goto done;
        /* col2im: res[m][co*ksz + ky*kw + kx] lands at output (iy*sh - ph0 + ky*dh, ...) */
        for (int64_t bi = 0; bi < B; bi++)
            for (int64_t iy = 0; iy < gm.H; iy++)
                for (int64_t ix = 0; ix < gm.W; ix++) {
                    const float *r = res + (bi * Pin + iy * gm.W + ix) * Ng;
                    for (int64_t co = 0; co < Cg_out; co++)
                        for (int64_t ky = 0; ky < gm.kh; ky++) {
                            int64_t oy = iy * gm.sh - gm.ph0 + ky * gm.dh;
                            if (oy < 0 || oy >= gm.OH)
                                continue;
                            for (int64_t kx = 0; kx < gm.kw; kx++) {
                                int64_t oxx = ix * gm.sw - gm.pw0 + kx * gm.dw;
                                if (oxx < 0 || oxx >= gm.OW)
                                    continue;
                                y[((bi * Cout + gi * Cg_out + co) * gm.OH + oy) * gm.OW + oxx] +=
                                    r[co * ksz + ky * gm.kw + kx];
                            }
                        }
                }
    }
    if (b)
        for (int64_t bi = 0; bi < B; bi++)
            for (int64_t co = 0; co < Cout; co++)
                for (int64_t p = 0; p < Pout; p++)
                    y[(bi * Cout + co) * Pout + p] += ((const float *)b->data)[co];
    rc = MQ_OK;
done:
    free(rows);
    return rc;
}

static int op_gemm(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = need_f32(c, in[0], "A")) < 0 || (rc = need_f32(c, in[1], "B")) < 0)
        return rc;
    const struct ox_tensor *a = in[0], *bm = in[1], *cc = n->n_in > 2 ? in[2] : NULL;
    if (a->nd != 2 || bm->nd != 2)
        return ox_fail(c, MQ_EFORMAT, "A of rank %d and B of rank %d (want 2)", a->nd, bm->nd);
    bool ta = ox_attr_int(n, "transA", 0), tb = ox_attr_int(n, "transB", 0);
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t Kb = tb ? bm->dims[1] : bm->dims[0], N = tb ? bm->dims[0] : bm->dims[1];
    if (K != Kb)
        return ox_fail(c, MQ_EFORMAT, "A has K = %" PRId64 ", B has K = %" PRId64, K, Kb);
    int64_t dims[2] = {M, N};
    if (cc) {
        struct ox_tensor yshape = {.type = OX_F32, .nd = 2, .dims = {M, N}, .n = M * N};
        struct ox_tensor *ts[2] = {&yshape, (struct ox_tensor *)cc};
        int nd;
        int64_t bd[MQ_ONNX_MAX_DIMS];
        if ((rc = bcast(c, ts, 2, &nd, bd)) < 0)
            return rc;
        if (nd != 2 || bd[0] != M || bd[1] != N)
            return ox_fail(c, MQ_EFORMAT, "C does not broadcast to [%" PRId64 ", %" PRId64 "]", M, N);
    }
    note_layer(c, n, M, 1, (uint64_t)(M * K) * 4);
    if ((rc = ox_out(c, out, OX_F32, 2, dims)) <= 0)
        return rc;
    float *rows = NULL, *xt = NULL;
    int64_t g, KK = K, NN = N;
    if ((rc = node_rows(c, n, bm, &g, &KK, &NN, &rows)) < 0)
        return rc;
    const float *X = a->data;
    if (ta) {
        xt = malloc((size_t)(M * K) * sizeof(float));
        if (!xt) {
            rc = ox_fail(c, MQ_ENOMEM, "cannot allocate A^T");
            goto done;
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < K; k++)
                xt[i * K + k] = ((const float *)a->data)[k * M + i];
        X = xt;
    }
    if ((rc = layer_matmul(c, n, rows, K, N, 0, X, M, out->data)) < 0)
        goto done;
    float alpha = attr_float(n, "alpha", 1.0f), beta = attr_float(n, "beta", 1.0f);
    float *y = out->data;
    if (alpha != 1.0f)
        for (int64_t i = 0; i < M * N; i++)
            y[i] *= alpha;
    if (cc) {
        struct ox_tensor yshape = {.type = OX_F32, .nd = 2, .dims = {M, N}, .n = M * N};
        struct ox_tensor *ts[2] = {&yshape, (struct ox_tensor *)cc};
        struct biter it;
        biter_init(&it, ts, 2, 2, dims);
        for (int64_t i = 0; i < M * N; i++, biter_next(&it))
            y[i] += beta * fget(cc, it.off[1]);
    }
    rc = MQ_OK;
done:
    free(rows);
    free(xt);
    return rc;
}

static int op_matmul(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = need_f32(c, in[0], "A")) < 0 || (rc = need_f32(c, in[1], "B")) < 0)
        return rc;
    const struct ox_tensor *a = in[0], *bm = in[1];
    if (a->nd < 1 || bm->nd < 1)
        return ox_fail(c, MQ_EFORMAT, "scalar operand");
    /* as batched [.., M, K] x [.., K, N], 1-D operands promoted and their dim dropped */
    int64_t M = a->nd == 1 ? 1 : a->dims[a->nd - 2], K = a->dims[a->nd - 1];
    int64_t Kb = bm->nd == 1 ? bm->dims[0] : bm->dims[bm->nd - 2], N = bm->nd == 1 ? 1 : bm->dims[bm->nd - 1];
    if (K != Kb)
        return ox_fail(c, MQ_EFORMAT, "A has K = %" PRId64 ", B has K = %" PRId64, K, Kb);
    struct ox_tensor ab = {.nd = a->nd > 2 ? a->nd - 2 : 0}, bb = {.nd = bm->nd > 2 ? bm->nd - 2 : 0};
    for (int i = 0; i < ab.nd; i++)
        ab.dims[i] = a->dims[i];
    for (int i = 0; i < bb.nd; i++)
        bb.dims[i] = bm->dims[i];
    struct ox_tensor *ts[2] = {&ab, &bb};
    int bnd;
    int64_t bd[MQ_ONNX_MAX_DIMS], dims[MQ_ONNX_MAX_DIMS];
    if ((rc = bcast(c, ts, 2, &bnd, bd)) < 0)
        return rc;
    int nd = 0;
    for (int i = 0; i < bnd; i++)
        dims[nd++] = bd[i];
    if (a->nd > 1)
        dims[nd++] = M;
    if (bm->nd > 1)
        dims[nd++] = N;
    int64_t batch = prod(bd, 0, bnd);
    bool as_layer = n->layer >= 0 || (bm->nd == 2 && batch == prod(ab.dims, 0, ab.nd));
    if (n->layer >= 0)
        note_layer(c, n, batch * M, 1, 0);
    if ((rc = ox_out(c, out, OX_F32, nd, dims)) <= 0)
        return rc;
    if (as_layer && bm->nd == 2) { /* one matmul of all rows against the constant B */
        float *rows = NULL;
        int64_t g, KK = K, NN = N;
        if ((rc = node_rows(c, n, bm, &g, &KK, &NN, &rows)) < 0)
            return rc;
        rc = layer_matmul(c, n, rows, K, N, 0, a->data, batch * M, out->data);
        free(rows);
        return rc;
    }
    struct biter it;
    biter_init(&it, ts, 2, bnd, bd);
    const float *A = a->data, *Bd = bm->data;
    float *Y = out->data;
    for (int64_t bi = 0; bi < batch; bi++, biter_next(&it)) {
        const float *ap = A + it.off[0] * M * K, *bp = Bd + it.off[1] * K * N;
        float *yp = Y + bi * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0.0;
                for (int64_t k = 0; k < K; k++)
                    acc += (double)ap[i * K + k] * bp[k * N + j];
                yp[i * N + j] = (float)acc;
            }
    }
    return MQ_OK;
}

static int op_if(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    (void)n, (void)in, (void)out;
    return ox_fail(c, MQ_EUNSUPPORTED, "If whose condition is known only at run time");
}

/* ---- the table ------------------------------------------------------------------------- */

#define ANY -1
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
    {"Range", op_range, 3, 3, 1, 1},       {"Reshape", op_reshape, 1, 2, 1, 1},
    {"Flatten", op_flatten, 1, 1, 1, 1},   {"Squeeze", op_squeeze, 1, 2, 1, 1},
    {"Unsqueeze", op_unsqueeze, 1, 2, 1, 1}, {"Transpose", op_transpose, 1, 1, 1, 1},
    {"Concat", op_concat, 1, ANY, 1, 1},   {"Split", op_split, 1, 2, 1, ANY},
    {"Slice", op_slice, 1, 5, 1, 1},       {"Gather", op_gather, 2, 2, 1, 1},
    {"Expand", op_expand, 2, 2, 1, 1},     {"Pad", op_pad, 1, 4, 1, 1},
    {"ReduceMean", op_rmean, 1, 2, 1, 1},  {"ReduceSum", op_rsum, 1, 2, 1, 1},
    {"ReduceMax", op_rmax, 1, 2, 1, 1},    {"Softmax", op_softmax, 1, 1, 1, 1},
    {"BatchNormalization", op_batchnorm, 5, 5, 1, 5},
    {"LayerNormalization", op_layernorm, 2, 3, 1, 3},
    {"MaxPool", op_maxpool, 1, 1, 1, 2},   {"AveragePool", op_avgpool, 1, 1, 1, 1},
    {"GlobalAveragePool", op_gap, 1, 1, 1, 1}, {"GlobalMaxPool", op_gmp, 1, 1, 1, 1},
    {"Resize", op_resize, 2, 4, 1, 1},     {"Conv", op_conv, 2, 3, 1, 1},
    {"ConvTranspose", op_conv_t, 2, 3, 1, 1}, {"Gemm", op_gemm, 2, 3, 1, 1},
    {"MatMul", op_matmul, 2, 2, 1, 1},     {"If", op_if, 1, 1, 1, ANY},
};
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
