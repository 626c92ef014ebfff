/* onnx/onnx_ops_shape.c - the ONNX shape ops (Reshape, Flatten, Squeeze, Unsqueeze,
 * Transpose, Concat, Split, Slice, Gather, Expand, Pad, DepthToSpace, SpaceToDepth, Tile),
 * reductions, ArgMax, TopK, Softmax and the normalizations, on host tensors; listed in onnx_ops.c's table, which says how ops check
 * their inputs (onnx/onnx_internal.h). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "onnx/onnx_internal.h"

/* ---- shape ops ------------------------------------------------------------------------- */

int ox_op_reshape(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int64_t dims[MQ_ONNX_MAX_DIMS];
    int nd, rc;
    if ((rc = ox_need(c, in[0], "data")) < 0)
        return rc;
    const int64_t *attr_shape = NULL;
    int64_t attr_n;
    if (n->n_in < 2 && (attr_shape = ox_attr_ints(n, "shape", &attr_n)) != NULL) { /* opset < 5 */
        if (attr_n > MQ_ONNX_MAX_DIMS)
            return ox_fail(c, MQ_EUNSUPPORTED, "shape of %" PRId64 " dims", attr_n);
        nd = (int)attr_n;
        memcpy(dims, attr_shape, (size_t)nd * sizeof(*dims));
    } else if ((rc = ox_need(c, n->n_in > 1 ? in[1] : NULL, "shape")) < 0 ||
               (rc = ox_input_ints(c, in[1], "shape", dims, MQ_ONNX_MAX_DIMS, &nd)) < 0) {
        return rc;
    }
    bool allowzero = ox_attr_int(n, "allowzero", 0) != 0;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] == 0 && !allowzero) {
            if (i >= in[0]->nd)
                return ox_fail(c, MQ_EFORMAT, "shape copies dimension %d of a rank-%d input", i, in[0]->nd);
            dims[i] = in[0]->dims[i];
        }
        if (dims[i] == -1) {
            if (infer >= 0)
                return ox_fail(c, MQ_EFORMAT, "shape has two -1 dimensions");
            infer = i;
        } else if (dims[i] < 0) {
            return ox_fail(c, MQ_EFORMAT, "shape has dimension %" PRId64, dims[i]);
        } else {
            if (dims[i] > 0 && known > OX_MAX_ELEMS / dims[i])
                return ox_fail(c, MQ_EFORMAT, "shape is absurd");
            known *= dims[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || in[0]->n % known)
            return ox_fail(c, MQ_EFORMAT, "cannot infer the -1 dimension: %" PRId64 " elements into parts of %" PRId64,
                           in[0]->n, known);
        dims[infer] = in[0]->n / known;
        known *= dims[infer];
    }
    if (known != in[0]->n)
        return ox_fail(c, MQ_EFORMAT, "reshape of %" PRId64 " elements to %" PRId64, in[0]->n, known);
    return ox_copy_tensor(c, in[0], out, nd, dims);
}

int ox_op_flatten(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = ox_need(c, in[0], "input"), axis = 0;
    if (rc < 0)
        return rc;
    int64_t a = ox_attr_int(n, "axis", 1);
    if (a == in[0]->nd)
        axis = in[0]->nd;
    else if ((rc = ox_norm_axis(c, a, in[0]->nd, &axis)) < 0)
        return rc;
    int64_t dims[2] = {ox_prod(in[0]->dims, 0, axis), ox_prod(in[0]->dims, axis, in[0]->nd)};
    return ox_copy_tensor(c, in[0], out, 2, dims);
}

/* Axes from the attribute (older opsets) or the second input. */
static int get_axes(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, int input, int64_t *axes,
                    int *n_axes)
{
    int64_t cnt;
    const int64_t *a = ox_attr_ints(n, "axes", &cnt);
    if (a) {
        if (cnt > MQ_ONNX_MAX_DIMS)
            return ox_fail(c, MQ_EFORMAT, "%" PRId64 " axes", cnt);
        memcpy(axes, a, (size_t)cnt * sizeof(*axes));
        *n_axes = (int)cnt;
        return MQ_OK;
    }
    if (n->n_in > input && in[input])
        return ox_input_ints(c, in[input], "axes", axes, MQ_ONNX_MAX_DIMS, n_axes);
    *n_axes = -1; /* absent */
    return MQ_OK;
}

int ox_op_squeeze(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int64_t axes[MQ_ONNX_MAX_DIMS], dims[MQ_ONNX_MAX_DIMS];
    int na, rc;
    if ((rc = ox_need(c, in[0], "data")) < 0 || (rc = get_axes(c, n, in, 1, axes, &na)) < 0)
        return rc;
    bool drop[MQ_ONNX_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) {
        int ax = 0;
        if ((rc = ox_norm_axis(c, axes[i], in[0]->nd, &ax)) < 0)
            return rc;
        if (in[0]->dims[ax] != 1)
            return ox_fail(c, MQ_EFORMAT, "squeezes axis %d of size %" PRId64, ax, in[0]->dims[ax]);
        drop[ax] = true;
    }
    int nd = 0;
    for (int i = 0; i < in[0]->nd; i++)
        if (!(na < 0 ? in[0]->dims[i] == 1 : drop[i]))
            dims[nd++] = in[0]->dims[i];
    return ox_copy_tensor(c, in[0], out, nd, dims);
}

int ox_op_unsqueeze(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int64_t axes[MQ_ONNX_MAX_DIMS], dims[MQ_ONNX_MAX_DIMS];
    int na, rc;
    if ((rc = ox_need(c, in[0], "data")) < 0 || (rc = get_axes(c, n, in, 1, axes, &na)) < 0)
        return rc;
    if (na < 0)
        return ox_fail(c, MQ_EFORMAT, "no axes");
    int nd = in[0]->nd + na;
    if (nd > MQ_ONNX_MAX_DIMS)
        return ox_fail(c, MQ_EUNSUPPORTED, "output of rank %d", nd);
    bool ins[MQ_ONNX_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) {
        int ax = 0;
        if ((rc = ox_norm_axis(c, axes[i], nd, &ax)) < 0)
            return rc;
        if (ins[ax])
            return ox_fail(c, MQ_EFORMAT, "axis %d given twice", ax);
        ins[ax] = true;
    }
    for (int i = 0, j = 0; i < nd; i++)
        dims[i] = ins[i] ? 1 : in[0]->dims[j++];
    return ox_copy_tensor(c, in[0], out, nd, dims);
}

