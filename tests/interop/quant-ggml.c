/* tests/interop/quant-ggml.c - llama.cpp's own quantization, as the oracle for mixq's.
 *
 *     quant-ggml -o OUT.gguf [-n ROWS] [-s ROWS] [-a] [-r ROWS] [-D] [-k KEY=VALUE]... [SPEC...]
 *     quant-ggml -F
 *
 *     SPEC  FILE                 every f32 tensor of FILE whose rows are a multiple of 32 wide
 *           FILE:TENSOR:ALIAS    that one tensor (f32), as the set ALIAS
 *
 * Each input set S (rows of ne0 floats; a 1-D tensor is one row) is quantized with ggml's
 * ggml_quantize_chunk (what llama-quantize calls) into every type whose blocks divide
 * ne0: q8_0 q4_0 q4_1 q5_0 q5_1 q2_K q3_K q4_K q5_K q6_K iq4_nl iq4_xs, and into q8_K
 * with quantize_row_q8_K_ref (ggml-base's own activation quantizer; q8_K has no
 * ggml_quantize_chunk case). OUT (written with ggml's gguf writer) holds, per set:
 *
 *     S.input        f32 [ne0, rows]  the rows quantized
 *     S.imp          f32 [ne0]        an importance vector: positive, spread over ~5 decades
 *     S.imp0         f32 [ne0]        the same with zeros (every 7th column, columns 32..47,
 *                                     and 256..287 where the row is that wide)
 *     S.TYPE         TYPE [ne0, rows] ggml's bytes without importance weights (NULL)
 *     S.TYPE.imp     TYPE             ... with S.imp as quant_weights (not for q8_0 and q8_K,
 *     S.TYPE.imp0    TYPE             ... with S.imp0                  which ignore them)
 *     S.TYPE.deq     f32              with -D, for iq4_nl iq4_xs q8_K: ggml's dequantization
 *                                     of S.TYPE (dequantize_row_*)
 *     random-blocks.TYPE      with -r ROWS: ROWS rows of 512 values of pseudo-random bytes
 *     random-blocks.TYPE.deq  (iq4_nl iq4_xs q8_K) and ggml's dequantization of them
 *
 * -n ROWS keeps the first ROWS rows of each input tensor. -s ROWS adds ROWS synthetic rows
 * of 512 (set "random": 32-blocks of four styles in turn: Gaussian, Gaussian with
 * block-to-block scale changes, shifted all-positive/all-negative, heavy tails with
 * zeroed 16-blocks);
 * -a adds the set "adversarial" (5 rows of 512: all zero; a constant super-block, then a
 * zero 32-block, a zero 16-block, a single non-zero, +-max ties and values on rounding
 * ties; one value of 3e38; one outlier of -1000; subnormal and near-threshold tiny
 * values). Random data come from xorshift64* seeded with FNV-1a of a name, so the output
 * is deterministic. -k adds a string key/value (a fixture's version header). The output
 * buffers are zeroed before quantizing (ggml's quantize_row_q8_K_ref leaves the bsums of
 * an all-zero block unwritten).
 *
 * -F compares core/fp16.h (mixq's header-only conversions, libc only) with ggml's
 * ggml_fp32_to_fp16 over all 2^32 floats and ggml_fp16_to_fp32 over all 2^16 halves and
 * prints the mismatches, NaN and non-NaN apart (about 15 s).
 *
 * tests/interop/make-quant-ref-fixture.sh makes tests/golden/quant-ref.gguf with it;
 * tests/interop/check-quant.sh runs it on whole models, and tests/unit/test_quant.c
 * compares mixq with either file.
 *
 * Built against the vendored llama.cpp, not against mixq's library:
 *     cc -O2 -I. -I$SRC/ggml/include -I$SRC/ggml/src quant-ggml.c \
 *        $BUILD/ggml/src/libggml-base.a -lstdc++ -lm -lpthread -fopenmp -o quant-ggml
 *
 * Exit status: 0 done (-F: no non-NaN mismatch), 1 failure (one line on stderr), 2 bad usage.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ggml-quants.h" /* quantize_row_q8_K_ref, dequantize_row_q8_K: ggml-base, internal */
#include "ggml.h"
#include "gguf.h"

