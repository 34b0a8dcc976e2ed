/*
 * pool.c - a fixed set of worker threads with a FIFO job queue, handing
 * finished jobs back to the loop thread through one uv_async_t.
 *
 * Design
 * ------
 * Why not uv_queue_work: libuv's thread pool is process-wide, sized once from
 * UV_THREADPOOL_SIZE (4 by default) when it is first used, and shared with
 * file-system requests and getaddrinfo. A burst of vocabulary scans would
 * queue in front of those, and the daemon could not size it from its own
 * `workers` setting after start-up. It also cannot be drained on purpose: at
 * shutdown we want "every job already accepted runs, then the threads go
 * away", and then uv_loop_close to succeed. A private pool costs about a
 * hundred lines and gives exactly that.
 *
 * Threads and ownership:
 *   - The loop thread calls every public function. It owns `pending` and
 *     `closed`, and every job between submit and work, and again from the
 *     moment its done callback starts.
 *   - Workers own a job only while its work (or batch) function runs.
 *   - `mu` protects the two lists (`queue`: submitted, not started; `done`:
 *     worked, not delivered), the counts `queued` and `idle`, and
 *     `stopping`. It is the only lock, is never held while running a
 *     callback, and nothing else is taken under it, so there is no lock
 *     order to get wrong.
 *   - A worker pushes a finished job onto `done` under mu and then calls
 *     uv_async_send (libuv's one thread-safe call). libuv may fold several
 *     sends into one callback, so the callback drains the whole list. The
 *     mutex also gives the memory ordering the store's snapshot contract
 *     needs: the loop thread's writes before submit happen-before work (or
 *     batch), and their writes happen-before done, for every job of a batch.
 *   - Worker threads block every signal, so SIGINT/SIGTERM always reach the
 *     loop thread's libuv signal handling.
 *
 * Batches: a worker that finds a job with a batch function at the head of
 * the queue also takes the jobs right behind it that share that function,
 * and runs them with one call. It takes at most AKV_POOL_BATCH_MAX, and at
 * most its fair share, ceil(queued / (idle + 1)), where `idle` counts the
 * other workers that are not running a job: waiting (including those a
 * submission has signalled but that have not woken yet), or not even
 * started, since a thread that pthread_create has not scheduled yet will
 * take work as soon as it runs. So a burst queued while every worker sleeps
 * is spread over all of them instead of being taken whole by the first to
 * wake, and jobs that piled up behind busy workers go as one batch to the
 * first worker that frees up. The jobs a worker leaves for the others need
 * no extra wake-up: each submission signalled once, and each signal wakes a
 * worker that was still waiting, so a waiting worker is left asleep only
 * once every job queued since it went to sleep has been taken. Only a run
 * from the head is taken, so jobs are still taken in submission order. A
 * batch goes onto `done` in one piece and in queue order, so its done
 * callbacks run in submission order, one after another in one delivery.
 *
 * Helping: a worker running a job may post an offer (akv_pool_help_begin):
 * a function and how many helpers it can use. Offers are listed under mu;
 * a worker looking for something to do joins an open offer that still
 * wants helpers before it takes queued jobs (help first: finishing the
 * batch in progress sooner answers its clients sooner, and the jobs that
 * queue meanwhile form the next, larger batch). Posting an offer wakes the
 * waiting workers. Each joiner gets the next helper number and counts
 * itself in `running`; the owner's help_end closes the offer and waits on
 * `cv_help` until `running` is 0, so the owner can free what fn reads. A
 * worker joins each offer at most once, since numbers are never reused,
 * and a helper never waits for anything, so an owner's wait always ends.
 * Helpers are not counted in `idle`, so batch shares treat them as busy.
 *
 * Idle release: a worker that ran jobs and then finds nothing to do for
 * IDLE_RELEASE_MS frees the per-thread memory the queries keep between
 * calls (akv_query_scratch_release), outside mu; a busy worker keeps it.
 *
 * Shutdown: akv_pool_close sets `stopping`; workers keep taking jobs until the
 * queue is empty and then exit; the loop thread joins them, delivers any done
 * jobs still listed, and closes the async handle. No uv_async_send can happen
 * after the join, so closing the handle then is safe.
 */
#include "server/pool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#include <malloc.h>
#endif

#include <uv.h>

#include "attnkv/query.h"

#define IDLE_RELEASE_MS 500 /* a worker idle this long frees its query scratch */

/* A running job's offer of help: allocated by help_begin, listed in
 * `offers` and freed by help_end. Under mu. */
struct help_offer {
    struct help_offer *next;
    void (*fn)(void *arg, unsigned h);
    void *arg;
    unsigned wanted, joined, running;
    int closed;
};

