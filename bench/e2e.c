/* bench/e2e.c - end-to-end speed of mixq's forward pass, llama-bench style.
 *
 *   build/bench-e2e MODEL.gguf [--threads N] [--backend NAME] [--plan source|FORMAT]
 *                   [--prompt 512] [--gen 128] [--reps 3] [--bandwidth]
 *
 * pp (prompt processing): one batch of --prompt tokens at positions 0.. (a fresh
 * context); tg (text generation): --gen tokens one at a time from position 0, as
 * llama-bench's tg test does. Tokens are pseudo-random ids. Prints one YAML document
 * with the tokens/s of every repetition, their median and MAD. bench/e2e.py runs this
 * and llama-bench alternately on the same files and reports the ratios.
 *
 * --bandwidth adds what decode's speed is bound by: weight_bytes_per_token (the bytes of
 * every layer's weights in the plan's formats, which one decoded token reads; the token
 * embedding's one row aside where an output matrix is stored apart) and dram_read_gbs
 * (profiler/limits.h's DRAM read bandwidth with the same threads, measured after the
 * runs), so that tg's tokens/s x weight bytes / bandwidth is the fraction of the memory
 * bandwidth decode reaches.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/dtype.h"
#include "profiler/limits.h"
#include "core/status.h"
#include "llm/llama.h"
#include "model/model.h"
#include "model/plan.h"
#include "profiler/measure.h"

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"threads", required_argument, NULL, 't'}, {"backend", required_argument, NULL, 'b'},
        {"plan", required_argument, NULL, 'p'},    {"prompt", required_argument, NULL, 'P'},
        {"gen", required_argument, NULL, 'g'},     {"reps", required_argument, NULL, 'r'},
        {"bandwidth", no_argument, NULL, 'w'},     {NULL, 0, NULL, 0},
    };
    int threads = 0, n_prompt = 512, n_gen = 128, reps = 3, bandwidth = 0;
    const char *backend = "cpu", *plan_arg = "source";
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': threads = atoi(optarg); break;
        case 'b': backend = optarg; break;
        case 'p': plan_arg = optarg; break;
        case 'P': n_prompt = atoi(optarg); break;
        case 'g': n_gen = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'w': bandwidth = 1; break;
        default: return 2;
        }
    }
    if (optind + 1 != argc || n_prompt < 1 || n_gen < 1 || reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: bench-e2e MODEL.gguf [--threads N] [--backend NAME] [--plan source|FORMAT] "
                        "[--prompt N] [--gen N] [--reps N] [--bandwidth]\n");
        return 2;
    }
    struct mq_model *m = NULL;
    struct mq_plan *plan = NULL;
    struct be_backend *be = NULL;
    struct mq_llama *l = NULL;
    int rc = mq_model_load(argv[optind], &m);
    if (rc == MQ_OK) {
        enum mq_dtype t;
        if (strcmp(plan_arg, "source") == 0)
            rc = mq_plan_source(m, &plan);
        else if (mq_dtype_from_name(plan_arg, &t) == MQ_OK)
            rc = mq_plan_uniform(m, t, &plan);
        else
            rc = mq_error(MQ_EINVAL, "--plan wants 'source' or a format, not '%s'", plan_arg);
    }
    int64_t n_ctx = n_prompt > n_gen ? n_prompt : n_gen;
    if (rc == MQ_OK)
        rc = be_open(backend, &(struct be_config){.n_threads = threads}, &be);
    if (rc == MQ_OK)
        rc = mq_llama_new(m, plan, be, &(struct mq_llama_config){.n_ctx = n_ctx, .n_batch = n_prompt}, &l);
    int32_t *toks = malloc((size_t)n_ctx * sizeof(*toks));
    double *pp = malloc((size_t)reps * sizeof(double)), *tg = malloc((size_t)reps * sizeof(double));
    if (rc == MQ_OK && (!toks || !pp || !tg))
        rc = mq_error(MQ_ENOMEM, "out of memory");
    if (rc == MQ_OK) {
        unsigned long long s = 88172645463325252ULL;
        for (int64_t i = 0; i < n_ctx; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            toks[i] = (int32_t)(s % (unsigned long long)m->hp.n_vocab);
        }
        /* warm-up: one of each, discarded */
        rc = mq_llama_decode(l, toks, n_prompt, 0, NULL);
        for (int i = 0; rc == MQ_OK && i < 4; i++)
            rc = mq_llama_decode(l, toks + i, 1, i, NULL);
    }
    for (int r = 0; rc == MQ_OK && r < reps; r++) {
        uint64_t t0 = prof_now_ns();
        rc = mq_llama_decode(l, toks, n_prompt, 0, NULL);
        uint64_t t1 = prof_now_ns();
        pp[r] = n_prompt / ((double)(t1 - t0) * 1e-9);
        for (int i = 0; rc == MQ_OK && i < n_gen; i++)
            rc = mq_llama_decode(l, toks + i, 1, i, NULL);
        uint64_t t2 = prof_now_ns();
        tg[r] = n_gen / ((double)(t2 - t1) * 1e-9);
    }
    if (rc == MQ_OK) {
        struct prof_stats sp, sg;
        double a[1000], b[1000];
        memcpy(a, pp, (size_t)reps * sizeof(double));
        memcpy(b, tg, (size_t)reps * sizeof(double));
        prof_stats_from(a, reps, &sp);
        prof_stats_from(b, reps, &sg);
        printf("mixq_schema: bench-e2e/1\nmodel: '%s'\nbackend: %s\nthreads: %d\nplan: '%s'\n", argv[optind],
               be_name(be), be_threads(be), plan->label);
        printf("pp:\n  tokens: %d\n  tokens_per_s: [", n_prompt);
        for (int r = 0; r < reps; r++)
            printf("%s%.3f", r ? ", " : "", pp[r]);
        printf("]\n  median: %.3f\n  mad: %.3f\n", sp.median_ns, sp.mad_ns);
        printf("tg:\n  tokens: %d\n  tokens_per_s: [", n_gen);
        for (int r = 0; r < reps; r++)
            printf("%s%.3f", r ? ", " : "", tg[r]);
        printf("]\n  median: %.3f\n  mad: %.3f\n", sg.median_ns, sg.mad_ns);
    }
    if (rc == MQ_OK && bandwidth) {
        bool apart = false; /* an output matrix of its own: the embedding is read a row a token */
        for (int i = 0; i < m->n_layers; i++)
            apart |= m->layers[i].role == MQ_ROLE_OUTPUT;
        double bytes = 0;
        for (int i = 0; i < m->n_layers && rc == MQ_OK; i++) {
            const struct mq_layer *ly = &m->layers[i];
            size_t row;
            if ((rc = mq_dtype_row_bytes(plan->fmt[i], ly->n_in, &row)) == MQ_OK)
                bytes += (double)row * (apart && ly->role == MQ_ROLE_TOKEN_EMBD ? 1 : (double)ly->n_out);
        }
        struct prof_limits lim;
        if (rc == MQ_OK && (rc = prof_limits_measure(be_threads(be), &lim)) == MQ_OK)
            printf("weight_bytes_per_token: %.0f\ndram_read_gbs: %.3f\n", bytes, lim.read_gbs[1]);
    }
    free(toks);
    free(pp);
    free(tg);
    mq_llama_free(l);
    be_close(be);
    mq_plan_free(plan);
    mq_model_free(m);
    return rc < 0 ? 1 : 0;
}
