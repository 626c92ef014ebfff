/* profiler/counters.c - PAPI presets where the machine has them, kernel software events
 * always, per thread. */
#include "profiler/counters.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <papi.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/status.h"

static const char *const papi_wanted[] = {
    "PAPI_TOT_CYC", "PAPI_TOT_INS", "PAPI_L1_DCM", "PAPI_L2_TCM", "PAPI_L3_TCM",
    "PAPI_FP_OPS",  "PAPI_VEC_SP",  "PAPI_VEC_DP",
};

static const struct {
    const char *name;
    uint32_t type;
    uint64_t config;
} perf_events[] = {
    {"perf::TASK-CLOCK", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK},
    {"perf::PAGE-FAULTS", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS},
    {"perf::CONTEXT-SWITCHES", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"perf::CPU-MIGRATIONS", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS},
};

static void add_missing(struct prof_counters *c, const char *name, const char *why)
{
    if (c->n_missing >= PROF_MAX_EVENTS)
        return;
    snprintf(c->missing[c->n_missing], sizeof(c->missing[0]), "%s", name);
    snprintf(c->missing_why[c->n_missing], sizeof(c->missing_why[0]), "%s", why);
    c->n_missing++;
}

/* Initialises PAPI once per process (PAPI keeps its own global state; mixq adds none).
 * Returns the PAPI status or a negative PAPI error, with a reason in why. */
static int papi_init(char *why, size_t size)
{
    if (PAPI_is_initialized() != PAPI_NOT_INITED)
        return PAPI_OK;
    int v = PAPI_library_init(PAPI_VER_CURRENT);
    if (v != PAPI_VER_CURRENT) {
        snprintf(why, size, "PAPI_library_init failed: %s", v > 0 ? "version mismatch" : PAPI_strerror(v));
        return v > 0 ? PAPI_EINVAL : v;
    }
    return PAPI_OK;
}

/* The perf_event component's index and, when disabled, why. */
static int papi_perf_component(char *why, size_t size)
{
    int n = PAPI_num_components();
    for (int i = 0; i < n; i++) {
        const PAPI_component_info_t *ci = PAPI_get_component_info(i);
        if (!ci || strcmp(ci->name, "perf_event") != 0)
            continue;
        if (ci->disabled) {
            snprintf(why, size, "PAPI component perf_event is disabled: %.160s", ci->disabled_reason);
            return -1;
        }
        return i;
    }
    snprintf(why, size, "PAPI has no perf_event component");
    return -1;
}

void prof_papi_describe(char *buf, size_t size)
{
    char why[256] = "";
    if (papi_init(why, sizeof(why)) != PAPI_OK) {
        snprintf(buf, size, "%s", why);
        return;
    }
    size_t used = (size_t)snprintf(buf, size, "PAPI %d.%d.%d.%d;", PAPI_VERSION_MAJOR(PAPI_VERSION),
                                   PAPI_VERSION_MINOR(PAPI_VERSION), PAPI_VERSION_REVISION(PAPI_VERSION),
                                   PAPI_VERSION_INCREMENT(PAPI_VERSION));
    int n = PAPI_num_components();
    for (int i = 0; i < n && used < size; i++) {
        const PAPI_component_info_t *ci = PAPI_get_component_info(i);
        if (!ci)
            continue;
        if (ci->disabled)
            used += (size_t)snprintf(buf + used, size - used, " %s disabled (%.160s);", ci->name, ci->disabled_reason);
        else
            used += (size_t)snprintf(buf + used, size - used, " %s active (%d native events);", ci->name,
                                     ci->num_native_events);
    }
}

