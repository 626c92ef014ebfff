/* cli/cmd_synth.c - `mixq synth --arch llama --params 7B -o FILE`: a GGUF of random weights
 * at a real model's sizes (cost work), of any architecture mixq runs (forward-pass oracles). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/status.h"
#include "llm/arch.h"
#include "model/synth.h"

static void synth_usage(FILE *f)
{
    fprintf(f,
            "usage: mixq synth [--arch ARCH] --params PRESET [--type TYPE] [--vocab N] [--seed N]\n"
            "                  [--stddev S] [--head-dim N] [--sliding-window N] [--rope-freqs] [--threads N]\n"
            "                  -o FILE.gguf\n\n"
            "Writes a GGUF file of random weights at the shapes of a real\n"
            "model, so that costs (mixq profile, memory) can be measured at real sizes without\n"
            "downloading anything. FOR COST PROFILING ONLY: the weights are random (normal,\n"
            "stddev 0.02; norms 1), so the model's outputs are meaningless and quality figures\n"
            "(perplexity, KL divergence, sensitivity) measured on it mean nothing. The file says\n"
            "so: general.name starts with \"synthetic\" and mixq.synthetic is true.\n\n"
            "The vocabulary is byte-level (256 byte tokens, BOS, EOS) padded with unused filler\n"
            "tokens to the preset's size, so mixq and llama.cpp load and tokenize the file.\n"
            "The output matrix is untied (tied for gemma, gemma2, gemma3). The file is written atomically, tensor by tensor (a few\n"
            "MiB of memory whatever the size), after checking the free disk space.\n\n"
            "presets (--params):\n");
    size_t n;
    const struct mq_synth_config *p = mq_synth_presets(&n);
    for (size_t i = 0; i < n; i++) {
        uint64_t f16 = 0, q4 = 0;
        mq_synth_file_bytes(&p[i], &(struct mq_synth_options){.type = MQ_DTYPE_F16}, &f16);
        mq_synth_file_bytes(&p[i], &(struct mq_synth_options){.type = MQ_DTYPE_Q4_0}, &q4);
        double params = (double)mq_synth_n_params(&p[i]);
        char b16[32], b4[32];
        fprintf(f,
                "  %-5s %s: embedding %lld, %lld blocks, %lld heads (%lld kv), ffn %lld,\n"
                "        vocab %lld, context %lld; %.2f %s params; f16 %s, q4_0 %s\n",
                p[i].name, p[i].like, (long long)p[i].n_embd, (long long)p[i].n_layer,
                (long long)p[i].n_head, (long long)p[i].n_head_kv, (long long)p[i].n_ff,
                (long long)p[i].n_vocab, (long long)p[i].n_ctx,
                params >= 1e9 ? params / 1e9 : params / 1e6, params >= 1e9 ? "B" : "M",
                cli_fmt_bytes(b16, sizeof(b16), f16), cli_fmt_bytes(b4, sizeof(b4), q4));
    }
    char archs[256];
    mq_arch_list(archs, sizeof(archs));
    fprintf(f,
            "\noptions:\n"
            "  --arch ARCH         the architecture: %s (default llama), with\n"
            "                      what its row has (qwen2 biases, phi3 fused tensors, gemma norms...)\n"
            "  --params PRESET     the shapes, from the presets above (required)\n"
            "  --type TYPE         weight type: f16 (default) or any plan format whose blocks divide the\n"
            "                      preset's rows (K-quants and iq4_xs: multiples of 256; not 'tiny')\n"
            "  --vocab N           vocabulary size instead of the preset's (%d..%d)\n"
            "  --seed N            random seed (default 1); a seed always gives the same file\n"
            "  --stddev S          the weights' standard deviation (default 0.02; 0 < S <= 1)\n"
            "  --head-dim N        head size, written as attention.key_length (default embedding / heads)\n"
            "  --sliding-window N  window of the sliding layers (gemma2, gemma3; default: the architecture's)\n"
            "  --rope-freqs        RoPE frequency factors: llama 3.1's rope_freqs.weight (llama; the\n"
            "                      \"llama3\" rule with the preset's context as the original one), or\n"
            "                      LongRoPE's long and short factors and attention factor (phi3; an\n"
            "                      original context of the preset's / 8)\n"
            "  --threads N         threads generating and quantizing (default: all CPUs)\n"
            "  -o, --output FILE   the GGUF file to write (replaced if it exists)\n"
            "  -v, -q              more or fewer messages\n"
            "  --help              this text\n",
            archs, MQ_SYNTH_MIN_VOCAB, MQ_SYNTH_MAX_VOCAB);
}

int cmd_synth(int argc, char **argv)
{
    enum {
        OPT_ARCH = 256,
        OPT_PARAMS,
        OPT_TYPE,
        OPT_VOCAB,
        OPT_SEED,
        OPT_THREADS,
        OPT_STDDEV,
        OPT_HEAD_DIM,
        OPT_SWA,
        OPT_ROPE_FREQS
    };
    static const struct option opts[] = {
        {"arch", required_argument, NULL, OPT_ARCH},
        {"params", required_argument, NULL, OPT_PARAMS},
        {"type", required_argument, NULL, OPT_TYPE},
        {"vocab", required_argument, NULL, OPT_VOCAB},
        {"seed", required_argument, NULL, OPT_SEED},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"stddev", required_argument, NULL, OPT_STDDEV},
        {"head-dim", required_argument, NULL, OPT_HEAD_DIM},
        {"sliding-window", required_argument, NULL, OPT_SWA},
        {"rope-freqs", no_argument, NULL, OPT_ROPE_FREQS},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *arch = "llama", *params = NULL, *type = "f16", *out = NULL;
    long long vocab = 0, seed = 1, threads = 0, head_dim = 0, swa = 0;
    double stddev = 0.0;
    bool rope_freqs = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:vq", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ARCH: arch = optarg; break;
        case OPT_PARAMS: params = optarg; break;
        case OPT_TYPE: type = optarg; break;
        case OPT_VOCAB:
            if (cli_parse_int("synth", "--vocab", optarg, MQ_SYNTH_MIN_VOCAB, MQ_SYNTH_MAX_VOCAB,
                              &vocab))
                return CLI_USAGE;
            break;
        case OPT_SEED:
            if (cli_parse_int("synth", "--seed", optarg, 0, (1LL << 62), &seed))
                return CLI_USAGE;
            break;
        case OPT_THREADS:
            if (cli_parse_int("synth", "--threads", optarg, 1, 1024, &threads))
                return CLI_USAGE;
            break;
        case OPT_STDDEV:
            if (cli_parse_real("synth", "--stddev", optarg, 0.0, true, 1.0, "a standard deviation", &stddev))
                return CLI_USAGE;
            break;
        case OPT_HEAD_DIM:
            if (cli_parse_int("synth", "--head-dim", optarg, 2, 1024, &head_dim))
                return CLI_USAGE;
            break;
        case OPT_SWA:
            if (cli_parse_int("synth", "--sliding-window", optarg, 1, (1LL << 30), &swa))
                return CLI_USAGE;
            break;
        case OPT_ROPE_FREQS: rope_freqs = true; break;
        case 'o': out = optarg; break;
        case 'h': synth_usage(stdout); return CLI_OK;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        default: return cli_bad_option("synth", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("synth", "unexpected argument '%s'", argv[optind]);
    if (!mq_arch_find(arch)) {
        char list[256];
        mq_arch_list(list, sizeof(list));
        return cli_usage_error("synth", "architecture '%s' is not supported (%s)", arch, list);
    }
    if (rope_freqs && !(mq_arch_find(arch)->flags & (MQ_ARCH_ROPE_FREQS | MQ_ARCH_LONGROPE)))
        return cli_usage_error("synth", "--rope-freqs: architecture '%s' has no RoPE frequency factors", arch);
    if (!params)
        return cli_usage_error("synth", "--params PRESET is required (1B, 7B, ...)");
    if (!out || !*out)
        return cli_usage_error("synth", "-o FILE.gguf is required");
    struct mq_synth_config cfg;
    if (mq_synth_preset(params, &cfg) < 0) {
        size_t n;
        const struct mq_synth_config *p = mq_synth_presets(&n);
        char list[128] = "";
        for (size_t i = 0; i < n; i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                     p[i].name);
        return cli_usage_error("synth", "--params '%s' is not a preset (%s)", params, list);
    }
    cfg.arch = mq_arch_find(arch)->name;
    cfg.head_dim = head_dim;
    cfg.n_swa = swa;
    cfg.rope_freqs = rope_freqs;
    struct mq_synth_options o = {.seed = (uint64_t)seed, .threads = (int)threads, .progress = true, .stddev = stddev};
    if (mq_dtype_from_name(type, &o.type) < 0 || !mq_dtype_get(o.type)->is_plan_format) {
        char list[256];
        mq_dtype_list_plan_formats(list, sizeof(list));
        return cli_usage_error("synth", "--type '%s' is not a format (%s)", type, list);
    }
    if (vocab)
        cfg.n_vocab = vocab;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (mq_synth_write(&cfg, &o, out) < 0)
        return CLI_FAIL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct stat st;
    uint64_t bytes = stat(out, &st) == 0 ? (uint64_t)st.st_size : 0;
    char b[32];
    printf("wrote %s: synthetic %s %s (%s shapes, random weights: for cost profiling only)\n",
           out, cfg.arch, cfg.name, cfg.like);
    double n = (double)mq_synth_n_params(&cfg);
    printf("      %s, %.3f %s parameters, vocab %lld, %s, %.1f s\n", mq_dtype_name(o.type),
           n >= 1e9 ? n / 1e9 : n / 1e6, n >= 1e9 ? "B" : "M", (long long)cfg.n_vocab,
           cli_fmt_bytes(b, sizeof(b), bytes),
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return CLI_OK;
}
