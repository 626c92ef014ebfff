/* search/tune.c - problem building, the front, and its validation on the target. */
#include "search/tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/progress.h"
#include "core/status.h"
#include "model/preset.h"
#include "model/quantize.h"
#include "search/budget.h"

void srch_tune_free(struct srch_tune *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_cand; i++)
        mq_plan_free(t->cand[i].plan);
    free(t->cand);
    srch_front_free(t->front);
    free(t->layers);
    free(t->layer_names);
    free(t);
}

const char *const srch_tune_presets[] = {"Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", NULL};

/* ---- the problem ---- */

static int size_model(const struct mq_model *m, const struct srch_tune_options *o, struct srch_tune *t);

static int build_problem(const struct mq_model *m, const struct prof_profile *prof,
                         const struct srch_sensitivity *sens, const struct srch_tune_options *o, struct srch_tune *t)
{
    int rc = prof_profile_matches(prof, m);
    if (rc == MQ_OK)
        rc = srch_sensitivity_matches(sens, m);
    if (rc < 0)
        return rc;
    uint8_t *pinned = malloc((size_t)m->n_layers + 1);
    t->layers = calloc((size_t)m->n_layers + 1, sizeof(*t->layers));
    t->layer_names = calloc((size_t)m->n_layers + 1, sizeof(*t->layer_names));
    if (!pinned || !t->layers || !t->layer_names) {
        free(pinned);
        return mq_error(MQ_ENOMEM, "cannot allocate a search problem of %d layers", m->n_layers);
    }
    static const struct srch_pins no_pins;
    if ((rc = srch_pins_apply(o->pins ? o->pins : &no_pins, m, pinned)) < 0)
        goto done;
    for (int l = 0; l < m->n_layers; l++) {
        const struct mq_layer *ly = &m->layers[l];
        struct srch_layer *sl = &t->layers[l];
        snprintf(t->layer_names[l], sizeof(t->layer_names[l]), "%s", ly->name);
        sl->name = t->layer_names[l];
        uint32_t menu = mq_layer_menu(ly, o->formats);
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            bool want = pinned[l] < MQ_DTYPE_COUNT ? f == pinned[l] : ((menu >> f) & 1u) != 0;
            if (!want || !mq_layer_allows(ly, (enum mq_dtype)f))
                continue;
            double ns = prof->layer_ns[l * MQ_DTYPE_COUNT + f];
            double loss = f == MQ_DTYPE_F32 ? 0.0 : sens->loss[l * MQ_DTYPE_COUNT + f];
            if (isnan(ns)) {
                if (pinned[l] < MQ_DTYPE_COUNT) {
                    rc = mq_error(MQ_EINVAL, "layer '%s' is pinned to %s, which the profile did not measure "
                                  "(profile that format too)", ly->name, mq_dtype_name((enum mq_dtype)f));
                    goto done;
                }
                continue;
            }
            if (isnan(loss)) {
                if (pinned[l] == MQ_DTYPE_COUNT)
                    continue;
                loss = 0; /* pinned, not analysed: its loss is whatever validation measures */
            }
            size_t row;
            if ((rc = mq_dtype_row_bytes((enum mq_dtype)f, ly->n_in, &row)) < 0)
                goto done;
            sl->fmt[sl->n] = (enum mq_dtype)f;
            sl->mem[sl->n] = (double)row * (double)ly->n_out;
            sl->lat[sl->n] = prof->layer_scale * ns;
            sl->loss[sl->n] = loss;
            sl->n++;
        }
        if (sl->n == 0) {
            rc = mq_error(MQ_EINVAL, "layer '%s' has no format that is asked for, allowed, profiled and analysed",
                          ly->name);
            goto done;
        }
    }
    /* what every plan pays: memory apart from the quantizable weights, the glue time */
    struct mq_plan *p32;
    struct mq_memory mem;
    if ((rc = mq_plan_uniform(m, MQ_DTYPE_F32, &p32)) < 0)
        goto done;
    rc = m->runner->memory(m, p32, &prof->workload, &mem);
    uint64_t w32 = mq_plan_weight_bytes(m, p32);
    mq_plan_free(p32);
    if (rc < 0)
        goto done;
    /* what the memory model misses of a running process (allocator slack, thread stacks,
     * pages touched by the session): the mean residual of the profile's peak-RSS runs */
    double resid = 0;
    int n_resid = 0;
    for (int i = 0; i < prof->n_e2e; i++) {
        const struct prof_e2e *e = &prof->e2e[i];
        if (!e->measured_rss)
            continue;
        resid += (double)e->measured_rss - (double)(e->predicted.weights + e->predicted.kv_cache +
                                                    e->predicted.scratch + prof->overhead_bytes);
        n_resid++;
    }
    t->mem_calibration = n_resid ? resid / n_resid : 0;
    double mem0 = (double)(mem.weights - w32) + (double)mem.kv_cache + (double)mem.scratch +
                  (double)prof->overhead_bytes + t->mem_calibration;
    t->problem = (struct srch_problem){.n_layers = m->n_layers, .layers = t->layers,
                                       .mem0 = mem0 > 0 ? mem0 : 0,
                                       .lat0 = prof->glue_ns > 0 ? prof->glue_ns : 0};
    if ((rc = size_model(m, o, t)) < 0)
        goto done;
