/* model/quantize.c - a llama model written as GGUF with a plan applied. Contract in
 * quantize.h. */
#include "model/quantize.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

#define GGML_QNT_VERSION 2 /* ggml's quantization version, which llama-quantize writes */

int mq_quantize_ftype_of(enum mq_dtype t)
{
    return (unsigned)t < MQ_DTYPE_COUNT && mq_dtype_get(t)->is_plan_format ? mq_dtype_get(t)->llama_ftype : -1;
}

enum mq_dtype mq_quantize_file_type(const struct mq_plan *p)
{
    int count[MQ_DTYPE_COUNT] = {0}, best = 0;
    for (int i = 0; i < p->n_layers; i++)
        count[p->fmt[i]]++;
    for (int t = 1; t < MQ_DTYPE_COUNT; t++)
        if (count[t] > count[best])
            best = t;
    return (enum mq_dtype)best;
}

/* One layer's rows, produced for the writer at write time. */
struct quant_tensor {
    const struct mq_layer *ly;
    enum mq_dtype fmt;
    size_t src_row_bytes, dst_row_bytes;
};

static int quant_rows(void *ctx, const char *name, int64_t row0, int64_t n_rows, void *dst)
{
    const struct quant_tensor *q = ctx;
    const char *src = (const char *)q->ly->src_data + (size_t)row0 * q->src_row_bytes;
    const void *data;
    void *buf;
    /* the quantizers work block by block along rows, so converting a chunk of rows gives
     * the bytes converting the whole tensor gives */
    int rc = mq_convert_weights(name, q->ly->src_type, src, q->ly->n_in, n_rows, q->fmt, q->ly->imp, q->ly->gram_u,
                                &data, &buf);
    if (rc < 0)
        return rc;
    memcpy(dst, data, (size_t)n_rows * q->dst_row_bytes);
    free(buf);
    return MQ_OK;
}

static int copy_metadata(const struct mq_gguf *g, const struct mq_plan *p, struct mq_gguf_writer *w)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        int rc = mq_gguf_writer_set_value(w, &g->kv[i].key, &g->kv[i].value);
        if (rc < 0)
            return rc;
    }
    /* a preset's own llama_ftype (Q3_K_S, not the "mostly q3_k" that is Q3_K_M) */
    int ftype = p->ftype >= 0 ? p->ftype : mq_quantize_ftype_of(mq_quantize_file_type(p));
    int rc = mq_gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype);
    if (rc == MQ_OK)
        rc = mq_gguf_writer_set_u32(w, "general.quantization_version", GGML_QNT_VERSION);
    return rc;
}

/* The writer of m with plan p: metadata, meta's keys, every tensor (quantizable layers as
 * row callbacks over qt[]). *w, qt and seen are the caller's to free, also on error. */
static int build_writer(const struct mq_model *m, const struct mq_plan *p, mq_quantize_meta_fn meta, void *meta_ctx,
                        const char *path, struct mq_gguf_writer **wp, struct quant_tensor **qtp,
                        struct mq_quantize_result *r)
{
    *wp = NULL;
    *qtp = NULL;
    if (m->kind != MQ_MODEL_LLAMA || !m->gguf)
        return mq_error(MQ_EUNSUPPORTED,
                        "'%s' is not a GGUF llama model: mixq quantize writes GGUF files (for ONNX models, "
                        "'mixq export --to onnxruntime' or '--to trtexec' give the recipe)",
                        m->path);
    int rc = mq_plan_check(m, p);
    if (rc < 0)
        return rc;
    for (int i = 0; i < p->n_layers; i++)
        if (mq_quantize_ftype_of(p->fmt[i]) < 0)
            return mq_error(MQ_EUNSUPPORTED, "layer '%s': mixq does not write %s tensors", m->layers[i].name,
                            mq_dtype_name(p->fmt[i]));
    const struct mq_gguf *g = m->gguf;
    struct mq_gguf_writer *w = NULL;
    struct quant_tensor *qt = calloc((size_t)m->n_layers + 1, sizeof(*qt));
    bool *seen = calloc((size_t)m->n_layers + 1, sizeof(*seen));
    *qtp = qt;
    if (!qt || !seen) {
        rc = mq_error(MQ_ENOMEM, "cannot write '%s'", path);
        goto done;
    }
    if (!(w = mq_gguf_writer_new())) {
        rc = MQ_ENOMEM;
        goto done;
    }
    *wp = w;
    if ((rc = copy_metadata(g, p, w)) < 0)
        goto done;
    if (meta && (rc = meta(meta_ctx, w)) < 0)
        goto done;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct mq_gguf_tensor *t = &g->tensors[i];
        int li = mq_model_find_layer(m, t->name);
        r->n_tensors++;
        if (li < 0) {
            if ((rc = mq_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data)) < 0)
                goto done;
            continue;
        }
        const struct mq_layer *ly = &m->layers[li];
        if (t->ne[0] != ly->n_in || t->n_elems != ly->n_in * ly->n_out || t->type != ly->src_type) {
            rc = mq_error(MQ_EINVAL, "tensor '%s' [%lld x %lld] does not match its layer [%lld x %lld]", t->name,
                          (long long)t->ne[0], (long long)(t->n_elems / (t->ne[0] ? t->ne[0] : 1)),
                          (long long)ly->n_in, (long long)ly->n_out);
            goto done;
        }
        struct quant_tensor *q = &qt[li];
        q->ly = ly;
        q->fmt = p->fmt[li];
        if ((rc = mq_dtype_row_bytes(ly->src_type, ly->n_in, &q->src_row_bytes)) < 0 ||
            (rc = mq_dtype_row_bytes(q->fmt, ly->n_in, &q->dst_row_bytes)) < 0)
            goto done;
        if ((rc = mq_gguf_writer_add_tensor_fn(w, t->name, q->fmt, t->n_dims, t->ne, quant_rows, q)) < 0)
            goto done;
        seen[li] = true;
        r->weight_bytes += q->dst_row_bytes * (uint64_t)ly->n_out;
        r->n_converted += q->fmt != ly->src_type;
    }
    for (int i = 0; i < m->n_layers; i++)
        if (!seen[i]) {
            rc = mq_error(MQ_EINTERNAL, "layer '%s' has no tensor in '%s'", m->layers[i].name, m->path);
            goto done;
        }
    rc = mq_gguf_writer_file_size(w, &r->file_bytes);
done:
    free(seen);
    return rc;
}

int mq_quantize_file_bytes(const struct mq_model *m, const struct mq_plan *p, mq_quantize_meta_fn meta,
                           void *meta_ctx, uint64_t *bytes)
{
    struct mq_gguf_writer *w;
    struct quant_tensor *qt;
    struct mq_quantize_result r = {0};
    int rc = build_writer(m, p, meta, meta_ctx, "(size only)", &w, &qt, &r);
    if (rc == MQ_OK)
        *bytes = r.file_bytes;
    mq_gguf_writer_free(w);
    free(qt);
    return rc;
}

int mq_quantize_write(const struct mq_model *m, const struct mq_plan *p, mq_quantize_meta_fn meta, void *meta_ctx,
                      const char *path, struct mq_quantize_result *res)
{
    struct mq_gguf_writer *w;
    struct quant_tensor *qt;
    struct mq_quantize_result r = {0};
    int rc = build_writer(m, p, meta, meta_ctx, path, &w, &qt, &r);
    if (rc == MQ_OK)
        rc = mq_gguf_writer_write(w, path);
    if (rc == MQ_OK && res)
        *res = r;
    mq_gguf_writer_free(w);
    free(qt);
    return rc;
}
