/* reports/export.c - recipes for llama.cpp, TensorRT and ONNX Runtime; front points;
 * provenance. Contract in export.h, user's manual in docs/recipes.md. */
#include "reports/export.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sha256.h"
#include "core/status.h"
#include "model/quantize.h"
#include "onnx/onnx.h"
#include "reports/yaml_doc.h"

#ifndef MIXQ_VERSION
#define MIXQ_VERSION "unknown"
#endif

/* ---- front points ------------------------------------------------------------------- */

static const char *yget(struct rpt_yaml *y, yaml_node_t *map, const char *key)
{
    return map && map->type == YAML_MAPPING_NODE ? rpt_yaml_scalar(rpt_yaml_get(y, map, key)) : NULL;
}

/* A number under key; false when absent or null. YAML's .nan/.inf are read. */
static bool yget_num(struct rpt_yaml *y, yaml_node_t *map, const char *key, double *v)
{
    const char *s = yget(y, map, key);
    if (!s || !*s || !strcmp(s, "null") || !strcmp(s, "~"))
        return false;
    if (!strcasecmp(s, ".nan")) {
        *v = NAN;
        return true;
    }
    if (!strcasecmp(s, ".inf") || !strcasecmp(s, "-.inf")) {
        *v = s[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end)
        return false;
    *v = d;
    return true;
}

static void yget_str(struct rpt_yaml *y, yaml_node_t *map, const char *key, char *buf, size_t size)
{
    const char *s = yget(y, map, key);
    snprintf(buf, size, "%s", s ? s : "");
}

/* ---- importance matrices ------------------------------------------------------------ */

int rpt_imatrix_ref_given(const char *path, struct rpt_imatrix_ref *out)
{
    memset(out, 0, sizeof(*out));
    if (strlen(path) >= sizeof(out->path))
        return mq_error(MQ_EINVAL, "imatrix file name '%.64s...' is too long", path);
    int rc = mq_sha256_file(path, out->sha256);
    if (rc < 0)
        return rc;
    out->set = true;
    snprintf(out->source, sizeof(out->source), "given");
    snprintf(out->path, sizeof(out->path), "%s", path);
    return MQ_OK;
}

int rpt_imatrix_ref_check(const struct rpt_imatrix_ref *ref, const char *what)
{
    char sha[65];
    if (access(ref->path, R_OK) != 0)
        return mq_error(MQ_EIO, "%s '%s' cannot be read: %s (give --imatrix FILE or --no-imatrix)", what, ref->path,
                        strerror(errno));
    int rc = mq_sha256_file(ref->path, sha);
    if (rc < 0)
        return rc;
    if (strcmp(sha, ref->sha256) != 0)
        return mq_error(MQ_EFORMAT, "%s '%s' has changed since it was recorded (sha256 %.16s..., recorded %.16s...): "
                        "give --imatrix FILE or --no-imatrix", what, ref->path, sha, ref->sha256);
    return MQ_OK;
}

static bool is_sha256(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n]))
            return false;
    return n == 64;
}

/* The `imatrix` map of a front's root into out (unset when absent or null). */
static int front_imatrix(struct rpt_yaml *y, const char *path, struct rpt_imatrix_ref *out)
{
    memset(out, 0, sizeof(*out));
    yaml_node_t *im = rpt_yaml_get(y, rpt_yaml_root(y), "imatrix");
    if (!im || (im->type == YAML_SCALAR_NODE && (!strcmp(rpt_yaml_scalar(im), "null") ||
                                                  !strcmp(rpt_yaml_scalar(im), "~") || !*rpt_yaml_scalar(im))))
        return MQ_OK;
    const char *file = yget(y, im, "path"), *sha = yget(y, im, "sha256");
    if (im->type != YAML_MAPPING_NODE || !file || !*file || strlen(file) >= sizeof(out->path) || !sha ||
        !is_sha256(sha))
        return mq_error(MQ_EFORMAT, "'%s':%d: 'imatrix' wants a map with a file 'path' and its 'sha256' (64 lowercase "
                        "hex digits), or null", path, rpt_yaml_line(im));
    out->set = true;
    snprintf(out->path, sizeof(out->path), "%s", file);
    snprintf(out->sha256, sizeof(out->sha256), "%s", sha);
    yget_str(y, im, "source", out->source, sizeof(out->source));
    yget_str(y, im, "text", out->text, sizeof(out->text));
    double v;
    out->chunks = yget_num(y, im, "chunks", &v) ? (long long)v : 0;
    out->ctx = yget_num(y, im, "ctx", &v) ? (long long)v : 0;
    return MQ_OK;
}

int rpt_front_imatrix_read(const char *path, struct rpt_imatrix_ref *out)
{
    memset(out, 0, sizeof(*out));
    struct rpt_yaml y;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    if ((rc = rpt_yaml_check_schema(&y, "front", 1)) == MQ_OK)
        rc = front_imatrix(&y, path, out);
    rpt_yaml_release(&y);
    return rc;
}

int rpt_front_shapes_read(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    struct rpt_yaml y;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    if ((rc = rpt_yaml_check_schema(&y, "front", 1)) == MQ_OK) {
        const char *s = yget(&y, rpt_yaml_get(&y, rpt_yaml_root(&y), "model"), "shapes");
        if (s && strlen(s) >= size)
            rc = mq_error(MQ_EFORMAT, "'%s': model.shapes is over %zu characters", path, size - 1);
        else
            snprintf(buf, size, "%s", s ? s : "");
    }
    rpt_yaml_release(&y);
    return rc;
}

int rpt_front_point_read(const char *path, int index, struct rpt_front_point *out)
{
    memset(out, 0, sizeof(*out));
    struct rpt_yaml y;
    int rc = rpt_yaml_load(path, &y);
    if (rc < 0)
        return rc;
    if ((rc = rpt_yaml_check_schema(&y, "front", 1)) < 0)
        goto done;
    yaml_node_t *root = rpt_yaml_root(&y);
    yaml_node_t *model = rpt_yaml_get(&y, root, "model"), *target = rpt_yaml_get(&y, root, "target");
    yaml_node_t *budgets = rpt_yaml_get(&y, root, "budgets"), *metric = rpt_yaml_get(&y, root, "metric");
    yget_str(&y, model, "path", out->model_path, sizeof(out->model_path));
    yget_str(&y, model, "name", out->model_name, sizeof(out->model_name));
    yget_str(&y, model, "content_hash", out->model_hash, sizeof(out->model_hash));
    double v;
    out->model_layers = yget_num(&y, model, "layers", &v) ? (int)v : -1;
    yget_str(&y, root, "workload", out->workload, sizeof(out->workload));
    yget_str(&y, target, "cpu", out->target_cpu, sizeof(out->target_cpu));
    yget_str(&y, target, "backend", out->target_backend, sizeof(out->target_backend));
    out->threads = yget_num(&y, target, "threads", &v) ? (int)v : 0;
    out->has_mem_budget = yget_num(&y, budgets, "memory_bytes", &out->mem_budget_bytes);
    out->has_lat_budget = yget_num(&y, budgets, "latency_us", &out->lat_budget_us);
    out->has_size_budget = yget_num(&y, budgets, "file_bytes", &out->size_budget_bytes);
    out->has_max_kl = yget_num(&y, budgets, "max_kl", &out->max_kl);
    yget_str(&y, metric, "name", out->metric_name, sizeof(out->metric_name));
    if (!out->model_path[0]) {
        rc = mq_error(MQ_EFORMAT, "'%s' names no model (model.path)", path);
        goto done;
    }
    if ((rc = front_imatrix(&y, path, &out->imatrix)) < 0)
        goto done;
    int chosen = -1;
    yaml_node_t *ch = rpt_yaml_get(&y, root, "chosen");
    if (yget_num(&y, ch, "index", &v))
        chosen = (int)v;
    if (index < 0 && chosen < 0) {
        rc = mq_error(MQ_ENOTFOUND, "'%s' has no chosen plan (no validated point met the budgets); give --point",
                      path);
        goto done;
    }
    if (index < 0)
        index = chosen;
    yaml_node_t *pts = rpt_yaml_get(&y, root, "points");
    if (!pts || pts->type != YAML_SEQUENCE_NODE) {
        rc = mq_error(MQ_EFORMAT, "'%s' has no 'points' list", path);
        goto done;
    }
    for (yaml_node_item_t *it = pts->data.sequence.items.start; it < pts->data.sequence.items.top; it++) {
        yaml_node_t *pn = yaml_document_get_node(&y.doc, *it);
        if (!yget_num(&y, pn, "index", &v) || (int)v != index)
            continue;
        out->index = index;
        out->chosen = index == chosen;
        yaml_node_t *pred = rpt_yaml_get(&y, pn, "predicted"), *meas = rpt_yaml_get(&y, pn, "measured");
        yget_num(&y, pred, "memory_bytes", &out->pred_mem_bytes);
        yget_num(&y, pred, "latency_us", &out->pred_lat_us);
        yget_num(&y, pred, "loss", &out->pred_loss);
        if (meas && meas->type == YAML_MAPPING_NODE) {
            out->measured = true;
            yget_num(&y, meas, "memory_bytes", &out->mem_bytes);
            yget_num(&y, meas, "latency_us", &out->lat_us);
            yget_num(&y, meas, "latency_mad_us", &out->lat_mad_us);
            yget_num(&y, meas, "kl", &out->kl);
            yget_num(&y, meas, "kl_stderr", &out->kl_stderr);
            yget_num(&y, meas, "metric", &out->metric);
            out->reps = yget_num(&y, meas, "reps", &v) ? (int)v : 0;
        }
        goto done;
    }
    rc = mq_error(MQ_ENOTFOUND, "'%s' has no point %d (the file lists %d points, by their 'index'; large fronts are "
                  "thinned)", path, index, (int)(pts->data.sequence.items.top - pts->data.sequence.items.start));
done:
    rpt_yaml_release(&y);
    return rc;
}

