/* reports/compare.c - hardware comparison reports: loading, analysis, and the report. */
#include "reports/compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/status.h"
#include "reports/doc.h"
#include "reports/plot.h"
#include "reports/profile_io.h"
#include "reports/yaml_doc.h"

#ifndef MIXQ_VERSION
#define MIXQ_VERSION "unknown"
#endif

/* One colour per target, the same in every plot and front. */
static const char *const target_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                            "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define N_COLORS (sizeof(target_colors) / sizeof(target_colors[0]))

/* ---- loading ------------------------------------------------------------------------------ */

/* "cpu avx512vnni", "neon dotprod+fp16 (emulated)": the backend and the kernel path its
 * detail names ("path X: ..."). */
static void target_label(const char *backend, const char *detail, bool emulated, char *buf,
                         size_t size)
{
    char path[48] = "";
    if (!strncmp(detail, "path ", 5)) {
        size_t n = strcspn(detail + 5, ": ");
        snprintf(path, sizeof(path), "%.*s", (int)(n < sizeof(path) - 1 ? n : sizeof(path) - 1),
                 detail + 5);
    }
    snprintf(buf, size, "%s%s%s%s", backend[0] ? backend : "?", path[0] ? " " : "", path,
             emulated ? " (emulated)" : "");
}

/* Letters and digits of label, other runs as one '-', after "tN-". */
static void target_slug(int i, const char *label, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "t%d", i + 1);
    bool dash = true;
    for (const char *p = label; *p && n + 2 < size && n < 40; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (ok) {
            if (dash)
                buf[n++] = '-';
            buf[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        dash = !ok;
    }
    buf[n] = '\0';
}

/* Makes labels unique: a second "cpu avx2" becomes "cpu avx2 #2". */
static void unique_label(char (*labels)[96], int n, char *label)
{
    char base[96];
    snprintf(base, sizeof(base), "%s", label);
    for (int k = 2;; k++) {
        bool taken = false;
        for (int i = 0; i < n; i++)
            taken |= !strcmp(labels[i], label);
        if (!taken)
            return;
        snprintf(label, 96, "%.80s #%d", base, k);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The role of a layer: its name without "blk.N." and ".weight". */
static void layer_role(const char *name, char *buf, size_t size)
{
    int b, n = 0;
    if (sscanf(name, "blk.%d.%n", &b, &n) == 1 && n > 0)
        name += n;
    snprintf(buf, size, "%s", name);
    size_t len = strlen(buf);
    if (len > 7 && !strcmp(buf + len - 7, ".weight"))
        buf[len - 7] = '\0';
}

static bool is_lookup(const struct prof_profile *p, int l)
{
    bool any = false;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        double ns = p->layer_ns[(size_t)l * MQ_DTYPE_COUNT + (size_t)f];
        if (isnan(ns))
            continue;
        if (ns > 0)
            return false;
        any = true;
    }
    return any;
}

/* Groups the layers by shape; times are the medians over each shape's layers. */
static int build_shapes(struct rpt_cmp *c)
{
    const struct prof_profile *p0 = c->targets[0].prof;
    int L = p0->n_layers;
    int *shape_of = malloc(((size_t)L + 1) * sizeof(*shape_of));
    double *vals = malloc(((size_t)L + 1) * sizeof(*vals));
    c->shapes = calloc((size_t)L + 1, sizeof(*c->shapes));
    if (!shape_of || !vals || !c->shapes) {
        free(shape_of);
        free(vals);
        return mq_error(MQ_ENOMEM, "cannot allocate the shape table of %d layers", L);
    }
    for (int l = 0; l < L; l++) {
        shape_of[l] = -1;
        if (is_lookup(p0, l)) {
            c->n_lookups++;
            continue;
        }
        int s = 0;
        while (s < c->n_shapes &&
               !(c->shapes[s].K == p0->layer_in[l] && c->shapes[s].N == p0->layer_out[l]))
            s++;
        struct rpt_cmp_shape *sh = &c->shapes[s];
        if (s == c->n_shapes) {
            c->n_shapes++;
            sh->K = p0->layer_in[l];
            sh->N = p0->layer_out[l];
        }
        shape_of[l] = s;
        sh->n_layers++;
        char role[MQ_GGUF_MAX_NAME + 1];
        layer_role(p0->layer_names[l], role, sizeof(role));
        /* the roles, each once, up to what fits */
        size_t len = strlen(sh->roles), rl = strlen(role);
        bool seen = false;
        for (const char *q = sh->roles; (q = strstr(q, role)) != NULL; q += rl)
            seen |= (q == sh->roles || q[-1] == ' ') && (q[rl] == ',' || q[rl] == '\0');
        if (!seen && len + rl + 8 < sizeof(sh->roles))
            snprintf(sh->roles + len, sizeof(sh->roles) - len, "%s%s", len ? ", " : "", role);
        else if (!seen && !strstr(sh->roles, "..."))
            snprintf(sh->roles + len, sizeof(sh->roles) - len, "%s", ", ...");
    }
    for (int s = 0; s < c->n_shapes; s++)
        for (int t = 0; t < c->n_targets; t++)
            for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
                const struct prof_profile *p = c->targets[t].prof;
                int n = 0;
                for (int l = 0; l < L; l++) {
                    double ns = p->layer_ns[(size_t)l * MQ_DTYPE_COUNT + (size_t)f];
                    if (shape_of[l] == s && isfinite(ns) && ns > 0)
                        vals[n++] = ns;
                }
                qsort(vals, (size_t)n, sizeof(*vals), cmp_double);
                c->shapes[s].ns[t][f] = !n      ? NAN
                                        : n % 2 ? vals[n / 2]
                                                : 0.5 * (vals[n / 2 - 1] + vals[n / 2]);
            }
    free(shape_of);
    free(vals);
    return MQ_OK;
}

static const struct prof_e2e *e2e_of(const struct prof_profile *p, enum mq_dtype fmt)
{
    for (int i = 0; i < p->n_e2e; i++)
        if (p->e2e[i].fmt == fmt && p->e2e[i].time.median_ns > 0)
            return &p->e2e[i];
    return NULL;
}

bool rpt_cmp_measured(const struct prof_profile *p, enum mq_dtype fmt)
{
    if ((unsigned)fmt >= MQ_DTYPE_COUNT || (p->n_e2e > 0 && !e2e_of(p, fmt)))
        return false;
    for (int l = 0; l < p->n_layers; l++) {
        double ns = p->layer_ns[(size_t)l * MQ_DTYPE_COUNT + (size_t)fmt];
        if (isfinite(ns) && ns > 0)
            return true;
    }
    return false;
}

/* Bits per weight of a format, for ordering by width. */
static double bits_per_weight(enum mq_dtype f)
{
    const struct mq_dtype_traits *t = mq_dtype_get(f);
    return 8.0 * (double)t->block_bytes / (double)t->block_elems;
}

/* The compared formats (compare.h): the baseline, q8_0, and the first of q4_k, q4_0 and the
 * other integer formats narrowest first that every profile measured; where none is, the
 * one the most profiles measured (the earlier on a tie), or q4_k where no profile measured
 * any. */
static void pick_formats(struct rpt_cmp *c)
{
    c->fmt[RPT_CMP_BASE] = RPT_CMP_BASELINE;
    c->fmt[RPT_CMP_8BIT] = MQ_DTYPE_Q8_0;
    enum mq_dtype cand[MQ_DTYPE_COUNT];
    int n = 0;
    cand[n++] = MQ_DTYPE_Q4_K;
    cand[n++] = MQ_DTYPE_Q4_0;
    int first_other = n;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        const struct mq_dtype_traits *t = mq_dtype_get((enum mq_dtype)f);
        if (!t->is_quantized || !t->is_plan_format || f == MQ_DTYPE_Q8_0 || f == MQ_DTYPE_Q4_K ||
            f == MQ_DTYPE_Q4_0)
            continue;
        int i = n++; /* insertion sort, narrowest first; the enum's order on a tie */
        while (i > first_other &&
               bits_per_weight(cand[i - 1]) > bits_per_weight((enum mq_dtype)f)) {
            cand[i] = cand[i - 1];
            i--;
        }
        cand[i] = (enum mq_dtype)f;
    }
    int best = -1, best_n = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int t = 0; t < c->n_targets; t++)
            k += rpt_cmp_measured(c->targets[t].prof, cand[i]);
        if (k == c->n_targets) {
            c->fmt[RPT_CMP_LOW] = cand[i];
            c->low_shared = true;
            return;
        }
        if (k > best_n) {
            best = i;
            best_n = k;
        }
    }
    c->fmt[RPT_CMP_LOW] = best >= 0 ? cand[best] : MQ_DTYPE_Q4_K;
    c->low_shared = false;
}

void rpt_cmp_low_note(const struct rpt_cmp *c, char *buf, size_t size)
{
    if (!size)
        return;
    buf[0] = '\0';
    if (c->low_shared)
        return;
    const char *low = mq_dtype_name(c->fmt[RPT_CMP_LOW]), *q8 = mq_dtype_name(c->fmt[RPT_CMP_8BIT]);
    int k = 0;
    for (int t = 0; t < c->n_targets; t++)
        k += rpt_cmp_measured(c->targets[t].prof, c->fmt[RPT_CMP_LOW]);
    if (!k) {
        snprintf(buf, size,
                 "No profile measured a format narrower than %s end to end and per layer, so the "
                 "%s columns are empty (\"-\")",
                 q8, low);
        return;
    }
    size_t n = (size_t)snprintf(buf, size,
                                "The profiles share no format narrower than %s measured end to end "
                                "and per layer: the %s columns show %s where it was measured, and "
                                "\"-\" (not measured) for ",
                                q8, low, low);
    const char *sep = "";
    for (int t = 0; t < c->n_targets && n < size; t++) {
        if (rpt_cmp_measured(c->targets[t].prof, c->fmt[RPT_CMP_LOW]))
            continue;
        n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, c->targets[t].label);
        sep = ", ";
    }
}

/* The one-line error for inputs of different models. */
static int other_model(const char *path, const char *name, uint64_t hash, const char *path0,
                       const char *name0, uint64_t hash0)
{
    return mq_error(
        MQ_EINVAL,
        "'%s' is of model '%s' (content %016llx), '%s' of model '%s' (content %016llx): compare "
        "profiles and fronts of one model",
        path, name, (unsigned long long)hash, path0, name0, (unsigned long long)hash0);
}

