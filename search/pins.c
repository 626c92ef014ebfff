/* search/pins.c - fixed formats for named or patterned layers. */
#include "search/pins.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "core/status.h"

int srch_pins_add(struct srch_pins *p, const char *layer, enum mq_dtype fmt, const char *from)
{
    if (p->n >= SRCH_MAX_PINS)
        return mq_error(MQ_EINVAL, "%s: more than %d pins", from, SRCH_MAX_PINS);
    if (!layer[0] || strlen(layer) > MQ_GGUF_MAX_NAME)
        return mq_error(MQ_EINVAL, "%s: pin layer name '%.40s' is empty or too long", from, layer);
    if (!mq_dtype_get(fmt)->is_plan_format)
        return mq_error(MQ_EINVAL, "%s: '%s' is not a format a plan can choose", from, mq_dtype_name(fmt));
    struct srch_pin *q = &p->pin[p->n++];
    snprintf(q->layer, sizeof(q->layer), "%s", layer);
    q->fmt = fmt;
    snprintf(q->from, sizeof(q->from), "%s", from);
    return MQ_OK;
}

int srch_pins_parse(struct srch_pins *p, const char *text, const char *from)
{
    const char *eq = strrchr(text, '=');
    if (!eq || eq == text || !eq[1])
        return mq_error(MQ_EINVAL, "%s '%s': want LAYER=FORMAT (e.g. output.weight=q8_0)", from, text);
    char layer[MQ_GGUF_MAX_NAME + 1];
    size_t n = (size_t)(eq - text);
    if (n > MQ_GGUF_MAX_NAME)
        return mq_error(MQ_EINVAL, "%s: layer name of %zu bytes is too long", from, n);
    memcpy(layer, text, n);
    layer[n] = '\0';
    enum mq_dtype fmt;
    if (mq_dtype_from_name(eq + 1, &fmt) < 0 || !mq_dtype_get(fmt)->is_plan_format) {
        char known[128];
        mq_dtype_list_plan_formats(known, sizeof(known));
        return mq_error(MQ_EINVAL, "%s '%s': '%s' is not a format (%s)", from, text, eq + 1, known);
    }
    return srch_pins_add(p, layer, fmt, from);
}

int srch_pins_apply(const struct srch_pins *p, const struct mq_model *m, uint8_t *pinned)
{
    for (int l = 0; l < m->n_layers; l++)
        pinned[l] = MQ_DTYPE_COUNT;
    for (int i = 0; i < p->n; i++) {
        const struct srch_pin *q = &p->pin[i];
        int hits = 0;
        for (int l = 0; l < m->n_layers; l++) {
            const char *name = m->layers[l].name;
            if (strcmp(q->layer, name) != 0 && fnmatch(q->layer, name, 0) != 0)
                continue;
            if (!mq_layer_allows(&m->layers[l], q->fmt))
                return mq_error(MQ_EINVAL, "%s: pin '%s' gives layer '%s' the format %s, which its rows of %lld cannot take",
                                q->from, q->layer, name, mq_dtype_name(q->fmt), (long long)m->layers[l].n_in);
            pinned[l] = (uint8_t)q->fmt;
            hits++;
        }
        if (!hits)
            return mq_error(MQ_EINVAL, "%s: pin '%s' matches no quantizable layer of '%s'", q->from, q->layer, m->path);
    }
    return MQ_OK;
}
