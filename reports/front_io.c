/* reports/front_io.c - front/1 YAML. */
#include "reports/front_io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "reports/export.h"
#include "reports/yaml_doc.h"
#include "reports/yaml_write.h"

#ifndef MIXQ_VERSION
#define MIXQ_VERSION "unknown"
#endif

static void write_plan(struct rpt_yw *w, const struct mq_model *m, const enum mq_dtype *fmt)
{
    int count[MQ_DTYPE_COUNT] = {0}, def = 0;
    for (int l = 0; l < m->n_layers; l++)
        count[fmt[l]]++;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if (count[f] > count[def])
            def = f;
    rpt_yw_key(w, "plan");
    rpt_yw_map(w);
    rpt_yw_kv_str(w, "default", mq_dtype_name((enum mq_dtype)def));
    rpt_yw_key(w, "layers");
    rpt_yw_map(w);
    for (int l = 0; l < m->n_layers; l++)
        if (fmt[l] != (enum mq_dtype)def)
            rpt_yw_kv_str(w, m->layers[l].name, mq_dtype_name(fmt[l]));
    rpt_yw_end(w);
    rpt_yw_end(w);
}

static void write_predicted(struct rpt_yw *w, double mem, double lat, double loss, double size)
{
    rpt_yw_key(w, "predicted");
    rpt_yw_map(w);
    rpt_yw_kv_num(w, "memory_bytes", mem, 10);
    if (isfinite(size))
        rpt_yw_kv_num(w, "file_bytes_at_most", size, 12);
    rpt_yw_kv_num(w, "latency_us", lat / 1e3, 6);
    rpt_yw_kv_num(w, "loss", loss, 6);
    rpt_yw_end(w);
}

static void write_measured(struct rpt_yw *w, const struct srch_candidate *c)
{
    rpt_yw_key(w, "measured");
    rpt_yw_map(w);
    rpt_yw_kv_num(w, "memory_bytes", c->mem, 10);
    rpt_yw_kv_bool(w, "memory_measured", c->mem_measured);
    if (isfinite(c->size))
        rpt_yw_kv_num(w, "file_bytes", c->size, 12);
    rpt_yw_kv_num(w, "latency_us", c->lat.median_ns / 1e3, 6);
    rpt_yw_kv_num(w, "latency_min_us", c->lat.min_ns / 1e3, 6);
    rpt_yw_kv_num(w, "latency_mad_us", c->lat.mad_ns / 1e3, 4);
    rpt_yw_kv_int(w, "reps", c->lat.reps);
    rpt_yw_kv_num(w, "kl", c->loss, 6);
    rpt_yw_kv_num(w, "kl_stderr", c->loss_stderr, 4);
    rpt_yw_kv_num(w, "metric", c->metric, 8);
    rpt_yw_kv_bool(w, "meets_budgets", c->meets);
    rpt_yw_kv_bool(w, "on_measured_front", c->on_measured_front);
    rpt_yw_kv_int(w, "round", c->round);
    if (c->n_targets > 0) { /* several targets: each one's figures (the ones above are the worst) */
        rpt_yw_key(w, "targets");
        rpt_yw_seq(w);
        for (int i = 0; i < c->n_targets; i++) {
            const struct srch_target_meas *tm = &c->tgt[i];
            rpt_yw_map(w);
            rpt_yw_kv_int(w, "target", i);
            rpt_yw_kv_num(w, "memory_bytes", tm->mem, 10);
            rpt_yw_kv_bool(w, "memory_measured", tm->mem_measured);
            rpt_yw_kv_num(w, "latency_us", tm->lat.median_ns / 1e3, 6);
            rpt_yw_kv_num(w, "latency_min_us", tm->lat.min_ns / 1e3, 6);
            rpt_yw_kv_num(w, "latency_mad_us", tm->lat.mad_ns / 1e3, 4);
            rpt_yw_kv_int(w, "reps", tm->lat.reps);
            rpt_yw_kv_bool(w, "meets_budgets", tm->meets);
            rpt_yw_end(w);
        }
        rpt_yw_end(w);
    }
    if (c->has_rt) { /* the deployment runtime's own figures (tune --runtime) */
        rpt_yw_key(w, "runtime");
        rpt_yw_map(w);
        rpt_yw_kv_num(w, "latency_us", c->rt.lat.median_ns / 1e3, 6);
        rpt_yw_kv_num(w, "latency_min_us", c->rt.lat.min_ns / 1e3, 6);
        rpt_yw_kv_num(w, "latency_mad_us", c->rt.lat.mad_ns / 1e3, 4);
        rpt_yw_kv_int(w, "reps", c->rt.lat.reps);
        rpt_yw_kv_num(w, "kl", c->rt.kl, 6);
        rpt_yw_kv_num(w, "kl_stderr", c->rt.kl_stderr, 4);
        rpt_yw_kv_num(w, "ppl", c->rt.ppl, 8);
        rpt_yw_kv_num(w, "predicted_latency_gap", c->pred_lat / c->rt.lat.median_ns - 1, 4);
        rpt_yw_end(w);
    }
    rpt_yw_end(w);
}

