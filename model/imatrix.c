/* model/imatrix.c - llama.cpp's importance-matrix files. Contract in imatrix.h. */
#include "model/imatrix.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/compensate.h"
#include "core/dist.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "llm/llama.h"
#include "model/plan.h"
#include "tokenizer/tokenizer.h"

#define IMATRIX_MAX_ENTRIES (1 << 20)
#define IMATRIX_MAX_VALUES ((int64_t)1 << 32) /* per entry */
#define IMATRIX_MAX_COUNT 1e15f /* activation rows: far more tokens than any calibration text */

void mq_imatrix_free(struct mq_imatrix *im)
{
    if (!im)
        return;
    for (int i = 0; i < im->n_entries; i++) {
        free(im->entries[i].sums);
        free(im->entries[i].counts);
        free(im->entries[i].gram);
    }
    free(im->entries);
    for (int i = 0; i < im->n_datasets; i++)
        free(im->datasets[i]);
    free(im->datasets);
    free(im);
}

const struct mq_imatrix_entry *mq_imatrix_find(const struct mq_imatrix *im, const char *name)
{
    for (int i = 0; i < im->n_entries; i++)
        if (strcmp(im->entries[i].name, name) == 0)
            return &im->entries[i];
    return NULL;
}

static bool all_finite(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

static int add_dataset(struct mq_imatrix *im, const char *s, size_t len)
{
    char **d = realloc(im->datasets, (size_t)(im->n_datasets + 1) * sizeof(*d));
    if (!d)
        return mq_error(MQ_ENOMEM, "cannot read an imatrix's dataset names");
    im->datasets = d;
    if (!(d[im->n_datasets] = strndup(s, len)))
        return mq_error(MQ_ENOMEM, "cannot read an imatrix's dataset names");
    im->n_datasets++;
    return MQ_OK;
}

/* ---- GGUF ---- */

static int read_gguf(const char *path, struct mq_imatrix *im)
{
    struct mq_gguf *g = NULL;
    int rc = mq_gguf_open(path, &g);
    if (rc < 0)
        return rc;
    const struct mq_gguf_value *arr;
    if (mq_gguf_get_arr(g, "imatrix.datasets", MQ_GGUF_STRING, &arr) == MQ_OK)
        for (uint64_t i = 0; i < arr->arr.n && rc == MQ_OK; i++)
            rc = add_dataset(im, arr->arr.items[i].str.ptr, (size_t)arr->arr.items[i].str.len);
    if (rc == MQ_OK && (rc = mq_gguf_get_u32(g, "imatrix.chunk_count", &im->chunk_count)) == MQ_ENOTFOUND)
        rc = MQ_OK;
    if (rc == MQ_OK && (rc = mq_gguf_get_u32(g, "imatrix.chunk_size", &im->chunk_size)) == MQ_ENOTFOUND)
        rc = MQ_OK;
    if (rc < 0)
        goto done;
    im->entries = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(*im->entries));
    if (!im->entries) {
        rc = mq_error(MQ_ENOMEM, "cannot read imatrix '%s'", path);
        goto done;
    }
    static const char sums_sfx[] = ".in_sum2", counts_sfx[] = ".counts";
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct mq_gguf_tensor *t = &g->tensors[i];
        size_t len = strlen(t->name), sl = sizeof(sums_sfx) - 1;
        if (len <= sl || strcmp(t->name + len - sl, sums_sfx) != 0)
            continue;
        char base[MQ_GGUF_MAX_NAME + 1], cname[MQ_GGUF_MAX_NAME + 16];
        snprintf(base, sizeof(base), "%.*s", (int)(len - sl), t->name);
        snprintf(cname, sizeof(cname), "%s%s", base, counts_sfx);
        const struct mq_gguf_tensor *c = mq_gguf_find_tensor(g, cname);
        if (!c) {
            rc = mq_error(MQ_EFORMAT, "imatrix '%s': '%s' has sums but no counts", path, base);
            goto done;
        }
        if (t->type != MQ_DTYPE_F32 || c->type != MQ_DTYPE_F32) {
            rc = mq_error(MQ_EFORMAT, "imatrix '%s': sums and counts of '%s' must be f32", path, base);
            goto done;
        }
        int64_t n_mat = c->n_elems;
        if (n_mat < 1 || t->n_elems % n_mat != 0 || t->n_elems / n_mat < 1 || t->n_elems > IMATRIX_MAX_VALUES) {
            rc = mq_error(MQ_EFORMAT, "imatrix '%s': '%s' has %lld sums for %lld counts", path, base,
                          (long long)t->n_elems, (long long)n_mat);
            goto done;
        }
        struct mq_imatrix_entry *e = &im->entries[im->n_entries];
        snprintf(e->name, sizeof(e->name), "%s", base);
        e->n_mat = n_mat;
        e->n_in = t->n_elems / n_mat;
        e->sums = malloc((size_t)t->n_elems * sizeof(float));
        e->counts = malloc((size_t)n_mat * sizeof(float));
        im->n_entries++;
        if (!e->sums || !e->counts) {
            rc = mq_error(MQ_ENOMEM, "cannot read imatrix '%s'", path);
            goto done;
        }
        memcpy(e->sums, t->data, (size_t)t->n_elems * sizeof(float));
        memcpy(e->counts, c->data, (size_t)n_mat * sizeof(float));
        /* checked before rounding: lroundf of a NaN or huge count is undefined */
        if (!all_finite(e->sums, t->n_elems) || !all_finite(e->counts, n_mat)) {
            rc = mq_error(MQ_EFORMAT, "imatrix '%s': '%s' has non-finite values", path, base);
            goto done;
        }
        for (int64_t j = 0; j < n_mat; j++) {
            if (e->counts[j] < 0.0f || e->counts[j] > IMATRIX_MAX_COUNT) {
                rc = mq_error(MQ_EFORMAT, "imatrix '%s': '%s' has an absurd count %g", path, base,
                              (double)e->counts[j]);
                goto done;
            }
            e->counts[j] = (float)lroundf(e->counts[j]); /* llama.cpp rounds counts to integers */
        }
        /* mixq's extension: the Gram matrix of a dense entry's inputs */
        snprintf(cname, sizeof(cname), "%s.in_gram", base);
        const struct mq_gguf_tensor *gt = mq_gguf_find_tensor(g, cname);
        if (gt) {
            if (gt->type != MQ_DTYPE_F32 || n_mat != 1 || gt->n_dims != 2 || gt->ne[0] != e->n_in ||
                gt->ne[1] != e->n_in) {
                rc = mq_error(MQ_EFORMAT, "imatrix '%s': '%s' is not an f32 [%lld, %lld] Gram matrix", path, cname,
                              (long long)e->n_in, (long long)e->n_in);
                goto done;
            }
            if (!(e->gram = malloc((size_t)gt->n_elems * sizeof(float)))) {
                rc = mq_error(MQ_ENOMEM, "cannot read imatrix '%s'", path);
                goto done;
            }
            memcpy(e->gram, gt->data, (size_t)gt->n_elems * sizeof(float));
            if (!all_finite(e->gram, gt->n_elems)) {
                rc = mq_error(MQ_EFORMAT, "imatrix '%s': '%s' has non-finite values", path, cname);
                goto done;
            }
        }
    }
    if (im->n_entries == 0)
        rc = mq_error(MQ_EFORMAT, "imatrix '%s' has no entries (no *.in_sum2 tensors)", path);
