/* backends/cuda/plugin.c - the cuda backend inside the plugin: device checks, device
 * memory, one stream per backend, events, cuBLAS, and the kernel chosen for each op.
 *
 * Which kernel runs (kern.h and layout.h have the layouts):
 *   MATMUL, M <= CU_GEMV_MAX_COLS: cu_gemv for every format (block formats after quantizing
 *          the activations on the device to the format's Q8_0 or Q8_K blocks)
 *   MATMUL, larger M: block formats cu_gemm_q (dp4a on the same activation blocks); bf16
 *          cu_gemm_bf16 (widened, F32 FMA);
 *          f32 cublasSgemm; f16 cublasGemmEx with f16 inputs, F32 accumulation
 *          (CUBLAS_COMPUTE_32F) and activations scaled per column by a power of two
 *          before rounding to f16 (cu_f16_cols), which is what keeps the error at f16's
 *          2^-11 per term for any finite activation
 *   other ops: kern_ops.cu
 *
 * This file is compiled by the host C compiler (C11) with the CUDA headers; the plugin is
 * linked by nvcc with the static CUDA runtime (Makefile, CUDA section).
 */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/kern.h"
#include "backends/cuda/layout_pack.h"
#include "backends/cuda/plugin.h"
#include "core/dtype.h"
#include "core/status.h"

#ifndef MQ_CUDA_BUILD
#define MQ_CUDA_BUILD "unknown build"
#endif

struct cu_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    int32_t *err_host; /* mapped pinned memory: [0] set by a kernel that found an error, [1] what */
    int32_t *err_dev;  /* the same memory as the device sees it */
    void *scratch;     /* device: quantized or f16 activations, grown on demand */
    size_t scratch_cap;
};

/* Uploaded block-format matrices are in the planes layout (layout.h); `extra` marks them, so
 * that a view or a be_alloc'd block tensor (ggml layout) is refused instead of misread. */
struct cu_weights {
    enum cu_wtype wt;
};

