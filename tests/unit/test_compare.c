/* tests/unit/test_compare.c - hardware comparison reports (reports/compare.h) and the
 * writer under them (reports/doc.h): escaping, inline SVG, the front reader, loading checks,
 * the shape table and speed-ups, the bound analysis, and whole reports. Profiles are made
 * here with known figures, written with rpt_profile_write and read back as mixq compare
 * reads them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/status.h"
#include "reports/compare.h"
#include "reports/doc.h"
#include "reports/front_io.h"
#include "reports/plot.h"
#include "reports/profile_io.h"
#include "tests/unit/test.h"

/* ---- helpers ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* What a FILE* writer printed, as a string the caller frees. */
#define CAPTURE(buf, call)                                                                         \
    do {                                                                                           \
        size_t len_;                                                                               \
        FILE *f_ = open_memstream(&(buf), &len_);                                                  \
        T_CHECK(f_ != NULL);                                                                       \
        call;                                                                                      \
        fclose(f_);                                                                                \
    } while (0)

enum { LAYERS = 4 };
static const char *const layer_names[LAYERS] = {"token_embd.weight", "blk.0.attn_q.weight",
                                                "blk.1.attn_q.weight", "output.<b>&weight"};
static const int64_t layer_k[LAYERS] = {64, 64, 64, 64}, layer_n[LAYERS] = {259, 64, 64, 96};
/* us per workload run: f16, q8_0, the third format (q4_0 unless the spec says), and an
 * extra format where the spec asks for one */
static const double layer_us[LAYERS][4] = {
    {0, 0, 0, 0}, {100, 50, 200, 250}, {100, 50, 200, 250}, {300, 100, 60, 75}};
/* us per workload run end to end, the same formats */
static const double e2e_us[4] = {1000, 500, 1200, 1100};

struct prof_spec {
    uint64_t hash;
    const char *workload;
    bool emulated;
    bool counters;       /* PAPI_TOT_CYC, PAPI_TOT_INS, perf::TASK-CLOCK */
    const char *rename0; /* another name for layer 1, or NULL */
    enum mq_dtype third; /* the profile's third format; 0 (f32): q4_0, as mixq profiled before
                            the K-quants; q4_k as the default menu profiles now */
    bool third_no_e2e;   /* the third format per layer only, not end to end */
    bool third_gap;      /* the third format not on the attn_q layers (as rows it cannot take) */
    enum mq_dtype extra; /* a fourth format, measured per layer and end to end; 0: none */
};

/* A profile of the 4-layer model above, with costs and end-to-end runs, written to path. */
static int write_profile(const char *path, const struct prof_spec *s)
{
    struct prof_profile *p;
    if (prof_profile_alloc(LAYERS, &p) < 0)
        return -1;
    snprintf(p->model_path, sizeof(p->model_path), "models/<script>alert(1)</script>&\"x\".gguf");
    snprintf(p->model_name, sizeof(p->model_name), "tiny<i>");
    snprintf(p->arch, sizeof(p->arch), "llama");
    p->model_hash = s->hash;
    if (mq_workload_parse(s->workload, &p->workload) < 0) {
        prof_profile_free(p);
        return -1;
    }
    const enum mq_dtype fmts[4] = {MQ_DTYPE_F16, MQ_DTYPE_Q8_0, s->third ? s->third : MQ_DTYPE_Q4_0,
                                   s->extra};
    int n_fmts = s->extra ? 4 : 3;
    p->formats = 0;
    for (int k = 0; k < n_fmts; k++)
        p->formats |= 1u << fmts[k];
    for (int l = 0; l < LAYERS; l++) {
        snprintf(p->layer_names[l], sizeof(p->layer_names[l]), "%s",
                 l == 1 && s->rename0 ? s->rename0 : layer_names[l]);
        p->layer_in[l] = layer_k[l];
        p->layer_out[l] = layer_n[l];
        for (int k = 0; k < n_fmts; k++)
            if (!(k == 2 && s->third_gap && (l == 1 || l == 2)))
                p->layer_ns[l * MQ_DTYPE_COUNT + fmts[k]] = layer_us[l][k] * 1e3;
    }
    struct prof_target *t = &p->target;
    snprintf(t->cpu, sizeof(t->cpu), "Test CPU");
    snprintf(t->arch, sizeof(t->arch), s->emulated ? "aarch64" : "x86_64");
    snprintf(t->backend, sizeof(t->backend), s->emulated ? "neon" : "cpu");
    snprintf(t->backend_detail, sizeof(t->backend_detail), "path %s: for the test",
             s->emulated ? "dotprod" : "avx2");
    t->cores = t->threads = 2;
    t->pinned = true;
    t->emulated = s->emulated;
    snprintf(t->emulated_why, sizeof(t->emulated_why), "%s",
             s->emulated ? "qemu-aarch64 runs this process" : "");
    t->dram_read_gbs = 20;
    t->fma_gflops = 100;
    t->int8_gops = 400;
    if (s->counters) {
        p->n_events = 3;
        snprintf(p->events[0], sizeof(p->events[0]), "PAPI_TOT_CYC");
        snprintf(p->events[1], sizeof(p->events[1]), "PAPI_TOT_INS");
        snprintf(p->events[2], sizeof(p->events[2]), "perf::TASK-CLOCK");
    } else {
        p->n_events = 1;
        snprintf(p->events[0], sizeof(p->events[0]), "perf::TASK-CLOCK");
        p->n_missing = 2;
        snprintf(p->missing[0], sizeof(p->missing[0]), "PAPI_TOT_CYC");
        snprintf(p->missing[1], sizeof(p->missing[1]), "PAPI_TOT_INS");
        snprintf(p->missing_why[0], sizeof(p->missing_why[0]),
                 "perf_event is disabled <in this VM>");
        snprintf(p->missing_why[1], sizeof(p->missing_why[1]),
                 "perf_event is disabled <in this VM>");
    }
    /* one cost per shape and format, as the profiler measures them */
    p->costs = calloc(2 * (size_t)n_fmts, sizeof(*p->costs));
    if (!p->costs) {
        prof_profile_free(p);
        return -1;
    }
    for (int sh = 0; sh < 2; sh++)
        for (int k = 0; k < n_fmts; k++) {
            if (k == 2 && s->third_gap && sh == 0)
                continue;
            struct prof_cost *c = &p->costs[p->n_costs++];
            int l = sh ? 3 : 1;
            c->K = layer_k[l];
            c->N = layer_n[l];
            c->M = 1;
            c->fmt = fmts[k];
            c->time = (struct prof_stats){.reps = 10,
                                          .min_ns = layer_us[l][k] * 1e3 * 0.9,
                                          .median_ns = layer_us[l][k] * 1e3,
                                          .mad_ns = 1e3,
                                          .mean_ns = layer_us[l][k] * 1e3};
            c->weight_bytes = (uint64_t)(c->K * c->N * 2);
            c->copies = 1;
            c->warm = true;
            c->has_counters = true;
            c->counters[0] = 1e6; /* cycles, or task-clock ns */
            c->counters[1] = 2e6; /* instructions */
            c->counters[2] = 1.8 * c->time.median_ns;
            if (!s->counters)
                c->counters[0] = 1.8 * c->time.median_ns;
        }
    for (int k = 0; k < n_fmts; k++) {
        if (k == 2 && s->third_no_e2e)
            continue;
        struct prof_e2e *e = &p->e2e[p->n_e2e++];
        e->fmt = fmts[k];
        e->time = (struct prof_stats){.reps = 20,
                                      .min_ns = e2e_us[k] * 900,
                                      .median_ns = e2e_us[k] * 1e3,
                                      .mad_ns = 5e3,
                                      .mean_ns = e2e_us[k] * 1e3};
        e->sum_layers_ns = e2e_us[k] * 800;
    }
    p->glue_ns = 100e3;
    int rc = rpt_profile_write(p, path);
    prof_profile_free(p);
    return rc;
}

