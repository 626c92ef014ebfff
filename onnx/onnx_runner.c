/* onnx/onnx_runner.c - ONNX models as mixq models: loading (read, compile, list layers)
 * and the runner (model/runner.h): infer[:BATCH] sessions, each layer's matmul work and
 * the memory model from a shape pass, `mixq info`'s lines, and quality (onnx_task.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "model/runner.h"
#include "onnx/onnx_inputs.h"
#include "onnx/onnx_task.h"

static const struct ox_graph *graph_of(const struct mq_model *m) { return m->impl; }

const struct mq_onnx_file *mq_onnx_model_file(const struct mq_model *m)
{
    return m->kind == MQ_MODEL_ONNX && m->impl ? graph_of(m)->file : NULL;
}

static void onnx_free_impl(struct mq_model *m)
{
    struct ox_graph *g = m->impl;
    if (!g)
        return;
    struct mq_onnx_file *f = g->file;
    ox_graph_free(g);
    mq_onnx_close(f);
    m->impl = NULL;
}

static enum mq_layer_role role_of(enum ox_layer_kind k)
{
    return k == OX_LAYER_CONV ? MQ_ROLE_CONV : k == OX_LAYER_CONV_T ? MQ_ROLE_CONV_TRANSPOSE : MQ_ROLE_GEMM;
}

/* Float weights in the file (initializers and Constant values, subgraphs included). */
/* Whether initializer `name` is the quantized data a DequantizeLinear node reads (QDQ). */
static bool dequantized(const struct mq_onnx_graph *sg, const char *name)
{
    for (int i = 0; i < sg->n_nodes; i++)
        if (sg->nodes[i].n_inputs > 0 && strcmp(sg->nodes[i].op_type, "DequantizeLinear") == 0 &&
            strcmp(sg->nodes[i].inputs[0], name) == 0)
            return true;
    return false;
}

/* Float initializers and Constants, and the integer initializers QDQ dequantizes (weights
 * stored quantized are parameters too; their float scales count, as every float does). */
static int64_t count_params(const struct mq_onnx_graph *sg)
{
    int64_t n = 0;
    for (int i = 0; i < sg->n_inits; i++)
        if (sg->inits[i].elem == MQ_ONNX_FLOAT || sg->inits[i].elem == MQ_ONNX_FLOAT16 ||
            sg->inits[i].elem == MQ_ONNX_BFLOAT16 || sg->inits[i].elem == MQ_ONNX_DOUBLE)
            n += sg->inits[i].n_elems;
        else if (dequantized(sg, sg->inits[i].name))
            n += sg->inits[i].n_elems;
    for (int i = 0; i < sg->n_nodes; i++)
        for (int k = 0; k < sg->nodes[i].n_attrs; k++) {
            const struct mq_onnx_attr *a = &sg->nodes[i].attrs[k];
            if (a->t && strcmp(sg->nodes[i].op_type, "Constant") == 0 &&
                (a->t->elem == MQ_ONNX_FLOAT || a->t->elem == MQ_ONNX_FLOAT16 || a->t->elem == MQ_ONNX_DOUBLE))
                n += a->t->n_elems;
            if (a->g)
                n += count_params(a->g);
        }
    return n;
}

static int workload_inputs(const struct mq_model *m, int64_t batch, struct mq_onnx_io *io, int max);

/* One shape pass at batch 1 when the task knows every input's shape and all are float:
 * a model whose shapes do not fit is refused at load, with the node that breaks. */
