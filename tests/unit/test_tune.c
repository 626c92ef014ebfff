/* tests/unit/test_tune.c - the tuner on the bundled model: its front against exhaustive
 * enumeration on a restricted space, validated plans re-measured against the budgets, and
 * the refusals (unknown pins, NaN tables, impossible and conflicting budgets). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/status.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/runner.h"
#include "profiler/measure.h"
#include "profiler/profile.h"
#include "reports/front_io.h"
#include "reports/sensitivity_io.h"
#include "search/pins.h"
#include "search/search.h"
#include "search/sensitivity.h"
#include "search/tune.h"
#include "tests/unit/test.h"

#define TINY "examples/tinyllm/tinyllm.gguf"
#define EVAL "examples/data/kjv-eval.txt"
#define F3 ((1u << MQ_DTYPE_F16) | (1u << MQ_DTYPE_Q8_0) | (1u << MQ_DTYPE_Q4_0))

/* The bundled model, a quick profile in three formats and the proxy sensitivity. */
struct fixture {
    struct mq_model *m;
    struct be_backend *be;
    struct prof_profile *prof;
    struct srch_sensitivity *sens;
};

static void fixture_free(struct fixture *f)
{
    srch_sensitivity_free(f->sens);
    prof_profile_free(f->prof);
    be_close(f->be);
    mq_model_free(f->m);
}

static int fixture_open(struct fixture *f, bool e2e)
{
    memset(f, 0, sizeof(*f));
    char cache[4200];
    snprintf(cache, sizeof(cache), "%s/tune-cache", t_tmpdir());
    int rc = mq_model_load(TINY, &f->m);
    if (rc == MQ_OK)
        rc = be_open("cpu", NULL, &f->be);
    struct prof_options po = {.formats = F3, .cache_dir = cache, .max_seconds = 0.05, .no_e2e = !e2e};
    if (rc == MQ_OK)
        rc = mq_workload_parse("decode:64", &po.workload);
    if (rc == MQ_OK)
        rc = prof_profile_run(f->m, f->be, &po, &f->prof);
    struct srch_sens_options so = {.method = SRCH_SENS_PROXY, .formats = F3,
                                   .quality = {.data = EVAL, .ctx = 64, .max_chunks = 2}};
    if (rc == MQ_OK)
        rc = srch_sensitivity_run(f->m, f->be, &so, &f->sens);
    return rc;
}

static bool same_point(const struct srch_point *a, const struct srch_point *b)
{
    return a->mem == b->mem && a->lat == b->lat && a->loss == b->loss;
}

/* Restricted to 8 free layers (blk.0.* and output.weight; everything else pinned to
 * q8_0) and 3 formats, the tuner's front is the exhaustive front, point for point, and
 * its best point within budgets is the exhaustive optimum. */
static int test_front_exhaustive(void)
{
    struct fixture fx;
    T_CHECK(fixture_open(&fx, false) == MQ_OK);
    static struct srch_pins pins;
    memset(&pins, 0, sizeof(pins));
    int n_free = 0;
    for (int l = 0; l < fx.m->n_layers; l++) {
        const char *name = fx.m->layers[l].name;
        if (!strncmp(name, "blk.0.", 6) || !strcmp(name, "output.weight"))
            n_free++;
        else
            T_CHECK(srch_pins_add(&pins, name, MQ_DTYPE_Q8_0, "test") == MQ_OK);
    }
    T_CHECK_MSG(n_free == 8, "%d free layers", n_free);
    struct srch_tune_options o = {.mem_budget = SRCH_NO_BUDGET, .lat_budget = SRCH_NO_BUDGET, .formats = F3,
                                  .pins = &pins};
    struct srch_tune *t = NULL;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    int n_choices = 0;
    for (int l = 0; l < t->problem.n_layers; l++)
        n_choices += t->problem.layers[l].n > 1;
    T_CHECK_MSG(n_choices == 8, "%d layers with a choice", n_choices);
    struct srch_front *ex = NULL;
    T_CHECK(srch_front_compute(&t->problem, &(struct srch_options){.method = SRCH_EXHAUSTIVE}, &ex) == MQ_OK);
    T_CHECK(ex->exact && t->front->exact);
    T_CHECK_MSG(ex->n == t->front->n, "tuner %d points (%s), exhaustive %d", t->front->n, t->front->method, ex->n);
    T_CHECK(ex->n > 8);
    for (int i = 0; i < ex->n; i++) { /* both sorted by memory, latency, loss */
        T_CHECK_MSG(same_point(&ex->pts[i], &t->front->pts[i]), "point %d: %g %g %g vs %g %g %g", i,
                    ex->pts[i].mem, ex->pts[i].lat, ex->pts[i].loss, t->front->pts[i].mem, t->front->pts[i].lat,
                    t->front->pts[i].loss);
    }
    /* with budgets between the extremes, the tuner's best is the exhaustive optimum */
    double mem_b = 0.5 * (ex->pts[0].mem + ex->pts[ex->n - 1].mem), lat_b = INFINITY;
    int want;
    T_CHECK(srch_front_best(ex, mem_b, lat_b, &want) == MQ_OK);
    srch_tune_free(t);
    o.mem_budget = mem_b;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    T_CHECK(t->best >= 0 && same_point(&t->front->pts[t->best], &ex->pts[want]));
    srch_front_free(ex);
    srch_tune_free(t);
    fixture_free(&fx);
    return T_PASS;
}

struct run_ctx {
    const struct mq_model *m;
    void *session;
};

static int run_once(void *arg)
{
    struct run_ctx *r = arg;
    return r->m->runner->session_run(r->session);
}

