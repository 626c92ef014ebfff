/* onnx/onnx_graph.c - compiles a read ONNX file into what the interpreter runs: values
 * by id, constants decoded and folded, If nodes with constant conditions replaced by
 * their branch, nodes in topological order, liveness, and the quantizable layers. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "onnx/onnx_internal.h"

/* ---- a string -> int map (open addressing, borrowed keys) ------------------------------- */

struct smap {
    const char **keys;
    int *vals;
    int cap, n;
};

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void smap_free(struct smap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

static int smap_grow(struct smap *m)
{
    int cap = m->cap ? m->cap * 2 : 64;
    if (cap > INT_MAX / 4)
        return mq_error(MQ_ENOMEM, "too many names");
    const char **keys = calloc((size_t)cap, sizeof(*keys));
    int *vals = malloc((size_t)cap * sizeof(*vals));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return mq_error(MQ_ENOMEM, "cannot allocate a name table");
    }
    for (int i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        uint64_t h = str_hash(m->keys[i]) & (uint64_t)(cap - 1);
        while (keys[h])
            h = (h + 1) & (uint64_t)(cap - 1);
        keys[h] = m->keys[i];
        vals[h] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return MQ_OK;
}

static int smap_get(const struct smap *m, const char *key)
{
    if (!m->cap)
        return -1;
    uint64_t h = str_hash(key) & (uint64_t)(m->cap - 1);
    while (m->keys[h]) {
        if (strcmp(m->keys[h], key) == 0)
            return m->vals[h];
        h = (h + 1) & (uint64_t)(m->cap - 1);
    }
    return -1;
}

static int smap_put(struct smap *m, const char *key, int val)
{
    if (2 * (m->n + 1) > m->cap) {
        int rc = smap_grow(m);
        if (rc < 0)
            return rc;
    }
    uint64_t h = str_hash(key) & (uint64_t)(m->cap - 1);
    while (m->keys[h]) {
        if (strcmp(m->keys[h], key) == 0) {
            m->vals[h] = val;
            return MQ_OK;
        }
        h = (h + 1) & (uint64_t)(m->cap - 1);
    }
    m->keys[h] = key;
    m->vals[h] = val;
    m->n++;
    return MQ_OK;
}

/* ---- the compiler's state --------------------------------------------------------------- */

struct compiler {
    struct ox_graph *g;
    struct smap names; /* value name -> id */
    struct ox_ctx fold;
    const char *path;
};

/* A new value named `name` (borrowed), not looked up by name (alloc_value) or the value
 * that name means from now on (new_value). */
static int alloc_value(struct compiler *cp, const char *name, int *id)
{
    struct ox_graph *g = cp->g;
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 256;
        if (cap > INT_MAX / 4)
            return mq_error(MQ_ENOMEM, "too many values");
        struct ox_value *v = realloc(g->values, (size_t)cap * sizeof(*v));
        if (!v)
            return mq_error(MQ_ENOMEM, "cannot allocate %d values", cap);
        g->values = v;
        g->cap_values = cap;
    }
    *id = g->n_values++;
    struct ox_value *v = &g->values[*id];
    memset(v, 0, sizeof(*v));
    v->name = name;
    v->input = -1;
    v->last_use = -1;
    v->copy_of = -1;
    return MQ_OK;
}

static int new_value(struct compiler *cp, const char *name, int *id)
{
    if (smap_get(&cp->names, name) >= 0)
        return mq_error(MQ_EFORMAT, "'%s': value '%s' is defined twice", cp->path, name);
    int rc = alloc_value(cp, name, id);
    return rc < 0 ? rc : smap_put(&cp->names, name, *id);
}

static int add_const(struct compiler *cp, const struct mq_onnx_tensor *t)
{
    int id, rc = new_value(cp, t->name, &id);
    if (rc < 0)
        return rc;
    struct ox_value *v = &cp->g->values[id];
    v->is_const = true;
    v->elem = t->elem;
    struct ox_ctx c = cp->fold;
    c.inputs_have_data = true;
    c.max_elems = 0; /* initializers are bounded by the file's size, checked when read */
    enum ox_type type;
    switch (t->elem) {
    case MQ_ONNX_FLOAT: case MQ_ONNX_FLOAT16: case MQ_ONNX_DOUBLE: case MQ_ONNX_BFLOAT16: type = OX_F32; break;
    case MQ_ONNX_BOOL: type = OX_BOOL; break;
    default: type = OX_I64;
    }
    if ((rc = ox_out(&c, &v->c, type, t->n_dims, t->dims)) < 0)
        return rc;
    rc = type == OX_F32 ? mq_onnx_tensor_f32(t, v->c.data) : mq_onnx_tensor_i64(t, v->c.data);
    if (rc < 0)
        return rc;
    if (type == OX_BOOL)
        for (int64_t i = 0; i < v->c.n; i++)
            ((int64_t *)v->c.data)[i] = ((int64_t *)v->c.data)[i] != 0;
    return MQ_OK;
}

