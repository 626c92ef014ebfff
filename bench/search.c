/* bench/search.c - the search engine's speed, and its DP against an integer program.
 *
 *   build/bench-search [--out FILE] [--runs N] [--layers N] [--seed S] [--ilp-seconds T]
 *                      [--quick]
 *
 * Problems shaped like a 7B transformer: layers cycle through the seven matrices of a block
 * (attn q, k, v, o 4096x4096; ffn gate, up 11008x4096; down 4096x11008), eight formats:
 * the default menu (f16, q8_0, q6_k, q5_k, q4_k, q3_k) with q5_0 and q4_0. Memory is the
 * exact bytes of each format (core's traits); latency is a memory-bound decode, the bytes
 * at 30 GB/s times a per-format efficiency (f16 1.0, q8_0 0.85, q4_0 0.73: this machine's
 * llama.cpp figures in FIELD.md; the K-quants and q5_0 0.7 to 0.8) with 5% log-normal
 * measurement noise and 2 us of per-layer overhead; loss is a log-normal sensitivity per
 * layer (sigma 1, x2 for attn_v and ffn_down, x3 in the first and last blocks, as
 * llama.cpp's presets assume) times a per-format error growing about 4x per bit removed
 * (1e-6 for f16 to 6e-3 for q3_k), with 30% log-normal noise.
 *
 * Reports: (1) the DP front (srch_front_compute) at several state bounds, median wall and
 * CPU time over --runs runs (after one warm-up; CPU time is the figure to trust on a busy
 * machine), front size, exact or epsilon and the bounds; (2) where
 * GLPK is present (libglpk-dev), the epsilon-constraint method with GLPK's branch-and-cut:
 * min loss subject to memory <= B and latency <= T on a 5 x 5 grid of budgets, each solve's
 * time and status, and each DP bound's gap to it, (dp_loss - ilp_loss) / ilp_loss, at the
 * same budgets, for the front's best point and for srch_front_refine's. The ILP lives here because
 * the DP won (search/search.c says why): it is the comparison, not a dependency of mixq. Writes
 * YAML to stdout and to FILE (default build/bench/search.yaml). Never asserts times: it reports
 * them.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/dtype.h"
#include "core/status.h"
#include "profiler/measure.h"
#include "reports/yaml_write.h"
#include "search/search.h"

#ifdef HAVE_GLPK
#include <glpk.h>
#endif

#define N_FMT 8
#define GRID 5 /* budgets per axis */

struct rng {
    unsigned long long s;
};

