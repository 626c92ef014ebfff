/* reports/plot.c - gnuplot plots: data and script files, gnuplot run as a child process.
 * The contract is in plot.h. */
#include "reports/plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/file.h"
#include "core/status.h"

#define PLOT_DEFAULT_WIDTH 1200
#define PLOT_DEFAULT_HEIGHT 700
#define PLOT_REF_COLOR "#505050"
#define PLOT_MAX_STDERR 8192 /* bytes of gnuplot's messages kept */

/* ---- a growing text buffer with a sticky error ---------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* s as a gnuplot double-quoted string: backslashes and quotes escaped, newlines as \n,
 * other control characters dropped. */
static void sb_quoted(struct sbuf *b, const char *s)
{
    sb_printf(b, "\"");
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '"')
            sb_printf(b, "\\%c", *s);
        else if (*s == '\n')
            sb_printf(b, "\\n");
        else if ((unsigned char)*s >= 0x20)
            sb_printf(b, "%c", *s);
    }
    sb_printf(b, "\"");
}

/* A label in a data file: double-quoted, where gnuplot knows no escapes, so quotes become
 * apostrophes and control characters spaces. */
static void sb_data_label(struct sbuf *b, const char *s)
{
    sb_printf(b, " \"");
    for (; s && *s; s++)
        sb_printf(b, "%c", *s == '"' ? '\'' : (unsigned char)*s < 0x20 ? ' ' : *s);
    sb_printf(b, "\"");
}

/* Writes n bytes to path through a temporary file in the same folder and a rename. */
static int write_file_atomic(const char *path, const char *data, size_t n)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return mq_error(MQ_EIO, "cannot create a temporary file for '%s': %s", path,
                        strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(e));
    }
    errno = 0;
    bool ok = fwrite(data, 1, n, f) == n && fflush(f) == 0 && fchmod(fileno(f), 0644) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            e = errno;
        unlink(tmp);
        return mq_error(MQ_EIO, "cannot write '%s': %s", path, e ? strerror(e) : "short write");
    }
    return MQ_OK;
}

/* ---- validation ----------------------------------------------------------------------- */

static bool name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 200 || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

/* NULL or "#rrggbb" (colours go into the script unquoted by the user). */
static bool color_ok(const char *c)
{
    if (!c)
        return true;
    if (strlen(c) != 7 || c[0] != '#')
        return false;
    for (int i = 1; i < 7; i++)
        if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f') ||
              (c[i] >= 'A' && c[i] <= 'F')))
            return false;
    return true;
}

static int check_plot(const struct rpt_plot *p)
{
    const char *n = p->name ? p->name : "(null)";
    if (!name_ok(p->name))
        return mq_error(MQ_EINVAL, "plot name '%s' is not letters, digits, '.', '_' and '-'", n);
    if (!p->title || !p->xlabel || !p->ylabel)
        return mq_error(MQ_EINVAL, "plot '%s' needs a title and both axis labels", n);
    if (p->n_series < 1 || !p->series)
        return mq_error(MQ_EINVAL, "plot '%s' has no series", n);
    if (p->n_refs < 0 || (p->n_refs > 0 && !p->refs) || p->n_xtics < 0 ||
        (p->n_xtics > 0 && !p->xtics))
        return mq_error(MQ_EINVAL, "plot '%s': reference lines or tics missing", n);
    if ((unsigned)p->key >= RPT_KEY_COUNT)
        return mq_error(MQ_EINVAL, "plot '%s': unknown legend position %d", n, (int)p->key);
    if ((p->width && (p->width < 100 || p->width > 10000)) ||
        (p->height && (p->height < 100 || p->height > 10000)))
        return mq_error(MQ_EINVAL, "plot '%s': size %dx%d is out of range 100..10000", n, p->width,
                        p->height);
    for (int i = 0; i < p->n_series; i++) {
        const struct rpt_plot_series *s = &p->series[i];
        if (s->n < 0 || (s->n > 0 && (!s->x || !s->y)))
            return mq_error(MQ_EINVAL, "plot '%s': series %d has no data", n, i);
        if ((unsigned)s->style >= RPT_PLOT_STYLE_COUNT)
            return mq_error(MQ_EINVAL, "plot '%s': series %d has unknown style %d", n, i,
                            (int)s->style);
        if (!color_ok(s->color))
            return mq_error(MQ_EINVAL, "plot '%s': colour '%s' is not #rrggbb", n, s->color);
    }
    for (int i = 0; i < p->n_refs; i++)
        if (!isfinite(p->refs[i].value) || !color_ok(p->refs[i].color) ||
            (unsigned)p->refs[i].axis > RPT_AXIS_Y)
            return mq_error(MQ_EINVAL, "plot '%s': reference line %d is malformed", n, i);
    for (int i = 0; i < p->n_xtics; i++)
        if (!isfinite(p->xtics[i].at) || !p->xtics[i].label)
            return mq_error(MQ_EINVAL, "plot '%s': x tic %d is malformed", n, i);
    if (!isfinite(p->xmin) || !isfinite(p->xmax) || !isfinite(p->ymin) || !isfinite(p->ymax) ||
        (p->xlog && p->xmin < p->xmax && p->xmin <= 0) ||
        (p->ylog && p->ymin < p->ymax && p->ymin <= 0))
        return mq_error(MQ_EINVAL,
                        "plot '%s': a fixed range is not finite, or not positive on a log axis", n);
    return MQ_OK;
}

static bool value_ok(double v, bool log_axis)
{
    return isfinite(v) && (!log_axis || v > 0);
}

static bool point_ok(const struct rpt_plot *p, const struct rpt_plot_series *s, int i)
{
    return value_ok(s->x[i], p->xlog) && value_ok(s->y[i], p->ylog);
}

static int series_points(const struct rpt_plot *p, const struct rpt_plot_series *s)
{
    int k = 0;
    for (int i = 0; i < s->n; i++)
        k += point_ok(p, s, i);
    return k;
}

/* ---- ranges --------------------------------------------------------------------------- */

/* The range of one axis: the fixed one, or, when reference lines lie on it, the data and
 * the lines with a margin; *fixed false leaves it to gnuplot. */
static void axis_range(const struct rpt_plot *p, enum rpt_plot_axis ax, bool *fixed, double *lo,
                       double *hi)
{
    bool log_axis = ax == RPT_AXIS_X ? p->xlog : p->ylog;
    double set_lo = ax == RPT_AXIS_X ? p->xmin : p->ymin,
           set_hi = ax == RPT_AXIS_X ? p->xmax : p->ymax;
    *fixed = false;
    if (set_lo < set_hi) {
        *fixed = true;
        *lo = set_lo;
        *hi = set_hi;
        return;
    }
    double a = INFINITY, b = -INFINITY;
    int n_refs = 0;
    for (int i = 0; i < p->n_refs; i++)
        if (p->refs[i].axis == ax && value_ok(p->refs[i].value, log_axis)) {
            a = fmin(a, p->refs[i].value);
            b = fmax(b, p->refs[i].value);
            n_refs++;
        }
    if (!n_refs)
        return;
    for (int k = 0; k < p->n_series; k++) {
        const struct rpt_plot_series *s = &p->series[k];
        for (int i = 0; i < s->n; i++)
            if (point_ok(p, s, i)) {
                double v = ax == RPT_AXIS_X ? s->x[i] : s->y[i];
                a = fmin(a, v);
                b = fmax(b, v);
            }
    }
    if (log_axis) {
        double la = log10(a), lb = log10(b), pad = fmax(0.08 * (lb - la), 0.15);
        *lo = pow(10.0, la - pad);
        *hi = pow(10.0, lb + pad);
    } else {
        double pad = b > a ? 0.05 * (b - a) : fmax(fabs(a) * 0.1, 1.0);
        *lo = a - pad;
        *hi = b + pad;
    }
    *fixed = true;
}

