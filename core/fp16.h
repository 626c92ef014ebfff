/* core/fp16.h - IEEE half and bfloat16 conversions, bit-exact, in portable C.
 *
 *     uint16_t h = mq_f32_to_f16(x);   // round to nearest even, like F16C's vcvtps2ph
 *     float y = mq_f16_to_f32(h);      // exact
 *
 * These are the reference conversions: SIMD paths (F16C, AVX-512 BF16, NEON) must
 * produce the same bits, and tests compare them. Half values travel as uint16_t so
 * that no compiler's _Float16 support is assumed.
 *
 * Dependency rule: core/ depends on nothing but libc.
 */
#ifndef MQ_CORE_FP16_H
#define MQ_CORE_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t mq_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float mq_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* Half to float, exact for every input including subnormals, Inf and NaN. */
static inline float mq_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) /* Inf or NaN: keep the payload */
        return mq_bits_f32(sign | 0x7F800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return mq_bits_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return mq_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

/* Float to half, rounding to nearest even; overflow gives Inf; NaN stays NaN (quiet). */
static inline uint16_t mq_f32_to_f16(float f)
{
    uint32_t x = mq_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) /* NaN */
        return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
    if (ax >= 0x477FF000u) /* rounds to >= 65520: Inf (also Inf itself) */
        return (uint16_t)(sign | 0x7C00u);
    if (ax < 0x38800000u) { /* below the smallest normal half, 2^-14 */
        if (ax < 0x33000000u) /* below half the smallest subnormal: +-0 */
            return sign;
        uint32_t e = ax >> 23;
        uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14..24: m * 2^(e-150) / 2^-24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (q & 1u)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = ((ax >> 13) - (112u << 10)); /* rebias exponent, keep 10 mantissa bits */
    uint32_t rem = ax & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* may carry into the exponent, which is the right result */
    return (uint16_t)(sign | h);
}

/* bfloat16 to float: exact. */
static inline float mq_bf16_to_f32(uint16_t b) { return mq_bits_f32((uint32_t)b << 16); }

/* Float to bfloat16, rounding to nearest even; NaN stays a quiet NaN (as ggml does). */
static inline uint16_t mq_f32_to_bf16(float f)
{
    uint32_t x = mq_f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((x >> 16) | 64u);
    return (uint16_t)((x + (0x7FFFu + ((x >> 16) & 1u))) >> 16);
}

#endif
