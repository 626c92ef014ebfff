/* bench/kernels.c - the cpu backend's kernels against this machine's limits.
 *
 *   build/bench-kernels [--threads N] [--out FILE] [--quick]
 *
 * Measures, in one run: DRAM read bandwidth (a 512 MiB buffer, far beyond the last-level
 * cache) with 1 and N threads; peak F32 FMA, INT8 dot-product and BF16 dot-product
 * throughput with 1 and N threads; then each weight format's matrix-vector product
 * (decode) at real model shapes, with enough copies of the weights that every repetition
 * reads them from DRAM, and matrix-matrix products (prefill) at batch 64 and 512, with
 * 1 and N threads, through the backend's own op (activation quantization included).
 * Writes YAML to stdout and to FILE (default build/bench/kernels.yaml). Never asserts
 * times: it reports them.
 *
 * Shapes are written N x K: N output rows, K inputs (a PyTorch Linear's weight shape).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/backend.h"
#include "bench/mm.h"
#include "profiler/limits.h"
#include "core/dtype.h"
#include "core/pool.h"
#include "core/status.h"
#include "profiler/measure.h"
#include "reports/yaml_write.h"

#define COLD_BYTES ((size_t)256 << 20) /* GEMV weights rotated per repetition: 8 x the LLC */

/* ---- kernels through the backend ---- */

/* The weights of one GEMV rotate through copies filling COLD_BYTES (at least 2), so every
 * repetition reads them from DRAM; GEMMs use one copy. */
static int bench_mm(struct be_backend *be, enum mq_dtype type, struct bench_shape s, int64_t M, bool cold,
                    struct prof_stats *st, double *weight_bytes)
{
    struct mm_run r;
    int rc = mm_setup(&r, be, type, s, M, cold ? COLD_BYTES : 0, 2, 1 << 20, weight_bytes);
    if (rc == MQ_OK)
        rc = prof_measure(mm_once, &r, &(struct prof_config){.min_reps = cold ? 3 * r.n_copies : 5, .max_seconds = 1.5}, st);
    mm_release(&r);
    return rc;
}

