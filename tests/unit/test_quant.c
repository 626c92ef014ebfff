/* tests/unit/test_quant.c - every quantizer byte-identical with ggml's, with and without
 * importance weights; the IQ4_NL, IQ4_XS and Q8_K dequantizers bit-exact with ggml's;
 * round trips within a per-type error bound; non-finite input handled without a crash.
 *
 * The oracle is tests/golden/quant-ref.gguf (see tests/golden/README.md), written by
 * tests/interop/quant-ggml.c with llama.cpp's own ggml: for each input set S, the rows
 * S.input, the importance vectors S.imp and S.imp0 (with zeros), and ggml's bytes S.TYPE
 * (quant_weights NULL), S.TYPE.imp and S.TYPE.imp0; and pseudo-random blocks with ggml's
 * floats (TYPE.deq). compare_file() checks any file of that layout: the committed fixture
 * here, and in quant/ggml-live the much larger one tests/interop/check-quant.sh makes
 * from whole models with a live llama.cpp build (MIXQ_QUANT_REF=FILE).
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/fp16.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "tests/unit/test.h"

#define FIXTURE "tests/golden/quant-ref.gguf"
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* every type mixq quantizes to blocks, with ggml's type numbers */
static const struct {
    enum mq_dtype type;
    uint32_t ggml_type;
    bool uses_imp; /* false: ggml ignores quant_weights (q8_0), or has none (q8_K) */
} qtypes[] = {
    {MQ_DTYPE_Q8_0, 8, false},  {MQ_DTYPE_Q4_0, 2, true},    {MQ_DTYPE_Q4_1, 3, true},
    {MQ_DTYPE_Q5_0, 6, true},   {MQ_DTYPE_Q5_1, 7, true},    {MQ_DTYPE_Q2_K, 10, true},
    {MQ_DTYPE_Q3_K, 11, true},  {MQ_DTYPE_Q4_K, 12, true},   {MQ_DTYPE_Q5_K, 13, true},
    {MQ_DTYPE_Q6_K, 14, true},  {MQ_DTYPE_IQ4_NL, 20, true}, {MQ_DTYPE_IQ4_XS, 23, true},
    {MQ_DTYPE_Q8_K, 15, false},
};

enum { V_PLAIN, V_IMP, V_IMP0, V_COUNT }; /* weights: none, S.imp, S.imp0 */
static const char *const variant_suffix[V_COUNT] = {"", ".imp", ".imp0"};

struct quant_stats {
    int64_t rows[MQ_DTYPE_COUNT][V_COUNT];  /* rows compared */
    int64_t equal[MQ_DTYPE_COUNT][V_COUNT]; /* of them byte-identical */
    int64_t deq_elems[MQ_DTYPE_COUNT];      /* dequantized elements compared */
    int64_t deq_equal[MQ_DTYPE_COUNT];
    int64_t sets;
    int mismatches_shown;
};

