/* profiler/llamacpp.c - llama-bench and llama-perplexity run on a plan's file (llamacpp.h). */
#include "profiler/llamacpp.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/file.h"
#include "core/log.h"
#include "core/status.h"
#include "profiler/topology.h"

#define MAX_SAMPLES 1024
#define MAX_OUTPUT (64u << 20) /* bytes of a tool's output read back */

int prof_llamacpp_check(const char *bindir)
{
    static const char *const tools[] = {"llama-bench", "llama-perplexity"};
    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/%s", bindir, tools[i]);
        if (!mq_file_executable(p))
            return mq_error(MQ_ENOTFOUND,
                            "llama.cpp's %s is not in '%s' (give the folder of llama-bench and "
                            "llama-perplexity: --runtime llama.cpp=BINDIR)",
                            tools[i], bindir);
    }
    return MQ_OK;
}

/* The last non-empty line of s, copied into line. */
static void last_line(const char *s, char *line, size_t n)
{
    const char *end = s + strlen(s);
    while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    const char *b = end;
    while (b > s && b[-1] != '\n')
        b--;
    snprintf(line, n, "%.*s", (int)(end - b), b);
}

/* Runs argv[0] (a path) with stdin from /dev/null, stdout into out_path and stderr into
 * err_path (NULL: out_path too); *text gets stdout (the caller frees it). A non-zero exit
 * or a signal is one line quoting stderr's last line. */
static int run_tool(const char *const *argv, const char *out_path, const char *err_path,
                    char **text)
{
    *text = NULL;
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), efd = fd;
    if (fd < 0)
        return mq_error(MQ_EIO, "cannot write '%s': %s", out_path, strerror(errno));
    if (err_path && (efd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        int e = errno;
        close(fd);
        return mq_error(MQ_EIO, "cannot write '%s': %s", err_path, strerror(e));
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fd);
        if (efd != fd)
            close(efd);
        return mq_error(MQ_EIO, "cannot run %s: fork: %s", name, strerror(e));
    }
    if (pid == 0) { /* only async-signal-safe calls from here */
        prof_topology_unpin_self(); /* as a user's shell starts it, not on the profiler's core */
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(efd, 2) < 0)
            _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fd);
    if (efd != fd)
        close(efd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return mq_error(MQ_EIO, "cannot run %s: waitpid: %s", name, strerror(errno));
    }
    size_t len;
    char *err = NULL, line[512] = "";
    int rc = mq_file_read(out_path, "llama.cpp's output", MAX_OUTPUT, text, &len);
    if (rc == MQ_OK && err_path &&
        (rc = mq_file_read(err_path, "llama.cpp's messages", MAX_OUTPUT, &err, &len)) < 0) {
        free(*text);
        *text = NULL;
    }
    if (rc < 0)
        return rc;
    last_line(err ? err : *text, line, sizeof(line));
    free(err);
    if (WIFSIGNALED(st))
        rc = mq_error(MQ_EIO, "%s was killed by signal %d%s%s", name, WTERMSIG(st),
                      line[0] ? ": " : "", line);
    else if (!WIFEXITED(st) || WEXITSTATUS(st) == 126 || WEXITSTATUS(st) == 127)
        rc = mq_error(MQ_EIO, "cannot run '%s'", argv[0]);
    else if (WEXITSTATUS(st) != 0)
        rc = mq_error(MQ_EIO, "%s failed (exit %d)%s%s", name, WEXITSTATUS(st), line[0] ? ": " : "",
                      line);
    if (rc < 0) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

