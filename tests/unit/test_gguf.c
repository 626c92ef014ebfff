/* tests/unit/test_gguf.c - GGUF reader and writer.
 *
 * Round trips of every value and tensor type, byte-for-byte rewrite identity, typed
 * getters, alignment, atomic writes that fail cleanly, every prefix of a valid file,
 * random mutations and hand-built hostile files, each of which must fail with the
 * right code and exactly one error line saying what is wrong.
 *
 * Scalar array data is given to the writer as native arrays: the tests assume a
 * little-endian host (as the writer's contract does for packed data). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "tests/unit/test.h"

/* ---- helpers ------------------------------------------------------------------------- */

static void tpath(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", t_tmpdir(), name);
}

/* Reads a whole file; NULL on failure. The caller frees. */
static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    long n;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    *size = (size_t)n;
out:
    fclose(f);
    return buf;
}

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Everything written so far to the capture file fd, NUL-terminated; NULL when out of
 * memory. The caller frees. */
static char *cap_read(int fd)
{
    fflush(stderr);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return NULL;
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return NULL;
    ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* Runs fn(cap_fd, arg) in a child process whose stderr goes to a temporary file cap_fd
 * (which fn may read with cap_read). When fn does not return T_PASS - a failed check,
 * a crash, a sanitizer report or a leak - the last lines the child printed are copied
 * to the real stderr, so that a report is never swallowed by the capture. */
static int run_isolated(const char *what, int (*fn)(int cap_fd, void *arg), void *arg)
{
    FILE *tmp = tmpfile();
    if (!tmp)
        return T_FAIL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fclose(tmp);
        return T_FAIL;
    }
    if (pid == 0) {
        if (dup2(fileno(tmp), 2) < 0)
            _exit(T_FAIL);
        int rc = fn(fileno(tmp), arg);
        fflush(stderr);
        exit(rc); /* exit, not _exit: LeakSanitizer checks the child too */
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : T_FAIL;
    if (rc != T_PASS) {
        char *out = cap_read(fileno(tmp));
        const char *tail = out ? out : "";
        int lines = 0;
        for (const char *p = tail + strlen(tail); p > tail; p--)
            if (p[-1] == '\n' && ++lines > 40) {
                tail = p;
                break;
            }
        if (WIFSIGNALED(st))
            fprintf(stderr, "    %s: killed by signal %d; its stderr ends with:\n%s", what,
                    WTERMSIG(st), tail);
        else
            fprintf(stderr, "    %s: exit status %d; its stderr ends with:\n%s", what, rc, tail);
        free(out);
    }
    fclose(tmp);
    return rc == T_PASS ? T_PASS : T_FAIL;
}

/* Test-side sizes of scalar types, independent of the library's table. */
static const size_t elem_size[MQ_GGUF_TYPE_COUNT] = {
    [MQ_GGUF_UINT8] = 1,  [MQ_GGUF_INT8] = 1,  [MQ_GGUF_UINT16] = 2,  [MQ_GGUF_INT16] = 2,
    [MQ_GGUF_UINT32] = 4, [MQ_GGUF_INT32] = 4, [MQ_GGUF_FLOAT32] = 4, [MQ_GGUF_BOOL] = 1,
    [MQ_GGUF_UINT64] = 8, [MQ_GGUF_INT64] = 8, [MQ_GGUF_FLOAT64] = 8,
};

static bool value_eq(const struct mq_gguf_value *a, const struct mq_gguf_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MQ_GGUF_UINT8: return a->u8 == b->u8;
    case MQ_GGUF_INT8: return a->i8 == b->i8;
    case MQ_GGUF_UINT16: return a->u16 == b->u16;
    case MQ_GGUF_INT16: return a->i16 == b->i16;
    case MQ_GGUF_UINT32: return a->u32 == b->u32;
    case MQ_GGUF_INT32: return a->i32 == b->i32;
    case MQ_GGUF_FLOAT32: return memcmp(&a->f32, &b->f32, sizeof(float)) == 0;
    case MQ_GGUF_BOOL: return a->b == b->b;
    case MQ_GGUF_UINT64: return a->u64 == b->u64;
    case MQ_GGUF_INT64: return a->i64 == b->i64;
    case MQ_GGUF_FLOAT64: return memcmp(&a->f64, &b->f64, sizeof(double)) == 0;
    case MQ_GGUF_STRING:
        return a->str.len == b->str.len &&
               (a->str.len == 0 || memcmp(a->str.ptr, b->str.ptr, a->str.len) == 0);
    case MQ_GGUF_ARRAY:
        if (a->arr.type != b->arr.type || a->arr.n != b->arr.n)
            return false;
        if (a->arr.type != MQ_GGUF_STRING && a->arr.type != MQ_GGUF_ARRAY)
            return a->arr.n == 0 ||
                   memcmp(a->arr.data, b->arr.data, a->arr.n * elem_size[a->arr.type]) == 0;
        for (uint64_t i = 0; i < a->arr.n; i++)
            if (!value_eq(&a->arr.items[i], &b->arr.items[i]))
                return false;
        return true;
    default: return false;
    }
}

/* Reads every byte of every value and tensor boundary, as a user would; returns a
 * checksum so that nothing is optimized away. */
static uint64_t touch_value(const struct mq_gguf_value *v)
{
    uint64_t s = (uint64_t)v->type;
    if (v->type == MQ_GGUF_STRING) {
        for (uint64_t i = 0; i < v->str.len; i++)
            s += (uint8_t)v->str.ptr[i];
    } else if (v->type == MQ_GGUF_ARRAY) {
        if (v->arr.type == MQ_GGUF_STRING || v->arr.type == MQ_GGUF_ARRAY) {
            for (uint64_t i = 0; i < v->arr.n; i++)
                s += touch_value(&v->arr.items[i]);
        } else {
            for (uint64_t i = 0; i < v->arr.n; i++)
                s += (uint64_t)mq_gguf_arr_i64(v, i) + (uint64_t)(mq_gguf_arr_f64(v, i) != 0.0);
        }
    }
    return s;
}

static uint64_t touch_all(const struct mq_gguf *g)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        for (uint64_t j = 0; j < g->kv[i].key.len; j++)
            s += (uint8_t)g->kv[i].key.ptr[j];
        s += touch_value(&g->kv[i].value);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const uint8_t *p = g->tensors[i].data;
        s += p[0] + p[g->tensors[i].nbytes - 1];
    }
    return s;
}

/* ---- the values every round trip carries --------------------------------------------- */

static const uint8_t arr_u8[] = {0, 1, 255};
static const int8_t arr_i8[] = {-128, 0, 127};
static const uint16_t arr_u16[] = {0, 65535};
static const int16_t arr_i16[] = {-32768, 32767, -1};
static const uint32_t arr_u32[] = {0, 1, 4294967295u};
static const int32_t arr_i32[] = {INT32_MIN, -1, 0, INT32_MAX};
static const float arr_f32[] = {-0.0f, 1.5f, 3.4e38f};
static const uint8_t arr_bool[] = {1, 0, 1, 1};
static const uint64_t arr_u64[] = {UINT64_MAX, 0};
static const int64_t arr_i64[] = {INT64_MIN, INT64_MAX};
static const double arr_f64[] = {3.141592653589793, -1e-300};

static const char nul_str[] = {'a', '\0', 'b', '\0'}; /* a string with NUL bytes */

#define STRV(p, n)                                                                                 \
    {                                                                                              \
        .type = MQ_GGUF_STRING, .str = {.len = (n), .ptr = (p) }                                   \
    }
#define ARRV(et, p, cnt)                                                                           \
    {                                                                                              \
        .type = MQ_GGUF_ARRAY, .arr = {.type = (et), .n = (cnt), .data = (p) }                     \
    }
#define ITEMSV(et, p, cnt)                                                                         \
    {                                                                                              \
        .type = MQ_GGUF_ARRAY, .arr = {.type = (et), .n = (cnt), .items = (p) }                    \
    }
#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct mq_gguf_value strs[] = {STRV("tok", 3), STRV(nul_str, 4), STRV("", 0)};
static const struct mq_gguf_value inner_i32[] = {ARRV(MQ_GGUF_INT32, arr_i32, 2),
                                                 ARRV(MQ_GGUF_INT32, arr_i32 + 2, 1),
                                                 ARRV(MQ_GGUF_INT32, NULL, 0)};
static const struct mq_gguf_value inner_str[] = {ITEMSV(MQ_GGUF_STRING, strs, 3),
                                                 ITEMSV(MQ_GGUF_STRING, strs + 1, 1)};
static const struct mq_gguf_value mid_str[] = {ITEMSV(MQ_GGUF_ARRAY, inner_str, 2),
                                               ITEMSV(MQ_GGUF_ARRAY, NULL, 0)};

struct kv_case {
    const char *key;
    struct mq_gguf_value v;
};

