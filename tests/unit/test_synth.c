/* tests/unit/test_synth.c - synthetic models (model/synth.h), the GGUF writer's row
 * callbacks they stream through, and gnuplot plots (reports/plot.h).
 *
 * Synthetic models are written at the test-sized preset and a few custom shapes, loaded
 * back with mq_model_load and run through the forward pass: shapes, types, the marks that
 * say "synthetic", the vocabulary, the weight distribution, determinism and the disk
 * budget. Plots check the data and script files everywhere, and the rendered images where
 * gnuplot is installed (skipping with the reason elsewhere). */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "llm/llama.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/synth.h"
#include "profiler/profile.h"
#include "reports/plot.h"
#include "tests/unit/test.h"
#include "tokenizer/tokenizer.h"

/* ---- helpers ------------------------------------------------------------------------- */

static void tpath(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", t_tmpdir(), name);
}

/* Reads a whole file (NUL-terminated); NULL on failure. The caller frees. */
static char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        rewind(f);
        buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        if (buf) {
            buf[n] = '\0';
            if (size)
                *size = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Names in dir containing `part`. */
static int count_named(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static int make_dir(char *buf, size_t size, const char *name)
{
    tpath(buf, size, name);
    return mkdir(buf, 0755) == 0 ? 0 : -1;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- the GGUF writer's row callbacks ------------------------------------------------- */

struct rows_ctx {
    const uint8_t *src;
    size_t row_bytes;
    int64_t next_row; /* rows must come in order */
    int calls;
    int fail_at; /* call that fails, 0: none */
};

static int rows_copy(void *ctx, const char *name, int64_t row0, int64_t n_rows, void *dst)
{
    struct rows_ctx *c = ctx;
    if (row0 != c->next_row)
        return mq_error(MQ_EINTERNAL, "tensor '%s': rows out of order", name);
    if (++c->calls == c->fail_at)
        return mq_error(MQ_EIO, "tensor '%s': the test's callback fails here", name);
    memcpy(dst, c->src + (size_t)row0 * c->row_bytes, (size_t)n_rows * c->row_bytes);
    c->next_row += n_rows;
    return MQ_OK;
}

/* A tensor streamed through a callback gives the same file as the same bytes given
 * whole; file_size predicts the size; a failing callback leaves no file. */
static int test_gguf_rows(void)
{
    /* 1200 x 1000 f32 = 4.8 MB: two chunks; a q8_0 tensor with rows of 64 */
    const int64_t ne_a[2] = {1200, 1000}, ne_b[2] = {64, 7};
    size_t na = (size_t)(ne_a[0] * ne_a[1]) * sizeof(float), nb = 2 * 34 * 7;
    uint8_t *a = malloc(na), *b = malloc(nb);
    T_CHECK(a && b);
    struct t_rng r = {42};
    for (size_t i = 0; i < na; i++)
        a[i] = (uint8_t)t_rng_next(&r);
    for (size_t i = 0; i < nb; i++)
        b[i] = (uint8_t)(i * 7);
    char p_whole[4200], p_rows[4200];
    tpath(p_whole, sizeof(p_whole), "rows-whole.gguf");
    tpath(p_rows, sizeof(p_rows), "rows-cb.gguf");

    struct mq_gguf_writer *w = mq_gguf_writer_new();
    T_CHECK(w && mq_gguf_writer_set_str(w, "general.name", "rows") == MQ_OK);
    T_CHECK(mq_gguf_writer_add_tensor(w, "a", MQ_DTYPE_F32, 2, ne_a, a) == MQ_OK);
    T_CHECK(mq_gguf_writer_add_tensor(w, "b", MQ_DTYPE_Q8_0, 2, ne_b, b) == MQ_OK);
    T_CHECK(mq_gguf_writer_write(w, p_whole) == MQ_OK);
    mq_gguf_writer_free(w);

    struct rows_ctx ca = {.src = a, .row_bytes = 1200 * sizeof(float)},
                    cb = {.src = b, .row_bytes = 68};
    w = mq_gguf_writer_new();
    T_CHECK(w && mq_gguf_writer_set_str(w, "general.name", "rows") == MQ_OK);
    T_CHECK(mq_gguf_writer_add_tensor_fn(w, "a", MQ_DTYPE_F32, 2, ne_a, rows_copy, &ca) == MQ_OK);
    T_CHECK(mq_gguf_writer_add_tensor_fn(w, "b", MQ_DTYPE_Q8_0, 2, ne_b, rows_copy, &cb) == MQ_OK);
    uint64_t predicted = 0;
    T_CHECK(mq_gguf_writer_file_size(w, &predicted) == MQ_OK);
    T_CHECK(mq_gguf_writer_write(w, p_rows) == MQ_OK);
    T_CHECK_MSG(ca.calls == 2 && cb.calls == 1 && ca.next_row == 1000 && cb.next_row == 7,
                "calls %d %d, rows %lld %lld", ca.calls, cb.calls, (long long)ca.next_row,
                (long long)cb.next_row);
    T_CHECK_MSG((long long)predicted == file_size(p_rows), "predicted %llu, wrote %lld",
                (unsigned long long)predicted, file_size(p_rows));
    size_t n1, n2;
    char *f1 = slurp(p_whole, &n1), *f2 = slurp(p_rows, &n2);
    T_CHECK(f1 && f2 && n1 == n2 && memcmp(f1, f2, n1) == 0);
    free(f1);
    free(f2);

    /* a callback failing in the second chunk: one error line, no file, no temporary */
    char p_fail[4200];
    tpath(p_fail, sizeof(p_fail), "rows-fail.gguf");
    ca = (struct rows_ctx){.src = a, .row_bytes = 1200 * sizeof(float), .fail_at = 2};
    cb = (struct rows_ctx){.src = b, .row_bytes = 68};
    char err[1024];
    struct t_capture cap;
    T_CHECK(t_capture_begin(&cap) == 0);
    int rc = mq_gguf_writer_write(w, p_fail);
    t_capture_end(&cap, err, sizeof(err));
    T_CHECK_MSG(rc == MQ_EIO && count_lines(err) == 1 && strstr(err, "callback fails"), "rc %d: %s",
                rc, err);
    T_CHECK(!exists(p_fail) && count_named(t_tmpdir(), "rows-fail.gguf.tmp") == 0);
    /* no data and no function are refused */
    T_CHECK(t_capture_begin(&cap) == 0);
    rc = mq_gguf_writer_add_tensor_fn(w, "c", MQ_DTYPE_F32, 2, ne_b, NULL, NULL);
    t_capture_end(&cap, err, sizeof(err));
    T_CHECK(rc == MQ_EINVAL && count_lines(err) == 1);
    mq_gguf_writer_free(w);
    free(a);
    free(b);
    return T_PASS;
}

/* ---- synthetic models ---------------------------------------------------------------- */

/* Every preset is consistent, and the big ones have their models' parameter counts
 * (embedding and output counted separately: the output is untied). */
static int test_synth_presets(void)
{
    size_t n;
    const struct mq_synth_config *p = mq_synth_presets(&n);
    T_CHECK(n >= 4);
    for (size_t i = 0; i < n; i++)
        T_CHECK_MSG(mq_synth_check(&p[i]) == MQ_OK, "preset %s", p[i].name);
    static const struct {
        const char *name;
        int64_t params, embd, blocks, ff, vocab, heads, kv;
    } want[] = {
        {"7B", 6738415616, 4096, 32, 11008, 32000, 32, 32}, /* Llama-2-7B's count */
        {"1b", 1498482688, 2048, 16, 8192, 128256, 32, 8},  /* 1.236 B tied + the output */
        {"8B", 8030261248, 4096, 32, 14336, 128256, 32, 8}, /* Llama-3.1-8B's count */
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct mq_synth_config c;
        T_CHECK(mq_synth_preset(want[i].name, &c) == MQ_OK);
        T_CHECK_MSG(mq_synth_n_params(&c) == want[i].params, "%s: %lld params", want[i].name,
                    (long long)mq_synth_n_params(&c));
        T_CHECK(c.n_embd == want[i].embd && c.n_layer == want[i].blocks && c.n_ff == want[i].ff &&
                c.n_vocab == want[i].vocab && c.n_head == want[i].heads &&
                c.n_head_kv == want[i].kv);
    }
    struct mq_synth_config c;
    T_CHECK(mq_synth_preset("12Q", &c) == MQ_ENOTFOUND);
    /* 7B f16 is about 13.5 GB: predicted without writing anything */
    T_CHECK(mq_synth_preset("7B", &c) == MQ_OK);
    uint64_t bytes = 0;
    T_CHECK(mq_synth_file_bytes(&c, &(struct mq_synth_options){.type = MQ_DTYPE_F16}, &bytes) ==
            MQ_OK);
    T_CHECK_MSG(bytes > 13470000000ULL && bytes < 13490000000ULL, "7B f16: %llu bytes",
                (unsigned long long)bytes);
    return T_PASS;
}

/* Writes preset tiny (with a given type and seed) to tmp/name. */
static int write_tiny(const char *name, enum mq_dtype type, uint64_t seed, int threads, char *path,
                      size_t size)
{
    struct mq_synth_config c;
    if (mq_synth_preset("tiny", &c) < 0)
        return -1;
    tpath(path, size, name);
    return mq_synth_write(
        &c, &(struct mq_synth_options){.type = type, .seed = seed, .threads = threads}, path);
}

/* The tiny preset loads as a llama model with the preset's shapes, says it is synthetic,
 * tokenizes one token per byte, and runs. */
static int test_synth_tiny(void)
{
    char path[4200];
    T_CHECK(write_tiny("tiny-f16.gguf", MQ_DTYPE_F16, 1, 2, path, sizeof(path)) == MQ_OK);
    struct mq_synth_config c;
    T_CHECK(mq_synth_preset("tiny", &c) == MQ_OK);
    uint64_t predicted = 0;
    T_CHECK(mq_synth_file_bytes(&c, &(struct mq_synth_options){.type = MQ_DTYPE_F16}, &predicted) ==
            MQ_OK);
    T_CHECK((long long)predicted == file_size(path));

    struct mq_model *m;
    T_CHECK(mq_model_load(path, &m) == MQ_OK);
    const struct mq_hparams *hp = &m->hp;
    T_CHECK(hp->n_vocab == c.n_vocab && hp->n_embd == c.n_embd && hp->n_layer == c.n_layer &&
            hp->n_ff == c.n_ff && hp->n_head == c.n_head && hp->n_head_kv == c.n_head_kv &&
            hp->n_ctx_train == c.n_ctx);
    T_CHECK(!hp->tied_output && m->n_layers == (int)(7 * c.n_layer + 2));
    T_CHECK(m->n_params == mq_synth_n_params(&c));
    int64_t kv = c.n_embd / c.n_head * c.n_head_kv;
    for (int i = 0; i < m->n_layers; i++) {
        const struct mq_layer *l = &m->layers[i];
        T_CHECK(l->src_type == MQ_DTYPE_F16);
        int64_t want_in = l->role == MQ_ROLE_FFN_DOWN ? c.n_ff : c.n_embd;
        int64_t want_out = l->role == MQ_ROLE_ATTN_K || l->role == MQ_ROLE_ATTN_V       ? kv
                           : l->role == MQ_ROLE_FFN_GATE || l->role == MQ_ROLE_FFN_UP   ? c.n_ff
                           : l->role == MQ_ROLE_TOKEN_EMBD || l->role == MQ_ROLE_OUTPUT ? c.n_vocab
                                                                                        : c.n_embd;
        T_CHECK_MSG(l->n_in == want_in && l->n_out == want_out, "%s is %lld x %lld", l->name,
                    (long long)l->n_in, (long long)l->n_out);
    }
    /* the marks */
    T_CHECK(mq_synth_is_marked(m->gguf));
    T_CHECK(strncmp(m->name, "synthetic ", 10) == 0);
    char desc[512];
    T_CHECK(mq_gguf_get_str(m->gguf, "general.description", desc, sizeof(desc)) == MQ_OK);
    T_CHECK(strstr(desc, "cost profiling only") != NULL);
    /* the vocabulary: a byte per token, BOS in front, bytes back out */
    const char text[] =
        "Hello, w\xc3\xb6rld\n\x01\x7f"; /* valid UTF-8: invalid bytes become U+FFFD */
    int32_t *ids = NULL;
    size_t n = 0;
    T_CHECK(mq_vocab_tokenize(m->vocab, text, sizeof(text) - 1, mq_vocab_add_bos(m->vocab), &ids,
                              &n) == MQ_OK);
    T_CHECK_MSG(n == sizeof(text) && ids[0] == 256, "%zu tokens, first %d", n, n ? ids[0] : -1);
    for (size_t i = 1; i < n; i++)
        T_CHECK(ids[i] == (unsigned char)text[i - 1]);
    char *back = NULL;
    size_t back_len = 0;
    T_CHECK(mq_vocab_detokenize(m->vocab, ids + 1, n - 1, &back, &back_len) == MQ_OK);
    T_CHECK(back_len == sizeof(text) - 1 && memcmp(back, text, back_len) == 0);
    free(back);
    T_CHECK(mq_vocab_eos(m->vocab) == 257);
    /* weights: mean 0, stddev 0.02 (f16 keeps that to 3 digits) */
    const struct mq_layer *l = &m->layers[m->layer_output];
    int64_t nw = l->n_in * l->n_out;
    float *wf = malloc((size_t)nw * sizeof(float));
    T_CHECK(wf);
    mq_dtype_get(l->src_type)->to_f32(l->src_data, wf, nw);
    double s = 0, s2 = 0, amax = 0;
    for (int64_t i = 0; i < nw; i++) {
        s += wf[i];
        s2 += (double)wf[i] * wf[i];
        amax = fmax(amax, fabs(wf[i]));
    }
    free(wf);
    double mean = s / (double)nw, sd = sqrt(s2 / (double)nw - mean * mean);
    T_CHECK_MSG(fabs(mean) < 0.001 && fabs(sd - 0.02) < 0.0005 && amax < 0.02 * 4.5 &&
                    amax > 0.02 * 3.5,
                "mean %g sd %g max %g", mean, sd, amax);
    /* norms are one */
    const float *norm = m->output_norm->data;
    T_CHECK(m->output_norm->type == MQ_DTYPE_F32 && norm[0] == 1.0f && norm[c.n_embd - 1] == 1.0f);
    /* and it runs: finite logits */
    struct be_backend *be;
    struct mq_plan *plan;
    struct mq_llama *ll;
    T_CHECK(be_open("ref", NULL, &be) == MQ_OK);
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_Q4_0, &plan) == MQ_OK);
    T_CHECK(mq_llama_new(m, plan, be, &(struct mq_llama_config){.n_ctx = 8}, &ll) == MQ_OK);
    float *logits = malloc((size_t)(3 * c.n_vocab) * sizeof(float));
    T_CHECK(logits && mq_llama_decode(ll, ids, 3, 0, logits) == MQ_OK);
    for (int64_t i = 0; i < 3 * c.n_vocab; i++)
        T_CHECK(isfinite(logits[i]));
    free(logits);
    free(ids);
    mq_llama_free(ll);
    mq_plan_free(plan);
    be_close(be);
    mq_model_free(m);
    return T_PASS;
}

/* Each weight type is written as asked; the same seed gives the same bytes whatever the
 * thread count, another seed other bytes. */
static int test_synth_types_and_seeds(void)
{
    static const enum mq_dtype types[] = {MQ_DTYPE_F32, MQ_DTYPE_BF16, MQ_DTYPE_Q8_0,
                                          MQ_DTYPE_Q4_0};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char name[64], path[4200];
        snprintf(name, sizeof(name), "tiny-%s.gguf", mq_dtype_name(types[i]));
        T_CHECK(write_tiny(name, types[i], 7, 1, path, sizeof(path)) == MQ_OK);
        struct mq_model *m;
        T_CHECK(mq_model_load(path, &m) == MQ_OK);
        bool mixed = true;
        T_CHECK(mq_model_source_type(m, &mixed) == types[i] && !mixed);
        uint32_t ft = 99;
        T_CHECK(mq_gguf_get_u32(m->gguf, "general.file_type", &ft) == MQ_OK);
        T_CHECK(ft == (types[i] == MQ_DTYPE_F32    ? 0u
                       : types[i] == MQ_DTYPE_BF16 ? 32u
                       : types[i] == MQ_DTYPE_Q8_0 ? 7u
                                                   : 2u));
        mq_model_free(m);
    }
    char p1[4200], p2[4200], p3[4200];
    T_CHECK(write_tiny("seed-a.gguf", MQ_DTYPE_Q4_0, 7, 1, p1, sizeof(p1)) == MQ_OK);
    T_CHECK(write_tiny("seed-b.gguf", MQ_DTYPE_Q4_0, 7, 3, p2, sizeof(p2)) == MQ_OK);
    T_CHECK(write_tiny("seed-c.gguf", MQ_DTYPE_Q4_0, 8, 1, p3, sizeof(p3)) == MQ_OK);
    size_t n1, n2, n3;
    char *a = slurp(p1, &n1), *b = slurp(p2, &n2), *c = slurp(p3, &n3);
    T_CHECK(a && b && c && n1 == n2 && n1 == n3);
    T_CHECK(memcmp(a, b, n1) == 0);
    T_CHECK(memcmp(a, c, n1) != 0);
    free(a);
    free(b);
    free(c);
    return T_PASS;
}

