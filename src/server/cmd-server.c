/*
 * cmd-server.c - the server commands: CONFIG (GET, SET, RESETSTAT, RELOAD,
 * REWRITE), INFO and its sections, SLOWLOG, BGREWRITEAOF and BGSAVE, SAVE,
 * LASTSAVE, TIME, WAIT, SHUTDOWN and LATENCY.
 *
 * CONFIG SET goes through akv_cmd_settings_set, the one "set, apply, roll
 * back" path that the reload (CONFIG RELOAD, SIGUSR2: akv_cmd_config_reload)
 * uses too.
 *
 * Ownership: a CONFIG REWRITE job (the new text and the target path,
 * made on the loop thread) is allocated by config_rewrite and freed by its
 * finish on the loop thread, or at once inside EXEC; the histograms and
 * samples INFO reads belong to the env (cmd.h).
 *
 * Threading: the loop thread (cmd.h), but for CONFIG REWRITE's file
 * writing, which runs on a worker: it reads only its own job, and
 * rewrite_order under its lock (inside EXEC the loop thread writes the
 * file itself, under the same lock).
 */
#include "server/cmd-impl.h"

#include <sys/stat.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/utsname.h>

#include "server/conn.h"
#include "server/fdlimit.h"

/* Names that clients (redis-benchmark) ask for although attnkv has no such
 * setting; answering them quietly keeps those clients from warning. */
static const struct {
    const char *name;
    const char *value;
} config_compat[] = {
    {"save", ""},
};

/* Puts directive name back to old and lets it take effect again. */
static void setting_restore(struct akv_cmd_env *env, const char *name, const char *old)
{
    const char *back[1] = {old};

    akv_config_set(env->config, name, 1, back, NULL, 0);
    if (env->apply_setting)
        env->apply_setting(env, name, NULL, 0);
}

