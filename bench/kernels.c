/* bench/kernels.c - the cpu backend's kernels against this machine's limits.
 *
 *   build/bench-kernels [--threads N] [--formats LIST] [--out FILE] [--quick]
 *
 * Measures, in one run: DRAM read bandwidth (a 512 MiB buffer, far beyond the last-level
 * cache) with 1 and N threads; peak F32 FMA, INT8 dot-product and BF16 dot-product
 * throughput with 1 and N threads; then every plan format's (or LIST's) matrix-vector
 * product (decode) at real model shapes, with enough copies of the weights that every
 * repetition reads them from DRAM, and matrix-matrix products (prefill) at batch 64 and
 * 512, with 1 and N threads, through the backend's own op (activation quantization
 * included). Formats run side by side, so that a drift of the machine (it is shared) moves
 * them together: per thread count and GEMV shape one format after the other, each right
 * after a DRAM read of as many bytes; per GEMM, all formats set up first and then timed in
 * rounds of one run each.
 *
 * GEMV is quoted as a fraction of the DRAM read bandwidth, both the one measured at the
 * start and one measured right before it with the same threads over as many bytes as the
 * GEMV's weight copies, timed per slice of one copy's size as the GEMV is per call (DRAM
 * bandwidth drifts by +-15% on a shared machine, and a long read is preempted more often
 * than a short one: the adjacent figure is the one to compare). Those copies fill twice
 * the last-level cache (hwloc), at least 256 MiB. GEMM is quoted in GOP/s and in weight
 * bytes per second; the summary at the end puts each format's GEMM weight bytes per
 * second next to q4_0's. The 1-minute load average is recorded at the start and the end.
 *
 * --quick (make check) runs one small shape per kernel kind and N threads only, with
 * short measurements: it checks that the harness runs, its figures are not for quoting.
 *
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
#include "core/dtype.h"
#include "core/pool.h"
#include "core/status.h"
#include "profiler/limits.h"
#include "profiler/measure.h"
#include "profiler/topology.h"
#include "reports/yaml_write.h"

/* GEMV weights rotate through copies of at least this many bytes per repetition, and the
 * DRAM read next to each GEMV reads as many: twice the last-level cache (some servers
 * have L3s of hundreds of MiB), at least 256 MiB */
#define COLD_MIN_BYTES ((size_t)256 << 20)

/* ---- kernels through the backend ---- */

/* The weights of one GEMV rotate through copies filling cold_bytes (at least 2), so every
 * repetition reads them from DRAM; GEMMs use one copy. */
static int bench_mm(struct be_backend *be, enum mq_dtype type, struct bench_shape s, int64_t M, size_t cold_bytes,
                    bool quick, struct prof_stats *st, double *weight_bytes)
{
    struct mm_run r;
    bool cold = cold_bytes > 0;
    int rc = mm_setup(&r, be, type, s, M, cold_bytes, 2, 1 << 20, weight_bytes);
    struct prof_config cfg = {.min_reps = cold ? 3 * r.n_copies : 5, .max_seconds = quick ? 0.2 : 1.5};
    if (rc == MQ_OK)
        rc = prof_measure(mm_once, &r, &cfg, st);
    mm_release(&r);
    return rc;
}

/* ---- DRAM read bandwidth next to a GEMV, with the GEMV's thread count ----
 *
 * Read in slices of the GEMV's weight bytes, cycling through a buffer as large as its
 * weight copies, and timed per slice as the GEMV is per call: on a shared machine a long
 * read is almost always preempted somewhere, a short one mostly not, and the medians of
 * the two would not compare. */

struct dram_probe {
    char *buf;
    size_t bytes, slice, at; /* the buffer; the bytes read per repetition; the next slice */
    struct mq_pool *pool;
};

static void probe_part(void *arg, int ith, int nth)
{
    const struct dram_probe *p = arg;
    int64_t lo, hi;
    mq_pool_split((int64_t)(p->slice / 4096), ith, nth, &lo, &hi);
    volatile double sink = prof_read_bytes(p->buf + p->at + (size_t)lo * 4096, (size_t)(hi - lo) * 4096);
    (void)sink;
}