static bool same_float(float a, float b)
{
    if (isnan(a) || isnan(b)) /* NaN payloads depend on the CPU's operand order */
        return isnan(a) && isnan(b);
    return mq_f32_bits(a) == mq_f32_bits(b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* An f32 tensor of `ne0` values per row, or NULL (printed) when it is something else. */
static const float *f32_of(const struct mq_gguf *g, const char *name, int64_t ne0, int64_t rows)
{
    const struct mq_gguf_tensor *t = mq_gguf_find_tensor(g, name);
    if (!t || t->type != MQ_DTYPE_F32 || t->ne[0] != ne0 || t->n_elems != ne0 * rows) {
        fprintf(stderr, "    '%s': missing, not f32 or not %lld x %lld\n", name, (long long)ne0,
                (long long)rows);
        return NULL;
    }
    return t->data;
}

/* Rows equal but for the sign of NaN fp16 fields. The fixture's adversarial rows (inf,
 * NaN) give NaN scales, and a NaN that arithmetic creates takes the CPU's default sign:
 * negative on x86 (where ggml wrote the fixture), positive on Arm (qemu-aarch64 in make
 * check). Every fp16 field of every block starts at an even offset of its row. */
static bool equal_but_nan_sign(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (a[k] == b[k])
            continue;
        if (k % 2 == 0 || (a[k] ^ b[k]) != 0x80 || a[k - 1] != b[k - 1])
            return false;
        unsigned h = (unsigned)a[k - 1] | (unsigned)a[k] << 8;
        if ((h & 0x7c00) != 0x7c00 || (h & 0x03ff) == 0) /* not a NaN */
            return false;
    }
    return true;
}

/* mixq's bytes of x[rows][ne0] in `type` with weights imp (or NULL) against tensor `want`
 * (ggml's), row by row. Returns false on a layout problem (printed). */
static bool compare_quant(const char *want_name, const struct mq_gguf_tensor *want,
                          enum mq_dtype type, const float *x, int64_t ne0, int64_t rows,
                          const float *imp, struct quant_stats *st, int variant)
{
    const struct mq_dtype_traits *tr = mq_dtype_get(type);
    size_t row_bytes;
    if (want->type != type || want->ne[0] != ne0 || want->n_elems != ne0 * rows ||
        mq_dtype_row_bytes(type, ne0, &row_bytes) < 0 || want->nbytes != row_bytes * (size_t)rows) {
        fprintf(stderr, "    '%s' is not %lld rows of %lld %s\n", want_name, (long long)rows,
                (long long)ne0, tr->name);
        return false;
    }
    uint8_t *mine = malloc(row_bytes * (size_t)rows);
    if (!mine)
        return false;
    tr->quantize(x, mine, rows, ne0, imp);
    const uint8_t *ref = want->data;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *a = mine + (size_t)r * row_bytes, *b = ref + (size_t)r * row_bytes;
        st->rows[type][variant]++;
        if (memcmp(a, b, row_bytes) == 0 || equal_but_nan_sign(a, b, row_bytes)) {
            st->equal[type][variant]++;
            continue;
        }
        if (st->mismatches_shown++ < 5) {
            size_t k = 0;
            while (a[k] == b[k])
                k++;
            fprintf(stderr,
                    "    %s (mixq %s) row %lld: byte %zu (block %zu, byte %zu of %zu) mixq 0x%02x, "
                    "ggml 0x%02x\n",
                    want_name, variant == V_PLAIN ? "without weights" : variant_suffix[variant] + 1,
                    (long long)r, k, k / tr->block_bytes, k % tr->block_bytes, tr->block_bytes,
                    a[k], b[k]);
        }
    }
    free(mine);
    return true;
}

/* mixq's to_f32 of `blocks` against ggml's floats in `deq`. */
static bool compare_dequant(const struct mq_gguf_tensor *blocks, const struct mq_gguf_tensor *deq,
                            struct quant_stats *st)
{
    if (deq->type != MQ_DTYPE_F32 || deq->n_elems != blocks->n_elems) {
        fprintf(stderr, "    '%s' is not %lld floats\n", deq->name, (long long)blocks->n_elems);
        return false;
    }
    float *mine = malloc((size_t)blocks->n_elems * sizeof(float));
    if (!mine)
        return false;
    mq_dtype_get(blocks->type)->to_f32(blocks->data, mine, blocks->n_elems);
    const float *want = deq->data;
    for (int64_t i = 0; i < blocks->n_elems; i++) {
        st->deq_elems[blocks->type]++;
        if (same_float(mine[i], want[i])) {
            st->deq_equal[blocks->type]++;
        } else if (st->mismatches_shown++ < 5) {
            fprintf(stderr, "    %s element %lld: mixq %a, ggml %a\n", blocks->name, (long long)i,
                    (double)mine[i], (double)want[i]);
        }
    }
    free(mine);
    return true;
}

/* Checks every set and every dequantization in a quant-ref file. Returns false on a file
 * that is not one (printed); differences are counted in st, not returned. */