static int open_papi(struct prof_counters *c, const int *tids, bool multiplex)
{
    char why[240] = "";
    int cid = -1;
    if (papi_init(why, sizeof(why)) == PAPI_OK)
        cid = papi_perf_component(why, sizeof(why));
    snprintf(c->papi_status, sizeof(c->papi_status), "%s", why[0] ? why : "PAPI perf_event component active");
    if (cid < 0) {
        for (size_t i = 0; i < sizeof(papi_wanted) / sizeof(papi_wanted[0]); i++)
            add_missing(c, papi_wanted[i], why);
        return MQ_OK;
    }
    if (multiplex && PAPI_multiplex_init() != PAPI_OK)
        multiplex = false;
    for (int t = 0; t < c->n_threads; t++) {
        int es = PAPI_NULL;
        int rc = PAPI_create_eventset(&es);
        if (rc == PAPI_OK)
            rc = PAPI_assign_eventset_component(es, cid);
        if (rc == PAPI_OK)
            rc = PAPI_attach(es, (unsigned long)tids[t]);
        if (rc == PAPI_OK && multiplex)
            rc = PAPI_set_multiplex(es);
        if (rc != PAPI_OK) {
            snprintf(why, sizeof(why), "cannot attach a PAPI event set to thread %d: %s", tids[t], PAPI_strerror(rc));
            if (es != PAPI_NULL) {
                PAPI_cleanup_eventset(es);
                PAPI_destroy_eventset(&es);
            }
            for (int k = 0; k < t; k++) {
                PAPI_cleanup_eventset(c->papi_sets[k]);
                PAPI_destroy_eventset(&c->papi_sets[k]);
                c->papi_sets[k] = -1;
            }
            for (size_t i = 0; i < sizeof(papi_wanted) / sizeof(papi_wanted[0]); i++)
                add_missing(c, papi_wanted[i], why);
            return MQ_OK;
        }
        c->papi_sets[t] = es;
    }
    c->multiplexed = multiplex;
    /* add events one at a time, on every thread's set; drop what does not fit */
    for (size_t i = 0; i < sizeof(papi_wanted) / sizeof(papi_wanted[0]); i++) {
        const char *name = papi_wanted[i];
        int code;
        int rc = PAPI_event_name_to_code((char *)name, &code);
        if (rc == PAPI_OK)
            rc = PAPI_query_event(code);
        if (rc != PAPI_OK) {
            snprintf(why, sizeof(why), "not available on this CPU (%s)", PAPI_strerror(rc));
            add_missing(c, name, why);
            if (!strcmp(name, "PAPI_L2_TCM")) { /* the issue allows L2_DCM instead */
                if (PAPI_event_name_to_code("PAPI_L2_DCM", &code) == PAPI_OK && PAPI_query_event(code) == PAPI_OK)
                    name = "PAPI_L2_DCM";
                else
                    continue;
            } else {
                continue;
            }
        }
        int t = 0;
        for (; t < c->n_threads; t++)
            if ((rc = PAPI_add_event(c->papi_sets[t], code)) != PAPI_OK)
                break;
        if (t < c->n_threads) {
            for (int k = 0; k < t; k++)
                PAPI_remove_event(c->papi_sets[k], code);
            snprintf(why, sizeof(why), "cannot be counted together with the events before it (%s)%s",
                     PAPI_strerror(rc), multiplex ? "" : "; multiplexing was not asked for");
            add_missing(c, name, why);
            continue;
        }
        snprintf(c->events[c->n_events], sizeof(c->events[0]), "%s", name);
        c->source[c->n_events++] = PROF_SRC_PAPI;
        c->n_papi++;
    }
    return MQ_OK;
}

static int perf_open(uint32_t type, uint64_t config, int tid)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    a.type = type;
    a.config = config;
    a.disabled = 1;
    return (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, 0);
}

