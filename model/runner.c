/* model/runner.c - what every runner (model/runner.h) shares. */
#include "model/runner.h"

#include "core/status.h"

int mq_runner_check(const struct mq_model *m, const struct mq_workload *w)
{
    if (!m->runner->accepts(m, w))
        return mq_error(MQ_EINVAL, "workload '%s' does not apply to %s models (default: %s)", w->label,
                        m->runner->kind, m->runner->default_workload);
    return m->runner->check ? m->runner->check(m, w) : MQ_OK;
}
