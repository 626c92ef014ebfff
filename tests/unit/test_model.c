/* tests/unit/test_model.c - the bundled models: loading, layers, tokenizer, and the C
 * forward pass against PyTorch's logits (examples/tinyllm/golden.gguf and
 * examples/tinyllm256/golden.gguf). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "llm/llama.h"
#include "model/model.h"
#include "model/plan.h"
#include "tests/unit/test.h"
#include "tokenizer/tokenizer.h"

#define TINY "examples/tinyllm/tinyllm.gguf"
#define GOLDEN "examples/tinyllm/golden.gguf"
#define TINY256 "examples/tinyllm256/tinyllm256.gguf"
#define GOLDEN256 "examples/tinyllm256/golden.gguf"

static int test_load_tiny(void)
{
    struct mq_model *m;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    const struct mq_hparams *hp = &m->hp;
    T_CHECK(strcmp(m->arch, "llama") == 0);
    T_CHECK(hp->n_vocab == 259 && hp->n_embd == 192 && hp->n_layer == 6 && hp->n_head == 6);
    T_CHECK(hp->n_head_kv == 2 && hp->head_dim == 32 && hp->n_ff == 512 && hp->n_ctx_train == 256);
    T_CHECK(!hp->tied_output && hp->n_rot == 32);
    T_CHECK(m->n_layers == 1 + 6 * 7 + 1);
    T_CHECK(m->n_params > 1000000 && m->n_params < 4000000);
    T_CHECK(m->layers[m->layer_token_embd].role == MQ_ROLE_TOKEN_EMBD);
    T_CHECK(m->layers[m->layer_output].role == MQ_ROLE_OUTPUT);
    int i = mq_model_find_layer(m, "blk.3.ffn_down.weight");
    T_CHECK(i >= 0 && m->layers[i].role == MQ_ROLE_FFN_DOWN && m->layers[i].block == 3);
    T_CHECK(m->layers[i].n_in == 512 && m->layers[i].n_out == 192);
    T_CHECK(m->block_layer[3 * MQ_ROLE_COUNT + MQ_ROLE_FFN_DOWN] == i);
    T_CHECK(mq_model_find_layer(m, "blk.3.ffn_norm.weight") == -1); /* glue, not a layer */
    bool mixed;
    T_CHECK(mq_model_source_type(m, &mixed) == MQ_DTYPE_F32 && !mixed);
    struct mq_plan *p;
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_Q4_0, &p) == MQ_OK && mq_plan_check(m, p) == MQ_OK);
    T_CHECK(mq_plan_weight_bytes(m, p) * 32 == (uint64_t)2458752 * 18);
    p->fmt[0] = MQ_DTYPE_I32;
    T_CHECK(mq_plan_check(m, p) == MQ_EINVAL);
    mq_plan_free(p);
    mq_model_free(m);
    return T_PASS;
}

static int test_tokenizer_bytes(void)
{
    struct mq_model *m;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    const char text[] = "A\0\0\0b\xff\0\0\0\0 ";
    int32_t *ids;
    size_t n;
    T_CHECK(mq_vocab_tokenize(m->vocab, text, sizeof(text) - 1, true, &ids, &n) == MQ_OK);
    /* BOS, 'A', NUL NUL merged, NUL, 'b', the invalid byte 0xff read as U+FFFD (EF BF BD,
     * as llama.cpp's BPE does), two merged pairs, ' ' */
    int32_t want[] = {256, 'A', 258, 0, 'b', 0xEF, 0xBF, 0xBD, 258, 258, ' '};
    T_CHECK(n == sizeof(want) / sizeof(want[0]));
    T_CHECK(memcmp(ids, want, sizeof(want)) == 0);
    free(ids);
    T_CHECK(mq_vocab_tokenize(m->vocab, "xyz", 3, false, &ids, &n) == MQ_OK);
    T_CHECK(n == 3 && ids[0] == 'x' && ids[2] == 'z');
    free(ids);
    T_CHECK(mq_vocab_bos(m->vocab) == 256 && mq_vocab_eos(m->vocab) == 257 && mq_vocab_add_bos(m->vocab));
    mq_model_free(m);
    return T_PASS;
}

/* Max abs/rel error of the C logits against PyTorch's, for the whole sequence at once
 * (prefill) and token by token (decode through the KV cache). */
