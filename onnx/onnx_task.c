/* onnx/onnx_task.c - ONNX models' tasks (onnx/onnx_task.h): recognizing them, their
 * inputs, their evaluation data (WAV, PGM and manifests, every size checked) and their
 * quality against the f32 plan. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/file.h"
#include "core/log.h"
#include "core/status.h"
#include "onnx/onnx_inputs.h"
#include "onnx/onnx_task.h"

#define DATA_MAX_BYTES ((size_t)256 << 20) /* evaluation files beyond this are refused */
#define IMG_MAX_SIDE 8192
#define MAX_SAMPLES 100000
#define OCR_BATCH 8

/* How an output of a generic model is compared with full precision: by the node that
 * makes it. Distributions (Softmax, LogSoftmax along their axis; Sigmoid, each value a
 * Bernoulli) by KL divergence, everything else by relative mean squared error. */
enum gen_kind { GEN_RAW, GEN_SOFTMAX, GEN_LOGSOFTMAX, GEN_SIGMOID };

/* One output of one sample in the flat outputs: values [off, off + n), distributions of C
 * values inner apart, outer x inner of them (GEN_RAW, GEN_SIGMOID: C = 1, inner = n). */
struct gen_out {
    int64_t off, n, outer, C, inner;
    enum gen_kind kind;
};

struct onnx_quality {
    const struct mq_model *m;
    const struct ox_graph *g;
    const struct onnx_task *task;
    struct be_backend *be;
    int64_t max_samples;
    char path[4096];
    /* silero-vad */
    float *audio;
    int64_t n_audio;
    uint8_t *frame_speech; /* [n_frames] labels */
    int64_t n_frames;
    /* ppocr: preprocessed images [n_images][3 * H * W] and labels */
    int n_images;
    int64_t img_h, img_w;
    float *images;
    char **texts;
    int *angles;
    char **chars; /* ppocr-rec: the CTC alphabet, [0] = blank */
    int n_chars;
    /* generic: the samples, and where each (sample, output) lies in the flat outputs */
    bool generic;
    struct ox_samples samples;
    struct gen_out *outs; /* [n_samples * n_outputs] */
    /* outputs of the f32 plan */
    int64_t n_items, n_classes;
    float *ref;
    double ref_metric;
    double ref_seconds;
};

/* ---- files ------------------------------------------------------------------------------- */

static int read_all(const char *path, uint8_t **out, size_t *len)
{
    return mq_file_read(path, NULL, DATA_MAX_BYTES, (char **)out, len);
}

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* 16-bit PCM, mono, 16 kHz WAV -> floats in [-1, 1). */
static int read_wav(const char *path, float **out, int64_t *n_out)
{
    uint8_t *b;
    size_t len;
    int rc = read_all(path, &b, &len);
    if (rc < 0)
        return rc;
    const uint8_t *fmt = NULL, *data = NULL;
    size_t data_len = 0;
    if (len < 12 || memcmp(b, "RIFF", 4) || memcmp(b + 8, "WAVE", 4)) {
        rc = mq_error(MQ_EFORMAT, "'%s' is not a RIFF/WAVE file", path);
        goto done;
    }
    for (size_t off = 12; off + 8 <= len;) {
        uint32_t sz = le32(b + off + 4);
        if (sz > len - off - 8) {
            rc = mq_error(MQ_EFORMAT, "'%s': chunk at byte %zu runs past the end", path, off);
            goto done;
        }
        if (!memcmp(b + off, "fmt ", 4) && sz >= 16)
            fmt = b + off + 8;
        if (!memcmp(b + off, "data", 4)) {
            data = b + off + 8;
            data_len = sz;
        }
        off += 8 + (size_t)sz + (sz & 1);
    }
    if (!fmt || !data) {
        rc = mq_error(MQ_EFORMAT, "'%s' has no fmt or data chunk", path);
        goto done;
    }
    if (le16(fmt) != 1 || le16(fmt + 2) != 1 || le32(fmt + 4) != 16000 || le16(fmt + 14) != 16) {
        rc = mq_error(MQ_EUNSUPPORTED, "'%s': want 16-bit PCM, mono, 16000 Hz (format %u, %u channels, %u Hz, %u bits)",
                      path, le16(fmt), le16(fmt + 2), le32(fmt + 4), le16(fmt + 14));
        goto done;
    }
    int64_t n = (int64_t)(data_len / 2);
    float *a = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!a) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %" PRId64 " samples", n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        a[i] = (float)(int16_t)le16(data + 2 * i) / 32768.0f;
    *out = a;
    *n_out = n;
done:
    free(b);
    return rc;
}

/* Binary PGM (P5, maxval <= 255) -> bytes. */
static int read_pgm(const char *path, uint8_t **pix, int64_t *w, int64_t *h)
{
    uint8_t *b;
    size_t len;
    int rc = read_all(path, &b, &len);
    if (rc < 0)
        return rc;
    size_t p = 2;
    int64_t v[3];
    if (len < 2 || b[0] != 'P' || b[1] != '5') {
        rc = mq_error(MQ_EFORMAT, "'%s' is not a binary PGM (P5) file", path);
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        for (;;) { /* whitespace and comments */
            while (p < len && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r'))
                p++;
            if (p < len && b[p] == '#') {
                while (p < len && b[p] != '\n')
                    p++;
                continue;
            }
            break;
        }
        v[k] = 0;
        size_t start = p;
        while (p < len && b[p] >= '0' && b[p] <= '9' && p - start < 6)
            v[k] = v[k] * 10 + (b[p++] - '0');
        if (p == start) {
            rc = mq_error(MQ_EFORMAT, "'%s': malformed PGM header", path);
            goto done;
        }
    }
    if (p >= len || v[0] < 1 || v[1] < 1 || v[0] > IMG_MAX_SIDE || v[1] > IMG_MAX_SIDE || v[2] < 1 || v[2] > 255) {
        rc = mq_error(MQ_EFORMAT, "'%s': PGM of %" PRId64 " x %" PRId64 ", maxval %" PRId64 " (want 1..%d, 8-bit)", path,
                      v[0], v[1], v[2], IMG_MAX_SIDE);
        goto done;
    }
    p++; /* the single whitespace after maxval */
    if ((uint64_t)(len - p) < (uint64_t)(v[0] * v[1])) {
        rc = mq_error(MQ_EFORMAT, "'%s': %zu bytes of pixels, %" PRId64 " x %" PRId64 " wanted", path, len - p, v[0], v[1]);
        goto done;
    }
    *pix = malloc((size_t)(v[0] * v[1]));
    if (!*pix) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate an image");
        goto done;
    }
    for (int64_t i = 0; i < v[0] * v[1]; i++)
        (*pix)[i] = (uint8_t)(b[p + (size_t)i] * 255 / v[2]);
    *w = v[0];
    *h = v[1];
done:
    free(b);
    return rc;
}

