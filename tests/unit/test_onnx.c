/* tests/unit/test_onnx.c - the ONNX reader, graph compiler, interpreter ops and runner, on
 * small ONNX files built here byte by byte (a protobuf writer below), checked against
 * hand-computed results and against direct (naive) convolutions. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/status.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/runner.h"
#include "model/shapes.h"
#include "model/workload.h"
#include "onnx/onnx.h"
#include "onnx/onnx_inputs.h"
#include "onnx/onnx_internal.h"
#include "tests/unit/test.h"

/* ---- a protobuf writer ----------------------------------------------------------------- */

struct pbw {
    uint8_t *b;
    size_t n, cap;
};

static void pw_raw(struct pbw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        while (cap < w->n + n)
            cap *= 2;
        w->b = realloc(w->b, cap);
        MQ_ASSERT(w->b);
        w->cap = cap;
    }
    if (n)
        memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void pw_varint(struct pbw *w, uint64_t v)
{
    uint8_t b[10];
    int n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    pw_raw(w, b, (size_t)n);
}

static void pw_key(struct pbw *w, int field, int wt) { pw_varint(w, (uint64_t)field << 3 | (uint64_t)wt); }
static void pw_int(struct pbw *w, int field, int64_t v)
{
    pw_key(w, field, 0);
    pw_varint(w, (uint64_t)v);
}
static void pw_bytes(struct pbw *w, int field, const void *p, size_t n)
{
    pw_key(w, field, 2);
    pw_varint(w, n);
    pw_raw(w, p, n);
}
static void pw_str(struct pbw *w, int field, const char *s) { pw_bytes(w, field, s, strlen(s)); }
static void pw_f32(struct pbw *w, int field, float f)
{
    uint8_t b[4];
    memcpy(b, &f, 4); /* little-endian hosts only, as the tests run */
    pw_key(w, field, 5);
    pw_raw(w, b, 4);
}
/* Moves sub into w as a length-delimited field. */
static void pw_msg(struct pbw *w, int field, struct pbw *sub)
{
    pw_bytes(w, field, sub->b, sub->n);
    free(sub->b);
    memset(sub, 0, sizeof(*sub));
}

/* ---- ONNX messages ------------------------------------------------------------------------ */

enum { F32 = 1, U8 = 2, I8 = 3, I32 = 6, I64 = 7, BOOL = 9, F16 = 10, F64 = 11 };

/* A float tensor in raw_data. */
static void tensor_f32(struct pbw *w, int field, const char *name, int nd, const int64_t *dims, const float *v)
{
    struct pbw t = {0};
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        pw_int(&t, 1, dims[i]);
        n *= dims[i];
    }
    pw_int(&t, 2, F32);
    pw_str(&t, 8, name);
    pw_bytes(&t, 9, v, (size_t)n * 4);
    pw_msg(w, field, &t);
}

/* An int64 tensor in int64_data (packed). */
static void tensor_i64(struct pbw *w, int field, const char *name, int nd, const int64_t *dims, const int64_t *v)
{
    struct pbw t = {0}, p = {0};
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        pw_int(&t, 1, dims[i]);
        n *= dims[i];
    }
    pw_int(&t, 2, I64);
    pw_str(&t, 8, name);
    for (int64_t i = 0; i < n; i++)
        pw_varint(&p, (uint64_t)v[i]);
    pw_msg(&t, 7, &p);
    pw_msg(w, field, &t);
}

/* An 8-bit tensor (elem U8 or I8) in raw_data, one byte per value. */
static void tensor_8bit(struct pbw *w, int field, const char *name, int elem, int nd,
                        const int64_t *dims, const int64_t *v)
{
    struct pbw t = {0};
    uint8_t b[256];
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        pw_int(&t, 1, dims[i]);
        n *= dims[i];
    }
    for (int64_t i = 0; i < n && i < 256; i++)
        b[i] = (uint8_t)v[i];
    pw_int(&t, 2, elem);
    pw_str(&t, 8, name);
    pw_bytes(&t, 9, b, (size_t)n);
    pw_msg(w, field, &t);
}

static void value_info(struct pbw *w, int field, const char *name, int elem, int nd, const int64_t *dims)
{
    struct pbw vi = {0}, tp = {0}, tt = {0}, sh = {0};
    pw_str(&vi, 1, name);
    pw_int(&tt, 1, elem);
    for (int i = 0; i < nd; i++) {
        struct pbw d = {0};
        if (dims[i] >= 0)
            pw_int(&d, 1, dims[i]);
        else
            pw_str(&d, 2, "batch");
        pw_msg(&sh, 1, &d);
    }
    pw_msg(&tt, 2, &sh);
    pw_msg(&tp, 1, &tt);
    pw_msg(&vi, 2, &tp);
    pw_msg(w, field, &vi);
}

/* Attributes, written with the node. */
static void attr_int(struct pbw *n, const char *name, int64_t v)
{
    struct pbw a = {0};
    pw_str(&a, 1, name);
    pw_int(&a, 20, 2);
    pw_int(&a, 3, v);
    pw_msg(n, 5, &a);
}
static void attr_float(struct pbw *n, const char *name, float v)
{
    struct pbw a = {0};
    pw_str(&a, 1, name);
    pw_int(&a, 20, 1);
    pw_f32(&a, 2, v);
    pw_msg(n, 5, &a);
}
static void attr_ints(struct pbw *n, const char *name, int cnt, const int64_t *v)
{
    struct pbw a = {0}, p = {0};
    pw_str(&a, 1, name);
    pw_int(&a, 20, 7);
    for (int i = 0; i < cnt; i++)
        pw_varint(&p, (uint64_t)v[i]);
    pw_msg(&a, 8, &p);
    pw_msg(n, 5, &a);
}
static void attr_str(struct pbw *n, const char *name, const char *v)
{
    struct pbw a = {0};
    pw_str(&a, 1, name);
    pw_int(&a, 20, 3);
    pw_str(&a, 4, v);
    pw_msg(n, 5, &a);
}
static void attr_graph(struct pbw *n, const char *name, struct pbw *g)
{
    struct pbw a = {0};
    pw_str(&a, 1, name);
    pw_int(&a, 20, 5);
    pw_msg(&a, 6, g);
    pw_msg(n, 5, &a);
}

/* Starts a node: op, inputs and outputs as " "-separated names ("-" for an omitted input). */
static struct pbw node_begin(const char *op, const char *ins, const char *outs)
{
    struct pbw n = {0};
    char buf[512], *tok, *save;
    snprintf(buf, sizeof(buf), "%s", ins);
    for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        pw_str(&n, 1, strcmp(tok, "-") == 0 ? "" : tok);
    snprintf(buf, sizeof(buf), "%s", outs);
    for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        pw_str(&n, 2, tok);
    pw_str(&n, 3, outs);
    pw_str(&n, 4, op);
    return n;
}

static void model_finish(struct pbw *m, struct pbw *graph, int opset)
{
    struct pbw os = {0};
    pw_int(m, 1, 8);
    pw_str(m, 2, "mixq-test");
    pw_str(&os, 1, "");
    pw_int(&os, 2, opset);
    pw_msg(m, 8, &os);
    pw_msg(m, 7, graph);
}

static int write_file(const char *name, const struct pbw *m, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t k = fwrite(m->b, 1, m->n, f);
    return fclose(f) == 0 && k == m->n ? 0 : -1;
}

/* ---- running one op -------------------------------------------------------------------- */

struct t_in {
    const char *name;
    int nd;
    int64_t dims[4];
    const float *f; /* float data, or */
    const int64_t *i; /* int64 data */
    bool init;        /* an initializer (constant) rather than a graph input */
};

#define IF(n, v, nd_, ...) {.name = n, .f = v, .nd = nd_, .dims = {__VA_ARGS__}}
#define CF(n, v, nd_, ...) {.name = n, .f = v, .nd = nd_, .dims = {__VA_ARGS__}, .init = true}
#define CI(n, v, nd_, ...) {.name = n, .i = v, .nd = nd_, .dims = {__VA_ARGS__}, .init = true}
#define NONE {.name = "-"}

/* Builds a one-node model (inputs as graph inputs or initializers), runs it on the host
 * reference (or `backend` with a uniform `fmt` plan) and returns output 0. */
static int run_op(const char *op, const struct t_in *ins, int n_in, void (*attrs)(struct pbw *, const void *),
                  const void *actx, int opset, const char *backend, enum mq_dtype fmt, struct mq_onnx_io *out,
                  struct mq_model **keep)
{
    struct pbw g = {0}, m = {0};
    char names[256] = "";
    for (int i = 0; i < n_in; i++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof(names) - l, "%s%s", i ? " " : "", ins[i].name);
        if (!ins[i].name[0] || !strcmp(ins[i].name, "-"))
            continue;
        if (ins[i].init) {
            if (ins[i].f)
                tensor_f32(&g, 5, ins[i].name, ins[i].nd, ins[i].dims, ins[i].f);
            else
                tensor_i64(&g, 5, ins[i].name, ins[i].nd, ins[i].dims, ins[i].i);
        } else {
            value_info(&g, 11, ins[i].name, ins[i].f ? F32 : I64, ins[i].nd, ins[i].dims);
        }
    }
    struct pbw n = node_begin(op, names, "y");
    if (attrs)
        attrs(&n, actx);
    pw_msg(&g, 1, &n);
    value_info(&g, 12, "y", F32, 0, NULL);
    model_finish(&m, &g, opset);
    char path[4096];
    struct mq_model *model = NULL;
    struct mq_onnx_exec *x = NULL;
    struct mq_plan *plan = NULL;
    struct be_backend *be = NULL;
    int rc = write_file("op.onnx", &m, path, sizeof(path));
    free(m.b);
    if (rc < 0)
        return MQ_EIO;
    if ((rc = mq_model_load(path, &model)) < 0)
        return rc;
    if (backend && ((rc = mq_plan_uniform(model, fmt, &plan)) < 0 || (rc = be_open(backend, &(struct be_config){.n_threads = 1}, &be)) < 0))
        goto done;
    if ((rc = mq_onnx_exec_new(model, plan, be, &x)) < 0)
        goto done;
    struct mq_onnx_io io[8];
    int k = 0;
    for (int i = 0; i < n_in; i++) {
        if (ins[i].init || !ins[i].name[0] || !strcmp(ins[i].name, "-"))
            continue;
        io[k] = (struct mq_onnx_io){.name = ins[i].name, .type = ins[i].f ? MQ_ONNX_IO_F32 : MQ_ONNX_IO_I64,
                                    .n_dims = ins[i].nd, .data = ins[i].f ? (void *)ins[i].f : (void *)ins[i].i};
        memcpy(io[k].dims, ins[i].dims, sizeof(ins[i].dims));
        k++;
    }
    rc = mq_onnx_exec_run(x, io, k, out, 1);
done:
    mq_onnx_exec_free(x);
    be_close(be);
    mq_plan_free(plan);
    if (keep && rc == MQ_OK)
        *keep = model;
    else
        mq_model_free(model);
    return rc;
}

static int64_t io_count(const struct mq_onnx_io *o)
{
    int64_t n = 1;
    for (int i = 0; i < o->n_dims; i++)
        n *= o->dims[i];
    return n;
}

/* ---- reader ---------------------------------------------------------------------------- */

static int test_read_tensors(void)
{
    struct pbw g = {0}, m = {0}, t = {0}, p = {0};
    int64_t d23[] = {2, 3};
    float fv[] = {1.5f, -2, 3, 0.25f, 5, -6};
    tensor_f32(&g, 5, "raw", 2, d23, fv);
    /* float_data packed */
    pw_int(&t, 1, 2);
    pw_int(&t, 1, 3);
    pw_int(&t, 2, F32);
    pw_str(&t, 8, "packed");
    for (int i = 0; i < 6; i++) {
        uint32_t u;
        memcpy(&u, &fv[i], 4);
        uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        pw_raw(&p, b, 4);
    }
    pw_msg(&t, 4, &p);
    pw_msg(&g, 5, &t);
    /* float_data unpacked, one fixed32 field per value */
    pw_int(&t, 1, 6);
    pw_int(&t, 2, F32);
    pw_str(&t, 8, "unpacked");
    for (int i = 0; i < 6; i++)
        pw_f32(&t, 4, fv[i]);
    pw_msg(&g, 5, &t);
    /* int8 in int32_data, float16 in int32_data, double in double_data */
    pw_int(&t, 1, 3);
    pw_int(&t, 2, I8);
    pw_str(&t, 8, "i8");
    int64_t i8v[] = {-128, 5, 127};
    for (int i = 0; i < 3; i++)
        pw_varint(&p, (uint64_t)i8v[i]);
    pw_msg(&t, 5, &p);
    pw_msg(&g, 5, &t);
    pw_int(&t, 1, 2);
    pw_int(&t, 2, F16);
    pw_str(&t, 8, "f16");
    pw_varint(&p, 0x3C00); /* 1.0 */
    pw_varint(&p, 0xC000); /* -2.0 */
    pw_msg(&t, 5, &p);
    pw_msg(&g, 5, &t);
    pw_int(&t, 2, F64);
    pw_str(&t, 8, "f64");
    double dv = 0.125;
    pw_key(&t, 10, 1);
    pw_raw(&t, &dv, 8);
    pw_msg(&g, 5, &t);
    int64_t iv[] = {-7, 1LL << 40};
    tensor_i64(&g, 5, "i64", 1, (int64_t[]){2}, iv);
    value_info(&g, 11, "x", F32, 2, (int64_t[]){-1, 3});
    value_info(&g, 12, "x", F32, 2, (int64_t[]){-1, 3});
    model_finish(&m, &g, 13);
    struct pbw meta = {0};
    pw_str(&meta, 1, "character");
    pw_str(&meta, 2, "a\nb");
    pw_msg(&m, 14, &meta);

    struct mq_onnx_file *f;
    T_CHECK(mq_onnx_open_memory(m.b, m.n, "t.onnx", &f) == MQ_OK);
    T_CHECK(f->ir_version == 8 && mq_onnx_opset(f) == 13 && !strcmp(f->producer, "mixq-test"));
    T_CHECK(mq_onnx_meta_get(f, "character") && !strcmp(mq_onnx_meta_get(f, "character"), "a\nb"));
    T_CHECK(f->graph->n_inits == 7 && f->graph->n_inputs == 1 && f->graph->inputs[0].dims[0] == -1 &&
            !strcmp(f->graph->inputs[0].dim_params[0], "batch") && f->graph->inputs[0].dims[1] == 3);
    float out[6];
    int64_t oi[3];
    for (int k = 0; k < 3; k++) {
        T_CHECK(f->graph->inits[k].n_elems == 6);
        T_CHECK(mq_onnx_tensor_f32(&f->graph->inits[k], out) == MQ_OK);
        T_CHECK(!memcmp(out, fv, sizeof(fv)));
    }
    T_CHECK(mq_onnx_tensor_i64(&f->graph->inits[3], oi) == MQ_OK && oi[0] == -128 && oi[1] == 5 && oi[2] == 127);
    T_CHECK(mq_onnx_tensor_f32(&f->graph->inits[4], out) == MQ_OK && out[0] == 1.0f && out[1] == -2.0f);
    T_CHECK(mq_onnx_tensor_f32(&f->graph->inits[5], out) == MQ_OK && out[0] == 0.125f);
    T_CHECK(mq_onnx_tensor_i64(&f->graph->inits[6], oi) == MQ_OK && oi[0] == -7 && oi[1] == (1LL << 40));
    T_CHECK(mq_onnx_tensor_i64(&f->graph->inits[0], oi) == MQ_EUNSUPPORTED); /* floats as ints */
    mq_onnx_close(f);
    free(m.b);
    return T_PASS;
}

