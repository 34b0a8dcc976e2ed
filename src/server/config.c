/*
 * config.c - attnkvd settings: the defaults, the redis.conf-style file parser
 * and the directive table that the file, the command line and CONFIG SET
 * share.
 *
 * Design: every directive is one row of `directives` below: its name, how
 * many arguments it takes, a setter and a getter. Most rows are made by a
 * *_ROW macro for a generic kind (int, unsigned, enum, string, yes/no) whose
 * setter finds its field through the row's `off` and its limits in the row,
 * so adding a directive is one line; a directive whose value needs a check
 * the generic kinds cannot express (bind, temperature) adds a setter and a
 * getter of its own and a CUSTOM_ROW. The parser
 * checks the argument count against the row before the setter runs, so
 * setters can index argv without checking argc again.
 *
 * The command line (at the end of this file) is redis-server's: "--name
 * arg..." is the file's line "name arg...". akv_config_args_parse only
 * splits argv into (option, directive, arguments) records, pointing into
 * argv; akv_config_args_apply runs them through the same table, as one
 * source, so the checks and messages are the file's.
 *
 * Invariants: a setter validates every argument before it changes anything,
 * so a rejected directive leaves the struct as it was (CONFIG SET relies on
 * this). Strings in the struct are owned by it and freed by
 * akv_config_fini; struct akv_config_args owns its two arrays, not the
 * strings. akv_config_load_mem and akv_config_args_parse do no I/O, so they
 * can be fuzzed (fuzz/fuzz-config.c, fuzz/fuzz-args.c).
 *
 * Threading: no state of its own beyond the lazily built name list, which
 * pthread_once guards. Calls on one struct akv_config must not overlap.
 */
#include "server/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/stat.h>

#include "attnkv/embed.h"
#include "attnkv/store.h"
#include "attnkv/types.h"
#include "util/text.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Config files are a few kilobytes; refusing anything huge keeps a config
 * path that points at a vectors file by mistake from reading a gigabyte. */
#define FILE_MAX (16u << 20)

/* Flags of a table row. */
enum {
    DF_NONEMPTY = 1u << 0, /* set_string: the empty string is refused */
    DF_SECRET = 1u << 1,   /* never in a message or a log line (get shows it) */
};

struct directive {
    const char *name;
    size_t min_args, max_args;
    /* Validates argv[0..argc) and stores it. first is 1 the first time the
     * directive appears in a source (a file, or one akv_config_set call):
     * list directives replace their list then and append afterwards.
     * Returns 0, -EINVAL with a reason in err, or -ENOMEM. */
    int (*set)(struct akv_config *c, const struct directive *d, int first, size_t argc,
               const char *const *argv, char *err, size_t errlen);
    /* Formats the current value into out. Returns 0 or -ENOSPC. */
    int (*get)(const struct akv_config *c, const struct directive *d, char *out, size_t outlen);
    size_t off;               /* offsetof the field the generic setters use */
    long long min, max;       /* inclusive range for set_int and set_uint */
    const char *const *names; /* set_enum: NULL-terminated, names[i] means value i */
    unsigned flags;           /* DF_* */
};

/* A C string for a message (util/text.h). */
static const char *show(char out[AKV_QUOTE_BUF], const char *s)
{
    return akv_quote(out, s, strlen(s));
}

/* Formats into out the way every getter must: 0, or -ENOSPC when the value
 * did not fit (out still holds a terminated prefix). */
__attribute__((format(printf, 3, 4))) static int getf(char *out, size_t outlen, const char *fmt,
                                                      ...)
{
    va_list ap;
    int n;

    if (!out || outlen == 0)
        return -ENOSPC;
    va_start(ap, fmt);
    n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    return (size_t)n < outlen ? 0 : -ENOSPC;
}

static void *field(struct akv_config *c, const struct directive *d)
{
    return (char *)c + d->off;
}

static const void *cfield(const struct akv_config *c, const struct directive *d)
{
    return (const char *)c + d->off;
}

/* Value parsers, shared by the setters and by any directive added later.
 * Each returns 0 or -EINVAL and writes *out only on success. */

static int parse_ll(const char *s, long long min, long long max, long long *out)
{
    return akv_parse_ll(s, strlen(s), min, max, out);
}

static int parse_finite(const char *s, double *out)
{
    return akv_parse_double(s, strlen(s), out);
}

