/* model/shapes.c - parsing --shapes (model/shapes.h). */
#include "model/shapes.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

void mq_input_shapes_release(struct mq_input_shapes *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        free(s->v[i].name);
    free(s->v);
    free(s->canon);
    memset(s, 0, sizeof(*s));
}

const struct mq_input_shape *mq_input_shapes_find(const struct mq_input_shapes *s, const char *name)
{
    if (!s)
        return NULL;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

/* "1x3x640x640" (len bytes at p) into sh's dims; the reason in why otherwise. */
static int parse_dims(const char *p, size_t len, struct mq_input_shape *sh, char *why, size_t why_size)
{
    const char *end = p + len;
    if (len == 0) {
        snprintf(why, why_size, "input '%.64s' has no dimensions (want NAME:D0xD1x...)", sh->name);
        return MQ_EINVAL;
    }
    while (p < end) {
        const char *x = memchr(p, 'x', (size_t)(end - p));
        const char *stop = x ? x : end;
        if (sh->n_dims == MQ_INPUT_MAX_DIMS) {
            snprintf(why, why_size, "input '%.64s' has more than %d dimensions", sh->name, MQ_INPUT_MAX_DIMS);
            return MQ_EINVAL;
        }
        int64_t v = 0;
        bool ok = stop > p;
        for (const char *q = p; ok && q < stop; q++) {
            ok = *q >= '0' && *q <= '9';
            if (ok) {
                v = v * 10 + (*q - '0');
                ok = v <= MQ_INPUT_MAX_DIM;
            }
        }
        if (!ok || v == 0) {
            snprintf(why, why_size, "input '%.64s': dimension %d is '%.*s', want an integer in 1..%lld", sh->name,
                     sh->n_dims, (int)(stop - p > 32 ? 32 : stop - p), p, (long long)MQ_INPUT_MAX_DIM);
            return MQ_EINVAL;
        }
        sh->dims[sh->n_dims++] = v;
        p = x ? x + 1 : end;
        if (x && p == end) {
            snprintf(why, why_size, "input '%.64s': the dimensions end with 'x'", sh->name);
            return MQ_EINVAL;
        }
    }
    return MQ_OK;
}

int mq_input_shapes_parse(const char *s, struct mq_input_shapes *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    int rc = MQ_EINVAL, cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    out->v = calloc((size_t)cap, sizeof(*out->v));
    size_t canon_cap = strlen(s) + 1 + (size_t)cap * MQ_INPUT_MAX_DIMS * 12;
    out->canon = malloc(canon_cap);
    if (!out->v || !out->canon) {
        snprintf(why, why_size, "cannot allocate %d shapes", cap);
        rc = MQ_ENOMEM;
        goto fail;
    }
    out->canon[0] = '\0';
    size_t canon_len = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = NULL;
        for (const char *q = p; q < p + len; q++)
            if (*q == ':')
                colon = q;
        if (!colon || colon == p) {
            snprintf(why, why_size, "'%.*s' is not NAME:D0xD1x... (e.g. images:1x3x640x640)",
                     (int)(len > 64 ? 64 : len), p);
            goto fail;
        }
        struct mq_input_shape *sh = &out->v[out->n];
        size_t nlen = (size_t)(colon - p);
        if (!(sh->name = malloc(nlen + 1))) {
            snprintf(why, why_size, "cannot allocate a name of %zu bytes", nlen);
            rc = MQ_ENOMEM;
            goto fail;
        }
        memcpy(sh->name, p, nlen);
        sh->name[nlen] = '\0';
        out->n++;
        if ((rc = parse_dims(colon + 1, len - nlen - 1, sh, why, why_size)) < 0)
            goto fail;
        rc = MQ_EINVAL;
        for (int i = 0; i + 1 < out->n; i++)
            if (strcmp(out->v[i].name, sh->name) == 0) {
                snprintf(why, why_size, "input '%.64s' is given twice", sh->name);
                goto fail;
            }
        canon_len += (size_t)snprintf(out->canon + canon_len, canon_cap - canon_len, "%s%s:", out->n > 1 ? "," : "",
                                      sh->name);
        for (int d = 0; d < sh->n_dims; d++)
            canon_len += (size_t)snprintf(out->canon + canon_len, canon_cap - canon_len, "%s%lld", d ? "x" : "",
                                          (long long)sh->dims[d]);
        if (!comma)
            break;
        p = comma + 1;
    }
    return MQ_OK;
fail:
    mq_input_shapes_release(out);
    return rc;
}
