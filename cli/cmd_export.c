/* cli/cmd_export.c - `mixq export FRONT [--point N] --to TARGET [-o FILE]`: a plan as the
 * command line or configuration of another tool (reports/export.h's table of targets). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/dtype.h"
#include "core/log.h"
#include "core/status.h"
#include "model/model.h"
#include "model/plan.h"
#include "reports/export.h"
#include "reports/yaml_doc.h"

static void export_usage(FILE *f)
{
    fprintf(f, "usage: mixq export FRONT.yaml [--point N] --to TARGET [-o FILE]\n"
               "       mixq export PLAN --model MODEL [--imatrix FILE] --to TARGET [-o FILE]\n\n"
               "Prints the recipe that makes another tool apply a plan: notes on what the tool\n"
               "cannot express and how it was rounded (lines starting with '#'), then the\n"
               "command. The plan is a point of a front.yaml (the chosen one unless --point),\n"
               "whose model the front names, or a plan file / format / llama.cpp preset\n"
               "(Q4_K_M, preset:Q4_0) for --model.\n\n"
               "targets:\n");
    for (int i = 0; i < rpt_export_n_targets; i++)
        fprintf(f, "  %-12s %s\n  %-12s -o writes %s\n", rpt_export_targets[i].name, rpt_export_targets[i].summary,
                "", rpt_export_targets[i].file_form);
    fprintf(f, "\noptions:\n"
               "  --to TARGET       the tool (above)\n"
               "  --point N         a front point by its index\n"
               "  --model MODEL     the model (default: the one the front names)\n"
               "  -o, --output F    also write the recipe's file form to F (llama.cpp: by default\n"
               "                    OUT-MODEL.tensor-types.txt, the --tensor-type-file that llama-quantize\n"
               "                    reads, beside the model the recipe makes)\n"
               "  --no-file         llama.cpp: write no file; the recipe is the --tensor-type flag form\n"
               "                    and names the importance matrix where it is\n"
               "  --imatrix FILE    llama.cpp: the importance matrix the plan is quantized with (default:\n"
               "                    a front's, the one 'mixq tune' quantized every plan with; none for\n"
               "                    other plans). The recipe names it (llama-quantize --imatrix), copied\n"
               "                    as OUT-MODEL.imatrix.gguf beside the rules file (-o) or the model it\n"
               "                    makes, unless --no-file, so that llama-quantize writes the tensors\n"
               "                    'mixq quantize' writes, byte for byte\n"
               "  --no-imatrix      llama.cpp: no importance matrix, even for a front that has one\n"
               "  --out-model F     the file the recipe makes (default: the model's name + -mixq)\n"
               "  --shapes S        ONNX models: input shapes, trtexec's syntax\n"
               "                    NAME:1x3x640x640[,NAME:...]; needed where an input has a\n"
               "                    dynamic dimension other than the batch\n"
               "  -v, -q            more or fewer messages\n"
               "  --help            this text\n\n"
               "docs/recipes.md maps mixq's formats to each tool's types.\n");
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},        {"point", required_argument, NULL, 'P'},
        {"model", required_argument, NULL, 'm'},     {"output", required_argument, NULL, 'o'},
        {"no-file", no_argument, NULL, 'N'},
        {"imatrix", required_argument, NULL, 'I'},   {"no-imatrix", no_argument, NULL, 'n'},
        {"out-model", required_argument, NULL, 'M'}, {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},         {"quiet", no_argument, NULL, 'q'},
        {"shapes", required_argument, NULL, CLI_OPT_SHAPES}, {NULL, 0, NULL, 0},
    };
    const char *to = NULL, *model_arg = NULL, *file = NULL, *out_model = NULL, *imatrix = NULL;
    long long point = -1;
    bool no_file = false, no_imatrix = false;
    const char *shapes = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:vq", opts, NULL)) != -1) {
        int u = CLI_OK;
        switch (c) {
        case 't': to = optarg; break;
        case 'P': u = cli_parse_int("export", "--point", optarg, 0, 1 << 30, &point); break;
        case 'm': model_arg = optarg; break;
        case 'o': file = optarg; break;
        case 'N': no_file = true; break;
        case 'I': imatrix = optarg; break;
        case 'n': no_imatrix = true; break;
        case 'M': out_model = optarg; break;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': export_usage(stdout); return CLI_OK;
        case CLI_OPT_SHAPES:
            if (cli_check_shapes("export", optarg) != CLI_OK)
                return CLI_USAGE;
            shapes = optarg;
            break;
        default: return cli_bad_option("export", argv);
        }
        if (u != CLI_OK)
            return u;
    }
    if (argc - optind != 1)
        return cli_usage_error("export", "want exactly one FRONT (or plan) argument");
    if (!to)
        return cli_usage_error("export", "--to is required (llama.cpp, trtexec or onnxruntime)");
    if (imatrix && no_imatrix)
        return cli_usage_error("export", "--imatrix and --no-imatrix: give one");
    const struct rpt_export_target *t = rpt_export_find(to);
    if (!t) {
        char names[128] = "";
        for (int i = 0; i < rpt_export_n_targets; i++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                     rpt_export_targets[i].name);
        return cli_usage_error("export", "'%s' is not a target (%s)", to, names);
    }
    const char *plan_arg = argv[optind];
    struct rpt_front_point pt;
    bool is_front = false;
    struct stat st;
    char schema[32] = "";
    int rc = MQ_OK;
    if (stat(plan_arg, &st) == 0 && S_ISREG(st.st_mode)) {
        if ((rc = rpt_yaml_schema_of(plan_arg, schema, sizeof(schema))) < 0)
            return cli_exit(rc);
        if (!strcmp(schema, "front")) {
            if ((rc = rpt_front_point_read(plan_arg, (int)point, &pt)) < 0)
                return cli_exit(rc);
            is_front = true;
        }
    }
    if (!is_front && !model_arg)
        return cli_usage_error("export", "'%s' is not a front.yaml: give the model with --model", plan_arg);

    struct mq_model *m = NULL;
    struct mq_plan *plan = NULL;
    static struct rpt_imatrix_ref im; /* large: off the stack */
    bool im_front;
    if ((rc = cli_model_load_for_plan(model_arg ? model_arg : pt.model_path, shapes, plan_arg, &m)) < 0)
        goto done;
    if (m->kind != MQ_MODEL_LLAMA && imatrix) {
        rc = mq_error(MQ_EUNSUPPORTED, "--imatrix: '%s' is an ONNX model; importance matrices apply to GGUF llama "
                      "models only", m->path);
        goto done;
    }
    if (m->kind != t->kind) {
        rc = mq_error(MQ_EUNSUPPORTED, "--to %s takes %s models; '%s' is %s", t->name,
                      t->kind == MQ_MODEL_ONNX ? "ONNX" : "GGUF llama", m->path,
                      m->kind == MQ_MODEL_ONNX ? "an ONNX model (try --to trtexec or onnxruntime)"
                                               : "a GGUF llama model (try --to llama.cpp)");
        goto done;
    }
    if ((rc = cli_load_plan_imatrix(m, plan_arg, is_front ? pt.index : point, imatrix, no_imatrix, &plan, &im,
                                    &im_front)) < 0)
        goto done;
    char from[4200];
    if (is_front)
        snprintf(from, sizeof(from), "%s point %d%s", plan_arg, pt.index, pt.chosen ? " (chosen)" : "");
    else
        snprintf(from, sizeof(from), "%s", plan_arg);
    struct rpt_export_input in = {
        .m = m, .plan = plan, .plan_from = from, .pt = is_front ? &pt : NULL, .output = out_model,
        .default_file = !no_file, .imatrix = &im};
    rc = t->write(&in, stdout, file);
done:
    mq_plan_free(plan);
    mq_model_free(m);
    return cli_exit(rc);
}