/* ---- the files ------------------------------------------------------------------------ */

static const char *const style_words[RPT_PLOT_STYLE_COUNT] = {
    [RPT_PLOT_POINTS] = "points pt 7 ps 0.8",
    [RPT_PLOT_LINES] = "lines lw 2",
    [RPT_PLOT_LINESPOINTS] = "linespoints pt 7 ps 0.6 lw 1.5",
    [RPT_PLOT_STEPS] = "steps lw 2",
};

static const char *const key_words[RPT_KEY_COUNT] = {
    [RPT_KEY_TOP_RIGHT] = "inside top right",       [RPT_KEY_TOP_LEFT] = "inside top left",
    [RPT_KEY_BOTTOM_RIGHT] = "inside bottom right", [RPT_KEY_BOTTOM_LEFT] = "inside bottom left",
    [RPT_KEY_OUTSIDE] = "outside right top",        [RPT_KEY_BELOW] = "below center horizontal",
    [RPT_KEY_ABOVE] = "above center horizontal",    [RPT_KEY_NONE] = NULL,
};

/* The data: one block per series that has points (index = its position among those). */
static void make_data(const struct rpt_plot *p, struct sbuf *b)
{
    sb_printf(b, "# mixq plot data '%s': x y label, one block per series\n", p->name);
    int block = 0;
    for (int k = 0; k < p->n_series; k++) {
        const struct rpt_plot_series *s = &p->series[k];
        if (!series_points(p, s))
            continue;
        if (block++)
            sb_printf(b, "\n\n");
        sb_printf(b, "# series %d: ", block - 1);
        for (const char *c = s->title ? s->title : "(untitled)"; *c; c++)
            sb_printf(b, "%c", *c == '\n' ? ' ' : *c);
        sb_printf(b, "\n");
        bool gap = false, any = false;
        for (int i = 0; i < s->n; i++) {
            if (!point_ok(p, s, i)) {
                gap = any; /* one blank line breaks a line; never two in a row (a new block) */
                continue;
            }
            if (gap)
                sb_printf(b, "\n");
            gap = false;
            any = true;
            sb_printf(b, "%.9g %.9g", s->x[i], s->y[i]);
            sb_data_label(b, s->labels && s->labels[i] ? s->labels[i] : "");
            sb_printf(b, "\n");
        }
    }
}

static void make_script(const struct rpt_plot *p, struct sbuf *b)
{
    int w = p->width ? p->width : PLOT_DEFAULT_WIDTH,
        h = p->height ? p->height : PLOT_DEFAULT_HEIGHT;
    sb_printf(b, "# mixq plot '%s'. Redraw in this folder with: gnuplot %s.gp\n", p->name, p->name);
    sb_printf(b, "# (writes %s.png and %s.svg; the data are in %s.dat)\n", p->name, p->name,
              p->name);
    sb_printf(b, "if (!exists(\"out\")) out = \"%s\"\n", p->name);
    sb_printf(b, "set terminal pngcairo size %d,%d noenhanced font \",10\"\n", w, h);
    sb_printf(b, "set output out.\".png\"\n");
    sb_printf(b, "set encoding utf8\n");
    sb_printf(b, "set title ");
    sb_quoted(b, p->title);
    if (p->subtitle) {
        sb_printf(b, ".\"\\n\".");
        sb_quoted(b, p->subtitle);
    }
    sb_printf(b, "\nset xlabel ");
    sb_quoted(b, p->xlabel);
    sb_printf(b, "\nset ylabel ");
    sb_quoted(b, p->ylabel);
    sb_printf(b, "\n");
    if (p->xlog)
        sb_printf(b, "set logscale x 10\n");
    if (p->ylog)
        sb_printf(b, "set logscale y 10\n");
    sb_printf(b, "set format x \"%%g\"\nset format y \"%%g\"\n");
    sb_printf(
        b, "set grid xtics ytics%s%s lt 1 lw 1 lc rgb \"#dddddd\", lt 1 lw 1 lc rgb \"#f0f0f0\"\n",
        p->xlog ? " mxtics" : "", p->ylog ? " mytics" : "");
    if (key_words[p->key])
        sb_printf(b, "set key %s opaque box lc rgb \"#cccccc\" samplen 2 spacing 1.1\n",
                  key_words[p->key]);
    else
        sb_printf(b, "set key off\n");
    for (int ax = RPT_AXIS_X; ax <= RPT_AXIS_Y; ax++) {
        bool fixed;
        double lo, hi;
        axis_range(p, (enum rpt_plot_axis)ax, &fixed, &lo, &hi);
        if (fixed)
            sb_printf(b, "set %srange [%.9g:%.9g]\n", ax == RPT_AXIS_X ? "x" : "y", lo, hi);
    }
    if (p->n_xtics) {
        sb_printf(b, "set xtics (");
        for (int i = 0; i < p->n_xtics; i++) {
            sb_printf(b, "%s", i ? ", " : "");
            sb_quoted(b, p->xtics[i].label);
            sb_printf(b, " %.9g", p->xtics[i].at);
        }
        sb_printf(b, ")%s\n", p->xtics_vertical ? " rotate by 90 right" : "");
    }
    for (int i = 0; i < p->n_refs; i++) {
        const struct rpt_plot_ref *r = &p->refs[i];
        const char *c = r->color ? r->color : PLOT_REF_COLOR;
        if (r->axis == RPT_AXIS_X)
            sb_printf(
                b,
                "set arrow %d from first %.9g, graph 0 to first %.9g, graph 1 nohead dt 2 lw 1.5 "
                "lc rgb \"%s\" front\n",
                i + 1, r->value, r->value, c);
        else
            sb_printf(
                b,
                "set arrow %d from graph 0, first %.9g to graph 1, first %.9g nohead dt 2 lw 1.5 "
                "lc rgb \"%s\" front\n",
                i + 1, r->value, r->value, c);
        if (!r->label)
            continue;
        sb_printf(b, "set label %d ", i + 1);
        sb_quoted(b, r->label);
        if (r->axis == RPT_AXIS_X)
            sb_printf(b, " at first %.9g, graph 0.97 rotate by 90 right offset character -0.8,0",
                      r->value);
        else if (p->key == RPT_KEY_TOP_LEFT ||
                 p->key == RPT_KEY_BOTTOM_LEFT) /* away from the legend */
            sb_printf(b, " at graph 0.99, first %.9g right offset character 0,0.7", r->value);
        else
            sb_printf(b, " at graph 0.01, first %.9g left offset character 0,0.7", r->value);
        sb_printf(b, " tc rgb \"%s\" front\n", c);
    }
    if (p->extra)
        sb_printf(b, "%s\n", p->extra);
    sb_printf(b, "data = \"%s.dat\"\nplot ", p->name);
    int block = 0, n_plotted = 0;
    for (int k = 0; k < p->n_series; k++) {
        const struct rpt_plot_series *s = &p->series[k];
        if (!series_points(p, s))
            continue;
        char color[32] = "";
        if (s->color)
            snprintf(color, sizeof(color), " lc rgb \"%s\"", s->color);
        sb_printf(b, "%sdata index %d using 1:2 with %s%s%s", n_plotted++ ? ", \\\n     " : "",
                  block, style_words[s->style], s->dashed ? " dt 2" : "", color);
        if (s->title) {
            sb_printf(b, " title ");
            sb_quoted(b, s->title);
        } else {
            sb_printf(b, " notitle");
        }
        if (s->labels) {
            sb_printf(
                b,
                ", \\\n     data index %d using 1:2:3 with labels left offset character 0.6,0.5 "
                "font \",8\"",
                block);
            if (s->color)
                sb_printf(b, " tc rgb \"%s\"", s->color);
            sb_printf(b, " notitle");
        }
        block++;
    }
    sb_printf(b, "\nset terminal svg size %d,%d noenhanced font \",10\" background \"#ffffff\"\n",
              w, h);
    sb_printf(b, "set output out.\".svg\"\nreplot\nunset output\n");
}

