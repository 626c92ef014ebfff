/* onnx/onnx_inputs.h - the samples an ONNX model is run on when no task of its own says:
 * the user's arrays (--inputs PATH) or seeded pseudo-random inputs.
 *
 *   PATH.npy      one sample of a model with one input (NumPy's format, versions 1-3)
 *   PATH.npz      one sample: member NAME.npy is input NAME (np.savez; stored members
 *                 only: np.savez_compressed's deflated ones are refused by name)
 *   a folder      a data set: every .npy / .npz file in it, in name order, one sample each
 *
 * Arrays are little-endian or single-byte (f2, f4, f8, i1, i2, i4, i8, u1, u2, u4, u8,
 * b1), C order. Each must match its input: the rank, every size the file fixes (or
 * --shapes fixes), float data for a float input and integer or bool data for an integer
 * one; a missing input, an array no input takes, an empty or absurd shape is one error
 * line naming the file and the array. Float data are widened or narrowed to f32, integer
 * data to int64, as the interpreter holds them.
 *
 * Random samples: float inputs uniform in [-1, 1), integer inputs uniform below the rows
 * of the table a Gather indexes with them (token ids over the vocabulary, bytes over
 * their 256 values), else 0 or 1 (masks and segment ids), from a fixed seed (the same
 * samples in every run), at the shapes --shapes or the file gives (a dynamic dimension
 * other than the first needs --shapes).
 *
 * Ownership: an ox_samples owns every array's data; ox_samples_free releases them.
 * Dependency rule: onnx/ depends on model/, backends/ and core/ only.
 */
#ifndef MQ_ONNX_ONNX_INPUTS_H
#define MQ_ONNX_ONNX_INPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx/onnx_internal.h"

#define OX_INPUTS_MAX_SAMPLES 100000
#define OX_INPUTS_RANDOM_DEFAULT MQ_ONNX_RANDOM_SAMPLES

/* One array read from a .npy: its element type as NumPy names it, shape and data in the
 * interpreter's types (f32 for float kinds, int64 for integer and bool kinds). */
struct ox_array {
    char name[128]; /* the member name without ".npy" (.npz), else "" */
    bool is_float;
    int nd;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    int64_t n;
    void *data; /* float * or int64_t *, malloc'd */
};

/* n_samples x n_io inputs: io[s * n_io + i] is input i of sample s (names borrowed from
 * the model, data owned). */
struct ox_samples {
    int n_samples, n_io;
    struct mq_onnx_io *io;
    bool synthetic; /* pseudo-random, not the user's data */
    char desc[64];  /* "8 synthetic samples (seeded random)", "3 samples from 'in/'" */
};

/* Whether PATH names arrays (a .npy or .npz file, or a folder) rather than a task's
 * manifest. */
bool ox_inputs_is_arrays(const char *path);

/* The samples in PATH for graph g, at most max_samples of them (0: all). */
int ox_inputs_load(const struct ox_graph *g, const char *path, int64_t max_samples,
                   struct ox_samples *out);

/* n pseudo-random samples (n <= 0: OX_INPUTS_RANDOM_DEFAULT) for graph g. */
int ox_inputs_random(const struct ox_graph *g, int64_t n, struct ox_samples *out);

void ox_samples_free(struct ox_samples *s);

/* Allocates and fills io[0..n) (names, types and shapes set): floats uniform in [-1, 1)
 * from the xorshift state *state; integers from it in [0, int_bound[i]) or, int_bound
 * NULL, 0. An input of more than max_elems values is refused. The caller frees each
 * io[i].data. */
int ox_inputs_fill(struct mq_onnx_io *io, int n, uint64_t *state, int64_t max_elems,
                   const int64_t *int_bound);

/* The bound random integers of input `name` keep below: the rows of the smallest table a
 * Gather indexes with it (through Cast, Reshape, Unsqueeze, Squeeze, Flatten, Identity),
 * so token ids cover a vocabulary and bytes their 256 values; 2 (0 or 1: a mask, a type)
 * where nothing is indexed with it. */
int64_t ox_inputs_int_bound(const struct ox_graph *g, const char *name);

/* One .npy image of len bytes (what: the file or member, for errors) -> a. For tests and
 * the fuzzer. */
int ox_npy_parse(const uint8_t *buf, size_t len, const char *what, struct ox_array *a);

#endif