/* Every validated plan reported as meeting the budgets meets them when measured again.
 * The timer-noise margin: latency may exceed the budget by 3 MADs of each of the two
 * measurements plus 20% of the budget, in the best of 3 re-measurements (a shared 2-core
 * VM, where a busy neighbour stalls pinned threads for whole time slices); memory (peak
 * RSS, when the probe can run: not under AddressSanitizer) by 2%. */
static int test_validated_remeasured(void)
{
    struct fixture fx;
    T_CHECK(fixture_open(&fx, true) == MQ_OK);
    /* budgets that force a mixed plan: memory halfway between uniform q4_0 and q8_0; latency
     * 3x the slowest uniform plan's as profiled (it is checked, but the profile and the
     * validation run minutes apart on a shared machine: it must not bind) */
    double mem_q4 = NAN, mem_q8 = NAN, lat_max = 0;
    for (int i = 0; i < fx.prof->n_e2e; i++) {
        const struct prof_e2e *e = &fx.prof->e2e[i];
        double mem = (double)(e->predicted.weights + e->predicted.kv_cache + e->predicted.scratch);
        if (e->fmt == MQ_DTYPE_Q4_0)
            mem_q4 = mem;
        if (e->fmt == MQ_DTYPE_Q8_0)
            mem_q8 = mem;
        lat_max = fmax(lat_max, e->time.median_ns);
    }
    T_CHECK(isfinite(mem_q4) && isfinite(mem_q8) && lat_max > 0);
    bool probe = getenv("MIXQ_EXE") != NULL && !T_UNDER_ASAN; /* ASan: RSS includes its shadow */
    struct srch_tune_options o = {.mem_budget = 0.5 * (mem_q4 + mem_q8), .lat_budget = 3 * lat_max,
                                  .formats = F3, .max_seconds = 0.3, .probe_memory = probe, .backend = "cpu",
                                  .quality = {.data = EVAL, .ctx = 64, .max_chunks = 2}};
    /* How far peak RSS moves between probes of one plan (the runtime's own pages: thread
     * stacks, malloc arenas; measured 156 KB over 8 probes at load 2.5 on 2 cores, more under
     * load): re-measured plans may exceed the budget by 2% plus twice that. */
    double probe_spread = 0;
    if (probe) { /* peak RSS includes the runtime: the budget must too */
        uint64_t peak, base, lo = UINT64_MAX, hi = 0;
        struct mq_plan *p;
        T_CHECK(mq_plan_uniform(fx.m, MQ_DTYPE_Q4_0, &p) == MQ_OK);
        for (int i = 0; i < 5; i++) {
            T_CHECK(prof_memory_probe(TINY, NULL, "cpu", be_threads(fx.be), &fx.prof->workload, p, &peak, &base) ==
                    MQ_OK);
            lo = peak < lo ? peak : lo;
            hi = peak > hi ? peak : hi;
        }
        mq_plan_free(p);
        probe_spread = (double)(hi - lo);
        o.mem_budget += (double)base;
        fx.prof->overhead_bytes = base;
    }
    struct srch_tune *t = NULL;
    T_CHECK(srch_tune_run(fx.m, fx.be, fx.prof, fx.sens, &o, &t) == MQ_OK);
    T_CHECK(t->validated && t->n_cand >= 8 + 4);
    int n_meet = 0;
    for (int i = 0; i < t->n_cand; i++) {
        const struct srch_candidate *c = &t->cand[i];
        T_CHECK(c->lat.reps >= 5 && c->lat.median_ns > 0 && c->mem > 0 && c->loss >= 0 && isfinite(c->metric));
        T_CHECK(c->meets == (c->mem <= o.mem_budget && c->lat.median_ns <= o.lat_budget));
        if (!c->meets)
            continue;
        n_meet++;
        struct run_ctx r = {.m = fx.m};
        struct prof_stats again;
        double margin = 0;
        T_CHECK(fx.m->runner->session_new(fx.m, c->plan, fx.be, &fx.prof->workload, &r.session) == MQ_OK);
        for (int attempt = 0; attempt < 3; attempt++) {
            int rc = prof_measure(run_once, &r, &(struct prof_config){.min_reps = 9, .max_seconds = 0.5}, &again);
            T_CHECK(rc == MQ_OK);
            margin = 3 * (c->lat.mad_ns + again.mad_ns) + 0.2 * o.lat_budget;
            if (again.median_ns <= o.lat_budget + margin)
                break;
        }
        fx.m->runner->session_free(r.session);
        T_CHECK_MSG(again.median_ns <= o.lat_budget + margin, "%s: %.1f us again, budget %.1f us + margin %.1f us",
                    c->label, again.median_ns / 1e3, o.lat_budget / 1e3, margin / 1e3);
        if (probe) { /* as for latency, up to three probes; one within the tolerance holds */
            uint64_t peak = 0, base;
            double tol = 1.02 * o.mem_budget + 2 * probe_spread;
            for (int attempt = 0; attempt < 3; attempt++) {
                T_CHECK(prof_memory_probe(TINY, NULL, "cpu", be_threads(fx.be), &fx.prof->workload, c->plan, &peak,
                                          &base) == MQ_OK);
                if ((double)peak <= tol)
                    break;
            }
            T_CHECK_MSG((double)peak <= tol, "%s: %llu B again, budget %.0f B (+2%% + 2 x probe spread %.0f B)",
                        c->label, (unsigned long long)peak, o.mem_budget, probe_spread);
        }
    }
    T_CHECK(n_meet > 0);
    if (t->chosen < 0) /* say why before failing: which constraint each front point missed */
        for (int i = 0; i < t->n_cand; i++)
            fprintf(stderr, "    %-16s round %d: %.0f B (predicted %.0f, budget %.0f), %.1f us +- %.1f (predicted %.1f, budget %.1f)\n",
                    t->cand[i].label, t->cand[i].round, t->cand[i].mem, t->cand[i].pred_mem, o.mem_budget,
                    t->cand[i].lat.median_ns / 1e3, t->cand[i].lat.mad_ns / 1e3, t->cand[i].pred_lat / 1e3,
                    o.lat_budget / 1e3);
    /* the choice: the lowest measured loss among the front points that met the budgets */
    T_CHECK(t->chosen >= 0 && t->cand[t->chosen].point >= 0 && t->cand[t->chosen].meets);
    for (int i = 0; i < t->n_cand; i++)
        if (t->cand[i].point >= 0 && t->cand[i].meets)
            T_CHECK(t->cand[t->chosen].loss <= t->cand[i].loss);
    /* the budgets force a mixed plan */
    const struct mq_plan *cp = t->cand[t->chosen].plan;
    bool mixed = false;
    for (int l = 1; l < cp->n_layers; l++)
        mixed |= cp->fmt[l] != cp->fmt[0];
    T_CHECK(mixed);
    /* front.yaml round trip: the chosen plan reads back as the same plan */
    char path[4200];
    snprintf(path, sizeof(path), "%s/front.yaml", t_tmpdir());
    T_CHECK(rpt_front_write(path, fx.m, fx.prof, fx.sens, t, 0, NULL) == MQ_OK);
    struct mq_plan *back = NULL;
    T_CHECK(rpt_front_read_plan(fx.m, path, -1, &back) == MQ_OK);
    T_CHECK(!memcmp(back->fmt, cp->fmt, (size_t)cp->n_layers * sizeof(*cp->fmt)));
    mq_plan_free(back);
    T_CHECK(rpt_front_read_plan(fx.m, path, 1 << 30, &back) < 0);
    srch_tune_free(t);
    fixture_free(&fx);
    return T_PASS;
}