/* A custom shape: GQA with 64-wide heads, a bigger vocabulary and rows of q8_0 blocks
 * spread over several writer chunks. */
static int test_synth_custom(void)
{
    struct mq_synth_config c = {.name = "custom",
                                .like = "a test shape",
                                .n_vocab = 3000,
                                .n_ctx = 64,
                                .n_embd = 256,
                                .n_layer = 1,
                                .n_ff = 704,
                                .n_head = 4,
                                .n_head_kv = 1,
                                .rope_theta = 10000.0f,
                                .norm_eps = 1e-6f};
    char path[4200];
    tpath(path, sizeof(path), "custom.gguf");
    T_CHECK(mq_synth_write(&c, &(struct mq_synth_options){.type = MQ_DTYPE_Q8_0, .seed = 3},
                           path) == MQ_OK);
    struct mq_model *m;
    T_CHECK(mq_model_load(path, &m) == MQ_OK);
    T_CHECK(m->hp.head_dim == 64 && m->hp.n_head_kv == 1 && m->hp.n_vocab == 3000 &&
            m->hp.norm_eps == 1e-6f);
    int k = mq_model_find_layer(m, "blk.0.attn_k.weight");
    T_CHECK(k >= 0 && m->layers[k].n_out == 64 && m->layers[k].n_in == 256);
    T_CHECK(mq_vocab_size(m->vocab) == 3000);
    /* filler tokens exist but text never becomes one */
    char piece[64];
    size_t len = 0;
    T_CHECK(mq_vocab_token_piece(m->vocab, 2999, piece, sizeof(piece), &len) == MQ_OK);
    int32_t *ids = NULL;
    size_t n = 0;
    T_CHECK(mq_vocab_tokenize(m->vocab, "<filler_2999>", 13, false, &ids, &n) == MQ_OK);
    T_CHECK(n == 13 && ids[0] == '<');
    free(ids);
    mq_model_free(m);
    return T_PASS;
}

