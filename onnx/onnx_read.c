/* onnx/onnx_read.c - the protobuf wire-format reader for ONNX files (onnx/onnx.h says
 * why it is hand-written). Every message is walked twice: once to count its repeated
 * fields (so arrays are sized by what is present, never by a number the file states),
 * once to fill them. Field numbers are onnx.proto's. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fp16.h"
#include "core/status.h"
#include "onnx/onnx.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

struct pb {
    const uint8_t *p, *end;
    const struct mq_onnx_file *f; /* for offsets and the path in messages */
    const char *msg;              /* the message being read, for errors */
};

static size_t pb_off(const struct pb *r, const uint8_t *at) { return (size_t)(at - r->f->base); }

static int pb_fail(const struct pb *r, const uint8_t *at, const char *what)
{
    return mq_error(MQ_EFORMAT, "'%s': malformed ONNX file: %s in %s at byte %zu", r->f->path, what, r->msg,
                    pb_off(r, at));
}

static int pb_varint(struct pb *r, uint64_t *v)
{
    const uint8_t *start = r->p;
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return pb_fail(r, start, "truncated varint");
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return pb_fail(r, start, "varint overflows 64 bits");
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return MQ_OK;
        }
    }
    return pb_fail(r, start, "varint longer than 10 bytes");
}

/* The next key; *field 0 at the end of the message. */
static int pb_key(struct pb *r, uint32_t *field, int *wt, const uint8_t **at)
{
    *field = 0;
    *at = r->p;
    if (r->p >= r->end)
        return MQ_OK;
    uint64_t k;
    int rc = pb_varint(r, &k);
    if (rc < 0)
        return rc;
    if (k >> 3 == 0 || k >> 3 > 0x1fffffff)
        return pb_fail(r, *at, "field number 0 or beyond 2^29");
    *wt = (int)(k & 7);
    if (*wt != WT_VARINT && *wt != WT_I64 && *wt != WT_LEN && *wt != WT_I32)
        return pb_fail(r, *at, *wt == 3 || *wt == 4 ? "group wire type (proto2 groups are not ONNX)"
                                                   : "invalid wire type 6 or 7");
    *field = (uint32_t)(k >> 3);
    return MQ_OK;
}

static int pb_len(struct pb *r, struct mq_onnx_span *s)
{
    const uint8_t *at = r->p;
    uint64_t n;
    int rc = pb_varint(r, &n);
    if (rc < 0)
        return rc;
    if (n > (uint64_t)(r->end - r->p))
        return pb_fail(r, at, "length runs past the end of its message");
    s->p = r->p;
    s->n = (size_t)n;
    r->p += n;
    return MQ_OK;
}

static int pb_skip(struct pb *r, int wt)
{
    uint64_t v;
    struct mq_onnx_span s;
    switch (wt) {
    case WT_VARINT:
        return pb_varint(r, &v);
    case WT_LEN:
        return pb_len(r, &s);
    case WT_I64:
    case WT_I32: {
        size_t n = wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return pb_fail(r, r->p, "truncated fixed-size field");
        r->p += n;
        return MQ_OK;
    }
    }
    return pb_fail(r, r->p, "invalid wire type");
}

static int want_wt(struct pb *r, const uint8_t *at, int wt, int want, const char *field)
{
    if (wt == want)
        return MQ_OK;
    char what[128];
    snprintf(what, sizeof(what), "field '%s' has wire type %d, want %d", field, wt, want);
    return pb_fail(r, at, what);
}

static struct pb pb_sub(const struct pb *r, struct mq_onnx_span s, const char *msg)
{
    return (struct pb){.p = s.p, .end = s.p + s.n, .f = r->f, .msg = msg};
}

/* A NUL-terminated copy of a string field; NUL bytes inside and names longer than `max`
 * are malformed. */
static int pb_str(struct pb *r, const uint8_t *at, struct mq_onnx_span s, size_t max, const char *field, char **out)
{
    if (s.n > max) {
        char what[160];
        snprintf(what, sizeof(what), "%s of %zu bytes (at most %zu)", field, s.n, max);
        return pb_fail(r, at, what);
    }
    if (s.n && memchr(s.p, 0, s.n)) {
        char what[128];
        snprintf(what, sizeof(what), "%s contains a NUL byte", field);
        return pb_fail(r, at, what);
    }
    char *c = malloc(s.n + 1);
    if (!c)
        return mq_error(MQ_ENOMEM, "'%s': cannot allocate %zu bytes", r->f->path, s.n + 1);
    if (s.n)
        memcpy(c, s.p, s.n);
    c[s.n] = '\0';
    free(*out); /* a repeated singular field: the last one wins, as in protobuf */
    *out = c;
    return MQ_OK;
}

static int pb_strfield(struct pb *r, const uint8_t *at, int wt, size_t max, const char *field, char **out)
{
    struct mq_onnx_span s;
    int rc = want_wt(r, at, wt, WT_LEN, field);
    if (rc < 0 || (rc = pb_len(r, &s)) < 0)
        return rc;
    return pb_str(r, at, s, max, field, out);
}

static int pb_int(struct pb *r, const uint8_t *at, int wt, const char *field, int64_t *out)
{
    uint64_t v;
    int rc = want_wt(r, at, wt, WT_VARINT, field);
    if (rc < 0 || (rc = pb_varint(r, &v)) < 0)
        return rc;
    *out = (int64_t)v;
    return MQ_OK;
}

/* Counts the occurrences of each field number below 32 (repeated fields). */
static int pb_count(const struct pb *r0, int64_t count[32])
{
    struct pb r = *r0;
    memset(count, 0, 32 * sizeof(*count));
    for (;;) {
        uint32_t field;
        int wt;
        const uint8_t *at;
        int rc = pb_key(&r, &field, &wt, &at);
        if (rc < 0)
            return rc;
        if (!field)
            return MQ_OK;
        if (field < 32)
            count[field]++;
        if ((rc = pb_skip(&r, wt)) < 0)
            return rc;
    }
}

