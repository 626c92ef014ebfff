/* backends/cuda_loader.c - the cuda backend's side in mixq: finds and dlopens the plugin,
 * says precisely why it cannot, and forwards every slot to the plugin's vtable.
 *
 * The checks, in order, each with its reason phrase (backends/cuda/cuda.h):
 *   1. the plugin file exists where it is looked for           "plugin not built"
 *   2. libcuda.so.1 loads (before the plugin, whose static
 *      runtime would only say "insufficient driver")          "no CUDA driver"
 *   3. the plugin loads: a missing libcublas* is named          "cuBLAS missing"
 *      as such, anything else is the dynamic loader's message   "cannot load plugin"
 *   4. the entry symbol exists and every forwarded slot is set  "cannot load plugin"
 *   5. the plugin's BE_ABI_VERSION and be_* struct sizes are ours "plugin ABI mismatch"
 *   6. the plugin's own probe: driver version, devices,
 *      compute capability, code for the device                  (cuda.h lists them)
 *
 * No state outlives a call but what a backend's context holds: probe loads the plugin and
 * lets it go; open keeps it until close. The plugin and libcuda.so.1 are opened
 * RTLD_NODELETE: a static CUDA runtime cannot be unloaded safely, a driver unloaded after
 * its constructors ran would leave LeakSanitizer unreachable blocks to report, and loading
 * them again is then cheap.
 */
#include "backends/cuda/cuda.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/cuda/plugin.h"
#include "core/status.h"

/* Debian 12's libpapi compiles in perf_event, perf_event_uncore, sde, rocm_smi and sysdetect
 * (papi_component_avail): no cuda component, so PAPI cannot read NVIDIA counters. */
#define PAPI_CUDA_NOTE                                                                             \
    "no: Debian's libpapi is built without the cuda component (see papi_component_avail); GPU "    \
    "counters come from CUPTI or Nsight Compute"

struct cul_plugin {
    void *driver; /* libcuda.so.1, held while the plugin is */
    void *dl;     /* the plugin */
    const struct mq_cuda_plugin *pl;
    char path[512];
};

struct cul_ctx {
    struct cul_plugin plugin;
    void *ctx; /* the plugin backend's context */
};

/* The folder of the running executable, or "" when /proc/self/exe cannot be read. */
static void exe_dir(char *dir, size_t size)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    dir[0] = '\0';
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    snprintf(dir, size, "%s", buf);
}

int be_cuda_plugin_path(char *path, size_t size)
{
    char dirs[2][PATH_MAX + 32];
    int n_dirs = 0;
    const char *env = getenv("MIXQ_PLUGIN_DIR");
    if (env && *env) {
        snprintf(dirs[n_dirs++], sizeof(dirs[0]), "%s", env);
    } else {
        char dir[PATH_MAX];
        exe_dir(dir, sizeof(dir));
        if (dir[0]) {
            snprintf(dirs[n_dirs++], sizeof(dirs[0]), "%s/plugins", dir);
            snprintf(dirs[n_dirs++], sizeof(dirs[0]), "%s/../lib/mixq", dir);
        }
    }
    for (int i = 0; i < n_dirs; i++) {
        char cand[PATH_MAX + 64];
        snprintf(cand, sizeof(cand), "%.4000s/%s", dirs[i], MQ_CUDA_PLUGIN_FILE);
        if (access(cand, F_OK) == 0) {
            snprintf(path, size, "%s", cand);
            return MQ_OK;
        }
    }
    if (env && *env)
        snprintf(path, size, "MIXQ_PLUGIN_DIR=%s", env);
    else if (n_dirs == 2)
        snprintf(path, size, "%s or %s", dirs[0], dirs[1]);
    else
        snprintf(path, size, "no folder (cannot read /proc/self/exe; set MIXQ_PLUGIN_DIR)");
    return MQ_ENOTFOUND;
}

static void plugin_unload(struct cul_plugin *p)
{
    if (p->dl)
        dlclose(p->dl);
    if (p->driver)
        dlclose(p->driver);
    p->dl = p->driver = NULL;
    p->pl = NULL;
}

/* Loads the plugin: MQ_OK, or MQ_EBACKEND (silent) with the reason in why. p->path is the
 * file tried, or "" when none was found. */
