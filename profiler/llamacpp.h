/* profiler/llamacpp.h - a plan measured in the runtime it is deployed with: llama.cpp's
 * own tools (llama-bench for latency, llama-perplexity for KL divergence) run on a GGUF
 * file, as a user would run them.
 *
 *     struct prof_llamacpp_config c = {.bindir = "/opt/llama.cpp/bin", .threads = 2,
 *                                      .workload = w, .text = "eval.txt", .ctx = 512,
 *                                      .chunks = 4, .work_dir = "out/llama.cpp"};
 *     if (prof_llamacpp_check(c.bindir) < 0) return -1;      // one line said
 *     if (prof_llamacpp_base(&c, "source.gguf") < 0) return -1;       // the reference, once
 *     struct prof_llamacpp_result r;
 *     if (prof_llamacpp_measure(&c, "plan.gguf", &r) < 0) return -1;
 *     ... r.lat.median_ns (ns per workload run), r.kl ...
 *
 * Latency: llama-bench -o json with the same threads and the workload's shape:
 *     decode:C          -p 0 -n 16 -d C-1   (16 tokens decoded after C-1 of context; the
 *                                            workload run is one token: sample / 16)
 *     prefill:P         -p P -n 0           (the run is the prompt's prefill)
 *     generate:P,G      -pg P,G -p 0 -n 0   (the run is the prompt and G decoded tokens)
 * with -r reps (0: 5, llama-bench's default) and llama-bench's warm-up; the statistics are
 * over its samples_ns. llama-bench does not read LLAMA_ARG_REPACK as llama.cpp's other
 * tools do: where it is set to a false value (0, false, off, disabled) --repack 0 is
 * passed on, so that both tools run with the same CPU buffer types.
 *
 * Quality: llama-perplexity --kl-divergence against the base logits that
 * prof_llamacpp_base wrote from the source model (llama-perplexity --kl-divergence-base:
 * llama.cpp's own reference, on the same text, context and chunks as mixq's evaluation),
 * so the KL is llama.cpp's figure end to end. llama-perplexity sometimes exits 0 with
 * the end of its output missing on a loaded machine: a run without its summary is run
 * again, at most 3 times.
 *
 * Errors, one line each: a tool that is missing or not executable, that exits non-zero
 * or is killed (its last output line quoted), output that cannot be read (the parsers).
 *
 * Ownership: the config's strings are borrowed; nothing allocated outlives a call. The
 * base logits and the tools' outputs are files under work_dir (base.kld, bench.json,
 * perplexity.txt), which the caller removes if it wants to.
 *
 * Dependency rule: profiler/ depends on model/, llm/, backends/ and core/ only.
 */
#ifndef MQ_PROFILER_LLAMACPP_H
#define MQ_PROFILER_LLAMACPP_H

#include <stddef.h>
#include <stdint.h>

#include "model/workload.h"
#include "profiler/measure.h"

#define PROF_LLAMACPP_DECODE_TOKENS 16 /* tokens llama-bench decodes per decode sample */

struct prof_llamacpp_config {
    const char *bindir;          /* folder holding llama-bench and llama-perplexity */
    int threads;                 /* -t (> 0) */
    struct mq_workload workload; /* decode, prefill or generate */
    int reps;                    /* llama-bench -r (0: 5) */
    const char *text;            /* llama-perplexity -f: the evaluation text */
    int64_t ctx, chunks;         /* -c and --chunks (chunks 0: the whole text) */
    const char *work_dir;        /* existing folder for the base logits and the tools' outputs */
};

struct prof_llamacpp_result {
    struct prof_stats lat; /* ns per workload run, over llama-bench's samples */
    double kl, kl_stderr;  /* llama-perplexity's Mean KLD and its ± */
    double ppl;            /* Mean PPL(Q) */
    double same_top_pct;   /* Same top p, percent */
};

/* MQ_OK when bindir holds executable llama-bench and llama-perplexity; else one line
 * naming the missing tool. */
int prof_llamacpp_check(const char *bindir);

/* Runs llama-perplexity on the source model to write work_dir/base.kld (the reference
 * next-token distributions every plan's KL is measured against). */
int prof_llamacpp_base(const struct prof_llamacpp_config *c, const char *source_gguf);

/* Times `gguf` with llama-bench and measures its KL with llama-perplexity. */
int prof_llamacpp_measure(const struct prof_llamacpp_config *c, const char *gguf,
                          struct prof_llamacpp_result *out);

/* llama-bench's arguments for workload w (after -m FILE): writes at most max pointers to
 * static or buf-held strings into args and returns how many, or MQ_EUNSUPPORTED (one
 * line) for a workload llama-bench cannot run (infer). *per_run is the number a sample is
 * divided by to give one workload run's time. */
int prof_llamacpp_bench_args(const struct mq_workload *w, int threads, int reps, char buf[][24],
                             int n_buf, const char **args, int max, int *per_run);

/* Reads llama-bench -o json output (one test): its samples_ns, each divided by per_run,
 * into *out; the record's n_prompt, n_gen and n_depth must be the expected ones (-1:
 * not checked). MQ_EFORMAT, one line, when they are not there or do not match. */
int prof_llamacpp_parse_bench(const char *json, int64_t n_prompt, int64_t n_gen, int64_t n_depth,
                              int per_run, struct prof_stats *out);

/* Reads llama-perplexity --kl-divergence output: Mean KLD (and its ±), Mean PPL(Q) and
 * Same top p; under 100 scored tokens, where it prints no summary, the last row of its
 * table of running figures per chunk (which must have a row for every chunk).
 * MQ_EFORMAT, one line, when neither is there. */
int prof_llamacpp_parse_kl(const char *text, struct prof_llamacpp_result *out);

#endif