/* ---- running gnuplot ------------------------------------------------------------------ */

int rpt_gnuplot_find(char *buf, size_t size)
{
    const char *env = getenv("MIXQ_GNUPLOT");
    if (env && *env) {
        if (!mq_file_executable(env))
            return MQ_ENOTFOUND;
        snprintf(buf, size, "%s", env);
        return MQ_OK;
    }
    return mq_file_find_in_path("gnuplot", buf, size);
}

/* The line of gnuplot's messages that says what went wrong: the last one naming a script
 * line ("...gp" line 12: ...), else the last non-empty one; trimmed, in place. */
static const char *error_line(char *msg)
{
    char *best = NULL, *last = NULL;
    for (char *line = msg; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *t = line;
        while (*t == ' ' || *t == '\t' || *t == '\r')
            t++;
        size_t len = strlen(t);
        while (len && (t[len - 1] == ' ' || t[len - 1] == '\r' || t[len - 1] == '.'))
            t[--len] = '\0';
        if (len && strcmp(t, "^") != 0) {
            last = t;
            char *l = strstr(t, "\" line ");
            if (l)
                best = l + 2; /* "line 12: ..." */
        }
        line = nl ? nl + 1 : NULL;
    }
    return best ? best : last ? last : "no message";
}

/* Runs `gnuplot -e 'out="STEM"' NAME.gp` in dir; on failure prints gnuplot's message. */
static int run_gnuplot(const char *gnuplot, const char *dir, const char *name, const char *stem)
{
    char script[256], setout[300];
    snprintf(script, sizeof(script), "%s.gp", name);
    snprintf(setout, sizeof(setout), "out=\"%s\"", stem);
    char *const argv[] = {(char *)"gnuplot", (char *)"-e", setout, script, NULL};
    int fds[2];
    if (pipe(fds) != 0)
        return mq_error(MQ_EIO, "cannot run gnuplot: pipe: %s", strerror(errno));
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return mq_error(MQ_EIO, "cannot run gnuplot: fork: %s", strerror(e));
    }
    if (pid == 0) { /* only async-signal-safe calls from here */
        int null = open("/dev/null", O_RDWR);
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(fds[1], 2) < 0 ||
            chdir(dir) != 0)
            _exit(126);
        close(fds[0]);
        execv(gnuplot, argv);
        _exit(127);
    }
    close(fds[1]);
    char msg[PLOT_MAX_STDERR + 1];
    size_t len = 0;
    for (;;) {
        char chunk[1024];
        ssize_t n = read(fds[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t k = (size_t)n < PLOT_MAX_STDERR - len ? (size_t)n : PLOT_MAX_STDERR - len;
        memcpy(msg + len, chunk, k);
        len += k;
    }
    msg[len] = '\0';
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return mq_error(MQ_EIO, "cannot run gnuplot: waitpid: %s", strerror(errno));
    }
    if (WIFSIGNALED(st))
        return mq_error(MQ_EIO, "gnuplot on '%s/%s' was killed by signal %d", dir, script,
                        WTERMSIG(st));
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    if (code == 126 || code == 127)
        return mq_error(MQ_EIO, "cannot run '%s' in '%s'%s%s", gnuplot, dir, len ? ": " : "",
                        len ? error_line(msg) : "");
    if (code != 0)
        return mq_error(MQ_EIO, "gnuplot failed on '%s/%s': %s", dir, script, error_line(msg));
    if (len)
        mq_debug("gnuplot on '%s/%s' said: %s", dir, script, error_line(msg));
    return MQ_OK;
}

int rpt_plot_write(const char *dir, const struct rpt_plot *p)
{
    struct sbuf data = {0}, script = {0};
    char path[4096], stem_path[4096] = "", tmp_png[4200] = "", tmp_svg[4200] = "", gnuplot[4096];
    int stem_fd = -1;
    int rc = check_plot(p);
    if (rc < 0)
        return rc;
    int n_points = 0;
    for (int k = 0; k < p->n_series; k++)
        n_points += series_points(p, &p->series[k]);
    if (!n_points)
        return mq_error(MQ_EINVAL, "plot '%s' has no data points%s", p->name,
                        p->xlog || p->ylog ? " (values <= 0 cannot go on a log axis)" : "");
    make_data(p, &data);
    make_script(p, &script);
    if (data.oom || script.oom) {
        rc = mq_error(MQ_ENOMEM, "out of memory writing plot '%s'", p->name);
        goto done;
    }
    snprintf(path, sizeof(path), "%s/%s.dat", dir, p->name);
    if ((rc = write_file_atomic(path, data.p, data.len)) < 0)
        goto done;
    snprintf(path, sizeof(path), "%s/%s.gp", dir, p->name);
    if ((rc = write_file_atomic(path, script.p, script.len)) < 0)
        goto done;

    if (rpt_gnuplot_find(gnuplot, sizeof(gnuplot)) < 0) {
        const char *env = getenv("MIXQ_GNUPLOT");
        if (env && *env)
            rc = mq_error(MQ_ENOTFOUND,
                          "cannot draw '%s/%s.png': MIXQ_GNUPLOT '%s' is not an executable "
                          "program (data and script are in '%s/%s.dat' and '.gp')",
                          dir, p->name, env, dir, p->name);
        else
            rc = mq_error(MQ_ENOTFOUND,
                          "cannot draw '%s/%s.png': gnuplot is not installed (Debian: apt-get "
                          "install gnuplot-nox); data and script are in '%s/%s.dat' and '.gp'",
                          dir, p->name, dir, p->name);
        goto done;
    }
    /* gnuplot writes STEM.png and STEM.svg under a unique temporary stem, renamed after */
    snprintf(stem_path, sizeof(stem_path), "%s/%s.tmp-XXXXXX", dir, p->name);
    stem_fd = mkstemp(stem_path);
    if (stem_fd < 0) {
        rc = mq_error(MQ_EIO, "cannot create a temporary file in '%s': %s", dir, strerror(errno));
        stem_path[0] = '\0';
        goto done;
    }
    snprintf(tmp_png, sizeof(tmp_png), "%s.png", stem_path);
    snprintf(tmp_svg, sizeof(tmp_svg), "%s.svg", stem_path);
    const char *stem = strrchr(stem_path, '/') + 1;
    if ((rc = run_gnuplot(gnuplot, dir, p->name, stem)) < 0)
        goto done;
    const char *outs[2] = {tmp_png, tmp_svg}, *exts[2] = {"png", "svg"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s.%s", dir, p->name, exts[i]);
        struct stat st;
        if (stat(outs[i], &st) != 0 || st.st_size == 0) {
            rc = mq_error(MQ_EIO, "gnuplot wrote no '%s'", path);
            goto done;
        }
        if (rename(outs[i], path) != 0) {
            rc = mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(errno));
            goto done;
        }
    }
done:
    if (stem_fd >= 0) {
        close(stem_fd);
        unlink(stem_path);
        unlink(tmp_png); /* left only on failure */
        unlink(tmp_svg);
    }
    free(data.p);
    free(script.p);
    return rc;
}

/* ---- profile plots -------------------------------------------------------------------- */

