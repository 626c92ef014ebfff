/* tests/unit/test_cuda_layout.c - the cuda plugin's device weight layouts and the index math
 * of its kernels, checked on the host (every machine), and the kernels of the formats that
 * use them checked on a GPU (skipped, with the reason, where the cuda backend is not usable).
 *
 * On the host (backends/cuda/layout.h is plain C; its CU_HD functions are what the kernels
 * run, with the intrinsics' host twins):
 *   table           layout.h's format table against core/dtype.h (block sizes, bytes,
 *                   activation kind), every plan format mapped, plane offsets aligned for
 *                   every allowed K and N; the iq4 table words, the f16 conversion (all 65536
 *                   inputs), the iq4 byte-permute lookup (all 65536 nibble quadruples)
 *   pack_roundtrip  ggml blocks -> planes -> ggml blocks gives the same bytes (random bytes:
 *                   every bit of every field)
 *   decode_exact    the kernels' slice decoding of the packed planes gives core's to_f32
 *                   bit for bit (random blocks and quantizer output)
 *   slice_dot       a host run of the GEMV's per-slice work (decode, dp4a sums, activation
 *                   indexing, cu_slice_dot) against the exact dot product of the dequantized
 *                   weights and activations, within the kernels' budget
 *   q8k_warp        the Q8_K quantizer's warp algorithm (lane maxima, butterfly, scale, codes,
 *                   pair sums) run lane by lane on the host against cpu_quantize_q8k_scalar,
 *                   bit for bit, on ties, NaN, Inf, zeros, subnormals, huge values, halves
 * On a GPU:
 *   q8k_device      the device Q8_K quantizer through one-hot q6_k weights (d = 1, scales 1):
 *                   y[m][n] is then exactly dx * code of element n (NaN where the column has
 *                   a NaN scale), compared bit for bit with cpu_quantize_q8k_scalar's, on the
 *                   GEMV (M <= 8) and GEMM paths
 *   get_rows        every block format, random blocks: exact (memcmp with to_f32)
 *   matmul_vs_ref   every block format but q8_0/q4_0 (test_cuda.c has those), GEMV and
 *                   GEMM, random blocks and quantizer output, against the ref backend
 *
 * Error budget (matmul_vs_ref): max |y_cuda - y_ref| / (sum_k |w_k x_k| + 1e-30) <= 2e-5 per
 * output. Integer sums are exact, activation codes and scales are the reference quantizer's
 * (bit for bit: q8k_device, and test_cuda.c for Q8_0); what differs from ref's double is
 * F32 arithmetic: per slice d*isum and dm*msum (each within 2^-24 of terms no larger than
 * sum |d sc u x| and sum |dmin mn x|, which the min's cancellation can make a few times
 * sum |w x|) and the F32 sum over K/32 <= 24 slices: well under 1e-5 for these shapes; ref's
 * weights are to_f32's (rounded once per weight where a min is added), another 2^-24.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cpu/kern.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/layout.h"
#include "backends/cuda/layout_pack.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "core/status.h"
#include "tests/unit/test.h"

static bool is_block(enum cu_wtype t)
{
    return cu_formats[t].block_elems > 1;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- the table ---- */

