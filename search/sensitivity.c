/* search/sensitivity.c - measured, grouped, calibrated and proxy per-layer sensitivity:
 * what to measure and what the numbers mean; the passes are profiler/quality.h's. */
#include "search/sensitivity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/progress.h"
#include "core/status.h"
#include "llm/llama.h"
#include "model/plan.h"
#include "profiler/measure.h"
#include "profiler/quality.h"

#define SENS_CACHE_VERSION "sens/2" /* 2: losses against mq_plan_reference, not all-f32 */

/* the calibrated fit's slope is kept within these (a noisy pair of points must not make
 * more error mean less KL, nor a steep extrapolation) */
#define CALIB_SLOPE_MIN 0.25
#define CALIB_SLOPE_MAX 4.0
/* narrow formats each group is measured at (group_picks) */
#define CALIB_PICKS 3

static const char *const method_names[] = {
    [SRCH_SENS_MEASURED] = "measured", [SRCH_SENS_PROXY] = "proxy",     [SRCH_SENS_GROUPED] = "grouped",
    [SRCH_SENS_CALIBRATED] = "calibrated", [SRCH_SENS_AUTO] = "auto",
};

const char *srch_sens_method_name(enum srch_sens_method m)
{
    return (unsigned)m < sizeof(method_names) / sizeof(method_names[0]) ? method_names[m] : "proxy";
}

int srch_sens_method_parse(const char *text, enum srch_sens_method *out)
{
    for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
        if (!strcmp(text, method_names[i])) {
            *out = (enum srch_sens_method)i;
            return MQ_OK;
        }
    return MQ_EINVAL;
}

static const char *const source_names[SRCH_SRC_COUNT] = {
    [SRCH_SRC_NONE] = "", [SRCH_SRC_MEASURED] = "measured", [SRCH_SRC_SHARED] = "shared",
    [SRCH_SRC_PREDICTED] = "predicted", [SRCH_SRC_PROXY] = "proxy",
};

const char *srch_sens_source_name(enum srch_sens_source src)
{
    return (unsigned)src < SRCH_SRC_COUNT ? source_names[src] : "";
}

int srch_sens_source_parse(const char *text, enum srch_sens_source *out)
{
    for (int i = 1; i < SRCH_SRC_COUNT; i++)
        if (!strcmp(text, source_names[i])) {
            *out = (enum srch_sens_source)i;
            return MQ_OK;
        }
    return MQ_EINVAL;
}

int srch_sensitivity_alloc(int n_layers, struct srch_sensitivity **out)
{
    *out = NULL;
    struct srch_sensitivity *s = calloc(1, sizeof(*s));
    if (!s)
        return mq_error(MQ_ENOMEM, "cannot allocate a sensitivity table");
    size_t n = (size_t)(n_layers > 0 ? n_layers : 1);
    s->n_layers = n_layers;
    s->names = calloc(n, sizeof(*s->names));
    s->group = malloc(n * sizeof(*s->group));
    s->loss = malloc(n * MQ_DTYPE_COUNT * sizeof(double));
    s->kl = malloc(n * MQ_DTYPE_COUNT * sizeof(double));
    s->metric = malloc(n * MQ_DTYPE_COUNT * sizeof(double));
    s->proxy = malloc(n * MQ_DTYPE_COUNT * sizeof(double));
    s->err = malloc(n * MQ_DTYPE_COUNT * sizeof(double));
    s->source = calloc(n * MQ_DTYPE_COUNT, sizeof(*s->source));
    if (!s->names || !s->group || !s->loss || !s->kl || !s->metric || !s->proxy || !s->err || !s->source) {
        srch_sensitivity_free(s);
        return mq_error(MQ_ENOMEM, "cannot allocate a sensitivity table of %d layers", n_layers);
    }
    for (size_t i = 0; i < n * MQ_DTYPE_COUNT; i++)
        s->loss[i] = s->kl[i] = s->metric[i] = s->proxy[i] = s->err[i] = NAN;
    for (size_t i = 0; i < n; i++)
        s->group[i] = -1;
    s->rank_corr = NAN;
    s->ref_metric = NAN;
    s->loo_median_err = s->loo_worst_err = NAN;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        s->all_kl[f] = s->all_metric[f] = NAN;
    for (int r = 0; r < MQ_ROLE_COUNT; r++)
        s->role_b[r] = NAN;
    *out = s;
    return MQ_OK;
}

void srch_sensitivity_free(struct srch_sensitivity *s)
{
    if (!s)
        return;
    free(s->names);
    free(s->group);
    free(s->group_names);
    free(s->group_size);
    free(s->group_kl);
    free(s->group_metric);
    free(s->group_err);
    free(s->group_loo);
    free(s->group_a);
    free(s->loss);
    free(s->kl);
    free(s->metric);
    free(s->proxy);
    free(s->err);
    free(s->source);
    free(s);
}
int srch_sensitivity_matches(const struct srch_sensitivity *s, const struct mq_model *m)
{
    if (s->n_layers != m->n_layers)
        return mq_error(MQ_EINVAL, "sensitivity table of '%s' has %d layers, model '%s' has %d", s->model_path,
                        s->n_layers, m->path, m->n_layers);
    for (int l = 0; l < m->n_layers; l++)
        if (strcmp(s->names[l], m->layers[l].name) != 0)
            return mq_error(MQ_EINVAL, "sensitivity layer %d is '%s', the model's is '%s'", l, s->names[l],
                            m->layers[l].name);
    return MQ_OK;
}

/* ---- Spearman rank correlation ---- */

struct ranked {
    double v;
    int i;
};

static int cmp_ranked(const void *a, const void *b)
{
    double x = ((const struct ranked *)a)->v, y = ((const struct ranked *)b)->v;
    return (x > y) - (x < y);
}

