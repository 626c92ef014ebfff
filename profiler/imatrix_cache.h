/* profiler/imatrix_cache.h - the importance matrix `mixq tune` quantizes with: computed
 * once per model, calibration text and chunking, and kept as a file in the cache folder;
 * and the check that the calibration text stays apart from the evaluation text.
 *
 *     struct mq_imatrix_config cfg = {.text = "examples/data/kjv-eval.txt", .n_ctx = 256};
 *     struct prof_imatrix_file f;
 *     if (prof_imatrix_get(m, be, &cfg, cache_dir, false, &f) < 0) return -1;  // one line printed
 *     ... f.path is an imatrix GGUF file: read and apply it (model/imatrix.h) ...
 *
 *     bool overlap;
 *     if (prof_text_overlap(calib, eval, &overlap) == MQ_OK && overlap) mq_warn(...);
 *
 * The cache key (prof_imatrix_key) names everything the file depends on:
 *     imatrix/1 model=CONTENT_HASH text=SHA256 ctx=N chunks=N output=0|1 gram=0|1
 * where SHA256 is that of the calibration text's bytes (its content, not its name: a copy
 * elsewhere hits), ctx is resolved as mq_imatrix_compute resolves 0 (min(training context,
 * MQ_IMATRIX_DEFAULT_CTX)), chunks is the config's max_chunks (0: every whole chunk) and
 * output says whether output.weight was collected, gram whether the Gram matrices were
 * (model/imatrix.h). The file is DIR/imatrix-HASH.gguf (HASH
 * a 64-bit hash of the key), written atomically by mq_imatrix_write; a profiler/cache.h
 * entry under the whole key records its size and what it holds, so a hash collision, a
 * missing file or one of another size is a miss (computed again), never an error.
 * `refresh` computes it again and replaces both (mixq tune --no-cache).
 *
 * Ownership: nothing is allocated that outlives a call.
 *
 * Dependency rule: profiler/ depends on model/, llm/, backends/ and core/ only.
 */
#ifndef MQ_PROFILER_IMATRIX_CACHE_H
#define MQ_PROFILER_IMATRIX_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "model/imatrix.h"
#include "model/model.h"

#define PROF_IMATRIX_KEY_MAX 256

struct prof_imatrix_file {
    char key[PROF_IMATRIX_KEY_MAX];
    char path[4200];        /* the imatrix GGUF file in the cache folder */
    bool hit;               /* taken from the cache; false: computed by this call */
    uint32_t chunk_count;   /* chunks of the text it sums */
    uint32_t chunk_size;    /* tokens per chunk */
    double seconds;         /* wall time computing it took (then, for a hit) */
};

/* The cache key of cfg's importance matrix of m into key[size] (at least
 * PROF_IMATRIX_KEY_MAX). Reads the whole calibration text to hash it: MQ_EIO (one line)
 * when it cannot be read; MQ_EUNSUPPORTED for models other than llama (GGUF) ones. */
int prof_imatrix_key(const struct mq_model *m, const struct mq_imatrix_config *cfg, char *key, size_t size);

/* The importance matrix of m over cfg (as mq_imatrix_compute), from the cache folder dir,
 * or computed on be and stored there first (always when refresh). Errors (one line): those
 * of prof_imatrix_key and mq_imatrix_compute, and an unwritable folder. */
int prof_imatrix_get(const struct mq_model *m, struct be_backend *be, const struct mq_imatrix_config *cfg,
                     const char *dir, bool refresh, struct prof_imatrix_file *out);

/* Whether a calibration text and an evaluation text overlap where both are read: the
 * same file (same device and inode: also through links), or one text's bytes begin with
 * the whole of the other's (equal contents included; kjv-heldout.txt begins with
 * kjv-eval.txt, and both are read from their start). An empty text overlaps nothing.
 * MQ_EIO (one line) when either cannot be read. */
int prof_text_overlap(const char *a, const char *b, bool *overlap);

#endif
