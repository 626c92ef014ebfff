/* model/eval.c - perplexity and KL divergence over chunks of text, llama-perplexity style. */
#include "model/eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/progress.h"
#include "core/status.h"
#include "llm/llama.h"
#include "tokenizer/tokenizer.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* log-softmax of n logits into out (double); returns the argmax. */
static int64_t log_softmax(const float *logits, int64_t n, double *out)
{
    int64_t arg = 0;
    double mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if ((double)logits[i] > mx) {
            mx = logits[i];
            arg = i;
        }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    for (int64_t i = 0; i < n; i++)
        out[i] = (double)logits[i] - lse;
    return arg;
}

/* llama-perplexity's nearest_int: round to nearest via the 1.5 * 2^23 trick */
static inline int nearest_int(float v)
{
    float x = v + 12582912.f;
    int i;
    memcpy(&i, &x, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

/* One scored position in llama.cpp's --kl-divergence-base encoding (float arithmetic in
 * the same order as its log_softmax, so the codes are the ones llama.cpp would write). */
static void encode_log_probs(const float *logits, int64_t n_vocab, uint16_t *rec)
{
    float max_logit = logits[0], min_logit = logits[0];
    for (int64_t i = 1; i < n_vocab; i++) {
        max_logit = logits[i] > max_logit ? logits[i] : max_logit;
        min_logit = logits[i] < min_logit ? logits[i] : min_logit;
    }
    min_logit = min_logit > max_logit - 16 ? min_logit : max_logit - 16;
    double sum_exp = 0.0;
    for (int64_t i = 0; i < n_vocab; i++)
        sum_exp += expf(logits[i] - max_logit);
    const float log_sum_exp = (float)log(sum_exp);
    const float min_log_prob = min_logit - max_logit - log_sum_exp;
    const float scale = (max_logit - min_logit) / 65535.f;
    memcpy(rec, &scale, 4);
    memcpy(rec + 2, &min_log_prob, 4);
    uint16_t *q = rec + 4;
    if (scale != 0.0f) {
        const float inv_scale = 1 / scale;
        for (int64_t i = 0; i < n_vocab; i++)
            q[i] = (uint16_t)(logits[i] > min_logit ? nearest_int(inv_scale * (logits[i] - min_logit)) : 0);
    } else {
        memset(q, 0, (size_t)n_vocab * sizeof(*q));
    }
}

struct logits_file {
    FILE *f;
    char tmp[4200];
    const char *path;
};

static int logits_open(struct logits_file *lf, const char *path, int64_t n_ctx, int64_t n_vocab,
                       int64_t n_chunks, const int32_t *tokens)
{
    lf->path = path;
    snprintf(lf->tmp, sizeof(lf->tmp), "%s.XXXXXX", path);
    int fd = mkstemp(lf->tmp);
    if (fd < 0 || !(lf->f = fdopen(fd, "wb"))) {
        if (fd >= 0)
            close(fd);
        return mq_error(MQ_EIO, "cannot create '%s': %s", lf->tmp, strerror(errno));
    }
    fchmod(fd, 0644);
    int32_t hdr[3] = {(int32_t)n_ctx, (int32_t)n_vocab, (int32_t)n_chunks};
    size_t n_tok = (size_t)(n_chunks * n_ctx);
    if (fwrite("_logits_", 1, 8, lf->f) != 8 || fwrite(hdr, sizeof(hdr[0]), 3, lf->f) != 3 ||
        fwrite(tokens, sizeof(*tokens), n_tok, lf->f) != n_tok)
        return mq_error(MQ_EIO, "cannot write '%s': %s", lf->tmp, strerror(errno));
    return MQ_OK;
}

static int logits_close(struct logits_file *lf, int rc)
{
    if (!lf->f)
        return rc;
    if (fclose(lf->f) != 0 && rc == MQ_OK)
        rc = mq_error(MQ_EIO, "cannot write '%s': %s", lf->tmp, strerror(errno));
    lf->f = NULL;
    if (rc == MQ_OK && rename(lf->tmp, lf->path) != 0)
        rc = mq_error(MQ_EIO, "cannot rename '%s' to '%s': %s", lf->tmp, lf->path, strerror(errno));
    if (rc < 0)
        unlink(lf->tmp);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs a whole chunk through ctx in batches, logits for all n positions. */
static int run_chunk(struct mq_llama *ctx, const int32_t *toks, int64_t n, int64_t n_batch,
                     int64_t n_vocab, float *logits)
{
    for (int64_t p = 0; p < n; p += n_batch) {
        int64_t k = n - p < n_batch ? n - p : n_batch;
        int rc = mq_llama_decode(ctx, toks + p, k, p, logits + (size_t)p * (size_t)n_vocab);
        if (rc < 0)
            return rc;
    }
    return MQ_OK;
}

struct mq_eval {
    const struct mq_model *m;
    struct be_backend *be;
    int32_t *tokens;
    size_t n_tokens;
    int64_t n_ctx, n_chunks, first, per_chunk, n_scored;
    int32_t bos; /* put in front of every chunk; -1: none */
    bool progress;
    float *ref_logits; /* [n_scored][V] or NULL */
    double ref_seconds;
    /* the context of the last plan evaluated, kept so that the next plan only re-uploads
     * the layers whose format differs (sensitivity analysis changes one layer at a time) */
    struct mq_llama *ctx;
};

/* A context for plan p: the kept one with its differing layers re-uploaded, or a new one. */
static int context_for(struct mq_eval *ev, const struct mq_plan *p, struct mq_llama **out)
{
    int rc = mq_plan_check(ev->m, p);
    if (rc < 0)
        return rc;
    if (ev->ctx) {
        for (int i = 0; i < p->n_layers && rc == MQ_OK; i++)
            rc = mq_llama_set_layer(ev->ctx, i, p->fmt[i]);
        if (rc == MQ_OK) {
            *out = ev->ctx;
            return MQ_OK;
        }
        mq_llama_free(ev->ctx); /* a failed re-upload leaves no half-changed context */
        ev->ctx = NULL;
    }
    struct mq_upload_progress up;
    mq_upload_progress_begin(&up, ev->be, mq_plan_weight_bytes(ev->m, p), ev->progress, p->label);
    rc = mq_llama_new(ev->m, p, ev->be, &(struct mq_llama_config){.n_ctx = ev->n_ctx, .n_batch = ev->n_ctx},
                      &ev->ctx);
    mq_upload_progress_end(&up);
    *out = ev->ctx;
    return rc;
}

/* Chunk c's tokens, BOS in front as llama-perplexity does. */
static void chunk_tokens(const struct mq_eval *ev, int64_t c, int32_t *chunk)
{
    memcpy(chunk, ev->tokens + c * ev->n_ctx, (size_t)ev->n_ctx * sizeof(*chunk));
    if (ev->bos >= 0)
        chunk[0] = ev->bos;
}

int mq_eval_new(const struct mq_model *m, struct be_backend *be, const int32_t *tokens, size_t n_tokens,
                const struct mq_eval_config *cfg, struct mq_eval **out)
{
    *out = NULL;
    int64_t n_ctx = cfg->n_ctx, V = m->hp.n_vocab;
    if (n_ctx < 4)
        return mq_error(MQ_EINVAL, "evaluation context %lld is too short (at least 4)", (long long)n_ctx);
    if ((int64_t)n_tokens < 2 * n_ctx)
        return mq_error(MQ_EINVAL, "evaluation text has %zu tokens: it needs at least %lld (2 x context %lld)",
                        n_tokens, (long long)(2 * n_ctx), (long long)n_ctx);
    struct mq_eval *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return mq_error(MQ_ENOMEM, "cannot allocate an evaluation");
    ev->m = m;
    ev->be = be;
    ev->n_ctx = n_ctx;
    ev->n_chunks = (int64_t)n_tokens / n_ctx;
    if (cfg->max_chunks > 0 && cfg->max_chunks < ev->n_chunks)
        ev->n_chunks = cfg->max_chunks;
    ev->first = n_ctx / 2;
    ev->per_chunk = n_ctx - 1 - ev->first;
    ev->n_scored = ev->n_chunks * ev->per_chunk;
    /* llama-perplexity puts BOS in front of every chunk only when the vocabulary adds
     * BOS (tinyllm does; SmolLM2 does not) */
    ev->bos = mq_vocab_add_bos(m->vocab) ? mq_vocab_bos(m->vocab) : -1;
    ev->progress = cfg->progress;
    ev->n_tokens = n_tokens;
    ev->tokens = malloc(n_tokens * sizeof(*tokens));
    if (!ev->tokens) {
        free(ev);
        return mq_error(MQ_ENOMEM, "cannot copy %zu tokens", n_tokens);
    }
    memcpy(ev->tokens, tokens, n_tokens * sizeof(*tokens));
    if (!cfg->reference) {
        *out = ev;
        return MQ_OK;
    }
    int rc = MQ_OK;
    struct mq_plan *p32 = NULL;
    struct mq_llama *ref = NULL;
    int32_t *chunk = malloc((size_t)n_ctx * sizeof(*chunk));
    float *lr = malloc((size_t)n_ctx * (size_t)V * sizeof(float));
    ev->ref_logits = malloc((size_t)ev->n_scored * (size_t)V * sizeof(float));
    if (!chunk || !lr || !ev->ref_logits) {
        rc = mq_error(MQ_ENOMEM, "cannot keep %lld x %lld reference logits", (long long)ev->n_scored, (long long)V);
        goto done;
    }
    if ((rc = mq_plan_reference(m, be, &p32)) < 0 || (rc = context_for(ev, p32, &ref)) < 0)
        goto done;
    double t0 = now_s();
    char what[160];
    snprintf(what, sizeof(what), "%s chunk", p32->label);
    struct mq_progress pr;
    mq_progress_init(&pr, cfg->progress, what, ev->n_chunks);
    for (int64_t c = 0; c < ev->n_chunks; c++) {
        chunk_tokens(ev, c, chunk);
        if ((rc = run_chunk(ref, chunk, n_ctx, n_ctx, V, lr)) < 0)
            goto done;
        memcpy(ev->ref_logits + (size_t)(c * ev->per_chunk) * (size_t)V, lr + (size_t)ev->first * (size_t)V,
               (size_t)ev->per_chunk * (size_t)V * sizeof(float));
        mq_progress_step(&pr, c + 1, false, NULL);
    }
    mq_progress_end(&pr);
    ev->ref_seconds = now_s() - t0;
done:
    free(chunk);
    free(lr);
    mq_plan_free(p32);
    if (rc < 0) {
        mq_eval_free(ev);
        return rc;
    }
    *out = ev;
    return MQ_OK;
}

void mq_eval_free(struct mq_eval *ev)
{
    if (!ev)
        return;
    mq_llama_free(ev->ctx);
    free(ev->tokens);
    free(ev->ref_logits);
    free(ev);
}

int mq_eval_plan(struct mq_eval *ev, const struct mq_plan *p, const char *save_logits, struct mq_eval_result *res)
{
    memset(res, 0, sizeof(*res));
    const int64_t n_ctx = ev->n_ctx, V = ev->m->hp.n_vocab, first = ev->first;
    const bool has_ref = ev->ref_logits != NULL;
    int rc = MQ_OK;
    struct mq_llama *test = NULL;
    int32_t *chunk = malloc((size_t)n_ctx * sizeof(*chunk));
    float *lt = malloc((size_t)n_ctx * (size_t)V * sizeof(float));
    double *lp_t = malloc((size_t)V * sizeof(double));
    double *lp_r = malloc((size_t)V * sizeof(double));
    double *kls = has_ref ? malloc((size_t)ev->n_scored * sizeof(double)) : NULL;
    size_t rec_len = (size_t)(2 * ((V + 1) / 2) + 4); /* uint16 per scored position */
    uint16_t *rec = save_logits ? calloc(rec_len, sizeof(uint16_t)) : NULL;
    struct logits_file lf = {0};
    if (!chunk || !lt || !lp_t || !lp_r || (has_ref && !kls) || (save_logits && !rec)) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate evaluation buffers for %lld x %lld logits", (long long)n_ctx,
                      (long long)V);
        goto done;
    }
    if ((rc = context_for(ev, p, &test)) < 0)
        goto done;
    if (save_logits && (rc = logits_open(&lf, save_logits, n_ctx, V, ev->n_chunks, ev->tokens)) < 0)
        goto done;
    struct mq_progress pr;
    mq_progress_init(&pr, ev->progress, "chunk", ev->n_chunks);
    double nll = 0.0, nll2 = 0.0, ref_nll = 0.0, kl = 0.0, kl2 = 0.0;
    int64_t agree = 0, k = 0;
    for (int64_t c = 0; c < ev->n_chunks; c++) {
        chunk_tokens(ev, c, chunk);
        double t0 = now_s();
        if ((rc = run_chunk(test, chunk, n_ctx, n_ctx, V, lt)) < 0)
            goto done;
        res->seconds += now_s() - t0;
        for (int64_t j = first; j < n_ctx - 1; j++) {
            if (lf.f) {
                encode_log_probs(lt + (size_t)j * (size_t)V, V, rec);
                if (fwrite(rec, sizeof(*rec), rec_len, lf.f) != rec_len) {
                    rc = mq_error(MQ_EIO, "cannot write '%s': %s", lf.tmp, strerror(errno));
                    goto done;
                }
            }
            int64_t top_t = log_softmax(lt + (size_t)j * (size_t)V, V, lp_t);
            double v = -lp_t[chunk[j + 1]];
            nll += v;
            nll2 += v * v;
            if (has_ref) {
                int64_t top_r = log_softmax(ev->ref_logits + (size_t)k * (size_t)V, V, lp_r);
                ref_nll -= lp_r[chunk[j + 1]];
                double d = 0.0;
                for (int64_t i = 0; i < V; i++)
                    d += exp(lp_r[i]) * (lp_r[i] - lp_t[i]);
                kls[k] = d;
                kl += d;
                kl2 += d * d;
                agree += top_t == top_r;
            }
            k++;
        }
        char sofar[48];
        snprintf(sofar, sizeof(sofar), "ppl so far %.4f", exp(nll / (double)k));
        mq_progress_step(&pr, c + 1, false, sofar);
    }
    mq_progress_end(&pr);
    double n = (double)ev->n_scored;
    res->n_tokens = (int64_t)ev->n_tokens;
    res->n_chunks = ev->n_chunks;
    res->n_scored = ev->n_scored;
    res->nll_mean = nll / n;
    res->nll_stderr = n > 1 ? sqrt(fmax(0.0, nll2 / n - res->nll_mean * res->nll_mean) / (n - 1)) : 0.0;
    res->ppl = exp(res->nll_mean);
    res->ppl_stderr = res->ppl * res->nll_stderr;
    if (has_ref) {
        int64_t ns = ev->n_scored;
        res->has_ref = true;
        res->ref_seconds = ev->ref_seconds;
        res->ref_ppl = exp(ref_nll / n);
        res->kl_mean = kl / n;
        res->kl_stderr = n > 1 ? sqrt(fmax(0.0, kl2 / n - res->kl_mean * res->kl_mean) / (n - 1)) : 0.0;
        qsort(kls, (size_t)ns, sizeof(*kls), cmp_double);
        res->kl_median = ns % 2 ? kls[ns / 2] : 0.5 * (kls[ns / 2 - 1] + kls[ns / 2]);
        res->kl_p99 = kls[(int64_t)((double)(ns - 1) * 0.99)];
        res->kl_max = kls[ns - 1];
        res->top1_agree = (double)agree / n;
    }
done:
    rc = logits_close(&lf, rc);
    free(rec);
    free(chunk);
    free(lt);
    free(lp_t);
    free(lp_r);
    free(kls);
    return rc;
}

int64_t mq_eval_ctx(const struct mq_model *m, int64_t ctx)
{
    return ctx ? ctx : m->hp.n_ctx_train < MQ_EVAL_DEFAULT_CTX ? m->hp.n_ctx_train : MQ_EVAL_DEFAULT_CTX;
}
