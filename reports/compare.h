/* reports/compare.h - hardware comparison reports (`mixq compare`): profiles of one model
 * taken on several targets or backends (this machine's cpu with different ISAs forced,
 * neon under qemu, cuda, a remote board), and optionally the tuning fronts made on them,
 * in one self-contained HTML page (plots inline as SVG, no script) and its Markdown twin.
 *
 *     const char *profiles[] = {"cpu/profile.yaml", "scalar/profile.yaml"};
 *     struct rpt_cmp_inputs in = {.profiles = profiles, .n_profiles = 2};
 *     struct rpt_cmp *c;
 *     if (rpt_cmp_load(&in, &c) < 0) return -1;           // one line printed
 *     int rc = rpt_cmp_write(c, "report", true);            // report/report.{html,md}, plots/
 *     rpt_cmp_free(c);
 *
 * What the report holds:
 *   - per target: CPU, topology, features, backend and its kernel path, threads, measured
 *     limits (DRAM read bandwidth, compute peaks), counters used and those missing with
 *     why, and whether it was emulated (said in a box at the top of the page);
 *   - end to end: the workload's latency with the uniform plans of the three compared
 *     formats on each target, and the speed-ups of the two integer ones over the float
 *     baseline;
 *   - per layer shape (inputs -> outputs) and format: one layer's time per workload run on
 *     each target and the speed-up over the baseline, highlighted where it is below 1
 *     (quantization does not pay there), with a plot of the speed-ups;
 *   - the roofline and per-layer times of each target (reports/plot.h);
 *   - fronts (reports/front_io.h) overlaid: the 2-D Pareto subsets of each front's
 *     predicted points (latency vs loss, memory vs latency) and the plans measured on each
 *     target (latency vs KL);
 *   - an explanation of each measured matmul (rpt_cmp_explain): from IPC, bytes per
 *     instruction and CPU utilization where the target had those counters, and a plain
 *     statement of what is missing and why, with what the timings alone show, where not.
 *
 * The compared formats are chosen once, at load, from the profiles (struct rpt_cmp fmt[]),
 * and every column, plot title, legend and note is named from them: the float baseline
 * (f16), the 8-bit format (q8_0), and the profiles' 4-bit-class format: q4_k where every
 * profile measured it, else q4_0 (profiles of mixq before the K-quants), else the narrowest
 * integer format every profile measured. "Measured" means per layer and, in a profile that
 * ran the workload end to end at all, end to end too. Where the profiles share none, the
 * report says so and shows the one most of them measured, "-" where not measured.
 *
 * Loading checks that every profile and front is of one model (content hash, layer names)
 * and one workload; otherwise, and for files of another schema or a newer version, it
 * fails with one line naming both files.
 *
 * Ownership: rpt_cmp_load returns a comparison the caller frees with rpt_cmp_free (which
 * frees the profiles and fronts it read); the input arrays are borrowed.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/.
 */
#ifndef MQ_REPORTS_COMPARE_H
#define MQ_REPORTS_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profiler/profile.h"
#include "reports/front_io.h"

#define RPT_CMP_MAX_TARGETS 16
#define RPT_CMP_MAX_FRONTS 16

struct rpt_cmp_inputs {
    const char *const *profiles; /* profile.yaml paths, one per target */
    int n_profiles;
    const char *const *fronts; /* front.yaml paths (may be 0) */
    int n_fronts;
    const char *const *labels; /* NULL, or a label per profile ("cpu avx512vnni") */
    int n_labels;
};

struct rpt_cmp_target {
    char path[4096];
    char label[96]; /* given, or the backend and its path: "neon dotprod+fp16 (emulated)" */
    char slug[64];  /* for file names: "t1-neon-dotprod-fp16" */
    const char *color;
    struct prof_profile *prof;
};

/* Layers with one weight shape: their times per format on each target. */
struct rpt_cmp_shape {
    int64_t K, N; /* inputs, outputs */
    int n_layers;
    char roles[200]; /* "attn_q, attn_output" (names without block number and .weight) */
    /* one layer's time per workload run (the median over the shape's layers); NaN: not
     * profiled there */
    double ns[RPT_CMP_MAX_TARGETS][MQ_DTYPE_COUNT];
};

struct rpt_cmp_front {
    char label[96];
    int target; /* the profile of the same target, or -1 */
    const char *color;
    struct rpt_front_file *file;
};

/* The compared formats, in the order of the report's columns: indices of struct rpt_cmp
 * fmt[]. */
enum rpt_cmp_role {
    RPT_CMP_BASE, /* the float baseline every speed-up is over: RPT_CMP_BASELINE */
    RPT_CMP_8BIT, /* the 8-bit format: q8_0 */
    RPT_CMP_LOW,  /* the 4-bit-class format chosen from the profiles */
    RPT_CMP_N_FORMATS
};
#define RPT_CMP_BASELINE MQ_DTYPE_F16

