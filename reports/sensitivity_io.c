/* reports/sensitivity_io.c - sensitivity/1 YAML. */
#include "reports/sensitivity_io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "reports/yaml_doc.h"
#include "reports/yaml_write.h"

#ifndef MIXQ_VERSION
#define MIXQ_VERSION "unknown"
#endif

int rpt_sensitivity_write(const struct srch_sensitivity *s, const char *path)
{
    struct rpt_yw w;
    if (rpt_yw_open(&w, path, "sensitivity/1") < 0)
        return MQ_EIO;
    rpt_yw_kv_str(&w, "mixq_version", MIXQ_VERSION);
    char hash[32];
    snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)s->model_hash);
    rpt_yw_key(&w, "model");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "path", s->model_path);
    rpt_yw_kv_str(&w, "content_hash", hash);
    rpt_yw_kv_int(&w, "layers", s->n_layers);
    rpt_yw_end(&w);
    rpt_yw_kv_str(&w, "method", srch_sens_method_name(s->method));
    rpt_yw_kv_str(&w, "loss", s->loss_name);
    rpt_yw_kv_str(&w, "loss_meaning",
                  s->method == SRCH_SENS_MEASURED
                      ? "mean KL divergence of the outputs from full precision, this layer alone quantized"
                  : s->method == SRCH_SENS_GROUPED
                      ? "the layer's group's measured mean KL divergence (the group alone quantized), times the "
                        "layer's share of the group's weights"
                  : s->method == SRCH_SENS_CALIBRATED
                      ? "mean KL divergence of the outputs from full precision, this layer alone quantized, "
                        "predicted from the layer's weight error by a map fitted to measured group points (source: "
                        "measured, shared or predicted)"
                      : "relative squared error of this layer's own output on calibration inputs");
    rpt_yw_kv_str(&w, "data", s->data);
    rpt_yw_kv_int(&w, "ctx", s->ctx);
    rpt_yw_kv_int(&w, "chunks", s->chunks);
    rpt_yw_key(&w, "formats");
    rpt_yw_flow_seq(&w);
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if ((s->formats >> f) & 1u)
            rpt_yw_str(&w, mq_dtype_name((enum mq_dtype)f));
    rpt_yw_end(&w);
    rpt_yw_key(&w, "metric");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "name", s->metric_name);
    rpt_yw_key(&w, "reference");
    if (isnan(s->ref_metric))
        rpt_yw_null(&w);
    else
        rpt_yw_num(&w, s->ref_metric, 8);
    rpt_yw_kv_bool(&w, "higher_is_better", s->higher_is_better);
    rpt_yw_end(&w);
    rpt_yw_key(&w, "rank_correlation");
    if (isnan(s->rank_corr))
        rpt_yw_null(&w);
    else
        rpt_yw_num(&w, s->rank_corr, 4);
    if (s->method == SRCH_SENS_MEASURED || s->method == SRCH_SENS_CALIBRATED)
        rpt_yw_kv_str(&w, "rank_correlation_of",
                      s->method == SRCH_SENS_MEASURED
                          ? "proxy and measured KL over layers and formats"
                          : "leave-one-out predictions and measured KL over the measured group points");
    rpt_yw_kv_int(&w, "samples", s->n_samples);
    rpt_yw_kv_num(&w, "wall_seconds", s->wall_seconds, 4);
    rpt_yw_kv_int(&w, "evaluated", s->n_evaluated);
    rpt_yw_kv_int(&w, "cached", s->n_cached);
    if (s->method == SRCH_SENS_CALIBRATED) {
        rpt_yw_key(&w, "calibration");
        rpt_yw_map(&w);
        rpt_yw_kv_str(&w, "error", s->err_weighted ? "importance-weighted relative squared error of the weights"
                                                   : "relative squared error of the weights (no importance weights)");
        rpt_yw_kv_str(&w, "fit", "log(kl_group / layers) = a_group + b_role log(mean err); layer loss exp(a_group) "
                                 "err^b_role, measured group KL shared out by err^b_role");
        rpt_yw_kv_int(&w, "points", s->n_points);
        rpt_yw_key(&w, "loo_median_error");
        if (isnan(s->loo_median_err))
            rpt_yw_null(&w);
        else
            rpt_yw_num(&w, s->loo_median_err, 4);
        rpt_yw_key(&w, "loo_worst_error");
        if (isnan(s->loo_worst_err))
            rpt_yw_null(&w);
        else
            rpt_yw_num(&w, s->loo_worst_err, 4);
        rpt_yw_key(&w, "slopes");
        rpt_yw_map(&w);
        for (int r = 0; r < MQ_ROLE_COUNT; r++)
            if (!isnan(s->role_b[r]))
                rpt_yw_kv_num(&w, mq_layer_role_name((enum mq_layer_role)r), s->role_b[r], 4);
        rpt_yw_end(&w);
        int counts[SRCH_SRC_COUNT] = {0};
        for (int i = 0; i < s->n_layers * MQ_DTYPE_COUNT; i++)
            if (!isnan(s->loss[i]))
                counts[s->source[i]]++;
        rpt_yw_key(&w, "losses");
        rpt_yw_map(&w);
        for (int k = SRCH_SRC_MEASURED; k < SRCH_SRC_COUNT; k++)
            if (counts[k])
                rpt_yw_kv_int(&w, srch_sens_source_name((enum srch_sens_source)k), counts[k]);
        rpt_yw_end(&w);
        rpt_yw_end(&w);
    }
    if (s->method == SRCH_SENS_GROUPED || s->method == SRCH_SENS_CALIBRATED) {
        rpt_yw_key(&w, "all_layers");
        rpt_yw_map(&w);
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            if (isnan(s->all_kl[f]))
                continue;
            rpt_yw_key(&w, mq_dtype_name((enum mq_dtype)f));
            rpt_yw_map(&w);
            rpt_yw_kv_num(&w, "kl", s->all_kl[f], 6);
            if (!isnan(s->all_metric[f]))
                rpt_yw_kv_num(&w, "metric", s->all_metric[f], 8);
            rpt_yw_end(&w);
        }
        rpt_yw_end(&w);
        rpt_yw_key(&w, "groups");
        rpt_yw_seq(&w);
        for (int g = 0; g < s->n_groups; g++) {
            rpt_yw_map(&w);
            rpt_yw_kv_str(&w, "name", s->group_names[g]);
            rpt_yw_kv_int(&w, "layers", s->group_size[g]);
            if (s->method == SRCH_SENS_CALIBRATED && s->group_a && !isnan(s->group_a[g]))
                rpt_yw_kv_num(&w, "intercept", s->group_a[g], 6);
            for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
                double kl = s->group_kl[g * MQ_DTYPE_COUNT + f];
                if (isnan(kl))
                    continue;
                rpt_yw_key(&w, mq_dtype_name((enum mq_dtype)f));
                rpt_yw_map(&w);
                rpt_yw_kv_num(&w, "kl", kl, 6);
                if (!isnan(s->group_metric[g * MQ_DTYPE_COUNT + f]))
                    rpt_yw_kv_num(&w, "metric", s->group_metric[g * MQ_DTYPE_COUNT + f], 8);
                if (s->group_err && !isnan(s->group_err[g * MQ_DTYPE_COUNT + f]))
                    rpt_yw_kv_num(&w, "err", s->group_err[g * MQ_DTYPE_COUNT + f], 6);
                if (s->group_loo && !isnan(s->group_loo[g * MQ_DTYPE_COUNT + f]))
                    rpt_yw_kv_num(&w, "kl_left_out", s->group_loo[g * MQ_DTYPE_COUNT + f], 6);
                rpt_yw_end(&w);
            }
            rpt_yw_end(&w);
        }
        rpt_yw_end(&w);
    }
    rpt_yw_key(&w, "layers");
    rpt_yw_seq(&w);
    for (int l = 0; l < s->n_layers; l++) {
        rpt_yw_map(&w);
        rpt_yw_kv_str(&w, "name", s->names[l]);
        if ((s->method == SRCH_SENS_GROUPED || s->method == SRCH_SENS_CALIBRATED) && s->group[l] >= 0)
            rpt_yw_kv_str(&w, "group", s->group_names[s->group[l]]);
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            int i = l * MQ_DTYPE_COUNT + f;
            if (isnan(s->loss[i]) && isnan(s->proxy[i]) && isnan(s->err[i]))
                continue;
            rpt_yw_key(&w, mq_dtype_name((enum mq_dtype)f));
            rpt_yw_map(&w);
            if (!isnan(s->loss[i]))
                rpt_yw_kv_num(&w, "loss", s->loss[i], 6);
            if (!isnan(s->loss[i]) && s->source[i] != SRCH_SRC_NONE)
                rpt_yw_kv_str(&w, "source", srch_sens_source_name((enum srch_sens_source)s->source[i]));
            if (!isnan(s->kl[i]))
                rpt_yw_kv_num(&w, "kl", s->kl[i], 6);
            if (!isnan(s->metric[i]))
                rpt_yw_kv_num(&w, "metric", s->metric[i], 8);
            if (!isnan(s->proxy[i]))
                rpt_yw_kv_num(&w, "proxy", s->proxy[i], 6);
            if (!isnan(s->err[i]))
                rpt_yw_kv_num(&w, "err", s->err[i], 6);
            rpt_yw_end(&w);
        }
        rpt_yw_end(&w);
    }
    rpt_yw_end(&w);
    return rpt_yw_close(&w);
}

