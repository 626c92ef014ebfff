/* tokenizer/tokenizer.c - llama.cpp's BPE ("gpt2") and SentencePiece ("llama") tokenizers.
 *
 * Follows llama.cpp's src/llama-vocab.cpp: llama_vocab::impl::load (defaults, attribute
 * fix-ups by token text), tokenizer_st_partition (user-defined tokens cut out first),
 * llm_tokenizer_bpe_session and llm_tokenizer_spm_session (the merge loops, with the same
 * priority order), token_to_piece. The pre-tokenizers are in tokenizer/unicode.c. */
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/log.h"
#include "core/status.h"
#include "tokenizer/unicode.h"

#define MAX_TOKEN_BYTES 65536 /* longer tokens are refused (real vocabularies stay under 2 KiB) */

/* llama.cpp's LLAMA_TOKEN_ATTR_* */
enum {
    ATTR_UNKNOWN = 1 << 0,
    ATTR_UNUSED = 1 << 1,
    ATTR_NORMAL = 1 << 2,
    ATTR_CONTROL = 1 << 3,
    ATTR_USER_DEFINED = 1 << 4,
    ATTR_BYTE = 1 << 5,
    ATTR_LSTRIP = 1 << 7,
    ATTR_RSTRIP = 1 << 8,
};

enum vocab_kind { KIND_SPM, KIND_BPE };

/* ---- pre-tokenizers ---- */

enum {
    PRE_IGNORE_MERGES = 1 << 0, /* a word that is a token stays whole (ignore_merges) */
    PRE_ADD_BOS = 1 << 1,       /* add_bos defaults to true */
    PRE_NO_BOS = 1 << 2,        /* the default BOS id is none */
    PRE_RAW = 1 << 3,           /* BPE on raw UTF-8 (no GPT-2 byte encoding), <0xXX> fallback */
    PRE_ESCAPE_WS = 1 << 4,     /* spaces become U+2581 before splitting */
    PRE_NL_WORDS = 1 << 5,      /* a run of newlines that is a token stays whole (gemma4) */
    PRE_FORCE_BOS = 1 << 6,     /* add_bos is true whatever the metadata says (gemma4) */
};

struct pre_info {
    const char *name;
    int family; /* enum mq_split_family, or -1: refused */
    unsigned flags;
    const char *why; /* for refused ones: llama.cpp's pre-tokenizer type */
};

#define GEMMA4 (PRE_RAW | PRE_ESCAPE_WS | PRE_NL_WORDS | PRE_ADD_BOS | PRE_FORCE_BOS)

/* tokenizer.ggml.pre values, as llama_vocab::impl::load maps them. */
static const struct pre_info pre_table[] = {
    {"default", MQ_SPLIT_DEFAULT, 0, NULL},
    {"llama3", MQ_SPLIT_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS, NULL},
    {"llama-v3", MQ_SPLIT_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS, NULL},
    {"llama-bpe", MQ_SPLIT_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS, NULL},
    {"falcon3", MQ_SPLIT_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS, NULL},
    {"falcon-h1", MQ_SPLIT_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS, NULL},
    {"pixtral", MQ_SPLIT_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS, NULL},
    {"midm-2.0", MQ_SPLIT_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS, NULL},
    {"lfm2", MQ_SPLIT_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS, NULL},
    {"jina-v5-nano", MQ_SPLIT_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS, NULL},
    {"dbrx", MQ_SPLIT_LLAMA3, 0, NULL},
    {"smaug-bpe", MQ_SPLIT_LLAMA3, 0, NULL},
    {"chatglm-bpe", MQ_SPLIT_LLAMA3, PRE_NO_BOS, NULL},
    {"glm4", MQ_SPLIT_LLAMA3, PRE_NO_BOS | PRE_IGNORE_MERGES, NULL},
    {"glm5", MQ_SPLIT_LLAMA3, PRE_NO_BOS | PRE_IGNORE_MERGES, NULL},
    {"deepseek-llm", MQ_SPLIT_DEEPSEEK_LLM, 0, NULL},
    {"deepseek-coder", MQ_SPLIT_DEEPSEEK_CODER, 0, NULL},
    {"falcon", MQ_SPLIT_FALCON, 0, NULL},
    {"mpt", MQ_SPLIT_GPT2, 0, NULL},
    {"starcoder", MQ_SPLIT_STARCODER, 0, NULL},
    {"gpt-2", MQ_SPLIT_GPT2, 0, NULL},
    {"phi-2", MQ_SPLIT_GPT2, 0, NULL},
    {"jina-es", MQ_SPLIT_GPT2, 0, NULL},
    {"jina-de", MQ_SPLIT_GPT2, 0, NULL},
    {"gigachat", MQ_SPLIT_GPT2, 0, NULL},
    {"jina-v2-es", MQ_SPLIT_GPT2, 0, NULL},
    {"jina-v2-de", MQ_SPLIT_GPT2, 0, NULL},
    {"a.x-4.0", MQ_SPLIT_GPT2, 0, NULL},
    {"mellum", MQ_SPLIT_GPT2, 0, NULL},
    {"modern-bert", MQ_SPLIT_GPT2, 0, NULL},
    {"jina-v1-en", MQ_SPLIT_GPT2, 0, NULL},
    {"jina-v2-code", MQ_SPLIT_GPT2, 0, NULL},
    {"roberta-bpe", MQ_SPLIT_GPT2, 0, NULL},
    {"olmo", MQ_SPLIT_GPT2, 0, NULL},
    {"jais", MQ_SPLIT_GPT2, 0, NULL},
    {"trillion", MQ_SPLIT_GPT2, 0, NULL},
    {"granite-docling", MQ_SPLIT_GPT2, 0, NULL},
    {"exaone4", MQ_SPLIT_GPT2, 0, NULL},
    {"gemma4", MQ_SPLIT_NEWLINES, GEMMA4, NULL},
    {"granite-embed-multi-311m", MQ_SPLIT_NEWLINES, GEMMA4, NULL},
    {"sarvam-moe", MQ_SPLIT_NEWLINES, PRE_RAW | PRE_ESCAPE_WS, NULL},
    {"refact", MQ_SPLIT_STARCODER, 0, NULL},
    {"command-r", MQ_SPLIT_STARCODER, 0, NULL},
    {"smollm", MQ_SPLIT_STARCODER, 0, NULL},
    {"codeshell", MQ_SPLIT_STARCODER, 0, NULL},
    {"exaone", MQ_SPLIT_STARCODER, 0, NULL},
    {"minerva-7b", MQ_SPLIT_STARCODER, 0, NULL},
    {"mellum2", MQ_SPLIT_STARCODER, 0, NULL},
    {"qwen2", MQ_SPLIT_QWEN2, 0, NULL},
    {"deepseek-r1-qwen", MQ_SPLIT_QWEN2, 0, NULL},
    {"kormo", MQ_SPLIT_QWEN2, 0, NULL},
    {"f2llmv2", MQ_SPLIT_QWEN2, 0, NULL},
    {"megrez", MQ_SPLIT_QWEN2, 0, NULL},
    {"stablelm2", MQ_SPLIT_QWEN2, 0, NULL},
    {"hunyuan", MQ_SPLIT_QWEN2, 0, NULL},
    {"solar-open", MQ_SPLIT_QWEN2, 0, NULL},
    {"grok-2", MQ_SPLIT_QWEN2, 0, NULL},
    {"qwen35", MQ_SPLIT_QWEN35, 0, NULL},
    {"poro-chat", MQ_SPLIT_PORO, 0, NULL},
    {"bloom", MQ_SPLIT_PORO, 0, NULL},
    {"gpt3-finnish", MQ_SPLIT_PORO, 0, NULL},
    {"viking", MQ_SPLIT_VIKING, 0, NULL},
    /* known to llama.cpp, not implemented here */
    {"minicpm5", -1, 0, "MINICPM5"},
    {"deepseek-v3", -1, 0, "DEEPSEEK3_LLM"},
    {"hunyuan-dense", -1, 0, "DEEPSEEK3_LLM"},
    {"joyai-llm", -1, 0, "DEEPSEEK3_LLM"},
    {"hy_v4", -1, 0, "DEEPSEEK3_LLM"},
    {"spark2_5", -1, 0, "SPARK2_5"},
    {"youtu", -1, 0, "YOUTU"},
    {"jais-2", -1, 0, "JAIS2"},
    {"whitespace", -1, 0, "WHITESPACE"},
    {"tekken", -1, 0, "TEKKEN"},
    {"chameleon", -1, 0, "CHAMELEON"},
    {"exaone-moe", -1, 0, "EXAONE_MOE"},
    {"gpt-4o", -1, 0, "GPT4O"},
    {"llama4", -1, 0, "GPT4O"},
    {"kanana2", -1, 0, "GPT4O"},
    {"talkie", -1, 0, "GPT4O"},
    {"minimax-m2", -1, 0, "MINIMAX_M2"},
    {"granite-embed-multi-97m", -1, 0, "GRANITE_EMB_MULTI"},
    {"tiny_aya", -1, 0, "TINY_AYA"},
    {"cohere2moe", -1, 0, "TINY_AYA"},
    {"superbpe", -1, 0, "SUPERBPE"},
    {"bailingmoe", -1, 0, "BAILINGMOE"},
    {"bailingmoe2", -1, 0, "BAILINGMOE"},
    {"llada-moe", -1, 0, "BAILINGMOE"},
    {"seed-coder", -1, 0, "SEED_CODER"},
    {"kimi-k2", -1, 0, "KIMI_K2"},
    {"ufakzeka", -1, 0, "UFAKZEKA"},
    {"afmoe", -1, 0, "AFMOE"},
    {"laguna", -1, 0, "LAGUNA"},
};

