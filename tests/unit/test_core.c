/* tests/unit/test_core.c - status, fp16/bf16 conversions, dtype traits and reference
 * quantizers, the thread pool. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "core/status.h"
#include "tests/unit/test.h"

static int test_status_strings(void)
{
    for (int s = MQ_STATUS_MIN; s <= 0; s++)
        T_CHECK(strcmp(mq_strerror(s), "unknown status") != 0);
    T_CHECK(strcmp(mq_strerror(1), "unknown status") == 0);
    T_CHECK(strcmp(mq_strerror(MQ_STATUS_MIN - 1), "unknown status") == 0);
    return T_PASS;
}

/* Every half converts to float and back to itself (NaNs stay NaN). */
static int test_f16_roundtrip_exhaustive(void)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = mq_f16_to_f32((uint16_t)h);
        uint16_t back = mq_f32_to_f16(f);
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
            T_CHECK(isnan(f));
            T_CHECK((back & 0x7C00) == 0x7C00 && (back & 0x3FF));
        } else {
            T_CHECK_MSG(back == h, "half 0x%04x -> %g -> 0x%04x", h, (double)f, back);
        }
    }
    return T_PASS;
}

/* Nearest-even rounding checked against the exact half grid with doubles. */
static uint16_t f16_nearest_slow(float f)
{
    if (isnan(f))
        return 0x7E00;
    double x = fabs((double)f);
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (x >= 65520.0)
        return sign | 0x7C00;
    uint16_t best = 0;
    double best_err = INFINITY;
    /* candidates: the two halves around x */
    uint16_t lo = 0, hi = 0x7BFF;
    while (lo < hi) { /* largest half <= x */
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if ((double)mq_f16_to_f32(mid) <= x)
            lo = mid;
        else
            hi = (uint16_t)(mid - 1);
    }
    for (uint16_t c = lo; c <= lo + 1 && c <= 0x7C00; c++) {
        double v = c == 0x7C00 ? 65536.0 : (double)mq_f16_to_f32(c);
        double err = fabs(v - x);
        if (err < best_err || (err == best_err && (c & 1) == 0)) {
            best = c;
            best_err = err;
        }
    }
    return sign | best;
}

static int test_f16_rounding(void)
{
    struct t_rng r = {0x1234567ULL};
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)t_rng_next(&r);
        /* concentrate on the half range: exponents around [-26, 17] */
        bits = (bits & 0x807FFFFFu) | ((uint32_t)(100 + (t_rng_next(&r) % 46)) << 23);
        float f = mq_bits_f32(bits);
        uint16_t got = mq_f32_to_f16(f), want = f16_nearest_slow(f);
        T_CHECK_MSG(got == want, "%a: got 0x%04x want 0x%04x", (double)f, got, want);
    }
    /* edges */
    T_CHECK(mq_f32_to_f16(65504.0f) == 0x7BFF);
    T_CHECK(mq_f32_to_f16(65519.99f) == 0x7BFF);
    T_CHECK(mq_f32_to_f16(65520.0f) == 0x7C00);
    T_CHECK(mq_f32_to_f16(INFINITY) == 0x7C00 && mq_f32_to_f16(-INFINITY) == 0xFC00);
    T_CHECK(mq_f32_to_f16(5.9604644775390625e-8f) == 0x0001);  /* smallest subnormal */
    T_CHECK(mq_f32_to_f16(2.98023223876953125e-8f) == 0x0000); /* half of it: ties to even */
    T_CHECK(mq_f32_to_f16(-0.0f) == 0x8000);
    T_CHECK(mq_f32_to_f16(1e-30f) == 0 && mq_f32_to_f16(1e30f) == 0x7C00);
    return T_PASS;
}

static int test_bf16(void)
{
    T_CHECK(mq_f32_to_bf16(1.0f) == 0x3F80);
    T_CHECK(mq_bf16_to_f32(0x3F80) == 1.0f);
    /* ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> 1 */
    T_CHECK(mq_f32_to_bf16(1.00390625f) == 0x3F80);
    T_CHECK(mq_f32_to_bf16(1.01171875f) == 0x3F82); /* 1 + 3*2^-8 -> up to even */
    T_CHECK(isnan(mq_bf16_to_f32(mq_f32_to_bf16(NAN))));
    for (uint32_t b = 0; b < 65536; b++) {
        if ((b & 0x7F80) == 0x7F80 && (b & 0x7F))
            continue;
        T_CHECK(mq_f32_to_bf16(mq_bf16_to_f32((uint16_t)b)) == b);
    }
    return T_PASS;
}