/* A manifest's lines: fields split at tabs (or the first blank for 'key value' lines). */
struct manifest {
    uint8_t *text;
    char **lines;
    int n_lines;
    char dir[4096];
};

static void manifest_free(struct manifest *mf)
{
    free(mf->text);
    free(mf->lines);
}

static int manifest_read(const char *path, struct manifest *mf)
{
    memset(mf, 0, sizeof(*mf));
    size_t len;
    int rc = read_all(path, &mf->text, &len);
    if (rc < 0)
        return rc;
    if (memchr(mf->text, 0, len)) {
        manifest_free(mf);
        return mq_error(MQ_EFORMAT, "'%s' contains a NUL byte: not a manifest", path);
    }
    snprintf(mf->dir, sizeof(mf->dir), "%s", path);
    char *slash = strrchr(mf->dir, '/');
    if (slash)
        slash[1] = '\0';
    else
        mf->dir[0] = '\0';
    int cap = 0;
    char *s = (char *)mf->text;
    while (*s) {
        char *e = strchr(s, '\n');
        if (e)
            *e = '\0';
        size_t l = strlen(s);
        if (l && s[l - 1] == '\r')
            s[l - 1] = '\0';
        if (s[0] && s[0] != '#') {
            if (mf->n_lines == cap) {
                cap = cap ? cap * 2 : 64;
                char **nl = realloc(mf->lines, (size_t)cap * sizeof(*nl));
                if (!nl) {
                    manifest_free(mf);
                    return mq_error(MQ_ENOMEM, "cannot read '%s'", path);
                }
                mf->lines = nl;
            }
            mf->lines[mf->n_lines++] = s;
        }
        if (!e)
            break;
        s = e + 1;
    }
    if (mf->n_lines == 0) {
        manifest_free(mf);
        return mq_error(MQ_EFORMAT, "'%s' lists no samples", path);
    }
    return MQ_OK;
}

static int manifest_file(const struct manifest *mf, const char *name, char *buf, size_t size)
{
    if (strstr(name, ".."))
        return mq_error(MQ_EFORMAT, "manifest names '%s': '..' is not allowed", name);
    int n = name[0] == '/' ? snprintf(buf, size, "%s", name) : snprintf(buf, size, "%s%s", mf->dir, name);
    return n > 0 && (size_t)n < size ? MQ_OK : mq_error(MQ_EINVAL, "path too long: '%s'", name);
}

/* ---- matching and inputs ------------------------------------------------------------------ */

static bool has_input(const struct mq_onnx_file *f, const char *name, int32_t elem)
{
    for (int i = 0; i < f->graph->n_inputs; i++)
        if (strcmp(f->graph->inputs[i].name, name) == 0 && f->graph->inputs[i].elem == elem)
            return true;
    return false;
}

static bool match_vad(const struct mq_onnx_file *f)
{
    return has_input(f, "input", MQ_ONNX_FLOAT) && has_input(f, "state", MQ_ONNX_FLOAT) &&
           has_input(f, "sr", MQ_ONNX_INT64) && f->graph->n_outputs == 2;
}

static bool match_rec(const struct mq_onnx_file *f)
{
    const struct mq_onnx_graph *g = f->graph;
    return mq_onnx_meta_get(f, "character") && g->n_inputs == 1 && g->inputs[0].n_dims == 4 &&
           g->inputs[0].dims[3] < 0 && g->n_outputs == 1 && g->outputs[0].n_dims == 3 && g->outputs[0].dims[2] > 2;
}

static bool match_cls(const struct mq_onnx_file *f)
{
    const struct mq_onnx_graph *g = f->graph;
    /* PaddleOCR's export: x [?, 3, ?, ?] (any line size) -> [?, 2] */
    return !mq_onnx_meta_get(f, "character") && g->n_inputs == 1 && g->inputs[0].n_dims == 4 &&
           g->inputs[0].dims[1] == 3 && g->inputs[0].dims[2] < 0 && g->inputs[0].dims[3] < 0 &&
           strcmp(g->inputs[0].name, "x") == 0 && g->n_outputs == 1 && g->outputs[0].n_dims == 2 &&
           g->outputs[0].dims[1] == 2;
}

/* One line: which dimension is dynamic, and the --shapes that fixes it, with the file's
 * sizes and <dim_param> (or <?>) where the user must choose. */
static int dynamic_error(const struct mq_onnx_value_info *vi, int d)
{
    char hint[256] = "";
    size_t len = 0;
    for (int k = 0; k < vi->n_dims && len < sizeof(hint); k++) {
        const char *sep = k ? "x" : "";
        if (k == 0 && vi->dims[k] < 0)
            len += (size_t)snprintf(hint + len, sizeof(hint) - len, "1");
        else if (vi->dims[k] >= 0)
            len += (size_t)snprintf(hint + len, sizeof(hint) - len, "%s%" PRId64, sep, vi->dims[k]);
        else
            len += (size_t)snprintf(hint + len, sizeof(hint) - len, "%s<%.24s>", sep,
                                    vi->dim_params[k] ? vi->dim_params[k] : "?");
    }
    return mq_error(MQ_EUNSUPPORTED, "input '%s' has a dynamic dimension %d ('%.40s'): give its size with --shapes "
                    "'%s:%s'", vi->name, d, vi->dim_params[d] ? vi->dim_params[d] : "?", vi->name, hint);
}

static int generic_dims(const struct ox_graph *g, const struct ox_input *in, int64_t batch, int *nd, int64_t *dims)
{
    const struct mq_onnx_value_info *vi = in->vi;
    (void)g;
    if (!vi->has_shape)
        return mq_error(MQ_EUNSUPPORTED, "input '%s' has no shape in the file: mixq cannot make one inference",
                        vi->name);
    *nd = vi->n_dims;
    for (int d = 0; d < vi->n_dims; d++) {
        dims[d] = vi->dims[d];
        if (dims[d] < 0 && d == 0)
            dims[d] = batch;
        else if (dims[d] < 0)
            return dynamic_error(vi, d);
    }
    if (vi->n_dims > 0 && vi->dims[0] >= 0 && batch != 1 && vi->dims[0] != batch)
        return mq_error(MQ_EUNSUPPORTED, "input '%s' has a fixed batch of %" PRId64, vi->name, vi->dims[0]);
    return MQ_OK;
}

#define VAD_FRAME 512
#define VAD_CONTEXT 64

static int vad_dims(const struct ox_graph *g, const struct ox_input *in, int64_t batch, int *nd, int64_t *dims)
{
    (void)g;
    if (strcmp(in->vi->name, "input") == 0) {
        *nd = 2;
        dims[0] = batch;
        dims[1] = in->vi->n_dims == 2 && in->vi->dims[1] > 0 ? in->vi->dims[1] : VAD_CONTEXT + VAD_FRAME;
    } else if (strcmp(in->vi->name, "state") == 0) {
        *nd = 3;
        dims[0] = 2;
        dims[1] = batch;
        dims[2] = in->vi->n_dims == 3 && in->vi->dims[2] > 0 ? in->vi->dims[2] : 128;
    } else {
        return generic_dims(g, in, batch, nd, dims);
    }
    return MQ_OK;
}

