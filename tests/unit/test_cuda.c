/* tests/unit/test_cuda.c - the cuda backend: its loader everywhere, and on a machine with a
 * usable GPU what is particular to it: views of its split weight layouts refused, the F32
 * ops of the forward pass, NaN and Inf activations on the GEMV and GEMM paths, the forward
 * pass and token-by-token decode, asynchrony, sync and events.
 *
 * MATMUL and GET_ROWS of every format against the ref backend, with the error budgets
 * (2e-5 relative to sum |w x|; f16 GEMM on more than CU_GEMV_MAX_COLS = 8 columns 1e-3,
 * cuBLAS rounding activations to f16), and an out-of-range token id reported by the next
 * sync, are in tests/unit/test_backend_ops.c, which loops over every backend.
 *
 * Without a usable cuda backend (no plugin, no driver, no device) every test but the
 * loader's returns T_SKIP with the reason. The loader test runs everywhere: it checks that
 * the reason given is the right one for this machine (backends/cuda/cuda.h lists them).
 *
 * Budgets here: other ops 1e-5 relative to (1 + |ref|) (F32 arithmetic where ref uses
 * double; expf and the double pow/sin/cos of rope differ from glibc's by an ulp or two);
 * GEGLU 1e-3 (f16-rounded GELU: an ulp of the device tanhf can flip an f16 rounding),
 * SCALE exact. Attention with a sliding window and soft-capping runs on every head
 * dimension layout here; backend_ops/arch_ops_vs_ref has every op of the other
 * architectures on every backend.
 * Forward pass perplexity on the bundled model: 1e-4 relative for f32 and bf16, 2e-3 for
 * f16 (f16 activations in every GEMM) and the integer formats (activation codes are
 * re-quantized at every layer, so upstream rounding differences flip a few codes; the cpu
 * paths differ from ref by up to 4e-4 for the same reason).
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/cuda/cuda.h"
#include "core/dtype.h"
#include "core/status.h"
#include "llm/llama.h"
#include "model/eval.h"
#include "model/model.h"
#include "model/plan.h"
#include "profiler/measure.h"
#include "tests/unit/test.h"
#include "tokenizer/tokenizer.h"

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The cuda backend, opened, or NULL with why it is not usable. A backend that probes
 * usable but does not open is a failure (why says so, *failed is set). */
static struct be_backend *open_cuda(char *why, size_t size, bool *failed)
{
    struct be_info info;
    be_cuda_ops.probe(&info);
    *failed = false;
    if (!info.usable) {
        snprintf(why, size, "%s", info.reason);
        return NULL;
    }
    struct be_backend *be = NULL;
    if (be_open("cuda", NULL, &be) < 0) {
        snprintf(why, size, "the cuda backend probes usable but be_open failed");
        *failed = true;
        return NULL;
    }
    return be;
}

#define OPEN_CUDA(be)                                                                              \
    char why_[256];                                                                                \
    bool failed_;                                                                                  \
    struct be_backend *be = open_cuda(why_, sizeof(why_), &failed_);                               \
    T_CHECK_MSG(!failed_, "%s", why_);                                                             \
    T_SKIP_IF(!be, "cuda backend not usable: %s", why_)

/* ---- the loader: runs on every machine ---- */

static const char *const reason_phrases[] = {
    "plugin not built",   "no CUDA driver",      "cuBLAS missing",
    "cannot load plugin", "plugin ABI mismatch", "driver too old",
    "no CUDA device",     "device unsupported",  "CUDA error",
};

static bool known_reason(const char *r)
{
    for (size_t i = 0; i < sizeof(reason_phrases) / sizeof(reason_phrases[0]); i++)
        if (starts_with(r, reason_phrases[i]))
            return true;
    return false;
}

static bool have_driver(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (h)
        dlclose(h);
    return h != NULL;
}

static int probe_with_dir(const char *dir, struct be_info *info)
{
    const char *old = getenv("MIXQ_PLUGIN_DIR");
    char *saved = old ? strdup(old) : NULL;
    if (dir)
        setenv("MIXQ_PLUGIN_DIR", dir, 1);
    be_cuda_ops.probe(info);
    if (saved) {
        setenv("MIXQ_PLUGIN_DIR", saved, 1);
        free(saved);
    } else {
        unsetenv("MIXQ_PLUGIN_DIR");
    }
    return MQ_OK;
}

