/* profiler/profile.c - per-layer cost table, end-to-end workloads, memory probe. */
#include "profiler/profile.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/status.h"
#include "llm/llama.h"
#include "model/shapes.h"
#include "profiler/cache.h"
#include "profiler/topology.h"

#include "backends/neon/neon.h" /* be_neon_emulated: false off aarch64 */

#define COST_CACHE_VERSION "cost/1"
#define E2E_CACHE_VERSION "e2e/1"
#define LIMITS_CACHE_VERSION "limits/1"
#define MAX_COPIES 4096
#define MAX_COPY_BYTES ((uint64_t)1 << 30)

int prof_profile_alloc(int n_layers, struct prof_profile **out)
{
    *out = NULL;
    struct prof_profile *p = calloc(1, sizeof(*p));
    if (!p)
        return mq_error(MQ_ENOMEM, "cannot allocate a profile");
    size_t n = (size_t)(n_layers > 0 ? n_layers : 1);
    p->n_layers = n_layers;
    p->layer_names = calloc(n, sizeof(*p->layer_names));
    p->layer_in = calloc(n, sizeof(*p->layer_in));
    p->layer_out = calloc(n, sizeof(*p->layer_out));
    p->layer_ns = malloc(n * MQ_DTYPE_COUNT * sizeof(*p->layer_ns));
    if (!p->layer_names || !p->layer_in || !p->layer_out || !p->layer_ns) {
        prof_profile_free(p);
        return mq_error(MQ_ENOMEM, "cannot allocate a profile of %d layers", n_layers);
    }
    for (size_t i = 0; i < n * MQ_DTYPE_COUNT; i++)
        p->layer_ns[i] = NAN;
    p->layer_scale = 1.0;
    *out = p;
    return MQ_OK;
}

void prof_profile_free(struct prof_profile *p)
{
    if (!p)
        return;
    free(p->layer_names);
    free(p->layer_in);
    free(p->layer_out);
    free(p->layer_ns);
    free(p->costs);
    free(p);
}

double prof_plan_latency_ns(const struct prof_profile *p, const struct mq_plan *plan)
{
    if (plan->n_layers != p->n_layers)
        return NAN;
    double ns = 0;
    for (int l = 0; l < p->n_layers; l++)
        ns += p->layer_ns[l * MQ_DTYPE_COUNT + plan->fmt[l]];
    return p->glue_ns + p->layer_scale * ns;
}

int prof_profile_matches(const struct prof_profile *p, const struct mq_model *m)
{
    if (p->n_layers != m->n_layers)
        return mq_error(MQ_EINVAL, "profile of '%s' has %d layers, model '%s' has %d", p->model_path, p->n_layers,
                        m->path, m->n_layers);
    for (int l = 0; l < m->n_layers; l++)
        if (strcmp(p->layer_names[l], m->layers[l].name) != 0 || p->layer_in[l] != m->layers[l].n_in ||
            p->layer_out[l] != m->layers[l].n_out)
            return mq_error(MQ_EINVAL, "profile layer %d is '%s' [%lld x %lld], the model's is '%s' [%lld x %lld]", l,
                            p->layer_names[l], (long long)p->layer_in[l], (long long)p->layer_out[l],
                            m->layers[l].name, (long long)m->layers[l].n_in, (long long)m->layers[l].n_out);
    return MQ_OK;
}

static int uniform_plan(const struct mq_model *m, enum mq_dtype fmt, struct mq_plan **out);

/* ---- one cost ---- */

struct cost_run {
    struct be_backend *be;
    struct be_tensor *w;
    int n_copies, next;
    struct be_tensor x, y;
};

static int cost_once(void *arg)
{
    struct cost_run *r = arg;
    struct be_tensor *w = &r->w[r->next];
    r->next = (r->next + 1) % r->n_copies;
    int rc = be_run(r->be, &(struct be_node){.op = BE_OP_MATMUL, .src = {w, &r->x}, .dst = &r->y});
    return rc < 0 ? rc : be_sync(r->be);
}

struct profiler {
    const struct mq_model *m;
    struct be_backend *be;
    const struct prof_options *o;
    struct prof_profile *p;
    bool count_events; /* some event can be counted here */
    char cache_dir[4096];
    bool use_cache;
    bool read_cache;
    char target_key[1024]; /* what identifies this target in cache keys */
    int cap_costs;
};