static void budget_value(struct rpt_yw *w, const char *key, double v, double unit)
{
    rpt_yw_key(w, key);
    if (isfinite(v))
        rpt_yw_num(w, v / unit, 10);
    else
        rpt_yw_null(w);
}

int rpt_front_loss_errors(const struct srch_sensitivity *sens, const struct srch_tune *t, double *err_pct,
                          double *median_pct, double *worst_pct)
{
    *median_pct = *worst_pct = NAN;
    double *abs_pct = malloc(((size_t)t->n_cand + 1) * sizeof(double));
    if (!abs_pct)
        return mq_error(MQ_ENOMEM, "cannot allocate %d plans' errors", t->n_cand);
    int n = 0;
    for (int i = 0; i < t->n_cand; i++) {
        const struct srch_candidate *c = &t->cand[i];
        err_pct[i] = NAN;
        if (strcmp(sens->loss_name, "kl") != 0 || !t->validated || !isfinite(c->pred_loss) || !(c->loss > 0))
            continue;
        err_pct[i] = 100 * (c->pred_loss - c->loss) / c->loss;
        abs_pct[n++] = fabs(err_pct[i]);
    }
    for (int i = 1; i < n; i++) /* insertion sort: a handful of plans */
        for (int j = i; j > 0 && abs_pct[j - 1] > abs_pct[j]; j--) {
            double v = abs_pct[j];
            abs_pct[j] = abs_pct[j - 1];
            abs_pct[j - 1] = v;
        }
    if (n) {
        *median_pct = n % 2 ? abs_pct[n / 2] : 0.5 * (abs_pct[n / 2 - 1] + abs_pct[n / 2]);
        *worst_pct = abs_pct[n - 1];
    }
    free(abs_pct);
    return n;
}

/* calibration: the validated plans' predicted KL against the measured one */
static int write_calibration(struct rpt_yw *w, const struct srch_sensitivity *sens, const struct srch_tune *t)
{
    double *err = malloc(((size_t)t->n_cand + 1) * sizeof(double)), med, worst;
    if (!err)
        return mq_error(MQ_ENOMEM, "cannot allocate %d plans' errors", t->n_cand);
    int n = rpt_front_loss_errors(sens, t, err, &med, &worst);
    if (n > 0) {
        rpt_yw_key(w, "calibration");
        rpt_yw_map(w);
        rpt_yw_key(w, "plans");
        rpt_yw_seq(w);
        for (int i = 0; i < t->n_cand; i++) {
            if (isnan(err[i]))
                continue;
            rpt_yw_map(w);
            rpt_yw_kv_str(w, "label", t->cand[i].label);
            rpt_yw_kv_num(w, "predicted_kl", t->cand[i].pred_loss, 6);
            rpt_yw_kv_num(w, "measured_kl", t->cand[i].loss, 6);
            rpt_yw_kv_num(w, "error_percent", err[i], 4);
            rpt_yw_end(w);
        }
        rpt_yw_end(w);
        rpt_yw_kv_num(w, "median_error_percent", med, 4);
        rpt_yw_kv_num(w, "worst_error_percent", worst, 4);
        rpt_yw_end(w);
    }
    free(err);
    return n < 0 ? n : MQ_OK;
}

/* imatrix: the file every plan was quantized with (reports/export.h), or null */
static void write_imatrix(struct rpt_yw *w, const struct rpt_imatrix_ref *im)
{
    rpt_yw_key(w, "imatrix");
    if (!im || !im->set) {
        rpt_yw_null(w);
        return;
    }
    rpt_yw_map(w);
    rpt_yw_kv_str(w, "source", im->source);
    rpt_yw_kv_str(w, "path", im->path);
    rpt_yw_kv_str(w, "sha256", im->sha256);
    if (im->text[0]) {
        rpt_yw_kv_str(w, "text", im->text);
        rpt_yw_kv_int(w, "chunks", im->chunks);
        rpt_yw_kv_int(w, "ctx", im->ctx);
    }
    rpt_yw_end(w);
}

