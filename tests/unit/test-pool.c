/*
 * test-pool.c - the worker pool (src/server/pool.c): jobs run off the loop thread,
 * come back on it, in full, and shutdown drains the queue; jobs with a batch
 * function are taken together (behind a busy worker, up to the cap, no more
 * than a fair share while other workers wait) and still come back one by one
 * in submission order; a job can share its work with idle workers (help).
 * Runs under TSan in the concurrency suite.
 *
 * The batch tests are deterministic: jobs pile up behind a "blocker" job
 * whose work waits until the test opens a gate, so what is queued when a
 * worker comes to take is known exactly.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "server/pool.h"

struct job {
    struct akv_pool_job base;
    struct fixture *fx;
    unsigned idx;
    unsigned sleep_us;
    pthread_t ran_on;
    unsigned long result;
    /* Written by a batch function: which batch (numbered from 1 in the
     * order batches start) and where in it. 0 when run by work. */
    unsigned batch_id;
    unsigned batch_pos;
};

#define MAX_JOBS 6000
#define MAX_BATCHES 6000

/* What the worker side shares with the test: a gate that blockers and
 * blocking batches wait at, and a log of the batches in the order they
 * started. Under gate.mu. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    unsigned started;               /* blocking batches that have started */
    unsigned nbatches;              /* batches logged */
    unsigned sizes[MAX_BATCHES];    /* size of each batch, by batch_id - 1 */
    pthread_t threads[MAX_BATCHES]; /* the worker that ran it */
} gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void gate_reset(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = 0;
    gate.started = 0;
    gate.nbatches = 0;
    pthread_mutex_unlock(&gate.mu);
}

static void gate_open(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = 1;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

/* Waits (at most 30 s) until `started` reaches n; returns it. */
static unsigned gate_wait_started(unsigned n)
{
    struct timespec until;
    unsigned got;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&gate.mu);
    while (gate.started < n && pthread_cond_timedwait(&gate.cv, &gate.mu, &until) == 0)
        ;
    got = gate.started;
    pthread_mutex_unlock(&gate.mu);
    return got;
}

/* Copies the batch log out under the lock (the workers may still run). */
static unsigned batch_log(unsigned *sizes, pthread_t *threads)
{
    unsigned n;

    pthread_mutex_lock(&gate.mu);
    n = gate.nbatches;
    for (unsigned i = 0; i < n; i++) {
        sizes[i] = gate.sizes[i];
        if (threads)
            threads[i] = gate.threads[i];
    }
    pthread_mutex_unlock(&gate.mu);
    return n;
}

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
    /* In the order done callbacks ran: each job's idx and batch place. */
    unsigned order[MAX_JOBS];
    unsigned order_batch[MAX_JOBS];
    unsigned order_pos[MAX_JOBS];
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

/* Work that waits at the gate: the worker running it is busy until the
 * test opens the gate. */
static void blocker_work(struct akv_pool_job *pj)
{
    struct job *j = (struct job *)pj;

    j->ran_on = pthread_self();
    pthread_mutex_lock(&gate.mu);
    while (!gate.open)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
    j->result = 0;
}

/* Logs a batch of n starting on this thread; returns its id (from 1). */
static unsigned log_batch(size_t n)
{
    unsigned id;

    pthread_mutex_lock(&gate.mu);
    ck_assert_uint_lt(gate.nbatches, MAX_BATCHES);
    gate.sizes[gate.nbatches] = (unsigned)n;
    gate.threads[gate.nbatches] = pthread_self();
    id = ++gate.nbatches;
    pthread_mutex_unlock(&gate.mu);
    return id;
}

static void run_batch(struct akv_pool_job **jobs, size_t n, unsigned id)
{
    for (size_t i = 0; i < n; i++) {
        struct job *j = (struct job *)jobs[i];
        work(jobs[i]);
        j->batch_id = id;
        j->batch_pos = (unsigned)i;
    }
}

static void batch(struct akv_pool_job **jobs, size_t n)
{
    ck_assert(n >= 1 && n <= AKV_POOL_BATCH_MAX);
    run_batch(jobs, n, log_batch(n));
}