static void cost_key(const struct profiler *pr, const struct prof_cost *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s K=%lld N=%lld M=%lld fmt=%s %s %s", COST_CACHE_VERSION, (long long)c->K, (long long)c->N,
             (long long)c->M, mq_dtype_name(c->fmt), c->warm ? "warm" : "cold", pr->target_key);
}

/* values: reps min median mad mean max rel_ci copies has_counters counters... */
#define COST_VALS (9 + PROF_MAX_EVENTS)

static void cost_pack(const struct prof_cost *c, double *v)
{
    const struct prof_stats *s = &c->time;
    double head[9] = {s->reps, s->min_ns, s->median_ns, s->mad_ns, s->mean_ns, s->max_ns, s->rel_ci, c->copies,
                      c->has_counters};
    memcpy(v, head, sizeof(head));
    memcpy(v + 9, c->counters, sizeof(c->counters));
}

static void cost_unpack(struct prof_cost *c, const double *v)
{
    c->time = (struct prof_stats){.reps = (int)v[0], .min_ns = v[1], .median_ns = v[2], .mad_ns = v[3],
                                  .mean_ns = v[4], .max_ns = v[5], .rel_ci = v[6]};
    c->copies = (int)v[7];
    c->has_counters = v[8] != 0;
    memcpy(c->counters, v + 9, sizeof(c->counters));
}

static int measure_cost(struct profiler *pr, const struct mq_layer *ly, struct prof_cost *c)
{
    struct be_backend *be = pr->be;
    size_t row_bytes;
    int rc = mq_dtype_row_bytes(c->fmt, c->K, &row_bytes);
    if (rc < 0)
        return rc;
    c->weight_bytes = (uint64_t)row_bytes * (uint64_t)c->N;
    uint64_t llc = pr->p->target.llc_bytes ? pr->p->target.llc_bytes : (uint64_t)32 << 20;
    uint64_t copies = c->warm ? 1 : (2 * llc + c->weight_bytes - 1) / (c->weight_bytes ? c->weight_bytes : 1);
    if (copies < 1)
        copies = 1;
    if (copies > MAX_COPIES)
        copies = MAX_COPIES;
    while (copies > 1 && copies * c->weight_bytes > MAX_COPY_BYTES)
        copies--;
    c->copies = (int)copies;

    struct cost_run r = {.be = be, .n_copies = c->copies};
    const void *data = NULL;
    void *buf = NULL;
    float *x = NULL;
    r.w = calloc((size_t)r.n_copies, sizeof(*r.w));
    if (!r.w) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate weight copies");
        goto done;
    }
    /* plain rounding: a kernel's time does not depend on the values, and the importance
     * search and error compensation (O(n_out * n_in^2)) would only cost time here */
    if ((rc = mq_convert_weights(ly->name, ly->src_type, ly->src_data, ly->n_in, ly->n_out, c->fmt, NULL, NULL, &data,
                                  &buf)) < 0)
        goto done;
    if (!buf) {
        /* the stored type: uploads from the file's mapping could borrow it (be_lend), and
         * the copies that defeat the caches must be distinct memory */
        if (!(buf = malloc(ly->src_nbytes + 1))) {
            rc = mq_error(MQ_ENOMEM, "cannot copy the weights of '%s'", ly->name);
            goto done;
        }
        memcpy(buf, ly->src_data, ly->src_nbytes);
        data = buf;
    }
    mq_model_release_layer(pr->m, (int)(ly - pr->m->layers));
    for (int i = 0; i < r.n_copies; i++)
        if ((rc = be_upload(be, &r.w[i], c->fmt, 2, (int64_t[]){c->K, c->N}, data, BE_USE_MATRIX)) < 0)
            goto done;
    if ((rc = be_alloc(be, &r.x, MQ_DTYPE_F32, 2, (int64_t[]){c->K, c->M})) < 0 ||
        (rc = be_alloc(be, &r.y, MQ_DTYPE_F32, 2, (int64_t[]){c->N, c->M})) < 0)
        goto done;
    x = malloc((size_t)(c->K * c->M) * sizeof(float));
    if (!x) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate activations");
        goto done;
    }
    uint64_t s = 0x2545F4914F6CDD1DULL ^ (uint64_t)c->K;
    for (int64_t i = 0; i < c->K * c->M; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = (float)((double)(s >> 11) * (2.0 / 9007199254740992.0) - 1.0);
    }
    if ((rc = be_write(be, &r.x, 0, x, (size_t)(c->K * c->M) * sizeof(float))) < 0)
        goto done;
    /* warm-up: every copy once (cold) or twice (warm), discarded */
    for (int i = 0; i < (r.n_copies > 1 ? r.n_copies : 2) && rc == MQ_OK; i++)
        rc = cost_once(&r);
    if (rc < 0)
        goto done;
    /* Counters in a pass of their own, before the timed one, opened and closed around
     * it: while per-thread events exist and have been enabled, every pool wake-up costs
     * tens of microseconds more in a VM, which would distort the times. */
    if (pr->count_events) {
        struct prof_counters ctr;
        int tids[PROF_MAX_THREADS];
        int n_tids = be_thread_ids(be, tids, PROF_MAX_THREADS);
        if ((rc = prof_counters_open(&ctr, tids, n_tids, pr->o->multiplex)) < 0)
            goto done;
        double vals[PROF_MAX_EVENTS];
        const int n = 20;
        if (ctr.n_events > 0 && prof_counters_start(&ctr) == MQ_OK) {
            for (int i = 0; i < n && rc == MQ_OK; i++)
                rc = cost_once(&r);
            prof_counters_stop(&ctr, vals);
            if (rc == MQ_OK) {
                c->has_counters = true;
                for (int e = 0; e < ctr.n_events; e++)
                    c->counters[e] = vals[e] / n;
            }
        }
        prof_counters_close(&ctr);
        if (rc < 0)
            goto done;
    }
    struct prof_config mc = {.warmup = -1, .min_reps = r.n_copies > 5 ? (r.n_copies < 50 ? r.n_copies : 50) : 5,
                             .max_seconds = pr->o->max_seconds > 0 ? pr->o->max_seconds : 1.0};
    rc = prof_measure(cost_once, &r, &mc, &c->time);