static const struct kv_case kv_cases[] = {
    {"t.u8", {.type = MQ_GGUF_UINT8, .u8 = 255}},
    {"t.i8", {.type = MQ_GGUF_INT8, .i8 = -128}},
    {"t.u16", {.type = MQ_GGUF_UINT16, .u16 = 65535}},
    {"t.i16", {.type = MQ_GGUF_INT16, .i16 = -32768}},
    {"t.u32", {.type = MQ_GGUF_UINT32, .u32 = 0xDEADBEEFu}},
    {"t.i32", {.type = MQ_GGUF_INT32, .i32 = INT32_MIN}},
    {"t.f32", {.type = MQ_GGUF_FLOAT32, .f32 = -1.5f}},
    {"t.bool1", {.type = MQ_GGUF_BOOL, .b = true}},
    {"t.bool0", {.type = MQ_GGUF_BOOL, .b = false}},
    {"t.str", STRV("llama", 5)},
    {"t.str.nul", STRV(nul_str, 4)},
    {"t.str.empty", STRV("", 0)},
    {"t.u64", {.type = MQ_GGUF_UINT64, .u64 = UINT64_MAX}},
    {"t.i64", {.type = MQ_GGUF_INT64, .i64 = INT64_MIN}},
    {"t.f64", {.type = MQ_GGUF_FLOAT64, .f64 = 2.718281828459045}},
    {"a.u8", ARRV(MQ_GGUF_UINT8, arr_u8, N(arr_u8))},
    {"a.i8", ARRV(MQ_GGUF_INT8, arr_i8, N(arr_i8))},
    {"a.u16", ARRV(MQ_GGUF_UINT16, arr_u16, N(arr_u16))},
    {"a.i16", ARRV(MQ_GGUF_INT16, arr_i16, N(arr_i16))},
    {"a.u32", ARRV(MQ_GGUF_UINT32, arr_u32, N(arr_u32))},
    {"a.i32", ARRV(MQ_GGUF_INT32, arr_i32, N(arr_i32))},
    {"a.f32", ARRV(MQ_GGUF_FLOAT32, arr_f32, N(arr_f32))},
    {"a.bool", ARRV(MQ_GGUF_BOOL, arr_bool, N(arr_bool))},
    {"a.u64", ARRV(MQ_GGUF_UINT64, arr_u64, N(arr_u64))},
    {"a.i64", ARRV(MQ_GGUF_INT64, arr_i64, N(arr_i64))},
    {"a.f64", ARRV(MQ_GGUF_FLOAT64, arr_f64, N(arr_f64))},
    {"a.empty", ARRV(MQ_GGUF_UINT32, NULL, 0)},
    {"a.str", ITEMSV(MQ_GGUF_STRING, strs, N(strs))},
    {"a.arr.i32", ITEMSV(MQ_GGUF_ARRAY, inner_i32, N(inner_i32))},
    {"a.arr.arr.str", ITEMSV(MQ_GGUF_ARRAY, mid_str, N(mid_str))},
};

/* A chain of `depth` nested arrays around one u32: [[[...[7]...]]]. */
struct deep {
    struct mq_gguf_value levels[MQ_GGUF_MAX_ARRAY_DEPTH + 2];
};

static const uint32_t seven = 7;

static void deep_build(struct deep *d, int depth)
{
    d->levels[depth - 1] = (struct mq_gguf_value)ARRV(MQ_GGUF_UINT32, &seven, 1);
    for (int i = depth - 2; i >= 0; i--)
        d->levels[i] = (struct mq_gguf_value)ITEMSV(MQ_GGUF_ARRAY, &d->levels[i + 1], 1);
}

struct tensor_case {
    const char *name;
    enum mq_dtype type;
    uint32_t n_dims;
    int64_t ne[4];
};

static const struct tensor_case tensor_cases[] = {
    {"t.f32", MQ_DTYPE_F32, 1, {7, 1, 1, 1}},
    {"t.f16", MQ_DTYPE_F16, 2, {5, 3, 1, 1}},
    {"t.bf16", MQ_DTYPE_BF16, 3, {3, 2, 2, 1}},
    {"blk.0.attn_q.weight", MQ_DTYPE_Q8_0, 2, {64, 3, 1, 1}},
    {"t.q4_0", MQ_DTYPE_Q4_0, 4, {32, 2, 2, 2}},
    {"t.i32", MQ_DTYPE_I32, 4, {9, 1, 1, 1}},
};

struct tensor_data {
    uint8_t *bytes[N(tensor_cases)];
    size_t nbytes[N(tensor_cases)];
};

static void tensor_data_free(struct tensor_data *td)
{
    for (size_t i = 0; i < N(tensor_cases); i++)
        free(td->bytes[i]);
}

static int tensor_data_make(struct tensor_data *td)
{
    struct t_rng rng = {0x9E3779B97F4A7C15ull};
    memset(td, 0, sizeof(*td));
    for (size_t i = 0; i < N(tensor_cases); i++) {
        const struct tensor_case *tc = &tensor_cases[i];
        size_t row;
        if (mq_dtype_row_bytes(tc->type, tc->ne[0], &row) < 0)
            return -1;
        td->nbytes[i] = row * (size_t)(tc->ne[1] * tc->ne[2] * tc->ne[3]);
        td->bytes[i] = malloc(td->nbytes[i]);
        if (!td->bytes[i])
            return -1;
        for (size_t j = 0; j < td->nbytes[i]; j++)
            td->bytes[i][j] = (uint8_t)(t_rng_next(&rng) >> 56);
    }
    return 0;
}

/* A writer holding every kv case, a depth-8 nesting, a few typed setters and every
 * tensor case. */
static struct mq_gguf_writer *writer_full(const struct tensor_data *td, struct deep *d)
{
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    if (!w)
        return NULL;
    int rc = mq_gguf_writer_set_str(w, "general.architecture", "llama");
    for (size_t i = 0; rc == 0 && i < N(kv_cases); i++) {
        struct mq_gguf_str key = {strlen(kv_cases[i].key), kv_cases[i].key};
        rc = mq_gguf_writer_set_value(w, &key, &kv_cases[i].v);
    }
    deep_build(d, MQ_GGUF_MAX_ARRAY_DEPTH);
    struct mq_gguf_str dkey = {6, "a.deep"};
    if (rc == 0)
        rc = mq_gguf_writer_set_value(w, &dkey, &d->levels[0]);
    /* a key that contains a NUL byte */
    struct mq_gguf_str nkey = {5, "k\0ey"};
    struct mq_gguf_value one = {.type = MQ_GGUF_UINT32, .u32 = 1};
    if (rc == 0)
        rc = mq_gguf_writer_set_value(w, &nkey, &one);
    const char *const toks[] = {"<s>", "</s>", "hello world", ""};
    if (rc == 0)
        rc = mq_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", toks, 4);
    if (rc == 0)
        rc = mq_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MQ_GGUF_INT32, arr_i32, 4);
    if (rc == 0)
        rc = mq_gguf_writer_set_u32(w, "s.u32", 42);
    if (rc == 0)
        rc = mq_gguf_writer_set_i32(w, "s.i32", -42);
    if (rc == 0)
        rc = mq_gguf_writer_set_u64(w, "s.u64", 1ull << 40);
    if (rc == 0)
        rc = mq_gguf_writer_set_f32(w, "s.f32", 0.25f);
    if (rc == 0)
        rc = mq_gguf_writer_set_bool(w, "s.bool", true);
    for (size_t i = 0; rc == 0 && i < N(tensor_cases); i++) {
        const struct tensor_case *tc = &tensor_cases[i];
        rc = mq_gguf_writer_add_tensor(w, tc->name, tc->type, tc->n_dims, tc->ne, td->bytes[i]);
    }
    if (rc < 0) {
        mq_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

/* Writes the full file to tmpdir/name. */
static int write_full(const char *name, char *path, size_t size)
{
    struct tensor_data td;
    struct deep d;
    int rc = -1;
    tpath(path, size, name);
    if (tensor_data_make(&td) == 0) {
        struct mq_gguf_writer *w = writer_full(&td, &d);
        rc = w ? mq_gguf_writer_write(w, path) : -1;
        mq_gguf_writer_free(w);
    }
    tensor_data_free(&td);
    return rc;
}

/* ---- round trips --------------------------------------------------------------------- */

static int test_roundtrip_values(void)
{
    struct tensor_data td;
    struct deep d;
    char path[4096];
    tpath(path, sizeof(path), "values.gguf");
    T_CHECK(tensor_data_make(&td) == 0);
    struct mq_gguf_writer *w = writer_full(&td, &d);
    T_CHECK(w != NULL);
    T_CHECK(mq_gguf_writer_write(w, path) == 0);
    mq_gguf_writer_free(w);
    tensor_data_free(&td);

    struct mq_gguf *g;
    T_CHECK(mq_gguf_open(path, &g) == 0);
    T_CHECK(g->version == 3);
    T_CHECK(g->alignment == MQ_GGUF_DEFAULT_ALIGNMENT);
    /* keys in insertion order: general.architecture, the cases, a.deep, k\0ey, ... */
    T_CHECK(g->n_kv == 1 + N(kv_cases) + 2 + 7);
    for (size_t i = 0; i < N(kv_cases); i++) {
        const struct mq_gguf_kv *kv = &g->kv[1 + i];
        T_CHECK_MSG(kv->key.len == strlen(kv_cases[i].key) &&
                        memcmp(kv->key.ptr, kv_cases[i].key, kv->key.len) == 0,
                    "key %zu", i);
        T_CHECK_MSG(value_eq(&kv->value, &kv_cases[i].v), "value of '%s'", kv_cases[i].key);
        T_CHECK(mq_gguf_find_kv(g, kv_cases[i].key) == kv);
    }
    deep_build(&d, MQ_GGUF_MAX_ARRAY_DEPTH);
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, "a.deep");
    T_CHECK(kv && value_eq(&kv->value, &d.levels[0]));
    kv = &g->kv[1 + N(kv_cases) + 1];
    T_CHECK(kv->key.len == 5 && memcmp(kv->key.ptr, "k\0ey", 5) == 0);
    T_CHECK(mq_gguf_find_kv(g, "k") == NULL);

    const struct mq_gguf_value *toks;
    T_CHECK(mq_gguf_get_arr(g, "tokenizer.ggml.tokens", MQ_GGUF_STRING, &toks) == 0);
    T_CHECK(toks->arr.n == 4 && toks->arr.data == NULL && toks->arr.items != NULL);
    T_CHECK(toks->arr.items[2].str.len == 11 &&
            memcmp(toks->arr.items[2].str.ptr, "hello world", 11) == 0);
    T_CHECK(toks->arr.items[3].str.len == 0);
    const struct mq_gguf_value *types;
    T_CHECK(mq_gguf_get_arr(g, "tokenizer.ggml.token_type", MQ_GGUF_INT32, &types) == 0);
    T_CHECK(types->arr.n == 4 && types->arr.items == NULL);
    for (uint64_t i = 0; i < 4; i++)
        T_CHECK(mq_gguf_arr_i64(types, i) == arr_i32[i]);
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f32;
    bool b;
    T_CHECK(mq_gguf_get_u32(g, "s.u32", &u32) == 0 && u32 == 42);
    T_CHECK(mq_gguf_get_i64(g, "s.i32", &i64) == 0 && i64 == -42);
    T_CHECK(mq_gguf_get_u64(g, "s.u64", &u64) == 0 && u64 == 1ull << 40);
    T_CHECK(mq_gguf_get_f32(g, "s.f32", &f32) == 0 && f32 == 0.25f);
    T_CHECK(mq_gguf_get_bool(g, "s.bool", &b) == 0 && b);
    mq_gguf_close(g);
    return T_PASS;
}

