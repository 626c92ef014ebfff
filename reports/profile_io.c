/* reports/profile_io.c - profile/1 YAML. */
#include "reports/profile_io.h"

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

static void write_stats_us(struct rpt_yw *w, const struct prof_stats *s)
{
    rpt_yw_kv_int(w, "reps", s->reps);
    rpt_yw_kv_num(w, "median_us", s->median_ns / 1e3, 6);
    rpt_yw_kv_num(w, "min_us", s->min_ns / 1e3, 6);
    rpt_yw_kv_num(w, "mad_us", s->mad_ns / 1e3, 4);
    rpt_yw_kv_num(w, "rel_ci", s->rel_ci, 3);
}

static void write_memory(struct rpt_yw *w, const struct mq_memory *m)
{
    rpt_yw_map(w);
    rpt_yw_kv_int(w, "weights", (int64_t)m->weights);
    rpt_yw_kv_int(w, "kv_cache", (int64_t)m->kv_cache);
    rpt_yw_kv_int(w, "scratch", (int64_t)m->scratch);
    rpt_yw_kv_int(w, "overhead", (int64_t)m->overhead);
    rpt_yw_kv_int(w, "total", (int64_t)m->total);
    rpt_yw_end(w);
}

/* Derived metrics from the counters that exist. */
static void write_derived(struct rpt_yw *w, const struct prof_profile *p, const struct prof_cost *c)
{
    int cyc = -1, ins = -1, l1 = -1, tclk = -1;
    for (int e = 0; e < p->n_events; e++) {
        if (!strcmp(p->events[e], "PAPI_TOT_CYC"))
            cyc = e;
        else if (!strcmp(p->events[e], "PAPI_TOT_INS"))
            ins = e;
        else if (!strcmp(p->events[e], "PAPI_L1_DCM"))
            l1 = e;
        else if (!strcmp(p->events[e], "perf::TASK-CLOCK"))
            tclk = e;
    }
    rpt_yw_key(w, "derived");
    rpt_yw_map(w);
    if (cyc >= 0 && ins >= 0 && c->counters[cyc] > 0)
        rpt_yw_kv_num(w, "ipc", c->counters[ins] / c->counters[cyc], 4);
    if (ins >= 0 && c->counters[ins] > 0) {
        rpt_yw_kv_num(w, "weight_bytes_per_instruction", (double)c->weight_bytes / c->counters[ins], 4);
        if (l1 >= 0)
            rpt_yw_kv_num(w, "l1_misses_per_kinst", 1000 * c->counters[l1] / c->counters[ins], 4);
    }
    if (tclk >= 0 && c->time.median_ns > 0) {
        rpt_yw_kv_num(w, "task_clock_us", c->counters[tclk] / 1e3, 5);
        /* CPU time of all threads over wall time: how many cores were busy */
        rpt_yw_kv_num(w, "cpus_busy", c->counters[tclk] / c->time.mean_ns, 3);
    }
    rpt_yw_end(w);
}

