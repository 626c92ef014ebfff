/* bench/limits.h - what this machine can do at best, measured: DRAM read bandwidth and
 * peak arithmetic throughput of one core's vector units. The kernels' figures are
 * quoted as fractions of these.
 *
 * Each peak loop keeps 12 independent accumulators in registers (enough to cover the
 * instruction latency) and counts the arithmetic it does: an FMA is 2 flops per lane,
 * an int8 dot-product instruction is 2 ops per byte pair.
 */
#ifndef MQ_BENCH_LIMITS_H
#define MQ_BENCH_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* Reads n bytes (multiple of 256) and returns a checksum so the reads cannot be elided. */
double bench_read_bytes(const void *buf, size_t n);

/* Peak loops: run `iters` iterations; return the operations done. `isa` names the
 * instruction set used ("avx512", "avx2", "avx512vnni", "avx512bf16"); NULL where the CPU
 * has none of them for that kind of arithmetic. */
double bench_fma_f32(int64_t iters, const char **isa);
double bench_dot_i8(int64_t iters, const char **isa);
double bench_dot_bf16(int64_t iters, const char **isa);

#endif
