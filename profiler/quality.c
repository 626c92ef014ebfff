/* profiler/quality.c - evaluation passes, proxy captures and weight errors for the
 * sensitivity analysis. */
#include "profiler/quality.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/compensate.h"
#include "core/dtype.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/status.h"
#include "model/imatrix.h"
#include "model/shapes.h"
#include "profiler/cache.h"
#include "profiler/measure.h"

#define QERR_CACHE_VERSION "qerr/1"

static uint64_t hash_file(const char *path, uint64_t h)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return h;
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        h = mq_hash64(buf, n, h);
    fclose(f);
    return h;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

uint64_t prof_quality_data_hash(const char *path)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return 0;
    uint64_t h = 0x73656e73ULL;
    if (!S_ISDIR(st.st_mode))
        return hash_file(path, h);
    /* a folder (ONNX input arrays): each entry's name and bytes, in name order */
    DIR *d = opendir(path);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (!nn)
                break;
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    if (d)
        closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        char file[8192];
        snprintf(file, sizeof(file), "%s/%s", path, names[i]);
        h = hash_file(file, mq_hash64(names[i], strlen(names[i]) + 1, h));
        free(names[i]);
    }
    free(names);
    return h;
}

bool prof_quality_analysed(uint32_t menu, const struct mq_layer *ly, int f)
{
    return ((mq_layer_menu(ly, menu) >> f) & 1u) && f != (int)ly->src_type;
}

void prof_quality_init(struct prof_quality *pq, const struct mq_model *m, struct be_backend *be,
                       const struct mq_quality_config *cfg, const char *cache_dir, bool cache_refresh,
                       bool progress)
{
    memset(pq, 0, sizeof(*pq));
    pq->m = m;
    pq->be = be;
    pq->cfg = *cfg;
    pq->cfg.progress = progress;
    pq->cache_dir = cache_dir;
    pq->cache_refresh = cache_refresh;
    pq->data_hash = prof_quality_data_hash(cfg->data);
    pq->ref_metric = NAN;
    snprintf(pq->backend_name, sizeof(pq->backend_name), "%s", be ? be_name(be) : "none");
    struct mq_plan *ref;
    if (be && mq_plan_reference(m, be, &ref) == MQ_OK) {
        pq->ref_hash = mq_plan_hash(ref);
        mq_plan_free(ref);
    }
}

/* An evaluation a distributed run noted (prof_quality_flush), and then its result. */
struct prof_quality_unit {
    char key[1400];
    enum mq_dtype *fmt; /* [n_layers]: the plan */
    bool done;
    double v[4];
};

void prof_quality_release(struct prof_quality *pq)
{
    if (pq->q)
        pq->m->runner->quality_free(pq->q);
    pq->q = NULL;
    for (int i = 0; i < pq->n_units; i++)
        free(pq->units[i].fmt);
    free(pq->units);
    pq->units = NULL;
    pq->n_units = pq->cap_units = 0;
}

/* Notes plan under key for prof_quality_flush. */
static int note_unit(struct prof_quality *pq, const char *key, const struct mq_plan *plan)
{
    for (int i = 0; i < pq->n_units; i++)
        if (!strcmp(pq->units[i].key, key))
            return MQ_OK; /* noted already */
    if (pq->n_units == pq->cap_units) {
        int cap = pq->cap_units ? 2 * pq->cap_units : 64;
        struct prof_quality_unit *u = realloc(pq->units, (size_t)cap * sizeof(*u));
        if (!u)
            return mq_error(MQ_ENOMEM, "cannot note %d evaluations", cap);
        pq->units = u;
        pq->cap_units = cap;
    }
    struct prof_quality_unit *u = &pq->units[pq->n_units];
    memset(u, 0, sizeof(*u));
    snprintf(u->key, sizeof(u->key), "%s", key);
    if (!(u->fmt = malloc((size_t)plan->n_layers * sizeof(*u->fmt) + 1)))
        return mq_error(MQ_ENOMEM, "cannot note a plan of %d layers", plan->n_layers);
    memcpy(u->fmt, plan->fmt, (size_t)plan->n_layers * sizeof(*u->fmt));
    pq->n_units++;
    return MQ_OK;
}