/* One of names, compared without regard to case; *out is its index. */
static int parse_name(const char *s, const char *const *names, int *out)
{
    int i;

    for (i = 0; names[i]; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -EINVAL;
}

int akv_config_parse_memory(const char *s, unsigned long long *out)
{
    static const struct {
        const char *name;
        unsigned long long mul;
    } units[] = {
        {"", 1},        {"b", 1},         {"k", 1000},       {"kb", 1024},
        {"m", 1000000}, {"mb", 1u << 20}, {"g", 1000000000}, {"gb", 1u << 30},
    };
    unsigned long long v = 0;
    const char *p = s;
    size_t i;

    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    for (i = 0; i < ARRAY_SIZE(units); i++) {
        if (strcasecmp(p, units[i].name) == 0) {
            if (v > ULLONG_MAX / units[i].mul)
                return -EINVAL;
            *out = v * units[i].mul;
            return 0;
        }
    }
    return -EINVAL;
}

/* yes/no, as redis.conf spells booleans. */
static int parse_bool(const char *s, int *out)

{
    static const char *const yesno[] = {"no", "yes", NULL};

    return parse_name(s, yesno, out);
}

/* "a|b|c" into out, for "expected ..." messages. */
static const char *join_names(char *out, size_t outlen, const char *const *names)
{
    size_t o = 0;
    int i;

    out[0] = '\0';
    for (i = 0; names[i]; i++) {
        int n = snprintf(out + o, outlen - o, "%s%s", i ? "|" : "", names[i]);
        if (n < 0 || (size_t)n >= outlen - o)
            break;
        o += (size_t)n;
    }
    return out;
}

static void bad_value(char *err, size_t errlen, const struct directive *d, const char *v,
                      const char *expected)
{
    char buf[AKV_QUOTE_BUF];

    akv_errf(err, errlen, "bad %s '%s' (expected %s)", d->name, show(buf, v), expected);
}

/* Generic setters and getters. */

/* An integer in [d->min, d->max], or "bad NAME 'v' (expected min..max)". */
static int parse_range(const struct directive *d, const char *arg, long long *v, char *err,
                       size_t errlen)
{
    if (parse_ll(arg, d->min, d->max, v) < 0) {
        char range[64];
        snprintf(range, sizeof(range), "%lld..%lld", d->min, d->max);
        bad_value(err, errlen, d, arg, range);
        return -EINVAL;
    }
    return 0;
}

static int set_int(struct akv_config *c, const struct directive *d, int first, size_t argc,
                   const char *const *argv, char *err, size_t errlen)
{
    long long v;

    if (parse_range(d, argv[0], &v, err, errlen) < 0)
        return -EINVAL;
    *(int *)field(c, d) = (int)v;
    return 0;
}

static int get_int(const struct akv_config *c, const struct directive *d, char *out, size_t outlen)
{
    return getf(out, outlen, "%d", *(const int *)cfield(c, d));
}

static int set_uint(struct akv_config *c, const struct directive *d, int first, size_t argc,
                    const char *const *argv, char *err, size_t errlen)
{
    long long v;

    if (parse_range(d, argv[0], &v, err, errlen) < 0)
        return -EINVAL;
    *(unsigned *)field(c, d) = (unsigned)v;
    return 0;
}

static int get_uint(const struct akv_config *c, const struct directive *d, char *out, size_t outlen)
{
    return getf(out, outlen, "%u", *(const unsigned *)cfield(c, d));
}

static int set_enum(struct akv_config *c, const struct directive *d, int first, size_t argc,
                    const char *const *argv, char *err, size_t errlen)
{
    int v;

    if (parse_name(argv[0], d->names, &v) < 0) {
        char expected[128];
        bad_value(err, errlen, d, argv[0], join_names(expected, sizeof(expected), d->names));
        return -EINVAL;
    }
    *(int *)field(c, d) = v;
    return 0;
}

static int get_enum(const struct akv_config *c, const struct directive *d, char *out, size_t outlen)
{
    int v = *(const int *)cfield(c, d);
    int i;

    /* Walk the names rather than index them so that a stray value set by
     * the daemon directly cannot read past the array. */
    for (i = 0; d->names[i]; i++) {
        if (i == v)
            return getf(out, outlen, "%s", d->names[i]);
    }
    return getf(out, outlen, "%d", v);
}

static int set_bool(struct akv_config *c, const struct directive *d, int first, size_t argc,
                    const char *const *argv, char *err, size_t errlen)
{
    int v;

    if (parse_bool(argv[0], &v) < 0) {
        bad_value(err, errlen, d, argv[0], "yes|no");
        return -EINVAL;
    }
    *(int *)field(c, d) = v;
    return 0;
}

static int get_bool(const struct akv_config *c, const struct directive *d, char *out, size_t outlen)
{
    return getf(out, outlen, "%s", *(const int *)cfield(c, d) ? "yes" : "no");
}

/* Stores a copy of argv[0] in a char * field; "" is stored as NULL (the
 * struct's "not set") unless DF_NONEMPTY refuses it. */
static int set_string(struct akv_config *c, const struct directive *d, int first, size_t argc,
                      const char *const *argv, char *err, size_t errlen)
{
    char **slot = field(c, d);
    char *v = NULL;

    if (argv[0][0] == '\0' && (d->flags & DF_NONEMPTY)) {
        bad_value(err, errlen, d, argv[0], "a non-empty value");
        return -EINVAL;
    }
    if ((d->flags & DF_SECRET) && strlen(argv[0]) > AKV_CONFIG_VALUE_MAX) {
        akv_errf(err, errlen, "'%s' is longer than %d bytes", d->name, AKV_CONFIG_VALUE_MAX);
        return -EINVAL;
    }
    if (argv[0][0] != '\0') {
        v = strdup(argv[0]);
        if (!v) {
            akv_errf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    }
    free(*slot);
    *slot = v;
    return 0;
}

static int get_string(const struct akv_config *c, const struct directive *d, char *out,
                      size_t outlen)
{
    const char *v = *(char *const *)cfield(c, d);

    return getf(out, outlen, "%s", v ? v : "");
}

/* A memory size (akv_config_parse_memory) in [min, max], into an unsigned
 * long long field; shown in bytes, as Redis's CONFIG GET does. */
static int set_mem(struct akv_config *c, const struct directive *d, int first, size_t argc,
                   const char *const *argv, char *err, size_t errlen)
{
    unsigned long long v;

    if (akv_config_parse_memory(argv[0], &v) < 0 || v < (unsigned long long)d->min ||
        v > (unsigned long long)d->max) {
        char range[128];
        snprintf(range, sizeof(range), "%lld..%lld bytes, or with a unit: 1k, 10mb, 1gb", d->min,
                 d->max);
        bad_value(err, errlen, d, argv[0], range);
        return -EINVAL;
    }
    *(unsigned long long *)field(c, d) = v;
    return 0;
}

static int get_mem(const struct akv_config *c, const struct directive *d, char *out, size_t outlen)
{
    return getf(out, outlen, "%llu", *(const unsigned long long *)cfield(c, d));
}

/* Setters with checks of their own. */

/* client-output-buffer-limit [normal] HARD SOFT SECONDS: the one client
 * class of Redis's directive that attnkv has. */
static int set_obuf(struct akv_config *c, const struct directive *d, int first, size_t argc,
                    const char *const *argv, char *err, size_t errlen)
{
    unsigned long long hard, soft;
    long long secs;

    if (argc == 4) {
        if (strcasecmp(argv[0], "normal") != 0) {
            bad_value(err, errlen, d, argv[0], "normal, the only client class");
            return -EINVAL;
        }
        argv++;
    } else if (argc != 3) {
        akv_errf(err, errlen, "'%s' takes [normal] HARD SOFT SECONDS", d->name);
        return -EINVAL;
    }
    if (akv_config_parse_memory(argv[0], &hard) < 0) {
        bad_value(err, errlen, d, argv[0], "a hard limit in bytes, or with a unit: 64mb; 0 = none");
        return -EINVAL;
    }
    if (akv_config_parse_memory(argv[1], &soft) < 0) {
        bad_value(err, errlen, d, argv[1], "a soft limit in bytes, or with a unit: 8mb; 0 = none");
        return -EINVAL;
    }
    if (parse_ll(argv[2], 0, INT_MAX, &secs) < 0) {
        char range[64];
        snprintf(range, sizeof(range), "seconds, 0..%d", INT_MAX);
        bad_value(err, errlen, d, argv[2], range);
        return -EINVAL;
    }
    c->obuf_hard = hard;
    c->obuf_soft = soft;
    c->obuf_soft_seconds = (int)secs;
    return 0;
}

static int get_obuf(const struct akv_config *c, const struct directive *d, char *out, size_t outlen)
{
    return getf(out, outlen, "%llu %llu %d", c->obuf_hard, c->obuf_soft, c->obuf_soft_seconds);
}

static int set_temperature(struct akv_config *c, const struct directive *d, int first, size_t argc,
                           const char *const *argv, char *err, size_t errlen)
{
    double v;

    if (parse_finite(argv[0], &v) < 0 || !(v >= AKV_TEMPERATURE_MIN) ||
        !(v <= AKV_TEMPERATURE_MAX)) {
        bad_value(err, errlen, d, argv[0], "a decimal number from 0.0001 to 1000000");
        return -EINVAL;
    }
    c->query.temperature = v;
    return 0;
}

/* The shortest %g form that reads back as the same double, so that
 * CONFIG GET shows "0.1" and yet get-then-set never changes the value. */
static int get_temperature(const struct akv_config *c, const struct directive *d, char *out,
                           size_t outlen)
{
    double v = c->query.temperature;
    char buf[64];
    int prec;

    for (prec = 1; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, sizeof(buf), "%.*g", prec, v);
    return getf(out, outlen, "%s", buf);
}

struct addr {
    int af;
    unsigned char bytes[16];
};

static int parse_addr(const char *s, struct addr *a)
{
    memset(a, 0, sizeof(*a));
    a->af = AF_INET;
    if (inet_pton(AF_INET, s, a->bytes) == 1)
        return 0;
    a->af = AF_INET6;
    if (inet_pton(AF_INET6, s, a->bytes) == 1)
        return 0;
    return -EINVAL;
}

/* bind ADDR...: replaces the list the first time it appears in a source and
 * appends afterwards, so that a file can list addresses on several lines.
 * Duplicates are refused here because the listener would fail on them with
 * a less helpful EADDRINUSE; they are compared as addresses, so "::1" and
 * "0::1" are the same. */
static int set_bind(struct akv_config *c, const struct directive *d, int first, size_t argc,
                    const char *const *argv, char *err, size_t errlen)
{
    struct addr all[AKV_CONFIG_BIND_MAX];
    char *copies[AKV_CONFIG_BIND_MAX];
    char buf[AKV_QUOTE_BUF];
    size_t keep = first ? 0 : c->nbind;
    size_t i, j;

    if (keep + argc > AKV_CONFIG_BIND_MAX) {
        akv_errf(err, errlen, "too many bind addresses (at most %d)", AKV_CONFIG_BIND_MAX);
        return -EINVAL;
    }
    for (i = 0; i < keep; i++) {
        /* Addresses already in the struct were validated when set; one the
         * daemon put there directly and cannot parse is simply not compared. */
        if (parse_addr(c->bind[i], &all[i]) < 0)
            all[i].af = 0;
    }
    for (i = 0; i < argc; i++) {
        struct addr *a = &all[keep + i];
        if (parse_addr(argv[i], a) < 0) {
            bad_value(err, errlen, d, argv[i], "an IPv4 or IPv6 address");
            return -EINVAL;
        }
        for (j = 0; j < keep + i; j++) {
            if (all[j].af == a->af && memcmp(all[j].bytes, a->bytes, sizeof(a->bytes)) == 0) {
                akv_errf(err, errlen, "bind address '%s' is listed twice", show(buf, argv[i]));
                return -EINVAL;
            }
        }
    }
    for (i = 0; i < argc; i++) {
        copies[i] = strdup(argv[i]);
        if (!copies[i])
            goto fail;
    }
    for (i = keep; i < c->nbind; i++) {
        free(c->bind[i]);
        c->bind[i] = NULL;
    }
    for (i = 0; i < argc; i++)
        c->bind[keep + i] = copies[i];
    c->nbind = keep + argc;
    return 0;

fail:
    while (i-- > 0)
        free(copies[i]);
    akv_errf(err, errlen, "out of memory");
    return -ENOMEM;
}

static int get_bind(const struct akv_config *c, const struct directive *d, char *out, size_t outlen)
{
    size_t i, o = 0;

    if (!out || outlen == 0)
        return -ENOSPC;
    out[0] = '\0';
    for (i = 0; i < c->nbind; i++) {
        int rc = getf(out + o, outlen - o, "%s%s", i ? " " : "", c->bind[i]);
        if (rc < 0)
            return rc;
        o += strlen(out + o);
    }
    return 0;
}

/* FIELD(f, type) is offsetof(struct akv_config, f), but does not compile
 * unless f has exactly that type (the _Generic has no other association),
 * so a row cannot point a generic setter at a field it would misread. */
#define FIELD(f, type)                                                                             \
    (offsetof(struct akv_config, f) + 0 * sizeof(_Generic(((struct akv_config *)0)->f, type : 1)))

/* The enum setters store through an int pointer. That is valid C, as an
 * enum is compatible with an integer type of its size and an object may be
 * accessed through the signed or unsigned variant of its type; the array
 * below gets a negative size, and the build fails, if a build flag such as
 * -fshort-enums makes an enum smaller than int. */
#define INT_SIZED(type) (0 * sizeof(char[sizeof(type) == sizeof(int) ? 1 : -1]))

/* One row per kind of directive, so that a new directive is one line. */
#define INT_ROW(n, f, lo, hi)                                                                      \
    {                                                                                              \
        .name = n, .min_args = 1, .max_args = 1, .set = set_int, .get = get_int,                   \
        .off = FIELD(f, int), .min = lo, .max = hi                                                 \
    }
#define UINT_ROW(n, f, lo, hi)                                                                     \
    {                                                                                              \
        .name = n, .min_args = 1, .max_args = 1, .set = set_uint, .get = get_uint,                 \
        .off = FIELD(f, unsigned), .min = lo, .max = hi                                            \
    }
#define ENUM_ROW(n, f, type, list)                                                                 \
    {                                                                                              \
        .name = n, .min_args = 1, .max_args = 1, .set = set_enum, .get = get_enum,                 \
        .off = FIELD(f, type) + INT_SIZED(type), .names = list                                     \
    }
#define BOOL_ROW(n, f)                                                                             \
    {                                                                                              \
        .name = n, .min_args = 1, .max_args = 1, .set = set_bool, .get = get_bool,                 \
        .off = FIELD(f, int)                                                                       \
    }
#define MEM_ROW(n, f, lo, hi)                                                                      \
    {                                                                                              \
        .name = n, .min_args = 1, .max_args = 1, .set = set_mem, .get = get_mem,                   \
        .off = FIELD(f, unsigned long long), .min = lo, .max = hi                                  \
    }
/* A password: stored and read like a string (CONFIG GET shows it, as
 * Redis's does), but never quoted in a message or a log line. */
#define SECRET_ROW(n, f)                                                                           \
    {                                                                                              \
        .name = n, .min_args = 1, .max_args = 1, .set = set_string, .get = get_string,             \
        .off = FIELD(f, char *), .flags = DF_SECRET                                                \
    }
#define STRING_ROW(n, f, fl)                                                                       \
    {                                                                                              \
        .name = n, .min_args = 1, .max_args = 1, .set = set_string, .get = get_string,             \
        .off = FIELD(f, char *), .flags = fl                                                       \
    }
/* A directive with a setter and getter of its own, taking lo..hi arguments. */
#define CUSTOM_ROW(n, lo, hi, setter, getter)                                                      \
    {                                                                                              \
        .name = n, .min_args = lo, .max_args = hi, .set = setter, .get = getter                    \
    }

/* The directives, in the order conf/attnkvd.conf documents them. To add one:
 * a row here (a generic kind, or CUSTOM_ROW with a setter and a getter
 * written above), its paragraph in conf/attnkvd.conf, and a field in
 * struct akv_config with its default in akv_config_init. */
const char *const akv_readable_names[] = {"no", "inline", NULL};

static const struct directive directives[] = {
    CUSTOM_ROW("bind", 1, AKV_CONFIG_BIND_MAX, set_bind, get_bind),
    INT_ROW("port", port, 0, 65535),
    INT_ROW("maxclients", maxclients, 1, 1000000),
    MEM_ROW("proto-max-inline-len", proto_max_inline_len, 1024, 512LL << 20),
    MEM_ROW("proto-max-bulk-len", proto_max_bulk_len, 1024, 1LL << 30),
    INT_ROW("proto-max-multibulk-len", proto_max_multibulk_len, 16, 16 << 20),
    MEM_ROW("client-query-buffer-limit", client_query_buffer_limit, 1024, 4LL << 30),
    CUSTOM_ROW("client-output-buffer-limit", 3, 4, set_obuf, get_obuf),
    INT_ROW("timeout", timeout, 0, INT_MAX),
    ENUM_ROW("readable-replies", readable_replies, enum akv_readable, akv_readable_names),
    INT_ROW("max-key-len", max_key_len, 1, AKV_TEXT_MAX),
    INT_ROW("max-value-len", max_value_len, 1, (int)AKV_STORE_VALUE_MAX),
    MEM_ROW("maxmemory", maxmemory, 0, LLONG_MAX),
    MEM_ROW("maxmemory-clients", maxmemory_clients, 0, LLONG_MAX),
    INT_ROW("maxkeys", maxkeys, 0, INT_MAX),
    INT_ROW("max-batch-size", max_batch_size, 1, 1 << 20),
    SECRET_ROW("requirepass", requirepass),
    BOOL_ROW("protected-mode", protected_mode),
    INT_ROW("workers", workers, 0, 256),
    INT_ROW("neighbor-lists", neighbor_lists, 0, 16 << 20),
    INT_ROW("databases", databases, 1, AKV_CONFIG_DATABASES_MAX),
    STRING_ROW("vectors", vectors, DF_NONEMPTY),
    UINT_ROW("count", query.k, 1, AKV_K_MAX),
    ENUM_ROW("attention", query.attn, enum akv_attn_mode, akv_attn_mode_names),
    CUSTOM_ROW("temperature", 1, 1, set_temperature, get_temperature),
    ENUM_ROW("metric", query.metric, enum akv_metric, akv_metric_names),
    ENUM_ROW("unknown-words", embed.unknown, enum akv_unknown, akv_unknown_names),
    ENUM_ROW("phrase-weighting", embed.weighting, enum akv_weighting, akv_weighting_names),
    BOOL_ROW("key-normalize", key_normalize),
    ENUM_ROW("loglevel", loglevel, enum akv_loglevel, akv_loglevel_names),
    STRING_ROW("logfile", logfile, 0),
    STRING_ROW("dir", dir, DF_NONEMPTY),
    BOOL_ROW("appendonly", appendonly),
    STRING_ROW("appendfilename", appendfilename, DF_NONEMPTY),
    ENUM_ROW("appendfsync", appendfsync, enum akv_fsync, akv_fsync_names),
    INT_ROW("auto-aof-rewrite-percentage", aof_rewrite_percentage, 0, 1000000),
    MEM_ROW("auto-aof-rewrite-min-size", aof_rewrite_min_size, 0, 1LL << 50),
    BOOL_ROW("aof-use-rdb-preamble", aof_use_rdb_preamble),
    BOOL_ROW("cluster-enabled", cluster_enabled),
    INT_ROW("cluster-id", cluster_id, 1, INT_MAX),
    STRING_ROW("cluster-bind", cluster_bind, DF_NONEMPTY),
    STRING_ROW("cluster-announce", cluster_announce, 0),
    STRING_ROW("cluster-dir", cluster_dir, DF_NONEMPTY),
    STRING_ROW("cluster-join", cluster_join, 0),
    INT_ROW("cluster-election-timeout", cluster_election_timeout, 50, 600000),
    INT_ROW("cluster-snapshot-threshold", cluster_snapshot_threshold, 16, INT_MAX),
    INT_ROW("cluster-snapshot-trailing", cluster_snapshot_trailing, 0, INT_MAX),
    INT_ROW("cluster-write-timeout", cluster_write_timeout, 100, 3600000),
    INT_ROW("slowlog-log-slower-than", slowlog_slower_than, -1, 2147483647),
    INT_ROW("slowlog-max-len", slowlog_max_len, 0, 1000000),
    INT_ROW("latency-monitor-threshold", latency_monitor_threshold, 0, INT_MAX),
};

/* The directives that CONFIG SET and a reload (CONFIG RELOAD, SIGUSR2) may
 * change while the daemon runs: each is read afresh wherever it is used
 * (the query defaults when a request is parsed, maxclients at each accept,
 * requirepass at each command and each AUTH, the slow log settings after
 * each command, the automatic rewrite's thresholds at each check), or its
 * change is applied at once by the server (loglevel, logfile, appendfsync,
 * appendonly: server.c's apply_setting; maxclients also raises the
 * descriptor limit there). Everything else (addresses, the vectors, the
 * worker count) is fixed at start-up. A directive added later is fixed
 * until it is listed here. */
static const char *const runtime_directives[] = {
    "maxclients",
    "count",
    "attention",
    "temperature",
    "metric",
    "unknown-words",
    "phrase-weighting",
    "loglevel",
    "logfile",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "timeout",
    "readable-replies",
    "maxmemory",
    "maxmemory-clients",
    "maxkeys",
    "max-batch-size",
    "max-key-len",
    "max-value-len",
    "client-output-buffer-limit",
    "latency-monitor-threshold",
    "requirepass",
    "appendonly",
    "appendfsync",
    "auto-aof-rewrite-percentage",
    "auto-aof-rewrite-min-size",
    "aof-use-rdb-preamble",
    "cluster-write-timeout",
};

/* Directives that name files (see akv_config_is_path). */
static const char *const path_directives[] = {"logfile", "dir", "appendfilename", "vectors",
                                              "cluster-dir"};

static const struct directive *lookup(const char *name)
{
    size_t i;

    /* The directive's earlier spelling, still read from older files. */
    if (strcasecmp(name, "neighbour-lists") == 0)
        name = "neighbor-lists";
    for (i = 0; i < ARRAY_SIZE(directives); i++) {
        if (strcasecmp(name, directives[i].name) == 0)
            return &directives[i];
    }
    return NULL;
}

/* Checks the argument count against the row, then runs its setter. */
static int apply(struct akv_config *c, const struct directive *d, int first, size_t argc,
                 const char *const *argv, char *err, size_t errlen)
{
    if (argc < d->min_args || argc > d->max_args) {
        if (d->min_args == d->max_args)
            akv_errf(err, errlen, "'%s' takes %zu argument%s, got %zu", d->name, d->min_args,
                     d->min_args == 1 ? "" : "s", argc);
        else
            akv_errf(err, errlen, "'%s' takes %zu to %zu arguments, got %zu", d->name, d->min_args,
                     d->max_args, argc);
        return -EINVAL;
    }
    return d->set(c, d, first, argc, argv, err, errlen);
}

char *akv_config_default_vectors(void)
{
    static const char tail[] = "attnkv/glove-6B-100d.akv";
    const char *v = getenv("AKV_VECTORS");
    const char *base;
    const char *mid;
    char *path;

    if (v && *v)
        return strdup(v);
    /* The XDG spec says a relative XDG_CACHE_HOME is to be ignored. Without
     * HOME (a bare system service) the system cache directory is used. */
    base = getenv("XDG_CACHE_HOME");
    mid = "/";
    if (!base || base[0] != '/') {
        base = getenv("HOME");
        mid = "/.cache/";
        if (!base || !*base) {
            base = "/var/cache";
            mid = "/";
        }
    }
    if (asprintf(&path, "%s%s%s", base, mid, tail) < 0)
        return NULL;
    return path;
}

int akv_config_init(struct akv_config *c)
{
    memset(c, 0, sizeof(*c));
    c->bind[0] = strdup("127.0.0.1");
    if (!c->bind[0])
        goto fail;
    c->nbind = 1;
    c->port = 6479;
    c->vectors = akv_config_default_vectors();
    if (!c->vectors)
        goto fail;
    c->workers = 0;
    c->neighbor_lists = 65536;
    c->databases = 16;
    c->query = (struct akv_query_opts)AKV_QUERY_OPTS_DEFAULT;
    c->maxclients = 10000;
    c->proto_max_inline_len = 64u << 10;
    c->proto_max_bulk_len = 16u << 20;
    c->proto_max_multibulk_len = 1 << 16;
    c->client_query_buffer_limit = 64u << 20;
    c->obuf_hard = 64u << 20;
    c->obuf_soft = 8u << 20;
    c->obuf_soft_seconds = 60;
    c->timeout = 0;
    c->max_key_len = AKV_TEXT_MAX;
    c->max_value_len = AKV_TEXT_MAX;
    c->maxmemory = 0;
    c->maxmemory_clients = 1ULL << 30;
    c->maxkeys = 0;
    c->max_batch_size = 1024;
    c->requirepass = NULL;
    c->protected_mode = 1;
    c->loglevel = AKV_LOG_NOTICE;
    c->logfile = NULL;
    c->config_file = NULL;
    c->dir = strdup(".");
    c->appendfilename = strdup("appendonly.aof");
    if (!c->dir || !c->appendfilename)
        goto fail;
    c->appendonly = 1;
    c->appendfsync = AKV_FSYNC_EVERYSEC;
    c->aof_rewrite_percentage = 100;
    c->aof_rewrite_min_size = 64LL << 20;
    c->aof_use_rdb_preamble = 1;
    c->cluster_enabled = 0;
    c->cluster_id = 1;
    c->cluster_bind = strdup("127.0.0.1:7479");
    c->cluster_dir = strdup("cluster");
    if (!c->cluster_bind || !c->cluster_dir)
        goto fail;
    c->cluster_election_timeout = 1000;
    c->cluster_snapshot_threshold = 65536;
    c->cluster_snapshot_trailing = 8192;
    c->cluster_write_timeout = 10000;
    c->slowlog_slower_than = 10000;
    c->slowlog_max_len = 128;
    c->latency_monitor_threshold = 0;
    return 0;

fail:
    akv_config_fini(c);
    return -ENOMEM;
}

void akv_config_fini(struct akv_config *c)
{
    size_t i;

    if (!c)
        return;
    for (i = 0; i < c->nbind; i++)
        free(c->bind[i]);
    free(c->vectors);
    free(c->logfile);
    free(c->requirepass);
    free(c->config_file);
    free(c->dir);
    free(c->appendfilename);
    free(c->cluster_bind);
    free(c->cluster_announce);
    free(c->cluster_dir);
    free(c->cluster_join);
    memset(c, 0, sizeof(*c));
}

/* The growable argument vector of the line splitter. */
struct args {
    const char **v;
    size_t n, cap;
};

static int args_push(struct args *a, const char *s)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        const char **v = realloc(a->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = s;
    return 0;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Splits line[0..len) (no '\n') into arguments (the inline syntax of
 * util/text.h) decoded into out, each NUL-terminated, with pointers pushed
 * on a. Decoding never lengthens an argument and every argument but the
 * last is followed by at least one blank, so out needs len + 1 bytes.
 * Returns 0, -EINVAL with a reason, or -ENOMEM. */
static int split_line(const char *line, size_t len, char *out, struct args *a, char *err,
                      size_t errlen)
{
    size_t pos = 0, o = 0;
    struct akv_text_arg arg;
    const char *why = NULL;
    int rc;

    a->n = 0;
    while ((rc = akv_text_split_next(line, len, &pos, out + o, len + 1 - o, &arg, &why)) > 0) {
        if (!arg.quoted)
            memcpy(out + o, arg.p, arg.len);
        if (memchr(out + o, '\0', arg.len)) {
            akv_errf(err, errlen, "\\x00 is not allowed in an argument");
            return -EINVAL;
        }
        out[o + arg.len] = '\0';
        if (args_push(a, out + o) < 0) {
            akv_errf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        o += arg.len + 1;
    }
    if (rc < 0)
        akv_errf(err, errlen, "%s", why ? why : "argument too long");
    return rc;
}

/* Whether line[0..len) (no leading blanks) sets a secret directive: its
 * first word, unquoted, names a DF_SECRET row. A quoting error on such a
 * line must not be reported in words that quote the value. */
static int secret_line(const char *line, size_t len)
{
    char name[64];
    size_t n = 0;
    const struct directive *d;

    while (n < len && n < sizeof(name) - 1 && !is_blank(line[n]))
        n++;
    memcpy(name, line, n);
    name[n] = '\0';
    d = lookup(name);
    return d && (d->flags & DF_SECRET);
}

int akv_config_load_mem(struct akv_config *c, const char *buf, size_t len, const char *name,
                        char *err, size_t errlen)
{
    unsigned char seen[ARRAY_SIZE(directives)] = {0};
    struct args a = {0};
    char reason[AKV_QUOTE_BUF + 256];
    char *scratch = NULL;
    size_t pos = 0, lineno = 0;
    int rc = 0;

    if (!name)
        name = "(config)";
    if (err && errlen)
        err[0] = '\0';
    /* One scratch buffer for the whole source: no line needs more than the
     * longest line allowed, and no line can be longer than the source. */
    scratch = malloc((len < AKV_CONFIG_LINE_MAX ? len : AKV_CONFIG_LINE_MAX) + 1);
    if (!scratch) {
        akv_errf(err, errlen, "%s: out of memory", name);
        return -ENOMEM;
    }
    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t linelen = nl ? (size_t)(nl - line) : len - pos;
        const struct directive *d;
        size_t i;

        pos += linelen + (nl ? 1 : 0);
        lineno++;
        if (linelen > AKV_CONFIG_LINE_MAX) {
            snprintf(reason, sizeof(reason), "line is longer than %u bytes",
                     (unsigned)AKV_CONFIG_LINE_MAX);
            rc = -EINVAL;
            goto fail;
        }
        if (memchr(line, '\0', linelen)) {
            snprintf(reason, sizeof(reason), "NUL byte in line");
            rc = -EINVAL;
            goto fail;
        }
        for (i = 0; i < linelen && is_blank(line[i]); i++)
            ;
        if (i == linelen || line[i] == '#')
            continue;
        rc = split_line(line, linelen, scratch, &a, reason, sizeof(reason));
        if (rc < 0) {
            if (secret_line(line + i, linelen - i))
                snprintf(reason, sizeof(reason), "bad quoting in a secret (not shown)");
            goto fail;
        }
        d = lookup(a.v[0]);
        if (!d) {
            char shown[AKV_QUOTE_BUF];
            snprintf(reason, sizeof(reason), "unknown directive '%s'", show(shown, a.v[0]));
            rc = -EINVAL;
            goto fail;
        }
        rc = apply(c, d, !seen[d - directives], a.n - 1, a.v + 1, reason, sizeof(reason));
        if (rc < 0)
            goto fail;
        seen[d - directives] = 1;
    }
    free(a.v);
    free(scratch);
    return 0;

fail:
    akv_errf(err, errlen, "%s:%zu: %s", name, lineno, reason);
    free(a.v);
    free(scratch);
    return rc;
}

/* Reads all of fd into a fresh buffer. Returns 0 or -errno. */
static int read_all(int fd, char **bufp, size_t *lenp)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int rc;

    if (!buf)
        return -ENOMEM;
    for (;;) {
        ssize_t n;
        if (len == cap) {
            char *nbuf;
            if (cap >= FILE_MAX) {
                rc = -EFBIG;
                goto fail;
            }
            cap *= 2;
            nbuf = realloc(buf, cap);
            if (!nbuf) {
                rc = -ENOMEM;
                goto fail;
            }
            buf = nbuf;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *bufp = buf;
    *lenp = len;
    return 0;

fail:
    free(buf);
    return rc;
}

int akv_config_load_file(struct akv_config *c, const char *path, char *err, size_t errlen)
{
    char *buf = NULL, *copy = NULL;
    size_t len = 0;
    int fd, rc;

    if (strcmp(path, "-") == 0) {
        /* Standard input, as redis-server reads it: not ours to close, and
         * nothing to record for a reload. */
        path = "(stdin)";
        rc = read_all(STDIN_FILENO, &buf, &len);
        if (rc < 0)
            goto fail_io;
        rc = akv_config_load_mem(c, buf, len, path, err, errlen);
        free(buf);
        return rc;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto fail_io;
    }
    rc = read_all(fd, &buf, &len);
    close(fd);
    if (rc < 0)
        goto fail_io;
    copy = strdup(path);
    if (!copy) {
        rc = -ENOMEM;
        goto fail_io;
    }
    rc = akv_config_load_mem(c, buf, len, path, err, errlen);
    free(buf);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    free(c->config_file);
    c->config_file = copy;
    return 0;

fail_io:
    akv_errf(err, errlen, "%s: %s", path, strerror(-rc));
    free(buf);
    return rc;
}

/* Checks and applies one directive (apply), except that, as in Redis's
 * CONFIG SET, a directive of several arguments ("client-output-buffer-limit
 * 32mb 4mb 10", "bind a b") may take them space-separated in one string. */
static int set_words(struct akv_config *c, const struct directive *d, int first, size_t argc,
                     const char *const *argv, char *err, size_t errlen)
{
    if (argc == 1 && d->max_args > 1 && strpbrk(argv[0], " \t") != NULL) {
        char copy[1024], *save = NULL, *tok;
        const char *words[AKV_CONFIG_BIND_MAX + 4];
        size_t n = 0;

        if (strlen(argv[0]) >= sizeof(copy)) {
            akv_errf(err, errlen, "'%s' value too long", d->name);
            return -EINVAL;
        }
        strcpy(copy, argv[0]);
        for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            if (n == sizeof(words) / sizeof(words[0])) {
                akv_errf(err, errlen, "'%s' takes at most %zu arguments", d->name, d->max_args);
                return -EINVAL;
            }
            words[n++] = tok;
        }
        return apply(c, d, first, n, words, err, errlen);
    }
    return apply(c, d, first, argc, argv, err, errlen);
}

int akv_config_set(struct akv_config *c, const char *name, size_t argc, const char *const *argv,
                   char *err, size_t errlen)
{
    const struct directive *d = lookup(name);

    if (!d) {
        char shown[AKV_QUOTE_BUF];
        akv_errf(err, errlen, "unknown directive '%s'", show(shown, name));
        return -EINVAL;
    }
    /* CONFIG SET passes one value, which set_words splits if need be. */
    return set_words(c, d, 1, argc, argv, err, errlen);
}

int akv_config_get(const struct akv_config *c, const char *name, char *out, size_t outlen)
{
    const struct directive *d = lookup(name);

    if (!d)
        return -ENOENT;
    return d->get(c, d, out, outlen);
}

int akv_config_same(const struct akv_config *a, const struct akv_config *b, const char *name)
{
    const struct directive *d = lookup(name);
    char va[4096], vb[4096];

    if (!d)
        return -ENOENT;
    if (d->flags & DF_SECRET) {
        const char *sa = *(const char *const *)cfield(a, d);
        const char *sb = *(const char *const *)cfield(b, d);
        return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
    }
    /* A value too long for the buffers counts as changed. */
    if (d->get(a, d, va, sizeof(va)) < 0 || d->get(b, d, vb, sizeof(vb)) < 0)
        return 0;
    return strcmp(va, vb) == 0;
}

static const char *name_list[ARRAY_SIZE(directives) + 1];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

/* Built from the table, once, so that a new row needs no second list. */
static void names_build(void)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(directives); i++)
        name_list[i] = directives[i].name;
    name_list[i] = NULL;
}

const char *const *akv_config_names(void)
{
    pthread_once(&names_once, names_build);
    return name_list;
}

int akv_config_runtime(const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(runtime_directives); i++)
        if (strcasecmp(name, runtime_directives[i]) == 0)
            return 1;
    return 0;
}

