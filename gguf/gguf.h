/* gguf/gguf.h - read and write GGUF files (versions 2 and 3, little-endian).
 *
 * Reading maps the file and validates everything before anything is used: every count,
 * string length, array length, nesting depth, tensor dimension, type, offset and size
 * is checked against the file's size, and tensors may not overlap or share a name.
 * A malformed file gives one error line naming what is wrong and where, and MQ_EFORMAT
 * (or MQ_EUNSUPPORTED for well-formed content mixq cannot handle, such as an unknown
 * tensor type).
 *
 *     struct mq_gguf *g;
 *     if (mq_gguf_open("model.gguf", &g) < 0) return -1;    // one line already printed
 *     uint32_t n_layer;
 *     if (mq_gguf_get_u32(g, "llama.block_count", &n_layer) < 0) ...
 *     const struct mq_gguf_tensor *t = mq_gguf_find_tensor(g, "output.weight");
 *     ... t->data points into the mapping, t->nbytes long ...
 *     mq_gguf_close(g);
 *
 * Writing collects metadata and tensors and writes them in one go, atomically
 * (temporary file in the same folder, then rename), so a failed write leaves no file:
 *
 *     struct mq_gguf_writer *w = mq_gguf_writer_new();
 *     mq_gguf_writer_set_str(w, "general.architecture", "llama");
 *     mq_gguf_writer_add_tensor(w, "output.weight", MQ_DTYPE_Q8_0, 2, ne, data);
 *     int rc = mq_gguf_writer_write(w, "out.gguf");
 *     mq_gguf_writer_free(w);
 *
 * The writer lays files out as llama.cpp's gguf writer does: header, key/values, tensor
 * infos, zero padding to the alignment, then tensor data each at the next aligned offset
 * in the order added. So reading a file laid out that way and writing everything back
 * in order reproduces it byte for byte.
 *
 * A file larger than memory (a synthetic 7B model) is written by adding tensors whose
 * rows a callback produces at write time, a chunk at a time (mq_gguf_writer_add_tensor_fn):
 * the writer then holds one chunk of data, never the model.
 *
 * Ownership: an mq_gguf owns its mapping; every pointer it hands out (strings, array
 * data, tensor data, tensor infos) is borrowed and lives until mq_gguf_close. A writer
 * copies keys and values it is given; tensor data (and the context of a row callback)
 * are borrowed and must stay valid until mq_gguf_writer_write returns.
 *
 * Dependency rule: gguf/ depends on core/ only (and libc): it is the leaf every model
 * format, the tokenizers and the writers build on.
 */
#ifndef MQ_GGUF_GGUF_H
#define MQ_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

#define MQ_GGUF_DEFAULT_ALIGNMENT 32
#define MQ_GGUF_MAX_DIMS 4
#define MQ_GGUF_MAX_NAME 256     /* tensor name bytes, excluding the terminating NUL */
#define MQ_GGUF_MAX_ARRAY_DEPTH 8 /* nested arrays deeper than this are refused */

/* Value types; the numbers are GGUF's and reach files. */
enum mq_gguf_type {
    MQ_GGUF_UINT8 = 0,
    MQ_GGUF_INT8 = 1,
    MQ_GGUF_UINT16 = 2,
    MQ_GGUF_INT16 = 3,
    MQ_GGUF_UINT32 = 4,
    MQ_GGUF_INT32 = 5,
    MQ_GGUF_FLOAT32 = 6,
    MQ_GGUF_BOOL = 7,
    MQ_GGUF_STRING = 8,
    MQ_GGUF_ARRAY = 9,
    MQ_GGUF_UINT64 = 10,
    MQ_GGUF_INT64 = 11,
    MQ_GGUF_FLOAT64 = 12,
    MQ_GGUF_TYPE_COUNT
};

/* A string inside a file: not NUL-terminated, may contain NUL bytes. */
struct mq_gguf_str {
    uint64_t len;
    const char *ptr;
};

