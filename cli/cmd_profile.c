/* cli/cmd_profile.c - `mixq profile MODEL`: per-layer costs on this target -> profile.yaml. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/status.h"
#include "model/model.h"
#include "model/runner.h"
#include "profiler/cache.h"
#include "profiler/profile.h"
#include "reports/plot.h"
#include "reports/profile_io.h"

static void profile_usage(FILE *f)
{
    fprintf(f,
            "usage: mixq profile MODEL [--backend NAME] [--workload W] [--formats LIST] [--threads N]\n"
            "                    [--out DIR] [--cold | --warm] [--no-cache] [--no-memory]\n\n"
            "Measures what each quantizable layer costs in each format on this machine, and what\n"
            "the whole workload costs with the uniform plan of each format (of three, the fewest,\n"
            "median and most weight bytes, for a model whose f16 weights exceed 1 GiB: each run\n"
            "converts all of it), and writes DIR/profile.yaml with plots (layer-times and\n"
            "roofline, each as .png, .svg, .gp and .dat). Layers of the same shape are measured\n"
            "once. Measurements are cached; a second run reuses them.\n\n"
            "options:\n"
            "  --backend NAME    backend to measure (default cpu; see 'mixq backends')\n"
            "  --workload W      decode[:CTX] (default decode:512), prefill:N, generate:P,G;\n"
            "                    ONNX models: infer[:BATCH]\n"
            "  --formats LIST    formats to profile, comma-separated (default f16,q8_0,q6_k,q5_k,q4_k,q3_k\n"
            "                        where rows allow; a layer's stored format always)\n"
            "  --threads N       threads (default: the online CPUs, shared among the MPI\n"
            "                    ranks on this machine)\n"
            "  --out DIR         output folder (default ./mixq-out)\n"
            "  --cold, --warm    weights streamed from DRAM, or hot in cache (default: per\n"
            "                    format, cold where the model's weights exceed the last-level cache)\n"
            "  --multiplex       let PAPI multiplex counters (recorded in the profile)\n"
            "  --max-seconds S   time cap per measured region (default 1)\n"
            "  --no-e2e          skip the end-to-end workload runs\n"
            "  --no-memory       skip measuring peak RSS beside the memory model\n"
            "  --no-cache        measure everything again (results still refresh the cache)\n"
            "  --cache-dir DIR   cache folder (default $MIXQ_CACHE_DIR or ~/.cache/mixq)\n"
            "  --no-plots        write profile.yaml only\n"
            "  --shapes S        ONNX models: input shapes, trtexec's syntax\n"
            "                    NAME:1x3x640x640[,NAME:...]; needed where an input has a\n"
            "                    dynamic dimension other than the batch\n"
            "  -v, -q            more or fewer messages\n"
            "  --help            this text\n");
}

static void print_summary(const struct prof_profile *p, const char *yaml)
{
    const struct prof_target *t = &p->target;
    printf("model     %s (%d layers), workload %s\n", p->model_path, p->n_layers, p->workload.label);
    printf("target    %s, %s; %s\n", t->cpu, t->topology, t->features);
    printf("backend   %s, %d threads%s: %s\n", t->backend, t->threads, t->pinned ? ", pinned" : "", t->backend_detail);
    if (t->emulated)
        printf("EMULATED  %s: these timings say nothing about real hardware\n", t->emulated_why);
    printf("limits    DRAM read %.1f GB/s, f32 FMA %.0f GFLOP/s, int8 dot %.0f GOP/s\n", t->dram_read_gbs,
           t->fma_gflops, t->int8_gops);
    printf("counters  ");
    for (int e = 0; e < p->n_events; e++)
        printf("%s%s", e ? ", " : "", p->events[e]);
    printf("%s\n", p->n_events ? "" : "none");
    if (p->n_missing)
        printf("missing   %d events (%s: %s)\n", p->n_missing, p->missing[0], p->missing_why[0]);
    printf("cache     %s\n", p->cache_note);
    printf("measured  %d distinct shape x format costs (%d measured now, %d from the cache)\n", p->n_costs,
           p->n_measured, p->n_cached);
    if (p->n_e2e) {
        printf("\n  plan    workload (median)  sum of layers  additivity  memory predicted  measured RSS\n");
        for (int i = 0; i < p->n_e2e; i++) {
            const struct prof_e2e *e = &p->e2e[i];
            char rss[32] = "-";
            if (e->measured_rss)
                snprintf(rss, sizeof(rss), "%.1f MiB (%+.1f%%)", (double)e->measured_rss / 1048576.0,
                         100.0 * ((double)e->predicted.total - (double)e->measured_rss) / (double)e->measured_rss);
            printf("  %-6s %14.1f us %12.1f us %+10.1f%% %13.1f MiB  %s\n", mq_dtype_name(e->fmt),
                   e->time.median_ns / 1e3, e->sum_layers_ns / 1e3,
                   100.0 * (e->time.median_ns - e->sum_layers_ns) / e->time.median_ns,
                   (double)e->predicted.total / 1048576.0, rss);
        }
        printf("  latency model: %.1f us + %.3f x sum of layer costs (fitted on these runs)\n", p->glue_ns / 1e3,
               p->layer_scale);
    }
    printf("\nwall time %.1f s; wrote %s\n", p->wall_seconds, yaml);
}

int cmd_profile(int argc, char **argv)
{
    static const struct option opts[] = {
        {"backend", required_argument, NULL, 'b'}, {"workload", required_argument, NULL, 'w'},
        {"formats", required_argument, NULL, 'f'}, {"threads", required_argument, NULL, 'j'},
        {"out", required_argument, NULL, 'o'},     {"warm", no_argument, NULL, 'W'},
        {"cold", no_argument, NULL, 'K'},
        {"multiplex", no_argument, NULL, 'x'},     {"max-seconds", required_argument, NULL, 's'},
        {"no-e2e", no_argument, NULL, 'E'},        {"no-memory", no_argument, NULL, 'M'},
        {"memory", no_argument, NULL, 'm'},        {"no-cache", no_argument, NULL, 'C'},
        {"cache-dir", required_argument, NULL, 'c'}, {"no-plots", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},          {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},         {"shapes", required_argument, NULL, CLI_OPT_SHAPES}, {NULL, 0, NULL, 0},
    };
    const char *backend = "cpu", *workload = NULL, *formats = NULL, *out_dir = "mixq-out";
    const char *cache_dir_arg = NULL;
    long long threads = 0;
    double max_seconds = 0;
    enum prof_cache_mode cache_mode = PROF_AUTO;
    bool multiplex = false, no_e2e = false, memory = true, no_cache = false, plots = true;
    const char *shapes = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
        int u = CLI_OK;
        switch (c) {
        case 'b': backend = optarg; break;
        case 'w': workload = optarg; break;
        case 'f': formats = optarg; break;
        case 'j': u = cli_parse_int("profile", "--threads", optarg, 1, 1024, &threads); break;
        case 'o': out_dir = optarg; break;
        case 'W': cache_mode = PROF_WARM; break;
        case 'K': cache_mode = PROF_COLD; break;
        case 'x': multiplex = true; break;
        case 's': u = cli_parse_real("profile", "--max-seconds", optarg, 0, true, 3600, "seconds", &max_seconds); break;
        case 'E': no_e2e = true; break;
        case 'M': memory = false; break;
        case 'm': memory = true; break;
        case 'C': no_cache = true; break;
        case 'c': cache_dir_arg = optarg; break;
        case 'P': plots = false; break;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': profile_usage(stdout); return CLI_OK;
        case CLI_OPT_SHAPES:
            if (cli_check_shapes("profile", optarg) != CLI_OK)
                return CLI_USAGE;
            shapes = optarg;
            break;
        default: return cli_bad_option("profile", argv);
        }
        if (u != CLI_OK)
            return u;
    }
    if (argc - optind != 1)
        return cli_usage_error("profile", "want exactly one MODEL argument");

    uint32_t fmask = 0; /* 0: the default menu (core/dtype.h) */
    if (formats && cli_parse_formats("profile", formats, &fmask) != CLI_OK)
        return CLI_USAGE;
    struct prof_options o = {.formats = fmask, .cache_mode = cache_mode, .multiplex = multiplex, .no_e2e = no_e2e,
                             .max_seconds = max_seconds, .progress = true};
    char cache_dir[4096];
    cli_cache_dir(cache_dir_arg, cache_dir, sizeof(cache_dir));
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    struct prof_profile *p = NULL;
    int rc;
    if ((rc = cli_model_load(argv[optind], shapes, &m)) < 0)
        goto done;
    cli_dist_latency_note(threads);
    if ((rc = mq_workload_parse(workload ? workload : m->runner->default_workload, &o.workload)) < 0 ||
        (rc = mq_runner_check(m, &o.workload)) < 0 || (rc = cli_make_dir(out_dir)) < 0 ||
        (rc = be_open(backend, &(struct be_config){.n_threads = (int)threads}, &be)) < 0 ||
        (rc = mq_model_lend(m, be)) < 0)
        goto done;
    /* --no-cache measures everything afresh; the new figures still replace the old ones */
    o.cache_dir = cache_dir;
    o.cache_refresh = no_cache;
    if ((rc = prof_profile_run(m, be, &o, &p)) < 0)
        goto done;
    if (memory && !no_e2e && (rc = prof_profile_probe_memory(m, p, backend, be_threads(be))) < 0)
        goto done;
    char yaml[4200];
    snprintf(yaml, sizeof(yaml), "%s/profile.yaml", out_dir);
    if ((rc = rpt_profile_write(p, yaml)) < 0)
        goto done;
    if (plots && ((rc = rpt_plot_layer_times(out_dir, p)) < 0 || (rc = rpt_plot_roofline(out_dir, p)) < 0))
        goto done;
    print_summary(p, yaml);
done:
    prof_profile_free(p);
    be_close(be);
    mq_model_free(m);
    return cli_exit(rc);
}

int cmd_memory_probe(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "mixq: error: __memory-probe MODEL BACKEND THREADS WORKLOAD PLAN [SHAPES]\n");
        return CLI_USAGE;
    }
    return cli_exit(prof_memory_probe_child(argv[1], argc == 7 ? argv[6] : NULL, argv[2], atoi(argv[3]), argv[4], argv[5]));
}
