/* bench/cuda.c - the cuda backend's kernels against the GPU's own copy bandwidth.
 *
 *   build/bench-cuda [--out FILE] [--quick]
 *
 * Measures, on the device MIXQ_CUDA_DEVICE (default 0): device-to-device copy bandwidth
 * (cudaMemcpyAsync of 256 MiB, counted as bytes read + bytes written, as NVIDIA's
 * bandwidthTest counts it); each weight format's matrix-vector product (decode, batch 1)
 * at real model shapes (those whose K the format's blocks divide), rotating through enough copies
 * of the weights that none is in L2, as GB/s of weight bytes and as a fraction of the copy
 * bandwidth; and matrix-matrix products at batch 64, 512 and 4096 as TFLOP/s. Every figure is
 * device time from CUDA events around a run of several back-to-back ops, through the backend's own
 * op (activation quantization and conversion included), with warm-up runs discarded and
 * repetitions, min, median and MAD reported. Writes YAML to stdout and to FILE (default
 * build/bench/cuda.yaml). Never asserts times.
 *
 * Exit status: 0 done, 77 skipped (no usable cuda backend: the reason is printed), 1 error.
 *
 * Shapes are written N x K: N output rows, K inputs (a PyTorch Linear's weight shape).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/backend.h"
#include "backends/cuda/cuda.h"
#include "bench/mm.h"
#include "core/dtype.h"
#include "core/status.h"
#include "profiler/measure.h"
#include "reports/yaml_write.h"

#define COPY_BYTES ((size_t)256 << 20)
#define COLD_BYTES ((size_t)512 << 20) /* GEMV weights rotated per run: 10 x an H100's L2 */
#define MAX_SAMPLES 200

struct timer {
    struct be_backend *be;
    void *e0, *e1;
};

typedef int (*run_fn)(void *arg);

/* Device time of one call of fn, from runs back-to-back calls between two events per
 * sample; warm-up samples discarded, then samples until min_reps and max_seconds. */
static int measure(struct timer *t, run_fn fn, void *arg, int runs, int min_reps,
                   double max_seconds, struct prof_stats *st)
{
    double samples[MAX_SAMPLES];
    int n = 0, rc;
    uint64_t t0 = prof_now_ns();
    for (int i = -2; i < MAX_SAMPLES; i++) {
        if ((rc = be_event_record(t->be, t->e0)) < 0)
            return rc;
        for (int r = 0; r < runs; r++)
            if ((rc = fn(arg)) < 0)
                return rc;
        uint64_t ns;
        if ((rc = be_event_record(t->be, t->e1)) < 0 ||
            (rc = be_event_elapsed_ns(t->be, t->e0, t->e1, &ns)) < 0)
            return rc;
        if (i < 0)
            continue; /* warm-up */
        samples[n++] = (double)ns / runs;
        if (n >= min_reps && (double)(prof_now_ns() - t0) > max_seconds * 1e9)
            break;
    }
    if ((rc = be_sync(t->be)) < 0)
        return rc;
    prof_stats_from(samples, n, st);
    return MQ_OK;
}

/* ---- copy bandwidth ---- */

struct copy_run {
    struct be_backend *be;
    struct be_tensor a, b;
};

static int copy_once(void *arg)
{
    struct copy_run *r = arg;
    return be_cuda_copy(r->be, &r->b, &r->a, r->a.nbytes);
}

static int bench_copy(struct timer *t, size_t bytes, struct prof_stats *st)
{
    struct copy_run r = {.be = t->be};
    int64_t n = (int64_t)(bytes / sizeof(float));
    int rc;
    if ((rc = be_alloc(t->be, &r.a, MQ_DTYPE_F32, 1, &n)) == MQ_OK &&
        (rc = be_alloc(t->be, &r.b, MQ_DTYPE_F32, 1, &n)) == MQ_OK)
        rc = measure(t, copy_once, &r, 4, 10, 1.0, st);
    be_free(t->be, &r.a);
    be_free(t->be, &r.b);
    return rc;
}

/* ---- matmul through the backend (bench/mm.h) ---- */

static int bench_mm(struct timer *t, enum mq_dtype type, struct bench_shape s, int64_t M,
                    size_t cold_bytes, struct prof_stats *st, double *weight_bytes)
{
    struct mm_run r;
    int rc = mm_setup(&r, t->be, type, s, M, cold_bytes, 1, 64, weight_bytes);
    if (rc == MQ_OK) {
        /* enough back-to-back runs per sample that event resolution (~0.5 us) is noise */
        int runs = r.n_copies > 8 ? r.n_copies : 8;
        if (M >= 512)
            runs = 3;
        rc = measure(t, mm_once, &r, runs, 7, 1.5, st);
    }
    mm_release(&r);
    return rc;
}