/* Same layers (names and shapes) as the first profile. */
static int check_layers(const struct prof_profile *p, const char *path,
                        const struct prof_profile *p0, const char *path0)
{
    if (p->n_layers != p0->n_layers)
        return mq_error(MQ_EINVAL, "'%s' lists %d layers, '%s' %d: compare profiles of one model",
                        path, p->n_layers, path0, p0->n_layers);
    for (int l = 0; l < p->n_layers; l++)
        if (strcmp(p->layer_names[l], p0->layer_names[l]) || p->layer_in[l] != p0->layer_in[l] ||
            p->layer_out[l] != p0->layer_out[l])
            return mq_error(
                MQ_EINVAL,
                "'%s' layer %d is '%s' (%lld -> %lld), in '%s' it is '%s' (%lld -> %lld): compare "
                "profiles of one model",
                path, l, p->layer_names[l], (long long)p->layer_in[l], (long long)p->layer_out[l],
                path0, p0->layer_names[l], (long long)p0->layer_in[l], (long long)p0->layer_out[l]);
    return MQ_OK;
}

int rpt_cmp_load(const struct rpt_cmp_inputs *in, struct rpt_cmp **out)
{
    *out = NULL;
    if (in->n_profiles < 1)
        return mq_error(MQ_EINVAL, "compare needs at least one profile");
    if (in->n_profiles > RPT_CMP_MAX_TARGETS || in->n_fronts > RPT_CMP_MAX_FRONTS)
        return mq_error(MQ_EINVAL, "compare takes at most %d profiles and %d fronts, not %d and %d",
                        RPT_CMP_MAX_TARGETS, RPT_CMP_MAX_FRONTS, in->n_profiles, in->n_fronts);
    if (in->labels && in->n_labels != in->n_profiles)
        return mq_error(MQ_EINVAL, "%d labels for %d profiles: give one label per profile",
                        in->n_labels, in->n_profiles);
    struct rpt_cmp *c = calloc(1, sizeof(*c));
    if (!c)
        return mq_error(MQ_ENOMEM, "cannot allocate a comparison");
    int rc = MQ_OK;
    char labels[RPT_CMP_MAX_TARGETS + RPT_CMP_MAX_FRONTS][96];
    for (int i = 0; i < in->n_profiles; i++) {
        struct rpt_cmp_target *t = &c->targets[i];
        char schema[32];
        if ((rc = rpt_yaml_schema_of(in->profiles[i], schema, sizeof(schema))) < 0)
            goto fail;
        if (!strcmp(schema, "front")) {
            rc = mq_error(MQ_EINVAL,
                          "'%s' is a front (front.yaml), not a profile: give fronts after --fronts",
                          in->profiles[i]);
            goto fail;
        }
        if ((rc = rpt_profile_read(in->profiles[i], &t->prof)) < 0)
            goto fail;
        c->n_targets++;
        snprintf(t->path, sizeof(t->path), "%s", in->profiles[i]);
        const struct prof_profile *p = t->prof, *p0 = c->targets[0].prof;
        if (p->model_hash != p0->model_hash) {
            rc = other_model(t->path, p->model_name, p->model_hash, c->targets[0].path,
                             p0->model_name, p0->model_hash);
            goto fail;
        }
        if ((rc = check_layers(p, t->path, p0, c->targets[0].path)) < 0)
            goto fail;
        if (strcmp(p->workload.label, p0->workload.label)) {
            rc = mq_error(MQ_EINVAL,
                          "'%s' measured workload %s, '%s' %s: compare profiles of one workload",
                          t->path, p->workload.label, c->targets[0].path, p0->workload.label);
            goto fail;
        }
        if (in->labels && in->labels[i] && in->labels[i][0])
            snprintf(t->label, sizeof(t->label), "%s", in->labels[i]);
        else
            target_label(p->target.backend, p->target.backend_detail, p->target.emulated, t->label,
                         sizeof(t->label));
        unique_label(labels, i, t->label);
        snprintf(labels[i], sizeof(labels[i]), "%s", t->label);
        target_slug(i, t->label, t->slug, sizeof(t->slug));
        t->color = target_colors[(size_t)i % N_COLORS];
    }
    const struct prof_profile *p0 = c->targets[0].prof;
    int n_colors = c->n_targets;
    for (int i = 0; i < in->n_fronts; i++) {
        struct rpt_cmp_front *fr = &c->fronts[i];
        if ((rc = rpt_front_file_read(in->fronts[i], &fr->file)) < 0)
            goto fail;
        c->n_fronts++;
        const struct rpt_front_file *f = fr->file;
        if (f->model_hash != p0->model_hash) {
            rc = other_model(f->path, f->model_name, f->model_hash, c->targets[0].path,
                             p0->model_name, p0->model_hash);
            goto fail;
        }
        if (f->n_layers != p0->n_layers) {
            rc = mq_error(MQ_EINVAL,
                          "'%s' is a front of %d layers, '%s' profiles %d: compare one model",
                          f->path, f->n_layers, c->targets[0].path, p0->n_layers);
            goto fail;
        }
        if (strcmp(f->workload, p0->workload.label)) {
            rc = mq_error(MQ_EINVAL,
                          "'%s' was tuned for workload %s, '%s' measured %s: compare one workload",
                          f->path, f->workload, c->targets[0].path, p0->workload.label);
            goto fail;
        }
        /* the front of a profiled target takes its label and colour */
        fr->target = -1;
        for (int t = 0; t < c->n_targets && fr->target < 0; t++) {
            const struct prof_target *pt = &c->targets[t].prof->target;
            if (!strcmp(pt->backend, f->backend) &&
                !strcmp(pt->backend_detail, f->backend_detail) && !strcmp(pt->cpu, f->cpu) &&
                pt->emulated == f->emulated)
                fr->target = t;
        }
        if (fr->target >= 0) {
            snprintf(fr->label, sizeof(fr->label), "%s", c->targets[fr->target].label);
            fr->color = c->targets[fr->target].color;
        } else if (!strncmp(f->backend_detail, "combined", 8)) { /* mixq tune --target A --target B */
            snprintf(fr->label, sizeof(fr->label), "one plan for several targets (worst of each)");
            fr->color = target_colors[(size_t)n_colors++ % N_COLORS];
        } else {
            target_label(f->backend, f->backend_detail, f->emulated, fr->label, sizeof(fr->label));
            fr->color = target_colors[(size_t)n_colors++ % N_COLORS];
        }
        unique_label(labels + c->n_targets, i, fr->label);
        snprintf(labels[c->n_targets + i], sizeof(labels[0]), "%s", fr->label);
    }
    if ((rc = build_shapes(c)) < 0)
        goto fail;
    pick_formats(c);
    *out = c;
    return MQ_OK;
fail:
    rpt_cmp_free(c);
    return rc;
}

void rpt_cmp_free(struct rpt_cmp *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_targets; i++)
        prof_profile_free(c->targets[i].prof);
    for (int i = 0; i < c->n_fronts; i++)
        rpt_front_file_free(c->fronts[i].file);
    free(c->shapes);
    free(c);
}

/* ---- analysis ----------------------------------------------------------------------------- */

double rpt_cmp_speedup(const struct rpt_cmp_shape *s, int target, enum mq_dtype fmt)
{
    double base = s->ns[target][RPT_CMP_BASELINE], t = s->ns[target][fmt];
    return base > 0 && t > 0 ? base / t : NAN;
}

double rpt_cmp_e2e_speedup(const struct prof_profile *p, enum mq_dtype fmt)
{
    const struct prof_e2e *base = e2e_of(p, RPT_CMP_BASELINE), *e = e2e_of(p, fmt);
    return base && e ? base->time.median_ns / e->time.median_ns : NAN;
}

/* The first of the names that the profile counted, or -1. */
static int event_of(const struct prof_profile *p, const char *const *names)
{
    for (; *names; names++)
        for (int e = 0; e < p->n_events; e++)
            if (!strcmp(p->events[e], *names))
                return e;
    return -1;
}

static const char *const ev_cycles[] = {"PAPI_TOT_CYC", "perf::CYCLES",
                                        "perf::PERF_COUNT_HW_CPU_CYCLES", NULL};
static const char *const ev_instructions[] = {"PAPI_TOT_INS", "perf::INSTRUCTIONS",
                                              "perf::PERF_COUNT_HW_INSTRUCTIONS", NULL};
static const char *const ev_l1[] = {"PAPI_L1_DCM", NULL};
static const char *const ev_task_clock[] = {"perf::TASK-CLOCK", NULL};

static double counter(const struct prof_profile *p, const struct prof_cost *c,
                      const char *const *names)
{
    int e = event_of(p, names);
    return c->has_counters && e >= 0 && isfinite(c->counters[e]) ? c->counters[e] : NAN;
}

/* Whether a profile counted cycles and instructions. */
static bool has_ipc_counters(const struct prof_profile *p)
{
    return event_of(p, ev_cycles) >= 0 && event_of(p, ev_instructions) >= 0;
}

static double positive(double v)
{
    return v > 0 && isfinite(v) ? v : NAN;
}

void rpt_cmp_explain(const struct prof_profile *p, const struct prof_cost *c,
                     struct rpt_bound_info *b)
{
    const struct prof_target *t = &p->target;
    *b = (struct rpt_bound_info){.kind = RPT_BOUND_NONE};
    b->time_ns = positive(c->time.median_ns);
    double ops = 2.0 * (double)c->K * (double)c->N * (double)c->M;
    b->gbs = (double)c->weight_bytes / b->time_ns;
    b->gops = ops / b->time_ns;
    b->dram_frac = b->gbs / positive(t->dram_read_gbs);
    /* f16 and f32 compute in f32 FMAs on CPUs, bf16 in bf16 dot products; the integer
     * formats multiply their codes with int8 activation blocks (q8_0, q8_k) in int8 dot
     * products (VNNI, dotprod) */
    if (mq_dtype_get(c->fmt)->is_quantized) {
        b->peak = positive(t->int8_gops);
        b->peak_name = "int8 dot-product";
    } else if (c->fmt == MQ_DTYPE_BF16) {
        b->peak = positive(t->bf16_gflops);
        b->peak_name = "bf16 dot-product";
    } else {
        b->peak = positive(t->fma_gflops);
        b->peak_name = "f32 FMA";
    }
    b->peak_frac = b->gops / b->peak;
    double roof = b->peak;
    /* warm weights come from the caches: only the compute roof applies */
    if (!c->warm && c->weight_bytes > 0 && positive(t->dram_read_gbs) > 0)
        roof =
            fmin(isnan(roof) ? INFINITY : roof, t->dram_read_gbs * ops / (double)c->weight_bytes);
    b->roof_frac = b->gops / positive(roof);
    double cyc = counter(p, c, ev_cycles), ins = counter(p, c, ev_instructions),
           l1 = counter(p, c, ev_l1);
    double tclk = counter(p, c, ev_task_clock);
    b->ipc = positive(ins / cyc);
    b->bytes_per_ins = positive((double)c->weight_bytes / ins);
    b->l1_mpki = ins > 0 && l1 >= 0 ? 1000 * l1 / ins : NAN;
    int threads = t->threads > 0 ? t->threads : 1;
    /* task-clock comes from the counting pass, the time from the timed one: where their
     * ratio exceeds the threads, the passes ran differently and the ratio means nothing */
    b->cpus_busy = positive(tclk / b->time_ns);
    if (b->cpus_busy > RPT_BUSY_MAX * threads)
        b->cpus_busy = NAN;
    if (isnan(b->time_ns))
        return;
    if (t->emulated)
        b->kind = RPT_BOUND_EMULATED;
    else if (!c->warm && b->dram_frac >= RPT_BOUND_NEAR)
        b->kind = RPT_BOUND_DRAM;
    else if (b->peak_frac >= RPT_BOUND_NEAR)
        b->kind = RPT_BOUND_COMPUTE;
    else if (b->cpus_busy < RPT_BUSY_LOW * threads)
        b->kind = RPT_BOUND_THREADS;
    else if (b->ipc >= RPT_IPC_HIGH)
        b->kind = RPT_BOUND_INSTRUCTIONS;
    else if (b->ipc < RPT_IPC_LOW)
        b->kind = RPT_BOUND_STALLS;
    else if (!isnan(b->ipc))
        b->kind = RPT_BOUND_MIXED;
    else
        b->kind = RPT_BOUND_UNKNOWN;
}