static int test_roundtrip_tensors(void)
{
    struct tensor_data td;
    struct deep d;
    char path[4096];
    tpath(path, sizeof(path), "tensors.gguf");
    T_CHECK(tensor_data_make(&td) == 0);
    struct mq_gguf_writer *w = writer_full(&td, &d);
    T_CHECK(w != NULL);
    T_CHECK(mq_gguf_writer_write(w, path) == 0);
    mq_gguf_writer_free(w);

    struct mq_gguf *g;
    int rc = mq_gguf_open(path, &g);
    if (rc < 0)
        tensor_data_free(&td);
    T_CHECK(rc == 0);
    T_CHECK(g->n_tensors == N(tensor_cases));
    T_CHECK(g->data_offset % g->alignment == 0);
    uint64_t expect_offset = 0;
    for (size_t i = 0; i < N(tensor_cases); i++) {
        const struct tensor_case *tc = &tensor_cases[i];
        const struct mq_gguf_tensor *t = &g->tensors[i];
        T_CHECK(mq_gguf_find_tensor(g, tc->name) == t);
        T_CHECK_MSG(strcmp(t->name, tc->name) == 0, "%s", t->name);
        T_CHECK(t->type == tc->type);
        T_CHECK(t->ggml_type == mq_dtype_get(tc->type)->ggml_type);
        T_CHECK(t->n_dims == tc->n_dims);
        for (int k = 0; k < 4; k++)
            T_CHECK(t->ne[k] == tc->ne[k]);
        T_CHECK(t->n_elems == tc->ne[0] * tc->ne[1] * tc->ne[2] * tc->ne[3]);
        T_CHECK(t->nbytes == td.nbytes[i]);
        /* llama.cpp's layout: consecutive, each at the next aligned offset */
        T_CHECK(t->offset == expect_offset);
        expect_offset = (t->offset + t->nbytes + g->alignment - 1) / g->alignment * g->alignment;
        T_CHECK((const uint8_t *)t->data == g->base + g->data_offset + t->offset);
        T_CHECK(memcmp(t->data, td.bytes[i], t->nbytes) == 0);
    }
    /* padded after the last tensor too */
    T_CHECK(g->file_size == g->data_offset + expect_offset);
    T_CHECK(mq_gguf_find_tensor(g, "nope") == NULL);
    mq_gguf_close(g);
    tensor_data_free(&td);
    return T_PASS;
}

/* Reads path, writes everything back through set_value/add_tensor to path2. */
static int rewrite(const char *path, const char *path2)
{
    struct mq_gguf *g;
    int rc = mq_gguf_open(path, &g);
    if (rc < 0)
        return rc;
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    rc = w ? 0 : -1;
    for (uint64_t i = 0; rc == 0 && i < g->n_kv; i++)
        rc = mq_gguf_writer_set_value(w, &g->kv[i].key, &g->kv[i].value);
    for (uint64_t i = 0; rc == 0 && i < g->n_tensors; i++) {
        const struct mq_gguf_tensor *t = &g->tensors[i];
        rc = mq_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
    }
    if (rc == 0)
        rc = mq_gguf_writer_write(w, path2);
    mq_gguf_writer_free(w);
    mq_gguf_close(g);
    return rc;
}

static int test_rewrite_identical(void)
{
    char path[4096], path2[4096];
    T_CHECK(write_full("orig.gguf", path, sizeof(path)) == 0);
    tpath(path2, sizeof(path2), "rewritten.gguf");
    T_CHECK(rewrite(path, path2) == 0);
    size_t n1 = 0, n2 = 0;
    uint8_t *a = slurp(path, &n1), *b = slurp(path2, &n2);
    bool same = a && b && n1 == n2 && memcmp(a, b, n1) == 0;
    free(a);
    free(b);
    T_CHECK_MSG(same, "%zu vs %zu bytes", n1, n2);
    return T_PASS;
}

/* The bundled model, written by scripts/train-tinyllm.py's own writer, which lays tensors
 * out the same way but does not pad after the last one. */
static int test_rewrite_python_file(void)
{
    const char *src = "examples/tinyllm/tinyllm.gguf";
    T_SKIP_IF(access(src, R_OK) != 0, "no %s: run scripts/train-tinyllm.py", src);
    char path2[4096];
    tpath(path2, sizeof(path2), "tinyllm-rewritten.gguf");
    T_CHECK(rewrite(src, path2) == 0);
    size_t n1 = 0, n2 = 0;
    uint8_t *a = slurp(src, &n1), *b = slurp(path2, &n2);
    bool ok =
        a && b && n2 >= n1 && n2 - n1 < MQ_GGUF_DEFAULT_ALIGNMENT * 8 && memcmp(a, b, n1) == 0;
    for (size_t i = n1; ok && i < n2; i++)
        ok = b[i] == 0;
    free(a);
    free(b);
    T_CHECK_MSG(ok, "%zu vs %zu bytes", n1, n2);
    return T_PASS;
}

/* ---- getters ------------------------------------------------------------------------- */

