/* reports/sensitivity_io.h - sensitivity.yaml: per layer x format, the quality loss and
 * how it was measured.
 *
 * Schema sensitivity/1:
 *   mixq_schema, mixq_version, model {path, content_hash, layers}, method (measured |
 *   grouped | proxy), loss (kl | rel_mse: what the search minimizes), loss_meaning, data,
 *   ctx, chunks, formats, metric {name, reference, higher_is_better}, rank_correlation
 *   (Spearman of proxy and measured; null when not both), samples, wall_seconds,
 *   evaluated, cached,
 *   grouped only: all_layers {FORMAT: {kl, metric}} (16-bit formats, measured over every
 *   layer at once), groups [{name, layers, FORMAT: {kl, metric}}],
 *   layers [{name, group (grouped), FORMAT: {loss, kl, metric, proxy}}] (absent values
 *   omitted).
 * Readers take what the search needs (the layers' values, method, loss, metric); the
 * groups are a record of how the losses were made.
 * Readers refuse other schemas, newer versions, missing layers and non-numeric or
 * negative losses with one-line errors.
 *
 * Dependency rule: reports/ reads plain structs from model/, profiler/ and search/.
 */
#ifndef MQ_REPORTS_SENSITIVITY_IO_H
#define MQ_REPORTS_SENSITIVITY_IO_H

#include "search/sensitivity.h"

int rpt_sensitivity_write(const struct srch_sensitivity *s, const char *path);
int rpt_sensitivity_read(const char *path, struct srch_sensitivity **out);

#endif