static bool compare_file(const char *path, struct quant_stats *st)
{
    struct mq_gguf *g;
    memset(st, 0, sizeof(*st));
    if (mq_gguf_open(path, &g) < 0)
        return false;
    char version[64];
    bool ok = mq_gguf_get_str(g, "mixq.fixture", version, sizeof(version)) == MQ_OK &&
              strcmp(version, "quant-ref/1") == 0;
    if (!ok)
        fprintf(stderr, "    %s: mixq.fixture is not quant-ref/1\n", path);
    for (uint64_t i = 0; ok && i < g->n_tensors; i++) {
        const struct mq_gguf_tensor *t = &g->tensors[i];
        char name[MQ_GGUF_MAX_NAME + 32];
        if (ends_with(t->name, ".deq")) {
            snprintf(name, sizeof(name), "%.*s", (int)(strlen(t->name) - 4), t->name);
            const struct mq_gguf_tensor *b = mq_gguf_find_tensor(g, name);
            ok = b && b->type != MQ_DTYPE_F32 && compare_dequant(b, t, st);
            continue;
        }
        if (!ends_with(t->name, ".input"))
            continue;
        /* set S: S.input [ne0, rows], S.imp, S.imp0, S.TYPE[.imp|.imp0] */
        char set[MQ_GGUF_MAX_NAME + 1];
        snprintf(set, sizeof(set), "%.*s", (int)(strlen(t->name) - 6), t->name);
        int64_t ne0 = t->ne[0], rows = t->n_elems / t->ne[0];
        const float *x = f32_of(g, t->name, ne0, rows);
        snprintf(name, sizeof(name), "%s.imp", set);
        const float *imp = f32_of(g, name, ne0, 1);
        snprintf(name, sizeof(name), "%s.imp0", set);
        const float *imp0 = f32_of(g, name, ne0, 1);
        ok = x && imp && imp0;
        const float *weights[V_COUNT] = {NULL, imp, imp0};
        st->sets++;
        for (size_t k = 0; ok && k < N(qtypes); k++) {
            enum mq_dtype type = qtypes[k].type;
            if (!mq_dtype_row_ok(type, ne0))
                continue;
            for (int v = 0; ok && v < V_COUNT; v++) {
                /* ggml has no weighted Q8_0/Q8_K: mixq must ignore the weights too */
                const char *suffix = qtypes[k].uses_imp ? variant_suffix[v] : "";
                snprintf(name, sizeof(name), "%s.%s%s", set, mq_dtype_name(type), suffix);
                const struct mq_gguf_tensor *want = mq_gguf_find_tensor(g, name);
                if (!want) {
                    fprintf(stderr, "    %s: no '%s'\n", path, name);
                    ok = false;
                    break;
                }
                ok = compare_quant(name, want, type, x, ne0, rows, weights[v], st, v);
            }
        }
    }
    mq_gguf_close(g);
    return ok;
}

static bool all_equal(const struct quant_stats *st)
{
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        for (int v = 0; v < V_COUNT; v++)
            if (st->equal[t][v] != st->rows[t][v])
                return false;
        if (st->deq_equal[t] != st->deq_elems[t])
            return false;
    }
    return true;
}

/* One line per type: rows compared and equal per weighting; dequantized elements. */
static void print_stats(const struct quant_stats *st)
{
    printf("    %-7s %-22s %-22s %-22s %s\n", "type", "no weights", "imp", "imp0 (zeros)",
           "dequantized");
    for (size_t k = 0; k < N(qtypes); k++) {
        enum mq_dtype t = qtypes[k].type;
        char col[V_COUNT][48], deq[48] = "-";
        for (int v = 0; v < V_COUNT; v++) {
            const char *word = st->equal[t][v] == st->rows[t][v] ? "equal" : "DIFFER";
            snprintf(col[v], sizeof(col[v]), "%lld/%lld %s%s", (long long)st->equal[t][v],
                     (long long)st->rows[t][v], word, v && !qtypes[k].uses_imp ? "*" : "");
        }
        if (st->deq_elems[t])
            snprintf(deq, sizeof(deq), "%lld/%lld %s", (long long)st->deq_equal[t],
                     (long long)st->deq_elems[t],
                     st->deq_equal[t] == st->deq_elems[t] ? "bit-exact" : "DIFFER");
        printf("    %-7s %-22s %-22s %-22s %s\n", mq_dtype_name(t), col[V_PLAIN], col[V_IMP],
               col[V_IMP0], deq);
    }
    printf("    (rows byte-identical / rows compared; * ggml ignores the weights: compared with "
           "its unweighted bytes)\n");
}

/* ---- tests ---- */

static int test_traits(void)
{
    for (size_t k = 0; k < N(qtypes); k++) {
        const struct mq_dtype_traits *t = mq_dtype_get(qtypes[k].type);
        T_CHECK_MSG(t->ggml_type == qtypes[k].ggml_type && t->quantize && t->from_f32 && t->to_f32,
                    "%s", t->name);
        T_CHECK(t->is_quantized && t->block_elems % 32 == 0);
    }
    return T_PASS;
}