int akv_config_is_secret(const char *name)
{
    const struct directive *d = lookup(name);

    return d && (d->flags & DF_SECRET);
}

int akv_config_is_path(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(path_directives); i++)
        if (strcasecmp(name, path_directives[i]) == 0)
            return 1;
    return 0;
}

int akv_config_client_settable(const char *name)
{
    return akv_config_runtime(name) && !akv_config_is_path(name);
}

/* The command line. */

/* Options that are not directives, and the short forms of some that are. */
enum { OPT_DIRECTIVE, OPT_CONFIG, OPT_TEST, OPT_VERSION, OPT_HELP };

static const struct {
    char letter;      /* the short form, or 0 */
    const char *flag; /* "-p": how a message names the short form */
    const char *name; /* the long form without "--"; for OPT_DIRECTIVE the directive */
    int kind;
} options[] = {
    {'c', "-c", "config", OPT_CONFIG},      {'p', "-p", "port", OPT_DIRECTIVE},
    {'b', "-b", "bind", OPT_DIRECTIVE},     {'V', "-V", "vectors", OPT_DIRECTIVE},
    {'l', "-l", "loglevel", OPT_DIRECTIVE}, {'w', "-w", "workers", OPT_DIRECTIVE},
    {'t', "-t", "test-config", OPT_TEST},   {'v', "-v", "version", OPT_VERSION},
    {'h', "-h", "help", OPT_HELP},
};

