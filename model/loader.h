/* model/loader.h - the table of model file formats that mq_model_load (model/model.h)
 * picks from by a file's first bytes: one row per format, naming the loader function of
 * the folder that reads it.
 *
 *     // model/loader.c
 *     const struct mq_model_loader mq_model_loaders[] = {
 *         {.format = "gguf", .magic = "GGUF", .magic_len = 4, .load = mq_llama_model_load},
 *         {.format = "onnx", .load = mq_onnx_model_load, // no magic: what no other row claims
 *          .load_shaped = mq_onnx_model_load_shaped},
 *     };
 *
 * A file whose first bytes match a row's magic goes to that row; any other file goes to
 * the row without a magic (at most one); a file that cannot be read or is shorter than
 * the first row's magic goes to the first row, whose reader names the problem. Adding a
 * format is a row here and a loader in its own folder; model.c includes no loader.
 *
 * Ownership: a loader sets *out to a model the caller frees with mq_model_free, or to
 * NULL with one error line printed and a negative status returned.
 *
 * Dependency rule: this table is the one place in model/ that names the loaders of llm/
 * and onnx/ (which depend on model/); model.c sees only the table.
 */
#ifndef MQ_MODEL_LOADER_H
#define MQ_MODEL_LOADER_H

#include <stddef.h>

#include "model/model.h"
#include "model/shapes.h"

#define MQ_MODEL_MAGIC_MAX 8 /* longest magic a row may have, in bytes */

struct mq_model_loader {
    const char *format; /* "gguf", "onnx" */
    const char *magic;  /* the file's first magic_len bytes; NULL: no magic */
    size_t magic_len;   /* 0 .. MQ_MODEL_MAGIC_MAX */
    int (*load)(const char *path, struct mq_model **out);
    /* The same with input shapes the user fixes (model/shapes.h); NULL: the format has
     * no dynamic inputs, and mq_model_load_shaped refuses shapes for it. */
    int (*load_shaped)(const char *path, const struct mq_input_shapes *shapes, struct mq_model **out);
};

extern const struct mq_model_loader mq_model_loaders[];
extern const int mq_model_n_loaders;

#endif