/* A target that differs from the profile in a known way, for the tightening rounds:
 * every plan takes `extra` bytes more than predicted and runs as predicted, except the
 * first plan measured (its latency disturbed 30x, as a preempted measurement is) and the
 * second (its memory 100 x extra over). */
struct skewed_target {
    const struct srch_tune *t;
    double extra;
    int calls;
};

static void predict_plan(const struct srch_tune *t, const struct mq_plan *p, double *mem, double *lat)
{
    *mem = t->problem.mem0;
    *lat = t->problem.lat0;
    for (int l = 0; l < t->problem.n_layers; l++)
        for (int k = 0; k < t->layers[l].n; k++)
            if (t->layers[l].fmt[k] == p->fmt[l]) {
                *mem += t->layers[l].mem[k];
                *lat += t->layers[l].lat[k];
            }
}

static int skewed_measure(void *ctx, const struct mq_plan *plan, struct prof_stats *lat, double *mem,
                          bool *mem_measured)
{
    struct skewed_target *s = ctx;
    double pm, pl;
    predict_plan(s->t, plan, &pm, &pl);
    if (s->calls == 0)
        pl *= 30;
    *mem = pm + (s->calls == 1 ? 100 : 1) * s->extra;
    *mem_measured = true;
    *lat = (struct prof_stats){.reps = 5, .min_ns = pl, .median_ns = pl, .mean_ns = pl, .max_ns = pl};
    s->calls++;
    return MQ_OK;
}

/* When no validated point meets the budgets, the budgets are tightened by the median miss
 * of the measured front points, not by one disturbed measurement: with every plan `extra`
 * bytes over its prediction (extra chosen so that every point of the first round misses
 * the memory budget) and one plan 30x slow, the second round queries the front with the
 * memory budget less `extra` and the latency budget as given, and its points meet both. */
