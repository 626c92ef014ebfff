/* tests/unit/test_profile.c - workloads, the profiler on the bundled model, profile.yaml
 * round trips and refusals, the cache, the memory model against measured peak RSS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/status.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/runner.h"
#include "model/workload.h"
#include "profiler/llamacpp.h"
#include "profiler/profile.h"
#include "profiler/topology.h"
#include "reports/profile_io.h"
#include "tests/unit/test.h"

#define TINY "examples/tinyllm/tinyllm.gguf"

static int test_workload_parse(void)
{
    struct mq_workload w;
    T_CHECK(mq_workload_parse("decode", &w) == MQ_OK && w.kind == MQ_WL_DECODE && w.ctx == 512);
    T_CHECK(!strcmp(w.label, "decode:512"));
    T_CHECK(mq_workload_parse("decode:128", &w) == MQ_OK && w.ctx == 128 && mq_workload_ctx_needed(&w) == 128);
    T_CHECK(mq_workload_parse("prefill:64", &w) == MQ_OK && w.kind == MQ_WL_PREFILL && w.prompt == 64);
    T_CHECK(mq_workload_parse("generate:32,16", &w) == MQ_OK && w.prompt == 32 && w.gen == 16);
    T_CHECK(mq_workload_ctx_needed(&w) == 48 && !strcmp(w.label, "generate:32,16"));
    T_CHECK(mq_workload_parse("infer", &w) == MQ_OK && w.kind == MQ_WL_INFER && w.batch == 1);
    T_CHECK(mq_workload_parse("infer:8", &w) == MQ_OK && w.batch == 8);
    static const char *const bad[] = {"", "decode:", "decode:0", "decode:-3", "decode:1x", "prefill", "prefill:5,6",
                                      "generate:5", "generate:5,", "generate:,5", "infer:0", "infer:99999999",
                                      "decode:99999999999999999999", "train:5", "Decode"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        T_CHECK_MSG(mq_workload_parse(bad[i], &w) == MQ_EINVAL, "'%s' accepted", bad[i]);
    return T_PASS;
}

/* A quick profile of the bundled model (short measurement caps). */
static int quick_profile(const char *cache_dir, struct mq_model **mo, struct prof_profile **po)
{
    struct be_backend *be = NULL;
    int rc = mq_model_load(TINY, mo);
    if (rc == MQ_OK)
        rc = be_open("cpu", NULL, &be);
    struct prof_options o = {.formats = (1u << MQ_DTYPE_F16) | (1u << MQ_DTYPE_Q4_0), .cache_dir = cache_dir,
                             .max_seconds = 0.02};
    if (rc == MQ_OK)
        rc = mq_workload_parse("decode:64", &o.workload);
    if (rc == MQ_OK)
        rc = prof_profile_run(*mo, be, &o, po);
    be_close(be);
    return rc;
}