const char *rpt_bound_name(enum rpt_bound kind)
{
    static const char *const names[RPT_BOUND_COUNT] = {
        [RPT_BOUND_NONE] = "not measured",
        [RPT_BOUND_EMULATED] = "emulated: no conclusion",
        [RPT_BOUND_DRAM] = "DRAM bandwidth",
        [RPT_BOUND_COMPUTE] = "compute peak",
        [RPT_BOUND_THREADS] = "waiting threads (synchronization, wake-ups, or a busy machine)",
        [RPT_BOUND_INSTRUCTIONS] = "instruction throughput",
        [RPT_BOUND_STALLS] = "stalls (memory latency or dependencies)",
        [RPT_BOUND_MIXED] = "no single limit",
        [RPT_BOUND_UNKNOWN] = "not at a roof: cause unknown without counters",
    };
    return kind >= 0 && kind < RPT_BOUND_COUNT ? names[kind] : "?";
}

/* "GEMV 192->512" or "GEMM 192->512 x 64" */
static void cost_name(const struct prof_cost *c, char *buf, size_t size)
{
    if (c->M == 1)
        snprintf(buf, size, "%s GEMV %lld->%lld", mq_dtype_name(c->fmt), (long long)c->K,
                 (long long)c->N);
    else
        snprintf(buf, size, "%s GEMM %lld->%lld x %lld columns", mq_dtype_name(c->fmt),
                 (long long)c->K, (long long)c->N, (long long)c->M);
}

void rpt_cmp_explain_text(const struct prof_cost *c, const struct rpt_bound_info *b, char *buf,
                          size_t size)
{
    char name[96];
    cost_name(c, name, sizeof(name));
    size_t n = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n < size)                                                                              \
            n += (size_t)snprintf(buf + n, size - n, __VA_ARGS__);                                 \
    } while (0)
    switch (b->kind) {
    case RPT_BOUND_NONE: ADD("%s was not measured", name); return;
    case RPT_BOUND_EMULATED:
        ADD("%s took %.3g us per call under emulation: the time is the emulator's, so no hardware "
            "bound is inferred",
            name, b->time_ns / 1e3);
        return;
    case RPT_BOUND_UNKNOWN:
        ADD("%s reaches %.0f%% of its roofline bound (%.3g us per call)", name, 100 * b->roof_frac,
            b->time_ns / 1e3);
        break;
    default: ADD("%s is bound by %s", name, rpt_bound_name(b->kind)); break;
    }
    const char *sep = ": ";
    if (!isnan(b->ipc)) {
        ADD("%sIPC %.2g, %.2g weight bytes/instruction", sep, b->ipc, b->bytes_per_ins);
        sep = "; ";
        if (!isnan(b->l1_mpki))
            ADD(", %.3g L1 misses per 1000 instructions", b->l1_mpki);
    }
    if (!isnan(b->cpus_busy)) {
        ADD("%sCPU time %.2f x wall time", sep, b->cpus_busy);
        sep = "; ";
    }
    if (!isnan(b->dram_frac)) {
        ADD("%s%.3g GB/s of weights is %.0f%% of the measured DRAM read bandwidth%s", sep, b->gbs,
            100 * b->dram_frac,
            c->warm ? " (weights warm in cache: DRAM is not their source)" : "");
        sep = "; ";
    }
    if (!isnan(b->peak_frac))
        ADD("%s%.3g GOP/s is %.1f%% of the %s peak", sep, b->gops, 100 * b->peak_frac,
            b->peak_name);
    if (b->kind == RPT_BOUND_UNKNOWN)
        ADD("; without cycle and instruction counters the timings cannot tell instructions, stalls "
            "and overheads apart");
#undef ADD
}

/* ---- plots -------------------------------------------------------------------------------- */

struct cmp_plots {
    bool on;
    char why[256]; /* why there are no plots */
    bool e2e, speedup, front_ll, front_ml, front_meas;
    bool roof[RPT_CMP_MAX_TARGETS], times[RPT_CMP_MAX_TARGETS];
};

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return mq_error(MQ_EIO, "cannot create '%s': %s", path, strerror(errno));
    return MQ_OK;
}

static const char *model_title(const struct prof_profile *p)
{
    if (p->model_name[0])
        return p->model_name;
    const char *slash = strrchr(p->model_path, '/');
    return slash ? slash + 1 : p->model_path;
}

static int plot_e2e(const struct rpt_cmp *c, const char *dir, bool *done)
{
    int T = c->n_targets;
    double x[RPT_CMP_MAX_TARGETS], y[RPT_CMP_N_FORMATS][RPT_CMP_MAX_TARGETS], lo = INFINITY, hi = 0;
    struct rpt_plot_series series[RPT_CMP_N_FORMATS];
    struct rpt_plot_tic tics[RPT_CMP_MAX_TARGETS];
    static const char *const colors[RPT_CMP_N_FORMATS] = {"#1f77b4", "#2ca02c", "#d62728"};
    int n_series = 0;
    for (int t = 0; t < T; t++) {
        x[t] = t;
        tics[t] = (struct rpt_plot_tic){.at = t, .label = c->targets[t].label};
    }
    for (int i = 0; i < RPT_CMP_N_FORMATS; i++) {
        bool any = false;
        for (int t = 0; t < T; t++) {
            const struct prof_e2e *e = e2e_of(c->targets[t].prof, c->fmt[i]);
            y[i][t] = e ? e->time.median_ns / 1e3 : NAN;
            if (e) {
                any = true;
                lo = fmin(lo, y[i][t]);
                hi = fmax(hi, y[i][t]);
            }
        }
        if (any)
            series[n_series++] = (struct rpt_plot_series){.title = mq_dtype_name(c->fmt[i]),
                                                          .style = RPT_PLOT_POINTS,
                                                          .n = T,
                                                          .x = x,
                                                          .y = y[i],
                                                          .color = colors[i]};
    }
    *done = false;
    if (!n_series)
        return MQ_OK;
    char sub[400];
    snprintf(sub, sizeof(sub), "%.200s, workload %s: median of repeated runs of the uniform plans",
             model_title(c->targets[0].prof), c->targets[0].prof->workload.label);
    struct rpt_plot p = {.name = "e2e",
                         .title = "End-to-end latency on each target",
                         .subtitle = sub,
                         .xlabel = "target",
                         .ylabel = "time per workload run (us)",
                         .ylog = hi > 10 * lo,
                         .xmin = -0.5,
                         .xmax = T - 0.5,
                         .series = series,
                         .n_series = n_series,
                         .xtics = tics,
                         .n_xtics = T,
                         .key = RPT_KEY_ABOVE,
                         .width = 1000,
                         .height = 520,
                         .extra = "set pointsize 2"};
    int rc = rpt_plot_write(dir, &p);
    *done = rc == MQ_OK;
    return rc;
}

static int plot_speedup(const struct rpt_cmp *c, const char *dir, bool *done)
{
    int S = c->n_shapes, T = c->n_targets;
    *done = false;
    if (!S)
        return MQ_OK;
    double *x = malloc((size_t)S * sizeof(*x)), *y = malloc((size_t)S * (size_t)T * 2 * sizeof(*y));
    struct rpt_plot_series *series = calloc((size_t)T * 2, sizeof(*series));
    struct rpt_plot_tic *tics = calloc((size_t)S, sizeof(*tics));
    char(*tic_text)[64] = calloc((size_t)S, sizeof(*tic_text));
    char(*titles)[128] = calloc((size_t)T * 2, sizeof(*titles));
    int rc = MQ_OK, n_series = 0;
    if (!x || !y || !series || !tics || !tic_text || !titles) {
        rc = mq_error(MQ_ENOMEM, "out of memory plotting speed-ups");
        goto done;
    }
    for (int s = 0; s < S; s++) {
        x[s] = s;
        snprintf(tic_text[s], sizeof(tic_text[s]), "%lld->%lld %.40s", (long long)c->shapes[s].K,
                 (long long)c->shapes[s].N, c->shapes[s].roles);
        tics[s] = (struct rpt_plot_tic){.at = s, .label = tic_text[s]};
    }
    for (int t = 0; t < T; t++)
        for (int k = 0; k < 2; k++) {
            enum mq_dtype f = c->fmt[k ? RPT_CMP_LOW : RPT_CMP_8BIT];
            double *ys = y + ((size_t)t * 2 + (size_t)k) * (size_t)S;
            bool any = false;
            for (int s = 0; s < S; s++) {
                ys[s] = rpt_cmp_speedup(&c->shapes[s], t, f);
                any |= ys[s] > 0;
            }
            if (!any)
                continue;
            snprintf(titles[n_series], sizeof(titles[0]), "%s on %s", mq_dtype_name(f),
                     c->targets[t].label);
            series[n_series] = (struct rpt_plot_series){.title = titles[n_series],
                                                        .style = RPT_PLOT_LINESPOINTS,
                                                        .n = S,
                                                        .x = x,
                                                        .y = ys,
                                                        .color = c->targets[t].color,
                                                        .dashed = k == 1};
            n_series++;
        }
    if (!n_series)
        goto done;
    const char *base = mq_dtype_name(c->fmt[RPT_CMP_BASE]),
               *q8 = mq_dtype_name(c->fmt[RPT_CMP_8BIT]), *low = mq_dtype_name(c->fmt[RPT_CMP_LOW]);
    char ref_text[96], sub[400], title[160], ylabel[64];
    snprintf(ref_text, sizeof(ref_text), "1 = %s speed: below it quantization does not pay", base);
    struct rpt_plot_ref one = {.axis = RPT_AXIS_Y, .value = 1, .label = ref_text};
    snprintf(sub, sizeof(sub),
             "%.200s, workload %s; solid %s, dashed %s; %s time / format time per layer",
             model_title(c->targets[0].prof), c->targets[0].prof->workload.label, q8, low, base);
    snprintf(title, sizeof(title), "Speed-up of %s and %s over %s, per layer shape and target", q8,
             low, base);
    snprintf(ylabel, sizeof(ylabel), "speed-up over %s (x)", base);
    struct rpt_plot p = {.name = "speedup",
                         .title = title,
                         .subtitle = sub,
                         .xlabel = "layer shape (inputs->outputs, roles)",
                         .ylabel = ylabel,
                         .ylog = true,
                         .xmin = -0.5,
                         .xmax = S - 0.5,
                         .series = series,
                         .n_series = n_series,
                         .refs = &one,
                         .n_refs = 1,
                         .xtics = tics,
                         .n_xtics = S,
                         .xtics_vertical = true,
                         .key = RPT_KEY_OUTSIDE,
                         .height = 760};
    rc = rpt_plot_write(dir, &p);
    *done = rc == MQ_OK;
done:
    free(x);
    free(y);
    free(series);
    free(tics);
    free(tic_text);
    free(titles);
    return rc;
}