static int test_tightening_rounds(void)
{
    struct fixture fx;
    T_CHECK(fixture_open(&fx, false) == MQ_OK);
    /* budgets from the predictions: memory halfway between uniform q4_0 and q8_0, latency
     * twice the slowest uniform plan's (latency never binds) */
    struct srch_tune_options o = {.mem_budget = SRCH_NO_BUDGET, .lat_budget = SRCH_NO_BUDGET, .formats = F3,
                                  .quality = {.data = EVAL, .ctx = 64, .max_chunks = 1}};
    struct srch_tune *t = NULL;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    static const enum mq_dtype uni[] = {MQ_DTYPE_F16, MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_0};
    double umem[3], ulat[3];
    for (int i = 0; i < 3; i++) {
        struct mq_plan *p;
        T_CHECK(mq_plan_uniform(fx.m, uni[i], &p) == MQ_OK);
        predict_plan(t, p, &umem[i], &ulat[i]);
        mq_plan_free(p);
    }
    srch_tune_free(t);
    o.mem_budget = 0.5 * (umem[1] + umem[2]);
    o.lat_budget = 2 * fmax(ulat[0], fmax(ulat[1], ulat[2]));
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    /* the first round's points (validation measures the 8 nearest the budgets first) */
    int idx[8], n_idx = 0;
    T_CHECK(srch_front_nearest(t->front, o.mem_budget, o.lat_budget, 8, idx, &n_idx) == MQ_OK && n_idx == 8);
    double extra = 1024;
    for (int i = 0; i < n_idx; i++)
        extra = fmax(extra, o.mem_budget - t->front->pts[idx[i]].mem + 1024);
    T_CHECK_MSG(o.mem_budget - extra > umem[2], "premise: %.0f B less %.0f B leaves a plan (q4_0: %.0f B)",
                o.mem_budget, extra, umem[2]);
    struct skewed_target st = {.t = t, .extra = extra};
    o.measure_plan = skewed_measure;
    o.measure_ctx = &st;
    T_CHECK(srch_tune_validate(fx.m, fx.be, fx.prof, &o, t) == MQ_OK);
    T_CHECK_MSG(t->rounds == 2, "%d rounds", t->rounds);
    for (int i = 0; i < t->n_cand; i++)
        T_CHECK(!(t->cand[i].round == 0 && t->cand[i].point >= 0 && t->cand[i].meets));
    T_CHECK(fabs(t->eff_mem_budget - (o.mem_budget - extra)) < 1e-6 * o.mem_budget);
    T_CHECK(t->eff_lat_budget == o.lat_budget);
    T_CHECK(t->chosen >= 0 && t->cand[t->chosen].round == 1 && t->cand[t->chosen].meets);
    T_CHECK(t->cand[t->chosen].mem <= o.mem_budget && t->cand[t->chosen].pred_mem <= o.mem_budget - extra);
    srch_tune_free(t);
    fixture_free(&fx);
    return T_PASS;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Pins naming no layer, pins to unprofiled formats, NaN in tables, tables of another
 * model, impossible and conflicting budgets: errors, never a plan. */
static int test_refusals(void)
{
    struct fixture fx;
    T_CHECK(fixture_open(&fx, false) == MQ_OK);
    struct srch_tune *t = NULL;
    static struct srch_pins pins;
    memset(&pins, 0, sizeof(pins));
    struct srch_tune_options o = {.mem_budget = SRCH_NO_BUDGET, .lat_budget = SRCH_NO_BUDGET, .pins = &pins};
    T_CHECK(srch_pins_add(&pins, "blk.99.attn_q.weight", MQ_DTYPE_F16, "test") == MQ_OK);
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_EINVAL && !t);
    memset(&pins, 0, sizeof(pins));
    T_CHECK(srch_pins_add(&pins, "blk.*.nonexistent", MQ_DTYPE_F16, "test") == MQ_OK);
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_EINVAL && !t);
    memset(&pins, 0, sizeof(pins));
    T_CHECK(srch_pins_add(&pins, "output.weight", MQ_DTYPE_BF16, "test") == MQ_OK); /* not profiled */
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_EINVAL && !t);
    T_CHECK(srch_pins_parse(&pins, "output.weight", "--pin") < 0);
    T_CHECK(srch_pins_parse(&pins, "output.weight=q7_k", "--pin") < 0);
    memset(&pins, 0, sizeof(pins));

    /* impossible: below the smallest plan; conflicting: each budget alone reachable, not both */
    struct srch_extremes ex;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    T_CHECK(srch_extremes_compute(&t->problem, &ex) == MQ_OK);
    srch_tune_free(t);
    o.mem_budget = 0.5 * ex.smallest.mem;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_ERANGE && !t);
    o.mem_budget = SRCH_NO_BUDGET;
    o.lat_budget = 0.5 * ex.fastest.lat;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_ERANGE && !t);
    if (ex.fastest.mem > ex.smallest.mem && ex.smallest.lat > ex.fastest.lat) {
        o.mem_budget = ex.smallest.mem;
        o.lat_budget = ex.fastest.lat;
        T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_ERANGE && !t);
    }
    srch_extremes_release(&ex);
    o.mem_budget = o.lat_budget = SRCH_NO_BUDGET;

    /* NaN in a sensitivity table, and a table of another model */
    char path[4200];
    snprintf(path, sizeof(path), "%s/sens.yaml", t_tmpdir());
    T_CHECK(rpt_sensitivity_write(fx.sens, path) == MQ_OK);
    struct srch_sensitivity *s = NULL;
    T_CHECK(rpt_sensitivity_read(path, &s) == MQ_OK);
    srch_sensitivity_free(s);
    FILE *f = fopen(path, "r");
    T_CHECK(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *loss = strstr(text, "loss: 0");
    if (!loss)
        loss = strstr(text, "loss: ");
    T_CHECK(loss);
    static char bad[1 << 20];
    for (int k = 0; k < 3; k++) {
        static const char *const nan_text[] = {".nan", "nan", "-inf"};
        size_t pre = (size_t)(loss - text) + 6;
        char *end = loss + 6 + strcspn(loss + 6, "\n");
        snprintf(bad, sizeof(bad), "%.*s%s%s", (int)pre, text, nan_text[k], end);
        T_CHECK(write_text(path, bad) == 0);
        T_CHECK_MSG(rpt_sensitivity_read(path, &s) == MQ_EFORMAT && !s, "'%s' accepted", nan_text[k]);
    }
    struct srch_sensitivity *other = NULL;
    T_CHECK(srch_sensitivity_alloc(fx.m->n_layers, &other) == MQ_OK);
    memcpy(other->names, fx.sens->names, (size_t)fx.m->n_layers * sizeof(*other->names));
    snprintf(other->names[0], sizeof(other->names[0]), "not.a.layer");
    T_CHECK(srch_tune_search(fx.m, fx.prof, other, &o, &t) < 0 && !t);
    srch_sensitivity_free(other);
    fixture_free(&fx);
    return T_PASS;
}

/* Grouped sensitivity: with a group per block it is the measured table, exactly; with 4
 * groups per role the layers' losses add up to their group's measured KL, groups follow
 * roles and depth (first block, last block, two ranges between), and 16-bit formats are
 * one evaluation over every layer. */