/* The metric and counts an evaluation reported, kept on pq. */
static void take_result(struct prof_quality *pq, const struct mq_quality *r)
{
    pq->ref_metric = r->ref_metric;
    snprintf(pq->metric_name, sizeof(pq->metric_name), "%s", r->metric_name);
    pq->higher_is_better = r->higher_is_better;
    pq->n_samples = r->n_samples;
}

int prof_quality_eval(struct prof_quality *pq, const char *what, const struct mq_plan *plan, double v[4])
{
    char key[1400];
    snprintf(key, sizeof(key), "%s data=%016llx ctx=%lld chunks=%lld be=%s ref=%016llx", what,
             (unsigned long long)pq->data_hash, (long long)pq->cfg.ctx, (long long)pq->cfg.max_chunks, pq->backend_name,
             (unsigned long long)pq->ref_hash);
    for (int i = 0; i < pq->n_units; i++)
        if (pq->units[i].done && !strcmp(pq->units[i].key, key)) { /* evaluated by the ranks */
            memcpy(v, pq->units[i].v, 4 * sizeof(double));
            return MQ_OK;
        }
    if (pq->cache_dir && !pq->cache_refresh && prof_cache_get(pq->cache_dir, key, v, 4) == 4) {
        pq->ref_metric = v[2];
        pq->n_samples = (int64_t)v[3];
        pq->n_cached += !pq->collect; /* counted in the pass that takes it */
        return MQ_OK;
    }
    if (pq->collect) {
        v[0] = v[1] = v[2] = v[3] = NAN;
        return note_unit(pq, key, plan);
    }
    int rc;
    if (!pq->q && (rc = pq->m->runner->quality_new(pq->m, pq->be, &pq->cfg, &pq->q)) < 0)
        return rc; /* the reference pass, only when something must be measured */
    struct mq_quality r;
    if ((rc = pq->m->runner->quality_eval(pq->q, plan, &r)) < 0)
        return rc;
    v[0] = r.loss;
    v[1] = r.metric;
    v[2] = r.ref_metric;
    v[3] = (double)r.n_samples;
    take_result(pq, &r);
    pq->n_evaluated++;
    if (pq->cache_dir)
        prof_cache_put(pq->cache_dir, key, v, 4);
    return MQ_OK;
}

/* ---- distributed evaluations (core/dist.h) ---- */

/* What a worker rebuilds the evaluations from: the model (as loaded: its input shapes;
 * its importance matrix), the backend and the data. The hashes check that it did. */
struct quality_setup {
    char model[4096];
    char shapes[2048];
    char imatrix[4096];
    char backend[32];
    char data[4096];
    int32_t compensate;
    int32_t n_layers;
    int64_t ctx, max_chunks;
    uint64_t content_hash, imp_hash, ref_hash;
};

/* One evaluation's result as it travels. */
struct quality_result {
    double v[4];
    int32_t higher_is_better;
    char metric_name[16];
};

struct quality_job {
    struct prof_quality *pq; /* rank 0: the caller's; workers: &own */
    struct prof_quality own;
    struct mq_model *m;    /* workers: loaded here */
    struct be_backend *be; /* workers: opened here */
    struct mq_plan *plan;  /* the reference plan, whose formats each unit sets */
    char data[4096];       /* workers: the evaluation data's path (own.cfg.data) */
};

/* A worker's model as rank 0 loaded it: the same file (or $MIXQ_MODEL_PATH), input shapes
 * and importance matrix, checked by their hashes. Errors: one line. */