static const char front_yaml[] =
    "mixq_schema: front/1\n"
    "model: {path: x.gguf, name: tiny, arch: llama, content_hash: %s, layers: 4}\n"
    "workload: decode:512\n"
    "target: {cpu: Test CPU, backend: cpu, backend_detail: 'path avx2: for the test',\n"
    "         threads: 2, emulated: false}\n"
    "budgets: {memory_bytes: 1000000, latency_us: null}\n"
    "search: {points: 10}\n"
    "sensitivity: {method: proxy, loss: rel_mse}\n"
    "metric: {name: ppl}\n"
    "points:\n"
    "- index: 0\n"
    "  predicted: {memory_bytes: 900000, latency_us: 120, loss: 0.08}\n"
    "  plan: {default: q4_0, layers: {}}\n"
    "- index: 3\n"
    "  predicted: {memory_bytes: 950000, latency_us: 110, loss: 0.02}\n"
    "  plan: {default: q4_0, layers: {blk.0.attn_q.weight: q8_0}}\n"
    "  measured: {memory_bytes: 940000, latency_us: 130, latency_mad_us: 2, kl: 0.001,\n"
    "             metric: 4.4, meets_budgets: true, on_measured_front: true}\n"
    "- index: 7\n"
    "  predicted: {memory_bytes: 990000, latency_us: 140, loss: 0.01}\n"
    "  plan: {default: q8_0, layers: {}}\n"
    "baselines:\n"
    "- label: uniform f16\n"
    "  plan: {default: f16, layers: {}}\n"
    "  predicted: {memory_bytes: 2000000, latency_us: 150, loss: 1.0e-07}\n"
    "  measured: {memory_bytes: 2100000, latency_us: 160, kl: 1.0e-08, meets_budgets: false}\n"
    "chosen: {index: 3, label: front point 3}\n";

static int write_front(const char *path, const char *hash)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, front_yaml, hash);
    return fclose(f) == 0 ? 0 : -1;
}

static void tmp_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/compare-%s", t_tmpdir(), name);
}

/* ---- the writer ---- */

static int test_html_escape(void)
{
    char *out = NULL;
    CAPTURE(out, rpt_html_escape(f_, "<script>alert(\"x\")&'</script>\x01ok"));
    T_CHECK_MSG(!strcmp(out, "&lt;script&gt;alert(&quot;x&quot;)&amp;&#39;&lt;/script&gt;ok"),
                "got %s", out);
    free(out);
    return T_PASS;
}

static int test_md_escape(void)
{
    char *out = NULL;
    CAPTURE(out, rpt_md_escape(f_, "a|b_c*[d]<e>\n#x _y_"));
    T_CHECK_MSG(!strcmp(out, "a\\|b_c\\*\\[d\\]\\<e> \\#x \\_y\\_"), "got %s", out);
    free(out);
    CAPTURE(out, rpt_md_escape(f_, "> quote"));
    T_CHECK_MSG(!strcmp(out, "\\> quote"), "got %s", out);
    free(out);
    CAPTURE(out, rpt_md_code(f_, "blk.0.attn_q.weight"));
    T_CHECK_MSG(!strcmp(out, "`blk.0.attn_q.weight`"), "got %s", out);
    free(out);
    CAPTURE(out, rpt_md_code(f_, "a`b|c"));
    T_CHECK_MSG(!strcmp(out, "``a`b\\|c``"), "got %s", out);
    free(out);
    return T_PASS;
}