static int test_table(void)
{
    int mapped[CU_W_COUNT] = {0};
    /* a buffer as large as the largest matrix below, for plane pointers into it */
    size_t base_bytes = (size_t)43 * 37 * 256;
    uint8_t *base = aligned_alloc(256, base_bytes);
    T_CHECK(base);
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
        if (tr->is_plan_format)
            T_CHECK_MSG(cu_wtypes[t].ok, "plan format %s has no cuda kernels", tr->name);
        if (!cu_wtypes[t].ok)
            continue;
        enum cu_wtype wt = cu_wtypes[t].wt;
        const struct cu_format *f = &cu_formats[wt];
        mapped[wt]++;
        T_CHECK_MSG(f->block_elems == tr->block_elems && (size_t)f->block_bytes == tr->block_bytes,
                    "%s: %d elements in %d bytes, core says %lld in %zu", tr->name, f->block_elems,
                    f->block_bytes, (long long)tr->block_elems, tr->block_bytes);
        if (!is_block(wt))
            continue;
        T_CHECK_MSG(f->codes + f->h2 + f->h1 + f->scales + f->d == f->block_bytes,
                    "%s: planes do not add up to the block", tr->name);
        T_CHECK_MSG(f->act_q8k == (tr->act_type == MQ_DTYPE_Q8_K) &&
                        (f->act_q8k || tr->act_type == MQ_DTYPE_Q8_0),
                    "%s: activation kind", tr->name);
        /* codes: 16 bytes (q8_0 32) per 32 weights, h2 8, h1 4 */
        int slices = f->block_elems / 32;
        T_CHECK(f->codes == 0 || f->codes == 16 * slices || (wt == CU_W_Q8_0 && f->codes == 32));
        T_CHECK(f->h2 == 0 || f->h2 == 8 * slices);
        T_CHECK(f->h1 == 0 || f->h1 == 4 * slices);
        T_CHECK(f->d == 2 || f->d == 4);
        /* plane offsets and sizes keep every load aligned, for any allowed shape */
        static const int64_t blocks_per_row[] = {1, 2, 3, 5, 43};
        static const int64_t rows[] = {1, 3, 7, 37};
        for (size_t i = 0; i < sizeof(blocks_per_row) / sizeof(blocks_per_row[0]); i++)
            for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
                int64_t K = blocks_per_row[i] * f->block_elems, N = rows[r];
                size_t end = (size_t)(K / f->block_elems) * (size_t)N * (size_t)f->block_bytes;
                T_CHECK(end <= base_bytes);
                struct cu_wplanes p = cu_planes(wt, base, K, N);
                const uint8_t *b = base;
                T_CHECK(!f->codes || (size_t)(p.codes - b) % 16 == 0);
                T_CHECK(!f->h2 || (size_t)(p.h2 - b) % 16 == 0);
                T_CHECK(!f->h1 || (size_t)(p.h1 - b) % 4 == 0);
                T_CHECK(!f->scales || (size_t)(p.scales - b) % 4 == 0);
                T_CHECK_MSG((size_t)(p.d - b) % (size_t)f->d == 0, "%s K=%lld N=%lld", tr->name,
                            (long long)K, (long long)N);
                T_CHECK((size_t)(p.d - b) + (size_t)f->d * (end / (size_t)f->block_bytes) == end);
            }
    }
    free(base);
    for (int wt = 0; wt < CU_W_COUNT; wt++)
        T_CHECK_MSG(mapped[wt] == 1, "cu_wtype %d mapped %d times", wt, mapped[wt]);

    /* the iq4 table words */
    uint32_t words[4] = {CU_IQ4NL_W0, CU_IQ4NL_W1, CU_IQ4NL_W2, CU_IQ4NL_W3};
    for (int i = 0; i < 16; i++)
        T_CHECK_MSG((int8_t)(uint8_t)(words[i / 4] >> 8 * (i % 4)) == mq_iq4nl_values[i],
                    "iq4 value %d", i);
    /* the lookup, every quadruple of codes */
    for (uint32_t v = 0; v < 65536; v++) {
        uint32_t nib = (v & 15) | (v >> 4 & 15) << 8 | (v >> 8 & 15) << 16 | (v >> 12 & 15) << 24;
        uint32_t got = cu_iq4_lookup(nib);
        for (int t = 0; t < 4; t++)
            T_CHECK_MSG((int8_t)(uint8_t)(got >> 8 * t) == mq_iq4nl_values[nib >> 8 * t & 15],
                        "nibbles %08x byte %d", nib, t);
    }
    /* byte permute as documented (CUB's example) */
    T_CHECK(cu_byte_perm(0x03020100u, 0x07060504u, 0x7531u) == 0x07050301u);
    /* f16, every input (NaN payloads kept by both) */
    for (uint32_t h = 0; h < 65536; h++)
        T_CHECK_MSG(f32_bits(cu_f16(h)) == f32_bits(mq_f16_to_f32((uint16_t)h)), "f16 %04x", h);
    /* dp4a's signed bytes */
    T_CHECK(cu_dp4a(0x80FF017Fu, 0x7F80FF01u, 5) ==
            5 + (-128 * 127) + (-1 * -128) + (1 * -1) + 127);
    return T_PASS;
}

/* ---- pack / unpack ---- */

/* Rows of K weights of dtype t in ggml blocks: random bytes (kind 0) or the quantizer's
 * output for random floats (kind 1). */
static void make_weights(enum mq_dtype t, int64_t K, int64_t N, int kind, unsigned seed, void *dst)
{
    if (kind == 0) {
        t_random_blocks(t, K, N, seed, dst);
        return;
    }
    float *w = malloc((size_t)(K * N) * sizeof(float));
    MQ_ASSERT(w);
    struct t_rng r = {seed * 7919ULL + 3};
    for (int64_t i = 0; i < K * N; i++)
        w[i] = t_rng_float(&r) * (1.0f + (float)(i % 7));
    mq_dtype_get(t)->quantize(w, dst, N, K, NULL);
    free(w);
}

