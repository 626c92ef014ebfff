/* core/dist.c - units of work over MPI ranks (dist.h). Built with MPI where MQ_WITH_MPI. */
#include "core/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/status.h"

#ifdef MQ_WITH_MPI
#include <mpi.h>
#endif

#define DIST_MAX_JOBS 16
#define DIST_KIND_BYTES 32
#define DIST_MSG_BYTES 1024
#define DIST_HOST_BYTES 64

static const struct mq_dist_job *jobs[DIST_MAX_JOBS];
static int n_jobs;
static int dist_rank, dist_size = 1, dist_local = 1;

int mq_dist_register(const struct mq_dist_job *job)
{
    for (int i = 0; i < n_jobs; i++)
        if (jobs[i] == job)
            return MQ_OK;
    if (n_jobs == DIST_MAX_JOBS || strlen(job->kind) >= DIST_KIND_BYTES)
        return mq_error(MQ_EINTERNAL, "cannot register distributed job '%s'", job->kind);
    jobs[n_jobs++] = job;
    return MQ_OK;
}

const char *mq_dist_path(const char *env, const char *path)
{
    const char *v = getenv(env);
    return v && v[0] ? v : path;
}

int mq_dist_rank(void)
{
    return dist_rank;
}
int mq_dist_size(void)
{
    return dist_size;
}
int mq_dist_local_ranks(void)
{
    return dist_local;
}

/* What the launcher's environment says: ranks and this one's rank (0 and 1: none).
 * Open MPI's mpirun, PMI (MPICH, Slurm's srun --mpi=pmi2) and PMIx (srun --mpi=pmix). */
