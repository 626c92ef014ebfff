/* backends/cpu/cpu.h - the cpu backend: fast x86 kernels chosen at run time.
 *
 * Paths, best first: avx512amx (avx512vnni, with the AMX tile unit for the GEMMs of q8_0,
 * q4_0, q2_k and q3_k, 16 columns or more; its results are avx512vnni's bit for bit), avx512vnni
 * (AVX-512 F/BW/VL with VNNI for the integer dot products and, where present, AVX512-BF16
 * for bf16), avx512 (F/BW/VL), avx2 (AVX2 + FMA + F16C), scalar (portable C; the only
 * path on other architectures). The best path the CPU and OS support is used unless
 * MIXQ_CPU_ISA=scalar|avx2|avx512|avx512vnni|avx512amx forces one; forcing a path the CPU
 * lacks makes the backend unusable with that reason.
 *
 * Weights are repacked once at upload into the path's interleaved layout (kern.h).
 * Rows of every matrix op are split over a core/ thread pool (--threads; default: all
 * online CPUs). Every path is tested against the ref backend with an error budget per
 * format (tests/unit/test_cpu.c).
 *
 * Defined behaviour for non-finite activations: NaN or Inf in the input of a matmul
 * makes the affected outputs NaN or Inf (float formats propagate them as IEEE arithmetic
 * does; integer formats quantize a block containing NaN/Inf to a NaN/Inf scale, so that
 * block's contribution is NaN). They never crash or hang.
 *
 * Dependency rule: backends/ depends on core/ only.
 */
#ifndef MQ_BACKENDS_CPU_H
#define MQ_BACKENDS_CPU_H

#include "backends/backend.h"

extern const struct be_ops be_cpu_ops;

#endif