int rpt_front_write(const char *path, const struct mq_model *m, const struct prof_profile *prof,
                    const struct srch_sensitivity *sens, const struct srch_tune *t, int max_points,
                    const struct rpt_imatrix_ref *im)
{
    const struct srch_front *f = t->front;
    /* which points go into the file: validated ones, extremes, and an even spread */
    bool *keep = calloc((size_t)f->n + 1, sizeof(bool));
    int *cand_of = malloc(((size_t)f->n + 1) * sizeof(int));
    enum mq_dtype *fmt = malloc(((size_t)m->n_layers + 1) * sizeof(*fmt));
    if (!keep || !cand_of || !fmt) {
        free(keep);
        free(cand_of);
        free(fmt);
        return mq_error(MQ_ENOMEM, "cannot write '%s'", path);
    }
    for (int i = 0; i < f->n; i++)
        cand_of[i] = -1;
    for (int c = 0; c < t->n_cand; c++)
        if (t->cand[c].point >= 0 && t->cand[c].point < f->n) {
            keep[t->cand[c].point] = true;
            cand_of[t->cand[c].point] = c;
        }
    int lim = max_points > 0 ? max_points : 256;
    if (f->n <= lim) {
        for (int i = 0; i < f->n; i++)
            keep[i] = true;
    } else {
        int imem = 0, ilat = 0, iloss = 0;
        for (int i = 0; i < f->n; i++) {
            imem = f->pts[i].mem < f->pts[imem].mem ? i : imem;
            ilat = f->pts[i].lat < f->pts[ilat].lat ? i : ilat;
            iloss = f->pts[i].loss < f->pts[iloss].loss ? i : iloss;
        }
        keep[imem] = keep[ilat] = keep[iloss] = true;
        if (t->best >= 0 && t->best < f->n)
            keep[t->best] = true;
        for (int k = 0; k < lim; k++)
            keep[(int)((double)k * (f->n - 1) / (lim - 1 > 0 ? lim - 1 : 1))] = true;
    }
    int written = 0;
    for (int i = 0; i < f->n; i++)
        written += keep[i];

    struct rpt_yw w;
    int rc = rpt_yw_open(&w, path, "front/1");
    if (rc < 0)
        goto done;
    rpt_yw_kv_str(&w, "mixq_version", MIXQ_VERSION);
    char hash[32];
    snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)m->content_hash);
    rpt_yw_key(&w, "model");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "path", m->path);
    rpt_yw_kv_str(&w, "name", m->name);
    rpt_yw_kv_str(&w, "arch", m->arch);
    rpt_yw_kv_str(&w, "content_hash", hash);
    if (m->input_shapes) /* --shapes: part of content_hash, and what a later load needs */
        rpt_yw_kv_str(&w, "shapes", m->input_shapes);
    rpt_yw_kv_int(&w, "layers", m->n_layers);
    rpt_yw_end(&w);
    write_imatrix(&w, im);
    rpt_yw_kv_str(&w, "workload", prof->workload.label);
    rpt_yw_key(&w, "target");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "cpu", prof->target.cpu);
    rpt_yw_kv_str(&w, "backend", prof->target.backend);
    rpt_yw_kv_str(&w, "backend_detail", prof->target.backend_detail);
    rpt_yw_kv_int(&w, "threads", prof->target.threads);
    rpt_yw_kv_str(&w, "topology", prof->target.topology);
    rpt_yw_kv_str(&w, "features", prof->target.features);
    rpt_yw_kv_bool(&w, "emulated", prof->target.emulated);
    rpt_yw_key(&w, "remote");
    if (prof->target.remote[0])
        rpt_yw_str(&w, prof->target.remote);
    else
        rpt_yw_null(&w);
    rpt_yw_end(&w);
    if (t->n_targets > 0) { /* tuned for several targets: the plans were measured on each */
        rpt_yw_key(&w, "targets");
        rpt_yw_seq(&w);
        for (int i = 0; i < t->n_targets; i++)
            rpt_yw_str(&w, t->target_labels[i]);
        rpt_yw_end(&w);
    }
    if (t->runtime_name[0]) { /* measured in the deployment runtime too: the budgets are met there */
        rpt_yw_key(&w, "runtime");
        rpt_yw_map(&w);
        rpt_yw_kv_str(&w, "name", t->runtime_name);
        rpt_yw_kv_str(&w, "detail", t->runtime_detail);
        rpt_yw_kv_str(&w, "note", "latency budget checked on the runtime's latency (measured.runtime.latency_us); "
                                  "predicted_latency_gap = predicted / runtime - 1");
        rpt_yw_end(&w);
    }
    rpt_yw_key(&w, "budgets");
    rpt_yw_map(&w);
    budget_value(&w, "memory_bytes", t->mem_budget, 1);
    budget_value(&w, "latency_us", t->lat_budget, 1e3);
    budget_value(&w, "file_bytes", t->size_budget, 1);
    budget_value(&w, "max_kl", t->max_kl, 1);
    rpt_yw_end(&w);
    rpt_yw_key(&w, "search");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "method", f->method);
    rpt_yw_kv_bool(&w, "exact", f->exact);
    rpt_yw_kv_num(&w, "eps_memory_bytes", f->eps_mem, 6);
    rpt_yw_kv_num(&w, "eps_latency_us", f->eps_lat / 1e3, 6);
    rpt_yw_kv_num(&w, "seconds", t->search_seconds, 4);
    rpt_yw_kv_int(&w, "points", f->n);
    rpt_yw_kv_int(&w, "written", written);
    rpt_yw_kv_str(&w, "latency_model", "glue + layer_scale x per-layer costs, from the profile");
    rpt_yw_key(&w, "best_predicted");
    if (t->best >= 0)
        rpt_yw_int(&w, t->best);
    else
        rpt_yw_null(&w);
    rpt_yw_kv_bool(&w, "validated", t->validated);
    rpt_yw_kv_num(&w, "memory_calibration_bytes", t->mem_calibration, 8);
    rpt_yw_kv_int(&w, "validation_rounds", t->rounds);
    budget_value(&w, "queried_memory_bytes", t->eff_mem_budget, 1);
    budget_value(&w, "queried_latency_us", t->eff_lat_budget, 1e3);
    budget_value(&w, "queried_loss", t->loss_bar, 1);
    budget_value(&w, "loss_ratio", t->loss_ratio, 1);
    rpt_yw_end(&w);
    rpt_yw_key(&w, "sensitivity");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "method", srch_sens_method_name(sens->method));
    rpt_yw_kv_str(&w, "loss", sens->loss_name);
    rpt_yw_kv_str(&w, "note", "predicted loss is the sum of per-layer losses (additive model); measured kl is "
                              "the whole plan's KL divergence from full precision");
    if (sens->method == SRCH_SENS_CALIBRATED && !isnan(sens->rank_corr)) {
        rpt_yw_kv_num(&w, "rank_correlation", sens->rank_corr, 4);
        rpt_yw_kv_str(&w, "rank_correlation_of", "leave-one-out predictions and measured KL of the measured group "
                                                 "points (sensitivity.yaml)");
    }
    rpt_yw_end(&w);
    int calib_rc = write_calibration(&w, sens, t);
    rpt_yw_key(&w, "metric");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "name", t->metric_name);
    rpt_yw_kv_num(&w, "reference", t->ref_metric, 8);
    rpt_yw_kv_bool(&w, "higher_is_better", t->higher_is_better);
    rpt_yw_end(&w);

    rpt_yw_key(&w, "points");
    rpt_yw_seq(&w);
    for (int i = 0; i < f->n; i++) {
        if (!keep[i])
            continue;
        const struct srch_point *pt = &f->pts[i];
        rpt_yw_map(&w);
        rpt_yw_kv_int(&w, "index", i);
        double size = srch_tune_size_bound(t, pt->mem);
        write_predicted(&w, pt->mem, pt->lat, pt->loss, size);
        rpt_yw_kv_bool(&w, "meets_budgets",
                       pt->mem <= t->mem_budget && pt->lat <= t->lat_budget && !(size > t->size_budget));
        for (int l = 0; l < m->n_layers; l++)
            fmt[l] = t->layers[l].fmt[pt->choice[l]];
        write_plan(&w, m, fmt);
        if (cand_of[i] >= 0)
            write_measured(&w, &t->cand[cand_of[i]]);
        rpt_yw_end(&w);
    }
    rpt_yw_end(&w);
    rpt_yw_key(&w, "baselines");
    rpt_yw_seq(&w);
    for (int c = 0; c < t->n_cand; c++) {
        const struct srch_candidate *cd = &t->cand[c];
        if (cd->point >= 0)
            continue;
        rpt_yw_map(&w);
        rpt_yw_kv_str(&w, "label", cd->label);
        write_plan(&w, m, cd->plan->fmt);
        write_predicted(&w, cd->pred_mem, cd->pred_lat, cd->pred_loss, cd->pred_size);
        write_measured(&w, cd);
        rpt_yw_end(&w);
    }
    rpt_yw_end(&w);
    rpt_yw_key(&w, "chosen");
    if (t->chosen >= 0) {
        rpt_yw_map(&w);
        rpt_yw_kv_int(&w, "index", t->cand[t->chosen].point);
        rpt_yw_kv_str(&w, "label", t->cand[t->chosen].label);
        rpt_yw_end(&w);
    } else {
        rpt_yw_null(&w);
    }
    rc = rpt_yw_close(&w);
    if (rc == MQ_OK && calib_rc < 0)
        rc = calib_rc;