done:
    free(x);
    free(buf);
    if (r.w)
        for (int i = 0; i < r.n_copies; i++)
            be_free(be, &r.w[i]);
    be_free(be, &r.x);
    be_free(be, &r.y);
    free(r.w);
    return rc;
}

/* The index of the cost of (K, N, M, fmt), measuring (or reading from the cache) when new. */
static int get_cost(struct profiler *pr, const struct mq_layer *ly, int64_t M, enum mq_dtype fmt, int *idx)
{
    struct prof_profile *p = pr->p;
    for (int i = 0; i < p->n_costs; i++) {
        const struct prof_cost *c = &p->costs[i];
        if (c->K == ly->n_in && c->N == ly->n_out && c->M == M && c->fmt == fmt) {
            *idx = i;
            return MQ_OK;
        }
    }
    if (p->n_costs == pr->cap_costs) {
        int cap = pr->cap_costs ? pr->cap_costs * 2 : 64;
        struct prof_cost *nc = realloc(p->costs, (size_t)cap * sizeof(*nc));
        if (!nc)
            return mq_error(MQ_ENOMEM, "cannot grow the cost table");
        p->costs = nc;
        pr->cap_costs = cap;
    }
    struct prof_cost *c = &p->costs[p->n_costs];
    memset(c, 0, sizeof(*c));
    c->K = ly->n_in;
    c->N = ly->n_out;
    c->M = M;
    c->fmt = fmt;
    c->warm = (p->warm_formats >> fmt) & 1u;
    size_t row_bytes;
    int rc = mq_dtype_row_bytes(fmt, c->K, &row_bytes);
    if (rc < 0)
        return rc;
    c->weight_bytes = (uint64_t)row_bytes * (uint64_t)c->N;
    char key[1400];
    double v[COST_VALS];
    cost_key(pr, c, key, sizeof(key));
    if (pr->read_cache && prof_cache_get(pr->cache_dir, key, v, COST_VALS) == COST_VALS) {
        cost_unpack(c, v);
        c->cached = true;
        p->n_cached++;
    } else {
        if (pr->o->progress)
            mq_info("measuring %s [%lld x %lld] x %lld columns (%s)", mq_dtype_name(fmt), (long long)c->N,
                    (long long)c->K, (long long)M, ly->name);
        if ((rc = measure_cost(pr, ly, c)) < 0)
            return rc;
        p->n_measured++;
        if (pr->use_cache) {
            cost_pack(c, v);
            if (prof_cache_put(pr->cache_dir, key, v, COST_VALS) < 0)
                pr->use_cache = false; /* said once; go on without */
        }
    }
    *idx = p->n_costs++;
    return MQ_OK;
}