int rpt_profile_write(const struct prof_profile *p, const char *path)
{
    struct rpt_yw w;
    if (rpt_yw_open(&w, path, "profile/1") < 0)
        return MQ_EIO;
    rpt_yw_kv_str(&w, "mixq_version", MIXQ_VERSION);
    char hash[32];
    snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)p->model_hash);
    rpt_yw_key(&w, "model");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "path", p->model_path);
    rpt_yw_kv_str(&w, "name", p->model_name);
    rpt_yw_kv_str(&w, "arch", p->arch);
    rpt_yw_kv_str(&w, "content_hash", hash);
    rpt_yw_kv_int(&w, "layers", p->n_layers);
    rpt_yw_end(&w);
    rpt_yw_kv_str(&w, "workload", p->workload.label);
    rpt_yw_key(&w, "formats");
    rpt_yw_flow_seq(&w);
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if ((p->formats >> f) & 1u)
            rpt_yw_str(&w, mq_dtype_name((enum mq_dtype)f));
    rpt_yw_end(&w);

    const struct prof_target *t = &p->target;
    rpt_yw_key(&w, "target");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "cpu", t->cpu);
    rpt_yw_kv_str(&w, "arch", t->arch);
    rpt_yw_kv_str(&w, "features", t->features);
    rpt_yw_kv_str(&w, "topology", t->topology);
    rpt_yw_kv_int(&w, "cores", t->cores);
    rpt_yw_kv_int(&w, "llc_bytes", (int64_t)t->llc_bytes);
    rpt_yw_kv_str(&w, "backend", t->backend);
    rpt_yw_kv_str(&w, "backend_detail", t->backend_detail);
    rpt_yw_kv_int(&w, "threads", t->threads);
    rpt_yw_kv_bool(&w, "pinned", t->pinned);
    rpt_yw_kv_str(&w, "pin_note", t->pin_note);
    rpt_yw_kv_bool(&w, "emulated", t->emulated);
    rpt_yw_kv_str(&w, "emulated_why", t->emulated_why);
    if (t->remote[0])
        rpt_yw_kv_str(&w, "remote", t->remote);
    rpt_yw_kv_num(&w, "timer_overhead_ns", t->timer_overhead_ns, 4);
    rpt_yw_kv_num(&w, "load_average", t->load_avg, 3);
    rpt_yw_key(&w, "limits");
    rpt_yw_map(&w);
    rpt_yw_kv_num(&w, "dram_read_gb_s", t->dram_read_gbs, 4);
    rpt_yw_kv_num(&w, "f32_fma_gflop_s", t->fma_gflops, 4);
    rpt_yw_kv_num(&w, "int8_dot_gop_s", t->int8_gops, 4);
    rpt_yw_kv_num(&w, "bf16_dot_gflop_s", t->bf16_gflops, 4);
    rpt_yw_kv_str(&w, "f32_fma_instructions", t->fma_isa);
    rpt_yw_kv_str(&w, "int8_dot_instructions", t->int8_isa);
    rpt_yw_end(&w);
    rpt_yw_end(&w);

    rpt_yw_key(&w, "counters");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "papi", p->papi_status);
    rpt_yw_key(&w, "used");
    rpt_yw_flow_seq(&w);
    for (int e = 0; e < p->n_events; e++)
        rpt_yw_str(&w, p->events[e]);
    rpt_yw_end(&w);
    rpt_yw_key(&w, "missing");
    rpt_yw_seq(&w);
    for (int e = 0; e < p->n_missing; e++) {
        rpt_yw_map(&w);
        rpt_yw_kv_str(&w, "event", p->missing[e]);
        rpt_yw_kv_str(&w, "why", p->missing_why[e]);
        rpt_yw_end(&w);
    }
    rpt_yw_end(&w);
    rpt_yw_kv_bool(&w, "multiplexed", p->multiplexed);
    rpt_yw_end(&w);

    rpt_yw_key(&w, "cache_state");
    rpt_yw_map(&w);
    rpt_yw_key(&w, "warm");
    rpt_yw_flow_seq(&w);
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if ((p->warm_formats >> f) & 1u)
            rpt_yw_str(&w, mq_dtype_name((enum mq_dtype)f));
    rpt_yw_end(&w);
    rpt_yw_kv_str(&w, "note", p->cache_note);
    rpt_yw_end(&w);

    rpt_yw_key(&w, "costs");
    rpt_yw_seq(&w);
    for (int i = 0; i < p->n_costs; i++) {
        const struct prof_cost *c = &p->costs[i];
        double ops = 2.0 * (double)c->K * (double)c->N * (double)c->M;
        rpt_yw_map(&w);
        rpt_yw_kv_int(&w, "k", c->K);
        rpt_yw_kv_int(&w, "n", c->N);
        rpt_yw_kv_int(&w, "m", c->M);
        rpt_yw_kv_str(&w, "format", mq_dtype_name(c->fmt));
        write_stats_us(&w, &c->time);
        rpt_yw_kv_int(&w, "weight_bytes", (int64_t)c->weight_bytes);
        rpt_yw_kv_int(&w, "copies", c->copies);
        rpt_yw_kv_bool(&w, "warm", c->warm);
        rpt_yw_kv_bool(&w, "cached", c->cached);
        rpt_yw_kv_num(&w, "weight_gb_s", c->time.median_ns > 0 ? (double)c->weight_bytes / c->time.median_ns : 0, 4);
        rpt_yw_kv_num(&w, "gop_s", c->time.median_ns > 0 ? ops / c->time.median_ns : 0, 4);
        rpt_yw_kv_num(&w, "ops_per_byte", c->weight_bytes ? ops / (double)c->weight_bytes : 0, 4);
        if (c->has_counters) {
            rpt_yw_key(&w, "counters");
            rpt_yw_map(&w);
            for (int e = 0; e < p->n_events; e++)
                rpt_yw_kv_num(&w, p->events[e], c->counters[e], 6);
            rpt_yw_end(&w);
            write_derived(&w, p, c);
        }
        rpt_yw_end(&w);
    }
    rpt_yw_end(&w);

    rpt_yw_key(&w, "layers");
    rpt_yw_seq(&w);
    for (int l = 0; l < p->n_layers; l++) {
        rpt_yw_map(&w);
        rpt_yw_kv_str(&w, "name", p->layer_names[l]);
        rpt_yw_kv_int(&w, "in", p->layer_in[l]);
        rpt_yw_kv_int(&w, "out", p->layer_out[l]);
        rpt_yw_key(&w, "us");
        rpt_yw_map(&w);
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            double ns = p->layer_ns[l * MQ_DTYPE_COUNT + f];
            if (!isnan(ns))
                rpt_yw_kv_num(&w, mq_dtype_name((enum mq_dtype)f), ns / 1e3, 6);
        }
        rpt_yw_end(&w);
        rpt_yw_end(&w);
    }
    rpt_yw_end(&w);

    rpt_yw_key(&w, "end_to_end");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "latency_model", "workload latency = glue_us + layer_scale x (sum of the plan's layer costs), "
                                        "fitted on the plans below");
    rpt_yw_kv_num(&w, "glue_us", p->glue_ns / 1e3, 6);
    rpt_yw_kv_num(&w, "layer_scale", p->layer_scale, 6);
    rpt_yw_kv_int(&w, "overhead_bytes", (int64_t)p->overhead_bytes);
    rpt_yw_key(&w, "plans");
    rpt_yw_seq(&w);
    for (int i = 0; i < p->n_e2e; i++) {
        const struct prof_e2e *e = &p->e2e[i];
        rpt_yw_map(&w);
        rpt_yw_kv_str(&w, "plan", mq_dtype_name(e->fmt));
        write_stats_us(&w, &e->time);
        rpt_yw_kv_bool(&w, "cached", e->cached);
        rpt_yw_kv_num(&w, "sum_layers_us", e->sum_layers_ns / 1e3, 6);
        rpt_yw_kv_num(&w, "additivity_error",
                      e->time.median_ns > 0 ? (e->time.median_ns - e->sum_layers_ns) / e->time.median_ns : 0, 4);
        rpt_yw_key(&w, "memory");
        rpt_yw_map(&w);
        rpt_yw_key(&w, "predicted");
        write_memory(&w, &e->predicted);
        rpt_yw_kv_int(&w, "measured_peak_rss", (int64_t)e->measured_rss);
        if (e->measured_rss)
            rpt_yw_kv_num(&w, "error", ((double)e->predicted.total - (double)e->measured_rss) / (double)e->measured_rss,
                          4);
        rpt_yw_end(&w);
        rpt_yw_end(&w);
    }
    rpt_yw_end(&w);
    rpt_yw_end(&w);
    rpt_yw_kv_num(&w, "wall_seconds", p->wall_seconds, 4);
    rpt_yw_kv_int(&w, "measured", p->n_measured);
    rpt_yw_kv_int(&w, "cached", p->n_cached);
    return rpt_yw_close(&w);
}

