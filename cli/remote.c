/* cli/remote.c - the mixq-agent/1 protocol: frames, the host side and the agent's loop.
 * The contract is in remote.h. */
#include "cli/remote.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/neon/neon.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/status.h"
#include "model/model.h"
#include "model/runner.h"
#include "profiler/cache.h"
#include "profiler/topology.h"
#include "reports/profile_io.h"
#include "reports/yaml_doc.h"

#ifndef MIXQ_VERSION
#define MIXQ_VERSION "unknown"
#endif

#define FRAME_MAX ((size_t)64 << 20)
#define HEADER_MAX 64

/* ---- frames ------------------------------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int frame_send(int fd, const char *text, size_t len)
{
    char head[HEADER_MAX];
    int h = snprintf(head, sizeof(head), "%s %zu\n", CLI_AGENT_PROTOCOL, len);
    return write_all(fd, head, (size_t)h) == 0 && write_all(fd, text, len) == 0 ? 0 : -1;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum recv_status { RECV_OK = 1, RECV_EOF = 0, RECV_CLOSED = -1, RECV_TIMEOUT = -2, RECV_BAD = -3, RECV_IO = -4 };

/* Reads n bytes; deadline < 0: none. */
static int read_full(int fd, char *p, size_t n, double deadline, size_t *got)
{
    *got = 0;
    while (*got < n) {
        if (deadline >= 0) {
            double left = deadline - mono_s();
            if (left <= 0)
                return RECV_TIMEOUT;
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            int pr = poll(&pf, 1, (int)fmin(left * 1000 + 1, 2147483647.0));
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr < 0)
                return RECV_IO;
            if (pr == 0)
                return RECV_TIMEOUT;
        }
        ssize_t k = read(fd, p + *got, n - *got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return RECV_IO;
        if (k == 0)
            return RECV_CLOSED;
        *got += (size_t)k;
    }
    return RECV_OK;
}

/* One frame into *text (NUL-terminated, caller frees). RECV_EOF: the stream ended before
 * a frame began; the other negatives with a description in what. */
static int frame_recv(int fd, double timeout_s, char **text, size_t *len, char *what, size_t wsize)
{
    *text = NULL;
    *len = 0;
    double deadline = timeout_s > 0 ? mono_s() + timeout_s : -1;
    char head[HEADER_MAX + 1];
    size_t n = 0, got;
    while (n < HEADER_MAX) {
        int rc = read_full(fd, head + n, 1, deadline, &got);
        if (rc == RECV_CLOSED && n == 0)
            return RECV_EOF;
        if (rc != RECV_OK) {
            snprintf(what, wsize, "%s", rc == RECV_TIMEOUT ? "timed out" : rc == RECV_CLOSED ? "closed its output mid-frame"
                                                                                           : "read failed");
            return rc;
        }
        if (head[n++] == '\n')
            break;
    }
    head[n] = '\0';
    size_t plen = strlen(CLI_AGENT_PROTOCOL);
    char *end = NULL;
    unsigned long long L = 0;
    bool ok = n > plen + 2 && head[n - 1] == '\n' && !strncmp(head, CLI_AGENT_PROTOCOL, plen) && head[plen] == ' ';
    if (ok) {
        errno = 0;
        L = strtoull(head + plen + 1, &end, 10);
        ok = !errno && end != head + plen + 1 && *end == '\n' && L <= FRAME_MAX;
    }
    if (!ok) {
        if (n > 0 && head[n - 1] == '\n')
            head[--n] = 0;
        for (size_t i = 0; i < n; i++) /* printable, for the message */
            if (head[i] < 0x20 || head[i] > 0x7e)
                head[i] = '?';
        if (!strncmp(head, "mixq-agent/", 11) && strncmp(head, CLI_AGENT_PROTOCOL " ", plen + 1))
            snprintf(what, wsize, "speaks '%.*s', this mixq speaks %s", (int)strcspn(head, " ?"), head,
                     CLI_AGENT_PROTOCOL);
        else
            snprintf(what, wsize, "sent '%.40s' where a %s frame was expected", head, CLI_AGENT_PROTOCOL);
        return RECV_BAD;
    }
    char *body = malloc((size_t)L + 1);
    if (!body) {
        snprintf(what, wsize, "sent a frame of %llu bytes that cannot be held", L);
        return RECV_BAD;
    }
    int rc = read_full(fd, body, (size_t)L, deadline, &got);
    if (rc != RECV_OK) {
        free(body);
        snprintf(what, wsize, "%s after %zu of %llu bytes of a frame",
                 rc == RECV_TIMEOUT ? "timed out" : rc == RECV_CLOSED ? "closed its output" : "failed", got, L);
        return rc;
    }
    body[L] = '\0';
    *text = body;
    *len = (size_t)L;
    return RECV_OK;
}

