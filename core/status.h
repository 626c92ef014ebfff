/* core/status.h - status codes and one-line errors.
 *
 * Every fallible function in mixq returns an int: 0 (MQ_OK) on success, a negative
 * MQ_E* code on failure. Results travel through out-parameters. A function that
 * detects a failure reports it once, where the most context is known, with
 * mq_error(), which prints one lowercase line to stderr and returns the code:
 *
 *     if (nd != 2)
 *         return mq_error(MQ_EINVAL, "tensor '%s' has %d dims, want 2", name, nd);
 *
 * Callers that only pass a failure upward return the code without printing again.
 * Libraries never exit or abort on bad input; MQ_ASSERT is for programmer bugs and
 * stays on in release builds.
 *
 * Dependency rule: core/ depends on nothing but libc.
 */
#ifndef MQ_CORE_STATUS_H
#define MQ_CORE_STATUS_H

#include <stdarg.h>

enum mq_status {
    MQ_OK = 0,
    MQ_EINVAL = -1,       /* bad argument or usage */
    MQ_ENOMEM = -2,       /* out of memory, or a size that overflows */
    MQ_EIO = -3,          /* a system call on a file failed */
    MQ_EFORMAT = -4,      /* a file is malformed */
    MQ_EUNSUPPORTED = -5, /* well-formed, but mixq does not support it (yet) */
    MQ_ENOTFOUND = -6,    /* a named thing (key, tensor, backend) does not exist */
    MQ_EBACKEND = -7,     /* a backend is unusable or failed */
    MQ_ERANGE = -8,       /* a value is out of its allowed range */
    MQ_EINTERNAL = -9,    /* an invariant broke: a bug in mixq */
    MQ_STATUS_MIN = -9
};

/* Short description of a status code, e.g. "malformed file". Never NULL. */
const char *mq_strerror(int status);

/* Prints "mixq: error: <formatted message>\n" to stderr and returns `status`.
 * The message is one lowercase line: subject in quotes, no trailing period. */
int mq_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mq_verror(int status, const char *fmt, va_list ap);

/* The last message mq_error formatted on this thread ("" when none), and a switch that
 * keeps mq_error from printing on this thread (messages are still kept), for code that
 * hands errors on instead of printing them: `mixq agent` returns them to its host. */
const char *mq_error_last(void);
void mq_error_set_quiet(int quiet);

/* Aborts with file and line when `cond` is false. For programmer bugs only: never for
 * conditions a file or a user can cause. Stays on in release builds. */
#define MQ_ASSERT(cond)                                                                       \
    do {                                                                                      \
        if (!(cond))                                                                          \
            mq_assert_fail(#cond, __FILE__, __LINE__);                                        \
    } while (0)

_Noreturn void mq_assert_fail(const char *expr, const char *file, int line);

#endif