struct xy_idx {
    double x, y;
};

static int cmp_xy(const void *a, const void *b)
{
    const struct xy_idx *p = a, *q = b;
    return p->x < q->x ? -1 : p->x > q->x ? 1 : (p->y > q->y) - (p->y < q->y);
}

/* The 2-D Pareto subset (both minimized) of n points, sorted by x, into x and y; returns
 * how many. Points with a NaN are left out. */
static int pareto_2d(struct xy_idx *pts, int n, double *x, double *y)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(pts[i].x) && isfinite(pts[i].y))
            pts[m++] = pts[i];
    qsort(pts, (size_t)m, sizeof(*pts), cmp_xy);
    int k = 0;
    double best = INFINITY;
    for (int i = 0; i < m; i++)
        if (pts[i].y < best) {
            best = pts[i].y;
            x[k] = pts[i].x;
            y[k++] = pts[i].y;
        }
    return k;
}

enum front_view { VIEW_LAT_LOSS, VIEW_MEM_LAT, VIEW_MEASURED };

static const char *short_baseline(const char *label)
{
    if (!strncmp(label, "uniform ", 8))
        return label + 8;
    if (!strncmp(label, "llama.cpp", 9))
        return "llama.cpp rule";
    return label;
}

static int plot_fronts(const struct rpt_cmp *c, const char *dir, enum front_view view, bool *done)
{
    *done = false;
    int F = c->n_fronts, total = 0;
    for (int i = 0; i < F; i++)
        total += c->fronts[i].file->n_points + c->fronts[i].file->n_baselines;
    if (!F || !total)
        return MQ_OK;
    /* per front: one series of points (a staircase, or measured plans) and one of markers */
    struct xy_idx *tmp = malloc((size_t)total * sizeof(*tmp));
    double *xs = malloc((size_t)total * 2 * sizeof(*xs)),
           *ys = malloc((size_t)total * 2 * sizeof(*ys));
    const char **labels = calloc((size_t)total * 2, sizeof(*labels));
    struct rpt_plot_series *series = calloc((size_t)F * 2, sizeof(*series));
    char(*titles)[128] = calloc((size_t)F, sizeof(*titles));
    struct rpt_plot_ref refs[RPT_CMP_MAX_FRONTS];
    char ref_text[RPT_CMP_MAX_FRONTS][96];
    int rc = MQ_OK, n_series = 0, used = 0, n_refs = 0;
    if (!tmp || !xs || !ys || !labels || !series || !titles) {
        rc = mq_error(MQ_ENOMEM, "out of memory plotting fronts");
        goto done;
    }
    char loss_names[128] = "";
    for (int i = 0; i < F; i++) {
        const struct rpt_front_file *f = c->fronts[i].file;
        if (!strstr(loss_names, f->loss_name[0] ? f->loss_name : "loss"))
            snprintf(loss_names + strlen(loss_names), sizeof(loss_names) - strlen(loss_names),
                     "%s%s", loss_names[0] ? " / " : "", f->loss_name[0] ? f->loss_name : "loss");
        int n = 0;
        double *x = xs + used, *y = ys + used;
        if (view == VIEW_MEASURED) {
            for (int k = 0; k < f->n_points + f->n_baselines; k++) {
                bool base = k >= f->n_points;
                const struct rpt_front_pt *pt =
                    base ? &f->baselines[k - f->n_points] : &f->points[k];
                if (!pt->measured || !(pt->lat_ns > 0) || !(pt->kl > 0))
                    continue;
                x[n] = pt->lat_ns / 1e3;
                y[n] = pt->kl;
                labels[used + n] = base                        ? short_baseline(pt->label)
                                   : (!base && k == f->chosen) ? "chosen"
                                   : (base && k - f->n_points == f->chosen_baseline) ? "chosen"
                                                                                     : NULL;
                n++;
            }
        } else {
            for (int k = 0; k < f->n_points; k++) {
                const struct rpt_front_pt *pt = &f->points[k];
                tmp[k] = view == VIEW_LAT_LOSS
                             ? (struct xy_idx){pt->pred_lat_ns / 1e3, pt->pred_loss}
                             : (struct xy_idx){pt->pred_mem_bytes / 1e6, pt->pred_lat_ns / 1e3};
                if (view == VIEW_LAT_LOSS && !(pt->pred_loss > 0))
                    tmp[k].y = NAN; /* not on a log axis */
            }
            n = pareto_2d(tmp, f->n_points, x, y);
        }
        if (!n)
            continue;
        snprintf(titles[i], sizeof(titles[i]), "%s (%s)", c->fronts[i].label,
                 view == VIEW_MEASURED ? "measured plans" : "predicted front");
        series[n_series++] = (struct rpt_plot_series){
            .title = titles[i],
            .style = view == VIEW_MEASURED ? RPT_PLOT_POINTS : RPT_PLOT_STEPS,
            .n = n,
            .x = x,
            .y = y,
            .labels = view == VIEW_MEASURED ? labels + used : NULL,
            .color = c->fronts[i].color};
        used += n;
        /* the chosen plan on the predicted views */
        const struct rpt_front_pt *ch = f->chosen >= 0 ? &f->points[f->chosen] : NULL;
        if (view != VIEW_MEASURED && ch) {
            xs[used] = view == VIEW_LAT_LOSS ? ch->pred_lat_ns / 1e3 : ch->pred_mem_bytes / 1e6;
            ys[used] = view == VIEW_LAT_LOSS ? ch->pred_loss : ch->pred_lat_ns / 1e3;
            labels[used] = "chosen";
            series[n_series++] = (struct rpt_plot_series){.style = RPT_PLOT_POINTS,
                                                          .n = 1,
                                                          .x = xs + used,
                                                          .y = ys + used,
                                                          .labels = labels + used,
                                                          .color = c->fronts[i].color};
            used++;
        }
        /* budgets: one line per distinct value */
        double b = view == VIEW_MEM_LAT ? f->mem_budget_bytes / 1e6 : f->lat_budget_ns / 1e3;
        bool seen = false;
        for (int r = 0; r < n_refs; r++)
            seen |= refs[r].value == b;
        if (isfinite(b) && !seen && n_refs < RPT_CMP_MAX_FRONTS) {
            snprintf(ref_text[n_refs], sizeof(ref_text[0]),
                     view == VIEW_MEM_LAT ? "memory budget %.4g MB" : "latency budget %.4g us", b);
            refs[n_refs] =
                (struct rpt_plot_ref){.axis = RPT_AXIS_X, .value = b, .label = ref_text[n_refs]};
            n_refs++;
        }
    }
    if (!n_series)
        goto done;
    char ylabel[200];
    snprintf(ylabel, sizeof(ylabel), "predicted loss (%s, sum of per-layer losses)", loss_names);
    static const char *const names[] = {"fronts-latency-loss", "fronts-memory-latency",
                                        "fronts-measured"};
    static const char *const title[] = {
        "Pareto fronts of each target: predicted latency against loss",
        "Pareto fronts of each target: predicted memory against latency",
        "Plans measured on each target: latency against KL divergence"};
    char sub[400];
    snprintf(sub, sizeof(sub), "%.200s, workload %s; %s", model_title(c->targets[0].prof),
             c->fronts[0].file->workload,
             view == VIEW_MEASURED
                 ? "validated front points and the uniform baselines, as measured"
                 : "the 2-D Pareto subset of each front's points; lower left is better");
    struct rpt_plot p = {
        .name = names[view],
        .title = title[view],
        .subtitle = sub,
        .xlabel = view == VIEW_MEM_LAT    ? "predicted memory (MB)"
                  : view == VIEW_LAT_LOSS ? "predicted latency per workload run (us)"
                                          : "measured latency per workload run (us, median)",
        .ylabel = view == VIEW_MEM_LAT    ? "predicted latency per workload run (us)"
                  : view == VIEW_LAT_LOSS ? ylabel
                                          : "measured KL divergence from full precision",
        .ylog = view != VIEW_MEM_LAT,
        .xlog = view == VIEW_MEASURED,
        .series = series,
        .n_series = n_series,
        .refs = view == VIEW_MEASURED ? NULL : refs,
        .n_refs = view == VIEW_MEASURED || view == VIEW_LAT_LOSS ? 0 : n_refs,
        .key = RPT_KEY_TOP_RIGHT,
    };
    if (view == VIEW_LAT_LOSS) { /* the latency budgets go on this view's x axis */
        p.refs = refs;
        p.n_refs = n_refs;
    }
    rc = rpt_plot_write(dir, &p);
    *done = rc == MQ_OK;
done:
    free(tmp);
    free(xs);
    free(ys);
    free(labels);
    free(series);
    free(titles);
    return rc;
}

static bool has_measured_layer(const struct prof_profile *p)
{
    for (size_t i = 0; i < (size_t)p->n_layers * MQ_DTYPE_COUNT; i++)
        if (p->layer_ns[i] > 0 && isfinite(p->layer_ns[i]))
            return true;
    return false;
}

