/* profiler/measure.h - timing with measurement hygiene: warm-up runs discarded,
 * repetitions until the median is known well enough (or a time cap), and the statistics
 * every timed figure in mixq carries (repetitions, min, median, MAD).
 *
 *     static int run_once(void *arg) { ... one run of the thing measured ...; return 0; }
 *     struct prof_stats st;
 *     if (prof_measure(run_once, &ctx, &(struct prof_config){0}, &st) < 0) return -1;
 *     printf("median %.1f us over %d runs\n", st.median_ns / 1e3, st.reps);
 *
 * The stopping rule: after min_reps, stop when the half-width of an approximate 95%
 * confidence interval of the median, 1.96 * 1.2533 * 1.4826 * MAD / sqrt(n), is below
 * rel_width * median, or when max_reps or max_seconds is reached. Defaults (fields left
 * 0): 2 warm-up runs, 5..1000 repetitions, 1% relative width, 2 s. warmup = -1: none
 * (the caller warmed up already).
 *
 * Ownership: nothing is allocated that outlives a call.
 *
 * Dependency rule: profiler/ depends on backends/ and core/ only.
 */
#ifndef MQ_PROFILER_MEASURE_H
#define MQ_PROFILER_MEASURE_H

#include <stdint.h>

struct prof_config {
    int warmup;         /* runs discarded first */
    int min_reps, max_reps;
    double rel_width;   /* target relative half-width of the median's CI */
    double max_seconds; /* wall-time cap for the measured runs */
};

struct prof_stats {
    int reps;
    double min_ns, median_ns, mad_ns, mean_ns, max_ns;
    double rel_ci; /* achieved relative half-width of the median's CI */
};

typedef int (*prof_fn)(void *arg);

/* Monotonic clock in nanoseconds. */
uint64_t prof_now_ns(void);

/* Median cost of reading the clock twice (the overhead inside every timed interval). */
double prof_timer_overhead_ns(void);

/* Times fn(arg) as described above; a negative return from fn stops and is returned. */
int prof_measure(prof_fn fn, void *arg, const struct prof_config *cfg, struct prof_stats *out);

/* The median of v[0..n-1] (sorted in place); NaN when n <= 0. */
double prof_median(double *v, int n);

/* Statistics of n samples (sorted in place). */
void prof_stats_from(double *samples_ns, int n, struct prof_stats *out);

#endif