static int test_pack_roundtrip(void)
{
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (!cu_wtypes[t].ok || !is_block(cu_wtypes[t].wt))
            continue;
        enum cu_wtype wt = cu_wtypes[t].wt;
        int64_t K = 3 * cu_formats[wt].block_elems, N = 5;
        size_t bytes =
            (size_t)(K / cu_formats[wt].block_elems * N) * (size_t)cu_formats[wt].block_bytes;
        uint8_t *src = malloc(bytes), *dev = malloc(bytes), *back = malloc(bytes);
        T_CHECK(src && dev && back);
        for (unsigned seed = 1; seed <= 3; seed++) {
            t_random_blocks((enum mq_dtype)t, K, N, seed, src);
            memset(dev, 0xA5, bytes);
            memset(back, 0x5A, bytes);
            cu_layout_pack(wt, src, dev, K, N);
            cu_layout_unpack(wt, dev, back, K, N);
            T_CHECK_MSG(memcmp(src, back, bytes) == 0, "%s seed %u",
                        mq_dtype_name((enum mq_dtype)t), seed);
            /* every device byte is written: packing over other garbage gives the same */
            uint8_t *dev2 = malloc(bytes);
            T_CHECK(dev2);
            memset(dev2, 0x00, bytes);
            cu_layout_pack(wt, src, dev2, K, N);
            int same = memcmp(dev, dev2, bytes) == 0;
            free(dev2);
            T_CHECK_MSG(same, "%s: a device byte depends on the buffer's old contents",
                        mq_dtype_name((enum mq_dtype)t));
        }
        free(src);
        free(dev);
        free(back);
    }
    return T_PASS;
}

/* ---- decoding: the kernels' view of the planes is to_f32, bit for bit ---- */

static int test_decode_exact(void)
{
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (!cu_wtypes[t].ok || !is_block(cu_wtypes[t].wt))
            continue;
        enum cu_wtype wt = cu_wtypes[t].wt;
        const struct cu_format *f = &cu_formats[wt];
        int64_t K = 2 * (f->block_elems > 32 ? f->block_elems : 128), N = 9, ns = K / 32;
        size_t row_bytes = (size_t)(K / f->block_elems) * (size_t)f->block_bytes;
        uint8_t *src = malloc(row_bytes * (size_t)N), *dev = malloc(row_bytes * (size_t)N);
        float *want = malloc((size_t)K * sizeof(float));
        T_CHECK(src && dev && want);
        for (int kind = 0; kind < 2; kind++) {
            make_weights((enum mq_dtype)t, K, N, kind, 10 + (unsigned)kind, src);
            cu_layout_pack(wt, src, dev, K, N);
            struct cu_wplanes p = cu_planes(wt, dev, K, N);
            for (int64_t n = 0; n < N; n++) {
                mq_dtype_get((enum mq_dtype)t)->to_f32(src + (size_t)n * row_bytes, want, K);
                for (int64_t c = 0; c < ns; c++) {
                    struct cu_slice s;
                    memset(&s, 0xEE, sizeof(s));
                    cu_slice_decode(wt, &p, n * ns + c, &s);
                    for (int i = 0; i < 32; i++) {
                        float got = cu_slice_value(&s, i, f->off, f->has_min);
                        float w = want[32 * c + i];
                        T_CHECK_MSG(f32_bits(got) == f32_bits(w),
                                    "%s kind %d row %lld weight %lld: %.9g, to_f32 %.9g",
                                    mq_dtype_name((enum mq_dtype)t), kind, (long long)n,
                                    (long long)(32 * c + i), (double)got, (double)w);
                    }
                    if (!f->has_min)
                        T_CHECK(s.s.mn[0] == 0 && s.s.mn[1] == 0);
                    if (!f->act_q8k)
                        T_CHECK(s.s.sc[0] == 1 && s.s.sc[1] == 1 &&
                                s.s.mn[0] == (f->has_min ? 1 : 0) && s.s.mn[0] == s.s.mn[1]);
                }
            }
        }
        free(src);
        free(dev);
        free(want);
    }
    return T_PASS;
}

/* ---- the GEMV's per-slice work on the host ---- */

