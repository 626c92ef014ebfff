/* backends/neon/kern.h - the neon backend's kernel tables, one per path.
 *
 * Internal to backends/neon/ (and the tests). Each table is a struct cpu_kern (see
 * backends/cpu/kern.h for the layouts and the contract of every slot), built from
 * kern_neon.c compiled once per path with that path's -march flags (Makefile):
 *
 *   neon_kern_fallback      ARMv8.0 Advanced SIMD, which every aarch64 CPU has: F16
 *                           widened to F32, integer dot products with vmull/vpadal
 *   neon_kern_fp16          + FEAT_FP16 (asimdhp, fphp): F16 weights in FP16 arithmetic
 *   neon_kern_dotprod       + FEAT_DotProd (asimddp): every integer format with SDOT
 *   neon_kern_dotprod_fp16  both
 *
 * All use R = 8 rows per group, so one weight matrix packs the same way for every path
 * (two 128-bit vectors of f32 or one of f16 hold a position of the 8 rows; a Q8_0 quad of
 * 4 rows is one SDOT operand).
 *
 * Dependency rule: backends/ depends on core/ only.
 */
#ifndef MQ_BACKENDS_NEON_KERN_H
#define MQ_BACKENDS_NEON_KERN_H

#include "backends/cpu/kern.h"

#if defined(__aarch64__)
extern const struct cpu_kern neon_kern_fallback;
extern const struct cpu_kern neon_kern_fp16;
extern const struct cpu_kern neon_kern_dotprod;
extern const struct cpu_kern neon_kern_dotprod_fp16;
#endif

#endif
