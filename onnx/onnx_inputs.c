/* onnx/onnx_inputs.c - the user's input arrays (.npy, .npz, folders) and seeded random
 * inputs (onnx/onnx_inputs.h). Every size read from a file is checked before use. */
#include "onnx/onnx_inputs.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/fp16.h"
#include "core/status.h"
#include "onnx/onnx_task.h"

#define ARRAYS_MAX_BYTES ((size_t)1 << 30) /* one .npy / .npz file */
#define NPZ_MAX_MEMBERS 256

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool ox_inputs_is_arrays(const char *path)
{
    struct stat st;
    if (!path)
        return false;
    if (ends_with(path, ".npy") || ends_with(path, ".npz"))
        return true;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* ---- .npy ---------------------------------------------------------------------------------- */

/* The value of 'key' in the header dict: a pointer just after "'key':" and its spaces. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

int ox_npy_parse(const uint8_t *buf, size_t len, const char *what, struct ox_array *a)
{
    memset(a, 0, sizeof(*a));
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return mq_error(MQ_EFORMAT, "'%s' is not a .npy array (no \\x93NUMPY magic)", what);
    int major = buf[6];
    size_t hlen, at;
    if (major == 1) {
        hlen = rd16(buf + 8);
        at = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return mq_error(MQ_EFORMAT, "'%s': truncated .npy header", what);
        hlen = rd32(buf + 8);
        at = 12;
    } else {
        return mq_error(MQ_EFORMAT, "'%s': .npy version %d is not supported (1 to 3 are)", what,
                        major);
    }
    if (hlen > 65536 || at + hlen > len)
        return mq_error(MQ_EFORMAT, "'%s': truncated .npy header", what);
    char hdr[65537];
    memcpy(hdr, buf + at, hlen);
    hdr[hlen] = 0;
    at += hlen;
    /* descr: '<f4' and the like */
    const char *d = dict_value(hdr, "descr");
    char descr[8] = "";
    if (!d || *d != '\'' || sscanf(d + 1, "%7[^']", descr) != 1)
        return mq_error(
            MQ_EFORMAT,
            "'%s': .npy header without a simple 'descr' (structured arrays are not supported)",
            what);
    const char *fo = dict_value(hdr, "fortran_order");
    if (!fo || strncmp(fo, "False", 5) != 0)
        return mq_error(MQ_EUNSUPPORTED,
                        "'%s': a Fortran-order array (save it with np.ascontiguousarray)", what);
    char order = descr[0], kind = descr[1];
    int size = atoi(descr + 2);
    if (strlen(descr) < 3 || (order != '<' && order != '|' && order != '=') ||
        !strchr("fiub", kind) || !(size == 1 || size == 2 || size == 4 || size == 8) ||
        (kind == 'f' && size == 1) || (kind == 'b' && size != 1) || (order == '|' && size != 1))
        return mq_error(MQ_EUNSUPPORTED,
                        "'%s': element type '%s' is not supported (little-endian f2/f4/f8, "
                        "i1-i8, u1-u8 or b1 are)",
                        what, descr);
    const char *s = dict_value(hdr, "shape");
    if (!s || *s != '(')
        return mq_error(MQ_EFORMAT, "'%s': .npy header without a 'shape' tuple", what);
    s++;
    int64_t n = 1;
    for (;;) {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || errno || v < 0)
            return mq_error(MQ_EFORMAT, "'%s': bad .npy shape", what);
        if (a->nd == MQ_ONNX_MAX_DIMS)
            return mq_error(MQ_EUNSUPPORTED, "'%s' has more than %d dimensions", what,
                            MQ_ONNX_MAX_DIMS);
        if (v == 0)
            return mq_error(MQ_EINVAL, "'%s' is empty (a dimension of size 0)", what);
        if (v > OX_MAX_ELEMS / n)
            return mq_error(MQ_EFORMAT, "'%s': shape too large", what);
        a->dims[a->nd++] = v;
        n *= v;
        s = end;
    }
    if ((uint64_t)n > (len - at) / (uint64_t)size)
        return mq_error(MQ_EFORMAT,
                        "'%s': %" PRId64 " elements of %d bytes but %zu bytes of data (truncated)",
                        what, n, size, len - at);
    a->n = n;
    a->is_float = kind == 'f';
    a->data = malloc((size_t)n * (a->is_float ? sizeof(float) : sizeof(int64_t)));
    if (!a->data)
        return mq_error(MQ_ENOMEM, "cannot allocate '%s' (%" PRId64 " elements)", what, n);
    const uint8_t *p = buf + at;
    for (int64_t i = 0; i < n; i++, p += size) {
        if (kind == 'f') {
            float v;
            if (size == 2)
                v = mq_f16_to_f32(rd16(p));
            else if (size == 4) {
                uint32_t u = rd32(p);
                memcpy(&v, &u, 4);
            } else {
                uint64_t u = rd64(p);
                double dv;
                memcpy(&dv, &u, 8);
                v = (float)dv;
            }
            ((float *)a->data)[i] = v;
        } else {
            uint64_t u = size == 1 ? p[0] : size == 2 ? rd16(p) : size == 4 ? rd32(p) : rd64(p);
            int64_t v;
            if (kind == 'i' && size < 8) /* sign-extend */
                v = (int64_t)(u << (64 - 8 * size)) >> (64 - 8 * size);
            else
                v = (int64_t)u;
            if (kind == 'b')
                v = v != 0;
            ((int64_t *)a->data)[i] = v;
        }
    }
    return MQ_OK;
}