static int test_getters(void)
{
    static const uint64_t big[] = {UINT64_MAX};
    static const float fl[] = {2.75f, -2.75f, NAN};
    static const int8_t small[] = {-3};
    static const uint8_t bl[] = {1, 0};
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    T_CHECK(w);
    struct mq_gguf_str k;
    struct mq_gguf_value v;
#define SETV(key, ...)                                                                             \
    do {                                                                                           \
        k = (struct mq_gguf_str){strlen(key), key};                                                \
        v = (struct mq_gguf_value)__VA_ARGS__;                                                     \
        T_CHECK(mq_gguf_writer_set_value(w, &k, &v) == 0);                                         \
    } while (0)
    SETV("u8", {.type = MQ_GGUF_UINT8, .u8 = 200});
    SETV("i32neg", {.type = MQ_GGUF_INT32, .i32 = -1});
    SETV("u64big", {.type = MQ_GGUF_UINT64, .u64 = 1ull << 40});
    SETV("u64max", {.type = MQ_GGUF_UINT64, .u64 = UINT64_MAX});
    SETV("i64neg", {.type = MQ_GGUF_INT64, .i64 = -5});
    SETV("i16", {.type = MQ_GGUF_INT16, .i16 = 300});
    SETV("f32", {.type = MQ_GGUF_FLOAT32, .f32 = 1.5f});
    SETV("f64", {.type = MQ_GGUF_FLOAT64, .f64 = 2.25});
    SETV("f64huge", {.type = MQ_GGUF_FLOAT64, .f64 = 1e300});
    SETV("bool", {.type = MQ_GGUF_BOOL, .b = true});
    SETV("str", STRV("llama", 5));
    SETV("strnul", STRV(nul_str, 4));
    SETV("a.u64", ARRV(MQ_GGUF_UINT64, big, 1));
    SETV("a.f32", ARRV(MQ_GGUF_FLOAT32, fl, 3));
    SETV("a.i8", ARRV(MQ_GGUF_INT8, small, 1));
    SETV("a.bool", ARRV(MQ_GGUF_BOOL, bl, 2));
    SETV("a.str", ITEMSV(MQ_GGUF_STRING, strs, 3));
#undef SETV
    char path[4096];
    tpath(path, sizeof(path), "getters.gguf");
    int rc = mq_gguf_writer_write(w, path);
    mq_gguf_writer_free(w);
    T_CHECK(rc == 0);
    struct mq_gguf *g;
    T_CHECK(mq_gguf_open(path, &g) == 0);

    uint32_t u32 = 0;
    uint64_t u64 = 0;
    int64_t i64 = 0;
    float f = 0;
    bool b = false;
    char buf[16];
    T_CHECK(mq_gguf_get_u32(g, "u8", &u32) == 0 && u32 == 200);
    T_CHECK(mq_gguf_get_u32(g, "i16", &u32) == 0 && u32 == 300);
    T_CHECK(mq_gguf_get_u64(g, "u64big", &u64) == 0 && u64 == 1ull << 40);
    T_CHECK(mq_gguf_get_i64(g, "i64neg", &i64) == 0 && i64 == -5);
    T_CHECK(mq_gguf_get_i64(g, "u8", &i64) == 0 && i64 == 200);
    T_CHECK(mq_gguf_get_u64(g, "u64max", &u64) == 0 && u64 == UINT64_MAX);
    T_CHECK(mq_gguf_get_f32(g, "f32", &f) == 0 && f == 1.5f);
    T_CHECK(mq_gguf_get_f32(g, "f64", &f) == 0 && f == 2.25f);
    T_CHECK(mq_gguf_get_bool(g, "bool", &b) == 0 && b);
    T_CHECK(mq_gguf_get_str(g, "str", buf, sizeof(buf)) == 0 && strcmp(buf, "llama") == 0);
    T_CHECK(mq_gguf_get_str(g, "str", buf, 6) == 0 && strcmp(buf, "llama") == 0);

    /* absent keys: silent */
    struct t_capture c;
    char err[4096];
    T_CHECK(t_capture_begin(&c) == 0);
    int r1 = mq_gguf_get_u32(g, "absent", &u32);
    int r2 = mq_gguf_get_str(g, "absent", buf, sizeof(buf));
    const struct mq_gguf_value *arr = NULL;
    int r3 = mq_gguf_get_arr(g, "absent", MQ_GGUF_UINT8, &arr);
    t_capture_end(&c, err, sizeof(err));
    T_CHECK(r1 == MQ_ENOTFOUND && r2 == MQ_ENOTFOUND && r3 == MQ_ENOTFOUND);
    T_CHECK_MSG(err[0] == '\0', "printed '%s'", err);

    /* mismatches and values that do not fit: one line each, naming key and types */
    struct bad_case {
        int rc;
        const char *want;
    } bad[13];
    T_CHECK(t_capture_begin(&c) == 0);
    int n = 0;
    bad[n++] = (struct bad_case){mq_gguf_get_u32(g, "i32neg", &u32),
                                 "key 'i32neg' is i32 -1, which does not fit in u32"};
    bad[n++] = (struct bad_case){mq_gguf_get_u32(g, "u64big", &u32), "does not fit in u32"};
    bad[n++] = (struct bad_case){mq_gguf_get_u64(g, "i64neg", &u64), "does not fit in u64"};
    bad[n++] = (struct bad_case){mq_gguf_get_i64(g, "u64max", &i64), "does not fit in i64"};
    bad[n++] = (struct bad_case){mq_gguf_get_f32(g, "f64huge", &f), "does not fit in f32"};
    bad[n++] = (struct bad_case){mq_gguf_get_f32(g, "u8", &f), "key 'u8' is u8, want f32"};
    bad[n++] = (struct bad_case){mq_gguf_get_bool(g, "u8", &b), "key 'u8' is u8, want bool"};
    bad[n++] = (struct bad_case){mq_gguf_get_u32(g, "str", &u32), "key 'str' is str, want u32"};
    bad[n++] =
        (struct bad_case){mq_gguf_get_str(g, "u8", buf, sizeof(buf)), "key 'u8' is u8, want str"};
    bad[n++] = (struct bad_case){mq_gguf_get_arr(g, "a.u64", MQ_GGUF_INT32, &arr),
                                 "key 'a.u64' is arr of u64, want arr of i32"};
    bad[n++] = (struct bad_case){mq_gguf_get_arr(g, "u8", MQ_GGUF_UINT8, &arr),
                                 "key 'u8' is u8, want arr of u8"};
    bad[n++] =
        (struct bad_case){mq_gguf_get_str(g, "str", buf, 5), "string of 5 bytes does not fit"};
    bad[n++] = (struct bad_case){mq_gguf_get_str(g, "strnul", buf, sizeof(buf)), "contains a NUL"};
    t_capture_end(&c, err, sizeof(err));
    T_CHECK_MSG(count_lines(err) == n, "%d lines for %d errors:\n%s", count_lines(err), n, err);
    char *line = err;
    for (int i = 0; i < n; i++) {
        char *nl = strchr(line, '\n');
        T_CHECK(nl);
        *nl = '\0';
        int want_rc = i >= 11 ? MQ_ERANGE : MQ_EFORMAT;
        T_CHECK_MSG(bad[i].rc == want_rc, "case %d: rc %d", i, bad[i].rc);
        T_CHECK_MSG(strncmp(line, "mixq: error: '", 14) == 0 && strstr(line, path) &&
                        strstr(line, bad[i].want),
                    "case %d: '%s' lacks '%s'", i, line, bad[i].want);
        line = nl + 1;
    }
    T_CHECK(u32 == 300 && b); /* failed getters leave outputs alone */

    /* scalar array elements as int64/double */
    T_CHECK(mq_gguf_get_arr(g, "a.u64", MQ_GGUF_UINT64, &arr) == 0);
    T_CHECK(mq_gguf_arr_i64(arr, 0) == INT64_MAX); /* saturates */
    T_CHECK(mq_gguf_arr_f64(arr, 0) == 18446744073709551615.0);
    T_CHECK(mq_gguf_get_arr(g, "a.f32", MQ_GGUF_FLOAT32, &arr) == 0);
    T_CHECK(mq_gguf_arr_i64(arr, 0) == 2 && mq_gguf_arr_i64(arr, 1) == -2);
    T_CHECK(mq_gguf_arr_i64(arr, 2) == 0 && isnan(mq_gguf_arr_f64(arr, 2)));
    T_CHECK(mq_gguf_arr_f64(arr, 1) == -2.75);
    T_CHECK(mq_gguf_get_arr(g, "a.i8", MQ_GGUF_INT8, &arr) == 0);
    T_CHECK(mq_gguf_arr_i64(arr, 0) == -3 && mq_gguf_arr_f64(arr, 0) == -3.0);
    T_CHECK(mq_gguf_get_arr(g, "a.bool", MQ_GGUF_BOOL, &arr) == 0);
    T_CHECK(mq_gguf_arr_i64(arr, 0) == 1 && mq_gguf_arr_i64(arr, 1) == 0);
    T_CHECK(mq_gguf_get_arr(g, "a.str", MQ_GGUF_STRING, &arr) == 0 && arr->arr.n == 3);

    T_CHECK(strcmp(mq_gguf_type_name(MQ_GGUF_STRING), "str") == 0);
    T_CHECK(strcmp(mq_gguf_type_name(MQ_GGUF_FLOAT64), "f64") == 0);
    T_CHECK(strcmp(mq_gguf_type_name((enum mq_gguf_type)99), "unknown") == 0);
    mq_gguf_close(g);
    return T_PASS;
}

/* ---- writer behaviour ---------------------------------------------------------------- */

static int test_alignment(void)
{
    static const float x[3] = {1, 2, 3};
    static const float y[17] = {4};
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    T_CHECK(w);
    struct t_capture c;
    char err[2048];
    T_CHECK(mq_gguf_writer_set_u32(w, "general.alignment", 64) == 0);
    T_CHECK(t_capture_begin(&c) == 0);
    int r0 = mq_gguf_writer_set_u32(w, "general.alignment", 0);
    int r3 = mq_gguf_writer_set_u32(w, "general.alignment", 3);
    int rs = mq_gguf_writer_set_str(w, "general.alignment", "64");
    int ru = mq_gguf_writer_set_u64(w, "general.alignment", 64);
    t_capture_end(&c, err, sizeof(err));
    T_CHECK(r0 == MQ_EINVAL && r3 == MQ_EINVAL && rs == MQ_EINVAL && ru == MQ_EINVAL);
    T_CHECK_MSG(count_lines(err) == 4, "%s", err);
    int64_t ne1 = 3, ne2 = 17;
    T_CHECK(mq_gguf_writer_add_tensor(w, "x", MQ_DTYPE_F32, 1, &ne1, x) == 0);
    T_CHECK(mq_gguf_writer_add_tensor(w, "y", MQ_DTYPE_F32, 1, &ne2, y) == 0);
    T_CHECK(mq_gguf_writer_add_tensor(w, "z", MQ_DTYPE_F32, 1, &ne1, x) == 0);
    char path[4096];
    tpath(path, sizeof(path), "align64.gguf");
    int rc = mq_gguf_writer_write(w, path);
    mq_gguf_writer_free(w);
    T_CHECK(rc == 0);
    struct mq_gguf *g;
    T_CHECK(mq_gguf_open(path, &g) == 0);
    T_CHECK(g->alignment == 64);
    T_CHECK(g->data_offset % 64 == 0);
    T_CHECK(g->tensors[0].offset == 0 && g->tensors[1].offset == 64 && g->tensors[2].offset == 192);
    T_CHECK(g->file_size == g->data_offset + 256);
    T_CHECK(memcmp(g->tensors[2].data, x, sizeof(x)) == 0);
    T_CHECK(memcmp(g->tensors[1].data, y, sizeof(y)) == 0);
    /* the padding is zeros */
    const uint8_t *p = g->tensors[0].data;
    for (int i = 12; i < 64; i++)
        T_CHECK(p[i] == 0);
    uint32_t a;
    T_CHECK(mq_gguf_get_u32(g, "general.alignment", &a) == 0 && a == 64);
    mq_gguf_close(g);
    return T_PASS;
}