static int test_sensitivity_grouped(void)
{
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK && be_open("cpu", NULL, &be) == MQ_OK);
    int n_blocks = (int)m->hp.n_layer;
    T_CHECK(n_blocks >= 4);
    uint32_t f2 = (1u << MQ_DTYPE_Q8_0) | (1u << MQ_DTYPE_Q4_0);
    struct srch_sens_options o = {.method = SRCH_SENS_MEASURED, .formats = f2,
                                  .quality = {.data = EVAL, .ctx = 64, .max_chunks = 1}};
    struct srch_sensitivity *meas = NULL, *g1 = NULL, *g4 = NULL;
    T_CHECK(srch_sensitivity_run(m, be, &o, &meas) == MQ_OK);
    o.method = SRCH_SENS_GROUPED;
    o.depth_groups = n_blocks;
    T_CHECK(srch_sensitivity_run(m, be, &o, &g1) == MQ_OK);
    T_CHECK(g1->n_groups == m->n_layers && !strcmp(g1->loss_name, "kl"));
    for (int i = 0; i < m->n_layers * MQ_DTYPE_COUNT; i++)
        T_CHECK_MSG(isnan(meas->kl[i]) ? isnan(g1->loss[i]) : g1->loss[i] == meas->kl[i], "layer %d format %d: %g vs %g",
                    i / MQ_DTYPE_COUNT, i % MQ_DTYPE_COUNT, g1->loss[i], meas->kl[i]);
    o.depth_groups = 4;
    o.formats = f2 | (1u << MQ_DTYPE_F16);
    T_CHECK(srch_sensitivity_run(m, be, &o, &g4) == MQ_OK);
    int n_block_roles = 0;
    for (int r = 0; r < MQ_ROLE_COUNT; r++) {
        bool in_blocks = false;
        for (int l = 0; l < m->n_layers; l++)
            in_blocks |= m->layers[l].role == (enum mq_layer_role)r && m->layers[l].block >= 0;
        n_block_roles += in_blocks;
    }
    int n_outside = 0;
    for (int l = 0; l < m->n_layers; l++)
        n_outside += m->layers[l].block < 0;
    T_CHECK_MSG(g4->n_groups == 4 * n_block_roles + n_outside, "%d groups", g4->n_groups);
    T_CHECK(g4->n_evaluated + g4->n_cached == 2 * g4->n_groups + 1); /* f16: one evaluation */
    T_CHECK(isfinite(g4->all_kl[MQ_DTYPE_F16]) && g4->all_kl[MQ_DTYPE_F16] >= 0);
    for (int g = 0; g < g4->n_groups; g++) {
        int first = -1;
        for (int f = MQ_DTYPE_Q8_0; f <= MQ_DTYPE_Q4_0; f++) {
            double sum = 0;
            for (int l = 0; l < m->n_layers; l++) {
                if (g4->group[l] != g)
                    continue;
                if (first < 0)
                    first = l;
                T_CHECK(m->layers[l].role == m->layers[first].role); /* one role per group */
                sum += g4->loss[l * MQ_DTYPE_COUNT + f];
            }
            double kl = g4->group_kl[g * MQ_DTYPE_COUNT + f];
            T_CHECK_MSG(fabs(sum - kl) <= 1e-12 + 1e-9 * kl, "group %s %d: %g vs %g", g4->group_names[g], f, sum, kl);
        }
    }
    /* the first and the last block are groups of one layer: their measured KL */
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].block == 0 || m->layers[l].block == n_blocks - 1 || m->layers[l].block < 0) {
            T_CHECK(g4->group_size[g4->group[l]] == 1);
            T_CHECK(g4->loss[l * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0] == meas->kl[l * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0]);
        }
    /* sensitivity.yaml keeps the groups and reads back as the same losses */
    char path[4200];
    snprintf(path, sizeof(path), "%s/grouped.yaml", t_tmpdir());
    T_CHECK(rpt_sensitivity_write(g4, path) == MQ_OK);
    struct srch_sensitivity *back = NULL;
    T_CHECK(rpt_sensitivity_read(path, &back) == MQ_OK && back->method == SRCH_SENS_GROUPED);
    for (int i = 0; i < m->n_layers * MQ_DTYPE_COUNT; i++)
        T_CHECK(isnan(g4->loss[i]) ? isnan(back->loss[i]) : fabs(back->loss[i] - g4->loss[i]) <= 1e-5 * g4->loss[i]);
    srch_sensitivity_free(back);
    srch_sensitivity_free(meas);
    srch_sensitivity_free(g1);
    srch_sensitivity_free(g4);
    be_close(be);
    mq_model_free(m);
    return T_PASS;
}

/* Several targets: the combined profile prices each layer and format at its slowest
 * target (scaled by each target's latency model), cannot choose a format one target did
 * not profile, and refuses profiles of different models or workloads. */
static struct prof_profile *two_layer_profile(double scale, double glue, uint64_t overhead, double q4_ns)
{
    struct prof_profile *p;
    if (prof_profile_alloc(2, &p) != MQ_OK)
        return NULL;
    p->model_hash = 0xabc;
    snprintf(p->model_name, sizeof(p->model_name), "two");
    snprintf(p->workload.label, sizeof(p->workload.label), "decode:64");
    p->formats = (1u << MQ_DTYPE_F16) | (1u << MQ_DTYPE_Q4_0);
    for (int l = 0; l < 2; l++) {
        snprintf(p->layer_names[l], sizeof(p->layer_names[l]), "blk.%d.w", l);
        p->layer_in[l] = 64;
        p->layer_out[l] = 32;
        p->layer_ns[l * MQ_DTYPE_COUNT + MQ_DTYPE_F16] = 100.0 * (l + 1);
        p->layer_ns[l * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0] = q4_ns;
    }
    p->layer_scale = scale;
    p->glue_ns = glue;
    p->overhead_bytes = overhead;
    return p;
}