static int load_as_rank0(const struct quality_setup *su, struct mq_model **out)
{
    const char *path = mq_dist_path("MIXQ_MODEL_PATH", su->model);
    struct mq_model *m = NULL;
    int rc;
    *out = NULL;
    if (su->shapes[0]) {
        struct mq_input_shapes sh;
        char why[256];
        if (mq_input_shapes_parse(su->shapes, &sh, why, sizeof(why)) < 0)
            return mq_error(MQ_EINVAL, "--shapes: %s", why);
        rc = mq_model_load_shaped(path, &sh, &m);
        mq_input_shapes_release(&sh);
    } else {
        rc = mq_model_load(path, &m);
    }
    if (rc == MQ_OK && (m->content_hash != su->content_hash || m->n_layers != su->n_layers))
        rc = mq_error(MQ_EINVAL,
                      "'%s' is not the model rank 0 loaded (another file at that path on this "
                      "machine): every rank needs the same file at the same path (or MIXQ_MODEL_PATH)",
                      path);
    if (rc == MQ_OK && su->imatrix[0])
        rc = mq_model_apply_imatrix_file(m, su->imatrix, su->compensate != 0, NULL, NULL);
    if (rc == MQ_OK && m->imp_hash != su->imp_hash)
        rc = mq_error(MQ_EINVAL,
                      "the importance matrix '%s' differs from rank 0's: every rank needs the same "
                      "file at the same path (the cache folder shared, or --imatrix FILE)",
                      su->imatrix[0] ? su->imatrix : "(none)");
    if (rc < 0) {
        mq_model_free(m);
        return rc;
    }
    *out = m;
    return MQ_OK;
}

/* What rank 0 sends for its model (su zeroed by the caller). */
static void fill_model_setup(const struct mq_model *m, struct quality_setup *su)
{
    snprintf(su->model, sizeof(su->model), "%s", m->path);
    snprintf(su->shapes, sizeof(su->shapes), "%s", m->input_shapes ? m->input_shapes : "");
    snprintf(su->imatrix, sizeof(su->imatrix), "%s", m->imatrix_path);
    su->compensate = m->imatrix_compensate;
    su->n_layers = m->n_layers;
    su->content_hash = m->content_hash;
    su->imp_hash = m->imp_hash;
}

/* ... and for pq's backend and data. */
static void fill_setup(const struct prof_quality *pq, struct quality_setup *su)
{
    fill_model_setup(pq->m, su);
    snprintf(su->backend, sizeof(su->backend), "%s", pq->backend_name);
    snprintf(su->data, sizeof(su->data), "%s", pq->cfg.data ? pq->cfg.data : "");
    su->ctx = pq->cfg.ctx;
    su->max_chunks = pq->cfg.max_chunks;
    su->ref_hash = pq->ref_hash;
}

/* The setup bytes a worker received, checked and terminated. */
static int take_setup(const void *setup, size_t bytes, struct quality_setup *su)
{
    if (bytes != sizeof(*su))
        return mq_error(MQ_EINTERNAL, "a setup of %zu bytes, want %zu (another mixq build?)",
                        bytes, sizeof(*su));
    memcpy(su, setup, sizeof(*su));
    su->model[sizeof(su->model) - 1] = su->shapes[sizeof(su->shapes) - 1] = 0;
    su->imatrix[sizeof(su->imatrix) - 1] = su->backend[sizeof(su->backend) - 1] = 0;
    su->data[sizeof(su->data) - 1] = 0;
    return MQ_OK;
}

static void quality_job_close(void *ctx)
{
    struct quality_job *j = ctx;
    if (!j)
        return;
    if (j->pq == &j->own)
        prof_quality_release(&j->own);
    mq_plan_free(j->plan);
    be_close(j->be);
    mq_model_free(j->m);
    free(j);
}

static int quality_job_open(const void *setup, size_t bytes, void **out)
{
    *out = NULL;
    struct quality_setup su;
    int rc = take_setup(setup, bytes, &su);
    if (rc < 0)
        return rc;
    struct quality_job *j = calloc(1, sizeof(*j));
    if (!j)
        return mq_error(MQ_ENOMEM, "cannot allocate an evaluation job");
    rc = load_as_rank0(&su, &j->m);
    if (rc < 0)
        goto fail;
    if ((rc = be_open(su.backend, &(struct be_config){0}, &j->be)) < 0 ||
        (rc = mq_model_lend(j->m, j->be)) < 0)
        goto fail;
    snprintf(j->data, sizeof(j->data), "%s", su.data);
    struct mq_quality_config cfg = {
        .data = j->data[0] ? j->data : NULL, .ctx = su.ctx, .max_chunks = su.max_chunks};
    j->pq = &j->own;
    prof_quality_init(&j->own, j->m, j->be, &cfg, NULL, false, false);
    if (j->own.ref_hash != su.ref_hash) {
        rc =
            mq_error(MQ_EINVAL,
                     "backend '%s' runs the reference plan differently on this rank than on rank 0",
                     su.backend);
        goto fail;
    }
    if ((rc = mq_plan_reference(j->m, j->be, &j->plan)) < 0)
        goto fail;
    *out = j;
    return MQ_OK;
fail:
    quality_job_close(j);
    return rc;
}