/* ---- YAML text -------------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)k;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* A YAML double-quoted scalar. */
static void bquote(struct buf *b, const char *s)
{
    bprintf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            bprintf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            bprintf(b, "\\x%02x", c);
        else
            bprintf(b, "%c", c);
    }
    bprintf(b, "\"");
}

static const char *get_str(struct rpt_yaml *y, const char *key)
{
    return rpt_yaml_scalar(rpt_yaml_get(y, rpt_yaml_root(y), key));
}

static bool get_num(struct rpt_yaml *y, yaml_node_t *map, const char *key, double *out)
{
    const char *s = rpt_yaml_scalar(rpt_yaml_get(y, map, key));
    char *end;
    if (!s)
        return false;
    errno = 0;
    *out = strtod(s, &end);
    return !errno && end != s && !*end && isfinite(*out);
}

static uint32_t formats_parse(const char *s)
{
    uint32_t m = 0;
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", s ? s : "");
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        enum mq_dtype f;
        if (mq_dtype_from_name(t, &f) == MQ_OK)
            m |= 1u << f;
    }
    return m;
}

static void formats_text(uint32_t m, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int f = 0; f < MQ_DTYPE_COUNT; f++)
        if ((m >> f) & 1u && used < size)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "", mq_dtype_name((enum mq_dtype)f));
}

static const char *cache_mode_name(enum prof_cache_mode m)
{
    return m == PROF_WARM ? "warm" : m == PROF_COLD ? "cold" : "auto";
}

/* The common part of model requests. */
static void req_model(struct buf *b, const char *request, const struct cli_remote_req *q)
{
    bprintf(b, "request: %s\nmodel: ", request);
    bquote(b, q->model);
    bprintf(b, "\ncontent_hash: \"%016" PRIx64 "\"\n", q->content_hash);
    if (q->shapes) {
        bprintf(b, "shapes: ");
        bquote(b, q->shapes);
        bprintf(b, "\n");
    }
    bprintf(b, "backend: ");
    bquote(b, q->backend ? q->backend : "cpu");
    bprintf(b, "\nthreads: %d\nworkload: \"%s\"\nmax_seconds: %.17g\nmemory: %s\n", q->threads, q->workload->label,
            q->max_seconds, q->memory ? "true" : "false");
}

/* ---- the host side ---------------------------------------------------------------------- */

struct cli_remote {
    char cmd[1024];
    pid_t pid;
    int to_fd, from_fd;
    double timeout;
    char target[1024];
};

const char *cli_remote_target(const struct cli_remote *r) { return r->target; }
const char *cli_remote_cmd(const struct cli_remote *r) { return r->cmd; }

/* The one error line for a failed exchange: how the agent failed, and its exit status
 * when it is gone. */
static int agent_failed(struct cli_remote *r, const char *during, const char *what)
{
    int status;
    char how[128] = "";
    if (r->pid > 0) {
        /* an agent that closed its output is usually exiting: give it a moment */
        pid_t w = 0;
        for (int i = 0; i < 50 && (w = waitpid(r->pid, &status, WNOHANG)) == 0; i++)
            usleep(10000);
        if (w == r->pid) {
            if (WIFEXITED(status))
                snprintf(how, sizeof(how), " (it exited with status %d)", WEXITSTATUS(status));
            else if (WIFSIGNALED(status))
                snprintf(how, sizeof(how), " (it was killed by signal %d)", WTERMSIG(status));
            r->pid = -1;
        }
    }
    return mq_error(MQ_EIO, "agent '%s' %s during %s%s", r->cmd, what, during, how);
}