static int test_writer_api(void)
{
    static const float x[64] = {0};
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    T_CHECK(w);
    /* replacing keeps the position, removing closes the gap */
    T_CHECK(mq_gguf_writer_set_u32(w, "a", 1) == 0);
    T_CHECK(mq_gguf_writer_set_u32(w, "b", 2) == 0);
    T_CHECK(mq_gguf_writer_set_u32(w, "c", 3) == 0);
    T_CHECK(mq_gguf_writer_set_str(w, "a", "replaced") == 0);
    mq_gguf_writer_remove(w, "b");
    mq_gguf_writer_remove(w, "not there");

    struct t_capture c;
    char err[4096];
    int64_t ne[4] = {33, 1, 1, 1}, ne0[4] = {0, 1, 1, 1}, neg[4] = {32, -1, 1, 1};
    int64_t ovf[4] = {1ll << 32, 1ll << 32, 1, 1}, ok[4] = {32, 2, 1, 1};
    char longname[MQ_GGUF_MAX_NAME + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const uint8_t bad_bool[] = {0, 2};
    struct mq_gguf_str k = {3, "bad"};
    struct mq_gguf_value vb = ARRV(MQ_GGUF_BOOL, bad_bool, 2);
    struct mq_gguf_value vt = {.type = (enum mq_gguf_type)13};
    struct mq_gguf_value vmixed =
        ITEMSV(MQ_GGUF_STRING, inner_i32, 1); /* items of the wrong type */
    struct deep d;
    deep_build(&d, MQ_GGUF_MAX_ARRAY_DEPTH + 1);
    T_CHECK(mq_gguf_writer_add_tensor(w, "t", MQ_DTYPE_Q8_0, 2, ok, x) == 0);
    T_CHECK(t_capture_begin(&c) == 0);
    int rcs[] = {
        mq_gguf_writer_add_tensor(w, "t", MQ_DTYPE_F32, 1, ok, x),      /* duplicate */
        mq_gguf_writer_add_tensor(w, "u", MQ_DTYPE_Q8_0, 1, ne, x),     /* 33 % 32 */
        mq_gguf_writer_add_tensor(w, "u", MQ_DTYPE_F32, 1, ne0, x),     /* ne 0 */
        mq_gguf_writer_add_tensor(w, "u", MQ_DTYPE_F32, 2, neg, x),     /* ne -1 */
        mq_gguf_writer_add_tensor(w, "u", MQ_DTYPE_F32, 4, ovf, x),     /* overflow */
        mq_gguf_writer_add_tensor(w, "u", MQ_DTYPE_F32, 0, ok, x),      /* n_dims 0 */
        mq_gguf_writer_add_tensor(w, "u", MQ_DTYPE_F32, 5, ok, x),      /* n_dims 5 */
        mq_gguf_writer_add_tensor(w, longname, MQ_DTYPE_F32, 1, ok, x), /* name too long */
        mq_gguf_writer_add_tensor(w, "u", MQ_DTYPE_F32, 1, ok, NULL),   /* no data */
        mq_gguf_writer_set_arr(w, "s", MQ_GGUF_STRING, x, 1),           /* not scalar */
        mq_gguf_writer_set_value(w, &k, &vb),                           /* bool 2 */
        mq_gguf_writer_set_value(w, &k, &vt),                           /* unknown type */
        mq_gguf_writer_set_value(w, &k, &vmixed),                       /* wrong items */
        mq_gguf_writer_set_value(w, &k, &d.levels[0]),                  /* 9 levels */
    };
    t_capture_end(&c, err, sizeof(err));
    int n = (int)N(rcs);
    for (int i = 0; i < n; i++)
        T_CHECK_MSG(rcs[i] == MQ_EINVAL, "case %d: %d", i, rcs[i]);
    T_CHECK_MSG(count_lines(err) == n, "%d lines:\n%s", count_lines(err), err);

    char path[4096];
    tpath(path, sizeof(path), "api.gguf");
    int rc = mq_gguf_writer_write(w, path);
    mq_gguf_writer_free(w);
    T_CHECK(rc == 0);
    struct mq_gguf *g;
    T_CHECK(mq_gguf_open(path, &g) == 0);
    T_CHECK(g->n_kv == 2 && g->n_tensors == 1);
    T_CHECK(g->kv[0].key.len == 1 && g->kv[0].key.ptr[0] == 'a');
    T_CHECK(g->kv[0].value.type == MQ_GGUF_STRING && g->kv[0].value.str.len == 8);
    T_CHECK(g->kv[1].key.ptr[0] == 'c' && g->kv[1].value.u32 == 3);
    T_CHECK(g->tensors[0].nbytes == 2 * 34);
    mq_gguf_close(g);
    mq_gguf_writer_free(NULL);
    mq_gguf_close(NULL);
    return T_PASS;
}

static int test_write_failures(void)
{
    static float big[16384];
    char dir[4096], path[4096 + 64];
    struct t_capture c;
    char err[2048];
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    T_CHECK(w);
    int64_t ne = (int64_t)N(big);
    T_CHECK(mq_gguf_writer_set_str(w, "general.name", "big") == 0);
    T_CHECK(mq_gguf_writer_add_tensor(w, "big", MQ_DTYPE_F32, 1, &ne, big) == 0);

    /* a folder that does not exist: an error, nothing created */
    tpath(dir, sizeof(dir), "no-such-dir");
    snprintf(path, sizeof(path), "%s/out.gguf", dir);
    T_CHECK(t_capture_begin(&c) == 0);
    int rc = mq_gguf_writer_write(w, path);
    t_capture_end(&c, err, sizeof(err));
    T_CHECK(rc == MQ_EIO);
    T_CHECK_MSG(count_lines(err) == 1 && strstr(err, "out.gguf"), "%s", err);
    T_CHECK(access(dir, F_OK) != 0);

    /* the destination is a folder: rename fails, the temporary file is removed */
    tpath(dir, sizeof(dir), "wdir");
    T_CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof(path), "%s/dest", dir);
    T_CHECK(mkdir(path, 0755) == 0);
    T_CHECK(t_capture_begin(&c) == 0);
    rc = mq_gguf_writer_write(w, path);
    t_capture_end(&c, err, sizeof(err));
    T_CHECK(rc == MQ_EIO);
    T_CHECK_MSG(count_lines(err) == 1, "%s", err);
    T_CHECK(count_dir_entries(dir) == 1);

    /* a write that fails half-way (file size limit): the existing file is kept as it
     * was and no temporary file remains */
    tpath(dir, sizeof(dir), "wdir2");
    T_CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof(path), "%s/keep.gguf", dir);
    FILE *f = fopen(path, "wb");
    T_CHECK(f);
    T_CHECK(fputs("precious", f) >= 0);
    T_CHECK(fclose(f) == 0);
    struct rlimit old, lim;
    T_CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 4096;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    T_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    T_CHECK(t_capture_begin(&c) == 0);
    rc = mq_gguf_writer_write(w, path);
    t_capture_end(&c, err, sizeof(err));
    int restored = setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    T_CHECK(restored == 0);
    T_CHECK(rc == MQ_EIO);
    T_CHECK_MSG(count_lines(err) == 1 && strstr(err, "cannot write"), "%s", err);
    T_CHECK(count_dir_entries(dir) == 1);
    size_t n = 0;
    uint8_t *got = slurp(path, &n);
    bool kept = got && n == 8 && memcmp(got, "precious", 8) == 0;
    free(got);
    T_CHECK(kept);

    /* and without the limit, the write replaces the file, readable by others */
    T_CHECK(mq_gguf_writer_write(w, path) == 0);
    T_CHECK(count_dir_entries(dir) == 1);
    struct stat st;
    T_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
    mq_gguf_writer_free(w);
    struct mq_gguf *g;
    T_CHECK(mq_gguf_open(path, &g) == 0);
    T_CHECK(g->n_tensors == 1 && g->tensors[0].nbytes == sizeof(big));
    mq_gguf_close(g);
    return T_PASS;
}

/* ---- opening files ------------------------------------------------------------------- */

