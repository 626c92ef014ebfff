/* search/sensitivity.c - measured and proxy per-layer sensitivity. */
#include "search/sensitivity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/status.h"
#include "model/llama.h"
#include "model/plan.h"
#include "profiler/cache.h"
#include "profiler/measure.h"

#define SENS_CACHE_VERSION "sens/1"

const char *srch_sens_method_name(enum srch_sens_method m)
{
    return m == SRCH_SENS_MEASURED ? "measured" : m == SRCH_SENS_GROUPED ? "grouped" : "proxy";
}

int srch_sens_method_parse(const char *text, enum srch_sens_method *out)
{
    static const enum srch_sens_method all[] = {SRCH_SENS_MEASURED, SRCH_SENS_GROUPED, SRCH_SENS_PROXY};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (!strcmp(text, srch_sens_method_name(all[i]))) {
            *out = all[i];
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
    if (!s->names || !s->group || !s->loss || !s->kl || !s->metric || !s->proxy) {
        srch_sensitivity_free(s);
        return mq_error(MQ_ENOMEM, "cannot allocate a sensitivity table of %d layers", n_layers);
    }
    for (size_t i = 0; i < n * MQ_DTYPE_COUNT; i++)
        s->loss[i] = s->kl[i] = s->metric[i] = s->proxy[i] = NAN;
    for (size_t i = 0; i < n; i++)
        s->group[i] = -1;
    s->rank_corr = NAN;
    s->ref_metric = NAN;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        s->all_kl[f] = s->all_metric[f] = NAN;
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
    free(s->loss);
    free(s->kl);
    free(s->metric);
    free(s->proxy);
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

/* ---- proxy: each layer's own output error on captured inputs ---- */

struct proxy_ctx {
    const struct mq_model *m;
    struct be_backend *be;
    uint32_t formats;
    struct srch_sensitivity *s;
    bool *done; /* [n_layers] */
    int n_done;
    bool progress;
};

/* Whether layer ly is analysed in format f: offered (mq_layer_menu of the asked menu) and
 * not its stored format, whose loss is exactly 0 (it is the reference) and never measured. */
static bool analysed(uint32_t menu, const struct mq_layer *ly, int f)
{
    return ((mq_layer_menu(ly, menu) >> f) & 1u) && f != (int)ly->src_type;
}

static int matmul_host(struct be_backend *be, const struct mq_layer *ly, enum mq_dtype fmt, const struct be_tensor *x,
                       struct be_tensor *y, float *out, size_t out_bytes)
{
    const void *data;
    void *buf;
    struct be_tensor w;
    int rc = mq_convert_weights(ly->name, ly->src_type, ly->src_data, ly->n_in, ly->n_out, fmt, ly->imp, &data, &buf);
    if (rc < 0)
        return rc;
    rc = be_upload(be, &w, fmt, 2, (int64_t[]){ly->n_in, ly->n_out}, data, BE_USE_MATRIX);
    free(buf);
    if (rc < 0)
        return rc;
    rc = be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {&w, (struct be_tensor *)x}, .dst = y});
    if (rc == MQ_OK)
        rc = be_read(be, y, 0, out, out_bytes);
    be_free(be, &w);
    return rc;
}

static int proxy_layer(void *arg, int layer, const float *xh, int64_t K, int64_t M)
{
    struct proxy_ctx *pc = arg;
    if (pc->done[layer]) /* a tied matrix runs twice (lookup and output): once is enough */
        return MQ_OK;
    const struct mq_layer *ly = &pc->m->layers[layer];
    struct be_backend *be = pc->be;
    struct be_tensor x = {0}, y = {0};
    size_t out_bytes = (size_t)(ly->n_out * M) * sizeof(float);
    float *ref = malloc(out_bytes), *got = malloc(out_bytes);
    int rc = ref && got ? MQ_OK : mq_error(MQ_ENOMEM, "proxy: cannot allocate %zu bytes", out_bytes);
    if (rc == MQ_OK && (rc = be_alloc(be, &x, MQ_DTYPE_F32, 2, (int64_t[]){K, M})) == MQ_OK &&
        (rc = be_alloc(be, &y, MQ_DTYPE_F32, 2, (int64_t[]){ly->n_out, M})) == MQ_OK)
        rc = be_write(be, &x, 0, xh, (size_t)(K * M) * sizeof(float));
    if (rc == MQ_OK)
        rc = matmul_host(be, ly, MQ_DTYPE_F32, &x, &y, ref, out_bytes);
    double norm = 0;
    for (size_t i = 0; rc == MQ_OK && i < out_bytes / sizeof(float); i++)
        norm += (double)ref[i] * (double)ref[i];
    for (int f = 0; rc == MQ_OK && f < MQ_DTYPE_COUNT; f++) {
        if (!analysed(pc->formats, ly, f))
            continue;
        if ((rc = matmul_host(be, ly, (enum mq_dtype)f, &x, &y, got, out_bytes)) < 0)
            break;
        double err = 0;
        for (size_t i = 0; i < out_bytes / sizeof(float); i++) {
            double d = (double)got[i] - (double)ref[i];
            err += d * d;
        }
        pc->s->proxy[layer * MQ_DTYPE_COUNT + f] = norm > 0 ? err / norm : 0;
    }
    be_free(be, &x);
    be_free(be, &y);
    free(ref);
    free(got);
    if (rc == MQ_OK) {
        pc->done[layer] = true;
        pc->n_done++;
        if (pc->progress && isatty(STDERR_FILENO))
            fprintf(stderr, "\rmixq: proxy sensitivity: layer %d/%d", pc->n_done, pc->m->n_layers);
    }
    return rc;
}

