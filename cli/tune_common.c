/* cli/tune_common.c - config, outputs and summary shared by `mixq tune` and `mixq search`. */
#include "cli/tune_common.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/status.h"
#include "model/imatrix.h"
#include "model/quantize.h"
#include "onnx/onnx.h"
#include "profiler/imatrix_cache.h"
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

/* Reads the imatrix file at path and sets it on m; what it holds goes into ref. */
static int tune_apply_imatrix(struct mq_model *m, const char *path, struct rpt_imatrix_ref *ref)
{
    struct mq_imatrix *im = NULL;
    int used = 0;
    int rc = mq_model_apply_imatrix_file(m, path, true, &used, &im);
    if (rc == MQ_OK) {
        mq_info("imatrix %s: %d of %d layers (%d entries, %u chunks of %u tokens), %d error-compensated", path, used,
                m->n_layers, im->n_entries, im->chunk_count, im->chunk_size, m->n_compensated);
        ref->compensated = m->n_compensated;
        if (!ref->text[0] && im->n_datasets > 0)
            snprintf(ref->text, sizeof(ref->text), "%s", im->datasets[0]);
        ref->chunks = im->chunk_count;
        ref->ctx = im->chunk_size;
    }
    mq_imatrix_free(im);
    return rc;
}

int cli_tune_imatrix(struct mq_model *m, struct be_backend *be, const char *imatrix, bool no_imatrix,
                     bool no_compensate,
                     const char *calib, long long ctx, long long calib_chunks, const char *cache_dir, bool refresh,
                     struct cli_tune_texts *tx)
{
    memset(&tx->imatrix, 0, sizeof(tx->imatrix));
    tx->no_imatrix[0] = '\0';
    tx->cached = false;
    tx->seconds = 0;
    tx->ctx = ctx;
    if (m->kind == MQ_MODEL_LLAMA && !ctx) /* the evaluation's default: min(training context, 512) */
        tx->ctx = m->hp.n_ctx_train > 0 && m->hp.n_ctx_train < 512 ? m->hp.n_ctx_train : 512;
    if (m->kind != MQ_MODEL_LLAMA) {
        if (imatrix)
            return mq_error(MQ_EUNSUPPORTED, "--imatrix: '%s' is an ONNX model; importance matrices apply to GGUF "
                            "llama models only", m->path);
        mq_debug("no importance matrix: '%s' is an ONNX model, whose formats are quantized plainly", m->path);
        snprintf(tx->no_imatrix, sizeof(tx->no_imatrix), "an ONNX model");
        return MQ_OK;
    }
    if (no_imatrix) {
        mq_info("no importance matrix (--no-imatrix): every format is quantized plainly");
        snprintf(tx->no_imatrix, sizeof(tx->no_imatrix), "--no-imatrix");
        return MQ_OK;
    }
    struct rpt_imatrix_ref ref;
    char real[PATH_MAX];
    int rc;
    if (imatrix) {
        /* by its full path, so that 'mixq quantize --plan DIR/front.yaml' finds it from anywhere */
        if ((rc = rpt_imatrix_ref_given(realpath(imatrix, real) ? real : imatrix, &ref)) < 0 ||
            (rc = tune_apply_imatrix(m, ref.path, &ref)) < 0)
            return rc;
        tx->imatrix = ref;
        return MQ_OK;
    }
    char deftext[4096];
    if (!calib) {
        cli_data_path(deftext, sizeof(deftext), MQ_IMATRIX_DEFAULT_TEXT);
        calib = deftext;
    }
    if ((rc = cli_check_file("calibration text", calib)) < 0)
        return rc;
    if (ctx && ctx < MQ_IMATRIX_MIN_CTX)
        return mq_error(MQ_EINVAL, "--ctx %lld: the importance matrix wants chunks of at least %d tokens "
                        "(llama-imatrix ignores shorter batches); give --ctx %d or more, or --no-imatrix", ctx,
                        MQ_IMATRIX_MIN_CTX, MQ_IMATRIX_MIN_CTX);
    bool overlap = false;
    if (tx->eval && (rc = prof_text_overlap(calib, tx->eval, &overlap)) < 0)
        return rc;
    if (overlap)
        mq_warn("the calibration text '%s' and the evaluation text '%s' are the same text (or one begins with the "
                "other): KL is measured on the text the importance matrix was fitted to; give --calib or --eval "
                "another text", calib, tx->eval);
    struct mq_imatrix_config cfg = {
        .text = calib, .n_ctx = ctx, .max_chunks = calib_chunks, .gram = !no_compensate, .progress = true};
    struct prof_imatrix_file f;
    mq_info("importance matrix on the calibration text %s", calib);
    if ((rc = prof_imatrix_get(m, be, &cfg, cache_dir, refresh, &f)) < 0)
        return rc;
    memset(&ref, 0, sizeof(ref));
    if ((rc = rpt_imatrix_ref_given(realpath(f.path, real) ? real : f.path, &ref)) < 0)
        return rc;
    snprintf(ref.source, sizeof(ref.source), "computed");
    snprintf(ref.text, sizeof(ref.text), "%s", calib);
    if ((rc = tune_apply_imatrix(m, ref.path, &ref)) < 0)
        return rc;
    tx->imatrix = ref;
    tx->cached = f.hit;
    tx->seconds = f.seconds;
    return MQ_OK;
}

