/* backends/cpu/cpu.c - the cpu backend: x86 path selection; packing at upload and the
 * threaded ops are the shared drivers of ops.c. */
#include "backends/cpu/cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/kern.h"
#include "backends/cpu/ops.h"
#include "core/status.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

struct cpu_isa_choice {
    const struct cpu_kern *kern;
    const char *why;
};

#if defined(__x86_64__)
/* AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24 and 25), and the kernel's permission to
 * use the tile data (Linux asks every process to request it, ARCH_REQ_XCOMP_PERM; a kernel
 * or hypervisor that does not offer it refuses, and the path is then unavailable) */
static bool amx_usable(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
        return false;
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
}
#endif

/* Paths this build has, best first, with what each needs from the CPU. */
static bool isa_available(const char *isa)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!strcmp(isa, "avx512amx"))
        return isa_available("avx512vnni") && amx_usable();
    if (!strcmp(isa, "avx512vnni"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (!strcmp(isa, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    if (!strcmp(isa, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
#endif
    return !strcmp(isa, "scalar");
}

static const struct cpu_kern *const paths[] = {
#if defined(__x86_64__)
    &cpu_kern_avx512amx,
    &cpu_kern_avx512vnni,
    &cpu_kern_avx512,
    &cpu_kern_avx2,
#endif
    &cpu_kern_scalar,
};

#define N_PATHS ((int)(sizeof(paths) / sizeof(paths[0])))

/* Picks the path: MIXQ_CPU_ISA if set (it must exist and be supported), else the best. */
static int choose_path(const struct cpu_kern **out, char *why, size_t size)
{
    const char *want = getenv("MIXQ_CPU_ISA");
    if (want && *want) {
        for (int i = 0; i < N_PATHS; i++) {
            if (strcmp(paths[i]->isa, want) != 0)
                continue;
            if (!isa_available(want)) {
                snprintf(why, size, "MIXQ_CPU_ISA=%s, but this CPU (or OS) lacks the instructions it needs", want);
                return MQ_EUNSUPPORTED;
            }
            *out = paths[i];
            snprintf(why, size, "forced by MIXQ_CPU_ISA=%s", want);
            return MQ_OK;
        }
        size_t used = (size_t)snprintf(why, size, "MIXQ_CPU_ISA=%s is not a path of this build (", want);
        for (int i = 0; i < N_PATHS && used < size; i++)
            used += (size_t)snprintf(why + used, size - used, "%s%s", i ? ", " : "", paths[i]->isa);
        if (used < size)
            snprintf(why + used, size - used, ")");
        return MQ_EINVAL;
    }
    for (int i = 0; i < N_PATHS; i++) {
        if (isa_available(paths[i]->isa)) {
            *out = paths[i];
            snprintf(why, size, "the best path this CPU supports%s",
                     i + 1 < N_PATHS ? "" : " (no SIMD path applies)");
            return MQ_OK;
        }
    }
    MQ_ASSERT(!"the scalar path is always available");
    return MQ_EINTERNAL;
}

static void cpu_probe(struct be_info *info)
{
    memset(info, 0, sizeof(*info));
    const struct cpu_kern *k;
    char why[200];
    int rc = choose_path(&k, why, sizeof(why));
    info->host_memory = true;
    if (rc < 0) {
        snprintf(info->reason, sizeof(info->reason), "%s", why);
        return;
    }
    info->usable = true;
    snprintf(info->detail, sizeof(info->detail), "path %s: %s%s", k->isa, why,
             k->bf16_dot ? "; bf16 via AVX512-BF16 dot products" : "");
}

static int cpu_open(const struct be_config *cfg, void **out)
{
    const struct cpu_kern *k;
    char why[200];
    int rc = choose_path(&k, why, sizeof(why));
    if (rc < 0)
        return mq_error(rc, "cpu backend: %s", why);
    return cpu_ops_open("cpu", k, cfg, out);
}

const struct be_ops be_cpu_ops = {
    .abi = BE_ABI_VERSION,
    .name = "cpu",
#if defined(__x86_64__)
    .summary = "x86 SIMD kernels (AVX2, AVX-512, VNNI, BF16), chosen at run time",
#else
    .summary = "portable scalar kernels (its SIMD paths are x86's; see the neon backend)",
#endif
    .probe = cpu_probe,
    .open = cpu_open,
    .close = cpu_ops_close,
    .supports = cpu_ops_supports,
    .upload = cpu_ops_upload,
    .release = cpu_ops_release,
    .run = cpu_ops_run,
    .threads = cpu_ops_threads,
    .thread_ids = cpu_ops_thread_ids,
};
