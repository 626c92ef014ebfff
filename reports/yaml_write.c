/* reports/yaml_write.c - libyaml emitter wrapper with sticky errors and atomic files. */
#include "reports/yaml_write.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"

static void fail(struct rpt_yw *w, int rc)
{
    if (w->rc == MQ_OK)
        w->rc = rc;
}

static void emit(struct rpt_yw *w, yaml_event_t *ev)
{
    if (w->rc < 0) {
        yaml_event_delete(ev);
        return;
    }
    if (!yaml_emitter_emit(&w->em, ev))
        fail(w, mq_error(MQ_EIO, "cannot write YAML to '%s': %s", w->path,
                         w->em.problem ? w->em.problem : "emitter error"));
}

int rpt_yw_open(struct rpt_yw *w, const char *path, const char *schema)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "%s", path);
    if (strcmp(path, "-") == 0) {
        w->f = stdout;
    } else {
        snprintf(w->tmp, sizeof(w->tmp), "%s.XXXXXX", path);
        int fd = mkstemp(w->tmp);
        if (fd < 0)
            return w->rc = mq_error(MQ_EIO, "cannot create '%s': %s", w->tmp, strerror(errno));
        w->f = fdopen(fd, "w");
        if (!w->f) {
            close(fd);
            unlink(w->tmp);
            return w->rc = mq_error(MQ_EIO, "cannot open '%s': %s", w->tmp, strerror(errno));
        }
    }
    if (!yaml_emitter_initialize(&w->em)) {
        if (w->f != stdout) {
            fclose(w->f);
            unlink(w->tmp);
        }
        return w->rc = mq_error(MQ_ENOMEM, "cannot initialize the YAML emitter");
    }
    w->initialized = true;
    yaml_emitter_set_output_file(&w->em, w->f);
    yaml_emitter_set_unicode(&w->em, 1);
    yaml_emitter_set_width(&w->em, 120);
    yaml_event_t ev;
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    emit(w, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    emit(w, &ev);
    rpt_yw_map(w);
    if (schema)
        rpt_yw_kv_str(w, "mixq_schema", schema);
    return w->rc;
}

int rpt_yw_close(struct rpt_yw *w)
{
    if (!w->initialized)
        return w->rc;
    while (w->depth > 0)
        rpt_yw_end(w);
    yaml_event_t ev;
    yaml_document_end_event_initialize(&ev, 1);
    emit(w, &ev);
    yaml_stream_end_event_initialize(&ev);
    emit(w, &ev);
    if (w->rc == MQ_OK && !yaml_emitter_flush(&w->em))
        fail(w, mq_error(MQ_EIO, "cannot write '%s'", w->path));
    yaml_emitter_delete(&w->em);
    w->initialized = false;
    if (w->f == stdout) {
        fflush(stdout);
        return w->rc;
    }
    if (w->rc == MQ_OK && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
        fail(w, mq_error(MQ_EIO, "cannot write '%s': %s", w->tmp, strerror(errno)));
    if (fclose(w->f) != 0 && w->rc == MQ_OK)
        fail(w, mq_error(MQ_EIO, "cannot close '%s': %s", w->tmp, strerror(errno)));
    if (w->rc == MQ_OK && chmod(w->tmp, 0644) != 0)
        fail(w, mq_error(MQ_EIO, "cannot chmod '%s': %s", w->tmp, strerror(errno)));
    if (w->rc == MQ_OK && rename(w->tmp, w->path) != 0)
        fail(w, mq_error(MQ_EIO, "cannot rename '%s' to '%s': %s", w->tmp, w->path, strerror(errno)));
    if (w->rc < 0)
        unlink(w->tmp);
    return w->rc;
}

static void push(struct rpt_yw *w, char kind)
{
    if (w->depth >= RPT_YW_MAX_DEPTH) {
        fail(w, mq_error(MQ_EINTERNAL, "YAML nesting deeper than %d in '%s'", RPT_YW_MAX_DEPTH, w->path));
        return;
    }
    w->kinds[w->depth++] = kind;
}

void rpt_yw_map(struct rpt_yw *w)
{
    yaml_event_t ev;
    yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    emit(w, &ev);
    push(w, 'm');
}

static void seq_start(struct rpt_yw *w, yaml_sequence_style_t style)
{
    yaml_event_t ev;
    yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, style);
    emit(w, &ev);
    push(w, 's');
}

