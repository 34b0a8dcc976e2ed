/*
 * main.c - attnkvd: command-line flags, configuration, start-up and exit.
 *
 * Order of precedence: built-in defaults, then the config file (--config),
 * then flags, each applied through akv_config_set so that a flag is checked
 * exactly like the same directive in the file.
 *
 * Threading: main runs on the thread that becomes the loop thread; the
 * worker threads are started by the server (src/server/server.c) and joined before
 * akv_server_run returns.
 *
 * Under a service manager (src/server/service.c): STATUS= lines while the vectors
 * load, READY=1 once the listeners accept, STOPPING=1 when shutdown starts
 * (server.c). SIGHUP re-reads the configuration file (reload_config below)
 * and applies the directives that may change at run time; flags given at
 * start-up still override the file.
 *
 * Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), after --help,
 * --version and a successful --test-config; 1 for a bad configuration or
 * flag, a vectors file that cannot be opened, or a listener that cannot be
 * set up; 2 for a command-line usage error.
 */
#include <errno.h>
#include <getopt.h>
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
#include "server/cmd.h"
#include "server/config.h"
#include "util/log.h"
#include "persist/persist.h"
#include "server/service.h"
#include "server/server.h"

#include "attnkv/version.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fprintf(f, "usage: attnkvd [OPTIONS]\n"
               "\n"
               "Serves fuzzy key/value lookups by attention over word vectors, speaking the\n"
               "Redis protocol (RESP2, RESP3 and inline commands).\n"
               "\n"
               "  -c, --config FILE    read settings from FILE (see conf/attnkvd.conf)\n"
               "  -p, --port N         TCP port (default 6479; 0 picks a free port)\n"
               "  -b, --bind ADDR      address to listen on; repeat for several\n"
               "  -V, --vectors FILE   word-vector file made by attnkv-import\n"
               "  -l, --loglevel L     debug, verbose, notice (default) or warning\n"
               "  -w, --workers N      query threads (default 0: one per CPU)\n"
               "  -t, --test-config    check the settings and the vectors file, then exit\n"
               "  -v, --version        print the version and exit\n"
               "  -h, --help           print this help and exit\n"
               "\n"
               "Flags override the config file. SIGINT or SIGTERM shut the daemon down\n"
               "after the work in progress; SIGHUP reopens the log file and reloads the\n"
               "settings that can change at run time. Under systemd, attnkvd reports\n"
               "readiness ($NOTIFY_SOCKET), serves sockets passed in $LISTEN_FDS and\n"
               "answers the watchdog ($WATCHDOG_USEC). See attnkvd(8).\n");
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Applies one flag as a directive; prints "attnkvd: --flag: reason". */
static int apply_flag(struct akv_config *cfg, const char *flag, const char *name, size_t argc,
                      const char *const *argv)
{
    char err[512] = "";

    if (akv_config_set(cfg, name, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "attnkvd: --%s: %s\n", flag, err[0] ? err : "invalid value");
        return -1;
    }
    return 0;
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

/* The command-line flags that set directives, kept so that a reload can
 * apply them over the file again. */
struct flags {
    const char *port, *vectors, *loglevel, *workers;
    const char *binds[AKV_CONFIG_BIND_MAX];
    size_t nbinds;
};

/* Applies the flags to cfg; prints "attnkvd: --flag: reason" if one is bad. */
static int apply_flags(struct akv_config *cfg, const struct flags *f)
{
    if ((f->port && apply_flag(cfg, "port", "port", 1, &f->port) < 0) ||
        (f->nbinds && apply_flag(cfg, "bind", "bind", f->nbinds, f->binds) < 0) ||
        (f->vectors && apply_flag(cfg, "vectors", "vectors", 1, &f->vectors) < 0) ||
        (f->loglevel && apply_flag(cfg, "loglevel", "loglevel", 1, &f->loglevel) < 0) ||
        (f->workers && apply_flag(cfg, "workers", "workers", 1, &f->workers) < 0))
        return -1;
    return 0;
}

struct reload_ctx {
    struct akv_cmd_env *env;
    const struct flags *flags;
};

/* SIGHUP, on the loop thread: reads the configuration file again into a
 * fresh struct (so a bad file changes nothing), applies the flags over it,
 * then copies every run-time directive whose value changed into the live
 * settings and makes it take effect; a changed directive that needs a
 * restart is only reported. */
static void reload_config(void *arg)
{
    struct reload_ctx *r = arg;
    struct akv_cmd_env *env = r->env;
    struct akv_config *live = env->config;
    const char *const *names = akv_config_names();
    struct akv_config fresh;
    char err[512] = "";
    size_t changed = 0;

    if (!live->config_file) {
        akv_log(AKV_LOG_NOTICE, "SIGHUP: no configuration file to reload");
        return;
    }
    if (akv_config_init(&fresh) < 0) {
        akv_log(AKV_LOG_WARNING, "SIGHUP: out of memory; settings unchanged");
        return;
    }
    if (akv_config_load_file(&fresh, live->config_file, err, sizeof(err)) < 0 ||
        apply_flags(&fresh, r->flags) < 0) {
        akv_log(AKV_LOG_WARNING, "SIGHUP: %s; settings unchanged", err[0] ? err : "bad flag");
        akv_config_fini(&fresh);
        return;
    }
    for (size_t i = 0; names[i]; i++) {
        char was[4096], now[4096];
        const char *argv1[1] = {now};

        if (akv_config_same(live, &fresh, names[i]) != 0)
            continue;
        if (!akv_config_runtime(names[i])) {
            /* Secrets (requirepass) are never run-time: named, not shown. */
            akv_log(AKV_LOG_WARNING, "SIGHUP: %s changed in %s; restart attnkvd to apply it",
                    names[i], live->config_file);
            continue;
        }
        if (akv_config_get(live, names[i], was, sizeof(was)) < 0 ||
            akv_config_get(&fresh, names[i], now, sizeof(now)) < 0)
            continue;
        if (akv_cmd_settings_set(env, 1, &names[i], argv1, NULL, err, sizeof(err)) < 0) {
            akv_log(AKV_LOG_WARNING, "SIGHUP: %s: %s; keeping '%s'", names[i], err, was);
            continue;
        }
        akv_log(AKV_LOG_NOTICE, "SIGHUP: %s changed from '%s' to '%s'", names[i], was, now);
        changed++;
    }
    akv_log(AKV_LOG_NOTICE, "SIGHUP: reloaded %s: %zu setting%s changed", live->config_file,
            changed, changed == 1 ? "" : "s");
    akv_config_fini(&fresh);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},   {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},     {"vectors", required_argument, NULL, 'V'},
        {"loglevel", required_argument, NULL, 'l'}, {"workers", required_argument, NULL, 'w'},
        {"test-config", no_argument, NULL, 't'},    {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL;
    struct flags fl = {0};
    struct reload_ctx reload = {0};
    int test_config = 0, opt, status = 1, rc;
    struct akv_config cfg;
    struct akv_vocab *voc = NULL;
    struct akv_store *store = NULL;
    struct akv_nbcache *nbcache = NULL;
    struct akv_server *srv = NULL;
    struct akv_persist *persist = NULL;
    struct akv_cmd_env env;
    uv_loop_t loop;
    int loop_ready = 0;
    char err[512] = "";

    while ((opt = getopt_long(argc, argv, "c:p:b:V:l:w:tvh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_file = optarg;
            break;
        case 'p':
            fl.port = optarg;
            break;
        case 'b':
            if (fl.nbinds == AKV_CONFIG_BIND_MAX) {
                fprintf(stderr, "attnkvd: --bind: at most %d addresses\n", AKV_CONFIG_BIND_MAX);
                return EXIT_USAGE;
            }
            fl.binds[fl.nbinds++] = optarg;
            break;
        case 'V':
            fl.vectors = optarg;
            break;
        case 'l':
            fl.loglevel = optarg;
            break;
        case 'w':
            fl.workers = optarg;
            break;
        case 't':
            test_config = 1;
            break;
        case 'v':
            printf("attnkvd %s\n", AKV_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "attnkvd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }

    memset(&env, 0, sizeof(env));
    akv_slowlog_init(&env.slowlog);
    if (akv_config_init(&cfg) < 0) {
        fprintf(stderr, "attnkvd: out of memory\n");
        return 1;
    }
    if (config_file && akv_config_load_file(&cfg, config_file, err, sizeof(err)) < 0) {
        fprintf(stderr, "attnkvd: %s\n", err);
        goto out;
    }
    if (apply_flags(&cfg, &fl) < 0)
        goto out;

    if (!test_config) {
        rc = akv_service_open();
        if (rc < 0)
            fprintf(stderr, "attnkvd: NOTIFY_SOCKET unusable (%s); not notifying\n", strerror(-rc));
    }
    akv_service_status("Loading the vectors from %s", cfg.vectors);
    if (open_vectors(cfg.vectors, &voc, &env.vocab_load_ms) < 0)
        goto out;
    if (test_config) {
        printf("attnkvd: configuration OK%s%s; vectors %s: %zu words, dimension %u\n",
               cfg.config_file ? " in " : "", cfg.config_file ? cfg.config_file : "", cfg.vectors,
               akv_vocab_count(voc), (unsigned)akv_vocab_dim(voc));
        status = 0;
        goto out;
    }

    akv_log_set_level(cfg.loglevel);
    /* The log may never be written into the files the data lives in. */
    {
        char *aof = NULL;
        if (asprintf(&aof, "%s/%s", cfg.dir, cfg.appendfilename) < 0 ||
            akv_log_protect(aof) < 0 || akv_log_protect(cfg.vectors) < 0) {
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
            cfg.config_file ? ", config " : "", cfg.config_file ? cfg.config_file : "");
    akv_log(AKV_LOG_NOTICE, "vectors %s: %zu words, dimension %u, loaded in %.1f ms", cfg.vectors,
            akv_vocab_count(voc), (unsigned)akv_vocab_dim(voc), env.vocab_load_ms);

    akv_service_status("Vectors loaded (%zu words, dimension %u); starting", akv_vocab_count(voc),
                       (unsigned)akv_vocab_dim(voc));
    rc = akv_store_create(&store, voc);
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "cannot create the store: %s", strerror(-rc));
        goto out;
    }
    rc = uv_loop_init(&loop);
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "cannot create the event loop: %s", uv_strerror(rc));
        goto out;
    }
    loop_ready = 1;

    /* The AOF is replayed before anything listens (and before READY=1). */
    if (cfg.appendonly) {
        akv_service_status("Replaying the append-only file %s/%s", cfg.dir, cfg.appendfilename);
        struct akv_persist_opts po = {
            .dir = cfg.dir,
            .filename = cfg.appendfilename,
            .fsync = cfg.appendfsync,
            .rewrite_percentage = &cfg.aof_rewrite_percentage,
            .rewrite_min_size = &cfg.aof_rewrite_min_size,
        };
        rc = akv_persist_open(&persist, &loop, store, &po, err, sizeof(err));
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
    env.vocab = voc;
    env.nbcache = nbcache;
    env.store = store;
    env.persist = persist;
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
    reload.env = &env;
    reload.flags = &fl;
    akv_server_set_reload(srv, reload_config, &reload);
    akv_log(AKV_LOG_NOTICE, "ready: %u worker threads, maxclients %d", env.workers, cfg.maxclients);
    /* The listeners accept from here on (the kernel queues connections
     * until the loop runs), so the service manager may send clients. */
    akv_service_notify("READY=1");
    akv_service_status("Ready: port %d, %zu keys, %u worker threads", env.tcp_port,
                       akv_store_count(store), env.workers);

    akv_server_run(srv);
    status = 0;

out:
    if (persist) {
        /* After the last client: write and fsync what is left, stop the
         * writer, and let the loop close the AOF's handles. */
        akv_persist_close(persist);
        uv_run(&loop, UV_RUN_DEFAULT);
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
    akv_store_destroy(store);
    akv_nbcache_destroy(nbcache);
    akv_vocab_destroy(voc);
    akv_service_close();
    if (status == 0 && !test_config)
        akv_log(AKV_LOG_NOTICE, "bye");
    akv_log_close();
    akv_config_fini(&cfg);
    return status;
}