static int test_worst_profile(void)
{
    struct prof_profile *a = two_layer_profile(1.0, 50, 1000, 80), *b = two_layer_profile(2.0, 10, 3000, 30), *w = NULL;
    T_CHECK(a && b);
    const struct prof_profile *ab[] = {a, b};
    T_CHECK(srch_tune_worst_profile(ab, 2, &w) == MQ_OK);
    T_CHECK(w->layer_scale == 1.0 && w->glue_ns == 50 && w->overhead_bytes == 3000 && w->n_costs == 0);
    T_CHECK(!strcmp(w->layer_names[1], "blk.1.w") && w->layer_in[1] == 64 && w->layer_out[1] == 32);
    for (int l = 0; l < 2; l++) {
        T_CHECK(w->layer_ns[l * MQ_DTYPE_COUNT + MQ_DTYPE_F16] == 200.0 * (l + 1)); /* b: 2 x 100(l+1) */
        T_CHECK(w->layer_ns[l * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0] == 80);            /* a: 80 > 2 x 30 */
        T_CHECK(isnan(w->layer_ns[l * MQ_DTYPE_COUNT + MQ_DTYPE_Q8_0]));            /* profiled by none */
    }
    prof_profile_free(w);
    w = NULL;
    b->layer_ns[1 * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0] = NAN; /* one target did not profile it */
    T_CHECK(srch_tune_worst_profile(ab, 2, &w) == MQ_OK);
    T_CHECK(isnan(w->layer_ns[1 * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0]) && w->layer_ns[MQ_DTYPE_Q4_0] == 80);
    prof_profile_free(w);
    w = NULL;
    snprintf(b->workload.label, sizeof(b->workload.label), "decode:512");
    T_CHECK(srch_tune_worst_profile(ab, 2, &w) == MQ_EINVAL && !w);
    snprintf(b->workload.label, sizeof(b->workload.label), "decode:64");
    snprintf(b->layer_names[1], sizeof(b->layer_names[1]), "blk.1.v");
    T_CHECK(srch_tune_worst_profile(ab, 2, &w) == MQ_EINVAL && !w);
    b->model_hash = 0xdef;
    T_CHECK(srch_tune_worst_profile(ab, 2, &w) == MQ_EINVAL && !w);
    T_CHECK(srch_tune_worst_profile(ab, 0, &w) == MQ_EINVAL && !w);
    prof_profile_free(a);
    prof_profile_free(b);
    return T_PASS;
}

/* --max-kl's choice on made-up measurements: the fastest (then smallest) front point that
 * meets the budgets, KL bound included, never a baseline; without a bound the lowest KL.
 * Why none was chosen (srch_tune_kl_reach) and the measured/predicted ratio the front is
 * queried with (srch_tune_loss_ratio: the median over the 3 plans whose KL is nearest the
 * bound). */
static int test_max_kl_choice(void)
{
    /* point, lat ns, mem B, measured KL, predicted loss, meets (bound 0.005 included) */
    static const struct {
        int point;
        double lat, mem, loss, pred;
        bool meets;
    } v[] = {
        {3, 80, 5, 0.009, 0.004, false},     /* fastest front point, over the bound */
        {7, 90, 6, 0.004, 0.003, true},      /* ties 9 in latency, more memory */
        {9, 90, 5, 0.0045, 0.0035, true},    /* the choice */
        {12, 120, 4, 0.001, 0.0012, true},   /* the lowest KL: the choice without a bound */
        {-1, 70, 3, 0.002, 0.004, true},     /* a baseline: faster, never chosen */
        {15, 60, 7, 0.003, NAN, false},      /* within the bound, over another budget */
    };
    enum { N = sizeof(v) / sizeof(v[0]) };
    static struct srch_candidate c[N];
    memset(c, 0, sizeof(c));
    for (int i = 0; i < N; i++) {
        c[i].point = v[i].point;
        c[i].lat.median_ns = v[i].lat;
        c[i].mem = v[i].mem;
        c[i].loss = v[i].loss;
        c[i].pred_loss = v[i].pred;
        c[i].meets = v[i].meets;
    }
    struct srch_tune t = {.cand = c, .n_cand = N, .max_kl = 0.005};
    srch_tune_choose(&t);
    T_CHECK_MSG(t.chosen == 2, "chosen %d", t.chosen);
    t.max_kl = SRCH_NO_BUDGET;
    srch_tune_choose(&t);
    T_CHECK_MSG(t.chosen == 3, "chosen %d without a bound", t.chosen);
    int smallest, under;
    t.max_kl = 0.005;
    srch_tune_kl_reach(&t, &smallest, &under);
    T_CHECK(smallest == 3 && under == 5);
    t.max_kl = 0.0005; /* below every plan */
    srch_tune_kl_reach(&t, &smallest, &under);
    T_CHECK(smallest == 3 && under == -1);
    /* nearest 0.005: 9 (1.286), 7 (1.333), 3 (2.25); nearest 0: 12 (0.833), the baseline
     * (0.5), 7 (1.333); 15 has no prediction */
    double r = srch_tune_loss_ratio(&t, 0.005);
    T_CHECK_MSG(fabs(r - 0.004 / 0.003) < 1e-12, "ratio %g", r);
    r = srch_tune_loss_ratio(&t, 0);
    T_CHECK_MSG(fabs(r - 0.001 / 0.0012) < 1e-12, "ratio %g at 0", r);
    t.n_cand = 2; /* two: their geometric mean */
    r = srch_tune_loss_ratio(&t, 0.005);
    T_CHECK_MSG(fabs(r - sqrt(2.25 * 0.004 / 0.003)) < 1e-12, "ratio %g of two", r);
    t.n_cand = 0;
    T_CHECK(isnan(srch_tune_loss_ratio(&t, 0.005)));
    srch_tune_kl_reach(&t, &smallest, &under);
    T_CHECK(smallest == -1 && under == -1);
    srch_tune_choose(&t);
    T_CHECK(t.chosen == -1);
    return T_PASS;
}

