/* tests/unit/test_export.c - mixq quantize's GGUF files (model/quantize.h) and the recipes
 * for other tools (reports/export.h).
 *
 * Round trip: the bundled model is written with uniform and mixed plans and read back
 * with mixq: every layer has its planned type and exactly the bytes mq_convert_weights
 * gives (the conversion the forward pass measured), every other tensor and every metadata
 * key is the source's, and the provenance keys are there. SmolLM2 (a q4_1 file with a
 * q8_0 embedding) too where scripts/fetch-models placed it. The llama-quantize rules of
 * random plans select exactly the planned tensors of the model's tensor list, and a
 * tampered rule is caught. Errors leave no file behind. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "llm/llama.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/quantize.h"
#include "onnx/onnx.h"
#include "reports/export.h"
#include "tests/unit/test.h"

#define TINY "examples/tinyllm/tinyllm.gguf"
#define SMOL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#define SILERO "models/silero_vad_op18_ifless.onnx"

static const enum mq_dtype plan_formats[] = {MQ_DTYPE_F32, MQ_DTYPE_F16, MQ_DTYPE_BF16, MQ_DTYPE_Q8_0,
                                             MQ_DTYPE_Q4_0};
#define N_PLAN_FORMATS ((int)(sizeof(plan_formats) / sizeof(plan_formats[0])))

static void tpath(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", t_tmpdir(), name);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Files in the scratch folder whose names start with prefix (temporary files left?). */
static int count_prefixed(const char *prefix)
{
    DIR *d = opendir(t_tmpdir());
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

/* A plan of random formats that fit each layer. */
static int random_plan(const struct mq_model *m, unsigned long long seed, int n_formats, struct mq_plan **out)
{
    int rc = mq_plan_uniform(m, MQ_DTYPE_F32, out);
    if (rc < 0)
        return rc;
    struct t_rng r = {seed};
    for (int i = 0; i < m->n_layers; i++) {
        enum mq_dtype f;
        do
            f = plan_formats[t_rng_next(&r) % (unsigned)n_formats + (unsigned)(N_PLAN_FORMATS - n_formats)];
        while (!mq_layer_allows(&m->layers[i], f));
        (*out)->fmt[i] = f;
    }
    return mq_plan_check(m, *out);
}

/* bytes of each scalar GGUF type */
static const size_t gguf_width[MQ_GGUF_TYPE_COUNT] = {
    [MQ_GGUF_UINT8] = 1, [MQ_GGUF_INT8] = 1,    [MQ_GGUF_UINT16] = 2, [MQ_GGUF_INT16] = 2,
    [MQ_GGUF_UINT32] = 4, [MQ_GGUF_INT32] = 4,  [MQ_GGUF_FLOAT32] = 4, [MQ_GGUF_BOOL] = 1,
    [MQ_GGUF_UINT64] = 8, [MQ_GGUF_INT64] = 8,  [MQ_GGUF_FLOAT64] = 8,
};

static bool value_equal(const struct mq_gguf_value *a, const struct mq_gguf_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MQ_GGUF_STRING:
        return a->str.len == b->str.len && !memcmp(a->str.ptr, b->str.ptr, a->str.len);
    case MQ_GGUF_ARRAY:
        if (a->arr.type != b->arr.type || a->arr.n != b->arr.n)
            return false;
        if (a->arr.items) {
            for (uint64_t i = 0; i < a->arr.n; i++)
                if (!value_equal(&a->arr.items[i], &b->arr.items[i]))
                    return false;
            return true;
        }
        return !memcmp(a->arr.data, b->arr.data, (size_t)a->arr.n * gguf_width[a->arr.type]);
    default:
        return !memcmp(&a->u8, &b->u8, gguf_width[a->type]);
    }
}

/* The file at path, read back: every layer in its planned type with mq_convert_weights'
 * bytes, other tensors and metadata as the source's. */
