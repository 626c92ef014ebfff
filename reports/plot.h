/* reports/plot.h - plots drawn by gnuplot, run as a program on a generated script (never
 * linked). Each plot NAME in a folder is four files:
 *
 *     NAME.dat   the data: one block per series ("x y label" rows), blocks separated by
 *                two blank lines, a comment naming each series
 *     NAME.gp    the gnuplot script, reading NAME.dat by relative path; `gnuplot NAME.gp`
 *                in that folder redraws both images
 *     NAME.png   the image (pngcairo)
 *     NAME.svg   the same as SVG
 *
 * The generic helper takes any number of series (points, lines or both, optional per-point
 * labels, colours, dashes), linear or log axes, vertical and horizontal reference lines
 * with labels, custom x tics, and a legend position:
 *
 *     double x[] = {1, 2, 3}, y[] = {10, 100, 1000};
 *     struct rpt_plot_series s = {.title = "q4_0", .style = RPT_PLOT_LINESPOINTS, .n = 3, .x = x,
 * .y = y}; struct rpt_plot_ref peak = {.axis = RPT_AXIS_Y, .value = 2000, .label = "peak 2000
 * GOP/s"}; struct rpt_plot p = {.name = "demo", .title = "Demo", .xlabel = "layer", .ylabel = "time
 * (us)", .ylog = true, .series = &s, .n_series = 1, .refs = &peak, .n_refs = 1}; if
 * (rpt_plot_write("out", &p) < 0) return -1;     // one line printed
 *
 * Text is drawn as given (no enhanced-text markup: "q4_0" keeps its underscore). A NaN
 * value, and a value <= 0 on a log axis, is a gap: lines break there. Series with no
 * point left are left out of the plot; a plot with no point at all is MQ_EINVAL.
 *
 * Files are written atomically: the .dat and .gp through temporary files renamed into
 * place, the images by gnuplot under temporary names renamed when it succeeded. When
 * gnuplot fails, its own message becomes the one error line (MQ_EIO) and no image is left;
 * when it is not installed, the .dat and .gp are still written and the error (MQ_ENOTFOUND)
 * says how to install it: callers that want a warning instead ask rpt_gnuplot_find first.
 * The program is $MIXQ_GNUPLOT when set, else `gnuplot` on PATH (Debian: gnuplot-nox).
 *
 * The profile plots (a struct prof_profile from profiler/profile.h):
 *   - rpt_plot_layer_times: NAME "layer-times": time per workload run of every layer, one
 *     series per profiled format, log y, layers in file order.
 *   - rpt_plot_roofline: NAME "roofline": every (layer, format) as a point at (arithmetic
 *     intensity = ops per weight byte, achieved GOP/s), ops = 2*K*N*M*calls per run, log-
 *     log, with the measured DRAM read bandwidth line and the measured compute peaks (f32
 *     FMA, int8 and bf16 dot products) as ceilings.
 *
 * The sensitivity and tuning plots are declared at the end of this header.
 *
 * Ownership: everything passed in is borrowed for the duration of the call.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/.
 */
#ifndef MQ_REPORTS_PLOT_H
#define MQ_REPORTS_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include "profiler/profile.h"
#include "search/sensitivity.h"
#include "search/tune.h"

enum rpt_plot_style {
    RPT_PLOT_POINTS,
    RPT_PLOT_LINES,
    RPT_PLOT_LINESPOINTS,
    RPT_PLOT_STEPS, /* a staircase (Pareto fronts): the value holds until the next x */
    RPT_PLOT_STYLE_COUNT
};

struct rpt_plot_series {
    const char *title; /* legend entry; NULL: not in the legend */
    enum rpt_plot_style style;
    int n;                     /* points */
    const double *x, *y;       /* [n] */
    const char *const *labels; /* [n] text beside each point, or NULL; NULL entries: none */
    const char *color;         /* "#rrggbb"; NULL: gnuplot's sequence */
    bool dashed;
};

enum rpt_plot_axis { RPT_AXIS_X, RPT_AXIS_Y };

/* A reference line across the plot: vertical at x = value (RPT_AXIS_X) or horizontal at
 * y = value (RPT_AXIS_Y), dashed, with its label beside it. An automatic range on that
 * axis is widened to show it. */
