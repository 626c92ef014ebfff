/* onnx/onnx_ops_nn.c - the spatial ONNX ops (conv geometry, pooling, Resize, Upsample) and
 * the layers: Conv, ConvTranspose, Gemm, MatMul, matmul-like Einsum, and LSTM and GRU (two
 * layers each, W and R) with their weights as rows, multiplied
 * through the context's matmul (the backend in a session) or in f32 on the host; listed in
 * onnx_ops.c's table (onnx/onnx_internal.h). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "onnx/onnx_internal.h"

/* ---- spatial: conv geometry, pooling, resize -------------------------------------------- */

/* 1-D and 2-D spatial geometry, 1-D seen as 2-D with H = 1. */
struct geom {
    int sp;                    /* spatial dims: 1 or 2 */
    int64_t H, W, kh, kw, sh, sw, dh, dw, ph0, pw0, ph1, pw1, OH, OW;
};

static int spatial_geom(struct ox_ctx *c, const struct ox_node *n, const struct ox_tensor *x, const int64_t *kernel,
                        bool transpose, bool ceil_mode, struct geom *g)
{
    memset(g, 0, sizeof(*g));
    g->sp = x->nd - 2;
    if (g->sp != 1 && g->sp != 2)
        return ox_fail(c, MQ_EUNSUPPORTED, "%d spatial dimensions (mixq runs 1-D and 2-D)", g->sp);
    int64_t cnt;
    const int64_t *a;
    int64_t k[2], s[2] = {1, 1}, d[2] = {1, 1}, p[4] = {0, 0, 0, 0}, sz[2];
    for (int i = 0; i < g->sp; i++) {
        k[i] = kernel[i];
        sz[i] = x->dims[2 + i];
    }
    if ((a = ox_attr_ints(n, "strides", &cnt))) {
        if (cnt != g->sp)
            return ox_fail(c, MQ_EFORMAT, "strides of %" PRId64 " values", cnt);
        memcpy(s, a, (size_t)cnt * 8);
    }
    if ((a = ox_attr_ints(n, "dilations", &cnt))) {
        if (cnt != g->sp)
            return ox_fail(c, MQ_EFORMAT, "dilations of %" PRId64 " values", cnt);
        memcpy(d, a, (size_t)cnt * 8);
    }
    if ((a = ox_attr_ints(n, "pads", &cnt))) {
        if (cnt != 2 * g->sp)
            return ox_fail(c, MQ_EFORMAT, "pads of %" PRId64 " values", cnt);
        memcpy(p, a, (size_t)cnt * 8);
    }
    for (int i = 0; i < g->sp; i++)
        if (s[i] < 1 || d[i] < 1 || k[i] < 1 || p[i] < 0 || p[i + g->sp] < 0 || s[i] > 4096 || d[i] > 4096 ||
            k[i] > 4096 || p[i] > 4096 || p[i + g->sp] > 4096)
            return ox_fail(c, MQ_EFORMAT, "kernel, stride, dilation or pad out of range");
    char buf[32];
    const char *ap = ox_attr_str(n, "auto_pad", "NOTSET", buf, sizeof(buf));
    int64_t o[2];
    for (int i = 0; i < g->sp; i++) {
        int64_t ek = (k[i] - 1) * d[i] + 1;
        if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
            if (transpose)
                return ox_fail(c, MQ_EUNSUPPORTED, "auto_pad %s on a transposed convolution", ap);
            o[i] = (sz[i] + s[i] - 1) / s[i];
            int64_t tot = (o[i] - 1) * s[i] + ek - sz[i];
            tot = tot < 0 ? 0 : tot;
            p[i] = ap[5] == 'U' ? tot / 2 : tot - tot / 2;
            p[i + g->sp] = tot - p[i];
        } else if (strcmp(ap, "VALID") == 0) {
            p[i] = p[i + g->sp] = 0;
        } else if (strcmp(ap, "NOTSET") != 0) {
            return ox_fail(c, MQ_EUNSUPPORTED, "auto_pad '%s'", ap);
        }
        if (transpose) {
            int64_t op_ = 0;
            if ((a = ox_attr_ints(n, "output_padding", &cnt)) && cnt == g->sp)
                op_ = a[i];
            if (ox_attr_ints(n, "output_shape", &cnt))
                return ox_fail(c, MQ_EUNSUPPORTED, "output_shape (give pads instead)");
            o[i] = s[i] * (sz[i] - 1) + op_ + ek - p[i] - p[i + g->sp];
        } else {
            int64_t span = sz[i] + p[i] + p[i + g->sp] - ek;
            if (span < 0)
                return ox_fail(c, MQ_EFORMAT, "kernel of %" PRId64 " wider than the padded input of %" PRId64, ek,
                               sz[i] + p[i] + p[i + g->sp]);
            o[i] = (ceil_mode ? (span + s[i] - 1) / s[i] : span / s[i]) + 1;
            /* with ceil_mode the last window must start inside the input or the left pad */
            if (ceil_mode && (o[i] - 1) * s[i] >= sz[i] + p[i])
                o[i]--;
        }
        if (o[i] < 1)
            return ox_fail(c, MQ_EFORMAT, "output of size %" PRId64, o[i]);
    }
    if (g->sp == 1) {
        g->H = 1, g->kh = 1, g->sh = 1, g->dh = 1, g->OH = 1;
        g->W = sz[0], g->kw = k[0], g->sw = s[0], g->dw = d[0], g->pw0 = p[0], g->pw1 = p[1], g->OW = o[0];
    } else {
        g->H = sz[0], g->kh = k[0], g->sh = s[0], g->dh = d[0], g->ph0 = p[0], g->ph1 = p[2], g->OH = o[0];
        g->W = sz[1], g->kw = k[1], g->sw = s[1], g->dw = d[1], g->pw0 = p[1], g->pw1 = p[3], g->OW = o[1];
    }
    return MQ_OK;
}

static int pool(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out, bool avg,
                bool global)
{
    int rc;
    if ((rc = ox_need_f32(c, in[0], "X")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (x->nd < 3)
        return ox_fail(c, MQ_EFORMAT, "input of rank %d", x->nd);
    if (n->n_out > 1)
        return ox_fail(c, MQ_EUNSUPPORTED, "the Indices output");
    struct geom g;
    int64_t kernel[2], cnt;
    if (global) {
        if (x->nd > 4)
            return ox_fail(c, MQ_EUNSUPPORTED, "%d spatial dimensions", x->nd - 2);
        for (int i = 0; i < x->nd - 2; i++)
            kernel[i] = x->dims[2 + i];
    } else {
        const int64_t *k = ox_attr_ints(n, "kernel_shape", &cnt);
        if (!k || cnt != x->nd - 2 || cnt > 2)
            return ox_fail(c, MQ_EFORMAT, "kernel_shape missing or of the wrong rank");
        memcpy(kernel, k, (size_t)cnt * 8);
    }
    if (global) {
        memset(&g, 0, sizeof(g));
        g.sp = x->nd - 2;
        g.H = g.sp == 2 ? x->dims[2] : 1;
        g.W = x->dims[x->nd - 1];
        g.kh = g.H, g.kw = g.W, g.sh = g.sw = g.dh = g.dw = 1, g.OH = g.OW = 1;
    } else if ((rc = spatial_geom(c, n, x, kernel, false, ox_attr_int(n, "ceil_mode", 0) != 0, &g)) < 0) {
        return rc;
    }
    int64_t dims[4] = {x->dims[0], x->dims[1], g.OH, g.OW};
    if (g.sp == 1)
        dims[2] = g.OW;
    if ((rc = ox_out(c, out, OX_F32, x->nd, dims)) <= 0)
        return rc;
    bool incl = ox_attr_int(n, "count_include_pad", 0) != 0;
    int64_t planes = x->dims[0] * x->dims[1];
    const float *xd = x->data;
    float *y = out->data;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = xd + pl * g.H * g.W;
        float *yp = y + pl * g.OH * g.OW;
        for (int64_t oy = 0; oy < g.OH; oy++)
            for (int64_t ox_ = 0; ox_ < g.OW; ox_++) {
                double acc = avg ? 0.0 : -INFINITY;
                int64_t cntv = 0, cnt_pad = 0;
                for (int64_t ky = 0; ky < g.kh; ky++) {
                    int64_t iy = oy * g.sh - g.ph0 + ky * g.dh;
                    for (int64_t kx = 0; kx < g.kw; kx++) {
                        int64_t ix = ox_ * g.sw - g.pw0 + kx * g.dw;
                        /* windows past the input count padding only inside the pads */
                        if (iy < g.H + g.ph1 && ix < g.W + g.pw1)
                            cnt_pad++;
                        if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W)
                            continue;
                        float v = xp[iy * g.W + ix];
                        acc = avg ? acc + v : (v > acc ? v : acc);
                        cntv++;
                    }
                }
                yp[oy * g.OW + ox_] = (float)(avg ? acc / (double)((incl ? cnt_pad : cntv) ? (incl ? cnt_pad : cntv) : 1) : acc);
            }
    }
    return MQ_OK;
}

int ox_op_maxpool(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return pool(c, n, in, out, false, false);
}
int ox_op_avgpool(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return pool(c, n, in, out, true, false);
}
int ox_op_gap(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return pool(c, n, in, out, true, true);
}
int ox_op_gmp(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return pool(c, n, in, out, false, true);
}