/* Average ranks (ties share the mean of their positions). */
static void ranks(const double *v, int n, double *r, struct ranked *tmp)
{
    for (int i = 0; i < n; i++)
        tmp[i] = (struct ranked){v[i], i};
    qsort(tmp, (size_t)n, sizeof(*tmp), cmp_ranked);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && tmp[j + 1].v == tmp[i].v)
            j++;
        for (int k = i; k <= j; k++)
            r[tmp[k].i] = 0.5 * (i + j);
        i = j + 1;
    }
}

double srch_spearman(const double *a, const double *b, int n)
{
    double *x = malloc((size_t)(n + 1) * sizeof(double)), *y = malloc((size_t)(n + 1) * sizeof(double));
    double *rx = malloc((size_t)(n + 1) * sizeof(double)), *ry = malloc((size_t)(n + 1) * sizeof(double));
    struct ranked *tmp = malloc((size_t)(n + 1) * sizeof(*tmp));
    double rho = NAN;
    int m = 0;
    if (!x || !y || !rx || !ry || !tmp)
        goto done;
    for (int i = 0; i < n; i++)
        if (isfinite(a[i]) && isfinite(b[i])) {
            x[m] = a[i];
            y[m++] = b[i];
        }
    if (m < 3)
        goto done;
    ranks(x, m, rx, tmp);
    ranks(y, m, ry, tmp);
    double mx = 0, my = 0;
    for (int i = 0; i < m; i++) {
        mx += rx[i];
        my += ry[i];
    }
    mx /= m;
    my /= m;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < m; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    rho = sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
done:
    free(x);
    free(y);
    free(rx);
    free(ry);
    free(tmp);
    return rho;
}


/* ---- the calibrated fit ---- */

int srch_calib_fit(const struct srch_calib_point *pt, int n, int skip, int n_groups, const int *group_role,
                   double *a, double *b)
{
    double *sx = calloc((size_t)n_groups + 1, sizeof(double)), *sy = calloc((size_t)n_groups + 1, sizeof(double));
    int *cnt = calloc((size_t)n_groups + 1, sizeof(int));
    if (!sx || !sy || !cnt) {
        free(sx);
        free(sy);
        free(cnt);
        return mq_error(MQ_ENOMEM, "cannot allocate the calibration fit of %d groups", n_groups);
    }
#define CALIB_USED(k) ((k) != skip && pt[k].err > 0 && pt[k].kl > 0 && pt[k].n > 0 && isfinite(pt[k].err) && \
                       isfinite(pt[k].kl) && pt[k].group >= 0 && pt[k].group < n_groups)
#define CALIB_X(k) log(pt[k].err)
#define CALIB_Y(k) log(pt[k].kl / pt[k].n)
    for (int k = 0; k < n; k++)
        if (CALIB_USED(k)) {
            sx[pt[k].group] += CALIB_X(k);
            sy[pt[k].group] += CALIB_Y(k);
            cnt[pt[k].group]++;
        }
    /* the slope within groups, pooled per role and over all roles */
    double sxy[MQ_ROLE_COUNT] = {0}, sxx[MQ_ROLE_COUNT] = {0}, all_xy = 0, all_xx = 0;
    bool seen[MQ_ROLE_COUNT] = {false};
    for (int k = 0; k < n; k++) {
        if (!CALIB_USED(k))
            continue;
        int g = pt[k].group, r = pt[k].role;
        double dx = CALIB_X(k) - sx[g] / cnt[g], dy = CALIB_Y(k) - sy[g] / cnt[g];
        if (r >= 0 && r < MQ_ROLE_COUNT) {
            sxy[r] += dx * dy;
            sxx[r] += dx * dx;
            seen[r] = true;
        }
        all_xy += dx * dy;
        all_xx += dx * dx;
    }
    const double tiny = 1e-6; /* (log units)^2: formats whose errors hardly differ tell no slope */
    double b_all = all_xx > tiny ? all_xy / all_xx : 1.0;
    b_all = fmin(fmax(b_all, CALIB_SLOPE_MIN), CALIB_SLOPE_MAX);
    for (int r = 0; r < MQ_ROLE_COUNT; r++) {
        double v = seen[r] && sxx[r] > tiny ? sxy[r] / sxx[r] : b_all;
        b[r] = fmin(fmax(v, CALIB_SLOPE_MIN), CALIB_SLOPE_MAX);
    }
    /* intercepts: the group's own points; else its role's groups' mean; else all groups' */
    double ra[MQ_ROLE_COUNT] = {0}, sum_a = 0;
    int rn[MQ_ROLE_COUNT] = {0}, n_a = 0;
    for (int g = 0; g < n_groups; g++) {
        int r = group_role[g];
        a[g] = NAN;
        if (!cnt[g] || r < 0 || r >= MQ_ROLE_COUNT)
            continue;
        a[g] = (sy[g] - b[r] * sx[g]) / cnt[g];
        ra[r] += a[g];
        rn[r]++;
        sum_a += a[g];
        n_a++;
    }
    for (int g = 0; g < n_groups; g++) {
        int r = group_role[g];
        if (!isnan(a[g]))
            continue;
        if (r >= 0 && r < MQ_ROLE_COUNT && rn[r])
            a[g] = ra[r] / rn[r];
        else if (n_a)
            a[g] = sum_a / n_a;
    }
#undef CALIB_USED
#undef CALIB_X
#undef CALIB_Y
    free(sx);
    free(sy);
    free(cnt);
    return MQ_OK;
}

int srch_calib_loo(const struct srch_calib_point *pt, int n, int k, int n_groups, const int *group_role,
                   double *pred)
{
    *pred = NAN;
    double *a = malloc(((size_t)n_groups + 1) * sizeof(double)), b[MQ_ROLE_COUNT];
    if (!a)
        return mq_error(MQ_ENOMEM, "cannot allocate the calibration fit of %d groups", n_groups);
    int rc = srch_calib_fit(pt, n, k, n_groups, group_role, a, b);
    int g = pt[k].group, r = pt[k].role;
    if (rc == MQ_OK && g >= 0 && g < n_groups && r >= 0 && r < MQ_ROLE_COUNT && pt[k].err > 0 && !isnan(a[g]))
        *pred = pt[k].n * exp(a[g] + b[r] * log(pt[k].err));
    free(a);
    return rc;
}

