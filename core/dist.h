/* core/dist.h - units of work spread over MPI ranks: rank 0 plans, every rank computes.
 *
 *     // main(): before anything else
 *     bool worker;
 *     if (mq_dist_init(&argc, &argv, &worker) < 0) return 1;      // one line printed
 *     if (worker) return mq_dist_serve();                          // ranks 1..N-1
 *     int rc = run_command(...);
 *     mq_dist_finish();                                            // rank 0: workers quit
 *
 *     // rank 0, where a pass has independent units (an evaluation, a chunk of text):
 *     struct mq_dist_map mp = {.job = &my_job, .setup = blob, .setup_bytes = n, .n = units,
 *                              .units = unit_bytes_array, .unit_bytes = k, .local = ctx,
 *                              .result = collect, .arg = state};
 *     if (mq_dist_run(&mp) < 0) return -1;                          // one line printed
 *
 * Model: `mpirun -np N mixq COMMAND ...` (or Slurm's srun) starts N copies. Rank 0 runs
 * the command as a single process would; ranks 1..N-1 run no command: they serve
 * (mq_dist_serve) until rank 0 finishes. Where rank 0 reaches a pass of independent units,
 * mq_dist_run sends every worker the job's kind and setup bytes (what a worker needs to
 * rebuild the pass's state: a model path, a text, a backend), the worker opens the job
 * (job->open) and asks for units; rank 0 hands them out one at a time as ranks finish
 * (dynamic: ranks run at different speeds), computes units itself between handing them
 * out (a dispatcher thread answers the workers), and hands every result to mp->result as
 * it arrives, in any order and one at a time. Without MPI, or with one rank, mq_dist_run
 * runs the units on rank 0's own context in order: one code path.
 *
 * Results are bytes (job->run serializes them); a unit's result must not depend on the
 * rank that computed it, so that N ranks give what one gives, bit for bit.
 *
 * Errors: a worker's failing unit (or open) stops the pass; rank 0 prints the worker's
 * error line once, prefixed with its rank ("mixq: error: rank 2: ..."), and returns its
 * status. Worker ranks print only their log lines, named "mixq[rank N]". A rank that dies
 * (killed, out of memory): mpirun stops the others; rank 0 then prints one line naming the
 * rank that ended (where it ran on rank 0's machine; otherwise that a rank ended) before
 * it exits. What mp->result received before stays where it put it (the callers store
 * results in the cache as they arrive, so that a rerun resumes).
 *
 * Threads per rank: mq_dist_local_ranks says how many ranks share this machine, so that
 * each rank's default thread count is its share of the cores.
 *
 * Two builds of this file. mixq itself never loads MPI (its libraries cost every run about
 * 1 MiB of RSS): started by a launcher with several ranks, mq_dist_init execs the MPI twin
 * beside it (mixq-mpi, or $MIXQ_MPI_EXE: the same program with this file compiled against
 * MPI, MQ_WITH_MPI, which the Makefile builds where its probe finds MPI), keeping its pid,
 * arguments and environment. Without a twin, mixq refuses in one line (printed by rank 0).
 *
 * Ownership: jobs are static tables (mq_dist_register keeps the pointer); setup, units
 * and the local context are borrowed for the call.
 *
 * Dependency rule: core/ depends on nothing but libc (and MPI, where built with it).
 */
#ifndef MQ_CORE_DIST_H
#define MQ_CORE_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mq_dist_job {
    const char *kind; /* unique name, at most 31 bytes ("quality", "imatrix") */
    /* Worker side: the job's state from rank 0's setup bytes. Errors: one line (sent to
     * rank 0, which prints it). */
    int (*open)(const void *setup, size_t setup_bytes, void **ctx);
    /* Unit `index` (its `unit` bytes) on ctx: the result in *out (malloc'd, *out_bytes;
     * the caller frees it). Any rank, rank 0's own context included. */
    int (*run)(void *ctx, int64_t index, const void *unit, size_t unit_bytes, void **out,
               size_t *out_bytes);
    void (*close)(void *ctx); /* what open made */
};

/* Makes a job known to worker ranks (call in every rank before mq_dist_init's caller
 * serves; at most 16 jobs). */
int mq_dist_register(const struct mq_dist_job *job);

/* Starts MPI where this process was started by an MPI launcher (Open MPI's mpirun, PMI or
 * PMIx: Slurm's srun) and *worker = rank > 0. Not under a launcher, or one rank: a single
 * process, *worker false. mixq (no MPI) under a launcher with several ranks execs its MPI
 * twin; without one: MQ_EUNSUPPORTED, the line printed by rank 0 only. */
int mq_dist_init(int *argc, char ***argv, bool *worker);
int mq_dist_rank(void);        /* 0 in a single process */
int mq_dist_size(void);        /* 1 in a single process */
int mq_dist_local_ranks(void); /* ranks on this machine (1 in a single process) */
bool mq_dist_built(void);      /* this build is the MPI one */

/* The path a worker opens for rank 0's `path`: $env where it is set and not empty on this
 * rank's machine (MIXQ_MODEL_PATH: the model is elsewhere here), else path itself. */
const char *mq_dist_path(const char *env, const char *path);

/* Worker ranks: serves rank 0's passes until it finishes; the process's exit status. */
int mq_dist_serve(void);
/* Rank 0 (a no-op elsewhere and in a single process): tells the workers to quit and ends
 * MPI. Call once, at the end of main. */
void mq_dist_finish(void);

struct mq_dist_map {
    const struct mq_dist_job *job;
    const void *setup; /* what workers open the job with */
    size_t setup_bytes;
    int64_t n;         /* units */
    const void *units; /* n x unit_bytes (NULL with unit_bytes 0: the index is the unit) */
    size_t unit_bytes;
    void *local; /* rank 0's own context for job->run */
    /* Unit i's result; one call at a time, on any thread, in any order. An error stops the
     * pass (the callback prints its line). */
    int (*result)(void *arg, int64_t i, const void *bytes, size_t n_bytes);
    void *arg;
    /* Units handed out at most this far past the first unfinished one (0: no limit): bounds
     * what results waiting for their turn hold, where the caller adds them in order. */
    int64_t window;
    const char *what;     /* for messages ("sensitivity evaluations") */
    double *unit_seconds; /* NULL, or [n]: each unit's run time on the rank that ran it */
};

/* Runs mp's units over every rank (see above). Errors: one line. */
int mq_dist_run(const struct mq_dist_map *mp);

/* The wall time units of these run times take on `ranks` ranks handed out as mq_dist_run
 * hands them (in order, each to the first rank free), with nothing else costing time: the
 * speed-up a run on more ranks (one per machine) can expect is sum / makespan. */
double mq_dist_makespan(const double *unit_seconds, int64_t n, int ranks);

/* One line on a pass: its units, wall time and ranks, the units' summed run time, and the
 * speed-ups the unit times predict on 2 and 4 ranks (info where several ranks ran, debug
 * for a single process). */
void mq_dist_report(const char *what, const double *unit_seconds, int64_t n, double wall_seconds);

#endif