static int test_profile_tiny(void)
{
    char cache[4200];
    snprintf(cache, sizeof(cache), "%s/cache", t_tmpdir());
    struct mq_model *m = NULL;
    struct prof_profile *p = NULL;
    T_CHECK(quick_profile(cache, &m, &p) == MQ_OK);
    /* distinct shapes: 192x192, 64x192, 512x192, 192x512, 259x192 (output); token_embd
     * is a lookup: 5 shapes x 3 formats (f16 and q4_0 asked for, f32 the stored format,
     * which every layer is always offered) */
    T_CHECK_MSG(p->n_costs == 15, "%d costs", p->n_costs);
    T_CHECK(p->n_measured == 15 && p->n_cached == 0);
    for (int l = 0; l < m->n_layers; l++) {
        double f16 = p->layer_ns[l * MQ_DTYPE_COUNT + MQ_DTYPE_F16];
        double q4 = p->layer_ns[l * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0];
        T_CHECK(isnan(p->layer_ns[l * MQ_DTYPE_COUNT + MQ_DTYPE_Q8_0])); /* not profiled */
        if (l == m->layer_token_embd)
            T_CHECK(f16 == 0 && q4 == 0);
        else
            T_CHECK_MSG(f16 > 0 && q4 > 0, "layer %d: %g %g", l, f16, q4);
    }
    for (int i = 0; i < p->n_costs; i++) {
        const struct prof_cost *c = &p->costs[i];
        T_CHECK(c->time.reps >= 5 && c->time.min_ns <= c->time.median_ns && c->time.median_ns > 0);
        T_CHECK(c->copies >= 1 && c->weight_bytes > 0);
    }
    T_CHECK(p->n_e2e == 2 && p->e2e[0].fmt == MQ_DTYPE_F16 && p->e2e[1].fmt == MQ_DTYPE_Q4_0);
    T_CHECK(p->e2e[0].time.median_ns > 0 && p->e2e[0].predicted.weights > p->e2e[1].predicted.weights);
    T_CHECK(p->e2e[0].predicted.kv_cache == 2 * 4 * 64 * 6 * 64); /* K and V, f32, kv dim 64, 6 blocks, ctx 64 */
    /* counters: whatever this machine has is listed, and everything missing says why */
    T_CHECK(p->n_events + p->n_missing >= 4);
    for (int i = 0; i < p->n_missing; i++)
        T_CHECK_MSG(p->missing_why[i][0] != '\0', "%s has no reason", p->missing[i]);
    bool task_clock = false;
    for (int i = 0; i < p->n_events; i++)
        task_clock |= !strcmp(p->events[i], "perf::TASK-CLOCK");
    for (int i = 0; i < p->n_missing && !task_clock; i++)
        task_clock |= !strcmp(p->missing[i], "perf::TASK-CLOCK");
    T_CHECK(task_clock); /* the software fallback is either used or explained */
    T_CHECK(p->target.cores >= 1 && p->target.threads >= 1 && p->target.topology[0] && p->target.llc_bytes > 0);
    T_CHECK(p->target.timer_overhead_ns > 0 && p->target.dram_read_gbs > 0);
    /* the plan latency: glue + layer costs */
    struct mq_plan *plan;
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_Q4_0, &plan) == MQ_OK);
    double sum = 0;
    for (int l = 0; l < m->n_layers; l++)
        sum += p->layer_ns[l * MQ_DTYPE_COUNT + MQ_DTYPE_Q4_0];
    sum = p->glue_ns + p->layer_scale * sum;
    T_CHECK(p->glue_ns >= 0 && p->layer_scale > 0);
    T_CHECK(fabs(prof_plan_latency_ns(p, plan) - sum) < 1e-6 * fabs(sum) + 1e-9);
    plan->fmt[3] = MQ_DTYPE_Q8_0; /* not profiled */
    T_CHECK(isnan(prof_plan_latency_ns(p, plan)));
    mq_plan_free(plan);
    T_CHECK(prof_profile_matches(p, m) == MQ_OK);

    /* the YAML round trip keeps what the search needs */
    char path[4300];
    snprintf(path, sizeof(path), "%s/profile.yaml", t_tmpdir());
    T_CHECK(rpt_profile_write(p, path) == MQ_OK);
    struct prof_profile *q;
    T_CHECK(rpt_profile_read(path, &q) == MQ_OK);
    T_CHECK(q->n_layers == p->n_layers && q->n_costs == p->n_costs && q->n_e2e == p->n_e2e);
    T_CHECK(q->formats == p->formats && q->model_hash == p->model_hash && !strcmp(q->workload.label, "decode:64"));
    T_CHECK(prof_profile_matches(q, m) == MQ_OK);
    for (int i = 0; i < p->n_layers * MQ_DTYPE_COUNT; i++)
        T_CHECK(isnan(p->layer_ns[i]) ? isnan(q->layer_ns[i])
                                      : fabs(q->layer_ns[i] - p->layer_ns[i]) <= 1e-5 * p->layer_ns[i] + 1e-3);
    T_CHECK(fabs(q->glue_ns - p->glue_ns) <= 1e-5 * fabs(p->glue_ns) + 1e-3);
    T_CHECK(fabs(q->layer_scale - p->layer_scale) <= 1e-5 * p->layer_scale);
    T_CHECK(q->n_events == p->n_events && q->n_missing == p->n_missing);
    prof_profile_free(q);
    prof_profile_free(p);

    /* a second run takes everything from the cache */
    struct mq_model *m2 = NULL;
    T_CHECK(quick_profile(cache, &m2, &p) == MQ_OK);
    T_CHECK_MSG(p->n_measured == 0 && p->n_cached == 15, "measured %d, cached %d", p->n_measured, p->n_cached);
    T_CHECK(p->e2e[0].cached && p->e2e[1].cached);
    prof_profile_free(p);
    mq_model_free(m2);
    mq_model_free(m);
    return T_PASS;
}

