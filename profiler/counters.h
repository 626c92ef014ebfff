/* profiler/counters.h - hardware and software event counts for a measured region, over
 * every thread of a backend.
 *
 *     struct prof_counters c;
 *     prof_counters_open(&c, tids, n_tids, false);   // never fails for lack of counters
 *     prof_counters_start(&c);
 *     ... the measured region, run `reps` times ...
 *     double v[PROF_MAX_EVENTS];
 *     prof_counters_stop(&c, v);                     // v[i]: event c.events[i], summed over threads
 *     prof_counters_close(&c);
 *
 * What is asked for, in order: PAPI presets PAPI_TOT_CYC, PAPI_TOT_INS, PAPI_L1_DCM,
 * PAPI_L2_TCM (or PAPI_L2_DCM), PAPI_L3_TCM, PAPI_FP_OPS, PAPI_VEC_SP, PAPI_VEC_DP; each is
 * tried alone and dropped with the reason when PAPI cannot count it (library not
 * initialised, component disabled and why, event absent on this CPU, counters
 * exhausted). Then, always, the kernel's software events through perf_event_open:
 * perf::TASK-CLOCK, perf::PAGE-FAULTS, perf::CONTEXT-SWITCHES, perf::CPU-MIGRATIONS,
 * which work in VMs without a PMU. Every event is counted on every thread given (PAPI
 * event sets attached to each thread id; perf_event counters opened per thread id) and
 * summed. Multiplexing is used only when asked, and recorded.
 *
 * Ownership: the struct owns its event sets and file descriptors until close.
 *
 * Dependency rule: profiler/ depends on backends/ and core/ only (and PAPI).
 */
#ifndef MQ_PROFILER_COUNTERS_H
#define MQ_PROFILER_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>

#define PROF_MAX_EVENTS 16
#define PROF_MAX_THREADS 64

enum prof_event_source { PROF_SRC_PAPI, PROF_SRC_PERF };

struct prof_counters {
    int n_events;
    char events[PROF_MAX_EVENTS][40];      /* names as reported: "PAPI_TOT_INS", "perf::TASK-CLOCK" */
    enum prof_event_source source[PROF_MAX_EVENTS];
    int n_missing;
    char missing[PROF_MAX_EVENTS][40];
    char missing_why[PROF_MAX_EVENTS][200];
    bool multiplexed;
    char papi_status[240];                 /* "PAPI 7.0.0.0, component perf_event disabled: ..." */
    /* private */
    int n_threads;
    int papi_sets[PROF_MAX_THREADS];       /* -1: none */
    int n_papi;                            /* events in the PAPI sets (first n_papi of events) */
    int perf_fd[PROF_MAX_THREADS][PROF_MAX_EVENTS];
    bool running;
};

/* Opens counters for the given threads. Always succeeds (returns MQ_OK) unless memory
 * runs out: events that cannot be counted are listed in missing[] with why. */
int prof_counters_open(struct prof_counters *c, const int *tids, int n_tids, bool multiplex);
int prof_counters_start(struct prof_counters *c);
/* Stops and reads: values[i] is event i summed over threads (task-clock in ns). */
int prof_counters_stop(struct prof_counters *c, double *values);
void prof_counters_close(struct prof_counters *c);

/* Index of an event by name, or -1. */
int prof_counters_find(const struct prof_counters *c, const char *name);

/* PAPI's state for reports: version, components and why each is disabled. */
void prof_papi_describe(char *buf, size_t size);

#endif
