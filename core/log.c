/* core/log.c - leveled logging to stderr. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static enum mq_log_level log_level = MQ_LOG_INFO;
static char log_name[48] = "mixq";

void mq_log_set_level(enum mq_log_level level) { log_level = level; }

enum mq_log_level mq_log_get_level(void) { return log_level; }

void mq_log_set_name(const char *name) { snprintf(log_name, sizeof(log_name), "%s", name); }

const char *mq_log_name(void) { return log_name; }

bool mq_log_enabled(enum mq_log_level level) { return level <= log_level; }

void mq_log(enum mq_log_level level, const char *fmt, ...)
{
    static const char *const prefix[] = {
        [MQ_LOG_ERROR] = "error: ",
        [MQ_LOG_WARN] = "warning: ",
        [MQ_LOG_INFO] = "",
        [MQ_LOG_DEBUG] = "debug: ",
    };
    if (!mq_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s", log_name, prefix[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
