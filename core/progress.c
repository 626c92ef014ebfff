/* core/progress.c - the progress line with the time left (core/progress.h). */
#include "core/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mq_progress_init(struct mq_progress *p, bool enabled, const char *what, int64_t total)
{
    memset(p, 0, sizeof(*p));
    p->tty = enabled && isatty(STDERR_FILENO);
    snprintf(p->what, sizeof(p->what), "%s", what ? what : "");
    p->total = total;
    p->t0_s = now_s();
    p->last_s = -1;
}

double mq_progress_elapsed_s(const struct mq_progress *p) { return now_s() - p->t0_s; }

double mq_progress_left_s(const struct mq_progress *p)
{
    int64_t costed = p->done - p->free;
    if (costed <= 0 || p->done >= p->total)
        return p->done >= p->total && p->total > 0 ? 0 : -1;
    return mq_progress_elapsed_s(p) / (double)costed * (double)(p->total - p->done);
}

void mq_progress_left_text(const struct mq_progress *p, char *buf, size_t size)
{
    double left = mq_progress_left_s(p);
    if (left < 0)
        snprintf(buf, size, "%s", "");
    else if (left < 90)
        snprintf(buf, size, "about %.0f s left", left);
    else if (left < 5400)
        snprintf(buf, size, "about %.1f min left", left / 60);
    else
        snprintf(buf, size, "about %.1f h left", left / 3600);
}

void mq_progress_step(struct mq_progress *p, int64_t done, bool free_step, const char *detail)
{
    bool was_done = p->done >= p->total && p->last_s >= 0;
    p->free += free_step && done > p->done;
    p->done = done;
    if (!p->tty || was_done) /* the last step is shown once */
        return;
    double t = now_s();
    if (done < p->total && p->last_s >= 0 && t - p->last_s < 0.2)
        return;
    p->last_s = t;
    char left[48];
    mq_progress_left_text(p, left, sizeof(left));
    /* \033[K clears what a longer previous line left behind */
    fprintf(stderr, "\rmixq: %s %lld/%lld%s%s%s, %.0f s%s%s\033[K", p->what, (long long)done, (long long)p->total,
            detail && *detail ? " (" : "", detail && *detail ? detail : "", detail && *detail ? ")" : "",
            t - p->t0_s, left[0] ? ", " : "", left);
    p->shown = true;
}

void mq_progress_end(struct mq_progress *p)
{
    if (p->shown)
        fputc('\n', stderr);
    p->shown = false;
}