/* Counts the scalars of a repeated numeric field: packed (WT_LEN) and unpacked. */
static int pb_count_scalars(struct pb *r, int wt, int elem_wt, struct mq_onnx_span s, int64_t *n)
{
    if (wt == elem_wt) {
        *n += 1;
        return MQ_OK;
    }
    if (elem_wt == WT_I32 || elem_wt == WT_I64) {
        size_t w = elem_wt == WT_I32 ? 4 : 8;
        if (s.n % w)
            return pb_fail(r, s.p, "packed fixed-size array with a partial element");
        *n += (int64_t)(s.n / w);
        return MQ_OK;
    }
    struct pb sub = pb_sub(r, s, r->msg);
    while (sub.p < sub.end) {
        uint64_t v;
        int rc = pb_varint(&sub, &v);
        if (rc < 0)
            return rc;
        *n += 1;
    }
    return MQ_OK;
}

static void *xcalloc(const struct pb *r, int64_t n, size_t size)
{
    if (n <= 0)
        return NULL;
    void *p = calloc((size_t)n, size);
    if (!p)
        mq_error(MQ_ENOMEM, "'%s': cannot allocate %" PRId64 " items", r->f->path, n);
    return p;
}

#define XCALLOC(r, ptr, n)                                                                     \
    do {                                                                                       \
        (ptr) = xcalloc((r), (n), sizeof(*(ptr)));                                             \
        if ((n) > 0 && !(ptr))                                                                 \
            return MQ_ENOMEM;                                                                  \
    } while (0)

/* Reads the scalars of a repeated numeric field (one occurrence) into arr[*n...]. */
static int pb_read_scalars(struct pb *r, const uint8_t *at, int wt, int elem_wt, struct mq_onnx_span s, int64_t cap,
                           int64_t *n, void (*put)(void *arr, int64_t i, uint64_t bits), void *arr)
{
    (void)at;
    if (wt == elem_wt) {
        uint64_t v = 0;
        if (wt == WT_VARINT) {
            int rc = pb_varint(r, &v);
            if (rc < 0)
                return rc;
        } else {
            size_t w = wt == WT_I32 ? 4 : 8;
            if ((size_t)(r->end - r->p) < w)
                return pb_fail(r, r->p, "truncated fixed-size field");
            uint8_t b[8] = {0};
            memcpy(b, r->p, w);
            for (size_t k = 0; k < w; k++)
                v |= (uint64_t)b[k] << (8 * k);
            r->p += w;
        }
        MQ_ASSERT(*n < cap);
        put(arr, (*n)++, v);
        return MQ_OK;
    }
    if (elem_wt == WT_VARINT) {
        struct pb sub = pb_sub(r, s, r->msg);
        while (sub.p < sub.end) {
            uint64_t v;
            int rc = pb_varint(&sub, &v);
            if (rc < 0)
                return rc;
            MQ_ASSERT(*n < cap);
            put(arr, (*n)++, v);
        }
        return MQ_OK;
    }
    size_t w = elem_wt == WT_I32 ? 4 : 8;
    for (size_t off = 0; off + w <= s.n; off += w) {
        uint64_t v = 0;
        for (size_t k = 0; k < w; k++)
            v |= (uint64_t)s.p[off + k] << (8 * k);
        MQ_ASSERT(*n < cap);
        put(arr, (*n)++, v);
    }
    return MQ_OK;
}

static void put_i64(void *arr, int64_t i, uint64_t bits) { ((int64_t *)arr)[i] = (int64_t)bits; }
static void put_f32(void *arr, int64_t i, uint64_t bits) { ((float *)arr)[i] = mq_bits_f32((uint32_t)bits); }

/* A repeated numeric field, both encodings: counted on a first walk, read on a second. */
static int pb_repeated(const struct pb *r0, uint32_t want_field, int elem_wt, const char *field, int64_t *n_out,
                       void **arr_out, size_t elem_size, void (*put)(void *, int64_t, uint64_t))
{
    *n_out = 0;
    *arr_out = NULL;
    int64_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        struct pb r = *r0;
        int64_t filled = 0;
        for (;;) {
            uint32_t f;
            int wt;
            const uint8_t *at;
            int rc = pb_key(&r, &f, &wt, &at);
            if (rc < 0)
                return rc;
            if (!f)
                break;
            if (f != want_field) {
                if ((rc = pb_skip(&r, wt)) < 0)
                    return rc;
                continue;
            }
            struct mq_onnx_span s = {0};
            if (wt != elem_wt) {
                if ((rc = want_wt(&r, at, wt, WT_LEN, field)) < 0 || (rc = pb_len(&r, &s)) < 0)
                    return rc;
            }
            if (pass == 0) {
                if (wt == elem_wt) {
                    if ((rc = pb_skip(&r, wt)) < 0)
                        return rc;
                    n++;
                } else if ((rc = pb_count_scalars(&r, wt, elem_wt, s, &n)) < 0) {
                    return rc;
                }
            } else if ((rc = pb_read_scalars(&r, at, wt, elem_wt, s, n, &filled, put, *arr_out)) < 0) {
                return rc;
            }
        }
        if (pass == 0) {
            if (n == 0)
                return MQ_OK;
            *arr_out = xcalloc(r0, n, elem_size);
            if (!*arr_out)
                return MQ_ENOMEM;
        }
    }
    *n_out = n;
    return MQ_OK;
}

/* ---- messages -------------------------------------------------------------------------- */

static int read_graph(struct pb *r, struct mq_onnx_span s, int depth, struct mq_onnx_graph **out);

static size_t elem_size(int32_t elem)
{
    switch (elem) {
    case MQ_ONNX_FLOAT: case MQ_ONNX_INT32: case MQ_ONNX_UINT32: return 4;
    case MQ_ONNX_UINT8: case MQ_ONNX_INT8: case MQ_ONNX_BOOL: return 1;
    case MQ_ONNX_UINT16: case MQ_ONNX_INT16: case MQ_ONNX_FLOAT16: case MQ_ONNX_BFLOAT16: return 2;
    case MQ_ONNX_INT64: case MQ_ONNX_DOUBLE: case MQ_ONNX_UINT64: return 8;
    }
    return 0;
}

