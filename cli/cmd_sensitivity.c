/* cli/cmd_sensitivity.c - `mixq sensitivity MODEL`: quality loss per layer and format. */
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
#include "onnx/onnx.h"
#include "reports/plot.h"
#include "reports/sensitivity_io.h"
#include "search/sensitivity.h"

#define SENS_DEFAULT_CHUNKS 4

static void sens_usage(FILE *f)
{
    fprintf(f,
            "usage: mixq sensitivity MODEL [--eval FILE] [--formats LIST] [--sensitivity M] [--groups N]\n"
            "                        [--backend NAME] [--threads N] [--ctx N] [--chunks N] [--out DIR]\n\n"
            "Measures how much quality each quantizable layer loses in each format, and writes\n"
            "DIR/sensitivity.yaml with a plot (sensitivity.png/.svg). Methods (--sensitivity):\n"
            "  measured    with that layer alone quantized, the model's mean KL divergence from\n"
            "              full precision and its perplexity on the evaluation text: one evaluation\n"
            "              per layer and format; also reports how well the proxy ranks layers.\n"
            "  calibrated  for every layer and format, the error of its quantized weights (weighted\n"
            "              by the importance matrix where the model has one; no forward pass); each\n"
            "              group of layers (as in grouped) measured at three formats, its cheapest,\n"
            "              middle and dearest, and 16-bit formats once; a map from error to KL\n"
            "              fitted to those points (log KL = a per group + b per role x log error)\n"
            "              predicts every other loss. About 3 x groups evaluations (91 instead of\n"
            "              226 on the bundled model; about 90 instead of 1600 for a 30-block model\n"
            "              with 7 narrow formats). Reports the fit's leave-one-out rank correlation\n"
            "              and error.\n"
            "  grouped     measured on groups of layers (one role in a range of blocks: the first\n"
            "              block, the last, and the rest split in --groups - 2), shared out within\n"
            "              each group by weight count; a group per narrow format and group.\n"
            "  proxy       each layer's own output error on activations captured in one\n"
            "              full-precision pass, far cheaper but blind to how a layer's error\n"
            "              reaches the output.\n"
            "Default: measured when it takes at most %d evaluations (layers x formats analysed),\n"
            "calibrated above; the first message says which and why. sensitivity.yaml marks\n"
            "each loss measured, shared (of a group's measured KL) or predicted. Results are\n"
            "cached; an interrupted run resumes.\n\n"
            "options:\n"
            "  --eval FILE           evaluation data (default: the model config's; LLMs: the bundled\n"
            "                        KJV held-out text)\n"
            "  --inputs PATH         ONNX models: the inputs, NumPy arrays: a .npy (one input), a\n"
            "                        .npz (NAME.npy per input) or a folder of them (a data set);\n"
            "                        without, a model of no known task runs %d seeded random\n"
            "                        samples (synthetic: the output says so). Loss per output: KL\n"
            "                        after Softmax/LogSoftmax/Sigmoid, else relative MSE\n"
            "  --config FILE|none    model config, for its data and pins (default: the one in\n"
            "                        configs/models matching MODEL); pinned layers are not analysed\n"
            "  --formats LIST        formats to analyse (default f16,q8_0,q6_k,q5_k,q4_k,q3_k\n"
            "                        where rows allow; a layer's stored format always)\n"
            "  --sensitivity M       measured, calibrated, grouped or proxy (default: see above)\n"
            "  --groups N            grouped, calibrated: groups per role along depth (default %d)\n"
            "  --backend NAME        backend (default cpu)\n"
            "  --threads N           threads (default: the online CPUs, shared among the MPI\n"
            "                        ranks on this machine)\n"
            "  --ctx N               LLMs: chunk length (default min(training context, 512))\n"
            "  --chunks N            LLMs: chunks of the text to score (default %d); other models:\n"
            "                        the first N samples (default all)\n"
            "  --out DIR             output folder (default ./mixq-out)\n"
            "  --no-cache            evaluate again (results still refresh the cache)\n"
            "  --cache-dir DIR       cache folder (default $MIXQ_CACHE_DIR or ~/.cache/mixq)\n"
            "  --shapes S            ONNX models: input shapes, trtexec's syntax\n"
            "                        NAME:1x3x640x640[,NAME:...]; needed where an input has a\n"
            "                        dynamic dimension other than the batch\n"
            "  -v, -q                more or fewer messages\n"
            "  --help                this text\n",
            SRCH_SENS_AUTO_MAX_EVALS, MQ_ONNX_RANDOM_SAMPLES, SRCH_SENS_DEFAULT_DEPTH_GROUPS, SENS_DEFAULT_CHUNKS);
}

