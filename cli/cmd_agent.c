/* cli/cmd_agent.c - `mixq agent`: serve measurement requests on stdin/stdout (the protocol
 * in cli/remote.h), so that `mixq tune --remote 'ssh board mixq agent'` measures here. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "core/log.h"
#include "core/status.h"

static void agent_usage(FILE *f)
{
    fprintf(f,
            "usage: mixq agent [-v | -q]\n\n"
            "Serves measurement requests from a host on stdin and answers on stdout\n"
            "(protocol %s: frames of YAML), so that a host measures on this machine:\n\n"
            "    mixq tune MODEL --remote 'ssh board mixq agent' --budget 2GB\n\n"
            "Requests: hello (this machine's identity), profile (per-layer costs, as 'mixq\n"
            "profile' would measure them here, with this machine's cache, so an interrupted\n"
            "profile resumes), measure (one plan's latency and peak RSS), bye. The model must be\n"
            "on this machine (at the path the host names); its content must be the host's.\n"
            "Progress goes to stderr. Not meant to be run by hand.\n\n"
            "options:\n"
            "  -v, -q      more or fewer messages on stderr\n"
            "  --help      this text\n",
            CLI_AGENT_PROTOCOL);
}

int cmd_agent(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
        switch (c) {
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': agent_usage(stdout); return CLI_OK;
        default: return cli_bad_option("agent", argv);
        }
    }
    if (optind != argc)
        return cli_usage_error("agent", "takes no arguments");
    if (isatty(STDIN_FILENO))
        mq_warn("agent: reading %s frames from a terminal: this command is for 'mixq tune --remote'",
                CLI_AGENT_PROTOCOL);
    return cli_exit(cli_agent_serve(STDIN_FILENO, STDOUT_FILENO));
}
