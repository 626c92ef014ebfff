/* backends/registry.c - the backends compiled into mixq, in preference order.
 * The registry is one of the two kinds of global mixq allows: a const table. */
#include <string.h>

#include "backends/backend.h"
#include "backends/cpu/cpu.h"
#include "backends/cuda/cuda.h"
#include "backends/neon/neon.h"
#include "backends/ref/ref.h"

static const struct be_ops *const registry[] = {
#if defined(__aarch64__) && !defined(MIXQ_NO_NEON)
    &be_neon_ops,
#endif
    &be_cpu_ops,
    &be_cuda_ops, /* the loader: always listed, usable where its plugin and a GPU are */
    &be_ref_ops,
};

int be_registry_count(void) { return (int)(sizeof(registry) / sizeof(registry[0])); }

const struct be_ops *be_registry_get(int i)
{
    return i >= 0 && i < be_registry_count() ? registry[i] : NULL;
}

const struct be_ops *be_registry_find(const char *name)
{
    for (int i = 0; i < be_registry_count(); i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}