/* Layers the calibration run never handed over (lookups): the weights' own error. */
static int proxy_weights(const struct mq_layer *ly, uint32_t formats, double *out)
{
    int64_t n = ly->n_in * ly->n_out;
    float *w = malloc((size_t)n * sizeof(float)), *back = malloc((size_t)n * sizeof(float));
    void *q = NULL;
    int rc = w && back ? MQ_OK : mq_error(MQ_ENOMEM, "proxy: cannot allocate %lld weights", (long long)n);
    if (rc == MQ_OK)
        mq_dtype_get(ly->src_type)->to_f32(ly->src_data, w, n);
    double norm = 0;
    for (int64_t i = 0; rc == MQ_OK && i < n; i++)
        norm += (double)w[i] * (double)w[i];
    for (int f = 0; rc == MQ_OK && f < MQ_DTYPE_COUNT; f++) {
        if (!analysed(formats, ly, f))
            continue;
        size_t row;
        if ((rc = mq_dtype_row_bytes((enum mq_dtype)f, ly->n_in, &row)) < 0)
            break;
        void *nq = realloc(q, row * (size_t)ly->n_out + 1);
        if (!nq) {
            rc = mq_error(MQ_ENOMEM, "proxy: cannot allocate weights");
            break;
        }
        q = nq;
        mq_dtype_get((enum mq_dtype)f)->quantize(w, q, ly->n_out, ly->n_in, ly->imp);
        mq_dtype_get((enum mq_dtype)f)->to_f32(q, back, n);
        double err = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = (double)back[i] - (double)w[i];
            err += d * d;
        }
        out[f] = norm > 0 ? err / norm : 0;
    }
    free(w);
    free(back);
    free(q);
    return rc;
}

static int run_proxy(const struct mq_model *m, struct be_backend *be, const struct srch_sens_options *o,
                     uint32_t formats, struct srch_sensitivity *s)
{
    struct proxy_ctx pc = {.m = m, .be = be, .formats = formats, .s = s, .progress = o->progress};
    pc.done = calloc((size_t)m->n_layers + 1, sizeof(bool));
    if (!pc.done)
        return mq_error(MQ_ENOMEM, "cannot allocate the proxy state");
    int rc = m->runner->capture(m, be, &o->quality, proxy_layer, &pc);
    if (o->progress && isatty(STDERR_FILENO))
        fprintf(stderr, "\n");
    for (int l = 0; rc == MQ_OK && l < m->n_layers; l++)
        if (!pc.done[l])
            rc = proxy_weights(&m->layers[l], formats, &s->proxy[l * MQ_DTYPE_COUNT]);
    free(pc.done);
    return rc;
}

/* ---- measured: one layer at a time against the full-precision model ---- */

/* The evaluation data's content hash, for cache keys. */
static uint64_t data_hash(const char *path)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return 0;
    uint64_t h = 0x73656e73ULL;
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        h = mq_hash64(buf, n, h);
    fclose(f);
    return h;
}

/* One plan evaluated against the reference, through the cache: v[0..3] = KL, metric,
 * reference metric, samples. *q is opened on first need. */
struct sens_eval {
    const struct mq_model *m;
    struct be_backend *be;
    const struct srch_sens_options *o;
    struct srch_sensitivity *s;
    void *q;
};

