/* backends/cuda/layout.h - the cuda plugin's weight layouts on the device, and the decoding
 * of one 32-weight slice that every kernel reading quantized weights goes through.
 *
 *     struct cu_wplanes p = cu_planes(CU_W_Q4_K, w, K, N);     // plane pointers
 *     struct cu_slice s;
 *     cu_slice_decode(CU_W_Q4_K, &p, n * (K / 32) + k / 32, &s); // weights k..k+31 of row n
 *     float w5 = cu_slice_value(&s, 5, cu_formats[CU_W_Q4_K].off,  // = to_f32's weight,
 *                               cu_formats[CU_W_Q4_K].has_min);  //   bit for bit
 *
 * Plain C that is also CUDA C++: plugin.c (the upload repack, through layout_pack.h), the
 * kernels (kern_mm.cu, kern_ops.cu) and the host tests (tests/unit/test_cuda_layout.c)
 * include it, so the index math the kernels run is the index math the tests check on a
 * machine without a GPU. CU_HD functions are __host__ __device__ under nvcc; loads, dp4a,
 * byte permutes, f16 conversion and the rounding-exact float operations have a device
 * branch (intrinsics) and a host branch (plain C with the same results).
 *
 * ---- Device layouts (made once at upload by layout_pack.h, never per call) ----
 *
 * Float formats keep ggml's layout (row n at n*K elements). Every block format is stored as
 * "planes": each plane holds one kind of field for all N*K/block_elems blocks of the matrix,
 * block after block in ggml's order (row n's blocks at n*K/block_elems), and the planes
 * follow each other in this order:
 *
 *   codes  16 bytes per 32 weights: 4-bit codes, byte i holds weight i of the 32 in its low
 *          nibble and weight i+16 in its high nibble (Q4_0's order); q8_0: 32 int8 codes
 *   h2     8 bytes per 32 weights: 2-bit fields, weight i at bits 2*((i%16)/4) of byte
 *          4*(i/16) + i%4 (so (word >> 2k) & 0x03030303 gives weights 16u+4k .. 16u+4k+3)
 *   h1     4 bytes per 32 weights: 1-bit fields, weight i at bit i/4 of byte i%4 (so
 *          (word >> k) & 0x01010101 gives weights 4k .. 4k+3)
 *   scales per block: ggml's packed sub-block scales, verbatim (q2_k 16, q3_k/q4_k/q5_k 12,
 *          q6_k 16, iq4_xs its 4 scales_l bytes)
 *   d      per block: ggml's f16 d (2 bytes), or ggml's pair of 16-bit fields after it
 *          (4 bytes: d and m, d and dmin, or iq4_xs's d and scales_h)
 *
 * A format's code of weight i (of a 32-weight slice) is built from its planes; k-quant slices
 * are the 8 consecutive 32-weight pieces of a 256-weight super-block:
 *
 *   format  planes (bytes per block)         code u of a weight          w (to_f32)
 *   q8_0    codes 32, d 2                     int8 code                   d*u
 *   q4_0    codes 16, d 2                     nibble                      d*(u-8)
 *   q4_1    codes 16, d 4 (d, m)              nibble                      d*u + m
 *   q5_0    codes 16, h1 4, d 2               nibble | h1<<4              d*(u-16)
 *   q5_1    codes 16, h1 4, d 4 (d, m)        nibble | h1<<4              d*u + m
 *   iq4_nl  codes 16, d 2                     values[nibble]              d*u
 *   q2_k    h2 64, scales 16, d 4 (d, dmin)   h2                          (d*sc)*u - dmin*mn
 *   q3_k    h2 64, h1 32, scales 12, d 2      h2 | h1<<2                  (d*sc)*(u-4)
 *   q4_k    codes 128, scales 12, d 4         nibble                      (d*sc)*u - dmin*mn
 *   q5_k    codes 128, h1 32, scales 12, d 4  nibble | h1<<4              (d*sc)*u - dmin*mn
 *   q6_k    codes 128, h2 64, scales 16, d 2  nibble | h2<<4              (d*sc)*(u-32)
 *   iq4_xs  codes 128, scales 4, d 4          values[nibble]              (d*sc)*u
 *
 * with sc/mn the sub-block's scale and min as core/dtype.h defines them (q3_k's sc and
 * iq4_xs's ls-32 signed; q6_k's int8). The bytes per weight are exactly ggml's (the
 * planes add up to the block's bytes); only the bits of the codes move (into slices of 32
 * consecutive weights) and the scale fields are split from the codes. The point: a warp
 * reads a row with aligned, coalesced loads (one 16-byte load per lane for the nibbles of
 * 32 weights, 8 bytes of h2, 4 of h1), and every format decodes with the same few shifts
 * and masks into four 32-bit words of four int8 codes per 16 weights, ready for dp4a.
 * Plane offsets are multiples of 16 (codes, h2), 4 (h1, scales, d pairs) and 2 (d) for
 * every K and N the format allows (K a multiple of its block): cudaMalloc's alignment
 * carries to every load.
 *
 * ---- Integer dot products (the kernels' formula, cu_slice_dot) ----
 *
 * Activations are Q8_0 (q8_0 .. iq4_nl: d per 32, code sums per 32) or Q8_K (k-quants and
 * iq4_xs: f32 d per 256, code sums per 16), as core/dtype.h's act_type says. For a slice
 * with integer dot products D0, D1 of its codes u with the activation codes of weights
 * 0..15 and 16..31, and activation code sums B0, B1 of those halves (Q8_0: B the sum of
 * all 32):
 *   Q8_0 kinds: dx * (d * (D0 + D1 - off*B) + m * B)            (m only for q4_1, q5_1)
 *   Q8_K kinds: dx * (d * (sc0*(D0 - off*B0) + sc1*(D1 - off*B1)) - dmin * (mn0*B0 + mn1*B1))
 * which is sum_i w_i * dx*xq_i with every integer exact (ggml's vec_dot formulas).
 *
 * Dependency rule: the plugin depends on core/ and the CUDA toolkit only; this header on
 * libc (and, under nvcc, cuda_fp16.h).
 */