done:
    free(keep);
    free(cand_of);
    free(fmt);
    return rc;
}

/* ---- reading one point's plan ---- */

static int read_plan_node(const struct mq_model *m, struct rpt_yaml *y, yaml_node_t *pn, struct mq_plan **out)
{
    yaml_node_t *def = rpt_yaml_get(y, pn, "default"), *layers = rpt_yaml_get(y, pn, "layers");
    enum mq_dtype d;
    const char *ds = rpt_yaml_scalar(def);
    if (!ds || mq_dtype_from_name(ds, &d) < 0)
        return mq_error(MQ_EFORMAT, "'%s':%d: the plan has no valid 'default' format", y->path, rpt_yaml_line(pn));
    int rc = mq_plan_uniform(m, d, out);
    if (rc < 0)
        return rc;
    if (layers && layers->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pr = layers->data.mapping.pairs.start; pr < layers->data.mapping.pairs.top; pr++) {
            yaml_node_t *k = yaml_document_get_node(&y->doc, pr->key);
            const char *name = rpt_yaml_scalar(k);
            const char *fs = rpt_yaml_scalar(yaml_document_get_node(&y->doc, pr->value));
            int li = name ? mq_model_find_layer(m, name) : -1;
            enum mq_dtype f;
            if (li < 0)
                rc = mq_error(MQ_EFORMAT, "'%s':%d: model '%s' has no quantizable layer '%s'", y->path,
                              rpt_yaml_line(k), m->path, name ? name : "?");
            else if (!fs || mq_dtype_from_name(fs, &f) < 0)
                rc = mq_error(MQ_EFORMAT, "'%s':%d: layer '%s': '%s' is not a format", y->path, rpt_yaml_line(k),
                              name, fs ? fs : "?");
            else
                (*out)->fmt[li] = f;
            if (rc < 0)
                break;
        }
    }
    if (rc == MQ_OK)
        rc = mq_plan_check(m, *out);
    if (rc < 0) {
        mq_plan_free(*out);
        *out = NULL;
    }
    return rc;
}