/* ---- the vocabulary ---- */

struct merge_slot {
    uint64_t key; /* (left id << 32) | right id; EMPTY_KEY when free */
    int32_t rank;
    int32_t result;
};
#define EMPTY_KEY UINT64_MAX

struct special {
    int32_t id;
    uint16_t attr;
    size_t len; /* of its text */
};

struct mq_vocab {
    enum vocab_kind kind;
    int64_t n_tokens;
    char *text;        /* every token's text, back to back */
    size_t *off;       /* token i is text[off[i] .. off[i + 1]) */
    float *score;      /* SentencePiece scores (0 when absent) */
    uint16_t *attr;    /* ATTR_* */
    int32_t *tok_slot; /* open addressing: token ids, -1 free */
    size_t tok_mask;
    struct merge_slot *merge_slot;
    size_t merge_mask;
    int64_t n_merges;
    int32_t byte_tok[256];   /* SPM: the byte's fallback token; BPE: the token of its GPT-2 char */
    int32_t raw1[256];       /* the token whose text is that single byte (BPE fallback) */
    int32_t hex_tok[256];    /* the <0xXX> token (raw BPE fallback) */
    struct special *special; /* tokens cut out of the text, longest first */
    size_t n_special;
    enum mq_split_family split;
    unsigned pre_flags;
    bool add_space_prefix;
    int32_t bos, eos, unk;
    bool add_bos, add_eos;
    char name[256];
    char describe[160];
};

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static inline uint64_t hash_u64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    return k ^ (k >> 33);
}

static inline size_t tok_len(const struct mq_vocab *v, int32_t id)
{
    return v->off[id + 1] - v->off[id];
}
static inline const char *tok_text(const struct mq_vocab *v, int32_t id)
{
    return v->text + v->off[id];
}

/* Token whose text is p[0..n), or -1 (llama.cpp's text_to_token). */
static int32_t find_token(const struct mq_vocab *v, const char *p, size_t n)
{
    for (size_t i = hash_bytes(p, n) & v->tok_mask;; i = (i + 1) & v->tok_mask) {
        int32_t id = v->tok_slot[i];
        if (id < 0)
            return -1;
        if (tok_len(v, id) == n && memcmp(tok_text(v, id), p, n) == 0)
            return id;
    }
}

static int32_t find_token_str(const struct mq_vocab *v, const char *s)
{
    return find_token(v, s, strlen(s));
}

static const struct merge_slot *find_merge(const struct mq_vocab *v, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t i = hash_u64(key) & v->merge_mask;; i = (i + 1) & v->merge_mask) {
        const struct merge_slot *s = &v->merge_slot[i];
        if (s->key == key)
            return s;
        if (s->key == EMPTY_KEY)
            return NULL;
    }
}

static size_t table_size(uint64_t n)
{
    size_t size = 16;
    while (size < 2 * n) /* load factor at most 1/2 */
        size *= 2;
    return size;
}

/* ---- loading ---- */

static int copy_tokens(struct mq_vocab *v, const struct mq_gguf_value *tokens)
{
    uint64_t n = tokens->arr.n;
    size_t total = 0;
    char empty[32];
    for (uint64_t i = 0; i < n; i++) {
        const struct mq_gguf_str *s = &tokens->arr.items[i].str;
        if (s->len > MAX_TOKEN_BYTES)
            return mq_error(MQ_EFORMAT, "'%s': token %llu is %llu bytes long (at most %d)", v->name,
                            (unsigned long long)i, (unsigned long long)s->len, MAX_TOKEN_BYTES);
        /* llama.cpp renames an empty token "[EMPTY_<id>]" */
        total +=
            s->len ? (size_t)s->len
                   : (size_t)snprintf(empty, sizeof(empty), "[EMPTY_%llu]", (unsigned long long)i);
    }
    v->text = malloc(total ? total : 1);
    v->off = malloc((n + 1) * sizeof(*v->off));
    if (!v->text || !v->off)
        return mq_error(MQ_ENOMEM, "cannot allocate %llu tokens (%zu bytes)", (unsigned long long)n,
                        total);
    size_t at = 0;
    for (uint64_t i = 0; i < n; i++) {
        const struct mq_gguf_str *s = &tokens->arr.items[i].str;
        v->off[i] = at;
        if (s->len) {
            memcpy(v->text + at, s->ptr, s->len);
            at += s->len;
        } else {
            int k = snprintf(empty, sizeof(empty), "[EMPTY_%llu]", (unsigned long long)i);
            memcpy(v->text + at, empty, (size_t)k);
            at += (size_t)k;
        }
    }
    v->off[n] = at;
    return MQ_OK;
}

static int build_token_hash(struct mq_vocab *v)
{
    size_t size = table_size((uint64_t)v->n_tokens);
    v->tok_slot = malloc(size * sizeof(*v->tok_slot));
    if (!v->tok_slot)
        return mq_error(MQ_ENOMEM, "cannot allocate a token table of %zu slots", size);
    memset(v->tok_slot, 0xFF, size * sizeof(*v->tok_slot));
    v->tok_mask = size - 1;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        const char *p = tok_text(v, id);
        size_t n = tok_len(v, id);
        size_t i = hash_bytes(p, n) & v->tok_mask;
        for (; v->tok_slot[i] >= 0; i = (i + 1) & v->tok_mask) {
            int32_t other = v->tok_slot[i];
            if (tok_len(v, other) == n && memcmp(tok_text(v, other), p, n) == 0)
                return mq_error(MQ_EFORMAT, "'%s': token %d has the same text as token %d", v->name,
                                id, other);
        }
        v->tok_slot[i] = id;
    }
    return MQ_OK;
}