/* Sends a request, receives its response into y; MQ_OK only for `ok: true`. */
static int exchange(struct cli_remote *r, const char *request, const struct buf *b, struct rpt_yaml *y)
{
    memset(y, 0, sizeof(*y));
    if (b->oom)
        return mq_error(MQ_ENOMEM, "cannot build a %s request", request);
    /* An agent that closed its input may still have written something (a foreign protocol's
     * greeting, garbage): read it, so that the message names what it said. */
    bool sent = frame_send(r->to_fd, b->p, b->n) == 0;
    char *text, what[160];
    size_t len;
    double wait = sent || (r->timeout > 0 && r->timeout < 5) ? r->timeout : 5;
    int rc = frame_recv(r->from_fd, wait, &text, &len, what, sizeof(what));
    if (rc == RECV_EOF || (!sent && rc == RECV_OK)) {
        if (rc == RECV_OK)
            free(text);
        return agent_failed(r, request, sent ? "ended its output" : "does not take requests (its input is closed)");
    }
    if (rc == RECV_TIMEOUT) {
        kill(r->pid, SIGKILL);
        return agent_failed(r, request, "stayed silent too long (killed)");
    }
    if (rc < 0)
        return agent_failed(r, request, what);
    char name[1200];
    snprintf(name, sizeof(name), "agent '%s' response", r->cmd);
    mq_error_set_quiet(1); /* its one-line error says more below */
    rc = rpt_yaml_load_string(name, text, len, y);
    mq_error_set_quiet(0);
    free(text);
    if (rc < 0) {
        char why[512]; /* mq_error_last() is the buffer the next mq_error writes */
        snprintf(why, sizeof(why), "%s", mq_error_last());
        return mq_error(MQ_EFORMAT, "agent '%s' answered %s with a frame that is not a YAML mapping: %s", r->cmd, request,
                        why);
    }
    const char *ok = get_str(y, "ok");
    if (!ok || (strcmp(ok, "true") && strcmp(ok, "false"))) {
        rpt_yaml_release(y);
        return mq_error(MQ_EFORMAT, "agent '%s' answered %s without 'ok: true|false'", r->cmd, request);
    }
    if (!strcmp(ok, "false")) {
        const char *e = get_str(y, "error");
        rc = mq_error(MQ_EIO, "agent '%s' failed %s: %s", r->cmd, request, e ? e : "(no message)");
        rpt_yaml_release(y);
        return rc;
    }
    return MQ_OK;
}

int cli_remote_open(const char *cmd, double timeout_s, struct cli_remote **out)
{
    *out = NULL;
    struct cli_remote *r = calloc(1, sizeof(*r));
    if (!r)
        return mq_error(MQ_ENOMEM, "cannot allocate a remote");
    snprintf(r->cmd, sizeof(r->cmd), "%s", cmd);
    r->timeout = timeout_s;
    r->to_fd = r->from_fd = -1;
    int in[2], outp[2];
    if (pipe2(in, O_CLOEXEC) != 0) {
        free(r);
        return mq_error(MQ_EIO, "cannot start agent '%s': pipe: %s", cmd, strerror(errno));
    }
    if (pipe2(outp, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        free(r);
        return mq_error(MQ_EIO, "cannot start agent '%s': pipe: %s", cmd, strerror(errno));
    }
    signal(SIGPIPE, SIG_IGN); /* a dead agent is an error from write, not a signal */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(outp[0]), close(outp[1]);
        free(r);
        return mq_error(MQ_EIO, "cannot start agent '%s': fork: %s", cmd, strerror(errno));
    }
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(outp[1], STDOUT_FILENO);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    r->pid = pid;
    r->to_fd = in[1];
    r->from_fd = outp[0];
    struct buf b = {0};
    bprintf(&b, "request: hello\nprotocol: %s\nmixq_version: \"%s\"\n", CLI_AGENT_PROTOCOL, MIXQ_VERSION);
    struct rpt_yaml y;
    int rc = exchange(r, "hello", &b, &y);
    free(b.p);
    if (rc < 0) {
        cli_remote_close(r);
        return rc;
    }
    const char *proto = get_str(&y, "agent"), *ver = get_str(&y, "mixq_version");
    yaml_node_t *t = rpt_yaml_get(&y, rpt_yaml_root(&y), "target");
    const char *cpu = rpt_yaml_scalar(rpt_yaml_get(&y, t, "cpu")), *arch = rpt_yaml_scalar(rpt_yaml_get(&y, t, "arch"));
    const char *feat = rpt_yaml_scalar(rpt_yaml_get(&y, t, "features"));
    const char *topo = rpt_yaml_scalar(rpt_yaml_get(&y, t, "topology"));
    const char *emu = rpt_yaml_scalar(rpt_yaml_get(&y, t, "emulated"));
    if (!proto || strcmp(proto, CLI_AGENT_PROTOCOL)) {
        rc = mq_error(MQ_EUNSUPPORTED, "agent '%s' speaks '%s', this mixq speaks %s", cmd, proto ? proto : "(nothing)",
                      CLI_AGENT_PROTOCOL);
    } else if (!cpu || !arch || !feat || !topo) {
        rc = mq_error(MQ_EFORMAT, "agent '%s' said hello without its target (cpu, arch, features, topology)", cmd);
    } else {
        snprintf(r->target, sizeof(r->target), "%.120s (%.40s; %.300s; %.300s%s), mixq %.40s", cpu, arch, feat, topo,
                 emu && !strcmp(emu, "true") ? "; EMULATED" : "", ver ? ver : "?");
    }
    rpt_yaml_release(&y);
    if (rc < 0) {
        cli_remote_close(r);
        return rc;
    }
    mq_info("agent '%s': %s", cmd, r->target);
    *out = r;
    return MQ_OK;
}

