/* tests/unit/test_preset.c - llama.cpp's presets as plans (model/preset.h).
 *
 * The oracle is llama-quantize itself: the tables in tests/golden/presets/ hold, per
 * preset, the type the pinned llama-quantize gives every quantizable tensor (--dry-run, with and
 * without --imatrix for the presets whose rules ask) and the fallback count it prints,
 * for the bundled tinyllm (192-wide rows: K-quants fall back except ffn_down), three
 * synthetic llama shapes with rows in multiples of 256 (GQA 4, no GQA, and 80 blocks,
 * which llama.cpp types as a 70B), and SmolLM2-135M (tied output; skipped when
 * scripts/fetch-models has not placed it). tests/interop/check-presets.sh --write-expected
 * regenerates the tables; check-presets.sh also compares whole files with llama-quantize's.
 *
 * Then the API around the rules: names, aliases and ftypes, the one-line error for an
 * unknown name, the imatrix taken from the model, and general.file_type written from the
 * plan's ftype. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/preset.h"
#include "model/quantize.h"
#include "model/synth.h"
#include "tests/unit/test.h"

#define GOLDEN "tests/golden/presets"
#define FIXTURE_HEADER "# mixq.fixture presets/1"

/* The table's model: "model file PATH" (NULL *m and T_SKIP when the file is absent) or
 * "model synth k=v ...", written into the scratch folder as preset-tool.c writes it. */
static int table_model(const char *table, const char *line, struct mq_model **m)
{
    *m = NULL;
    char path[4096];
    if (!strncmp(line, "model file ", 11)) {
        snprintf(path, sizeof(path), "%s", line + 11);
        path[strcspn(path, "\n")] = '\0';
        FILE *f = fopen(path, "rb");
        T_SKIP_IF(!f, "no %s (scripts/fetch-models smollm2)", path);
        fclose(f);
    } else {
        struct mq_synth_config c = {.name = "preset-test",
                                    .like = "preset test shapes",
                                    .rope_theta = 10000.0f,
                                    .norm_eps = 1e-5f};
        long long v[7];
        T_CHECK_MSG(sscanf(line,
                           "model synth n_vocab=%lld n_ctx=%lld n_embd=%lld n_layer=%lld n_ff=%lld "
                           "n_head=%lld n_head_kv=%lld",
                           &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) == 7,
                    "%s: bad model line '%s'", table, line);
        c.n_vocab = v[0], c.n_ctx = v[1], c.n_embd = v[2], c.n_layer = v[3], c.n_ff = v[4];
        c.n_head = v[5], c.n_head_kv = v[6];
        struct mq_synth_options o = {.type = MQ_DTYPE_Q4_0, .seed = 1, .disk_budget = 64u << 20};
        snprintf(path, sizeof(path), "%s/preset-synth.gguf", t_tmpdir());
        T_CHECK(mq_synth_write(&c, &o, path) == MQ_OK);
    }
    T_CHECK(mq_model_load(path, m) == MQ_OK);
    return T_PASS;
}

/* The layer of `role` in `block` (-1: token_embd, output), or -1. */
static int role_layer(const struct mq_model *m, enum mq_layer_role role, int block)
{
    if (role == MQ_ROLE_TOKEN_EMBD)
        return block < 0 ? m->layer_token_embd : -1;
    if (role == MQ_ROLE_OUTPUT)
        return block < 0 ? m->layer_output : -1;
    if (block < 0 || block >= m->hp.n_layer)
        return -1;
    return m->block_layer[block * MQ_ROLE_COUNT + role];
}

struct group {
    char preset[32];
    bool imatrix;
    struct mq_plan *plan;
    struct mq_preset_result res;
    bool *seen; /* [n_layers]: layers the table gave a type */
    int n_lines;
};

/* Every layer of the finished group got its type from the table. */
static int group_close(const struct mq_model *m, struct group *g, const char *table)
{
    if (g->plan) {
        int n = 0;
        for (int i = 0; i < m->n_layers; i++)
            n += g->seen[i];
        T_CHECK_MSG(n == m->n_layers, "%s: %s%s covers %d of %d layers", table, g->preset,
                    g->imatrix ? " imatrix" : "", n, m->n_layers);
    }
    mq_plan_free(g->plan);
    g->plan = NULL;
    return T_PASS;
}

