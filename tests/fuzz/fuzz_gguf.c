/* tests/fuzz/fuzz_gguf.c - libFuzzer target for the GGUF reader.
 *
 *     make build/fuzz/fuzz-gguf && make fuzz FUZZ_SECONDS=60
 *
 * Each input is parsed from memory; when it opens, every key, every value (every element
 * of every array, nested ones included), every typed getter and every tensor's first and
 * last byte are touched, so that AddressSanitizer sees any pointer the reader hands out
 * that does not lie inside the input. Rejected inputs print one error line each; run with
 * -close_fd_mask=2 to silence them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "gguf/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t elem_size[MQ_GGUF_TYPE_COUNT] = {
    [MQ_GGUF_UINT8] = 1,  [MQ_GGUF_INT8] = 1,  [MQ_GGUF_UINT16] = 2,  [MQ_GGUF_INT16] = 2,
    [MQ_GGUF_UINT32] = 4, [MQ_GGUF_INT32] = 4, [MQ_GGUF_FLOAT32] = 4, [MQ_GGUF_BOOL] = 1,
    [MQ_GGUF_UINT64] = 8, [MQ_GGUF_INT64] = 8, [MQ_GGUF_FLOAT64] = 8,
};

static volatile uint64_t sink;

static void touch_bytes(const void *p, uint64_t n)
{
    const volatile uint8_t *b = p;
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++)
        s += b[i];
    sink += s;
}

static void touch_value(const struct mq_gguf_value *v, int depth)
{
    if ((unsigned)v->type >= MQ_GGUF_TYPE_COUNT || depth > MQ_GGUF_MAX_ARRAY_DEPTH)
        abort(); /* the reader handed out something it should have refused */
    if (v->type == MQ_GGUF_STRING) {
        touch_bytes(v->str.ptr, v->str.len);
        return;
    }
    if (v->type != MQ_GGUF_ARRAY)
        return;
    enum mq_gguf_type et = v->arr.type;
    if ((unsigned)et >= MQ_GGUF_TYPE_COUNT)
        abort();
    if (et == MQ_GGUF_STRING || et == MQ_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->arr.n; i++) {
            if (v->arr.items[i].type != et)
                abort();
            touch_value(&v->arr.items[i], depth + 1);
        }
        return;
    }
    touch_bytes(v->arr.data, v->arr.n * elem_size[et]);
    for (uint64_t i = 0; i < v->arr.n; i++)
        sink += (uint64_t)mq_gguf_arr_i64(v, i) + (uint64_t)(mq_gguf_arr_f64(v, i) > 0.0);
}

/* The typed getters on one key, through its NUL-free name when it has one. */
static void touch_getters(const struct mq_gguf *g, const struct mq_gguf_kv *kv)
{
    char key[256], str[64];
    if (kv->key.len >= sizeof(key) || (kv->key.len && memchr(kv->key.ptr, 0, kv->key.len)))
        return;
    memcpy(key, kv->key.ptr, kv->key.len);
    key[kv->key.len] = '\0';
    if (mq_gguf_find_kv(g, key) == NULL)
        abort();
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    float f;
    bool b;
    const struct mq_gguf_value *arr;
    /* getters print a line when a value does not convert; call the plausible ones */
    switch (kv->value.type) {
    case MQ_GGUF_STRING: sink += (uint64_t)mq_gguf_get_str(g, key, str, sizeof(str)); break;
    case MQ_GGUF_BOOL: sink += (uint64_t)mq_gguf_get_bool(g, key, &b); break;
    case MQ_GGUF_FLOAT32:
    case MQ_GGUF_FLOAT64: sink += (uint64_t)mq_gguf_get_f32(g, key, &f); break;
    case MQ_GGUF_ARRAY: sink += (uint64_t)mq_gguf_get_arr(g, key, kv->value.arr.type, &arr); break;
    default:
        sink += (uint64_t)mq_gguf_get_u32(g, key, &u32);
        sink += (uint64_t)mq_gguf_get_u64(g, key, &u64);
        sink += (uint64_t)mq_gguf_get_i64(g, key, &i64);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mq_gguf *g;
    if (mq_gguf_open_memory(data, size, "fuzz.gguf", &g) < 0)
        return 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        touch_bytes(g->kv[i].key.ptr, g->kv[i].key.len);
        touch_value(&g->kv[i].value, 0);
        touch_getters(g, &g->kv[i]);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct mq_gguf_tensor *t = &g->tensors[i];
        const uint8_t *p = t->data;
        uintptr_t lo = (uintptr_t)data, at = (uintptr_t)p;
        if (t->nbytes == 0 || at < lo || at - lo > size || t->nbytes > size - (at - lo) ||
            t->n_dims < 1 || t->n_dims > MQ_GGUF_MAX_DIMS || t->offset % g->alignment != 0)
            abort();
        touch_bytes(p, 1);
        touch_bytes(p + t->nbytes - 1, 1);
        if (mq_gguf_find_tensor(g, t->name) != t)
            abort();
    }
    mq_gguf_close(g);
    return 0;
}