static int test_open_files(void)
{
    char path[4096];
    struct t_capture c;
    char err[4096];
    struct mq_gguf *g = (struct mq_gguf *)&g; /* must be reset to NULL on failure */
    T_CHECK(t_capture_begin(&c) == 0);
    tpath(path, sizeof(path), "empty.gguf");
    FILE *f = fopen(path, "wb");
    int ok = f != NULL;
    if (f)
        fclose(f);
    int r_empty = mq_gguf_open(path, &g);
    struct mq_gguf *g_empty = g;
    tpath(path, sizeof(path), "magic-only.gguf");
    f = fopen(path, "wb");
    ok &= f != NULL && fputs("GGUF", f) >= 0;
    if (f)
        fclose(f);
    int r_magic = mq_gguf_open(path, &g);
    int r_dir = mq_gguf_open(t_tmpdir(), &g);
    tpath(path, sizeof(path), "does-not-exist.gguf");
    int r_none = mq_gguf_open(path, &g);
    int r_null = mq_gguf_open("/dev/null", &g);
    t_capture_end(&c, err, sizeof(err));
    T_CHECK(ok);
    T_CHECK(r_empty == MQ_EFORMAT && g_empty == NULL);
    T_CHECK(r_magic == MQ_EFORMAT && r_dir == MQ_EIO && r_none == MQ_EIO && r_null == MQ_EIO);
    T_CHECK(g == NULL);
    T_CHECK_MSG(count_lines(err) == 5, "%s", err);
    T_CHECK_MSG(strstr(err, "empty file") && strstr(err, "truncated gguf header") &&
                    strstr(err, "Is a directory") && strstr(err, "No such file"),
                "%s", err);

    T_CHECK(write_full("open.gguf", path, sizeof(path)) == 0);
    T_CHECK(mq_gguf_open(path, &g) == 0);
    T_CHECK(g->mapping != NULL && g->mapping_size == g->file_size);
    mq_gguf_close(g);
    return T_PASS;
}

/* A valid file in memory and the end of its last tensor's data. */
struct sample {
    uint8_t *buf;
    size_t size;
    size_t data_start; /* where the data section starts */
    size_t data_end;   /* end of the last tensor's data */
};

static int sample_make(const char *name, struct sample *s)
{
    char path[4096];
    memset(s, 0, sizeof(*s));
    if (write_full(name, path, sizeof(path)) != 0)
        return -1;
    s->buf = slurp(path, &s->size);
    struct mq_gguf *g;
    if (!s->buf || mq_gguf_open_memory(s->buf, s->size, name, &g) != 0)
        return -1;
    s->data_start = g->data_offset;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        size_t e = g->data_offset + g->tensors[i].offset + g->tensors[i].nbytes;
        s->data_end = e > s->data_end ? e : s->data_end;
    }
    mq_gguf_close(g);
    return 0;
}

/* Opens a copy of buf[0, len) in a heap block of exactly len bytes, so that
 * AddressSanitizer sees any overread; walks everything on success. */
static int open_copy(const uint8_t *buf, size_t len, const char *name)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return MQ_ENOMEM;
    memcpy(copy, buf, len);
    struct mq_gguf *g = NULL;
    int rc = mq_gguf_open_memory(copy, len, name, &g);
    if (rc == 0) {
        touch_all(g);
        mq_gguf_close(g);
    }
    free(copy);
    return rc;
}

static int truncation_child(int cap_fd, void *arg)
{
    const struct sample *s = arg;
    size_t n_fail = 0;
    for (size_t len = 0; len <= s->size; len++) {
        int rc = open_copy(s->buf, len, "trunc.gguf");
        int want = len < s->data_end ? MQ_EFORMAT : MQ_OK;
        T_CHECK_MSG(rc == want, "prefix of %zu bytes (of %zu, data end %zu): rc %d", len, s->size,
                    s->data_end, rc);
        n_fail += rc != 0;
    }
    char *err = cap_read(cap_fd);
    T_CHECK(err);
    int lines = count_lines(err);
    bool prefixed = true;
    for (char *l = err; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        prefixed &= strncmp(l, "mixq: error: 'trunc.gguf': ", 27) == 0;
    free(err);
    T_CHECK(n_fail == s->data_end);
    T_CHECK_MSG((size_t)lines == n_fail, "%d lines for %zu failures", lines, n_fail);
    T_CHECK(prefixed);
    return T_PASS;
}

/* Every prefix of a valid file: those that cut into the metadata or tensor data fail with
 * MQ_EFORMAT and one line; those that only drop trailing padding still open. */
static int test_truncation(void)
{
    struct sample s;
    int rc = sample_make("trunc.gguf", &s);
    if (rc == 0)
        rc = run_isolated("truncation", truncation_child, &s);
    free(s.buf);
    T_CHECK(rc == 0);
    return T_PASS;
}

static int mutation_child(int cap_fd, void *arg)
{
    const struct sample *s = arg;
    static const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x07, 0x08, 0x09, 0x0c, 0x10,
                                          0x1f, 0x20, 0x40, 0x7f, 0x80, 0xfe, 0xff};
    struct t_rng rng = {12345};
    int n_fail = 0, n_ok = 0;
    uint8_t *buf = malloc(s->size);
    T_CHECK(buf);
    for (int it = 0; it < 4000; it++) {
        memcpy(buf, s->buf, s->size);
        int k = 1 + (int)(t_rng_next(&rng) % 4);
        for (int j = 0; j < k; j++) {
            size_t pos = (size_t)(t_rng_next(&rng) % s->data_start); /* the metadata */
            uint64_t r = t_rng_next(&rng);
            buf[pos] = r & 1 ? interesting[(r >> 8) % sizeof(interesting)] : (uint8_t)(r >> 16);
        }
        size_t len = t_rng_next(&rng) % 8 == 0 ? (size_t)(t_rng_next(&rng) % s->size) : s->size;
        int rc = open_copy(buf, len, "mut.gguf");
        T_CHECK_MSG(rc == 0 || rc == MQ_EFORMAT || rc == MQ_EUNSUPPORTED, "iteration %d: rc %d", it,
                    rc);
        n_ok += rc == 0;
        n_fail += rc != 0;
    }
    free(buf);
    char *err = cap_read(cap_fd);
    T_CHECK(err);
    int lines = count_lines(err);
    free(err);
    T_CHECK_MSG(lines == n_fail, "%d lines for %d failures", lines, n_fail);
    T_CHECK(n_ok > 0 && n_fail > 0);
    return T_PASS;
}

/* Random byte mutations of a valid file's metadata (deterministic): each must open, or
 * fail with MQ_EFORMAT/MQ_EUNSUPPORTED and exactly one line. */
static int test_mutations(void)
{
    struct sample s;
    int rc = sample_make("mut.gguf", &s);
    if (rc == 0)
        rc = run_isolated("mutations", mutation_child, &s);
    free(s.buf);
    T_CHECK(rc == 0);
    return T_PASS;
}

/* ---- hand-built hostile files -------------------------------------------------------- */

struct bb {
    uint8_t b[8192];
    size_t n;
};