int rpt_front_read_plan(const struct mq_model *m, const char *path, int index, struct mq_plan **out)
{
    *out = NULL;
    struct rpt_yaml y;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    if ((rc = rpt_yaml_check_schema(&y, "front", 1)) < 0)
        goto done;
    yaml_node_t *root = rpt_yaml_root(&y);
    yaml_node_t *model = rpt_yaml_get(&y, root, "model");
    const char *layers = rpt_yaml_scalar(model ? rpt_yaml_get(&y, model, "layers") : NULL);
    if (layers && atoi(layers) != m->n_layers) {
        rc = mq_error(MQ_EINVAL, "'%s' is a front for a model of %s layers; '%s' has %d", path, layers, m->path,
                      m->n_layers);
        goto done;
    }
    if (index < 0) {
        yaml_node_t *ch = rpt_yaml_get(&y, root, "chosen");
        const char *ci = rpt_yaml_scalar(ch ? rpt_yaml_get(&y, ch, "index") : NULL);
        if (!ci) {
            rc = mq_error(MQ_ENOTFOUND, "'%s' has no chosen plan (no validated point met the budgets); give --point",
                          path);
            goto done;
        }
        index = atoi(ci);
    }
    yaml_node_t *pts = rpt_yaml_get(&y, root, "points");
    if (!pts || pts->type != YAML_SEQUENCE_NODE) {
        rc = mq_error(MQ_EFORMAT, "'%s' has no 'points' list", path);
        goto done;
    }
    for (yaml_node_item_t *it = pts->data.sequence.items.start; it < pts->data.sequence.items.top; it++) {
        yaml_node_t *pn = yaml_document_get_node(&y.doc, *it);
        const char *is = rpt_yaml_scalar(rpt_yaml_get(&y, pn, "index"));
        if (!is || atoi(is) != index)
            continue;
        yaml_node_t *plan = rpt_yaml_get(&y, pn, "plan");
        if (!plan) {
            rc = mq_error(MQ_EFORMAT, "'%s':%d: point %d has no plan", path, rpt_yaml_line(pn), index);
            goto done;
        }
        if ((rc = read_plan_node(m, &y, plan, out)) == MQ_OK) {
            char what[32];
            mq_plan_describe(*out, what, sizeof(what));
            snprintf((*out)->label, sizeof((*out)->label), "%s (point %d of %.60s)", what, index, path);
        }
        goto done;
    }
    rc = mq_error(MQ_ENOTFOUND, "'%s' has no point %d (the file lists %d points, by their 'index'; large fronts are "
                  "thinned)", path, index, (int)(pts->data.sequence.items.top - pts->data.sequence.items.start));
done:
    rpt_yaml_release(&y);
    return rc;
}