/* ---- .npz (a zip of stored .npy members) ----------------------------------------------------- */

static void arrays_free(struct ox_array *a, int n)
{
    for (int i = 0; i < n; i++)
        free(a[i].data);
}

static int npz_parse(const uint8_t *buf, size_t len, const char *path, struct ox_array *arr,
                     int *n_arr)
{
    *n_arr = 0;
    /* the end of central directory record: 22 bytes plus a comment of up to 65535 */
    size_t eocd = SIZE_MAX;
    for (size_t back = 22; back <= len && back <= 22 + 65535; back++)
        if (rd32(buf + len - back) == 0x06054b50u) {
            eocd = len - back;
            break;
        }
    if (eocd == SIZE_MAX)
        return mq_error(MQ_EFORMAT, "'%s' is not a .npz (zip) archive", path);
    uint32_t n_ent = rd16(buf + eocd + 10), cd_size = rd32(buf + eocd + 12),
             cd_off = rd32(buf + eocd + 16);
    if (n_ent == 0xFFFF || cd_off == 0xFFFFFFFFu)
        return mq_error(MQ_EUNSUPPORTED,
                        "'%s': a zip64 archive (arrays over 4 GiB) is not supported", path);
    if ((size_t)cd_off + cd_size > eocd)
        return mq_error(MQ_EFORMAT, "'%s': its zip directory lies outside the file", path);
    if (n_ent > NPZ_MAX_MEMBERS)
        return mq_error(MQ_EUNSUPPORTED, "'%s' has %u members (at most %d)", path, n_ent,
                        NPZ_MAX_MEMBERS);
    size_t at = cd_off;
    int rc = MQ_OK;
    for (uint32_t e = 0; e < n_ent; e++) {
        if (at + 46 > (size_t)cd_off + cd_size || rd32(buf + at) != 0x02014b50u) {
            rc = mq_error(MQ_EFORMAT, "'%s': bad zip directory entry %u", path, e);
            break;
        }
        uint16_t method = rd16(buf + at + 10), nlen = rd16(buf + at + 28),
                 xlen = rd16(buf + at + 30), clen = rd16(buf + at + 32);
        uint64_t csize = rd32(buf + at + 20), usize = rd32(buf + at + 24),
                 loff = rd32(buf + at + 42);
        const uint8_t *name = buf + at + 46, *x = name + nlen;
        if (at + 46 + (size_t)nlen + xlen + clen > (size_t)cd_off + cd_size) {
            rc = mq_error(MQ_EFORMAT, "'%s': bad zip directory entry %u", path, e);
            break;
        }
        /* zip64 sizes: in the extra field 0x0001, those that are 0xFFFFFFFF, in order */
        for (size_t k = 0; k + 4 <= xlen;) {
            uint16_t id = rd16(x + k), sz = rd16(x + k + 2);
            if (k + 4 + sz > xlen)
                break;
            if (id == 0x0001) {
                size_t f = k + 4;
                if (usize == 0xFFFFFFFFu && f + 8 <= k + 4 + sz)
                    usize = rd64(x + f), f += 8;
                if (csize == 0xFFFFFFFFu && f + 8 <= k + 4 + sz)
                    csize = rd64(x + f), f += 8;
                if (loff == 0xFFFFFFFFu && f + 8 <= k + 4 + sz)
                    loff = rd64(x + f);
            }
            k += 4 + (size_t)sz;
        }
        at += 46 + (size_t)nlen + xlen + clen;
        char member[160];
        if (nlen == 0 || nlen >= sizeof(member)) {
            rc = mq_error(MQ_EFORMAT, "'%s': a member name of %u bytes", path, nlen);
            break;
        }
        memcpy(member, name, nlen);
        member[nlen] = 0;
        if (nlen > 0 && member[nlen - 1] == '/') /* a directory entry */
            continue;
        if (!ends_with(member, ".npy") || (size_t)nlen - 4 >= sizeof(arr[0].name)) {
            rc = mq_error(MQ_EFORMAT, "'%s': member '%s' is not a .npy array", path, member);
            break;
        }
        if (method != 0) {
            rc = mq_error(MQ_EUNSUPPORTED,
                          "'%s': member '%s' is compressed (np.savez_compressed): save with "
                          "np.savez",
                          path, member);
            break;
        }
        if (csize != usize || loff + 30 > len || rd32(buf + loff) != 0x04034b50u) {
            rc = mq_error(MQ_EFORMAT, "'%s': member '%s' has a bad local header", path, member);
            break;
        }
        uint64_t data = loff + 30 + rd16(buf + loff + 26) + rd16(buf + loff + 28);
        if (data > len || csize > len - data) {
            rc = mq_error(MQ_EFORMAT, "'%s': member '%s' is truncated", path, member);
            break;
        }
        char what[4400];
        snprintf(what, sizeof(what), "%s:%s", path, member);
        struct ox_array *a = &arr[*n_arr];
        if ((rc = ox_npy_parse(buf + data, (size_t)csize, what, a)) < 0) {
            free(a->data);
            break;
        }
        memcpy(a->name, member, nlen - 4);
        a->name[nlen - 4] = 0;
        for (int i = 0; i < *n_arr; i++)
            if (strcmp(arr[i].name, a->name) == 0)
                rc = mq_error(MQ_EFORMAT, "'%s' holds array '%s' twice", path, a->name);
        (*n_arr)++;
        if (rc < 0)
            break;
    }
    if (rc < 0) {
        arrays_free(arr, *n_arr);
        *n_arr = 0;
    }
    return rc;
}

