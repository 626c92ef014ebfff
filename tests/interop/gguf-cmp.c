/* tests/interop/gguf-cmp.c - compares the tensors of two GGUF files: names, types, shapes
 * and bytes. For the interop tier: a file from llama-quantize against mixq's.
 *
 *   gguf-cmp A.gguf B.gguf        one line per differing tensor, then a summary line
 *
 * Tensors are matched by name (file order may differ); metadata is not compared (each tool
 * records its own). Exit status: 0 every tensor of A is in B with the same type, shape and
 * bytes and B has no other tensor; 1 otherwise; 2 on bad usage or an unreadable file. */
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "gguf/gguf.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gguf-cmp A.gguf B.gguf\n");
        return 2;
    }
    struct mq_gguf *a = NULL, *b = NULL;
    if (mq_gguf_open(argv[1], &a) < 0 || mq_gguf_open(argv[2], &b) < 0) {
        mq_gguf_close(a);
        return 2;
    }
    int n_diff = 0, n_same = 0;
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const struct mq_gguf_tensor *ta = &a->tensors[i];
        const struct mq_gguf_tensor *tb = mq_gguf_find_tensor(b, ta->name);
        if (!tb) {
            printf("missing   %s (only in %s)\n", ta->name, argv[1]);
            n_diff++;
            continue;
        }
        bool shape = ta->n_dims == tb->n_dims;
        for (uint32_t d = 0; shape && d < ta->n_dims; d++)
            shape = ta->ne[d] == tb->ne[d];
        if (ta->ggml_type != tb->ggml_type || !shape) {
            printf("type      %s: %s [%lld] vs %s [%lld]\n", ta->name, mq_dtype_name(ta->type),
                   (long long)ta->n_elems, mq_dtype_name(tb->type), (long long)tb->n_elems);
            n_diff++;
            continue;
        }
        if (ta->nbytes != tb->nbytes || memcmp(ta->data, tb->data, ta->nbytes) != 0) {
            size_t first = 0;
            const unsigned char *pa = ta->data, *pb = tb->data;
            while (first < ta->nbytes && first < tb->nbytes && pa[first] == pb[first])
                first++;
            size_t differ = 0;
            for (size_t k = 0; k < ta->nbytes && k < tb->nbytes; k++)
                differ += pa[k] != pb[k];
            printf("bytes     %s (%s): %zu of %zu bytes differ, the first at byte %zu\n", ta->name,
                   mq_dtype_name(ta->type), differ, ta->nbytes, first);
            n_diff++;
            continue;
        }
        n_same++;
        bytes += ta->nbytes;
    }
    for (uint64_t i = 0; i < b->n_tensors; i++)
        if (!mq_gguf_find_tensor(a, b->tensors[i].name)) {
            printf("extra     %s (only in %s)\n", b->tensors[i].name, argv[2]);
            n_diff++;
        }
    printf("%s: %d tensors identical (%llu bytes), %d differ\n", n_diff ? "DIFFERENT" : "identical", n_same,
           (unsigned long long)bytes, n_diff);
    mq_gguf_close(a);
    mq_gguf_close(b);
    return n_diff ? 1 : 0;
}
