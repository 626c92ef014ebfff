/* profiler/imatrix_cache.c - importance matrices kept in the cache folder; overlapping
 * texts. Contract in imatrix_cache.h. */
#include "profiler/imatrix_cache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/sha256.h"
#include "core/status.h"
#include "profiler/cache.h"
#include "profiler/measure.h"

#define IMATRIX_CACHE_VERSION "imatrix/2" /* 2: computed on mq_plan_reference, not all-f32 */

int prof_imatrix_key(const struct mq_model *m, const struct mq_imatrix_config *cfg, char *key, size_t size)
{
    MQ_ASSERT(size >= PROF_IMATRIX_KEY_MAX);
    if (m->kind != MQ_MODEL_LLAMA)
        return mq_error(MQ_EUNSUPPORTED, "'%s' is not a llama (GGUF) model: importance matrices are for GGUF models "
                        "only", m->path);
    char sha[65];
    int rc = mq_sha256_file(cfg->text, sha);
    if (rc < 0)
        return rc;
    /* 0 resolves as mq_imatrix_compute resolves it, so both spellings share a file */
    int64_t n_ctx = cfg->n_ctx, n_train = m->hp.n_ctx_train;
    if (n_ctx == 0)
        n_ctx = n_train > 0 && n_train < MQ_IMATRIX_DEFAULT_CTX ? n_train : MQ_IMATRIX_DEFAULT_CTX;
    snprintf(key, size, "%s model=%016llx text=%s ctx=%lld chunks=%lld output=%d gram=%d", IMATRIX_CACHE_VERSION,
             (unsigned long long)m->content_hash, sha, (long long)n_ctx, (long long)cfg->max_chunks,
             cfg->process_output ? 1 : 0, cfg->gram ? 1 : 0);
    return MQ_OK;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
        return mq_error(MQ_EINVAL, "cache folder name '%.64s...' is too long", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return mq_error(MQ_EIO, "cannot create cache folder '%s': %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return mq_error(MQ_EIO, "cannot create cache folder '%s': %s", p, strerror(errno));
    return MQ_OK;
}

int prof_imatrix_get(const struct mq_model *m, struct be_backend *be, const struct mq_imatrix_config *cfg,
                     const char *dir, bool refresh, struct prof_imatrix_file *out)
{
    memset(out, 0, sizeof(*out));
    int rc = prof_imatrix_key(m, cfg, out->key, sizeof(out->key));
    if (rc < 0)
        return rc;
    snprintf(out->path, sizeof(out->path), "%s/imatrix-%016llx.gguf", dir,
             (unsigned long long)mq_hash64(out->key, strlen(out->key), 0x696d6174ULL));
    /* the entry: chunk_count, chunk_size, the file's bytes, the seconds it took */
    double v[4];
    struct stat st;
    if (!refresh && prof_cache_get(dir, out->key, v, 4) == 4 && stat(out->path, &st) == 0 && S_ISREG(st.st_mode) &&
        (double)st.st_size == v[2]) {
        out->hit = true;
        out->chunk_count = (uint32_t)v[0];
        out->chunk_size = (uint32_t)v[1];
        out->seconds = v[3];
        return MQ_OK;
    }
    struct mq_imatrix *im = NULL;
    uint64_t t0 = prof_now_ns();
    if ((rc = mq_imatrix_compute(m, be, cfg, &im)) < 0)
        return rc;
    out->seconds = (double)(prof_now_ns() - t0) * 1e-9;
    out->chunk_count = im->chunk_count;
    out->chunk_size = im->chunk_size;
    if ((rc = make_dirs(dir)) == MQ_OK)
        rc = mq_imatrix_write(im, out->path);
    mq_imatrix_free(im);
    if (rc < 0)
        return rc;
    if (stat(out->path, &st) != 0)
        return mq_error(MQ_EIO, "cannot read back '%s': %s", out->path, strerror(errno));
    double w[4] = {out->chunk_count, out->chunk_size, (double)st.st_size, out->seconds};
    return prof_cache_put(dir, out->key, w, 4);
}

int prof_text_overlap(const char *a, const char *b, bool *overlap)
{
    *overlap = false;
    struct stat sa, sb;
    if (stat(a, &sa) != 0)
        return mq_error(MQ_EIO, "cannot read '%s': %s", a, strerror(errno));
    if (stat(b, &sb) != 0)
        return mq_error(MQ_EIO, "cannot read '%s': %s", b, strerror(errno));
    if (sa.st_size == 0 || sb.st_size == 0)
        return MQ_OK;
    if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino) {
        *overlap = true;
        return MQ_OK;
    }
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int rc = MQ_OK;
    if (!fa || !fb) {
        rc = mq_error(MQ_EIO, "cannot read '%s': %s", fa ? b : a, strerror(errno));
        goto done;
    }
    /* compare until the shorter text ends: a prefix overlaps */
    for (;;) {
        char ba[8192], bb[8192];
        size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
        size_t n = na < nb ? na : nb;
        if (memcmp(ba, bb, n) != 0)
            break;
        if (na != nb || na < sizeof(ba)) { /* one text ended (or both), equal up to there */
            if (ferror(fa) || ferror(fb)) {
                rc = mq_error(MQ_EIO, "cannot read '%s': %s", ferror(fa) ? a : b, strerror(errno));
                goto done;
            }
            *overlap = true;
            break;
        }
    }
done:
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return rc;
}
