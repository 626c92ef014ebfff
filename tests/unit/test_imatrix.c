/* tests/unit/test_imatrix.c - importance matrices (model/imatrix.h): the statistic
 * mq_imatrix_compute collects against a direct computation from the forward pass's
 * captured activations, GGUF write/read round trips, legacy .dat files written by hand,
 * malformed files (one error line each, never a crash), and applying one to a model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "llm/llama.h"
#include "model/imatrix.h"
#include "model/model.h"
#include "model/plan.h"
#include "tests/unit/test.h"
#include "tokenizer/tokenizer.h"

#define TINY "examples/tinyllm/tinyllm.gguf"
#define TEXT "examples/data/kjv-eval.txt"

/* ---- stderr capture: errors must be exactly one "mixq: error: " line ---- */

static bool one_error_line(const char *s)
{
    const char *nl = strchr(s, '\n');
    return strncmp(s, "mixq: error: ", 13) == 0 && nl && nl[1] == '\0';
}

/* ---- the statistic against a direct computation ---- */

struct direct {
    const struct mq_model *m;
    double **sums;  /* [n_layers][n_in], NULL for layers never handed */
    int64_t *rows;  /* [n_layers] */
    int64_t calls;
};

static int direct_capture(void *arg, int layer, const float *x, int64_t K, int64_t M)
{
    struct direct *d = arg;
    if (!d->sums[layer] && !(d->sums[layer] = calloc((size_t)K, sizeof(double))))
        return MQ_ENOMEM;
    for (int64_t t = 0; t < M; t++)
        for (int64_t k = 0; k < K; k++) {
            double v = x[t * K + k];
            d->sums[layer][k] += v * v;
        }
    d->rows[layer] += M;
    d->calls++;
    return MQ_OK;
}

/* Runs n_chunks chunks of n_ctx tokens of TEXT through the f32 model, as llama-imatrix
 * cuts them (trailing newline dropped, BOS/EOS added by the vocabulary, BOS in front of
 * every chunk), with every matmul input captured. */
static int run_direct(const struct mq_model *m, struct be_backend *be, int64_t n_ctx, int64_t n_chunks,
                      struct direct *d)
{
    static char buf[1 << 20];
    FILE *f = fopen(TEXT, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf), f);
    bool whole = feof(f);
    fclose(f);
    if (!whole)
        return -1; /* the test text is smaller than the buffer */
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    int32_t *tok = NULL;
    size_t n_tok = 0;
    struct mq_plan *p = NULL;
    struct mq_llama *l = NULL;
    int rc = mq_vocab_tokenize_special(m->vocab, buf, n, true, &tok, &n_tok);
    if (rc == MQ_OK && (int64_t)n_tok < n_chunks * n_ctx)
        rc = -1;
    if (rc == MQ_OK)
        rc = mq_plan_uniform(m, MQ_DTYPE_F32, &p);
    if (rc == MQ_OK)
        rc = mq_llama_new(m, p, be, &(struct mq_llama_config){.n_ctx = n_ctx, .n_batch = n_ctx}, &l);
    if (rc == MQ_OK)
        mq_llama_set_capture(l, direct_capture, d);
    for (int64_t c = 0; c < n_chunks && rc == MQ_OK; c++) {
        int32_t *chunk = tok + c * n_ctx;
        if (mq_vocab_add_bos(m->vocab))
            chunk[0] = mq_vocab_bos(m->vocab);
        rc = mq_llama_decode(l, chunk, n_ctx, 0, NULL);
    }
    mq_llama_free(l);
    mq_plan_free(p);
    free(tok);
    return rc;
}

static void direct_free(struct direct *d, int n_layers)
{
    for (int i = 0; i < n_layers; i++)
        free(d->sums[i]);
    free(d->sums);
    free(d->rows);
}

