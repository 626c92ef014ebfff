/* reports/config_io.c - model-config/1 files. */
#include "reports/config_io.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "core/sha256.h"
#include "core/status.h"
#include "reports/yaml_doc.h"

static int copy_scalar(struct rpt_yaml *y, yaml_node_t *n, const char *key, char *buf, size_t size)
{
    const char *s = rpt_yaml_scalar(n);
    if (!s)
        return mq_error(MQ_EFORMAT, "'%s':%d: '%s' is not a value", y->path, rpt_yaml_line(n), key);
    if (strlen(s) >= size)
        return mq_error(MQ_EFORMAT, "'%s':%d: '%s' is too long", y->path, rpt_yaml_line(n), key);
    snprintf(buf, size, "%s", s);
    return MQ_OK;
}

static int read_pins(struct rpt_yaml *y, yaml_node_t *seq, struct srch_pins *pins)
{
    if (seq->type != YAML_SEQUENCE_NODE)
        return mq_error(MQ_EFORMAT, "'%s':%d: 'pins' is a list of 'LAYER: FORMAT' entries", y->path,
                        rpt_yaml_line(seq));
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *e = yaml_document_get_node(&y->doc, *it);
        if (e->type != YAML_MAPPING_NODE || e->data.mapping.pairs.top - e->data.mapping.pairs.start != 1)
            return mq_error(MQ_EFORMAT, "'%s':%d: a pin is one 'LAYER: FORMAT' entry", y->path, rpt_yaml_line(e));
        yaml_node_pair_t *pr = e->data.mapping.pairs.start;
        const char *layer = rpt_yaml_scalar(yaml_document_get_node(&y->doc, pr->key));
        const char *fmt = rpt_yaml_scalar(yaml_document_get_node(&y->doc, pr->value));
        char from[160];
        snprintf(from, sizeof(from), "'%.120s':%d", y->path, rpt_yaml_line(e));
        enum mq_dtype t;
        if (!layer || !fmt || mq_dtype_from_name(fmt, &t) < 0)
            return mq_error(MQ_EFORMAT, "%s: pin '%s: %s' does not name a layer and a format", from,
                            layer ? layer : "?", fmt ? fmt : "?");
        int rc = srch_pins_add(pins, layer, t, from);
        if (rc < 0)
            return rc;
    }
    return MQ_OK;
}

int rpt_config_read(const char *path, struct rpt_model_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "%s", path);
    struct rpt_yaml y;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    if ((rc = rpt_yaml_check_schema(&y, "model-config", 1)) < 0)
        goto done;
    yaml_node_t *root = rpt_yaml_root(&y);
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top && rc == MQ_OK;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(&y.doc, pr->key), *v = yaml_document_get_node(&y.doc, pr->value);
        const char *key = rpt_yaml_scalar(k);
        if (!key)
            rc = mq_error(MQ_EFORMAT, "'%s':%d: a key that is not a name", path, rpt_yaml_line(k));
        else if (!strcmp(key, "mixq_schema"))
            ;
        else if (!strcmp(key, "model"))
            rc = copy_scalar(&y, v, key, c->model, sizeof(c->model));
        else if (!strcmp(key, "task"))
            rc = copy_scalar(&y, v, key, c->task, sizeof(c->task));
        else if (!strcmp(key, "workload"))
            rc = copy_scalar(&y, v, key, c->workload, sizeof(c->workload));
        else if (!strcmp(key, "data"))
            rc = copy_scalar(&y, v, key, c->data, sizeof(c->data));
        else if (!strcmp(key, "pins"))
            rc = read_pins(&y, v, &c->pins);
        else if (!strcmp(key, "match")) {
            yaml_node_t *f = rpt_yaml_get(&y, v, "file"), *h = rpt_yaml_get(&y, v, "sha256");
            if (v->type != YAML_MAPPING_NODE || (!f && !h))
                rc = mq_error(MQ_EFORMAT, "'%s':%d: 'match' needs 'file' and/or 'sha256'", path, rpt_yaml_line(v));
            if (rc == MQ_OK && f)
                rc = copy_scalar(&y, f, "file", c->file, sizeof(c->file));
            if (rc == MQ_OK && h)
                rc = copy_scalar(&y, h, "sha256", c->sha256, sizeof(c->sha256));
        } else {
            rc = mq_error(MQ_EFORMAT, "'%s':%d: unknown key '%s' (model-config/1 has model, match, task, workload, "
                          "data, pins)", path, rpt_yaml_line(k), key);
        }
    }
done:
    rpt_yaml_release(&y);
    return rc;
}

int rpt_config_find(const char *model_path, const char *dir, struct rpt_model_config *out, bool *found)
{
    *found = false;
    DIR *d = opendir(dir);
    if (!d)
        return MQ_OK; /* no configs folder: nothing is known */
    const char *base = strrchr(model_path, '/');
    base = base ? base + 1 : model_path;
    char hex[65] = "";
    int rc = MQ_OK;
    struct dirent *e;
    while (rc == MQ_OK && !*found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".yaml") != 0)
            continue;
        char path[4352];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((rc = rpt_config_read(path, out)) < 0)
            break;
        if (out->file[0] && strcmp(out->file, base) != 0)
            continue;
        if (out->sha256[0]) {
            if (!hex[0] && (rc = mq_sha256_file(model_path, hex)) < 0)
                break;
            if (strcmp(out->sha256, hex) != 0)
                continue;
        }
        *found = out->file[0] || out->sha256[0];
    }
    closedir(d);
    return rc;
}