static int check_shapes(const struct mq_model *m)
{
    struct mq_onnx_io io[16];
    const struct ox_graph *g = graph_of(m);
    int n_unbound = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        if (g->inputs[i].bound)
            continue;
        n_unbound++;
        int nd;
        int64_t dims[MQ_ONNX_MAX_DIMS];
        const struct mq_onnx_value_info *vi = g->inputs[i].vi;
        if (vi->elem != MQ_ONNX_FLOAT || !onnx_task_dims_known(g, &g->inputs[i]) ||
            onnx_task_input_dims(g, &g->inputs[i], 1, &nd, dims) < 0)
            return MQ_OK; /* priced later, or refused then with the reason */
    }
    if (n_unbound > 16)
        return MQ_OK;
    int n = workload_inputs(m, 1, io, 16);
    if (n < 0)
        return n;
    struct mq_onnx_shape_report r;
    int rc = mq_onnx_shape_pass(m, io, n, &r);
    if (rc == MQ_OK) {
        free(r.layer_M);
        free(r.layer_calls);
    }
    return rc;
}

/* The user's input shapes onto the graph's inputs: every name an input the callers feed,
 * every rank and every size the file fixes as given. One line naming what does not fit. */
static int apply_shapes(struct mq_model *m, const struct mq_input_shapes *shapes)
{
    struct ox_graph *g = m->impl;
    for (int i = 0; i < shapes->n; i++) {
        const struct mq_input_shape *sh = &shapes->v[i];
        struct ox_input *in = NULL;
        for (int k = 0; k < g->n_inputs && !in; k++)
            if (strcmp(g->inputs[k].vi->name, sh->name) == 0)
                in = &g->inputs[k];
        if (!in) {
            char names[256] = "";
            size_t len = 0;
            for (int k = 0; k < g->n_inputs && len < sizeof(names); k++)
                if (!g->inputs[k].bound)
                    len += (size_t)snprintf(names + len, sizeof(names) - len, "%s'%.64s'", len ? ", " : "",
                                            g->inputs[k].vi->name);
            return mq_error(MQ_EINVAL, "'%s' has no input '%.64s%s' to give a shape (its inputs: %s)", m->path,
                            sh->name, strlen(sh->name) > 64 ? "..." : "", names[0] ? names : "none");
        }
        const struct mq_onnx_value_info *vi = in->vi;
        if (in->bound)
            return mq_error(MQ_EINVAL, "'%s': input '%s' is bound by the %s task (%s): it takes no shape", m->path,
                            vi->name, g->task->name, g->bound_desc);
        if (vi->has_shape && vi->n_dims != sh->n_dims)
            return mq_error(MQ_EINVAL, "'%s': input '%s' has %d dimensions, --shapes gives %d", m->path, vi->name,
                            vi->n_dims, sh->n_dims);
        if (sh->n_dims > MQ_ONNX_MAX_DIMS)
            return mq_error(MQ_EINVAL, "'%s': input '%s' of %d dimensions (at most %d)", m->path, vi->name,
                            sh->n_dims, MQ_ONNX_MAX_DIMS);
        for (int d = 0; vi->has_shape && d < vi->n_dims; d++)
            if (vi->dims[d] >= 0 && vi->dims[d] != sh->dims[d])
                return mq_error(MQ_EINVAL, "'%s': input '%s' has dimension %d fixed to %" PRId64 ", --shapes gives "
                                "%" PRId64, m->path, vi->name, d, vi->dims[d], sh->dims[d]);
        in->shape_nd = sh->n_dims;
        memcpy(in->shape, sh->dims, (size_t)sh->n_dims * sizeof(*in->shape));
    }
    if (!(m->input_shapes = strdup(shapes->canon)))
        return mq_error(MQ_ENOMEM, "cannot copy the input shapes");
    /* two input sizes are two models to every cache and report keyed by the model */
    m->content_hash = mq_hash64(shapes->canon, strlen(shapes->canon), m->content_hash);
    return MQ_OK;
}

