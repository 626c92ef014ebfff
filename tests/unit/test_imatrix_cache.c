/* tests/unit/test_imatrix_cache.c - the importance matrix `mixq tune` computes once and
 * keeps (profiler/imatrix_cache.h): what its cache key depends on and what it does not, a
 * hit, a refresh and a damaged file; the overlap check of calibration and evaluation texts;
 * and the importance matrix a front.yaml records (reports/export.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/status.h"
#include "model/imatrix.h"
#include "model/model.h"
#include "profiler/imatrix_cache.h"
#include "reports/export.h"
#include "tests/unit/test.h"

#define TINY "examples/tinyllm/tinyllm.gguf"
#define CALIB "examples/data/kjv-eval.txt"
#define EVAL "examples/data/kjv-tune.txt"

/* Reads a whole file (malloc'd into *buf, its length in *n); false on failure. */
static bool slurp(const char *path, char **buf, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)len + 1);
    bool ok = *buf && len >= 0 && fread(*buf, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    *n = ok ? (size_t)len : 0;
    return ok;
}

/* Writes n bytes of data (and, when more is not NULL, m bytes of it) to dir/name into path. */
static bool spill(const char *name, const char *data, size_t n, const char *more, size_t m, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, n, f) == n && (!more || fwrite(more, 1, m, f) == m);
    return (fclose(f) == 0) && ok;
}

static int test_key(void)
{
    struct mq_model *m = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    T_CHECK(m->hp.n_ctx_train == 256); /* so that ctx 0 resolves to 256 */
    char *text = NULL;
    size_t n = 0;
    int rc = T_PASS;
    char k0[PROF_IMATRIX_KEY_MAX], k[PROF_IMATRIX_KEY_MAX], path[4200], want[64];
    struct mq_imatrix_config cfg = {.text = CALIB};
    T_CHECK(prof_imatrix_key(m, &cfg, k0, sizeof(k0)) == MQ_OK);
    snprintf(want, sizeof(want), "model=%016llx ", (unsigned long long)m->content_hash);
    T_CHECK_MSG(strstr(k0, want) && strstr(k0, " ctx=256 ") && strstr(k0, " chunks=0 "), "key '%s'", k0);
    /* the default context spelled out: the same file */
    cfg.n_ctx = 256;
    T_CHECK(prof_imatrix_key(m, &cfg, k, sizeof(k)) == MQ_OK && !strcmp(k, k0));
    /* what the file depends on: the context, the chunks, output.weight */
    cfg.n_ctx = 64;
    T_CHECK(prof_imatrix_key(m, &cfg, k, sizeof(k)) == MQ_OK && strcmp(k, k0));
    cfg = (struct mq_imatrix_config){.text = CALIB, .max_chunks = 2};
    T_CHECK(prof_imatrix_key(m, &cfg, k, sizeof(k)) == MQ_OK && strcmp(k, k0));
    cfg = (struct mq_imatrix_config){.text = CALIB, .process_output = true};
    T_CHECK(prof_imatrix_key(m, &cfg, k, sizeof(k)) == MQ_OK && strcmp(k, k0));
    /* the text's content, not its name: a copy hits, one changed byte misses */
    T_CHECK(slurp(CALIB, &text, &n) && n > 100);
    if (!spill("calib-copy.txt", text, n, NULL, 0, path, sizeof(path))) {
        rc = T_FAIL;
        goto done;
    }
    cfg = (struct mq_imatrix_config){.text = path};
    if (prof_imatrix_key(m, &cfg, k, sizeof(k)) != MQ_OK || strcmp(k, k0)) {
        fprintf(stderr, "    a copy of the text has key '%s', the text '%s'\n", k, k0);
        rc = T_FAIL;
        goto done;
    }
    text[n / 2] ^= 1;
    if (!spill("calib-changed.txt", text, n, NULL, 0, path, sizeof(path)) ||
        prof_imatrix_key(m, &cfg, k, sizeof(k)) != MQ_OK || !strcmp(k, k0)) {
        fprintf(stderr, "    a changed text keeps the key '%s'\n", k0);
        rc = T_FAIL;
        goto done;
    }
    /* a missing text: one error line */
    cfg.text = "examples/data/no-such-text.txt";
    if (prof_imatrix_key(m, &cfg, k, sizeof(k)) != MQ_EIO)
        rc = T_FAIL;
done:
    free(text);
    mq_model_free(m);
    return rc;
}