/* ---- provenance --------------------------------------------------------------------- */

static int set_f64(struct mq_gguf_writer *w, const char *key, double v)
{
    struct mq_gguf_str k = {.len = strlen(key), .ptr = key};
    struct mq_gguf_value val = {.type = MQ_GGUF_FLOAT64, .f64 = v};
    return mq_gguf_writer_set_value(w, &k, &val);
}

int rpt_provenance_write(void *ctx, struct mq_gguf_writer *w)
{
    const struct rpt_provenance *p = ctx;
    const struct mq_model *m = p->m;
    const struct mq_plan *plan = p->plan;
    enum mq_dtype def = mq_quantize_file_type(plan);
    char hash[32];
    snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)m->content_hash);
    int n_other = 0;
    for (int i = 0; i < plan->n_layers; i++)
        n_other += plan->fmt[i] != def;
    const char **names = malloc(((size_t)n_other + 1) * sizeof(*names));
    const char **fmts = malloc(((size_t)n_other + 1) * sizeof(*fmts));
    if (!names || !fmts) {
        free(names);
        free(fmts);
        return mq_error(MQ_ENOMEM, "cannot write the provenance of '%s'", m->path);
    }
    for (int i = 0, k = 0; i < plan->n_layers; i++)
        if (plan->fmt[i] != def) {
            names[k] = m->layers[i].name;
            fmts[k++] = mq_dtype_name(plan->fmt[i]);
        }
    int rc = MQ_OK;
#define TRY(x)                                                                                                        \
    do {                                                                                                              \
        if (rc == MQ_OK)                                                                                              \
            rc = (x);                                                                                                 \
    } while (0)
    TRY(mq_gguf_writer_set_str(w, "mixq.version", MIXQ_VERSION));
    TRY(mq_gguf_writer_set_str(w, "mixq.source", m->path));
    TRY(mq_gguf_writer_set_str(w, "mixq.source_hash", hash));
    TRY(mq_gguf_writer_set_str(w, "mixq.plan.from", p->plan_from ? p->plan_from : plan->label));
    TRY(mq_gguf_writer_set_str(w, "mixq.plan.label", plan->label));
    TRY(mq_gguf_writer_set_str(w, "mixq.plan.default", mq_dtype_name(def)));
    TRY(mq_gguf_writer_set_str_arr(w, "mixq.plan.layers", names, (uint64_t)n_other));
    TRY(mq_gguf_writer_set_str_arr(w, "mixq.plan.formats", fmts, (uint64_t)n_other));
    if (p->imatrix && p->imatrix->set) {
        TRY(mq_gguf_writer_set_str(w, "mixq.imatrix.file", p->imatrix->path));
        TRY(mq_gguf_writer_set_str(w, "mixq.imatrix.sha256", p->imatrix->sha256));
    }
    const struct rpt_front_point *pt = p->pt;
    if (pt) {
        TRY(mq_gguf_writer_set_i32(w, "mixq.front.point", pt->index));
        TRY(mq_gguf_writer_set_bool(w, "mixq.front.chosen", pt->chosen));
        if (pt->has_mem_budget)
            TRY(mq_gguf_writer_set_u64(w, "mixq.budget.memory_bytes", (uint64_t)pt->mem_budget_bytes));
        if (pt->has_size_budget)
            TRY(mq_gguf_writer_set_u64(w, "mixq.budget.file_bytes", (uint64_t)pt->size_budget_bytes));
        if (pt->has_lat_budget)
            TRY(set_f64(w, "mixq.budget.latency_us", pt->lat_budget_us));
        if (pt->has_max_kl)
            TRY(set_f64(w, "mixq.budget.max_kl", pt->max_kl));
        TRY(mq_gguf_writer_set_str(w, "mixq.workload", pt->workload));
        TRY(mq_gguf_writer_set_str(w, "mixq.target.cpu", pt->target_cpu));
        TRY(mq_gguf_writer_set_str(w, "mixq.target.backend", pt->target_backend));
        TRY(mq_gguf_writer_set_u32(w, "mixq.target.threads", (uint32_t)pt->threads));
        TRY(set_f64(w, "mixq.predicted.memory_bytes", pt->pred_mem_bytes));
        TRY(set_f64(w, "mixq.predicted.latency_us", pt->pred_lat_us));
        TRY(set_f64(w, "mixq.predicted.loss", pt->pred_loss));
        bool same = !strcmp(pt->model_hash, hash);
        if (pt->measured && same) {
            TRY(set_f64(w, "mixq.measured.memory_bytes", pt->mem_bytes));
            TRY(set_f64(w, "mixq.measured.latency_us", pt->lat_us));
            TRY(set_f64(w, "mixq.measured.latency_mad_us", pt->lat_mad_us));
            TRY(mq_gguf_writer_set_u32(w, "mixq.measured.reps", (uint32_t)pt->reps));
            TRY(set_f64(w, "mixq.measured.kl", pt->kl));
            TRY(set_f64(w, "mixq.measured.kl_stderr", pt->kl_stderr));
            TRY(mq_gguf_writer_set_str(w, "mixq.measured.metric_name", pt->metric_name));
            TRY(set_f64(w, "mixq.measured.metric", pt->metric));
        } else if (pt->measured) {
            mq_warn("the front was measured on a model with content hash %s, '%s' has %s: its measured figures "
                    "are left out of the file",
                    pt->model_hash, m->path, hash);
            TRY(mq_gguf_writer_set_str(w, "mixq.measured_on", pt->model_hash));
        }
    }
#undef TRY
    free(names);
    free(fmts);
    return rc;
}

/* ---- llama-quantize rules ----------------------------------------------------------- */

/* Appends s to buf with regex metacharacters escaped; false when it does not fit. */
static bool re_append(char *buf, size_t size, const char *s, bool escape)
{
    size_t n = strlen(buf);
    for (; *s; s++) {
        bool meta = escape && strchr(".[]()*+?{}|^$\\", *s);
        if (n + 2 + meta >= size)
            return false;
        if (meta)
            buf[n++] = '\\';
        buf[n++] = *s;
    }
    buf[n] = '\0';
    return true;
}