static const char *write_tmp(const char *name, const char *text)
{
    static char path[4200];
    snprintf(path, sizeof(path), "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

static int test_profile_read_refusals(void)
{
    static const struct {
        const char *text;
        int want;
    } bad[] = {
        {"mixq_schema: plan/1\n", MQ_EFORMAT},
        {"mixq_schema: profile/2\nmodel: {}\nlayers: []\n", MQ_EUNSUPPORTED},
        {"mixq_schema: profile/1\nlayers: []\n", MQ_EFORMAT},
        {"mixq_schema: profile/1\nmodel: {content_hash: '1'}\nworkload: decode:64\nlayers:\n"
         "  - {name: a, in: 32, out: 4, us: {f16: abc}}\n", MQ_EFORMAT},
        {"mixq_schema: profile/1\nmodel: {content_hash: '1'}\nworkload: decode:64\nlayers:\n"
         "  - {name: a, in: 32, out: 4, us: {f16: -5}}\n", MQ_EFORMAT},
        {"mixq_schema: profile/1\nmodel: {content_hash: '1'}\nworkload: decode:64\nlayers:\n"
         "  - {name: a, in: 32, out: 4, us: {q7_k: 5}}\n", MQ_EFORMAT},
        {"mixq_schema: profile/1\nmodel: {content_hash: '1'}\nworkload: train:5\nlayers: []\n", MQ_EFORMAT},
        {"mixq_schema: profile/1\nmodel: {content_hash: '1'}\nworkload: decode:64\nlayers:\n"
         "  - {name: a, in: 1e300, out: 4, us: {f16: 5}}\n", MQ_EFORMAT},
        {"mixq_schema: profile/1\nmodel: {content_hash: '1'}\nworkload: decode:64\nlayers: [1, 2\n", MQ_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct prof_profile *p = NULL;
        int rc = rpt_profile_read(write_tmp("bad-profile.yaml", bad[i].text), &p);
        T_CHECK_MSG(rc == bad[i].want && !p, "case %zu: rc %d", i, rc);
    }
    return T_PASS;
}

/* The memory model (weights + KV cache + scratch + measured overhead) against the peak
 * RSS of a process running the workload: within 5%. */
static int test_memory_model(void)
{
    T_SKIP_IF(!getenv("MIXQ_EXE"), "MIXQ_EXE is not set (the memory probe runs the mixq executable)");
    T_SKIP_IF(T_UNDER_ASAN, "built with AddressSanitizer: peak RSS includes its shadow memory");
    struct mq_model *m;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    struct mq_workload w;
    T_CHECK(mq_workload_parse("decode:256", &w) == MQ_OK);
    static const enum mq_dtype fmts[] = {MQ_DTYPE_F32, MQ_DTYPE_Q4_0};
    for (size_t i = 0; i < 2; i++) {
        uint64_t peak, baseline;
        struct mq_plan *p;
        struct mq_memory mem;
        T_CHECK(mq_plan_uniform(m, fmts[i], &p) == MQ_OK);
        p->fmt[0] = MQ_DTYPE_F16; /* a mixed plan travels to the probe as text */
        T_CHECK(prof_memory_probe(TINY, NULL, "cpu", 2, &w, p, &peak, &baseline) == MQ_OK);
        T_CHECK(m->runner->memory(m, p, &w, &mem) == MQ_OK);
        mq_plan_free(p);
        double predicted = (double)(mem.weights + mem.kv_cache + mem.scratch + baseline);
        double err = (predicted - (double)peak) / (double)peak;
        fprintf(stderr, "    %s: predicted %.2f MiB (weights %.2f, kv %.2f, scratch %.2f, overhead %.2f), peak RSS %.2f MiB (%+.1f%%)\n",
                mq_dtype_name(fmts[i]), predicted / 1048576, (double)mem.weights / 1048576, (double)mem.kv_cache / 1048576,
                (double)mem.scratch / 1048576, (double)baseline / 1048576, (double)peak / 1048576, 100 * err);
        T_CHECK_MSG(fabs(err) <= 0.05, "%s: memory model off by %.1f%%", mq_dtype_name(fmts[i]), 100 * err);
    }
    mq_model_free(m);
    return T_PASS;
}

/* A big model's end-to-end runs (profile.h): at most e2e_max of the menu's uniform plans,
 * spread over weight bytes (the fewest, the median, the most); the line still fits. */
static int test_e2e_spread(void)
{
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK && be_open("cpu", NULL, &be) == MQ_OK);
    char cache[4200]; /* the costs and runs measured once, for every case */
    snprintf(cache, sizeof(cache), "%s/e2e-cache", t_tmpdir());
    struct prof_options o = {.formats = (1u << MQ_DTYPE_F16) | (1u << MQ_DTYPE_Q8_0) | (1u << MQ_DTYPE_Q5_0) |
                                        (1u << MQ_DTYPE_Q4_0),
                             .cache_dir = cache, .max_seconds = 0.01};
    T_CHECK(mq_workload_parse("decode:16", &o.workload) == MQ_OK);
    /* by weight bytes q4_0 < q5_0 < q8_0 < f16; the runs in enum order */
    static const struct {
        int most, n;
        enum mq_dtype fmt[4];
    } cases[] = {
        {0, 4, {MQ_DTYPE_F16, MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_0, MQ_DTYPE_Q5_0}}, /* small: every one */
        {2, 2, {MQ_DTYPE_F16, MQ_DTYPE_Q4_0}},
        {3, 3, {MQ_DTYPE_F16, MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_0}},
        {1, 1, {MQ_DTYPE_Q4_0}},
        {9, 4, {MQ_DTYPE_F16, MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_0, MQ_DTYPE_Q5_0}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct prof_profile *p = NULL;
        o.e2e_max = cases[c].most;
        T_CHECK(prof_profile_run(m, be, &o, &p) == MQ_OK);
        T_CHECK_MSG(p->n_e2e == cases[c].n, "e2e_max %d: %d runs", cases[c].most, p->n_e2e);
        for (int i = 0; i < p->n_e2e; i++)
            T_CHECK_MSG(p->e2e[i].fmt == cases[c].fmt[i], "e2e_max %d: run %d is %s", cases[c].most, i,
                        mq_dtype_name(p->e2e[i].fmt));
        T_CHECK(p->layer_scale > 0 && p->glue_ns >= 0);
        prof_profile_free(p);
    }
    be_close(be);
    mq_model_free(m);
    return T_PASS;
}

/* A child of a thread pinned to one core is allowed every CPU of the process again once it
 * calls prof_topology_unpin_self (what the runtime's tools and the memory probes do). */
static int test_unpin_child(void)
{
    cpu_set_t orig, was, one;
    /* the measurements of earlier tests leave this thread pinned to one CPU: start from
     * every CPU the process may use, and leave the thread as it was found */
    T_CHECK(sched_getaffinity(0, sizeof(orig), &orig) == 0);
    prof_topology_unpin_self();
    T_CHECK(sched_getaffinity(0, sizeof(was), &was) == 0);
    int n = CPU_COUNT(&was);
    if (n < 2)
        T_CHECK(sched_setaffinity(0, sizeof(orig), &orig) == 0);
    T_SKIP_IF(n < 2, "one CPU allowed here: nothing to unpin");
    int first = 0;
    while (!CPU_ISSET(first, &was))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    T_CHECK(sched_setaffinity(0, sizeof(one), &one) == 0); /* as prof_topology_pin leaves a thread */
    int counts[2] = {0, 0};
    for (int unpin = 0; unpin < 2; unpin++) {
        pid_t pid = fork();
        if (pid == 0) {
            if (unpin)
                prof_topology_unpin_self();
            cpu_set_t got;
            _exit(sched_getaffinity(0, sizeof(got), &got) == 0 ? CPU_COUNT(&got) : 255);
        }
        int st = 0;
        T_CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st));
        counts[unpin] = WEXITSTATUS(st);
    }
    T_CHECK(sched_setaffinity(0, sizeof(orig), &orig) == 0);
    T_CHECK_MSG(counts[0] == 1 && counts[1] == (n < 255 ? n : counts[1]), "child CPUs: %d pinned, %d unpinned, %d allowed",
                counts[0], counts[1], n);
    return T_PASS;
}

/* ---- llama.cpp as the deployment runtime (profiler/llamacpp.h) ---- */

/* The arguments joined by spaces. */
static void join(const char **a, int n, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? " " : "", a[i]);
}

