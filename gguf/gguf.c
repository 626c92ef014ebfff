/* gguf/gguf.c - read and write GGUF files. The contract is in gguf.h.
 *
 * Reading trusts no number in the file. Every read goes through a cursor that checks
 * the bytes are there; every count is checked against the bytes left before anything
 * is allocated for it (each element needs a known minimum number of bytes), so memory
 * use is a small multiple of the file size and parsing time is linear in it. Nested
 * arrays recurse at most MQ_GGUF_MAX_ARRAY_DEPTH levels deep. Errors name the file,
 * the key or tensor, and what is wrong, in one line.
 *
 * The writer serializes each value when it is set (so a value is deep-copied once and
 * replacing it is swapping one buffer) and lays the file out as llama.cpp's gguf writer
 * does: header, key/values, tensor infos, zero padding to the alignment, then each
 * tensor's data followed by zero padding to the alignment (after the last one too).
 * A tensor added with a row callback is produced at write time into one chunk buffer
 * shared by all such tensors, so files larger than memory stream through it.
 */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"

static const uint8_t gguf_magic[4] = {'G', 'G', 'U', 'F'};
#define GGUF_HEADER_BYTES 24 /* magic, u32 version, u64 n_tensors, u64 n_kv */
#define GGUF_VERSION_WRITTEN 3
#define GGUF_ALIGNMENT_KEY "general.alignment"

/* The fewest bytes a key/value and a tensor info can take in a file: an 8-byte key
 * length, a 4-byte type and a 1-byte value; an 8-byte name length, a 4-byte n_dims, one
 * 8-byte dimension, a 4-byte type and an 8-byte offset. */
#define GGUF_MIN_KV_BYTES 13u
#define GGUF_MIN_TENSOR_INFO_BYTES 32u

struct gguf_type_traits {
    const char *name;   /* as llama.cpp's gguf tools print it */
    const char *plural; /* for "array of N <plural>" */
    uint8_t size;       /* bytes of a scalar; 0 for strings and arrays */
    uint8_t min_bytes;  /* fewest bytes one value takes in a file */
};

/* clang-format off */
static const struct gguf_type_traits gguf_types[MQ_GGUF_TYPE_COUNT] = {
    [MQ_GGUF_UINT8]   = {"u8",   "u8 values",  1, 1},
    [MQ_GGUF_INT8]    = {"i8",   "i8 values",  1, 1},
    [MQ_GGUF_UINT16]  = {"u16",  "u16 values", 2, 2},
    [MQ_GGUF_INT16]   = {"i16",  "i16 values", 2, 2},
    [MQ_GGUF_UINT32]  = {"u32",  "u32 values", 4, 4},
    [MQ_GGUF_INT32]   = {"i32",  "i32 values", 4, 4},
    [MQ_GGUF_FLOAT32] = {"f32",  "f32 values", 4, 4},
    [MQ_GGUF_BOOL]    = {"bool", "bools",      1, 1},
    [MQ_GGUF_STRING]  = {"str",  "strings",    0, 8},  /* u64 length */
    [MQ_GGUF_ARRAY]   = {"arr",  "arrays",     0, 12}, /* u32 element type, u64 count */
    [MQ_GGUF_UINT64]  = {"u64",  "u64 values", 8, 8},
    [MQ_GGUF_INT64]   = {"i64",  "i64 values", 8, 8},
    [MQ_GGUF_FLOAT64] = {"f64",  "f64 values", 8, 8},
};
/* clang-format on */

static bool type_is_scalar(enum mq_gguf_type t)
{
    return gguf_types[t].size != 0;
}

/* ggml's type names, so that a file with a type mixq does not read yet says which one.
 * Gaps are numbers ggml never used; the 4-5, 31-33 and 36-38 types were removed from
 * ggml but may be found in old files. */
static const char *const ggml_type_names[] = {
    [0] = "f32",     [1] = "f16",         [2] = "q4_0",        [3] = "q4_1",        [4] = "q4_2",
    [5] = "q4_3",    [6] = "q5_0",        [7] = "q5_1",        [8] = "q8_0",        [9] = "q8_1",
    [10] = "q2_k",   [11] = "q3_k",       [12] = "q4_k",       [13] = "q5_k",       [14] = "q6_k",
    [15] = "q8_k",   [16] = "iq2_xxs",    [17] = "iq2_xs",     [18] = "iq3_xxs",    [19] = "iq1_s",
    [20] = "iq4_nl", [21] = "iq3_s",      [22] = "iq2_s",      [23] = "iq4_xs",     [24] = "i8",
    [25] = "i16",    [26] = "i32",        [27] = "i64",        [28] = "f64",        [29] = "iq1_m",
    [30] = "bf16",   [31] = "q4_0_4_4",   [32] = "q4_0_4_8",   [33] = "q4_0_8_8",   [34] = "tq1_0",
    [35] = "tq2_0",  [36] = "iq4_nl_4_4", [37] = "iq4_nl_4_8", [38] = "iq4_nl_8_8", [39] = "mxfp4", [40] = "nvfp4", [41] = "q1_0", [42] = "q2_0",
};

const char *mq_gguf_type_name(enum mq_gguf_type type)
{
    if ((unsigned)type >= MQ_GGUF_TYPE_COUNT)
        return "unknown";
    return gguf_types[type].name;
}

/* ---- little-endian access ------------------------------------------------------------ */

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

