/* tests/unit/test_quant_src.c - the source-only types (Q4_1, Q5_0, Q5_1, Q2_K .. Q6_K):
 * traits, layouts, dequantization bit-exact with llama.cpp, and the refusal of the types
 * mixq still does not read.
 *
 * The oracle is tests/golden/quant-src.gguf (see tests/golden/README.md): for each type,
 * rows of blocks written by llama.cpp's llama-quantize (TYPE.blocks) and of seeded random
 * bytes (TYPE.random.blocks), each with the floats llama.cpp's own to_float gives them
 * (TYPE.f32, TYPE.random.f32). tests/interop/check-quant.sh runs the same comparison on
 * whole quantized models where llama.cpp is built. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/fp16.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "tests/unit/test.h"

#define FIXTURE "tests/golden/quant-src.gguf"
#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    enum mq_dtype type;
    const char *name;
    uint32_t ggml_type;
    int64_t block_elems;
    size_t block_bytes; /* ggml's sizeof(block_*) */
} src_types[] = {
    {MQ_DTYPE_Q4_1, "q4_1", 3, 32, 20},    {MQ_DTYPE_Q5_0, "q5_0", 6, 32, 22},
    {MQ_DTYPE_Q5_1, "q5_1", 7, 32, 24},    {MQ_DTYPE_Q2_K, "q2_k", 10, 256, 84},
    {MQ_DTYPE_Q3_K, "q3_k", 11, 256, 110}, {MQ_DTYPE_Q4_K, "q4_k", 12, 256, 144},
    {MQ_DTYPE_Q5_K, "q5_k", 13, 256, 176}, {MQ_DTYPE_Q6_K, "q6_k", 14, 256, 210},
};

static int test_traits(void)
{
    for (size_t i = 0; i < N(src_types); i++) {
        const struct mq_dtype_traits *t = mq_dtype_get(src_types[i].type);
        enum mq_dtype back;
        T_CHECK(strcmp(t->name, src_types[i].name) == 0);
        T_CHECK(t->ggml_type == src_types[i].ggml_type);
        T_CHECK(t->block_elems == src_types[i].block_elems);
        T_CHECK(t->block_bytes == src_types[i].block_bytes);
        T_CHECK(t->is_quantized && t->is_plan_format); /* written too since issue 14 */
        T_CHECK(t->to_f32 != NULL && t->from_f32 != NULL && t->quantize != NULL);
        T_CHECK(mq_dtype_from_ggml(src_types[i].ggml_type, &back) == MQ_OK);
        T_CHECK(back == src_types[i].type);
        T_CHECK(mq_dtype_from_name(src_types[i].name, &back) == MQ_OK && back == src_types[i].type);
    }
    enum mq_dtype t;
    T_CHECK(mq_dtype_from_name("Q4_K", &t) == MQ_OK && t == MQ_DTYPE_Q4_K); /* ggml's "q4_K" */
    /* what stays unknown */
    T_CHECK(mq_dtype_from_name("iq2_xxs", &t) == MQ_ENOTFOUND);
    T_CHECK(mq_dtype_from_ggml(15, &t) == MQ_OK && mq_dtype_get(t)->is_activation); /* q8_k: read, never a weight */
    T_CHECK(mq_dtype_from_ggml(9, &t) == MQ_ENOTFOUND);  /* q8_1 */
    T_CHECK(mq_dtype_from_ggml(4, &t) == MQ_ENOTFOUND);  /* removed q4_2 */
    /* every type mixq reads from files is a plan format */
    char buf[256];
    mq_dtype_list_plan_formats(buf, sizeof(buf));
    T_CHECK_MSG(strcmp(buf, "f32,f16,bf16,q8_0,q4_0,q4_1,q5_0,q5_1,q2_k,q3_k,q4_k,q5_k,q6_k,iq4_nl,iq4_xs") == 0,
                "%s", buf);
    return T_PASS;
}