static int test_dtype_table(void)
{
    enum mq_dtype t;
    T_CHECK(mq_dtype_from_name("Q4_0", &t) == MQ_OK && t == MQ_DTYPE_Q4_0);
    T_CHECK(mq_dtype_from_name("iq2_xxs", &t) == MQ_ENOTFOUND);
    T_CHECK(mq_dtype_from_ggml(8, &t) == MQ_OK && t == MQ_DTYPE_Q8_0);
    T_CHECK(mq_dtype_from_ggml(30, &t) == MQ_OK && t == MQ_DTYPE_BF16);
    T_CHECK(mq_dtype_from_ggml(16, &t) == MQ_ENOTFOUND); /* iq2_xxs */
    size_t b;
    T_CHECK(mq_dtype_row_bytes(MQ_DTYPE_Q4_0, 64, &b) == MQ_OK && b == 36);
    T_CHECK(mq_dtype_row_bytes(MQ_DTYPE_Q8_0, 4096, &b) == MQ_OK && b == 128 * 34);
    T_CHECK(mq_dtype_row_bytes(MQ_DTYPE_Q4_0, 33, &b) == MQ_EINVAL);
    T_CHECK(mq_dtype_row_bytes(MQ_DTYPE_F32, INT64_MAX, &b) == MQ_ENOMEM);
    T_CHECK(fabs(mq_dtype_bits_per_weight(MQ_DTYPE_Q4_0) - 4.5) < 1e-12);
    T_CHECK(fabs(mq_dtype_bits_per_weight(MQ_DTYPE_Q8_0) - 8.5) < 1e-12);
    for (int i = 0; i < MQ_DTYPE_COUNT; i++) {
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)i);
        T_CHECK(tr->name && tr->block_elems >= 1 && tr->block_bytes >= 1);
        T_CHECK(!tr->is_plan_format || (tr->to_f32 && tr->from_f32));
    }
    return T_PASS;
}

/* Hand-computed blocks, following ggml's reference quantizers step by step. */
static int test_quant_known_blocks(void)
{
    float x[32] = {0};
    struct mq_block_q8_0 q8;
    struct mq_block_q4_0 q4;
    /* all zero: d = 0, codes 0 (q8) and 8 (q4); ggml's q4 scale is max / -8 = -0.0 */
    mq_dtype_get(MQ_DTYPE_Q8_0)->from_f32(x, &q8, 32);
    T_CHECK(q8.d == 0);
    for (int j = 0; j < 32; j++)
        T_CHECK(q8.qs[j] == 0);
    mq_dtype_get(MQ_DTYPE_Q4_0)->from_f32(x, &q4, 32);
    T_CHECK(q4.d == 0x8000);
    for (int j = 0; j < 16; j++)
        T_CHECK(q4.qs[j] == 0x88);
    /* q8: amax 127 -> d = 1 (f16 0x3C00); 63.5 rounds away from zero to 64 */
    x[0] = 127.0f;
    x[1] = -63.5f;
    x[31] = 0.49f;
    mq_dtype_get(MQ_DTYPE_Q8_0)->from_f32(x, &q8, 32);
    T_CHECK(q8.d == 0x3C00 && q8.qs[0] == 127 && q8.qs[1] == -64 && q8.qs[31] == 0);
    /* q4: the largest magnitude is -8 -> d = -8 / -8 = 1; -8 -> code 0; 1 -> 9.5 -> 9;
     * element 16 pairs with element 0 in byte 0 (low nibble 0..15, high 16..31) */
    for (int j = 0; j < 32; j++)
        x[j] = 1.0f;
    x[0] = -8.0f;
    x[16] = 7.0f; /* 7 + 8.5 = 15.5 -> 15 */
    mq_dtype_get(MQ_DTYPE_Q4_0)->from_f32(x, &q4, 32);
    T_CHECK(q4.d == 0x3C00);
    T_CHECK(q4.qs[0] == (0 | (15 << 4)));
    for (int j = 1; j < 16; j++)
        T_CHECK(q4.qs[j] == 0x99);
    /* positive largest magnitude: d = 8 / -8 = -1: 8 -> code 0, -7 -> 15 */
    for (int j = 0; j < 32; j++)
        x[j] = 0.0f;
    x[3] = 8.0f;
    x[19] = -7.0f;
    mq_dtype_get(MQ_DTYPE_Q4_0)->from_f32(x, &q4, 32);
    T_CHECK(q4.d == 0xBC00 && (q4.qs[3] & 15) == 0 && (q4.qs[3] >> 4) == 15);
    /* non-finite input must not be undefined behaviour: codes stay in range */
    x[5] = NAN;
    x[6] = INFINITY;
    mq_dtype_get(MQ_DTYPE_Q8_0)->from_f32(x, &q8, 32);
    mq_dtype_get(MQ_DTYPE_Q4_0)->from_f32(x, &q4, 32);
    return T_PASS;
}

