/* tests/unit/test_tokenizer.c - the tokenizer against llama.cpp's own test cases
 * (tests/golden/vocab: GPT-2 BPE and LLaMA SentencePiece), plus UTF-8, Unicode tables,
 * pre-tokenizer splitting, user-defined tokens, pieces, and hostile vocabularies.
 * tests/interop/check-tokenizers.sh runs the same comparison on every vocabulary
 * llama.cpp ships. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "tests/unit/test.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#define GPT2 "tests/golden/vocab/ggml-vocab-gpt-2.gguf"
#define SPM "tests/golden/vocab/ggml-vocab-llama-spm.gguf"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1))) {
            if (fread(p, 1, (size_t)n, f) != (size_t)n) {
                free(p);
                p = NULL;
            } else {
                p[n] = '\0';
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return p;
}

struct vocab {
    struct mq_gguf *g;
    struct mq_vocab *v;
};

static int open_vocab(const char *path, struct vocab *x)
{
    x->g = NULL;
    x->v = NULL;
    int rc = mq_gguf_open(path, &x->g);
    if (rc == MQ_OK && (rc = mq_vocab_load(x->g, path, &x->v)) < 0) {
        mq_gguf_close(x->g);
        x->g = NULL;
    }
    return rc;
}

static void close_vocab(struct vocab *x)
{
    mq_vocab_free(x->v);
    mq_gguf_close(x->g);
}

static bool same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

/* Every case of PATH.inp against the line of PATH.out (llama.cpp's test-tokenizer-0). */
static int check_golden(const char *path, size_t want_cases)
{
    char inp_path[256], out_path[256];
    snprintf(inp_path, sizeof(inp_path), "%s.inp", path);
    snprintf(out_path, sizeof(out_path), "%s.out", path);
    struct vocab x;
    size_t inp_len = 0, out_len = 0;
    char *inp = slurp(inp_path, &inp_len), *out = slurp(out_path, &out_len);
    T_CHECK_MSG(inp && out, "cannot read '%s' / '%s'", inp_path, out_path);
    T_CHECK(open_vocab(path, &x) == MQ_OK);
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t cases = 0, pos = 0;
    char *line = out;
    int result = T_PASS;
    while (pos < inp_len && result == T_PASS) {
        char *next = memmem(inp + pos, inp_len - pos, sep, strlen(sep));
        size_t len = next ? (size_t)(next - inp) - pos : inp_len - pos;
        char *eol = strchr(line, '\n');
        if (!eol) {
            fprintf(stderr, "    %s: fewer lines than cases\n", out_path);
            result = T_FAIL;
            break;
        }
        *eol = '\0';
        int32_t want[512];
        size_t n_want = 0;
        for (char *p = line, *e; n_want < 512; p = e) {
            long id = strtol(p, &e, 10);
            if (e == p)
                break;
            want[n_want++] = (int32_t)id;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        if (mq_vocab_tokenize_special(x.v, inp + pos, len, false, &ids, &n) != MQ_OK ||
            !same_ids(ids, n, want, n_want)) {
            fprintf(stderr, "    %s: case %zu '%.*s' differs (%zu ids, want %zu)\n", path, cases,
                    (int)len, inp + pos, n, n_want);
            result = T_FAIL;
        }
        free(ids);
        cases++;
        line = eol + 1;
        if (!next)
            break;
        pos = (size_t)(next - inp) + strlen(sep);
    }
    close_vocab(&x);
    free(inp);
    free(out);
    if (result != T_PASS)
        return result;
    T_CHECK_MSG(cases == want_cases, "%zu cases, want %zu", cases, want_cases);
    return T_PASS;
}

static int test_golden_gpt2(void)
{
    return check_golden(GPT2, 46);
}
static int test_golden_spm(void)
{
    return check_golden(SPM, 46);
}

static int test_special_ids(void)
{
    struct vocab g, s;
    T_CHECK(open_vocab(GPT2, &g) == MQ_OK);
    T_CHECK(open_vocab(SPM, &s) == MQ_OK);
    /* gpt-2: bos = eos = <|endoftext|>, no BOS added; SentencePiece: <s> added */
    T_CHECK(mq_vocab_size(g.v) == 50257 && mq_vocab_bos(g.v) == 50256 &&
            mq_vocab_eos(g.v) == 50256);
    T_CHECK(!mq_vocab_add_bos(g.v) && !mq_vocab_add_eos(g.v));
    T_CHECK(mq_vocab_size(s.v) == 32000 && mq_vocab_bos(s.v) == 1 && mq_vocab_eos(s.v) == 2);
    T_CHECK(mq_vocab_add_bos(s.v) && !mq_vocab_add_eos(s.v));
    T_CHECK(strstr(mq_vocab_describe(g.v), "gpt-2") &&
            strstr(mq_vocab_describe(s.v), "SentencePiece"));
    int32_t *ids;
    size_t n;
    /* add_special: "Hello" -> <s> ▁Hello (15043) */
    T_CHECK(mq_vocab_tokenize_special(s.v, "Hello", 5, true, &ids, &n) == MQ_OK);
    T_CHECK(n == 2 && ids[0] == 1 && ids[1] == 15043);
    free(ids);
    T_CHECK(mq_vocab_tokenize(g.v, "Hello", 5, true, &ids, &n) == MQ_OK);
    T_CHECK(n == 2 && ids[0] == 50256 && ids[1] == 15496);
    free(ids);
    /* control tokens in the text are text: <|endoftext|> is not 50256 */
    T_CHECK(mq_vocab_tokenize(g.v, "<|endoftext|>", 13, false, &ids, &n) == MQ_OK);
    T_CHECK(n > 1);
    for (size_t i = 0; i < n; i++)
        T_CHECK(ids[i] != 50256);
    free(ids);
    T_CHECK(mq_vocab_tokenize(s.v, "<s>", 3, false, &ids, &n) == MQ_OK);
    T_CHECK(n > 1 && ids[0] != 1);
    free(ids);
    close_vocab(&g);
    close_vocab(&s);
    return T_PASS;
}

static int test_empty_text(void)
{
    struct vocab g, s;
    T_CHECK(open_vocab(GPT2, &g) == MQ_OK);
    T_CHECK(open_vocab(SPM, &s) == MQ_OK);
    int32_t *ids = NULL;
    size_t n = 99;
    T_CHECK(mq_vocab_tokenize(g.v, "", 0, false, &ids, &n) == MQ_OK);
    T_CHECK(ids && n == 0); /* an array to free even when empty */
    free(ids);
    /* SentencePiece adds no space prefix to empty text: just BOS */
    T_CHECK(mq_vocab_tokenize_special(s.v, "", 0, true, &ids, &n) == MQ_OK);
    T_CHECK(n == 1 && ids[0] == 1);
    free(ids);
    T_CHECK(mq_vocab_tokenize(s.v, NULL, 0, false, &ids, &n) == MQ_OK && n == 0);
    free(ids);
    close_vocab(&g);
    close_vocab(&s);
    return T_PASS;
}

/* The text `ids` stand for. */
static char *detok(const struct mq_vocab *v, const int32_t *ids, size_t n, size_t *len)
{
    char *s = NULL;
    return mq_vocab_detokenize(v, ids, n, &s, len) == MQ_OK ? s : NULL;
}

static int test_invalid_utf8(void)
{
    struct vocab g, s;
    T_CHECK(open_vocab(GPT2, &g) == MQ_OK);
    T_CHECK(open_vocab(SPM, &s) == MQ_OK);
    /* BPE: each byte that does not start a complete sequence reads as U+FFFD, as in
     * llama.cpp's unicode_cpts_from_utf8; overlong forms decode (C0 80 is NUL) */
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"a\xff"
         "b",
         3,
         "a\xef\xbf\xbd"
         "b"},
        {"\x80\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xc3", 1, "\xef\xbf\xbd"},
        {"\xe2\x82x", 3, "\xef\xbf\xbd\xef\xbf\xbdx"},
        {"\xc0\x80", 2, "\0"},
        {"\xed\xa0\x80", 3, "\xed\xa0\x80"},
        {"\xf8\x88\x80\x80\x80", 5, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int32_t *ids;
        size_t n, len;
        T_CHECK(mq_vocab_tokenize(g.v, cases[c].in, cases[c].len, false, &ids, &n) == MQ_OK);
        char *back = detok(g.v, ids, n, &len);
        size_t want_len = cases[c].want[0] ? strlen(cases[c].want) : 1;
        T_CHECK_MSG(back && len == want_len && memcmp(back, cases[c].want, len) == 0, "case %zu",
                    c);
        free(back);
        free(ids);
    }
    /* above U+10FFFF: llama.cpp throws; mixq refuses the text */
    int32_t *ids = NULL;
    size_t n;
    T_CHECK(mq_vocab_tokenize(g.v, "ok \xf4\x90\x80\x80", 7, false, &ids, &n) == MQ_EINVAL && !ids);
    /* SentencePiece keeps the raw bytes (byte fallback), after the space prefix */
    T_CHECK(mq_vocab_tokenize(s.v, "\xff\xc3", 2, false, &ids, &n) == MQ_OK);
    size_t len;
    char *back = detok(s.v, ids, n, &len);
    T_CHECK(back && len == 3 && memcmp(back, " \xff\xc3", 3) == 0);
    free(back);
    free(ids);
    /* random bytes: a result or MQ_EINVAL, never a crash; SentencePiece gives the bytes back */
    struct t_rng r = {0x1234567};
    char text[64];
    for (int i = 0; i < 2000; i++) {
        size_t tl = (size_t)(t_rng_next(&r) % sizeof(text));
        for (size_t k = 0; k < tl; k++)
            text[k] = (char)(t_rng_next(&r) >> 56);
        int rc = mq_vocab_tokenize(g.v, text, tl, false, &ids, &n);
        T_CHECK(rc == MQ_OK || rc == MQ_EINVAL);
        if (rc == MQ_OK)
            free(ids);
        T_CHECK(mq_vocab_tokenize(s.v, text, tl, false, &ids, &n) == MQ_OK);
        back = detok(s.v, ids, n, &len);
        T_CHECK(back);
        /* a literal U+2581 reads back as a space, and a space that falls inside a broken
         * sequence comes back as U+2581's bytes (byte fallback after escaping) */
        if (!memchr(text, ' ', tl) && !memmem(text, tl, "\xe2\x96\x81", 3))
            T_CHECK_MSG(tl == 0 ? len == 0
                                : (len == tl + 1 && back[0] == ' ' && !memcmp(back + 1, text, tl)),
                        "random text %d", i);
        free(back);
        free(ids);
    }
    close_vocab(&g);
    close_vocab(&s);
    return T_PASS;
}

