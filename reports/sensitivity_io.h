/* reports/sensitivity_io.h - sensitivity.yaml: per layer x format, the quality loss and
 * how it was measured.
 *
 * Schema sensitivity/1:
 *   mixq_schema, mixq_version, model {path, content_hash, layers}, method (measured |
 *   grouped | calibrated | proxy), loss (kl | rel_mse: what the search minimizes),
 *   loss_meaning, data, ctx, chunks, formats, metric {name, reference, higher_is_better},
 *   rank_correlation (measured: Spearman of proxy and measured KL; calibrated: of the
 *   leave-one-out predictions and the measured group KL; null when not known),
 *   rank_correlation_of (what it correlates; measured and calibrated), samples,
 *   wall_seconds, evaluated, cached,
 *   calibrated only: calibration {error (what err is), fit, points, loo_median_error,
 *   loo_worst_error (relative), slopes {ROLE: b}, losses {SOURCE: count}},
 *   grouped and calibrated: all_layers {FORMAT: {kl, metric}} (16-bit formats, measured over
 *   every layer at once), groups [{name, layers, intercept (calibrated), FORMAT: {kl,
 *   metric, err, kl_left_out (calibrated)}}],
 *   layers [{name, group (grouped, calibrated), FORMAT: {loss, source, kl, metric, proxy,
 *   err}}] (absent values omitted). `source` says where a loss comes from: measured (this
 *   layer alone, measured; a layer's stored format is measured as 0), shared (a share of
 *   its group's measured KL), predicted (calibrated: the fitted map applied to err), proxy.
 *   Files written before `source` existed read as measured (measured), shared (grouped)
 *   and proxy (proxy); `err` (the weight error, profiler/quality.h) is optional.
 * Readers take what the search needs (the layers' values, method, loss, metric); the
 * groups and the calibration are a record of how the losses were made.
 * Readers refuse other schemas, newer versions, missing layers, unknown sources and
 * non-numeric or negative losses with one-line errors.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/.
 */
#ifndef MQ_REPORTS_SENSITIVITY_IO_H
#define MQ_REPORTS_SENSITIVITY_IO_H

#include "search/sensitivity.h"

int rpt_sensitivity_write(const struct srch_sensitivity *s, const char *path);
int rpt_sensitivity_read(const char *path, struct srch_sensitivity **out);

#endif