static int resample(struct ox_ctx *c, const struct ox_tensor *x, struct ox_tensor *out, const int64_t *dims,
                    const double *scale, bool linear, int ctm, int nmode);

int ox_op_resize(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need_f32(c, in[0], "X")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (x->nd != 4 && x->nd != 3)
        return ox_fail(c, MQ_EUNSUPPORTED, "input of rank %d (mixq resizes NCW and NCHW)", x->nd);
    int nd = x->nd;
    int64_t dims[4];
    double scale[4] = {1, 1, 1, 1};
    /* opset 10: (X, scales); 11+: (X, roi, scales, sizes) */
    const struct ox_tensor *scales = n->n_in == 2 ? in[1] : n->n_in > 2 ? in[2] : NULL;
    const struct ox_tensor *sizes = n->n_in > 3 ? in[3] : NULL;
    if (sizes && sizes->n > 0) {
        int64_t sv[4];
        int ns;
        if ((rc = ox_input_ints(c, sizes, "sizes", sv, 4, &ns)) < 0)
            return rc;
        if (ns != nd)
            return ox_fail(c, MQ_EFORMAT, "sizes of %d values for rank %d", ns, nd);
        for (int i = 0; i < nd; i++) {
            dims[i] = sv[i];
            scale[i] = x->dims[i] ? (double)sv[i] / (double)x->dims[i] : 1.0;
        }
    } else if (scales && scales->n > 0) {
        if (!scales->data || scales->type != OX_F32 || scales->n != nd)
            return ox_fail(c, scales->data ? MQ_EFORMAT : MQ_EUNSUPPORTED, "scales must be %d known floats", nd);
        for (int i = 0; i < nd; i++) {
            scale[i] = ((const float *)scales->data)[i];
            if (!(scale[i] > 0.0 && scale[i] < 4096.0))
                return ox_fail(c, MQ_EFORMAT, "scale %g", scale[i]);
            dims[i] = (int64_t)floor((double)x->dims[i] * scale[i]);
        }
    } else {
        return ox_fail(c, MQ_EFORMAT, "neither scales nor sizes");
    }
    if (dims[0] != x->dims[0] || dims[1] != x->dims[1])
        return ox_fail(c, MQ_EUNSUPPORTED, "resizing the batch or channel dimension");
    char mb[16], cb[32], nb[32];
    const char *mode = ox_attr_str(n, "mode", "nearest", mb, sizeof(mb));
    const char *ct = ox_attr_str(n, "coordinate_transformation_mode", "half_pixel", cb, sizeof(cb));
    const char *nm = ox_attr_str(n, "nearest_mode", "round_prefer_floor", nb, sizeof(nb));
    bool linear = strcmp(mode, "linear") == 0;
    if (!linear && strcmp(mode, "nearest") != 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "resize mode '%s'", mode);
    int ctm = strcmp(ct, "half_pixel") == 0 ? 0 : strcmp(ct, "asymmetric") == 0 ? 1 : strcmp(ct, "align_corners") == 0 ? 2
              : strcmp(ct, "pytorch_half_pixel") == 0 ? 3 : -1;
    if (ctm < 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "coordinate transformation '%s'", ct);
    int nmode = strcmp(nm, "round_prefer_floor") == 0 ? 0 : strcmp(nm, "round_prefer_ceil") == 0 ? 1
                : strcmp(nm, "floor") == 0 ? 2 : strcmp(nm, "ceil") == 0 ? 3 : -1;
    if (nmode < 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "nearest mode '%s'", nm);
    return resample(c, x, out, dims, scale, linear, ctm, nmode);
}

/* Resize's sampling of x [N][C][(H)][W] into dims (same N and C): scale per axis, linear or
 * nearest, ctm 0 half_pixel, 1 asymmetric, 2 align_corners, 3 pytorch_half_pixel; nmode 0
 * round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil. */
static int resample(struct ox_ctx *c, const struct ox_tensor *x, struct ox_tensor *out, const int64_t *dims,
                    const double *scale, bool linear, int ctm, int nmode)
{
    int rc, nd = x->nd;
    if ((rc = ox_out(c, out, OX_F32, nd, dims)) <= 0)
        return rc;
    int64_t H = nd == 4 ? x->dims[2] : 1, W = x->dims[nd - 1], OH = nd == 4 ? dims[2] : 1, OW = dims[nd - 1];
    double sh = nd == 4 ? scale[2] : 1.0, sw = scale[nd - 1];
    int64_t planes = x->dims[0] * x->dims[1];
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox_ = 0; ox_ < OW; ox_++) {
                double src[2];
                int64_t o[2] = {oy, ox_}, len[2] = {OH, OW}, in_len[2] = {H, W};
                double sc[2] = {sh, sw};
                for (int k = 0; k < 2; k++) {
                    double v = (double)o[k];
                    switch (ctm) {
                    case 0: src[k] = (v + 0.5) / sc[k] - 0.5; break;
                    case 1: src[k] = v / sc[k]; break;
                    case 2: src[k] = len[k] > 1 ? v * (double)(in_len[k] - 1) / (double)(len[k] - 1) : 0.0; break;
                    default: src[k] = len[k] > 1 ? (v + 0.5) / sc[k] - 0.5 : 0.0; break;
                    }
                }
                const float *xp = (const float *)x->data + pl * H * W;
                float v;
                if (!linear) {
                    int64_t iy[2];
                    for (int k = 0; k < 2; k++) {
                        double s = src[k], f = floor(s);
                        double r = nmode == 2 ? f : nmode == 3 ? ceil(s)
                                   : (s - f == 0.5 ? (nmode == 0 ? f : f + 1.0) : floor(s + 0.5));
                        int64_t i = (int64_t)r;
                        iy[k] = i < 0 ? 0 : i >= in_len[k] ? in_len[k] - 1 : i;
                    }
                    v = xp[iy[0] * W + iy[1]];
                } else {
                    int64_t i0[2], i1[2];
                    double fr[2];
                    for (int k = 0; k < 2; k++) {
                        double s = src[k] < 0.0 ? 0.0 : src[k];
                        if (s > (double)(in_len[k] - 1))
                            s = (double)(in_len[k] - 1);
                        i0[k] = (int64_t)floor(s);
                        i1[k] = i0[k] + 1 < in_len[k] ? i0[k] + 1 : i0[k];
                        fr[k] = s - (double)i0[k];
                    }
                    double a = xp[i0[0] * W + i0[1]] * (1 - fr[1]) + xp[i0[0] * W + i1[1]] * fr[1];
                    double b = xp[i1[0] * W + i0[1]] * (1 - fr[1]) + xp[i1[0] * W + i1[1]] * fr[1];
                    v = (float)(a * (1 - fr[0]) + b * fr[0]);
                }
                ((float *)out->data)[(pl * OH + oy) * OW + ox_] = v;
            }
    return MQ_OK;
}

/* Upsample (deprecated at opset 10): scales as attribute (opset 7, 8) or input (9); Resize's
 * sampling with asymmetric coordinates, nearest rounding down, as ONNX Runtime's. */
int ox_op_upsample(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need_f32(c, in[0], "X")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (x->nd != 4 && x->nd != 3)
        return ox_fail(c, MQ_EUNSUPPORTED, "input of rank %d (mixq upsamples NCW and NCHW)", x->nd);
    const struct mq_onnx_attr *sa = ox_attr(n, "scales");
    const float *sv;
    int64_t ns;
    if (n->n_in > 1 && in[1]) {
        if (!in[1]->data || in[1]->type != OX_F32)
            return ox_fail(c, in[1]->data ? MQ_EFORMAT : MQ_EUNSUPPORTED, "scales must be known floats");
        sv = in[1]->data, ns = in[1]->n;
    } else if (sa) {
        sv = sa->floats, ns = sa->n_floats;
    } else {
        return ox_fail(c, MQ_EFORMAT, "no scales (attribute or input)");
    }
    if (ns != x->nd)
        return ox_fail(c, MQ_EFORMAT, "%" PRId64 " scales for rank %d", ns, x->nd);
    int64_t dims[4];
    double scale[4];
    for (int i = 0; i < x->nd; i++) {
        scale[i] = sv[i];
        if (!(scale[i] >= 1.0 && scale[i] < 4096.0))
            return ox_fail(c, MQ_EFORMAT, "scale %g (Upsample wants 1 <= scale < 4096)", scale[i]);
        dims[i] = (int64_t)floor((double)x->dims[i] * scale[i]);
    }
    if (dims[0] != x->dims[0] || dims[1] != x->dims[1])
        return ox_fail(c, MQ_EUNSUPPORTED, "upsampling the batch or channel dimension");
    char mb[16];
    const char *mode = ox_attr_str(n, "mode", "nearest", mb, sizeof(mb));
    bool linear = strcmp(mode, "linear") == 0;
    if (!linear && strcmp(mode, "nearest") != 0)
        return ox_fail(c, MQ_EFORMAT, "upsample mode '%s' (want nearest or linear)", mode);
    return resample(c, x, out, dims, scale, linear, 1, 2);
}

/* ---- layers: weights as rows, and the matmuls ------------------------------------------- */