static int probe_once(void *arg)
{
    struct dram_probe *p = arg;
    mq_pool_run(p->pool, probe_part, p);
    p->at += p->slice;
    if (p->at + p->slice > p->bytes)
        p->at = 0;
    return 0;
}

/* The median read bandwidth in GB/s over slices of about `slice` bytes, or 0 when it
 * could not be measured. */
static double dram_probe_gbs(struct dram_probe *p, size_t slice, bool quick)
{
    p->slice = slice < p->bytes ? (slice + 4095) / 4096 * 4096 : p->bytes / 4096 * 4096;
    if (p->slice > p->bytes)
        p->slice = p->bytes / 4096 * 4096;
    p->at = 0;
    int n_slices = (int)(p->bytes / p->slice);
    struct prof_stats st;
    struct prof_config cfg = {.warmup = 1, .min_reps = quick ? 2 : 3 * n_slices, .max_seconds = quick ? 0.1 : 0.5};
    if (prof_measure(probe_once, p, &cfg, &st) < 0)
        return 0;
    return (double)p->slice / st.median_ns;
}

static double loadavg_1min(void)
{
    double v = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
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

/* ---- GEMM: every format side by side ---- */

/* Sets up the GEMM of shape s with M columns for every format, then times them in rounds
 * of one run of each (after a warm-up round) until at least min rounds and about
 * max_seconds: a load spike of the shared machine then falls on all formats alike rather
 * than on the one being measured. st[f].reps == 0: format f does not fit the shape. */
static int bench_gemm_rounds(struct be_backend *be, const enum mq_dtype *formats, int n, struct bench_shape s, int64_t M,
                             bool quick, struct prof_stats *st, double *weight_bytes)
{
    enum { MAX_ROUNDS = 41 };
    struct mm_run runs[MQ_DTYPE_COUNT];
    double samples[MQ_DTYPE_COUNT][MAX_ROUNDS];
    bool fits[MQ_DTYPE_COUNT];
    int rc = MQ_OK;
    memset(runs, 0, sizeof(runs));
    for (int f = 0; f < n && rc == MQ_OK; f++) {
        memset(&st[f], 0, sizeof(st[f]));
        fits[f] = mq_dtype_row_ok(formats[f], s.K);
        if (fits[f])
            rc = mm_setup(&runs[f], be, formats[f], s, M, 0, 1, 1, &weight_bytes[f]);
    }
    const int min_rounds = quick ? 2 : 7;
    const double max_ns = (quick ? 1.0 : 20.0) * 1e9;
    uint64_t start = prof_now_ns();
    int rounds = 0;
    for (int r = -1; rc == MQ_OK && r < MAX_ROUNDS; r++) { /* r = -1: warm-up */
        for (int f = 0; f < n && rc == MQ_OK; f++) {
            if (!fits[f])
                continue;
            uint64_t t0 = prof_now_ns();
            rc = mm_once(&runs[f]);
            if (r >= 0)
                samples[f][r] = (double)(prof_now_ns() - t0);
        }
        rounds = r + 1;
        if (rounds >= min_rounds && (double)(prof_now_ns() - start) > max_ns)
            break;
    }
    for (int f = 0; f < n; f++) {
        if (rc == MQ_OK && fits[f] && rounds > 0)
            prof_stats_from(samples[f], rounds, &st[f]);
        mm_release(&runs[f]);
    }
    return rc;
}

struct emit_ctx {
    struct rpt_yw *w;
    const struct prof_limits *L;
    int t, threads; /* index into the limits; threads */
    const char *path;
};

/* One kernels entry; adj: the DRAM read measured next to a GEMV (0 for GEMMs). */
static void emit_entry(const struct emit_ctx *c, enum mq_dtype type, struct bench_shape sh, int64_t M,
                       const struct prof_stats *st, double wbytes, double adj)
{
    struct rpt_yw *w = c->w;
    double gbs = wbytes / st->median_ns;
    double gops = 2.0 * (double)sh.N * (double)sh.K * (double)M / st->median_ns;
    bool integer = mq_dtype_get(type)->is_quantized;
    double peak = integer ? c->L->i8_gops[c->t] : c->L->fma_gflops[c->t];
    rpt_yw_map(w);
    rpt_yw_kv_str(w, "kernel", M == 1 ? "gemv" : "gemm");
    rpt_yw_kv_str(w, "format", mq_dtype_name(type));
    rpt_yw_kv_str(w, "shape", sh.name);
    rpt_yw_kv_int(w, "batch", M);
    rpt_yw_kv_int(w, "threads", c->threads);
    rpt_yw_kv_str(w, "path", c->path);
    rpt_yw_kv_int(w, "reps", st->reps);
    rpt_yw_kv_num(w, "median_us", st->median_ns / 1e3, 5);
    rpt_yw_kv_num(w, "min_us", st->min_ns / 1e3, 5);
    rpt_yw_kv_num(w, "mad_us", st->mad_ns / 1e3, 3);
    rpt_yw_kv_num(w, "weight_gb_s", gbs, 4);
    rpt_yw_kv_num(w, "gop_s", gops, 4);
    if (M == 1) {
        rpt_yw_kv_num(w, "fraction_of_dram_read", gbs / c->L->read_gbs[c->t], 3);
        rpt_yw_kv_num(w, "adjacent_dram_read_gb_s", adj, 4);
        rpt_yw_kv_num(w, "fraction_of_adjacent_dram_read", adj > 0 ? gbs / adj : 0, 3);
    } else {
        rpt_yw_kv_num(w, integer ? "fraction_of_int8_peak" : "fraction_of_f32_fma_peak", peak > 0 ? gops / peak : 0, 3);
    }
    rpt_yw_end(w);
}

/* ---- the plan: shapes and kinds ---- */

static const struct bench_shape gemv_shapes[] = {
    {"4096x4096", 4096, 4096},   {"11008x4096", 11008, 4096}, {"4096x11008", 4096, 11008},
    {"14336x4096", 14336, 4096}, {"tinyllm ffn_up 512x192", 512, 192},
    {"tinyllm ffn_down 192x512", 192, 512},
};
#define N_BIG_GEMV 4 /* the first four: the shapes the decode figures are quoted at */
static const struct bench_shape gemm_shape = {"4096x4096", 4096, 4096};
/* --quick: small enough that every format's quantizer makes its weights in about a second */
static const struct bench_shape quick_shape = {"1024x2048", 1024, 2048};

enum { KIND_GEMV, KIND_GEMM64, KIND_GEMM512 };

/* One measured kernel, kept for the summary. */
struct result {
    bool done;
    double gemv_frac[N_BIG_GEMV]; /* of the adjacent DRAM read, big shapes */
    double gemm512_gops, gemm512_gbs;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void emit_summary(struct rpt_yw *w, const struct result res[][MQ_DTYPE_COUNT], const int counts[2], int n_counts,
                         const enum mq_dtype *formats, int n_formats)
{
    rpt_yw_key(w, "summary");
    rpt_yw_seq(w);
    for (int t = 0; t < n_counts; t++) {
        const struct result *q40 = &res[t][MQ_DTYPE_Q4_0];
        for (int f = 0; f < n_formats; f++) {
            const struct result *r = &res[t][formats[f]];
            if (!r->done)
                continue;
            rpt_yw_map(w);
            rpt_yw_kv_str(w, "format", mq_dtype_name(formats[f]));
            rpt_yw_kv_int(w, "threads", counts[t]);
            rpt_yw_kv_num(w, "bits_per_weight", mq_dtype_bits_per_weight(formats[f]), 4);
            double fr[N_BIG_GEMV];
            int n = 0;
            for (int s = 0; s < N_BIG_GEMV; s++)
                if (r->gemv_frac[s] > 0)
                    fr[n++] = r->gemv_frac[s];
            if (n > 0) {
                qsort(fr, (size_t)n, sizeof(fr[0]), cmp_double);
                rpt_yw_kv_num(w, "gemv_big_shapes_min_fraction_of_adjacent_dram_read", fr[0], 3);
                rpt_yw_kv_num(w, "gemv_big_shapes_median_fraction_of_adjacent_dram_read",
                              n % 2 ? fr[n / 2] : 0.5 * (fr[n / 2 - 1] + fr[n / 2]), 3);
            }
            if (r->gemm512_gops > 0) {
                rpt_yw_kv_num(w, "gemm512_gop_s", r->gemm512_gops, 4);
                rpt_yw_kv_num(w, "gemm512_weight_gb_s", r->gemm512_gbs, 4);
                if (q40->gemm512_gbs > 0)
                    rpt_yw_kv_num(w, "gemm512_weight_bytes_vs_q4_0", r->gemm512_gbs / q40->gemm512_gbs, 3);
            }
            rpt_yw_end(w);
        }
    }
    rpt_yw_end(w);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"threads", required_argument, NULL, 't'}, {"formats", required_argument, NULL, 'f'},
        {"out", required_argument, NULL, 'o'},     {"quick", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int threads = mq_pool_default_threads();
    const char *out = "build/bench/kernels.yaml";
    uint32_t mask = 0;
    bool quick = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': threads = atoi(optarg); break;
        case 'f': {
            char why[512];
            if (mq_dtype_parse_formats(optarg, &mask, why, sizeof(why)) < 0) {
                fprintf(stderr, "bench-kernels: --formats: %s\n", why);
                return 2;
            }
            break;
        }
        case 'o': out = optarg; break;
        case 'q': quick = true; break;
        case 'h':
            printf("usage: bench-kernels [--threads N] [--formats LIST] [--out FILE] [--quick]\n");
            return 0;
        default: return 2;
        }
    }
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "bench-kernels: --threads must be 1..1024\n");
        return 2;
    }
    enum mq_dtype formats[MQ_DTYPE_COUNT];
    int n_formats = 0;
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)t);
        /* f32 weights are not a bandwidth-limited decode format: as before, not measured */
        if (tr->is_plan_format && t != MQ_DTYPE_F32 && (!mask || (mask & (1u << t))))
            formats[n_formats++] = (enum mq_dtype)t;
    }
    double load_start = loadavg_1min();
    struct prof_topology topo;
    char topo_line[512] = "unknown";
    size_t cold_bytes = COLD_MIN_BYTES;
    if (prof_topology_load(&topo) == MQ_OK) {
        prof_topology_summary(&topo, topo_line, sizeof(topo_line));
        uint64_t llc = prof_topology_llc(&topo);
        if (2 * llc > cold_bytes)
            cold_bytes = (size_t)(2 * llc + 4095) / 4096 * 4096;
        prof_topology_release(&topo);
    }
    struct prof_limits L;
    fprintf(stderr, "bench-kernels: measuring limits (%d threads)\n", threads);
    if (prof_limits_measure(threads, &L) < 0)
        return 1;

    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdir(dir, 0755);
    }
    struct dram_probe probe = {.bytes = quick ? cold_bytes / 4 : cold_bytes};
    probe.buf = aligned_alloc(4096, probe.bytes);
    if (!probe.buf) {
        fprintf(stderr, "bench-kernels: cannot allocate the %zu MiB DRAM probe\n", probe.bytes >> 20);
        return 1;
    }
    for (size_t i = 0; i < probe.bytes; i += 4096)
        memset(probe.buf + i, (int)(i >> 12) & 0x3F, 4096);
    static struct result res[2][MQ_DTYPE_COUNT];
    struct rpt_yw w;
    if (rpt_yw_open(&w, out, "bench-kernels/2") < 0)
        return 1;
    rpt_yw_kv_str(&w, "units", "time in microseconds; bandwidth in GB/s (1e9 bytes) of weight bytes; "
                               "throughput in GOP/s (2 ops per multiply-add); shapes N x K");
    rpt_yw_kv_num(&w, "timer_overhead_ns", prof_timer_overhead_ns(), 3);
    rpt_yw_kv_str(&w, "topology", topo_line);
    rpt_yw_kv_int(&w, "gemv_cold_bytes", (int64_t)cold_bytes);
    rpt_yw_kv_num(&w, "loadavg_1min_start", load_start, 3);
    rpt_yw_kv_bool(&w, "quick", quick);
    emit_limits(&w, &L, threads);
    rpt_yw_key(&w, "kernels");
    rpt_yw_seq(&w);
    /* quick: N threads only (index 1 of the limits) */
    int counts[2] = {1, threads}, t_first = quick ? 1 : 0;
    int status = 0;
    for (int t = t_first; t < 2 && status == 0; t++) {
        struct be_backend *be;
        if (be_open("cpu", &(struct be_config){.n_threads = counts[t]}, &be) < 0)
            return 1;
        if (mq_pool_new(counts[t], &probe.pool) < 0)
            return 1;
        struct be_info info = be->info;
        int n_gemv = quick ? 1 : (int)(sizeof(gemv_shapes) / sizeof(gemv_shapes[0]));
        struct emit_ctx ec = {.w = &w, .L = &L, .t = t, .threads = counts[t], .path = info.detail};
        /* GEMV: per shape, each format right after a DRAM read of as many bytes */
        for (int s = 0; s < n_gemv && status == 0; s++) {
            struct bench_shape sh = quick ? quick_shape : gemv_shapes[s];
            for (int f = 0; f < n_formats; f++) {
                enum mq_dtype type = formats[f];
                size_t row_bytes;
                if (!mq_dtype_row_ok(type, sh.K) || mq_dtype_row_bytes(type, sh.K, &row_bytes) < 0)
                    continue;
                fprintf(stderr, "bench-kernels: %s gemv %s, %d threads\n", mq_dtype_name(type), sh.name, counts[t]);
                double adj = dram_probe_gbs(&probe, row_bytes * (size_t)sh.N, quick);
                struct prof_stats st;
                double wbytes;
                if (bench_mm(be, type, sh, 1, cold_bytes, quick, &st, &wbytes) < 0) {
                    status = 1;
                    break;
                }
                struct result *r = &res[t][type];
                r->done = true;
                double gbs = wbytes / st.median_ns;
                if (!quick && s < N_BIG_GEMV && adj > 0)
                    r->gemv_frac[s] = gbs / adj;
                emit_entry(&ec, type, sh, 1, &st, wbytes, adj);
            }
        }
        /* GEMM: all formats set up, then timed in rounds of one run each */
        for (int kind = KIND_GEMM64; kind <= KIND_GEMM512 && status == 0; kind++) {
            if (quick && kind == KIND_GEMM512)
                continue;
            struct bench_shape sh = quick ? quick_shape : gemm_shape;
            int64_t M = kind == KIND_GEMM64 ? 64 : 512;
            fprintf(stderr, "bench-kernels: gemm %s M=%lld, %d threads, %d formats side by side\n", sh.name,
                    (long long)M, counts[t], n_formats);
            struct prof_stats st[MQ_DTYPE_COUNT];
            double wbytes[MQ_DTYPE_COUNT];
            if (bench_gemm_rounds(be, formats, n_formats, sh, M, quick, st, wbytes) < 0) {
                status = 1;
                break;
            }
            for (int f = 0; f < n_formats; f++) {
                enum mq_dtype type = formats[f];
                if (st[f].reps == 0)
                    continue;
                struct result *r = &res[t][type];
                r->done = true;
                if (kind == KIND_GEMM512) {
                    r->gemm512_gops = 2.0 * (double)sh.N * (double)sh.K * (double)M / st[f].median_ns;
                    r->gemm512_gbs = wbytes[f] / st[f].median_ns;
                }
                emit_entry(&ec, type, sh, M, &st[f], wbytes[f], 0);
            }
        }
        mq_pool_free(probe.pool);
        probe.pool = NULL;
        be_close(be);
    }
    free(probe.buf);
    rpt_yw_end(&w);
    emit_summary(&w, (const struct result(*)[MQ_DTYPE_COUNT])res + t_first, counts + t_first, 2 - t_first, formats,
                 n_formats);
    rpt_yw_kv_num(&w, "loadavg_1min_end", loadavg_1min(), 3);
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