/* ---- checking ops before anything runs -------------------------------------------------- */

static int count_op(struct ox_graph *g, const char *op)
{
    for (int i = 0; i < g->n_op_counts; i++)
        if (strcmp(g->op_counts[i].op, op) == 0) {
            g->op_counts[i].count++;
            return MQ_OK;
        }
    struct ox_op_count *p = realloc(g->op_counts, (size_t)(g->n_op_counts + 1) * sizeof(*p));
    if (!p)
        return mq_error(MQ_ENOMEM, "cannot count ops");
    g->op_counts = p;
    g->op_counts[g->n_op_counts++] = (struct ox_op_count){.op = op, .count = 1};
    return MQ_OK;
}

static bool default_domain(const char *d) { return !d[0] || strcmp(d, "ai.onnx") == 0; }

static int scan_ops(struct compiler *cp, const struct mq_onnx_graph *sg)
{
    struct ox_graph *g = cp->g;
    for (int i = 0; i < sg->n_nodes; i++) {
        const struct mq_onnx_node *n = &sg->nodes[i];
        g->n_file_nodes++;
        int rc = count_op(g, n->op_type);
        if (rc < 0)
            return rc;
        for (int k = 0; k < n->n_attrs; k++)
            if (n->attrs[k].g && (rc = scan_ops(cp, n->attrs[k].g)) < 0)
                return rc;
    }
    return MQ_OK;
}

/* Lists every op type mixq does not interpret, with counts, in one line. */
static int check_ops(struct compiler *cp, const struct mq_onnx_graph *sg, char *bad, size_t size, int *n_bad)
{
    for (int i = 0; i < sg->n_nodes; i++) {
        const struct mq_onnx_node *n = &sg->nodes[i];
        int op = default_domain(n->domain) ? ox_op_find(n->op_type) : -1;
        if (op < 0) {
            char item[300], listed[310];
            snprintf(item, sizeof(item), "%s%s%s", default_domain(n->domain) ? "" : n->domain,
                     default_domain(n->domain) ? "" : ".", n->op_type);
            snprintf(listed, sizeof(listed), "%s (", item);
            const char *at = strstr(bad, listed);
            bool seen = at && (at == bad || (at >= bad + 2 && at[-2] == ',' && at[-1] == ' '));
            if (!seen) { /* first time: append "OP (count)" */
                int count = 0;
                for (int k = 0; k < cp->g->n_op_counts; k++)
                    if (strcmp(cp->g->op_counts[k].op, n->op_type) == 0)
                        count = cp->g->op_counts[k].count;
                size_t len = strlen(bad);
                snprintf(bad + len, size - len, "%s%s (%d)", *n_bad ? ", " : "", item, count);
                (*n_bad)++;
            }
            continue;
        }
        const struct ox_op *o = &ox_ops[op];
        if (n->n_inputs < o->min_in || (o->max_in >= 0 && n->n_inputs > o->max_in) || n->n_outputs < o->min_out ||
            (o->max_out >= 0 && n->n_outputs > o->max_out))
            return mq_error(MQ_EFORMAT, "'%s': node '%s' (%s) has %d inputs and %d outputs; the op takes %d..%d and %d..%d",
                            cp->path, n->name, n->op_type, n->n_inputs, n->n_outputs, o->min_in, o->max_in,
                            o->min_out, o->max_out);
        for (int k = 0; k < n->n_attrs; k++)
            if (n->attrs[k].g) {
                if (strcmp(n->op_type, "If") != 0)
                    continue;
                int rc = check_ops(cp, n->attrs[k].g, bad, size, n_bad);
                if (rc < 0)
                    return rc;
            }
    }
    return MQ_OK;
}

/* ---- topological order and folding ------------------------------------------------------ */