done:
    mq_gguf_close(g);
    return rc;
}

/* ---- legacy .dat ---- */

static int read_i32(FILE *f, int32_t *v) { return fread(v, sizeof(*v), 1, f) == 1 ? MQ_OK : MQ_EFORMAT; }

static int read_legacy(const char *path, FILE *f, struct mq_imatrix *im)
{
    int32_t n;
    if (read_i32(f, &n) < 0 || n < 1 || n > IMATRIX_MAX_ENTRIES)
        return mq_error(MQ_EFORMAT, "imatrix '%s': not a GGUF file, and no entry count of a legacy imatrix", path);
    im->legacy = true;
    im->entries = calloc((size_t)n, sizeof(*im->entries));
    if (!im->entries)
        return mq_error(MQ_ENOMEM, "cannot read imatrix '%s'", path);
    for (int32_t i = 0; i < n; i++) {
        struct mq_imatrix_entry *e = &im->entries[i];
        int32_t len, ncall, nval;
        if (read_i32(f, &len) < 0 || len < 1 || len > MQ_GGUF_MAX_NAME || fread(e->name, 1, (size_t)len, f) != (size_t)len)
            return mq_error(MQ_EFORMAT, "imatrix '%s': entry %d has a bad or truncated name", path, i + 1);
        e->name[len] = '\0';
        if (strlen(e->name) != (size_t)len)
            return mq_error(MQ_EFORMAT, "imatrix '%s': entry %d's name contains a NUL byte", path, i + 1);
        if (read_i32(f, &ncall) < 0 || read_i32(f, &nval) < 0 || nval < 1 || ncall < 0)
            return mq_error(MQ_EFORMAT, "imatrix '%s': entry '%s' has a bad or truncated size", path, e->name);
        e->n_in = nval;
        e->n_mat = 1;
        e->sums = malloc((size_t)nval * sizeof(float));
        e->counts = malloc(sizeof(float));
        im->n_entries++;
        if (!e->sums || !e->counts)
            return mq_error(MQ_ENOMEM, "cannot read imatrix '%s'", path);
        e->counts[0] = (float)ncall;
        if (fread(e->sums, sizeof(float), (size_t)nval, f) != (size_t)nval)
            return mq_error(MQ_EFORMAT, "imatrix '%s': entry '%s' is truncated", path, e->name);
        if (!all_finite(e->sums, nval))
            return mq_error(MQ_EFORMAT, "imatrix '%s': '%s' has non-finite values", path, e->name);
    }
    /* the trailing chunk count and dataset name are optional */
    int32_t chunks, len;
    if (read_i32(f, &chunks) == MQ_OK) {
        im->chunk_count = chunks > 0 ? (uint32_t)chunks : 0;
        if (read_i32(f, &len) == MQ_OK && len > 0 && len < (1 << 20)) {
            char *name = malloc((size_t)len);
            if (!name)
                return mq_error(MQ_ENOMEM, "cannot read imatrix '%s'", path);
            int rc = MQ_OK;
            if (fread(name, 1, (size_t)len, f) == (size_t)len)
                rc = add_dataset(im, name, strnlen(name, (size_t)len));
            free(name);
            return rc;
        }
    }
    return MQ_OK;
}

int mq_imatrix_read(const char *path, struct mq_imatrix **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return mq_error(MQ_EIO, "cannot open imatrix '%s': %s", path, strerror(errno));
    char magic[4] = {0};
    bool gguf = fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0;
    struct mq_imatrix *im = calloc(1, sizeof(*im));
    int rc;
    if (!im) {
        fclose(f);
        return mq_error(MQ_ENOMEM, "cannot read imatrix '%s'", path);
    }
    if (gguf) {
        fclose(f);
        rc = read_gguf(path, im);
    } else {
        rewind(f);
        rc = read_legacy(path, f, im);
        fclose(f);
    }
    if (rc < 0) {
        mq_imatrix_free(im);
        return rc;
    }
    *out = im;
    return MQ_OK;
}

