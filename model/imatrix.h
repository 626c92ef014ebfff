/* model/imatrix.h - importance matrices: llama.cpp's imatrix files, read, written and
 * applied to a model's quantization.
 *
 *     struct mq_imatrix *im;
 *     if (mq_imatrix_read("imatrix.gguf", &im) < 0) return -1;   // one line printed
 *     int used;
 *     if (mq_model_set_imatrix(model, im, &used) < 0) ...        // layers' imp now set
 *     mq_imatrix_free(im);                                        // the model keeps its copy
 *
 * An importance matrix holds, for every matmul weight of a model, the per-input-column sum
 * of squared activations over calibration text and how many activation rows were summed:
 * the statistic llama-imatrix collects. Quantizing a layer with it (core/dtype.h: the
 * `imp` of mq_quantize_fn) weights each column's error by how large its inputs are.
 *
 * Files, as llama.cpp's tools/imatrix and common/imatrix-loader.cpp (llama.cpp
 * 0c1e57098bba) read and write them:
 *   GGUF (the default since 2025): general.type = "imatrix"; per weight NAME two f32
 *     tensors NAME.in_sum2 [n_in, n_mat] (sums of squares) and NAME.counts [1, n_mat]
 *     (activation rows summed); keys imatrix.datasets (array of strings),
 *     imatrix.chunk_count and imatrix.chunk_size (u32).
 *   legacy .dat: i32 n_entries; per entry i32 name length, the name, i32 ncall, i32 nval,
 *     nval f32 values (sum/count * ncall); optionally i32 chunk count, i32 length and the
 *     dataset name.
 * The importance of a column, as llama-quantize computes it: GGUF in_sum2 / count (1
 * where the count is 0), legacy value / ncall (the value itself where ncall is 0),
 * in float. mixq reads both and writes GGUF, so a file from either tool works in the
 * other. Models with experts (n_mat > 1) are read, but only n_mat == 1 entries apply
 * (mixq's layers are dense).
 *
 * Computing one (mq_imatrix_compute, `mixq imatrix`) runs the model as shipped over
 * a calibration text the way llama-imatrix does (llama.cpp tools/imatrix/imatrix.cpp):
 *
 *     struct mq_imatrix_config cfg = {.text = "calib.txt", .n_ctx = 512, .max_chunks = 8};
 *     if (mq_imatrix_compute(model, backend, &cfg, &im) < 0) return -1;
 *     mq_imatrix_write(im, "imatrix.gguf");
 *
 * mixq's extension: an entry may also hold the Gram matrix of its layer's inputs,
 * G = sum of x x^T over the same activation rows (tensor NAME.in_gram, f32 [n_in, n_in]),
 * which error-compensated quantization needs (core/compensate.h). llama.cpp's loader
 * reads only *.in_sum2 and *.counts and skips it, so such a file still works there (as
 * a plain importance matrix). mixq computes Gram matrices when asked (cfg->gram) and
 * layers with one are quantized with compensation.
 *
 * Ownership: an mq_imatrix owns its entries; mq_model_set_imatrix copies what it uses
 * into the model (freed by mq_model_free).
 *
 * Dependency rule: model/ depends on gguf/, tokenizer/, backends/ and core/; only eval.c,
 * imatrix.c (the llama forward pass) and loader.c (the loaders) reach llm/ and onnx/.
 */
#ifndef MQ_MODEL_IMATRIX_H
#define MQ_MODEL_IMATRIX_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "model/model.h"

struct mq_imatrix_entry {
    char name[MQ_GGUF_MAX_NAME + 1]; /* the weight's tensor name */
    int64_t n_in;                    /* values per matrix (input columns) */
    int64_t n_mat;                   /* matrices (experts); 1 for dense weights */
    float *sums;                     /* [n_mat][n_in] sums of squared activations */
    float *counts;                   /* [n_mat] activation rows summed (legacy: ncall) */
    float *gram;                     /* [n_in][n_in] sums of x x^T over the same rows (dense
                                        entries only), or NULL: mixq's extension, tensor
                                        NAME.in_gram, which llama.cpp's loader skips */
};

struct mq_imatrix {
    bool legacy;              /* read from a .dat file: sums are value * ncall there */
    int n_entries;
    struct mq_imatrix_entry *entries;
    int n_datasets;
    char **datasets;          /* calibration text names, as the file gives them */
    uint32_t chunk_count;     /* chunks of text summed */
    uint32_t chunk_size;      /* tokens per chunk (0: unknown, legacy) */
};

/* Reads either format (GGUF told apart by its magic). Errors (one line, MQ_EFORMAT or
 * MQ_EIO): unreadable or truncated file, non-f32 or mismatched sums/counts, absurd
 * sizes, non-finite values (llama-quantize refuses those too). */
int mq_imatrix_read(const char *path, struct mq_imatrix **out);

/* NULL is a no-op. */
void mq_imatrix_free(struct mq_imatrix *im);

/* The entry named `name`, or NULL. */
const struct mq_imatrix_entry *mq_imatrix_find(const struct mq_imatrix *im, const char *name);

/* Writes im as llama.cpp's GGUF imatrix (atomically). */
int mq_imatrix_write(const struct mq_imatrix *im, const char *path);

