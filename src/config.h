/*
 * config.h - attnkvd settings: defaults, the redis.conf-style file, and the
 * command-line flags that override it.
 *
 * File syntax: one directive per line, "name arg [arg ...]", '#' starts a
 * comment line, arguments may be "double-quoted" or 'single-quoted'.
 * Directive names are case-insensitive. Every directive is documented, with
 * its default, in conf/attnkvd.conf.
 *
 * Threading: parse on the main thread before the loop starts; afterwards the
 * struct is read-only except where the daemon documents otherwise.
 */
#ifndef ATTNKV_CONFIG_H
#define ATTNKV_CONFIG_H

#include <stddef.h>

#include "attnkv/query.h"

#define AKV_CONFIG_BIND_MAX 16

enum akv_loglevel { AKV_LOG_DEBUG = 0, AKV_LOG_VERBOSE, AKV_LOG_NOTICE, AKV_LOG_WARNING };

struct akv_config {
    char *bind[AKV_CONFIG_BIND_MAX]; /* addresses to listen on (default "127.0.0.1") */
    size_t nbind;
    int port;                        /* default 6479; 0 = pick a free port (tests) */
    char *vectors;                   /* path of the binary vocabulary; default: see akv_config_default_vectors */
    int workers;                     /* worker threads; 0 = number of CPUs (default 0) */
    struct akv_query_opts query;     /* defaults for QUERY/EXPLAIN/NEIGHBORS: count, attention, temperature, metric */
    int maxclients;                  /* default 10000 */
    enum akv_loglevel loglevel;      /* default notice */
    char *logfile;                   /* NULL or "" = stderr (default) */
    char *config_file;               /* the file that was read, or NULL */
};

/* Fills c with defaults (allocating the default strings). Returns 0 or -ENOMEM. */
int akv_config_init(struct akv_config *c);
/* Frees what c owns. NULL is a no-op. */
void akv_config_fini(struct akv_config *c);

/* The default vectors path: $AKV_VECTORS if set, else
 * ${XDG_CACHE_HOME:-$HOME/.cache}/attnkv/glove-6B-100d.akv. Caller frees. */
char *akv_config_default_vectors(void);

/* Applies the directives in buf[0..len) (a config file's contents); name is
 * the file name used in messages. A directive that appears again overrides,
 * except bind, whose arguments replace the list the first time it appears in
 * a given source and then accumulate.
 * Returns 0, or -EINVAL with "name:line: reason" in err. Pure: no I/O. */
int akv_config_load_mem(struct akv_config *c, const char *buf, size_t len, const char *name,
                        char *err, size_t errlen);

/* Reads path and applies it with akv_config_load_mem. Returns 0, -errno with
 * "path: reason" when it cannot be read, or -EINVAL as above. */
int akv_config_load_file(struct akv_config *c, const char *path, char *err, size_t errlen);

/* Sets one directive by name from its textual arguments (used by the file
 * parser, by command-line flags and later by CONFIG SET).
 * Returns 0 or -EINVAL with a reason (no file:line) in err. */
int akv_config_set(struct akv_config *c, const char *name, size_t argc, const char *const *argv,
                   char *err, size_t errlen);

/* Writes the current value of directive name as text into out (for CONFIG GET).
 * Returns 0 or -ENOENT for an unknown name. */
int akv_config_get(const struct akv_config *c, const char *name, char *out, size_t outlen);

/* The names of all directives, NULL-terminated (for CONFIG GET patterns). */
const char *const *akv_config_names(void);

const char *akv_loglevel_name(enum akv_loglevel l);

#endif
