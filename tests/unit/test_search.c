/* tests/unit/test_search.c - the search engine against brute force: the DP front equals
 * the exhaustive one, both are Pareto fronts plan by plan, the epsilon front keeps its
 * stated bound, the budget queries, the extremes, input validation and budget parsing. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"
#include "search/budget.h"
#include "search/search.h"
#include "tests/unit/test.h"

#define MAX_L 64

struct capture {
    int saved;
    char path[4200];
};
static void capture_begin(struct capture *c);
static void capture_end(struct capture *c, char *buf, size_t size);
static int count_lines(const char *s);

static double u01(struct t_rng *r)
{
    return (double)(t_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static const enum mq_dtype fmts[] = {MQ_DTYPE_F16, MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_0, MQ_DTYPE_BF16,
                                     MQ_DTYPE_F32};

enum gen_kind {
    GEN_CONTINUOUS, /* costs uniform in [0, 100) */
    GEN_TIES,       /* costs in {0, 1, 2, 3}: many ties and duplicate vectors */
    GEN_DUPLICATES, /* continuous, but choices often copy another choice's costs, or one of them */
    GEN_ROUNDING,   /* a base of 2^56 bytes and ns: sums round, so partial orders tie */
};

/* N layers of 1..nmax choices each (exactly nmax when fixed). */
static void gen_problem(struct t_rng *r, int N, int nmax, bool fixed, enum gen_kind kind,
                        struct srch_layer *L, struct srch_problem *p)
{
    memset(L, 0, (size_t)N * sizeof(*L));
    for (int l = 0; l < N; l++) {
        L[l].n = fixed ? nmax : 1 + (int)(t_rng_next(r) % (unsigned)nmax);
        for (int c = 0; c < L[l].n; c++) {
            L[l].fmt[c] = fmts[c];
            double v[3];
            for (int k = 0; k < 3; k++) {
                switch (kind) {
                case GEN_TIES: v[k] = (double)(t_rng_next(r) % 4); break;
                case GEN_ROUNDING: v[k] = (double)(t_rng_next(r) % 64); break;
                default: v[k] = 100 * u01(r); break;
                }
            }
            if (kind == GEN_DUPLICATES && c > 0 && t_rng_next(r) % 3 == 0) {
                int o = (int)(t_rng_next(r) % (unsigned)c);
                int which = (int)(t_rng_next(r) % 4); /* 3: all three */
                double src[3] = {L[l].mem[o], L[l].lat[o], L[l].loss[o]};
                for (int k = 0; k < 3; k++)
                    if (which == 3 || which == k)
                        v[k] = src[k];
            }
            L[l].mem[c] = v[0], L[l].lat[c] = v[1], L[l].loss[c] = v[2];
        }
    }
    *p = (struct srch_problem){.n_layers = N, .layers = L, .mem0 = 0, .lat0 = 0, .loss0 = 0};
    if (kind == GEN_ROUNDING)
        p->mem0 = p->lat0 = 72057594037927936.0; /* 2^56: the ulp is 16 */
    else if (kind == GEN_CONTINUOUS)
        p->mem0 = 1000, p->lat0 = 50, p->loss0 = 0.5;
}

static bool dominates_or_equal(double am, double at, double aq, double bm, double bt, double bq)
{
    return am <= bm && at <= bt && aq <= bq;
}

static bool dominates(double am, double at, double aq, double bm, double bt, double bq)
{
    return dominates_or_equal(am, at, aq, bm, bt, bq) && (am < bm || at < bt || aq < bq);
}

/* Every plan of the space, by srch_plan_eval, into v (3 per plan); returns the count. */
static size_t all_plans(const struct srch_problem *p, double *v, size_t cap)
{
    uint8_t ch[MAX_L] = {0};
    size_t n = 0;
    for (;;) {
        if (n >= cap)
            return 0;
        srch_plan_eval(p, ch, &v[3 * n], &v[3 * n + 1], &v[3 * n + 2]);
        n++;
        int l = p->n_layers - 1;
        while (l >= 0 && ch[l] + 1 >= p->layers[l].n)
            ch[l--] = 0;
        if (l < 0)
            return n;
        ch[l]++;
    }
}

/* Sorted, points' plans give their values, no two equal vectors, mutually non-dominated. */
static int check_front_shape(const struct srch_problem *p, const struct srch_front *f)
{
    T_CHECK(f->n >= 1 && f->n_layers == p->n_layers);
    for (int i = 0; i < f->n; i++) {
        const struct srch_point *a = &f->pts[i];
        for (int l = 0; l < p->n_layers; l++)
            T_CHECK(a->choice[l] < p->layers[l].n);
        double m, t, q;
        srch_plan_eval(p, a->choice, &m, &t, &q);
        T_CHECK_MSG(m == a->mem && t == a->lat && q == a->loss,
                    "point %d: plan gives (%.17g %.17g %.17g), point "
                    "says (%.17g %.17g %.17g)",
                    i, m, t, q, a->mem, a->lat, a->loss);
        if (i > 0) {
            const struct srch_point *b = &f->pts[i - 1];
            T_CHECK(b->mem < a->mem || (b->mem == a->mem && b->lat < a->lat));
        }
        for (int j = 0; j < f->n; j++)
            T_CHECK_MSG(i == j || !dominates_or_equal(f->pts[j].mem, f->pts[j].lat, f->pts[j].loss,
                                                      a->mem, a->lat, a->loss),
                        "point %d dominated by or equal to point %d", i, j);
    }
    return T_PASS;
}

static int compute(const struct srch_problem *p, enum srch_method m, int max_states,
                   struct srch_front **f)
{
    return srch_front_compute(p, &(struct srch_options){.method = m, .max_states = max_states}, f);
}

/* The DP (exact: it must not need its grid here) equals exhaustive enumeration, vector
 * for vector, on random problems of 1..10 layers x 1..4 formats. */
static int test_dp_equals_exhaustive(void)
{
    static const struct {
        int N, nmax;
        bool fixed;
        enum gen_kind kind;
        int seeds;
    } cases[] = {
        {1, 1, true, GEN_CONTINUOUS, 2},   {1, 4, true, GEN_CONTINUOUS, 3},
        {3, 4, false, GEN_CONTINUOUS, 8},  {6, 4, false, GEN_CONTINUOUS, 8},
        {10, 4, false, GEN_CONTINUOUS, 4}, {8, 4, true, GEN_CONTINUOUS, 2},
        {5, 3, false, GEN_TIES, 10},       {10, 4, false, GEN_TIES, 4},
        {10, 4, true, GEN_TIES, 1},        {6, 4, false, GEN_DUPLICATES, 8},
        {9, 4, true, GEN_DUPLICATES, 2},   {8, 4, false, GEN_ROUNDING, 6},
        {10, 1, true, GEN_TIES, 1},        {10, 2, true, GEN_CONTINUOUS, 2},
    };
    struct srch_layer L[MAX_L];
    struct srch_problem p;
    int n_checked = 0;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        for (int seed = 1; seed <= cases[k].seeds; seed++) {
            struct t_rng r = {0x9E3779B97F4A7C15ULL * (unsigned long long)(seed + 100 * (int)k)};
            gen_problem(&r, cases[k].N, cases[k].nmax, cases[k].fixed, cases[k].kind, L, &p);
            struct srch_front *fd = NULL, *fe = NULL;
            T_CHECK(compute(&p, SRCH_DP, 1 << 20, &fd) == MQ_OK);
            T_CHECK(compute(&p, SRCH_EXHAUSTIVE, 0, &fe) == MQ_OK);
            int rc = T_PASS;
            if (!fd->exact || !fe->exact || fd->n != fe->n) {
                fprintf(stderr, "    case %zu seed %d: dp %d points (%s), exhaustive %d\n", k, seed,
                        fd->n, fd->method, fe->n);
                rc = T_FAIL;
            }
            for (int i = 0; rc == T_PASS && i < fd->n; i++) {
                const struct srch_point *a = &fd->pts[i], *b = &fe->pts[i];
                if (a->mem != b->mem || a->lat != b->lat || a->loss != b->loss) {
                    fprintf(stderr,
                            "    case %zu seed %d point %d: dp (%.17g %.17g %.17g) exhaustive "
                            "(%.17g %.17g %.17g)\n",
                            k, seed, i, a->mem, a->lat, a->loss, b->mem, b->lat, b->loss);
                    rc = T_FAIL;
                }
            }
            if (rc == T_PASS)
                rc = check_front_shape(&p, fd);
            if (rc == T_PASS)
                rc = check_front_shape(&p, fe);
            /* The DP's states after layer k are the exact front of the first k layers, one per
             * vector: its largest state set is the largest prefix front. */
            int prefix_max = 1;
            for (int pl = 1; rc == T_PASS && pl <= p.n_layers; pl++) {
                struct srch_problem pk = p;
                struct srch_front *fk = NULL;
                pk.n_layers = pl;
                if (compute(&pk, SRCH_EXHAUSTIVE, 0, &fk) != MQ_OK)
                    rc = T_FAIL;
                else if (fk->n > prefix_max)
                    prefix_max = fk->n;
                srch_front_free(fk);
            }
            if (rc == T_PASS && fd->max_states != prefix_max) {
                fprintf(stderr,
                        "    case %zu seed %d: dp held %d states, largest prefix front %d\n", k,
                        seed, fd->max_states, prefix_max);
                rc = T_FAIL;
            }
            srch_front_free(fd);
            srch_front_free(fe);
            if (rc != T_PASS)
                return rc;
            n_checked++;
        }
    }
    T_CHECK(n_checked == 61);
    return T_PASS;
}