int ox_op_transpose(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc = ox_need(c, in[0], "data");
    if (rc < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    int nd = x->nd;
    int64_t perm[MQ_ONNX_MAX_DIMS], cnt;
    const int64_t *p = ox_attr_ints(n, "perm", &cnt);
    if (p && cnt != nd)
        return ox_fail(c, MQ_EFORMAT, "perm of %" PRId64 " for rank %d", cnt, nd);
    bool seen[MQ_ONNX_MAX_DIMS] = {false};
    int64_t dims[MQ_ONNX_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        perm[i] = p ? p[i] : nd - 1 - i;
        if (perm[i] < 0 || perm[i] >= nd || seen[perm[i]])
            return ox_fail(c, MQ_EFORMAT, "perm is not a permutation");
        seen[perm[i]] = true;
        dims[i] = x->dims[perm[i]];
    }
    if ((rc = ox_out(c, out, x->type, nd, dims)) <= 0)
        return rc;
    int64_t xs[MQ_ONNX_MAX_DIMS], st[MQ_ONNX_MAX_DIMS], idx[MQ_ONNX_MAX_DIMS] = {0};
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->dims[i];
    }
    for (int i = 0; i < nd; i++)
        st[i] = xs[perm[i]];
    size_t es = ox_type_size(x->type);
    int64_t off = 0;
    for (int64_t i = 0; i < out->n; i++) {
        memcpy((char *)out->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            idx[d]++;
            off += st[d];
            if (idx[d] < dims[d])
                break;
            off -= st[d] * dims[d];
            idx[d] = 0;
        }
    }
    return MQ_OK;
}

int ox_op_concat(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = ox_need(c, in[0], "inputs")) < 0)
        return rc;
    const struct ox_tensor *a = in[0];
    if ((rc = ox_norm_axis(c, ox_attr_int(n, "axis", 0), a->nd, &axis)) < 0)
        return rc;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    memcpy(dims, a->dims, sizeof(dims));
    dims[axis] = 0;
    bool all_data = true;
    for (int k = 0; k < n->n_in; k++) {
        if ((rc = ox_need(c, in[k], "inputs")) < 0)
            return rc;
        if (in[k]->nd != a->nd || in[k]->type != a->type)
            return ox_fail(c, MQ_EFORMAT, "inputs of different ranks or types");
        for (int i = 0; i < a->nd; i++)
            if (i != axis && in[k]->dims[i] != a->dims[i])
                return ox_fail(c, MQ_EFORMAT, "inputs differ in dimension %d", i);
        dims[axis] += in[k]->dims[axis];
        all_data &= in[k]->data != NULL || in[k]->n == 0;
    }
    if (!all_data)
        c->inputs_have_data = false;
    if ((rc = ox_out(c, out, a->type, a->nd, dims)) <= 0)
        return rc;
    int64_t outer = ox_prod(dims, 0, axis), inner = ox_prod(dims, axis + 1, a->nd);
    size_t es = ox_type_size(a->type);
    char *o = out->data;
    for (int64_t i = 0; i < outer; i++)
        for (int k = 0; k < n->n_in; k++) {
            size_t chunk = (size_t)(in[k]->dims[axis] * inner) * es;
            if (chunk)
                memcpy(o, (const char *)in[k]->data + (size_t)i * chunk, chunk);
            o += chunk;
        }
    return MQ_OK;
}

int ox_op_split(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = ox_need(c, in[0], "input")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if ((rc = ox_norm_axis(c, ox_attr_int(n, "axis", 0), x->nd, &axis)) < 0)
        return rc;
    int64_t sizes[64], cnt;
    int ns = -1;
    const int64_t *sa = ox_attr_ints(n, "split", &cnt);
    if (n->n_out > 64)
        return ox_fail(c, MQ_EUNSUPPORTED, "%d outputs", n->n_out);
    if (sa) {
        if (cnt > 64)
            return ox_fail(c, MQ_EUNSUPPORTED, "%" PRId64 " parts", cnt);
        ns = (int)cnt;
        memcpy(sizes, sa, (size_t)cnt * sizeof(*sizes));
    } else if (n->n_in > 1 && in[1]) {
        if ((rc = ox_input_ints(c, in[1], "split", sizes, 64, &ns)) < 0)
            return rc;
    }
    int64_t total = x->dims[axis];
    if (ns < 0) {
        ns = n->n_out;
        int64_t part = (total + ns - 1) / ns; /* the last part may be smaller (opset 18) */
        for (int i = 0; i < ns; i++) {
            int64_t left = total - part * i;
            sizes[i] = left < part ? (left > 0 ? left : 0) : part;
        }
    }
    if (ns != n->n_out)
        return ox_fail(c, MQ_EFORMAT, "%d parts for %d outputs", ns, n->n_out);
    int64_t sum = 0;
    for (int i = 0; i < ns; i++) {
        if (sizes[i] < 0)
            return ox_fail(c, MQ_EFORMAT, "negative part");
        sum += sizes[i];
    }
    if (sum != total)
        return ox_fail(c, MQ_EFORMAT, "parts add up to %" PRId64 ", the axis has %" PRId64, sum, total);
    int64_t outer = ox_prod(x->dims, 0, axis), inner = ox_prod(x->dims, axis + 1, x->nd), start = 0;
    size_t es = ox_type_size(x->type);
    for (int k = 0; k < ns; k++) {
        int64_t dims[MQ_ONNX_MAX_DIMS];
        memcpy(dims, x->dims, sizeof(dims));
        dims[axis] = sizes[k];
        if ((rc = ox_out(c, &out[k], x->type, x->nd, dims)) < 0)
            return rc;
        if (rc > 0)
            for (int64_t i = 0; i < outer; i++)
                memcpy((char *)out[k].data + (size_t)(i * sizes[k] * inner) * es,
                       (const char *)x->data + (size_t)((i * total + start) * inner) * es,
                       (size_t)(sizes[k] * inner) * es);
        start += sizes[k];
    }
    return MQ_OK;
}