int mq_imatrix_write(const struct mq_imatrix *im, const char *path)
{
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    if (!w)
        return mq_error(MQ_ENOMEM, "cannot write imatrix '%s'", path);
    int rc = mq_gguf_writer_set_str(w, "general.type", "imatrix");
    if (rc == MQ_OK)
        rc = mq_gguf_writer_set_str_arr(w, "imatrix.datasets", (const char *const *)im->datasets,
                                        (uint64_t)im->n_datasets);
    if (rc == MQ_OK)
        rc = mq_gguf_writer_set_u32(w, "imatrix.chunk_count", im->chunk_count);
    if (rc == MQ_OK)
        rc = mq_gguf_writer_set_u32(w, "imatrix.chunk_size", im->chunk_size);
    /* legacy sums are value * ncall with counts = ncall chunks: as GGUF, in_sum2 / counts
     * must give the same importance, so the counts become ncall (and the sums stay) */
    for (int i = 0; i < im->n_entries && rc == MQ_OK; i++) {
        const struct mq_imatrix_entry *e = &im->entries[i];
        char name[MQ_GGUF_MAX_NAME + 16];
        snprintf(name, sizeof(name), "%s.in_sum2", e->name);
        rc = mq_gguf_writer_add_tensor(w, name, MQ_DTYPE_F32, 2, (int64_t[]){e->n_in, e->n_mat}, e->sums);
        snprintf(name, sizeof(name), "%s.counts", e->name);
        /* a legacy ncall of 0 means "the values are the importance" there; a GGUF count of 0
         * means importance 1, so such an entry is written with count 1 */
        static const float one = 1.0f; /* borrowed by the writer until it writes */
        const float *counts = im->legacy && e->n_mat == 1 && e->counts[0] == 0.0f ? &one : e->counts;
        if (rc == MQ_OK)
            rc = mq_gguf_writer_add_tensor(w, name, MQ_DTYPE_F32, 2, (int64_t[]){1, e->n_mat}, counts);
        snprintf(name, sizeof(name), "%s.in_gram", e->name);
        if (rc == MQ_OK && e->gram)
            rc = mq_gguf_writer_add_tensor(w, name, MQ_DTYPE_F32, 2, (int64_t[]){e->n_in, e->n_in}, e->gram);
    }
    if (rc == MQ_OK)
        rc = mq_gguf_writer_write(w, path);
    mq_gguf_writer_free(w);
    return rc;
}

void mq_imatrix_importance(const struct mq_imatrix *im, const struct mq_imatrix_entry *e, float *out)
{
    float count = e->counts[0];
    if (im->legacy) {
        /* llama-quantize: sums[i] / ncall (an int64 converted to float), or the sums */
        for (int64_t i = 0; i < e->n_in; i++)
            out[i] = count > 0.0f ? e->sums[i] / count : e->sums[i];
        return;
    }
    for (int64_t i = 0; i < e->n_in; i++)
        out[i] = count > 0.0f ? e->sums[i] / count : 1.0f;
}

/* The layers' gram_u from im's Gram matrices (mq_model_set_imatrix): one factor per
 * distinct matrix (equal contents: the same input), all in m->gram_data; imp_hash then
 * covers the matrices and which layers have them. */
static int set_gram_factors(struct mq_model *m, const struct mq_imatrix *im)
{
    const int n = m->n_layers;
    const struct mq_imatrix_entry **ent = calloc((size_t)n, sizeof(*ent));
    uint64_t *hash = calloc((size_t)n, sizeof(*hash));
    int *first = malloc((size_t)n * sizeof(*first)); /* the layer whose factor it shares, or itself */
    size_t *off = calloc((size_t)n, sizeof(*off));
    int rc = MQ_OK;
    if (!ent || !hash || !first || !off) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate Gram factors");
        goto done;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const struct mq_layer *ly = &m->layers[i];
        const struct mq_imatrix_entry *e = ly->imp ? mq_imatrix_find(im, ly->name) : NULL;
        first[i] = -1;
        if (!e || !e->gram)
            continue;
        const size_t nn = (size_t)(ly->n_in * ly->n_in);
        ent[i] = e;
        hash[i] = mq_hash64(e->gram, nn * sizeof(float), 0x6772616dULL /* "gram" */);
        first[i] = i;
        for (int j = 0; j < i; j++)
            if (first[j] == j && hash[j] == hash[i] && m->layers[j].n_in == ly->n_in &&
                !memcmp(ent[j]->gram, e->gram, nn * sizeof(float))) {
                first[i] = j;
                break;
            }
        if (first[i] == i) {
            off[i] = total;
            total += nn;
        }
    }
    if (total == 0)
        goto done;
    if (!(m->gram_data = malloc(total * sizeof(float)))) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate Gram factors (%zu values)", total);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (first[i] != i)
            continue;
        const struct mq_layer *ly = &m->layers[i];
        float *u;
        if ((rc = mq_gram_factor(ent[i]->gram, (double)ent[i]->counts[0], ly->n_in, &u)) < 0)
            goto done;
        memcpy(m->gram_data + off[i], u, (size_t)(ly->n_in * ly->n_in) * sizeof(float));
        free(u);
    }
    for (int i = 0; i < n; i++) {
        if (first[i] < 0)
            continue;
        m->layers[i].gram_u = m->gram_data + off[first[i]];
        m->n_compensated++;
        m->imp_hash = mq_hash64(&hash[i], sizeof(hash[i]), mq_hash64(&i, sizeof(i), m->imp_hash));
    }
done:
    if (rc < 0) {
        free(m->gram_data);
        m->gram_data = NULL;
        m->n_compensated = 0;
        for (int i = 0; i < n; i++)
            m->layers[i].gram_u = NULL;
    }
    free(ent);
    free(hash);
    free(first);
    free(off);
    return rc;
}

int mq_model_set_imatrix(struct mq_model *m, const struct mq_imatrix *im, bool compensate, int *n_used)
{
    int used = 0;
    size_t total = 0;
    free(m->imp_data);
    m->imp_data = NULL;
    m->imp_hash = 0;
    free(m->gram_data);
    m->gram_data = NULL;
    m->n_compensated = 0;
    for (int i = 0; i < m->n_layers; i++) {
        m->layers[i].imp = NULL;
        m->layers[i].gram_u = NULL;
    }
    if (n_used)
        *n_used = 0;
    m->has_imatrix = im != NULL;
    if (!im)
        return MQ_OK;
    for (int i = 0; i < m->n_layers; i++) {
        const struct mq_layer *ly = &m->layers[i];
        const struct mq_imatrix_entry *e = mq_imatrix_find(im, ly->name);
        if (!e)
            continue;
        if (e->n_in != ly->n_in || e->n_mat != 1) {
            if (ly->role == MQ_ROLE_TOKEN_EMBD)
                continue;
            return mq_error(MQ_EINVAL, "imatrix entry '%s' has %lld x %lld values, its layer %lld inputs", e->name,
                            (long long)e->n_mat, (long long)e->n_in, (long long)ly->n_in);
        }
        total += (size_t)ly->n_in;
    }
    if (total == 0)
        return MQ_OK;
    if (!(m->imp_data = malloc(total * sizeof(float))))
        return mq_error(MQ_ENOMEM, "cannot allocate importance weights");
    float *p = m->imp_data;
    for (int i = 0; i < m->n_layers; i++) {
        struct mq_layer *ly = &m->layers[i];
        const struct mq_imatrix_entry *e = mq_imatrix_find(im, ly->name);
        if (!e || e->n_in != ly->n_in || e->n_mat != 1)
            continue;
        mq_imatrix_importance(im, e, p);
        ly->imp = p;
        p += ly->n_in;
        used++;
    }
    m->imp_hash = mq_hash64(m->imp_data, total * sizeof(float), 0x696d6174726978ULL /* "imatrix" */);
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].imp)
            m->imp_hash = mq_hash64(&i, sizeof(i), m->imp_hash);
    if (n_used)
        *n_used = used;
    return compensate ? set_gram_factors(m, im) : MQ_OK;
}