static int test_roundtrip(void)
{
    struct vocab g;
    T_CHECK(open_vocab(GPT2, &g) == MQ_OK);
    static const char text[] =
        "Hello, y'all! How are you \xf0\x9f\x98\x81 ?\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8"
        "apple\t\t\n\n  \xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe 1314151 \x01\x7f\r\n";
    int32_t *ids;
    size_t n, len;
    T_CHECK(mq_vocab_tokenize(g.v, text, sizeof(text) - 1, false, &ids, &n) == MQ_OK);
    char *back = detok(g.v, ids, n, &len);
    T_CHECK(back && len == sizeof(text) - 1 && memcmp(back, text, len) == 0);
    free(back);
    free(ids);
    /* pieces: snprintf-like lengths, no NUL written */
    char buf[8];
    T_CHECK(mq_vocab_token_piece(g.v, 15496, buf, sizeof(buf), &len) == MQ_OK && len == 5 &&
            !memcmp(buf, "Hello", 5));
    T_CHECK(mq_vocab_token_piece(g.v, 15496, buf, 2, &len) == MQ_OK && len == 5 &&
            !memcmp(buf, "He", 2));
    T_CHECK(mq_vocab_token_piece(g.v, 50256, buf, sizeof(buf), &len) == MQ_OK && len == 13);
    T_CHECK(mq_vocab_token_piece(g.v, 50257, buf, sizeof(buf), &len) == MQ_EINVAL);
    T_CHECK(mq_vocab_token_piece(g.v, -1, buf, sizeof(buf), &len) == MQ_EINVAL);
    close_vocab(&g);
    struct vocab s;
    T_CHECK(open_vocab(SPM, &s) == MQ_OK);
    T_CHECK(mq_vocab_token_piece(s.v, 15043, buf, sizeof(buf), &len) == MQ_OK && len == 6 &&
            !memcmp(buf, " Hello", 6)); /* ▁Hello */
    T_CHECK(mq_vocab_token_piece(s.v, 13, buf, sizeof(buf), &len) == MQ_OK && len == 1 &&
            buf[0] == '\n');
    T_CHECK(mq_vocab_token_piece(s.v, 1, buf, sizeof(buf), &len) == MQ_OK && len == 3 &&
            !memcmp(buf, "<s>", 3));
    close_vocab(&s);
    return T_PASS;
}