static void launcher_env(int *size, int *rank)
{
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};
    static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", NULL};
    *size = 1;
    *rank = 0;
    for (int i = 0; sizes[i]; i++) {
        const char *s = getenv(sizes[i]);
        if (s && atoi(s) > 0) {
            *size = atoi(s);
            break;
        }
    }
    if (*size == 1 && getenv("PMIX_RANK") && getenv("SLURM_NTASKS")) /* PMIx under srun */
        *size = atoi(getenv("SLURM_NTASKS")) > 0 ? atoi(getenv("SLURM_NTASKS")) : 1;
    for (int i = 0; ranks[i]; i++) {
        const char *s = getenv(ranks[i]);
        if (s) {
            *rank = atoi(s);
            break;
        }
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double mq_dist_makespan(const double *unit_seconds, int64_t n, int ranks)
{
    if (ranks < 1 || n <= 0)
        return 0;
    double *free_at = calloc((size_t)ranks, sizeof(double)), end = 0;
    if (!free_at)
        return NAN;
    for (int64_t i = 0; i < n; i++) {
        int r = 0;
        for (int k = 1; k < ranks; k++)
            if (free_at[k] < free_at[r])
                r = k;
        free_at[r] += unit_seconds[i];
        if (free_at[r] > end)
            end = free_at[r];
    }
    free(free_at);
    return end;
}

void mq_dist_report(const char *what, const double *unit_seconds, int64_t n, double wall_seconds)
{
    if (n <= 0)
        return;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += unit_seconds[i];
    double m2 = mq_dist_makespan(unit_seconds, n, 2), m4 = mq_dist_makespan(unit_seconds, n, 4);
    mq_log(dist_size > 1 ? MQ_LOG_INFO : MQ_LOG_DEBUG,
           "%s: %lld in %.2f s on %d rank%s, %.2f s of units (%.2fx); the unit times predict %.2fx "
           "on 2 ranks and "
           "%.2fx on 4",
           what, (long long)n, wall_seconds, dist_size, dist_size > 1 ? "s" : "", sum,
           wall_seconds > 0 ? sum / wall_seconds : 0, m2 > 0 ? sum / m2 : 0, m4 > 0 ? sum / m4 : 0);
}

/* Unit i on rank 0's own context, timed. */
static int run_own(const struct mq_dist_map *mp, int64_t i, void **out, size_t *n)
{
    double t0 = now_s();
    int rc = mp->job->run(
        mp->local, i, mp->unit_bytes ? (const char *)mp->units + (size_t)i * mp->unit_bytes : NULL,
        mp->unit_bytes, out, n);
    if (mp->unit_seconds)
        mp->unit_seconds[i] = now_s() - t0;
    return rc;
}

/* One process: the units in order, on rank 0's own context. */
static int run_local(const struct mq_dist_map *mp)
{
    for (int64_t i = 0; i < mp->n; i++) {
        void *out = NULL;
        size_t n = 0;
        int rc = run_own(mp, i, &out, &n);
        if (rc == MQ_OK)
            rc = mp->result(mp->arg, i, out, n);
        free(out);
        if (rc < 0)
            return rc;
    }
    return MQ_OK;
}

static int check_map(const struct mq_dist_map *mp)
{
    if (mp->n < 0 || (mp->unit_bytes && !mp->units) || !mp->job || !mp->result)
        return mq_error(MQ_EINVAL, "a distributed pass of %lld units", (long long)mp->n);
    return MQ_OK;
}

#ifndef MQ_WITH_MPI

bool mq_dist_built(void)
{
    return false;
}

/* The MPI twin of this executable: $MIXQ_MPI_EXE, else mixq-mpi beside it ("" if none). */
static void mpi_twin(char *path, size_t size)
{
    const char *env = getenv("MIXQ_MPI_EXE");
    path[0] = 0;
    if (env && env[0]) {
        snprintf(path, size, "%s", env);
        return;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) {
        slash[1] = 0;
        snprintf(path, size, "%smixq-mpi", self);
    }
}

int mq_dist_init(int *argc, char ***argv, bool *worker)
{
    *worker = false;
    int size, rank;
    launcher_env(&size, &rank);
    if (size <= 1)
        return MQ_OK;
    /* several ranks: this process becomes the MPI build (same pid, arguments and
     * environment, as mpirun started it); mixq itself never loads MPI */
    char twin[4200];
    mpi_twin(twin, sizeof(twin));
    if (twin[0] && access(twin, X_OK) == 0)
        execv(twin, *argv);
    if (rank != 0)
        mq_error_set_quiet(1); /* the line once, from rank 0 */
    int rc = mq_error(MQ_EUNSUPPORTED,
                      "started by an MPI launcher with %d ranks, but this mixq was built without "
                      "MPI (no %s): rebuild it with MPI (apt-get install libopenmpi-dev; make "
                      "WITH_MPI=yes), or run one process",
                      size, twin[0] ? twin : "mixq-mpi");
    (void)argc;
    mq_error_set_quiet(0);
    return rc;
}

int mq_dist_serve(void)
{
    return 0;
}
void mq_dist_finish(void) {}

int mq_dist_run(const struct mq_dist_map *mp)
{
    int rc = check_map(mp);
    return rc < 0 ? rc : run_local(mp);
}

#else /* MQ_WITH_MPI */

bool mq_dist_built(void)
{
    return true;
}

enum { TAG_SETUP = 1, TAG_READY, TAG_UNIT, TAG_RESULT, TAG_DONE, TAG_QUIT };

/* A worker's answer to a setup, and the header of a unit's result. */
struct dist_status {
    int64_t index; /* the unit (-1: the setup) */
    int32_t rc;
    int32_t pad;
    double seconds;           /* the unit's run on the worker */
    char msg[DIST_MSG_BYTES]; /* the error line where rc < 0 */
};

struct dist_peer {
    int32_t pid;
    char host[DIST_HOST_BYTES];
};

static bool mpi_on;
static struct dist_peer *peers; /* rank 0: every rank's process, for naming one that died */

static int mpi_fail(int err, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(err, s, &n);
    return mq_error(MQ_EIO, "MPI: %s failed: %s", what, s);
}

/* Whether process pid of this machine has ended (gone, or a zombie not reaped yet).
 * Async-signal-safe: open, read and close only. */
static bool pid_ended(int pid)
{
    char path[48], buf[128];
    /* "/proc/<pid>/stat" by hand: snprintf is not async-signal-safe */
    char digits[16];
    int nd = 0;
    for (int v = pid; v > 0 && nd < 15; v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    int k = 0;
    for (const char *p = "/proc/"; *p; p++)
        path[k++] = *p;
    while (nd > 0)
        path[k++] = digits[--nd];
    for (const char *p = "/stat"; *p; p++)
        path[k++] = *p;
    path[k] = 0;
    int fd = open(path, 0);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = 0;
    const char *rp = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* Rank 0: mpirun stops every rank (SIGTERM) when one ends. One line naming the rank that
 * ended where it ran on this machine, then exit. */
static void on_term(int sig)
{
    char host[DIST_HOST_BYTES] = "";
    gethostname(host, sizeof(host) - 1);
    int dead = -1;
    for (int r = 1; peers && r < dist_size && dead < 0; r++)
        if (!strcmp(peers[r].host, host) && pid_ended(peers[r].pid))
            dead = r;
    char line[512];
    int n;
    if (dead > 0)
        n = snprintf(line, sizeof(line),
                     "%s: error: rank %d (pid %d) ended before the run did, and mpirun stopped "
                     "the other ranks; what was measured is in the cache: run the same command "
                     "again to resume\n",
                     mq_log_name(), dead, (int)peers[dead].pid);
    else
        n = snprintf(line, sizeof(line),
                     "%s: error: stopped by mpirun (signal %d): a rank on another machine "
                     "ended, or the run was interrupted; what was measured is in the cache: run "
                     "the same command again to resume\n",
                     mq_log_name(), sig);
    if (n > 0)
        (void)!write(2, line, (size_t)(n < (int)sizeof(line) ? n : (int)sizeof(line) - 1));
    _exit(1);
}

int mq_dist_init(int *argc, char ***argv, bool *worker)
{
    *worker = false;
    int size, rank;
    launcher_env(&size, &rank);
    if (size <= 1)
        return MQ_OK; /* not under a launcher (or one rank): a single process, no MPI */
    int provided, err;
    if ((err = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided)) != MPI_SUCCESS)
        return mpi_fail(err, "MPI_Init_thread");
    mpi_on = true;
    /* the programs a rank starts (mixq's own memory probe) are single processes */
    static const char *const launched[] = {"OMPI_COMM_WORLD_SIZE",
                                           "PMI_SIZE",
                                           "PMIX_SIZE",
                                           "OMPI_COMM_WORLD_RANK",
                                           "PMI_RANK",
                                           "PMIX_RANK",
                                           NULL};
    for (int i = 0; launched[i]; i++)
        unsetenv(launched[i]);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_size);
    if (provided < MPI_THREAD_SERIALIZED) {
        if (dist_rank)
            mq_error_set_quiet(1);
        int rc = mq_error(MQ_EUNSUPPORTED,
                          "MPI: this MPI library offers thread level %d, mixq needs "
                          "MPI_THREAD_SERIALIZED (%d)",
                          provided, MPI_THREAD_SERIALIZED);
        MPI_Finalize();
        mpi_on = false;
        return rc;
    }
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_size(local, &dist_local);
        MPI_Comm_free(&local);
    }
    struct dist_peer me = {.pid = (int32_t)getpid()};
    gethostname(me.host, sizeof(me.host) - 1);
    if (dist_rank == 0 && !(peers = calloc((size_t)dist_size, sizeof(*peers))))
        return mq_error(MQ_ENOMEM, "cannot allocate %d ranks", dist_size);
    MPI_Gather(&me, (int)sizeof(me), MPI_BYTE, peers, (int)sizeof(me), MPI_BYTE, 0, MPI_COMM_WORLD);
    if (dist_rank > 0) {
        char name[48];
        snprintf(name, sizeof(name), "mixq[rank %d]", dist_rank);
        mq_log_set_name(name);
        *worker = true;
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
    }
    return MQ_OK;
}