static int short_option(char letter)
{
    for (size_t i = 0; i < ARRAY_SIZE(options); i++)
        if (options[i].letter == letter)
            return (int)i;
    return -1;
}

/* Whether s ends the arguments of a "--directive": another "--" option or
 * a short option ("-1" and "-" are values). */
static int is_option(const char *s)
{
    return s[0] == '-' && (s[1] == '-' || (s[1] != '\0' && short_option(s[1]) >= 0));
}

static int push_word(struct akv_config_args *a, size_t *cap, const char *w)
{
    if (a->nwords == *cap) {
        size_t n = *cap ? *cap * 2 : 16;
        const char **v = realloc(a->words, n * sizeof(*v));
        if (!v)
            return -ENOMEM;
        a->words = v;
        *cap = n;
    }
    a->words[a->nwords++] = w;
    return 0;
}

static int push_opt(struct akv_config_args *a, size_t *cap, const char *flag, size_t flaglen,
                    const char *name)
{
    if (a->nopts == *cap) {
        size_t n = *cap ? *cap * 2 : 8;
        struct akv_config_opt *v = realloc(a->opts, n * sizeof(*v));
        if (!v)
            return -ENOMEM;
        a->opts = v;
        *cap = n;
    }
    a->opts[a->nopts++] = (struct akv_config_opt){
        .flag = flag, .flaglen = flaglen, .name = name, .first = a->nwords, .argc = 0};
    return 0;
}

