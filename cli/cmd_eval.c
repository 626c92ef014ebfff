/* cli/cmd_eval.c - `mixq eval MODEL [--text FILE] [--plan FORMAT|FILE]`: quality of a plan. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/backend.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/status.h"
#include "llm/llama.h"
#include "model/eval.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/runner.h"
#include "onnx/onnx.h"
#include "reports/export.h"
#include "tokenizer/tokenizer.h"

#define EVAL_DEFAULT_TEXT "examples/data/kjv-eval.txt"

static void eval_usage(FILE *f)
{
    fprintf(f,
            "usage: mixq eval MODEL.gguf [--text FILE] [--plan FORMAT|PRESET|FILE] [options]\n\n"
            "Measures the perplexity of the model with the plan applied on a text file, and\n"
            "its KL divergence from the reference model, the way llama-perplexity does: the\n"
            "text is cut into chunks of --ctx tokens and the second half of each chunk is\n"
            "scored. The reference is the file's own weights, each layer in its stored type\n"
            "(f32 only where the backend cannot run that type), as llama-perplexity computes\n"
            "its base logits from the same file.\n\n"
            "options:\n"
            "  --text FILE        evaluation text (default: the bundled %s)\n"
            "  --inputs PATH      ONNX models: the inputs, NumPy arrays: a .npy (one input), a\n"
            "                     .npz (NAME.npy per input) or a folder of them (a data set);\n"
            "                     without, a model of no known task runs %d seeded random\n"
            "                     samples (synthetic). Loss per output: KL after Softmax,\n"
            "                     LogSoftmax or Sigmoid, else relative MSE; metric SQNR (dB)\n"
            "  --plan P           a format for every layer (f32, f16, q8_0, q4_k, ...), 'source'\n"
            "                     (each layer as stored in the file), a llama.cpp preset\n"
            "                     (Q4_K_M, Q3_K_S, ...: llama-quantize's per-tensor types;\n"
            "                     preset:Q4_0 where the name is also a format's), a plan file\n"
            "                     (YAML, mixq_schema: plan/1), or a front.yaml of 'mixq tune'\n"
            "                     (its chosen plan, or --point N); default f32\n"
            "  --point N          with a front.yaml: the front point of that index\n"
            "  --imatrix FILE     quantize with this importance matrix (llama-imatrix's GGUF or\n"
            "                     .dat, or 'mixq imatrix''s); default: for a front.yaml, the one\n"
            "                     'mixq tune' recorded there (so the KL is the one tune measured),\n"
            "                     otherwise none\n"
            "  --no-imatrix       quantize plainly, even a front's plan made with an imatrix\n"
            "  --backend NAME     backend to run on (default cpu; see 'mixq backends')\n"
            "  --threads N        threads (default: the online CPUs, shared among the MPI\n"
            "                     ranks on this machine)\n"
            "  --ctx N            chunk length in tokens (default: the model's training\n"
            "                     context, at most %d)\n"
            "  --chunks N         evaluate only the first N chunks\n"
            "  --no-kl            skip the reference pass (no KL divergence)\n"
            "  --save-logits FILE write the plan's log-probabilities at the scored positions in\n"
            "                     llama-perplexity's --kl-divergence-base format, so that\n"
            "                     llama-perplexity --kl-divergence compares llama.cpp with mixq\n"
            "  --shapes S         ONNX models: input shapes, trtexec's syntax\n"
            "                     NAME:1x3x640x640[,NAME:...]; needed where an input has a\n"
            "                     dynamic dimension other than the batch\n"
            "  -v, -q             more or fewer messages\n"
            "  --help             this text\n",
            EVAL_DEFAULT_TEXT, MQ_ONNX_RANDOM_SAMPLES, MQ_EVAL_DEFAULT_CTX);
}

/* LLMs: perplexity and KL over chunks of a text, llama-perplexity style. */
static int eval_llama(const struct mq_model *m, const struct mq_plan *plan, struct be_backend *be,
                      const char *text_path, long long ctx, long long chunks, bool want_kl,
                      const char *save_logits)
{
    char *text = NULL;
    int32_t *tokens = NULL;
    size_t text_len = 0, n_tokens = 0;
    struct mq_eval *ev = NULL;
    struct mq_plan *ref = NULL;
    int rc;
    if ((rc = mq_text_read(text_path, "evaluation text", false, &text, &text_len)) < 0 ||
        (rc = mq_vocab_tokenize_special(m->vocab, text, text_len, true, &tokens, &n_tokens)) < 0)
        goto done;
    int64_t n_ctx = mq_eval_ctx(m, ctx);
    if (n_ctx > m->hp.n_ctx_train)
        mq_warn("--ctx %lld is longer than the model's training context %lld", (long long)n_ctx,
                (long long)m->hp.n_ctx_train);
    /* the plan is the reference itself (mq_plan_reference): nothing to compare */
    if ((rc = mq_plan_reference(m, be, &ref)) < 0)
        goto done;
    bool is_ref_plan = true;
    for (int i = 0; i < plan->n_layers; i++)
        is_ref_plan &= plan->fmt[i] == ref->fmt[i];
    struct mq_eval_config ec = {.n_ctx = n_ctx, .max_chunks = chunks, .progress = true,
                                .reference = want_kl && !is_ref_plan};
    struct mq_eval_result r;
    if ((rc = mq_eval_new(m, be, tokens, n_tokens, &ec, &ev)) < 0 || (rc = mq_eval_plan(ev, plan, save_logits, &r)) < 0)
        goto done;
    printf("text      %s: %zu bytes, %lld tokens, %lld chunks of %lld, %lld scored tokens\n", text_path,
           text_len, (long long)r.n_tokens, (long long)r.n_chunks, (long long)n_ctx, (long long)r.n_scored);
    printf("ppl       %.4f +/- %.4f  (mean nll %.6f nats, %.4f bits/token)\n", r.ppl, r.ppl_stderr,
           r.nll_mean, r.nll_mean / 0.6931471805599453);
    if (r.has_ref) {
        printf("ref ppl   %.4f (%s), ratio %.4f\n", r.ref_ppl, ref->label, r.ppl / r.ref_ppl);
        printf("kl        mean %.6f +/- %.6f, median %.6f, p99 %.6f, max %.6f\n", r.kl_mean, r.kl_stderr,
               r.kl_median, r.kl_p99, r.kl_max);
        printf("same top  %.2f%%\n", 100.0 * r.top1_agree);
    } else if (want_kl && is_ref_plan) {
        /* every layer as the reference stores it: the same bytes through the same kernels,
         * so the KL is 0 by construction (no second pass to show it) */
        printf("ref ppl   %.4f (%s: this plan), ratio 1.0000\n", r.ppl, ref->label);
        printf("kl        mean 0.000000 +/- 0.000000, median 0.000000, p99 0.000000, max 0.000000 (the plan is the reference)\n");
        printf("same top  100.00%%\n");
    }
    double tokens_evaluated = (double)(r.n_chunks * n_ctx);
    char b2[32] = "";
    if (r.has_ref)
        snprintf(b2, sizeof(b2), ", reference pass %.2f s", r.ref_seconds);
    printf("time      %.2f s for %.0f tokens (%.1f tokens/s)%s\n", r.seconds, tokens_evaluated,
           tokens_evaluated / r.seconds, b2);
done:
    mq_eval_free(ev);
    mq_plan_free(ref);
    free(tokens);
    free(text);
    return rc;
}

