/* cli/tune_common.c - config, outputs and summary shared by `mixq tune` and `mixq search`. */
#include "cli/tune_common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/status.h"
#include "model/quantize.h"
#include "reports/front_io.h"
#include "reports/plot.h"
#include "search/budget.h"

int cli_tune_config(const char *cmd, const struct mq_model *m, const char *config, struct rpt_model_config *cfg,
                    bool *found, struct srch_pins *pins)
{
    (void)cmd;
    memset(cfg, 0, sizeof(*cfg));
    *found = false;
    int rc;
    if (config && !strcmp(config, "none"))
        return MQ_OK;
    if (config) {
        if ((rc = rpt_config_read(config, cfg)) < 0)
            return rc;
        *found = true;
    } else {
        char dir[4096];
        cli_data_path(dir, sizeof(dir), "configs/models");
        if ((rc = rpt_config_find(m->path, dir, cfg, found)) < 0)
            return rc;
    }
    if (!*found)
        return MQ_OK;
    mq_info("model config %s (%d pin%s)", cfg->path, cfg->pins.n, cfg->pins.n == 1 ? "" : "s");
    for (int i = 0; i < cfg->pins.n; i++)
        if ((rc = srch_pins_add(pins, cfg->pins.pin[i].layer, cfg->pins.pin[i].fmt, cfg->pins.pin[i].from)) < 0)
            return rc;
    return MQ_OK;
}

int cli_tune_write(const char *dir, const struct mq_model *m, const struct prof_profile *prof,
                   const struct srch_sensitivity *sens, const struct srch_tune *t, bool plots)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/front.yaml", dir);
    int rc = rpt_front_write(path, m, prof, sens, t, 0);
    if (rc < 0 || !plots)
        return rc;
    char gp[4096];
    if (rpt_gnuplot_find(gp, sizeof(gp)) < 0) {
        mq_warn("gnuplot is not installed: no plots (scripts/install-deps installs it)");
        return MQ_OK;
    }
    const char *slash = strrchr(m->path, '/');
    const char *name = slash ? slash + 1 : m->path;
    if ((rc = rpt_plot_front(dir, name, t)) < 0)
        return rc;
    if (t->chosen >= 0 && (rc = rpt_plot_plan(dir, name, t)) < 0)
        return rc;
    return MQ_OK;
}

void cli_file_size_init(struct cli_file_size *s, const struct mq_model *m, const struct prof_profile *prof,
                        const char *dir, double mem_budget, double lat_budget, double size_budget)
{
    memset(s, 0, sizeof(*s));
    s->m = m;
    snprintf(s->from, sizeof(s->from), "%s/front.yaml point 99999 (chosen)", dir);
    struct rpt_front_point *pt = &s->pt;
    pt->index = 99999;
    pt->chosen = true;
    snprintf(pt->model_path, sizeof(pt->model_path), "%s", m->path);
    snprintf(pt->model_hash, sizeof(pt->model_hash), "%016llx", (unsigned long long)m->content_hash);
    snprintf(pt->workload, sizeof(pt->workload), "%s", prof->workload.label);
    snprintf(pt->target_cpu, sizeof(pt->target_cpu), "%s", prof->target.cpu);
    snprintf(pt->target_backend, sizeof(pt->target_backend), "%s", prof->target.backend);
    snprintf(pt->metric_name, sizeof(pt->metric_name), "%s", m->kind == MQ_MODEL_LLAMA ? "ppl" : "metric");
    pt->threads = prof->target.threads;
    pt->has_mem_budget = isfinite(mem_budget);
    pt->has_lat_budget = isfinite(lat_budget);
    pt->has_size_budget = isfinite(size_budget);
    pt->measured = true;
}

int cli_file_size_bytes(void *ctx, const struct mq_plan *plan, uint64_t *bytes)
{
    struct cli_file_size *s = ctx;
    struct rpt_provenance prov = {.m = s->m, .plan = plan, .plan_from = s->from, .pt = &s->pt};
    int rc = mq_quantize_file_bytes(s->m, plan, rpt_provenance_write, &prov, bytes);
    if (rc == MQ_OK)
        *bytes += CLI_FILE_SIZE_SLACK;
    return rc;
}

