/* llm/llama_runner.c - the runner (model/runner.h) of llama models: sessions that run
 * decode / prefill / generate workloads, each layer's matmul work, the memory model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "llm/arch.h"
#include "llm/llama.h"
#include "model/eval.h"
#include "model/runner.h"
#include "tokenizer/tokenizer.h"

struct llama_session {
    const struct mq_model *m;
    struct mq_workload w;
    struct mq_llama *l;
    int32_t *tokens; /* pseudo-random ids for the workload's positions */
    int64_t n_tokens;
};

static bool llama_accepts(const struct mq_model *m, const struct mq_workload *w)
{
    return w->kind != MQ_WL_INFER;
}

static int llama_session_new(const struct mq_model *m, const struct mq_plan *p, struct be_backend *be,
                             const struct mq_workload *w, void **out)
{
    *out = NULL;
    int rc = mq_runner_check(m, w);
    if (rc < 0)
        return rc;
    struct llama_session *s = calloc(1, sizeof(*s));
    if (!s)
        return mq_error(MQ_ENOMEM, "cannot allocate a session");
    s->m = m;
    s->w = *w;
    s->n_tokens = mq_workload_ctx_needed(w);
    int64_t n_batch = w->kind == MQ_WL_DECODE ? 1 : w->prompt;
    s->tokens = malloc((size_t)s->n_tokens * sizeof(*s->tokens));
    if (!s->tokens) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %lld tokens", (long long)s->n_tokens);
        free(s);
        return rc;
    }
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int64_t i = 0; i < s->n_tokens; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s->tokens[i] = (int32_t)(x % (uint64_t)m->hp.n_vocab);
    }
    rc = mq_llama_new(m, p, be, &(struct mq_llama_config){.n_ctx = s->n_tokens, .n_batch = n_batch}, &s->l);
    if (rc < 0) {
        free(s->tokens);
        free(s);
        return rc;
    }
    *out = s;
    return MQ_OK;
}

/* Logits are not read back (no host copy in the timed run); the backend is synced. */
static int llama_session_run(void *p)
{
    struct llama_session *s = p;
    const struct mq_workload *w = &s->w;
    switch (w->kind) {
    case MQ_WL_DECODE:
        return mq_llama_decode(s->l, s->tokens + w->ctx - 1, 1, w->ctx - 1, NULL);
    case MQ_WL_PREFILL:
        return mq_llama_decode(s->l, s->tokens, w->prompt, 0, NULL);
    case MQ_WL_GENERATE: {
        int rc = mq_llama_decode(s->l, s->tokens, w->prompt, 0, NULL);
        for (int64_t i = 0; rc == MQ_OK && i < w->gen; i++)
            rc = mq_llama_decode(s->l, s->tokens + w->prompt + i, 1, w->prompt + i, NULL);
        return rc;
    }
    case MQ_WL_INFER:
        break;
    }
    return mq_error(MQ_EINTERNAL, "llama session: workload %s", w->label);
}

static void llama_session_free(void *p)
{
    struct llama_session *s = p;
    if (!s)
        return;
    mq_llama_free(s->l);
    free(s->tokens);
    free(s);
}

static int llama_layer_work(const struct mq_model *m, int layer, const struct mq_workload *w, int64_t M[4],
                            int64_t calls[4])
{
    /* token_embd is a lookup (GET_ROWS) unless it also serves as the tied output matrix */
    bool lookup_only = layer == m->layer_token_embd && !m->hp.tied_output;
    if (lookup_only)
        return 0;
    switch (w->kind) {
    case MQ_WL_DECODE:
        M[0] = 1;
        calls[0] = 1;
        return 1;
    case MQ_WL_PREFILL:
        M[0] = w->prompt;
        calls[0] = 1;
        return 1;
    case MQ_WL_GENERATE:
        M[0] = w->prompt;
        calls[0] = 1;
        M[1] = 1;
        calls[1] = w->gen;
        return 2;
    case MQ_WL_INFER:
        break;
    }
    return 0;
}

/* Activations the forward pass allocates (llama.c) for n_batch tokens, plus what the
 * backend allocates per matmul (quantized activations, per thread for small batches)
 * and the host logits buffer a caller reads into. */
static uint64_t llama_scratch(const struct mq_model *m, int64_t n_batch)
{
    const struct mq_hparams *hp = &m->hp;
    uint64_t E = (uint64_t)hp->n_embd, F = (uint64_t)hp->n_ff, V = (uint64_t)hp->n_vocab;
    uint64_t qdim = (uint64_t)(hp->head_dim * hp->n_head);
    uint64_t per_token = 4 * (3 * E + 2 * qdim + 2 * F + V) + 4; /* x h o, q attn, g u, logits, id */
    uint64_t quant = (uint64_t)n_batch * (F / 32 * 8 + F * 2);   /* largest K is n_ff or n_embd */
    return per_token * (uint64_t)n_batch + quant;
}