struct rpt_plot_ref {
    enum rpt_plot_axis axis;
    double value;
    const char *label; /* NULL: none */
    const char *color; /* NULL: dark grey */
};

struct rpt_plot_tic {
    double at;
    const char *label;
};

enum rpt_plot_key {
    RPT_KEY_TOP_RIGHT, /* the default */
    RPT_KEY_TOP_LEFT,
    RPT_KEY_BOTTOM_RIGHT,
    RPT_KEY_BOTTOM_LEFT,
    RPT_KEY_OUTSIDE, /* right of the plot */
    RPT_KEY_BELOW,   /* under the plot, in a row */
    RPT_KEY_ABOVE,   /* between the title and the plot, in a row */
    RPT_KEY_NONE,
    RPT_KEY_COUNT
};

struct rpt_plot {
    const char *name;            /* file stem: letters, digits, '.', '_', '-' */
    const char *title;           /* required */
    const char *subtitle;        /* a second, smaller title line, or NULL */
    const char *xlabel, *ylabel; /* required, with units: "time per run (us)" */
    bool xlog, ylog;
    /* fixed ranges where min < max; otherwise automatic (widened to show reference lines) */
    double xmin, xmax, ymin, ymax;
    const struct rpt_plot_series *series;
    int n_series;
    const struct rpt_plot_ref *refs;
    int n_refs;
    const struct rpt_plot_tic *xtics; /* NULL: gnuplot's */
    int n_xtics;
    bool xtics_vertical; /* x tic labels written upwards (long names) */
    enum rpt_plot_key key;
    int width, height; /* pixels; 0: 1200 x 700 */
    const char *extra; /* gnuplot commands run just before `plot`, or NULL */
};

/* Writes dir/NAME.{dat,gp} and renders dir/NAME.{png,svg}; dir must exist. */
int rpt_plot_write(const char *dir, const struct rpt_plot *p);

/* The gnuplot program into buf: $MIXQ_GNUPLOT if set (it must be executable), else the
 * first `gnuplot` on PATH. MQ_ENOTFOUND, silent, when there is none. */
int rpt_gnuplot_find(char *buf, size_t size);

#define RPT_PLOT_LAYER_TIMES "layer-times"
#define RPT_PLOT_ROOFLINE "roofline"

/* The profile plots described above, into dir. MQ_EINVAL (printed) when the profile has
 * nothing measured to plot. */
int rpt_plot_layer_times(const char *dir, const struct prof_profile *p);
int rpt_plot_roofline(const char *dir, const struct prof_profile *p);

#define RPT_PLOT_SENSITIVITY "sensitivity"
#define RPT_PLOT_FRONT_MEM_LOSS "front-memory-loss"
#define RPT_PLOT_FRONT_LAT_LOSS "front-latency-loss"
#define RPT_PLOT_FRONT_MEM_LAT "front-memory-latency"
#define RPT_PLOT_VALIDATION "validation"
#define RPT_PLOT_PLAN "plan"

/* Sensitivity (search/sensitivity.h), NAME "sensitivity": each layer's loss per format
 * (KL divergence, or the proxy's relative output error), log y, layers in file order.
 * MQ_EINVAL (printed) when no loss is positive. */
int rpt_plot_sensitivity(const char *dir, const struct srch_sensitivity *s);

/* A tuning result (search/tune.h); model names it in the titles.
 *   - rpt_plot_front: the front's three projections, "front-memory-loss",
 *     "front-latency-loss" and "front-memory-latency": every predicted point, the validated
 *     ones where predicted and, where the axes are in measured units (the loss is KL),
 *     where measured; the baselines; the chosen point; the budgets as lines. Then
 *     "validation": measured memory against measured KL of every validated plan and
 *     baseline, coloured by whether it met both budgets as measured.
 *   - rpt_plot_plan: NAME "plan": the chosen plan's format per layer as bits per weight,
 *     the llama.cpp rule dashed beside it. MQ_EINVAL (printed) when nothing was chosen. */
int rpt_plot_front(const char *dir, const char *model, const struct srch_tune *t);
int rpt_plot_plan(const char *dir, const char *model, const struct srch_tune *t);

#endif