/* ---- evaluations (profiler/quality.h runs them) ---- */

/* The progress line (core/progress.h); cached evaluations cost nothing and stay out of
 * the estimate of the time left. */
static void eval_progress(const struct prof_quality *pq, struct mq_progress *pr, int done, int total,
                          const char *what, const char *fmt)
{
    pr->total = total;
    bool cached = pr->done - pr->free >= pq->n_evaluated;
    char detail[400];
    snprintf(detail, sizeof(detail), "%s %s", what, fmt);
    mq_progress_step(pr, done, cached, detail);
}

/* What the evaluations said about the metric, into the table. */
static void take_metric(const struct prof_quality *pq, struct srch_sensitivity *s)
{
    if (!isnan(pq->ref_metric))
        s->ref_metric = pq->ref_metric;
    if (pq->metric_name[0]) {
        snprintf(s->metric_name, sizeof(s->metric_name), "%s", pq->metric_name);
        s->higher_is_better = pq->higher_is_better;
    }
    s->n_samples = pq->n_samples;
    s->n_evaluated += pq->n_evaluated;
    s->n_cached += pq->n_cached;
}

/* 16 bits and more: near lossless, measured once over all layers. */
static bool wide_format(enum mq_dtype f)
{
    const struct mq_dtype_traits *tr = mq_dtype_get(f);
    return 8 * (int64_t)tr->block_bytes >= 16 * (int64_t)tr->block_elems;
}
/* ---- grouped: layers of a role within a depth range, measured together ---- */

/* Assigns s->group[l] for the unpinned layers and names the groups. */
static int make_groups(const struct mq_model *m, const uint8_t *pinned, int depth_groups, struct srch_sensitivity *s)
{
    int L = m->n_layers, G = depth_groups > 0 ? depth_groups : SRCH_SENS_DEFAULT_DEPTH_GROUPS;
    int *pos = malloc((size_t)(L + 1) * sizeof(int)), *count = calloc(MQ_ROLE_COUNT, sizeof(int));
    int *maxpos = calloc(MQ_ROLE_COUNT, sizeof(int));
    int *bucket_group = malloc((size_t)(MQ_ROLE_COUNT * (G + 2)) * sizeof(int));
    s->group_names = calloc((size_t)L + 1, sizeof(*s->group_names));
    s->group_size = calloc((size_t)L + 1, sizeof(*s->group_size));
    if (!pos || !count || !maxpos || !bucket_group || !s->group_names || !s->group_size) {
        free(pos);
        free(count);
        free(maxpos);
        free(bucket_group);
        return mq_error(MQ_ENOMEM, "cannot allocate the sensitivity groups");
    }
    /* depth: the block, or the order among the layers of the role */
    for (int l = 0; l < L; l++) {
        int r = m->layers[l].role;
        pos[l] = m->layers[l].block >= 0 ? m->layers[l].block : count[r];
        count[r]++;
        if (pos[l] > maxpos[r])
            maxpos[r] = pos[l];
    }
    for (int i = 0; i < MQ_ROLE_COUNT * (G + 2); i++)
        bucket_group[i] = -1;
    s->n_groups = 0;
    for (int l = 0; l < L; l++) {
        s->group[l] = -1;
        if (pinned[l] != MQ_DTYPE_COUNT)
            continue;
        int r = m->layers[l].role, P = maxpos[r] + 1, p = pos[l], b, lo, hi;
        if (P == 1) { /* a single position */
            b = 0;
            lo = hi = p;
        } else if (G == 1) { /* the whole role */
            b = 0;
            lo = 0;
            hi = P - 1;
        } else if (P <= G) { /* a group per position */
            b = p;
            lo = hi = p;
        } else if (p == 0) {
            b = 0;
            lo = hi = 0;
        } else if (G == 2) { /* the first, the rest */
            b = 1;
            lo = 1;
            hi = P - 1;
        } else if (p == P - 1) {
            b = G - 1;
            lo = hi = P - 1;
        } else { /* positions 1 .. P-2 in G-2 even ranges */
            int mid = P - 2, k = (int)((int64_t)(p - 1) * (G - 2) / mid);
            b = 1 + k;
            lo = 1 + (int)(((int64_t)k * mid + (G - 3)) / (G - 2));
            hi = (int)(((int64_t)(k + 1) * mid + (G - 3)) / (G - 2));
        }
        int *slot = &bucket_group[r * (G + 2) + b];
        if (*slot < 0) {
            *slot = s->n_groups++;
            char *nm = s->group_names[*slot];
            if (m->layers[l].block < 0 && count[r] == 1)
                snprintf(nm, sizeof(s->group_names[0]), "%.63s", m->layers[l].name);
            else if (m->layers[l].block >= 0)
                snprintf(nm, sizeof(s->group_names[0]), lo == hi ? "%s blk.%d" : "%s blk.%d-%d",
                         mq_layer_role_name((enum mq_layer_role)r), lo, hi);
            else
                snprintf(nm, sizeof(s->group_names[0]), lo == hi ? "%s #%d" : "%s #%d-%d",
                         mq_layer_role_name((enum mq_layer_role)r), lo, hi);
        }
        s->group[l] = *slot;
        s->group_size[*slot]++;
    }
    free(pos);
    free(count);
    free(maxpos);
    free(bucket_group);
    size_t ng = (size_t)s->n_groups + 1;
    s->group_kl = malloc(ng * MQ_DTYPE_COUNT * sizeof(double));
    s->group_metric = malloc(ng * MQ_DTYPE_COUNT * sizeof(double));
    s->group_err = malloc(ng * MQ_DTYPE_COUNT * sizeof(double));
    s->group_loo = malloc(ng * MQ_DTYPE_COUNT * sizeof(double));
    s->group_a = malloc(ng * sizeof(double));
    if (!s->group_kl || !s->group_metric || !s->group_err || !s->group_loo || !s->group_a)
        return mq_error(MQ_ENOMEM, "cannot allocate the sensitivity groups");
    for (size_t i = 0; i < ng * MQ_DTYPE_COUNT; i++)
        s->group_kl[i] = s->group_metric[i] = s->group_err[i] = s->group_loo[i] = NAN;
    for (size_t i = 0; i < ng; i++)
        s->group_a[i] = NAN;
    return MQ_OK;
}