/* Malformed and unsupported files, built by mutating a valid one or by hand. */
static int test_read_malformed(void)
{
    struct pbw g = {0}, good = {0};
    float w[4] = {1, 2, 3, 4};
    tensor_f32(&g, 5, "w", 2, (int64_t[]){2, 2}, w);
    value_info(&g, 11, "x", F32, 2, (int64_t[]){1, 2});
    struct pbw n = node_begin("MatMul", "x w", "y");
    pw_msg(&g, 1, &n);
    value_info(&g, 12, "y", F32, 2, (int64_t[]){1, 2});
    model_finish(&good, &g, 13);
    struct mq_onnx_file *f;
    T_CHECK(mq_onnx_open_memory(good.b, good.n, "good", &f) == MQ_OK);
    mq_onnx_close(f);

    static const uint8_t varint11[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t group[] = {0x0b};                  /* field 1, wire type 3 */
    static const uint8_t wt7[] = {0x0f};                    /* wire type 7 */
    static const uint8_t graph_as_int[] = {0x38, 0x01};     /* field 7 (graph) as a varint */
    static const uint8_t past_end[] = {0x3a, 0x7f, 0x00};   /* graph of 127 bytes, 1 present */
    static const uint8_t field0[] = {0x00, 0x01};
    static const uint8_t no_graph[] = {0x08, 0x08};         /* ir_version only */
    static const uint8_t trunc_fixed[] = {0x3a, 0x02, 0x15, 0x00};
    struct {
        const char *what;
        const uint8_t *b;
        size_t n;
        int want;
    } cases[] = {
        {"11-byte varint", varint11, sizeof(varint11), MQ_EFORMAT},
        {"group wire type", group, sizeof(group), MQ_EFORMAT},
        {"wire type 7", wt7, sizeof(wt7), MQ_EFORMAT},
        {"graph as a varint", graph_as_int, sizeof(graph_as_int), MQ_EFORMAT},
        {"length past the end", past_end, sizeof(past_end), MQ_EFORMAT},
        {"field number 0", field0, sizeof(field0), MQ_EFORMAT},
        {"no graph", no_graph, sizeof(no_graph), MQ_EFORMAT},
        {"truncated fixed32", trunc_fixed, sizeof(trunc_fixed), MQ_EFORMAT},
        {"empty", (const uint8_t *)"", 0, MQ_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = mq_onnx_open_memory(cases[i].b, cases[i].n, cases[i].what, &f);
        T_CHECK_MSG(rc == cases[i].want && f == NULL, "%s: got %d", cases[i].what, rc);
    }
    /* every truncation of the valid file is refused, never read past its end */
    for (size_t k = 0; k < good.n; k++) {
        int rc = mq_onnx_open_memory(good.b, k, "truncated", &f);
        T_CHECK_MSG(rc < 0 && f == NULL, "truncated to %zu bytes: %d", k, rc);
    }

    /* tensors: data that do not match dims, external data, NUL in a name, absurd dims */
    struct {
        const char *what;
        int64_t dim;
        int raw_bytes;
        bool external, nul;
        int want;
    } tc[] = {
        {"raw_data short", 4, 12, false, false, MQ_EFORMAT},
        {"raw_data long", 4, 20, false, false, MQ_EFORMAT},
        {"absurd dims", (int64_t)1 << 62, 16, false, false, MQ_EFORMAT},
        {"negative dim", -4, 16, false, false, MQ_EFORMAT},
        {"external data", 4, 0, true, false, MQ_EUNSUPPORTED},
        {"NUL in name", 4, 16, false, true, MQ_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
        struct pbw t = {0}, gg = {0}, mm = {0};
        pw_int(&t, 1, tc[i].dim);
        pw_int(&t, 2, F32);
        pw_bytes(&t, 8, tc[i].nul ? "a\0b" : "w", tc[i].nul ? 3 : 1);
        uint8_t zeros[32] = {0};
        if (tc[i].raw_bytes)
            pw_bytes(&t, 9, zeros, (size_t)tc[i].raw_bytes);
        if (tc[i].external) {
            struct pbw e = {0};
            pw_str(&e, 1, "location");
            pw_str(&e, 2, "weights.bin");
            pw_msg(&t, 13, &e);
            pw_int(&t, 14, 1);
        }
        pw_msg(&gg, 5, &t);
        model_finish(&mm, &gg, 13);
        int rc = mq_onnx_open_memory(mm.b, mm.n, tc[i].what, &f);
        free(mm.b);
        T_CHECK_MSG(rc == tc[i].want, "%s: got %d", tc[i].what, rc);
    }
    free(good.b);
    return T_PASS;
}

/* Graph-level errors: cycles, missing values, duplicate producers, unsupported ops
 * (listed at once), all through mq_model_load. */
static int test_graph_errors(void)
{
    struct {
        const char *what;
        const char *nodes[3][3]; /* op, inputs, outputs */
        int want;
    } cases[] = {
        {"cycle", {{"Relu", "b", "a"}, {"Relu", "a", "b"}, {"Relu", "b", "y"}}, MQ_EFORMAT},
        {"self loop", {{"Add", "x y", "y"}}, MQ_EFORMAT},
        {"missing value", {{"Add", "x nowhere", "y"}}, MQ_EFORMAT},
        {"two producers", {{"Relu", "x", "y"}, {"Neg", "x", "y"}}, MQ_EFORMAT},
        {"unsupported ops", {{"RNN", "x", "a"}, {"Loop", "a", "b"}, {"RNN", "b", "y"}}, MQ_EUNSUPPORTED},
        {"wrong input count", {{"Relu", "x x", "y"}}, MQ_EFORMAT},
        {"no output producer", {{"Relu", "x", "z"}}, MQ_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pbw g = {0}, m = {0};
        value_info(&g, 11, "x", F32, 1, (int64_t[]){4});
        for (int k = 0; k < 3 && cases[i].nodes[k][0]; k++) {
            struct pbw n = node_begin(cases[i].nodes[k][0], cases[i].nodes[k][1], cases[i].nodes[k][2]);
            pw_msg(&g, 1, &n);
        }
        value_info(&g, 12, "y", F32, 1, (int64_t[]){4});
        model_finish(&m, &g, 13);
        char path[4096];
        T_CHECK(write_file("graph.onnx", &m, path, sizeof(path)) == 0);
        free(m.b);
        struct mq_model *model = NULL;
        int rc = mq_model_load(path, &model);
        mq_model_free(model);
        T_CHECK_MSG(rc == cases[i].want, "%s: got %d, want %d", cases[i].what, rc, cases[i].want);
    }
    return T_PASS;
}

/* ---- ops against hand-computed results ------------------------------------------------------ */

static void a_none(struct pbw *n, const void *ctx) { (void)n, (void)ctx; }
static void a_alpha(struct pbw *n, const void *ctx) { (void)ctx; attr_float(n, "alpha", 0.5f); }
static void a_hsig(struct pbw *n, const void *ctx)
{
    (void)ctx;
    attr_float(n, "alpha", 0.25f);
    attr_float(n, "beta", 0.5f);
}
static void a_axis1(struct pbw *n, const void *ctx) { (void)ctx; attr_int(n, "axis", 1); }
static void a_axis0(struct pbw *n, const void *ctx) { (void)ctx; attr_int(n, "axis", 0); }
static void a_perm(struct pbw *n, const void *ctx) { (void)ctx; attr_ints(n, "perm", 3, (int64_t[]){2, 0, 1}); }
static void a_eps(struct pbw *n, const void *ctx) { (void)ctx; attr_float(n, "epsilon", 0.0f); }
static void a_pool(struct pbw *n, const void *ctx)
{
    (void)ctx;
    attr_ints(n, "kernel_shape", 2, (int64_t[]){2, 2});
    attr_ints(n, "strides", 2, (int64_t[]){2, 2});
    attr_ints(n, "pads", 4, (int64_t[]){0, 0, 1, 1});
}
static void a_keep0(struct pbw *n, const void *ctx) { (void)ctx; attr_int(n, "keepdims", 0); }
static void a_reflect(struct pbw *n, const void *ctx) { (void)ctx; attr_str(n, "mode", "reflect"); }
static void a_gemm(struct pbw *n, const void *ctx)
{
    (void)ctx;
    attr_int(n, "transB", 1);
    attr_float(n, "alpha", 2.0f);
    attr_float(n, "beta", 0.5f);
}
static void a_cast_i(struct pbw *n, const void *ctx) { (void)ctx; attr_int(n, "to", I32); }
static void a_nearest(struct pbw *n, const void *ctx) { (void)ctx; attr_str(n, "mode", "nearest"); }
static void a_linear(struct pbw *n, const void *ctx)
{
    (void)ctx;
    attr_str(n, "mode", "linear");
    attr_str(n, "coordinate_transformation_mode", "align_corners");
}

static void a_axes0(struct pbw *n, const void *ctx) { (void)ctx; attr_ints(n, "axes", 1, (int64_t[]){0}); }
static void a_noop(struct pbw *n, const void *ctx) { (void)ctx; attr_int(n, "noop_with_empty_axes", 1); }
static void a_groups2(struct pbw *n, const void *ctx)
{
    (void)ctx;
    attr_int(n, "num_groups", 2);
    attr_float(n, "epsilon", 0.0f);
}
static void a_gelu_tanh(struct pbw *n, const void *ctx) { (void)ctx; attr_str(n, "approximate", "tanh"); }
static void a_bs2(struct pbw *n, const void *ctx) { (void)ctx; attr_int(n, "blocksize", 2); }
static void a_block(struct pbw *n, const void *ctx)
{
    (void)ctx;
    attr_int(n, "block_size", 2);
}
static void a_bs2_crd(struct pbw *n, const void *ctx)
{
    (void)ctx;
    attr_int(n, "blocksize", 2);
    attr_str(n, "mode", "CRD");
}
static void a_up_linear(struct pbw *n, const void *ctx)
{
    (void)ctx;
    attr_str(n, "mode", "linear");
    struct pbw a = {0}, p = {0};
    pw_str(&a, 1, "scales");
    pw_int(&a, 20, 6); /* FLOATS */
    const float sc[4] = {1, 1, 1, 2};
    for (int i = 0; i < 4; i++) {
        uint8_t b[4];
        memcpy(b, &sc[i], 4);
        pw_raw(&p, b, 4);
    }
    pw_msg(&a, 7, &p);
    pw_msg(n, 5, &a);
}
/* Einsum: ctx is the equation */
static void a_eq(struct pbw *n, const void *ctx) { attr_str(n, "equation", ctx); }
static void a_eq_bij(struct pbw *n, const void *ctx) { (void)ctx; attr_str(n, "equation", "bij,jk->bik"); }
static void a_eq_ell(struct pbw *n, const void *ctx) { (void)ctx; attr_str(n, "equation", "...ij,kj->...ik"); }
static void a_eq_ki(struct pbw *n, const void *ctx) { (void)ctx; attr_str(n, "equation", "ij,jk->ki"); }
static void a_eq_implicit(struct pbw *n, const void *ctx) { (void)ctx; attr_str(n, "equation", "ij,jk"); }
static void a_eq_bh(struct pbw *n, const void *ctx) { (void)ctx; attr_str(n, "equation", "bhij,bhjk->bhik"); }
static void a_gru_rev_lbr(struct pbw *n, const void *ctx)
{
    (void)ctx;
    attr_str(n, "direction", "reverse");
    attr_int(n, "linear_before_reset", 1);
}
static void a_bidir(struct pbw *n, const void *ctx)
{
    attr_str(n, "direction", "bidirectional");
    attr_int(n, "layout", ctx != NULL);
}
/* ctx "name=value": one string attribute */
static void a_kv(struct pbw *n, const void *ctx)
{
    char name[64];
    const char *eq = strchr(ctx, '=');
    snprintf(name, sizeof(name), "%.*s", (int)(eq - (const char *)ctx), (const char *)ctx);
    attr_str(n, name, eq + 1);
}

static const float V6[] = {-2, -1, 0, 1, 2, 3};
static const float V4[] = {1, 2, 3, 4};

struct op_case {
    const char *name, *op;
    struct t_in in[5];
    int n_in;
    void (*attrs)(struct pbw *, const void *);
    int opset;
    int nd;
    int64_t dims[4];
    float want[32];
    int n_want;
};

static const struct op_case op_cases[] = {
    {"add broadcast", "Add", {IF("a", V6, 2, 2, 3), IF("b", ((const float[]){10, 20, 30}), 1, 3)}, 2, a_none, 13, 2,
     {2, 3}, {8, 19, 30, 11, 22, 33}, 6},
    {"sub scalar", "Sub", {IF("a", V4, 1, 4), IF("b", ((const float[]){1}), 0, 0)}, 2, a_none, 13, 1, {4}, {0, 1, 2, 3}, 4},
    {"mul rows", "Mul", {IF("a", V6, 2, 2, 3), IF("b", ((const float[]){2, -1}), 2, 2, 1)}, 2, a_none, 13, 2, {2, 3},
     {-4, -2, 0, -1, -2, -3}, 6},
    {"div", "Div", {IF("a", V4, 1, 4), IF("b", ((const float[]){2, 4, 2, 8}), 1, 4)}, 2, a_none, 13, 1, {4},
     {0.5f, 0.5f, 1.5f, 0.5f}, 4},
    {"pow", "Pow", {IF("a", V4, 1, 4), IF("b", ((const float[]){2}), 0, 0)}, 2, a_none, 13, 1, {4}, {1, 4, 9, 16}, 4},
    {"relu", "Relu", {IF("x", V6, 2, 2, 3)}, 1, a_none, 13, 2, {2, 3}, {0, 0, 0, 1, 2, 3}, 6},
    {"leaky relu", "LeakyRelu", {IF("x", V6, 1, 6)}, 1, a_alpha, 13, 1, {6}, {-1, -0.5f, 0, 1, 2, 3}, 6},
    {"hard sigmoid", "HardSigmoid", {IF("x", V6, 1, 6)}, 1, a_hsig, 13, 1, {6}, {0, 0.25f, 0.5f, 0.75f, 1, 1}, 6},
    {"hard swish", "HardSwish", {IF("x", ((const float[]){-4, -3, 0, 3}), 1, 4)}, 1, a_none, 14, 1, {4}, {0, 0, 0, 3}, 4},
    {"clip inputs", "Clip",
     {IF("x", V6, 1, 6), CF("lo", ((const float[]){-1}), 0, 0), CF("hi", ((const float[]){2}), 0, 0)},
     3, a_none, 13, 1, {6}, {-1, -1, 0, 1, 2, 2}, 6},
    {"sigmoid", "Sigmoid", {IF("x", ((const float[]){0, 1.0986123f}), 1, 2)}, 1, a_none, 13, 1, {2}, {0.5f, 0.75f}, 2},
    {"tanh", "Tanh", {IF("x", ((const float[]){0, 0.54930614f}), 1, 2)}, 1, a_none, 13, 1, {2}, {0, 0.5f}, 2},
    {"exp", "Exp", {IF("x", ((const float[]){0, 0.69314718f}), 1, 2)}, 1, a_none, 13, 1, {2}, {1, 2}, 2},
    {"erf", "Erf", {IF("x", ((const float[]){0, 0.47693628f}), 1, 2)}, 1, a_none, 13, 1, {2}, {0, 0.5f}, 2},
    {"neg", "Neg", {IF("x", V4, 1, 4)}, 1, a_none, 13, 1, {4}, {-1, -2, -3, -4}, 4},
    {"squeeze", "Squeeze", {IF("x", V4, 3, 1, 4, 1), CI("ax", ((const int64_t[]){0, -1}), 1, 2)}, 2, a_none, 13, 1, {4},
     {1, 2, 3, 4}, 4},
    {"constant of shape", "ConstantOfShape", {CI("s", ((const int64_t[]){2, 1}), 1, 2)}, 1, a_none, 13, 2, {2, 1},
     {0, 0}, 2},
    {"split equal", "Split", {IF("x", V6, 1, 6)}, 1, a_none, 13, 1, {6}, {-2, -1, 0, 1, 2, 3}, 6},
    {"sqrt", "Sqrt", {IF("x", ((const float[]){0, 1, 4, 9}), 1, 4)}, 1, a_none, 13, 1, {4}, {0, 1, 2, 3}, 4},
    {"softmax", "Softmax", {IF("x", ((const float[]){0, 0, 0, 1.0986123f}), 2, 2, 2)}, 1, a_none, 13, 2, {2, 2},
     {0.5f, 0.5f, 0.25f, 0.75f}, 4},
    {"batchnorm", "BatchNormalization",
     {IF("x", V4, 3, 1, 2, 2), CF("s", ((const float[]){2, 1}), 1, 2), CF("b", ((const float[]){0, 1}), 1, 2),
      CF("mu", ((const float[]){1, 0}), 1, 2), CF("var", ((const float[]){4, 1}), 1, 2)},
     5, a_eps, 13, 3, {1, 2, 2}, {0, 1, 4, 5}, 4},
    {"layernorm", "LayerNormalization",
     {IF("x", ((const float[]){1, 3, 2, 4}), 2, 2, 2), CF("s", ((const float[]){1, 2}), 1, 2)}, 2, a_eps, 17, 2,
     {2, 2}, {-1, 2, -1, 2}, 4},
    {"maxpool pads", "MaxPool", {IF("x", ((const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}), 4, 1, 1, 3, 3)}, 1, a_pool, 13, 4,
     {1, 1, 2, 2}, {5, 6, 8, 9}, 4},
    {"averagepool pads", "AveragePool", {IF("x", ((const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}), 4, 1, 1, 3, 3)}, 1, a_pool, 13,
     4, {1, 1, 2, 2}, {3, 4.5f, 7.5f, 9}, 4},
    {"global average pool", "GlobalAveragePool", {IF("x", V4, 4, 1, 2, 1, 2)}, 1, a_none, 13, 4, {1, 2, 1, 1}, {1.5f, 3.5f}, 2},
    {"transpose", "Transpose", {IF("x", V6, 3, 1, 2, 3)}, 1, a_perm, 13, 3, {3, 1, 2}, {-2, 1, -1, 2, 0, 3}, 6},
    {"reshape -1 0", "Reshape", {IF("x", V6, 2, 2, 3), CI("s", ((const int64_t[]){0, -1}), 1, 2)}, 2, a_none, 13,
     2, {2, 3}, {-2, -1, 0, 1, 2, 3}, 6},
    {"flatten", "Flatten", {IF("x", V6, 3, 1, 2, 3)}, 1, a_none, 13, 2, {1, 6}, {-2, -1, 0, 1, 2, 3}, 6},
    {"slice negative steps", "Slice",
     {IF("x", V6, 1, 6), CI("st", ((const int64_t[]){-1}), 1, 1), CI("en", ((const int64_t[]){0}), 1, 1),
      CI("ax", ((const int64_t[]){0}), 1, 1), CI("sp", ((const int64_t[]){-2}), 1, 1)},
     5, a_none, 13, 1, {3}, {3, 1, -1}, 3},
    {"concat", "Concat", {IF("a", V4, 2, 1, 2), IF("b", V6, 2, 1, 3)}, 2, a_axis1, 13, 2, {1, 5}, {1, 2, -2, -1, 0}, 5},
    {"gather", "Gather", {IF("x", V6, 2, 3, 2), CI("i", ((const int64_t[]){2, -3}), 1, 2)}, 2, a_axis0, 13, 2,
     {2, 2}, {2, 3, -2, -1}, 4},
    {"unsqueeze", "Unsqueeze", {IF("x", V4, 1, 4), CI("ax", ((const int64_t[]){0}), 1, 1)}, 2, a_none, 13, 2,
     {1, 4}, {1, 2, 3, 4}, 4},
    {"reduce mean", "ReduceMean", {IF("x", V6, 2, 2, 3), CI("ax", ((const int64_t[]){1}), 1, 1)}, 2, a_keep0,
     18, 1, {2}, {-1, 2}, 2},
    {"pad reflect", "Pad", {IF("x", V4, 1, 4), CI("p", ((const int64_t[]){2, 1}), 1, 2)}, 2, a_reflect, 13, 1,
     {7}, {3, 2, 1, 2, 3, 4, 3}, 7},
    {"expand", "Expand", {IF("x", ((const float[]){1, 2}), 2, 2, 1), CI("s", ((const int64_t[]){2, 3}), 1, 2)}, 2,
     a_none, 13, 2, {2, 3}, {1, 1, 1, 2, 2, 2}, 6},
    {"gemm transB alpha beta", "Gemm",
     {IF("a", ((const float[]){1, 2}), 2, 1, 2), CF("b", V4, 2, 2, 2), CF("c", ((const float[]){2, 4}), 1, 2)},
     3, a_gemm, 13, 2, {1, 2}, {11, 24}, 2},
    {"matmul batched", "MatMul", {IF("a", V4, 3, 2, 1, 2), IF("b", ((const float[]){1, -1}), 2, 2, 1)}, 2, a_none, 13, 3,
     {2, 1, 1}, {-1, -1}, 2},
    {"resize nearest", "Resize",
     {IF("x", ((const float[]){1, 2}), 4, 1, 1, 1, 2), NONE, CF("sc", ((const float[]){1, 1, 1, 2}), 1, 4)},
     3, a_nearest, 13, 4, {1, 1, 1, 4}, {1, 1, 2, 2}, 4},
    {"resize linear", "Resize",
     {IF("x", ((const float[]){1, 2}), 4, 1, 1, 1, 2), NONE, NONE,
      CI("sz", ((const int64_t[]){1, 1, 1, 3}), 1, 4)},
     4, a_linear, 13, 4, {1, 1, 1, 3}, {1, 1.5f, 2}, 3},
    /* n-ary broadcasting */
    {"max of three", "Max", {IF("a", V6, 2, 2, 3), IF("b", ((const float[]){0, 0, 5}), 1, 3),
                             IF("c", ((const float[]){-0.5f}), 0, 0)}, 3, a_none, 13, 2, {2, 3}, {0, 0, 5, 1, 2, 5}, 6},
    {"min column", "Min", {IF("a", V6, 2, 2, 3), CF("b", ((const float[]){0, 1}), 2, 2, 1)}, 2, a_none, 13, 2, {2, 3},
     {-2, -1, 0, 1, 1, 1}, 6},
    {"sum of three", "Sum", {IF("a", V4, 1, 4), IF("b", ((const float[]){10}), 1, 1), CF("c", V4, 1, 4)}, 3, a_none, 13,
     1, {4}, {12, 14, 16, 18}, 4},
    {"mean", "Mean", {IF("a", V4, 1, 4), IF("b", ((const float[]){3, 2, 1, 0}), 1, 4)}, 2, a_none, 13, 1, {4},
     {2, 2, 2, 2}, 4},
    {"mean of one", "Mean", {IF("a", V4, 1, 4)}, 1, a_none, 13, 1, {4}, {1, 2, 3, 4}, 4},
    /* reductions */
    {"reduce min axes input", "ReduceMin", {IF("x", V6, 2, 2, 3), CI("ax", ((const int64_t[]){-1}), 1, 1)}, 2, a_keep0,
     18, 1, {2}, {-2, 1}, 2},
    {"reduce prod axes attribute", "ReduceProd", {IF("x", V6, 2, 2, 3)}, 1, a_axes0, 13, 2, {1, 3}, {-2, -2, 0}, 3},
    {"reduce l2 all", "ReduceL2", {IF("x", V4, 1, 4)}, 1, a_keep0, 18, 0, {0}, {5.4772256f}, 1},
    {"reduce l2 noop", "ReduceL2", {IF("x", ((const float[]){1, -2, 3, -4}), 1, 4)}, 1, a_noop, 18, 1, {4},
     {1, 2, 3, 4}, 4},
    {"reduce sum noop", "ReduceSum", {IF("x", ((const float[]){1, -2, 3, -4}), 1, 4)}, 1, a_noop, 18, 1, {4},
     {1, -2, 3, -4}, 4},
    /* normalization, activation */
    {"instance norm", "InstanceNormalization",
     {IF("x", ((const float[]){1, 3, 2, 4}), 3, 1, 2, 2), CF("s", ((const float[]){1, 2}), 1, 2),
      CF("b", ((const float[]){0, 1}), 1, 2)}, 3, a_eps, 13, 3, {1, 2, 2}, {-1, 1, -1, 3}, 4},
    {"group norm opset 18", "GroupNormalization",
     {IF("x", ((const float[]){1, 3, 2, 4}), 3, 1, 4, 1), CF("s", ((const float[]){1, 2}), 1, 2),
      CF("b", ((const float[]){0, 1}), 1, 2)}, 3, a_groups2, 18, 3, {1, 4, 1}, {-1, 1, -1, 3}, 4},
    {"group norm opset 21", "GroupNormalization",
     {IF("x", ((const float[]){1, 3, 2, 4}), 3, 1, 4, 1), CF("s", V4, 1, 4),
      CF("b", ((const float[]){0, 0, 0, 1}), 1, 4)}, 3, a_groups2, 21, 3, {1, 4, 1}, {-1, 2, -3, 5}, 4},
    {"gelu", "Gelu", {IF("x", ((const float[]){0, 1, -1, 2}), 1, 4)}, 1, a_none, 20, 1, {4},
     {0, 0.84134475f, -0.15865525f, 1.9544997f}, 4},
    {"gelu tanh", "Gelu", {IF("x", ((const float[]){0, 1, -1, 2}), 1, 4)}, 1, a_gelu_tanh, 20, 1, {4},
     {0, 0.84119199f, -0.15880801f, 1.9545977f}, 4},
    /* rearrangements */
    {"depth to space DCR", "DepthToSpace", {IF("x", ((const float[]){0, 1, 2, 3, 4, 5, 6, 7}), 4, 1, 8, 1, 1)}, 1,
     a_bs2, 13, 4, {1, 2, 2, 2}, {0, 2, 4, 6, 1, 3, 5, 7}, 8},
    {"depth to space CRD", "DepthToSpace", {IF("x", ((const float[]){0, 1, 2, 3, 4, 5, 6, 7}), 4, 1, 8, 1, 1)}, 1,
     a_bs2_crd, 13, 4, {1, 2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}, 8},
    {"space to depth", "SpaceToDepth", {IF("x", ((const float[]){0, 1, 2, 3, 4, 5, 6, 7}), 4, 1, 2, 2, 2)}, 1, a_bs2,
     13, 4, {1, 8, 1, 1}, {0, 4, 1, 5, 2, 6, 3, 7}, 8},
    {"tile", "Tile", {IF("x", ((const float[]){1, 2}), 2, 2, 1), CI("r", ((const int64_t[]){2, 3}), 1, 2)}, 2, a_none,
     13, 2, {4, 3}, {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2}, 12},
    {"upsample nearest input", "Upsample",
     {IF("x", ((const float[]){1, 2}), 4, 1, 1, 1, 2), CF("sc", ((const float[]){1, 1, 2, 2}), 1, 4)}, 2, a_none, 9,
     4, {1, 1, 2, 4}, {1, 1, 2, 2, 1, 1, 2, 2}, 8},
    {"upsample linear attribute", "Upsample", {IF("x", ((const float[]){1, 2}), 4, 1, 1, 1, 2)}, 1, a_up_linear, 8,
     4, {1, 1, 1, 4}, {1, 1.5f, 2, 2}, 4},
    /* Einsum: matmul forms, with a constant weight (a layer) and both operands dynamic */
    {"einsum bij,jk->bik", "Einsum", {IF("a", V4, 3, 2, 1, 2), CF("w", ((const float[]){1, 0, 0, -1}), 2, 2, 2)}, 2,
     a_eq_bij, 12, 3, {2, 1, 2}, {1, -2, 3, -4}, 4},
    {"einsum ...ij,kj->...ik", "Einsum",
     {IF("a", V4, 3, 1, 2, 2), CF("w", ((const float[]){1, 0, 0, 1, 1, 1}), 2, 3, 2)}, 2, a_eq_ell, 12, 3, {1, 2, 3},
     {1, 2, 3, 3, 4, 7}, 6},
    {"einsum transposed output", "Einsum", {IF("a", V4, 2, 2, 2), CF("w", ((const float[]){1, 0, 0, 1}), 2, 2, 2)}, 2,
     a_eq_ki, 12, 2, {2, 2}, {1, 3, 2, 4}, 4},
    {"einsum implicit output", "Einsum", {IF("a", V4, 2, 2, 2), CF("w", ((const float[]){1, 1, 0, 1}), 2, 2, 2)}, 2,
     a_eq_implicit, 12, 2, {2, 2}, {1, 3, 3, 7}, 4},
    {"einsum batched dynamic", "Einsum",
     {IF("a", V4, 4, 1, 2, 1, 2), IF("b", ((const float[]){1, 1, 1, -1}), 4, 1, 2, 2, 1)}, 2, a_eq_bh, 12, 4,
     {1, 2, 1, 1}, {3, -1}, 2},
    /* recurrences, S = 2, B = 1, I = H = 1 (values from the ONNX equations in double) */
    {"lstm forward", "LSTM",
     {IF("x", ((const float[]){1, -1}), 3, 2, 1, 1), CF("w", ((const float[]){0.5f, -0.5f, 1, 2}), 3, 1, 4, 1),
      CF("r", ((const float[]){0.1f, 0.2f, 0.3f, -0.4f}), 3, 1, 4, 1)}, 3, a_none, 14, 4, {2, 1, 1, 1},
     {0.20277631f, -0.12590281f}, 2},
    {"gru forward", "GRU",
     {IF("x", ((const float[]){1, -1}), 3, 2, 1, 1), CF("w", ((const float[]){0.5f, -0.5f, 1}), 3, 1, 3, 1),
      CF("r", ((const float[]){0.1f, 0.2f, 0.3f}), 3, 1, 3, 1)}, 3, a_none, 14, 4, {2, 1, 1, 1},
     {0.28753277f, -0.34360696f}, 2},
    {"gru reverse linear_before_reset", "GRU",
     {IF("x", ((const float[]){1, -1}), 3, 2, 1, 1), CF("w", ((const float[]){0.5f, -0.5f, 1}), 3, 1, 3, 1),
      CF("r", ((const float[]){0.1f, 0.2f, 0.3f}), 3, 1, 3, 1)}, 3, a_gru_rev_lbr, 14, 4, {2, 1, 1, 1},
     {-0.0022855136f, -0.47406139f}, 2},
};

static int test_ops(void)
{
    for (size_t i = 0; i < sizeof(op_cases) / sizeof(op_cases[0]); i++) {
        const struct op_case *c = &op_cases[i];
        struct mq_onnx_io out;
        int rc = run_op(c->op, c->in, c->n_in, c->attrs, NULL, c->opset, NULL, MQ_DTYPE_F32, &out, NULL);
        T_CHECK_MSG(rc == MQ_OK, "%s: run failed (%d)", c->name, rc);
        bool ok = out.n_dims == c->nd && io_count(&out) == c->n_want && out.type == MQ_ONNX_IO_F32;
        for (int d = 0; ok && d < c->nd; d++)
            ok = out.dims[d] == c->dims[d];
        for (int k = 0; ok && k < c->n_want; k++)
            ok = fabsf(((float *)out.data)[k] - c->want[k]) <= 1e-5f * (1 + fabsf(c->want[k]));
        if (!ok) {
            fprintf(stderr, "    %s: got rank %d, %lld values:", c->name, out.n_dims, (long long)io_count(&out));
            for (int64_t k = 0; k < io_count(&out) && k < 12; k++)
                fprintf(stderr, " %g", (double)((float *)out.data)[k]);
            fputc('\n', stderr);
        }
        mq_onnx_io_release(&out, 1);
        T_CHECK_MSG(ok, "%s: wrong output", c->name);
    }
    return T_PASS;
}

/* Integer and shape arithmetic: Shape, Cast, Equal/Where, Range, ConstantOfShape, Split. */
static int test_int_ops(void)
{
    struct mq_onnx_io out;
    /* Shape of x [2, 3] -> [2, 3] (int64), through Cast to float */
    struct pbw g = {0}, m = {0}, n;
    value_info(&g, 11, "x", F32, 2, (int64_t[]){2, 3});
    n = node_begin("Shape", "x", "s");
    pw_msg(&g, 1, &n);
    n = node_begin("Cast", "s", "sf");
    attr_int(&n, "to", F32);
    pw_msg(&g, 1, &n);
    tensor_i64(&g, 5, "two", 0, NULL, (int64_t[]){2});
    n = node_begin("Equal", "s two", "eq");
    pw_msg(&g, 1, &n);
    tensor_f32(&g, 5, "big", 1, (int64_t[]){2}, (const float[]){100, 200});
    n = node_begin("Where", "eq big sf", "w");
    pw_msg(&g, 1, &n);
    n = node_begin("Range", "zero five one", "r");
    tensor_f32(&g, 5, "zero", 0, NULL, (const float[]){0});
    tensor_f32(&g, 5, "five", 0, NULL, (const float[]){5});
    tensor_f32(&g, 5, "one", 0, NULL, (const float[]){1.5f});
    pw_msg(&g, 1, &n);
    n = node_begin("Split", "r", "r1 r2");
    attr_ints(&n, "split", 2, (int64_t[]){1, 3});
    pw_msg(&g, 1, &n);
    n = node_begin("Concat", "w r2", "y");
    attr_int(&n, "axis", 0);
    pw_msg(&g, 1, &n);
    value_info(&g, 12, "y", F32, 1, (int64_t[]){5});
    model_finish(&m, &g, 12);
    char path[4096];
    T_CHECK(write_file("ints.onnx", &m, path, sizeof(path)) == 0);
    free(m.b);
    struct mq_model *model;
    struct mq_onnx_exec *x;
    T_CHECK(mq_model_load(path, &model) == MQ_OK);
    T_CHECK(mq_onnx_exec_new(model, NULL, NULL, &x) == MQ_OK);
    float xv[6] = {0};
    struct mq_onnx_io in = {.name = "x", .type = MQ_ONNX_IO_F32, .n_dims = 2, .dims = {2, 3}, .data = xv};
    int rc = mq_onnx_exec_run(x, &in, 1, &out, 1);
    mq_onnx_exec_free(x);
    mq_model_free(model);
    T_CHECK(rc == MQ_OK);
    const float want[5] = {100, 3, 1.5f, 3, 4.5f}; /* where(s == 2, big, s), range(0, 5, 1.5)[1:] */
    bool ok = io_count(&out) == 5;
    for (int k = 0; ok && k < 5; k++)
        ok = ((float *)out.data)[k] == want[k];
    mq_onnx_io_release(&out, 1);
    T_CHECK(ok);
    /* Cast float -> int32 truncates toward zero and wraps */
    const float cv[4] = {-1.7f, 2.9f, 3e9f, 0.0f};
    struct t_in ci[] = {IF("x", cv, 1, 4)};
    T_CHECK(run_op("Cast", ci, 1, a_cast_i, NULL, 13, NULL, MQ_DTYPE_F32, &out, NULL) == MQ_OK);
    T_CHECK(out.type == MQ_ONNX_IO_I64 && ((int64_t *)out.data)[0] == -1 && ((int64_t *)out.data)[1] == 2 &&
            ((int64_t *)out.data)[2] == (int32_t)(uint32_t)3000000000u && ((int64_t *)out.data)[3] == 0);
    mq_onnx_io_release(&out, 1);
    return T_PASS;
}

/* ArgMax and TopK (integer outputs, two outputs), the Einsum layer, and the new ops'
 * refusals of bad attributes and forms. */
static void a_argmax(struct pbw *n, const void *ctx)
{
    attr_int(n, "axis", 1);
    attr_int(n, "keepdims", 0);
    attr_int(n, "select_last_index", ctx != NULL);
}

/* x [2, 4] through TopK (K = k input, axis 1) to outputs v (values) and i (indices). */
static int run_topk(bool largest, int64_t k, float *v, int64_t *idx)
{
    static const float xv[8] = {3, 1, 3, 2, -1, 5, 0, 5};
    struct pbw g = {0}, m = {0};
    value_info(&g, 11, "x", F32, 2, (int64_t[]){2, 4});
    tensor_i64(&g, 5, "k", 1, (int64_t[]){1}, &k);
    struct pbw n = node_begin("TopK", "x k", "v i");
    attr_int(&n, "largest", largest);
    pw_msg(&g, 1, &n);
    value_info(&g, 12, "v", F32, 2, (int64_t[]){2, 2});
    value_info(&g, 12, "i", I64, 2, (int64_t[]){2, 2});
    model_finish(&m, &g, 11);
    char path[4096];
    int rc = write_file("topk.onnx", &m, path, sizeof(path));
    free(m.b);
    struct mq_model *model = NULL;
    struct mq_onnx_exec *x = NULL;
    struct mq_onnx_io in = {.name = "x", .type = MQ_ONNX_IO_F32, .n_dims = 2, .dims = {2, 4}, .data = (void *)xv}, out[2];
    if (rc < 0 || (rc = mq_model_load(path, &model)) < 0 || (rc = mq_onnx_exec_new(model, NULL, NULL, &x)) < 0 ||
        (rc = mq_onnx_exec_run(x, &in, 1, out, 2)) < 0)
        goto done;
    rc = out[0].type == MQ_ONNX_IO_F32 && out[1].type == MQ_ONNX_IO_I64 && io_count(&out[0]) == 4 &&
                 io_count(&out[1]) == 4 ? MQ_OK : MQ_EINTERNAL;
    if (rc == MQ_OK) {
        memcpy(v, out[0].data, 4 * sizeof(float));
        memcpy(idx, out[1].data, 4 * sizeof(int64_t));
    }
    mq_onnx_io_release(out, 2);
done:
    mq_onnx_exec_free(x);
    mq_model_free(model);
    return rc;
}

static int test_new_ops(void)
{
    struct mq_onnx_io out;
    /* ArgMax along axis 1: ties to the first index, or the last with select_last_index */
    const float av[6] = {1, 3, 3, 2, 0, 2};
    struct t_in ai[] = {IF("x", av, 2, 2, 3)};
    for (int last = 0; last < 2; last++) {
        T_CHECK(run_op("ArgMax", ai, 1, a_argmax, last ? "" : NULL, 13, NULL, MQ_DTYPE_F32, &out, NULL) == MQ_OK);
        const int64_t *r = out.data;
        bool ok = out.type == MQ_ONNX_IO_I64 && out.n_dims == 1 && out.dims[0] == 2 &&
                  r[0] == (last ? 2 : 1) && r[1] == (last ? 2 : 0);
        mq_onnx_io_release(&out, 1);
        T_CHECK_MSG(ok, "argmax select_last_index %d", last);
    }
    /* TopK: values and indices, ties in index order */
    float v[4];
    int64_t ix[4];
    T_CHECK(run_topk(true, 2, v, ix) == MQ_OK);
    T_CHECK(v[0] == 3 && v[1] == 3 && ix[0] == 0 && ix[1] == 2 && v[2] == 5 && v[3] == 5 && ix[2] == 1 && ix[3] == 3);
    T_CHECK(run_topk(false, 2, v, ix) == MQ_OK);
    T_CHECK(v[0] == 1 && v[1] == 2 && ix[0] == 1 && ix[1] == 3 && v[2] == -1 && v[3] == 0 && ix[2] == 0 && ix[3] == 2);
    T_CHECK(run_topk(true, 5, v, ix) == MQ_EFORMAT); /* k past the axis */

    /* Einsum with a constant operand is a GEMM layer with B's rows, and runs quantized */
    struct t_rng rg = {.s = 7};
    float a[2 * 3 * 64], w[8 * 64];
    for (int k = 0; k < 2 * 3 * 64; k++)
        a[k] = t_rng_float(&rg);
    for (int k = 0; k < 8 * 64; k++)
        w[k] = t_rng_float(&rg);
    struct t_in ein[2] = {IF("a", a, 3, 2, 3, 64), CF("w", w, 2, 8, 64)};
    struct mq_model *model = NULL;
    struct mq_onnx_io ref, q8;
    T_CHECK(run_op("Einsum", ein, 2, a_eq, "bsk,nk->bsn", 12, NULL, MQ_DTYPE_F32, &ref, &model) == MQ_OK);
    T_CHECK(model->n_layers == 1 && model->layers[0].n_in == 64 && model->layers[0].n_out == 8 &&
            model->layers[0].role == MQ_ROLE_GEMM && ((const float *)model->layers[0].src_data)[65] == w[65]);
    mq_model_free(model);
    T_CHECK(run_op("Einsum", ein, 2, a_eq, "bsk,nk->bsn", 12, "cpu", MQ_DTYPE_Q8_0, &q8, NULL) == MQ_OK);
    double e8 = 0, scale = 0, e_ref = 0;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 8; j++) {
            double acc = 0;
            for (int k = 0; k < 64; k++)
                acc += (double)a[i * 64 + k] * w[j * 64 + k];
            e_ref = fmax(e_ref, fabs(((float *)ref.data)[i * 8 + j] - acc));
            e8 = fmax(e8, fabs(((float *)q8.data)[i * 8 + j] - acc));
            scale = fmax(scale, fabs(acc));
        }
    mq_onnx_io_release(&ref, 1);
    mq_onnx_io_release(&q8, 1);
    T_CHECK_MSG(e_ref < 1e-5 * scale && e8 > 0 && e8 < 0.02 * scale, "einsum f32 error %g, q8_0 %g at %g", e_ref, e8,
                scale);
    /* a constant B with a batch label is no layer: the host multiplies it */
    struct t_in eb[2] = {IF("a", a, 3, 2, 3, 64), CF("w", w, 3, 2, 4, 64)};
    T_CHECK(run_op("Einsum", eb, 2, a_eq, "bsk,bnk->bsn", 12, NULL, MQ_DTYPE_F32, &ref, &model) == MQ_OK);
    T_CHECK(model->n_layers == 0 && ref.n_dims == 3 && ref.dims[2] == 4);
    mq_model_free(model);
    mq_onnx_io_release(&ref, 1);

    /* LSTM: W and R are two GEMM layers, one group per direction; layout 1 is layout 0
     * transposed */
    float lx[3 * 2 * 2], lw[2 * 8 * 2], lr[2 * 8 * 2], lx1[2 * 3 * 2];
    for (int k = 0; k < 12; k++)
        lx[k] = t_rng_float(&rg);
    for (int k = 0; k < 32; k++)
        lw[k] = t_rng_float(&rg), lr[k] = t_rng_float(&rg);
    for (int t = 0; t < 3; t++)
        for (int bi = 0; bi < 2; bi++)
            for (int i = 0; i < 2; i++)
                lx1[(bi * 3 + t) * 2 + i] = lx[(t * 2 + bi) * 2 + i];
    struct t_in l0[3] = {IF("x", lx, 3, 3, 2, 2), CF("w", lw, 3, 2, 8, 2), CF("r", lr, 3, 2, 8, 2)};
    struct t_in l1[3] = {IF("x", lx1, 3, 2, 3, 2), CF("w", lw, 3, 2, 8, 2), CF("r", lr, 3, 2, 8, 2)};
    struct mq_onnx_io y0, y1;
    T_CHECK(run_op("LSTM", l0, 3, a_bidir, NULL, 14, NULL, MQ_DTYPE_F32, &y0, &model) == MQ_OK);
    T_CHECK(model->n_layers == 2 && !strcmp(model->layers[0].name, "w") && !strcmp(model->layers[1].name, "r") &&
            model->layers[0].n_in == 2 && model->layers[0].n_out == 16 && model->layers[1].n_in == 2 &&
            model->layers[1].role == MQ_ROLE_GEMM);
    mq_model_free(model);
    T_CHECK(run_op("LSTM", l1, 3, a_bidir, "", 14, NULL, MQ_DTYPE_F32, &y1, NULL) == MQ_OK);
    bool same = y0.n_dims == 4 && y1.n_dims == 4 && y0.dims[0] == 3 && y1.dims[0] == 2 && y1.dims[1] == 3;
    for (int t = 0; same && t < 3; t++)
        for (int d = 0; d < 2; d++)
            for (int bi = 0; bi < 2; bi++)
                for (int j = 0; j < 2; j++)
                    same &= ((float *)y0.data)[((t * 2 + d) * 2 + bi) * 2 + j] ==
                            ((float *)y1.data)[((bi * 3 + t) * 2 + d) * 2 + j];
    mq_onnx_io_release(&y0, 1);
    mq_onnx_io_release(&y1, 1);
    T_CHECK_MSG(same, "LSTM layout 1 differs from layout 0 transposed");

    /* refusals: one error line each, at load (the shape pass) */
    static const float x8[8] = {0};
    struct {
        const char *what, *op;
        struct t_in in[3];
        int n_in;
        void (*attrs)(struct pbw *, const void *);
        const char *actx;
        int opset, want;
    } bad[] = {
        {"einsum one operand", "Einsum", {IF("a", V4, 2, 2, 2)}, 1, a_eq, "ij->ji", 12, MQ_EUNSUPPORTED},
        {"einsum diagonal", "Einsum", {IF("a", V4, 2, 2, 2), IF("b", V4, 2, 2, 2)}, 2, a_eq, "ii,ij->ij", 12,
         MQ_EUNSUPPORTED},
        {"einsum sum over one operand", "Einsum", {IF("a", V4, 2, 2, 2), IF("b", V4, 2, 2, 2)}, 2, a_eq, "ij,jk->i", 12,
         MQ_EUNSUPPORTED},
        {"einsum three operands", "Einsum", {IF("a", V4, 1, 4), IF("b", V4, 1, 4), IF("c", V4, 1, 4)}, 3, a_eq,
         "i,i,i->i", 12, MQ_EUNSUPPORTED},
        {"einsum rank mismatch", "Einsum", {IF("a", V4, 2, 2, 2), IF("b", V4, 2, 2, 2)}, 2, a_eq, "ijk,jk->ik", 12,
         MQ_EFORMAT},
        {"einsum sizes differ", "Einsum", {IF("a", V4, 2, 2, 2), IF("b", V4, 2, 4, 1)}, 2, a_eq, "ij,jk->ik", 12,
         MQ_EFORMAT},
        {"gelu approximate", "Gelu", {IF("x", V4, 1, 4)}, 1, a_kv, "approximate=fast", 20, MQ_EFORMAT},
        {"depth to space no blocksize", "DepthToSpace", {IF("x", x8, 4, 1, 8, 1, 1)}, 1, a_none, NULL, 13, MQ_EFORMAT},
        {"depth to space channels", "DepthToSpace", {IF("x", x8, 4, 1, 2, 2, 2)}, 1, a_bs2, NULL, 13, MQ_EFORMAT},
        {"space to depth odd", "SpaceToDepth", {IF("x", x8, 4, 1, 8, 1, 1)}, 1, a_bs2, NULL, 13, MQ_EFORMAT},
        {"group norm groups", "GroupNormalization",
         {IF("x", x8, 3, 1, 4, 2), CF("s", V4, 1, 4), CF("b", V4, 1, 4)}, 3, a_none, NULL, 21, MQ_EFORMAT},
        {"group norm scale size", "GroupNormalization",
         {IF("x", x8, 3, 1, 4, 2), CF("s", V4, 1, 4), CF("b", V4, 1, 4)}, 3, a_groups2, NULL, 18, MQ_EFORMAT},
        {"instance norm rank", "InstanceNormalization",
         {IF("x", V4, 2, 2, 2), CF("s", V4, 1, 2), CF("b", V4, 1, 2)}, 3, a_none, NULL, 13, MQ_EFORMAT},
        {"argmax axis", "ArgMax", {IF("x", V4, 1, 4)}, 1, a_argmax, NULL, 13, MQ_EFORMAT},
        {"tile repeats count", "Tile", {IF("x", V4, 1, 4), CI("r", ((const int64_t[]){2, 2}), 1, 2)}, 2, a_none, NULL,
         13, MQ_EFORMAT},
        {"upsample below 1", "Upsample", {IF("x", V4, 4, 1, 1, 2, 2), CF("s", ((const float[]){1, 1, 0.5f, 1}), 1, 4)},
         2, a_none, NULL, 9, MQ_EFORMAT},
        {"upsample mode", "Upsample", {IF("x", V4, 4, 1, 1, 2, 2), CF("s", ((const float[]){1, 1, 2, 2}), 1, 4)}, 2,
         a_kv, "mode=cubic", 9, MQ_EFORMAT},
        {"lstm direction", "LSTM", {IF("x", V4, 3, 2, 1, 2), CF("w", x8, 3, 1, 4, 2), CF("r", V4, 3, 1, 4, 1)}, 3, a_kv,
         "direction=sideways", 14, MQ_EFORMAT},
        {"lstm activations", "LSTM", {IF("x", V4, 3, 2, 1, 2), CF("w", x8, 3, 1, 4, 2), CF("r", V4, 3, 1, 4, 1)}, 3,
         a_kv, "activations=Relu", 14, MQ_EUNSUPPORTED},
        {"gru weight shape", "GRU", {IF("x", V4, 3, 2, 1, 2), CF("w", x8, 3, 1, 4, 2), CF("r", V4, 3, 1, 4, 1)}, 3,
         a_none, NULL, 14, MQ_EFORMAT},
        {"max shapes", "Max", {IF("a", V4, 1, 4), IF("b", V6, 1, 6)}, 2, a_none, NULL, 13, MQ_EFORMAT},
        {"sum of integers", "Sum", {IF("a", V4, 1, 4), CI("b", ((const int64_t[]){1}), 1, 1)}, 2, a_none, NULL, 13,
         MQ_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = run_op(bad[i].op, bad[i].in, bad[i].n_in, bad[i].attrs, bad[i].actx, bad[i].opset, NULL, MQ_DTYPE_F32,
                        &out, NULL);
        if (rc == MQ_OK)
            mq_onnx_io_release(&out, 1);
        T_CHECK_MSG(rc == bad[i].want, "%s: got %d, want %d", bad[i].what, rc, bad[i].want);
    }
    return T_PASS;
}

/* ---- conv as matmul against direct convolution ------------------------------------------ */

struct conv_case {
    const char *name;
    int sp; /* 1 or 2 spatial dims */
    int64_t B, C, H, W, M, kh, kw, group, sh, sw, ph, pw, dh, dw;
    bool transpose;
};

static const struct conv_case conv_cases[] = {
    {"2-D 3x3 pad 1", 2, 1, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
    {"2-D strided dilated batch 2", 2, 2, 4, 9, 8, 6, 3, 2, 1, 2, 1, 2, 0, 2, 1, false},
    {"2-D grouped", 2, 1, 6, 5, 5, 4, 3, 3, 2, 1, 2, 1, 1, 1, 1, false},
    {"2-D depthwise 5x5", 2, 1, 8, 6, 7, 8, 5, 5, 8, 1, 1, 2, 2, 1, 1, false},
    {"2-D pointwise", 2, 2, 32, 3, 4, 16, 1, 1, 1, 1, 1, 0, 0, 1, 1, false},
    {"1-D strided", 1, 1, 5, 1, 33, 7, 1, 4, 1, 1, 3, 0, 1, 1, 1, false},
    {"1-D K = 64", 1, 2, 32, 1, 16, 4, 1, 2, 1, 1, 1, 0, 0, 1, 1, false},
    {"2-D transposed stride 2", 2, 1, 4, 3, 4, 3, 3, 3, 1, 2, 2, 1, 1, 1, 1, true},
    {"1-D transposed grouped", 1, 2, 4, 1, 5, 4, 1, 3, 2, 1, 2, 0, 1, 1, 1, true},
};

/* The definition: y[b][m][oy][ox] = bias[m] + sum over c in m's group, ky, kx of
 * x[b][c][oy*sh - ph + ky*dh][ox*sw - pw + kx*dw] * w[m][c'][ky][kx]. Transposed: every
 * input pixel scatters w[c][m'][ky][kx] * x to (iy*sh - ph + ky*dh, ix*sw - pw + kx*dw). */
static void conv_direct(const struct conv_case *c, const float *x, const float *w, const float *bias, float *y,
                        int64_t OH, int64_t OW)
{
    int64_t Cg = c->C / c->group, Mg = c->M / c->group;
    memset(y, 0, (size_t)(c->B * c->M * OH * OW) * sizeof(float));
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t m = 0; m < c->M; m++)
            for (int64_t p = 0; p < OH * OW; p++)
                y[(b * c->M + m) * OH * OW + p] = bias[m];
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t g = 0; g < c->group; g++)
            for (int64_t ci = 0; ci < Cg; ci++)
                for (int64_t mi = 0; mi < Mg; mi++)
                    for (int64_t ky = 0; ky < c->kh; ky++)
                        for (int64_t kx = 0; kx < c->kw; kx++) {
                            int64_t C_ = g * Cg + ci, M_ = g * Mg + mi;
                            float wv = c->transpose ? w[((C_ * Mg + mi) * c->kh + ky) * c->kw + kx]
                                                    : w[((M_ * Cg + ci) * c->kh + ky) * c->kw + kx];
                            if (!c->transpose) {
                                for (int64_t oy = 0; oy < OH; oy++)
                                    for (int64_t ox = 0; ox < OW; ox++) {
                                        int64_t iy = oy * c->sh - c->ph + ky * c->dh, ix = ox * c->sw - c->pw + kx * c->dw;
                                        if (iy >= 0 && iy < c->H && ix >= 0 && ix < c->W)
                                            y[((b * c->M + M_) * OH + oy) * OW + ox] +=
                                                wv * x[((b * c->C + C_) * c->H + iy) * c->W + ix];
                                    }
                            } else {
                                for (int64_t iy = 0; iy < c->H; iy++)
                                    for (int64_t ix = 0; ix < c->W; ix++) {
                                        int64_t oy = iy * c->sh - c->ph + ky * c->dh, ox = ix * c->sw - c->pw + kx * c->dw;
                                        if (oy >= 0 && oy < OH && ox >= 0 && ox < OW)
                                            y[((b * c->M + M_) * OH + oy) * OW + ox] +=
                                                wv * x[((b * c->C + C_) * c->H + iy) * c->W + ix];
                                    }
                            }
                        }
}

static void a_conv(struct pbw *n, const void *ctx)
{
    const struct conv_case *c = ctx;
    attr_int(n, "group", c->group);
    if (c->sp == 2) {
        attr_ints(n, "strides", 2, (int64_t[]){c->sh, c->sw});
        attr_ints(n, "pads", 4, (int64_t[]){c->ph, c->pw, c->ph, c->pw});
        attr_ints(n, "dilations", 2, (int64_t[]){c->dh, c->dw});
        attr_ints(n, "kernel_shape", 2, (int64_t[]){c->kh, c->kw});
    } else {
        attr_ints(n, "strides", 1, (int64_t[]){c->sw});
        attr_ints(n, "pads", 2, (int64_t[]){c->pw, c->pw});
        attr_ints(n, "dilations", 1, (int64_t[]){c->dw});
    }
}

static int test_conv(void)
{
    const char *backends[] = {NULL, "ref", "cpu"};
    for (size_t i = 0; i < sizeof(conv_cases) / sizeof(conv_cases[0]); i++) {
        const struct conv_case *c = &conv_cases[i];
        int64_t OH, OW;
        if (c->transpose) {
            OH = c->sh * (c->H - 1) + (c->kh - 1) * c->dh + 1 - 2 * c->ph;
            OW = c->sw * (c->W - 1) + (c->kw - 1) * c->dw + 1 - 2 * c->pw;
        } else {
            OH = (c->H + 2 * c->ph - (c->kh - 1) * c->dh - 1) / c->sh + 1;
            OW = (c->W + 2 * c->pw - (c->kw - 1) * c->dw - 1) / c->sw + 1;
        }
        int64_t nx = c->B * c->C * c->H * c->W, nw = c->M * (c->C / c->group) * c->kh * c->kw, ny = c->B * c->M * OH * OW;
        float *x = malloc((size_t)nx * 4), *w = malloc((size_t)nw * 4), *bias = malloc((size_t)c->M * 4),
              *y = malloc((size_t)ny * 4);
        T_CHECK(x && w && bias && y);
        struct t_rng r = {.s = 0x1234567 + i};
        for (int64_t k = 0; k < nx; k++)
            x[k] = t_rng_float(&r);
        for (int64_t k = 0; k < nw; k++)
            w[k] = t_rng_float(&r);
        for (int64_t k = 0; k < c->M; k++)
            bias[k] = t_rng_float(&r);
        conv_direct(c, x, w, bias, y, OH, OW);
        int64_t wd[4] = {c->transpose ? c->C : c->M, c->transpose ? c->M / c->group : c->C / c->group, c->kh, c->kw};
        if (c->sp == 1)
            wd[2] = c->kw;
        struct t_in in[3] = {
            IF("x", x, c->sp + 2, c->B, c->C, c->sp == 2 ? c->H : c->W, c->W),
            CF("w", w, c->sp + 2, wd[0], wd[1], wd[2], wd[3]),
            CF("bias", bias, 1, c->M),
        };
        for (size_t b = 0; b < sizeof(backends) / sizeof(backends[0]); b++) {
            struct mq_onnx_io out;
            struct mq_model *model = NULL;
            int rc = run_op(c->transpose ? "ConvTranspose" : "Conv", in, 3, a_conv, c, 13, backends[b], MQ_DTYPE_F32,
                            &out, &model);
            T_CHECK_MSG(rc == MQ_OK, "%s on %s: %d", c->name, backends[b] ? backends[b] : "host", rc);
            /* the layer: K = Cin/g * kh * kw (ConvTranspose: Cin/g), rows in ONNX's order */
            const struct mq_layer *l = &model->layers[0];
            bool layer_ok = model->n_layers == 1 &&
                            l->role == (c->transpose ? MQ_ROLE_CONV_TRANSPOSE : MQ_ROLE_CONV) &&
                            l->n_in == (c->transpose ? c->C / c->group : (c->C / c->group) * c->kh * c->kw) &&
                            l->formats == mq_layer_formats_for(l->n_in);
            if (!c->transpose)
                layer_ok = layer_ok && !memcmp(l->src_data, w, (size_t)nw * 4); /* [Cout][Cin/g*kh*kw] as is */
            mq_model_free(model);
            double err = 0;
            bool shape_ok = io_count(&out) == ny;
            for (int64_t k = 0; shape_ok && k < ny; k++)
                err = fmax(err, fabs((double)((float *)out.data)[k] - y[k]));
            mq_onnx_io_release(&out, 1);
            T_CHECK_MSG(shape_ok && layer_ok, "%s: wrong shape or layer", c->name);
            T_CHECK_MSG(err < 1e-4, "%s on %s: max error %g", c->name, backends[b] ? backends[b] : "host", err);
        }
        free(x);
        free(w);
        free(bias);
        free(y);
    }
    return T_PASS;
}

/* A q8_0 plan runs the quantized weights: close to f32, but not equal. */
static int test_quantized_layer(void)
{
    struct t_rng r = {.s = 99};
    float a[4 * 64], b[64 * 8];
    for (int k = 0; k < 4 * 64; k++)
        a[k] = t_rng_float(&r);
    for (int k = 0; k < 64 * 8; k++)
        b[k] = t_rng_float(&r);
    struct t_in in[2] = {IF("a", a, 2, 4, 64), CF("b", b, 2, 64, 8)};
    struct mq_onnx_io ref, q8, q4;
    struct mq_model *model = NULL;
    T_CHECK(run_op("MatMul", in, 2, NULL, NULL, 13, NULL, MQ_DTYPE_F32, &ref, &model) == MQ_OK);
    T_CHECK(model->n_layers == 1 && model->layers[0].n_in == 64 && model->layers[0].n_out == 8 &&
            model->layers[0].role == MQ_ROLE_GEMM);
    /* MatMul's B [K, N] becomes rows [N][K] */
    T_CHECK(((const float *)model->layers[0].src_data)[1] == b[8] && ((const float *)model->layers[0].src_data)[64] == b[1]);
    mq_model_free(model);
    T_CHECK(run_op("MatMul", in, 2, NULL, NULL, 13, "cpu", MQ_DTYPE_Q8_0, &q8, NULL) == MQ_OK);
    T_CHECK(run_op("MatMul", in, 2, NULL, NULL, 13, "cpu", MQ_DTYPE_Q4_0, &q4, NULL) == MQ_OK);
    double e8 = 0, e4 = 0, scale = 0;
    for (int k = 0; k < 32; k++) {
        float rv = ((float *)ref.data)[k];
        e8 = fmax(e8, fabs(((float *)q8.data)[k] - rv));
        e4 = fmax(e4, fabs(((float *)q4.data)[k] - rv));
        scale = fmax(scale, fabs(rv));
    }
    mq_onnx_io_release(&ref, 1);
    mq_onnx_io_release(&q8, 1);
    mq_onnx_io_release(&q4, 1);
    T_CHECK_MSG(e8 > 0 && e8 < 0.02 * scale, "q8_0 error %g at scale %g", e8, scale);
    T_CHECK_MSG(e4 > e8 && e4 < 0.2 * scale, "q4_0 error %g, q8_0 %g", e4, e8);
    return T_PASS;
}

/* ---- If folding (the VAD task binds sr) and the runner's ops -------------------------------- */

static float vad_w(int i) { return (float)(i % 5) * 0.1f - 0.2f; }

static int build_vad_like(char *path, size_t size)
{
    /* inputs input [batch, 64], state [2, batch, 4], sr; If (sr == 16000) then a conv
     * branch, else Neg; outputs output [batch, 1] and stateN */
    struct pbw g = {0}, m = {0}, then_g = {0}, else_g = {0}, n;
    value_info(&g, 11, "input", F32, 2, (int64_t[]){-1, 64});
    value_info(&g, 11, "state", F32, 3, (int64_t[]){2, -1, 4});
    value_info(&g, 11, "sr", I64, 0, NULL);
    tensor_i64(&g, 5, "k16", 0, NULL, (int64_t[]){16000});
    float w[2 * 1 * 32];
    for (int i = 0; i < 64; i++)
        w[i] = vad_w(i);
    tensor_f32(&g, 5, "conv.weight", 3, (int64_t[]){2, 1, 32}, w);
    tensor_i64(&g, 5, "ax1", 1, (int64_t[]){1}, (int64_t[]){1});
    n = node_begin("Equal", "sr k16", "is16k");
    pw_msg(&g, 1, &n);
    /* then: unsqueeze input to [b, 1, 64], conv stride 32 -> [b, 2, 2], mean -> [b, 1] */
    n = node_begin("Unsqueeze", "input ax1", "u");
    pw_msg(&then_g, 1, &n);
    n = node_begin("Conv", "u conv.weight", "c");
    attr_ints(&n, "strides", 1, (int64_t[]){32});
    pw_msg(&then_g, 1, &n);
    n = node_begin("Flatten", "c", "cf");
    pw_msg(&then_g, 1, &n);
    n = node_begin("ReduceMean", "cf", "t_out");
    attr_ints(&n, "axes", 1, (int64_t[]){1});
    pw_msg(&then_g, 1, &n);
    n = node_begin("Identity", "state", "t_state");
    pw_msg(&then_g, 1, &n);
    value_info(&then_g, 12, "t_out", F32, 2, (int64_t[]){-1, 1});
    value_info(&then_g, 12, "t_state", F32, 3, (int64_t[]){2, -1, 4});
    n = node_begin("ReduceMean", "input", "e_out");
    attr_ints(&n, "axes", 1, (int64_t[]){1});
    pw_msg(&else_g, 1, &n);
    n = node_begin("Neg", "state", "e_state");
    pw_msg(&else_g, 1, &n);
    value_info(&else_g, 12, "e_out", F32, 2, (int64_t[]){-1, 1});
    value_info(&else_g, 12, "e_state", F32, 3, (int64_t[]){2, -1, 4});
    n = node_begin("If", "is16k", "output stateN");
    attr_graph(&n, "then_branch", &then_g);
    attr_graph(&n, "else_branch", &else_g);
    pw_msg(&g, 1, &n);
    value_info(&g, 12, "output", F32, 2, (int64_t[]){-1, 1});
    value_info(&g, 12, "stateN", F32, 3, (int64_t[]){2, -1, 4});
    model_finish(&m, &g, 13);
    int rc = write_file("vad-like.onnx", &m, path, size);
    free(m.b);
    return rc;
}

static int test_if_and_runner(void)
{
    char path[4096];
    T_CHECK(build_vad_like(path, sizeof(path)) == 0);
    struct mq_model *m;
    T_CHECK(mq_model_load(path, &m) == MQ_OK);
    /* sr bound to 16000: the If folds to its then branch, whose conv is the one layer */
    T_CHECK(m->kind == MQ_MODEL_ONNX && !strcmp(m->name, "silero-vad") && m->n_layers == 1);
    T_CHECK(!strcmp(m->layers[0].name, "conv.weight") && m->layers[0].n_in == 32 && m->layers[0].n_out == 2);
    struct mq_workload w;
    int64_t M[4], calls[4];
    T_CHECK(mq_workload_parse("infer:3", &w) == MQ_OK);
    T_CHECK(m->runner->accepts(m, &w));
    /* input 64 samples, stride 32: 2 output positions x batch 3 */
    T_CHECK(m->runner->layer_work(m, 0, &w, M, calls) == 1 && M[0] == 6 && calls[0] == 1);
    struct mq_plan *p;
    struct mq_memory mem;
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_Q8_0, &p) == MQ_OK && p->fmt[0] == MQ_DTYPE_Q8_0);
    T_CHECK(m->runner->memory(m, p, &w, &mem) == MQ_OK);
    T_CHECK(mem.weights >= mq_plan_weight_bytes(m, p) && mem.scratch >= 3 * 64 * 4 && mem.total > mem.weights);
    struct be_backend *be;
    void *s;
    T_CHECK(be_open("cpu", &(struct be_config){.n_threads = 1}, &be) == MQ_OK);
    T_CHECK(m->runner->session_new(m, p, be, &w, &s) == MQ_OK);
    T_CHECK(m->runner->session_run(s) == MQ_OK && m->runner->session_run(s) == MQ_OK);
    m->runner->session_free(s);
    struct mq_workload dec;
    T_CHECK(mq_workload_parse("decode:8", &dec) == MQ_OK && !m->runner->accepts(m, &dec));
    /* the then branch: output = mean over the conv's 2 channels x 2 positions */
    float in[64], st[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int i = 0; i < 64; i++)
        in[i] = (float)i / 64.0f;
    struct mq_onnx_exec *x;
    T_CHECK(mq_onnx_exec_new(m, NULL, NULL, &x) == MQ_OK);
    struct mq_onnx_io io[2] = {{.name = "state", .type = MQ_ONNX_IO_F32, .n_dims = 3, .dims = {2, 1, 4}, .data = st},
                               {.name = "input", .type = MQ_ONNX_IO_F32, .n_dims = 2, .dims = {1, 64}, .data = in}};
    struct mq_onnx_io out[2];
    T_CHECK(mq_onnx_exec_run(x, io, 2, out, 2) == MQ_OK);
    double want = 0;
    for (int oc = 0; oc < 2; oc++)
        for (int pos = 0; pos < 2; pos++)
            for (int k = 0; k < 32; k++)
                want += (double)vad_w(oc * 32 + k) * in[pos * 32 + k];
    want /= 4;
    float got = ((float *)out[0].data)[0], st1 = ((float *)out[1].data)[1];
    mq_onnx_io_release(out, 2);
    /* a missing input is an error, not a crash */
    T_CHECK(mq_onnx_exec_run(x, io, 1, out, 2) == MQ_EINVAL);
    mq_onnx_exec_free(x);
    be_close(be);
    mq_plan_free(p);
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) {
        m->runner->describe(m, devnull);
        fclose(devnull);
    }
    mq_model_free(m);
    T_CHECK_MSG(fabs(got - want) < 1e-5, "output %g, want %g", (double)got, want);
    T_CHECK(st1 == 2.0f); /* the then branch passes the state through */
    return T_PASS;
}

