/* profiler/quality.c - evaluation passes, proxy captures and weight errors for the
 * sensitivity analysis. */
#include "profiler/quality.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/compensate.h"
#include "core/dtype.h"
#include "core/progress.h"
#include "core/status.h"
#include "profiler/cache.h"

#define QERR_CACHE_VERSION "qerr/1"

uint64_t prof_quality_data_hash(const char *path)
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

void prof_quality_release(struct prof_quality *pq)
{
    if (pq->q)
        pq->m->runner->quality_free(pq->q);
    pq->q = NULL;
}

int prof_quality_eval(struct prof_quality *pq, const char *what, const struct mq_plan *plan, double v[4])
{
    char key[1400];
    snprintf(key, sizeof(key), "%s data=%016llx ctx=%lld chunks=%lld be=%s ref=%016llx", what,
             (unsigned long long)pq->data_hash, (long long)pq->cfg.ctx, (long long)pq->cfg.max_chunks, pq->backend_name,
             (unsigned long long)pq->ref_hash);
    if (pq->cache_dir && !pq->cache_refresh && prof_cache_get(pq->cache_dir, key, v, 4) == 4) {
        pq->ref_metric = v[2];
        pq->n_samples = (int64_t)v[3];
        pq->n_cached++;
        return MQ_OK;
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
    pq->ref_metric = r.ref_metric;
    snprintf(pq->metric_name, sizeof(pq->metric_name), "%s", r.metric_name);
    pq->higher_is_better = r.higher_is_better;
    pq->n_samples = r.n_samples;
    pq->n_evaluated++;
    if (pq->cache_dir)
        prof_cache_put(pq->cache_dir, key, v, 4);
    return MQ_OK;
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
        snprintf(key, sizeof(key), "%s model=%016llx imp=%016llx weighted=%d layer=%d:%s fmt=%s", QERR_CACHE_VERSION,
                 (unsigned long long)m->content_hash, (unsigned long long)m->imp_hash, imp != NULL, layer, ly->name,
                 mq_dtype_name((enum mq_dtype)f));
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