/* Sets `plan` to group g's layers (every grouped layer, for a wide format) in f (member[l]
 * true) and every other layer as in the reference plan `ref` (mq_plan_reference), and
 * evaluates it through the cache. *n_in: the layers in f (0: none, nothing evaluated). */
static int eval_group(const struct mq_model *m, struct prof_quality *pq, uint32_t formats,
                      const struct srch_sensitivity *s, const struct mq_plan *ref, struct mq_plan *plan, bool *member,
                      int g, bool wide, enum mq_dtype f, int *n_in, double v[4])
{
    uint64_t members = 0x67727075ULL;
    *n_in = 0;
    for (int l = 0; l < m->n_layers; l++) {
        bool in = s->group[l] >= 0 && (wide || s->group[l] == g) && prof_quality_analysed(formats, &m->layers[l], f);
        plan->fmt[l] = in ? f : ref->fmt[l];
        member[l] = in;
        if (in) {
            members = mq_hash64(m->layers[l].name, strlen(m->layers[l].name), members);
            (*n_in)++;
        }
    }
    if (!*n_in)
        return MQ_OK;
    char what[512];
    snprintf(what, sizeof(what), "%s group=%016llx model=%016llx imp=%016llx fmt=%s", SENS_CACHE_VERSION,
             (unsigned long long)members, (unsigned long long)m->content_hash, (unsigned long long)m->imp_hash,
             mq_dtype_name(f));
    return prof_quality_eval(pq, what, plan, v);
}

/* The plans every evaluation starts from: *ref, the reference (mq_plan_reference: what
 * every loss is measured against, each layer as stored where the backend runs it), *plan a
 * copy that evaluations change, and *member, which layers an evaluation changed. */
static int base_plans(const struct mq_model *m, struct be_backend *be, struct mq_plan **ref, struct mq_plan **plan,
                      bool **member)
{
    *plan = NULL;
    *member = NULL;
    int rc = mq_plan_reference(m, be, ref);
    if (rc == MQ_OK)
        rc = mq_plan_clone(*ref, plan);
    if (rc == MQ_OK && !(*member = calloc((size_t)m->n_layers + 1, sizeof(bool))))
        rc = mq_error(MQ_ENOMEM, "cannot allocate a plan of %d layers", m->n_layers);
    return rc;
}

static void base_free(struct mq_plan *ref, struct mq_plan *plan, bool *member)
{
    mq_plan_free(ref);
    mq_plan_free(plan);
    free(member);
}

static int run_grouped(const struct mq_model *m, struct be_backend *be, const struct srch_sens_options *o,
                       uint32_t formats, const uint8_t *pinned, struct srch_sensitivity *s)
{
    struct mq_plan *plan = NULL, *ref = NULL;
    bool *member = NULL;
    int rc = make_groups(m, pinned, o->depth_groups, s);
    if (rc == MQ_OK)
        rc = base_plans(m, be, &ref, &plan, &member);
    if (rc < 0) {
        base_free(ref, plan, member);
        return rc;
    }
    struct prof_quality pq;
    prof_quality_init(&pq, m, be, &o->quality, o->cache_dir, o->cache_refresh, o->progress);
    struct mq_progress pr;
    mq_progress_init(&pr, o->progress, "sensitivity", 0);
    int total = 0, done = 0;
    uint32_t all = mq_model_menu(m, formats);
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if ((all >> f) & 1u && f != MQ_DTYPE_F32)
            total += wide_format((enum mq_dtype)f) ? 1 : s->n_groups;
    for (int pass = prof_quality_distributed(&pq) ? 0 : 1; pass < 2 && rc == MQ_OK; pass++) {
        pq.collect = pass == 0;
        for (int f = 0; f < MQ_DTYPE_COUNT && rc == MQ_OK; f++) {
            if (!((all >> f) & 1u) || f == MQ_DTYPE_F32)
                continue;
            bool wide = wide_format((enum mq_dtype)f);
            for (int g = 0; g < (wide ? 1 : s->n_groups) && rc == MQ_OK; g++) {
                double v[4];
                int n_in;
                if ((rc = eval_group(m, &pq, formats, s, ref, plan, member, g, wide,
                                     (enum mq_dtype)f, &n_in, v)) < 0)
                    break;
                if (!n_in)
                    continue;
                if (!pq.collect)
                    eval_progress(&pq, &pr, ++done, total, wide ? "all layers" : s->group_names[g],
                                  mq_dtype_name((enum mq_dtype)f));
                if (wide) {
                    s->all_kl[f] = v[0];
                    s->all_metric[f] = v[1];
                } else {
                    s->group_kl[g * MQ_DTYPE_COUNT + f] = v[0];
                    s->group_metric[g * MQ_DTYPE_COUNT + f] = v[1];
                }
                /* shared out within the group by weight count (see sensitivity.h) */
                double weights = 0;
                for (int l = 0; l < m->n_layers; l++)
                    if (member[l])
                        weights += (double)m->layers[l].n_in * (double)m->layers[l].n_out;
                for (int l = 0; l < m->n_layers; l++) {
                    if (!member[l])
                        continue;
                    size_t i = (size_t)l * MQ_DTYPE_COUNT + (size_t)f;
                    s->loss[i] = fmax(v[0], 0) *
                                 ((double)m->layers[l].n_in * (double)m->layers[l].n_out / weights);
                    s->source[i] = n_in == 1 ? SRCH_SRC_MEASURED : SRCH_SRC_SHARED;
                    if (n_in == 1) {
                        s->kl[i] = v[0];
                        s->metric[i] = v[1];
                    }
                }
            }
        }
        if (pass == 0 && rc == MQ_OK)
            rc = prof_quality_flush(&pq);
    }
    mq_progress_end(&pr);
    take_metric(&pq, s);
    prof_quality_release(&pq);
    base_free(ref, plan, member);
    return rc;
}