/* The real models, where scripts/fetch-models placed them: they load, run one inference
 * on the host reference and on the cpu backend, and agree (the oracle is ONNX Runtime,
 * in tests/interop/check-onnx.sh). */
static int test_real_models(void)
{
    const char *files[] = {"models/silero_vad_op18_ifless.onnx", "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"};
    int found = 0;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f)
            continue;
        fclose(f);
        found++;
        struct mq_model *m;
        T_CHECK(mq_model_load(files[i], &m) == MQ_OK);
        struct mq_workload w;
        struct be_backend *be;
        struct mq_plan *p;
        void *s;
        T_CHECK(mq_workload_parse("infer:2", &w) == MQ_OK && be_open("cpu", &(struct be_config){.n_threads = 1}, &be) == MQ_OK);
        T_CHECK(mq_plan_uniform(m, MQ_DTYPE_Q4_0, &p) == MQ_OK && mq_plan_check(m, p) == MQ_OK);
        T_CHECK(m->runner->session_new(m, p, be, &w, &s) == MQ_OK);
        T_CHECK(m->runner->session_run(s) == MQ_OK);
        m->runner->session_free(s);
        for (int l = 0; l < m->n_layers; l++) {
            int64_t M[4], calls[4];
            T_CHECK_MSG(m->runner->layer_work(m, l, &w, M, calls) == 1 && M[0] > 0 && calls[0] >= 1, "%s layer %d",
                        files[i], l);
        }
        mq_plan_free(p);
        be_close(be);
        mq_model_free(m);
    }
    T_SKIP_IF(!found, "no ONNX models under models/: run scripts/fetch-models silero-vad ppocr-cls");
    return T_PASS;
}