int akv_config_args_parse(struct akv_config_args *a, int argc, const char *const *argv, char *err,
                          size_t errlen)
{
    size_t optcap = 0, wordcap = 0;
    char shown[AKV_QUOTE_BUF];
    int i = 1, rc = -EINVAL;

    memset(a, 0, sizeof(*a));
    if (err && errlen)
        err[0] = '\0';
    /* The configuration file may come first, as redis-server takes it. */
    if (argc > 1 && (argv[1][0] != '-' || argv[1][1] == '\0')) {
        a->config_file = argv[1];
        i = 2;
    }
    while (i < argc) {
        const char *s = argv[i];
        const char *value = NULL; /* a value given with the option itself */
        const char *flag;
        size_t flaglen;
        int kind, k = -1;

        if (s[0] == '-' && s[1] == '-') {
            /* --name, --name=value */
            const char *eq = strchr(s + 2, '=');
            size_t namelen = eq ? (size_t)(eq - (s + 2)) : strlen(s + 2);
            char name[64];
            const struct directive *d = NULL;

            flag = s;
            flaglen = 2 + namelen;
            value = eq ? eq + 1 : NULL;
            for (size_t j = 0; j < ARRAY_SIZE(options); j++) {
                if (options[j].kind != OPT_DIRECTIVE && strlen(options[j].name) == namelen &&
                    strncmp(s + 2, options[j].name, namelen) == 0)
                    k = (int)j;
            }
            if (k < 0 && namelen > 0 && namelen < sizeof(name)) {
                memcpy(name, s + 2, namelen);
                name[namelen] = '\0';
                d = lookup(name);
            }
            if (k < 0 && !d) {
                /* Only the name: after '=' may come a password. */
                char bare[AKV_QUOTE_BUF];
                akv_quote(bare, s, flaglen);
                akv_errf(err, errlen,
                         "unknown option '%s' (neither a flag nor a directive; see --help)", bare);
                goto fail;
            }
            if (k < 0) {
                /* --directive: the next argument is always its value, then
                 * the ones up to the next option. */
                if (push_opt(a, &optcap, flag, flaglen, d->name) < 0)
                    goto nomem;
                i++;
                if (value) {
                    if (push_word(a, &wordcap, value) < 0)
                        goto nomem;
                } else {
                    for (int n = 0; i < argc && (n == 0 || !is_option(argv[i])); n++, i++) {
                        if (push_word(a, &wordcap, argv[i]) < 0)
                            goto nomem;
                    }
                }
                a->opts[a->nopts - 1].argc = a->nwords - a->opts[a->nopts - 1].first;
                continue;
            }
            kind = options[k].kind;
            i++;
        } else if (s[0] == '-' && s[1] != '\0') {
            /* -x, -xVALUE, -x VALUE, and -tv-style groups of flags. */
            const char *p = s + 1;

            for (;;) {
                k = short_option(*p);
                if (k < 0) {
                    akv_errf(err, errlen, "unknown option '-%s'", akv_quote(shown, p, 1));
                    goto fail;
                }
                flag = options[k].flag;
                flaglen = 2;
                kind = options[k].kind;
                if (kind == OPT_DIRECTIVE || kind == OPT_CONFIG) {
                    value = p[1] ? p + 1 : NULL;
                    break;
                }
                if (kind != OPT_TEST || p[1] == '\0')
                    break;
                a->test_config = 1;
                p++;
            }
            i++;
        } else {
            akv_errf(err, errlen,
                     "unexpected argument '%s' (only the first argument may name the "
                     "configuration file)",
                     show(shown, s));
            goto fail;
        }

        /* A known option, k, given as flag: its value if it takes one. */
        if (kind == OPT_DIRECTIVE || kind == OPT_CONFIG) {
            if (!value) {
                if (i == argc) {
                    akv_errf(err, errlen, "option '%.*s' needs a value", (int)flaglen, flag);
                    goto fail;
                }
                value = argv[i++];
            }
        } else if (value) {
            akv_errf(err, errlen, "option '%.*s' takes no value", (int)flaglen, flag);
            goto fail;
        }
        switch (kind) {
        case OPT_DIRECTIVE:
            if (push_opt(a, &optcap, flag, flaglen, options[k].name) < 0 ||
                push_word(a, &wordcap, value) < 0)
                goto nomem;
            a->opts[a->nopts - 1].argc = 1;
            break;
        case OPT_CONFIG:
            if (a->config_file) {
                akv_errf(err, errlen, "option '%.*s': a configuration file is already given",
                         (int)flaglen, flag);
                goto fail;
            }
            a->config_file = value;
            break;
        case OPT_TEST:
            a->test_config = 1;
            break;
        case OPT_VERSION:
            a->version = 1;
            return 0;
        default:
            a->help = 1;
            return 0;
        }
    }
    return 0;

nomem:
    akv_errf(err, errlen, "out of memory");
    rc = -ENOMEM;
fail:
    akv_config_args_fini(a);
    return rc;
}

