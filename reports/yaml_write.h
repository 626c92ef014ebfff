/* reports/yaml_write.h - write YAML files with libyaml's emitter, atomically.
 *
 *     struct rpt_yw w;
 *     if (rpt_yw_open(&w, "profile.yaml", "profile/1") < 0) return -1;  // root mapping opened,
 *     rpt_yw_key(&w, "backend"); rpt_yw_str(&w, "cpu");                  // mixq_schema written
 *     rpt_yw_key(&w, "layers"); rpt_yw_seq(&w);
 *       rpt_yw_map(&w); rpt_yw_kv_int(&w, "reps", 12); rpt_yw_end(&w);
 *     rpt_yw_end(&w);
 *     return rpt_yw_close(&w);     // closes open collections, writes, renames into place
 *
 * Errors are sticky: after the first failure every call is a no-op and rpt_yw_close
 * reports it (once) and removes the temporary file, so callers can emit without checking
 * each call. A path of "-" writes to stdout.
 *
 * Ownership: the writer owns its emitter and temporary file until rpt_yw_close.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/.
 */
#ifndef MQ_REPORTS_YAML_WRITE_H
#define MQ_REPORTS_YAML_WRITE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <yaml.h>

#define RPT_YW_MAX_DEPTH 32

struct rpt_yw {
    yaml_emitter_t em;
    FILE *f;
    char path[4096], tmp[4120];
    int depth;
    char kinds[RPT_YW_MAX_DEPTH]; /* 'm' mapping, 's' sequence */
    int rc;
    bool initialized;
};

/* Opens path (or "-" for stdout), starts the document and the root mapping, and writes
 * `mixq_schema: <schema>` first when schema is not NULL. */
int rpt_yw_open(struct rpt_yw *w, const char *path, const char *schema);
/* Ends every open collection and the document, flushes, renames into place. */
int rpt_yw_close(struct rpt_yw *w);

void rpt_yw_map(struct rpt_yw *w);
void rpt_yw_seq(struct rpt_yw *w);
/* A flow-style sequence ([a, b, c]), ended with rpt_yw_end. */
void rpt_yw_flow_seq(struct rpt_yw *w);
void rpt_yw_end(struct rpt_yw *w);

void rpt_yw_key(struct rpt_yw *w, const char *key);
void rpt_yw_str(struct rpt_yw *w, const char *v);
void rpt_yw_int(struct rpt_yw *w, int64_t v);
/* Doubles with %.*g (digits significant digits); NaN and Inf as YAML's .nan / .inf. */
void rpt_yw_num(struct rpt_yw *w, double v, int digits);
void rpt_yw_bool(struct rpt_yw *w, bool v);
void rpt_yw_null(struct rpt_yw *w);

/* key: value shorthands */
void rpt_yw_kv_str(struct rpt_yw *w, const char *key, const char *v);
void rpt_yw_kv_int(struct rpt_yw *w, const char *key, int64_t v);
void rpt_yw_kv_num(struct rpt_yw *w, const char *key, double v, int digits);
void rpt_yw_kv_bool(struct rpt_yw *w, const char *key, bool v);

#endif
