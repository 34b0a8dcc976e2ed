/*
 * main.c - attnkvd: command line, configuration, start-up and exit.
 *
 * The command line is redis-server's: an optional configuration file first
 * (or -c/--config), then "--directive value..." for any directive of the
 * file, besides the short flags (akv_config_args_parse in config.c parses
 * it). Order of precedence: built-in defaults, then the file, then the
 * command line, applied by akv_config_args_apply so that an option is
 * checked exactly like the same line in the file.
 *
 * Threading: main runs on the thread that becomes the loop thread; the
 * worker threads are started by the server (src/server/server.c) and joined before
 * akv_server_run returns.
 *
 * Start-up order: configuration, vectors, stores, the AOF opened and
 * mapped (akv_persist_begin), the listeners, then the replay of the AOF in
 * slices of LOAD_SLICE_US on the loop thread (an idle handle, so the loop
 * polls without blocking between slices): clients are accepted from the
 * start and get -LOADING for data commands until the replay ends (cmd.c,
 * env->loading). A damaged file stops the daemon as SIGTERM does, with
 * exit status 1; a shutdown during the replay abandons it, writing
 * nothing.
 *
 * Under a service manager (src/server/service.c): STATUS= lines while the
 * vectors load and the AOF replays, READY=1 once the replay is over (the
 * listeners accept before), STOPPING=1 when shutdown starts
 * (server.c). SIGHUP reopens the log file only; SIGUSR2 and CONFIG RELOAD
 * re-read the configuration file (akv_cmd_config_reload) and apply the
 * directives that may change at run time; directives given on the command
 * line still override the file.
 *
 * --test-config checks the settings, opens the vectors and runs the checks
 * of start-up's needs (preflight.c: dir, logfile, bind/port, the AOF),
 * reporting every problem, then exits.
 *
 * Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), after --help,
 * --version and a successful --test-config; 1 for a bad configuration or
 * option value, a vectors file that cannot be opened, a listener that
 * cannot be set up, an AOF that cannot be loaded, or any --test-config
 * problem; 2 for a command-line usage error (an unknown option, a missing
 * value, a stray argument).
 *
 * Ownership: the parsed command line (struct akv_config_args) lives in
 * main's frame, pointing into argv, until main returns; the reload reads it
 * through env.args.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "attnkv/nbcache.h"
#include "attnkv/store.h"
#include "attnkv/vocab.h"
#include "cluster/cluster.h"
#include "server/cmd.h"
#include "server/config.h"
#include "util/log.h"
#include "persist/persist.h"
#include "server/preflight.h"
#include "server/service.h"
#include "server/server.h"

#include "attnkv/version.h"

#define EXIT_USAGE 2
/* How long one slice of the AOF replay may keep the loop thread: the
 * other clients wait at most this (plus their own command) for a reply. */
#define LOAD_SLICE_US 2000
/* How often the replay's progress goes to the service manager (STATUS=). */
#define LOAD_STATUS_MS 1000