int ox_op_slice(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need(c, in[0], "data")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    int nd = x->nd;
    int64_t starts[MQ_ONNX_MAX_DIMS], ends[MQ_ONNX_MAX_DIMS], axes[MQ_ONNX_MAX_DIMS], steps[MQ_ONNX_MAX_DIMS];
    int ns, ne, na = -1, nst = -1;
    int64_t cnt;
    const int64_t *a;
    if ((a = ox_attr_ints(n, "starts", &cnt))) { /* opset < 10 */
        if (cnt > nd)
            return ox_fail(c, MQ_EFORMAT, "too many starts");
        ns = (int)cnt;
        memcpy(starts, a, (size_t)cnt * 8);
        if (!(a = ox_attr_ints(n, "ends", &cnt)) || cnt > nd)
            return ox_fail(c, MQ_EFORMAT, "ends missing or too many");
        ne = (int)cnt;
        memcpy(ends, a, (size_t)cnt * 8);
        if ((a = ox_attr_ints(n, "axes", &cnt))) {
            if (cnt > nd)
                return ox_fail(c, MQ_EFORMAT, "too many axes");
            na = (int)cnt;
            memcpy(axes, a, (size_t)cnt * 8);
        }
    } else {
        if ((rc = ox_need(c, n->n_in > 2 ? in[1] : NULL, "starts")) < 0 || (rc = ox_need(c, in[2], "ends")) < 0 ||
            (rc = ox_input_ints(c, in[1], "starts", starts, nd, &ns)) < 0 ||
            (rc = ox_input_ints(c, in[2], "ends", ends, nd, &ne)) < 0)
            return rc;
        if (n->n_in > 3 && in[3] && (rc = ox_input_ints(c, in[3], "axes", axes, nd, &na)) < 0)
            return rc;
        if (n->n_in > 4 && in[4] && (rc = ox_input_ints(c, in[4], "steps", steps, nd, &nst)) < 0)
            return rc;
    }
    if (ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return ox_fail(c, MQ_EFORMAT, "starts, ends, axes and steps differ in length");
    int64_t st[MQ_ONNX_MAX_DIMS], step[MQ_ONNX_MAX_DIMS], dims[MQ_ONNX_MAX_DIMS];
    bool seen[MQ_ONNX_MAX_DIMS] = {false};
    for (int i = 0; i < nd; i++) {
        st[i] = 0;
        step[i] = 1;
        dims[i] = x->dims[i];
    }
    for (int i = 0; i < ns; i++) {
        int ax = i;
        if (na >= 0 && (rc = ox_norm_axis(c, axes[i], nd, &ax)) < 0)
            return rc;
        if (seen[ax])
            return ox_fail(c, MQ_EFORMAT, "axis %d sliced twice", ax);
        seen[ax] = true;
        int64_t d = x->dims[ax], s = starts[i], e = ends[i], p = nst >= 0 ? steps[i] : 1;
        if (p == 0)
            return ox_fail(c, MQ_EFORMAT, "step 0");
        s = s < 0 ? s + d : s;
        e = e < 0 ? (e < -d ? -1 : e + d) : e; /* INT64_MIN-like ends stay before 0 */
        if (p > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            dims[ax] = e > s ? (e - s + p - 1) / p : 0;
        } else {
            s = s < 0 ? -1 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            dims[ax] = s > e ? (s - e - p - 1) / -p : 0;
        }
        st[ax] = s;
        step[ax] = p;
    }
    if ((rc = ox_out(c, out, x->type, nd, dims)) <= 0)
        return rc;
    int64_t xs[MQ_ONNX_MAX_DIMS], idx[MQ_ONNX_MAX_DIMS] = {0}, s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->dims[i];
    }
    size_t es = ox_type_size(x->type);
    for (int64_t i = 0; i < out->n; i++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += (st[d] + idx[d] * step[d]) * xs[d];
        memcpy((char *)out->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < dims[d])
                break;
            idx[d] = 0;
        }
    }
    return MQ_OK;
}

int ox_op_gather(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = ox_need(c, in[0], "data")) < 0 || (rc = ox_need(c, in[1], "indices")) < 0)
        return rc;
    const struct ox_tensor *x = in[0], *ix = in[1];
    if (ix->type == OX_F32)
        return ox_fail(c, MQ_EFORMAT, "float indices");
    if ((rc = ox_norm_axis(c, ox_attr_int(n, "axis", 0), x->nd, &axis)) < 0)
        return rc;
    int nd = x->nd - 1 + ix->nd;
    if (nd > MQ_ONNX_MAX_DIMS)
        return ox_fail(c, MQ_EUNSUPPORTED, "output of rank %d", nd);
    int64_t dims[MQ_ONNX_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < axis; i++)
        dims[k++] = x->dims[i];
    for (int i = 0; i < ix->nd; i++)
        dims[k++] = ix->dims[i];
    for (int i = axis + 1; i < x->nd; i++)
        dims[k++] = x->dims[i];
    if (!ix->data)
        c->inputs_have_data = false;
    if ((rc = ox_out(c, out, x->type, nd, dims)) <= 0)
        return rc;
    int64_t outer = ox_prod(x->dims, 0, axis), inner = ox_prod(x->dims, axis + 1, x->nd), d = x->dims[axis];
    size_t es = ox_type_size(x->type);
    const int64_t *idx = ix->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ix->n; j++) {
            int64_t i = idx[j] < 0 ? idx[j] + d : idx[j];
            if (i < 0 || i >= d) {
                ox_tensor_release(out);
                return ox_fail(c, MQ_EFORMAT, "index %" PRId64 " outside 0..%" PRId64, idx[j], d - 1);
            }
            memcpy((char *)out->data + (size_t)((o * ix->n + j) * inner) * es,
                   (const char *)x->data + (size_t)((o * d + i) * inner) * es, (size_t)inner * es);
        }
    return MQ_OK;
}