done:
    free(pinned);
    return rc;
}

/* The exact size of the file plan p writes. */
static int file_bytes(const struct mq_model *m, const struct srch_tune_options *o, const struct mq_plan *p,
                      double *bytes)
{
    uint64_t b;
    int rc = o->file_bytes ? o->file_bytes(o->file_bytes_ctx, p, &b) : mq_quantize_file_bytes(m, p, NULL, NULL, &b);
    *bytes = rc == MQ_OK ? (double)b : NAN;
    return rc;
}

/* The file size model (tune.h): size_base from the all-f32 plan's file, less its layers'
 * aligned bytes, plus an allowance of each layer's name and 32 bytes for provenance keys
 * that list the layers not in a plan's most common format (the all-f32 plan lists none);
 * and the memory budget a size budget implies. */
static double size_budget_of(const struct srch_tune_options *o)
{
    return o->size_budget > 0 ? o->size_budget : SRCH_NO_BUDGET;
}

static int size_model(const struct mq_model *m, const struct srch_tune_options *o, struct srch_tune *t)
{
    t->size_base = NAN;
    t->mem_from_size = INFINITY;
    if (m->kind != MQ_MODEL_LLAMA || !m->gguf) {
        if (isfinite(size_budget_of(o)))
            return mq_error(MQ_EINVAL, "--size bounds the GGUF file a plan writes, and '%s' is not a GGUF model "
                            "(use --budget for its memory)", m->path);
        return MQ_OK;
    }
    struct mq_plan *p32;
    double fb;
    int rc = mq_plan_uniform(m, MQ_DTYPE_F32, &p32);
    if (rc == MQ_OK)
        rc = file_bytes(m, o, p32, &fb);
    mq_plan_free(p32);
    if (rc < 0)
        return rc;
    double base = fb;
    for (int l = 0; l < m->n_layers; l++) {
        const struct mq_layer *ly = &m->layers[l];
        base -= (double)(((uint64_t)ly->n_in * (uint64_t)ly->n_out * 4 + 31) / 32 * 32);
        base += (double)strlen(ly->name) + 32;
    }
    t->size_base = base;
    if (isfinite(size_budget_of(o)))
        t->mem_from_size = size_budget_of(o) - base - 31.0 * m->n_layers + t->problem.mem0;
    return MQ_OK;
}

double srch_tune_size_bound(const struct srch_tune *t, double pred_mem)
{
    return t->size_base + (pred_mem - t->problem.mem0) + 31.0 * t->problem.n_layers;
}
#define size_bound srch_tune_size_bound

int srch_tune_point_plan(const struct mq_model *m, const struct srch_tune *t, int i, struct mq_plan **out)
{
    int rc = mq_plan_uniform(m, MQ_DTYPE_F32, out);
    if (rc < 0)
        return rc;
    const struct srch_point *pt = &t->front->pts[i];
    for (int l = 0; l < m->n_layers; l++)
        (*out)->fmt[l] = t->layers[l].fmt[pt->choice[l]];
    char what[32];
    mq_plan_describe(*out, what, sizeof(what));
    snprintf((*out)->label, sizeof((*out)->label), "front point %d (%s)", i, what);
    return MQ_OK;
}

/* ---- validation ---- */

struct run_ctx {
    const struct mq_model *m;
    void *session;
};

static int run_once(void *arg)
{
    struct run_ctx *r = arg;
    return r->m->runner->session_run(r->session);
}

static bool meets(const struct srch_tune *t, double mem, double lat, double size)
{
    return mem <= t->mem_budget && lat <= t->lat_budget && !(size > t->size_budget);
}

/* Predicted objectives of any plan (baselines too), from the problem's tables. */
static void predict(const struct srch_tune *t, const struct mq_plan *p, double *mem, double *lat, double *loss)
{
    *mem = t->problem.mem0;
    *lat = t->problem.lat0;
    *loss = t->problem.loss0;
    for (int l = 0; l < t->problem.n_layers; l++) {
        const struct srch_layer *sl = &t->layers[l];
        int c = -1;
        for (int k = 0; k < sl->n; k++)
            if (sl->fmt[k] == p->fmt[l])
                c = k;
        if (c < 0) {
            *mem = *lat = *loss = NAN;
            return;
        }
        *mem += sl->mem[c];
        *lat += sl->lat[c];
        *loss += sl->loss[c];
    }
}