static int test_row_bytes(void)
{
    size_t b;
    /* a 4096-wide row in each type: ggml_row_size */
    static const size_t want_4096[] = {2560, 2816, 3072, 1344, 1760, 2304, 2816, 3360};
    for (size_t i = 0; i < N(src_types); i++) {
        T_CHECK(mq_dtype_row_bytes(src_types[i].type, 4096, &b) == MQ_OK);
        T_CHECK_MSG(b == want_4096[i], "%s: %zu bytes", src_types[i].name, b);
        T_CHECK(mq_dtype_row_bytes(src_types[i].type, 0, &b) == MQ_OK && b == 0);
    }
    /* K-quants need whole 256-element super-blocks: 192-wide rows (tinyllm's) do not fit */
    T_CHECK(mq_dtype_row_bytes(MQ_DTYPE_Q4_K, 192, &b) == MQ_EINVAL);
    T_CHECK(mq_dtype_row_bytes(MQ_DTYPE_Q6_K, 288, &b) == MQ_EINVAL);
    T_CHECK(mq_dtype_row_bytes(MQ_DTYPE_Q5_1, 192, &b) == MQ_OK && b == 6 * 24);
    T_CHECK(mq_dtype_row_bytes(MQ_DTYPE_Q5_0, 48, &b) == MQ_EINVAL);
    /* bits per weight, as llama.cpp quotes them */
    static const double bpw[] = {5.0, 5.5, 6.0, 2.625, 3.4375, 4.5, 5.5, 6.5625};
    for (size_t i = 0; i < N(src_types); i++)
        T_CHECK_MSG(fabs(mq_dtype_bits_per_weight(src_types[i].type) - bpw[i]) < 1e-12, "%s",
                    src_types[i].name);
    return T_PASS;
}

/* ---- hand-made blocks: the layouts, independent of the fixture ---- */

static const uint16_t F16_ONE = 0x3C00, F16_TWO = 0x4000, F16_HALF = 0x3800;

static int test_legacy_blocks(void)
{
    float y[32];
    /* q4_1: code j in element j (low nibbles) and 15-j in element j+16, w = c*2 + 0.5 */
    struct mq_block_q4_1 a = {.d = F16_TWO, .m = F16_HALF};
    for (int j = 0; j < 16; j++)
        a.qs[j] = (uint8_t)(j | (15 - j) << 4);
    mq_dtype_get(MQ_DTYPE_Q4_1)->to_f32(&a, y, 32);
    for (int j = 0; j < 16; j++) {
        T_CHECK(y[j] == 2.0f * (float)j + 0.5f);
        T_CHECK(y[j + 16] == 2.0f * (float)(15 - j) + 0.5f);
    }
    /* q5_0: bit 4 of element e is bit e of qh (little-endian): set it for e = 3 and 19 */
    struct mq_block_q5_0 b = {.d = F16_ONE};
    uint32_t qh = 1u << 3 | 1u << 19;
    memcpy(b.qh, &qh, 4); /* x86 and aarch64 are little-endian, as the files are */
    mq_dtype_get(MQ_DTYPE_Q5_0)->to_f32(&b, y, 32);
    for (int e = 0; e < 32; e++)
        T_CHECK_MSG(y[e] == (e == 3 || e == 19 ? 0.0f : -16.0f), "q5_0 element %d: %g", e,
                    (double)y[e]);
    /* q5_1: codes 31 (all bits) with d = 1, m = -2 */
    struct mq_block_q5_1 c = {.d = F16_ONE, .m = 0xC000};
    memset(c.qh, 0xFF, 4);
    memset(c.qs, 0xFF, 16);
    mq_dtype_get(MQ_DTYPE_Q5_1)->to_f32(&c, y, 32);
    for (int e = 0; e < 32; e++)
        T_CHECK(y[e] == 29.0f);
    return T_PASS;
}