/* The committed fixture: every type's bytes, every weighting, and the dequantizers. */
static int check_fixture(bool weights)
{
    struct quant_stats st;
    T_SKIP_IF(access(FIXTURE, R_OK) != 0, "no %s: run tests/interop/make-quant-ref-fixture.sh",
              FIXTURE);
    T_CHECK(compare_file(FIXTURE, &st));
    T_CHECK(st.sets >= 3);
    for (size_t k = 0; k < N(qtypes); k++) {
        enum mq_dtype t = qtypes[k].type;
        for (int v = weights ? V_IMP : V_PLAIN; v <= (weights ? V_IMP0 : V_PLAIN); v++) {
            T_CHECK_MSG(st.rows[t][v] >= 8, "%s%s: %lld rows in the fixture", mq_dtype_name(t),
                        variant_suffix[v], (long long)st.rows[t][v]);
            T_CHECK_MSG(st.equal[t][v] == st.rows[t][v], "%s%s: %lld of %lld rows differ from ggml",
                        mq_dtype_name(t), variant_suffix[v],
                        (long long)(st.rows[t][v] - st.equal[t][v]), (long long)st.rows[t][v]);
        }
    }
    return T_PASS;
}

static int test_fixture_plain(void)
{
    return check_fixture(false);
}
static int test_fixture_imp(void)
{
    return check_fixture(true);
}

static int test_fixture_dequant(void)
{
    struct quant_stats st;
    T_SKIP_IF(access(FIXTURE, R_OK) != 0, "no %s", FIXTURE);
    T_CHECK(compare_file(FIXTURE, &st));
    static const enum mq_dtype deq[] = {MQ_DTYPE_IQ4_NL, MQ_DTYPE_IQ4_XS, MQ_DTYPE_Q8_K};
    for (size_t k = 0; k < N(deq); k++) {
        T_CHECK_MSG(st.deq_elems[deq[k]] >= 512, "%s: %lld elements", mq_dtype_name(deq[k]),
                    (long long)st.deq_elems[deq[k]]);
        T_CHECK_MSG(st.deq_equal[deq[k]] == st.deq_elems[deq[k]], "%s: %lld of %lld differ",
                    mq_dtype_name(deq[k]), (long long)(st.deq_elems[deq[k]] - st.deq_equal[deq[k]]),
                    (long long)st.deq_elems[deq[k]]);
    }
    return T_PASS;
}

/* tests/interop/check-quant.sh's file (MIXQ_QUANT_REF): whole models against live ggml. */
static int test_ggml_live(void)
{
    const char *path = getenv("MIXQ_QUANT_REF");
    struct quant_stats st;
    T_SKIP_IF(!path, "MIXQ_QUANT_REF not set (tests/interop/check-quant.sh sets it)");
    T_CHECK(compare_file(path, &st));
    printf("  %s: %lld input sets\n", path, (long long)st.sets);
    print_stats(&st);
    T_CHECK(all_equal(&st));
    return T_PASS;
}

/* Gaussian-ish rows (sum of three uniforms) with a scale that changes every 32. */
static void fill_rows(float *x, int64_t n, unsigned long long seed)
{
    struct t_rng r = {seed};
    float scale = 1.0f;
    for (int64_t i = 0; i < n; i++) {
        if (i % 32 == 0)
            scale = 0.02f * (1.5f + t_rng_float(&r));
        x[i] = scale * (t_rng_float(&r) + t_rng_float(&r) + t_rng_float(&r));
    }
}

/* Quantize, dequantize: the relative RMS error stays under a per-type bound (about 1.3x
 * what the formats give on such data; 1.5 times that with weights), from_f32 equals
 * quantize without weights, and weights that favour half the columns of every block
 * lower the error there. */