static int quality_job_run(void *ctx, int64_t index, const void *unit, size_t bytes, void **out,
                           size_t *out_bytes)
{
    struct quality_job *j = ctx;
    struct prof_quality *pq = j->pq;
    const uint8_t *fmt = unit;
    if (bytes != (size_t)j->plan->n_layers)
        return mq_error(MQ_EINTERNAL, "evaluation %lld: a plan of %zu layers, want %d",
                        (long long)index, bytes, j->plan->n_layers);
    for (int l = 0; l < j->plan->n_layers; l++) {
        if (fmt[l] >= MQ_DTYPE_COUNT)
            return mq_error(MQ_EINTERNAL, "evaluation %lld: format %d", (long long)index, fmt[l]);
        j->plan->fmt[l] = (enum mq_dtype)fmt[l];
    }
    int rc;
    if (!pq->q && (rc = pq->m->runner->quality_new(pq->m, pq->be, &pq->cfg, &pq->q)) < 0)
        return rc;
    struct mq_quality r;
    if ((rc = pq->m->runner->quality_eval(pq->q, j->plan, &r)) < 0)
        return rc;
    struct quality_result *res = calloc(1, sizeof(*res));
    if (!res)
        return mq_error(MQ_ENOMEM, "cannot allocate a result");
    res->v[0] = r.loss;
    res->v[1] = r.metric;
    res->v[2] = r.ref_metric;
    res->v[3] = (double)r.n_samples;
    res->higher_is_better = r.higher_is_better;
    snprintf(res->metric_name, sizeof(res->metric_name), "%s", r.metric_name);
    *out = res;
    *out_bytes = sizeof(*res);
    return MQ_OK;
}

const struct mq_dist_job prof_quality_dist_job = {.kind = "quality",
                                                  .open = quality_job_open,
                                                  .run = quality_job_run,
                                                  .close = quality_job_close};

bool prof_quality_distributed(const struct prof_quality *pq)
{
    return mq_dist_size() > 1 && pq->be;
}

struct flush_state {
    struct prof_quality *pq;
    int64_t first; /* the first unit of this flush */
    struct mq_progress pr;
    int64_t n_done;
};

static int flush_result(void *arg, int64_t i, const void *bytes, size_t n)
{
    struct flush_state *fs = arg;
    struct prof_quality *pq = fs->pq;
    struct prof_quality_unit *u = &pq->units[fs->first + i];
    struct quality_result res;
    if (n != sizeof(res))
        return mq_error(MQ_EINTERNAL, "an evaluation result of %zu bytes, want %zu", n,
                        sizeof(res));
    memcpy(&res, bytes, sizeof(res));
    res.metric_name[sizeof(res.metric_name) - 1] = 0;
    memcpy(u->v, res.v, sizeof(u->v));
    u->done = true;
    struct mq_quality r = {.ref_metric = res.v[2],
                           .metric_name = res.metric_name,
                           .higher_is_better = res.higher_is_better != 0,
                           .n_samples = (int64_t)res.v[3]};
    take_result(pq, &r);
    pq->n_evaluated++;
    if (pq->cache_dir) /* as soon as it is known: a rerun after a rank died resumes here */
        prof_cache_put(pq->cache_dir, u->key, u->v, 4);
    mq_progress_step(&fs->pr, ++fs->n_done, false, NULL);
    return MQ_OK;
}