/* ---- measured: one layer at a time against the full-precision model ---- */

static int run_measured(const struct mq_model *m, struct be_backend *be, const struct srch_sens_options *o,
                        uint32_t formats, const uint8_t *pinned, struct srch_sensitivity *s)
{
    struct mq_plan *plan = NULL, *ref = NULL;
    bool *member = NULL;
    int rc = base_plans(m, be, &ref, &plan, &member);
    if (rc < 0) {
        base_free(ref, plan, member);
        return rc;
    }
    struct prof_quality pq;
    prof_quality_init(&pq, m, be, &o->quality, o->cache_dir, o->cache_refresh, o->progress);
    int total = 0, done = 0;
    for (int l = 0; l < m->n_layers; l++)
        for (int f = 0; f < MQ_DTYPE_COUNT; f++)
            total += pinned[l] == MQ_DTYPE_COUNT && prof_quality_analysed(formats, &m->layers[l], f);
    if (o->progress)
        mq_info("measured sensitivity: %d evaluations (each analysed layer in each offered format but its stored "
                "one), cached ones free", total);
    struct mq_progress pr;
    mq_progress_init(&pr, o->progress, "sensitivity", total);
    /* distributed: a first pass notes the evaluations, which the ranks share (quality.h) */
    for (int pass = prof_quality_distributed(&pq) ? 0 : 1; pass < 2 && rc == MQ_OK; pass++) {
        pq.collect = pass == 0;
        for (int l = 0; l < m->n_layers && rc == MQ_OK; l++) {
            for (int f = 0; f < MQ_DTYPE_COUNT && rc == MQ_OK; f++) {
                if (pinned[l] != MQ_DTYPE_COUNT ||
                    !prof_quality_analysed(formats, &m->layers[l], f))
                    continue;
                char what[1200];
                snprintf(what, sizeof(what), "%s model=%016llx imp=%016llx layer=%d:%s fmt=%s",
                         SENS_CACHE_VERSION, (unsigned long long)m->content_hash,
                         (unsigned long long)m->imp_hash, l, m->layers[l].name,
                         mq_dtype_name((enum mq_dtype)f));
                double v[4];
                plan->fmt[l] = (enum mq_dtype)f;
                rc = prof_quality_eval(&pq, what, plan, v);
                plan->fmt[l] = ref->fmt[l];
                if (rc < 0)
                    break;
                s->kl[l * MQ_DTYPE_COUNT + f] = v[0];
                s->metric[l * MQ_DTYPE_COUNT + f] = v[1];
                s->source[l * MQ_DTYPE_COUNT + f] = SRCH_SRC_MEASURED;
                if (!pq.collect)
                    eval_progress(&pq, &pr, ++done, total, m->layers[l].name,
                                  mq_dtype_name((enum mq_dtype)f));
            }
        }
        if (pass == 0 && rc == MQ_OK)
            rc = prof_quality_flush(&pq);
    }
    mq_progress_end(&pr);
    take_metric(&pq, s);
    prof_quality_release(&pq);
    base_free(ref, plan, member);
    return rc;
}

static int count_measured(const struct mq_model *m, uint32_t formats, const uint8_t *pinned)
{
    uint32_t menu = formats ? formats : mq_dtype_default_formats();
    int n = 0;
    for (int l = 0; l < m->n_layers; l++)
        for (int f = 0; f < MQ_DTYPE_COUNT; f++)
            n += pinned[l] == MQ_DTYPE_COUNT && prof_quality_analysed(menu, &m->layers[l], f);
    return n;
}

/* ---- calibrated: weight errors, a few measured points, a fitted map ---- */

/* Every unpinned layer's weight error in every analysed format. */
static int weight_errors(const struct mq_model *m, const struct srch_sens_options *o, uint32_t formats,
                         const uint8_t *pinned, struct srch_sensitivity *s)
{
    uint8_t *want = malloc((size_t)m->n_layers + 1);
    if (!want)
        return mq_error(MQ_ENOMEM, "cannot allocate %d layer flags", m->n_layers);
    for (int l = 0; l < m->n_layers; l++) {
        want[l] = pinned[l] == MQ_DTYPE_COUNT;
        s->err_weighted |= want[l] && m->layers[l].imp != NULL;
    }
    int rc = prof_quality_weight_errors(m, want, formats, true, o->cache_dir, o->cache_refresh,
                                        o->progress, s->err);
    free(want);
    return rc;
}

struct fmt_bits {
    enum mq_dtype f;
    double bits;
};

static int cmp_bits(const void *a, const void *b)
{
    const struct fmt_bits *x = a, *y = b;
    if (x->bits != y->bits)
        return x->bits < y->bits ? -1 : 1;
    return (int)x->f - (int)y->f;
}

/* The group's measured narrow formats, of those every member is analysed in: the
 * cheapest, the middle one and the dearest by bits per weight (MQ_DTYPE_COUNT where
 * there are fewer than three). Two were not enough on the bundled model: with the
 * cheapest and the middle one, q8_0 was under-predicted 2.8x (the KL of the 8-bit formats
 * falls more slowly than their weight error), with the cheapest and the dearest the
 * formats between were over-predicted 1.3x (docs/sensitivity.md). */
