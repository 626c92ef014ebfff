/* cli/cmd_compare.c - `mixq compare P1.yaml P2.yaml ... [--fronts F1.yaml ...] -o DIR`:
 * the hardware comparison report (reports/compare.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "reports/compare.h"

static void compare_usage(FILE *f)
{
    fprintf(
        f,
        "usage: mixq compare PROFILE.yaml [PROFILE.yaml ...] [--fronts FRONT.yaml ...] [-o DIR]\n"
        "                    [--label NAME ...] [--no-plots]\n\n"
        "Compares profiles of one model taken on several targets or backends (mixq profile on\n"
        "each: this machine's cpu, MIXQ_CPU_ISA=scalar, neon under qemu, cuda, a board) and,\n"
        "optionally, the fronts mixq tune found on them. Writes DIR/report.html (self-contained:\n"
        "plots inline as SVG, no scripts, no external files) and DIR/report.md, with the plots'\n"
        "files under DIR/plots: each target's topology, features, counters and measured limits\n"
        "(emulated targets marked); end-to-end latency and the speed-up of q8_0 and of the\n"
        "profiles' 4-bit format (q4_k, else q4_0, else the narrowest integer format they all\n"
        "measured) over f16; the same per layer shape, highlighted where quantization does not\n"
        "pay; rooflines; the fronts overlaid; and what bounds each kernel (from counters where\n"
        "the target had them, and a plain statement of what is missing where not).\n\n"
        "Profiles and fronts must be of one model (same content hash and layers) and one\n"
        "workload.\n\n"
        "options:\n"
        "  --fronts FRONT...  front.yaml files (every argument after it, up to the next option)\n"
        "  -o, --out DIR      output folder (default ./mixq-report)\n"
        "  --label NAME       a target's name in the report, once per profile in order\n"
        "                     (default: the backend and its kernel path, e.g. 'cpu avx2')\n"
        "  --no-plots         tables only (no gnuplot run)\n"
        "  -v, -q             more or fewer messages\n"
        "  --help             this text\n");
}

static void print_summary(const struct rpt_cmp *c, const char *dir)
{
    const enum mq_dtype *fmts = c->fmt; /* the compared formats, chosen by rpt_cmp_load */
    char vs[RPT_CMP_N_FORMATS][24];
    for (int k = 1; k < RPT_CMP_N_FORMATS; k++)
        snprintf(vs[k], sizeof(vs[k]), "%s/%s", mq_dtype_name(fmts[k]), mq_dtype_name(fmts[0]));
    printf("%-34s %10s %10s %10s %9s %9s\n", "target (end to end, median us)",
           mq_dtype_name(fmts[0]), mq_dtype_name(fmts[1]), mq_dtype_name(fmts[2]), vs[1], vs[2]);
    for (int t = 0; t < c->n_targets; t++) {
        const struct prof_profile *p = c->targets[t].prof;
        printf("%-34.34s", c->targets[t].label);
        for (int k = 0; k < RPT_CMP_N_FORMATS; k++) {
            double ns = NAN;
            for (int i = 0; i < p->n_e2e; i++)
                if (p->e2e[i].fmt == fmts[k])
                    ns = p->e2e[i].time.median_ns;
            if (ns > 0)
                printf(" %10.1f", ns / 1e3);
            else
                printf(" %10s", "-");
        }
        for (int k = 1; k < RPT_CMP_N_FORMATS; k++) {
            double s = rpt_cmp_e2e_speedup(p, fmts[k]);
            if (s > 0)
                printf(" %8.2fx", s);
            else
                printf(" %9s", "-");
        }
        printf("%s\n", p->target.emulated ? "  EMULATED" : "");
    }
    char note[1024];
    rpt_cmp_low_note(c, note, sizeof(note));
    if (note[0])
        printf("note: %s\n", note);
    printf("wrote %s/report.html and %s/report.md (%d target%s, %d front%s, %d layer shapes)\n",
           dir, dir, c->n_targets, c->n_targets == 1 ? "" : "s", c->n_fronts,
           c->n_fronts == 1 ? "" : "s", c->n_shapes);
}

int cmd_compare(int argc, char **argv)
{
    const char *profiles[RPT_CMP_MAX_TARGETS], *fronts[RPT_CMP_MAX_FRONTS],
        *labels[RPT_CMP_MAX_TARGETS];
    int n_profiles = 0, n_fronts = 0, n_labels = 0;
    const char *out = "mixq-report";
    bool plots = true, in_fronts = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            compare_usage(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--fronts")) {
            in_fronts = true;
            if (!has_value || argv[i + 1][0] == '-')
                return cli_usage_error("compare", "--fronts wants at least one FRONT.yaml");
        } else if (!strncmp(a, "--fronts=", 9)) {
            in_fronts = true;
            if (n_fronts == RPT_CMP_MAX_FRONTS)
                return cli_usage_error("compare", "at most %d fronts", RPT_CMP_MAX_FRONTS);
            fronts[n_fronts++] = a + 9;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (!has_value)
                return cli_usage_error("compare", "%s wants a folder", a);
            out = argv[++i];
            in_fronts = false;
        } else if (!strncmp(a, "--out=", 6)) {
            out = a + 6;
            in_fronts = false;
        } else if (!strcmp(a, "--label")) {
            if (!has_value)
                return cli_usage_error("compare", "--label wants a name");
            if (n_labels == RPT_CMP_MAX_TARGETS)
                return cli_usage_error("compare", "at most %d labels", RPT_CMP_MAX_TARGETS);
            labels[n_labels++] = argv[++i];
            in_fronts = false;
        } else if (!strcmp(a, "--no-plots")) {
            plots = false;
            in_fronts = false;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            mq_log_set_level(MQ_LOG_DEBUG);
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            mq_log_set_level(MQ_LOG_WARN);
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("compare", "option '%s' is unknown", a);
        } else if (in_fronts) {
            if (n_fronts == RPT_CMP_MAX_FRONTS)
                return cli_usage_error("compare", "at most %d fronts", RPT_CMP_MAX_FRONTS);
            fronts[n_fronts++] = a;
        } else {
            if (n_profiles == RPT_CMP_MAX_TARGETS)
                return cli_usage_error("compare", "at most %d profiles", RPT_CMP_MAX_TARGETS);
            profiles[n_profiles++] = a;
        }
    }
    if (!n_profiles)
        return cli_usage_error("compare",
                               "want at least one PROFILE.yaml (mixq profile writes one)");
    if (n_labels && n_labels != n_profiles)
        return cli_usage_error("compare",
                               "%d --label for %d profiles: give one per profile, in order",
                               n_labels, n_profiles);
    if (!*out)
        return cli_usage_error("compare", "-o wants a folder");
    struct rpt_cmp_inputs in = {.profiles = profiles,
                                .n_profiles = n_profiles,
                                .fronts = fronts,
                                .n_fronts = n_fronts,
                                .labels = n_labels ? labels : NULL,
                                .n_labels = n_labels};
    struct rpt_cmp *c = NULL;
    int rc = rpt_cmp_load(&in, &c);
    if (rc == 0)
        rc = cli_make_dir(out);
    if (rc == 0)
        rc = rpt_cmp_write(c, out, plots);
    if (rc == 0)
        print_summary(c, out);
    rpt_cmp_free(c);
    return cli_exit(rc);
}