/* The typed field that carries each element type's values, and its wire type. */
static int typed_field(int32_t elem, int *wt)
{
    switch (elem) {
    case MQ_ONNX_FLOAT: *wt = WT_I32; return 4;
    case MQ_ONNX_INT32: case MQ_ONNX_INT16: case MQ_ONNX_INT8: case MQ_ONNX_UINT16: case MQ_ONNX_UINT8:
    case MQ_ONNX_BOOL: case MQ_ONNX_FLOAT16: case MQ_ONNX_BFLOAT16: *wt = WT_VARINT; return 5;
    case MQ_ONNX_INT64: *wt = WT_VARINT; return 7;
    case MQ_ONNX_DOUBLE: *wt = WT_I64; return 10;
    case MQ_ONNX_UINT32: case MQ_ONNX_UINT64: *wt = WT_VARINT; return 11;
    }
    *wt = -1;
    return 0;
}

static const char *const typed_field_name[16] = {[4] = "float_data", [5] = "int32_data", [7] = "int64_data",
                                                 [10] = "double_data", [11] = "uint64_data"};

static int read_tensor(struct pb *r0, struct mq_onnx_span s, struct mq_onnx_tensor *t)
{
    struct pb r = pb_sub(r0, s, "TensorProto");
    t->msg = s;
    int64_t dims_n = 0;
    int64_t *dims = NULL;
    int rc = pb_repeated(&r, 1, WT_VARINT, "dims", &dims_n, (void **)&dims, sizeof(int64_t), put_i64);
    if (rc < 0)
        return rc;
    bool external = false, has_typed[16] = {false};
    char *ext_location = NULL;
    for (;;) {
        uint32_t field;
        int wt;
        const uint8_t *at;
        int64_t v;
        if ((rc = pb_key(&r, &field, &wt, &at)) < 0)
            goto done;
        if (!field)
            break;
        switch (field) {
        case 2:
            if ((rc = pb_int(&r, at, wt, "data_type", &v)) < 0)
                goto done;
            t->elem = (int32_t)v;
            break;
        case 3:
            rc = mq_error(MQ_EUNSUPPORTED, "'%s': segmented tensors (TensorProto.segment) are not supported",
                          r.f->path);
            goto done;
        case 8:
            if ((rc = pb_strfield(&r, at, wt, MQ_ONNX_MAX_NAME, "tensor name", &t->name)) < 0)
                goto done;
            break;
        case 9:
            if ((rc = want_wt(&r, at, wt, WT_LEN, "raw_data")) < 0 || (rc = pb_len(&r, &t->raw)) < 0)
                goto done;
            break;
        case 13: { /* external_data: StringStringEntryProto; remember "location" */
            struct mq_onnx_span e;
            if ((rc = want_wt(&r, at, wt, WT_LEN, "external_data")) < 0 || (rc = pb_len(&r, &e)) < 0)
                goto done;
            external = true;
            struct pb er = pb_sub(&r, e, "StringStringEntryProto");
            char *key = NULL, *value = NULL;
            for (;;) {
                uint32_t ef;
                int ewt;
                const uint8_t *eat;
                if ((rc = pb_key(&er, &ef, &ewt, &eat)) < 0)
                    break;
                if (!ef)
                    break;
                if (ef == 1)
                    rc = pb_strfield(&er, eat, ewt, MQ_ONNX_MAX_NAME, "key", &key);
                else if (ef == 2)
                    rc = pb_strfield(&er, eat, ewt, MQ_ONNX_MAX_NAME, "value", &value);
                else
                    rc = pb_skip(&er, ewt);
                if (rc < 0)
                    break;
            }
            if (rc == MQ_OK && key && value && strcmp(key, "location") == 0) {
                free(ext_location);
                ext_location = value;
                value = NULL;
            }
            free(key);
            free(value);
            if (rc < 0)
                goto done;
            break;
        }
        case 14:
            if ((rc = pb_int(&r, at, wt, "data_location", &v)) < 0)
                goto done;
            external |= v == 1;
            break;
        case 4: case 5: case 6: case 7: case 10: case 11:
            if (field == 6) {
                rc = mq_error(MQ_EUNSUPPORTED, "'%s': string tensors are not supported", r.f->path);
                goto done;
            }
            has_typed[field] = true;
            if ((rc = pb_skip(&r, wt)) < 0)
                goto done;
            break;
        default:
            if ((rc = pb_skip(&r, wt)) < 0)
                goto done;
        }
    }
    if (!t->name && (rc = pb_str(&r, s.p, (struct mq_onnx_span){0}, 0, "tensor name", &t->name)) < 0)
        goto done;
    if (external) {
        rc = mq_error(MQ_EUNSUPPORTED, "'%s': tensor '%s' keeps its data in an external file ('%s'): mixq reads "
                      "self-contained ONNX files only", r.f->path, t->name, ext_location ? ext_location : "?");
        goto done;
    }
    if (dims_n > MQ_ONNX_MAX_DIMS) {
        rc = mq_error(MQ_EUNSUPPORTED, "'%s': tensor '%s' has %" PRId64 " dims (at most %d)", r.f->path, t->name,
                      dims_n, MQ_ONNX_MAX_DIMS);
        goto done;
    }
    t->n_dims = (int)dims_n;
    t->n_elems = 1;
    for (int i = 0; i < t->n_dims; i++) {
        t->dims[i] = dims[i];
        if (dims[i] < 0 || (dims[i] > 0 && t->n_elems > INT64_MAX / 16 / dims[i])) {
            rc = mq_error(MQ_EFORMAT, "'%s': tensor '%s' has dimension %d of %" PRId64 " (negative or absurd)",
                          r.f->path, t->name, i, dims[i]);
            goto done;
        }
        t->n_elems *= dims[i];
    }
    size_t es = elem_size(t->elem);
    if (t->elem == MQ_ONNX_STRING || es == 0) {
        rc = mq_error(MQ_EUNSUPPORTED, "'%s': tensor '%s' has element type %s, which mixq does not read", r.f->path,
                      t->name, mq_onnx_elem_name(t->elem));
        goto done;
    }
    /* the data must be exactly dims' worth, in raw_data or in the one typed field that
     * carries this element type */
    int want_wt_ = 0;
    int tf = typed_field(t->elem, &want_wt_);
    for (int fnum = 4; fnum <= 11; fnum++)
        if (has_typed[fnum] && fnum != tf) {
            rc = mq_error(MQ_EFORMAT, "'%s': tensor '%s' of %s has data in %s", r.f->path, t->name,
                          mq_onnx_elem_name(t->elem), typed_field_name[fnum]);
            goto done;
        }
    if (t->raw.p) {
        if (has_typed[tf]) {
            rc = mq_error(MQ_EFORMAT, "'%s': tensor '%s' has both raw_data and %s", r.f->path, t->name,
                          typed_field_name[tf]);
            goto done;
        }
        if ((uint64_t)t->n_elems > (uint64_t)SIZE_MAX / es || t->raw.n != (size_t)t->n_elems * es) {
            rc = mq_error(MQ_EFORMAT, "'%s': tensor '%s' has %zu bytes of raw_data, its dims want %" PRId64
                          " x %zu", r.f->path, t->name, t->raw.n, t->n_elems, es);
            goto done;
        }
    } else {
        int64_t n = 0;
        void *vals = NULL;
        if (has_typed[tf]) {
            /* count only: pb_repeated allocates n (<= bytes present), freed at once */
            struct pb again = pb_sub(r0, s, "TensorProto");
            rc = pb_repeated(&again, (uint32_t)tf, want_wt_, typed_field_name[tf], &n, &vals,
                             want_wt_ == WT_I32 ? 4 : 8, want_wt_ == WT_I32 ? put_f32 : put_i64);
            free(vals);
            if (rc < 0)
                goto done;
            t->data_field = tf;
        }
        if (n != t->n_elems) {
            rc = mq_error(MQ_EFORMAT, "'%s': tensor '%s' has %" PRId64 " values, its dims want %" PRId64, r.f->path,
                          t->name, n, t->n_elems);
            goto done;
        }
    }
    rc = MQ_OK;
done:
    free(dims);
    free(ext_location);
    return rc;
}