/* ---- reading ---- */

struct rd {
    struct rpt_yw *unused;
    struct rpt_yaml *y;
    int rc;
};

/* The scalar at key in map; NULL (and an error recorded) when required and absent. */
static const char *field(struct rd *r, yaml_node_t *map, const char *key, bool required)
{
    yaml_node_t *n = rpt_yaml_get(r->y, map, key);
    const char *s = rpt_yaml_scalar(n);
    if (!s && required && r->rc == MQ_OK)
        r->rc = mq_error(MQ_EFORMAT, "'%s':%d: '%s' is missing or not a value", r->y->path,
                         rpt_yaml_line(map), key);
    return s;
}

static double num(struct rd *r, yaml_node_t *map, const char *key, bool required)
{
    const char *s = field(r, map, key, required);
    if (!s)
        return NAN;
    if (!strcmp(s, ".nan"))
        return NAN;
    if (!strcmp(s, ".inf"))
        return INFINITY;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || end == s) {
        if (r->rc == MQ_OK)
            r->rc = mq_error(MQ_EFORMAT, "'%s':%d: '%s' is '%s', not a number", r->y->path,
                             rpt_yaml_line(rpt_yaml_get(r->y, map, key)), key, s);
        return NAN;
    }
    return v;
}

/* An integer field: 0 when absent (and not required); out of int64 range is an error. */
static int64_t inum(struct rd *r, yaml_node_t *map, const char *key, bool required)
{
    double v = num(r, map, key, required);
    if (isnan(v))
        return 0;
    if (!(v >= -9.2e18 && v <= 9.2e18)) {
        if (r->rc == MQ_OK)
            r->rc = mq_error(MQ_EFORMAT, "'%s':%d: '%s' = %g is out of range", r->y->path,
                             rpt_yaml_line(rpt_yaml_get(r->y, map, key)), key, v);
        return 0;
    }
    return (int64_t)v;
}