/* Plan by plan: no plan dominates a front point, every plan is dominated by or equal to one. */
static int test_front_is_pareto(void)
{
    enum { CAP = 5000 };
    double *v = malloc(3 * CAP * sizeof(double));
    T_CHECK(v);
    struct srch_layer L[MAX_L];
    struct srch_problem p;
    int rc = T_PASS;
    size_t n_plans = 0;
    for (int seed = 1; seed <= 24 && rc == T_PASS; seed++) {
        struct t_rng r = {0xD1B54A32D192ED03ULL * (unsigned long long)seed};
        enum gen_kind kind = (enum gen_kind)(seed % 4);
        gen_problem(&r, 2 + seed % 5, 4, seed % 2 == 0, kind, L, &p);
        size_t np = all_plans(&p, v, CAP);
        if (np == 0) {
            fprintf(stderr, "    seed %d: space over %d plans\n", seed, CAP);
            rc = T_FAIL;
            break;
        }
        n_plans += np;
        for (int method = SRCH_EXHAUSTIVE; method <= SRCH_DP && rc == T_PASS; method++) {
            struct srch_front *f = NULL;
            if (compute(&p, (enum srch_method)method, 0, &f) != MQ_OK) {
                rc = T_FAIL;
                break;
            }
            for (int i = 0; i < f->n && rc == T_PASS; i++)
                for (size_t k = 0; k < np && rc == T_PASS; k++)
                    if (dominates(v[3 * k], v[3 * k + 1], v[3 * k + 2], f->pts[i].mem,
                                  f->pts[i].lat, f->pts[i].loss)) {
                        fprintf(stderr, "    seed %d method %d: plan %zu dominates point %d\n",
                                seed, method, k, i);
                        rc = T_FAIL;
                    }
            for (size_t k = 0; k < np && rc == T_PASS; k++) {
                bool covered = false;
                for (int i = 0; i < f->n && !covered; i++)
                    covered = dominates_or_equal(f->pts[i].mem, f->pts[i].lat, f->pts[i].loss,
                                                 v[3 * k], v[3 * k + 1], v[3 * k + 2]);
                if (!covered) {
                    fprintf(stderr, "    seed %d method %d: plan %zu (%g %g %g) not covered\n",
                            seed, method, k, v[3 * k], v[3 * k + 1], v[3 * k + 2]);
                    rc = T_FAIL;
                }
            }
            if (rc == T_PASS)
                rc = check_front_shape(&p, f);
            srch_front_free(f);
        }
    }
    free(v);
    T_CHECK_MSG(rc != T_PASS || n_plans > 10000, "only %zu plans checked", n_plans);
    return rc;
}

/* A transformer-like problem: layers of 3 shapes, formats f16/q8_0/q4_0, memory exact in
 * bytes, latency memory-bound with noise, loss log-normal. */
static void gen_model(struct t_rng *r, int N, struct srch_layer *L, struct srch_problem *p)
{
    static const double params[3] = {4096.0 * 4096, 11008.0 * 4096, 1024.0 * 4096};
    static const double bpw[3] = {16, 8.5, 4.5}, eff[3] = {1.0, 0.85, 0.73},
                        err[3] = {1e-6, 4e-5, 1.5e-3};
    memset(L, 0, (size_t)N * sizeof(*L));
    for (int l = 0; l < N; l++) {
        double sens = exp(1.2 * (u01(r) + u01(r) + u01(r) - 1.5) * 2);
        L[l].n = 3;
        for (int c = 0; c < 3; c++) {
            L[l].fmt[c] = fmts[c];
            L[l].mem[c] = params[l % 3] * bpw[c] / 8;
            L[l].lat[c] = L[l].mem[c] / 30.0 / eff[c] * (0.95 + 0.1 * u01(r)); /* 30 GB/s */
            L[l].loss[c] = sens * err[c] * (0.8 + 0.4 * u01(r));
        }
    }
    *p = (struct srch_problem){.n_layers = N, .layers = L, .mem0 = 5e8, .lat0 = 2e6};
}

/* The epsilon front against the exact front of the same problem, computable here (100
 * layers x 3 formats: 8256 exact points; 1024 states force the grid at ~40 layers):
 * (1) the stated guarantee: every exact point has an approximate point with loss <=,
 *     memory <= + eps_mem and latency <= + eps_lat;
 * (2) the bound means something: eps_mem and eps_lat under 5% of the front's ranges
 *     (measured: 3.0%);
 * (3) at 9 x 9 budgets across the ranges, the best loss found is within 3% of the exact
 *     best (measured: 1.9% worst on a 19 x 19 grid), and never below it;
 * (4) srch_front_refine never does worse than the front, stays within the budgets, and
 *     lowers the mean gap. */