/* ---- input shapes (--shapes) and shared weights ---------------------------------------------- */

static int test_shapes_parse(void)
{
    static const struct {
        const char *s;
        bool ok;
        int n, nd0;
        int64_t d0_last;
    } cases[] = {
        {"images:1x3x640x640", true, 1, 4, 640},
        {"a:1x2,b:3", true, 2, 2, 2},
        {"onnx::Conv_0:1x8", true, 1, 2, 8},   /* the last ':' ends the name */
        {"x:007", true, 1, 1, 7},
        {"x:1x2x3x4x5x6x7x8", true, 1, 8, 8},
        {"x:1x2x3x4x5x6x7x8x9", false, 0, 0, 0},
        {"", false, 0, 0, 0},
        {"x", false, 0, 0, 0},
        {":1x3", false, 0, 0, 0},
        {"x:", false, 0, 0, 0},
        {"x:1x", false, 0, 0, 0},
        {"x:1xx3", false, 0, 0, 0},
        {"x:0x3", false, 0, 0, 0},
        {"x:-1x3", false, 0, 0, 0},
        {"x:1x3.5", false, 0, 0, 0},
        {"x:1 x3", false, 0, 0, 0},
        {"x:1x3,", false, 0, 0, 0},
        {"x:1,x:2", false, 0, 0, 0},
        {"x:99999999999", false, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mq_input_shapes sh;
        char why[256] = "";
        int rc = mq_input_shapes_parse(cases[i].s, &sh, why, sizeof(why));
        T_CHECK_MSG((rc == MQ_OK) == cases[i].ok, "'%s': rc %d (%s)", cases[i].s, rc, why);
        if (!cases[i].ok) {
            T_CHECK_MSG(why[0] && !strchr(why, '\n') && sh.n == 0 && !sh.v, "'%s': why '%s'", cases[i].s, why);
            continue;
        }
        T_CHECK_MSG(sh.n == cases[i].n && sh.v[0].n_dims == cases[i].nd0 &&
                    sh.v[0].dims[sh.v[0].n_dims - 1] == cases[i].d0_last, "'%s'", cases[i].s);
        mq_input_shapes_release(&sh);
    }
    /* names of any length; the canonical text drops leading zeros */
    size_t long_n = 5000;
    char *big = malloc(long_n + 16);
    T_CHECK(big != NULL);
    memset(big, 'n', long_n);
    snprintf(big + long_n, 16, ":01x2");
    struct mq_input_shapes sh;
    char why[256];
    T_CHECK(mq_input_shapes_parse(big, &sh, why, sizeof(why)) == MQ_OK);
    T_CHECK(sh.n == 1 && strlen(sh.v[0].name) == long_n && mq_input_shapes_find(&sh, sh.v[0].name) == &sh.v[0]);
    T_CHECK(strlen(sh.canon) == long_n + 4 && !strcmp(sh.canon + long_n, ":1x2"));
    T_CHECK(!mq_input_shapes_find(&sh, "x") && !mq_input_shapes_find(NULL, "x"));
    mq_input_shapes_release(&sh);
    mq_input_shapes_release(&sh); /* released twice: still empty */
    free(big);
    return T_PASS;
}

/* x [batch, 3, H, W] (dim_params of `param_len` bytes for H and W) -> Conv 3->4 3x3 pad 1 ->
 * GlobalAveragePool -> Flatten -> y [batch, 4] */
static int build_dynamic_conv(const char *file, size_t param_len, char *path, size_t size)
{
    struct pbw g = {0}, m = {0}, vi = {0}, tp = {0}, tt = {0}, sh = {0}, n;
    char *param = malloc(param_len + 1);
    if (!param)
        return -1;
    memset(param, 'h', param_len);
    param[param_len] = '\0';
    pw_str(&vi, 1, "x");
    pw_int(&tt, 1, F32);
    for (int i = 0; i < 4; i++) {
        struct pbw d = {0};
        if (i == 1)
            pw_int(&d, 1, 3);
        else
            pw_str(&d, 2, i == 0 ? "batch" : param);
        pw_msg(&sh, 1, &d);
    }
    pw_msg(&tt, 2, &sh);
    pw_msg(&tp, 1, &tt);
    pw_msg(&vi, 2, &tp);
    pw_msg(&g, 11, &vi);
    float w[4 * 3 * 9];
    for (int i = 0; i < 4 * 3 * 9; i++)
        w[i] = (float)(i % 7) * 0.1f - 0.3f;
    tensor_f32(&g, 5, "w", 4, (int64_t[]){4, 3, 3, 3}, w);
    n = node_begin("Conv", "x w", "c");
    attr_ints(&n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    pw_msg(&g, 1, &n);
    n = node_begin("GlobalAveragePool", "c", "p");
    pw_msg(&g, 1, &n);
    n = node_begin("Flatten", "p", "y");
    pw_msg(&g, 1, &n);
    value_info(&g, 12, "y", F32, 2, (int64_t[]){-1, 4});
    model_finish(&m, &g, 13);
    int rc = write_file(file, &m, path, size);
    free(m.b);
    free(param);
    return rc;
}

static int load_shaped(const char *path, const char *shapes, struct mq_model **m)
{
    struct mq_input_shapes sh;
    char why[256];
    int rc = mq_input_shapes_parse(shapes, &sh, why, sizeof(why));
    if (rc < 0)
        return rc;
    rc = mq_model_load_shaped(path, &sh, m);
    mq_input_shapes_release(&sh);
    return rc;
}

static int test_shapes_apply(void)
{
    char path[4096];
    /* a dim_param of 330 bytes (as YOLOv8's export writes) reads */
    T_CHECK(build_dynamic_conv("dynamic-conv.onnx", 330, path, sizeof(path)) == 0);
    struct mq_model *m, *m16;
    struct mq_workload w1, w2;
    int64_t M[4], calls[4];
    void *s;
    T_CHECK(mq_workload_parse("infer:1", &w1) == MQ_OK && mq_workload_parse("infer:2", &w2) == MQ_OK);
    /* without shapes: loads (info works), but a run names the input, the dimension and --shapes */
    T_CHECK(mq_model_load(path, &m) == MQ_OK && m->n_layers == 1 && !m->input_shapes);
    uint64_t plain_hash = m->content_hash;
    mq_error_set_quiet(1);
    int rc = m->runner->session_new(m, NULL, NULL, &w1, &s);
    mq_error_set_quiet(0);
    T_CHECK_MSG(rc == MQ_EUNSUPPORTED && strstr(mq_error_last(), "input 'x'") && strstr(mq_error_last(), "dimension 2") &&
                strstr(mq_error_last(), "--shapes 'x:1x3x<"), "%s", mq_error_last());
    mq_model_free(m);
    /* with shapes: the conv's columns are the output pixels, times the batch */
    T_CHECK(load_shaped(path, "x:1x3x8x8", &m) == MQ_OK && !strcmp(m->input_shapes, "x:1x3x8x8"));
    T_CHECK(m->runner->layer_work(m, 0, &w1, M, calls) == 1 && M[0] == 64 && calls[0] == 1);
    T_CHECK(m->runner->layer_work(m, 0, &w2, M, calls) == 1 && M[0] == 128 && calls[0] == 1);
    struct mq_plan *p;
    struct be_backend *be;
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_F16, &p) == MQ_OK && be_open("cpu", &(struct be_config){.n_threads = 1}, &be) == MQ_OK);
    T_CHECK(m->runner->session_new(m, p, be, &w2, &s) == MQ_OK && m->runner->session_run(s) == MQ_OK);
    m->runner->session_free(s);
    /* another size is another model to every cache */
    T_CHECK(load_shaped(path, "x:1x3x16x12", &m16) == MQ_OK);
    T_CHECK(m->content_hash != plain_hash && m16->content_hash != m->content_hash);
    T_CHECK(m16->runner->layer_work(m16, 0, &w1, M, calls) == 1 && M[0] == 192);
    struct mq_memory mem8, mem16;
    T_CHECK(m->runner->memory(m, p, &w1, &mem8) == MQ_OK && m16->runner->memory(m16, p, &w1, &mem16) == MQ_OK);
    T_CHECK(mem16.scratch > mem8.scratch && mem16.weights == mem8.weights);
    mq_plan_free(p);
    be_close(be);
    mq_model_free(m16);
    mq_model_free(m);
    /* what does not fit the model: one line each, MQ_EINVAL */
    static const char *const bad[] = {"y:1x3x8x8", "x:1x3x8", "x:1x4x8x8", "x:1x3x8x8,z:2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mq_error_set_quiet(1);
        rc = load_shaped(path, bad[i], &m);
        mq_error_set_quiet(0);
        T_CHECK_MSG(rc == MQ_EINVAL && !m && !strchr(mq_error_last(), '\n'), "'%s': rc %d: %s", bad[i], rc,
                    mq_error_last());
    }
    /* a GGUF file refuses shapes */
    mq_error_set_quiet(1);
    rc = load_shaped("examples/tinyllm/tinyllm.gguf", "x:1", &m);
    mq_error_set_quiet(0);
    T_CHECK_MSG(rc == MQ_EINVAL && strstr(mq_error_last(), "ONNX models only"), "%s", mq_error_last());
    return T_PASS;
}

