/* model/synth.c - synthetic models of every architecture mixq runs, for cost profiling
 * and forward-pass oracles. The contract is in synth.h.
 *
 * Weights: each row of each matrix has its own generator, seeded from (seed, tensor
 * name, row), so rows can be produced in any order and on any number of threads with the
 * same result. The generator is splitmix64; each 64-bit draw gives four 16-bit uniforms
 * u, and a weight is the normal quantile of (u + 0.5) / 65536 times stddev, looked up in
 * a table (already converted to the weight type for f32, f16 and bf16). That is a normal
 * distribution quantized to 65536 equiprobable levels (tails cut at 4.3 sigma): about
 * one nanosecond a weight, where Box-Muller would cost tens.
 */
#include "model/synth.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/pool.h"
#include "core/progress.h"
#include "core/status.h"
#include "llm/arch.h"
#include "model/model.h"

/* Shapes from the models' config.json files (Hugging Face). Llama 3's rope scaling
 * ("llama3", beyond 8192 positions) is left out: costs at the contexts profiled do not
 * depend on it, and mixq reads only linear scaling. Contexts are 8192 for the Llama 3
 * shapes (their pre-training context) so that a session sized by the training context
 * stays modest. */
/* clang-format off */
static const struct mq_synth_config presets[] = {
    {.name = "tiny", .like = "test-sized", .n_vocab = 512, .n_ctx = 256,
     .n_embd = 64, .n_layer = 2, .n_ff = 128, .n_head = 4, .n_head_kv = 2,
     .rope_theta = 10000.0f, .norm_eps = 1e-5f},
    {.name = "1B", .like = "Llama-3.2-1B", .n_vocab = 128256, .n_ctx = 8192,
     .n_embd = 2048, .n_layer = 16, .n_ff = 8192, .n_head = 32, .n_head_kv = 8,
     .rope_theta = 500000.0f, .norm_eps = 1e-5f},
    {.name = "3B", .like = "Llama-3.2-3B", .n_vocab = 128256, .n_ctx = 8192,
     .n_embd = 3072, .n_layer = 28, .n_ff = 8192, .n_head = 24, .n_head_kv = 8,
     .rope_theta = 500000.0f, .norm_eps = 1e-5f},
    {.name = "7B", .like = "Llama-2-7B", .n_vocab = 32000, .n_ctx = 4096,
     .n_embd = 4096, .n_layer = 32, .n_ff = 11008, .n_head = 32, .n_head_kv = 32,
     .rope_theta = 10000.0f, .norm_eps = 1e-5f},
    {.name = "8B", .like = "Llama-3.1-8B", .n_vocab = 128256, .n_ctx = 8192,
     .n_embd = 4096, .n_layer = 32, .n_ff = 14336, .n_head = 32, .n_head_kv = 8,
     .rope_theta = 500000.0f, .norm_eps = 1e-5f},
    {.name = "13B", .like = "Llama-2-13B", .n_vocab = 32000, .n_ctx = 4096,
     .n_embd = 5120, .n_layer = 40, .n_ff = 13824, .n_head = 40, .n_head_kv = 40,
     .rope_theta = 10000.0f, .norm_eps = 1e-5f},
    {.name = "70B", .like = "Llama-3.1-70B", .n_vocab = 128256, .n_ctx = 8192,
     .n_embd = 8192, .n_layer = 80, .n_ff = 28672, .n_head = 64, .n_head_kv = 8,
     .rope_theta = 500000.0f, .norm_eps = 1e-5f},
};
/* clang-format on */

#define SYNTH_DEFAULT_STDDEV 0.02
#define SYNTH_LEVELS 65536 /* equiprobable levels of the weight distribution */
#define SYNTH_BOS 256
#define SYNTH_EOS 257
/* llama_token_type values, as they reach files */
#define TOKEN_NORMAL 1
#define TOKEN_UNKNOWN 2
#define TOKEN_CONTROL 3
#define TOKEN_UNUSED 5

const struct mq_synth_config *mq_synth_presets(size_t *n)
{
    *n = sizeof(presets) / sizeof(presets[0]);
    return presets;
}

int mq_synth_preset(const char *name, struct mq_synth_config *out)
{
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
        if (!strcasecmp(presets[i].name, name)) {
            *out = presets[i];
            return MQ_OK;
        }
    return MQ_ENOTFOUND;
}

/* The config's architecture row (llama when it names none; an unknown name also gives
 * llama here, mq_synth_check refuses it). */
static const struct mq_arch *synth_arch(const struct mq_synth_config *c)
{
    const struct mq_arch *a = c->arch ? mq_arch_find(c->arch) : NULL;
    return a ? a : mq_arch_find("llama");
}

static int64_t head_dim(const struct mq_synth_config *c)
{
    return c->head_dim ? c->head_dim : c->n_embd / c->n_head;
}

