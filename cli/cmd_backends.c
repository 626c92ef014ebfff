/* cli/cmd_backends.c - `mixq backends`: every backend compiled in, usable or why not. */
#include <getopt.h>
#include <stdio.h>

#include "backends/backend.h"
#include "cli/cli.h"

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
                   "(and if not, why), what it will use, and the formats it runs.\n");
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
    return CLI_OK;
}