void akv_config_args_fini(struct akv_config_args *a)
{
    if (!a)
        return;
    free(a->opts);
    free(a->words);
    memset(a, 0, sizeof(*a));
}

int akv_config_args_apply(struct akv_config *c, const struct akv_config_args *a, char *err,
                          size_t errlen)
{
    unsigned char seen[ARRAY_SIZE(directives)] = {0};
    char reason[AKV_QUOTE_BUF + 256];

    if (err && errlen)
        err[0] = '\0';
    for (size_t i = 0; i < a->nopts; i++) {
        const struct akv_config_opt *o = &a->opts[i];
        const struct directive *d = lookup(o->name);
        int rc;

        if (!d) {
            /* Only a struct not made by akv_config_args_parse gets here. */
            akv_errf(err, errlen, "%.*s: unknown directive", (int)o->flaglen, o->flag);
            return -EINVAL;
        }
        reason[0] = '\0';
        rc = set_words(c, d, !seen[d - directives], o->argc, a->words + o->first, reason,
                       sizeof(reason));
        if (rc < 0) {
            akv_errf(err, errlen, "%.*s: %s", (int)o->flaglen, o->flag,
                     reason[0] ? reason : "invalid value");
            return rc;
        }
        seen[d - directives] = 1;
    }
    return 0;
}