/* A config's names, for custom configs that leave them NULL. */
static const char *cfg_name(const struct mq_synth_config *c)
{
    return c->name ? c->name : "custom";
}
static const char *cfg_like(const struct mq_synth_config *c)
{
    return c->like ? c->like : "custom";
}

int mq_synth_check(const struct mq_synth_config *c)
{
    const char *n = cfg_name(c);
    if (c->n_embd < 32 || c->n_embd > (1 << 20) || c->n_embd % 32 || c->n_ff < 32 ||
        c->n_ff > (1 << 22) || c->n_ff % 32)
        return mq_error(MQ_EINVAL,
                        "synthetic model '%s': embedding %" PRId64 " and ffn %" PRId64
                        " must be multiples of 32 in 32..2^20 and 32..2^22",
                        n, c->n_embd, c->n_ff);
    if (c->n_layer < 1 || c->n_layer > 4096 || c->n_ctx < 1 || c->n_ctx > (1 << 30))
        return mq_error(MQ_EINVAL,
                        "synthetic model '%s': %" PRId64 " blocks, context %" PRId64
                        " out of range (1..4096, 1..2^30)",
                        n, c->n_layer, c->n_ctx);
    if (c->n_head < 1 || c->n_head_kv < 1 || c->n_embd % c->n_head || c->n_head % c->n_head_kv ||
        (c->n_embd / c->n_head) % 2)
        return mq_error(MQ_EINVAL,
                        "synthetic model '%s': %" PRId64 " heads (%" PRId64 " kv) do not divide "
                        "an embedding of %" PRId64 " into even head dimensions",
                        n, c->n_head, c->n_head_kv, c->n_embd);
    if (c->arch && !strcmp(c->arch, "phi3") && c->n_vocab < MQ_SYNTH_MIN_VOCAB + 2)
        return mq_error(MQ_EINVAL, "synthetic model '%s': phi3 needs a vocabulary of %d or more", n,
                        MQ_SYNTH_MIN_VOCAB + 2);
    if (c->arch && !mq_arch_find(c->arch)) {
        char list[256];
        mq_arch_list(list, sizeof(list));
        return mq_error(MQ_EINVAL, "synthetic model '%s': architecture '%s' is not one of %s", n, c->arch, list);
    }
    if (c->head_dim < 0 || c->head_dim % 2 || c->head_dim > 1024 || c->n_swa < 0 || c->n_swa > (1 << 30))
        return mq_error(MQ_EINVAL, "synthetic model '%s': head size %" PRId64 " (even, 0..1024) or window %" PRId64
                        " out of range", n, c->head_dim, c->n_swa);
    /* q, k and v rows are head_dim * heads long: q4_0 and q8_0 need multiples of 32 too */
    if ((head_dim(c) * c->n_head_kv) % 32 || (head_dim(c) * c->n_head) % 32)
        return mq_error(MQ_EINVAL,
                        "synthetic model '%s': kv width %" PRId64 " or q width %" PRId64
                        " is not a multiple of 32", n, head_dim(c) * c->n_head_kv, head_dim(c) * c->n_head);
    if (c->rope_freqs && !(mq_arch_find(c->arch ? c->arch : "llama")->flags & (MQ_ARCH_ROPE_FREQS | MQ_ARCH_LONGROPE)))
        return mq_error(MQ_EINVAL, "synthetic model '%s': architecture '%s' has no RoPE frequency factors", n,
                        c->arch ? c->arch : "llama");
    if (c->n_vocab < MQ_SYNTH_MIN_VOCAB || c->n_vocab > MQ_SYNTH_MAX_VOCAB)
        return mq_error(MQ_EINVAL,
                        "synthetic model '%s': vocabulary of %" PRId64 " is out of range %d..%d", n,
                        c->n_vocab, MQ_SYNTH_MIN_VOCAB, MQ_SYNTH_MAX_VOCAB);
    if (!(c->rope_theta >= 1.0f && c->rope_theta <= 1e12f) ||
        !(c->norm_eps > 0.0f && c->norm_eps < 1.0f))
        return mq_error(MQ_EINVAL,
                        "synthetic model '%s': rope base %g or norm epsilon %g out of range", n,
                        (double)c->rope_theta, (double)c->norm_eps);
    return MQ_OK;
}

int64_t mq_synth_n_params(const struct mq_synth_config *c)
{
    if (c->n_head < 1)
        return 0;
    const struct mq_arch *a = synth_arch(c);
    int64_t D = head_dim(c), q = D * c->n_head, kv = D * c->n_head_kv, E = c->n_embd;
    int64_t block = E * (2 * q + 2 * kv + 3 * c->n_ff) + 2 * E;
    if (!strcmp(a->name, "qwen2"))
        block += q + 2 * kv;
    if (a->flags & MQ_ARCH_QK_NORM)
        block += 2 * D;
    if (a->flags & MQ_ARCH_POST_NORMS)
        block += 2 * E;
    int64_t embd = (a->flags & MQ_ARCH_TIED) || !strcmp(a->name, "gemma3") ? 1 : 2;
    return c->n_layer * block + embd * c->n_vocab * E + E;
}