static int test_compute_matches_capture(void)
{
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    T_CHECK(be_open("ref", NULL, &be) == MQ_OK);
    const int64_t n_ctx = 64, n_chunks = 3;
    int rc = T_PASS;
    struct mq_imatrix *im = NULL, *im_out = NULL;
    struct direct d = {.m = m, .sums = calloc((size_t)m->n_layers, sizeof(double *)),
                       .rows = calloc((size_t)m->n_layers, sizeof(int64_t))};
    T_CHECK(d.sums && d.rows);
    T_CHECK(run_direct(m, be, n_ctx, n_chunks, &d) == MQ_OK);
    struct mq_imatrix_config cfg = {.text = TEXT, .n_ctx = n_ctx, .max_chunks = n_chunks};
    T_CHECK(mq_imatrix_compute(m, be, &cfg, &im) == MQ_OK);
    cfg.process_output = true;
    T_CHECK(mq_imatrix_compute(m, be, &cfg, &im_out) == MQ_OK);

    /* entries: every blk.* layer (42 of tinyllm's 44: not token_embd, not output.weight),
     * sorted by name; with process_output also output.weight (tinyllm's is untied) */
    int n_blk = 0;
    for (int i = 0; i < m->n_layers; i++)
        n_blk += strncmp(m->layers[i].name, "blk.", 4) == 0;
    T_CHECK_MSG(im->n_entries == n_blk && n_blk == 42, "%d entries, %d blk layers", im->n_entries, n_blk);
    T_CHECK(im_out->n_entries == n_blk + 1 && mq_imatrix_find(im_out, "output.weight") &&
            !mq_imatrix_find(im, "output.weight") && !mq_imatrix_find(im_out, "token_embd.weight"));
    for (int e = 1; e < im->n_entries; e++)
        T_CHECK(strcmp(im->entries[e - 1].name, im->entries[e].name) < 0);
    T_CHECK(im->chunk_count == n_chunks && im->chunk_size == n_ctx && !im->legacy);
    T_CHECK(im->n_datasets == 1 && strcmp(im->datasets[0], TEXT) == 0);

    /* the statistic: sums of squares of exactly what the matmuls were given */
    double worst = 0.0;
    for (int pass = 0; pass < 2; pass++) {
        const struct mq_imatrix *x = pass ? im_out : im;
        for (int e = 0; e < x->n_entries; e++) {
            const struct mq_imatrix_entry *en = &x->entries[e];
            int li = mq_model_find_layer(m, en->name);
            T_CHECK(li >= 0 && d.sums[li]);
            T_CHECK(en->n_mat == 1 && en->n_in == m->layers[li].n_in);
            T_CHECK_MSG(en->counts[0] == (float)(n_chunks * n_ctx) && d.rows[li] == n_chunks * n_ctx,
                        "'%s': count %g, captured rows %lld", en->name, (double)en->counts[0], (long long)d.rows[li]);
            for (int64_t k = 0; k < en->n_in; k++) {
                double want = d.sums[li][k], got = en->sums[k];
                T_CHECK(want > 0.0);
                double r = fabs(got - want) / want;
                worst = r > worst ? r : worst;
            }
        }
    }
    /* both sum in double in the same order; only the final rounding to f32 remains */
    T_CHECK_MSG(worst <= 6e-8, "max relative difference %g", worst);
    /* one capture per matmul per chunk: 7 per block, and the output */
    T_CHECK_MSG(d.calls == n_chunks * (7 * m->hp.n_layer + 1), "%lld captures", (long long)d.calls);
    direct_free(&d, m->n_layers);
    mq_imatrix_free(im);
    mq_imatrix_free(im_out);
    be_close(be);
    mq_model_free(m);
    return rc;
}