/* "q4_0 x 150, q8_0 x 40, f16 x 21" */
static void plan_counts(const struct mq_plan *p, char *buf, size_t size)
{
    int n[MQ_DTYPE_COUNT] = {0};
    for (int l = 0; l < p->n_layers; l++)
        n[p->fmt[l]]++;
    size_t used = 0;
    buf[0] = '\0';
    for (int pass = 0; pass < MQ_DTYPE_COUNT; pass++) { /* most common first */
        int best = -1;
        for (int f = 0; f < MQ_DTYPE_COUNT; f++)
            if (n[f] > 0 && (best < 0 || n[f] > n[best]))
                best = f;
        if (best < 0)
            break;
        used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s x %d", used ? ", " : "",
                                 mq_dtype_name((enum mq_dtype)best), n[best]);
        n[best] = 0;
    }
}

/* "meets all", "over memory", "over memory, size": the budgets a measured plan misses. */
static void verdict(const struct srch_tune *t, const struct srch_candidate *c, char *buf, size_t size)
{
    if (c->meets) {
        snprintf(buf, size, "meets all");
        return;
    }
    bool over[3] = {c->mem > t->mem_budget, c->lat.median_ns > t->lat_budget, c->size > t->size_budget};
    static const char *const name[3] = {"memory", "latency", "size"};
    size_t used = (size_t)snprintf(buf, size, "over");
    for (int i = 0; i < 3; i++)
        if (over[i] && used < size)
            used += (size_t)snprintf(buf + used, size - used, "%s %s", used > 4 ? "," : "", name[i]);
}

static void print_row(const struct srch_tune *t, const struct srch_candidate *c, bool chosen)
{
    char mem[32], lat[32], mad[32], file[32], v[64];
    srch_budget_format_bytes(c->mem, false, mem, sizeof(mem));
    srch_budget_format_time(c->lat.median_ns, lat, sizeof(lat));
    srch_budget_format_time(c->lat.mad_ns, mad, sizeof(mad));
    if (isfinite(c->size))
        srch_budget_format_bytes(c->size, false, file, sizeof(file));
    else
        snprintf(file, sizeof(file), "-");
    verdict(t, c, v, sizeof(v));
    printf("%s %-34.34s %11s %11s %11s ±%-9s %9.3g %9.4f  %s\n", chosen ? "*" : " ", c->label, file, mem, lat, mad,
           c->loss, c->metric, v);
}

/* Several targets: every measured plan's median latency and memory on each target. */
static void print_targets(const struct srch_tune *t)
{
    printf("  %-34s", "per target (median latency, memory)");
    for (int i = 0; i < t->n_targets; i++)
        printf(" %-24.24s", t->target_labels[i]);
    printf("\n");
    for (int pass = 0; pass < 3; pass++) { /* chosen, baselines, the other front points */
        for (int c = 0; c < t->n_cand; c++) {
            const struct srch_candidate *cd = &t->cand[c];
            bool chosen = c == t->chosen;
            if (pass == 0 ? !chosen : chosen || (pass == 1) != (cd->point < 0))
                continue;
            printf("%s %-34.34s", chosen ? "*" : " ", cd->label);
            for (int i = 0; i < cd->n_targets; i++) {
                char lat[32], mem[32], cell[80];
                srch_budget_format_time(cd->tgt[i].lat.median_ns, lat, sizeof(lat));
                srch_budget_format_bytes(cd->tgt[i].mem, false, mem, sizeof(mem));
                snprintf(cell, sizeof(cell), "%s %s%s", lat, mem, cd->tgt[i].meets ? "" : " OVER");
                printf(" %-24.24s", cell);
            }
            printf("\n");
        }
    }
    printf("\n");
}

