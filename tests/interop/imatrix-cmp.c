/* tests/interop/imatrix-cmp.c - compares two importance matrices (llama.cpp's GGUF or .dat,
 * read by mixq's reader): the same entries, shapes, counts and metadata, and the sums of
 * squares per input column within a relative tolerance.
 *
 *     imatrix-cmp A.gguf B.gguf MAX P99 MEDIAN
 *
 * Per column, the relative difference is |a - b| / max(|a|, |b|) (0 where both are 0).
 * Prints one line: entries, columns, the max, 99th percentile and median relative
 * difference, the entry and column of the max with both values and the entry's mean;
 * then OK or DIFFERENT. Exit 0 when entries, shapes, counts and metadata match and the
 * three figures are within their tolerances, 1 otherwise, 2 on bad usage or an
 * unreadable file.
 * (Used by tests/interop/check-imatrix.sh; built against libmixq.a.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "model/imatrix.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: imatrix-cmp A B MAX P99 MEDIAN\n");
        return 2;
    }
    double tol = atof(argv[3]), tol99 = atof(argv[4]), tol50 = atof(argv[5]);
    struct mq_imatrix *a = NULL, *b = NULL;
    if (mq_imatrix_read(argv[1], &a) < 0 || mq_imatrix_read(argv[2], &b) < 0)
        return 2;
    int bad = 0;
    if (a->n_entries != b->n_entries) {
        printf("entries differ: %d vs %d\n", a->n_entries, b->n_entries);
        bad = 1;
    }
    if (a->chunk_count != b->chunk_count || a->chunk_size != b->chunk_size) {
        printf("metadata differs: chunk_count %u vs %u, chunk_size %u vs %u\n", a->chunk_count, b->chunk_count,
               a->chunk_size, b->chunk_size);
        bad = 1;
    }
    int64_t n_cols = 0;
    for (int i = 0; i < a->n_entries; i++)
        n_cols += a->entries[i].n_in * a->entries[i].n_mat;
    double *rel = malloc((size_t)(n_cols ? n_cols : 1) * sizeof(double));
    if (!rel)
        return 2;
    int64_t n = 0, worst_col = -1;
    double worst = 0.0, worst_a = 0.0, worst_b = 0.0, worst_mean = 0.0;
    const char *worst_name = "-";
    for (int i = 0; i < a->n_entries; i++) {
        const struct mq_imatrix_entry *ea = &a->entries[i];
        const struct mq_imatrix_entry *eb = mq_imatrix_find(b, ea->name);
        if (!eb) {
            printf("entry '%s' only in %s\n", ea->name, argv[1]);
            bad = 1;
            continue;
        }
        if (ea->n_in != eb->n_in || ea->n_mat != eb->n_mat) {
            printf("entry '%s': %lld x %lld vs %lld x %lld\n", ea->name, (long long)ea->n_mat, (long long)ea->n_in,
                   (long long)eb->n_mat, (long long)eb->n_in);
            bad = 1;
            continue;
        }
        for (int64_t j = 0; j < ea->n_mat; j++)
            if (ea->counts[j] != eb->counts[j]) {
                printf("entry '%s': count %g vs %g\n", ea->name, (double)ea->counts[j], (double)eb->counts[j]);
                bad = 1;
            }
        double mean = 0.0;
        for (int64_t k = 0; k < ea->n_in * ea->n_mat; k++)
            mean += ea->sums[k] / (double)(ea->n_in * ea->n_mat);
        for (int64_t k = 0; k < ea->n_in * ea->n_mat; k++) {
            double x = ea->sums[k], y = eb->sums[k], m = fmax(fabs(x), fabs(y));
            double r = m > 0.0 ? fabs(x - y) / m : 0.0;
            rel[n++] = r;
            if (r > worst || worst_col < 0) {
                worst = r;
                worst_col = k;
                worst_name = ea->name;
                worst_a = x;
                worst_b = y;
                worst_mean = mean;
            }
        }
    }
    for (int i = 0; i < b->n_entries; i++)
        if (!mq_imatrix_find(a, b->entries[i].name)) {
            printf("entry '%s' only in %s\n", b->entries[i].name, argv[2]);
            bad = 1;
        }
    double median = 0.0, p99 = 0.0;
    if (n > 0) {
        qsort(rel, (size_t)n, sizeof(*rel), cmp_double);
        median = n % 2 ? rel[n / 2] : 0.5 * (rel[n / 2 - 1] + rel[n / 2]);
        p99 = rel[(int64_t)((double)(n - 1) * 0.99)];
    }
    bool within = worst <= tol && p99 <= tol99 && median <= tol50;
    printf("%d entries, %lld columns; relative difference max %.2e p99 %.2e median %.2e (tolerances %.0e %.0e "
           "%.0e): %s; max at %s column %lld: %.5g vs %.5g (entry mean %.5g)\n",
           a->n_entries, (long long)n, worst, p99, median, tol, tol99, tol50, !bad && within ? "OK" : "DIFFERENT",
           worst_name, (long long)worst_col, worst_a, worst_b, worst_mean);
    free(rel);
    mq_imatrix_free(a);
    mq_imatrix_free(b);
    return !bad && within ? 0 : 1;
}
