/* onnx/onnx_exec.c - running a compiled ONNX graph: the layers' weights on a backend in a
 * plan's formats, every node in order on the host, values freed after their last use;
 * and the shape pass that prices a workload without running its arithmetic. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "onnx/onnx_internal.h"

struct mq_onnx_exec {
    const struct mq_model *m;
    const struct ox_graph *g;
    struct be_backend *be;
    struct be_tensor *w; /* every layer's groups, layer i's group j at w[first[i] + j] */
    int *first;
    int n_w;
    struct be_tensor xs, ys; /* 1-d F32 scratch on the backend, grown as needed */
    struct ox_ctx ctx;
    struct ox_tensor *vals;  /* [n_values] */
    mq_capture_fn capture;   /* sees every layer's matmul input, or NULL */
    void *capture_arg;
};

void ox_exec_set_capture(struct mq_onnx_exec *x, mq_capture_fn fn, void *arg)
{
    x->capture = fn;
    x->capture_arg = arg;
}

static const struct ox_graph *graph_of(const struct mq_model *m) { return m->impl; }

/* ---- the backend matmul ------------------------------------------------------------------ */

static int grow_be(struct mq_onnx_exec *x, struct be_tensor *t, int64_t n)
{
    if (t->data && be_nelements(t) >= n)
        return MQ_OK;
    be_free(x->be, t);
    int64_t cap = n < 4096 ? 4096 : n;
    return be_alloc(x->be, t, MQ_DTYPE_F32, 1, &cap);
}

static int view2(const struct be_tensor *t, int64_t ne0, int64_t ne1, struct be_tensor *v)
{
    struct be_tensor rows;
    int rc = be_view_rows(t, 0, ne0 * ne1, &rows);
    return rc < 0 ? rc : be_view_reshape(&rows, 2, (int64_t[]){ne0, ne1}, v);
}

static int be_matmul(struct ox_ctx *c, int layer, int64_t group, const float *X, int64_t M, float *Y)
{
    struct mq_onnx_exec *x = c->mm_arg;
    const struct ox_layer *l = &x->g->layers[layer];
    struct be_tensor xv, yv;
    int rc;
    if (x->capture && (rc = x->capture(x->capture_arg, layer, X, l->K, M)) < 0)
        return rc;
    if ((rc = grow_be(x, &x->xs, l->K * M)) < 0 || (rc = grow_be(x, &x->ys, l->N * M)) < 0 ||
        (rc = view2(&x->xs, l->K, M, &xv)) < 0 || (rc = view2(&x->ys, l->N, M, &yv)) < 0 ||
        (rc = be_write(x->be, &xv, 0, X, (size_t)(l->K * M) * sizeof(float))) < 0)
        return rc;
    struct be_node node = {.op = BE_OP_MATMUL, .src = {&x->w[x->first[layer] + group], &xv}, .dst = &yv};
    if ((rc = be_run(x->be, &node)) < 0)
        return rc;
    return be_read(x->be, &yv, 0, Y, (size_t)(l->N * M) * sizeof(float));
}

/* ---- exec lifecycle ---------------------------------------------------------------------- */