static int test_unicode(void)
{
    size_t adv;
    T_CHECK(mq_utf8_decode("A", 1, &adv) == 'A' && adv == 1);
    T_CHECK(mq_utf8_decode("\xc3\xa9", 2, &adv) == 0xE9 && adv == 2);
    T_CHECK(mq_utf8_decode("\xe2\x82\xac", 3, &adv) == 0x20AC && adv == 3);
    T_CHECK(mq_utf8_decode("\xf0\x9f\xa6\x99", 4, &adv) == 0x1F999 && adv == 4);
    T_CHECK(mq_utf8_decode("\xf0\x9f\xa6", 3, &adv) == 0xFFFD && adv == 1);
    T_CHECK(mq_utf8_decode("\xf7\xbf\xbf\xbf", 4, &adv) == 0x1FFFFF && adv == 4);
    char enc[4];
    T_CHECK(mq_utf8_encode(0x1FFFFF, enc) == 0 && mq_utf8_encode(0x10FFFF, enc) == 4);
    T_CHECK(mq_utf8_len(0x41) == 1 && mq_utf8_len(0x80) == 1 && mq_utf8_len(0xC3) == 2 &&
            mq_utf8_len(0xE2) == 3 && mq_utf8_len(0xF0) == 4 && mq_utf8_len(0xFF) == 4);
    T_CHECK(mq_unicode_flags('A') == MQ_UNICODE_LETTER &&
            mq_unicode_flags('7') == MQ_UNICODE_NUMBER);
    T_CHECK(mq_unicode_flags(' ') == (MQ_UNICODE_SEPARATOR | MQ_UNICODE_WHITESPACE));
    T_CHECK(mq_unicode_flags('\n') == (MQ_UNICODE_CONTROL | MQ_UNICODE_WHITESPACE));
    T_CHECK(mq_unicode_flags(0x1C) == MQ_UNICODE_CONTROL); /* not White_Space */
    T_CHECK(mq_unicode_flags(0x3000) == (MQ_UNICODE_SEPARATOR | MQ_UNICODE_WHITESPACE));
    T_CHECK(mq_unicode_flags(0x0301) == MQ_UNICODE_MARK &&
            mq_unicode_flags(0x4E00) == MQ_UNICODE_LETTER);
    T_CHECK(mq_unicode_flags('!') == MQ_UNICODE_PUNCTUATION &&
            mq_unicode_flags('$') == MQ_UNICODE_SYMBOL);
    T_CHECK(mq_unicode_flags(0x10FFFF) == MQ_UNICODE_UNDEFINED &&
            mq_unicode_flags(0x110000) == MQ_UNICODE_UNDEFINED);
    T_CHECK(mq_unicode_flags(0xE000) == MQ_UNICODE_CONTROL &&
            mq_unicode_flags(0xD800) == MQ_UNICODE_CONTROL);
    T_CHECK(mq_unicode_tolower('S') == 's' && mq_unicode_tolower('s') == 's' &&
            mq_unicode_tolower(0x130) == 'i');
    T_CHECK(mq_unicode_tolower(0x212A) == 'k' && mq_unicode_tolower(0x410) == 0x430);
    /* every range table entry is in order and the flags have one category */
    for (unsigned i = 0; i < mq_unicode_n_ranges; i++) {
        uint16_t c = mq_unicode_ranges[i].flags & MQ_UNICODE_CATEGORY_MASK;
        T_CHECK(c && !(c & (c - 1)));
        T_CHECK(i == 0 ? mq_unicode_ranges[i].first == 0
                       : mq_unicode_ranges[i].first > mq_unicode_ranges[i - 1].first);
    }
    /* GPT-2's byte map is a bijection onto its 256 code points */
    int seen[0x144] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t cp = mq_unicode_byte_to_cp((uint8_t)b);
        T_CHECK(cp < 0x144 && !seen[cp]++ && mq_unicode_cp_to_byte(cp) == b);
    }
    T_CHECK(mq_unicode_byte_to_cp(' ') == 0x120 && mq_unicode_byte_to_cp('\n') == 0x10A);
    T_CHECK(mq_unicode_cp_to_byte(0x144) == -1 && mq_unicode_cp_to_byte(0x20) == -1);
    return T_PASS;
}