/* Compiles a read file into a model; takes the file (closed on failure). */
static int model_from_file(const char *path, struct mq_onnx_file *f, const struct mq_input_shapes *shapes,
                           struct mq_model **out)
{
    *out = NULL;
    struct mq_model *m = calloc(1, sizeof(*m));
    if (!m) {
        mq_onnx_close(f);
        return mq_error(MQ_ENOMEM, "cannot allocate a model");
    }
    snprintf(m->path, sizeof(m->path), "%s", path);
    m->kind = MQ_MODEL_ONNX;
    m->runner = &mq_onnx_runner;
    snprintf(m->arch, sizeof(m->arch), "onnx");
    struct ox_graph *g = NULL;
    int rc;
    if ((rc = ox_graph_compile(f, onnx_task_detect(f), &g)) < 0) {
        mq_onnx_close(f);
        goto fail;
    }
    m->impl = g;
    m->file_bytes = f->size;
    m->content_hash = mq_hash64(f->base, f->size, 0x6d6978716f6e6e78ULL);
    m->n_params = count_params(f->graph);
    snprintf(m->name, sizeof(m->name), "%s", g->task->name);
    m->layers = calloc((size_t)(g->n_layers ? g->n_layers : 1), sizeof(*m->layers));
    if (!m->layers) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %d layers", g->n_layers);
        goto fail;
    }
    for (int i = 0; i < g->n_layers; i++) {
        const struct ox_layer *l = &g->layers[i];
        const struct ox_node *n = &g->nodes[l->node];
        struct mq_layer *ly = &m->layers[m->n_layers++];
        /* named after the weight; a weight read with two row layouts (find_layers) gets
         * "#2", "#3" for the others */
        const char *wname = g->values[n->in[l->input]].name;
        snprintf(ly->name, sizeof(ly->name), "%s", wname);
        for (int k = 2; mq_model_find_layer(m, ly->name) != m->n_layers - 1; k++) {
            char suffix[16];
            snprintf(suffix, sizeof(suffix), "#%d", k);
            size_t room = sizeof(ly->name) - strlen(suffix) - 1;
            snprintf(ly->name, sizeof(ly->name), "%.*s%s", (int)room, wname, suffix);
        }
        ly->role = role_of(l->kind);
        ly->block = -1;
        ly->n_in = l->K;
        ly->n_out = l->groups * l->N;
        ly->src_type = MQ_DTYPE_F32;
        ly->src_data = l->w;
        ly->src_nbytes = (size_t)(ly->n_in * ly->n_out) * sizeof(float);
        ly->formats = mq_layer_formats_for(l->K);
    }
    if (shapes && shapes->n && (rc = apply_shapes(m, shapes)) < 0)
        goto fail;
    if ((rc = check_shapes(m)) < 0)
        goto fail;
    *out = m;
    return MQ_OK;
fail:
    mq_model_free(m);
    return rc;
}

int mq_onnx_model_load(const char *path, struct mq_model **out)
{
    return mq_onnx_model_load_shaped(path, NULL, out);
}

int mq_onnx_model_load_shaped(const char *path, const struct mq_input_shapes *shapes, struct mq_model **out)
{
    struct mq_onnx_file *f;
    *out = NULL;
    int rc = mq_onnx_open(path, &f);
    return rc < 0 ? rc : model_from_file(path, f, shapes, out);
}

int mq_onnx_model_from_memory(const void *buf, size_t size, const char *name, struct mq_model **out)
{
    struct mq_onnx_file *f;
    *out = NULL;
    int rc = mq_onnx_open_memory(buf, size, name, &f);
    return rc < 0 ? rc : model_from_file(name ? name : "(memory)", f, NULL, out);
}

/* ---- sessions ---------------------------------------------------------------------------- */

struct onnx_session {
    const struct mq_model *m;
    struct mq_onnx_exec *x;
    struct mq_onnx_io in[16];
    int n_in;
};

static bool onnx_accepts(const struct mq_model *m, const struct mq_workload *w)
{
    (void)m;
    return w->kind == MQ_WL_INFER;
}

