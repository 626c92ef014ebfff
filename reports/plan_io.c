/* reports/plan_io.c - reading plan/1 YAML files. */
#include "reports/plan_io.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "reports/yaml_doc.h"

static int parse_format(struct rpt_yaml *y, yaml_node_t *n, enum mq_dtype *out)
{
    const char *s = rpt_yaml_scalar(n);
    char list[128];
    mq_dtype_list_plan_formats(list, sizeof(list));
    if (!s || mq_dtype_from_name(s, out) < 0 || !mq_dtype_get(*out)->is_plan_format)
        return mq_error(MQ_EFORMAT, "'%s':%d: '%s' is not a format (one of %s)", y->path,
                        rpt_yaml_line(n), s ? s : "(not a scalar)", list);
    return MQ_OK;
}

int rpt_plan_read(const struct mq_model *m, const char *path, struct mq_plan **out)
{
    *out = NULL;
    struct rpt_yaml y;
    struct mq_plan *plan = NULL;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    if ((rc = rpt_yaml_check_schema(&y, "plan", 1)) < 0)
        goto done;
    yaml_node_t *root = rpt_yaml_root(&y);
    yaml_node_t *def = rpt_yaml_get(&y, root, "default");
    yaml_node_t *layers = rpt_yaml_get(&y, root, "layers");
    enum mq_dtype def_fmt = MQ_DTYPE_COUNT;
    if (def && (rc = parse_format(&y, def, &def_fmt)) < 0)
        goto done;
    if (layers && layers->type != YAML_MAPPING_NODE) {
        rc = mq_error(MQ_EFORMAT, "'%s':%d: 'layers' is not a mapping of layer names to formats", path,
                      rpt_yaml_line(layers));
        goto done;
    }
    if ((rc = mq_plan_uniform(m, def_fmt == MQ_DTYPE_COUNT ? MQ_DTYPE_F32 : def_fmt, &plan)) < 0)
        goto done;
    bool *set = calloc((size_t)m->n_layers + 1, sizeof(*set));
    if (!set) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate a plan");
        goto done;
    }
    if (layers) {
        for (yaml_node_pair_t *p = layers->data.mapping.pairs.start; p < layers->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(&y.doc, p->key);
            const char *name = rpt_yaml_scalar(k);
            int idx = name ? mq_model_find_layer(m, name) : -1;
            if (idx < 0) {
                rc = mq_error(MQ_EFORMAT, "'%s':%d: model '%s' has no quantizable layer '%s'", path,
                              rpt_yaml_line(k), m->path, name ? name : "(not a scalar)");
                break;
            }
            if (set[idx]) {
                rc = mq_error(MQ_EFORMAT, "'%s':%d: layer '%s' is listed twice", path, rpt_yaml_line(k), name);
                break;
            }
            if ((rc = parse_format(&y, yaml_document_get_node(&y.doc, p->value), &plan->fmt[idx])) < 0)
                break;
            set[idx] = true;
        }
    }
    for (int i = 0; rc == MQ_OK && i < m->n_layers; i++)
        if (!set[i] && def_fmt == MQ_DTYPE_COUNT)
            rc = mq_error(MQ_EFORMAT, "'%s': layer '%s' has no format and there is no 'default'", path,
                          m->layers[i].name);
    free(set);
    if (rc == MQ_OK)
        rc = mq_plan_check(m, plan);
    if (rc == MQ_OK) {
        char what[32];
        mq_plan_describe(plan, what, sizeof(what));
        snprintf(plan->label, sizeof(plan->label), "%s (%s)", what, path);
    }
done:
    rpt_yaml_release(&y);
    if (rc < 0)
        mq_plan_free(plan);
    else
        *out = plan;
    return rc;
}