static int load_merges(struct mq_vocab *v, const struct mq_gguf_value *merges)
{
    uint64_t n = merges->arr.n;
    if (n > INT32_MAX)
        return mq_error(MQ_EFORMAT, "'%s': %llu merges is too many", v->name,
                        (unsigned long long)n);
    size_t size = table_size(n);
    v->merge_slot = malloc(size * sizeof(*v->merge_slot));
    char *joined = malloc(2 * MAX_TOKEN_BYTES + 1);
    if (!v->merge_slot || !joined) {
        free(joined);
        return mq_error(MQ_ENOMEM, "cannot allocate a merge table of %zu slots", size);
    }
    for (size_t i = 0; i < size; i++)
        v->merge_slot[i] = (struct merge_slot){EMPTY_KEY, 0, 0};
    v->merge_mask = size - 1;
    int rc = MQ_OK;
    for (uint64_t r = 0; r < n; r++) {
        const struct mq_gguf_str *s = &merges->arr.items[r].str;
        /* llama.cpp splits at the first space after the first byte */
        const char *sp = s->len > 1 ? memchr(s->ptr + 1, ' ', s->len - 1) : NULL;
        if (!sp) {
            rc = mq_error(MQ_EFORMAT, "'%s': merge %llu has no space between its two parts",
                          v->name, (unsigned long long)r);
            break;
        }
        size_t la = (size_t)(sp - s->ptr), lb = s->len - la - 1;
        int32_t a = find_token(v, s->ptr, la), b = find_token(v, sp + 1, lb), res = -1;
        if (a >= 0 && b >= 0 && la + lb <= 2 * MAX_TOKEN_BYTES) {
            memcpy(joined, s->ptr, la);
            memcpy(joined + la, sp + 1, lb);
            res = find_token(v, joined, la + lb);
        }
        if (a < 0 || b < 0 || res < 0) {
            rc = mq_error(MQ_EFORMAT, "'%s': merge %llu names %s that is not a token", v->name,
                          (unsigned long long)r,
                          a < 0   ? "a left part"
                          : b < 0 ? "a right part"
                                  : "a result");
            break;
        }
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        size_t i = hash_u64(key) & v->merge_mask;
        while (v->merge_slot[i].key != EMPTY_KEY && v->merge_slot[i].key != key)
            i = (i + 1) & v->merge_mask;
        if (v->merge_slot[i].key == EMPTY_KEY) /* a repeated pair keeps its first rank */
            v->merge_slot[i] = (struct merge_slot){key, (int32_t)r, res};
    }
    free(joined);
    v->n_merges = (int64_t)n;
    return rc;
}

/* tokenizer.ggml.scores: f32 or i32, at least one per token; absent: zeros. */
static int load_scores(struct mq_vocab *v, const struct mq_gguf *g)
{
    const char *key = "tokenizer.ggml.scores";
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, key);
    if (!kv)
        return MQ_OK;
    const struct mq_gguf_value *a = &kv->value;
    if (a->type != MQ_GGUF_ARRAY ||
        (a->arr.type != MQ_GGUF_FLOAT32 && a->arr.type != MQ_GGUF_INT32))
        return mq_error(MQ_EFORMAT, "'%s': %s is not an array of f32 or i32", v->name, key);
    if (a->arr.n < (uint64_t)v->n_tokens)
        return mq_error(MQ_EFORMAT, "'%s': %s has %llu entries for %lld tokens", v->name, key,
                        (unsigned long long)a->arr.n, (long long)v->n_tokens);
    for (int64_t i = 0; i < v->n_tokens; i++)
        v->score[i] = (float)mq_gguf_arr_f64(a, (uint64_t)i);
    return MQ_OK;
}

/* tokenizer.ggml.token_type: i32 per token (llama_token_type); absent: all normal. */
static int load_types(struct mq_vocab *v, const struct mq_gguf *g)
{
    static const uint16_t type_attr[7] = {
        0, ATTR_NORMAL, ATTR_UNKNOWN, ATTR_CONTROL, ATTR_USER_DEFINED, ATTR_UNUSED, ATTR_BYTE};
    const char *key = "tokenizer.ggml.token_type";
    const struct mq_gguf_value *a;
    int rc = mq_gguf_get_arr(g, key, MQ_GGUF_INT32, &a);
    if (rc == MQ_ENOTFOUND) {
        for (int64_t i = 0; i < v->n_tokens; i++)
            v->attr[i] = ATTR_NORMAL;
        return MQ_OK;
    }
    if (rc < 0)
        return rc;
    if (a->arr.n < (uint64_t)v->n_tokens)
        return mq_error(MQ_EFORMAT, "'%s': %s has %llu entries for %lld tokens", v->name, key,
                        (unsigned long long)a->arr.n, (long long)v->n_tokens);
    for (int64_t i = 0; i < v->n_tokens; i++) {
        int64_t t = mq_gguf_arr_i64(a, (uint64_t)i);
        v->attr[i] = t >= 0 && t < 7 ? type_attr[t] : 0;
    }
    return MQ_OK;
}

/* A token id from the metadata: absent keeps *id; out of range is an error when
 * `strict`, else ignored (llama.cpp warns and keeps the default). */
static int get_id(const struct mq_vocab *v, const struct mq_gguf *g, const char *key, bool strict,
                  int32_t *id)
{
    uint32_t u;
    int rc = mq_gguf_get_u32(g, key, &u);
    if (rc == MQ_ENOTFOUND)
        return MQ_OK;
    if (rc < 0)
        return rc;
    if ((int64_t)u >= v->n_tokens) {
        if (strict)
            return mq_error(MQ_EFORMAT, "'%s': %s = %u is not a token (vocabulary of %lld)",
                            v->name, key, u, (long long)v->n_tokens);
        return MQ_OK;
    }
    *id = (int32_t)u;
    return MQ_OK;
}

static int get_flag(const struct mq_gguf *g, const char *key, bool *out)
{
    int rc = mq_gguf_get_bool(g, key, out);
    return rc == MQ_ENOTFOUND ? MQ_OK : rc;
}

/* Token texts llama.cpp treats as end of generation, whatever their type. */
static const char *const eog_texts[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|return|>",
                                        "<|call|>",
                                        "<|flush|>",
                                        "<|calls|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "</s>",
                                        "<|eom_id|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "[EOS]",
                                        "<|end_of_text|>",
                                        "<end_of_utterance>",
                                        "<eos>",
                                        "<turn|>",
                                        "<|tool_response>",
                                        "<\xef\xbd\x9c"
                                        "end\xe2\x96\x81"
                                        "of\xe2\x96\x81"
                                        "sentence\xef\xbd\x9c>",
                                        "[e~[",
                                        NULL};
/* FIM tokens llama.cpp looks up by text when the metadata names none */
static const char *const fim_pre_texts[] = {"<|fim_prefix|>",
                                            "<fim-prefix>",
                                            "<fim_prefix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "begin\xef\xbd\x9c>",
                                            "<PRE>",
                                            "\xe2\x96\x81<PRE>",
                                            "<|code_prefix|>",
                                            "<|prefix|>",
                                            NULL};
static const char *const fim_suf_texts[] = {"<|fim_suffix|>",
                                            "<fim-suffix>",
                                            "<fim_suffix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "hole\xef\xbd\x9c>",
                                            "<SUF>",
                                            "\xe2\x96\x81<SUF>",
                                            "<|code_suffix|>",
                                            "<|suffix|>",
                                            NULL};
static const char *const fim_mid_texts[] = {"<|fim_middle|>",
                                            "<fim-middle>",
                                            "<fim_middle>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "end\xef\xbd\x9c>",
                                            "<MID>",
                                            "\xe2\x96\x81<MID>",
                                            "<|code_middle|>",
                                            "<|middle|>",
                                            NULL};
static const char *const fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>",
                                            "<PAD>",       "[PAD]",     NULL};