/* Inputs of one inference of `batch`, data NULL. */
static int workload_inputs(const struct mq_model *m, int64_t batch, struct mq_onnx_io *io, int max)
{
    const struct ox_graph *g = graph_of(m);
    int n_unbound = 0;
    for (int i = 0; i < g->n_inputs; i++)
        n_unbound += !g->inputs[i].bound;
    if (n_unbound > max)
        return mq_error(MQ_EUNSUPPORTED, "'%s' has %d inputs (at most %d)", m->path, n_unbound, max);
    return onnx_task_inputs(g, batch, io);
}

/* Whether a shape pass can run without an error line: every input fed, of a known shape. */
static bool shape_pass_ready(const struct ox_graph *g)
{
    for (int i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i].bound && !onnx_task_dims_known(g, &g->inputs[i]))
            return false;
    return true;
}

static int onnx_check(const struct mq_model *m, const struct mq_workload *w)
{
    struct mq_onnx_io io[16];
    int n = workload_inputs(m, w->batch, io, 16);
    return n < 0 ? n : MQ_OK;
}

static void onnx_session_free(void *p)
{
    struct onnx_session *s = p;
    if (!s)
        return;
    mq_onnx_exec_free(s->x);
    for (int i = 0; i < s->n_in; i++)
        free(s->in[i].data);
    free(s);
}

static int onnx_session_new(const struct mq_model *m, const struct mq_plan *p, struct be_backend *be,
                            const struct mq_workload *w, void **out)
{
    *out = NULL;
    int rc = mq_runner_check(m, w);
    if (rc < 0)
        return rc;
    struct onnx_session *s = calloc(1, sizeof(*s));
    if (!s)
        return mq_error(MQ_ENOMEM, "cannot allocate a session");
    s->m = m;
    if ((rc = workload_inputs(m, w->batch, s->in, 16)) < 0)
        goto fail;
    s->n_in = rc;
    /* pseudo-random inputs in [-1, 1) (integer inputs 0): the arithmetic, not the values,
     * is what a session times */
    uint64_t r = 0x9E3779B97F4A7C15ULL;
    if ((rc = ox_inputs_fill(s->in, s->n_in, &r, (int64_t)1 << 30, NULL)) < 0)
        goto fail;
    if ((rc = mq_onnx_exec_new(m, p, be, &s->x)) < 0)
        goto fail;
    *out = s;
    return MQ_OK;
fail:
    onnx_session_free(s);
    return rc;
}

/* One inference; outputs are read back (be_read syncs) and dropped. */
static int onnx_session_run(void *p)
{
    struct onnx_session *s = p;
    const struct ox_graph *g = graph_of(s->m);
    struct mq_onnx_io out[64];
    if (g->n_outputs > 64)
        return mq_error(MQ_EUNSUPPORTED, "model with %d outputs", g->n_outputs);
    int rc = mq_onnx_exec_run(s->x, s->in, s->n_in, out, g->n_outputs);
    if (rc == MQ_OK)
        mq_onnx_io_release(out, g->n_outputs);
    return rc;
}

/* ---- layer work and memory: a shape pass at the workload's batch -------------------------- */

/* Float inputs go without values; integer inputs (token ids, masks, bytes), whose values
 * shape ops may read, are zeros, as the workload's sessions feed them. */
static int shape_pass(const struct mq_model *m, const struct mq_workload *w, struct mq_onnx_shape_report *r)
{
    struct mq_onnx_io io[16];
    int n = workload_inputs(m, w->batch, io, 16), rc = MQ_OK;
    if (n < 0)
        return n;
    for (int i = 0; i < n && rc == MQ_OK; i++) {
        int64_t cnt = 1;
        for (int d = 0; d < io[i].n_dims; d++)
            cnt *= io[i].dims[d];
        if (io[i].type != MQ_ONNX_IO_F32 &&
            !(io[i].data = calloc((size_t)(cnt ? cnt : 1), sizeof(int64_t))))
            rc =
                mq_error(MQ_ENOMEM, "'%s': cannot allocate integer input '%s' (%" PRId64 " values)",
                         m->path, io[i].name, cnt);
    }
    if (rc == MQ_OK)
        rc = mq_onnx_shape_pass(m, io, n, r);
    for (int i = 0; i < n; i++)
        free(io[i].data);
    return rc;
}

