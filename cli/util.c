/* cli/util.c - helpers shared by subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"

#ifndef MIXQ_DATADIR
#define MIXQ_DATADIR "."
#endif

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mixq: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'mixq %s --help')\n", cmd);
    va_end(ap);
    return CLI_USAGE;
}

int cli_bad_option(const char *cmd, char **argv)
{
    return cli_usage_error(cmd, "option '%s' is unknown or lacks its argument", argv[optind - 1]);
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_usage_error(cmd, "%s wants an integer in %lld..%lld, not '%s'", opt, lo, hi, s);
    *out = v;
    return CLI_OK;
}

const char *cli_datadir(void)
{
    const char *d = getenv("MIXQ_DATADIR");
    return d && *d ? d : MIXQ_DATADIR;
}

void cli_data_path(char *buf, size_t size, const char *rel)
{
    snprintf(buf, size, "%s/%s", cli_datadir(), rel);
}

const char *cli_fmt_bytes(char *buf, size_t size, uint64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, size, "%.2f %s", v, units[u]);
    return buf;
}