/* Words of every family cover the text exactly, on random code points. */
static int test_split_cover(void)
{
    static const uint32_t pool[] = {'a',   'Z',    '0',    '9',    ' ',    ' ',    '\n',   '\r',
                                    '\t',  '\'',   's',    'L',    '.',    '!',    '$',    '`',
                                    0xA0,  0x3000, 0x85,   0xE9,   0x301,  0x4E00, 0xAC00, 0x1F600,
                                    0x663, 0xFF01, 0x2026, 0x3002, 0x0964, 0xFFFD, 0};
    struct t_rng r = {42};
    uint32_t cps[300];
    uint16_t fl[300];
    struct mq_split sp = {0};
    for (int it = 0; it < 300; it++) {
        size_t n = (size_t)(t_rng_next(&r) % 300);
        for (size_t i = 0; i < n; i++) {
            cps[i] = pool[t_rng_next(&r) % (sizeof(pool) / sizeof(pool[0]))];
            fl[i] = mq_unicode_flags(cps[i]);
        }
        for (int f = 0; f < MQ_SPLIT_COUNT; f++) {
            T_CHECK(mq_split_run(&sp, (enum mq_split_family)f, cps, fl, n) == MQ_OK);
            size_t sum = 0;
            for (size_t w = 0; w < sp.n; w++) {
                T_CHECK(sp.len[w] > 0);
                sum += sp.len[w];
            }
            T_CHECK_MSG(sum == n, "family %d: words cover %zu of %zu", f, sum, n);
        }
    }
    /* a few splits spelled out: gpt2 keeps a space with the word after it and leaves
     * the last of a run of spaces to the next word; llama3 groups digits by three */
    static const uint32_t t1[] = {'H', 'i',  ' ', ' ', ' ', 'y', 'o',
                                  'u', '\'', 's', '1', '2', '3', '4'};
    uint16_t f1[14];
    for (int i = 0; i < 14; i++)
        f1[i] = mq_unicode_flags(t1[i]);
    T_CHECK(mq_split_run(&sp, MQ_SPLIT_GPT2, t1, f1, 14) == MQ_OK);
    T_CHECK(sp.n == 5 && sp.len[0] == 2 && sp.len[1] == 2 && sp.len[2] == 4 && sp.len[3] == 2 &&
            sp.len[4] == 4);
    T_CHECK(mq_split_run(&sp, MQ_SPLIT_LLAMA3, t1, f1, 14) == MQ_OK);
    T_CHECK(sp.n == 6 && sp.len[4] == 3 && sp.len[5] == 1);
    mq_split_release(&sp);
    return T_PASS;
}