int prof_llamacpp_bench_args(const struct mq_workload *w, int threads, int reps, char buf[][24],
                             int n_buf, const char **args, int max, int *per_run)
{
    int n = 0, b = 0;
#define ARG(s) (n < max ? (void)(args[n++] = (s)) : (void)n++)
#define NUM(v)                                                                                     \
    (b < n_buf ? (snprintf(buf[b], sizeof(buf[b]), "%lld", (long long)(v)), ARG(buf[b++]))         \
               : (void)n++)
    *per_run = 1;
    switch (w->kind) {
    case MQ_WL_DECODE:
        ARG("-p"), ARG("0"), ARG("-n"), NUM(PROF_LLAMACPP_DECODE_TOKENS), ARG("-d"),
            NUM(w->ctx - 1);
        *per_run = PROF_LLAMACPP_DECODE_TOKENS;
        break;
    case MQ_WL_PREFILL: ARG("-p"), NUM(w->prompt), ARG("-n"), ARG("0"); break;
    case MQ_WL_GENERATE:
        b < n_buf
            ? snprintf(buf[b], sizeof(buf[b]), "%lld,%lld", (long long)w->prompt, (long long)w->gen)
            : 0;
        ARG("-pg"), b < n_buf ? ARG(buf[b++]) : (void)n++, ARG("-p"), ARG("0"), ARG("-n"), ARG("0");
        break;
    default:
        return mq_error(MQ_EUNSUPPORTED,
                        "workload %s: llama-bench runs decode, prefill and generate workloads",
                        w->label);
    }
    ARG("-t"), NUM(threads), ARG("-r"), NUM(reps > 0 ? reps : 5), ARG("-o"), ARG("json");
    const char *rp = getenv("LLAMA_ARG_REPACK");
    if (rp && (!strcmp(rp, "0") || !strcasecmp(rp, "false") || !strcasecmp(rp, "off") ||
               !strcasecmp(rp, "disabled")))
        ARG("--repack"), ARG("0");
#undef ARG
#undef NUM
    if (n > max || b > n_buf)
        return mq_error(MQ_EINTERNAL, "llama-bench arguments: %d needed, room for %d", n, max);
    return n;
}

/* The integer after "key": in s (the first occurrence), or -2 when absent or not one. */
static long long json_int(const char *s, const char *key)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\"", key);
    const char *p = strstr(s, k);
    if (!p)
        return -2;
    p += strlen(k);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p++ != ':')
        return -2;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    return end == p || errno ? -2 : v;
}

int prof_llamacpp_parse_bench(const char *json, int64_t n_prompt, int64_t n_gen, int64_t n_depth,
                              int per_run, struct prof_stats *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = strstr(json, "\"samples_ns\"");
    if (!p)
        return mq_error(MQ_EFORMAT,
                        "llama-bench's output has no samples_ns (is it -o json of llama-bench?)");
    if (strstr(p + 1, "\"samples_ns\""))
        return mq_error(MQ_EFORMAT, "llama-bench's output holds several tests; one was asked for");
    static const char *const keys[] = {"n_prompt", "n_gen", "n_depth"};
    int64_t want[] = {n_prompt, n_gen, n_depth};
    for (int i = 0; i < 3; i++) {
        long long v = json_int(json, keys[i]);
        if (want[i] >= 0 && v != want[i])
            return mq_error(MQ_EFORMAT, "llama-bench ran %s %lld, %lld was asked for", keys[i], v,
                            (long long)want[i]);
    }
    p = strchr(p, ':');
    while (p && (*++p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        ;
    if (!p || *p != '[')
        return mq_error(MQ_EFORMAT, "llama-bench's samples_ns is not a list");
    double *s = malloc(MAX_SAMPLES * sizeof(double));
    if (!s)
        return mq_error(MQ_ENOMEM, "cannot allocate llama-bench's samples");
    int n = 0;
    p++;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ',')
            p++;
        if (*p == ']')
            break;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v > 0) || v > 1e15 || n == MAX_SAMPLES) {
            free(s);
            return mq_error(
                MQ_EFORMAT,
                "llama-bench's samples_ns holds '%.20s', not a list of at most %d positive "
                "nanosecond counts",
                p, MAX_SAMPLES);
        }
        s[n++] = v / per_run;
        p = end;
    }
    if (!n) {
        free(s);
        return mq_error(MQ_EFORMAT, "llama-bench's samples_ns is empty");
    }
    prof_stats_from(s, n, out);
    free(s);
    return MQ_OK;
}

