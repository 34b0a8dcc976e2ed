/*
 * pool.h - the worker pool that runs slow commands (QUERY, EXPLAIN,
 * NEIGHBORS) off the loop thread and hands each finished job back to it.
 *
 * A job is embedded in its owner's struct: the owner fills work and done and
 * submits it; a worker thread calls work; later the loop thread calls done.
 * The pool never frees a job; done usually does. Why this is our own pthread
 * pool rather than uv_queue_work is explained in the Design comment of
 * src/pool.c.
 *
 * Threading: every function here is for the loop thread (the thread running
 * the uv_loop_t given to akv_pool_create). work runs on a worker thread and
 * must not touch loop-owned state other than what the job carries; done runs
 * on the loop thread.
 */
#ifndef ATTNKV_POOL_H
#define ATTNKV_POOL_H

#include <stddef.h>

struct uv_loop_s;
struct akv_pool;

struct akv_pool_job {
    struct akv_pool_job *next;              /* private to the pool */
    void (*work)(struct akv_pool_job *job); /* worker thread */
    void (*done)(struct akv_pool_job *job); /* loop thread, after work returned */
};

/* Starts nthreads worker threads (1..AKV_POOL_THREADS_MAX) that hand results
 * back through an async handle on loop. Returns 0, -EINVAL, -ENOMEM or the
 * error from creating a thread or handle (nothing is left running then). */
int akv_pool_create(struct akv_pool **out, struct uv_loop_s *loop, unsigned nthreads);

#define AKV_POOL_THREADS_MAX 256

/* Queues job (FIFO). Returns 0, or -ESHUTDOWN once akv_pool_close was called
 * (done is then never called, as libuv does for failed requests). */
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
