/* tests/interop/dequant-mixq.c - mixq's dequantization of a whole GGUF file, and the
 * comparison with llama.cpp's.
 *
 *     dequant-mixq [-o OUT.gguf] [-c GGML.gguf] QUANT.gguf
 *
 * Reads QUANT.gguf with mixq's reader and converts every tensor mixq reads as numbers
 * with its traits' to_f32. With -o it writes NAME.f32 tensors (f32, the tensor's shape)
 * to OUT.gguf, the layout tests/interop/dequant-ggml.c writes; with -c it compares each
 * with NAME.f32 in GGML.gguf, written by dequant-ggml from the same QUANT.gguf, and
 * prints one line per tensor:
 *
 *     tensor TYPE NAME ELEMENTS MAX_ABS_DIFF equal|DIFFERENT [FIRST_INDEX MIXQ GGML]
 *
 * "equal" means bit for bit, except that any NaN equals any NaN (NaN payloads depend on
 * operand order inside the CPU, not on the format). A tensor missing from GGML.gguf, or
 * of another shape, counts as different. tests/interop/check-quant.sh sums the lines up
 * per type.
 *
 * Built with mixq's library (make first):
 *     cc -std=c11 -I. tests/interop/dequant-mixq.c build/libmixq.a \
 *        $(cat build/link-flags) -o dequant-mixq
 *
 * Exit status: 0 all equal (or nothing to compare), 1 a difference or a failure, 2 usage.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/fp16.h"
#include "core/status.h"
#include "gguf/gguf.h"

static void usage(void)
{
    fputs("usage: dequant-mixq [-o OUT.gguf] [-c GGML.gguf] QUANT.gguf\n", stderr);
    exit(2);
}

static bool same_value(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return mq_f32_bits(a) == mq_f32_bits(b);
}

/* Compares n floats; prints the tensor's line; returns true when equal. */
static bool compare(const struct mq_gguf_tensor *t, const float *mine, const struct mq_gguf *ref)
{
    char name[MQ_GGUF_MAX_NAME + 8];
    snprintf(name, sizeof(name), "%s.f32", t->name);
    const char *type = mq_dtype_name(t->type);
    const struct mq_gguf_tensor *r = mq_gguf_find_tensor(ref, name);
    if (!r || r->type != MQ_DTYPE_F32 || r->n_elems != t->n_elems) {
        printf("tensor %s %s %" PRId64 " inf DIFFERENT (%s in the ggml file)\n", type, t->name,
               t->n_elems, r ? "another shape or type" : "missing");
        return false;
    }
    const char *theirs = r->data; /* f32s, aligned only as the file's alignment says */
    double max_abs = 0.0;
    int64_t first = -1;
    float first_theirs = 0.0f;
    for (int64_t i = 0; i < t->n_elems; i++) {
        float v;
        memcpy(&v, theirs + (size_t)i * sizeof(v), sizeof(v));
        if (same_value(mine[i], v))
            continue;
        if (first < 0) {
            first = i;
            first_theirs = v;
        }
        double d = fabs((double)mine[i] - (double)v);
        if (!(d <= max_abs)) /* NaN against a number: infinitely different */
            max_abs = isnan(d) ? INFINITY : d;
    }
    if (first < 0) {
        printf("tensor %s %s %" PRId64 " 0 equal\n", type, t->name, t->n_elems);
        return true;
    }
    printf("tensor %s %s %" PRId64 " %g DIFFERENT %" PRId64 " %a %a\n", type, t->name, t->n_elems,
           max_abs, first, (double)mine[first], (double)first_theirs);
    return false;
}

int main(int argc, char **argv)
{
    const char *out_path = NULL, *ref_path = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "o:c:")) != -1) {
        switch (opt) {
        case 'o': out_path = optarg; break;
        case 'c': ref_path = optarg; break;
        default: usage();
        }
    }
    if (optind != argc - 1)
        usage();

    struct mq_gguf *g = NULL, *ref = NULL;
    struct mq_gguf_writer *w = NULL;
    float **f32 = NULL;
    int rc = 1, all_equal = 1;
    if (mq_gguf_open(argv[optind], &g) < 0)
        goto out;
    if (ref_path && mq_gguf_open(ref_path, &ref) < 0)
        goto out;
    if (out_path && !(w = mq_gguf_writer_new()))
        goto out;
    f32 = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(*f32));
    if (!f32) {
        mq_error(MQ_ENOMEM, "out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct mq_gguf_tensor *t = &g->tensors[i];
        const struct mq_dtype_traits *tr = mq_dtype_get(t->type);
        if (!tr->to_f32) {
            fprintf(stderr, "dequant-mixq: skipping tensor '%s' of type %s (no to_f32)\n", t->name,
                    tr->name);
            continue;
        }
        f32[i] = malloc((size_t)t->n_elems * sizeof(float));
        if (!f32[i]) {
            mq_error(MQ_ENOMEM, "out of memory for tensor '%s'", t->name);
            goto out;
        }
        tr->to_f32(t->data, f32[i], t->n_elems);
        if (ref && !compare(t, f32[i], ref))
            all_equal = 0;
        if (w) {
            char name[MQ_GGUF_MAX_NAME + 8];
            snprintf(name, sizeof(name), "%s.f32", t->name);
            if (mq_gguf_writer_add_tensor(w, name, MQ_DTYPE_F32, t->n_dims, t->ne, f32[i]) < 0)
                goto out;
        }
    }
    if (w && mq_gguf_writer_write(w, out_path) < 0)
        goto out;
    rc = all_equal ? 0 : 1;
out:
    if (f32 && g)
        for (uint64_t i = 0; i < g->n_tensors; i++)
            free(f32[i]);
    free(f32);
    mq_gguf_writer_free(w);
    mq_gguf_close(ref);
    mq_gguf_close(g);
    return rc;
}