#define REC_H 48
#define REC_W 320
#define CLS_W 192

static int rec_dims(const struct ox_graph *g, const struct ox_input *in, int64_t batch, int *nd, int64_t *dims)
{
    (void)g;
    *nd = 4;
    dims[0] = batch;
    dims[1] = 3;
    dims[2] = REC_H;
    dims[3] = REC_W;
    (void)in;
    return MQ_OK;
}

static int cls_dims(const struct ox_graph *g, const struct ox_input *in, int64_t batch, int *nd, int64_t *dims)
{
    (void)g;
    *nd = 4;
    dims[0] = batch;
    dims[1] = 3;
    dims[2] = REC_H;
    dims[3] = CLS_W;
    (void)in;
    return MQ_OK;
}

bool onnx_task_dims_known(const struct ox_graph *g, const struct ox_input *in)
{
    const struct mq_onnx_value_info *vi = in->vi;
    if (in->bound)
        return false;
    if (in->shape_nd > 0)
        return true;
    if (g->task->load) /* the known tasks say every size */
        return true;
    if (!vi->has_shape)
        return false;
    for (int d = 1; d < vi->n_dims; d++)
        if (vi->dims[d] < 0)
            return false;
    return true;
}

int onnx_task_input_dims(const struct ox_graph *g, const struct ox_input *in, int64_t batch, int *nd, int64_t *dims)
{
    const struct mq_onnx_value_info *vi = in->vi;
    if (in->shape_nd <= 0)
        return g->task->input_dims(g, in, batch, nd, dims);
    *nd = in->shape_nd;
    memcpy(dims, in->shape, (size_t)in->shape_nd * sizeof(*dims));
    if (batch == 1)
        return MQ_OK;
    if (vi->has_shape && vi->n_dims > 0 && vi->dims[0] >= 0)
        return mq_error(MQ_EUNSUPPORTED, "input '%s' has a fixed batch of %" PRId64, vi->name, vi->dims[0]);
    if (dims[0] > OX_MAX_ELEMS / batch)
        return mq_error(MQ_EINVAL, "input '%s': a batch of %" PRId64 " x %" PRId64 " is too large", vi->name, batch,
                        dims[0]);
    dims[0] *= batch;
    return MQ_OK;
}

int onnx_task_inputs(const struct ox_graph *g, int64_t batch, struct mq_onnx_io *io)
{
    int n = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const struct ox_input *in = &g->inputs[i];
        if (in->bound)
            continue;
        struct mq_onnx_io *o = &io[n++];
        memset(o, 0, sizeof(*o));
        o->name = in->vi->name;
        bool fl = in->vi->elem == MQ_ONNX_FLOAT || in->vi->elem == MQ_ONNX_FLOAT16 || in->vi->elem == MQ_ONNX_DOUBLE ||
                  in->vi->elem == MQ_ONNX_BFLOAT16;
        o->type = fl ? MQ_ONNX_IO_F32 : MQ_ONNX_IO_I64;
        int rc = onnx_task_input_dims(g, in, batch, &o->n_dims, o->dims);
        if (rc < 0)
            return rc;
    }
    return n;
}

/* ---- metrics ------------------------------------------------------------------------------ */

static int64_t argmax(const float *p, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (p[i] > p[best])
            best = i;
    return best;
}

/* KL(ref || q) of one item: C classes, or a Bernoulli when C == 1. */
static double kl_item(const float *ref, const float *q, int64_t C)
{
    const double eps = 1e-10;
    if (C == 1) {
        double p = ref[0], r = q[0];
        p = p < eps ? eps : p > 1 - eps ? 1 - eps : p;
        r = r < eps ? eps : r > 1 - eps ? 1 - eps : r;
        return p * log(p / r) + (1 - p) * log((1 - p) / (1 - r));
    }
    double kl = 0.0;
    for (int64_t i = 0; i < C; i++)
        if (ref[i] > 0.0f)
            kl += ref[i] * log((double)ref[i] / fmax((double)q[i], eps));
    return kl > 0.0 ? kl : 0.0;
}

/* ---- silero-vad ---------------------------------------------------------------------------- */

static int vad_load(struct onnx_quality *q, const char *path)
{
    struct manifest mf;
    int rc = manifest_read(path, &mf);
    if (rc < 0)
        return rc;
    int64_t (*seg)[2] = NULL;
    int n_seg = 0;
    char file[4096];
    bool have_audio = false;
    seg = calloc((size_t)mf.n_lines, sizeof(*seg));
    if (!seg) {
        rc = mq_error(MQ_ENOMEM, "cannot read '%s'", path);
        goto done;
    }
    for (int i = 0; i < mf.n_lines; i++) {
        char *l = mf.lines[i];
        long long a, b;
        char tail;
        if (!strncmp(l, "audio ", 6)) {
            if (have_audio || (rc = manifest_file(&mf, l + 6, file, sizeof(file))) < 0 ||
                (rc = read_wav(file, &q->audio, &q->n_audio)) < 0) {
                if (have_audio)
                    rc = mq_error(MQ_EFORMAT, "'%s' names two audio files", path);
                goto done;
            }
            have_audio = true;
        } else if (sscanf(l, "speech %lld %lld %c", &a, &b, &tail) == 2 && a >= 0 && b > a && b <= (1LL << 40)) {
            seg[n_seg][0] = a;
            seg[n_seg++][1] = b;
        } else if (strncmp(l, "mixq_data ", 10) != 0) {
            rc = mq_error(MQ_EFORMAT, "'%s': line '%.40s' is not 'audio FILE' or 'speech START END'", path, l);
            goto done;
        }
    }
    if (!have_audio) {
        rc = mq_error(MQ_EFORMAT, "'%s' names no audio file", path);
        goto done;
    }
    q->n_frames = q->n_audio / VAD_FRAME;
    if (q->max_samples && q->n_frames > q->max_samples)
        q->n_frames = q->max_samples;
    if (q->n_frames < 1) {
        rc = mq_error(MQ_EFORMAT, "'%s' holds less than one frame of audio", path);
        goto done;
    }
    q->frame_speech = calloc((size_t)q->n_frames, 1);
    if (!q->frame_speech) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate labels");
        goto done;
    }
    /* a frame is speech when at least half of it lies in labelled speech */
    for (int64_t f = 0; f < q->n_frames; f++) {
        int64_t s0 = f * VAD_FRAME, s1 = s0 + VAD_FRAME, in = 0;
        for (int k = 0; k < n_seg; k++) {
            int64_t a = seg[k][0] > s0 ? seg[k][0] : s0, b = seg[k][1] < s1 ? seg[k][1] : s1;
            in += b > a ? b - a : 0;
        }
        q->frame_speech[f] = 2 * in >= VAD_FRAME;
    }
    q->n_items = q->n_frames;
    q->n_classes = 1;