/* ---- end to end ---- */

struct e2e_run {
    const struct mq_model *m;
    void *session;
};

static int e2e_once(void *arg)
{
    struct e2e_run *r = arg;
    return r->m->runner->session_run(r->session);
}

/* The uniform plan of fmt, with f16 for layers that cannot take fmt. */
static int uniform_plan(const struct mq_model *m, enum mq_dtype fmt, struct mq_plan **out)
{
    int rc = mq_plan_uniform(m, fmt, out);
    if (rc < 0)
        return rc;
    for (int l = 0; l < m->n_layers; l++)
        if (!mq_layer_allows(&m->layers[l], fmt))
            (*out)->fmt[l] = MQ_DTYPE_F16;
    return MQ_OK;
}

static int measure_e2e(struct profiler *pr, enum mq_dtype fmt, struct prof_e2e *e)
{
    const struct mq_model *m = pr->m;
    struct mq_plan *plan = NULL;
    int rc = uniform_plan(m, fmt, &plan);
    if (rc < 0)
        return rc;
    memset(e, 0, sizeof(*e));
    e->fmt = fmt;
    e->sum_layers_ns = 0;
    for (int l = 0; l < m->n_layers; l++)
        e->sum_layers_ns += pr->p->layer_ns[l * MQ_DTYPE_COUNT + plan->fmt[l]];
    if ((rc = m->runner->memory(m, plan, &pr->o->workload, &e->predicted)) < 0)
        goto done;
    char key[1400];
    double v[7];
    snprintf(key, sizeof(key), "%s model=%016llx wl=%s fmt=%s %s", E2E_CACHE_VERSION,
             (unsigned long long)m->content_hash, pr->o->workload.label, mq_dtype_name(fmt), pr->target_key);
    if (pr->read_cache && prof_cache_get(pr->cache_dir, key, v, 7) == 7) {
        e->time = (struct prof_stats){.reps = (int)v[0], .min_ns = v[1], .median_ns = v[2], .mad_ns = v[3],
                                      .mean_ns = v[4], .max_ns = v[5], .rel_ci = v[6]};
        e->cached = true;
        goto done;
    }
    if (pr->o->progress)
        mq_info("measuring the %s workload end to end with the uniform %s plan", pr->o->workload.label,
                mq_dtype_name(fmt));
    struct e2e_run r = {.m = m};
    plan->timing_only = true; /* timed only: plain rounding, as measure_cost's */
    if ((rc = m->runner->session_new(m, plan, pr->be, &pr->o->workload, &r.session)) < 0)
        goto done;
    struct prof_config mc = {.min_reps = 5, .max_seconds = pr->o->max_seconds > 0 ? 2 * pr->o->max_seconds : 2.0};
    rc = prof_measure(e2e_once, &r, &mc, &e->time);
    m->runner->session_free(r.session);
    if (rc == MQ_OK && pr->use_cache) {
        const struct prof_stats *s = &e->time;
        double w[7] = {s->reps, s->min_ns, s->median_ns, s->mad_ns, s->mean_ns, s->max_ns, s->rel_ci};
        prof_cache_put(pr->cache_dir, key, w, 7);
    }
done:
    mq_plan_free(plan);
    return rc;
}

/* The weight bytes of m's uniform plan of fmt (f16 where a layer cannot take it). */
static double uniform_bytes(const struct mq_model *m, enum mq_dtype fmt)
{
    double b = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const struct mq_layer *ly = &m->layers[l];
        size_t row = 0;
        if (mq_dtype_row_bytes(mq_layer_allows(ly, fmt) ? fmt : MQ_DTYPE_F16, ly->n_in, &row) == MQ_OK)
            b += (double)row * (double)ly->n_out;
    }
    return b;
}

/* The formats of the end-to-end runs (profile.h): the menu's, or at most `most` of them
 * spread over weight bytes (the fewest, the most, and evenly between, by rank), in enum
 * order. Returns how many were written to fmts. */