int akv_cmd_settings_set(struct akv_cmd_env *env, size_t n, const char *const *names,
                         const char *const *values, size_t *failed, char *err, size_t errlen)
{
    char **old = calloc(n ? n : 1, sizeof(*old));
    size_t done;
    int rc = 0;

    if (err && errlen)
        err[0] = '\0';
    if (!old) {
        akv_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (done = 0; done < n; done++) {
        char cur[CONFIG_VALUE_MAX + 1];

        if (akv_config_get(env->config, names[done], cur, sizeof(cur)) < 0) {
            rc = -EINVAL;
            if (err)
                snprintf(err, errlen, "its current value is too long");
            break;
        }
        old[done] = strdup(cur);
        if (!old[done]) {
            akv_errf(err, errlen, "out of memory");
            rc = -ENOMEM;
            break;
        }
        rc = akv_config_set(env->config, names[done], 1, &values[done], err, errlen);
        if (rc == 0 && env->apply_setting) {
            rc = env->apply_setting(env, names[done], err, errlen);
            if (rc < 0) /* changed in the struct but could not take effect */
                setting_restore(env, names[done], old[done]);
        }
        if (rc < 0)
            break;
    }
    if (failed)
        *failed = done;
    if (rc < 0)
        while (done-- > 0)
            setting_restore(env, names[done], old[done]);
    akv_slowlog_trim(&env->slowlog, (size_t)env->config->slowlog_max_len);
    for (size_t i = 0; i < n; i++)
        free(old[i]);
    free(old);
    return rc;
}

int akv_cmd_config_reload(struct akv_cmd_env *env, const char *who, char *err, size_t errlen)
{
    struct akv_config *live = env->config;
    const char *const *names = akv_config_names();
    const char **set_names = NULL;
    char **set_values = NULL;
    char(*was)[128] = NULL; /* the old values, for the log */
    size_t nset = 0, nnames = 0, failed = 0;
    struct akv_config fresh;
    char why[512] = "";
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if (!live->config_file) {
        akv_errf(err, errlen, "The server is running without a config file");
        return -ENOENT;
    }
    /* Read on the loop thread: a FIFO (or a terminal) there would block
     * it until someone writes, so only a regular file is read again. */
    {
        struct stat st;
        if (stat(live->config_file, &st) == 0 && !S_ISREG(st.st_mode)) {
            akv_errf(err, errlen, "%s: not a regular file; not read again while running",
                     live->config_file);
            return -EINVAL;
        }
    }
    while (names[nnames])
        nnames++;
    if (akv_config_init(&fresh) < 0) {
        akv_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = akv_config_load_file(&fresh, live->config_file, err, errlen);
    if (rc == 0 && env->args)
        rc = akv_config_args_apply(&fresh, env->args, err, errlen);
    if (rc < 0)
        goto out;
    /* maxclients is fitted to the descriptor limit as at start, so that a
     * file whose value was lowered then does not fail every reload. */
    if (fresh.maxclients != live->maxclients) {
        unsigned long long limit = 0;
        long fit = akv_fdlimit_fit(fresh.maxclients, NULL, &limit);
        if (fit >= 1 && fit < fresh.maxclients) {
            akv_log(AKV_LOG_WARNING,
                    "%s: maxclients %d needs %ld file descriptors, but the limit "
                    "(RLIMIT_NOFILE) is %llu and cannot be raised: maxclients %ld",
                    who, fresh.maxclients, (long)fresh.maxclients + AKV_FDLIMIT_RESERVED, limit,
                    fit);
            fresh.maxclients = (int)fit;
        }
    }
    set_names = calloc(nnames, sizeof(*set_names));
    set_values = calloc(nnames, sizeof(*set_values));
    was = calloc(nnames, sizeof(*was));
    if (!set_names || !set_values || !was)
        goto nomem;
    for (size_t i = 0; names[i]; i++) {
        char now[CONFIG_VALUE_MAX + 1];

        if (akv_config_same(live, &fresh, names[i]) != 0)
            continue;
        if (!akv_config_runtime(names[i])) {
            akv_log(AKV_LOG_WARNING, "%s: %s changed in %s; restart attnkvd to apply it", who,
                    names[i], live->config_file);
            continue;
        }
        if (akv_config_get(&fresh, names[i], now, sizeof(now)) < 0) {
            rc = -EINVAL;
            akv_errf(err, errlen, "%s: value too long", names[i]);
            goto out;
        }
        if (akv_config_get(live, names[i], was[nset], sizeof(was[nset])) == -ENOSPC)
            strcpy(was[nset] + sizeof(was[nset]) - 4, "...");
        set_values[nset] = strdup(now);
        if (!set_values[nset])
            goto nomem;
        set_names[nset++] = names[i];
    }
    rc = akv_cmd_settings_set(env, nset, set_names, (const char *const *)set_values, &failed, why,
                              sizeof(why));
    if (rc < 0) {
        akv_errf(err, errlen, "%s: %s", set_names[failed], why[0] ? why : "invalid value");
        goto out;
    }
    for (size_t i = 0; i < nset; i++) {
        char a[AKV_QUOTE_BUF], b[AKV_QUOTE_BUF];
        if (akv_config_is_secret(set_names[i]))
            akv_log(AKV_LOG_NOTICE, "%s: %s changed", who, set_names[i]);
        else
            akv_log(AKV_LOG_NOTICE, "%s: %s changed from '%s' to '%s'", who, set_names[i],
                    akv_quote(a, was[i], strlen(was[i])),
                    akv_quote(b, set_values[i], strlen(set_values[i])));
    }
    akv_log(AKV_LOG_NOTICE, "%s: reloaded %s: %zu setting%s changed", who, live->config_file, nset,
            nset == 1 ? "" : "s");
    goto out;

nomem:
    rc = -ENOMEM;
    akv_errf(err, errlen, "out of memory");
out:
    if (rc < 0 && rc != -ENOENT)
        akv_log(AKV_LOG_WARNING, "%s: %s; settings unchanged", who, err && err[0] ? err : "error");
    for (size_t i = 0; set_values && i < nset; i++) {
        if (akv_config_is_secret(set_names[i]))
            explicit_bzero(set_values[i], strlen(set_values[i])); /* the new password */
        free(set_values[i]);
    }
    free(set_values);
    free(set_names);
    if (was)
        explicit_bzero(was, nnames * sizeof(*was)); /* may hold the old password */
    free(was);
    akv_config_fini(&fresh);
    return rc;
}

/* CONFIG SET name value [name value ...]: all or nothing, like Redis 7.
 * Only the run-time directives that are not paths may change
 * (akv_config_client_settable), each at most once per call, so a request
 * holds at most one pair per directive; then akv_cmd_settings_set. */
static int config_set(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    const char *const *dnames = akv_config_names();
    size_t npairs = (ctx->argc - 2) / 2, ndirectives = 0, failed = 0, i;
    const char **names = NULL, **values = NULL;
    char value_err[512] = "", shown[AKV_QUOTE_BUF];
    int rc = 0;

    if (ctx->argc < 4 || (ctx->argc - 2) % 2 != 0)
        return reply_wrong_arity(ctx);
    while (dnames[ndirectives])
        ndirectives++;
    if (npairs > ndirectives)
        return akv_reply_errorf(ctx->out,
                                "ERR CONFIG SET takes at most %zu name value pairs (each "
                                "directive once)",
                                ndirectives);
    for (i = 0; i < npairs; i++) {
        const struct akv_slice *n = &ctx->argv[2 + 2 * i], *v = &ctx->argv[3 + 2 * i];
        char name[64], probe[8];
        show(n, shown);
        if (n->len >= sizeof(name) || memchr(n->p, '\0', n->len))
            return akv_reply_errorf(ctx->out, "ERR Unknown option '%s' for CONFIG SET", shown);
        memcpy(name, n->p, n->len);
        name[n->len] = '\0';
        if (akv_config_get(env->config, name, probe, sizeof(probe)) == -ENOENT)
            return akv_reply_errorf(ctx->out, "ERR Unknown option '%s' for CONFIG SET", shown);
        /* A path that a reload applies (logfile) or one read only at
         * start-up (dir, appendfilename, vectors). */
        if (akv_config_is_path(name))
            return akv_reply_errorf(ctx->out,
                                    "ERR CONFIG SET '%s' is a path: set it in the configuration "
                                    "file and %s",
                                    shown,
                                    akv_config_runtime(name) ? "reload it with CONFIG RELOAD"
                                                             : "restart attnkvd");
        if (!akv_config_client_settable(name))
            return akv_reply_errorf(ctx->out,
                                    "ERR CONFIG SET '%s' cannot be changed at run time (edit "
                                    "the configuration file and restart attnkvd)",
                                    shown);
        for (size_t j = 0; j < i; j++) {
            const struct akv_slice *e = &ctx->argv[2 + 2 * j];
            if (e->len == n->len && strncasecmp(e->p, n->p, n->len) == 0)
                return akv_reply_errorf(ctx->out, "ERR CONFIG SET '%s': duplicate parameter",
                                        shown);
        }
        /* No setting takes a longer value; refusing it here keeps a request
         * of huge values from being copied, let alone parsed. */
        if (v->len > CONFIG_VALUE_MAX)
            return akv_reply_errorf(ctx->out,
                                    "ERR CONFIG SET '%s': value too long (%zu bytes; at most %d)",
                                    shown, v->len, CONFIG_VALUE_MAX);
        if (memchr(v->p, '\0', v->len))
            return akv_reply_errorf(ctx->out, "ERR CONFIG SET '%s': NUL byte in the value", shown);
    }
    names = calloc(npairs, sizeof(*names));
    values = calloc(npairs, sizeof(*values));
    for (i = 0; names && values && i < npairs; i++) {
        const struct akv_slice *n = &ctx->argv[2 + 2 * i], *v = &ctx->argv[3 + 2 * i];
        names[i] = strndup(n->p, n->len);
        values[i] = strndup(v->p, v->len);
        if (!names[i] || !values[i])
            break;
    }
    if (rc == 0 && i < npairs)
        rc = -ENOMEM;
    if (rc == 0)
        rc =
            akv_cmd_settings_set(env, npairs, names, values, &failed, value_err, sizeof(value_err));
    for (i = 0; i < npairs; i++) {
        free(names ? (void *)names[i] : NULL);
        free(values ? (void *)values[i] : NULL);
    }
    free(names);
    free(values);
    if (rc == -ENOMEM)
        return reply_oom(ctx->out);
    if (rc < 0)
        return akv_reply_errorf(ctx->out, "ERR CONFIG SET '%s': %s",
                                show(&ctx->argv[2 + 2 * failed], shown),
                                value_err[0] ? value_err : "invalid value");
    return akv_reply_status(ctx->out, "OK");
}

/* CONFIG RELOAD: akv_cmd_config_reload, as SIGUSR2 does. */
static int config_reload(struct akv_cmd_ctx *ctx)
{
    char err[512];
    int rc = akv_cmd_config_reload(ctx->env, "CONFIG RELOAD", err, sizeof(err));

    if (rc == -ENOMEM)
        return reply_oom(ctx->out);
    if (rc < 0)
        return akv_reply_errorf(ctx->out, "ERR %s", err);
    return akv_reply_status(ctx->out, "OK");
}

/* CONFIG REWRITE: the running settings back into the file, with Redis's
 * error texts. The new text is made here, from the settings as they are
 * now; writing it (with two fsyncs, some milliseconds) is a pool job, so
 * that it never holds the other clients up, except inside EXEC, where the
 * commands queued after it must find the file written. */
struct rewrite_job {
    struct akv_cmd_job base;
    struct akv_cmd_env *env;
    char *path, *text;
    size_t len;
    uint64_t seq; /* rewrite_order's number for it */
    int rc;
    char err[512];
};

/* Rewrites run on several workers, and one prepared later may reach the
 * file first: each job is numbered when prepared, the file is written by
 * one at a time, and a job that finds a later one's text written already
 * writes nothing (that text holds its settings or newer ones), so the file
 * ends up with the newest. */
static struct {
    pthread_mutex_t lock;
    atomic_uint_fast64_t prepared; /* the number of the last job prepared */
    uint64_t written;              /* under lock: the newest job written */
} rewrite_order = {PTHREAD_MUTEX_INITIALIZER, 0, 0};

/* Writes job j's text unless a later job's is there. Any thread. */
static int rewrite_write(struct rewrite_job *j)
{
    int rc = 0;

    pthread_mutex_lock(&rewrite_order.lock);
    if (j->seq > rewrite_order.written) {
        rc = akv_config_write_file(j->path, j->text, j->len, j->err, sizeof(j->err));
        if (rc == 0)
            rewrite_order.written = j->seq;
    }
    pthread_mutex_unlock(&rewrite_order.lock);
    return rc;
}

/* Worker thread: reads its own job, and rewrite_order under its lock. */
static void rewrite_work(struct akv_pool_job *pj)
{
    struct rewrite_job *j = container_of(pj, struct rewrite_job, base.pool);

    j->rc = rewrite_write(j);
}

static void rewrite_finish(struct akv_cmd_job *cj, struct akv_buf *out)
{
    struct rewrite_job *j = container_of(cj, struct rewrite_job, base);
    uint64_t us = (now_ns() - cj->t0) / 1000;
    int rc = 0;

    if (j->rc < 0)
        akv_log(AKV_LOG_WARNING, "CONFIG REWRITE failed: %s", j->err);
    else
        akv_log(AKV_LOG_NOTICE, "CONFIG REWRITE executed with success (%s)", j->path);
    if (out) {
        size_t mark = out->len;
        rc = j->rc < 0 ? akv_reply_errorf(out, "ERR Rewriting config file: %s", j->err)
                       : akv_reply_status(out, "OK");
        if (rc < 0)
            akv_cmd_reply_cut_to_oom(out, mark);
    }
    akv_cmd_job_account(j->env, cj, us, j->rc < 0 || rc < 0);
    free(j->path);
    free(j->text);
    free(j);
}

static int config_rewrite(struct akv_cmd_ctx *ctx)
{
    const struct akv_config *c = ctx->env->config;
    struct rewrite_job *j;
    int rc;

    if (!c->config_file)
        return akv_reply_error(ctx->out, "ERR The server is running without a config file");
    j = calloc(1, sizeof(*j));
    if (!j)
        return reply_oom(ctx->out);
    rc = akv_config_rewrite_prepare(c, c->config_file, &j->path, &j->text, &j->len, j->err,
                                    sizeof(j->err));
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "CONFIG REWRITE failed: %s", j->err);
        rc = rc == -ENOMEM ? reply_oom(ctx->out)
                           : akv_reply_errorf(ctx->out, "ERR Rewriting config file: %s", j->err);
        free(j);
        return rc;
    }
    j->seq = atomic_fetch_add(&rewrite_order.prepared, 1) + 1;
    if (ctx->env->in_exec) {
        /* In a transaction the commands after it (a CONFIG RELOAD) must
         * see the file written, so it is written now, on the loop. */
        rc = rewrite_write(j);
        if (rc < 0)
            akv_log(AKV_LOG_WARNING, "CONFIG REWRITE failed: %s", j->err);
        else
            akv_log(AKV_LOG_NOTICE, "CONFIG REWRITE executed with success (%s)", j->path);
        rc = rc < 0 ? akv_reply_errorf(ctx->out, "ERR Rewriting config file: %s", j->err)
                    : akv_reply_status(ctx->out, "OK");
        free(j->path);
        free(j->text);
        free(j);
        return rc;
    }
    j->base.pool.work = rewrite_work;
    j->base.finish = rewrite_finish;
    j->env = ctx->env;
    ctx->job = &j->base;
    return 0;
}

