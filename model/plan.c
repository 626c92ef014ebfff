/* model/plan.c - per-layer format plans. */
#include "model/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/status.h"

int mq_plan_uniform(const struct mq_model *m, enum mq_dtype fmt, struct mq_plan **out)
{
    *out = NULL;
    struct mq_plan *p = calloc(1, sizeof(*p));
    if (!p || !(p->fmt = calloc((size_t)m->n_layers + 1, sizeof(*p->fmt)))) {
        free(p);
        return mq_error(MQ_ENOMEM, "cannot allocate a plan of %d layers", m->n_layers);
    }
    p->n_layers = m->n_layers;
    p->ftype = -1;
    /* a layer whose rows are not whole blocks of fmt falls back as llama-quantize does (a
     * 576-wide row in q4_k: q5_0; an ONNX depthwise conv with K = 9: f16), so that a
     * uniform plan is the file `llama-quantize --pure` writes */
    int kept = 0;
    enum mq_dtype fallback = MQ_DTYPE_F32;
    for (int i = 0; i < m->n_layers; i++) {
        p->fmt[i] = fmt;
        if (mq_layer_allows(&m->layers[i], fmt) || !mq_dtype_get(fmt)->is_plan_format)
            continue;
        p->fmt[i] = fallback = mq_dtype_fallback_for_row(fmt, m->layers[i].n_in);
        kept++;
    }
    if (kept)
        snprintf(p->label, sizeof(p->label), "%s (%s in %d layer%s whose rows are not whole blocks)",
                 mq_dtype_name(fmt), mq_dtype_name(fallback), kept, kept > 1 ? "s" : "");
    else
        snprintf(p->label, sizeof(p->label), "%s", mq_dtype_name(fmt));
    *out = p;
    return MQ_OK;
}

int mq_plan_source(const struct mq_model *m, struct mq_plan **out)
{
    int rc = mq_plan_uniform(m, MQ_DTYPE_F32, out);
    if (rc < 0)
        return rc;
    for (int i = 0; i < m->n_layers; i++) {
        enum mq_dtype t = m->layers[i].src_type;
        if (!mq_dtype_get(t)->is_plan_format) {
            mq_plan_free(*out);
            *out = NULL;
            return mq_error(MQ_EUNSUPPORTED, "layer '%s' is stored as %s, which mixq cannot run as it is",
                            m->layers[i].name, mq_dtype_name(t));
        }
        (*out)->fmt[i] = t;
    }
    char what[32];
    mq_plan_describe(*out, what, sizeof(what));
    snprintf((*out)->label, sizeof((*out)->label), "source (%s)", what);
    return MQ_OK;
}

int mq_plan_reference(const struct mq_model *m, const struct be_backend *be, struct mq_plan **out)
{
    int rc = mq_plan_uniform(m, MQ_DTYPE_F32, out);
    if (rc < 0)
        return rc;
    int widened = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const struct mq_layer *ly = &m->layers[i];
        enum mq_dtype t = ly->src_type;
        if (mq_dtype_get(t)->is_plan_format && mq_layer_allows(ly, t) && be_supports(be, BE_OP_MATMUL, t) &&
            be_supports(be, BE_OP_GET_ROWS, t))
            (*out)->fmt[i] = t;
        else
            widened += t != MQ_DTYPE_F32;
    }
    char what[32];
    mq_plan_describe(*out, what, sizeof(what));
    if (widened)
        snprintf((*out)->label, sizeof((*out)->label), "reference (%s; f32 in %d layer%s %s cannot run as stored)",
                 what, widened, widened > 1 ? "s" : "", be_name(be));
    else
        snprintf((*out)->label, sizeof((*out)->label), "reference (%s)", what);
    return MQ_OK;
}

uint64_t mq_plan_hash(const struct mq_plan *p)
{
    uint64_t h = 0x706c616e68617368ULL;
    for (int i = 0; i < p->n_layers; i++) {
        const char *n = mq_dtype_name(p->fmt[i]);
        h = mq_hash64(n, strlen(n) + 1, h);
    }
    return h;
}

int mq_plan_clone(const struct mq_plan *src, struct mq_plan **out)
{
    *out = NULL;
    struct mq_plan *p = calloc(1, sizeof(*p));
    if (!p || !(p->fmt = calloc((size_t)src->n_layers + 1, sizeof(*p->fmt)))) {
        free(p);
        return mq_error(MQ_ENOMEM, "cannot allocate a plan of %d layers", src->n_layers);
    }
    p->n_layers = src->n_layers;
    memcpy(p->fmt, src->fmt, (size_t)src->n_layers * sizeof(*p->fmt));
    memcpy(p->label, src->label, sizeof(p->label));
    p->ftype = src->ftype;
    *out = p;
    return MQ_OK;
}