static int e2e_formats(const struct mq_model *m, uint32_t menu, int most, enum mq_dtype *fmts)
{
    int n = 0;
    double bytes[MQ_DTYPE_COUNT];
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        if (!((menu >> f) & 1u))
            continue;
        double b = uniform_bytes(m, (enum mq_dtype)f);
        int i = n++; /* insertion by bytes */
        for (; i > 0 && bytes[i - 1] > b; i--) {
            bytes[i] = bytes[i - 1];
            fmts[i] = fmts[i - 1];
        }
        bytes[i] = b;
        fmts[i] = (enum mq_dtype)f;
    }
    uint32_t chosen = 0;
    if (most <= 0 || n <= most)
        chosen = menu;
    else if (most == 1)
        chosen = 1u << fmts[0];
    else
        for (int k = 0; k < most; k++) /* ranks 0, ..., n-1 evenly */
            chosen |= 1u << fmts[(int)((double)k * (n - 1) / (most - 1) + 0.5)];
    n = 0;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if ((chosen >> f) & 1u)
            fmts[n++] = (enum mq_dtype)f;
    return n;
}

/* Least squares E = glue + scale * S over the end-to-end runs, glue >= 0, scale > 0. */
static void fit_latency_model(struct prof_profile *p)
{
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < p->n_e2e; i++) {
        double x = p->e2e[i].sum_layers_ns, y = p->e2e[i].time.median_ns;
        if (!(x > 0) || !(y > 0))
            continue;
        n++;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    p->glue_ns = 0;
    p->layer_scale = 1;
    if (n == 0)
        return;
    double det = n * sxx - sx * sx;
    double scale = det > 1e-12 * sxx * n ? (n * sxy - sx * sy) / det : NAN;
    double glue = isfinite(scale) ? (sy - scale * sx) / n : NAN;
    if (!(isfinite(scale) && scale > 0 && glue >= 0)) { /* through the origin, then */
        glue = 0;
        scale = sxy / sxx;
    }
    if (!(isfinite(scale) && scale > 0))
        scale = 1;
    p->glue_ns = glue;
    p->layer_scale = scale;
}

/* ---- the target ---- */

static int describe_target(struct profiler *pr)
{
    struct prof_target *t = &pr->p->target;
    struct prof_topology topo;
    int rc = prof_topology_load(&topo);
    if (rc < 0)
        return rc;
    snprintf(t->cpu, sizeof(t->cpu), "%s", topo.cpu_model);
    snprintf(t->arch, sizeof(t->arch), "%s", topo.arch);
    prof_topology_summary(&topo, t->topology, sizeof(t->topology));
    prof_cpu_features(t->features, sizeof(t->features));
    t->cores = topo.cores;
    t->llc_bytes = prof_topology_llc(&topo);
    snprintf(t->backend, sizeof(t->backend), "%s", be_name(pr->be));
    snprintf(t->backend_detail, sizeof(t->backend_detail), "%s", pr->be->info.detail);
    t->threads = be_threads(pr->be);
    int tids[PROF_MAX_THREADS];
    int n = be_thread_ids(pr->be, tids, PROF_MAX_THREADS);
    int pinned = prof_topology_pin(&topo, tids, n, t->pin_note, sizeof(t->pin_note));
    t->pinned = pinned == n;
    if (!t->pinned && !t->pin_note[0])
        snprintf(t->pin_note, sizeof(t->pin_note), "%d of %d threads pinned", pinned, n);
    prof_topology_release(&topo);
#if defined(__aarch64__)
    t->emulated = be_neon_emulated(t->emulated_why, sizeof(t->emulated_why));
#endif
    if (t->emulated)
        mq_warn("running under emulation (%s): these timings say nothing about real hardware", t->emulated_why);
    t->timer_overhead_ns = prof_timer_overhead_ns();
    FILE *la = fopen("/proc/loadavg", "r");
    if (!la || fscanf(la, "%lf", &t->load_avg) != 1)
        t->load_avg = -1;
    if (la)
        fclose(la);
    if (t->load_avg > 0.5 * t->cores)
        mq_warn("the machine is busy (load average %.1f on %d cores): timings will be noisy, and pinned threads "
                "wait for the cores they are pinned to",
                t->load_avg, t->cores);
    snprintf(pr->target_key, sizeof(pr->target_key), "target=[%s|%s|%s|%s|%s|threads=%d|emulated=%d]", t->cpu,
             t->arch, t->topology, t->backend, t->backend_detail, t->threads, t->emulated);
    /* the machine's limits, for rooflines: cached per target */
    char key[1200];
    double v[6];
    snprintf(key, sizeof(key), "%s %s", LIMITS_CACHE_VERSION, pr->target_key);
    if (!(pr->read_cache && prof_cache_get(pr->cache_dir, key, v, 6) == 6)) {
        struct prof_limits L;
        if (pr->o->progress)
            mq_info("measuring this machine's memory bandwidth and peak throughput (%d threads)", t->threads);
        if ((rc = prof_limits_measure(t->threads, &L)) < 0)
            return rc;
        double w[6] = {L.read_gbs[1], L.fma_gflops[1], L.i8_gops[1], L.bf16_gflops[1], L.fma_isa != NULL,
                       L.i8_isa != NULL};
        memcpy(v, w, sizeof(w));
        snprintf(t->fma_isa, sizeof(t->fma_isa), "%s", L.fma_isa ? L.fma_isa : "none");
        snprintf(t->int8_isa, sizeof(t->int8_isa), "%s", L.i8_isa ? L.i8_isa : "none");
        if (pr->use_cache)
            prof_cache_put(pr->cache_dir, key, v, 6);
    } else {
        snprintf(t->fma_isa, sizeof(t->fma_isa), "%s", v[4] != 0 ? "measured earlier" : "none");
        snprintf(t->int8_isa, sizeof(t->int8_isa), "%s", v[5] != 0 ? "measured earlier" : "none");
    }
    t->dram_read_gbs = v[0];
    t->fma_gflops = v[1];
    t->int8_gops = v[2];
    t->bf16_gflops = v[3];
    return MQ_OK;
}