static void copy_str(struct rd *r, yaml_node_t *map, const char *key, char *buf, size_t size)
{
    const char *s = field(r, map, key, false);
    snprintf(buf, size, "%s", s ? s : "");
}

static int fmt_of(struct rd *r, const char *name, int line, enum mq_dtype *out)
{
    if (!name || mq_dtype_from_name(name, out) < 0 || !mq_dtype_get(*out)->is_plan_format) {
        if (r->rc == MQ_OK)
            r->rc = mq_error(MQ_EFORMAT, "'%s':%d: '%s' is not a format", r->y->path, line, name ? name : "");
        return -1;
    }
    return 0;
}

static void read_stats(struct rd *r, yaml_node_t *map, struct prof_stats *s)
{
    s->reps = (int)inum(r, map, "reps", true);
    s->median_ns = num(r, map, "median_us", true) * 1e3;
    s->min_ns = num(r, map, "min_us", false) * 1e3;
    s->mad_ns = num(r, map, "mad_us", false) * 1e3;
    s->rel_ci = num(r, map, "rel_ci", false);
    s->mean_ns = s->median_ns;
}

static yaml_node_t *seq_item(struct rpt_yaml *y, yaml_node_t *seq, int i)
{
    return yaml_document_get_node(&y->doc, seq->data.sequence.items.start[i]);
}

static int seq_len(const yaml_node_t *seq)
{
    return seq && seq->type == YAML_SEQUENCE_NODE
               ? (int)(seq->data.sequence.items.top - seq->data.sequence.items.start)
               : -1;
}

