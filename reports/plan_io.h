/* reports/plan_io.h - plan files: one format per layer, as YAML.
 *
 *     mixq_schema: plan/1
 *     default: q8_0                  # optional: layers not listed below
 *     layers:
 *       blk.0.attn_q.weight: f16
 *       output.weight: q8_0
 *
 * Every quantizable layer of the model must get a format, from `layers` or from
 * `default`; a layer name the model does not have, a format mixq does not know, or a
 * missing format is an error naming the file, line and layer.
 *
 *     struct mq_plan *plan;
 *     if (rpt_plan_read(model, "plan.yaml", &plan) < 0) return -1;
 *
 * Ownership: the caller frees the plan with mq_plan_free.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/.
 */
#ifndef MQ_REPORTS_PLAN_IO_H
#define MQ_REPORTS_PLAN_IO_H

#include "model/model.h"
#include "model/plan.h"

int rpt_plan_read(const struct mq_model *m, const char *path, struct mq_plan **out);

#endif