/* The number after the ':' of the line that starts with `prefix`, and the one after its
 * '±' (err may be NULL). MQ_EINVAL quietly when there is no such line. */
static int summary_num(const char *text, const char *prefix, double *v, double *err)
{
    size_t n = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, prefix, n))
            continue;
        const char *c = strchr(l + n, ':');
        const char *eol = strchr(l, '\n');
        if (!c || (eol && c > eol))
            continue;
        char *end;
        *v = strtod(c + 1, &end);
        if (end == c + 1)
            continue;
        if (err) {
            const char *pm = strstr(end, "\xc2\xb1"); /* ± in UTF-8 */
            *err = pm && (!eol || pm < eol) ? strtod(pm + 2, NULL) : NAN;
        }
        return MQ_OK;
    }
    return MQ_EINVAL;
}

/* The numbers of a line (up to max), skipping what is not one ("±", "%"): their count. */
static int line_numbers(const char *l, double *v, int max)
{
    int n = 0;
    const char *eol = strchr(l, '\n');
    while (*l && l != eol && n < max) {
        char *end;
        double x = strtod(l, &end);
        if (end == l) {
            l++;
            continue;
        }
        v[n++] = x;
        l = end;
    }
    return n;
}

/* Fewer than 100 scored tokens: llama-perplexity prints no summary, only its table of
 * running figures per chunk (chunk, PPL ±, ln ratio ±, KL ±, Δp RMS ±, same top ±); the
 * last row, of chunk N of "computing over N chunks", holds the whole text's. */
