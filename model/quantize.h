/* model/quantize.h - write a llama model as a GGUF file with a plan applied: every
 * quantizable layer in its planned format, everything else as it is in the source.
 *
 *     struct mq_plan *p;                          // from cli_load_plan, a front point, ...
 *     struct mq_quantize_result r;
 *     if (mq_quantize_write(model, p, NULL, NULL, "out.gguf", &r) < 0) return -1;  // one line printed
 *     printf("%llu bytes\n", (unsigned long long)r.file_bytes);
 *
 * The file: the source's metadata, every key in its order and value unchanged, except
 * general.file_type (set from the plan, see below) and general.quantization_version (2,
 * as llama-quantize writes it); then whatever the caller's `meta` callback adds (mixq's
 * provenance, reports/export.h); then every tensor of the source in file order. A
 * quantizable layer's weights are converted by mq_convert_weights (core/dtype.h), the
 * one conversion the forward pass, the profiler and the sensitivity analysis use, so the
 * file holds exactly the bytes that were measured: dequantized to f32 with core/dtype's
 * to_f32 and quantized with its reference from_f32 (bit-exact with ggml's quantize_row_*),
 * or copied as they are when the plan keeps a layer in its stored type. Other tensors
 * (norm weights) are copied byte for byte.
 *
 * general.file_type of a mixed file: llama.cpp has no "mixed" file type; a file's type
 * is the "mostly X" of one format. mixq writes LLAMA_FTYPE_MOSTLY_X (ALL_F32 for f32) of
 * the plan's most common format by number of layers (ties go to the earlier format in
 * core/dtype's order f32, f16, bf16, q8_0, q4_0), which is the `default` format that
 * front.yaml lists for the plan and the type llama.cpp's own loader would guess from
 * the tensors when the key is absent (it counts tensors by type; norms aside, which are
 * f32 in every plan). mq_quantize_file_type gives it, so that the llama.cpp recipe can
 * write the same key (reports/export.h). A plan that names its own llama_ftype
 * (p->ftype >= 0: llama.cpp's presets, model/preset.h) gets that one instead, as
 * llama-quantize writes it.
 *
 * Writing streams: the GGUF writer asks for each tensor's rows a chunk at a time
 * (mq_gguf_writer_add_tensor_fn), so memory stays at a few chunks, and the file is
 * written atomically (a temporary file in the destination folder, then rename): an error
 * anywhere leaves no file and no temporary behind, and an existing file at the path is
 * kept unchanged.
 *
 * Ownership: the model and plan are borrowed; nothing allocated outlives a call.
 *
 * Dependency rule: model/ depends on gguf/, tokenizer/, backends/ and core/; only eval.c,
 * imatrix.c (the llama forward pass) and loader.c (the loaders) reach llm/ and onnx/.
 */
#ifndef MQ_MODEL_QUANTIZE_H
#define MQ_MODEL_QUANTIZE_H

#include <stdint.h>

#include "gguf/gguf.h"
#include "model/model.h"
#include "model/plan.h"

/* The llama_ftype of a file whose tensors are mostly `t` (one of the plan formats), or
 * -1 for a type that has no llama_ftype mixq writes. */
int mq_quantize_ftype_of(enum mq_dtype t);

/* The plan's most common format (by layers; ties to the earlier format in enum order):
 * what general.file_type says the file mostly is. */
enum mq_dtype mq_quantize_file_type(const struct mq_plan *p);

/* Adds keys to the file being written (after the source's, before the tensors). Returns
 * MQ_OK or a negative status after printing one line, which fails the write. */
typedef int (*mq_quantize_meta_fn)(void *ctx, struct mq_gguf_writer *w);

struct mq_quantize_result {
    uint64_t file_bytes;   /* the size of the file written */
    uint64_t weight_bytes; /* bytes of the quantizable layers' tensors in the file */
    int n_tensors;         /* tensors written */
    int n_converted;       /* layers whose type changed */
};

/* The size in bytes of the file mq_quantize_write would write with the same arguments
 * (metadata, meta's keys, tensors, padding), exactly, without quantizing or writing
 * anything. Errors as mq_quantize_write's, but for the file. */
int mq_quantize_file_bytes(const struct mq_model *m, const struct mq_plan *p, mq_quantize_meta_fn meta,
                           void *meta_ctx, uint64_t *bytes);

/* Writes `m` with plan `p` to `path` (atomically). Errors, one line each: a model that
 * is not a GGUF llama model (MQ_EUNSUPPORTED), a plan that does not fit the model
 * (mq_plan_check), a tensor whose shape does not match its layer (MQ_EINVAL), a file
 * that cannot be written (MQ_EIO). `meta` may be NULL; `res` may be NULL. */
int mq_quantize_write(const struct mq_model *m, const struct mq_plan *p, mq_quantize_meta_fn meta, void *meta_ctx,
                      const char *path, struct mq_quantize_result *res);

#endif