/* Bad configurations are one-line errors, and nothing is returned. */
static int test_compute_errors(void)
{
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    T_CHECK(be_open("ref", NULL, &be) == MQ_OK);
    char path[4200], err[1024];
    snprintf(path, sizeof(path), "%s/short.txt", t_tmpdir());
    FILE *f = fopen(path, "wb");
    T_CHECK(f && fputs("In the beginning\n", f) >= 0 && fclose(f) == 0);
    static const struct {
        const char *text;
        int64_t ctx;
        int want;
    } cases[] = {
        {NULL, 64, MQ_EINVAL},                             /* no text */
        {"examples/data/no-such-file.txt", 64, MQ_EIO},    /* missing */
        {"examples/data", 64, MQ_EIO},                     /* a folder */
        {"", 64, MQ_EINVAL},                               /* short.txt: 2 x 64 tokens wanted */
        {TEXT, 8, MQ_EINVAL},                              /* chunks llama-imatrix ignores */
        {TEXT, 1 << 20, MQ_EINVAL},                        /* text shorter than two chunks */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mq_imatrix dummy, *im = &dummy; /* must be reset to NULL */
        struct mq_imatrix_config cfg = {.text = cases[i].text && !*cases[i].text ? path : cases[i].text,
                                        .n_ctx = cases[i].ctx};
        struct t_capture c;
        T_CHECK(t_capture_begin(&c) == 0);
        int rc = mq_imatrix_compute(m, be, &cfg, &im);
        t_capture_end(&c, err, sizeof(err));
        T_CHECK_MSG(rc == cases[i].want && im == NULL, "case %zu: rc %d, want %d", i, rc, cases[i].want);
        T_CHECK_MSG(one_error_line(err), "case %zu printed '%s'", i, err);
    }
    be_close(be);
    mq_model_free(m);
    return T_PASS;
}

/* ---- files ---- */

static bool same_imatrix(const struct mq_imatrix *a, const struct mq_imatrix *b)
{
    if (a->n_entries != b->n_entries || a->n_datasets != b->n_datasets || a->chunk_count != b->chunk_count ||
        a->chunk_size != b->chunk_size)
        return false;
    for (int i = 0; i < a->n_datasets; i++)
        if (strcmp(a->datasets[i], b->datasets[i]))
            return false;
    for (int i = 0; i < a->n_entries; i++) {
        const struct mq_imatrix_entry *x = &a->entries[i], *y = &b->entries[i];
        if (strcmp(x->name, y->name) || x->n_in != y->n_in || x->n_mat != y->n_mat ||
            memcmp(x->sums, y->sums, (size_t)(x->n_in * x->n_mat) * sizeof(float)) ||
            memcmp(x->counts, y->counts, (size_t)x->n_mat * sizeof(float)))
            return false;
    }
    return true;
}

/* A small imatrix built by hand: a dense entry and one with 3 experts. */
static struct mq_imatrix *hand_imatrix(void)
{
    struct mq_imatrix *im = calloc(1, sizeof(*im));
    if (!im || !(im->entries = calloc(2, sizeof(*im->entries))) || !(im->datasets = calloc(2, sizeof(char *))))
        return im;
    im->n_entries = 2;
    im->chunk_count = 7;
    im->chunk_size = 96;
    im->datasets[0] = strdup("calib one.txt");
    im->datasets[1] = strdup("two");
    im->n_datasets = 2;
    struct t_rng r = {42};
    for (int e = 0; e < 2; e++) {
        struct mq_imatrix_entry *x = &im->entries[e];
        snprintf(x->name, sizeof(x->name), e ? "blk.0.ffn_up_exps.weight" : "blk.0.attn_q.weight");
        x->n_in = e ? 32 : 48;
        x->n_mat = e ? 3 : 1;
        x->sums = malloc((size_t)(x->n_in * x->n_mat) * sizeof(float));
        x->counts = malloc((size_t)x->n_mat * sizeof(float));
        if (!x->sums || !x->counts)
            return im;
        for (int64_t k = 0; k < x->n_in * x->n_mat; k++)
            x->sums[k] = 1000.0f * (t_rng_float(&r) + 1.0f);
        for (int64_t j = 0; j < x->n_mat; j++)
            x->counts[j] = (float)(672 - 100 * j);
    }
    return im;
}