/* Activations x [M][K] quantized as the kernels' split layout: Q8_0 (the reference
 * quantizer's blocks) or Q8_K (cpu_quantize_q8k_scalar). xq [M*K], xd, xs sized for Q8_0
 * (the larger). */
static void quantize_acts(bool q8k, const float *x, int64_t K, int64_t M, int8_t *xq, float *xd,
                          int32_t *xs)
{
    if (q8k) {
        for (int64_t m = 0; m < M; m++)
            cpu_quantize_q8k_scalar(x + m * K, K, xd + m * (K / 256), xq + m * K, NULL,
                                    xs + m * (K / 16));
        return;
    }
    struct mq_block_q8_0 *b = malloc((size_t)(K / 32) * sizeof(*b));
    MQ_ASSERT(b);
    for (int64_t m = 0; m < M; m++) {
        mq_dtype_get(MQ_DTYPE_Q8_0)->from_f32(x + m * K, b, K);
        for (int64_t i = 0; i < K / 32; i++) {
            int32_t sum = 0;
            for (int j = 0; j < 32; j++) {
                xq[m * K + 32 * i + j] = b[i].qs[j];
                sum += b[i].qs[j];
            }
            xd[m * (K / 32) + i] = mq_f16_to_f32(b[i].d);
            xs[m * (K / 32) + i] = sum;
        }
    }
    free(b);
}

/* What k_gemv_slices computes for row n, column m (the lanes' partial sums in one order). */
static float host_gemv(enum cu_wtype wt, const struct cu_wplanes *p, int64_t K, int64_t n,
                       int64_t m, const int8_t *xq, const float *xd, const int32_t *xs)
{
    const struct cu_format *f = &cu_formats[wt];
    int64_t ns = K / 32;
    float acc = 0.0f;
    for (int64_t c = 0; c < ns; c++) {
        struct cu_slice s;
        cu_slice_decode(wt, p, n * ns + c, &s);
        uint32_t x[8];
        memcpy(x, xq + m * K + 32 * c, 32);
        float dx;
        int32_t b0, b1;
        cu_slice_act(f->act_q8k, xd, xs, K, m, c, &dx, &b0, &b1);
        acc += cu_slice_dot(cu_dot16(s.q, x), cu_dot16(s.q + 4, x + 4), &s.s, b0, b1, dx, f->off,
                            f->act_q8k, f->has_min);
    }
    return acc;
}

static int test_slice_dot(void)
{
    enum { N = 7, M = 3 };
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (!cu_wtypes[t].ok || !is_block(cu_wtypes[t].wt))
            continue;
        enum cu_wtype wt = cu_wtypes[t].wt;
        const struct cu_format *f = &cu_formats[wt];
        int64_t K = 3 * (f->block_elems > 32 ? f->block_elems : 128);
        size_t row_bytes = (size_t)(K / f->block_elems) * (size_t)f->block_bytes;
        uint8_t *src = malloc(row_bytes * N), *dev = malloc(row_bytes * N);
        float *x = malloc((size_t)(K * M) * sizeof(float)), *wf = malloc((size_t)K * sizeof(float));
        int8_t *xq = malloc((size_t)(K * M));
        float *xd = malloc((size_t)(K / 32 * M) * sizeof(float));
        int32_t *xs = malloc((size_t)(K / 16 * M) * sizeof(int32_t));
        T_CHECK(src && dev && x && wf && xq && xd && xs);
        struct t_rng r = {99 + (unsigned)t};
        for (int64_t i = 0; i < K * M; i++)
            x[i] = t_rng_float(&r) * (i % 37 == 0 ? 8.0f : 1.0f);
        quantize_acts(f->act_q8k, x, K, M, xq, xd, xs);
        for (int kind = 0; kind < 2; kind++) {
            make_weights((enum mq_dtype)t, K, N, kind, 20 + (unsigned)kind, src);
            cu_layout_pack(wt, src, dev, K, N);
            struct cu_wplanes p = cu_planes(wt, dev, K, N);
            for (int64_t n = 0; n < N; n++) {
                mq_dtype_get((enum mq_dtype)t)->to_f32(src + (size_t)n * row_bytes, wf, K);
                for (int64_t m = 0; m < M; m++) {
                    double exact = 0.0, mag = 0.0;
                    for (int64_t k = 0; k < K; k++) {
                        double dx =
                            f->act_q8k ? xd[m * (K / 256) + k / 256] : xd[m * (K / 32) + k / 32];
                        exact += (double)wf[k] * dx * (double)xq[m * K + k];
                        mag += fabs((double)wf[k] * (double)x[m * K + k]);
                    }
                    float got = host_gemv(wt, &p, K, n, m, xq, xd, xs);
                    double err = fabs((double)got - exact) / (mag + 1e-30);
                    T_CHECK_MSG(err <= 2e-5,
                                "%s kind %d row %lld col %lld: %.9g, exact %.9g (rel %g)",
                                mq_dtype_name((enum mq_dtype)t), kind, (long long)n, (long long)m,
                                (double)got, exact, err);
                }
            }
        }
        free(src);
        free(dev);
        free(x);
        free(wf);
        free(xq);
        free(xd);
        free(xs);
    }
    return T_PASS;
}