static int read_attr(struct pb *r0, struct mq_onnx_span s, int depth, struct mq_onnx_attr *a)
{
    struct pb r = pb_sub(r0, s, "AttributeProto");
    int rc;
    if ((rc = pb_repeated(&r, 7, WT_I32, "floats", &a->n_floats, (void **)&a->floats, sizeof(float), put_f32)) < 0 ||
        (rc = pb_repeated(&r, 8, WT_VARINT, "ints", &a->n_ints, (void **)&a->ints, sizeof(int64_t), put_i64)) < 0)
        return rc;
    for (;;) {
        uint32_t field;
        int wt;
        const uint8_t *at;
        int64_t v;
        struct mq_onnx_span sub;
        if ((rc = pb_key(&r, &field, &wt, &at)) < 0)
            return rc;
        if (!field)
            break;
        switch (field) {
        case 1:
            rc = pb_strfield(&r, at, wt, MQ_ONNX_MAX_NAME, "attribute name", &a->name);
            break;
        case 20:
            rc = pb_int(&r, at, wt, "type", &v);
            a->type = (int32_t)v;
            break;
        case 2:
            if ((rc = want_wt(&r, at, wt, WT_I32, "f")) == MQ_OK) {
                if (r.end - r.p < 4)
                    return pb_fail(&r, at, "truncated float");
                uint32_t u = (uint32_t)r.p[0] | (uint32_t)r.p[1] << 8 | (uint32_t)r.p[2] << 16 |
                             (uint32_t)r.p[3] << 24;
                a->f = mq_bits_f32(u);
                r.p += 4;
            }
            break;
        case 3:
            rc = pb_int(&r, at, wt, "i", &a->i);
            break;
        case 4:
            if ((rc = want_wt(&r, at, wt, WT_LEN, "s")) == MQ_OK)
                rc = pb_len(&r, &a->s);
            break;
        case 5:
            if ((rc = want_wt(&r, at, wt, WT_LEN, "t")) < 0 || (rc = pb_len(&r, &sub)) < 0)
                return rc;
            if (a->t)
                return pb_fail(&r, at, "attribute with two tensors");
            a->t = calloc(1, sizeof(*a->t));
            if (!a->t)
                return mq_error(MQ_ENOMEM, "cannot allocate a tensor");
            rc = read_tensor(&r, sub, a->t);
            break;
        case 6:
            if ((rc = want_wt(&r, at, wt, WT_LEN, "g")) < 0 || (rc = pb_len(&r, &sub)) < 0)
                return rc;
            if (a->g)
                return pb_fail(&r, at, "attribute with two graphs");
            rc = read_graph(&r, sub, depth + 1, &a->g);
            break;
        default:
            rc = pb_skip(&r, wt);
        }
        if (rc < 0)
            return rc;
    }
    if (!a->name)
        return pb_fail(r0, s.p, "attribute without a name");
    return MQ_OK;
}