static int measure(const struct mq_model *m, struct be_backend *be, void *q, const struct prof_profile *prof,
                   const struct srch_tune_options *o, struct srch_candidate *c)
{
    int rc;
    if (o->n_targets > 0) { /* every target; the plan's figures are its worst target's */
        c->n_targets = o->n_targets;
        c->worst_target = 0;
        c->mem = 0;
        c->mem_measured = true;
        for (int i = 0; i < o->n_targets; i++) {
            struct srch_target_meas *tm = &c->tgt[i];
            double mem = 0;
            bool measured = false;
            if ((rc = o->measure_target(o->measure_ctx, i, c->plan, &tm->lat, &mem, &measured)) < 0)
                return rc;
            if (!measured) {
                struct mq_memory mm;
                if ((rc = m->runner->memory(m, c->plan, &prof->workload, &mm)) < 0)
                    return rc;
                mem = (double)(mm.weights + mm.kv_cache + mm.scratch + prof->overhead_bytes);
            }
            tm->mem = mem;
            tm->mem_measured = measured;
            tm->meets = mem <= o->mem_budget && tm->lat.median_ns <= o->lat_budget;
            c->mem = fmax(c->mem, mem);
            c->mem_measured &= measured;
            if (tm->lat.median_ns > c->tgt[c->worst_target].lat.median_ns)
                c->worst_target = i;
        }
        c->lat = c->tgt[c->worst_target].lat;
        goto quality;
    }
    if (o->measure_plan) {
        double mem = 0;
        bool measured = false;
        if ((rc = o->measure_plan(o->measure_ctx, c->plan, &c->lat, &mem, &measured)) < 0)
            return rc;
        if (measured) {
            c->mem = mem;
            c->mem_measured = true;
        } else {
            struct mq_memory mm;
            if ((rc = m->runner->memory(m, c->plan, &prof->workload, &mm)) < 0)
                return rc;
            c->mem = (double)(mm.weights + mm.kv_cache + mm.scratch + prof->overhead_bytes);
        }
        goto quality;
    }
    struct run_ctx r = {.m = m};
    c->plan->timing_only = true; /* timed only (its KL is measured below, on its own conversion) */
    rc = m->runner->session_new(m, c->plan, be, &prof->workload, &r.session);
    c->plan->timing_only = false;
    if (rc < 0)
        return rc;
    struct prof_config mc = {.min_reps = 5, .max_seconds = o->max_seconds > 0 ? o->max_seconds : 2.0};
    rc = prof_measure(run_once, &r, &mc, &c->lat);
    m->runner->session_free(r.session);
    if (rc < 0)
        return rc;
    if (o->probe_memory && o->backend) {
        uint64_t peak, baseline;
        if ((rc = prof_memory_probe(m->path, m->input_shapes, o->backend, be_threads(be), &prof->workload, c->plan, &peak,
                                    &baseline)) < 0)
            return rc;
        c->mem = (double)peak;
        c->mem_measured = true;
    } else {
        struct mq_memory mem;
        if ((rc = m->runner->memory(m, c->plan, &prof->workload, &mem)) < 0)
            return rc;
        c->mem = (double)(mem.weights + mem.kv_cache + mem.scratch + prof->overhead_bytes);
    }
quality:;
    struct mq_quality qr;
    if ((rc = m->runner->quality_eval(q, c->plan, &qr)) < 0)
        return rc;
    c->loss = qr.loss;
    c->loss_stderr = qr.loss_stderr;
    c->metric = qr.metric;
    if (o->runtime_measure) {
        if ((rc = o->runtime_measure(o->runtime_ctx, c->plan, &c->rt)) < 0)
            return rc;
        c->has_rt = true;
    }
    return MQ_OK;
}

double srch_cand_lat(const struct srch_candidate *c)
{
    return c->has_rt ? c->rt.lat.median_ns : c->lat.median_ns;
}

static int add_candidate(struct srch_tune *t, int *cap, struct mq_plan *plan, int point, const char *label)
{
    for (int i = 0; i < t->n_cand; i++) { /* the same plan twice is measured once */
        if (!memcmp(t->cand[i].plan->fmt, plan->fmt, (size_t)plan->n_layers * sizeof(*plan->fmt))) {
            struct srch_candidate *c = &t->cand[i];
            if (point >= 0 && c->point < 0) { /* a baseline that is also a front point */
                char was[sizeof(c->label)];
                snprintf(was, sizeof(was), "%s", c->label);
                snprintf(c->label, sizeof(c->label), "%s (= %.60s)", label, was);
                c->point = point;
            } else if (point < 0 && c->point >= 0) {
                size_t n = strlen(c->label);
                snprintf(c->label + n, sizeof(c->label) - n, " (= %.60s)", label);
            }
            mq_plan_free(plan);
            return MQ_OK;
        }
    }
    if (t->n_cand == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        struct srch_candidate *n = realloc(t->cand, (size_t)nc * sizeof(*n));
        if (!n) {
            mq_plan_free(plan);
            return mq_error(MQ_ENOMEM, "cannot allocate candidates");
        }
        t->cand = n;
        *cap = nc;
    }
    struct srch_candidate *c = &t->cand[t->n_cand++];
    memset(c, 0, sizeof(*c));
    c->plan = plan;
    c->point = point;
    snprintf(c->label, sizeof(c->label), "%s", label);
    predict(t, plan, &c->pred_mem, &c->pred_lat, &c->pred_loss);
    c->pred_size = size_bound(t, c->pred_mem);
    c->size = NAN;
    c->pred_meets = meets(t, c->pred_mem, c->pred_lat, c->pred_size);
    return MQ_OK;
}