/* One weight W [4, 4] read by MatMul(x, W), MatMul(a, Identity(W)) and Gemm(b, W): one layer. */
static int test_shared_weight(void)
{
    struct pbw g = {0}, mb = {0}, n;
    float W[16], bias[4] = {0.5f, -0.25f, 0.125f, 1};
    for (int i = 0; i < 16; i++)
        W[i] = (float)((i * 5) % 7) * 0.25f - 0.75f;
    value_info(&g, 11, "x", F32, 2, (int64_t[]){1, 4});
    tensor_f32(&g, 5, "W", 2, (int64_t[]){4, 4}, W);
    tensor_f32(&g, 5, "bias", 1, (int64_t[]){4}, bias);
    n = node_begin("MatMul", "x W", "a");
    pw_msg(&g, 1, &n);
    n = node_begin("Identity", "W", "W_copy");
    pw_msg(&g, 1, &n);
    n = node_begin("MatMul", "a W_copy", "b");
    pw_msg(&g, 1, &n);
    n = node_begin("Gemm", "b W bias", "y");
    pw_msg(&g, 1, &n);
    value_info(&g, 12, "y", F32, 2, (int64_t[]){1, 4});
    model_finish(&mb, &g, 13);
    char path[4096];
    T_CHECK(write_file("shared-weight.onnx", &mb, path, sizeof(path)) == 0);
    free(mb.b);
    struct mq_model *m;
    T_CHECK(mq_model_load(path, &m) == MQ_OK);
    T_CHECK_MSG(m->n_layers == 1 && !strcmp(m->layers[0].name, "W") && m->n_params == 20, "%d layers, %lld params",
                m->n_layers, (long long)m->n_params);
    struct mq_workload w;
    int64_t M[4], calls[4];
    T_CHECK(mq_workload_parse("infer:1", &w) == MQ_OK);
    T_CHECK(m->runner->layer_work(m, 0, &w, M, calls) == 1 && M[0] == 1 && calls[0] == 3);
    /* sizes count it once: f32 weights 64 bytes, other constants the bias */
    struct mq_plan *p;
    struct mq_memory mem;
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_F32, &p) == MQ_OK && p->n_layers == 1 && mq_plan_weight_bytes(m, p) == 64);
    T_CHECK(m->runner->memory(m, p, &w, &mem) == MQ_OK && mem.weights == 64 + 16);
    /* the three nodes run the one layer: y = ((x W) W) W + bias, on the host and the backend */
    float x[4] = {1, -2, 0.5f, 3}, v[4], t[4];
    memcpy(v, x, sizeof(v));
    for (int r = 0; r < 3; r++) {
        for (int j = 0; j < 4; j++) {
            t[j] = r == 2 ? bias[j] : 0;
            for (int k = 0; k < 4; k++)
                t[j] += v[k] * W[k * 4 + j];
        }
        memcpy(v, t, sizeof(v));
    }
    struct be_backend *be;
    T_CHECK(be_open("cpu", &(struct be_config){.n_threads = 1}, &be) == MQ_OK);
    for (int pass = 0; pass < 2; pass++) {
        struct mq_onnx_exec *ex;
        T_CHECK(mq_onnx_exec_new(m, pass ? p : NULL, pass ? be : NULL, &ex) == MQ_OK);
        struct mq_onnx_io in = {.name = "x", .type = MQ_ONNX_IO_F32, .n_dims = 2, .dims = {1, 4}, .data = x}, out;
        T_CHECK(mq_onnx_exec_run(ex, &in, 1, &out, 1) == MQ_OK);
        for (int j = 0; j < 4; j++)
            T_CHECK_MSG(fabsf(((float *)out.data)[j] - v[j]) < 1e-4f, "pass %d y[%d] %g, want %g", pass, j,
                        ((float *)out.data)[j], v[j]);
        mq_onnx_io_release(&out, 1);
        mq_onnx_exec_free(ex);
    }
    be_close(be);
    mq_plan_free(p);
    mq_model_free(m);
    return T_PASS;
}