/* The F32 glue the forward pass uploads: norm weights and biases (llm/llama.c). */
static uint64_t glue_bytes(const struct mq_model *m)
{
    uint64_t n = (uint64_t)m->hp.n_embd; /* output_norm */
    n += m->rope_freqs || m->rope_long ? (uint64_t)m->hp.n_rot / 2 : 0; /* RoPE factors */
    for (int64_t b = 0; b < m->hp.n_layer; b++) {
        for (int k = 0; k < MQ_GLUE_COUNT; k++)
            n += m->blocks[b].glue[k] ? (uint64_t)m->blocks[b].glue[k]->n_elems : 0;
    }
    return 4 * n;
}

static int llama_memory(const struct mq_model *m, const struct mq_plan *p, const struct mq_workload *w,
                        struct mq_memory *out)
{
    memset(out, 0, sizeof(*out));
    const struct mq_hparams *hp = &m->hp;
    out->weights = mq_plan_weight_bytes(m, p) + glue_bytes(m);
    uint64_t kv_dim = (uint64_t)(hp->head_dim * hp->n_head_kv);
    out->kv_cache = 2 * 4 * kv_dim * (uint64_t)hp->n_layer * (uint64_t)mq_workload_ctx_needed(w);
    int64_t n_batch = w->kind == MQ_WL_DECODE ? 1 : w->prompt;
    out->scratch = llama_scratch(m, n_batch);
    out->total = out->weights + out->kv_cache + out->scratch + out->overhead;
    return MQ_OK;
}

static void llama_describe(const struct mq_model *m, FILE *f)
{
    const struct mq_hparams *hp = &m->hp;
    fprintf(f, "vocabulary    %s; bos %d, eos %d, add bos %s\n", mq_vocab_describe(m->vocab), mq_vocab_bos(m->vocab),
            mq_vocab_eos(m->vocab), mq_vocab_add_bos(m->vocab) ? "yes" : "no");
    fprintf(f, "context       %lld (training)\n", (long long)hp->n_ctx_train);
    fprintf(f, "shape         embedding %lld, blocks %lld, heads %lld (kv heads %lld), head dim %lld, ffn %lld\n",
            (long long)hp->n_embd, (long long)hp->n_layer, (long long)hp->n_head, (long long)hp->n_head_kv,
            (long long)hp->head_dim, (long long)hp->n_ff);
    fprintf(f, "rope          %d dims (%s pairs), theta %g, frequency scale %g%s; rms norm eps %g; output %s\n",
            hp->n_rot, hp->rope_mode == BE_ROPE_NEOX ? "neox" : "adjacent", (double)hp->rope_theta,
            (double)hp->rope_freq_scale,
            m->rope_freqs ? ", frequency factors (rope_freqs)"
            : m->rope_long ? ", LongRoPE factors (long over the original context, else short)" : "",
            (double)hp->norm_eps, hp->tied_output ? "tied to token_embd" : "untied");
    if (hp->rope_attn_factor != 1.0f || hp->n_ctx_orig != hp->n_ctx_train)
        fprintf(f, "rope scaling  attention factor %g, original context %lld\n", (double)hp->rope_attn_factor,
                (long long)hp->n_ctx_orig);
    const struct mq_arch *a = m->arch_row;
    fprintf(f, "block         %s gate%s%s%s%s", a->act == MQ_FFN_GELU ? "gelu" : "silu",
            (a->flags & MQ_ARCH_QK_NORM) ? ", q/k head norms" : "", (a->flags & MQ_ARCH_POST_NORMS) ? ", post norms" : "",
            hp->embd_scale != 1.0f ? ", embeddings scaled" : "", m->blocks[0].glue[MQ_GLUE_BIAS_Q] ? ", q/k/v biases" : "");
    if (hp->attn_softcap > 0 || hp->final_softcap > 0)
        fprintf(f, ", soft caps attention %g final %g", (double)hp->attn_softcap, (double)hp->final_softcap);
    if (hp->n_swa > 0) {
        int n_swa_layers = 0;
        for (int64_t b = 0; b < hp->n_layer; b++)
            n_swa_layers += m->blocks[b].swa;
        fprintf(f, ", %d of %lld blocks slide over %lld positions (theta %g)", n_swa_layers, (long long)hp->n_layer,
                (long long)hp->n_swa, (double)hp->rope_theta_swa);
    }
    fputc('\n', f);
}