static int send_to(int rank, int tag, const void *a, size_t na, const void *b, size_t nb)
{
    if (na + nb > (size_t)INT32_MAX)
        return mq_error(MQ_ERANGE, "MPI: a message of %zu bytes is over the 2 GB MPI sends",
                        na + nb);
    char *buf = malloc(na + nb + 1);
    if (!buf)
        return mq_error(MQ_ENOMEM, "cannot allocate a message of %zu bytes", na + nb);
    if (na)
        memcpy(buf, a, na);
    if (nb)
        memcpy(buf + na, b, nb);
    int err = MPI_Send(buf, (int)(na + nb), MPI_BYTE, rank, tag, MPI_COMM_WORLD);
    free(buf);
    return err == MPI_SUCCESS ? MQ_OK : mpi_fail(err, "MPI_Send");
}

/* Receives the message probed in *st into a malloc'd buffer. */
static int recv_probed(MPI_Status *st, char **buf, size_t *n)
{
    int count = 0;
    MPI_Get_count(st, MPI_BYTE, &count);
    *n = (size_t)(count > 0 ? count : 0);
    if (!(*buf = malloc(*n + 1)))
        return mq_error(MQ_ENOMEM, "cannot allocate a message of %zu bytes", *n);
    int err = MPI_Recv(*buf, count, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, MPI_COMM_WORLD,
                       MPI_STATUS_IGNORE);
    return err == MPI_SUCCESS ? MQ_OK : mpi_fail(err, "MPI_Recv");
}