/* ---- the weight distribution ---------------------------------------------------------- */

/* The standard normal quantile, Acklam's rational approximation (relative error below
 * 1.2e-9 over (0, 1)), ample for a table of 65536 levels. */
static double normal_quantile(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    const double lo = 0.02425;
    if (p < lo) {
        double q = sqrt(-2.0 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    if (p > 1.0 - lo)
        return -normal_quantile(1.0 - p);
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

static inline uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- generation ----------------------------------------------------------------------- */

struct synth_gen {
    enum mq_dtype type;
    const float *levels; /* [SYNTH_LEVELS] weights as f32 */
    const void *coded;   /* [SYNTH_LEVELS] weights in `type` (plain types), else NULL */
    size_t elem_bytes;   /* plain types: bytes per weight */
    struct mq_pool *pool;
    float **scratch; /* [threads] rows of f32 for the quantized types */
    /* progress */
    bool progress;
    uint64_t total_bytes, done_bytes;
    double t_start, t_last;
    const char *what;
    struct mq_progress pr; /* the estimate of the time left (bytes as steps) */
};

/* One tensor's rows: borrowed by the writer until the write. */
struct synth_tensor {
    struct synth_gen *gen;
    int64_t n_in; /* weights per row */
    size_t row_bytes;
    uint64_t seed; /* from the run's seed and the tensor's name */
};

struct synth_job {
    const struct synth_tensor *t;
    int64_t row0, n_rows;
    uint8_t *dst;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Row r of tensor t into dst. */
static void gen_row(const struct synth_tensor *t, int64_t r, void *dst, float *scratch)
{
    const struct synth_gen *g = t->gen;
    uint64_t s = t->seed ^ ((uint64_t)r * 0xd1b54a32d192ed03ULL);
    splitmix64(&s);      /* decorrelate neighbouring rows' seeds */
    int64_t n = t->n_in; /* a multiple of 32, so of 4 */
    if (g->coded && g->elem_bytes == 2) {
        const uint16_t *tab = g->coded;
        uint16_t *out = dst;
        for (int64_t i = 0; i < n; i += 4) {
            uint64_t x = splitmix64(&s);
            out[i] = tab[x & 0xffff];
            out[i + 1] = tab[(x >> 16) & 0xffff];
            out[i + 2] = tab[(x >> 32) & 0xffff];
            out[i + 3] = tab[x >> 48];
        }
        return;
    }
    float *f = g->coded ? dst : (void *)scratch; /* f32 itself, or a row to quantize */
    for (int64_t i = 0; i < n; i += 4) {
        uint64_t x = splitmix64(&s);
        f[i] = g->levels[x & 0xffff];
        f[i + 1] = g->levels[(x >> 16) & 0xffff];
        f[i + 2] = g->levels[(x >> 32) & 0xffff];
        f[i + 3] = g->levels[x >> 48];
    }
    if (!g->coded)
        mq_dtype_get(g->type)->from_f32(scratch, dst, n);
}

static void gen_worker(void *arg, int ith, int nth)
{
    const struct synth_job *j = arg;
    int64_t lo, hi;
    mq_pool_split(j->n_rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++)
        gen_row(j->t, j->row0 + r, j->dst + (size_t)r * j->t->row_bytes, j->t->gen->scratch[ith]);
}

static void show_progress(struct synth_gen *g, bool last)
{
    if (!g->progress)
        return;
    double t = now_s();
    if (!last && t - g->t_last < 0.25)
        return;
    g->t_last = t;
    double gib = (double)g->total_bytes / (double)(1u << 30);
    g->pr.total = (int64_t)g->total_bytes;
    mq_progress_step(&g->pr, (int64_t)g->done_bytes, false, NULL); /* the estimate only: pr prints nothing */
    char left[48];
    mq_progress_left_text(&g->pr, left, sizeof(left));
    /* the cursor goes back to the line's start after each update, so that an error line
     * printed during the write overwrites the progress instead of trailing it */
    fprintf(stderr, "mixq: writing %s: %3.0f%% of %.2f GiB, %.0f s%s%s\033[K%c", g->what,
            100.0 * (double)g->done_bytes / (double)g->total_bytes, gib, t - g->t_start, left[0] && !last ? ", " : "",
            last ? "" : left, last ? '\n' : '\r');
}

static int synth_rows(void *ctx, const char *name, int64_t row0, int64_t n_rows, void *dst)
{
    (void)name;
    const struct synth_tensor *t = ctx;
    struct synth_job job = {.t = t, .row0 = row0, .n_rows = n_rows, .dst = dst};
    /* small chunks are not worth waking the pool's threads for */
    mq_pool_run(n_rows * t->n_in >= 65536 ? t->gen->pool : NULL, gen_worker, &job);
    t->gen->done_bytes += (uint64_t)n_rows * t->row_bytes;
    show_progress(t->gen, false);
    return MQ_OK;
}

/* ---- the vocabulary ------------------------------------------------------------------- */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others for
 * U+0100 onwards in byte order. Writes the UTF-8 of byte b's code point; returns its
 * length. */
static int byte_token(int b, char *out)
{
    int cp;
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) {
        cp = b;
    } else {
        int k = 0; /* non-printable bytes before b */
        for (int i = 0; i < b; i++)
            k +=
                !((i >= 0x21 && i <= 0x7e) || (i >= 0xa1 && i <= 0xac) || (i >= 0xae && i <= 0xff));
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

#define TOKEN_MAX_BYTES 24 /* "<filler_4294967295>" and the byte tokens fit */

/* Token texts and types for a vocabulary of n: *texts (one malloc'd block of pointers
 * and strings) and *types (malloc'd), both freed by the caller. */
/* `phi3_tokens`: "<unk>" (259) and "<|endoftext|>" (260) too, which llama.cpp's vocabulary
 * loader looks up in every model whose name says phi3 */
static int build_vocab(int64_t n, bool phi3_tokens, char ***texts, int32_t **types)
{
    *texts = NULL;
    *types = NULL;
    char **t = malloc((size_t)n * (sizeof(char *) + TOKEN_MAX_BYTES));
    int32_t *ty = malloc((size_t)n * sizeof(*ty));
    if (!t || !ty) {
        free(t);
        free(ty);
        return mq_error(MQ_ENOMEM, "cannot allocate a vocabulary of %" PRId64 " tokens", n);
    }
    char *s = (char *)(t + n);
    for (int64_t i = 0; i < n; i++) {
        t[i] = s + (size_t)i * TOKEN_MAX_BYTES;
        ty[i] = TOKEN_UNUSED;
        if (i < 256) {
            t[i][byte_token((int)i, t[i])] = '\0';
            ty[i] = TOKEN_NORMAL;
        } else if (i == SYNTH_BOS || i == SYNTH_EOS) {
            snprintf(t[i], TOKEN_MAX_BYTES, "%s", i == SYNTH_BOS ? "<s>" : "</s>");
            ty[i] = TOKEN_CONTROL;
        } else if (phi3_tokens && (i == 259 || i == 260)) {
            snprintf(t[i], TOKEN_MAX_BYTES, "%s", i == 259 ? "<unk>" : "<|endoftext|>");
            ty[i] = i == 259 ? TOKEN_UNKNOWN : TOKEN_CONTROL;
        } else if (i == 258) { /* the result of the one merge: two NUL bytes */
            int k = byte_token(0, t[i]);
            memcpy(t[i] + k, t[i], (size_t)k);
            t[i][2 * k] = '\0';
            ty[i] = TOKEN_NORMAL;
        } else {
            snprintf(t[i], TOKEN_MAX_BYTES, "<filler_%u>", (unsigned)i); /* i < 2^22 */
        }
    }
    *texts = t;
    *types = ty;
    return MQ_OK;
}

/* ---- the file ------------------------------------------------------------------------- */

struct synth_file {
    struct mq_gguf_writer *w;
    struct synth_tensor *tensors; /* [n_tensors] the writer's row callbacks' contexts */
    int n_tensors;
    float *ones; /* [max(n_embd, head_dim)] the norm weights, borrowed by the writer */
    float *biases; /* [n_layer][q + 2 kv] qwen2's biases, borrowed by the writer */
    float *rope_freqs; /* [head_dim / 2] RoPE frequency factors (LongRoPE: short, then long),
                          borrowed by the writer */
};

/* llama 3.1's RoPE frequency factors for head size D, as convert_hf_to_gguf.py computes
 * them for rope_type "llama3" (factor 8, low_freq_factor 1, high_freq_factor 4), with
 * n_ctx as original_max_position_embeddings: 1 for wavelengths under n_ctx / 4, 8 over
 * n_ctx, a smooth blend between. */
static void llama3_rope_factors(float theta, int64_t D, int64_t n_ctx, float *out)
{
    const double factor = 8.0, low = 1.0, high = 4.0;
    double low_wavelen = (double)n_ctx / low, high_wavelen = (double)n_ctx / high;
    for (int64_t i = 0; i < D / 2; i++) {
        double freq = 1.0 / pow((double)theta, (double)(2 * i) / (double)D);
        double wavelen = 6.283185307179586 / freq; /* 2 pi / freq */
        if (wavelen < high_wavelen) {
            out[i] = 1.0f;
        } else if (wavelen > low_wavelen) {
            out[i] = (float)factor;
        } else {
            double smooth = ((double)n_ctx / wavelen - low) / (high - low);
            out[i] = (float)(1.0 / ((1.0 - smooth) / factor + smooth));
        }
    }
}

static void synth_file_release(struct synth_file *f)
{
    mq_gguf_writer_free(f->w);
    free(f->tensors);
    free(f->ones);
    free(f->biases);
    free(f->rope_freqs);
    memset(f, 0, sizeof(*f));
}

static int check_options(const struct mq_synth_options *o)
{
    if ((unsigned)o->type >= MQ_DTYPE_COUNT || !mq_dtype_get(o->type)->is_plan_format ||
        !mq_dtype_get(o->type)->from_f32) {
        char list[256];
        mq_dtype_list_plan_formats(list, sizeof(list));
        return mq_error(MQ_EINVAL, "synthetic weights of type '%s': want one of %s",
                        (unsigned)o->type < MQ_DTYPE_COUNT ? mq_dtype_name(o->type) : "?", list);
    }
    if (!(o->stddev >= 0.0 && o->stddev <= 1.0))
        return mq_error(MQ_EINVAL, "synthetic weights: stddev %g is out of range 0..1 (0: 0.02)",
                        o->stddev);
    if (o->threads < 0 || o->threads > 1024)
        return mq_error(MQ_EINVAL, "synthetic weights: %d threads is out of range 0..1024",
                        o->threads);
    return MQ_OK;
}

static int add_matrix(struct synth_file *f, struct synth_gen *gen, uint64_t seed, const char *name,
                      int64_t n_in, int64_t n_out, enum mq_dtype type)
{
    if (!mq_dtype_row_ok(type, n_in))
        return mq_error(MQ_EINVAL, "synthetic %s weights: '%s' has rows of %lld values, not whole %s blocks of %lld",
                        mq_dtype_name(type), name, (long long)n_in, mq_dtype_name(type),
                        (long long)mq_dtype_get(type)->block_elems);
    struct synth_tensor *t = &f->tensors[f->n_tensors++];
    t->gen = gen;
    t->n_in = n_in;
    t->seed = mq_hash64(name, strlen(name), seed);
    int rc = mq_dtype_row_bytes(type, n_in, &t->row_bytes);
    if (rc < 0)
        return rc;
    return mq_gguf_writer_add_tensor_fn(f->w, name, type, 2, (int64_t[]){n_in, n_out}, synth_rows,
                                        t);
}

/* The writer with every key and tensor of the model; `gen` (may be NULL when only the
 * size is wanted) is what the row callbacks will use. */
static int synth_file_build(const struct mq_synth_config *c, const struct mq_synth_options *o,
                            enum mq_dtype type, struct synth_gen *gen, struct synth_file *f)
{
    memset(f, 0, sizeof(*f));
    char **texts = NULL;
    int32_t *types = NULL;
    int rc = mq_synth_check(c);
    if (rc < 0)
        return rc;
    const struct mq_arch *a = synth_arch(c);
    bool qwen2 = !strcmp(a->name, "qwen2"), phi3 = !strcmp(a->name, "phi3");
    int64_t E = c->n_embd, D = head_dim(c), Q = D * c->n_head, KV = D * c->n_head_kv, F = c->n_ff;
    f->w = mq_gguf_writer_new();
    f->tensors = calloc((size_t)c->n_layer * 7 + 2, sizeof(*f->tensors));
    f->ones = malloc((size_t)(E > D ? E : D) * sizeof(float));
    f->biases = qwen2 ? malloc((size_t)c->n_layer * (size_t)(Q + 2 * KV) * sizeof(float)) : NULL;
    if (!f->w || !f->tensors || !f->ones || (qwen2 && !f->biases)) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate a synthetic model");
        goto fail;
    }
    for (int64_t i = 0; i < (E > D ? E : D); i++)
        f->ones[i] = 1.0f;
    if (qwen2) { /* uniform in +-0.5, splitmix64 from the seed */
        uint64_t x = o->seed ^ 0x62696173ULL;
        for (int64_t i = 0; i < c->n_layer * (Q + 2 * KV); i++)
            f->biases[i] = (float)((double)(splitmix64(&x) >> 11) / 9007199254740992.0 - 0.5);
    }

    double stddev = o->stddev > 0.0 ? o->stddev : SYNTH_DEFAULT_STDDEV;
    char name[256], desc[512];
    snprintf(name, sizeof(name), "synthetic %s %s (random weights, %s shapes)", a->name, cfg_name(c),
             cfg_like(c));
    snprintf(desc, sizeof(desc),
             "random weights (normal, stddev %g) at the shapes of %s, written by mixq synth for "
             "cost profiling only: its outputs are meaningless, never measure quality with it",
             stddev, cfg_like(c));
    struct mq_gguf_writer *w = f->w;
    char key[96];
#define KEY(k) (snprintf(key, sizeof(key), "%s.%s", a->name, (k)), key)
    if ((rc = mq_gguf_writer_set_str(w, "general.architecture", a->name)) < 0 ||
        (rc = mq_gguf_writer_set_str(w, "general.name", name)) < 0 ||
        (rc = mq_gguf_writer_set_str(w, "general.description", desc)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, "general.file_type", (uint32_t)mq_dtype_get(type)->llama_ftype)) < 0 ||
        (rc = mq_gguf_writer_set_bool(w, "mixq.synthetic", true)) < 0 ||
        (rc = mq_gguf_writer_set_str(w, "mixq.synthetic.preset", cfg_name(c))) < 0 ||
        (rc = mq_gguf_writer_set_str(w, "mixq.synthetic.like", cfg_like(c))) < 0 ||
        (rc = mq_gguf_writer_set_u64(w, "mixq.synthetic.seed", o->seed)) < 0 ||
        (rc = mq_gguf_writer_set_f32(w, "mixq.synthetic.stddev", (float)stddev)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)c->n_vocab)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)c->n_ctx)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)c->n_layer)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->n_ff)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_head_kv)) <
            0 ||
        (rc = mq_gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)D)) < 0 ||
        (rc = mq_gguf_writer_set_f32(w, KEY("rope.freq_base"), c->rope_theta)) < 0 ||
        (rc = mq_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps)) < 0)
        goto fail;
    bool longrope = c->rope_freqs && (a->flags & MQ_ARCH_LONGROPE);
    int64_t orig = c->n_ctx / 8 > 1 ? c->n_ctx / 8 : 2; /* LongRoPE's original context */
    if (longrope && ((rc = mq_gguf_writer_set_u32(w, KEY("rope.scaling.original_context_length"), (uint32_t)orig)) < 0 ||
                     (rc = mq_gguf_writer_set_f32(w, KEY("rope.scaling.attn_factor"),
                                                  (float)sqrt(1.0 + log(8.0) / log((double)orig)))) < 0))
        goto fail;
    if (c->head_dim && ((rc = mq_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)D)) < 0 ||
                        (rc = mq_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)D)) < 0))
        goto fail;
    if (a->swa_pattern && (c->n_swa || a->swa_window_default) &&
        (rc = mq_gguf_writer_set_u32(w, KEY("attention.sliding_window"),
                                     (uint32_t)(c->n_swa ? c->n_swa : a->swa_window_default))) < 0)
        goto fail;
    if ((a->flags & MQ_ARCH_SOFTCAP) &&
        ((rc = mq_gguf_writer_set_f32(w, KEY("attn_logit_softcapping"), 10.0f)) < 0 ||
         (rc = mq_gguf_writer_set_f32(w, KEY("final_logit_softcapping"), 3.0f)) < 0))
        goto fail;
