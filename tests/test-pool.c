/*
 * test-pool.c - the worker pool (src/pool.c): jobs run off the loop thread,
 * come back on it, in full, and shutdown drains the queue. Runs under TSan
 * in the concurrency suite.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "pool.h"

struct job {
    struct akv_pool_job base;
    struct fixture *fx;
    unsigned idx;
    unsigned sleep_us;
    pthread_t ran_on;
    unsigned long result;
};

struct fixture {
    uv_loop_t loop;
    struct akv_pool *pool;
    pthread_t loop_thread;
    unsigned done;
    unsigned expected;
    int close_on_last;
    int closed_cb;
    int bad_thread;
    unsigned long sum;
};

static void work(struct akv_pool_job *pj)
{
    struct job *j = (struct job *)pj;
    unsigned long acc = 0;

    j->ran_on = pthread_self();
    if (j->sleep_us)
        usleep(j->sleep_us);
    for (unsigned i = 0; i <= j->idx; i++)
        acc += i;
    j->result = acc;
}

static void on_closed(void *arg)
{
    struct fixture *fx = arg;

    fx->closed_cb++;
}

static void done(struct akv_pool_job *pj)
{
    struct job *j = (struct job *)pj;
    struct fixture *fx = j->fx;

    if (!pthread_equal(pthread_self(), fx->loop_thread) ||
        pthread_equal(j->ran_on, fx->loop_thread))
        fx->bad_thread++;
    fx->sum += j->result;
    fx->done++;
    free(j);
    if (fx->close_on_last && fx->done == fx->expected)
        akv_pool_close(fx->pool, on_closed, fx);
}

static struct job *new_job(struct fixture *fx, unsigned idx, unsigned sleep_us)
{
    struct job *j = calloc(1, sizeof(*j));

    ck_assert_ptr_nonnull(j);
    j->base.work = work;
    j->base.done = done;
    j->fx = fx;
    j->idx = idx;
    j->sleep_us = sleep_us;
    return j;
}

static void setup_fixture(struct fixture *fx, unsigned threads)
{
    memset(fx, 0, sizeof(*fx));
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    fx->loop_thread = pthread_self();
    ck_assert_int_eq(akv_pool_create(&fx->pool, &fx->loop, threads), 0);
    ck_assert_uint_eq(akv_pool_threads(fx->pool), threads);
}

static void teardown_fixture(struct fixture *fx)
{
    akv_pool_destroy(fx->pool);
    ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
}

START_TEST(test_many_jobs)
{
    struct fixture fx;
    const unsigned n = 5000;
    unsigned long want = 0;

    setup_fixture(&fx, 3);
    fx.expected = n;
    fx.close_on_last = 1;
    for (unsigned i = 0; i < n; i++) {
        ck_assert_int_eq(akv_pool_submit(fx.pool, &new_job(&fx, i % 100, 0)->base), 0);
        want += (unsigned long)(i % 100) * (i % 100 + 1) / 2;
    }
    ck_assert_uint_eq(akv_pool_pending(fx.pool), n);
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(fx.done, n);
    ck_assert_uint_eq(fx.sum, want);
    ck_assert_int_eq(fx.bad_thread, 0);
    ck_assert_int_eq(fx.closed_cb, 1);
    ck_assert_uint_eq(akv_pool_pending(fx.pool), 0);
    teardown_fixture(&fx);
}
END_TEST

/* Closing with work still queued runs all of it and delivers every done
 * callback before akv_pool_close returns. */
START_TEST(test_close_drains)
{
    struct fixture fx;
    struct akv_pool_job extra = {0};

    setup_fixture(&fx, 2);
    for (unsigned i = 0; i < 40; i++)
        ck_assert_int_eq(akv_pool_submit(fx.pool, &new_job(&fx, i, 500)->base), 0);
    akv_pool_close(fx.pool, on_closed, &fx);
    ck_assert_uint_eq(fx.done, 40);
    ck_assert_uint_eq(akv_pool_pending(fx.pool), 0);
    ck_assert_int_eq(fx.closed_cb, 0);
    ck_assert_int_eq(akv_pool_submit(fx.pool, &extra), -ESHUTDOWN);
    akv_pool_close(fx.pool, on_closed, &fx); /* a second close does nothing */
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(fx.closed_cb, 1);
    ck_assert_int_eq(fx.bad_thread, 0);
    teardown_fixture(&fx);
}
END_TEST

/* A done callback may submit the next job (the connection does this when it
 * moves on to the next pipelined request). */
static void chain_done(struct akv_pool_job *pj)
{
    struct job *j = (struct job *)pj;
    struct fixture *fx = j->fx;

    fx->done++;
    if (fx->done < fx->expected) {
        j->idx = fx->done;
        ck_assert_int_eq(akv_pool_submit(fx->pool, &j->base), 0);
        return;
    }
    free(j);
    akv_pool_close(fx->pool, on_closed, fx);
}

START_TEST(test_chain)
{
    struct fixture fx;
    struct job *j;

    setup_fixture(&fx, 1);
    fx.expected = 300;
    j = new_job(&fx, 0, 0);
    j->base.done = chain_done;
    ck_assert_int_eq(akv_pool_submit(fx.pool, &j->base), 0);
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(fx.done, 300);
    ck_assert_int_eq(fx.closed_cb, 1);
    teardown_fixture(&fx);
}
END_TEST

START_TEST(test_bad_args)
{
    uv_loop_t loop;
    struct akv_pool *p = NULL;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(akv_pool_create(&p, &loop, 0), -EINVAL);
    ck_assert_int_eq(akv_pool_create(&p, &loop, AKV_POOL_THREADS_MAX + 1), -EINVAL);
    ck_assert_ptr_null(p);
    akv_pool_destroy(NULL);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");

    tcase_add_test(tc, test_many_jobs);
    tcase_add_test(tc, test_close_drains);
    tcase_add_test(tc, test_chain);
    tcase_add_test(tc, test_bad_args);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(pool_suite());
}
