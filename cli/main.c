/* cli/main.c - `mixq COMMAND [ARGS]`: global options and the command table (git style). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/dist.h"
#include "core/log.h"
#include "model/imatrix.h"
#include "profiler/quality.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"tune", cmd_tune, "the main job: profile, sensitivity, Pareto search, validated plan"},
    {"info", cmd_info, "architecture, hyperparameters, every quantizable layer, sizes"},
    {"eval", cmd_eval, "perplexity and KL divergence of a plan on evaluation text"},
    {"profile", cmd_profile, "per-layer costs in each format on this target, with counters"},
    {"memory", cmd_memory, "what a plan needs in memory: the memory model and the measured peak RSS"},
    {"sensitivity", cmd_sensitivity, "quality loss of each layer in each format: measured, grouped or proxy"},
    {"search", cmd_search, "the Pareto front from a profile and a sensitivity table"},
    {"compare", cmd_compare, "hardware comparison report (HTML, Markdown) from profiles and fronts of several targets"},
    {"backends", cmd_backends, "backends, their capabilities, counters and the topology"},
    {"imatrix", cmd_imatrix, "importance matrix of a model over calibration text (llama-imatrix's file)"},
    {"quantize", cmd_quantize, "write a GGUF with each layer in its planned format (a front point, a plan)"},
    {"export", cmd_export, "a plan as a recipe for llama.cpp (llama-quantize), trtexec or onnxruntime"},
    {"agent", cmd_agent, "serve measurements on stdin/stdout for a host's 'tune --remote'"},
    {"synth", cmd_synth, "a llama-shaped GGUF of random weights at real sizes, for cost work"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: mixq [-v | -q] COMMAND [ARGS]\n"
               "       mixq --version | --help\n\n"
               "mixq measures what each layer of a model costs and loses in each precision on\n"
               "this hardware, and picks per-layer formats (F16, Q8_0, the K-quants and the other\n"
               "block formats llama.cpp deploys) for given budgets.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\noptions:\n"
               "  -v, --verbose   more messages on stderr (debug)\n"
               "  -q, --quiet     only warnings and errors on stderr\n"
               "  --version       print the version\n"
               "  --help          this text; `mixq COMMAND --help` for a command\n\n"
               "exit status: 0 success, 1 failure, 2 bad usage\n");
}

static int run(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            mq_log_set_level(MQ_LOG_DEBUG);
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            mq_log_set_level(MQ_LOG_WARN);
        } else if (!strcmp(a, "--version")) {
            printf("mixq %s\n", MIXQ_VERSION);
            return CLI_OK;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        } else {
            fprintf(stderr, "mixq: error: unknown option '%s' (see 'mixq --help')\n", a);
            return CLI_USAGE;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "mixq: error: no command given (see 'mixq --help')\n");
        return CLI_USAGE;
    }
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
        if (!strcmp(argv[i], commands[c].name))
            return commands[c].fn(argc - i, argv + i);
    if (!strcmp(argv[i], "__memory-probe")) /* internal, not listed */
        return cmd_memory_probe(argc - i, argv + i);
    if (!strcmp(argv[i], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    fprintf(stderr, "mixq: error: '%s' is not a mixq command (see 'mixq --help')\n", argv[i]);
    return CLI_USAGE;
}

/* Under an MPI launcher, ranks 1..N-1 run no command: they serve rank 0's passes
 * (core/dist.h), with the global -v/-q of the command line. */
int main(int argc, char **argv)
{
    bool worker = false;
    mq_dist_register(&prof_quality_dist_job);
    mq_dist_register(&prof_qerr_dist_job);
    mq_dist_register(&mq_imatrix_dist_job);
    if (mq_dist_init(&argc, &argv, &worker) < 0)
        return CLI_FAIL;
    if (worker) {
        for (int i = 1; i < argc && argv[i][0] == '-'; i++)
            if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
                mq_log_set_level(MQ_LOG_DEBUG);
            else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
                mq_log_set_level(MQ_LOG_WARN);
        return mq_dist_serve();
    }
    int rc = run(argc, argv);
    mq_dist_finish();
    return rc;
}
