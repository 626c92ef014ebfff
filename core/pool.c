/* core/pool.c - fork-join pool: generation counter, short spin, then condition variable. */
#include "core/pool.h"

#include "core/dist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/status.h"

#define POOL_SPIN_ITERS 20000

struct mq_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* helpers wait here for a new generation */
    pthread_cond_t cv_done; /* the caller waits here for pending == 0 */
    atomic_uint generation;
    atomic_int pending;
    atomic_bool stop;
    mq_pool_fn fn;
    void *arg;
    int *tids;           /* [n_threads]: Linux thread ids, 0 until a worker has started */
    atomic_int started;  /* workers that have written their id */
};

struct pool_worker_arg {
    struct mq_pool *pool;
    int ith;
};

static void *pool_worker(void *p)
{
    struct pool_worker_arg wa = *(struct pool_worker_arg *)p;
    free(p);
    struct mq_pool *pool = wa.pool;
    pool->tids[wa.ith] = (int)syscall(SYS_gettid);
    atomic_fetch_add(&pool->started, 1);
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load(&pool->stop) && spins < POOL_SPIN_ITERS)
            spins++;
        if (gen == seen && !atomic_load(&pool->stop)) {
            pthread_mutex_lock(&pool->mu);
            while ((gen = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv_work, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop))
            return NULL;
        seen = gen;
        pool->fn(pool->arg, wa.ith, pool->n_threads);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

int mq_pool_new(int n_threads, struct mq_pool **out)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return mq_error(MQ_EINVAL, "thread count %d is out of range 1..1024", n_threads);
    struct mq_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return mq_error(MQ_ENOMEM, "cannot allocate a thread pool");
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_work, NULL);
    pthread_cond_init(&pool->cv_done, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof(*pool->threads));
    pool->tids = calloc((size_t)n_threads, sizeof(*pool->tids));
    if (!pool->threads || !pool->tids) {
        mq_pool_free(pool);
        return mq_error(MQ_ENOMEM, "cannot allocate a thread pool");
    }
    for (int i = 1; i < n_threads; i++) {
        struct pool_worker_arg *wa = malloc(sizeof(*wa));
        if (wa) {
            wa->pool = pool;
            wa->ith = i;
        }
        int rc = wa ? pthread_create(&pool->threads[i], NULL, pool_worker, wa) : -1;
        if (rc != 0) {
            free(wa);
            pool->n_threads = i; /* join only the ones started */
            mq_pool_free(pool);
            return mq_error(MQ_ENOMEM, "cannot start pool thread %d: %s", i,
                            rc > 0 ? strerror(rc) : "out of memory");
        }
    }
    pool->tids[0] = (int)syscall(SYS_gettid);
    while (atomic_load(&pool->started) < n_threads - 1)
        sched_yield();
    *out = pool;
    return MQ_OK;
}

int mq_pool_tids(const struct mq_pool *pool, int *tids, int n)
{
    int k = pool ? pool->n_threads : 0;
    k = k < n ? k : n;
    for (int i = 0; i < k; i++)
        tids[i] = pool->tids[i];
    return k;
}

void mq_pool_free(struct mq_pool *pool)
{
    if (!pool)
        return;
    if (pool->threads) {
        pthread_mutex_lock(&pool->mu);
        atomic_store(&pool->stop, true);
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
        for (int i = 1; i < pool->n_threads; i++)
            pthread_join(pool->threads[i], NULL);
    }
    pthread_cond_destroy(&pool->cv_work);
    pthread_cond_destroy(&pool->cv_done);
    pthread_mutex_destroy(&pool->mu);
    free(pool->threads);
    free(pool->tids);
    free(pool);
}

int mq_pool_threads(const struct mq_pool *pool) { return pool ? pool->n_threads : 1; }

void mq_pool_run(struct mq_pool *pool, mq_pool_fn fn, void *arg)
{
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store(&pool->pending, pool->n_threads - 1);
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);

    fn(arg, 0, pool->n_threads);

    int spins = 0;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0 && spins < POOL_SPIN_ITERS)
        spins++;
    if (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&pool->mu);
        while (atomic_load(&pool->pending) > 0)
            pthread_cond_wait(&pool->cv_done, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
    }
}

int mq_pool_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    n /= mq_dist_local_ranks(); /* MPI ranks sharing this machine share its cores */
    return n > 0 ? (int)(n > 1024 ? 1024 : n) : 1;
}