static const struct mq_dist_job *find_job(const char *kind)
{
    for (int i = 0; i < n_jobs; i++)
        if (!strncmp(jobs[i]->kind, kind, DIST_KIND_BYTES))
            return jobs[i];
    return NULL;
}

int mq_dist_serve(void)
{
    const struct mq_dist_job *job = NULL;
    void *ctx = NULL;
    int status = 0;
    for (;;) {
        MPI_Status st;
        char *buf;
        size_t n;
        /* polled, not MPI_Probe: Open MPI's blocking calls spin on a core, and an idle worker
         * would take it from rank 0's profile and validation timings */
        int flag = 0, err;
        while ((err = MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st)) == MPI_SUCCESS &&
               !flag)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        if (err != MPI_SUCCESS || recv_probed(&st, &buf, &n) < 0) {
            if (err != MPI_SUCCESS)
                mpi_fail(err, "MPI_Iprobe");
            status = 1;
            break;
        }
        if (st.MPI_TAG == TAG_QUIT) {
            free(buf);
            break;
        }
        struct dist_status s = {.index = -1};
        if (st.MPI_TAG == TAG_SETUP) {
            if (ctx)
                job->close(ctx);
            ctx = NULL;
            char kind[DIST_KIND_BYTES + 1] = "";
            memcpy(kind, buf, n < DIST_KIND_BYTES ? n : DIST_KIND_BYTES);
            mq_error_set_quiet(1); /* the line goes to rank 0, which prints it */
            if (!(job = find_job(kind)))
                s.rc = mq_error(MQ_EINTERNAL, "no distributed job '%s' in this mixq", kind);
            else if (n < DIST_KIND_BYTES)
                s.rc = mq_error(MQ_EINTERNAL, "a setup message of %zu bytes", n);
            else
                s.rc = job->open(buf + DIST_KIND_BYTES, n - DIST_KIND_BYTES, &ctx);
            mq_error_set_quiet(0);
            if (s.rc < 0) {
                snprintf(s.msg, sizeof(s.msg), "%s", mq_error_last());
                ctx = NULL;
            }
            free(buf);
            if (send_to(0, TAG_READY, &s, sizeof(s), NULL, 0) < 0) {
                status = 1;
                break;
            }
            continue;
        }
        if (st.MPI_TAG == TAG_DONE) {
            free(buf);
            if (ctx)
                job->close(ctx);
            ctx = NULL;
            continue;
        }
        /* TAG_UNIT: [int64 index][unit bytes] */
        void *out = NULL;
        size_t out_n = 0;
        memcpy(&s.index, buf, sizeof(s.index));
        mq_error_set_quiet(1);
        double t0 = now_s();
        s.rc =
            ctx ? job->run(ctx, s.index, buf + sizeof(int64_t), n - sizeof(int64_t), &out, &out_n)
                : mq_error(MQ_EINTERNAL, "a unit before its job was opened");
        s.seconds = now_s() - t0;
        mq_error_set_quiet(0);
        free(buf);
        if (s.rc < 0) {
            snprintf(s.msg, sizeof(s.msg), "%s", mq_error_last());
            free(out);
            out = NULL;
            out_n = 0;
        }
        int rc = send_to(0, TAG_RESULT, &s, sizeof(s), out, out_n);
        free(out);
        if (rc < 0) {
            status = 1;
            break;
        }
    }
    if (ctx)
        job->close(ctx);
    MPI_Finalize();
    return status;
}

