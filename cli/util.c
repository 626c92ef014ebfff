/* cli/util.c - helpers shared by subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

#include "core/dist.h"
#include "core/dtype.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/status.h"
#include "model/imatrix.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/preset.h"
#include "model/shapes.h"
#include "onnx/onnx.h"
#include "profiler/cache.h"
#include "reports/export.h"
#include "reports/front_io.h"
#include "reports/plan_io.h"
#include "reports/yaml_doc.h"

#ifndef MIXQ_DATADIR
#define MIXQ_DATADIR "."
#endif

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mixq: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'mixq %s --help')\n", cmd);
    va_end(ap);
    return CLI_USAGE;
}

int cli_bad_option(const char *cmd, char **argv)
{
    return cli_usage_error(cmd, "option '%s' is unknown or lacks its argument", argv[optind - 1]);
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_usage_error(cmd, "%s wants an integer in %lld..%lld, not '%s'", opt, lo, hi, s);
    *out = v;
    return CLI_OK;
}

int cli_parse_real(const char *cmd, const char *opt, const char *s, double lo, bool lo_open, double hi,
                   const char *what, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(lo_open ? v > lo : v >= lo) || !(v <= hi))
        return cli_usage_error(cmd, "%s wants %s in %c%g, %g], not '%s'", opt, what, lo_open ? '(' : '[', lo, hi, s);
    *out = v;
    return CLI_OK;
}

void cli_dist_latency_note(long long threads)
{
    int local = mq_dist_local_ranks();
    if (local > 1 && threads == 0)
        mq_warn("%d MPI ranks share this machine: each runs %d threads by default, and rank 0 measures latency "
                "with them while the others wait; --threads N measures with N (every rank then runs N in the "
                "passes they share)", local, mq_pool_default_threads());
}

int cli_check_shapes(const char *cmd, const char *arg)
{
    struct mq_input_shapes s;
    char why[256];
    if (mq_input_shapes_parse(arg, &s, why, sizeof(why)) < 0)
        return cli_usage_error(cmd, "--shapes: %s", why);
    mq_input_shapes_release(&s);
    return CLI_OK;
}

int cli_model_load(const char *path, const char *shapes, struct mq_model **out)
{
    *out = NULL;
    if (!shapes)
        return mq_model_load(path, out);
    struct mq_input_shapes s;
    char why[256];
    if (mq_input_shapes_parse(shapes, &s, why, sizeof(why)) < 0)
        return mq_error(MQ_EINVAL, "--shapes: %s", why);
    int rc = mq_model_load_shaped(path, &s, out);
    mq_input_shapes_release(&s);
    return rc;
}

int cli_model_load_for_plan(const char *path, const char *shapes, const char *plan_arg, struct mq_model **out)
{
    static char front_shapes[2048];
    struct stat st;
    char schema[32] = "";
    if (!shapes && plan_arg && stat(plan_arg, &st) == 0 && S_ISREG(st.st_mode)) {
        /* a plan file that does not parse is its one error line, here */
        int rc = rpt_yaml_schema_of(plan_arg, schema, sizeof(schema));
        if (rc == MQ_OK && !strcmp(schema, "front"))
            rc = rpt_front_shapes_read(plan_arg, front_shapes, sizeof(front_shapes));
        if (rc < 0)
            return rc;
        if (!strcmp(schema, "front") && front_shapes[0]) {
            shapes = front_shapes;
            mq_info("shapes %s (the front's, from its tune)", shapes);
        }
    }
    return cli_model_load(path, shapes, out);
}

void cli_cache_dir(const char *arg, char *buf, size_t size)
{
    if (arg)
        snprintf(buf, size, "%s", arg);
    else
        prof_cache_default_dir(buf, size);
}

int cli_parse_formats(const char *cmd, const char *list, uint32_t *mask)
{
    *mask = 0;
    char why[512];
    if (mq_dtype_parse_formats(list, mask, why, sizeof(why)) < 0)
        return cli_usage_error(cmd, "--formats: %s", why);
    return CLI_OK;
}

const char *cli_datadir(void)
{
    const char *d = getenv("MIXQ_DATADIR");
    return d && *d ? d : MIXQ_DATADIR;
}