#undef KEY

    if ((rc = build_vocab(c->n_vocab, phi3, &texts, &types)) < 0)
        goto fail;
    char merge[16];
    int k = byte_token(0, merge);
    merge[k] = ' ';
    memcpy(merge + k + 1, merge, (size_t)k);
    merge[2 * k + 1] = '\0';
    const char *merges[] = {merge};
    /* llama.cpp refuses a gpt2 vocabulary without merges; this one merges two NUL bytes,
     * which never occur in text, so tokenization stays one token per byte */
    if ((rc = mq_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) < 0 ||
        (rc = mq_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default")) < 0 ||
        (rc = mq_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)texts,
                                         (uint64_t)c->n_vocab)) < 0 ||
        (rc = mq_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MQ_GGUF_INT32, types,
                                     (uint64_t)c->n_vocab)) < 0 ||
        (rc = mq_gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", merges, 1)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", SYNTH_BOS)) < 0 ||
        (rc = mq_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", SYNTH_EOS)) < 0 ||
        (rc = mq_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true)) < 0 ||
        (rc = mq_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false)) < 0)
        goto fail;

    if ((rc = add_matrix(f, gen, o->seed, "token_embd.weight", E, c->n_vocab, type)) < 0)
        goto fail;
    for (int64_t b = 0; b < c->n_layer; b++) {
        char tn[MQ_GGUF_MAX_NAME + 1];
#define BLK(part) (snprintf(tn, sizeof(tn), "blk.%" PRId64 ".%s", b, (part)), tn)
#define MATRIX(part, n_in, n_out)                                                                   \
    if ((rc = add_matrix(f, gen, o->seed, BLK(part), (n_in), (n_out), type)) < 0)                   \
        goto fail;
#define VECTOR(part, n, data)                                                                       \
    if ((rc = mq_gguf_writer_add_tensor(w, BLK(part), MQ_DTYPE_F32, 1, (int64_t[]){(n)}, (data))) < 0) \
        goto fail;
        VECTOR("attn_norm.weight", E, f->ones);
        if (phi3) {
            MATRIX("attn_qkv.weight", E, Q + 2 * KV);
        } else {
            MATRIX("attn_q.weight", E, Q);
            MATRIX("attn_k.weight", E, KV);
            MATRIX("attn_v.weight", E, KV);
        }
        if (qwen2) {
            const float *bias = f->biases + b * (Q + 2 * KV);
            VECTOR("attn_q.bias", Q, bias);
            VECTOR("attn_k.bias", KV, bias + Q);
            VECTOR("attn_v.bias", KV, bias + Q + KV);
        }
        if (a->flags & MQ_ARCH_QK_NORM) {
            VECTOR("attn_q_norm.weight", D, f->ones);
            VECTOR("attn_k_norm.weight", D, f->ones);
        }
        MATRIX("attn_output.weight", Q, E);
        if (a->flags & MQ_ARCH_POST_NORMS) {
            VECTOR("post_attention_norm.weight", E, f->ones);
        }
        /* the ffn norm goes before the ffn, as llama.cpp's converter writes */
        VECTOR("ffn_norm.weight", E, f->ones);
        if (a->flags & MQ_ARCH_FUSED_GATE_UP) {
            MATRIX("ffn_up.weight", E, 2 * F);
        } else {
            MATRIX("ffn_gate.weight", E, F);
            MATRIX("ffn_up.weight", E, F);
        }
        MATRIX("ffn_down.weight", F, E);
        if (a->flags & MQ_ARCH_POST_NORMS) {
            VECTOR("post_ffw_norm.weight", E, f->ones);
        }
#undef VECTOR
#undef MATRIX
#undef BLK
    }
    bool tied = (a->flags & MQ_ARCH_TIED) || !strcmp(a->name, "gemma3");
    if (c->rope_freqs) {
        int64_t half = D / 2;
        if (!(f->rope_freqs = malloc((size_t)(2 * half) * sizeof(float)))) {
            rc = mq_error(MQ_ENOMEM, "cannot allocate a synthetic model");
            goto fail;
        }
        if (longrope) {
            /* LongRoPE-shaped: short factors 1..1.5, long 1..8, rising with the wavelength
             * (the original context is n_ctx / 8, so the model's own context is "long") */
            for (int64_t i = 0; i < half; i++) {
                float t = (float)i / (float)(half > 1 ? half - 1 : 1);
                f->rope_freqs[i] = 1.0f + 0.5f * t;
                f->rope_freqs[half + i] = 1.0f + 7.0f * t * t;
            }
            if ((rc = mq_gguf_writer_add_tensor(w, "rope_factors_long.weight", MQ_DTYPE_F32, 1, &half,
                                                f->rope_freqs + half)) < 0 ||
                (rc = mq_gguf_writer_add_tensor(w, "rope_factors_short.weight", MQ_DTYPE_F32, 1, &half,
                                                f->rope_freqs)) < 0)
                goto fail;
        } else {
            llama3_rope_factors(c->rope_theta, D, c->n_ctx, f->rope_freqs);
            if ((rc = mq_gguf_writer_add_tensor(w, "rope_freqs.weight", MQ_DTYPE_F32, 1, &half, f->rope_freqs)) < 0)
                goto fail;
        }
    }
    if ((rc = mq_gguf_writer_add_tensor(w, "output_norm.weight", MQ_DTYPE_F32, 1, &E, f->ones)) < 0 ||
        (!tied && (rc = add_matrix(f, gen, o->seed, "output.weight", E, c->n_vocab, type)) < 0))
        goto fail;
    free(texts);
    free(types);
    return MQ_OK;