/* The uniform plan of fmt with the pins applied; f16 where fmt cannot apply. */
static int baseline_plan(const struct mq_model *m, const struct srch_tune *t, enum mq_dtype fmt, struct mq_plan **out)
{
    int rc = mq_plan_uniform(m, fmt, out);
    if (rc < 0)
        return rc;
    for (int l = 0; l < m->n_layers; l++) {
        const struct srch_layer *sl = &t->layers[l];
        bool ok = false;
        for (int k = 0; k < sl->n; k++)
            ok |= sl->fmt[k] == fmt;
        if (!ok)
            (*out)->fmt[l] = sl->n == 1 ? sl->fmt[0] : MQ_DTYPE_F16;
    }
    snprintf((*out)->label, sizeof((*out)->label), "uniform %s", mq_dtype_name(fmt));
    return MQ_OK;
}

int srch_tune_search(const struct mq_model *m, const struct prof_profile *prof, const struct srch_sensitivity *sens,
                     const struct srch_tune_options *o, struct srch_tune **out)
{
    *out = NULL;
    struct srch_tune *t = calloc(1, sizeof(*t));
    if (!t)
        return mq_error(MQ_ENOMEM, "cannot allocate a tuning result");
    t->chosen = -1;
    t->best = -1;
    t->mem_budget = t->eff_mem_budget = o->mem_budget;
    t->lat_budget = t->eff_lat_budget = o->lat_budget;
    t->size_budget = size_budget_of(o);
    t->max_kl = o->has_max_kl ? o->max_kl : SRCH_NO_BUDGET;
    t->loss_bar = t->loss_ratio = NAN;
    t->ref_metric = NAN;
    if (o->has_max_kl && !(o->max_kl >= 0 && isfinite(o->max_kl))) {
        free(t);
        return mq_error(MQ_EINVAL, "KL bound %g: want a finite number >= 0", o->max_kl);
    }
    snprintf(t->loss_name, sizeof(t->loss_name), "%s", sens->loss_name);
    snprintf(t->metric_name, sizeof(t->metric_name), "%s", sens->metric_name);
    t->higher_is_better = sens->higher_is_better;
    int rc = build_problem(m, prof, sens, o, t);
    if (rc < 0)
        goto fail;
    uint64_t t0 = prof_now_ns();
    if ((rc = srch_front_compute(&t->problem, NULL, &t->front)) < 0)
        goto fail;
    /* impossible budgets are an error naming the smallest and the fastest plans */
    struct srch_extremes ex;
    if ((rc = srch_extremes_compute(&t->problem, &ex)) < 0)
        goto fail;
    /* a size budget is a memory budget on the search's memory axis (tune.h) */
    double mem_b = fmin(o->mem_budget, t->mem_from_size);
    if (isfinite(t->size_budget) && size_bound(t, ex.smallest.mem) > t->size_budget) {
        char b[32], s[32];
        srch_budget_format_bytes(t->size_budget, false, b, sizeof(b));
        srch_budget_format_bytes(size_bound(t, ex.smallest.mem), false, s, sizeof(s));
        rc = mq_error(MQ_ERANGE, "file size budget %s is below the smallest plan's file, %s (every layer in its "
                      "smallest format)", b, s);
    } else {
        rc = srch_budget_check(&ex, t->front, mem_b, o->lat_budget, &t->best);
    }
    srch_extremes_release(&ex);
    if (rc < 0)
        goto fail;
    t->eff_mem_budget = mem_b;
    if (isfinite(mem_b) || isfinite(o->lat_budget))
        srch_front_refine(&t->problem, t->front, mem_b, o->lat_budget, &t->best);
    /* a KL bound on a KL table: the best as predicted is the fastest within it */
    if (o->has_max_kl && !strcmp(t->loss_name, "kl")) {
        t->loss_bar = o->max_kl;
        int b;
        if (srch_front_fastest(t->front, mem_b, o->lat_budget, o->max_kl, &b) == MQ_OK)
            t->best = b;
    }
    t->search_seconds = (double)(prof_now_ns() - t0) * 1e-9;
    *out = t;
    return MQ_OK;
fail:
    srch_tune_free(t);
    return rc;
}

/* Adds the front points nearest the (effective) budgets that are not measured yet. */
static int add_nearest(const struct mq_model *m, struct srch_tune *t, int *cap, double mem_budget, double lat_budget,
                       int k)
{
    int *idx = malloc((size_t)k * sizeof(int)), n_idx = 0;
    if (!idx)
        return mq_error(MQ_ENOMEM, "cannot allocate validation points");
    int rc = srch_front_nearest(t->front, mem_budget, lat_budget, k, idx, &n_idx);
    for (int i = 0; i < n_idx && rc == MQ_OK; i++) {
        struct mq_plan *p;
        char label[96];
        snprintf(label, sizeof(label), "front point %d", idx[i]);
        if ((rc = srch_tune_point_plan(m, t, idx[i], &p)) == MQ_OK)
            rc = add_candidate(t, cap, p, idx[i], label);
    }
    free(idx);
    return rc;
}