int prof_profile_run(const struct mq_model *m, struct be_backend *be, const struct prof_options *o,
                     struct prof_profile **out)
{
    *out = NULL;
    uint64_t t_start = prof_now_ns();
    int rc = mq_runner_check(m, &o->workload);
    if (rc < 0)
        return rc;
    struct profiler pr = {.m = m, .be = be, .o = o};
    if ((rc = prof_profile_alloc(m->n_layers, &pr.p)) < 0)
        return rc;
    struct prof_profile *p = pr.p;
    if (o->cache_dir) {
        snprintf(pr.cache_dir, sizeof(pr.cache_dir), "%s", o->cache_dir);
        pr.use_cache = true;
        pr.read_cache = !o->cache_refresh;
    }
    snprintf(p->model_path, sizeof(p->model_path), "%s", m->path);
    snprintf(p->model_name, sizeof(p->model_name), "%s", m->name);
    snprintf(p->arch, sizeof(p->arch), "%s", m->arch);
    p->model_hash = m->content_hash;
    for (int l = 0; l < m->n_layers; l++) {
        snprintf(p->layer_names[l], sizeof(p->layer_names[l]), "%s", m->layers[l].name);
        p->layer_in[l] = m->layers[l].n_in;
        p->layer_out[l] = m->layers[l].n_out;
    }
    p->workload = o->workload;
    /* the menu, and every layer's stored format (mq_layer_menu) */
    p->formats = mq_model_menu(m, o->formats);
    if ((rc = describe_target(&pr)) < 0)
        goto fail;
    /* cold or warm, per format */
    size_t used = (size_t)snprintf(p->cache_note, sizeof(p->cache_note), "%s; last-level cache %llu bytes;",
                                   o->cache_mode == PROF_AUTO ? "auto (cold where the uniform plan's weights exceed "
                                                                "the last-level cache)"
                                   : o->cache_mode == PROF_COLD ? "cold (forced)" : "warm (forced)",
                                   (unsigned long long)p->target.llc_bytes);
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        if (!((p->formats >> f) & 1u))
            continue;
        struct mq_plan *up;
        if ((rc = uniform_plan(m, (enum mq_dtype)f, &up)) < 0)
            goto fail;
        uint64_t bytes = mq_plan_weight_bytes(m, up);
        mq_plan_free(up);
        bool warm = o->cache_mode == PROF_WARM ||
                    (o->cache_mode == PROF_AUTO && p->target.llc_bytes && bytes <= p->target.llc_bytes);
        if (warm)
            p->warm_formats |= 1u << f;
        if (used < sizeof(p->cache_note))
            used += (size_t)snprintf(p->cache_note + used, sizeof(p->cache_note) - used, " %s %s (%llu bytes)",
                                     mq_dtype_name((enum mq_dtype)f), warm ? "warm" : "cold",
                                     (unsigned long long)bytes);
    }

    /* which counters exist, over every backend thread (opened per measured region later) */
    int tids[PROF_MAX_THREADS];
    int n_tids = be_thread_ids(be, tids, PROF_MAX_THREADS);
    struct prof_counters ctr;
    if ((rc = prof_counters_open(&ctr, tids, n_tids, o->multiplex)) < 0)
        goto fail;
    p->n_events = ctr.n_events;
    memcpy(p->events, ctr.events, sizeof(p->events));
    p->n_missing = ctr.n_missing;
    memcpy(p->missing, ctr.missing, sizeof(p->missing));
    memcpy(p->missing_why, ctr.missing_why, sizeof(p->missing_why));
    p->multiplexed = ctr.multiplexed;
    snprintf(p->papi_status, sizeof(p->papi_status), "%s", ctr.papi_status);
    prof_counters_close(&ctr);
    pr.count_events = p->n_events > 0;

    /* per-layer costs */
    for (int l = 0; l < m->n_layers; l++) {
        const struct mq_layer *ly = &m->layers[l];
        int64_t M[4], calls[4];
        int n_work = m->runner->layer_work(m, l, &o->workload, M, calls);
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            if (!((p->formats >> f) & 1u) || !mq_layer_allows(ly, (enum mq_dtype)f))
                continue;
            double ns = 0;
            for (int k = 0; k < n_work; k++) {
                int idx = 0;
                if ((rc = get_cost(&pr, ly, M[k], (enum mq_dtype)f, &idx)) < 0)
                    goto fail;
                ns += (double)calls[k] * p->costs[idx].time.median_ns;
            }
            p->layer_ns[l * MQ_DTYPE_COUNT + f] = ns;
        }
    }
    /* end to end */
    if (!o->no_e2e) { /* the uniform plans of the menu's formats (not the stored ones) */
        uint32_t menu = o->formats ? o->formats : mq_dtype_default_formats();
        int most = o->e2e_max > 0 ? o->e2e_max
                   : uniform_bytes(m, MQ_DTYPE_F16) > (double)PROF_E2E_BIG_BYTES ? PROF_E2E_BIG_RUNS : 0;
        enum mq_dtype fmts[MQ_DTYPE_COUNT];
        int n = e2e_formats(m, menu, most, fmts);
        if (n < __builtin_popcount(menu) && o->progress)
            mq_info("end to end: %d of the %d formats' uniform plans (a big model: each run converts all of it)", n,
                    __builtin_popcount(menu));
        for (int i = 0; i < n; i++) {
            if ((rc = measure_e2e(&pr, fmts[i], &p->e2e[p->n_e2e])) < 0)
                goto fail;
            p->n_e2e++;
        }
        fit_latency_model(p);
    }
    p->wall_seconds = (double)(prof_now_ns() - t_start) * 1e-9;
    *out = p;
    return MQ_OK;