static void usage(FILE *f)
{
    fprintf(f, "usage: attnkvd [FILE] [OPTIONS] [--DIRECTIVE VALUE...]...\n"
               "\n"
               "Serves fuzzy key/value lookups by attention over word vectors, speaking the\n"
               "Redis protocol (RESP2, RESP3 and inline commands).\n"
               "\n"
               "  FILE, -c, --config FILE\n"
               "                       read settings from FILE (see conf/attnkvd.conf);\n"
               "                       '-' reads them from standard input\n"
               "  -p, --port N         TCP port (default 6479; 0 picks a free port)\n"
               "  -b, --bind ADDR...   addresses to listen on (default 127.0.0.1); -b takes\n"
               "                       one, and may be repeated\n"
               "  -V, --vectors FILE   word-vector file made by attnkv-import\n"
               "  -l, --loglevel L     debug, verbose, notice (default) or warning\n"
               "  -w, --workers N      query threads (default 0: one per CPU)\n"
               "  --DIRECTIVE VALUE... any directive of the configuration file, checked as\n"
               "                       its line in the file would be: --appendonly no,\n"
               "                       --dir /tmp/x, --logfile \"\", --bind ::1 127.0.0.1,\n"
               "                       --client-output-buffer-limit normal 0 0 0\n"
               "  -t, --test-config    check the settings, the vectors file, dir, logfile,\n"
               "                       the addresses and the append-only file, then exit\n"
               "  -v, --version        print the version and exit\n"
               "  -h, --help           print this help and exit\n"
               "\n"
               "A directive's values run up to the next option (an argument starting with\n"
               "'--', or a short flag above). The command line overrides the file, also\n"
               "when it is reloaded. SIGINT or SIGTERM shut the daemon down after the\n"
               "work in progress; SIGHUP reopens the log file (and nothing else);\n"
               "SIGUSR2 or CONFIG RELOAD re-read the file and apply the settings that\n"
               "can change at run time. Under systemd, attnkvd reports readiness\n"
               "($NOTIFY_SOCKET), serves sockets passed in $LISTEN_FDS and answers the\n"
               "watchdog ($WATCHDOG_USEC). See attnkvd(8).\n");
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Opens the vocabulary, explaining how to get one when it is missing. */
static int open_vectors(const char *path, struct akv_vocab **voc, double *ms)
{
    char err[512] = "";
    double t0 = now_ms();
    int rc = akv_vocab_open(voc, path, 0, err, sizeof(err));

    *ms = now_ms() - t0;
    if (rc == 0)
        return 0;
    if (rc == -ENOENT) {
        fprintf(stderr,
                "attnkvd: the vectors file %s does not exist.\n"
                "  Run scripts/fetch-vectors to download GloVe 6B 100d and convert it to\n"
                "  that default location, or point --vectors, the 'vectors' directive or\n"
                "  $AKV_VECTORS at a file made with attnkv-import.\n",
                path);
    } else {
        fprintf(stderr, "attnkvd: cannot open the vectors file: %s\n",
                err[0] ? err : strerror(-rc));
    }
    return rc;
}

/* The replay of the AOF in slices, on the loop thread. */
struct loading {
    uv_idle_t idle;
    int idle_ready;
    struct akv_cmd_env *env;
    struct akv_server *srv;
    double status_ms; /* when the last STATUS= line went out */
    int failed;       /* the file could not be loaded: exit 1 */
};

/* The daemon is ready: logs it and tells the service manager. */
static void announce_ready(const struct akv_cmd_env *env)
{
    size_t keys = 0;

    for (uint32_t i = 0; i < env->ndbs; i++)
        keys += akv_store_count(env->dbs[i]);
    akv_log(AKV_LOG_NOTICE, "ready: %u worker threads, maxclients %d", env->workers,
            env->config->maxclients);
    akv_service_notify("READY=1");
    akv_service_status("Ready: port %d, %zu keys, %u worker threads", env->tcp_port, keys,
                       env->workers);
}

static void on_load_slice(uv_idle_t *h)
{
    struct loading *ld = h->data;
    struct akv_cmd_env *env = ld->env;
    char err[512] = "";
    int rc;

    if (akv_server_stopping(ld->srv)) {
        /* A shutdown: the file stays as it is (the replay wrote nothing). */
        uv_idle_stop(h);
        return;
    }
    rc = akv_persist_load(env->persist, LOAD_SLICE_US, err, sizeof(err));
    if (rc > 0) {
        double now = now_ms();
        if (now - ld->status_ms >= LOAD_STATUS_MS) {
            struct akv_persist_info pi;
            akv_persist_info(env->persist, &pi);
            ld->status_ms = now;
            akv_service_status("Loading the append-only file: %.0f%% (%" PRIu64 " of %" PRIu64
                               " bytes, %" PRIu64 " records)",
                               pi.loading_total_bytes ? 100.0 * (double)pi.loading_loaded_bytes /
                                                            (double)pi.loading_total_bytes
                                                      : 100.0,
                               pi.loading_loaded_bytes, pi.loading_total_bytes, pi.loading_records);
        }
        return;
    }
    uv_idle_stop(h);
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "cannot load the append-only file: %s", err);
        ld->failed = 1;
        akv_server_stop(ld->srv);
        return;
    }
    env->loading = 0;
    announce_ready(env);
}

/* Cluster mode: a node that cannot stay in its cluster stops the daemon. */
static struct akv_server *cluster_srv;
static int cluster_failed;

static void on_cluster_fatal(void *arg, const char *msg)
{
    (void)arg;
    akv_log(AKV_LOG_WARNING, "cluster: %s; shutting down", msg);
    cluster_failed = 1;
    if (cluster_srv)
        akv_server_stop(cluster_srv);
}

/* Starts this node of the cluster (cluster-enabled yes), once the server
 * listens (its client address is announced to the other nodes). */