static int group_open(const struct mq_model *m, struct group *g, const char *preset, bool imatrix)
{
    snprintf(g->preset, sizeof(g->preset), "%s", preset);
    g->imatrix = imatrix;
    memset(g->seen, 0, (size_t)m->n_layers * sizeof(*g->seen));
    struct mq_preset_options o = {.imatrix =
                                      imatrix ? MQ_PRESET_IMATRIX_YES : MQ_PRESET_IMATRIX_NO};
    T_CHECK_MSG(mq_plan_preset_ex(m, preset, &o, &g->plan, &g->res) == MQ_OK, "preset %s", preset);
    T_CHECK(g->plan->ftype == mq_preset_ftype(preset));
    T_CHECK(mq_plan_check(m, g->plan) == MQ_OK);
    return T_PASS;
}

/* One "PRESET IMATRIX ROLE TYPES..." line against the group's plan. */
static int check_line(const struct mq_model *m, struct group *g, const char *table, char *what,
                      char *rest)
{
    char *save = NULL;
    if (!strcmp(what, "fallback")) {
        int n_fb = -1, n_t = -1;
        T_CHECK_MSG(sscanf(rest, "%d %d", &n_fb, &n_t) == 2, "%s: bad fallback line", table);
        T_CHECK_MSG(g->res.n_fallback == n_fb && g->res.n_tensors == n_t,
                    "%s: %s%s: mixq counts %d of %d fallbacks, llama-quantize %d of %d", table,
                    g->preset, g->imatrix ? " imatrix" : "", g->res.n_fallback, g->res.n_tensors,
                    n_fb, n_t);
        return T_PASS;
    }
    int role = -1;
    for (int r = 0; r < MQ_ROLE_COUNT; r++)
        if (!strcmp(mq_layer_role_name((enum mq_layer_role)r), what))
            role = r;
    T_CHECK_MSG(role >= 0, "%s: unknown role '%s'", table, what);
    bool single = role == MQ_ROLE_TOKEN_EMBD || role == MQ_ROLE_OUTPUT;
    int block = 0; /* types listed so far: the block of the next one */
    for (char *tok = strtok_r(rest, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
        int count = 1;
        char *star = strchr(tok, '*');
        if (star) {
            *star = '\0';
            count = atoi(star + 1);
        }
        enum mq_dtype want;
        T_CHECK_MSG(mq_dtype_from_name(tok, &want) == MQ_OK && count > 0, "%s: bad type '%s'",
                    table, tok);
        for (int k = 0; k < count; k++, block++) {
            int li = role_layer(m, (enum mq_layer_role)role, single ? block - 1 : block);
            T_CHECK_MSG(li >= 0, "%s: %s has no layer %s in block %d", table, m->path, what, block);
            T_CHECK_MSG(g->plan->fmt[li] == want, "%s: %s%s %s: mixq %s, llama-quantize %s", table,
                        g->preset, g->imatrix ? " imatrix" : "", m->layers[li].name,
                        mq_dtype_name(g->plan->fmt[li]), mq_dtype_name(want));
            g->seen[li] = true;
        }
    }
    T_CHECK_MSG(block == (single ? 1 : m->hp.n_layer), "%s: %s %s lists %d types, want %lld", table,
                g->preset, what, block, single ? 1LL : (long long)m->hp.n_layer);
    g->n_lines++;
    return T_PASS;
}

/* Every line of a table against mq_plan_preset_ex on its model. */
static int check_table(const char *name)
{
    char table[512];
    snprintf(table, sizeof(table), GOLDEN "/%s.txt", name);
    FILE *f = fopen(table, "r");
    T_CHECK_MSG(f != NULL, "cannot open %s", table);
    struct mq_model *m = NULL;
    struct group g = {0};
    char line[4096];
    int rc = T_PASS, n_groups = 0;
    bool header =
        fgets(line, sizeof(line), f) && !strncmp(line, FIXTURE_HEADER, strlen(FIXTURE_HEADER));
    if (!header) {
        fprintf(stderr, "    %s: no '%s' header\n", table, FIXTURE_HEADER);
        rc = T_FAIL;
    }
    while (rc == T_PASS && fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (!strncmp(line, "model ", 6)) {
            line[strcspn(line, "\n")] = '\0';
            if ((rc = table_model(table, line, &m)) != T_PASS)
                break;
            if (!(g.seen = calloc((size_t)m->n_layers + 1, sizeof(*g.seen)))) {
                rc = T_FAIL;
                break;
            }
            continue;
        }
        char preset[32], im[16], what[32];
        int used = 0;
        if (!m || sscanf(line, "%31s %15s %31s %n", preset, im, what, &used) != 3) {
            fprintf(stderr, "    %s: bad line (or no model line first): %s", table, line);
            rc = T_FAIL;
            break;
        }
        bool imatrix = !strcmp(im, "imatrix");
        if (!g.plan || strcmp(g.preset, preset) || g.imatrix != imatrix) {
            if ((rc = group_close(m, &g, table)) != T_PASS ||
                (rc = group_open(m, &g, preset, imatrix)) != T_PASS)
                break;
            n_groups++;
        }
        rc = check_line(m, &g, table, what, line + used);
    }
    if (rc == T_PASS)
        rc = group_close(m, &g, table);
    if (rc == T_PASS && n_groups < 19) {
        fprintf(stderr, "    %s: %d presets, want every one of the 19\n", table, n_groups);
        rc = T_FAIL;
    }
    fclose(f);
    mq_plan_free(g.plan);
    free(g.seen);
    mq_model_free(m);
    return rc;
}

static int test_tinyllm(void)
{
    return check_table("tinyllm");
}
static int test_synth_gqa4(void)
{
    return check_table("synth-gqa4");
}
static int test_synth_mha(void)
{
    return check_table("synth-mha");
}
static int test_synth_70b(void)
{
    return check_table("synth-70b");
}
static int test_smollm2(void)
{
    return check_table("smollm2");
}

/* Names, aliases, ftypes (llama.h's numbers) and the error for an unknown name. */
static int test_names(void)
{
    size_t n;
    const char *const *names = mq_preset_names(&n);
    T_CHECK(n == 19);
    static const struct {
        const char *name;
        int ftype;
    } want[] = {{"Q2_K", 10},   {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q3_K_L", 13}, {"Q4_K_S", 14},
                {"Q4_K_M", 15}, {"Q5_K_S", 16}, {"Q5_K_M", 17}, {"Q6_K", 18},   {"Q8_0", 7},
                {"Q4_0", 2},    {"Q4_1", 3},    {"Q5_0", 8},    {"Q5_1", 9},    {"IQ4_NL", 25},
                {"IQ4_XS", 30}, {"F16", 1},     {"BF16", 32},   {"F32", 0}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        T_CHECK(i < n && !strcmp(names[i], want[i].name));
        T_CHECK_MSG(mq_preset_ftype(want[i].name) == want[i].ftype, "%s", want[i].name);
        T_CHECK(mq_preset_find(want[i].name)->ftype == want[i].ftype);
    }
    T_CHECK(mq_preset_find("q4_k_m") == mq_preset_find("Q4_K_M"));
    T_CHECK(mq_preset_find("Q4_K") == mq_preset_find("Q4_K_M")); /* llama-quantize's aliases */
    T_CHECK(mq_preset_find("q3_k") == mq_preset_find("Q3_K_M"));
    T_CHECK(mq_preset_find("Q5_K") == mq_preset_find("Q5_K_M"));
    T_CHECK(mq_preset_find("Q4_K_X") == NULL && mq_preset_ftype("IQ2_XXS") == -1);
    T_CHECK(mq_preset_find("Q4_K")->base == MQ_DTYPE_Q4_K &&
            mq_preset_find("IQ4_XS")->base == MQ_DTYPE_IQ4_XS);

    struct mq_model *m;
    T_CHECK(mq_model_load("examples/tinyllm/tinyllm.gguf", &m) == MQ_OK);
    struct mq_plan *p = (struct mq_plan *)1;
    mq_error_set_quiet(1);
    int rc = mq_plan_preset(m, "Q4_K_X", &p);
    mq_error_set_quiet(0);
    bool listed = strstr(mq_error_last(), "'Q4_K_X'") && strstr(mq_error_last(), "Q2_K, Q3_K_S") &&
                  strstr(mq_error_last(), "IQ4_XS") && !strchr(mq_error_last(), '\n');
    T_CHECK(rc == MQ_ENOTFOUND && p == NULL);
    T_CHECK_MSG(listed, "error '%s'", mq_error_last());
    T_CHECK(mq_plan_preset(m, "q4_k_m", &p) == MQ_OK);
    T_CHECK(!strcmp(p->label, "llama.cpp Q4_K_M") && p->ftype == 15);
    struct mq_plan *c;
    T_CHECK(mq_plan_clone(p, &c) == MQ_OK);
    T_CHECK(c->ftype == 15);
    mq_plan_free(c);
    mq_plan_free(p);
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_Q4_K, &p) == MQ_OK);
    T_CHECK(p->ftype == -1);
    mq_plan_free(p);
    mq_model_free(m);
    return T_PASS;
}

