/* search/pins.h - layers whose format is fixed: by exact name or by a glob pattern
 * ("blk.*.attn_v.weight"), from model configs (configs/models/NAME.yaml, read by
 * reports/config_io.h) and from the command line (--pin LAYER=FORMAT).
 *
 *     struct srch_pins pins = {0};
 *     srch_pins_add(&pins, "output.weight", MQ_DTYPE_Q8_0, "--pin");
 *     uint8_t pinned[n_layers];  // MQ_DTYPE_COUNT where free
 *     if (srch_pins_apply(&pins, model, pinned) < 0) return -1;
 *
 * A pin that matches no layer, or gives a layer a format it cannot take, is an error
 * naming the pin and where it came from. When several pins match a layer, the last wins.
 *
 * Dependency rule: search/ depends on profiler/, model/, llm/, gguf/, backends/ and
 * core/.
 */
#ifndef MQ_SEARCH_PINS_H
#define MQ_SEARCH_PINS_H

#include <stdint.h>

#include "core/dtype.h"
#include "model/model.h"

#define SRCH_MAX_PINS 256

struct srch_pin {
    char layer[MQ_GGUF_MAX_NAME + 1]; /* a name or a glob pattern */
    enum mq_dtype fmt;
    char from[160];                   /* "configs/models/x.yaml:12", "--pin" */
};

struct srch_pins {
    int n;
    struct srch_pin pin[SRCH_MAX_PINS];
};

int srch_pins_add(struct srch_pins *p, const char *layer, enum mq_dtype fmt, const char *from);
/* Parses "LAYER=FORMAT" (as given to --pin). */
int srch_pins_parse(struct srch_pins *p, const char *text, const char *from);
/* pinned[l] = the format layer l is pinned to, or MQ_DTYPE_COUNT when free. */
int srch_pins_apply(const struct srch_pins *p, const struct mq_model *m, uint8_t *pinned);

#endif