static int test_llamacpp_bench_args(void)
{
    struct mq_workload w;
    char buf[8][24], s[256];
    const char *a[32];
    int per_run, n;
    const char *was = getenv("LLAMA_ARG_REPACK");
    char saved[64] = "";
    if (was)
        snprintf(saved, sizeof(saved), "%s", was);
    unsetenv("LLAMA_ARG_REPACK");
    T_CHECK(mq_workload_parse("decode:512", &w) == MQ_OK);
    T_CHECK((n = prof_llamacpp_bench_args(&w, 2, 0, buf, 8, a, 32, &per_run)) > 0);
    join(a, n, s, sizeof(s));
    T_CHECK_MSG(!strcmp(s, "-p 0 -n 16 -d 511 -t 2 -r 5 -o json") && per_run == 16, "%s / %d", s, per_run);
    T_CHECK(mq_workload_parse("prefill:64", &w) == MQ_OK);
    T_CHECK((n = prof_llamacpp_bench_args(&w, 4, 3, buf, 8, a, 32, &per_run)) > 0);
    join(a, n, s, sizeof(s));
    T_CHECK_MSG(!strcmp(s, "-p 64 -n 0 -t 4 -r 3 -o json") && per_run == 1, "%s / %d", s, per_run);
    setenv("LLAMA_ARG_REPACK", "false", 1);
    T_CHECK(mq_workload_parse("generate:32,8", &w) == MQ_OK);
    T_CHECK((n = prof_llamacpp_bench_args(&w, 1, 1, buf, 8, a, 32, &per_run)) > 0);
    join(a, n, s, sizeof(s));
    T_CHECK_MSG(!strcmp(s, "-pg 32,8 -p 0 -n 0 -t 1 -r 1 -o json --repack 0") && per_run == 1, "%s", s);
    setenv("LLAMA_ARG_REPACK", "1", 1); /* repacking on: llama-bench's default, nothing passed */
    T_CHECK((n = prof_llamacpp_bench_args(&w, 1, 1, buf, 8, a, 32, &per_run)) > 0 && strcmp(a[n - 1], "0"));
    T_CHECK(prof_llamacpp_bench_args(&w, 1, 1, buf, 8, a, 4, &per_run) == MQ_EINTERNAL); /* no room */
    T_CHECK(mq_workload_parse("infer:1", &w) == MQ_OK);
    T_CHECK(prof_llamacpp_bench_args(&w, 1, 1, buf, 8, a, 32, &per_run) == MQ_EUNSUPPORTED);
    if (was)
        setenv("LLAMA_ARG_REPACK", saved, 1);
    else
        unsetenv("LLAMA_ARG_REPACK");
    return T_PASS;
}

