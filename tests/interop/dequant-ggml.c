/* tests/interop/dequant-ggml.c - llama.cpp's own dequantization, as the oracle for mixq's.
 *
 *     dequant-ggml -o OUT.gguf [-n ROWS] [-b] [-r ROWS] [-k KEY=VALUE]... SPEC...
 *
 *     SPEC  FILE                 every tensor of FILE that ggml converts to f32
 *           FILE:TENSOR:ALIAS    that one tensor, written under the name ALIAS
 *
 * Opens each FILE with ggml's gguf reader (gguf_init_from_file) and converts tensors with
 * ggml's own type traits, ggml_get_type_traits(type)->to_float (dequantize_row_* for the
 * block types; f32 is copied), and writes with ggml's gguf writer, into OUT:
 *
 *     ALIAS.f32             ggml's floats, f32, the tensor's shape (or [ne0, ROWS] with -n)
 *     ALIAS.blocks          with -b: the tensor's bytes as they are in FILE, its own type
 *     ALIAS.random.blocks   with -r ROWS: ROWS rows of pseudo-random bytes of the tensor's
 *     ALIAS.random.f32        type and row width (xorshift64*, seeded from ALIAS), so that
 *                             every bit pattern of the layout is exercised, and their floats
 *
 * In FILE mode ALIAS is the tensor's name. -n ROWS keeps the first ROWS rows of each
 * tensor (rows are ne[0] elements); -k adds a string key/value to OUT (a fixture's
 * version header). tests/interop/make-quant-fixture.sh and check-quant.sh use it;
 * tests/interop/dequant-mixq.c writes mixq's floats in the same layout.
 *
 * Built against the vendored llama.cpp, not against mixq:
 *     cc -O2 -I$SRC/ggml/include dequant-ggml.c $BUILD/ggml/src/libggml-base.a \
 *        -lstdc++ -lm -lpthread -fopenmp -o dequant-ggml
 *
 * Exit status: 0 done, 1 failure (one line on stderr), 2 bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ggml.h"
#include "gguf.h"

#define MAX_INPUTS 256
#define MAX_OUT_TENSORS 8192

struct input {
    struct gguf_context *gguf;
    struct ggml_context *data; /* the tensors, loaded */
};