int mq_model_apply_imatrix_file(struct mq_model *m, const char *path, bool compensate, int *n_used,
                                struct mq_imatrix **im_out)
{
    struct mq_imatrix *im = NULL;
    int rc = mq_imatrix_read(path, &im);
    if (rc == MQ_OK)
        rc = mq_model_set_imatrix(m, im, compensate, n_used);
    if (rc == MQ_OK) {
        snprintf(m->imatrix_path, sizeof(m->imatrix_path), "%s", path);
        m->imatrix_compensate = compensate;
    }
    if (rc == MQ_OK && im_out)
        *im_out = im;
    else
        mq_imatrix_free(im);
    return rc;
}

/* ---- computing an importance matrix, llama-imatrix style ---- */

/* What the capture hook accumulates into. */
struct im_acc {
    const struct mq_model *m;
    int n_entries;
    int *entry_of;  /* [m->n_layers]: the entry a layer's input is summed into, or -1 */
    int *layer_of;  /* [n_entries]: the layer of each entry, in name order */
    double **sums;  /* [n_entries][n_in] */
    int64_t *rows;  /* [n_entries] activation rows summed */
    /* Gram matrices (cfg->gram): gram[e] [n_in][n_in] upper triangles summed (mirrored at
     * the end), or NULL; gram_src[e]: -2 not seen yet, -1 its own, k: the same input as
     * entry k (captured just before it: attn_q/k/v, ffn_gate/up), which holds the sums */
    bool want_gram;
    double **gram;
    int *gram_src;
    int64_t gram_elems;      /* allocated so far, over distinct inputs */
    int prev_e;              /* the entry captured last, and a copy of its input */
    float *prev_x;
    size_t prev_cap;
    int64_t prev_k, prev_m;
    float *gram_tmp;         /* [n_in^2] of the largest distinct input: one call's X^T X */
    int64_t gram_tmp_elems;
    int n_unseen;            /* entries whose gram_src is still -2 (inputs are copied till 0) */
};

/* One capture's X^T X (x [M][K]) added into the entry's Gram matrix, with the limits of
 * mq_imatrix_config.gram: past them no entry keeps one (said once). */
static int im_gram_add(struct im_acc *a, int e, const float *x, int64_t K, int64_t M)
{
    if (a->gram_src[e] == -2) {
        bool same = a->prev_e >= 0 && a->prev_k == K && a->prev_m == M &&
                    memcmp(a->prev_x, x, (size_t)(K * M) * sizeof(float)) == 0;
        if (same && a->gram_src[a->prev_e] >= -1)
            a->gram_src[e] = a->gram_src[a->prev_e] >= 0 ? a->gram_src[a->prev_e] : a->prev_e;
        else
            a->gram_src[e] = -1;
        if (a->gram_src[e] == -1) {
            if (K > MQ_GRAM_MAX_IN || a->gram_elems + K * K > MQ_GRAM_MAX_ELEMS) {
                mq_info("imatrix: no Gram matrices (a layer input over %lld values, or over %lld values in all): "
                        "quantizations will not be error-compensated",
                        (long long)MQ_GRAM_MAX_IN, (long long)MQ_GRAM_MAX_ELEMS);
                a->want_gram = false;
                return MQ_OK;
            }
            if (!(a->gram[e] = calloc((size_t)(K * K), sizeof(double))))
                return mq_error(MQ_ENOMEM, "cannot allocate a Gram matrix of %lld inputs", (long long)K);
            a->gram_elems += K * K;
            if (K * K > a->gram_tmp_elems) {
                float *nt = realloc(a->gram_tmp, (size_t)(K * K) * sizeof(float));
                if (!nt)
                    return mq_error(MQ_ENOMEM, "cannot allocate a Gram matrix of %lld inputs", (long long)K);
                a->gram_tmp = nt;
                a->gram_tmp_elems = K * K;
            }
        }
        a->n_unseen--;
    }
    size_t bytes = (size_t)(K * M) * sizeof(float);
    if (a->n_unseen == 0) {
        a->prev_e = -1; /* every sharing is known: no more copies */
    } else if (bytes > a->prev_cap) {
        float *nb = realloc(a->prev_x, bytes);
        if (!nb)
            return mq_error(MQ_ENOMEM, "cannot allocate a copy of %zu bytes of activations", bytes);
        a->prev_x = nb;
        a->prev_cap = bytes;
    }
    if (a->n_unseen > 0) {
        memcpy(a->prev_x, x, bytes);
        a->prev_e = e;
        a->prev_k = K;
        a->prev_m = M;
    }
    if (a->gram_src[e] >= 0)
        return MQ_OK; /* the same input as the entry holding the sums */
    float *t = a->gram_tmp;
    memset(t, 0, (size_t)(K * K) * sizeof(float));
    /* the upper triangle of X^T X in tiles of GRAM_TI x GRAM_TJ, so that a tile stays in
     * cache while every row of X passes through it (full-width tiles have a constant inner
     * trip count, which compilers vectorize at -O2) */
    enum { GRAM_TI = 16, GRAM_TJ = 64 };
    for (int64_t i0 = 0; i0 < K; i0 += GRAM_TI) {
        const int64_t i1 = i0 + GRAM_TI < K ? i0 + GRAM_TI : K;
        for (int64_t j0 = i0 - i0 % GRAM_TJ; j0 < K; j0 += GRAM_TJ) {
            const int64_t j1 = j0 + GRAM_TJ < K ? j0 + GRAM_TJ : K;
            for (int64_t r = 0; r < M; r++) {
                const float *xr = x + r * K;
                for (int64_t i = i0; i < i1; i++) {
                    const float xi = xr[i];
                    float *ti = t + i * K;
                    if (j1 - j0 == GRAM_TJ)
                        for (int64_t j = 0; j < GRAM_TJ; j++)
                            ti[j0 + j] += xi * xr[j0 + j];
                    else
                        for (int64_t j = j0; j < j1; j++)
                            ti[j] += xi * xr[j];
                }
            }
        }
    }
    double *g = a->gram[e];
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = i; j < K; j++)
            g[i * K + j] += t[i * K + j];
    return MQ_OK;
}