fail:
    prof_profile_free(p);
    return rc;
}

/* ---- memory probe ---- */

static uint64_t proc_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t v = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtoull(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v * 1024;
}

int prof_memory_probe_child(const char *model_path, const char *shapes, const char *backend, int threads, const char *workload,
                            const char *plan_text)
{
    struct mq_workload w;
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    struct mq_plan *plan = NULL;
    void *session = NULL;
    int rc;
    struct mq_input_shapes sh = {0};
    char why[256];
    if ((rc = mq_workload_parse(workload, &w)) < 0)
        return rc;
    if (shapes && (rc = mq_input_shapes_parse(shapes, &sh, why, sizeof(why))) < 0)
        return mq_error(rc, "memory probe: input shapes '%s': %s", shapes, why);
    rc = mq_model_load_shaped(model_path, &sh, &m);
    mq_input_shapes_release(&sh);
    if (rc < 0 ||
        (rc = be_open(backend, &(struct be_config){.n_threads = threads}, &be)) < 0 ||
        (rc = mq_model_lend(m, be)) < 0 || (rc = mq_plan_from_string(m, plan_text, &plan)) < 0)
        goto done;
    /* A small session of the same workload kind runs first and is freed: it faults in
     * the code pages and thread stacks that any run touches, so that they count in the
     * baseline (runtime overhead) and not as the session's memory. */
    struct mq_workload small = w;
    small.ctx = small.ctx > 1 ? 1 : small.ctx;
    small.prompt = small.prompt > 15 ? 15 : small.prompt;
    small.gen = small.gen > 1 ? 1 : small.gen;
    small.batch = 1;
    void *warm = NULL;
    if ((rc = m->runner->session_new(m, plan, be, &small, &warm)) < 0)
        goto done;
    rc = m->runner->session_run(warm);
    m->runner->session_free(warm);
    malloc_trim(0); /* give the freed heap pages back, so they do not count as overhead */
    if (rc < 0)
        goto done;
    /* the source file's pages are read to load and convert weights; they are not what a
     * deployment keeps resident, so they are dropped before measuring */
    mq_model_drop_pages(m);
    uint64_t baseline = proc_status_kb("VmRSS");
    if ((rc = m->runner->session_new(m, plan, be, &w, &session)) < 0)
        goto done;
    mq_model_drop_pages(m);
    /* reset the high-water mark to the current RSS, then run the workload twice */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    if (cr) {
        fputs("5", cr);
        fclose(cr);
    }
    for (int i = 0; i < 2 && rc == MQ_OK; i++)
        rc = m->runner->session_run(session);
    if (rc == MQ_OK)
        printf("baseline_rss %llu\npeak_rss %llu\n", (unsigned long long)baseline,
               (unsigned long long)proc_status_kb("VmHWM"));
done:
    if (session)
        m->runner->session_free(session);
    mq_plan_free(plan);
    be_close(be);
    mq_model_free(m);
    return rc;
}

