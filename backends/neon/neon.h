/* backends/neon/neon.h - the neon backend: aarch64 Advanced SIMD kernels chosen at run
 * time.
 *
 * Paths, best first (MIXQ_NEON_PATH names):
 *   dotprod+fp16  integer formats with SDOT (FEAT_DotProd, HWCAP asimddp) and F16 weights in
 *                 FP16 arithmetic (FEAT_FP16, HWCAP asimdhp + fphp)
 *   dotprod       SDOT; F16 widened to F32
 *   fp16          FP16 arithmetic; integer dot products with vmull/vpadal
 *   fallback      ARMv8.0 Advanced SIMD only (every aarch64 CPU): F16 widened to F32,
 *                 vmull/vpadal integer dot products
 * F32 and BF16 (widened to F32) weights and the F32 ops of the forward pass (GET_ROWS,
 * RMSNORM, ROPE, ATTENTION, SWIGLU, ADD) run the same NEON code on every path. The best
 * path the CPU supports (getauxval(AT_HWCAP)) is used unless MIXQ_NEON_PATH forces one;
 * forcing a path the CPU lacks, or a name that is not a path, makes the backend unusable
 * with that reason.
 *
 *     struct be_backend *be;
 *     if (be_open("neon", &(struct be_config){.n_threads = 4}, &be) < 0) ...
 *     // then as any backend (backends/backend.h)
 *
 * Weights are repacked once at upload into groups of 8 rows (backends/cpu/kern.h layouts,
 * shared with the x86 backend), and the ops are the shared host drivers of
 * backends/cpu/ops.h on a core/ thread pool (--threads; default: all online CPUs).
 * Activations are quantized to Q8_0 with ggml's rule, to the same codes as the scalar
 * path. Every path is tested against the ref backend with an error budget per format
 * (tests/unit/test_neon.c): 1e-5 relative to sum |w x| for F32, BF16, Q8_0, Q4_0 and F16
 * widened; 4e-3 for F16 in FP16 arithmetic (activations rounded to f16 in chunks of 16
 * scaled by a power of two, FP16 sums over each chunk). An F16 matrix with a weight above
 * 1024 in magnitude (or non-finite) runs widened even on the fp16 paths, where FP16
 * partial sums could overflow.
 *
 * Defined behaviour for non-finite activations is that of the cpu backend (cpu.h): NaN
 * or Inf in a matmul's input makes the affected outputs NaN or Inf, never a crash.
 *
 * Emulation: under qemu-user every path runs (with -cpu max) but its timings describe
 * the emulator, not a core. be_neon_emulated() says whether this process is translated,
 * and `mixq backends` prints it in the detail line. It is declared on every architecture
 * (false elsewhere) so that callers need no #if; be_neon_ops exists in aarch64 builds only.
 *
 * Dependency rule: backends/ depends on core/ only.
 */
#ifndef MQ_BACKENDS_NEON_H
#define MQ_BACKENDS_NEON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "backends/backend.h"

extern const struct be_ops be_neon_ops; /* aarch64 builds only */

#if defined(__aarch64__)
/* Whether this process runs under a user-mode emulator (qemu-user, or any translator that
 * runs us inside another executable), with the evidence in `why` (always written, also
 * when false: what was checked). Method, strongest first:
 *   1. the kernel's view of our executable: readlinkat() of "exe" relative to an open
 *      /proc/self directory is answered by the kernel, which names the emulator
 *      (/usr/bin/qemu-aarch64), while the absolute "/proc/self/exe" that qemu-user
 *      intercepts names the guest program; natively both name the same file;
 *   2. /proc/sys/kernel/arch (recent kernels; qemu-user does not intercept it) names
 *      the kernel's architecture: anything but aarch64 means a foreign kernel runs us;
 *   3. /proc/cpuinfo without "CPU implementer" but with x86 fields ("vendor_id",
 *      "flags"): qemu-user 7.x (Debian 12's) passes the host's file through (newer
 *      releases emulate it, so this check only adds evidence);
 *   4. MIDR_EL1 (where HWCAP_CPUID lets us read it) with implementer 0 and part number
 *      'Q': qemu's "max" CPU model.
 * Limits: a full-system guest (qemu-system-aarch64 with TCG) runs on an aarch64 kernel
 * and looks native to 1-3 (4 catches it with -cpu max only); a KVM guest is native
 * hardware and reports false, rightly. An emulator that also virtualises readlinkat on
 * relative paths and the procfs files would defeat 1-3. */
bool be_neon_emulated(char *why, size_t size);
#else
static inline bool be_neon_emulated(char *why, size_t size)
{
    if (size)
        snprintf(why, size, "not an aarch64 build");
    return false;
}
#endif

#endif