/* The importance weights of an entry's matrix 0 as llama-quantize computes them, into
 * out[e->n_in]. */
void mq_imatrix_importance(const struct mq_imatrix *im, const struct mq_imatrix_entry *e, float *out);

/* Sets every layer's `imp` from im (NULL: clears them): a layer with an entry of its
 * name and n_in values gets its importance weights; a layer without one (token_embd,
 * usually) is quantized plainly, as llama-quantize does. An entry with a Gram matrix also
 * sets its layer's `gram_u` (mq_gram_factor's factor; layers whose Gram matrices are equal,
 * such as attn_q/k/v, share one), unless compensate is false; m->n_compensated counts
 * them, and imp_hash covers them. An entry whose size differs
 * from its layer's is an error (MQ_EINVAL, one line), as in llama-quantize, except for
 * token_embd, which is skipped. *n_used (may be NULL) receives the layers set. */
int mq_model_set_imatrix(struct mq_model *m, const struct mq_imatrix *im, bool compensate, int *n_used);

/* mq_imatrix_read of path, then mq_model_set_imatrix, recording path and compensate in
 * m->imatrix_path and m->imatrix_compensate. *im_out (may be NULL) receives what was read
 * (the caller frees it with mq_imatrix_free); errors: one line, nothing kept. */
int mq_model_apply_imatrix_file(struct mq_model *m, const char *path, bool compensate, int *n_used,
                                struct mq_imatrix **im_out);

/* ---- computing an importance matrix ---- */

/* The calibration text `mixq imatrix` reads when none is given: a path relative to the
 * data folder (cli_datadir). The one place this default is named. */
#define MQ_IMATRIX_DEFAULT_TEXT "examples/data/kjv-eval.txt"
#define MQ_IMATRIX_DEFAULT_CTX 512 /* llama-imatrix's default -c */
/* llama-imatrix ignores matmuls of fewer than 16 activation rows (its collector's "small
 * batches"); a chunk shorter than that would collect nothing there, so mixq refuses it. */
#define MQ_IMATRIX_MIN_CTX 16
/* Gram matrices' limits: memory and time grow as n_in^2 per distinct layer input */
#define MQ_GRAM_MAX_IN 4096
#define MQ_GRAM_MAX_ELEMS ((int64_t)32 << 20) /* 128 MiB of f32 over all distinct inputs */

struct mq_imatrix_config {
    const char *text;    /* calibration text file (required); named in imatrix.datasets as given */
    int64_t n_ctx;       /* chunk length in tokens; 0: min(MQ_IMATRIX_DEFAULT_CTX, training context) */
    int64_t max_chunks;  /* chunks to run; 0: every whole chunk of the text */
    bool process_output; /* also collect output.weight (llama-imatrix --process-output) */
    bool gram;           /* also the Gram matrices (mixq's extension above), of layers of at
                            most MQ_GRAM_MAX_IN inputs while the model's distinct inputs
                            total at most MQ_GRAM_MAX_ELEMS values (their cost: n_in^2 per
                            token each); past that none, said once */
    bool progress;       /* a chunk counter on stderr when it is a terminal */
};

/* Computes the importance matrix of a llama (GGUF) model over cfg->text as llama-imatrix
 * does, with the model's weights as the file ships them (mq_plan_reference on `be`: each
 * layer in its stored type, f32 only where `be` cannot run it), as llama-imatrix runs the
 * file it is given:
 *   - the text, less one trailing newline (llama.cpp's -f drops it), is tokenized with
 *     BOS/EOS as the vocabulary adds them; it must hold at least 2 x n_ctx tokens;
 *   - it is cut into chunks of n_ctx tokens (a last partial chunk is dropped), at most
 *     max_chunks of them; each chunk starts a new sequence at position 0, its first token
 *     replaced by BOS when the vocabulary adds BOS, and every position is run;
 *   - entries: every matmul weight whose name starts with "blk.", and output.weight with
 *     process_output (a tied output is token_embd.weight, which llama-imatrix never
 *     collects, nor the token_embd lookup); sums are the per-input-column sums of squared
 *     activations (accumulated in double per chunk, the chunks' sums added in order,
 *     stored as f32; llama-imatrix accumulates in f32),
 *     counts the activation rows summed (chunks x n_ctx);
 *   - metadata: datasets = {cfg->text}, chunk_count = chunks run, chunk_size = n_ctx;
 *     entries are sorted by name, as llama-imatrix writes them.
 * Errors (one line): not a llama model (ONNX: MQ_EUNSUPPORTED), unreadable or short text,
 * n_ctx below MQ_IMATRIX_MIN_CTX, non-finite activations (MQ_ERANGE), backend failures.
 * On success *out is a new imatrix the caller frees with mq_imatrix_free. */
int mq_imatrix_compute(const struct mq_model *m, struct be_backend *be, const struct mq_imatrix_config *cfg,
                       struct mq_imatrix **out);

/* The chunks of mq_imatrix_compute are units of work (core/dist.h): under `mpirun -np N`
 * every rank runs chunks (each loads the model and the text itself, from the same paths)
 * and rank 0 adds their sums in chunk order, so that the file equals one process's bit for
 * bit. The job worker ranks run (cli/main.c registers it): */
struct mq_dist_job;
extern const struct mq_dist_job mq_imatrix_dist_job;

#endif