static uint32_t bswap32(uint32_t v)
{
    return (v >> 24) | ((v >> 8) & 0xFF00u) | ((v << 8) & 0xFF0000u) | (v << 24);
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

static bool is_pow2(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* Writes s (len bytes, possibly binary) into out for a message: printable ASCII as is,
 * other bytes as \xNN, cut with "..." beyond about 80 characters. */
static void esc(char *out, size_t size, const void *s, uint64_t len)
{
    const uint8_t *p = s;
    size_t used = 0;
    out[0] = '\0';
    for (uint64_t i = 0; i < len; i++) {
        char tmp[8];
        if (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '\\')
            snprintf(tmp, sizeof(tmp), "%c", p[i]);
        else
            snprintf(tmp, sizeof(tmp), "\\x%02x", p[i]);
        size_t n = strlen(tmp);
        if (used + n + 4 > size || used >= 80) {
            snprintf(out + used, size - used, "...");
            return;
        }
        memcpy(out + used, tmp, n + 1);
        used += n;
    }
}

/* ---- the reader's private state ------------------------------------------------------ */

/* Parsed nested values (items arrays) live in blocks freed together by mq_gguf_close.
 * The same private allocation keeps the file's name for the getters' messages. */
struct arena_block {
    struct arena_block *next;
    max_align_t data[];
};

struct gguf_priv {
    struct arena_block *blocks;
    char name[]; /* NUL-terminated */
};

static void *arena_alloc(struct gguf_priv *priv, size_t n)
{
    if (n > SIZE_MAX - sizeof(struct arena_block))
        return NULL;
    struct arena_block *b = malloc(sizeof(*b) + n);
    if (!b)
        return NULL;
    b->next = priv->blocks;
    priv->blocks = b;
    return b->data;
}

static const char *gguf_name(const struct mq_gguf *g)
{
    const struct gguf_priv *priv = g->arena;
    return priv->name;
}

void mq_gguf_close(struct mq_gguf *g)
{
    if (!g)
        return;
    struct gguf_priv *priv = g->arena;
    if (priv) {
        struct arena_block *b = priv->blocks;
        while (b) {
            struct arena_block *next = b->next;
            free(b);
            b = next;
        }
        free(priv);
    }
    free(g->kv);
    free(g->tensors);
    if (g->mapping)
        munmap(g->mapping, g->mapping_size);
    free(g);
}

/* ---- parsing ------------------------------------------------------------------------- */

struct rd {
    const uint8_t *buf;
    size_t size;
    size_t pos;
    const char *name; /* for messages */
    struct gguf_priv *priv;
};

/* Where a parse error is, for its message: "key 12 ('tokenizer.ggml.tokens') element
 * [3][1]", "tensor 'output.weight'", "tensor 4" (before its name is read), or nothing
 * (the header). */
struct loc {
    const char *what; /* "key", "tensor" or NULL */
    uint64_t index;
    const uint8_t *label; /* key or tensor name; NULL before it is read */
    uint64_t label_len;
    int depth; /* entries of elem in use */
    uint64_t elem[MQ_GGUF_MAX_ARRAY_DEPTH];
};

static void loc_format(const struct loc *l, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!l || !l->what)
        return;
    char label[128];
    size_t used = 0;
    int k;
    if (l->label)
        esc(label, sizeof(label), l->label, l->label_len);
    if (l->label && strcmp(l->what, "tensor") == 0)
        k = snprintf(buf, size, "tensor '%s'", label);
    else if (l->label)
        k = snprintf(buf, size, "%s %llu ('%s')", l->what, (unsigned long long)l->index, label);
    else
        k = snprintf(buf, size, "%s %llu", l->what, (unsigned long long)l->index);
    if (k < 0 || (size_t)k >= size)
        return;
    used = (size_t)k;
    for (int d = 0; d < l->depth; d++) {
        k = snprintf(buf + used, size - used, "%s[%llu]", d == 0 ? " element " : "",
                     (unsigned long long)l->elem[d]);
        if (k < 0 || (size_t)k >= size - used)
            return;
        used += (size_t)k;
    }
    snprintf(buf + used, size - used, ": ");
}

__attribute__((format(printf, 4, 5))) static int rd_fail(const struct rd *r, const struct loc *l,
                                                         int code, const char *fmt, ...)
{
    char where[320], msg[512];
    loc_format(l, where, sizeof(where));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return mq_error(code, "'%s': %s%s", r->name, where, msg);
}

static size_t rd_left(const struct rd *r)
{
    return r->size - r->pos;
}

/* The standard message for a field cut off by the end of the file. */
static int rd_short(const struct rd *r, const struct loc *l, const char *what)
{
    return rd_fail(r, l, MQ_EFORMAT, "%s at offset %zu runs past the end of the file (%zu bytes)",
                   what, r->pos, r->size);
}

static int rd_u32(struct rd *r, const struct loc *l, const char *what, uint32_t *v)
{
    if (rd_left(r) < 4)
        return rd_short(r, l, what);
    *v = le32(r->buf + r->pos);
    r->pos += 4;
    return MQ_OK;
}

static int rd_u64(struct rd *r, const struct loc *l, const char *what, uint64_t *v)
{
    if (rd_left(r) < 8)
        return rd_short(r, l, what);
    *v = le64(r->buf + r->pos);
    r->pos += 8;
    return MQ_OK;
}

/* A GGUF string: u64 length, then the bytes (borrowed from the buffer). */
static int rd_str(struct rd *r, const struct loc *l, const char *what, struct mq_gguf_str *s)
{
    char lenwhat[96];
    snprintf(lenwhat, sizeof(lenwhat), "length of the %s", what);
    int rc = rd_u64(r, l, lenwhat, &s->len);
    if (rc < 0)
        return rc;
    if (s->len > rd_left(r))
        return rd_fail(r, l, MQ_EFORMAT,
                       "%s of %llu bytes at offset %zu runs past the end of the file (%zu bytes)",
                       what, (unsigned long long)s->len, r->pos, r->size);
    s->ptr = (const char *)(r->buf + r->pos);
    r->pos += (size_t)s->len;
    return MQ_OK;
}

static void scalar_decode(enum mq_gguf_type t, const uint8_t *p, struct mq_gguf_value *v)
{
    uint32_t u32;
    uint64_t u64;
    switch (t) {
    case MQ_GGUF_UINT8: v->u8 = p[0]; break;
    case MQ_GGUF_INT8: v->i8 = (int8_t)p[0]; break;
    case MQ_GGUF_UINT16: v->u16 = le16(p); break;
    case MQ_GGUF_INT16: v->i16 = (int16_t)le16(p); break;
    case MQ_GGUF_UINT32: v->u32 = le32(p); break;
    case MQ_GGUF_INT32: v->i32 = (int32_t)le32(p); break;
    case MQ_GGUF_FLOAT32:
        u32 = le32(p);
        memcpy(&v->f32, &u32, 4);
        break;
    case MQ_GGUF_BOOL: v->b = p[0] != 0; break;
    case MQ_GGUF_UINT64: v->u64 = le64(p); break;
    case MQ_GGUF_INT64: v->i64 = (int64_t)le64(p); break;
    case MQ_GGUF_FLOAT64:
        u64 = le64(p);
        memcpy(&v->f64, &u64, 8);
        break;
    default: MQ_ASSERT(!"not a scalar type");
    }
}

static int parse_value(struct rd *r, struct loc *l, enum mq_gguf_type type, int depth,
                       struct mq_gguf_value *v);

static int parse_array(struct rd *r, struct loc *l, int depth, struct mq_gguf_value *v)
{
    if (depth >= MQ_GGUF_MAX_ARRAY_DEPTH)
        return rd_fail(r, l, MQ_EFORMAT, "arrays nested more than %d levels deep at offset %zu",
                       MQ_GGUF_MAX_ARRAY_DEPTH, r->pos);
    uint32_t et;
    int rc = rd_u32(r, l, "array element type", &et);
    if (rc < 0)
        return rc;
    if (et >= MQ_GGUF_TYPE_COUNT)
        return rd_fail(r, l, MQ_EFORMAT, "unknown array element type %u at offset %zu", et,
                       r->pos - 4);
    uint64_t n;
    rc = rd_u64(r, l, "array length", &n);
    if (rc < 0)
        return rc;
    const struct gguf_type_traits *tt = &gguf_types[et];
    if (n > rd_left(r) / tt->min_bytes)
        return rd_fail(r, l, MQ_EFORMAT, "array of %llu %s cannot fit in the remaining %zu bytes",
                       (unsigned long long)n, tt->plural, rd_left(r));
    v->arr.type = (enum mq_gguf_type)et;
    v->arr.n = n;
    v->arr.data = NULL;
    v->arr.items = NULL;
    if (type_is_scalar(v->arr.type)) {
        size_t bytes = (size_t)n * tt->size; /* <= rd_left by the check above */
        const uint8_t *p = r->buf + r->pos;
        if (v->arr.type == MQ_GGUF_BOOL) {
            for (size_t i = 0; i < bytes; i++) {
                if (p[i] > 1) {
                    l->elem[depth] = i;
                    l->depth = depth + 1;
                    return rd_fail(r, l, MQ_EFORMAT, "bool is %u at offset %zu, want 0 or 1", p[i],
                                   r->pos + i);
                }
            }
        }
        v->arr.data = p;
        r->pos += bytes;
        return MQ_OK;
    }
    if (n == 0)
        return MQ_OK;
    if (n > SIZE_MAX / sizeof(struct mq_gguf_value))
        return rd_fail(r, l, MQ_ENOMEM, "array of %llu %s is too large for this machine",
                       (unsigned long long)n, tt->plural);
    struct mq_gguf_value *items = arena_alloc(r->priv, (size_t)n * sizeof(*items));
    if (!items)
        return rd_fail(r, l, MQ_ENOMEM, "out of memory for an array of %llu %s",
                       (unsigned long long)n, tt->plural);
    for (uint64_t i = 0; i < n; i++) {
        l->elem[depth] = i;
        l->depth = depth + 1;
        rc = parse_value(r, l, v->arr.type, depth + 1, &items[i]);
        if (rc < 0)
            return rc;
    }
    l->depth = depth;
    v->arr.items = items;
    return MQ_OK;
}

/* Parses a value of `type` at the cursor; `depth` is the number of arrays around it. */
static int parse_value(struct rd *r, struct loc *l, enum mq_gguf_type type, int depth,
                       struct mq_gguf_value *v)
{
    memset(v, 0, sizeof(*v));
    v->type = type;
    if (type == MQ_GGUF_STRING)
        return rd_str(r, l, "string", &v->str);
    if (type == MQ_GGUF_ARRAY)
        return parse_array(r, l, depth, v);
    const struct gguf_type_traits *tt = &gguf_types[type];
    if (rd_left(r) < tt->size) {
        char what[32];
        snprintf(what, sizeof(what), "%s value", tt->name);
        return rd_short(r, l, what);
    }
    const uint8_t *p = r->buf + r->pos;
    if (type == MQ_GGUF_BOOL && p[0] > 1)
        return rd_fail(r, l, MQ_EFORMAT, "bool is %u at offset %zu, want 0 or 1", p[0], r->pos);
    scalar_decode(type, p, v);
    r->pos += tt->size;
    return MQ_OK;
}

static int parse_kvs(struct rd *r, struct mq_gguf *g)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        struct mq_gguf_kv *kv = &g->kv[i];
        struct loc l = {.what = "key", .index = i};
        int rc = rd_str(r, &l, "key", &kv->key);
        if (rc < 0)
            return rc;
        l.label = (const uint8_t *)kv->key.ptr;
        l.label_len = kv->key.len;
        uint32_t type;
        rc = rd_u32(r, &l, "value type", &type);
        if (rc < 0)
            return rc;
        if (type >= MQ_GGUF_TYPE_COUNT)
            return rd_fail(r, &l, MQ_EFORMAT, "unknown value type %u at offset %zu", type,
                           r->pos - 4);
        rc = parse_value(r, &l, (enum mq_gguf_type)type, 0, &kv->value);
        if (rc < 0)
            return rc;
    }
    return MQ_OK;
}