/* By default the imatrix rules follow the model: a layer with importance weights means
 * "--imatrix given" (Q4_0's first ffn_down blocks become q4_1, IQ4_XS's stay iq4_xs). */
static int test_imatrix_from_model(void)
{
    struct mq_model *m = NULL;
    int rc = table_model("synth-gqa4",
                         "model synth n_vocab=320 n_ctx=256 n_embd=256 n_layer=16 n_ff=768 "
                         "n_head=8 n_head_kv=2",
                         &m);
    if (rc != T_PASS)
        return rc;
    int down0 = role_layer(m, MQ_ROLE_FFN_DOWN, 0), down2 = role_layer(m, MQ_ROLE_FFN_DOWN, 2);
    struct mq_plan *p = NULL, *q = NULL, *x = NULL, *y = NULL;
    struct mq_preset_result r0, r1;
    T_CHECK(down0 >= 0 && down2 >= 0);
    T_CHECK(mq_plan_preset_ex(m, "Q4_0", NULL, &p, &r0) == MQ_OK && !r0.imatrix);
    T_CHECK(mq_plan_preset(m, "IQ4_XS", &x) == MQ_OK);
    static float ones[4096];
    for (int i = 0; i < 4096; i++)
        ones[i] = 1.0f;
    T_CHECK(m->layers[down2].n_in <= 4096);
    m->layers[down2].imp = ones; /* borrowed for the test; cleared before mq_model_free */
    int rq = mq_plan_preset_ex(m, "Q4_0", NULL, &q, &r1);
    int ry = mq_plan_preset(m, "IQ4_XS", &y);
    m->layers[down2].imp = NULL;
    T_CHECK(rq == MQ_OK && ry == MQ_OK && r1.imatrix);
    T_CHECK(p->fmt[down0] == MQ_DTYPE_Q4_0 && q->fmt[down0] == MQ_DTYPE_Q4_1 &&
            q->fmt[down2] == MQ_DTYPE_Q4_0);
    T_CHECK(x->fmt[down0] == MQ_DTYPE_Q5_K && y->fmt[down0] == MQ_DTYPE_IQ4_XS);
    mq_plan_free(p);
    mq_plan_free(q);
    mq_plan_free(x);
    mq_plan_free(y);
    mq_model_free(m);
    return T_PASS;
}