/* Q4_K's packed 6-bit scales and mins (ggml's get_scale_min_k4) and its nibble order. */
static int test_q4_k_block(void)
{
    struct mq_block_q4_k b;
    memset(&b, 0, sizeof(b));
    b.d = F16_ONE;
    b.dmin = F16_ONE;
    /* sub-block j: scale 10 + j (j < 4: bytes 0..3), 40 + j (j >= 4: low nibble of byte
     * j+4 and the top bits of byte j-4); min 2j likewise */
    for (int j = 0; j < 8; j++) {
        int sc = j < 4 ? 10 + j : 40 + j, mn = 2 * j;
        if (j < 4) {
            b.scales[j] |= (uint8_t)sc;
            b.scales[j + 4] |= (uint8_t)mn;
        } else {
            b.scales[j + 4] = (uint8_t)((sc & 15) | (mn & 15) << 4);
            b.scales[j - 4] |= (uint8_t)((sc >> 4) << 6);
            b.scales[j] |= (uint8_t)((mn >> 4) << 6);
        }
    }
    for (int l = 0; l < 128; l++)
        b.qs[l] = (uint8_t)(1 | 2 << 4); /* low nibbles 1, high nibbles 2 */
    float y[256];
    mq_dtype_get(MQ_DTYPE_Q4_K)->to_f32(&b, y, 256);
    for (int e = 0; e < 256; e++) {
        int j = e / 32, sc = j < 4 ? 10 + j : 40 + j, mn = 2 * j;
        int q = (e % 64) < 32 ? 1 : 2; /* chunk e/64: low nibbles first */
        T_CHECK_MSG(y[e] == (float)(sc * q - mn), "q4_k element %d: %g", e, (double)y[e]);
    }
    /* q5_k: the same scales, plus the fifth bit of element e at bit e/32 of qh[e%32] */
    struct mq_block_q5_k c;
    memset(&c, 0, sizeof(c));
    c.d = b.d;
    c.dmin = b.dmin;
    memcpy(c.scales, b.scales, sizeof(c.scales));
    memcpy(c.qs, b.qs, sizeof(c.qs));
    c.qh[7] = 1u << 5; /* element 5*32 + 7 = 167 */
    mq_dtype_get(MQ_DTYPE_Q5_K)->to_f32(&c, y, 256);
    for (int e = 0; e < 256; e++) {
        int j = e / 32, sc = j < 4 ? 10 + j : 40 + j, mn = 2 * j;
        int q = ((e % 64) < 32 ? 1 : 2) + (e == 167 ? 16 : 0);
        T_CHECK_MSG(y[e] == (float)(sc * q - mn), "q5_k element %d: %g", e, (double)y[e]);
    }
    return T_PASS;
}

/* Q2_K/Q3_K's interleaved 2-bit codes, Q3_K's scales and high bits, Q6_K's halves. */
static int test_k_interleave(void)
{
    float y[256];
    /* q2_k: code 3 only in element 128 + 2*32 + 5 = 197 (half 1, quarter 2: bits 4..5 of
     * qs[32 + 5]); scale of sub-block s = s & 15 (at least 1), min 1 */
    struct mq_block_q2_k a;
    memset(&a, 0, sizeof(a));
    a.d = F16_ONE;
    a.dmin = F16_ONE;
    for (int s = 0; s < 16; s++)
        a.scales[s] = (uint8_t)((s ? s : 1) | 1 << 4);
    a.qs[32 + 5] = 3 << 4;
    mq_dtype_get(MQ_DTYPE_Q2_K)->to_f32(&a, y, 256);
    for (int e = 0; e < 256; e++) {
        int s = e / 16;
        float want = e == 197 ? (float)(3 * (s ? s : 1)) - 1.0f : -1.0f;
        T_CHECK_MSG(y[e] == want, "q2_k element %d: %g want %g", e, (double)y[e], (double)want);
    }
    /* q3_k: scale s = 33 + s after unbiasing s+1 (6 bits: low nibble in byte s or s-8's
     * high nibble, high bits in byte 8 + s%4 at bit pair s/4); codes 0 and high bit clear
     * (-4) everywhere but element 197, which gets code 1 and its high bit (+1) */
    struct mq_block_q3_k c;
    memset(&c, 0, sizeof(c));
    c.d = F16_ONE;
    for (int s = 0; s < 16; s++) {
        int v = 33 + s; /* stored biased by 32: scale s + 1 */
        if (s < 8)
            c.scales[s] |= (uint8_t)(v & 15);
        else
            c.scales[s - 8] |= (uint8_t)((v & 15) << 4);
        c.scales[8 + s % 4] |= (uint8_t)((v >> 4) << (2 * (s / 4)));
    }
    c.qs[32 + 5] = 1 << 4;
    c.hmask[197 % 32] = 1u << (197 / 32);
    mq_dtype_get(MQ_DTYPE_Q3_K)->to_f32(&c, y, 256);
    for (int e = 0; e < 256; e++) {
        float want = (float)(e / 16 + 1) * (e == 197 ? 1.0f : -4.0f);
        T_CHECK_MSG(y[e] == want, "q3_k element %d: %g want %g", e, (double)y[e], (double)want);
    }
    /* q6_k: element e = 128h + 32k + l has its nibble in ql[64h + 32(k&1) + l] (low for
     * k < 2) and bits 2k of qh[32h + l]; give element 128 + 96 + 9 = 233 code 63, the
     * others 32 (zero); scales -(s+1) */
    struct mq_block_q6_k d;
    memset(&d, 0, sizeof(d));
    d.d = F16_HALF;
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++)
            d.qh[32 * h + l] = 2 | 2 << 2 | 2 << 4 | 2 << 6; /* high bits 2: code 32 */
    for (int s = 0; s < 16; s++)
        d.scales[s] = (int8_t)(-(s + 1));
    d.ql[64 + 32 + 9] = 0xF0; /* k = 3: high nibble of the second 32 bytes */
    d.qh[32 + 9] |= 1 << 6;   /* bits 6..7 become 3 */
    mq_dtype_get(MQ_DTYPE_Q6_K)->to_f32(&d, y, 256);
    for (int e = 0; e < 256; e++) {
        float want = e == 233 ? 0.5f * (float)-(e / 16 + 1) * 31.0f : 0.0f;
        T_CHECK_MSG(y[e] == want, "q6_k element %d: %g want %g", e, (double)y[e], (double)want);
    }
    return T_PASS;
}