static int test_loader_reasons(void)
{
    T_CHECK(be_registry_find("cuda") == &be_cuda_ops);
    bool driver = have_driver();
    struct be_info info;

    /* a folder without the plugin */
    char empty[4200], junk_dir[4200], junk[4300];
    snprintf(empty, sizeof(empty), "%s/no-plugins", t_tmpdir());
    snprintf(junk_dir, sizeof(junk_dir), "%s/junk-plugin", t_tmpdir());
    snprintf(junk, sizeof(junk), "%s/libmixq-cuda.so", junk_dir);
    T_CHECK(mkdir(empty, 0755) == 0 || access(empty, F_OK) == 0);
    probe_with_dir(empty, &info);
    T_CHECK_MSG(!info.usable && starts_with(info.reason, "plugin not built"), "reason '%s'",
                info.reason);
    T_CHECK(strstr(info.reason, empty) != NULL);

    /* a file that is not a shared library: the driver check comes first */
    T_CHECK(mkdir(junk_dir, 0755) == 0 || access(junk_dir, F_OK) == 0);
    FILE *f = fopen(junk, "wb");
    T_CHECK(f);
    fputs("not an ELF file\n", f);
    fclose(f);
    probe_with_dir(junk_dir, &info);
    T_CHECK_MSG(!info.usable &&
                    starts_with(info.reason, driver ? "cannot load plugin" : "no CUDA driver"),
                "reason '%s' (driver %s)", info.reason, driver ? "present" : "absent");

    /* the real thing, wherever this build put it */
    char path[4300];
    bool built = be_cuda_plugin_path(path, sizeof(path)) == MQ_OK;
    probe_with_dir(NULL, &info);
    fprintf(stderr, "    plugin: %s\n    cuda backend: %s%s\n", built ? path : "(not found)",
            info.usable ? "usable: " : "disabled: ", info.usable ? info.detail : info.reason);
    if (!built)
        T_CHECK_MSG(!info.usable && starts_with(info.reason, "plugin not built"), "reason '%s'",
                    info.reason);
    else if (!driver)
        T_CHECK_MSG(!info.usable && starts_with(info.reason, "no CUDA driver"), "reason '%s'",
                    info.reason);
    else
        T_CHECK_MSG(info.usable || known_reason(info.reason), "reason '%s'", info.reason);
    T_CHECK(!info.host_memory);

    /* describe agrees with the probe */
    struct be_cuda_device dev;
    int rc = be_cuda_describe(&dev);
    T_CHECK(dev.usable == info.usable && (rc == MQ_OK) == info.usable);
    T_CHECK(starts_with(dev.papi_cuda, "no:"));
    if (!info.usable) {
        T_CHECK_MSG(strcmp(dev.reason, info.reason) == 0, "describe '%s' vs probe '%s'", dev.reason,
                    info.reason);
        struct be_backend *be = NULL;
        fprintf(stderr, "    (an error line about 'cuda' follows: be_open must refuse)\n");
        T_CHECK(be_open("cuda", NULL, &be) == MQ_EBACKEND && be == NULL);
    } else {
        T_CHECK(dev.sm_count > 0 && dev.mem_total_bytes > 0 && dev.cc_major >= 8 && dev.name[0]);
        T_CHECK(dev.driver_version >= dev.runtime_version / 1000 * 1000 && dev.cublas_version > 0);
        T_CHECK(dev.plugin_path[0] && dev.plugin_build[0] && dev.cupti[0]);
        fprintf(stderr, "    %s, sm_%d%d, %d SMs, %.1f GiB, %d/%d MHz, %.0f GB/s peak; cupti %s\n",
                dev.name, dev.cc_major, dev.cc_minor, dev.sm_count,
                (double)dev.mem_total_bytes / (1 << 30), dev.sm_clock_mhz, dev.mem_clock_mhz,
                dev.mem_peak_gb_s, dev.cupti);
    }
    return T_PASS;
}