/* ---- synthetic vocabularies ---- */

struct spec {
    const char *model, *pre;
    int n_tokens;         /* 256 GPT-2 byte tokens, then `extra` */
    const char *extra[4]; /* more tokens after the bytes */
    int32_t extra_type[4];
    const char *merges[4];
    int n_merges;
    int64_t bos;             /* -1: no key */
    bool types;              /* write token types */
    int n_types;             /* entries written (when types) */
    const char *scores_type; /* "f32", "str" or NULL */
};

static int write_vocab(const struct spec *sp, const char *path)
{
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    if (!w)
        return MQ_ENOMEM;
    int n = sp->n_tokens;
    char(*text)[8] = calloc(256, sizeof(*text));
    const char **tok = calloc((size_t)n + 1, sizeof(*tok));
    int32_t *types = calloc((size_t)n + 1, sizeof(*types));
    float *scores = calloc((size_t)n + 1, sizeof(*scores));
    int rc = MQ_ENOMEM;
    if (!text || !tok || !types || !scores)
        goto done;
    for (int i = 0; i < n; i++) {
        if (i < 256) {
            text[i][mq_utf8_encode(mq_unicode_byte_to_cp((uint8_t)i), text[i])] = '\0';
            tok[i] = text[i];
            types[i] = 1;
        } else {
            tok[i] = sp->extra[i - 256];
            types[i] = sp->extra_type[i - 256] ? sp->extra_type[i - 256] : 1;
        }
    }
    if ((rc = mq_gguf_writer_set_str(w, "general.architecture", "llama")) < 0 ||
        (rc = mq_gguf_writer_set_str(w, "tokenizer.ggml.model", sp->model)) < 0 ||
        (sp->pre && (rc = mq_gguf_writer_set_str(w, "tokenizer.ggml.pre", sp->pre)) < 0) ||
        (rc = mq_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", tok, (uint64_t)n)) < 0 ||
        (sp->n_merges && (rc = mq_gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", sp->merges,
                                                          (uint64_t)sp->n_merges)) < 0) ||
        (sp->bos >= 0 &&
         (rc = mq_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)sp->bos)) < 0) ||
        (sp->types && (rc = mq_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MQ_GGUF_INT32,
                                                   types, (uint64_t)sp->n_types)) < 0))
        goto done;
    if (sp->scores_type && !strcmp(sp->scores_type, "f32"))
        rc = mq_gguf_writer_set_arr(w, "tokenizer.ggml.scores", MQ_GGUF_FLOAT32, scores,
                                    (uint64_t)n);
    else if (sp->scores_type)
        rc = mq_gguf_writer_set_str_arr(w, "tokenizer.ggml.scores", tok, (uint64_t)n);
    if (rc >= 0)
        rc = mq_gguf_writer_write(w, path);
