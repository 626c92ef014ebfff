/* tests/unit/test_arch.c - every architecture of llm/arch.h's table against llama.cpp.
 *
 * For each row of tests/golden/arch/manifest: the synthetic model of that architecture
 * (mq_synth_write, f32 weights), loaded (the tensors and hyperparameters its row adds),
 * then run on the ref and cpu backends (and neon where it runs: make check-aarch64) over the chunks whose tokens and log-probabilities
 * llama.cpp's llama-perplexity wrote (tests/golden/arch/ARCH.logits, made by
 * scripts/make-arch-golden). Scored as llama-perplexity scores: the second half of each
 * chunk, the first token replaced by BOS.
 *
 * Tolerances: mean KL(llama.cpp || mixq) below 2e-4 and no log-probability of a likely
 * token (above max - 8 nats) off by more than 0.03. Both compute in f32, but llama.cpp
 * keeps K and V in f16 and its file stores log-probabilities in steps of at most
 * 16/65535 nats. The golden distributions must be informative (mean entropy at least
 * 0.5 nat below uniform) so that a missing bias, norm or cap shows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/status.h"
#include "llm/arch.h"
#include "llm/llama.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/synth.h"
#include "tests/unit/test.h"
#include "tokenizer/tokenizer.h"

#define MANIFEST "tests/golden/arch/manifest"

struct arch_case {
    char arch[32], variant[32], name[64]; /* name: arch, or arch-variant (the golden's) */
    long long head_dim, window, seed, ctx, chunks;
    double stddev;
    bool rope_freqs; /* variant rope-freqs: llama 3.1's RoPE frequency factors */
};

/* The manifest's rows; returns the count (0 on a read error). */
static int read_manifest(struct arch_case *cases, int max)
{
    FILE *f = fopen(MANIFEST, "r");
    if (!f)
        return 0;
    char line[256];
    int n = 0;
    while (n < max && fgets(line, sizeof(line), f)) {
        struct arch_case *c = &cases[n];
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%31s %lld %lld %lf %lld %lld %lld %31s", c->arch, &c->head_dim, &c->window, &c->stddev,
                   &c->seed, &c->ctx, &c->chunks, c->variant) == 8) {
            bool plain = !strcmp(c->variant, "-");
            snprintf(c->name, sizeof(c->name), "%s%s%s", c->arch, plain ? "" : "-", plain ? "" : c->variant);
            c->rope_freqs = !strcmp(c->variant, "rope-freqs");
            n++;
        }
    }
    fclose(f);
    return n;
}

/* llama-perplexity's --kl-divergence-base file: the header, the tokens, and per scored
 * position a float scale, a float minimum log-probability and n_vocab (rounded up to
 * even) 16-bit codes. */
struct golden {
    int32_t n_ctx, n_vocab, n_chunks;
    int32_t *tokens;   /* [n_chunks * n_ctx] */
    uint16_t *records; /* [n_scored][4 + even n_vocab] */
    size_t rec_len;    /* uint16 per record */
    int64_t n_scored;
};

static int golden_read(const char *path, struct golden *g)
{
    memset(g, 0, sizeof(*g));
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char magic[8];
    int32_t hdr[3];
    int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, "_logits_", 8) && fread(hdr, 4, 3, f) == 3 &&
             hdr[0] >= 4 && hdr[0] <= 4096 && hdr[1] > 0 && hdr[1] <= (1 << 20) && hdr[2] > 0 && hdr[2] <= 64;
    if (ok) {
        g->n_ctx = hdr[0], g->n_vocab = hdr[1], g->n_chunks = hdr[2];
        size_t n_tok = (size_t)g->n_ctx * (size_t)g->n_chunks;
        g->rec_len = 4 + 2 * (((size_t)g->n_vocab + 1) / 2);
        g->n_scored = (int64_t)g->n_chunks * (g->n_ctx - 1 - g->n_ctx / 2);
        g->tokens = malloc(n_tok * sizeof(*g->tokens));
        g->records = malloc((size_t)g->n_scored * g->rec_len * sizeof(*g->records));
        ok = g->tokens && g->records && fread(g->tokens, 4, n_tok, f) == n_tok &&
             fread(g->records, 2 * g->rec_len, (size_t)g->n_scored, f) == (size_t)g->n_scored;
    }
    fclose(f);
    return ok ? 0 : -1;
}