static const char *const fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>",       "<reponame>",    NULL};
static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};

static int cmp_special(const void *pa, const void *pb)
{
    const struct special *a = pa, *b = pb;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* A string value, cut to fit (NUL bytes end it early); "" when absent or not a string.
 * Only for matching names, so nothing is printed. */
static void get_str_quiet(const struct mq_gguf *g, const char *key, char *buf, size_t size)
{
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, key);
    size_t n = 0;
    if (kv && kv->value.type == MQ_GGUF_STRING) {
        n = kv->value.str.len < size - 1 ? (size_t)kv->value.str.len : size - 1;
        memcpy(buf, kv->value.str.ptr, n);
    }
    buf[n] = '\0';
}

static bool name_contains(const char *hay, const char *const *needles)
{
    for (; *needles; needles++)
        if (strstr(hay, *needles))
            return true;
    return false;
}

/* The lowest id among the tokens spelled as one of `texts`, or -1. */
static int32_t find_any(const struct mq_vocab *v, const char *const *texts)
{
    int32_t best = -1;
    for (; *texts; texts++) {
        int32_t id = find_token_str(v, *texts);
        if (id >= 0 && (best < 0 || id < best))
            best = id;
    }
    return best;
}

static bool text_is(const struct mq_vocab *v, int32_t id, const char *s)
{
    return tok_len(v, id) == strlen(s) && memcmp(tok_text(v, id), s, tok_len(v, id)) == 0;
}

/* The attribute fix-ups of llama_vocab::impl::load, in its order, then the list of tokens
 * cut out of the text (user-defined, not control or unknown). ids[]: fim pre, suf, mid,
 * pad, rep, sep, eot, eom from the metadata (-1 when absent). */