/* ---- test data ---- */

enum fill_kind { FILL_RANDOM, FILL_ZERO_BLOCKS, FILL_HUGE, FILL_DENORMAL };

static void fill(float *x, int64_t n, unsigned long long seed, enum fill_kind kind)
{
    struct t_rng r = {seed};
    for (int64_t i = 0; i < n; i++) {
        float v = t_rng_float(&r);
        switch (kind) {
        case FILL_RANDOM: x[i] = v; break;
        case FILL_ZERO_BLOCKS: x[i] = (i / 32) % 3 == 1 ? 0.0f : v; break;
        case FILL_HUGE: x[i] = v * 6.0e4f; break;       /* near the f16 maximum */
        case FILL_DENORMAL: x[i] = v * 1.0e-39f; break; /* f32 subnormals */
        }
    }
}

/* ---- views of split weight layouts ---- */

/* Quantized weights live on the device in a split layout (scales apart from codes): a
 * view of some of their rows is refused, not misread. */
static int test_split_views(void)
{
    OPEN_CUDA(be);
    enum { K = 256, V = 37 }; /* K: one block of every format */
    static float w[K * V];
    static char wq[K * V * 4];
    fill(w, K * V, 5, FILL_RANDOM);
    int tested = 0;
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
        if (!tr->is_plan_format || !tr->is_quantized ||
            !be_supports(be, BE_OP_MATMUL, (enum mq_dtype)t))
            continue;
        tr->from_f32(w, wq, K * V);
        struct be_tensor tw, view, tx, tm;
        T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, V}, wq, BE_USE_MATRIX) ==
                MQ_OK);
        T_CHECK(be_view_rows(&tw, 1, 4, &view) == MQ_OK);
        T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, 1}) == MQ_OK);
        T_CHECK(be_alloc(be, &tm, MQ_DTYPE_F32, 2, (int64_t[]){4, 1}) == MQ_OK);
        fprintf(stderr, "    (an error line about views follows)\n");
        T_CHECK_MSG(
            be_run(be, &(struct be_node){.op = BE_OP_MATMUL, .src = {&view, &tx}, .dst = &tm}) ==
                MQ_EUNSUPPORTED,
            "%s: a view of split-layout weights was not refused", tr->name);
        be_free(be, &tx);
        be_free(be, &tm);
        be_free(be, &tw);
        tested++;
    }
    be_close(be);
    T_CHECK(tested >= 1);
    return T_PASS;
}

/* ---- the other ops of the forward pass ---- */

enum { OPS_OUT = 13 };
static const char *const op_names[OPS_OUT] = {
    "rmsnorm",           "rope norm",         "rope neox in place, factors",
    "attention",         "swiglu",            "add",
    "add in place",      "attention window",  "attention softcap+window",
    "geglu",             "add bias in place", "scale",
    "softcap in place"};
/* |cuda - ref| / (1 + |ref|) per op: 1e-5 (header), but GEGLU 1e-3 (ggml's f16-rounded
 * GELU: the device tanhf, 2 ulp from glibc's, can move gelu across an f16 rounding
 * boundary, one f16 ulp = 2^-10 relative) and exact for SCALE (one F32 multiply) */
static const double op_budgets[OPS_OUT] = {1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5,
                                           1e-5, 1e-5, 1e-3, 1e-5, 0.0,  1e-5};

struct ops_shape {
    int64_t D, H, Hkv, M, pos0;
};