static int plugin_load(struct cul_plugin *p, char *why, size_t size)
{
    memset(p, 0, sizeof(*p));
    char where[512];
    if (be_cuda_plugin_path(where, sizeof(where)) < 0) {
        snprintf(why, size,
                 "plugin not built: no %s in %.150s (make builds it where nvcc is found)",
                 MQ_CUDA_PLUGIN_FILE, where);
        return MQ_EBACKEND;
    }
    snprintf(p->path, sizeof(p->path), "%s", where);
    p->driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!p->driver) {
        const char *err = dlerror();
        snprintf(
            why, size,
            "no CUDA driver: libcuda.so.1 cannot be loaded (%.150s); install the NVIDIA driver",
            err ? err : "unknown error");
        return MQ_EBACKEND;
    }
    p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!p->dl) {
        const char *err = dlerror();
        err = err ? err : "unknown error";
        if (strstr(err, "libcublas"))
            snprintf(
                why, size,
                "cuBLAS missing: %.150s (install cuBLAS for the plugin's CUDA version, or add its "
                "folder to LD_LIBRARY_PATH)",
                err);
        else
            snprintf(why, size, "cannot load plugin: %.220s", err);
        plugin_unload(p);
        return MQ_EBACKEND;
    }
    void *sym = dlsym(p->dl, MQ_CUDA_PLUGIN_SYMBOL);
    if (!sym) {
        snprintf(why, size,
                 "cannot load plugin: %.150s has no symbol %s (not a mixq cuda plugin of this "
                 "interface version)",
                 p->path, MQ_CUDA_PLUGIN_SYMBOL);
        plugin_unload(p);
        return MQ_EBACKEND;
    }
    mq_cuda_plugin_entry entry;
    memcpy(&entry, &sym, sizeof(entry));
    const struct mq_cuda_plugin *pl = entry();
    static const uint32_t sizes[] = MQ_CUDA_BE_SIZES;
    const char *mismatch = !pl || pl->be_abi != BE_ABI_VERSION ? "another backend ABI version"
                           : memcmp(pl->be_sizes, sizes, sizeof(sizes)) != 0
                               ? "another backend.h (the struct layouts differ)"
                           : !pl->ops || pl->ops->abi != BE_ABI_VERSION
                               ? "another backend ABI version (its vtable)"
                               : NULL;
    if (mismatch) {
        snprintf(
            why, size,
            "plugin ABI mismatch: %.100s was built for %s than this mixq (backend ABI %u); rebuild "
            "the plugin",
            p->path, mismatch, (unsigned)BE_ABI_VERSION);
        plugin_unload(p);
        return MQ_EBACKEND;
    }
    const struct be_ops *o = pl->ops;
    const char *missing = !o->probe              ? "probe"
                          : !o->open             ? "open"
                          : !o->close            ? "close"
                          : !o->supports         ? "supports"
                          : !o->upload           ? "upload"
                          : !o->run              ? "run"
                          : !o->alloc            ? "alloc"
                          : !o->release          ? "release"
                          : !o->write            ? "write"
                          : !o->read             ? "read"
                          : !o->sync             ? "sync"
                          : !o->event_new        ? "event_new"
                          : !o->event_free       ? "event_free"
                          : !o->event_record     ? "event_record"
                          : !o->event_elapsed_ns ? "event_elapsed_ns"
                          : !pl->describe        ? "describe"
                          : !pl->copy            ? "copy"
                                                 : NULL;
    if (missing) {
        snprintf(why, size, "cannot load plugin: %.150s lacks the '%s' entry", p->path, missing);
        plugin_unload(p);
        return MQ_EBACKEND;
    }
    p->pl = pl;
    return MQ_OK;
}

/* ---- the vtable: probe and open load the plugin, the rest forwards ---- */

static void cul_probe(struct be_info *info)
{
    memset(info, 0, sizeof(*info));
    struct cul_plugin p;
    if (plugin_load(&p, info->reason, sizeof(info->reason)) == MQ_OK) {
        p.pl->ops->probe(info);
        plugin_unload(&p);
    }
    info->host_memory = false;
}

static int cul_open(const struct be_config *cfg, void **out)
{
    *out = NULL;
    struct cul_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return mq_error(MQ_ENOMEM, "cannot allocate the cuda backend");
    char why[256];
    int rc;
    if (plugin_load(&c->plugin, why, sizeof(why)) < 0) {
        rc = mq_error(MQ_EBACKEND, "backend 'cuda' is not usable here: %s", why);
        goto fail;
    }
    if ((rc = c->plugin.pl->ops->open(cfg, &c->ctx)) < 0)
        goto fail;
    *out = c;
    return MQ_OK;
fail:
    plugin_unload(&c->plugin);
    free(c);
    return rc;
}