static int test_roundtrip(void)
{
    static const struct {
        enum mq_dtype type;
        double max_rel_rmse;
    } bound[] = {
        {MQ_DTYPE_Q8_0, 0.0065}, {MQ_DTYPE_Q4_0, 0.11},    {MQ_DTYPE_Q4_1, 0.10},
        {MQ_DTYPE_Q5_0, 0.052},  {MQ_DTYPE_Q5_1, 0.047},   {MQ_DTYPE_Q2_K, 0.37},
        {MQ_DTYPE_Q3_K, 0.19},   {MQ_DTYPE_Q4_K, 0.088},   {MQ_DTYPE_Q5_K, 0.045},
        {MQ_DTYPE_Q6_K, 0.023},  {MQ_DTYPE_IQ4_NL, 0.097}, {MQ_DTYPE_IQ4_XS, 0.098},
        {MQ_DTYPE_Q8_K, 0.01},
    };
    enum { NPR = 1024, ROWS = 3 };
    float *x = malloc(NPR * ROWS * sizeof(float)), *y = malloc(NPR * ROWS * sizeof(float));
    float *imp = malloc(NPR * sizeof(float));
    uint8_t *q = malloc(NPR * ROWS * 4), *q1 = malloc(NPR * ROWS * 4);
    T_CHECK(x && y && imp && q && q1);
    fill_rows(x, NPR * ROWS, 0x1234567ULL);
    for (int j = 0; j < NPR; j++)
        imp[j] = j % 4 < 2 ? 100.0f : 0.01f; /* favour two columns of every four */
    for (size_t k = 0; k < N(bound); k++) {
        const struct mq_dtype_traits *t = mq_dtype_get(bound[k].type);
        size_t row_bytes;
        T_CHECK(mq_dtype_row_bytes(bound[k].type, NPR, &row_bytes) == MQ_OK);
        for (int weighted = 0; weighted < 2; weighted++) {
            t->quantize(x, q, ROWS, NPR, weighted ? imp : NULL);
            t->to_f32(q, y, NPR * ROWS);
            double err[2] = {0, 0}, ref[2] = {0, 0};
            for (int i = 0; i < NPR * ROWS; i++) {
                int half = (i % NPR) % 4 < 2 ? 0 : 1;
                err[half] += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
                ref[half] += (double)x[i] * x[i];
            }
            double rel = sqrt((err[0] + err[1]) / (ref[0] + ref[1]));
            double rel_fav = sqrt(err[0] / ref[0]), rel_other = sqrt(err[1] / ref[1]);
            if (!weighted) {
                T_CHECK_MSG(rel < bound[k].max_rel_rmse, "%s: relative RMS error %.4f >= %.4f",
                            t->name, rel, bound[k].max_rel_rmse);
                /* from_f32 is quantize(src, dst, 1, n, NULL), a row at a time */
                for (int r = 0; r < ROWS; r++)
                    t->from_f32(x + r * NPR, q1 + (size_t)r * row_bytes, NPR);
                T_CHECK_MSG(memcmp(q, q1, row_bytes * ROWS) == 0, "%s: from_f32 != quantize",
                            t->name);
            } else if (bound[k].type != MQ_DTYPE_Q8_0 && bound[k].type != MQ_DTYPE_Q8_K) {
                T_CHECK_MSG(rel < 1.5 * bound[k].max_rel_rmse, "%s weighted: error %.4f", t->name,
                            rel);
                T_CHECK_MSG(rel_fav < rel_other, "%s: favoured columns %.4f, others %.4f", t->name,
                            rel_fav, rel_other);
            }
        }
    }
    free(x);
    free(y);
    free(imp);
    free(q);
    free(q1);
    return T_PASS;
}

/* NaN, Inf and extreme floats in rows and in weights: no crash, no undefined behaviour
 * (the sanitizer build runs this), and in the unweighted path, which ggml computes block
 * by block, blocks without a non-finite value are unaffected by their neighbours'. */
static int test_non_finite(void)
{
    enum { NPR = 1024 };
    static const float poison[] = {NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e-45f};
    float *x = malloc(NPR * sizeof(float)), *clean = malloc(NPR * sizeof(float));
    float *imp = malloc(NPR * sizeof(float)), *y = malloc(NPR * sizeof(float));
    uint8_t *q = malloc(NPR * 4), *qc = malloc(NPR * 4);
    T_CHECK(x && clean && imp && y && q && qc);
    for (size_t p = 0; p < N(poison); p++) {
        fill_rows(clean, NPR, 99 + p);
        memcpy(x, clean, NPR * sizeof(float));
        int at[3] = {40, 41, 600}; /* super-blocks 0 and 2; legacy blocks 1 and 18 */
        for (int i = 0; i < 3; i++) {
            x[at[i]] = poison[p];
            clean[at[i]] = 0.0f;
        }
        for (int j = 0; j < NPR; j++)
            imp[j] = j == 77      ? poison[p]
                     : j == 78    ? -1.0f
                     : j % 5 == 0 ? 0.0f
                                  : 1.0f + (float)(j % 9);
        for (size_t k = 0; k < N(qtypes); k++) {
            const struct mq_dtype_traits *t = mq_dtype_get(qtypes[k].type);
            t->quantize(x, q, 1, NPR, imp);
            t->to_f32(q, y, NPR);
            t->quantize(x, q, 1, NPR, NULL);
            t->to_f32(q, y, NPR);
            t->quantize(clean, qc, 1, NPR, NULL);
            for (int64_t b = 0; b < NPR / t->block_elems; b++) {
                int64_t lo = b * t->block_elems, hi = lo + t->block_elems;
                bool hit = false;
                for (int i = 0; i < 3; i++)
                    hit |= at[i] >= lo && at[i] < hi;
                if (hit)
                    continue;
                T_CHECK_MSG(
                    memcmp(q + b * t->block_bytes, qc + b * t->block_bytes, t->block_bytes) == 0,
                    "%s: block %lld changed by a %g elsewhere", t->name, (long long)b,
                    (double)poison[p]);
            }
        }
    }
    free(x);
    free(clean);
    free(imp);
    free(y);
    free(q);
    free(qc);
    return T_PASS;
}