static int run_ops(struct be_backend *be, const struct ops_shape *s, float *const in[4],
                   float *out[OPS_OUT])
{
    int64_t E = s->D * s->H, KV = s->D * s->Hkv, T = s->pos0 + s->M, M = s->M;
    size_t act = (size_t)(E * M) * 4;
    struct be_tensor x, g, k, v, ff, t[OPS_OUT];
    T_CHECK(be_alloc(be, &x, MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
    /* rope frequency factors (llama 3.1's rope_freqs) for the in-place neox rope's D dims */
    float ffv[512];
    for (int64_t i = 0; i < s->D / 2; i++)
        ffv[i] = 1.0f + 7.0f * (float)i / (float)(s->D / 2);
    T_CHECK(be_alloc(be, &ff, MQ_DTYPE_F32, 1, (int64_t[]){s->D / 2}) == MQ_OK);
    T_CHECK(be_write(be, &ff, 0, ffv, (size_t)(s->D / 2) * 4) == MQ_OK);
    T_CHECK(be_alloc(be, &g, MQ_DTYPE_F32, 1, (int64_t[]){E}) == MQ_OK);
    T_CHECK(be_alloc(be, &k, MQ_DTYPE_F32, 2, (int64_t[]){KV, T + 3}) ==
            MQ_OK); /* a cache longer than n_kv */
    T_CHECK(be_alloc(be, &v, MQ_DTYPE_F32, 2, (int64_t[]){KV, T + 3}) == MQ_OK);
    for (int i = 0; i < OPS_OUT; i++)
        T_CHECK(be_alloc(be, &t[i], MQ_DTYPE_F32, 2, (int64_t[]){E, M}) == MQ_OK);
    T_CHECK(be_write(be, &x, 0, in[0], act) == MQ_OK);
    T_CHECK(be_write(be, &g, 0, in[1], (size_t)E * 4) == MQ_OK);
    T_CHECK(be_write(be, &k, 0, in[2], (size_t)(KV * T) * 4) == MQ_OK);
    T_CHECK(be_write(be, &v, 0, in[3], (size_t)(KV * T) * 4) == MQ_OK);
    T_CHECK(be_write(be, &t[2], 0, in[0], act) == MQ_OK);
    T_CHECK(be_write(be, &t[6], 0, in[0], act) == MQ_OK);
    T_CHECK(be_write(be, &t[10], 0, in[0], act) == MQ_OK);
    T_CHECK(be_write(be, &t[12], 0, in[0], act) == MQ_OK);
    struct be_tensor x3, r3, n3;
    T_CHECK(be_view_reshape(&x, 3, (int64_t[]){s->D, s->H, M}, &x3) == MQ_OK);
    T_CHECK(be_view_reshape(&t[1], 3, (int64_t[]){s->D, s->H, M}, &r3) == MQ_OK);
    T_CHECK(be_view_reshape(&t[2], 3, (int64_t[]){s->D, s->H, M}, &n3) == MQ_OK);
    struct be_node nodes[] = {
        {.op = BE_OP_RMSNORM, .src = {&x, &g}, .dst = &t[0], .p.rmsnorm.eps = 1e-5f},
        {.op = BE_OP_ROPE,
         .src = {&x3},
         .dst = &r3,
         .p.rope = {.pos0 = s->pos0,
                    .n_rot = (int)s->D - 2,
                    .mode = BE_ROPE_NORM,
                    .theta = 10000.0f,
                    .freq_scale = 1.0f}},
        {.op = BE_OP_ROPE,
         .src = {&n3, &ff},
         .dst = &n3,
         .p.rope = {.pos0 = s->pos0,
                    .n_rot = (int)s->D,
                    .mode = BE_ROPE_NEOX,
                    .theta = 500000.0f,
                    .freq_scale = 0.5f,
                    .attn_factor = 1.19f}},
        {.op = BE_OP_ATTENTION,
         .src = {&r3, &k, &v},
         .dst = &t[3],
         .p.attention = {.pos0 = s->pos0, .n_kv = T, .scale = 0.3f}},
        {.op = BE_OP_SWIGLU, .src = {&x, &t[0]}, .dst = &t[4]},
        {.op = BE_OP_ADD, .src = {&x, &t[0]}, .dst = &t[5]},
        {.op = BE_OP_ADD, .src = {&t[6], &t[0]}, .dst = &t[6]},
        {.op = BE_OP_ATTENTION,
         .src = {&r3, &k, &v},
         .dst = &t[7],
         .p.attention = {.pos0 = s->pos0, .n_kv = T, .scale = 0.3f, .window = 9}},
        {.op = BE_OP_ATTENTION,
         .src = {&r3, &k, &v},
         .dst = &t[8],
         .p.attention = {.pos0 = s->pos0, .n_kv = T, .scale = 0.3f, .softcap = 1.5f, .window = 40}},
        {.op = BE_OP_GEGLU, .src = {&x, &t[0]}, .dst = &t[9]},
        {.op = BE_OP_ADD, .src = {&t[10], &g}, .dst = &t[10]},
        {.op = BE_OP_SCALE, .src = {&x}, .dst = &t[11], .p.scale.s = 0.0625f},
        {.op = BE_OP_SOFTCAP, .src = {&t[12]}, .dst = &t[12], .p.softcap.cap = 4.0f},
    };
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
        T_CHECK(be_run(be, &nodes[i]) == MQ_OK);
    for (int i = 0; i < OPS_OUT; i++)
        T_CHECK(be_read(be, &t[i], 0, out[i], act) == MQ_OK);
    be_free(be, &x);
    be_free(be, &g);
    be_free(be, &k);
    be_free(be, &v);
    be_free(be, &ff);
    for (int i = 0; i < OPS_OUT; i++)
        be_free(be, &t[i]);
    return T_PASS;
}

static int check_ops(struct be_backend *cu, struct be_backend *ref, const struct ops_shape *s)
{
    int64_t E = s->D * s->H, KV = s->D * s->Hkv, T = s->pos0 + s->M, M = s->M;
    float *buf = malloc((size_t)(E * M * (1 + 2 * OPS_OUT) + E + 2 * KV * T) * sizeof(float));
    T_CHECK(buf);
    float *x = buf, *g = x + E * M, *k = g + E, *v = k + KV * T, *o = v + KV * T;
    fill(x, E * M, 1, FILL_RANDOM);
    fill(g, E, 2, FILL_RANDOM);
    fill(k, KV * T, 3, FILL_RANDOM);
    fill(v, KV * T, 4, FILL_RANDOM);
    for (int64_t i = 0; i < E * M; i += 7)
        x[i] *= 9.0f; /* a few large gate values for silu */
    float *in[4] = {x, g, k, v}, *ro[OPS_OUT], *co[OPS_OUT];
    for (int i = 0; i < OPS_OUT; i++) {
        ro[i] = o + (size_t)(2 * i) * (size_t)(E * M);
        co[i] = ro[i] + E * M;
    }
    int rc = T_FAIL;
    if (run_ops(ref, s, in, ro) != T_PASS || run_ops(cu, s, in, co) != T_PASS)
        goto done;
    for (int op = 0; op < OPS_OUT; op++)
        for (int64_t j = 0; j < E * M; j++) {
            double d = fabs((double)co[op][j] - (double)ro[op][j]);
            if (!(d <= op_budgets[op] * (1.0 + fabs((double)ro[op][j])))) {
                fprintf(stderr,
                        "    D=%lld H=%lld Hkv=%lld M=%lld pos0=%lld %s[%lld]: cuda %g ref %g\n",
                        (long long)s->D, (long long)s->H, (long long)s->Hkv, (long long)M,
                        (long long)s->pos0, op_names[op], (long long)j, (double)co[op][j],
                        (double)ro[op][j]);
                goto done;
            }
        }
    rc = T_PASS;
done:
    free(buf);
    return rc;
}

static int test_ops_vs_ref(void)
{
    OPEN_CUDA(cu);
    struct be_backend *ref;
    T_CHECK(be_open("ref", NULL, &ref) == MQ_OK);
    /* head dims for every attention register layout (<= 32, 64, 128, 256), odd ones too;
     * MQA, GQA and MHA; decode (M = 1) and prefill; long contexts */
    static const struct ops_shape shapes[] = {
        {24, 6, 2, 5, 37}, {64, 8, 1, 1, 700},   {128, 4, 4, 3, 300},
        {96, 6, 3, 17, 0}, {256, 2, 1, 2, 1500},
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        if (check_ops(cu, ref, &shapes[i]) != T_PASS)
            return T_FAIL;
    be_close(ref);
    be_close(cu);
    return T_PASS;
}

/* ---- non-finite activations: the columns that hold them, and only those, go non-finite ---- */

static int test_nonfinite(void)
{
    OPEN_CUDA(be);
    enum { K = 256, N = 19, MMAX = 12 }; /* K: one block of every format */
    static float w[K * N], x[K * MMAX], y[N * MMAX], y_clean[N * MMAX];
    static char wq[K * N * 4];
    fill(w, K * N, 7, FILL_RANDOM);
    static const int64_t col_counts[] = {3, MMAX}; /* the GEMV and the GEMM paths */
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
        if (!tr->is_plan_format)
            continue;
        if (!be_supports(be, BE_OP_MATMUL, (enum mq_dtype)t)) {
            fprintf(stderr, "    %s: unsupported (test_backend_ops fails it), skipped\n", tr->name);
            continue;
        }
        tr->from_f32(w, wq, K * N);
        for (size_t ci = 0; ci < sizeof(col_counts) / sizeof(col_counts[0]); ci++) {
            int64_t M = col_counts[ci];
            struct be_tensor tw, tx, ty;
            T_CHECK(be_upload(be, &tw, (enum mq_dtype)t, 2, (int64_t[]){K, N}, wq, BE_USE_MATRIX) ==
                    MQ_OK);
            T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
            T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M}) == MQ_OK);
            for (int pass = 0; pass < 2; pass++) {
                fill(x, K * M, 8, FILL_RANDOM);
                if (pass) {
                    x[5] = NAN;               /* column 0 */
                    x[2 * K + 40] = INFINITY; /* column 2 */
                }
                T_CHECK(be_write(be, &tx, 0, x, (size_t)(K * M) * 4) == MQ_OK);
                T_CHECK(be_run(be, &(struct be_node){.op = BE_OP_MATMUL,
                                                     .src = {&tw, &tx},
                                                     .dst = &ty}) == MQ_OK);
                T_CHECK(be_read(be, &ty, 0, pass ? y : y_clean, (size_t)(N * M) * 4) == MQ_OK);
            }
            for (int64_t m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    if (m == 0 || m == 2)
                        T_CHECK_MSG(!isfinite(y[m * N + n]),
                                    "%s M=%lld: column %lld row %d is finite", tr->name,
                                    (long long)M, (long long)m, n);
                    else
                        T_CHECK_MSG(y[m * N + n] == y_clean[m * N + n],
                                    "%s M=%lld: clean column %lld changed", tr->name, (long long)M,
                                    (long long)m);
                }
            be_free(be, &tw);
            be_free(be, &tx);
            be_free(be, &ty);
        }
    }
    be_close(be);
    return T_PASS;
}