/* "blk.N.ROLE.weight" -> block N and ROLE (in role, size bytes); false for other names. */
static bool split_block_name(const char *name, int *block, char *role, size_t size)
{
    if (strncmp(name, "blk.", 4) != 0 || !isdigit((unsigned char)name[4]))
        return false;
    char *end;
    long b = strtol(name + 4, &end, 10);
    if (*end != '.' || b < 0 || b > 1000000)
        return false;
    const char *r = end + 1;
    size_t len = strlen(r), suf = strlen(".weight");
    if (len <= suf || strcmp(r + len - suf, ".weight") != 0 || len - suf >= size)
        return false;
    memcpy(role, r, len - suf);
    role[len - suf] = '\0';
    *block = (int)b;
    return true;
}

static int add_rule(struct rpt_llama_recipe *r, int cap, const char *pattern, enum mq_dtype fmt)
{
    if (r->n_rules >= cap)
        return mq_error(MQ_EINTERNAL, "more llama-quantize rules than layers");
    struct rpt_tt_rule *t = &r->rules[r->n_rules++];
    snprintf(t->pattern, sizeof(t->pattern), "%s", pattern);
    t->fmt = fmt;
    t->n_tensors = 0;
    return MQ_OK;
}

/* Per format: the rules for block tensors, roles grouped by identical block sets. */
static int rules_for_format(const struct mq_model *m, const struct mq_plan *plan, enum mq_dtype f,
                            struct rpt_llama_recipe *r, int cap)
{
    int nb = (int)m->hp.n_layer, n = m->n_layers;
    /* roles[k]: a role name; has[k*nb + b]: block b has that role; sel[k*nb + b]: in format f */
    char (*roles)[64] = calloc((size_t)n + 1, sizeof(*roles));
    char *has = calloc((size_t)(n + 1) * (size_t)(nb + 1), 1);
    char *sel = calloc((size_t)(n + 1) * (size_t)(nb + 1), 1);
    bool *done = calloc((size_t)n + 1, sizeof(bool));
    int n_roles = 0, rc = MQ_OK;
    if (!roles || !has || !sel || !done) {
        rc = mq_error(MQ_ENOMEM, "cannot build llama-quantize rules");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        char role[64];
        int b;
        if (!split_block_name(m->layers[i].name, &b, role, sizeof(role)) || b >= nb) {
            if (plan->fmt[i] != f)
                continue;
            char pat[RPT_RULE_MAX] = "^";
            if (!re_append(pat, sizeof(pat), m->layers[i].name, true) || !re_append(pat, sizeof(pat), "$", false)) {
                rc = mq_error(MQ_ERANGE, "layer name '%s' is too long for a rule", m->layers[i].name);
                goto out;
            }
            if ((rc = add_rule(r, cap, pat, f)) < 0)
                goto out;
            continue;
        }
        int k = 0;
        while (k < n_roles && strcmp(roles[k], role))
            k++;
        if (k == n_roles)
            snprintf(roles[n_roles++], sizeof(roles[0]), "%s", role);
        has[(size_t)k * nb + b] = 1;
        if (plan->fmt[i] == f)
            sel[(size_t)k * nb + b] = 1;
    }
    for (int k = 0; k < n_roles; k++) {
        bool any = false, all = true;
        for (int b = 0; b < nb; b++) {
            any |= sel[(size_t)k * nb + b];
            all &= sel[(size_t)k * nb + b] == has[(size_t)k * nb + b];
        }
        if (done[k] || !any)
            continue;
        /* the roles with the same selected blocks (and, for "all", the same existing ones) */
        char pat[RPT_RULE_MAX] = "^blk\\.", group[RPT_RULE_MAX] = "";
        int n_group = 0;
        for (int j = k; j < n_roles; j++) {
            if (done[j] || memcmp(sel + (size_t)j * nb, sel + (size_t)k * nb, (size_t)nb) ||
                (all && memcmp(has + (size_t)j * nb, has + (size_t)k * nb, (size_t)nb)))
                continue;
            bool all_j = true;
            for (int b = 0; b < nb; b++)
                all_j &= sel[(size_t)j * nb + b] == has[(size_t)j * nb + b];
            if (all_j != all)
                continue;
            done[j] = true;
            if ((n_group++ && !re_append(group, sizeof(group), "|", false)) ||
                !re_append(group, sizeof(group), roles[j], true)) {
                rc = mq_error(MQ_ERANGE, "llama-quantize rule for '%s' is too long", roles[k]);
                goto out;
            }
        }
        char blocks[RPT_RULE_MAX] = "";
        int n_sel = 0;
        for (int b = 0; b < nb && !all; b++)
            if (sel[(size_t)k * nb + b]) {
                char num[16];
                snprintf(num, sizeof(num), "%s%d", n_sel++ ? "|" : "", b);
                if (!re_append(blocks, sizeof(blocks), num, false)) {
                    rc = mq_error(MQ_ERANGE, "llama-quantize rule for '%s' is too long", roles[k]);
                    goto out;
                }
            }
        bool ok = true;
        if (all)
            ok = re_append(pat, sizeof(pat), "[0-9]+", false);
        else if (n_sel > 1)
            ok = re_append(pat, sizeof(pat), "(", false) && re_append(pat, sizeof(pat), blocks, false) &&
                 re_append(pat, sizeof(pat), ")", false);
        else
            ok = re_append(pat, sizeof(pat), blocks, false);
        ok = ok && re_append(pat, sizeof(pat), "\\.", false);
        if (n_group > 1)
            ok = ok && re_append(pat, sizeof(pat), "(", false) && re_append(pat, sizeof(pat), group, false) &&
                 re_append(pat, sizeof(pat), ")", false);
        else
            ok = ok && re_append(pat, sizeof(pat), group, false);
        ok = ok && re_append(pat, sizeof(pat), "\\.weight$", false);
        if (!ok) {
            rc = mq_error(MQ_ERANGE, "llama-quantize rule for '%s' is too long", roles[k]);
            goto out;
        }
        if ((rc = add_rule(r, cap, pat, f)) < 0)
            goto out;
    }
out:
    free(roles);
    free(has);
    free(sel);
    free(done);
    return rc;
}

static bool is_quantized(enum mq_dtype t)
{
    return mq_dtype_get(t)->is_quantized;
}

int rpt_llama_rules(const struct mq_model *m, const struct mq_plan *plan, struct rpt_llama_recipe *out)
{
    memset(out, 0, sizeof(*out));
    if (m->kind != MQ_MODEL_LLAMA || !m->gguf)
        return mq_error(MQ_EUNSUPPORTED, "llama-quantize takes GGUF files; '%s' is not one", m->path);
    for (int i = 0; i < m->n_layers; i++) {
        const char *s = m->layers[i].name;
        for (; *s; s++)
            if (isupper((unsigned char)*s) || *s == '=' || isspace((unsigned char)*s) || *s == '\'')
                return mq_error(MQ_EUNSUPPORTED,
                                "layer '%s': llama-quantize lowercases --tensor-type patterns and splits them at "
                                "'=' and white space, so this name cannot be selected",
                                m->layers[i].name);
    }
    int count[MQ_DTYPE_COUNT] = {0};
    for (int i = 0; i < plan->n_layers; i++)
        count[plan->fmt[i]]++;
    int base = -1;
    for (int t = 0; t < MQ_DTYPE_COUNT; t++)
        if (count[t] && is_quantized((enum mq_dtype)t) && (base < 0 || count[t] > count[base]))
            base = t;
    int n_formats = 0;
    for (int t = 0; t < MQ_DTYPE_COUNT; t++)
        n_formats += count[t] > 0;
    if (base < 0)
        base = n_formats == 1 ? (int)plan->fmt[0] : MQ_DTYPE_Q8_0;
    out->base = (enum mq_dtype)base;
    if (n_formats == 1 && plan->fmt[0] == out->base)
        return MQ_OK;
    int cap = m->n_layers + 1;
    if (!(out->rules = calloc((size_t)cap, sizeof(*out->rules))))
        return mq_error(MQ_ENOMEM, "cannot build llama-quantize rules");
    for (int t = 0; t < MQ_DTYPE_COUNT; t++) {
        if (t == base || !count[t])
            continue;
        int rc = rules_for_format(m, plan, (enum mq_dtype)t, out, cap);
        if (rc < 0) {
            rpt_llama_rules_free(out);
            return rc;
        }
    }
    return MQ_OK;
}