void rpt_yw_seq(struct rpt_yw *w) { seq_start(w, YAML_BLOCK_SEQUENCE_STYLE); }
void rpt_yw_flow_seq(struct rpt_yw *w) { seq_start(w, YAML_FLOW_SEQUENCE_STYLE); }

void rpt_yw_end(struct rpt_yw *w)
{
    if (w->depth <= 0) {
        fail(w, mq_error(MQ_EINTERNAL, "YAML end without a collection in '%s'", w->path));
        return;
    }
    yaml_event_t ev;
    if (w->kinds[--w->depth] == 'm')
        yaml_mapping_end_event_initialize(&ev);
    else
        yaml_sequence_end_event_initialize(&ev);
    emit(w, &ev);
}

static void scalar(struct rpt_yw *w, const char *v, bool plain_ok)
{
    yaml_event_t ev;
    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)strlen(v), 1, 1,
                                 plain_ok ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    emit(w, &ev);
}

/* Strings that a YAML reader would take for another type are quoted. */
static bool looks_typed(const char *v)
{
    if (!*v)
        return true;
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "null", "~",
                                        "True", "False", "Yes", "No", "On", "Off", "Null", "NULL",
                                        "TRUE", "FALSE", ".nan", ".inf", "-.inf"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (!strcmp(v, words[i]))
            return true;
    char *end;
    strtod(v, &end);
    return *end == '\0';
}

void rpt_yw_key(struct rpt_yw *w, const char *key) { scalar(w, key, true); }
void rpt_yw_str(struct rpt_yw *w, const char *v) { scalar(w, v, !looks_typed(v)); }

void rpt_yw_int(struct rpt_yw *w, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)v);
    scalar(w, buf, true);
}

void rpt_yw_num(struct rpt_yw *w, double v, int digits)
{
    char buf[64];
    if (isnan(v))
        snprintf(buf, sizeof(buf), ".nan");
    else if (isinf(v))
        snprintf(buf, sizeof(buf), "%s", v > 0 ? ".inf" : "-.inf");
    else
        snprintf(buf, sizeof(buf), "%.*g", digits, v);
    /* YAML 1.1 floats want a '.' before an exponent: "1e-08" would read back as a string */
    char *e = strchr(buf, 'e');
    if (e && !strchr(buf, '.') && strlen(buf) + 3 < sizeof(buf)) {
        memmove(e + 2, e, strlen(e) + 1);
        e[0] = '.';
        e[1] = '0';
    }
    scalar(w, buf, true);
}

void rpt_yw_bool(struct rpt_yw *w, bool v) { scalar(w, v ? "true" : "false", true); }
void rpt_yw_null(struct rpt_yw *w) { scalar(w, "null", true); }

void rpt_yw_kv_str(struct rpt_yw *w, const char *key, const char *v)
{
    rpt_yw_key(w, key);
    rpt_yw_str(w, v);
}

void rpt_yw_kv_int(struct rpt_yw *w, const char *key, int64_t v)
{
    rpt_yw_key(w, key);
    rpt_yw_int(w, v);
}

void rpt_yw_kv_num(struct rpt_yw *w, const char *key, double v, int digits)
{
    rpt_yw_key(w, key);
    rpt_yw_num(w, v, digits);
}

void rpt_yw_kv_bool(struct rpt_yw *w, const char *key, bool v)
{
    rpt_yw_key(w, key);
    rpt_yw_bool(w, v);
}