/* Round-trip error bounds of every plan format on random rows (every 97th value 50x the
 * others, so some blocks hold an outlier): elementwise for the float formats, q8_0 and
 * q4_0 (half a step, the f16 scale's rounding); for the others, whose steps depend on
 * sub-block scales, mins and code tables, the row's relative RMS error, bounded at about
 * 1.3x what ggml's quantizers (which mixq's equal byte for byte) give on this row, and
 * ordered along the K-quant family. */
static int test_quant_error_bounds(void)
{
    struct t_rng r = {42};
    enum { N = 4096 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    void *buf = malloc(N * 4);
    T_CHECK(x && y && buf);
    for (int i = 0; i < N; i++)
        x[i] = t_rng_float(&r) * (i % 97 == 0 ? 50.0f : 1.0f);
    static const double rms_bound[MQ_DTYPE_COUNT] = {
        [MQ_DTYPE_Q4_1] = 0.16, [MQ_DTYPE_Q5_0] = 0.11, [MQ_DTYPE_Q5_1] = 0.07,  [MQ_DTYPE_Q2_K] = 0.26,
        [MQ_DTYPE_Q3_K] = 0.10, [MQ_DTYPE_Q4_K] = 0.11, [MQ_DTYPE_Q5_K] = 0.07,  [MQ_DTYPE_Q6_K] = 0.05,
        [MQ_DTYPE_IQ4_NL] = 0.13, [MQ_DTYPE_IQ4_XS] = 0.13,
    };
    double rms[MQ_DTYPE_COUNT] = {0};
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
        if (!tr->is_plan_format)
            continue;
        tr->from_f32(x, buf, N);
        tr->to_f32(buf, y, N);
        if (rms_bound[t] > 0) {
            double e = 0, s = 0;
            for (int i = 0; i < N; i++) {
                e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                s += (double)x[i] * x[i];
            }
            rms[t] = sqrt(e / s);
            T_CHECK_MSG(rms[t] > 0 && rms[t] <= rms_bound[t], "%s: relative RMS error %g (bound %g)", tr->name,
                        rms[t], rms_bound[t]);
            continue;
        }
        for (int b = 0; b < N / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(x[b * 32 + j]));
            for (int j = 0; j < 32; j++) {
                int i = b * 32 + j;
                double err = fabs((double)x[i] - (double)y[i]), bound;
                switch ((enum mq_dtype)t) {
                case MQ_DTYPE_F32: bound = 0; break;
                case MQ_DTYPE_F16: bound = fabs(x[i]) * 0x1p-11 + 0x1p-25; break;
                case MQ_DTYPE_BF16: bound = fabs(x[i]) * 0x1p-8; break;
                /* half a step, plus the f16 rounding of the scale times the code */
                case MQ_DTYPE_Q8_0: bound = amax / 127.0 * (0.5 + 127 * 0x1p-11) + 1e-7; break;
                default: bound = amax / 8.0 * (1.0 + 8 * 0x1p-11) + 1e-7; break; /* clamp at 15 */
                }
                T_CHECK_MSG(err <= bound, "%s element %d: %g vs %g (bound %g)", tr->name, i,
                            (double)x[i], (double)y[i], bound);
            }
        }
    }
    T_CHECK(rms[MQ_DTYPE_Q6_K] < rms[MQ_DTYPE_Q5_K] && rms[MQ_DTYPE_Q5_K] < rms[MQ_DTYPE_Q4_K] &&
            rms[MQ_DTYPE_Q4_K] < rms[MQ_DTYPE_Q2_K] && rms[MQ_DTYPE_Q3_K] < rms[MQ_DTYPE_Q2_K]);
    free(x);
    free(y);
    free(buf);
    return T_PASS;
}

struct pool_probe {
    atomic_int calls;
    atomic_llong sum;
    int seen[64];
};

static void pool_fn(void *arg, int ith, int nth)
{
    struct pool_probe *p = arg;
    atomic_fetch_add(&p->calls, 1);
    p->seen[ith]++;
    int64_t lo, hi;
    mq_pool_split(1000003, ith, nth, &lo, &hi);
    long long s = 0;
    for (int64_t i = lo; i < hi; i++)
        s += i;
    atomic_fetch_add(&p->sum, s);
}

