/* tests/interop/onnx-run.c - runs an ONNX model through mixq and writes every inference's
 * inputs and outputs as .npy files, so that ONNX Runtime can run the same inputs
 * (tests/interop/check-onnx.py compares).
 *
 *     onnx-run MODEL OUTDIR [--plan FORMAT] [--backend NAME] [--cases N] [--batch B]
 *              [--shapes NAME:1x3x64x64,...] [--int-range N]
 *
 * Inputs: Silero VAD gets the first frames of the WAV given with --wav (the VAD mix); the
 * OCR models their evaluation lines (the task's default data), preprocessed as mixq's
 * evaluation feeds them, `--batch` per case; other models deterministic pseudo-random
 * values in [-1, 1) (integer inputs in [0, N), --int-range, default 2), at the --shapes given. Silero VAD runs frame after frame with the state that
 * mixq returned, as its evaluation does; ONNX Runtime gets each frame's recorded state,
 * so every step is compared on identical inputs. Files: case<k>.in.<input>.npy and
 * case<k>.out.<index>.npy (outputs in graph order), and manifest.txt listing cases.
 * Exit 0 on success, 1 on failure, 2 on bad usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/backend.h"
#include "core/status.h"
#include "model/model.h"
#include "model/plan.h"
#include "model/shapes.h"
#include "onnx/onnx.h"
#include "onnx/onnx_task.h"

static int write_npy(const char *path, const struct mq_onnx_io *t)
{
    char hdr[256], shape[160] = "";
    size_t len = 0;
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        len += (size_t)snprintf(shape + len, sizeof(shape) - len, "%" PRId64 ",%s", t->dims[d],
                                d + 1 < t->n_dims ? " " : "");
        n *= t->dims[d];
    }
    if (t->n_dims > 1)
        shape[strlen(shape) - 1] = '\0'; /* (a, b) rather than (a, b,) */
    int h = snprintf(hdr, sizeof(hdr), "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     t->type == MQ_ONNX_IO_F32 ? "<f4" : "<i8", shape);
    int total = 10 + h + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f)
        return mq_error(MQ_EIO, "cannot write '%s'", path);
    uint16_t hl = (uint16_t)(h + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(hdr, 1, (size_t)h, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    size_t es = t->type == MQ_ONNX_IO_F32 ? 4 : 8;
    size_t wrote = fwrite(t->data, es, (size_t)n, f);
    int bad = fclose(f) != 0 || wrote != (size_t)n;
    return bad ? mq_error(MQ_EIO, "cannot write '%s'", path) : MQ_OK;
}

static float rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((double)(*s >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* Reads the first `n` 16-bit samples of a WAV's data chunk (the VAD mix), or fails. */
static int wav_samples(const char *path, float *out, int64_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char b[12];
    int rc = -1;
    if (fread(b, 1, 12, f) == 12 && !memcmp(b, "RIFF", 4))
        for (;;) {
            unsigned char ch[8];
            if (fread(ch, 1, 8, f) != 8)
                break;
            uint32_t sz = (uint32_t)ch[4] | (uint32_t)ch[5] << 8 | (uint32_t)ch[6] << 16 | (uint32_t)ch[7] << 24;
            if (memcmp(ch, "data", 4)) {
                if (fseek(f, (long)(sz + (sz & 1)), SEEK_CUR))
                    break;
                continue;
            }
            int64_t i = 0;
            for (; i < n && i < (int64_t)sz / 2; i++) {
                unsigned char s[2];
                if (fread(s, 1, 2, f) != 2)
                    break;
                out[i] = (float)(int16_t)(s[0] | s[1] << 8) / 32768.0f;
            }
            rc = i == n ? 0 : -1;
            break;
        }
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    const char *plan_name = "f32", *backend = "cpu", *wav = NULL, *shapes = NULL;
    int cases = 4, int_range = 2;
    int64_t batch = 2;
    if (argc < 3) {
        fprintf(stderr, "usage: onnx-run MODEL OUTDIR [--plan F] [--backend B] [--cases N] [--batch B] [--wav F]\n");
        return 2;
    }
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--plan"))
            plan_name = argv[i + 1];
        else if (!strcmp(argv[i], "--backend"))
            backend = argv[i + 1];
        else if (!strcmp(argv[i], "--cases"))
            cases = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--wav"))
            wav = argv[i + 1];
        else if (!strcmp(argv[i], "--shapes"))
            shapes = argv[i + 1];
        else if (!strcmp(argv[i], "--int-range"))
            int_range = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 2;
        else
            return fprintf(stderr, "onnx-run: unknown option '%s'\n", argv[i]), 2;
    }
    struct mq_model *m = NULL;
    struct mq_plan *plan = NULL;
    struct be_backend *be = NULL;
    struct mq_onnx_exec *x = NULL;
    enum mq_dtype fmt;
    struct mq_input_shapes sh = {0};
    char why[256];
    int rc;
    if (shapes && mq_input_shapes_parse(shapes, &sh, why, sizeof(why)) < 0)
        return fprintf(stderr, "onnx-run: --shapes: %s\n", why), 2;
    if ((rc = mq_model_load_shaped(argv[1], shapes ? &sh : NULL, &m)) < 0 || (rc = mq_dtype_from_name(plan_name, &fmt)) < 0 ||
        (rc = mq_plan_uniform(m, fmt, &plan)) < 0 || (rc = be_open(backend, &(struct be_config){0}, &be)) < 0 ||
        (rc = mq_onnx_exec_new(m, plan, be, &x)) < 0)
        goto done;
    mkdir(argv[2], 0755);
    const struct ox_graph *g = m->impl;
    bool vad = strcmp(g->task->name, "silero-vad") == 0;
    struct mq_onnx_io in[16], out[16];
    int n_in = onnx_task_inputs(g, vad ? 1 : batch, in);
    if (n_in < 0 || g->n_outputs > 16) {
        rc = n_in < 0 ? n_in : MQ_EUNSUPPORTED;
        goto done;
    }
    uint64_t seed = 0x243F6A8885A308D3ULL;
    float *audio = NULL, *images = NULL;
    int n_images = 0;
    int64_t img_h = 0, img_w = 0;
    if (!vad && onnx_task_images(m, NULL, cases * (int)batch, &images, &n_images, &img_h, &img_w) < 0)
        images = NULL; /* no images: pseudo-random inputs */
    if (vad) {
        audio = calloc((size_t)(cases + 1) * 512, sizeof(float));
        if (!audio || !wav || wav_samples(wav, audio, (int64_t)cases * 512) < 0)
            for (int64_t i = 0; audio && i < (int64_t)cases * 512; i++)
                audio[i] = 0.3f * rnd(&seed);
    }
    for (int i = 0; i < n_in; i++) {
        int64_t n = 1;
        for (int d = 0; d < in[i].n_dims; d++)
            n *= in[i].dims[d];
        in[i].data = calloc((size_t)n, 8);
        if (!in[i].data) {
            rc = MQ_ENOMEM;
            goto done;
        }
        if (!vad && in[i].type == MQ_ONNX_IO_F32)
            for (int64_t k = 0; k < n; k++)
                ((float *)in[i].data)[k] = rnd(&seed);
        else if (!vad)
            for (int64_t k = 0; k < n; k++)
                ((int64_t *)in[i].data)[k] = (int64_t)((rnd(&seed) + 1.0f) * 0.5f * (float)int_range) % int_range;
    }
    FILE *man = NULL;
    char path[4096];
    snprintf(path, sizeof(path), "%s/manifest.txt", argv[2]);
    if (!(man = fopen(path, "w"))) {
        rc = mq_error(MQ_EIO, "cannot write '%s'", path);
        goto done;
    }
    fprintf(man, "task %s\nbound %s\n", g->task->name, g->bound_desc);
    for (int k = 0; k < cases && rc == MQ_OK; k++) {
        if (images && n_in == 1 && in[0].dims[2] == img_h && in[0].dims[3] == img_w) {
            size_t per = (size_t)(3 * img_h * img_w);
            for (int64_t b = 0; b < batch; b++)
                memcpy((float *)in[0].data + b * (int64_t)per, images + ((k * batch + b) % n_images) * (int64_t)per,
                       per * sizeof(float));
        }
        if (vad) { /* input = 64 samples of context + 512 new; state from the last step */
            float *a = in[0].data;
            memmove(a, a + 512, 64 * sizeof(float));
            memcpy(a + 64, audio + (int64_t)k * 512, 512 * sizeof(float));
        }
        for (int i = 0; i < n_in && rc == MQ_OK; i++) {
            snprintf(path, sizeof(path), "%s/case%d.in.%s.npy", argv[2], k, in[i].name);
            rc = write_npy(path, &in[i]);
        }
        if (rc < 0 || (rc = mq_onnx_exec_run(x, in, n_in, out, g->n_outputs)) < 0)
            break;
        for (int o = 0; o < g->n_outputs && rc == MQ_OK; o++) {
            snprintf(path, sizeof(path), "%s/case%d.out.%d.npy", argv[2], k, o);
            rc = write_npy(path, &out[o]);
            if (vad && out[o].n_dims == 3) /* the next state */
                memcpy(in[1].data, out[o].data, 256 * sizeof(float));
        }
        mq_onnx_io_release(out, g->n_outputs);
        fprintf(man, "case %d\n", k);
    }
    fclose(man);
    for (int i = 0; i < n_in; i++)
        free(in[i].data);
    free(audio);
    free(images);
done:
    mq_onnx_exec_free(x);
    be_close(be);
    mq_plan_free(plan);
    mq_model_free(m);
    mq_input_shapes_release(&sh);
    return rc < 0 ? 1 : 0;
}