/* ---- Q8_K: the warp algorithm, lane by lane ---- */

enum { Q8K_CASES = 13 };

/* Block `which` of the awkward activation blocks (256 floats). */
static void q8k_case(int which, unsigned seed, float *x)
{
    struct t_rng r = {seed * 31ULL + (unsigned)which + 1};
    for (int i = 0; i < 256; i++)
        x[i] = t_rng_float(&r);
    switch (which) {
    case 0: break;                                            /* plain */
    case 1: x[10] = -3.0f, x[200] = 3.0f; break;              /* equal magnitudes, lanes 1 and 25 */
    case 2: x[3] = -2.0f, x[5] = 2.0f, x[250] = -2.0f; break; /* ties inside a lane too */
    case 3: x[7] = NAN, x[100] = NAN, x[255] = NAN; break;    /* NaN: d NaN, codes 0 */
    case 4: x[100] = INFINITY; break;                         /* d NaN, codes 0 */
    case 5:                                                   /* all zero, some negative zero */
        for (int i = 0; i < 256; i++)
            x[i] = i % 3 ? 0.0f : -0.0f;
        break;
    case 6: /* subnormal: iscale overflows */
        for (int i = 0; i < 256; i++)
            x[i] *= 1e-39f;
        break;
    case 7: /* tiny normal: iscale overflows */
        for (int i = 0; i < 256; i++)
            x[i] *= 1e-37f;
        break;
    case 8: /* huge */
        for (int i = 0; i < 256; i++)
            x[i] *= 3e38f;
        break;
    case 9: /* iscale 1: halves round to even */
        for (int i = 0; i < 256; i++)
            x[i] = (float)(i % 50 - 25) + 0.5f;
        x[17] = -127.0f;
        break;
    case 10: x[0] = -INFINITY, x[1] = NAN; break;
    case 11: /* NaN in an all-zero block */
        for (int i = 0; i < 256; i++)
            x[i] = 0.0f;
        x[200] = NAN;
        break;
    default: /* one value, zeros around it */
        for (int i = 0; i < 256; i++)
            x[i] = 0.0f;
        x[131] = -0.75f;
        break;
    }
}

/* k_quantize_q8k's steps with 32 lanes of 8 elements and an exact shuffle-xor butterfly. */
static void host_q8k_warp(const float *xb, int8_t *q, float *d, int32_t *s)
{
    float amax[32];
    int idx[32], nan[32];
    for (int l = 0; l < 32; l++)
        cu_q8k_lane_max(xb + 8 * l, 8 * l, &amax[l], &idx[l], &nan[l]);
    for (int o = 16; o > 0; o >>= 1) {
        float na[32];
        int ni[32], nn[32];
        for (int l = 0; l < 32; l++) {
            na[l] = amax[l], ni[l] = idx[l], nn[l] = nan[l] | nan[l ^ o];
            if (cu_q8k_takes(amax[l ^ o], idx[l ^ o], amax[l], idx[l]))
                na[l] = amax[l ^ o], ni[l] = idx[l ^ o];
        }
        memcpy(amax, na, sizeof(amax));
        memcpy(idx, ni, sizeof(idx));
        memcpy(nan, nn, sizeof(nan));
    }
    int32_t lane_sum[32];
    float lane_d[32];
    for (int l = 0; l < 32; l++) {
        float iscale;
        bool coded =
            cu_q8k_scale(amax[l], amax[l] > 0.0f ? xb[idx[l]] : 0.0f, nan[l], &iscale, &lane_d[l]);
        lane_sum[l] = 0;
        for (int i = 0; i < 8; i++) {
            int32_t c = coded ? cu_q8k_code(xb[8 * l + i], iscale) : 0;
            q[8 * l + i] = (int8_t)c;
            lane_sum[l] += c;
        }
    }
    *d = lane_d[0]; /* the kernel's lane 0 writes it (every lane has the same) */
    for (int l = 0; l < 32; l += 2)
        s[l / 2] = lane_sum[l] + lane_sum[l + 1];
}