static int test_svg_inline(void)
{
    static const char svg[] =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE svg>\n<svg width=\"10\" viewBox=\"0 0 10 10\">\n"
        "<defs><path id='gpPt0' d='M0,0'/><filter id=\"g\"/></defs>\n"
        "<use xlink:href='#gpPt0' fill=\"url(#g)\"/><a href=\"http://x\">t id=\"y\"</a>\n"
        "<text>a &lt; b</text></svg>\n";
    char *out = NULL;
    int rc = 0;
    CAPTURE(out, rc = rpt_svg_inline(f_, svg, sizeof(svg) - 1, "s4", "a \"plot\""));
    T_CHECK(rc == MQ_OK);
    T_CHECK_MSG(
        !strncmp(out,
                 "<svg class=\"plot\" role=\"img\" aria-label=\"a &quot;plot&quot;\" width=\"10\"",
                 70),
        "got %.80s", out);
    T_CHECK(!strstr(out, "<?xml") && !strstr(out, "DOCTYPE"));
    T_CHECK(strstr(out, "id='s4-gpPt0'") && strstr(out, "id=\"s4-g\""));
    T_CHECK(strstr(out, "xlink:href='#s4-gpPt0'") && strstr(out, "url(#s4-g)"));
    T_CHECK(strstr(out, "href=\"http://x\"")); /* not a reference to an id */
    T_CHECK(strstr(out, ">t id=\"y\"<"));      /* text is not touched */
    T_CHECK(strstr(out, "a &lt; b"));
    free(out);
    CAPTURE(out, rc = rpt_svg_inline(f_, "<html></html>", 13, "s1", "x"));
    T_CHECK(rc == MQ_EFORMAT);
    free(out);
    return T_PASS;
}

/* ---- reading ---- */

static int test_front_read(void)
{
    char path[4096];
    tmp_path(path, sizeof(path), "front.yaml");
    T_CHECK(write_front(path, "0000000000000abc") == 0);
    struct rpt_front_file *f;
    T_CHECK(rpt_front_file_read(path, &f) == MQ_OK);
    T_CHECK(f->model_hash == 0xabc && f->n_layers == 4);
    T_CHECK(f->n_points == 3 && f->n_baselines == 1 && f->front_points == 10);
    T_CHECK(f->mem_budget_bytes == 1e6 && isinf(f->lat_budget_ns));
    T_CHECK(f->chosen == 1 && f->chosen_baseline == -1);
    T_CHECK(f->points[1].measured && !f->points[0].measured);
    T_CHECK(fabs(f->points[1].lat_ns - 130e3) < 1e-6 && fabs(f->points[1].kl - 0.001) < 1e-12);
    T_CHECK_MSG(!strcmp(f->points[1].plan, "q4_0 x 3, q8_0 x 1"), "plan '%s'", f->points[1].plan);
    T_CHECK_MSG(!strcmp(f->points[2].plan, "q8_0 x 4"), "plan '%s'", f->points[2].plan);
    T_CHECK(!strcmp(f->baselines[0].label, "uniform f16") && f->baselines[0].index == -1);
    T_CHECK(!strcmp(f->backend, "cpu") && !strcmp(f->loss_name, "rel_mse"));
    rpt_front_file_free(f);
    rpt_front_file_free(NULL);

    /* a newer schema, and a profile given as a front */
    FILE *o = fopen(path, "w");
    T_CHECK(o != NULL);
    fputs("mixq_schema: front/2\nmodel: {content_hash: abc}\n", o);
    fclose(o);
    T_CHECK(rpt_front_file_read(path, &f) == MQ_EUNSUPPORTED && f == NULL);
    tmp_path(path, sizeof(path), "prof-as-front.yaml");
    T_CHECK(write_profile(path, &(struct prof_spec){.hash = 0xabc, .workload = "decode:512"}) == 0);
    T_CHECK(rpt_front_file_read(path, &f) == MQ_EFORMAT && f == NULL);
    return T_PASS;
}

/* Loads profiles (and fronts) written from specs; returns rpt_cmp_load's status. */
static int load(const struct prof_spec *specs, int n, const char *front_hash, struct rpt_cmp **out)
{
    char paths[4][4096], fpath[4096];
    const char *pp[4];
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p%d.yaml", i);
        tmp_path(paths[i], sizeof(paths[i]), name);
        if (write_profile(paths[i], &specs[i]) < 0)
            return -100;
        pp[i] = paths[i];
    }
    tmp_path(fpath, sizeof(fpath), "f0.yaml");
    if (front_hash && write_front(fpath, front_hash) < 0)
        return -100;
    const char *fp[1] = {fpath};
    struct rpt_cmp_inputs in = {
        .profiles = pp, .n_profiles = n, .fronts = fp, .n_fronts = front_hash ? 1 : 0};
    return rpt_cmp_load(&in, out);
}

static int test_load_checks(void)
{
    struct rpt_cmp *c = NULL;
    struct prof_spec ok = {.hash = 0xabc, .workload = "decode:512"};
    struct prof_spec s[2] = {ok, ok};
    T_CHECK(load(s, 2, "0000000000000abc", &c) == MQ_OK && c);
    rpt_cmp_free(c);
    rpt_cmp_free(NULL);
    /* another model's content */
    s[1].hash = 0xdef;
    T_CHECK(load(s, 2, NULL, &c) == MQ_EINVAL && c == NULL);
    /* same content hash, other layer names */
    s[1] = ok;
    s[1].rename0 = "blk.0.attn_k.weight";
    T_CHECK(load(s, 2, NULL, &c) == MQ_EINVAL && c == NULL);
    /* another workload */
    s[1] = ok;
    s[1].workload = "prefill:64";
    T_CHECK(load(s, 2, NULL, &c) == MQ_EINVAL && c == NULL);
    /* a front of another model */
    s[1] = ok;
    T_CHECK(load(s, 2, "0000000000000def", &c) == MQ_EINVAL && c == NULL);
    /* a profile of a newer schema version */
    char path[4096];
    tmp_path(path, sizeof(path), "p0.yaml");
    char *text = slurp(path);
    T_CHECK(text && !strncmp(text, "mixq_schema: profile/1\n", 23));
    text[21] = '9';
    FILE *o = fopen(path, "w");
    T_CHECK(o != NULL);
    fputs(text, o);
    fclose(o);
    free(text);
    const char *pp[1] = {path};
    T_CHECK(rpt_cmp_load(&(struct rpt_cmp_inputs){.profiles = pp, .n_profiles = 1}, &c) ==
            MQ_EUNSUPPORTED);
    T_CHECK(rpt_cmp_load(&(struct rpt_cmp_inputs){.profiles = pp, .n_profiles = 0}, &c) ==
            MQ_EINVAL);
    return T_PASS;
}

