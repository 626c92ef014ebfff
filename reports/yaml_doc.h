/* reports/yaml_doc.h - read a YAML file into libyaml's document tree, with helpers that
 * report errors as "'file':LINE: ..." one-liners.
 *
 *     struct rpt_yaml doc;
 *     if (rpt_yaml_load(path, &doc) < 0) return -1;
 *     yaml_node_t *root = rpt_yaml_root(&doc);
 *     yaml_node_t *v = rpt_yaml_get(&doc, root, "mixq_schema");   // NULL if absent
 *     const char *s = rpt_yaml_scalar(v);                          // NULL unless a scalar
 *     rpt_yaml_release(&doc);
 *
 * Ownership: the document owns every node and string it hands out until release.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/ and depends on core/ and libyaml; nothing below it calls it.
 */
#ifndef MQ_REPORTS_YAML_DOC_H
#define MQ_REPORTS_YAML_DOC_H

#include <yaml.h>

struct rpt_yaml {
    char path[4096];
    yaml_document_t doc;
    int loaded;
};

/* Loads the first document of a file; an empty file, a syntax error or a document
 * whose root is not a mapping is MQ_EFORMAT with one line naming file and line. */
int rpt_yaml_load(const char *path, struct rpt_yaml *y);
/* The same from memory; name stands for the path in messages. */
int rpt_yaml_load_string(const char *name, const char *text, size_t len, struct rpt_yaml *y);
void rpt_yaml_release(struct rpt_yaml *y);

yaml_node_t *rpt_yaml_root(struct rpt_yaml *y);
/* The value under `key` in a mapping node, or NULL. */
yaml_node_t *rpt_yaml_get(struct rpt_yaml *y, yaml_node_t *map, const char *key);
/* The scalar's text, or NULL when the node is NULL or not a scalar. */
const char *rpt_yaml_scalar(const yaml_node_t *node);
/* 1-based line of a node, for messages. */
int rpt_yaml_line(const yaml_node_t *node);

/* Checks that the root has `mixq_schema: <name>/<version>` with the given name and a
 * version this build reads (<= max_version). */
int rpt_yaml_check_schema(struct rpt_yaml *y, const char *name, int max_version);

/* The schema name of a mixq YAML file ("plan" for `mixq_schema: plan/1`) into buf; errors
 * as rpt_yaml_load, or MQ_EFORMAT when the file names no schema. */
int rpt_yaml_schema_of(const char *path, char *buf, size_t size);

#endif