void cli_remote_close(struct cli_remote *r)
{
    if (!r)
        return;
    if (r->pid > 0 && r->to_fd >= 0) {
        static const char bye[] = "request: bye\n";
        frame_send(r->to_fd, bye, sizeof(bye) - 1);
    }
    if (r->to_fd >= 0)
        close(r->to_fd);
    if (r->pid > 0) { /* its input is closed: it exits; give it a few seconds */
        int status;
        pid_t w = 0;
        for (int i = 0; i < 300 && (w = waitpid(r->pid, &status, WNOHANG)) == 0; i++)
            usleep(10000);
        if (w == 0) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &status, 0);
        }
    }
    if (r->from_fd >= 0)
        close(r->from_fd);
    free(r);
}

int cli_remote_profile(struct cli_remote *r, const struct cli_remote_req *q, struct prof_profile **out)
{
    *out = NULL;
    char fmts[128];
    formats_text(q->formats, fmts, sizeof(fmts));
    struct buf b = {0};
    req_model(&b, "profile", q);
    bprintf(&b, "formats: \"%s\"\ncache_mode: %s\nrefresh: %s\n", fmts, cache_mode_name(q->cache_mode),
            q->cache_refresh ? "true" : "false");
    struct rpt_yaml y;
    int rc = exchange(r, "profile", &b, &y);
    free(b.p);
    if (rc < 0)
        return rc;
    rpt_yaml_release(&y);
    char *text, what[160];
    size_t len;
    rc = frame_recv(r->from_fd, r->timeout, &text, &len, what, sizeof(what));
    if (rc == RECV_EOF)
        return agent_failed(r, "profile", "ended its output before the profile");
    if (rc < 0)
        return agent_failed(r, "profile", what);
    /* the profile reader takes a file */
    char path[4096];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/mixq-remote-profile-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        free(text);
        return mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(errno));
    }
    rc = write_all(fd, text, len) == 0 ? MQ_OK : mq_error(MQ_EIO, "cannot write '%s': %s", path, strerror(errno));
    close(fd);
    free(text);
    if (rc == MQ_OK)
        rc = rpt_profile_read(path, out);
    unlink(path);
    if (rc < 0)
        return mq_error(MQ_EFORMAT, "agent '%s' sent a profile this mixq cannot read (see above)", r->cmd);
    snprintf((*out)->target.remote, sizeof((*out)->target.remote), "%.255s", r->cmd);
    return MQ_OK;
}