static void cul_close(void *p)
{
    struct cul_ctx *c = p;
    if (!c)
        return;
    c->plugin.pl->ops->close(c->ctx);
    plugin_unload(&c->plugin);
    free(c);
}

#define OPS(p) (((struct cul_ctx *)(p))->plugin.pl->ops)
#define CTX(p) (((struct cul_ctx *)(p))->ctx)

static bool cul_supports(void *p, enum be_op op, enum mq_dtype type)
{
    return OPS(p)->supports(CTX(p), op, type);
}
static int cul_upload(void *p, struct be_tensor *t, const void *src)
{
    return OPS(p)->upload(CTX(p), t, src);
}
static int cul_run(void *p, const struct be_node *node)
{
    return OPS(p)->run(CTX(p), node);
}
static int cul_alloc(void *p, struct be_tensor *t)
{
    return OPS(p)->alloc(CTX(p), t);
}
static void cul_release(void *p, struct be_tensor *t)
{
    OPS(p)->release(CTX(p), t);
}
static int cul_sync(void *p)
{
    return OPS(p)->sync(CTX(p));
}
static int cul_event_new(void *p, void **ev)
{
    return OPS(p)->event_new(CTX(p), ev);
}
static void cul_event_free(void *p, void *ev)
{
    OPS(p)->event_free(CTX(p), ev);
}
static int cul_event_record(void *p, void *ev)
{
    return OPS(p)->event_record(CTX(p), ev);
}

static int cul_write(void *p, struct be_tensor *t, size_t offset, const void *src, size_t n)
{
    return OPS(p)->write(CTX(p), t, offset, src, n);
}

static int cul_read(void *p, const struct be_tensor *t, size_t offset, void *dst, size_t n)
{
    return OPS(p)->read(CTX(p), t, offset, dst, n);
}

static int cul_event_elapsed_ns(void *p, void *start, void *end, uint64_t *ns)
{
    return OPS(p)->event_elapsed_ns(CTX(p), start, end, ns);
}

const struct be_ops be_cuda_ops = {
    .abi = BE_ABI_VERSION,
    .name = "cuda",
    .summary = "NVIDIA GPUs (CUDA plugin): own GEMV and dp4a kernels, cuBLAS GEMM",
    .probe = cul_probe,
    .open = cul_open,
    .close = cul_close,
    .supports = cul_supports,
    .upload = cul_upload,
    .run = cul_run,
    .alloc = cul_alloc,
    .release = cul_release,
    .write = cul_write,
    .read = cul_read,
    .sync = cul_sync,
    .event_new = cul_event_new,
    .event_free = cul_event_free,
    .event_record = cul_event_record,
    .event_elapsed_ns = cul_event_elapsed_ns,
};

/* ---- the extras of cuda.h ---- */

int be_cuda_describe(struct be_cuda_device *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->papi_cuda, sizeof(out->papi_cuda), "%s", PAPI_CUDA_NOTE);
    struct cul_plugin p;
    if (plugin_load(&p, out->reason, sizeof(out->reason)) < 0) {
        snprintf(out->plugin_path, sizeof(out->plugin_path), "%s", p.path);
        snprintf(out->cupti, sizeof(out->cupti),
                 "unknown: the plugin, which checks for CUPTI, is not loaded");
        return MQ_EBACKEND;
    }
    snprintf(out->plugin_path, sizeof(out->plugin_path), "%s", p.path);
    int rc = p.pl->describe(out);
    plugin_unload(&p);
    return rc;
}

int be_cuda_copy(struct be_backend *be, struct be_tensor *dst, const struct be_tensor *src,
                 size_t n)
{
    if (be->ops != &be_cuda_ops)
        return mq_error(MQ_EINVAL, "device copy: backend '%s' is not cuda", be_name(be));
    if (n > dst->nbytes || n > src->nbytes)
        return mq_error(MQ_EINVAL, "device copy of %zu bytes: tensors hold %zu and %zu", n,
                        dst->nbytes, src->nbytes);
    struct cul_ctx *c = be->ctx;
    return c->plugin.pl->copy(c->ctx, dst->data, src->data, n);
}