static int test_q8k_warp(void)
{
    float x[256], d_ref, d_got;
    int8_t q_ref[256], q_got[256];
    int32_t s_ref[16], s_got[16];
    for (unsigned seed = 0; seed < 20; seed++)
        for (int which = 0; which < Q8K_CASES; which++) {
            q8k_case(which, seed, x);
            cpu_quantize_q8k_scalar(x, 256, &d_ref, q_ref, NULL, s_ref);
            host_q8k_warp(x, q_got, &d_got, s_got);
            T_CHECK_MSG(f32_bits(d_got) == f32_bits(d_ref) || (isnan(d_got) && isnan(d_ref)),
                        "case %d seed %u: d %.9g, want %.9g", which, seed, (double)d_got,
                        (double)d_ref);
            T_CHECK_MSG(memcmp(q_got, q_ref, sizeof(q_ref)) == 0, "case %d seed %u: codes", which,
                        seed);
            T_CHECK_MSG(memcmp(s_got, s_ref, sizeof(s_ref)) == 0, "case %d seed %u: sums", which,
                        seed);
        }
    return T_PASS;
}

/* ---- on the GPU ---- */

/* The cuda backend, opened, or NULL with why not. */
static struct be_backend *open_cuda(char *why, size_t size)
{
    struct be_info info;
    be_cuda_ops.probe(&info);
    if (!info.usable) {
        snprintf(why, size, "%s", info.reason);
        return NULL;
    }
    struct be_backend *be = NULL;
    if (be_open("cuda", NULL, &be) < 0) {
        snprintf(why, size, "probes usable, but be_open failed");
        return NULL;
    }
    return be;
}

#define OPEN_CUDA(be)                                                                              \
    char why_[256];                                                                                \
    struct be_info info_;                                                                          \
    be_cuda_ops.probe(&info_);                                                                     \
    T_SKIP_IF(!info_.usable, "cuda backend not usable: %s", info_.reason);                         \
    struct be_backend *be = open_cuda(why_, sizeof(why_));                                         \
    T_CHECK_MSG(be != NULL, "%s", why_)

/* y [M][N] = W x on a backend; W [K, N] ggml blocks of type t. */
static int run_matmul(struct be_backend *be, enum mq_dtype t, const void *w, const float *x,
                      int64_t K, int64_t N, int64_t M, int64_t col0, float *y)
{
    struct be_tensor tw, tx, xv, ty;
    T_CHECK(be_upload(be, &tw, t, 2, (int64_t[]){K, N}, w, BE_USE_MATRIX) == MQ_OK);
    T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, col0 + M}) == MQ_OK);
    T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M}) == MQ_OK);
    T_CHECK(be_write(be, &tx, 0, x, (size_t)(K * (col0 + M)) * sizeof(float)) == MQ_OK);
    T_CHECK(be_view_rows(&tx, col0, M, &xv) == MQ_OK);
    T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {&tw, &xv}, .dst = &ty}) ==
            MQ_OK);
    T_CHECK(be_read(be, &ty, 0, y, (size_t)(N * M) * sizeof(float)) == MQ_OK);
    be_free(be, &tw);
    be_free(be, &tx);
    be_free(be, &ty);
    return T_PASS;
}

/* Code u (0..63) of weight e of a q6_k block, per core/dtype.h's comment. */
static void q6k_put(struct mq_block_q6_k *b, int e, unsigned u)
{
    int h = e / 128, k = e % 128 / 32, l = e % 32;
    uint8_t *lo = &b->ql[64 * h + 32 * (k & 1) + l];
    *lo = (uint8_t)((*lo & ~(15u << 4 * (k >> 1))) | (u & 15) << 4 * (k >> 1));
    uint8_t *hi = &b->qh[32 * h + l];
    *hi = (uint8_t)((*hi & ~(3u << 2 * k)) | (u >> 4) << 2 * k);
}