int mq_onnx_exec_new(const struct mq_model *m, const struct mq_plan *plan, struct be_backend *be,
                     struct mq_onnx_exec **out)
{
    *out = NULL;
    if (m->kind != MQ_MODEL_ONNX)
        return mq_error(MQ_EINVAL, "'%s' is not an ONNX model", m->path);
    if ((plan == NULL) != (be == NULL))
        return mq_error(MQ_EINVAL, "an ONNX exec needs both a plan and a backend, or neither");
    int rc;
    if (plan && (rc = mq_plan_check(m, plan)) < 0)
        return rc;
    const struct ox_graph *g = graph_of(m);
    struct mq_onnx_exec *x = calloc(1, sizeof(*x));
    if (!x)
        return mq_error(MQ_ENOMEM, "cannot allocate an ONNX exec");
    x->m = m;
    x->g = g;
    x->be = be;
    x->ctx.g = g;
    x->vals = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof(*x->vals));
    x->first = calloc((size_t)(g->n_layers ? g->n_layers : 1), sizeof(int));
    if (!x->vals || !x->first) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate an ONNX exec");
        goto fail;
    }
    if (be) {
        int64_t n_w = 0;
        for (int i = 0; i < g->n_layers; i++) {
            x->first[i] = (int)n_w;
            n_w += g->layers[i].groups;
        }
        if (n_w > (1 << 24)) {
            rc = mq_error(MQ_EUNSUPPORTED, "'%s': %" PRId64 " weight groups", m->path, n_w);
            goto fail;
        }
        x->w = calloc((size_t)(n_w ? n_w : 1), sizeof(*x->w));
        if (!x->w) {
            rc = mq_error(MQ_ENOMEM, "cannot allocate an ONNX exec");
            goto fail;
        }
        for (int i = 0; i < g->n_layers; i++) {
            const struct ox_layer *l = &g->layers[i];
            for (int64_t j = 0; j < l->groups; j++) {
                const void *data;
                void *buf;
                const float *src = l->w + j * l->N * l->K;
                bool plain = plan->timing_only; /* model/plan.h */
                if ((rc = mq_convert_weights(m->layers[i].name, MQ_DTYPE_F32, src, l->K, l->N, plan->fmt[i],
                                             plain ? NULL : m->layers[i].imp, plain ? NULL : m->layers[i].gram_u,
                                             &data, &buf)) < 0)
                    goto fail;
                rc = be_upload(be, &x->w[x->n_w], plan->fmt[i], 2, (int64_t[]){l->K, l->N}, data, BE_USE_MATRIX);
                free(buf);
                if (rc < 0)
                    goto fail;
                x->n_w++;
            }
        }
        x->ctx.matmul = be_matmul;
        x->ctx.mm_arg = x;
    }
    *out = x;
    return MQ_OK;
fail:
    mq_onnx_exec_free(x);
    return rc;
}

void mq_onnx_exec_free(struct mq_onnx_exec *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->n_w; i++)
        be_free(x->be, &x->w[i]);
    if (x->be) {
        be_free(x->be, &x->xs);
        be_free(x->be, &x->ys);
    }
    if (x->vals)
        for (int i = 0; i < x->g->n_values; i++)
            ox_tensor_release(&x->vals[i]);
    free(x->vals);
    free(x->w);
    free(x->first);
    free(x->ctx.col);
    free(x);
}

void mq_onnx_io_release(struct mq_onnx_io *io, int n)
{
    for (int i = 0; io && i < n; i++) {
        free(io[i].data);
        io[i].data = NULL;
    }
}

/* ---- running the nodes ------------------------------------------------------------------- */