/* Refusals: a file bigger than the disk budget (before writing anything), bad shapes,
 * a type mixq does not write; each with one error line. */
static int test_synth_refusals(void)
{
    struct mq_synth_config c;
    T_CHECK(mq_synth_preset("tiny", &c) == MQ_OK);
    char path[4200], err[2048];
    tpath(path, sizeof(path), "too-big.gguf");
    struct t_capture cap;
    T_CHECK(t_capture_begin(&cap) == 0);
    int rc = mq_synth_write(
        &c, &(struct mq_synth_options){.type = MQ_DTYPE_F16, .disk_budget = 100000}, path);
    t_capture_end(&cap, err, sizeof(err));
    T_CHECK_MSG(rc == MQ_EIO && count_lines(err) == 1 && strstr(err, "needs") &&
                    strstr(err, "q4_0"),
                "rc %d: %s", rc, err);
    T_CHECK(!exists(path) && count_named(t_tmpdir(), "too-big") == 0);
    /* the same within the budget is written */
    T_CHECK(mq_synth_write(&c,
                           &(struct mq_synth_options){.type = MQ_DTYPE_Q4_0, .disk_budget = 100000},
                           path) == MQ_OK);
    T_CHECK(file_size(path) > 0 && file_size(path) <= 100000);

    struct {
        const char *what;
        struct mq_synth_config c;
        enum mq_dtype type;
    } bad[] = {
        {"embedding not a multiple of 32", c, MQ_DTYPE_F16},
        {"kv heads do not divide heads", c, MQ_DTYPE_F16},
        {"vocabulary too small", c, MQ_DTYPE_F16},
        {"no blocks", c, MQ_DTYPE_F16},
        {"rows not whole blocks (64-wide rows, q4_k)", c, MQ_DTYPE_Q4_K},
        {"not a weight type", c, MQ_DTYPE_I32},
    };
    bad[0].c.n_embd = 100;
    bad[1].c.n_head_kv = 3;
    bad[2].c.n_vocab = 258;
    bad[3].c.n_layer = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char p2[4200];
        tpath(p2, sizeof(p2), "bad.gguf");
        T_CHECK(t_capture_begin(&cap) == 0);
        rc = mq_synth_write(&bad[i].c, &(struct mq_synth_options){.type = bad[i].type}, p2);
        t_capture_end(&cap, err, sizeof(err));
        T_CHECK_MSG(rc == MQ_EINVAL && count_lines(err) == 1, "%s: rc %d: %s", bad[i].what, rc,
                    err);
        T_CHECK(!exists(p2));
    }
    /* a folder that does not exist */
    T_CHECK(t_capture_begin(&cap) == 0);
    rc = mq_synth_write(&c, &(struct mq_synth_options){.type = MQ_DTYPE_F16},
                        "/nonexistent-mixq/x.gguf");
    t_capture_end(&cap, err, sizeof(err));
    T_CHECK_MSG(rc == MQ_EIO && count_lines(err) == 1, "rc %d: %s", rc, err);
    return T_PASS;
}