void cli_tune_summary(const struct mq_model *m, const struct prof_profile *prof, const struct srch_sensitivity *sens,
                      const struct srch_tune *t)
{
    char b1[32], b2[32];
    if (isfinite(t->mem_budget))
        srch_budget_format_bytes(t->mem_budget, false, b1, sizeof(b1));
    else
        snprintf(b1, sizeof(b1), "none");
    if (isfinite(t->lat_budget))
        srch_budget_format_time(t->lat_budget, b2, sizeof(b2));
    else
        snprintf(b2, sizeof(b2), "none");
    printf("model        %s: %d layers (%s), workload %s\n", m->path, m->n_layers, m->arch, prof->workload.label);
    if (t->n_targets > 1) {
        printf("targets      %d, each plan measured on each:", t->n_targets);
        for (int i = 0; i < t->n_targets; i++)
            printf("%s %s", i ? ";" : "", t->target_labels[i]);
        printf("\n             search on per-layer times of the slowest target (conservative); latency and\n"
               "             memory below are the worst target's, per target after the table\n");
    } else {
        printf("target       %s backend, %d threads on %s%s\n", prof->target.backend, prof->target.threads,
               prof->target.cpu, prof->target.emulated ? " (EMULATED: timings say nothing about real hardware)" : "");
    }
    char b3[32];
    if (isfinite(t->size_budget))
        srch_budget_format_bytes(t->size_budget, false, b3, sizeof(b3));
    else
        snprintf(b3, sizeof(b3), "none");
    printf("budgets      memory %s, latency %s per run, file size %s\n", b1, b2, b3);
    printf("sensitivity  %s (loss %s%s)%s\n", srch_sens_method_name(sens->method), sens->loss_name,
           sens->method == SRCH_SENS_GROUPED ? ", estimated from groups" : "",
           sens->method == SRCH_SENS_PROXY ? "; validation measures KL" : "");
    const struct srch_front *f = t->front;
    printf("search       %s%s over 2^%.1f plans: %d points on the front in %.3g s\n", f->method,
           f->exact ? " (exact)" : " (epsilon-approximate)", f->log2_plans, f->n, t->search_seconds);
    if (t->best >= 0) {
        const struct srch_point *pt = &f->pts[t->best];
        srch_budget_format_bytes(pt->mem, false, b1, sizeof(b1));
        srch_budget_format_time(pt->lat, b2, sizeof(b2));
        printf("best         point %d as predicted: %s, %s, %s %.3g\n", t->best, b1, b2, t->loss_name, pt->loss);
    }
    if (!t->validated) {
        printf("\nnot validated: nothing was measured on the target (front.yaml holds the predictions)\n");
        return;
    }
    printf("validation   %d plans built and run in %.1f s; memory is %s; %s reference %.4f\n", t->n_cand,
           t->validate_seconds, t->n_cand && t->cand[0].mem_measured ? "peak RSS" : "the memory model",
           t->metric_name, t->ref_metric);
    printf("\n  %-34s %11s %11s %11s %-10s %9s %9s  %s\n", "plan (measured)", "file", "memory", "latency", " (MAD)",
           "KL", t->metric_name, "budgets");
    if (t->chosen >= 0)
        print_row(t, &t->cand[t->chosen], true);
    for (int i = 0; i < t->n_cand; i++)
        if (i != t->chosen && t->cand[i].point < 0)
            print_row(t, &t->cand[i], false);
    for (int i = 0; i < t->n_cand; i++)
        if (i != t->chosen && t->cand[i].point >= 0)
            print_row(t, &t->cand[i], false);
    printf("\n");
    if (t->n_targets > 1)
        print_targets(t);
    if (t->chosen < 0) {
        printf("chosen       none: no validated front point met both budgets as measured (see front.yaml)\n");
    } else {
        const struct srch_candidate *c = &t->cand[t->chosen];
        char counts[128];
        plan_counts(c->plan, counts, sizeof(counts));
        printf("chosen       %s: %s\n", c->label, counts);
        int kept = 0, quantized_src = 0;
        for (int l = 0; l < m->n_layers; l++) {
            quantized_src += mq_dtype_get(m->layers[l].src_type)->is_quantized;
            kept += c->plan->fmt[l] == m->layers[l].src_type;
        }
        if (quantized_src)
            printf("             %d of %d layers kept as stored in the file (no requantization)\n", kept,
                   m->n_layers);
        /* the comparisons the plan is for: the baselines that meet the budgets too */
        for (int i = 0; i < t->n_cand; i++) {
            const struct srch_candidate *b = &t->cand[i];
            if (b->point >= 0)
                continue;
            char v[64];
            verdict(t, b, v, sizeof(v));
            if (!b->meets)
                printf("             %s does not fit: %s as measured\n", b->label, v);
            else if (c->loss > 0)
                printf("             %s meets them with %.3gx the chosen plan's KL\n", b->label, b->loss / c->loss);
            else
                printf("             %s meets them with KL %.3g (the chosen plan's: %.3g)\n", b->label, b->loss,
                       c->loss);
        }
    }
}
