/* model/tokenizer.h - text to token ids, from the vocabulary in a GGUF file.
 *
 *     struct mq_vocab *v;
 *     if (mq_vocab_load(gguf, "model.gguf", &v) < 0) return -1;
 *     int32_t *ids; size_t n;
 *     mq_vocab_tokenize(v, text, len, mq_vocab_add_bos(v), &ids, &n);
 *     ...
 *     free(ids);
 *     mq_vocab_free(v);
 *
 * Supported now: byte vocabularies of kind "gpt2" - all 256 bytes are tokens (in GPT-2's
 * byte-to-unicode spelling) and the merges join only tokens made of NUL bytes, which is
 * the bundled model's vocabulary (llama.cpp needs at least one merge in a gpt2
 * vocabulary). Tokenization is then one token per byte, with BPE merges applied by rank
 * (leftmost first on ties), as llama.cpp does. Full BPE vocabularies with pre-tokenizers
 * and SentencePiece ("llama") vocabularies are refused with a message naming the kind;
 * they are a later step.
 *
 * Ownership: a vocab copies what it needs from the GGUF; it does not borrow from it.
 * mq_vocab_tokenize returns a malloc'd array the caller frees.
 *
 * Dependency rule: model/ depends on backends/ and core/ only.
 */
#ifndef MQ_MODEL_TOKENIZER_H
#define MQ_MODEL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/gguf.h"

struct mq_vocab;

/* `name` is the file name used in messages. */
int mq_vocab_load(const struct mq_gguf *g, const char *name, struct mq_vocab **out);
void mq_vocab_free(struct mq_vocab *v);

int mq_vocab_tokenize(const struct mq_vocab *v, const char *text, size_t len, bool add_bos,
                      int32_t **out, size_t *n_out);

int64_t mq_vocab_size(const struct mq_vocab *v);
int32_t mq_vocab_bos(const struct mq_vocab *v); /* -1 when none */
int32_t mq_vocab_eos(const struct mq_vocab *v); /* -1 when none */
bool mq_vocab_add_bos(const struct mq_vocab *v);
/* "gpt2 (byte vocabulary)" and the like, for mixq info. */
const char *mq_vocab_describe(const struct mq_vocab *v);

#endif
