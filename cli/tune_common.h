/* cli/tune_common.h - what `mixq tune` and `mixq search` share: budgets and pins from
 * the command line and the model's config, the outputs and the summary.
 *
 * Only cli/ uses it; every function prints its own one-line error.
 */
#ifndef MQ_CLI_TUNE_COMMON_H
#define MQ_CLI_TUNE_COMMON_H

#include <stdbool.h>

#include "model/model.h"
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

/* Writes dir/front.yaml and, unless !plots, the front's plots (and the plan's when one was
 * chosen). A missing gnuplot is a warning: the YAML files are the result. */
int cli_tune_write(const char *dir, const struct mq_model *m, const struct prof_profile *prof,
                   const struct srch_sensitivity *sens, const struct srch_tune *t, bool plots);

/* The size of the file `mixq quantize MODEL --plan DIR/front.yaml` writes for a plan: the
 * tensors and the source's metadata exactly, and mixq's provenance keys as quantize
 * writes them for a measured front point, plus CLI_FILE_SIZE_SLACK bytes for paths given
 * to quantize in another spelling than to tune (the model's, the front's). A
 * srch_tune_options.file_bytes callback; the struct borrows m and prof. */
#define CLI_FILE_SIZE_SLACK 512
struct cli_file_size {
    const struct mq_model *m;
    char from[4300];             /* "DIR/front.yaml point 99999 (chosen)" */
    struct rpt_front_point pt;   /* the strings and budgets quantize records */
};
void cli_file_size_init(struct cli_file_size *s, const struct mq_model *m, const struct prof_profile *prof,
                        const char *dir, double mem_budget, double lat_budget, double size_budget);
int cli_file_size_bytes(void *ctx, const struct mq_plan *plan, uint64_t *bytes);

/* The summary on stdout: the budgets, the search, and every measured plan (chosen first)
 * with its memory, latency and quality. */
void cli_tune_summary(const struct mq_model *m, const struct prof_profile *prof, const struct srch_sensitivity *sens,
                      const struct srch_tune *t);

#endif