int ox_op_expand(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int64_t shp[MQ_ONNX_MAX_DIMS];
    int ns, rc;
    if ((rc = ox_need(c, in[0], "input")) < 0 || (rc = ox_need(c, in[1], "shape")) < 0 ||
        (rc = ox_input_ints(c, in[1], "shape", shp, MQ_ONNX_MAX_DIMS, &ns)) < 0)
        return rc;
    struct ox_tensor s = {.type = OX_F32, .nd = ns, .n = 1};
    memcpy(s.dims, shp, (size_t)ns * sizeof(*shp));
    struct ox_tensor *ts[2] = {in[0], &s};
    int nd;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    if ((rc = ox_bcast(c, ts, 2, &nd, dims)) < 0 || (rc = ox_out(c, out, in[0]->type, nd, dims)) <= 0)
        return rc;
    struct ox_biter it;
    ox_biter_init(&it, in, 1, nd, dims);
    size_t es = ox_type_size(in[0]->type);
    for (int64_t i = 0; i < out->n; i++, ox_biter_next(&it))
        memcpy((char *)out->data + (size_t)i * es, (const char *)in[0]->data + (size_t)it.off[0] * es, es);
    (void)n;
    return MQ_OK;
}

int ox_op_pad(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need(c, in[0], "data")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    int nd = x->nd, np;
    int64_t pads[2 * MQ_ONNX_MAX_DIMS], axes[MQ_ONNX_MAX_DIMS], cnt;
    const int64_t *pa = ox_attr_ints(n, "pads", &cnt);
    float value = ox_attr_float(n, "value", 0.0f);
    if (pa) {
        if (cnt > 2 * MQ_ONNX_MAX_DIMS)
            return ox_fail(c, MQ_EFORMAT, "too many pads");
        np = (int)cnt;
        memcpy(pads, pa, (size_t)cnt * 8);
    } else {
        if ((rc = ox_need(c, n->n_in > 1 ? in[1] : NULL, "pads")) < 0 ||
            (rc = ox_input_ints(c, in[1], "pads", pads, 2 * MQ_ONNX_MAX_DIMS, &np)) < 0)
            return rc;
        if (n->n_in > 2 && in[2] && in[2]->n == 1 && in[2]->data)
            value = ox_fget(in[2], 0);
    }
    int na = nd;
    for (int i = 0; i < nd; i++)
        axes[i] = i;
    if (n->n_in > 3 && in[3]) {
        if ((rc = ox_input_ints(c, in[3], "axes", axes, nd, &na)) < 0)
            return rc;
        for (int i = 0; i < na; i++) {
            int ax = 0;
            if ((rc = ox_norm_axis(c, axes[i], nd, &ax)) < 0)
                return rc;
            axes[i] = ax;
        }
    }
    if (np != 2 * na)
        return ox_fail(c, MQ_EFORMAT, "%d pads for %d axes", np, na);
    int64_t lo[MQ_ONNX_MAX_DIMS] = {0}, dims[MQ_ONNX_MAX_DIMS];
    memcpy(dims, x->dims, sizeof(dims));
    for (int i = 0; i < na; i++) {
        lo[axes[i]] = pads[i];
        dims[axes[i]] += pads[i] + pads[i + na];
        if (pads[i] < -x->dims[axes[i]] || pads[i + na] < -x->dims[axes[i]] || pads[i] > (1 << 24) ||
            pads[i + na] > (1 << 24) || dims[axes[i]] < 0)
            return ox_fail(c, MQ_EFORMAT, "pads out of range");
    }
    char mbuf[16];
    const char *mode = ox_attr_str(n, "mode", "constant", mbuf, sizeof(mbuf));
    int m = strcmp(mode, "constant") == 0 ? 0 : strcmp(mode, "reflect") == 0 ? 1 : strcmp(mode, "edge") == 0 ? 2 : -1;
    if (m < 0)
        return ox_fail(c, MQ_EUNSUPPORTED, "pad mode '%s'", mode);
    for (int i = 0; i < nd && m == 1; i++)
        if (dims[i] != x->dims[i] && (x->dims[i] < 2 || lo[i] >= x->dims[i] || dims[i] - x->dims[i] - lo[i] >= x->dims[i]))
            return ox_fail(c, MQ_EFORMAT, "reflect padding wider than the input");
    for (int i = 0; i < nd && m == 2; i++)
        if (dims[i] != x->dims[i] && x->dims[i] == 0)
            return ox_fail(c, MQ_EFORMAT, "edge padding of an empty axis");
    if ((rc = ox_out(c, out, x->type, nd, dims)) <= 0)
        return rc;
    int64_t xs[MQ_ONNX_MAX_DIMS], idx[MQ_ONNX_MAX_DIMS] = {0}, s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->dims[i];
    }
    for (int64_t i = 0; i < out->n; i++) {
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < nd; d++) {
            int64_t j = idx[d] - lo[d], D = x->dims[d];
            if (j < 0 || j >= D) {
                if (m == 0) {
                    inside = false;
                    break;
                }
                if (m == 1)
                    j = j < 0 ? -j : 2 * (D - 1) - j;
                else
                    j = j < 0 ? 0 : D - 1;
            }
            off += j * xs[d];
        }
        if (x->type == OX_F32)
            ((float *)out->data)[i] = inside ? ((const float *)x->data)[off] : value;
        else
            ((int64_t *)out->data)[i] = inside ? ((const int64_t *)x->data)[off] : (int64_t)value;
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < dims[d])
                break;
            idx[d] = 0;
        }
    }
    return MQ_OK;
}

/* ---- reductions, softmax, normalization -------------------------------------------------- */

enum red { R_MEAN, R_SUM, R_MAX, R_MIN, R_PROD, R_L2 };