/* ---- reading a whole front, for reports ---- */

struct frd {
    struct rpt_yaml *y;
    int rc;
};

/* The number at key in map: NAN when absent or null (an error when required), an error
 * when it is not a number; .inf and .nan as YAML writes them. */
static double frd_num(struct frd *r, yaml_node_t *map, const char *key, bool required)
{
    yaml_node_t *n = map ? rpt_yaml_get(r->y, map, key) : NULL;
    const char *s = rpt_yaml_scalar(n);
    if (!s || !strcmp(s, "null") || !strcmp(s, "~") || !*s) {
        if (required && r->rc == MQ_OK)
            r->rc = mq_error(MQ_EFORMAT, "'%s':%d: '%s' is missing or null", r->y->path,
                             rpt_yaml_line(n ? n : map), key);
        return NAN;
    }
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN"))
        return NAN;
    if (!strcmp(s, ".inf") || !strcmp(s, "-.inf"))
        return s[0] == '-' ? -INFINITY : INFINITY;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno) {
        if (r->rc == MQ_OK)
            r->rc = mq_error(MQ_EFORMAT, "'%s':%d: '%s' is '%s', not a number", r->y->path, rpt_yaml_line(n),
                             key, s);
        return NAN;
    }
    return v;
}

static void frd_str(struct frd *r, yaml_node_t *map, const char *key, char *buf, size_t size)
{
    const char *s = map ? rpt_yaml_scalar(rpt_yaml_get(r->y, map, key)) : NULL;
    snprintf(buf, size, "%s", s ? s : "");
}

static bool frd_bool(struct frd *r, yaml_node_t *map, const char *key)
{
    const char *s = map ? rpt_yaml_scalar(rpt_yaml_get(r->y, map, key)) : NULL;
    return s && !strcmp(s, "true");
}

/* "q4_0 x 25, q8_0 x 19": the plan's formats by count, most common first. */
static void frd_plan(struct frd *r, yaml_node_t *plan, int n_layers, char *buf, size_t size)
{
    int count[MQ_DTYPE_COUNT] = {0}, n_named = 0;
    buf[0] = '\0';
    if (!plan)
        return;
    enum mq_dtype def, f;
    const char *ds = rpt_yaml_scalar(rpt_yaml_get(r->y, plan, "default"));
    if (!ds || mq_dtype_from_name(ds, &def) < 0) {
        if (r->rc == MQ_OK)
            r->rc = mq_error(MQ_EFORMAT, "'%s':%d: the plan has no valid 'default' format", r->y->path,
                             rpt_yaml_line(plan));
        return;
    }
    yaml_node_t *layers = rpt_yaml_get(r->y, plan, "layers");
    if (layers && layers->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *pr = layers->data.mapping.pairs.start; pr < layers->data.mapping.pairs.top; pr++) {
            yaml_node_t *v = yaml_document_get_node(&r->y->doc, pr->value);
            const char *fs = rpt_yaml_scalar(v);
            if (!fs || mq_dtype_from_name(fs, &f) < 0) {
                if (r->rc == MQ_OK)
                    r->rc = mq_error(MQ_EFORMAT, "'%s':%d: '%s' is not a format", r->y->path, rpt_yaml_line(v),
                                     fs ? fs : "?");
                return;
            }
            count[f]++;
            n_named++;
        }
    count[def] += n_layers > n_named ? n_layers - n_named : 0;
    size_t len = 0;
    for (;;) {
        int best = -1;
        for (int i = 0; i < MQ_DTYPE_COUNT; i++)
            if (count[i] > 0 && (best < 0 || count[i] > count[best]))
                best = i;
        if (best < 0 || len >= size)
            break;
        len += (size_t)snprintf(buf + len, size - len, "%s%s x %d", len ? ", " : "",
                                mq_dtype_name((enum mq_dtype)best), count[best]);
        count[best] = 0;
    }
}

