/* tests/unit/util.c - test data shared by the suites (declared in tests/unit/test.h). */
#include <stddef.h>
#include <string.h>

#include "core/dtype.h"
#include "core/fp16.h"
#include "tests/unit/test.h"

#include <unistd.h>

/* Offsets of the f16 scale fields of each block format (ggml layouts, core/dtype.h). */
static int f16_fields(enum mq_dtype type, size_t at[2])
{
    switch (type) {
    case MQ_DTYPE_Q8_0: at[0] = offsetof(struct mq_block_q8_0, d); return 1;
    case MQ_DTYPE_Q4_0: at[0] = offsetof(struct mq_block_q4_0, d); return 1;
    case MQ_DTYPE_Q5_0: at[0] = offsetof(struct mq_block_q5_0, d); return 1;
    case MQ_DTYPE_IQ4_NL: at[0] = offsetof(struct mq_block_iq4_nl, d); return 1;
    case MQ_DTYPE_IQ4_XS: at[0] = offsetof(struct mq_block_iq4_xs, d); return 1;
    case MQ_DTYPE_Q3_K: at[0] = offsetof(struct mq_block_q3_k, d); return 1;
    case MQ_DTYPE_Q6_K: at[0] = offsetof(struct mq_block_q6_k, d); return 1;
    case MQ_DTYPE_Q4_1:
        at[0] = offsetof(struct mq_block_q4_1, d), at[1] = offsetof(struct mq_block_q4_1, m);
        return 2;
    case MQ_DTYPE_Q5_1:
        at[0] = offsetof(struct mq_block_q5_1, d), at[1] = offsetof(struct mq_block_q5_1, m);
        return 2;
    case MQ_DTYPE_Q2_K:
        at[0] = offsetof(struct mq_block_q2_k, d), at[1] = offsetof(struct mq_block_q2_k, dmin);
        return 2;
    case MQ_DTYPE_Q4_K:
        at[0] = offsetof(struct mq_block_q4_k, d), at[1] = offsetof(struct mq_block_q4_k, dmin);
        return 2;
    case MQ_DTYPE_Q5_K:
        at[0] = offsetof(struct mq_block_q5_k, d), at[1] = offsetof(struct mq_block_q5_k, dmin);
        return 2;
    default: return 0;
    }
}

bool t_format_in_run(enum mq_dtype t, bool reduced)
{
    if (!mq_dtype_get(t)->is_plan_format)
        return false;
    if (!reduced)
        return true;
    switch (t) {
    case MQ_DTYPE_F32: case MQ_DTYPE_F16: case MQ_DTYPE_BF16: case MQ_DTYPE_Q8_0: case MQ_DTYPE_Q4_1:
    case MQ_DTYPE_IQ4_NL: case MQ_DTYPE_Q3_K: case MQ_DTYPE_Q5_K: case MQ_DTYPE_IQ4_XS:
        return true;
    default:
        return false;
    }
}

void t_random_blocks(enum mq_dtype type, int64_t K, int64_t n_rows, unsigned long long seed, void *dst)
{
    const struct mq_dtype_traits *t = mq_dtype_get(type);
    struct t_rng r = {seed * 0x9E3779B97F4A7C15ULL + 1};
    int64_t n_blocks = K / t->block_elems * n_rows;
    unsigned char *p = dst;
    size_t at[2];
    int n_f16 = f16_fields(type, at);
    for (int64_t b = 0; b < n_blocks; b++, p += t->block_bytes) {
        for (size_t i = 0; i < t->block_bytes; i++)
            p[i] = (unsigned char)(t_rng_next(&r) >> 56);
        for (int f = 0; f < n_f16; f++) {
            /* magnitude 2^-9 .. 2^-5, random sign */
            float v = (0.5f + 0.5f * (t_rng_float(&r) + 1.0f)) * (float)(1.0 / (1 << (5 + (int)(t_rng_next(&r) % 4))));
            if (t_rng_next(&r) & 1)
                v = -v;
            uint16_t h = mq_f32_to_f16(v);
            memcpy(p + at[f], &h, 2);
        }
    }
}

int t_capture_begin(struct t_capture *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    if (!c->tmp)
        return -1;
    c->saved = dup(2);
    if (c->saved < 0 || dup2(fileno(c->tmp), 2) < 0) {
        fclose(c->tmp);
        return -1;
    }
    return 0;
}

void t_capture_end(struct t_capture *c, char *out, size_t size)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    rewind(c->tmp);
    size_t n = fread(out, 1, size - 1, c->tmp);
    out[n] = '\0';
    fclose(c->tmp);
}