static void emit_device(struct rpt_yw *w, const struct be_cuda_device *d)
{
    char buf[64];
    rpt_yw_key(w, "device");
    rpt_yw_map(w);
    rpt_yw_kv_int(w, "index", d->device);
    rpt_yw_kv_str(w, "name", d->name);
    rpt_yw_kv_str(w, "pci_bus_id", d->pci_bus_id);
    snprintf(buf, sizeof(buf), "%d.%d", d->cc_major, d->cc_minor);
    rpt_yw_kv_str(w, "compute_capability", buf);
    rpt_yw_kv_int(w, "sm_count", d->sm_count);
    rpt_yw_kv_int(w, "memory_bytes", (int64_t)d->mem_total_bytes);
    rpt_yw_kv_int(w, "l2_bytes", (int64_t)d->l2_bytes);
    rpt_yw_kv_int(w, "sm_clock_mhz", d->sm_clock_mhz);
    rpt_yw_kv_int(w, "memory_clock_mhz", d->mem_clock_mhz);
    rpt_yw_kv_int(w, "memory_bus_bits", d->mem_bus_bits);
    rpt_yw_kv_num(w, "memory_peak_gb_s", d->mem_peak_gb_s, 5);
    rpt_yw_kv_bool(w, "ecc", d->ecc);
    snprintf(buf, sizeof(buf), "%d.%d", d->driver_version / 1000, d->driver_version % 1000 / 10);
    rpt_yw_kv_str(w, "driver_cuda", buf);
    snprintf(buf, sizeof(buf), "%d.%d", d->runtime_version / 1000, d->runtime_version % 1000 / 10);
    rpt_yw_kv_str(w, "runtime_cuda", buf);
    snprintf(buf, sizeof(buf), "%d.%d.%d", d->cublas_version / 10000, d->cublas_version / 100 % 100,
             d->cublas_version % 100);
    rpt_yw_kv_str(w, "cublas", buf);
    rpt_yw_kv_str(w, "plugin", d->plugin_path);
    rpt_yw_kv_str(w, "plugin_build", d->plugin_build);
    rpt_yw_kv_str(w, "cupti", d->cupti);
    rpt_yw_kv_str(w, "papi_cuda", d->papi_cuda);
    rpt_yw_end(w);
}