int cli_remote_measure(struct cli_remote *r, const struct cli_remote_req *q, const struct mq_plan *plan,
                       struct prof_stats *lat, uint64_t *peak, uint64_t *baseline)
{
    char *plan_text;
    int rc = mq_plan_to_string(plan, &plan_text);
    if (rc < 0)
        return rc;
    struct buf b = {0};
    req_model(&b, "measure", q);
    bprintf(&b, "plan: \"%s\"\n", plan_text);
    free(plan_text);
    struct rpt_yaml y;
    rc = exchange(r, "measure", &b, &y);
    free(b.p);
    if (rc < 0)
        return rc;
    yaml_node_t *root = rpt_yaml_root(&y), *l = rpt_yaml_get(&y, root, "latency"),
                *m = rpt_yaml_get(&y, root, "memory");
    double reps, pk, bs;
    memset(lat, 0, sizeof(*lat));
    bool ok = l && m && get_num(&y, l, "reps", &reps) && get_num(&y, l, "median_ns", &lat->median_ns) &&
              get_num(&y, l, "min_ns", &lat->min_ns) && get_num(&y, l, "mad_ns", &lat->mad_ns) &&
              get_num(&y, l, "mean_ns", &lat->mean_ns) && get_num(&y, l, "max_ns", &lat->max_ns) &&
              get_num(&y, l, "rel_ci", &lat->rel_ci) && get_num(&y, m, "peak_rss", &pk) &&
              get_num(&y, m, "baseline_rss", &bs) && reps >= 1 && lat->median_ns > 0 && pk >= 0 && bs >= 0;
    rpt_yaml_release(&y);
    if (!ok)
        return mq_error(MQ_EFORMAT, "agent '%s' answered measure without a complete latency and memory", r->cmd);
    lat->reps = (int)reps;
    *peak = (uint64_t)pk;
    *baseline = (uint64_t)bs;
    return MQ_OK;
}

/* ---- the agent ---------------------------------------------------------------------------- */

struct agent {
    int out_fd;
    char cache_dir[4096];
    /* the model last asked for, kept open between requests */
    struct mq_model *m;
    char model_path[4096];
};

static int reply(struct agent *a, struct buf *b)
{
    if (b->oom)
        return mq_error(MQ_ENOMEM, "cannot build a response");
    return frame_send(a->out_fd, b->p, b->n) == 0 ? MQ_OK : mq_error(MQ_EIO, "agent: cannot write to the host");
}

static int reply_error(struct agent *a, const char *msg)
{
    struct buf b = {0};
    bprintf(&b, "ok: false\nerror: ");
    bquote(&b, msg);
    bprintf(&b, "\n");
    int rc = reply(a, &b);
    free(b.p);
    return rc;
}

static int serve_hello(struct agent *a)
{
    struct prof_topology t;
    char topo[256] = "?", feat[256], why[256];
    int rc = prof_topology_load(&t);
    if (rc == MQ_OK)
        prof_topology_summary(&t, topo, sizeof(topo));
    prof_cpu_features(feat, sizeof(feat));
    bool emu = be_neon_emulated(why, sizeof(why));
    struct buf b = {0};
    bprintf(&b, "ok: true\nagent: %s\nmixq_version: \"%s\"\ntarget:\n  cpu: ", CLI_AGENT_PROTOCOL, MIXQ_VERSION);
    bquote(&b, rc == MQ_OK ? t.cpu_model : "?");
    bprintf(&b, "\n  arch: ");
    bquote(&b, rc == MQ_OK ? t.arch : "?");
    bprintf(&b, "\n  features: ");
    bquote(&b, feat);
    bprintf(&b, "\n  topology: ");
    bquote(&b, topo);
    bprintf(&b, "\n  emulated: %s\n  why: ", emu ? "true" : "false");
    bquote(&b, emu ? why : "");
    bprintf(&b, "\n");
    if (rc == MQ_OK)
        prof_topology_release(&t);
    rc = reply(a, &b);
    free(b.p);
    return rc;
}

/* The model a request names, loaded once, checked against the host's content hash. */
static int agent_model(struct agent *a, struct rpt_yaml *y)
{
    const char *path = get_str(y, "model"), *hash = get_str(y, "content_hash"), *shapes = get_str(y, "shapes");
    if (!path || !hash)
        return mq_error(MQ_EINVAL, "the request names no model and content_hash");
    const char *had = a->m ? a->m->input_shapes : NULL;
    bool same_shapes = (!had && !shapes) || (had && shapes && strcmp(had, shapes) == 0);
    if (!a->m || strcmp(a->model_path, path) || !same_shapes) {
        mq_model_free(a->m);
        a->m = NULL;
        int rc = cli_model_load(path, shapes, &a->m);
        if (rc < 0)
            return rc;
        snprintf(a->model_path, sizeof(a->model_path), "%s", path);
    }
    char mine[32];
    snprintf(mine, sizeof(mine), "%016" PRIx64, a->m->content_hash);
    if (strcmp(mine, hash))
        return mq_error(MQ_EINVAL, "model '%s' here has content hash %s, the host's has %s: not the same model", path,
                        mine, hash);
    return MQ_OK;
}