/* QDQ: weights stored as int8 with per-channel scales are dequantized at load into a
 * quantizable layer (info says so); activations go through QuantizeLinear (uint8 from its
 * zero point's type, round half to even, saturation) and DequantizeLinear. By hand. */
static int test_qdq(void)
{
    struct pbw g = {0}, m = {0}, n;
    /* x [1, 4] -> Q (scale 0.5, zp 128 uint8) -> DQ -> MatMul with W = DQ(Wq [4, 2] int8, per
     * column scales [0.1, 0.2] on axis 1, zp 0) -> y [1, 2] */
    const int64_t wq[8] = {1, -2, 3, 127, -128, 5, 0, -1};
    const float ws[2] = {0.1f, 0.2f}, xs[1] = {0.5f};
    const int64_t wz[2] = {0, 0}, xz[1] = {128};
    tensor_8bit(&g, 5, "wq", I8, 2, (int64_t[]){4, 2}, wq);
    tensor_f32(&g, 5, "ws", 1, (int64_t[]){2}, ws);
    tensor_8bit(&g, 5, "wz", I8, 1, (int64_t[]){2}, wz);
    tensor_f32(&g, 5, "xs", 0, NULL, xs);
    tensor_8bit(&g, 5, "xz", U8, 0, NULL, xz);
    value_info(&g, 11, "x", F32, 2, (int64_t[]){1, 4});
    n = node_begin("DequantizeLinear", "wq ws wz", "w");
    attr_int(&n, "axis", 1);
    pw_msg(&g, 1, &n);
    n = node_begin("QuantizeLinear", "x xs xz", "xq");
    pw_msg(&g, 1, &n);
    n = node_begin("DequantizeLinear", "xq xs xz", "xd");
    pw_msg(&g, 1, &n);
    n = node_begin("MatMul", "xd w", "y");
    pw_msg(&g, 1, &n);
    value_info(&g, 12, "y", F32, 2, (int64_t[]){1, 2});
    model_finish(&m, &g, 13);
    char path[4096];
    T_CHECK(write_file("qdq.onnx", &m, path, sizeof(path)) == 0);
    free(m.b);
    struct mq_model *model;
    T_CHECK(mq_model_load(path, &model) == MQ_OK && model->n_layers == 1);
    /* the layer holds the dequantized weights (row n of the layer is W's column n) */
    const float *lw = model->layers[0].src_data;
    T_CHECK(fabsf(lw[0] - 0.1f) < 1e-7f && fabsf(lw[3 * 1 + 0] - 0.0f) < 1e-7f &&
            fabsf(lw[4 + 1] - 25.4f) < 1e-5f);
    char desc[4096];
    FILE *f = fmemopen(desc, sizeof(desc), "w");
    T_CHECK(f);
    model->runner->describe(model, f);
    fclose(f);
    T_CHECK_MSG(strstr(desc, "quantized     1 tensors stored as integers"), "%s", desc);
    /* x: 1.25 / 0.5 = 2.5 -> 2 (half to even) + 128; 100 saturates at 255; -70 at 0 */
    const float x[4] = {1.25f, 100.0f, -70.0f, 0.75f};
    float xd[4];
    for (int i = 0; i < 4; i++) {
        float q = rintf(x[i] / 0.5f) + 128.0f;
        q = q < 0 ? 0 : q > 255 ? 255 : q;
        xd[i] = (q - 128.0f) * 0.5f;
    }
    T_CHECK(xd[0] == 1.0f && xd[1] == 63.5f && xd[2] == -64.0f && xd[3] == 1.0f); /* 1.5 -> 2 */
    struct mq_onnx_exec *x_exec;
    struct mq_onnx_io in = {.name = "x",
                            .type = MQ_ONNX_IO_F32,
                            .n_dims = 2,
                            .dims = {1, 4},
                            .data = (void *)x},
                      out;
    T_CHECK(mq_onnx_exec_new(model, NULL, NULL, &x_exec) == MQ_OK &&
            mq_onnx_exec_run(x_exec, &in, 1, &out, 1) == MQ_OK);
    for (int j = 0; j < 2; j++) {
        double want = 0;
        for (int k = 0; k < 4; k++)
            want += (double)xd[k] * (double)wq[k * 2 + j] * ws[j];
        T_CHECK_MSG(fabs(((float *)out.data)[j] - want) < 1e-4 * (1 + fabs(want)),
                    "y[%d] %g, by hand %g", j, ((float *)out.data)[j], want);
    }
    mq_onnx_io_release(&out, 1);
    mq_onnx_exec_free(x_exec);
    mq_model_free(model);
    /* DynamicQuantizeLinear: range [-1, 2] -> scale 3/255, zero point 85; 0.5 / scale = 42.5
     * rounds to even (42) */
    const float dx[4] = {-1.0f, 0.0f, 0.5f, 2.0f};
    struct pbw dg = {0}, dm = {0};
    value_info(&dg, 11, "x", F32, 1, (int64_t[]){4});
    n = node_begin("DynamicQuantizeLinear", "x", "y s z");
    pw_msg(&dg, 1, &n);
    value_info(&dg, 12, "y", U8, 1, (int64_t[]){4});
    value_info(&dg, 12, "s", F32, 0, NULL);
    value_info(&dg, 12, "z", U8, 0, NULL);
    model_finish(&dm, &dg, 11);
    T_CHECK(write_file("dql.onnx", &dm, path, sizeof(path)) == 0);
    free(dm.b);
    struct mq_onnx_io dq, d3[3];
    struct mq_onnx_io din = {
        .name = "x", .type = MQ_ONNX_IO_F32, .n_dims = 1, .dims = {4}, .data = (void *)dx};
    T_CHECK(mq_model_load(path, &model) == MQ_OK &&
            mq_onnx_exec_new(model, NULL, NULL, &x_exec) == MQ_OK &&
            mq_onnx_exec_run(x_exec, &din, 1, d3, 3) == MQ_OK);
    const int64_t *dy = d3[0].data;
    bool dok = dy[0] == 0 && dy[1] == 85 && dy[2] == 127 && dy[3] == 255 &&
               fabsf(((float *)d3[1].data)[0] - 3.0f / 255.0f) < 1e-9f &&
               ((int64_t *)d3[2].data)[0] == 85;
    mq_onnx_io_release(d3, 3);
    mq_onnx_exec_free(x_exec);
    mq_model_free(model);
    T_CHECK(dok);
    /* MatMulInteger with a constant B: a layer holding B - zero point; (A - 1) x (B - 2) */
    const int64_t ai[6] = {3, 1, 0, 2, 5, 1}, bi[6] = {4, 0, 2, 7, 1, 3}, az[1] = {1}, bz[1] = {2};
    struct t_in mi[4] = {{.name = "a", .i = ai, .nd = 2, .dims = {2, 3}},
                         CI("b", bi, 2, 3, 2),
                         CI("az", az, 0),
                         CI("bz", bz, 0)};
    struct mq_model *mm;
    T_CHECK(run_op("MatMulInteger", mi, 4, NULL, NULL, 10, NULL, MQ_DTYPE_F32, &dq, &mm) == MQ_OK);
    T_CHECK(mm->n_layers == 1 &&
            ((const float *)mm->layers[0].src_data)[1] == 0.0f); /* row 0: b[.][0] - 2 */
    mq_model_free(mm);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            int64_t want = 0;
            for (int k = 0; k < 3; k++)
                want += (ai[i * 3 + k] - 1) * (bi[k * 2 + j] - 2);
            T_CHECK_MSG(((float *)dq.data)[i * 2 + j] == (float)want, "y[%d][%d] %g, want %lld", i,
                        j, ((float *)dq.data)[i * 2 + j], (long long)want);
        }
    mq_onnx_io_release(&dq, 1);
    /* ConvInteger, 1x1, a zero point per output channel (onnxruntime takes one only):
     * y[o][p] = sum_c (x[c][p] - 3) * (w[o][c] - wz[o]) */
    const int64_t cx[4] = {5, 1, 3, 7}, cw[4] = {2, 4, -1, 0}, cxz[1] = {3}, cwz[2] = {1, -1};
    struct t_in ci[4] = {{.name = "x", .i = cx, .nd = 4, .dims = {1, 2, 1, 2}},
                         CI("w", cw, 4, 2, 2, 1, 1),
                         CI("xz", cxz, 0),
                         CI("wz", cwz, 1, 2)};
    T_CHECK(run_op("ConvInteger", ci, 4, NULL, NULL, 10, NULL, MQ_DTYPE_F32, &dq, &mm) == MQ_OK);
    T_CHECK(mm->n_layers == 1 && mm->layers[0].role == MQ_ROLE_CONV);
    mq_model_free(mm);
    for (int o = 0; o < 2; o++)
        for (int p = 0; p < 2; p++) {
            int64_t want = 0;
            for (int ch = 0; ch < 2; ch++)
                want += (cx[ch * 2 + p] - 3) * (cw[o * 2 + ch] - cwz[o]);
            T_CHECK_MSG(((float *)dq.data)[o * 2 + p] == (float)want,
                        "conv y[%d][%d] %g, want %lld", o, p, ((float *)dq.data)[o * 2 + p],
                        (long long)want);
        }
    mq_onnx_io_release(&dq, 1);
    /* refusals: blocked quantization; a zero point whose type is known only at run time */
    struct t_in bq[3] = {IF("x", x, 2, 1, 4), CF("s", xs, 1, 1), CI("z", xz, 1, 1)};
    struct mq_onnx_io o;
    mq_error_set_quiet(1);
    int rc = run_op("QuantizeLinear", bq, 3, NULL, NULL, 13, NULL, MQ_DTYPE_F32, &o, NULL);
    T_CHECK_MSG(rc == MQ_EUNSUPPORTED && strstr(mq_error_last(), "quantization to int64"), "%d %s",
                rc, mq_error_last());
    rc = run_op("DequantizeLinear", bq, 2, a_block, NULL, 21, NULL, MQ_DTYPE_F32, &o, NULL);
    mq_error_set_quiet(0);
    T_CHECK_MSG(rc == MQ_EUNSUPPORTED && strstr(mq_error_last(), "block_size"), "%d %s", rc,
                mq_error_last());
    return T_PASS;
}