static int check_golden(const char *model, const char *golden, bool one_by_one, int threads)
{
    struct mq_model *m = NULL;
    struct mq_gguf *g = NULL;
    struct be_backend *be = NULL;
    struct mq_plan *plan = NULL;
    struct mq_llama *l = NULL;
    T_CHECK(mq_model_load(model, &m) == MQ_OK);
    T_CHECK(mq_gguf_open(golden, &g) == MQ_OK);
    T_CHECK(be_open("ref", &(struct be_config){.n_threads = threads}, &be) == MQ_OK);
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_F32, &plan) == MQ_OK);
    T_CHECK(mq_llama_new(m, plan, be, &(struct mq_llama_config){.n_ctx = 256}, &l) == MQ_OK);
    uint32_t n_seq = 0;
    T_CHECK(mq_gguf_get_u32(g, "mixq_golden.n_seq", &n_seq) == MQ_OK && n_seq >= 3);
    double max_abs = 0, max_rel = 0;
    int64_t V = m->hp.n_vocab;
    for (uint32_t s = 0; s < n_seq; s++) {
        char name[64];
        snprintf(name, sizeof(name), "golden.%u.tokens", s);
        const struct mq_gguf_tensor *tt = mq_gguf_find_tensor(g, name);
        snprintf(name, sizeof(name), "golden.%u.logits", s);
        const struct mq_gguf_tensor *tl = mq_gguf_find_tensor(g, name);
        T_CHECK(tt && tl && tt->type == MQ_DTYPE_I32 && tl->type == MQ_DTYPE_F32);
        int64_t n = tt->ne[0];
        T_CHECK(tl->ne[0] == V && tl->ne[1] == n);
        float *logits = malloc((size_t)(n * V) * sizeof(float));
        T_CHECK(logits);
        const int32_t *toks = tt->data;
        if (one_by_one) {
            for (int64_t p = 0; p < n; p++)
                T_CHECK(mq_llama_decode(l, toks + p, 1, p, logits + p * V) == MQ_OK);
        } else {
            T_CHECK(mq_llama_decode(l, toks, n, 0, logits) == MQ_OK);
        }
        const float *want = tl->data;
        for (int64_t i = 0; i < n * V; i++) {
            double d = fabs((double)logits[i] - (double)want[i]);
            max_abs = fmax(max_abs, d);
            max_rel = fmax(max_rel, d / fmax(1.0, fabs((double)want[i])));
        }
        free(logits);
    }
    fprintf(stderr, "    %s golden logits (%s, %d threads): max abs error %.3g, max rel error %.3g\n", model,
            one_by_one ? "token by token" : "whole sequence", threads, max_abs, max_rel);
    /* F32 weights, double accumulation here vs F32 BLAS in PyTorch: the differences are
     * float rounding through 6 blocks, around 1e-5 on logits of magnitude ~10. */
    T_CHECK_MSG(max_abs < 2e-4 && max_rel < 2e-5, "max abs %g, max rel %g", max_abs, max_rel);
    mq_llama_free(l);
    mq_plan_free(plan);
    be_close(be);
    mq_gguf_close(g);
    mq_model_free(m);
    return T_PASS;
}

static int test_golden_prefill(void) { return check_golden(TINY, GOLDEN, false, 2); }
static int test_golden_decode(void) { return check_golden(TINY, GOLDEN, true, 1); }
static int test_golden256_prefill(void) { return check_golden(TINY256, GOLDEN256, false, 2); }
static int test_golden256_decode(void) { return check_golden(TINY256, GOLDEN256, true, 1); }

/* The second bundled model: every row a multiple of 256, so every layer takes K-quants. */
static int test_load_tiny256(void)
{
    struct mq_model *m;
    T_CHECK(mq_model_load(TINY256, &m) == MQ_OK);
    const struct mq_hparams *hp = &m->hp;
    T_CHECK(hp->n_vocab == 259 && hp->n_embd == 256 && hp->n_layer == 6 && hp->n_head == 4);
    T_CHECK(hp->n_head_kv == 2 && hp->head_dim == 64 && hp->n_ff == 768 && hp->n_ctx_train == 256);
    bool mixed;
    T_CHECK(mq_model_source_type(m, &mixed) == MQ_DTYPE_F32 && !mixed);
    for (int i = 0; i < m->n_layers; i++) {
        T_CHECK_MSG(m->layers[i].n_in % 256 == 0, "%s: row %lld", m->layers[i].name, (long long)m->layers[i].n_in);
        T_CHECK(mq_dtype_row_ok(MQ_DTYPE_Q4_K, m->layers[i].n_in));
    }
    mq_model_free(m);
    return T_PASS;
}

/* A tied-output model (no output.weight) runs through token_embd for both uses. */
static int test_tied_output(void)
{
    struct mq_model *src;
    T_CHECK(mq_model_load(TINY, &src) == MQ_OK);
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    T_CHECK(w);
    for (uint64_t i = 0; i < src->gguf->n_kv; i++)
        T_CHECK(mq_gguf_writer_set_value(w, &src->gguf->kv[i].key, &src->gguf->kv[i].value) == MQ_OK);
    for (uint64_t i = 0; i < src->gguf->n_tensors; i++) {
        const struct mq_gguf_tensor *t = &src->gguf->tensors[i];
        if (strcmp(t->name, "output.weight") == 0)
            continue;
        T_CHECK(mq_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) == MQ_OK);
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/tied.gguf", t_tmpdir());
    T_CHECK(mq_gguf_writer_write(w, path) == MQ_OK);
    mq_gguf_writer_free(w);
    struct mq_model *m;
    T_CHECK(mq_model_load(path, &m) == MQ_OK);
    T_CHECK(m->hp.tied_output && m->n_layers == src->n_layers - 1 && m->layer_output == m->layer_token_embd);
    struct be_backend *be;
    T_CHECK(be_open("ref", NULL, &be) == MQ_OK);
    struct mq_plan *plan;
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_F32, &plan) == MQ_OK);
    struct mq_llama *l;
    T_CHECK(mq_llama_new(m, plan, be, &(struct mq_llama_config){.n_ctx = 8}, &l) == MQ_OK);
    int32_t toks[3] = {256, 'I', 'n'};
    float logits[3 * 259];
    T_CHECK(mq_llama_decode(l, toks, 3, 0, logits) == MQ_OK);
    for (int i = 0; i < 3 * 259; i++)
        T_CHECK(isfinite(logits[i]));
    /* bad calls are errors */
    T_CHECK(mq_llama_decode(l, toks, 3, 6, logits) == MQ_EINVAL);
    toks[1] = 259;
    T_CHECK(mq_llama_decode(l, toks, 3, 0, logits) == MQ_EINVAL);
    mq_llama_free(l);
    mq_plan_free(plan);
    be_close(be);
    mq_model_free(m);
    mq_model_free(src);
    return T_PASS;
}