static int64_t nelements(const struct be_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

static int cu_fail(cudaError_t e, const char *what)
{
    return mq_error(MQ_EBACKEND, "cuda: %s: %s (%s)", what, cudaGetErrorString(e),
                    cudaGetErrorName(e));
}

static int blas_fail(cublasStatus_t s, const char *what)
{
    return mq_error(MQ_EBACKEND, "cuda: %s: %s", what, cublasGetStatusString(s));
}

/* The runtime's current device is per host thread: make ours current at every entry. */
static int bind(const struct cu_ctx *ctx)
{
    cudaError_t e = cudaSetDevice(ctx->device);
    return e == cudaSuccess ? MQ_OK : cu_fail(e, "cudaSetDevice");
}

/* ---- device checks: everything probe, open and describe need to say why not ---- */

static void version_str(int v, char *buf, size_t size)
{
    snprintf(buf, size, "%d.%d", v / 1000, v % 1000 / 10);
}

/* The device MIXQ_CUDA_DEVICE (default 0), checked: MQ_OK, or MQ_EBACKEND (silent) with the
 * reason in why (see cuda.h for the phrases). Leaves the device current on success. */
static int check_device(int *dev, int *count, struct cudaDeviceProp *p, char *why, size_t size)
{
    int drv = 0, rt = 0, n = 0;
    char drv_s[16], rt_s[16];
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    version_str(drv, drv_s, sizeof(drv_s));
    version_str(rt, rt_s, sizeof(rt_s));
    *count = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorStubLibrary) {
        snprintf(why, size,
                 "no CUDA driver: the libcuda.so.1 found is the CUDA toolkit's stub library, "
                 "not a driver (install the NVIDIA driver)");
        return MQ_EBACKEND;
    }
    if (drv == 0) {
        snprintf(why, size, "no CUDA driver: the CUDA runtime cannot use libcuda.so.1 (%s)",
                 cudaGetErrorString(e));
        return MQ_EBACKEND;
    }
    if (e == cudaErrorInsufficientDriver || drv / 1000 < rt / 1000) {
        snprintf(why, size,
                 "driver too old: it supports CUDA %s, the plugin's runtime is CUDA %s (update the "
                 "NVIDIA driver)",
                 drv_s, rt_s);
        return MQ_EBACKEND;
    }
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        snprintf(why, size, "no CUDA device: the driver (CUDA %s) sees no GPU%s%s%s", drv_s,
                 vis ? " (CUDA_VISIBLE_DEVICES=" : "", vis ? vis : "", vis ? ")" : "");
        return MQ_EBACKEND;
    }
    if (e != cudaSuccess) {
        snprintf(why, size, "CUDA error: cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        return MQ_EBACKEND;
    }
    *count = n;
    *dev = 0;
    const char *want = getenv("MIXQ_CUDA_DEVICE");
    if (want && *want) {
        char *end;
        errno = 0;
        long v = strtol(want, &end, 10);
        if (errno || *end || v < 0 || v >= n) {
            snprintf(why, size,
                     "no CUDA device: MIXQ_CUDA_DEVICE=%s, but the driver sees %d device%s (0..%d)",
                     want, n, n == 1 ? "" : "s", n - 1);
            return MQ_EBACKEND;
        }
        *dev = (int)v;
    }
    if ((e = cudaGetDeviceProperties(p, *dev)) != cudaSuccess) {
        snprintf(why, size, "CUDA error: cudaGetDeviceProperties: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        return MQ_EBACKEND;
    }
    if (p->major < 8) {
        snprintf(why, size,
                 "device unsupported: %.80s (device %d) has compute capability %d.%d; the plugin "
                 "needs 8.0 "
                 "or newer (dp4a, bf16)",
                 p->name, *dev, p->major, p->minor);
        return MQ_EBACKEND;
    }
    if ((e = cudaSetDevice(*dev)) != cudaSuccess) {
        snprintf(why, size, "CUDA error: cudaSetDevice(%d): %s (%s)", *dev, cudaGetErrorString(e),
                 cudaGetErrorName(e));
        return MQ_EBACKEND;
    }
    e = cu_check_image();
    if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction) {
        snprintf(
            why, size,
            "device unsupported: the plugin has no code for sm_%d%d (%s; rebuild with CUDA_ARCHS "
            "including %d%d)",
            p->major, p->minor, MQ_CUDA_BUILD, p->major, p->minor);
        return MQ_EBACKEND;
    }
    if (e == cudaErrorUnsupportedPtxVersion || e == cudaErrorInsufficientDriver) {
        snprintf(
            why, size,
            "driver too old: it cannot compile the plugin's PTX for sm_%d%d (update the driver, or "
            "rebuild with CUDA_ARCHS including %d%d)",
            p->major, p->minor, p->major, p->minor);
        return MQ_EBACKEND;
    }
    if (e != cudaSuccess) {
        snprintf(why, size, "CUDA error: cudaFuncGetAttributes: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        return MQ_EBACKEND;
    }
    return MQ_OK;
}

static void cu_probe(struct be_info *info)
{
    memset(info, 0, sizeof(*info));
    struct cudaDeviceProp p;
    int dev, count, drv = 0, rt = 0;
    if (check_device(&dev, &count, &p, info->reason, sizeof(info->reason)) < 0)
        return;
    info->usable = true;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    char drv_s[16], rt_s[16];
    version_str(drv, drv_s, sizeof(drv_s));
    version_str(rt, rt_s, sizeof(rt_s));
    snprintf(info->detail, sizeof(info->detail),
             "device %d of %d: %.80s, sm_%d%d, %d SMs, %.1f GiB; driver CUDA %s, runtime %s", dev,
             count, p.name, p.major, p.minor, p.multiProcessorCount,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), drv_s, rt_s);
}

/* ---- describe ---- */

/* Loads CUPTI to ask its version: only describe does this, never probe or open (CUPTI is
 * large, and its static constructors are not something every mixq process should run). */
static void cupti_check(struct be_cuda_device *out)
{
    char lib[32];
    snprintf(lib, sizeof(lib), "libcupti.so.%d", CUDART_VERSION / 1000);
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        const char *err = dlerror();
        snprintf(out->cupti, sizeof(out->cupti),
                 "no: %s cannot be loaded (%.120s); it ships with the CUDA toolkit "
                 "(cuda-cupti)",
                 lib, err ? err : "unknown error");
        return;
    }
    void *sym = dlsym(h, "cuptiGetVersion");
    int (*get_version)(uint32_t *) = NULL;
    if (sym)
        memcpy(&get_version, &sym, sizeof(get_version));
    uint32_t v = 0;
    if (get_version && get_version(&v) == 0) {
        out->cupti_available = true;
        snprintf(out->cupti, sizeof(out->cupti),
                 "yes: %s, CUPTI API version %u (hardware counters may need "
                 "NVreg_RestrictProfilingToAdminUsers=0 or root)",
                 lib, v);
    } else {
        snprintf(out->cupti, sizeof(out->cupti), "no: %s has no working cuptiGetVersion", lib);
    }
    dlclose(h);
}