static int im_capture(void *arg, int layer, const float *x, int64_t K, int64_t M)
{
    struct im_acc *a = arg;
    int e = a->entry_of[layer];
    if (e < 0)
        return MQ_OK;
    if (K != a->m->layers[layer].n_in)
        return mq_error(MQ_EINTERNAL, "layer '%s': captured %lld inputs, want %lld", a->m->layers[layer].name,
                        (long long)K, (long long)a->m->layers[layer].n_in);
    double *s = a->sums[e];
    for (int64_t t = 0; t < M; t++) {
        const float *xt = x + t * K;
        for (int64_t k = 0; k < K; k++)
            s[k] += (double)xt[k] * (double)xt[k];
    }
    a->rows[e] += M;
    return a->want_gram ? im_gram_add(a, e, x, K, M) : MQ_OK;
}

static void im_acc_release(struct im_acc *a)
{
    if (a->sums)
        for (int i = 0; i < a->n_entries; i++)
            free(a->sums[i]);
    free(a->sums);
    free(a->rows);
    free(a->entry_of);
    free(a->layer_of);
    if (a->gram)
        for (int i = 0; i < a->n_entries; i++)
            free(a->gram[i]);
    free(a->gram);
    free(a->gram_src);
    free(a->gram_tmp);
    free(a->prev_x);
    memset(a, 0, sizeof(*a));
}

struct named_layer {
    const char *name;
    int layer;
};

static int cmp_layer_name(const void *x, const void *y)
{
    return strcmp(((const struct named_layer *)x)->name, ((const struct named_layer *)y)->name);
}

/* Which layers llama-imatrix collects: matmuls of weights named blk.*, and output.weight
 * with --process-output (a tied output multiplies by token_embd.weight: never). */
static bool im_collects(const struct mq_layer *ly, bool process_output)
{
    if (ly->role == MQ_ROLE_TOKEN_EMBD)
        return false;
    return strncmp(ly->name, "blk.", 4) == 0 || (process_output && strcmp(ly->name, "output.weight") == 0);
}

static int im_acc_init(struct im_acc *a, const struct mq_model *m, bool process_output, bool gram)
{
    memset(a, 0, sizeof(*a));
    a->m = m;
    a->prev_e = -1;
    a->entry_of = malloc((size_t)m->n_layers * sizeof(*a->entry_of));
    a->layer_of = malloc((size_t)m->n_layers * sizeof(*a->layer_of));
    if (!a->entry_of || !a->layer_of)
        return mq_error(MQ_ENOMEM, "cannot allocate an importance matrix");
    struct named_layer *order = malloc((size_t)m->n_layers * sizeof(*order));
    if (!order)
        return mq_error(MQ_ENOMEM, "cannot allocate an importance matrix");
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        a->entry_of[i] = -1;
        if (im_collects(&m->layers[i], process_output))
            order[n++] = (struct named_layer){m->layers[i].name, i};
    }
    qsort(order, (size_t)n, sizeof(*order), cmp_layer_name); /* llama-imatrix's file order */
    for (int e = 0; e < n; e++)
        a->layer_of[e] = order[e].layer;
    free(order);
    if (n == 0)
        return mq_error(MQ_EINVAL, "model '%s' has no blk.* matmul weights to collect", m->path);
    a->sums = calloc((size_t)n, sizeof(*a->sums));
    a->rows = calloc((size_t)n, sizeof(*a->rows));
    if (!a->sums || !a->rows)
        return mq_error(MQ_ENOMEM, "cannot allocate an importance matrix");
    a->n_entries = n;
    for (int e = 0; e < n; e++) {
        int li = a->layer_of[e];
        a->entry_of[li] = e;
        if (!(a->sums[e] = calloc((size_t)m->layers[li].n_in, sizeof(double))))
            return mq_error(MQ_ENOMEM, "cannot allocate an importance matrix");
    }
    if (gram) {
        a->gram = calloc((size_t)n, sizeof(*a->gram));
        a->gram_src = malloc((size_t)n * sizeof(*a->gram_src));
        if (!a->gram || !a->gram_src)
            return mq_error(MQ_ENOMEM, "cannot allocate Gram matrices");
        for (int e = 0; e < n; e++)
            a->gram_src[e] = -2;
        a->n_unseen = n;
        a->want_gram = true;
    }
    return MQ_OK;
}

/* The accumulated sums as an mq_imatrix (f32, as llama-imatrix stores them). */
static int im_acc_result(const struct im_acc *a, const char *text, int64_t n_chunks, int64_t n_ctx,
                         struct mq_imatrix **out)
{
    struct mq_imatrix *im = calloc(1, sizeof(*im));
    int rc = MQ_OK;
    if (!im || !(im->entries = calloc((size_t)a->n_entries, sizeof(*im->entries)))) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate an importance matrix");
        goto done;
    }
    for (int e = 0; e < a->n_entries; e++) {
        const struct mq_layer *ly = &a->m->layers[a->layer_of[e]];
        struct mq_imatrix_entry *d = &im->entries[e];
        snprintf(d->name, sizeof(d->name), "%s", ly->name);
        d->n_in = ly->n_in;
        d->n_mat = 1;
        d->sums = malloc((size_t)ly->n_in * sizeof(float));
        d->counts = malloc(sizeof(float));
        im->n_entries++;
        if (!d->sums || !d->counts) {
            rc = mq_error(MQ_ENOMEM, "cannot allocate an importance matrix");
            goto done;
        }
        for (int64_t k = 0; k < ly->n_in; k++)
            d->sums[k] = (float)a->sums[e][k];
        d->counts[0] = (float)a->rows[e];
        int src = a->want_gram ? (a->gram_src[e] >= 0 ? a->gram_src[e] : e) : -1;
        if (src >= 0 && a->gram[src]) {
            const int64_t K = ly->n_in;
            const double *g = a->gram[src];
            if (!(d->gram = malloc((size_t)(K * K) * sizeof(float)))) {
                rc = mq_error(MQ_ENOMEM, "cannot allocate an importance matrix");
                goto done;
            }
            for (int64_t i = 0; i < K; i++)
                for (int64_t j = i; j < K; j++)
                    d->gram[i * K + j] = d->gram[j * K + i] = (float)g[i * K + j];
        }
    }
    if ((rc = add_dataset(im, text, strlen(text))) < 0)
        goto done;
    im->chunk_count = (uint32_t)n_chunks;
    im->chunk_size = (uint32_t)n_ctx;