/* mixq quantize writes the preset's llama_ftype (Q3_K_S = 11, where "mostly q3_k" would
 * say Q3_K_M = 12), and the most common format's for plans without one. */
static int test_file_type(void)
{
    struct mq_model *m, *w = NULL;
    T_CHECK(mq_model_load("examples/tinyllm/tinyllm.gguf", &m) == MQ_OK);
    char path[4096];
    snprintf(path, sizeof(path), "%s/preset-q3ks.gguf", t_tmpdir());
    struct mq_plan *p;
    T_CHECK(mq_plan_preset(m, "Q3_K_S", &p) == MQ_OK);
    T_CHECK(mq_quantize_write(m, p, NULL, NULL, path, NULL) == MQ_OK);
    uint32_t ft = 0;
    T_CHECK(mq_model_load(path, &w) == MQ_OK);
    T_CHECK(mq_gguf_get_u32(w->gguf, "general.file_type", &ft) == MQ_OK && ft == 11);
    for (int i = 0; i < m->n_layers; i++)
        T_CHECK(w->layers[i].src_type == p->fmt[i]);
    mq_model_free(w);
    p->ftype = -1; /* the same plan without a preset's type: the most common format's */
    T_CHECK(mq_quantize_write(m, p, NULL, NULL, path, NULL) == MQ_OK);
    T_CHECK(mq_model_load(path, &w) == MQ_OK);
    T_CHECK(mq_gguf_get_u32(w->gguf, "general.file_type", &ft) == MQ_OK);
    T_CHECK((int)ft == mq_quantize_ftype_of(mq_quantize_file_type(p)) && ft != 11);
    mq_model_free(w);
    mq_plan_free(p);
    mq_model_free(m);
    return T_PASS;
}

const struct mq_test preset_tests[] = {
    {"preset/names", test_names},
    {"preset/tinyllm", test_tinyllm},
    {"preset/synth-gqa4", test_synth_gqa4},
    {"preset/synth-mha", test_synth_mha},
    {"preset/synth-70b", test_synth_70b},
    {"preset/smollm2", test_smollm2},
    {"preset/imatrix-from-model", test_imatrix_from_model},
    {"preset/file-type", test_file_type},
    {NULL, NULL},
};