/* One colour per format, the same in every plot. */
static const char *const format_colors[MQ_DTYPE_COUNT] = {
    [MQ_DTYPE_F32] = "#555555",   [MQ_DTYPE_F16] = "#1f77b4",   [MQ_DTYPE_BF16] = "#9467bd",
    [MQ_DTYPE_Q8_0] = "#2ca02c",  [MQ_DTYPE_Q6_K] = "#17becf",  [MQ_DTYPE_Q5_K] = "#bcbd22",
    [MQ_DTYPE_Q5_1] = "#dbdb8d",  [MQ_DTYPE_Q5_0] = "#c7c7c7",  [MQ_DTYPE_Q4_K] = "#ff7f0e",
    [MQ_DTYPE_Q4_1] = "#ffbb78",  [MQ_DTYPE_Q4_0] = "#d62728",  [MQ_DTYPE_IQ4_NL] = "#e377c2",
    [MQ_DTYPE_IQ4_XS] = "#f7b6d2", [MQ_DTYPE_Q3_K] = "#8c564b", [MQ_DTYPE_Q2_K] = "#7f7f7f",
    [MQ_DTYPE_Q8_K] = "#000000",  [MQ_DTYPE_I32] = "#000000",
};

static double layer_ns(const struct prof_profile *p, int l, int f)
{
    return p->layer_ns[(size_t)l * MQ_DTYPE_COUNT + (size_t)f];
}

/* Formats with at least one layer measured (> 0 ns): their count, into fmts. */
static int measured_formats(const struct prof_profile *p, int fmts[MQ_DTYPE_COUNT])
{
    int n = 0;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        if (p->formats && !((p->formats >> f) & 1u))
            continue;
        for (int l = 0; l < p->n_layers; l++)
            if (isfinite(layer_ns(p, l, f)) && layer_ns(p, l, f) > 0) {
                fmts[n++] = f;
                break;
            }
    }
    return n;
}

/* The title (what, of which model) and the subtitle (where and how it was measured). */
static void profile_titles(const struct prof_profile *p, const char *what, const int *fmts,
                           int n_fmt, char *title, size_t tsize, char *sub, size_t ssize)
{
    const char *model = p->model_name[0] ? p->model_name : p->model_path;
    const char *slash = p->model_name[0] ? NULL : strrchr(model, '/');
    snprintf(title, tsize, "%s: %.200s", what,
             slash      ? slash + 1
             : model[0] ? model
                        : "(unnamed model)");
    int n_warm = 0;
    for (int i = 0; i < n_fmt; i++)
        n_warm += (p->warm_formats >> fmts[i]) & 1u;
    snprintf(sub, ssize, "%s backend, %d thread%s%s%s, workload %s, %s",
             p->target.backend[0] ? p->target.backend : "?", p->target.threads,
             p->target.threads == 1 ? "" : "s", p->target.cpu[0] ? " on " : "", p->target.cpu,
             p->workload.label[0] ? p->workload.label : "?",
             n_warm == 0       ? "cold caches (weights streamed from memory)"
             : n_warm == n_fmt ? "warm caches"
                               : "warm caches where the legend says so");
}

static const char *warm_note(const struct prof_profile *p, int f)
{
    return (p->warm_formats >> f) & 1u ? ", warm" : "";
}

#define TIC_LABEL_BYTES 48

/* The short name of a layer for a tic: without its ".weight" suffix. */
static void tic_name(char *buf, const char *name)
{
    snprintf(buf, TIC_LABEL_BYTES, "%s", name);
    char *dot = strstr(buf, ".weight");
    if (dot && dot[7] == '\0')
        *dot = '\0';
}

/* x tics for a per-layer plot (layer l at x = l): every layer's name for small models;
 * otherwise where each block starts (and the layers outside blocks), thinned to about 32.
 * Returns how many were written into tics (tic_text holds their text). */
static int layer_tics(char (*names)[MQ_GGUF_MAX_NAME + 1], int L, struct rpt_plot_tic *tics,
                      char (*tic_text)[TIC_LABEL_BYTES], bool *vertical)
{
    int n_tics = 0, n_blocks = 0, prev = -2;
    for (int l = 0; l < L; l++) {
        int b = -1;
        if (sscanf(names[l], "blk.%d.", &b) != 1)
            b = -1;
        n_blocks += b >= 0 && b != prev;
        prev = b;
    }
    *vertical = false;
    if (L <= 40) {
        for (int l = 0; l < L; l++) {
            tic_name(tic_text[l], names[l]);
            tics[n_tics++] = (struct rpt_plot_tic){.at = l, .label = tic_text[l]};
        }
        *vertical = true;
    } else if (n_blocks > 0) {
        int every = (n_blocks + 31) / 32;
        double gap = L / 48.0, last_at = -1e9; /* labels closer than this would overlap */
        prev = -2;
        for (int l = 0; l < L; l++) {
            int b = -1;
            if (sscanf(names[l], "blk.%d.", &b) != 1)
                b = -1;
            bool start = b != prev;
            prev = b;
            if (!start || (b >= 0 && b % every) || l - last_at < gap)
                continue;
            int next = -1; /* a block starting just after a lone layer takes the tic */
            if (b < 0 && l + 1 < L && sscanf(names[l + 1], "blk.%d.", &next) == 1 &&
                next % every == 0)
                continue;
            last_at = l;
            if (b >= 0)
                snprintf(tic_text[l], TIC_LABEL_BYTES, "blk.%d", b);
            else
                tic_name(tic_text[l], names[l]);
            tics[n_tics++] = (struct rpt_plot_tic){.at = l, .label = tic_text[l]};
        }
        *vertical = true;
    }
    return n_tics;
}

/* The per-layer plots (layer times, sensitivity): one log-scale line per format over the
 * layers in file order, tics where blocks start. y: [n_fmt][L], NaN for a gap; titles[i]
 * names series i. Borrows everything. */
static int write_per_layer(const char *dir, const char *name, char (*names)[MQ_GGUF_MAX_NAME + 1], int L,
                           const int *fmts, int n_fmt, const double *y, char (*titles)[96], const char *title,
                           const char *sub, const char *ylabel)
{
    double *x = malloc((size_t)L * sizeof(*x));
    struct rpt_plot_series *series = calloc((size_t)n_fmt, sizeof(*series));
    struct rpt_plot_tic *tics = calloc((size_t)L, sizeof(*tics));
    char(*tic_text)[TIC_LABEL_BYTES] = calloc((size_t)L, sizeof(*tic_text));
    int rc;
    if (!x || !series || !tics || !tic_text) {
        rc = mq_error(MQ_ENOMEM, "out of memory plotting %s", name);
        goto done;
    }
    for (int l = 0; l < L; l++)
        x[l] = l;
    for (int i = 0; i < n_fmt; i++)
        series[i] = (struct rpt_plot_series){.title = titles[i],
                                             .style = RPT_PLOT_LINESPOINTS,
                                             .n = L,
                                             .x = x,
                                             .y = y + (size_t)i * (size_t)L,
                                             .color = format_colors[fmts[i]]};
    bool vertical = false;
    int n_tics = layer_tics(names, L, tics, tic_text, &vertical);
    struct rpt_plot plot = {
        .name = name,
        .title = title,
        .subtitle = sub,
        .xlabel = L <= 40 ? "layer (file order)" : "layer (file order; tics where blocks start)",
        .ylabel = ylabel,
        .ylog = true,
        .xmin = -0.5,
        .xmax = L - 0.5,
        .series = series,
        .n_series = n_fmt,
        .xtics = n_tics ? tics : NULL,
        .n_xtics = n_tics,
        .xtics_vertical = vertical,
        .key = RPT_KEY_ABOVE,
    };
    rc = rpt_plot_write(dir, &plot);
done:
    free(x);
    free(series);
    free(tics);
    free(tic_text);
    return rc;
}