void rpt_llama_rules_free(struct rpt_llama_recipe *r)
{
    free(r->rules);
    memset(r, 0, sizeof(*r));
}

/* Whether llama-quantize would quantize this tensor at all (tensor_allows_quantization of
 * src/llama-quant.cpp, the parts that concern llama models). */
static bool llama_quantizes(const struct mq_gguf_tensor *t)
{
    size_t n = strlen(t->name);
    return t->n_dims >= 2 && n >= 6 && !strcmp(t->name + n - 6, "weight") && !strstr(t->name, "_norm.weight");
}

int rpt_llama_rules_check(const struct mq_model *m, const struct mq_plan *plan, struct rpt_llama_recipe *r)
{
    if (m->kind != MQ_MODEL_LLAMA || !m->gguf)
        return mq_error(MQ_EUNSUPPORTED, "llama-quantize takes GGUF files; '%s' is not one", m->path);
    regex_t *re = calloc((size_t)r->n_rules + 1, sizeof(*re));
    if (!re)
        return mq_error(MQ_ENOMEM, "cannot check llama-quantize rules");
    int n_re = 0, rc = MQ_OK;
    for (; n_re < r->n_rules; n_re++) {
        const char *p = r->rules[n_re].pattern;
        for (const char *s = p; *s; s++)
            if (isupper((unsigned char)*s)) {
                rc = mq_error(MQ_EINTERNAL, "rule '%s' has upper case, which llama-quantize lowercases", p);
                goto out;
            }
        if (regcomp(&re[n_re], p, REG_EXTENDED | REG_NOSUB) != 0) {
            rc = mq_error(MQ_EINTERNAL, "rule '%s' is not a valid regular expression", p);
            goto out;
        }
        r->rules[n_re].n_tensors = 0;
    }
    bool overrides = is_quantized(r->base);
    if (!overrides && r->n_rules) {
        rc = mq_error(MQ_EINTERNAL, "llama-quantize ignores --tensor-type under the float type %s",
                      mq_dtype_name(r->base));
        goto out;
    }
    const struct mq_gguf *g = m->gguf;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct mq_gguf_tensor *t = &g->tensors[i];
        int li = mq_model_find_layer(m, t->name);
        if (!llama_quantizes(t)) {
            if (li >= 0) {
                rc = mq_error(MQ_EINTERNAL, "layer '%s' is a tensor llama-quantize does not quantize", t->name);
                goto out;
            }
            continue;
        }
        int hit = -1;
        for (int k = 0; k < r->n_rules && hit < 0; k++)
            if (regexec(&re[k], t->name, 0, NULL, 0) == 0)
                hit = k;
        enum mq_dtype got = hit >= 0 ? r->rules[hit].fmt : r->base;
        enum mq_dtype want = li >= 0 ? plan->fmt[li] : t->type;
        if (got != want) {
            rc = mq_error(MQ_EINTERNAL, "tensor '%s' would become %s under llama-quantize (%s%s), the plan has %s",
                          t->name, mq_dtype_name(got), hit >= 0 ? "rule " : "base type",
                          hit >= 0 ? r->rules[hit].pattern : "", mq_dtype_name(want));
            goto out;
        }
        if (hit >= 0)
            r->rules[hit].n_tensors++;
    }
    for (int k = 0; k < r->n_rules; k++)
        if (r->rules[k].n_tensors == 0) {
            rc = mq_error(MQ_EINTERNAL, "rule '%s' selects no tensor", r->rules[k].pattern);
            goto out;
        }
out:
    for (int k = 0; k < n_re; k++)
        regfree(&re[k]);
    free(re);
    return rc;
}

/* ---- writing recipes ---------------------------------------------------------------- */

/* s in single quotes for a POSIX shell */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* Writes `text` to path atomically (temporary file, then rename). */
static int write_file_atomic(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(errno));
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(e));
    }
    return MQ_OK;
}

/* A growing text buffer (open_memstream) for file forms. */
struct text {
    char *buf;
    size_t len;
    FILE *f;
};

static int text_open(struct text *t)
{
    memset(t, 0, sizeof(*t));
    if (!(t->f = open_memstream(&t->buf, &t->len)))
        return mq_error(MQ_ENOMEM, "cannot allocate a recipe");
    return MQ_OK;
}

/* Closes the stream; writes the text to path unless NULL; frees it. */
static int text_finish(struct text *t, const char *path)
{
    int rc = fclose(t->f) == 0 ? MQ_OK : mq_error(MQ_ENOMEM, "cannot build a recipe");
    if (rc == MQ_OK && path)
        rc = write_file_atomic(path, t->buf);
    free(t->buf);
    memset(t, 0, sizeof(*t));
    return rc;
}

/* "23 x q4_0, 21 x q8_0" */
static void describe_formats(const struct mq_plan *p, char *buf, size_t size)
{
    int count[MQ_DTYPE_COUNT] = {0};
    for (int i = 0; i < p->n_layers; i++)
        count[p->fmt[i]]++;
    size_t n = 0;
    buf[0] = '\0';
    for (int t = 0; t < MQ_DTYPE_COUNT && n < size; t++)
        if (count[t])
            n += (size_t)snprintf(buf + n, size - n, "%s%d x %s", n ? ", " : "", count[t],
                                  mq_dtype_name((enum mq_dtype)t));
}

static void note_source(const struct rpt_export_input *in, FILE *out, const char *tool)
{
    char fmts[256];
    describe_formats(in->plan, fmts, sizeof(fmts));
    fprintf(out, "# mixq %s recipe for %s: %s\n", MIXQ_VERSION, tool, in->plan_from ? in->plan_from : in->plan->label);
    fprintf(out, "# model %s (%d layers): %s\n", in->m->path, in->m->n_layers, fmts);
    const struct rpt_front_point *pt = in->pt;
    if (pt && pt->measured)
        fprintf(out, "# measured by mixq on %s (%s, %d threads), workload %s: kl %.6g, %s %.6g, %.0f bytes, %.4g us\n",
                pt->target_backend, pt->target_cpu, pt->threads, pt->workload, pt->kl,
                pt->metric_name[0] ? pt->metric_name : "metric", pt->metric, pt->mem_bytes, pt->lat_us);
    else if (pt)
        fprintf(out, "# front point %d was not measured end to end (predicted loss %.6g)\n", pt->index, pt->pred_loss);
}

/* The output model's name: given, or the source's name with "-mixq" and the extension. */
static void output_name(const struct rpt_export_input *in, const char *ext, char *buf, size_t size)
{
    if (in->output) {
        snprintf(buf, size, "%s", in->output);
        return;
    }
    const char *base = strrchr(in->m->path, '/');
    base = base ? base + 1 : in->m->path;
    const char *dot = strrchr(base, '.');
    int n = dot ? (int)(dot - base) : (int)strlen(base);
    snprintf(buf, size, "%.*s-mixq%s", n, base, ext);
}

/* llama-quantize's type argument for a format: its name in upper case (F16, Q4_K, IQ4_XS;
 * with --pure, Q4_K, llama-quantize's alias of Q4_K_M, gives every tensor q4_K). */
static const char *llama_type_arg(enum mq_dtype t, char buf[16])
{
    const char *n = mq_dtype_name(t);
    size_t i = 0;
    for (; n[i] && i < 15; i++)
        buf[i] = (char)toupper((unsigned char)n[i]);
    buf[i] = '\0';
    return buf;
}