fail:
    free(texts);
    free(types);
    synth_file_release(f);
    return rc;
}

int mq_synth_file_bytes(const struct mq_synth_config *c, const struct mq_synth_options *o,
                        uint64_t *bytes)
{
    struct synth_file f;
    int rc = check_options(o);
    if (rc < 0 || (rc = synth_file_build(c, o, o->type, NULL, &f)) < 0)
        return rc;
    rc = mq_gguf_writer_file_size(f.w, bytes);
    synth_file_release(&f);
    return rc;
}

/* The folder that will hold path. */
static void parent_dir(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash)
        snprintf(buf, size, ".");
    else if (slash == buf)
        buf[1] = '\0';
    else
        *slash = '\0';
}

static int check_disk(const struct mq_synth_config *c, const struct mq_synth_options *o,
                      const char *path, uint64_t need)
{
    uint64_t budget = o->disk_budget;
    char dir[4096];
    parent_dir(path, dir, sizeof(dir));
    const char *where = "the budget";
    if (!budget) {
        struct statvfs st;
        if (statvfs(dir, &st) != 0)
            return mq_error(MQ_EIO, "cannot write '%s': folder '%s': %s", path, dir,
                            strerror(errno));
        uint64_t free_bytes = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
        budget = free_bytes > MQ_SYNTH_DISK_RESERVE ? free_bytes - MQ_SYNTH_DISK_RESERVE : 0;
        where = "its file system's free space";
    }
    if (need <= budget)
        return MQ_OK;
    const double gib = (double)(1u << 30);
    struct mq_synth_options q4 = *o;
    q4.type = MQ_DTYPE_Q4_0;
    uint64_t q4_bytes = 0;
    char hint[96] = "";
    if (o->type != MQ_DTYPE_Q4_0 && mq_synth_file_bytes(c, &q4, &q4_bytes) == MQ_OK)
        snprintf(hint, sizeof(hint), " (--type q4_0 needs %.2f GiB)", (double)q4_bytes / gib);
    return mq_error(MQ_EIO, "cannot write '%s': %s %s needs %.2f GiB, %s is %.2f GiB%s", path,
                    cfg_name(c), mq_dtype_name(o->type), (double)need / gib, where,
                    (double)budget / gib, hint);
}