int prof_profile_probe_memory(const struct mq_model *m, struct prof_profile *p, const char *backend, int threads)
{
    char why[256];
    if (prof_memory_probe_unusable(why, sizeof(why))) {
        mq_warn("peak RSS not measured: %s; memory comes from the memory model alone", why);
        return MQ_OK;
    }
    for (int i = 0; i < p->n_e2e; i++) {
        uint64_t peak, baseline;
        struct mq_plan *up;
        int rc = uniform_plan(m, p->e2e[i].fmt, &up);
        if (rc < 0)
            return rc;
        rc = prof_memory_probe(m->path, m->input_shapes, backend, threads, &p->workload, up, &peak, &baseline);
        mq_plan_free(up);
        if (rc < 0)
            return rc;
        p->e2e[i].measured_rss = peak;
        p->overhead_bytes = baseline;
    }
    for (int i = 0; i < p->n_e2e; i++) {
        struct mq_memory *pm = &p->e2e[i].predicted;
        pm->overhead = p->overhead_bytes;
        pm->total = pm->weights + pm->kv_cache + pm->scratch + pm->overhead;
    }
    return MQ_OK;
}

bool prof_memory_probe_unusable(char *why, size_t size)
{
    char emu[256];
    if (!be_neon_emulated(emu, sizeof(emu)))
        return false;
    snprintf(why, size, "under emulation (%.150s) a probe's peak RSS would be the emulator's", emu);
    return true;
}

int prof_memory_probe(const char *model_path, const char *shapes, const char *backend, int threads, const struct mq_workload *w,
                      const struct mq_plan *plan, uint64_t *peak, uint64_t *baseline)
{
    *peak = *baseline = 0;
    char *plan_text;
    int rc = mq_plan_to_string(plan, &plan_text);
    if (rc < 0)
        return rc;
    int fds[2];
    if (pipe(fds) != 0) {
        free(plan_text);
        return mq_error(MQ_EIO, "memory probe: pipe: %s", strerror(errno));
    }
    char threads_s[16];
    snprintf(threads_s, sizeof(threads_s), "%d", threads);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        free(plan_text);
        return mq_error(MQ_EIO, "memory probe: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        prof_topology_unpin_self(); /* its threads on every CPU, not all on this thread's core */
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        /* the mixq executable: this one, unless MIXQ_EXE names it (tests run from other binaries) */
        const char *exe = getenv("MIXQ_EXE");
        execl(exe && *exe ? exe : "/proc/self/exe", "mixq", "-q", "__memory-probe", model_path, backend, threads_s,
              w->label, plan_text, shapes, (char *)NULL); /* shapes NULL: no 7th argument */
        _exit(127);
    }
    free(plan_text);
    close(fds[1]);
    char out[512] = "";
    size_t n = 0;
    ssize_t k;
    while (n + 1 < sizeof(out) && (k = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    unsigned long long b = 0, pk = 0;
    const char *pb = strstr(out, "baseline_rss "), *pp = strstr(out, "peak_rss ");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !pb || !pp || sscanf(pb, "baseline_rss %llu", &b) != 1 ||
        sscanf(pp, "peak_rss %llu", &pk) != 1)
        return mq_error(MQ_EIO, "memory probe of '%s' (plan %s) failed (exit status %d)", model_path, plan->label,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    *peak = pk;
    *baseline = b;
    return MQ_OK;
}