static int test_shapes(void)
{
    struct rpt_cmp *c = NULL;
    struct prof_spec s[2] = {{.hash = 0xabc, .workload = "decode:512"},
                             {.hash = 0xabc, .workload = "decode:512", .emulated = true}};
    T_CHECK(load(s, 2, "0000000000000abc", &c) == MQ_OK);
    int rc = T_FAIL;
    /* the lookup is left out; the two attn_q layers share a shape */
    if (c->n_lookups != 1 || c->n_shapes != 2)
        goto done;
    const struct rpt_cmp_shape *a = &c->shapes[0], *b = &c->shapes[1];
    if (a->K != 64 || a->N != 64 || a->n_layers != 2 || strcmp(a->roles, "attn_q") || b->N != 96 ||
        strcmp(b->roles, "output.<b>&weight")) {
        fprintf(stderr, "    shapes: %lld->%lld x%d '%s', %lld->%lld '%s'\n", (long long)a->K,
                (long long)a->N, a->n_layers, a->roles, (long long)b->K, (long long)b->N, b->roles);
        goto done;
    }
    if (fabs(rpt_cmp_speedup(a, 0, MQ_DTYPE_Q8_0) - 2.0) > 1e-9 ||
        fabs(rpt_cmp_speedup(a, 1, MQ_DTYPE_Q4_0) - 0.5) > 1e-9 ||
        fabs(rpt_cmp_speedup(b, 0, MQ_DTYPE_Q4_0) - 5.0) > 1e-9 ||
        !isnan(rpt_cmp_speedup(a, 0, MQ_DTYPE_BF16)))
        goto done;
    if (fabs(rpt_cmp_e2e_speedup(c->targets[0].prof, MQ_DTYPE_Q8_0) - 2.0) > 1e-9 ||
        fabs(rpt_cmp_e2e_speedup(c->targets[0].prof, MQ_DTYPE_Q4_0) - 1000.0 / 1200.0) > 1e-9)
        goto done;
    /* profiles of f16, q8_0 and q4_0 (mixq before the K-quants) compare those three */
    if (c->fmt[RPT_CMP_BASE] != MQ_DTYPE_F16 || c->fmt[RPT_CMP_8BIT] != MQ_DTYPE_Q8_0 ||
        c->fmt[RPT_CMP_LOW] != MQ_DTYPE_Q4_0 || !c->low_shared) {
        fprintf(stderr, "    compared %s %s %s (shared %d)\n", mq_dtype_name(c->fmt[0]),
                mq_dtype_name(c->fmt[1]), mq_dtype_name(c->fmt[2]), c->low_shared);
        goto done;
    }
    /* labels from backend and path; the front of the same target takes its label */
    if (strcmp(c->targets[0].label, "cpu avx2") ||
        strcmp(c->targets[1].label, "neon dotprod (emulated)") ||
        strcmp(c->targets[1].slug, "t2-neon-dotprod-emulated") || c->fronts[0].target != 0 ||
        strcmp(c->fronts[0].label, "cpu avx2")) {
        fprintf(stderr, "    labels '%s' '%s' '%s' '%s'\n", c->targets[0].label,
                c->targets[1].label, c->targets[1].slug, c->fronts[0].label);
        goto done;
    }
    rc = T_PASS;
done:
    rpt_cmp_free(c);
    return rc;
}

/* ---- the compared formats ---- */

/* Loads profiles of specs; checks the third compared format, whether it is shared, and
 * that the note names exactly the targets in `lacking` (NULL: no note). */
static int check_pick(const struct prof_spec *specs, int n, enum mq_dtype want, bool shared,
                      const char *lacking)
{
    struct rpt_cmp *c = NULL;
    T_CHECK(load(specs, n, NULL, &c) == MQ_OK);
    char note[1024];
    rpt_cmp_low_note(c, note, sizeof(note));
    enum mq_dtype got = c->fmt[RPT_CMP_LOW];
    bool got_shared = c->low_shared;
    bool fixed = c->fmt[RPT_CMP_BASE] == MQ_DTYPE_F16 && c->fmt[RPT_CMP_8BIT] == MQ_DTYPE_Q8_0;
    rpt_cmp_free(c);
    const char *tail = strstr(note, "(not measured) for ");
    T_CHECK(fixed);
    T_CHECK_MSG(got == want && got_shared == shared, "compared %s (shared %d), want %s (%d)",
                mq_dtype_name(got), got_shared, mq_dtype_name(want), shared);
    if (!lacking)
        T_CHECK_MSG(!note[0], "note '%s'", note);
    else
        T_CHECK_MSG(tail && !strcmp(tail + 19, lacking), "note '%s', want it to end '%s'", note,
                    lacking);
    return T_PASS;
}