/* CONFIG REWRITE. */

#define REWRITE_MARKER "# Generated by CONFIG REWRITE"

/* A growable output buffer for the rewrite; a failed append sets oom. */
struct obuf {
    char *p;
    size_t len, cap;
    int oom;
    const char *toolong; /* a directive whose line would not read back */
};

static void out_add(struct obuf *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        char *p;
        while (cap < o->len + n + 1)
            cap *= 2;
        p = realloc(o->p, cap);
        if (!p) {
            o->oom = 1;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void out_str(struct obuf *o, const char *s)
{
    out_add(o, s, strlen(s));
}

/* One argument as the file parser reads it back: bare when it holds only
 * printable ASCII other than quotes, backslash and '#', else in double
 * quotes with \" \\ \n \r \t and \xHH escapes (bytes from 0x80 stay as
 * they are); "" for the empty string. */
static void out_word(struct obuf *o, const char *s)
{
    size_t i, n = strlen(s);
    int bare = n > 0;

    for (i = 0; i < n && bare; i++) {
        unsigned char ch = (unsigned char)s[i];
        bare = ch > 0x20 && ch < 0x7f && !strchr("\"'\\#", ch);
    }
    if (bare) {
        out_add(o, s, n);
        return;
    }
    out_add(o, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        switch (ch) {
        case '"':
            out_add(o, "\\\"", 2);
            break;
        case '\\':
            out_add(o, "\\\\", 2);
            break;
        case '\n':
            out_add(o, "\\n", 2);
            break;
        case '\r':
            out_add(o, "\\r", 2);
            break;
        case '\t':
            out_add(o, "\\t", 2);
            break;
        default:
            if (ch < 0x20 || ch == 0x7f) {
                snprintf(esc, sizeof(esc), "\\x%02x", ch);
                out_add(o, esc, 4);
            } else {
                out_add(o, (const char *)&ch, 1);
            }
        }
    }
    out_add(o, "\"", 1);
}

/* d's value in c, in a buffer the caller frees (values have no fixed
 * bound: a password may be as long as a line). NULL: no memory. */
static char *get_alloc(const struct akv_config *c, const struct directive *d)
{
    size_t cap = 256;

    for (;;) {
        char *v = malloc(cap);
        int rc;
        if (!v)
            return NULL;
        rc = d->get(c, d, v, cap);
        if (rc == 0)
            return v;
        free(v);
        if (rc != -ENOSPC || cap > 2 * AKV_CONFIG_LINE_MAX)
            return NULL;
        cap *= 4;
    }
}

/* "name value..." and a newline: a list directive's words one by one (its
 * getter separates them with spaces, and none holds a blank), any other
 * value as one argument. */
static void out_directive(struct obuf *o, const struct akv_config *c, const struct directive *d)
{
    char *v = get_alloc(c, d);
    size_t start = o->len;

    if (!v) {
        o->oom = 1;
        return;
    }
    out_str(o, d->name);
    if (d->max_args > 1) {
        char *save = NULL, *tok;
        for (tok = strtok_r(v, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            out_add(o, " ", 1);
            out_word(o, tok);
        }
    } else {
        out_add(o, " ", 1);
        out_word(o, v);
    }
    /* Escapes can make a value from a long line longer than a line may be. */
    if (!o->oom && o->len - start > AKV_CONFIG_LINE_MAX)
        o->toolong = d->name;
    out_add(o, "\n", 1);
    free(v);
}

/* The directive a line of a file sets, or NULL for a comment, a blank
 * line, a line the parser would refuse or an unknown name (kept as they
 * are). */
static const struct directive *line_directive(const char *line, size_t len)
{
    char name[64];
    size_t pos = 0;
    struct akv_text_arg arg;
    const char *why = NULL;
    size_t i;

    for (i = 0; i < len && is_blank(line[i]); i++)
        ;
    if (i == len || line[i] == '#')
        return NULL;
    if (akv_text_split_next(line, len, &pos, name, sizeof(name), &arg, &why) <= 0)
        return NULL;
    if (arg.len >= sizeof(name))
        return NULL;
    if (!arg.quoted)
        memcpy(name, arg.p, arg.len);
    name[arg.len] = '\0';
    return lookup(name);
}

int akv_config_rewrite_mem(const struct akv_config *c, const char *buf, size_t len,
                           const char *name, char **out, size_t *outlen, char *err, size_t errlen)
{
    struct akv_config infile, defaults;
    size_t nlines = 0, pos, i, k;
    int last[ARRAY_SIZE(directives)];
    unsigned char rewrite[ARRAY_SIZE(directives)] = {0};
    int *dir_of = NULL; /* per line: the directive's index, or -1 */
    int marker = 0, appended = 0, rc;
    struct obuf o = {0};

    *out = NULL;
    *outlen = 0;
    if (akv_config_init(&defaults) < 0 || akv_config_init(&infile) < 0) {
        akv_config_fini(&defaults);
        akv_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* What the file says now: a directive it sets to the running value
     * keeps its line as it is. */
    rc = akv_config_load_mem(&infile, buf, len, name, err, errlen);
    if (rc < 0)
        goto out;
    for (pos = 0; pos < len; nlines++) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        pos = nl ? (size_t)(nl - buf) + 1 : len;
    }
    dir_of = calloc(nlines ? nlines : 1, sizeof(*dir_of));
    if (!dir_of) {
        rc = -ENOMEM;
        goto oom;
    }
    for (k = 0; k < ARRAY_SIZE(directives); k++)
        last[k] = -1;
    for (pos = 0, i = 0; i < nlines; i++) {
        const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        const struct directive *d = line_directive(line, n);

        dir_of[i] = d ? (int)(d - directives) : -1;
        if (d)
            last[d - directives] = (int)i;
        if (n >= strlen(REWRITE_MARKER) &&
            memcmp(line, REWRITE_MARKER, strlen(REWRITE_MARKER)) == 0)
            marker = 1;
        pos += n + (nl ? 1 : 0);
    }
    for (k = 0; k < ARRAY_SIZE(directives); k++)
        rewrite[k] = akv_config_same(&infile, c, directives[k].name) == 0;

    /* The file, line by line: a directive that changed is written at its
     * last line (the one that took effect) and its other lines dropped. */
    for (pos = 0, i = 0; i < nlines; i++) {
        const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        int d = dir_of[i];

        pos += n + (nl ? 1 : 0);
        if (d >= 0 && rewrite[d]) {
            if (last[d] == (int)i)
                out_directive(&o, c, &directives[d]);
            continue;
        }
        out_add(&o, line, n);
        out_add(&o, "\n", 1);
    }
    /* Then, under the marker, what differs from the default and has no
     * line: command-line settings and CONFIG SET changes. */
    for (k = 0; k < ARRAY_SIZE(directives); k++) {
        if (last[k] >= 0 || akv_config_same(&defaults, c, directives[k].name) != 0)
            continue;
        if (!appended++ && !marker)
            out_str(&o, REWRITE_MARKER "\n");
        out_directive(&o, c, &directives[k]);
    }
    if (!o.p)
        out_add(&o, "", 0);
    if (o.oom) {
        rc = -ENOMEM;
        goto oom;
    }
    if (o.toolong) {
        rc = -EINVAL;
        akv_errf(err, errlen, "the value of '%s' is too long for a line of the file (%u bytes)",
                 o.toolong, (unsigned)AKV_CONFIG_LINE_MAX);
        goto out;
    }
    *out = o.p;
    *outlen = o.len;
    o.p = NULL;
    rc = 0;
    goto out;

oom:
    akv_errf(err, errlen, "out of memory");
out:
    free(o.p);
    free(dir_of);
    akv_config_fini(&infile);
    akv_config_fini(&defaults);
    return rc;
}

/* Writes all of p[0, n) to fd. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int akv_config_rewrite_prepare(const struct akv_config *c, const char *path, char **target,
                               char **text, size_t *textlen, char *err, size_t errlen)
{
    char *real = NULL, *buf = NULL;
    size_t len = 0;
    int fd, rc;

    *target = *text = NULL;
    *textlen = 0;
    if (err && errlen)
        err[0] = '\0';
    /* A symbolic link keeps pointing at the file, which is what changes. */
    real = realpath(path, NULL);
    if (!real && errno != ENOENT) {
        rc = -errno;
        akv_errf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (!real && !(real = strdup(path))) {
        akv_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* A file that is gone is rewritten from nothing, as Redis does. Not
     * blocking: a FIFO put in its place must not hold the caller. */
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            rc = -EINVAL;
            akv_errf(err, errlen, "%s: not a regular file", real);
            goto out;
        }
        rc = read_all(fd, &buf, &len);
        close(fd);
        if (rc < 0) {
            akv_errf(err, errlen, "%s: %s", real, strerror(-rc));
            goto out;
        }
    } else if (errno != ENOENT) {
        rc = -errno;
        akv_errf(err, errlen, "%s: %s", real, strerror(-rc));
        goto out;
    }
    rc = akv_config_rewrite_mem(c, buf ? buf : "", len, real, text, textlen, err, errlen);
    if (rc == 0) {
        *target = real;
        real = NULL;
    }

out:
    free(buf);
    free(real);
    return rc;
}

int akv_config_write_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    char *tmp = NULL;
    struct stat st;
    int have_st, fd, rc;

    if (err && errlen)
        err[0] = '\0';
    have_st = stat(path, &st) == 0;
    if (asprintf(&tmp, "%.*s.attnkvd-rewrite-XXXXXX", dirlen, path) < 0) {
        akv_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        akv_errf(err, errlen, "cannot create a temporary file in %.*s: %s", dirlen ? dirlen : 1,
                 dirlen ? path : ".", strerror(-rc));
        free(tmp);
        return rc;
    }
    if (have_st) {
        /* Same mode, and the same owner when we may set it. */
        if (fchown(fd, st.st_uid, st.st_gid) < 0) {
            /* Not ours to give away: the file becomes ours. */
        }
        if (fchmod(fd, st.st_mode & 07777) < 0) {
            rc = -errno;
            akv_errf(err, errlen, "%s: %s", tmp, strerror(-rc));
            goto fail;
        }
    }
    rc = write_all(fd, text, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (rc == 0) {
        rc = close(fd) < 0 ? -errno : 0;
        fd = -1;
    }
    if (rc < 0) {
        akv_errf(err, errlen, "writing %s: %s", tmp, strerror(-rc));
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        rc = -errno;
        akv_errf(err, errlen, "renaming %s to %s: %s", tmp, path, strerror(-rc));
        goto fail;
    }
    free(tmp);
    /* The rename itself, to disk. */
    {
        char *dir = dirlen ? strndup(path, (size_t)(dirlen > 1 ? dirlen - 1 : 1)) : strdup(".");
        int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return rc;
}

int akv_config_rewrite(const struct akv_config *c, const char *path, char *err, size_t errlen)
{
    char *target = NULL, *text = NULL;
    size_t len = 0;
    int rc = akv_config_rewrite_prepare(c, path, &target, &text, &len, err, errlen);

    if (rc == 0)
        rc = akv_config_write_file(target, text, len, err, errlen);
    free(target);
    free(text);
    return rc;
}

/* Where a setting comes from, for --test-config's messages. */

int akv_config_where(const struct akv_config *c, const struct akv_config_args *a, const char *name,
                     char *out, size_t outlen)
{
    const struct directive *d = lookup(name);
    char *buf = NULL;
    size_t len = 0, pos, lineno, found = 0;
    int fd, rc;

    if (!d)
        return -ENOENT;
    for (size_t i = a ? a->nopts : 0; i-- > 0;) {
        if (lookup(a->opts[i].name) == d)
            return getf(out, outlen, "%.*s", (int)a->opts[i].flaglen, a->opts[i].flag);
    }
    if (!c->config_file)
        return getf(out, outlen, "%s", a && a->config_file ? "standard input" : "the default");
    fd = open(c->config_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return getf(out, outlen, "%s", c->config_file);
    rc = read_all(fd, &buf, &len);
    close(fd);
    if (rc < 0)
        return getf(out, outlen, "%s", c->config_file);
    for (pos = 0, lineno = 1; pos < len; lineno++) {
        const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        if (line_directive(line, n) == d)
            found = lineno;
        pos += n + (nl ? 1 : 0);
    }
    free(buf);
    if (found)
        return getf(out, outlen, "%s:%zu", c->config_file, found);
    return getf(out, outlen, "the default");
}