/* Copies src to dst atomically, checking that the bytes copied have the sha256 `sha`. */
static int copy_checked(const char *src, const char *dst, const char *sha, const char *what)
{
    char tmp[4200], got[65];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dst, (long)getpid());
    FILE *fi = fopen(src, "rb"), *fo = NULL;
    int rc = MQ_OK;
    if (!fi) {
        rc = mq_error(MQ_EIO, "%s '%s' cannot be read: %s (give --imatrix FILE or --no-imatrix)", what, src,
                      strerror(errno));
        goto done;
    }
    if (!(fo = fopen(tmp, "wb"))) {
        rc = mq_error(MQ_EIO, "cannot write '%s': %s", dst, strerror(errno));
        goto done;
    }
    struct mq_sha256 h;
    mq_sha256_init(&h);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), fi)) > 0) {
        mq_sha256_update(&h, buf, n);
        if (fwrite(buf, 1, n, fo) != n) {
            rc = mq_error(MQ_EIO, "cannot write '%s': %s", dst, strerror(errno));
            goto done;
        }
    }
    if (ferror(fi)) {
        rc = mq_error(MQ_EIO, "cannot read '%s': %s", src, strerror(errno));
        goto done;
    }
    mq_sha256_final(&h, got);
    if (strcmp(got, sha) != 0) {
        rc = mq_error(MQ_EFORMAT, "%s '%s' has changed since it was recorded (sha256 %.16s..., recorded %.16s...): "
                      "give --imatrix FILE or --no-imatrix", what, src, got, sha);
        goto done;
    }
    int e = fclose(fo);
    fo = NULL;
    if (e != 0 || rename(tmp, dst) != 0)
        rc = mq_error(MQ_EIO, "cannot write '%s': %s", dst, strerror(errno));
