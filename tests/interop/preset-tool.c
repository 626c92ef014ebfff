/* tests/interop/preset-tool.c - helpers of tests/interop/check-presets.sh: the synthetic
 * models of the preset tables, mixq's preset plans, and a tensor-by-tensor comparison of
 * two GGUF files.
 *
 *     preset-tool synth TABLE OUT.gguf     writes the synthetic model a table's "model
 *                                          synth k=v ..." line describes (as the unit test
 *                                          tests/unit/test_preset.c does)
 *     preset-tool plan MODEL PRESET [imatrix]
 *                                          mixq's plan: "NAME TYPE" per layer, then
 *                                          "fallback N of M" and "ftype F"
 *     preset-tool cmp MIXQ.gguf LLAMA.gguf [bytes]
 *                                          "tensor NAME TYPE_MIXQ TYPE_LLAMA same|DIFFERENT"
 *                                          for every tensor (types only, or types and
 *                                          bytes), then "file_type A B" and a summary line
 *
 * Built with mixq's library (make first):
 *     cc -std=c11 -I. tests/interop/preset-tool.c build/libmixq.a \
 *        $(cat build/link-flags) -o preset-tool
 *
 * Exit status: 0 done (cmp: all the same), 1 a difference or a failure, 2 usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/log.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/preset.h"
#include "model/synth.h"

static void usage(void)
{
    fputs("usage: preset-tool synth TABLE OUT.gguf | plan MODEL PRESET [imatrix] |\n"
          "       cmp MIXQ.gguf LLAMA.gguf [bytes]\n",
          stderr);
    exit(2);
}

/* The "model synth k=v ..." line of a table, into a config (the unit test reads it alike). */
static int read_synth(const char *table, struct mq_synth_config *c)
{
    FILE *f = fopen(table, "r");
    if (!f)
        return mq_error(MQ_EIO, "cannot open '%s'", table);
    char line[1024];
    int rc = MQ_ENOTFOUND;
    *c = (struct mq_synth_config){.name = "preset-test",
                                  .like = "preset test shapes",
                                  .rope_theta = 10000.0f,
                                  .norm_eps = 1e-5f};
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model synth ", 12))
            continue;
        long long v[7];
        if (sscanf(line + 12,
                   "n_vocab=%lld n_ctx=%lld n_embd=%lld n_layer=%lld n_ff=%lld n_head=%lld "
                   "n_head_kv=%lld",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) != 7) {
            rc = mq_error(MQ_EINVAL, "'%s': bad model line", table);
            break;
        }
        c->n_vocab = v[0], c->n_ctx = v[1], c->n_embd = v[2], c->n_layer = v[3], c->n_ff = v[4];
        c->n_head = v[5], c->n_head_kv = v[6];
        rc = MQ_OK;
        break;
    }
    fclose(f);
    return rc == MQ_ENOTFOUND ? mq_error(MQ_EINVAL, "'%s' has no 'model synth' line", table) : rc;
}

static int cmd_synth(const char *table, const char *out)
{
    struct mq_synth_config c;
    struct mq_synth_options o = {.type = MQ_DTYPE_Q4_0, .seed = 1};
    return read_synth(table, &c) < 0 || mq_synth_write(&c, &o, out) < 0;
}

static int cmd_plan(const char *path, const char *preset, bool imatrix)
{
    struct mq_model *m = NULL;
    struct mq_plan *p = NULL;
    struct mq_preset_result r;
    struct mq_preset_options o = {.imatrix =
                                      imatrix ? MQ_PRESET_IMATRIX_YES : MQ_PRESET_IMATRIX_NO};
    if (mq_model_load(path, &m) < 0 || mq_plan_preset_ex(m, preset, &o, &p, &r) < 0) {
        mq_model_free(m);
        return 1;
    }
    for (int i = 0; i < m->n_layers; i++)
        printf("%s %s\n", m->layers[i].name, mq_dtype_name(p->fmt[i]));
    printf("fallback %d of %d\nftype %d\n", r.n_fallback, r.n_tensors, p->ftype);
    mq_plan_free(p);
    mq_model_free(m);
    return 0;
}

static int cmd_cmp(const char *a_path, const char *b_path, bool bytes)
{
    struct mq_gguf *a = NULL, *b = NULL;
    if (mq_gguf_open(a_path, &a) < 0 || mq_gguf_open(b_path, &b) < 0) {
        mq_gguf_close(a);
        return 1;
    }
    int n_diff = 0;
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const struct mq_gguf_tensor *x = &a->tensors[i];
        const struct mq_gguf_tensor *y = mq_gguf_find_tensor(b, x->name);
        bool same = y && x->ggml_type == y->ggml_type && x->n_elems == y->n_elems &&
                    (!bytes || (x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes)));
        printf("tensor %s %s %s %s\n", x->name, mq_dtype_name(x->type),
               y ? mq_dtype_name(y->type) : "missing", same ? "same" : "DIFFERENT");
        n_diff += !same;
    }
    if (a->n_tensors != b->n_tensors) {
        printf("tensors %" PRIu64 " %" PRIu64 " DIFFERENT\n", a->n_tensors, b->n_tensors);
        n_diff++;
    }
    uint32_t fa = 0, fb = 0;
    int ra = mq_gguf_get_u32(a, "general.file_type", &fa),
        rb = mq_gguf_get_u32(b, "general.file_type", &fb);
    bool ft_same = ra == MQ_OK && rb == MQ_OK && fa == fb;
    printf("file_type %u %u %s\n", fa, fb, ft_same ? "same" : "DIFFERENT");
    n_diff += !ft_same;
    printf("summary %" PRIu64 " tensors, %d different (%s)\n", a->n_tensors, n_diff,
           bytes ? "types and bytes" : "types");
    mq_gguf_close(a);
    mq_gguf_close(b);
    return n_diff != 0;
}

int main(int argc, char **argv)
{
    mq_log_set_level(MQ_LOG_WARN);
    if (argc == 4 && !strcmp(argv[1], "synth"))
        return cmd_synth(argv[2], argv[3]);
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "plan"))
        return cmd_plan(argv[2], argv[3], argc == 5 && !strcmp(argv[4], "imatrix"));
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "cmp"))
        return cmd_cmp(argv[2], argv[3], argc == 5 && !strcmp(argv[4], "bytes"));
    usage();
    return 2;
}