static void golden_release(struct golden *g)
{
    free(g->tokens);
    free(g->records);
}

/* Decodes record r into log-probabilities lp[n_vocab]; returns the largest. */
static double golden_log_probs(const struct golden *g, int64_t r, double *lp)
{
    const uint16_t *rec = g->records + (size_t)r * g->rec_len;
    float scale, min_lp;
    memcpy(&scale, rec, 4);
    memcpy(&min_lp, rec + 2, 4);
    double best = -INFINITY;
    for (int32_t i = 0; i < g->n_vocab; i++) {
        lp[i] = (double)min_lp + (double)scale * rec[4 + i];
        best = lp[i] > best ? lp[i] : best;
    }
    return best;
}

struct agreement {
    double kl_mean, kl_max, lp_err_max, entropy_mean, top1;
};

/* Runs the model's f32 plan on `backend` over the golden chunks and compares. */
static int compare_backend(const struct mq_model *m, const char *backend, const struct golden *g,
                           struct agreement *a)
{
    memset(a, 0, sizeof(*a));
    struct be_backend *be = NULL;
    struct mq_plan *plan = NULL;
    struct mq_llama *l = NULL;
    int64_t V = g->n_vocab, C = g->n_ctx;
    float *logits = malloc((size_t)C * (size_t)V * sizeof(float));
    double *lp = malloc((size_t)V * sizeof(double));
    int32_t *toks = malloc((size_t)C * sizeof(int32_t));
    int rc = -1;
    if (!logits || !lp || !toks || be_open(backend, &(struct be_config){.n_threads = 2}, &be) < 0 ||
        mq_plan_uniform(m, MQ_DTYPE_F32, &plan) < 0 ||
        mq_llama_new(m, plan, be, &(struct mq_llama_config){.n_ctx = C, .n_batch = C}, &l) < 0)
        goto done;
    int64_t r = 0, agree = 0;
    for (int32_t c = 0; c < g->n_chunks; c++) {
        memcpy(toks, g->tokens + (size_t)c * (size_t)C, (size_t)C * sizeof(int32_t));
        if (mq_vocab_add_bos(m->vocab))
            toks[0] = mq_vocab_bos(m->vocab);
        if (mq_llama_decode(l, toks, C, 0, logits) < 0)
            goto done;
        for (int64_t j = C / 2; j < C - 1; j++, r++) {
            const float *x = logits + (size_t)j * (size_t)V;
            double mx = x[0], sum = 0.0;
            for (int64_t i = 1; i < V; i++)
                mx = x[i] > mx ? x[i] : mx;
            for (int64_t i = 0; i < V; i++)
                sum += exp((double)x[i] - mx);
            double lse = mx + log(sum), best = golden_log_probs(g, r, lp), kl = 0.0, h = 0.0;
            int64_t top_m = 0, top_l = 0;
            for (int64_t i = 0; i < V; i++) {
                double lm = (double)x[i] - lse, p = exp(lp[i]);
                kl += p * (lp[i] - lm);
                h -= p * lp[i];
                if (lp[i] > best - 8.0 && fabs(lp[i] - lm) > a->lp_err_max)
                    a->lp_err_max = fabs(lp[i] - lm);
                top_m = x[i] > x[top_m] ? i : top_m;
                top_l = lp[i] > lp[top_l] ? i : top_l;
            }
            agree += top_m == top_l;
            a->kl_mean += kl;
            a->kl_max = kl > a->kl_max ? kl : a->kl_max;
            a->entropy_mean += h;
        }
    }
    a->kl_mean /= (double)r;
    a->entropy_mean /= (double)r;
    a->top1 = (double)agree / (double)r;
    rc = 0;
done:
    mq_llama_free(l);
    mq_plan_free(plan);
    be_close(be);
    free(logits);
    free(lp);
    free(toks);
    return rc;
}

