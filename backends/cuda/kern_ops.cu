// backends/cuda/kern_ops.cu - the glue ops of the llama forward pass on the device:
// GET_ROWS (every format, exact: block formats through layout.h's slice decoding), RMSNORM,
// ROPE (norm and neox), causal GQA ATTENTION over the cache (online softmax; sliding window,
// logit soft-capping), SWIGLU, GEGLU, ADD (bias broadcast), SCALE, SOFTCAP.
// Contracts: backend.h and kern.h; scalar twins: backends/ref/ref.c.
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>

#include "backends/cuda/kern.h"
#include "backends/cuda/kern_util.cuh"

namespace
{

// ---- GET_ROWS: exactly as core/dtype.c's to_f32 computes the weights ----
//
// Float formats: one thread per element. Block formats: one thread per 32-weight slice
// (layout.h's cu_slice_decode and cu_slice_value, which the host tests compare with to_f32).

template <int FMT> __device__ __forceinline__ float widen(const void *w, size_t i)
{
    if constexpr (FMT == CU_W_F32)
        return static_cast<const float *>(w)[i];
    else if constexpr (FMT == CU_W_F16)
        return __half2float(static_cast<const __half *>(w)[i]);
    else
        return bf16_bits_to_f32(static_cast<const uint16_t *>(w)[i]);
}

// An id outside the table: a zero row, and the first thread of the row reports it.
__device__ __forceinline__ bool bad_id(int32_t id, int64_t V, int32_t *err)
{
    bool bad = id < 0 || id >= V;
    if (bad && blockIdx.x == 0 && threadIdx.x == 0) {
        // plain stores to mapped host memory: any one bad id is worth reporting
        volatile int32_t *e = err;
        e[1] = id;
        e[0] = 1;
    }
    return bad;
}

template <int FMT>
__global__ void k_get_rows(const void *__restrict__ w, int64_t K, int64_t V,
                           const int32_t *__restrict__ ids, int64_t M, float *__restrict__ y,
                           int32_t *err)
{
    for (int64_t m = blockIdx.y; m < M; m += gridDim.y) {
        int32_t id = ids[m];
        float *ym = y + m * K;
        bool bad = bad_id(id, V, err);
        for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < K;
             k += (int64_t)gridDim.x * blockDim.x)
            ym[k] = bad ? 0.0f : widen<FMT>(w, (size_t)id * (size_t)K + (size_t)k);
    }
}

template <int FMT>
__global__ void k_get_rows_slices(cu_wplanes P, int64_t K, int64_t V,
                                  const int32_t *__restrict__ ids, int64_t M, float *__restrict__ y,
                                  int32_t *err)
{
    int64_t ns = K / 32;
    for (int64_t m = blockIdx.y; m < M; m += gridDim.y) {
        int32_t id = ids[m];
        bool bad = bad_id(id, V, err);
        for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < ns;
             c += (int64_t)gridDim.x * blockDim.x) {
            float *yc = y + m * K + 32 * c;
            cu_slice sl = {};
            if (!bad)
                cu_slice_decode((cu_wtype)FMT, &P, (int64_t)id * ns + c, &sl);
#pragma unroll
            for (int i = 0; i < 32; i++)
                yc[i] = bad ? 0.0f : cu_slice_value(&sl, i, cu_fmt<FMT>::off, cu_fmt<FMT>::has_min);
        }
    }
}

// ---- RMSNORM: one block per row; sum of squares in double, as ref ----

__global__ void k_rmsnorm(const float *x, const float *__restrict__ g, float *y, int64_t K,
                          float eps)
{
    __shared__ double part[32];
    const float *xr = x + (size_t)blockIdx.x * K;
    float *yr = y + (size_t)blockIdx.x * K;
    double ss = 0.0;
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x)
        ss += (double)xr[k] * (double)xr[k];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        ss += __shfl_xor_sync(FULL, ss, o);
    if ((threadIdx.x & 31) == 0)
        part[threadIdx.x / 32] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        ss = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
            ss += __shfl_xor_sync(FULL, ss, o);
        if (threadIdx.x == 0)
            part[0] = ss;
    }
    __syncthreads();
    float scale = (float)(1.0 / sqrt(part[0] / (double)K + (double)eps));
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x)
        yr[k] = xr[k] * scale * g[k];
}

// ---- ROPE: one block per token; the angles in double (as ref), once per token ----