/* Prints the most sensitive layers of each format. */
static void print_summary(const struct srch_sensitivity *s, const char *yaml)
{
    printf("model     %s (%d layers)\n", s->model_path, s->n_layers);
    printf("method    %s (loss: %s), data %s\n", srch_sens_method_name(s->method), s->loss_name,
           s->data);
    if (!isnan(s->ref_metric))
        printf("reference %s %.4f (full precision)\n", s->metric_name, s->ref_metric);
    if (!isnan(s->rank_corr) && s->method == SRCH_SENS_MEASURED)
        printf("proxy     Spearman rank correlation with the measured loss: %.3f\n", s->rank_corr);
    if (s->method == SRCH_SENS_CALIBRATED) {
        int counts[SRCH_SRC_COUNT] = {0};
        for (int i = 0; i < s->n_layers * MQ_DTYPE_COUNT; i++)
            if (!isnan(s->loss[i]))
                counts[s->source[i]]++;
        printf("fit       %d measured group points, %s error; losses: %d measured, %d shared, %d predicted\n",
               s->n_points, s->err_weighted ? "importance-weighted" : "plain", counts[SRCH_SRC_MEASURED],
               counts[SRCH_SRC_SHARED], counts[SRCH_SRC_PREDICTED]);
        printf("          leave-one-out: Spearman %.3f, median error %.1f%%, worst %.1f%%\n", s->rank_corr,
               100 * s->loo_median_err, 100 * s->loo_worst_err);
    }
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        if (!((s->formats >> f) & 1u))
            continue;
        int order[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
        for (int l = 0; l < s->n_layers; l++) {
            double v = s->loss[l * MQ_DTYPE_COUNT + f];
            if (isnan(v))
                continue;
            for (int k = 0; k < 8; k++) {
                if (order[k] < 0 || v > s->loss[order[k] * MQ_DTYPE_COUNT + f]) {
                    memmove(order + k + 1, order + k, (size_t)(7 - k) * sizeof(int));
                    order[k] = l;
                    break;
                }
            }
        }
        printf("\n%s: most sensitive layers\n", mq_dtype_name((enum mq_dtype)f));
        for (int k = 0; k < 8 && order[k] >= 0; k++) {
            int i = order[k] * MQ_DTYPE_COUNT + f;
            printf("  %-28s %s %.3g", s->names[order[k]], s->loss_name, s->loss[i]);
            if (!isnan(s->metric[i]))
                printf("  %s %.4f", s->metric_name, s->metric[i]);
            printf("\n");
        }
    }
    printf("\n%d evaluated, %d from the cache, wall time %.1f s; wrote %s\n", s->n_evaluated, s->n_cached,
           s->wall_seconds, yaml);
}