static int get_num(struct rpt_yaml *y, yaml_node_t *map, const char *key, bool required, double *out)
{
    yaml_node_t *n = rpt_yaml_get(y, map, key);
    const char *s = rpt_yaml_scalar(n);
    if (!s || !strcmp(s, "null") || !strcmp(s, "~")) {
        *out = NAN;
        return required ? mq_error(MQ_EFORMAT, "'%s':%d: '%s' is missing", y->path, rpt_yaml_line(map), key) : MQ_OK;
    }
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (*end || end == s || errno)
        return mq_error(MQ_EFORMAT, "'%s':%d: '%s' is '%s', not a number", y->path, rpt_yaml_line(n), key, s);
    if (!isfinite(*out)) /* absent values are left out (or null), never NaN */
        return mq_error(MQ_EFORMAT, "'%s':%d: '%s' is '%s', not a finite number", y->path, rpt_yaml_line(n), key, s);
    return MQ_OK;
}

int rpt_sensitivity_read(const char *path, struct srch_sensitivity **out)
{
    *out = NULL;
    struct rpt_yaml y;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    struct srch_sensitivity *s = NULL;
    if ((rc = rpt_yaml_check_schema(&y, "sensitivity", 1)) < 0)
        goto done;
    yaml_node_t *root = rpt_yaml_root(&y);
    yaml_node_t *model = rpt_yaml_get(&y, root, "model");
    yaml_node_t *layers = rpt_yaml_get(&y, root, "layers");
    if (!model || !layers || layers->type != YAML_SEQUENCE_NODE) {
        rc = mq_error(MQ_EFORMAT, "'%s': a sensitivity table needs 'model' and a 'layers' list", path);
        goto done;
    }
    int n = (int)(layers->data.sequence.items.top - layers->data.sequence.items.start);
    if ((rc = srch_sensitivity_alloc(n, &s)) < 0)
        goto done;
    const char *v = rpt_yaml_scalar(rpt_yaml_get(&y, model, "path"));
    snprintf(s->model_path, sizeof(s->model_path), "%s", v ? v : "");
    v = rpt_yaml_scalar(rpt_yaml_get(&y, model, "content_hash"));
    s->model_hash = v ? strtoull(v, NULL, 16) : 0;
    v = rpt_yaml_scalar(rpt_yaml_get(&y, root, "method"));
    if (!v || srch_sens_method_parse(v, &s->method) < 0 || s->method == SRCH_SENS_AUTO) {
        rc = mq_error(MQ_EFORMAT, "'%s': 'method' must be measured, grouped, calibrated or proxy", path);
        goto done;
    }
    v = rpt_yaml_scalar(rpt_yaml_get(&y, root, "loss"));
    snprintf(s->loss_name, sizeof(s->loss_name), "%s", v ? v : "");
    v = rpt_yaml_scalar(rpt_yaml_get(&y, root, "data"));
    snprintf(s->data, sizeof(s->data), "%s", v ? v : "");
    yaml_node_t *metric = rpt_yaml_get(&y, root, "metric");
    if (metric) {
        v = rpt_yaml_scalar(rpt_yaml_get(&y, metric, "name"));
        snprintf(s->metric_name, sizeof(s->metric_name), "%s", v ? v : "");
        if ((rc = get_num(&y, metric, "reference", false, &s->ref_metric)) < 0)
            goto done;
        v = rpt_yaml_scalar(rpt_yaml_get(&y, metric, "higher_is_better"));
        s->higher_is_better = v && !strcmp(v, "true");
    }
    if ((rc = get_num(&y, root, "rank_correlation", false, &s->rank_corr)) < 0)
        goto done;
    for (int l = 0; l < n; l++) {
        yaml_node_t *ln = yaml_document_get_node(&y.doc, layers->data.sequence.items.start[l]);
        const char *name = rpt_yaml_scalar(rpt_yaml_get(&y, ln, "name"));
        if (!name) {
            rc = mq_error(MQ_EFORMAT, "'%s':%d: a layer without a name", path, rpt_yaml_line(ln));
            goto done;
        }
        snprintf(s->names[l], sizeof(s->names[l]), "%s", name);
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            yaml_node_t *fn = rpt_yaml_get(&y, ln, mq_dtype_name((enum mq_dtype)f));
            if (!fn)
                continue;
            int i = l * MQ_DTYPE_COUNT + f;
            if ((rc = get_num(&y, fn, "loss", false, &s->loss[i])) < 0 ||
                (rc = get_num(&y, fn, "kl", false, &s->kl[i])) < 0 ||
                (rc = get_num(&y, fn, "metric", false, &s->metric[i])) < 0 ||
                (rc = get_num(&y, fn, "proxy", false, &s->proxy[i])) < 0 ||
                (rc = get_num(&y, fn, "err", false, &s->err[i])) < 0)
                goto done;
            /* files before `source` (mixq 0.x): what the method and the values say */
            const char *src = rpt_yaml_scalar(rpt_yaml_get(&y, fn, "source"));
            enum srch_sens_source so = SRCH_SRC_NONE;
            if (src && srch_sens_source_parse(src, &so) < 0) {
                rc = mq_error(MQ_EFORMAT, "'%s':%d: layer '%s' %s source '%s' is not measured, shared, predicted or "
                              "proxy", path, rpt_yaml_line(fn), name, mq_dtype_name((enum mq_dtype)f), src);
                goto done;
            }
            if (!src && !isnan(s->loss[i]))
                so = s->method == SRCH_SENS_PROXY     ? SRCH_SRC_PROXY
                     : s->method == SRCH_SENS_GROUPED ? SRCH_SRC_SHARED
                                                      : SRCH_SRC_MEASURED;
            s->source[i] = (uint8_t)so;
            if (!isnan(s->loss[i]) && !(s->loss[i] >= 0 && isfinite(s->loss[i]))) {
                rc = mq_error(MQ_EFORMAT, "'%s':%d: layer '%s' %s loss %g is not a finite non-negative number", path,
                              rpt_yaml_line(fn), name, mq_dtype_name((enum mq_dtype)f), s->loss[i]);
                goto done;
            }
            if (!isnan(s->loss[i]))
                s->formats |= 1u << f;
        }
    }
done:
    rpt_yaml_release(&y);
    if (rc < 0) {
        srch_sensitivity_free(s);
        return rc;
    }
    *out = s;
    return MQ_OK;
}