/* CONFIG RESETSTAT: zeroes the counters INFO shows (not the gauges). */
static int config_resetstat(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    struct akv_stats *st = &env->stats;
    uint64_t connected = st->connected_clients, jobs = st->jobs_running;
    uint64_t paused = st->paused_clients;

    /* The latency histograms go too, as Redis's do: a command's comes back
     * at its next call. */
    for (size_t i = 0; i < AKV_CMD_STATS_MAX; i++) {
        free(env->cmd_hist[i]);
        env->cmd_hist[i] = NULL;
    }
    env->ncmd_hist = 0;
    memset(st, 0, sizeof(*st));
    st->connected_clients = connected;
    st->jobs_running = jobs;
    st->paused_clients = paused;
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_config(struct akv_cmd_ctx *ctx)
{
    const char *const *names = akv_config_names();
    struct akv_glob *pats[CONFIG_GET_PATTERNS_MAX];
    struct akv_buf tmp;
    size_t count = 0;
    int rc = 0;

    if (!arg_is(&ctx->argv[1], "GET")) {
        char sb[AKV_QUOTE_BUF];
        if (arg_is(&ctx->argv[1], "SET"))
            return config_set(ctx);
        if (arg_is(&ctx->argv[1], "RESETSTAT") && ctx->argc == 2)
            return config_resetstat(ctx);
        if (arg_is(&ctx->argv[1], "RELOAD") && ctx->argc == 2)
            return config_reload(ctx);
        if (arg_is(&ctx->argv[1], "REWRITE") && ctx->argc == 2)
            return config_rewrite(ctx);
        return akv_reply_errorf(ctx->out,
                                "ERR unknown CONFIG subcommand '%s' (GET, SET, RESETSTAT, "
                                "RELOAD and REWRITE are supported)",
                                show(&ctx->argv[1], sb));
    }
    if (ctx->argc < 3)
        return reply_wrong_arity(ctx);
    if (ctx->argc - 2 > CONFIG_GET_PATTERNS_MAX)
        return akv_reply_errorf(ctx->out, "ERR CONFIG GET takes at most %d patterns",
                                CONFIG_GET_PATTERNS_MAX);
    for (size_t a = 2; a < ctx->argc; a++) {
        rc = akv_glob_compile(ctx->argv[a].p, ctx->argv[a].len, 1, &pats[a - 2]);
        if (rc < 0) {
            for (size_t b = 2; b < a; b++)
                akv_glob_free(pats[b - 2]);
            return rc == -E2BIG ? reply_pattern_too_long(ctx, &ctx->argv[a]) : reply_oom(ctx->out);
        }
    }

    /* Values go to a side buffer first because the array length comes first. */
    akv_buf_init(&tmp);
    for (size_t n = 0; rc == 0 && names[n]; n++) {
        const char *name = names[n];
        int hit = 0;
        for (size_t a = 0; a < ctx->argc - 2 && !hit; a++)
            hit = akv_glob_exec(pats[a], name, strlen(name));
        if (hit) {
            char val[4096];
            if (akv_config_get(ctx->env->config, name, val, sizeof(val)) < 0)
                continue;
            rc = akv_reply_bulk_str(&tmp, name);
            rc = rc ? rc : akv_reply_bulk_str(&tmp, val);
            count++;
        }
    }
    for (size_t n = 0; rc == 0 && n < sizeof(config_compat) / sizeof(config_compat[0]); n++) {
        for (size_t a = 2; a < ctx->argc; a++) {
            if (arg_is(&ctx->argv[a], config_compat[n].name)) {
                rc = akv_reply_bulk_str(&tmp, config_compat[n].name);
                rc = rc ? rc : akv_reply_bulk_str(&tmp, config_compat[n].value);
                count++;
                break;
            }
        }
    }
    for (size_t a = 0; a < ctx->argc - 2; a++)
        akv_glob_free(pats[a]);
    rc = rc ? rc : akv_reply_map(ctx->out, resp_of(ctx), count);
    rc = rc ? rc : akv_buf_append(ctx->out, tmp.p, tmp.len);
    akv_buf_fini(&tmp);
    return rc;
}

/* The Redis version INFO's redis_version claims: tools read it to know
 * what to expect, and attnkv answers as Redis 7.0 does (multi-pair CONFIG
 * SET, the 6.2 commandstats format, errorstats, latencystats). */
#define REDIS_COMPAT_VERSION "7.0.0"

/* The percentiles of INFO latencystats: Redis's default
 * latency-tracking-info-percentiles, "50 99 99.9". */
static const double latency_pcts[] = {0.5, 0.99, 0.999};
static const char *const latency_pct_names[] = {"p50", "p99", "p99.9"};

/* The compiler, as Redis's gcc_version shows it (clang says GCC 4.2.1). */
#define STR_(x) #x
#define STR(x) STR_(x)
#ifdef __GNUC__
#define GCC_VERSION_TEXT STR(__GNUC__) "." STR(__GNUC_MINOR__) "." STR(__GNUC_PATCHLEVEL__)
#else
#define GCC_VERSION_TEXT "0.0.0"
#endif

/* What libuv polls with, as Redis's multiplexing_api. */
#if defined(__linux__)
#define MULTIPLEXING_API "epoll"
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
#define MULTIPLEXING_API "kqueue"
#else
#define MULTIPLEXING_API "poll"
#endif

static int info_server(struct akv_buf *b, const struct akv_cmd_env *env)
{
    uint64_t up = (now_ns() - env->start_ns) / 1000000000u;
    struct utsname u;
    struct timespec ts;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    int rc;

    exe[n > 0 ? n : 0] = '\0';
    if (uname(&u) < 0)
        memset(&u, 0, sizeof(u));
    clock_gettime(CLOCK_REALTIME, &ts);
    rc = akv_buf_printf(b,
                        "redis_version:" REDIS_COMPAT_VERSION "\r\n"
                        "attnkv_version:%s\r\n"
                        "redis_mode:standalone\r\n"
                        "os:%s %s %s\r\n"
                        "arch_bits:%zu\r\n"
                        "monotonic_clock:POSIX clock_gettime\r\n"
                        "multiplexing_api:" MULTIPLEXING_API "\r\n"
                        "gcc_version:" GCC_VERSION_TEXT "\r\n"
                        "process_id:%ld\r\n"
                        "run_id:%s\r\n"
                        "tcp_port:%d\r\n",
                        AKV_VERSION, u.sysname, u.release, u.machine, sizeof(void *) * 8,
                        (long)getpid(), env->run_id, env->tcp_port);
    if (rc < 0)
        return rc;
    return akv_buf_printf(b,
                          "server_time_usec:%lld\r\n"
                          "uptime_in_seconds:%" PRIu64 "\r\n"
                          "uptime_in_days:%" PRIu64 "\r\n"
                          "hz:%d\r\n"
                          "configured_hz:%d\r\n"
                          "executable:%s\r\n"
                          "config_file:%s\r\n"
                          "io_threads_active:0\r\n"
                          "workers:%u\r\n",
                          (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, up, up / 86400,
                          1000 / AKV_CONN_CRON_MS, 1000 / AKV_CONN_CRON_MS, exe,
                          env->config->config_file ? env->config->config_file : "", env->workers);
}

static int info_clients(struct akv_buf *b, const struct akv_cmd_env *env)
{
    const struct akv_client_peaks *p = &env->client_peaks;
    uint64_t sec = now_ns() / 1000000000u;
    size_t in = 0, out = 0;

    /* The largest buffers of the last AKV_CLIENT_PEAK_SLOTS seconds. */
    for (size_t i = 0; i < AKV_CLIENT_PEAK_SLOTS; i++) {
        if (p->sec[i] + AKV_CLIENT_PEAK_SLOTS <= sec)
            continue;
        in = p->in[i] > in ? p->in[i] : in;
        out = p->out[i] > out ? p->out[i] : out;
    }
    /* Blocked, as Redis counts a client blocked in a module's threaded
     * command: waiting for a worker's result, or for CLIENT PAUSE to end. */
    return akv_buf_printf(b,
                          "connected_clients:%" PRIu64 "\r\n"
                          "maxclients:%d\r\n"
                          "client_recent_max_input_buffer:%zu\r\n"
                          "client_recent_max_output_buffer:%zu\r\n"
                          "blocked_clients:%" PRIu64 "\r\n",
                          env->stats.connected_clients, env->config->maxclients, in, out,
                          env->stats.jobs_running + env->stats.paused_clients);
}

/* Bytes the neighbor lists hold. */
static size_t lists_memory(const struct akv_cmd_env *env)
{
    return env->nbcache ? akv_nbcache_memory(env->nbcache) : 0;
}

size_t akv_cmd_used_memory(const struct akv_cmd_env *env)
{
    struct akv_persist_info pi;

    akv_persist_info(env->persist, &pi);
    return stores_memory(env) + lists_memory(env) + akv_query_scratch_bytes() +
           (env->clients_memory ? env->clients_memory(env) : (size_t)0) + env->slowlog.mem +
           (size_t)pi.pending_bytes + env->ncmd_hist * sizeof(struct akv_hist);
}

/* The resident set size and its file-backed part (the mapped vocabulary,
 * the program and its libraries), in bytes, from /proc/self/statm; 0 if
 * unknown. */
static void rss_bytes(size_t *rss, size_t *file)
{
    unsigned long size = 0, resident = 0, shared = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    *rss = *file = 0;
    if (!f)
        return;
    if (fscanf(f, "%lu %lu %lu", &size, &resident, &shared) == 3) {
        *rss = (size_t)resident * page;
        *file = (size_t)shared * page;
    }
    fclose(f);
}

/* "1.50M" and the like, as Redis's *_human fields. */
static const char *human(size_t n, char *buf, size_t cap)
{
    static const char units[] = "BKMGTP";
    double v = (double)n;
    size_t u = 0;

    while (v >= 1024 && u + 1 < sizeof(units) - 1) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%zuB", n);
    else
        snprintf(buf, cap, "%.2f%c", v, units[u]);
    return buf;
}

static int info_memory(struct akv_buf *b, const struct akv_cmd_env *env)
{
    struct rusage ru;
    size_t rss, rss_file, anon, peak = 0, used = akv_cmd_used_memory(env);
    size_t used_peak = used > env->used_memory_peak ? used : env->used_memory_peak;
    size_t sys = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
    size_t maxmem = (size_t)env->config->maxmemory;
    char h1[32], h2[32], h3[32], h4[32], h5[32], h6[32];
    int rc;

    rss_bytes(&rss, &rss_file);
    anon = rss > rss_file ? rss - rss_file : 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        peak = (size_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
    /* used_memory comes first: redis-cli --stat reads the first field
     * whose name begins with "used_memory". */
    rc = akv_buf_printf(b,
                        "used_memory:%zu\r\n"
                        "used_memory_human:%s\r\n"
                        "used_memory_rss:%zu\r\n"
                        "used_memory_rss_human:%s\r\n"
                        "used_memory_peak:%zu\r\n"
                        "used_memory_peak_human:%s\r\n"
                        "used_memory_peak_rss:%zu\r\n"
                        "used_memory_peak_rss_human:%s\r\n"
                        "total_system_memory:%zu\r\n"
                        "total_system_memory_human:%s\r\n",
                        used, human(used, h1, sizeof(h1)), rss, human(rss, h2, sizeof(h2)),
                        used_peak, human(used_peak, h3, sizeof(h3)), peak,
                        human(peak, h4, sizeof(h4)), sys, human(sys, h5, sizeof(h5)));
    if (rc < 0)
        return rc;
    rc = akv_buf_printf(b,
                        "used_memory_store:%zu\r\n"
                        "used_memory_neighbor_lists:%zu\r\n"
                        "used_memory_query_scratch:%zu\r\n"
                        "used_memory_vocabulary:%zu\r\n"
                        "mem_clients_normal:%zu\r\n"
                        "maxmemory:%zu\r\n"
                        "maxmemory_human:%s\r\n"
                        "maxmemory_policy:noeviction\r\n",
                        stores_memory(env), lists_memory(env), akv_query_scratch_bytes(),
                        akv_vocab_bytes(env->vocab),
                        env->clients_memory ? env->clients_memory(env) : (size_t)0, maxmem,
                        human(maxmem, h6, sizeof(h6)));
    if (rc < 0)
        return rc;
    /* Fragmentation as Redis reckons it, resident over used, but without
     * the file-backed pages: the mapped vocabulary alone is hundreds of MB
     * and would drown every other figure. */
    return akv_buf_printf(b,
                          "mem_fragmentation_ratio:%.2f\r\n"
                          "mem_fragmentation_bytes:%lld\r\n"
                          "mem_allocator:libc\r\n"
                          "slowlog_entries:%zu\r\n",
                          used ? (double)anon / (double)used : 0.0,
                          (long long)anon - (long long)used, env->slowlog.len);
}

/* One instantaneous_* rate, per second: the mean of its samples. */
static double inst_rate(const struct akv_cmd_env *env, int which)
{
    double sum = 0;

    for (size_t i = 0; i < AKV_INST_SAMPLES; i++)
        sum += env->inst[which].samples[i];
    return sum / AKV_INST_SAMPLES;
}

static int info_stats(struct akv_buf *b, const struct akv_cmd_env *env)
{
    const struct akv_stats *st = &env->stats;
    int rc;

    rc = akv_buf_printf(
        b,
        "total_connections_received:%" PRIu64 "\r\n"
        "total_commands_processed:%" PRIu64 "\r\n"
        "instantaneous_ops_per_sec:%.0f\r\n"
        "total_net_input_bytes:%" PRIu64 "\r\n"
        "total_net_output_bytes:%" PRIu64 "\r\n"
        "instantaneous_input_kbps:%.2f\r\n"
        "instantaneous_output_kbps:%.2f\r\n"
        "rejected_connections:%" PRIu64 "\r\n"
        "expired_keys:%" PRIu64 "\r\n"
        "evicted_keys:0\r\n"
        "keyspace_hits:%" PRIu64 "\r\n"
        "keyspace_misses:%" PRIu64 "\r\n"
        "pubsub_channels:0\r\n"
        "pubsub_patterns:0\r\n"
        "total_error_replies:%" PRIu64 "\r\n",
        st->connections_received, st->commands_processed, inst_rate(env, AKV_INST_OPS),
        st->net_input_bytes, st->net_output_bytes, inst_rate(env, AKV_INST_NET_IN) / 1024,
        inst_rate(env, AKV_INST_NET_OUT) / 1024, st->rejected_connections, st->expired_keys,
        st->keyspace_hits, st->keyspace_misses, st->error_replies);
    if (rc < 0)
        return rc;
    return akv_buf_printf(b,
                          "jobs_in_flight:%" PRIu64 "\r\n"
                          "jobs_waiting:%zu\r\n"
                          "query_batches:%" PRIu64 "\r\n"
                          "query_batched_jobs:%" PRIu64 "\r\n"
                          "query_batch_max:%" PRIu64 "\r\n"
                          "query_from_lists:%" PRIu64 "\r\n"
                          "neighbor_lists:%zu\r\n",
                          st->jobs_running, env->queue_len ? env->queue_len(env) : (size_t)0,
                          st->query_batches, st->query_batched_jobs, st->query_batch_max,
                          st->query_from_lists,
                          env->nbcache ? akv_nbcache_count(env->nbcache) : (size_t)0);
}

/* Replication, as Redis shows a master without replicas; a cluster node's
 * in cmd-cluster.c. */
static int info_replication(struct akv_buf *b, const struct akv_cmd_env *env)
{
    if (env->cluster)
        return akv_cmd_cluster_info_replication(b, env);
    return akv_buf_printf(b,
                          "role:master\r\n"
                          "connected_slaves:0\r\n"
                          "master_failover_state:no-failover\r\n"
                          "master_replid:%s\r\n"
                          "master_replid2:0000000000000000000000000000000000000000\r\n"
                          "master_repl_offset:0\r\n"
                          "second_repl_offset:-1\r\n"
                          "repl_backlog_active:0\r\n"
                          "repl_backlog_size:0\r\n"
                          "repl_backlog_first_byte_offset:0\r\n"
                          "repl_backlog_histlen:0\r\n",
                          env->replid);
}

/* Seconds, as Redis writes CPU times. */
static double tv_sec(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int info_cpu(struct akv_buf *b, const struct akv_cmd_env *env)
{
    struct rusage self, children, loop;

    (void)env;
    memset(&self, 0, sizeof(self));
    memset(&children, 0, sizeof(children));
    memset(&loop, 0, sizeof(loop));
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    /* INFO runs on the loop thread, what Redis calls its main thread. */
    getrusage(RUSAGE_THREAD, &loop);
    return akv_buf_printf(b,
                          "used_cpu_sys:%.6f\r\n"
                          "used_cpu_user:%.6f\r\n"
                          "used_cpu_sys_children:%.6f\r\n"
                          "used_cpu_user_children:%.6f\r\n"
                          "used_cpu_sys_main_thread:%.6f\r\n"
                          "used_cpu_user_main_thread:%.6f\r\n",
                          tv_sec(self.ru_stime), tv_sec(self.ru_utime), tv_sec(children.ru_stime),
                          tv_sec(children.ru_utime), tv_sec(loop.ru_stime), tv_sec(loop.ru_utime));
}

static int info_latency(struct akv_buf *b, const struct akv_cmd_env *env)
{
    const struct akv_stats *st = &env->stats;
    const struct akv_hist *h = &st->query_hist;
    uint64_t p50 = akv_hist_quantile(h, 0.5), p90 = akv_hist_quantile(h, 0.9),
             p99 = akv_hist_quantile(h, 0.99), p999 = akv_hist_quantile(h, 0.999);

    return akv_buf_printf(b,
                          "query_count:%" PRIu64 "\r\n"
                          "query_latency_mean_us:%" PRIu64 "\r\n"
                          "query_latency_max_us:%" PRIu64 "\r\n"
                          "query_latency_p50_us:%" PRIu64 "\r\n"
                          "query_latency_p90_us:%" PRIu64 "\r\n"
                          "query_latency_p99_us:%" PRIu64 "\r\n"
                          "query_latency_p999_us:%" PRIu64 "\r\n",
                          st->query_count, st->query_count ? st->query_us_sum / st->query_count : 0,
                          st->query_us_max, p50, p90, p99, p999);
}

static int info_commandstats(struct akv_buf *b, const struct akv_cmd_env *env)
{
    const struct akv_cmd *t = akv_cmd_table();
    int rc = 0;

    for (size_t i = 0; rc == 0 && t[i].name; i++) {
        const struct akv_cmdstat *cs = &env->stats.cmd[i];
        char lb[32];
        if (cs->calls == 0 && cs->rejected == 0)
            continue;
        rc = akv_buf_printf(b,
                            "cmdstat_%s:calls=%" PRIu64 ",usec=%" PRIu64 ",usec_per_call=%.2f"
                            ",rejected_calls=%" PRIu64 ",failed_calls=%" PRIu64 "\r\n",
                            lower(t[i].name, lb, sizeof(lb)), cs->calls, cs->usec,
                            cs->calls ? (double)cs->usec / (double)cs->calls : 0.0, cs->rejected,
                            cs->failed);
    }
    return rc;
}

static int info_errorstats(struct akv_buf *b, const struct akv_cmd_env *env)
{
    const struct akv_stats *st = &env->stats;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < st->nerrstat; i++)
        rc = akv_buf_printf(b, "errorstat_%s:count=%" PRIu64 "\r\n", st->errstat[i].code,
                            st->errstat[i].count);
    return rc;
}

/* One line per command called since the counters were zeroed, as Redis 7
 * writes it: percentiles in microseconds, to the nanosecond. */
static int info_latencystats(struct akv_buf *b, const struct akv_cmd_env *env)
{
    enum { NP = sizeof(latency_pcts) / sizeof(latency_pcts[0]) };
    const struct akv_cmd *t = akv_cmd_table();
    int rc = 0;

    for (size_t i = 0; rc == 0 && t[i].name; i++) {
        const struct akv_hist *h = env->cmd_hist[i];
        uint64_t v[NP];
        char lb[32];
        if (!h || h->count == 0)
            continue;
        akv_hist_quantiles(h, latency_pcts, NP, v);
        rc = akv_buf_printf(b, "latency_percentiles_usec_%s:", lower(t[i].name, lb, sizeof(lb)));
        for (size_t k = 0; rc == 0 && k < NP; k++)
            rc = akv_buf_printf(b, "%s%s=%.3f", k ? "," : "", latency_pct_names[k],
                                (double)v[k] / 1000.0);
        rc = rc ? rc : akv_buf_printf(b, "\r\n");
    }
    return rc;
}

static int info_cluster(struct akv_buf *b, const struct akv_cmd_env *env)
{
    return akv_buf_printf(b, "cluster_enabled:%d\r\n", env->cluster != NULL);
}

static int info_store(struct akv_buf *b, const struct akv_cmd_env *env)
{
    int rc = akv_buf_printf(b, "keys:%zu\r\nstore_memory_bytes:%zu\r\n", stores_count(env),
                            stores_memory(env));

    /* What maxmemory (INFO memory) and maxkeys are compared with. */
    if (rc == 0)
        rc = akv_buf_printf(b, "store_memory_used_bytes:%zu\r\nmaxkeys:%d\r\n",
                            stores_memory_used(env), env->config->maxkeys);
    return rc;
}

static int info_keyspace(struct akv_buf *b, const struct akv_cmd_env *env)
{
    int rc = 0;

    /* The lines Redis tools look for; Redis leaves out empty databases. */
    for (uint32_t i = 0; i < env->ndbs && rc == 0; i++) {
        size_t keys = akv_store_count(env->dbs[i]);
        if (keys > 0)
            rc = akv_buf_printf(b, "db%u:keys=%zu,expires=%zu,avg_ttl=0\r\n", (unsigned)i, keys,
                                akv_store_expires(env->dbs[i]));
    }
    return rc;
}

static int info_vectors(struct akv_buf *b, const struct akv_cmd_env *env)
{
    return akv_buf_printf(b,
                          "vocabulary_file:%s\r\n"
                          "vocabulary_size:%zu\r\n"
                          "vector_dim:%" PRIu32 "\r\n"
                          "vocabulary_bytes:%zu\r\n"
                          "vocabulary_load_ms:%.1f\r\n"
                          "rank_kernel:%s\r\n"
                          "attn_kernel:%s\r\n",
                          env->vectors_path ? env->vectors_path : "", akv_vocab_count(env->vocab),
                          akv_vocab_dim(env->vocab), akv_vocab_bytes(env->vocab),
                          env->vocab_load_ms, akv_rank_kernel_name(akv_rank_kernel()),
                          akv_attn_kernel_name());
}

/* The replay's progress, as Redis shows a load's (the ETA from the pace so
 * far), and the records replayed so far (attnkv's). */
static int info_loading(struct akv_buf *b, const struct akv_persist_info *pi)
{
    uint64_t total = pi->loading_total_bytes, done = pi->loading_loaded_bytes;
    uint64_t elapsed_s = pi->loading_elapsed_us / 1000000u;
    uint64_t eta = elapsed_s == 0 ? 1 : elapsed_s * (total - done) / (done + 1);

    return akv_buf_printf(b,
                          "loading_start_time:%" PRId64 "\r\n"
                          "loading_total_bytes:%" PRIu64 "\r\n"
                          "loading_loaded_bytes:%" PRIu64 "\r\n"
                          "loading_loaded_perc:%.2f\r\n"
                          "loading_eta_seconds:%" PRIu64 "\r\n"
                          "loading_loaded_records:%" PRIu64 "\r\n",
                          pi->loading_start_time, total, done,
                          total ? 100.0 * (double)done / (double)total : 100.0, eta,
                          pi->loading_records);
}

static int info_persistence(struct akv_buf *b, const struct akv_cmd_env *env)
{
    struct akv_persist_info pi;
    int rc;

    akv_persist_info(env->persist, &pi);
    /* The rdb_ fields are what Redis tools read: there is no RDB file
     * (BGSAVE rewrites the AOF). */
    rc = akv_buf_printf(b,
                        "loading:%d\r\nasync_loading:0\r\nrdb_bgsave_in_progress:0\r\n"
                        "rdb_last_save_time:%lld\r\n",
                        env->loading, (long long)(env->lastsave ? env->lastsave : env->start_time));
    if (rc < 0)
        return rc;
    if (env->loading && (rc = info_loading(b, &pi)) < 0)
        return rc;
    return akv_buf_printf(
        b,
        "aof_enabled:%d\r\n"
        "aof_rewrite_in_progress:%d\r\n"
        "aof_rewrites:%" PRIu64 "\r\n"
        "aof_last_rewrite_status:%s\r\n"
        "aof_last_bgrewrite_status:%s\r\n"
        "aof_last_rewrite_time_ms:%.1f\r\n"
        "aof_current_size:%" PRIu64 "\r\n"
        "aof_base_size:%" PRIu64 "\r\n"
        "aof_last_write_status:%s\r\n"
        "aof_last_write_error:%s\r\n"
        "aof_pending_bytes:%" PRIu64 "\r\n"
        "aof_fsync:%s\r\n"
        "aof_replayed_records:%" PRIu64 "\r\n"
        "aof_unembeddable_entries:%zu\r\n",
        pi.enabled, pi.rewrite_in_progress, pi.rewrites, pi.last_rewrite_ok ? "ok" : "err",
        pi.last_rewrite_ok ? "ok" : "err", pi.last_rewrite_ms, pi.current_size, pi.base_size,
        pi.write_error ? "err" : "ok", pi.write_error ? strerror(pi.write_error) : "",
        pi.pending_bytes, pi.enabled ? akv_fsync_name(pi.fsync) : "", pi.replayed, pi.unembeddable);
}

/* The INFO sections, in the order INFO prints them. A section is one row:
 * its name (what INFO takes), its title, whether plain INFO (or INFO
 * default) includes it, and the function that writes its fields. INFO all
 * and INFO everything include every row. */
static const struct {
    const char *name, *title;
    int in_default;
    int (*fn)(struct akv_buf *b, const struct akv_cmd_env *env);
} info_sections[] = {
    {"server", "Server", 1, info_server},
    {"clients", "Clients", 1, info_clients},
    {"memory", "Memory", 1, info_memory},
    {"persistence", "Persistence", 1, info_persistence},
    {"stats", "Stats", 1, info_stats},
    {"replication", "Replication", 1, info_replication},
    {"cpu", "CPU", 1, info_cpu},
    {"latency", "Latency", 1, info_latency},
    {"commandstats", "Commandstats", 0, info_commandstats},
    {"errorstats", "Errorstats", 1, info_errorstats},
    {"latencystats", "Latencystats", 0, info_latencystats},
    {"cluster", "Cluster", 1, info_cluster},
    {"store", "Store", 1, info_store},
    {"keyspace", "Keyspace", 1, info_keyspace},
    {"vectors", "Vectors", 1, info_vectors},
};

static int section_wanted(struct akv_cmd_ctx *ctx, size_t sec)
{
    if (ctx->argc == 1)
        return info_sections[sec].in_default;
    for (size_t i = 1; i < ctx->argc; i++) {
        if (arg_is(&ctx->argv[i], info_sections[sec].name) || arg_is(&ctx->argv[i], "all") ||
            arg_is(&ctx->argv[i], "everything") ||
            (arg_is(&ctx->argv[i], "default") && info_sections[sec].in_default))
            return 1;
    }
    return 0;
}

int akv_cmd_do_info(struct akv_cmd_ctx *ctx)
{
    struct akv_buf b;
    size_t used = akv_cmd_used_memory(ctx->env);
    int rc = 0;

    if (used > ctx->env->used_memory_peak)
        ctx->env->used_memory_peak = used;
    akv_cmd_make_ids(ctx->env);
    akv_buf_init(&b);
    for (size_t i = 0; rc == 0 && i < sizeof(info_sections) / sizeof(info_sections[0]); i++) {
        if (!section_wanted(ctx, i))
            continue;
        /* Sections are separated by an empty line, as in Redis. */
        rc = akv_buf_printf(&b, "%s# %s\r\n", b.len ? "\r\n" : "", info_sections[i].title);
        rc = rc ? rc : info_sections[i].fn(&b, ctx->env);
    }
    rc = rc ? rc : akv_reply_verbatim(ctx->out, resp_of(ctx), b.p ? b.p : "", b.len);
    akv_buf_fini(&b);
    return rc;
}

/* SLOWLOG GET [n] | LEN | RESET | HELP, as in Redis: GET replies the n
 * newest entries (default 10; -1 for all), each [id, unix time, duration
 * in µs, [arguments], client address, client name]. */
int akv_cmd_do_slowlog(struct akv_cmd_ctx *ctx)
{
    struct akv_slowlog *sl = &ctx->env->slowlog;
    char sb[AKV_QUOTE_BUF];

    if (arg_is(&ctx->argv[1], "LEN") && ctx->argc == 2)
        return akv_reply_int(ctx->out, (int64_t)sl->len);
    if (arg_is(&ctx->argv[1], "RESET") && ctx->argc == 2) {
        akv_slowlog_reset(sl);
        return akv_reply_status(ctx->out, "OK");
    }
    if (arg_is(&ctx->argv[1], "HELP") && ctx->argc == 2) {
        static const char *const lines[] = {
            ("SLOWLOG GET [count] - the count newest entries (default 10, -1 for all): id, "
             "unix time, microseconds, arguments, client address, client name"),
            "SLOWLOG LEN - how many entries there are",
            "SLOWLOG RESET - forget every entry",
        };
        int rc = akv_reply_array(ctx->out, 3);
        for (size_t i = 0; rc == 0 && i < 3; i++)
            rc = akv_reply_status(ctx->out, lines[i]);
        return rc;
    }
    if (arg_is(&ctx->argv[1], "GET") && ctx->argc <= 3) {
        size_t n = 10, i;
        const struct akv_slowlog_entry *e;
        int rc;

        if (ctx->argc == 3) {
            uint64_t v;
            if (ctx->argv[2].len == 2 && memcmp(ctx->argv[2].p, "-1", 2) == 0)
                n = sl->len;
            else if (parse_u64(&ctx->argv[2], &v) == 0)
                n = v < sl->len ? (size_t)v : sl->len;
            else
                return akv_reply_error(ctx->out, "ERR count should be greater than or equal to "
                                                 "-1");
        }
        if (n > sl->len)
            n = sl->len;
        rc = akv_reply_array(ctx->out, n);
        for (i = 0, e = sl->newest; rc == 0 && i < n && e && !reply_over_limit(ctx);
             i++, e = e->older) {
            rc = akv_reply_array(ctx->out, 6);
            rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)e->id);
            rc = rc ? rc : akv_reply_int(ctx->out, e->time);
            rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)e->duration_us);
            rc = rc ? rc : akv_reply_array(ctx->out, e->argc);
            for (size_t a = 0; rc == 0 && a < e->argc; a++)
                rc = akv_reply_bulk(ctx->out, e->argv[a].p, e->argv[a].len);
            rc = rc ? rc : akv_reply_bulk_str(ctx->out, e->peer);
            rc = rc ? rc : akv_reply_bulk_str(ctx->out, "");
        }
        return rc;
    }
    return akv_reply_errorf(ctx->out,
                            "ERR unknown subcommand or wrong number of arguments for '%s'; "
                            "SLOWLOG takes GET [count], LEN, RESET or HELP",
                            show(&ctx->argv[1], sb));
}

