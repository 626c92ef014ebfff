/* reports/config_io.h - model configs: what mixq knows about particular models
 * (configs/models/NAME.yaml, format in configs/models/README.md): the task, the default
 * workload and evaluation data, and the pinned layers.
 *
 *     struct rpt_model_config cfg;
 *     bool found;
 *     if (rpt_config_find(model_path, "configs/models", &cfg, &found) < 0) return -1;
 *     if (found) ... cfg.pins, cfg.workload ...
 *
 * A config describes a model file by base name and, where given, its SHA-256; all given
 * must hold. Unknown keys, a malformed pin, or a schema other than model-config/1 are
 * one-line errors naming file and line, so that a typo does not silently unpin a layer.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/.
 */
#ifndef MQ_REPORTS_CONFIG_IO_H
#define MQ_REPORTS_CONFIG_IO_H

#include <stdbool.h>

#include "search/pins.h"

struct rpt_model_config {
    char path[4096];
    char model[64];
    char file[256];
    char sha256[65];
    char task[64];
    char workload[48];
    char data[4096]; /* as written (relative to the repository) */
    struct srch_pins pins;
};

int rpt_config_read(const char *path, struct rpt_model_config *out);
/* The config in dir whose match describes model_path; *found = false when none does. */
int rpt_config_find(const char *model_path, const char *dir, struct rpt_model_config *out, bool *found);

#endif