struct akv_pool {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t cv_help; /* an offer's last helper returned */
    /* Under mu. */
    struct help_offer *offers;
    struct akv_pool_job *qhead, *qtail;
    struct akv_pool_job *dhead, *dtail;
    size_t queued; /* jobs in the q list, not yet taken by a worker */
    unsigned idle; /* workers not running a job (waiting, or not started yet) */
    int stopping;
    /* Loop thread only. */
    size_t pending;
    int closed;
    int async_live; /* the async handle was initialised and not closed yet */
    void (*close_cb)(void *arg);
    void *close_arg;
    unsigned nthreads;
    pthread_t *threads;
};

/* Under mu, with the queue not empty and the calling worker no longer
 * counted in idle: unlinks the jobs it is to run next into out (room for
 * AKV_POOL_BATCH_MAX) and returns how many: the head job alone, or for a
 * batch job the run from the head that shares its batch function, up to the
 * cap and the worker's fair share. */
static size_t take_jobs(struct akv_pool *p, struct akv_pool_job **out)
{
    struct akv_pool_job *job = p->qhead;
    void (*batch)(struct akv_pool_job **, size_t) = job->batch;
    size_t n = 0, share = 1;

    if (batch) {
        /* ceil(queued / (idle + 1)): a share for this worker and for each
         * other one that could start a job now. */
        share = (p->queued + p->idle) / ((size_t)p->idle + 1);
        if (share > AKV_POOL_BATCH_MAX)
            share = AKV_POOL_BATCH_MAX;
    }
    do {
        out[n++] = job;
        job = job->next;
    } while (n < share && job && job->batch == batch);
    p->qhead = job;
    if (!job)
        p->qtail = NULL;
    p->queued -= n;
    return n;
}

/* Under mu: an open offer that still wants a helper, or NULL. */
static struct help_offer *open_offer(const struct akv_pool *p)
{
    for (struct help_offer *o = p->offers; o; o = o->next)
        if (!o->closed && o->joined < o->wanted)
            return o;
    return NULL;
}

/* Under mu, which it releases while fn runs: joins offer o as its next
 * helper. */
static void help(struct akv_pool *p, struct help_offer *o)
{
    unsigned h = ++o->joined;

    o->running++;
    pthread_mutex_unlock(&p->mu);
    o->fn(o->arg, h);
    pthread_mutex_lock(&p->mu);
    if (--o->running == 0 && o->closed)
        pthread_cond_broadcast(&p->cv_help);
}

static void *worker_main(void *arg)
{
    struct akv_pool *p = arg;
    struct akv_pool_job *jobs[AKV_POOL_BATCH_MAX];
    int worked = 0; /* ran a job since its scratch was last released */

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct help_offer *o;
        size_t n;

        while (!p->qhead && !p->stopping && !open_offer(p)) {
            if (!worked) {
                pthread_cond_wait(&p->cv, &p->mu);
                continue;
            }
            /* Idle for IDLE_RELEASE_MS after running jobs: give back what
             * the queries keep between them (a flushed store's memory
             * comes back; the next query allocates again). */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)IDLE_RELEASE_MS * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT && !p->qhead &&
                !open_offer(p)) {
                worked = 0;
                pthread_mutex_unlock(&p->mu);
                akv_query_scratch_release();
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
                malloc_trim(0); /* and the allocator's free pages (not under a
                                 * sanitizer, which has an allocator of its own) */
#endif
                pthread_mutex_lock(&p->mu);
            }
        }
        if ((o = open_offer(p)) != NULL) {
            p->idle--;
            help(p, o);
            p->idle++;
            continue;
        }
        if (!p->qhead)
            break; /* stopping and nothing left to run */
        p->idle--;
        n = take_jobs(p, jobs);
        worked = 1;
        pthread_mutex_unlock(&p->mu);

        if (jobs[0]->batch)
            jobs[0]->batch(jobs, n);
        else
            jobs[0]->work(jobs[0]);

        pthread_mutex_lock(&p->mu);
        for (size_t i = 0; i < n; i++) {
            jobs[i]->next = NULL;
            if (p->dtail)
                p->dtail->next = jobs[i];
            else
                p->dhead = jobs[i];
            p->dtail = jobs[i];
        }
        p->idle++;
        pthread_mutex_unlock(&p->mu);
        uv_async_send(&p->async);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Loop thread: runs the done callback of every job the workers finished. */
static void deliver(struct akv_pool *p)
{
    struct akv_pool_job *job;

    pthread_mutex_lock(&p->mu);
    job = p->dhead;
    p->dhead = p->dtail = NULL;
    pthread_mutex_unlock(&p->mu);

    while (job) {
        struct akv_pool_job *next = job->next;
        p->pending--;
        job->done(job);
        job = next;
    }
}

static void on_async(uv_async_t *h)
{
    deliver(h->data);
}

/* Tells n started workers to leave and waits for them. */
static void stop_threads(struct akv_pool *p, unsigned n)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < n; i++)
        pthread_join(p->threads[i], NULL);
}