int akv_cmd_do_bgrewriteaof(struct akv_cmd_ctx *ctx)
{
    int rc = akv_persist_rewrite_start(ctx->env->persist);

    if (rc == -ENOTSUP)
        return akv_reply_error(ctx->out, "ERR appendonly is off: there is no AOF to rewrite");
    if (rc == -EBUSY)
        return akv_reply_error(ctx->out,
                               "ERR Background append only file rewriting already in progress");
    if (rc == -EINPROGRESS) /* inside EXEC: it starts once the transaction is logged */
        return akv_reply_status(ctx->out, "Background append only file rewriting scheduled");
    if (rc < 0)
        return akv_reply_errorf(ctx->out, "ERR cannot start the AOF rewrite: %s", strerror(-rc));
    return akv_reply_status(ctx->out, "Background append only file rewriting started");
}

/* BGSAVE [SCHEDULE]: attnkv's only file is the AOF, so a background save is
 * a background rewrite of it. SCHEDULE is accepted for clients; a rewrite
 * in progress already makes a save. */
int akv_cmd_do_bgsave(struct akv_cmd_ctx *ctx)
{
    int rc;

    if (ctx->argc > 2 || (ctx->argc == 2 && !arg_is(&ctx->argv[1], "SCHEDULE")))
        return reply_syntax(ctx);
    rc = akv_persist_rewrite_start(ctx->env->persist);
    if (rc == -ENOTSUP)
        return akv_reply_error(ctx->out,
                               "ERR appendonly is off: attnkv saves only to the append-only "
                               "file, so there is nothing to save to");
    if (rc == -EBUSY)
        return ctx->argc == 2
                   ? akv_reply_status(ctx->out, "Background saving scheduled")
                   : akv_reply_error(ctx->out,
                                     "ERR Background append only file rewriting already in "
                                     "progress");
    if (rc < 0)
        return akv_reply_errorf(ctx->out, "ERR cannot start the AOF rewrite: %s", strerror(-rc));
    return akv_reply_status(ctx->out, "Background saving started");
}

