/* model/plan.c - per-layer format plans. */
#include "model/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    for (int i = 0; i < m->n_layers; i++)
        p->fmt[i] = fmt;
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
