/* profiler/topology.c - hwloc topology summary and pinning. */
#include "profiler/topology.h"

#include <hwloc.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "core/status.h"

int prof_topology_load(struct prof_topology *t)
{
    memset(t, 0, sizeof(*t));
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return mq_error(MQ_ENOMEM, "hwloc: cannot initialize a topology");
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return mq_error(MQ_EIO, "hwloc: cannot load the topology");
    }
    t->topo = topo;
    t->packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    t->cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    t->pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    t->numa_nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    if (t->cores <= 0)
        t->cores = t->pus > 0 ? t->pus : 1;
    hwloc_obj_t root = hwloc_get_root_obj(topo);
    t->memory_bytes = root->total_memory;
    static const hwloc_obj_type_t levels[PROF_MAX_CACHE_LEVEL + 1] = {
        HWLOC_OBJ_MACHINE, HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L4CACHE};
    for (int l = 1; l <= PROF_MAX_CACHE_LEVEL; l++) {
        int n = hwloc_get_nbobjs_by_type(topo, levels[l]);
        t->cache_count[l] = n > 0 ? n : 0;
        hwloc_obj_t o = n > 0 ? hwloc_get_obj_by_type(topo, levels[l], 0) : NULL;
        t->cache_bytes[l] = o && o->attr ? o->attr->cache.size : 0;
    }
    const char *model = hwloc_obj_get_info_by_name(root, "CPUModel");
    if (!model && t->packages > 0) {
        hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0);
        model = hwloc_obj_get_info_by_name(pkg, "CPUModel");
    }
    snprintf(t->cpu_model, sizeof(t->cpu_model), "%s", model ? model : "unknown");
    struct utsname u;
    snprintf(t->arch, sizeof(t->arch), "%s", uname(&u) == 0 ? u.machine : "unknown");
    return MQ_OK;
}

void prof_topology_release(struct prof_topology *t)
{
    if (t->topo)
        hwloc_topology_destroy((hwloc_topology_t)t->topo);
    t->topo = NULL;
}

uint64_t prof_topology_llc(const struct prof_topology *t)
{
    for (int l = PROF_MAX_CACHE_LEVEL; l >= 1; l--)
        if (t->cache_bytes[l])
            return t->cache_bytes[l];
    return 0;
}

int prof_topology_pin(const struct prof_topology *t, const int *tids, int n, char *why, size_t why_size)
{
    hwloc_topology_t topo = t->topo;
    int pinned = 0;
    if (why_size)
        why[0] = '\0';
    for (int i = 0; i < n; i++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)(i % t->cores));
        if (!core)
            core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, (unsigned)(i % (t->pus > 0 ? t->pus : 1)));
        if (!core)
            break;
        hwloc_bitmap_t set = hwloc_bitmap_dup(core->cpuset);
        hwloc_bitmap_singlify(set); /* one PU of the core */
        if (hwloc_set_proc_cpubind(topo, (hwloc_pid_t)tids[i], set, HWLOC_CPUBIND_THREAD) == 0)
            pinned++;
        else if (why_size && !why[0])
            snprintf(why, why_size, "thread %d could not be bound to core %d", tids[i], i % t->cores);
        hwloc_bitmap_free(set);
    }
    return pinned;
}

void prof_topology_unpin_self(void)
{
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int i = 0; i < CPU_SETSIZE; i++)
        CPU_SET(i, &all);
    sched_setaffinity(0, sizeof(all), &all);
}

static const char *size_text(uint64_t b, char *buf, size_t size)
{
    if (b >= (1u << 30))
        snprintf(buf, size, "%.1f GiB", (double)b / (1u << 30));
    else if (b >= (1u << 20))
        snprintf(buf, size, "%llu MiB", (unsigned long long)(b >> 20));
    else
        snprintf(buf, size, "%llu KiB", (unsigned long long)(b >> 10));
    return buf;
}

void prof_topology_summary(const struct prof_topology *t, char *buf, size_t size)
{
    char a[32];
    size_t used = (size_t)snprintf(buf, size, "%d package%s, %d cores, %d PUs", t->packages, t->packages == 1 ? "" : "s",
                                   t->cores, t->pus);
    for (int l = 1; l <= PROF_MAX_CACHE_LEVEL && used < size; l++)
        if (t->cache_bytes[l])
            used += (size_t)snprintf(buf + used, size - used, ", L%d%s %s x%d", l, l == 1 ? "d" : "",
                                     size_text(t->cache_bytes[l], a, sizeof(a)), t->cache_count[l]);
    if (used < size)
        snprintf(buf + used, size - used, ", %d NUMA node%s, %s", t->numa_nodes, t->numa_nodes == 1 ? "" : "s",
                 size_text(t->memory_bytes, a, sizeof(a)));
}

#if defined(__aarch64__)
#include <sys/auxv.h>
/* aarch64: what this process may use, from the auxiliary vector (under qemu-user these are
 * the emulated CPU's, where /proc/cpuinfo would be the host's) */
void prof_cpu_features(char *buf, size_t size)
{
    static const struct {
        int hwcap2; /* 0: AT_HWCAP, 1: AT_HWCAP2 */
        unsigned long bit;
        const char *name;
    } caps[] = {
        {0, 1ul << 1, "asimd"}, {0, 1ul << 9, "fphp"},  {0, 1ul << 10, "asimdhp"}, {0, 1ul << 20, "asimddp"},
        {0, 1ul << 22, "sve"},  {1, 1ul << 1, "sve2"},  {1, 1ul << 13, "i8mm"},    {1, 1ul << 14, "bf16"},
    };
    unsigned long h1 = getauxval(AT_HWCAP), h2 = getauxval(AT_HWCAP2);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        if (((caps[i].hwcap2 ? h2 : h1) & caps[i].bit) && used < size)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? " " : "", caps[i].name);
}
#else
void prof_cpu_features(char *buf, size_t size)
{
    static const char *const wanted[] = {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
                                         "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8",
                                         "asimd", "fphp", "asimdhp", "asimddp", "i8mm", "sve", "sve2", "bf16"};
    buf[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[8192];
    size_t used = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5) != 0 && strncmp(line, "Features", 8) != 0)
            continue;
        char *colon = strchr(line, ':');
        if (!colon)
            break;
        for (size_t w = 0; w < sizeof(wanted) / sizeof(wanted[0]); w++) {
            size_t n = strlen(wanted[w]);
            for (char *p = strstr(colon, wanted[w]); p; p = strstr(p + 1, wanted[w])) {
                if ((p[-1] == ' ' || p[-1] == ':') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0')) {
                    if (used < size)
                        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? " " : "", wanted[w]);
                    break;
                }
            }
        }
        break;
    }
    fclose(f);
}
#endif