/* Is a faster than b as measured: latency, then memory, then loss. */
static bool faster_measured(const struct srch_candidate *a, const struct srch_candidate *b)
{
    if (srch_cand_lat(a) != srch_cand_lat(b))
        return srch_cand_lat(a) < srch_cand_lat(b);
    if (a->mem != b->mem)
        return a->mem < b->mem;
    return a->loss < b->loss;
}

void srch_tune_choose(struct srch_tune *t)
{
    bool bound = isfinite(t->max_kl);
    t->chosen = -1;
    for (int i = 0; i < t->n_cand; i++) {
        const struct srch_candidate *a = &t->cand[i];
        if (a->point < 0 || !a->meets)
            continue;
        if (t->chosen < 0 || (bound ? faster_measured(a, &t->cand[t->chosen]) : a->loss < t->cand[t->chosen].loss))
            t->chosen = i;
    }
}

void srch_tune_kl_reach(const struct srch_tune *t, int *smallest, int *under)
{
    *smallest = *under = -1;
    for (int i = 0; i < t->n_cand; i++) {
        const struct srch_candidate *c = &t->cand[i];
        if (isnan(c->loss))
            continue;
        if (*smallest < 0 || c->loss < t->cand[*smallest].loss)
            *smallest = i;
        if (c->loss <= t->max_kl && (*under < 0 || faster_measured(c, &t->cand[*under])))
            *under = i;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double srch_tune_loss_ratio(const struct srch_tune *t, double max_kl)
{
    double dist[3], ratio[3];
    int n = 0;
    for (int i = 0; i < t->n_cand; i++) {
        const struct srch_candidate *c = &t->cand[i];
        if (!(c->pred_loss > 0 && isfinite(c->pred_loss) && c->loss > 0 && isfinite(c->loss)))
            continue;
        double d = max_kl > 0 ? fabs(log(c->loss / max_kl)) : c->loss;
        int at = n < 3 ? n++ : 3; /* insertion into the 3 nearest, by distance */
        while (at > 0 && dist[at - 1] > d) {
            if (at < 3) {
                dist[at] = dist[at - 1];
                ratio[at] = ratio[at - 1];
            }
            at--;
        }
        if (at < 3) {
            dist[at] = d;
            ratio[at] = c->loss / c->pred_loss;
        }
    }
    if (!n)
        return NAN;
    qsort(ratio, (size_t)n, sizeof(*ratio), cmp_double);
    return n == 2 ? sqrt(ratio[0] * ratio[1]) : ratio[n / 2];
}

/* The q-quantile (0.5: median, 1: worst) over the measured front points of the
 * predictions' miss, for each budget that at least one of them missed as measured
 * (memory: bytes over the prediction, at least 0; latency: the measured/predicted ratio,
 * at least 1); 0 and 1 for a budget none missed. */
static int miss_quantiles(const struct srch_tune *t, const struct srch_tune_options *o, double q, double *dm,
                          double *rl)
{
    *dm = 0;
    *rl = 1;
    double *mv = malloc((2 * (size_t)t->n_cand + 1) * sizeof(double)), *lv = mv + t->n_cand;
    if (!mv)
        return mq_error(MQ_ENOMEM, "cannot allocate the predictions' misses");
    int n_m = 0, n_l = 0;
    bool miss_mem = false, miss_lat = false;
    for (int i = 0; i < t->n_cand; i++) {
        const struct srch_candidate *c = &t->cand[i];
        if (c->point < 0)
            continue;
        miss_mem |= c->mem > o->mem_budget;
        miss_lat |= srch_cand_lat(c) > o->lat_budget;
        if (isfinite(c->mem - c->pred_mem))
            mv[n_m++] = c->mem - c->pred_mem;
        if (c->pred_lat > 0 && isfinite(srch_cand_lat(c) / c->pred_lat))
            lv[n_l++] = srch_cand_lat(c) / c->pred_lat;
    }
    qsort(mv, (size_t)n_m, sizeof(*mv), cmp_double);
    qsort(lv, (size_t)n_l, sizeof(*lv), cmp_double);
    if (miss_mem && n_m)
        *dm = fmax(0, mv[(int)ceil(q * (n_m - 1))]);
    if (miss_lat && n_l)
        *rl = fmax(1, lv[(int)ceil(q * (n_l - 1))]);
    free(mv);
    return MQ_OK;
}

/* Measures the candidates from *done on (their latency, memory, file size and quality) and
 * whether they meet the budgets. */
static int measure_new(const struct mq_model *m, struct be_backend *be, void *q, const struct prof_profile *prof,
                       const struct srch_tune_options *o, struct srch_tune *t, int *done, int round)
{
    int rc;
    struct mq_progress pr; /* for its estimate: these lines are log lines, not a tty line */
    mq_progress_init(&pr, false, "validating", t->n_cand - *done);
    for (int i = *done; i < t->n_cand; i++) {
        struct srch_candidate *c = &t->cand[i];
        char left[48];
        mq_progress_left_text(&pr, left, sizeof(left));
        if (o->progress)
            mq_info("validating %d/%d: %s%s%s", i + 1, t->n_cand, c->label, left[0] ? "; " : "", left);
        if ((rc = measure(m, be, q, prof, o, c)) < 0)
            return rc;
        mq_progress_step(&pr, i + 1 - *done, false, NULL);
        if (isfinite(t->size_base)) {
            /* a llama.cpp preset is llama-quantize's file (no mixq keys); a plan of
             * mixq's, the file mixq quantize writes */
            bool preset = c->point < 0 && c->plan->ftype >= 0;
            uint64_t b = 0;
            if (preset && (rc = mq_quantize_file_bytes(m, c->plan, NULL, NULL, &b)) < 0)
                return rc;
            if (!preset && (rc = file_bytes(m, o, c->plan, &c->size)) < 0)
                return rc;
            if (preset)
                c->size = (double)b;
        }
        c->meets = meets(t, c->mem, srch_cand_lat(c), c->size) && !(c->loss > t->max_kl);
        c->round = round;
    }
    *done = t->n_cand;
    return MQ_OK;
}

/* The front point of index i, unless it is measured already. */
static int add_point(const struct mq_model *m, struct srch_tune *t, int *cap, int i)
{
    struct mq_plan *p;
    char label[96];
    snprintf(label, sizeof(label), "front point %d", i);
    int rc = srch_tune_point_plan(m, t, i, &p);
    return rc < 0 ? rc : add_candidate(t, cap, p, i, label);
}

/* A KL bound: the predicted loss bar from the ratio fitted on what is measured (tune.h; NaN
 * where there is none: assumed 1 for a KL table), and that ratio; the bar is NaN where there
 * is none to fit on a table that is not KL. */
static double kl_bar(const struct srch_tune *t, double *ratio)
{
    *ratio = srch_tune_loss_ratio(t, t->max_kl);
    if (isnan(*ratio) && !strcmp(t->loss_name, "kl"))
        return t->max_kl;
    return t->max_kl / *ratio;
}

/* A KL bound: the points srch_front_nearest_loss gives at the bar (NaN: those nearest the
 * budgets), topped up to k with those nearest the budgets, and with `extremes` the lowest-loss
 * point within the budgets and the lowest-loss point of the front. */
static int add_near_bar(const struct mq_model *m, struct srch_tune *t, int *cap, double mem_budget,
                        double lat_budget, double bar, int k, bool extremes)
{
    t->loss_bar = bar;
    int *idx = malloc((size_t)k * sizeof(int)), n_idx = 0, rc = MQ_OK;
    if (!idx)
        return mq_error(MQ_ENOMEM, "cannot allocate validation points");
    if (!isnan(bar))
        rc = srch_front_nearest_loss(t->front, mem_budget, lat_budget, bar, k, idx, &n_idx);
    for (int i = 0; i < n_idx && rc == MQ_OK; i++)
        rc = add_point(m, t, cap, idx[i]);
    free(idx);
    if (rc == MQ_OK && n_idx < k)
        rc = add_nearest(m, t, cap, mem_budget, lat_budget, k - n_idx);
    int b;
    if (rc == MQ_OK && extremes && srch_front_best(t->front, mem_budget, lat_budget, &b) == MQ_OK)
        rc = add_point(m, t, cap, b);
    if (rc == MQ_OK && extremes && srch_front_best(t->front, SRCH_NO_BUDGET, SRCH_NO_BUDGET, &b) == MQ_OK)
        rc = add_point(m, t, cap, b);
    return rc;
}

static bool point_measured(const struct srch_tune *t, int point)
{
    for (int i = 0; i < t->n_cand; i++)
        if (t->cand[i].point == point)
            return true;
    return false;
}

int srch_tune_validate(const struct mq_model *m, struct be_backend *be, const struct prof_profile *prof,
                       const struct srch_tune_options *o, struct srch_tune *t)
{
    void *q = NULL;
    int cap = t->n_cand, rc;
    if (o->n_targets < 0 || o->n_targets > SRCH_TUNE_MAX_TARGETS || (o->n_targets && !o->measure_target))
        return mq_error(MQ_EINVAL, "%d targets: want 0..%d, with a measure_target", o->n_targets,
                        SRCH_TUNE_MAX_TARGETS);
    t->n_targets = o->n_targets;
    snprintf(t->runtime_name, sizeof(t->runtime_name), "%s",
             o->runtime_measure && o->runtime_name ? o->runtime_name : "");
    snprintf(t->runtime_detail, sizeof(t->runtime_detail), "%s",
             o->runtime_measure && o->runtime_detail ? o->runtime_detail : "");
    for (int i = 0; i < o->n_targets; i++)
        snprintf(t->target_labels[i], sizeof(t->target_labels[i]), "%s",
                 o->target_labels[i] ? o->target_labels[i] : "?");
    int k = o->n_validate >= 8 ? o->n_validate : 8;
    double mem_b = fmin(o->mem_budget, t->mem_from_size); /* with the size budget's */
    bool bound = isfinite(t->max_kl);
    /* the points to measure: nearest the budgets (a KL bound: nearest its bar, once the
     * baselines are measured), then the baselines */
    if (!bound && (rc = add_nearest(m, t, &cap, mem_b, o->lat_budget, k)) < 0)
        goto fail;
    /* uniform f16 and q8_0; GGUF models: llama.cpp's presets users deploy (srch_tune_presets);
     * others: uniform q4_0 */
    enum mq_dtype uniform[] = {MQ_DTYPE_F16, MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_0};
    bool presets = m->kind == MQ_MODEL_LLAMA && m->gguf;
    rc = MQ_OK;
    for (size_t i = 0; i < (presets ? 2u : 3u) && rc == MQ_OK; i++) {
        struct mq_plan *p;
        if ((rc = baseline_plan(m, t, uniform[i], &p)) == MQ_OK)
            rc = add_candidate(t, &cap, p, -1, p->label);
    }
    for (int i = 0; presets && srch_tune_presets[i] && rc == MQ_OK; i++) {
        struct mq_plan *p;
        if ((rc = mq_plan_preset(m, srch_tune_presets[i], &p)) == MQ_OK)
            rc = add_candidate(t, &cap, p, -1, p->label);
    }
    if (rc < 0)
        goto fail;

    uint64_t t0 = prof_now_ns();
    struct mq_quality_config qc = o->quality;
    qc.progress = o->progress;
    if ((rc = m->runner->quality_new(m, be, &qc, &q)) < 0)
        goto fail;
    double eff_mem = mem_b, eff_lat = o->lat_budget;
    int done = 0;
    if (bound) { /* the baselines' measured KL against their predicted loss places the bar */
        if ((rc = measure_new(m, be, q, prof, o, t, &done, 0)) < 0)
            goto fail;
        double bar = kl_bar(t, &t->loss_ratio);
        if (o->progress)
            mq_info("KL bound %.4g: the front is queried at predicted %s %.4g (measured/predicted %.3g)", t->max_kl,
                    t->loss_name, bar, t->loss_ratio);
        if ((rc = add_near_bar(m, t, &cap, eff_mem, eff_lat, bar, k, true)) < 0)
            goto fail;
    }
    for (int round = 0;; round++) {
        /* measure what is new on the target */
        if ((rc = measure_new(m, be, q, prof, o, t, &done, round)) < 0)
            goto fail;
        srch_tune_choose(t);
        t->rounds = round + 1;
        if (round + 1 >= SRCH_TUNE_MAX_ROUNDS || (t->chosen >= 0 && !bound))
            break;
        int smallest = -1, under = -1;
        if (bound)
            srch_tune_kl_reach(t, &smallest, &under);
        /* none met the budgets as measured: the predictions were off. Tighten each budget that
         * a measured front point missed by the predictions' miss over the measured front
         * points (memory: bytes over the prediction; latency: the ratio over it): their
         * median after the first round, so that one disturbed measurement does not tighten
         * the budget past every plan, the worst after that; then measure the points nearest
         * the tightened budgets. Stop when they leave no point. A KL bound: only where some
         * plan is within it (none is: the bound is below every plan's reach, even the most
         * precise one's: stop). */
        double nm = eff_mem, nl = eff_lat;
        if (bound && t->chosen < 0 && under < 0)
            break;
        if (t->chosen < 0) {
            double dm, rl;
            if ((rc = miss_quantiles(t, o, round == 0 ? 0.5 : 1.0, &dm, &rl)) < 0)
                goto fail;
            nm = isfinite(mem_b) ? fmin(eff_mem, mem_b - dm) : eff_mem;
            nl = isfinite(o->lat_budget) ? fmin(eff_lat, o->lat_budget / rl) : eff_lat;
        }
        int best;
        if (!bound) {
            if (!(nm < eff_mem || nl < eff_lat) || srch_front_best(t->front, nm, nl, &best) != MQ_OK)
                break;
        } else if (t->chosen >= 0) {
            /* steering: the bar refitted on every measured plan; another round only where its
             * fastest point is predicted faster than the chosen plan and not measured yet */
            double r, bar = kl_bar(t, &r);
            if (!(srch_front_fastest(t->front, nm, nl, isnan(bar) ? -1 : bar, &best) == MQ_OK &&
                  !point_measured(t, best) && t->front->pts[best].lat < t->cand[t->chosen].pred_lat))
                break;
        }
        eff_mem = nm;
        eff_lat = nl;
        int before = t->n_cand;
        if (bound) {
            double bar = kl_bar(t, &t->loss_ratio);
            if (o->progress)
                mq_info("%s; querying the front again at predicted %s %.4g (measured/predicted %.3g), %.4g MB, "
                        "%.4g us", t->chosen >= 0 ? "a faster plan may be within the KL bound"
                        : "no measured point met the budgets", t->loss_name, bar, t->loss_ratio, eff_mem / 1e6,
                        eff_lat / 1e3);
            rc = add_near_bar(m, t, &cap, eff_mem, eff_lat, bar, k, false);
        } else {
            if (o->progress)
                mq_info("no measured point met the budgets; querying the front again with %.4g MB, %.4g us "
                        "(the predictions' %s miss taken off)", eff_mem / 1e6, eff_lat / 1e3,
                        round == 0 ? "median" : "worst");
            rc = add_nearest(m, t, &cap, eff_mem, eff_lat, k);
        }
        if (rc < 0)
            goto fail;
        if (t->n_cand == before)
            break;
    }
    t->eff_mem_budget = eff_mem;
    t->eff_lat_budget = eff_lat;
    struct mq_quality qr;
    if ((rc = m->runner->quality_eval(q, t->cand[0].plan, &qr)) < 0)
        goto fail;
    snprintf(t->metric_name, sizeof(t->metric_name), "%s", qr.metric_name);
    t->higher_is_better = qr.higher_is_better;
    t->ref_metric = qr.ref_metric;
    t->validate_seconds = (double)(prof_now_ns() - t0) * 1e-9;
    t->validated = true;
    /* the front again, on measured values */
    for (int i = 0; i < t->n_cand; i++) {
        struct srch_candidate *a = &t->cand[i];
        a->on_measured_front = true;
        for (int j = 0; j < t->n_cand && a->on_measured_front; j++) {
            const struct srch_candidate *b = &t->cand[j];
            double la = srch_cand_lat(a), lb = srch_cand_lat(b);
            if (j != i && b->mem <= a->mem && lb <= la && b->loss <= a->loss &&
                (b->mem < a->mem || lb < la || b->loss < a->loss))
                a->on_measured_front = false;
        }
    }
fail:
    if (q)
        m->runner->quality_free(q);
    return rc;
}

int srch_tune_run(const struct mq_model *m, struct be_backend *be, const struct prof_profile *prof,
                  const struct srch_sensitivity *sens, const struct srch_tune_options *o, struct srch_tune **out)
{
    int rc = srch_tune_search(m, prof, sens, o, out);
    if (rc == MQ_OK && (rc = srch_tune_validate(m, be, prof, o, *out)) < 0) {
        srch_tune_free(*out);
        *out = NULL;
    }
    return rc;
}

int srch_tune_worst_profile(const struct prof_profile *const *profs, int n, struct prof_profile **out)
{
    *out = NULL;
    if (n < 1)
        return mq_error(MQ_EINVAL, "no profile to combine");
    const struct prof_profile *p0 = profs[0];
    int base = 0;
    for (int i = 1; i < n; i++) {
        const struct prof_profile *p = profs[i];
        if (p->model_hash != p0->model_hash || p->n_layers != p0->n_layers)
            return mq_error(MQ_EINVAL, "target %d profiled model '%s' (content %016llx, %d layers), target 1 '%s' "
                            "(content %016llx, %d layers): targets must profile one model", i + 1, p->model_name,
                            (unsigned long long)p->model_hash, p->n_layers, p0->model_name,
                            (unsigned long long)p0->model_hash, p0->n_layers);
        if (strcmp(p->workload.label, p0->workload.label))
            return mq_error(MQ_EINVAL, "target %d profiled workload %s, target 1 %s: targets must profile one "
                            "workload", i + 1, p->workload.label, p0->workload.label);
        for (int l = 0; l < p0->n_layers; l++)
            if (strcmp(p->layer_names[l], p0->layer_names[l]) || p->layer_in[l] != p0->layer_in[l] ||
                p->layer_out[l] != p0->layer_out[l])
                return mq_error(MQ_EINVAL, "target %d layer %d is '%s', target 1's is '%s': targets must profile "
                                "one model", i + 1, l, p->layer_names[l], p0->layer_names[l]);
        if (p->overhead_bytes > profs[base]->overhead_bytes)
            base = i;
    }
    struct prof_profile *w;
    int rc = prof_profile_alloc(p0->n_layers, &w);
    if (rc < 0)
        return rc;
    char(*names)[MQ_GGUF_MAX_NAME + 1] = w->layer_names;
    int64_t *in = w->layer_in, *outs = w->layer_out;
    double *ns = w->layer_ns;
    *w = *profs[base]; /* scalars and the target; the tables are w's own, filled below */
    w->layer_names = names;
    w->layer_in = in;
    w->layer_out = outs;
    w->layer_ns = ns;
    w->n_costs = 0;
    w->costs = NULL;
    size_t nl = (size_t)p0->n_layers;
    memcpy(w->layer_names, p0->layer_names, nl * sizeof(*w->layer_names));
    memcpy(w->layer_in, p0->layer_in, nl * sizeof(*w->layer_in));
    memcpy(w->layer_out, p0->layer_out, nl * sizeof(*w->layer_out));
    w->layer_scale = 1.0;
    w->glue_ns = 0;
    for (int i = 0; i < n; i++) {
        w->glue_ns = fmax(w->glue_ns, profs[i]->glue_ns > 0 ? profs[i]->glue_ns : 0);
        w->formats &= profs[i]->formats;
    }
    for (size_t k = 0; k < nl * MQ_DTYPE_COUNT; k++) {
        double v = 0;
        for (int i = 0; i < n && !isnan(v); i++) {
            double x = profs[i]->layer_ns[k];
            v = isnan(x) ? NAN : fmax(v, profs[i]->layer_scale * x);
        }
        w->layer_ns[k] = v;
    }
    snprintf(w->target.backend_detail, sizeof(w->target.backend_detail),
             "combined: per layer and format the largest time of %d targets", n);
    *out = w;
    return MQ_OK;
}