/* A model whose input is integers (token ids: Gather of an embedding, then a MatMul layer)
 * is priced by a shape pass with zeros for them: layer work and memory, as for float inputs. */
static int test_integer_input_pass(void)
{
    struct pbw g = {0}, m = {0}, n;
    float emb[10 * 8], w[8 * 3];
    for (int i = 0; i < 10 * 8; i++)
        emb[i] = (float)(i % 5) * 0.1f;
    for (int i = 0; i < 8 * 3; i++)
        w[i] = (float)(i % 3) - 1.0f;
    tensor_f32(&g, 5, "emb", 2, (int64_t[]){10, 8}, emb);
    tensor_f32(&g, 5, "w", 2, (int64_t[]){8, 3}, w);
    float small[3 * 8] = {0};
    tensor_f32(&g, 5, "small", 2, (int64_t[]){3, 8}, small);
    value_info(&g, 11, "ids", I64, 2, (int64_t[]){1, 16});
    value_info(&g, 11, "kind", I64, 2, (int64_t[]){1, 16}); /* indexes a 3-row table through a Cast */
    value_info(&g, 11, "mask", I64, 2, (int64_t[]){1, 16}); /* indexes nothing */
    n = node_begin("Gather", "emb ids", "e");
    pw_msg(&g, 1, &n);
    n = node_begin("Cast", "kind", "kind64");
    attr_int(&n, "to", 7);
    pw_msg(&g, 1, &n);
    n = node_begin("Gather", "small kind64", "s");
    pw_msg(&g, 1, &n);
    n = node_begin("Add", "e s", "es");
    pw_msg(&g, 1, &n);
    n = node_begin("Cast", "mask", "maskf");
    attr_int(&n, "to", 1);
    pw_msg(&g, 1, &n);
    n = node_begin("Unsqueeze", "maskf axes", "mask3");
    pw_msg(&g, 1, &n);
    n = node_begin("Mul", "es mask3", "em");
    pw_msg(&g, 1, &n);
    n = node_begin("MatMul", "em w", "y");
    pw_msg(&g, 1, &n);
    tensor_i64(&g, 5, "axes", 1, (int64_t[]){1}, (int64_t[]){2});
    value_info(&g, 12, "y", F32, 3, (int64_t[]){1, 16, 3});
    model_finish(&m, &g, 13);
    char path[4096];
    T_CHECK(write_file("int-input.onnx", &m, path, sizeof(path)) == 0);
    free(m.b);
    struct mq_model *model;
    struct mq_workload w1;
    struct mq_plan *p;
    struct mq_memory mem;
    int64_t M[4], calls[4];
    T_CHECK(mq_model_load(path, &model) == MQ_OK && model->n_layers == 1);
    T_CHECK(mq_workload_parse("infer:1", &w1) == MQ_OK &&
            mq_plan_uniform(model, MQ_DTYPE_F16, &p) == MQ_OK);
    T_CHECK(model->runner->layer_work(model, 0, &w1, M, calls) == 1 && M[0] == 16 && calls[0] == 1);
    T_CHECK(model->runner->memory(model, p, &w1, &mem) == MQ_OK && mem.scratch > 0);
    /* random samples: ids below the embedding's 10 rows, kind below 3, the mask 0 or 1,
     * each value taken */
    const struct ox_graph *gr = model->impl;
    T_CHECK(ox_inputs_int_bound(gr, "ids") == 10 && ox_inputs_int_bound(gr, "kind") == 3 &&
            ox_inputs_int_bound(gr, "mask") == 2);
    struct ox_samples smp;
    T_CHECK(ox_inputs_random(gr, 8, &smp) == MQ_OK && smp.n_samples == 8 && smp.n_io == 3);
    int seen[3][10] = {{0}};
    for (int k = 0; k < smp.n_samples * smp.n_io; k++) {
        const struct mq_onnx_io *io = &smp.io[k];
        int which = !strcmp(io->name, "ids") ? 0 : !strcmp(io->name, "kind") ? 1 : 2;
        int64_t bound = which == 0 ? 10 : which == 1 ? 3 : 2;
        for (int e = 0; e < 16; e++) {
            int64_t v = ((const int64_t *)io->data)[e];
            T_CHECK_MSG(v >= 0 && v < bound, "%s = %lld", io->name, (long long)v);
            seen[which][v]++;
        }
    }
    for (int which = 0; which < 3; which++)
        for (int v = 0; v < (which == 0 ? 10 : which == 1 ? 3 : 2); v++)
            T_CHECK_MSG(seen[which][v] > 0, "input %d never %d in 128 draws", which, v);
    ox_samples_free(&smp);
    mq_plan_free(p);
    mq_model_free(model);
    return T_PASS;
}