done:
    mq_gguf_writer_free(w);
    free(text);
    free(tok);
    free(types);
    free(scores);
    return rc;
}

/* Loads a synthetic vocabulary; returns mq_vocab_load's status (x->v set on success). */
static int load_spec(const struct spec *sp, struct vocab *x)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/vocab.gguf", t_tmpdir());
    x->g = NULL;
    x->v = NULL;
    int rc = write_vocab(sp, path);
    if (rc < 0)
        return 1000 + rc; /* not a status load could give */
    return open_vocab(path, x);
}

/* the bundled model's kind of vocabulary: 256 byte tokens, a user-defined token, and
 * NUL NUL with its merge */
static const struct spec byte_vocab = {.model = "gpt2",
                                       .pre = "default",
                                       .n_tokens = 258,
                                       .extra = {"<|x|>", "\xc4\x80\xc4\x80"},
                                       .extra_type = {4, 1},
                                       .merges = {"\xc4\x80 \xc4\x80"},
                                       .n_merges = 1,
                                       .bos = -1,
                                       .types = true,
                                       .n_types = 258};

static int test_user_defined(void)
{
    struct spec sp = byte_vocab;
    struct vocab x;
    T_CHECK(load_spec(&sp, &x) == MQ_OK);
    int32_t *ids;
    size_t n;
    /* the user-defined token is cut out; NUL pairs merge; default BOS id (11) is not added */
    T_CHECK(mq_vocab_tokenize(x.v, "a<|x|>b\0\0", 9, false, &ids, &n) == MQ_OK);
    int32_t want[] = {'a', 256, 'b', 257};
    T_CHECK(same_ids(ids, n, want, 4));
    free(ids);
    T_CHECK(mq_vocab_bos(x.v) == 11 && !mq_vocab_add_bos(x.v));
    close_vocab(&x);
    /* a control token in the text stays text */
    sp.extra_type[0] = 3;
    T_CHECK(load_spec(&sp, &x) == MQ_OK);
    T_CHECK(mq_vocab_tokenize(x.v, "a<|x|>", 6, false, &ids, &n) == MQ_OK);
    T_CHECK(n == 6 && ids[1] == '<');
    free(ids);
    close_vocab(&x);
    return T_PASS;
}