void cli_data_path(char *buf, size_t size, const char *rel)
{
    snprintf(buf, size, "%s/%s", cli_datadir(), rel);
}

const char *cli_fmt_bytes(char *buf, size_t size, uint64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, size, "%.2f %s", v, units[u]);
    return buf;
}

int cli_check_file(const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return mq_error(MQ_EIO, "cannot open %s '%s': %s", what, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return mq_error(MQ_EIO, "%s '%s' is not a regular file", what, path);
    if (st.st_size == 0)
        return mq_error(MQ_EINVAL, "%s '%s' is empty", what, path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return mq_error(MQ_EIO, "cannot open %s '%s': %s", what, path, strerror(errno));
    fclose(f);
    return MQ_OK;
}

int cli_check_inputs(const char *cmd, const struct mq_model *m, bool given)
{
    if (given && m->kind != MQ_MODEL_ONNX)
        return mq_error(
            MQ_EINVAL,
            "%s: --inputs gives an ONNX model's input arrays; '%s' is a GGUF model, whose "
            "evaluation text is --%s",
            cmd, m->path, strcmp(cmd, "eval") ? "eval" : "text");
    return MQ_OK;
}

int cli_check_data(const struct mq_model *m, const char *path)
{
    struct stat st;
    int rc;
    if (m->kind == MQ_MODEL_ONNX && (rc = mq_onnx_check_data(m, path)) < 0)
        return rc;
    if (m->kind == MQ_MODEL_ONNX && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return MQ_OK; /* a folder of input arrays, read above */
    return cli_check_file("evaluation data", path);
}

int cli_load_plan(const struct mq_model *m, const char *arg, long long point, struct mq_plan **out)
{
    enum mq_dtype t;
    bool is_format = mq_dtype_from_name(arg, &t) == MQ_OK;
    /* a format name is every layer in it (llama-quantize --pure); another name is looked up
     * as a llama.cpp preset; preset:NAME names one that is also a format (preset:Q4_0) */
    bool explicit_preset = !strncasecmp(arg, "preset:", 7);
    const char *preset = explicit_preset ? arg + 7 : !is_format && mq_preset_find(arg) ? arg : NULL;
    bool is_file = strcmp(arg, "source") != 0 && !is_format && !preset;
    if (point >= 0 && !is_file)
        return mq_error(MQ_EINVAL, "--point selects a point of a front.yaml, not of the plan '%s'", arg);
    if (strcmp(arg, "source") == 0)
        return mq_plan_source(m, out);
    if (preset) {
        struct mq_preset_result r;
        int rc = mq_plan_preset_ex(m, preset, NULL, out, &r);
        if (rc == MQ_OK && r.n_fallback > 0)
            mq_info("%s: %d of %d tensor(s) required fallback quantization", (*out)->label, r.n_fallback,
                    r.n_tensors);
        return rc;
    }
    if (is_format) {
        if (!mq_dtype_get(t)->is_plan_format)
            return mq_error(MQ_EINVAL, "'%s' is not a format a plan can choose", arg);
        int rc = mq_plan_uniform(m, t, out);
        return rc < 0 ? rc : mq_plan_check(m, *out);
    }
    struct stat st;
    if (!strchr(arg, '/') && !strchr(arg, '.') && stat(arg, &st) != 0) {
        char formats[160], presets[256];
        mq_dtype_list_plan_formats(formats, sizeof(formats));
        mq_preset_list(presets, sizeof(presets));
        return mq_error(MQ_EINVAL, "plan '%s' is not a format (%s), a llama.cpp preset (%s), 'source' or a file",
                        arg, formats, presets);
    }
    char schema[64];
    int rc = rpt_yaml_schema_of(arg, schema, sizeof(schema));
    if (rc < 0)
        return rc;
    if (!strcmp(schema, "front"))
        return rpt_front_read_plan(m, arg, (int)point, out);
    if (point >= 0)
        return mq_error(MQ_EINVAL, "--point selects a point of a front.yaml, and '%s' is a %s file", arg, schema);
    return rpt_plan_read(m, arg, out);
}


int cli_apply_imatrix(struct mq_model *m, const char *path)
{
    if (!path)
        return MQ_OK;
    struct mq_imatrix *im = NULL;
    int used = 0;
    int rc = mq_model_apply_imatrix_file(m, path, true, &used, &im);
    if (rc == MQ_OK)
        mq_debug("imatrix %s: %d of %d layers (%d entries, %u chunks), %d error-compensated", path, used,
                 m->n_layers, im->n_entries, im->chunk_count, m->n_compensated);
    mq_imatrix_free(im);
    return rc;
}

bool cli_is_front(const char *path)
{
    struct stat st;
    char schema[32] = "";
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && rpt_yaml_schema_of(path, schema, sizeof(schema)) == 0 &&
           !strcmp(schema, "front");
}

/* cli_load_plan_imatrix's importance matrix (cli.h) */
static int plan_imatrix(struct mq_model *m, const char *plan_arg, const char *imatrix, bool no_imatrix,
                        struct rpt_imatrix_ref *ref, bool *from_front)
{
    memset(ref, 0, sizeof(*ref));
    *from_front = false;
    if (no_imatrix)
        return MQ_OK;
    int rc;
    if (imatrix) {
        if ((rc = rpt_imatrix_ref_given(imatrix, ref)) < 0 || (rc = cli_apply_imatrix(m, imatrix)) < 0)
            ref->set = false;
        ref->compensated = m->n_compensated;
        return rc;
    }
    if (!cli_is_front(plan_arg))
        return MQ_OK;
    if ((rc = rpt_front_imatrix_read(plan_arg, ref)) < 0 || !ref->set)
        return rc;
    if ((rc = rpt_imatrix_ref_check(ref, "the front's importance matrix")) < 0 ||
        (rc = cli_apply_imatrix(m, ref->path)) < 0) {
        ref->set = false;
        return rc;
    }
    ref->compensated = m->n_compensated;
    *from_front = true;
    return MQ_OK;
}

int cli_load_plan_imatrix(struct mq_model *m, const char *plan_arg, long long point, const char *imatrix,
                          bool no_imatrix, struct mq_plan **plan, struct rpt_imatrix_ref *ref, bool *from_front)
{
    *plan = NULL;
    memset(ref, 0, sizeof(*ref));
    *from_front = false;
    struct stat st;
    bool file = stat(plan_arg, &st) == 0 && S_ISREG(st.st_mode);
    int rc;
    if (!file && (rc = plan_imatrix(m, plan_arg, imatrix, no_imatrix, ref, from_front)) < 0)
        return rc;
    if ((rc = cli_load_plan(m, plan_arg, point, plan)) < 0)
        return rc;
    if (file && (rc = plan_imatrix(m, plan_arg, imatrix, no_imatrix, ref, from_front)) < 0) {
        mq_plan_free(*plan);
        *plan = NULL;
    }
    return rc;
}

void cli_print_imatrix(const char *label, const struct rpt_imatrix_ref *ref, bool from_front, bool no_imatrix)
{
    if (!ref->set)
        printf("%s none%s\n", label, no_imatrix ? " (--no-imatrix): quantized plainly" : "");
    else if (!from_front)
        printf("%s %s (--imatrix)\n", label, ref->path);
    else if (!strcmp(ref->source, "computed") && ref->text[0])
        printf("%s %s (the front's: computed by mixq tune on %s, %lld chunks; --no-imatrix for none)\n", label,
               ref->path, ref->text, ref->chunks);
    else
        printf("%s %s (the front's; --no-imatrix for none)\n", label, ref->path);
    if (ref->set && ref->compensated)
        printf("%*s %d layers error-compensated with the file's Gram matrices\n", (int)strlen(label), "",
               ref->compensated);
}

int cli_make_dir(const char *path)
{
    char p[4096];
    if (!path || !*path || strlen(path) >= sizeof(p))
        return mq_error(MQ_EINVAL, "output folder name is empty or too long");
    snprintf(p, sizeof(p), "%s", path);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return mq_error(MQ_EIO, "cannot create '%s': %s", p, strerror(errno));
        *c = '/';
    }
    struct stat st;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return mq_error(MQ_EIO, "cannot create '%s': %s", p, strerror(errno));
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
        return mq_error(MQ_EIO, "cannot create '%s': it exists and is not a folder", p);
    return MQ_OK;
}