static int onnx_layer_work(const struct mq_model *m, int layer, const struct mq_workload *w, int64_t M[4],
                           int64_t calls[4])
{
    if (w->kind != MQ_WL_INFER || layer < 0 || layer >= m->n_layers)
        return 0;
    struct mq_onnx_shape_report r;
    if (!shape_pass_ready(graph_of(m)) || shape_pass(m, w, &r) < 0)
        return 0; /* the reason is mq_runner_check's one line, not one per layer */
    int n = 0;
    _Static_assert(MQ_ONNX_LAYER_WORK <= 4, "runner.h's layer_work has 4 entries");
    for (int k = 0; k < MQ_ONNX_LAYER_WORK; k++) {
        size_t at = (size_t)layer * MQ_ONNX_LAYER_WORK + (size_t)k;
        if (r.layer_calls[at] > 0) {
            M[n] = r.layer_M[at];
            calls[n++] = r.layer_calls[at];
        }
    }
    free(r.layer_M);
    free(r.layer_calls);
    return n;
}

/* weights: the layers in their plan formats + every other constant the host keeps (f32,
 * int64); scratch: the largest set of activations live at once, plus the largest im2col
 * and matmul buffers on the host, their copies on the backend, and the backend's Q8_0
 * activation blocks (34 bytes per 32 values). */
static int onnx_memory(const struct mq_model *m, const struct mq_plan *p, const struct mq_workload *w,
                       struct mq_memory *out)
{
    memset(out, 0, sizeof(*out));
    int rc = mq_runner_check(m, w);
    if (rc < 0)
        return rc;
    struct mq_onnx_shape_report r;
    if ((rc = shape_pass(m, w, &r)) < 0)
        return rc;
    out->weights = mq_plan_weight_bytes(m, p) + graph_of(m)->const_bytes;
    out->scratch = r.peak_activation_bytes + 2 * r.scratch_bytes + r.scratch_bytes * 34 / 128;
    out->total = out->weights + out->kv_cache + out->scratch + out->overhead;
    free(r.layer_M);
    free(r.layer_calls);
    return MQ_OK;
}

/* ---- describe ------------------------------------------------------------------------------ */

static void print_vi(FILE *f, const char *key, const struct mq_onnx_value_info *vi, bool bound, const char *task_dims)
{
    fprintf(f, "%-13s %s %s", key, vi->name, mq_onnx_elem_name(vi->elem));
    if (vi->has_shape) {
        fputs(" [", f);
        for (int d = 0; d < vi->n_dims; d++) {
            if (vi->dims[d] >= 0)
                fprintf(f, "%s%" PRId64, d ? ", " : "", vi->dims[d]);
            else
                fprintf(f, "%s%s", d ? ", " : "", vi->dim_params[d] ? vi->dim_params[d] : "?");
        }
        fputc(']', f);
    }
    if (bound)
        fputs(" (bound by the task)", f);
    if (task_dims[0])
        fprintf(f, "; one inference: %s", task_dims);
    fputc('\n', f);
}

static int cmp_count(const void *a, const void *b)
{
    const struct ox_op_count *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->op, y->op);
}