done:
    free(seg);
    manifest_free(&mf);
    return rc;
}

static int vad_infer(struct onnx_quality *q, struct mq_onnx_exec *x, float **probs)
{
    float *p = malloc((size_t)q->n_frames * sizeof(float));
    float in[VAD_CONTEXT + VAD_FRAME], state[2 * 128];
    if (!p)
        return mq_error(MQ_ENOMEM, "cannot allocate %" PRId64 " probabilities", q->n_frames);
    memset(in, 0, sizeof(in));
    memset(state, 0, sizeof(state));
    int rc = MQ_OK;
    for (int64_t f = 0; f < q->n_frames && rc == MQ_OK; f++) {
        memmove(in, in + VAD_FRAME, VAD_CONTEXT * sizeof(float)); /* the last 64 samples: context */
        memcpy(in + VAD_CONTEXT, q->audio + f * VAD_FRAME, VAD_FRAME * sizeof(float));
        struct mq_onnx_io io[2] = {
            {.name = "input", .type = MQ_ONNX_IO_F32, .n_dims = 2, .dims = {1, VAD_CONTEXT + VAD_FRAME}, .data = in},
            {.name = "state", .type = MQ_ONNX_IO_F32, .n_dims = 3, .dims = {2, 1, 128}, .data = state},
        };
        struct mq_onnx_io out[2];
        if ((rc = mq_onnx_exec_run(x, io, 2, out, 2)) < 0)
            break;
        /* outputs: probability [1, 1] and the next state [2, 1, 128], in either order */
        for (int k = 0; k < 2; k++) {
            int64_t n = 1;
            for (int d = 0; d < out[k].n_dims; d++)
                n *= out[k].dims[d];
            if (out[k].type != MQ_ONNX_IO_F32 || (n != 1 && n != 256))
                rc = mq_error(MQ_EFORMAT, "silero-vad output '%s' has %" PRId64 " values (want 1 or 256)", out[k].name, n);
            else if (n == 1)
                p[f] = ((float *)out[k].data)[0];
            else
                memcpy(state, out[k].data, sizeof(state));
        }
        mq_onnx_io_release(out, 2);
    }
    if (rc < 0) {
        free(p);
        return rc;
    }
    *probs = p;
    return MQ_OK;
}

static double vad_f1(const struct onnx_quality *q, const float *p)
{
    int64_t tp = 0, fp = 0, fn = 0;
    for (int64_t f = 0; f < q->n_frames; f++) {
        bool pred = p[f] >= 0.5f, truth = q->frame_speech[f];
        tp += pred && truth;
        fp += pred && !truth;
        fn += !pred && truth;
    }
    return tp + fp + fn ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 1.0;
}

/* ---- ppocr: images ------------------------------------------------------------------------- */

/* Gray image -> [3][H][W] normalized (v/255 - 0.5)/0.5, resized to height H keeping the
 * aspect (bilinear, half-pixel), at most W wide, zero-padded on the right (as PaddleOCR's
 * and RapidOCR's preprocessing). */
static void prep_image(const uint8_t *pix, int64_t w, int64_t h, int64_t H, int64_t W, float *out)
{
    int64_t rw = (int64_t)ceil((double)H * (double)w / (double)h);
    rw = rw < 1 ? 1 : rw > W ? W : rw;
    memset(out, 0, (size_t)(3 * H * W) * sizeof(float));
    double sy = (double)h / (double)H, sx = (double)w / (double)rw;
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < rw; x++) {
            double fy = ((double)y + 0.5) * sy - 0.5, fx = ((double)x + 0.5) * sx - 0.5;
            fy = fy < 0 ? 0 : fy;
            fx = fx < 0 ? 0 : fx;
            int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
            y0 = y0 > h - 1 ? h - 1 : y0;
            x0 = x0 > w - 1 ? w - 1 : x0;
            int64_t y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
            double ay = fy - (double)y0, ax = fx - (double)x0;
            ay = ay > 1 ? 1 : ay;
            ax = ax > 1 ? 1 : ax;
            double v = (pix[y0 * w + x0] * (1 - ax) + pix[y0 * w + x1] * ax) * (1 - ay) +
                       (pix[y1 * w + x0] * (1 - ax) + pix[y1 * w + x1] * ax) * ay;
            float nv = (float)((v / 255.0 - 0.5) / 0.5);
            for (int c = 0; c < 3; c++)
                out[(c * H + y) * W + x] = nv;
        }
}

static int ocr_load(struct onnx_quality *q, const char *path, bool rec)
{
    struct manifest mf;
    int rc = manifest_read(path, &mf);
    if (rc < 0)
        return rc;
    int n = mf.n_lines;
    if (q->max_samples && n > q->max_samples)
        n = (int)q->max_samples;
    if (n > MAX_SAMPLES) {
        manifest_free(&mf);
        return mq_error(MQ_EUNSUPPORTED, "'%s' lists %d images (at most %d)", path, n, MAX_SAMPLES);
    }
    q->img_h = REC_H;
    q->img_w = rec ? REC_W : CLS_W;
    size_t per = (size_t)(3 * q->img_h * q->img_w);
    q->images = malloc((size_t)n * per * sizeof(float));
    q->texts = calloc((size_t)n, sizeof(char *));
    q->angles = calloc((size_t)n, sizeof(int));
    if (!q->images || !q->texts || !q->angles) {
        manifest_free(&mf);
        return mq_error(MQ_ENOMEM, "cannot allocate %d images", n);
    }
    for (int i = 0; i < n; i++) {
        char *tab = strchr(mf.lines[i], '\t'), file[4096];
        if (!tab) {
            rc = mq_error(MQ_EFORMAT, "'%s': line %d is not 'FILE<tab>%s'", path, i + 1, rec ? "TEXT" : "ANGLE");
            break;
        }
        *tab = '\0';
        const char *label = tab + 1;
        if (rec) {
            if (!(q->texts[i] = strdup(label))) {
                rc = mq_error(MQ_ENOMEM, "cannot allocate a label");
                break;
            }
        } else if (strcmp(label, "0") == 0 || strcmp(label, "180") == 0) {
            q->angles[i] = label[0] == '1';
        } else {
            rc = mq_error(MQ_EFORMAT, "'%s': line %d: angle '%s' (want 0 or 180)", path, i + 1, label);
            break;
        }
        uint8_t *pix = NULL;
        int64_t w = 0, h = 0;
        if ((rc = manifest_file(&mf, mf.lines[i], file, sizeof(file))) < 0 || (rc = read_pgm(file, &pix, &w, &h)) < 0)
            break;
        prep_image(pix, w, h, q->img_h, q->img_w, q->images + (size_t)i * per);
        free(pix);
        q->n_images++;
    }
    manifest_free(&mf);
    return rc;
}

