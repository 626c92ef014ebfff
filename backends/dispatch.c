/* backends/dispatch.c - the be_* dispatcher: shape checks, defaults for optional slots. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/pages.h"
#include "core/status.h"

static const char *const op_names[BE_OP_COUNT] = {
    [BE_OP_GET_ROWS] = "get_rows", [BE_OP_MATMUL] = "matmul", [BE_OP_RMSNORM] = "rmsnorm",
    [BE_OP_ROPE] = "rope",         [BE_OP_ATTENTION] = "attention", [BE_OP_SWIGLU] = "swiglu",
    [BE_OP_ADD] = "add",           [BE_OP_SCALE] = "scale",   [BE_OP_GEGLU] = "geglu",
    [BE_OP_SOFTCAP] = "softcap",
};

const char *be_op_name(enum be_op op)
{
    return (unsigned)op < BE_OP_COUNT ? op_names[op] : "unknown";
}

int64_t be_nelements(const struct be_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

int be_open(const char *name, const struct be_config *cfg, struct be_backend **out)
{
    *out = NULL;
    const struct be_ops *ops = be_registry_find(name);
    if (!ops) {
        char names[256] = "";
        size_t used = 0;
        for (int i = 0; i < be_registry_count() && used < sizeof(names); i++) {
            int k = snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
                             be_registry_get(i)->name);
            used += k > 0 ? (size_t)k : 0;
        }
        return mq_error(MQ_ENOTFOUND, "unknown backend '%s' (known: %s)", name, names);
    }
    if (ops->abi != BE_ABI_VERSION)
        return mq_error(MQ_EBACKEND, "backend '%s' has ABI %u, mixq needs %u", name, ops->abi,
                        BE_ABI_VERSION);
    struct be_backend *be = calloc(1, sizeof(*be));
    if (!be)
        return mq_error(MQ_ENOMEM, "cannot allocate backend '%s'", name);
    be->ops = ops;
    ops->probe(&be->info);
    if (!be->info.usable) {
        int rc = mq_error(MQ_EBACKEND, "backend '%s' is not usable here: %s", name, be->info.reason);
        free(be);
        return rc;
    }
    struct be_config def = {0};
    int rc = ops->open(cfg ? cfg : &def, &be->ctx);
    if (rc < 0) {
        free(be);
        return rc;
    }
    *out = be;
    return MQ_OK;
}

void be_close(struct be_backend *be)
{
    if (!be)
        return;
    be->ops->close(be->ctx);
    free(be);
}

const char *be_name(const struct be_backend *be) { return be->ops->name; }

int be_threads(const struct be_backend *be)
{
    return be->ops->threads ? be->ops->threads(be->ctx) : 1;
}

int be_thread_ids(const struct be_backend *be, int *tids, int max)
{
    if (be->ops->thread_ids)
        return be->ops->thread_ids(be->ctx, tids, max);
    if (max < 1)
        return 0;
    tids[0] = (int)syscall(SYS_gettid);
    return 1;
}

bool be_supports(const struct be_backend *be, enum be_op op, enum mq_dtype weight_type)
{
    return be->ops->supports(be->ctx, op, weight_type);
}

static int tensor_init(struct be_tensor *t, enum mq_dtype type, int n_dims, const int64_t *ne)
{
    if (n_dims < 1 || n_dims > BE_MAX_DIMS)
        return mq_error(MQ_EINVAL, "tensor of %d dimensions (1..%d allowed)", n_dims, BE_MAX_DIMS);
    memset(t, 0, sizeof(*t));
    t->type = type;
    t->n_dims = n_dims;
    int64_t rows = 1;
    for (int i = 0; i < BE_MAX_DIMS; i++) {
        t->ne[i] = i < n_dims ? ne[i] : 1;
        if (t->ne[i] < 1)
            return mq_error(MQ_EINVAL, "tensor dimension %d is %" PRId64 ", must be >= 1", i, t->ne[i]);
        if (i > 0) {
            if (rows > INT64_MAX / t->ne[i])
                return mq_error(MQ_ENOMEM, "tensor element count overflows");
            rows *= t->ne[i];
        }
    }
    size_t row_bytes;
    int rc = mq_dtype_row_bytes(type, t->ne[0], &row_bytes);
    if (rc < 0)
        return rc;
    if (row_bytes && (uint64_t)rows > SIZE_MAX / row_bytes)
        return mq_error(MQ_ENOMEM, "tensor size overflows size_t");
    t->nbytes = row_bytes * (size_t)rows;
    return MQ_OK;
}

int be_alloc(struct be_backend *be, struct be_tensor *t, enum mq_dtype type, int n_dims,
             const int64_t *ne)
{
    int rc = tensor_init(t, type, n_dims, ne);
    if (rc < 0)
        return rc;
    if (be->ops->alloc)
        return be->ops->alloc(be->ctx, t);
    size_t n = t->nbytes ? (t->nbytes + 63) / 64 * 64 : 64;
    t->data = aligned_alloc(64, n);
    if (!t->data)
        return mq_error(MQ_ENOMEM, "cannot allocate a %zu-byte %s tensor", t->nbytes, mq_dtype_name(type));
    return MQ_OK;
}

/* ---- lent ranges ---- */