static int read_node(struct pb *r0, struct mq_onnx_span s, int depth, struct mq_onnx_node *n)
{
    struct pb r = pb_sub(r0, s, "NodeProto");
    int64_t count[32];
    int rc = pb_count(&r, count);
    if (rc < 0)
        return rc;
    if (count[1] > INT32_MAX / 2 || count[2] > INT32_MAX / 2 || count[5] > INT32_MAX / 2)
        return pb_fail(&r, s.p, "too many fields");
    XCALLOC(&r, n->inputs, count[1]);
    XCALLOC(&r, n->outputs, count[2]);
    XCALLOC(&r, n->attrs, count[5]);
    for (;;) {
        uint32_t field;
        int wt;
        const uint8_t *at;
        struct mq_onnx_span sub;
        if ((rc = pb_key(&r, &field, &wt, &at)) < 0)
            return rc;
        if (!field)
            break;
        switch (field) {
        case 1:
            rc = pb_strfield(&r, at, wt, MQ_ONNX_MAX_NAME, "input name", &n->inputs[n->n_inputs++]);
            break;
        case 2:
            rc = pb_strfield(&r, at, wt, MQ_ONNX_MAX_NAME, "output name", &n->outputs[n->n_outputs++]);
            break;
        case 3:
            rc = pb_strfield(&r, at, wt, MQ_ONNX_MAX_NAME, "node name", &n->name);
            break;
        case 4:
            rc = pb_strfield(&r, at, wt, 256, "op_type", &n->op_type);
            break;
        case 7:
            rc = pb_strfield(&r, at, wt, 256, "domain", &n->domain);
            break;
        case 5:
            if ((rc = want_wt(&r, at, wt, WT_LEN, "attribute")) < 0 || (rc = pb_len(&r, &sub)) < 0)
                return rc;
            rc = read_attr(&r, sub, depth, &n->attrs[n->n_attrs++]);
            break;
        default:
            rc = pb_skip(&r, wt);
        }
        if (rc < 0)
            return rc;
    }
    if (!n->op_type || !n->op_type[0])
        return pb_fail(r0, s.p, "node without an op_type");
    if ((!n->name && (rc = pb_str(&r, s.p, (struct mq_onnx_span){0}, 0, "node name", &n->name)) < 0) ||
        (!n->domain && (rc = pb_str(&r, s.p, (struct mq_onnx_span){0}, 0, "domain", &n->domain)) < 0))
        return rc;
    return MQ_OK;
}

/* ValueInfoProto: name, and TypeProto.tensor_type's elem_type and shape. */
static int read_value_info(struct pb *r0, struct mq_onnx_span s, struct mq_onnx_value_info *vi)
{
    struct pb r = pb_sub(r0, s, "ValueInfoProto");
    int rc;
    for (;;) {
        uint32_t field;
        int wt;
        const uint8_t *at;
        struct mq_onnx_span ts;
        if ((rc = pb_key(&r, &field, &wt, &at)) < 0)
            return rc;
        if (!field)
            break;
        if (field == 1) {
            if ((rc = pb_strfield(&r, at, wt, MQ_ONNX_MAX_NAME, "value name", &vi->name)) < 0)
                return rc;
            continue;
        }
        if (field != 2) {
            if ((rc = pb_skip(&r, wt)) < 0)
                return rc;
            continue;
        }
        if ((rc = want_wt(&r, at, wt, WT_LEN, "type")) < 0 || (rc = pb_len(&r, &ts)) < 0)
            return rc;
        struct pb tr = pb_sub(&r, ts, "TypeProto");
        for (;;) {
            uint32_t tf;
            int twt;
            const uint8_t *tat;
            struct mq_onnx_span tt;
            if ((rc = pb_key(&tr, &tf, &twt, &tat)) < 0)
                return rc;
            if (!tf)
                break;
            if (tf != 1) { /* sequence, map, optional, sparse: not a plain tensor */
                if ((rc = pb_skip(&tr, twt)) < 0)
                    return rc;
                continue;
            }
            if ((rc = want_wt(&tr, tat, twt, WT_LEN, "tensor_type")) < 0 || (rc = pb_len(&tr, &tt)) < 0)
                return rc;
            struct pb er = pb_sub(&tr, tt, "TypeProto.Tensor");
            for (;;) {
                uint32_t ef;
                int ewt;
                const uint8_t *eat;
                int64_t v;
                struct mq_onnx_span ss;
                if ((rc = pb_key(&er, &ef, &ewt, &eat)) < 0)
                    return rc;
                if (!ef)
                    break;
                if (ef == 1) {
                    if ((rc = pb_int(&er, eat, ewt, "elem_type", &v)) < 0)
                        return rc;
                    vi->elem = (int32_t)v;
                    continue;
                }
                if (ef != 2) {
                    if ((rc = pb_skip(&er, ewt)) < 0)
                        return rc;
                    continue;
                }
                if ((rc = want_wt(&er, eat, ewt, WT_LEN, "shape")) < 0 || (rc = pb_len(&er, &ss)) < 0)
                    return rc;
                vi->has_shape = true;
                vi->n_dims = 0;
                struct pb sr = pb_sub(&er, ss, "TensorShapeProto");
                for (;;) {
                    uint32_t sf;
                    int swt;
                    const uint8_t *sat;
                    struct mq_onnx_span ds;
                    if ((rc = pb_key(&sr, &sf, &swt, &sat)) < 0)
                        return rc;
                    if (!sf)
                        break;
                    if (sf != 1) {
                        if ((rc = pb_skip(&sr, swt)) < 0)
                            return rc;
                        continue;
                    }
                    if ((rc = want_wt(&sr, sat, swt, WT_LEN, "dim")) < 0 || (rc = pb_len(&sr, &ds)) < 0)
                        return rc;
                    if (vi->n_dims == MQ_ONNX_MAX_DIMS)
                        return mq_error(MQ_EUNSUPPORTED, "'%s': value '%s' has more than %d dims", r.f->path,
                                        vi->name ? vi->name : "?", MQ_ONNX_MAX_DIMS);
                    int d = vi->n_dims++;
                    vi->dims[d] = -1;
                    struct pb dr = pb_sub(&sr, ds, "Dimension");
                    for (;;) {
                        uint32_t df;
                        int dwt;
                        const uint8_t *dat;
                        if ((rc = pb_key(&dr, &df, &dwt, &dat)) < 0)
                            return rc;
                        if (!df)
                            break;
                        if (df == 1) {
                            if ((rc = pb_int(&dr, dat, dwt, "dim_value", &v)) < 0)
                                return rc;
                            vi->dims[d] = v >= 0 ? v : -1;
                        } else if (df == 2) {
                            /* a label of any length (exporters write whole expressions:
                             * YOLOv8's run past 300 bytes); the bytes are in the file */
                            if ((rc = pb_strfield(&dr, dat, dwt, SIZE_MAX, "dim_param", &vi->dim_params[d])) < 0)
                                return rc;
                        } else if ((rc = pb_skip(&dr, dwt)) < 0) {
                            return rc;
                        }
                    }
                }
            }
        }
    }
    if (!vi->name)
        return pb_fail(r0, s.p, "graph input or output without a name");
    return MQ_OK;
}