static int cu_describe(struct be_cuda_device *out)
{
    snprintf(out->plugin_build, sizeof(out->plugin_build), "%s", MQ_CUDA_BUILD);
    cudaDriverGetVersion(&out->driver_version);
    cudaRuntimeGetVersion(&out->runtime_version);
    int a = 0, b = 0, c = 0;
    if (cublasGetProperty(MAJOR_VERSION, &a) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(MINOR_VERSION, &b) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(PATCH_LEVEL, &c) == CUBLAS_STATUS_SUCCESS)
        out->cublas_version = a * 10000 + b * 100 + c;
    cupti_check(out);
    struct cudaDeviceProp p;
    int dev = 0;
    if (check_device(&dev, &out->device_count, &p, out->reason, sizeof(out->reason)) < 0)
        return MQ_EBACKEND;
    out->usable = true;
    out->device = dev;
    snprintf(out->name, sizeof(out->name), "%s", p.name);
    if (cudaDeviceGetPCIBusId(out->pci_bus_id, (int)sizeof(out->pci_bus_id), dev) != cudaSuccess)
        out->pci_bus_id[0] = '\0';
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->sm_count = p.multiProcessorCount;
    out->mem_total_bytes = p.totalGlobalMem;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
        out->mem_free_bytes = free_b;
    out->l2_bytes = (uint64_t)p.l2CacheSize;
    out->smem_per_sm_bytes = p.sharedMemPerMultiprocessor;
    int sm_khz = 0, mem_khz = 0;
    if (cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, dev) == cudaSuccess)
        out->sm_clock_mhz = sm_khz / 1000;
    if (cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev) == cudaSuccess)
        out->mem_clock_mhz = mem_khz / 1000;
    out->mem_bus_bits = p.memoryBusWidth;
    out->mem_peak_gb_s = 2.0 * (double)mem_khz * 1e3 * (double)p.memoryBusWidth / 8.0 / 1e9;
    out->ecc = p.ECCEnabled != 0;
    cudaGetLastError(); /* an attribute the driver lacks leaves no sticky error behind */
    return MQ_OK;
}

/* ---- lifecycle ---- */

static void cu_close(void *p)
{
    struct cu_ctx *ctx = p;
    if (!ctx)
        return;
    cudaSetDevice(ctx->device);
    if (ctx->stream)
        cudaStreamSynchronize(ctx->stream);
    if (ctx->blas)
        cublasDestroy(ctx->blas);
    if (ctx->stream)
        cudaStreamDestroy(ctx->stream);
    if (ctx->err_host)
        cudaFreeHost(ctx->err_host);
    if (ctx->scratch)
        cudaFree(ctx->scratch);
    free(ctx);
}