static int test_roundtrip(void)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/rt.gguf", t_tmpdir());
    struct mq_imatrix *a = hand_imatrix(), *b = NULL;
    T_CHECK(a && a->n_entries == 2 && a->entries[1].counts);
    T_CHECK(mq_imatrix_write(a, path) == MQ_OK);
    T_CHECK(mq_imatrix_read(path, &b) == MQ_OK);
    T_CHECK(!b->legacy && same_imatrix(a, b));
    mq_imatrix_free(b);
    b = NULL;

    /* a computed one, written and read back */
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    struct mq_imatrix *c = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK && be_open("ref", NULL, &be) == MQ_OK);
    T_CHECK(mq_imatrix_compute(m, be, &(struct mq_imatrix_config){.text = TEXT, .n_ctx = 32, .max_chunks = 2},
                               &c) == MQ_OK);
    T_CHECK(mq_imatrix_write(c, path) == MQ_OK && mq_imatrix_read(path, &b) == MQ_OK);
    T_CHECK(same_imatrix(c, b));
    /* the file is what llama.cpp writes: general.type, the metadata keys, f32 [n_in, 1] and [1, 1] */
    struct mq_gguf *g = NULL;
    T_CHECK(mq_gguf_open(path, &g) == MQ_OK);
    char type[32];
    uint32_t u = 0;
    T_CHECK(mq_gguf_get_str(g, "general.type", type, sizeof(type)) == MQ_OK && strcmp(type, "imatrix") == 0);
    T_CHECK(mq_gguf_get_u32(g, "imatrix.chunk_size", &u) == MQ_OK && u == 32);
    const struct mq_gguf_tensor *t = mq_gguf_find_tensor(g, "blk.3.ffn_down.weight.in_sum2");
    const struct mq_gguf_tensor *tc = mq_gguf_find_tensor(g, "blk.3.ffn_down.weight.counts");
    T_CHECK(t && tc && t->type == MQ_DTYPE_F32 && t->ne[0] == 512 && t->ne[1] == 1 && tc->ne[0] == 1);
    T_CHECK(*(const float *)tc->data == 64.0f);
    mq_gguf_close(g);
    mq_imatrix_free(a);
    mq_imatrix_free(b);
    mq_imatrix_free(c);
    be_close(be);
    mq_model_free(m);
    return T_PASS;
}

static void put_i32(FILE *f, int32_t v) { fwrite(&v, sizeof(v), 1, f); }

static void put_entry(FILE *f, const char *name, int32_t ncall, int32_t nval, const float *v)
{
    put_i32(f, (int32_t)strlen(name));
    fwrite(name, 1, strlen(name), f);
    put_i32(f, ncall);
    put_i32(f, nval);
    fwrite(v, sizeof(float), (size_t)nval, f);
}

/* A legacy .dat as llama-imatrix --output-format dat writes it, by hand. */
static int test_legacy_dat(void)
{
    char path[4200], gpath[4200];
    snprintf(path, sizeof(path), "%s/old.dat", t_tmpdir());
    snprintf(gpath, sizeof(gpath), "%s/old.gguf", t_tmpdir());
    float v0[4] = {4.0f, 8.0f, 0.5f, 12.0f}, v1[2] = {3.0f, 7.0f};
    FILE *f = fopen(path, "wb");
    T_CHECK(f);
    put_i32(f, 2);
    put_entry(f, "blk.0.attn_k.weight", 4, 4, v0); /* values are sum / count * ncall */
    put_entry(f, "blk.0.attn_v.weight", 0, 2, v1); /* ncall 0: the values are the importance */
    put_i32(f, 4);                                  /* chunks */
    put_i32(f, 9);
    fwrite("kjv.txt\0x", 1, 9, f);                  /* llama.cpp reads up to the NUL */
    T_CHECK(fclose(f) == 0);
    struct mq_imatrix *im = NULL, *back = NULL;
    T_CHECK(mq_imatrix_read(path, &im) == MQ_OK);
    T_CHECK(im->legacy && im->n_entries == 2 && im->chunk_count == 4 && im->chunk_size == 0);
    T_CHECK(im->n_datasets == 1 && strcmp(im->datasets[0], "kjv.txt") == 0);
    const struct mq_imatrix_entry *k = mq_imatrix_find(im, "blk.0.attn_k.weight");
    const struct mq_imatrix_entry *v = mq_imatrix_find(im, "blk.0.attn_v.weight");
    T_CHECK(k && v && k->n_in == 4 && k->n_mat == 1 && k->counts[0] == 4.0f && v->counts[0] == 0.0f);
    T_CHECK(memcmp(k->sums, v0, sizeof(v0)) == 0);
    float imp[4], imp2[4];
    mq_imatrix_importance(im, k, imp);
    T_CHECK(imp[0] == 1.0f && imp[1] == 2.0f && imp[2] == 0.125f && imp[3] == 3.0f);
    mq_imatrix_importance(im, v, imp);
    T_CHECK(imp[0] == 3.0f && imp[1] == 7.0f);
    /* as GGUF, every entry keeps its importance (ncall 0 included) */
    T_CHECK(mq_imatrix_write(im, gpath) == MQ_OK && mq_imatrix_read(gpath, &back) == MQ_OK && !back->legacy);
    for (int e = 0; e < 2; e++) {
        const struct mq_imatrix_entry *x = &im->entries[e], *y = mq_imatrix_find(back, x->name);
        T_CHECK(y && y->n_in == x->n_in);
        mq_imatrix_importance(im, x, imp);
        mq_imatrix_importance(back, y, imp2);
        T_CHECK_MSG(memcmp(imp, imp2, (size_t)x->n_in * sizeof(float)) == 0, "'%s'", x->name);
    }
    mq_imatrix_free(im);
    mq_imatrix_free(back);
    return T_PASS;
}