static int reduce(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out,
                  enum red kind)
{
    int rc, na;
    int64_t axes[MQ_ONNX_MAX_DIMS];
    if ((rc = ox_need_f32(c, in[0], "data")) < 0 || (rc = get_axes(c, n, in, 1, axes, &na)) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    bool keep = ox_attr_int(n, "keepdims", 1) != 0, red[MQ_ONNX_MAX_DIMS] = {false};
    /* no axes with noop_with_empty_axes: every output reduces one element (ReduceL2 gives
     * |x|, as ONNX Runtime and the ONNX reference do) */
    bool noop = na <= 0 && ox_attr_int(n, "noop_with_empty_axes", 0);
    for (int i = 0; i < x->nd; i++)
        red[i] = na <= 0 && !noop;
    for (int i = 0; i < na; i++) {
        int ax = 0;
        if ((rc = ox_norm_axis(c, axes[i], x->nd, &ax)) < 0)
            return rc;
        red[ax] = true;
    }
    int64_t dims[MQ_ONNX_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->nd; i++)
        if (!red[i])
            dims[nd++] = x->dims[i];
        else if (keep)
            dims[nd++] = 1;
    if ((rc = ox_out(c, out, OX_F32, nd, dims)) <= 0)
        return rc;
    /* accumulate in double, element by element in input order */
    double *acc = calloc((size_t)(out->n ? out->n : 1), sizeof(double));
    if (!acc)
        return ox_fail(c, MQ_ENOMEM, "cannot allocate a reduction");
    for (int64_t i = 0; i < out->n; i++)
        acc[i] = kind == R_MAX ? -INFINITY : kind == R_MIN ? INFINITY : kind == R_PROD ? 1.0 : 0.0;
    int64_t idx[MQ_ONNX_MAX_DIMS] = {0}, os[MQ_ONNX_MAX_DIMS], s = 1;
    for (int i = x->nd - 1; i >= 0; i--) {
        os[i] = red[i] ? 0 : s;
        if (!red[i])
            s *= x->dims[i];
    }
    const float *xd = x->data;
    int64_t off = 0;
    for (int64_t i = 0; i < x->n; i++) {
        double v = xd[i];
        switch (kind) {
        case R_MAX: acc[off] = v > acc[off] || v != v ? v : acc[off]; break;
        case R_MIN: acc[off] = v < acc[off] || v != v ? v : acc[off]; break;
        case R_PROD: acc[off] *= v; break;
        case R_L2: acc[off] += v * v; break;
        default: acc[off] += v; break;
        }
        for (int d = x->nd - 1; d >= 0; d--) {
            idx[d]++;
            off += os[d];
            if (idx[d] < x->dims[d])
                break;
            off -= os[d] * x->dims[d];
            idx[d] = 0;
        }
    }
    int64_t per = out->n ? x->n / out->n : 0;
    for (int64_t i = 0; i < out->n; i++)
        ((float *)out->data)[i] = (float)(kind == R_MEAN ? acc[i] / (double)(per ? per : 1)
                                          : kind == R_L2 ? sqrt(acc[i]) : acc[i]);
    free(acc);
    return MQ_OK;
}

int ox_op_rmean(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return reduce(c, n, in, out, R_MEAN);
}
int ox_op_rsum(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return reduce(c, n, in, out, R_SUM);
}
int ox_op_rmax(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return reduce(c, n, in, out, R_MAX);
}

int ox_op_rmin(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return reduce(c, n, in, out, R_MIN);
}
int ox_op_rprod(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return reduce(c, n, in, out, R_PROD);
}
int ox_op_rl2(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return reduce(c, n, in, out, R_L2);
}

/* Softmax, or LogSoftmax (log_out: x - max - log(sum exp(x - max))) */
static int softmax(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                   struct ox_tensor *out, bool log_out)
{
    int rc, axis = 0;
    if ((rc = ox_need_f32(c, in[0], "input")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    bool old = c->g && c->g->opset < 13;
    if ((rc = ox_norm_axis(c, ox_attr_int(n, "axis", old ? 1 : -1), x->nd ? x->nd : 1, &axis)) < 0 ||
        (rc = ox_out(c, out, OX_F32, x->nd, x->dims)) <= 0)
        return rc;
    /* opset < 13 coerces to 2-D at axis; from 13 the softmax runs along one axis */
    int64_t outer = ox_prod(x->dims, 0, axis), len = old ? ox_prod(x->dims, axis, x->nd) : x->nd ? x->dims[axis] : 1;
    int64_t inner = old ? 1 : ox_prod(x->dims, axis + 1, x->nd);
    const float *xd = x->data;
    float *y = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i;
            float mx = -INFINITY;
            for (int64_t k = 0; k < len; k++)
                mx = fmaxf(mx, xd[base + k * inner]);
            double sum = 0.0;
            for (int64_t k = 0; k < len; k++) {
                float e = expf(xd[base + k * inner] - mx);
                y[base + k * inner] = e;
                sum += e;
            }
            for (int64_t k = 0; k < len; k++)
                y[base + k * inner] = log_out
                                          ? (float)((double)(xd[base + k * inner] - mx) - log(sum))
                                          : (float)(y[base + k * inner] / sum);
        }
    return MQ_OK;
}

int ox_op_softmax(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                  struct ox_tensor *out)
{
    return softmax(c, n, in, out, false);
}

int ox_op_logsoftmax(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in,
                     struct ox_tensor *out)
{
    return softmax(c, n, in, out, true);
}

int ox_op_batchnorm(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    const char *names[5] = {"X", "scale", "B", "mean", "var"};
    for (int k = 0; k < 5; k++)
        if ((rc = ox_need_f32(c, k < n->n_in ? in[k] : NULL, names[k])) < 0)
            return rc;
    if (ox_attr_int(n, "training_mode", 0))
        return ox_fail(c, MQ_EUNSUPPORTED, "training mode");
    if (n->n_out > 1 && n->src->outputs[1][0])
        return ox_fail(c, MQ_EUNSUPPORTED, "running mean and variance outputs (training)");
    const struct ox_tensor *x = in[0];
    if (x->nd < 2)
        return ox_fail(c, MQ_EFORMAT, "input of rank %d", x->nd);
    int64_t C = x->dims[1];
    for (int k = 1; k < 5; k++)
        if (in[k]->n != C)
            return ox_fail(c, MQ_EFORMAT, "%s has %" PRId64 " values for %" PRId64 " channels", names[k], in[k]->n, C);
    if ((rc = ox_out(c, out, OX_F32, x->nd, x->dims)) <= 0)
        return rc;
    float eps = ox_attr_float(n, "epsilon", 1e-5f);
    int64_t B = x->dims[0], P = ox_prod(x->dims, 2, x->nd);
    const float *s = in[1]->data, *b = in[2]->data, *mu = in[3]->data, *var = in[4]->data, *xd = x->data;
    float *y = out->data;
    for (int64_t i = 0; i < B; i++)
        for (int64_t ch = 0; ch < C; ch++) {
            float a = s[ch] / sqrtf(var[ch] + eps), o = b[ch] - mu[ch] * a;
            const float *xp = xd + (i * C + ch) * P;
            float *yp = y + (i * C + ch) * P;
            for (int64_t p = 0; p < P; p++)
                yp[p] = xp[p] * a + o;
        }
    return MQ_OK;
}

int ox_op_layernorm(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = ox_need_f32(c, in[0], "X")) < 0 || (rc = ox_need_f32(c, n->n_in > 1 ? in[1] : NULL, "Scale")) < 0)
        return rc;
    if (n->n_out > 1)
        return ox_fail(c, MQ_EUNSUPPORTED, "mean and inverse standard deviation outputs");
    const struct ox_tensor *x = in[0], *s = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    if ((rc = ox_norm_axis(c, ox_attr_int(n, "axis", -1), x->nd, &axis)) < 0)
        return rc;
    int64_t inner = ox_prod(x->dims, axis, x->nd), outer = ox_prod(x->dims, 0, axis);
    if (s->n != inner || (b && (b->type != OX_F32 || b->n != inner)))
        return ox_fail(c, MQ_EUNSUPPORTED, "scale or bias not of the normalized shape (%" PRId64 " values)", inner);
    if ((rc = ox_out(c, out, OX_F32, x->nd, x->dims)) <= 0)
        return rc;
    float eps = ox_attr_float(n, "epsilon", 1e-5f);
    for (int64_t o = 0; o < outer; o++) {
        const float *xp = (const float *)x->data + o * inner;
        float *yp = (float *)out->data + o * inner;
        double m = 0.0, v = 0.0;
        for (int64_t i = 0; i < inner; i++)
            m += xp[i];
        m /= (double)inner;
        for (int64_t i = 0; i < inner; i++)
            v += (xp[i] - m) * (xp[i] - m);
        float r = 1.0f / sqrtf((float)(v / (double)inner) + eps);
        for (int64_t i = 0; i < inner; i++)
            yp[i] = (float)(xp[i] - m) * r * ((const float *)s->data)[i] + (b ? ((const float *)b->data)[i] : 0.0f);
    }
    return MQ_OK;
}