static void bb_raw(struct bb *x, const void *p, size_t n)
{
    if (x->n + n > sizeof(x->b)) {
        fprintf(stderr, "test buffer overflow\n");
        abort();
    }
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void bb_u8(struct bb *x, uint8_t v)
{
    bb_raw(x, &v, 1);
}

static void bb_u32(struct bb *x, uint32_t v)
{
    uint8_t p[4];
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    bb_raw(x, p, 4);
}

static void bb_u64(struct bb *x, uint64_t v)
{
    uint8_t p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    bb_raw(x, p, 8);
}

static void bb_str(struct bb *x, const char *s)
{
    bb_u64(x, strlen(s));
    bb_raw(x, s, strlen(s));
}

static void bb_zeros(struct bb *x, size_t n)
{
    while (n--)
        bb_u8(x, 0);
}

static void bb_pad(struct bb *x, size_t align)
{
    bb_zeros(x, (align - x->n % align) % align);
}

static void bb_head(struct bb *x, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    x->n = 0;
    bb_raw(x, "GGUF", 4);
    bb_u32(x, version);
    bb_u64(x, n_tensors);
    bb_u64(x, n_kv);
}

static void bb_tinfo(struct bb *x, const char *name, uint32_t n_dims, const uint64_t *ne,
                     uint32_t type, uint64_t offset)
{
    bb_str(x, name);
    bb_u32(x, n_dims);
    for (uint32_t i = 0; i < n_dims; i++)
        bb_u64(x, ne[i]);
    bb_u32(x, type);
    bb_u64(x, offset);
}

/* A file with one key/value "k" of type `type` whose value bytes are `val`. */
static void kv_file(struct bb *x, uint32_t type, const void *val, size_t n)
{
    bb_head(x, 3, 0, 1);
    bb_str(x, "k");
    bb_u32(x, type);
    bb_raw(x, val, n);
}

/* A file with one f32 tensor per info given, then `data` bytes of zeros. */
struct ti {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
    uint64_t offset;
};

static void tensor_file(struct bb *x, const struct ti *t, size_t n, size_t data)
{
    bb_head(x, 3, n, 0);
    for (size_t i = 0; i < n; i++)
        bb_tinfo(x, t[i].name, t[i].n_dims, t[i].ne, t[i].type, t[i].offset);
    bb_pad(x, 32);
    bb_zeros(x, data);
}

struct expect_case {
    const struct bb *x;
    int want_rc;
    const char *want;
    int line;
};

static int expect_child(int cap_fd, void *arg)
{
    const struct expect_case *e = arg;
    int rc = open_copy(e->x->b, e->x->n, "hostile.gguf");
    char *err = cap_read(cap_fd);
    T_CHECK(err);
    bool ok = rc == e->want_rc;
    if (e->want_rc == MQ_OK)
        ok &= err[0] == '\0';
    else
        ok &= count_lines(err) == 1 && strncmp(err, "mixq: error: 'hostile.gguf': ", 29) == 0 &&
              strstr(err, e->want) != NULL;
    if (!ok)
        fprintf(stderr, "    %s:%d: want rc %d and '%s', got rc %d\n", __FILE__, e->line,
                e->want_rc, e->want ? e->want : "", rc);
    free(err);
    return ok ? T_PASS : T_FAIL;
}

/* Opens x's bytes (in a child process, in a heap block of exactly that size) and checks
 * the result: rc, and for failures one line "mixq: error: 'hostile.gguf': ..." that
 * contains want. */
static bool expect(const struct bb *x, int want_rc, const char *want, int line)
{
    struct expect_case e = {x, want_rc, want, line};
    return run_isolated("hostile file", expect_child, &e) == T_PASS;
}

#define EXPECT(x, rc, want) T_CHECK(expect((x), (rc), (want), __LINE__))

static int test_hostile_header(void)
{
    struct bb x;
    x.n = 0;
    EXPECT(&x, MQ_EFORMAT, "empty file");
    bb_raw(&x, "GGUF", 4);
    EXPECT(&x, MQ_EFORMAT, "truncated gguf header");
    x.n = 2;
    EXPECT(&x, MQ_EFORMAT, "truncated gguf header");
    x.n = 0;
    bb_raw(&x, "GGML", 4);
    bb_zeros(&x, 20);
    EXPECT(&x, MQ_EFORMAT, "not a gguf file");
    x.n = 0;
    bb_raw(&x,
           "\x7f"
           "ELF",
           4);
    EXPECT(&x, MQ_EFORMAT, "not a gguf file (starts with '\\x7fELF'");

    bb_head(&x, 3, 0, 0);
    EXPECT(&x, MQ_OK, NULL);
    bb_head(&x, 2, 0, 0);
    EXPECT(&x, MQ_OK, NULL);
    bb_head(&x, 1, 0, 0);
    EXPECT(&x, MQ_EUNSUPPORTED, "version 1 is not supported");
    bb_head(&x, 0x03000000u, 0, 0);
    EXPECT(&x, MQ_EUNSUPPORTED, "big-endian");
    bb_head(&x, 0, 0, 0);
    EXPECT(&x, MQ_EFORMAT, "version 0");
    bb_head(&x, 4, 0, 0);
    EXPECT(&x, MQ_EUNSUPPORTED, "version 4");
    x.n = 16; /* a whole version 1 header has 32-bit counts */
    memcpy(x.b + 4, "\1\0\0\0", 4);
    EXPECT(&x, MQ_EUNSUPPORTED, "version 1 is not supported");
    x.n = 7;
    EXPECT(&x, MQ_EFORMAT, "truncated gguf header: the file has 7 bytes");

    bb_head(&x, 3, 0, 1ull << 63);
    EXPECT(&x, MQ_EFORMAT,
           "header claims 9223372036854775808 key/values, but the remaining 0 bytes");
    bb_head(&x, 3, UINT64_MAX, 0);
    bb_zeros(&x, 100);
    EXPECT(&x, MQ_EFORMAT, "header claims 18446744073709551615 tensors");
    bb_head(&x, 3, 3, 3); /* each count fits alone, not both */
    bb_zeros(&x, 100);
    EXPECT(&x, MQ_EFORMAT, "3 key/values and 3 tensors");
    return T_PASS;
}

static int test_hostile_kv(void)
{
    struct bb x;
    uint8_t v[64] = {0};

    kv_file(&x, MQ_GGUF_UINT32, v, 4);
    EXPECT(&x, MQ_OK, NULL);
    kv_file(&x, MQ_GGUF_UINT32, v, 3);
    EXPECT(&x, MQ_EFORMAT,
           "key 0 ('k'): u32 value at offset 37 runs past the end of the file (40 bytes)");
    kv_file(&x, 13, v, 4);
    EXPECT(&x, MQ_EFORMAT, "key 0 ('k'): unknown value type 13");
    kv_file(&x, 0xFFFFFFFFu, v, 4);
    EXPECT(&x, MQ_EFORMAT, "unknown value type 4294967295");
    v[0] = 2;
    kv_file(&x, MQ_GGUF_BOOL, v, 1);
    EXPECT(&x, MQ_EFORMAT, "bool is 2");
    v[0] = 1;
    kv_file(&x, MQ_GGUF_BOOL, v, 1);
    EXPECT(&x, MQ_OK, NULL);

    /* key and string lengths */
    bb_head(&x, 3, 0, 1);
    bb_u64(&x, 1ull << 62);
    bb_zeros(&x, 20);
    EXPECT(&x, MQ_EFORMAT, "key 0: key of 4611686018427387904 bytes");
    bb_head(&x, 3, 0, 1);
    bb_str(&x, "k");
    bb_u32(&x, MQ_GGUF_STRING);
    bb_u64(&x, 1ull << 62);
    bb_zeros(&x, 8);
    EXPECT(&x, MQ_EFORMAT, "string of 4611686018427387904 bytes");
    bb_head(&x, 3, 0, 1);
    bb_str(&x, "k");
    bb_u32(&x, MQ_GGUF_STRING);
    bb_u64(&x, 9);
    bb_raw(&x, "eight...", 8);
    EXPECT(&x, MQ_EFORMAT, "runs past the end");

    /* arrays */
    bb_head(&x, 3, 0, 1);
    bb_str(&x, "tokenizer.ggml.tokens");
    bb_u32(&x, MQ_GGUF_ARRAY);
    bb_u32(&x, MQ_GGUF_STRING);
    bb_u64(&x, 9999999999ull);
    bb_zeros(&x, 120);
    EXPECT(&x, MQ_EFORMAT,
           "key 0 ('tokenizer.ggml.tokens'): array of 9999999999 strings cannot fit in the "
           "remaining 120 bytes");
    bb_head(&x, 3, 0, 1);
    bb_str(&x, "k");
    bb_u32(&x, MQ_GGUF_ARRAY);
    bb_u32(&x, MQ_GGUF_UINT64);
    bb_u64(&x, 1ull << 61); /* times 8 overflows 64 bits */
    bb_zeros(&x, 64);
    EXPECT(&x, MQ_EFORMAT, "array of 2305843009213693952 u64 values cannot fit");
    bb_head(&x, 3, 0, 1);
    bb_str(&x, "k");
    bb_u32(&x, MQ_GGUF_ARRAY);
    bb_u32(&x, 77);
    bb_u64(&x, 0);
    EXPECT(&x, MQ_EFORMAT, "unknown array element type 77");
    bb_head(&x, 3, 0, 1);
    bb_str(&x, "k");
    bb_u32(&x, MQ_GGUF_ARRAY);
    bb_u32(&x, MQ_GGUF_BOOL);
    bb_u64(&x, 3);
    bb_raw(&x, "\1\0\3", 3);
    EXPECT(&x, MQ_EFORMAT, "key 0 ('k') element [2]: bool is 3");

    /* nesting: 8 levels are fine, 9 and 100 are not */
    for (int depth = 8; depth <= 100; depth += depth == 8 ? 1 : 91) {
        bb_head(&x, 3, 0, 1);
        bb_str(&x, "k");
        bb_u32(&x, MQ_GGUF_ARRAY);
        for (int i = 0; i < depth - 1; i++) {
            bb_u32(&x, MQ_GGUF_ARRAY);
            bb_u64(&x, 1);
        }
        bb_u32(&x, MQ_GGUF_UINT8);
        bb_u64(&x, 1);
        bb_u8(&x, 5);
        if (depth == 8)
            EXPECT(&x, MQ_OK, NULL);
        else
            EXPECT(&x, MQ_EFORMAT,
                   "element [0][0][0][0][0][0][0][0]: arrays nested more than 8 levels deep");
    }
    /* an array of arrays, the second one truncated */
    bb_head(&x, 3, 0, 1);
    bb_str(&x, "k");
    bb_u32(&x, MQ_GGUF_ARRAY);
    bb_u32(&x, MQ_GGUF_ARRAY);
    bb_u64(&x, 2);
    bb_u32(&x, MQ_GGUF_UINT16);
    bb_u64(&x, 1);
    bb_raw(&x, "\1\0", 2);
    bb_u32(&x, MQ_GGUF_UINT16);
    bb_u64(&x, 2);
    bb_raw(&x, "\1\0", 2);
    EXPECT(&x, MQ_EFORMAT,
           "key 0 ('k') element [1]: array of 2 u16 values cannot fit in the remaining 2 bytes");

    /* duplicate keys, the second named */
    bb_head(&x, 3, 0, 3);
    bb_str(&x, "a");
    bb_u32(&x, MQ_GGUF_UINT8);
    bb_u8(&x, 1);
    bb_str(&x, "b");
    bb_u32(&x, MQ_GGUF_UINT8);
    bb_u8(&x, 1);
    bb_str(&x, "a");
    bb_u32(&x, MQ_GGUF_UINT8);
    bb_u8(&x, 1);
    EXPECT(&x, MQ_EFORMAT, "key 2 ('a'): duplicate of key 0");
    /* a key with a newline and binary bytes is escaped in the message */
    bb_head(&x, 3, 0, 1);
    bb_str(&x, "a\nb\x01");
    bb_u32(&x, 99);
    bb_u8(&x, 1);
    bb_zeros(&x, 4);
    EXPECT(&x, MQ_EFORMAT, "key 0 ('a\\x0ab\\x01'): unknown value type 99");

    /* general.alignment */
    static const struct {
        uint32_t type;
        uint32_t value;
        const char *want;
    } al[] = {
        {MQ_GGUF_UINT32, 0, "alignment is 0, want a power of two"},
        {MQ_GGUF_UINT32, 3, "alignment is 3, want a power of two"},
        {MQ_GGUF_UINT64, 32, "alignment has type u64, want u32"},
        {MQ_GGUF_STRING, 0, "alignment has type str, want u32"},
        {MQ_GGUF_UINT32, 64, NULL},
    };
    for (size_t i = 0; i < N(al); i++) {
        bb_head(&x, 3, 0, 1);
        bb_str(&x, "general.alignment");
        bb_u32(&x, al[i].type);
        if (al[i].type == MQ_GGUF_UINT64)
            bb_u64(&x, al[i].value);
        else if (al[i].type == MQ_GGUF_STRING)
            bb_str(&x, "32");
        else
            bb_u32(&x, al[i].value);
        EXPECT(&x, al[i].want ? MQ_EFORMAT : MQ_OK, al[i].want);
    }
    return T_PASS;
}

static int test_hostile_tensors(void)
{
    struct bb x;
    const uint32_t F32 = 0, Q8_0 = 8;
    /* the valid baselines */
    struct ti ok[] = {{"a", 2, {4, 2}, F32, 0}, {"b", 1, {3}, F32, 32}};
    tensor_file(&x, ok, 2, 44);
    EXPECT(&x, MQ_OK, NULL);
    tensor_file(&x, ok, 2, 43);
    EXPECT(&x, MQ_EFORMAT, "tensor 'b': data [160, 172) runs past the end of the file (171 bytes)");

    struct {
        struct ti t[2];
        size_t n, data;
        int rc;
        const char *want;
    } cases[] = {
        {{{"a", 0, {4}, F32, 0}}, 1, 32, MQ_EFORMAT, "tensor 'a': has 0 dimensions, want 1 to 4"},
        {{{"a", 5, {1, 1, 1, 1, 1}, F32, 0}}, 1, 32, MQ_EFORMAT, "has 5 dimensions"},
        {{{"a", 2, {4, 0}, F32, 0}}, 1, 32, MQ_EFORMAT, "dimension 1 is 0"},
        {{{"a", 1, {1ull << 63}, F32, 0}}, 1, 32, MQ_EFORMAT, "dimension 0 is 9223372036854775808"},
        {{{"a", 3, {1ull << 32, 1ull << 31, 2}, F32, 0}},
         1,
         32,
         MQ_EFORMAT,
         "element count overflows int64 at dimension 1"},
        {{{"a", 2, {1ull << 40, 1ull << 22}, F32, 0}},
         1,
         32,
         MQ_EFORMAT,
         "4611686018427387904 f32 elements overflow the size of memory"},
        {{{"a", 1, {4}, F32, 16}},
         1,
         64,
         MQ_EFORMAT,
         "data offset 16 is not a multiple of the alignment 32"},
        {{{"a", 1, {4}, F32, 1ull << 40}}, 1, 32, MQ_EFORMAT, "runs past the end of the file"},
        {{{"a", 1, {4}, F32, UINT64_MAX - 31}}, 1, 32, MQ_EFORMAT, "overflows"},
        {{{"a", 1, {16}, F32, 0}, {"b", 1, {4}, F32, 32}},
         2,
         96,
         MQ_EFORMAT,
         "tensor 'b' data [128, 144) overlaps tensor 'a' data [96, 160)"},
        {{{"a", 1, {4}, F32, 0}, {"a", 1, {4}, F32, 32}},
         2,
         64,
         MQ_EFORMAT,
         "tensors 0 and 1 are both named 'a'"},
        {{{"a", 1, {33}, Q8_0, 0}},
         1,
         64,
         MQ_EFORMAT,
         "q8_0 rows of 33 elements are not a whole number of 32-element blocks"},
        {{{"a", 1, {64}, Q8_0, 0}}, 1, 68, MQ_OK, NULL},
        {{{"blk.0.ffn_down.weight", 2, {256, 2}, 16, 0}},
         1,
         288,
         MQ_EUNSUPPORTED,
         "tensor 'blk.0.ffn_down.weight': has type iq2_xxs (ggml type 16), which mixq does not "
         "read yet"},
        {{{"a", 1, {4}, 99, 0}},
         1,
         32,
         MQ_EUNSUPPORTED,
         "has ggml type 99, which mixq does not know"},
        /* a malformed tensor after an unsupported one: malformed wins */
        {{{"a", 1, {4}, 16, 0}, {"b", 1, {4}, F32, 1ull << 40}},
         2,
         32,
         MQ_EFORMAT,
         "tensor 'b': data"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        tensor_file(&x, cases[i].t, cases[i].n, cases[i].data);
        T_CHECK_MSG(expect(&x, cases[i].rc, cases[i].want, __LINE__), "case %zu", i);
    }

    /* names */
    char name[MQ_GGUF_MAX_NAME + 2];
    memset(name, 'n', sizeof(name));
    name[MQ_GGUF_MAX_NAME] = '\0';
    struct ti t = {name, 1, {4}, F32, 0};
    tensor_file(&x, &t, 1, 32);
    EXPECT(&x, MQ_OK, NULL);
    name[MQ_GGUF_MAX_NAME] = 'n';
    name[MQ_GGUF_MAX_NAME + 1] = '\0';
    tensor_file(&x, &t, 1, 32);
    EXPECT(&x, MQ_EFORMAT,
           "tensor 0: name of 257 bytes at offset 24 is longer than the 256 allowed");
    bb_head(&x, 3, 1, 0);
    bb_u64(&x, 3);
    bb_raw(&x, "a\0b", 3);
    bb_u32(&x, 1);
    bb_u64(&x, 4);
    bb_u32(&x, F32);
    bb_u64(&x, 0);
    bb_pad(&x, 32);
    bb_zeros(&x, 16);
    EXPECT(&x, MQ_EFORMAT, "tensor 'a\\x00b': name at offset 32 contains a NUL byte");

    /* truncated tensor info (long enough to pass the header's count check) */
    struct ti tl = {"abcdefghijklmnopqrstuvwxyz", 2, {4, 2}, F32, 0};
    tensor_file(&x, &tl, 1, 0);
    x.n = 24 + 8 + 26 + 4 + 8 + 2;
    EXPECT(&x, MQ_EFORMAT,
           "tensor 'abcdefghijklmnopqrstuvwxyz': dimension at offset 70 runs past the end of the "
           "file (72 bytes)");

    /* alignment 64 honoured when checking offsets, and a file without tensors may end
     * before its padding */
    bb_head(&x, 3, 1, 1);
    bb_str(&x, "general.alignment");
    bb_u32(&x, MQ_GGUF_UINT32);
    bb_u32(&x, 64);
    bb_tinfo(&x, "a", 1, (const uint64_t[]){4}, F32, 32);
    bb_pad(&x, 64);
    bb_zeros(&x, 64);
    EXPECT(&x, MQ_EFORMAT, "data offset 32 is not a multiple of the alignment 64");
    bb_head(&x, 3, 0, 1);
    bb_str(&x, "general.alignment");
    bb_u32(&x, MQ_GGUF_UINT32);
    bb_u32(&x, 1u << 31);
    EXPECT(&x, MQ_OK, NULL);
    return T_PASS;
}

const struct mq_test gguf_tests[] = {
    {"gguf/roundtrip-values", test_roundtrip_values},
    {"gguf/roundtrip-tensors", test_roundtrip_tensors},
    {"gguf/rewrite-identical", test_rewrite_identical},
    {"gguf/rewrite-python-file", test_rewrite_python_file},
    {"gguf/getters", test_getters},
    {"gguf/alignment", test_alignment},
    {"gguf/writer-api", test_writer_api},
    {"gguf/write-failures", test_write_failures},
    {"gguf/open-files", test_open_files},
    {"gguf/truncation", test_truncation},
    {"gguf/mutations", test_mutations},
    {"gguf/hostile-header", test_hostile_header},
    {"gguf/hostile-kv", test_hostile_kv},
    {"gguf/hostile-tensors", test_hostile_tensors},
    {NULL, NULL},
};
