/* cli/cmd_imatrix.c - `mixq imatrix MODEL [--text FILE] [-o FILE]`: the importance matrix of
 * a llama model over calibration text, as llama-imatrix computes and writes it
 * (model/imatrix.h), for `llama-quantize --imatrix` and `mixq quantize --imatrix`. */
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "backends/backend.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/status.h"
#include "model/imatrix.h"
#include "model/model.h"

#define IMATRIX_DEFAULT_OUT "imatrix.gguf" /* llama-imatrix's default -o */

static void imatrix_usage(FILE *f)
{
    fprintf(f,
            "usage: mixq imatrix MODEL.gguf [--text FILE] [--ctx N] [--chunks N] [--process-output]\n"
            "                   [--gram] [-o FILE] [options]\n\n"
            "Computes the model's importance matrix the way llama-imatrix does: the model runs\n"
            "in full precision (its weights dequantized to f32) over the calibration text, cut\n"
            "into chunks of --ctx tokens (each starting a new sequence, with BOS in front when\n"
            "the vocabulary adds BOS), and for every matmul weight of the transformer blocks\n"
            "(blk.*) the sum of squared input activations per input column and the number of\n"
            "activation rows summed are collected. The file is llama.cpp's GGUF imatrix, written\n"
            "atomically: 'llama-quantize --imatrix FILE' and 'mixq quantize --imatrix FILE'\n"
            "take it.\n\n"
            "options:\n"
            "  --text FILE        calibration text (default: the bundled %s)\n"
            "  --ctx N            chunk length in tokens (default: the model's training context,\n"
            "                     at most %d; at least %d)\n"
            "  --chunks N         run only the first N chunks (default: every whole chunk)\n"
            "  --process-output   also collect output.weight (llama-imatrix --process-output;\n"
            "                     a tied output, token_embd.weight, is never collected)\n"
            "  --gram             also the Gram matrices of the layers' inputs (sums of x x^T,\n"
            "                     tensors NAME.in_gram, which llama.cpp's loader skips): with them\n"
            "                     'mixq quantize --imatrix FILE' quantizes with error compensation\n"
            "                     (see 'mixq tune --help'); layer inputs of at most %d values,\n"
            "                     %lld values in all (over that: none, said once)\n"
            "  -o, --output FILE  the imatrix to write (default %s)\n"
            "  --backend NAME     backend to run on (default cpu; see 'mixq backends')\n"
            "  --threads N        threads (default: the online CPUs, shared among the MPI\n"
            "                     ranks on this machine)\n"
            "  --shapes S         ONNX models: input shapes, trtexec's syntax\n"
            "                     NAME:1x3x640x640[,NAME:...]; needed where an input has a\n"
            "                     dynamic dimension other than the batch\n"
            "  -v, -q             more or fewer messages\n"
            "  --help             this text\n",
            MQ_IMATRIX_DEFAULT_TEXT, MQ_IMATRIX_DEFAULT_CTX, MQ_IMATRIX_MIN_CTX, MQ_GRAM_MAX_IN,
            (long long)MQ_GRAM_MAX_ELEMS, IMATRIX_DEFAULT_OUT);
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cmd_imatrix(int argc, char **argv)
{
    static const struct option opts[] = {
        {"text", required_argument, NULL, 't'},     {"ctx", required_argument, NULL, 'c'},
        {"chunks", required_argument, NULL, 'n'},   {"process-output", no_argument, NULL, 'P'},
        {"output", required_argument, NULL, 'o'},   {"backend", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 'j'},  {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},        {"quiet", no_argument, NULL, 'q'},
        {"shapes", required_argument, NULL, CLI_OPT_SHAPES}, {"gram", no_argument, NULL, 'G'},
        {NULL, 0, NULL, 0},
    };
    char default_text[4096];
    cli_data_path(default_text, sizeof(default_text), MQ_IMATRIX_DEFAULT_TEXT);
    const char *text = default_text, *out = IMATRIX_DEFAULT_OUT, *backend = "cpu";
    long long ctx = 0, chunks = 0, threads = 0;
    bool process_output = false, gram = false;
    const char *shapes = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:vq", opts, NULL)) != -1) {
        int u = CLI_OK;
        switch (c) {
        case 't': text = optarg; break;
        case 'c': u = cli_parse_int("imatrix", "--ctx", optarg, MQ_IMATRIX_MIN_CTX, 1 << 20, &ctx); break;
        case 'n': u = cli_parse_int("imatrix", "--chunks", optarg, 1, 1 << 30, &chunks); break;
        case 'P': process_output = true; break;
        case 'G': gram = true; break;
        case 'o': out = optarg; break;
        case 'b': backend = optarg; break;
        case 'j': u = cli_parse_int("imatrix", "--threads", optarg, 1, 1024, &threads); break;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': imatrix_usage(stdout); return CLI_OK;
        case CLI_OPT_SHAPES:
            if (cli_check_shapes("imatrix", optarg) != CLI_OK)
                return CLI_USAGE;
            shapes = optarg;
            break;
        default: return cli_bad_option("imatrix", argv);
        }
        if (u != CLI_OK)
            return u;
    }
    if (argc - optind != 1)
        return cli_usage_error("imatrix", "want exactly one MODEL argument");
    if (!*out)
        return cli_usage_error("imatrix", "-o wants a file name");
    if (same_file(out, argv[optind]))
        return cli_usage_error("imatrix", "-o '%s' is the model itself", out);

    int rc;
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    struct mq_imatrix *im = NULL;
    if ((rc = cli_model_load(argv[optind], shapes, &m)) < 0)
        goto done;
    if (m->kind != MQ_MODEL_LLAMA) {
        rc = mq_error(MQ_EUNSUPPORTED, "'%s' is not a llama (GGUF) model: importance matrices are llama.cpp's, "
                      "for GGUF models only", m->path);
        goto done;
    }
    if ((rc = be_open(backend, &(struct be_config){.n_threads = (int)threads}, &be)) < 0 ||
        (rc = mq_model_lend(m, be)) < 0)
        goto done;
    printf("model     %s (%s, %.2f M parameters)\n", m->path, m->arch, (double)m->n_params / 1e6);
    printf("backend   %s, %d threads, weights as the file stores them\n", be_name(be), be_threads(be));
    fflush(stdout);
    struct mq_imatrix_config cfg = {.text = text, .n_ctx = ctx, .max_chunks = chunks,
                                    .process_output = process_output, .gram = gram,
                                    .progress = true};
    double t0 = now_s();
    if ((rc = mq_imatrix_compute(m, be, &cfg, &im)) < 0)
        goto done;
    double secs = now_s() - t0;
    double n_tok = (double)im->chunk_count * (double)im->chunk_size;
    printf("text      %s\n", text);
    printf("imatrix   %d entries, %u chunks of %u tokens (%.0f tokens), %.2f s (%.1f tokens/s)\n", im->n_entries,
           im->chunk_count, im->chunk_size, n_tok, secs, secs > 0 ? n_tok / secs : 0.0);
    if (gram) {
        int n_gram = 0;
        for (int e = 0; e < im->n_entries; e++)
            n_gram += im->entries[e].gram != NULL;
        printf("gram      %d of %d entries with the Gram matrix of their inputs\n", n_gram, im->n_entries);
    }
    if ((rc = mq_imatrix_write(im, out)) < 0)
        goto done;
    printf("wrote     %s\n", out);
done:
    mq_imatrix_free(im);
    be_close(be);
    mq_model_free(m);
    return cli_exit(rc);
}