/* A target whose latency and memory are the predictions exactly (the choice is then
 * deterministic); quality is measured for real. */
static int predicted_measure(void *ctx, const struct mq_plan *plan, struct prof_stats *lat, double *mem,
                             bool *mem_measured)
{
    const struct srch_tune *const *t = ctx;
    double pm, pl;
    predict_plan(*t, plan, &pm, &pl);
    *mem = pm;
    *mem_measured = true;
    *lat = (struct prof_stats){.reps = 5, .min_ns = pl, .median_ns = pl, .mean_ns = pl, .max_ns = pl};
    return MQ_OK;
}

/* --max-kl on the bundled model (proxy sensitivity: the bar is placed by the ratio fitted on
 * the measured baselines): a bound within reach gives the fastest measured front point whose
 * KL is within it, with measured points on both sides of the bound and the most precise plan
 * (the source's f32, KL 0) among them; a bound below every plan's KL (output.weight pinned
 * to q4_0) chooses none, and names the smallest; KL 0 under a memory budget below the f32
 * plan is within reach but does not fit. A KL table's best as predicted is the fastest
 * predicted within the bound; a bound that is NaN or negative is refused. */
static int test_max_kl_tune(void)
{
    struct fixture fx;
    T_CHECK(fixture_open(&fx, false) == MQ_OK);
    /* latency from bytes, not from the quick measured profile: which front points exist
     * and get validated then does not depend on the machine's load (it did: this test
     * failed now and then at load average 5) */
    for (int l = 0; l < fx.prof->n_layers; l++)
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            double *ns = &fx.prof->layer_ns[l * MQ_DTYPE_COUNT + f];
            size_t row;
            if (isfinite(*ns) && *ns > 0 && mq_dtype_row_bytes((enum mq_dtype)f, fx.prof->layer_in[l], &row) == MQ_OK)
                *ns = 0.01 * (double)row * (double)fx.prof->layer_out[l];
        }
    struct srch_tune *t = NULL;
    struct srch_tune_options o = {.mem_budget = SRCH_NO_BUDGET, .lat_budget = SRCH_NO_BUDGET, .formats = F3,
                                  .has_max_kl = true, .max_kl = 2e-3, .measure_plan = predicted_measure,
                                  .measure_ctx = &t, .quality = {.data = EVAL, .ctx = 64, .max_chunks = 1}};
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    T_CHECK(srch_tune_validate(fx.m, fx.be, fx.prof, &o, t) == MQ_OK);
    T_CHECK(t->max_kl == 2e-3 && isfinite(t->loss_bar) && t->loss_ratio > 0);
    T_CHECK(t->chosen >= 0 && t->cand[t->chosen].point >= 0 && t->cand[t->chosen].loss <= o.max_kl);
    bool over = false, f32 = false;
    for (int i = 0; i < t->n_cand; i++) {
        const struct srch_candidate *c = &t->cand[i];
        T_CHECK_MSG(c->meets == (c->loss <= o.max_kl), "%s: KL %g, meets %d", c->label, c->loss, c->meets);
        if (c->point < 0)
            continue;
        over |= c->loss > o.max_kl;
        f32 |= c->pred_loss == 0 && c->loss == 0;
        if (c->meets)
            T_CHECK_MSG(t->cand[t->chosen].lat.median_ns <= c->lat.median_ns, "%s is faster than the chosen %s",
                        c->label, t->cand[t->chosen].label);
    }
    T_CHECK(over && f32);
    srch_tune_free(t);
    t = NULL;

    /* below every plan's KL */
    static struct srch_pins pins;
    memset(&pins, 0, sizeof(pins));
    T_CHECK(srch_pins_add(&pins, "output.weight", MQ_DTYPE_Q4_0, "test") == MQ_OK);
    o.pins = &pins;
    o.max_kl = 1e-12;
    T_CHECK(srch_tune_run(fx.m, fx.be, fx.prof, fx.sens, &o, &t) == MQ_OK);
    int smallest, under;
    srch_tune_kl_reach(t, &smallest, &under);
    T_CHECK(t->chosen == -1 && under == -1 && smallest >= 0 && t->cand[smallest].loss > o.max_kl);
    for (int i = 0; i < t->n_cand; i++)
        T_CHECK(t->cand[smallest].loss <= t->cand[i].loss && !t->cand[i].meets);
    srch_tune_free(t);
    t = NULL;

    /* within reach (the f32 plan), over the memory budget */
    o.pins = NULL;
    o.max_kl = 0;
    struct mq_plan *p32;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    T_CHECK(mq_plan_uniform(fx.m, MQ_DTYPE_F32, &p32) == MQ_OK);
    double m32, l32;
    predict_plan(t, p32, &m32, &l32);
    mq_plan_free(p32);
    srch_tune_free(t);
    t = NULL;
    o.mem_budget = 0.5 * m32;
    T_CHECK(srch_tune_run(fx.m, fx.be, fx.prof, fx.sens, &o, &t) == MQ_OK);
    srch_tune_kl_reach(t, &smallest, &under);
    T_CHECK(t->chosen == -1 && under >= 0 && t->cand[under].loss == 0 && t->cand[under].mem > o.mem_budget);
    srch_tune_free(t);
    t = NULL;

    /* a KL table: the best as predicted is the fastest within the bound */
    o.mem_budget = SRCH_NO_BUDGET;
    snprintf(fx.sens->loss_name, sizeof(fx.sens->loss_name), "kl");
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    double mid = t->front->pts[t->front->n / 2].loss;
    srch_tune_free(t);
    t = NULL;
    o.max_kl = mid;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    const struct srch_point *b = &t->front->pts[t->best];
    T_CHECK(b->loss <= mid && t->loss_bar == mid);
    for (int i = 0; i < t->front->n; i++)
        T_CHECK(!(t->front->pts[i].loss <= mid && t->front->pts[i].lat < b->lat));
    srch_tune_free(t);
    t = NULL;
    o.max_kl = NAN;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_EINVAL && !t);
    o.max_kl = -1;
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_EINVAL && !t);
    fixture_free(&fx);
    return T_PASS;
}