struct state {
    struct gguf_context *out;
    struct ggml_context *meta; /* output tensor descriptions (no data) */
    void **bufs;               /* output data (one per output tensor), freed at the end */
    int n_bufs;
    int64_t max_rows; /* -n; 0: all rows */
    int keep_blocks;  /* -b */
    int random_rows;  /* -r */
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dequant-ggml: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void usage(void)
{
    fputs("usage: dequant-ggml -o OUT.gguf [-n ROWS] [-b] [-r ROWS] [-k KEY=VALUE]... "
          "FILE[:TENSOR:ALIAS]...\n",
          stderr);
    exit(2);
}

static void *xmalloc(struct state *s, size_t n)
{
    if (s->n_bufs >= MAX_OUT_TENSORS)
        die("more than %d output tensors", MAX_OUT_TENSORS);
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    s->bufs[s->n_bufs++] = p;
    return p;
}

/* Adds a tensor of `type`, [ne0, rows], whose bytes `data` (owned by s) are written. */
static void add_tensor(struct state *s, const char *name, enum ggml_type type, int n_dims,
                       const int64_t *ne, void *data)
{
    if (strlen(name) >= GGML_MAX_NAME)
        die("output tensor name '%s' is longer than ggml's %d bytes", name, GGML_MAX_NAME - 1);
    if (gguf_find_tensor(s->out, name) >= 0)
        die("output tensor '%s' written twice", name);
    struct ggml_tensor *t = ggml_new_tensor(s->meta, type, n_dims, ne);
    ggml_set_name(t, name);
    gguf_add_tensor(s->out, t);
    gguf_set_tensor_data(s->out, name, data);
}

/* ggml's floats of n elements of `type`; NULL when ggml has no conversion to f32. */
static float *to_f32(struct state *s, enum ggml_type type, const void *src, int64_t n)
{
    float *y;
    if (type == GGML_TYPE_F32) {
        y = xmalloc(s, (size_t)n * sizeof(float));
        memcpy(y, src, (size_t)n * sizeof(float));
        return y;
    }
    const struct ggml_type_traits *tr = ggml_get_type_traits(type);
    if (!tr->to_float)
        return NULL;
    y = xmalloc(s, (size_t)n * sizeof(float));
    tr->to_float(src, y, n);
    return y;
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

/* Writes ALIAS.f32 (and ALIAS.blocks, ALIAS.random.*) for tensor t of an input; returns
 * 0, or -1 when ggml cannot convert t's type (nothing written). */
static int emit(struct state *s, const struct ggml_tensor *t, const char *alias)
{
    enum ggml_type type = t->type;
    const struct ggml_type_traits *tr = ggml_get_type_traits(type);
    if (type != GGML_TYPE_F32 && !tr->to_float)
        return -1;
    int64_t ne0 = t->ne[0], rows = ggml_nrows(t);
    int n_dims = ggml_n_dims(t);
    int64_t ne[GGML_MAX_DIMS] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
    if (s->max_rows > 0 && rows > s->max_rows) {
        rows = s->max_rows;
        n_dims = 2;
        ne[1] = rows;
        ne[2] = ne[3] = 1;
    }
    size_t row_bytes = ggml_row_size(type, ne0);
    char name[GGML_MAX_NAME + 32];

    float *y = to_f32(s, type, t->data, ne0 * rows);
    snprintf(name, sizeof(name), "%s.f32", alias);
    add_tensor(s, name, GGML_TYPE_F32, n_dims, ne, y);

    if (s->keep_blocks) {
        void *blocks = xmalloc(s, row_bytes * (size_t)rows);
        memcpy(blocks, t->data, row_bytes * (size_t)rows);
        snprintf(name, sizeof(name), "%s.blocks", alias);
        add_tensor(s, name, type, n_dims, ne, blocks);
    }

    if (s->random_rows > 0) {
        int64_t rne[GGML_MAX_DIMS] = {ne0, s->random_rows, 1, 1};
        size_t nbytes = row_bytes * (size_t)s->random_rows;
        uint8_t *blocks = xmalloc(s, nbytes);
        uint64_t x = seed_of(alias);
        for (size_t i = 0; i < nbytes; i++)
            blocks[i] = (uint8_t)(rng_next(&x) >> 56);
        float *ry = to_f32(s, type, blocks, ne0 * s->random_rows);
        snprintf(name, sizeof(name), "%s.random.blocks", alias);
        add_tensor(s, name, type, 2, rne, blocks);
        snprintf(name, sizeof(name), "%s.random.f32", alias);
        add_tensor(s, name, GGML_TYPE_F32, 2, rne, ry);
    }
    return 0;
}

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
            if (emit(s, t, nm) == 0)
                done++;
            else
                fprintf(stderr,
                        "dequant-ggml: '%s': skipping tensor '%s' of type %s (no to_float)\n", spec,
                        nm, ggml_type_name(t->type));
        }
        fprintf(stderr, "dequant-ggml: %s: %" PRId64 " of %" PRId64 " tensors\n", spec, done, n);
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
    if (emit(s, t, alias) < 0)
        die("'%s': tensor '%s' has type %s, which ggml does not convert to f32", path, tensor,
            ggml_type_name(t->type));
    fprintf(stderr, "dequant-ggml: %s: %s (%s, %" PRId64 " x %" PRId64 ") as %s\n", path, tensor,
            ggml_type_name(t->type), t->ne[0], ggml_nrows(t), alias);
}

int main(int argc, char **argv)
{
    const char *out_path = NULL;
    const char *kv[64];
    int n_kv = 0, opt;
    struct state s = {0};
    while ((opt = getopt(argc, argv, "o:n:br:k:")) != -1) {
        switch (opt) {
        case 'o': out_path = optarg; break;
        case 'n': s.max_rows = strtoll(optarg, NULL, 10); break;
        case 'b': s.keep_blocks = 1; break;
        case 'r': s.random_rows = atoi(optarg); break;
        case 'k':
            if (n_kv == 64 || !strchr(optarg, '='))
                usage();
            kv[n_kv++] = optarg;
            break;
        default: usage();
        }
    }
    if (!out_path || optind >= argc || s.max_rows < 0 || s.random_rows < 0 ||
        argc - optind > MAX_INPUTS)
        usage();

    struct ggml_init_params mp = {
        .mem_size = MAX_OUT_TENSORS * ggml_tensor_overhead(), .mem_buffer = NULL, .no_alloc = true};
    s.meta = ggml_init(mp);
    s.out = gguf_init_empty();
    s.bufs = calloc(MAX_OUT_TENSORS, sizeof(*s.bufs));
    struct input *in = calloc((size_t)(argc - optind), sizeof(*in));
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

    if (!gguf_write_to_file(s.out, out_path, false))
        die("cannot write '%s'", out_path);
    fprintf(stderr, "dequant-ggml: wrote %" PRId64 " tensors to %s\n", gguf_get_n_tensors(s.out),
            out_path);

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