static int start_cluster(struct akv_cluster **out, uv_loop_t *loop, struct akv_cmd_env *env,
                         const struct akv_config *cfg, const struct akv_vocab *voc)
{
    struct akv_cluster_hooks h;
    struct akv_cluster_opts o;
    char dir[4096], announce[192], err[512] = "";
    const char *host = cfg->nbind > 0 ? cfg->bind[0] : "127.0.0.1";
    int rc;

    memset(&o, 0, sizeof(o));
    akv_cmd_cluster_hooks(env, &h);
    h.fatal = on_cluster_fatal;
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0 || strcmp(host, "::") == 0 ||
        strcmp(host, "-::*") == 0)
        host = "127.0.0.1";
    if (cfg->cluster_announce)
        snprintf(announce, sizeof announce, "%s", cfg->cluster_announce);
    else
        snprintf(announce, sizeof announce, "%s:%d", host, env->tcp_port);
    if (cfg->cluster_dir[0] == '/')
        snprintf(dir, sizeof dir, "%s", cfg->cluster_dir);
    else
        snprintf(dir, sizeof dir, "%s/%s", cfg->dir, cfg->cluster_dir);
    o.id = (uint64_t)cfg->cluster_id;
    o.raft_addr = cfg->cluster_bind;
    o.client_addr = announce;
    o.dir = dir;
    o.join = cfg->cluster_join;
    o.password = (const char *const *)&cfg->requirepass;
    o.election_ms = (unsigned)cfg->cluster_election_timeout;
    o.heartbeat_ms = o.election_ms / 10 > 10 ? o.election_ms / 10 : 10;
    o.snapshot_threshold = (unsigned)cfg->cluster_snapshot_threshold;
    o.snapshot_trailing = (unsigned)cfg->cluster_snapshot_trailing;
    akv_vocab_checksums(voc, &o.vocab_meta, &o.vocab_data);
    o.vocab_words = akv_vocab_count(voc);
    o.vocab_dim = (uint32_t)akv_vocab_dim(voc);
    rc = akv_cluster_create(out, loop, &o, &h, err, sizeof(err));
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "cluster: %s", err);
        akv_cmd_cluster_detach(env); /* state a restore may have made */
        if (*out)
            akv_cluster_close(*out, NULL, NULL);
        return rc;
    }
    rc = akv_cmd_cluster_attach(env, *out);
    if (rc < 0) {
        akv_cluster_close(*out, NULL, NULL);
        return rc;
    }
    akv_log(AKV_LOG_NOTICE, "cluster mode: node %d, raft %s, clients at %s, state in %s%s%s",
            cfg->cluster_id, cfg->cluster_bind, announce, dir,
            cfg->cluster_join ? ", joining through " : "",
            cfg->cluster_join ? cfg->cluster_join : "");
    return 0;
}