static int make_plots(const struct rpt_cmp *c, const char *dir, struct cmp_plots *pl)
{
    char gnuplot[4096], pdir[4200], tdir[4300];
    if (!pl->on)
        return MQ_OK;
    if (rpt_gnuplot_find(gnuplot, sizeof(gnuplot)) < 0) {
        pl->on = false;
        const char *env = getenv("MIXQ_GNUPLOT");
        if (env && *env)
            snprintf(pl->why, sizeof(pl->why), "MIXQ_GNUPLOT (%.180s) is not an executable program",
                     env);
        else
            snprintf(pl->why, sizeof(pl->why),
                     "gnuplot is not installed (Debian: apt-get install gnuplot-nox)");
        return MQ_OK;
    }
    snprintf(pdir, sizeof(pdir), "%s/plots", dir);
    int rc;
    if ((rc = make_dir(pdir)) < 0 || (rc = plot_e2e(c, pdir, &pl->e2e)) < 0 ||
        (rc = plot_speedup(c, pdir, &pl->speedup)) < 0 ||
        (rc = plot_fronts(c, pdir, VIEW_LAT_LOSS, &pl->front_ll)) < 0 ||
        (rc = plot_fronts(c, pdir, VIEW_MEM_LAT, &pl->front_ml)) < 0 ||
        (rc = plot_fronts(c, pdir, VIEW_MEASURED, &pl->front_meas)) < 0)
        return rc;
    for (int t = 0; t < c->n_targets; t++) {
        const struct prof_profile *p = c->targets[t].prof;
        if (!has_measured_layer(p))
            continue;
        snprintf(tdir, sizeof(tdir), "%s/%s", pdir, c->targets[t].slug);
        if ((rc = make_dir(tdir)) < 0 || (rc = rpt_plot_roofline(tdir, p)) < 0 ||
            (rc = rpt_plot_layer_times(tdir, p)) < 0)
            return rc;
        pl->roof[t] = pl->times[t] = true;
    }
    return MQ_OK;
}

/* Where a plot would be: the plot, or why there is none. */
static void put_plot(struct rpt_doc *d, const struct cmp_plots *pl, bool made, const char *rel,
                     const char *caption)
{
    if (made) {
        rpt_doc_svg(d, rel, caption);
        return;
    }
    rpt_doc_par_begin(d, RPT_DOC_NOTE);
    rpt_doc_text(d, "No plot (%s): %s.", caption, pl->on ? "no data to plot" : pl->why);
    rpt_doc_par_end(d);
}

/* ---- the report --------------------------------------------------------------------------- */

/* A time in microseconds for tables: 3 significant digits or so; "-" when unknown. */
static const char *us_text(char *buf, size_t size, double ns)
{
    if (!(ns > 0) || !isfinite(ns))
        snprintf(buf, size, "-");
    else if (ns < 1e4)
        snprintf(buf, size, "%.2f", ns / 1e3);
    else if (ns < 1e5)
        snprintf(buf, size, "%.1f", ns / 1e3);
    else
        snprintf(buf, size, "%.0f", ns / 1e3);
    return buf;
}

static void speedup_cell(struct rpt_doc *d, double s)
{
    if (!(s > 0) || !isfinite(s))
        rpt_doc_cell(d, RPT_CELL_NUM, "-");
    else
        rpt_doc_cell(d, RPT_CELL_NUM | (s < 1 ? RPT_CELL_BAD : RPT_CELL_GOOD), "%.2fx", s);
}

static void kv_row(struct rpt_doc *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kv_row(struct rpt_doc *d, const char *key, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    rpt_doc_row_begin(d, false);
    rpt_doc_cell(d, RPT_CELL_HEAD, "%s", key);
    rpt_doc_cell(d, 0, "%s", buf);
    rpt_doc_row_end(d);
}

/* A measured limit: "30.2 GB/s (measured)", or "not measured" where it is 0 or unknown. */
static void limit_row(struct rpt_doc *d, const char *key, double v, const char *unit,
                      const char *how)
{
    if (v > 0 && isfinite(v))
        kv_row(d, key, "%.4g %s%s%s%s", v, unit, how && *how ? " (" : "", how ? how : "",
               how && *how ? ")" : "");
    else
        kv_row(d, key, "not measured");
}

static void kv_code_row(struct rpt_doc *d, const char *key, const char *code)
{
    rpt_doc_row_begin(d, false);
    rpt_doc_cell(d, RPT_CELL_HEAD, "%s", key);
    rpt_doc_cell_begin(d, 0);
    rpt_doc_code(d, code);
    rpt_doc_cell_end(d);
    rpt_doc_row_end(d);
}

/* The format columns of the summary and shape tables: "f16 (us)", "q8_0 (us)", "q4_k (us)",
 * "q8_0 vs f16", "q4_k vs f16", into text, pointed at by head; returns how many. */
static int format_heads(const struct rpt_cmp *c, char (*text)[48], const char **head)
{
    int n = 0;
    for (int k = 0; k < RPT_CMP_N_FORMATS; k++) {
        snprintf(text[n], sizeof(text[n]), "%s (us)", mq_dtype_name(c->fmt[k]));
        head[n] = text[n];
        n++;
    }
    for (int k = RPT_CMP_BASE + 1; k < RPT_CMP_N_FORMATS; k++) {
        snprintf(text[n], sizeof(text[n]), "%s vs %s", mq_dtype_name(c->fmt[k]),
                 mq_dtype_name(c->fmt[RPT_CMP_BASE]));
        head[n] = text[n];
        n++;
    }
    return n;
}

/* Where the profiles share no 4-bit-class format, a note saying so (rpt_cmp_low_note). */
static void write_low_note(struct rpt_doc *d, const struct rpt_cmp *c)
{
    char note[1024];
    rpt_cmp_low_note(c, note, sizeof(note));
    if (!note[0])
        return;
    rpt_doc_par_begin(d, RPT_DOC_NOTE);
    rpt_doc_text(d, "%s.", note);
    rpt_doc_par_end(d);
}

static void write_intro(struct rpt_doc *d, const struct rpt_cmp *c, const struct cmp_plots *pl)
{
    const struct prof_profile *p0 = c->targets[0].prof;
    char hash[32], when[64] = "";
    snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)p0->model_hash);
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
    rpt_doc_par_begin(d, RPT_DOC_PLAIN);
    rpt_doc_text(d, "Model ");
    rpt_doc_code(d, p0->model_path);
    rpt_doc_text(d, " (%s, %s, content hash ", p0->model_name[0] ? p0->model_name : "unnamed",
                 p0->arch[0] ? p0->arch : "?");
    rpt_doc_code(d, hash);
    rpt_doc_text(d, "): %d quantizable layers in %d shapes%s, workload ", p0->n_layers, c->n_shapes,
                 c->n_lookups ? " plus lookups" : "");
    rpt_doc_code(d, p0->workload.label);
    rpt_doc_text(d, ". %d target%s", c->n_targets, c->n_targets == 1 ? "" : "s");
    if (c->n_fronts)
        rpt_doc_text(d, " and %d tuning front%s", c->n_fronts, c->n_fronts == 1 ? "" : "s");
    rpt_doc_text(d, ". Written by mixq %s%s%s.", MIXQ_VERSION, when[0] ? " on " : "", when);
    rpt_doc_par_end(d);
    for (int t = 0; t < c->n_targets; t++) {
        const struct prof_target *pt = &c->targets[t].prof->target;
        if (pt->emulated) {
            rpt_doc_par_begin(d, RPT_DOC_WARN);
            rpt_doc_strong(d, "EMULATED: %s.", c->targets[t].label);
            rpt_doc_text(
                d,
                " This target ran under an emulator (%s). Its timings describe the emulator on the "
                "host, not the hardware it emulates: they show that the backend runs and what its "
                "kernels do, not how fast a real core would be. No bound is inferred from them.",
                pt->emulated_why[0] ? pt->emulated_why : "the profile says so");
            rpt_doc_par_end(d);
        }
    }
    int n_busy = 0;
    for (int t = 0; t < c->n_targets; t++) {
        const struct prof_target *pt = &c->targets[t].prof->target;
        if (!(pt->load_avg > 0 && pt->cores > 0 && pt->load_avg > pt->cores))
            continue;
        if (!n_busy++) {
            rpt_doc_par_begin(d, RPT_DOC_NOTE);
            rpt_doc_text(d,
                         "Profiled on a busy machine (other work running), so timings are noisy: ");
        }
        rpt_doc_text(d, "%s%s (load average %.2g on %d cores)", n_busy > 1 ? "; " : "",
                     c->targets[t].label, pt->load_avg, pt->cores);
    }
    if (n_busy) {
        rpt_doc_text(
            d,
            ". Compare medians, and look at the spread and the minimum in the tables of the last "
            "section before trusting a difference.");
        rpt_doc_par_end(d);
    }
    if (!pl->on) {
        rpt_doc_par_begin(d, RPT_DOC_WARN);
        rpt_doc_text(d, "This report has no plots: %s. The tables carry the same figures.",
                     pl->why);
        rpt_doc_par_end(d);
    }
    static const char *const toc[][2] = {
        {"summary", "Summary: end to end"},
        {"targets", "Targets"},
        {"shapes", "Per layer shape and format"},
        {"rooflines", "Rooflines"},
        {"fronts", "Pareto fronts"},
        {"explain", "What bounds each kernel"},
        {"method", "Inputs and method"},
    };
    fputs("<nav>", d->html);
    rpt_doc_par_begin(d, RPT_DOC_PLAIN);
    rpt_doc_strong(d, "Contents");
    rpt_doc_par_end(d);
    rpt_doc_list_begin(d);
    for (size_t i = 0; i < sizeof(toc) / sizeof(toc[0]); i++) {
        rpt_doc_item_begin(d);
        rpt_doc_anchor_link(d, toc[i][0], toc[i][1]);
        rpt_doc_item_end(d);
    }
    rpt_doc_list_end(d);
    fputs("</nav>\n", d->html);
}

/* A measurement whose median is far above its minimum: interruptions (other work, thread
 * wake-ups) dominate it. */
static bool is_noisy(const struct prof_cost *co)
{
    return co->time.min_ns > 0 && co->time.median_ns > RPT_NOISY * co->time.min_ns;
}

