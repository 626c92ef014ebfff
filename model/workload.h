/* model/workload.h - what one "run" of a model is, for latency budgets and profiles.
 *
 *     struct mq_workload w;
 *     if (mq_workload_parse("prefill:512", &w) < 0) return -1;    // one-line error printed
 *     mq_workload_default(model, &w);                              // the model kind's default
 *
 * LLMs: "decode[:CTX]"   one decoded token with CTX tokens of context (default 512), batch 1
 *       "prefill:N"      N prompt tokens in one batch from an empty context
 *       "generate:P,G"   a prompt of P tokens, then G tokens decoded one by one
 * ONNX: "infer[:BATCH]"  one inference at the model's input shape with that batch (default 1)
 *
 * Dependency rule: model/ depends on gguf/, tokenizer/, backends/ and core/; only eval.c,
 * imatrix.c (the llama forward pass) and loader.c (the loaders) reach llm/ and onnx/.
 */
#ifndef MQ_MODEL_WORKLOAD_H
#define MQ_MODEL_WORKLOAD_H

#include <stdint.h>

enum mq_workload_kind { MQ_WL_DECODE, MQ_WL_PREFILL, MQ_WL_GENERATE, MQ_WL_INFER };

struct mq_workload {
    enum mq_workload_kind kind;
    int64_t ctx;    /* decode: context length (the token decoded is at position ctx - 1) */
    int64_t prompt; /* prefill and generate: prompt tokens */
    int64_t gen;    /* generate: decoded tokens */
    int64_t batch;  /* infer: batch size */
    char label[48]; /* canonical text: "decode:512", "generate:128,64", "infer:1" */
};

/* Strict parsing; a bad kind, a missing or zero or absurd number (beyond 1<<20 tokens or
 * 1<<16 batch) is MQ_EINVAL with one line. */
int mq_workload_parse(const char *s, struct mq_workload *out);

/* Tokens of context a session needs (KV cache positions); 0 for ONNX workloads. */
int64_t mq_workload_ctx_needed(const struct mq_workload *w);

#endif