/* A deployment runtime (tune --runtime) whose latency is `factor` times the prediction and
 * whose KL is a marker, so that the test sees which figures decided. */
struct slow_runtime {
    struct srch_tune *const *t;
    double factor;
    int calls;
};

static int slow_runtime_measure(void *ctx, const struct mq_plan *plan, struct srch_runtime_meas *out)
{
    struct slow_runtime *r = ctx;
    double pm, pl;
    predict_plan(*r->t, plan, &pm, &pl);
    pl *= r->factor;
    out->lat = (struct prof_stats){.reps = 5, .min_ns = pl, .median_ns = pl, .mean_ns = pl, .max_ns = pl};
    out->kl = 0.125;
    out->kl_stderr = 0.01;
    out->ppl = 3;
    r->calls++;
    return MQ_OK;
}

/* With a deployment runtime, a plan meets the latency budget only where the runtime's
 * latency does: every validated plan is measured there once, its figures are kept beside
 * the target's, and a budget that the target meets but the runtime misses (it is 3x
 * slower here) leaves no plan chosen; a budget the runtime meets chooses one within it
 * there. */
static int test_runtime_budget(void)
{
    struct fixture fx;
    T_CHECK(fixture_open(&fx, false) == MQ_OK);
    struct srch_tune *t = NULL;
    struct slow_runtime rt = {.t = &t, .factor = 3};
    struct srch_tune_options o = {.mem_budget = SRCH_NO_BUDGET, .lat_budget = SRCH_NO_BUDGET, .formats = F3,
                                  .measure_plan = predicted_measure, .measure_ctx = &t,
                                  .runtime_measure = slow_runtime_measure, .runtime_ctx = &rt,
                                  .runtime_name = "llama.cpp", .runtime_detail = "bin",
                                  .quality = {.data = EVAL, .ctx = 64, .max_chunks = 1}};
    T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
    double fastest = INFINITY;
    for (int i = 0; i < t->front->n; i++)
        fastest = fmin(fastest, t->front->pts[i].lat);
    srch_tune_free(t);
    t = NULL;
    /* every plan is within reach here (1.5x the fastest prediction for the fastest), none there */
    for (int pass = 0; pass < 2; pass++) {
        o.lat_budget = pass == 0 ? 1.5 * fastest : 3.5 * fastest;
        rt.calls = 0;
        T_CHECK(srch_tune_search(fx.m, fx.prof, fx.sens, &o, &t) == MQ_OK);
        T_CHECK(srch_tune_validate(fx.m, fx.be, fx.prof, &o, t) == MQ_OK);
        T_CHECK(!strcmp(t->runtime_name, "llama.cpp") && !strcmp(t->runtime_detail, "bin"));
        T_CHECK_MSG(rt.calls == t->n_cand, "%d runtime measurements of %d plans", rt.calls, t->n_cand);
        for (int i = 0; i < t->n_cand; i++) {
            const struct srch_candidate *c = &t->cand[i];
            T_CHECK(c->has_rt && c->rt.kl == 0.125 && c->loss != 0.125);
            T_CHECK(fabs(c->rt.lat.median_ns - 3 * c->lat.median_ns) <= 1e-9 * c->lat.median_ns);
            T_CHECK(srch_cand_lat(c) == c->rt.lat.median_ns);
            T_CHECK_MSG(c->meets == (c->rt.lat.median_ns <= o.lat_budget), "%s: %g ns there, budget %g, meets %d",
                        c->label, c->rt.lat.median_ns, o.lat_budget, c->meets);
        }
        if (pass == 0) {
            T_CHECK_MSG(t->chosen < 0, "chosen %d with every plan over the budget in the runtime", t->chosen);
        } else {
            T_CHECK(t->chosen >= 0 && t->cand[t->chosen].rt.lat.median_ns <= o.lat_budget);
        }
        srch_tune_free(t);
        t = NULL;
    }
    fixture_free(&fx);
    return T_PASS;
}

const struct mq_test tune_tests[] = {
    {"tune/sensitivity-grouped", test_sensitivity_grouped},
    {"tune/front-equals-exhaustive", test_front_exhaustive},
    {"tune/validated-remeasured", test_validated_remeasured},
    {"tune/tightening-rounds", test_tightening_rounds},
    {"tune/refusals", test_refusals},
    {"tune/worst-profile", test_worst_profile},
    {"tune/max-kl-choice", test_max_kl_choice},
    {"tune/max-kl", test_max_kl_tune},
    {"tune/runtime-budget", test_runtime_budget},
    {NULL, NULL},
};