static int eval_cached(struct sens_eval *e, const char *key, const struct mq_plan *plan, double v[4])
{
    const struct srch_sens_options *o = e->o;
    struct srch_sensitivity *s = e->s;
    if (o->cache_dir && !o->cache_refresh && prof_cache_get(o->cache_dir, key, v, 4) == 4) {
        s->ref_metric = v[2];
        s->n_samples = (int64_t)v[3];
        s->n_cached++;
        return MQ_OK;
    }
    int rc;
    if (!e->q) { /* the reference pass, only when something must be measured */
        struct mq_quality_config qc = o->quality;
        qc.progress = o->progress;
        if ((rc = e->m->runner->quality_new(e->m, e->be, &qc, &e->q)) < 0)
            return rc;
    }
    struct mq_quality r;
    if ((rc = e->m->runner->quality_eval(e->q, plan, &r)) < 0)
        return rc;
    v[0] = r.loss;
    v[1] = r.metric;
    v[2] = r.ref_metric;
    v[3] = (double)r.n_samples;
    s->ref_metric = r.ref_metric;
    snprintf(s->metric_name, sizeof(s->metric_name), "%s", r.metric_name);
    s->higher_is_better = r.higher_is_better;
    s->n_samples = r.n_samples;
    s->n_evaluated++;
    if (o->cache_dir)
        prof_cache_put(o->cache_dir, key, v, 4);
    return MQ_OK;
}

static void eval_progress(const struct srch_sens_options *o, const struct srch_sensitivity *s, uint64_t t0, int done,
                          int total, const char *what, const char *fmt)
{
    if (!o->progress || !isatty(STDERR_FILENO))
        return;
    double el = (double)(prof_now_ns() - t0) * 1e-9;
    double eta = s->n_evaluated ? el / s->n_evaluated * (total - done) : 0;
    fprintf(stderr, "\rmixq: sensitivity %d/%d (%s %s), %.0f s, about %.0f s left   ", done, total, what, fmt, el, eta);
}

/* ---- grouped: layers of a role within a depth range, measured together ---- */

/* 16 bits and more: near lossless, measured once over all layers. */
static bool wide_format(enum mq_dtype f)
{
    const struct mq_dtype_traits *tr = mq_dtype_get(f);
    return 8 * (int64_t)tr->block_bytes >= 16 * (int64_t)tr->block_elems;
}

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
    s->group_kl = malloc(((size_t)s->n_groups + 1) * MQ_DTYPE_COUNT * sizeof(double));
    s->group_metric = malloc(((size_t)s->n_groups + 1) * MQ_DTYPE_COUNT * sizeof(double));
    if (!s->group_kl || !s->group_metric)
        return mq_error(MQ_ENOMEM, "cannot allocate the sensitivity groups");
    for (size_t i = 0; i < ((size_t)s->n_groups + 1) * MQ_DTYPE_COUNT; i++)
        s->group_kl[i] = s->group_metric[i] = NAN;
    return MQ_OK;
}

