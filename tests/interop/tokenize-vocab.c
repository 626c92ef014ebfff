/* tests/interop/tokenize-vocab.c - mixq's tokenizer against llama.cpp's vocabulary tests.
 *
 *     tokenize-vocab VOCAB.gguf            compare with VOCAB.gguf.inp / VOCAB.gguf.out
 *     tokenize-vocab --ids VOCAB.gguf FILE print the ids of FILE's text, one line
 *     tokenize-vocab --ids-special VOCAB.gguf FILE  the same with add_special = true (BOS/EOS as
 *                                            the vocabulary adds them: llama-tokenize's default)
 *     tokenize-vocab --time VOCAB.gguf FILE time loading and tokenizing FILE (no assertion)
 *     tokenize-vocab --batch VOCAB.gguf FILE  FILE holds texts, each a 4-byte little-endian
 *                                            length and the bytes; prints one line of ids per
 *                                            text ("ERROR" when mixq refuses the text)
 *     tokenize-vocab --batch-special VOCAB.gguf FILE   the same with add_special = true
 *
 * The .inp/.out pairs are llama.cpp's (models/ggml-vocab-*.gguf.inp/.out): inputs are
 * separated by "\n__ggml_vocab_test__\n", each output line holds the ids of one input,
 * made by tests/test-tokenizer-0.cpp with common_tokenize(add_special = false,
 * parse_special = false), which is what this compares.
 *
 * Exit status: 0 every case passed, 1 a case failed, 2 usage or I/O error, 3 the
 * vocabulary was refused (mixq's one-line reason is on stderr). Build:
 *     cc -I. tests/interop/tokenize-vocab.c build/libmixq.a \
 *        $(cat build/link-flags)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap + 1);
    for (size_t k; p && (k = fread(p + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap) {
            char *q = realloc(p, 2 * cap + 1);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
    }
    fclose(f);
    if (p) {
        p[n] = '\0';
        *len = n;
    }
    return p;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int load(const char *path, struct mq_gguf **g, struct mq_vocab **v)
{
    if (mq_gguf_open(path, g) < 0)
        return 2;
    if (mq_vocab_load(*g, path, v) < 0) {
        printf("refused\n");
        return 3;
    }
    return 0;
}

static void print_ids(const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
}

static int compare(const char *vocab_path, struct mq_vocab *v)
{
    char inp_path[4096], out_path[4096];
    snprintf(inp_path, sizeof(inp_path), "%s.inp", vocab_path);
    snprintf(out_path, sizeof(out_path), "%s.out", vocab_path);
    size_t inp_len, out_len;
    char *inp = slurp(inp_path, &inp_len), *out = slurp(out_path, &out_len);
    if (!inp || !out) {
        fprintf(stderr, "tokenize-vocab: cannot read '%s' or '%s'\n", inp_path, out_path);
        free(inp);
        free(out);
        return 2;
    }
    printf("supported: %s\n", mq_vocab_describe(v));
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sep_len = strlen(sep), pos = 0, n_pass = 0, n_fail = 0;
    char *line = out, *out_end = out + out_len;
    while (pos < inp_len) {
        char *next = memmem(inp + pos, inp_len - pos, sep, sep_len);
        size_t len = next ? (size_t)(next - (inp + pos)) : inp_len - pos;
        if (line >= out_end) {
            fprintf(stderr, "tokenize-vocab: '%s' has fewer lines than '%s' has cases\n", out_path,
                    inp_path);
            n_fail++;
            break;
        }
        char *eol = memchr(line, '\n', (size_t)(out_end - line));
        if (!eol)
            eol = out_end;
        *eol = '\0';
        int32_t want[4096];
        size_t n_want = 0;
        for (char *p = line, *e; n_want < 4096; p = e) {
            long x = strtol(p, &e, 10);
            if (e == p)
                break;
            want[n_want++] = (int32_t)x;
        }
        int32_t *ids;
        size_t n;
        if (mq_vocab_tokenize_special(v, inp + pos, len, false, &ids, &n) < 0) {
            printf("FAIL case %zu: error\n", n_pass + n_fail);
            n_fail++;
        } else if (n != n_want || memcmp(ids, want, n * sizeof(*ids)) != 0) {
            printf("FAIL case %zu: '%.*s'\n  want ", n_pass + n_fail, (int)len, inp + pos);
            print_ids(want, n_want);
            printf("  got  ");
            print_ids(ids, n);
            n_fail++;
        } else {
            n_pass++;
        }
        free(ids);
        line = eol + 1;
        if (!next)
            break;
        pos = (size_t)(next - inp) + sep_len;
    }
    printf("cases: %zu passed, %zu failed\n", n_pass, n_fail);
    free(inp);
    free(out);
    return n_fail ? 1 : 0;
}

/* Texts in FILE as 4-byte little-endian lengths and bytes; one line of ids each. */
static int batch(struct mq_vocab *v, const char *path, bool add_special)
{
    size_t len;
    unsigned char *all = (unsigned char *)slurp(path, &len);
    if (!all) {
        fprintf(stderr, "tokenize-vocab: cannot read '%s'\n", path);
        return 2;
    }
    for (size_t at = 0; at + 4 <= len;) {
        size_t n_text = (size_t)all[at] | (size_t)all[at + 1] << 8 | (size_t)all[at + 2] << 16 |
                        (size_t)all[at + 3] << 24;
        at += 4;
        if (n_text > len - at)
            break;
        int32_t *ids;
        size_t n;
        if (mq_vocab_tokenize_special(v, (const char *)all + at, n_text, add_special, &ids, &n) <
            0) {
            printf("ERROR\n");
        } else {
            print_ids(ids, n);
            free(ids);
        }
        at += n_text;
    }
    free(all);
    return 0;
}