int rpt_plot_layer_times(const char *dir, const struct prof_profile *p)
{
    int fmts[MQ_DTYPE_COUNT];
    int n_fmt = measured_formats(p, fmts), L = p->n_layers;
    if (!n_fmt || L < 1)
        return mq_error(MQ_EINVAL, "profile of '%s' has no measured layer to plot", p->model_path);
    double *y = malloc((size_t)L * (size_t)n_fmt * sizeof(*y));
    if (!y)
        return mq_error(MQ_ENOMEM, "out of memory plotting '%s'", p->model_path);
    char titles[MQ_DTYPE_COUNT][96];
    for (int i = 0; i < n_fmt; i++) {
        int f = fmts[i], n = 0;
        double sum = 0;
        for (int l = 0; l < L; l++) {
            double ns = layer_ns(p, l, f);
            y[(size_t)i * (size_t)L + (size_t)l] = ns > 0 ? ns / 1e3 : NAN; /* NaN: not run (gap) */
            if (ns > 0 && isfinite(ns)) {
                sum += ns;
                n++;
            }
        }
        snprintf(titles[i], sizeof(titles[i]), "%s (%d layers, sum %.4g ms%s)",
                 mq_dtype_name((enum mq_dtype)f), n, sum / 1e6, warm_note(p, f));
    }
    char title[512], sub[512];
    profile_titles(p, "Time per layer and format", fmts, n_fmt, title, sizeof(title), sub,
                   sizeof(sub));
    int rc = write_per_layer(dir, RPT_PLOT_LAYER_TIMES, p->layer_names, L, fmts, n_fmt, y, titles, title, sub,
                             "time per workload run (us)");
    free(y);
    return rc;
}

/* Columns (M x calls) of layer l's matmul in one workload run, as the runner's layer_work
 * counts them; NaN when unknown. ONNX layers take M from the profile's measurement of
 * their shape. */
static double layer_columns(const struct prof_profile *p, int l)
{
    switch (p->workload.kind) {
    case MQ_WL_DECODE: return 1;
    case MQ_WL_PREFILL: return (double)p->workload.prompt;
    case MQ_WL_GENERATE: return (double)(p->workload.prompt + p->workload.gen);
    case MQ_WL_INFER:
        for (int i = 0; i < p->n_costs; i++)
            if (p->costs[i].K == p->layer_in[l] && p->costs[i].N == p->layer_out[l])
                return (double)p->costs[i].M;
        return NAN;
    }
    return NAN;
}

int rpt_plot_roofline(const char *dir, const struct prof_profile *p)
{
    int fmts[MQ_DTYPE_COUNT];
    int n_fmt = measured_formats(p, fmts), L = p->n_layers;
    if (!n_fmt || L < 1)
        return mq_error(MQ_EINVAL, "profile of '%s' has no measured layer to plot", p->model_path);
    double *xy = malloc((size_t)L * (size_t)n_fmt * 2 * sizeof(*xy));
    struct rpt_plot_series *series = calloc((size_t)n_fmt + 1, sizeof(*series));
    if (!xy || !series) {
        free(xy);
        free(series);
        return mq_error(MQ_ENOMEM, "out of memory plotting '%s'", p->model_path);
    }
    char titles[MQ_DTYPE_COUNT + 1][96];
    double xlo = INFINITY, xhi = 0, ylo = INFINITY, yhi = 0;
    int n_series = 0;
    for (int i = 0; i < n_fmt; i++) {
        int f = fmts[i], n = 0;
        const struct mq_dtype_traits *tr = mq_dtype_get((enum mq_dtype)f);
        double *x = xy + (size_t)i * (size_t)L * 2, *y = x + L;
        for (int l = 0; l < L; l++) {
            double ns = layer_ns(p, l, f), cols = layer_columns(p, l);
            int64_t K = p->layer_in[l], N = p->layer_out[l];
            x[n] = y[n] = NAN;
            if (!(ns > 0) || !isfinite(ns) || !(cols > 0) || K < 1 || N < 1 || K % tr->block_elems)
                continue;
            double ops = 2.0 * (double)K * (double)N * cols;
            double bytes = (double)(K / tr->block_elems) * (double)tr->block_bytes * (double)N;
            x[n] = ops / bytes;
            y[n] = ops / ns; /* ops per ns = GOP/s */
            xlo = fmin(xlo, x[n]);
            xhi = fmax(xhi, x[n]);
            ylo = fmin(ylo, y[n]);
            yhi = fmax(yhi, y[n]);
            n++;
        }
        if (!n)
            continue;
        int k = n_series++;
        snprintf(titles[k], sizeof(titles[k]), "%s (%d layers%s)", tr->name, n, warm_note(p, f));
        series[k] = (struct rpt_plot_series){.title = titles[k],
                                             .style = RPT_PLOT_POINTS,
                                             .n = n,
                                             .x = x,
                                             .y = y,
                                             .color = format_colors[f]};
    }
    if (!n_series) {
        free(xy);
        free(series);
        return mq_error(MQ_EINVAL, "profile of '%s' has no layer whose work is known to plot",
                        p->model_path);
    }
    /* ceilings: compute peaks as horizontal lines, DRAM bandwidth as the slope up to the
     * highest of them */
    const struct prof_target *t = &p->target;
    struct rpt_plot_ref refs[3];
    char ref_text[3][96];
    int n_refs = 0;
    struct {
        double v;
        const char *what, *unit, *isa;
    } peaks[3] = {
        {t->fma_gflops, "f32 FMA peak", "GFLOP/s", t->fma_isa},
        {t->int8_gops, "int8 dot-product peak", "GOP/s", t->int8_isa},
        {t->bf16_gflops, "bf16 dot-product peak", "GFLOP/s", NULL},
    };
    double top = 0;
    for (int i = 0; i < 3; i++) {
        if (!(peaks[i].v > 0) || !isfinite(peaks[i].v))
            continue;
        snprintf(ref_text[n_refs], sizeof(ref_text[n_refs]), "%s %.4g %s%s%s%s", peaks[i].what,
                 peaks[i].v, peaks[i].unit, peaks[i].isa && peaks[i].isa[0] ? " (" : "",
                 peaks[i].isa ? peaks[i].isa : "", peaks[i].isa && peaks[i].isa[0] ? ")" : "");
        refs[n_refs] = (struct rpt_plot_ref){
            .axis = RPT_AXIS_Y, .value = peaks[i].v, .label = ref_text[n_refs]};
        n_refs++;
        top = fmax(top, peaks[i].v);
    }
    double bw = t->dram_read_gbs;
    if (bw > 0 && isfinite(bw)) {
        xhi = fmax(xhi, top > 0 ? top / bw : 0); /* show the ridge point */
        yhi = fmax(yhi, fmin(bw * xhi, top > 0 ? top : INFINITY));
    }
    yhi = fmax(yhi, top);
    xlo /= 3;
    xhi *= 3;
    ylo /= 3;
    yhi *= 2.5;
    double bw_x[2] = {xlo, top > 0 ? fmin(xhi, top / bw) : xhi}, bw_y[2];
    char bw_title[96];
    if (bw > 0 && isfinite(bw)) {
        bw_y[0] = bw * bw_x[0];
        bw_y[1] = bw * bw_x[1];
        snprintf(bw_title, sizeof(bw_title), "DRAM read bandwidth %.4g GB/s (measured)", bw);
        series[n_series++] = (struct rpt_plot_series){.title = bw_title,
                                                      .style = RPT_PLOT_LINES,
                                                      .n = 2,
                                                      .x = bw_x,
                                                      .y = bw_y,
                                                      .color = "#303030",
                                                      .dashed = true};
        ylo = fmin(ylo, bw_y[0]);
    }
    char title[512], sub[512];
    profile_titles(p, "Roofline of every layer and format", fmts, n_fmt, title, sizeof(title), sub,
                   sizeof(sub));
    struct rpt_plot plot = {
        .name = RPT_PLOT_ROOFLINE,
        .title = title,
        .subtitle = sub,
        .xlabel = "arithmetic intensity (ops per weight byte)",
        .ylabel = "achieved throughput (GOP/s)",
        .xlog = true,
        .ylog = true,
        .xmin = xlo,
        .xmax = xhi,
        .ymin = ylo,
        .ymax = yhi,
        .series = series,
        .n_series = n_series,
        .refs = refs,
        .n_refs = n_refs,
        .key = RPT_KEY_BOTTOM_RIGHT,
    };
    int rc = rpt_plot_write(dir, &plot);
    free(xy);
    free(series);
    return rc;
}