static int check_written(const struct mq_model *src, const struct mq_plan *p, const char *path)
{
    struct mq_model *q = NULL;
    T_CHECK(mq_model_load(path, &q) == MQ_OK);
    int rc = T_FAIL;
    const struct mq_gguf *gs = src->gguf, *gq = q->gguf;
    if (q->n_layers != src->n_layers || gq->n_tensors != gs->n_tensors) {
        fprintf(stderr, "    %d layers, %llu tensors\n", q->n_layers, (unsigned long long)gq->n_tensors);
        goto out;
    }
    for (int i = 0; i < src->n_layers; i++) {
        const struct mq_layer *a = &src->layers[i], *b = &q->layers[i];
        const void *data;
        void *buf;
        if (strcmp(a->name, b->name) || b->src_type != p->fmt[i]) {
            fprintf(stderr, "    layer %s is %s, planned %s\n", b->name, mq_dtype_name(b->src_type),
                    mq_dtype_name(p->fmt[i]));
            goto out;
        }
        if (mq_convert_weights(a->name, a->src_type, a->src_data, a->n_in, a->n_out, p->fmt[i], a->imp, a->gram_u, &data, &buf) < 0)
            goto out;
        size_t row;
        bool same = mq_dtype_row_bytes(p->fmt[i], a->n_in, &row) == MQ_OK &&
                    b->src_nbytes == row * (size_t)a->n_out && !memcmp(b->src_data, data, b->src_nbytes);
        free(buf);
        if (!same) {
            fprintf(stderr, "    layer %s: bytes differ from mq_convert_weights\n", a->name);
            goto out;
        }
    }
    for (uint64_t i = 0; i < gs->n_tensors; i++) {
        const struct mq_gguf_tensor *a = &gs->tensors[i], *b = &gq->tensors[i];
        if (strcmp(a->name, b->name) || a->n_dims != b->n_dims || memcmp(a->ne, b->ne, sizeof(a->ne))) {
            fprintf(stderr, "    tensor %llu: %s vs %s\n", (unsigned long long)i, a->name, b->name);
            goto out;
        }
        if (mq_model_find_layer(src, a->name) < 0 &&
            (a->type != b->type || a->nbytes != b->nbytes || memcmp(a->data, b->data, a->nbytes))) {
            fprintf(stderr, "    tensor %s is not copied as it was\n", a->name);
            goto out;
        }
    }
    for (uint64_t i = 0; i < gs->n_kv; i++) {
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)gs->kv[i].key.len, gs->kv[i].key.ptr);
        const struct mq_gguf_kv *kv = mq_gguf_find_kv(gq, key);
        if (!kv) {
            fprintf(stderr, "    key %s is missing\n", key);
            goto out;
        }
        if (strcmp(key, "general.file_type") && strcmp(key, "general.quantization_version") &&
            !value_equal(&gs->kv[i].value, &kv->value)) {
            fprintf(stderr, "    key %s changed\n", key);
            goto out;
        }
    }
    uint32_t ft;
    if (mq_gguf_get_u32(gq, "general.file_type", &ft) < 0 ||
        (int)ft != mq_quantize_ftype_of(mq_quantize_file_type(p))) {
        fprintf(stderr, "    general.file_type %u\n", ft);
        goto out;
    }
    rc = T_PASS;
out:
    mq_model_free(q);
    return rc;
}

/* all: every uniform plan and two mixed ones; otherwise (large models) q4_0 and the
 * five-format mix */
static int roundtrip(const char *model, unsigned long long seed, bool all)
{
    struct mq_model *m = NULL;
    T_CHECK(mq_model_load(model, &m) == MQ_OK);
    char out[4096];
    tpath(out, sizeof(out), "rt.gguf");
    int rc = T_PASS;
    for (int k = 0; k < N_PLAN_FORMATS + 3 && rc == T_PASS; k++) {
        struct mq_plan *p = NULL;
        if (!all && k != N_PLAN_FORMATS - 1 && k != N_PLAN_FORMATS + 1)
            continue;
        if (k < N_PLAN_FORMATS) {
            if (mq_plan_uniform(m, plan_formats[k], &p) < 0)
                rc = T_FAIL;
        } else if (random_plan(m, seed + (unsigned)k, k == N_PLAN_FORMATS ? 2 : N_PLAN_FORMATS, &p) < 0) {
            rc = T_FAIL;
        }
        struct rpt_provenance prov = {.m = m, .plan = p, .plan_from = "test"};
        struct mq_quantize_result r;
        if (rc == T_PASS && mq_quantize_write(m, p, rpt_provenance_write, &prov, out, &r) < 0)
            rc = T_FAIL;
        if (rc == T_PASS)
            rc = check_written(m, p, out);
        if (rc == T_PASS) {
            struct mq_gguf *g = NULL;
            char v[64];
            if (mq_gguf_open(out, &g) < 0 || mq_gguf_get_str(g, "mixq.plan.from", v, sizeof(v)) < 0 ||
                strcmp(v, "test") || !mq_gguf_find_kv(g, "mixq.version") || !mq_gguf_find_kv(g, "mixq.plan.layers") ||
                (uint64_t)g->file_size != r.file_bytes) {
                fprintf(stderr, "    plan %d: provenance or size wrong\n", k);
                rc = T_FAIL;
            }
            mq_gguf_close(g);
        }
        if (rc != T_PASS)
            fprintf(stderr, "    plan %d (%s) failed\n", k, p ? p->label : "?");
        mq_plan_free(p);
    }
    mq_model_free(m);
    T_CHECK(count_prefixed("rt.gguf.") == 0); /* no temporary files left */
    return rc;
}