static void group_picks(const struct mq_model *m, uint32_t formats, const struct srch_sensitivity *s, int g,
                        enum mq_dtype pick[CALIB_PICKS])
{
    uint32_t common = ~0u;
    for (int l = 0; l < m->n_layers; l++) {
        if (s->group[l] != g)
            continue;
        uint32_t mask = 0;
        for (int f = 0; f < MQ_DTYPE_COUNT; f++)
            if (prof_quality_analysed(formats, &m->layers[l], f) && !wide_format((enum mq_dtype)f))
                mask |= 1u << f;
        common &= mask;
    }
    struct fmt_bits fb[MQ_DTYPE_COUNT];
    int n = 0;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if ((common >> f) & 1u)
            fb[n++] = (struct fmt_bits){(enum mq_dtype)f, mq_dtype_bits_per_weight((enum mq_dtype)f)};
    qsort(fb, (size_t)n, sizeof(fb[0]), cmp_bits);
    pick[0] = n ? fb[0].f : MQ_DTYPE_COUNT;
    pick[1] = n >= 3 ? fb[n / 2].f : MQ_DTYPE_COUNT;
    pick[2] = n >= 2 ? fb[n - 1].f : MQ_DTYPE_COUNT;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The fit's measured points, its leave-one-out check, and every loss (sensitivity.h). */
static int calib_fit_and_predict(const struct mq_model *m, uint32_t formats, const uint8_t *pinned,
                                 const enum mq_dtype (*pick)[CALIB_PICKS], struct srch_sensitivity *s)
{
    int G = s->n_groups, n = 0;
    struct srch_calib_point *pt = malloc(((size_t)G * CALIB_PICKS + 1) * sizeof(*pt));
    int *role = malloc(((size_t)G + 1) * sizeof(int));
    size_t np = (size_t)G * CALIB_PICKS + 1;
    double *loo = calloc(np, sizeof(double)), *kl = calloc(np, sizeof(double)), *rel = malloc(np * sizeof(double));
    double *bsum = calloc(((size_t)G + 1) * MQ_DTYPE_COUNT, sizeof(double));
    int rc = MQ_OK;
    if (!pt || !role || !loo || !kl || !rel || !bsum) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate the calibration of %d groups", G);
        goto done;
    }
    for (int g = 0; g < G; g++)
        role[g] = -1;
    for (int l = 0; l < m->n_layers; l++)
        if (s->group[l] >= 0)
            role[s->group[l]] = (int)m->layers[l].role;
    for (int g = 0; g < G; g++)
        for (int k = 0; k < CALIB_PICKS; k++) {
            enum mq_dtype f = pick[g][k];
            if (f == MQ_DTYPE_COUNT || isnan(s->group_kl[g * MQ_DTYPE_COUNT + f]))
                continue;
            pt[n++] = (struct srch_calib_point){.group = g, .role = role[g], .n = s->group_size[g], .fmt = (int)f,
                                                .err = s->group_err[g * MQ_DTYPE_COUNT + f],
                                                .kl = s->group_kl[g * MQ_DTYPE_COUNT + f]};
        }
    s->n_points = n;
    if ((rc = srch_calib_fit(pt, n, -1, G, role, s->group_a, s->role_b)) < 0)
        goto done;
    for (int r = 0; r < MQ_ROLE_COUNT; r++) { /* slopes of the roles analysed only */
        bool any = false;
        for (int g = 0; g < G; g++)
            any |= role[g] == r;
        if (!any)
            s->role_b[r] = NAN;
    }
    /* leave one out: each point from the fit without it */
    int n_rel = 0;
    for (int k = 0; k < n; k++) {
        if ((rc = srch_calib_loo(pt, n, k, G, role, &loo[k])) < 0)
            goto done;
        kl[k] = pt[k].kl;
        s->group_loo[pt[k].group * MQ_DTYPE_COUNT + pt[k].fmt] = loo[k];
        if (isfinite(loo[k]) && pt[k].kl > 0)
            rel[n_rel++] = fabs(loo[k] / pt[k].kl - 1);
    }
    s->rank_corr = srch_spearman(loo, kl, n);
    if (n_rel) {
        double worst = 0;
        for (int i = 0; i < n_rel; i++)
            worst = fmax(worst, rel[i]);
        qsort(rel, (size_t)n_rel, sizeof(rel[0]), cmp_double);
        s->loo_median_err = n_rel % 2 ? rel[n_rel / 2] : 0.5 * (rel[n_rel / 2 - 1] + rel[n_rel / 2]);
        s->loo_worst_err = worst;
    }
    /* the losses: measured formats shared out by err^b, the others predicted */
    for (int l = 0; l < m->n_layers; l++) {
        int g = s->group[l];
        if (g < 0)
            continue;
        double b = s->role_b[m->layers[l].role];
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            double e = s->err[l * MQ_DTYPE_COUNT + f];
            if (!isnan(e) && !wide_format((enum mq_dtype)f))
                bsum[g * MQ_DTYPE_COUNT + f] += e > 0 ? pow(e, b) : 0;
        }
    }
    for (int l = 0; l < m->n_layers; l++) {
        int g = s->group[l];
        if (g < 0 || pinned[l] != MQ_DTYPE_COUNT)
            continue;
        double b = s->role_b[m->layers[l].role], a = s->group_a[g];
        for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
            size_t i = (size_t)l * MQ_DTYPE_COUNT + (size_t)f;
            double e = s->err[i];
            if (!prof_quality_analysed(formats, &m->layers[l], f) || isnan(e))
                continue;
            double gk = s->group_kl[g * MQ_DTYPE_COUNT + f];
            if (wide_format((enum mq_dtype)f)) {
                if (isnan(s->all_kl[f]))
                    continue;
                /* the all-layer KL shared out by err (by weights where every err is 0) */
                double es = 0, ws = 0;
                for (int j = 0; j < m->n_layers; j++) {
                    double ej = s->err[j * MQ_DTYPE_COUNT + f];
                    if (s->group[j] >= 0 && !isnan(ej) && prof_quality_analysed(formats, &m->layers[j], f)) {
                        es += ej;
                        ws += (double)m->layers[j].n_in * (double)m->layers[j].n_out;
                    }
                }
                double share = es > 0 ? e / es : (double)m->layers[l].n_in * (double)m->layers[l].n_out / ws;
                s->loss[i] = fmax(s->all_kl[f], 0) * share;
                s->source[i] = SRCH_SRC_SHARED;
            } else if (!isnan(gk)) {
                double bs = bsum[g * MQ_DTYPE_COUNT + f];
                s->loss[i] = fmax(gk, 0) * (bs > 0 ? (e > 0 ? pow(e, b) : 0) / bs : 1.0 / s->group_size[g]);
                s->source[i] = s->group_size[g] == 1 ? SRCH_SRC_MEASURED : SRCH_SRC_SHARED;
                if (s->group_size[g] == 1) {
                    s->kl[i] = gk;
                    s->metric[i] = s->group_metric[g * MQ_DTYPE_COUNT + f];
                }
            } else if (!isnan(a) && !isnan(b)) {
                s->loss[i] = e > 0 ? exp(a + b * log(e)) : 0;
                s->source[i] = SRCH_SRC_PREDICTED;
            }
        }
    }