/* Binds the caller's inputs (borrowed) after checking them against the graph. */
static int bind_inputs(const struct ox_graph *g, const struct mq_onnx_io *in, int n_in, struct ox_tensor *vals,
                       bool shape_only)
{
    for (int i = 0; i < g->n_inputs; i++) {
        const struct ox_input *gi = &g->inputs[i];
        if (gi->bound)
            continue;
        const struct mq_onnx_io *io = NULL;
        for (int k = 0; k < n_in; k++)
            if (in[k].name && strcmp(in[k].name, gi->vi->name) == 0)
                io = &in[k];
        if (!io)
            return mq_error(MQ_EINVAL, "input '%s' is not given", gi->vi->name);
        bool want_f = gi->vi->elem == MQ_ONNX_FLOAT || gi->vi->elem == MQ_ONNX_FLOAT16 ||
                      gi->vi->elem == MQ_ONNX_DOUBLE || gi->vi->elem == MQ_ONNX_BFLOAT16;
        if (want_f != (io->type == MQ_ONNX_IO_F32))
            return mq_error(MQ_EINVAL, "input '%s' is %s, given %s", gi->vi->name, mq_onnx_elem_name(gi->vi->elem),
                            io->type == MQ_ONNX_IO_F32 ? "float" : "int64");
        if (io->n_dims < 0 || io->n_dims > MQ_ONNX_MAX_DIMS ||
            (gi->vi->has_shape && io->n_dims != gi->vi->n_dims))
            return mq_error(MQ_EINVAL, "input '%s' has rank %d, the model wants %d", gi->vi->name, io->n_dims,
                            gi->vi->n_dims);
        struct ox_tensor *t = &vals[gi->value];
        memset(t, 0, sizeof(*t));
        t->type = io->type == MQ_ONNX_IO_F32 ? OX_F32 : OX_I64;
        t->nd = io->n_dims;
        t->n = 1;
        for (int d = 0; d < io->n_dims; d++) {
            if (gi->vi->has_shape && gi->vi->dims[d] >= 0 && io->dims[d] != gi->vi->dims[d])
                return mq_error(MQ_EINVAL, "input '%s' has dimension %d of %" PRId64 ", the model wants %" PRId64,
                                gi->vi->name, d, io->dims[d], gi->vi->dims[d]);
            if (io->dims[d] < 0 || (io->dims[d] > 0 && t->n > ((int64_t)1 << 34) / io->dims[d]))
                return mq_error(MQ_EINVAL, "input '%s' has dimension %d of %" PRId64, gi->vi->name, d, io->dims[d]);
            t->dims[d] = io->dims[d];
            t->n *= io->dims[d];
        }
        t->data = io->data;
        t->borrowed = true;
        if (!t->data && !(shape_only && t->type == OX_F32))
            return mq_error(MQ_EINVAL, "input '%s' has no data", gi->vi->name);
    }
    return MQ_OK;
}

static void release_vals(const struct ox_graph *g, struct ox_tensor *vals)
{
    for (int i = 0; i < g->n_values; i++)
        ox_tensor_release(&vals[i]);
}

/* Runs every node; frees each value after its last use. *peak: the most bytes of
 * activations live at once (inputs and outputs included). */
static int run_nodes(const struct ox_graph *g, struct ox_ctx *c, struct ox_tensor *vals, uint64_t *peak)
{
    uint64_t live = 0;
    for (int i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i].bound)
            live += ox_tensor_bytes(&vals[g->inputs[i].value]);
    *peak = live;
    struct ox_tensor *args[64], outs[64];
    for (int i = 0; i < g->n_nodes; i++) {
        const struct ox_node *n = &g->nodes[i];
        bool have = true;
        memset(args, 0, sizeof(args)); /* inputs past n_in read as omitted */
        for (int k = 0; k < n->n_in; k++) {
            int v = n->in[k];
            args[k] = v < 0 ? NULL : g->values[v].is_const ? (struct ox_tensor *)&g->values[v].c : &vals[v];
            if (args[k] && !args[k]->data && args[k]->n > 0)
                have = false;
        }
        c->inputs_have_data = have;
        memset(outs, 0, (size_t)n->n_out * sizeof(outs[0]));
        int rc = ox_run_node(c, n, args, outs);
        if (rc < 0)
            return rc;
        for (int k = 0; k < n->n_out; k++) {
            if (n->out[k] < 0) {
                ox_tensor_release(&outs[k]);
                continue;
            }
            vals[n->out[k]] = outs[k];
            live += ox_tensor_bytes(&outs[k]);
        }
        if (live > *peak)
            *peak = live;
        /* free what no later node reads (outputs read by nobody included) */
        for (int k = 0; k < n->n_in; k++) {
            int v = n->in[k];
            if (v >= 0 && !g->values[v].is_const && !g->values[v].is_output && g->values[v].last_use == i &&
                (vals[v].data || vals[v].nd || vals[v].n)) { /* (a value read twice is freed once) */
                live -= ox_tensor_bytes(&vals[v]);
                if (g->values[v].input >= 0) /* the caller's: forget, do not free */
                    memset(&vals[v], 0, sizeof(vals[v]));
                else
                    ox_tensor_release(&vals[v]);
            }
        }
        for (int k = 0; k < n->n_out; k++) {
            int v = n->out[k];
            if (v >= 0 && g->values[v].last_use < 0 && !g->values[v].is_output) {
                live -= ox_tensor_bytes(&vals[v]);
                ox_tensor_release(&vals[v]);
            }
        }
    }
    return MQ_OK;
}

