/* core/progress.h - one progress line on stderr for long steps, with the time left.
 *
 *     struct mq_progress pr;
 *     mq_progress_init(&pr, want_progress, "sensitivity", n_evals);
 *     for (int i = 0; i < n_evals; i++) {
 *         bool cached = ...;                 // done at no cost: not in the estimate
 *         mq_progress_step(&pr, i + 1, cached, layer_name);
 *     }
 *     mq_progress_end(&pr);
 *
 * prints, overwriting itself (at most 5 times a second, and always the last step):
 *     mixq: sensitivity 12/96 (blk.3.attn_q.weight), 41 s, about 4.8 min left
 * only when enabled and stderr is a terminal (never into logs or pipes). The time left is
 * the mean time of the steps that cost something so far times the steps left. Callers
 * that print their own log lines take the same estimate from mq_progress_left_s.
 *
 * Dependency rule: core/ depends on nothing.
 */
#ifndef MQ_CORE_PROGRESS_H
#define MQ_CORE_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mq_progress {
    bool tty;            /* enabled and stderr is a terminal: the line is printed */
    bool shown;          /* something is on the line (mq_progress_end ends it) */
    char what[96];
    int64_t total;       /* steps (or bytes) in all */
    int64_t done, free;  /* steps done, of which done at no cost (cached) */
    double t0_s, last_s; /* start, last print (monotonic seconds) */
};

/* Starts a progress of `total` steps; `what` is copied. Nothing printed yet. */
void mq_progress_init(struct mq_progress *p, bool enabled, const char *what, int64_t total);
/* Records that `done` steps are done; `free_step`: the step just done cost nothing (a cache
 * hit) and does not count in the estimate. `detail` (may be NULL) names the step. */
void mq_progress_step(struct mq_progress *p, int64_t done, bool free_step, const char *detail);
/* Seconds left by the estimate, or a negative value while nothing costed has finished. */
double mq_progress_left_s(const struct mq_progress *p);
/* Seconds since mq_progress_init. */
double mq_progress_elapsed_s(const struct mq_progress *p);
/* "about 4.8 min left" (or "" while there is no estimate) into buf. */
void mq_progress_left_text(const struct mq_progress *p, char *buf, size_t size);
/* Ends the line (a newline when something was printed). */
void mq_progress_end(struct mq_progress *p);

#endif