static int cmp_kv_key(const void *a, const void *b)
{
    const struct mq_gguf_kv *x = *(const struct mq_gguf_kv *const *)a;
    const struct mq_gguf_kv *y = *(const struct mq_gguf_kv *const *)b;
    if (x->key.len != y->key.len)
        return x->key.len < y->key.len ? -1 : 1;
    int c = x->key.len ? memcmp(x->key.ptr, y->key.ptr, (size_t)x->key.len) : 0;
    if (c)
        return c;
    return x < y ? -1 : x > y; /* equal keys in file order, for the message */
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const struct mq_gguf_tensor *x = *(const struct mq_gguf_tensor *const *)a;
    const struct mq_gguf_tensor *y = *(const struct mq_gguf_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x < y ? -1 : x > y;
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const struct mq_gguf_tensor *x = *(const struct mq_gguf_tensor *const *)a;
    const struct mq_gguf_tensor *y = *(const struct mq_gguf_tensor *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Duplicate keys, found by sorting pointers (linear scans would be quadratic in a
 * hostile file's key count). */
static int check_dup_keys(const struct rd *r, const struct mq_gguf *g)
{
    if (g->n_kv < 2)
        return MQ_OK;
    const struct mq_gguf_kv **s = malloc((size_t)g->n_kv * sizeof(*s));
    if (!s)
        return rd_fail(r, NULL, MQ_ENOMEM, "out of memory checking %llu keys",
                       (unsigned long long)g->n_kv);
    for (uint64_t i = 0; i < g->n_kv; i++)
        s[i] = &g->kv[i];
    qsort(s, (size_t)g->n_kv, sizeof(*s), cmp_kv_key);
    int rc = MQ_OK;
    for (uint64_t i = 1; i < g->n_kv; i++) {
        if (s[i]->key.len == s[i - 1]->key.len &&
            (s[i]->key.len == 0 ||
             memcmp(s[i]->key.ptr, s[i - 1]->key.ptr, (size_t)s[i]->key.len) == 0)) {
            struct loc l = {.what = "key",
                            .index = (uint64_t)(s[i] - g->kv),
                            .label = (const uint8_t *)s[i]->key.ptr,
                            .label_len = s[i]->key.len};
            rc = rd_fail(r, &l, MQ_EFORMAT, "duplicate of key %llu",
                         (unsigned long long)(s[i - 1] - g->kv));
            break;
        }
    }
    free(s);
    return rc;
}

static int check_alignment(const struct rd *r, struct mq_gguf *g)
{
    g->alignment = MQ_GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct mq_gguf_kv *kv = &g->kv[i];
        if (kv->key.len != strlen(GGUF_ALIGNMENT_KEY) ||
            memcmp(kv->key.ptr, GGUF_ALIGNMENT_KEY, strlen(GGUF_ALIGNMENT_KEY)) != 0)
            continue;
        struct loc l = {.what = "key",
                        .index = i,
                        .label = (const uint8_t *)kv->key.ptr,
                        .label_len = kv->key.len};
        if (kv->value.type != MQ_GGUF_UINT32)
            return rd_fail(r, &l, MQ_EFORMAT, "alignment has type %s, want u32",
                           mq_gguf_type_name(kv->value.type));
        if (!is_pow2(kv->value.u32))
            return rd_fail(r, &l, MQ_EFORMAT, "alignment is %u, want a power of two",
                           kv->value.u32);
        g->alignment = kv->value.u32;
    }
    return MQ_OK;
}

/* Reads one tensor info. A type mixq does not read sets *unsupported and leaves nbytes
 * 0, so that the rest of the file is still checked before that is reported. */
static int parse_tensor_info(struct rd *r, struct mq_gguf *g, uint64_t i, bool *unsupported)
{
    struct mq_gguf_tensor *t = &g->tensors[i];
    struct loc l = {.what = "tensor", .index = i};
    uint64_t len;
    int rc = rd_u64(r, &l, "length of the name", &len);
    if (rc < 0)
        return rc;
    if (len > MQ_GGUF_MAX_NAME)
        return rd_fail(r, &l, MQ_EFORMAT,
                       "name of %llu bytes at offset %zu is longer than the %d allowed",
                       (unsigned long long)len, r->pos - 8, MQ_GGUF_MAX_NAME);
    if (len > rd_left(r))
        return rd_fail(r, &l, MQ_EFORMAT,
                       "name of %llu bytes at offset %zu runs past the end of the file (%zu bytes)",
                       (unsigned long long)len, r->pos, r->size);
    const uint8_t *name = r->buf + r->pos;
    if (len && memchr(name, 0, (size_t)len)) {
        l.label = name;
        l.label_len = len;
        return rd_fail(r, &l, MQ_EFORMAT, "name at offset %zu contains a NUL byte", r->pos);
    }
    memcpy(t->name, name, (size_t)len);
    t->name[len] = '\0';
    r->pos += (size_t)len;
    l.label = name;
    l.label_len = len;

    rc = rd_u32(r, &l, "number of dimensions", &t->n_dims);
    if (rc < 0)
        return rc;
    if (t->n_dims < 1 || t->n_dims > MQ_GGUF_MAX_DIMS)
        return rd_fail(r, &l, MQ_EFORMAT, "has %u dimensions, want 1 to %d", t->n_dims,
                       MQ_GGUF_MAX_DIMS);
    int64_t n_elems = 1;
    for (uint32_t d = 0; d < MQ_GGUF_MAX_DIMS; d++) {
        if (d >= t->n_dims) {
            t->ne[d] = 1;
            continue;
        }
        uint64_t ne;
        rc = rd_u64(r, &l, "dimension", &ne);
        if (rc < 0)
            return rc;
        if (ne == 0 || ne > INT64_MAX)
            return rd_fail(r, &l, MQ_EFORMAT, "dimension %u is %llu, want 1 to 2^63-1", d,
                           (unsigned long long)ne);
        if (n_elems > INT64_MAX / (int64_t)ne)
            return rd_fail(r, &l, MQ_EFORMAT, "element count overflows int64 at dimension %u", d);
        n_elems *= (int64_t)ne;
        t->ne[d] = (int64_t)ne;
    }
    t->n_elems = n_elems;

    rc = rd_u32(r, &l, "type", &t->ggml_type);
    if (rc < 0)
        return rc;
    rc = rd_u64(r, &l, "data offset field", &t->offset);
    if (rc < 0)
        return rc;
    if (t->offset % g->alignment != 0)
        return rd_fail(r, &l, MQ_EFORMAT, "data offset %llu is not a multiple of the alignment %u",
                       (unsigned long long)t->offset, g->alignment);

    enum mq_dtype dt;
    if (mq_dtype_from_ggml(t->ggml_type, &dt) < 0) {
        *unsupported = true;
        t->nbytes = 0;
        return MQ_OK;
    }
    t->type = dt;
    const struct mq_dtype_traits *tr = mq_dtype_get(dt);
    if (t->ne[0] % tr->block_elems != 0)
        return rd_fail(r, &l, MQ_EFORMAT,
                       "%s rows of %lld elements are not a whole number of %lld-element blocks",
                       tr->name, (long long)t->ne[0], (long long)tr->block_elems);
    uint64_t blocks = (uint64_t)(n_elems / tr->block_elems);
    if (blocks > SIZE_MAX / tr->block_bytes)
        return rd_fail(r, &l, MQ_EFORMAT, "%lld %s elements overflow the size of memory",
                       (long long)n_elems, tr->name);
    t->nbytes = (size_t)blocks * tr->block_bytes;
    return MQ_OK;
}

static const char *ggml_type_name(uint32_t type)
{
    size_t n = sizeof(ggml_type_names) / sizeof(ggml_type_names[0]);
    return type < n ? ggml_type_names[type] : NULL;
}

static int parse_tensors(struct rd *r, struct mq_gguf *g)
{
    bool unsupported = false;
    const struct mq_gguf_tensor **s = NULL;
    int rc = MQ_OK;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        rc = parse_tensor_info(r, g, i, &unsupported);
        if (rc < 0)
            return rc;
    }
    /* the data section starts at the next aligned offset; a file without tensors may end
     * before it (llama.cpp reads such files) */
    g->data_offset = (size_t)align_up(r->pos, g->alignment);
    if (g->n_tensors == 0)
        return MQ_OK;

    s = malloc((size_t)g->n_tensors * sizeof(*s));
    if (!s) {
        rc = rd_fail(r, NULL, MQ_ENOMEM, "out of memory checking %llu tensors",
                     (unsigned long long)g->n_tensors);
        goto out;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        s[i] = &g->tensors[i];
    qsort(s, (size_t)g->n_tensors, sizeof(*s), cmp_tensor_name);
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        if (strcmp(s[i]->name, s[i - 1]->name) == 0) {
            char name[128];
            esc(name, sizeof(name), s[i]->name, strlen(s[i]->name));
            rc = rd_fail(r, NULL, MQ_EFORMAT, "tensors %llu and %llu are both named '%s'",
                         (unsigned long long)(s[i - 1] - g->tensors),
                         (unsigned long long)(s[i] - g->tensors), name);
            goto out;
        }
    }

    uint64_t avail = g->data_offset <= r->size ? r->size - g->data_offset : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct mq_gguf_tensor *t = &g->tensors[i];
        if (t->nbytes == 0) /* unsupported type: size unknown */
            continue;
        if (t->offset <= avail && t->nbytes <= avail - t->offset) {
            t->data = r->buf + g->data_offset + t->offset;
            continue;
        }
        struct loc l = {.what = "tensor",
                        .index = i,
                        .label = (const uint8_t *)t->name,
                        .label_len = strlen(t->name)};
        uint64_t start = (uint64_t)g->data_offset + t->offset;
        if (start < t->offset || start + t->nbytes < start)
            rc = rd_fail(r, &l, MQ_EFORMAT,
                         "data offset %llu + size %zu overflows (the data section starts at %zu)",
                         (unsigned long long)t->offset, t->nbytes, g->data_offset);
        else
            rc = rd_fail(
                r, &l, MQ_EFORMAT, "data [%llu, %llu) runs past the end of the file (%zu bytes)",
                (unsigned long long)start, (unsigned long long)(start + t->nbytes), r->size);
        goto out;
    }

    qsort(s, (size_t)g->n_tensors, sizeof(*s), cmp_tensor_offset);
    const struct mq_gguf_tensor *prev = NULL;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct mq_gguf_tensor *t = s[i];
        if (t->nbytes == 0)
            continue;
        if (prev && t->offset < prev->offset + prev->nbytes) {
            uint64_t d = g->data_offset;
            char n1[128], n2[128];
            esc(n1, sizeof(n1), t->name, strlen(t->name));
            esc(n2, sizeof(n2), prev->name, strlen(prev->name));
            rc = rd_fail(r, NULL, MQ_EFORMAT,
                         "tensor '%s' data [%llu, %llu) overlaps tensor '%s' data [%llu, %llu)", n1,
                         (unsigned long long)(d + t->offset),
                         (unsigned long long)(d + t->offset + t->nbytes), n2,
                         (unsigned long long)(d + prev->offset),
                         (unsigned long long)(d + prev->offset + prev->nbytes));
            goto out;
        }
        prev = t;
    }

    if (unsupported) {
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const struct mq_gguf_tensor *t = &g->tensors[i];
            if (t->nbytes != 0)
                continue;
            struct loc l = {.what = "tensor",
                            .index = i,
                            .label = (const uint8_t *)t->name,
                            .label_len = strlen(t->name)};
            const char *gn = ggml_type_name(t->ggml_type);
            if (gn)
                rc = rd_fail(r, &l, MQ_EUNSUPPORTED,
                             "has type %s (ggml type %u), which mixq does not read yet", gn,
                             t->ggml_type);
            else
                rc = rd_fail(r, &l, MQ_EUNSUPPORTED, "has ggml type %u, which mixq does not know",
                             t->ggml_type);
            goto out;
        }
    }