static int test_epsilon_bound(void)
{
    static struct srch_layer L[100];
    struct srch_problem p;
    struct t_rng r = {12345};
    gen_model(&r, 100, L, &p);
    struct srch_front *fx = NULL, *fa = NULL, *fr = NULL;
    T_CHECK(compute(&p, SRCH_DP, 1 << 22, &fx) == MQ_OK);
    int rc = T_PASS;
    if (compute(&p, SRCH_DP, 1024, &fa) != MQ_OK || !fx->exact || fx->n < 5000 || fa->exact ||
        fa->n_reductions < 10 || fa->n > 1024 + 2) {
        fprintf(stderr, "    exact %d points (%s), approximate %d (%s)\n", fx->n, fx->method,
                fa ? fa->n : 0, fa ? fa->method : "-");
        rc = T_FAIL;
        goto done;
    }
    if ((rc = check_front_shape(&p, fa)) != T_PASS)
        goto done;
    double mem_range = fx->pts[fx->n - 1].mem - fx->pts[0].mem, lat_lo = INFINITY,
           lat_hi = -INFINITY;
    for (int i = 0; i < fx->n; i++)
        lat_lo = fmin(lat_lo, fx->pts[i].lat), lat_hi = fmax(lat_hi, fx->pts[i].lat);
    if (!(fa->eps_mem > 0 && fa->eps_mem < 0.05 * mem_range && fa->eps_lat > 0 &&
          fa->eps_lat < 0.05 * (lat_hi - lat_lo))) {
        fprintf(stderr, "    eps %g B of %g, %g ns of %g\n", fa->eps_mem, mem_range, fa->eps_lat,
                lat_hi - lat_lo);
        rc = T_FAIL;
        goto done;
    }
    for (int i = 0; i < fx->n && rc == T_PASS; i++) {
        const struct srch_point *x = &fx->pts[i];
        bool covered = false;
        for (int j = 0; j < fa->n && !covered; j++)
            covered = fa->pts[j].loss <= x->loss && fa->pts[j].mem <= x->mem + fa->eps_mem &&
                      fa->pts[j].lat <= x->lat + fa->eps_lat;
        if (!covered) {
            fprintf(stderr, "    exact point %d (%g %g %g) not within eps\n", i, x->mem, x->lat,
                    x->loss);
            rc = T_FAIL;
        }
    }
    double worst = 0, sum_front = 0, sum_refined = 0;
    int n_budgets = 0;
    for (int a = 1; a <= 9 && rc == T_PASS; a++) {
        for (int b = 1; b <= 9 && rc == T_PASS; b++) {
            double B = fx->pts[0].mem + mem_range * a / 10, T = lat_lo + (lat_hi - lat_lo) * b / 10;
            int ix, ia, ir;
            bool okx = srch_front_best(fx, B, T, &ix) == MQ_OK,
                 oka = srch_front_best(fa, B, T, &ia) == MQ_OK;
            if (!okx) {
                T_CHECK(!oka); /* nothing can be found where no plan exists */
                continue;
            }
            if (!oka) {
                fprintf(stderr, "    budget %g B %g ns: exact has a point, approximate none\n", B,
                        T);
                rc = T_FAIL;
                break;
            }
            double gap = (fa->pts[ia].loss - fx->pts[ix].loss) / fx->pts[ix].loss;
            T_CHECK(gap >= 0); /* the exact front is the best possible */
            worst = fmax(worst, gap);
            T_CHECK(srch_front_dup(fa, &fr) == MQ_OK);
            if (srch_front_refine(&p, fr, B, T, &ir) != MQ_OK) {
                rc = T_FAIL;
                break;
            }
            const struct srch_point *pr = &fr->pts[ir];
            double rgap = (pr->loss - fx->pts[ix].loss) / fx->pts[ix].loss;
            if (!(pr->mem <= B && pr->lat <= T && rgap >= 0 && rgap <= gap)) {
                fprintf(stderr, "    budget %g B %g ns: refined (%g %g %g) gap %g, front gap %g\n",
                        B, T, pr->mem, pr->lat, pr->loss, rgap, gap);
                rc = T_FAIL;
            }
            if (rc == T_PASS)
                rc = check_front_shape(&p, fr);
            srch_front_free(fr);
            fr = NULL;
            sum_front += gap, sum_refined += rgap, n_budgets++;
        }
    }
    if (rc == T_PASS && (worst > 0.03 || n_budgets < 40 || !(sum_refined < sum_front))) {
        fprintf(stderr, "    worst gap %.4f (over 3%%?), %d budgets, mean gap %.5f, refined %.5f\n",
                worst, n_budgets, sum_front / n_budgets, sum_refined / n_budgets);
        rc = T_FAIL;
    }
done:
    srch_front_free(fx);
    srch_front_free(fa);
    srch_front_free(fr);
    return rc;
}

/* Refinement on an exact front changes nothing; its refusals; a copy is independent. */
static int test_refine(void)
{
    struct srch_layer L[MAX_L];
    struct srch_problem p;
    struct t_rng r = {31337};
    gen_model(&r, 12, L, &p);
    struct srch_front *f = NULL, *g = NULL;
    T_CHECK(compute(&p, SRCH_DP, 1 << 20, &f) == MQ_OK);
    T_CHECK(f->exact && f->n > 10);
    T_CHECK(srch_front_dup(f, &g) == MQ_OK);
    int rc = T_FAIL;
    double B = (f->pts[0].mem + f->pts[f->n - 1].mem) / 2;
    int ib, ir;
    if (srch_front_best(f, B, SRCH_NO_BUDGET, &ib) != MQ_OK ||
        srch_front_refine(&p, f, B, SRCH_NO_BUDGET, &ir) != MQ_OK || ir != ib || f->n != g->n)
        goto done;
    for (int i = 0; i < f->n; i++)
        if (f->pts[i].loss != g->pts[i].loss ||
            memcmp(f->pts[i].choice, g->pts[i].choice, (size_t)p.n_layers) ||
            f->pts[i].choice == g->pts[i].choice)
            goto done;
    g->pts[0].choice[0] ^= 1; /* the copy owns its plans */
    if (f->pts[0].choice[0] == g->pts[0].choice[0])
        goto done;
    struct capture c;
    char msg[512];
    capture_begin(&c);
    int r1 = srch_front_refine(&p, f, NAN, 1, &ir);
    int r2 = srch_front_refine(&p, f, 1, 1, &ir); /* nothing fits: not printed */
    struct srch_problem q = p;
    q.n_layers = 3;
    int r3 = srch_front_refine(&q, f, B, SRCH_NO_BUDGET, &ir);
    capture_end(&c, msg, sizeof(msg));
    if (r1 != MQ_EINVAL || r2 != MQ_ERANGE || r3 != MQ_EINVAL || count_lines(msg) != 2) {
        fprintf(stderr, "    %d %d %d '%s'\n", r1, r2, r3, msg);
        goto done;
    }
    rc = T_PASS;
done:
    srch_front_free(f);
    srch_front_free(g);
    return rc;
}

/* Refine on a front the grid made coarse (16 states for 13 layers x 3 formats): with a
 * memory budget alone, the knapsack's plan is within the budget and at least as good as the
 * best plan of the whole space within the budget less the knapsack's rounding slack
 * (n_layers bins of the memory span / 65536); with both budgets, within both. */
static int test_refine_knapsack(void)
{
    struct srch_layer L[MAX_L];
    struct srch_problem p;
    struct t_rng r = {4242};
    static double v[3 * 1594323]; /* 3^13 plans */
    for (int trial = 0; trial < 4; trial++) {
        gen_problem(&r, 13, 3, true, GEN_CONTINUOUS, L, &p);
        for (int l = 0; l < 13; l++) /* losses spread over orders of magnitude, as measured */
            for (int c = 0; c < 3; c++)
                L[l].loss[c] = pow(10, -6 + 5 * L[l].loss[c] / 100);
        size_t n = all_plans(&p, v, sizeof(v) / sizeof(v[0]) / 3);
        T_CHECK(n == 1594323);
        double lo = INFINITY, hi = 0, span = 0;
        for (size_t i = 0; i < n; i++)
            lo = fmin(lo, v[3 * i]), hi = fmax(hi, v[3 * i]);
        for (int l = 0; l < 13; l++) {
            double a = INFINITY, b = 0;
            for (int c = 0; c < 3; c++)
                a = fmin(a, L[l].mem[c]), b = fmax(b, L[l].mem[c]);
            span += b - a;
        }
        for (int k = 1; k <= 3; k++) {
            double M = lo + (hi - lo) * k / 4, T = SRCH_NO_BUDGET;
            struct srch_front *f = NULL;
            T_CHECK(compute(&p, SRCH_DP, 16, &f) == MQ_OK && !f->exact);
            int i;
            T_CHECK(srch_front_refine(&p, f, M, T, &i) == MQ_OK);
            const struct srch_point *pt = &f->pts[i];
            double slack = 13 * span / 65536 * (1 + 1e-9), opt = INFINITY;
            for (size_t j = 0; j < n; j++)
                if (v[3 * j] <= M - slack)
                    opt = fmin(opt, v[3 * j + 2]);
            T_CHECK(pt->mem <= M);
            T_CHECK_MSG(pt->loss <= opt * (1 + 1e-12), "trial %d budget %d: %.9g vs optimum %.9g", trial, k,
                        pt->loss, opt);
            /* both budgets: within both */
            double lt = 1e300;
            for (size_t j = 0; j < n; j++)
                lt = fmin(lt, v[3 * j + 1]);
            T = lt + (pt->lat - lt) * 0.7;
            if (srch_front_refine(&p, f, M, T, &i) == MQ_OK)
                T_CHECK(f->pts[i].mem <= M && f->pts[i].lat <= T);
            srch_front_free(f);
        }
    }
    return T_PASS;
}