static int agent_backend(const struct mq_model *m, struct rpt_yaml *y, struct be_backend **be, struct mq_workload *w)
{
    const char *backend = get_str(y, "backend"), *wl = get_str(y, "workload");
    double threads = 0;
    get_num(y, rpt_yaml_root(y), "threads", &threads);
    if (!backend || !wl)
        return mq_error(MQ_EINVAL, "the request names no backend and workload");
    int rc = mq_workload_parse(wl, w);
    if (rc == MQ_OK)
        rc = be_open(backend, &(struct be_config){.n_threads = (int)threads}, be);
    if (rc == MQ_OK)
        rc = mq_model_lend(m, *be);
    return rc;
}

static int serve_profile(struct agent *a, struct rpt_yaml *y)
{
    struct be_backend *be = NULL;
    struct prof_profile *p = NULL;
    struct prof_options o = {.cache_dir = a->cache_dir, .progress = true};
    double ms = 0;
    const char *mode = get_str(y, "cache_mode"), *mem = get_str(y, "memory"), *refresh = get_str(y, "refresh");
    get_num(y, rpt_yaml_root(y), "max_seconds", &ms);
    o.max_seconds = ms;
    o.formats = formats_parse(get_str(y, "formats"));
    o.cache_mode = mode && !strcmp(mode, "warm") ? PROF_WARM : mode && !strcmp(mode, "cold") ? PROF_COLD : PROF_AUTO;
    o.cache_refresh = refresh && !strcmp(refresh, "true");
    int rc = agent_model(a, y);
    if (rc == MQ_OK)
        rc = agent_backend(a->m, y, &be, &o.workload);
    if (rc == MQ_OK)
        rc = mq_runner_check(a->m, &o.workload);
    if (rc == MQ_OK)
        rc = prof_profile_run(a->m, be, &o, &p);
    if (rc == MQ_OK && mem && !strcmp(mem, "true"))
        rc = prof_profile_probe_memory(a->m, p, get_str(y, "backend"), be_threads(be));
    char path[4096];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/mixq-agent-profile-%d.yaml", tmpdir && *tmpdir ? tmpdir : "/tmp", (int)getpid());
    if (rc == MQ_OK)
        rc = rpt_profile_write(p, path);
    prof_profile_free(p);
    be_close(be);
    if (rc < 0)
        return reply_error(a, mq_error_last());
    FILE *f = fopen(path, "rb");
    struct buf body = {0};
    char chunk[65536];
    size_t k;
    while (f && (k = fread(chunk, 1, sizeof(chunk), f)) > 0)
        bprintf(&body, "%.*s", (int)k, chunk);
    if (f)
        fclose(f);
    unlink(path);
    if (!f || body.oom) {
        free(body.p);
        return reply_error(a, "cannot read back the profile written here");
    }
    struct buf b = {0};
    bprintf(&b, "ok: true\npayload: profile\n");
    rc = reply(a, &b);
    free(b.p);
    if (rc == MQ_OK)
        rc = frame_send(a->out_fd, body.p, body.n) == 0 ? MQ_OK : mq_error(MQ_EIO, "agent: cannot write to the host");
    free(body.p);
    return rc;
}

struct run_ctx {
    const struct mq_model *m;
    void *session;
};

static int run_once(void *arg)
{
    struct run_ctx *r = arg;
    return r->m->runner->session_run(r->session);
}