/* Names a node reads, its subgraphs' reads included (If's implicit inputs). */
static int for_each_read(const struct mq_onnx_node *n, int (*fn)(void *, const char *), void *arg)
{
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k][0]) {
            int rc = fn(arg, n->inputs[k]);
            if (rc)
                return rc;
        }
    for (int a = 0; a < n->n_attrs; a++) {
        const struct mq_onnx_graph *sg = n->attrs[a].g;
        if (!sg)
            continue;
        for (int i = 0; i < sg->n_nodes; i++) {
            int rc = for_each_read(&sg->nodes[i], fn, arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

struct dep_walk {
    const struct smap *producer;
    int self;
    int *deps;   /* out: producer indices (may repeat) */
    int n, cap;
    bool oom;
};

static int dep_add(void *arg, const char *name)
{
    struct dep_walk *w = arg;
    int p = smap_get(w->producer, name);
    if (p < 0 || p == w->self)
        return 0;
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 8;
        int *d = realloc(w->deps, (size_t)cap * sizeof(*d));
        if (!d) {
            w->oom = true;
            return 1;
        }
        w->deps = d;
        w->cap = cap;
    }
    w->deps[w->n++] = p;
    return 0;
}

static int compile_nodes(struct compiler *cp, const struct mq_onnx_graph *sg, int depth);

static void heap_push(int *h, int *n, int v)
{
    int i = (*n)++;
    h[i] = v;
    while (i > 0 && h[(i - 1) / 2] > h[i]) {
        int p = (i - 1) / 2, t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static int heap_pop(int *h, int *n)
{
    int top = h[0];
    h[0] = h[--(*n)];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l] < h[m])
            m = l;
        if (r < *n && h[r] < h[m])
            m = r;
        if (m == i)
            break;
        int t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
    return top;
}

static int add_exec_node(struct compiler *cp, const struct mq_onnx_node *sn, int op, const int *in, int n_in)
{
    struct ox_graph *g = cp->g;
    if (sn->n_outputs > 64)
        return mq_error(MQ_EUNSUPPORTED, "'%s': node '%s' has %d outputs (at most 64)", cp->path, sn->name,
                        sn->n_outputs);
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 128;
        struct ox_node *p = realloc(g->nodes, (size_t)cap * sizeof(*p));
        if (!p)
            return mq_error(MQ_ENOMEM, "cannot allocate %d nodes", cap);
        g->nodes = p;
        g->cap_nodes = cap;
    }
    struct ox_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->src = sn;
    n->layer = -1;
    n->n_in = n_in;
    n->n_out = sn->n_outputs;
    n->in = malloc((size_t)(n_in ? n_in : 1) * sizeof(int));
    n->out = malloc((size_t)(n->n_out ? n->n_out : 1) * sizeof(int));
    if (!n->in || !n->out) {
        free(n->in);
        free(n->out);
        return mq_error(MQ_ENOMEM, "cannot allocate a node");
    }
    memcpy(n->in, in, (size_t)n_in * sizeof(int));
    g->n_nodes++;
    for (int k = 0; k < n->n_out; k++) {
        n->out[k] = -1;
        if (!sn->outputs[k][0])
            continue;
        int rc = new_value(cp, sn->outputs[k], &n->out[k]);
        if (rc < 0)
            return rc;
    }
    return MQ_OK;
}

/* Runs a node whose inputs are all constants, now; its outputs become constants. */
static int fold_node(struct compiler *cp, const struct mq_onnx_node *sn, int op, const int *in, int n_in)
{
    struct ox_graph *g = cp->g;
    struct ox_tensor *args[64] = {NULL}, outs[64];
    memset(outs, 0, sizeof(outs));
    if (n_in > 64 || sn->n_outputs > 64)
        return mq_error(MQ_EUNSUPPORTED, "'%s': node '%s' has more than 64 inputs or outputs", cp->path, sn->name);
    for (int k = 0; k < n_in; k++)
        args[k] = in[k] >= 0 ? &g->values[in[k]].c : NULL;
    struct ox_node tmp = {
        .op = op, .src = sn, .n_in = n_in, .in = (int *)in, .n_out = sn->n_outputs, .layer = -1};
    struct ox_ctx c = cp->fold;
    c.inputs_have_data = true;
    int rc = ox_run_node(&c, &tmp, args, outs);
    free(c.col);
    if (rc < 0)
        return rc;
    g->n_folded++;
    g->n_dequantized += strcmp(sn->op_type, "DequantizeLinear") == 0;
    for (int k = 0; k < sn->n_outputs; k++) {
        if (!sn->outputs[k][0]) {
            ox_tensor_release(&outs[k]);
            continue;
        }
        int id;
        if ((rc = new_value(cp, sn->outputs[k], &id)) < 0) {
            for (int j = k; j < sn->n_outputs; j++)
                ox_tensor_release(&outs[j]);
            return rc;
        }
        g->values[id].is_const = true;
        g->values[id].c = outs[k];
        if (strcmp(sn->op_type, "Constant") == 0)
            for (int a = 0; a < sn->n_attrs; a++)
                if (sn->attrs[a].t && strcmp(sn->attrs[a].name, "value") == 0)
                    g->values[id].elem = sn->attrs[a].t->elem;
        if (k == 0 && n_in >= 1 && in[0] >= 0 && strcmp(sn->op_type, "Identity") == 0) {
            int src = g->values[in[0]].copy_of >= 0 ? g->values[in[0]].copy_of : in[0];
            g->values[id].copy_of = src; /* the same tensor: one layer when it is a weight */
        }
    }
    return MQ_OK;
}

/* MatMulInteger with a constant B [K, N] (zero point: one, or one per column, axis 1), or
 * ConvInteger with a constant W [M, C/g, kH, kW] (zero point: one, or one per output
 * channel, axis 0), the zero point constant too: the weight minus its zero point becomes
 * an f32 constant the node reads instead (in[1]; in[3] dropped), so that it is a
 * quantizable layer as MatMul's or Conv's constant weight is, holding the integer
 * weights' values exactly. */
static int integer_weight(struct compiler *cp, const struct mq_onnx_node *sn, int *in, bool conv)
{
    struct ox_graph *g = cp->g;
    const struct ox_tensor *b = &g->values[in[1]].c,
                           *zp = sn->n_inputs > 3 && in[3] >= 0 ? &g->values[in[3]].c : NULL;
    int axis = conv ? 0 : 1;
    if (b->type != OX_I64 || (conv ? b->nd < 3 : b->nd != 2) ||
        (zp && (zp->type != OX_I64 || (zp->n != 1 && zp->n != b->dims[axis]))))
        return MQ_OK; /* the node's own checks refuse it at run time */
    int id, rc = alloc_value(cp, g->values[in[1]].name, &id);
    if (rc < 0)
        return rc;
    struct ox_value *v = &g->values[id];
    struct ox_ctx c = cp->fold;
    c.inputs_have_data = true;
    c.max_elems = 0; /* as large as the constant it replaces */
    if ((rc = ox_out(&c, &v->c, OX_F32, g->values[in[1]].c.nd, g->values[in[1]].c.dims)) < 0)
        return rc;
    v->is_const = true;
    b = &g->values[in[1]].c; /* (alloc_value may have moved the values) */
    zp = sn->n_inputs > 3 && in[3] >= 0 ? &g->values[in[3]].c : NULL;
    /* element i's zero point: (i / per) % len */
    const int64_t *bq = b->data, len = zp ? zp->n : 1, per = conv ? b->n / b->dims[0] : 1;
    for (int64_t i = 0; i < b->n; i++)
        ((float *)v->c.data)[i] =
            (float)(bq[i] - (zp ? ((const int64_t *)zp->data)[(i / per) % len] : 0));
    in[1] = id;
    if (sn->n_inputs > 3)
        in[3] = -1;
    g->n_dequantized++;
    return MQ_OK;
}

static int process_node(struct compiler *cp, const struct mq_onnx_node *sn, int depth)
{
    struct ox_graph *g = cp->g;
    int op = ox_op_find(sn->op_type);
    MQ_ASSERT(op >= 0); /* check_ops ran first */
    int in[64];
    if (sn->n_inputs > 64)
        return mq_error(MQ_EUNSUPPORTED, "'%s': node '%s' has %d inputs", cp->path, sn->name, sn->n_inputs);
    bool all_const = true;
    for (int k = 0; k < sn->n_inputs; k++) {
        in[k] = -1;
        if (!sn->inputs[k][0])
            continue;
        in[k] = smap_get(&cp->names, sn->inputs[k]);
        if (in[k] < 0)
            return mq_error(MQ_EFORMAT, "'%s': node '%s' (%s) reads '%s', which no node, initializer or graph input "
                            "provides", cp->path, sn->name, sn->op_type, sn->inputs[k]);
        all_const &= g->values[in[k]].is_const;
    }
    if (strcmp(sn->op_type, "If") == 0) {
        if (in[0] < 0)
            return mq_error(MQ_EFORMAT, "'%s': If node '%s' has no condition", cp->path, sn->name);
        const struct ox_value *cond = &g->values[in[0]];
        if (!cond->is_const)
            return mq_error(MQ_EUNSUPPORTED, "'%s': If node '%s' has a condition ('%s') known only at run time; mixq "
                            "runs If only when its model's task fixes the inputs it depends on", cp->path, sn->name,
                            cond->name);
        if (cond->c.n != 1)
            return mq_error(MQ_EFORMAT, "'%s': If node '%s' has a condition of %" PRId64 " elements", cp->path,
                            sn->name, cond->c.n);
        bool taken = cond->c.type == OX_F32 ? ((float *)cond->c.data)[0] != 0.0f : ((int64_t *)cond->c.data)[0] != 0;
        const struct mq_onnx_graph *branch = NULL;
        for (int a = 0; a < sn->n_attrs; a++)
            if (strcmp(sn->attrs[a].name, taken ? "then_branch" : "else_branch") == 0)
                branch = sn->attrs[a].g;
        if (!branch)
            return mq_error(MQ_EFORMAT, "'%s': If node '%s' has no %s graph", cp->path, sn->name,
                            taken ? "then_branch" : "else_branch");
        if (branch->n_outputs != sn->n_outputs)
            return mq_error(MQ_EFORMAT, "'%s': If node '%s' has %d outputs, its branch %d", cp->path, sn->name,
                            sn->n_outputs, branch->n_outputs);
        int rc = compile_nodes(cp, branch, depth + 1);
        if (rc < 0)
            return rc;
        for (int k = 0; k < sn->n_outputs; k++) {
            int id = smap_get(&cp->names, branch->outputs[k].name);
            if (id < 0)
                return mq_error(MQ_EFORMAT, "'%s': If node '%s': branch output '%s' is not produced", cp->path,
                                sn->name, branch->outputs[k].name);
            if (!sn->outputs[k][0])
                continue;
            if (smap_get(&cp->names, sn->outputs[k]) >= 0)
                return mq_error(MQ_EFORMAT, "'%s': value '%s' is defined twice", cp->path, sn->outputs[k]);
            if ((rc = smap_put(&cp->names, sn->outputs[k], id)) < 0) /* an alias of the branch's output */
                return rc;
        }
        g->n_ifs_folded++;
        return MQ_OK;
    }
    if (all_const)
        return fold_node(cp, sn, op, in, sn->n_inputs);
    bool conv_int = strcmp(sn->op_type, "ConvInteger") == 0;
    if ((conv_int || strcmp(sn->op_type, "MatMulInteger") == 0) && sn->n_inputs >= 2 &&
        in[1] >= 0 && g->values[in[1]].is_const &&
        (sn->n_inputs < 4 || in[3] < 0 || g->values[in[3]].is_const)) {
        int rc = integer_weight(cp, sn, in, conv_int);
        if (rc < 0)
            return rc;
    }
    return add_exec_node(cp, sn, op, in, sn->n_inputs);
}

/* Topological order of one graph's nodes (Kahn), then each processed in that order. */
static int compile_nodes(struct compiler *cp, const struct mq_onnx_graph *sg, int depth)
{
    int rc = MQ_OK, n = sg->n_nodes;
    if (depth > MQ_ONNX_MAX_DEPTH)
        return mq_error(MQ_EFORMAT, "'%s': If graphs nested too deep", cp->path);
    for (int i = 0; i < sg->n_inits; i++)
        if ((rc = add_const(cp, &sg->inits[i])) < 0)
            return rc;
    if (n == 0)
        return MQ_OK;
    struct smap producer = {0};
    int *indeg = calloc((size_t)n, sizeof(int)), *order = malloc((size_t)n * sizeof(int));
    int **users = calloc((size_t)n, sizeof(int *)), *n_users = calloc((size_t)n, sizeof(int)), *heap = NULL;
    struct dep_walk w = {.producer = &producer};
    if (!indeg || !order || !users || !n_users) {
        rc = mq_error(MQ_ENOMEM, "cannot sort %d nodes", n);
        goto done;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < sg->nodes[i].n_outputs; k++) {
            const char *o = sg->nodes[i].outputs[k];
            if (!o[0])
                continue;
            if (smap_get(&producer, o) >= 0) {
                rc = mq_error(MQ_EFORMAT, "'%s': value '%s' is produced by two nodes", cp->path, o);
                goto done;
            }
            if ((rc = smap_put(&producer, o, i)) < 0)
                goto done;
        }
    for (int i = 0; i < n; i++) {
        w.self = i;
        w.n = 0;
        for_each_read(&sg->nodes[i], dep_add, &w);
        if (w.oom) {
            rc = mq_error(MQ_ENOMEM, "cannot sort %d nodes", n);
            goto done;
        }
        for (int k = 0; k < w.n; k++) {
            int p = w.deps[k];
            int *u = realloc(users[p], (size_t)(n_users[p] + 1) * sizeof(int));
            if (!u) {
                rc = mq_error(MQ_ENOMEM, "cannot sort %d nodes", n);
                goto done;
            }
            users[p] = u;
            u[n_users[p]++] = i;
            indeg[i]++;
        }
        /* a node reading its own output is a cycle of one */
        for (int k = 0; k < sg->nodes[i].n_inputs; k++)
            if (sg->nodes[i].inputs[k][0] && smap_get(&producer, sg->nodes[i].inputs[k]) == i) {
                rc = mq_error(MQ_EFORMAT, "'%s': the graph has a cycle through node '%s' (%s)", cp->path,
                              sg->nodes[i].name, sg->nodes[i].op_type);
                goto done;
            }
    }
    /* Kahn's algorithm taking the ready node that comes first in the file (a min-heap),
     * so that layers and nodes keep the file's order wherever the graph allows */
    int n_heap = 0, tail = 0;
    heap = malloc((size_t)n * sizeof(int));
    if (!heap) {
        rc = mq_error(MQ_ENOMEM, "cannot sort %d nodes", n);
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (indeg[i] == 0)
            heap_push(heap, &n_heap, i);
    while (n_heap) {
        int i = heap_pop(heap, &n_heap);
        order[tail++] = i;
        for (int k = 0; k < n_users[i]; k++)
            if (--indeg[users[i][k]] == 0)
                heap_push(heap, &n_heap, users[i][k]);
    }
    if (tail < n) {
        for (int i = 0; i < n; i++)
            if (indeg[i] > 0) {
                rc = mq_error(MQ_EFORMAT, "'%s': the graph has a cycle through node '%s' (%s)", cp->path,
                              sg->nodes[i].name, sg->nodes[i].op_type);
                goto done;
            }
    }
    for (int i = 0; i < n; i++)
        if ((rc = process_node(cp, &sg->nodes[order[i]], depth)) < 0)
            goto done;
    rc = MQ_OK;
done:
    smap_free(&producer);
    if (users)
        for (int i = 0; i < n; i++)
            free(users[i]);
    free(users);
    free(n_users);
    free(indeg);
    free(order);
    free(heap);
    free(w.deps);
    return rc;
}

/* ---- layers, liveness ------------------------------------------------------------------- */

static int find_layers(struct compiler *cp)
{
    struct ox_graph *g = cp->g;
    int conv = ox_op_index_conv(), conv_t = ox_op_index_conv_t(), gemm = ox_op_index_gemm(),
        matmul = ox_op_index_matmul(), einsum = ox_op_index_einsum(), lstm = ox_op_index_lstm(),
        gru = ox_op_index_gru(), matmul_int = ox_op_index_matmul_int(),
        conv_int = ox_op_index_conv_int();
    g->layers = calloc((size_t)(g->n_nodes ? 2 * g->n_nodes : 1), sizeof(*g->layers)); /* RNNs have two */
    if (!g->layers)
        return mq_error(MQ_ENOMEM, "cannot allocate layers");
    for (int i = 0; i < g->n_nodes; i++) {
        struct ox_node *n = &g->nodes[i];
        bool rnn = n->op == lstm || n->op == gru; /* two layers: W (input 1), R (input 2) */
        if (n->op != conv && n->op != conv_t && n->op != gemm && n->op != matmul &&
            n->op != einsum && n->op != matmul_int && n->op != conv_int && !rnn)
            continue;
        if (n->n_in < 2 || n->in[1] < 0 || !g->values[n->in[1]].is_const ||
            (rnn && (n->in[2] < 0 || !g->values[n->in[2]].is_const)))
            continue; /* a weight computed at run time: the host multiplies it */
        const struct ox_tensor *w = &g->values[n->in[1]].c;
        if (((n->op == matmul || n->op == matmul_int) && (w->nd != 2 || w->type != OX_F32)) ||
            (n->op == conv_int && w->type != OX_F32) ||
            (n->op == einsum && !ox_einsum_layer_ok(n, w)))
            continue;
        for (int k = 1; k <= (rnn ? 2 : 1); k++) {
            w = &g->values[n->in[k]].c;
            struct ox_layer *l = &g->layers[g->n_layers];
            int rc = ox_weight_rows(n, n->op == conv_int ? conv : n->op, w, &l->kind, &l->groups,
                                    &l->K, &l->N, &l->w);
            if (rc == MQ_EUNSUPPORTED)
                return mq_error(MQ_EUNSUPPORTED, "'%s': node '%s' (%s) has a weight of rank %d that mixq cannot use",
                                cp->path, n->src->name, n->src->op_type, w->nd);
            if (rc < 0)
                return rc;
            int wv = g->values[n->in[k]].copy_of >= 0 ? g->values[n->in[k]].copy_of : n->in[k];
            /* a tensor read again is the layer it already is; the same tensor read with
             * another row layout (Gemm transB 0 and 1) has other rows, so it stays a layer of
             * its own. An RNN's W and R stay its own consecutive pair. */
            int same = -1;
            for (int j = 0; j < g->n_layers && same < 0 && !rnn; j++) {
                const struct ox_layer *o = &g->layers[j];
                if (o->weight == wv && o->input == 1 && o->kind == l->kind && o->groups == l->groups && o->K == l->K &&
                    o->N == l->N && memcmp(o->w, l->w, (size_t)(l->groups * l->N * l->K) * sizeof(float)) == 0)
                    same = j;
            }
            if (same >= 0) {
                free(l->w);
                memset(l, 0, sizeof(*l));
                g->layers[same].n_nodes++;
                n->layer = same;
                continue;
            }
            l->node = i;
            l->weight = wv;
            l->n_nodes = 1;
            l->input = k;
            if (k == 1)
                n->layer = g->n_layers;
            g->n_layers++;
        }
    }
    return MQ_OK;
}

/* Whether input k of node i is one of its layers' weights: its layer's (its own, or one it
 * shares with the nodes before it), or an RNN's second (R, the next layer, its own). */
static bool is_layer_weight(const struct ox_graph *g, int i, int k)
{
    int first = g->nodes[i].layer;
    if (first < 0 || first >= g->n_layers)
        return false;
    if (g->layers[first].input == k)
        return true;
    for (int l = first + 1; l < g->n_layers && g->layers[l].node == i; l++)
        if (g->layers[l].input == k)
            return true;
    return false;
}

static void liveness(struct ox_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0)
                g->values[g->nodes[i].in[k]].last_use = i;
    for (int i = 0; i < g->n_outputs; i++)
        g->values[g->outputs[i]].is_output = true;
    /* constants other than layer weights: what the host keeps at run time; the data of
     * the others (layer weights, now rows in g->layers; an untaken If branch's
     * initializers) are dropped, their shapes kept */
    bool *counted = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof(bool));
    if (!counted)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v < 0 || !g->values[v].is_const || counted[v] || is_layer_weight(g, i, k))
                continue;
            counted[v] = true;
            g->const_bytes += ox_tensor_bytes(&g->values[v].c);
        }
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].is_const && !counted[v] && !g->values[v].is_output && !g->values[v].c.borrowed) {
            free(g->values[v].c.data);
            g->values[v].c.data = NULL;
        }
    free(counted);
}

