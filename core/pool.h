/* core/pool.h - a small fork-join thread pool.
 *
 *     struct mq_pool *pool;
 *     if (mq_pool_new(4, &pool) < 0) ...
 *     mq_pool_run(pool, work, &args);     // work(&args, ith, nth) on 4 threads, caller is ith 0
 *     mq_pool_free(pool);
 *
 * The calling thread is worker 0 and takes part in every run; n_threads - 1 helper
 * threads wait between runs (spinning briefly, then sleeping on a condition variable),
 * so a run costs microseconds, not a thread creation. mq_pool_run returns after every
 * worker has returned from fn: it is a full barrier, and writes made by the workers are
 * visible to the caller afterwards. Runs must not be nested, and one pool serves one
 * calling thread at a time.
 *
 * Dependency rule: core/ depends on nothing but libc and pthreads.
 */
#ifndef MQ_CORE_POOL_H
#define MQ_CORE_POOL_H

#include <stdint.h>

struct mq_pool;

typedef void (*mq_pool_fn)(void *arg, int ith, int nth);

/* Starts n_threads - 1 helper threads (1 <= n_threads <= 1024). The caller frees the
 * pool with mq_pool_free. */
int mq_pool_new(int n_threads, struct mq_pool **out);

/* Stops and joins the helpers. NULL is a no-op. */
void mq_pool_free(struct mq_pool *pool);

int mq_pool_threads(const struct mq_pool *pool);

/* Runs fn(arg, ith, nth) once on each of the pool's nth threads; returns when all have
 * finished. A NULL pool runs fn(arg, 0, 1) on the caller. */
void mq_pool_run(struct mq_pool *pool, mq_pool_fn fn, void *arg);

/* The share [*lo, *hi) of n items that thread ith of nth takes: contiguous, sizes
 * differing by at most one, in thread order. */
static inline void mq_pool_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi)
{
    int64_t base = n / nth, rem = n % nth;
    *lo = ith * base + (ith < rem ? ith : rem);
    *hi = *lo + base + (ith < rem ? 1 : 0);
}

/* Linux thread ids of the pool's threads, caller (worker 0) first, into tids[0..n):
 * returns the count written (min(n, threads)). Worker 0's id is the thread that created
 * the pool. For pinning and per-thread counters (the profiler). */
int mq_pool_tids(const struct mq_pool *pool, int *tids, int n);

/* Physical cores of this machine as sysconf sees them (online CPUs), divided among the
 * MPI ranks running on it (core/dist.h); at least 1. The profiler refines this with hwloc. */
int mq_pool_default_threads(void);

#endif