static bool same_sums(const struct mq_imatrix *a, const struct mq_imatrix *b)
{
    if (a->n_entries != b->n_entries || a->chunk_count != b->chunk_count || a->chunk_size != b->chunk_size)
        return false;
    for (int i = 0; i < a->n_entries; i++) {
        const struct mq_imatrix_entry *x = &a->entries[i], *y = &b->entries[i];
        if (strcmp(x->name, y->name) || x->n_in != y->n_in || x->n_mat != y->n_mat ||
            memcmp(x->sums, y->sums, (size_t)(x->n_in * x->n_mat) * sizeof(float)) ||
            memcmp(x->counts, y->counts, (size_t)x->n_mat * sizeof(float)))
            return false;
    }
    return true;
}

static int test_get(void)
{
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    struct mq_imatrix *direct = NULL, *cached = NULL;
    T_CHECK(mq_model_load(TINY, &m) == MQ_OK);
    int rc = T_FAIL;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/imatrix-cache/sub", t_tmpdir()); /* created with its parent */
    struct mq_imatrix_config cfg = {.text = CALIB, .n_ctx = 32, .max_chunks = 2};
    struct prof_imatrix_file f, g;
    if (be_open("cpu", NULL, &be) < 0 || mq_imatrix_compute(m, be, &cfg, &direct) < 0)
        goto done;
    /* computed, then taken from the cache: the same file, what mq_imatrix_compute gives */
    if (prof_imatrix_get(m, be, &cfg, dir, false, &f) < 0 || f.hit || f.chunk_count != 2 || f.chunk_size != 32) {
        fprintf(stderr, "    first get: hit %d, %u chunks of %u\n", f.hit, f.chunk_count, f.chunk_size);
        goto done;
    }
    if (prof_imatrix_get(m, be, &cfg, dir, false, &g) < 0 || !g.hit || strcmp(f.path, g.path) ||
        g.chunk_count != 2 || g.chunk_size != 32) {
        fprintf(stderr, "    second get: hit %d, '%s' then '%s'\n", g.hit, f.path, g.path);
        goto done;
    }
    if (mq_imatrix_read(g.path, &cached) < 0 || !same_sums(direct, cached)) {
        fprintf(stderr, "    the cached file is not the computed importance matrix\n");
        goto done;
    }
    /* refresh: computed again; another config: another file */
    if (prof_imatrix_get(m, be, &cfg, dir, true, &g) < 0 || g.hit || strcmp(f.path, g.path))
        goto done;
    cfg.max_chunks = 3;
    if (prof_imatrix_get(m, be, &cfg, dir, false, &g) < 0 || g.hit || !strcmp(f.path, g.path) || g.chunk_count != 3)
        goto done;
    cfg.max_chunks = 2;
    /* a damaged file (truncated) is a miss, computed again, never an error */
    if (truncate(f.path, 100) != 0 || prof_imatrix_get(m, be, &cfg, dir, false, &g) < 0 || g.hit) {
        fprintf(stderr, "    a truncated cache file was taken (hit %d)\n", g.hit);
        goto done;
    }
    mq_imatrix_free(cached);
    cached = NULL;
    if (mq_imatrix_read(g.path, &cached) < 0 || !same_sums(direct, cached))
        goto done;
    rc = T_PASS;
done:
    mq_imatrix_free(direct);
    mq_imatrix_free(cached);
    be_close(be);
    mq_model_free(m);
    return rc;
}

static int test_text_overlap(void)
{
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    T_CHECK(slurp(CALIB, &a, &na) && slurp(EVAL, &b, &nb) && na > 12000 && nb > 100);
    int rc = T_FAIL;
    char p[4200], q[4200];
    bool o;
    struct {
        const char *name;
        size_t n;                 /* bytes of the calibration text, */
        const char *more;         /* then these (NULL: none) */
        size_t n_more;
        int flip;                 /* a byte of the copy changed (-1: none) */
        bool want;
    } cases[] = {
        {"copy.txt", na, NULL, 0, -1, true},              /* the same content */
        {"prefix.txt", 1000, NULL, 0, -1, true},          /* the start of it */
        {"longer.txt", na, b, nb, -1, true},              /* it, then more */
        {"changed-late.txt", na, NULL, 0, 10000, false},  /* differs past the first block read */
        {"changed-end.txt", na, NULL, 0, (int)na - 2, false},
        {"empty.txt", 0, NULL, 0, -1, false},             /* empty: overlaps nothing */
    };
    /* the bundled texts are disjoint: the default calibration and evaluation texts */
    if (prof_text_overlap(CALIB, EVAL, &o) != MQ_OK || o) {
        fprintf(stderr, "    %s and %s overlap\n", CALIB, EVAL);
        goto done;
    }
    if (prof_text_overlap(CALIB, CALIB, &o) != MQ_OK || !o)
        goto done;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *copy = malloc(na + 1);
        if (!copy)
            goto done;
        memcpy(copy, a, na);
        if (cases[i].flip >= 0)
            copy[cases[i].flip] ^= 1;
        bool ok = spill(cases[i].name, copy, cases[i].n, cases[i].more, cases[i].n_more, p, sizeof(p));
        free(copy);
        bool o1 = !cases[i].want, o2 = !cases[i].want;
        if (!ok || prof_text_overlap(CALIB, p, &o1) != MQ_OK || prof_text_overlap(p, CALIB, &o2) != MQ_OK ||
            o1 != cases[i].want || o2 != cases[i].want) {
            fprintf(stderr, "    %s: overlap %d / %d, want %d\n", cases[i].name, o1, o2, cases[i].want);
            goto done;
        }
    }
    /* a hard link of a text is the same file; a missing text is one error line */
    snprintf(q, sizeof(q), "%s/link.txt", t_tmpdir());
    snprintf(p, sizeof(p), "%s/copy.txt", t_tmpdir());
    if (link(p, q) != 0 || prof_text_overlap(p, q, &o) != MQ_OK || !o)
        goto done;
    if (prof_text_overlap(CALIB, "examples/data/no-such-text.txt", &o) != MQ_EIO)
        goto done;
    rc = T_PASS;