static double rng_u01(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return ((double)((r->s * 2685821657736338717ULL) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double rng_normal(struct rng *r)
{
    return sqrt(-2 * log(rng_u01(r))) * cos(6.283185307179586 * rng_u01(r));
}

static void make_problem(unsigned long long seed, int n_layers, struct srch_layer *L,
                         char (*names)[48], struct srch_problem *p)
{
    static const struct {
        const char *name;
        double params, sens;
    } mats[7] = {
        {"attn_q", 4096.0 * 4096, 1},    {"attn_k", 4096.0 * 4096, 1},
        {"attn_v", 4096.0 * 4096, 2},    {"attn_output", 4096.0 * 4096, 1},
        {"ffn_gate", 11008.0 * 4096, 1}, {"ffn_up", 11008.0 * 4096, 1},
        {"ffn_down", 4096.0 * 11008, 2},
    };
    static const enum mq_dtype fmt[N_FMT] = {MQ_DTYPE_F16,  MQ_DTYPE_Q8_0, MQ_DTYPE_Q6_K, MQ_DTYPE_Q5_K,
                                             MQ_DTYPE_Q5_0, MQ_DTYPE_Q4_K, MQ_DTYPE_Q4_0, MQ_DTYPE_Q3_K};
    static const double eff[N_FMT] = {1.0, 0.85, 0.8, 0.78, 0.75, 0.78, 0.73, 0.7},
                        err[N_FMT] = {1e-6, 5e-5, 2.5e-4, 7e-4, 9e-4, 1.6e-3, 2e-3, 6e-3};
    struct rng r = {seed * 0x9E3779B97F4A7C15ULL + 1};
    int n_blocks = (n_layers + 6) / 7;
    for (int l = 0; l < n_layers; l++) {
        int m = l % 7, blk = l / 7;
        snprintf(names[l], sizeof(names[l]), "blk.%d.%s.weight", blk, mats[m].name);
        double edge = blk < n_blocks / 8 + 1 || blk >= n_blocks - n_blocks / 8 - 1 ? 3 : 1;
        double sens = exp(rng_normal(&r)) * mats[m].sens * edge;
        memset(&L[l], 0, sizeof(L[l]));
        L[l].name = names[l];
        L[l].n = N_FMT;
        for (int c = 0; c < N_FMT; c++) {
            L[l].fmt[c] = fmt[c];
            L[l].mem[c] = mats[m].params * mq_dtype_bits_per_weight(fmt[c]) / 8;
            L[l].lat[c] = L[l].mem[c] / 30.0 / eff[c] * exp(0.05 * rng_normal(&r)) + 2e3;
            L[l].loss[c] = sens * err[c] * exp(0.3 * rng_normal(&r));
        }
    }
    *p = (struct srch_problem){
        .n_layers = n_layers, .layers = L, .mem0 = 7.5e8, .lat0 = 3e6, .loss0 = 0};
}

static double largest(const struct srch_problem *p, bool lat)
{
    double s = lat ? p->lat0 : p->mem0;
    for (int l = 0; l < p->n_layers; l++) {
        double mx = 0;
        for (int c = 0; c < p->layers[l].n; c++)
            mx = fmax(mx, lat ? p->layers[l].lat[c] : p->layers[l].mem[c]);
        s += mx;
    }
    return s;
}

/* ---- the ILP, for comparison ---- */

struct ilp_result {
    bool ran;
    int status;    /* 0 optimal, 1 time limit with a plan, 2 infeasible, 3 no plan found */
    double loss;   /* exact, from the plan */
    bool violates; /* the plan breaks a budget when summed exactly (solver tolerances) */
    double seconds;
};

static const char *const ilp_status_names[4] = {"optimal", "time_limit", "infeasible", "no_plan"};

#ifdef HAVE_GLPK
struct ilp {
    glp_prob *lp;
    int n_cols;
    double mem_scale, lat_scale;
};

static int ilp_build(const struct srch_problem *p, struct ilp *ip)
{
    int N = p->n_layers, nc = 0;
    for (int l = 0; l < N; l++)
        nc += p->layers[l].n;
    double loss_max = 0;
    for (int l = 0; l < N; l++)
        for (int c = 0; c < p->layers[l].n; c++)
            loss_max = fmax(loss_max, p->layers[l].loss[c]);
    ip->n_cols = nc;
    ip->mem_scale = 1e-9; /* GB */
    ip->lat_scale = 1e-6; /* ms */
    glp_prob *lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MIN);
    glp_add_rows(lp, N + 2);
    glp_add_cols(lp, nc);
    int nz = 3 * nc;
    int *ia = malloc((size_t)(nz + 1) * sizeof(int)), *ja = malloc((size_t)(nz + 1) * sizeof(int));
    double *ar = malloc((size_t)(nz + 1) * sizeof(double));
    if (!ia || !ja || !ar) {
        free(ia), free(ja), free(ar);
        glp_delete_prob(lp);
        return mq_error(MQ_ENOMEM, "bench-search: out of memory");
    }
    int k = 0, col = 0;
    for (int l = 0; l < N; l++) {
        glp_set_row_bnds(lp, l + 1, GLP_FX, 1, 1); /* one format per layer */
        for (int c = 0; c < p->layers[l].n; c++) {
            col++;
            glp_set_col_kind(lp, col, GLP_BV);
            glp_set_obj_coef(lp, col, p->layers[l].loss[c] / (loss_max > 0 ? loss_max : 1));
            k++, ia[k] = l + 1, ja[k] = col, ar[k] = 1;
            k++, ia[k] = N + 1, ja[k] = col, ar[k] = p->layers[l].mem[c] * ip->mem_scale;
            k++, ia[k] = N + 2, ja[k] = col, ar[k] = p->layers[l].lat[c] * ip->lat_scale;
        }
    }
    glp_load_matrix(lp, k, ia, ja, ar);
    free(ia), free(ja), free(ar);
    ip->lp = lp;
    return MQ_OK;
}

static void ilp_solve(const struct srch_problem *p, struct ilp *ip, double B, double T,
                      double max_s, uint8_t *choice, struct ilp_result *res)
{
    int N = p->n_layers;
    glp_set_row_bnds(ip->lp, N + 1, GLP_UP, 0, (B - p->mem0) * ip->mem_scale);
    glp_set_row_bnds(ip->lp, N + 2, GLP_UP, 0, (T - p->lat0) * ip->lat_scale);
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.msg_lev = GLP_MSG_OFF;
    parm.tm_lim = (int)(max_s * 1e3);
    double t0 = (double)prof_now_ns();
    int ret = glp_intopt(ip->lp, &parm);
    res->seconds = ((double)prof_now_ns() - t0) * 1e-9;
    res->ran = true;
    int st = glp_mip_status(ip->lp);
    if (ret == GLP_ENOPFS || st == GLP_NOFEAS) {
        res->status = 2;
        return;
    }
    if (st != GLP_OPT && st != GLP_FEAS) {
        res->status = 3;
        return;
    }
    res->status = st == GLP_OPT ? 0 : 1;
    int col = 0;
    for (int l = 0; l < N; l++) {
        choice[l] = 0;
        for (int c = 0; c < p->layers[l].n; c++)
            if (glp_mip_col_val(ip->lp, ++col) > 0.5)
                choice[l] = (uint8_t)c;
    }
    double m, t;
    srch_plan_eval(p, choice, &m, &t, &res->loss);
    res->violates = m > B || t > T;
}
#endif

static const char *ilp_solver(void)
{
#ifdef HAVE_GLPK
    static char buf[64];
    snprintf(buf, sizeof(buf), "glpk %s (glp_intopt, presolve, default cuts)", glp_version());
    return buf;
#else
    return NULL;
#endif
}

/* CPU time of this thread: on a loaded machine, wall time also counts other programs. */
static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"runs", required_argument, NULL, 'r'},
        {"layers", required_argument, NULL, 'l'},
        {"seed", required_argument, NULL, 's'},
        {"ilp-seconds", required_argument, NULL, 'i'},
        {"quick", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = "build/bench/search.yaml";
    int runs = 7, n_layers = 200;
    unsigned long long seed = 1;
    double ilp_seconds = 20;
    bool quick = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'r': runs = atoi(optarg); break;
        case 'l': n_layers = atoi(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'i': ilp_seconds = atof(optarg); break;
        case 'q': quick = true; break;
        case 'h':
            printf("usage: bench-search [--out FILE] [--runs N] [--layers N] [--seed S] "
                   "[--ilp-seconds T] "
                   "[--quick]\n");
            return 0;
        default: return 2;
        }
    }
    if (runs < 1 || runs > 1000 || n_layers < 1 || n_layers > 10000 || !(ilp_seconds > 0)) {
        fprintf(stderr, "bench-search: --runs 1..1000, --layers 1..10000, --ilp-seconds > 0\n");
        return 2;
    }
    if (quick)
        runs = 3;
    int rc = 1;
    struct srch_layer *L = calloc((size_t)n_layers, sizeof(*L));
    char(*names)[48] = calloc((size_t)n_layers, sizeof(*names));
    uint8_t *choice = calloc((size_t)n_layers, 1);
    if (!L || !names || !choice) {
        fprintf(stderr, "bench-search: out of memory\n");
        goto done;
    }
    struct srch_problem p;
    make_problem(seed, n_layers, L, names, &p);

    static const int bounds_all[] = {1024, 4096, SRCH_DEFAULT_MAX_STATES, 16384};
    int bounds[4], n_bounds = 0;
    for (int b = 0; b < 4; b++) {
        bool dup = false;
        for (int k = 0; k < n_bounds; k++)
            dup |= bounds[k] == bounds_all[b];
        if (!dup && (!quick || bounds_all[b] == SRCH_DEFAULT_MAX_STATES))
            bounds[n_bounds++] = bounds_all[b];
    }
    for (int i = 1; i < n_bounds; i++) /* ascending */
        for (int k = i; k > 0 && bounds[k] < bounds[k - 1]; k--) {
            int t = bounds[k];
            bounds[k] = bounds[k - 1], bounds[k - 1] = t;
        }

    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdir(dir, 0755);
    }
    struct srch_extremes ext = {0};
    if (srch_extremes_compute(&p, &ext) < 0)
        goto done;
    struct srch_front *fronts[4] = {NULL};
    struct rpt_yw w;
    if (rpt_yw_open(&w, out, "bench-search/1") < 0)
        goto done;
    rpt_yw_kv_str(&w, "units",
                  "time in seconds; memory in bytes; latency in ns; gap = (dp_loss - ilp_loss) / "
                  "ilp_loss at the same budgets");
    rpt_yw_key(&w, "problem");
    rpt_yw_map(&w);
    rpt_yw_kv_str(&w, "shape",
                  "7B-like transformer: attn q/k/v/o 4096x4096, ffn gate/up 11008x4096, down "
                  "4096x11008, cycled");
    rpt_yw_kv_int(&w, "layers", n_layers);
    rpt_yw_kv_str(&w, "formats", "f16, q8_0, q6_k, q5_k, q5_0, q4_k, q4_0, q3_k");
    rpt_yw_kv_int(&w, "seed", (int64_t)seed);
    rpt_yw_kv_num(&w, "smallest_plan_bytes", ext.smallest.mem, 6);
    rpt_yw_kv_num(&w, "largest_plan_bytes", largest(&p, false), 6);
    rpt_yw_kv_num(&w, "fastest_plan_ns", ext.fastest.lat, 6);
    rpt_yw_kv_num(&w, "slowest_plan_ns", largest(&p, true), 6);
    rpt_yw_end(&w);

    rpt_yw_key(&w, "dp");
    rpt_yw_seq(&w);
    for (int b = 0; b < n_bounds; b++) {
        double *samples = calloc((size_t)runs, sizeof(double)),
               *cpu = calloc((size_t)runs, sizeof(double));
        if (!samples || !cpu) {
            free(samples), free(cpu);
            goto done_w;
        }
        struct srch_options o = {.method = SRCH_DP, .max_states = bounds[b]};
        for (int r = -1; r < runs; r++) { /* r = -1: warm-up, discarded */
            struct srch_front *f = NULL;
            double c0 = cpu_ns();
            if (srch_front_compute(&p, &o, &f) < 0) {
                free(samples), free(cpu);
                goto done_w;
            }
            if (r >= 0) {
                samples[r] = f->seconds * 1e9;
                cpu[r] = cpu_ns() - c0;
            }
            srch_front_free(fronts[b]);
            fronts[b] = f;
        }
        struct prof_stats st, sc;
        prof_stats_from(samples, runs, &st);
        prof_stats_from(cpu, runs, &sc);
        free(samples), free(cpu);
        const struct srch_front *f = fronts[b];
        fprintf(stderr, "bench-search: dp max_states %d: median %.3f s, %d points, %s\n", bounds[b],
                st.median_ns * 1e-9, f->n, f->method);
        rpt_yw_map(&w);
        rpt_yw_kv_int(&w, "max_states", bounds[b]);
        rpt_yw_kv_bool(&w, "default", bounds[b] == SRCH_DEFAULT_MAX_STATES);
        rpt_yw_kv_int(&w, "runs", st.reps);
        rpt_yw_kv_num(&w, "median_s", st.median_ns * 1e-9, 4);
        rpt_yw_kv_num(&w, "min_s", st.min_ns * 1e-9, 4);
        rpt_yw_kv_num(&w, "mad_s", st.mad_ns * 1e-9, 3);
        rpt_yw_kv_num(&w, "median_cpu_s", sc.median_ns * 1e-9, 4);
        rpt_yw_kv_str(&w, "method", f->method);
        rpt_yw_kv_bool(&w, "exact", f->exact);
        rpt_yw_kv_int(&w, "front_points", f->n);
        rpt_yw_kv_num(&w, "eps_mem_bytes", f->eps_mem, 4);
        rpt_yw_kv_num(&w, "eps_lat_ns", f->eps_lat, 4);
        rpt_yw_kv_num(&w, "eps_mem_of_range", f->eps_mem / (largest(&p, false) - ext.smallest.mem),
                      3);
        rpt_yw_kv_num(&w, "eps_lat_of_range", f->eps_lat / (largest(&p, true) - ext.fastest.lat),
                      3);
        rpt_yw_kv_int(&w, "grid_cells", f->grid_cells);
        rpt_yw_kv_int(&w, "reductions", f->n_reductions);
        rpt_yw_kv_num(&w, "log2_plans", f->log2_plans, 5);
        rpt_yw_end(&w);
    }
    rpt_yw_end(&w);

    rpt_yw_key(&w, "ilp");
    rpt_yw_map(&w);
    const char *solver = ilp_solver();
    rpt_yw_kv_str(&w, "solver", solver ? solver : "none");
    if (!solver) {
        rpt_yw_kv_str(&w, "skipped",
                      "built without GLPK (scripts/install-deps installs libglpk-dev)");
        rpt_yw_end(&w);
        fprintf(stderr, "bench-search: no GLPK: the ILP comparison is skipped\n");
    } else {
        rpt_yw_kv_num(&w, "time_limit_s", ilp_seconds, 3);
        rpt_yw_kv_str(&w, "budgets",
                      "5 x 5: memory and latency each at 10, 30, 50, 70, 90% of the way from the "
                      "smallest to the largest plan");
        double ilp_times[GRID * GRID], gaps[4][GRID * GRID], rgaps[4][GRID * GRID],
            refine_times[4][GRID * GRID];
        int n_solved = 0, n_opt = 0, n_infeasible = 0, n_agree = 0, n_cases = 0, n_viol = 0;
        rpt_yw_key(&w, "solves");
        rpt_yw_seq(&w);
#ifdef HAVE_GLPK
        struct ilp ip = {0};
        if (ilp_build(&p, &ip) < 0)
            goto done_w;
        double mlo = ext.smallest.mem, mhi = largest(&p, false), tlo = ext.fastest.lat,
               thi = largest(&p, true);
        for (int a = 0; a < GRID; a++) {
            for (int bb = 0; bb < GRID; bb++) {
                double B = mlo + (mhi - mlo) * (0.1 + 0.2 * a),
                       T = tlo + (thi - tlo) * (0.1 + 0.2 * bb);
                struct ilp_result res = {0};
                if (quick && (a + bb) % 2)
                    continue;
                ilp_solve(&p, &ip, B, T, ilp_seconds, choice, &res);
                n_cases++;
                ilp_times[n_cases - 1] = res.seconds;
                fprintf(stderr, "bench-search: ilp at %.4g GB, %.4g ms: %s in %.3f s\n", B / 1e9,
                        T / 1e6, ilp_status_names[res.status], res.seconds);
                rpt_yw_map(&w);
                rpt_yw_kv_num(&w, "mem_budget_bytes", B, 6);
                rpt_yw_kv_num(&w, "lat_budget_ns", T, 6);
                rpt_yw_kv_str(&w, "ilp_status", ilp_status_names[res.status]);
                rpt_yw_kv_num(&w, "ilp_s", res.seconds, 4);
                bool ilp_has = res.status <= 1;
                if (ilp_has) {
                    rpt_yw_kv_num(&w, "ilp_loss", res.loss, 8);
                    if (res.violates)
                        rpt_yw_kv_bool(&w, "ilp_plan_breaks_budget", true), n_viol++;
                }
                n_opt += res.status == 0;
                n_infeasible += res.status == 2;
                rpt_yw_key(&w, "dp");
                rpt_yw_seq(&w);
                bool agree = true;
                for (int b = 0; b < n_bounds; b++) {
                    int idx;
                    bool dp_has = srch_front_best(fronts[b], B, T, &idx) == MQ_OK;
                    agree &= dp_has == ilp_has;
                    rpt_yw_map(&w);
                    rpt_yw_kv_int(&w, "max_states", bounds[b]);
                    if (dp_has) {
                        rpt_yw_kv_num(&w, "loss", fronts[b]->pts[idx].loss, 8);
                        struct srch_front *fr = NULL;
                        int ir = -1;
                        double t0 = (double)prof_now_ns();
                        if (srch_front_dup(fronts[b], &fr) < 0 ||
                            srch_front_refine(&p, fr, B, T, &ir) < 0) {
                            srch_front_free(fr);
                            goto done_w;
                        }
                        double refine_s = ((double)prof_now_ns() - t0) * 1e-9;
                        double rloss = fr->pts[ir].loss;
                        srch_front_free(fr);
                        rpt_yw_kv_num(&w, "refined_loss", rloss, 8);
                        rpt_yw_kv_num(&w, "refine_s", refine_s, 3);
                        refine_times[b][n_solved] = refine_s;
                        if (ilp_has && !res.violates) {
                            double g = (fronts[b]->pts[idx].loss - res.loss) / res.loss;
                            double rg = (rloss - res.loss) / res.loss;
                            gaps[b][n_solved] = g;
                            rgaps[b][n_solved] = rg;
                            rpt_yw_kv_num(&w, "gap", g, 4);
                            rpt_yw_kv_num(&w, "refined_gap", rg, 4);
                        }
                    } else {
                        rpt_yw_kv_str(&w, "loss", "none");
                    }
                    rpt_yw_end(&w);
                }
                rpt_yw_end(&w);
                rpt_yw_end(&w);
                n_agree += agree;
                if (ilp_has && !res.violates)
                    n_solved++;
            }
        }
        glp_delete_prob(ip.lp);
        glp_free_env();
#endif
        rpt_yw_end(&w);
        qsort(ilp_times, (size_t)n_cases, sizeof(double), cmp_double);
        double total = 0;
        for (int k = 0; k < n_cases; k++)
            total += ilp_times[k];
        rpt_yw_key(&w, "summary");
        rpt_yw_map(&w);
        rpt_yw_kv_int(&w, "budgets", n_cases);
        rpt_yw_kv_int(&w, "ilp_optimal", n_opt);
        rpt_yw_kv_int(&w, "ilp_infeasible", n_infeasible);
        rpt_yw_kv_int(&w, "ilp_plans_breaking_budget", n_viol);
        rpt_yw_kv_int(&w, "feasibility_agrees", n_agree);
        rpt_yw_kv_num(&w, "ilp_total_s", total, 4);
        rpt_yw_kv_num(&w, "ilp_median_s", n_cases ? ilp_times[n_cases / 2] : 0, 4);
        rpt_yw_kv_num(&w, "ilp_max_s", n_cases ? ilp_times[n_cases - 1] : 0, 4);
        rpt_yw_key(&w, "dp_gap");
        rpt_yw_seq(&w);
        for (int b = 0; b < n_bounds; b++) {
            rpt_yw_map(&w);
            rpt_yw_kv_int(&w, "max_states", bounds[b]);
            for (int kind = 0; kind < 2; kind++) {
                double *g = kind ? rgaps[b] : gaps[b], worst = 0, sum = 0;
                for (int k = 0; k < n_solved; k++)
                    worst = fmax(worst, g[k]), sum += g[k];
                qsort(g, (size_t)n_solved, sizeof(double), cmp_double);
                rpt_yw_key(&w, kind ? "refined" : "front");
                rpt_yw_map(&w);
                rpt_yw_kv_num(&w, "worst", worst, 4);
                rpt_yw_kv_num(&w, "mean", n_solved ? sum / n_solved : 0, 4);
                rpt_yw_kv_num(&w, "median", n_solved ? g[n_solved / 2] : 0, 4);
                rpt_yw_end(&w);
            }
            qsort(refine_times[b], (size_t)n_solved, sizeof(double), cmp_double);
            rpt_yw_kv_num(&w, "refine_median_s", n_solved ? refine_times[b][n_solved / 2] : 0, 3);
            rpt_yw_kv_num(&w, "refine_max_s", n_solved ? refine_times[b][n_solved - 1] : 0, 3);
            rpt_yw_end(&w);
        }
        rpt_yw_end(&w);
        rpt_yw_end(&w);
        rpt_yw_end(&w);
    }
    rc = 0;
done_w:
    if (rpt_yw_close(&w) < 0)
        rc = 1;
    for (int b = 0; b < 4; b++)
        srch_front_free(fronts[b]);
    srch_extremes_release(&ext);
    if (rc == 0) {
        FILE *f = fopen(out, "r");
        if (f) {
            char buf[4096];
            size_t n;
            while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, n, stdout);
            fclose(f);
        }
    }
done:
    free(L);
    free(names);
    free(choice);
    return rc;
}