__global__ void k_rope(const float *x, const float *ff, float *y, int D, int H, int n_rot, bool neox,
                       int64_t pos0, float theta, float freq_scale, float ms)
{
    extern __shared__ float cs[]; // [n_rot/2] cos, then [n_rot/2] sin
    int64_t m = blockIdx.x;
    int half = n_rot / 2;
    double pos = (double)(pos0 + m) * (double)freq_scale;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        double ang = pos * pow((double)theta, -2.0 * i / n_rot) / (ff ? (double)ff[i] : 1.0);
        cs[i] = (float)cos(ang) * ms;
        cs[half + i] = (float)sin(ang) * ms;
    }
    __syncthreads();
    const float *xm = x + (size_t)m * H * D;
    float *ym = y + (size_t)m * H * D;
    for (int t = threadIdx.x; t < H * half; t += blockDim.x) {
        int h = t / half, i = t % half;
        int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        float c = cs[i], s = cs[half + i];
        float x0 = xm[h * D + i0], x1 = xm[h * D + i1];
        ym[h * D + i0] = x0 * c - x1 * s;
        ym[h * D + i1] = x0 * s + x1 * c;
    }
    if (x != y)
        for (int t = threadIdx.x; t < H * (D - n_rot); t += blockDim.x) {
            int h = t / (D - n_rot), d = n_rot + t % (D - n_rot);
            ym[h * D + d] = xm[h * D + d];
        }
}

// ---- ATTENTION: one block per (head, token); each warp runs an online softmax over a
// strided subset of positions with the head in registers (DPL dims per lane), then the
// warps' partial results are merged. ----

constexpr int ATT_WARPS = 8;

template <int DPL>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    k_attention(const float *__restrict__ q, const float *__restrict__ kc,
                const float *__restrict__ vc, float *__restrict__ out, int D, int H, int Hkv,
                int64_t M, int64_t pos0, float scale, float softcap, int64_t window)
{
    __shared__ float smx[ATT_WARPS], sl[ATT_WARPS];
    __shared__ float sacc[ATT_WARPS][DPL * 32];
    int h = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int64_t m = blockIdx.y + (int64_t)blockIdx.z * 65535, last = pos0 + m; // attends first..last
    if (m >= M)
        return; // the whole block: the last z slice is partial
    int64_t first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;
    float inv_cap = softcap > 0.0f ? 1.0f / softcap : 0.0f;
    int g = h / (H / Hkv);
    size_t rowkv = (size_t)D * Hkv;
    const float *qh = q + ((size_t)m * H + h) * D;
    float qr[DPL], acc[DPL];
#pragma unroll
    for (int j = 0; j < DPL; j++) {
        int d = lane + 32 * j;
        qr[j] = d < D ? qh[d] : 0.0f;
        acc[j] = 0.0f;
    }
    float mx = -INFINITY, l = 0.0f;
    for (int64_t p = first + warp; p <= last; p += ATT_WARPS) {
        const float *kp = kc + (size_t)p * rowkv + (size_t)g * D;
        const float *vp = vc + (size_t)p * rowkv + (size_t)g * D;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            int d = lane + 32 * j;
            if (d < D)
                s += qr[j] * kp[d];
        }
        s = warp_sum(s) * scale; // the same value in every lane: the branch below is uniform
        if (softcap > 0.0f)      // ggml: scale(1/cap), tanh, scale(cap)
            s = tanhf(s * inv_cap) * softcap;
        if (s > mx) {
            float c = expf(mx - s);
            l *= c;
#pragma unroll
            for (int j = 0; j < DPL; j++)
                acc[j] *= c;
            mx = s;
        }
        float e = expf(s - mx);
        l += e;
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            int d = lane + 32 * j;
            if (d < D)
                acc[j] += e * vp[d];
        }
    }
    if (lane == 0) {
        smx[warp] = mx;
        sl[warp] = l;
    }
#pragma unroll
    for (int j = 0; j < DPL; j++)
        sacc[warp][lane + 32 * j] = acc[j];
    __syncthreads();
    float gmx = -INFINITY; // position `last` always exists, so some warp's max is finite
    for (int w = 0; w < ATT_WARPS; w++)
        gmx = smx[w] > gmx ? smx[w] : gmx;
    float L = 0.0f;
    for (int w = 0; w < ATT_WARPS; w++)
        L += smx[w] == -INFINITY ? 0.0f : sl[w] * expf(smx[w] - gmx);
    float *o = out + (size_t)m * D * H + (size_t)h * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float v = 0.0f;
        for (int w = 0; w < ATT_WARPS; w++)
            v += smx[w] == -INFINITY ? 0.0f : sacc[w][d] * expf(smx[w] - gmx);
        o[d] = v / L;
    }
}