#ifndef MQ_BACKENDS_CUDA_LAYOUT_H
#define MQ_BACKENDS_CUDA_LAYOUT_H

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define CU_HD __host__ __device__ __forceinline__
#else
#define CU_HD static inline
#endif
#ifdef __CUDA_ARCH__
#define CU_UNROLL _Pragma("unroll")
#else
#define CU_UNROLL
#endif

#ifdef __cplusplus
#define CU_STATIC_ASSERT(c, msg) static_assert(c, msg)
#define CU_TABLE static constexpr
#else
#define CU_STATIC_ASSERT(c, msg) _Static_assert(c, msg)
#define CU_TABLE static const
#endif

/* The weight formats the kernels know, one row each (core/dtype.h is C only: plugin.c maps
 * mq_dtype here, layout_pack.h has the map). Columns: block elements and bytes (ggml's),
 * bytes per block of each plane in memory order (see above), whether activations are Q8_K
 * (else Q8_0; the float formats have none), whether w has a min/offset term (dm*mn), and
 * the bias `off` subtracted from the stored code u. */
// clang-format off
#define CU_FORMATS(X)                                                                              \
    /* name    elems bytes codes  h2  h1  scales d  q8k min off */                                 \
    X(F32,     1,    4,    0,     0,  0,  0,     0, 0,  0,  0)                                     \
    X(F16,     1,    2,    0,     0,  0,  0,     0, 0,  0,  0)                                     \
    X(BF16,    1,    2,    0,     0,  0,  0,     0, 0,  0,  0)                                     \
    X(Q8_0,    32,   34,   32,    0,  0,  0,     2, 0,  0,  0)                                     \
    X(Q4_0,    32,   18,   16,    0,  0,  0,     2, 0,  0,  8)                                     \
    X(Q4_1,    32,   20,   16,    0,  0,  0,     4, 0,  1,  0)                                     \
    X(Q5_0,    32,   22,   16,    0,  4,  0,     2, 0,  0,  16)                                    \
    X(Q5_1,    32,   24,   16,    0,  4,  0,     4, 0,  1,  0)                                     \
    X(IQ4_NL,  32,   18,   16,    0,  0,  0,     2, 0,  0,  0)                                     \
    X(Q2_K,    256,  84,   0,     64, 0,  16,    4, 1,  1,  0)                                     \
    X(Q3_K,    256,  110,  0,     64, 32, 12,    2, 1,  0,  4)                                     \
    X(Q4_K,    256,  144,  128,   0,  0,  12,    4, 1,  1,  0)                                     \
    X(Q5_K,    256,  176,  128,   0,  32, 12,    4, 1,  1,  0)                                     \
    X(Q6_K,    256,  210,  128,   64, 0,  16,    2, 1,  0,  32)                                    \
    X(IQ4_XS,  256,  136,  128,   0,  0,  4,     4, 1,  0,  0)