/* The plain-language findings: where quantization pays, where not, which target is fastest. */
static void write_findings(struct rpt_doc *d, const struct rpt_cmp *c)
{
    const char *base = mq_dtype_name(c->fmt[RPT_CMP_BASE]);
    rpt_doc_list_begin(d);
    for (int t = 0; t < c->n_targets; t++) {
        const struct prof_profile *p = c->targets[t].prof;
        rpt_doc_item_begin(d);
        rpt_doc_strong(d, "%s", c->targets[t].label);
        rpt_doc_text(d, ": ");
        const char *sep = "";
        for (int k = RPT_CMP_BASE + 1; k < RPT_CMP_N_FORMATS; k++) {
            enum mq_dtype f = c->fmt[k];
            double s = rpt_cmp_e2e_speedup(p, f);
            if (!(s > 0))
                continue;
            rpt_doc_text(d, "%s%s%s %.2fx", *sep ? " and " : "end to end, ", mq_dtype_name(f),
                         *sep ? "" : " runs", s);
            if (s < 1)
                rpt_doc_strong(d, " (slower than %s)", base);
            sep = "; ";
        }
        if (*sep)
            rpt_doc_text(d, " the speed of %s", base);
        for (int k = RPT_CMP_BASE + 1; k < RPT_CMP_N_FORMATS; k++) {
            enum mq_dtype f = c->fmt[k];
            int known = 0, losing = 0, worst = -1;
            for (int s = 0; s < c->n_shapes; s++) {
                double v = rpt_cmp_speedup(&c->shapes[s], t, f);
                if (!(v > 0))
                    continue;
                known++;
                if (v < 1) {
                    losing++;
                    if (worst < 0 || v < rpt_cmp_speedup(&c->shapes[worst], t, f))
                        worst = s;
                }
            }
            if (!known)
                continue;
            if (losing)
                rpt_doc_text(d,
                             "%s%s is slower than %s on %d of %d layer shapes (worst: %lld->%lld "
                             "%s, %.2fx)",
                             sep, mq_dtype_name(f), base, losing, known,
                             (long long)c->shapes[worst].K, (long long)c->shapes[worst].N,
                             c->shapes[worst].roles, rpt_cmp_speedup(&c->shapes[worst], t, f));
            else if (known == c->n_shapes)
                rpt_doc_text(d, "%s%s is faster than %s on all %d layer shapes", sep,
                             mq_dtype_name(f), base, known);
            else /* shapes whose rows are not whole blocks of it were not measured in it */
                rpt_doc_text(d,
                             "%s%s is faster than %s on the %d of %d layer shapes measured in it",
                             sep, mq_dtype_name(f), base, known, c->n_shapes);
            sep = "; ";
        }
        if (!*sep)
            rpt_doc_text(d, "no %s measurement to compare with", base);
        int n_noisy = 0;
        for (int i = 0; i < p->n_costs; i++)
            n_noisy += is_noisy(&p->costs[i]);
        if (n_noisy)
            rpt_doc_text(d, "; %d of %d measurements are noisy (median above %.0fx the minimum)",
                         n_noisy, p->n_costs, RPT_NOISY);
        rpt_doc_text(d, ".");
        rpt_doc_item_end(d);
    }
    /* the fastest real (not emulated) target per format, end to end */
    for (int k = 0; k < RPT_CMP_N_FORMATS && c->n_targets > 1; k++) {
        enum mq_dtype f = c->fmt[k];
        int best = -1, slow = -1;
        for (int t = 0; t < c->n_targets; t++) {
            const struct prof_e2e *e = e2e_of(c->targets[t].prof, f);
            if (!e || c->targets[t].prof->target.emulated)
                continue;
            if (best < 0 || e->time.median_ns < e2e_of(c->targets[best].prof, f)->time.median_ns)
                best = t;
            if (slow < 0 || e->time.median_ns > e2e_of(c->targets[slow].prof, f)->time.median_ns)
                slow = t;
        }
        if (best < 0 || best == slow)
            continue;
        double tb = e2e_of(c->targets[best].prof, f)->time.median_ns,
               ts = e2e_of(c->targets[slow].prof, f)->time.median_ns;
        char b1[32];
        rpt_doc_item_begin(d);
        rpt_doc_text(d, "Fastest with %s: ", mq_dtype_name(f));
        rpt_doc_strong(d, "%s", c->targets[best].label);
        rpt_doc_text(d, " (%s us per run), %.2fx faster than %s.", us_text(b1, sizeof(b1), tb),
                     ts / tb, c->targets[slow].label);
        rpt_doc_item_end(d);
    }
    rpt_doc_list_end(d);
}

static void write_summary(struct rpt_doc *d, const struct rpt_cmp *c, const struct cmp_plots *pl)
{
    rpt_doc_heading(d, 2, "summary", "Summary: end to end");
    write_findings(d, c);
    write_low_note(d, c);
    char text[2 * RPT_CMP_N_FORMATS - 1][48];
    const char *head[2 * RPT_CMP_N_FORMATS + 1];
    int n_head = 0;
    head[n_head++] = "target";
    n_head += format_heads(c, text, head + n_head);
    head[n_head++] = "latency model";
    rpt_doc_table_begin(d, n_head, head);
    for (int t = 0; t < c->n_targets; t++) {
        const struct prof_profile *p = c->targets[t].prof;
        rpt_doc_row_begin(d, false);
        rpt_doc_cell(d, RPT_CELL_HEAD, "%s", c->targets[t].label);
        for (int k = 0; k < RPT_CMP_N_FORMATS; k++) {
            const struct prof_e2e *e = e2e_of(p, c->fmt[k]);
            char b1[32], b2[32];
            if (e)
                rpt_doc_cell(d, RPT_CELL_NUM, "%s ± %s", us_text(b1, sizeof(b1), e->time.median_ns),
                             e->time.mad_ns > 0 ? us_text(b2, sizeof(b2), e->time.mad_ns) : "0");
            else
                rpt_doc_cell(d, RPT_CELL_NUM, "-");
        }
        for (int k = RPT_CMP_BASE + 1; k < RPT_CMP_N_FORMATS; k++)
            speedup_cell(d, rpt_cmp_e2e_speedup(p, c->fmt[k]));
        char b1[32];
        if (p->n_e2e)
            rpt_doc_cell(d, 0, "%s us + %.3g x sum of layers",
                         p->glue_ns > 0 ? us_text(b1, sizeof(b1), p->glue_ns) : "0",
                         p->layer_scale);
        else
            rpt_doc_cell(d, 0, "not measured end to end");
        rpt_doc_row_end(d);
    }
    rpt_doc_table_end(d);
    rpt_doc_par_begin(d, RPT_DOC_NOTE);
    rpt_doc_text(d,
                 "Median time of one workload run with every layer in one format (± median "
                 "absolute deviation). Speed-ups are %s time / format time: above 1 the format "
                 "is faster; below 1 (red) quantization costs time on that target. The latency "
                 "model is the one each profile fitted for the search.",
                 mq_dtype_name(c->fmt[RPT_CMP_BASE]));
    rpt_doc_par_end(d);
    put_plot(d, pl, pl->e2e, "plots/e2e.svg",
             "End-to-end latency of the uniform plans on each target");
}

/* Missing events grouped by reason: "A, B (2 events): why". */
static void write_missing(struct rpt_doc *d, const struct prof_profile *p)
{
    bool done[PROF_MAX_EVENTS] = {false};
    for (int i = 0; i < p->n_missing; i++) {
        if (done[i])
            continue;
        int n = 0;
        for (int j = i; j < p->n_missing; j++) {
            if (done[j] || strcmp(p->missing_why[j], p->missing_why[i]))
                continue;
            rpt_doc_text(d, "%s", n++ ? ", " : i ? "; " : "");
            rpt_doc_code(d, p->missing[j]);
            done[j] = true;
        }
        rpt_doc_text(d, ": %s", p->missing_why[i]);
    }
}

static void write_event_list(struct rpt_doc *d, const struct prof_profile *p)
{
    for (int e = 0; e < p->n_events; e++) {
        rpt_doc_text(d, "%s", e ? ", " : "");
        rpt_doc_code(d, p->events[e]);
    }
    if (!p->n_events)
        rpt_doc_text(d, "none");
}

static void write_targets(struct rpt_doc *d, const struct rpt_cmp *c)
{
    rpt_doc_heading(d, 2, "targets", "Targets");
    static const char *const head[] = {"", "value"};
    for (int t = 0; t < c->n_targets; t++) {
        const struct prof_profile *p = c->targets[t].prof;
        const struct prof_target *pt = &p->target;
        char title[160];
        snprintf(title, sizeof(title), "%s", c->targets[t].label);
        rpt_doc_heading(d, 3, c->targets[t].slug, title);
        if (pt->emulated) {
            rpt_doc_par_begin(d, RPT_DOC_WARN);
            rpt_doc_strong(d, "Emulated");
            rpt_doc_text(d, ": %s. Timings and limits below are the emulator's.",
                         pt->emulated_why[0] ? pt->emulated_why : "the profile says so");
            rpt_doc_par_end(d);
        }
        rpt_doc_table_begin(d, 2, head);
        kv_code_row(d, "profile", c->targets[t].path);
        kv_row(d, "CPU", "%s (%s)", pt->cpu[0] ? pt->cpu : "?", pt->arch[0] ? pt->arch : "?");
        kv_row(d, "topology", "%s", pt->topology[0] ? pt->topology : "?");
        kv_row(d, "cores, last-level cache", "%d cores, %.3g MiB", pt->cores,
               (double)pt->llc_bytes / 1048576.0);
        kv_row(d, "features", "%s", pt->features[0] ? pt->features : "-");
        kv_row(d, "backend", "%s: %s", pt->backend, pt->backend_detail);
        kv_row(d, "threads", "%d%s%s%s", pt->threads, pt->pinned ? ", pinned" : ", not pinned",
               pt->pin_note[0] ? ": " : "", pt->pin_note);
        kv_row(d, "emulated", "%s", pt->emulated ? "YES" : "no");
        limit_row(d, "DRAM read bandwidth", pt->dram_read_gbs, "GB/s", "measured");
        limit_row(d, "f32 FMA peak", pt->fma_gflops, "GFLOP/s", pt->fma_isa);
        limit_row(d, "int8 dot-product peak", pt->int8_gops, "GOP/s", pt->int8_isa);
        limit_row(d, "bf16 dot-product peak", pt->bf16_gflops, "GFLOP/s", NULL);
        rpt_doc_row_begin(d, false);
        rpt_doc_cell(d, RPT_CELL_HEAD, "counters used");
        rpt_doc_cell_begin(d, 0);
        write_event_list(d, p);
        rpt_doc_text(d, "%s", p->multiplexed ? " (multiplexed)" : "");
        rpt_doc_cell_end(d);
        rpt_doc_row_end(d);
        rpt_doc_row_begin(d, false);
        rpt_doc_cell(d, RPT_CELL_HEAD, "counters missing");
        rpt_doc_cell_begin(d, p->n_missing ? RPT_CELL_BAD : 0);
        if (p->n_missing)
            write_missing(d, p);
        else
            rpt_doc_text(d, "none");
        rpt_doc_cell_end(d);
        rpt_doc_row_end(d);
        kv_row(d, "PAPI", "%s", p->papi_status[0] ? p->papi_status : "-");
        kv_row(d, "caches", "%s", p->cache_note[0] ? p->cache_note : "-");
        kv_row(d, "measurement",
               "%d shape x format costs, timer overhead %.3g ns, load average %.3g, %.3g s",
               p->n_costs, pt->timer_overhead_ns, pt->load_avg, p->wall_seconds);
        rpt_doc_table_end(d);
    }
}

