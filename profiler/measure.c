/* profiler/measure.c - adaptive repetitions and robust statistics. */
#include "profiler/measure.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/status.h"

uint64_t prof_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_sorted(const double *v, int n)
{
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double prof_median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return median_sorted(v, n);
}

void prof_stats_from(double *s, int n, struct prof_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (n <= 0)
        return;
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    out->reps = n;
    out->min_ns = s[0];
    out->max_ns = s[n - 1];
    out->median_ns = median_sorted(s, n);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += s[i];
    out->mean_ns = sum / n;
    double *dev = malloc((size_t)n * sizeof(*dev));
    if (dev) {
        for (int i = 0; i < n; i++)
            dev[i] = fabs(s[i] - out->median_ns);
        qsort(dev, (size_t)n, sizeof(*dev), cmp_double);
        out->mad_ns = median_sorted(dev, n);
        free(dev);
    }
    out->rel_ci = out->median_ns > 0 ? 1.96 * 1.2533 * 1.4826 * out->mad_ns / sqrt((double)n) / out->median_ns : 0;
}

double prof_timer_overhead_ns(void)
{
    enum { N = 201 };
    double s[N];
    for (int i = 0; i < N; i++) {
        uint64_t a = prof_now_ns();
        uint64_t b = prof_now_ns();
        s[i] = (double)(b - a);
    }
    struct prof_stats st;
    prof_stats_from(s, N, &st);
    return st.median_ns;
}

int prof_measure(prof_fn fn, void *arg, const struct prof_config *cfg_in, struct prof_stats *out)
{
    struct prof_config cfg = *cfg_in;
    if (cfg.warmup == 0)
        cfg.warmup = 2;
    else if (cfg.warmup < 0) /* the caller did its own warm-up */
        cfg.warmup = 0;
    if (cfg.min_reps <= 0)
        cfg.min_reps = 5;
    if (cfg.max_reps < cfg.min_reps)
        cfg.max_reps = cfg.min_reps > 1000 ? cfg.min_reps : 1000;
    if (cfg.rel_width <= 0)
        cfg.rel_width = 0.01;
    if (cfg.max_seconds <= 0)
        cfg.max_seconds = 2.0;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < cfg.warmup; i++) {
        int rc = fn(arg);
        if (rc < 0)
            return rc;
    }
    double *s = malloc((size_t)cfg.max_reps * sizeof(*s));
    double *tmp = malloc((size_t)cfg.max_reps * sizeof(*tmp));
    if (!s || !tmp) {
        free(s);
        free(tmp);
        return mq_error(MQ_ENOMEM, "cannot allocate %d timing samples", cfg.max_reps);
    }
    uint64_t start = prof_now_ns();
    int n = 0, rc = MQ_OK;
    while (n < cfg.max_reps) {
        uint64_t t0 = prof_now_ns();
        rc = fn(arg);
        uint64_t t1 = prof_now_ns();
        if (rc < 0)
            break;
        s[n++] = (double)(t1 - t0);
        if (n >= cfg.min_reps) {
            bool over_time = (double)(t1 - start) * 1e-9 >= cfg.max_seconds;
            /* checking costs a sort: do it every few repetitions */
            if (over_time || n % 5 == 0 || n == cfg.min_reps) {
                memcpy(tmp, s, (size_t)n * sizeof(*s));
                prof_stats_from(tmp, n, out);
                if (over_time || out->rel_ci <= cfg.rel_width)
                    break;
            }
        }
    }
    if (rc >= 0) {
        memcpy(tmp, s, (size_t)n * sizeof(*s));
        prof_stats_from(tmp, n, out);
    }
    free(s);
    free(tmp);
    return rc < 0 ? rc : MQ_OK;
}