void mq_plan_free(struct mq_plan *p)
{
    if (!p)
        return;
    free(p->fmt);
    free(p);
}

int mq_plan_check(const struct mq_model *m, const struct mq_plan *p)
{
    if (p->n_layers != m->n_layers)
        return mq_error(MQ_EINVAL, "plan has %d layers, model '%s' has %d", p->n_layers, m->path,
                        m->n_layers);
    for (int i = 0; i < p->n_layers; i++) {
        const struct mq_dtype_traits *t = mq_dtype_get(p->fmt[i]);
        if (!t->is_plan_format || !t->from_f32)
            return mq_error(MQ_EINVAL, "layer '%s': '%s' is not a format a plan can choose",
                            m->layers[i].name, t->name);
        if (!mq_layer_allows(&m->layers[i], p->fmt[i]))
            return mq_error(MQ_EINVAL, "layer '%s': rows of %lld are not whole %s blocks of %lld",
                            m->layers[i].name, (long long)m->layers[i].n_in, t->name,
                            (long long)t->block_elems);
    }
    return MQ_OK;
}

uint64_t mq_plan_weight_bytes(const struct mq_model *m, const struct mq_plan *p)
{
    uint64_t total = 0;
    for (int i = 0; i < p->n_layers; i++) {
        const struct mq_dtype_traits *t = mq_dtype_get(p->fmt[i]);
        uint64_t blocks = (uint64_t)(m->layers[i].n_in / t->block_elems) * (uint64_t)m->layers[i].n_out;
        total += blocks * t->block_bytes;
    }
    return total;
}

void mq_plan_describe(const struct mq_plan *p, char *buf, size_t size)
{
    for (int i = 1; i < p->n_layers; i++) {
        if (p->fmt[i] != p->fmt[0]) {
            snprintf(buf, size, "mixed");
            return;
        }
    }
    snprintf(buf, size, "%s", p->n_layers ? mq_dtype_name(p->fmt[0]) : "empty");
}

int mq_plan_to_string(const struct mq_plan *p, char **out)
{
    size_t cap = (size_t)p->n_layers * 6 + 1, used = 0;
    char *s = malloc(cap);
    if (!s)
        return mq_error(MQ_ENOMEM, "cannot write a plan of %d layers", p->n_layers);
    s[0] = '\0';
    for (int i = 0; i < p->n_layers; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s%s", i ? "," : "", mq_dtype_name(p->fmt[i]));
    *out = s;
    return MQ_OK;
}

int mq_plan_from_string(const struct mq_model *m, const char *text, struct mq_plan **out)
{
    *out = NULL;
    enum mq_dtype t;
    if (!strchr(text, ',') && mq_dtype_from_name(text, &t) == MQ_OK) {
        int rc = mq_plan_uniform(m, t, out);
        return rc < 0 ? rc : mq_plan_check(m, *out);
    }
    struct mq_plan *p;
    int rc = mq_plan_uniform(m, MQ_DTYPE_F32, &p);
    if (rc < 0)
        return rc;
    const char *s = text;
    int i = 0;
    while (rc == MQ_OK && *s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char name[16];
        if (n == 0 || n >= sizeof(name) || i >= m->n_layers) {
            rc = mq_error(MQ_EINVAL, "plan text: entry %d is empty, too long, or beyond the model's %d layers", i,
                          m->n_layers);
            break;
        }
        memcpy(name, s, n);
        name[n] = '\0';
        if (mq_dtype_from_name(name, &t) < 0) {
            rc = mq_error(MQ_EINVAL, "plan text: '%s' is not a format", name);
            break;
        }
        p->fmt[i++] = t;
        s = e ? e + 1 : s + n;
    }
    if (rc == MQ_OK && i != m->n_layers)
        rc = mq_error(MQ_EINVAL, "plan text has %d formats, the model has %d layers", i, m->n_layers);
    if (rc == MQ_OK)
        rc = mq_plan_check(m, p);
    if (rc < 0) {
        mq_plan_free(p);
        return rc;
    }
    snprintf(p->label, sizeof(p->label), "mixed");
    mq_plan_describe(p, p->label, sizeof(p->label));
    *out = p;
    return MQ_OK;
}