/* ---- plots --------------------------------------------------------------------------- */

static bool have_gnuplot(void)
{
    char buf[4096];
    return rpt_gnuplot_find(buf, sizeof(buf)) == MQ_OK;
}

/* With gnuplot pointed elsewhere: the data and script are written, and one line says
 * gnuplot is missing. */
static int plot_without_gnuplot(const char *dir, const struct rpt_plot *p, char *err, size_t size)
{
    const char *old = getenv("MIXQ_GNUPLOT");
    char saved[4096] = "";
    if (old)
        snprintf(saved, sizeof(saved), "%s", old);
    setenv("MIXQ_GNUPLOT", "/nonexistent/gnuplot", 1);
    struct t_capture cap;
    if (t_capture_begin(&cap) != 0)
        return MQ_EINTERNAL;
    int rc = rpt_plot_write(dir, p);
    t_capture_end(&cap, err, size);
    if (old)
        setenv("MIXQ_GNUPLOT", saved, 1);
    else
        unsetenv("MIXQ_GNUPLOT");
    return rc;
}

static const double demo_x[] = {1, 2, 3, 4, 5, 6};
static const double demo_y1[] = {10, 40, NAN, 160, 320, 640};
static const double demo_y2[] = {5, 0, 20, 30, 35, 37}; /* 0 is a gap on the log axis */
static const char *const demo_labels[] = {"a", "b", "c", "d \"quoted\"", NULL, "f"};

