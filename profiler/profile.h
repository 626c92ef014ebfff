/* profiler/profile.h - what each quantizable layer costs in each format on this target,
 * and what whole workloads cost: the cost table the search prices plans with.
 *
 *     struct prof_profile *p;
 *     struct prof_options o = {.formats = fmts, .workload = w, .cache_dir = dir};
 *     if (prof_profile_run(model, backend, &o, &p) < 0) return -1;
 *     double ns = prof_plan_latency_ns(p, plan);      // predicted latency of a plan
 *     prof_profile_free(p);
 *
 * Method:
 *  - Each layer's matmul under the workload (model/runner.h layer_work: K inputs, N rows,
 *    M columns, calls per run) is measured per format as the backend's MATMUL op alone,
 *    activation quantization included. Layers with the same (K, N, M, format) are
 *    measured once and shared, so profiling grows with distinct shapes, not layers.
 *  - Cold where the model's weights do not fit in the last-level cache: a decode step
 *    then streams them from DRAM, so each repetition uses another copy of the weights,
 *    with enough copies that together they are at least twice the last-level cache.
 *    Warm (one copy, hot) where they fit, as they stay cached from token to token. By
 *    default this is decided per format from the uniform plan's weight bytes (auto);
 *    --cold and --warm force one. The file states what was done for each format.
 *  - Warm-up runs are discarded; repetitions are adaptive (profiler/measure.h); every
 *    figure has repetitions, min, median and MAD; the timer's overhead is recorded.
 *  - Threads of the backend are pinned to cores (hwloc); counters (profiler/counters.h)
 *    are read per measured region over all of them and reported per call, in a pass of
 *    their own before the timed one and closed before it starts (enabled counters slow
 *    thread wake-ups in VMs).
 *  - End to end: the workload's latency for the uniform plan of each profiled format of
 *    the menu (a layer that cannot take it: f16), next to the sum of their per-layer
 *    costs, so the additivity error is visible. A line fitted through them (glue + scale
 *    x sum, least squares, glue >= 0) is the latency model of prof_plan_latency_ns. Each
 *    run converts the whole model to its format, so where the model's f16 weights exceed
 *    PROF_E2E_BIG_BYTES only PROF_E2E_BIG_RUNS of them run (o->e2e_max overrides): the
 *    uniform plans of the fewest, the median and the most weight bytes, which span the
 *    line (an 8B model's tune spent over 90 minutes in step 1, most of it in the default
 *    menu's 6 runs, 15-20 minutes each, and their memory probes).
 *  - Memory: the runner's memory model for those plans; the measured peak RSS beside it
 *    when a measurement was made (prof_memory_probe).
 *  - Cache: with a cache folder, each cost and end-to-end figure is stored under a key
 *    of (model content where it matters, shape, format, workload, backend and its path,
 *    threads, target, warm/cold); a second run reuses them and an interrupted one
 *    resumes. Files are written atomically.
 *
 * Ownership: prof_profile_run returns a profile the caller frees with prof_profile_free.
 * Profiles read from YAML (reports/profile_io.h) are the same struct.
 *
 * Dependency rule: profiler/ depends on model/, llm/, backends/ and core/ only.
 */
#ifndef MQ_PROFILER_PROFILE_H
#define MQ_PROFILER_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/runner.h"
#include "model/workload.h"
#include "profiler/counters.h"
#include "profiler/limits.h"
#include "profiler/measure.h"

struct prof_options {
    struct mq_workload workload;
    uint32_t formats;     /* bit per enum mq_dtype; 0: the default menu (core/dtype.h); every
                             layer's stored format is profiled too (mq_layer_menu) */
    enum prof_cache_mode { PROF_AUTO, PROF_COLD, PROF_WARM } cache_mode;
    bool multiplex;       /* allow PAPI multiplexing */
    const char *cache_dir; /* NULL: no cache */
    bool cache_refresh;   /* measure everything, then store (do not read the cache) */
    bool no_e2e;          /* skip the end-to-end runs */
    int e2e_max;          /* most end-to-end runs (0: every format, PROF_E2E_BIG_RUNS for a big model) */
    double max_seconds;   /* per measured region (0: 1 s) */
    bool progress;        /* progress on stderr when it is a terminal */
};

/* One measured matmul: N x K weights in `fmt`, M columns. */
struct prof_cost {
    int64_t K, N, M;
    enum mq_dtype fmt;
    struct prof_stats time;          /* ns per call */
    double counters[PROF_MAX_EVENTS]; /* per call, events as in the profile's list */
    bool has_counters;
    uint64_t weight_bytes;
    int copies;                      /* weight copies rotated (1: warm) */
    bool warm;
    bool cached;                     /* read from the cache, not measured in this run */
};

#define PROF_E2E_BIG_BYTES (1ull << 30) /* a model's f16 weights above which it is big */
#define PROF_E2E_BIG_RUNS 3

struct prof_e2e {
    enum mq_dtype fmt;         /* the uniform plan */
    struct prof_stats time;    /* ns per workload run */
    double sum_layers_ns;      /* the per-layer costs of the same plan */
    struct mq_memory predicted;
    uint64_t measured_rss;     /* peak RSS of a process running it; 0: not measured */
    bool cached;
};