static void frd_point(struct frd *r, yaml_node_t *pn, int n_layers, struct rpt_front_pt *pt)
{
    yaml_node_t *pred = rpt_yaml_get(r->y, pn, "predicted"), *meas = rpt_yaml_get(r->y, pn, "measured");
    if (!pred && r->rc == MQ_OK)
        r->rc = mq_error(MQ_EFORMAT, "'%s':%d: a point without 'predicted'", r->y->path, rpt_yaml_line(pn));
    pt->pred_mem_bytes = frd_num(r, pred, "memory_bytes", true);
    pt->pred_lat_ns = frd_num(r, pred, "latency_us", true) * 1e3;
    pt->pred_loss = frd_num(r, pred, "loss", true);
    frd_plan(r, rpt_yaml_get(r->y, pn, "plan"), n_layers, pt->plan, sizeof(pt->plan));
    pt->measured = meas && meas->type == YAML_MAPPING_NODE;
    if (!pt->measured)
        return;
    pt->mem_bytes = frd_num(r, meas, "memory_bytes", true);
    pt->lat_ns = frd_num(r, meas, "latency_us", true) * 1e3;
    pt->lat_mad_ns = frd_num(r, meas, "latency_mad_us", false) * 1e3;
    pt->kl = frd_num(r, meas, "kl", false);
    pt->metric = frd_num(r, meas, "metric", false);
    pt->meets_budgets = frd_bool(r, meas, "meets_budgets");
    pt->on_measured_front = frd_bool(r, meas, "on_measured_front");
}

/* The points of a sequence into *out (calloc'ed; *n its length). */
static void frd_points(struct frd *r, yaml_node_t *seq, int n_layers, bool baselines, struct rpt_front_pt **out,
                       int *n)
{
    *out = NULL;
    *n = 0;
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return;
    int len = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (len <= 0 || !(*out = calloc((size_t)len, sizeof(**out)))) {
        if (len > 0 && r->rc == MQ_OK)
            r->rc = mq_error(MQ_ENOMEM, "'%s': cannot allocate %d points", r->y->path, len);
        return;
    }
    for (int i = 0; i < len && r->rc == MQ_OK; i++) {
        yaml_node_t *pn = yaml_document_get_node(&r->y->doc, seq->data.sequence.items.start[i]);
        struct rpt_front_pt *pt = &(*out)[(*n)++];
        if (!pn || pn->type != YAML_MAPPING_NODE) {
            r->rc = mq_error(MQ_EFORMAT, "'%s':%d: a point is not a mapping", r->y->path, rpt_yaml_line(pn));
            break;
        }
        if (baselines) {
            pt->index = -1;
            frd_str(r, pn, "label", pt->label, sizeof(pt->label));
        } else {
            double idx = frd_num(r, pn, "index", true);
            if (r->rc == MQ_OK && !(idx >= 0 && idx <= 2e9 && idx == floor(idx)))
                r->rc = mq_error(MQ_EFORMAT, "'%s':%d: point index %g is not a whole number >= 0", r->y->path,
                                 rpt_yaml_line(pn), idx);
            pt->index = r->rc == MQ_OK ? (int)idx : -1;
        }
        frd_point(r, pn, n_layers, pt);
    }
}