int prof_quality_flush(struct prof_quality *pq)
{
    pq->collect = false;
    int first = 0;
    while (first < pq->n_units && pq->units[first].done)
        first++;
    int64_t n = pq->n_units - first;
    if (n == 0)
        return MQ_OK;
    const struct mq_model *m = pq->m;
    struct quality_setup *su = calloc(1, sizeof(*su));
    uint8_t *units = malloc((size_t)n * (size_t)m->n_layers + 1);
    double *secs = calloc((size_t)n, sizeof(double));
    struct quality_job local = {.pq = pq};
    int rc = su && units && secs
                 ? mq_plan_reference(m, pq->be, &local.plan)
                 : mq_error(MQ_ENOMEM, "cannot allocate %lld evaluations", (long long)n);
    if (rc < 0)
        goto done;
    fill_setup(pq, su);
    for (int64_t i = 0; i < n; i++)
        for (int l = 0; l < m->n_layers; l++)
            units[i * m->n_layers + l] = (uint8_t)pq->units[first + i].fmt[l];
    struct flush_state fs = {.pq = pq, .first = first};
    mq_progress_init(&fs.pr, pq->cfg.progress, "evaluation", n);
    mq_info("%lld evaluations over %d MPI ranks", (long long)n, mq_dist_size());
    struct mq_dist_map mp = {.job = &prof_quality_dist_job,
                             .setup = su,
                             .setup_bytes = sizeof(*su),
                             .n = n,
                             .units = units,
                             .unit_bytes = (size_t)m->n_layers,
                             .local = &local,
                             .result = flush_result,
                             .arg = &fs,
                             .what = "evaluations",
                             .unit_seconds = secs};
    uint64_t t0 = prof_now_ns();
    rc = mq_dist_run(&mp);
    mq_progress_end(&fs.pr);
    if (rc == MQ_OK)
        mq_dist_report("evaluations", secs, n, (double)(prof_now_ns() - t0) * 1e-9);
done:
    free(secs);
    mq_plan_free(local.plan);
    free(units);
    free(su);
    return rc;
}

/* ---- the weights' own error ---- */

/* The error measure of a layer's weights w[n_out][n_in] (or their error): importance-
 * weighted squares, or with a Gram factor the output error over the calibration text
 * (mq_gram_norm2), which compensated quantization minimizes. y[n_in] is scratch. */
static double weight_norm2(const struct mq_layer *ly, const float *imp, const float *gram_u, const float *w,
                           double *y)
{
    double s = 0;
    for (int64_t r = 0; r < ly->n_out; r++) {
        const float *wr = w + r * ly->n_in;
        if (gram_u) {
            s += mq_gram_norm2(gram_u, wr, ly->n_in, y);
            continue;
        }
        for (int64_t i = 0; i < ly->n_in; i++)
            s += (imp ? (double)imp[i] : 1.0) * (double)wr[i] * (double)wr[i];
    }
    return s;
}

/* The cache key of layer's weight error in format f. */
static void qerr_key(const struct mq_model *m, int layer, int f, bool weighted, char *key, size_t size)
{
    snprintf(key, size, "%s model=%016llx imp=%016llx weighted=%d layer=%d:%s fmt=%s",
             QERR_CACHE_VERSION, (unsigned long long)m->content_hash,
             (unsigned long long)m->imp_hash, weighted, layer, m->layers[layer].name,
             mq_dtype_name((enum mq_dtype)f));
}