static int fix_attributes(struct mq_vocab *v, const struct mq_gguf *g, const int32_t ids[8])
{
    int64_t n = v->n_tokens;
    /* FIM tokens found by text when the metadata gave none become control. llama.cpp
     * takes the first match in hash-map order; mixq the lowest id. */
    const char *const *fim_lists[6] = {fim_pre_texts, fim_suf_texts, fim_mid_texts,
                                       fim_pad_texts, fim_rep_texts, fim_sep_texts};
    int32_t fim[6];
    for (int k = 0; k < 6; k++) {
        fim[k] = ids[k];
        if (fim[k] < 0 && (fim[k] = find_any(v, fim_lists[k])) >= 0)
            v->attr[fim[k]] |= ATTR_CONTROL;
    }
    /* end-of-generation texts become control; the EOG set also holds fim pad/rep/sep,
     * eos, eot and eom */
    int32_t eog[64];
    size_t n_eog = 0;
    for (const char *const *t = eog_texts; *t; t++) {
        int32_t id = find_token_str(v, *t);
        if (id >= 0) {
            v->attr[id] |= ATTR_CONTROL;
            eog[n_eog++] = id;
        }
    }
    const int32_t extra[6] = {fim[3], fim[4], fim[5], v->eos, ids[6], ids[7]};
    for (int k = 0; k < 6; k++)
        if (extra[k] >= 0)
            eog[n_eog++] = extra[k];
    bool has_return = false, has_call = false, has_end = false, has_flush = false;
    bool has_s_marker = false, has_s = false;
    int32_t end_id = -1, s_id = -1;
    for (size_t i = 0; i < n_eog; i++) {
        int32_t id = eog[i];
        has_return |= text_is(v, id, "<|return|>");
        has_call |= text_is(v, id, "<|call|>") || text_is(v, id, "<|calls|>");
        has_flush |= text_is(v, id, "<|flush|>");
        if (text_is(v, id, "<|end|>")) {
            has_end = true;
            end_id = id;
        }
        has_s_marker |= text_is(v, id, "<|tool_response>") || text_is(v, id, "<|plamo:eos|>");
        if (text_is(v, id, "</s>")) {
            has_s = true;
            s_id = id;
        }
    }
    /* gpt-oss: always rendered, so user-defined */
    static const char *const gpt_oss[] = {"<|channel|>", "<|message|>", "<|start|>",
                                          "<|constrain|>", NULL};
    for (const char *const *t = gpt_oss; *t; t++) {
        int32_t id = find_token_str(v, *t);
        if (id >= 0)
            v->attr[id] = ATTR_USER_DEFINED;
    }
    if ((has_return && has_call && has_end) || (has_call && has_flush && has_end))
        v->attr[end_id] = ATTR_USER_DEFINED;
    if (has_s_marker && has_s)
        v->attr[s_id] = ATTR_NORMAL;

    /* cache_special_tokens: control, user-defined and unknown, longest first (llama.cpp's
     * std::sort leaves ties in an unspecified order; mixq orders them by id) */
    size_t k = 0;
    for (int32_t id = 0; id < n; id++)
        k += (v->attr[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) != 0;
    struct special *all = malloc((k ? k : 1) * sizeof(*all));
    if (!all)
        return mq_error(MQ_ENOMEM, "cannot allocate %zu special tokens", k);
    k = 0;
    for (int32_t id = 0; id < n; id++)
        if (v->attr[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN))
            all[k++] = (struct special){id, 0, tok_len(v, id)};
    qsort(all, k, sizeof(*all), cmp_special);

    /* per-model strip attributes, set after the cache is built */
    char model_name[256], pre[128], arch[128];
    get_str_quiet(g, "general.name", model_name, sizeof(model_name));
    get_str_quiet(g, "tokenizer.ggml.pre", pre, sizeof(pre));
    get_str_quiet(g, "general.architecture", arch, sizeof(arch));
    for (char *c = model_name; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    static const char *const jina[] = {"jina-v2-de", "jina-v2-es", "jina-v2-code", NULL},
                             *const bert_arch[] = {"nomic-bert-moe", "jina-bert-v3", NULL},
                             *const phi3[] = {"phi-3", "phi3", NULL},
                             *const modern[] = {"modern-bert", NULL};
    if (name_contains(pre, jina) || name_contains(arch, bert_arch)) {
        int32_t id = find_token_str(v, "<mask>");
        if (id >= 0)
            v->attr[id] |= ATTR_LSTRIP;
    } else if (name_contains(model_name, phi3)) {
        for (size_t i = 0; i < k; i++)
            v->attr[all[i].id] |= ATTR_RSTRIP;
        int32_t id = find_token_str(v, "</s>");
        if (id >= 0)
            v->attr[id] |= ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int i = 0; i < 3; i++)
            if ((id = find_token_str(v, keep[i])) >= 0)
                v->attr[id] &= (uint16_t)~ATTR_RSTRIP;
    } else if (name_contains(model_name, modern)) {
        int32_t id = find_token_str(v, "[MASK]");
        if (id >= 0)
            v->attr[id] |= ATTR_LSTRIP;
    }
    /* with parse_special = false only user-defined tokens are cut out */
    v->n_special = 0;
    for (size_t i = 0; i < k; i++) {
        uint16_t a = v->attr[all[i].id];
        if (!(a & (ATTR_CONTROL | ATTR_UNKNOWN)))
            all[v->n_special++] = (struct special){all[i].id, a, all[i].len};
    }
    v->special = all;
    return MQ_OK;
}

static void byte_tables(struct mq_vocab *v)
{
    for (int b = 0; b < 256; b++) {
        char c = (char)b, hex[8], enc[4];
        snprintf(hex, sizeof(hex), "<0x%02X>", b);
        v->hex_tok[b] = find_token(v, hex, 6);
        v->raw1[b] = find_token(v, &c, 1);
        if (v->kind == KIND_SPM)
            v->byte_tok[b] = v->hex_tok[b] >= 0 ? v->hex_tok[b] : v->raw1[b];
        else
            v->byte_tok[b] =
                find_token(v, enc, mq_utf8_encode(mq_unicode_byte_to_cp((uint8_t)b), enc));
    }
}

static const char *refused_kind(const char *kind)
{
    static const char *const kinds[][2] = {{"bert", "WPM"},
                                           {"t5", "UGM"},
                                           {"rwkv", "RWKV"},
                                           {"plamo2", "PLaMo2"},
                                           {"no_vocab", "none"},
                                           {"none", "none"},
                                           {"test", "TEST"},
                                           {"hybriddna", "BPE with DNA k-mers"},
                                           {"whitespace", "BPE on whitespace"}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(kind, kinds[i][0]))
            return kinds[i][1];
    return NULL;
}

int mq_vocab_load(const struct mq_gguf *g, const char *name, struct mq_vocab **out)
{
    *out = NULL;
    char kind[64];
    int rc = mq_gguf_get_str(g, "tokenizer.ggml.model", kind, sizeof(kind));
    if (rc == MQ_ENOTFOUND)
        return mq_error(MQ_EUNSUPPORTED, "'%s' has no tokenizer (tokenizer.ggml.model is missing)",
                        name);
    if (rc < 0)
        return rc;
    bool spm = !strcmp(kind, "llama"), gemma4 = !strcmp(kind, "gemma4");
    if (!spm && !gemma4 && strcmp(kind, "gpt2") != 0) {
        const char *what = refused_kind(kind);
        if (what)
            return mq_error(
                MQ_EUNSUPPORTED,
                "'%s': tokenizer kind '%s' (llama.cpp's %s) is not supported: mixq reads 'gpt2' "
                "(BPE) and 'llama' (SentencePiece) vocabularies",
                name, kind, what);
        return mq_error(MQ_EUNSUPPORTED, "'%s': unknown tokenizer kind '%s'", name, kind);
    }
    /* the pre-tokenizer, before any allocation */
    const struct pre_info *pre = NULL;
    char pre_name[128] = "default";
    if (gemma4) {
        snprintf(pre_name, sizeof(pre_name), "gemma4");
    } else if (!spm) {
        rc = mq_gguf_get_str(g, "tokenizer.ggml.pre", pre_name, sizeof(pre_name));
        if (rc == MQ_ENOTFOUND) {
            mq_warn("'%s': tokenizer.ggml.pre is missing: using the 'default' pre-tokenizer, as "
                    "llama.cpp does",
                    name);
            snprintf(pre_name, sizeof(pre_name), "default");
        } else if (rc < 0) {
            return rc;
        }
    }
    if (!spm) {
        for (size_t i = 0; i < sizeof(pre_table) / sizeof(pre_table[0]); i++)
            if (!strcmp(pre_table[i].name, pre_name))
                pre = &pre_table[i];
        if (!pre)
            return mq_error(MQ_EUNSUPPORTED,
                            "'%s': unknown pre-tokenizer '%s' (llama.cpp refuses it too)", name,
                            pre_name);
        if (pre->family < 0)
            return mq_error(
                MQ_EUNSUPPORTED,
                "'%s': pre-tokenizer '%s' (llama.cpp's %s) is not supported by mixq's tokenizer",
                name, pre_name, pre->why);
    }
    const struct mq_gguf_value *tokens, *merges = NULL;
    rc = mq_gguf_get_arr(g, "tokenizer.ggml.tokens", MQ_GGUF_STRING, &tokens);
    if (rc == MQ_ENOTFOUND)
        return mq_error(MQ_EFORMAT, "'%s': tokenizer.ggml.tokens is missing", name);
    if (rc < 0)
        return rc;
    if (tokens->arr.n == 0)
        return mq_error(MQ_EFORMAT, "'%s': tokenizer.ggml.tokens is empty", name);
    if (tokens->arr.n >= INT32_MAX)
        return mq_error(MQ_EFORMAT, "'%s': %llu tokens is too many", name,
                        (unsigned long long)tokens->arr.n);
    if (!spm) {
        rc = mq_gguf_get_arr(g, "tokenizer.ggml.merges", MQ_GGUF_STRING, &merges);
        if (rc == MQ_ENOTFOUND)
            return mq_error(MQ_EFORMAT,
                            "'%s': tokenizer.ggml.merges is missing (a %s vocabulary needs them)",
                            name, kind);
        if (rc < 0)
            return rc;
    }

    struct mq_vocab *v = calloc(1, sizeof(*v));
    if (!v)
        return mq_error(MQ_ENOMEM, "cannot allocate a vocabulary");
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->kind = spm ? KIND_SPM : KIND_BPE;
    v->n_tokens = (int64_t)tokens->arr.n;
    if (pre) {
        v->split = (enum mq_split_family)pre->family;
        v->pre_flags = pre->flags;
    }
    v->score = calloc((size_t)v->n_tokens, sizeof(*v->score));
    v->attr = calloc((size_t)v->n_tokens, sizeof(*v->attr));
    if (!v->score || !v->attr) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %lld tokens", (long long)v->n_tokens);
        goto fail;
    }
    if ((rc = copy_tokens(v, tokens)) < 0 || (rc = build_token_hash(v)) < 0 ||
        (rc = load_scores(v, g)) < 0 || (rc = load_types(v, g)) < 0)
        goto fail;
    if (merges && (rc = load_merges(v, merges)) < 0)
        goto fail;

    /* special ids: llama.cpp's defaults per kind, a default outside the vocabulary is none */
    v->bos = spm ? 1 : gemma4 ? -1 : 11;
    v->eos = spm ? 2 : gemma4 ? -1 : 11;
    v->unk = spm ? 0 : -1;
    if (v->pre_flags & PRE_NO_BOS)
        v->bos = -1;
    if (v->bos >= v->n_tokens)
        v->bos = -1;
    if (v->eos >= v->n_tokens)
        v->eos = -1;
    if (v->unk >= v->n_tokens)
        v->unk = -1;
    int32_t ids[8] = {-1, -1, -1, -1,
                      -1, -1, -1, -1}; /* fim pre, suf, mid, pad, rep, sep, eot, eom */
    if ((rc = get_id(v, g, "tokenizer.ggml.bos_token_id", true, &v->bos)) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.eos_token_id", true, &v->eos)) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.unknown_token_id", true, &v->unk)) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.eot_token_id", false, &ids[6])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.eom_token_id", false, &ids[7])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.fim_pre_token_id", false, &ids[0])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.fim_suf_token_id", false, &ids[1])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.fim_mid_token_id", false, &ids[2])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.fim_pad_token_id", false, &ids[3])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.fim_rep_token_id", false, &ids[4])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.fim_sep_token_id", false, &ids[5])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.prefix_token_id", false, &ids[0])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.suffix_token_id", false, &ids[1])) < 0 ||
        (rc = get_id(v, g, "tokenizer.ggml.middle_token_id", false, &ids[2])) < 0)
        goto fail;
    v->add_bos = spm || (v->pre_flags & PRE_ADD_BOS);
    v->add_eos = false;
    v->add_space_prefix = spm;
    if ((rc = get_flag(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix)) < 0 ||
        (rc = get_flag(g, "tokenizer.ggml.add_bos_token", &v->add_bos)) < 0 ||
        (rc = get_flag(g, "tokenizer.ggml.add_eos_token", &v->add_eos)) < 0)
        goto fail;
    if (v->pre_flags & PRE_FORCE_BOS)
        v->add_bos = true;
    /* llama.cpp asserts there is a token to add; mixq adds none */
    v->add_bos = v->add_bos && v->bos >= 0;
    v->add_eos = v->add_eos && v->eos >= 0;
    if ((rc = fix_attributes(v, g, ids)) < 0)
        goto fail;
    byte_tables(v);
    if (spm)
        snprintf(v->describe, sizeof(v->describe), "llama SentencePiece, %lld tokens",
                 (long long)v->n_tokens);
    else
        snprintf(v->describe, sizeof(v->describe),
                 "%s BPE, pre-tokenizer '%s', %lld tokens, %lld merges", kind, pre_name,
                 (long long)v->n_tokens, (long long)v->n_merges);
    *out = v;
    return MQ_OK;