struct rpt_cmp {
    enum mq_dtype fmt[RPT_CMP_N_FORMATS]; /* the compared formats, by enum rpt_cmp_role */
    bool low_shared;                      /* every profile measured fmt[RPT_CMP_LOW] (above) */
    int n_targets;
    struct rpt_cmp_target targets[RPT_CMP_MAX_TARGETS];
    int n_fronts;
    struct rpt_cmp_front fronts[RPT_CMP_MAX_FRONTS];
    int n_shapes;
    struct rpt_cmp_shape *shapes; /* in the order their first layer comes in the model */
    int n_lookups;                /* layers without a matmul (token embeddings) */
};

int rpt_cmp_load(const struct rpt_cmp_inputs *in, struct rpt_cmp **out);
void rpt_cmp_free(struct rpt_cmp *c);

/* Baseline (RPT_CMP_BASELINE) time over fmt time of a shape on a target: > 1 where fmt is
 * faster; NaN unknown. */
double rpt_cmp_speedup(const struct rpt_cmp_shape *s, int target, enum mq_dtype fmt);
/* The same end to end (the uniform plans' workload medians); NaN where not measured. */
double rpt_cmp_e2e_speedup(const struct prof_profile *p, enum mq_dtype fmt);

/* Whether p measured fmt: per layer and, where p has end-to-end runs, end to end. */
bool rpt_cmp_measured(const struct prof_profile *p, enum mq_dtype fmt);

/* Where the profiles share no 4-bit-class format (!c->low_shared), one sentence saying so
 * and which targets lack the one shown; "" where they share it. */
void rpt_cmp_low_note(const struct rpt_cmp *c, char *buf, size_t size);

/* What bounds one measured matmul. Fractions near 1 mean the roof is reached. */
enum rpt_bound {
    RPT_BOUND_NONE,         /* nothing measured */
    RPT_BOUND_EMULATED,     /* timings of an emulator: no hardware conclusion */
    RPT_BOUND_DRAM,         /* weights streamed from DRAM at >= RPT_BOUND_NEAR of the bandwidth */
    RPT_BOUND_COMPUTE,      /* >= RPT_BOUND_NEAR of the format's compute peak */
    RPT_BOUND_THREADS,      /* CPU time / wall time below RPT_BUSY_LOW x threads: waiting */
    RPT_BOUND_INSTRUCTIONS, /* IPC >= RPT_IPC_HIGH: the kernel's instruction count */
    RPT_BOUND_STALLS,       /* IPC < RPT_IPC_LOW: stalls on memory latency or dependencies */
    RPT_BOUND_MIXED,        /* counters show no single limit */
    RPT_BOUND_UNKNOWN,      /* at no roof, and no counters to say why */
    RPT_BOUND_COUNT
};

#define RPT_BOUND_NEAR 0.6
#define RPT_IPC_HIGH 2.0
#define RPT_IPC_LOW 1.0
#define RPT_BUSY_LOW 0.75
#define RPT_BUSY_MAX 1.1 /* CPU/wall above this x threads: not comparable, dropped */
#define RPT_NOISY 3.0    /* a median above this x the minimum: interrupted measurements */

struct rpt_bound_info {
    enum rpt_bound kind;
    double time_ns;               /* median per call */
    double gbs, dram_frac;        /* weight bytes / time; of the measured DRAM read bandwidth */
    double gops, peak, peak_frac; /* ops / time; the format's measured peak (GOP/s) */
    double roof_frac;             /* of min(DRAM x intensity, peak) */
    const char *peak_name;        /* "int8 dot-product" (every integer format), "f32 FMA",
                                     "bf16 dot-product" */
    /* from counters; NaN where the target did not count them */
    double ipc, bytes_per_ins, l1_mpki, cpus_busy;
};

/* Fills b for cost c of profile p (every field NaN that cannot be known). */
void rpt_cmp_explain(const struct prof_profile *p, const struct prof_cost *c,
                     struct rpt_bound_info *b);
/* A short name of the bound ("instruction throughput"). */
const char *rpt_bound_name(enum rpt_bound kind);
/* One sentence: "q4_0 GEMV 192->512 is bound by instruction throughput: IPC 3.1, 0.4
 * weight bytes/instruction; 12 GB/s is 41% of the measured DRAM read bandwidth". */
void rpt_cmp_explain_text(const struct prof_cost *c, const struct rpt_bound_info *b, char *buf,
                          size_t size);

/* Writes dir/report.html, dir/report.md and the plots under dir/plots/ (dir is created).
 * plots false, or no gnuplot: the report says so where the plots would be. */
int rpt_cmp_write(const struct rpt_cmp *c, const char *dir, bool plots);

#endif
