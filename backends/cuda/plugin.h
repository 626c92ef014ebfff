/* backends/cuda/plugin.h - the interface between mixq's loader (backends/cuda_loader.c) and
 * the cuda plugin (libmixq-cuda.so), version 1.
 *
 * The plugin exports exactly one symbol, MQ_CUDA_PLUGIN_SYMBOL (backends/cuda/plugin.map
 * hides everything else, the static CUDA runtime included):
 *
 *     const struct mq_cuda_plugin *mixq_cuda_plugin_v1(void);
 *
 * It returns a pointer to a const table in the plugin, never NULL. The loader refuses a
 * plugin whose be_abi differs from its own BE_ABI_VERSION or whose be_* struct sizes
 * differ from its own (the structs passed across would not match: the sizes catch a
 * layout change made without bumping the ABI number), and a plugin whose vtable lacks a
 * slot the loader forwards. A change to this table's layout is a new symbol (_v2), not an
 * edit.
 *
 * Dependency rule: backends/ depends on core/ only.
 */
#ifndef MQ_BACKENDS_CUDA_PLUGIN_H
#define MQ_BACKENDS_CUDA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "backends/cuda/cuda.h"

#define MQ_CUDA_PLUGIN_SYMBOL "mixq_cuda_plugin_v1"
#define MQ_CUDA_PLUGIN_FILE "libmixq-cuda.so"

struct mq_cuda_plugin {
    uint32_t be_abi;      /* BE_ABI_VERSION the plugin was compiled with */
    uint32_t be_sizes[5]; /* MQ_CUDA_BE_SIZES as the plugin was compiled */
    const char *build; /* CUDA version and code targets, e.g. "CUDA 13.0; sm_80 sm_90 compute_90" */
    /* The backend. Its probe and open work on the device MIXQ_CUDA_DEVICE. Every slot the
     * loader forwards is set: alloc, release, write, read, sync, event_*. */
    const struct be_ops *ops;
    /* Fills everything but plugin_path; MQ_OK when usable, else MQ_EBACKEND (silent) with
     * out->reason set. */
    int (*describe)(struct be_cuda_device *out);
    /* Device-to-device copy on the backend's stream; ranges checked by the loader. */
    int (*copy)(void *ctx, void *dst, const void *src, size_t n);
};

/* The sizes of the structs that cross the boundary, plugin and loader compare them. */
#define MQ_CUDA_BE_SIZES                                                                           \
    {                                                                                              \
        sizeof(struct be_tensor), sizeof(struct be_node), sizeof(struct be_info),                  \
            sizeof(struct be_config), sizeof(struct be_ops)                                        \
    }

typedef const struct mq_cuda_plugin *(*mq_cuda_plugin_entry)(void);

#endif