int prof_quality_weight_error(const struct mq_model *m, int layer, uint32_t menu, bool weighted,
                              const char *cache_dir, bool cache_refresh, double out[MQ_DTYPE_COUNT])
{
    const struct mq_layer *ly = &m->layers[layer];
    const float *imp = weighted ? ly->imp : NULL;
    const float *gram_u = weighted ? ly->gram_u : NULL;
    int64_t n = ly->n_in * ly->n_out;
    float *w = NULL, *back = NULL;
    double *y = NULL;
    int rc = MQ_OK;
    double norm = NAN;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        if (!prof_quality_analysed(menu, ly, f))
            continue;
        char key[1200];
        qerr_key(m, layer, f, imp != NULL, key, sizeof(key));
        double v;
        if (cache_dir && !cache_refresh && prof_cache_get(cache_dir, key, &v, 1) == 1) {
            out[f] = v;
            continue;
        }
        if (!w) {
            w = malloc((size_t)n * sizeof(float) + 1);
            back = malloc((size_t)n * sizeof(float) + 1);
            y = malloc((size_t)ly->n_in * sizeof(double));
            if (!w || !back || !y) {
                rc = mq_error(MQ_ENOMEM, "cannot allocate %lld weights of '%s'", (long long)n, ly->name);
                break;
            }
            mq_dtype_get(ly->src_type)->to_f32(ly->src_data, w, n);
            norm = weight_norm2(ly, imp, gram_u, w, y);
        }
        const void *data;
        void *buf;
        /* converted as every plan converts it (the importance weights quantize it, whether or
         * not they weight the error) */
        if ((rc = mq_convert_weights(ly->name, ly->src_type, ly->src_data, ly->n_in, ly->n_out, (enum mq_dtype)f,
                                     ly->imp, ly->gram_u, &data, &buf)) < 0)
            break;
        mq_dtype_get((enum mq_dtype)f)->to_f32(data, back, n);
        free(buf);
        for (int64_t i = 0; i < n; i++)
            back[i] -= w[i];
        double err = weight_norm2(ly, imp, gram_u, back, y);
        out[f] = norm > 0 ? err / norm : 0;
        if (cache_dir)
            prof_cache_put(cache_dir, key, &out[f], 1);
    }
    free(w);
    free(back);
    free(y);
    if (w)
        mq_model_release_layer(m, layer);
    return rc;
}

/* Weight errors over the ranks: a unit is a layer (its index, the menu and whether
 * weighted), its result the layer's errors in every format. */
struct qerr_unit {
    int32_t layer;
    uint32_t menu;
    int32_t weighted;
};

struct qerr_job {
    const struct mq_model *m;
    struct mq_model *own; /* workers: loaded here */
};

static void qerr_job_close(void *ctx)
{
    struct qerr_job *j = ctx;
    if (j)
        mq_model_free(j->own);
    free(j);
}

static int qerr_job_open(const void *setup, size_t bytes, void **out)
{
    struct quality_setup su;
    int rc = take_setup(setup, bytes, &su);
    struct qerr_job *j = rc < 0 ? NULL : calloc(1, sizeof(*j));
    *out = NULL;
    if (rc < 0)
        return rc;
    if (!j)
        return mq_error(MQ_ENOMEM, "cannot allocate a weight-error job");
    if ((rc = load_as_rank0(&su, &j->own)) < 0) {
        free(j);
        return rc;
    }
    j->m = j->own;
    *out = j;
    return MQ_OK;
}

static int qerr_job_run(void *ctx, int64_t index, const void *unit, size_t bytes, void **out,
                        size_t *out_bytes)
{
    struct qerr_job *j = ctx;
    struct qerr_unit u;
    if (bytes != sizeof(u))
        return mq_error(MQ_EINTERNAL, "weight-error unit %lld of %zu bytes", (long long)index, bytes);
    memcpy(&u, unit, sizeof(u));
    if (u.layer < 0 || u.layer >= j->m->n_layers)
        return mq_error(MQ_EINTERNAL, "weight-error unit %lld: layer %d", (long long)index, u.layer);
    double *err = malloc(MQ_DTYPE_COUNT * sizeof(double));
    if (!err)
        return mq_error(MQ_ENOMEM, "cannot allocate a result");
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        err[f] = NAN;
    int rc = prof_quality_weight_error(j->m, u.layer, u.menu, u.weighted != 0, NULL, false, err);
    mq_model_release_layer(j->m, u.layer);
    if (rc < 0) {
        free(err);
        return rc;
    }
    *out = err;
    *out_bytes = MQ_DTYPE_COUNT * sizeof(double);
    return MQ_OK;
}

const struct mq_dist_job prof_qerr_dist_job = {
    .kind = "weight-error", .open = qerr_job_open, .run = qerr_job_run, .close = qerr_job_close};

struct qerr_state {
    const struct mq_model *m;
    const struct qerr_unit *units;
    double *out;
    const char *cache_dir;
    struct mq_progress pr;
    int64_t n_done;
};

