/* cli/cmd_memory.c - `mixq memory MODEL [--plan P]`: what a plan needs in memory, by the
 * memory model and, measured, as the peak RSS of a process running the workload. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/status.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/runner.h"
#include "model/workload.h"
#include "profiler/profile.h"

static void memory_usage(FILE *f)
{
    fprintf(f,
            "usage: mixq memory MODEL [--plan P] [--point N] [--workload W] [--backend NAME]\n"
            "                   [--threads N] [--no-measure] [--max-error PCT]\n\n"
            "What the plan needs in memory running the workload: the memory model's parts\n"
            "(weights in the plan's formats, KV cache, activation scratch) and, measured, the\n"
            "peak RSS of a separate process that loads the model, builds the plan and runs the\n"
            "workload once, with its runtime overhead (RSS before the plan is built).\n\n"
            "options:\n"
            "  --plan P          a format, 'source', a llama.cpp preset (Q4_K_M, preset:Q4_0),\n"
            "                    a plan file or a front.yaml (default f16)\n"
            "  --point N         with a front.yaml: the point of that index (default: the chosen one)\n"
            "  --workload W      decode[:CTX] (default decode:512), prefill:N, generate:P,G;\n"
            "                    ONNX models: infer[:BATCH]\n"
            "  --backend NAME    backend (default cpu)\n"
            "  --threads N       threads (default: the online CPUs, shared among the MPI\n"
            "                    ranks on this machine)\n"
            "  --no-measure      the memory model only\n"
            "  --max-error PCT   exit 1 when the model and the measurement differ by more\n"
            "  --shapes S        ONNX models: input shapes, trtexec's syntax\n"
            "                    NAME:1x3x640x640[,NAME:...]; needed where an input has a\n"
            "                    dynamic dimension other than the batch\n"
            "  -v, -q            more or fewer messages\n"
            "  --help            this text\n");
}

static void row(const char *what, uint64_t bytes, const char *note)
{
    char b[32];
    printf("  %-10s %12s  %s\n", what, cli_fmt_bytes(b, sizeof(b), bytes), note);
}

int cmd_memory(int argc, char **argv)
{
    static const struct option opts[] = {
        {"plan", required_argument, NULL, 'p'},    {"point", required_argument, NULL, 'P'},
        {"workload", required_argument, NULL, 'w'}, {"backend", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 'j'}, {"no-measure", no_argument, NULL, 'N'},
        {"max-error", required_argument, NULL, 'e'}, {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},       {"quiet", no_argument, NULL, 'q'},
        {"shapes", required_argument, NULL, CLI_OPT_SHAPES}, {NULL, 0, NULL, 0},
    };
    const char *plan_arg = "f16", *workload = NULL, *backend = "cpu";
    long long point = -1, threads = 0;
    double max_error = -1;
    bool measure = true;
    const char *shapes = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
        int u = CLI_OK;
        switch (c) {
        case 'p': plan_arg = optarg; break;
        case 'P': u = cli_parse_int("memory", "--point", optarg, 0, 1 << 30, &point); break;
        case 'w': workload = optarg; break;
        case 'b': backend = optarg; break;
        case 'j': u = cli_parse_int("memory", "--threads", optarg, 1, 1024, &threads); break;
        case 'N': measure = false; break;
        case 'e': u = cli_parse_real("memory", "--max-error", optarg, 0, false, 1000, "a percentage", &max_error); break;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': memory_usage(stdout); return CLI_OK;
        case CLI_OPT_SHAPES:
            if (cli_check_shapes("memory", optarg) != CLI_OK)
                return CLI_USAGE;
            shapes = optarg;
            break;
        default: return cli_bad_option("memory", argv);
        }
        if (u != CLI_OK)
            return u;
    }
    if (argc - optind != 1)
        return cli_usage_error("memory", "want exactly one MODEL argument");
    if (max_error >= 0 && !measure)
        return cli_usage_error("memory", "--max-error compares with a measurement: drop --no-measure");
    struct mq_model *m = NULL;
    struct mq_plan *plan = NULL;
    struct be_backend *be = NULL;
    struct mq_workload w;
    struct mq_memory mem;
    int rc;
    if ((rc = cli_model_load_for_plan(argv[optind], shapes, plan_arg, &m)) < 0 ||
        (rc = cli_load_plan(m, plan_arg, point, &plan)) < 0 ||
        (rc = mq_workload_parse(workload ? workload : m->runner->default_workload, &w)) < 0 ||
        (rc = mq_runner_check(m, &w)) < 0 || (rc = m->runner->memory(m, plan, &w, &mem)) < 0)
        goto done;
    /* the backend's thread count, as the probe will open it */
    if ((rc = be_open(backend, &(struct be_config){.n_threads = (int)threads}, &be)) < 0)
        goto done;
    int n_threads = be_threads(be);
    be_close(be);
    be = NULL;
    printf("model      %s\n", m->path);
    printf("plan       %s\n", plan->label);
    printf("workload   %s, %s backend, %d threads\n\n", w.label, backend, n_threads);
    row("weights", mem.weights, "quantizable layers in the plan's formats, and the other weights");
    row("kv cache", mem.kv_cache, m->kind == MQ_MODEL_LLAMA ? "K and V for the workload's context" : "");
    row("scratch", mem.scratch, "activations and temporaries");
    uint64_t model_total = mem.weights + mem.kv_cache + mem.scratch;
    if (!measure) {
        row("total", model_total, "(without the runtime overhead: measure it without --no-measure)");
        goto done;
    }
    uint64_t peak, baseline;
    if ((rc = prof_memory_probe(m->path, m->input_shapes, backend, n_threads, &w, plan, &peak, &baseline)) < 0)
        goto done;
    row("overhead", baseline, "measured: RSS of the process before the plan is built");
    row("total", model_total + baseline, "the memory model");
    double err = ((double)(model_total + baseline) - (double)peak) / (double)peak;
    char note[64];
    snprintf(note, sizeof(note), "measured; the model is %+.1f%% off", 100 * err);
    row("peak RSS", peak, note);
    if (max_error >= 0 && fabs(err) * 100 > max_error)
        rc = mq_error(MQ_ERANGE, "the memory model is %+.1f%% off the measured peak RSS (more than %g%%)", 100 * err,
                      max_error);
done:
    be_close(be);
    mq_plan_free(plan);
    mq_model_free(m);
    return cli_exit(rc);
}
