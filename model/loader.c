/* model/loader.c - the model file formats mixq reads (model/loader.h): GGUF (llama
 * architecture, llm/) by its magic, and ONNX (onnx/), whose protobuf has no magic, for
 * everything else. */
#include "model/loader.h"

#include "llm/llama.h"
#include "onnx/onnx.h"

const struct mq_model_loader mq_model_loaders[] = {
    {.format = "gguf", .magic = "GGUF", .magic_len = 4, .load = mq_llama_model_load},
    {.format = "onnx", .magic = NULL, .magic_len = 0, .load = mq_onnx_model_load,
     .load_shaped = mq_onnx_model_load_shaped},
};
const int mq_model_n_loaders = (int)(sizeof(mq_model_loaders) / sizeof(mq_model_loaders[0]));