static int test_roundtrip_tiny(void) { return roundtrip(TINY, 1, true); }

static int test_roundtrip_smol(void)
{
    T_SKIP_IF(!exists(SMOL), "%s is absent: scripts/fetch-models smollm2", SMOL);
    return roundtrip(SMOL, 7, false);
}

static int failing_meta(void *ctx, struct mq_gguf_writer *w)
{
    (void)ctx;
    (void)w;
    return mq_error(MQ_EIO, "test: the metadata cannot be had");
}

static int test_quantize_errors(void)
{
    struct mq_model *m = NULL, *s = NULL;
    struct mq_plan *p = NULL, *other = NULL;
    char out[4096], bad[4096];
    tpath(out, sizeof(out), "err.gguf");
    tpath(bad, sizeof(bad), "no-such-dir/out.gguf");
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_Q8_0, &p) == MQ_OK);
    /* unwritable: nothing there afterwards */
    T_CHECK(mq_quantize_write(m, p, NULL, NULL, bad, NULL) == MQ_EIO);
    T_CHECK(!exists(bad));
    /* a plan of another length */
    other = calloc(1, sizeof(*other));
    T_CHECK(other);
    other->n_layers = m->n_layers - 1;
    other->fmt = p->fmt;
    T_CHECK(mq_quantize_write(m, other, NULL, NULL, out, NULL) == MQ_EINVAL);
    T_CHECK(!exists(out));
    free(other);
    /* a format the rows do not fit: rows of 192 are not whole q4_k super-blocks of 256 */
    p->fmt[3] = MQ_DTYPE_Q4_K;
    T_CHECK(mq_quantize_write(m, p, NULL, NULL, out, NULL) < 0);
    T_CHECK(!exists(out));
    p->fmt[3] = MQ_DTYPE_Q8_0;
    /* an existing file is kept unchanged when a write fails (here: its metadata) */
    T_CHECK(mq_quantize_write(m, p, NULL, NULL, out, NULL) == MQ_OK);
    struct stat before, after;
    T_CHECK(stat(out, &before) == 0);
    p->fmt[0] = MQ_DTYPE_Q4_0;
    T_CHECK(mq_quantize_write(m, p, failing_meta, NULL, out, NULL) == MQ_EIO);
    T_CHECK(stat(out, &after) == 0 && after.st_ino == before.st_ino && after.st_size == before.st_size);
    struct rpt_provenance prov = {.m = m, .plan = p};
    T_CHECK(mq_quantize_write(m, p, rpt_provenance_write, &prov, out, NULL) == MQ_OK);
    T_CHECK(stat(out, &after) == 0 && after.st_size != before.st_size);
    /* an ONNX model is refused */
    if (exists(SILERO)) {
        T_CHECK(mq_model_load(SILERO, &s) == MQ_OK);
        struct mq_plan *sp = NULL;
        T_CHECK(mq_plan_uniform(s, MQ_DTYPE_F16, &sp) == MQ_OK);
        T_CHECK(mq_quantize_write(s, sp, NULL, NULL, out, NULL) == MQ_EUNSUPPORTED);
        mq_plan_free(sp);
        mq_model_free(s);
    }
    T_CHECK(count_prefixed("err.gguf.") == 0);
    mq_plan_free(p);
    mq_model_free(m);
    return T_PASS;
}

/* The rules of many random plans select exactly the planned tensors; uniform plans need
 * none; a tampered rule is caught. */