int cli_tune_write(const char *dir, const struct mq_model *m, const struct prof_profile *prof,
                   const struct srch_sensitivity *sens, const struct srch_tune *t, bool plots,
                   const struct rpt_imatrix_ref *im)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/front.yaml", dir);
    int rc = rpt_front_write(path, m, prof, sens, t, 0, im);
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
                        const char *dir, double mem_budget, double lat_budget, double size_budget,
                        const struct rpt_imatrix_ref *im)
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
    if (im)
        pt->imatrix = *im;
}

int cli_file_size_bytes(void *ctx, const struct mq_plan *plan, uint64_t *bytes)
{
    struct cli_file_size *s = ctx;
    struct rpt_provenance prov = {.m = s->m, .plan = plan, .plan_from = s->from, .pt = &s->pt,
                                  .imatrix = &s->pt.imatrix};
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
    bool over[4] = {c->mem > t->mem_budget, srch_cand_lat(c) > t->lat_budget, c->size > t->size_budget,
                    c->loss > t->max_kl};
    static const char *const name[4] = {"memory", "latency", "size", "max-kl"};
    size_t used = (size_t)snprintf(buf, size, "over");
    for (int i = 0; i < 4; i++)
        if (over[i] && used < size)
            used += (size_t)snprintf(buf + used, size - used, "%s %s", used > 4 ? "," : "", name[i]);
}

