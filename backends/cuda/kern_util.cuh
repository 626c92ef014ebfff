// backends/cuda/kern_util.cuh - device helpers shared by the plugin's kernel files.
// Internal to backends/cuda/; see kern.h for the kernels' contracts.
#ifndef MQ_BACKENDS_CUDA_KERN_UTIL_CUH
#define MQ_BACKENDS_CUDA_KERN_UTIL_CUH

#include <stdint.h>

namespace
{

constexpr unsigned FULL = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(FULL, v, o);
    return v;
}

__device__ __forceinline__ int warp_sum_int(int v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(FULL, v, o);
    return v;
}

// max that keeps a NaN from either side (fmaxf would drop it)
__device__ __forceinline__ float nan_max(float a, float b)
{
    return (a > b || a != a) ? a : b;
}

__device__ __forceinline__ float bf16_bits_to_f32(uint32_t b)
{
    return __uint_as_float(b << 16);
}

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_1d(int64_t n, int threads)
{
    int64_t g = (n + threads - 1) / threads;
    return (unsigned)(g < 65536 * 8 ? (g > 0 ? g : 1) : 65536 * 8);
}

} // namespace

#endif