int main(int argc, char **argv)
{
    struct akv_config_args args;
    int status = 1, rc;
    struct akv_config cfg;
    struct akv_vocab *voc = NULL;
    struct akv_store **dbs = NULL;
    uint32_t ndbs = 0;
    struct akv_nbcache *nbcache = NULL;
    struct akv_server *srv = NULL;
    struct akv_persist *persist = NULL;
    struct akv_cluster *cluster = NULL;
    struct akv_cmd_env env;
    struct loading loading = {0};
    const char *from; /* where the settings came from, for messages */
    uv_loop_t loop;
    int loop_ready = 0;
    char err[512] = "";

    rc = akv_config_args_parse(&args, argc, (const char *const *)argv, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "attnkvd: %s\n", err);
        if (rc == -ENOMEM)
            return 1;
        fprintf(stderr, "Try 'attnkvd --help'.\n");
        return EXIT_USAGE;
    }
    if (args.version || args.help) {
        if (args.version)
            printf("attnkvd %s\n", AKV_VERSION);
        else
            usage(stdout);
        akv_config_args_fini(&args);
        return 0;
    }

    memset(&env, 0, sizeof(env));
    akv_slowlog_init(&env.slowlog);
    if (akv_config_init(&cfg) < 0) {
        fprintf(stderr, "attnkvd: out of memory\n");
        akv_config_args_fini(&args);
        return 1;
    }
    if ((args.config_file && akv_config_load_file(&cfg, args.config_file, err, sizeof(err)) < 0) ||
        akv_config_args_apply(&cfg, &args, err, sizeof(err)) < 0) {
        fprintf(stderr, "attnkvd: %s\n", err);
        goto out;
    }
    from = cfg.config_file ? cfg.config_file : args.config_file ? "standard input" : NULL;

    if (!args.test_config) {
        rc = akv_service_open();
        if (rc < 0)
            fprintf(stderr, "attnkvd: NOTIFY_SOCKET unusable (%s); not notifying\n", strerror(-rc));
    }
    akv_service_status("Loading the vectors from %s", cfg.vectors);
    if (args.test_config) {
        /* Every check, so that one run lists every problem. */
        int bad = open_vectors(cfg.vectors, &voc, &env.vocab_load_ms) < 0;
        if (bad) {
            char where[512];
            if (akv_config_where(&cfg, &args, "vectors", where, sizeof(where)) == 0)
                fprintf(stderr, "attnkvd: vectors '%s' (from %s): cannot be opened\n", cfg.vectors,
                        where);
        }
        bad += akv_preflight_check(&cfg, &args, stderr);
        if (bad == 0)
            printf("attnkvd: configuration OK%s%s; vectors %s: %zu words, dimension %u\n",
                   from ? " in " : "", from ? from : "", cfg.vectors, akv_vocab_count(voc),
                   (unsigned)akv_vocab_dim(voc));
        status = bad ? 1 : 0;
        goto out;
    }
    if (open_vectors(cfg.vectors, &voc, &env.vocab_load_ms) < 0)
        goto out;

    akv_log_set_level(cfg.loglevel);
    /* The log may never be written into the files the data lives in. */
    {
        char *aof = NULL;
        if (asprintf(&aof, "%s/%s", cfg.dir, cfg.appendfilename) < 0 || akv_log_protect(aof) < 0 ||
            akv_log_protect(cfg.vectors) < 0) {
            free(aof);
            fprintf(stderr, "attnkvd: out of memory\n");
            goto out;
        }
        free(aof);
    }
    rc = akv_log_open(cfg.logfile);
    if (rc < 0) {
        fprintf(stderr, "attnkvd: cannot open the log file %s: %s\n", cfg.logfile,
                akv_log_strerror(rc));
        goto out;
    }
    /* A client that disconnects must cost us a write error, not the process. */
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit must make AOF writes fail with EFBIG (and writes be
     * refused with MISCONF until it is lifted), not kill the daemon. */
    signal(SIGXFSZ, SIG_IGN);

    akv_log(AKV_LOG_NOTICE, "attnkvd %s starting (pid %ld)%s%s", AKV_VERSION, (long)getpid(),
            from ? ", config " : "", from ? from : "");
    akv_log(AKV_LOG_NOTICE, "vectors %s: %zu words, dimension %u, loaded in %.1f ms", cfg.vectors,
            akv_vocab_count(voc), (unsigned)akv_vocab_dim(voc), env.vocab_load_ms);

    akv_service_status("Vectors loaded (%zu words, dimension %u); starting", akv_vocab_count(voc),
                       (unsigned)akv_vocab_dim(voc));
    /* One store per database, each its own attention set. */
    dbs = calloc((size_t)cfg.databases, sizeof(*dbs));
    if (!dbs) {
        akv_log(AKV_LOG_WARNING, "out of memory for %d databases", cfg.databases);
        goto out;
    }
    for (ndbs = 0; ndbs < (uint32_t)cfg.databases; ndbs++) {
        rc = akv_store_create(&dbs[ndbs], voc);
        if (rc < 0) {
            akv_log(AKV_LOG_WARNING, "cannot create the store: %s", strerror(-rc));
            goto out;
        }
        akv_store_set_clock(dbs[ndbs], &env.now_ms);
    }
    akv_cmd_clock(&env);
    rc = uv_loop_init(&loop);
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "cannot create the event loop: %s", uv_strerror(rc));
        goto out;
    }
    loop_ready = 1;

    /* The AOF is opened and mapped before anything listens; it replays
     * once the listeners are up (on_load_slice). */
    if (cfg.cluster_enabled && cfg.appendonly) {
        akv_log(AKV_LOG_NOTICE, "cluster mode: the Raft log in cluster-dir keeps the data; "
                                "appendonly does not apply");
    } else if (cfg.appendonly) {
        akv_service_status("Opening the append-only file %s/%s", cfg.dir, cfg.appendfilename);
        struct akv_persist_opts po = {
            .dir = cfg.dir,
            .filename = cfg.appendfilename,
            .fsync = cfg.appendfsync,
            .rewrite_percentage = &cfg.aof_rewrite_percentage,
            .rewrite_min_size = &cfg.aof_rewrite_min_size,
            .preamble = &cfg.aof_use_rdb_preamble,
        };
        rc = akv_persist_begin(&persist, &loop, dbs, ndbs, &po, err, sizeof(err));
        if (rc < 0) {
            akv_log(AKV_LOG_WARNING, "cannot load the append-only file: %s", err);
            goto out;
        }
    } else {
        akv_log(AKV_LOG_NOTICE, "appendonly is off: nothing written survives a restart");
    }

    if (cfg.neighbor_lists > 0 && akv_nbcache_create(&nbcache, (size_t)cfg.neighbor_lists) < 0) {
        akv_log(AKV_LOG_WARNING, "out of memory for %d neighbor lists", cfg.neighbor_lists);
        goto out;
    }
    env.config = &cfg;
    env.args = &args;
    env.vocab = voc;
    env.nbcache = nbcache;
    env.dbs = dbs;
    env.ndbs = ndbs;
    env.persist = persist;
    env.loading = akv_persist_loading(persist);
    env.vectors_path = cfg.vectors;
    env.start_time = time(NULL);
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        env.start_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    rc = akv_server_create(&srv, &loop, &env, &cfg);
    if (rc < 0)
        goto out;
    cluster_srv = srv;
    if (cfg.cluster_enabled && start_cluster(&cluster, &loop, &env, &cfg, voc) < 0) {
        akv_server_stop(srv);
        loading.failed = 1;
    }
    /* The listeners accept from here on (the kernel queues connections
     * until the loop runs). */
    if (env.loading) {
        loading.env = &env;
        loading.srv = srv;
        loading.status_ms = now_ms();
        rc = uv_idle_init(&loop, &loading.idle);
        if (rc < 0) {
            akv_log(AKV_LOG_WARNING, "cannot start the replay: %s", uv_strerror(rc));
            akv_server_stop(srv);
            loading.failed = 1;
        } else {
            loading.idle_ready = 1;
            loading.idle.data = &loading;
            /* Not a reason to keep the loop running once the server stops. */
            uv_unref((uv_handle_t *)&loading.idle);
            uv_idle_start(&loading.idle, on_load_slice);
            akv_service_status("Replaying the append-only file %s/%s", cfg.dir, cfg.appendfilename);
            akv_log(AKV_LOG_NOTICE,
                    "replaying the append-only file; clients get -LOADING until it is over");
        }
    } else if (!loading.failed) {
        announce_ready(&env);
    }

    akv_server_run(srv);
    status = loading.failed || cluster_failed ? 1 : 0;
    if (env.loading && !loading.failed)
        akv_log(AKV_LOG_NOTICE, "shut down while the append-only file was loading: replay "
                                "abandoned, the file is left as it was");

