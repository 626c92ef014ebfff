/* model/workload.c - parsing workload specifications. */
#include "model/workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

static int number(const char *spec, const char *s, const char **end, int64_t max, int64_t *out)
{
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (e == s || errno || v < 1 || v > max || (*e && *e != ','))
        return mq_error(MQ_EINVAL, "workload '%s': '%s' is not a number in 1..%lld", spec, s, (long long)max);
    *out = v;
    *end = e;
    return MQ_OK;
}

int mq_workload_parse(const char *spec, struct mq_workload *w)
{
    memset(w, 0, sizeof(*w));
    const char *colon = strchr(spec, ':');
    size_t kind_len = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *args = colon ? colon + 1 : NULL;
    const char *end;
    int rc = MQ_OK;
    const int64_t max_tok = 1 << 20, max_batch = 1 << 16;
    if (kind_len == 6 && !strncmp(spec, "decode", 6)) {
        w->kind = MQ_WL_DECODE;
        w->ctx = 512;
        if (args && (rc = number(spec, args, &end, max_tok, &w->ctx)) == MQ_OK && *end)
            rc = mq_error(MQ_EINVAL, "workload '%s': decode takes one number (the context)", spec);
        snprintf(w->label, sizeof(w->label), "decode:%lld", (long long)w->ctx);
    } else if (kind_len == 7 && !strncmp(spec, "prefill", 7)) {
        w->kind = MQ_WL_PREFILL;
        if (!args)
            return mq_error(MQ_EINVAL, "workload '%s': prefill needs a token count (prefill:N)", spec);
        if ((rc = number(spec, args, &end, max_tok, &w->prompt)) == MQ_OK && *end)
            rc = mq_error(MQ_EINVAL, "workload '%s': prefill takes one number", spec);
        snprintf(w->label, sizeof(w->label), "prefill:%lld", (long long)w->prompt);
    } else if (kind_len == 8 && !strncmp(spec, "generate", 8)) {
        w->kind = MQ_WL_GENERATE;
        if (!args || !strchr(args, ','))
            return mq_error(MQ_EINVAL, "workload '%s': generate needs prompt and generated tokens (generate:P,G)", spec);
        if ((rc = number(spec, args, &end, max_tok, &w->prompt)) == MQ_OK &&
            (rc = number(spec, end + 1, &end, max_tok, &w->gen)) == MQ_OK && *end)
            rc = mq_error(MQ_EINVAL, "workload '%s': generate takes two numbers", spec);
        if (rc == MQ_OK && w->prompt + w->gen > max_tok)
            rc = mq_error(MQ_EINVAL, "workload '%s': more than %lld tokens", spec, (long long)max_tok);
        snprintf(w->label, sizeof(w->label), "generate:%lld,%lld", (long long)w->prompt, (long long)w->gen);
    } else if (kind_len == 5 && !strncmp(spec, "infer", 5)) {
        w->kind = MQ_WL_INFER;
        w->batch = 1;
        if (args && (rc = number(spec, args, &end, max_batch, &w->batch)) == MQ_OK && *end)
            rc = mq_error(MQ_EINVAL, "workload '%s': infer takes one number (the batch)", spec);
        snprintf(w->label, sizeof(w->label), "infer:%lld", (long long)w->batch);
    } else {
        return mq_error(MQ_EINVAL, "unknown workload '%s' (decode[:CTX], prefill:N, generate:P,G, infer[:BATCH])", spec);
    }
    return rc;
}

int64_t mq_workload_ctx_needed(const struct mq_workload *w)
{
    switch (w->kind) {
    case MQ_WL_DECODE: return w->ctx;
    case MQ_WL_PREFILL: return w->prompt;
    case MQ_WL_GENERATE: return w->prompt + w->gen;
    case MQ_WL_INFER: return 0;
    }
    return 0;
}