int main(int argc, char **argv)
{
    struct mq_gguf *g = NULL;
    struct mq_vocab *v = NULL;
    int rc;
    if (argc == 4 && (!strcmp(argv[1], "--ids") || !strcmp(argv[1], "--ids-special") ||
                      !strcmp(argv[1], "--time"))) {
        size_t len;
        char *text = slurp(argv[3], &len);
        if (!text) {
            fprintf(stderr, "tokenize-vocab: cannot read '%s'\n", argv[3]);
            return 2;
        }
        double t0 = now_s();
        if ((rc = load(argv[2], &g, &v)) != 0) {
            free(text);
            mq_gguf_close(g);
            return rc;
        }
        double t1 = now_s();
        int32_t *ids = NULL;
        size_t n = 0;
        rc = mq_vocab_tokenize_special(v, text, len, !strcmp(argv[1], "--ids-special"), &ids, &n) < 0 ? 1 : 0;
        double t2 = now_s();
        if (rc == 0 && strncmp(argv[1], "--ids", 5) == 0)
            print_ids(ids, n);
        else if (rc == 0)
            printf("%s: load %.1f ms, tokenize %zu bytes -> %zu tokens in %.1f ms\n", argv[2],
                   (t1 - t0) * 1e3, len, n, (t2 - t1) * 1e3);
        free(ids);
        free(text);
    } else if (argc == 4 && (!strcmp(argv[1], "--batch") || !strcmp(argv[1], "--batch-special"))) {
        if ((rc = load(argv[2], &g, &v)) == 0)
            rc = batch(v, argv[3], !strcmp(argv[1], "--batch-special"));
    } else if (argc == 2) {
        if ((rc = load(argv[1], &g, &v)) == 0)
            rc = compare(argv[1], v);
    } else {
        fprintf(stderr, "usage: tokenize-vocab VOCAB.gguf | --ids|--ids-special|--time|--batch|"
                        "--batch-special VOCAB.gguf FILE\n");
        return 2;
    }
    mq_vocab_free(v);
    mq_gguf_close(g);
    return rc;
}