static int test_formats(void)
{
    const struct prof_spec q40 = {.hash = 0xabc, .workload = "decode:512"};
    struct prof_spec q4k = q40, a, b;
    q4k.third = MQ_DTYPE_Q4_K;
    /* the default menu's profiles: q4_k */
    T_CHECK(check_pick((struct prof_spec[]){q4k, q4k}, 2, MQ_DTYPE_Q4_K, true, NULL) == T_PASS);
    T_CHECK(check_pick(&q4k, 1, MQ_DTYPE_Q4_K, true, NULL) == T_PASS);
    /* q4_k on one only: q4_0, which both measured */
    a = q40;
    a.extra = MQ_DTYPE_Q4_K;
    T_CHECK(check_pick((struct prof_spec[]){a, q40}, 2, MQ_DTYPE_Q4_0, true, NULL) == T_PASS);
    /* neither: the narrowest integer format both measured (q3_k before q5_k), and the
     * only one they share (q6_k, though one of them has the narrower q5_k) */
    a = q40;
    a.third = MQ_DTYPE_Q5_K;
    a.extra = MQ_DTYPE_Q3_K;
    T_CHECK(check_pick((struct prof_spec[]){a, a}, 2, MQ_DTYPE_Q3_K, true, NULL) == T_PASS);
    a.extra = MQ_DTYPE_Q6_K;
    b = q40;
    b.third = MQ_DTYPE_Q6_K;
    T_CHECK(check_pick((struct prof_spec[]){a, b}, 2, MQ_DTYPE_Q6_K, true, NULL) == T_PASS);
    /* none shared: the one most profiles measured, q4_k on a tie; the note names the others */
    T_CHECK(check_pick((struct prof_spec[]){q4k, q40}, 2, MQ_DTYPE_Q4_K, false, "cpu avx2 #2") ==
            T_PASS);
    T_CHECK(check_pick((struct prof_spec[]){q40, q4k, q40}, 3, MQ_DTYPE_Q4_0, false,
                       "cpu avx2 #2") == T_PASS);
    /* measured per layer but not in a profile's end-to-end runs: not measured there */
    b = q4k;
    b.third_no_e2e = true;
    b.emulated = true;
    T_CHECK(check_pick((struct prof_spec[]){q4k, b}, 2, MQ_DTYPE_Q4_K, false,
                       "neon dotprod (emulated)") == T_PASS);

    /* a profile without end-to-end runs counts what it measured per layer */
    struct prof_profile *p;
    T_CHECK(prof_profile_alloc(2, &p) == MQ_OK);
    p->layer_ns[1 * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_K] = 5e3;
    p->layer_ns[0 * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0] = 0; /* a lookup: no matmul */
    bool ok = rpt_cmp_measured(p, MQ_DTYPE_Q4_K) && !rpt_cmp_measured(p, MQ_DTYPE_Q4_0) &&
              !rpt_cmp_measured(p, MQ_DTYPE_Q8_0);
    /* with end-to-end runs, only those formats */
    p->n_e2e = 1;
    p->e2e[0] = (struct prof_e2e){.fmt = MQ_DTYPE_Q8_0, .time = {.median_ns = 1e6}};
    ok = ok && !rpt_cmp_measured(p, MQ_DTYPE_Q4_K);
    p->e2e[0].fmt = MQ_DTYPE_Q4_K;
    ok = ok && rpt_cmp_measured(p, MQ_DTYPE_Q4_K);
    prof_profile_free(p);
    T_CHECK(ok);
    return T_PASS;
}

/* ---- explanations ---- */