static int einsum_rows(const struct ox_node *n, const struct ox_tensor *w, int64_t *K, int64_t *N, float **rows);

int ox_weight_rows(const struct ox_node *n, int op, const struct ox_tensor *w, enum ox_layer_kind *kind, int64_t *groups,
                   int64_t *K, int64_t *N, float **rows)
{
    *rows = NULL;
    if (w->type != OX_F32 || !w->data)
        return MQ_EUNSUPPORTED;
    if (op == ox_op_index_einsum()) {
        *kind = OX_LAYER_GEMM;
        *groups = 1;
        return einsum_rows(n, w, K, N, rows);
    }
    if (op == ox_op_index_lstm() || op == ox_op_index_gru()) { /* W or R: [directions][gates * H][K] */
        if (w->nd != 3 || w->dims[0] < 1 || w->dims[1] < 1 || w->dims[2] < 1)
            return MQ_EUNSUPPORTED;
        *kind = OX_LAYER_GEMM;
        *groups = w->dims[0], *N = w->dims[1], *K = w->dims[2];
        if (!(*rows = malloc((size_t)w->n * sizeof(float))))
            return mq_error(MQ_ENOMEM, "cannot allocate weights of %" PRId64 " values", w->n);
        memcpy(*rows, w->data, (size_t)w->n * sizeof(float));
        return MQ_OK;
    }
    int64_t g = 1;
    if (op == ox_op_index_conv() || op == ox_op_index_conv_t()) {
        g = ox_attr_int(n, "group", 1);
        if (w->nd < 3 || w->nd > 4 || g < 1)
            return MQ_EUNSUPPORTED;
        int64_t ksz = ox_prod(w->dims, 2, w->nd);
        if (op == ox_op_index_conv()) {
            if (w->dims[0] % g)
                return MQ_EUNSUPPORTED;
            *kind = OX_LAYER_CONV;
            *K = w->dims[1] * ksz;
            *N = w->dims[0] / g;
        } else {
            if (w->dims[0] % g)
                return MQ_EUNSUPPORTED;
            *kind = OX_LAYER_CONV_T;
            *K = w->dims[0] / g;   /* input channels per group */
            *N = w->dims[1] * ksz; /* output channels per group x kernel */
        }
    } else {
        if (w->nd != 2)
            return MQ_EUNSUPPORTED;
        bool trans = op == ox_op_index_gemm() && ox_attr_int(n, "transB", 0);
        *kind = OX_LAYER_GEMM;
        *K = trans ? w->dims[1] : w->dims[0];
        *N = trans ? w->dims[0] : w->dims[1];
    }
    if (*K < 1 || *N < 1)
        return MQ_EUNSUPPORTED;
    *groups = g;
    float *r = malloc((size_t)(g * *N * *K) * sizeof(float));
    if (!r)
        return mq_error(MQ_ENOMEM, "cannot allocate weights of %" PRId64 " values", g * *N * *K);
    const float *src = w->data;
    if (*kind == OX_LAYER_CONV || (*kind == OX_LAYER_GEMM && op == ox_op_index_gemm() && ox_attr_int(n, "transB", 0))) {
        memcpy(r, src, (size_t)(g * *N * *K) * sizeof(float)); /* already [N][K] */
    } else if (*kind == OX_LAYER_GEMM) {
        for (int64_t k = 0; k < *K; k++)
            for (int64_t j = 0; j < *N; j++)
                r[j * *K + k] = src[k * *N + j];
    } else { /* ConvTranspose: W [Cin][Cout/g * ksz] per group, transposed to [N][K] */
        for (int64_t gi = 0; gi < g; gi++)
            for (int64_t k = 0; k < *K; k++)
                for (int64_t j = 0; j < *N; j++)
                    r[(gi * *N + j) * *K + k] = src[(gi * *K + k) * *N + j];
    }
    *rows = r;
    *groups = g;
    return MQ_OK;
}

/* Y[M][N] = X[M][K] * rows^T, rows [N][K]: the host f32 reference. */
static void host_matmul(const float *rows, int64_t K, int64_t N, const float *X, int64_t M, float *Y)
{
    for (int64_t m = 0; m < M; m++) {
        const float *x = X + m * K;
        for (int64_t j = 0; j < N; j++) {
            const float *w = rows + j * K;
            double acc = 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)w[k] * x[k];
            Y[m * N + j] = (float)acc;
        }
    }
}

/* One group of a layer: through the session's matmul, or from weight rows on the host. */
static int layer_matmul_at(struct ox_ctx *c, int layer, const float *rows, int64_t K, int64_t N, int64_t group,
                           const float *X, int64_t M, float *Y)
{
    if (layer >= 0 && c->matmul)
        return c->matmul(c, layer, group, X, M, Y);
    const float *w = layer >= 0 ? c->g->layers[layer].w : rows;
    host_matmul(w + group * N * K, K, N, X, M, Y);
    return MQ_OK;
}

static int layer_matmul(struct ox_ctx *c, const struct ox_node *n, const float *rows, int64_t K, int64_t N,
                        int64_t group, const float *X, int64_t M, float *Y)
{
    return layer_matmul_at(c, n->layer, rows, K, N, group, X, M, Y);
}

static int grow_col(struct ox_ctx *c, int64_t n)
{
    if ((size_t)n <= c->col_cap)
        return MQ_OK;
    float *p = realloc(c->col, (size_t)n * sizeof(float));
    if (!p)
        return ox_fail(c, MQ_ENOMEM, "cannot allocate %" PRId64 " floats of im2col scratch", n);
    c->col = p;
    c->col_cap = (size_t)n;
    return MQ_OK;
}

static void note_layer_at(struct ox_ctx *c, int layer, int64_t M, int64_t calls, uint64_t scratch)
{
    if (layer >= 0 && c->layer_M)
        ox_note_layer_work(c, layer, M, calls);
    if (scratch > c->scratch_bytes)
        c->scratch_bytes = scratch;
}

static void note_layer(struct ox_ctx *c, const struct ox_node *n, int64_t M, int64_t calls, uint64_t scratch)
{
    note_layer_at(c, n->layer, M, calls, scratch);
}

/* Weight rows for this node: the layer's, or built from a constant/computed weight. */
static int node_rows(struct ox_ctx *c, const struct ox_node *n, const struct ox_tensor *w, int64_t *g, int64_t *K,
                     int64_t *N, float **owned)
{
    *owned = NULL;
    if (n->layer >= 0) {
        const struct ox_layer *l = &c->g->layers[n->layer];
        *g = l->groups, *K = l->K, *N = l->N;
        return MQ_OK;
    }
    enum ox_layer_kind kind;
    if (!w->data)
        return ox_fail(c, MQ_EINTERNAL, "weight has no data");
    int rc = ox_weight_rows(n, n->op, w, &kind, g, K, N, owned);
    if (rc == MQ_EUNSUPPORTED)
        return ox_fail(c, MQ_EUNSUPPORTED, "weight of shape not supported (rank %d)", w->nd);
    return rc;
}

/* dst[c * dst_ld + r] = src[r * src_ld + c] for r < rows, c < cols, in cache-sized tiles. */
static void transpose_tiles(const float *src, int64_t rows, int64_t cols, int64_t src_ld, float *dst, int64_t dst_ld)
{
    const int64_t T = 32;
    for (int64_t r0 = 0; r0 < rows; r0 += T)
        for (int64_t c0 = 0; c0 < cols; c0 += T) {
            int64_t r1 = r0 + T < rows ? r0 + T : rows, c1 = c0 + T < cols ? c0 + T : cols;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t cc = c0; cc < c1; cc++)
                    dst[cc * dst_ld + r] = src[r * src_ld + cc];
        }
}