/* ---- samples -------------------------------------------------------------------------------- */

void ox_samples_free(struct ox_samples *s)
{
    if (!s)
        return;
    for (int i = 0; s->io && i < s->n_samples * s->n_io; i++)
        free(s->io[i].data);
    free(s->io);
    memset(s, 0, sizeof(*s));
}

static bool input_is_float(const struct ox_input *in)
{
    int32_t e = in->vi->elem;
    return e == MQ_ONNX_FLOAT || e == MQ_ONNX_FLOAT16 || e == MQ_ONNX_DOUBLE ||
           e == MQ_ONNX_BFLOAT16;
}

static int count_fed(const struct ox_graph *g)
{
    int n = 0;
    for (int i = 0; i < g->n_inputs; i++)
        n += !g->inputs[i].bound;
    return n;
}

static int grow(struct ox_samples *s)
{
    if (s->n_samples >= OX_INPUTS_MAX_SAMPLES)
        return mq_error(MQ_EUNSUPPORTED, "more than %d samples", OX_INPUTS_MAX_SAMPLES);
    struct mq_onnx_io *io =
        realloc(s->io, (size_t)(s->n_samples + 1) * (size_t)s->n_io * sizeof(*io));
    if (!io)
        return mq_error(MQ_ENOMEM, "cannot allocate a sample");
    s->io = io;
    memset(io + (size_t)s->n_samples * (size_t)s->n_io, 0, (size_t)s->n_io * sizeof(*io));
    s->n_samples++;
    return MQ_OK;
}