static int test_q8k_device(void)
{
    OPEN_CUDA(be);
    enum { K = 512, N = 512, MMAX = 12 };
    struct mq_block_q6_k *w = calloc((size_t)N * (K / 256), sizeof(*w));
    float *x = malloc((size_t)K * MMAX * sizeof(float)),
          *y = malloc((size_t)N * MMAX * sizeof(float));
    float *xd = malloc((size_t)(K / 256) * MMAX * sizeof(float));
    int8_t *xq = malloc((size_t)K * MMAX);
    int32_t *xs = malloc((size_t)(K / 16) * MMAX * sizeof(int32_t));
    T_CHECK(w && x && y && xd && xq && xs);
    /* row n: weight n is 1, the others 0 (codes 32 + {1, 0}, every scale 1, d 1) */
    for (int n = 0; n < N; n++)
        for (int b = 0; b < K / 256; b++) {
            struct mq_block_q6_k *blk = &w[n * (K / 256) + b];
            for (int e = 0; e < 256; e++)
                q6k_put(blk, e, 256 * b + e == n ? 33 : 32);
            for (int i = 0; i < 16; i++)
                blk->scales[i] = 1;
            blk->d = mq_f32_to_f16(1.0f);
        }
    for (int m = 0; m < MMAX; m++)
        for (int b = 0; b < K / 256; b++)
            q8k_case((2 * m + b) % Q8K_CASES, (unsigned)m, x + m * K + 256 * b);
    for (int m = 0; m < MMAX; m++)
        cpu_quantize_q8k_scalar(x + m * K, K, xd + m * (K / 256), xq + m * K, NULL,
                                xs + m * (K / 16));
    static const int64_t cols[] = {6, MMAX}; /* GEMV, GEMM */
    for (size_t ci = 0; ci < 2; ci++) {
        int64_t M = cols[ci];
        T_CHECK(run_matmul(be, MQ_DTYPE_Q6_K, w, x, K, N, M, 0, y) == T_PASS);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                /* a NaN scale anywhere in the column (a NaN or Inf in its block) makes every
                 * output of the column NaN: the dot spans all of K */
                bool col_nan = false;
                for (int b = 0; b < K / 256; b++)
                    col_nan |= isnan(xd[m * (K / 256) + b]);
                float want = col_nan ? NAN : xd[m * (K / 256) + n / 256] * (float)xq[m * K + n];
                float got = y[m * N + n];
                T_CHECK_MSG(got == want || (isnan(got) && isnan(want)),
                            "M=%lld column %lld (case %d) element %lld: %.9g, want %.9g",
                            (long long)M, (long long)m, (int)((2 * m + n / 256) % Q8K_CASES),
                            (long long)n, (double)got, (double)want);
            }
    }
    free(w);
    free(x);
    free(y);
    free(xd);
    free(xq);
    free(xs);
    be_close(be);
    return T_PASS;
}

static int test_get_rows(void)
{
    OPEN_CUDA(be);
    enum { K = 512, V = 37, M = 6 };
    int32_t ids[M] = {0, 36, 15, 16, 17, 31};
    float *y = malloc((size_t)(M * K) * sizeof(float)), *want = malloc((size_t)K * sizeof(float));
    uint8_t *w = malloc((size_t)K * V * 4);
    T_CHECK(y && want && w);
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (!cu_wtypes[t].ok || !is_block(cu_wtypes[t].wt))
            continue;
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
        t_random_blocks((enum mq_dtype)t, K, V, 5 + (unsigned)t, w);
        struct be_tensor tw, ti, ty;
        T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, V}, w, BE_USE_MATRIX) ==
                MQ_OK);
        T_CHECK(be_alloc(be, &ti, MQ_DTYPE_I32, 1, (int64_t[]){M}) == MQ_OK);
        T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
        T_CHECK(be_write(be, &ti, 0, ids, sizeof(ids)) == MQ_OK);
        T_CHECK(be_run(be, &(struct be_node){
                               .op = BE_OP_GET_ROWS, .src = {&tw, &ti}, .dst = &ty}) == MQ_OK);
        T_CHECK(be_read(be, &ty, 0, y, (size_t)(M * K) * sizeof(float)) == MQ_OK);
        size_t rb = tw.nbytes / V;
        for (int m = 0; m < M; m++) {
            tr->to_f32(w + (size_t)ids[m] * rb, want, K);
            T_CHECK_MSG(memcmp(want, y + m * K, (size_t)K * sizeof(float)) == 0, "%s row %d",
                        tr->name, ids[m]);
        }
        be_free(be, &tw);
        be_free(be, &ti);
        be_free(be, &ty);
    }
    free(y);
    free(want);
    free(w);
    be_close(be);
    return T_PASS;
}