// ---- elementwise ----

__global__ void k_swiglu(const float *g, const float *u, float *y, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float gv = g[i];
        y[i] = gv / (1.0f + expf(-gv)) * u[i];
    }
}

// ggml's CPU GELU (GGML_GELU_FP16): f16-rounded input, result rounded to f16, as its
// table holds it (backend.h; scalar twin ref.c ref_geglu_one). ggml's CUDA backend skips
// the f16 roundings; mixq keeps one semantics on every backend.
__global__ void k_geglu(const float *g, const float *u, float *y, int64_t n)
{
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f, coef_a = 0.044715f;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float x = g[i], r;
        if (x <= -10.0f) {
            r = 0.0f;
        } else if (x >= 10.0f) {
            r = x * u[i];
        } else {
            float xh = __half2float(__float2half_rn(x));
            // the host's order, without FMA contraction (the host builds -ffp-contract=off)
            float inner = __fadd_rn(1.0f, __fmul_rn(__fmul_rn(coef_a, xh), xh));
            float t = tanhf(__fmul_rn(__fmul_rn(sqrt_2_over_pi, xh), inner));
            float v = __fmul_rn(__fmul_rn(0.5f, xh), __fadd_rn(1.0f, t));
            r = __half2float(__float2half_rn(v)) * u[i];
        }
        y[i] = r;
    }
}

__global__ void k_add(const float *a, const float *b, float *y, int64_t n, int64_t nb)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = a[i] + b[nb == n ? i : i % nb];
}

__global__ void k_scale(const float *x, float s, float *y, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = x[i] * s;
}

__global__ void k_softcap(const float *x, float cap, float *y, int64_t n)
{
    float inv = 1.0f / cap; // ggml: scale(1/cap), tanh, scale(cap)
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = tanhf(x[i] * inv) * cap;
}

template <int FMT>
void launch_get_rows(const void *w, int64_t K, int64_t V, const int32_t *ids, int64_t M, float *y,
                     int32_t *err, cudaStream_t st)
{
    unsigned my = (unsigned)(M < 65535 ? M : 65535);
    if constexpr (cu_fmt<FMT>::blocks) {
        unsigned gx = grid_1d(K / 32, 128);
        dim3 grid(gx < 64 ? gx : 64, my);
        k_get_rows_slices<FMT>
            <<<grid, 128, 0, st>>>(cu_planes((cu_wtype)FMT, w, K, V), K, V, ids, M, y, err);
    } else {
        unsigned gx = grid_1d(K, 256);
        dim3 grid(gx < 64 ? gx : 64, my);
        k_get_rows<FMT><<<grid, 256, 0, st>>>(w, K, V, ids, M, y, err);
    }
}

template <int DPL>
void launch_attention(const float *q, const float *k, const float *v, float *out, int D, int H,
                      int Hkv, int64_t M, int64_t pos0, float scale, float softcap,
                      int64_t window, cudaStream_t st)
{
    dim3 grid((unsigned)H, (unsigned)(M < 65535 ? M : 65535), (unsigned)((M + 65534) / 65535));
    k_attention<DPL><<<grid, ATT_WARPS * 32, 0, st>>>(q, k, v, out, D, H, Hkv, M, pos0, scale,
                                                      softcap, window);
}

} // namespace