done:
    free(pt);
    free(role);
    free(loo);
    free(kl);
    free(rel);
    free(bsum);
    return rc;
}

static int run_calibrated(const struct mq_model *m, struct be_backend *be, const struct srch_sens_options *o,
                          uint32_t formats, const uint8_t *pinned, struct srch_sensitivity *s)
{
    struct mq_plan *plan = NULL, *ref = NULL;
    bool *member = NULL;
    enum mq_dtype (*pick)[CALIB_PICKS] = NULL;
    int rc = weight_errors(m, o, formats, pinned, s);
    if (rc == MQ_OK)
        rc = make_groups(m, pinned, o->depth_groups, s);
    if (rc == MQ_OK)
        rc = base_plans(m, be, &ref, &plan, &member);
    if (rc < 0) {
        base_free(ref, plan, member);
        return rc;
    }
    pick = malloc(((size_t)s->n_groups + 1) * sizeof(*pick));
    if (!pick) {
        base_free(ref, plan, member);
        return mq_error(MQ_ENOMEM, "cannot allocate the calibration of %d groups", s->n_groups);
    }
    int total = 0, done = 0;
    for (int g = 0; g < s->n_groups; g++) {
        group_picks(m, formats, s, g, pick[g]);
        for (int k = 0; k < CALIB_PICKS; k++)
            total += pick[g][k] != MQ_DTYPE_COUNT;
    }
    uint32_t wide = 0;
    for (int l = 0; l < m->n_layers; l++)
        for (int f = 0; f < MQ_DTYPE_COUNT; f++)
            if (s->group[l] >= 0 && wide_format((enum mq_dtype)f) && prof_quality_analysed(formats, &m->layers[l], f))
                wide |= 1u << f;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        total += (wide >> f) & 1u;
    if (o->progress) {
        mq_info("calibrated sensitivity: %d evaluations (%d groups of layers at their cheapest, middle and dearest "
                "format, 16-bit formats once over all layers; measured would run %d), cached ones free; weight errors for "
                "every layer and format", total, s->n_groups,
                count_measured(m, formats, pinned));
    }
    struct prof_quality pq;
    prof_quality_init(&pq, m, be, &o->quality, o->cache_dir, o->cache_refresh, o->progress);
    struct mq_progress pr;
    mq_progress_init(&pr, o->progress, "sensitivity", total);
    for (int pass = prof_quality_distributed(&pq) ? 0 : 1; pass < 2 && rc == MQ_OK; pass++) {
        pq.collect = pass == 0;
        for (int g = 0; g < s->n_groups && rc == MQ_OK; g++)
            for (int k = 0; k < CALIB_PICKS && rc == MQ_OK; k++) {
                enum mq_dtype f = pick[g][k];
                if (f == MQ_DTYPE_COUNT)
                    continue;
                double v[4];
                int n_in;
                if ((rc = eval_group(m, &pq, formats, s, ref, plan, member, g, false, f, &n_in,
                                     v)) < 0 ||
                    !n_in)
                    continue;
                s->group_kl[g * MQ_DTYPE_COUNT + f] = v[0];
                s->group_metric[g * MQ_DTYPE_COUNT + f] = v[1];
                double es = 0;
                for (int l = 0; l < m->n_layers; l++)
                    if (member[l])
                        es += s->err[l * MQ_DTYPE_COUNT + f];
                s->group_err[g * MQ_DTYPE_COUNT + f] = es / n_in;
                if (!pq.collect)
                    eval_progress(&pq, &pr, ++done, total, s->group_names[g], mq_dtype_name(f));
            }
        for (int f = 0; f < MQ_DTYPE_COUNT && rc == MQ_OK; f++) {
            if (!((wide >> f) & 1u))
                continue;
            double v[4];
            int n_in;
            if ((rc = eval_group(m, &pq, formats, s, ref, plan, member, 0, true, (enum mq_dtype)f,
                                 &n_in, v)) < 0 ||
                !n_in)
                continue;
            s->all_kl[f] = v[0];
            s->all_metric[f] = v[1];
            if (!pq.collect)
                eval_progress(&pq, &pr, ++done, total, "all layers",
                              mq_dtype_name((enum mq_dtype)f));
        }
        if (pass == 0 && rc == MQ_OK)
            rc = prof_quality_flush(&pq);
    }
    mq_progress_end(&pr);
    take_metric(&pq, s);
    prof_quality_release(&pq);
    base_free(ref, plan, member);
    if (rc == MQ_OK)
        rc = calib_fit_and_predict(m, formats, pinned, (const enum mq_dtype(*)[CALIB_PICKS])pick, s);
    free(pick);
    return rc;
}