static void open_perf(struct prof_counters *c, const int *tids)
{
    for (size_t e = 0; e < sizeof(perf_events) / sizeof(perf_events[0]) && c->n_events < PROF_MAX_EVENTS; e++) {
        int slot = c->n_events, t = 0, err = 0;
        for (; t < c->n_threads; t++) {
            int fd = perf_open(perf_events[e].type, perf_events[e].config, tids[t]);
            if (fd < 0) {
                err = errno;
                break;
            }
            c->perf_fd[t][slot] = fd;
        }
        if (t < c->n_threads) {
            for (int k = 0; k < t; k++) {
                close(c->perf_fd[k][slot]);
                c->perf_fd[k][slot] = -1;
            }
            char why[200];
            snprintf(why, sizeof(why), "perf_event_open failed: %s%s", strerror(err),
                     err == EACCES || err == EPERM ? " (see /proc/sys/kernel/perf_event_paranoid)" : "");
            add_missing(c, perf_events[e].name, why);
            continue;
        }
        snprintf(c->events[slot], sizeof(c->events[0]), "%s", perf_events[e].name);
        c->source[slot] = PROF_SRC_PERF;
        c->n_events++;
    }
}

int prof_counters_open(struct prof_counters *c, const int *tids, int n_tids, bool multiplex)
{
    memset(c, 0, sizeof(*c));
    if (n_tids > PROF_MAX_THREADS)
        n_tids = PROF_MAX_THREADS;
    c->n_threads = n_tids;
    for (int t = 0; t < PROF_MAX_THREADS; t++) {
        c->papi_sets[t] = -1;
        for (int e = 0; e < PROF_MAX_EVENTS; e++)
            c->perf_fd[t][e] = -1;
    }
    int rc = open_papi(c, tids, multiplex);
    if (rc < 0)
        return rc;
    open_perf(c, tids);
    return MQ_OK;
}

int prof_counters_start(struct prof_counters *c)
{
    for (int t = 0; t < c->n_threads; t++) {
        if (c->n_papi && c->papi_sets[t] >= 0) {
            int rc = PAPI_start(c->papi_sets[t]);
            if (rc != PAPI_OK)
                return mq_error(MQ_EIO, "PAPI_start: %s", PAPI_strerror(rc));
        }
        for (int e = c->n_papi; e < c->n_events; e++) {
            ioctl(c->perf_fd[t][e], PERF_EVENT_IOC_RESET, 0);
            ioctl(c->perf_fd[t][e], PERF_EVENT_IOC_ENABLE, 0);
        }
    }
    c->running = true;
    return MQ_OK;
}

int prof_counters_stop(struct prof_counters *c, double *values)
{
    for (int e = 0; e < PROF_MAX_EVENTS; e++)
        values[e] = 0;
    if (!c->running)
        return MQ_OK;
    for (int t = 0; t < c->n_threads; t++) {
        if (c->n_papi && c->papi_sets[t] >= 0) {
            long long v[PROF_MAX_EVENTS] = {0};
            int rc = PAPI_stop(c->papi_sets[t], v);
            if (rc != PAPI_OK)
                return mq_error(MQ_EIO, "PAPI_stop: %s", PAPI_strerror(rc));
            for (int e = 0; e < c->n_papi; e++)
                values[e] += (double)v[e];
        }
        for (int e = c->n_papi; e < c->n_events; e++) {
            uint64_t v = 0;
            ioctl(c->perf_fd[t][e], PERF_EVENT_IOC_DISABLE, 0);
            if (read(c->perf_fd[t][e], &v, sizeof(v)) == (ssize_t)sizeof(v))
                values[e] += (double)v;
        }
    }
    c->running = false;
    return MQ_OK;
}

void prof_counters_close(struct prof_counters *c)
{
    for (int t = 0; t < c->n_threads; t++) {
        if (c->papi_sets[t] >= 0) {
            if (c->running)
                PAPI_stop(c->papi_sets[t], NULL);
            PAPI_cleanup_eventset(c->papi_sets[t]);
            PAPI_destroy_eventset(&c->papi_sets[t]);
        }
        for (int e = 0; e < PROF_MAX_EVENTS; e++)
            if (c->perf_fd[t][e] >= 0)
                close(c->perf_fd[t][e]);
    }
    c->n_threads = 0;
    c->running = false;
}

int prof_counters_find(const struct prof_counters *c, const char *name)
{
    for (int i = 0; i < c->n_events; i++)
        if (!strcmp(c->events[i], name))
            return i;
    return -1;
}