int be_lend(struct be_backend *be, const void *base, size_t size)
{
    int free_slot = -1;
    for (int i = 0; i < BE_MAX_LENT; i++) {
        if (be->lent[i].size && be->lent[i].base == (const char *)base) {
            be->lent[i].size = size;
            return MQ_OK;
        }
        if (!be->lent[i].size && free_slot < 0)
            free_slot = i;
    }
    if (!base || !size)
        return MQ_OK;
    if (free_slot < 0)
        return mq_error(MQ_ENOMEM, "backend '%s' already has %d lent ranges", be_name(be), BE_MAX_LENT);
    be->lent[free_slot].base = base;
    be->lent[free_slot].size = size;
    return MQ_OK;
}

void be_unlend(struct be_backend *be, const void *base)
{
    for (int i = 0; i < BE_MAX_LENT; i++)
        if (be->lent[i].size && be->lent[i].base == (const char *)base)
            be->lent[i].size = 0;
}

static bool in_lent(const struct be_backend *be, const void *src, size_t n)
{
    const char *p = src;
    for (int i = 0; i < BE_MAX_LENT; i++) {
        const char *b = be->lent[i].base;
        if (be->lent[i].size && p >= b && p <= b + be->lent[i].size && n <= (size_t)(b + be->lent[i].size - p))
            return true;
    }
    return false;
}

int be_upload(struct be_backend *be, struct be_tensor *t, enum mq_dtype type, int n_dims,
              const int64_t *ne, const void *src, enum be_use use)
{
    int rc = tensor_init(t, type, n_dims, ne);
    if (rc < 0)
        return rc;
    t->use = use;
    if (use == BE_USE_VECTOR && type != MQ_DTYPE_F32)
        return mq_error(MQ_EINVAL, "vector weights must be f32, not %s", mq_dtype_name(type));
    if (use == BE_USE_MATRIX && !be->ops->supports(be->ctx, BE_OP_MATMUL, type) &&
        !be->ops->supports(be->ctx, BE_OP_GET_ROWS, type))
        return mq_error(MQ_EUNSUPPORTED, "backend '%s' has no kernels for %s weights", be_name(be),
                        mq_dtype_name(type));
    bool lent = in_lent(be, src, t->nbytes);
    t->may_borrow = lent && be->info.host_memory && t->nbytes >= BE_BORROW_MIN_BYTES;
    rc = be->ops->upload(be->ctx, t, src);
    t->may_borrow = false;
    if (rc < 0)
        return rc;
    if (t->borrowed) {
        MQ_ASSERT(lent && t->data == src);
        be->borrowed_bytes += t->nbytes;
    } else if (lent) {
        be->released_bytes += mq_pages_release(src, t->nbytes);
    }
    if (be->upload_hook)
        be->upload_hook(be->upload_hook_arg, t->nbytes);
    return MQ_OK;
}

void be_set_upload_hook(struct be_backend *be, void (*fn)(void *arg, size_t nbytes), void *arg)
{
    be->upload_hook = fn;
    be->upload_hook_arg = fn ? arg : NULL;
}

void be_free(struct be_backend *be, struct be_tensor *t)
{
    if (!t->is_view && (t->data || t->extra)) {
        if (be->ops->release)
            be->ops->release(be->ctx, t);
        else if (!t->borrowed)
            free(t->data);
    }
    memset(t, 0, sizeof(*t));
}

int be_view_rows(const struct be_tensor *t, int64_t row0, int64_t n_rows, struct be_tensor *view)
{
    int outer = t->n_dims > 0 ? t->n_dims - 1 : 0;
    if (outer == 0 && mq_dtype_get(t->type)->block_elems != 1)
        return mq_error(MQ_EINVAL, "cannot take element views of a 1-d %s tensor", mq_dtype_name(t->type));
    if (row0 < 0 || n_rows < 1 || row0 > t->ne[outer] - n_rows)
        return mq_error(MQ_EINVAL, "row view [%" PRId64 ", %" PRId64 ") outside 0..%" PRId64, row0,
                        row0 + n_rows, t->ne[outer]);
    *view = *t;
    size_t row_bytes = t->nbytes / (size_t)t->ne[outer];
    view->ne[outer] = n_rows;
    view->nbytes = row_bytes * (size_t)n_rows;
    view->data = (char *)t->data + row_bytes * (size_t)row0;
    view->extra = NULL;
    view->is_view = true;
    return MQ_OK;
}