struct mq_gguf_value {
    enum mq_gguf_type type;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        bool b;
        uint64_t u64;
        int64_t i64;
        double f64;
        struct mq_gguf_str str;
        struct {
            enum mq_gguf_type type; /* element type */
            uint64_t n;
            /* Scalar elements: n packed little-endian values of `type` in the file
             * (bools as one byte each), possibly unaligned: read with memcpy.
             * String and array elements: NULL; use `items`. */
            const void *data;
            const struct mq_gguf_value *items; /* n parsed elements (strings, arrays); NULL for scalars */
        } arr;
    };
};

struct mq_gguf_kv {
    struct mq_gguf_str key;
    struct mq_gguf_value value;
};

struct mq_gguf_tensor {
    char name[MQ_GGUF_MAX_NAME + 1]; /* NUL-terminated copy */
    enum mq_dtype type;
    uint32_t ggml_type;
    uint32_t n_dims;
    int64_t ne[MQ_GGUF_MAX_DIMS]; /* ne[0] is the contiguous dimension; unused dims are 1 */
    int64_t n_elems;
    uint64_t offset;              /* relative to the start of the data section */
    size_t nbytes;
    const void *data;             /* in the mapping */
};

struct mq_gguf {
    uint32_t version;
    uint32_t alignment;
    size_t file_size;
    size_t data_offset; /* absolute offset of the data section */
    uint64_t n_kv;
    struct mq_gguf_kv *kv;
    uint64_t n_tensors;
    struct mq_gguf_tensor *tensors;
    /* private */
    const uint8_t *base;
    void *mapping;
    size_t mapping_size;
    void *arena; /* parsed nested values */
};

/* Opens and validates a file. The caller closes it with mq_gguf_close. */
int mq_gguf_open(const char *path, struct mq_gguf **out);

/* The same from memory, for the fuzzer and tests: `buf` is borrowed and must outlive
 * the result; `name` is used in messages. */
int mq_gguf_open_memory(const void *buf, size_t size, const char *name, struct mq_gguf **out);

/* NULL is a no-op. */
void mq_gguf_close(struct mq_gguf *g);

/* Lookups return NULL / MQ_ENOTFOUND (without printing) when absent. */
const struct mq_gguf_kv *mq_gguf_find_kv(const struct mq_gguf *g, const char *key);
const struct mq_gguf_tensor *mq_gguf_find_tensor(const struct mq_gguf *g, const char *name);

/* Typed getters: MQ_ENOTFOUND (silent) when the key is absent; MQ_EFORMAT (printed,
 * naming the key and both types) when present with a type that does not convert
 * losslessly. Integers of any width convert when the value fits; f32 and f64 convert
 * to each other. get_str copies into buf, NUL-terminated, MQ_ERANGE (printed) if it
 * does not fit or contains a NUL. */
int mq_gguf_get_u32(const struct mq_gguf *g, const char *key, uint32_t *out);
int mq_gguf_get_u64(const struct mq_gguf *g, const char *key, uint64_t *out);
int mq_gguf_get_i64(const struct mq_gguf *g, const char *key, int64_t *out);
int mq_gguf_get_f32(const struct mq_gguf *g, const char *key, float *out);
int mq_gguf_get_bool(const struct mq_gguf *g, const char *key, bool *out);
int mq_gguf_get_str(const struct mq_gguf *g, const char *key, char *buf, size_t size);
/* The array under key, checking its element type: MQ_ENOTFOUND silent, MQ_EFORMAT
 * printed on a non-array or other element type. */
int mq_gguf_get_arr(const struct mq_gguf *g, const char *key, enum mq_gguf_type elem_type,
                    const struct mq_gguf_value **out);

/* Element i of a scalar array as int64/double (any integer or float element type). */
int64_t mq_gguf_arr_i64(const struct mq_gguf_value *arr, uint64_t i);
double mq_gguf_arr_f64(const struct mq_gguf_value *arr, uint64_t i);

