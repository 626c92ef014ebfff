/* tests/fuzz/fuzz_onnx.c - libFuzzer target for the ONNX reader, graph compiler and shape
 * pass, and for inputs that start as a .npy does, the input-array reader.
 *
 *     make build/fuzz/fuzz-onnx && make fuzz FUZZ_SECONDS=60
 *
 * Each input is read from memory; when it parses, every name, attribute and tensor is
 * touched (tensors decoded in full, so AddressSanitizer sees any span the reader handed
 * out that does not lie inside the input); then it is compiled as a model (constant
 * folding runs ops on the file's constants), described, and priced at batch 2 (a shape
 * pass through every node). Rejected inputs print one error line each; run with
 * -close_fd_mask=2 to silence them. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/status.h"
#include "model/plan.h"
#include "model/runner.h"
#include "model/workload.h"
#include "onnx/onnx.h"
#include "onnx/onnx_inputs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* No backend is opened here: the loader and the shape pass need none, so the fuzzer links
 * gguf/, tokenizer/, model/, llm/, onnx/ and the dispatcher without backends/ (whose SIMD
 * kernels need gcc's builtins). */
int be_registry_count(void) { return 0; }
const struct be_ops *be_registry_get(int i)
{
    (void)i;
    return NULL;
}
const struct be_ops *be_registry_find(const char *name)
{
    (void)name;
    return NULL;
}

static volatile uint64_t sink;

static void touch_str(const char *s)
{
    if (!s)
        abort(); /* the reader promises NUL-terminated strings, never NULL */
    sink += strlen(s);
}

static void touch_span(struct mq_onnx_span s, const uint8_t *lo, size_t size)
{
    if (s.n && ((uintptr_t)s.p < (uintptr_t)lo || (uintptr_t)s.p - (uintptr_t)lo > size ||
                s.n > size - ((uintptr_t)s.p - (uintptr_t)lo)))
        abort();
    for (size_t i = 0; i < s.n; i++)
        sink += s.p[i];
}

static void touch_tensor(const struct mq_onnx_tensor *t, const uint8_t *lo, size_t size)
{
    touch_str(t->name);
    touch_span(t->raw, lo, size);
    touch_span(t->msg, lo, size);
    if (t->n_elems < 0 || t->n_dims < 0 || t->n_dims > MQ_ONNX_MAX_DIMS || (uint64_t)t->n_elems > 8 * (uint64_t)size + 8)
        abort(); /* counts are bounded by the bytes present */
    if (t->n_elems == 0)
        return;
    float *f = malloc((size_t)t->n_elems * sizeof(float));
    int64_t *i = malloc((size_t)t->n_elems * sizeof(int64_t));
    if (f && mq_onnx_tensor_f32(t, f) == MQ_OK)
        sink += (uint64_t)(f[0] > 0.0f) + (uint64_t)(f[t->n_elems - 1] > 0.0f);
    if (i && mq_onnx_tensor_i64(t, i) == MQ_OK)
        sink += (uint64_t)i[0] + (uint64_t)i[t->n_elems - 1];
    free(f);
    free(i);
}

static void touch_graph(const struct mq_onnx_graph *g, const uint8_t *lo, size_t size, int depth)
{
    if (depth > MQ_ONNX_MAX_DEPTH)
        abort();
    touch_str(g->name ? g->name : "");
    for (int i = 0; i < g->n_inits; i++)
        touch_tensor(&g->inits[i], lo, size);
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mq_onnx_node *n = &g->nodes[i];
        touch_str(n->name);
        touch_str(n->op_type);
        touch_str(n->domain);
        for (int k = 0; k < n->n_inputs; k++)
            touch_str(n->inputs[k]);
        for (int k = 0; k < n->n_outputs; k++)
            touch_str(n->outputs[k]);
        for (int k = 0; k < n->n_attrs; k++) {
            const struct mq_onnx_attr *a = &n->attrs[k];
            touch_str(a->name);
            touch_span(a->s, lo, size);
            for (int64_t j = 0; j < a->n_ints; j++)
                sink += (uint64_t)a->ints[j];
            for (int64_t j = 0; j < a->n_floats; j++)
                sink += (uint64_t)(a->floats[j] > 0.0f);
            if (a->t)
                touch_tensor(a->t, lo, size);
            if (a->g)
                touch_graph(a->g, lo, size, depth + 1);
        }
    }
    const struct mq_onnx_value_info *lists[2] = {g->inputs, g->outputs};
    int counts[2] = {g->n_inputs, g->n_outputs};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < counts[l]; i++) {
            touch_str(lists[l][i].name);
            if (lists[l][i].n_dims < 0 || lists[l][i].n_dims > MQ_ONNX_MAX_DIMS)
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mq_onnx_file *f;
    if (size >= 6 && !memcmp(data, "\x93NUMPY", 6)) { /* an input array (--inputs) */
        struct ox_array a;
        if (ox_npy_parse(data, size, "fuzz.npy", &a) == MQ_OK && a.n > 0)
            sink += a.is_float ? (uint64_t)(((float *)a.data)[a.n - 1] > 0)
                               : (uint64_t)((int64_t *)a.data)[a.n - 1];
        free(a.data);
        return 0;
    }
    if (mq_onnx_open_memory(data, size, "fuzz.onnx", &f) == MQ_OK) {
        for (int i = 0; i < f->n_meta; i++) {
            touch_str(f->meta[i].key);
            touch_str(f->meta[i].value);
        }
        for (int i = 0; i < f->n_opsets; i++)
            touch_str(f->opsets[i].domain);
        touch_graph(f->graph, data, size, 0);
        mq_onnx_close(f);
    }
    struct mq_model *m;
    if (mq_onnx_model_from_memory(data, size, "fuzz.onnx", &m) < 0)
        return 0;
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        m->runner->describe(m, null);
        fclose(null);
    }
    struct mq_workload w;
    struct mq_plan *p;
    struct mq_memory mem;
    if (mq_workload_parse("infer:2", &w) == MQ_OK && mq_plan_uniform(m, MQ_DTYPE_Q8_0, &p) == MQ_OK) {
        sink += (uint64_t)m->runner->memory(m, p, &w, &mem);
        for (int l = 0; l < m->n_layers && l < 4; l++) {
            int64_t M[4], calls[4];
            sink += (uint64_t)m->runner->layer_work(m, l, &w, M, calls);
        }
        mq_plan_free(p);
    }
    mq_model_free(m);
    return 0;
}