static int rec_alphabet(struct onnx_quality *q)
{
    const char *dict = mq_onnx_meta_get(q->g->file, "character");
    int64_t C = q->g->output_vi[0]->dims[2];
    int n = 1;
    for (const char *s = dict; *s; s++)
        n += *s == '\n';
    if (C != n + 2 && C != n + 1)
        return mq_error(MQ_EFORMAT, "'%s': the model's metadata lists %d characters, its output has %" PRId64 " classes",
                        q->m->path, n, C);
    q->chars = calloc((size_t)C, sizeof(char *));
    if (!q->chars)
        return mq_error(MQ_ENOMEM, "cannot allocate the alphabet");
    q->n_chars = (int)C;
    const char *s = dict;
    for (int i = 1; i <= n; i++) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        q->chars[i] = strndup(s, len);
        if (!q->chars[i])
            return mq_error(MQ_ENOMEM, "cannot allocate the alphabet");
        s = e ? e + 1 : s + len;
    }
    q->chars[0] = strdup("");
    if (C == n + 2)
        q->chars[n + 1] = strdup(" ");
    for (int i = 0; i < C; i++)
        if (!q->chars[i])
            return mq_error(MQ_ENOMEM, "cannot allocate the alphabet");
    return MQ_OK;
}

static int rec_load(struct onnx_quality *q, const char *path)
{
    int rc = rec_alphabet(q);
    return rc < 0 ? rc : ocr_load(q, path, true);
}

static int cls_load(struct onnx_quality *q, const char *path) { return ocr_load(q, path, false); }

/* Every image in batches; writes each image's output rows (T steps of C, or C). */
static int ocr_infer(struct onnx_quality *q, struct mq_onnx_exec *x, float **probs)
{
    size_t per = (size_t)(3 * q->img_h * q->img_w);
    float *p = NULL;
    int rc = MQ_OK;
    int64_t per_img = 0, C = 0;
    for (int i0 = 0; i0 < q->n_images; i0 += OCR_BATCH) {
        int b = q->n_images - i0 < OCR_BATCH ? q->n_images - i0 : OCR_BATCH;
        struct mq_onnx_io io = {.name = q->g->inputs[0].vi->name, .type = MQ_ONNX_IO_F32, .n_dims = 4,
                                .dims = {b, 3, q->img_h, q->img_w}, .data = q->images + (size_t)i0 * per};
        struct mq_onnx_io out;
        if ((rc = mq_onnx_exec_run(x, &io, 1, &out, 1)) < 0)
            break;
        int64_t n = 1;
        for (int d = 0; d < out.n_dims; d++)
            n *= out.dims[d];
        if (out.type != MQ_ONNX_IO_F32 || out.n_dims < 2 || out.dims[0] != b || (p && n / b != per_img)) {
            rc = mq_error(MQ_EFORMAT, "'%s': output of an unexpected shape", q->m->path);
            mq_onnx_io_release(&out, 1);
            break;
        }
        if (!p) {
            per_img = n / b;
            C = out.dims[out.n_dims - 1];
            p = malloc((size_t)(per_img * q->n_images) * sizeof(float));
            if (!p) {
                rc = mq_error(MQ_ENOMEM, "cannot allocate outputs");
                mq_onnx_io_release(&out, 1);
                break;
            }
        }
        memcpy(p + (size_t)(i0 * per_img), out.data, (size_t)n * sizeof(float));
        mq_onnx_io_release(&out, 1);
    }
    if (rc < 0) {
        free(p);
        return rc;
    }
    q->n_classes = C;
    q->n_items = C ? per_img / C * q->n_images : 0;
    *probs = p;
    return MQ_OK;
}

/* Unicode code points of UTF-8 text (invalid bytes count as one each). */
static int utf8_points(const char *s, uint32_t *out, int max)
{
    int n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && n < max) {
        uint32_t c = *p++;
        int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        c &= extra == 3 ? 0x07 : extra == 2 ? 0x0F : extra == 1 ? 0x1F : 0xFF;
        for (int k = 0; k < extra && (*p & 0xC0) == 0x80; k++)
            c = c << 6 | (*p++ & 0x3F);
        out[n++] = c;
    }
    return n;
}

static int64_t edit_distance(const uint32_t *a, int na, const uint32_t *b, int nb)
{
    int64_t *row = malloc((size_t)(nb + 1) * sizeof(int64_t));
    if (!row)
        return na > nb ? na : nb;
    for (int j = 0; j <= nb; j++)
        row[j] = j;
    for (int i = 1; i <= na; i++) {
        int64_t diag = row[0];
        row[0] = i;
        for (int j = 1; j <= nb; j++) {
            int64_t up = row[j];
            int64_t best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    int64_t d = row[nb];
    free(row);
    return d;
}

#define MAX_LINE 1024

static double rec_cer(const struct onnx_quality *q, const float *p)
{
    int64_t T = q->n_items / (q->n_images ? q->n_images : 1), edits = 0, total = 0;
    uint32_t got[MAX_LINE], want[MAX_LINE];
    char text[4 * MAX_LINE + 8];
    for (int i = 0; i < q->n_images; i++) {
        size_t len = 0;
        int64_t prev = -1;
        for (int64_t t = 0; t < T; t++) {
            int64_t k = argmax(p + (i * T + t) * q->n_classes, q->n_classes);
            if (k != prev && k > 0 && k < q->n_chars) {
                size_t cl = strlen(q->chars[k]);
                if (len + cl < sizeof(text)) {
                    memcpy(text + len, q->chars[k], cl);
                    len += cl;
                }
            }
            prev = k;
        }
        text[len] = '\0';
        int ng = utf8_points(text, got, MAX_LINE), nw = utf8_points(q->texts[i], want, MAX_LINE);
        edits += edit_distance(got, ng, want, nw);
        total += nw;
        if (mq_log_enabled(MQ_LOG_DEBUG))
            mq_debug("line %d: '%s' read as '%s'", i, q->texts[i], text);
    }
    return total ? (double)edits / (double)total : 0.0;
}

static double cls_accuracy(const struct onnx_quality *q, const float *p)
{
    int64_t ok = 0;
    for (int i = 0; i < q->n_images; i++)
        ok += argmax(p + i * q->n_classes, q->n_classes) == q->angles[i];
    return q->n_images ? (double)ok / q->n_images : 0.0;
}

/* ---- the task table -------------------------------------------------------------------------- */

static const struct onnx_task task_vad = {
    .name = "silero-vad",
    .summary = "voice activity detection, 16 kHz frames of 512 samples",
    .default_data = "examples/onnx/vad.txt",
    .bind_name = "sr",
    .bind_value = 16000,
    .match = match_vad,
    .input_dims = vad_dims,
    .load = vad_load,
    .infer = vad_infer,
    .metric = vad_f1,
    .metric_name = "f1",
    .higher_is_better = true,
};

static const struct onnx_task task_rec = {
    .name = "ppocr-rec",
    .summary = "text line recognition (CTC), lines 48 x 320",
    .default_data = "examples/onnx/ocr-rec.tsv",
    .match = match_rec,
    .input_dims = rec_dims,
    .load = rec_load,
    .infer = ocr_infer,
    .metric = rec_cer,
    .metric_name = "cer",
    .higher_is_better = false,
};

static const struct onnx_task task_cls = {
    .name = "ppocr-cls",
    .summary = "text direction classification (0 or 180 degrees), lines 48 x 192",
    .default_data = "examples/onnx/ocr-cls.tsv",
    .match = match_cls,
    .input_dims = cls_dims,
    .load = cls_load,
    .infer = ocr_infer,
    .metric = cls_accuracy,
    .metric_name = "accuracy",
    .higher_is_better = true,
};

/* ---- generic models: the user's arrays or seeded random inputs, every output -------------------
 */

/* How output o is compared: by the node that makes it (*axis: a softmax's axis attribute). */
static enum gen_kind gen_kind_of(const struct ox_graph *g, int o, int64_t *axis)
{
    int v = g->outputs[o];
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const struct ox_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_out; j++) {
            if (n->out[j] != v)
                continue;
            const char *op = ox_ops[n->op].name;
            if (!strcmp(op, "Sigmoid"))
                return GEN_SIGMOID;
            if (strcmp(op, "Softmax") && strcmp(op, "LogSoftmax"))
                return GEN_RAW;
            *axis = ox_attr_int(n, "axis", g->opset >= 13 ? -1 : 1);
            return op[0] == 'S' ? GEN_SOFTMAX : GEN_LOGSOFTMAX;
        }
    }
    return GEN_RAW; /* a graph input or a constant */
}