int rpt_front_file_read(const char *path, struct rpt_front_file **out)
{
    *out = NULL;
    struct rpt_yaml y;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    struct frd r = {.y = &y};
    struct rpt_front_file *f = NULL;
    if ((rc = rpt_yaml_check_schema(&y, "front", 1)) < 0)
        goto done;
    if (!(f = calloc(1, sizeof(*f)))) {
        rc = mq_error(MQ_ENOMEM, "cannot read '%s'", path);
        goto done;
    }
    f->chosen = f->chosen_baseline = -1;
    snprintf(f->path, sizeof(f->path), "%s", path);
    yaml_node_t *root = rpt_yaml_root(&y);
    yaml_node_t *model = rpt_yaml_get(&y, root, "model"), *target = rpt_yaml_get(&y, root, "target");
    if (!model || model->type != YAML_MAPPING_NODE) {
        rc = mq_error(MQ_EFORMAT, "'%s': a front needs a 'model' mapping", path);
        goto done;
    }
    frd_str(&r, model, "path", f->model_path, sizeof(f->model_path));
    frd_str(&r, model, "name", f->model_name, sizeof(f->model_name));
    const char *hash = rpt_yaml_scalar(rpt_yaml_get(&y, model, "content_hash"));
    char *end = NULL;
    if (hash)
        f->model_hash = strtoull(hash, &end, 16);
    if (!hash || !*hash || *end) {
        rc = mq_error(MQ_EFORMAT, "'%s':%d: the model has no hexadecimal 'content_hash'", path, rpt_yaml_line(model));
        goto done;
    }
    double nl = frd_num(&r, model, "layers", true);
    f->n_layers = nl >= 0 && nl <= 1e7 ? (int)nl : 0;
    frd_str(&r, root, "workload", f->workload, sizeof(f->workload));
    frd_str(&r, target, "cpu", f->cpu, sizeof(f->cpu));
    frd_str(&r, target, "backend", f->backend, sizeof(f->backend));
    frd_str(&r, target, "backend_detail", f->backend_detail, sizeof(f->backend_detail));
    double th = frd_num(&r, target, "threads", false);
    f->threads = th >= 0 && th <= 1e6 ? (int)th : 0;
    f->emulated = frd_bool(&r, target, "emulated");
    yaml_node_t *budgets = rpt_yaml_get(&y, root, "budgets");
    f->mem_budget_bytes = frd_num(&r, budgets, "memory_bytes", false);
    f->lat_budget_ns = frd_num(&r, budgets, "latency_us", false) * 1e3;
    f->size_budget_bytes = frd_num(&r, budgets, "file_bytes", false);
    f->max_kl = frd_num(&r, budgets, "max_kl", false);
    if (isnan(f->max_kl))
        f->max_kl = INFINITY;
    if (isnan(f->size_budget_bytes))
        f->size_budget_bytes = INFINITY;
    if (isnan(f->mem_budget_bytes))
        f->mem_budget_bytes = INFINITY;
    if (isnan(f->lat_budget_ns))
        f->lat_budget_ns = INFINITY;
    yaml_node_t *search = rpt_yaml_get(&y, root, "search"), *sens = rpt_yaml_get(&y, root, "sensitivity");
    double np = frd_num(&r, search, "points", false);
    frd_str(&r, sens, "method", f->sens_method, sizeof(f->sens_method));
    frd_str(&r, sens, "loss", f->loss_name, sizeof(f->loss_name));
    frd_str(&r, rpt_yaml_get(&y, root, "metric"), "name", f->metric_name, sizeof(f->metric_name));
    frd_points(&r, rpt_yaml_get(&y, root, "points"), f->n_layers, false, &f->points, &f->n_points);
    frd_points(&r, rpt_yaml_get(&y, root, "baselines"), f->n_layers, true, &f->baselines, &f->n_baselines);
    f->front_points = np >= 0 && np <= 2e9 ? (int)np : f->n_points;
    yaml_node_t *chosen = rpt_yaml_get(&y, root, "chosen");
    if (r.rc == MQ_OK && chosen && chosen->type == YAML_MAPPING_NODE) {
        double ci = frd_num(&r, chosen, "index", true);
        char label[96];
        frd_str(&r, chosen, "label", label, sizeof(label));
        for (int i = 0; i < f->n_points && ci >= 0; i++)
            if (f->points[i].index == ci)
                f->chosen = i;
        for (int i = 0; i < f->n_baselines && ci < 0; i++)
            if (!strcmp(f->baselines[i].label, label))
                f->chosen_baseline = i;
    }
    if (r.rc == MQ_OK && !f->n_points)
        r.rc = mq_error(MQ_EFORMAT, "'%s' has no 'points' list", path);
    rc = r.rc;
done:
    rpt_yaml_release(&y);
    if (rc < 0) {
        rpt_front_file_free(f);
        return rc;
    }
    *out = f;
    return MQ_OK;
}

void rpt_front_file_free(struct rpt_front_file *f)
{
    if (!f)
        return;
    free(f->points);
    free(f->baselines);
    free(f);
}
