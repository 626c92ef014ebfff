/* reports/yaml_doc.c - YAML documents through libyaml, with one-line errors. */
#include "reports/yaml_doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* Loads the first document from an initialized parser; name is for messages. */
static int load_doc(yaml_parser_t *parser, const char *name, struct rpt_yaml *y)
{
    int rc = MQ_OK;
    if (!yaml_parser_load(parser, &y->doc)) {
        rc = mq_error(MQ_EFORMAT, "'%s':%zu: %s%s%s", name, parser->problem_mark.line + 1,
                      parser->problem ? parser->problem : "YAML error", parser->context ? " " : "",
                      parser->context ? parser->context : "");
    } else {
        y->loaded = 1;
        yaml_node_t *root = yaml_document_get_root_node(&y->doc);
        if (!root)
            rc = mq_error(MQ_EFORMAT, "'%s': empty YAML document", name);
        else if (root->type != YAML_MAPPING_NODE)
            rc = mq_error(MQ_EFORMAT, "'%s':%d: the document is not a mapping", name, rpt_yaml_line(root));
    }
    if (rc < 0)
        rpt_yaml_release(y);
    return rc;
}

int rpt_yaml_load(const char *path, struct rpt_yaml *y)
{
    memset(y, 0, sizeof(*y));
    snprintf(y->path, sizeof(y->path), "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return mq_error(MQ_EIO, "cannot open '%s': %s", path, strerror(errno));
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return mq_error(MQ_ENOMEM, "cannot initialize the YAML parser");
    }
    yaml_parser_set_input_file(&parser, f);
    int rc = load_doc(&parser, path, y);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int rpt_yaml_load_string(const char *name, const char *text, size_t len, struct rpt_yaml *y)
{
    memset(y, 0, sizeof(*y));
    snprintf(y->path, sizeof(y->path), "%s", name);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return mq_error(MQ_ENOMEM, "cannot initialize the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = load_doc(&parser, name, y);
    yaml_parser_delete(&parser);
    return rc;
}

void rpt_yaml_release(struct rpt_yaml *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    y->loaded = 0;
}

yaml_node_t *rpt_yaml_root(struct rpt_yaml *y) { return yaml_document_get_root_node(&y->doc); }

yaml_node_t *rpt_yaml_get(struct rpt_yaml *y, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = rpt_yaml_scalar(yaml_document_get_node(&y->doc, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(&y->doc, p->value);
    }
    return NULL;
}

const char *rpt_yaml_scalar(const yaml_node_t *node)
{
    if (!node || node->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)node->data.scalar.value;
}

int rpt_yaml_line(const yaml_node_t *node) { return node ? (int)node->start_mark.line + 1 : 0; }

int rpt_yaml_check_schema(struct rpt_yaml *y, const char *name, int max_version)
{
    yaml_node_t *n = rpt_yaml_get(y, rpt_yaml_root(y), "mixq_schema");
    const char *s = rpt_yaml_scalar(n);
    if (!s)
        return mq_error(MQ_EFORMAT, "'%s': no 'mixq_schema: %s/N' at the top", y->path, name);
    size_t len = strlen(name);
    char *end = NULL;
    long version = 0;
    if (strncmp(s, name, len) == 0 && s[len] == '/') {
        errno = 0;
        version = strtol(s + len + 1, &end, 10);
    }
    if (!end || *end || end == s + len + 1 || errno)
        return mq_error(MQ_EFORMAT, "'%s':%d: mixq_schema is '%s', want '%s/N'", y->path,
                        rpt_yaml_line(n), s, name);
    if (version < 1 || version > max_version)
        return mq_error(MQ_EUNSUPPORTED, "'%s':%d: schema %s version %ld is not readable by this mixq (reads 1..%d)",
                        y->path, rpt_yaml_line(n), name, version, max_version);
    return MQ_OK;
}

int rpt_yaml_schema_of(const char *path, char *buf, size_t size)
{
    struct rpt_yaml y;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    const char *s = rpt_yaml_scalar(rpt_yaml_get(&y, rpt_yaml_root(&y), "mixq_schema"));
    if (!s || !strchr(s, '/'))
        rc = mq_error(MQ_EFORMAT, "'%s': no 'mixq_schema: NAME/N' at the top", path);
    else
        snprintf(buf, size, "%.*s", (int)(strchr(s, '/') - s), s);
    rpt_yaml_release(&y);
    return rc;
}