/* ---- sensitivity and tuning plots ------------------------------------------------------- */

int rpt_plot_sensitivity(const char *dir, const struct srch_sensitivity *s)
{
    int L = s->n_layers, fmts[MQ_DTYPE_COUNT], n_fmt = 0;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        if (!((s->formats >> f) & 1u))
            continue;
        for (int l = 0; l < L; l++) {
            double v = s->loss[(size_t)l * MQ_DTYPE_COUNT + (size_t)f];
            if (isfinite(v) && v > 0) {
                fmts[n_fmt++] = f;
                break;
            }
        }
    }
    if (!n_fmt || L < 1)
        return mq_error(MQ_EINVAL, "sensitivity of '%s' has no positive loss to plot", s->model_path);
    double *y = malloc((size_t)L * (size_t)n_fmt * sizeof(*y));
    if (!y)
        return mq_error(MQ_ENOMEM, "out of memory plotting '%s'", s->model_path);
    char titles[MQ_DTYPE_COUNT][96];
    for (int i = 0; i < n_fmt; i++) {
        int f = fmts[i], worst = -1;
        for (int l = 0; l < L; l++) {
            double v = s->loss[(size_t)l * MQ_DTYPE_COUNT + (size_t)f];
            y[(size_t)i * (size_t)L + (size_t)l] = v;
            if (isfinite(v) && (worst < 0 || v > s->loss[(size_t)worst * MQ_DTYPE_COUNT + (size_t)f]))
                worst = l;
        }
        char worst_name[TIC_LABEL_BYTES];
        tic_name(worst_name, s->names[worst]);
        snprintf(titles[i], sizeof(titles[i]), "%s (most sensitive: %s)", mq_dtype_name((enum mq_dtype)f),
                 worst_name);
    }
    const char *slash = strrchr(s->model_path, '/');
    char title[512], sub[512], ylabel[128];
    snprintf(title, sizeof(title), "Sensitivity per layer and format: %.300s", slash ? slash + 1 : s->model_path);
    const char *data = strrchr(s->data, '/');
    if (s->method == SRCH_SENS_MEASURED) {
        snprintf(sub, sizeof(sub), "measured: that layer alone quantized, mean KL divergence from full precision "
                 "over %lld positions of %.200s", (long long)s->n_samples, data ? data + 1 : s->data);
        snprintf(ylabel, sizeof(ylabel), "KL divergence (nats per token)");
    } else if (s->method == SRCH_SENS_GROUPED) {
        snprintf(sub, sizeof(sub), "grouped: %d groups of layers measured (mean KL divergence over %lld positions "
                 "of %.150s), shared out by each layer's proxy error", s->n_groups, (long long)s->n_samples,
                 data ? data + 1 : s->data);
        snprintf(ylabel, sizeof(ylabel), "estimated KL divergence (nats per token)");
    } else if (s->method == SRCH_SENS_CALIBRATED) {
        snprintf(sub, sizeof(sub), "calibrated: weight error mapped to KL by a fit to %d measured group points "
                 "(%lld positions of %.150s); leave-one-out Spearman %.2f", s->n_points, (long long)s->n_samples,
                 data ? data + 1 : s->data, s->rank_corr);
        snprintf(ylabel, sizeof(ylabel), "predicted KL divergence (nats per token)");
    } else {
        snprintf(sub, sizeof(sub), "proxy: the layer's own relative output error on activations captured "
                 "from %.200s", data ? data + 1 : s->data);
        snprintf(ylabel, sizeof(ylabel), "relative output error ||dY||^2 / ||Y||^2");
    }
    int rc = write_per_layer(dir, RPT_PLOT_SENSITIVITY, s->names, L, fmts, n_fmt, y, titles, title, sub, ylabel);
    free(y);
    return rc;
}

/* A unit for an axis whose largest value is max: bytes as MB or GB, ns as us or ms. */
struct axis_unit {
    double div;
    const char *name;
};

static struct axis_unit mem_unit(double max)
{
    return max >= 2e9 ? (struct axis_unit){1e9, "GB"} : (struct axis_unit){1e6, "MB"};
}

static struct axis_unit lat_unit(double max)
{
    return max >= 2e6 ? (struct axis_unit){1e6, "ms"} : (struct axis_unit){1e3, "us"};
}

enum tune_axis { AX_MEM, AX_LAT, AX_LOSS };

static double pred_value(const struct srch_point *pt, enum tune_axis a)
{
    return a == AX_MEM ? pt->mem : a == AX_LAT ? pt->lat : pt->loss;
}

static double cand_pred(const struct srch_candidate *c, enum tune_axis a)
{
    return a == AX_MEM ? c->pred_mem : a == AX_LAT ? c->pred_lat : c->pred_loss;
}

static double cand_measured(const struct srch_candidate *c, enum tune_axis a)
{
    return a == AX_MEM ? c->mem : a == AX_LAT ? srch_cand_lat(c) : c->loss;
}

static const char *short_label(const struct srch_candidate *c)
{
    if (!strncmp(c->label, "llama.cpp", 9))
        return "llama.cpp rule";
    return c->label;
}

/* One projection of the front: the predicted points, the validated ones where predicted
 * and where measured (when the axes are measured in the same units as predicted), the
 * baselines and the chosen point, with the budget lines. */
