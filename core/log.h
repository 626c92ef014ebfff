/* core/log.h - leveled logging to stderr.
 *
 *     mq_log_set_level(MQ_LOG_DEBUG);          // the CLI does this for -v; -q gives MQ_LOG_WARN
 *     mq_info("loaded '%s': %d layers", path, n);
 *
 * Levels: errors always print (through mq_error in status.h); warnings unless quiet;
 * info by default; debug with -v. Messages are one line each, prefixed "mixq: " (or the
 * name mq_log_set_name gave).
 *
 * The level and the name are the process-wide mutable state in core/: it is set once by
 * the CLI before any work starts and only read afterwards, so they need no locking.
 *
 * Dependency rule: core/ depends on nothing but libc.
 */
#ifndef MQ_CORE_LOG_H
#define MQ_CORE_LOG_H

#include <stdbool.h>

enum mq_log_level { MQ_LOG_ERROR = 0, MQ_LOG_WARN = 1, MQ_LOG_INFO = 2, MQ_LOG_DEBUG = 3 };

void mq_log_set_level(enum mq_log_level level);
/* The name every line starts with: "mixq" unless set (MPI worker ranks: "mixq[rank 3]",
 * core/dist.h). Set once at start, like the level; the string is copied. */
void mq_log_set_name(const char *name);
const char *mq_log_name(void);
enum mq_log_level mq_log_get_level(void);
bool mq_log_enabled(enum mq_log_level level);

void mq_log(enum mq_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define mq_warn(...) mq_log(MQ_LOG_WARN, __VA_ARGS__)
#define mq_info(...) mq_log(MQ_LOG_INFO, __VA_ARGS__)
#define mq_debug(...) mq_log(MQ_LOG_DEBUG, __VA_ARGS__)

#endif