int ox_op_conv(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need_f32(c, in[0], "X")) < 0 || (rc = ox_need_f32(c, in[1], "W")) < 0)
        return rc;
    const struct ox_tensor *x = in[0], *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    if (w->nd != x->nd || x->nd < 3)
        return ox_fail(c, MQ_EFORMAT, "X of rank %d and W of rank %d", x->nd, w->nd);
    int64_t g = ox_attr_int(n, "group", 1), cnt;
    const int64_t *ks = ox_attr_ints(n, "kernel_shape", &cnt);
    for (int i = 0; ks && i < cnt && i < w->nd - 2; i++)
        if (ks[i] != w->dims[2 + i])
            return ox_fail(c, MQ_EFORMAT, "kernel_shape differs from the weight's");
    int64_t Cin = x->dims[1], Cout = w->dims[0];
    if (g < 1 || Cin % g || Cout % g || w->dims[1] != Cin / g)
        return ox_fail(c, MQ_EFORMAT, "%" PRId64 " input channels, %" PRId64 " output channels, weight [%" PRId64
                       ", %" PRId64 "], %" PRId64 " groups", Cin, Cout, w->dims[0], w->dims[1], g);
    if (b && (b->type != OX_F32 || b->n != Cout))
        return ox_fail(c, MQ_EFORMAT, "bias of %" PRId64 " values for %" PRId64 " channels", b->n, Cout);
    struct geom gm;
    if ((rc = spatial_geom(c, n, x, w->dims + 2, false, false, &gm)) < 0)
        return rc;
    int64_t B = x->dims[0], P = gm.OH * gm.OW, Cg = Cin / g, Ng = Cout / g, K = Cg * gm.kh * gm.kw, M = B * P;
    int64_t dims[4] = {B, Cout, gm.OH, gm.OW};
    if (gm.sp == 1)
        dims[2] = gm.OW;
    note_layer(c, n, M, g, (uint64_t)(M * K + M * Ng) * 4);
    if ((rc = ox_out(c, out, OX_F32, x->nd, dims)) <= 0)
        return rc;
    float *rows = NULL;
    int64_t gg, KK = K, NN = Ng;
    if ((rc = node_rows(c, n, w, &gg, &KK, &NN, &rows)) < 0)
        return rc;
    MQ_ASSERT(gg == g && KK == K && NN == Ng);
    if ((rc = grow_col(c, M * K + M * Ng)) < 0)
        goto done;
    float *col = c->col, *res = c->col + M * K;
    const float *xd = x->data;
    float *y = out->data;
    bool pointwise = gm.kh == 1 && gm.kw == 1 && gm.sh == 1 && gm.sw == 1 && gm.ph0 == 0 && gm.pw0 == 0 &&
                     gm.ph1 == 0 && gm.pw1 == 0;
    for (int64_t gi = 0; gi < g; gi++) {
        /* im2col: col[m = b*P + p][k = (ci*kh + ky)*kw + kx] */
        for (int64_t bi = 0; bi < B; bi++) {
            if (pointwise) { /* a 1x1 conv: [Cg][P] transposed */
                transpose_tiles(xd + (bi * Cin + gi * Cg) * P, Cg, P, P, col + bi * P * K, K);
                continue;
            }
            for (int64_t ci = 0; ci < Cg; ci++) {
                const float *xp = xd + (bi * Cin + gi * Cg + ci) * gm.H * gm.W;
                for (int64_t ky = 0; ky < gm.kh; ky++)
                    for (int64_t kx = 0; kx < gm.kw; kx++) {
                        int64_t k = (ci * gm.kh + ky) * gm.kw + kx;
                        float *cp = col + bi * P * K + k;
                        /* output columns whose input column lies inside: [lo, hi) */
                        int64_t off = gm.pw0 - kx * gm.dw;
                        int64_t lo = off > 0 ? (off + gm.sw - 1) / gm.sw : 0;
                        int64_t hi = gm.W - 1 + off >= 0 ? (gm.W - 1 + off) / gm.sw + 1 : 0;
                        lo = lo > gm.OW ? gm.OW : lo;
                        hi = hi > gm.OW ? gm.OW : hi < lo ? lo : hi;
                        for (int64_t oy = 0; oy < gm.OH; oy++) {
                            int64_t iy = oy * gm.sh - gm.ph0 + ky * gm.dh;
                            if (iy < 0 || iy >= gm.H) {
                                for (int64_t ox_ = 0; ox_ < gm.OW; ox_++, cp += K)
                                    *cp = 0.0f;
                                continue;
                            }
                            const float *row = xp + iy * gm.W - off;
                            int64_t ox_ = 0;
                            for (; ox_ < lo; ox_++, cp += K)
                                *cp = 0.0f;
                            for (; ox_ < hi; ox_++, cp += K)
                                *cp = row[ox_ * gm.sw];
                            for (; ox_ < gm.OW; ox_++, cp += K)
                                *cp = 0.0f;
                        }
                    }
            }
        }
        if ((rc = layer_matmul(c, n, rows, K, Ng, gi, col, M, res)) < 0)
            goto done;
        for (int64_t bi = 0; bi < B; bi++) {
            float *yg = y + (bi * Cout + gi * Ng) * P;
            transpose_tiles(res + bi * P * Ng, P, Ng, Ng, yg, P);
            if (b)
                for (int64_t j = 0; j < Ng; j++) {
                    float bias = ((const float *)b->data)[gi * Ng + j];
                    for (int64_t p = 0; p < P; p++)
                        yg[j * P + p] += bias;
                }
        }
    }
    rc = MQ_OK;
done:
    free(rows);
    return rc;
}

int ox_op_conv_t(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need_f32(c, in[0], "X")) < 0 || (rc = ox_need_f32(c, in[1], "W")) < 0)
        return rc;
    const struct ox_tensor *x = in[0], *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    if (w->nd != x->nd || x->nd < 3)
        return ox_fail(c, MQ_EFORMAT, "X of rank %d and W of rank %d", x->nd, w->nd);
    int64_t g = ox_attr_int(n, "group", 1);
    int64_t Cin = x->dims[1];
    if (g < 1 || Cin % g || w->dims[0] != Cin)
        return ox_fail(c, MQ_EFORMAT, "%" PRId64 " input channels, weight [%" PRId64 ", ...], %" PRId64 " groups", Cin,
                       w->dims[0], g);
    int64_t Cg_out = w->dims[1], Cout = Cg_out * g;
    if (b && (b->type != OX_F32 || b->n != Cout))
        return ox_fail(c, MQ_EFORMAT, "bias of %" PRId64 " values for %" PRId64 " channels", b->n, Cout);
    struct geom gm;
    if ((rc = spatial_geom(c, n, x, w->dims + 2, true, false, &gm)) < 0)
        return rc;
    int64_t B = x->dims[0], Pin = gm.H * gm.W, K = Cin / g, ksz = gm.kh * gm.kw, Ng = Cg_out * ksz, M = B * Pin;
    int64_t dims[4] = {B, Cout, gm.OH, gm.OW};
    if (gm.sp == 1)
        dims[2] = gm.OW;
    note_layer(c, n, M, g, (uint64_t)(M * K + M * Ng) * 4);
    if ((rc = ox_out(c, out, OX_F32, x->nd, dims)) <= 0)
        return rc;
    float *rows = NULL;
    int64_t gg, KK = K, NN = Ng;
    if ((rc = node_rows(c, n, w, &gg, &KK, &NN, &rows)) < 0)
        return rc;
    MQ_ASSERT(gg == g && KK == K && NN == Ng);
    if ((rc = grow_col(c, M * K + M * Ng)) < 0)
        goto done;
    float *col = c->col, *res = c->col + M * K, *y = out->data;
    const float *xd = x->data;
    int64_t Pout = gm.OH * gm.OW;
    for (int64_t gi = 0; gi < g; gi++) {
        for (int64_t bi = 0; bi < B; bi++)
            for (int64_t p = 0; p < Pin; p++)
                for (int64_t k = 0; k < K; k++)
                    col[(bi * Pin + p) * K + k] = xd[(bi * Cin + gi * K + k) * Pin + p];
        if ((rc = layer_matmul(c, n, rows, K, Ng, gi, col, M, res)) < 0)
            goto done;
        /* col2im: res[m][co*ksz + ky*kw + kx] lands at output (iy*sh - ph0 + ky*dh, ...) */
        for (int64_t bi = 0; bi < B; bi++)
            for (int64_t iy = 0; iy < gm.H; iy++)
                for (int64_t ix = 0; ix < gm.W; ix++) {
                    const float *r = res + (bi * Pin + iy * gm.W + ix) * Ng;
                    for (int64_t co = 0; co < Cg_out; co++)
                        for (int64_t ky = 0; ky < gm.kh; ky++) {
                            int64_t oy = iy * gm.sh - gm.ph0 + ky * gm.dh;
                            if (oy < 0 || oy >= gm.OH)
                                continue;
                            for (int64_t kx = 0; kx < gm.kw; kx++) {
                                int64_t oxx = ix * gm.sw - gm.pw0 + kx * gm.dw;
                                if (oxx < 0 || oxx >= gm.OW)
                                    continue;
                                y[((bi * Cout + gi * Cg_out + co) * gm.OH + oy) * gm.OW + oxx] +=
                                    r[co * ksz + ky * gm.kw + kx];
                            }
                        }
                }
    }
    if (b)
        for (int64_t bi = 0; bi < B; bi++)
            for (int64_t co = 0; co < Cout; co++)
                for (int64_t p = 0; p < Pout; p++)
                    y[(bi * Cout + co) * Pout + p] += ((const float *)b->data)[co];
    rc = MQ_OK;
done:
    free(rows);
    return rc;
}

