/* model/tokenizer.c - byte vocabularies (gpt2 kind) with BPE merges by rank. */
#include "model/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

struct merge {
    int32_t a, b, result;
};

struct mq_vocab {
    int64_t n_tokens;
    int32_t byte_token[256];
    int32_t bos, eos;
    bool add_bos;
    int n_merges;
    struct merge *merges; /* in rank order */
    char describe[96];
};

/* GPT-2's reversible byte-to-unicode map: printable bytes map to themselves, the others
 * to U+0100 upwards in byte order. Returns the code point for byte b. */
static uint32_t gpt2_byte_codepoint(int b)
{
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable)
        return (uint32_t)b;
    int n = 0; /* index among the non-printable bytes below b */
    for (int i = 0; i < b; i++)
        if (!((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF)))
            n++;
    return 256u + (uint32_t)n;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

static bool str_eq(const struct mq_gguf_str *s, const char *p, size_t n)
{
    return s->len == n && memcmp(s->ptr, p, n) == 0;
}

/* Token id whose text is exactly (p, n), or -1. Linear: vocabularies here are small. */
static int32_t find_token(const struct mq_gguf_value *tokens, const char *p, size_t n)
{
    for (uint64_t i = 0; i < tokens->arr.n; i++)
        if (str_eq(&tokens->arr.items[i].str, p, n))
            return (int32_t)i;
    return -1;
}

/* True when the token's text spells only NUL bytes (each NUL is U+0100, "\xC4\x80"). */
static bool token_is_nul_run(const struct mq_gguf_str *s)
{
    if (s->len == 0 || s->len % 2)
        return false;
    for (uint64_t i = 0; i < s->len; i += 2)
        if ((unsigned char)s->ptr[i] != 0xC4 || (unsigned char)s->ptr[i + 1] != 0x80)
            return false;
    return true;
}

static int get_token_id(const struct mq_gguf *g, const char *name, const char *key, int64_t n_tokens,
                        int32_t *out)
{
    uint32_t v;
    int rc = mq_gguf_get_u32(g, key, &v);
    if (rc == MQ_ENOTFOUND) {
        *out = -1;
        return MQ_OK;
    }
    if (rc < 0)
        return rc;
    if ((int64_t)v >= n_tokens)
        return mq_error(MQ_EFORMAT, "'%s': %s = %u is not a token (vocabulary of %lld)", name, key, v,
                        (long long)n_tokens);
    *out = (int32_t)v;
    return MQ_OK;
}