static void write_shapes(struct rpt_doc *d, const struct rpt_cmp *c, const struct cmp_plots *pl)
{
    const char *base = mq_dtype_name(c->fmt[RPT_CMP_BASE]),
               *q8 = mq_dtype_name(c->fmt[RPT_CMP_8BIT]), *low = mq_dtype_name(c->fmt[RPT_CMP_LOW]);
    rpt_doc_heading(d, 2, "shapes", "Per layer shape and format");
    rpt_doc_par_begin(d, RPT_DOC_NOTE);
    rpt_doc_text(d,
                 "One layer's time per workload run (median over the layers of that shape, in "
                 "us) in each format, and the speed-up of %s and %s over %s on the same target. "
                 "Red: the quantized format is slower than %s there, so quantizing those layers "
                 "saves memory but costs time.",
                 q8, low, base, base);
    if (c->n_lookups)
        rpt_doc_text(d, " %d layer%s without a matmul (token embedding lookups) %s left out.",
                     c->n_lookups, c->n_lookups == 1 ? "" : "s", c->n_lookups == 1 ? "is" : "are");
    rpt_doc_par_end(d);
    write_low_note(d, c);
    char caption[128];
    snprintf(caption, sizeof(caption), "Speed-up of %s and %s over %s per layer shape", q8, low,
             base);
    put_plot(d, pl, pl->speedup, "plots/speedup.svg", caption);
    char text[2 * RPT_CMP_N_FORMATS - 1][48];
    const char *head[2 * RPT_CMP_N_FORMATS + 3] = {"shape (in->out)", "layers", "target"};
    int n_head = 3 + format_heads(c, text, head + 3);
    rpt_doc_table_begin(d, n_head, head);
    for (int s = 0; s < c->n_shapes; s++) {
        const struct rpt_cmp_shape *sh = &c->shapes[s];
        for (int t = 0; t < c->n_targets; t++) {
            char b[32];
            rpt_doc_row_begin(d, t == 0);
            if (t == 0) {
                rpt_doc_cell(d, RPT_CELL_HEAD, "%lld->%lld", (long long)sh->K, (long long)sh->N);
                rpt_doc_cell_begin(d, 0);
                rpt_doc_text(d, "%d: ", sh->n_layers);
                rpt_doc_code(d, sh->roles);
                rpt_doc_cell_end(d);
            } else {
                rpt_doc_cell(d, 0, "%s", "");
                rpt_doc_cell(d, 0, "%s", "");
            }
            rpt_doc_cell(d, 0, "%s", c->targets[t].label);
            for (int k = 0; k < RPT_CMP_N_FORMATS; k++)
                rpt_doc_cell(d, RPT_CELL_NUM, "%s", us_text(b, sizeof(b), sh->ns[t][c->fmt[k]]));
            for (int k = RPT_CMP_BASE + 1; k < RPT_CMP_N_FORMATS; k++)
                speedup_cell(d, rpt_cmp_speedup(sh, t, c->fmt[k]));
            rpt_doc_row_end(d);
        }
    }
    /* the whole model: every layer's time summed, each format's as its uniform plan is
     * profiled (profiler/profile.h): the baseline for layers whose rows cannot take it */
    bool filled = false;
    for (int t = 0; t < c->n_targets; t++) {
        const struct prof_profile *p = c->targets[t].prof;
        double sum[RPT_CMP_N_FORMATS];
        for (int k = 0; k < RPT_CMP_N_FORMATS; k++) {
            bool any = false, gap = false;
            sum[k] = 0;
            for (int l = 0; l < p->n_layers; l++) {
                const double *ns = &p->layer_ns[(size_t)l * MQ_DTYPE_COUNT];
                double base_ns = ns[c->fmt[RPT_CMP_BASE]];
                if (isfinite(ns[c->fmt[k]])) {
                    sum[k] += ns[c->fmt[k]];
                    any |= ns[c->fmt[k]] > 0; /* not a lookup's 0 */
                } else if (isfinite(base_ns)) {
                    sum[k] += base_ns;
                    gap |= base_ns > 0;
                }
            }
            if (!any)
                sum[k] = NAN; /* not profiled there at all: "-", not the baseline's sum */
            filled |= any && gap;
        }
        char b[32];
        rpt_doc_row_begin(d, t == 0);
        rpt_doc_cell(d, RPT_CELL_HEAD, "%s", t == 0 ? "all layers (sum)" : "");
        rpt_doc_cell(d, 0, "%d", t == 0 ? p->n_layers : 0);
        rpt_doc_cell(d, 0, "%s", c->targets[t].label);
        for (int k = 0; k < RPT_CMP_N_FORMATS; k++)
            rpt_doc_cell(d, RPT_CELL_NUM, "%s", us_text(b, sizeof(b), sum[k]));
        for (int k = RPT_CMP_BASE + 1; k < RPT_CMP_N_FORMATS; k++)
            speedup_cell(d, sum[k] > 0 ? sum[RPT_CMP_BASE] / sum[k] : NAN);
        rpt_doc_row_end(d);
    }
    rpt_doc_table_end(d);
    if (filled) {
        rpt_doc_par_begin(d, RPT_DOC_NOTE);
        rpt_doc_text(d,
                     "\"-\": not measured, mostly layers whose rows are not whole blocks of the "
                     "format. The all-layers sums count %s for those layers, as the profiler's "
                     "uniform plans run them.",
                     mq_dtype_name(c->fmt[RPT_CMP_BASE]));
        rpt_doc_par_end(d);
    }
}

static void write_rooflines(struct rpt_doc *d, const struct rpt_cmp *c, const struct cmp_plots *pl)
{
    rpt_doc_heading(d, 2, "rooflines", "Rooflines");
    rpt_doc_par_begin(d, RPT_DOC_NOTE);
    rpt_doc_text(
        d,
        "Each layer and format as a point at (operations per weight byte, achieved GOP/s), under "
        "the target's measured DRAM read bandwidth (the slope) and compute peaks (the flat "
        "ceilings). Points far below both roofs are bound by something else: overheads, "
        "synchronization, instruction count. Then each layer's time per format.");
    rpt_doc_par_end(d);
    for (int t = 0; t < c->n_targets; t++) {
        char rel[200], cap[200];
        snprintf(cap, sizeof(cap), "%s", c->targets[t].label);
        rpt_doc_heading(d, 3, NULL, cap);
        snprintf(rel, sizeof(rel), "plots/%s/roofline.svg", c->targets[t].slug);
        snprintf(cap, sizeof(cap), "Roofline on %s", c->targets[t].label);
        put_plot(d, pl, pl->roof[t], rel, cap);
        snprintf(rel, sizeof(rel), "plots/%s/layer-times.svg", c->targets[t].slug);
        snprintf(cap, sizeof(cap), "Time per layer and format on %s", c->targets[t].label);
        put_plot(d, pl, pl->times[t], rel, cap);
    }
}

static void front_value(struct rpt_doc *d, const struct rpt_front_pt *pt, bool memory)
{
    char b[32];
    if (!pt || !pt->measured)
        rpt_doc_cell(d, RPT_CELL_NUM, "-");
    else if (memory)
        rpt_doc_cell(d, RPT_CELL_NUM, "%.4g", pt->mem_bytes / 1e6);
    else
        rpt_doc_cell(d, RPT_CELL_NUM, "%s", us_text(b, sizeof(b), pt->lat_ns));
}

static void write_fronts(struct rpt_doc *d, const struct rpt_cmp *c, const struct cmp_plots *pl)
{
    rpt_doc_heading(d, 2, "fronts", "Pareto fronts");
    if (!c->n_fronts) {
        rpt_doc_par_begin(d, RPT_DOC_NOTE);
        rpt_doc_text(d, "No fronts were given. Run ");
        rpt_doc_code(d, "mixq tune --out DIR");
        rpt_doc_text(d, " on each target and pass each ");
        rpt_doc_code(d, "DIR/front.yaml");
        rpt_doc_text(d, " with ");
        rpt_doc_code(d, "--fronts");
        rpt_doc_text(d, " to overlay them here.");
        rpt_doc_par_end(d);
        return;
    }
    static const char *const head[] = {"front",       "budgets",       "points",      "sensitivity",
                                       "chosen plan", "measured (us)", "memory (MB)", "KL"};
    rpt_doc_table_begin(d, 8, head);
    for (int i = 0; i < c->n_fronts; i++) {
        const struct rpt_front_file *f = c->fronts[i].file;
        const struct rpt_front_pt *ch = f->chosen >= 0 ? &f->points[f->chosen]
                                        : f->chosen_baseline >= 0
                                            ? &f->baselines[f->chosen_baseline]
                                            : NULL;
        rpt_doc_row_begin(d, false);
        rpt_doc_cell_begin(d, RPT_CELL_HEAD);
        rpt_doc_text(d, "%s ", c->fronts[i].label);
        rpt_doc_code(d, f->path);
        rpt_doc_cell_end(d);
        char mem[48] = "none", lat[48] = "none";
        if (isfinite(f->mem_budget_bytes))
            snprintf(mem, sizeof(mem), "%.4g MB", f->mem_budget_bytes / 1e6);
        if (isfinite(f->lat_budget_ns))
            snprintf(lat, sizeof(lat), "%.4g us", f->lat_budget_ns / 1e3);
        rpt_doc_cell(d, 0, "memory %s, latency %s", mem, lat);
        rpt_doc_cell(d, RPT_CELL_NUM, "%d (%d in the file)", f->front_points, f->n_points);
        rpt_doc_cell(d, 0, "%s (%s)", f->sens_method[0] ? f->sens_method : "?",
                     f->loss_name[0] ? f->loss_name : "?");
        if (ch)
            rpt_doc_cell(d, 0, "%s%s%s", ch->label[0] ? ch->label : "", ch->label[0] ? ": " : "",
                         ch->plan);
        else
            rpt_doc_cell(d, RPT_CELL_BAD, "none met the budgets as measured");
        front_value(d, ch, false);
        front_value(d, ch, true);
        if (ch && ch->measured)
            rpt_doc_cell(d, RPT_CELL_NUM, "%.3g", ch->kl);
        else
            rpt_doc_cell(d, RPT_CELL_NUM, "-");
        rpt_doc_row_end(d);
    }
    rpt_doc_table_end(d);
    put_plot(d, pl, pl->front_ll, "plots/fronts-latency-loss.svg",
             "Pareto fronts: predicted latency against loss");
    put_plot(d, pl, pl->front_ml, "plots/fronts-memory-latency.svg",
             "Pareto fronts: predicted memory against latency");
    put_plot(d, pl, pl->front_meas, "plots/fronts-measured.svg",
             "Plans measured on each target: latency against KL divergence");
}

/* The layers of a shape, for weighting a cost by how often the model runs it. */
static int shape_layers(const struct rpt_cmp *c, int64_t K, int64_t N)
{
    for (int s = 0; s < c->n_shapes; s++)
        if (c->shapes[s].K == K && c->shapes[s].N == N)
            return c->shapes[s].n_layers;
    return 0;
}