static int test_explain(void)
{
    struct prof_profile *p;
    T_CHECK(prof_profile_alloc(1, &p) == MQ_OK);
    p->target.threads = 2;
    p->target.dram_read_gbs = 20;
    p->target.int8_gops = 1000;
    p->target.fma_gflops = 200;
    p->n_events = 3;
    snprintf(p->events[0], sizeof(p->events[0]), "PAPI_TOT_CYC");
    snprintf(p->events[1], sizeof(p->events[1]), "PAPI_TOT_INS");
    snprintf(p->events[2], sizeof(p->events[2]), "perf::TASK-CLOCK");
    /* q4_0 GEMV 4096 -> 4096: 2.36 MB of weights in 1 ms (2.4 GB/s, 12% of DRAM), IPC 3.1,
     * 0.4 bytes/instruction, both threads busy */
    struct prof_cost c = {.K = 4096,
                          .N = 4096,
                          .M = 1,
                          .fmt = MQ_DTYPE_Q4_0,
                          .weight_bytes = 2359296,
                          .has_counters = true,
                          .warm = false};
    c.time.median_ns = 1e6;
    double ins = (double)c.weight_bytes / 0.4;
    c.counters[0] = ins / 3.1;
    c.counters[1] = ins;
    c.counters[2] = 1.9e6;
    struct rpt_bound_info b;
    char text[512];
    rpt_cmp_explain(p, &c, &b);
    rpt_cmp_explain_text(&c, &b, text, sizeof(text));
    int rc = T_FAIL;
    if (b.kind != RPT_BOUND_INSTRUCTIONS || fabs(b.ipc - 3.1) > 1e-9 ||
        fabs(b.bytes_per_ins - 0.4) > 1e-9 || fabs(b.cpus_busy - 1.9) > 1e-9 ||
        fabs(b.dram_frac - 2.359296 / 20) > 1e-9 ||
        !strstr(text, "q4_0 GEMV 4096->4096 is bound by instruction throughput: IPC 3.1, 0.4 "
                      "weight bytes/instruction")) {
        fprintf(stderr, "    kind %d ipc %g bpi %g busy %g: %s\n", b.kind, b.ipc, b.bytes_per_ins,
                b.cpus_busy, text);
        goto done;
    }
    /* stalls */
    c.counters[0] = ins / 0.5;
    rpt_cmp_explain(p, &c, &b);
    if (b.kind != RPT_BOUND_STALLS)
        goto done;
    /* in between */
    c.counters[0] = ins / 1.5;
    rpt_cmp_explain(p, &c, &b);
    if (b.kind != RPT_BOUND_MIXED)
        goto done;
    /* threads waiting: CPU time 1.0 x wall with 2 threads */
    c.counters[2] = 1.0e6;
    rpt_cmp_explain(p, &c, &b);
    if (b.kind != RPT_BOUND_THREADS)
        goto done;
    /* an implausible CPU/wall (another pass ran slower) is dropped */
    c.counters[2] = 40e6;
    rpt_cmp_explain(p, &c, &b);
    if (!isnan(b.cpus_busy) || b.kind != RPT_BOUND_MIXED)
        goto done;
    /* cold weights at 16 GB/s of 20: DRAM; the same warm: not DRAM */
    c.time.median_ns = (double)c.weight_bytes / 16.0;
    rpt_cmp_explain(p, &c, &b);
    if (b.kind != RPT_BOUND_DRAM || fabs(b.dram_frac - 0.8) > 1e-9)
        goto done;
    c.warm = true;
    rpt_cmp_explain(p, &c, &b);
    if (b.kind == RPT_BOUND_DRAM)
        goto done;
    /* compute: 700 GOP/s of the 1000 int8 peak */
    c.time.median_ns = 2.0 * 4096 * 4096 / 700.0;
    rpt_cmp_explain(p, &c, &b);
    if (b.kind != RPT_BOUND_COMPUTE || fabs(b.peak_frac - 0.7) > 1e-9)
        goto done;
    /* every integer format against the int8 dot-product peak, the float ones against theirs */
    p->target.bf16_gflops = 300;
    static const struct {
        enum mq_dtype fmt;
        double peak;
        const char *name;
    } peaks[] = {{MQ_DTYPE_Q4_K, 1000, "int8 dot-product"},
                 {MQ_DTYPE_Q8_0, 1000, "int8 dot-product"},
                 {MQ_DTYPE_Q3_K, 1000, "int8 dot-product"},
                 {MQ_DTYPE_IQ4_XS, 1000, "int8 dot-product"},
                 {MQ_DTYPE_F16, 200, "f32 FMA"},
                 {MQ_DTYPE_BF16, 300, "bf16 dot-product"}};
    for (size_t i = 0; i < sizeof(peaks) / sizeof(peaks[0]); i++) {
        struct prof_cost ci = c;
        ci.fmt = peaks[i].fmt;
        rpt_cmp_explain(p, &ci, &b);
        if (b.peak != peaks[i].peak || strcmp(b.peak_name, peaks[i].name)) {
            fprintf(stderr, "    %s against %g (%s)\n", mq_dtype_name(ci.fmt), b.peak, b.peak_name);
            goto done;
        }
    }
    c.fmt = MQ_DTYPE_Q4_K;
    rpt_cmp_explain(p, &c, &b);
    rpt_cmp_explain_text(&c, &b, text, sizeof(text));
    if (b.kind != RPT_BOUND_COMPUTE ||
        !strstr(text, "q4_k GEMV 4096->4096 is bound by compute peak") ||
        !strstr(text, "70.0% of the int8 dot-product peak")) {
        fprintf(stderr, "    q4_k: %s\n", text);
        goto done;
    }
    c.fmt = MQ_DTYPE_Q4_0;
    /* no counters: unknown, and the text says why */
    p->n_events = 0;
    c.time.median_ns = 1e6;
    c.warm = false;
    rpt_cmp_explain(p, &c, &b);
    rpt_cmp_explain_text(&c, &b, text, sizeof(text));
    if (b.kind != RPT_BOUND_UNKNOWN || !isnan(b.ipc) ||
        !strstr(text, "without cycle and instruction counters")) {
        fprintf(stderr, "    kind %d: %s\n", b.kind, text);
        goto done;
    }
    /* emulated */
    p->target.emulated = true;
    rpt_cmp_explain(p, &c, &b);
    rpt_cmp_explain_text(&c, &b, text, sizeof(text));
    if (b.kind != RPT_BOUND_EMULATED || !strstr(text, "emulat"))
        goto done;
    rc = T_PASS;
done:
    prof_profile_free(p);
    return rc;
}

/* ---- whole reports ---- */

