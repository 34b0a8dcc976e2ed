/*
 * main.c - attnkvd: command-line flags, configuration, start-up and exit.
 *
 * Order of precedence: built-in defaults, then the config file (--config),
 * then flags, each applied through akv_config_set so that a flag is checked
 * exactly like the same directive in the file.
 *
 * Threading: main runs on the thread that becomes the loop thread; the
 * worker threads are started by the server (src/server.c) and joined before
 * akv_server_run returns.
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

#include "attnkv/store.h"
#include "attnkv/vocab.h"
#include "cmd.h"
#include "config.h"
#include "log.h"
#include "persist.h"
#include "server.h"

#ifndef AKV_VERSION
#define AKV_VERSION "unknown"
#endif

#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fprintf(f, "usage: attnkvd [OPTIONS]\n"
               "\n"
               "Serves fuzzy key/value lookups by attention over word vectors, speaking the\n"
               "Redis protocol (RESP2 and inline commands).\n"
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
               "after the work in progress; SIGHUP reopens the log file.\n");
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

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},   {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},     {"vectors", required_argument, NULL, 'V'},
        {"loglevel", required_argument, NULL, 'l'}, {"workers", required_argument, NULL, 'w'},
        {"test-config", no_argument, NULL, 't'},    {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL, *port = NULL, *vectors = NULL, *loglevel = NULL,
               *workers = NULL;
    const char *binds[AKV_CONFIG_BIND_MAX];
    size_t nbinds = 0;
    int test_config = 0, opt, status = 1, rc;
    struct akv_config cfg;
    struct akv_vocab *voc = NULL;
    struct akv_store *store = NULL;
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
            port = optarg;
            break;
        case 'b':
            if (nbinds == AKV_CONFIG_BIND_MAX) {
                fprintf(stderr, "attnkvd: --bind: at most %d addresses\n", AKV_CONFIG_BIND_MAX);
                return EXIT_USAGE;
            }
            binds[nbinds++] = optarg;
            break;
        case 'V':
            vectors = optarg;
            break;
        case 'l':
            loglevel = optarg;
            break;
        case 'w':
            workers = optarg;
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

    if (akv_config_init(&cfg) < 0) {
        fprintf(stderr, "attnkvd: out of memory\n");
        return 1;
    }
    if (config_file && akv_config_load_file(&cfg, config_file, err, sizeof(err)) < 0) {
        fprintf(stderr, "attnkvd: %s\n", err);
        goto out;
    }
    if ((port && apply_flag(&cfg, "port", "port", 1, &port) < 0) ||
        (nbinds && apply_flag(&cfg, "bind", "bind", nbinds, binds) < 0) ||
        (vectors && apply_flag(&cfg, "vectors", "vectors", 1, &vectors) < 0) ||
        (loglevel && apply_flag(&cfg, "loglevel", "loglevel", 1, &loglevel) < 0) ||
        (workers && apply_flag(&cfg, "workers", "workers", 1, &workers) < 0))
        goto out;

    memset(&env, 0, sizeof(env));
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
    rc = akv_log_open(cfg.logfile);
    if (rc < 0) {
        fprintf(stderr, "attnkvd: cannot open the log file %s: %s\n", cfg.logfile, strerror(-rc));
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

    /* The AOF is replayed before anything listens. */
    if (cfg.appendonly) {
        rc = akv_persist_open(&persist, &loop, store, &cfg, err, sizeof(err));
        if (rc < 0) {
            akv_log(AKV_LOG_WARNING, "cannot load the append-only file: %s", err);
            goto out;
        }
    } else {
        akv_log(AKV_LOG_NOTICE, "appendonly is off: nothing written survives a restart");
    }

    env.config = &cfg;
    env.vocab = voc;
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
    akv_log(AKV_LOG_NOTICE, "ready: %u worker threads, maxclients %d", env.workers, cfg.maxclients);

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
    akv_store_destroy(store);
    akv_vocab_destroy(voc);
    if (status == 0 && !test_config)
        akv_log(AKV_LOG_NOTICE, "bye");
    akv_log_close();
    akv_config_fini(&cfg);
    return status;
}
