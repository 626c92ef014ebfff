/* profiler/topology.h - the machine, from hwloc: a summary for every report, and thread
 * pinning for every measurement.
 *
 *     struct prof_topology t;
 *     if (prof_topology_load(&t) < 0) return -1;
 *     printf("%d cores, L3 %llu bytes\n", t.cores, (unsigned long long)t.cache_bytes[3]);
 *     prof_topology_pin(&t, tids, n);        // thread i on core i (one PU per core)
 *     prof_topology_release(&t);
 *
 * Ownership: the struct owns its hwloc topology until release.
 *
 * Dependency rule: profiler/ depends on backends/ and core/ only (and hwloc).
 */
#ifndef MQ_PROFILER_TOPOLOGY_H
#define MQ_PROFILER_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROF_MAX_CACHE_LEVEL 4

struct prof_topology {
    int packages, cores, pus, numa_nodes;
    uint64_t memory_bytes;
    uint64_t cache_bytes[PROF_MAX_CACHE_LEVEL + 1]; /* [1..4]: size of one cache of that level (data/unified) */
    int cache_count[PROF_MAX_CACHE_LEVEL + 1];       /* how many of them */
    char cpu_model[128];
    char arch[72];
    void *topo; /* hwloc_topology_t */
};

int prof_topology_load(struct prof_topology *t);
void prof_topology_release(struct prof_topology *t);

/* Last-level cache size in bytes (0 when unknown). */
uint64_t prof_topology_llc(const struct prof_topology *t);

/* Pins thread tids[i] to core i mod cores (first PU of the core). Returns the number of
 * threads pinned; a failure to pin (containers may forbid it) is a warning, not an error,
 * and is reported through *why. */
int prof_topology_pin(const struct prof_topology *t, const int *tids, int n, char *why, size_t why_size);

/* For a child process between fork and exec (async-signal-safe): allows the calling thread
 * every CPU again (the kernel keeps it to its cpuset). A thread pinned by
 * prof_topology_pin passes its one-core mask on to the processes it starts, whose threads
 * would then share that core (llama-bench ran 1.7x slower so, inside a tune). */
void prof_topology_unpin_self(void);

/* "1 package, 2 cores, 2 PUs, L1d 48 KiB x2, L2 1 MiB x2, L3 32 MiB x1, 1 NUMA node, 9.1 GiB" */
void prof_topology_summary(const struct prof_topology *t, char *buf, size_t size);

/* The CPU features that matter for mixq's kernels, from /proc/cpuinfo ("avx2 fma f16c
 * avx512f avx512bw avx512vl avx512_vnni avx512_bf16", "asimd asimddp asimdhp"). */
void prof_cpu_features(char *buf, size_t size);

#endif