done:
    if (rc < 0) {
        mq_imatrix_free(im);
        im = NULL;
    }
    *out = im;
    return rc;
}

/* ---- the chunks as units of work (core/dist.h: over MPI ranks, or in order) ----
 *
 * Every rank (rank 0 too) runs a chunk into a zeroed chunk accumulator and hands back its
 * sums (and Gram sums) as bytes; rank 0 adds them into the totals in chunk order, whichever
 * rank ran them, so that N ranks give one process's sums bit for bit. A chunk's bytes:
 *     int32 n_entries, int32 want_gram, then per entry: int64 rows, int32 gram_src,
 *     int32 has_gram, double sums[n_in], and where has_gram double gram[n_in * n_in]
 *     (its upper triangle summed; the lower is 0). */

struct im_setup {
    char model[4096];
    char backend[32];
    char text[4096];
    uint64_t content_hash;
    int64_t n_ctx, n_tokens;
    int32_t process_output, gram;
};

struct im_job {
    const struct mq_model *m;
    struct mq_model *m_own; /* workers: loaded here */
    struct be_backend *be_own;
    struct mq_plan *p32;
    struct mq_llama *l;
    struct im_acc acc; /* one chunk's sums */
    int32_t *tokens, *chunk;
    size_t n_tokens;
    int64_t n_ctx, n_batch;
    int32_t bos;
};

static void im_job_release(struct im_job *j)
{
    mq_llama_free(j->l);
    mq_plan_free(j->p32);
    im_acc_release(&j->acc);
    free(j->chunk);
    free(j->tokens);
    be_close(j->be_own);
    mq_model_free(j->m_own);
    memset(j, 0, sizeof(*j));
}

/* The text's tokens, the reference plan, the forward pass and the chunk accumulator. */
static int im_job_start(struct im_job *j, const struct mq_model *m, struct be_backend *be,
                        const char *text_path, int64_t n_ctx, bool process_output, bool gram,
                        bool progress)
{
    char *text = NULL;
    size_t text_len = 0;
    j->m = m;
    j->n_ctx = n_ctx;
    /* batches of at most 512 tokens (llama.cpp's ubatch) keep the logits buffer small;
     * how a chunk is split does not change its activations */
    j->n_batch = n_ctx < 512 ? n_ctx : 512;
    j->bos = mq_vocab_add_bos(m->vocab) ? mq_vocab_bos(m->vocab) : -1;
    int rc;
    if ((rc = mq_text_read(text_path, "calibration text", true, &text, &text_len)) < 0 ||
        (rc = mq_vocab_tokenize_special(m->vocab, text, text_len, true, &j->tokens, &j->n_tokens)) <
            0) {
        free(text);
        return rc;
    }
    free(text);
    if (!(j->chunk = malloc((size_t)n_ctx * sizeof(*j->chunk))))
        return mq_error(MQ_ENOMEM, "cannot allocate a chunk of %lld tokens", (long long)n_ctx);
    if ((rc = im_acc_init(&j->acc, m, process_output, gram)) < 0 ||
        (rc = mq_plan_reference(m, be, &j->p32)) < 0)
        return rc;
    struct mq_upload_progress up;
    mq_upload_progress_begin(&up, be, mq_plan_weight_bytes(m, j->p32), progress, j->p32->label);
    rc = mq_llama_new(m, j->p32, be,
                      &(struct mq_llama_config){.n_ctx = n_ctx, .n_batch = j->n_batch}, &j->l);
    mq_upload_progress_end(&up);
    if (rc < 0)
        return rc;
    mq_llama_set_capture(j->l, im_capture, &j->acc);
    return MQ_OK;
}

static int im_job_open(const void *setup, size_t bytes, void **out)
{
    *out = NULL;
    struct im_setup su;
    if (bytes != sizeof(su))
        return mq_error(MQ_EINTERNAL,
                        "an imatrix setup of %zu bytes, want %zu (another mixq build?)", bytes,
                        sizeof(su));
    memcpy(&su, setup, sizeof(su));
    su.model[sizeof(su.model) - 1] = su.backend[sizeof(su.backend) - 1] =
        su.text[sizeof(su.text) - 1] = 0;
    struct im_job *j = calloc(1, sizeof(*j));
    if (!j)
        return mq_error(MQ_ENOMEM, "cannot allocate an imatrix job");
    const char *path = mq_dist_path("MIXQ_MODEL_PATH", su.model);
    int rc = mq_model_load(path, &j->m_own);
    if (rc == MQ_OK && j->m_own->content_hash != su.content_hash)
        rc = mq_error(MQ_EINVAL,
                      "'%s' is not the model rank 0 loaded (another file at that path on this "
                      "machine): every rank needs the same file at the same path (or MIXQ_MODEL_PATH)",
                      path);
    if (rc == MQ_OK && (rc = be_open(su.backend, &(struct be_config){0}, &j->be_own)) == MQ_OK)
        rc = im_job_start(j, j->m_own, j->be_own, su.text, su.n_ctx, su.process_output != 0,
                          su.gram != 0, false);
    if (rc == MQ_OK && (int64_t)j->n_tokens != su.n_tokens)
        rc = mq_error(
            MQ_EINVAL,
            "the calibration text '%s' is %zu tokens here and %lld on rank 0: every rank needs "
            "the same file at the same path",
            su.text, j->n_tokens, (long long)su.n_tokens);
    if (rc < 0) {
        im_job_release(j);
        free(j);
        return rc;
    }
    *out = j;
    return MQ_OK;
}

static void im_job_close(void *ctx)
{
    if (ctx)
        im_job_release(ctx);
    free(ctx);
}

