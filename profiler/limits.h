/* profiler/limits.h - what this machine can do at best, measured: DRAM read bandwidth and
 * peak arithmetic throughput of one core's vector units. The kernels' figures are
 * quoted as fractions of these, and profiles draw their rooflines against them.
 *
 * Dependency rule: profiler/ depends on model/, llm/, backends/ and core/ only.
 *
 * Each peak loop keeps 12 independent accumulators in registers (enough to cover the
 * instruction latency) and counts the arithmetic it does: an FMA is 2 flops per lane,
 * an int8 dot-product instruction is 2 ops per byte pair.
 */
#ifndef MQ_PROFILER_LIMITS_H
#define MQ_PROFILER_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* Reads n bytes (multiple of 256) and returns a checksum so the reads cannot be elided. */
double prof_read_bytes(const void *buf, size_t n);

/* Peak loops: run `iters` iterations; return the operations done. `isa` names the
 * instruction set used ("avx512", "avx2", "avx512vnni", "avx512bf16"); NULL where the CPU
 * has none of them for that kind of arithmetic. */
double prof_peak_fma_f32(int64_t iters, const char **isa);
double prof_peak_dot_i8(int64_t iters, const char **isa);
double prof_peak_dot_bf16(int64_t iters, const char **isa);

/* The machine's limits with 1 and n threads, measured in one go (about 5 s): DRAM read
 * bandwidth over a 512 MiB buffer and the three peaks. */
struct prof_limits {
    int threads[2];                  /* 1 and n */
    double read_gbs[2];
    double fma_gflops[2], i8_gops[2], bf16_gflops[2];
    const char *fma_isa, *i8_isa, *bf16_isa; /* static strings; NULL: none */
};

int prof_limits_measure(int threads, struct prof_limits *out);

#endif