static int check_vs_ref(struct be_backend *cu, struct be_backend *ref, enum mq_dtype t, int kind,
                        int64_t K, int64_t N, int64_t M, int64_t col0)
{
    size_t row_bytes;
    T_CHECK(mq_dtype_row_bytes(t, K, &row_bytes) == MQ_OK);
    int64_t cols = col0 + M;
    uint8_t *w = malloc(row_bytes * (size_t)N);
    float *wf = malloc((size_t)(K * N) * sizeof(float)),
          *x = malloc((size_t)(K * cols) * sizeof(float));
    float *y1 = malloc((size_t)(N * M) * sizeof(float)),
          *y2 = malloc((size_t)(N * M) * sizeof(float));
    int rc = T_FAIL;
    if (!w || !wf || !x || !y1 || !y2)
        goto done;
    make_weights(t, K, N, kind, (unsigned)(K + N + M), w);
    mq_dtype_get(t)->to_f32(w, wf, K * N);
    struct t_rng r = {(unsigned long long)(K * 3 + M)};
    for (int64_t i = 0; i < K * cols; i++)
        x[i] = t_rng_float(&r) * (i % 41 == 0 ? 10.0f : 1.0f);
    if (run_matmul(cu, t, w, x, K, N, M, col0, y1) != T_PASS ||
        run_matmul(ref, t, w, x, K, N, M, col0, y2) != T_PASS)
        goto done;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double mag = 0;
            for (int64_t k = 0; k < K; k++)
                mag += fabs((double)wf[n * K + k] * (double)x[(col0 + m) * K + k]);
            double err = fabs((double)y1[m * N + n] - (double)y2[m * N + n]) / (mag + 1e-30);
            if (!(err <= 2e-5)) {
                fprintf(stderr,
                        "    %s kind %d K=%lld N=%lld M=%lld col0=%lld: y[%lld][%lld] cuda %.9g "
                        "ref %.9g (rel %g > 2e-5)\n",
                        mq_dtype_name(t), kind, (long long)K, (long long)N, (long long)M,
                        (long long)col0, (long long)m, (long long)n, (double)y1[m * N + n],
                        (double)y2[m * N + n], err);
                goto done;
            }
        }
    rc = T_PASS;
done:
    free(w);
    free(wf);
    free(x);
    free(y1);
    free(y2);
    return rc;
}

static int test_matmul_vs_ref(void)
{
    OPEN_CUDA(cu);
    struct be_backend *ref;
    T_CHECK(be_open("ref", &(struct be_config){.n_threads = 2}, &ref) == MQ_OK);
    /* GEMV (M <= 8) and GEMM; N not a multiple of the GEMV's 4 rows or the GEMM's 64; K of
     * 1 to 3 super-blocks (32-blocks: also K = 96); a view at column 1 */
    static const struct {
        int64_t K, N, M, col0;
    } cases[] = {
        {256, 37, 1, 0},   {512, 33, 3, 1},   {768, 70, 8, 0}, {256, 5, 2, 0},  {512, 70, 9, 1},
        {256, 130, 64, 0}, {768, 65, 100, 0}, {96, 19, 4, 0},  {96, 19, 17, 0},
    };
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (!cu_wtypes[t].ok || !is_block(cu_wtypes[t].wt) || t == MQ_DTYPE_Q8_0 ||
            t == MQ_DTYPE_Q4_0)
            continue;
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
            if (!mq_dtype_row_ok((enum mq_dtype)t, cases[c].K))
                continue;
            for (int kind = 0; kind < 2; kind++)
                if (check_vs_ref(cu, ref, (enum mq_dtype)t, kind, cases[c].K, cases[c].N,
                                 cases[c].M, cases[c].col0) != T_PASS)
                    return T_FAIL;
        }
    }
    be_close(ref);
    be_close(cu);
    return T_PASS;
}

const struct mq_test cuda_layout_tests[] = {
    {"cuda_layout/table", test_table},
    {"cuda_layout/pack_roundtrip", test_pack_roundtrip},
    {"cuda_layout/decode_exact", test_decode_exact},
    {"cuda_layout/slice_dot", test_slice_dot},
    {"cuda_layout/q8k_warp", test_q8k_warp},
    {"cuda_layout/q8k_device", test_q8k_device},
    {"cuda_layout/get_rows", test_get_rows},
    {"cuda_layout/matmul_vs_ref", test_matmul_vs_ref},
    {NULL, NULL},
};