static bool backend_usable(const char *name)
{
    const struct be_ops *ops = be_registry_find(name);
    struct be_info info = {0};
    if (ops)
        ops->probe(&info);
    return ops && info.usable;
}

/* What the loader must have made of each row's model. */
static int check_structure(const struct mq_model *m, const struct arch_case *c)
{
    const struct mq_arch *a = m->arch_row;
    const struct mq_hparams *hp = &m->hp;
    T_CHECK(a && !strcmp(a->name, c->arch) && hp->rope_mode == (int)a->rope_mode);
    T_CHECK(hp->head_dim == (c->head_dim ? c->head_dim : hp->n_embd / hp->n_head));
    bool fused = !strcmp(c->arch, "phi3"), qwen2 = !strcmp(c->arch, "qwen2");
    for (int b = 0; b < hp->n_layer; b++) {
        const int *bl = &m->block_layer[b * MQ_ROLE_COUNT];
        const struct mq_block *bk = &m->blocks[b];
        T_CHECK((bl[MQ_ROLE_ATTN_QKV] >= 0) == fused && (bl[MQ_ROLE_ATTN_Q] >= 0) == !fused);
        T_CHECK((bl[MQ_ROLE_FFN_GATE] >= 0) == !(a->flags & MQ_ARCH_FUSED_GATE_UP));
        T_CHECK((bk->glue[MQ_GLUE_BIAS_Q] != NULL) == qwen2 && (bk->glue[MQ_GLUE_BIAS_V] != NULL) == qwen2);
        T_CHECK((bk->glue[MQ_GLUE_Q_NORM] != NULL) == !!(a->flags & MQ_ARCH_QK_NORM));
        T_CHECK((bk->glue[MQ_GLUE_FFN_POST_NORM] != NULL) == !!(a->flags & MQ_ARCH_POST_NORMS));
        /* gemma2 slides every second layer, gemma3 five of six */
        T_CHECK(bk->swa == (c->window > 0 && b % a->swa_pattern < a->swa_pattern - 1));
    }
    T_CHECK(hp->n_swa == c->window);
    T_CHECK(!!(m->rope_freqs || (m->rope_long && m->rope_short)) == c->rope_freqs);
    T_CHECK((hp->embd_scale != 1.0f) == !!(a->flags & MQ_ARCH_EMBD_SCALE));
    T_CHECK((hp->final_softcap > 0) == !!(a->flags & MQ_ARCH_SOFTCAP));
    return T_PASS;
}