int be_view_reshape(const struct be_tensor *t, int n_dims, const int64_t *ne, struct be_tensor *view)
{
    struct be_tensor v;
    int rc = tensor_init(&v, t->type, n_dims, ne);
    if (rc < 0)
        return rc;
    if (be_nelements(&v) != be_nelements(t) || v.nbytes != t->nbytes)
        return mq_error(MQ_EINVAL, "reshape of %lld elements to %lld", (long long)be_nelements(t),
                        (long long)be_nelements(&v));
    v.data = t->data;
    v.is_view = true;
    v.borrowed = t->borrowed;
    *view = v;
    return MQ_OK;
}

static int check_range(const struct be_tensor *t, size_t offset, size_t n, const char *what)
{
    if (offset > t->nbytes || n > t->nbytes - offset)
        return mq_error(MQ_EINVAL, "%s of %zu bytes at %zu exceeds a %zu-byte tensor", what, n, offset,
                        t->nbytes);
    return MQ_OK;
}

int be_write(struct be_backend *be, struct be_tensor *t, size_t offset, const void *src, size_t n)
{
    int rc = check_range(t, offset, n, "write");
    if (rc < 0)
        return rc;
    if (t->borrowed)
        return mq_error(MQ_EINVAL, "write into a %s tensor that borrows read-only weights", mq_dtype_name(t->type));
    if (be->ops->write)
        return be->ops->write(be->ctx, t, offset, src, n);
    memcpy((char *)t->data + offset, src, n);
    return MQ_OK;
}

int be_read(struct be_backend *be, const struct be_tensor *t, size_t offset, void *dst, size_t n)
{
    int rc = check_range(t, offset, n, "read");
    if (rc < 0)
        return rc;
    if (be->ops->read)
        return be->ops->read(be->ctx, t, offset, dst, n);
    memcpy(dst, (const char *)t->data + offset, n);
    return MQ_OK;
}

int be_sync(struct be_backend *be) { return be->ops->sync ? be->ops->sync(be->ctx) : MQ_OK; }