void mq_dist_finish(void)
{
    if (!mpi_on)
        return;
    if (dist_rank == 0)
        for (int r = 1; r < dist_size; r++)
            send_to(r, TAG_QUIT, NULL, 0, NULL, 0);
    signal(SIGTERM, SIG_DFL);
    MPI_Finalize();
    mpi_on = false;
    free(peers);
    peers = NULL;
}

/* ---- rank 0: one pass ---- */

struct dist_run {
    const struct mq_dist_map *mp;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t next;                  /* the next unit to hand out */
    int64_t first_open;            /* the first unit without a result */
    uint8_t *done;                 /* [n] */
    uint8_t *waiting;              /* [ranks]: held back by the window (the dispatcher's) */
    int rc;                        /* the first error */
    char msg[DIST_MSG_BYTES + 32]; /* a worker's error line, printed by rank 0 (empty: printed) */
};

/* Under mu: a unit may be handed out. */
static bool may_hand_out(const struct dist_run *d)
{
    const struct mq_dist_map *mp = d->mp;
    return d->rc == MQ_OK && d->next < mp->n &&
           (mp->window <= 0 || d->next < d->first_open + mp->window);
}

/* Under mu: unit i's result is in. */
static void finished(struct dist_run *d, int64_t i)
{
    d->done[i] = 1;
    while (d->first_open < d->mp->n && d->done[d->first_open])
        d->first_open++;
    pthread_cond_broadcast(&d->cv);
}

static void fail_locked(struct dist_run *d, int rc, int rank, const char *msg)
{
    if (d->rc == MQ_OK) {
        d->rc = rc;
        if (rank > 0)
            snprintf(d->msg, sizeof(d->msg), "rank %d: %s", rank, msg);
    }
    pthread_cond_broadcast(&d->cv);
}

/* Hands worker r its next unit, or ends its pass; *waiting[r] where the window holds it
 * back. Returns false where the worker is done with this pass. */
static bool hand_out(struct dist_run *d, int r, uint8_t *waiting)
{
    const struct mq_dist_map *mp = d->mp;
    pthread_mutex_lock(&d->mu);
    if (d->rc == MQ_OK && d->next < mp->n && !may_hand_out(d)) {
        waiting[r] = 1;
        pthread_mutex_unlock(&d->mu);
        return true;
    }
    int64_t i = may_hand_out(d) ? d->next++ : -1;
    pthread_mutex_unlock(&d->mu);
    waiting[r] = 0;
    int rc = i < 0 ? send_to(r, TAG_DONE, NULL, 0, NULL, 0)
                   : send_to(r, TAG_UNIT, &i, sizeof(i),
                             mp->unit_bytes ? (const char *)mp->units + (size_t)i * mp->unit_bytes
                                            : NULL,
                             mp->unit_bytes);
    if (rc < 0) {
        pthread_mutex_lock(&d->mu);
        fail_locked(d, rc, 0, "");
        pthread_mutex_unlock(&d->mu);
        return false;
    }
    return i >= 0;
}