int mq_onnx_exec_run(struct mq_onnx_exec *x, const struct mq_onnx_io *in, int n_in, struct mq_onnx_io *out, int n_out)
{
    const struct ox_graph *g = x->g;
    for (int i = 0; i < n_out; i++)
        out[i].data = NULL;
    if (n_out != g->n_outputs)
        return mq_error(MQ_EINVAL, "the model has %d outputs, %d asked for", g->n_outputs, n_out);
    int rc = bind_inputs(g, in, n_in, x->vals, false);
    uint64_t peak;
    if (rc == MQ_OK) {
        x->ctx.shape_only = false;
        rc = run_nodes(g, &x->ctx, x->vals, &peak);
    }
    for (int i = 0; rc == MQ_OK && i < n_out; i++) {
        int v = g->outputs[i];
        const struct ox_tensor *t = g->values[v].is_const ? &g->values[v].c : &x->vals[v];
        struct mq_onnx_io *o = &out[i];
        o->name = g->output_vi[i]->name;
        o->type = t->type == OX_F32 ? MQ_ONNX_IO_F32 : MQ_ONNX_IO_I64;
        o->n_dims = t->nd;
        memcpy(o->dims, t->dims, sizeof(o->dims));
        size_t bytes = (size_t)ox_tensor_bytes(t);
        o->data = malloc(bytes ? bytes : 1);
        if (!o->data) {
            rc = mq_error(MQ_ENOMEM, "cannot allocate output '%s'", o->name);
            break;
        }
        if (bytes)
            memcpy(o->data, t->data, bytes);
    }
    release_vals(g, x->vals);
    if (rc < 0)
        mq_onnx_io_release(out, n_out);
    return rc;
}

void ox_note_layer_work(struct ox_ctx *c, int layer, int64_t M, int64_t calls)
{
    int64_t *Ms = c->layer_M + (size_t)layer * MQ_ONNX_LAYER_WORK, *cs = c->layer_calls + (size_t)layer * MQ_ONNX_LAYER_WORK;
    int k = 0;
    while (k < MQ_ONNX_LAYER_WORK - 1 && cs[k] > 0 && Ms[k] != M)
        k++;
    if (cs[k] > 0 && Ms[k] != M) { /* more distinct sizes than entries: as many columns in the last */
        cs[k] += (M * calls + Ms[k] - 1) / Ms[k];
        return;
    }
    Ms[k] = M;
    cs[k] += calls;
}

int mq_onnx_shape_pass(const struct mq_model *m, const struct mq_onnx_io *in, int n_in,
                       struct mq_onnx_shape_report *out)
{
    memset(out, 0, sizeof(*out));
    const struct ox_graph *g = graph_of(m);
    struct ox_tensor *vals = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof(*vals));
    size_t n_work = (size_t)(m->n_layers ? m->n_layers : 1) * MQ_ONNX_LAYER_WORK;
    out->layer_M = calloc(n_work, sizeof(int64_t));
    out->layer_calls = calloc(n_work, sizeof(int64_t));
    struct ox_ctx c = {.g = g, .shape_only = true, .layer_M = out->layer_M, .layer_calls = out->layer_calls};
    int rc;
    if (!vals || !out->layer_M || !out->layer_calls) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate a shape pass");
        goto done;
    }
    uint64_t peak = 0;
    if ((rc = bind_inputs(g, in, n_in, vals, true)) == MQ_OK)
        rc = run_nodes(g, &c, vals, &peak);
    out->peak_activation_bytes = peak;
    out->scratch_bytes = c.scratch_bytes;
done:
    if (vals)
        release_vals(g, vals);
    free(vals);
    free(c.col);
    if (rc < 0) {
        free(out->layer_M);
        free(out->layer_calls);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}