fail:
    mq_vocab_free(v);
    return rc;
}

void mq_vocab_free(struct mq_vocab *v)
{
    if (!v)
        return;
    free(v->text);
    free(v->off);
    free(v->score);
    free(v->attr);
    free(v->tok_slot);
    free(v->merge_slot);
    free(v->special);
    free(v);
}

/* ---- tokenizing ---- */

struct ids {
    int32_t *p;
    size_t n, cap;
    int err;
};

static void ids_push(struct ids *o, int32_t id)
{
    if (o->err)
        return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 256;
        int32_t *p = realloc(o->p, cap * sizeof(*p));
        if (!p) {
            o->err = mq_error(MQ_ENOMEM, "cannot allocate %zu token ids", cap);
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    o->p[o->n++] = id;
}

/* Growable scratch buffer. */
static void *scratch(void **p, size_t *cap, size_t want, size_t elem)
{
    if (*cap >= want)
        return *p;
    size_t c = *cap ? *cap : 256;
    while (c < want)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) {
        mq_error(MQ_ENOMEM, "cannot allocate %zu bytes of tokenizer scratch", c * elem);
        return NULL;
    }
    *p = q;
    *cap = c;
    return q;
}

/* A symbol of a word being merged: bytes [start, start + n) of the word, a token id
 * (-1 when its text is not a token), and its neighbours in the chain. */
struct sym {
    int32_t prev, next;
    uint32_t start, n;
    int32_t tok;
};

/* A candidate merge of symbols left and right (adjacent when queued); stale when either
 * has changed size since. key orders the queue: BPE rank, or SentencePiece score. */
struct bigram {
    int32_t left, right;
    uint32_t size;
    int32_t tok;  /* the merged token */
    int32_t rank; /* BPE */
    float score;  /* SentencePiece */
};

struct work {
    struct sym *sym;
    size_t sym_cap;
    struct bigram *heap;
    size_t heap_n, heap_cap;
    char *buf; /* escaped text / a word's bytes */
    size_t buf_cap;
    char *esc; /* a fragment with U+2581 for spaces */
    size_t esc_cap;
    char *enc; /* a word in GPT-2 byte encoding */
    size_t enc_cap;
    uint32_t *cps;
    size_t cps_cap;
    uint16_t *flags;
    size_t flags_cap;
    struct mq_split split;
    bool spm;
};

/* true when a must come out of the queue before b */
static bool before(const struct work *w, const struct bigram *a, const struct bigram *b)
{
    if (w->spm) /* highest score, then leftmost */
        return a->score > b->score || (a->score == b->score && a->left < b->left);
    return a->rank < b->rank ||
           (a->rank == b->rank && a->left < b->left); /* lowest rank, leftmost */
}