static void emit_limits(struct rpt_yw *w, const struct prof_limits *L, int threads)
{
    rpt_yw_key(w, "limits");
    rpt_yw_map(w);
    int counts[2] = {1, threads};
    for (int t = 0; t < 2; t++) {
        char key[32];
        snprintf(key, sizeof(key), "threads_%d", counts[t]);
        rpt_yw_key(w, key);
        rpt_yw_map(w);
        rpt_yw_kv_num(w, "dram_read_gb_s", L->read_gbs[t], 4);
        rpt_yw_kv_num(w, "f32_fma_gflop_s", L->fma_gflops[t], 4);
        rpt_yw_kv_num(w, "int8_dot_gop_s", L->i8_gops[t], 4);
        rpt_yw_kv_num(w, "bf16_dot_gflop_s", L->bf16_gflops[t], 4);
        rpt_yw_end(w);
    }
    rpt_yw_kv_str(w, "f32_fma_instructions", L->fma_isa ? L->fma_isa : "none");
    rpt_yw_kv_str(w, "int8_dot_instructions", L->i8_isa ? L->i8_isa : "none");
    rpt_yw_kv_str(w, "bf16_dot_instructions", L->bf16_isa ? L->bf16_isa : "none");
    rpt_yw_kv_int(w, "dram_buffer_mib", 512);
    rpt_yw_end(w);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"threads", required_argument, NULL, 't'}, {"out", required_argument, NULL, 'o'},
        {"quick", no_argument, NULL, 'q'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int threads = mq_pool_default_threads();
    const char *out = "build/bench/kernels.yaml";
    bool quick = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': threads = atoi(optarg); break;
        case 'o': out = optarg; break;
        case 'q': quick = true; break;
        case 'h':
            printf("usage: bench-kernels [--threads N] [--out FILE] [--quick]\n");
            return 0;
        default: return 2;
        }
    }
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "bench-kernels: --threads must be 1..1024\n");
        return 2;
    }
    struct prof_limits L;
    fprintf(stderr, "bench-kernels: measuring limits (%d threads)\n", threads);
    if (prof_limits_measure(threads, &L) < 0)
        return 1;

    static const struct bench_shape gemv_shapes[] = {
        {"4096x4096", 4096, 4096},   {"11008x4096", 11008, 4096}, {"4096x11008", 4096, 11008},
        {"14336x4096", 14336, 4096}, {"tinyllm ffn_up 512x192", 512, 192},
        {"tinyllm ffn_down 192x512", 192, 512},
    };
    static const struct bench_shape gemm_shape = {"4096x4096", 4096, 4096};
    static const enum mq_dtype formats[] = {MQ_DTYPE_F16, MQ_DTYPE_BF16, MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_0};
    int n_gemv = quick ? 1 : (int)(sizeof(gemv_shapes) / sizeof(gemv_shapes[0]));

    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdir(dir, 0755);
    }
    struct rpt_yw w;
    if (rpt_yw_open(&w, out, "bench-kernels/1") < 0)
        return 1;
    rpt_yw_kv_str(&w, "units", "time in microseconds; bandwidth in GB/s (1e9 bytes) of weight bytes; "
                               "throughput in GOP/s (2 ops per multiply-add); shapes N x K");
    rpt_yw_kv_num(&w, "timer_overhead_ns", prof_timer_overhead_ns(), 3);
    emit_limits(&w, &L, threads);
    rpt_yw_key(&w, "kernels");
    rpt_yw_seq(&w);
    int counts[2] = {1, threads};
    int status = 0;
    for (int t = 0; t < 2 && status == 0; t++) {
        struct be_backend *be;
        if (be_open("cpu", &(struct be_config){.n_threads = counts[t]}, &be) < 0)
            return 1;
        struct be_info info = be->info;
        for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
            for (int kind = 0; kind < 3; kind++) { /* gemv, gemm 64, gemm 512 */
                int n_shapes = kind == 0 ? n_gemv : 1;
                for (int s = 0; s < n_shapes; s++) {
                    struct bench_shape sh = kind == 0 ? gemv_shapes[s] : gemm_shape;
                    int64_t M = kind == 0 ? 1 : kind == 1 ? 64 : 512;
                    if (quick && kind == 2)
                        continue;
                    struct prof_stats st;
                    double wbytes;
                    fprintf(stderr, "bench-kernels: %s %s %s M=%lld, %d threads\n", mq_dtype_name(formats[f]),
                            kind ? "gemm" : "gemv", sh.name, (long long)M, counts[t]);
                    if (bench_mm(be, formats[f], sh, M, kind == 0, &st, &wbytes) < 0) {
                        status = 1;
                        break;
                    }
                    double gbs = wbytes / st.median_ns;
                    double gops = 2.0 * (double)sh.N * (double)sh.K * (double)M / st.median_ns;
                    bool integer = mq_dtype_get(formats[f])->is_quantized;
                    double peak = integer ? L.i8_gops[t] : L.fma_gflops[t];
                    rpt_yw_map(&w);
                    rpt_yw_kv_str(&w, "kernel", kind == 0 ? "gemv" : "gemm");
                    rpt_yw_kv_str(&w, "format", mq_dtype_name(formats[f]));
                    rpt_yw_kv_str(&w, "shape", sh.name);
                    rpt_yw_kv_int(&w, "batch", M);
                    rpt_yw_kv_int(&w, "threads", counts[t]);
                    rpt_yw_kv_str(&w, "path", info.detail);
                    rpt_yw_kv_int(&w, "reps", st.reps);
                    rpt_yw_kv_num(&w, "median_us", st.median_ns / 1e3, 5);
                    rpt_yw_kv_num(&w, "min_us", st.min_ns / 1e3, 5);
                    rpt_yw_kv_num(&w, "mad_us", st.mad_ns / 1e3, 3);
                    rpt_yw_kv_num(&w, "weight_gb_s", gbs, 4);
                    rpt_yw_kv_num(&w, "gop_s", gops, 4);
                    if (kind == 0)
                        rpt_yw_kv_num(&w, "fraction_of_dram_read", gbs / L.read_gbs[t], 3);
                    else
                        rpt_yw_kv_num(&w, integer ? "fraction_of_int8_peak" : "fraction_of_f32_fma_peak",
                                      peak > 0 ? gops / peak : 0, 3);
                    rpt_yw_end(&w);
                }
            }
        }
        be_close(be);
    }
    if (rpt_yw_close(&w) < 0 || status)
        return 1;
    FILE *f = fopen(out, "r");
    if (f) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            fwrite(buf, 1, n, stdout);
        fclose(f);
    }
    return 0;
}
