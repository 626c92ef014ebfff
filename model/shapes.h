/* model/shapes.h - input shapes a user fixes for a model whose inputs have dynamic
 * dimensions, in trtexec's --shapes syntax:
 *
 *     images:1x3x640x640,mask:1x640x640
 *
 *     struct mq_input_shapes s;
 *     char why[256];
 *     if (mq_input_shapes_parse(arg, &s, why, sizeof(why)) < 0) ... usage error: why
 *     mq_model_load_shaped(path, &s, &m);       // ONNX only; GGUF refuses shapes
 *     mq_input_shapes_release(&s);
 *
 * Items are separated by ','; in each, the last ':' separates the input's name (any
 * length, any bytes but ',') from its dimensions, positive decimal integers joined by
 * 'x' (at most MQ_INPUT_MAX_DIMS). A shape is one inference at batch 1 (infer:1); an
 * infer:B workload multiplies dimension 0 by B where the file leaves dimension 0 dynamic.
 * Which names and ranks a model has is checked when it loads (onnx/onnx.h).
 *
 * Ownership: mq_input_shapes owns its names and its canonical text; release frees them.
 *
 * Dependency rule: model/ depends on core/ (and gguf/, tokenizer/, backends/).
 */
#ifndef MQ_MODEL_SHAPES_H
#define MQ_MODEL_SHAPES_H

#include <stddef.h>
#include <stdint.h>

#define MQ_INPUT_MAX_DIMS 8
#define MQ_INPUT_MAX_DIM ((int64_t)1 << 32) /* a larger dimension is a typo, not a shape */

struct mq_input_shape {
    char *name; /* owned */
    int n_dims;
    int64_t dims[MQ_INPUT_MAX_DIMS];
};

struct mq_input_shapes {
    int n;
    struct mq_input_shape *v; /* [n], owned */
    char *canon;              /* "name:1x3x640x640,..." as given, normalized; owned; NULL when n == 0 */
};

/* Parses `s` into *out (zeroed first). Bad syntax, an empty name, a dimension that is not
 * a positive integer up to MQ_INPUT_MAX_DIM, too many dimensions or a name given twice:
 * MQ_EINVAL with the reason in why (nothing printed: the caller reports a usage error). */
int mq_input_shapes_parse(const char *s, struct mq_input_shapes *out, char *why, size_t why_size);
void mq_input_shapes_release(struct mq_input_shapes *s);

/* The shape given for input `name`, or NULL (s may be NULL). Borrowed from s. */
const struct mq_input_shape *mq_input_shapes_find(const struct mq_input_shapes *s, const char *name);

#endif
