/* model/preset.c - llama.cpp's quantization presets as plans. Contract in preset.h.
 *
 * The rules below restate, in mixq's terms, the per-tensor type choice of llama.cpp's
 * quantizer as of commit 0c1e57098bba (vendored by llama-cpp-python 0.3.36,
 * scripts/models.lock), file src/llama-quant.cpp. Line numbers cite that file:
 *
 *   llama_ftype_get_default_type     881-925   a preset's base type
 *   tensor_get_category              119-155   roles (mixq: mq_layer.role, same names)
 *   quantize_state_impl              167-201   the counters i_/n_attention_wv, i_/n_ffn_down
 *   init_quantize_state_counters     927-941   n_attention_wv = attn_v tensors, n_ffn_down =
 *                                              the block count; tied = no output.weight
 *   llama_tensor_get_type            717-773   rules only when the base type is quantized,
 *                                              then the fallback
 *   llama_tensor_get_type_impl       446-714   the rules (per role, below)
 *   tensor_type_fallback             390-443   rows the chosen type's blocks do not divide
 *   tensor_allows_quantization       287-386   what is quantized at all (2-D+ weights, not norms)
 *   llama_model_quantize_impl        1053-1068 tensors listed in weights_map order, whose
 *                                              comparer (src/llama-model-loader.h 54-65) sorts
 *                                              by block number ("blk.%d.", none = -1), then by
 *                                              name; 1108-1126 types chosen in that order;
 *                                              1001 has_imatrix; 1389-1392 the fallback count
 *   models/llama.cpp                 28        LLM_TYPE_70B: 80 blocks and n_head != n_head_kv
 *
 * Only what a preset mixq offers can reach is ported: the IQ1/IQ2/IQ3, Q2_K_S, TQ and
 * MXFP4 branches choose types mixq does not have and are left out; the n_expert == 8
 * branches (Mixtral) are left out because models with experts are refused; fused
 * attn_qkv counts and is typed as attn_v (category_is_attn_v); KV_B (MLA) does not occur.
 * Architecture-specific rules (falcon's, the 70B bump) read a row of `arch_rules`.
 */
#include "model/preset.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/status.h"

/* llama_ftype numbers (llama.h); they reach general.file_type */
enum {
    FT_ALL_F32 = 0,
    FT_F16 = 1,
    FT_Q4_0 = 2,
    FT_Q4_1 = 3,
    FT_Q8_0 = 7,
    FT_Q5_0 = 8,
    FT_Q5_1 = 9,
    FT_Q2_K = 10,
    FT_Q3_K_S = 11,
    FT_Q3_K_M = 12,
    FT_Q3_K_L = 13,
    FT_Q4_K_S = 14,
    FT_Q4_K_M = 15,
    FT_Q5_K_S = 16,
    FT_Q5_K_M = 17,
    FT_Q6_K = 18,
    FT_IQ4_NL = 25,
    FT_IQ4_XS = 30,
    FT_BF16 = 32,
};

/* llama-quantize's names (tools/quantize/quantize.cpp QUANT_OPTIONS) with their base type
 * (llama_ftype_get_default_type, llama-quant.cpp 881-925) */
static const struct mq_preset presets[] = {
    {"Q2_K", FT_Q2_K, MQ_DTYPE_Q2_K},       {"Q3_K_S", FT_Q3_K_S, MQ_DTYPE_Q3_K},
    {"Q3_K_M", FT_Q3_K_M, MQ_DTYPE_Q3_K},   {"Q3_K_L", FT_Q3_K_L, MQ_DTYPE_Q3_K},
    {"Q4_K_S", FT_Q4_K_S, MQ_DTYPE_Q4_K},   {"Q4_K_M", FT_Q4_K_M, MQ_DTYPE_Q4_K},
    {"Q5_K_S", FT_Q5_K_S, MQ_DTYPE_Q5_K},   {"Q5_K_M", FT_Q5_K_M, MQ_DTYPE_Q5_K},
    {"Q6_K", FT_Q6_K, MQ_DTYPE_Q6_K},       {"Q8_0", FT_Q8_0, MQ_DTYPE_Q8_0},
    {"Q4_0", FT_Q4_0, MQ_DTYPE_Q4_0},       {"Q4_1", FT_Q4_1, MQ_DTYPE_Q4_1},
    {"Q5_0", FT_Q5_0, MQ_DTYPE_Q5_0},       {"Q5_1", FT_Q5_1, MQ_DTYPE_Q5_1},
    {"IQ4_NL", FT_IQ4_NL, MQ_DTYPE_IQ4_NL}, {"IQ4_XS", FT_IQ4_XS, MQ_DTYPE_IQ4_XS},
    {"F16", FT_F16, MQ_DTYPE_F16},          {"BF16", FT_BF16, MQ_DTYPE_BF16},
    {"F32", FT_ALL_F32, MQ_DTYPE_F32},
};
#define N_PRESETS (sizeof(presets) / sizeof(presets[0]))