out:
    free(s);
    return rc;
}

static int parse_header(struct rd *r, struct mq_gguf *g)
{
    if (r->size == 0)
        return rd_fail(r, NULL, MQ_EFORMAT, "empty file, not a gguf file");
    size_t nm = r->size < 4 ? r->size : 4;
    if (memcmp(r->buf, gguf_magic, nm) != 0) {
        char got[32];
        esc(got, sizeof(got), r->buf, nm);
        return rd_fail(r, NULL, MQ_EFORMAT, "not a gguf file (starts with '%s', want 'GGUF')", got);
    }
    /* the version first: version 1 headers are shorter (32-bit counts) */
    if (r->size >= 8)
        g->version = le32(r->buf + 4);
    if (r->size >= 8 && g->version != 2 && g->version != 3) {
        uint32_t sw = bswap32(g->version);
        if (sw >= 1 && sw <= 3)
            return rd_fail(r, NULL, MQ_EUNSUPPORTED,
                           "big-endian gguf file (version %u byte-swapped): mixq reads "
                           "little-endian files only",
                           sw);
        if (g->version == 0)
            return rd_fail(r, NULL, MQ_EFORMAT, "gguf version 0 is not a valid version");
        return rd_fail(r, NULL, MQ_EUNSUPPORTED,
                       "gguf version %u is not supported (mixq reads versions 2 and 3)",
                       g->version);
    }
    if (r->size < GGUF_HEADER_BYTES)
        return rd_fail(r, NULL, MQ_EFORMAT,
                       "truncated gguf header: the file has %zu bytes, the header needs %d",
                       r->size, GGUF_HEADER_BYTES);
    uint64_t n_tensors = le64(r->buf + 8);
    uint64_t n_kv = le64(r->buf + 16);
    r->pos = GGUF_HEADER_BYTES;
    size_t left = rd_left(r);
    if (n_kv > left / GGUF_MIN_KV_BYTES)
        return rd_fail(
            r, NULL, MQ_EFORMAT,
            "header claims %llu key/values, but the remaining %zu bytes can hold at most %zu",
            (unsigned long long)n_kv, left, left / GGUF_MIN_KV_BYTES);
    if (n_tensors > left / GGUF_MIN_TENSOR_INFO_BYTES)
        return rd_fail(
            r, NULL, MQ_EFORMAT,
            "header claims %llu tensors, but the remaining %zu bytes can hold at most %zu",
            (unsigned long long)n_tensors, left, left / GGUF_MIN_TENSOR_INFO_BYTES);
    if (n_kv * GGUF_MIN_KV_BYTES + n_tensors * GGUF_MIN_TENSOR_INFO_BYTES > left)
        return rd_fail(r, NULL, MQ_EFORMAT,
                       "header claims %llu key/values and %llu tensors, which cannot fit in the "
                       "remaining %zu bytes",
                       (unsigned long long)n_kv, (unsigned long long)n_tensors, left);
    g->n_kv = n_kv;
    g->n_tensors = n_tensors;
    return MQ_OK;
}

static int gguf_parse(const uint8_t *buf, size_t size, const char *name, struct mq_gguf **out)
{
    struct mq_gguf *g = NULL;
    struct gguf_priv *priv = NULL;
    int rc;
    *out = NULL;
    size_t name_len = strlen(name);
    g = calloc(1, sizeof(*g));
    priv = name_len < SIZE_MAX - sizeof(*priv) ? malloc(sizeof(*priv) + name_len + 1) : NULL;
    if (!g || !priv) {
        free(g);
        free(priv);
        return mq_error(MQ_ENOMEM, "'%s': out of memory", name);
    }
    priv->blocks = NULL;
    memcpy(priv->name, name, name_len + 1);
    g->arena = priv;
    g->base = buf;
    g->file_size = size;
    g->alignment = MQ_GGUF_DEFAULT_ALIGNMENT;
    struct rd r = {.buf = buf, .size = size, .name = name, .priv = priv};

    rc = parse_header(&r, g);
    if (rc < 0)
        goto fail;
    /* the counts were checked against the file size, so these are bounded by it */
    if (g->n_kv) {
        g->kv = calloc((size_t)g->n_kv, sizeof(*g->kv));
        if (!g->kv) {
            rc = rd_fail(&r, NULL, MQ_ENOMEM, "out of memory for %llu key/values",
                         (unsigned long long)g->n_kv);
            goto fail;
        }
    }
    if (g->n_tensors) {
        g->tensors = calloc((size_t)g->n_tensors, sizeof(*g->tensors));
        if (!g->tensors) {
            rc = rd_fail(&r, NULL, MQ_ENOMEM, "out of memory for %llu tensors",
                         (unsigned long long)g->n_tensors);
            goto fail;
        }
    }
    rc = parse_kvs(&r, g);
    if (rc < 0)
        goto fail;
    rc = check_dup_keys(&r, g);
    if (rc < 0)
        goto fail;
    rc = check_alignment(&r, g);
    if (rc < 0)
        goto fail;
    rc = parse_tensors(&r, g);
    if (rc < 0)
        goto fail;
    *out = g;
    return MQ_OK;
fail:
    mq_gguf_close(g);
    return rc;
}

int mq_gguf_open_memory(const void *buf, size_t size, const char *name, struct mq_gguf **out)
{
    *out = NULL;
    if (!name)
        name = "(memory)";
    if (!buf && size)
        return mq_error(MQ_EINVAL, "'%s': no buffer for %zu bytes", name, size);
    return gguf_parse(buf, size, name, out);
}

