/*
 * config.h - attnkvd settings: defaults, the redis.conf-style file, and the
 * command-line flags that override it.
 *
 * File syntax: one directive per line, "name arg [arg ...]", separated by
 * blanks; a line whose first non-blank character is '#' is a comment; blank
 * lines and CRLF line ends are fine; a line may be at most
 * AKV_CONFIG_LINE_MAX bytes. Arguments are split as inline commands are
 * (util/text.h: "double quotes" with \n \r \t \b \a \xHH escapes, any
 * other escaped byte standing for itself; 'single quotes' with only \';
 * a quote may follow unquoted bytes; a closing quote must be followed by a
 * blank or the line end), except that \x00 is refused.
 * Numbers are decimal and must be whole and in range. Directive names and
 * keyword values (dot, l2, notice, ...) are case-insensitive. Every
 * directive is documented, with its default, in conf/attnkvd.conf.
 *
 * The command line (akv_config_args_parse) sets directives too, as
 * redis-server's does: "--name arg [arg ...]" is the line "name arg ..."
 * of the file, applied after it (akv_config_args_apply).
 *
 * Ownership: struct akv_config owns its strings (akv_config_fini frees
 * them). struct akv_config_args owns only its two arrays; every string it
 * holds points into the argv it was parsed from, which must outlive it.
 *
 * Threading: parse on the main thread before the loop starts; afterwards the
 * struct is read-only except where the daemon documents otherwise.
 */
#ifndef ATTNKV_CONFIG_H
#define ATTNKV_CONFIG_H

#include <stddef.h>

#include "attnkv/embed.h"
#include "attnkv/types.h"
#include "persist/persist.h"
#include "util/log.h"

#define AKV_CONFIG_BIND_MAX 16
#define AKV_CONFIG_LINE_MAX 65536 /* longest line of a config file, bytes */
/* The longest value CONFIG SET takes, and so the longest secret
 * (requirepass) a file may set: a longer one could be neither shown by
 * CONFIG GET nor replaced at run time. */
#define AKV_CONFIG_VALUE_MAX 4095
#define AKV_CONFIG_DATABASES_MAX 1024 /* the most 'databases' may ask for */

/* readable-replies: no connection gets readable replies unless it asks
 * (READABLE ON), or those whose first request is an inline command do. */
enum akv_readable { AKV_READABLE_NO = 0, AKV_READABLE_INLINE = 1 };
extern const char *const akv_readable_names[]; /* "no", "inline", NULL */