/* ---- quality: perplexity and KL divergence over a text (model/eval.h) ---- */

static int read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return mq_error(MQ_EIO, "cannot open '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(fp);
                return mq_error(MQ_ENOMEM, "cannot read '%s'", path);
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, fp);
        n += k;
        if (k == 0)
            break;
    }
    int err = ferror(fp);
    fclose(fp);
    if (err) {
        free(buf);
        return mq_error(MQ_EIO, "cannot read '%s'", path);
    }
    if (n == 0) {
        free(buf);
        return mq_error(MQ_EINVAL, "evaluation text '%s' is empty", path);
    }
    *out = buf;
    *len = n;
    return MQ_OK;
}

static int llama_quality_new(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg,
                             void **out)
{
    *out = NULL;
    if (!cfg->data)
        return mq_error(MQ_EINVAL, "llama models are evaluated on a text: no evaluation text given");
    char *text = NULL;
    size_t len = 0, n_tokens = 0;
    int32_t *tokens = NULL;
    int rc = read_file(cfg->data, &text, &len);
    if (rc < 0)
        return rc;
    rc = mq_vocab_tokenize_special(m->vocab, text, len, true, &tokens, &n_tokens);
    free(text);
    if (rc < 0)
        return rc;
    int64_t ctx = mq_eval_ctx(m, cfg->ctx);
    struct mq_eval_config ec = {.n_ctx = ctx, .max_chunks = cfg->max_chunks, .progress = cfg->progress,
                                .reference = true};
    rc = mq_eval_new(m, be, tokens, n_tokens, &ec, (struct mq_eval **)out);
    free(tokens);
    return rc;
}

static int llama_quality_eval(void *q, const struct mq_plan *p, struct mq_quality *out)
{
    struct mq_eval_result r;
    memset(out, 0, sizeof(*out));
    int rc = mq_eval_plan(q, p, NULL, &r);
    if (rc < 0)
        return rc;
    out->loss = r.kl_mean;
    out->loss_stderr = r.kl_stderr;
    out->metric = r.ppl;
    out->ref_metric = r.ref_ppl;
    out->metric_name = "ppl";
    out->higher_is_better = false;
    out->top1_agree = r.top1_agree;
    out->n_samples = r.n_scored;
    out->seconds = r.seconds;
    return MQ_OK;
}

static void llama_quality_free(void *q) { mq_eval_free(q); }

static int llama_capture(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg,
                         mq_capture_fn fn, void *arg)
{
    if (!cfg->data)
        return mq_error(MQ_EINVAL, "llama models are calibrated on a text: no text given");
    char *text = NULL;
    size_t len = 0, n_tokens = 0;
    int32_t *tokens = NULL;
    struct mq_plan *p32 = NULL;
    struct mq_llama *l = NULL;
    int rc = read_file(cfg->data, &text, &len);
    if (rc == MQ_OK)
        rc = mq_vocab_tokenize_special(m->vocab, text, len, true, &tokens, &n_tokens);
    int64_t ctx = mq_eval_ctx(m, cfg->ctx);
    if (rc == MQ_OK && (int64_t)n_tokens < ctx)
        ctx = (int64_t)n_tokens;
    if (rc == MQ_OK && ctx < 2)
        rc = mq_error(MQ_EINVAL, "calibration text '%s' has %zu tokens", cfg->data, n_tokens);
    if (rc == MQ_OK)
        rc = mq_plan_reference(m, be, &p32);
    if (rc == MQ_OK)
        rc = mq_llama_new(m, p32, be, &(struct mq_llama_config){.n_ctx = ctx, .n_batch = ctx}, &l);
    if (rc == MQ_OK) {
        mq_llama_set_capture(l, fn, arg);
        rc = mq_llama_decode(l, tokens, ctx, 0, NULL);
    }
    mq_llama_free(l);
    mq_plan_free(p32);
    free(tokens);
    free(text);
    return rc;
}

const struct mq_runner_ops mq_llama_runner = {
    .kind = "llama",
    .default_workload = "decode:512",
    .accepts = llama_accepts,
    .session_new = llama_session_new,
    .session_run = llama_session_run,
    .session_free = llama_session_free,
    .layer_work = llama_layer_work,
    .memory = llama_memory,
    .describe = llama_describe,
    .quality_new = llama_quality_new,
    .quality_eval = llama_quality_eval,
    .quality_free = llama_quality_free,
    .capture = llama_capture,
};