int mq_synth_write(const struct mq_synth_config *c, const struct mq_synth_options *o,
                   const char *path)
{
    struct synth_gen gen = {.type = o->type, .progress = o->progress && isatty(STDERR_FILENO)};
    struct synth_file f = {0};
    float *levels = NULL;
    uint8_t *coded = NULL;
    int n_threads = 0;
    int rc = check_options(o);
    if (rc < 0 || (rc = synth_file_build(c, o, o->type, &gen, &f)) < 0)
        return rc;
    if ((rc = mq_gguf_writer_file_size(f.w, &gen.total_bytes)) < 0 ||
        (rc = check_disk(c, o, path, gen.total_bytes)) < 0)
        goto done;

    const struct mq_dtype_traits *tr = mq_dtype_get(o->type);
    double stddev = o->stddev > 0.0 ? o->stddev : SYNTH_DEFAULT_STDDEV;
    levels = malloc(SYNTH_LEVELS * sizeof(*levels));
    if (!levels) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate the weight table");
        goto done;
    }
    for (int i = 0; i < SYNTH_LEVELS; i++)
        levels[i] = (float)(stddev * normal_quantile((i + 0.5) / SYNTH_LEVELS));
    gen.levels = levels;
    if (tr->block_elems == 1) { /* f32, f16, bf16: the table in the weight type */
        coded = malloc(SYNTH_LEVELS * tr->block_bytes);
        if (!coded) {
            rc = mq_error(MQ_ENOMEM, "cannot allocate the weight table");
            goto done;
        }
        tr->from_f32(levels, coded, SYNTH_LEVELS);
        gen.coded = coded;
        gen.elem_bytes = tr->block_bytes;
    }
    n_threads = o->threads > 0 ? o->threads : mq_pool_default_threads();
    gen.scratch = calloc((size_t)n_threads, sizeof(*gen.scratch));
    if (!gen.scratch) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %d generator threads", n_threads);
        goto done;
    }
    int64_t widest = c->n_ff > c->n_embd ? c->n_ff : c->n_embd; /* rows of n_in: E, F or q width */
    if (head_dim(c) * c->n_head > widest)
        widest = head_dim(c) * c->n_head;
    for (int i = 0; i < n_threads && !gen.coded; i++)
        if (!(gen.scratch[i] = malloc((size_t)widest * sizeof(float)))) {
            rc = mq_error(MQ_ENOMEM, "cannot allocate %d generator threads", n_threads);
            goto done;
        }
    if (n_threads > 1 && (rc = mq_pool_new(n_threads, &gen.pool)) < 0)
        goto done;

    char what[96];
    snprintf(what, sizeof(what), "synthetic %s %s", cfg_name(c), mq_dtype_name(o->type));
    gen.what = what;
    gen.t_start = gen.t_last = now_s();
    mq_progress_init(&gen.pr, false, "writing", (int64_t)gen.total_bytes);
    bool gib = gen.total_bytes >= (1u << 30);
    mq_info("writing '%s': synthetic %s %s (%s shapes), %s, %.2f %s", path, synth_arch(c)->name, cfg_name(c),
            cfg_like(c), mq_dtype_name(o->type),
            (double)gen.total_bytes / (double)(gib ? 1u << 30 : 1u << 20), gib ? "GiB" : "MiB");
    rc = mq_gguf_writer_write(f.w, path);
    if (gen.progress) {
        gen.done_bytes = gen.total_bytes;
        show_progress(&gen, true);
    }
done:
    mq_pool_free(gen.pool);
    if (gen.scratch)
        for (int i = 0; i < n_threads; i++)
            free(gen.scratch[i]);
    free(gen.scratch);
    free(coded);
    free(levels);
    synth_file_release(&f);
    return rc;
}

bool mq_synth_is_marked(const struct mq_gguf *g)
{
    bool b = false;
    const struct mq_gguf_kv *kv = mq_gguf_find_kv(g, "mixq.synthetic");
    return kv && kv->value.type == MQ_GGUF_BOOL &&
           mq_gguf_get_bool(g, "mixq.synthetic", &b) == MQ_OK && b;
}