/* ---- the fixture: llama.cpp's blocks and llama.cpp's floats ---- */

static bool same_float(float a, float b)
{
    if (isnan(a) || isnan(b)) /* NaN payloads depend on the CPU's operand order */
        return isnan(a) && isnan(b);
    return mq_f32_bits(a) == mq_f32_bits(b);
}

/* Checks that to_f32 of tensor `blocks` gives tensor `floats` bit for bit; counts the
 * elements compared and the non-zero ones. */
static int check_pair(const struct mq_gguf *g, enum mq_dtype type, const char *blocks,
                      const char *floats, int64_t *compared, int64_t *nonzero)
{
    const struct mq_gguf_tensor *b = mq_gguf_find_tensor(g, blocks);
    const struct mq_gguf_tensor *f = mq_gguf_find_tensor(g, floats);
    T_CHECK_MSG(b && f, "%s: no '%s' or '%s'", FIXTURE, blocks, floats);
    T_CHECK_MSG(b->type == type, "'%s' has type %s, want %s", blocks, mq_dtype_name(b->type),
                mq_dtype_name(type));
    T_CHECK(f->type == MQ_DTYPE_F32 && f->n_elems == b->n_elems && f->ne[0] == b->ne[0]);
    size_t row_bytes;
    T_CHECK(mq_dtype_row_bytes(type, b->ne[0], &row_bytes) == MQ_OK);
    T_CHECK(b->nbytes == row_bytes * (size_t)(b->n_elems / b->ne[0]));
    float *mine = malloc((size_t)b->n_elems * sizeof(float));
    float *want = malloc((size_t)b->n_elems * sizeof(float));
    T_CHECK(mine && want);
    memcpy(want, f->data, (size_t)f->n_elems * sizeof(float));
    mq_dtype_get(type)->to_f32(b->data, mine, b->n_elems);
    int64_t bad = -1;
    for (int64_t i = 0; i < b->n_elems; i++) {
        *nonzero += want[i] != 0.0f;
        if (bad < 0 && !same_float(mine[i], want[i]))
            bad = i;
    }
    float got_bad = bad >= 0 ? mine[bad] : 0.0f, want_bad = bad >= 0 ? want[bad] : 0.0f;
    free(mine);
    free(want);
    T_CHECK_MSG(bad < 0, "%s element %lld (block %lld): mixq %a, llama.cpp %a", blocks,
                (long long)bad, (long long)(bad / mq_dtype_get(type)->block_elems), (double)got_bad,
                (double)want_bad);
    *compared += b->n_elems;
    return T_PASS;
}