struct akv_config {
    char *bind[AKV_CONFIG_BIND_MAX]; /* addresses to listen on (default "127.0.0.1") */
    size_t nbind;
    int port;           /* default 6479; 0 = pick a free port (tests) */
    char *vectors;      /* path of the binary vocabulary; default: see akv_config_default_vectors */
    int workers;        /* worker threads; 0 = number of CPUs (default 0) */
    int neighbor_lists; /* QUERY's cached neighbor lists, at most; 0 = none */
    int databases;      /* numbered databases, 1..AKV_CONFIG_DATABASES_MAX (default 16) */
    enum akv_readable readable_replies; /* which connections get replies as text for people */
    struct akv_query_opts
        query; /* defaults for QUERY/EXPLAIN/NEIGHBORS: count, attention, temperature, metric */
    /* Defaults for the text of QUERY, EXPLAIN, NEIGHBORS, EMBED, SIMILARITY:
     * unknown-words, phrase-weighting (zero: error, mean). */
    struct akv_embed_opts embed;
    int key_normalize; /* case-fold and collapse spaces in key arguments (default 0) */
    int maxclients;    /* default 10000 */
    /* Limits (defaults in akv_config_init; sizes in bytes, 0 = none where
     * conf/attnkvd.conf says so) and security. requirepass is NULL when
     * no password is set; it is never quoted in a message (see
     * akv_config_is_secret). */
    unsigned long long proto_max_inline_len;      /* longest inline request */
    unsigned long long proto_max_bulk_len;        /* largest RESP bulk string */
    int proto_max_multibulk_len;                  /* most arguments in one request */
    unsigned long long client_query_buffer_limit; /* most an incomplete request may need */
    unsigned long long obuf_hard;                 /* client-output-buffer-limit: hard, */
    unsigned long long obuf_soft;                 /* soft, */
    int obuf_soft_seconds;                        /* and seconds over soft */
    int timeout;                                  /* idle seconds before closing; 0 = never */
    int max_key_len;                              /* bytes, 1..AKV_TEXT_MAX */
    int max_value_len; /* bytes, 1..AKV_STORE_VALUE_MAX (embedded values: AKV_TEXT_MAX) */
    unsigned long long maxmemory;         /* store bytes (akv_store_memory_used) */
    unsigned long long maxmemory_clients; /* all client buffers together; 0: no limit */
    int maxkeys;                          /* most keys in the store */
    int max_batch_size;         /* most pairs one MSET sets, most commands one MULTI queues */
    char *requirepass;          /* the password, or NULL */
    int protected_mode;         /* without a password, loopback only */
    enum akv_loglevel loglevel; /* default notice */
    char *logfile;              /* NULL or "" = stderr (default); the parser stores "" as NULL */
    char *config_file;          /* the file that was read, or NULL */
    /* Persistence (src/persist/persist.c). */
    char *dir;                  /* data directory (default ".") */
    int appendonly;             /* keep the append-only file (default 1) */
    char *appendfilename;       /* file name inside dir (default "appendonly.aof") */
    enum akv_fsync appendfsync; /* default everysec */
    int aof_rewrite_percentage; /* auto rewrite past this growth, 0 = off (default 100) */
    unsigned long long
        aof_rewrite_min_size; /* ... once the file is this big, bytes (default 64 MiB) */
    int aof_use_rdb_preamble; /* rewrites start the file with a snapshot preamble (default 1) */
    /* Cluster mode (src/cluster/, docs/cluster.md). */
    int cluster_enabled;          /* default 0: a single node with its AOF */
    int cluster_id;               /* this node's id in the cluster, > 0 (default 1) */
    char *cluster_bind;           /* host:port of the Raft transport (default 127.0.0.1:7479) */
    char *cluster_announce;       /* host:port other nodes reach our clients' port at; NULL:
                                   * the first bind address and port */
    char *cluster_dir;            /* Raft log and snapshots; relative to dir (default "cluster") */
    char *cluster_join;           /* host:port (client port) of a member to join; NULL: bootstrap */
    int cluster_election_timeout; /* ms (default 1000); heartbeats every tenth */
    int cluster_snapshot_threshold; /* log entries between snapshots (default 65536) */
    int cluster_snapshot_trailing;  /* entries kept after a snapshot (default 8192) */
    int cluster_write_timeout;      /* ms a write waits to be applied (default 10000) */
    int slowlog_slower_than; /* µs; -1 disables the slow log, 0 logs every command; default 10000 */
    int slowlog_max_len;     /* entries kept; default 128 */
    int latency_monitor_threshold; /* ms; LATENCY records commands this slow; 0 = off (default) */
};

/* Fills c with defaults (allocating the default strings). Returns 0 or
 * -ENOMEM, after which c is zeroed and akv_config_fini is still safe. */
int akv_config_init(struct akv_config *c);
/* Frees what c owns and zeroes it, so a second call is harmless. NULL is a no-op. */
void akv_config_fini(struct akv_config *c);

/* The default vectors path: $AKV_VECTORS if set and non-empty, else
 * ${XDG_CACHE_HOME:-$HOME/.cache}/attnkv/glove-6B-100d.akv (a relative
 * XDG_CACHE_HOME is ignored, as the XDG spec says), else, with no HOME,
 * /var/cache/attnkv/glove-6B-100d.akv. Caller frees; NULL means no memory. */
char *akv_config_default_vectors(void);

/* Applies the directives in buf[0..len) (a config file's contents); name is
 * the file name used in messages. A directive that appears again overrides,
 * except bind, whose arguments replace the list the first time it appears in
 * a given source and then accumulate.
 * Directives before a rejected line stay applied; the rejected one changes
 * nothing. To make a reload all-or-nothing, load into a fresh struct.
 * Returns 0, or -EINVAL (or -ENOMEM) with "name:line: reason" in err
 * (name NULL reads "(config)"). Pure: no I/O, so it can be fuzzed. */
int akv_config_load_mem(struct akv_config *c, const char *buf, size_t len, const char *name,
                        char *err, size_t errlen);

/* Reads path and applies it with akv_config_load_mem; on success
 * c->config_file becomes a copy of path. path "-" reads standard input to
 * its end instead, named "(stdin)" in messages, and leaves c->config_file
 * as it was (there is no file to read again on a reload). Returns 0,
 * -errno with "path: reason" when it cannot be read (-EFBIG past 16 MiB),
 * or -EINVAL as above. */
int akv_config_load_file(struct akv_config *c, const char *path, char *err, size_t errlen);