static void demo_plot(struct rpt_plot *p, struct rpt_plot_series s[2], struct rpt_plot_ref r[2],
                      struct rpt_plot_tic t[2])
{
    s[0] = (struct rpt_plot_series){.title = "series_one (f16)",
                                    .style = RPT_PLOT_LINESPOINTS,
                                    .n = 6,
                                    .x = demo_x,
                                    .y = demo_y1,
                                    .labels = demo_labels,
                                    .color = "#1f77b4"};
    s[1] = (struct rpt_plot_series){.title = "series two",
                                    .style = RPT_PLOT_STEPS,
                                    .n = 6,
                                    .x = demo_x,
                                    .y = demo_y2,
                                    .dashed = true};
    r[0] = (struct rpt_plot_ref){.axis = RPT_AXIS_Y, .value = 2000, .label = "ceiling 2000 GOP/s"};
    r[1] = (struct rpt_plot_ref){
        .axis = RPT_AXIS_X, .value = 3.5, .label = "budget", .color = "#d62728"};
    t[0] = (struct rpt_plot_tic){.at = 1, .label = "first"};
    t[1] = (struct rpt_plot_tic){.at = 6, .label = "last_one"};
    *p = (struct rpt_plot){.name = "demo",
                           .title = "Demo plot title",
                           .subtitle = "a subtitle",
                           .xlabel = "layer index (count)",
                           .ylabel = "time per run (us)",
                           .ylog = true,
                           .series = s,
                           .n_series = 2,
                           .refs = r,
                           .n_refs = 2,
                           .xtics = t,
                           .n_xtics = 2,
                           .key = RPT_KEY_TOP_LEFT};
}