/* ---- the user's arrays and the generic quality measure ---- */

/* A .npy image: version `ver`, header dict `dict`, then `data_len` bytes of data. */
static size_t npy_image(uint8_t *buf, int ver, const char *dict, const void *data, size_t data_len)
{
    size_t hl = strlen(dict), at = ver == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)ver;
    buf[7] = 0;
    if (ver == 1) {
        buf[8] = (uint8_t)(hl & 0xFF);
        buf[9] = (uint8_t)(hl >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            buf[8 + i] = (uint8_t)(hl >> (8 * i));
    }
    memcpy(buf + at, dict, hl);
    memcpy(buf + at + hl, data, data_len);
    return at + hl + data_len;
}

static int test_npy_parse(void)
{
    uint8_t buf[1024];
    struct ox_array a;
    float f4[6] = {1.5f, -2.0f, 0.25f, 3.0f, -0.5f, 8.0f};
    size_t n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
                         f4, sizeof(f4));
    T_CHECK(ox_npy_parse(buf, n, "f4", &a) == MQ_OK && a.is_float && a.nd == 2 && a.dims[0] == 2 &&
            a.dims[1] == 3 && a.n == 6 && ((float *)a.data)[5] == 8.0f &&
            ((float *)a.data)[1] == -2.0f);
    free(a.data);
    /* version 2 header, f8 narrowed, a 1-D shape with its trailing comma */
    double f8[3] = {0.125, -7.0, 1e3};
    n = npy_image(buf, 2, "{'descr':'<f8','fortran_order':False,'shape':(3,)}", f8, sizeof(f8));
    T_CHECK(ox_npy_parse(buf, n, "f8", &a) == MQ_OK && a.nd == 1 && a.dims[0] == 3 &&
            ((float *)a.data)[1] == -7.0f && ((float *)a.data)[2] == 1000.0f);
    free(a.data);
    /* f2 (0x3C00 = 1, 0xC000 = -2) */
    uint16_t f2[2] = {0x3C00, 0xC000};
    n = npy_image(buf, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2), }", f2,
                  sizeof(f2));
    T_CHECK(ox_npy_parse(buf, n, "f2", &a) == MQ_OK && ((float *)a.data)[0] == 1.0f &&
            ((float *)a.data)[1] == -2.0f);
    free(a.data);
    /* integers: i1 sign-extended, u2 not, b1 as 0/1; a scalar shape () */
    int8_t i1[2] = {-3, 5};
    n = npy_image(buf, 1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", i1,
                  sizeof(i1));
    T_CHECK(ox_npy_parse(buf, n, "i1", &a) == MQ_OK && !a.is_float &&
            ((int64_t *)a.data)[0] == -3 && ((int64_t *)a.data)[1] == 5);
    free(a.data);
    uint16_t u2[1] = {65535};
    n = npy_image(buf, 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (), }", u2,
                  sizeof(u2));
    T_CHECK(ox_npy_parse(buf, n, "u2", &a) == MQ_OK && a.nd == 0 && a.n == 1 &&
            ((int64_t *)a.data)[0] == 65535);
    free(a.data);
    uint8_t b1[2] = {0, 7};
    n = npy_image(buf, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", b1,
                  sizeof(b1));
    T_CHECK(ox_npy_parse(buf, n, "b1", &a) == MQ_OK && ((int64_t *)a.data)[1] == 1);
    free(a.data);
    /* refusals: one line each, naming the array */
    static const struct {
        int ver;
        const char *dict, *want;
        size_t data;
    } bad[] = {
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "element type '>f4'", 8},
        {1, "{'descr': '<U8', 'fortran_order': False, 'shape': (2,), }", "element type '<U8'", 64},
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", "Fortran-order", 8},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", "truncated", 8},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", "empty", 8},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "bad .npy shape", 8},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", "structured", 8},
        {1, "{'descr': '<f4', 'fortran_order': False}", "'shape'", 8},
        {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "version 4", 8},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
         "dimensions", 8},
    };
    uint8_t zero[64] = {0};
    mq_error_set_quiet(1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = npy_image(buf, bad[i].ver, bad[i].dict, zero, bad[i].data);
        int rc = ox_npy_parse(buf, n, "bad.npy", &a);
        free(a.data);
        T_CHECK_MSG(rc < 0 && strstr(mq_error_last(), bad[i].want) &&
                        strstr(mq_error_last(), "bad.npy"),
                    "case %zu: rc %d, '%s'", i, rc, mq_error_last());
    }
    T_CHECK(ox_npy_parse((const uint8_t *)"PK\x03\x04 not npy", 14, "x.npy", &a) < 0 &&
            strstr(mq_error_last(), "magic"));
    n = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", zero, 8);
    T_CHECK(ox_npy_parse(buf, 9, "short.npy", &a) < 0 &&
            ox_npy_parse(buf, n - 9, "cut.npy", &a) < 0); /* cut header */
    mq_error_set_quiet(0);
    return T_PASS;
}

/* x [1, 64] -> MatMul w [64, 8] -> m (output "raw") -> op (Softmax or LogSoftmax) -> y */
static int build_two_outputs(const char *op, char *path, size_t size)
{
    struct pbw g = {0}, m = {0}, n;
    float w[64 * 8];
    for (int i = 0; i < 64 * 8; i++)
        w[i] = sinf((float)i * 0.37f) * 0.4f;
    tensor_f32(&g, 5, "w", 2, (int64_t[]){64, 8}, w);
    value_info(&g, 11, "x", F32, 2, (int64_t[]){1, 64});
    n = node_begin("MatMul", "x w", "m");
    pw_msg(&g, 1, &n);
    n = node_begin(op, "m", "y");
    attr_int(&n, "axis", -1);
    pw_msg(&g, 1, &n);
    value_info(&g, 12, "y", F32, 2, (int64_t[]){1, 8});
    value_info(&g, 12, "m", F32, 2, (int64_t[]){1, 8});
    model_finish(&m, &g, 13);
    int rc = write_file(op[0] == 'L' ? "two-outputs-log.onnx" : "two-outputs.onnx", &m, path, size);
    free(m.b);
    return rc;
}

/* The generic measure against a hand computation: the user's .npy through the f32 and q4_0
 * plans, KL of the softmax output and relative MSE of the raw one, averaged; SQNR over
 * both; synthetic inputs say so. */
static int test_generic_quality(void)
{
    char path[4096], npy[4096];
    T_CHECK(build_two_outputs("Softmax", path, sizeof(path)) == 0);
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = cosf((float)i * 1.3f);
    uint8_t buf[1024];
    size_t len = npy_image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 64), }",
                           x, sizeof(x));
    snprintf(npy, sizeof(npy), "%s/in.npy", t_tmpdir());
    FILE *f = fopen(npy, "wb");
    T_CHECK(f && fwrite(buf, 1, len, f) == len && fclose(f) == 0);
    struct mq_model *m;
    struct be_backend *be;
    struct mq_plan *p32, *p4;
    T_CHECK(mq_model_load(path, &m) == MQ_OK && m->n_layers == 1);
    T_CHECK(be_open("cpu", &(struct be_config){.n_threads = 1}, &be) == MQ_OK);
    T_CHECK(mq_plan_uniform(m, MQ_DTYPE_F32, &p32) == MQ_OK &&
            mq_plan_uniform(m, MQ_DTYPE_Q4_0, &p4) == MQ_OK);
    T_CHECK(!strcmp(m->runner->loss_name(m, NULL), "kl+rel_mse"));
    T_CHECK(mq_onnx_synthetic_inputs(m, NULL) && !mq_onnx_synthetic_inputs(m, npy));
    /* by hand: both plans on x */
    double out[2][16];
    for (int k = 0; k < 2; k++) {
        struct mq_onnx_exec *xe;
        struct mq_onnx_io in = {.name = "x",
                                .type = MQ_ONNX_IO_F32,
                                .n_dims = 2,
                                .dims = {1, 64},
                                .data = x},
                          o[2];
        T_CHECK(mq_onnx_exec_new(m, k ? p4 : p32, be, &xe) == MQ_OK &&
                mq_onnx_exec_run(xe, &in, 1, o, 2) == MQ_OK);
        for (int j = 0; j < 2; j++) /* outputs in graph order: y (probs), m (raw) */
            for (int i = 0; i < 8; i++)
                out[k][j * 8 + i] = ((float *)o[j].data)[i];
        mq_onnx_io_release(o, 2);
        mq_onnx_exec_free(xe);
    }
    double kl = 0.0, ss = 0.0, se = 0.0, sr = 0.0, er = 0.0;
    for (int i = 0; i < 8; i++)
        kl += out[0][i] * log(out[0][i] / out[1][i]);
    for (int i = 0; i < 16; i++) {
        double d = out[1][i] - out[0][i];
        ss += out[0][i] * out[0][i];
        se += d * d;
        if (i >= 8) {
            sr += out[0][i] * out[0][i];
            er += d * d;
        }
    }
    double want = (kl + er / sr) / 2.0;
    void *q;
    struct mq_quality r;
    T_CHECK(m->runner->quality_new(m, be, &(struct mq_quality_config){.data = npy}, &q) == MQ_OK);
    T_CHECK(m->runner->quality_eval(q, p4, &r) == MQ_OK);
    T_CHECK_MSG(fabs(r.loss - want) <= 1e-4 * want + 1e-9, "loss %.9g, by hand %.9g", r.loss, want);
    T_CHECK_MSG(fabs(r.metric - 10.0 * log10(ss / se)) < 1e-3, "sqnr %g, by hand %g", r.metric,
                10.0 * log10(ss / se));
    T_CHECK(!strcmp(r.metric_name, "sqnr_db") && r.higher_is_better && isinf(r.ref_metric) &&
            r.n_samples == 1);
    T_CHECK(r.top1_agree == 0.0 || r.top1_agree == 1.0);
    T_CHECK(strstr(r.note, "1 sample from") && strstr(r.note, "KL of 1 output, relative MSE of 1"));
    T_CHECK(m->runner->quality_eval(q, p32, &r) == MQ_OK && r.loss == 0.0 && isinf(r.metric) &&
            r.top1_agree == 1.0);
    m->runner->quality_free(q);
    /* LogSoftmax's distributions give the same KL as Softmax's */
    char lpath[4096];
    struct mq_model *ml;
    struct mq_plan *l4;
    double l_sm;
    T_CHECK(m->runner->quality_new(m, be, &(struct mq_quality_config){.data = npy}, &q) == MQ_OK &&
            m->runner->quality_eval(q, p4, &r) == MQ_OK);
    l_sm = r.loss;
    m->runner->quality_free(q);
    T_CHECK(build_two_outputs("LogSoftmax", lpath, sizeof(lpath)) == 0 &&
            mq_model_load(lpath, &ml) == MQ_OK && mq_plan_uniform(ml, MQ_DTYPE_Q4_0, &l4) == MQ_OK);
    T_CHECK(!strcmp(ml->runner->loss_name(ml, NULL), "kl+rel_mse"));
    T_CHECK(ml->runner->quality_new(ml, be, &(struct mq_quality_config){.data = npy}, &q) ==
                MQ_OK &&
            ml->runner->quality_eval(q, l4, &r) == MQ_OK);
    ml->runner->quality_free(q);
    T_CHECK_MSG(fabs(r.loss - l_sm) < 1e-5 * l_sm, "LogSoftmax loss %.9g, Softmax %.9g", r.loss,
                l_sm);
    mq_plan_free(l4);
    mq_model_free(ml);
    /* no data: 8 seeded random samples, the same loss twice */
    double l1;
    T_CHECK(m->runner->quality_new(m, be, &(struct mq_quality_config){0}, &q) == MQ_OK);
    T_CHECK(m->runner->quality_eval(q, p4, &r) == MQ_OK && r.n_samples == 8 && r.loss > 0 &&
            strstr(r.note, "synthetic"));
    l1 = r.loss;
    m->runner->quality_free(q);
    T_CHECK(m->runner->quality_new(m, be, &(struct mq_quality_config){.max_chunks = 8}, &q) ==
            MQ_OK);
    T_CHECK(m->runner->quality_eval(q, p4, &r) == MQ_OK && r.loss == l1);
    m->runner->quality_free(q);
    /* data that names no arrays: one line */
    mq_error_set_quiet(1);
    int rc = m->runner->quality_new(m, be, &(struct mq_quality_config){.data = path}, &q);
    mq_error_set_quiet(0);
    T_CHECK_MSG(rc < 0 && strstr(mq_error_last(), ".npy or .npz"), "%s", mq_error_last());
    mq_plan_free(p32);
    mq_plan_free(p4);
    be_close(be);
    mq_model_free(m);
    return T_PASS;
}

const struct mq_test onnx_tests[] = {
    {"onnx/read-tensors", test_read_tensors},
    {"onnx/read-malformed", test_read_malformed},
    {"onnx/graph-errors", test_graph_errors},
    {"onnx/ops", test_ops},
    {"onnx/int-ops", test_int_ops},
    {"onnx/new-ops", test_new_ops},
    {"onnx/conv-vs-direct", test_conv},
    {"onnx/quantized-layer", test_quantized_layer},
    {"onnx/if-and-runner", test_if_and_runner},
    {"onnx/real-models", test_real_models},
    {"onnx/shapes-parse", test_shapes_parse},
    {"onnx/shapes-apply", test_shapes_apply},
    {"onnx/shared-weight", test_shared_weight},
    {"onnx/qdq", test_qdq},
    {"onnx/integer-input-pass", test_integer_input_pass},
    {"onnx/npy-parse", test_npy_parse},
    {"onnx/generic-quality", test_generic_quality},
    {NULL, NULL},
};