static int test_fixture_matches_llama_cpp(void)
{
    struct mq_gguf *g;
    T_SKIP_IF(access(FIXTURE, R_OK) != 0, "no %s: run tests/interop/make-quant-fixture.sh",
              FIXTURE);
    T_CHECK(mq_gguf_open(FIXTURE, &g) == MQ_OK);
    char version[64];
    int rc = mq_gguf_get_str(g, "mixq.fixture", version, sizeof(version));
    T_CHECK(rc == MQ_OK && strcmp(version, "quant-src/1") == 0);
    for (size_t i = 0; i < N(src_types); i++) {
        char blocks[64], floats[64];
        int64_t compared = 0, nonzero = 0;
        enum mq_dtype type = src_types[i].type;
        /* rows quantized by llama-quantize: real scales, real codes */
        snprintf(blocks, sizeof(blocks), "%s.blocks", src_types[i].name);
        snprintf(floats, sizeof(floats), "%s.f32", src_types[i].name);
        const struct mq_gguf_tensor *b = mq_gguf_find_tensor(g, blocks);
        T_CHECK_MSG(b && b->ne[0] == 512 && b->ne[1] == 4, "'%s' is not 4 rows of 512", blocks);
        if (check_pair(g, type, blocks, floats, &compared, &nonzero) != T_PASS)
            goto fail;
        /* random bytes: every bit of the layout, extreme scales, Inf and NaN included */
        snprintf(blocks, sizeof(blocks), "%s.random.blocks", src_types[i].name);
        snprintf(floats, sizeof(floats), "%s.random.f32", src_types[i].name);
        if (check_pair(g, type, blocks, floats, &compared, &nonzero) != T_PASS)
            goto fail;
        /* a fixture of zeros would prove nothing */
        T_CHECK_MSG(compared == 6 * 512 && nonzero > compared / 2, "%s: %lld of %lld non-zero",
                    src_types[i].name, (long long)nonzero, (long long)compared);
    }
    mq_gguf_close(g);
    return T_PASS;
fail:
    mq_gguf_close(g);
    return T_FAIL;
}

/* The writer writes source-only blocks as they are, and the reader reads them back. */
static int test_writer_roundtrip(void)
{
    struct mq_gguf *g, *back;
    T_SKIP_IF(access(FIXTURE, R_OK) != 0, "no %s", FIXTURE);
    T_CHECK(mq_gguf_open(FIXTURE, &g) == MQ_OK);
    char path[4096];
    snprintf(path, sizeof(path), "%s/quant-src-copy.gguf", t_tmpdir());
    struct mq_gguf_writer *w = mq_gguf_writer_new();
    T_CHECK(w);
    for (size_t i = 0; i < N(src_types); i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s.blocks", src_types[i].name);
        const struct mq_gguf_tensor *t = mq_gguf_find_tensor(g, name);
        T_CHECK(t);
        T_CHECK(mq_gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data) == MQ_OK);
    }
    T_CHECK(mq_gguf_writer_write(w, path) == MQ_OK);
    mq_gguf_writer_free(w);
    T_CHECK(mq_gguf_open(path, &back) == MQ_OK);
    T_CHECK(back->n_tensors == N(src_types));
    for (size_t i = 0; i < N(src_types); i++) {
        const struct mq_gguf_tensor *a = mq_gguf_find_tensor(g, back->tensors[i].name);
        const struct mq_gguf_tensor *b = &back->tensors[i];
        T_CHECK(a && a->type == b->type && a->ggml_type == src_types[i].ggml_type);
        T_CHECK(b->ggml_type == src_types[i].ggml_type && a->nbytes == b->nbytes);
        T_CHECK(memcmp(a->data, b->data, a->nbytes) == 0);
    }
    mq_gguf_close(back);
    mq_gguf_close(g);
    return T_PASS;
}

/* ---- refusal of the types mixq does not read ---- */

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

/* A GGUF v3 file with one tensor "blk.0.ffn_down.weight" [256, 2] of ggml type `type`
 * and 1024 bytes of zero data (more than any type needs); returns its size. */
static size_t one_tensor_file(uint8_t *buf, size_t size, uint32_t type)
{
    static const char name[] = "blk.0.ffn_down.weight";
    memset(buf, 0, size);
    uint8_t *p = buf;
    memcpy(p, "GGUF", 4);
    p = put_u32(p + 4, 3);
    p = put_u64(p, 1); /* tensors */
    p = put_u64(p, 0); /* key/values */
    p = put_u64(p, sizeof(name) - 1);
    memcpy(p, name, sizeof(name) - 1);
    p = put_u32(p + sizeof(name) - 1, 2);
    p = put_u64(p, 256);
    p = put_u64(p, 2);
    p = put_u32(p, type);
    p = put_u64(p, 0); /* offset */
    size_t data = ((size_t)(p - buf) + 31) / 32 * 32;
    return data + 1024;
}