static int test_pool(void)
{
    for (int nth = 1; nth <= 5; nth++) {
        struct mq_pool *pool;
        T_CHECK(mq_pool_new(nth, &pool) == MQ_OK);
        T_CHECK(mq_pool_threads(pool) == nth);
        for (int run = 0; run < 300; run++) {
            struct pool_probe p = {0};
            mq_pool_run(pool, pool_fn, &p);
            T_CHECK(atomic_load(&p.calls) == nth);
            T_CHECK(atomic_load(&p.sum) == 1000003LL * 1000002LL / 2);
            for (int i = 0; i < nth; i++)
                T_CHECK(p.seen[i] == 1);
        }
        mq_pool_free(pool);
    }
    struct mq_pool *bad;
    T_CHECK(mq_pool_new(0, &bad) == MQ_EINVAL && bad == NULL);
    mq_pool_free(NULL);
    /* split covers everything exactly once, sizes differ by at most one */
    for (int nth = 1; nth < 9; nth++) {
        int64_t next = 0;
        for (int i = 0; i < nth; i++) {
            int64_t lo, hi;
            mq_pool_split(10, i, nth, &lo, &hi);
            T_CHECK(lo == next && hi - lo >= 10 / nth && hi - lo <= 10 / nth + 1);
            next = hi;
        }
        T_CHECK(next == 10);
    }
    return T_PASS;
}

/* core/dist.h in one process: units run in order on the local context, their results and
 * run times reach the caller, an error stops the pass; the makespan of dynamic hand-out. */
struct dist_fixture {
    int64_t got[8];
    int n_got;
    int fail_at;
};

static int dist_run(void *ctx, int64_t index, const void *unit, size_t unit_bytes, void **out,
                    size_t *out_bytes)
{
    struct dist_fixture *fx = ctx;
    if (index == fx->fail_at)
        return MQ_ERANGE;
    int64_t *v = malloc(sizeof(*v));
    if (!v)
        return MQ_ENOMEM;
    T_CHECK(unit_bytes == 2);
    *v = index * 100 + ((const char *)unit)[0] * 10 + ((const char *)unit)[1];
    *out = v;
    *out_bytes = sizeof(*v);
    return MQ_OK;
}

static int dist_result(void *arg, int64_t i, const void *bytes, size_t n)
{
    struct dist_fixture *fx = arg;
    if (n != sizeof(int64_t) || fx->n_got != i)
        return MQ_EINTERNAL;
    memcpy(&fx->got[fx->n_got++], bytes, n);
    return MQ_OK;
}

static void dist_close(void *ctx)
{
    (void)ctx;
}

static int test_dist(void)
{
    static const struct mq_dist_job job = {.kind = "test", .run = dist_run, .close = dist_close};
    T_CHECK(mq_dist_size() == 1 && mq_dist_rank() == 0 && mq_dist_local_ranks() == 1);
    const char units[] = {1, 2, 3, 4, 5, 6};
    double secs[3] = {-1, -1, -1};
    struct dist_fixture fx = {.fail_at = -1};
    struct mq_dist_map mp = {.job = &job,
                             .n = 3,
                             .units = units,
                             .unit_bytes = 2,
                             .local = &fx,
                             .result = dist_result,
                             .arg = &fx,
                             .unit_seconds = secs};
    T_CHECK(mq_dist_run(&mp) == MQ_OK);
    T_CHECK(fx.n_got == 3 && fx.got[0] == 12 && fx.got[1] == 134 && fx.got[2] == 256);
    T_CHECK(secs[0] >= 0 && secs[1] >= 0 && secs[2] >= 0);
    struct dist_fixture bad = {.fail_at = 1};
    mp.local = mp.arg = &bad;
    T_CHECK(mq_dist_run(&mp) == MQ_ERANGE && bad.n_got == 1);
    mp.n = -1;
    mq_error_set_quiet(1);
    T_CHECK(mq_dist_run(&mp) == MQ_EINVAL);
    mq_error_set_quiet(0);
    /* dynamic hand-out: each unit to the first rank free, in order */
    const double t[] = {4, 1, 1, 1, 1, 2};
    T_CHECK(mq_dist_makespan(t, 6, 1) == 10);
    T_CHECK(mq_dist_makespan(t, 6, 2) == 6); /* 4 on one rank, 1 1 1 1 on the other, then 2 */
    T_CHECK(mq_dist_makespan(t, 6, 6) == 4);
    T_CHECK(mq_dist_makespan(t, 0, 2) == 0 && mq_dist_makespan(t, 6, 0) == 0);
    return T_PASS;
}

const struct mq_test core_tests[] = {
    {"core/status_strings", test_status_strings},
    {"core/f16_roundtrip_exhaustive", test_f16_roundtrip_exhaustive},
    {"core/f16_rounding", test_f16_rounding},
    {"core/bf16", test_bf16},
    {"core/dtype_table", test_dtype_table},
    {"core/quant_known_blocks", test_quant_known_blocks},
    {"core/quant_error_bounds", test_quant_error_bounds},
    {"core/pool", test_pool},
    {"core/dist", test_dist},
    {NULL, NULL},
};
