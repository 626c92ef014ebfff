/* tests/unit/test_compensate.c - error-compensated quantization (core/compensate.h) and
 * mq_quantize_segment (core/dtype.h):
 *   - segment: every plan format's segments, with and without importance weights, are the
 *     bytes quantizing the whole row gives (what lets compensation quantize a block at a
 *     time and still write each format's own blocks);
 *   - factor: U^T U times (G / rows + damp I) is the identity (to 1e-4), U upper;
 *     bad input (non-finite, no rows) is an error;
 *   - output error: on inputs with correlated columns, compensated rows have a smaller
 *     output error over those inputs than plain importance-weighted rounding, in every
 *     quantized plan format (at most 0.9x; measured 0.03-0.8x), and their bytes are whole
 *     blocks of the format (dequantized: finite);
 *   - conversion: mq_convert_weights with a factor gives exactly the compensated rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/compensate.h"
#include "core/dtype.h"
#include "core/status.h"
#include "tests/unit/test.h"

#define NIN 512 /* two K-quant super-blocks, sixteen 32-blocks */
#define NOUT 6
#define NTOK 1024

static bool testable(const struct mq_dtype_traits *t)
{
    return t->is_plan_format && t->is_quantized && t->quantize && t->to_f32 &&
           NIN % t->block_elems == 0;
}

static int test_segment(void)
{
    struct t_rng r = {7};
    float *x = malloc(NIN * sizeof(float)), *imp = malloc(NIN * sizeof(float));
    char *whole = malloc(NIN * 8), *seg = malloc(NIN * 8);
    T_CHECK(x && imp && whole && seg);
    for (int i = 0; i < NIN; i++) {
        x[i] = (t_rng_float(&r) - 0.5f) * (i % 37 == 0 ? 4.0f : 1.0f);
        imp[i] = 0.1f + 2 * fabsf(t_rng_float(&r));
    }
    int checked = 0;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        const struct mq_dtype_traits *t = mq_dtype_get((enum mq_dtype)f);
        if (!testable(t))
            continue;
        for (int wi = 0; wi < 2; wi++) {
            const float *w = wi ? imp : NULL;
            t->quantize(x, whole, 1, NIN, w);
            for (int64_t s0 = 0; s0 < NIN; s0 += t->block_elems) {
                mq_quantize_segment((enum mq_dtype)f, x, NIN, s0, t->block_elems, w, seg);
                size_t off = (size_t)(s0 / t->block_elems) * t->block_bytes;
                T_CHECK_MSG(memcmp(whole + off, seg, t->block_bytes) == 0,
                            "%s%s: block at %lld differs", t->name, wi ? " (imatrix)" : "",
                            (long long)s0);
            }
            checked++;
        }
    }
    T_CHECK(checked >= 16); /* q4_0 .. iq4_xs, both ways */
    free(x);
    free(imp);
    free(whole);
    free(seg);
    return T_PASS;
}

/* Inputs X [NTOK][NIN] whose columns are correlated (a few shared factors plus noise, and
 * a dead column), and their Gram matrix. */
static void make_inputs(float *xs, float *gram)
{
    struct t_rng r = {11};
    enum { NF = 8 };
    static float mix[NF][NIN];
    for (int k = 0; k < NF; k++)
        for (int i = 0; i < NIN; i++)
            mix[k][i] = t_rng_float(&r) - 0.5f;
    for (int t = 0; t < NTOK; t++) {
        float f[NF];
        for (int k = 0; k < NF; k++)
            f[k] = 2 * (t_rng_float(&r) - 0.5f);
        for (int i = 0; i < NIN; i++) {
            float v = 0.3f * (t_rng_float(&r) - 0.5f);
            for (int k = 0; k < NF; k++)
                v += f[k] * mix[k][i];
            xs[(size_t)t * NIN + i] = i == 5 ? 0.0f : v;
        }
    }
    memset(gram, 0, (size_t)NIN * NIN * sizeof(float));
    for (int i = 0; i < NIN; i++)
        for (int j = i; j < NIN; j++) {
            double s = 0;
            for (int t = 0; t < NTOK; t++)
                s += (double)xs[(size_t)t * NIN + i] * xs[(size_t)t * NIN + j];
            gram[(size_t)i * NIN + j] = gram[(size_t)j * NIN + i] = (float)s;
        }
}

/* sum over tokens and rows of (x . (w - q))^2 */
static double output_error(const float *xs, const float *w, const float *q)
{
    double e = 0;
    for (int r = 0; r < NOUT; r++)
        for (int t = 0; t < NTOK; t++) {
            double d = 0;
            for (int i = 0; i < NIN; i++)
                d += (double)xs[(size_t)t * NIN + i] * ((double)w[r * NIN + i] - q[r * NIN + i]);
            e += d * d;
        }
    return e;
}

