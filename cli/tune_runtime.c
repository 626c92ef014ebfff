/* cli/tune_runtime.c - mixq tune --runtime llama.cpp: each validated plan measured in the
 * runtime it is deployed with (cli/tune_common.h, profiler/llamacpp.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/tune_common.h"
#include "core/file.h"
#include "core/log.h"
#include "core/status.h"
#include "model/eval.h"
#include "model/quantize.h"

#define RUNTIME_NAME "llama.cpp"

int cli_runtime_spec_check(const char *cmd, const char *spec)
{
    size_t n = strlen(RUNTIME_NAME);
    if (strncmp(spec, RUNTIME_NAME, n) || (spec[n] && (spec[n] != '=' || !spec[n + 1])))
        return cli_usage_error(
            cmd,
            "--runtime '%s': want llama.cpp or llama.cpp=BINDIR (the folder of its "
            "llama-bench and llama-perplexity)",
            spec);
    return CLI_OK;
}

int cli_runtime_open(struct cli_runtime *r, const char *spec, const struct mq_model *m,
                     const char *out_dir, const struct mq_workload *w, int threads,
                     const char *text, long long ctx, long long chunks)
{
    memset(r, 0, sizeof(*r));
    r->m = m;
    if (m->kind != MQ_MODEL_LLAMA || !m->gguf)
        return mq_error(MQ_EUNSUPPORTED,
                        "--runtime llama.cpp measures GGUF language models; '%s' is not one",
                        m->path);
    const char *eq = strchr(spec, '=');
    if (eq)
        snprintf(r->bindir, sizeof(r->bindir), "%s", eq + 1);
    else if (mq_file_find_in_path("llama-bench", r->bindir, sizeof(r->bindir)) == MQ_OK)
        *strrchr(r->bindir, '/') = '\0'; /* its folder */
    else
        return mq_error(
            MQ_ENOTFOUND,
            "--runtime llama.cpp: no llama-bench on PATH; give the folder of llama.cpp's "
            "tools: --runtime llama.cpp=BINDIR");
    int rc = prof_llamacpp_check(r->bindir);
    if (rc < 0)
        return rc;
    snprintf(r->work_dir, sizeof(r->work_dir), "%s/llama.cpp", out_dir);
    if ((rc = cli_make_dir(r->work_dir)) < 0)
        return rc;
    snprintf(r->plan_path, sizeof(r->plan_path), "%s/plan.gguf", r->work_dir);
    snprintf(r->text, sizeof(r->text), "%s", text);
    r->c = (struct prof_llamacpp_config){.bindir = r->bindir,
                                         .threads = threads,
                                         .workload = *w,
                                         .text = r->text,
                                         .ctx = mq_eval_ctx(m, ctx),
                                         .chunks = chunks,
                                         .work_dir = r->work_dir};
    mq_info("runtime %s (%s): the reference logits of the source model (llama-perplexity, "
            "%lld-token chunks)",
            RUNTIME_NAME, r->bindir, (long long)r->c.ctx);
    return prof_llamacpp_base(&r->c, m->path);
}

int cli_runtime_measure(void *ctx, const struct mq_plan *plan, struct srch_runtime_meas *out)
{
    struct cli_runtime *r = ctx;
    struct mq_quantize_result qr;
    int rc = mq_quantize_write(r->m, plan, NULL, NULL, r->plan_path, &qr);
    if (rc < 0)
        return rc;
    struct prof_llamacpp_result lr;
    rc = prof_llamacpp_measure(&r->c, r->plan_path, &lr);
    unlink(r->plan_path);
    if (rc < 0)
        return rc;
    out->lat = lr.lat;
    out->kl = lr.kl;
    out->kl_stderr = lr.kl_stderr;
    out->ppl = lr.ppl;
    mq_info("  %s: %.4g ms per run (llama-bench, %d samples), KL %.4g (llama-perplexity)",
            RUNTIME_NAME, lr.lat.median_ns / 1e6, lr.lat.reps, lr.kl);
    return MQ_OK;
}