static int test_arch_vs_llama_cpp(void)
{
    struct arch_case cases[16];
    int n = read_manifest(cases, 16);
    T_CHECK_MSG(n >= 9, "%s: %d rows", MANIFEST, n);
    for (int i = 0; i < n; i++) {
        const struct arch_case *c = &cases[i];
        T_CHECK_MSG(mq_arch_find(c->arch), "manifest row '%s' is not in llm/arch.c's table", c->arch);
        struct mq_synth_config cfg;
        T_CHECK(mq_synth_preset("tiny", &cfg) == MQ_OK);
        cfg.arch = c->arch;
        cfg.head_dim = c->head_dim;
        cfg.n_swa = c->window;
        cfg.rope_freqs = c->rope_freqs;
        char path[4200], golden_path[256];
        snprintf(path, sizeof(path), "%s/%s.gguf", t_tmpdir(), c->name);
        T_CHECK(mq_synth_write(&cfg,
                               &(struct mq_synth_options){.type = MQ_DTYPE_F32, .stddev = c->stddev,
                                                          .seed = (uint64_t)c->seed, .disk_budget = 1 << 28},
                               path) == MQ_OK);
        struct mq_model *m;
        T_CHECK(mq_model_load(path, &m) == MQ_OK);
        int rc = check_structure(m, c);
        snprintf(golden_path, sizeof(golden_path), "tests/golden/arch/%.63s.logits", c->name);
        struct golden g;
        if (rc == T_PASS && golden_read(golden_path, &g) != 0) {
            fprintf(stderr, "    %s: cannot read (scripts/make-arch-golden writes it)\n", golden_path);
            rc = T_FAIL;
        } else if (rc == T_PASS) {
            if (g.n_vocab != m->hp.n_vocab || g.n_ctx != c->ctx) {
                fprintf(stderr, "    %s: vocabulary %d, context %d: not this model's\n", golden_path, g.n_vocab,
                        g.n_ctx);
                rc = T_FAIL;
            }
            const char *backends[] = {"ref", "cpu", "neon"};
            for (int k = 0; k < 3 && rc == T_PASS; k++) {
                struct agreement a;
                if (!backend_usable(backends[k]))
                    continue; /* neon off aarch64 */
                if (compare_backend(m, backends[k], &g, &a) < 0) {
                    rc = T_FAIL;
                    break;
                }
                fprintf(stderr, "    %-6s %-3s KL mean %.2e max %.2e, log-prob error %.2e, same top %.3f, "
                        "entropy %.2f of %.2f\n", c->name, backends[k], a.kl_mean, a.kl_max, a.lp_err_max, a.top1,
                        a.entropy_mean, log((double)g.n_vocab));
                if (!(a.kl_mean < 2e-4 && a.lp_err_max < 0.03 && a.entropy_mean < log((double)g.n_vocab) - 0.5)) {
                    fprintf(stderr, "    %s on %s: disagrees with llama.cpp (or the golden is uninformative)\n",
                            c->name, backends[k]);
                    rc = T_FAIL;
                }
            }
            /* the factors show in the logits: without them (and LongRoPE's attention factor)
             * the same model is far off */
            if (rc == T_PASS && c->rope_freqs) {
                struct mq_model *mm = (struct mq_model *)m;
                const struct mq_gguf_tensor *ff = mm->rope_freqs, *fl = mm->rope_long, *fs = mm->rope_short;
                float af = mm->hp.rope_attn_factor;
                struct agreement a;
                mm->rope_freqs = mm->rope_long = mm->rope_short = NULL;
                mm->hp.rope_attn_factor = 1.0f;
                rc = compare_backend(m, "ref", &g, &a) < 0 ? T_FAIL : T_PASS;
                mm->rope_freqs = ff, mm->rope_long = fl, mm->rope_short = fs;
                mm->hp.rope_attn_factor = af;
                fprintf(stderr, "    %s without its factors: KL mean %.2e\n", c->name, a.kl_mean);
                if (rc == T_PASS && !(a.kl_mean > 100 * 2e-4)) {
                    fprintf(stderr, "    %s: the golden does not tell the factors apart\n", c->name);
                    rc = T_FAIL;
                }
            }
            golden_release(&g);
        }
        mq_model_free(m);
        if (rc != T_PASS)
            return rc;
    }
    return T_PASS;
}

/* A file with a tensor the architecture does not read, and one of an architecture
 * outside the table, are refused with one line each. */
static int test_arch_refusals(void)
{
    struct mq_synth_config cfg;
    T_CHECK(mq_synth_preset("tiny", &cfg) == MQ_OK);
    cfg.arch = "gemma4";
    char err[512];
    struct t_capture cap;
    T_CHECK(t_capture_begin(&cap) == 0);
    int rc = mq_synth_check(&cfg);
    t_capture_end(&cap, err, sizeof(err));
    T_CHECK(rc == MQ_EINVAL && strstr(err, "gemma4") && strstr(err, "qwen2"));
    return T_PASS;
}

const struct mq_test arch_tests[] = {
    {"architecture/vs-llama-cpp", test_arch_vs_llama_cpp},
    {"architecture/refusals", test_arch_refusals},
    {NULL, NULL},
};