int ox_op_gemm(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need_f32(c, in[0], "A")) < 0 || (rc = ox_need_f32(c, in[1], "B")) < 0)
        return rc;
    const struct ox_tensor *a = in[0], *bm = in[1], *cc = n->n_in > 2 ? in[2] : NULL;
    if (a->nd != 2 || bm->nd != 2)
        return ox_fail(c, MQ_EFORMAT, "A of rank %d and B of rank %d (want 2)", a->nd, bm->nd);
    bool ta = ox_attr_int(n, "transA", 0), tb = ox_attr_int(n, "transB", 0);
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t Kb = tb ? bm->dims[1] : bm->dims[0], N = tb ? bm->dims[0] : bm->dims[1];
    if (K != Kb)
        return ox_fail(c, MQ_EFORMAT, "A has K = %" PRId64 ", B has K = %" PRId64, K, Kb);
    int64_t dims[2] = {M, N};
    if (cc) {
        struct ox_tensor yshape = {.type = OX_F32, .nd = 2, .dims = {M, N}, .n = M * N};
        struct ox_tensor *ts[2] = {&yshape, (struct ox_tensor *)cc};
        int nd;
        int64_t bd[MQ_ONNX_MAX_DIMS];
        if ((rc = ox_bcast(c, ts, 2, &nd, bd)) < 0)
            return rc;
        if (nd != 2 || bd[0] != M || bd[1] != N)
            return ox_fail(c, MQ_EFORMAT, "C does not broadcast to [%" PRId64 ", %" PRId64 "]", M, N);
    }
    note_layer(c, n, M, 1, (uint64_t)(M * K) * 4);
    if ((rc = ox_out(c, out, OX_F32, 2, dims)) <= 0)
        return rc;
    float *rows = NULL, *xt = NULL;
    int64_t g, KK = K, NN = N;
    if ((rc = node_rows(c, n, bm, &g, &KK, &NN, &rows)) < 0)
        return rc;
    const float *X = a->data;
    if (ta) {
        xt = malloc((size_t)(M * K) * sizeof(float));
        if (!xt) {
            rc = ox_fail(c, MQ_ENOMEM, "cannot allocate A^T");
            goto done;
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < K; k++)
                xt[i * K + k] = ((const float *)a->data)[k * M + i];
        X = xt;
    }
    if ((rc = layer_matmul(c, n, rows, K, N, 0, X, M, out->data)) < 0)
        goto done;
    float alpha = ox_attr_float(n, "alpha", 1.0f), beta = ox_attr_float(n, "beta", 1.0f);
    float *y = out->data;
    if (alpha != 1.0f)
        for (int64_t i = 0; i < M * N; i++)
            y[i] *= alpha;
    if (cc) {
        struct ox_tensor yshape = {.type = OX_F32, .nd = 2, .dims = {M, N}, .n = M * N};
        struct ox_tensor *ts[2] = {&yshape, (struct ox_tensor *)cc};
        struct ox_biter it;
        ox_biter_init(&it, ts, 2, 2, dims);
        for (int64_t i = 0; i < M * N; i++, ox_biter_next(&it))
            y[i] += beta * ox_fget(cc, it.off[1]);
    }
    rc = MQ_OK;
done:
    free(rows);
    free(xt);
    return rc;
}

/* x - zero point as floats into t (zp: one value; or one per index of axis 0, rows of
 * MatMulInteger's A or output channels of ConvInteger's w; or, for a 2-D x, one per column,
 * axis 1, of MatMulInteger's B) */
static int int_minus_zp(struct ox_ctx *c, const struct ox_tensor *x, const struct ox_tensor *zp,
                        int axis, const char *what, struct ox_tensor *t)
{
    if (x->type == OX_F32)
        return ox_fail(c, MQ_EFORMAT, "input %s holds floats (the op multiplies integers)", what);
    int64_t per = 1, len = 1;
    if (zp && zp->n != 1) {
        if (x->nd < 2 || (axis == 1 && x->nd != 2) || zp->nd != 1 || zp->n != x->dims[axis])
            return ox_fail(c, MQ_EFORMAT, "a zero point of %" PRId64 " values for input %s", zp->n,
                           what);
        len = zp->n;
        per = axis == 0 ? x->n / x->dims[0] : 1;
    }
    int rc = ox_out(c, t, OX_F32, x->nd, x->dims);
    if (rc <= 0 || !x->data)
        return rc < 0 ? rc : MQ_OK;
    for (int64_t i = 0; i < x->n; i++) {
        int64_t z = 0;
        if (zp && zp->data)
            z = zp->type == OX_F32 ? (int64_t)((const float *)zp->data)[(i / per) % len]
                                   : ((const int64_t *)zp->data)[(i / per) % len];
        ((float *)t->data)[i] = (float)(((const int64_t *)x->data)[i] - z);
    }
    return MQ_OK;
}

/* MatMulInteger: (A - a_zero_point) x (B - b_zero_point), run as MatMul on their values as
 * floats (a's zero point: one, or one per row of a 2-D A; B's: one, or one per column).
 * ConvInteger: Conv of (x - x_zero_point) and (w - w_zero_point) likewise (x's zero point
 * one value; w's one, or one per output channel). A constant weight became an f32 layer
 * weight at load (onnx_graph.c). The output holds the int32 results as floats: exact on
 * the host (double sums), rounded as f32 sums round on a backend; the Cast to float that
 * follows in quantized models keeps them. */
static int integer_op(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                      struct ox_tensor *out, bool conv)
{
    int rc;
    const char *xn = conv ? "x" : "A", *wn = conv ? "w" : "B";
    if ((rc = ox_need(c, in[0], xn)) < 0 || (rc = ox_need(c, in[1], wn)) < 0)
        return rc;
    struct ox_tensor xf = {0}, wf = {0};
    const struct ox_tensor *xzp = n->n_in > 2 ? in[2] : NULL, *wzp = n->n_in > 3 ? in[3] : NULL;
    bool w_ready = in[1]->type == OX_F32; /* the layer weight made at load */
    if (conv && xzp && xzp->n != 1)
        return ox_fail(c, MQ_EFORMAT, "x_zero_point of %" PRId64 " values (one is allowed)", xzp->n);
    if ((rc = int_minus_zp(c, in[0], xzp, 0, xn, &xf)) < 0 ||
        (!w_ready && (rc = int_minus_zp(c, in[1], wzp, conv ? 0 : 1, wn, &wf)) < 0))
        goto done;
    struct ox_tensor *args[2] = {&xf, w_ready ? in[1] : &wf};
    struct ox_node two = *n; /* a Conv or MatMul of two inputs (Conv's input 2 is its bias) */
    two.n_in = 2;
    rc = conv ? ox_op_conv(c, &two, args, out) : ox_op_matmul(c, &two, args, out);
done:
    ox_tensor_release(&xf);
    ox_tensor_release(&wf);
    return rc;
}

int ox_op_matmul_int(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                     struct ox_tensor *out)
{
    return integer_op(c, n, in, out, false);
}

int ox_op_conv_int(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                   struct ox_tensor *out)
{
    return integer_op(c, n, in, out, true);
}

int ox_op_matmul(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need_f32(c, in[0], "A")) < 0 || (rc = ox_need_f32(c, in[1], "B")) < 0)
        return rc;
    const struct ox_tensor *a = in[0], *bm = in[1];
    if (a->nd < 1 || bm->nd < 1)
        return ox_fail(c, MQ_EFORMAT, "scalar operand");
    /* as batched [.., M, K] x [.., K, N], 1-D operands promoted and their dim dropped */
    int64_t M = a->nd == 1 ? 1 : a->dims[a->nd - 2], K = a->dims[a->nd - 1];
    int64_t Kb = bm->nd == 1 ? bm->dims[0] : bm->dims[bm->nd - 2], N = bm->nd == 1 ? 1 : bm->dims[bm->nd - 1];
    if (K != Kb)
        return ox_fail(c, MQ_EFORMAT, "A has K = %" PRId64 ", B has K = %" PRId64, K, Kb);
    struct ox_tensor ab = {.nd = a->nd > 2 ? a->nd - 2 : 0}, bb = {.nd = bm->nd > 2 ? bm->nd - 2 : 0};
    for (int i = 0; i < ab.nd; i++)
        ab.dims[i] = a->dims[i];
    for (int i = 0; i < bb.nd; i++)
        bb.dims[i] = bm->dims[i];
    struct ox_tensor *ts[2] = {&ab, &bb};
    int bnd;
    int64_t bd[MQ_ONNX_MAX_DIMS], dims[MQ_ONNX_MAX_DIMS];
    if ((rc = ox_bcast(c, ts, 2, &bnd, bd)) < 0)
        return rc;
    int nd = 0;
    for (int i = 0; i < bnd; i++)
        dims[nd++] = bd[i];
    if (a->nd > 1)
        dims[nd++] = M;
    if (bm->nd > 1)
        dims[nd++] = N;
    int64_t batch = ox_prod(bd, 0, bnd);
    bool as_layer = n->layer >= 0 || (bm->nd == 2 && batch == ox_prod(ab.dims, 0, ab.nd));
    if (n->layer >= 0)
        note_layer(c, n, batch * M, 1, 0);
    if ((rc = ox_out(c, out, OX_F32, nd, dims)) <= 0)
        return rc;
    if (as_layer && bm->nd == 2) { /* one matmul of all rows against the constant B */
        float *rows = NULL;
        int64_t g, KK = K, NN = N;
        if ((rc = node_rows(c, n, bm, &g, &KK, &NN, &rows)) < 0)
            return rc;
        rc = layer_matmul(c, n, rows, K, N, 0, a->data, batch * M, out->data);
        free(rows);
        return rc;
    }
    struct ox_biter it;
    ox_biter_init(&it, ts, 2, bnd, bd);
    const float *A = a->data, *Bd = bm->data;
    float *Y = out->data;
    for (int64_t bi = 0; bi < batch; bi++, ox_biter_next(&it)) {
        const float *ap = A + it.off[0] * M * K, *bp = Bd + it.off[1] * K * N;
        float *yp = Y + bi * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0.0;
                for (int64_t k = 0; k < K; k++)
                    acc += (double)ap[i * K + k] * bp[k * N + j];
                yp[i * N + j] = (float)acc;
            }
    }
    return MQ_OK;
}