/* The data and script files: blocks per series, gaps, labels, the script reading the data
 * by relative path; and the one-line error when gnuplot is missing. */
static int test_plot_files(void)
{
    char dir[4200], path[4300], err[2048];
    T_CHECK(make_dir(dir, sizeof(dir), "plot-files") == 0);
    struct rpt_plot p;
    struct rpt_plot_series s[2];
    struct rpt_plot_ref r[2];
    struct rpt_plot_tic t[2];
    demo_plot(&p, s, r, t);
    int rc = plot_without_gnuplot(dir, &p, err, sizeof(err));
    T_CHECK_MSG(rc == MQ_ENOTFOUND && count_lines(err) == 1 && strstr(err, "MIXQ_GNUPLOT"),
                "rc %d: %s", rc, err);
    snprintf(path, sizeof(path), "%s/demo.dat", dir);
    char *dat = slurp(path, NULL);
    snprintf(path, sizeof(path), "%s/demo.gp", dir);
    char *gp = slurp(path, NULL);
    T_CHECK(dat && gp);
    /* two blocks; the NaN and the 0 (log axis) are single blank lines, never two */
    T_CHECK_MSG(strstr(dat, "2 40 \"b\"\n\n4 160 \"d 'quoted'\"\n5 320 \"\"\n") != NULL, "%s", dat);
    T_CHECK(strstr(dat, "1 5 \"\"\n\n3 20 \"\"\n") != NULL);
    T_CHECK(strstr(dat, "\n\n\n# series 1: series two\n") != NULL);
    T_CHECK(strstr(gp, "data = \"demo.dat\"") && !strstr(gp, dir));
    T_CHECK(strstr(gp, "set title \"Demo plot title\".\"\\n\".\"a subtitle\"") != NULL);
    T_CHECK(strstr(gp, "set logscale y") && !strstr(gp, "set logscale x"));
    T_CHECK(strstr(gp, "noenhanced") && strstr(gp, "pngcairo") && strstr(gp, "set terminal svg"));
    T_CHECK(strstr(gp, "\"budget\" at first 3.5") && strstr(gp, "with labels"));
    /* the y range is widened to show the 2000 ceiling */
    T_CHECK(strstr(gp, "set yrange [") != NULL);
    free(dat);
    free(gp);
    T_CHECK(count_named(dir, ".tmp") == 0);

    /* malformed plots are refused before any file is written */
    struct {
        const char *what;
        struct rpt_plot p;
    } bad[] = {
        {"name with a slash", p}, {"no title", p}, {"bad colour", p}, {"nothing to plot", p}};
    struct rpt_plot_series s_bad[2] = {s[0], s[1]};
    static const double nan6[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    bad[0].p.name = "../escape";
    bad[1].p.title = NULL;
    s_bad[0].color = "red; system('x')";
    bad[2].p.series = s_bad;
    struct rpt_plot_series s_empty[1] = {{.title = "none", .n = 6, .x = demo_x, .y = nan6}};
    bad[3].p.series = s_empty;
    bad[3].p.n_series = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct t_capture cap;
        T_CHECK(t_capture_begin(&cap) == 0);
        rc = rpt_plot_write(dir, &bad[i].p);
        t_capture_end(&cap, err, sizeof(err));
        T_CHECK_MSG(rc == MQ_EINVAL && count_lines(err) == 1, "%s: rc %d: %s", bad[i].what, rc,
                    err);
    }
    return T_PASS;
}

