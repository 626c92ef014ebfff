/* core/compensate.c - error-compensated quantization (core/compensate.h). */
#include "core/compensate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* In place: the lower Cholesky factor of a [n][n] (upper part zeroed); -1 when a pivot is
 * not positive. */
static int cholesky_lower(double *a, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (int64_t k = 0; k < j; k++)
            d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0))
            return -1;
        d = sqrt(d);
        a[j * n + j] = d;
        for (int64_t i = j + 1; i < n; i++) {
            double v = a[i * n + j];
            for (int64_t k = 0; k < j; k++)
                v -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = v / d;
        }
        for (int64_t k = j + 1; k < n; k++)
            a[j * n + k] = 0;
    }
    return 0;
}

int mq_gram_factor(const float *gram, double rows, int64_t n, float **u_out)
{
    *u_out = NULL;
    if (n < 1 || !(rows > 0))
        return mq_error(MQ_EINVAL, "Gram matrix of %lld columns over %g rows", (long long)n, rows);
    if ((uint64_t)n > (uint64_t)1 << 15)
        return mq_error(MQ_EINVAL, "Gram matrix of %lld columns is too large to factor",
                        (long long)n);
    const size_t nn = (size_t)n * (size_t)n;
    double *a = malloc(nn * sizeof(double)), *li = calloc(nn, sizeof(double));
    float *u = malloc(nn * sizeof(float));
    int rc = MQ_OK;
    if (!a || !li || !u) {
        rc = mq_error(MQ_ENOMEM, "cannot factor a Gram matrix of %lld columns", (long long)n);
        goto done;
    }
    double mean_diag = 0;
    for (size_t i = 0; i < nn; i++) {
        if (!isfinite(gram[i])) {
            rc = mq_error(MQ_EINVAL, "Gram matrix holds a non-finite value");
            goto done;
        }
        a[i] = (double)gram[i] / rows;
    }
    for (int64_t i = 0; i < n; i++)
        mean_diag += a[i * n + i];
    mean_diag /= (double)n;
    const double damp = MQ_COMPENSATE_DAMP * (mean_diag > 0 ? mean_diag : 1);
    for (int64_t i = 0; i < n; i++) {
        if (a[i * n + i] == 0)
            a[i * n + i] = 1; /* a dead input: its weight may move freely */
        a[i * n + i] += damp;
    }
    if (cholesky_lower(a, n) < 0) {
        rc = mq_error(MQ_ERANGE, "Gram matrix of %lld columns is not positive definite",
                      (long long)n);
        goto done;
    }
    /* li = L^-1 (lower), then the inverse (L L^T)^-1 = L^-T L^-1 into a (symmetric) */
    for (int64_t j = 0; j < n; j++) {
        li[j * n + j] = 1.0 / a[j * n + j];
        for (int64_t i = j + 1; i < n; i++) {
            double v = 0;
            for (int64_t k = j; k < i; k++)
                v -= a[i * n + k] * li[k * n + j];
            li[i * n + j] = v / a[i * n + i];
        }
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = 0;
            for (int64_t k = i; k < n; k++)
                v += li[k * n + i] * li[k * n + j];
            a[i * n + j] = a[j * n + i] = v;
        }
    /* upper U with U^T U = a: the transpose of a's lower factor (a = L L^T) */
    if (cholesky_lower(a, n) < 0) {
        rc = mq_error(MQ_ERANGE, "inverse Gram matrix of %lld columns is not positive definite",
                      (long long)n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            u[i * n + j] = (float)a[j * n + i];
done:
    free(a);
    free(li);
    if (rc < 0)
        free(u);
    else
        *u_out = u;
    return rc;
}

double mq_gram_norm2(const float *u, const float *v, int64_t n, double *y)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double t = v[i];
        for (int64_t k = 0; k < i; k++)
            t -= (double)u[k * n + i] * y[k];
        y[i] = t / (double)u[i * n + i];
        s += y[i] * y[i];
    }
    return s;
}

int mq_quantize_compensated(enum mq_dtype fmt, float *w, int64_t n, const float *imp,
                            const float *u, void *dst)
{
    const struct mq_dtype_traits *ft = mq_dtype_get(fmt);
    const int64_t be = ft->block_elems;
    const size_t row_bytes = (size_t)(n / be) * ft->block_bytes;
    float *orig = malloc((size_t)n * sizeof(float)), *deq = malloc((size_t)n * sizeof(float));
    float *z = malloc((size_t)be * sizeof(float));
    double *y = malloc((size_t)n * sizeof(double));
    char *plain = malloc(row_bytes);
    if (!orig || !deq || !z || !y || !plain) {
        free(orig);
        free(deq);
        free(z);
        free(y);
        free(plain);
        return mq_error(MQ_ENOMEM, "cannot allocate a row of %lld weights to compensate",
                        (long long)n);
    }
    memcpy(orig, w, (size_t)n * sizeof(float));
    for (int64_t s0 = 0; s0 < n; s0 += be) {
        char *out = (char *)dst + (size_t)(s0 / be) * ft->block_bytes;
        mq_quantize_segment(fmt, w, n, s0, be, imp, out);
        ft->to_f32(out, deq + s0, be);
        if (s0 + be < n) {
            /* z U_BB = w_B - q_B (U_BB upper): forward substitution along the block */
            for (int64_t j = 0; j < be; j++) {
                double v = (double)w[s0 + j] - (double)deq[s0 + j];
                for (int64_t k = 0; k < j; k++)
                    v -= (double)z[k] * (double)u[(s0 + k) * n + s0 + j];
                z[j] = (float)(v / (double)u[(s0 + j) * n + s0 + j]);
            }
            /* w_R -= z U_BR */
            for (int64_t k = 0; k < be; k++) {
                const float zk = z[k], *ur = u + (s0 + k) * n;
                for (int64_t c = s0 + be; c < n; c++)
                    w[c] -= zk * ur[c];
            }
        }
        memcpy(w + s0, deq + s0, (size_t)be * sizeof(float));
    }
    /* the compensated row's output error against plain rounding's: block-wise updates can
     * lose where a block's rounding moves later blocks' ranges (K-quants' 256 columns at
     * once), so the row keeps whichever is smaller */
    for (int64_t i = 0; i < n; i++)
        deq[i] -= orig[i];
    double err_comp = mq_gram_norm2(u, deq, n, y);
    ft->quantize(orig, plain, 1, n, imp);
    ft->to_f32(plain, deq, n);
    for (int64_t i = 0; i < n; i++)
        deq[i] -= orig[i];
    if (mq_gram_norm2(u, deq, n, y) < err_comp)
        memcpy(dst, plain, row_bytes);
    free(orig);
    free(deq);
    free(z);
    free(y);
    free(plain);
    return MQ_OK;
}