/* The arrays of one file as the next sample: every fed input gets its array (checked),
 * every array an input. The arrays' data move into the sample. */
static int add_sample(const struct ox_graph *g, const char *file, struct ox_array *arr, int n_arr,
                      struct ox_samples *s)
{
    int rc = grow(s);
    if (rc < 0)
        return rc;
    struct mq_onnx_io *io = s->io + (size_t)(s->n_samples - 1) * (size_t)s->n_io;
    bool used[NPZ_MAX_MEMBERS] = {false};
    int k = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const struct ox_input *in = &g->inputs[i];
        if (in->bound)
            continue;
        const struct mq_onnx_value_info *vi = in->vi;
        int j = -1;
        for (int t = 0; t < n_arr && j < 0; t++)
            if (arr[t].name[0] ? strcmp(arr[t].name, vi->name) == 0 : n_arr == 1 && s->n_io == 1)
                j = t;
        if (j < 0)
            return mq_error(MQ_EINVAL, "'%s' has no array for input '%s'%s", file, vi->name,
                            n_arr == 1 && !arr[0].name[0]
                                ? " (a .npy feeds a model of one input: use a .npz)"
                                : "");
        struct ox_array *a = &arr[j];
        used[j] = true;
        int nd = in->shape_nd > 0 ? in->shape_nd : vi->has_shape ? vi->n_dims : a->nd;
        if (a->nd != nd)
            return mq_error(MQ_EINVAL, "'%s': input '%s' has rank %d, the array %d", file, vi->name,
                            nd, a->nd);
        for (int d = 0; d < nd; d++) {
            int64_t want = in->shape_nd > 0 ? in->shape[d] : vi->has_shape ? vi->dims[d] : -1;
            if (want >= 0 && a->dims[d] != want)
                return mq_error(
                    MQ_EINVAL,
                    "'%s': input '%s' dimension %d is %" PRId64 "%s, the array's %" PRId64, file,
                    vi->name, d, want, in->shape_nd > 0 ? " (--shapes)" : "", a->dims[d]);
        }
        if (a->is_float != input_is_float(in))
            return mq_error(MQ_EINVAL, "'%s': input '%s' takes %s data, the array holds %s", file,
                            vi->name, input_is_float(in) ? "float" : "integer",
                            a->is_float ? "floats" : "integers");
        struct mq_onnx_io *o = &io[k++];
        o->name = vi->name;
        o->type = a->is_float ? MQ_ONNX_IO_F32 : MQ_ONNX_IO_I64;
        o->n_dims = a->nd;
        memcpy(o->dims, a->dims, sizeof(o->dims));
        o->data = a->data;
        a->data = NULL;
    }
    for (int t = 0; t < n_arr; t++)
        if (!used[t])
            return mq_error(MQ_EINVAL, "'%s': array '%s' is no input of the model", file,
                            arr[t].name);
    return MQ_OK;
}