uint64_t be_clock_ns(struct be_backend *be)
{
    if (be->ops->clock_ns)
        return be->ops->clock_ns(be->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int be_event_new(struct be_backend *be, void **ev)
{
    return be->ops->event_new ? be->ops->event_new(be->ctx, ev) : MQ_EUNSUPPORTED;
}

void be_event_free(struct be_backend *be, void *ev)
{
    if (be->ops->event_free && ev)
        be->ops->event_free(be->ctx, ev);
}

int be_event_record(struct be_backend *be, void *ev)
{
    return be->ops->event_record ? be->ops->event_record(be->ctx, ev) : MQ_EUNSUPPORTED;
}

int be_event_elapsed_ns(struct be_backend *be, void *start, void *end, uint64_t *ns)
{
    return be->ops->event_elapsed_ns ? be->ops->event_elapsed_ns(be->ctx, start, end, ns)
                                     : MQ_EUNSUPPORTED;
}

/* ---- shape checks ---- */

static bool same_shape(const struct be_tensor *a, const struct be_tensor *b)
{
    return a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1] && a->ne[2] == b->ne[2] && a->ne[3] == b->ne[3];
}

/* b is one column of a: [K], [K, 1], ... (ADD's bias broadcast) */
static bool is_column_of(const struct be_tensor *b, const struct be_tensor *a)
{
    return b->ne[0] == a->ne[0] && b->ne[1] == 1 && b->ne[2] == 1 && b->ne[3] == 1;
}

static bool all_f32(const struct be_tensor *a, const struct be_tensor *d)
{
    return a->type == MQ_DTYPE_F32 && d->type == MQ_DTYPE_F32;
}

#define NODE_CHECK(cond)                                                                          \
    do {                                                                                          \
        if (!(cond))                                                                              \
            return mq_error(MQ_EINVAL, "%s: shape or type check failed: %s", be_op_name(node->op), \
                            #cond);                                                               \
    } while (0)

static int node_check(const struct be_node *node)
{
    const struct be_tensor *a = node->src[0], *b = node->src[1], *c = node->src[2], *d = node->dst;
    NODE_CHECK((unsigned)node->op < BE_OP_COUNT);
    NODE_CHECK(a && d && d->data && a->data);
    switch (node->op) {
    case BE_OP_GET_ROWS:
        NODE_CHECK(b && b->type == MQ_DTYPE_I32 && d->type == MQ_DTYPE_F32);
        NODE_CHECK(d->ne[0] == a->ne[0] && d->ne[1] == be_nelements(b) && a->ne[2] == 1);
        break;
    case BE_OP_MATMUL:
        NODE_CHECK(b && b->type == MQ_DTYPE_F32 && d->type == MQ_DTYPE_F32);
        NODE_CHECK(a->ne[2] == 1 && a->ne[3] == 1 && b->ne[2] == 1 && b->ne[3] == 1);
        NODE_CHECK(b->ne[0] == a->ne[0] && d->ne[0] == a->ne[1] && d->ne[1] == b->ne[1]);
        break;
    case BE_OP_RMSNORM:
        NODE_CHECK(b && a->type == MQ_DTYPE_F32 && b->type == MQ_DTYPE_F32 && d->type == MQ_DTYPE_F32);
        /* dst: the same elements in whole rows of src0 (src0 may be a per-head reshape of
         * a [D*H, M] activation, dst that activation's shape or the reshape) */
        NODE_CHECK(d->ne[0] % a->ne[0] == 0 && be_nelements(d) == be_nelements(a));
        NODE_CHECK(be_nelements(b) == a->ne[0]);
        NODE_CHECK(node->p.rmsnorm.eps >= 0.0f);
        break;
    case BE_OP_ROPE:
        NODE_CHECK(a->type == MQ_DTYPE_F32 && d->type == MQ_DTYPE_F32 && same_shape(a, d));
        NODE_CHECK(node->p.rope.n_rot > 0 && node->p.rope.n_rot % 2 == 0 && node->p.rope.n_rot <= a->ne[0]);
        NODE_CHECK(node->p.rope.mode == BE_ROPE_NORM || node->p.rope.mode == BE_ROPE_NEOX);
        NODE_CHECK(node->p.rope.pos0 >= 0);
        NODE_CHECK(!b || (b->type == MQ_DTYPE_F32 && be_nelements(b) == node->p.rope.n_rot / 2));
        NODE_CHECK(node->p.rope.attn_factor >= 0.0f && isfinite(node->p.rope.attn_factor));
        break;
    case BE_OP_ATTENTION: {
        NODE_CHECK(b && c && a->type == MQ_DTYPE_F32 && b->type == MQ_DTYPE_F32 && c->type == MQ_DTYPE_F32);
        NODE_CHECK(d->type == MQ_DTYPE_F32 && same_shape(b, c));
        int64_t D = a->ne[0], H = a->ne[1], M = a->ne[2];
        NODE_CHECK(b->ne[0] % D == 0);
        int64_t Hkv = b->ne[0] / D;
        NODE_CHECK(Hkv >= 1 && H % Hkv == 0);
        NODE_CHECK(d->ne[0] == D * H && d->ne[1] == M);
        NODE_CHECK(node->p.attention.pos0 >= 0 && node->p.attention.n_kv <= b->ne[1]);
        NODE_CHECK(node->p.attention.pos0 + M <= node->p.attention.n_kv);
        NODE_CHECK(node->p.attention.window >= 0);
        NODE_CHECK(node->p.attention.softcap >= 0.0f && isfinite(node->p.attention.softcap));
        break;
    }
    case BE_OP_SWIGLU:
    case BE_OP_GEGLU:
        NODE_CHECK(b && all_f32(a, d) && b->type == MQ_DTYPE_F32);
        NODE_CHECK(same_shape(a, b) && same_shape(a, d));
        break;
    case BE_OP_ADD:
        NODE_CHECK(b && all_f32(a, d) && b->type == MQ_DTYPE_F32);
        NODE_CHECK(same_shape(a, d) && (same_shape(a, b) || is_column_of(b, a)));
        break;
    case BE_OP_SCALE:
        NODE_CHECK(all_f32(a, d) && same_shape(a, d));
        break;
    case BE_OP_SOFTCAP:
        NODE_CHECK(all_f32(a, d) && same_shape(a, d));
        NODE_CHECK(node->p.softcap.cap > 0.0f && isfinite(node->p.softcap.cap));
        break;
    case BE_OP_COUNT:
        break;
    }
    return MQ_OK;
}

int be_run(struct be_backend *be, const struct be_node *node)
{
    int rc = node_check(node);
    if (rc < 0)
        return rc;
    if ((node->op == BE_OP_MATMUL || node->op == BE_OP_GET_ROWS) &&
        !be->ops->supports(be->ctx, node->op, node->src[0]->type))
        return mq_error(MQ_EUNSUPPORTED, "backend '%s' cannot run %s with %s weights", be_name(be),
                        be_op_name(node->op), mq_dtype_name(node->src[0]->type));
    return be->ops->run(be->ctx, node);
}