/* llama-bench -o json's record as the pinned llama.cpp prints it (fields cut) */
#define BENCH_JSON(depth, samples)                                                                                  \
    "[\n  {\n    \"build_commit\": \"0c1e570\",\n    \"n_threads\": 2,\n    \"n_prompt\": 0,\n"                \
    "    \"n_gen\": 16,\n    \"n_depth\": " depth ",\n    \"avg_ns\": 9636230,\n    \"samples_ns\": " samples      \
    ",\n    \"samples_ts\": [ 1574.1, 1689.49, 1725.28 ]\n  }\n]\n"

static int test_llamacpp_parse_bench(void)
{
    struct prof_stats st;
    T_CHECK(prof_llamacpp_parse_bench(BENCH_JSON("127", "[ 10164524, 9470314, 9273852 ]"), 0, 16, 127, 16, &st) ==
            MQ_OK);
    T_CHECK_MSG(st.reps == 3 && fabs(st.median_ns - 9470314 / 16.0) < 1e-6 && fabs(st.min_ns - 9273852 / 16.0) < 1e-6,
                "reps %d median %g min %g", st.reps, st.median_ns, st.min_ns);
    /* unchecked fields (-1) */
    T_CHECK(prof_llamacpp_parse_bench(BENCH_JSON("127", "[5]"), -1, -1, -1, 1, &st) == MQ_OK && st.median_ns == 5);
    static const char *const bad[] = {
        BENCH_JSON("128", "[ 10164524 ]"),              /* another depth than asked */
        BENCH_JSON("127", "[ ]"),                       /* no samples */
        BENCH_JSON("127", "[ 10164524, -3 ]"),          /* not a time */
        BENCH_JSON("127", "[ 10164524, x ]"),           /* not a number */
        BENCH_JSON("127", "10164524"),                  /* not a list */
        BENCH_JSON("127", "[ 1e300 ]"),                 /* absurd */
        "[ {\"n_prompt\": 0, \"n_gen\": 16, \"n_depth\": 127} ]", /* no samples_ns */
        BENCH_JSON("127", "[ 1 ]") BENCH_JSON("127", "[ 1 ]"), /* two tests */
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        T_CHECK_MSG(prof_llamacpp_parse_bench(bad[i], 0, 16, 127, 16, &st) == MQ_EFORMAT, "case %zu accepted", i);
    return T_PASS;
}

static int test_llamacpp_parse_kl(void)
{
    /* llama-perplexity --kl-divergence's summary as the pinned llama.cpp prints it (cut) */
    const char *out = "====== Perplexity statistics ======\n"
                      "Mean PPL(Q)                   :   3.076799 \xc2\xb1   0.208246\n"
                      "Mean PPL(base)                :   3.050166 \xc2\xb1   0.208554\n"
                      "Cor(ln(PPL(Q)), ln(PPL(base))):  99.73%\n\n"
                      "====== KL divergence statistics ======\n"
                      "Mean    KLD:   0.008125 \xc2\xb1   0.001185\n"
                      "Maximum KLD:   0.517253\n"
                      "Same top p: 97.244 \xc2\xb1 0.727 %\n";
    struct prof_llamacpp_result r;
    T_CHECK(prof_llamacpp_parse_kl(out, &r) == MQ_OK);
    T_CHECK_MSG(r.kl == 0.008125 && r.kl_stderr == 0.001185 && r.ppl == 3.076799 && r.same_top_pct == 97.244,
                "kl %g ± %g ppl %g same %g", r.kl, r.kl_stderr, r.ppl, r.same_top_pct);
    /* as precise as the reference: a little below zero from the stored logits' steps */
    T_CHECK(prof_llamacpp_parse_kl("Mean    KLD:  -0.000002 \xc2\xb1   0.000001\n", &r) == MQ_OK && r.kl == -2e-6 &&
            isnan(r.ppl));
    T_CHECK(prof_llamacpp_parse_kl("Mean    KLD:  -0.5\n", &r) == MQ_EFORMAT);
    T_CHECK(prof_llamacpp_parse_kl("Mean    KLD:   nan\n", &r) == MQ_EFORMAT);
    T_CHECK(prof_llamacpp_parse_kl("Mean PPL(Q) : 3.0\n[1]3.04,[2]3.22,", &r) == MQ_EFORMAT); /* cut short */
    /* under 100 scored tokens: no summary, the table's last row (running figures) */
    const char *table = "0.00.038.105 I kl_divergence: computing over 2 chunks, n_ctx=128, batch_size=2048\n\n"
                        "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              "
                        "\xce\x94p RMS            Same top p\n"
                        "   1       3.0617 \xc2\xb1    0.5197      -0.00002 \xc2\xb1    0.00006       0.00100 \xc2\xb1    "
                        "0.00020     0.007 \xc2\xb1  0.001 %    100.000 \xc2\xb1  0.000 %\n"
                        "   2       3.2000 \xc2\xb1    0.4000       0.00100 \xc2\xb1    0.00050       0.00250 \xc2\xb1    "
                        "0.00030     0.010 \xc2\xb1  0.002 %     98.500 \xc2\xb1  0.500 %\n\n\n";
    T_CHECK(prof_llamacpp_parse_kl(table, &r) == MQ_OK);
    T_CHECK_MSG(r.kl == 0.0025 && r.kl_stderr == 0.0003 && r.ppl == 3.2 && r.same_top_pct == 98.5,
                "kl %g ± %g ppl %g same %g", r.kl, r.kl_stderr, r.ppl, r.same_top_pct);
    char cut[2048]; /* the second chunk's row missing: cut short */
    snprintf(cut, sizeof(cut), "%.*s", (int)(strstr(table, "   2 ") - table), table);
    T_CHECK(prof_llamacpp_parse_kl(cut, &r) == MQ_EFORMAT);
    T_CHECK(prof_llamacpp_parse_kl("", &r) == MQ_EFORMAT);
    return T_PASS;
}

/* The tools' failures are one line each: missing tools, a tool that fails (its last line
 * quoted), a tool that prints something else. The stand-ins are shell scripts. */
static int test_llamacpp_tool_errors(void)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s/llamacpp-bin", t_tmpdir());
    T_CHECK(mkdir(dir, 0755) == 0);
    T_CHECK(prof_llamacpp_check(dir) == MQ_ENOTFOUND);
    static const char *const scripts[][2] = {
        {"llama-bench", "#!/bin/sh\necho 'main: error: failed to load model' >&2\nexit 1\n"},
        {"llama-perplexity", "#!/bin/sh\necho 'no summary'\n"},
    };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, scripts[i][0]);
        FILE *f = fopen(path, "w");
        T_CHECK(f && fputs(scripts[i][1], f) >= 0 && fclose(f) == 0 && chmod(path, 0755) == 0);
    }
    T_CHECK(prof_llamacpp_check(dir) == MQ_OK);
    struct prof_llamacpp_config c = {.bindir = dir, .threads = 1, .text = "examples/data/kjv-eval.txt", .ctx = 128,
                                     .work_dir = t_tmpdir()};
    T_CHECK(mq_workload_parse("decode:64", &c.workload) == MQ_OK);
    struct prof_llamacpp_result r;
    T_CHECK(prof_llamacpp_measure(&c, TINY, &r) == MQ_EIO);
    T_CHECK(prof_llamacpp_base(&c, TINY) == MQ_EIO); /* exits 0 but writes no base logits */
    /* a bench that works, a perplexity that never prints its summary (run 3 times) */
    snprintf(path, sizeof(path), "%s/llama-bench", dir);
    FILE *f = fopen(path, "w");
    T_CHECK(f && fputs("#!/bin/sh\necho '[{\"n_prompt\": 0, \"n_gen\": 16, \"n_depth\": 63, \"samples_ns\": [ 1600 ]}]'\n",
                       f) >= 0 && fclose(f) == 0);
    T_CHECK(prof_llamacpp_measure(&c, TINY, &r) == MQ_EFORMAT);
    T_CHECK(r.lat.median_ns == 100); /* 1600 ns for 16 tokens */
    return T_PASS;
}

const struct mq_test profile_tests[] = {
    {"profile/workload_parse", test_workload_parse},
    {"profile/tiny", test_profile_tiny},
    {"profile/read_refusals", test_profile_read_refusals},
    {"profile/memory_model", test_memory_model},
    {"profile/e2e_spread", test_e2e_spread},
    {"profile/unpin_child", test_unpin_child},
    {"profile/llamacpp_bench_args", test_llamacpp_bench_args},
    {"profile/llamacpp_parse_bench", test_llamacpp_parse_bench},
    {"profile/llamacpp_parse_kl", test_llamacpp_parse_kl},
    {"profile/llamacpp_tool_errors", test_llamacpp_tool_errors},
    {NULL, NULL},
};