int ox_op_instnorm(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need_f32(c, in[0], "input")) < 0 || (rc = ox_need_f32(c, in[1], "scale")) < 0 ||
        (rc = ox_need_f32(c, in[2], "B")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (x->nd < 3)
        return ox_fail(c, MQ_EFORMAT, "input of rank %d (want N, C and spatial dimensions)", x->nd);
    int64_t C = x->dims[1];
    if (in[1]->nd != 1 || in[1]->n != C || in[2]->nd != 1 || in[2]->n != C)
        return ox_fail(c, MQ_EFORMAT, "scale and B of %" PRId64 " and %" PRId64 " values for %" PRId64 " channels",
                       in[1]->n, in[2]->n, C);
    if ((rc = ox_out(c, out, OX_F32, x->nd, x->dims)) <= 0)
        return rc;
    float eps = ox_attr_float(n, "epsilon", 1e-5f);
    int64_t P = ox_prod(x->dims, 2, x->nd), planes = x->dims[0] * C;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = (const float *)x->data + pl * P;
        float *yp = (float *)out->data + pl * P;
        double m = 0.0, v = 0.0;
        for (int64_t i = 0; i < P; i++)
            m += xp[i];
        m /= (double)(P ? P : 1);
        for (int64_t i = 0; i < P; i++)
            v += (xp[i] - m) * (xp[i] - m);
        v /= (double)(P ? P : 1);
        double a = ((const float *)in[1]->data)[pl % C] / sqrt(v + eps), b = ((const float *)in[2]->data)[pl % C];
        for (int64_t i = 0; i < P; i++)
            yp[i] = (float)((xp[i] - m) * a + b);
    }
    return MQ_OK;
}

