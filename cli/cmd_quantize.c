/* cli/cmd_quantize.c - `mixq quantize MODEL --plan P [--point N] -o OUT.gguf`: the model
 * written as GGUF with each layer in its planned format (model/quantize.h), with mixq's
 * provenance (reports/export.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/status.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/quantize.h"
#include "reports/export.h"
#include "reports/yaml_doc.h"

static void quantize_usage(FILE *f)
{
    fprintf(f, "usage: mixq quantize MODEL.gguf --plan P [--point N] [--imatrix FILE | --no-imatrix]\n"
               "                    -o OUT.gguf\n\n"
               "Writes the model as a GGUF file with every quantizable layer in the format the\n"
               "plan gives it, quantized by the same code that mixq measured (so the file is\n"
               "what was measured), and every other tensor and metadata key carried over.\n"
               "general.file_type says the plan's most common format (a llama.cpp preset's\n"
               "own type for a preset); mixq.* keys record the plan, the budgets and the\n"
               "figures measured for it (docs/recipes.md). The file is written atomically:\n"
               "on an error nothing is left at OUT.\n\n"
               "options:\n"
               "  --plan P        a front.yaml of 'mixq tune' (its chosen point, or --point N),\n"
               "                  a plan file (mixq_schema: plan/1), a format for every layer\n"
               "                  (f16, q8_0, q4_k, ...: llama-quantize --pure), a llama.cpp\n"
               "                  preset (Q4_K_M, Q3_K_S, ...: the types llama-quantize gives\n"
               "                  each tensor; preset:Q4_0 where the name is also a format's),\n"
               "                  or 'source'\n"
               "  --point N       with a front.yaml: the point of that index\n"
               "  --imatrix FILE  quantize with this importance matrix (llama-imatrix's GGUF or\n"
               "                  .dat; 'mixq imatrix' writes one): the bytes llama-quantize\n"
               "                  --imatrix FILE writes. Default: for a front.yaml of 'mixq tune',\n"
               "                  the importance matrix the front records (the one tune quantized\n"
               "                  every plan with: the file is then what tune measured), checked\n"
               "                  against its sha256; otherwise none\n"
               "  --no-imatrix    quantize plainly, even a front's plan made with an imatrix\n"
               "  -o, --output F  the GGUF file to write\n"
               "  -v, -q          more or fewer messages\n"
               "  --help          this text\n");
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_quantize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"plan", required_argument, NULL, 'p'}, {"point", required_argument, NULL, 'P'},
        {"imatrix", required_argument, NULL, 'I'},  {"no-imatrix", no_argument, NULL, 'N'},
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},    {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *plan_arg = NULL, *out = NULL, *imatrix = NULL;
    bool no_imatrix = false;
    long long point = -1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:vq", opts, NULL)) != -1) {
        int u = CLI_OK;
        switch (c) {
        case 'p': plan_arg = optarg; break;
        case 'P': u = cli_parse_int("quantize", "--point", optarg, 0, 1 << 30, &point); break;
        case 'o': out = optarg; break;
        case 'I': imatrix = optarg; break;
        case 'N': no_imatrix = true; break;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': quantize_usage(stdout); return CLI_OK;
        default: return cli_bad_option("quantize", argv);
        }
        if (u != CLI_OK)
            return u;
    }
    if (argc - optind != 1)
        return cli_usage_error("quantize", "want exactly one MODEL argument");
    if (!plan_arg)
        return cli_usage_error("quantize", "--plan is required");
    if (imatrix && no_imatrix)
        return cli_usage_error("quantize", "--imatrix and --no-imatrix: give one");
    if (!out)
        return cli_usage_error("quantize", "-o OUT.gguf is required");
    const char *src = argv[optind];
    if (same_file(src, out))
        return cli_exit(mq_error(MQ_EINVAL, "'%s' is the source model: write the quantized file elsewhere", out));

    struct mq_model *m = NULL;
    struct mq_plan *plan = NULL;
    static struct rpt_front_point pt; /* large: off the stack */
    static struct rpt_imatrix_ref im;
    bool is_front = false, im_front;
    int rc;
    if ((rc = mq_model_load(src, &m)) < 0 ||
        (rc = cli_load_plan_imatrix(m, plan_arg, point, imatrix, no_imatrix, &plan, &im, &im_front)) < 0)
        goto done;
    struct stat st;
    char schema[32] = "";
    if (stat(plan_arg, &st) == 0 && S_ISREG(st.st_mode) && rpt_yaml_schema_of(plan_arg, schema, sizeof(schema)) == 0 &&
        !strcmp(schema, "front")) {
        if ((rc = rpt_front_point_read(plan_arg, (int)point, &pt)) < 0)
            goto done;
        is_front = true;
        bool same = pt.imatrix.set == im.set && (!im.set || !strcmp(pt.imatrix.sha256, im.sha256));
        if (pt.measured && !same) { /* what tune measured is not this file */
            mq_warn("the front's plans were measured %s%s; this file is quantized %s%s: the measured figures are "
                    "left out of it", pt.imatrix.set ? "with the importance matrix " : "without an importance matrix",
                    pt.imatrix.set ? pt.imatrix.path : "", im.set ? "with " : "without an importance matrix",
                    im.set ? im.path : "");
            pt.measured = false;
        }
    }
    char from[4200];
    if (is_front)
        snprintf(from, sizeof(from), "%s point %d%s", plan_arg, pt.index, pt.chosen ? " (chosen)" : "");
    else
        snprintf(from, sizeof(from), "%s", plan_arg);
    struct rpt_provenance prov = {.m = m, .plan = plan, .plan_from = from, .pt = is_front ? &pt : NULL,
                                  .imatrix = &im};
    struct mq_quantize_result r;
    if ((rc = mq_quantize_write(m, plan, rpt_provenance_write, &prov, out, &r)) < 0)
        goto done;
    char b1[32], b2[32];
    printf("wrote      %s: %s, %d tensors (%d layers converted)\n", out, cli_fmt_bytes(b1, sizeof(b1), r.file_bytes),
           r.n_tensors, r.n_converted);
    printf("plan       %s from %s\n", plan->label, from);
    cli_print_imatrix("imatrix   ", &im, im_front, no_imatrix);
    if (plan->ftype >= 0) /* a llama.cpp preset: its own file type */
        printf("layers     %s of weights; general.file_type %d (%s)\n", cli_fmt_bytes(b2, sizeof(b2), r.weight_bytes),
               plan->ftype, plan->label);
    else
        printf("layers     %s of weights; general.file_type mostly %s\n",
               cli_fmt_bytes(b2, sizeof(b2), r.weight_bytes), mq_dtype_name(mq_quantize_file_type(plan)));
    if (is_front && pt.measured)
        printf("measured   kl %.6g, %s %.6g, memory %.0f bytes, latency %.4g us (%s on %s, %d threads, %s)\n", pt.kl,
               pt.metric_name, pt.metric, pt.mem_bytes, pt.lat_us, pt.target_backend, pt.target_cpu, pt.threads,
               pt.workload);
done:
    mq_plan_free(plan);
    mq_model_free(m);
    return cli_exit(rc);
}