static int serve_measure(struct agent *a, struct rpt_yaml *y)
{
    struct be_backend *be = NULL;
    struct mq_plan *plan = NULL;
    struct mq_workload w;
    struct prof_stats lat = {0};
    uint64_t peak = 0, base = 0;
    double ms = 0;
    get_num(y, rpt_yaml_root(y), "max_seconds", &ms);
    const char *mem = get_str(y, "memory"), *plan_text = get_str(y, "plan");
    int rc = agent_model(a, y);
    if (rc == MQ_OK)
        rc = agent_backend(a->m, y, &be, &w);
    if (rc == MQ_OK)
        rc = mq_runner_check(a->m, &w);
    if (rc == MQ_OK)
        rc = plan_text ? mq_plan_from_string(a->m, plan_text, &plan) : mq_error(MQ_EINVAL, "the request has no plan");
    if (rc == MQ_OK) {
        struct run_ctx r = {.m = a->m};
        rc = a->m->runner->session_new(a->m, plan, be, &w, &r.session);
        if (rc == MQ_OK) {
            rc = prof_measure(run_once, &r, &(struct prof_config){.min_reps = 5, .max_seconds = ms > 0 ? ms : 2.0},
                              &lat);
            a->m->runner->session_free(r.session);
        }
    }
    char why[256];
    if (rc == MQ_OK && mem && !strcmp(mem, "true") && !prof_memory_probe_unusable(why, sizeof(why)))
        rc = prof_memory_probe(a->m->path, a->m->input_shapes, get_str(y, "backend"), be_threads(be), &w, plan, &peak, &base);
    mq_plan_free(plan);
    be_close(be);
    if (rc < 0)
        return reply_error(a, mq_error_last());
    struct buf b = {0};
    bprintf(&b,
            "ok: true\nlatency:\n  reps: %d\n  min_ns: %.17g\n  median_ns: %.17g\n  mad_ns: %.17g\n  mean_ns: %.17g\n"
            "  max_ns: %.17g\n  rel_ci: %.17g\nmemory:\n  peak_rss: %" PRIu64 "\n  baseline_rss: %" PRIu64 "\n",
            lat.reps, lat.min_ns, lat.median_ns, lat.mad_ns, lat.mean_ns, lat.max_ns, lat.rel_ci, peak, base);
    rc = reply(a, &b);
    free(b.p);
    return rc;
}

int cli_agent_serve(int in_fd, int out_fd)
{
    struct agent a = {.out_fd = out_fd};
    prof_cache_default_dir(a.cache_dir, sizeof(a.cache_dir));
    signal(SIGPIPE, SIG_IGN);
    int rc = MQ_OK;
    for (;;) {
        char *text, what[160];
        size_t len;
        int r = frame_recv(in_fd, 0, &text, &len, what, sizeof(what));
        if (r == RECV_EOF)
            break;
        if (r < 0) {
            rc = mq_error(MQ_EIO, "agent: the host %s", what);
            break;
        }
        struct rpt_yaml y;
        mq_error_set_quiet(1); /* errors go back to the host, not to stderr */
        int lr = rpt_yaml_load_string("request", text, len, &y);
        free(text);
        const char *req = lr == MQ_OK ? get_str(&y, "request") : NULL;
        mq_debug("agent: request %s", req ? req : "(unreadable)");
        if (lr < 0) {
            rc = reply_error(&a, mq_error_last());
        } else if (!req) {
            rc = reply_error(&a, "a request without 'request:'");
        } else if (!strcmp(req, "hello")) {
            const char *proto = get_str(&y, "protocol");
            if (proto && strcmp(proto, CLI_AGENT_PROTOCOL)) {
                char msg[256];
                snprintf(msg, sizeof(msg), "the host speaks '%.100s', this agent %s", proto, CLI_AGENT_PROTOCOL);
                rc = reply_error(&a, msg);
            } else {
                rc = serve_hello(&a);
            }
        } else if (!strcmp(req, "profile")) {
            rc = serve_profile(&a, &y);
        } else if (!strcmp(req, "measure")) {
            rc = serve_measure(&a, &y);
        } else if (!strcmp(req, "bye")) {
            struct buf b = {0};
            bprintf(&b, "ok: true\n");
            reply(&a, &b);
            free(b.p);
            rpt_yaml_release(&y);
            mq_error_set_quiet(0);
            break;
        } else {
            char msg[200];
            snprintf(msg, sizeof(msg), "unknown request '%.100s' (hello, profile, measure, bye)", req);
            rc = reply_error(&a, msg);
        }
        mq_error_set_quiet(0);
        if (lr == MQ_OK)
            rpt_yaml_release(&y);
        if (rc < 0) /* the host is gone */
            break;
    }
    mq_model_free(a.m);
    return rc;
}