/* Other model kinds: the runner's quality measurement against full precision. */
static int eval_generic(const struct mq_model *m, const struct mq_plan *plan, struct be_backend *be,
                        const char *data, long long samples)
{
    void *q = NULL;
    struct mq_quality r;
    struct mq_quality_config qc = {.data = data, .max_chunks = samples, .progress = true};
    int rc = m->runner->quality_new(m, be, &qc, &q);
    if (rc == MQ_OK)
        rc = m->runner->quality_eval(q, plan, &r);
    if (rc == MQ_OK) {
        printf("%-9s %.6g (full precision %.6g; %s is better)\n", r.metric_name, r.metric, r.ref_metric,
               r.higher_is_better ? "higher" : "lower");
        const char *unit = m->runner->loss_name ? m->runner->loss_name(m, &qc) : "kl";
        printf("%-9s mean %.6g +/- %.3g over %lld samples\n", unit, r.loss, r.loss_stderr, (long long)r.n_samples);
        if (!isnan(r.top1_agree))
            printf("same top  %.2f%%\n", 100.0 * r.top1_agree);
        if (r.note[0])
            printf("also      %s\n", r.note);
        printf("time      %.2f s\n", r.seconds);
    }
    if (q)
        m->runner->quality_free(q);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"text", required_argument, NULL, 't'},    {"inputs", required_argument, NULL, CLI_OPT_INPUTS},    {"plan", required_argument, NULL, 'p'},
        {"backend", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 'j'},
        {"ctx", required_argument, NULL, 'c'},     {"chunks", required_argument, NULL, 'n'},
        {"no-kl", no_argument, NULL, 'k'},         {"help", no_argument, NULL, 'h'},
        {"save-logits", required_argument, NULL, 's'}, {"point", required_argument, NULL, 'P'},
        {"imatrix", required_argument, NULL, 'I'}, {"no-imatrix", no_argument, NULL, 'N'},
        {"verbose", no_argument, NULL, 'v'},       {"quiet", no_argument, NULL, 'q'},
        {"shapes", required_argument, NULL, CLI_OPT_SHAPES}, {NULL, 0, NULL, 0},
    };
    char default_text[4096];
    cli_data_path(default_text, sizeof(default_text), EVAL_DEFAULT_TEXT);
    const char *text_path = default_text, *plan_arg = "f32", *backend = "cpu", *save_logits = NULL, *imatrix = NULL;
    long long threads = 0, ctx = 0, chunks = 0, point = -1;
    bool want_kl = true, no_imatrix = false, inputs_given = false;
    const char *shapes = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
        int u = CLI_OK;
        switch (c) {
        case 't': text_path = optarg; break;
        case CLI_OPT_INPUTS:
            text_path = optarg;
            inputs_given = true;
            break;
        case 'p': plan_arg = optarg; break;
        case 'b': backend = optarg; break;
        case 'j': u = cli_parse_int("eval", "--threads", optarg, 1, 1024, &threads); break;
        case 'c': u = cli_parse_int("eval", "--ctx", optarg, 4, 1 << 20, &ctx); break;
        case 'n': u = cli_parse_int("eval", "--chunks", optarg, 1, 1 << 30, &chunks); break;
        case 'k': want_kl = false; break;
        case 's': save_logits = optarg; break;
        case 'P': u = cli_parse_int("eval", "--point", optarg, 0, 1 << 30, &point); break;
        case 'I': imatrix = optarg; break;
        case 'N': no_imatrix = true; break;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': eval_usage(stdout); return CLI_OK;
        case CLI_OPT_SHAPES:
            if (cli_check_shapes("eval", optarg) != CLI_OK)
                return CLI_USAGE;
            shapes = optarg;
            break;
        default: return cli_bad_option("eval", argv);
        }
        if (u != CLI_OK)
            return u;
    }
    if (argc - optind != 1)
        return cli_usage_error("eval", "want exactly one MODEL argument");
    if (imatrix && no_imatrix)
        return cli_usage_error("eval", "--imatrix and --no-imatrix: give one");

    int rc;
    struct mq_model *m = NULL;
    struct mq_plan *plan = NULL;
    struct be_backend *be = NULL;
    static struct rpt_imatrix_ref im; /* large: off the stack */
    bool im_front;
    if ((rc = cli_model_load_for_plan(argv[optind], shapes, plan_arg, &m)) < 0 ||
        (rc = cli_check_inputs("eval", m, inputs_given)) < 0 ||
        (m->kind == MQ_MODEL_ONNX && text_path != default_text && (rc = mq_onnx_check_data(m, text_path)) < 0) ||
        (rc = cli_load_plan_imatrix(m, plan_arg, point, imatrix, no_imatrix, &plan, &im, &im_front)) < 0 ||
        (rc = be_open(backend, &(struct be_config){.n_threads = (int)threads}, &be)) < 0 ||
        (rc = mq_model_lend(m, be)) < 0)
        goto done;
    char b1[32];
    printf("model     %s (%s, %.2f M parameters)\n", m->path, m->arch, (double)m->n_params / 1e6);
    printf("plan      %s, weights %s\n", plan->label, cli_fmt_bytes(b1, sizeof(b1), mq_plan_weight_bytes(m, plan)));
    if (m->kind == MQ_MODEL_LLAMA)
        cli_print_imatrix("imatrix  ", &im, im_front, no_imatrix);
    printf("backend   %s, %d threads\n", be_name(be), be_threads(be));
    fflush(stdout);
    if (m->kind == MQ_MODEL_LLAMA)
        rc = eval_llama(m, plan, be, text_path, ctx, chunks, want_kl, save_logits);
    else
        rc = eval_generic(m, plan, be, text_path == default_text ? NULL : text_path, chunks);
done:
    be_close(be);
    mq_plan_free(plan);
    mq_model_free(m);
    return cli_exit(rc);
}