/* SAVE would write the data set while every client waits: the stall rule
 * forbids it, and with the AOF every acknowledged write is in the file
 * already. */
int akv_cmd_do_save(struct akv_cmd_ctx *ctx)
{
    return akv_reply_error(ctx->out,
                           "ERR SAVE would block the server: every write is in the append-only "
                           "file already; BGSAVE or BGREWRITEAOF compacts it in the background");
}

int akv_cmd_do_lastsave(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd_env *env = ctx->env;

    return akv_reply_int(ctx->out, (int64_t)(env->lastsave ? env->lastsave : env->start_time));
}

/* TIME: [unix seconds, microseconds], as bulk strings. */
int akv_cmd_do_time(struct akv_cmd_ctx *ctx)
{
    struct timespec ts;
    char sec[24], usec[24];
    int rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(sec, sizeof(sec), "%lld", (long long)ts.tv_sec);
    snprintf(usec, sizeof(usec), "%ld", ts.tv_nsec / 1000L);
    rc = akv_reply_array(ctx->out, 2);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, sec);
    return rc ? rc : akv_reply_bulk_str(ctx->out, usec);
}

/* WAIT numreplicas timeout: there are no replicas, so 0 at once (Redis
 * would wait out the timeout for a replica that cannot come). */
int akv_cmd_do_wait(struct akv_cmd_ctx *ctx)
{
    int64_t n, ms;

    if (parse_i64(&ctx->argv[1], &n) < 0)
        return reply_not_integer(ctx);
    if (parse_i64(&ctx->argv[2], &ms) < 0)
        return akv_reply_error(ctx->out, "ERR timeout is not an integer or out of range");
    if (ms < 0)
        return akv_reply_error(ctx->out, "ERR timeout is negative");
    return akv_reply_int(ctx->out, akv_cmd_cluster_holders(ctx->env, ctx->sess->cl_last_index));
}

/* SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] | ABORT. The shutdown is SIGTERM's:
 * the requests in hand are finished (NOW: connections are closed at once),
 * the AOF is written and fsync'd, and attnkvd exits 0. On success there is
 * no reply: the connection closes, as Redis's does. SAVE needs the AOF;
 * an AOF that cannot be written, or that appendonly yes is still creating,
 * refuses the shutdown, unless FORCE. There
 * is nothing to ABORT: once begun, the shutdown reads no more requests. */
int akv_cmd_do_shutdown(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    int nosave = 0, save = 0, now = 0, force = 0, abort_ = 0, werr;

    if (ctx->argc > 5)
        return reply_syntax(ctx);
    for (size_t i = 1; i < ctx->argc; i++) {
        const struct akv_slice *a = &ctx->argv[i];
        if (arg_is(a, "NOSAVE"))
            nosave = 1;
        else if (arg_is(a, "SAVE"))
            save = 1;
        else if (arg_is(a, "NOW"))
            now = 1;
        else if (arg_is(a, "FORCE"))
            force = 1;
        else if (arg_is(a, "ABORT"))
            abort_ = 1;
        else
            return reply_syntax(ctx);
    }
    if ((abort_ && ctx->argc > 2) || (nosave && save))
        return reply_syntax(ctx);
    if (abort_)
        return akv_reply_error(ctx->out, "ERR No shutdown in progress.");
    if (!env->shutdown)
        return akv_reply_error(ctx->out, "ERR SHUTDOWN is not available here");
    werr = akv_persist_write_error(env->persist);
    if (!force && save && !env->persist) {
        akv_log(AKV_LOG_WARNING,
                "SHUTDOWN SAVE refused: appendonly is off, so nothing can be saved (use "
                "NOSAVE, or FORCE)");
        return akv_reply_error(ctx->out, "ERR Errors trying to SHUTDOWN. Check logs.");
    }
    if (!force && env->persist) {
        struct akv_persist_info pi;
        akv_persist_info(env->persist, &pi);
        if (pi.no_file) {
            /* As Redis: exiting would lose the data appendonly yes was
             * asked to keep. */
            akv_log(AKV_LOG_WARNING,
                    "SHUTDOWN refused: writing the initial AOF (appendonly was switched on); "
                    "SHUTDOWN FORCE exits anyway");
            return akv_reply_error(ctx->out, "ERR Errors trying to SHUTDOWN. Check logs.");
        }
    }
    if (!force && werr) {
        akv_log(AKV_LOG_WARNING,
                "SHUTDOWN refused: the append-only file cannot be written (%s); SHUTDOWN "
                "FORCE exits anyway",
                strerror(werr));
        return akv_reply_error(ctx->out, "ERR Errors trying to SHUTDOWN. Check logs.");
    }
    akv_log(AKV_LOG_NOTICE, "SHUTDOWN from client %" PRIu64 " (%s)%s", ctx->sess->id,
            ctx->sess->peer, now ? ": closing every connection now" : "");
    env->shutdown(env, now);
    /* Nothing more from this connection; it closes once drained. */
    ctx->close_after_reply = 1;
    return 0;
}

