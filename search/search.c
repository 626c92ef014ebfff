/* search/search.c - the Pareto front of plans; the contract is in search.h.
 *
 * The decision: this DP, not an integer program. Measured by bench/search.c on this 2-core
 * Zen 4 VM (busy: load ~8), 200 layers x 4 formats (f16, bf16, q8_0, q4_0) shaped like a 7B
 * transformer, losses log-normal, seed 1, against GLPK 5.0's branch-and-cut with the
 * epsilon-constraint method (min loss subject to memory <= B and latency <= T):
 *   - DP at the default 8192 states: the whole front, 7782 points, in 0.45 s median wall
 *     time (0.23 s CPU) over 7 runs; epsilon bounds 2.3% and 2.2% of the memory and latency
 *     ranges. At 16384 states: 16292 points, 0.76 s wall (0.38 s CPU).
 *   - GLPK: exact, 53 ms median and 0.33 s worst per budget over a 5 x 5 grid of budgets
 *     (2.4 s for the 25). A front at the DP's resolution would take ~7800 solves, ~7 minutes.
 *   - Gap of the DP's best loss to GLPK's optimum at the same 25 budgets: 0.23% mean, 0.29%
 *     median, 0.60% worst. After srch_front_refine (local search and the budgeted knapsack
 *     below; 0.07 s median, 0.24 s worst): 0 at all 25 budgets. 25 of 25 budgets agree on
 *     feasibility.
 * The tuner needs the whole front - for the plots, for answering any budget without solving
 * again, for picking the points to re-measure on the target - and the DP gives it in one
 * pass well under a second, within a fraction of a percent of the optimum: less than the
 * noise of the loss measurements and the error of treating losses as additive, which the
 * end-to-end re-measurement of the front catches anyway. GLPK would win only at answering
 * one budget exactly; it stays in bench/search.c as the yardstick, not a dependency.
 *
 * How the DP works, per layer l with S states (partial plans, non-dominated, kept sorted by
 * (mem, lat, loss) and also as a permutation sorted by lat):
 *   1. Candidates: every state plus every choice of the layer (choices that another choice
 *      of the same layer dominates are dropped first: any plan using them is dominated).
 *      Adding a constant keeps each state list sorted (IEEE rounding is monotone), so an
 *      n-way merge gives the lexicographic order and a second one the order by latency,
 *      with no sort (a rounding tie that breaks the lexicographic merge is detected and
 *      falls back to qsort).
 *   2. Exact dominance: a sweep in lexicographic order with a Fenwick tree over latency
 *      ranks holding the least loss seen; a candidate is dropped when an earlier one has
 *      latency <= and loss <= (an earlier one also has memory <=, so it dominates or equals).
 *   3. Past max_states: the grid. Cells of width range/R on memory and latency over the
 *      candidates' range; the lowest-loss state of each cell; cells dominated by another
 *      cell (i' <= i, j' <= j, loss' <= loss) dropped, by the same sweep over cells. R starts
 *      a little above the last layer's and shrinks until the survivors fit. A dropped state has
 *      a survivor with loss <= and memory, latency each < one cell width more: the widths
 *      add up over the reductions into eps_mem and eps_lat.
 *   4. Each layer records each state's parent and choice; the front's plans are read back.
 * The smallest and the fastest plan (exact, per layer) join the final set, so a budget that
 * one of them meets always finds a point. Cost per layer: O(S n (n + log(S n))).
 *
 * srch_front_refine closes what the grid loses at one budget pair: a budgeted knapsack
 * solved directly (below), and steepest descent over moves of one layer or of two at once
 * (an upgrade paid for by a downgrade elsewhere) from it and from the front's best point.
 */
#include "search/search.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/status.h"
#include "search/budget.h"

#define EXH_CHUNK 65536 /* exhaustive: plans buffered between two filterings */
#define MAX_STATES_LIMIT (1 << 24)
#define EPS_SAFETY (1.0 + 1e-9) /* cell widths are computed in floating point */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* malloc(n * size) with the product checked; never returns a zero-size block. */
static void *alloc_n(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return malloc(n && size ? n * size : 1);
}

static int grow_n(void **p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return MQ_ENOMEM;
    void *q = realloc(*p, n && size ? n * size : 1);
    if (!q)
        return MQ_ENOMEM;
    *p = q;
    return MQ_OK;
}

static const char *layer_name(const struct srch_problem *p, int l, char *buf, size_t size)
{
    if (p->layers[l].name)
        return p->layers[l].name;
    snprintf(buf, size, "#%d", l);
    return buf;
}

/* ---- validation ------------------------------------------------------------------------- */

static bool cost_ok(double v)
{
    return isfinite(v) && v >= 0 && v <= SRCH_MAX_COST;
}

int srch_problem_validate(const struct srch_problem *p)
{
    if (!p)
        return mq_error(MQ_EINVAL, "search: no problem given");
    if (p->n_layers < 0 || p->n_layers > SRCH_MAX_LAYERS)
        return mq_error(MQ_EINVAL, "search: %d layers is out of range (0 to %d)", p->n_layers,
                        SRCH_MAX_LAYERS);
    if (p->n_layers > 0 && !p->layers)
        return mq_error(MQ_EINVAL, "search: %d layers but no layer table", p->n_layers);
    static const char *const base_names[3] = {"memory", "latency", "loss"};
    const double base[3] = {p->mem0, p->lat0, p->loss0};
    for (int k = 0; k < 3; k++)
        if (!cost_ok(base[k]))
            return mq_error(MQ_EINVAL, "search: base %s %g is not a finite value in 0..%g",
                            base_names[k], base[k], SRCH_MAX_COST);
    for (int l = 0; l < p->n_layers; l++) {
        const struct srch_layer *L = &p->layers[l];
        char nb[32];
        const char *name = layer_name(p, l, nb, sizeof(nb));
        if (L->n < 1 || L->n > MQ_DTYPE_COUNT)
            return mq_error(MQ_EINVAL, "layer '%s' has %d candidate formats, want 1 to %d", name,
                            L->n, MQ_DTYPE_COUNT);
        for (int c = 0; c < L->n; c++) {
            if ((int)L->fmt[c] < 0 || (int)L->fmt[c] >= MQ_DTYPE_COUNT)
                return mq_error(MQ_EINVAL,
                                "layer '%s' candidate %d has format number %d, not a format", name,
                                c, (int)L->fmt[c]);
            const char *fn = mq_dtype_name(L->fmt[c]);
            for (int d = 0; d < c; d++)
                if (L->fmt[d] == L->fmt[c])
                    return mq_error(MQ_EINVAL, "layer '%s' lists format '%s' twice", name, fn);
            const double v[3] = {L->mem[c], L->lat[c], L->loss[c]};
            static const char *const what[3] = {"memory", "latency", "loss"};
            for (int k = 0; k < 3; k++)
                if (!cost_ok(v[k]))
                    return mq_error(MQ_EINVAL,
                                    "layer '%s' format '%s': %s %g is not a finite value in 0..%g",
                                    name, fn, what[k], v[k], SRCH_MAX_COST);
        }
    }
    return MQ_OK;
}

void srch_plan_eval(const struct srch_problem *p, const uint8_t *choice, double *mem, double *lat,
                    double *loss)
{
    double m = p->mem0, t = p->lat0, q = p->loss0;
    for (int l = 0; l < p->n_layers; l++) {
        const struct srch_layer *L = &p->layers[l];
        m += L->mem[choice[l]];
        t += L->lat[choice[l]];
        q += L->loss[choice[l]];
    }
    *mem = m;
    *lat = t;
    *loss = q;
}

/* ---- non-dominated filtering of plain items -------------------------------------------- */

/* An objective vector and where its plan comes from: >= 0 an index (of a plan in the
 * exhaustive enumeration, of a final DP state), SRC_SMALLEST or SRC_FASTEST an extreme. */
struct item {
    double mem, lat, loss;
    int64_t src;
};
#define SRC_SMALLEST (-2)
#define SRC_FASTEST (-1)

static int lex3(double a0, double a1, double a2, double b0, double b1, double b2)
{
    if (a0 != b0)
        return a0 < b0 ? -1 : 1;
    if (a1 != b1)
        return a1 < b1 ? -1 : 1;
    if (a2 != b2)
        return a2 < b2 ? -1 : 1;
    return 0;
}