static int parse_kl_table(const char *text, struct prof_llamacpp_result *out)
{
    const char *over = strstr(text, "computing over ");
    long chunks = over ? strtol(over + 15, NULL, 10) : 0;
    const char *head = strstr(text, "\nchunk ");
    if (chunks < 1 || !head)
        return MQ_EFORMAT;
    double v[12], last[12] = {0};
    int rows = 0;
    for (const char *l = strchr(head + 1, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
        int n = line_numbers(l + 1, v, 12);
        if (n != 11 || v[0] != rows + 1)
            break;
        memcpy(last, v, sizeof(v));
        rows++;
    }
    if (rows != chunks)
        return MQ_EFORMAT;
    out->ppl = last[1];
    out->kl = last[5];
    out->kl_stderr = last[6];
    out->same_top_pct = last[9];
    return MQ_OK;
}

int prof_llamacpp_parse_kl(const char *text, struct prof_llamacpp_result *out)
{
    out->kl = out->kl_stderr = out->ppl = out->same_top_pct = NAN;
    if (summary_num(text, "Mean    KLD", &out->kl, &out->kl_stderr) == MQ_OK) {
        summary_num(text, "Mean PPL(Q)", &out->ppl, NULL);
        summary_num(text, "Same top p", &out->same_top_pct, NULL);
    } else if (parse_kl_table(text, out) < 0) {
        return mq_error(MQ_EFORMAT, "llama-perplexity's output has neither its summary ('Mean    KLD') nor a "
                        "row for every chunk (is it llama-perplexity --kl-divergence?)");
    }
    /* slightly negative where the plan is as precise as the reference: the base logits are
     * stored in 16-bit steps */
    if (!isfinite(out->kl) || out->kl < -1e-3)
        return mq_error(MQ_EFORMAT, "llama-perplexity's Mean KLD is %g, not a KL divergence", out->kl);
    return MQ_OK;
}

/* llama-perplexity's arguments common to the base and the KL runs. */
static int ppl_args(const struct prof_llamacpp_config *c, const char *model, char *exe,
                    size_t exe_n, char nums[3][24], const char **a)
{
    snprintf(exe, exe_n, "%s/llama-perplexity", c->bindir);
    snprintf(nums[0], sizeof(nums[0]), "%lld", (long long)c->ctx);
    snprintf(nums[1], sizeof(nums[1]), "%d", c->threads);
    snprintf(nums[2], sizeof(nums[2]), "%lld", (long long)c->chunks);
    int n = 0;
    a[n++] = exe, a[n++] = "-m", a[n++] = model, a[n++] = "-f", a[n++] = c->text, a[n++] = "-c",
    a[n++] = nums[0];
    a[n++] = "-t", a[n++] = nums[1];
    if (c->chunks > 0)
        a[n++] = "--chunks", a[n++] = nums[2];
    return n;
}

int prof_llamacpp_base(const struct prof_llamacpp_config *c, const char *source_gguf)
{
    char exe[4200], nums[3][24], base[4200], out[4200];
    const char *a[24];
    int n = ppl_args(c, source_gguf, exe, sizeof(exe), nums, a);
    snprintf(base, sizeof(base), "%s/base.kld", c->work_dir);
    snprintf(out, sizeof(out), "%s/perplexity-base.txt", c->work_dir);
    a[n++] = "--kl-divergence-base", a[n++] = base, a[n] = NULL;
    unlink(base);
    char *text;
    int rc = run_tool(a, out, NULL, &text);
    free(text);
    struct stat st;
    if (rc == MQ_OK && !(stat(base, &st) == 0 && st.st_size > 0))
        rc =
            mq_error(MQ_EIO, "llama-perplexity wrote no reference logits '%s' (see %s)", base, out);
    return rc;
}

int prof_llamacpp_measure(const struct prof_llamacpp_config *c, const char *gguf,
                          struct prof_llamacpp_result *out)
{
    memset(out, 0, sizeof(*out));
    char exe[4200], path[4200], buf[8][24];
    const char *a[40];
    int per_run, n = 0;
    snprintf(exe, sizeof(exe), "%s/llama-bench", c->bindir);
    a[n++] = exe, a[n++] = "-m", a[n++] = gguf;
    int k =
        prof_llamacpp_bench_args(&c->workload, c->threads, c->reps, buf, 8, a + n, 30, &per_run);
    if (k < 0)
        return k;
    a[n + k] = NULL;
    char err[4200];
    snprintf(path, sizeof(path), "%s/bench.json", c->work_dir);
    snprintf(err, sizeof(err), "%s/bench.err", c->work_dir);
    char *text;
    int rc = run_tool(a, path, err, &text);
    if (rc < 0)
        return rc;
    const struct mq_workload *w = &c->workload;
    int64_t np = w->kind == MQ_WL_DECODE ? 0 : w->prompt, ng = w->kind == MQ_WL_DECODE
                                                                   ? PROF_LLAMACPP_DECODE_TOKENS
                                                               : w->kind == MQ_WL_GENERATE ? w->gen
                                                                                           : 0;
    rc = prof_llamacpp_parse_bench(text, np, ng, w->kind == MQ_WL_DECODE ? w->ctx - 1 : 0, per_run,
                                   &out->lat);
    free(text);
    if (rc < 0)
        return rc;

    char nums[3][24], base[4200];
    n = ppl_args(c, gguf, exe, sizeof(exe), nums, a);
    snprintf(base, sizeof(base), "%s/base.kld", c->work_dir);
    a[n++] = "--kl-divergence-base", a[n++] = base, a[n++] = "--kl-divergence", a[n] = NULL;
    snprintf(path, sizeof(path), "%s/perplexity.txt", c->work_dir);
    for (int attempt = 1;; attempt++) {
        if ((rc = run_tool(a, path, NULL, &text)) < 0)
            return rc;
        struct prof_llamacpp_result seen;
        bool whole = summary_num(text, "Mean    KLD", &seen.kl, NULL) == MQ_OK || parse_kl_table(text, &seen) == MQ_OK;
        if (whole || attempt == 3) {
            rc = prof_llamacpp_parse_kl(text, out);
            free(text);
            return rc;
        }
        free(text);
        mq_info("llama-perplexity's output on '%s' was cut short (run %d): running it again", gguf,
                attempt);
    }
}