#include "core/fp16.h"

#define MAX_INPUTS 256
#define MAX_OUT_TENSORS 16384
#define SYNTH_WIDTH 512

/* every type, in mixq's table order; q8_K last (not a ggml_quantize_chunk type) */
static const enum ggml_type types[] = {
    GGML_TYPE_Q8_0,   GGML_TYPE_Q4_0,   GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
    GGML_TYPE_Q2_K,   GGML_TYPE_Q3_K,   GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
    GGML_TYPE_IQ4_NL, GGML_TYPE_IQ4_XS, GGML_TYPE_Q8_K,
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

struct state {
    struct gguf_context *out;
    struct ggml_context *meta; /* output tensor descriptions (no data) */
    void **bufs;               /* output data (one per output tensor), freed at the end */
    int n_bufs;
    int64_t max_rows; /* -n; 0: all rows */
    int deq;          /* -D */
    int64_t n_rows;   /* rows quantized, all sets */
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("quant-ggml: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void usage(void)
{
    fputs("usage: quant-ggml -o OUT.gguf [-n ROWS] [-s ROWS] [-a] [-r ROWS] [-D] [-k KEY=VALUE]... "
          "[FILE[:TENSOR:ALIAS]]...\n"
          "       quant-ggml -F\n",
          stderr);
    exit(2);
}

/* zeroed, owned by s */
static void *xalloc(struct state *s, size_t n)
{
    if (s->n_bufs >= MAX_OUT_TENSORS)
        die("more than %d output tensors", MAX_OUT_TENSORS);
    void *p = calloc(n ? n : 1, 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    s->bufs[s->n_bufs++] = p;
    return p;
}

/* Adds a tensor of `type`, [ne0, ne1] (1-D when ne1 is 0), whose bytes `data` (owned by s)
 * are written. */
static void add_tensor(struct state *s, const char *name, enum ggml_type type, int64_t ne0,
                       int64_t ne1, void *data)
{
    if (strlen(name) >= GGML_MAX_NAME)
        die("output tensor name '%s' is longer than ggml's %d bytes", name, GGML_MAX_NAME - 1);
    if (gguf_find_tensor(s->out, name) >= 0)
        die("output tensor '%s' written twice", name);
    int64_t ne[2] = {ne0, ne1};
    struct ggml_tensor *t = ggml_new_tensor(s->meta, type, ne1 ? 2 : 1, ne);
    ggml_set_name(t, name);
    gguf_add_tensor(s->out, t);
    gguf_set_tensor_data(s->out, name, data);
}

/* mixq's spelling of a type's name: ggml's in lower case ("q4_k") */
static const char *type_tag(enum ggml_type type)
{
    static char tags[GGML_TYPE_COUNT][16];
    char *t = tags[type];
    if (!t[0])
        for (size_t i = 0; i + 1 < sizeof(tags[0]) && ggml_type_name(type)[i]; i++)
            t[i] = (char)tolower((unsigned char)ggml_type_name(type)[i]);
    return t;
}

static uint64_t seed_of(const char *name) /* FNV-1a */
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h ? h : 1;
}

static uint64_t rng_next(uint64_t *x) /* xorshift64* */
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}

static float rng_uniform(uint64_t *x) /* [-1, 1) */
{
    return (float)((double)(rng_next(x) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static float rng_gauss(uint64_t *x) /* mean 0, variance ~1 (sum of four uniforms) */
{
    return (rng_uniform(x) + rng_uniform(x) + rng_uniform(x) + rng_uniform(x)) * 0.8660254f;
}

/* The importance vectors of a set: imp[ne0] positive, exp of a uniform over +-5.75
 * (about 1e-2.5 .. 1e2.5), and imp0 the same with zeros. */
static void make_imp(const char *set, int64_t ne0, float *imp, float *imp0)
{
    char key[GGML_MAX_NAME + 8];
    snprintf(key, sizeof(key), "%s.imp", set);
    uint64_t x = seed_of(key);
    for (int64_t j = 0; j < ne0; j++) {
        imp[j] = expf(5.75f * rng_uniform(&x));
        bool zero = j % 7 == 3 || (j >= 32 && j < 48) || (j >= 256 && j < 288);
        imp0[j] = zero ? 0.0f : imp[j];
    }
}

/* ggml's bytes of rows x[rows][ne0] in `type`, with quant_weights imp (or NULL). */
static void *quantize(struct state *s, enum ggml_type type, const float *x, int64_t rows,
                      int64_t ne0, const float *imp)
{
    size_t row_size = ggml_row_size(type, ne0);
    void *q = xalloc(s, row_size * (size_t)rows);
    if (type == GGML_TYPE_Q8_K) {
        quantize_row_q8_K_ref(x, q, rows * ne0);
        return q;
    }
    size_t n = ggml_quantize_chunk(type, x, q, 0, rows, ne0, imp);
    if (n != row_size * (size_t)rows)
        die("ggml_quantize_chunk(%s) wrote %zu bytes, want %zu", ggml_type_name(type), n,
            row_size * (size_t)rows);
    return q;
}

/* ggml's floats of n elements of a type that has a dequantizer to check (NULL otherwise). */
static float *dequantize(struct state *s, enum ggml_type type, const void *q, int64_t n)
{
    if (type != GGML_TYPE_IQ4_NL && type != GGML_TYPE_IQ4_XS && type != GGML_TYPE_Q8_K)
        return NULL;
    float *y = xalloc(s, (size_t)n * sizeof(float));
    if (type == GGML_TYPE_Q8_K)
        dequantize_row_q8_K(q, y, n); /* no to_float in ggml-base's traits for q8_K */
    else
        ggml_get_type_traits(type)->to_float(q, y, n);
    return y;
}

/* Writes set `name`: its rows (owned by s), vectors and every type's bytes. */
static void emit_set(struct state *s, const char *name, float *x, int64_t ne0, int64_t rows)
{
    char tn[GGML_MAX_NAME + 32];
    snprintf(tn, sizeof(tn), "%s.input", name);
    add_tensor(s, tn, GGML_TYPE_F32, ne0, rows, x);
    float *imp = xalloc(s, (size_t)ne0 * sizeof(float));
    float *imp0 = xalloc(s, (size_t)ne0 * sizeof(float));
    make_imp(name, ne0, imp, imp0);
    snprintf(tn, sizeof(tn), "%s.imp", name);
    add_tensor(s, tn, GGML_TYPE_F32, ne0, 0, imp);
    snprintf(tn, sizeof(tn), "%s.imp0", name);
    add_tensor(s, tn, GGML_TYPE_F32, ne0, 0, imp0);
    for (size_t k = 0; k < N_TYPES; k++) {
        enum ggml_type type = types[k];
        const char *tname = type_tag(type);
        if (ne0 % ggml_blck_size(type) != 0)
            continue;
        void *q = quantize(s, type, x, rows, ne0, NULL);
        snprintf(tn, sizeof(tn), "%s.%s", name, tname);
        add_tensor(s, tn, type, ne0, rows, q);
        float *y = s->deq ? dequantize(s, type, q, ne0 * rows) : NULL;
        if (y) {
            snprintf(tn, sizeof(tn), "%s.%s.deq", name, tname);
            add_tensor(s, tn, GGML_TYPE_F32, ne0, rows, y);
        }
        if (type == GGML_TYPE_Q8_0 || type == GGML_TYPE_Q8_K)
            continue;
        snprintf(tn, sizeof(tn), "%s.%s.imp", name, tname);
        add_tensor(s, tn, type, ne0, rows, quantize(s, type, x, rows, ne0, imp));
        snprintf(tn, sizeof(tn), "%s.%s.imp0", name, tname);
        add_tensor(s, tn, type, ne0, rows, quantize(s, type, x, rows, ne0, imp0));
    }
    s->n_rows += rows;
}

/* ---- synthetic rows ---- */

/* Rows of 512 whose 32-blocks take turns among four styles (block b of row i: style
 * (b + i) % 4), at a row scale of 0.01..10: Gaussian; Gaussian at a block scale up to 10x
 * either way; shifted to all-positive or all-negative; heavy-tailed with a chance of a
 * zeroed half. */
static void synth_random(struct state *s, int64_t rows)
{
    const int64_t n = SYNTH_WIDTH;
    float *x = xalloc(s, (size_t)(n * rows) * sizeof(float));
    uint64_t r = seed_of("random");
    for (int64_t i = 0; i < rows; i++) {
        float scale = powf(10.0f, 1.5f * (rng_uniform(&r) + 1.0f) - 2.0f);
        for (int64_t b = 0; b < n / 32; b++) {
            float *y = x + i * n + 32 * b;
            float bs = scale * powf(10.0f, rng_uniform(&r));
            float shift = rng_uniform(&r) > 0 ? 2.0f : -2.0f;
            for (int64_t j = 0; j < 32; j++) {
                switch ((b + i) % 4) {
                case 0: y[j] = scale * rng_gauss(&r); break;
                case 1: y[j] = bs * rng_gauss(&r); break;
                case 2: y[j] = scale * (shift + rng_uniform(&r)); break;
                default: {
                    float g = rng_gauss(&r);
                    y[j] = scale * (rng_uniform(&r) > 0.9f ? 20.0f * g : g);
                }
                }
            }
            if ((b + i) % 4 == 3 && rng_uniform(&r) > 0)
                memset(y + (rng_uniform(&r) > 0 ? 16 : 0), 0, 16 * sizeof(float));
        }
    }
    emit_set(s, "random", x, n, rows);
}

static void synth_adversarial(struct state *s)
{
    const int64_t n = SYNTH_WIDTH, rows = 5;
    float *x = xalloc(s, (size_t)(n * rows) * sizeof(float)); /* row 0: all zero */
    uint64_t r = seed_of("adversarial");
    float *y = x + n; /* row 1 */
    for (int64_t j = 0; j < 256; j++)
        y[j] = 0.5f; /* a constant super-block */
    for (int64_t j = 256; j < n; j++)
        y[j] = 0.05f * rng_gauss(&r);
    memset(y + 256 + 32, 0, 32 * sizeof(float)); /* a zero 32-block */
    memset(y + 256 + 80, 0, 16 * sizeof(float)); /* a zero 16-block */
    memset(y + 256 + 128, 0, 32 * sizeof(float));
    y[256 + 128 + 5] = -0.3f; /* a single non-zero */
    y[256 + 160 + 3] = 0.2f;  /* +-max ties: the first of equal magnitudes wins */
    y[256 + 160 + 9] = -0.2f;
    for (int64_t j = 256 + 192; j < n; j++)
        y[j] = 0.125f * (float)((j % 17) - 8); /* values on rounding ties */
    y = x + 2 * n; /* row 2: one value near FLT_MAX (sums of squares overflow) */
    for (int64_t j = 0; j < n; j++)
        y[j] = 0.02f * rng_gauss(&r);
    y[100] = 3.0e38f;
    y = x + 3 * n; /* row 3: one outlier */
    for (int64_t j = 0; j < n; j++)
        y[j] = 0.01f * rng_gauss(&r);
    y[300] = -1000.0f;
    y = x + 4 * n; /* row 4: tiny: subnormals, then 32-blocks around ggml's thresholds */
    static const float mags[8] = {1e-37f, 1e-36f, 1e-30f, 1e-15f, 5e-16f, 1e-16f, 1e-20f, 1e-10f};
    for (int64_t j = 0; j < 256; j++)
        y[j] = 1e-39f * rng_gauss(&r);
    for (int64_t j = 256; j < n; j++)
        y[j] = mags[(j - 256) / 32] * rng_gauss(&r);
    emit_set(s, "adversarial", x, n, rows);
}

/* ROWS rows of 512 pseudo-random bytes per dequantizer under test, and ggml's floats. */
static void random_blocks(struct state *s, int64_t rows)
{
    static const enum ggml_type deq_types[] = {GGML_TYPE_IQ4_NL, GGML_TYPE_IQ4_XS, GGML_TYPE_Q8_K};
    char tn[GGML_MAX_NAME + 32];
    for (size_t k = 0; k < sizeof(deq_types) / sizeof(deq_types[0]); k++) {
        enum ggml_type type = deq_types[k];
        size_t nbytes = ggml_row_size(type, SYNTH_WIDTH) * (size_t)rows;
        uint8_t *q = xalloc(s, nbytes);
        snprintf(tn, sizeof(tn), "random-blocks.%s", type_tag(type));
        uint64_t x = seed_of(tn);
        for (size_t i = 0; i < nbytes; i++)
            q[i] = (uint8_t)(rng_next(&x) >> 56);
        add_tensor(s, tn, type, SYNTH_WIDTH, rows, q);
        float *y = dequantize(s, type, q, SYNTH_WIDTH * rows);
        snprintf(tn, sizeof(tn), "random-blocks.%s.deq", type_tag(type));
        add_tensor(s, tn, GGML_TYPE_F32, SYNTH_WIDTH, rows, y);
    }
}

/* ---- inputs ---- */

struct input {
    struct gguf_context *gguf;
    struct ggml_context *data;
};

static struct input open_input(const char *path)
{
    struct input in = {0};
    struct gguf_init_params p = {.no_alloc = false, .ctx = &in.data};
    if (access(path, R_OK) != 0)
        die("cannot read '%s': %s", path, strerror(errno));
    in.gguf = gguf_init_from_file(path, p);
    if (!in.gguf)
        die("ggml cannot read '%s' as a gguf file", path);
    return in;
}

/* Emits tensor t as set `alias`; -1 (nothing written) when it is not f32 rows of 32s. */
static int emit_tensor(struct state *s, const struct ggml_tensor *t, const char *alias)
{
    if (t->type != GGML_TYPE_F32 || t->ne[0] % 32 != 0)
        return -1;
    int64_t ne0 = t->ne[0], rows = ggml_nrows(t);
    if (s->max_rows > 0 && rows > s->max_rows)
        rows = s->max_rows;
    float *x = xalloc(s, (size_t)(ne0 * rows) * sizeof(float));
    memcpy(x, t->data, (size_t)(ne0 * rows) * sizeof(float));
    emit_set(s, alias, x, ne0, rows);
    return 0;
}

static void run_spec(struct state *s, const char *spec, struct input *in)
{
    char path[4096], tensor[256], alias[256];
    const char *c1 = strchr(spec, ':');
    if (!c1) {
        *in = open_input(spec);
        int64_t n = gguf_get_n_tensors(in->gguf), done = 0;
        for (int64_t i = 0; i < n; i++) {
            const char *nm = gguf_get_tensor_name(in->gguf, i);
            const struct ggml_tensor *t = ggml_get_tensor(in->data, nm);
            if (!t)
                die("'%s': tensor '%s' was not loaded", spec, nm);
            if (emit_tensor(s, t, nm) == 0)
                done++;
            else
                fprintf(stderr, "quant-ggml: '%s': skipping '%s' (%s, %" PRId64 " wide)\n", spec,
                        nm, ggml_type_name(t->type), t->ne[0]);
        }
        fprintf(stderr, "quant-ggml: %s: %" PRId64 " of %" PRId64 " tensors\n", spec, done, n);
        return;
    }
    const char *c2 = strchr(c1 + 1, ':');
    if (!c2 || (size_t)(c1 - spec) >= sizeof(path) || (size_t)(c2 - c1 - 1) >= sizeof(tensor) ||
        strlen(c2 + 1) >= sizeof(alias) || c2 == c1 + 1 || !c2[1])
        die("bad spec '%s': want FILE or FILE:TENSOR:ALIAS", spec);
    snprintf(path, sizeof(path), "%.*s", (int)(c1 - spec), spec);
    snprintf(tensor, sizeof(tensor), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
    snprintf(alias, sizeof(alias), "%s", c2 + 1);
    *in = open_input(path);
    const struct ggml_tensor *t = ggml_get_tensor(in->data, tensor);
    if (!t)
        die("'%s' has no tensor '%s'", path, tensor);
    if (emit_tensor(s, t, alias) < 0)
        die("'%s': tensor '%s' is %s, %" PRId64 " wide: want f32 rows of a multiple of 32", path,
            tensor, ggml_type_name(t->type), t->ne[0]);
    fprintf(stderr, "quant-ggml: %s: %s (%" PRId64 " x %" PRId64 ") as %s\n", path, tensor,
            t->ne[0], ggml_nrows(t), alias);
}

/* -F: core/fp16.h against ggml's conversions, exhaustively. */
static int check_fp16(void)
{
    uint64_t bad = 0, bad_nan = 0;
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u++) {
        float f = mq_bits_f32((uint32_t)u);
        if (mq_f32_to_f16(f) != ggml_fp32_to_fp16(f)) {
            if (isnan(f))
                bad_nan++;
            else if (bad++ < 5)
                fprintf(stderr,
                        "quant-ggml: f32 0x%08" PRIx64 ": core/fp16.h 0x%04x, ggml 0x%04x\n", u,
                        mq_f32_to_f16(f), ggml_fp32_to_fp16(f));
        }
    }
    uint32_t bad_h = 0, bad_h_nan = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = mq_f16_to_f32((uint16_t)h), b = ggml_fp16_to_fp32((ggml_fp16_t)h);
        if (mq_f32_bits(a) != mq_f32_bits(b)) {
            if (isnan(a) && isnan(b))
                bad_h_nan++;
            else
                bad_h++;
        }
    }
    printf("f32->f16: %" PRIu64 " non-NaN inputs (of 2^32 inputs) differ; %" PRIu64
           " NaN inputs give another NaN (payload)\n",
           bad, bad_nan);
    printf("f16->f32: %" PRIu32 " non-NaN inputs (of 2^16 inputs) differ; %" PRIu32
           " NaN inputs give another NaN (payload)\n",
           bad_h, bad_h_nan);
    return bad || bad_h ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *out_path = NULL;
    const char *kv[64];
    int n_kv = 0, opt, adversarial = 0;
    int64_t synth_rows = 0, random_rows = 0;
    struct state s = {0};
    while ((opt = getopt(argc, argv, "o:n:s:ar:Dk:F")) != -1) {
        switch (opt) {
        case 'o': out_path = optarg; break;
        case 'n': s.max_rows = strtoll(optarg, NULL, 10); break;
        case 's': synth_rows = strtoll(optarg, NULL, 10); break;
        case 'a': adversarial = 1; break;
        case 'r': random_rows = strtoll(optarg, NULL, 10); break;
        case 'D': s.deq = 1; break;
        case 'k':
            if (n_kv == 64 || !strchr(optarg, '='))
                usage();
            kv[n_kv++] = optarg;
            break;
        case 'F': return check_fp16();
        default: usage();
        }
    }
    if (!out_path || s.max_rows < 0 || synth_rows < 0 || random_rows < 0 ||
        argc - optind > MAX_INPUTS ||
        (optind == argc && !synth_rows && !adversarial && !random_rows))
        usage();

    struct ggml_init_params mp = {
        .mem_size = MAX_OUT_TENSORS * ggml_tensor_overhead(), .mem_buffer = NULL, .no_alloc = true};
    s.meta = ggml_init(mp);
    s.out = gguf_init_empty();
    s.bufs = calloc(MAX_OUT_TENSORS, sizeof(*s.bufs));
    struct input *in = calloc((size_t)(argc - optind) + 1, sizeof(*in));
    if (!s.meta || !s.out || !s.bufs || !in)
        die("out of memory");
    for (int i = 0; i < n_kv; i++) {
        char key[256];
        const char *eq = strchr(kv[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv[i]), kv[i]);
        gguf_set_val_str(s.out, key, eq + 1);
    }
    for (int i = optind; i < argc; i++)
        run_spec(&s, argv[i], &in[i - optind]);
    if (synth_rows)
        synth_random(&s, synth_rows);
    if (adversarial)
        synth_adversarial(&s);
    if (random_rows)
        random_blocks(&s, random_rows);

    if (!gguf_write_to_file(s.out, out_path, false))
        die("cannot write '%s'", out_path);
    fprintf(stderr, "quant-ggml: quantized %" PRId64 " rows; wrote %" PRId64 " tensors to %s\n",
            s.n_rows, gguf_get_n_tensors(s.out), out_path);

    for (int i = 0; i < argc - optind; i++) {
        gguf_free(in[i].gguf);
        ggml_free(in[i].data);
    }
    for (int i = 0; i < s.n_bufs; i++)
        free(s.bufs[i]);
    free(s.bufs);
    free(in);
    gguf_free(s.out);
    ggml_free(s.meta);
    return 0;
}