static int item_cmp(const void *pa, const void *pb)
{
    const struct item *a = pa, *b = pb;
    int c = lex3(a->mem, a->lat, a->loss, b->mem, b->lat, b->loss);
    if (c)
        return c;
    return (a->src > b->src) - (a->src < b->src);
}

struct lat_key {
    double lat;
    uint32_t i;
};

static int lat_key_cmp(const void *pa, const void *pb)
{
    const struct lat_key *a = pa, *b = pb;
    if (a->lat != b->lat)
        return a->lat < b->lat ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* Fenwick tree of prefix minima over ranks 0..n-1, stored 1-based in t[1..n]. */
static void fw_reset(double *t, size_t n)
{
    for (size_t i = 0; i <= n; i++)
        t[i] = INFINITY;
}

static double fw_min(const double *t, size_t r) /* min over ranks 0..r */
{
    double m = INFINITY;
    for (size_t i = r + 1; i > 0; i -= i & (~i + 1))
        if (t[i] < m)
            m = t[i];
    return m;
}

static void fw_put(double *t, size_t n, size_t r, double v)
{
    for (size_t i = r + 1; i <= n; i += i & (~i + 1))
        if (v < t[i])
            t[i] = v;
}

/* Sorts it[0..*n) by (mem, lat, loss, src) and keeps the non-dominated items, one per
 * distinct vector (the first in that order), in that order. */
static int items_filter(struct item *it, size_t *n)
{
    size_t m = *n;
    if (m <= 1)
        return MQ_OK;
    qsort(it, m, sizeof(*it), item_cmp);
    int rc = MQ_OK;
    struct lat_key *lk = alloc_n(m, sizeof(*lk));
    uint32_t *rank = alloc_n(m, sizeof(*rank));
    double *fw = alloc_n(m + 1, sizeof(*fw));
    if (!lk || !rank || !fw || m > UINT32_MAX) {
        rc = mq_error(MQ_ENOMEM, "search: cannot filter %zu plans", m);
        goto done;
    }
    for (size_t i = 0; i < m; i++)
        lk[i] = (struct lat_key){it[i].lat, (uint32_t)i};
    qsort(lk, m, sizeof(*lk), lat_key_cmp);
    for (size_t k = 0; k < m; k++)
        rank[lk[k].i] = k > 0 && lk[k].lat == lk[k - 1].lat ? rank[lk[k - 1].i] : (uint32_t)k;
    fw_reset(fw, m);
    size_t out = 0;
    for (size_t i = 0; i < m; i++) {
        if (fw_min(fw, rank[i]) <= it[i].loss)
            continue; /* an earlier item has mem <=, lat <= and loss <= */
        fw_put(fw, m, rank[i], it[i].loss);
        it[out++] = it[i];
    }
    *n = out;
done:
    free(lk);
    free(rank);
    free(fw);
    return rc;
}

/* ---- fronts ----------------------------------------------------------------------------- */

static struct srch_front *front_alloc(size_t n, int n_layers)
{
    struct srch_front *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->n_layers = n_layers;
    f->pts = alloc_n(n, sizeof(*f->pts));
    f->choices =
        n_layers > 0 && n > SIZE_MAX / (size_t)n_layers ? NULL : alloc_n(n * (size_t)n_layers, 1);
    if (!f->pts || !f->choices || n > INT32_MAX) {
        srch_front_free(f);
        return NULL;
    }
    f->n = (int)n;
    for (size_t i = 0; i < n; i++)
        f->pts[i].choice = f->choices + i * (size_t)n_layers;
    return f;
}

void srch_front_free(struct srch_front *f)
{
    if (!f)
        return;
    free(f->pts);
    free(f->choices);
    free(f);
}

int srch_front_dup(const struct srch_front *f, struct srch_front **out)
{
    struct srch_front *g = front_alloc((size_t)f->n, f->n_layers);
    if (!g)
        return mq_error(MQ_ENOMEM, "search: cannot copy a front of %d points", f->n);
    struct srch_point *pts = g->pts;
    uint8_t *choices = g->choices;
    *g = *f;
    g->pts = pts, g->choices = choices;
    memcpy(g->choices, f->choices, (size_t)f->n * (size_t)f->n_layers);
    for (int i = 0; i < f->n; i++) {
        g->pts[i].mem = f->pts[i].mem, g->pts[i].lat = f->pts[i].lat,
        g->pts[i].loss = f->pts[i].loss;
        g->pts[i].choice = g->choices + (size_t)i * (size_t)f->n_layers;
    }
    *out = g;
    return MQ_OK;
}

static double log2_space(const struct srch_problem *p)
{
    double s = 0;
    for (int l = 0; l < p->n_layers; l++)
        s += log2((double)p->layers[l].n);
    return s;
}

/* Per layer, the choice that is least in (mem, lat, loss) - or (lat, mem, loss) when
 * by_lat - the first of equals. */
static void extreme_plan(const struct srch_problem *p, bool by_lat, uint8_t *choice)
{
    for (int l = 0; l < p->n_layers; l++) {
        const struct srch_layer *L = &p->layers[l];
        int best = 0;
        for (int c = 1; c < L->n; c++) {
            int cmp = by_lat ? lex3(L->lat[c], L->mem[c], L->loss[c], L->lat[best], L->mem[best],
                                    L->loss[best])
                             : lex3(L->mem[c], L->lat[c], L->loss[c], L->mem[best], L->lat[best],
                                    L->loss[best]);
            if (cmp < 0)
                best = c;
        }
        choice[l] = (uint8_t)best;
    }
}

/* ---- exhaustive enumeration ------------------------------------------------------------- */

static void plan_decode(const struct srch_problem *p, uint64_t idx, uint8_t *choice)
{
    for (int l = p->n_layers - 1; l >= 0; l--) {
        choice[l] = (uint8_t)(idx % (uint64_t)p->layers[l].n);
        idx /= (uint64_t)p->layers[l].n;
    }
}

static int front_exhaustive(const struct srch_problem *p, double max_plans, struct srch_front **out)
{
    const int N = p->n_layers;
    double space = exp2(log2_space(p));
    if (space > max_plans * (1 + 1e-12))
        return mq_error(MQ_ERANGE,
                        "search: exhaustive enumeration of %.4g plans is over the limit of %.4g",
                        space, max_plans);
    int rc = MQ_OK;
    int *d = calloc((size_t)N + 1, sizeof(*d));
    double *pm = alloc_n((size_t)N + 1, sizeof(*pm)), *pt = alloc_n((size_t)N + 1, sizeof(*pt)),
           *pq = alloc_n((size_t)N + 1, sizeof(*pq));
    size_t cap = 2 * EXH_CHUNK, n = 0;
    struct item *it = alloc_n(cap, sizeof(*it));
    if (!d || !pm || !pt || !pq || !it) {
        rc = mq_error(MQ_ENOMEM, "search: out of memory enumerating plans");
        goto done;
    }
    pm[0] = p->mem0, pt[0] = p->lat0, pq[0] = p->loss0;
    for (int l = 0; l < N; l++) {
        pm[l + 1] = pm[l] + p->layers[l].mem[0];
        pt[l + 1] = pt[l] + p->layers[l].lat[0];
        pq[l + 1] = pq[l] + p->layers[l].loss[0];
    }
    /* Odometer over the plans, last layer fastest, so that the index is the mixed-radix
     * number plan_decode reads; partial sums are kept per depth, in layer order. */
    for (int64_t idx = 0;; idx++) {
        it[n++] = (struct item){pm[N], pt[N], pq[N], idx};
        if (n == cap) {
            if ((rc = items_filter(it, &n)) < 0)
                goto done;
            if (n > cap - EXH_CHUNK) {
                cap *= 2;
                if (grow_n((void **)&it, cap, sizeof(*it)) < 0) {
                    rc = mq_error(MQ_ENOMEM, "search: out of memory enumerating plans");
                    goto done;
                }
            }
        }
        int l = N - 1;
        while (l >= 0 && d[l] + 1 >= p->layers[l].n)
            d[l--] = 0;
        if (l < 0)
            break;
        d[l]++;
        for (int k = l; k < N; k++) {
            pm[k + 1] = pm[k] + p->layers[k].mem[d[k]];
            pt[k + 1] = pt[k] + p->layers[k].lat[d[k]];
            pq[k + 1] = pq[k] + p->layers[k].loss[d[k]];
        }
    }
    if ((rc = items_filter(it, &n)) < 0)
        goto done;
    struct srch_front *f = front_alloc(n, N);
    if (!f) {
        rc = mq_error(MQ_ENOMEM, "search: cannot allocate a front of %zu points", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        f->pts[i].mem = it[i].mem;
        f->pts[i].lat = it[i].lat;
        f->pts[i].loss = it[i].loss;
        plan_decode(p, (uint64_t)it[i].src, f->pts[i].choice);
    }
    snprintf(f->method, sizeof(f->method), "exhaustive");
    f->exact = true;
    *out = f;
done:
    free(d);
    free(pm);
    free(pt);
    free(pq);
    free(it);
    return rc;
}

/* ---- the dynamic program ---------------------------------------------------------------- */

/* Candidate buffers, indexed by position in lexicographic order. */
struct dp_cand {
    size_t cap;
    double *m, *t, *q;
    uint32_t *par;  /* the state it extends */
    uint8_t *ch;    /* effective choice index */
    uint32_t *pos;  /* [c * S + s] -> position */
    uint32_t *lat;  /* positions in latency order */
    uint32_t *rank; /* [position] latency rank */
    uint8_t *keep;  /* [position] */
    uint32_t *klat; /* kept positions in latency order */
    uint32_t *newi; /* [position] index among the new states */
    double *fw;     /* [cap + 1] */
};

struct dp_grid {
    int R, R_max;     /* cells per axis: the last used, the most */
    uint32_t *count;  /* [R_max + 1] bucket starts */
    uint32_t *bucket; /* [cap] positions bucketed by memory cell, latency order inside */
    int *ci;          /* [cap] memory cell of klat[k] */
    int *cj;          /* [cap] latency cell of position p */
    double *fw;       /* [R_max + 1] */
};

struct dp_sort_rec {
    double m, t, q;
    uint32_t par;
    uint8_t ch;
};

static int dp_sort_rec_cmp(const void *pa, const void *pb)
{
    const struct dp_sort_rec *a = pa, *b = pb;
    int c = lex3(a->m, a->t, a->q, b->m, b->t, b->q);
    if (c)
        return c;
    if (a->ch != b->ch)
        return a->ch < b->ch ? -1 : 1;
    return (a->par > b->par) - (a->par < b->par);
}

static void dp_cand_free(struct dp_cand *c)
{
    free(c->m), free(c->t), free(c->q), free(c->par), free(c->ch), free(c->pos), free(c->lat);
    free(c->rank), free(c->keep), free(c->klat), free(c->newi), free(c->fw);
}

static int dp_cand_reserve(struct dp_cand *c, size_t n)
{
    if (n <= c->cap)
        return MQ_OK;
    size_t cap = c->cap ? c->cap : 1024;
    while (cap < n)
        cap *= 2;
    if (grow_n((void **)&c->m, cap, sizeof(double)) < 0 ||
        grow_n((void **)&c->t, cap, sizeof(double)) < 0 ||
        grow_n((void **)&c->q, cap, sizeof(double)) < 0 ||
        grow_n((void **)&c->par, cap, sizeof(uint32_t)) < 0 ||
        grow_n((void **)&c->ch, cap, 1) < 0 ||
        grow_n((void **)&c->pos, cap, sizeof(uint32_t)) < 0 ||
        grow_n((void **)&c->lat, cap, sizeof(uint32_t)) < 0 ||
        grow_n((void **)&c->rank, cap, sizeof(uint32_t)) < 0 ||
        grow_n((void **)&c->keep, cap, 1) < 0 ||
        grow_n((void **)&c->klat, cap, sizeof(uint32_t)) < 0 ||
        grow_n((void **)&c->newi, cap, sizeof(uint32_t)) < 0 ||
        grow_n((void **)&c->fw, cap + 1, sizeof(double)) < 0)
        return mq_error(MQ_ENOMEM, "search: cannot hold %zu partial plans", n);
    c->cap = cap;
    return MQ_OK;
}

/* The choices of a layer that no other choice of it dominates (the first of equals). */
static int effective_choices(const struct srch_layer *L, uint8_t *eff)
{
    int n = 0;
    for (int c = 0; c < L->n; c++) {
        bool drop = false;
        for (int o = 0; o < L->n && !drop; o++) {
            if (o == c || L->mem[o] > L->mem[c] || L->lat[o] > L->lat[c] || L->loss[o] > L->loss[c])
                continue;
            bool equal =
                L->mem[o] == L->mem[c] && L->lat[o] == L->lat[c] && L->loss[o] == L->loss[c];
            drop = !equal || o < c;
        }
        if (!drop)
            eff[n++] = (uint8_t)c;
    }
    return n;
}

/* Step 1: candidates in lexicographic order (cand->m..ch, pos) and latency order (lat,
 * rank). */
static int dp_merge(const double *sm, const double *st, const double *sq, const uint32_t *lord,
                    uint32_t S, const struct srch_layer *L, const uint8_t *eff, int n,
                    struct dp_cand *C)
{
    uint32_t hd[MQ_DTYPE_COUNT];
    double hm[MQ_DTYPE_COUNT], ht[MQ_DTYPE_COUNT], hq[MQ_DTYPE_COUNT];
    const size_t M = (size_t)S * (size_t)n;
    bool sorted = true;
    for (int c = 0; c < n; c++) {
        hd[c] = 0;
        hm[c] = sm[0] + L->mem[eff[c]], ht[c] = st[0] + L->lat[eff[c]],
        hq[c] = sq[0] + L->loss[eff[c]];
    }
    /* A list that ran out gets memory +inf (costs are finite: srch_problem_validate); the
     * scan compares memory alone unless two heads tie on it. */
    for (size_t p = 0; p < M; p++) {
        int b = 0;
        for (int c = 1; c < n; c++)
            if (hm[c] < hm[b] || (hm[c] == hm[b] && lex3(hm[c], ht[c], hq[c], hm[b], ht[b], hq[b]) < 0))
                b = c;
        C->m[p] = hm[b], C->t[p] = ht[b], C->q[p] = hq[b];
        C->par[p] = hd[b];
        C->ch[p] = (uint8_t)b;
        if (p > 0 && lex3(C->m[p - 1], C->t[p - 1], C->q[p - 1], C->m[p], C->t[p], C->q[p]) > 0)
            sorted = false;
        uint32_t s = ++hd[b];
        if (s < S) {
            hm[b] = sm[s] + L->mem[eff[b]], ht[b] = st[s] + L->lat[eff[b]],
            hq[b] = sq[s] + L->loss[eff[b]];
        } else {
            hm[b] = INFINITY;
        }
    }
    if (!sorted) {
        /* A rounding tie in memory or latency reordered the later keys within a list: sort
         * for real (the sweep needs the exact lexicographic order). */
        struct dp_sort_rec *r = alloc_n(M, sizeof(*r));
        if (!r)
            return mq_error(MQ_ENOMEM, "search: cannot sort %zu partial plans", M);
        for (size_t p = 0; p < M; p++)
            r[p] = (struct dp_sort_rec){C->m[p], C->t[p], C->q[p], C->par[p], C->ch[p]};
        qsort(r, M, sizeof(*r), dp_sort_rec_cmp);
        for (size_t p = 0; p < M; p++)
            C->m[p] = r[p].m, C->t[p] = r[p].t, C->q[p] = r[p].q, C->par[p] = r[p].par,
            C->ch[p] = r[p].ch;
        free(r);
    }
    for (size_t p = 0; p < M; p++)
        C->pos[(size_t)C->ch[p] * S + C->par[p]] = (uint32_t)p;
    /* latency order: each list, the states in latency order plus a constant, is sorted */
    for (int c = 0; c < n; c++) {
        hd[c] = 0;
        ht[c] = st[lord[0]] + L->lat[eff[c]];
    }
    for (size_t k = 0; k < M; k++) {
        int b = 0;
        for (int c = 1; c < n; c++)
            if (ht[c] < ht[b])
                b = c;
        C->lat[k] = C->pos[(size_t)b * S + lord[hd[b]]];
        uint32_t s = ++hd[b];
        ht[b] = s < S ? st[lord[s]] + L->lat[eff[b]] : INFINITY;
    }
    for (size_t k = 0; k < M; k++)
        C->rank[C->lat[k]] =
            k > 0 && C->t[C->lat[k]] == C->t[C->lat[k - 1]] ? C->rank[C->lat[k - 1]] : (uint32_t)k;
    return MQ_OK;
}

/* Step 2: exact dominance. Returns the number kept. */
static size_t dp_sweep(struct dp_cand *C, size_t M)
{
    fw_reset(C->fw, M);
    size_t kept = 0;
    for (size_t p = 0; p < M; p++) {
        if (fw_min(C->fw, C->rank[p]) <= C->q[p]) {
            C->keep[p] = 0;
            continue;
        }
        fw_put(C->fw, M, C->rank[p], C->q[p]);
        C->keep[p] = 1;
        kept++;
    }
    return kept;
}

/* Step 3: the grid, on the kept candidates; leaves at most `bound` kept. Adds the cell
 * widths to *eps_m, *eps_t. */
static size_t dp_grid_reduce(struct dp_cand *C, size_t M, size_t kept, size_t bound,
                             struct dp_grid *G, double *eps_m, double *eps_t)
{
    size_t K = 0;
    for (size_t k = 0; k < M; k++)
        if (C->keep[C->lat[k]])
            C->klat[K++] = C->lat[k];
    MQ_ASSERT(K == kept);
    double mlo = INFINITY, mhi = -INFINITY, tlo = INFINITY, thi = -INFINITY;
    for (size_t k = 0; k < K; k++) {
        uint32_t p = C->klat[k];
        mlo = fmin(mlo, C->m[p]), mhi = fmax(mhi, C->m[p]);
        tlo = fmin(tlo, C->t[p]), thi = fmax(thi, C->t[p]);
    }
    /* The exact set usually outgrows the bound by a few percent a layer: start from the last
     * layer's R, a little finer (the ranges grow), and aim each retry at the number of
     * merges still needed, merges growing with the cell area. */
    double grown = (double)G->R * 1.03 + 1;
    int R = grown > G->R_max ? G->R_max : (int)grown;
    for (;;) {
        double sm = mhi > mlo ? (double)R / (mhi - mlo) : 0,
               st = thi > tlo ? (double)R / (thi - tlo) : 0;
        /* bucket by memory cell, keeping latency order inside each bucket */
        memset(G->count, 0, ((size_t)R + 1) * sizeof(*G->count));
        for (size_t k = 0; k < K; k++) {
            uint32_t p = C->klat[k];
            double x = (C->m[p] - mlo) * sm, y = (C->t[p] - tlo) * st;
            int i = x >= R ? R - 1 : (int)x;
            G->cj[p] = y >= R ? R - 1 : (int)y;
            G->ci[k] = i;
            G->count[i + 1]++;
        }
        for (int i = 0; i < R; i++)
            G->count[i + 1] += G->count[i];
        for (size_t k = 0; k < K; k++)
            G->bucket[G->count[G->ci[k]]++] = C->klat[k];
        /* count[i] now holds the end of bucket i; its start is count[i-1] (0 for i = 0) */
        fw_reset(G->fw, (size_t)R);
        size_t survivors = 0;
        for (int i = 0; i < R; i++) {
            uint32_t a = i ? G->count[i - 1] : 0, e = G->count[i];
            while (a < e) {
                int j = G->cj[G->bucket[a]];
                uint32_t best = G->bucket[a], b = a + 1;
                for (; b < e && G->cj[G->bucket[b]] == j; b++) {
                    uint32_t p = G->bucket[b];
                    if (C->q[p] < C->q[best] || (C->q[p] == C->q[best] && p < best))
                        best = p;
                }
                bool live = fw_min(G->fw, (size_t)j) > C->q[best];
                if (live) {
                    fw_put(G->fw, (size_t)R, (size_t)j, C->q[best]);
                    survivors++;
                }
                for (uint32_t k = a; k < b; k++)
                    C->keep[G->bucket[k]] = live && G->bucket[k] == best ? 2 : 1;
                a = b;
            }
        }
        if (survivors <= bound || R == 1) {
            for (size_t k = 0; k < K; k++)
                C->keep[C->klat[k]] = C->keep[C->klat[k]] == 2;
            *eps_m += (mhi - mlo) / R * EPS_SAFETY;
            *eps_t += (thi - tlo) / R * EPS_SAFETY;
            G->R = R;
            return survivors;
        }
        double removed = (double)(K - survivors), needed = (double)(K - bound);
        double shrink = removed > 0 ? sqrt(removed / needed) * 0.98 : 0.7;
        int next = (int)((double)R * shrink);
        R = next >= R ? R - 1 : next < 1 ? 1 : next;
    }
}

struct dp_layer {
    uint32_t n;
    uint32_t *par;
    uint8_t *ch; /* index into layers[l].fmt */
};

static int front_dp(const struct srch_problem *p, int max_states, struct srch_front **out)
{
    const int N = p->n_layers;
    const size_t bound = (size_t)max_states;
    int rc = MQ_OK;
    struct dp_cand C = {0};
    struct dp_grid G = {.R = max_states, .R_max = max_states < 65536 ? max_states : 65536};
    struct dp_layer *rec = calloc((size_t)N + 1, sizeof(*rec));
    double *sm = alloc_n(1, sizeof(double)), *st = alloc_n(1, sizeof(double)),
           *sq = alloc_n(1, sizeof(double));
    uint32_t *lord = alloc_n(1, sizeof(uint32_t));
    struct item *it = NULL;
    uint8_t *ext = NULL;
    double eps_m = 0, eps_t = 0;
    int n_red = 0, min_R = 0;
    size_t S = 1, S_max = 1;
    G.count = alloc_n((size_t)G.R_max + 1, sizeof(*G.count));
    G.fw = alloc_n((size_t)G.R_max + 1, sizeof(*G.fw));
    if (!rec || !sm || !st || !sq || !lord || !G.count || !G.fw) {
        rc = mq_error(MQ_ENOMEM, "search: out of memory");
        goto done;
    }
    sm[0] = p->mem0, st[0] = p->lat0, sq[0] = p->loss0, lord[0] = 0;
    for (int l = 0; l < N; l++) {
        const struct srch_layer *L = &p->layers[l];
        uint8_t eff[MQ_DTYPE_COUNT];
        int n = effective_choices(L, eff);
        size_t M = S * (size_t)n;
        if ((rc = dp_cand_reserve(&C, M)) < 0 ||
            (rc = grow_n((void **)&G.bucket, C.cap, sizeof(uint32_t))) < 0 ||
            (rc = grow_n((void **)&G.ci, C.cap, sizeof(int))) < 0 ||
            (rc = grow_n((void **)&G.cj, C.cap, sizeof(int))) < 0) {
            rc = mq_error(MQ_ENOMEM, "search: cannot hold %zu partial plans", M);
            goto done;
        }
        if ((rc = dp_merge(sm, st, sq, lord, (uint32_t)S, L, eff, n, &C)) < 0)
            goto done;
        size_t kept = dp_sweep(&C, M);
        if (kept > bound) {
            kept = dp_grid_reduce(&C, M, kept, bound, &G, &eps_m, &eps_t);
            n_red++;
            if (min_R == 0 || G.R < min_R)
                min_R = G.R;
        }
        /* the new states, in lexicographic order, and their latency order */
        rec[l].n = (uint32_t)kept;
        rec[l].par = alloc_n(kept, sizeof(uint32_t));
        rec[l].ch = alloc_n(kept, 1);
        double *nm = alloc_n(kept, sizeof(double)), *nt = alloc_n(kept, sizeof(double)),
               *nq = alloc_n(kept, sizeof(double));
        uint32_t *nl = alloc_n(kept, sizeof(uint32_t));
        if (!rec[l].par || !rec[l].ch || !nm || !nt || !nq || !nl) {
            free(nm), free(nt), free(nq), free(nl);
            rc = mq_error(MQ_ENOMEM, "search: cannot hold %zu partial plans", kept);
            goto done;
        }
        size_t s = 0;
        for (size_t q = 0; q < M; q++) {
            if (!C.keep[q])
                continue;
            C.newi[q] = (uint32_t)s;
            nm[s] = C.m[q], nt[s] = C.t[q], nq[s] = C.q[q];
            rec[l].par[s] = C.par[q];
            rec[l].ch[s] = eff[C.ch[q]];
            s++;
        }
        size_t k2 = 0;
        for (size_t k = 0; k < M; k++)
            if (C.keep[C.lat[k]])
                nl[k2++] = C.newi[C.lat[k]];
        free(sm), free(st), free(sq), free(lord);
        sm = nm, st = nt, sq = nq, lord = nl;
        S = kept;
        if (S > S_max)
            S_max = S;
    }
    /* the final set plus the two extreme plans, filtered once more */
    it = alloc_n(S + 2, sizeof(*it));
    ext = alloc_n(2 * (size_t)N, 1);
    if (!it || !ext) {
        rc = mq_error(MQ_ENOMEM, "search: out of memory");
        goto done;
    }
    for (size_t s = 0; s < S; s++)
        it[s] = (struct item){sm[s], st[s], sq[s], (int64_t)s};
    extreme_plan(p, false, ext);
    extreme_plan(p, true, ext + N);
    struct item e0 = {.src = SRC_SMALLEST}, e1 = {.src = SRC_FASTEST};
    srch_plan_eval(p, ext, &e0.mem, &e0.lat, &e0.loss);
    srch_plan_eval(p, ext + N, &e1.mem, &e1.lat, &e1.loss);
    size_t n_it = S;
    it[n_it++] = e0;
    it[n_it++] = e1;
    if ((rc = items_filter(it, &n_it)) < 0)
        goto done;
    struct srch_front *f = front_alloc(n_it, N);
    if (!f) {
        rc = mq_error(MQ_ENOMEM, "search: cannot allocate a front of %zu points", n_it);
        goto done;
    }
    for (size_t i = 0; i < n_it; i++) {
        struct srch_point *pt = &f->pts[i];
        pt->mem = it[i].mem, pt->lat = it[i].lat, pt->loss = it[i].loss;
        if (it[i].src < 0) {
            memcpy(pt->choice, it[i].src == SRC_SMALLEST ? ext : ext + N, (size_t)N);
            continue;
        }
        uint32_t s = (uint32_t)it[i].src;
        for (int l = N - 1; l >= 0; l--) {
            pt->choice[l] = rec[l].ch[s];
            s = rec[l].par[s];
        }
    }
    f->exact = n_red == 0;
    snprintf(f->method, sizeof(f->method), "%s", f->exact ? "dp" : "dp-epsilon");
    f->eps_mem = eps_m;
    f->eps_lat = eps_t;
    f->grid_cells = min_R;
    f->n_reductions = n_red;
    f->max_states = (int)S_max;
    *out = f;
done:
    for (int l = 0; l < N && rec; l++)
        free(rec[l].par), free(rec[l].ch);
    free(rec);
    free(sm), free(st), free(sq), free(lord);
    free(it);
    free(ext);
    dp_cand_free(&C);
    free(G.count), free(G.bucket), free(G.ci), free(G.cj), free(G.fw);
    return rc;
}

int srch_front_compute(const struct srch_problem *p, const struct srch_options *opt,
                       struct srch_front **out)
{
    double t0 = now_s();
    struct srch_options o = opt ? *opt : (struct srch_options){0};
    int rc = srch_problem_validate(p);
    if (rc < 0)
        return rc;
    if (o.max_states == 0)
        o.max_states = SRCH_DEFAULT_MAX_STATES;
    if (o.max_plans == 0)
        o.max_plans = SRCH_DEFAULT_MAX_PLANS;
    if (o.max_states < 1 || o.max_states > MAX_STATES_LIMIT)
        return mq_error(MQ_EINVAL, "search: max_states %d is out of range (1 to %d)", o.max_states,
                        MAX_STATES_LIMIT);
    if (!(o.max_plans >= 1 && o.max_plans <= 1e12))
        return mq_error(MQ_EINVAL, "search: max_plans %g is out of range (1 to 1e12)", o.max_plans);
    if (o.method != SRCH_AUTO && o.method != SRCH_EXHAUSTIVE && o.method != SRCH_DP)
        return mq_error(MQ_EINVAL, "search: unknown method %d", (int)o.method);
    struct srch_front *f = NULL;
    if (o.method == SRCH_EXHAUSTIVE)
        rc = front_exhaustive(p, o.max_plans, &f);
    else
        rc = front_dp(p, o.max_states, &f);
    if (rc == MQ_OK && o.method == SRCH_AUTO && !f->exact && log2_space(p) <= log2(o.max_plans)) {
        srch_front_free(f);
        f = NULL;
        rc = front_exhaustive(p, o.max_plans, &f);
    }
    if (rc < 0)
        return rc;
    f->log2_plans = log2_space(p);
    f->seconds = now_s() - t0;
    *out = f;
    return MQ_OK;
}

/* ---- queries ---------------------------------------------------------------------------- */

static bool within(const struct srch_point *pt, double mem_budget, double lat_budget)
{
    return pt->mem <= mem_budget && pt->lat <= lat_budget;
}

int srch_front_best(const struct srch_front *f, double mem_budget, double lat_budget, int *idx)
{
    if (isnan(mem_budget) || isnan(lat_budget))
        return mq_error(MQ_EINVAL, "search: a budget is NaN");
    int best = -1;
    for (int i = 0; i < f->n; i++) {
        const struct srch_point *pt = &f->pts[i];
        if (within(pt, mem_budget, lat_budget) && (best < 0 || pt->loss < f->pts[best].loss))
            best = i; /* points are in memory order: the first of equal losses has least memory */
    }
    if (best < 0)
        return MQ_ERANGE;
    *idx = best;
    return MQ_OK;
}

/* One step of the local search: the move (one or two layers) that lowers the loss most
 * while the totals stay within the budgets. False when there is none. */
static bool refine_step(const struct srch_problem *p, const uint8_t *x, double M, double T,
                        double B_m, double B_t, int *la, int *ca, int *lb, int *cb)
{
    double best = 0;
    bool found = false;
    for (int a = 0; a < p->n_layers; a++) {
        const struct srch_layer *A = &p->layers[a];
        int xa = x[a];
        for (int c = 0; c < A->n; c++) {
            double dq = A->loss[c] - A->loss[xa];
            if (c == xa || dq >= 0)
                continue; /* every improving move has an upgrade (dq < 0) in it: start there */
            double dm = A->mem[c] - A->mem[xa], dt = A->lat[c] - A->lat[xa];
            if (M + dm <= B_m && T + dt <= B_t && dq < best) {
                best = dq, found = true;
                *la = a, *ca = c, *lb = -1, *cb = -1;
            }
            /* pair the upgrade with a downgrade elsewhere that pays for it */
            double room_m = B_m - (M + dm), room_t = B_t - (T + dt);
            for (int b = 0; b < p->n_layers; b++) {
                if (b == a)
                    continue;
                const struct srch_layer *Bl = &p->layers[b];
                int xb = x[b];
                for (int d = 0; d < Bl->n; d++) {
                    if (d == xb)
                        continue;
                    double q2 = dq + Bl->loss[d] - Bl->loss[xb];
                    if (q2 < best && Bl->mem[d] - Bl->mem[xb] <= room_m &&
                        Bl->lat[d] - Bl->lat[xb] <= room_t) {
                        best = q2, found = true;
                        *la = a, *ca = c, *lb = b, *cb = d;
                    }
                }
            }
        }
    }
    return found;
}

/* ---- a budgeted knapsack: the plan of least loss within both budgets, directly ---------
 *
 * The DP's grid loses most where the front is dense and the budget cuts through it; on
 * measured tables (losses spread over orders of magnitude, memory in a narrow band) the
 * local search above cannot climb out of what the grid handed it. So refine also solves
 * the budgeted problem itself: a multiple-choice knapsack on memory (each layer's memory
 * above its smallest choice, in KNAP_BINS units rounded up, so that every solution is
 * feasible) minimizing loss + lambda x latency, with lambda found by bisection so that the
 * latency budget holds (lambda = 0 when it holds without; searched on a coarser grid, the
 * plan then solved at full resolution). The rounding costs at most
 * n_layers units of memory; the Lagrangian step makes it a heuristic where the latency
 * budget binds. On the SmolLM2-135M tables (211 layers x 3 formats) it found plans the
 * grid and local search missed by 6% in loss at the same memory. */
#define KNAP_BINS 65536
#define KNAP_COARSE_BINS 4096
#define KNAP_LAMBDA_STEPS 24

struct knap {
    const struct srch_problem *p;
    int B;           /* bins of memory available above the smallest plan */
    uint32_t *w;     /* [n_layers * MQ_DTYPE_COUNT] bins per choice */
    double *cost;    /* [B + 1] */
    double *next;    /* [B + 1] */
    uint8_t *pick;   /* [n_layers * (B + 1)] the choice of layer l at capacity b */
};

/* The plan minimizing sum(loss + lambda lat) with memory in B bins, into choice. False when
 * no plan fits (cannot happen when the smallest plan fits). */
static bool knap_solve(struct knap *k, double lambda, uint8_t *choice)
{
    const struct srch_problem *p = k->p;
    const int B = k->B;
    for (int b = 0; b <= B; b++)
        k->cost[b] = 0;
    for (int l = 0; l < p->n_layers; l++) {
        const struct srch_layer *L = &p->layers[l];
        uint8_t *pick = k->pick + (size_t)l * (size_t)(B + 1);
        for (int b = 0; b <= B; b++) {
            double best = INFINITY;
            int bc = -1;
            for (int c = 0; c < L->n; c++) {
                uint32_t w = k->w[l * MQ_DTYPE_COUNT + c];
                if (w > (uint32_t)b)
                    continue;
                double v = k->cost[b - (int)w] + L->loss[c] + lambda * L->lat[c];
                if (v < best) {
                    best = v;
                    bc = c;
                }
            }
            k->next[b] = best;
            pick[b] = (uint8_t)(bc < 0 ? 0 : bc);
        }
        double *t = k->cost;
        k->cost = k->next;
        k->next = t;
    }
    if (!isfinite(k->cost[B]))
        return false;
    for (int l = p->n_layers - 1, b = B; l >= 0; l--) {
        int c = k->pick[(size_t)l * (size_t)(B + 1) + (size_t)b];
        choice[l] = (uint8_t)c;
        b -= (int)k->w[l * MQ_DTYPE_COUNT + c];
    }
    return true;
}

/* Bins per choice for capacity cap at `bins` bins: rounded up, so every solution is feasible. */
static void knap_weights(struct knap *k, double cap, int bins)
{
    const struct srch_problem *p = k->p;
    k->B = cap > 0 ? bins : 0;
    double unit = cap > 0 ? cap / bins : 1;
    for (int l = 0; l < p->n_layers; l++) {
        const struct srch_layer *L = &p->layers[l];
        double lo = INFINITY;
        for (int c = 0; c < L->n; c++)
            lo = fmin(lo, L->mem[c]);
        for (int c = 0; c < L->n; c++) {
            double w = ceil((L->mem[c] - lo) / unit * (1 + 1e-12));
            k->w[l * MQ_DTYPE_COUNT + c] = w > k->B ? (uint32_t)k->B + 1 : (uint32_t)w;
        }
    }
}

/* Solves at lambda and keeps the plan in best when it is within both budgets and better. */
static bool knap_try(struct knap *k, double lambda, double mem_budget, double lat_budget, uint8_t *x,
                     struct srch_point *best, bool *found)
{
    if (!knap_solve(k, lambda, x))
        return false;
    double m, t, q;
    srch_plan_eval(k->p, x, &m, &t, &q);
    bool ok = m <= mem_budget && t <= lat_budget;
    if (ok && (!*found || q < best->loss)) {
        best->mem = m, best->lat = t, best->loss = q;
        memcpy(best->choice, x, (size_t)k->p->n_layers);
        *found = true;
    }
    return ok;
}

/* The knapsack's best plan within both budgets into best (exact objectives); false when
 * it found none (or memory ran out: the caller keeps what it has). lambda is searched at
 * KNAP_COARSE_BINS, the plan then solved again at KNAP_BINS. */
static bool knapsack_plan(const struct srch_problem *p, double mem_budget, double lat_budget,
                          struct srch_point *best)
{
    const size_t N = (size_t)p->n_layers;
    double base = p->mem0, span = 0; /* the smallest plan; the most memory any plan adds */
    for (size_t l = 0; l < N; l++) {
        double lo = INFINITY, hi = 0;
        for (int c = 0; c < p->layers[l].n; c++) {
            lo = fmin(lo, p->layers[l].mem[c]);
            hi = fmax(hi, p->layers[l].mem[c]);
        }
        base += lo;
        span += hi - lo;
    }
    double avail = mem_budget - base;
    if (!(avail >= 0) || N == 0)
        return false;
    double cap = fmin(avail, span);
    struct knap k = {.p = p};
    k.w = alloc_n(N * MQ_DTYPE_COUNT, sizeof(*k.w));
    k.cost = alloc_n((size_t)KNAP_BINS + 1, sizeof(double));
    k.next = alloc_n((size_t)KNAP_BINS + 1, sizeof(double));
    k.pick = alloc_n(N * ((size_t)KNAP_BINS + 1), 1);
    uint8_t *x = alloc_n(N, 1);
    bool found = false;
    if (!k.w || !k.cost || !k.next || !k.pick || !x)
        goto done;
    knap_weights(&k, cap, KNAP_BINS);
    double lambda = 0;
    if (!knap_try(&k, 0, mem_budget, lat_budget, x, best, &found) && isfinite(lat_budget)) {
        /* latency is over at lambda = 0: the smallest penalty that meets it, by doubling
         * then bisection on the coarse grid, then the plan at that penalty on the fine one */
        knap_weights(&k, cap, KNAP_COARSE_BINS);
        double lo = 0, hi = -1, scale = 0;
        for (size_t l = 0; l < N; l++) { /* a penalty that makes latency matter as much as loss */
            double ql = INFINITY, qh = 0, tl = INFINITY, th = 0;
            for (int c = 0; c < p->layers[l].n; c++) {
                ql = fmin(ql, p->layers[l].loss[c]), qh = fmax(qh, p->layers[l].loss[c]);
                tl = fmin(tl, p->layers[l].lat[c]), th = fmax(th, p->layers[l].lat[c]);
            }
            if (th > tl)
                scale = fmax(scale, (qh - ql) / (th - tl));
        }
        double l0 = scale > 0 ? scale * 1e-3 : 1e-12;
        for (int step = 0; step < 40 && hi < 0; step++) {
            double lam = l0 * pow(4, step);
            if (knap_try(&k, lam, mem_budget, lat_budget, x, best, &found))
                hi = lam;
            else
                lo = lam;
        }
        for (int step = 0; hi > 0 && step < KNAP_LAMBDA_STEPS && hi - lo > 1e-6 * hi; step++) {
            double mid = 0.5 * (lo + hi);
            if (knap_try(&k, mid, mem_budget, lat_budget, x, best, &found))
                hi = mid;
            else
                lo = mid;
        }
        lambda = hi;
        if (hi > 0) {
            knap_weights(&k, cap, KNAP_BINS);
            knap_try(&k, lambda, mem_budget, lat_budget, x, best, &found);
        }
    }
done:
    free(k.w);
    free(k.cost);
    free(k.next);
    free(k.pick);
    free(x);
    return found;
}

/* Inserts an exact point into the front, dropping the points it dominates; *idx is its
 * index. Nothing changes (and *idx = -1) when a point dominates or equals it. */
static int front_insert(struct srch_front *f, const struct srch_point *np, int *idx)
{
    *idx = -1;
    int keep = 0;
    for (int i = 0; i < f->n; i++) {
        const struct srch_point *q = &f->pts[i];
        if (q->mem <= np->mem && q->lat <= np->lat && q->loss <= np->loss)
            return MQ_OK;
        keep += !(np->mem <= q->mem && np->lat <= q->lat && np->loss <= q->loss);
    }
    struct srch_front *g = front_alloc((size_t)keep + 1, f->n_layers);
    if (!g)
        return mq_error(MQ_ENOMEM, "search: cannot grow the front");
    int k = 0;
    bool placed = false;
    const size_t nl = (size_t)f->n_layers;
    for (int i = 0; i <= f->n; i++) {
        const struct srch_point *q = i < f->n ? &f->pts[i] : NULL;
        if (!placed && (!q || lex3(np->mem, np->lat, np->loss, q->mem, q->lat, q->loss) < 0)) {
            g->pts[k].mem = np->mem, g->pts[k].lat = np->lat, g->pts[k].loss = np->loss;
            memcpy(g->pts[k].choice, np->choice, nl);
            *idx = k++;
            placed = true;
        }
        if (!q || (np->mem <= q->mem && np->lat <= q->lat && np->loss <= q->loss))
            continue;
        g->pts[k].mem = q->mem, g->pts[k].lat = q->lat, g->pts[k].loss = q->loss;
        memcpy(g->pts[k].choice, q->choice, nl);
        k++;
    }
    MQ_ASSERT(k == keep + 1);
    /* move g's storage into f, keeping f's other fields */
    struct srch_point *op = f->pts;
    uint8_t *oc = f->choices;
    f->pts = g->pts, f->choices = g->choices, f->n = g->n;
    g->pts = op, g->choices = oc;
    srch_front_free(g);
    return MQ_OK;
}

int srch_front_refine(const struct srch_problem *p, struct srch_front *f, double mem_budget,
                      double lat_budget, int *idx)
{
    if (!p || p->n_layers != f->n_layers)
        return mq_error(MQ_EINVAL, "search: refining a front of %d layers with a problem of %d",
                        f->n_layers, p ? p->n_layers : -1);
    int best, rc = srch_front_best(f, mem_budget, lat_budget, &best);
    if (rc < 0)
        return rc;
    const size_t N = (size_t)p->n_layers;
    struct srch_point cur = f->pts[best];
    cur.choice = alloc_n(N, 1);
    if (!cur.choice)
        return mq_error(MQ_ENOMEM, "search: out of memory");
    memcpy(cur.choice, f->pts[best].choice, N);
    bool moved = false;
    int la, ca, lb, cb;
    while (
        refine_step(p, cur.choice, cur.mem, cur.lat, mem_budget, lat_budget, &la, &ca, &lb, &cb)) {
        uint8_t oa = cur.choice[la], ob = lb >= 0 ? cur.choice[lb] : 0;
        cur.choice[la] = (uint8_t)ca;
        if (lb >= 0)
            cur.choice[lb] = (uint8_t)cb;
        double m, t, q;
        srch_plan_eval(p, cur.choice, &m, &t, &q); /* exact totals, in the one summation order */
        if (!(m <= mem_budget && t <= lat_budget && q < cur.loss)) {
            cur.choice[la] = oa; /* the move only looked good by rounding: stop here */
            if (lb >= 0)
                cur.choice[lb] = ob;
            break;
        }
        cur.mem = m, cur.lat = t, cur.loss = q;
        moved = true;
    }
    rc = MQ_OK;
    *idx = best;
    /* the budgeted knapsack, polished by the same local search; the better plan joins */
    struct srch_point kp = {.choice = alloc_n(N, 1)};
    if (kp.choice && knapsack_plan(p, mem_budget, lat_budget, &kp)) {
        while (refine_step(p, kp.choice, kp.mem, kp.lat, mem_budget, lat_budget, &la, &ca, &lb, &cb)) {
            uint8_t oa = kp.choice[la], ob = lb >= 0 ? kp.choice[lb] : 0;
            kp.choice[la] = (uint8_t)ca;
            if (lb >= 0)
                kp.choice[lb] = (uint8_t)cb;
            double m, t, q;
            srch_plan_eval(p, kp.choice, &m, &t, &q);
            if (!(m <= mem_budget && t <= lat_budget && q < kp.loss)) {
                kp.choice[la] = oa;
                if (lb >= 0)
                    kp.choice[lb] = ob;
                break;
            }
            kp.mem = m, kp.lat = t, kp.loss = q;
        }
        if (kp.loss < cur.loss) {
            cur.mem = kp.mem, cur.lat = kp.lat, cur.loss = kp.loss;
            memcpy(cur.choice, kp.choice, N);
            moved = true;
        }
    }
    free(kp.choice);
    if (moved) {
        int at;
        rc = front_insert(f, &cur, &at);
        if (rc == MQ_OK && at >= 0)
            *idx = at;
        else if (rc == MQ_OK)
            rc = srch_front_best(f, mem_budget, lat_budget, idx);
    }
    free(cur.choice);
    return rc;
}

struct near_key {
    double k1, k2;
    int i;
};

static int near_key_cmp(const void *pa, const void *pb)
{
    const struct near_key *a = pa, *b = pb;
    if (a->k1 != b->k1)
        return a->k1 < b->k1 ? -1 : 1;
    if (a->k2 != b->k2)
        return a->k2 < b->k2 ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int srch_front_nearest(const struct srch_front *f, double mem_budget, double lat_budget, int k,
                       int *idx, int *n_out)
{
    if (k < 0)
        return mq_error(MQ_EINVAL, "search: asked for %d nearest points", k);
    if (isnan(mem_budget) || isnan(lat_budget))
        return mq_error(MQ_EINVAL, "search: a budget is NaN");
    *n_out = 0;
    if (k == 0 || f->n == 0)
        return MQ_OK;
    int best = -1;
    double best_loss = INFINITY;
    if (srch_front_best(f, mem_budget, lat_budget, &best) == MQ_OK)
        best_loss = f->pts[best].loss;
    /* lists: 0 inside, 1 beyond memory, 2 beyond latency, 3 beyond both */
    struct near_key *keys = alloc_n((size_t)f->n, sizeof(*keys));
    if (!keys)
        return mq_error(MQ_ENOMEM, "search: out of memory");
    int start[5] = {0}, len[4] = {0};
    for (int pass = 0; pass < 2; pass++) {
        int fill[4] = {start[0], start[1], start[2], start[3]};
        for (int i = 0; i < f->n; i++) {
            const struct srch_point *pt = &f->pts[i];
            if (i == best)
                continue;
            bool mem_ok = pt->mem <= mem_budget, lat_ok = pt->lat <= lat_budget;
            int list;
            struct near_key key = {.i = i};
            if (mem_ok && lat_ok) {
                list = 0, key.k1 = pt->loss, key.k2 = pt->mem;
            } else if (!(pt->loss < best_loss)) {
                continue;
            } else if (lat_ok) {
                list = 1, key.k1 = pt->mem, key.k2 = pt->loss;
            } else if (mem_ok) {
                list = 2, key.k1 = pt->lat, key.k2 = pt->loss;
            } else {
                list = 3, key.k1 = fmax(pt->mem / mem_budget, pt->lat / lat_budget),
                key.k2 = pt->loss;
                if (isnan(key.k1))
                    key.k1 = INFINITY; /* 0 / 0 on a zero budget */
            }
            if (pass == 0)
                len[list]++;
            else
                keys[fill[list]++] = key;
        }
        if (pass == 0)
            for (int l = 0; l < 4; l++)
                start[l + 1] = start[l] + len[l];
    }
    for (int l = 0; l < 4; l++)
        qsort(keys + start[l], (size_t)len[l], sizeof(*keys), near_key_cmp);
    int n = 0, taken[4] = {0};
    if (best >= 0)
        idx[n++] = best;
    while (n < k) {
        bool any = false;
        for (int l = 0; l < 4 && n < k; l++) {
            if (taken[l] < len[l]) {
                idx[n++] = keys[start[l] + taken[l]++].i;
                any = true;
            }
        }
        if (!any)
            break;
    }
    free(keys);
    *n_out = n;
    return MQ_OK;
}

/* Is a faster than b: less latency, then less memory, then less loss. */
static bool faster(const struct srch_point *a, const struct srch_point *b)
{
    if (a->lat != b->lat)
        return a->lat < b->lat;
    if (a->mem != b->mem)
        return a->mem < b->mem;
    return a->loss < b->loss;
}

int srch_front_fastest(const struct srch_front *f, double mem_budget, double lat_budget,
                       double loss_budget, int *idx)
{
    if (isnan(mem_budget) || isnan(lat_budget) || isnan(loss_budget))
        return mq_error(MQ_EINVAL, "search: a budget is NaN");
    int best = -1;
    for (int i = 0; i < f->n; i++) {
        const struct srch_point *pt = &f->pts[i];
        if (within(pt, mem_budget, lat_budget) && pt->loss <= loss_budget &&
            (best < 0 || faster(pt, &f->pts[best])))
            best = i;
    }
    if (best < 0)
        return MQ_ERANGE;
    *idx = best;
    return MQ_OK;
}

/* A point of the staircase being built: its objectives and its index in the front. */
struct step_key {
    struct srch_point pt; /* choice unused */
    int i;
};

static int step_key_cmp(const void *pa, const void *pb)
{
    const struct step_key *a = pa, *b = pb;
    return faster(&a->pt, &b->pt) ? -1 : faster(&b->pt, &a->pt) ? 1 : a->i - b->i;
}

/* The first staircase step (s[0..m-1], loss decreasing) with loss <= bar; m - 1 when none. */
static int step_under(const int *s, int m, const struct srch_front *f, double bar)
{
    for (int i = 0; i < m; i++)
        if (f->pts[s[i]].loss <= bar)
            return i;
    return m - 1;
}

int srch_front_nearest_loss(const struct srch_front *f, double mem_budget, double lat_budget,
                            double loss_bar, int k, int *idx, int *n_out)
{
    if (k < 0)
        return mq_error(MQ_EINVAL, "search: asked for %d nearest points", k);
    if (isnan(mem_budget) || isnan(lat_budget))
        return mq_error(MQ_EINVAL, "search: a budget is NaN");
    if (!(loss_bar >= 0))
        return mq_error(MQ_EINVAL, "search: loss bar %g, want a number >= 0", loss_bar);
    *n_out = 0;
    if (k == 0 || f->n == 0)
        return MQ_OK;
    /* the staircase, as indices into f->pts: within the budgets by increasing latency, each
     * point below the loss of every faster one */
    struct step_key *in = alloc_n((size_t)f->n, sizeof(*in));
    int *s = alloc_n(2 * (size_t)f->n, sizeof(*s)); /* the staircase, then which steps are taken */
    if (!in || !s) {
        free(in);
        free(s);
        return mq_error(MQ_ENOMEM, "search: out of memory");
    }
    int n_in = 0, m = 0;
    for (int i = 0; i < f->n; i++)
        if (within(&f->pts[i], mem_budget, lat_budget))
            in[n_in++] = (struct step_key){.pt = f->pts[i], .i = i};
    qsort(in, (size_t)n_in, sizeof(*in), step_key_cmp);
    for (int i = 0; i < n_in; i++)
        if (m == 0 || in[i].pt.loss < f->pts[s[m - 1]].loss)
            s[m++] = in[i].i;
    free(in);
    int n = 0;
    if (m > 0) {
        int b = step_under(s, m, f, loss_bar);
        int fast = b, slow = b, *taken = s + m; /* the last picks on each side */
        memset(taken, 0, (size_t)m * sizeof(*taken));
        idx[n++] = s[b];
        for (int j = 1; n < k && (fast > 0 || slow < m - 1); j++) {
            double g = pow(2.0, j / 3.0);
            if (fast > 0) {
                int p = step_under(s, m, f, loss_bar * g);
                fast = p < fast ? p : fast - 1;
                idx[n++] = s[fast];
                taken[fast] = 1;
            }
            if (n < k && slow < m - 1) {
                int p = step_under(s, m, f, loss_bar / g);
                slow = p > slow ? p : slow + 1;
                idx[n++] = s[slow];
                taken[slow] = 1;
            }
        }
        /* both sides spent with k not reached: the steps the spread skipped, nearest b first */
        for (int d = 1; n < k && d < m; d++)
            for (int side = -1; side <= 1 && n < k; side += 2) {
                int i = b + side * d;
                if (i >= 0 && i < m && !taken[i])
                    idx[n++] = s[i];
            }
    }
    free(s);
    *n_out = n;
    return MQ_OK;
}

int srch_extremes_compute(const struct srch_problem *p, struct srch_extremes *e)
{
    memset(e, 0, sizeof(*e));
    int rc = srch_problem_validate(p);
    if (rc < 0)
        return rc;
    e->n_layers = p->n_layers;
    e->smallest.choice = alloc_n((size_t)p->n_layers, 1);
    e->fastest.choice = alloc_n((size_t)p->n_layers, 1);
    if (!e->smallest.choice || !e->fastest.choice) {
        srch_extremes_release(e);
        return mq_error(MQ_ENOMEM, "search: out of memory");
    }
    extreme_plan(p, false, e->smallest.choice);
    extreme_plan(p, true, e->fastest.choice);
    srch_plan_eval(p, e->smallest.choice, &e->smallest.mem, &e->smallest.lat, &e->smallest.loss);
    srch_plan_eval(p, e->fastest.choice, &e->fastest.mem, &e->fastest.lat, &e->fastest.loss);
    return MQ_OK;
}

void srch_extremes_release(struct srch_extremes *e)
{
    if (!e)
        return;
    free(e->smallest.choice);
    free(e->fastest.choice);
    memset(e, 0, sizeof(*e));
}

int srch_budget_check(const struct srch_extremes *e, const struct srch_front *f, double mem_budget,
                      double lat_budget, int *idx)
{
    int rc = srch_front_best(f, mem_budget, lat_budget, idx);
    if (rc != MQ_ERANGE)
        return rc;
    char bm[32], bt[32], sm[32], st[32], fm[32], ft[32];
    srch_budget_format_bytes(mem_budget, false, bm, sizeof(bm));
    srch_budget_format_time(lat_budget, bt, sizeof(bt));
    srch_budget_format_bytes(e->smallest.mem, false, sm, sizeof(sm));
    srch_budget_format_time(e->smallest.lat, st, sizeof(st));
    srch_budget_format_bytes(e->fastest.mem, false, fm, sizeof(fm));
    srch_budget_format_time(e->fastest.lat, ft, sizeof(ft));
    bool mem_low = mem_budget < e->smallest.mem, lat_low = lat_budget < e->fastest.lat;
    if (mem_low && lat_low)
        return mq_error(MQ_ERANGE,
                        "memory budget %s and latency budget %s are below what any plan reaches: "
                        "the smallest plan "
                        "(every layer in its smallest format) needs %s, at %s; the fastest plan "
                        "(every layer in its "
                        "fastest format) runs in %s, at %s",
                        bm, bt, sm, st, ft, fm);
    if (mem_low)
        return mq_error(MQ_ERANGE,
                        "memory budget %s is below the smallest plan's %s (every layer in its "
                        "smallest format, at "
                        "%s); the fastest plan runs in %s, at %s",
                        bm, sm, st, ft, fm);
    if (lat_low)
        return mq_error(MQ_ERANGE,
                        "latency budget %s is below the fastest plan's %s (every layer in its "
                        "fastest format, at "
                        "%s); the smallest plan needs %s, at %s",
                        bt, ft, fm, sm, st);
    /* each budget alone is reachable, both together are not (on this front) */
    double fastest_within = INFINITY;
    for (int i = 0; i < f->n; i++)
        if (f->pts[i].mem <= mem_budget && f->pts[i].lat < fastest_within)
            fastest_within = f->pts[i].lat;
    char fw[32], em[32], et[32], tail[128] = "";
    srch_budget_format_time(fastest_within, fw, sizeof(fw));
    if (!f->exact) {
        srch_budget_format_bytes(f->eps_mem, false, em, sizeof(em));
        srch_budget_format_time(f->eps_lat, et, sizeof(et));
        snprintf(tail, sizeof(tail),
                 " (the front is approximate: it may miss plans within %s and %s of it)", em, et);
    }
    return mq_error(
        MQ_ERANGE,
        "no plan meets both memory budget %s and latency budget %s: within the memory budget the "
        "fastest plan runs in %s; the smallest plan (every layer in its smallest format) needs %s, "
        "at "
        "%s; the fastest plan (every layer in its fastest format) runs in %s, at %s%s",
        bm, bt, fw, sm, st, ft, fm, tail);
}