/* The dispatcher: answers workers until every one has ended its pass. */
static void *dispatch(void *arg)
{
    struct dist_run *d = arg;
    const struct mq_dist_map *mp = d->mp;
    int active = dist_size - 1;
    uint8_t *waiting = d->waiting;
    while (active > 0) {
        int flag = 0;
        MPI_Status st;
        int err = MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (err != MPI_SUCCESS) {
            pthread_mutex_lock(&d->mu);
            fail_locked(d, mpi_fail(err, "MPI_Iprobe"), 0, "");
            pthread_mutex_unlock(&d->mu);
            break;
        }
        if (!flag) {
            bool served = false;
            for (int r = 1; r < dist_size; r++)
                if (waiting[r]) {
                    pthread_mutex_lock(&d->mu);
                    bool go = may_hand_out(d) || d->rc != MQ_OK || d->next >= mp->n;
                    pthread_mutex_unlock(&d->mu);
                    if (go) {
                        served = true;
                        if (!hand_out(d, r, waiting))
                            active--;
                    }
                }
            if (!served)
                nanosleep(&(struct timespec){0, 100000}, NULL);
            continue;
        }
        char *buf;
        size_t n;
        int r = st.MPI_SOURCE;
        if (recv_probed(&st, &buf, &n) < 0) {
            pthread_mutex_lock(&d->mu);
            fail_locked(d, MQ_EIO, 0, "");
            pthread_mutex_unlock(&d->mu);
            break;
        }
        struct dist_status s;
        if (n < sizeof(s)) {
            free(buf);
            pthread_mutex_lock(&d->mu);
            fail_locked(
                d, mq_error(MQ_EINTERNAL, "MPI: a short message (%zu bytes) from rank %d", n, r), 0,
                "");
            pthread_mutex_unlock(&d->mu);
            break;
        }
        memcpy(&s, buf, sizeof(s));
        s.msg[sizeof(s.msg) - 1] = 0;
        pthread_mutex_lock(&d->mu);
        if (s.rc < 0) {
            fail_locked(d, s.rc, r, s.msg);
        } else if (st.MPI_TAG == TAG_RESULT && s.index >= 0 && s.index < mp->n &&
                   !d->done[s.index]) {
            int rc = mp->result(mp->arg, s.index, buf + sizeof(s), n - sizeof(s));
            if (rc < 0)
                fail_locked(d, rc, 0, "");
            if (mp->unit_seconds)
                mp->unit_seconds[s.index] = s.seconds;
            finished(d, s.index);
        }
        pthread_mutex_unlock(&d->mu);
        free(buf);
        if (st.MPI_TAG == TAG_READY && s.rc < 0) {
            send_to(r, TAG_DONE, NULL, 0, NULL, 0); /* it opened nothing: the pass ends for it */
            active--;
            continue;
        }
        if (!hand_out(d, r, waiting))
            active--;
    }
    return NULL;
}

int mq_dist_run(const struct mq_dist_map *mp)
{
    int rc = check_map(mp);
    if (rc < 0)
        return rc;
    if (!mpi_on || dist_size < 2 || dist_rank != 0 || mp->n == 0)
        return run_local(mp); /* (no units: the workers need not open anything) */
    struct dist_run d = {.mp = mp, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    d.done = calloc((size_t)mp->n + 1, 1);
    d.waiting = calloc((size_t)dist_size, 1);
    if (!d.done || !d.waiting) {
        free(d.done);
        free(d.waiting);
        return mq_error(MQ_ENOMEM, "cannot allocate %lld units", (long long)mp->n);
    }
    char kind[DIST_KIND_BYTES] = "";
    snprintf(kind, sizeof(kind), "%s", mp->job->kind);
    mq_debug("%s: %lld units over %d ranks", mp->what ? mp->what : mp->job->kind, (long long)mp->n,
             dist_size);
    for (int r = 1; r < dist_size && rc == MQ_OK; r++)
        rc = send_to(r, TAG_SETUP, kind, sizeof(kind), mp->setup, mp->setup_bytes);
    if (rc < 0) { /* MPI itself failed: nothing more can be said to the workers */
        free(d.done);
        free(d.waiting);
        return rc;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, dispatch, &d) != 0) {
        free(d.done);
        free(d.waiting);
        return mq_error(MQ_EINTERNAL, "cannot start the MPI dispatcher thread");
    }
    for (;;) { /* rank 0's own share */
        pthread_mutex_lock(&d.mu);
        while (d.rc == MQ_OK && d.next < mp->n && !may_hand_out(&d))
            pthread_cond_wait(&d.cv, &d.mu);
        if (!may_hand_out(&d)) {
            pthread_mutex_unlock(&d.mu);
            break;
        }
        int64_t i = d.next++;
        pthread_mutex_unlock(&d.mu);
        void *out = NULL;
        size_t n = 0;
        int urc = run_own(mp, i, &out, &n); /* its own slot of unit_seconds: no lock needed */
        pthread_mutex_lock(&d.mu);
        if (urc == MQ_OK && d.rc == MQ_OK)
            urc = mp->result(mp->arg, i, out, n);
        if (urc < 0)
            fail_locked(&d, urc, 0, "");
        finished(&d, i);
        pthread_mutex_unlock(&d.mu);
        free(out);
    }
    pthread_join(th, NULL);
    if (d.rc < 0 && d.msg[0])
        mq_error(d.rc, "%s", d.msg);
    rc = d.rc;
    free(d.done);
    free(d.waiting);
    return rc;
}

#endif /* MQ_WITH_MPI */