/* Sets one directive by name from its textual arguments (used by the file
 * parser, by command-line flags and later by CONFIG SET). Each call is a
 * source of its own, so "bind" replaces the list. A rejected value leaves c
 * unchanged. Returns 0, or -EINVAL (or -ENOMEM) with a reason (no file:line)
 * in err; err may be NULL. */
int akv_config_set(struct akv_config *c, const char *name, size_t argc, const char *const *argv,
                   char *err, size_t errlen);

/* Writes the current value of directive name as text into out (for CONFIG
 * GET): bind as a space-separated list, keywords by name, the temperature in
 * the shortest form that reads back as the same number, memory sizes in
 * bytes, an unset string as "". Feeding the text back to akv_config_set gives
 * the same value. A secret (requirepass) is shown too, as Redis's CONFIG GET
 * shows it: callers that log must check akv_config_is_secret.
 * Returns 0, -ENOENT for an unknown name, or -ENOSPC when out is too small
 * (it then holds a truncated, terminated value). */
int akv_config_get(const struct akv_config *c, const char *name, char *out, size_t outlen);

/* Whether directive name has the same value in a and b: 1 or 0 (secrets
 * included, compared without being shown), or -ENOENT. Any thread. */
int akv_config_same(const struct akv_config *a, const struct akv_config *b, const char *name);

/* Parses a memory size the way redis.conf writes them: decimal digits and an
 * optional unit, case-insensitive: b; k = 1000, kb = 1024; m = 10^6,
 * mb = 2^20; g = 10^9, gb = 2^30. No sign, blanks or fraction; overflow is
 * refused. Returns 0 with *out set, or -EINVAL (out untouched). Pure; any
 * thread. */
int akv_config_parse_memory(const char *s, unsigned long long *out);

/* The names of all directives, NULL-terminated, in conf/attnkvd.conf order
 * (for CONFIG GET patterns). Static storage; any thread. */
const char *const *akv_config_names(void);

/* 1 if directive name may change while the daemon runs (CONFIG SET, and a
 * reload of the file: CONFIG RELOAD or SIGUSR2), 0 if it takes a restart or
 * is unknown. The run-time ones are the query defaults, maxclients,
 * requirepass, loglevel, logfile (on a reload only: it is a path), the slow
 * log settings, timeout, the key and value length limits, maxmemory,
 * maxmemory-clients, maxkeys, client-output-buffer-limit and
 * latency-monitor-threshold. Any thread. */
int akv_config_runtime(const char *name);

/* 1 if directive name holds a secret (requirepass): its value may be read
 * (akv_config_get) and written to the configuration file, but never quoted
 * in a message, a log line, the slow log or MONITOR. Any thread. */
int akv_config_is_secret(const char *name);

/* 1 if directive name holds a path (logfile, dir, appendfilename, vectors).
 * Paths come only from the configuration file and the command line, at
 * start-up or on a reload: a client must not choose where the daemon
 * writes. Any thread. */
int akv_config_is_path(const char *name);

/* 1 if CONFIG SET may change directive name: a run-time one that is not a
 * path. Any thread. */
int akv_config_client_settable(const char *name);

/* CONFIG REWRITE's text: the configuration file buf[0, len) (name for
 * messages) changed to hold c's values, as Redis rewrites redis.conf.
 * Comments, blank lines, unknown lines and the order are kept; a
 * directive whose value in c differs from what the file sets is written
 * (in canonical form, with the file's quoting) at the last line that sets
 * it, the one that took effect, and its other lines are removed; a
 * directive the file does not set and whose value in c is not the default
 * (a command-line option, a CONFIG SET) is added at the end, under the
 * line "# Generated by CONFIG REWRITE" (written once). Secrets are written
 * like any value, since the file is where they live. Returns 0 with a
 * malloc'd, terminated *out of *outlen bytes that akv_config_load_mem reads
 * back as c; -EINVAL with the parser's "name:line: reason" when buf no
 * longer parses, or when a value quoted would make a line longer than
 * AKV_CONFIG_LINE_MAX (nothing is written then); or -ENOMEM. Pure. */
int akv_config_rewrite_mem(const struct akv_config *c, const char *buf, size_t len,
                           const char *name, char **out, size_t *outlen, char *err, size_t errlen);