int mq_vocab_load(const struct mq_gguf *g, const char *name, struct mq_vocab **out)
{
    *out = NULL;
    char kind[64];
    int rc = mq_gguf_get_str(g, "tokenizer.ggml.model", kind, sizeof(kind));
    if (rc == MQ_ENOTFOUND)
        return mq_error(MQ_EUNSUPPORTED, "'%s' has no tokenizer (tokenizer.ggml.model is missing)", name);
    if (rc < 0)
        return rc;
    if (strcmp(kind, "gpt2") != 0)
        return mq_error(MQ_EUNSUPPORTED,
                        "'%s': tokenizer kind '%s' is not supported yet (mixq reads byte vocabularies of kind 'gpt2')",
                        name, kind);
    const struct mq_gguf_value *tokens, *merges = NULL;
    rc = mq_gguf_get_arr(g, "tokenizer.ggml.tokens", MQ_GGUF_STRING, &tokens);
    if (rc == MQ_ENOTFOUND)
        return mq_error(MQ_EFORMAT, "'%s': tokenizer.ggml.tokens is missing", name);
    if (rc < 0)
        return rc;
    if (tokens->arr.n > INT32_MAX)
        return mq_error(MQ_EFORMAT, "'%s': %llu tokens is too many", name, (unsigned long long)tokens->arr.n);
    rc = mq_gguf_get_arr(g, "tokenizer.ggml.merges", MQ_GGUF_STRING, &merges);
    if (rc < 0 && rc != MQ_ENOTFOUND)
        return rc;

    struct mq_vocab *v = calloc(1, sizeof(*v));
    if (!v)
        return mq_error(MQ_ENOMEM, "cannot allocate a vocabulary");
    v->n_tokens = (int64_t)tokens->arr.n;
    for (int b = 0; b < 256; b++) {
        char buf[4];
        size_t n = utf8_encode(gpt2_byte_codepoint(b), buf);
        v->byte_token[b] = find_token(tokens, buf, n);
        if (v->byte_token[b] < 0) {
            rc = mq_error(MQ_EUNSUPPORTED,
                          "'%s': gpt2 vocabulary without a token for byte 0x%02x: full BPE vocabularies are not supported yet",
                          name, b);
            goto fail;
        }
    }
    uint64_t n_merges = merges ? merges->arr.n : 0;
    v->merges = calloc(n_merges + 1, sizeof(*v->merges));
    if (!v->merges) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %llu merges", (unsigned long long)n_merges);
        goto fail;
    }
    for (uint64_t i = 0; i < n_merges; i++) {
        const struct mq_gguf_str *s = &merges->arr.items[i].str;
        const char *sp = memchr(s->ptr, ' ', s->len);
        if (!sp) {
            rc = mq_error(MQ_EFORMAT, "'%s': merge %llu has no space between its two parts", name,
                          (unsigned long long)i);
            goto fail;
        }
        struct mq_gguf_str left = {(uint64_t)(sp - s->ptr), s->ptr};
        struct mq_gguf_str right = {s->len - left.len - 1, sp + 1};
        if (!token_is_nul_run(&left) || !token_is_nul_run(&right)) {
            rc = mq_error(MQ_EUNSUPPORTED,
                          "'%s': gpt2 vocabulary with %llu merges: full BPE vocabularies are not supported yet (byte vocabularies only)",
                          name, (unsigned long long)n_merges);
            goto fail;
        }
        char joined[512];
        if (left.len + right.len > sizeof(joined)) {
            rc = mq_error(MQ_EUNSUPPORTED, "'%s': merge %llu is too long", name, (unsigned long long)i);
            goto fail;
        }
        memcpy(joined, left.ptr, left.len);
        memcpy(joined + left.len, right.ptr, right.len);
        struct merge mg = {find_token(tokens, left.ptr, left.len), find_token(tokens, right.ptr, right.len),
                           find_token(tokens, joined, left.len + right.len)};
        if (mg.a < 0 || mg.b < 0 || mg.result < 0) {
            rc = mq_error(MQ_EFORMAT, "'%s': merge %llu names a token that is not in the vocabulary",
                          name, (unsigned long long)i);
            goto fail;
        }
        v->merges[v->n_merges++] = mg;
    }
    if ((rc = get_token_id(g, name, "tokenizer.ggml.bos_token_id", v->n_tokens, &v->bos)) < 0 ||
        (rc = get_token_id(g, name, "tokenizer.ggml.eos_token_id", v->n_tokens, &v->eos)) < 0)
        goto fail;
    v->add_bos = v->bos >= 0;
    bool add_bos;
    rc = mq_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos);
    if (rc == MQ_OK)
        v->add_bos = add_bos && v->bos >= 0;
    else if (rc != MQ_ENOTFOUND)
        goto fail;
    snprintf(v->describe, sizeof(v->describe), "gpt2 byte vocabulary, %lld tokens, %d merges",
             (long long)v->n_tokens, v->n_merges);
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
    free(v->merges);
    free(v);
}

int mq_vocab_tokenize(const struct mq_vocab *v, const char *text, size_t len, bool add_bos,
                      int32_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    size_t cap = len + 1;
    int32_t *ids = malloc(cap * sizeof(*ids));
    if (!ids)
        return mq_error(MQ_ENOMEM, "cannot allocate %zu token ids", cap);
    size_t n = 0;
    if (add_bos && v->bos >= 0)
        ids[n++] = v->bos;
    size_t first = n;
    for (size_t i = 0; i < len; i++)
        ids[n++] = v->byte_token[(unsigned char)text[i]];
    /* BPE: repeatedly apply the lowest-rank merge present, leftmost first. Merges only
     * join NUL runs, so this loop only runs where text has adjacent NUL bytes. */
    for (;;) {
        int best_rank = v->n_merges;
        size_t best_at = 0;
        for (size_t i = first; i + 1 < n; i++) {
            for (int r = 0; r < best_rank; r++) {
                if (v->merges[r].a == ids[i] && v->merges[r].b == ids[i + 1]) {
                    best_rank = r;
                    best_at = i;
                    break;
                }
            }
        }
        if (best_rank == v->n_merges)
            break;
        const struct merge *mg = &v->merges[best_rank];
        /* merge every non-overlapping occurrence of this pair, left to right */
        size_t w = first;
        for (size_t i = first; i < n; i++) {
            if (i >= best_at && i + 1 < n && ids[i] == mg->a && ids[i + 1] == mg->b) {
                ids[w++] = mg->result;
                i++;
            } else {
                ids[w++] = ids[i];
            }
        }
        n = w;
    }
    *out = ids;
    *n_out = n;
    return MQ_OK;
}

int64_t mq_vocab_size(const struct mq_vocab *v) { return v->n_tokens; }
int32_t mq_vocab_bos(const struct mq_vocab *v) { return v->bos; }
int32_t mq_vocab_eos(const struct mq_vocab *v) { return v->eos; }
bool mq_vocab_add_bos(const struct mq_vocab *v) { return v->add_bos; }
const char *mq_vocab_describe(const struct mq_vocab *v) { return v->describe; }
