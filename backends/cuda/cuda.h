/* backends/cuda/cuda.h - the cuda backend as mixq sees it: a loader that is always compiled
 * in, and a plugin that holds everything CUDA.
 *
 *     struct be_backend *be;
 *     if (be_open("cuda", NULL, &be) < 0) ...      // prints why not: no driver, no device, ...
 *     struct be_cuda_device dev;
 *     if (be_cuda_describe(&dev) == MQ_OK)
 *         printf("%s, sm_%d%d, %d SMs\n", dev.name, dev.cc_major, dev.cc_minor, dev.sm_count);
 *
 * mixq never links the CUDA runtime. backends/cuda_loader.c provides be_cuda_ops, which the
 * registry always lists; its probe dlopens the plugin libmixq-cuda.so (built by nvcc from
 * backends/cuda/ when nvcc is found: make WITH_CUDA=auto|yes) and forwards every slot to
 * the plugin's own vtable. The plugin is linked with the static CUDA runtime, so a machine
 * needs only the NVIDIA driver (libcuda.so.1) and cuBLAS to run it.
 *
 * Where the plugin is looked for: only in $MIXQ_PLUGIN_DIR when that is set; otherwise in
 * DIR/plugins and DIR/../lib/mixq, DIR being the folder of the running executable (so
 * build/mixq and build/test-unit find build/plugins/; a sanitizer build in build/asan/
 * looks in build/asan/plugins/ and does not pick up an uninstrumented plugin).
 *
 * Why the backend can be disabled: the reason (be_info.reason, `mixq backends`) starts with
 * one of these phrases, which tests and scripts may match:
 *   "plugin not built"      no libmixq-cuda.so where it is looked for
 *   "no CUDA driver"        libcuda.so.1 cannot be loaded (no NVIDIA driver), or is the
 *                           toolkit's stub library
 *   "cuBLAS missing"        the plugin's libcublas/libcublasLt cannot be loaded
 *   "cannot load plugin"    any other dlopen/dlsym failure (the dynamic loader's message)
 *   "plugin ABI mismatch"   the plugin was built against another BE_ABI_VERSION
 *   "driver too old"        the driver supports an older CUDA than the plugin's runtime
 *   "no CUDA device"        the driver sees no GPU (or CUDA_VISIBLE_DEVICES hides them), or
 *                           MIXQ_CUDA_DEVICE names one that does not exist
 *   "device unsupported"    compute capability below 8.0, or no code in the plugin for it
 *   "CUDA error"            anything else the runtime reports, with its name and text
 *
 * Device: MIXQ_CUDA_DEVICE=N picks the GPU (default 0). Execution is asynchronous on one
 * stream per opened backend: be_run returns once the kernels are enqueued; be_sync waits;
 * be_read waits for everything before it. Errors found on the device (a GET_ROWS id outside
 * the table) are reported by the next be_sync or be_read (MQ_ERANGE). Device-side timing:
 * be_event_* are CUDA events on that stream (resolution about 0.5 us).
 *
 * Dependency rule: backends/ depends on core/ only (the loader uses libdl, not CUDA).
 */
#ifndef MQ_BACKENDS_CUDA_H
#define MQ_BACKENDS_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

/* The loader's vtable: in the registry whether or not the plugin was built. */
extern const struct be_ops be_cuda_ops;

/* What mixq knows about the device and the software around it (for `mixq backends` and
 * profile.yaml). Versions are CUDA's integers: 13000 is 13.0. */
struct be_cuda_device {
    bool usable;
    char reason[256];       /* why not usable (the probe's reason); empty when usable */
    char plugin_path[512];  /* the plugin file used; empty when none was found */
    char plugin_build[160]; /* e.g. "CUDA 13.0; sm_80 sm_89 sm_90 compute_90" */
    int device, device_count;
    char name[256];
    char pci_bus_id[32];
    int cc_major, cc_minor; /* compute capability */
    int sm_count;
    uint64_t mem_total_bytes, mem_free_bytes;
    uint64_t l2_bytes, smem_per_sm_bytes;
    int sm_clock_mhz, mem_clock_mhz, mem_bus_bits; /* peak clocks as the driver reports */
    double mem_peak_gb_s; /* 2 * memory clock * bus width / 8 (double data rate) */
    bool ecc;
    int driver_version, runtime_version, cublas_version; /* cuBLAS: major*10000+minor*100+patch */
    /* counters: what the platform offers for GPU hardware counters */
    bool cupti_available;
    char cupti[256];     /* "libcupti.so.13, CUPTI API 130000..." or why not */
    char papi_cuda[160]; /* PAPI's cuda component: Debian's libpapi has none */
};

/* Loads the plugin and describes the device MIXQ_CUDA_DEVICE (default 0). MQ_OK when the
 * backend is usable; MQ_EBACKEND (silent) with out->usable false and out->reason set when
 * not, and whatever could be learned filled in. */
int be_cuda_describe(struct be_cuda_device *out);

/* The plugin file the loader would use: MQ_OK and its path, or MQ_ENOTFOUND (silent) and
 * in `path` the places searched. */
int be_cuda_plugin_path(char *path, size_t size);

/* Device-to-device copy of n bytes from src to dst (both tensors of `be`, which must be a
 * cuda backend), enqueued on its stream: for measuring copy bandwidth with be_event_*.
 * MQ_EINVAL for another backend or ranges outside the tensors. */
int be_cuda_copy(struct be_backend *be, struct be_tensor *dst, const struct be_tensor *src,
                 size_t n);

#endif