/* mq_convert_weights splits a large conversion's rows over threads: the bytes are the
 * row-by-row quantizer's, with and without importance weights, and two threads converting
 * at once (the second runs on its caller alone) get the same. The split does not depend on
 * the format; one of each quantizer family runs (every quantizer's bytes are checked
 * above). */
struct convert_arg {
    const float *x, *imp;
    enum mq_dtype fmt;
    int64_t n_in, rows;
    void *buf;
    int rc;
};

static void *convert_thread(void *p)
{
    struct convert_arg *a = p;
    const void *data;
    a->rc = mq_convert_weights("w", MQ_DTYPE_F32, a->x, a->n_in, a->rows, a->fmt, a->imp, NULL, &data, &a->buf);
    return NULL;
}

static int test_convert_threads(void)
{
    enum { NPR = 4096, ROWS = 260 }; /* 1.06 M weights: over the threshold for threads */
    static const enum mq_dtype fmts[] = {MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_1, MQ_DTYPE_Q4_K, MQ_DTYPE_IQ4_XS};
    float *x = malloc((size_t)NPR * ROWS * sizeof(float)), *imp = malloc(NPR * sizeof(float));
    uint8_t *want = malloc((size_t)NPR * ROWS * 4);
    T_CHECK(x && imp && want);
    fill_rows(x, NPR * ROWS, 0x5eedULL);
    for (int j = 0; j < NPR; j++)
        imp[j] = 0.5f + (float)(j % 7);
    /* under emulation or sanitizers (MIXQ_TEST_QUICK, ASan) one format: the split is the same */
    size_t n_fmts = getenv("MIXQ_TEST_QUICK") || T_UNDER_ASAN ? 1 : N(fmts);
    for (size_t k = 0; k < n_fmts; k++) {
        const struct mq_dtype_traits *t = mq_dtype_get(fmts[k]);
        size_t row_bytes;
        T_CHECK(mq_dtype_row_bytes(fmts[k], NPR, &row_bytes) == MQ_OK);
        for (int weighted = 0; weighted < 2; weighted++) {
            const float *w = weighted ? imp : NULL;
            for (int r = 0; r < ROWS; r++)
                t->quantize(x + (size_t)r * NPR, want + (size_t)r * row_bytes, 1, NPR, w);
            struct convert_arg a[2] = {{x, w, fmts[k], NPR, ROWS, NULL, -1}, {x, w, fmts[k], NPR, ROWS, NULL, -1}};
            pthread_t th;
            T_CHECK(pthread_create(&th, NULL, convert_thread, &a[1]) == 0);
            convert_thread(&a[0]);
            pthread_join(th, NULL);
            for (int i = 0; i < 2; i++) {
                T_CHECK(a[i].rc == MQ_OK && a[i].buf);
                T_CHECK_MSG(memcmp(a[i].buf, want, row_bytes * ROWS) == 0, "%s (imp %d): bytes differ", t->name,
                            weighted);
                free(a[i].buf);
            }
        }
    }
    free(x);
    free(imp);
    free(want);
    return T_PASS;
}

const struct mq_test quant_tests[] = {
    {"quant/traits", test_traits},           {"quant/fixture-plain", test_fixture_plain},
    {"quant/fixture-imp", test_fixture_imp}, {"quant/fixture-dequant", test_fixture_dequant},
    {"quant/roundtrip", test_roundtrip},     {"quant/non-finite", test_non_finite},
    {"quant/ggml-live", test_ggml_live},     {"quant/convert-threads", test_convert_threads},
    {NULL, NULL},
};