static int rules_on(const char *model)
{
    struct mq_model *m = NULL;
    T_CHECK(mq_model_load(model, &m) == MQ_OK);
    for (int k = 0; k < N_PLAN_FORMATS; k++) {
        struct mq_plan *p;
        struct rpt_llama_recipe r;
        T_CHECK(mq_plan_uniform(m, plan_formats[k], &p) == MQ_OK);
        T_CHECK(rpt_llama_rules(m, p, &r) == MQ_OK);
        T_CHECK(r.n_rules == 0 && r.base == plan_formats[k]);
        T_CHECK(rpt_llama_rules_check(m, p, &r) == MQ_OK);
        rpt_llama_rules_free(&r);
        mq_plan_free(p);
    }
    for (unsigned long long seed = 1; seed <= 40; seed++) {
        struct mq_plan *p;
        struct rpt_llama_recipe r;
        /* 2..5 formats; seeds above 30 change one layer of a uniform plan (exact names) */
        if (seed > 30) {
            T_CHECK(mq_plan_uniform(m, MQ_DTYPE_Q4_0, &p) == MQ_OK);
            p->fmt[seed % (unsigned)m->n_layers] = MQ_DTYPE_Q8_0;
        } else {
            T_CHECK(random_plan(m, seed, 2 + (int)(seed % 4), &p) == MQ_OK);
        }
        T_CHECK(rpt_llama_rules(m, p, &r) == MQ_OK);
        T_CHECK_MSG(rpt_llama_rules_check(m, p, &r) == MQ_OK, "seed %llu", seed);
        int selected = 0, other = 0;
        for (int k = 0; k < r.n_rules; k++)
            selected += r.rules[k].n_tensors;
        for (int i = 0; i < m->n_layers; i++)
            other += p->fmt[i] != r.base;
        T_CHECK_MSG(selected == other, "seed %llu: rules select %d tensors, %d differ from the base", seed, selected,
                    other);
        T_CHECK(r.n_rules <= other);
        if (seed > 30) /* one layer differs: one rule, its exact name */
            T_CHECK(r.n_rules == 1 && r.rules[0].n_tensors == 1 && !strchr(r.rules[0].pattern, '|'));
        /* tampering: a rule with another type, or one that also takes a base tensor */
        if (r.n_rules) {
            enum mq_dtype keep = r.rules[0].fmt;
            r.rules[0].fmt = keep == MQ_DTYPE_F16 ? MQ_DTYPE_BF16 : MQ_DTYPE_F16;
            T_CHECK(rpt_llama_rules_check(m, p, &r) == MQ_EINTERNAL);
            r.rules[0].fmt = keep;
            char saved[RPT_RULE_MAX];
            memcpy(saved, r.rules[0].pattern, sizeof(saved));
            snprintf(r.rules[0].pattern, sizeof(r.rules[0].pattern), "^blk\\.[0-9]+\\.");
            T_CHECK(rpt_llama_rules_check(m, p, &r) == MQ_EINTERNAL);
            memcpy(r.rules[0].pattern, saved, sizeof(saved));
            T_CHECK(rpt_llama_rules_check(m, p, &r) == MQ_OK);
        }
        rpt_llama_rules_free(&r);
        mq_plan_free(p);
    }
    mq_model_free(m);
    return T_PASS;
}

static int test_rules_tiny(void) { return rules_on(TINY); }