const char *mq_gguf_type_name(enum mq_gguf_type type);

/* ---- writer ---- */

struct mq_gguf_writer;

/* NULL when out of memory (printed). Version 3, alignment 32 unless
 * general.alignment is set (as a u32) before writing. */
struct mq_gguf_writer *mq_gguf_writer_new(void);
void mq_gguf_writer_free(struct mq_gguf_writer *w);

/* Setting a key that was set before replaces its value in place (keeps its position). */
int mq_gguf_writer_set_u32(struct mq_gguf_writer *w, const char *key, uint32_t v);
int mq_gguf_writer_set_i32(struct mq_gguf_writer *w, const char *key, int32_t v);
int mq_gguf_writer_set_u64(struct mq_gguf_writer *w, const char *key, uint64_t v);
int mq_gguf_writer_set_f32(struct mq_gguf_writer *w, const char *key, float v);
int mq_gguf_writer_set_bool(struct mq_gguf_writer *w, const char *key, bool v);
int mq_gguf_writer_set_str(struct mq_gguf_writer *w, const char *key, const char *v);
/* An array of n strings. */
int mq_gguf_writer_set_str_arr(struct mq_gguf_writer *w, const char *key,
                               const char *const *v, uint64_t n);
/* An array of n scalars of elem_type, packed little-endian in `data`. */
int mq_gguf_writer_set_arr(struct mq_gguf_writer *w, const char *key, enum mq_gguf_type elem_type,
                           const void *data, uint64_t n);
/* Any value, deep-copied (strings and nested arrays included), e.g. from a reader. */
int mq_gguf_writer_set_value(struct mq_gguf_writer *w, const struct mq_gguf_str *key,
                             const struct mq_gguf_value *v);
/* Removes a key if present. */
void mq_gguf_writer_remove(struct mq_gguf_writer *w, const char *key);

/* Adds a tensor; ne[0] is the contiguous dimension and must be a multiple of the type's
 * block size. `data` (the tensor's bytes, row after row) is borrowed until write. */
int mq_gguf_writer_add_tensor(struct mq_gguf_writer *w, const char *name, enum mq_dtype type,
                              uint32_t n_dims, const int64_t *ne, const void *data);

/* Produces rows [row0, row0 + n_rows) of tensor `name` into dst: n_rows rows of ne[0]
 * elements in the tensor's type, back to back (dimensions past the first are flattened
 * into rows). Returns MQ_OK, or a negative status after printing one line, which makes
 * the write fail (and leave no file). */
typedef int (*mq_gguf_rows_fn)(void *ctx, const char *name, int64_t row0, int64_t n_rows, void *dst);

/* Rows per callback: as many as fit in this many bytes, at least one. */
#define MQ_GGUF_CHUNK_BYTES ((size_t)4 << 20)

/* Adds a tensor like mq_gguf_writer_add_tensor, whose data `fn` produces at write time, in
 * file order and rows in order, in chunks of about MQ_GGUF_CHUNK_BYTES (one buffer the
 * writer owns). `ctx` is borrowed until write returns. */
int mq_gguf_writer_add_tensor_fn(struct mq_gguf_writer *w, const char *name, enum mq_dtype type,
                                 uint32_t n_dims, const int64_t *ne, mq_gguf_rows_fn fn, void *ctx);

/* The size in bytes of the file mq_gguf_writer_write would write now (metadata, tensor
 * data and padding), e.g. to check free disk space first. */
int mq_gguf_writer_file_size(const struct mq_gguf_writer *w, uint64_t *bytes);

/* Writes everything to path atomically. On failure nothing is left at path (an
 * existing file there is kept unchanged) and no temporary file remains. */
int mq_gguf_writer_write(struct mq_gguf_writer *w, const char *path);

#endif