done:
    if (fi)
        fclose(fi);
    if (fo)
        fclose(fo);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* The importance matrix a llama.cpp recipe names: none (buf "") when the plan has none or
 * quantizes no layer; otherwise its file, copied to OUT.imatrix.gguf (OUT: the output
 * model's name less .gguf) beside the recipe's file (`file`, or the output model when there
 * is none) unless the input asks for no files. Writes nothing to `out` (errors first). */
static int llama_imatrix_file(const struct rpt_export_input *in, const char *outname, const char *file, char *buf,
                              size_t size)
{
    buf[0] = '\0';
    const struct rpt_imatrix_ref *im = in->imatrix;
    bool quantized = false;
    for (int i = 0; i < in->plan->n_layers; i++)
        quantized |= is_quantized(in->plan->fmt[i]);
    if (!im || !im->set || !quantized)
        return MQ_OK;
    if (!in->default_file) {
        snprintf(buf, size, "%s", im->path);
        return rpt_imatrix_ref_check(im, "the importance matrix");
    }
    const char *base = strrchr(outname, '/'), *beside = file ? file : outname, *slash = strrchr(beside, '/');
    base = base ? base + 1 : outname;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf"))
        n -= 5;
    int nd = slash ? (int)(slash - beside + 1) : 0; /* the folder, with its '/' */
    if (snprintf(buf, size, "%.*s%.*s.imatrix.gguf", nd, beside, (int)n, base) >= (int)size)
        return mq_error(MQ_EINVAL, "the importance matrix's copy beside '%s' has too long a name", beside);
    return copy_checked(im->path, buf, im->sha256, "the importance matrix");
}

/* The recipe's note on its importance matrix (imfile: the file it names, "" for none). */
static void note_imatrix(const struct rpt_export_input *in, FILE *out, const char *imfile)
{
    const struct rpt_imatrix_ref *im = in->imatrix;
    if (!imfile[0]) {
        if (im && im->set)
            fprintf(out, "# no --imatrix: the plan quantizes no layer, so its importance matrix applies nowhere\n");
        return;
    }
    if (!strcmp(im->source, "computed") && im->text[0])
        fprintf(out, "# --imatrix: the importance matrix mixq tune computed on %s (%lld chunks of %lld tokens) and "
                     "quantized every plan with, sha256 %.16s...%s\n",
                im->text, im->chunks, im->ctx, im->sha256, strcmp(imfile, im->path) ? ", copied here" : "");
    else
        fprintf(out, "# --imatrix: the importance matrix the plan is quantized with, %s (sha256 %.16s...)%s\n",
                im->path, im->sha256, strcmp(imfile, im->path) ? ", copied here" : "");
    int compensated = 0; /* layers the plan requantizes with error compensation */
    for (int i = 0; i < in->m->n_layers; i++)
        compensated += in->m->layers[i].gram_u && in->plan->fmt[i] != in->m->layers[i].src_type;
    if (!compensated) {
        fprintf(out, "# with it, llama-quantize writes the tensors 'mixq quantize' writes, byte for byte\n");
        return;
    }
    fprintf(out, "# mixq quantizes %d of these layers with error compensation (the Gram matrices in that file;\n"
                 "# llama-quantize reads only its importance weights): llama-quantize writes the plan's types\n"
                 "# with plain importance-weighted rounding, not the bytes 'mixq quantize' writes, whose KL the\n"
                 "# tune measured. Ship 'mixq quantize's file, or tune with --no-compensate for a recipe that\n"
                 "# llama-quantize reproduces byte for byte\n", compensated);
}

/* A llama.cpp preset plan (model/preset.h) is llama-quantize's own command: its rules give
 * every tensor the plan's type. */
static int export_llama_preset(const struct rpt_export_input *in, FILE *out, const char *preset, const char *outname,
                               const char *imfile)
{
    const struct mq_model *m = in->m;
    bool requant = false;
    for (int i = 0; i < m->n_layers; i++)
        requant |= is_quantized(m->layers[i].src_type);
    note_source(in, out, "llama.cpp (llama-quantize)");
    fprintf(out, "# llama.cpp's preset %s: llama-quantize's own per-tensor rules give every tensor the type of this "
                 "plan (mixq computes them as the pinned llama.cpp does; general.file_type %d)\n",
            preset, in->plan->ftype);
    note_imatrix(in, out, imfile);
    fprintf(out, "llama-quantize%s", requant ? " --allow-requantize" : "");
    if (imfile[0]) {
        fprintf(out, " --imatrix ");
        put_quoted(out, imfile);
    }
    fputc(' ', out);
    put_quoted(out, m->path);
    fputc(' ', out);
    put_quoted(out, outname);
    fprintf(out, " %s\n", preset);
    return MQ_OK;
}

static int export_llama_cpp(const struct rpt_export_input *in, FILE *out, const char *file)
{
    const struct mq_model *m = in->m;
    char outname[4096], imfile[4200];
    output_name(in, ".gguf", outname, sizeof(outname));
    if (in->plan->ftype >= 0 && !strncmp(in->plan->label, "llama.cpp ", 10) && in->plan->label[10]) {
        int rc = llama_imatrix_file(in, outname, file, imfile, sizeof(imfile));
        return rc < 0 ? rc : export_llama_preset(in, out, in->plan->label + 10, outname, imfile);
    }
    struct rpt_llama_recipe r;
    int rc = rpt_llama_rules(m, in->plan, &r);
    if (rc < 0)
        return rc;
    if ((rc = rpt_llama_rules_check(m, in->plan, &r)) < 0)
        goto done;
    enum mq_dtype ft = mq_quantize_file_type(in->plan);
    bool requant = false;
    for (int i = 0; i < m->n_layers; i++)
        requant |= is_quantized(m->layers[i].src_type);
    int n_sel = 0;
    for (int k = 0; k < r.n_rules; k++)
        n_sel += r.rules[k].n_tensors;
    char tb[16], deffile[4096];
    if (!file && in->default_file && r.n_rules) { /* the rules' file next to the model it makes */
        size_t n = strlen(outname);
        if (n > 5 && !strcmp(outname + n - 5, ".gguf"))
            n -= 5;
        snprintf(deffile, sizeof(deffile), "%.*s.tensor-types.txt", (int)n, outname);
        file = deffile;
    }
    if ((rc = llama_imatrix_file(in, outname, file, imfile, sizeof(imfile))) < 0)
        goto done;

    note_source(in, out, "llama.cpp (llama-quantize)");
    if (r.n_rules)
        fprintf(out, "# base type %s for %d tensors; %d --tensor-type rule%s select the other %d (checked against the %llu "
                     "tensors of the model: each gets its planned type)\n",
                llama_type_arg(r.base, tb), m->n_layers - n_sel, r.n_rules, r.n_rules > 1 ? "s" : "", n_sel,
                (unsigned long long)m->gguf->n_tensors);
    else
        fprintf(out, "# every layer %s: no --tensor-type rules\n", mq_dtype_name(r.base));
    if (!is_quantized(r.base) && r.n_rules == 0 && in->plan->n_layers && in->plan->fmt[0] != r.base)
        fprintf(out, "# (float formats only, mixed)\n");
    fprintf(out, "# --pure: no k-quant mixture rules, so every tensor without a rule takes the base type%s\n",
            requant ? "; --allow-requantize: the source holds quantized tensors, which llama-quantize, like "
                      "mixq, dequantizes to f32 and quantizes again" : "");
    note_imatrix(in, out, imfile);
    bool override_ft = ft != r.base;
    if (override_ft)
        fprintf(out, "# --override-kv keeps general.file_type at the plan's most common format (%s), as 'mixq "
                     "quantize' writes it\n",
                mq_dtype_name(ft));
    /* the rules in a file (--tensor-type-file, llama.cpp #18572: command lines of hundreds of
     * flags break, #18565), then the same on the command line; --pure with --tensor-type:
     * docs/recipes.md says which llama.cpp versions honour both */
    bool with_file = file && r.n_rules;
    for (int pass = 0; pass < 2; pass++) {
        int form = with_file ? 1 - pass : pass; /* 1: the file form */
        if (form == 1 && !with_file)
            break;
        if (pass == 1)
            fprintf(out, "# the same, with the %d rule%s on the command line (--tensor-type):\n", r.n_rules,
                    r.n_rules > 1 ? "s" : "");
        else if (form == 1)
            fprintf(out, "# the rules are in %s (--tensor-type-file):\n", file);
        fprintf(out, "llama-quantize --pure%s", requant ? " --allow-requantize" : "");
        if (imfile[0]) {
            fprintf(out, " --imatrix ");
            put_quoted(out, imfile);
        }
        if (override_ft)
            fprintf(out, " --override-kv general.file_type=int:%d", mq_quantize_ftype_of(ft));
        if (form == 0) {
            for (int k = 0; k < r.n_rules; k++) {
                char arg[RPT_RULE_MAX + 16];
                snprintf(arg, sizeof(arg), "%s=%s", r.rules[k].pattern, mq_dtype_name(r.rules[k].fmt));
                fprintf(out, " \\\n    --tensor-type ");
                put_quoted(out, arg);
            }
        } else {
            fprintf(out, " --tensor-type-file ");
            put_quoted(out, file);
        }
        fprintf(out, " \\\n    ");
        put_quoted(out, m->path);
        fputc(' ', out);
        put_quoted(out, outname);
        fprintf(out, " %s\n", llama_type_arg(r.base, tb));
    }
    if (file) {
        struct text t;
        if ((rc = text_open(&t)) < 0)
            goto done;
        for (int k = 0; k < r.n_rules; k++)
            fprintf(t.f, "%s=%s\n", r.rules[k].pattern, mq_dtype_name(r.rules[k].fmt));
        if ((rc = text_finish(&t, file)) < 0)
            goto done;
        if (!r.n_rules)
            fprintf(out, "# wrote %s: empty, since there are no rules\n", file);
    }
done:
    rpt_llama_rules_free(&r);
    return rc;
}

/* ---- ONNX targets ------------------------------------------------------------------- */

/* The name TensorRT's ONNX parser gives a node's layer: the node's name, or "node_of_" and
 * its first output (onnx-tensorrt's getNodeName). */
static void trt_layer_name(const struct mq_onnx_node *n, char *buf, size_t size)
{
    if (n->name[0] || n->n_outputs == 0)
        snprintf(buf, size, "%s", n->name);
    else
        snprintf(buf, size, "node_of_%s", n->outputs[0]);
}

/* TensorRT's precision for a format: the float formats as they are, every block format
 * int8 (--layerPrecisions has no narrower type; rounded up, as the notes say). */
static const char *trt_precision(enum mq_dtype t)
{
    switch (t) {
    case MQ_DTYPE_F32: return "fp32";
    case MQ_DTYPE_F16: return "fp16";
    case MQ_DTYPE_BF16: return "bf16";
    default: return "int8";
    }
}

static int check_onnx(const struct rpt_export_input *in, const char *tool)
{
    if (in->m->kind != MQ_MODEL_ONNX)
        return mq_error(MQ_EUNSUPPORTED, "%s takes ONNX models; '%s' is not one (for GGUF files: --to llama.cpp)",
                        tool, in->m->path);
    for (int i = 0; i < in->m->n_layers; i++)
        if (!mq_onnx_layer_node(in->m, i))
            return mq_error(MQ_EINTERNAL, "layer '%s' has no node", in->m->layers[i].name);
    return MQ_OK;
}

static int export_trtexec(const struct rpt_export_input *in, FILE *out, const char *file)
{
    const struct mq_model *m = in->m;
    int rc = check_onnx(in, "trtexec");
    if (rc < 0)
        return rc;
    int n_q4 = 0, n_q8 = 0;
    bool used[MQ_DTYPE_COUNT] = {false};
    for (int i = 0; i < m->n_layers; i++) {
        char name[MQ_ONNX_MAX_NAME + 16];
        trt_layer_name(mq_onnx_layer_node(m, i), name, sizeof(name));
        if (!name[0] || strpbrk(name, ",'*"))
            return mq_error(MQ_EUNSUPPORTED,
                            "layer '%s': its TensorRT layer name '%s' cannot be written in --layerPrecisions "
                            "(empty, or holds ',', a quote or '*')",
                            m->layers[i].name, name);
        n_q4 += is_quantized(in->plan->fmt[i]) && in->plan->fmt[i] != MQ_DTYPE_Q8_0;
        n_q8 += in->plan->fmt[i] == MQ_DTYPE_Q8_0;
        used[in->plan->fmt[i]] = true;
    }
    struct text t;
    if ((rc = text_open(&t)) < 0)
        return rc;
    char engine[4096];
    output_name(in, ".engine", engine, sizeof(engine));
    fprintf(t.f, "trtexec --onnx=");
    put_quoted(t.f, m->path);
    fprintf(t.f, " \\\n    --precisionConstraints=obey --layerOutputTypes='*:fp32'");
    if (used[MQ_DTYPE_F16])
        fprintf(t.f, " --fp16");
    if (used[MQ_DTYPE_BF16])
        fprintf(t.f, " --bf16");
    if (n_q4 + n_q8)
        fprintf(t.f, " --int8");
    fprintf(t.f, " \\\n    --layerPrecisions='*:fp32");
    for (int i = 0; i < m->n_layers; i++) {
        if (in->plan->fmt[i] == MQ_DTYPE_F32)
            continue; /* '*' says it */
        char name[MQ_ONNX_MAX_NAME + 16];
        trt_layer_name(mq_onnx_layer_node(m, i), name, sizeof(name));
        fprintf(t.f, ",%s:%s", name, trt_precision(in->plan->fmt[i]));
    }
    fprintf(t.f, "' \\\n    --saveEngine=");
    put_quoted(t.f, engine);
    fputc('\n', t.f);
    if (fflush(t.f) != 0) {
        text_finish(&t, NULL);
        return mq_error(MQ_ENOMEM, "cannot build a recipe");
    }
    note_source(in, out, "TensorRT (trtexec)");
    fprintf(out, "# layers are named as TensorRT's ONNX parser names them (the node's name); '*:fp32' keeps every "
                 "other float layer in fp32, as mixq runs them, and every layer hands fp32 on\n");
    if (n_q8)
        fprintf(out, "# rounded: %d q8_0 layer%s -> int8: TensorRT's int8 has per-channel weight scales and one "
                     "calibrated scale per activation tensor, not ggml's blocks of 32 with activations quantized "
                     "per block at run time\n",
                n_q8, n_q8 > 1 ? "s" : "");
    if (n_q4)
        fprintf(out, "# rounded: %d layer%s of a format under 8 bits (q2_k .. q6_k, q4_0, q4_1, q5_0, q5_1, "
                     "iq4_nl, iq4_xs) -> int8: --layerPrecisions has no narrower precision (TensorRT runs "
                     "4-bit weights only from explicit block-quantized DequantizeLinear nodes of MatMul/Gemm, not "
                     "Conv)\n",
                n_q4, n_q4 > 1 ? "s" : "");
    if (n_q4 + n_q8)
        fprintf(out, "# int8 needs activation ranges: add --calib=CACHE (a calibration cache for this model); "
                     "without one trtexec uses placeholder ranges and the int8 layers' accuracy means nothing\n");
    fputs(t.buf, out);
    if (file) {
        struct text s;
        if ((rc = text_open(&s)) < 0) {
            text_finish(&t, NULL);
            return rc;
        }
        fprintf(s.f, "#!/bin/sh\n# %s: mixq %s, %s\n", "TensorRT recipe", MIXQ_VERSION,
                in->plan_from ? in->plan_from : in->plan->label);
        fprintf(s.f, "# extra trtexec options are passed on: %s --calib=CACHE\nexec %.*s \"$@\"\n", file,
                (int)strlen(t.buf) - 1, t.buf);
        rc = text_finish(&s, file);
    }
    text_finish(&t, NULL);
    return rc;
}

/* How ONNX Runtime's quantization tools take a layer. */
/* How ONNX Runtime's quantization tools take a layer. Conv: int8 weights per output channel
 * with 16-bit activations (QDQ, quantize_static; "A16W8"), not quantize_dynamic's
 * ConvInteger: one uint8 scale per activation tensor loses far more than q8_0's blocks of
 * 32 on models with outlier activations (PP-OCRv4 rec, q8_0: character error rate 0.885
 * under ConvInteger, 0.027 under A16W8, 0.024 measured by mixq), while 16-bit activations
 * are finer than q8_0's, so the recipe rounds towards more precision as documented. */
enum ort_kind { ORT_FLOAT, ORT_QDQ_INT8, ORT_NBITS4, ORT_NBITS8, ORT_KIND_COUNT };

static enum ort_kind ort_kind_of(const char *op, enum mq_dtype t, bool *rounded)
{
    bool matmul = !strcmp(op, "MatMul"), conv = !strcmp(op, "Conv");
    *rounded = false;
    switch (t) {
    case MQ_DTYPE_Q4_0:
        if (matmul)
            return ORT_NBITS4;
        *rounded = true;
        return conv ? ORT_QDQ_INT8 : ORT_FLOAT;
    case MQ_DTYPE_Q8_0:
        if (matmul)
            return ORT_NBITS8;
        *rounded = true; /* Conv: per-channel weights, 16-bit activations; others: float */
        return conv ? ORT_QDQ_INT8 : ORT_FLOAT;
    case MQ_DTYPE_F32:
        return ORT_FLOAT;
    case MQ_DTYPE_F16:
    case MQ_DTYPE_BF16: /* the quantization tools keep float weights in f32 */
        *rounded = true;
        return ORT_FLOAT;
    default:
        /* the other block formats: MatMulNBits has 4 and 8 bits with one scale per block of
         * 32; under 5 bits per weight to 4, else to 8 (rounded either way: no sub-block scales,
         * other code tables); Conv as Q8_0 */
        *rounded = true;
        if (matmul)
            return mq_dtype_bits_per_weight(t) < 5.0 ? ORT_NBITS4 : ORT_NBITS8;
        return conv ? ORT_QDQ_INT8 : ORT_FLOAT;
    }
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_node_list(FILE *f, const struct rpt_export_input *in, const enum ort_kind *kind, enum ort_kind want)
{
    fputc('[', f);
    int n = 0;
    for (int i = 0; i < in->m->n_layers; i++)
        if (kind[i] == want) {
            fputs(n++ ? ", " : "", f);
            json_str(f, mq_onnx_layer_node(in->m, i)->name);
        }
    fputc(']', f);
}

static int export_onnxruntime(const struct rpt_export_input *in, FILE *out, const char *file)
{
    const struct mq_model *m = in->m;
    int rc = check_onnx(in, "onnxruntime");
    if (rc < 0)
        return rc;
    enum ort_kind *kind = calloc((size_t)m->n_layers + 1, sizeof(*kind));
    bool *rounded = calloc((size_t)m->n_layers + 1, sizeof(*rounded));
    if (!kind || !rounded) {
        free(kind);
        free(rounded);
        return mq_error(MQ_ENOMEM, "cannot build a recipe");
    }
    int n_kind[ORT_KIND_COUNT] = {0}, n_rounded = 0, n_float_rounded = 0;
    for (int i = 0; i < m->n_layers && rc == MQ_OK; i++) {
        const struct mq_onnx_node *n = mq_onnx_layer_node(m, i);
        if (!n->name[0] && in->plan->fmt[i] != MQ_DTYPE_F32) {
            rc = mq_error(MQ_EUNSUPPORTED, "layer '%s': its %s node has no name, so onnxruntime.quantization cannot "
                          "select it", m->layers[i].name, n->op_type);
            break;
        }
        kind[i] = ort_kind_of(n->op_type, in->plan->fmt[i], &rounded[i]);
        n_kind[kind[i]]++;
        n_rounded += rounded[i];
        n_float_rounded += rounded[i] && kind[i] == ORT_FLOAT;
    }
    struct text j;
    if (rc == MQ_OK)
        rc = text_open(&j);
    if (rc < 0) {
        free(kind);
        free(rounded);
        return rc;
    }
    char outname[4096];
    output_name(in, ".onnx", outname, sizeof(outname));
    FILE *f = j.f;
    fprintf(f, "{\n  \"mixq_schema\": \"ort-recipe/1\",\n  \"mixq_version\": ");
    json_str(f, MIXQ_VERSION);
    fprintf(f, ",\n  \"model\": ");
    json_str(f, m->path);
    fprintf(f, ",\n  \"output\": ");
    json_str(f, outname);
    fprintf(f, ",\n  \"plan_from\": ");
    json_str(f, in->plan_from ? in->plan_from : in->plan->label);
    fprintf(f, ",\n  \"keep_float\": ");
    json_node_list(f, in, kind, ORT_FLOAT);
    fprintf(f, ",\n  \"qdq_int8\": {\"nodes\": ");
    json_node_list(f, in, kind, ORT_QDQ_INT8);
    fprintf(f, ", \"op_types\": [\"Conv\"], \"weight_type\": \"QInt8\", \"activation_type\": \"QUInt16\", "
               "\"per_channel\": true},\n");
    fprintf(f, "  \"matmul_nbits\": [\n    {\"bits\": 4, \"block_size\": 32, \"symmetric\": true, \"nodes\": ");
    json_node_list(f, in, kind, ORT_NBITS4);
    fprintf(f, "},\n    {\"bits\": 8, \"block_size\": 32, \"symmetric\": true, \"nodes\": ");
    json_node_list(f, in, kind, ORT_NBITS8);
    fprintf(f, "}\n  ],\n  \"layers\": [\n");
    static const char *const kind_name[ORT_KIND_COUNT] = {
        [ORT_FLOAT] = "float", [ORT_QDQ_INT8] = "qdq_int8", [ORT_NBITS4] = "matmul_nbits4",
        [ORT_NBITS8] = "matmul_nbits8",
    };
    for (int i = 0; i < m->n_layers; i++) {
        const struct mq_onnx_node *n = mq_onnx_layer_node(m, i);
        fprintf(f, "    {\"layer\": ");
        json_str(f, m->layers[i].name);
        fprintf(f, ", \"node\": ");
        json_str(f, n->name);
        fprintf(f, ", \"op\": ");
        json_str(f, n->op_type);
        fprintf(f, ", \"plan\": \"%s\", \"onnxruntime\": \"%s\", \"rounded\": %s}%s\n", mq_dtype_name(in->plan->fmt[i]),
                kind_name[kind[i]], rounded[i] ? "true" : "false", i + 1 < m->n_layers ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fflush(f) != 0)
        rc = mq_error(MQ_ENOMEM, "cannot build a recipe");

    if (rc == MQ_OK) {
        note_source(in, out, "ONNX Runtime (onnxruntime.quantization)");
        fprintf(out, "# %d node%s kept in float, %d Conv node%s to int8 weights (per output channel) with 16-bit "
                     "activations (QDQ, quantize_static: activation ranges calibrated on inputs you give), %d MatMul "
                     "node%s to 4-bit and %d to 8-bit blocks of 32 (MatMulNBits, symmetric: ggml's q4_0/q8_0 layout "
                     "with f32 scales)\n",
                n_kind[ORT_FLOAT], n_kind[ORT_FLOAT] == 1 ? "" : "s", n_kind[ORT_QDQ_INT8],
                n_kind[ORT_QDQ_INT8] == 1 ? "" : "s", n_kind[ORT_NBITS4], n_kind[ORT_NBITS4] == 1 ? "" : "s",
                n_kind[ORT_NBITS8]);
        if (n_rounded)
            fprintf(out, "# rounded: %d layer%s (see \"rounded\" in the recipe): q8_0/q4_0 Conv -> int8 weights per "
                         "output channel with 16-bit activations (no 4-bit Conv in onnxruntime; its 8-bit activations "
                         "have one scale per tensor, coarser than q8_0's blocks of 32), q8_0/q4_0 Gemm and "
                         "ConvTranspose -> float (its integer tools take neither), f16/bf16 -> float (%d of them kept "
                         "in f32)\n",
                    n_rounded, n_rounded > 1 ? "s" : "", n_float_rounded);
        if (n_kind[ORT_QDQ_INT8])
            fprintf(out, "# the int8 Conv nodes need calibration inputs for their activation ranges: give the "
                         "snippet .npz files (the model's inputs by name) or .npy files (its one input); on the CPU "
                         "execution provider QDQ nodes run in float, so the gain is the weights' size\n");
        fprintf(out, "# apply with: python3 this-snippet.py [CALIBRATION.npz|.npy ...] (needs numpy, onnx and "
                     "onnxruntime)\n");
        fprintf(out, "import json\nimport sys\n\nimport numpy as np\nimport onnx\n"
                     "from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, "
                     "quantize_static\n"
                     "from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer\n\n");
        if (file) {
            fprintf(out, "r = json.load(open(");
            json_str(out, file);
            fprintf(out, "))\n");
        } else {
            fprintf(out, "r = json.loads(r'''%s''')\n", j.buf);
        }
        fprintf(out, "\n"
                     "\n"
                     "def prepare(g):\n"
                     "    # Weights that Constant nodes hold become initializers, and weights that a subgraph\n"
                     "    # (an If branch) reads from this graph are copied into it: ONNX Runtime's quantizers\n"
                     "    # look a weight up among the initializers of the node's own graph. Stale\n"
                     "    # intermediate shapes are dropped (shape inference redoes them).\n"
                     "    nodes = []\n"
                     "    for n in g.node:\n"
                     "        if n.op_type == \"Constant\" and [a.name for a in n.attribute] == [\"value\"]:\n"
                     "            t = onnx.TensorProto()\n"
                     "            t.CopyFrom(n.attribute[0].t)\n"
                     "            t.name = n.output[0]\n"
                     "            g.initializer.append(t)\n"
                     "        else:\n"
                     "            nodes.append(n)\n"
                     "    del g.node[:]\n"
                     "    g.node.extend(nodes)\n"
                     "    inits = {t.name: t for t in g.initializer}\n"
                     "    used_here = {i for n in g.node for i in n.input} | {o.name for o in g.output}\n"
                     "    moved = set()\n"
                     "    for n in g.node:\n"
                     "        for a in n.attribute:\n"
                     "            for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):\n"
                     "                have = {t.name for t in sub.initializer}\n"
                     "                for name in sorted({i for m in sub.node for i in m.input} - have):\n"
                     "                    if name in inits:\n"
                     "                        sub.initializer.append(inits[name])\n"
                     "                        moved.add(name)\n"
                     "                prepare(sub)\n"
                     "    keep = [t for t in g.initializer if t.name not in moved or t.name in used_here]\n"
                     "    del g.initializer[:]\n"
                     "    g.initializer.extend(keep)\n"
                     "    del g.value_info[:]\n"
                     "\n"
                     "\n"
                     "model = onnx.load(r[\"model\"])\n"
                     "prepare(model.graph)\n"
                     "for g in r[\"matmul_nbits\"]:\n"
                     "    if g[\"nodes\"]:\n"
                     "        q = MatMulNBitsQuantizer(model, bits=g[\"bits\"], block_size=g[\"block_size\"],\n"
                     "                                 is_symmetric=g[\"symmetric\"], nodes_to_include=g[\"nodes\"])\n"
                     "        q.process()\n"
                     "        model = q.model.model\n"
                     "\n"
                     "\n"
                     "class Calibration(CalibrationDataReader):\n"
                     "    # each file: a .npz of the model's inputs by name, or a .npy of its one input\n"
                     "    def __init__(self, paths, names):\n"
                     "        self.feeds = iter([dict(np.load(p)) if p.endswith(\".npz\") else {names[0]: np.load(p)}\n"
                     "                           for p in paths])\n"
                     "\n"
                     "    def get_next(self):\n"
                     "        return next(self.feeds, None)\n"
                     "\n"
                     "\n"
                     "d = r[\"qdq_int8\"]\n"
                     "if d[\"nodes\"]:\n"
                     "    if len(sys.argv) < 2:\n"
                     "        sys.exit(\"error: the int8 Conv nodes need calibration inputs: python3 \" + sys.argv[0] +\n"
                     "                 \" INPUTS.npz|INPUT.npy ...\")\n"
                     "    inits = {t.name for t in model.graph.initializer}\n"
                     "    names = [i.name for i in model.graph.input if i.name not in inits]\n"
                     "    quantize_static(model, r[\"output\"], Calibration(sys.argv[1:], names), quant_format=QuantFormat.QDQ,\n"
                     "                    op_types_to_quantize=d[\"op_types\"], nodes_to_quantize=d[\"nodes\"],\n"
                     "                    per_channel=d[\"per_channel\"], weight_type=QuantType[d[\"weight_type\"]],\n"
                     "                    activation_type=QuantType[d[\"activation_type\"]])\n"
                     "    # quantize_static does not enter subgraphs (If, Loop): a node it left in float fails\n"
                     "    # the recipe rather than pass for quantized\n"
                     "    g = onnx.load(r[\"output\"]).graph\n"
                     "    dq = {o for n in g.node if n.op_type == \"DequantizeLinear\" for o in n.output}\n"
                     "    left = [n.name for n in g.node if n.name in d[\"nodes\"] and n.input[1] not in dq]\n"
                     "    left += sorted(set(d[\"nodes\"]) - {n.name for n in g.node})\n"
                     "    if left:\n"
                     "        import os\n"
                     "        os.remove(r[\"output\"])\n"
                     "        sys.exit(f\"error: onnxruntime.quantization left {len(left)} of the int8 nodes in float (in a \"\n"
                     "                 f\"subgraph, which quantize_static does not enter, or renamed), e.g. '{left[0]}'\")\n"
                     "else:\n"
                     "    onnx.save(model, r[\"output\"])\n");
    }
    if (rc == MQ_OK && file)
        rc = text_finish(&j, file);
    else
        text_finish(&j, NULL);
    free(kind);
    free(rounded);
    return rc;
}

/* ---- the table ---------------------------------------------------------------------- */

const struct rpt_export_target rpt_export_targets[] = {
    {.name = "llama.cpp", .kind = MQ_MODEL_LLAMA, .write = export_llama_cpp,
     .summary = "the llama-quantize command that rebuilds the plan from the source GGUF",
     .file_form = "llama-quantize's --tensor-type-file (one REGEX=TYPE a line)"},
    {.name = "trtexec", .kind = MQ_MODEL_ONNX, .write = export_trtexec,
     .summary = "TensorRT per-layer precisions (--precisionConstraints=obey --layerPrecisions)",
     .file_form = "a shell script running trtexec"},
    {.name = "onnxruntime", .kind = MQ_MODEL_ONNX, .write = export_onnxruntime,
     .summary = "onnxruntime.quantization settings: float nodes, per-node weight types",
     .file_form = "the settings as JSON (ort-recipe/1), which the printed python applies"},
};
const int rpt_export_n_targets = (int)(sizeof(rpt_export_targets) / sizeof(rpt_export_targets[0]));

const struct rpt_export_target *rpt_export_find(const char *name)
{
    for (int i = 0; i < rpt_export_n_targets; i++)
        if (!strcasecmp(rpt_export_targets[i].name, name))
            return &rpt_export_targets[i];
    return NULL;
}