int cmd_sensitivity(int argc, char **argv)
{
    static const struct option opts[] = {
        {"eval", required_argument, NULL, 'e'},    {"inputs", required_argument, NULL, CLI_OPT_INPUTS},    {"formats", required_argument, NULL, 'f'},
        {"sensitivity", required_argument, NULL, 'S'}, {"groups", required_argument, NULL, 'G'},
        {"backend", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 'j'}, {"ctx", required_argument, NULL, 'c'},
        {"chunks", required_argument, NULL, 'n'},  {"out", required_argument, NULL, 'o'},
        {"no-cache", no_argument, NULL, 'C'},      {"cache-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},          {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},         {"shapes", required_argument, NULL, CLI_OPT_SHAPES}, {NULL, 0, NULL, 0},
    };
    char default_text[4096];
    cli_data_path(default_text, sizeof(default_text), "examples/data/kjv-eval.txt");
    const char *eval = NULL, *formats = NULL, *backend = "cpu", *out_dir = "mixq-out", *cache_arg = NULL;
    const char *config = NULL;
    long long threads = 0, ctx = 0, chunks = -1, groups = 0;
    enum srch_sens_method method = SRCH_SENS_AUTO;
    bool no_cache = false, inputs_given = false;
    const char *shapes = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
        int u = CLI_OK;
        switch (c) {
        case 'e': eval = optarg; break;
        case CLI_OPT_INPUTS:
            eval = optarg;
            inputs_given = true;
            break;
        case 'f': formats = optarg; break;
        case 'S':
            if (srch_sens_method_parse(optarg, &method) < 0 || method == SRCH_SENS_AUTO)
                return cli_usage_error("sensitivity", "--sensitivity is measured, calibrated, grouped or proxy, not "
                                       "'%s'", optarg);
            break;
        case 'G': u = cli_parse_int("sensitivity", "--groups", optarg, 1, 1 << 20, &groups); break;
        case 'b': backend = optarg; break;
        case 'j': u = cli_parse_int("sensitivity", "--threads", optarg, 1, 1024, &threads); break;
        case 'c': u = cli_parse_int("sensitivity", "--ctx", optarg, 4, 1 << 20, &ctx); break;
        case 'n': u = cli_parse_int("sensitivity", "--chunks", optarg, 1, 1 << 30, &chunks); break;
        case 'o': out_dir = optarg; break;
        case 'C': no_cache = true; break;
        case 'd': cache_arg = optarg; break;
        case 'g': config = optarg; break;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': sens_usage(stdout); return CLI_OK;
        case CLI_OPT_SHAPES:
            if (cli_check_shapes("sensitivity", optarg) != CLI_OK)
                return CLI_USAGE;
            shapes = optarg;
            break;
        default: return cli_bad_option("sensitivity", argv);
        }
        if (u != CLI_OK)
            return u;
    }
    if (argc - optind != 1)
        return cli_usage_error("sensitivity", "want exactly one MODEL argument");
    uint32_t fmask = 0; /* 0: the default menu (core/dtype.h) */
    if (formats && cli_parse_formats("sensitivity", formats, &fmask) != CLI_OK)
        return CLI_USAGE;
    char cache_dir[4096];
    cli_cache_dir(cache_arg, cache_dir, sizeof(cache_dir));

    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    struct srch_sensitivity *s = NULL;
    static struct rpt_model_config cfg;
    static struct srch_pins pins;
    memset(&pins, 0, sizeof(pins));
    bool have_cfg;
    char cfg_data[4096];
    int rc;
    if ((rc = cli_model_load(argv[optind], shapes, &m)) < 0 || (rc = cli_check_inputs("sensitivity", m, inputs_given)) < 0)
        goto done;
    if ((rc = cli_tune_config("sensitivity", m, config, &cfg, &have_cfg, &pins)) < 0)
        goto done;
    if (!eval && have_cfg && cfg.data[0]) {
        cli_data_path(cfg_data, sizeof(cfg_data), cfg.data);
        eval = cfg_data;
    }
    if (!eval && m->kind == MQ_MODEL_LLAMA)
        eval = default_text;
    if (chunks < 0) /* LLMs: the first chunks of the text; other tasks: every sample */
        chunks = m->kind == MQ_MODEL_LLAMA ? SENS_DEFAULT_CHUNKS : 0;
    if (eval && (rc = cli_check_data(m, eval)) < 0)
        goto done;
    if ((rc = cli_make_dir(out_dir)) < 0)
        goto done;
    if ((rc = be_open(backend, &(struct be_config){.n_threads = (int)threads}, &be)) < 0 ||
        (rc = mq_model_lend(m, be)) < 0)
        goto done;
    if (method == SRCH_SENS_AUTO) {
        int n_meas;
        method = srch_sens_auto(m, fmask, &pins, &n_meas);
        if (n_meas < 0) {
            rc = n_meas;
            goto done;
        }
        mq_info("sensitivity: %s (measured would take %d evaluations, %s the %d above which calibrated is the "
                "default)", srch_sens_method_name(method), n_meas, method == SRCH_SENS_MEASURED ? "within" : "more than",
                SRCH_SENS_AUTO_MAX_EVALS);
    }
    struct srch_sens_options o = {.method = method, .formats = fmask, .depth_groups = (int)groups, .pins = &pins, .cache_dir = cache_dir,
                                  .cache_refresh = no_cache, .progress = true,
                                  .quality = {.data = eval, .ctx = ctx, .max_chunks = chunks}};
    if ((rc = srch_sensitivity_run(m, be, &o, &s)) < 0)
        goto done;
    char yaml[4200];
    snprintf(yaml, sizeof(yaml), "%s/sensitivity.yaml", out_dir);
    if ((rc = rpt_sensitivity_write(s, yaml)) < 0)
        goto done;
    char gp[4096];
    if (rpt_gnuplot_find(gp, sizeof(gp)) < 0)
        mq_warn("gnuplot is not installed: no plot (scripts/install-deps installs it)");
    else if ((rc = rpt_plot_sensitivity(out_dir, s)) < 0)
        goto done;
    print_summary(s, yaml);
done:
    srch_sensitivity_free(s);
    be_close(be);
    mq_model_free(m);
    return cli_exit(rc);
}