/* A second batch function: its jobs must never share a batch with batch's. */
static void batch_other(struct akv_pool_job **jobs, size_t n)
{
    ck_assert(n >= 1 && n <= AKV_POOL_BATCH_MAX);
    run_batch(jobs, n, log_batch(n));
}

/* A batch that, once logged, waits at the gate, so its worker stays busy. */
static void batch_blocking(struct akv_pool_job **jobs, size_t n)
{
    unsigned id = log_batch(n);

    pthread_mutex_lock(&gate.mu);
    gate.started++;
    pthread_cond_broadcast(&gate.cv);
    while (!gate.open)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
    run_batch(jobs, n, id);
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
    if (fx->done < MAX_JOBS) {
        fx->order[fx->done] = j->idx;
        fx->order_batch[fx->done] = j->batch_id;
        fx->order_pos[fx->done] = j->batch_pos;
    }
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

/* A job run by the batch function fn (work stays unset). */
static struct job *new_batch_job(struct fixture *fx, unsigned idx,
                                 void (*fn)(struct akv_pool_job **, size_t))
{
    struct job *j = new_job(fx, idx, 0);

    j->base.work = NULL;
    j->base.batch = fn;
    return j;
}

static struct job *new_blocker(struct fixture *fx, unsigned idx)
{
    struct job *j = new_job(fx, idx, 0);

    j->base.work = blocker_work;
    return j;
}

static void submit(struct fixture *fx, struct job *j)
{
    ck_assert_int_eq(akv_pool_submit(fx->pool, &j->base), 0);
}

static void setup_fixture(struct fixture *fx, unsigned threads)
{
    memset(fx, 0, sizeof(*fx));
    gate_reset();
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

/* Jobs queued behind a busy worker go to it as one batch when it frees up,
 * their done callbacks run in submission order, and the results are
 * those of running each alone. */
START_TEST(test_batch_behind_busy)
{
    struct fixture fx;
    unsigned sizes[MAX_BATCHES];

    setup_fixture(&fx, 1);
    submit(&fx, new_blocker(&fx, 0));
    for (unsigned i = 1; i <= 10; i++)
        submit(&fx, new_batch_job(&fx, i, batch));
    ck_assert_uint_eq(akv_pool_pending(fx.pool), 11);
    fx.expected = 11;
    fx.close_on_last = 1;
    gate_open();
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(fx.done, 11);
    ck_assert_uint_eq(batch_log(sizes, NULL), 1);
    ck_assert_uint_eq(sizes[0], 10);
    for (unsigned i = 0; i < 11; i++)
        ck_assert_uint_eq(fx.order[i], i);
    for (unsigned i = 1; i < 11; i++) {
        ck_assert_uint_eq(fx.order_batch[i], 1);
        ck_assert_uint_eq(fx.order_pos[i], i - 1);
    }
    ck_assert_uint_eq(fx.sum, 220); /* sum over i = 1..10 of i(i+1)/2 */
    ck_assert_int_eq(fx.bad_thread, 0);
    teardown_fixture(&fx);
}
END_TEST

/* No batch is larger than AKV_POOL_BATCH_MAX: 100 queued jobs go as
 * 32 + 32 + 32 + 4. */
START_TEST(test_batch_cap)
{
    struct fixture fx;
    unsigned sizes[MAX_BATCHES];

    ck_assert_uint_eq(AKV_POOL_BATCH_MAX, 32);
    setup_fixture(&fx, 1);
    submit(&fx, new_blocker(&fx, 0));
    for (unsigned i = 1; i <= 100; i++)
        submit(&fx, new_batch_job(&fx, i, batch));
    fx.expected = 101;
    fx.close_on_last = 1;
    gate_open();
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(fx.done, 101);
    ck_assert_uint_eq(batch_log(sizes, NULL), 4);
    ck_assert_uint_eq(sizes[0], 32);
    ck_assert_uint_eq(sizes[1], 32);
    ck_assert_uint_eq(sizes[2], 32);
    ck_assert_uint_eq(sizes[3], 4);
    for (unsigned i = 0; i < 101; i++)
        ck_assert_uint_eq(fx.order[i], i);
    teardown_fixture(&fx);
}
END_TEST

/* Jobs without a batch function run alone, and a batch is only ever a run
 * of consecutive jobs with the same batch function: one worker, everything
 * queued behind a blocker, so the split is exact. */
START_TEST(test_batch_mixed)
{
    /* 'b': batch, 'o': batch_other, 'w': plain work. */
    static const char kinds[] = "bbwbbbooboowwb";
    /* The batches expected, in order: b b | b b b | o o | b | o o | b. */
    static const unsigned want[] = {2, 3, 2, 1, 2, 1};
    const unsigned n = sizeof(kinds) - 1, nwant = sizeof(want) / sizeof(want[0]);
    struct fixture fx;
    unsigned sizes[MAX_BATCHES];
    unsigned long sum = 0;

    setup_fixture(&fx, 1);
    submit(&fx, new_blocker(&fx, 0));
    for (unsigned i = 1; i <= n; i++) {
        char k = kinds[i - 1];
        submit(&fx, k == 'w' ? new_job(&fx, i, 0)
                             : new_batch_job(&fx, i, k == 'b' ? batch : batch_other));
        sum += (unsigned long)i * (i + 1) / 2;
    }
    fx.expected = n + 1;
    fx.close_on_last = 1;
    gate_open();
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(fx.done, n + 1);
    ck_assert_uint_eq(fx.sum, sum);
    ck_assert_uint_eq(batch_log(sizes, NULL), nwant);
    for (unsigned i = 0; i < nwant; i++)
        ck_assert_uint_eq(sizes[i], want[i]);
    for (unsigned i = 0; i <= n; i++)
        ck_assert_uint_eq(fx.order[i], i);
    /* Plain jobs were run by work, never handed to a batch function. */
    for (unsigned i = 1; i <= n; i++)
        ck_assert_uint_eq(fx.order_batch[i] == 0, kinds[i - 1] == 'w');
    ck_assert_int_eq(fx.bad_thread, 0);
    teardown_fixture(&fx);
}
END_TEST

/* Closing with batch jobs queued behind a busy worker runs every one of
 * them (in full batches) and delivers them all before close returns. */
START_TEST(test_batch_close_drains)
{
    struct fixture fx;
    unsigned sizes[MAX_BATCHES];

    setup_fixture(&fx, 1);
    submit(&fx, new_blocker(&fx, 0));
    for (unsigned i = 1; i <= 70; i++)
        submit(&fx, new_batch_job(&fx, i, batch));
    gate_open();
    akv_pool_close(fx.pool, on_closed, &fx);
    ck_assert_uint_eq(fx.done, 71);
    ck_assert_uint_eq(akv_pool_pending(fx.pool), 0);
    ck_assert_uint_eq(batch_log(sizes, NULL), 3);
    ck_assert_uint_eq(sizes[0], 32);
    ck_assert_uint_eq(sizes[1], 32);
    ck_assert_uint_eq(sizes[2], 6);
    for (unsigned i = 0; i < 71; i++)
        ck_assert_uint_eq(fx.order[i], i);
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(fx.closed_cb, 1);
    ck_assert_int_eq(fx.bad_thread, 0);
    teardown_fixture(&fx);
}
END_TEST

/* Fair share: 8 jobs arriving at 4 idle workers are spread over all four
 * instead of going to the first that wakes. Each batch blocks its worker
 * until the gate opens, so a worker that took a batch cannot take more, and
 * the k-th worker to take sees 4 - k others still waiting: the first takes
 * at most ceil(8 / 4) = 2, and three takers can never cover all 8 (at most
 * 2 + 3 + 2 of them), so all four run one. */
START_TEST(test_batch_fair_share)
{
    struct fixture fx;
    unsigned sizes[MAX_BATCHES], nb, total = 0;
    pthread_t threads[MAX_BATCHES];

    setup_fixture(&fx, 4);
    for (unsigned i = 0; i < 8; i++)
        submit(&fx, new_batch_job(&fx, i, batch_blocking));
    ck_assert_uint_eq(gate_wait_started(4), 4);
    nb = batch_log(sizes, threads);
    ck_assert_uint_eq(nb, 4);
    ck_assert_uint_le(sizes[0], 2);
    for (unsigned i = 0; i < nb; i++) {
        ck_assert_uint_ge(sizes[i], 1);
        total += sizes[i];
        for (unsigned k = 0; k < i; k++)
            ck_assert(!pthread_equal(threads[i], threads[k]));
    }
    /* Any job not taken yet arrived after the fourth worker had taken. */
    ck_assert_uint_eq(total + akv_pool_queued(fx.pool), 8);
    fx.expected = 8;
    fx.close_on_last = 1;
    gate_open();
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(fx.done, 8);
    ck_assert_uint_eq(fx.sum, 84); /* sum over i = 0..7 of i(i+1)/2 */
    ck_assert_int_eq(fx.bad_thread, 0);
    teardown_fixture(&fx);
}
END_TEST

/* Many batch jobs on three workers, submitted as fast as possible: every
 * job runs once with the right result, no batch breaks the cap, and each
 * batch's done callbacks run back to back in the batch's order. Plain jobs
 * are interleaved so both kinds of taking race with each other. */
START_TEST(test_batch_many)
{
    struct fixture fx;
    const unsigned n = 5000;
    unsigned long want = 0;
    unsigned sizes[MAX_BATCHES], nb, in_batches = 0, plain = 0;

    setup_fixture(&fx, 3);
    fx.expected = n;
    fx.close_on_last = 1;
    for (unsigned i = 0; i < n; i++) {
        submit(&fx, i % 97 == 0 ? new_job(&fx, i % 100, 0) : new_batch_job(&fx, i % 100, batch));
        want += (unsigned long)(i % 100) * (i % 100 + 1) / 2;
    }
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(fx.done, n);
    ck_assert_uint_eq(fx.sum, want);
    ck_assert_int_eq(fx.bad_thread, 0);
    nb = batch_log(sizes, NULL);
    for (unsigned b = 0; b < nb; b++) {
        ck_assert(sizes[b] >= 1 && sizes[b] <= AKV_POOL_BATCH_MAX);
        in_batches += sizes[b];
    }
    for (unsigned i = 0; i < n; i++) {
        if (fx.order_batch[i] == 0) {
            plain++;
            continue;
        }
        /* Position p of batch b comes right after position p - 1. */
        ck_assert_uint_le(fx.order_batch[i], nb);
        if (fx.order_pos[i] > 0) {
            ck_assert_uint_eq(fx.order_batch[i - 1], fx.order_batch[i]);
            ck_assert_uint_eq(fx.order_pos[i - 1], fx.order_pos[i] - 1);
        }
        if (fx.order_pos[i] + 1 == sizes[fx.order_batch[i] - 1] || i + 1 == n)
            continue;
        ck_assert_uint_eq(fx.order_batch[i + 1], fx.order_batch[i]);
    }
    ck_assert_uint_eq(plain, (n + 96) / 97);
    ck_assert_uint_eq(in_batches + plain, n);
    teardown_fixture(&fx);
}
END_TEST

/* Helping: a batch offers its work to the idle workers. The work is a
 * counter of items that every participant claims from; the owner waits
 * until the helpers it was offered have joined before it starts, so the
 * test knows they ran. */
#define HELP_ITEMS 20000

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned joined;   /* helpers that started fn */
    unsigned returned; /* helpers that left fn */
    unsigned seen_h;   /* bit h: helper number h was given */
    int other_thread;  /* a helper ran on another thread than the owner */
    pthread_t owner;
    unsigned next;      /* the next item to claim */
    unsigned long sum;  /* of the items claimed */
    unsigned after_end; /* helpers still in fn when help_end returned */
} help_st = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void claim_items(void)
{
    for (;;) {
        unsigned i;
        pthread_mutex_lock(&help_st.mu);
        i = help_st.next < HELP_ITEMS ? help_st.next++ : HELP_ITEMS;
        if (i < HELP_ITEMS)
            help_st.sum += i;
        pthread_mutex_unlock(&help_st.mu);
        if (i == HELP_ITEMS)
            return;
    }
}

static void help_fn(void *arg, unsigned h)
{
    ck_assert_ptr_eq(arg, &help_st);
    pthread_mutex_lock(&help_st.mu);
    help_st.joined++;
    ck_assert_uint_ge(h, 1);
    ck_assert_uint_le(h, 3);
    ck_assert_msg(!(help_st.seen_h & (1u << h)), "helper number %u given twice", h);
    help_st.seen_h |= 1u << h;
    if (!pthread_equal(pthread_self(), help_st.owner))
        help_st.other_thread = 1;
    pthread_cond_broadcast(&help_st.cv);
    pthread_mutex_unlock(&help_st.mu);
    claim_items();
    pthread_mutex_lock(&help_st.mu);
    help_st.returned++;
    pthread_mutex_unlock(&help_st.mu);
}

static void batch_helped(struct akv_pool_job **jobs, size_t n)
{
    struct timespec until;

    pthread_mutex_lock(&help_st.mu);
    help_st.owner = pthread_self();
    pthread_mutex_unlock(&help_st.mu);
    ck_assert_uint_eq(akv_pool_job_threads(jobs[0]), 4);
    akv_pool_help_begin(jobs[0], help_fn, &help_st, 3);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&help_st.mu);
    while (help_st.joined < 3 && pthread_cond_timedwait(&help_st.cv, &help_st.mu, &until) == 0)
        ;
    pthread_mutex_unlock(&help_st.mu);
    claim_items();
    akv_pool_help_end(jobs[0]);
    pthread_mutex_lock(&help_st.mu);
    help_st.after_end = help_st.joined - help_st.returned;
    pthread_mutex_unlock(&help_st.mu);
    run_batch(jobs, n, log_batch(n));
}

