/* search/search.h - the search engine: the Pareto front of plans over (memory, latency,
 * loss), and the queries a tuner asks of it.
 *
 * A pure algorithm on plain tables. The problem: N layers, each with n_l candidate formats;
 * choosing format c for layer l adds mem[c] bytes, lat[c] ns (per workload run) and loss[c]
 * (an additive quality loss, e.g. the KL divergence measured with that layer alone
 * quantized) to constant base costs. A plan is one choice per layer; its objectives are the
 * sums. All three objectives are minimized. A plan is on the front when no other plan is
 * <= in all three and < in one; the front holds one plan per distinct objective vector.
 *
 *     struct srch_layer layers[2] = {
 *         {.name = "blk.0.attn_q.weight", .n = 2, .fmt = {MQ_DTYPE_F16, MQ_DTYPE_Q4_0},
 *          .mem = {32e6, 9e6}, .lat = {1.1e6, 0.4e6}, .loss = {0, 3.2e-4}},
 *         ...
 *     };
 *     struct srch_problem p = {.n_layers = 2, .layers = layers, .mem0 = 1e9, .lat0 = 2e6};
 *     struct srch_front *f;
 *     if (srch_front_compute(&p, NULL, &f) < 0) return -1;    // validates p first
 *     int best;
 *     if (srch_front_best(f, 8e9, 200e6, &best) == MQ_OK)      // 8 GB, 200 ms
 *         use f->pts[best].choice[l] (an index into layers[l].fmt);
 *     srch_front_free(f);
 *
 * Methods (struct srch_options; see search.c for how they were chosen against an ILP):
 *   - SRCH_EXHAUSTIVE enumerates every plan (spaces up to max_plans, default 2^22): exact.
 *   - SRCH_DP goes layer by layer keeping the non-dominated partial sums: exact while that
 *     set stays within max_states (pruning a dominated partial plan loses nothing, since the
 *     same remaining choices keep it dominated). Past the bound it reduces the set on a grid
 *     of cells in memory x latency (the lowest-loss state per cell, then the non-dominated
 *     cells), with as many cells per axis as fit the bound. The front then is
 *     epsilon-approximate: for every plan P of the space there is a front point with loss
 *     <= P's, memory <= P's + eps_mem and latency <= P's + eps_lat (the sums of the cell
 *     widths of every reduction, recorded in the front). Point values stay exact: only the
 *     pruning is approximate.
 *   - SRCH_AUTO (the default): the DP; where it turned approximate and the space is
 *     small enough to enumerate, the exhaustive method instead, so the result is exact.
 *
 * Queries: srch_front_best (the lowest loss within budgets), srch_front_refine (the same,
 * improved by a budgeted knapsack and local search on the problem: at the ILP's optimum on
 * all 25 budgets of bench/search.c), srch_front_nearest (the few points to re-measure around the
 * budgets), srch_front_fastest and srch_front_nearest_loss (the same for a loss bound: the
 * fastest plan under a loss bar), srch_extremes_compute (the smallest and the fastest plan, exact from the
 * problem), srch_budget_check (the best point, or the one-line error naming both
 * extremes). Budgets are bytes and ns; SRCH_NO_BUDGET (+inf) means none.
 *
 * Ownership: the problem is borrowed (layer names too) and not kept after a call returns.
 * A front owns its points and their choices; srch_extremes owns its two choice arrays.
 *
 * Dependency rule: search/ depends on profiler/, model/, llm/, gguf/, backends/ and
 * core/; this module uses core/ only.
 */
#ifndef MQ_SEARCH_SEARCH_H
#define MQ_SEARCH_SEARCH_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"

#define SRCH_NO_BUDGET INFINITY
#define SRCH_MAX_LAYERS 65536          /* more layers is refused as absurd */
#define SRCH_MAX_COST 1e18             /* any single cost or base value above is absurd */
#define SRCH_DEFAULT_MAX_STATES 8192   /* DP: partial plans per layer (search.c says why) */
#define SRCH_DEFAULT_MAX_PLANS 4194304 /* exhaustive: 2^22 plans */

struct srch_layer {
    const char *name; /* for messages; NULL reads as "#<index>" */
    int n;            /* candidate formats, 1..MQ_DTYPE_COUNT */
    enum mq_dtype fmt[MQ_DTYPE_COUNT];
    double mem[MQ_DTYPE_COUNT];  /* bytes added by choosing fmt[c] */
    double lat[MQ_DTYPE_COUNT];  /* ns added per workload run */
    double loss[MQ_DTYPE_COUNT]; /* additive quality loss, >= 0 */
};