/* A model file whose pieces are inconsistent is refused with MQ_EFORMAT, not run. */
static int test_model_refusals(void)
{
    struct mq_model *src;
    T_CHECK(mq_model_load(TINY, &src) == MQ_OK);
    char path[4200];
    snprintf(path, sizeof(path), "%s/bad-model.gguf", t_tmpdir());
    static const struct {
        const char *drop_tensor, *set_key, *value;
        int want;
        const char *add_tensor; /* a copy of output_norm under this name */
        const char *says;       /* in the one line printed */
    } cases[] = {
        {"blk.2.attn_v.weight", NULL, NULL, MQ_EFORMAT, NULL, "blk.2.attn_v.weight"},
        {NULL, "general.architecture", "gpt-neox", MQ_EUNSUPPORTED, NULL, "qwen2"},
        {NULL, "tokenizer.ggml.model", "bert", MQ_EUNSUPPORTED, NULL, "bert"},
        {NULL, "llama.rope.scaling.type", "yarn", MQ_EUNSUPPORTED, NULL, "yarn"},
        /* a tensor the architecture does not read (phi3's long-rope factors in a llama
         * file): running without it would be a silent wrong answer */
        {NULL, NULL, NULL, MQ_EUNSUPPORTED, "rope_factors_long.weight", "rope_factors_long.weight"},
        /* llama 3.1's rope_freqs, of the wrong length (n_rot / 2 = 16) */
        {NULL, NULL, NULL, MQ_EFORMAT, "rope_freqs.weight", "rope_freqs.weight"},
        /* a bias the architecture may have, of the wrong length */
        {NULL, NULL, NULL, MQ_EFORMAT, "blk.0.attn_k.bias", "blk.0.attn_k.bias"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct mq_gguf_writer *w = mq_gguf_writer_new();
        T_CHECK(w);
        for (uint64_t i = 0; i < src->gguf->n_kv; i++)
            T_CHECK(mq_gguf_writer_set_value(w, &src->gguf->kv[i].key, &src->gguf->kv[i].value) == MQ_OK);
        if (cases[c].set_key)
            T_CHECK(mq_gguf_writer_set_str(w, cases[c].set_key, cases[c].value) == MQ_OK);
        for (uint64_t i = 0; i < src->gguf->n_tensors; i++) {
            const struct mq_gguf_tensor *t = &src->gguf->tensors[i];
            if (cases[c].drop_tensor && strcmp(t->name, cases[c].drop_tensor) == 0)
                continue;
            T_CHECK(mq_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) == MQ_OK);
            if (cases[c].add_tensor && !strcmp(t->name, "output_norm.weight"))
                T_CHECK(mq_gguf_writer_add_tensor(w, cases[c].add_tensor, t->type, t->n_dims, t->ne, t->data) ==
                        MQ_OK);
        }
        T_CHECK(mq_gguf_writer_write(w, path) == MQ_OK);
        mq_gguf_writer_free(w);
        struct mq_model *m = NULL;
        char err[1024];
        struct t_capture cap;
        T_CHECK(t_capture_begin(&cap) == 0);
        int rc = mq_model_load(path, &m);
        t_capture_end(&cap, err, sizeof(err));
        T_CHECK_MSG(rc == cases[c].want && m == NULL, "case %zu: rc %d", c, rc);
        T_CHECK_MSG(strstr(err, cases[c].says) && strchr(err, '\n') == strrchr(err, '\n'), "case %zu: %s", c, err);
    }
    mq_model_free(src);
    return T_PASS;
}

const struct mq_test model_tests[] = {
    {"model/load_tiny", test_load_tiny},
    {"model/tokenizer_bytes", test_tokenizer_bytes},
    {"model/golden_prefill", test_golden_prefill},
    {"model/golden_decode", test_golden_decode},
    {"model/load_tiny256", test_load_tiny256},
    {"model/golden256_prefill", test_golden256_prefill},
    {"model/golden256_decode", test_golden256_decode},
    {"model/tied_output", test_tied_output},
    {"model/refusals", test_model_refusals},
    {NULL, NULL},
};