/* The bytes of the chunk accumulator (layout above); n_bytes only where out is NULL. */
static size_t im_acc_pack(const struct im_acc *a, char *out)
{
    size_t at = 0;
#define PUT(ptr, len)                                                                              \
    do {                                                                                           \
        if (out)                                                                                   \
            memcpy(out + at, (ptr), (len));                                                        \
        at += (len);                                                                               \
    } while (0)
    int32_t hdr[2] = {a->n_entries, a->want_gram};
    PUT(hdr, sizeof(hdr));
    for (int e = 0; e < a->n_entries; e++) {
        const int64_t K = a->m->layers[a->layer_of[e]].n_in;
        int32_t src = a->gram_src ? a->gram_src[e] : -1;
        int32_t has = a->want_gram && a->gram && a->gram[e] && src < 0;
        PUT(&a->rows[e], sizeof(int64_t));
        PUT(&src, sizeof(src));
        PUT(&has, sizeof(has));
        PUT(a->sums[e], (size_t)K * sizeof(double));
        if (has)
            PUT(a->gram[e], (size_t)(K * K) * sizeof(double));
    }
#undef PUT
    return at;
}

static int im_job_run(void *ctx, int64_t c, const void *unit, size_t unit_bytes, void **out,
                      size_t *out_bytes)
{
    struct im_job *j = ctx;
    struct im_acc *a = &j->acc;
    (void)unit;
    (void)unit_bytes;
    if (c < 0 || (c + 1) * j->n_ctx > (int64_t)j->n_tokens)
        return mq_error(MQ_EINTERNAL, "imatrix chunk %lld is past the text", (long long)c);
    for (int e = 0; e < a->n_entries;
         e++) { /* a zeroed accumulator; what it learnt of shared inputs stays */
        const int64_t K = j->m->layers[a->layer_of[e]].n_in;
        memset(a->sums[e], 0, (size_t)K * sizeof(double));
        a->rows[e] = 0;
        if (a->gram && a->gram[e])
            memset(a->gram[e], 0, (size_t)(K * K) * sizeof(double));
    }
    memcpy(j->chunk, j->tokens + c * j->n_ctx, (size_t)j->n_ctx * sizeof(*j->chunk));
    if (j->bos >= 0)
        j->chunk[0] = j->bos;
    for (int64_t p = 0; p < j->n_ctx; p += j->n_batch) {
        int64_t k = j->n_ctx - p < j->n_batch ? j->n_ctx - p : j->n_batch;
        int rc = mq_llama_decode(j->l, j->chunk + p, k, p, NULL);
        if (rc < 0)
            return rc;
    }
    size_t n = im_acc_pack(a, NULL);
    char *buf = malloc(n);
    if (!buf)
        return mq_error(MQ_ENOMEM, "cannot allocate %zu bytes of chunk sums", n);
    im_acc_pack(a, buf);
    *out = buf;
    *out_bytes = n;
    return MQ_OK;
}

const struct mq_dist_job mq_imatrix_dist_job = {
    .kind = "imatrix", .open = im_job_open, .run = im_job_run, .close = im_job_close};

/* Rank 0: the totals, and chunks that arrived before their turn. */
struct im_total {
    struct im_acc tot;
    int64_t n_chunks, next; /* the next chunk to add */
    char **early;           /* [n_chunks] */
    size_t *early_n;
    double *seconds; /* [n_chunks]: each chunk's run time */
    struct mq_progress pr;
};

/* Adds one chunk's bytes into the totals (chunk c: for the message). */
static int im_add_chunk(struct im_total *t, int64_t c, const char *b, size_t n)
{
    struct im_acc *a = &t->tot;
    size_t at = 0;
#define TAKE(dst, len)                                                                             \
    do {                                                                                           \
        if (at + (len) > n)                                                                        \
            return mq_error(MQ_EINTERNAL, "imatrix chunk %lld: %zu bytes of sums are short",       \
                            (long long)(c + 1), n);                                                \
        memcpy((dst), b + at, (len));                                                              \
        at += (len);                                                                               \
    } while (0)
    int32_t hdr[2];
    TAKE(hdr, sizeof(hdr));
    if (hdr[0] != a->n_entries)
        return mq_error(MQ_EINTERNAL, "imatrix chunk %lld: %d entries, want %d", (long long)(c + 1),
                        hdr[0], a->n_entries);
    if (!hdr[1])
        a->want_gram = false;
    for (int e = 0; e < a->n_entries; e++) {
        const struct mq_layer *ly = &a->m->layers[a->layer_of[e]];
        const int64_t K = ly->n_in;
        int64_t rows;
        int32_t src, has;
        TAKE(&rows, sizeof(rows));
        TAKE(&src, sizeof(src));
        TAKE(&has, sizeof(has));
        a->rows[e] += rows;
        if (at + (size_t)K * sizeof(double) > n)
            return mq_error(MQ_EINTERNAL, "imatrix chunk %lld: %zu bytes of sums are short",
                            (long long)(c + 1), n);
        const double *sums = (const double *)(const void *)(b + at);
        for (int64_t k = 0; k < K; k++) {
            double v;
            memcpy(&v, sums + k, sizeof(v));
            a->sums[e][k] += v;
            if (!isfinite((float)a->sums[e][k]))
                return mq_error(MQ_ERANGE, "non-finite activations into '%s' in chunk %lld",
                                ly->name, (long long)(c + 1));
        }
        at += (size_t)K * sizeof(double);
        if (a->gram_src && src >= -1 && src < a->n_entries)
            a->gram_src[e] = src;
        if (has && a->want_gram) {
            if (at + (size_t)(K * K) * sizeof(double) > n)
                return mq_error(MQ_EINTERNAL, "imatrix chunk %lld: %zu bytes of sums are short",
                                (long long)(c + 1), n);
            if (!a->gram[e] && !(a->gram[e] = calloc((size_t)(K * K), sizeof(double))))
                return mq_error(MQ_ENOMEM, "cannot allocate a Gram matrix of %lld inputs",
                                (long long)K);
            const double *g = (const double *)(const void *)(b + at);
            for (int64_t i = 0; i < K * K; i++) {
                double v;
                memcpy(&v, g + i, sizeof(v));
                a->gram[e][i] += v;
            }
        }
        if (has)
            at += (size_t)(K * K) * sizeof(double);
    }
#undef TAKE
    return MQ_OK;
}

