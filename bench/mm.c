/* bench/mm.c - the matmul harness of the kernel benchmarks (contract in bench/mm.h). */
#include "bench/mm.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

int mm_setup(struct mm_run *r, struct be_backend *be, enum mq_dtype type, struct bench_shape s, int64_t M,
             size_t cold_bytes, int min_copies, int max_copies, double *weight_bytes)
{
    memset(r, 0, sizeof(*r));
    r->be = be;
    size_t row_bytes;
    int rc = mq_dtype_row_bytes(type, s.K, &row_bytes);
    if (rc < 0)
        return rc;
    size_t bytes = row_bytes * (size_t)s.N;
    *weight_bytes = (double)bytes;
    int n = 1;
    if (cold_bytes > 0) {
        size_t want = (cold_bytes + bytes - 1) / bytes;
        n = want < (size_t)min_copies ? min_copies : want > (size_t)max_copies ? max_copies : (int)want;
    }
    r->w = calloc((size_t)n, sizeof(*r->w));
    float *wf = malloc((size_t)(s.N * s.K) * sizeof(float));
    float *x = malloc((size_t)(s.K * M) * sizeof(float));
    void *wq = malloc(bytes);
    if (!r->w || !wf || !x || !wq) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate a %lld x %lld weight matrix", (long long)s.N, (long long)s.K);
        goto done;
    }
    for (int64_t i = 0; i < s.N * s.K; i++)
        wf[i] = (float)((uint32_t)(i * 2654435761u) % 2001u) / 1000.0f - 1.0f;
    mq_dtype_get(type)->from_f32(wf, wq, s.N * s.K);
    r->n_copies = n;
    for (int c = 0; c < n; c++)
        if ((rc = be_upload(be, &r->w[c], type, 2, (int64_t[]){s.K, s.N}, wq, BE_USE_MATRIX)) < 0)
            goto done;
    if ((rc = be_alloc(be, &r->x, MQ_DTYPE_F32, 2, (int64_t[]){s.K, M})) < 0 ||
        (rc = be_alloc(be, &r->y, MQ_DTYPE_F32, 2, (int64_t[]){s.N, M})) < 0)
        goto done;
    for (int64_t i = 0; i < s.K * M; i++)
        x[i] = (float)((i * 7919) % 1999) / 1000.0f - 1.0f;
    rc = be_write(be, &r->x, 0, x, (size_t)(s.K * M) * sizeof(float));
done:
    free(wf);
    free(x);
    free(wq);
    return rc;
}

int mm_once(void *arg)
{
    struct mm_run *r = arg;
    struct be_tensor *w = &r->w[r->next];
    r->next = (r->next + 1) % r->n_copies;
    return be_run(r->be, &(struct be_node){.op = BE_OP_MATMUL, .src = {w, &r->x}, .dst = &r->y});
}

void mm_release(struct mm_run *r)
{
    if (!r->be)
        return;
    for (int c = 0; r->w && c < r->n_copies; c++) /* slots not uploaded are zero: a no-op */
        be_free(r->be, &r->w[c]);
    be_free(r->be, &r->x);
    be_free(r->be, &r->y);
    free(r->w);
    memset(r, 0, sizeof(*r));
}
