/*
 * pool.h - the worker pool that runs slow commands (QUERY, EXPLAIN,
 * NEIGHBORS) off the loop thread and hands each finished job back to it.
 *
 * A job is embedded in its owner's struct: the owner fills work (or batch)
 * and done and submits it; a worker thread calls work; later the loop thread
 * calls done. The pool never frees a job; done usually does. Why this is our
 * own pthread pool rather than uv_queue_work, and how batches are formed, is
 * explained in the Design comment of src/server/pool.c.
 *
 * Batches: a job whose batch function is set is run by that function rather
 * than by work. A worker that takes such a job from the head of the queue
 * also takes the jobs queued right behind it that have the same batch
 * function (at most AKV_POOL_BATCH_MAX, and no more than its fair share of
 * the queue) and passes them all to one call, so that work which reads the
 * same large data for every job (the vocabulary scan) reads it once. Each
 * job still gets its own done callback, in submission order within a batch.
 *
 * Helping: a work or batch function can share its work with the workers
 * that have nothing else to do (akv_pool_help_begin/end): they join it
 * before they take new jobs, so one large batch runs on every core instead
 * of each core running a batch of its own.
 *
 * Threading: every function here is for the loop thread (the thread running
 * the uv_loop_t given to akv_pool_create), except the help functions, which
 * a work or batch function calls on its worker thread. work and batch run
 * on a worker thread and must not touch loop-owned state other than what
 * their jobs carry; done runs on the loop thread.
 */
#ifndef ATTNKV_POOL_H
#define ATTNKV_POOL_H

#include <stddef.h>

struct uv_loop_s;
struct akv_pool;

struct akv_pool_job {
    struct akv_pool_job *next;              /* private to the pool */
    struct akv_pool *pool;                  /* private: set by akv_pool_submit */
    void *help;                             /* private: the job's open offer of help */
    void (*work)(struct akv_pool_job *job); /* worker thread; unused when batch is set */
    /* Optional, worker thread: does for each of jobs[0..n-1] what work would,
     * n being 1..AKV_POOL_BATCH_MAX. Every job passed has this same batch
     * function, and they are in submission order. */
    void (*batch)(struct akv_pool_job **jobs, size_t n);
    void (*done)(struct akv_pool_job *job); /* loop thread, after work or batch returned */
};

/* The most jobs one batch call gets. Every job of a batch waits until the
 * whole call returns, so the cap bounds how long the first one waits for the
 * work of the others. Sharing one pass over the vocabulary divides its
 * memory traffic by the batch size, but not the scoring of each query: by
 * our estimate for the int8 pre-filter (about 2 ms to stream its 34 MB of
 * rows, a fraction of a millisecond to score one query against them), at 32
 * queries the memory share of each is already small next to its scoring, so
 * larger batches would gain little and add waiting. With 50 clients on 2
 * workers, two batches of 32 also hold everything that can be queued. A
 * constant, so a worker keeps its batch on the stack. */
#define AKV_POOL_BATCH_MAX 32

/* Starts nthreads worker threads (1..AKV_POOL_THREADS_MAX) that hand results
 * back through an async handle on loop. Returns 0, -EINVAL, -ENOMEM or the
 * error from creating a thread or handle (nothing is left running then). */
int akv_pool_create(struct akv_pool **out, struct uv_loop_s *loop, unsigned nthreads);

#define AKV_POOL_THREADS_MAX 256

/* Worker thread, from the work or batch function running job: offers
 * fn(arg, h) to up to nhelpers other workers, h = 1..nhelpers, each h
 * given to one call. A worker that is idle, or becomes free before the
 * offer ends, runs it before it takes any queued job; fn must therefore
 * never wait for anything a queued job would do. Offers of a job that was
 * not submitted to a pool (as in unit tests) do nothing. Every help_begin
 * must be followed by akv_pool_help_end(job) on the same thread, which
 * stops further workers from joining and waits for those that joined to
 * return from fn; their writes happen-before help_end returns. */
void akv_pool_help_begin(struct akv_pool_job *job, void (*fn)(void *arg, unsigned h), void *arg,
                         unsigned nhelpers);
void akv_pool_help_end(struct akv_pool_job *job);

/* The number of worker threads of the pool job was submitted to; 1 when
 * it was not submitted (so a batch can size its help from it). */
unsigned akv_pool_job_threads(const struct akv_pool_job *job);

/* Queues job (FIFO); job->work or job->batch must be set, and job->done.
 * Returns 0, or -ESHUTDOWN once akv_pool_close was called (done is then
 * never called, as libuv does for failed requests). */
int akv_pool_submit(struct akv_pool *p, struct akv_pool_job *job);

/* Jobs submitted whose done callback has not run yet. */
size_t akv_pool_pending(const struct akv_pool *p);

/* Jobs submitted that no worker has started yet (INFO's queue length). */
size_t akv_pool_queued(struct akv_pool *p);

unsigned akv_pool_threads(const struct akv_pool *p);

/* Stops the pool: jobs already queued still run and get their done callback
 * (synchronously, before this returns, if they were not delivered yet), the
 * threads are joined, and the async handle is closed; close_cb (may be NULL)
 * runs from the loop once the handle is closed, after which the pool may be
 * destroyed. Calling it again does nothing. */
void akv_pool_close(struct akv_pool *p, void (*close_cb)(void *arg), void *arg);

/* Frees the pool. It must have been closed and its close callback delivered
 * (or it was never started). NULL is a no-op. */
void akv_pool_destroy(struct akv_pool *p);

#endif