/* ---- Einsum: the two-operand forms that are a (batched) matmul ------------------------------ */

#define EIN_MAX (2 * MQ_ONNX_MAX_DIMS) /* labels in one term, ellipsis expanded */

/* A parsed two-operand equation. Labels are letters; the dims an ellipsis covers get labels
 * '0' + (position from the right), so that operands' ellipses align as numpy broadcasts
 * them. Every label is one of: batch (in A, B and the output), contracted (A and B, not the
 * output), A-free (A and the output), B-free (B and the output). */
struct einsum {
    char eq[256];
    char t[3][EIN_MAX + 1]; /* A, B, output */
    int len[3];
    char batch[EIN_MAX + 1], afree[EIN_MAX + 1], bfree[EIN_MAX + 1], contr[EIN_MAX + 1];
    char err[600];          /* why the parse failed, for the caller to report */
};

static int ein_err(struct einsum *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ein_err(struct einsum *e, int code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(e->err, sizeof(e->err), "equation '%s': %s", e->eq, msg);
    return code;
}

static bool ein_has(const char *s, char l) { return l && strchr(s, l) != NULL; }

/* dst = a b c: label sets that partition one term, so they fit in EIN_MAX. */
static void ein_cat(char *dst, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    MQ_ASSERT(la + lb + lc <= EIN_MAX);
    memcpy(dst, a, la);
    memcpy(dst + la, b, lb);
    memcpy(dst + la + lb, c, lc + 1);
}
static bool ein_letter(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }

/* Expands term p[0..n) into out: `rank` the operand's rank (-1: unknown, the ellipsis
 * then covers no dims); *ell the ellipsis's length, -1 without one. */
static int ein_term(struct einsum *e, const char *p, size_t n, int rank, char *out, int *len, int *ell)
{
    int explicit = 0, k = 0;
    *ell = -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.') {
            if (*ell >= 0 || i + 2 >= n || p[i + 1] != '.' || p[i + 2] != '.')
                return ein_err(e, MQ_EFORMAT, "a stray '.'");
            *ell = 0;
            i += 2;
        } else if (ein_letter(p[i])) {
            explicit++;
        } else if (p[i] != ' ') {
            return ein_err(e, MQ_EFORMAT, "character '%c'", p[i]);
        }
    }
    if (*ell >= 0)
        *ell = rank < 0 ? 0 : rank - explicit;
    if (*ell < -1 || (*ell < 0 && rank >= 0 && explicit != rank) || explicit + (*ell > 0 ? *ell : 0) > EIN_MAX)
        return ein_err(e, MQ_EFORMAT, "a term of %d labels for an operand of rank %d", explicit, rank);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.') {
            for (int j = 0; j < *ell; j++)
                out[k++] = (char)('0' + (*ell - 1 - j));
            i += 2;
        } else if (p[i] != ' ') {
            if (memchr(out, p[i], (size_t)k))
                return ein_err(e, MQ_EUNSUPPORTED, "label '%c' twice in one term (a diagonal)", p[i]);
            out[k++] = p[i];
        }
    }
    out[k] = '\0';
    *len = k;
    return MQ_OK;
}

/* Parses the node's equation for operands of ranks ra, rb (-1: unknown) and classifies its
 * labels; MQ_EUNSUPPORTED for forms that are not a matmul, the reason in e->err. */
static int ein_parse(const struct ox_node *n, int ra, int rb, struct einsum *e)
{
    memset(e, 0, sizeof(*e));
    const struct mq_onnx_attr *a = ox_attr(n, "equation");
    if (!a || a->s.n == 0 || a->s.n >= sizeof(e->eq)) {
        snprintf(e->err, sizeof(e->err), "equation missing or longer than %zu characters", sizeof(e->eq) - 1);
        return MQ_EFORMAT;
    }
    ox_attr_str(n, "equation", "", e->eq, sizeof(e->eq));
    const char *eq = e->eq, *arrow = strstr(eq, "->"), *comma = strchr(eq, ',');
    size_t lhs = arrow ? (size_t)(arrow - eq) : strlen(eq);
    if (n->n_in != 2 || !comma || (size_t)(comma - eq) > lhs || memchr(comma + 1, ',', lhs - (size_t)(comma - eq) - 1))
        return ein_err(e, MQ_EUNSUPPORTED, "mixq runs Einsum of two operands that is a matmul");
    int ell[3], rc;
    if ((rc = ein_term(e, eq, (size_t)(comma - eq), ra, e->t[0], &e->len[0], &ell[0])) < 0 ||
        (rc = ein_term(e, comma + 1, lhs - (size_t)(comma - eq) - 1, rb, e->t[1], &e->len[1], &ell[1])) < 0)
        return rc;
    int eo = ell[0] > ell[1] ? ell[0] : ell[1];
    if (arrow) {
        /* the output's ellipsis covers as many dims as the longer operand's */
        if ((rc = ein_term(e, arrow + 2, strlen(arrow + 2), -1, e->t[2], &e->len[2], &ell[2])) < 0)
            return rc;
        if (ell[2] < 0 && eo > 0)
            return ein_err(e, MQ_EUNSUPPORTED, "an ellipsis summed away");
        if (ell[2] >= 0 && eo > 0) {
            const char *p = arrow + 2;
            int k = 0;
            for (; *p; p++) {
                if (k + eo > EIN_MAX)
                    return ein_err(e, MQ_EFORMAT, "output of too many labels");
                if (*p == '.') {
                    for (int j = 0; j < eo; j++)
                        e->t[2][k++] = (char)('0' + (eo - 1 - j));
                    p += 2;
                } else if (*p != ' ') {
                    e->t[2][k++] = *p;
                }
            }
            e->t[2][k] = '\0';
            e->len[2] = k;
        }
    } else { /* implicit: the ellipsis, then the labels seen once, in alphabetical order */
        int k = 0;
        for (int j = 0; j < eo; j++)
            e->t[2][k++] = (char)('0' + (eo - 1 - j));
        for (int ch = 'A'; ch <= 'z'; ch++)
            if (ein_letter((char)ch) && ein_has(e->t[0], (char)ch) + ein_has(e->t[1], (char)ch) == 1)
                e->t[2][k++] = (char)ch;
        e->t[2][k] = '\0';
        e->len[2] = k;
    }
    const char *o = e->t[2];
    if (e->len[2] > MQ_ONNX_MAX_DIMS)
        return ein_err(e, MQ_EUNSUPPORTED, "output of rank %d", e->len[2]);
    for (int i = 0; i < e->len[2]; i++) {
        if (memchr(o, o[i], (size_t)i))
            return ein_err(e, MQ_EFORMAT, "output label '%c' twice", o[i]);
        if (!ein_has(e->t[0], o[i]) && !ein_has(e->t[1], o[i]))
            return ein_err(e, MQ_EFORMAT, "output label '%c' in no operand", o[i]);
    }
    int nb = 0, na = 0, nf = 0, nk = 0;
    for (int i = 0; i < e->len[2]; i++) { /* batch and free labels in output order */
        bool in_a = ein_has(e->t[0], o[i]), in_b = ein_has(e->t[1], o[i]);
        if (in_a && in_b)
            e->batch[nb++] = o[i];
        else if (in_a)
            e->afree[na++] = o[i];
        else
            e->bfree[nf++] = o[i];
    }
    for (int i = 0; i < e->len[0]; i++) { /* contracted labels in A's order */
        char l = e->t[0][i];
        if (ein_has(o, l))
            continue;
        if (!ein_has(e->t[1], l))
            return ein_err(e, MQ_EUNSUPPORTED, "label '%c' summed over one operand (not a matmul)", l);
        e->contr[nk++] = l;
    }
    for (int i = 0; i < e->len[1]; i++)
        if (!ein_has(o, e->t[1][i]) && !ein_has(e->t[0], e->t[1][i]))
            return ein_err(e, MQ_EUNSUPPORTED, "label '%c' summed over one operand (not a matmul)", e->t[1][i]);
    return MQ_OK;
}

/* perm[d]: the axis of term t that label s[d] is. */
static void ein_perm(const char *t, const char *s, int *perm)
{
    for (int d = 0; s[d]; d++)
        perm[d] = (int)(strchr(t, s[d]) - t);
}

/* y = x (rank nd, dims) with its axes permuted: y's axis d is x's perm[d]. */
static void permute_f32(const float *x, int nd, const int64_t *dims, const int *perm, float *y)
{
    int64_t xs[EIN_MAX], st[EIN_MAX], v[EIN_MAX], idx[EIN_MAX] = {0}, s = 1, off = 0, total = 1;
    for (int d = nd - 1; d >= 0; d--) {
        xs[d] = s;
        s *= dims[d];
    }
    for (int d = 0; d < nd; d++) {
        st[d] = xs[perm[d]];
        v[d] = dims[perm[d]];
        total *= v[d];
    }
    for (int64_t i = 0; i < total; i++) {
        y[i] = x[off];
        for (int d = nd - 1; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < v[d])
                break;
            off -= st[d] * v[d];
            idx[d] = 0;
        }
    }
}

static bool perm_is_identity(const int *perm, int nd)
{
    for (int d = 0; d < nd; d++)
        if (perm[d] != d)
            return false;
    return true;
}