/* ---- the table ---- */

int srch_sens_measured_evals(const struct mq_model *m, uint32_t formats, const struct srch_pins *pins)
{
    uint8_t *pinned = malloc((size_t)m->n_layers + 1);
    if (!pinned)
        return mq_error(MQ_ENOMEM, "cannot allocate %d layer flags", m->n_layers);
    memset(pinned, MQ_DTYPE_COUNT, (size_t)m->n_layers + 1);
    int n = pins ? srch_pins_apply(pins, m, pinned) : MQ_OK;
    if (n == MQ_OK)
        n = count_measured(m, formats, pinned);
    free(pinned);
    return n;
}

enum srch_sens_method srch_sens_auto(const struct mq_model *m, uint32_t formats, const struct srch_pins *pins,
                                     int *n_measured)
{
    int n = srch_sens_measured_evals(m, formats, pins);
    if (n_measured)
        *n_measured = n;
    return n >= 0 && n <= SRCH_SENS_AUTO_MAX_EVALS ? SRCH_SENS_MEASURED : SRCH_SENS_CALIBRATED;
}

/* The unit of the measured loss: the runner's, "kl" when it does not say. */
static const char *loss_unit(const struct mq_model *m, const struct mq_quality_config *cfg)
{
    return m->runner && m->runner->loss_name ? m->runner->loss_name(m, cfg) : "kl";
}

int srch_sensitivity_run(const struct mq_model *m, struct be_backend *be, const struct srch_sens_options *o,
                         struct srch_sensitivity **out)
{
    *out = NULL;
    uint64_t t0 = prof_now_ns();
    uint32_t formats = o->formats ? o->formats : mq_dtype_default_formats();
    struct srch_sensitivity *s;
    uint8_t *pinned = NULL;
    int rc = srch_sensitivity_alloc(m->n_layers, &s);
    if (rc < 0)
        return rc;
    snprintf(s->model_path, sizeof(s->model_path), "%s", m->path);
    s->model_hash = m->content_hash;
    for (int l = 0; l < m->n_layers; l++)
        snprintf(s->names[l], sizeof(s->names[l]), "%s", m->layers[l].name);
    s->method = o->method;
    s->formats = mq_model_menu(m, formats);
    snprintf(s->data, sizeof(s->data), "%s", o->quality.data ? o->quality.data : "(default)");
    s->ctx = o->quality.ctx;
    s->chunks = o->quality.max_chunks;
    pinned = malloc((size_t)m->n_layers + 1);
    if (!pinned) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %d layer flags", m->n_layers);
        goto fail;
    }
    memset(pinned, MQ_DTYPE_COUNT, (size_t)m->n_layers + 1);
    if (o->pins && (rc = srch_pins_apply(o->pins, m, pinned)) < 0)
        goto fail;
    if (s->method == SRCH_SENS_AUTO)
        s->method = count_measured(m, formats, pinned) <= SRCH_SENS_AUTO_MAX_EVALS ? SRCH_SENS_MEASURED
                                                                                    : SRCH_SENS_CALIBRATED;
    size_t n_all = (size_t)m->n_layers * MQ_DTYPE_COUNT;
    if ((s->method == SRCH_SENS_MEASURED || s->method == SRCH_SENS_PROXY) &&
        (rc = prof_quality_proxy(m, be, &o->quality, formats, o->progress, s->proxy)) < 0)
        goto fail;
    if (s->method == SRCH_SENS_MEASURED) {
        if ((rc = weight_errors(m, o, formats, pinned, s)) < 0 || (rc = run_measured(m, be, o, formats, pinned, s)) < 0)
            goto fail;
        snprintf(s->loss_name, sizeof(s->loss_name), "%s", loss_unit(m, &o->quality));
        memcpy(s->loss, s->kl, n_all * sizeof(double));
        s->rank_corr = srch_spearman(s->proxy, s->kl, m->n_layers * MQ_DTYPE_COUNT);
    } else if (s->method == SRCH_SENS_GROUPED) {
        if ((rc = run_grouped(m, be, o, formats, pinned, s)) < 0)
            goto fail;
        snprintf(s->loss_name, sizeof(s->loss_name), "%s", loss_unit(m, &o->quality));
    } else if (s->method == SRCH_SENS_CALIBRATED) {
        if ((rc = run_calibrated(m, be, o, formats, pinned, s)) < 0)
            goto fail;
        snprintf(s->loss_name, sizeof(s->loss_name), "%s", loss_unit(m, &o->quality));
    } else {
        snprintf(s->loss_name, sizeof(s->loss_name), "rel_mse");
        memcpy(s->loss, s->proxy, n_all * sizeof(double));
        for (size_t i = 0; i < n_all; i++)
            s->source[i] = isnan(s->loss[i]) ? SRCH_SRC_NONE : SRCH_SRC_PROXY;
    }
    /* a layer kept in its stored format is the reference: no loss, nothing measured */
    for (int l = 0; l < m->n_layers; l++) {
        size_t i = (size_t)l * MQ_DTYPE_COUNT + m->layers[l].src_type;
        if (mq_dtype_get(m->layers[l].src_type)->is_plan_format) {
            s->loss[i] = s->kl[i] = s->proxy[i] = 0;
            s->source[i] = SRCH_SRC_MEASURED;
        }
    }
    if (!s->metric_name[0]) /* nothing measured now (all cached, or proxy) */
        snprintf(s->metric_name, sizeof(s->metric_name), "%s", m->kind == MQ_MODEL_LLAMA ? "ppl" : "metric");
    s->wall_seconds = (double)(prof_now_ns() - t0) * 1e-9;
    free(pinned);
    *out = s;
    return MQ_OK;
fail:
    free(pinned);
    srch_sensitivity_free(s);
    return rc;
}