/* GroupNormalization: opset 18 has scale and bias per group, opset 21 per channel. */
int ox_op_groupnorm(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc;
    if ((rc = ox_need_f32(c, in[0], "X")) < 0 || (rc = ox_need_f32(c, in[1], "scale")) < 0 ||
        (rc = ox_need_f32(c, in[2], "bias")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (x->nd < 2)
        return ox_fail(c, MQ_EFORMAT, "input of rank %d (want N, C, ...)", x->nd);
    const struct mq_onnx_attr *ga = ox_attr(n, "num_groups");
    int64_t C = x->dims[1], G = ga ? ga->i : 0;
    if (!ga || G < 1 || C % G)
        return ox_fail(c, MQ_EFORMAT, "num_groups %" PRId64 " for %" PRId64 " channels", G, C);
    bool per_channel = !c->g || c->g->opset >= 21;
    int64_t want = per_channel ? C : G;
    if (in[1]->n != want || in[2]->n != want)
        return ox_fail(c, MQ_EFORMAT, "scale and bias of %" PRId64 " and %" PRId64 " values (want %" PRId64
                       " at opset %d)", in[1]->n, in[2]->n, want, per_channel ? 21 : 18);
    if ((rc = ox_out(c, out, OX_F32, x->nd, x->dims)) <= 0)
        return rc;
    float eps = ox_attr_float(n, "epsilon", 1e-5f);
    int64_t P = ox_prod(x->dims, 2, x->nd), Cg = C / G, len = Cg * P;
    const float *s = in[1]->data, *b = in[2]->data;
    for (int64_t grp = 0; grp < x->dims[0] * G; grp++) {
        const float *xp = (const float *)x->data + grp * len;
        float *yp = (float *)out->data + grp * len;
        double m = 0.0, v = 0.0;
        for (int64_t i = 0; i < len; i++)
            m += xp[i];
        m /= (double)(len ? len : 1);
        for (int64_t i = 0; i < len; i++)
            v += (xp[i] - m) * (xp[i] - m);
        double r = 1.0 / sqrt(v / (double)(len ? len : 1) + eps);
        for (int64_t i = 0; i < len; i++) {
            int64_t k = per_channel ? (grp % G) * Cg + i / P : grp % G;
            yp[i] = (float)((xp[i] - m) * r * s[k] + b[k]);
        }
    }
    return MQ_OK;
}

/* ---- ArgMax, TopK ------------------------------------------------------------------------ */

int ox_op_argmax(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = ox_need(c, in[0], "data")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if ((rc = ox_norm_axis(c, ox_attr_int(n, "axis", 0), x->nd, &axis)) < 0)
        return rc;
    bool keep = ox_attr_int(n, "keepdims", 1) != 0, last = ox_attr_int(n, "select_last_index", 0) != 0;
    int64_t dims[MQ_ONNX_MAX_DIMS], len = x->dims[axis];
    int nd = 0;
    if (len == 0)
        return ox_fail(c, MQ_EFORMAT, "argmax along an empty axis");
    for (int i = 0; i < x->nd; i++)
        if (i != axis || keep)
            dims[nd++] = i == axis ? 1 : x->dims[i];
    if ((rc = ox_out(c, out, OX_I64, nd, dims)) <= 0)
        return rc;
    int64_t outer = ox_prod(x->dims, 0, axis), inner = ox_prod(x->dims, axis + 1, x->nd);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i, best = 0;
            for (int64_t k = 1; k < len; k++) {
                int64_t a = base + k * inner, b = base + best * inner;
                bool gt, eq;
                if (x->type == OX_F32) {
                    float va = ((const float *)x->data)[a], vb = ((const float *)x->data)[b];
                    gt = va > vb, eq = va == vb;
                } else {
                    int64_t va = ((const int64_t *)x->data)[a], vb = ((const int64_t *)x->data)[b];
                    gt = va > vb, eq = va == vb;
                }
                if (gt || (eq && last))
                    best = k;
            }
            ((int64_t *)out->data)[o * inner + i] = best;
        }
    return MQ_OK;
}

struct topk_item {
    float f;   /* F32 key (negated for largest) */
    int64_t v; /* I64 key (complemented for largest) */
    int64_t i; /* index along the axis: ties keep the lower index first */
};

static int topk_cmp_f(const void *pa, const void *pb)
{
    const struct topk_item *a = pa, *b = pb;
    return a->f < b->f ? -1 : a->f > b->f ? 1 : a->i < b->i ? -1 : a->i > b->i;
}

static int topk_cmp_i(const void *pa, const void *pb)
{
    const struct topk_item *a = pa, *b = pb;
    return a->v < b->v ? -1 : a->v > b->v ? 1 : a->i < b->i ? -1 : a->i > b->i;
}

/* TopK: k as attribute (opset 1) or input K (10+); outputs always sorted, which sorted = 0
 * allows. */
int ox_op_topk(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, axis = 0;
    if ((rc = ox_need(c, in[0], "X")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (x->type == OX_BOOL)
        return ox_fail(c, MQ_EFORMAT, "bool input");
    int64_t k = 0;
    if (n->n_in > 1 && in[1]) {
        int nk;
        if ((rc = ox_input_ints(c, in[1], "K", &k, 1, &nk)) < 0)
            return rc;
        if (nk != 1)
            return ox_fail(c, MQ_EFORMAT, "K of %d values", nk);
    } else if (ox_attr(n, "k")) {
        k = ox_attr_int(n, "k", 0);
    } else {
        return ox_fail(c, MQ_EFORMAT, "neither input K nor attribute k");
    }
    if ((rc = ox_norm_axis(c, ox_attr_int(n, "axis", -1), x->nd, &axis)) < 0)
        return rc;
    int64_t len = x->dims[axis];
    if (k < 0 || k > len)
        return ox_fail(c, MQ_EFORMAT, "k = %" PRId64 " along an axis of %" PRId64, k, len);
    bool largest = ox_attr_int(n, "largest", 1) != 0;
    int64_t dims[MQ_ONNX_MAX_DIMS];
    memcpy(dims, x->dims, sizeof(dims));
    dims[axis] = k;
    int rv, ri;
    if ((rv = ox_out(c, &out[0], x->type, x->nd, dims)) < 0 || (ri = ox_out(c, &out[1], OX_I64, x->nd, dims)) < 0)
        return rv < 0 ? rv : ri;
    if (rv == 0 || ri == 0)
        return MQ_OK;
    struct topk_item *it = malloc((size_t)(len ? len : 1) * sizeof(*it));
    if (!it)
        return ox_fail(c, MQ_ENOMEM, "cannot allocate %" PRId64 " items", len);
    int64_t outer = ox_prod(x->dims, 0, axis), inner = ox_prod(x->dims, axis + 1, x->nd);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i, obase = o * k * inner + i;
            for (int64_t j = 0; j < len; j++) {
                it[j].i = j;
                if (x->type == OX_F32) {
                    float v = ((const float *)x->data)[base + j * inner];
                    it[j].f = largest ? -v : v;
                } else {
                    int64_t v = ((const int64_t *)x->data)[base + j * inner];
                    it[j].v = largest ? ~v : v; /* ~ reverses the order without overflow */
                }
            }
            qsort(it, (size_t)len, sizeof(*it), x->type == OX_F32 ? topk_cmp_f : topk_cmp_i);
            for (int64_t j = 0; j < k; j++) {
                int64_t src = base + it[j].i * inner, dst = obase + j * inner;
                if (x->type == OX_F32)
                    ((float *)out[0].data)[dst] = ((const float *)x->data)[src];
                else
                    ((int64_t *)out[0].data)[dst] = ((const int64_t *)x->data)[src];
                ((int64_t *)out[1].data)[dst] = it[j].i;
            }
        }
    free(it);
    return MQ_OK;
}

/* ---- DepthToSpace, SpaceToDepth, Tile ------------------------------------------------------ */

/* out[i] = x[src(i)] where the output, seen with dims v[6] (row-major), reads x seen with
 * dims xv[6] through perm: output axis d is x's axis perm[d]. */
static void permute6(const struct ox_tensor *x, const int64_t *xv, const int *perm, void *out)
{
    int64_t xs[6], st[6], v[6], idx[6] = {0}, s = 1, off = 0, total = 1;
    for (int d = 5; d >= 0; d--) {
        xs[d] = s;
        s *= xv[d];
    }
    for (int d = 0; d < 6; d++) {
        st[d] = xs[perm[d]];
        v[d] = xv[perm[d]];
        total *= v[d];
    }
    size_t es = ox_type_size(x->type);
    for (int64_t i = 0; i < total; i++) {
        memcpy((char *)out + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
        for (int d = 5; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < v[d])
                break;
            off -= st[d] * v[d];
            idx[d] = 0;
        }
    }
}

static int d2s(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out,
               bool to_space)
{
    int rc;
    if ((rc = ox_need(c, in[0], "input")) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (x->nd != 4)
        return ox_fail(c, MQ_EFORMAT, "input of rank %d (want 4)", x->nd);
    const struct mq_onnx_attr *ba = ox_attr(n, "blocksize");
    int64_t bs = ba ? ba->i : 0, N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (bs < 1 || bs > 4096)
        return ox_fail(c, MQ_EFORMAT, "blocksize %" PRId64 "%s", bs, ba ? "" : " (missing)");
    char buf[8];
    const char *mode = ox_attr_str(n, "mode", "DCR", buf, sizeof(buf));
    bool crd = strcmp(mode, "CRD") == 0;
    if (!crd && strcmp(mode, "DCR") != 0)
        return ox_fail(c, MQ_EFORMAT, "mode '%s' (want DCR or CRD)", mode);
    if (!to_space && ox_attr(n, "mode"))
        return ox_fail(c, MQ_EFORMAT, "SpaceToDepth has no mode");
    int64_t dims[4], xv[6];
    int perm[6];
    if (to_space) {
        if (C % (bs * bs))
            return ox_fail(c, MQ_EFORMAT, "%" PRId64 " channels for blocksize %" PRId64, C, bs);
        int64_t c2 = C / (bs * bs);
        dims[0] = N, dims[1] = c2, dims[2] = H * bs, dims[3] = W * bs;
        if (crd) { /* [N, C/bs^2, bs, bs, H, W] -> [0, 1, 4, 2, 5, 3] */
            int64_t v[6] = {N, c2, bs, bs, H, W};
            int p[6] = {0, 1, 4, 2, 5, 3};
            memcpy(xv, v, sizeof(v)), memcpy(perm, p, sizeof(p));
        } else { /* [N, bs, bs, C/bs^2, H, W] -> [0, 3, 4, 1, 5, 2] */
            int64_t v[6] = {N, bs, bs, c2, H, W};
            int p[6] = {0, 3, 4, 1, 5, 2};
            memcpy(xv, v, sizeof(v)), memcpy(perm, p, sizeof(p));
        }
    } else {
        if (H % bs || W % bs)
            return ox_fail(c, MQ_EFORMAT, "%" PRId64 " x %" PRId64 " not divisible by blocksize %" PRId64, H, W, bs);
        dims[0] = N, dims[1] = C * bs * bs, dims[2] = H / bs, dims[3] = W / bs;
        int64_t v[6] = {N, C, H / bs, bs, W / bs, bs}; /* -> [0, 3, 5, 1, 2, 4] */
        int p[6] = {0, 3, 5, 1, 2, 4};
        memcpy(xv, v, sizeof(v)), memcpy(perm, p, sizeof(p));
    }
    if ((rc = ox_out(c, out, x->type, 4, dims)) <= 0)
        return rc;
    permute6(x, xv, perm, out->data);
    return MQ_OK;
}

int ox_op_d2s(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return d2s(c, n, in, out, true);
}
int ox_op_s2d(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    return d2s(c, n, in, out, false);
}

int ox_op_tile(struct ox_ctx *c, const struct ox_node *n, struct ox_tensor *const *in, struct ox_tensor *out)
{
    int rc, nr;
    int64_t rep[MQ_ONNX_MAX_DIMS], dims[MQ_ONNX_MAX_DIMS];
    if ((rc = ox_need(c, in[0], "input")) < 0 || (rc = ox_need(c, in[1], "repeats")) < 0 ||
        (rc = ox_input_ints(c, in[1], "repeats", rep, MQ_ONNX_MAX_DIMS, &nr)) < 0)
        return rc;
    const struct ox_tensor *x = in[0];
    if (nr != x->nd)
        return ox_fail(c, MQ_EFORMAT, "%d repeats for rank %d", nr, x->nd);
    for (int i = 0; i < nr; i++) {
        if (rep[i] < 0 || (x->dims[i] && rep[i] > OX_MAX_ELEMS / x->dims[i]))
            return ox_fail(c, MQ_EFORMAT, "repeat %" PRId64 " on axis %d", rep[i], i);
        dims[i] = x->dims[i] * rep[i];
    }
    if ((rc = ox_out(c, out, x->type, x->nd, dims)) <= 0)
        return rc;
    int64_t xs[MQ_ONNX_MAX_DIMS], idx[MQ_ONNX_MAX_DIMS] = {0}, s = 1;
    for (int i = x->nd - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->dims[i];
    }
    size_t es = ox_type_size(x->type);
    for (int64_t i = 0; i < out->n; i++) {
        int64_t off = 0;
        for (int d = 0; d < x->nd; d++)
            off += (idx[d] % x->dims[d]) * xs[d];
        memcpy((char *)out->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
        for (int d = x->nd - 1; d >= 0; d--) {
            if (++idx[d] < dims[d])
                break;
            idx[d] = 0;
        }
    }
    (void)n;
    return MQ_OK;
}