static int heap_push(struct work *w, struct bigram b)
{
    if (!scratch((void **)&w->heap, &w->heap_cap, w->heap_n + 1, sizeof(*w->heap)))
        return MQ_ENOMEM;
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(w, &b, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = b;
    return MQ_OK;
}

static struct bigram heap_pop(struct work *w)
{
    struct bigram top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(w, &w->heap[c + 1], &w->heap[c]))
            c++;
        if (!before(w, &w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

/* Queues the merge of symbols l and r if there is one. */
static int add_bigram(const struct mq_vocab *v, struct work *w, const char *text, int32_t l,
                      int32_t r)
{
    if (l < 0 || r < 0)
        return MQ_OK;
    const struct sym *a = &w->sym[l], *b = &w->sym[r];
    struct bigram bg = {.left = l, .right = r, .size = a->n + b->n};
    if (w->spm) { /* the joined text must be a token */
        bg.tok = find_token(v, text + a->start, a->n + b->n);
        if (bg.tok < 0)
            return MQ_OK;
        bg.score = v->score[bg.tok];
    } else { /* the pair must be a merge */
        if (a->tok < 0 || b->tok < 0)
            return MQ_OK;
        const struct merge_slot *m = find_merge(v, a->tok, b->tok);
        if (!m)
            return MQ_OK;
        bg.tok = m->result;
        bg.rank = m->rank;
    }
    return heap_push(w, bg);
}

/* Merges the symbols of text[0..len) (w->sym, chained, n_sym of them) until no queued
 * merge applies; both llama.cpp sessions run this loop. */
static int merge_symbols(const struct mq_vocab *v, struct work *w, const char *text, int32_t n_sym)
{
    int rc;
    w->heap_n = 0;
    for (int32_t i = 1; i < n_sym; i++)
        if ((rc = add_bigram(v, w, text, i - 1, i)) < 0)
            return rc;
    while (w->heap_n) {
        struct bigram bg = heap_pop(w);
        struct sym *l = &w->sym[bg.left], *r = &w->sym[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size)
            continue; /* outdated */
        l->n += r->n;
        l->tok = bg.tok;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->sym[r->next].prev = bg.left;
        if ((rc = add_bigram(v, w, text, l->prev, bg.left)) < 0 ||
            (rc = add_bigram(v, w, text, bg.left, l->next)) < 0)
            return rc;
    }
    return MQ_OK;
}

/* Splits text[0..len) into UTF-8 "characters" by lead byte, clipped at the end, as
 * llama.cpp's sessions do. */
static int make_symbols(struct work *w, const char *text, size_t len, int32_t *n_out)
{
    if (!scratch((void **)&w->sym, &w->sym_cap, len + 1, sizeof(*w->sym)))
        return MQ_ENOMEM;
    int32_t n = 0;
    for (size_t at = 0; at < len;) {
        size_t c = mq_utf8_len((unsigned char)text[at]);
        if (c > len - at)
            c = len - at;
        w->sym[n] = (struct sym){n - 1, at + c == len ? -1 : n + 1, (uint32_t)at, (uint32_t)c, -1};
        n++;
        at += c;
    }
    *n_out = n;
    return MQ_OK;
}

/* llm_tokenizer_spm_session::tokenize on one fragment; text is already escaped. */
static int spm_fragment(const struct mq_vocab *v, struct work *w, const char *text, size_t len,
                        struct ids *o)
{
    int32_t n;
    int rc;
    if (len > UINT32_MAX / 2)
        return mq_error(MQ_EINVAL, "a text fragment of %zu bytes is too long to tokenize", len);
    if ((rc = make_symbols(w, text, len, &n)) < 0 || (rc = merge_symbols(v, w, text, n)) < 0)
        return rc;
    for (int32_t i = 0; n > 0 && i != -1; i = w->sym[i].next) {
        const struct sym *s = &w->sym[i];
        int32_t tok = s->tok >= 0 ? s->tok : find_token(v, text + s->start, s->n);
        if (tok >= 0) {
            ids_push(o, tok);
            continue;
        }
        for (uint32_t j = 0; j < s->n; j++) { /* byte fallback */
            unsigned char b = (unsigned char)text[s->start + j];
            if (v->byte_tok[b] < 0)
                return mq_error(
                    MQ_EUNSUPPORTED,
                    "'%s': the text needs byte 0x%02X, which has no token (no <0x%02X>)", v->name,
                    b, b);
            ids_push(o, v->byte_tok[b]);
        }
    }
    return o->err;
}

static bool all_newlines(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != '\n')
            return false;
    return n > 0;
}

/* One BPE word: word[0..len) are its UTF-8 bytes. */
static int bpe_word(const struct mq_vocab *v, struct work *w, const char *word, size_t len,
                    struct ids *o)
{
    bool raw = v->pre_flags & PRE_RAW;
    int32_t n = 0;
    int rc;
    const char *text = word; /* the bytes symbols index */
    /* the word's text as the vocabulary spells it */
    const char *spelled = word;
    size_t spelled_len = len;
    if (!raw && (v->pre_flags & PRE_IGNORE_MERGES)) {
        if (!scratch((void **)&w->enc, &w->enc_cap, 2 * len, 1))
            return MQ_ENOMEM;
        spelled_len = 0;
        for (size_t i = 0; i < len; i++)
            spelled_len +=
                mq_utf8_encode(mq_unicode_byte_to_cp((uint8_t)word[i]), w->enc + spelled_len);
        spelled = w->enc;
    }
    if ((v->pre_flags & PRE_IGNORE_MERGES) ||
        ((v->pre_flags & PRE_NL_WORDS) && all_newlines(word, len))) {
        int32_t tok = find_token(v, spelled, spelled_len);
        if (tok >= 0) {
            ids_push(o, tok);
            return o->err;
        }
    }
    if (!raw) { /* GPT-2 byte encoding: one symbol per byte */
        if (!scratch((void **)&w->sym, &w->sym_cap, len + 1, sizeof(*w->sym)))
            return MQ_ENOMEM;
        for (size_t i = 0; i < len; i++)
            w->sym[i] = (struct sym){(int32_t)i - 1, i + 1 == len ? -1 : (int32_t)i + 1,
                                     (uint32_t)i, 1, v->byte_tok[(unsigned char)word[i]]};
        n = (int32_t)len;
    } else {
        if ((rc = make_symbols(w, word, len, &n)) < 0)
            return rc;
        for (int32_t i = 0; i < n; i++)
            w->sym[i].tok = find_token(v, word + w->sym[i].start, w->sym[i].n);
    }
    if ((rc = merge_symbols(v, w, text, n)) < 0)
        return rc;
    for (int32_t i = 0; i < n; i++) {
        const struct sym *s = &w->sym[i];
        if (s->n == 0)
            continue;
        if (s->tok >= 0) {
            ids_push(o, s->tok);
            continue;
        }
        /* not a token: llama.cpp looks up each byte of its (encoded) text alone */
        for (uint32_t j = 0; j < s->n; j++) {
            unsigned char b = (unsigned char)text[s->start + j];
            if (raw) {
                if (v->hex_tok[b] >= 0)
                    ids_push(o, v->hex_tok[b]);
                continue;
            }
            char enc[4];
            size_t k = mq_utf8_encode(mq_unicode_byte_to_cp(b), enc);
            for (size_t e = 0; e < k; e++)
                if (v->raw1[(unsigned char)enc[e]] >= 0)
                    ids_push(o, v->raw1[(unsigned char)enc[e]]);
        }
    }
    return o->err;
}

/* llm_tokenizer_bpe_session::tokenize on one fragment (already escaped when asked). */
static int bpe_fragment(const struct mq_vocab *v, struct work *w, const char *text, size_t len,
                        struct ids *o)
{
    if (!scratch((void **)&w->cps, &w->cps_cap, len + 1, sizeof(*w->cps)) ||
        !scratch((void **)&w->flags, &w->flags_cap, len + 1, sizeof(*w->flags)))
        return MQ_ENOMEM;
    size_t n = 0;
    for (size_t at = 0; at < len; n++) {
        size_t adv;
        w->cps[n] = mq_utf8_decode(text + at, len - at, &adv);
        if (w->cps[n] >= MQ_UNICODE_MAX)
            return mq_error(
                MQ_EINVAL,
                "the text has a 4-byte UTF-8 sequence for 0x%X, above U+10FFFF, at byte %zu "
                "(llama.cpp's tokenizer throws on it too)",
                (unsigned)w->cps[n], at);
        w->flags[n] = mq_unicode_flags(w->cps[n]);
        at += adv;
    }
    int rc = mq_split_run(&w->split, v->split, w->cps, w->flags, n);
    if (rc < 0)
        return rc;
    size_t cp = 0;
    for (size_t k = 0; k < w->split.n; k++) {
        size_t wl = w->split.len[k];
        if (!scratch((void **)&w->buf, &w->buf_cap, 4 * wl, 1))
            return MQ_ENOMEM;
        size_t bytes = 0;
        for (size_t i = 0; i < wl; i++)
            bytes += mq_utf8_encode(w->cps[cp + i], w->buf + bytes);
        cp += wl;
        if (bytes > UINT32_MAX / 2)
            return mq_error(MQ_EINVAL, "a word of %zu bytes is too long to tokenize", bytes);
        if ((rc = bpe_word(v, w, w->buf, bytes, o)) < 0)
            return rc;
    }
    return MQ_OK;
}

/* A piece of the text after cutting out user-defined tokens: tok >= 0, or text[off..+len). */
struct frag {
    int32_t tok;
    size_t off, len;
};

static bool c_isspace(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* tokenizer_st_partition with parse_special = false: each user-defined token, longest
 * first, is cut out of every text fragment, left to right. */
static int partition(const struct mq_vocab *v, const char *text, size_t len, struct frag **out,
                     size_t *n_out)
{
    size_t n = 1, cap = 16;
    struct frag *f = malloc(cap * sizeof(*f)), *g = NULL;
    if (!f)
        return mq_error(MQ_ENOMEM, "cannot allocate text fragments");
    f[0] = (struct frag){-1, 0, len};
    for (size_t s = 0; s < v->n_special; s++) {
        int32_t id = v->special[s].id;
        uint16_t attr = v->special[s].attr;
        const char *t = tok_text(v, id);
        size_t tl = tok_len(v, id);
        /* a fragment can split into at most 2 * (matches) + 1 pieces */
        size_t gn = 0, gcap = n + 16;
        g = malloc(gcap * sizeof(*g));
        if (!g)
            goto nomem;
        for (size_t i = 0; i < n; i++) {
            if (f[i].tok >= 0 || f[i].len < tl) {
                if (gn + 1 > gcap) {
                    struct frag *q = realloc(g, (gcap *= 2) * sizeof(*g));
                    if (!q)
                        goto nomem;
                    g = q;
                }
                g[gn++] = f[i];
                continue;
            }
            size_t base = f[i].off, blen = f[i].len;
            for (;;) {
                const char *m = blen >= tl ? memmem(text + base, blen, t, tl) : NULL;
                if (gn + 3 > gcap) {
                    struct frag *q = realloc(g, (gcap *= 2) * sizeof(*g));
                    if (!q)
                        goto nomem;
                    g = q;
                }
                if (!m) {
                    if (blen > 0)
                        g[gn++] = (struct frag){-1, base, blen};
                    break;
                }
                size_t at = (size_t)(m - text);
                size_t left = at - base;
                if (attr & ATTR_LSTRIP)
                    while (left > 0 && c_isspace(text[base + left - 1]))
                        left--;
                if (left > 0)
                    g[gn++] = (struct frag){-1, base, left};
                g[gn++] = (struct frag){id, 0, 0};
                size_t rs = at + tl, rl = base + blen - rs;
                if (attr & ATTR_RSTRIP)
                    while (rl > 0 && c_isspace(text[rs])) {
                        rs++;
                        rl--;
                    }
                base = rs;
                blen = rl;
            }
        }
        free(f);
        f = g;
        n = gn;
        g = NULL;
    }
    *out = f;
    *n_out = n;
    return MQ_OK;
nomem:
    free(f);
    free(g);
    return mq_error(MQ_ENOMEM, "cannot allocate text fragments");
}

static int tokenize(const struct mq_vocab *v, const char *text, size_t len, bool bos, bool eos,
                    int32_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    struct ids o = {0};
    struct work w = {.spm = v->kind == KIND_SPM};
    struct frag *f = NULL;
    size_t nf = 0;
    int rc = MQ_OK;
    if (bos && v->bos >= 0)
        ids_push(&o, v->bos);
    if (len > 0 && (rc = partition(v, text, len, &f, &nf)) < 0)
        goto done;
    bool prev_special = true; /* SentencePiece: a space in front of the first text */
    for (size_t i = 0; i < nf && rc == MQ_OK; i++) {
        if (f[i].tok >= 0) {
            ids_push(&o, f[i].tok);
            prev_special = true;
            continue;
        }
        const char *p = text + f[i].off;
        size_t l = f[i].len;
        bool prefix = w.spm && v->add_space_prefix && prev_special;
        bool escape = w.spm || (v->pre_flags & PRE_ESCAPE_WS);
        prev_special = false;
        if (escape) { /* ' ' -> U+2581 */
            size_t spaces = prefix;
            for (size_t k = 0; k < l; k++)
                spaces += p[k] == ' ';
            char *e = scratch((void **)&w.esc, &w.esc_cap, l + prefix + 2 * spaces + 1, 1);
            if (!e) {
                rc = MQ_ENOMEM;
                break;
            }
            size_t k = 0;
            if (prefix) {
                memcpy(e, "\xe2\x96\x81", 3);
                k = 3;
            }
            for (size_t j = 0; j < l; j++) {
                if (p[j] == ' ') {
                    memcpy(e + k, "\xe2\x96\x81", 3);
                    k += 3;
                } else {
                    e[k++] = p[j];
                }
            }
            rc = w.spm ? spm_fragment(v, &w, e, k, &o) : bpe_fragment(v, &w, e, k, &o);
        } else {
            rc = bpe_fragment(v, &w, p, l, &o);
        }
    }
    if (rc == MQ_OK && eos && v->eos >= 0)
        ids_push(&o, v->eos);
    if (rc == MQ_OK)
        rc = o.err;
done:
    free(f);
    free(w.sym);
    free(w.heap);
    free(w.buf);
    free(w.esc);
    free(w.enc);
    free(w.cps);
    free(w.flags);
    mq_split_release(&w.split);
    if (rc < 0) {
        free(o.p);
        return rc;
    }
    if (!o.p && !(o.p = malloc(sizeof(*o.p)))) /* an empty result is still an array to free */
        return mq_error(MQ_ENOMEM, "cannot allocate token ids");
    *out = o.p;
    *n_out = o.n;
    return MQ_OK;
}

int mq_vocab_tokenize(const struct mq_vocab *v, const char *text, size_t len, bool add_bos,
                      int32_t **out, size_t *n_out)
{
    return tokenize(v, text, len, add_bos, false, out, n_out);
}

int mq_vocab_tokenize_special(const struct mq_vocab *v, const char *text, size_t len,
                              bool add_special, int32_t **out, size_t *n_out)
{
    return tokenize(v, text, len, add_special && v->add_bos, add_special && v->add_eos, out, n_out);
}

/* ---- pieces ---- */

/* Appends to buf (capacity size) at *at, counting what does not fit. */
static void put(char *buf, size_t size, size_t *at, const char *p, size_t n)
{
    if (*at < size)
        memcpy(buf + *at, p, n < size - *at ? n : size - *at);
    *at += n;
}

int mq_vocab_token_piece(const struct mq_vocab *v, int32_t id, char *buf, size_t size, size_t *len)
{
    *len = 0;
    if (id < 0 || id >= v->n_tokens)
        return mq_error(MQ_EINVAL, "token id %d outside the vocabulary of %lld", id,
                        (long long)v->n_tokens);
    const char *t = tok_text(v, id);
    size_t n = tok_len(v, id), at = 0;
    uint16_t a = v->attr[id];
    if (a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) {
        put(buf, size, &at, t, n);
    } else if (a & ATTR_NORMAL) {
        bool spaces = v->kind == KIND_SPM || (v->pre_flags & PRE_ESCAPE_WS);
        for (size_t i = 0; i < n;) {
            if (spaces) { /* U+2581 -> ' ' */
                if (n - i >= 3 && !memcmp(t + i, "\xe2\x96\x81", 3)) {
                    put(buf, size, &at, " ", 1);
                    i += 3;
                } else {
                    put(buf, size, &at, t + i, 1);
                    i++;
                }
                continue;
            }
            /* GPT-2 bytes; llama.cpp writes "[UNK_BYTE_0x<utf8 hex><token text>]" for others */
            size_t adv;
            uint32_t cp = mq_utf8_decode(t + i, n - i, &adv);
            int b = mq_unicode_cp_to_byte(cp);
            if (b >= 0) {
                char c = (char)b;
                put(buf, size, &at, &c, 1);
            } else {
                char enc[4], hex[16];
                size_t k = mq_utf8_encode(cp, enc);
                put(buf, size, &at, "[UNK_BYTE_0x", 12);
                for (size_t e = 0; e < k; e++) {
                    snprintf(hex, sizeof(hex), "%02x", (unsigned char)enc[e]);
                    put(buf, size, &at, hex, 2);
                }
                put(buf, size, &at, t, n);
                put(buf, size, &at, "]", 1);
            }
            i += adv;
        }
    } else if (a & ATTR_BYTE) { /* "<0xXX>": strtol of the two characters after "<0x" */
        unsigned val = 0;
        for (size_t i = 3; i < 5 && i < n; i++) {
            char c = t[i];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                break;
            val = val * 16 + (unsigned)d;
        }
        char c = (char)val;
        put(buf, size, &at, &c, 1);
    }
    *len = at;
    return MQ_OK;
}

int mq_vocab_detokenize(const struct mq_vocab *v, const int32_t *ids, size_t n, char **out,
                        size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t cap = 64, at = 0;
    char *buf = malloc(cap);
    if (!buf)
        return mq_error(MQ_ENOMEM, "cannot allocate a text");
    for (size_t i = 0; i < n; i++) {
        size_t k;
        int rc = mq_vocab_token_piece(v, ids[i], buf + at, cap - at - 1, &k);
        if (rc < 0) {
            free(buf);
            return rc;
        }
        if (k > cap - at - 1) {
            while (k > cap - at - 1)
                cap *= 2;
            char *q = realloc(buf, cap);
            if (!q) {
                free(buf);
                return mq_error(MQ_ENOMEM, "cannot allocate a text of %zu bytes", cap);
            }
            buf = q;
            if ((rc = mq_vocab_token_piece(v, ids[i], buf + at, cap - at - 1, &k)) < 0) {
                free(buf);
                return rc;
            }
        }
        at += k;
    }
    buf[at] = '\0';
    *out = buf;
    *len = at;
    return MQ_OK;
}

int64_t mq_vocab_size(const struct mq_vocab *v)
{
    return v->n_tokens;
}
int32_t mq_vocab_bos(const struct mq_vocab *v)
{
    return v->bos;
}
int32_t mq_vocab_eos(const struct mq_vocab *v)
{
    return v->eos;
}
bool mq_vocab_add_bos(const struct mq_vocab *v)
{
    return v->add_bos;
}
bool mq_vocab_add_eos(const struct mq_vocab *v)
{
    return v->add_eos;
}
const char *mq_vocab_describe(const struct mq_vocab *v)
{
    return v->describe;
}

int mq_text_read(const char *path, const char *what, bool drop_newline, char **out, size_t *len)
{
    char *buf;
    size_t n;
    int rc = mq_file_read(path, what, SIZE_MAX, &buf, &n);
    if (rc < 0) {
        *out = NULL;
        *len = 0;
        return rc;
    }
    if (drop_newline && n > 0 && buf[n - 1] == '\n')
        n--;
    if (n == 0) {
        free(buf);
        return mq_error(MQ_EINVAL, "%s '%s' is empty", what, path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return MQ_OK;
}
