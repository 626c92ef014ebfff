/* cli/tune_common.h - what `mixq tune` and `mixq search` share: budgets and pins from
 * the command line and the model's config, the outputs and the summary.
 *
 * Only cli/ uses it; every function prints its own one-line error.
 */
#ifndef MQ_CLI_TUNE_COMMON_H
#define MQ_CLI_TUNE_COMMON_H

#include <stdbool.h>

#include "backends/backend.h"
#include "model/model.h"
#include "profiler/llamacpp.h"
#include "profiler/profile.h"
#include "reports/config_io.h"
#include "reports/export.h"
#include "search/pins.h"
#include "search/sensitivity.h"
#include "search/tune.h"

/* The model's config from the bundled configs/models (or `config`, a file, when not NULL;
 * "none" for no config): *found says whether one applied. Its pins go first into pins,
 * so that --pin given later wins. */
int cli_tune_config(const char *cmd, const struct mq_model *m, const char *config, struct rpt_model_config *cfg,
                    bool *found, struct srch_pins *pins);

/* What a tuning calibrated on and evaluated on (mixq tune; `mixq search` has none): the
 * importance matrix its plans were quantized with and the evaluation data. */
struct cli_tune_texts {
    struct rpt_imatrix_ref imatrix; /* .set false: plain quantization */
    char no_imatrix[64];            /* why none: "--no-imatrix", "an ONNX model" */
    bool cached;                    /* computed: taken from the cache */
    double seconds;                 /* computed: the time computing it took */
    const char *eval;               /* the evaluation data; NULL: the model kind's default */
    long long ctx, chunks;          /* LLMs: chunk length (resolved) and chunks scored */
};

/* The importance matrix of a tuning, set on m (model/imatrix.h) before anything is
 * profiled, measured or validated, so that every format is quantized with it, and
 * recorded in *tx: none when no_imatrix; the user's file (imatrix); otherwise, for llama
 * models, computed on the calibration text `calib` (NULL: MQ_IMATRIX_DEFAULT_TEXT) with
 * chunks of ctx tokens (0: the default) and at most calib_chunks chunks (0: all), kept in
 * cache_dir (profiler/imatrix_cache.h; refresh: computed again), with the layers' Gram
 * matrices unless no_compensate (model/imatrix.h: compensated quantization). ONNX models
 * get none (said at -v), an error with imatrix. Warns once when the calibration text
 * overlaps the evaluation text tx->eval (set by the caller). One-line errors. */
int cli_tune_imatrix(struct mq_model *m, struct be_backend *be, const char *imatrix, bool no_imatrix,
                     bool no_compensate,
                     const char *calib, long long ctx, long long calib_chunks, const char *cache_dir, bool refresh,
                     struct cli_tune_texts *tx);

/* Writes dir/front.yaml (recording im, the importance matrix; NULL: none) and, unless
 * !plots, the front's plots (and the plan's when one was chosen). A missing gnuplot is a
 * warning: the YAML files are the result. */
int cli_tune_write(const char *dir, const struct mq_model *m, const struct prof_profile *prof,
                   const struct srch_sensitivity *sens, const struct srch_tune *t, bool plots,
                   const struct rpt_imatrix_ref *im);

/* The size of the file `mixq quantize MODEL --plan DIR/front.yaml` writes for a plan: the
 * tensors and the source's metadata exactly, and mixq's provenance keys as quantize
 * writes them for a measured front point, plus CLI_FILE_SIZE_SLACK bytes for paths given
 * to quantize in another spelling than to tune (the model's, the front's). A
 * srch_tune_options.file_bytes callback; the struct borrows m and prof. */
#define CLI_FILE_SIZE_SLACK 512
struct cli_file_size {
    const struct mq_model *m;
    char from[4300];             /* "DIR/front.yaml point 99999 (chosen)" */
    struct rpt_front_point pt;   /* the strings and budgets quantize records, and the
                                    importance matrix (pt.imatrix) it applies */
};
void cli_file_size_init(struct cli_file_size *s, const struct mq_model *m, const struct prof_profile *prof,
                        const char *dir, double mem_budget, double lat_budget, double size_budget,
                        const struct rpt_imatrix_ref *im);
int cli_file_size_bytes(void *ctx, const struct mq_plan *plan, uint64_t *bytes);

/* mixq tune --runtime llama.cpp[=BINDIR] (cli/tune_runtime.c): every validated plan
 * written as a GGUF file in DIR/llama.cpp/ (removed after it is measured) and measured by
 * llama.cpp's own tools (profiler/llamacpp.h), whose reference logits the source model
 * gives once. A srch_tune_options.runtime_measure callback; borrows m. */
struct cli_runtime {
    const struct mq_model *m;
    struct prof_llamacpp_config c;
    char bindir[4096], work_dir[4200], plan_path[4300], text[4096];
};
/* Whether spec is "llama.cpp" or "llama.cpp=BINDIR" (a usage error, printed, if not). */
int cli_runtime_spec_check(const char *cmd, const char *spec);
/* Finds and checks the tools (BINDIR, else the folder of llama-bench on PATH), makes
 * out_dir/llama.cpp and writes the source model's reference logits on text (ctx tokens a
 * chunk, 0: the evaluation's default; chunks, 0: all). One-line errors: a model that is
 * not a GGUF LLM, tools missing, llama-perplexity failing. */
int cli_runtime_open(struct cli_runtime *r, const char *spec, const struct mq_model *m, const char *out_dir,
                     const struct mq_workload *w, int threads, const char *text, long long ctx, long long chunks);
int cli_runtime_measure(void *ctx, const struct mq_plan *plan, struct srch_runtime_meas *out);

/* The one-line error (MQ_ERANGE) when no validated plan was chosen: without a KL bound, the
 * budgets none met; with one (--max-kl), the smallest KL any plan reaches where the bound is
 * below it, else the fastest plan within the bound and the budgets it misses. `where` follows
 * "as measured" (" on every target", or ""). */
int cli_tune_unmet(const struct srch_tune *t, const char *where);

/* The summary on stdout: the budgets, the search, the texts calibrated and evaluated on
 * (tx; NULL: not said), and every measured plan (chosen first) with its memory, latency
 * and quality. */
void cli_tune_summary(const struct mq_model *m, const struct prof_profile *prof, const struct srch_sensitivity *sens,
                      const struct srch_tune *t, const struct cli_tune_texts *tx);

#endif
