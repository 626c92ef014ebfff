/* tests/unit/main.c - runs every unit-test table; `test-unit [FILTER...]` runs the tests
 * whose names contain one of the filters. Exit 0 when none failed (skips are fine). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "tests/unit/test.h"

extern const struct mq_test core_tests[];
extern const struct mq_test gguf_tests[];
extern const struct mq_test model_tests[];
extern const struct mq_test arch_tests[];
extern const struct mq_test backend_tests[];
extern const struct mq_test backend_ops_tests[];
extern const struct mq_test eval_tests[];
extern const struct mq_test yaml_tests[];
extern const struct mq_test quant_src_tests[];
extern const struct mq_test quant_tests[];
extern const struct mq_test compensate_tests[];
extern const struct mq_test tokenizer_tests[];
extern const struct mq_test cpu_tests[];
extern const struct mq_test neon_tests[];
extern const struct mq_test cuda_tests[];
extern const struct mq_test cuda_layout_tests[];
extern const struct mq_test profile_tests[];
extern const struct mq_test search_tests[];
extern const struct mq_test tune_tests[];
extern const struct mq_test synth_tests[];
extern const struct mq_test onnx_tests[];
extern const struct mq_test compare_tests[];
extern const struct mq_test export_tests[];
extern const struct mq_test preset_tests[];
extern const struct mq_test imatrix_tests[];
extern const struct mq_test imatrix_cache_tests[];
extern const struct mq_test sensitivity_tests[];

static const struct mq_test *const suites[] = {
    core_tests,      gguf_tests,      model_tests, arch_tests, backend_tests, backend_ops_tests, eval_tests,
    yaml_tests,      quant_src_tests, quant_tests, compensate_tests, tokenizer_tests, cpu_tests,     neon_tests,
    cuda_tests,      cuda_layout_tests, profile_tests,   search_tests, tune_tests,
    synth_tests,
    onnx_tests,
    export_tests,
    preset_tests,
    compare_tests,
    imatrix_tests,
    imatrix_cache_tests,
    sensitivity_tests,
};

static char tmpdir[4096];

const char *t_tmpdir(void) { return tmpdir; }

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[8192];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int matches(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *root = getenv("MIXQ_SRCDIR");
    if (root && chdir(root) != 0) {
        perror("chdir MIXQ_SRCDIR");
        return 2;
    }
    if (!getenv("MIXQ_TEST_VERBOSE"))
        mq_log_set_level(MQ_LOG_WARN);
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/mixq-test-XXXXXX", t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    int n_pass = 0, n_fail = 0, n_skip = 0;
    for (size_t s = 0; s < sizeof(suites) / sizeof(suites[0]); s++) {
        for (const struct mq_test *tc = suites[s]; tc->name; tc++) {
            if (!matches(tc->name, argc, argv))
                continue;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            fflush(stdout);
            int rc = tc->fn();
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
            const char *word = rc == T_PASS ? "ok  " : rc == T_SKIP ? "skip" : "FAIL";
            printf("%s %-48s %8.1f ms\n", word, tc->name, ms);
            fflush(stdout);
            n_pass += rc == T_PASS;
            n_skip += rc == T_SKIP;
            n_fail += rc != T_PASS && rc != T_SKIP;
        }
    }
    rm_tree(tmpdir);
    printf("unit tests: %d passed, %d skipped, %d failed\n", n_pass, n_skip, n_fail);
    return n_fail ? 1 : 0;
}