/* ---- LATENCY ----------------------------------------------------------- */

static int latency_doctor(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd_env *env = ctx->env;
    struct akv_buf b;
    int rc = 0, any = 0;

    akv_buf_init(&b);
    if (env->config->latency_monitor_threshold == 0)
        rc = akv_buf_printf(&b, "Latency monitoring is disabled: CONFIG SET "
                                "latency-monitor-threshold <milliseconds> enables it.\n");
    else
        rc = akv_buf_printf(&b, "Latency monitoring threshold: %d ms.\n",
                            env->config->latency_monitor_threshold);
    for (unsigned e = 0; rc == 0 && e < AKV_LATENCY_EVENTS; e++) {
        struct akv_latency_sample h[AKV_LATENCY_SAMPLES];
        size_t n = akv_latency_history(&env->latency, e, h);
        uint64_t sum = 0;
        if (n == 0)
            continue;
        any = 1;
        for (size_t i = 0; i < n; i++)
            sum += h[i].ms;
        rc = akv_buf_printf(
            &b, "%s: %zu latency spikes (average %" PRIu64 " ms, worst %" PRIu32 " ms).\n",
            akv_latency_event_name(e), n, sum / n, env->latency.ev[e].max);
    }
    if (rc == 0 && !any && env->config->latency_monitor_threshold > 0)
        rc = akv_buf_printf(&b, "No latency spikes were observed.\n");
    if (rc == 0 && any)
        rc = akv_buf_printf(&b, "For \"command\" spikes, SLOWLOG GET names the commands; QUERY "
                                "time includes waiting for a worker (INFO stats: jobs_waiting).\n");
    rc = rc ? rc : akv_reply_verbatim(ctx->out, resp_of(ctx), b.p, b.len);
    akv_buf_fini(&b);
    return rc;
}