int mq_gguf_open(const char *path, struct mq_gguf **out)
{
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return mq_error(MQ_EIO, "cannot open '%s': %s", path, strerror(errno));
    void *map = NULL;
    size_t size = 0;
    int rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = mq_error(MQ_EIO, "cannot stat '%s': %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = mq_error(MQ_EIO, "cannot read '%s': %s", path, strerror(EISDIR));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = mq_error(MQ_EIO, "cannot read '%s': not a regular file", path);
        goto out;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX) {
        rc = mq_error(MQ_ENOMEM, "'%s': %lld bytes do not fit in memory", path,
                      (long long)st.st_size);
        goto out;
    }
    size = (size_t)st.st_size;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            rc = mq_error(MQ_EIO, "cannot map '%s': %s", path, strerror(errno));
            goto out;
        }
    }
    rc = gguf_parse(map, size, path, out);
    if (rc < 0)
        goto out;
    (*out)->mapping = map;
    (*out)->mapping_size = size;
    map = NULL;
out:
    if (map)
        munmap(map, size);
    close(fd);
    return rc;
}

/* ---- lookups and typed getters ------------------------------------------------------- */

const struct mq_gguf_kv *mq_gguf_find_kv(const struct mq_gguf *g, const char *key)
{
    size_t len = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct mq_gguf_kv *kv = &g->kv[i];
        if (kv->key.len == len && (len == 0 || memcmp(kv->key.ptr, key, len) == 0))
            return kv;
    }
    return NULL;
}

const struct mq_gguf_tensor *mq_gguf_find_tensor(const struct mq_gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0)
            return &g->tensors[i];
    return NULL;
}

/* An integer value as sign and magnitude; false when v is not an integer. */
struct ival {
    bool neg;
    uint64_t u; /* the value when !neg */
    int64_t s;  /* the value when neg */
};

static bool value_int(const struct mq_gguf_value *v, struct ival *iv)
{
    int64_t s;
    switch (v->type) {
    case MQ_GGUF_UINT8:
        iv->neg = false;
        iv->u = v->u8;
        return true;
    case MQ_GGUF_UINT16:
        iv->neg = false;
        iv->u = v->u16;
        return true;
    case MQ_GGUF_UINT32:
        iv->neg = false;
        iv->u = v->u32;
        return true;
    case MQ_GGUF_UINT64:
        iv->neg = false;
        iv->u = v->u64;
        return true;
    case MQ_GGUF_INT8: s = v->i8; break;
    case MQ_GGUF_INT16: s = v->i16; break;
    case MQ_GGUF_INT32: s = v->i32; break;
    case MQ_GGUF_INT64: s = v->i64; break;
    default: return false;
    }
    iv->neg = s < 0;
    iv->s = s;
    iv->u = s < 0 ? 0 : (uint64_t)s;
    return true;
}

static void value_describe(const struct mq_gguf_value *v, char *buf, size_t size)
{
    if (v->type == MQ_GGUF_ARRAY)
        snprintf(buf, size, "arr of %s", mq_gguf_type_name(v->arr.type));
    else
        snprintf(buf, size, "%s", mq_gguf_type_name(v->type));
}

static int mismatch(const struct mq_gguf *g, const char *key, const struct mq_gguf_value *v,
                    const char *want)
{
    char have[48];
    value_describe(v, have, sizeof(have));
    return mq_error(MQ_EFORMAT, "'%s': key '%s' is %s, want %s", gguf_name(g), key, have, want);
}

static int out_of_range(const struct mq_gguf *g, const char *key, const struct mq_gguf_value *v,
                        const struct ival *iv, const char *want)
{
    if (iv->neg)
        return mq_error(MQ_EFORMAT, "'%s': key '%s' is %s %lld, which does not fit in %s",
                        gguf_name(g), key, mq_gguf_type_name(v->type), (long long)iv->s, want);
    return mq_error(MQ_EFORMAT, "'%s': key '%s' is %s %llu, which does not fit in %s", gguf_name(g),
                    key, mq_gguf_type_name(v->type), (unsigned long long)iv->u, want);
}

int mq_gguf_get_u32(const struct mq_gguf *g, const char *key, uint32_t *out)
{
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, key);
    if (!kv)
        return MQ_ENOTFOUND;
    struct ival iv;
    if (!value_int(&kv->value, &iv))
        return mismatch(g, key, &kv->value, "u32");
    if (iv.neg || iv.u > UINT32_MAX)
        return out_of_range(g, key, &kv->value, &iv, "u32");
    *out = (uint32_t)iv.u;
    return MQ_OK;
}

int mq_gguf_get_u64(const struct mq_gguf *g, const char *key, uint64_t *out)
{
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, key);
    if (!kv)
        return MQ_ENOTFOUND;
    struct ival iv;
    if (!value_int(&kv->value, &iv))
        return mismatch(g, key, &kv->value, "u64");
    if (iv.neg)
        return out_of_range(g, key, &kv->value, &iv, "u64");
    *out = iv.u;
    return MQ_OK;
}

int mq_gguf_get_i64(const struct mq_gguf *g, const char *key, int64_t *out)
{
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, key);
    if (!kv)
        return MQ_ENOTFOUND;
    struct ival iv;
    if (!value_int(&kv->value, &iv))
        return mismatch(g, key, &kv->value, "i64");
    if (!iv.neg && iv.u > INT64_MAX)
        return out_of_range(g, key, &kv->value, &iv, "i64");
    *out = iv.neg ? iv.s : (int64_t)iv.u;
    return MQ_OK;
}

int mq_gguf_get_f32(const struct mq_gguf *g, const char *key, float *out)
{
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, key);
    if (!kv)
        return MQ_ENOTFOUND;
    if (kv->value.type == MQ_GGUF_FLOAT32) {
        *out = kv->value.f32;
        return MQ_OK;
    }
    if (kv->value.type != MQ_GGUF_FLOAT64)
        return mismatch(g, key, &kv->value, "f32");
    double d = kv->value.f64;
    if (isfinite(d) && fabs(d) > FLT_MAX)
        return mq_error(MQ_EFORMAT, "'%s': key '%s' is f64 %g, which does not fit in f32",
                        gguf_name(g), key, d);
    *out = (float)d;
    return MQ_OK;
}

int mq_gguf_get_bool(const struct mq_gguf *g, const char *key, bool *out)
{
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, key);
    if (!kv)
        return MQ_ENOTFOUND;
    if (kv->value.type != MQ_GGUF_BOOL)
        return mismatch(g, key, &kv->value, "bool");
    *out = kv->value.b;
    return MQ_OK;
}

int mq_gguf_get_str(const struct mq_gguf *g, const char *key, char *buf, size_t size)
{
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, key);
    if (!kv)
        return MQ_ENOTFOUND;
    if (kv->value.type != MQ_GGUF_STRING)
        return mismatch(g, key, &kv->value, "str");
    const struct mq_gguf_str *s = &kv->value.str;
    if (s->len && memchr(s->ptr, 0, (size_t)s->len))
        return mq_error(MQ_ERANGE, "'%s': key '%s': string contains a NUL byte", gguf_name(g), key);
    if (s->len >= size)
        return mq_error(MQ_ERANGE, "'%s': key '%s': string of %llu bytes does not fit in %zu bytes",
                        gguf_name(g), key, (unsigned long long)s->len, size);
    if (s->len)
        memcpy(buf, s->ptr, (size_t)s->len);
    buf[s->len] = '\0';
    return MQ_OK;
}

int mq_gguf_get_arr(const struct mq_gguf *g, const char *key, enum mq_gguf_type elem_type,
                    const struct mq_gguf_value **out)
{
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, key);
    if (!kv)
        return MQ_ENOTFOUND;
    if (kv->value.type != MQ_GGUF_ARRAY || kv->value.arr.type != elem_type) {
        char want[32];
        snprintf(want, sizeof(want), "arr of %s", mq_gguf_type_name(elem_type));
        return mismatch(g, key, &kv->value, want);
    }
    *out = &kv->value;
    return MQ_OK;
}

/* Element i of a scalar array, decoded into a value of the element type. */
static struct mq_gguf_value arr_elem(const struct mq_gguf_value *arr, uint64_t i)
{
    MQ_ASSERT(arr->type == MQ_GGUF_ARRAY && (unsigned)arr->arr.type < MQ_GGUF_TYPE_COUNT &&
              type_is_scalar(arr->arr.type) && i < arr->arr.n);
    struct mq_gguf_value v = {.type = arr->arr.type};
    const uint8_t *p = arr->arr.data;
    scalar_decode(arr->arr.type, p + i * gguf_types[arr->arr.type].size, &v);
    return v;
}

