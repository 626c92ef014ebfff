/* tokenizer/tokenizer.h - text to token ids, from the vocabulary in a GGUF file, exactly as
 * llama.cpp tokenizes (llama_tokenize with parse_special = false).
 *
 *     struct mq_vocab *v;
 *     if (mq_vocab_load(gguf, "model.gguf", &v) < 0) return -1;
 *     int32_t *ids; size_t n;
 *     mq_vocab_tokenize(v, text, len, mq_vocab_add_bos(v), &ids, &n);
 *     ...
 *     free(ids);
 *     mq_vocab_free(v);
 *
 * Supported (tokenizer.ggml.model):
 *   - "gpt2": byte-level BPE. Merges apply by rank, lowest first, leftmost on ties, inside
 *     the words of a pre-tokenizer named by tokenizer.ggml.pre (absent: "default").
 *     Implemented: default; gpt-2, phi-2, mpt, olmo, jais, trillion, granite-docling,
 *     exaone4, roberta-bpe, jina-* (GPT-2's expression); llama3, llama-v3, llama-bpe,
 *     falcon3, falcon-h1, pixtral, midm-2.0, lfm2, jina-v5-nano, dbrx, smaug-bpe,
 *     chatglm-bpe, glm4, glm5 (llama 3's); qwen2, deepseek-r1-qwen, kormo, f2llmv2,
 *     megrez, stablelm2, hunyuan, solar-open, grok-2 (qwen2's); qwen35; starcoder,
 *     refact, command-r, smollm, codeshell, exaone, minerva-7b, mellum2 (digits apart,
 *     then GPT-2's); falcon; deepseek-llm; deepseek-coder; poro-chat, bloom,
 *     gpt3-finnish; viking; gemma4 and sarvam-moe (SentencePiece-style BPE on raw UTF-8).
 *     Other names llama.cpp knows (deepseek-v3, tekken, gpt-4o, llama4, ...: expressions
 *     with look-ahead) are refused with MQ_EUNSUPPORTED naming the pre-tokenizer.
 *   - "gemma4": the same BPE with the gemma4 pre-tokenizer.
 *   - "llama": SentencePiece BPE by score: spaces become U+2581, a space is put in front
 *     when tokenizer.ggml.add_space_prefix says so (default true), pieces merge by
 *     highest score, and what is not a token falls back to <0xXX> byte tokens.
 *   Refused: "bert" (WPM), "t5" (UGM), "rwkv", "plamo2" and the rest.
 * The byte vocabulary of the bundled model (256 byte tokens, pre "default") is the gpt2
 * case like any other.
 *
 * As in llama.cpp: user-defined tokens (token type 4, and the few llama.cpp re-types by
 * name) are cut out of the text first and emitted as themselves; control and unknown
 * tokens in the text are plain text. Invalid UTF-8 becomes U+FFFD per bad byte for BPE
 * (SentencePiece keeps the raw bytes); a 4-byte sequence above U+10FFFF, which makes
 * llama.cpp throw, is an MQ_EINVAL error. BOS/EOS ids and add_bos/add_eos come from the
 * metadata with llama.cpp's defaults per kind ("llama": bos 1, eos 2, add bos; "gpt2":
 * bos = eos = 11, no add bos except for the llama3 family). An id out of the vocabulary,
 * duplicate tokens, tokens over 64 KiB and merges naming strings that are not tokens are
 * MQ_EFORMAT.
 *
 * Ownership: a vocab copies what it needs from the GGUF; it does not borrow from it.
 * mq_vocab_tokenize and mq_vocab_detokenize return malloc'd arrays the caller frees.
 * A vocab is read-only after loading: several threads may tokenize with one vocab.
 *
 * Dependency rule: tokenizer/ depends on gguf/ and core/ only.
 */
#ifndef MQ_TOKENIZER_TOKENIZER_H
#define MQ_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"

struct mq_vocab;

/* Reads the whole of a regular, non-empty text file into *out (malloc'd, NUL-terminated,
 * the caller frees) and its length in bytes into *len; with drop_newline, less one
 * trailing newline (llama.cpp's -f does that). `what` names the text in errors ("evaluation
 * text", "calibration text"). Errors (one line): MQ_EIO (cannot open or read, not a regular
 * file), MQ_ENOMEM, MQ_EINVAL (empty). */
int mq_text_read(const char *path, const char *what, bool drop_newline, char **out, size_t *len);

/* `name` is the file name used in messages. */
int mq_vocab_load(const struct mq_gguf *g, const char *name, struct mq_vocab **out);
void mq_vocab_free(struct mq_vocab *v);

/* Tokenizes text[0..len) (any bytes) into *out (malloc'd, *n_out ids), with the BOS token
 * in front when add_bos and the vocabulary has one. */
int mq_vocab_tokenize(const struct mq_vocab *v, const char *text, size_t len, bool add_bos,
                      int32_t **out, size_t *n_out);
/* llama.cpp's common_tokenize(text, add_special, parse_special = false): with add_special,
 * BOS in front when mq_vocab_add_bos and EOS at the end when mq_vocab_add_eos. This is
 * what llama-perplexity uses (add_special = true) and llama.cpp's tokenizer tests
 * (add_special = false). */
int mq_vocab_tokenize_special(const struct mq_vocab *v, const char *text, size_t len,
                              bool add_special, int32_t **out, size_t *n_out);

int64_t mq_vocab_size(const struct mq_vocab *v);
int32_t mq_vocab_bos(const struct mq_vocab *v); /* -1 when none */
int32_t mq_vocab_eos(const struct mq_vocab *v); /* -1 when none */
bool mq_vocab_add_bos(const struct mq_vocab *v);
bool mq_vocab_add_eos(const struct mq_vocab *v);
/* "gpt2 BPE, pre-tokenizer 'qwen2', 151936 tokens, 151387 merges" and the like. */
const char *mq_vocab_describe(const struct mq_vocab *v);

/* The bytes token `id` stands for, as llama.cpp's llama_token_to_piece(special = true):
 * GPT-2 bytes decoded for gpt2 vocabularies, U+2581 as a space for SentencePiece, <0xXX>
 * as its byte, control and user-defined tokens as their text. Copies min(len, size)
 * bytes into buf (no terminating NUL; pieces may contain NUL bytes) and sets *len to the
 * piece's full length, so a caller whose buffer was short can retry. MQ_EINVAL (printed)
 * when id is outside the vocabulary. */
int mq_vocab_token_piece(const struct mq_vocab *v, int32_t id, char *buf, size_t size, size_t *len);
/* The pieces of ids[0..n) concatenated, malloc'd into *out (NUL-terminated, *len bytes
 * before the NUL). No clean-up of spaces around punctuation (llama_detokenize's
 * clean_spaces) and nothing stripped: the bytes the tokens stand for. */
int mq_vocab_detokenize(const struct mq_vocab *v, const int32_t *ids, size_t n, char **out,
                        size_t *len);

#endif