/* Writes a GGUF "imatrix" with one entry whose sums/counts are given (types, shapes). */
static int write_gguf_entry(const char *path, enum mq_dtype st, int64_t n_sums, const void *sums, enum mq_dtype ct,
                            int64_t n_counts, const void *counts, bool with_counts)
{
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    if (!w)
        return MQ_ENOMEM;
    int rc = mq_gguf_writer_set_str(w, "general.type", "imatrix");
    if (rc == MQ_OK)
        rc = mq_gguf_writer_add_tensor(w, "blk.0.attn_q.weight.in_sum2", st, 1, (int64_t[]){n_sums}, sums);
    if (rc == MQ_OK && with_counts)
        rc = mq_gguf_writer_add_tensor(w, "blk.0.attn_q.weight.counts", ct, 1, (int64_t[]){n_counts}, counts);
    if (rc == MQ_OK)
        rc = mq_gguf_writer_write(w, path);
    mq_gguf_writer_free(w);
    return rc;
}

static int test_malformed(void)
{
    char dir[4200], path[4300], err[2048];
    snprintf(dir, sizeof(dir), "%s", t_tmpdir());
    float sums[64], nan_sums[64], one = 1.0f, nan = NAN, neg = -5.0f, huge = 1e30f, two[2] = {1.0f, 1.0f};
    uint16_t f16[64] = {0};
    for (int i = 0; i < 64; i++)
        sums[i] = nan_sums[i] = (float)(i + 1);
    nan_sums[17] = INFINITY;
    struct {
        const char *name;
        int kind; /* 0 gguf entry, 1 truncated gguf, 2 legacy bytes, 3 empty */
        enum mq_dtype st, ct;
        int64_t n_sums, n_counts;
        const void *s, *c;
        bool with_counts;
    } cases[] = {
        {"f16-sums.gguf", 0, MQ_DTYPE_F16, MQ_DTYPE_F32, 64, 1, f16, &one, true},
        {"f16-counts.gguf", 0, MQ_DTYPE_F32, MQ_DTYPE_F16, 64, 1, sums, f16, true},
        {"inf-sums.gguf", 0, MQ_DTYPE_F32, MQ_DTYPE_F32, 64, 1, nan_sums, &one, true},
        {"nan-count.gguf", 0, MQ_DTYPE_F32, MQ_DTYPE_F32, 64, 1, sums, &nan, true},
        {"negative-count.gguf", 0, MQ_DTYPE_F32, MQ_DTYPE_F32, 64, 1, sums, &neg, true},
        {"huge-count.gguf", 0, MQ_DTYPE_F32, MQ_DTYPE_F32, 64, 1, sums, &huge, true},
        {"no-counts.gguf", 0, MQ_DTYPE_F32, MQ_DTYPE_F32, 64, 1, sums, &one, false},
        {"odd-split.gguf", 0, MQ_DTYPE_F32, MQ_DTYPE_F32, 63, 2, sums, two, true},
        {"truncated.gguf", 1, MQ_DTYPE_F32, MQ_DTYPE_F32, 64, 1, sums, &one, true},
        {"empty.dat", 3, 0, 0, 0, 0, NULL, NULL, false},
        {"truncated.dat", 2, 0, 0, 64, 0, sums, NULL, false},
        {"nan.dat", 2, 0, 0, 64, 1, nan_sums, NULL, false},
        {"absurd-entries.dat", 2, 0, 0, 64, 2, sums, NULL, false},
        {"absurd-name.dat", 2, 0, 0, 64, 3, sums, NULL, false},
        {"negative-ncall.dat", 2, 0, 0, 64, 4, sums, NULL, false},
        {"zero-values.dat", 2, 0, 0, 64, 5, sums, NULL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, cases[i].name);
        if (cases[i].kind <= 1) {
            T_CHECK(write_gguf_entry(path, cases[i].st, cases[i].n_sums, cases[i].s, cases[i].ct, cases[i].n_counts,
                                     cases[i].c, cases[i].with_counts) == MQ_OK);
            if (cases[i].kind == 1) {
                FILE *f = fopen(path, "rb+");
                T_CHECK(f && fseek(f, 0, SEEK_END) == 0);
                long size = ftell(f);
                T_CHECK(fclose(f) == 0 && truncate(path, size - 40) == 0);
            }
        } else {
            FILE *f = fopen(path, "wb");
            T_CHECK(f);
            int variant = (int)cases[i].n_counts;
            if (cases[i].kind == 2) {
                put_i32(f, variant == 2 ? 0x7fffffff : 1);
                if (variant == 3) {
                    put_i32(f, 100000);
                    fwrite("blk.0", 1, 5, f);
                } else if (variant == 4 || variant == 5) {
                    put_i32(f, 5);
                    fwrite("blk.0", 1, 5, f);
                    put_i32(f, variant == 4 ? -1 : 1);
                    put_i32(f, variant == 4 ? 64 : 0);
                } else {
                    put_entry(f, "blk.0.attn_q.weight", 1, 64, cases[i].s);
                }
            }
            T_CHECK(fclose(f) == 0);
            if (variant == 0 && cases[i].kind == 2)
                T_CHECK(truncate(path, 4 + 4 + 19 + 8 + 100) == 0);
        }
        struct mq_imatrix dummy, *im = &dummy; /* must be reset to NULL */
        struct t_capture c;
        T_CHECK(t_capture_begin(&c) == 0);
        int rc = mq_imatrix_read(path, &im);
        t_capture_end(&c, err, sizeof(err));
        T_CHECK_MSG(rc < 0 && im == NULL, "'%s': rc %d", cases[i].name, rc);
        T_CHECK_MSG(one_error_line(err), "'%s' printed '%s'", cases[i].name, err);
    }
    /* a missing file */
    struct mq_imatrix *im = NULL;
    struct t_capture c;
    snprintf(path, sizeof(path), "%s/none.gguf", dir);
    T_CHECK(t_capture_begin(&c) == 0);
    int rc = mq_imatrix_read(path, &im);
    t_capture_end(&c, err, sizeof(err));
    T_CHECK(rc == MQ_EIO && im == NULL && one_error_line(err));
    return T_PASS;
}