static int read_graph(struct pb *r0, struct mq_onnx_span s, int depth, struct mq_onnx_graph **out)
{
    if (depth > MQ_ONNX_MAX_DEPTH)
        return pb_fail(r0, s.p, "graphs nested too deep");
    struct mq_onnx_graph *g = calloc(1, sizeof(*g));
    if (!g)
        return mq_error(MQ_ENOMEM, "cannot allocate a graph");
    *out = g;
    struct pb r = pb_sub(r0, s, "GraphProto");
    int64_t count[32];
    int rc = pb_count(&r, count);
    if (rc < 0)
        return rc;
    if (count[15] > 0)
        return mq_error(MQ_EUNSUPPORTED, "'%s': sparse initializers are not supported", r.f->path);
    for (int f = 1; f < 16; f++)
        if (count[f] > INT32_MAX / 2)
            return pb_fail(&r, s.p, "too many fields");
    XCALLOC(&r, g->nodes, count[1]);
    XCALLOC(&r, g->inits, count[5]);
    XCALLOC(&r, g->inputs, count[11]);
    XCALLOC(&r, g->outputs, count[12]);
    for (;;) {
        uint32_t field;
        int wt;
        const uint8_t *at;
        struct mq_onnx_span sub;
        if ((rc = pb_key(&r, &field, &wt, &at)) < 0)
            return rc;
        if (!field)
            break;
        if (field == 2) {
            if ((rc = pb_strfield(&r, at, wt, MQ_ONNX_MAX_NAME, "graph name", &g->name)) < 0)
                return rc;
            continue;
        }
        if (field != 1 && field != 5 && field != 11 && field != 12) {
            if ((rc = pb_skip(&r, wt)) < 0)
                return rc;
            continue;
        }
        if ((rc = want_wt(&r, at, wt, WT_LEN, "graph element")) < 0 || (rc = pb_len(&r, &sub)) < 0)
            return rc;
        if (field == 1)
            rc = read_node(&r, sub, depth, &g->nodes[g->n_nodes++]);
        else if (field == 5)
            rc = read_tensor(&r, sub, &g->inits[g->n_inits++]);
        else if (field == 11)
            rc = read_value_info(&r, sub, &g->inputs[g->n_inputs++]);
        else
            rc = read_value_info(&r, sub, &g->outputs[g->n_outputs++]);
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < g->n_inits; i++)
        if (!g->inits[i].name[0])
            return mq_error(MQ_EFORMAT, "'%s': initializer %d has no name", r.f->path, i);
    return MQ_OK;
}

static int read_model(struct mq_onnx_file *f)
{
    struct pb r = {.p = f->base, .end = f->base + f->size, .f = f, .msg = "ModelProto"};
    int64_t count[32];
    int rc = pb_count(&r, count);
    if (rc < 0)
        return rc;
    if (count[8] > INT32_MAX / 2 || count[14] > INT32_MAX / 2)
        return pb_fail(&r, f->base, "too many fields");
    XCALLOC(&r, f->opsets, count[8]);
    XCALLOC(&r, f->meta, count[14]);
    bool have_ir = false;
    for (;;) {
        uint32_t field;
        int wt;
        const uint8_t *at;
        struct mq_onnx_span sub;
        if ((rc = pb_key(&r, &field, &wt, &at)) < 0)
            return rc;
        if (!field)
            break;
        switch (field) {
        case 1:
            rc = pb_int(&r, at, wt, "ir_version", &f->ir_version);
            have_ir = true;
            break;
        case 2:
            rc = pb_strfield(&r, at, wt, MQ_ONNX_MAX_NAME, "producer_name", &f->producer);
            break;
        case 3:
            rc = pb_strfield(&r, at, wt, MQ_ONNX_MAX_NAME, "producer_version", &f->producer_version);
            break;
        case 7:
            if ((rc = want_wt(&r, at, wt, WT_LEN, "graph")) < 0 || (rc = pb_len(&r, &sub)) < 0)
                return rc;
            if (f->graph)
                return pb_fail(&r, at, "second graph");
            rc = read_graph(&r, sub, 0, &f->graph);
            break;
        case 8:
        case 14: {
            if ((rc = want_wt(&r, at, wt, WT_LEN, field == 8 ? "opset_import" : "metadata_props")) < 0 ||
                (rc = pb_len(&r, &sub)) < 0)
                return rc;
            struct pb er = pb_sub(&r, sub, field == 8 ? "OperatorSetIdProto" : "StringStringEntryProto");
            struct mq_onnx_opset *o = field == 8 ? &f->opsets[f->n_opsets++] : NULL;
            struct mq_onnx_meta *m = field == 14 ? &f->meta[f->n_meta++] : NULL;
            for (;;) {
                uint32_t ef;
                int ewt;
                const uint8_t *eat;
                if ((rc = pb_key(&er, &ef, &ewt, &eat)) < 0)
                    return rc;
                if (!ef)
                    break;
                if (o && ef == 1)
                    rc = pb_strfield(&er, eat, ewt, 256, "opset domain", &o->domain);
                else if (o && ef == 2)
                    rc = pb_int(&er, eat, ewt, "opset version", &o->version);
                else if (m && ef == 1)
                    rc = pb_strfield(&er, eat, ewt, MQ_ONNX_MAX_NAME, "metadata key", &m->key);
                else if (m && ef == 2)
                    rc = pb_strfield(&er, eat, ewt, f->size, "metadata value", &m->value);
                else
                    rc = pb_skip(&er, ewt);
                if (rc < 0)
                    return rc;
            }
            if (o && !o->domain && (rc = pb_str(&er, sub.p, (struct mq_onnx_span){0}, 0, "domain", &o->domain)) < 0)
                return rc;
            if (m && (!m->key || !m->value))
                return pb_fail(&r, at, "metadata entry without a key or a value");
            break;
        }
        case 25:
            f->n_functions++;
            rc = pb_skip(&r, wt);
            break;
        default:
            rc = pb_skip(&r, wt);
        }
        if (rc < 0)
            return rc;
    }
    if (!have_ir || !f->graph)
        return mq_error(MQ_EFORMAT, "'%s': not an ONNX model: %s", f->path,
                        !have_ir ? "no ir_version (and no GGUF magic either)" : "no graph");
    if (f->ir_version < 3 || f->ir_version > 11)
        return mq_error(MQ_EUNSUPPORTED, "'%s': ONNX IR version %" PRId64 " (mixq reads 3..11)", f->path,
                        f->ir_version);
    if (f->n_opsets == 0)
        return mq_error(MQ_EFORMAT, "'%s': ONNX model imports no opset", f->path);
    if (!f->producer && (rc = pb_str(&r, f->base, (struct mq_onnx_span){0}, 0, "producer", &f->producer)) < 0)
        return rc;
    return MQ_OK;
}

