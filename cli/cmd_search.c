/* cli/cmd_search.c - `mixq search --profile P --sensitivity S`: the Pareto front from a
 * cost table and a sensitivity table, optionally validated on the target. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "cli/cli.h"
#include "cli/tune_common.h"
#include "core/log.h"
#include "core/status.h"
#include "model/model.h"
#include "profiler/profile.h"
#include "reports/profile_io.h"
#include "reports/sensitivity_io.h"
#include "search/budget.h"
#include "search/pins.h"
#include "search/tune.h"

static void search_usage(FILE *f)
{
    fprintf(f,
            "usage: mixq search --profile FILE --sensitivity FILE [--budget SIZE] [--size SIZE]\n"
            "                   [--latency TIME] [--max-kl X] [MODEL] [options]\n\n"
            "Computes the Pareto front of plans over (memory, latency, loss) from a profile.yaml\n"
            "(mixq profile) and a sensitivity.yaml (mixq sensitivity), and the best point within\n"
            "the budgets, as predicted: exact (exhaustive or a dynamic program) where the space\n"
            "allows, epsilon-approximate with stated bounds where not. Writes DIR/front.yaml and\n"
            "the front's plots. With --validate N the N front points nearest the budgets and the\n"
            "uniform plans are also built and measured on this machine, as 'mixq tune' does.\n\n"
            "MODEL defaults to the model the profile was made from; it must be the same model.\n\n"
            "options:\n"
            "  --profile FILE        cost table (profile.yaml)\n"
            "  --sensitivity FILE    loss table (sensitivity.yaml)\n"
            "  --budget SIZE         memory budget: B, KB, MB, GB, KiB, MiB, GiB (default none)\n"
            "  --size SIZE           file size budget: bytes of the GGUF file 'mixq quantize' writes\n"
            "                        (default none; GGUF models)\n"
            "  --latency TIME        latency budget per workload run: us, ms, s (default none)\n"
            "  --max-kl X            quality bound, mean KL in nats: the best point is the fastest\n"
            "                        predicted within it (a KL sensitivity table); with --validate, the\n"
            "                        fastest measured within it, as 'mixq tune --max-kl'\n"
            "  --formats LIST        formats layers may take (default f16,q8_0,q6_k,q5_k,q4_k,q3_k\n"
            "                        where rows allow; a layer's stored format always)\n"
            "  --pin LAYER=FORMAT    fix a layer's format (a name or a glob); repeatable\n"
            "  --config FILE|none    model config with pins (default: the one matching MODEL)\n"
            "  --validate N          measure N front points (at least 8) and the baselines here\n"
            "  --eval FILE           with --validate: evaluation data (default as 'mixq tune')\n"
            "  --inputs PATH         with --validate, ONNX models: NumPy inputs (see 'mixq tune')\n"
            "  --ctx N, --chunks N   with --validate: LLM chunk length and count (default as 'mixq tune')\n"
            "  --backend NAME        with --validate: backend (default: the profile's)\n"
            "  --threads N           with --validate: threads (default: the profile's)\n"
            "  --no-memory           with --validate: memory from the memory model, no probes\n"
            "  --out DIR             output folder (default ./mixq-out)\n"
            "  --no-plots            front.yaml only\n"
            "  --shapes S            ONNX models: input shapes, trtexec's syntax\n"
            "                        NAME:1x3x640x640[,NAME:...]; needed where an input has a\n"
            "                        dynamic dimension other than the batch\n"
            "  -v, -q                more or fewer messages\n"
            "  --help                this text\n");
}

int cmd_search(int argc, char **argv)
{
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'r'}, {"sensitivity", required_argument, NULL, 'S'},
        {"budget", required_argument, NULL, 'B'},  {"latency", required_argument, NULL, 'L'},
        {"size", required_argument, NULL, 'Z'},    {"max-kl", required_argument, NULL, 'K'},
        {"formats", required_argument, NULL, 'f'}, {"pin", required_argument, NULL, 'p'},
        {"config", required_argument, NULL, 'g'},  {"validate", required_argument, NULL, 'V'},
        {"eval", required_argument, NULL, 'e'},    {"inputs", required_argument, NULL, CLI_OPT_INPUTS},    {"ctx", required_argument, NULL, 'c'},
        {"chunks", required_argument, NULL, 'n'},  {"backend", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 'j'}, {"no-memory", no_argument, NULL, 'M'},
        {"out", required_argument, NULL, 'o'},     {"no-plots", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},          {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},         {"shapes", required_argument, NULL, CLI_OPT_SHAPES}, {NULL, 0, NULL, 0},
    };
    const char *prof_path = NULL, *sens_path = NULL, *formats = NULL, *config = NULL, *eval = NULL;
    const char *backend = NULL, *out_dir = "mixq-out";
    double mem_budget = SRCH_NO_BUDGET, lat_budget = SRCH_NO_BUDGET, size_budget = SRCH_NO_BUDGET, max_kl = 0;
    bool has_max_kl = false, inputs_given = false;
    long long n_validate = 0, ctx = 0, chunks = 4, threads = 0;
    bool probe = true, plots = true;
    static struct srch_pins cli_pins, pins;
    memset(&cli_pins, 0, sizeof(cli_pins));
    memset(&pins, 0, sizeof(pins));
    const char *shapes = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
        int u = CLI_OK;
        switch (c) {
        case 'r': prof_path = optarg; break;
        case 'S': sens_path = optarg; break;
        case 'B':
            if (srch_budget_parse_bytes(optarg, &mem_budget) < 0)
                return CLI_USAGE;
            break;
        case 'Z':
            if (srch_budget_parse_bytes(optarg, &size_budget) < 0)
                return CLI_USAGE;
            break;
        case 'L':
            if (srch_budget_parse_time(optarg, &lat_budget) < 0)
                return CLI_USAGE;
            break;
        case 'K':
            if (srch_budget_parse_kl(optarg, &max_kl) < 0)
                return CLI_USAGE;
            has_max_kl = true;
            break;
        case 'f': formats = optarg; break;
        case 'p':
            if (srch_pins_parse(&cli_pins, optarg, "--pin") < 0)
                return CLI_USAGE;
            break;
        case 'g': config = optarg; break;
        case 'V': u = cli_parse_int("search", "--validate", optarg, 8, 4096, &n_validate); break;
        case 'e': eval = optarg; break;
        case CLI_OPT_INPUTS:
            eval = optarg;
            inputs_given = true;
            break;
        case 'c': u = cli_parse_int("search", "--ctx", optarg, 4, 1 << 20, &ctx); break;
        case 'n': u = cli_parse_int("search", "--chunks", optarg, 1, 1 << 30, &chunks); break;
        case 'b': backend = optarg; break;
        case 'j': u = cli_parse_int("search", "--threads", optarg, 1, 1024, &threads); break;
        case 'M': probe = false; break;
        case 'o': out_dir = optarg; break;
        case 'P': plots = false; break;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': search_usage(stdout); return CLI_OK;
        case CLI_OPT_SHAPES:
            if (cli_check_shapes("search", optarg) != CLI_OK)
                return CLI_USAGE;
            shapes = optarg;
            break;
        default: return cli_bad_option("search", argv);
        }
        if (u != CLI_OK)
            return u;
    }
    if (!prof_path || !sens_path)
        return cli_usage_error("search", "--profile and --sensitivity are required");
    if (argc - optind > 1)
        return cli_usage_error("search", "want at most one MODEL argument");
    uint32_t fmask = 0; /* 0: the default menu (core/dtype.h) */
    if (formats && cli_parse_formats("search", formats, &fmask) != CLI_OK)
        return CLI_USAGE;

    struct prof_profile *prof = NULL;
    struct srch_sensitivity *sens = NULL;
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    struct srch_tune *t = NULL;
    static struct rpt_model_config cfg;
    bool have_cfg;
    char cfg_data[4096], default_text[4096];
    int rc;
    if ((rc = rpt_profile_read(prof_path, &prof)) < 0 || (rc = rpt_sensitivity_read(sens_path, &sens)) < 0)
        goto done;
    if ((rc = cli_model_load(optind < argc ? argv[optind] : prof->model_path, shapes, &m)) < 0 ||
        (rc = cli_check_inputs("search", m, inputs_given)) < 0)
        goto done;
    if (has_max_kl && !n_validate && strcmp(sens->loss_name, "kl")) {
        rc = mq_error(MQ_EINVAL, "--max-kl bounds KL, and '%s' holds %s losses (%s sensitivity): give --validate N "
                      "to measure KL, or a KL sensitivity table", sens_path, sens->loss_name,
                      srch_sens_method_name(sens->method));
        goto done;
    }
    if ((rc = cli_tune_config("search", m, config, &cfg, &have_cfg, &pins)) < 0)
        goto done;
    for (int i = 0; i < cli_pins.n; i++)
        if ((rc = srch_pins_add(&pins, cli_pins.pin[i].layer, cli_pins.pin[i].fmt, "--pin")) < 0)
            goto done;
    if ((rc = cli_make_dir(out_dir)) < 0)
        goto done;
    cli_data_path(default_text, sizeof(default_text), "examples/data/kjv-eval.txt");
    if (!eval && have_cfg && cfg.data[0]) {
        cli_data_path(cfg_data, sizeof(cfg_data), cfg.data);
        eval = cfg_data;
    }
    if (!eval && m->kind == MQ_MODEL_LLAMA)
        eval = default_text;
    if (n_validate && eval && (rc = cli_check_data(m, eval)) < 0)
        goto done;
    if (!backend)
        backend = prof->target.backend;
    if (!threads)
        threads = prof->target.threads;
    struct cli_file_size fsz;
    cli_file_size_init(&fsz, m, prof, out_dir, mem_budget, lat_budget, size_budget, NULL);
    fsz.pt.has_max_kl = has_max_kl; /* quantize records it too */
    fsz.pt.max_kl = max_kl;
    struct srch_tune_options to = {.mem_budget = mem_budget, .lat_budget = lat_budget, .size_budget = size_budget,
                                   .file_bytes = cli_file_size_bytes, .file_bytes_ctx = &fsz, .formats = fmask,
                                   .has_max_kl = has_max_kl, .max_kl = max_kl,
                                   .pins = &pins, .n_validate = (int)n_validate, .probe_memory = probe,
                                   .backend = backend, .quality = {.data = eval, .ctx = ctx, .max_chunks = chunks},
                                   .progress = true};
    if ((rc = srch_tune_search(m, prof, sens, &to, &t)) < 0)
        goto done;
    if (n_validate > 0) {
        if ((rc = be_open(backend, &(struct be_config){.n_threads = (int)threads}, &be)) < 0 ||
            (rc = mq_model_lend(m, be)) < 0 || (rc = srch_tune_validate(m, be, prof, &to, t)) < 0)
            goto done;
    }
    if ((rc = cli_tune_write(out_dir, m, prof, sens, t, plots, NULL)) < 0)
        goto done;
    cli_tune_summary(m, prof, sens, t, NULL);
    printf("wrote        %s/front.yaml%s\n", out_dir, plots ? " and plots" : "");
    if (n_validate > 0 && t->chosen < 0)
        rc = cli_tune_unmet(t, "");
    else if (!n_validate && has_max_kl && t->front->pts[t->best].loss > max_kl)
        rc = mq_error(MQ_ERANGE, "no plan within the budgets is predicted within --max-kl %g: the lowest predicted "
                      "KL within them is %.4g (point %d); predicted KL is a sum of per-layer KLs, --validate N "
                      "measures it", max_kl, t->front->pts[t->best].loss, t->best);
done:
    srch_tune_free(t);
    be_close(be);
    mq_model_free(m);
    srch_sensitivity_free(sens);
    prof_profile_free(prof);
    return cli_exit(rc);
}