/* A constant B makes a layer when it has no batch labels and no ellipsis: its rows are B
 * seen as [B-free labels][contracted labels]. */
bool ox_einsum_layer_ok(const struct ox_node *n, const struct ox_tensor *w)
{
    struct einsum e;
    if (w->type != OX_F32 || !w->data || w->nd < 1)
        return false;
    return ein_parse(n, -1, w->nd, &e) == MQ_OK && e.batch[0] == '\0' && e.bfree[0] != '\0' && e.contr[0] != '\0' && !strchr(e.t[1], '0');
}

static int einsum_rows(const struct ox_node *n, const struct ox_tensor *w, int64_t *K, int64_t *N, float **rows)
{
    struct einsum e;
    if (!ox_einsum_layer_ok(n, w) || ein_parse(n, -1, w->nd, &e) < 0)
        return MQ_EUNSUPPORTED;
    char order[EIN_MAX + 1];
    int perm[EIN_MAX];
    ein_cat(order, e.bfree, e.contr, "");
    ein_perm(e.t[1], order, perm);
    *N = 1, *K = 1;
    for (int d = 0; e.bfree[d]; d++)
        *N *= w->dims[perm[d]];
    for (int d = (int)strlen(e.bfree); order[d]; d++)
        *K *= w->dims[perm[d]];
    if (*K < 1 || *N < 1)
        return MQ_EUNSUPPORTED;
    float *r = malloc((size_t)(*N * *K) * sizeof(float));
    if (!r)
        return mq_error(MQ_ENOMEM, "cannot allocate weights of %" PRId64 " values", *N * *K);
    permute_f32(w->data, w->nd, w->dims, perm, r);
    *rows = r;
    return MQ_OK;
}

int ox_op_einsum(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    struct einsum e;
    for (int k = 0; k < n->n_in; k++)
        if ((rc = ox_need_f32(c, in[k], "Inputs")) < 0)
            return rc;
    if ((rc = ein_parse(n, in[0]->nd, n->n_in > 1 ? in[1]->nd : -1, &e)) < 0)
        return ox_fail(c, rc, "%s", e.err);
    const struct ox_tensor *a = in[0], *b = in[1];
    int64_t size[128];
    for (int i = 0; i < 128; i++)
        size[i] = -1;
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < e.len[k]; d++) {
            unsigned char l = (unsigned char)e.t[k][d];
            int64_t v = in[k]->dims[d];
            if (size[l] >= 0 && size[l] != v)
                return ox_fail(c, MQ_EFORMAT, "equation '%s': label '%c' is %" PRId64 " in one operand and %" PRId64
                               " in the other", e.eq, l < '8' ? '.' : l, size[l], v);
            size[l] = v;
        }
    int64_t dims[MQ_ONNX_MAX_DIMS], B = 1, M = 1, N = 1, K = 1;
    for (int d = 0; d < e.len[2]; d++)
        dims[d] = size[(unsigned char)e.t[2][d]];
    for (const char *p = e.batch; *p; p++)
        B *= size[(unsigned char)*p];
    for (const char *p = e.afree; *p; p++)
        M *= size[(unsigned char)*p];
    for (const char *p = e.bfree; *p; p++)
        N *= size[(unsigned char)*p];
    for (const char *p = e.contr; *p; p++)
        K *= size[(unsigned char)*p];
    /* A as [batch][A-free][contracted], B as [batch][B-free][contracted]: rows per batch */
    char oa[EIN_MAX + 1], ob[EIN_MAX + 1], oy[EIN_MAX + 1];
    int pa[EIN_MAX], pb[EIN_MAX], py[EIN_MAX];
    ein_cat(oa, e.batch, e.afree, e.contr);
    ein_cat(ob, e.batch, e.bfree, e.contr);
    ein_cat(oy, e.batch, e.afree, e.bfree);
    ein_perm(e.t[0], oa, pa);
    ein_perm(e.t[1], ob, pb);
    ein_perm(oy, e.t[2], py); /* the output's axis d is [batch, A-free, B-free]'s py[d] */
    bool layer = n->layer >= 0;
    if (layer)
        note_layer(c, n, M, 1, (uint64_t)(M * K + M * N) * 4);
    if ((rc = ox_out(c, out, OX_F32, e.len[2], dims)) <= 0)
        return rc;
    bool ia = perm_is_identity(pa, e.len[0]), iy = perm_is_identity(py, e.len[2]);
    float *xa = NULL, *xb = NULL, *ty = NULL;
    if ((!ia && !(xa = malloc((size_t)(a->n ? a->n : 1) * sizeof(float)))) ||
        (!layer && !(xb = malloc((size_t)(b->n ? b->n : 1) * sizeof(float)))) ||
        (!iy && !(ty = malloc((size_t)(out->n ? out->n : 1) * sizeof(float))))) {
        rc = ox_fail(c, MQ_ENOMEM, "cannot allocate Einsum operands");
        goto done;
    }
    const float *A = a->data;
    if (!ia) {
        permute_f32(a->data, a->nd, a->dims, pa, xa);
        A = xa;
    }
    float *Y = iy ? out->data : ty;
    if (layer) {
        MQ_ASSERT(c->g->layers[n->layer].K == K && c->g->layers[n->layer].N == N);
        if ((rc = layer_matmul(c, n, NULL, K, N, 0, A, M, Y)) < 0)
            goto done;
    } else {
        permute_f32(b->data, b->nd, b->dims, pb, xb);
        for (int64_t bi = 0; bi < B; bi++)
            host_matmul(xb + bi * N * K, K, N, A + bi * M * K, M, Y + bi * M * N);
    }
    if (!iy) {
        int64_t ydims[MQ_ONNX_MAX_DIMS];
        for (int d = 0; oy[d]; d++)
            ydims[d] = size[(unsigned char)oy[d]];
        permute_f32(ty, e.len[2], ydims, py, out->data);
    }
    rc = MQ_OK;
done:
    free(xa);
    free(xb);
    free(ty);
    return rc;
}

/* ---- LSTM and GRU ------------------------------------------------------------------------- */

static float rnn_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static const struct ox_tensor *rnn_opt(const struct ox_node *n, struct ox_tensor *const *in, int k)
{
    return n->n_in > k ? in[k] : NULL;
}

/* One LSTM (gates i, o, f, c) or GRU (z, r, h) over the sequence, forward, reverse or both
 * ways, with the ONNX defaults for activations (sigmoid, tanh, tanh). X W^T for all steps
 * is one matmul per direction (layer W, one group per direction); H R^T one per step (layer
 * R), two for a GRU without linear_before_reset, whose h gate multiplies (r . H) by R. */