/* ---- public ---------------------------------------------------------------------------- */

static void free_graph(struct mq_onnx_graph *g);

static void free_tensor(struct mq_onnx_tensor *t)
{
    if (t)
        free(t->name);
}

static void free_graph(struct mq_onnx_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++) {
        struct mq_onnx_node *n = &g->nodes[i];
        free(n->name);
        free(n->op_type);
        free(n->domain);
        for (int k = 0; k < n->n_inputs; k++)
            free(n->inputs[k]);
        for (int k = 0; k < n->n_outputs; k++)
            free(n->outputs[k]);
        free(n->inputs);
        free(n->outputs);
        for (int k = 0; k < n->n_attrs; k++) {
            struct mq_onnx_attr *a = &n->attrs[k];
            free(a->name);
            free_tensor(a->t);
            free(a->t);
            free_graph(a->g);
            free(a->floats);
            free(a->ints);
        }
        free(n->attrs);
    }
    for (int i = 0; i < g->n_inits; i++)
        free_tensor(&g->inits[i]);
    struct mq_onnx_value_info *lists[2] = {g->inputs, g->outputs};
    int counts[2] = {g->n_inputs, g->n_outputs};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < counts[l]; i++) {
            free(lists[l][i].name);
            for (int d = 0; d < MQ_ONNX_MAX_DIMS; d++)
                free(lists[l][i].dim_params[d]);
        }
    free(g->name);
    free(g->nodes);
    free(g->inits);
    free(g->inputs);
    free(g->outputs);
    free(g);
}

void mq_onnx_close(struct mq_onnx_file *f)
{
    if (!f)
        return;
    free_graph(f->graph);
    for (int i = 0; i < f->n_opsets; i++)
        free(f->opsets[i].domain);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->opsets);
    free(f->meta);
    free(f->producer);
    free(f->producer_version);
    if (f->mapping)
        munmap(f->mapping, f->size);
    free(f);
}

static int parse(const void *buf, size_t size, const char *name, void *mapping, struct mq_onnx_file **out)
{
    struct mq_onnx_file *f = calloc(1, sizeof(*f));
    if (!f) {
        if (mapping)
            munmap(mapping, size);
        return mq_error(MQ_ENOMEM, "cannot allocate an ONNX file");
    }
    snprintf(f->path, sizeof(f->path), "%s", name);
    f->base = buf;
    f->size = size;
    f->mapping = mapping;
    int rc = read_model(f);
    if (rc < 0) {
        mq_onnx_close(f);
        return rc;
    }
    *out = f;
    return MQ_OK;
}

int mq_onnx_open_memory(const void *buf, size_t size, const char *name, struct mq_onnx_file **out)
{
    *out = NULL;
    if (!buf && size)
        return mq_error(MQ_EINVAL, "'%s': no buffer for %zu bytes", name ? name : "(memory)", size);
    static const uint8_t empty[1];
    return parse(buf ? buf : empty, size, name ? name : "(memory)", NULL, out);
}

int mq_onnx_open(const char *path, struct mq_onnx_file **out)
{
    *out = NULL;
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
    if (!S_ISREG(st.st_mode)) {
        rc = mq_error(MQ_EIO, "cannot read '%s': not a regular file", path);
        goto out;
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > SIZE_MAX) {
        rc = mq_error(MQ_EFORMAT, "'%s': %s", path, st.st_size <= 0 ? "empty file: not a model" : "too large");
        goto out;
    }
    size = (size_t)st.st_size;
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        map = NULL;
        rc = mq_error(MQ_EIO, "cannot map '%s': %s", path, strerror(errno));
        goto out;
    }
    rc = parse(map, size, path, map, out);
    map = NULL; /* parse owns it now (closed with the file on failure) */
out:
    if (map)
        munmap(map, size);
    close(fd);
    return rc;
}

int64_t mq_onnx_opset(const struct mq_onnx_file *f)
{
    for (int i = 0; i < f->n_opsets; i++)
        if (!f->opsets[i].domain[0] || strcmp(f->opsets[i].domain, "ai.onnx") == 0)
            return f->opsets[i].version;
    return 0;
}

const char *mq_onnx_meta_get(const struct mq_onnx_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}