static void emit_stats(struct rpt_yw *w, const struct prof_stats *st)
{
    rpt_yw_kv_int(w, "reps", st->reps);
    rpt_yw_kv_num(w, "median_us", st->median_ns / 1e3, 5);
    rpt_yw_kv_num(w, "min_us", st->min_ns / 1e3, 5);
    rpt_yw_kv_num(w, "mad_us", st->mad_ns / 1e3, 3);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"quick", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = "build/bench/cuda.yaml";
    bool quick = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'q': quick = true; break;
        case 'h': printf("usage: bench-cuda [--out FILE] [--quick]\n"); return 0;
        default: return 2;
        }
    }
    struct be_info info;
    be_cuda_ops.probe(&info);
    if (!info.usable) {
        fprintf(stderr, "bench-cuda: skipped: the cuda backend is not usable here: %s\n",
                info.reason);
        return 77;
    }
    struct be_cuda_device dev;
    if (be_cuda_describe(&dev) < 0) {
        fprintf(stderr, "bench-cuda: skipped: %s\n", dev.reason);
        return 77;
    }
    struct be_backend *be;
    if (be_open("cuda", NULL, &be) < 0)
        return 1;
    struct timer t = {.be = be};
    if (be_event_new(be, &t.e0) < 0 || be_event_new(be, &t.e1) < 0)
        return 1;

    size_t copy_bytes = COPY_BYTES, cold_bytes = COLD_BYTES;
    if (dev.mem_free_bytes && copy_bytes > dev.mem_free_bytes / 4)
        copy_bytes = dev.mem_free_bytes / 4 / 256 * 256;
    if (dev.mem_free_bytes && cold_bytes > dev.mem_free_bytes / 3)
        cold_bytes = dev.mem_free_bytes / 3;
    fprintf(stderr, "bench-cuda: %s: device-to-device copy, %zu MiB\n", dev.name, copy_bytes >> 20);
    struct prof_stats copy_st;
    if (bench_copy(&t, copy_bytes, &copy_st) < 0)
        return 1;
    double copy_gbs = 2.0 * (double)copy_bytes / copy_st.median_ns;

    static const struct bench_shape gemv_shapes[] = {
        {"4096x4096", 4096, 4096},
        {"11008x4096", 11008, 4096},
        {"4096x11008", 4096, 11008},
        {"14336x4096", 14336, 4096},
        {"tinyllm ffn_up 512x192", 512, 192},
    };
    static const struct bench_shape gemm_shape = {"4096x4096", 4096, 4096};
    static const int64_t gemm_batches[] = {64, 512, 4096};
    /* every plan format the backend runs, f32 last (the slowest) */
    static const enum mq_dtype formats[] = {
        MQ_DTYPE_F16,  MQ_DTYPE_BF16, MQ_DTYPE_Q8_0,   MQ_DTYPE_Q4_0,   MQ_DTYPE_Q4_1,
        MQ_DTYPE_Q5_0, MQ_DTYPE_Q5_1, MQ_DTYPE_IQ4_NL, MQ_DTYPE_Q2_K,   MQ_DTYPE_Q3_K,
        MQ_DTYPE_Q4_K, MQ_DTYPE_Q5_K, MQ_DTYPE_Q6_K,   MQ_DTYPE_IQ4_XS, MQ_DTYPE_F32,
    };
    int n_gemv = quick ? 1 : (int)(sizeof(gemv_shapes) / sizeof(gemv_shapes[0]));
    int n_gemm = quick ? 1 : (int)(sizeof(gemm_batches) / sizeof(gemm_batches[0]));

    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdir(dir, 0755);
    }
    struct rpt_yw w;
    if (rpt_yw_open(&w, out, "bench-cuda/1") < 0)
        return 1;
    rpt_yw_kv_str(&w, "units",
                  "device time (CUDA events) in microseconds; bandwidth in GB/s (1e9 bytes); GEMV "
                  "bandwidth counts weight bytes; copy bandwidth counts bytes read + written; "
                  "TFLOP/s with 2 ops per multiply-add; shapes N x K");
    rpt_yw_kv_str(&w, "backend", info.detail);
    emit_device(&w, &dev);
    rpt_yw_key(&w, "limits");
    rpt_yw_map(&w);
    rpt_yw_kv_num(&w, "d2d_copy_gb_s", copy_gbs, 5);
    rpt_yw_kv_int(&w, "d2d_copy_bytes", (int64_t)copy_bytes);
    emit_stats(&w, &copy_st);
    rpt_yw_end(&w);
    rpt_yw_key(&w, "kernels");
    rpt_yw_seq(&w);
    int status = 0;
    for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]) && !status; f++) {
        for (int kind = 0; kind < 2 && !status; kind++) { /* gemv, gemm */
            int n = kind == 0 ? n_gemv : n_gemm;
            for (int i = 0; i < n; i++) {
                struct bench_shape sh = kind == 0 ? gemv_shapes[i] : gemm_shape;
                int64_t M = kind == 0 ? 1 : gemm_batches[i];
                if (!mq_dtype_row_ok(formats[f], sh.K) ||
                    !be_supports(be, BE_OP_MATMUL, formats[f]))
                    continue; /* e.g. K = 192 for the 256-blocks */
                struct prof_stats st;
                double wbytes;
                fprintf(stderr, "bench-cuda: %s %s %s M=%lld\n", mq_dtype_name(formats[f]),
                        kind ? "gemm" : "gemv", sh.name, (long long)M);
                if (bench_mm(&t, formats[f], sh, M, kind == 0 ? cold_bytes : 0, &st, &wbytes) < 0) {
                    status = 1;
                    break;
                }
                double gbs = wbytes / st.median_ns;
                double tflops = 2.0 * (double)sh.N * (double)sh.K * (double)M / st.median_ns / 1e3;
                rpt_yw_map(&w);
                rpt_yw_kv_str(&w, "kernel", kind == 0 ? "gemv" : "gemm");
                rpt_yw_kv_str(&w, "format", mq_dtype_name(formats[f]));
                rpt_yw_kv_str(&w, "shape", sh.name);
                rpt_yw_kv_int(&w, "batch", M);
                emit_stats(&w, &st);
                rpt_yw_kv_num(&w, "weight_gb_s", gbs, 5);
                rpt_yw_kv_num(&w, "tflop_s", tflops, 4);
                if (kind == 0)
                    rpt_yw_kv_num(&w, "fraction_of_d2d_copy", gbs / copy_gbs, 3);
                rpt_yw_end(&w);
            }
        }
    }
    be_event_free(be, t.e0);
    be_event_free(be, t.e1);
    be_close(be);
    if (rpt_yw_close(&w) < 0 || status)
        return 1;
    FILE *fp = fopen(out, "r");
    if (fp) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
            fwrite(buf, 1, n, stdout);
        fclose(fp);
    }
    return 0;
}
