/* cli/cmd_backends.c - `mixq backends`: every backend compiled in, usable or why not. */
#include <getopt.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backends/backend.h"
#include "cli/cli.h"
#include "core/status.h"
#include "profiler/counters.h"
#include "profiler/topology.h"

int cmd_backends(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: mixq backends\n\n"
                   "Lists every backend compiled into mixq: whether it is usable on this machine\n"
                   "(and if not, why), what it will use, and the formats it runs; then the\n"
                   "machine's topology (hwloc), its CPU features, and the performance counters\n"
                   "mixq can read here (PAPI components, events used, and why others are missing).\n");
            return CLI_OK;
        }
        return cli_bad_option("backends", argv);
    }
    if (optind != argc)
        return cli_usage_error("backends", "takes no arguments");
    for (int i = 0; i < be_registry_count(); i++) {
        const struct be_ops *ops = be_registry_get(i);
        struct be_info info;
        ops->probe(&info);
        printf("%-6s %-8s %s\n", ops->name, info.usable ? "usable" : "disabled", ops->summary);
        if (info.usable)
            printf("       %s\n", info.detail);
        else
            printf("       why: %s\n", info.reason);
        if (!info.usable)
            continue;
        void *ctx;
        if (ops->open(&(struct be_config){.n_threads = 1}, &ctx) < 0)
            continue;
        printf("       weight formats:");
        for (int t = 0; t < MQ_DTYPE_COUNT; t++)
            if (mq_dtype_get((enum mq_dtype)t)->is_plan_format &&
                ops->supports(ctx, BE_OP_MATMUL, (enum mq_dtype)t))
                printf(" %s", mq_dtype_name((enum mq_dtype)t));
        printf("\n");
        ops->close(ctx);
    }

    struct prof_topology topo;
    char buf[1024];
    if (prof_topology_load(&topo) == MQ_OK) {
        prof_topology_summary(&topo, buf, sizeof(buf));
        printf("\ntopology   %s (%s, %s)\n", buf, topo.cpu_model, topo.arch);
        prof_topology_release(&topo);
    }
    prof_cpu_features(buf, sizeof(buf));
    printf("features   %s\n", buf[0] ? buf : "(none found in /proc/cpuinfo)");
    prof_papi_describe(buf, sizeof(buf));
    printf("papi       %s\n", buf);
    struct prof_counters ctr;
    int tid = (int)syscall(SYS_gettid);
    if (prof_counters_open(&ctr, &tid, 1, false) == MQ_OK) {
        printf("counters   ");
        for (int e = 0; e < ctr.n_events; e++)
            printf("%s%s", e ? ", " : "", ctr.events[e]);
        printf("%s\n", ctr.n_events ? "" : "none");
        for (int e = 0; e < ctr.n_missing; e++)
            printf("  missing  %-24s %s\n", ctr.missing[e], ctr.missing_why[e]);
        prof_counters_close(&ctr);
    }
    return CLI_OK;
}