done:
    free(a);
    free(b);
    return rc;
}

/* front.yaml's imatrix: read back as written, null and absent are none, a malformed one is
 * one error line; a given file's reference and its check against a changed file */
static int test_front_imatrix(void)
{
    static const char *const head = "mixq_schema: front/1\nmodel:\n  path: m.gguf\n";
    static const char sha[] = "32e255e87cfea04b4898a0738c5c9bf33c74de1dadc4fd46f2d8760c4267f1ea";
    char path[4200], body[1024];
    struct rpt_imatrix_ref r;
    struct {
        const char *yaml; /* after head */
        int want_rc;
        bool want_set;
    } cases[] = {
        {"points: []\n", MQ_OK, false},
        {"imatrix: null\n", MQ_OK, false},
        {"imatrix:\n  source: computed\n  path: /c/im.gguf\n  sha256: %s\n  text: t.txt\n  chunks: 4\n  ctx: 64\n",
         MQ_OK, true},
        {"imatrix:\n  path: /c/im.gguf\n", MQ_EFORMAT, false},                  /* no sha256 */
        {"imatrix:\n  path: /c/im.gguf\n  sha256: 12ab\n", MQ_EFORMAT, false},  /* not 64 digits */
        {"imatrix:\n  sha256: %s\n", MQ_EFORMAT, false},                         /* no path */
        {"imatrix: yes\n", MQ_EFORMAT, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char y[512];
        snprintf(y, sizeof(y), cases[i].yaml, sha);
        snprintf(body, sizeof(body), "%s%s", head, y);
        T_CHECK(spill("front.yaml", body, strlen(body), NULL, 0, path, sizeof(path)));
        int got = rpt_front_imatrix_read(path, &r);
        T_CHECK_MSG(got == cases[i].want_rc && r.set == cases[i].want_set, "case %zu: rc %d, set %d", i, got, r.set);
        if (r.set)
            T_CHECK(!strcmp(r.path, "/c/im.gguf") && !strcmp(r.sha256, sha) && !strcmp(r.source, "computed") &&
                    !strcmp(r.text, "t.txt") && r.chunks == 4 && r.ctx == 64);
    }
    /* a given file: its sha256; changed afterwards, the check says so */
    T_CHECK(spill("im.bin", "abc", 3, NULL, 0, path, sizeof(path)));
    T_CHECK(rpt_imatrix_ref_given(path, &r) == MQ_OK && r.set && !strcmp(r.source, "given"));
    T_CHECK(!strcmp(r.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")); /* sha256("abc") */
    T_CHECK(rpt_imatrix_ref_check(&r, "the importance matrix") == MQ_OK);
    T_CHECK(spill("im.bin", "abd", 3, NULL, 0, path, sizeof(path)));
    T_CHECK(rpt_imatrix_ref_check(&r, "the importance matrix") == MQ_EFORMAT);
    T_CHECK(unlink(path) == 0 && rpt_imatrix_ref_check(&r, "the importance matrix") == MQ_EIO);
    return T_PASS;
}

const struct mq_test imatrix_cache_tests[] = {
    {"imatrix-cache/key", test_key},
    {"imatrix-cache/get", test_get},
    {"imatrix-cache/text-overlap", test_text_overlap},
    {"imatrix-cache/front-imatrix", test_front_imatrix},
    {NULL, NULL},
};
