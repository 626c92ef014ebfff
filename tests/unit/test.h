/* tests/unit/test.h - the unit-test harness: tests in tables, one runner.
 *
 * A test is a function returning T_PASS, T_SKIP (with a reason printed by T_SKIP_IF) or
 * T_FAIL. Checks print "file:line: what failed" and make the test fail:
 *
 *     static int test_roundtrip(void)
 *     {
 *         T_CHECK(x == 3);                  // returns T_FAIL when false
 *         T_CHECK_MSG(err < 1e-6, "err %g", err);
 *         T_SKIP_IF(!have_file, "no model file: run scripts/fetch-models");
 *         return T_PASS;
 *     }
 *     const struct mq_test gguf_tests[] = {
 *         {"gguf/roundtrip", test_roundtrip},
 *         {NULL, NULL},
 *     };
 *
 * Each suite's table is listed once in tests/unit/main.c. Tests run from the repository
 * root (the runner changes there), so data paths are relative to it; scratch files go
 * under t_tmpdir(), which the runner creates and removes.
 */
#ifndef MQ_TESTS_TEST_H
#define MQ_TESTS_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dtype.h"

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

struct mq_test {
    const char *name;
    int (*fn)(void);
};

#define T_CHECK(cond)                                                                         \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
            return T_FAIL;                                                                    \
        }                                                                                     \
    } while (0)

#define T_CHECK_MSG(cond, ...)                                                                \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "    %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fputc('\n', stderr);                                                              \
            return T_FAIL;                                                                    \
        }                                                                                     \
    } while (0)

#define T_SKIP_IF(cond, ...)                                                                  \
    do {                                                                                      \
        if (cond) {                                                                           \
            fprintf(stderr, "    skip: ");                                                    \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fputc('\n', stderr);                                                              \
            return T_SKIP;                                                                    \
        }                                                                                     \
    } while (0)

/* Built with AddressSanitizer: peak RSS then includes its shadow memory and quarantine,
 * so tests that compare RSS with the memory model skip. */
#if defined(__SANITIZE_ADDRESS__)
#define T_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_UNDER_ASAN 1
#endif
#endif
#ifndef T_UNDER_ASAN
#define T_UNDER_ASAN 0
#endif

/* A scratch folder for this run (removed at the end). */
const char *t_tmpdir(void);

/* Deterministic pseudo-random numbers for test data (xorshift64*). */
struct t_rng {
    unsigned long long s;
};
static inline unsigned long long t_rng_next(struct t_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}
/* Uniform in [-1, 1). */
static inline float t_rng_float(struct t_rng *r)
{
    return (float)((double)(t_rng_next(r) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* Whether a whole-model test under emulation or sanitizers (reduced: true) runs format t:
 * every format natively; reduced, one of each kernel family (float: f32, f16, bf16; Q8_0
 * activations: q8_0, q4_1 with its min, iq4_nl with its table; Q8_K activations: q3_k
 * with its high-bit mask, q5_k with its high bits and mins, iq4_xs). Every format's
 * kernels still run everywhere in backend_ops/, which is cheap. */
bool t_format_in_run(enum mq_dtype t, bool reduced);

/* n_rows rows of K values (a whole number of blocks) of a block-quantized `type` as
 * pseudo-random bytes, so that every bit of the layout occurs, with the f16 scale fields
 * (d, dmin, m) set to random finite values of magnitude 2^-9 .. 2^-4: dot products stay
 * finite while codes and packed sub-scales take every value. dst holds the rows' bytes.
 * Plain types get random bytes (use fill functions for those instead). */
void t_random_blocks(enum mq_dtype type, int64_t K, int64_t n_rows, unsigned long long seed, void *dst);

/* stderr redirected into a temporary file, to check what the library prints:
 *     struct t_capture c; if (t_capture_begin(&c) < 0) ...; <calls>; t_capture_end(&c, buf, sizeof(buf));
 * t_capture_end restores stderr and puts what was printed in out (truncated to size). */
struct t_capture {
    int saved;
    FILE *tmp;
};
int t_capture_begin(struct t_capture *c);
void t_capture_end(struct t_capture *c, char *out, size_t size);

#endif