static int qerr_result(void *arg, int64_t i, const void *bytes, size_t n)
{
    struct qerr_state *st = arg;
    const struct qerr_unit *u = &st->units[i];
    if (n != MQ_DTYPE_COUNT * sizeof(double))
        return mq_error(MQ_EINTERNAL, "a weight-error result of %zu bytes", n);
    double *dst = &st->out[(size_t)u->layer * MQ_DTYPE_COUNT];
    const struct mq_layer *ly = &st->m->layers[u->layer];
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        if (!prof_quality_analysed(u->menu, ly, f))
            continue;
        memcpy(&dst[f], (const char *)bytes + f * sizeof(double), sizeof(double));
        if (st->cache_dir) { /* as soon as it is known, as prof_quality_weight_error does */
            char key[1200];
            qerr_key(st->m, u->layer, f, u->weighted && ly->imp, key, sizeof(key));
            prof_cache_put(st->cache_dir, key, &dst[f], 1);
        }
    }
    mq_progress_step(&st->pr, ++st->n_done, false, ly->name);
    return MQ_OK;
}

int prof_quality_weight_errors(const struct mq_model *m, const uint8_t *want, uint32_t menu,
                               bool weighted, const char *cache_dir, bool cache_refresh,
                               bool progress, double *out)
{
    struct qerr_state st = {.m = m, .out = out, .cache_dir = cache_dir};
    struct qerr_unit *units = malloc(((size_t)m->n_layers + 1) * sizeof(*units));
    if (!units)
        return mq_error(MQ_ENOMEM, "cannot allocate %d layers", m->n_layers);
    int64_t n = 0;
    int rc = MQ_OK;
    for (int l = 0; l < m->n_layers && rc == MQ_OK; l++) {
        if (!want[l])
            continue;
        /* cached layers here, the rest units (every rank computes a unit without the cache) */
        bool cached = cache_dir && !cache_refresh;
        for (int f = 0; f < MQ_DTYPE_COUNT && cached; f++) {
            char key[1200];
            if (!prof_quality_analysed(menu, &m->layers[l], f))
                continue;
            qerr_key(m, l, f, weighted && m->layers[l].imp, key, sizeof(key));
            cached = prof_cache_get(cache_dir, key, &out[(size_t)l * MQ_DTYPE_COUNT + f], 1) == 1;
        }
        if (!cached)
            units[n++] = (struct qerr_unit){.layer = l, .menu = menu, .weighted = weighted};
    }
    struct quality_setup *su = calloc(1, sizeof(*su));
    if (!su) {
        free(units);
        return mq_error(MQ_ENOMEM, "cannot allocate a setup");
    }
    fill_model_setup(m, su);
    st.units = units;
    mq_progress_init(&st.pr, progress, "weight errors: layer", n);
    struct qerr_job local = {.m = m};
    double *secs = calloc((size_t)n + 1, sizeof(double));
    struct mq_dist_map mp = {.job = &prof_qerr_dist_job, .setup = su, .setup_bytes = sizeof(*su),
                             .n = n, .units = units, .unit_bytes = sizeof(*units),
                             .local = &local, .result = qerr_result, .arg = &st,
                             .what = "weight errors", .unit_seconds = secs};
    uint64_t t0 = prof_now_ns();
    rc = secs ? mq_dist_run(&mp) : mq_error(MQ_ENOMEM, "cannot allocate %lld layers", (long long)n);
    mq_progress_end(&st.pr);
    if (rc == MQ_OK && mq_dist_size() > 1)
        mq_dist_report("weight errors", secs, n, (double)(prof_now_ns() - t0) * 1e-9);
    free(secs);
    free(su);
    free(units);
    return rc;
}

/* ---- proxy: each layer's own output error on captured inputs ---- */

struct proxy_ctx {
    const struct mq_model *m;
    struct be_backend *be;
    uint32_t menu;
    double *proxy;
    bool *done; /* [n_layers] */
    int n_done;
    struct mq_progress pr;
    struct mq_upload_progress *up; /* the capture context's upload line, ended at the first layer */
};