static int test_rules_smol(void)
{
    T_SKIP_IF(!exists(SMOL), "%s is absent: scripts/fetch-models smollm2", SMOL);
    return rules_on(SMOL);
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int test_front_point(void)
{
    char path[4096];
    tpath(path, sizeof(path), "front.yaml");
    T_CHECK(write_text(path, "mixq_schema: front/1\nmixq_version: 0.1.0\n"
                             "model: {path: m.gguf, name: tiny, arch: llama, content_hash: 00ab, layers: 44}\n"
                             "workload: decode:512\n"
                             "target: {cpu: X, backend: cpu, threads: 2}\n"
                             "budgets: {memory_bytes: 9000000, latency_us: null, max_kl: 1.0e-03}\n"
                             "metric: {name: ppl, reference: 4.4, higher_is_better: false}\n"
                             "points:\n"
                             "- index: 3\n"
                             "  predicted: {memory_bytes: 100, latency_us: 2.5, loss: 0.1}\n"
                             "  plan: {default: q4_0, layers: {}}\n"
                             "- index: 7\n"
                             "  predicted: {memory_bytes: 200, latency_us: 3.5, loss: 0.05}\n"
                             "  plan: {default: q8_0, layers: {}}\n"
                             "  measured: {memory_bytes: 210, latency_us: 4, latency_mad_us: 0.5, reps: 9, kl: 0.002,\n"
                             "             kl_stderr: 0.0001, metric: 4.41}\n"
                             "chosen: {index: 7, label: front point 7}\n") == 0);
    struct rpt_front_point pt;
    T_CHECK(rpt_front_point_read(path, -1, &pt) == MQ_OK);
    T_CHECK(pt.index == 7 && pt.chosen && pt.measured && pt.reps == 9);
    T_CHECK(pt.kl == 0.002 && pt.metric == 4.41 && pt.lat_us == 4 && pt.pred_loss == 0.05);
    T_CHECK(pt.has_mem_budget && pt.mem_budget_bytes == 9e6 && !pt.has_lat_budget);
    T_CHECK(pt.has_max_kl && pt.max_kl == 1e-3 && !pt.has_size_budget);
    T_CHECK(!strcmp(pt.model_path, "m.gguf") && !strcmp(pt.model_hash, "00ab") && pt.model_layers == 44);
    T_CHECK(!strcmp(pt.workload, "decode:512") && pt.threads == 2 && !strcmp(pt.metric_name, "ppl"));
    T_CHECK(rpt_front_point_read(path, 3, &pt) == MQ_OK);
    T_CHECK(pt.index == 3 && !pt.chosen && !pt.measured && pt.pred_mem_bytes == 100);
    T_CHECK(rpt_front_point_read(path, 4, &pt) == MQ_ENOTFOUND);
    T_CHECK(write_text(path, "mixq_schema: front/1\nmodel: {path: m.gguf}\npoints: []\nchosen: null\n") == 0);
    T_CHECK(rpt_front_point_read(path, -1, &pt) == MQ_ENOTFOUND);
    T_CHECK(write_text(path, "mixq_schema: plan/1\ndefault: q8_0\n") == 0);
    T_CHECK(rpt_front_point_read(path, -1, &pt) == MQ_EFORMAT);
    return T_PASS;
}

/* Each target on a model of its kind: the recipe names every layer as the tool does. */
static int test_targets(void)
{
    struct mq_model *m = NULL;
    struct mq_plan *p = NULL;
    char *buf = NULL;
    size_t len = 0;
    char file[4096];
    tpath(file, sizeof(file), "recipe.out");
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    T_CHECK(random_plan(m, 3, 3, &p) == MQ_OK);
    struct rpt_export_input in = {.m = m, .plan = p, .plan_from = "test"};
    const struct rpt_export_target *t = rpt_export_find("LLAMA.CPP");
    T_CHECK(t && t->kind == MQ_MODEL_LLAMA && !rpt_export_find("tensorflow"));
    FILE *f = open_memstream(&buf, &len);
    T_CHECK(f && t->write(&in, f, file) == MQ_OK && fclose(f) == 0);
    T_CHECK(strstr(buf, "\nllama-quantize --pure ") && strstr(buf, "--tensor-type-file"));
    free(buf);
    T_CHECK(rpt_export_find("trtexec")->write(&in, stdout, NULL) == MQ_EUNSUPPORTED);
    mq_plan_free(p);
    mq_model_free(m);
    T_SKIP_IF(!exists(SILERO), "%s is absent: scripts/fetch-models silero-vad", SILERO);
    T_CHECK(mq_model_load(SILERO, &m) == MQ_OK);
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_Q4_0, &p) == MQ_OK);
    in = (struct rpt_export_input){.m = m, .plan = p, .plan_from = "test"};
    for (int k = 0; k < rpt_export_n_targets; k++) {
        t = &rpt_export_targets[k];
        f = open_memstream(&buf, &len);
        T_CHECK(f);
        int rc = t->write(&in, f, NULL); /* without a file, the whole recipe goes to the stream */
        T_CHECK(fclose(f) == 0);
        if (t->kind != MQ_MODEL_ONNX) {
            T_CHECK(rc == MQ_EUNSUPPORTED);
            free(buf);
            continue;
        }
        T_CHECK_MSG(rc == MQ_OK, "%s", t->name);
        /* every layer's node is named, and q4_0 is said to be rounded */
        for (int i = 0; i < m->n_layers; i++)
            T_CHECK_MSG(strstr(buf, mq_onnx_layer_node(m, i)->name) || p->fmt[i] == MQ_DTYPE_F32, "%s: %s", t->name,
                        m->layers[i].name);
        T_CHECK(strstr(buf, "# rounded: "));
        free(buf);
        unlink(file);
        FILE *dn = fopen("/dev/null", "w");
        T_CHECK(dn);
        rc = t->write(&in, dn, file);
        fclose(dn);
        T_CHECK(rc == MQ_OK && exists(file));
    }
    mq_plan_free(p);
    mq_model_free(m);
    return T_PASS;
}

const struct mq_test export_tests[] = {
    {"export/roundtrip-tiny", test_roundtrip_tiny},
    {"export/roundtrip-smollm2", test_roundtrip_smol},
    {"export/quantize-errors", test_quantize_errors},
    {"export/rules-tiny", test_rules_tiny},
    {"export/rules-smollm2", test_rules_smol},
    {"export/front-point", test_front_point},
    {"export/targets", test_targets},
    {NULL, NULL},
};