int64_t mq_gguf_arr_i64(const struct mq_gguf_value *arr, uint64_t i)
{
    struct mq_gguf_value v = arr_elem(arr, i);
    struct ival iv;
    double d;
    if (value_int(&v, &iv))
        return iv.neg ? iv.s : iv.u > INT64_MAX ? INT64_MAX : (int64_t)iv.u;
    if (v.type == MQ_GGUF_BOOL)
        return v.b;
    d = v.type == MQ_GGUF_FLOAT32 ? (double)v.f32 : v.f64;
    /* truncation toward zero, saturating; NaN gives 0 (not an undefined conversion) */
    if (d != d)
        return 0;
    if (d >= 9223372036854775807.0)
        return INT64_MAX;
    if (d <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

double mq_gguf_arr_f64(const struct mq_gguf_value *arr, uint64_t i)
{
    struct mq_gguf_value v = arr_elem(arr, i);
    struct ival iv;
    if (value_int(&v, &iv))
        return iv.neg ? (double)iv.s : (double)iv.u;
    if (v.type == MQ_GGUF_BOOL)
        return v.b;
    return v.type == MQ_GGUF_FLOAT32 ? (double)v.f32 : v.f64;
}

/* ---- writer -------------------------------------------------------------------------- */

struct wkv {
    uint8_t *key; /* key bytes (may contain NUL), malloc'ed */
    size_t key_len;
    uint8_t *val; /* u32 type tag then the value, as in the file */
    size_t val_len;
};

struct wtensor {
    char name[MQ_GGUF_MAX_NAME + 1];
    enum mq_dtype type;
    uint32_t n_dims;
    int64_t ne[MQ_GGUF_MAX_DIMS];
    size_t nbytes;
    const void *data; /* borrowed; NULL when fn produces the rows */
    mq_gguf_rows_fn fn;
    void *fn_ctx;     /* borrowed */
};

struct mq_gguf_writer {
    struct wkv *kv;
    size_t n_kv, cap_kv;
    struct wtensor *t;
    size_t n_t, cap_t;
};

struct mq_gguf_writer *mq_gguf_writer_new(void)
{
    struct mq_gguf_writer *w = calloc(1, sizeof(*w));
    if (!w)
        mq_error(MQ_ENOMEM, "out of memory for a gguf writer");
    return w;
}

void mq_gguf_writer_free(struct mq_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

static bool add_ok(uint64_t *acc, uint64_t x)
{
    if (x > UINT64_MAX - *acc)
        return false;
    *acc += x;
    return true;
}

/* Bytes of v in a file, without a type tag; MQ_EINVAL (printed) for a value that is not
 * well formed (unknown type, bool array byte other than 0/1, nesting too deep, NULL
 * data for elements). */
static int value_bytes(const char *key, const struct mq_gguf_value *v, int depth, uint64_t *out)
{
    if ((unsigned)v->type >= MQ_GGUF_TYPE_COUNT)
        return mq_error(MQ_EINVAL, "key '%s': unknown value type %d", key, (int)v->type);
    if (type_is_scalar(v->type)) {
        *out = gguf_types[v->type].size;
        return MQ_OK;
    }
    if (v->type == MQ_GGUF_STRING) {
        if (v->str.len && !v->str.ptr)
            return mq_error(MQ_EINVAL, "key '%s': string of %llu bytes has no data", key,
                            (unsigned long long)v->str.len);
        if (v->str.len > UINT64_MAX - 8)
            return mq_error(MQ_EINVAL, "key '%s': string too long", key);
        *out = 8 + v->str.len;
        return MQ_OK;
    }
    if (depth >= MQ_GGUF_MAX_ARRAY_DEPTH)
        return mq_error(MQ_EINVAL, "key '%s': arrays nested more than %d levels deep", key,
                        MQ_GGUF_MAX_ARRAY_DEPTH);
    enum mq_gguf_type et = v->arr.type;
    if ((unsigned)et >= MQ_GGUF_TYPE_COUNT)
        return mq_error(MQ_EINVAL, "key '%s': unknown array element type %d", key, (int)et);
    uint64_t total = 12, n = v->arr.n;
    if (type_is_scalar(et)) {
        uint64_t esz = gguf_types[et].size;
        if (n && !v->arr.data)
            return mq_error(MQ_EINVAL, "key '%s': array of %llu %s has no data", key,
                            (unsigned long long)n, gguf_types[et].plural);
        if (n > (UINT64_MAX - total) / esz)
            return mq_error(MQ_EINVAL, "key '%s': array too long", key);
        if (et == MQ_GGUF_BOOL) {
            const uint8_t *p = v->arr.data;
            for (uint64_t i = 0; i < n; i++)
                if (p[i] > 1)
                    return mq_error(MQ_EINVAL, "key '%s': bool element %llu is %u, want 0 or 1",
                                    key, (unsigned long long)i, p[i]);
        }
        *out = total + n * esz;
        return MQ_OK;
    }
    if (n && !v->arr.items)
        return mq_error(MQ_EINVAL, "key '%s': array of %llu %s has no items", key,
                        (unsigned long long)n, gguf_types[et].plural);
    for (uint64_t i = 0; i < n; i++) {
        if (v->arr.items[i].type != et)
            return mq_error(MQ_EINVAL, "key '%s': element %llu is %s in an array of %s", key,
                            (unsigned long long)i, mq_gguf_type_name(v->arr.items[i].type),
                            gguf_types[et].plural);
        uint64_t eb;
        int rc = value_bytes(key, &v->arr.items[i], depth + 1, &eb);
        if (rc < 0)
            return rc;
        if (!add_ok(&total, eb))
            return mq_error(MQ_EINVAL, "key '%s': array too long", key);
    }
    *out = total;
    return MQ_OK;
}

/* Writes v (checked by value_bytes) without a type tag; returns the end. */
static uint8_t *value_put(uint8_t *p, const struct mq_gguf_value *v)
{
    uint32_t u32;
    uint64_t u64;
    switch (v->type) {
    case MQ_GGUF_UINT8: *p = v->u8; return p + 1;
    case MQ_GGUF_INT8: *p = (uint8_t)v->i8; return p + 1;
    case MQ_GGUF_UINT16:
        p[0] = (uint8_t)v->u16;
        p[1] = (uint8_t)(v->u16 >> 8);
        return p + 2;
    case MQ_GGUF_INT16:
        u32 = (uint16_t)v->i16;
        p[0] = (uint8_t)u32;
        p[1] = (uint8_t)(u32 >> 8);
        return p + 2;
    case MQ_GGUF_UINT32: return put32(p, v->u32);
    case MQ_GGUF_INT32: return put32(p, (uint32_t)v->i32);
    case MQ_GGUF_FLOAT32: memcpy(&u32, &v->f32, 4); return put32(p, u32);
    case MQ_GGUF_BOOL: *p = v->b ? 1 : 0; return p + 1;
    case MQ_GGUF_UINT64: return put64(p, v->u64);
    case MQ_GGUF_INT64: return put64(p, (uint64_t)v->i64);
    case MQ_GGUF_FLOAT64: memcpy(&u64, &v->f64, 8); return put64(p, u64);
    case MQ_GGUF_STRING:
        p = put64(p, v->str.len);
        if (v->str.len)
            memcpy(p, v->str.ptr, (size_t)v->str.len);
        return p + v->str.len;
    case MQ_GGUF_ARRAY:
        p = put32(p, (uint32_t)v->arr.type);
        p = put64(p, v->arr.n);
        if (type_is_scalar(v->arr.type)) {
            size_t bytes = (size_t)v->arr.n * gguf_types[v->arr.type].size;
            if (bytes)
                memcpy(p, v->arr.data, bytes);
            return p + bytes;
        }
        for (uint64_t i = 0; i < v->arr.n; i++)
            p = value_put(p, &v->arr.items[i]);
        return p;
    default: MQ_ASSERT(!"checked by value_bytes"); return p;
    }
}

static struct wkv *writer_find(const struct mq_gguf_writer *w, const void *key, size_t len)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kv[i].key_len == len && (len == 0 || memcmp(w->kv[i].key, key, len) == 0))
            return &w->kv[i];
    return NULL;
}

static bool is_alignment_key(const void *key, size_t len)
{
    return len == strlen(GGUF_ALIGNMENT_KEY) && memcmp(key, GGUF_ALIGNMENT_KEY, len) == 0;
}

/* Sets key (len bytes) to v, serialized; the writer is unchanged on failure. */
static int writer_set(struct mq_gguf_writer *w, const void *key, size_t key_len,
                      const struct mq_gguf_value *v)
{
    char kname[128];
    esc(kname, sizeof(kname), key, key_len);
    if (is_alignment_key(key, key_len)) {
        if (v->type != MQ_GGUF_UINT32)
            return mq_error(MQ_EINVAL, "key '%s' must be a u32, not a %s", kname,
                            mq_gguf_type_name(v->type));
        if (!is_pow2(v->u32))
            return mq_error(MQ_EINVAL, "key '%s' is %u, want a power of two", kname, v->u32);
    }
    uint64_t vb;
    int rc = value_bytes(kname, v, 0, &vb);
    if (rc < 0)
        return rc;
    if (vb > SIZE_MAX - 4)
        return mq_error(MQ_ENOMEM, "key '%s': value of %llu bytes is too large", kname,
                        (unsigned long long)vb);
    size_t val_len = (size_t)vb + 4;
    uint8_t *val = malloc(val_len);
    uint8_t *kcopy = NULL;
    if (!val)
        return mq_error(MQ_ENOMEM, "key '%s': out of memory for %zu bytes", kname, val_len);
    uint8_t *end = value_put(put32(val, (uint32_t)v->type), v);
    MQ_ASSERT((size_t)(end - val) == val_len);

    struct wkv *kv = writer_find(w, key, key_len);
    if (kv) {
        free(kv->val);
        kv->val = val;
        kv->val_len = val_len;
        return MQ_OK;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        struct wkv *nk = cap <= SIZE_MAX / sizeof(*nk) ? realloc(w->kv, cap * sizeof(*nk)) : NULL;
        if (!nk)
            goto nomem;
        w->kv = nk;
        w->cap_kv = cap;
    }
    kcopy = malloc(key_len ? key_len : 1);
    if (!kcopy)
        goto nomem;
    if (key_len)
        memcpy(kcopy, key, key_len);
    w->kv[w->n_kv++] =
        (struct wkv){.key = kcopy, .key_len = key_len, .val = val, .val_len = val_len};
    return MQ_OK;
nomem:
    free(val);
    return mq_error(MQ_ENOMEM, "key '%s': out of memory", kname);
}

int mq_gguf_writer_set_u32(struct mq_gguf_writer *w, const char *key, uint32_t v)
{
    struct mq_gguf_value val = {.type = MQ_GGUF_UINT32, .u32 = v};
    return writer_set(w, key, strlen(key), &val);
}

int mq_gguf_writer_set_i32(struct mq_gguf_writer *w, const char *key, int32_t v)
{
    struct mq_gguf_value val = {.type = MQ_GGUF_INT32, .i32 = v};
    return writer_set(w, key, strlen(key), &val);
}

int mq_gguf_writer_set_u64(struct mq_gguf_writer *w, const char *key, uint64_t v)
{
    struct mq_gguf_value val = {.type = MQ_GGUF_UINT64, .u64 = v};
    return writer_set(w, key, strlen(key), &val);
}

int mq_gguf_writer_set_f32(struct mq_gguf_writer *w, const char *key, float v)
{
    struct mq_gguf_value val = {.type = MQ_GGUF_FLOAT32, .f32 = v};
    return writer_set(w, key, strlen(key), &val);
}

int mq_gguf_writer_set_bool(struct mq_gguf_writer *w, const char *key, bool v)
{
    struct mq_gguf_value val = {.type = MQ_GGUF_BOOL, .b = v};
    return writer_set(w, key, strlen(key), &val);
}

int mq_gguf_writer_set_str(struct mq_gguf_writer *w, const char *key, const char *v)
{
    struct mq_gguf_value val = {.type = MQ_GGUF_STRING, .str = {.len = strlen(v), .ptr = v}};
    return writer_set(w, key, strlen(key), &val);
}

int mq_gguf_writer_set_str_arr(struct mq_gguf_writer *w, const char *key, const char *const *v,
                               uint64_t n)
{
    struct mq_gguf_value *items = NULL;
    if (n) {
        if (n > SIZE_MAX / sizeof(*items))
            return mq_error(MQ_ENOMEM, "key '%s': array of %llu strings is too large", key,
                            (unsigned long long)n);
        items = malloc((size_t)n * sizeof(*items));
        if (!items)
            return mq_error(MQ_ENOMEM, "key '%s': out of memory for %llu strings", key,
                            (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            items[i] = (struct mq_gguf_value){.type = MQ_GGUF_STRING,
                                              .str = {.len = strlen(v[i]), .ptr = v[i]}};
    }
    struct mq_gguf_value val = {.type = MQ_GGUF_ARRAY,
                                .arr = {.type = MQ_GGUF_STRING, .n = n, .items = items}};
    int rc = writer_set(w, key, strlen(key), &val);
    free(items);
    return rc;
}

int mq_gguf_writer_set_arr(struct mq_gguf_writer *w, const char *key, enum mq_gguf_type elem_type,
                           const void *data, uint64_t n)
{
    if ((unsigned)elem_type >= MQ_GGUF_TYPE_COUNT || !type_is_scalar(elem_type))
        return mq_error(MQ_EINVAL, "key '%s': set_arr takes scalar elements, not %s", key,
                        mq_gguf_type_name(elem_type));
    struct mq_gguf_value val = {.type = MQ_GGUF_ARRAY,
                                .arr = {.type = elem_type, .n = n, .data = data}};
    return writer_set(w, key, strlen(key), &val);
}

int mq_gguf_writer_set_value(struct mq_gguf_writer *w, const struct mq_gguf_str *key,
                             const struct mq_gguf_value *v)
{
    if (key->len > SIZE_MAX || (key->len && !key->ptr))
        return mq_error(MQ_EINVAL, "gguf writer: key of %llu bytes has no data",
                        (unsigned long long)key->len);
    return writer_set(w, key->ptr, (size_t)key->len, v);
}

void mq_gguf_writer_remove(struct mq_gguf_writer *w, const char *key)
{
    struct wkv *kv = writer_find(w, key, strlen(key));
    if (!kv)
        return;
    size_t i = (size_t)(kv - w->kv);
    free(kv->key);
    free(kv->val);
    memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof(*w->kv));
    w->n_kv--;
}

/* Adds a tensor with either its bytes (data) or a row callback (fn). */
static int writer_add(struct mq_gguf_writer *w, const char *name, enum mq_dtype type,
                      uint32_t n_dims, const int64_t *ne, const void *data, mq_gguf_rows_fn fn,
                      void *fn_ctx)
{
    size_t len = strlen(name);
    if (len > MQ_GGUF_MAX_NAME)
        return mq_error(MQ_EINVAL,
                        "tensor '%.64s...': name of %zu bytes is longer than the %d allowed", name,
                        len, MQ_GGUF_MAX_NAME);
    if ((unsigned)type >= MQ_DTYPE_COUNT)
        return mq_error(MQ_EINVAL, "tensor '%s': unknown type %d", name, (int)type);
    if (n_dims < 1 || n_dims > MQ_GGUF_MAX_DIMS)
        return mq_error(MQ_EINVAL, "tensor '%s' has %u dimensions, want 1 to %d", name, n_dims,
                        MQ_GGUF_MAX_DIMS);
    struct wtensor t = {.type = type, .n_dims = n_dims, .data = data, .fn = fn, .fn_ctx = fn_ctx};
    memcpy(t.name, name, len + 1);
    int64_t n_elems = 1;
    for (uint32_t d = 0; d < MQ_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1)
            return mq_error(MQ_EINVAL, "tensor '%s': dimension %u is %lld, want at least 1", name,
                            d, (long long)t.ne[d]);
        if (n_elems > INT64_MAX / t.ne[d])
            return mq_error(MQ_EINVAL, "tensor '%s': element count overflows int64", name);
        n_elems *= t.ne[d];
    }
    const struct mq_dtype_traits *tr = mq_dtype_get(type);
    if (t.ne[0] % tr->block_elems != 0)
        return mq_error(
            MQ_EINVAL,
            "tensor '%s': %s rows of %lld elements are not a whole number of %lld-element blocks",
            name, tr->name, (long long)t.ne[0], (long long)tr->block_elems);
    uint64_t blocks = (uint64_t)(n_elems / tr->block_elems);
    if (blocks > SIZE_MAX / tr->block_bytes)
        return mq_error(MQ_EINVAL, "tensor '%s': size overflows", name);
    t.nbytes = (size_t)blocks * tr->block_bytes;
    if (!data && !fn)
        return mq_error(MQ_EINVAL, "tensor '%s' has no data", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return mq_error(MQ_EINVAL, "tensor '%s' is added twice", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        struct wtensor *nt =
            cap <= SIZE_MAX / sizeof(*nt) ? realloc(w->t, cap * sizeof(*nt)) : NULL;
        if (!nt)
            return mq_error(MQ_ENOMEM, "tensor '%s': out of memory", name);
        w->t = nt;
        w->cap_t = cap;
    }
    w->t[w->n_t++] = t;
    return MQ_OK;
}

int mq_gguf_writer_add_tensor(struct mq_gguf_writer *w, const char *name, enum mq_dtype type,
                              uint32_t n_dims, const int64_t *ne, const void *data)
{
    return writer_add(w, name, type, n_dims, ne, data, NULL, NULL);
}

int mq_gguf_writer_add_tensor_fn(struct mq_gguf_writer *w, const char *name, enum mq_dtype type,
                                 uint32_t n_dims, const int64_t *ne, mq_gguf_rows_fn fn, void *ctx)
{
    if (!fn)
        return mq_error(MQ_EINVAL, "tensor '%s' has no row function", name);
    return writer_add(w, name, type, n_dims, ne, NULL, fn, ctx);
}

static const uint8_t zeros[4096];

/* fwrite of n bytes, with errno's reason on failure. */
static int write_all(FILE *f, const void *p, size_t n, const char *path)
{
    if (n == 0)
        return MQ_OK;
    errno = 0;
    if (fwrite(p, 1, n, f) != n)
        return mq_error(MQ_EIO, "cannot write '%s': %s", path,
                        errno ? strerror(errno) : "short write");
    return MQ_OK;
}

static int write_zeros(FILE *f, uint64_t n, const char *path)
{
    while (n > 0) {
        size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
        int rc = write_all(f, zeros, k, path);
        if (rc < 0)
            return rc;
        n -= k;
    }
    return MQ_OK;
}

/* The metadata section (header, key/values, tensor infos, padding) in memory. Tensor
 * offsets are assigned here: each at the next aligned offset after the previous one. */
static int writer_meta(const struct mq_gguf_writer *w, uint32_t alignment, uint8_t **out,
                       size_t *out_len)
{
    uint64_t size = GGUF_HEADER_BYTES;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!add_ok(&size, 8) || !add_ok(&size, w->kv[i].key_len) ||
            !add_ok(&size, w->kv[i].val_len))
            return mq_error(MQ_ENOMEM, "gguf writer: metadata size overflows");
    for (size_t i = 0; i < w->n_t; i++)
        if (!add_ok(&size, 8 + strlen(w->t[i].name) + 4 + 8 * (uint64_t)w->t[i].n_dims + 4 + 8))
            return mq_error(MQ_ENOMEM, "gguf writer: metadata size overflows");
    uint64_t padded = align_up(size, alignment);
    if (padded < size || padded > SIZE_MAX)
        return mq_error(MQ_ENOMEM, "gguf writer: metadata size overflows");
    uint8_t *buf = calloc(1, (size_t)padded);
    if (!buf)
        return mq_error(MQ_ENOMEM, "gguf writer: out of memory for %llu bytes of metadata",
                        (unsigned long long)padded);
    uint8_t *p = buf;
    memcpy(p, gguf_magic, 4);
    p = put32(p + 4, GGUF_VERSION_WRITTEN);
    p = put64(p, w->n_t);
    p = put64(p, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        p = put64(p, w->kv[i].key_len);
        if (w->kv[i].key_len)
            memcpy(p, w->kv[i].key, w->kv[i].key_len);
        p += w->kv[i].key_len;
        memcpy(p, w->kv[i].val, w->kv[i].val_len);
        p += w->kv[i].val_len;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        size_t len = strlen(t->name);
        p = put64(p, len);
        memcpy(p, t->name, len);
        p = put32(p + len, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            p = put64(p, (uint64_t)t->ne[d]);
        p = put32(p, mq_dtype_get(t->type)->ggml_type);
        p = put64(p, offset);
        uint64_t next = offset + t->nbytes;
        if (next < offset || align_up(next, alignment) < next) {
            free(buf);
            return mq_error(MQ_ENOMEM, "gguf writer: tensor data size overflows");
        }
        offset = align_up(next, alignment);
    }
    MQ_ASSERT((uint64_t)(p - buf) == size);
    *out = buf;
    *out_len = (size_t)padded;
    return MQ_OK;
}

static uint32_t writer_alignment(const struct mq_gguf_writer *w)
{
    const struct wkv *akv = writer_find(w, GGUF_ALIGNMENT_KEY, strlen(GGUF_ALIGNMENT_KEY));
    /* checked to be a u32 power of two when set */
    return akv ? le32(akv->val + 4) : MQ_GGUF_DEFAULT_ALIGNMENT;
}

int mq_gguf_writer_file_size(const struct mq_gguf_writer *w, uint64_t *bytes)
{
    uint32_t alignment = writer_alignment(w);
    uint8_t *meta;
    size_t meta_len;
    int rc = writer_meta(w, alignment, &meta, &meta_len);
    if (rc < 0)
        return rc;
    free(meta);
    uint64_t size = meta_len; /* writer_meta checked that the aligned offsets do not overflow */
    for (size_t i = 0; i < w->n_t; i++)
        size += align_up(w->t[i].nbytes, alignment);
    *bytes = size;
    return MQ_OK;
}

/* Writes tensor t's rows as its callback produces them, a chunk at a time through buf
 * (buf_size bytes, at least one row). */
static int write_rows(FILE *f, const struct wtensor *t, uint8_t *buf, size_t buf_size,
                      const char *path)
{
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    size_t row_bytes = t->nbytes / (size_t)rows;
    int64_t per = (int64_t)(buf_size / row_bytes);
    MQ_ASSERT(per >= 1);
    for (int64_t r = 0; r < rows; r += per) {
        int64_t n = rows - r < per ? rows - r : per;
        int rc = t->fn(t->fn_ctx, t->name, r, n, buf);
        if (rc == MQ_OK)
            rc = write_all(f, buf, (size_t)n * row_bytes, path);
        if (rc < 0)
            return rc;
    }
    return MQ_OK;
}

int mq_gguf_writer_write(struct mq_gguf_writer *w, const char *path)
{
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    char *tmp = NULL;
    FILE *f = NULL;
    uint8_t *chunk = NULL;
    size_t chunk_size = 0;
    int fd = -1;
    int rc;

    uint32_t alignment = writer_alignment(w);
    rc = writer_meta(w, alignment, &meta, &meta_len);
    if (rc < 0)
        goto fail;
    /* one buffer for the tensors whose rows are produced at write time */
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        if (!t->fn)
            continue;
        size_t row_bytes = t->nbytes / (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        size_t want = row_bytes > MQ_GGUF_CHUNK_BYTES ? row_bytes : MQ_GGUF_CHUNK_BYTES;
        if (want > t->nbytes)
            want = t->nbytes;
        if (want > chunk_size)
            chunk_size = want;
    }
    if (chunk_size && !(chunk = malloc(chunk_size))) {
        rc = mq_error(MQ_ENOMEM, "'%s': out of memory for a %zu-byte write buffer", path, chunk_size);
        goto fail;
    }

    size_t plen = strlen(path);
    const char suffix[] = ".tmp-XXXXXX";
    tmp = plen < SIZE_MAX - sizeof(suffix) ? malloc(plen + sizeof(suffix)) : NULL;
    if (!tmp) {
        rc = mq_error(MQ_ENOMEM, "'%s': out of memory", path);
        goto fail;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof(suffix));
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = mq_error(MQ_EIO, "cannot create a temporary file for '%s': %s", path, strerror(errno));
        free(tmp);
        tmp = NULL; /* nothing to remove */
        goto fail;
    }
    /* mkstemp makes the file private (0600); a model file is for sharing */
    if (fchmod(fd, 0644) != 0) {
        rc = mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(errno));
        goto fail;
    }
    f = fdopen(fd, "wb");
    if (!f) {
        rc = mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(errno));
        goto fail;
    }
    fd = -1; /* owned by f now */

    /* messages name the destination: the temporary file is gone when they are read */
    rc = write_all(f, meta, meta_len, path);
    for (size_t i = 0; rc == MQ_OK && i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        rc = t->fn ? write_rows(f, t, chunk, chunk_size, path) : write_all(f, t->data, t->nbytes, path);
        if (rc == MQ_OK)
            rc = write_zeros(f, align_up(t->nbytes, alignment) - t->nbytes, path);
    }
    if (rc < 0)
        goto fail;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(errno));
        goto fail;
    }
    int fc = fclose(f);
    f = NULL;
    if (fc != 0) {
        rc = mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        rc = mq_error(MQ_EIO, "cannot write '%s': rename from '%s' failed: %s", path, tmp,
                      strerror(errno));
        goto fail;
    }
    free(tmp);
    free(meta);
    free(chunk);
    return MQ_OK;
fail:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(meta);
    free(chunk);
    return rc;
}