static int matmul_host(struct be_backend *be, const struct mq_layer *ly, enum mq_dtype fmt, const struct be_tensor *x,
                       struct be_tensor *y, float *out, size_t out_bytes)
{
    const void *data;
    void *buf;
    struct be_tensor w;
    int rc = mq_convert_weights(ly->name, ly->src_type, ly->src_data, ly->n_in, ly->n_out, fmt, ly->imp, ly->gram_u,
                                &data, &buf);
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
    if (pc->up) {
        mq_upload_progress_end(pc->up);
        pc->up = NULL;
    }
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
    /* the reference output: the layer as stored where the backend runs that type (as the
     * captured activations were computed: mq_plan_reference), else f32; never an f32 copy
     * of a large stored layer (an 8B model's output matrix: 2.1 GB) */
    enum mq_dtype ref_fmt = ly->src_type;
    if (!mq_dtype_get(ref_fmt)->is_plan_format || !mq_layer_allows(ly, ref_fmt) ||
        !be_supports(be, BE_OP_MATMUL, ref_fmt))
        ref_fmt = MQ_DTYPE_F32;
    if (rc == MQ_OK)
        rc = matmul_host(be, ly, ref_fmt, &x, &y, ref, out_bytes);
    double norm = 0;
    for (size_t i = 0; rc == MQ_OK && i < out_bytes / sizeof(float); i++)
        norm += (double)ref[i] * (double)ref[i];
    for (int f = 0; rc == MQ_OK && f < MQ_DTYPE_COUNT; f++) {
        if (!prof_quality_analysed(pc->menu, ly, f))
            continue;
        if ((rc = matmul_host(be, ly, (enum mq_dtype)f, &x, &y, got, out_bytes)) < 0)
            break;
        double err = 0;
        for (size_t i = 0; i < out_bytes / sizeof(float); i++) {
            double d = (double)got[i] - (double)ref[i];
            err += d * d;
        }
        pc->proxy[layer * MQ_DTYPE_COUNT + f] = norm > 0 ? err / norm : 0;
    }
    be_free(be, &x);
    be_free(be, &y);
    free(ref);
    free(got);
    /* the conversions are done: the layer's stored pages need not stay resident beside the
     * reference context's copy */
    mq_model_release_layer(pc->m, layer);
    if (rc == MQ_OK) {
        pc->done[layer] = true;
        pc->n_done++;
        mq_progress_step(&pc->pr, pc->n_done, false, ly->name);
    }
    return rc;
}

int prof_quality_proxy(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg,
                       uint32_t menu, bool progress, double *proxy)
{
    struct proxy_ctx pc = {.m = m, .be = be, .menu = menu, .proxy = proxy};
    pc.done = calloc((size_t)m->n_layers + 1, sizeof(bool));
    if (!pc.done)
        return mq_error(MQ_ENOMEM, "cannot allocate the proxy state");
    /* the capture hands over every layer with a matmul: all but an untied token_embd */
    int n_mm = m->n_layers - (m->kind == MQ_MODEL_LLAMA && !m->hp.tied_output && m->n_layers > 1);
    mq_progress_init(&pc.pr, progress, "proxy sensitivity: layer", n_mm);
    /* the capture builds a reference context first: its upload has its own line, which the
     * first layer's step ends */
    struct mq_plan *ref = NULL;
    struct mq_upload_progress up = {0};
    if (progress && mq_plan_reference(m, be, &ref) == MQ_OK)
        mq_upload_progress_begin(&up, be, mq_plan_weight_bytes(m, ref), true, ref->label);
    pc.up = &up;
    int rc = m->runner->capture(m, be, cfg, proxy_layer, &pc);
    if (pc.up)
        mq_upload_progress_end(&up);
    mq_plan_free(ref);
    mq_progress_end(&pc.pr);
    /* layers without a matmul: the relative error of the weights themselves */
    for (int l = 0; rc == MQ_OK && l < m->n_layers; l++)
        if (!pc.done[l])
            rc = prof_quality_weight_error(m, l, menu, false, NULL, false, &proxy[l * MQ_DTYPE_COUNT]);
    free(pc.done);
    return rc;
}