static int test_report_tables(void)
{
    struct rpt_cmp *c = NULL;
    struct prof_spec s[2] = {{.hash = 0xabc, .workload = "decode:512", .counters = true},
                             {.hash = 0xabc, .workload = "decode:512", .emulated = true}};
    T_CHECK(load(s, 2, "0000000000000abc", &c) == MQ_OK);
    char dir[4096], path[4200];
    tmp_path(dir, sizeof(dir), "report-tables");
    int rc = rpt_cmp_write(c, dir, false);
    rpt_cmp_free(c);
    T_CHECK(rc == MQ_OK);
    snprintf(path, sizeof(path), "%s/report.html", dir);
    char *html = slurp(path);
    snprintf(path, sizeof(path), "%s/report.md", dir);
    char *md = slurp(path);
    rc = T_FAIL;
    if (!html || !md)
        goto done;
    /* names from files are escaped: no markup from them survives */
    if (strstr(html, "<script") || strstr(html, "<b>&") || strstr(html, "<i>") ||
        !strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;x&quot;.gguf") ||
        !strstr(html, "output.&lt;b&gt;&amp;weight") ||
        !strstr(html, "perf_event is disabled &lt;in this VM&gt;")) {
        fprintf(stderr, "    unescaped or missing names in the HTML\n");
        goto done;
    }
    /* Markdown: literal inside code spans (CommonMark reads them as text), escaped elsewhere */
    if (!strstr(md, "`output.<b>&weight`") ||
        !strstr(md, "`models/<script>alert(1)</script>&\"x\".gguf`") ||
        !strstr(md, "# Hardware comparison: tiny\\<i> on 2 targets") || strstr(md, " <i>")) {
        fprintf(stderr, "    unescaped or missing names in the Markdown\n");
        goto done;
    }
    /* the emulated target stands out; speed-ups below 1 are highlighted */
    if (!strstr(html, "class=\"box warn\"><strong>EMULATED: neon dotprod (emulated).</strong>") ||
        !strstr(md, "> **EMULATED: neon dotprod (emulated).**")) {
        fprintf(stderr, "    no emulated warning\n");
        goto done;
    }
    if (!strstr(html, "<td class=\"num bad\">0.50x</td>") || !strstr(md, "| **0.50x** |") ||
        !strstr(html, "<td class=\"num good\">2.00x</td>") ||
        !strstr(html, "<td class=\"num bad\">0.83x</td>")) {
        fprintf(stderr, "    speed-up cells not as expected\n");
        goto done;
    }
    /* counters explained where they exist, a plain statement where not */
    if (!strstr(html, "Hardware counters: <code>PAPI_TOT_CYC</code>") ||
        !strstr(html, "is emulated: its counters and times count the emulator") ||
        !strstr(html, "plots were turned off")) {
        fprintf(stderr, "    counter statements missing\n");
        goto done;
    }
    /* a front's chosen plan */
    if (!strstr(html, "q4_0 x 3, q8_0 x 1") || count(html, "<table>") != 7) {
        fprintf(stderr, "    front table or table count (%d) off\n", count(html, "<table>"));
        goto done;
    }
    rc = T_PASS;
done:
    free(html);
    free(md);
    return rc;
}

/* Profiles of the default menu (q4_k, no q4_0): q4_k columns, titles and findings, and no
 * q4_0 anywhere; with profiles that share no 4-bit-class format, a note and "-" cells. */
static int test_report_q4k(void)
{
    struct rpt_cmp *c = NULL;
    struct prof_spec s[2] = {
        {.hash = 0xabc, .workload = "decode:512", .counters = true, .third = MQ_DTYPE_Q4_K},
        {.hash = 0xabc, .workload = "decode:512", .emulated = true, .third = MQ_DTYPE_Q4_K}};
    T_CHECK(load(s, 2, NULL, &c) == MQ_OK);
    char gp[4096];
    bool plots = rpt_gnuplot_find(gp, sizeof(gp)) == MQ_OK;
    char dir[4096], path[4200];
    tmp_path(dir, sizeof(dir), "report-q4k");
    int rc = rpt_cmp_write(c, dir, plots);
    rpt_cmp_free(c);
    T_CHECK(rc == MQ_OK);
    snprintf(path, sizeof(path), "%s/report.html", dir);
    char *html = slurp(path);
    snprintf(path, sizeof(path), "%s/report.md", dir);
    char *md = slurp(path);
    snprintf(path, sizeof(path), "%s/plots/speedup.gp", dir);
    char *speedup_gp = plots ? slurp(path) : NULL;
    rc = T_FAIL;
    if (!html || !md || (plots && !speedup_gp))
        goto done;
    if (!strstr(md, "| target | f16 (us) | q8_0 (us) | q4_k (us) | q8_0 vs f16 | q4_k vs f16 | "
                    "latency model |") ||
        !strstr(md, "| f16 (us) | q8_0 (us) | q4_k (us) | q8_0 vs f16 | q4_k vs f16 |\n") ||
        !strstr(html, "<th>q4_k vs f16</th>")) {
        fprintf(stderr, "    no q4_k columns\n");
        goto done;
    }
    /* q4_k end to end: 1000 / 1200 us; the output shape 300 / 60 us */
    if (!strstr(html, "end to end, q8_0 runs 2.00x and q4_k 0.83x<strong> (slower than "
                      "f16)</strong> the speed of f16") ||
        !strstr(html, "q4_k is slower than f16 on 1 of 2 layer shapes") ||
        !strstr(html, "<td class=\"num good\">5.00x</td>") ||
        !strstr(html, "speed-up of q8_0 and q4_k over f16 on the same target") ||
        !strstr(html, "q4_k GEMV 64-&gt;64")) {
        fprintf(stderr, "    q4_k findings, cells or explanations missing\n");
        goto done;
    }
    if (count(html, "q4_0") || count(md, "q4_0") || strstr(html, "share no format")) {
        fprintf(stderr, "    q4_0 or a note in a report of q4_k profiles\n");
        goto done;
    }
    if (plots && (!strstr(speedup_gp, "Speed-up of q8_0 and q4_k over f16") ||
                  !strstr(speedup_gp, "solid q8_0, dashed q4_k") || strstr(speedup_gp, "q4_0"))) {
        fprintf(stderr, "    speed-up plot not of q4_k\n");
        goto done;
    }
    /* a q4_0 profile beside a q4_k one: no shared format, said, and "-" where not measured */
    s[1].third = MQ_DTYPE_Q4_0;
    s[1].emulated = false;
    T_CHECK(load(s, 2, NULL, &c) == MQ_OK);
    tmp_path(dir, sizeof(dir), "report-mixed");
    rc = rpt_cmp_write(c, dir, false);
    rpt_cmp_free(c);
    free(md);
    snprintf(path, sizeof(path), "%s/report.md", dir);
    md = slurp(path);
    bool written = rc == MQ_OK && md;
    rc = T_FAIL;
    if (!written)
        goto done;
    if (count(md, "> The profiles share no format narrower than q8_0 measured end to end and per "
                  "layer: the q4_k columns show q4_k where it was measured, and \"-\" (not "
                  "measured) for cpu avx2 \\#2.") != 2 ||
        !strstr(md, "| cpu avx2 \\#2 | 1000 ± 5.00 | 500 ± 5.00 | - | 2.00x | - |")) {
        fprintf(stderr, "    no note or cells of the unshared format\n");
        goto done;
    }
    /* q4_k not on the attn_q layers: their cells "-", the all-layers sum counts f16 there */
    s[1] = s[0];
    s[0].third_gap = s[1].third_gap = true;
    T_CHECK(load(s, 2, NULL, &c) == MQ_OK);
    tmp_path(dir, sizeof(dir), "report-gap");
    rc = rpt_cmp_write(c, dir, false);
    rpt_cmp_free(c);
    free(md);
    snprintf(path, sizeof(path), "%s/report.md", dir);
    md = slurp(path);
    written = rc == MQ_OK && md;
    rc = T_FAIL;
    if (!written)
        goto done;
    if (!strstr(md, "| 64->64 | 2: `attn_q` | cpu avx2 | 100 | 50.0 | - | 2.00x | - |") ||
        !strstr(md, "| all layers (sum) | 4 | cpu avx2 | 500 | 200 | 260 | 2.50x | 1.92x |") ||
        !strstr(md, "q4_k is faster than f16 on the 1 of 2 layer shapes measured in it") ||
        !strstr(md, "The all-layers sums count f16 for those layers") ||
        strstr(md, "share no format")) {
        fprintf(stderr, "    layers without q4_k not as expected\n");
        goto done;
    }
    rc = T_PASS;
done:
    free(html);
    free(md);
    free(speedup_gp);
    return rc;
}