out:
    if (loading.idle_ready) {
        uv_close((uv_handle_t *)&loading.idle, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (env.config)
        persist = env.persist; /* CONFIG SET appendonly may have replaced it */
    if (persist) {
        /* After the last client: write and fsync what is left, stop the
         * writer, and let the loop close the AOF's handles. */
        akv_persist_close(persist);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (cluster) {
        akv_cmd_cluster_close(&env); /* once more, in case the server never ran */
        uv_run(&loop, UV_RUN_DEFAULT);
        akv_cmd_cluster_detach(&env);
        akv_cluster_destroy(cluster);
    }
    akv_server_destroy(srv);
    if (loop_ready) {
        rc = uv_loop_close(&loop);
        if (rc < 0) {
            /* A handle still open is a bug in the shutdown sequence. */
            akv_log(AKV_LOG_WARNING, "event loop not closed cleanly: %s", uv_strerror(rc));
            status = 1;
        }
    }
    akv_persist_destroy(persist);
    akv_slowlog_reset(&env.slowlog);
    for (uint32_t i = 0; dbs && i < ndbs; i++)
        akv_store_destroy(dbs[i]);
    free(dbs);
    akv_cmd_env_fini(&env);
    akv_nbcache_destroy(nbcache);
    akv_vocab_destroy(voc);
    akv_service_close();
    if (status == 0 && !args.test_config)
        akv_log(AKV_LOG_NOTICE, "bye");
    akv_log_close();
    akv_config_fini(&cfg);
    akv_config_args_fini(&args);
    return status;
}