int akv_pool_create(struct akv_pool **out, uv_loop_t *loop, unsigned nthreads)
{
    struct akv_pool *p;
    sigset_t all, old;
    unsigned started = 0;
    int rc;

    if (nthreads == 0 || nthreads > AKV_POOL_THREADS_MAX)
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    p->nthreads = nthreads;
    p->idle = nthreads; /* before any thread runs: pthread_create orders it */
    p->threads = calloc(nthreads, sizeof(*p->threads));
    if (!p->threads) {
        rc = -ENOMEM;
        goto fail_alloc;
    }
    rc = -pthread_mutex_init(&p->mu, NULL);
    if (rc)
        goto fail_alloc;
    rc = -pthread_cond_init(&p->cv, NULL);
    if (rc)
        goto fail_mutex;
    rc = -pthread_cond_init(&p->cv_help, NULL);
    if (rc) {
        pthread_cond_destroy(&p->cv);
        goto fail_mutex;
    }

    /* Threads inherit the creator's signal mask: start them with everything
     * blocked, then restore the loop thread's mask. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; started < nthreads; started++) {
        rc = -pthread_create(&p->threads[started], NULL, worker_main, p);
        if (rc)
            break;
        pthread_setname_np(p->threads[started], "akv-worker");
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        goto fail_threads;

    /* No job can finish before create returns, so the workers cannot call
     * uv_async_send before the handle exists. */
    rc = uv_async_init(loop, &p->async, on_async);
    if (rc)
        goto fail_threads;
    p->async.data = p;
    p->async_live = 1;
    *out = p;
    return 0;

fail_threads:
    stop_threads(p, started);
    pthread_cond_destroy(&p->cv_help);
    pthread_cond_destroy(&p->cv);
fail_mutex:
    pthread_mutex_destroy(&p->mu);
fail_alloc:
    free(p->threads);
    free(p);
    return rc;
}

int akv_pool_submit(struct akv_pool *p, struct akv_pool_job *job)
{
    if (p->closed)
        return -ESHUTDOWN;
    assert(job->done && (job->work || job->batch));
    job->next = NULL;
    job->pool = p;
    job->help = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->qtail)
        p->qtail->next = job;
    else
        p->qhead = job;
    p->qtail = job;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    p->pending++;
    return 0;
}

size_t akv_pool_pending(const struct akv_pool *p)
{
    return p->pending;
}

size_t akv_pool_queued(struct akv_pool *p)
{
    size_t n;

    pthread_mutex_lock(&p->mu);
    n = p->queued;
    pthread_mutex_unlock(&p->mu);
    return n;
}

unsigned akv_pool_threads(const struct akv_pool *p)
{
    return p->nthreads;
}

void akv_pool_help_begin(struct akv_pool_job *job, void (*fn)(void *arg, unsigned h), void *arg,
                         unsigned nhelpers)
{
    struct akv_pool *p = job->pool;
    struct help_offer *o;

    job->help = NULL;
    if (p == NULL || nhelpers == 0 || p->nthreads < 2)
        return;
    o = malloc(sizeof *o);
    if (o == NULL)
        return; /* the owner does all the work itself */
    *o = (struct help_offer){.fn = fn, .arg = arg, .wanted = nhelpers};
    pthread_mutex_lock(&p->mu);
    o->next = p->offers;
    p->offers = o;
    if (p->idle > 0)
        pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    job->help = o;
}

void akv_pool_help_end(struct akv_pool_job *job)
{
    struct akv_pool *p = job->pool;
    struct help_offer *o = job->help, **pp;

    if (o == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    o->closed = 1;
    while (o->running > 0)
        pthread_cond_wait(&p->cv_help, &p->mu);
    for (pp = &p->offers; *pp != o; pp = &(*pp)->next)
        ;
    *pp = o->next;
    pthread_mutex_unlock(&p->mu);
    job->help = NULL;
    free(o);
}

unsigned akv_pool_job_threads(const struct akv_pool_job *job)
{
    return job->pool ? job->pool->nthreads : 1;
}

static void on_async_closed(uv_handle_t *h)
{
    struct akv_pool *p = h->data;

    p->async_live = 0;
    if (p->close_cb)
        p->close_cb(p->close_arg);
}

void akv_pool_close(struct akv_pool *p, void (*close_cb)(void *arg), void *arg)
{
    if (p->closed)
        return;
    p->closed = 1;
    p->close_cb = close_cb;
    p->close_arg = arg;
    stop_threads(p, p->nthreads);
    /* Every queued job has now run; hand the last results back before the
     * handle that would have announced them goes away. */
    deliver(p);
    uv_close((uv_handle_t *)&p->async, on_async_closed);
}

void akv_pool_destroy(struct akv_pool *p)
{
    if (!p)
        return;
    /* Destroying a running pool would leave threads reading freed memory. */
    assert(p->closed && !p->async_live);
    pthread_cond_destroy(&p->cv_help);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
