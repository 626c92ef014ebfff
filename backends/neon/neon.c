/* backends/neon/neon.c - the neon backend: path selection from HWCAP, emulation detection;
 * packing at upload and the threaded ops are the shared host drivers (backends/cpu/ops.c). */
#include "backends/neon/neon.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "backends/cpu/ops.h"
#include "backends/neon/kern.h"
#include "core/status.h"

/* AT_HWCAP bits (Linux arch/arm64/include/uapi/asm/hwcap.h), for C libraries that lack them */
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_FPHP
#define HWCAP_FPHP (1UL << 9)
#endif
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1UL << 10)
#endif
#ifndef HWCAP_CPUID
#define HWCAP_CPUID (1UL << 11)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif

/* The HWCAP bits the paths use, with the names /proc/cpuinfo's Features line gives them. */
static const struct {
    unsigned long bit;
    const char *name;
} hwcap_names[] = {
    {HWCAP_ASIMD, "asimd"},
    {HWCAP_ASIMDDP, "asimddp"},
    {HWCAP_ASIMDHP, "asimdhp"},
    {HWCAP_FPHP, "fphp"},
};

struct neon_path {
    const struct cpu_kern *kern; /* kern->isa is the MIXQ_NEON_PATH name */
    unsigned long hwcap;         /* AT_HWCAP bits the path needs */
};

/* Best first. */
static const struct neon_path paths[] = {
    {&neon_kern_dotprod_fp16, HWCAP_ASIMD | HWCAP_ASIMDDP | HWCAP_ASIMDHP | HWCAP_FPHP},
    {&neon_kern_dotprod, HWCAP_ASIMD | HWCAP_ASIMDDP},
    {&neon_kern_fp16, HWCAP_ASIMD | HWCAP_ASIMDHP | HWCAP_FPHP},
    {&neon_kern_fallback, HWCAP_ASIMD},
};

#define N_PATHS ((int)(sizeof(paths) / sizeof(paths[0])))

/* Writes the names of the bits in `bits` ("asimddp asimdhp"). */
static void hwcap_list(unsigned long bits, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(hwcap_names) / sizeof(hwcap_names[0]) && used < size; i++) {
        if (!(bits & hwcap_names[i].bit))
            continue;
        int k = snprintf(buf + used, size - used, "%s%s", used ? " " : "", hwcap_names[i].name);
        used += k > 0 ? (size_t)k : 0;
    }
}

/* Picks the path: MIXQ_NEON_PATH if set (it must exist and be supported), else the best
 * one whose HWCAP bits are all present. */
static int choose_path(const struct cpu_kern **out, char *why, size_t size)
{
    unsigned long hw = getauxval(AT_HWCAP);
    char names[64];
    const char *want = getenv("MIXQ_NEON_PATH");
    if (want && *want) {
        for (int i = 0; i < N_PATHS; i++) {
            if (strcmp(paths[i].kern->isa, want) != 0)
                continue;
            if ((hw & paths[i].hwcap) != paths[i].hwcap) {
                hwcap_list(paths[i].hwcap & ~hw, names, sizeof(names));
                snprintf(why, size, "MIXQ_NEON_PATH=%s, but this CPU lacks %s (AT_HWCAP)", want,
                         names);
                return MQ_EUNSUPPORTED;
            }
            *out = paths[i].kern;
            snprintf(why, size, "forced by MIXQ_NEON_PATH=%s", want);
            return MQ_OK;
        }
        size_t used =
            (size_t)snprintf(why, size, "MIXQ_NEON_PATH=%s is not a path of this build (", want);
        for (int i = 0; i < N_PATHS && used < size; i++)
            used += (size_t)snprintf(why + used, size - used, "%s%s", i ? ", " : "",
                                     paths[i].kern->isa);
        if (used < size)
            snprintf(why + used, size - used, ")");
        return MQ_EINVAL;
    }
    for (int i = 0; i < N_PATHS; i++) {
        if ((hw & paths[i].hwcap) != paths[i].hwcap)
            continue;
        *out = paths[i].kern;
        hwcap_list(hw & paths[0].hwcap, names, sizeof(names));
        snprintf(why, size, "the best path this CPU supports (AT_HWCAP: %s)", names);
        return MQ_OK;
    }
    snprintf(why, size, "this CPU has no Advanced SIMD (AT_HWCAP lacks asimd)");
    return MQ_EUNSUPPORTED;
}

/* ---- emulation ---- */

/* First line of a small file, without its newline; false when unreadable. */
static bool read_line(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = '\0';
    return ok && buf[0];
}