int ox_graph_compile(struct mq_onnx_file *f, const struct onnx_task *task, struct ox_graph **out)
{
    *out = NULL;
    struct ox_graph *g = calloc(1, sizeof(*g));
    if (!g)
        return mq_error(MQ_ENOMEM, "cannot allocate a graph");
    struct compiler cp = {.g = g, .path = f->path};
    cp.fold.g = g;
    cp.fold.max_elems = (int64_t)1 << 24; /* folding makes weights, not gigabytes */
    g->file = f;
    g->task = task;
    const struct mq_onnx_graph *sg = f->graph;
    int rc;
    g->opset = mq_onnx_opset(f);
    if (g->opset < 7) {
        rc = mq_error(MQ_EUNSUPPORTED, "'%s': %s (mixq interprets opsets 7 and later)", f->path,
                      g->opset ? "default-domain opset older than 7" : "no default-domain opset is imported");
        goto fail;
    }
    if ((rc = scan_ops(&cp, sg)) < 0)
        goto fail;
    char bad[1024] = "";
    int n_bad = 0;
    if ((rc = check_ops(&cp, sg, bad, sizeof(bad), &n_bad)) < 0)
        goto fail;
    if (n_bad) {
        rc = mq_error(MQ_EUNSUPPORTED, "'%s': %d op%s that mixq does not interpret: %s", f->path, n_bad,
                      n_bad > 1 ? "s" : "", bad);
        goto fail;
    }
    /* inputs: initializers listed as inputs (IR < 4 style) are constants; inputs the
     * task binds become constants */
    g->inputs = calloc((size_t)(sg->n_inputs ? sg->n_inputs : 1), sizeof(*g->inputs));
    if (!g->inputs) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate inputs");
        goto fail;
    }
    for (int i = 0; i < sg->n_inits; i++)
        if ((rc = add_const(&cp, &sg->inits[i])) < 0)
            goto fail;
    for (int i = 0; i < sg->n_inputs; i++) {
        const struct mq_onnx_value_info *vi = &sg->inputs[i];
        if (smap_get(&cp.names, vi->name) >= 0)
            continue; /* an initializer's default */
        int id;
        if ((rc = new_value(&cp, vi->name, &id)) < 0)
            goto fail;
        struct ox_input *in = &g->inputs[g->n_inputs];
        in->value = id;
        in->vi = vi;
        int64_t bound;
        if (task && onnx_task_bound_value(task, vi->name, &bound) == MQ_OK) {
            struct ox_value *v = &g->values[id];
            int64_t dims[MQ_ONNX_MAX_DIMS];
            for (int d = 0; d < vi->n_dims; d++)
                dims[d] = 1;
            struct ox_ctx c = cp.fold;
            c.inputs_have_data = true;
            enum ox_type t = vi->elem == MQ_ONNX_FLOAT || vi->elem == MQ_ONNX_DOUBLE ? OX_F32 : OX_I64;
            if ((rc = ox_out(&c, &v->c, t, vi->n_dims, dims)) < 0)
                goto fail;
            if (t == OX_F32)
                ((float *)v->c.data)[0] = (float)bound;
            else
                ((int64_t *)v->c.data)[0] = bound;
            v->is_const = true;
            in->bound = true;
            size_t len = strlen(g->bound_desc);
            snprintf(g->bound_desc + len, sizeof(g->bound_desc) - len, "%s%s = %" PRId64, len ? ", " : "", vi->name,
                     bound);
        } else {
            g->values[id].input = g->n_inputs;
            g->values[id].elem = vi->elem;
        }
        g->n_inputs++;
    }
    /* the main graph's nodes (its initializers are in already) */
    struct mq_onnx_graph main_nodes = *sg;
    main_nodes.n_inits = 0;
    if ((rc = compile_nodes(&cp, &main_nodes, 0)) < 0)
        goto fail;
    g->outputs = calloc((size_t)(sg->n_outputs ? sg->n_outputs : 1), sizeof(int));
    g->output_vi = calloc((size_t)(sg->n_outputs ? sg->n_outputs : 1), sizeof(*g->output_vi));
    if (!g->outputs || !g->output_vi) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate outputs");
        goto fail;
    }
    if (sg->n_outputs == 0) {
        rc = mq_error(MQ_EFORMAT, "'%s': the graph has no outputs", f->path);
        goto fail;
    }
    for (int i = 0; i < sg->n_outputs; i++) {
        int id = smap_get(&cp.names, sg->outputs[i].name);
        if (id < 0) {
            rc = mq_error(MQ_EFORMAT, "'%s': graph output '%s' is produced by nothing", f->path, sg->outputs[i].name);
            goto fail;
        }
        g->outputs[g->n_outputs] = id;
        g->output_vi[g->n_outputs++] = &sg->outputs[i];
    }
    if ((rc = find_layers(&cp)) < 0)
        goto fail;
    liveness(g);
    smap_free(&cp.names);
    free(cp.fold.col);
    *out = g;
    return MQ_OK;
fail:
    smap_free(&cp.names);
    free(cp.fold.col);
    ox_graph_free(g);
    return rc;
}

void ox_graph_free(struct ox_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++)
        ox_tensor_release(&g->values[i].c);
    for (int i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].in);
        free(g->nodes[i].out);
    }
    for (int i = 0; i < g->n_layers; i++)
        free(g->layers[i].w);
    free(g->layers);
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->output_vi);
    free(g->op_counts);
    free(g);
}