const char *mq_onnx_elem_name(int32_t elem)
{
    static const char *const names[] = {
        [MQ_ONNX_UNDEFINED] = "undefined", [MQ_ONNX_FLOAT] = "float",   [MQ_ONNX_UINT8] = "uint8",
        [MQ_ONNX_INT8] = "int8",           [MQ_ONNX_UINT16] = "uint16", [MQ_ONNX_INT16] = "int16",
        [MQ_ONNX_INT32] = "int32",         [MQ_ONNX_INT64] = "int64",   [MQ_ONNX_STRING] = "string",
        [MQ_ONNX_BOOL] = "bool",           [MQ_ONNX_FLOAT16] = "float16", [MQ_ONNX_DOUBLE] = "double",
        [MQ_ONNX_UINT32] = "uint32",       [MQ_ONNX_UINT64] = "uint64", [14] = "complex64",
        [15] = "complex128",               [MQ_ONNX_BFLOAT16] = "bfloat16",
    };
    if (elem >= 0 && (size_t)elem < sizeof(names) / sizeof(names[0]) && names[elem])
        return names[elem];
    return elem >= 17 && elem <= 23 ? "float8/int4" : "unknown";
}

/* Element i of raw little-endian data, as f64 (exact for every type but 64-bit ints). */
static uint64_t raw_bits(const uint8_t *p, size_t es, int64_t i)
{
    uint64_t v = 0;
    for (size_t k = 0; k < es; k++)
        v |= (uint64_t)p[(size_t)i * es + k] << (8 * k);
    return v;
}

/* The value of an element from its bits (raw) or its typed-field scalar. */
static double elem_value(int32_t elem, uint64_t bits, bool *is_int, int64_t *iv)
{
    *is_int = true;
    switch (elem) {
    case MQ_ONNX_FLOAT: *is_int = false; return (double)mq_bits_f32((uint32_t)bits);
    case MQ_ONNX_DOUBLE: { double d; memcpy(&d, &bits, 8); *is_int = false; return d; }
    case MQ_ONNX_FLOAT16: *is_int = false; return (double)mq_f16_to_f32((uint16_t)bits);
    case MQ_ONNX_BFLOAT16: *is_int = false; return (double)mq_bits_f32((uint32_t)(uint16_t)bits << 16);
    case MQ_ONNX_INT8: *iv = (int8_t)(uint8_t)bits; break;
    case MQ_ONNX_UINT8: *iv = (uint8_t)bits; break;
    case MQ_ONNX_INT16: *iv = (int16_t)(uint16_t)bits; break;
    case MQ_ONNX_UINT16: *iv = (uint16_t)bits; break;
    case MQ_ONNX_INT32: *iv = (int32_t)(uint32_t)bits; break;
    case MQ_ONNX_UINT32: *iv = (uint32_t)bits; break;
    case MQ_ONNX_BOOL: *iv = bits != 0; break;
    default: *iv = (int64_t)bits; break; /* int64, uint64 (checked by the caller) */
    }
    return (double)*iv;
}

struct decode_sink {
    const struct mq_onnx_tensor *t;
    float *f32;
    int64_t *i64;
    int bad; /* 1: float to int, 2: uint64 beyond int64 */
};

static void sink_put(void *arr, int64_t i, uint64_t bits)
{
    struct decode_sink *d = arr;
    const struct mq_onnx_tensor *t = d->t;
    bool is_int;
    int64_t iv = 0;
    /* typed fields hold float16/bfloat16 as their 16 bits in int32_data, float in
     * float_data bits, double in double_data bits: the same bits as raw_data */
    double v = elem_value(t->elem, bits, &is_int, &iv);
    if (t->elem == MQ_ONNX_UINT64 && (int64_t)bits < 0)
        d->bad = 2;
    if (d->f32)
        d->f32[i] = (float)v;
    else if (!is_int)
        d->bad = 1;
    else
        d->i64[i] = iv;
}

static int decode(const struct mq_onnx_tensor *t, float *f32, int64_t *i64)
{
    struct decode_sink d = {.t = t, .f32 = f32, .i64 = i64};
    if (t->raw.p) {
        size_t es = elem_size(t->elem);
        for (int64_t i = 0; i < t->n_elems; i++)
            sink_put(&d, i, raw_bits(t->raw.p, es, i));
    } else if (t->n_elems > 0) {
        int wt;
        int tf = typed_field(t->elem, &wt);
        MQ_ASSERT(tf == t->data_field);
        /* the file was checked when read: the field holds exactly n_elems scalars */
        struct mq_onnx_file fake = {.path = "(tensor)", .base = t->msg.p, .size = t->msg.n};
        struct pb r = {.p = t->msg.p, .end = t->msg.p + t->msg.n, .f = &fake, .msg = "TensorProto"};
        int64_t filled = 0;
        for (;;) {
            uint32_t f;
            int fwt;
            const uint8_t *at;
            int rc = pb_key(&r, &f, &fwt, &at);
            if (rc < 0)
                return rc;
            if (!f)
                break;
            if (f != (uint32_t)tf) {
                if ((rc = pb_skip(&r, fwt)) < 0)
                    return rc;
                continue;
            }
            struct mq_onnx_span s = {0};
            if (fwt != wt && (rc = pb_len(&r, &s)) < 0)
                return rc;
            if ((rc = pb_read_scalars(&r, at, fwt, wt, s, t->n_elems, &filled, sink_put, &d)) < 0)
                return rc;
        }
        MQ_ASSERT(filled == t->n_elems);
    }
    if (d.bad == 1)
        return mq_error(MQ_EUNSUPPORTED, "tensor '%s' of %s is used where integers are needed", t->name,
                        mq_onnx_elem_name(t->elem));
    if (d.bad == 2)
        return mq_error(MQ_ERANGE, "tensor '%s' holds a uint64 beyond int64", t->name);
    return MQ_OK;
}

int mq_onnx_tensor_f32(const struct mq_onnx_tensor *t, float *out) { return decode(t, out, NULL); }

int mq_onnx_tensor_i64(const struct mq_onnx_tensor *t, int64_t *out) { return decode(t, NULL, out); }