static int cu_open(const struct be_config *cfg, void **out)
{
    (void)cfg; /* n_threads: host threads; the device work is not split over them */
    *out = NULL;
    struct cu_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return mq_error(MQ_ENOMEM, "cannot allocate the cuda backend");
    struct cudaDeviceProp p;
    char why[256];
    int count, rc;
    cudaError_t e;
    cublasStatus_t s;
    if (check_device(&ctx->device, &count, &p, why, sizeof(why)) < 0) {
        rc = mq_error(MQ_EBACKEND, "backend 'cuda' is not usable here: %s", why);
        goto fail;
    }
    if ((e = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        rc = cu_fail(e, "cannot create a stream");
        goto fail;
    }
    if ((e = cudaHostAlloc((void **)&ctx->err_host, 4 * sizeof(int32_t), cudaHostAllocMapped)) !=
        cudaSuccess) {
        ctx->err_host = NULL;
        rc = cu_fail(e, "cannot allocate mapped host memory");
        goto fail;
    }
    memset(ctx->err_host, 0, 4 * sizeof(int32_t));
    if (cudaHostGetDevicePointer((void **)&ctx->err_dev, ctx->err_host, 0) != cudaSuccess) {
        /* with unified addressing (every 64-bit sm_80+ system) kernels use the host pointer */
        cudaGetLastError();
        if (!p.unifiedAddressing) {
            rc =
                mq_error(MQ_EBACKEND, "cuda: device %d maps no host memory (no unified addressing)",
                         ctx->device);
            goto fail;
        }
        ctx->err_dev = ctx->err_host;
    }
    if ((s = cublasCreate(&ctx->blas)) != CUBLAS_STATUS_SUCCESS) {
        ctx->blas = NULL;
        rc = blas_fail(s, "cublasCreate");
        goto fail;
    }
    if ((s = cublasSetStream(ctx->blas, ctx->stream)) != CUBLAS_STATUS_SUCCESS) {
        rc = blas_fail(s, "cublasSetStream");
        goto fail;
    }
    *out = ctx;
    return MQ_OK;
fail:
    cu_close(ctx);
    return rc;
}

static bool cu_supports(void *p, enum be_op op, enum mq_dtype type)
{
    (void)p;
    if (op != BE_OP_MATMUL && op != BE_OP_GET_ROWS)
        return true;
    return (unsigned)type < MQ_DTYPE_COUNT && cu_wtypes[type].ok;
}

/* ---- memory ---- */

static int cu_alloc(void *p, struct be_tensor *t)
{
    struct cu_ctx *ctx = p;
    int rc = bind(ctx);
    if (rc < 0)
        return rc;
    size_t n = t->nbytes ? t->nbytes : 1;
    cudaError_t e = cudaMalloc(&t->data, n);
    if (e != cudaSuccess) {
        t->data = NULL;
        cudaGetLastError();
        return mq_error(MQ_ENOMEM, "cuda: cannot allocate %zu bytes of device memory: %s", n,
                        cudaGetErrorString(e));
    }
    return MQ_OK;
}

static void cu_release(void *p, struct be_tensor *t)
{
    struct cu_ctx *ctx = p;
    cudaSetDevice(ctx->device);
    cudaStreamSynchronize(ctx->stream); /* enqueued kernels may still read it */
    if (t->data)
        cudaFree(t->data);
    free(t->extra);
}

/* Whether uploaded matrices of t are repacked into the planes layout (layout.h). */
static bool is_block_format(enum cu_wtype t)
{
    return cu_formats[t].block_elems > 1;
}

static int cu_upload(void *p, struct be_tensor *t, const void *src)
{
    struct cu_ctx *ctx = p;
    if ((unsigned)t->type >= MQ_DTYPE_COUNT || !cu_wtypes[t->type].ok)
        return mq_error(MQ_EUNSUPPORTED, "cuda backend: no kernels for %s weights",
                        mq_dtype_name(t->type));
    enum cu_wtype wt = cu_wtypes[t->type].wt;
    bool split = t->use == BE_USE_MATRIX && is_block_format(wt);
    int rc = cu_alloc(p, t);
    if (rc < 0)
        return rc;
    void *buf = NULL;
    struct cu_weights *cw = NULL;
    const void *h = src;
    if (split) {
        int64_t K = t->ne[0], N = nelements(t) / K;
        buf = malloc(t->nbytes ? t->nbytes : 1);
        cw = malloc(sizeof(*cw));
        if (!buf || !cw) {
            rc = mq_error(MQ_ENOMEM, "cuda backend: cannot allocate %zu bytes to repack weights",
                          t->nbytes);
            goto fail;
        }
        cu_layout_pack(wt, src, buf, K, N);
        cw->wt = wt;
        h = buf;
    }
    cudaError_t e = cudaMemcpyAsync(t->data, h, t->nbytes, cudaMemcpyHostToDevice, ctx->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(ctx->stream); /* buf is freed below */
    if (e != cudaSuccess) {
        rc = cu_fail(e, "uploading weights");
        goto fail;
    }
    free(buf);
    t->extra = cw;
    return MQ_OK;
fail:
    free(buf);
    free(cw);
    cudaFree(t->data);
    t->data = NULL;
    return rc;
}

/* Errors kernels reported through mapped memory since the last check; call after the
 * stream synchronised. */
static int device_errors(struct cu_ctx *ctx)
{
    volatile int32_t *err = ctx->err_host;
    if (!err[0])
        return MQ_OK;
    int32_t id = err[1];
    err[0] = 0;
    return mq_error(MQ_ERANGE, "get_rows: token id %d outside the table (found on the device)",
                    (int)id);
}

static int cu_write(void *p, struct be_tensor *t, size_t offset, const void *src, size_t n)
{
    struct cu_ctx *ctx = p;
    int rc = bind(ctx);
    if (rc < 0)
        return rc;
    /* from pageable memory: returns once src is staged, so the caller may reuse it */
    cudaError_t e =
        cudaMemcpyAsync((char *)t->data + offset, src, n, cudaMemcpyHostToDevice, ctx->stream);
    return e == cudaSuccess ? MQ_OK : cu_fail(e, "write");
}

static int cu_read(void *p, const struct be_tensor *t, size_t offset, void *dst, size_t n)
{
    struct cu_ctx *ctx = p;
    int rc = bind(ctx);
    if (rc < 0)
        return rc;
    cudaError_t e = cudaMemcpyAsync(dst, (const char *)t->data + offset, n, cudaMemcpyDeviceToHost,
                                    ctx->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(ctx->stream);
    if (e != cudaSuccess)
        return cu_fail(e, "read");
    return device_errors(ctx);
}

static int cu_sync(void *p)
{
    struct cu_ctx *ctx = p;
    int rc = bind(ctx);
    if (rc < 0)
        return rc;
    cudaError_t e = cudaStreamSynchronize(ctx->stream);
    if (e != cudaSuccess)
        return cu_fail(e, "sync");
    return device_errors(ctx);
}

static int cu_copy(void *p, void *dst, const void *src, size_t n)
{
    struct cu_ctx *ctx = p;
    int rc = bind(ctx);
    if (rc < 0)
        return rc;
    cudaError_t e = cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, ctx->stream);
    return e == cudaSuccess ? MQ_OK : cu_fail(e, "device copy");
}

/* ---- events ---- */

static int cu_event_new(void *p, void **ev)
{
    int rc = bind(p);
    if (rc < 0)
        return rc;
    cudaEvent_t e;
    cudaError_t err = cudaEventCreate(&e);
    if (err != cudaSuccess)
        return cu_fail(err, "cudaEventCreate");
    *ev = e;
    return MQ_OK;
}

static void cu_event_free(void *p, void *ev)
{
    (void)p;
    cudaEventDestroy((cudaEvent_t)ev);
}

static int cu_event_record(void *p, void *ev)
{
    struct cu_ctx *ctx = p;
    cudaError_t e = cudaEventRecord((cudaEvent_t)ev, ctx->stream);
    return e == cudaSuccess ? MQ_OK : cu_fail(e, "cudaEventRecord");
}

static int cu_event_elapsed_ns(void *p, void *start, void *end, uint64_t *ns)
{
    (void)p;
    float ms = 0.0f;
    cudaError_t e = cudaEventSynchronize((cudaEvent_t)end);
    if (e == cudaSuccess)
        e = cudaEventElapsedTime(&ms, (cudaEvent_t)start, (cudaEvent_t)end);
    if (e != cudaSuccess)
        return cu_fail(e, "event timing");
    if (ms < 0.0f)
        return mq_error(MQ_EINVAL,
                        "cuda: event timing: the end event was recorded before the start");
    *ns = (uint64_t)((double)ms * 1e6 + 0.5);
    return MQ_OK;
}

/* ---- ops ---- */

/* Device scratch of at least `need` bytes. Growing waits for the stream (the old buffer may
 * still be read) and at least doubles, so it happens a few times per process. */
static void *scratch(struct cu_ctx *ctx, size_t need)
{
    if (need <= ctx->scratch_cap)
        return ctx->scratch;
    size_t cap = need > 2 * ctx->scratch_cap ? need : 2 * ctx->scratch_cap;
    cudaStreamSynchronize(ctx->stream);
    if (ctx->scratch)
        cudaFree(ctx->scratch);
    ctx->scratch = NULL;
    ctx->scratch_cap = 0;
    if (cudaMalloc(&ctx->scratch, cap) != cudaSuccess) {
        cudaGetLastError();
        ctx->scratch = NULL;
        return NULL;
    }
    ctx->scratch_cap = cap;
    return ctx->scratch;
}

static size_t align256(size_t n)
{
    return (n + 255) / 256 * 256;
}

static int cu_matmul(struct cu_ctx *ctx, const struct be_node *node)
{
    const struct be_tensor *w = node->src[0], *x = node->src[1];
    float *y = node->dst->data;
    int64_t K = w->ne[0], N = w->ne[1], M = x->ne[1];
    enum cu_wtype wt = cu_wtypes[w->type].wt;
    if (K > INT32_MAX || N > INT32_MAX || M > INT32_MAX)
        return mq_error(MQ_EUNSUPPORTED,
                        "cuda matmul: %lld x %lld x %lld exceeds the kernels' int32 sizes",
                        (long long)N, (long long)K, (long long)M);
    cudaError_t e = cudaSuccess;
    if (is_block_format(wt)) {
        if (!w->extra)
            return mq_error(MQ_EUNSUPPORTED,
                            "cuda matmul: %s weights must be a whole tensor made by be_upload "
                            "(views and be_alloc'd blocks are not in the device layout)",
                            mq_dtype_name(w->type));
        /* Q8_0: a scale and a sum per 32; Q8_K: a scale per 256 and a sum per 16 */
        bool q8k = cu_formats[wt].act_q8k;
        size_t cols = (size_t)M, codes = align256((size_t)K * cols);
        size_t d_bytes = align256((size_t)(K / (q8k ? 256 : 32)) * cols * sizeof(float));
        size_t s_bytes = align256((size_t)(K / (q8k ? 16 : 32)) * cols * sizeof(int32_t));
        char *s = scratch(ctx, codes + d_bytes + s_bytes);
        if (!s)
            return mq_error(MQ_ENOMEM, "cuda matmul: cannot allocate activation scratch");
        struct cu_q8act a = {
            .q = (int8_t *)s, .d = (float *)(s + codes), .s = (int32_t *)(s + codes + d_bytes)};
        e = q8k ? cu_quantize_q8k(x->data, K, M, a, ctx->stream)
                : cu_quantize_q8(x->data, K, M, a, ctx->stream);
        if (e == cudaSuccess)
            e = M <= CU_GEMV_MAX_COLS ? cu_gemv(wt, w->data, K, N, NULL, &a, M, y, ctx->stream)
                                      : cu_gemm_q(wt, w->data, K, N, &a, M, y, ctx->stream);
    } else if (M <= CU_GEMV_MAX_COLS) {
        e = cu_gemv(wt, w->data, K, N, x->data, NULL, M, y, ctx->stream);
    } else if (wt == CU_W_BF16) {
        e = cu_gemm_bf16(w->data, K, N, x->data, M, y, ctx->stream);
    } else if (wt == CU_W_F32) {
        const float one = 1.0f, zero = 0.0f;
        /* cuBLAS is column-major: W is K x N (lda K), x is K x M, y = W^T x is N x M */
        cublasStatus_t st = cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K,
                                        &one, w->data, (int)K, x->data, (int)K, &zero, y, (int)N);
        if (st != CUBLAS_STATUS_SUCCESS)
            return blas_fail(st, "cublasSgemm");
    } else {
        size_t xh_bytes = align256((size_t)K * (size_t)M * 2);
        char *s = scratch(ctx, xh_bytes + (size_t)M * 4);
        if (!s)
            return mq_error(MQ_ENOMEM, "cuda matmul: cannot allocate activation scratch");
        int32_t *ex = (int32_t *)(s + xh_bytes);
        const float one = 1.0f, zero = 0.0f;
        e = cu_f16_cols(x->data, K, M, (uint16_t *)s, ex, ctx->stream);
        if (e != cudaSuccess)
            return cu_fail(e, "matmul (f16 inputs)");
        cublasStatus_t st =
            cublasGemmEx(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &one, w->data,
                         CUDA_R_16F, (int)K, s, CUDA_R_16F, (int)K, &zero, y, CUDA_R_32F, (int)N,
                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS)
            return blas_fail(st, "cublasGemmEx (f16)");
        e = cu_scale_cols(y, N, M, ex, ctx->stream);
    }
    return e == cudaSuccess ? MQ_OK : cu_fail(e, "matmul");
}

static int cu_run(void *p, const struct be_node *node)
{
    struct cu_ctx *ctx = p;
    int rc = bind(ctx);
    if (rc < 0)
        return rc;
    const struct be_tensor *a = node->src[0], *b = node->src[1], *c = node->src[2];
    float *y = node->dst->data;
    cudaError_t e = cudaSuccess;
    const char *what = "op";
    switch (node->op) {
    case BE_OP_MATMUL: return cu_matmul(ctx, node);
    case BE_OP_GET_ROWS: {
        enum cu_wtype wt = cu_wtypes[a->type].wt;
        if (is_block_format(wt) && !a->extra)
            return mq_error(MQ_EUNSUPPORTED,
                            "cuda get_rows: %s weights must be a whole tensor made by be_upload",
                            mq_dtype_name(a->type));
        what = "get_rows";
        e = cu_get_rows(wt, a->data, a->ne[0], a->ne[1], b->data, nelements(b), y, ctx->err_dev,
                        ctx->stream);
        break;
    }
    case BE_OP_RMSNORM:
        what = "rmsnorm";
        e = cu_rmsnorm(a->data, b->data, y, a->ne[0], nelements(a) / a->ne[0], node->p.rmsnorm.eps,
                       ctx->stream);
        break;
    case BE_OP_ROPE:
        if (node->p.rope.n_rot > CU_ROPE_MAX_ROT)
            return mq_error(MQ_EUNSUPPORTED, "cuda rope: %d rotary dimensions (at most %d)",
                            node->p.rope.n_rot, CU_ROPE_MAX_ROT);
        what = "rope";
        e = cu_rope(a->data, b ? b->data : NULL, y, a->ne[0], a->ne[1], a->ne[2] * a->ne[3], node->p.rope.n_rot,
                    node->p.rope.mode == BE_ROPE_NEOX, node->p.rope.pos0, node->p.rope.theta,
                    node->p.rope.freq_scale, node->p.rope.attn_factor, ctx->stream);
        break;
    case BE_OP_ATTENTION:
        if (a->ne[0] > CU_ATTN_MAX_HEAD_DIM)
            return mq_error(MQ_EUNSUPPORTED, "cuda attention: head dimension %lld (at most %d)",
                            (long long)a->ne[0], CU_ATTN_MAX_HEAD_DIM);
        what = "attention";
        e = cu_attention(a->data, b->data, c->data, y, a->ne[0], a->ne[1], b->ne[0] / a->ne[0],
                         a->ne[2], node->p.attention.pos0, node->p.attention.scale,
                         node->p.attention.softcap, node->p.attention.window, ctx->stream);
        break;
    case BE_OP_SWIGLU:
        what = "swiglu";
        e = cu_swiglu(a->data, b->data, y, nelements(node->dst), ctx->stream);
        break;
    case BE_OP_GEGLU:
        what = "geglu";
        e = cu_geglu(a->data, b->data, y, nelements(node->dst), ctx->stream);
        break;
    case BE_OP_ADD:
        what = "add";
        e = cu_add(a->data, b->data, y, nelements(node->dst), nelements(b), ctx->stream);
        break;
    case BE_OP_SCALE:
        what = "scale";
        e = cu_scale(a->data, node->p.scale.s, y, nelements(node->dst), ctx->stream);
        break;
    case BE_OP_SOFTCAP:
        what = "softcap";
        e = cu_softcap(a->data, node->p.softcap.cap, y, nelements(node->dst), ctx->stream);
        break;
    case BE_OP_COUNT: return mq_error(MQ_EINTERNAL, "cuda: unknown op %d", (int)node->op);
    }
    return e == cudaSuccess ? MQ_OK : cu_fail(e, what);
}

static const struct be_ops cu_ops = {
    .abi = BE_ABI_VERSION,
    .name = "cuda",
    .summary = "NVIDIA GPUs (CUDA plugin): own GEMV and dp4a kernels, cuBLAS GEMM",
    .probe = cu_probe,
    .open = cu_open,
    .close = cu_close,
    .supports = cu_supports,
    .upload = cu_upload,
    .run = cu_run,
    .alloc = cu_alloc,
    .release = cu_release,
    .write = cu_write,
    .read = cu_read,
    .sync = cu_sync,
    .event_new = cu_event_new,
    .event_free = cu_event_free,
    .event_record = cu_event_record,
    .event_elapsed_ns = cu_event_elapsed_ns,
};

static const struct mq_cuda_plugin plugin = {
    .be_abi = BE_ABI_VERSION,
    .be_sizes = MQ_CUDA_BE_SIZES,
    .build = MQ_CUDA_BUILD,
    .ops = &cu_ops,
    .describe = cu_describe,
    .copy = cu_copy,
};

__attribute__((visibility("default"))) const struct mq_cuda_plugin *mixq_cuda_plugin_v1(void);

const struct mq_cuda_plugin *mixq_cuda_plugin_v1(void)
{
    return &plugin;
}