/* Where a softmax's distributions lie in an output of shape dims: before opset 13 the
 * input is flattened to 2-D at axis, from 13 on each distribution runs along axis. */
static void gen_layout(struct gen_out *e, enum gen_kind kind, int64_t axis, int64_t opset, int nd,
                       const int64_t *dims, int64_t n)
{
    e->kind = kind;
    e->n = n;
    e->outer = 1;
    e->C = 1;
    e->inner = n;
    if (kind != GEN_SOFTMAX && kind != GEN_LOGSOFTMAX)
        return;
    if (axis < 0)
        axis += nd;
    if (nd == 0 || axis < 0 || axis >= nd) {
        e->kind = GEN_RAW;
        return;
    }
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= dims[d];
    for (int d = (int)axis + 1; d < nd; d++)
        inner *= dims[d];
    e->outer = outer;
    e->C = opset < 13 ? dims[axis] * inner : dims[axis];
    e->inner = opset < 13 ? 1 : inner;
}

static int generic_load(struct onnx_quality *q, const char *path)
{
    int rc;
    if (path && *path) {
        if (!ox_inputs_is_arrays(path))
            return mq_error(
                MQ_EINVAL,
                "'%s': inputs of a model without a known task are a .npy or .npz file or a "
                "folder of them (--inputs)",
                path);
        rc = ox_inputs_load(q->g, path, q->max_samples, &q->samples);
    } else {
        rc = ox_inputs_random(q->g, q->max_samples, &q->samples);
    }
    if (rc < 0)
        return rc;
    q->generic = true;
    q->n_items = q->samples.n_samples;
    return MQ_OK;
}

/* Every sample through x; *outv: all outputs of all samples as floats, one after another.
 * The first run (the reference) lays them out in q->outs; later runs must match it. */
static int generic_infer(struct onnx_quality *q, struct mq_onnx_exec *x, float **outv)
{
    const struct ox_graph *g = q->g;
    const int no = g->n_outputs, ns = q->samples.n_samples, nio = q->samples.n_io;
    bool first = !q->outs;
    struct gen_out *lay = first ? calloc((size_t)ns * (size_t)no + 1, sizeof(*lay)) : q->outs;
    struct mq_onnx_io *out = calloc((size_t)no + 1, sizeof(*out));
    enum gen_kind *kind = calloc((size_t)no + 1, sizeof(*kind));
    int64_t *axis = calloc((size_t)no + 1, sizeof(*axis));
    float *buf = NULL;
    int64_t len = 0, cap = 0;
    int rc = MQ_OK;
    if (!lay || !out || !kind || !axis) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate the outputs of %d samples", ns);
        goto done;
    }
    for (int o = 0; o < no; o++)
        kind[o] = gen_kind_of(g, o, &axis[o]);
    for (int s = 0; s < ns && rc == MQ_OK; s++) {
        if ((rc = mq_onnx_exec_run(x, q->samples.io + (size_t)s * (size_t)nio, nio, out, no)) < 0)
            break;
        for (int o = 0; o < no && rc == MQ_OK; o++) {
            struct gen_out *e = &lay[(size_t)s * (size_t)no + (size_t)o];
            int64_t n = 1;
            for (int d = 0; d < out[o].n_dims; d++)
                n *= out[o].dims[d];
            if (first) {
                gen_layout(e, kind[o], axis[o], g->opset, out[o].n_dims, out[o].dims, n);
                e->off = len;
            } else if (e->off != len || e->n != n) {
                rc = mq_error(MQ_EINTERNAL, "'%s': output '%s' changed shape between plans",
                              q->m->path, out[o].name);
                break;
            }
            if (len + n > cap) {
                int64_t nc = (len + n) * 2 + 1024;
                float *nb = nc <= OX_MAX_ELEMS ? realloc(buf, (size_t)nc * sizeof(float)) : NULL;
                if (!nb) {
                    rc = mq_error(MQ_ENOMEM, "cannot hold %" PRId64 " output values", len + n);
                    break;
                }
                buf = nb;
                cap = nc;
            }
            for (int64_t i = 0; i < n; i++)
                buf[len + i] = out[o].type == MQ_ONNX_IO_F32
                                   ? ((const float *)out[o].data)[i]
                                   : (float)((const int64_t *)out[o].data)[i];
            len += n;
        }
        mq_onnx_io_release(out, no);
    }
done:
    if (rc == MQ_OK && first)
        q->outs = lay;
    else if (first)
        free(lay);
    free(out);
    free(kind);
    free(axis);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *outv = buf ? buf : calloc(1, sizeof(float));
    return *outv ? MQ_OK : mq_error(MQ_ENOMEM, "cannot allocate outputs");
}

/* Output e of plan y against the reference r: its loss (mean KL of its distributions, or
 * relative MSE), with its squared signal and error added to *sig and *err and its
 * distributions' top-1 agreement to *agree of *n_dist. tmp: 2 C floats. */