static int rnn(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out, bool lstm)
{
    int rc;
    const int64_t G = lstm ? 4 : 3;
    if ((rc = ox_need_f32(c, in[0], "X")) < 0 || (rc = ox_need_f32(c, in[1], "W")) < 0 ||
        (rc = ox_need_f32(c, in[2], "R")) < 0)
        return rc;
    const struct ox_tensor *x = in[0], *w = in[1], *r = in[2], *b = rnn_opt(n, in, 3), *sl = rnn_opt(n, in, 4),
                           *h0 = rnn_opt(n, in, 5), *c0 = lstm ? rnn_opt(n, in, 6) : NULL,
                           *p = lstm ? rnn_opt(n, in, 7) : NULL;
    char buf[32];
    const char *dir = ox_attr_str(n, "direction", "forward", buf, sizeof(buf));
    int64_t D = !strcmp(dir, "forward") || !strcmp(dir, "reverse") ? 1 : !strcmp(dir, "bidirectional") ? 2 : 0;
    if (!D)
        return ox_fail(c, MQ_EFORMAT, "direction '%s' (want forward, reverse or bidirectional)", dir);
    int64_t layout = ox_attr_int(n, "layout", 0);
    if (layout != 0 && layout != 1)
        return ox_fail(c, MQ_EFORMAT, "layout %" PRId64 " (want 0 or 1)", layout);
    if (ox_attr(n, "activations") || ox_attr(n, "activation_alpha") || ox_attr(n, "activation_beta"))
        return ox_fail(c, MQ_EUNSUPPORTED, "activations given (mixq runs the default sigmoid and tanh only)");
    if (x->nd != 3 || w->nd != 3 || r->nd != 3)
        return ox_fail(c, MQ_EFORMAT, "X, W and R of ranks %d, %d, %d (want 3)", x->nd, w->nd, r->nd);
    int64_t S = x->dims[layout ? 1 : 0], Bt = x->dims[layout ? 0 : 1], I = x->dims[2], H = w->dims[1] / G;
    const struct mq_onnx_attr *hs = ox_attr(n, "hidden_size");
    if (H < 1 || w->dims[0] != D || w->dims[1] != G * H || w->dims[2] != I || (hs && hs->i != H) || r->dims[0] != D ||
        r->dims[1] != G * H || r->dims[2] != H)
        return ox_fail(c, MQ_EFORMAT, "W [%" PRId64 ", %" PRId64 ", %" PRId64 "] and R [%" PRId64 ", %" PRId64 ", %" PRId64
                       "] for %" PRId64 " direction(s), %" PRId64 " inputs and hidden size %" PRId64, w->dims[0],
                       w->dims[1], w->dims[2], r->dims[0], r->dims[1], r->dims[2], D, I, hs ? hs->i : H);
    if ((b && (b->type != OX_F32 || b->n != D * 2 * G * H)) || (h0 && (h0->type != OX_F32 || h0->n != D * Bt * H)) ||
        (c0 && (c0->type != OX_F32 || c0->n != D * Bt * H)) || (p && (p->type != OX_F32 || p->n != D * 3 * H)))
        return ox_fail(c, MQ_EFORMAT, "B, initial_h, initial_c or P not of %" PRId64 " direction(s) x hidden size %" PRId64,
                       D, H);
    if (sl) {
        if (sl->type == OX_F32 || sl->n != Bt)
            return ox_fail(c, MQ_EFORMAT, "sequence_lens not %" PRId64 " integers", Bt);
        for (int64_t i = 0; sl->data && i < Bt; i++)
            if (((const int64_t *)sl->data)[i] != S)
                return ox_fail(c, MQ_EUNSUPPORTED, "sequence_lens shorter than the sequence (%" PRId64 " of %" PRId64 ")",
                               ((const int64_t *)sl->data)[i], S);
        if (!sl->data && !c->shape_only)
            return ox_fail(c, MQ_EUNSUPPORTED, "sequence_lens known only at run time");
    }
    const struct mq_onnx_attr *ca = ox_attr(n, "clip");
    float clip = ca ? ca->f : 0.0f;
    if (ca && !(clip > 0.0f))
        return ox_fail(c, MQ_EFORMAT, "clip %g", (double)clip);
    bool input_forget = lstm && ox_attr_int(n, "input_forget", 0), lbr = !lstm && ox_attr_int(n, "linear_before_reset", 0);
    int lw = n->layer, lr = n->layer >= 0 ? n->layer + 1 : -1;
    int64_t GH = G * H, r_calls = lstm || lbr ? 1 : 2;
    note_layer_at(c, lw, S * Bt, D, (uint64_t)(S * Bt * (I + GH)) * 4);
    note_layer_at(c, lr, Bt, S * D * r_calls, 0);
    int64_t ydims[4] = {S, D, Bt, H}, hdims[3] = {D, Bt, H};
    if (layout)
        ydims[0] = Bt, ydims[1] = S, ydims[2] = D, hdims[0] = Bt, hdims[1] = D;
    int got = 1;
    for (int k = 0; k < n->n_out; k++) {
        if ((rc = ox_out(c, &out[k], OX_F32, k == 0 ? 4 : 3, k == 0 ? ydims : hdims)) < 0)
            return rc;
        got &= rc > 0;
    }
    if (!got)
        return MQ_OK;
    float *wrows = NULL, *rrows = NULL, *xt = NULL, *xw = NULL, *hr = NULL, *hr2 = NULL, *hp = NULL, *cp = NULL,
          *zr = NULL;
    enum ox_layer_kind kind;
    int64_t g_, K_, N_;
    if (lw < 0 && ((rc = ox_weight_rows(n, n->op, w, &kind, &g_, &K_, &N_, &wrows)) < 0 ||
                   (rc = ox_weight_rows(n, n->op, r, &kind, &g_, &K_, &N_, &rrows)) < 0)) {
        rc = ox_fail(c, rc, "weights of W or R");
        goto done;
    }
    xt = malloc((size_t)(S * Bt * I + 1) * sizeof(float));
    xw = malloc((size_t)(S * Bt * GH + 1) * sizeof(float));
    hr = malloc((size_t)(Bt * GH) * sizeof(float));
    hr2 = malloc((size_t)(Bt * GH) * sizeof(float));
    hp = malloc((size_t)(2 * Bt * H) * sizeof(float)); /* H, then r . H (GRU) */
    cp = malloc((size_t)(Bt * H) * sizeof(float));
    zr = malloc((size_t)(2 * Bt * H) * sizeof(float)); /* GRU: z, r of this step */
    if (!xt || !xw || !hr || !hr2 || !hp || !cp || !zr) {
        rc = ox_fail(c, MQ_ENOMEM, "cannot allocate the recurrence's scratch");
        goto done;
    }
    /* X as [S][B][I], step-major */
    for (int64_t t = 0; t < S; t++)
        for (int64_t bi = 0; bi < Bt; bi++)
            memcpy(xt + (t * Bt + bi) * I, (const float *)x->data + (layout ? bi * S + t : t * Bt + bi) * I,
                   (size_t)I * sizeof(float));
    float *Y = n->n_out > 0 ? out[0].data : NULL, *Yh = n->n_out > 1 ? out[1].data : NULL,
          *Yc = n->n_out > 2 ? out[2].data : NULL;
#define CLIP(v) (ca ? fminf(fmaxf((v), -clip), clip) : (v))
    for (int64_t d = 0; d < D; d++) {
        bool rev = D == 2 ? d == 1 : dir[0] == 'r';
        const float *wb = b ? (const float *)b->data + d * 2 * GH : NULL, *rb = wb ? wb + GH : NULL;
        const float *pp = p ? (const float *)p->data + d * 3 * H : NULL;
        if ((rc = layer_matmul_at(c, lw, wrows, I, GH, d, xt, S * Bt, xw)) < 0)
            goto done;
        for (int64_t i = 0; i < Bt * H; i++) {
            int64_t bi = i / H, j = i % H, off = layout ? (bi * D + d) * H + j : (d * Bt + bi) * H + j;
            hp[i] = h0 ? ((const float *)h0->data)[off] : 0.0f;
            cp[i] = c0 ? ((const float *)c0->data)[off] : 0.0f;
        }
        for (int64_t step = 0; step < S; step++) {
            int64_t t = rev ? S - 1 - step : step;
            if ((rc = layer_matmul_at(c, lr, rrows, H, GH, d, hp, Bt, hr)) < 0)
                goto done;
            for (int64_t bi = 0; bi < Bt; bi++) {
                const float *xg = xw + (t * Bt + bi) * GH, *hg = hr + bi * GH;
                for (int64_t j = 0; j < H; j++) {
                    float pre[4];
                    for (int64_t k = 0; k < G; k++)
                        pre[k] = xg[k * H + j] + hg[k * H + j] + (wb ? wb[k * H + j] + rb[k * H + j] : 0.0f);
                    float *h = &hp[bi * H + j], *cc = &cp[bi * H + j];
                    if (lstm) { /* i o f c; peepholes P: i o f */
                        float ig = rnn_sigmoid(CLIP(pre[0] + (pp ? pp[j] * *cc : 0.0f)));
                        float fg = input_forget ? 1.0f - ig : rnn_sigmoid(CLIP(pre[2] + (pp ? pp[2 * H + j] * *cc : 0.0f)));
                        *cc = fg * *cc + ig * tanhf(CLIP(pre[3]));
                        float og = rnn_sigmoid(CLIP(pre[1] + (pp ? pp[H + j] * *cc : 0.0f)));
                        *h = og * tanhf(*cc);
                    } else { /* z r h: the h gate waits for r . H (unless linear_before_reset) */
                        float z = rnn_sigmoid(CLIP(pre[0])), rg = rnn_sigmoid(CLIP(pre[1]));
                        zr[bi * H + j] = z;
                        zr[Bt * H + bi * H + j] = rg;
                        hp[Bt * H + bi * H + j] = rg * *h;
                    }
                }
            }
            if (!lstm) {
                if (!lbr && (rc = layer_matmul_at(c, lr, rrows, H, GH, d, hp + Bt * H, Bt, hr2)) < 0)
                    goto done;
                for (int64_t bi = 0; bi < Bt; bi++)
                    for (int64_t j = 0; j < H; j++) {
                        int64_t i = bi * H + j;
                        float xh = xw[(t * Bt + bi) * GH + 2 * H + j] + (wb ? wb[2 * H + j] : 0.0f);
                        float rbh = rb ? rb[2 * H + j] : 0.0f, rg = zr[Bt * H + i], z = zr[i];
                        float hh = lbr ? xh + rg * (hr[bi * GH + 2 * H + j] + rbh) : xh + hr2[bi * GH + 2 * H + j] + rbh;
                        hp[i] = (1.0f - z) * tanhf(CLIP(hh)) + z * hp[i];
                    }
            }
            for (int64_t i = 0; Y && i < Bt * H; i++) {
                int64_t bi = i / H, j = i % H;
                Y[layout ? ((bi * S + t) * D + d) * H + j : ((t * D + d) * Bt + bi) * H + j] = hp[i];
            }
        }
        for (int64_t i = 0; i < Bt * H; i++) {
            int64_t bi = i / H, j = i % H, off = layout ? (bi * D + d) * H + j : (d * Bt + bi) * H + j;
            if (Yh)
                Yh[off] = hp[i];
            if (Yc)
                Yc[off] = cp[i];
        }
    }
#undef CLIP
    rc = MQ_OK;
done:
    free(wrows);
    free(rrows);
    free(xt);
    free(xw);
    free(hr);
    free(hr2);
    free(hp);
    free(cp);
    free(zr);
    return rc;
}

int ox_op_lstm(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return rnn(c, n, in, out, true);
}
int ox_op_gru(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return rnn(c, n, in, out, false);
}