int cli_tune_unmet(const struct srch_tune *t, const char *where)
{
    if (!isfinite(t->max_kl))
        return mq_error(MQ_ERANGE, "no validated plan met both budgets as measured%s; front.yaml lists what came "
                        "closest", where);
    int smallest, under;
    srch_tune_kl_reach(t, &smallest, &under);
    if (smallest < 0)
        return mq_error(MQ_ERANGE, "--max-kl %g: no plan was measured", t->max_kl);
    const struct srch_candidate *s = &t->cand[smallest];
    if (under < 0)
        return mq_error(MQ_ERANGE, "--max-kl %g is below the smallest KL any plan reaches: %.4g (%s, as measured; "
                        "front.yaml lists the plans)", t->max_kl, s->loss, s->label);
    const struct srch_candidate *u = &t->cand[under];
    char v[64];
    verdict(t, u, v, sizeof(v));
    if (u->meets) /* a baseline outside the plans searched (--formats, pins) */
        return mq_error(MQ_ERANGE, "no validated front point within --max-kl %g met the budgets as measured%s; %s "
                        "(KL %.4g) does, but is not a plan of the searched space (--formats, --pin)", t->max_kl,
                        where, u->label, u->loss);
    return mq_error(MQ_ERANGE, "no validated plan within --max-kl %g met the other budgets as measured%s: the "
                    "fastest within it, %s (KL %.4g), does not fit: %s as measured; front.yaml lists what came "
                    "closest", t->max_kl, where, u->label, u->loss, v);
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

/* The deployment runtime: each plan's predicted and measured latency here beside the
 * runtime's, and both tools' KL; the median gaps. */
static void print_runtime(const struct srch_tune *t)
{
    printf("runtime      %s (%s): every validated plan written as a GGUF file, timed by llama-bench and its KL\n"
           "             measured by llama-perplexity; the latency budget is met or missed in %s\n",
           t->runtime_name, t->runtime_detail, t->runtime_name);
    printf("  %-34s %10s %10s %10s %-10s %8s %10s %10s\n", "plan", "predicted", "mixq", t->runtime_name, " (MAD)",
           "gap", "KL mixq", "KL there");
    double *gap = malloc(2 * ((size_t)t->n_cand + 1) * sizeof(double)), *ratio = gap ? gap + t->n_cand + 1 : NULL;
    int n = 0, n_gap = 0;
    for (int pass = 0; pass < 3; pass++) { /* chosen, baselines, the other front points */
        for (int i = 0; i < t->n_cand; i++) {
            const struct srch_candidate *c = &t->cand[i];
            bool chosen = i == t->chosen;
            if (!c->has_rt || (pass == 0 ? !chosen : chosen || (pass == 1) != (c->point < 0)))
                continue;
            char pl[32], ml[32], rl[32], mad[32];
            srch_budget_format_time(c->pred_lat, pl, sizeof(pl));
            srch_budget_format_time(c->lat.median_ns, ml, sizeof(ml));
            srch_budget_format_time(c->rt.lat.median_ns, rl, sizeof(rl));
            srch_budget_format_time(c->rt.lat.mad_ns, mad, sizeof(mad));
            double g = c->pred_lat / c->rt.lat.median_ns - 1; /* NaN: a plan outside the searched formats */
            char gs[16] = "-";
            if (isfinite(g))
                snprintf(gs, sizeof(gs), "%+.1f%%", 100 * g);
            printf("%s %-34.34s %10s %10s %10s ±%-9s %8s %10.4g %10.4g\n", chosen ? "*" : " ", c->label, pl, ml, rl, mad,
                   gs, c->loss, c->rt.kl);
            if (gap && isfinite(g))
                gap[n_gap++] = g;
            if (gap)
                ratio[n++] = c->lat.median_ns / c->rt.lat.median_ns;
        }
    }
    if (n_gap)
        printf("             gap: mixq's predicted latency against %s's measured one, median %+.1f%% over %d plans\n",
               t->runtime_name, 100 * prof_median(gap, n_gap), n_gap);
    if (n)
        printf("             mixq's measured latency / %s's: median %.3gx over %d plans\n", t->runtime_name,
               prof_median(ratio, n), n);
    free(gap);
    printf("\n");
}

/* The predicted KL of the validated plans against the measured one (reports/front_io.h). */
static void print_calibration(const struct srch_sensitivity *sens, const struct srch_tune *t)
{
    double *err = malloc(((size_t)t->n_cand + 1) * sizeof(double)), med, worst;
    int n = err ? rpt_front_loss_errors(sens, t, err, &med, &worst) : 0;
    if (n > 0) {
        printf("calibration  predicted (%s sensitivity) vs measured KL of the %d validated plans: median error "
               "%.1f%%, worst %.1f%%\n", srch_sens_method_name(sens->method), n, med, worst);
        if (sens->method == SRCH_SENS_CALIBRATED)
            printf("             the fit: leave-one-out Spearman %.3f, median error %.1f%% over its %d measured "
                   "group points\n", sens->rank_corr, 100 * sens->loo_median_err, sens->n_points);
        for (int i = 0; i < t->n_cand; i++)
            if (!isnan(err[i]))
                printf("             %-34s predicted %-10.4g measured %-10.4g %+.1f%%\n", t->cand[i].label,
                       t->cand[i].pred_loss, t->cand[i].loss, err[i]);
        printf("\n");
    }
    free(err);
}

/* Which texts the tuning calibrated on (its importance matrix) and evaluated on. */
static void print_texts(const struct mq_model *m, const struct cli_tune_texts *tx)
{
    const struct rpt_imatrix_ref *im = &tx->imatrix;
    if (!im->set)
        printf("imatrix      none (%s): every format quantized plainly\n", tx->no_imatrix[0] ? tx->no_imatrix : "none");
    else if (!strcmp(im->source, "computed"))
        printf("imatrix      computed on %s, %lld chunks of %lld tokens (calibration; %s %.1f s): %s\n", im->text,
               im->chunks, im->ctx, tx->cached ? "cached, computed in" : "computed in", tx->seconds, im->path);
    else
        printf("imatrix      given: %s (%lld chunks of %lld tokens of %s)\n", im->path, im->chunks, im->ctx,
               im->text[0] ? im->text : "an unnamed text");
    if (im->set)
        printf("compensation %d layers error-compensated (GPTQ, Gram matrices in the imatrix file)%s\n",
               im->compensated, im->compensated ? "" : ": none (--no-compensate, a file without them, or "
                                                           "layer inputs too large)");
    if (m->kind == MQ_MODEL_ONNX && mq_onnx_synthetic_inputs(m, tx->eval))
        printf("evaluation   SYNTHETIC inputs: %lld seeded random samples (no known task and no "
               "--inputs): the "
               "quality figures are of random data\n",
               tx->chunks > 0 ? tx->chunks : (long long)MQ_ONNX_RANDOM_SAMPLES);
    else if (tx->eval && tx->ctx > 0)
        printf("evaluation   %s, %lld chunk%s of %lld tokens (sensitivity and validation KL)\n", tx->eval, tx->chunks,
               tx->chunks == 1 ? "" : "s", tx->ctx);
    else if (tx->chunks > 0)
        printf("evaluation   %s, the first %lld samples (sensitivity and validation)\n",
               tx->eval ? tx->eval : "the model's default data", tx->chunks);
    else
        printf("evaluation   %s, every sample (sensitivity and validation)\n",
               tx->eval ? tx->eval : "the model's default data");
}

void cli_tune_summary(const struct mq_model *m, const struct prof_profile *prof, const struct srch_sensitivity *sens,
                      const struct srch_tune *t, const struct cli_tune_texts *tx)
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
    printf("budgets      memory %s, latency %s per run, file size %s", b1, b2, b3);
    if (isfinite(t->max_kl)) /* --max-kl */
        printf(", KL at most %.4g (measured: the fastest plan within it is chosen)", t->max_kl);
    printf("\n");
    printf("sensitivity  %s (loss %s%s)%s\n", srch_sens_method_name(sens->method), sens->loss_name,
           sens->method == SRCH_SENS_GROUPED ? ", estimated from groups" : "",
           sens->method == SRCH_SENS_PROXY ? "; validation measures KL" : "");
    if (tx)
        print_texts(m, tx);
    const struct srch_front *f = t->front;
    printf("search       %s%s over 2^%.1f plans: %d points on the front in %.3g s\n", f->method,
           f->exact ? " (exact)" : " (epsilon-approximate)", f->log2_plans, f->n, t->search_seconds);
    if (t->best >= 0) {
        const struct srch_point *pt = &f->pts[t->best];
        srch_budget_format_bytes(pt->mem, false, b1, sizeof(b1));
        srch_budget_format_time(pt->lat, b2, sizeof(b2));
        printf("best         point %d as predicted: %s, %s, %s %.3g\n", t->best, b1, b2, t->loss_name, pt->loss);
    }
    if (isfinite(t->max_kl) && !isnan(t->loss_bar)) /* --max-kl: where the front was queried */
        printf("KL bound     front queried at predicted %s %.4g (KL bound %.4g / %.3g, the measured/predicted "
               "ratio%s)\n", t->loss_name, t->loss_bar, t->max_kl, isnan(t->loss_ratio) ? 1.0 : t->loss_ratio,
               isnan(t->loss_ratio) ? " assumed" : " of the measured plans nearest the bound");
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
    if (t->runtime_name[0])
        print_runtime(t);
    print_calibration(sens, t);
    if (t->chosen < 0) {
        printf("chosen       none: no validated front point met %s as measured (see front.yaml)\n",
               isfinite(t->max_kl) ? "the budgets and the KL bound" : "both budgets");
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
            else if (isfinite(t->max_kl) && srch_cand_lat(c) > 0) /* --max-kl: the fastest is chosen */
                printf("             %s meets them with %.3gx the chosen plan's latency (KL %.3g, the chosen "
                       "plan's: %.3g)\n", b->label, srch_cand_lat(b) / srch_cand_lat(c), b->loss, c->loss);
            else if (c->loss > 0)
                printf("             %s meets them with %.3gx the chosen plan's KL\n", b->label, b->loss / c->loss);
            else
                printf("             %s meets them with KL %.3g (the chosen plan's: %.3g)\n", b->label, b->loss,
                       c->loss);
        }
    }
}