static double gen_output_loss(const struct gen_out *e, const float *r, const float *y, float *tmp,
                              double *sig, double *err, int64_t *agree, int64_t *n_dist)
{
    r += e->off;
    y += e->off;
    double ss = 0.0, se = 0.0;
    for (int64_t i = 0; i < e->n; i++) {
        double d = (double)y[i] - (double)r[i];
        ss += (double)r[i] * r[i];
        se += d * d;
    }
    *sig += ss;
    *err += se;
    if (e->kind == GEN_RAW)
        return ss > 0.0 ? se / ss : se / (double)(e->n ? e->n : 1);
    if (e->kind == GEN_SIGMOID) {
        double kl = 0.0;
        for (int64_t i = 0; i < e->n; i++) {
            kl += kl_item(&r[i], &y[i], 1);
            *agree += (r[i] >= 0.5f) == (y[i] >= 0.5f);
        }
        *n_dist += e->n;
        return e->n ? kl / (double)e->n : 0.0;
    }
    double kl = 0.0;
    int64_t nd = e->outer * e->inner;
    for (int64_t o = 0; o < e->outer; o++)
        for (int64_t in = 0; in < e->inner; in++) {
            const int64_t base = o * e->C * e->inner + in;
            float *tr = tmp, *ty = tmp + e->C;
            for (int64_t c = 0; c < e->C; c++) {
                tr[c] = r[base + c * e->inner];
                ty[c] = y[base + c * e->inner];
                if (e->kind == GEN_LOGSOFTMAX) {
                    tr[c] = expf(tr[c]);
                    ty[c] = expf(ty[c]);
                }
            }
            if (e->C > 1)
                kl += kl_item(tr, ty, e->C);
            *agree += argmax(tr, e->C) == argmax(ty, e->C);
        }
    *n_dist += nd;
    return nd ? kl / (double)nd : 0.0;
}

static int generic_eval(struct onnx_quality *q, const float *y, struct mq_quality *out)
{
    const int no = q->g->n_outputs, ns = q->samples.n_samples;
    int64_t maxC = 1;
    int n_kl = 0;
    for (int i = 0; i < ns * no; i++)
        maxC = q->outs[i].C > maxC ? q->outs[i].C : maxC;
    for (int o = 0; o < no && ns > 0; o++)
        n_kl += q->outs[o].kind != GEN_RAW;
    float *tmp = malloc((size_t)maxC * 2 * sizeof(float));
    if (!tmp)
        return mq_error(MQ_ENOMEM, "cannot allocate %" PRId64 " values", 2 * maxC);
    double sum = 0.0, sum2 = 0.0, sig = 0.0, err = 0.0;
    int64_t agree = 0, n_dist = 0;
    for (int s = 0; s < ns; s++) {
        double l = 0.0;
        for (int o = 0; o < no; o++)
            l += gen_output_loss(&q->outs[(size_t)s * (size_t)no + (size_t)o], q->ref, y, tmp, &sig,
                                 &err, &agree, &n_dist);
        l /= no ? no : 1;
        sum += l;
        sum2 += l * l;
    }
    free(tmp);
    double n = ns ? ns : 1;
    out->loss = sum / n;
    double var = ns > 1 ? (sum2 - sum * sum / n) / (n - 1) : 0.0;
    out->loss_stderr = var > 0 ? sqrt(var / n) : 0.0;
    out->metric = err > 0.0 ? 10.0 * log10(sig / err) : INFINITY;
    out->ref_metric = INFINITY;
    out->metric_name = "sqnr_db";
    out->higher_is_better = true;
    out->top1_agree = n_dist ? (double)agree / (double)n_dist : NAN;
    out->n_samples = ns;
    snprintf(out->note, sizeof(out->note), "%.60s; loss: KL of %d output%s, relative MSE of %d",
             q->samples.desc, n_kl, n_kl == 1 ? "" : "s", no - n_kl);
    return MQ_OK;
}

bool mq_onnx_synthetic_inputs(const struct mq_model *m, const char *data)
{
    const struct ox_graph *g = m->impl;
    return m->kind == MQ_MODEL_ONNX && !g->task->load && !ox_inputs_is_arrays(data);
}

int mq_onnx_check_data(const struct mq_model *m, const char *data)
{
    const struct ox_graph *g = m->impl;
    if (!data)
        return MQ_OK;
    if (!ox_inputs_is_arrays(data))
        return g->task->load
                   ? MQ_OK
                   : mq_error(MQ_EINVAL,
                              "'%s': inputs of a model without a known task are a .npy or .npz "
                              "file or a folder of them (--inputs)",
                              data);
    struct ox_samples s;
    int rc = ox_inputs_load(g, data, 0, &s);
    ox_samples_free(&s);
    return rc;
}

const char *onnx_loss_name(const struct mq_model *m, const struct mq_quality_config *cfg)
{
    const struct ox_graph *g = m->impl;
    if (g->task->load && !(cfg && ox_inputs_is_arrays(cfg->data)))
        return "kl";
    int n_kl = 0;
    for (int o = 0; o < g->n_outputs; o++) {
        int64_t axis;
        n_kl += gen_kind_of(g, o, &axis) != GEN_RAW;
    }
    return n_kl == g->n_outputs ? "kl" : n_kl == 0 ? "rel_mse" : "kl+rel_mse";
}

static const struct onnx_task task_generic = {
    .name = "generic",
    .summary = "no known task: inputs of static shape (or --shapes), batch in dimension 0",
    .input_dims = generic_dims,
};

const struct onnx_task *const onnx_tasks[] = {&task_vad, &task_rec, &task_cls, &task_generic, NULL};

const struct onnx_task *onnx_task_detect(const struct mq_onnx_file *f)
{
    for (int i = 0; onnx_tasks[i]; i++)
        if (!onnx_tasks[i]->match || onnx_tasks[i]->match(f))
            return onnx_tasks[i];
    return &task_generic;
}

int onnx_task_bound_value(const struct onnx_task *t, const char *input, int64_t *value)
{
    if (!t->bind_name || strcmp(t->bind_name, input) != 0)
        return MQ_ENOTFOUND;
    *value = t->bind_value;
    return MQ_OK;
}

/* ---- quality ---------------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int run_plan(struct onnx_quality *q, const struct mq_plan *p, float **probs)
{
    struct mq_onnx_exec *x;
    int rc = mq_onnx_exec_new(q->m, p, q->be, &x);
    if (rc < 0)
        return rc;
    rc = q->generic ? generic_infer(q, x, probs) : q->task->infer(q, x, probs);
    mq_onnx_exec_free(x);
    return rc;
}

void onnx_quality_free(void *p)
{
    struct onnx_quality *q = p;
    if (!q)
        return;
    free(q->audio);
    free(q->frame_speech);
    free(q->images);
    if (q->texts)
        for (int i = 0; i < q->n_images; i++)
            free(q->texts[i]);
    free(q->texts);
    free(q->angles);
    if (q->chars)
        for (int i = 0; i < q->n_chars; i++)
            free(q->chars[i]);
    free(q->chars);
    free(q->ref);
    ox_samples_free(&q->samples);
    free(q->outs);
    free(q);
}

/* The data path: the config's, or the task's default under the data folder. */
static void data_path(const struct onnx_task *t, const struct mq_quality_config *cfg, char *buf, size_t size)
{
    if (cfg && cfg->data) {
        snprintf(buf, size, "%s", cfg->data);
    } else if (!t->default_data) {
        buf[0] = 0; /* generic: random inputs */
    } else {
        const char *dir = getenv("MIXQ_DATADIR");
        snprintf(buf, size, "%s/%s", dir && *dir ? dir : MIXQ_DATADIR, t->default_data);
    }
}