static int run_grouped(const struct mq_model *m, struct be_backend *be, const struct srch_sens_options *o,
                       uint32_t formats, const uint8_t *pinned, struct srch_sensitivity *s)
{
    struct mq_plan *plan = NULL;
    int rc = make_groups(m, pinned, o->depth_groups, s);
    if (rc == MQ_OK)
        rc = mq_plan_uniform(m, MQ_DTYPE_F32, &plan);
    if (rc < 0)
        return rc;
    struct sens_eval e = {.m = m, .be = be, .o = o, .s = s};
    uint64_t dh = data_hash(o->quality.data), t0 = prof_now_ns();
    int total = 0, done = 0;
    uint32_t all = mq_model_menu(m, formats);
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if ((all >> f) & 1u && f != MQ_DTYPE_F32)
            total += wide_format((enum mq_dtype)f) ? 1 : s->n_groups;
    for (int f = 0; f < MQ_DTYPE_COUNT && rc == MQ_OK; f++) {
        if (!((all >> f) & 1u) || f == MQ_DTYPE_F32)
            continue;
        bool wide = wide_format((enum mq_dtype)f);
        for (int g = 0; g < (wide ? 1 : s->n_groups) && rc == MQ_OK; g++) {
            /* the plan: the group's layers (every unpinned layer, for a wide format) in f */
            uint64_t members = 0x67727075ULL;
            int n_in = 0;
            for (int l = 0; l < m->n_layers; l++) {
                bool in = s->group[l] >= 0 && (wide || s->group[l] == g) && analysed(formats, &m->layers[l], f);
                plan->fmt[l] = in ? (enum mq_dtype)f : MQ_DTYPE_F32;
                if (in) {
                    members = mq_hash64(m->layers[l].name, strlen(m->layers[l].name), members);
                    n_in++;
                }
            }
            if (!n_in)
                continue;
            char key[1200];
            snprintf(key, sizeof(key), "%s group=%016llx model=%016llx imp=%016llx fmt=%s data=%016llx ctx=%lld chunks=%lld be=%s",
                     SENS_CACHE_VERSION, (unsigned long long)members, (unsigned long long)m->content_hash,
                     (unsigned long long)m->imp_hash,
                     mq_dtype_name((enum mq_dtype)f), (unsigned long long)dh, (long long)o->quality.ctx,
                     (long long)o->quality.max_chunks, be_name(be));
            double v[4];
            if ((rc = eval_cached(&e, key, plan, v)) < 0)
                break;
            done++;
            eval_progress(o, s, t0, done, total, wide ? "all layers" : s->group_names[g],
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
                if (plan->fmt[l] == (enum mq_dtype)f)
                    weights += (double)m->layers[l].n_in * (double)m->layers[l].n_out;
            for (int l = 0; l < m->n_layers; l++)
                if (plan->fmt[l] == (enum mq_dtype)f)
                    s->loss[l * MQ_DTYPE_COUNT + f] =
                        fmax(v[0], 0) * ((double)m->layers[l].n_in * (double)m->layers[l].n_out / weights);
        }
    }
    if (o->progress && isatty(STDERR_FILENO))
        fprintf(stderr, "\n");
    if (e.q)
        m->runner->quality_free(e.q);
    mq_plan_free(plan);
    return rc;
}

static int run_measured(const struct mq_model *m, struct be_backend *be, const struct srch_sens_options *o,
                        uint32_t formats, const uint8_t *pinned, struct srch_sensitivity *s)
{
    struct mq_plan *plan = NULL;
    int rc = mq_plan_uniform(m, MQ_DTYPE_F32, &plan);
    if (rc < 0)
        return rc;
    struct sens_eval e = {.m = m, .be = be, .o = o, .s = s};
    uint64_t dh = data_hash(o->quality.data);
    int total = 0, done = 0;
    for (int l = 0; l < m->n_layers; l++)
        for (int f = 0; f < MQ_DTYPE_COUNT; f++)
            total += pinned[l] == MQ_DTYPE_COUNT && analysed(formats, &m->layers[l], f);
    if (o->progress)
        mq_info("measured sensitivity: %d evaluations (each analysed layer in each offered format but its stored "
                "one), cached ones free", total);
    uint64_t t0 = prof_now_ns();
    for (int l = 0; l < m->n_layers && rc == MQ_OK; l++) {
        for (int f = 0; f < MQ_DTYPE_COUNT && rc == MQ_OK; f++) {
            if (pinned[l] != MQ_DTYPE_COUNT || !analysed(formats, &m->layers[l], f))
                continue;
            char key[1200];
            snprintf(key, sizeof(key), "%s model=%016llx imp=%016llx layer=%d:%s fmt=%s data=%016llx ctx=%lld chunks=%lld be=%s",
                     SENS_CACHE_VERSION, (unsigned long long)m->content_hash, (unsigned long long)m->imp_hash, l,
                     m->layers[l].name,
                     mq_dtype_name((enum mq_dtype)f), (unsigned long long)dh, (long long)o->quality.ctx,
                     (long long)o->quality.max_chunks, be_name(be));
            double v[4];
            plan->fmt[l] = (enum mq_dtype)f;
            rc = eval_cached(&e, key, plan, v);
            plan->fmt[l] = MQ_DTYPE_F32;
            if (rc < 0)
                break;
            s->kl[l * MQ_DTYPE_COUNT + f] = v[0];
            s->metric[l * MQ_DTYPE_COUNT + f] = v[1];
            eval_progress(o, s, t0, ++done, total, m->layers[l].name, mq_dtype_name((enum mq_dtype)f));
        }
    }
    if (o->progress && isatty(STDERR_FILENO))
        fprintf(stderr, "\n");
    if (e.q)
        m->runner->quality_free(e.q);
    mq_plan_free(plan);
    return rc;
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
    if (o->method != SRCH_SENS_GROUPED && (rc = run_proxy(m, be, o, formats, s)) < 0)
        goto fail;
    if (o->method == SRCH_SENS_MEASURED) {
        if ((rc = run_measured(m, be, o, formats, pinned, s)) < 0)
            goto fail;
        snprintf(s->loss_name, sizeof(s->loss_name), "kl");
        memcpy(s->loss, s->kl, (size_t)m->n_layers * MQ_DTYPE_COUNT * sizeof(double));
        s->rank_corr = srch_spearman(s->proxy, s->kl, m->n_layers * MQ_DTYPE_COUNT);
    } else if (o->method == SRCH_SENS_GROUPED) {
        if ((rc = run_grouped(m, be, o, formats, pinned, s)) < 0)
            goto fail;
        snprintf(s->loss_name, sizeof(s->loss_name), "kl");
    } else {
        snprintf(s->loss_name, sizeof(s->loss_name), "rel_mse");
        memcpy(s->loss, s->proxy, (size_t)m->n_layers * MQ_DTYPE_COUNT * sizeof(double));
    }
    /* a layer kept in its stored format is the reference: no loss, nothing measured */
    for (int l = 0; l < m->n_layers; l++) {
        size_t i = (size_t)l * MQ_DTYPE_COUNT + m->layers[l].src_type;
        if (mq_dtype_get(m->layers[l].src_type)->is_plan_format)
            s->loss[i] = s->kl[i] = s->proxy[i] = 0;
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