/* llama-quantize's aliases ("alias for Q4_K_M") */
static const struct {
    const char *alias, *name;
} aliases[] = {{"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}};

static const char *const preset_names[N_PRESETS] = {
    "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
    "Q4_0", "Q4_1",   "Q5_0",   "Q5_1",   "IQ4_NL", "IQ4_XS", "F16",    "BF16",   "F32",
};

/* What of the rules depends on the architecture (llm_arch in llama.cpp). */
struct arch_rules {
    const char *name;    /* general.architecture */
    bool falcon;         /* LLM_ARCH_FALCON's own output, ffn_down and attn_output rules */
    int64_t n_layer_70b; /* the block count llama.cpp's loader types as LLM_TYPE_70B (its
                            attn_v rule), 0: none */
    bool type_70b_gqa;   /* ... only with grouped-query attention (n_head != n_head_kv) */
};

static const struct arch_rules arch_rules[] = {
    /* models/llama.cpp 9-30: 80 blocks are 70B with GQA, 65B without; 8 experts aside */
    {.name = "llama", .falcon = false, .n_layer_70b = 80, .type_70b_gqa = true},
    /* models/qwen2.cpp 6-16: 80 blocks are 70B; the others never type a model 70B */
    {.name = "qwen2", .n_layer_70b = 80},
    {.name = "qwen3"},
    {.name = "phi3"},
    {.name = "gemma"},
    {.name = "gemma2"},
    {.name = "gemma3"},
};

/* llama.cpp's tensor categories (tensor_get_category, 119-155) of mixq's roles */
enum category {
    CAT_OTHER,
    CAT_TOKEN_EMBD,
    CAT_ATTN_Q,
    CAT_ATTN_K,
    CAT_ATTN_V,
    CAT_ATTN_OUTPUT,
    CAT_FFN_GATE,
    CAT_FFN_UP,
    CAT_FFN_DOWN,
    CAT_OUTPUT
};

static const enum category role_category[MQ_ROLE_COUNT] = {
    [MQ_ROLE_TOKEN_EMBD] = CAT_TOKEN_EMBD,   [MQ_ROLE_ATTN_Q] = CAT_ATTN_Q,
    [MQ_ROLE_ATTN_K] = CAT_ATTN_K,           [MQ_ROLE_ATTN_V] = CAT_ATTN_V,
    [MQ_ROLE_ATTN_OUTPUT] = CAT_ATTN_OUTPUT, [MQ_ROLE_FFN_GATE] = CAT_FFN_GATE,
    [MQ_ROLE_FFN_UP] = CAT_FFN_UP,           [MQ_ROLE_FFN_DOWN] = CAT_FFN_DOWN,
    [MQ_ROLE_OUTPUT] = CAT_OUTPUT,
    /* ATTENTION_QKV: category_is_attn_v (156-161) sends it down the attn_v branch, which
     * comes first, so its own branch (689-695) is never reached */
    [MQ_ROLE_ATTN_QKV] = CAT_ATTN_V,
};

/* The quantizer's state for one model (quantize_state_impl). */
struct rules {
    const struct arch_rules *arch;
    int ftype;
    enum mq_dtype base;
    int64_t n_gqa; /* n_head / n_head_kv (hparams.n_gqa(), 0 without kv heads) */
    bool is_70b;   /* llama.cpp's model.type == LLM_TYPE_70B */
    bool tied;     /* has_tied_embeddings: no output.weight, token_embd is the output */
    bool imatrix;  /* has_imatrix */
    int n_attention_wv, i_attention_wv;
    int n_ffn_down, i_ffn_down;
    int n_fallback;
};

const struct mq_preset *mq_preset_find(const char *name)
{
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (!strcasecmp(name, aliases[i].alias))
            name = aliases[i].name;
    for (size_t i = 0; i < N_PRESETS; i++)
        if (!strcasecmp(name, presets[i].name))
            return &presets[i];
    return NULL;
}

const char *const *mq_preset_names(size_t *n)
{
    _Static_assert(sizeof(preset_names) / sizeof(preset_names[0]) == N_PRESETS,
                   "one name per preset");
    *n = N_PRESETS;
    return preset_names;
}

int mq_preset_ftype(const char *name)
{
    const struct mq_preset *p = mq_preset_find(name);
    return p ? p->ftype : -1;
}

void mq_preset_list(char *buf, size_t size)
{
    size_t used = 0;
    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < N_PRESETS && used < size; i++) {
        int k = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", presets[i].name);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* use_more_bits (452-454): the first and last eighth of the blocks and every third one
 * between them get more bits */
static bool use_more_bits(int i_layer, int n_layers)
{
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

/* attn_v (567-604) */
static enum mq_dtype rule_attn_v(struct rules *r, enum mq_dtype t)
{
    int ft = r->ftype;
    if (ft == FT_Q2_K)
        t = r->n_gqa >= 4 ? MQ_DTYPE_Q4_K : MQ_DTYPE_Q3_K;
    else if (ft == FT_Q3_K_M)
        t = r->i_attention_wv < 2 ? MQ_DTYPE_Q5_K : MQ_DTYPE_Q4_K;
    else if (ft == FT_Q3_K_L)
        t = MQ_DTYPE_Q5_K;
    else if ((ft == FT_IQ4_NL || ft == FT_IQ4_XS) && r->n_gqa >= 4)
        t = MQ_DTYPE_Q5_K;
    else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) &&
             use_more_bits(r->i_attention_wv, r->n_attention_wv))
        t = MQ_DTYPE_Q6_K;
    else if (ft == FT_Q4_K_S && r->i_attention_wv < 4)
        t = MQ_DTYPE_Q5_K;
    /* the 70B has 8 heads sharing each attn_v: more bits cost little (593-598) */
    if (r->is_70b && (t == MQ_DTYPE_Q3_K || t == MQ_DTYPE_Q4_K))
        t = MQ_DTYPE_Q5_K;
    r->i_attention_wv++;
    return t;
}

/* ffn_down (624-668): i_layer is the running count of ffn_down tensors (layer_info with
 * one expert), n_layer the block count */
static enum mq_dtype rule_ffn_down(struct rules *r, enum mq_dtype t)
{
    int ft = r->ftype, i = r->i_ffn_down, n = r->n_ffn_down;
    bool falcon = r->arch->falcon;
    if (ft == FT_Q2_K)
        t = MQ_DTYPE_Q3_K;
    else if (ft == FT_Q3_K_M)
        t = i < n / 16                       ? MQ_DTYPE_Q5_K
            : !falcon || use_more_bits(i, n) ? MQ_DTYPE_Q4_K
                                             : MQ_DTYPE_Q3_K;
    else if (ft == FT_Q3_K_L)
        t = falcon ? MQ_DTYPE_Q4_K : MQ_DTYPE_Q5_K;
    else if (ft == FT_Q4_K_M) {
        if (falcon)
            t = i < n / 16 ? MQ_DTYPE_Q6_K : use_more_bits(i, n) ? MQ_DTYPE_Q5_K : MQ_DTYPE_Q4_K;
        else if (use_more_bits(i, n))
            t = MQ_DTYPE_Q6_K;
    } else if (i < n / 8 && (ft == FT_IQ4_NL || ft == FT_IQ4_XS) && !r->imatrix)
        t = MQ_DTYPE_Q5_K;
    else if (ft == FT_Q5_K_M && use_more_bits(i, n))
        t = MQ_DTYPE_Q6_K;
    else if (ft == FT_Q4_K_S && !falcon && i < n / 8)
        t = MQ_DTYPE_Q5_K;
    else if ((ft == FT_Q4_0 || ft == FT_Q5_0) && r->imatrix && i < n / 8)
        /* with an imatrix only, so that the plain preset stays what it always was */
        t = ft == FT_Q4_0 ? MQ_DTYPE_Q4_1 : MQ_DTYPE_Q5_1;
    r->i_ffn_down++;
    return t;
}

/* attn_output (669-688), without the 8-expert branch */
static enum mq_dtype rule_attn_output(const struct rules *r, enum mq_dtype t)
{
    int ft = r->ftype;
    if (r->arch->falcon)
        return ft == FT_Q3_K_L ? MQ_DTYPE_Q4_K : t;
    if (ft == FT_Q2_K)
        t = MQ_DTYPE_Q3_K;
    else if (ft == FT_Q3_K_M)
        t = MQ_DTYPE_Q4_K;
    else if (ft == FT_Q3_K_L)
        t = MQ_DTYPE_Q5_K;
    return t;
}

/* The type of one quantizable tensor (llama_tensor_get_type, 717-773, with the defaults of
 * llama-quantize: no --pure, no type overrides, the output tensor quantized). */
static enum mq_dtype tensor_type(struct rules *r, const struct mq_layer *l)
{
    enum mq_dtype t = r->base;
    if (!mq_dtype_get(t)->is_quantized)
        return t; /* f16, bf16, f32: every weight in it, no rules, no fallback */
    enum category cat = role_category[l->role];
    /* the output, and token_embd where it is the output (490-511): q8_0 where the base
     * type's blocks do not divide the row (or for falcon), else q6_k unless the base is q8_0 */
    if (cat == CAT_OUTPUT || (r->tied && cat == CAT_TOKEN_EMBD)) {
        if (r->arch->falcon || l->n_in % mq_dtype_get(t)->block_elems != 0)
            t = MQ_DTYPE_Q8_0;
        else if (t != MQ_DTYPE_Q8_0)
            t = MQ_DTYPE_Q6_K;
    } else if (cat == CAT_ATTN_V) {
        t = rule_attn_v(r, t);
    } else if (cat == CAT_FFN_DOWN) {
        t = rule_ffn_down(r, t);
    } else if (cat == CAT_ATTN_OUTPUT) {
        t = rule_attn_output(r, t);
    }
    /* token_embd (525-542), attn_k (605-616), attn_q (617-623), ffn_gate (696-703) and
     * ffn_up (704-711) change only for IQ1..IQ3, TQ and Q2_0 files or 8 experts */

    /* the fallback (tensor_type_fallback, 390-443: core/dtype.h's fallback row, f16 where
     * it does not fit), counted per tensor as llama-quantize reports it */
    if (mq_dtype_row_ok(t, l->n_in))
        return t;
    r->n_fallback++;
    return mq_dtype_fallback_for_row(t, l->n_in);
}

/* weight_name_comparer (llama-model-loader.h 54-65): block number, then name */
static int tensor_order_block(const char *name)
{
    int b = -1;
    if (sscanf(name, "blk.%d.", &b) != 1)
        b = -1;
    return b;
}

struct order_key {
    int block;
    int layer;
};

static bool order_before(const struct mq_model *m, const struct order_key *x,
                         const struct order_key *y)
{
    if (x->block != y->block)
        return x->block < y->block;
    return strcmp(m->layers[x->layer].name, m->layers[y->layer].name) < 0;
}

/* The layers in llama-quantize's order (an insertion sort: files list them nearly in that
 * order already, and names are unique, so the order is total). */
static void order_layers(const struct mq_model *m, struct order_key *order)
{
    for (int i = 0; i < m->n_layers; i++) {
        struct order_key k = {.block = tensor_order_block(m->layers[i].name), .layer = i};
        int j = i;
        for (; j > 0 && order_before(m, &k, &order[j - 1]); j--)
            order[j] = order[j - 1];
        order[j] = k;
    }
}

/* Dimensions as ggml_n_dims counts them: trailing sizes of 1 do not count. */
static int n_dims_ggml(const struct mq_gguf_tensor *t)
{
    int n = 1;
    for (int d = 1; d < (int)t->n_dims && d < MQ_GGUF_MAX_DIMS; d++)
        if (t->ne[d] > 1)
            n = d + 1;
    return n;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The model facts the rules read; MQ_EUNSUPPORTED for a model they do not cover. */
static int rules_init(const struct mq_model *m, const struct mq_preset *ps,
                      const struct mq_preset_options *o, struct rules *r)
{
    memset(r, 0, sizeof(*r));
    if (m->kind != MQ_MODEL_LLAMA || !m->gguf)
        return mq_error(MQ_EUNSUPPORTED,
                        "'%s': llama.cpp's presets apply to GGUF models, not to this one", m->path);
    for (size_t i = 0; i < sizeof(arch_rules) / sizeof(arch_rules[0]); i++)
        if (!strcmp(m->arch, arch_rules[i].name))
            r->arch = &arch_rules[i];
    if (!r->arch)
        return mq_error(MQ_EUNSUPPORTED,
                        "'%s': no llama.cpp preset rules for architecture '%s' yet", m->path,
                        m->arch);
    char key[96];
    uint32_t n_expert = 0;
    snprintf(key, sizeof(key), "%s.expert_count", m->arch);
    if (mq_gguf_get_u32(m->gguf, key, &n_expert) == MQ_OK && n_expert > 1)
        return mq_error(MQ_EUNSUPPORTED,
                        "'%s': %u experts: the presets' expert rules are not ported", m->path,
                        n_expert);
    /* every tensor llama-quantize would quantize (tensor_allows_quantization: 2-D, named
     * *weight, not a norm) must be a layer the plan can give a type */
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const struct mq_gguf_tensor *t = &m->gguf->tensors[i];
        if (n_dims_ggml(t) >= 2 && ends_with(t->name, "weight") &&
            !strstr(t->name, "_norm.weight") && mq_model_find_layer(m, t->name) < 0)
            return mq_error(
                MQ_EUNSUPPORTED,
                "'%s': tensor '%s' is quantized by llama-quantize but is not a layer mixq plans",
                m->path, t->name);
    }
    r->ftype = ps->ftype;
    r->base = ps->base;
    r->n_gqa = m->hp.n_head_kv > 0 ? m->hp.n_head / m->hp.n_head_kv : 0;
    r->is_70b = r->arch->n_layer_70b > 0 && m->hp.n_layer == r->arch->n_layer_70b &&
                (!r->arch->type_70b_gqa || m->hp.n_head != m->hp.n_head_kv);
    r->tied = m->hp.tied_output;
    enum mq_preset_imatrix im = o ? o->imatrix : MQ_PRESET_IMATRIX_MODEL;
    if (im == MQ_PRESET_IMATRIX_MODEL) {
        r->imatrix = m->has_imatrix;
        for (int i = 0; i < m->n_layers && !r->imatrix; i++)
            r->imatrix = m->layers[i].imp != NULL;
    } else {
        r->imatrix = im == MQ_PRESET_IMATRIX_YES;
    }
    for (int i = 0; i < m->n_layers; i++)
        r->n_attention_wv += role_category[m->layers[i].role] == CAT_ATTN_V;
    r->n_ffn_down = (int)m->hp.n_layer;
    return MQ_OK;
}

int mq_plan_preset_ex(const struct mq_model *m, const char *name, const struct mq_preset_options *o,
                      struct mq_plan **out, struct mq_preset_result *res)
{
    *out = NULL;
    const struct mq_preset *ps = mq_preset_find(name);
    if (!ps) {
        char list[256];
        mq_preset_list(list, sizeof(list));
        return mq_error(MQ_ENOTFOUND, "'%s' is not a llama.cpp preset (%s)", name, list);
    }
    struct rules r;
    int rc = rules_init(m, ps, o, &r);
    if (rc < 0)
        return rc;
    struct mq_plan *p = NULL;
    struct order_key *order = malloc(((size_t)m->n_layers + 1) * sizeof(*order));
    if (!order)
        return mq_error(MQ_ENOMEM, "cannot order %d layers", m->n_layers);
    if ((rc = mq_plan_uniform(m, ps->base, &p)) < 0)
        goto done;
    order_layers(m, order);
    for (int k = 0; k < m->n_layers; k++) {
        int i = order[k].layer;
        p->fmt[i] = tensor_type(&r, &m->layers[i]);
    }
    p->ftype = ps->ftype;
    snprintf(p->label, sizeof(p->label), "llama.cpp %s", ps->name);
    if ((rc = mq_plan_check(m, p)) < 0)
        goto done;
    mq_debug("preset %s%s: %d of %" PRIu64 " tensor(s) required fallback quantization", ps->name,
             r.imatrix ? " (imatrix)" : "", r.n_fallback, m->gguf->n_tensors);
    if (res)
        *res = (struct mq_preset_result){.preset = ps,
                                         .imatrix = r.imatrix,
                                         .n_fallback = r.n_fallback,
                                         .n_tensors = (int)m->gguf->n_tensors};
    *out = p;
    p = NULL;
done:
    free(order);
    mq_plan_free(p);
    return rc;
}

int mq_plan_preset(const struct mq_model *m, const char *name, struct mq_plan **out)
{
    return mq_plan_preset_ex(m, name, NULL, out, NULL);
}