// clang-format on

#define CU_FORMAT_ENUM(name, ...) CU_W_##name,
enum cu_wtype { CU_FORMATS(CU_FORMAT_ENUM) CU_W_COUNT };
#undef CU_FORMAT_ENUM

struct cu_format {
    int32_t block_elems, block_bytes;
    int32_t codes, h2, h1, scales, d; /* bytes per block of each plane */
    bool act_q8k, has_min;
    int32_t off;
};

#define CU_FORMAT_ROW(name, el, by, co, h2_, h1_, sc_, d_, q8k, mn, of)                            \
    {el, by, co, h2_, h1_, sc_, d_, q8k != 0, mn != 0, of},
CU_TABLE struct cu_format cu_formats[CU_W_COUNT] = {CU_FORMATS(CU_FORMAT_ROW)};
#undef CU_FORMAT_ROW

#ifdef __cplusplus
/* The same rows as compile-time constants for the kernels' templates. */
template <int T> struct cu_fmt;
#define CU_FORMAT_TRAITS(name, el, by, co, h2_, h1_, sc_, d_, q8k, mn, of)                         \
    template <> struct cu_fmt<CU_W_##name> {                                                       \
        static constexpr int block_elems = el, off = of;                                           \
        static constexpr bool act_q8k = q8k != 0, has_min = mn != 0, blocks = el > 1;              \
    };
CU_FORMATS(CU_FORMAT_TRAITS)
#undef CU_FORMAT_TRAITS
#endif

CU_STATIC_ASSERT(CU_W_Q8_0 == 3 && CU_W_IQ4_XS == 14 && CU_W_COUNT == 15, "cu_wtype order");

/* The 16 values of ggml's kvalues_iq4nl (core's mq_iq4nl_values) as four words of four
 * int8, little-endian: word i holds values 4i..4i+3 (the tests compare them). */
#define CU_IQ4NL_W0 0xBFAD9881u /* -127 -104 -83 -65 */
#define CU_IQ4NL_W1 0xF6EADDCFu /*  -49  -35 -22 -10 */
#define CU_IQ4NL_W2 0x26190D01u /*    1   13  25  38 */
#define CU_IQ4NL_W3 0x71594535u /*   53   69  89 113 */

/* ---- primitives: a device branch (intrinsics) and a host branch with the same results ---- */

/* Loads from the planes (read-only for a kernel's lifetime: the non-coherent cache path). */
CU_HD void cu_ld16(const uint8_t *p, uint32_t v[4])
{
#ifdef __CUDA_ARCH__
    uint4 u = __ldg(reinterpret_cast<const uint4 *>(p));
    v[0] = u.x, v[1] = u.y, v[2] = u.z, v[3] = u.w;
#else
    memcpy(v, p, 16);
#endif
}

CU_HD void cu_ld8(const uint8_t *p, uint32_t v[2])
{
#ifdef __CUDA_ARCH__
    uint2 u = __ldg(reinterpret_cast<const uint2 *>(p));
    v[0] = u.x, v[1] = u.y;
#else
    memcpy(v, p, 8);
#endif
}

CU_HD uint32_t cu_ld4(const uint8_t *p)
{
#ifdef __CUDA_ARCH__
    return __ldg(reinterpret_cast<const unsigned int *>(p));
#else
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#endif
}