static int plot_projection(const char *dir, const char *name, const char *model, const struct srch_tune *t,
                           enum tune_axis ax, enum tune_axis ay, bool measured_units, const char *title_what)
{
    const struct srch_front *f = t->front;
    int n = f->n, nc = t->n_cand;
    double xmax = 0, ymax = 0;
    for (int i = 0; i < n; i++) {
        xmax = fmax(xmax, pred_value(&f->pts[i], ax));
        ymax = fmax(ymax, pred_value(&f->pts[i], ay));
    }
    for (int i = 0; i < nc; i++) {
        xmax = fmax(xmax, cand_measured(&t->cand[i], ax));
        ymax = fmax(ymax, cand_measured(&t->cand[i], ay));
    }
    struct axis_unit ux = ax == AX_MEM ? mem_unit(xmax) : lat_unit(xmax);
    struct axis_unit uy = ay == AX_MEM ? mem_unit(ymax) : ay == AX_LAT ? lat_unit(ymax) : (struct axis_unit){1, ""};
    double *buf = malloc(((size_t)n + 4 * (size_t)nc) * 2 * sizeof(double));
    const char **labels = calloc((size_t)nc * 2 + 1, sizeof(*labels));
    if (!buf || !labels) {
        free(buf);
        free(labels);
        return mq_error(MQ_ENOMEM, "out of memory plotting the front");
    }
    double *fx = buf, *fy = fx + n;
    for (int i = 0; i < n; i++) {
        fx[i] = pred_value(&f->pts[i], ax) / ux.div;
        fy[i] = pred_value(&f->pts[i], ay) / uy.div;
    }
    /* validated front points: predicted and measured; baselines; the chosen one */
    double *vx = fy + n, *vy = vx + nc, *mx = vy + nc, *my = mx + nc, *bx = my + nc, *by = bx + nc;
    double *cx = by + nc, *cy = cx + 1;
    const char **blabels = labels, **clabels = labels + nc;
    int nv = 0, nm = 0, nb = 0, nch = 0;
    bool both = measured_units;
    for (int i = 0; i < nc; i++) {
        const struct srch_candidate *c = &t->cand[i];
        if (c->point >= 0) {
            vx[nv] = cand_pred(c, ax) / ux.div;
            vy[nv] = cand_pred(c, ay) / uy.div;
            nv++;
            if (both) {
                mx[nm] = cand_measured(c, ax) / ux.div;
                my[nm] = cand_measured(c, ay) / uy.div;
                nm++;
            }
        } else {
            bx[nb] = (both ? cand_measured(c, ax) : cand_pred(c, ax)) / ux.div;
            by[nb] = (both ? cand_measured(c, ay) : cand_pred(c, ay)) / uy.div;
            blabels[nb++] = short_label(c);
        }
        if (i == t->chosen) {
            cx[0] = (both ? cand_measured(c, ax) : cand_pred(c, ax)) / ux.div;
            cy[0] = (both ? cand_measured(c, ay) : cand_pred(c, ay)) / uy.div;
            clabels[0] = "chosen";
            nch = 1;
        }
    }
    char t_front[96], t_val[96], t_meas[96], t_base[96];
    snprintf(t_front, sizeof(t_front), "front, predicted (%d points%s)", n, f->exact ? "" : ", epsilon-approximate");
    snprintf(t_val, sizeof(t_val), "validated, predicted (%d)", nv);
    snprintf(t_meas, sizeof(t_meas), "validated, measured (%d)", nm);
    snprintf(t_base, sizeof(t_base), "baselines, %s", both ? "measured" : "predicted");
    struct rpt_plot_series series[5];
    int ns = 0;
    series[ns++] = (struct rpt_plot_series){.title = t_front, .style = RPT_PLOT_POINTS, .n = n, .x = fx, .y = fy,
                                            .color = "#b0b0b0"};
    if (nv)
        series[ns++] = (struct rpt_plot_series){.title = t_val, .style = RPT_PLOT_POINTS, .n = nv, .x = vx,
                                                .y = vy, .color = "#1f77b4"};
    if (nm)
        series[ns++] = (struct rpt_plot_series){.title = t_meas, .style = RPT_PLOT_POINTS, .n = nm, .x = mx,
                                                .y = my, .color = "#ff7f0e"};
    if (nb)
        series[ns++] = (struct rpt_plot_series){.title = t_base, .style = RPT_PLOT_POINTS, .n = nb, .x = bx,
                                                .y = by, .labels = blabels, .color = "#555555"};
    if (nch)
        series[ns++] = (struct rpt_plot_series){.title = both ? "chosen (measured)" : "chosen (predicted)",
                                                .style = RPT_PLOT_POINTS, .n = 1, .x = cx, .y = cy,
                                                .labels = clabels, .color = "#d62728"};
    struct rpt_plot_ref refs[2];
    char ref_text[2][64];
    int nr = 0;
    double budgets[2] = {ax == AX_MEM ? t->mem_budget : t->lat_budget,
                         ay == AX_MEM ? t->mem_budget : ay == AX_LAT ? t->lat_budget : NAN};
    for (int k = 0; k < 2; k++) {
        if (!isfinite(budgets[k]))
            continue;
        struct axis_unit u = k == 0 ? ux : uy;
        snprintf(ref_text[nr], sizeof(ref_text[nr]), "%s budget %.4g %s", (k == 0 ? ax : ay) == AX_MEM ? "memory"
                 : "latency", budgets[k] / u.div, u.name);
        refs[nr] = (struct rpt_plot_ref){.axis = k == 0 ? RPT_AXIS_X : RPT_AXIS_Y, .value = budgets[k] / u.div,
                                         .label = ref_text[nr], .color = "#d62728"};
        nr++;
    }
    char title[512], sub[512], xl[96], yl[96];
    snprintf(title, sizeof(title), "%s: %.300s", title_what, model);
    snprintf(sub, sizeof(sub), "search %s in %.3g s; %d plans measured on the target%s", f->method,
             t->search_seconds, nc, both ? "" : " (measured loss is KL: see validation.png)");
    static const char *const what[] = {"memory", "latency per workload run", ""};
    snprintf(xl, sizeof(xl), "%s (%s)", what[ax], ux.name);
    if (ay == AX_LOSS)
        snprintf(yl, sizeof(yl), "%s loss (%s, sum over layers)", both ? "measured or predicted" : "predicted",
                 t->loss_name);
    else
        snprintf(yl, sizeof(yl), "%s (%s)", what[ay], uy.name);
    struct rpt_plot plot = {
        .name = name,
        .title = title,
        .subtitle = sub,
        .xlabel = xl,
        .ylabel = yl,
        .ylog = ay == AX_LOSS,
        .series = series,
        .n_series = ns,
        .refs = refs,
        .n_refs = nr,
        .key = RPT_KEY_ABOVE,
    };
    int rc = rpt_plot_write(dir, &plot);
    free(buf);
    free(labels);
    return rc;
}