int rpt_profile_read(const char *path, struct prof_profile **out)
{
    *out = NULL;
    struct rpt_yaml y;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    struct prof_profile *p = NULL;
    struct rd r = {.y = &y};
    if ((rc = rpt_yaml_check_schema(&y, "profile", 1)) < 0)
        goto done;
    yaml_node_t *root = rpt_yaml_root(&y);
    yaml_node_t *model = rpt_yaml_get(&y, root, "model");
    yaml_node_t *layers = rpt_yaml_get(&y, root, "layers");
    int n_layers = seq_len(layers);
    if (!model || n_layers < 0) {
        rc = mq_error(MQ_EFORMAT, "'%s': a profile needs 'model' and a 'layers' list", path);
        goto done;
    }
    if ((rc = prof_profile_alloc(n_layers, &p)) < 0)
        goto done;
    copy_str(&r, model, "path", p->model_path, sizeof(p->model_path));
    copy_str(&r, model, "name", p->model_name, sizeof(p->model_name));
    copy_str(&r, model, "arch", p->arch, sizeof(p->arch));
    const char *hash = field(&r, model, "content_hash", true);
    if (hash)
        p->model_hash = strtoull(hash, NULL, 16);
    const char *wl = field(&r, root, "workload", true);
    if (wl && r.rc == MQ_OK && mq_workload_parse(wl, &p->workload) < 0) /* prints its line */
        r.rc = MQ_EFORMAT;
    yaml_node_t *fmts = rpt_yaml_get(&y, root, "formats");
    for (int i = 0; i < seq_len(fmts) && r.rc == MQ_OK; i++) {
        yaml_node_t *n = seq_item(&y, fmts, i);
        enum mq_dtype t;
        if (fmt_of(&r, rpt_yaml_scalar(n), rpt_yaml_line(n), &t) == 0)
            p->formats |= 1u << t;
    }
    yaml_node_t *tn = rpt_yaml_get(&y, root, "target");
    if (tn) {
        struct prof_target *t = &p->target;
        copy_str(&r, tn, "cpu", t->cpu, sizeof(t->cpu));
        copy_str(&r, tn, "arch", t->arch, sizeof(t->arch));
        copy_str(&r, tn, "features", t->features, sizeof(t->features));
        copy_str(&r, tn, "topology", t->topology, sizeof(t->topology));
        copy_str(&r, tn, "backend", t->backend, sizeof(t->backend));
        copy_str(&r, tn, "backend_detail", t->backend_detail, sizeof(t->backend_detail));
        copy_str(&r, tn, "emulated_why", t->emulated_why, sizeof(t->emulated_why));
        copy_str(&r, tn, "remote", t->remote, sizeof(t->remote));
        t->cores = (int)inum(&r, tn, "cores", false);
        t->threads = (int)inum(&r, tn, "threads", false);
        t->llc_bytes = (uint64_t)inum(&r, tn, "llc_bytes", false);
        const char *em = field(&r, tn, "emulated", false);
        t->emulated = em && !strcmp(em, "true");
        const char *pin = field(&r, tn, "pinned", false);
        t->pinned = pin && !strcmp(pin, "true");
        copy_str(&r, tn, "pin_note", t->pin_note, sizeof(t->pin_note));
        t->timer_overhead_ns = num(&r, tn, "timer_overhead_ns", false);
        t->load_avg = num(&r, tn, "load_average", false);
        yaml_node_t *lim = rpt_yaml_get(&y, tn, "limits");
        if (lim) {
            t->dram_read_gbs = num(&r, lim, "dram_read_gb_s", false);
            t->fma_gflops = num(&r, lim, "f32_fma_gflop_s", false);
            t->int8_gops = num(&r, lim, "int8_dot_gop_s", false);
            t->bf16_gflops = num(&r, lim, "bf16_dot_gflop_s", false);
            copy_str(&r, lim, "f32_fma_instructions", t->fma_isa, sizeof(t->fma_isa));
            copy_str(&r, lim, "int8_dot_instructions", t->int8_isa, sizeof(t->int8_isa));
        }
    }
    yaml_node_t *ctr = rpt_yaml_get(&y, root, "counters");
    if (ctr) {
        copy_str(&r, ctr, "papi", p->papi_status, sizeof(p->papi_status));
        yaml_node_t *used = rpt_yaml_get(&y, ctr, "used");
        for (int i = 0; i < seq_len(used) && i < PROF_MAX_EVENTS; i++) {
            const char *s = rpt_yaml_scalar(seq_item(&y, used, i));
            snprintf(p->events[p->n_events++], sizeof(p->events[0]), "%s", s ? s : "");
        }
        yaml_node_t *missing = rpt_yaml_get(&y, ctr, "missing");
        for (int i = 0; i < seq_len(missing) && i < PROF_MAX_EVENTS; i++) {
            yaml_node_t *mm = seq_item(&y, missing, i);
            copy_str(&r, mm, "event", p->missing[p->n_missing], sizeof(p->missing[0]));
            copy_str(&r, mm, "why", p->missing_why[p->n_missing], sizeof(p->missing_why[0]));
            p->n_missing++;
        }
    }
    yaml_node_t *cs = rpt_yaml_get(&y, root, "cache_state");
    if (cs) {
        yaml_node_t *wl_ = rpt_yaml_get(&y, cs, "warm");
        for (int i = 0; i < seq_len(wl_) && r.rc == MQ_OK; i++) {
            yaml_node_t *n = seq_item(&y, wl_, i);
            enum mq_dtype t;
            if (fmt_of(&r, rpt_yaml_scalar(n), rpt_yaml_line(n), &t) == 0)
                p->warm_formats |= 1u << t;
        }
        copy_str(&r, cs, "note", p->cache_note, sizeof(p->cache_note));
    }
    yaml_node_t *costs = rpt_yaml_get(&y, root, "costs");
    int n_costs = seq_len(costs);
    if (n_costs > 0) {
        p->costs = calloc((size_t)n_costs, sizeof(*p->costs));
        if (!p->costs) {
            rc = mq_error(MQ_ENOMEM, "cannot allocate %d costs", n_costs);
            goto done;
        }
        for (int i = 0; i < n_costs && r.rc == MQ_OK; i++) {
            yaml_node_t *cn = seq_item(&y, costs, i);
            struct prof_cost *c = &p->costs[p->n_costs];
            c->K = inum(&r, cn, "k", true);
            c->N = inum(&r, cn, "n", true);
            c->M = inum(&r, cn, "m", true);
            if (fmt_of(&r, field(&r, cn, "format", true), rpt_yaml_line(cn), &c->fmt) < 0)
                break;
            read_stats(&r, cn, &c->time);
            c->weight_bytes = (uint64_t)inum(&r, cn, "weight_bytes", false);
            c->copies = (int)inum(&r, cn, "copies", false);
            const char *cw = field(&r, cn, "warm", false);
            c->warm = cw && !strcmp(cw, "true");
            yaml_node_t *cc = rpt_yaml_get(&y, cn, "counters");
            if (cc) {
                c->has_counters = true;
                for (int e = 0; e < p->n_events; e++)
                    c->counters[e] = num(&r, cc, p->events[e], false);
            }
            p->n_costs++;
        }
    }
    for (int l = 0; l < n_layers && r.rc == MQ_OK; l++) {
        yaml_node_t *ln = seq_item(&y, layers, l);
        copy_str(&r, ln, "name", p->layer_names[l], sizeof(p->layer_names[l]));
        p->layer_in[l] = inum(&r, ln, "in", true);
        p->layer_out[l] = inum(&r, ln, "out", true);
        yaml_node_t *us = rpt_yaml_get(&y, ln, "us");
        if (!us || us->type != YAML_MAPPING_NODE) {
            r.rc = mq_error(MQ_EFORMAT, "'%s':%d: layer '%s' has no 'us' mapping", path, rpt_yaml_line(ln),
                            p->layer_names[l]);
            break;
        }
        for (yaml_node_pair_t *pr = us->data.mapping.pairs.start; pr < us->data.mapping.pairs.top; pr++) {
            yaml_node_t *k = yaml_document_get_node(&y.doc, pr->key);
            enum mq_dtype t;
            if (fmt_of(&r, rpt_yaml_scalar(k), rpt_yaml_line(k), &t) < 0)
                break;
            double v = num(&r, us, rpt_yaml_scalar(k), true);
            if (!(v >= 0) && r.rc == MQ_OK)
                r.rc = mq_error(MQ_EFORMAT, "'%s':%d: layer '%s' %s time %g is not a non-negative number", path,
                                rpt_yaml_line(k), p->layer_names[l], mq_dtype_name(t), v);
            p->layer_ns[l * MQ_DTYPE_COUNT + t] = v * 1e3;
        }
    }
    yaml_node_t *e2e = rpt_yaml_get(&y, root, "end_to_end");
    if (e2e && r.rc == MQ_OK) {
        p->glue_ns = num(&r, e2e, "glue_us", true) * 1e3;
        p->layer_scale = num(&r, e2e, "layer_scale", false);
        if (isnan(p->layer_scale))
            p->layer_scale = 1;
        if (!(isfinite(p->glue_ns) && p->glue_ns >= 0 && isfinite(p->layer_scale) && p->layer_scale > 0) &&
            r.rc == MQ_OK)
            r.rc = mq_error(MQ_EFORMAT, "'%s': the latency model (glue_us, layer_scale) is not finite and positive",
                            path);
        p->overhead_bytes = (uint64_t)inum(&r, e2e, "overhead_bytes", false);
        yaml_node_t *plans = rpt_yaml_get(&y, e2e, "plans");
        for (int i = 0; i < seq_len(plans) && i < MQ_DTYPE_COUNT && r.rc == MQ_OK; i++) {
            yaml_node_t *pn = seq_item(&y, plans, i);
            struct prof_e2e *e = &p->e2e[p->n_e2e];
            if (fmt_of(&r, field(&r, pn, "plan", true), rpt_yaml_line(pn), &e->fmt) < 0)
                break;
            read_stats(&r, pn, &e->time);
            e->sum_layers_ns = num(&r, pn, "sum_layers_us", false) * 1e3;
            yaml_node_t *mem = rpt_yaml_get(&y, pn, "memory");
            yaml_node_t *pred = mem ? rpt_yaml_get(&y, mem, "predicted") : NULL;
            if (pred) {
                e->predicted.weights = (uint64_t)inum(&r, pred, "weights", false);
                e->predicted.kv_cache = (uint64_t)inum(&r, pred, "kv_cache", false);
                e->predicted.scratch = (uint64_t)inum(&r, pred, "scratch", false);
                e->predicted.overhead = (uint64_t)inum(&r, pred, "overhead", false);
                e->predicted.total = (uint64_t)inum(&r, pred, "total", false);
            }
            if (mem)
                e->measured_rss = (uint64_t)inum(&r, mem, "measured_peak_rss", false);
            p->n_e2e++;
        }
    }
    p->wall_seconds = num(&r, root, "wall_seconds", false);
    rc = r.rc;
done:
    rpt_yaml_release(&y);
    if (rc < 0) {
        prof_profile_free(p);
        return rc;
    }
    *out = p;
    return MQ_OK;
}