static int test_hostile(void)
{
    struct vocab x;
    struct spec sp = byte_vocab;
    T_CHECK(load_spec(&sp, &x) == MQ_OK);
    close_vocab(&x);
    /* merges naming strings that are not tokens (left, right, result), or no space */
    const char *bad_merges[] = {"zz \xc4\x80", "\xc4\x80 zz", "a b", "ab", " ", "\xc4\x80"};
    for (size_t i = 0; i < sizeof(bad_merges) / sizeof(bad_merges[0]); i++) {
        sp = byte_vocab;
        sp.merges[0] = bad_merges[i];
        T_CHECK_MSG(load_spec(&sp, &x) == MQ_EFORMAT, "merge '%s'", bad_merges[i]);
    }
    sp = byte_vocab;
    sp.n_merges = 0; /* gpt2 without merges */
    T_CHECK(load_spec(&sp, &x) == MQ_EFORMAT);
    sp = byte_vocab;
    sp.n_tokens = 0; /* empty vocabulary */
    sp.types = false;
    sp.n_merges = 0;
    T_CHECK(load_spec(&sp, &x) == MQ_EFORMAT);
    /* a token of 70000 bytes */
    char *huge = malloc(70001);
    T_CHECK(huge);
    memset(huge, 'a', 70000);
    huge[70000] = '\0';
    sp = byte_vocab;
    sp.extra[1] = huge;
    T_CHECK(load_spec(&sp, &x) == MQ_EFORMAT);
    free(huge);
    sp = byte_vocab;
    sp.extra[1] = "A"; /* duplicates byte token 'A' */
    T_CHECK(load_spec(&sp, &x) == MQ_EFORMAT);
    sp = byte_vocab;
    sp.bos = 258; /* out of range */
    T_CHECK(load_spec(&sp, &x) == MQ_EFORMAT);
    sp.bos = 257;
    T_CHECK(load_spec(&sp, &x) == MQ_OK && mq_vocab_bos(x.v) == 257);
    close_vocab(&x);
    sp = byte_vocab;
    sp.n_types = 100; /* fewer types than tokens */
    T_CHECK(load_spec(&sp, &x) == MQ_EFORMAT);
    sp = byte_vocab;
    sp.scores_type = "str";
    T_CHECK(load_spec(&sp, &x) == MQ_EFORMAT);
    sp.scores_type = "f32";
    T_CHECK(load_spec(&sp, &x) == MQ_OK);
    close_vocab(&x);
    /* kinds and pre-tokenizers mixq does not implement */
    sp = byte_vocab;
    sp.model = "bert";
    T_CHECK(load_spec(&sp, &x) == MQ_EUNSUPPORTED);
    sp.model = "no-such-kind";
    T_CHECK(load_spec(&sp, &x) == MQ_EUNSUPPORTED);
    sp = byte_vocab;
    sp.pre = "tekken";
    T_CHECK(load_spec(&sp, &x) == MQ_EUNSUPPORTED);
    sp.pre = "no-such-pre";
    T_CHECK(load_spec(&sp, &x) == MQ_EUNSUPPORTED);
    /* SentencePiece without byte tokens: text it cannot spell is refused, not dropped */
    sp = byte_vocab;
    sp.model = "llama";
    sp.pre = NULL;
    sp.n_merges = 0;
    T_CHECK(load_spec(&sp, &x) == MQ_OK);
    int32_t *ids = NULL;
    size_t n;
    T_CHECK(mq_vocab_tokenize(x.v, "\x01", 1, false, &ids, &n) == MQ_EUNSUPPORTED && !ids);
    close_vocab(&x);
    return T_PASS;
}

const struct mq_test tokenizer_tests[] = {
    {"tokenizer/golden_gpt2", test_golden_gpt2},
    {"tokenizer/golden_spm", test_golden_spm},
    {"tokenizer/special_ids", test_special_ids},
    {"tokenizer/empty_text", test_empty_text},
    {"tokenizer/invalid_utf8", test_invalid_utf8},
    {"tokenizer/roundtrip", test_roundtrip},
    {"tokenizer/unicode", test_unicode},
    {"tokenizer/split_cover", test_split_cover},
    {"tokenizer/user_defined", test_user_defined},
    {"tokenizer/hostile", test_hostile},
    {NULL, NULL},
};