static void onnx_describe(const struct mq_model *m, FILE *f)
{
    const struct ox_graph *g = graph_of(m);
    const struct mq_onnx_file *file = g->file;
    fprintf(f, "file          ONNX IR %" PRId64 ", opset %" PRId64 ", producer '%s%s%s', %d nodes%s\n", file->ir_version,
            g->opset, file->producer, file->producer_version && file->producer_version[0] ? " " : "",
            file->producer_version ? file->producer_version : "", g->n_file_nodes,
            file->n_meta ? ", metadata" : "");
    fprintf(f, "task          %s: %s%s%s\n", g->task->name, g->task->summary,
            g->task->default_data ? "; default data " : "", g->task->default_data ? g->task->default_data : "");
    for (int i = 0; i < g->n_inputs; i++) {
        char dims[128] = "";
        int nd;
        int64_t d[MQ_ONNX_MAX_DIMS];
        if (onnx_task_dims_known(g, &g->inputs[i]) && onnx_task_input_dims(g, &g->inputs[i], 1, &nd, d) == MQ_OK) {
            size_t len = 0;
            for (int k = 0; k < nd && len < sizeof(dims) - 24; k++)
                len += (size_t)snprintf(dims + len, sizeof(dims) - len, "%s%" PRId64, k ? " x " : "", d[k]);
        }
        print_vi(f, i ? "" : "inputs", g->inputs[i].vi, g->inputs[i].bound, dims);
    }
    if (g->bound_desc[0])
        fprintf(f, "bound         %s\n", g->bound_desc);
    for (int i = 0; i < g->n_outputs; i++)
        print_vi(f, i ? "" : "outputs", g->output_vi[i], false, "");
    struct ox_op_count *oc = malloc((size_t)(g->n_op_counts ? g->n_op_counts : 1) * sizeof(*oc));
    if (oc && g->n_op_counts) {
        memcpy(oc, g->op_counts, (size_t)g->n_op_counts * sizeof(*oc));
        qsort(oc, (size_t)g->n_op_counts, sizeof(*oc), cmp_count);
        fputs("ops          ", f);
        for (int i = 0; i < g->n_op_counts; i++)
            fprintf(f, " %s %d%s", oc[i].op, oc[i].count, i + 1 < g->n_op_counts ? "," : "");
        fputc('\n', f);
    }
    free(oc);
    int n_shared = 0;
    for (int i = 0; i < g->n_layers; i++)
        n_shared += g->layers[i].n_nodes > 1;
    char shared[64] = "";
    if (n_shared)
        snprintf(shared, sizeof(shared), " (%d read by several nodes)", n_shared);
    fprintf(f, "graph         %d nodes run (%d folded into constants at load, %d If folded), %d quantizable "
            "layers%s, %" PRIu64 " bytes of other constants\n", g->n_nodes, g->n_folded, g->n_ifs_folded, g->n_layers,
            shared, g->const_bytes);
    if (g->n_dequantized)
        fprintf(f,
                "quantized     %d tensors stored as integers (QDQ, MatMulInteger, ConvInteger), "
                "dequantized at "
                "load; those "
                "dequantized weights are the reference, as onnxruntime computes them\n",
                g->n_dequantized);
    if (m->input_shapes)
        fprintf(f, "shapes        %s (given)\n", m->input_shapes);
}

static int onnx_quality_new_op(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg,
                               void **out)
{
    return onnx_quality_new(m, be, cfg, out);
}

const struct mq_runner_ops mq_onnx_runner = {
    .kind = "onnx",
    .default_workload = "infer:1",
    .accepts = onnx_accepts,
    .check = onnx_check,
    .session_new = onnx_session_new,
    .session_run = onnx_session_run,
    .session_free = onnx_session_free,
    .layer_work = onnx_layer_work,
    .memory = onnx_memory,
    .free_impl = onnx_free_impl,
    .describe = onnx_describe,
    .quality_new = onnx_quality_new_op,
    .loss_name = onnx_loss_name,
    .quality_eval = onnx_quality_eval,
    .quality_free = onnx_quality_free,
    .capture = onnx_capture,
};

const struct mq_onnx_node *mq_onnx_layer_node(const struct mq_model *m, int layer)
{
    if (m->kind != MQ_MODEL_ONNX || !m->impl || layer < 0 || layer >= m->n_layers)
        return NULL;
    const struct ox_graph *g = m->impl;
    return g->nodes[g->layers[layer].node].src;
}