/* The DP's default on 200 layers: epsilon, fast enough, every point a real plan. */
static int test_big(void)
{
    static struct srch_layer L[200];
    struct srch_problem p;
    struct t_rng r = {777};
    for (int part = 0; part < 4; part++)
        gen_model(&r, 50, L + 50 * part, &p);
    p.n_layers = 200;
    p.layers = L;
    struct srch_front *f = NULL;
    T_CHECK(srch_front_compute(&p, NULL, &f) == MQ_OK);
    int rc = check_front_shape(&p, f);
    if (rc == T_PASS && (f->exact || strcmp(f->method, "dp-epsilon") != 0 ||
                         f->max_states > SRCH_DEFAULT_MAX_STATES || f->grid_cells < 1 ||
                         f->n < 100 || fabs(f->log2_plans - 200 * log2(3.0)) > 1e-9)) {
        fprintf(stderr, "    %s, %d points, %d states, %d cells\n", f->method, f->n, f->max_states,
                f->grid_cells);
        rc = T_FAIL;
    }
    srch_front_free(f);
    return rc;
}

/* ---- stderr capture, to check one-line messages ---- */

static void capture_begin(struct capture *c)
{
    fflush(stderr);
    snprintf(c->path, sizeof(c->path), "%s/stderr.txt", t_tmpdir());
    int fd = open(c->path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    c->saved = dup(2);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
}

static void capture_end(struct capture *c, char *buf, size_t size)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    buf[0] = '\0';
    FILE *f = fopen(c->path, "r");
    if (f) {
        size_t n = fread(buf, 1, size - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Two layers, memory in GB and latency in ms, chosen so that the front is known:
 *   layer a: f16 (4 GB, 40 ms, 0), q8_0 (2 GB, 25 ms, 1), q4_0 (1 GB, 20 ms, 5)
 *   layer b: f16 (2 GB, 30 ms, 0), q4_0 (1 GB, 10 ms, 3)
 * base 1 GB, 5 ms. Plans (mem GB, lat ms, loss):
 *   ff (7, 75, 0)  f4 (6, 55, 3)  8f (5, 60, 1)  84 (4, 40, 4)  4f (4, 55, 5)  44 (3, 35, 8)
 * 4f is dominated by 84; the front in memory order: 44, 84, 8f, f4, ff. */
static const struct srch_layer two_layers[2] = {
    {.name = "a",
     .n = 3,
     .fmt = {MQ_DTYPE_F16, MQ_DTYPE_Q8_0, MQ_DTYPE_Q4_0},
     .mem = {4e9, 2e9, 1e9},
     .lat = {40e6, 25e6, 20e6},
     .loss = {0, 1, 5}},
    {.name = "b",
     .n = 2,
     .fmt = {MQ_DTYPE_F16, MQ_DTYPE_Q4_0},
     .mem = {2e9, 1e9},
     .lat = {30e6, 10e6},
     .loss = {0, 3}},
};
static const struct srch_problem two = {
    .n_layers = 2, .layers = two_layers, .mem0 = 1e9, .lat0 = 5e6};

static int test_best(void)
{
    struct srch_front *f = NULL;
    T_CHECK(srch_front_compute(&two, NULL, &f) == MQ_OK);
    int rc = T_FAIL;
    static const double want[5][3] = {
        {3e9, 35e6, 8}, {4e9, 40e6, 4}, {5e9, 60e6, 1}, {6e9, 55e6, 3}, {7e9, 75e6, 0}};
    if (f->n != 5 || !f->exact)
        goto done;
    for (int i = 0; i < 5; i++)
        if (f->pts[i].mem != want[i][0] || f->pts[i].lat != want[i][1] ||
            f->pts[i].loss != want[i][2])
            goto done;
    static const struct {
        double B, T;
        int want; /* index, or -1: none */
    } q[] = {
        {SRCH_NO_BUDGET, SRCH_NO_BUDGET, 4}, /* absent budgets: the lowest loss */
        {5.5e9, SRCH_NO_BUDGET, 2},          /* memory only */
        {SRCH_NO_BUDGET, 56e6, 3},           /* latency only: f4 (loss 3) beats 84 (loss 4) */
        {5.5e9, 56e6, 1},                    /* both: 8f is too slow, f4 too big */
        {4e9, 40e6, 1},                      /* budgets exactly met */
        {4e9 - 1, 40e6, 0},                  /* one byte less */
        {2.9e9, SRCH_NO_BUDGET, -1},         /* infeasible memory */
        {SRCH_NO_BUDGET, 30e6, -1},          /* infeasible latency */
        {2e9, 10e6, -1},                     /* both */
        {3.5e9, 34e6, -1},                   /* 1 ms short of the fastest plan */
    };
    for (size_t k = 0; k < sizeof(q) / sizeof(q[0]); k++) {
        int idx = -7;
        int got = srch_front_best(f, q[k].B, q[k].T, &idx);
        if (q[k].want < 0 ? got != MQ_ERANGE || idx != -7 : got != MQ_OK || idx != q[k].want) {
            fprintf(stderr, "    query %zu: rc %d idx %d, want %d\n", k, got, idx, q[k].want);
            goto done;
        }
    }
    int idx;
    struct capture c;
    char msg[256];
    capture_begin(&c);
    int r_nan = srch_front_best(f, NAN, 1, &idx);
    capture_end(&c, msg, sizeof(msg));
    if (r_nan != MQ_EINVAL || count_lines(msg) != 1)
        goto done;
    rc = T_PASS;
done:
    srch_front_free(f);
    return rc;
}

static int test_budget_check(void)
{
    struct srch_front *f = NULL;
    struct srch_extremes e;
    T_CHECK(srch_front_compute(&two, NULL, &f) == MQ_OK);
    T_CHECK(srch_extremes_compute(&two, &e) == MQ_OK);
    int rc = T_FAIL;
    static const struct {
        double B, T;
        int want;
        const char *has[4];
    } q[] = {
        {5.5e9, 56e6, MQ_OK, {NULL}},
        {2e9,
         SRCH_NO_BUDGET,
         MQ_ERANGE,
         {"memory budget 2 GB is below the smallest plan's 3 GB", "35 ms",
          "fastest plan runs in 35 ms", NULL}},
        {SRCH_NO_BUDGET,
         30e6,
         MQ_ERANGE,
         {"latency budget 30 ms is below the fastest plan's 35 ms", "3 GB", NULL}},
        {2e9,
         10e6,
         MQ_ERANGE,
         {"memory budget 2 GB and latency budget 10 ms", "smallest plan", "needs 3 GB",
          "runs in 35 ms"}},
        {3.5e9, 34e6, MQ_ERANGE, {"latency budget 34 ms is below the fastest plan's 35 ms", NULL}},
        {3.5e9, 36e6, MQ_OK, {NULL}},
    };
    for (size_t k = 0; k < sizeof(q) / sizeof(q[0]); k++) {
        char msg[1024];
        struct capture c;
        int idx = -1;
        capture_begin(&c);
        int got = srch_budget_check(&e, f, q[k].B, q[k].T, &idx);
        capture_end(&c, msg, sizeof(msg));
        if (got != q[k].want || (got == MQ_OK) != (msg[0] == '\0') ||
            (got != MQ_OK && count_lines(msg) != 1)) {
            fprintf(stderr, "    query %zu: rc %d, message '%s'\n", k, got, msg);
            goto done;
        }
        for (int h = 0; h < 4 && q[k].has[h]; h++)
            if (!strstr(msg, q[k].has[h])) {
                fprintf(stderr, "    query %zu: '%s' lacks '%s'\n", k, msg, q[k].has[h]);
                goto done;
            }
    }
    if (e.smallest.mem != 3e9 || e.smallest.lat != 35e6 || e.smallest.choice[0] != 2 ||
        e.smallest.choice[1] != 1 || e.fastest.lat != 35e6 || e.fastest.choice[0] != 2 ||
        e.fastest.choice[1] != 1)
        goto done;
    rc = T_PASS;
done:
    srch_front_free(f);
    srch_extremes_release(&e);
    srch_extremes_release(&e); /* released twice: a no-op */
    return rc;
}

/* Jointly infeasible budgets with each alone reachable: a problem where the smallest plan
 * is slow and the fastest is big. */
static int test_budget_check_joint(void)
{
    static const struct srch_layer L[2] = {
        {.name = "x",
         .n = 2,
         .fmt = {MQ_DTYPE_F16, MQ_DTYPE_Q4_0},
         .mem = {4, 1},
         .lat = {1, 4},
         .loss = {0, 0}},
        {.name = "y",
         .n = 2,
         .fmt = {MQ_DTYPE_F16, MQ_DTYPE_Q4_0},
         .mem = {4, 1},
         .lat = {1, 4},
         .loss = {0, 0}},
    };
    const struct srch_problem p = {.n_layers = 2, .layers = L};
    struct srch_front *f = NULL;
    struct srch_extremes e;
    T_CHECK(srch_front_compute(&p, NULL, &f) == MQ_OK);
    T_CHECK(srch_extremes_compute(&p, &e) == MQ_OK);
    /* plans: (8, 2), (5, 5) twice, (2, 8): budgets 4 B and 4 ns meet neither */
    char msg[1024];
    struct capture c;
    int idx;
    capture_begin(&c);
    int got = srch_budget_check(&e, f, 4, 4, &idx);
    capture_end(&c, msg, sizeof(msg));
    srch_front_free(f);
    srch_extremes_release(&e);
    T_CHECK_MSG(got == MQ_ERANGE && count_lines(msg) == 1, "rc %d '%s'", got, msg);
    T_CHECK_MSG(strstr(msg, "no plan meets both memory budget 4 B and latency budget 4 ns") &&
                    strstr(msg, "within the memory budget the fastest plan runs in 8 ns") &&
                    strstr(msg, "smallest plan") && strstr(msg, "needs 2 B") &&
                    strstr(msg, "runs in 2 ns"),
                "'%s'", msg);
    return T_PASS;
}

static int test_nearest(void)
{
    /* one layer, points on a line: memory i GB, latency (10 - i) ... no: both grow with i */
    static struct srch_layer L[1] = {{.name = "z", .n = 6}};
    for (int c = 0; c < 6; c++) {
        L[0].fmt[c] = (enum mq_dtype)c;
        L[0].mem[c] = (c + 1) * 1e9;  /* 1..6 GB */
        L[0].lat[c] = (c + 1) * 10e6; /* 10..60 ms */
        L[0].loss[c] = 10.0 - c;      /* 10..5 */
    }
    L[0].lat[4] = 35e6; /* point 4: 5 GB, 35 ms, loss 6 */
    const struct srch_problem p = {.n_layers = 1, .layers = L};
    struct srch_front *f = NULL;
    T_CHECK(srch_front_compute(&p, NULL, &f) == MQ_OK);
    int rc = T_FAIL, idx[8], n;
    if (f->n != 6)
        goto done;
    /* sorted by memory: index = c. Budgets 3.5 GB, 45 ms: best is c=2 (3 GB, 30 ms, 8);
     * inside by loss: 1, 0; beyond memory (lat ok, loss < 8): 3 (4 GB, 40 ms), 4 (5 GB, 35 ms);
     * beyond latency: none; beyond both: 5 (6 GB, 60 ms). */
    if (srch_front_nearest(f, 3.5e9, 45e6, 8, idx, &n) != MQ_OK || n != 6)
        goto done;
    static const int want[6] = {2, 1, 3, 5, 0, 4};
    for (int i = 0; i < 6; i++)
        if (idx[i] != want[i]) {
            fprintf(stderr, "    nearest[%d] = %d, want %d\n", i, idx[i], want[i]);
            goto done;
        }
    /* k smaller than what is there */
    if (srch_front_nearest(f, 3.5e9, 45e6, 2, idx, &n) != MQ_OK || n != 2 || idx[0] != 2 ||
        idx[1] != 1)
        goto done;
    /* latency budget only, 33 ms: best c=2 (30 ms); beyond latency: 4 (35 ms), then 3 (40 ms) */
    if (srch_front_nearest(f, SRCH_NO_BUDGET, 33e6, 4, idx, &n) != MQ_OK || n != 4 || idx[0] != 2 ||
        idx[1] != 1 || idx[2] != 4 || idx[3] != 0)
        goto done;
    /* nothing feasible: budgets 0.5 GB, 5 ms: every point is beyond both, nearest first */
    if (srch_front_nearest(f, 0.5e9, 5e6, 3, idx, &n) != MQ_OK || n != 3 || idx[0] != 0 ||
        idx[1] != 1 || idx[2] != 2)
        goto done;
    /* no budgets: by loss */
    if (srch_front_nearest(f, SRCH_NO_BUDGET, SRCH_NO_BUDGET, 3, idx, &n) != MQ_OK || n != 3 ||
        idx[0] != 5 || idx[1] != 4 || idx[2] != 3)
        goto done;
    if (srch_front_nearest(f, 1e9, 1e9, 0, idx, &n) != MQ_OK || n != 0)
        goto done;
    struct capture c;
    char msg[256];
    capture_begin(&c);
    int r_neg = srch_front_nearest(f, 1e9, 1e9, -1, idx, &n);
    capture_end(&c, msg, sizeof(msg));
    if (r_neg != MQ_EINVAL || count_lines(msg) != 1)
        goto done;
    rc = T_PASS;
done:
    srch_front_free(f);
    return rc;
}

/* Extremes against brute force, and their plans on every front (DP and epsilon). */
static int test_extremes(void)
{
    enum { CAP = 5000 };
    double *v = malloc(3 * CAP * sizeof(double));
    T_CHECK(v);
    struct srch_layer L[MAX_L];
    struct srch_problem p;
    int rc = T_PASS;
    for (int seed = 1; seed <= 16 && rc == T_PASS; seed++) {
        struct t_rng r = {0xA24BAED4963EE407ULL * (unsigned long long)seed};
        gen_problem(&r, 1 + seed % 6, 4, false, seed % 2 ? GEN_TIES : GEN_CONTINUOUS, L, &p);
        size_t np = all_plans(&p, v, CAP);
        struct srch_extremes e;
        if (np == 0 || srch_extremes_compute(&p, &e) != MQ_OK) {
            rc = T_FAIL;
            break;
        }
        /* the lexicographic minima over all plans */
        size_t s = 0, t = 0;
        for (size_t k = 1; k < np; k++) {
            double *a = &v[3 * k], *b = &v[3 * s], *c = &v[3 * t];
            if (a[0] < b[0] || (a[0] == b[0] && (a[1] < b[1] || (a[1] == b[1] && a[2] < b[2]))))
                s = k;
            if (a[1] < c[1] || (a[1] == c[1] && (a[0] < c[0] || (a[0] == c[0] && a[2] < c[2]))))
                t = k;
        }
        double m, tt, q;
        srch_plan_eval(&p, e.smallest.choice, &m, &tt, &q);
        if (e.smallest.mem != v[3 * s] || e.smallest.lat != v[3 * s + 1] ||
            e.smallest.loss != v[3 * s + 2] || m != e.smallest.mem || tt != e.smallest.lat ||
            q != e.smallest.loss || e.fastest.mem != v[3 * t] || e.fastest.lat != v[3 * t + 1] ||
            e.fastest.loss != v[3 * t + 2]) {
            fprintf(stderr, "    seed %d: extremes differ from brute force\n", seed);
            rc = T_FAIL;
        }
        srch_extremes_release(&e);
    }
    free(v);
    if (rc != T_PASS)
        return rc;
    /* On an epsilon front the extremes are points: their budgets always find a point. */
    static struct srch_layer B[60];
    struct t_rng r = {99};
    gen_model(&r, 60, B, &p);
    for (int l = 0; l < 60; l += 5)
        B[l].lat[1] = 0.5 * B[l].lat[2]; /* some layers run faster in q8_0: fastest != smallest */
    struct srch_front *f = NULL;
    struct srch_extremes e;
    T_CHECK(compute(&p, SRCH_DP, 16, &f) == MQ_OK);
    T_CHECK(srch_extremes_compute(&p, &e) == MQ_OK);
    int i1, i2;
    bool ok = !f->exact && srch_front_best(f, e.smallest.mem, SRCH_NO_BUDGET, &i1) == MQ_OK &&
              f->pts[i1].mem == e.smallest.mem &&
              srch_front_best(f, SRCH_NO_BUDGET, e.fastest.lat, &i2) == MQ_OK &&
              f->pts[i2].lat == e.fastest.lat && f->pts[0].mem == e.smallest.mem &&
              f->pts[0].lat == e.smallest.lat && f->pts[0].loss == e.smallest.loss &&
              f->pts[i2].mem == e.fastest.mem && f->pts[i2].loss == e.fastest.loss;
    ok = ok && e.fastest.lat < e.smallest.lat && e.fastest.mem > e.smallest.mem;
    srch_front_free(f);
    srch_extremes_release(&e);
    T_CHECK(ok);
    return T_PASS;
}

/* Edge problems: no layers, one choice everywhere, AUTO turning to exhaustive. */
static int test_edges(void)
{
    const struct srch_problem empty = {.n_layers = 0, .mem0 = 5, .lat0 = 6, .loss0 = 7};
    struct srch_front *f = NULL;
    T_CHECK(srch_front_compute(&empty, NULL, &f) == MQ_OK);
    bool ok =
        f->n == 1 && f->exact && f->pts[0].mem == 5 && f->pts[0].lat == 6 && f->pts[0].loss == 7;
    srch_front_free(f);
    T_CHECK(ok);
    T_CHECK(compute(&empty, SRCH_EXHAUSTIVE, 0, &f) == MQ_OK);
    ok = f->n == 1 && f->pts[0].loss == 7;
    srch_front_free(f);
    T_CHECK(ok);
    srch_front_free(NULL);

    /* AUTO: the DP needs its grid at 4 states, the space is small, so exhaustive runs */
    struct srch_layer L[MAX_L];
    struct srch_problem p;
    struct t_rng r = {4242};
    gen_problem(&r, 8, 4, true, GEN_CONTINUOUS, L, &p);
    struct srch_front *fa = NULL, *fd = NULL;
    T_CHECK(srch_front_compute(&p, &(struct srch_options){.max_states = 4}, &fa) == MQ_OK);
    T_CHECK(compute(&p, SRCH_DP, 4, &fd) == MQ_OK);
    ok = fa->exact && !strcmp(fa->method, "exhaustive") && !fd->exact &&
         !strcmp(fd->method, "dp-epsilon") && fd->max_states <= 4 && fd->n <= 4 + 2 &&
         fa->n > fd->n && fd->grid_cells >= 1 && fabs(fa->log2_plans - 16) < 1e-12;
    srch_front_free(fa);
    srch_front_free(fd);
    T_CHECK(ok);
    /* the exhaustive method refuses a space over its limit */
    struct capture c;
    char msg[256];
    capture_begin(&c);
    int r_big = srch_front_compute(
        &p, &(struct srch_options){.method = SRCH_EXHAUSTIVE, .max_plans = 1000}, &fa);
    capture_end(&c, msg, sizeof(msg));
    T_CHECK_MSG(r_big == MQ_ERANGE && count_lines(msg) == 1 && strstr(msg, "6.554e+04 plans"),
                "%d '%s'", r_big, msg);
    return T_PASS;
}

static int test_validate(void)
{
    static const struct {
        const char *what;
        int layer; /* which layer to break, its field */
        int field; /* 0 n, 1 fmt, 2 mem, 3 lat, 4 loss, 5 duplicate format */
        double value;
        const char *has;
    } bad[] = {
        {"n = 0", 1, 0, 0, "layer 'blk.1' has 0 candidate formats"},
        {"n too big", 1, 0, MQ_DTYPE_COUNT + 1, "candidate formats, want 1 to"},
        {"format -1", 0, 1, -1, "layer 'blk.0' candidate 1 has format number -1"},
        {"format past the end", 0, 1, MQ_DTYPE_COUNT, "not a format"},
        {"NaN memory", 2, 2, NAN, "layer 'blk.2' format 'q8_0': memory nan"},
        {"infinite latency", 1, 3, INFINITY, "latency inf"},
        {"negative loss", 0, 4, -1e-9, "loss -1e-09"},
        {"absurd memory", 2, 2, 1e30, "memory 1e+30"},
        {"duplicate format", 2, 5, 0, "layer 'blk.2' lists format 'f16' twice"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct srch_layer L[3];
        for (int l = 0; l < 3; l++) {
            L[l] = (struct srch_layer){.name = l == 0   ? "blk.0"
                                               : l == 1 ? "blk.1"
                                                        : "blk.2",
                                       .n = 2,
                                       .fmt = {MQ_DTYPE_F16, MQ_DTYPE_Q8_0},
                                       .mem = {2, 1},
                                       .lat = {2, 1},
                                       .loss = {0, 1}};
        }
        struct srch_layer *b = &L[bad[k].layer];
        switch (bad[k].field) {
        case 0: b->n = (int)bad[k].value; break;
        case 1: b->fmt[1] = (enum mq_dtype)(int)bad[k].value; break;
        case 2: b->mem[1] = bad[k].value; break;
        case 3: b->lat[1] = bad[k].value; break;
        case 4: b->loss[1] = bad[k].value; break;
        default: b->fmt[1] = MQ_DTYPE_F16; break;
        }
        const struct srch_problem p = {.n_layers = 3, .layers = L};
        char msg[512];
        struct capture c;
        struct srch_front *f = NULL;
        struct srch_extremes e;
        capture_begin(&c);
        int rc1 = srch_problem_validate(&p), rc2 = srch_front_compute(&p, NULL, &f),
            rc3 = srch_extremes_compute(&p, &e);
        capture_end(&c, msg, sizeof(msg));
        T_CHECK_MSG(rc1 == MQ_EINVAL && rc2 == MQ_EINVAL && rc3 == MQ_EINVAL && !f &&
                        count_lines(msg) == 3,
                    "%s: %d %d %d '%s'", bad[k].what, rc1, rc2, rc3, msg);
        T_CHECK_MSG(strstr(msg, bad[k].has), "%s: '%s' lacks '%s'", bad[k].what, msg, bad[k].has);
    }
    /* an unnamed layer reads as its index; bad bases and sizes */
    struct srch_layer L1 = {.n = 0};
    const struct srch_problem probs[] = {
        {.n_layers = 1, .layers = &L1},
        {.n_layers = -1},
        {.n_layers = SRCH_MAX_LAYERS + 1, .layers = &L1},
        {.n_layers = 3, .layers = NULL},
        {.n_layers = 0, .mem0 = -1},
        {.n_layers = 0, .lat0 = NAN},
        {.n_layers = 0, .loss0 = INFINITY},
    };
    static const char *const has[] = {"layer '#0'",     "-1 layers",      "65537 layers",
                                      "no layer table", "base memory -1", "base latency nan",
                                      "base loss inf"};
    for (size_t k = 0; k < sizeof(probs) / sizeof(probs[0]); k++) {
        char msg[512];
        struct capture c;
        capture_begin(&c);
        int rc = srch_problem_validate(&probs[k]);
        capture_end(&c, msg, sizeof(msg));
        T_CHECK_MSG(rc == MQ_EINVAL && count_lines(msg) == 1 && strstr(msg, has[k]),
                    "problem %zu: %d '%s'", k, rc, msg);
    }
    /* options */
    struct srch_front *f = NULL;
    struct capture c;
    char msg[512];
    capture_begin(&c);
    int r1 = srch_front_compute(&two, &(struct srch_options){.max_states = -1}, &f);
    int r2 = srch_front_compute(&two, &(struct srch_options){.max_plans = -5}, &f);
    int r3 = srch_front_compute(&two, &(struct srch_options){.method = (enum srch_method)7}, &f);
    int r4 = srch_front_compute(&two, &(struct srch_options){.max_plans = NAN}, &f);
    capture_end(&c, msg, sizeof(msg));
    T_CHECK_MSG(r1 == MQ_EINVAL && r2 == MQ_EINVAL && r3 == MQ_EINVAL && r4 == MQ_EINVAL && !f &&
                    count_lines(msg) == 4,
                "%d %d %d %d '%s'", r1, r2, r3, r4, msg);
    return T_PASS;
}

static int test_budget_parse(void)
{
    static const struct {
        const char *text;
        double bytes;
    } mem_ok[] = {
        {"8GB", 8e9},
        {"512MiB", 536870912.0},
        {"1.5GiB", 1610612736.0},
        {"1B", 1},
        {"100KB", 1e5},
        {"2KiB", 2048},
        {"0.5MB", 5e5},
        {".5GB", 5e8},
        {"2.GB", 2e9},
        {"1e3MB", 1e9},
        {"1024GiB", 1099511627776.0},
        {"1048576GiB", 1125899906842624.0},
        {"007MB", 7e6},
    };
    for (size_t k = 0; k < sizeof(mem_ok) / sizeof(mem_ok[0]); k++) {
        double v = -1;
        T_CHECK_MSG(srch_budget_parse_bytes(mem_ok[k].text, &v) == MQ_OK && v == mem_ok[k].bytes,
                    "'%s' gave %.17g", mem_ok[k].text, v);
    }
    static const struct {
        const char *text;
        double ns;
    } time_ok[] = {
        {"200ms", 2e8}, {"1.5s", 1.5e9},     {"750us", 7.5e5},
        {"1us", 1e3},   {"86400s", 86400e9}, {"0.001us", 1},
    };
    for (size_t k = 0; k < sizeof(time_ok) / sizeof(time_ok[0]); k++) {
        double v = -1;
        T_CHECK_MSG(srch_budget_parse_time(time_ok[k].text, &v) == MQ_OK && v == time_ok[k].ns,
                    "'%s' gave %.17g", time_ok[k].text, v);
    }
    static const struct {
        bool time;
        const char *text, *has;
    } bad[] = {
        {false, "8gb", "unknown unit 'gb'"},
        {false, "8gb", "did you mean 'GB'?"},
        {false, "8 GB", "spaces are not allowed"},
        {false, " 8GB", "spaces"},
        {false, "8GB ", "spaces"},
        {false, "-1GB", "not a positive number"},
        {false, "+1GB", "not a positive number"},
        {false, "1e400GB", "out of range"},
        {false, "0GB", "out of range"},
        {false, "0.1B", "out of range"},
        {false, "1025TB", "unknown unit 'TB'"},
        {false, "1048577GiB", "out of range"},
        {false, "8", "no unit"},
        {false, "", "empty"},
        {false, "GB", "not a positive number"},
        {false, "NaNGB", "not a positive number"},
        {false, "infGB", "not a positive number"},
        {false, "0x10GB", "unknown unit 'x10GB'"},
        {false, "8G", "did you mean 'GB' or 'GiB'?"},
        {false, "8kib", "did you mean 'KiB'?"},
        {false, "8Gb", "unknown unit"},
        {false, "1.2.3GB", "unknown unit '.3GB'"},
        {false, "8ms", "unknown unit 'ms'"},
        {true, "NaN ms", "spaces"},
        {true, "NaNms", "not a positive number"},
        {true, "200", "no unit"},
        {true, "200MS", "did you mean 'ms'?"},
        {true, "200 ms", "spaces"},
        {true, "-5ms", "not a positive number"},
        {true, "2days", "unknown unit 'days'"},
        {true, "86401s", "out of range"},
        {true, "0.0001us", "out of range"},
        {true, "1e400s", "out of range"},
        {true, "5\xc2\xb5s", "write 'us'"},
        {true, "5ns", "unknown unit 'ns'"},
        {true, "1h", "unknown unit 'h'"},
        {true, "8GB", "unknown unit 'GB'"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        double v = 42;
        char msg[512];
        struct capture c;
        capture_begin(&c);
        int rc = bad[k].time ? srch_budget_parse_time(bad[k].text, &v)
                             : srch_budget_parse_bytes(bad[k].text, &v);
        capture_end(&c, msg, sizeof(msg));
        T_CHECK_MSG(rc == MQ_EINVAL && v == 42 && count_lines(msg) == 1, "'%s': rc %d, '%s'",
                    bad[k].text, rc, msg);
        char quoted[128];
        snprintf(quoted, sizeof(quoted), "'%s'", bad[k].text);
        T_CHECK_MSG(strstr(msg, bad[k].has) && strstr(msg, quoted) &&
                        strstr(msg, bad[k].time ? "us, ms, s" : "KiB, MiB, GiB of 1024"),
                    "'%s': '%s' lacks '%s', the text or the units", bad[k].text, msg, bad[k].has);
    }
    double v;
    struct capture c;
    char msg[256];
    capture_begin(&c);
    int rc = srch_budget_parse_bytes(NULL, &v);
    capture_end(&c, msg, sizeof(msg));
    T_CHECK(rc == MQ_EINVAL && count_lines(msg) == 1);
    return T_PASS;
}

static int test_budget_format(void)
{
    static const struct {
        double v;
        bool binary, time;
        const char *want;
    } cases[] = {
        {4.213e9, false, false, "4.213 GB"}, {512e6, false, false, "512 MB"},
        {800, false, false, "800 B"},        {1536, true, false, "1.5 KiB"},
        {8e12, false, false, "8 TB"},        {8e15, false, false, "8000 TB"},
        {INFINITY, false, false, "inf"},     {180.2e6, false, true, "180.2 ms"},
        {750e3, false, true, "750 us"},      {1.5e9, false, true, "1.5 s"},
        {12, false, true, "12 ns"},          {INFINITY, false, true, "inf"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char buf[32];
        if (cases[k].time)
            srch_budget_format_time(cases[k].v, buf, sizeof(buf));
        else
            srch_budget_format_bytes(cases[k].v, cases[k].binary, buf, sizeof(buf));
        T_CHECK_MSG(!strcmp(buf, cases[k].want), "%g: '%s', want '%s'", cases[k].v, buf,
                    cases[k].want);
    }
    return T_PASS;
}

/* A loss bar (--max-kl): srch_front_fastest against brute force, and srch_front_nearest_loss's
 * points: within the budgets, on the latency/loss staircase, distinct, the fastest under the bar
 * first, then faster ones over the bar (each at least as fast as the staircase's fastest under
 * bar x 2^(j/3)) and slower ones under it, by turns. The front is built by hand: a staircase of
 * 40 points (latency i, loss 0.9^i), points it dominates in latency and loss at less memory
 * (kept off the staircase), and points over the memory budget. */
static int test_nearest_loss(void)
{
    enum { NS = 40, NP = 3 * NS };
    static struct srch_point pts[NP];
    int n = 0;
    for (int i = 0; i < NS; i++) {
        pts[n++] = (struct srch_point){.mem = 10, .lat = i, .loss = pow(0.9, i)};
        pts[n++] =
            (struct srch_point){.mem = 5, .lat = i + 0.5, .loss = pow(0.9, i) * 1.01}; /* off it */
        pts[n++] =
            (struct srch_point){.mem = 100, .lat = i * 0.5, .loss = pow(0.9, i + 3)}; /* too big */
    }
    struct srch_front f = {.n = n, .pts = pts};
    const double mem_b = 50, lat_b = SRCH_NO_BUDGET;
    static const double bars[] = {0.3, 0.9, 1.0, 0.0, 1e-9, 2.0, INFINITY, 0.05};
    for (size_t b = 0; b < sizeof(bars) / sizeof(bars[0]); b++) {
        double bar = bars[b];
        /* brute force: the fastest within the budgets under the bar */
        int want = -1;
        for (int i = 0; i < n; i++)
            if (pts[i].mem <= mem_b && pts[i].loss <= bar &&
                (want < 0 || pts[i].lat < pts[want].lat ||
                 (pts[i].lat == pts[want].lat && pts[i].mem < pts[want].mem)))
                want = i;
        int got = -2;
        int r = srch_front_fastest(&f, mem_b, lat_b, bar, &got);
        T_CHECK_MSG(want < 0 ? r == MQ_ERANGE : r == MQ_OK && got == want, "bar %g: %d, want %d",
                    bar, got, want);
        int idx[12], k;
        T_CHECK(srch_front_nearest_loss(&f, mem_b, lat_b, bar, 12, idx, &k) == MQ_OK && k == 12);
        /* the first: the fastest under the bar, or with none the lowest-loss staircase point */
        int first = want >= 0 ? want : 3 * (NS - 1);
        T_CHECK_MSG(idx[0] == first, "bar %g: first %d, want %d", bar, idx[0], first);
        double last_fast = pts[idx[0]].lat, last_slow = pts[idx[0]].lat;
        int j_fast = 0, j_slow = 0;
        for (int i = 0; i < k; i++) {
            const struct srch_point *pt = &pts[idx[i]];
            T_CHECK_MSG(idx[i] % 3 == 0, "bar %g: point %d is not on the staircase", bar, idx[i]);
            for (int j = 0; j < i; j++)
                T_CHECK(idx[j] != idx[i]);
            if (i == 0)
                continue;
            if (pt->lat < pts[idx[0]].lat) { /* faster than the first: over the bar */
                j_fast++;
                T_CHECK(pt->lat < last_fast && pt->loss > bar);
                double g = bar * pow(2.0, j_fast / 3.0);
                for (int s = 0; s < NS; s++) /* at least as fast as the fastest under bar x g */
                    if (pow(0.9, s) <= g) {
                        T_CHECK_MSG(pt->lat <= s,
                                    "bar %g: faster pick %d at %g, staircase under %g at %d", bar,
                                    j_fast, pt->lat, g, s);
                        break;
                    }
                last_fast = pt->lat;
            } else {
                j_slow++;
                T_CHECK(pt->lat > last_slow);
                last_slow = pt->lat;
            }
        }
        /* by turns while both sides last: the second and third picks are one of each */
        if (idx[0] != 0 && idx[0] != 3 * (NS - 1))
            T_CHECK((pts[idx[1]].lat < pts[idx[0]].lat) != (pts[idx[2]].lat < pts[idx[0]].lat));
        T_CHECK(j_fast + j_slow == k - 1);
    }
    /* the bar 0.3 on a dense staircase: the picks spread geometrically, not as neighbours */
    int idx[8], k;
    T_CHECK(srch_front_nearest_loss(&f, mem_b, lat_b, 0.3, 8, idx, &k) == MQ_OK && k == 8);
    /* 0.9^12 = 0.282 <= 0.3; 0.9^10 = 0.349 <= 0.3 x 2^(1/3); 0.9^14 = 0.229 <= 0.3 / 2^(1/3) */
    T_CHECK_MSG(pts[idx[0]].lat == 12 && pts[idx[1]].lat == 10 && pts[idx[2]].lat == 14, "%g %g %g",
                pts[idx[0]].lat, pts[idx[1]].lat, pts[idx[2]].lat);
    /* every staircase point once, then no more */
    int all[NP];
    T_CHECK(srch_front_nearest_loss(&f, mem_b, lat_b, 0.3, NP, all, &k) == MQ_OK && k == NS);
    /* nothing within the budgets; k = 0 */
    T_CHECK(srch_front_nearest_loss(&f, 1, lat_b, 0.3, 8, idx, &k) == MQ_OK && k == 0);
    T_CHECK(srch_front_fastest(&f, 1, lat_b, 0.3, idx) == MQ_ERANGE);
    T_CHECK(srch_front_nearest_loss(&f, mem_b, lat_b, 0.3, 0, idx, &k) == MQ_OK && k == 0);
    /* ties in latency go to less memory */
    struct srch_point tie[2] = {{.mem = 2, .lat = 1, .loss = 0.1},
                                {.mem = 1, .lat = 1, .loss = 0.2}};
    struct srch_front ft = {.n = 2, .pts = tie};
    int w;
    T_CHECK(srch_front_fastest(&ft, SRCH_NO_BUDGET, SRCH_NO_BUDGET, 0.5, &w) == MQ_OK && w == 1);
    T_CHECK(srch_front_fastest(&ft, SRCH_NO_BUDGET, SRCH_NO_BUDGET, 0.15, &w) == MQ_OK && w == 0);
    /* a NaN or negative bar, k < 0: one line, MQ_EINVAL */
    static const double bad[] = {NAN, -0.1};
    for (int b = 0; b < 3; b++) {
        struct capture c;
        char msg[256];
        capture_begin(&c);
        int r = b < 2 ? srch_front_nearest_loss(&f, mem_b, lat_b, bad[b], 8, idx, &k)
                      : srch_front_nearest_loss(&f, mem_b, lat_b, 0.1, -1, idx, &k);
        capture_end(&c, msg, sizeof(msg));
        T_CHECK_MSG(r == MQ_EINVAL && count_lines(msg) == 1, "case %d: %d, '%s'", b, r, msg);
    }
    struct capture c;
    char msg[256];
    capture_begin(&c);
    int r = srch_front_fastest(&f, mem_b, lat_b, NAN, idx);
    capture_end(&c, msg, sizeof(msg));
    T_CHECK(r == MQ_EINVAL && count_lines(msg) == 1);
    return T_PASS;
}

/* --max-kl's values: a number in nats with no unit, 0 allowed; everything else one line. */
static int test_budget_parse_kl(void)
{
    static const struct {
        const char *text;
        double kl;
    } ok[] = {{"0.01", 0.01}, {"0", 0},     {"1e-3", 1e-3},  {".05", 0.05},
              {"2.", 2},      {"100", 100}, {"1e-12", 1e-12}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        double v = -1;
        T_CHECK_MSG(srch_budget_parse_kl(ok[i].text, &v) == MQ_OK && v == ok[i].kl, "'%s' gave %g",
                    ok[i].text, v);
    }
    static const char *const bad[] = {"",       "-0.1",  "+0.1",    "nan",  "NaN",  "inf",
                                      "-inf",   "abc",   "0.1nats", "0.1 ", " 0.1", "1e",
                                      "0x1p-3", "1e400", "101",     "--1",  ".",    "e5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double v = 7;
        struct capture c;
        char msg[512];
        capture_begin(&c);
        int r = srch_budget_parse_kl(bad[i], &v);
        capture_end(&c, msg, sizeof(msg));
        T_CHECK_MSG(r == MQ_EINVAL && v == 7 && count_lines(msg) == 1 && strstr(msg, "KL bound"),
                    "'%s': %d, '%s'", bad[i], r, msg);
    }
    return T_PASS;
}

const struct mq_test search_tests[] = {
    {"search/refine_knapsack", test_refine_knapsack},
    {"search/dp_equals_exhaustive", test_dp_equals_exhaustive},
    {"search/front_is_pareto", test_front_is_pareto},
    {"search/epsilon_bound", test_epsilon_bound},
    {"search/refine", test_refine},
    {"search/big_default", test_big},
    {"search/best", test_best},
    {"search/budget_check", test_budget_check},
    {"search/budget_check_joint", test_budget_check_joint},
    {"search/nearest", test_nearest},
    {"search/extremes", test_extremes},
    {"search/edges", test_edges},
    {"search/validate", test_validate},
    {"search/budget_parse", test_budget_parse},
    {"search/budget_format", test_budget_format},
    {"search/nearest_loss", test_nearest_loss},
    {"search/budget_parse_kl", test_budget_parse_kl},
    {NULL, NULL},
};