struct srch_problem {
    int n_layers; /* 0..SRCH_MAX_LAYERS */
    const struct srch_layer *layers;
    double mem0, lat0, loss0; /* base costs, the same for every plan (>= 0) */
};

struct srch_point {
    double mem, lat, loss; /* exact objectives of the plan: base + the chosen costs */
    uint8_t *choice;       /* [n_layers]: index into layers[l].fmt */
};

enum srch_method {
    SRCH_AUTO,
    SRCH_EXHAUSTIVE,
    SRCH_DP,
};

struct srch_options {
    enum srch_method method;
    int max_states;   /* DP: bound on partial plans per layer; 0: SRCH_DEFAULT_MAX_STATES */
    double max_plans; /* exhaustive: largest space enumerated; 0: SRCH_DEFAULT_MAX_PLANS */
};

struct srch_front {
    int n, n_layers;
    struct srch_point *pts; /* [n], sorted by memory, then latency (then loss) */
    char method[64];        /* "exhaustive", "dp" or "dp-epsilon" */
    bool exact;             /* the true front; else epsilon-approximate, as below */
    double eps_mem;         /* bytes: additive bound on what the front may miss (0 if exact) */
    double eps_lat;         /* ns: the same for latency */
    int grid_cells;         /* cells per axis of the coarsest reduction (0 if none) */
    int n_reductions;       /* layers at which the DP reduced its states on the grid */
    int max_states;         /* the most partial plans the DP held after one layer */
    double log2_plans;      /* log2 of the size of the space */
    double seconds;         /* wall time of srch_front_compute */
    uint8_t *choices;       /* [n * n_layers]: storage behind pts[i].choice */
};

/* Checks every layer and the base: 0 <= n_layers <= SRCH_MAX_LAYERS, 1 <= n <=
 * MQ_DTYPE_COUNT, formats in range and not repeated within a layer, costs finite, >= 0 and
 * <= SRCH_MAX_COST. MQ_OK, or MQ_EINVAL printed as one line naming the layer. */
int srch_problem_validate(const struct srch_problem *p);

/* Objectives of one plan (choice[l] indexes layers[l].fmt, assumed in range), summed in
 * layer order from the base, exactly as every method sums them. */
void srch_plan_eval(const struct srch_problem *p, const uint8_t *choice, double *mem, double *lat,
                    double *loss);

/* Validates p, then computes its front (opt NULL: defaults). On success *out is a new front
 * the caller frees with srch_front_free. Errors: MQ_EINVAL (a bad problem or option),
 * MQ_ERANGE (SRCH_EXHAUSTIVE on a space over max_plans), MQ_ENOMEM; all printed. */
int srch_front_compute(const struct srch_problem *p, const struct srch_options *opt,
                       struct srch_front **out);
void srch_front_free(struct srch_front *f); /* NULL is a no-op */
/* A deep copy into *out (the caller frees it), e.g. to refine for several budgets apart.
 * MQ_ENOMEM printed. */
int srch_front_dup(const struct srch_front *f, struct srch_front **out);

/* The lowest-loss point with mem <= mem_budget and lat <= lat_budget (either may be
 * SRCH_NO_BUDGET); ties in loss go to less memory, then less latency. MQ_OK and *idx, or
 * MQ_ERANGE (not printed) when no point qualifies; MQ_EINVAL (printed) on a NaN budget. */
int srch_front_best(const struct srch_front *f, double mem_budget, double lat_budget, int *idx);

/* Improves the best point within the budgets: a multiple-choice knapsack on memory solved
 * directly (loss + lambda x latency, lambda bisected to meet the latency budget; memory
 * rounded up to 65536 bins of the budget, so its plans are feasible), then local search
 * from it and from the best point: moves that change one layer's format, or two layers' at
 * once, the move lowering the loss most within both budgets first, until none does
 * (O((sum of n_l)^2) per move). The better plan is kept. The plan found joins the
 * front, which drops the points it dominates (indices change), so the front stays a set of
 * non-dominated exact points. On an exact front nothing improves. p must be the problem f
 * was computed from. MQ_OK and *idx (the improved point, or the best one unchanged),
 * MQ_ERANGE (not printed) when no point is within the budgets, MQ_EINVAL (printed) on a NaN
 * budget or a front of another shape, MQ_ENOMEM (printed). */