/* ---- applying one to a model ---- */

static int test_set_imatrix(void)
{
    struct mq_model *m = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    struct mq_imatrix *im = hand_imatrix();
    T_CHECK(im && im->entries[0].sums);
    /* blk.0.attn_q.weight has 192 inputs, the entry 48: an error, no layer set */
    char err[1024];
    struct t_capture c;
    int used = -1;
    T_CHECK(t_capture_begin(&c) == 0);
    int rc = mq_model_set_imatrix(m, im, true, &used);
    t_capture_end(&c, err, sizeof(err));
    T_CHECK_MSG(rc == MQ_EINVAL && one_error_line(err) && strstr(err, "'blk.0.attn_q.weight'"), "rc %d, '%s'", rc, err);
    for (int i = 0; i < m->n_layers; i++)
        T_CHECK(m->layers[i].imp == NULL);
    /* the right size applies (importance = sums / count); token_embd of another size is
     * skipped, as llama-quantize skips it */
    struct mq_imatrix_entry *e = &im->entries[0];
    free(e->sums);
    e->n_in = 192;
    T_CHECK((e->sums = malloc(192 * sizeof(float))));
    for (int k = 0; k < 192; k++)
        e->sums[k] = (float)(k + 1) * 672.0f;
    snprintf(im->entries[1].name, sizeof(im->entries[1].name), "token_embd.weight");
    T_CHECK(mq_model_set_imatrix(m, im, true, &used) == MQ_OK && used == 1);
    int li = mq_model_find_layer(m, "blk.0.attn_q.weight");
    T_CHECK(li >= 0 && m->layers[li].imp && m->layers[li].imp[0] == 1.0f && m->layers[li].imp[191] == 192.0f);
    T_CHECK(m->layers[m->layer_token_embd].imp == NULL && m->imp_hash != 0);
    T_CHECK(mq_model_set_imatrix(m, NULL, true, &used) == MQ_OK && used == 0 && m->layers[li].imp == NULL);
    mq_imatrix_free(im);
    mq_model_free(m);
    return T_PASS;
}