static int test_factor(void)
{
    float *xs = malloc((size_t)NTOK * NIN * sizeof(float)),
          *g = malloc((size_t)NIN * NIN * sizeof(float));
    T_CHECK(xs && g);
    make_inputs(xs, g);
    float *u;
    T_CHECK(mq_gram_factor(g, NTOK, NIN, &u) == MQ_OK);
    double mean = 0;
    for (int i = 0; i < NIN; i++)
        mean += g[(size_t)i * NIN + i] / NTOK;
    const double damp = MQ_COMPENSATE_DAMP * mean / NIN;
    double worst = 0;
    static double utu[NIN];             /* a row of U^T U */
    for (int i = 0; i < NIN; i += 17) { /* rows of (U^T U) A, sampled */
        for (int k = 0; k < NIN; k++) {
            utu[k] = 0;
            for (int l = 0; l <= (i < k ? i : k); l++)
                utu[k] += (double)u[(size_t)l * NIN + i] * u[(size_t)l * NIN + k];
        }
        for (int j = 0; j < NIN; j++) {
            double s = 0;
            for (int k = 0; k < NIN; k++) {
                double a = g[(size_t)k * NIN + j] / NTOK;
                if (k == j)
                    a = (k == 5 ? 1 : a) + damp;
                s += utu[k] * a;
            }
            double d = fabs(s - (i == j));
            if (d > worst)
                worst = d;
        }
    }
    for (int i = 1; i < NIN; i++)
        T_CHECK(u[(size_t)i * NIN + i - 1] == 0.0f);
    T_CHECK_MSG(worst < 1e-4, "|U^T U A - I| = %g", worst);
    free(u);
    g[3] = NAN;
    T_CHECK(mq_gram_factor(g, NTOK, NIN, &u) == MQ_EINVAL && !u);
    g[3] = 0;
    T_CHECK(mq_gram_factor(g, 0, NIN, &u) == MQ_EINVAL && !u);
    free(xs);
    free(g);
    return T_PASS;
}

static int test_output_error(void)
{
    float *xs = malloc((size_t)NTOK * NIN * sizeof(float)),
          *g = malloc((size_t)NIN * NIN * sizeof(float));
    float *w = malloc(NOUT * NIN * sizeof(float)), *wc = malloc(NOUT * NIN * sizeof(float));
    float *qp = malloc(NOUT * NIN * sizeof(float)), *qc = malloc(NOUT * NIN * sizeof(float));
    float *imp = malloc(NIN * sizeof(float));
    char *bytes = malloc(NOUT * NIN * 8);
    T_CHECK(xs && g && w && wc && qp && qc && imp && bytes);
    make_inputs(xs, g);
    struct t_rng r = {3};
    for (int i = 0; i < NOUT * NIN; i++)
        w[i] = 0.05f * (t_rng_float(&r) + t_rng_float(&r) - 1.0f);
    for (int i = 0; i < NIN; i++)
        imp[i] = g[(size_t)i * NIN + i] / NTOK;
    float *u;
    T_CHECK(mq_gram_factor(g, NTOK, NIN, &u) == MQ_OK);
    int checked = 0;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        const struct mq_dtype_traits *t = mq_dtype_get((enum mq_dtype)f);
        if (!testable(t))
            continue;
        size_t row_bytes = (size_t)(NIN / t->block_elems) * t->block_bytes;
        t->quantize(w, bytes, NOUT, NIN, imp);
        for (int rr = 0; rr < NOUT; rr++)
            t->to_f32(bytes + rr * row_bytes, qp + rr * NIN, NIN);
        memcpy(wc, w, NOUT * NIN * sizeof(float));
        for (int rr = 0; rr < NOUT; rr++) {
            T_CHECK(mq_quantize_compensated((enum mq_dtype)f, wc + rr * NIN, NIN, imp, u,
                                            bytes + rr * row_bytes) == MQ_OK);
            t->to_f32(bytes + rr * row_bytes, qc + rr * NIN, NIN);
        }
        for (int i = 0; i < NOUT * NIN; i++)
            T_CHECK_MSG(isfinite(qc[i]), "%s: non-finite weight", t->name);
        double ep = output_error(xs, w, qp), ec = output_error(xs, w, qc);
        T_CHECK_MSG(ec <= 0.9 * ep, "%s: compensated output error %g, plain %g (%.3fx)", t->name,
                    ec, ep, ec / ep);
        fprintf(stderr, "    %-7s output error %.3fx plain rounding's\n", t->name, ec / ep);
        /* the conversion every plan uses gives the same bytes */
        const void *data;
        void *buf;
        T_CHECK(mq_convert_weights("w", MQ_DTYPE_F32, w, NIN, NOUT, (enum mq_dtype)f, imp, u, &data,
                                   &buf) == MQ_OK);
        T_CHECK_MSG(memcmp(data, bytes, row_bytes * NOUT) == 0, "%s: mq_convert_weights differs",
                    t->name);
        free(buf);
        checked++;
    }
    T_CHECK(checked >= 8);
    free(u);
    free(xs);
    free(g);
    free(w);
    free(wc);
    free(qp);
    free(qc);
    free(imp);
    free(bytes);
    return T_PASS;
}

const struct mq_test compensate_tests[] = {
    {"compensate/segment", test_segment},
    {"compensate/factor", test_factor},
    {"compensate/output-error", test_output_error},
    {NULL, NULL},
};