CU_HD uint32_t cu_ld2(const uint8_t *p)
{
#ifdef __CUDA_ARCH__
    return __ldg(reinterpret_cast<const unsigned short *>(p));
#else
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#endif
}

/* f16 bits to float, exact for every input (subnormals, Inf, NaN). */
CU_HD float cu_f16(uint32_t h)
{
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half((unsigned short)h));
#else
    uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | man << 13;
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: man * 2^-24, normalized */
        uint32_t e = 113;
        while (!(man & 0x400u)) {
            man <<= 1;
            e--;
        }
        bits = sign | e << 23 | (man & 0x3FFu) << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

/* IEEE single products and sums, never fused into an FMA (nvcc contracts a*b+c by default;
 * the host code is built with -ffp-contract=off): what bit-exact results rest on. */
CU_HD float cu_fmul(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

CU_HD float cu_fadd(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

CU_HD float cu_fdiv(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}

/* Sum of the four products of the signed bytes of a and b, plus c (dp4a). */
CU_HD int32_t cu_dp4a(uint32_t a, uint32_t b, int32_t c)
{
#ifdef __CUDA_ARCH__
    return __dp4a((int)a, (int)b, c);
#else
    for (int i = 0; i < 4; i++)
        c += (int32_t)(int8_t)(uint8_t)(a >> 8 * i) * (int32_t)(int8_t)(uint8_t)(b >> 8 * i);
    return c;
#endif
}

/* Byte t of the result is byte ((s >> 4t) & 7) of the eight bytes y:x (x bytes 0..3). */
CU_HD uint32_t cu_byte_perm(uint32_t x, uint32_t y, uint32_t s)
{
#ifdef __CUDA_ARCH__
    return __byte_perm(x, y, s);
#else
    uint64_t v = (uint64_t)y << 32 | x;
    uint32_t r = 0;
    for (int t = 0; t < 4; t++)
        r |= (uint32_t)(v >> 8 * ((s >> 4 * t) & 7) & 0xFFu) << 8 * t;
    return r;
#endif
}

/* The iq4 value of each of four 4-bit codes (one per byte, 0..15): two 8-entry byte
 * permutes on the table's halves, then bit 3 of each code picks the half. */
CU_HD uint32_t cu_iq4_lookup(uint32_t nib)
{
    uint32_t sel = (nib & 0x7u) | (nib >> 4 & 0x70u) | (nib >> 8 & 0x700u) | (nib >> 12 & 0x7000u);
    uint32_t lo = cu_byte_perm(CU_IQ4NL_W0, CU_IQ4NL_W1, sel);
    uint32_t hi = cu_byte_perm(CU_IQ4NL_W2, CU_IQ4NL_W3, sel);
    uint32_t hi_mask = (nib >> 3 & 0x01010101u) * 0xFFu;
    return (lo & ~hi_mask) | (hi & hi_mask);
}

/* ---- planes ---- */

struct cu_wplanes {
    const uint8_t *codes, *h2, *h1, *scales, *d; /* NULL where the format has no such plane */
};

/* The planes of an N x K matrix of format t at w (device or host memory). Host code: the
 * launchers pass the result to the kernels. */
static inline struct cu_wplanes cu_planes(enum cu_wtype t, const void *w, int64_t K, int64_t N)
{
    struct cu_format f = cu_formats[t];
    size_t nb = f.block_elems > 1 ? (size_t)(K / f.block_elems) * (size_t)N : 0;
    const uint8_t *p = (const uint8_t *)w;
    struct cu_wplanes r;
    r.codes = f.codes ? p : NULL;
    p += nb * (size_t)f.codes;
    r.h2 = f.h2 ? p : NULL;
    p += nb * (size_t)f.h2;
    r.h1 = f.h1 ? p : NULL;
    p += nb * (size_t)f.h1;
    r.scales = f.scales ? p : NULL;
    p += nb * (size_t)f.scales;
    r.d = f.d ? p : NULL;
    return r;
}

/* ---- one slice: 32 consecutive weights of a row ---- */

/* Sub-block scales of a slice: weight i (0..31) has integer scale sc[i/16] and min
 * multiplier mn[i/16]; w = (d*sc)*(u - off) + dm*mn (dm*mn only where the format has a min:
 * dm = m for q4_1/q5_1, -dmin for the k-quants; sc = 1 for the 32-blocks). */
struct cu_sscale {
    int32_t sc[2], mn[2];
    float d, dm;
};

struct cu_slice {
    uint32_t q[8]; /* codes u: weights 4i..4i+3 in the bytes of q[i] (int8) */
    struct cu_sscale s;
};

/* Word w (0..7: weights 4w..4w+3) of the 4-bit codes L (one 16-byte slice). */
CU_HD uint32_t cu_nib(const uint32_t L[4], int w)
{
    return L[w & 3] >> (4 * (w >> 2)) & 0x0F0F0F0Fu;
}

/* Word w of the 1-bit and 2-bit fields, one per byte. */
CU_HD uint32_t cu_bit1(uint32_t H, int w)
{
    return H >> w & 0x01010101u;
}

CU_HD uint32_t cu_bit2(const uint32_t H[2], int w)
{
    return H[w >> 2] >> (2 * (w & 3)) & 0x03030303u;
}

CU_HD void cu_scales_one(struct cu_sscale *s, float d, float dm, bool has_min)
{
    s->sc[0] = s->sc[1] = 1;
    s->mn[0] = s->mn[1] = has_min ? 1 : 0;
    s->d = d;
    s->dm = has_min ? dm : 0.0f;
}

/* Scale and min of q4_k/q5_k sub-block c (0..7) from the 12 packed bytes W0..W2 (core's
 * formula: c < 4: sc = b[c] & 63, mn = b[c+4] & 63; else sc = (b[c+4] & 15) | (b[c-4] >> 6)
 * << 4, mn = (b[c+4] >> 4) | (b[c] >> 6) << 4). */
CU_HD void cu_k4_scale_min(const uint32_t W[3], int c, int32_t *sc, int32_t *mn)
{
    int j = c & 3;
    uint32_t b0 = W[0] >> 8 * j & 0xFFu, b1 = W[1] >> 8 * j & 0xFFu, b2 = W[2] >> 8 * j & 0xFFu;
    if (c < 4) {
        *sc = (int32_t)(b0 & 63);
        *mn = (int32_t)(b1 & 63);
    } else {
        *sc = (int32_t)((b2 & 15) | (b0 >> 6) << 4);
        *mn = (int32_t)((b2 >> 4) | (b1 >> 6) << 4);
    }
}

/* Slice j of the matrix (row n's slice k/32 is j = n*K/32 + k/32) of format t: its codes and
 * scales. t must be a block format. */
CU_HD void cu_slice_decode(enum cu_wtype t, const struct cu_wplanes *P, int64_t j,
                           struct cu_slice *s)
{
    const int64_t b = j >> 3;   /* the super-block of a k-quant slice */
    const int c = (int)(j & 7); /* the slice within it */
    uint32_t L[4], H2[2], H1, W[3];
    switch (t) {
    case CU_W_Q8_0:
        cu_ld16(P->codes + 32 * j, s->q);
        cu_ld16(P->codes + 32 * j + 16, s->q + 4);
        cu_scales_one(&s->s, cu_f16(cu_ld2(P->d + 2 * j)), 0.0f, false);
        break;
    case CU_W_Q4_0:
    case CU_W_IQ4_NL:
        cu_ld16(P->codes + 16 * j, L);
        CU_UNROLL
        for (int w = 0; w < 8; w++)
            s->q[w] = t == CU_W_IQ4_NL ? cu_iq4_lookup(cu_nib(L, w)) : cu_nib(L, w);
        cu_scales_one(&s->s, cu_f16(cu_ld2(P->d + 2 * j)), 0.0f, false);
        break;
    case CU_W_Q4_1:
    case CU_W_Q5_0:
    case CU_W_Q5_1: {
        cu_ld16(P->codes + 16 * j, L);
        H1 = t == CU_W_Q4_1 ? 0 : cu_ld4(P->h1 + 4 * j);
        CU_UNROLL
        for (int w = 0; w < 8; w++)
            s->q[w] = cu_nib(L, w) | cu_bit1(H1, w) << 4;
        if (t == CU_W_Q5_0) {
            cu_scales_one(&s->s, cu_f16(cu_ld2(P->d + 2 * j)), 0.0f, false);
        } else {
            uint32_t dm = cu_ld4(P->d + 4 * j);
            cu_scales_one(&s->s, cu_f16(dm & 0xFFFFu), cu_f16(dm >> 16), true);
        }
        break;
    }
    case CU_W_Q2_K: {
        cu_ld8(P->h2 + 8 * j, H2);
        CU_UNROLL
        for (int w = 0; w < 8; w++)
            s->q[w] = cu_bit2(H2, w);
        /* sub-blocks 2c, 2c+1: scale bytes 2c, 2c+1 (low nibble scale, high nibble min) */
        uint32_t sw = cu_ld4(P->scales + 16 * b + 4 * (c >> 1)) >> 16 * (c & 1);
        s->s.sc[0] = (int32_t)(sw & 15), s->s.mn[0] = (int32_t)(sw >> 4 & 15);
        s->s.sc[1] = (int32_t)(sw >> 8 & 15), s->s.mn[1] = (int32_t)(sw >> 12 & 15);
        uint32_t dm = cu_ld4(P->d + 4 * b);
        s->s.d = cu_f16(dm & 0xFFFFu);
        s->s.dm = -cu_f16(dm >> 16);
        break;
    }
    case CU_W_Q3_K: {
        cu_ld8(P->h2 + 8 * j, H2);
        H1 = cu_ld4(P->h1 + 4 * j);
        CU_UNROLL
        for (int w = 0; w < 8; w++)
            s->q[w] = cu_bit2(H2, w) | cu_bit1(H1, w) << 2;
        /* sub-block i = 2c+g: low 4 bits in byte i%8 (nibble i/8), high 2 bits at bits
         * 2*(i/4) of byte 8 + i%4; i%8 = 2*(c&3)+g, i/8 = c>>2, i%4 = 2*(c&1)+g, i/4 = c>>1 */
        const uint8_t *sp = P->scales + 12 * b;
        uint32_t lo_w = cu_ld4(sp + ((c & 2) ? 4 : 0)), hi_w = cu_ld4(sp + 8);
        for (int g = 0; g < 2; g++) {
            int byte = 2 * (c & 1) + g;
            uint32_t lo = (lo_w >> 8 * byte & 0xFFu) >> 4 * (c >> 2) & 15;
            uint32_t hi = (hi_w >> 8 * byte & 0xFFu) >> 2 * (c >> 1) & 3;
            s->s.sc[g] = (int32_t)(lo | hi << 4) - 32;
            s->s.mn[g] = 0;
        }
        s->s.d = cu_f16(cu_ld2(P->d + 2 * b));
        s->s.dm = 0.0f;
        break;
    }
    case CU_W_Q4_K:
    case CU_W_Q5_K: {
        cu_ld16(P->codes + 16 * j, L);
        H1 = t == CU_W_Q5_K ? cu_ld4(P->h1 + 4 * j) : 0;
        CU_UNROLL
        for (int w = 0; w < 8; w++)
            s->q[w] = cu_nib(L, w) | cu_bit1(H1, w) << 4;
        const uint8_t *sp = P->scales + 12 * b;
        W[0] = cu_ld4(sp), W[1] = cu_ld4(sp + 4), W[2] = cu_ld4(sp + 8);
        cu_k4_scale_min(W, c, &s->s.sc[0], &s->s.mn[0]);
        s->s.sc[1] = s->s.sc[0], s->s.mn[1] = s->s.mn[0];
        uint32_t dm = cu_ld4(P->d + 4 * b);
        s->s.d = cu_f16(dm & 0xFFFFu);
        s->s.dm = -cu_f16(dm >> 16);
        break;
    }
    case CU_W_Q6_K: {
        cu_ld16(P->codes + 16 * j, L);
        cu_ld8(P->h2 + 8 * j, H2);
        CU_UNROLL
        for (int w = 0; w < 8; w++)
            s->q[w] = cu_nib(L, w) | cu_bit2(H2, w) << 4;
        /* int8 scales 2c, 2c+1 */
        uint32_t sw = cu_ld4(P->scales + 16 * b + 4 * (c >> 1)) >> 16 * (c & 1);
        s->s.sc[0] = (int32_t)(int8_t)(uint8_t)(sw & 0xFFu);
        s->s.sc[1] = (int32_t)(int8_t)(uint8_t)(sw >> 8 & 0xFFu);
        s->s.mn[0] = s->s.mn[1] = 0;
        s->s.d = cu_f16(cu_ld2(P->d + 2 * b));
        s->s.dm = 0.0f;
        break;
    }
    case CU_W_IQ4_XS: {
        cu_ld16(P->codes + 16 * j, L);
        CU_UNROLL
        for (int w = 0; w < 8; w++)
            s->q[w] = cu_iq4_lookup(cu_nib(L, w));
        /* ls = (scales_l nibble c) | (scales_h bits 2c..2c+1) << 4, biased by 32 */
        uint32_t sl = cu_ld4(P->scales + 4 * b), dh = cu_ld4(P->d + 4 * b);
        uint32_t ls = (sl >> 4 * c & 15) | (dh >> 16 >> 2 * c & 3) << 4;
        s->s.sc[0] = s->s.sc[1] = (int32_t)ls - 32;
        s->s.mn[0] = s->s.mn[1] = 0;
        s->s.d = cu_f16(dh & 0xFFFFu);
        s->s.dm = 0.0f;
        break;
    }
    case CU_W_F32:
    case CU_W_F16:
    case CU_W_BF16:
    case CU_W_COUNT: break;
    }
}

/* Weight i (0..31) of a decoded slice, as core's to_f32 computes it, bit for bit:
 * (d*sc)*(u - off), plus dm*mn where the format has a min (never +0.0 added otherwise:
 * that would turn a -0.0 weight into +0.0). off and has_min: the format's row of
 * cu_formats (the kernels pass cu_fmt<T>'s constants). */
CU_HD float cu_slice_value(const struct cu_slice *s, int i, int off, bool has_min)
{
    int32_t u = (int32_t)(int8_t)(uint8_t)(s->q[i >> 2] >> 8 * (i & 3) & 0xFFu);
    int g = i >> 4;
    float v = cu_fmul(cu_fmul(s->s.d, (float)s->s.sc[g]), (float)(u - off));
    if (has_min)
        v = cu_fadd(v, cu_fmul(s->s.dm, (float)s->s.mn[g]));
    return v;
}

/* Sum of the products of the four code words q[0..3] with the activation words x[0..3]. */
CU_HD int32_t cu_dot16(const uint32_t q[4], const uint32_t x[4])
{
    int32_t d = cu_dp4a(q[0], x[0], 0);
    d = cu_dp4a(q[1], x[1], d);
    d = cu_dp4a(q[2], x[2], d);
    return cu_dp4a(q[3], x[3], d);
}

/* The activation scale and code sums that slice c of a row (weights 32c..32c+31) meets in
 * column m of quantized activations (kern.h's split layout: codes [M][K], scales xd, sums
 * xs): Q8_0 kinds have one block per slice (*b1 unused, 0), Q8_K kinds a block per 8
 * slices and a sum per 16 weights. */
CU_HD void cu_slice_act(bool act_q8k, const float *xd, const int32_t *xs, int64_t K, int64_t m,
                        int64_t c, float *dx, int32_t *b0, int32_t *b1)
{
    if (act_q8k) {
        *dx = xd[m * (K / 256) + c / 8];
        *b0 = xs[m * (K / 16) + 2 * c];
        *b1 = xs[m * (K / 16) + 2 * c + 1];
    } else {
        *dx = xd[m * (K / 32) + c];
        *b0 = xs[m * (K / 32) + c];
        *b1 = 0;
    }
}

/* The slice's share of a dot product (the formula in the header comment): d0, d1 the code
 * dot products of weights 0..15 and 16..31, b0, b1 the activation code sums of those halves
 * (Q8_0 kinds: b0 is the sum of all 32, b1 unused), dx the activations' scale. */
CU_HD float cu_slice_dot(int32_t d0, int32_t d1, const struct cu_sscale *s, int32_t b0, int32_t b1,
                         float dx, int off, bool act_q8k, bool has_min)
{
    int32_t isum, msum;
    if (act_q8k) {
        isum = s->sc[0] * (d0 - off * b0) + s->sc[1] * (d1 - off * b1);
        msum = s->mn[0] * b0 + s->mn[1] * b1;
    } else {
        isum = d0 + d1 - off * b0;
        msum = s->mn[0] * b0;
    }
    float r = s->d * (float)isum;
    if (has_min)
        r += s->dm * (float)msum;
    return dx * r;
}

/* ---- Q8_K activation quantization (cpu_quantize_q8k_scalar, bit for bit) ----
 *
 * Per block of 256: max = the first element of largest magnitude (a NaN never is), and with
 * amax = |max|: amax 0 gives d = 0 and codes 0; a NaN or infinite element d = NaN and codes
 * 0 (the block's dot is then NaN, as with any non-finite input); otherwise iscale =
 * -127/max, code = min(127, nearest_int(iscale*x)) as int8 (x*iscale NaN: 0), d = 1/iscale.
 * The device quantizer splits the search over a warp: each lane keeps the first largest of
 * its 8 elements and whether it saw a NaN, then lanes combine pairwise (cu_q8k_takes, OR). */

/* A lane's share of the search over its elements v[0..7] (indices i0..i0+7 of the block):
 * the first largest magnitude (*amax stays 0 and *idx 256 when all are 0 or NaN), and
 * whether any is NaN. */
CU_HD void cu_q8k_lane_max(const float v[8], int i0, float *amax, int *idx, int *nan)
{
    *amax = 0.0f;
    *idx = 256;
    *nan = 0;
    for (int i = 0; i < 8; i++) {
        float a = fabsf(v[i]);
        *nan |= a != a;
        if (a > *amax) {
            *amax = a;
            *idx = i0 + i;
        }
    }
}

/* Whether candidate (a, i) (magnitude, element index) replaces (amax, idx): larger, or as
 * large and earlier. A total order on the lanes' candidates, so any combining tree (the
 * warp's butterfly) ends with the block's first largest. */
CU_HD bool cu_q8k_takes(float a, int i, float amax, int idx)
{
    return a > amax || (a == amax && i < idx);
}

/* The block's scale from its largest magnitude amax, that element's value mx and whether
 * it holds a NaN: false (codes all 0) with *d = 0 for amax 0 without NaN and *d = NaN for a
 * NaN or an infinite amax; else true with *iscale = -127/mx and *d = 1/iscale. */
CU_HD bool cu_q8k_scale(float amax, float mx, int nan, float *iscale, float *d)
{
    *iscale = 0.0f;
    if (amax == 0.0f || amax > FLT_MAX || nan) {
        *d = amax == 0.0f && !nan ? 0.0f : NAN;
        return false;
    }
    *iscale = cu_fdiv(-127.0f, mx);
    *d = cu_fdiv(1.0f, *iscale);
    return true;
}

/* ggml's nearest_int (round half to even by the 1.5 * 2^23 trick), then the clamp to 127 and
 * the conversion to int8 of cpu_quantize_q8k_scalar; the same bits for every input. */
CU_HD int32_t cu_q8k_code(float x, float iscale)
{
    float p = cu_fmul(iscale, x);
    if (p != p)
        return 0;
    float t = cu_fadd(p, 12582912.0f);
    int32_t i;
#ifdef __CUDA_ARCH__
    i = __float_as_int(t);
#else
    memcpy(&i, &t, 4);
#endif
    int32_t v = (i & 0x007fffff) - 0x00400000;
    return (int32_t)(int8_t)(uint8_t)((v < 127 ? v : 127) & 0xFF);
}

#endif