/* Gram matrices (mixq's extension): computed beside the sums (their diagonal is the sums),
 * shared by layers with one input (attn_q/k/v, ffn_gate/up), kept by a write and read,
 * factored onto the layers by mq_model_set_imatrix (compensate: shared factors, counted,
 * hashed), a timed-only plan skips them, and a malformed NAME.in_gram is a one-line error. */
/* The logits of 4 tokens under the uniform q4_0 plan, timed only or not. */
static int q4_logits(const struct mq_model *m, struct be_backend *be, bool timing_only, float *logits)
{
    struct mq_plan *p = NULL;
    struct mq_llama *l = NULL;
    int32_t toks[4] = {256, 'I', 'n', ' '};
    int rc = mq_plan_uniform(m, MQ_DTYPE_Q4_0, &p);
    if (rc == MQ_OK) {
        p->timing_only = timing_only;
        rc = mq_llama_new(m, p, be, &(struct mq_llama_config){.n_ctx = 8}, &l);
    }
    if (rc == MQ_OK)
        rc = mq_llama_decode(l, toks, 4, 0, logits);
    mq_llama_free(l);
    mq_plan_free(p);
    return rc;
}

static int test_gram(void)
{
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    struct mq_imatrix *c = NULL, *b = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK && be_open("ref", NULL, &be) == MQ_OK);
    T_CHECK(mq_imatrix_compute(m, be, &(struct mq_imatrix_config){.text = TEXT, .n_ctx = 32, .max_chunks = 2,
                                                                   .gram = true},
                               &c) == MQ_OK);
    double worst = 0;
    for (int e = 0; e < c->n_entries; e++) {
        const struct mq_imatrix_entry *en = &c->entries[e];
        T_CHECK_MSG(en->gram, "'%s' has no Gram matrix", en->name);
        const int64_t K = en->n_in;
        for (int64_t i = 0; i < K; i++) {
            double r = fabs((double)en->gram[i * K + i] - en->sums[i]) / (en->sums[i] > 0 ? en->sums[i] : 1);
            worst = r > worst ? r : worst;
            for (int64_t j = 0; j < i; j++)
                T_CHECK(en->gram[i * K + j] == en->gram[j * K + i]);
        }
    }
    T_CHECK_MSG(worst < 1e-5, "diagonal against the sums: relative difference %g", worst);
    const struct mq_imatrix_entry *q = mq_imatrix_find(c, "blk.0.attn_q.weight"),
                                  *k = mq_imatrix_find(c, "blk.0.attn_k.weight"),
                                  *v = mq_imatrix_find(c, "blk.0.attn_v.weight"),
                                  *o = mq_imatrix_find(c, "blk.0.attn_output.weight"),
                                  *gt = mq_imatrix_find(c, "blk.0.ffn_gate.weight"),
                                  *up = mq_imatrix_find(c, "blk.0.ffn_up.weight");
    T_CHECK(q && k && v && o && gt && up);
    size_t nq = (size_t)(q->n_in * q->n_in) * sizeof(float);
    T_CHECK(!memcmp(q->gram, k->gram, nq) && !memcmp(q->gram, v->gram, nq) && memcmp(q->gram, o->gram, nq));
    T_CHECK(!memcmp(gt->gram, up->gram, (size_t)(gt->n_in * gt->n_in) * sizeof(float)));

    char path[4200];
    snprintf(path, sizeof(path), "%s/gram.gguf", t_tmpdir());
    T_CHECK(mq_imatrix_write(c, path) == MQ_OK && mq_imatrix_read(path, &b) == MQ_OK);
    T_CHECK(same_imatrix(c, b));
    for (int e = 0; e < c->n_entries; e++)
        T_CHECK(b->entries[e].gram && !memcmp(b->entries[e].gram, c->entries[e].gram,
                                              (size_t)(c->entries[e].n_in * c->entries[e].n_in) * sizeof(float)));

    T_CHECK(mq_model_set_imatrix(m, b, false, NULL) == MQ_OK && m->n_compensated == 0);
    uint64_t plain_hash = m->imp_hash;
    int used = 0;
    T_CHECK(mq_model_set_imatrix(m, b, true, &used) == MQ_OK && m->n_compensated == used && used == c->n_entries);
    T_CHECK(m->imp_hash != plain_hash);
    int lq = mq_model_find_layer(m, "blk.0.attn_q.weight"), lv = mq_model_find_layer(m, "blk.0.attn_v.weight"),
        lo = mq_model_find_layer(m, "blk.0.attn_output.weight");
    T_CHECK(m->layers[lq].gram_u && m->layers[lq].gram_u == m->layers[lv].gram_u &&
            m->layers[lo].gram_u != m->layers[lq].gram_u);
    /* a plan that is only timed (model/plan.h timing_only) is rounded plainly: its logits
     * are those of the model without the importance matrix; otherwise compensated ones */
    static float lt[4 * 259], lc[4 * 259], lp[4 * 259];
    T_CHECK(m->hp.n_vocab == 259);
    T_CHECK(q4_logits(m, be, true, lt) == MQ_OK && q4_logits(m, be, false, lc) == MQ_OK);
    T_CHECK(mq_model_set_imatrix(m, NULL, true, NULL) == MQ_OK && m->n_compensated == 0 && !m->layers[lq].gram_u);
    T_CHECK(q4_logits(m, be, false, lp) == MQ_OK);
    T_CHECK(!memcmp(lt, lp, sizeof(lt)) && memcmp(lt, lc, sizeof(lt)));

    /* a Gram matrix of the wrong shape */
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    float sums[8] = {1, 2, 3, 4, 5, 6, 7, 8}, one = 1, gram[8 * 7] = {0};
    T_CHECK(w);
    T_CHECK(mq_gguf_writer_set_str(w, "general.type", "imatrix") == MQ_OK &&
            mq_gguf_writer_add_tensor(w, "x.in_sum2", MQ_DTYPE_F32, 2, (int64_t[]){8, 1}, sums) == MQ_OK &&
            mq_gguf_writer_add_tensor(w, "x.counts", MQ_DTYPE_F32, 2, (int64_t[]){1, 1}, &one) == MQ_OK &&
            mq_gguf_writer_add_tensor(w, "x.in_gram", MQ_DTYPE_F32, 2, (int64_t[]){8, 7}, gram) == MQ_OK);
    snprintf(path, sizeof(path), "%s/bad-gram.gguf", t_tmpdir());
    T_CHECK(mq_gguf_writer_write(w, path) == MQ_OK);
    mq_gguf_writer_free(w);
    struct mq_imatrix *bad = NULL;
    T_CHECK(mq_imatrix_read(path, &bad) == MQ_EFORMAT && !bad);

    mq_imatrix_free(b);
    mq_imatrix_free(c);
    be_close(be);
    mq_model_free(m);
    return T_PASS;
}

const struct mq_test imatrix_tests[] = {
    {"imatrix/gram", test_gram},
    {"imatrix/compute-matches-capture", test_compute_matches_capture},
    {"imatrix/compute-errors", test_compute_errors},
    {"imatrix/roundtrip", test_roundtrip},
    {"imatrix/legacy-dat", test_legacy_dat},
    {"imatrix/malformed", test_malformed},
    {"imatrix/set-imatrix", test_set_imatrix},
    {NULL, NULL},
};