extern "C" cudaError_t cu_get_rows(enum cu_wtype t, const void *w, int64_t K, int64_t V,
                                   const int32_t *ids, int64_t M, float *y, int32_t *err,
                                   cudaStream_t st)
{
    switch (t) {
    case CU_W_F32: launch_get_rows<CU_W_F32>(w, K, V, ids, M, y, err, st); break;
    case CU_W_F16: launch_get_rows<CU_W_F16>(w, K, V, ids, M, y, err, st); break;
    case CU_W_BF16: launch_get_rows<CU_W_BF16>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q8_0: launch_get_rows<CU_W_Q8_0>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q4_0: launch_get_rows<CU_W_Q4_0>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q4_1: launch_get_rows<CU_W_Q4_1>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q5_0: launch_get_rows<CU_W_Q5_0>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q5_1: launch_get_rows<CU_W_Q5_1>(w, K, V, ids, M, y, err, st); break;
    case CU_W_IQ4_NL: launch_get_rows<CU_W_IQ4_NL>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q2_K: launch_get_rows<CU_W_Q2_K>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q3_K: launch_get_rows<CU_W_Q3_K>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q4_K: launch_get_rows<CU_W_Q4_K>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q5_K: launch_get_rows<CU_W_Q5_K>(w, K, V, ids, M, y, err, st); break;
    case CU_W_Q6_K: launch_get_rows<CU_W_Q6_K>(w, K, V, ids, M, y, err, st); break;
    case CU_W_IQ4_XS: launch_get_rows<CU_W_IQ4_XS>(w, K, V, ids, M, y, err, st); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t cu_rmsnorm(const float *x, const float *g, float *y, int64_t K, int64_t rows,
                                  float eps, cudaStream_t st)
{
    if (rows > 0x7FFFFFFF)
        return cudaErrorInvalidValue;
    k_rmsnorm<<<(unsigned)rows, 256, 0, st>>>(x, g, y, K, eps);
    return cudaGetLastError();
}

extern "C" cudaError_t cu_rope(const float *x, const float *ff, float *y, int64_t D, int64_t H, int64_t M,
                               int n_rot, int neox, int64_t pos0, float theta, float freq_scale,
                               float attn_factor, cudaStream_t st)
{
    if (M > 0x7FFFFFFF || n_rot > CU_ROPE_MAX_ROT || D * H > 0x7FFFFFFF)
        return cudaErrorInvalidValue;
    k_rope<<<(unsigned)M, 256, (size_t)n_rot * sizeof(float), st>>>(
        x, ff, y, (int)D, (int)H, n_rot, neox != 0, pos0, theta, freq_scale, attn_factor > 0.0f ? attn_factor : 1.0f);
    return cudaGetLastError();
}

extern "C" cudaError_t cu_attention(const float *q, const float *k, const float *v, float *out,
                                    int64_t D, int64_t H, int64_t Hkv, int64_t M, int64_t pos0,
                                    float scale, float softcap, int64_t window,
                                    cudaStream_t st)
{
    if (D > CU_ATTN_MAX_HEAD_DIM || H > 0x7FFFFFFF)
        return cudaErrorInvalidValue;
    int d = (int)D, h = (int)H, hkv = (int)Hkv;
    if (D <= 32)
        launch_attention<1>(q, k, v, out, d, h, hkv, M, pos0, scale, softcap, window, st);
    else if (D <= 64)
        launch_attention<2>(q, k, v, out, d, h, hkv, M, pos0, scale, softcap, window, st);
    else if (D <= 128)
        launch_attention<4>(q, k, v, out, d, h, hkv, M, pos0, scale, softcap, window, st);
    else
        launch_attention<8>(q, k, v, out, d, h, hkv, M, pos0, scale, softcap, window, st);
    return cudaGetLastError();
}

extern "C" cudaError_t cu_swiglu(const float *g, const float *u, float *y, int64_t n,
                                 cudaStream_t st)
{
    k_swiglu<<<grid_1d(n, 256), 256, 0, st>>>(g, u, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t cu_geglu(const float *g, const float *u, float *y, int64_t n,
                                cudaStream_t st)
{
    k_geglu<<<grid_1d(n, 256), 256, 0, st>>>(g, u, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t cu_add(const float *a, const float *b, float *y, int64_t n, int64_t nb,
                              cudaStream_t st)
{
    if (nb < 1)
        return cudaErrorInvalidValue;
    k_add<<<grid_1d(n, 256), 256, 0, st>>>(a, b, y, n, nb);
    return cudaGetLastError();
}

extern "C" cudaError_t cu_scale(const float *x, float s, float *y, int64_t n, cudaStream_t st)
{
    k_scale<<<grid_1d(n, 256), 256, 0, st>>>(x, s, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t cu_softcap(const float *x, float cap, float *y, int64_t n,
                                  cudaStream_t st)
{
    k_softcap<<<grid_1d(n, 256), 256, 0, st>>>(x, cap, y, n);
    return cudaGetLastError();
}