static void write_explain_target(struct rpt_doc *d, const struct rpt_cmp *c, int t)
{
    const struct prof_profile *p = c->targets[t].prof;
    const struct prof_target *pt = &p->target;
    rpt_doc_heading(d, 3, NULL, c->targets[t].label);
    rpt_doc_par_begin(d, pt->emulated ? RPT_DOC_WARN : RPT_DOC_PLAIN);
    if (pt->emulated) {
        rpt_doc_text(
            d,
            "%s is emulated: its counters and times count the emulator's work on the host, so no "
            "hardware bound is inferred. The figures are listed for reference.",
            c->targets[t].label);
    } else if (has_ipc_counters(p)) {
        rpt_doc_text(d, "Hardware counters: ");
        write_event_list(d, p);
        rpt_doc_text(d,
                     ". IPC is instructions over cycles summed over the backend's threads; "
                     "bytes/instruction is the weight bytes read per instruction retired. A kernel "
                     "at IPC >= %.1g is bound by its instruction count, below %.1g by stalls.",
                     RPT_IPC_HIGH, RPT_IPC_LOW);
    } else {
        rpt_doc_strong(d, "No cycle or instruction counters on %s.", c->targets[t].label);
        if (p->n_missing) {
            rpt_doc_text(d, " Missing: ");
            write_missing(d, p);
            rpt_doc_text(d, ".");
        }
        rpt_doc_text(d, " Counted: ");
        write_event_list(d, p);
        rpt_doc_text(
            d,
            "%s The verdicts below therefore rest on the timings against the measured limits%s; "
            "where a kernel reaches no roof they cannot say whether instructions, stalls or "
            "overheads bound it.",
            p->n_events ? " (software events: CPU time and scheduling, no cycles or instructions)."
                        : ".",
            event_of(p, ev_task_clock) >= 0 ? " and CPU time over wall time" : "");
    }
    rpt_doc_par_end(d);
    static const char *const head[] = {
        "shape (in->out)", "format",     "time per call (us): median ± MAD, min (reps)",
        "weights GB/s",    "of DRAM bw", "GOP/s",
        "of peak",         "IPC",        "bytes/instr",
        "CPU/wall",        "bound by"};
    rpt_doc_table_begin(d, 11, head);
    /* the costliest kernel per format, for the sentences under the table */
    int worst[MQ_DTYPE_COUNT];
    double worst_ns[MQ_DTYPE_COUNT];
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        worst[f] = -1;
        worst_ns[f] = 0;
    }
    for (int s = 0; s < c->n_shapes; s++)
        for (int f = 0; f < MQ_DTYPE_COUNT; f++)
            for (int i = 0; i < p->n_costs; i++) {
                const struct prof_cost *co = &p->costs[i];
                if (co->K != c->shapes[s].K || co->N != c->shapes[s].N ||
                    co->fmt != (enum mq_dtype)f)
                    continue;
                struct rpt_bound_info b;
                rpt_cmp_explain(p, co, &b);
                char b1[32], b2[32];
                rpt_doc_row_begin(d, f == MQ_DTYPE_F16 || (f < MQ_DTYPE_F16 && f == 0));
                rpt_doc_cell(d, RPT_CELL_HEAD, "%lld->%lld%s", (long long)co->K, (long long)co->N,
                             co->M > 1 ? "" : "");
                if (co->M > 1)
                    rpt_doc_cell(d, 0, "%s x %lld", mq_dtype_name(co->fmt), (long long)co->M);
                else
                    rpt_doc_cell(d, 0, "%s", mq_dtype_name(co->fmt));
                char b3[32];
                rpt_doc_cell(d, RPT_CELL_NUM | (is_noisy(co) ? RPT_CELL_BAD : 0),
                             "%s ± %s, min %s (%d)", us_text(b1, sizeof(b1), co->time.median_ns),
                             co->time.mad_ns > 0 ? us_text(b2, sizeof(b2), co->time.mad_ns) : "0",
                             us_text(b3, sizeof(b3), co->time.min_ns), co->time.reps);
                rpt_doc_cell(d, RPT_CELL_NUM, isnan(b.gbs) ? "-" : "%.3g", b.gbs);
                rpt_doc_cell(d, RPT_CELL_NUM,
                             isnan(b.dram_frac) ? "-"
                             : co->warm         ? "%.0f%% (cache)"
                                                : "%.0f%%",
                             100 * b.dram_frac);
                rpt_doc_cell(d, RPT_CELL_NUM, isnan(b.gops) ? "-" : "%.3g", b.gops);
                rpt_doc_cell(d, RPT_CELL_NUM, isnan(b.peak_frac) ? "-" : "%.1f%%",
                             100 * b.peak_frac);
                rpt_doc_cell(d, RPT_CELL_NUM, isnan(b.ipc) ? "-" : "%.2f", b.ipc);
                rpt_doc_cell(d, RPT_CELL_NUM, isnan(b.bytes_per_ins) ? "-" : "%.2f",
                             b.bytes_per_ins);
                rpt_doc_cell(d, RPT_CELL_NUM, isnan(b.cpus_busy) ? "-" : "%.2f", b.cpus_busy);
                rpt_doc_cell(d, 0, "%s", rpt_bound_name(b.kind));
                rpt_doc_row_end(d);
                double weight = co->time.median_ns * shape_layers(c, co->K, co->N);
                if (weight > worst_ns[f]) {
                    worst_ns[f] = weight;
                    worst[f] = i;
                }
            }
    rpt_doc_table_end(d);
    int n_noisy = 0;
    for (int i = 0; i < p->n_costs; i++)
        n_noisy += is_noisy(&p->costs[i]);
    if (n_noisy) {
        rpt_doc_par_begin(d, RPT_DOC_NOTE);
        rpt_doc_text(
            d,
            "Red times: %d of %d measurements have a median more than %.0fx their minimum, so "
            "interruptions (other work on the machine, thread wake-ups) dominate them and their "
            "speed-ups say little; profile again on a quiet machine.",
            n_noisy, p->n_costs, RPT_NOISY);
        rpt_doc_par_end(d);
    }
    rpt_doc_par_begin(d, RPT_DOC_PLAIN);
    rpt_doc_text(d, "The kernel that costs the most time per format:");
    rpt_doc_par_end(d);
    rpt_doc_list_begin(d);
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        if (worst[f] < 0)
            continue;
        struct rpt_bound_info b;
        char text[768];
        rpt_cmp_explain(p, &p->costs[worst[f]], &b);
        rpt_cmp_explain_text(&p->costs[worst[f]], &b, text, sizeof(text));
        rpt_doc_item_begin(d);
        rpt_doc_text(d, "%s.", text);
        rpt_doc_item_end(d);
    }
    rpt_doc_list_end(d);
}

static void write_explain(struct rpt_doc *d, const struct rpt_cmp *c)
{
    rpt_doc_heading(d, 2, "explain", "What bounds each kernel");
    rpt_doc_par_begin(d, RPT_DOC_NOTE);
    rpt_doc_text(
        d,
        "Each measured matmul (one call: a GEMV for one decoded token) against the target's "
        "limits. Bound by DRAM bandwidth: cold weights streamed at >= %.0f%% of the measured "
        "bandwidth; by the compute peak: >= %.0f%% of the format's peak (the int8 dot-product "
        "peak, VNNI or dot-product instructions, for the integer formats; f32 FMA for f16 and "
        "f32; bf16 dot products for bf16); by waiting threads: CPU time below %.0f%% of threads "
        "x wall time. With cycle and instruction counters, the rest is split by IPC (>= %.1g: "
        "instruction throughput; < %.1g: stalls).",
        100 * RPT_BOUND_NEAR, 100 * RPT_BOUND_NEAR, 100 * RPT_BUSY_LOW, RPT_IPC_HIGH, RPT_IPC_LOW);
    rpt_doc_par_end(d);
    for (int t = 0; t < c->n_targets; t++)
        write_explain_target(d, c, t);
}

static void write_method(struct rpt_doc *d, const struct rpt_cmp *c)
{
    rpt_doc_heading(d, 2, "method", "Inputs and method");
    rpt_doc_list_begin(d);
    for (int t = 0; t < c->n_targets; t++) {
        rpt_doc_item_begin(d);
        rpt_doc_text(d, "%s: ", c->targets[t].label);
        rpt_doc_code(d, c->targets[t].path);
        rpt_doc_item_end(d);
    }
    for (int i = 0; i < c->n_fronts; i++) {
        rpt_doc_item_begin(d);
        rpt_doc_text(d, "front, %s: ", c->fronts[i].label);
        rpt_doc_code(d, c->fronts[i].file->path);
        rpt_doc_item_end(d);
    }
    rpt_doc_list_end(d);
    rpt_doc_par_begin(d, RPT_DOC_PLAIN);
    rpt_doc_text(
        d,
        "Every figure comes from the files above: per-layer times are the profiles' medians of "
        "repeated, adaptive measurements (warm-up discarded, threads pinned), end-to-end times the "
        "medians of whole workload runs. Weight GB/s is the layer's weight bytes over its median "
        "time; GOP/s counts 2 x inputs x outputs x columns; the roof is min(DRAM bandwidth x "
        "operations per weight byte, the format's peak). Plots are SVG drawn by gnuplot; their "
        "scripts and data are in ");
    rpt_doc_code(d, "plots/");
    rpt_doc_text(d, " beside this report.");
    rpt_doc_par_end(d);
    fputs("<footer>", d->html);
    rpt_doc_par_begin(d, RPT_DOC_PLAIN);
    rpt_doc_text(d, "mixq %s compare", MIXQ_VERSION);
    rpt_doc_par_end(d);
    fputs("</footer>\n", d->html);
}

int rpt_cmp_write(const struct rpt_cmp *c, const char *dir, bool plots)
{
    struct cmp_plots pl = {.on = plots};
    if (!plots)
        snprintf(pl.why, sizeof(pl.why), "plots were turned off (--no-plots)");
    int rc;
    if ((rc = make_dir(dir)) < 0 || (rc = make_plots(c, dir, &pl)) < 0)
        return rc;
    char title[400];
    snprintf(title, sizeof(title), "Hardware comparison: %.200s on %d target%s",
             model_title(c->targets[0].prof), c->n_targets, c->n_targets == 1 ? "" : "s");
    struct rpt_doc d;
    if ((rc = rpt_doc_open(&d, dir, title)) < 0)
        return rc;
    write_intro(&d, c, &pl);
    write_summary(&d, c, &pl);
    write_targets(&d, c);
    write_shapes(&d, c, &pl);
    write_rooflines(&d, c, &pl);
    write_fronts(&d, c, &pl);
    write_explain(&d, c);
    write_method(&d, c);
    return rpt_doc_close(&d, "report");
}