static int test_report_no_counters(void)
{
    struct rpt_cmp *c = NULL;
    struct prof_spec s[1] = {{.hash = 0xabc, .workload = "decode:512"}};
    T_CHECK(load(s, 1, NULL, &c) == MQ_OK);
    char dir[4096], path[4200];
    tmp_path(dir, sizeof(dir), "report-nocounters");
    int rc = rpt_cmp_write(c, dir, false);
    rpt_cmp_free(c);
    T_CHECK(rc == MQ_OK);
    snprintf(path, sizeof(path), "%s/report.html", dir);
    char *html = slurp(path);
    T_CHECK(html != NULL);
    rc = strstr(html, "No cycle or instruction counters on cpu avx2.") &&
                 strstr(html, "<code>PAPI_TOT_CYC</code>, <code>PAPI_TOT_INS</code>: perf_event is "
                              "disabled") &&
                 strstr(html, "No fronts were given")
             ? T_PASS
             : T_FAIL;
    free(html);
    return rc;
}

static int test_report_plots(void)
{
    char gp[4096];
    T_SKIP_IF(rpt_gnuplot_find(gp, sizeof(gp)) < 0,
              "gnuplot is not installed (apt-get install gnuplot-nox)");
    struct rpt_cmp *c = NULL;
    struct prof_spec s[2] = {{.hash = 0xabc, .workload = "decode:512"},
                             {.hash = 0xabc, .workload = "decode:512", .emulated = true}};
    T_CHECK(load(s, 2, "0000000000000abc", &c) == MQ_OK);
    char dir[4096], path[4200];
    tmp_path(dir, sizeof(dir), "report-plots");
    int rc = rpt_cmp_write(c, dir, true);
    T_CHECK(rc == MQ_OK || (rpt_cmp_free(c), 0));
    /* and again without gnuplot: the report says so instead of plots */
    char dir2[4096];
    tmp_path(dir2, sizeof(dir2), "report-nognuplot");
    setenv("MIXQ_GNUPLOT", "/nonexistent/gnuplot", 1);
    int rc2 = rpt_cmp_write(c, dir2, true);
    unsetenv("MIXQ_GNUPLOT");
    rpt_cmp_free(c);
    T_CHECK(rc2 == MQ_OK);
    snprintf(path, sizeof(path), "%s/report.html", dir);
    char *html = slurp(path);
    snprintf(path, sizeof(path), "%s/report.html", dir2);
    char *bare = slurp(path);
    struct stat st;
    snprintf(path, sizeof(path), "%s/plots/t2-neon-dotprod-emulated/roofline.svg", dir);
    rc = T_FAIL;
    if (!html || !bare || stat(path, &st) != 0)
        goto done;
    /* e2e, speed-up, 2 x (roofline, layer times), 3 front views */
    int n_svg = count(html, "<svg class=\"plot\"");
    if (n_svg != 9 || strstr(html, "<?xml") || !strstr(html, "id='s9-gpPt0'") ||
        !strstr(html, "href='#s3-gpPt")) {
        fprintf(stderr, "    %d plots inline (want 9), or ids not prefixed\n", n_svg);
        goto done;
    }
    if (count(bare, "<svg") != 0 ||
        !strstr(bare, "This report has no plots: MIXQ_GNUPLOT (/nonexistent/gnuplot)")) {
        fprintf(stderr, "    the report without gnuplot does not say so\n");
        goto done;
    }
    rc = T_PASS;
done:
    free(html);
    free(bare);
    return rc;
}

const struct mq_test compare_tests[] = {
    {"compare/html_escape", test_html_escape},
    {"compare/md_escape", test_md_escape},
    {"compare/svg_inline", test_svg_inline},
    {"compare/front_read", test_front_read},
    {"compare/load_checks", test_load_checks},
    {"compare/shapes", test_shapes},
    {"compare/formats", test_formats},
    {"compare/explain", test_explain},
    {"compare/report_tables", test_report_tables},
    {"compare/report_q4k", test_report_q4k},
    {"compare/report_no_counters", test_report_no_counters},
    {"compare/report_plots", test_report_plots},
    {NULL, NULL},
};
