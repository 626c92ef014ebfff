/* tests/hw/counters.c - hardware counters count what they should.
 *
 * A loop of known instruction count (an unrolled sequence of exactly 100 instructions per
 * iteration, written in assembly so that the compiler cannot change it) runs on the
 * calling thread; PAPI_TOT_INS must match the expected count within 2%. Where the machine
 * has no PAPI_TOT_INS (a VM without a PMU, PAPI's perf_event component disabled, a
 * paranoid perf_event setting), the test exits 77 (skip) and prints why. Also checks
 * that perf::TASK-CLOCK, when available, matches the thread's own CPU time over a busy
 * loop (CLOCK_THREAD_CPUTIME_ID, within 5% and 0.2 ms): unlike wall time, neither moves
 * when other processes take the core.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "profiler/counters.h"

#define ITERS 2000000L

static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* 100 instructions per iteration: 98 adds, the decrement and the branch */
static void known_loop(long n)
{
#if defined(__x86_64__)
    __asm__ volatile("1:\n"
                     ".rept 98\n"
                     "add $1, %%rax\n"
                     ".endr\n"
                     "dec %0\n"
                     "jnz 1b\n"
                     : "+r"(n)
                     :
                     : "rax", "cc");
#elif defined(__aarch64__)
    __asm__ volatile("1:\n"
                     ".rept 98\n"
                     "add x9, x9, #1\n"
                     ".endr\n"
                     "subs %0, %0, #1\n"
                     "b.ne 1b\n"
                     : "+r"(n)
                     :
                     : "x9", "cc");
#else
    (void)n;
#endif
}

int main(void)
{
    int tid = (int)syscall(SYS_gettid);
    struct prof_counters c;
    if (prof_counters_open(&c, &tid, 1, false) < 0)
        return 1;
    int status = 0;
    int tclk = prof_counters_find(&c, "perf::TASK-CLOCK");
    if (tclk >= 0) {
        double v[PROF_MAX_EVENTS];
        prof_counters_start(&c);
        double t0 = thread_cpu_ns();
        known_loop(ITERS);
        double t1 = thread_cpu_ns();
        prof_counters_stop(&c, v);
        double cpu = t1 - t0, diff = v[tclk] - cpu;
        printf("task-clock %.0f ns, thread CPU time %.0f ns (ratio %.3f)\n", v[tclk], cpu, v[tclk] / cpu);
        if (!(cpu > 0 && fabs(diff) <= 0.05 * cpu + 2e5)) {
            printf("FAIL: task-clock is not the busy thread's time\n");
            status = 1;
        }
    }
    int ins = prof_counters_find(&c, "PAPI_TOT_INS");
    if (ins < 0) {
        for (int i = 0; i < c.n_missing; i++)
            if (!strcmp(c.missing[i], "PAPI_TOT_INS"))
                printf("skip: PAPI_TOT_INS cannot be counted here: %s\n", c.missing_why[i]);
        prof_counters_close(&c);
        return status ? status : 77;
    }
    double v[PROF_MAX_EVENTS];
    prof_counters_start(&c);
    known_loop(ITERS);
    prof_counters_stop(&c, v);
    prof_counters_close(&c);
    double want = 100.0 * ITERS, got = v[ins], err = (got - want) / want;
    printf("PAPI_TOT_INS %.0f, expected %.0f (error %+.3f%%)\n", got, want, 100 * err);
    if (err < -0.02 || err > 0.02) {
        printf("FAIL: more than 2%% off\n");
        return 1;
    }
    return status;
}