/* Measured memory against measured KL of every validated plan and baseline. */
static int plot_validation(const char *dir, const char *model, const struct srch_tune *t)
{
    int nc = t->n_cand;
    double xmax = 0;
    for (int i = 0; i < nc; i++)
        xmax = fmax(xmax, t->cand[i].mem);
    struct axis_unit ux = mem_unit(xmax);
    double *buf = malloc((size_t)nc * 6 * sizeof(double) + 2 * sizeof(double));
    const char **labels = calloc((size_t)nc + 1, sizeof(*labels));
    if (!buf || !labels) {
        free(buf);
        free(labels);
        return mq_error(MQ_ENOMEM, "out of memory plotting the validation");
    }
    double *px = buf, *py = px + nc, *qx = py + nc, *qy = qx + nc, *bx = qy + nc, *by = bx + nc;
    double *cx = by + nc, *cy = cx + 1;
    int np = 0, nq = 0, nb = 0, nch = 0;
    for (int i = 0; i < nc; i++) {
        const struct srch_candidate *c = &t->cand[i];
        double x = c->mem / ux.div, y = c->loss;
        if (c->point < 0) {
            bx[nb] = x;
            by[nb] = y;
            labels[nb++] = short_label(c);
        } else if (c->meets) {
            px[np] = x;
            py[np++] = y;
        } else {
            qx[nq] = x;
            qy[nq++] = y;
        }
        if (i == t->chosen) {
            cx[0] = x;
            cy[0] = y;
            nch = 1;
        }
    }
    static const char *chosen_label[] = {"chosen"};
    struct rpt_plot_series series[4];
    int ns = 0;
    if (np)
        series[ns++] = (struct rpt_plot_series){.title = "front points meeting both budgets as measured",
                                                .style = RPT_PLOT_POINTS, .n = np, .x = px, .y = py,
                                                .color = "#2ca02c"};
    if (nq)
        series[ns++] = (struct rpt_plot_series){.title = "front points missing a budget as measured",
                                                .style = RPT_PLOT_POINTS, .n = nq, .x = qx, .y = qy,
                                                .color = "#ff7f0e"};
    if (nb)
        series[ns++] = (struct rpt_plot_series){.title = "baselines", .style = RPT_PLOT_POINTS, .n = nb,
                                                .x = bx, .y = by, .labels = labels, .color = "#555555"};
    if (nch)
        series[ns++] = (struct rpt_plot_series){.title = "chosen", .style = RPT_PLOT_POINTS, .n = 1, .x = cx,
                                                .y = cy, .labels = chosen_label, .color = "#d62728"};
    struct rpt_plot_ref ref;
    char ref_text[64];
    int nr = 0;
    if (isfinite(t->mem_budget)) {
        snprintf(ref_text, sizeof(ref_text), "memory budget %.4g %s", t->mem_budget / ux.div, ux.name);
        ref = (struct rpt_plot_ref){.axis = RPT_AXIS_X, .value = t->mem_budget / ux.div, .label = ref_text,
                                    .color = "#d62728"};
        nr = 1;
    }
    char title[512], sub[512], xl[96];
    snprintf(title, sizeof(title), "Measured on the target: %.300s", model);
    if (isfinite(t->lat_budget))
        snprintf(sub, sizeof(sub), "every plan built and run end to end; latency budget %.4g ms (colour says "
                 "which front points met both budgets)", t->lat_budget / 1e6);
    else
        snprintf(sub, sizeof(sub), "every plan built and run end to end");
    snprintf(xl, sizeof(xl), "memory (%s%s)", ux.name, t->cand[0].mem_measured ? ", peak RSS" : ", memory model");
    struct rpt_plot plot = {
        .name = RPT_PLOT_VALIDATION,
        .title = title,
        .subtitle = sub,
        .xlabel = xl,
        .ylabel = "KL divergence from full precision (nats per token)",
        .ylog = true,
        .series = series,
        .n_series = ns,
        .refs = &ref,
        .n_refs = nr,
        .key = RPT_KEY_ABOVE,
    };
    int rc = rpt_plot_write(dir, &plot);
    free(buf);
    free(labels);
    return rc;
}

int rpt_plot_front(const char *dir, const char *model, const struct srch_tune *t)
{
    if (!t->front || t->front->n < 1)
        return mq_error(MQ_EINVAL, "no front to plot");
    bool kl = !strcmp(t->loss_name, "kl");
    int rc = plot_projection(dir, RPT_PLOT_FRONT_MEM_LOSS, model, t, AX_MEM, AX_LOSS, kl,
                             "Pareto front, memory and loss");
    if (rc == MQ_OK)
        rc = plot_projection(dir, RPT_PLOT_FRONT_LAT_LOSS, model, t, AX_LAT, AX_LOSS, kl,
                             "Pareto front, latency and loss");
    if (rc == MQ_OK)
        rc = plot_projection(dir, RPT_PLOT_FRONT_MEM_LAT, model, t, AX_MEM, AX_LAT, true,
                             "Pareto front, memory and latency");
    if (rc == MQ_OK && t->n_cand > 0)
        rc = plot_validation(dir, model, t);
    return rc;
}

/* Bits per weight of a format (block bytes x 8 / block elements). */
static double bits_per_weight(enum mq_dtype f)
{
    const struct mq_dtype_traits *tr = mq_dtype_get(f);
    return 8.0 * (double)tr->block_bytes / (double)tr->block_elems;
}

int rpt_plot_plan(const char *dir, const char *model, const struct srch_tune *t)
{
    if (t->chosen < 0)
        return mq_error(MQ_EINVAL, "no chosen plan to plot");
    const struct mq_plan *p = t->cand[t->chosen].plan, *rule = NULL;
    const char *rule_label = NULL;
    for (int pass = 0; pass < 2 && !rule; pass++) /* llama.cpp's Q4_K_M where validated, else its first preset */
        for (int i = 0; i < t->n_cand && !rule; i++)
            if (!strncmp(t->cand[i].label, pass ? "llama.cpp" : "llama.cpp Q4_K_M", pass ? 9 : 16)) {
                rule = t->cand[i].plan;
                rule_label = t->cand[i].label;
            }
    int L = p->n_layers;
    double *buf = malloc(((size_t)L * (MQ_DTYPE_COUNT * 2 + 2) + 2) * sizeof(double));
    struct rpt_plot_tic *tics = calloc((size_t)L, sizeof(*tics));
    char(*tic_text)[TIC_LABEL_BYTES] = calloc((size_t)L, sizeof(*tic_text));
    int rc;
    if (!buf || !tics || !tic_text) {
        rc = mq_error(MQ_ENOMEM, "out of memory plotting the plan");
        goto done;
    }
    struct rpt_plot_series series[MQ_DTYPE_COUNT + 1];
    char rule_title[160];
    char titles[MQ_DTYPE_COUNT][64];
    int ns = 0;
    double *rx = buf + (size_t)L * MQ_DTYPE_COUNT * 2, *ry = rx + L + 1;
    for (int f = 0; f < MQ_DTYPE_COUNT; f++) {
        double *x = buf + (size_t)f * 2 * (size_t)L, *y = x + L;
        int n = 0;
        for (int l = 0; l < L; l++) {
            if (p->fmt[l] != (enum mq_dtype)f)
                continue;
            x[n] = l;
            y[n++] = bits_per_weight((enum mq_dtype)f);
        }
        if (!n)
            continue;
        snprintf(titles[ns], sizeof(titles[ns]), "%s (%d layer%s)", mq_dtype_name((enum mq_dtype)f), n,
                 n == 1 ? "" : "s");
        series[ns] = (struct rpt_plot_series){.title = titles[ns], .style = RPT_PLOT_POINTS, .n = n, .x = x,
                                              .y = y, .color = format_colors[f]};
        ns++;
    }
    if (rule) {
        for (int l = 0; l <= L; l++) { /* a staircase: layer l's value across [l - 0.5, l + 0.5) */
            rx[l] = l - 0.5;
            ry[l] = bits_per_weight(rule->fmt[l < L ? l : L - 1]);
        }
        snprintf(rule_title, sizeof(rule_title), "%.100s, for comparison", rule_label);
        series[ns++] = (struct rpt_plot_series){.title = rule_title,
                                                .style = RPT_PLOT_STEPS, .n = L + 1, .x = rx, .y = ry,
                                                .color = "#888888", .dashed = true};
    }
    bool vertical = false;
    int n_tics = layer_tics(t->layer_names, L, tics, tic_text, &vertical);
    const struct srch_candidate *c = &t->cand[t->chosen];
    char title[512], sub[512];
    snprintf(title, sizeof(title), "Chosen plan per layer: %.300s", model);
    snprintf(sub, sizeof(sub), "%s: measured %.4g MB, %.4g ms per run, KL %.3g", c->label, c->mem / 1e6,
             srch_cand_lat(c) / 1e6, c->loss);
    struct rpt_plot plot = {
        .name = RPT_PLOT_PLAN,
        .title = title,
        .subtitle = sub,
        .xlabel = L <= 40 ? "layer (file order)" : "layer (file order; tics where blocks start)",
        .ylabel = "bits per weight",
        .ymin = 0,
        .ymax = 18,
        .xmin = -0.5,
        .xmax = L - 0.5,
        .series = series,
        .n_series = ns,
        .xtics = n_tics ? tics : NULL,
        .n_xtics = n_tics,
        .xtics_vertical = vertical,
        .key = RPT_KEY_ABOVE,
    };
    rc = rpt_plot_write(dir, &plot);
done:
    free(buf);
    free(tics);
    free(tic_text);
    return rc;
}