static int load_file(const struct ox_graph *g, const char *file, struct ox_samples *s)
{
    char *cbuf;
    size_t len;
    int rc = mq_file_read(file, NULL, ARRAYS_MAX_BYTES, &cbuf, &len);
    if (rc < 0)
        return rc;
    const uint8_t *buf = (const uint8_t *)cbuf;
    struct ox_array arr[NPZ_MAX_MEMBERS];
    int n_arr = 0;
    if (ends_with(file, ".npz")) {
        rc = npz_parse(buf, len, file, arr, &n_arr);
    } else {
        rc = ox_npy_parse(buf, len, file, &arr[0]);
        n_arr = rc == MQ_OK;
        if (rc < 0)
            free(arr[0].data);
    }
    free(cbuf);
    if (rc == MQ_OK)
        rc = add_sample(g, file, arr, n_arr, s);
    arrays_free(arr, n_arr);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ox_inputs_load(const struct ox_graph *g, const char *path, int64_t max_samples,
                   struct ox_samples *out)
{
    memset(out, 0, sizeof(*out));
    out->n_io = count_fed(g);
    if (out->n_io == 0)
        return mq_error(MQ_EINVAL, "the model has no input to feed from '%s'", path);
    struct stat st;
    if (stat(path, &st) != 0)
        return mq_error(MQ_EIO, "cannot open '%s': %s", path, strerror(errno));
    int rc = MQ_OK;
    if (!S_ISDIR(st.st_mode)) {
        rc = load_file(g, path, out);
    } else {
        DIR *dir = opendir(path);
        if (!dir)
            return mq_error(MQ_EIO, "cannot open '%s': %s", path, strerror(errno));
        char **names = NULL;
        int n = 0, cap = 0;
        struct dirent *de;
        while (rc == MQ_OK && (de = readdir(dir))) {
            if (de->d_name[0] == '.' ||
                !(ends_with(de->d_name, ".npy") || ends_with(de->d_name, ".npz")))
                continue;
            if (n == OX_INPUTS_MAX_SAMPLES) {
                rc = mq_error(MQ_EUNSUPPORTED, "'%s' holds more than %d arrays", path,
                              OX_INPUTS_MAX_SAMPLES);
                break;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                char **nn = realloc(names, (size_t)cap * sizeof(*nn));
                if (!nn) {
                    rc = mq_error(MQ_ENOMEM, "cannot list '%s'", path);
                    break;
                }
                names = nn;
            }
            if (!(names[n] = strdup(de->d_name)))
                rc = mq_error(MQ_ENOMEM, "cannot list '%s'", path);
            else
                n++;
        }
        closedir(dir);
        if (rc == MQ_OK && n == 0)
            rc = mq_error(MQ_EINVAL, "'%s' holds no .npy or .npz file", path);
        if (rc == MQ_OK)
            qsort(names, (size_t)n, sizeof(*names), cmp_names);
        for (int i = 0; rc == MQ_OK && i < n && (!max_samples || i < max_samples); i++) {
            char file[4352];
            snprintf(file, sizeof(file), "%s/%s", path, names[i]);
            rc = load_file(g, file, out);
        }
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    if (rc < 0) {
        ox_samples_free(out);
        return rc;
    }
    snprintf(out->desc, sizeof(out->desc), "%d sample%s from '%.40s'", out->n_samples,
             out->n_samples == 1 ? "" : "s", path);
    return MQ_OK;
}

/* The rows of the fewest-rowed table that value v indexes: the axis dimension of the
 * constant data of every Gather that takes v (or a value-preserving op's output of it) as
 * indices; INT64_MAX where none does. */
static int64_t index_rows(const struct ox_graph *g, int v, int depth)
{
    static const char *const pass[] = {"Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten"};
    int64_t rows = INT64_MAX;
    for (int k = 0; k < g->n_nodes; k++) {
        const struct ox_node *nd = &g->nodes[k];
        const char *op = ox_ops[nd->op].name;
        if (!strcmp(op, "Gather") && nd->n_in >= 2 && nd->in[1] == v && nd->in[0] >= 0 &&
            g->values[nd->in[0]].is_const) {
            const struct ox_tensor *t = &g->values[nd->in[0]].c;
            int64_t axis = ox_attr_int(nd, "axis", 0);
            axis += axis < 0 ? t->nd : 0;
            if (axis >= 0 && axis < t->nd && t->dims[axis] > 0 && t->dims[axis] < rows)
                rows = t->dims[axis];
            continue;
        }
        for (size_t i = 0; depth < 8 && nd->n_in >= 1 && nd->in[0] == v && nd->n_out >= 1 &&
                           i < sizeof(pass) / sizeof(pass[0]); i++)
            if (!strcmp(op, pass[i])) {
                int64_t r = index_rows(g, nd->out[0], depth + 1);
                rows = r < rows ? r : rows;
            }
    }
    return rows;
}

int64_t ox_inputs_int_bound(const struct ox_graph *g, const char *name)
{
    for (int i = 0; i < g->n_inputs; i++)
        if (!strcmp(g->inputs[i].vi->name, name)) {
            int64_t rows = index_rows(g, g->inputs[i].value, 0);
            return rows == INT64_MAX ? 2 : rows;
        }
    return 2;
}

int ox_inputs_fill(struct mq_onnx_io *io, int n, uint64_t *state, int64_t max_elems,
                   const int64_t *int_bound)
{
    for (int i = 0; i < n; i++) {
        int64_t cnt = 1;
        for (int d = 0; d < io[i].n_dims; d++)
            cnt *= io[i].dims[d];
        if (cnt > max_elems)
            return mq_error(MQ_EUNSUPPORTED,
                            "input '%s' of %" PRId64 " elements (at most %" PRId64 ")", io[i].name,
                            cnt, max_elems);
        if (!(io[i].data = calloc((size_t)(cnt ? cnt : 1), 8)))
            return mq_error(MQ_ENOMEM, "cannot allocate input '%s' (%" PRId64 " elements)",
                            io[i].name, cnt);
        for (int64_t k = 0; k < cnt && (io[i].type == MQ_ONNX_IO_F32 || int_bound); k++) {
            uint64_t r = *state;
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            *state = r;
            if (io[i].type == MQ_ONNX_IO_F32)
                ((float *)io[i].data)[k] =
                    (float)((double)(r >> 11) * (2.0 / 9007199254740992.0) - 1.0);
            else /* uniform enough: the bound is far below 2^64 */
                ((int64_t *)io[i].data)[k] = (int64_t)((r >> 1) % (uint64_t)int_bound[i]);
        }
    }
    return MQ_OK;
}

int ox_inputs_random(const struct ox_graph *g, int64_t n, struct ox_samples *out)
{
    memset(out, 0, sizeof(*out));
    out->n_io = count_fed(g);
    out->synthetic = true;
    if (n <= 0)
        n = OX_INPUTS_RANDOM_DEFAULT;
    if (n > OX_INPUTS_MAX_SAMPLES)
        return mq_error(MQ_EINVAL, "%" PRId64 " random samples (at most %d)", n,
                        OX_INPUTS_MAX_SAMPLES);
    if (out->n_io == 0)
        return mq_error(MQ_EINVAL, "the model has no input to feed");
    uint64_t r = 0x9E3779B97F4A7C15ULL;
    int rc = MQ_OK;
    int64_t bound[16];
    for (int64_t s = 0; s < n && rc == MQ_OK; s++) {
        if ((rc = grow(out)) < 0)
            break;
        struct mq_onnx_io *io = out->io + (size_t)(out->n_samples - 1) * (size_t)out->n_io;
        int got = onnx_task_inputs(g, 1, io);
        if (got < 0) {
            rc = got;
            break;
        }
        if (s == 0) /* the same inputs in every sample: their bounds once */
            for (int i = 0; i < got && i < 16; i++)
                bound[i] = ox_inputs_int_bound(g, io[i].name);
        rc = got > 16 ? mq_error(MQ_EUNSUPPORTED, "%d inputs (at most 16)", got)
                      : ox_inputs_fill(io, out->n_io, &r, (int64_t)1 << 28, bound);
    }
    if (rc < 0) {
        ox_samples_free(out);
        return rc;
    }
    snprintf(out->desc, sizeof(out->desc), "%d synthetic sample%s (seeded random)", out->n_samples,
             out->n_samples == 1 ? "" : "s");
    return MQ_OK;
}
