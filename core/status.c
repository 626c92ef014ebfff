/* core/status.c - status strings and one-line error printing. */
#include "core/status.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const status_names[-MQ_STATUS_MIN + 1] = {
    [0] = "success",
    [-MQ_EINVAL] = "invalid argument",
    [-MQ_ENOMEM] = "out of memory",
    [-MQ_EIO] = "input/output error",
    [-MQ_EFORMAT] = "malformed file",
    [-MQ_EUNSUPPORTED] = "not supported",
    [-MQ_ENOTFOUND] = "not found",
    [-MQ_EBACKEND] = "backend failure",
    [-MQ_ERANGE] = "value out of range",
    [-MQ_EINTERNAL] = "internal error",
};

const char *mq_strerror(int status)
{
    if (status > 0 || status < MQ_STATUS_MIN || !status_names[-status])
        return "unknown status";
    return status_names[-status];
}

static _Thread_local char last_msg[1024];
static _Thread_local int quiet_errors;

const char *mq_error_last(void) { return last_msg; }

void mq_error_set_quiet(int quiet) { quiet_errors = quiet; }

int mq_verror(int status, const char *fmt, va_list ap)
{
    char *msg = last_msg;
    vsnprintf(msg, sizeof(last_msg), fmt, ap);
    /* One line, always: a newline inside a message (say, from a hostile file's
     * string) would break the contract, so it is replaced. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (!quiet_errors)
        fprintf(stderr, "%s: error: %s\n", mq_log_name(), msg);
    return status;
}

int mq_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mq_verror(status, fmt, ap);
    va_end(ap);
    return status;
}

void mq_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s: internal error: assertion '%s' failed at %s:%d\n", mq_log_name(), expr,
            file, line);
    abort();
}