START_TEST(test_help)
{
    struct fixture fx;
    unsigned long want = 0;

    setup_fixture(&fx, 4);
    fx.expected = 1 + 50;
    fx.close_on_last = 1;
    submit(&fx, new_batch_job(&fx, 0, batch_helped));
    /* Plain jobs queued behind it still run: a worker helps only while
     * the offer is open, and takes queued jobs afterwards. */
    for (unsigned i = 0; i < 50; i++)
        submit(&fx, new_job(&fx, i, 0));
    ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(fx.done, 51);
    for (unsigned i = 0; i < HELP_ITEMS; i++)
        want += i;
    ck_assert_uint_eq(help_st.sum, want);
    ck_assert_uint_eq(help_st.joined, 3);
    ck_assert_uint_eq(help_st.seen_h, 0xeu);
    ck_assert_int_eq(help_st.other_thread, 1);
    ck_assert_uint_eq(help_st.after_end, 0);
    ck_assert_int_eq(fx.bad_thread, 0);
    teardown_fixture(&fx);
}
END_TEST

/* A job that was never submitted (as the command handlers' unit tests run
 * them) can offer help: nobody joins, and the owner does the work. */
START_TEST(test_help_outside_pool)
{
    struct akv_pool_job j;

    memset(&j, 0, sizeof j);
    ck_assert_uint_eq(akv_pool_job_threads(&j), 1);
    akv_pool_help_begin(&j, help_fn, &help_st, 3);
    akv_pool_help_end(&j);
    ck_assert_ptr_null(j.help);
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
    tcase_add_test(tc, test_batch_behind_busy);
    tcase_add_test(tc, test_batch_cap);
    tcase_add_test(tc, test_batch_mixed);
    tcase_add_test(tc, test_batch_close_drains);
    tcase_add_test(tc, test_batch_fair_share);
    tcase_add_test(tc, test_batch_many);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_help_outside_pool);
    tcase_add_test(tc, test_bad_args);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(pool_suite());
}