int srch_front_refine(const struct srch_problem *p, struct srch_front *f, double mem_budget,
                      double lat_budget, int *idx);

/* Up to k distinct point indices worth re-measuring on the target, most useful first, into
 * the caller's idx[k] (*n_out of them). With b the best point within the budgets (srch_front_best):
 *   1. b itself;
 *   2. then in turn, one from each list until k are taken or all are empty:
 *      - inside: the other points within budgets by increasing loss; on a front each has
 *        less memory or latency than b, so these are the fallbacks with more slack;
 *      - beyond memory: points with lower loss than b that meet the latency budget but not
 *        the memory one, least memory first (the nearest plans past the memory budget,
 *        which may meet it when measured);
 *      - beyond latency: the same with the roles swapped;
 *      - beyond both: points with lower loss than b over both budgets, by increasing
 *        max(mem / mem_budget, lat / lat_budget).
 * With no point within budgets, every point counts as "lower loss than b", so the list is
 * the nearest points past the budgets. With no budgets, b is the lowest-loss point and the
 * rest follow by increasing loss. MQ_OK, or MQ_EINVAL (printed) on k < 0 or a NaN budget. */
int srch_front_nearest(const struct srch_front *f, double mem_budget, double lat_budget, int k,
                       int *idx, int *n_out);

/* A loss bound (mixq tune --max-kl): the fastest point with mem <= mem_budget, lat <=
 * lat_budget and loss <= loss_budget; ties in latency go to less memory, then less loss.
 * MQ_OK and *idx, MQ_ERANGE (not printed) when no point qualifies, MQ_EINVAL (printed) on a
 * NaN budget. */
int srch_front_fastest(const struct srch_front *f, double mem_budget, double lat_budget,
                       double loss_budget, int *idx);

/* Up to k distinct points worth re-measuring when the plan wanted is the fastest whose loss,
 * as measured, is at most a bar (predicted loss is a sum of per-layer losses, and a plan's
 * measured loss differs from it, either way). Among the points within the memory and latency
 * budgets, the staircase of latency against loss (sorted by latency, then memory; each
 * point kept when its loss is below every faster one's) runs from fast and lossy to slow and
 * precise. Taken from it, most useful first, into the caller's idx[k] (*n_out of them):
 *   1. b, the fastest point with loss <= loss_bar (srch_front_fastest; with none, the
 *      lowest-loss point);
 *   2. then by turns a faster and a slower one: for j = 1, 2, ... the fastest point with
 *      loss <= loss_bar x 2^(j/3) (faster than b: plans that may measure under the bar),
 *      and the fastest with loss <= loss_bar / 2^(j/3) (slower: the fallbacks should b
 *      measure over it), each at least one staircase step past the previous one on its
 *      side, so the points bracket the bar geometrically where the staircase is dense and
 *      are its neighbours where it is sparse; until k are taken or both sides are spent;
 *   3. then the steps the spread skipped, nearest b first, until k are taken.
 * No point within the budgets: *n_out = 0. MQ_OK, or MQ_EINVAL (printed) on k < 0, a NaN
 * budget or a bar that is NaN or negative. */
int srch_front_nearest_loss(const struct srch_front *f, double mem_budget, double lat_budget,
                            double loss_bar, int k, int *idx, int *n_out);

/* The two extreme plans, exact from the problem (whatever a front found). */
struct srch_extremes {
    struct srch_point smallest; /* least memory; ties: least latency, then least loss */
    struct srch_point fastest;  /* least latency; ties: least memory, then least loss */
    int n_layers;
};

/* Validates p and fills *e; the caller releases it with srch_extremes_release (which
 * also accepts a zeroed struct). MQ_EINVAL or MQ_ENOMEM, printed. */
int srch_extremes_compute(const struct srch_problem *p, struct srch_extremes *e);
void srch_extremes_release(struct srch_extremes *e);

/* The best point within the budgets (as srch_front_best), or, when there is none, prints
 * one line naming the budgets that fail and both extremes, e.g.
 *   memory budget 4 GB is below the smallest plan's 4.213 GB (every layer in its smallest
 *   format, at 180.2 ms); the fastest plan runs in 150.3 ms, at 5.12 GB
 * and returns MQ_ERANGE. Where each budget alone is reachable but no point of the front
 * meets both, the line says so (and, for an approximate front, within what tolerance).
 * Callers add their layer-format summaries after it. */
int srch_budget_check(const struct srch_extremes *e, const struct srch_front *f, double mem_budget,
                      double lat_budget, int *idx);

#endif