int akv_cmd_do_latency(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    const struct akv_subcmd *sc;
    int rc = akv_cmd_subcommand(ctx, &sc);

    if (rc)
        return rc < 0 ? rc : 0;
    if (strcmp(sc->name, "LATEST") == 0) {
        size_t n = 0;
        for (unsigned e = 0; e < AKV_LATENCY_EVENTS; e++)
            n += akv_latency_latest(&env->latency, e) != NULL;
        rc = akv_reply_array(ctx->out, n);
        for (unsigned e = 0; rc == 0 && e < AKV_LATENCY_EVENTS; e++) {
            const struct akv_latency_sample *l = akv_latency_latest(&env->latency, e);
            if (!l)
                continue;
            rc = akv_reply_array(ctx->out, 4);
            rc = rc ? rc : akv_reply_bulk_str(ctx->out, akv_latency_event_name(e));
            rc = rc ? rc : akv_reply_int(ctx->out, l->time);
            rc = rc ? rc : akv_reply_int(ctx->out, l->ms);
            rc = rc ? rc : akv_reply_int(ctx->out, env->latency.ev[e].max);
        }
        return rc;
    }
    if (strcmp(sc->name, "HISTORY") == 0) {
        struct akv_latency_sample h[AKV_LATENCY_SAMPLES];
        int e = akv_latency_event_lookup(ctx->argv[2].p, ctx->argv[2].len);
        size_t n = e < 0 ? 0 : akv_latency_history(&env->latency, (unsigned)e, h);
        rc = akv_reply_array(ctx->out, n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = akv_reply_array(ctx->out, 2);
            rc = rc ? rc : akv_reply_int(ctx->out, h[i].time);
            rc = rc ? rc : akv_reply_int(ctx->out, h[i].ms);
        }
        return rc;
    }
    if (strcmp(sc->name, "RESET") == 0) {
        int64_t n = 0;
        if (ctx->argc == 2) {
            for (unsigned e = 0; e < AKV_LATENCY_EVENTS; e++)
                n += akv_latency_reset(&env->latency, e);
        } else {
            for (size_t i = 2; i < ctx->argc; i++) {
                int e = akv_latency_event_lookup(ctx->argv[i].p, ctx->argv[i].len);
                if (e >= 0)
                    n += akv_latency_reset(&env->latency, (unsigned)e);
            }
        }
        return akv_reply_int(ctx->out, n);
    }
    if (strcmp(sc->name, "DOCTOR") == 0)
        return latency_doctor(ctx);
    return akv_cmd_reply_sub_help(ctx, "LATENCY");
}
