/* tests/unit/test_yaml.c - plan files: valid ones read, broken ones refused with MQ_EFORMAT. */
#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "model/model.h"
#include "model/plan.h"
#include "reports/plan_io.h"
#include "tests/unit/test.h"

static const char *write_tmp(const char *name, const char *text)
{
    static char path[4200];
    snprintf(path, sizeof(path), "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

static int test_plan_read(void)
{
    struct mq_model *m;
    T_CHECK(mq_model_load("examples/tinyllm/tinyllm.gguf", &m) == MQ_OK);
    struct mq_plan *p = NULL;
    const char *path = write_tmp("ok.yaml", "mixq_schema: plan/1\n"
                                            "default: q4_0\n"
                                            "layers:\n"
                                            "  blk.0.attn_v.weight: q8_0\n"
                                            "  output.weight: F16\n");
    T_CHECK(path && rpt_plan_read(m, path, &p) == MQ_OK);
    T_CHECK(p->fmt[mq_model_find_layer(m, "blk.0.attn_v.weight")] == MQ_DTYPE_Q8_0);
    T_CHECK(p->fmt[mq_model_find_layer(m, "output.weight")] == MQ_DTYPE_F16);
    T_CHECK(p->fmt[mq_model_find_layer(m, "blk.5.ffn_up.weight")] == MQ_DTYPE_Q4_0);
    T_CHECK(strstr(p->label, "mixed") != NULL);
    mq_plan_free(p);

    static const struct {
        const char *text;
        int want;
    } bad[] = {
        {"default: q4_0\n", MQ_EFORMAT},                                   /* no schema */
        {"mixq_schema: plan/9\ndefault: q4_0\n", MQ_EUNSUPPORTED},         /* future version */
        {"mixq_schema: front/1\ndefault: q4_0\n", MQ_EFORMAT},             /* another schema */
        {"mixq_schema: plan/1\ndefault: q7_k\n", MQ_EFORMAT},              /* unknown format */
        {"mixq_schema: plan/1\ndefault: i32\n", MQ_EFORMAT},               /* not a plan format */
        {"mixq_schema: plan/1\nlayers:\n  blk.0.attn_v.weight: f16\n", MQ_EFORMAT}, /* others unset */
        {"mixq_schema: plan/1\ndefault: f16\nlayers:\n  blk.9.attn_v.weight: f16\n", MQ_EFORMAT},
        {"mixq_schema: plan/1\ndefault: f16\nlayers:\n  output.weight: f16\n  output.weight: q8_0\n", MQ_EFORMAT},
        {"mixq_schema: plan/1\ndefault: f16\nlayers: [1, 2]\n", MQ_EFORMAT},
        {"mixq_schema: plan/1\ndefault: [f16\n", MQ_EFORMAT},              /* YAML syntax */
        {"- a\n- b\n", MQ_EFORMAT},                                        /* not a mapping */
        {"", MQ_EFORMAT},                                                  /* empty */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        path = write_tmp("bad.yaml", bad[i].text);
        p = NULL;
        int rc = rpt_plan_read(m, path, &p);
        T_CHECK_MSG(rc == bad[i].want && p == NULL, "case %zu: rc %d", i, rc);
    }
    T_CHECK(rpt_plan_read(m, "/nonexistent/plan.yaml", &p) == MQ_EIO);
    mq_model_free(m);
    return T_PASS;
}

const struct mq_test yaml_tests[] = {
    {"yaml/plan_read", test_plan_read},
    {NULL, NULL},
};