/* A chunk's sums arrive (any order): added in chunk order. */
static int im_result(void *arg, int64_t c, const void *bytes, size_t n)
{
    struct im_total *t = arg;
    if (c != t->next) { /* early: kept for its turn (the window bounds how many) */
        if (!(t->early[c] = malloc(n + 1)))
            return mq_error(MQ_ENOMEM, "cannot keep %zu bytes of chunk sums", n);
        memcpy(t->early[c], bytes, n);
        t->early_n[c] = n;
        return MQ_OK;
    }
    int rc = im_add_chunk(t, c, bytes, n);
    for (t->next++; rc == MQ_OK && t->next < t->n_chunks && t->early[t->next]; t->next++) {
        rc = im_add_chunk(t, t->next, t->early[t->next], t->early_n[t->next]);
        free(t->early[t->next]);
        t->early[t->next] = NULL;
    }
    mq_progress_step(&t->pr, t->next, false, NULL);
    return rc;
}

int mq_imatrix_compute(const struct mq_model *m, struct be_backend *be, const struct mq_imatrix_config *cfg,
                       struct mq_imatrix **out)
{
    *out = NULL;
    if (m->kind != MQ_MODEL_LLAMA)
        return mq_error(MQ_EUNSUPPORTED,
                        "'%s' is not a llama (GGUF) model: importance matrices are llama.cpp's, for GGUF models only",
                        m->path);
    if (!cfg->text)
        return mq_error(MQ_EINVAL, "no calibration text given for the importance matrix");
    const int64_t n_train = m->hp.n_ctx_train;
    int64_t n_ctx = cfg->n_ctx;
    if (n_ctx == 0)
        n_ctx = n_train > 0 && n_train < MQ_IMATRIX_DEFAULT_CTX ? n_train : MQ_IMATRIX_DEFAULT_CTX;
    if (n_ctx < MQ_IMATRIX_MIN_CTX || n_ctx > INT32_MAX / 2)
        return mq_error(MQ_EINVAL, "imatrix context %lld is out of range (%d to %d tokens; llama-imatrix ignores "
                        "batches under %d tokens)", (long long)n_ctx, MQ_IMATRIX_MIN_CTX, INT32_MAX / 2,
                        MQ_IMATRIX_MIN_CTX);
    if (cfg->max_chunks < 0)
        return mq_error(MQ_EINVAL, "imatrix chunk limit %lld is negative", (long long)cfg->max_chunks);

    char *text = NULL;
    size_t text_len = 0, n_tokens = 0;
    int32_t *tokens = NULL;
    struct im_job j = {0};
    struct im_total t = {0};
    int rc;
    /* the token count first: a short text is refused before anything is uploaded */
    if ((rc = mq_text_read(cfg->text, "calibration text", true, &text, &text_len)) < 0 ||
        (rc = mq_vocab_tokenize_special(m->vocab, text, text_len, true, &tokens, &n_tokens)) < 0)
        goto done;
    if ((int64_t)n_tokens < 2 * n_ctx) {
        rc = mq_error(MQ_EINVAL, "calibration text '%s' has %zu tokens: it needs at least %lld (2 x context %lld)",
                      cfg->text, n_tokens, (long long)(2 * n_ctx), (long long)n_ctx);
        goto done;
    }
    if (n_train > 0 && n_ctx > n_train)
        mq_warn("imatrix context %lld is longer than the model's training context %lld", (long long)n_ctx,
                (long long)n_train);
    int64_t n_chunks = (int64_t)n_tokens / n_ctx;
    if (cfg->max_chunks > 0 && cfg->max_chunks < n_chunks)
        n_chunks = cfg->max_chunks;
    mq_debug("imatrix: '%s': %zu tokens, %lld chunks of %lld", cfg->text, n_tokens, (long long)n_chunks,
             (long long)n_ctx);
    if ((rc = im_job_start(&j, m, be, cfg->text, n_ctx, cfg->process_output, cfg->gram,
                           cfg->progress)) < 0 ||
        (rc = im_acc_init(&t.tot, m, cfg->process_output, cfg->gram)) < 0)
        goto done;
    t.n_chunks = n_chunks;
    t.early = calloc((size_t)n_chunks + 1, sizeof(*t.early));
    t.early_n = calloc((size_t)n_chunks + 1, sizeof(*t.early_n));
    t.seconds = calloc((size_t)n_chunks + 1, sizeof(*t.seconds));
    if (!t.early || !t.early_n || !t.seconds) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %lld chunks", (long long)n_chunks);
        goto done;
    }
    struct im_setup su = {.content_hash = m->content_hash,
                          .n_ctx = n_ctx,
                          .n_tokens = (int64_t)j.n_tokens,
                          .process_output = cfg->process_output,
                          .gram = cfg->gram};
    snprintf(su.model, sizeof(su.model), "%s", m->path);
    snprintf(su.backend, sizeof(su.backend), "%s", be_name(be));
    snprintf(su.text, sizeof(su.text), "%s", cfg->text);
    if (mq_dist_size() > 1)
        mq_info("imatrix: %lld chunks over %d MPI ranks", (long long)n_chunks, mq_dist_size());
    mq_progress_init(&t.pr, cfg->progress, "imatrix chunk", n_chunks);
    struct mq_dist_map mp = {.job = &mq_imatrix_dist_job,
                             .setup = &su,
                             .setup_bytes = sizeof(su),
                             .n = n_chunks,
                             .local = &j,
                             .result = im_result,
                             .arg = &t,
                             .window = 2 * (int64_t)mq_dist_size(),
                             .what = "imatrix chunks",
                             .unit_seconds = t.seconds};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = mq_dist_run(&mp);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    mq_progress_end(&t.pr);
    if (rc == MQ_OK)
        mq_dist_report("imatrix chunks", t.seconds, n_chunks,
                       (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    if (rc == MQ_OK)
        rc = im_acc_result(&t.tot, cfg->text, n_chunks, n_ctx, out);
done:
    im_job_release(&j);
    im_acc_release(&t.tot);
    if (t.early)
        for (int64_t c = 0; c < t.n_chunks; c++)
            free(t.early[c]);
    free(t.early);
    free(t.early_n);
    free(t.seconds);
    free(tokens);
    free(text);
    return rc;
}