/* ---- asynchrony, sync, read-after-run and events ---- */

static int test_async_events(void)
{
    OPEN_CUDA(be);
    enum { K = 4096, N = 4096, M = 512 };
    struct be_tensor tw, tx, ty;
    float *wf = malloc((size_t)K * N * sizeof(float)), *x = malloc((size_t)K * M * sizeof(float));
    float *y = malloc((size_t)N * M * sizeof(float)), *y2 = malloc((size_t)N * M * sizeof(float));
    T_CHECK(wf && x && y && y2);
    fill(wf, (int64_t)K * N, 21, FILL_RANDOM);
    fill(x, (int64_t)K * M, 22, FILL_RANDOM);
    T_CHECK(be_upload(be, &tw, MQ_DTYPE_F32, 2, (int64_t[]){K, N}, wf, BE_USE_MATRIX) == MQ_OK);
    T_CHECK(be_alloc(be, &tx, MQ_DTYPE_F32, 2, (int64_t[]){K, M}) == MQ_OK);
    T_CHECK(be_alloc(be, &ty, MQ_DTYPE_F32, 2, (int64_t[]){N, M}) == MQ_OK);
    T_CHECK(be_write(be, &tx, 0, x, (size_t)K * M * sizeof(float)) == MQ_OK);
    struct be_node mm = {.op = BE_OP_MATMUL, .src = {&tw, &tx}, .dst = &ty};
    T_CHECK(be_run(be, &mm) == MQ_OK);
    T_CHECK(be_read(be, &ty, 0, y, (size_t)N * M * sizeof(float)) == MQ_OK);

    void *e0 = NULL, *e1 = NULL;
    T_CHECK(be_event_new(be, &e0) == MQ_OK && be_event_new(be, &e1) == MQ_OK);
    /* enough work that the device takes >= 20 ms; issuing it must return well before */
    int runs = 4;
    uint64_t dev_ns = 0, issue_ns = 0, total_ns = 0;
    for (int attempt = 0; attempt < 8; attempt++, runs *= 2) {
        T_CHECK(be_sync(be) == MQ_OK);
        uint64_t t0 = prof_now_ns();
        T_CHECK(be_event_record(be, e0) == MQ_OK);
        for (int r = 0; r < runs; r++)
            T_CHECK(be_run(be, &mm) == MQ_OK);
        T_CHECK(be_event_record(be, e1) == MQ_OK);
        uint64_t t1 = prof_now_ns();
        T_CHECK(be_sync(be) == MQ_OK);
        uint64_t t2 = prof_now_ns();
        T_CHECK(be_event_elapsed_ns(be, e0, e1, &dev_ns) == MQ_OK);
        issue_ns = t1 - t0;
        total_ns = t2 - t0;
        if (dev_ns >= 20000000)
            break;
    }
    fprintf(
        stderr,
        "    %d f32 GEMMs %dx%dx%d: issued in %.2f ms, done after %.2f ms, device time %.2f ms\n",
        runs, N, K, M, issue_ns / 1e6, total_ns / 1e6, dev_ns / 1e6);
    T_CHECK(dev_ns >= 20000000);
    T_CHECK_MSG(dev_ns <= total_ns + 1000000, "device time %.3f ms > wall time %.3f ms",
                dev_ns / 1e6, total_ns / 1e6);
    T_CHECK_MSG(issue_ns * 2 < total_ns, "be_run is not asynchronous: issue %.3f ms of %.3f ms",
                issue_ns / 1e6, total_ns / 1e6);
    /* events out of order are an error, not a negative time */
    uint64_t ns;
    fprintf(stderr, "    (an error line about event order follows)\n");
    T_CHECK(be_event_elapsed_ns(be, e1, e0, &ns) < 0);

    /* be_read waits for the work before it: overwrite x, run, read without a sync */
    for (int64_t i = 0; i < (int64_t)K * M; i++)
        x[i] = -x[i];
    T_CHECK(be_write(be, &tx, 0, x, (size_t)K * M * sizeof(float)) == MQ_OK);
    T_CHECK(be_run(be, &mm) == MQ_OK);
    T_CHECK(be_read(be, &ty, 0, y2, (size_t)N * M * sizeof(float)) == MQ_OK);
    for (int64_t i = 0; i < (int64_t)N * M; i += 997)
        T_CHECK_MSG(y2[i] == -y[i], "y[%lld]: %g, want %g", (long long)i, (double)y2[i],
                    (double)-y[i]);

    be_event_free(be, e0);
    be_event_free(be, e1);
    be_free(be, &tw);
    be_free(be, &tx);
    be_free(be, &ty);
    be_close(be);
    free(wf);
    free(x);
    free(y);
    free(y2);
    return T_PASS;
}