int onnx_task_images(const struct mq_model *m, const char *data, int max, float **out, int *n, int64_t *h,
                     int64_t *w)
{
    *out = NULL;
    const struct ox_graph *g = m->impl;
    const struct onnx_task *t = g->task;
    if (t->infer != ocr_infer)
        return mq_error(MQ_EUNSUPPORTED, "'%s': task '%s' has no images", m->path, t->name);
    struct onnx_quality *q = calloc(1, sizeof(*q));
    if (!q)
        return mq_error(MQ_ENOMEM, "cannot allocate images");
    q->m = m;
    q->g = g;
    q->task = t;
    q->max_samples = max;
    data_path(t, &(struct mq_quality_config){.data = data}, q->path, sizeof(q->path));
    int rc = t->load(q, q->path);
    if (rc == MQ_OK) {
        *out = q->images;
        *n = q->n_images;
        *h = q->img_h;
        *w = q->img_w;
        q->images = NULL;
    }
    onnx_quality_free(q);
    return rc;
}

int onnx_capture(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg,
                 mq_capture_fn fn, void *arg)
{
    const struct ox_graph *g = m->impl;
    const struct onnx_task *t = g->task;
    struct onnx_quality *q = calloc(1, sizeof(*q));
    struct mq_plan *p32 = NULL;
    struct mq_onnx_exec *x = NULL;
    int rc;
    if (!q)
        return mq_error(MQ_ENOMEM, "cannot allocate a calibration run");
    q->m = m;
    q->g = g;
    q->task = t;
    q->be = be;
    q->max_samples = t->infer == vad_infer ? 32 : OCR_BATCH;
    if ((rc = mq_plan_uniform(m, MQ_DTYPE_F32, &p32)) < 0 || (rc = mq_onnx_exec_new(m, p32, be, &x)) < 0)
        goto done;
    ox_exec_set_capture(x, fn, arg);
    if (t->load && !(cfg && ox_inputs_is_arrays(cfg->data))) {
        float *probs = NULL;
        data_path(t, cfg, q->path, sizeof(q->path));
        if ((rc = t->load(q, q->path)) == MQ_OK && (rc = t->infer(q, x, &probs)) == MQ_OK)
            free(probs);
        goto done;
    }
    /* generic: the first 8 samples of the user's arrays, or one random sample */
    q->max_samples = cfg && ox_inputs_is_arrays(cfg->data) ? 8 : 1;
    float *outv = NULL;
    data_path(t, cfg, q->path, sizeof(q->path));
    if ((rc = generic_load(q, q->path)) == MQ_OK && (rc = generic_infer(q, x, &outv)) == MQ_OK)
        free(outv);
done:
    mq_onnx_exec_free(x);
    mq_plan_free(p32);
    onnx_quality_free(q);
    return rc;
}

int onnx_quality_new(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg, void **out)
{
    *out = NULL;
    const struct ox_graph *g = m->impl;
    const struct onnx_task *t = g->task;
    struct onnx_quality *q = calloc(1, sizeof(*q));
    if (!q)
        return mq_error(MQ_ENOMEM, "cannot allocate a quality measurement");
    q->m = m;
    q->g = g;
    q->task = t;
    q->be = be;
    q->max_samples = cfg ? cfg->max_chunks : 0;
    data_path(t, cfg, q->path, sizeof(q->path));
    struct mq_plan *ref = NULL;
    int rc;
    bool generic = !t->load || ox_inputs_is_arrays(q->path);
    if ((rc = generic ? generic_load(q, q->path) : t->load(q, q->path)) < 0 ||
        (rc = mq_plan_uniform(m, MQ_DTYPE_F32, &ref)) < 0)
        goto fail;
    double t0 = now_s();
    if ((rc = run_plan(q, ref, &q->ref)) < 0)
        goto fail;
    q->ref_seconds = now_s() - t0;
    q->ref_metric = q->generic ? INFINITY : t->metric(q, q->ref);
    mq_plan_free(ref);
    *out = q;
    return MQ_OK;
fail:
    mq_plan_free(ref);
    onnx_quality_free(q);
    return rc;
}

int onnx_quality_eval(void *p, const struct mq_plan *plan, struct mq_quality *out)
{
    struct onnx_quality *q = p;
    memset(out, 0, sizeof(*out));
    double t0 = now_s();
    float *probs = NULL;
    int64_t n_items = q->n_items, C = q->n_classes;
    int rc = run_plan(q, plan, &probs);
    if (rc < 0)
        return rc;
    if (q->n_items != n_items || q->n_classes != C) {
        free(probs);
        return mq_error(MQ_EINTERNAL, "'%s': outputs changed shape between plans", q->m->path);
    }
    if (q->generic) {
        rc = generic_eval(q, probs, out);
        out->seconds = now_s() - t0;
        free(probs);
        return rc;
    }
    double sum = 0.0, sum2 = 0.0, dev = 0.0;
    int64_t agree = 0;
    for (int64_t i = 0; i < n_items; i++) {
        const float *r = q->ref + i * C, *s = probs + i * C;
        double kl = kl_item(r, s, C);
        sum += kl;
        sum2 += kl * kl;
        if (C == 1) {
            agree += (r[0] >= 0.5f) == (s[0] >= 0.5f);
            dev += fabs((double)r[0] - (double)s[0]);
        } else {
            agree += argmax(r, C) == argmax(s, C);
        }
    }
    double n = (double)(n_items ? n_items : 1);
    out->loss = sum / n;
    double var = n_items > 1 ? (sum2 - sum * sum / n) / (n - 1) : 0.0;
    out->loss_stderr = var > 0 ? sqrt(var / n) : 0.0;
    out->metric = q->task->metric(q, probs);
    out->ref_metric = q->ref_metric;
    out->metric_name = q->task->metric_name;
    out->higher_is_better = q->task->higher_is_better;
    out->top1_agree = (double)agree / n;
    out->n_samples = n_items;
    out->seconds = now_s() - t0;
    if (C == 1)
        snprintf(out->note, sizeof(out->note), "mean |p - p_f32| %.6f over %" PRId64 " frames", dev / n, n_items);
    free(probs);
    return MQ_OK;
}