/* /proc/cpuinfo seen from here: an arm64 kernel writes "CPU implementer" lines; qemu-user
 * 7.x passes the x86 host's file through. Returns the x86 model name when foreign. */
static bool cpuinfo_foreign(char *model, size_t size)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return false;
    char line[512];
    bool arm = false, x86 = false;
    snprintf(model, size, "unknown CPU");
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "CPU implementer", 15))
            arm = true;
        if (!strncmp(line, "vendor_id", 9) || !strncmp(line, "flags\t", 6))
            x86 = true;
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            const char *v = strchr(line, ':') + 1;
            v += strspn(v, " \t");
            snprintf(model, size, "%.*s", (int)strcspn(v, "\n"), v);
        }
    }
    fclose(f);
    return x86 && !arm;
}

bool be_neon_emulated(char *why, size_t size)
{
    char guest[PATH_MAX], host[PATH_MAX], text[160];
    /* 1: the kernel's view of our executable against the one an emulator shows us */
    ssize_t ng = readlink("/proc/self/exe", guest, sizeof(guest) - 1);
    int dfd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ssize_t nh = dfd >= 0 ? readlinkat(dfd, "exe", host, sizeof(host) - 1) : -1;
    if (dfd >= 0)
        close(dfd);
    if (ng > 0 && nh > 0) {
        guest[ng] = host[nh] = '\0';
        if (strcmp(guest, host) != 0) {
            const char *base = strrchr(host, '/') ? strrchr(host, '/') + 1 : host;
            snprintf(why, size, "%s: the kernel runs %s, which runs this program",
                     strstr(base, "qemu") ? "qemu-user" : "user-mode emulation", host);
            return true;
        }
    }
    /* 2: the kernel's own architecture */
    if (read_line("/proc/sys/kernel/arch", text, sizeof(text)) && strcmp(text, "aarch64") != 0) {
        snprintf(why, size, "user-mode emulation: the kernel is %s (/proc/sys/kernel/arch)", text);
        return true;
    }
    /* 3: the host's /proc/cpuinfo passed through */
    if (cpuinfo_foreign(text, sizeof(text))) {
        snprintf(why, size, "user-mode emulation: /proc/cpuinfo describes an x86 CPU (%s)", text);
        return true;
    }
    /* 4: qemu's "max" CPU model: implementer 0 ("software use"), part number 'Q' */
    if (getauxval(AT_HWCAP) & HWCAP_CPUID) {
        uint64_t midr;
        __asm__ volatile("mrs %0, MIDR_EL1" : "=r"(midr));
        if (((midr >> 24) & 0xFF) == 0 && ((midr >> 4) & 0xFFF) == 0x051) {
            snprintf(why, size, "qemu: MIDR_EL1 0x%llx is qemu's 'max' CPU model",
                     (unsigned long long)midr);
            return true;
        }
    }
    snprintf(why, size, "native: the kernel runs this executable itself on an aarch64 CPU");
    return false;
}

/* ---- the backend ---- */

static void neon_probe(struct be_info *info)
{
    memset(info, 0, sizeof(*info));
    const struct cpu_kern *k;
    char why[100], emu[96]; /* both fit the 256 bytes of detail */
    int rc = choose_path(&k, why, sizeof(why));
    info->host_memory = true;
    if (rc < 0) {
        snprintf(info->reason, sizeof(info->reason), "%s", why);
        return;
    }
    info->usable = true;
    bool em = be_neon_emulated(emu, sizeof(emu));
    snprintf(info->detail, sizeof(info->detail), "path %s: %s%s%s", k->isa, why,
             em ? "; EMULATED (timings are not the hardware's): " : "", em ? emu : "");
}

static int neon_open(const struct be_config *cfg, void **out)
{
    const struct cpu_kern *k;
    char why[120];
    int rc = choose_path(&k, why, sizeof(why));
    if (rc < 0)
        return mq_error(rc, "neon backend: %s", why);
    return cpu_ops_open("neon", k, cfg, out);
}

const struct be_ops be_neon_ops = {
    .abi = BE_ABI_VERSION,
    .name = "neon",
    .summary = "aarch64 NEON kernels (SDOT, FP16 arithmetic), chosen at run time",
    .probe = neon_probe,
    .open = neon_open,
    .close = cpu_ops_close,
    .supports = cpu_ops_supports,
    .upload = cpu_ops_upload,
    .release = cpu_ops_release,
    .run = cpu_ops_run,
    .threads = cpu_ops_threads,
    .thread_ids = cpu_ops_thread_ids,
};