/* ---- the forward pass on the bundled model ---- */

static int test_forward_vs_ref(void)
{
    OPEN_CUDA(cu);
    struct mq_model *m;
    T_CHECK(mq_model_load("examples/tinyllm/tinyllm.gguf", &m) == MQ_OK);
    FILE *f = fopen("examples/data/kjv-eval.txt", "rb");
    T_CHECK(f);
    static char text[4096];
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    int32_t *toks;
    size_t n_toks;
    T_CHECK(mq_vocab_tokenize(m->vocab, text, len, true, &toks, &n_toks) == MQ_OK);
    struct be_backend *ref;
    T_CHECK(be_open("ref", NULL, &ref) == MQ_OK);
    enum { DECODE = 12 };
    int64_t V = m->hp.n_vocab;
    float *lr = malloc((size_t)(DECODE * V) * sizeof(float)),
          *lc = malloc((size_t)(DECODE * V) * sizeof(float));
    T_CHECK(lr && lc);
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        enum mq_dtype fmt = (enum mq_dtype)t;
        if (!mq_dtype_get(fmt)->is_plan_format)
            continue;
        struct mq_plan *plan;
        T_CHECK(mq_plan_uniform(m, fmt, &plan) == MQ_OK);
        bool supported = true;
        for (int i = 0; i < plan->n_layers; i++)
            supported &= be_supports(cu, BE_OP_MATMUL, plan->fmt[i]);
        mq_plan_free(plan);
        if (!supported) {
            fprintf(stderr, "    %-6s unsupported (test_backend_ops fails it), skipped\n",
                    mq_dtype_name(fmt));
            continue;
        }
        double ppl[2];
        struct be_backend *bes[2] = {ref, cu};
        float *logits[2] = {lr, lc};
        for (int b = 0; b < 2; b++) {
            struct mq_plan *p;
            struct mq_eval *ev;
            struct mq_eval_result r;
            T_CHECK(mq_plan_uniform(m, fmt, &p) == MQ_OK);
            T_CHECK(mq_eval_new(m, bes[b], toks, n_toks,
                                &(struct mq_eval_config){.n_ctx = 256, .max_chunks = 2},
                                &ev) == MQ_OK);
            T_CHECK(mq_eval_plan(ev, p, NULL, &r) == MQ_OK);
            mq_eval_free(ev);
            ppl[b] = r.ppl;
            /* decode one token at a time: the GEMV paths and attention at growing positions */
            struct mq_llama *l;
            T_CHECK(mq_llama_new(m, p, bes[b],
                                 &(struct mq_llama_config){.n_ctx = 256, .n_batch = 1},
                                 &l) == MQ_OK);
            for (int64_t i = 0; i < DECODE; i++)
                T_CHECK(mq_llama_decode(l, &toks[i], 1, i, logits[b] + i * V) == MQ_OK);
            mq_llama_free(l);
            mq_plan_free(p);
        }
        bool integer = mq_dtype_get(fmt)->is_quantized;
        double tol = integer || fmt == MQ_DTYPE_F16 ? 2e-3 : 1e-4;
        fprintf(stderr, "    %-5s ppl %.6f (ref %.6f, rel %.2e)\n", mq_dtype_name(fmt), ppl[1],
                ppl[0], fabs(ppl[1] / ppl[0] - 1.0));
        T_CHECK_MSG(fabs(ppl[1] / ppl[0] - 1.0) < tol, "%s: ppl %.6f vs ref %.6f",
                    mq_dtype_name(fmt), ppl[1], ppl[0]);
        /* float formats decode with exactly widened weights: logits within 1e-4 of the
         * largest; integer formats re-quantize activations, so only a loose 5e-2 */
        for (int64_t i = 0; i < DECODE; i++) {
            double worst = 0, big = 0;
            for (int64_t v = 0; v < V; v++) {
                worst = fmax(worst, fabs((double)lc[i * V + v] - (double)lr[i * V + v]));
                big = fmax(big, fabs((double)lr[i * V + v]));
            }
            if (!integer)
                T_CHECK_MSG(worst <= 1e-4 * (1.0 + big), "%s decode %lld: logits differ by %g",
                            mq_dtype_name(fmt), (long long)i, worst);
            else
                T_CHECK_MSG(worst <= 5e-2 * (1.0 + big), "%s decode %lld: logits differ by %g",
                            mq_dtype_name(fmt), (long long)i, worst);
        }
    }
    free(lr);
    free(lc);
    be_close(ref);
    be_close(cu);
    free(toks);
    mq_model_free(m);
    return T_PASS;
}

const struct mq_test cuda_tests[] = {
    {"cuda/loader_reasons", test_loader_reasons},
    {"cuda/split_views_refused", test_split_views},
    {"cuda/ops_vs_ref", test_ops_vs_ref},
    {"cuda/nonfinite", test_nonfinite},
    {"cuda/async_events", test_async_events},
    {"cuda/forward_vs_ref", test_forward_vs_ref},
    {NULL, NULL},
};