/* CONFIG REWRITE, in two steps so that the slow one can leave the loop
 * thread. akv_config_rewrite_prepare reads the file at path (a file that
 * does not exist counts as empty) and makes its new text with
 * akv_config_rewrite_mem; *target gets the file to replace (path's target
 * when path is a symbolic link, so the link stays). Both outputs are the
 * caller's to free. The thread that owns c; reads a small file.
 * akv_config_write_file replaces path with text[0, len) atomically: a
 * temporary file in the same directory with the old file's mode (and
 * owner, where allowed; a new file is 0600), written, fsync'd, renamed
 * over the old one, then the directory fsync'd. No shared state: any
 * thread. akv_config_rewrite does both. Each returns 0, or -errno with the
 * reason in err (never a value); the old file is untouched on any
 * failure. */
int akv_config_rewrite_prepare(const struct akv_config *c, const char *path, char **target,
                               char **text, size_t *textlen, char *err, size_t errlen);
int akv_config_write_file(const char *path, const char *text, size_t len, char *err, size_t errlen);
int akv_config_rewrite(const struct akv_config *c, const char *path, char *err, size_t errlen);

/* One directive given on the command line: the option as written (flag,
 * flaglen bytes, e.g. "--port" or "-p"; not terminated there), the
 * directive's name as the table spells it, and its arguments,
 * words[first .. first + argc) of the struct akv_config_args. */
struct akv_config_opt {
    const char *flag;
    size_t flaglen;
    const char *name;
    size_t first, argc;
};

/* A parsed command line (akv_config_args_parse). */
struct akv_config_args {
    const char *config_file;     /* the first argument or -c/--config; "-" = stdin; or NULL */
    int test_config;             /* -t, --test-config */
    int help, version;           /* -h/--help, -v/--version: nothing else was parsed */
    struct akv_config_opt *opts; /* the directives, in command-line order */
    size_t nopts;
    const char **words; /* their arguments (see struct akv_config_opt) */
    size_t nwords;
};

/* Parses attnkvd's command line, argv[1..argc), into a (which it fills in
 * from scratch), the way redis-server reads its own:
 *
 *   attnkvd [FILE] [OPTION | --DIRECTIVE ARG...]...
 *
 * A first argument that does not start with '-', or is "-" alone, names the
 * configuration file, as -c/--config FILE does (once only). "--name" where
 * name is a directive of the table (in any case, or its old spelling)
 * takes the next argument whatever it looks like, then every following
 * argument up to the next option: one that starts with "--", or a short
 * option below. So "--bind ::1 10.0.0.1", "--logfile ''" and
 * "--slowlog-log-slower-than -1" all work. "--name=value" takes exactly
 * value. The short options and their long forms: -c/--config FILE,
 * -p/--port, -b/--bind, -V/--vectors, -l/--loglevel and -w/--workers (each
 * sets its directive with exactly one value, attached as in "-p6500" or as
 * the next argument), -t/--test-config, -v/--version and -h/--help; short
 * options without a value may be grouped ("-tv"). -h and -v stop the
 * parse at once (a->help or a->version set), as getopt did.
 *
 * Directive values are not checked here (akv_config_args_apply does it).
 * Returns 0, -EINVAL for a usage error (an unknown option, a missing
 * value, a stray argument, a second configuration file) with the reason
 * in err, naming the option and never showing a directive's value, or
 * -ENOMEM. On failure a holds nothing to free. Pure: no I/O, no global
 * state; any thread. */
int akv_config_args_parse(struct akv_config_args *a, int argc, const char *const *argv, char *err,
                          size_t errlen);

/* Frees a's arrays and zeroes it; a second call, or NULL, is harmless. */
void akv_config_args_fini(struct akv_config_args *a);

/* Applies a's directives to c in order, as one source: each is checked as
 * the same line of a file would be (so "bind" replaces the list the first
 * time and adds to it afterwards), and, as with akv_config_set, a
 * directive of several arguments also takes them blank-separated in one
 * ("--bind '::1 10.0.0.1'"). Directives before a rejected one stay applied.
 * Returns 0, or -EINVAL (or -ENOMEM) with "--flag: reason" in err, the
 * reason worded as for the file. */
int akv_config_args_apply(struct akv_config *c, const struct akv_config_args *a, char *err,
                          size_t errlen);

/* Where directive name's value comes from, for messages: the last
 * command-line option that set it ("--dir", "-p"), else the last line of
 * c->config_file that sets it ("/etc/attnkv/attnkvd.conf:12"), else
 * "standard input" or "the default". Reads the file (blocking). Returns 0,
 * -ENOENT for an unknown name, or -ENOSPC (out truncated). */
int akv_config_where(const struct akv_config *c, const struct akv_config_args *a, const char *name,
                     char *out, size_t outlen);

#endif
