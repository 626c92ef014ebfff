/* cli/cmd_info.c - `mixq info MODEL`: what a model is, layer by layer. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/status.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/runner.h"
#include "tokenizer/tokenizer.h"

static void info_usage(FILE *f)
{
    fprintf(f, "usage: mixq info MODEL [--shapes S]\n\n"
               "Prints the architecture, hyperparameters, vocabulary and every quantizable layer\n"
               "(name, role, shape, stored type, bytes), and the weight bytes of the model in\n"
               "each format mixq can choose.\n\n"
               "options:\n"
               "  --shapes S  ONNX models: input shapes, trtexec's syntax NAME:1x3x640x640[,NAME:...];\n"
               "              needed where an input has a dynamic dimension other than the batch\n"
               "  -v, -q      more or fewer messages\n"
               "  --help      this text\n");
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'}, {"shapes", required_argument, NULL, CLI_OPT_SHAPES},
        {NULL, 0, NULL, 0},
    };
    const char *shapes = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            info_usage(stdout);
            return CLI_OK;
        case 'v':
            mq_log_set_level(MQ_LOG_DEBUG);
            break;
        case 'q':
            mq_log_set_level(MQ_LOG_WARN);
            break;
        case CLI_OPT_SHAPES:
            if (cli_check_shapes("info", optarg) != CLI_OK)
                return CLI_USAGE;
            shapes = optarg;
            break;
        default:
            return cli_bad_option("info", argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("info", "want exactly one MODEL argument");
    struct mq_model *m;
    if (cli_model_load(argv[optind], shapes, &m) < 0)
        return CLI_FAIL;
    char b1[32];
    bool mixed;
    enum mq_dtype src = mq_model_source_type(m, &mixed);
    printf("model         %s\n", m->path);
    printf("name          %s\n", m->name[0] ? m->name : "(none)");
    printf("architecture  %s\n", m->arch);
    if (m->gguf) /* other kinds describe their file below */
        printf("file          GGUF v%u, %s, %llu tensors, %llu metadata keys\n", m->gguf->version,
               cli_fmt_bytes(b1, sizeof(b1), m->file_bytes), (unsigned long long)m->gguf->n_tensors,
               (unsigned long long)m->gguf->n_kv);
    printf("parameters    %lld (%.2f M)\n", (long long)m->n_params, (double)m->n_params / 1e6);
    if (mq_dtype_get(src)->is_quantized || src == MQ_DTYPE_F16 || src == MQ_DTYPE_BF16 || mixed)
        printf("source type   %s%s: already reduced precision, so \"full precision\" below means the\n"
               "              weights as shipped, dequantized to f32\n",
               mq_dtype_name(src), mixed ? " (mostly; mixed)" : "");
    else
        printf("source type   %s (full precision)\n", mq_dtype_name(src));
    m->runner->describe(m, stdout);

    printf("\nquantizable layers (%d):\n", m->n_layers);
    printf("  %4s  %-28s %-12s %5s  %14s  %-5s %12s\n", "#", "name", "role", "block", "in x out", "type", "bytes");
    int64_t n_weights = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const struct mq_layer *l = &m->layers[i];
        char shape[48], blk[16];
        snprintf(shape, sizeof(shape), "%lld x %lld", (long long)l->n_in, (long long)l->n_out);
        snprintf(blk, sizeof(blk), "%d", l->block);
        printf("  %4d  %-28s %-12s %5s  %14s  %-5s %12zu\n", i, l->name, mq_layer_role_name(l->role),
               l->block >= 0 ? blk : "-", shape, mq_dtype_name(l->src_type), l->src_nbytes);
        n_weights += l->n_in * l->n_out;
    }
    printf("\nweights in quantizable layers: %lld; their bytes in each format:\n", (long long)n_weights);
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (!mq_dtype_get((enum mq_dtype)t)->is_plan_format)
            continue;
        struct mq_plan *p;
        if (mq_plan_uniform(m, (enum mq_dtype)t, &p) < 0)
            break;
        if (mq_plan_check(m, p) == MQ_OK)
            printf("  %-5s %6.2f bits/weight  %s\n", mq_dtype_name((enum mq_dtype)t),
                   mq_dtype_bits_per_weight((enum mq_dtype)t),
                   cli_fmt_bytes(b1, sizeof(b1), mq_plan_weight_bytes(m, p)));
        mq_plan_free(p);
    }
    mq_model_free(m);
    return CLI_OK;
}