/* mq_gguf_open_memory with stderr captured into err (NUL-terminated, truncated); returns
 * its status, or -1000 when stderr cannot be redirected. */
static int open_captured(const uint8_t *buf, size_t n, struct mq_gguf **g, char *err, size_t size)
{
    err[0] = '\0';
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    if (!tmp || saved < 0 || dup2(fileno(tmp), 2) < 0) {
        if (tmp)
            fclose(tmp);
        if (saved >= 0)
            close(saved);
        return -1000;
    }
    int rc = mq_gguf_open_memory(buf, n, "unsupported.gguf", g);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t got = fread(err, 1, size - 1, tmp);
    err[got] = '\0';
    fclose(tmp);
    return rc;
}

static int test_unsupported_types(void)
{
    static const struct {
        uint32_t ggml_type;
        const char *msg; /* NULL: any type mixq reads */
    } cases[] = {
        {4, "has type q4_2 (ggml type 4), which mixq does not read yet"},
        {9, "has type q8_1 (ggml type 9), which mixq does not read yet"},
        {16, "has type iq2_xxs (ggml type 16), which mixq does not read yet"},
        {29, "has type iq1_m (ggml type 29), which mixq does not read yet"},
        {34, "has type tq1_0 (ggml type 34), which mixq does not read yet"},
        {35, "has type tq2_0 (ggml type 35), which mixq does not read yet"},
        {39, "has type mxfp4 (ggml type 39), which mixq does not read yet"},
        {1000, "has ggml type 1000, which mixq does not know"},
    };
    uint8_t buf[2048];
    for (size_t i = 0; i < N(cases); i++) {
        size_t n = one_tensor_file(buf, sizeof(buf), cases[i].ggml_type);
        char err[1024];
        struct mq_gguf *g = NULL;
        int rc = open_captured(buf, n, &g, err, sizeof(err));
        mq_gguf_close(g);
        T_CHECK_MSG(rc != -1000, "cannot capture stderr");
        T_CHECK_MSG(rc == MQ_EUNSUPPORTED, "ggml type %u: rc %d", cases[i].ggml_type, rc);
        T_CHECK_MSG(strstr(err, cases[i].msg) && strstr(err, "'blk.0.ffn_down.weight'"),
                    "ggml type %u: message '%s'", cases[i].ggml_type, err);
        T_CHECK_MSG(strchr(err, '\n') == err + strlen(err) - 1, "not one line: '%s'", err);
    }
    /* every other number up to 63 is read or refused with MQ_EUNSUPPORTED, never worse */
    for (uint32_t t = 0; t < 64; t++) {
        size_t n = one_tensor_file(buf, sizeof(buf), t);
        enum mq_dtype dt;
        bool known = mq_dtype_from_ggml(t, &dt) == MQ_OK;
        struct mq_gguf *g = NULL;
        char err[1024];
        int rc = open_captured(buf, n, &g, err, sizeof(err));
        /* known: 2 rows of 256 fit in the 1024 bytes except for the wide types (f32, i32) */
        T_CHECK_MSG(rc != -1000, "cannot capture stderr");
        if (known &&
            mq_dtype_get(dt)->block_bytes * 512 / (size_t)mq_dtype_get(dt)->block_elems <= 1024)
            T_CHECK_MSG(rc == MQ_OK && g->tensors[0].type == dt, "ggml type %u: rc %d", t, rc);
        else if (!known)
            T_CHECK_MSG(rc == MQ_EUNSUPPORTED, "ggml type %u: rc %d", t, rc);
        mq_gguf_close(g);
    }
    return T_PASS;
}

const struct mq_test quant_src_tests[] = {
    {"quant_src/traits", test_traits},
    {"quant_src/row_bytes", test_row_bytes},
    {"quant_src/legacy_blocks", test_legacy_blocks},
    {"quant_src/q4_k_q5_k_blocks", test_q4_k_block},
    {"quant_src/k_interleave", test_k_interleave},
    {"quant_src/fixture_matches_llama_cpp", test_fixture_matches_llama_cpp},
    {"quant_src/writer_roundtrip", test_writer_roundtrip},
    {"quant_src/unsupported_types", test_unsupported_types},
    {NULL, NULL},
};