struct prof_target {
    char cpu[128], arch[72], features[256];
    char topology[256];
    int cores;
    uint64_t llc_bytes;
    char backend[32];
    char backend_detail[256];
    int threads;
    bool pinned;
    char pin_note[160];
    bool emulated;
    char emulated_why[160];
    char remote[256];     /* the agent command that measured it (mixq tune --remote); "" here */
    double timer_overhead_ns;
    double load_avg; /* the 1-minute load average when profiling started (other work on the machine) */
    /* measured limits with the backend's thread count (profiler/limits.h); 0: unknown */
    double dram_read_gbs, fma_gflops, int8_gops, bf16_gflops;
    char fma_isa[48], int8_isa[48];
};

struct prof_profile {
    /* the model */
    char model_path[4096];
    char model_name[256];
    char arch[64];
    uint64_t model_hash;
    int n_layers;
    char (*layer_names)[MQ_GGUF_MAX_NAME + 1]; /* [n_layers] */
    int64_t *layer_in, *layer_out;             /* [n_layers] K and N */
    struct mq_workload workload;
    uint32_t formats;
    /* the target */
    struct prof_target target;
    /* counters used and those missing, with why */
    int n_events;
    char events[PROF_MAX_EVENTS][40];
    int n_missing;
    char missing[PROF_MAX_EVENTS][40];
    char missing_why[PROF_MAX_EVENTS][200];
    bool multiplexed;
    char papi_status[240];
    /* the cache state of the measurements, per format */
    uint32_t warm_formats; /* bit per format measured warm; the others cold */
    char cache_note[512];
    /* distinct measurements */
    int n_costs;
    struct prof_cost *costs;
    /* ns per workload run of layer l in format f: layer_ns[l * MQ_DTYPE_COUNT + f]; NaN
     * where not profiled or not allowed; 0 for layers without a matmul (lookups) */
    double *layer_ns;
    /* end to end */
    int n_e2e;
    struct prof_e2e e2e[MQ_DTYPE_COUNT];
    /* the latency model, fitted on the end-to-end runs of the uniform plans:
     * workload latency ~= glue_ns + layer_scale * (sum of the plan's layer costs).
     * layer_scale absorbs what isolated measurements of single matmuls over- or
     * under-state (a thread wake-up per call, caches warmed by the neighbours); glue_ns
     * is the non-matmul work. Without end-to-end runs: scale 1, glue 0. */
    double glue_ns;
    double layer_scale;
    uint64_t overhead_bytes; /* measured runtime memory overhead (0: not measured) */
    double wall_seconds;  /* how long profiling took */
    int n_measured, n_cached;
};

int prof_profile_run(const struct mq_model *m, struct be_backend *be, const struct prof_options *o,
                     struct prof_profile **out);
void prof_profile_free(struct prof_profile *p);

/* A profile with its model identity and layer tables allocated, nothing measured (for
 * readers). */
int prof_profile_alloc(int n_layers, struct prof_profile **out);

/* Predicted latency of one workload run under a plan: glue + scale x the layers' costs.
 * NaN when a layer's format was not profiled. The plan must match the profile's layers. */
double prof_plan_latency_ns(const struct prof_profile *p, const struct mq_plan *plan);

/* Checks that a profile belongs to a model (same layer names and shapes). */
int prof_profile_matches(const struct prof_profile *p, const struct mq_model *m);

/* Peak RSS of a process that loads the model (with the input shapes `shapes`, model/shapes.h's
 * text, or NULL: m->input_shapes passes them on), opens the backend, builds a session of the
 * plan and runs the workload (the current executable, or $MIXQ_EXE, run with
 * the hidden `__memory-probe` command); *baseline receives the RSS before the session (runtime
 * overhead: code, libraries, model metadata, backend threads). The probe lends the model's
 * mapping to the backend as mixq's commands do (mq_model_lend), drops the file's resident
 * pages after building the session and resets the high-water mark, so the peak counts what
 * the run touches: the backend's copies, and the mapped pages of borrowed weights, which
 * the run faults back in (anonymous and file-backed pages alike: VmHWM counts both). */
int prof_memory_probe(const char *model_path, const char *shapes, const char *backend, int threads, const struct mq_workload *w,
                      const struct mq_plan *plan, uint64_t *peak, uint64_t *baseline);

/* True (and why) where peak RSS cannot be measured meaningfully: under qemu-user the
 * probe's process would be the emulator, whose RSS is not the program's (and it cannot
 * start a child of the emulated binary without binfmt_misc). */
bool prof_memory_probe_unusable(char *why, size_t size);

/* Measures the peak RSS of each end-to-end plan of a profile (prof_memory_probe) into
 * e2e[i].measured_rss, the runtime overhead into overhead_bytes, and completes each
 * e2e[i].predicted with it. The uniform plans are built as the profiler builds them (f16
 * where a layer cannot take the format). Where prof_memory_probe_unusable, a warning and
 * nothing measured (MQ_OK). */
int prof_profile_probe_memory(const struct mq_model *m, struct prof_profile *p, const char *backend, int threads);

/* The child side of prof_memory_probe (plan: mq_plan_from_string's text; shapes NULL or
 * model/shapes.h's text); prints "baseline_rss BYTES\npeak_rss BYTES\n". */
int prof_memory_probe_child(const char *model_path, const char *shapes, const char *backend, int threads, const char *workload,
                            const char *plan);

#endif