/* gnuplot draws PNG and SVG with the title and axis labels; no temporary file is left. */
static int test_plot_render(void)
{
    T_SKIP_IF(!have_gnuplot(),
              "gnuplot is not installed (Debian: gnuplot-nox; scripts/install-deps)");
    char dir[4200], path[4300];
    T_CHECK(make_dir(dir, sizeof(dir), "plot-render") == 0);
    struct rpt_plot p;
    struct rpt_plot_series s[2];
    struct rpt_plot_ref r[2];
    struct rpt_plot_tic t[2];
    demo_plot(&p, s, r, t);
    T_CHECK(rpt_plot_write(dir, &p) == MQ_OK);
    static const char *const ext[] = {"dat", "gp", "png", "svg"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/demo.%s", dir, ext[i]);
        T_CHECK_MSG(file_size(path) > 0, "%s", path);
    }
    snprintf(path, sizeof(path), "%s/demo.png", dir);
    char *png = slurp(path, NULL);
    T_CHECK(png && memcmp(png, "\x89PNG", 4) == 0);
    free(png);
    snprintf(path, sizeof(path), "%s/demo.svg", dir);
    char *svg = slurp(path, NULL);
    T_CHECK(svg && strstr(svg, "<svg"));
    static const char *const texts[] = {
        "Demo plot title",  "a subtitle", "layer index (count)", "time per run (us)",
        "series_one (f16)", "series two", "ceiling 2000 GOP/s",  "last_one"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        T_CHECK_MSG(strstr(svg, texts[i]) != NULL, "the SVG lacks '%s'", texts[i]);
    free(svg);
    T_CHECK(count_named(dir, ".tmp") == 0 && count_named(dir, "demo") == 4);
    return T_PASS;
}

/* A script gnuplot rejects: one error line with gnuplot's reason, no image left. */
static int test_plot_gnuplot_error(void)
{
    T_SKIP_IF(!have_gnuplot(),
              "gnuplot is not installed (Debian: gnuplot-nox; scripts/install-deps)");
    char dir[4200], path[4300], err[2048];
    T_CHECK(make_dir(dir, sizeof(dir), "plot-error") == 0);
    struct rpt_plot p;
    struct rpt_plot_series s[2];
    struct rpt_plot_ref r[2];
    struct rpt_plot_tic t[2];
    demo_plot(&p, s, r, t);
    p.extra = "set frobnicate 3";
    struct t_capture cap;
    T_CHECK(t_capture_begin(&cap) == 0);
    int rc = rpt_plot_write(dir, &p);
    t_capture_end(&cap, err, sizeof(err));
    T_CHECK_MSG(rc == MQ_EIO && count_lines(err) == 1 &&
                    strstr(err, "mixq: error: gnuplot failed on '") &&
                    strstr(err, "demo.gp': line "),
                "rc %d: %s", rc, err);
    snprintf(path, sizeof(path), "%s/demo.png", dir);
    T_CHECK(!exists(path));
    T_CHECK(count_named(dir, ".tmp") == 0);
    return T_PASS;
}

/* A hand-made profile of a two-block model: f16, q8_0 and q4_0 measured for every layer
 * but the embedding lookup, times those of a 20 GB/s memory. */
static int make_profile(struct prof_profile **out)
{
    static const struct {
        const char *name;
        int64_t K, N;
    } layers[] = {
        {"token_embd.weight", 256, 1000},       {"blk.0.attn_q.weight", 256, 256},
        {"blk.0.attn_k.weight", 256, 64},       {"blk.0.attn_v.weight", 256, 64},
        {"blk.0.attn_output.weight", 256, 256}, {"blk.0.ffn_gate.weight", 256, 704},
        {"blk.0.ffn_up.weight", 256, 704},      {"blk.0.ffn_down.weight", 704, 256},
        {"output.weight", 256, 1000},
    };
    int L = (int)(sizeof(layers) / sizeof(layers[0]));
    struct prof_profile *p;
    if (prof_profile_alloc(L, &p) < 0)
        return -1;
    snprintf(p->model_name, sizeof(p->model_name), "hand-made test model");
    snprintf(p->target.backend, sizeof(p->target.backend), "cpu");
    snprintf(p->target.cpu, sizeof(p->target.cpu), "Test CPU");
    snprintf(p->target.fma_isa, sizeof(p->target.fma_isa), "avx2");
    p->target.threads = 2;
    p->target.dram_read_gbs = 20;
    p->target.fma_gflops = 150;
    p->target.int8_gops = 600;
    mq_workload_parse("decode:512", &p->workload);
    p->formats = 1u << MQ_DTYPE_F16 | 1u << MQ_DTYPE_Q8_0 | 1u << MQ_DTYPE_Q4_0;
    for (int l = 0; l < L; l++) {
        snprintf(p->layer_names[l], sizeof(p->layer_names[l]), "%s", layers[l].name);
        p->layer_in[l] = layers[l].K;
        p->layer_out[l] = layers[l].N;
        static const enum mq_dtype f[] = {MQ_DTYPE_F16, MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_0};
        for (int k = 0; k < 3; k++) {
            double bytes =
                (double)layers[l].K * (double)layers[l].N * mq_dtype_bits_per_weight(f[k]) / 8;
            p->layer_ns[l * MQ_DTYPE_COUNT + f[k]] =
                l == 0 ? 0.0 : bytes / 20.0 + 500.0; /* 20 B/ns + 0.5 us */
        }
    }
    *out = p;
    return 0;
}

/* The profile plots: data where they should be (intensity 2 ops per f16 weight = 1 op per
 * byte in decode; the lookup left out), drawn when gnuplot is there. */
static int test_plot_profile(void)
{
    struct prof_profile *p;
    T_CHECK(make_profile(&p) == 0);
    char dir[4200], path[4300], err[2048];
    T_CHECK(make_dir(dir, sizeof(dir), "plot-profile") == 0);
    /* files first, gnuplot or not */
    struct t_capture cap;
    setenv("MIXQ_GNUPLOT", "/nonexistent/gnuplot", 1);
    T_CHECK(t_capture_begin(&cap) == 0);
    int rc1 = rpt_plot_roofline(dir, p), rc2 = rpt_plot_layer_times(dir, p);
    t_capture_end(&cap, err, sizeof(err));
    unsetenv("MIXQ_GNUPLOT");
    T_CHECK_MSG(rc1 == MQ_ENOTFOUND && rc2 == MQ_ENOTFOUND && count_lines(err) == 2, "%d %d: %s",
                rc1, rc2, err);
    snprintf(path, sizeof(path), "%s/roofline.dat", dir);
    char *dat = slurp(path, NULL);
    T_CHECK(dat);
    /* attn_q f16: 2*256*256 ops over 131072 bytes in 131072/20 + 500 ns */
    char want[128];
    snprintf(want, sizeof(want), "\n1 %.9g \"\"\n", 2.0 * 256 * 256 / (131072 / 20.0 + 500));
    T_CHECK_MSG(strstr(dat, want) != NULL, "no '%s' in %s", want + 1, dat);
    T_CHECK(
        strstr(dat, "# series 0: f16 (8 layers)") && strstr(dat, "# series 1: q8_0 (8 layers)") &&
        strstr(dat, "# series 2: q4_0 (8 layers)") && strstr(dat, "DRAM read bandwidth 20 GB/s"));
    snprintf(want, sizeof(want), "\n%.9g ", 2.0 / (34.0 / 32)); /* q8_0: 2 ops per 1.0625 bytes */
    T_CHECK(strstr(dat, want) != NULL);
    free(dat);
    snprintf(path, sizeof(path), "%s/roofline.gp", dir);
    char *gp = slurp(path, NULL);
    T_CHECK(gp && strstr(gp, "f32 FMA peak 150 GFLOP/s (avx2)") &&
            strstr(gp, "int8 dot-product peak 600 GOP/s"));
    T_CHECK(strstr(gp, "set logscale x") && strstr(gp, "set logscale y"));
    free(gp);
    snprintf(path, sizeof(path), "%s/layer-times.dat", dir);
    dat = slurp(path, NULL);
    T_CHECK(dat && strstr(dat, "# series 0: f16 (8 layers") &&
            !strstr(dat, "\n0 ")); /* no lookup point */
    free(dat);
    snprintf(path, sizeof(path), "%s/layer-times.gp", dir);
    gp = slurp(path, NULL);
    T_CHECK(gp && strstr(gp, "\"blk.0.ffn_down\" 7") && strstr(gp, "time per workload run (us)"));
    free(gp);
    /* nothing measured: an error, not an empty plot */
    struct prof_profile *empty;
    T_CHECK(prof_profile_alloc(3, &empty) == MQ_OK);
    T_CHECK(t_capture_begin(&cap) == 0);
    rc1 = rpt_plot_roofline(dir, empty);
    t_capture_end(&cap, err, sizeof(err));
    T_CHECK(rc1 == MQ_EINVAL && count_lines(err) == 1);
    prof_profile_free(empty);

    if (have_gnuplot()) {
        T_CHECK(rpt_plot_roofline(dir, p) == MQ_OK && rpt_plot_layer_times(dir, p) == MQ_OK);
        snprintf(path, sizeof(path), "%s/roofline.svg", dir);
        char *svg = slurp(path, NULL);
        T_CHECK(svg && strstr(svg, "Roofline of every layer and format: hand-made test model") &&
                strstr(svg, "arithmetic intensity (ops per weight byte)") &&
                strstr(svg, "achieved throughput (GOP/s)"));
        free(svg);
        snprintf(path, sizeof(path), "%s/layer-times.png", dir);
        T_CHECK(file_size(path) > 1000);
    }
    prof_profile_free(p);
    T_SKIP_IF(!have_gnuplot(), "files checked; drawing needs gnuplot (Debian: gnuplot-nox)");
    return T_PASS;
}

const struct mq_test synth_tests[] = {
    {"synth/gguf-rows", test_gguf_rows},
    {"synth/presets", test_synth_presets},
    {"synth/tiny", test_synth_tiny},
    {"synth/types-and-seeds", test_synth_types_and_seeds},
    {"synth/custom", test_synth_custom},
    {"synth/refusals", test_synth_refusals},
    {"plot/files", test_plot_files},
    {"plot/render", test_plot_render},
    {"plot/gnuplot-error", test_plot_gnuplot_error},
    {"plot/profile", test_plot_profile},
    {NULL, NULL},
};
