/*
 * test-config.c - the config module: defaults, every directive valid and
 * invalid (with the exact "name:line:" error), the file syntax (quotes,
 * escapes, CRLF, comments, long lines), overrides and bind accumulation,
 * get/set round trips, conf/attnkvd.conf, memory sizes with units, the
 * secrecy of requirepass, CONFIG REWRITE (the text: comments and order
 * kept, duplicates, the marker, quoting, read back the same; the file:
 * atomic, mode kept, a link's target, errors), the command line
 * (akv_config_args_parse and _apply), standard input as the file, and the
 * fuzzer's regression inputs
 * (fuzz/regression/config/, replayed when present).
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dirent.h>
#include <sys/stat.h>

#include "replay.h"
#include "attnkv/query.h"
#include "proto/proto.h"
#include "server/config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct akv_config cfg;
static char err[1024];

static void setup(void)
{
    ck_assert_int_eq(akv_config_init(&cfg), 0);
    err[0] = '\0';
}

static void teardown(void)
{
    akv_config_fini(&cfg);
}

static int load(const char *text)
{
    return akv_config_load_mem(&cfg, text, strlen(text), "t.conf", err, sizeof(err));
}

static const char *get(const char *name)
{
    static char out[4096];

    ck_assert_msg(akv_config_get(&cfg, name, out, sizeof(out)) == 0, "get %s", name);
    return out;
}

/* The source root, from the environment tests/meson.build sets. */
static const char *source_root(void)
{
    const char *r = getenv("AKV_SOURCE_ROOT");

    return r && *r ? r : NULL;
}

START_TEST(test_defaults)
{
    char *vec = akv_config_default_vectors();

    ck_assert_uint_eq(cfg.nbind, 1);
    ck_assert_str_eq(cfg.bind[0], "127.0.0.1");
    ck_assert_int_eq(cfg.port, 6479);
    ck_assert_int_eq(cfg.workers, 0);
    ck_assert_int_eq(cfg.neighbor_lists, 65536);
    ck_assert_int_eq(cfg.databases, 16);
    ck_assert_uint_eq(cfg.query.k, 5);
    ck_assert_int_eq(cfg.query.attn, AKV_ATTN_DOT);
    ck_assert(cfg.query.temperature == 0.1);
    ck_assert_int_eq(cfg.query.metric, AKV_METRIC_L2);
    ck_assert_uint_eq(cfg.query.explain, 0);
    ck_assert_int_eq(cfg.query.skip_rank, 0);
    ck_assert_int_eq(cfg.maxclients, 10000);
    ck_assert_int_eq(cfg.loglevel, AKV_LOG_NOTICE);
    ck_assert_ptr_null(cfg.logfile);
    ck_assert_ptr_null(cfg.config_file);
    ck_assert_ptr_nonnull(vec);
    ck_assert_str_eq(cfg.vectors, vec);
    free(vec);

    ck_assert_str_eq(get("bind"), "127.0.0.1");
    ck_assert_str_eq(get("port"), "6479");
    ck_assert_str_eq(get("workers"), "0");
    ck_assert_str_eq(get("count"), "5");
    ck_assert_str_eq(get("attention"), "dot");
    ck_assert_str_eq(get("temperature"), "0.1");
    ck_assert_str_eq(get("metric"), "l2");
    ck_assert_str_eq(get("maxclients"), "10000");
    ck_assert_str_eq(get("loglevel"), "notice");
    ck_assert_str_eq(get("logfile"), "");

    /* Limits and security. */
    ck_assert_str_eq(get("proto-max-inline-len"), "65536");
    ck_assert_str_eq(get("proto-max-bulk-len"), "16777216");
    ck_assert_str_eq(get("proto-max-multibulk-len"), "65536");
    ck_assert_str_eq(get("client-query-buffer-limit"), "67108864");
    ck_assert_str_eq(get("client-output-buffer-limit"), "67108864 8388608 60");
    ck_assert_str_eq(get("timeout"), "0");
    ck_assert_str_eq(get("max-key-len"), "4096");
    ck_assert_str_eq(get("max-value-len"), "4096");
    ck_assert_str_eq(get("maxmemory"), "0");
    ck_assert_str_eq(get("maxmemory-clients"), "1073741824");
    ck_assert_str_eq(get("maxkeys"), "0");
    ck_assert_str_eq(get("protected-mode"), "yes");
    ck_assert_str_eq(get("databases"), "16");
    ck_assert_ptr_null(cfg.requirepass);
    ck_assert_int_eq(cfg.protected_mode, 1);
}
END_TEST

START_TEST(test_default_vectors)
{
    char *p;

    setenv("AKV_VECTORS", "/data/v.akv", 1);
    p = akv_config_default_vectors();
    ck_assert_str_eq(p, "/data/v.akv");
    free(p);

    unsetenv("AKV_VECTORS");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    p = akv_config_default_vectors();
    ck_assert_str_eq(p, "/xdg/attnkv/glove-6B-100d.akv");
    free(p);

    /* The XDG spec says to ignore a relative XDG_CACHE_HOME. */
    setenv("XDG_CACHE_HOME", "rel", 1);
    p = akv_config_default_vectors();
    ck_assert_str_eq(p, "/home/u/.cache/attnkv/glove-6B-100d.akv");
    free(p);

    setenv("AKV_VECTORS", "", 1);
    unsetenv("XDG_CACHE_HOME");
    p = akv_config_default_vectors();
    ck_assert_str_eq(p, "/home/u/.cache/attnkv/glove-6B-100d.akv");
    free(p);

    unsetenv("HOME");
    p = akv_config_default_vectors();
    ck_assert_str_eq(p, "/var/cache/attnkv/glove-6B-100d.akv");
    free(p);
}
END_TEST

START_TEST(test_fini_twice_and_null)
{
    akv_config_fini(NULL);
    akv_config_fini(&cfg);
    akv_config_fini(&cfg);
    ck_assert_int_eq(akv_config_init(&cfg), 0);
}
END_TEST

/* Each directive with a valid value, and what get then says. */
static const struct {
    const char *line, *name, *value;
} valid[] = {
    {"bind 10.1.2.3", "bind", "10.1.2.3"},
    {"bind ::1", "bind", "::1"},
    {"bind 0.0.0.0 :: fe80::1:2", "bind", "0.0.0.0 :: fe80::1:2"},
    {"port 0", "port", "0"},
    {"port 65535", "port", "65535"},
    {"port 00080", "port", "80"},
    {"vectors /srv/v.akv", "vectors", "/srv/v.akv"},
    {"workers 0", "workers", "0"},
    {"workers 256", "workers", "256"},
    {"neighbor-lists 0", "neighbor-lists", "0"},
    {"neighbor-lists 16777216", "neighbor-lists", "16777216"},
    /* The earlier spelling of the directive is still read. */
    {"neighbour-lists 7", "neighbor-lists", "7"},
    {"databases 1", "databases", "1"},
    {"databases 1024", "databases", "1024"},
    {"count 1", "count", "1"},
    {"count 1000", "count", "1000"},
    {"attention cosine", "attention", "cosine"},
    {"attention DOT", "attention", "dot"},
    {"temperature 2", "temperature", "2"},
    {"temperature 0.05", "temperature", "0.05"},
    {"temperature 1e-3", "temperature", "0.001"},
    {"temperature .5", "temperature", "0.5"},
    {"metric cosine", "metric", "cosine"},
    {"metric dot", "metric", "dot"},
    {"metric L2", "metric", "l2"},
    {"maxclients 1", "maxclients", "1"},
    {"maxclients 1000000", "maxclients", "1000000"},
    {"loglevel debug", "loglevel", "debug"},
    {"loglevel verbose", "loglevel", "verbose"},
    {"loglevel Warning", "loglevel", "warning"},
    {"logfile /var/log/attnkvd.log", "logfile", "/var/log/attnkvd.log"},
    {"logfile \"\"", "logfile", ""},
    {"proto-max-inline-len 2k", "proto-max-inline-len", "2000"},
    {"proto-max-inline-len 1KB", "proto-max-inline-len", "1024"},
    {"proto-max-inline-len 512mb", "proto-max-inline-len", "536870912"},
    {"proto-max-bulk-len 2048", "proto-max-bulk-len", "2048"},
    {"proto-max-bulk-len 1gb", "proto-max-bulk-len", "1073741824"},
    {"proto-max-multibulk-len 16", "proto-max-multibulk-len", "16"},
    {"client-query-buffer-limit 10mb", "client-query-buffer-limit", "10485760"},
    {"client-output-buffer-limit 0 0 0", "client-output-buffer-limit", "0 0 0"},
    {"client-output-buffer-limit normal 1mb 512kb 10", "client-output-buffer-limit",
     "1048576 524288 10"},
    {"client-output-buffer-limit NORMAL 2g 1G 1", "client-output-buffer-limit",
     "2000000000 1000000000 1"},
    {"timeout 300", "timeout", "300"},
    {"max-key-len 1", "max-key-len", "1"},
    {"max-value-len 4096", "max-value-len", "4096"},
    {"maxmemory 100mb", "maxmemory", "104857600"},
    {"maxmemory 1B", "maxmemory", "1"},
    {"maxmemory 0", "maxmemory", "0"},
    {"maxkeys 1000", "maxkeys", "1000"},
    {"protected-mode no", "protected-mode", "no"},
    {"protected-mode YES", "protected-mode", "yes"},
    {"PORT 7", "port", "7"},
    {"  \tport\t 8  ", "port", "8"},
};

START_TEST(test_valid)
{
    const char *line = valid[_i].line;

    ck_assert_msg(load(line) == 0, "%s: %s", line, err);
    ck_assert_str_eq(get(valid[_i].name), valid[_i].value);
}
END_TEST

START_TEST(test_fields)
{
    ck_assert_int_eq(load("attention cosine\nmetric dot\nloglevel warning\ncount 9\n"
                          "temperature 0.25\nworkers 3\nmaxclients 12\nport 1\n"
                          "logfile /tmp/x.log\nvectors v.akv\n"),
                     0);
    ck_assert_int_eq(cfg.query.attn, AKV_ATTN_COSINE);
    ck_assert_int_eq(cfg.query.metric, AKV_METRIC_DOT);
    ck_assert_int_eq(cfg.loglevel, AKV_LOG_WARNING);
    ck_assert_uint_eq(cfg.query.k, 9);
    ck_assert(cfg.query.temperature == 0.25);
    ck_assert_int_eq(cfg.workers, 3);
    ck_assert_int_eq(cfg.maxclients, 12);
    ck_assert_int_eq(cfg.port, 1);
    ck_assert_str_eq(cfg.logfile, "/tmp/x.log");
    ck_assert_str_eq(cfg.vectors, "v.akv");
    /* "" is stored as NULL, the struct's "log to stderr". */
    ck_assert_int_eq(load("logfile ''"), 0);
    ck_assert_ptr_null(cfg.logfile);
}
END_TEST

/* Inputs that must be refused, with the exact message. */
static const struct {
    const char *text, *err;
} invalid[] = {
    {"nosuch 1", "t.conf:1: unknown directive 'nosuch'"},
    {"include other.conf", "t.conf:1: unknown directive 'include'"},
    {"\n\n# c\nport 1\nfoo", "t.conf:5: unknown directive 'foo'"},
    {"\"\x01\" 1", "t.conf:1: unknown directive '\\x01'"},
    {"port", "t.conf:1: 'port' takes 1 argument, got 0"},
    {"port 1 2 3", "t.conf:1: 'port' takes 1 argument, got 3"},
    {"port abc", "t.conf:1: bad port 'abc' (expected 0..65535)"},
    {"port 65536", "t.conf:1: bad port '65536' (expected 0..65535)"},
    {"port -1", "t.conf:1: bad port '-1' (expected 0..65535)"},
    {"port +1", "t.conf:1: bad port '+1' (expected 0..65535)"},
    {"port 12x", "t.conf:1: bad port '12x' (expected 0..65535)"},
    {"port \" 1\"", "t.conf:1: bad port ' 1' (expected 0..65535)"},
    {"port ''", "t.conf:1: bad port '' (expected 0..65535)"},
    {"port 0x10", "t.conf:1: bad port '0x10' (expected 0..65535)"},
    {"port 99999999999999999999", "t.conf:1: bad port '99999999999999999999' (expected 0..65535)"},
    {"bind", "t.conf:1: 'bind' takes 1 to 16 arguments, got 0"},
    {"bind a b c d e f g h i j k l m n o p q", "t.conf:1: 'bind' takes 1 to 16 arguments, got 17"},
    {"bind localhost", "t.conf:1: bad bind 'localhost' (expected an IPv4 or IPv6 address)"},
    {"bind 127.0.0.1 1.2.3.256",
     "t.conf:1: bad bind '1.2.3.256' (expected an IPv4 or IPv6 address)"},
    {"bind *", "t.conf:1: bad bind '*' (expected an IPv4 or IPv6 address)"},
    {"bind fe80::1%eth0", "t.conf:1: bad bind 'fe80::1%eth0' (expected an IPv4 or IPv6 address)"},
    {"bind ::1 0::1", "t.conf:1: bind address '0::1' is listed twice"},
    {"bind ::1\nbind 1.1.1.1 ::1", "t.conf:2: bind address '::1' is listed twice"},
    {"vectors", "t.conf:1: 'vectors' takes 1 argument, got 0"},
    {"vectors a b", "t.conf:1: 'vectors' takes 1 argument, got 2"},
    {"vectors \"\"", "t.conf:1: bad vectors '' (expected a non-empty value)"},
    {"workers -1", "t.conf:1: bad workers '-1' (expected 0..256)"},
    {"workers 257", "t.conf:1: bad workers '257' (expected 0..256)"},
    {"workers 1.5", "t.conf:1: bad workers '1.5' (expected 0..256)"},
    {"neighbor-lists -1", "t.conf:1: bad neighbor-lists '-1' (expected 0..16777216)"},
    {"neighbor-lists 16777217", "t.conf:1: bad neighbor-lists '16777217' (expected 0..16777216)"},
    {"databases 0", "t.conf:1: bad databases '0' (expected 1..1024)"},
    {"databases 1025", "t.conf:1: bad databases '1025' (expected 1..1024)"},
    {"databases", "t.conf:1: 'databases' takes 1 argument, got 0"},
    {"count 0", "t.conf:1: bad count '0' (expected 1..1000)"},
    {"count 1001", "t.conf:1: bad count '1001' (expected 1..1000)"},
    {"count", "t.conf:1: 'count' takes 1 argument, got 0"},
    {"attention softmax", "t.conf:1: bad attention 'softmax' (expected dot|cosine)"},
    {"attention dot cosine", "t.conf:1: 'attention' takes 1 argument, got 2"},
    {"temperature 0",
     "t.conf:1: bad temperature '0' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature -0.5",
     "t.conf:1: bad temperature '-0.5' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature inf",
     "t.conf:1: bad temperature 'inf' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature nan",
     "t.conf:1: bad temperature 'nan' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature 1e999",
     "t.conf:1: bad temperature '1e999' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature 0.1x",
     "t.conf:1: bad temperature '0.1x' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature 0x1p-1074",
     "t.conf:1: bad temperature '0x1p-1074' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature 1e-320",
     "t.conf:1: bad temperature '1e-320' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature 0.00009",
     "t.conf:1: bad temperature '0.00009' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature 1000001",
     "t.conf:1: bad temperature '1000001' (expected a decimal number from 0.0001 to 1000000)"},
    {"temperature", "t.conf:1: 'temperature' takes 1 argument, got 0"},
    {"metric manhattan", "t.conf:1: bad metric 'manhattan' (expected l2|cosine|dot)"},
    {"maxclients 0", "t.conf:1: bad maxclients '0' (expected 1..1000000)"},
    {"maxclients 1000001", "t.conf:1: bad maxclients '1000001' (expected 1..1000000)"},
    {"loglevel trace", "t.conf:1: bad loglevel 'trace' (expected debug|verbose|notice|warning)"},
    {"loglevel", "t.conf:1: 'loglevel' takes 1 argument, got 0"},
    {"logfile", "t.conf:1: 'logfile' takes 1 argument, got 0"},
    {"logfile a b", "t.conf:1: 'logfile' takes 1 argument, got 2"},
    {"proto-max-inline-len 1023", "t.conf:1: bad proto-max-inline-len '1023' (expected "
                                  "1024..536870912 bytes, or with a unit: 1k, 10mb, 1gb)"},
    {"proto-max-bulk-len 2tb", "t.conf:1: bad proto-max-bulk-len '2tb' (expected "
                               "1024..1073741824 bytes, or with a unit: 1k, 10mb, 1gb)"},
    {"proto-max-multibulk-len 15", "t.conf:1: bad proto-max-multibulk-len '15' (expected "
                                   "16..16777216)"},
    {"client-query-buffer-limit -1", "t.conf:1: bad client-query-buffer-limit '-1' (expected "
                                     "1024..4294967296 bytes, or with a unit: 1k, 10mb, 1gb)"},
    {"client-output-buffer-limit 1 2", "t.conf:1: 'client-output-buffer-limit' takes 3 to 4 "
                                       "arguments, got 2"},
    {"client-output-buffer-limit replica 0 0 0",
     "t.conf:1: bad client-output-buffer-limit 'replica' (expected normal, the only client "
     "class)"},
    {"client-output-buffer-limit 1x 0 0", "t.conf:1: bad client-output-buffer-limit '1x' "
                                          "(expected a hard limit in bytes, or with a unit: 64mb; "
                                          "0 = none)"},
    {"client-output-buffer-limit 0 -2 0", "t.conf:1: bad client-output-buffer-limit '-2' "
                                          "(expected a soft limit in bytes, or with a unit: 8mb; "
                                          "0 = none)"},
    {"client-output-buffer-limit 0 0 1m", "t.conf:1: bad client-output-buffer-limit '1m' "
                                          "(expected seconds, 0..2147483647)"},
    {"timeout -1", "t.conf:1: bad timeout '-1' (expected 0..2147483647)"},
    {"max-key-len 0", "t.conf:1: bad max-key-len '0' (expected 1..4096)"},
    {"max-value-len 1048577", "t.conf:1: bad max-value-len '1048577' (expected 1..1048576)"},
    {"maxmemory 1.5gb", "t.conf:1: bad maxmemory '1.5gb' (expected 0..9223372036854775807 "
                        "bytes, or with a unit: 1k, 10mb, 1gb)"},
    {"maxmemory 99999999999gb", "t.conf:1: bad maxmemory '99999999999gb' (expected "
                                "0..9223372036854775807 bytes, or with a unit: 1k, 10mb, 1gb)"},
    {"maxkeys lots", "t.conf:1: bad maxkeys 'lots' (expected 0..2147483647)"},
    {"protected-mode maybe", "t.conf:1: bad protected-mode 'maybe' (expected yes|no)"},
    {"requirepass", "t.conf:1: 'requirepass' takes 1 argument, got 0"},
    {"requirepass two words", "t.conf:1: 'requirepass' takes 1 argument, got 2"},
    /* Quoting errors. */
    {"logfile \"abc", "t.conf:1: unbalanced quotes"},
    {"logfile 'abc", "t.conf:1: unbalanced quotes"},
    {"logfile \"abc\\\"", "t.conf:1: unbalanced quotes"},
    {"logfile \"abc\\", "t.conf:1: unbalanced quotes"},
    {"logfile 'abc\\'", "t.conf:1: unbalanced quotes"},
    {"logfile \"a\"b", "t.conf:1: a closing quote must be followed by a blank"},
    {"logfile 'a'b", "t.conf:1: a closing quote must be followed by a blank"},
    {"logfile \"\\x00\"", "t.conf:1: \\x00 is not allowed in an argument"},
    /* Long values are cut in messages, and control bytes escaped. */
    {"port 1234567890123456789012345678901234567890123456789012345678901234567890",
     "t.conf:1: bad port '1234567890123456789012345678901234567890123456789012345678901234...' "
     "(expected 0..65535)"},
    {"attention \"\\x1b[31m\"", "t.conf:1: bad attention '\\x1b[31m' (expected dot|cosine)"},
};

START_TEST(test_invalid)
{
    ck_assert_int_eq(load(invalid[_i].text), -EINVAL);
    ck_assert_str_eq(err, invalid[_i].err);
}
END_TEST

START_TEST(test_invalid_leaves_value)
{
    ck_assert_int_eq(load("port 1\nbind ::1 1.2.3.4\nport 99999\n"), -EINVAL);
    ck_assert_str_eq(err, "t.conf:3: bad port '99999' (expected 0..65535)");
    /* Lines before the bad one stay applied; the bad one changes nothing. */
    ck_assert_int_eq(cfg.port, 1);
    ck_assert_int_eq(load("bind 10.0.0.1 nope"), -EINVAL);
    ck_assert_str_eq(get("bind"), "::1 1.2.3.4");
    ck_assert_int_eq(load("temperature -1"), -EINVAL);
    ck_assert(cfg.query.temperature == 0.1);
    ck_assert_int_eq(load("vectors ''"), -EINVAL);
    ck_assert_ptr_nonnull(cfg.vectors);
}
END_TEST

START_TEST(test_nul_byte)
{
    static const char text[] = "port 1\nlogfile a\0b\n";

    ck_assert_int_eq(akv_config_load_mem(&cfg, text, sizeof(text) - 1, "n.conf", err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "n.conf:2: NUL byte in line");
    ck_assert_int_eq(cfg.port, 1);
}
END_TEST

START_TEST(test_name_null_and_err_null)
{
    ck_assert_int_eq(akv_config_load_mem(&cfg, "port x", 6, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "(config):1: bad port 'x' (expected 0..65535)");
    ck_assert_int_eq(akv_config_load_mem(&cfg, "port x", 6, "a", NULL, 0), -EINVAL);
    ck_assert_int_eq(akv_config_load_mem(&cfg, "port x", 6, "a", err, 5), -EINVAL);
    ck_assert_str_eq(err, "a:1:");
    ck_assert_int_eq(akv_config_load_mem(&cfg, "", 0, "a", err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_load_mem(&cfg, NULL, 0, "a", err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_quotes_and_escapes)
{
    ck_assert_int_eq(load("logfile \"/a b\\x41\\x7e\\t\\\"\\\\\\n\\r\""), 0);
    ck_assert_str_eq(cfg.logfile, "/a bA~\t\"\\\n\r");
    ck_assert_int_eq(load("logfile 'it\\'s a \"b\" \\n'"), 0);
    ck_assert_str_eq(cfg.logfile, "it's a \"b\" \\n");
    ck_assert_int_eq(load("logfile \"#not a comment\""), 0);
    ck_assert_str_eq(cfg.logfile, "#not a comment");
    /* A quote inside an argument starts a quoted part of it, as in
     * redis.conf; the inline protocol reads it the same way. */
    ck_assert_int_eq(load("logfile a\"b c\""), 0);
    ck_assert_str_eq(cfg.logfile, "ab c");
    ck_assert_int_eq(load("logfile a\"b'c"), -EINVAL);
    ck_assert_str_eq(err, "t.conf:1: unbalanced quotes");
    /* Unknown escapes stand for the escaped byte, as in Redis: \q is q, an
     * \x without two hex digits is x. */
    ck_assert_int_eq(load("logfile \"\\q\\\x01\\x4\\xg0\""), 0);
    ck_assert_str_eq(cfg.logfile, "q\x01x4xg0");
    ck_assert_int_eq(load("logfile a#b"), 0);
    ck_assert_str_eq(cfg.logfile, "a#b");
    /* Quoted directive names and keyword values work too. */
    ck_assert_int_eq(load("\"metric\" 'cosine'\t"), 0);
    ck_assert_int_eq(cfg.query.metric, AKV_METRIC_COSINE);
    ck_assert_int_eq(load("logfile \"\\xC3\\xA9t\\xc3\\xa9\""), 0);
    ck_assert_str_eq(cfg.logfile, "\xc3\xa9t\xc3\xa9");
}
END_TEST

/* The configuration file and the inline protocol read arguments with the
 * same syntax (util/text.h): for random lines of quotes, escapes and
 * blanks, a line the protocol reads as one argument sets a directive to
 * exactly those bytes, and a line it refuses for its quoting the
 * configuration refuses too. */
START_TEST(test_syntax_agrees_with_inline)
{
    static const char alphabet[] = "ab\"'\\xn4F0t \t\r";
    uint64_t seed = 0x9e3779b97f4a7c15u;
    size_t compared = 0, refused = 0;

    for (int round = 0; round < 20000; round++) {
        char line[32], text[64], scratch[64];
        struct akv_slice argv[8];
        struct akv_proto_req req = {
            .argv = argv, .argv_cap = 8, .scratch = scratch, .scratch_cap = sizeof scratch};
        const char *msg = NULL;
        size_t n, i;
        long r;

        seed = seed * 6364136223846793005u + 1442695040888963407u;
        n = 1 + (size_t)(seed >> 60);
        for (i = 0; i < n; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            line[i] = alphabet[(seed >> 33) % (sizeof alphabet - 1)];
        }
        line[n] = '\n';
        r = akv_proto_parse(line, n + 1, NULL, &req, &msg, NULL);
        snprintf(text, sizeof text, "logfile %.*s", (int)n, line);
        if (r == AKV_PROTO_ERR_SYNTAX) {
            ck_assert_msg(load(text) == -EINVAL, "config took %s", text);
            refused++;
            continue;
        }
        ck_assert_int_eq(r, (long)n + 1);
        if (req.argc != 1 || argv[0].len == 0 || memchr(argv[0].p, '\0', argv[0].len))
            continue;
        ck_assert_msg(load(text) == 0, "%s: %s", text, err);
        ck_assert_uint_eq(strlen(cfg.logfile), argv[0].len);
        ck_assert_int_eq(memcmp(cfg.logfile, argv[0].p, argv[0].len), 0);
        compared++;
    }
    ck_assert_uint_gt(compared, 1000);
    ck_assert_uint_gt(refused, 1000);
}
END_TEST

START_TEST(test_crlf_comments_blanks)
{
    ck_assert_int_eq(load("# top comment\r\n"
                          "\r\n"
                          "   \t\r\n"
                          "\t  # indented comment with \"quotes and 'junk\r\n"
                          "#port nonsense\r\n"
                          "port 1234\r\n"
                          "logfile 'x y'\r\n"
                          "bind ::1 127.0.0.2\r\n"
                          "loglevel debug"),
                     0);
    ck_assert_int_eq(cfg.port, 1234);
    ck_assert_str_eq(cfg.logfile, "x y");
    ck_assert_str_eq(get("bind"), "::1 127.0.0.2");
    ck_assert_int_eq(cfg.loglevel, AKV_LOG_DEBUG);
    ck_assert_int_eq(load("port 1\r\nport x\r\n"), -EINVAL);
    ck_assert_str_eq(err, "t.conf:2: bad port 'x' (expected 0..65535)");
}
END_TEST

START_TEST(test_long_lines)
{
    size_t n = AKV_CONFIG_LINE_MAX;
    char *text = malloc(n + 64);

    ck_assert_ptr_nonnull(text);
    /* A line of exactly the limit is fine, one byte more is not, and a
     * CR before the LF counts as part of the line. */
    memcpy(text, "port 1\nlogfile ", 15);
    memset(text + 15, 'a', n - 8);
    memcpy(text + 15 + n - 8, "\nport 2\n", 9);
    ck_assert_int_eq(load(text), 0);
    ck_assert_uint_eq(strlen(cfg.logfile), n - 8);
    ck_assert_int_eq(cfg.port, 2);

    memset(text + 15, 'a', n - 7);
    memcpy(text + 15 + n - 7, "\nport 3\n", 9);
    ck_assert_int_eq(load(text), -EINVAL);
    ck_assert_str_eq(err, "t.conf:2: line is longer than 65536 bytes");

    memset(text + 15, 'a', n - 8);
    memcpy(text + 15 + n - 8, "\r\nport 3\n", 10);
    ck_assert_int_eq(load(text), -EINVAL);
    ck_assert_str_eq(err, "t.conf:2: line is longer than 65536 bytes");

    /* The same without a final newline. */
    memset(text + 15, 'a', n - 7);
    text[15 + n - 7] = '\0';
    ck_assert_int_eq(load(text), -EINVAL);
    ck_assert_str_eq(err, "t.conf:2: line is longer than 65536 bytes");
    free(text);
}
END_TEST

START_TEST(test_many_arguments)
{
    /* A line may hold more arguments than any directive takes; the count
     * error, not a crash or a truncation, must say so. */
    size_t n = 5000, i;
    char *text = malloc(6 + n * 2 + 1);
    char *p = text;

    ck_assert_ptr_nonnull(text);
    p += sprintf(p, "bind");
    for (i = 0; i < n; i++)
        p += sprintf(p, " x");
    ck_assert_int_eq(load(text), -EINVAL);
    ck_assert_str_eq(err, "t.conf:1: 'bind' takes 1 to 16 arguments, got 5000");
    free(text);
}
END_TEST

START_TEST(test_overrides)
{
    ck_assert_int_eq(load("port 1\nport 2\nloglevel debug\nloglevel warning\n"
                          "logfile a\nlogfile b\nvectors x\nvectors y\n"),
                     0);
    ck_assert_int_eq(cfg.port, 2);
    ck_assert_int_eq(cfg.loglevel, AKV_LOG_WARNING);
    ck_assert_str_eq(cfg.logfile, "b");
    ck_assert_str_eq(cfg.vectors, "y");
    /* A second source overrides the first. */
    ck_assert_int_eq(load("port 3\n"), 0);
    ck_assert_int_eq(cfg.port, 3);
    ck_assert_str_eq(cfg.logfile, "b");
}
END_TEST

START_TEST(test_bind_accumulates)
{
    char many[512];
    int i, n;

    /* The first bind of a source replaces the default, later ones append. */
    ck_assert_int_eq(load("bind 10.0.0.1\nport 5\nbind ::1 10.0.0.2\n"), 0);
    ck_assert_str_eq(get("bind"), "10.0.0.1 ::1 10.0.0.2");
    ck_assert_uint_eq(cfg.nbind, 3);
    /* A new source starts over. */
    ck_assert_int_eq(load("bind 1.2.3.4\nbind 1.2.3.5"), 0);
    ck_assert_str_eq(get("bind"), "1.2.3.4 1.2.3.5");
    /* So does every akv_config_set call. */
    {
        const char *argv[] = {"::", "0.0.0.0"};
        ck_assert_int_eq(akv_config_set(&cfg, "bind", 2, argv, err, sizeof(err)), 0);
        ck_assert_str_eq(get("bind"), ":: 0.0.0.0");
        ck_assert_int_eq(akv_config_set(&cfg, "bind", 1, argv, err, sizeof(err)), 0);
        ck_assert_str_eq(get("bind"), "::");
    }
    /* 16 over several lines is the limit. */
    n = 0;
    for (i = 0; i < AKV_CONFIG_BIND_MAX; i++)
        n += snprintf(many + n, sizeof(many) - (size_t)n, "bind 10.0.0.%d\n", i + 1);
    ck_assert_int_eq(load(many), 0);
    ck_assert_uint_eq(cfg.nbind, AKV_CONFIG_BIND_MAX);
    snprintf(many + n, sizeof(many) - (size_t)n, "bind 10.0.1.1\n");
    ck_assert_int_eq(load(many), -EINVAL);
    ck_assert_str_eq(err, "t.conf:17: too many bind addresses (at most 16)");
    ck_assert_uint_eq(cfg.nbind, AKV_CONFIG_BIND_MAX);
    ck_assert_str_eq(cfg.bind[15], "10.0.0.16");
}
END_TEST

START_TEST(test_set)
{
    const char *one[] = {"8080"};
    const char *bad[] = {"80x"};
    const char *two[] = {"1", "2"};

    ck_assert_int_eq(akv_config_set(&cfg, "Port", 1, one, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.port, 8080);
    /* No file:line prefix from akv_config_set. */
    ck_assert_int_eq(akv_config_set(&cfg, "port", 1, bad, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "bad port '80x' (expected 0..65535)");
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_int_eq(akv_config_set(&cfg, "port", 2, two, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "'port' takes 1 argument, got 2");
    ck_assert_int_eq(akv_config_set(&cfg, "nope", 1, one, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "unknown directive 'nope'");
    ck_assert_int_eq(akv_config_set(&cfg, "port", 1, bad, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_get_errors)
{
    char small[4];

    ck_assert_int_eq(akv_config_get(&cfg, "nope", small, sizeof(small)), -ENOENT);
    ck_assert_int_eq(akv_config_get(&cfg, "port", small, sizeof(small)), -ENOSPC);
    ck_assert_str_eq(small, "647");
    ck_assert_int_eq(akv_config_get(&cfg, "bind", small, sizeof(small)), -ENOSPC);
    ck_assert_int_eq(akv_config_get(&cfg, "bind", small, 0), -ENOSPC);
    ck_assert_int_eq(akv_config_get(&cfg, "count", small, sizeof(small)), 0);
    ck_assert_str_eq(small, "5");
}
END_TEST

START_TEST(test_get_stray_enum)
{
    char out[32];

    /* A value the daemon stored directly, outside the names, is printed as
     * a number instead of reading past the name table. */
    cfg.loglevel = (enum akv_loglevel)7;
    ck_assert_int_eq(akv_config_get(&cfg, "loglevel", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "7");
}
END_TEST

/* Splits a get result on spaces into argv for akv_config_set (bind is the
 * only directive whose value holds several words). */
static size_t split_spaces(char *s, const char **argv, size_t max)
{
    size_t n = 0;
    char *save = NULL, *tok;

    for (tok = strtok_r(s, " ", &save); tok && n < max; tok = strtok_r(NULL, " ", &save))
        argv[n++] = tok;
    return n;
}

/* get, set what get said, get again: the value must not change. */
static void assert_round_trip(void)
{
    const char *const *names = akv_config_names();
    size_t i;

    for (i = 0; names[i]; i++) {
        char before[4096], after[4096], copy[4096];
        const char *argv[AKV_CONFIG_BIND_MAX];
        size_t argc = 1;

        ck_assert_int_eq(akv_config_get(&cfg, names[i], before, sizeof(before)), 0);
        strcpy(copy, before);
        argv[0] = copy;
        if (strcmp(names[i], "bind") == 0 || strcmp(names[i], "client-output-buffer-limit") == 0)
            argc = split_spaces(copy, argv, AKV_CONFIG_BIND_MAX);
        ck_assert_msg(akv_config_set(&cfg, names[i], argc, argv, err, sizeof(err)) == 0,
                      "%s %s: %s", names[i], before, err);
        ck_assert_int_eq(akv_config_get(&cfg, names[i], after, sizeof(after)), 0);
        ck_assert_str_eq(before, after);
    }
}

START_TEST(test_round_trip)
{
    assert_round_trip();
    ck_assert_int_eq(load("bind ::1 10.9.8.7 ::ffff:1.2.3.4\nport 1\nvectors '/x y/z'\n"
                          "workers 7\ncount 1000\nattention cosine\ntemperature 0.3\n"
                          "metric dot\nmaxclients 3\nloglevel verbose\nlogfile /l\n"),
                     0);
    assert_round_trip();
    ck_assert_int_eq(load("proto-max-inline-len 3kb\nproto-max-bulk-len 5m\n"
                          "proto-max-multibulk-len 99\nclient-query-buffer-limit 1gb\n"
                          "client-output-buffer-limit normal 3mb 1mb 7\ntimeout 9\n"
                          "max-key-len 10\nmax-value-len 11\nmaxmemory 2gb\nmaxkeys 5\n"
                          "requirepass s3cret\nprotected-mode no\n"),
                     0);
    assert_round_trip();
    ck_assert_int_eq(load("temperature 0.1234567890123456789"), 0);
    assert_round_trip();
    ck_assert(cfg.query.temperature == 0.1234567890123456789);
    ck_assert_int_eq(load("temperature 0.0001"), 0);
    assert_round_trip();
    ck_assert_int_eq(load("temperature 999999.99999999988"), 0);
    assert_round_trip();
}
END_TEST

START_TEST(test_names)
{
    static const char *const expect[] = {"bind",
                                         "port",
                                         "maxclients",
                                         "proto-max-inline-len",
                                         "proto-max-bulk-len",
                                         "proto-max-multibulk-len",
                                         "client-query-buffer-limit",
                                         "client-output-buffer-limit",
                                         "timeout",
                                         "readable-replies",
                                         "max-key-len",
                                         "max-value-len",
                                         "maxmemory",
                                         "maxmemory-clients",
                                         "maxkeys",
                                         "max-batch-size",
                                         "requirepass",
                                         "protected-mode",
                                         "workers",
                                         "neighbor-lists",
                                         "databases",
                                         "vectors",
                                         "count",
                                         "attention",
                                         "temperature",
                                         "metric",
                                         "unknown-words",
                                         "phrase-weighting",
                                         "key-normalize",
                                         "loglevel",
                                         "logfile",
                                         "dir",
                                         "appendonly",
                                         "appendfilename",
                                         "appendfsync",
                                         "auto-aof-rewrite-percentage",
                                         "auto-aof-rewrite-min-size",
                                         "aof-use-rdb-preamble",
                                         "cluster-enabled",
                                         "cluster-id",
                                         "cluster-bind",
                                         "cluster-announce",
                                         "cluster-dir",
                                         "cluster-join",
                                         "cluster-election-timeout",
                                         "cluster-snapshot-threshold",
                                         "cluster-snapshot-trailing",
                                         "cluster-write-timeout",
                                         "slowlog-log-slower-than",
                                         "slowlog-max-len",
                                         "latency-monitor-threshold"};
    const char *const *names = akv_config_names();
    size_t i;

    for (i = 0; names[i]; i++) {
        ck_assert_uint_lt(i, ARRAY_SIZE(expect));
        ck_assert_str_eq(names[i], expect[i]);
    }
    ck_assert_uint_eq(i, ARRAY_SIZE(expect));
    ck_assert_ptr_eq(akv_config_names(), names);
}
END_TEST

/* The persistence directives: defaults, yes/no, the fsync names, sizes with
 * units, and what they refuse. */
START_TEST(test_persistence_directives)
{
    char out[64];

    ck_assert_str_eq(cfg.dir, ".");
    ck_assert_int_eq(cfg.appendonly, 1);
    ck_assert_str_eq(cfg.appendfilename, "appendonly.aof");
    ck_assert_int_eq(cfg.appendfsync, AKV_FSYNC_EVERYSEC);
    ck_assert_int_eq(cfg.aof_rewrite_percentage, 100);
    ck_assert_int_eq(cfg.aof_rewrite_min_size, 64LL << 20);
    ck_assert_int_eq(load("appendonly no\nappendfsync ALWAYS\ndir /var/lib/attnkv\n"), 0);
    ck_assert_int_eq(cfg.appendonly, 0);
    ck_assert_int_eq(cfg.appendfsync, AKV_FSYNC_ALWAYS);
    ck_assert_str_eq(cfg.dir, "/var/lib/attnkv");
    ck_assert_str_eq(akv_fsync_name(cfg.appendfsync), "always");
    ck_assert_str_eq(akv_fsync_name((enum akv_fsync)7), "unknown");
    ck_assert_int_eq(load("auto-aof-rewrite-min-size 1kb"), 0);
    ck_assert_int_eq(cfg.aof_rewrite_min_size, 1024);
    ck_assert_int_eq(load("auto-aof-rewrite-min-size 2M"), 0);
    ck_assert_int_eq(cfg.aof_rewrite_min_size, 2000000);
    ck_assert_int_eq(load("auto-aof-rewrite-min-size 3gb"), 0);
    ck_assert_int_eq(cfg.aof_rewrite_min_size, 3LL << 30);
    ck_assert_int_eq(akv_config_get(&cfg, "auto-aof-rewrite-min-size", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "3221225472");
    assert_round_trip();
    ck_assert_int_eq(load("auto-aof-rewrite-min-size 12345"), 0);
    ck_assert_int_eq(cfg.aof_rewrite_min_size, 12345);
    ck_assert_int_eq(load("auto-aof-rewrite-min-size 1tb"), -EINVAL);
    ck_assert_int_eq(load("auto-aof-rewrite-min-size -1"), -EINVAL);
    ck_assert_int_eq(load("auto-aof-rewrite-min-size mb"), -EINVAL);
    ck_assert_int_eq(load("auto-aof-rewrite-min-size 2000000gb"), -EINVAL);
    ck_assert_int_eq(cfg.aof_rewrite_min_size, 12345);
    ck_assert_int_eq(load("appendonly maybe"), -EINVAL);
    ck_assert_int_eq(load("appendfsync sometimes"), -EINVAL);
    ck_assert_int_eq(load("appendfilename \"\""), -EINVAL);
    ck_assert_int_eq(load("auto-aof-rewrite-percentage -1"), -EINVAL);
    ck_assert_int_eq(cfg.appendonly, 0);
}
END_TEST

/* CONFIG SET hands a multi-argument directive its value as one string. */
START_TEST(test_set_splits_one_string)
{
    const char *one[] = {"32mb 4mb 10"};
    const char *bad[] = {"32mb"};
    char out[128];

    ck_assert_int_eq(akv_config_set(&cfg, "client-output-buffer-limit", 1, one, err, sizeof(err)),
                     0);
    ck_assert_int_eq(akv_config_get(&cfg, "client-output-buffer-limit", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "33554432 4194304 10");
    ck_assert_int_eq(akv_config_set(&cfg, "client-output-buffer-limit", 1, bad, err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(akv_config_get(&cfg, "client-output-buffer-limit", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "33554432 4194304 10");
}
END_TEST

START_TEST(test_parse_memory)
{
    static const struct {
        const char *s;
        unsigned long long v;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"123", 123},
        {"1b", 1},
        {"1B", 1},
        {"1k", 1000},
        {"1K", 1000},
        {"1kb", 1024},
        {"1Kb", 1024},
        {"10mb", 10ull << 20},
        {"10MB", 10ull << 20},
        {"3m", 3000000},
        {"1gb", 1ull << 30},
        {"1g", 1000000000},
        {"007kb", 7168},
        {"18446744073709551615", 18446744073709551615ull},
        {"17179869183gb", 17179869183ull << 30},
    };
    static const char *const bad[] = {
        "",
        "k",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1.5mb",
        "1kib",
        "1tb",
        "1 k",
        "0x10",
        "1e3",
        "mb1",
        "18446744073709551616",
        "1kbb",
        "1bk",
        "1mg",
        "17179869184gb",
        "99999999999999999999b",
    };
    unsigned long long v;
    size_t i;

    for (i = 0; i < ARRAY_SIZE(good); i++) {
        v = 42;
        ck_assert_msg(akv_config_parse_memory(good[i].s, &v) == 0, "%s", good[i].s);
        ck_assert_msg(v == good[i].v, "%s: %llu", good[i].s, v);
    }
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        v = 42;
        ck_assert_msg(akv_config_parse_memory(bad[i], &v) == -EINVAL, "%s", bad[i]);
        ck_assert_msg(v == 42, "%s wrote %llu", bad[i], v);
    }
}
END_TEST

/* requirepass is stored and read back (CONFIG GET shows it, as Redis's
 * does), but never quoted in a message. */
START_TEST(test_requirepass_secret)
{
    static const char *const lines[] = {
        "requirepass \"Sw0rdfish", "requirepass 'Sw0rd'fish",   "requirepass \"Sw0rdf\\x00sh\"",
        "requirepass 'Sw0rdfish",  "requirepass \"Sw0rd\"fish", "REQUIREPASS \"Sw0rdf\\x00\"",
    };
    const char *argv[] = {"Sw0rdfish"};
    char out[64] = "x";
    size_t i;

    ck_assert_int_eq(load("requirepass 'Sw0rdfish'\n"), 0);
    ck_assert_str_eq(cfg.requirepass, "Sw0rdfish");
    ck_assert_int_eq(akv_config_get(&cfg, "requirepass", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "Sw0rdfish");
    ck_assert(akv_config_is_secret("requirepass") && akv_config_is_secret("REQUIREPASS"));
    ck_assert(!akv_config_is_secret("logfile") && !akv_config_is_secret("nosuch"));
    ck_assert_int_eq(load("requirepass ''\n"), 0);
    ck_assert_ptr_null(cfg.requirepass);
    ck_assert_int_eq(akv_config_set(&cfg, "requirepass", 1, argv, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.requirepass, "Sw0rdfish");
    for (i = 0; i < ARRAY_SIZE(lines); i++) {
        ck_assert_int_eq(load(lines[i]), -EINVAL);
        ck_assert_msg(strstr(err, "Sw0rd") == NULL && strstr(err, "fish") == NULL &&
                          strstr(err, "\\q") == NULL,
                      "%s: %s", lines[i], err);
        ck_assert_str_eq(err, "t.conf:1: bad quoting in a secret (not shown)");
    }
    /* The rejected lines left the password as it was. */
    ck_assert_str_eq(cfg.requirepass, "Sw0rdfish");
    /* No longer than CONFIG SET takes, or it could be neither shown nor
     * replaced at run time; the message does not show it. */
    {
        char *text = malloc(AKV_CONFIG_VALUE_MAX + 32);
        ck_assert_ptr_nonnull(text);
        memcpy(text, "requirepass ", 12);
        memset(text + 12, 'p', AKV_CONFIG_VALUE_MAX);
        strcpy(text + 12 + AKV_CONFIG_VALUE_MAX, "\n");
        ck_assert_int_eq(load(text), 0);
        ck_assert_uint_eq(strlen(cfg.requirepass), AKV_CONFIG_VALUE_MAX);
        memset(text + 12, 'q', AKV_CONFIG_VALUE_MAX + 1);
        strcpy(text + 12 + AKV_CONFIG_VALUE_MAX + 1, "\n");
        ck_assert_int_eq(load(text), -EINVAL);
        ck_assert_str_eq(err, "t.conf:1: 'requirepass' is longer than 4095 bytes");
        ck_assert_uint_eq(strlen(cfg.requirepass), AKV_CONFIG_VALUE_MAX);
        free(text);
    }
}
END_TEST

START_TEST(test_runtime_directives)
{
    static const char *const runtime[] = {
        "maxclients",      "count",      "attention", "temperature",
        "metric",          "loglevel",   "logfile",   "slowlog-log-slower-than",
        "slowlog-max-len", "requirepass"};
    static const char *const fixed[] = {"bind",    "port",      "workers",
                                        "vectors", "databases", "nosuch"};
    size_t i;

    for (i = 0; i < ARRAY_SIZE(runtime); i++)
        ck_assert_msg(akv_config_runtime(runtime[i]), "%s", runtime[i]);
    ck_assert(akv_config_runtime("LOGLEVEL"));
    for (i = 0; i < ARRAY_SIZE(fixed); i++)
        ck_assert_msg(!akv_config_runtime(fixed[i]), "%s", fixed[i]);
    ck_assert_int_eq(load("slowlog-log-slower-than -1\nslowlog-max-len 0"), 0);
    ck_assert_int_eq(cfg.slowlog_slower_than, -1);
    ck_assert_int_eq(cfg.slowlog_max_len, 0);
    ck_assert_int_eq(load("slowlog-log-slower-than -2"), -EINVAL);
    ck_assert_int_eq(load("slowlog-max-len 1000001"), -EINVAL);
    /* Paths: reloadable (logfile) or fixed, never for CONFIG SET. */
    ck_assert(akv_config_runtime("logfile") && !akv_config_client_settable("logfile"));
    for (i = 0; i < ARRAY_SIZE(runtime); i++)
        ck_assert_int_eq(akv_config_client_settable(runtime[i]), !akv_config_is_path(runtime[i]));
    ck_assert(akv_config_is_path("LOGFILE") && akv_config_is_path("dir") &&
              akv_config_is_path("appendfilename") && akv_config_is_path("vectors"));
    ck_assert(!akv_config_is_path("timeout") && !akv_config_client_settable("port"));
    ck_assert(akv_config_client_settable("maxmemory-clients"));
}
END_TEST

START_TEST(test_loglevel_names)
{
    ck_assert_str_eq(akv_loglevel_name(AKV_LOG_DEBUG), "debug");
    ck_assert_str_eq(akv_loglevel_name(AKV_LOG_VERBOSE), "verbose");
    ck_assert_str_eq(akv_loglevel_name(AKV_LOG_NOTICE), "notice");
    ck_assert_str_eq(akv_loglevel_name(AKV_LOG_WARNING), "warning");
    ck_assert_str_eq(akv_loglevel_name((enum akv_loglevel)4), "unknown");
    ck_assert_str_eq(akv_loglevel_name((enum akv_loglevel) - 1), "unknown");
}
END_TEST

/* The directives' defaults and names are the engine's (attnkv/types.h):
 * a set value reads back under the engine's name and parses to itself. */
START_TEST(test_agrees_with_engine)
{
    static const enum akv_attn_mode modes[] = {AKV_ATTN_DOT, AKV_ATTN_COSINE};
    static const enum akv_metric metrics[] = {AKV_METRIC_L2, AKV_METRIC_COSINE, AKV_METRIC_DOT};
    struct akv_query_opts o;
    size_t i;

    akv_query_opts_default(&o);
    ck_assert_uint_eq(cfg.query.k, o.k);
    ck_assert_int_eq(cfg.query.attn, o.attn);
    ck_assert(cfg.query.temperature == o.temperature);
    ck_assert_int_eq(cfg.query.metric, o.metric);
    ck_assert_uint_eq(cfg.query.explain, o.explain);
    ck_assert_int_eq(cfg.query.skip_rank, o.skip_rank);

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        const char *argv[] = {akv_attn_mode_name(modes[i])};
        enum akv_attn_mode m;

        ck_assert_int_eq(akv_config_set(&cfg, "attention", 1, argv, err, sizeof(err)), 0);
        ck_assert_int_eq(cfg.query.attn, modes[i]);
        ck_assert_str_eq(get("attention"), argv[0]);
        ck_assert_int_eq(akv_attn_mode_parse(get("attention"), strlen(get("attention")), &m), 0);
        ck_assert_int_eq(m, modes[i]);
    }
    for (i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
        const char *argv[] = {akv_metric_name(metrics[i])};
        enum akv_metric m;

        ck_assert_int_eq(akv_config_set(&cfg, "metric", 1, argv, err, sizeof(err)), 0);
        ck_assert_int_eq(cfg.query.metric, metrics[i]);
        ck_assert_str_eq(get("metric"), argv[0]);
        ck_assert_int_eq(akv_metric_parse(get("metric"), strlen(get("metric")), &m), 0);
        ck_assert_int_eq(m, metrics[i]);
    }
}
END_TEST

/* Writes text to a fresh temporary file; returns its path (caller frees
 * and unlinks). */
static char *temp_file(const char *text)
{
    char *path = strdup("/tmp/test-config-XXXXXX");
    size_t len = strlen(text);
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

START_TEST(test_load_file)
{
    char *path = temp_file("port 42\n# x\nmetric cosine\n");
    char expect[256];

    ck_assert_int_eq(akv_config_load_file(&cfg, path, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.port, 42);
    ck_assert_int_eq(cfg.query.metric, AKV_METRIC_COSINE);
    ck_assert_str_eq(cfg.config_file, path);
    unlink(path);
    free(path);

    path = temp_file("port 1\n\nworkers many\n");
    ck_assert_int_eq(akv_config_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
    snprintf(expect, sizeof(expect), "%s:3: bad workers 'many' (expected 0..256)", path);
    ck_assert_str_eq(err, expect);
    unlink(path);
    free(path);

    ck_assert_int_eq(akv_config_load_file(&cfg, "/nonexistent/attnkvd.conf", err, sizeof(err)),
                     -ENOENT);
    ck_assert_str_eq(err, "/nonexistent/attnkvd.conf: No such file or directory");
    ck_assert_int_eq(akv_config_load_file(&cfg, "/", err, sizeof(err)), -EISDIR);
    ck_assert_str_eq(err, "/: Is a directory");

    /* Files past 16 MiB are refused before they are parsed (sparse, so
     * the test writes nothing). */
    path = temp_file("port 1\n");
    ck_assert_int_eq(truncate(path, (off_t)17 << 20), 0);
    ck_assert_int_eq(akv_config_load_file(&cfg, path, err, sizeof(err)), -EFBIG);
    snprintf(expect, sizeof(expect), "%s: %s", path, strerror(EFBIG));
    ck_assert_str_eq(err, expect);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_shipped_conf)
{
    struct akv_config def;
    const char *root = source_root();
    const char *const *names = akv_config_names();
    char path[4096];
    size_t i;

    if (!root) {
        fprintf(stderr, "AKV_SOURCE_ROOT not set: conf/attnkvd.conf not checked\n");
        return;
    }
    snprintf(path, sizeof(path), "%s/conf/attnkvd.conf", root);
    ck_assert_msg(akv_config_load_file(&cfg, path, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(akv_config_init(&def), 0);
    /* Every directive must be at its default after loading the file. */
    for (i = 0; names[i]; i++) {
        char a[4096], b[4096];
        if (strcmp(names[i], "requirepass") == 0) {
            ck_assert_ptr_null(cfg.requirepass);
            continue;
        }
        ck_assert_int_eq(akv_config_get(&cfg, names[i], a, sizeof(a)), 0);
        ck_assert_int_eq(akv_config_get(&def, names[i], b, sizeof(b)), 0);
        ck_assert_msg(strcmp(a, b) == 0, "%s: file gives '%s', default is '%s'", names[i], a, b);
    }
    ck_assert(memcmp(&cfg.query, &def.query, sizeof(def.query)) == 0);
    akv_config_fini(&def);
}
END_TEST

/* Whether conf/attnkvd.conf (at path) says that directive name can change
 * at run time: in its own paragraph, or in its section's note ("All of
 * them can be changed at run time", "Both settings are run time"). */
static int runtime_said(const char *path, const char *name)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    size_t n = strlen(name);
    int in = 0, section = 0, said = 0;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "####", 4) == 0)
            section = 0;
        if (strstr(line, "can be changed at run time") || strstr(line, "settings are run time"))
            section = 1;
        if (strncmp(line, "# ", 2) == 0 && strncmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
            in = 1;
            said |= section;
        } else if (line[0] != '#') {
            in = 0;
        }
        if (in && (strcasestr(line, "run time") || strstr(line, "reload only")))
            said = 1;
    }
    fclose(f);
    return said;
}

/* man/attnkvd.8 is the reference: every directive has an entry, a .TP
 * whose tag line names it (groff writes '-' as \-). */
/* akv_config_same compares any directive, a secret included, without
 * showing it. */
/* Every directive of a and b has the same value. */
static void assert_all_same(const struct akv_config *a, const struct akv_config *b)
{
    const char *const *names = akv_config_names();

    for (size_t i = 0; names[i]; i++)
        ck_assert_msg(akv_config_same(a, b, names[i]) == 1, "%s differs", names[i]);
}

/* Rewrites text for cfg and checks that the result reads back as cfg and
 * that rewriting it again changes nothing. The caller frees the result. */
static char *rewrite_checked(const char *text)
{
    struct akv_config back;
    char *out = NULL, *again = NULL;
    size_t outlen = 0, againlen = 0;

    ck_assert_msg(akv_config_rewrite_mem(&cfg, text, strlen(text), "t.conf", &out, &outlen, err,
                                         sizeof(err)) == 0,
                  "%s", err);
    ck_assert_uint_eq(strlen(out), outlen);
    ck_assert_int_eq(akv_config_init(&back), 0);
    ck_assert_msg(akv_config_load_mem(&back, out, outlen, "out", err, sizeof(err)) == 0, "%s\n%s",
                  err, out);
    assert_all_same(&cfg, &back);
    akv_config_fini(&back);
    ck_assert_int_eq(
        akv_config_rewrite_mem(&cfg, out, outlen, "out", &again, &againlen, err, sizeof(err)), 0);
    ck_assert_str_eq(again, out);
    free(again);
    return out;
}

/* CONFIG REWRITE's text: comments, blank lines and order kept; a changed
 * directive rewritten at its line; new ones under the marker; quoting. */
START_TEST(test_rewrite_mem)
{
    static const char text[] = "# attnkvd settings\r\n"
                               "\n"
                               "count 3\n"
                               "   # indented comment\n"
                               "metric cosine\n"
                               "unchanged-below 'x'\n";
    const char *seven[] = {"7"}, *pw[] = {"p w\"\\#\n\x01\xc3\xa9"}, *mk[] = {"100"};
    const char *lf[] = {"/var/log/attn kv.log"};
    char *out;

    /* An unknown line makes the file unreadable: nothing is rewritten. */
    out = (char *)1;
    ck_assert_int_eq(akv_config_rewrite_mem(&cfg, text, strlen(text), "t.conf", &out, &(size_t){0},
                                            err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "t.conf:6: unknown directive 'unchanged-below'");
    ck_assert_ptr_null(out);

    ck_assert_int_eq(load("count 3\nmetric cosine\n"), 0);
    /* Nothing changed: the file comes back byte for byte (CRLF kept). */
    out = rewrite_checked("# attnkvd settings\r\n\ncount 3\n   # indented comment\nmetric "
                          "cosine");
    ck_assert_str_eq(out, "# attnkvd settings\r\n\ncount 3\n   # indented comment\nmetric "
                          "cosine\n");
    free(out);

    ck_assert_int_eq(akv_config_set(&cfg, "count", 1, seven, err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_set(&cfg, "maxkeys", 1, mk, err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_set(&cfg, "requirepass", 1, pw, err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_set(&cfg, "logfile", 1, lf, err, sizeof(err)), 0);
    out = rewrite_checked("# attnkvd settings\n\ncount 3\n   # indented comment\n"
                          "metric cosine\n");
    ck_assert_str_eq(out, "# attnkvd settings\n"
                          "\n"
                          "count 7\n"
                          "   # indented comment\n"
                          "metric cosine\n"
                          "# Generated by CONFIG REWRITE\n"
                          "maxkeys 100\n"
                          "requirepass \"p w\\\"\\\\#\\n\\x01\xc3\xa9\"\n"
                          "logfile \"/var/log/attn kv.log\"\n");
    /* A second rewrite after another change adds no second marker. */
    {
        const char *v[] = {"5"};
        char *again = NULL;
        size_t n = 0;
        ck_assert_int_eq(akv_config_set(&cfg, "timeout", 1, v, err, sizeof(err)), 0);
        ck_assert_int_eq(
            akv_config_rewrite_mem(&cfg, out, strlen(out), "t", &again, &n, err, sizeof(err)), 0);
        ck_assert_ptr_nonnull(strstr(again, "logfile \"/var/log/attn kv.log\"\ntimeout 5\n"));
        ck_assert_ptr_eq(strstr(strstr(again, "REWRITE") + 1, "REWRITE"), NULL);
        free(again);
    }
    free(out);
}
END_TEST

/* A directive set more than once: the last line (the one in effect) takes
 * the new value, the others go; bind's lines accumulate into one. A value
 * back at its default stays written where the file had it. */
START_TEST(test_rewrite_duplicates)
{
    const char *nine[] = {"9"}, *five[] = {"5"}, *b[] = {"::1", "127.0.0.1"};
    char *out;

    ck_assert_int_eq(load("count 3\n# c\ncount 4\nbind 127.0.0.1\nbind ::1\n"), 0);
    out = rewrite_checked("count 3\n# c\ncount 4\nbind 127.0.0.1\nbind ::1\n");
    ck_assert_str_eq(out, "count 3\n# c\ncount 4\nbind 127.0.0.1\nbind ::1\n");
    free(out);
    ck_assert_int_eq(akv_config_set(&cfg, "count", 1, nine, err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_set(&cfg, "bind", 2, b, err, sizeof(err)), 0);
    out = rewrite_checked("count 3\n# c\ncount 4\nbind 127.0.0.1\nbind ::1\n");
    ck_assert_str_eq(out, "# c\ncount 9\nbind ::1 127.0.0.1\n");
    free(out);
    ck_assert_int_eq(akv_config_set(&cfg, "count", 1, five, err, sizeof(err)), 0);
    out = rewrite_checked("count 9\nneighbour-lists 65536\n");
    ck_assert_str_eq(out, "count 5\nneighbour-lists 65536\n# Generated by CONFIG REWRITE\n"
                          "bind ::1 127.0.0.1\n");
    free(out);
}
END_TEST

/* The file itself: atomically replaced, mode kept, a symbolic link's
 * target rewritten, a clear error when the directory is not writable. */
START_TEST(test_rewrite_file)
{
    char dir[] = "/tmp/test-rewrite-XXXXXX", path[256], link[256], sub[256];
    const char *seven[] = {"7"};
    struct stat st;
    struct akv_config back;
    DIR *dp;
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    snprintf(link, sizeof(link), "%s/link.conf", dir);
    {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("# keep me\ncount 3\n", f);
        fclose(f);
    }
    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(symlink("a.conf", link), 0);
    ck_assert_int_eq(akv_config_load_file(&cfg, link, err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_set(&cfg, "count", 1, seven, err, sizeof(err)), 0);
    ck_assert_msg(akv_config_rewrite(&cfg, link, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0640);
    ck_assert_int_eq(akv_config_init(&back), 0);
    ck_assert_int_eq(akv_config_load_file(&back, path, err, sizeof(err)), 0);
    ck_assert_int_eq(back.query.k, 7);
    akv_config_fini(&back);
    /* No temporary file left behind. */
    dp = opendir(dir);
    ck_assert_ptr_nonnull(dp);
    while ((de = readdir(dp)))
        n += de->d_name[0] != '.';
    closedir(dp);
    ck_assert_int_eq(n, 2);

    /* A directory we may not write to (root may write anywhere: skip). */
    snprintf(sub, sizeof(sub), "%s/ro", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/ro/b.conf", dir);
    {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("count 3\n", f);
        fclose(f);
    }
    ck_assert_int_eq(chmod(sub, 0500), 0);
    if (geteuid() != 0) {
        ck_assert_int_eq(akv_config_rewrite(&cfg, path, err, sizeof(err)), -EACCES);
        ck_assert_msg(strstr(err, "cannot create a temporary file in") &&
                          strstr(err, "Permission denied"),
                      "%s", err);
    }
    ck_assert_int_eq(chmod(sub, 0700), 0);
    /* A file that no longer parses is left alone. */
    {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("count lots\n", f);
        fclose(f);
    }
    ck_assert_int_eq(akv_config_rewrite(&cfg, path, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "b.conf:1: bad count 'lots'"));
    unlink(path);
    rmdir(sub);
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    unlink(path);
    unlink(link);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_same)
{
    struct akv_config other;
    const char *pw[] = {"Sw0rdfish"}, *n[] = {"7"};

    ck_assert_int_eq(akv_config_init(&other), 0);
    ck_assert_int_eq(akv_config_same(&cfg, &other, "count"), 1);
    ck_assert_int_eq(akv_config_same(&cfg, &other, "requirepass"), 1);
    ck_assert_int_eq(akv_config_set(&other, "requirepass", 1, pw, err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_same(&cfg, &other, "requirepass"), 0);
    ck_assert_int_eq(akv_config_set(&cfg, "requirepass", 1, pw, err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_same(&cfg, &other, "requirepass"), 1);
    ck_assert_int_eq(akv_config_set(&other, "count", 1, n, err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_same(&cfg, &other, "COUNT"), 0);
    ck_assert_int_eq(akv_config_same(&cfg, &other, "no-such-thing"), -ENOENT);
    akv_config_fini(&other);
}
END_TEST

START_TEST(test_man_page_documents_every_directive)
{
    const char *root = source_root();
    const char *const *names = akv_config_names();
    char path[4096], line[4096], prev[4096];
    size_t i;

    if (!root)
        return;
    snprintf(path, sizeof(path), "%s/man/attnkvd.8", root);
    for (i = 0; names[i]; i++) {
        FILE *f = fopen(path, "r");
        char esc[128];
        size_t o = 0;
        int found = 0;

        ck_assert_ptr_nonnull(f);
        for (const char *c = names[i]; *c && o < sizeof(esc) - 3; c++) {
            if (*c == '-')
                esc[o++] = '\\';
            esc[o++] = *c;
        }
        esc[o] = '\0';
        prev[0] = '\0';
        while (!found && fgets(line, sizeof(line), f)) {
            const char *at = strcmp(prev, ".TP\n") == 0 ? strstr(line, esc) : NULL;
            /* The whole name: not the start of a longer one (maxmemory in
             * maxmemory-clients). */
            for (; at && !found; at = strstr(at + 1, esc)) {
                char next = at[o];
                found = !(next == '\\' && at[o + 1] == '-') && next != '_' &&
                        !(next >= 'a' && next <= 'z');
            }
            memcpy(prev, line, sizeof(prev));
        }
        fclose(f);
        ck_assert_msg(found, "man/attnkvd.8 has no entry for %s", names[i]);
    }
}
END_TEST

START_TEST(test_shipped_conf_documents_every_directive)
{
    const char *root = source_root();
    const char *const *names = akv_config_names();
    char path[4096], line[4096];
    size_t i;

    if (!root)
        return;
    snprintf(path, sizeof(path), "%s/conf/attnkvd.conf", root);
    for (i = 0; names[i]; i++) {
        FILE *f = fopen(path, "r");
        int documented = 0, shown = 0;
        size_t n = strlen(names[i]);

        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f)) {
            /* "# name: what it does" opens its paragraph, and the directive
             * follows, set or commented out. */
            if (strncmp(line, "# ", 2) == 0 && strncmp(line + 2, names[i], n) == 0 &&
                line[2 + n] == ':')
                documented = 1;
            if (strncmp(line, names[i], n) == 0 && line[n] == ' ')
                shown = 1;
            if (strncmp(line, "# ", 2) == 0 && strncmp(line + 2, names[i], n) == 0 &&
                line[2 + n] == ' ')
                shown = 1;
        }
        fclose(f);
        ck_assert_msg(documented, "conf/attnkvd.conf has no paragraph for %s", names[i]);
        ck_assert_msg(!akv_config_runtime(names[i]) || runtime_said(path, names[i]),
                      "conf/attnkvd.conf does not say that %s can change at run time", names[i]);
        ck_assert_msg(shown, "conf/attnkvd.conf does not show %s with a value", names[i]);
    }
}
END_TEST

/* The command line. ARGS(...) is an argv: "attnkvd", the arguments, NULL. */
#define ARGS(...) ((const char *const[]){"attnkvd", __VA_ARGS__, NULL})

static int argc_of(const char *const *argv)
{
    int n = 0;

    while (argv[n])
        n++;
    return n;
}

/* What akv_config_args_parse made of argv, as text: "file=F", "test",
 * "help", "version", then "FLAG:name[arg|arg]" per directive. */
static const char *parse_args(struct akv_config_args *a, const char *const *argv)
{
    static char out[2048];
    size_t o = 0;
    int rc = akv_config_args_parse(a, argc_of(argv), argv, err, sizeof(err));

    ck_assert_msg(rc == 0, "%s", err);
    out[0] = '\0';
#define OUT(...) (o += (size_t)snprintf(out + o, sizeof(out) - o, __VA_ARGS__))
    if (a->config_file)
        OUT("file=%s ", a->config_file);
    if (a->test_config)
        OUT("test ");
    if (a->help)
        OUT("help ");
    if (a->version)
        OUT("version ");
    for (size_t i = 0; i < a->nopts; i++) {
        const struct akv_config_opt *op = &a->opts[i];
        OUT("%.*s:%s[", (int)op->flaglen, op->flag, op->name);
        for (size_t j = 0; j < op->argc; j++)
            OUT("%s%s", j ? "|" : "", a->words[op->first + j]);
        OUT("] ");
    }
#undef OUT
    if (o > 0)
        out[o - 1] = '\0';
    return out;
}

static const struct {
    const char *const *argv;
    const char *parsed;
} args_valid[] = {
    {ARGS("a.conf"), "file=a.conf"},
    {ARGS("-"), "file=-"},
    {ARGS("-c", "a.conf", "-t"), "file=a.conf test"},
    {ARGS("--config", "a.conf", "--test-config"), "file=a.conf test"},
    {ARGS("--config=a.conf"), "file=a.conf"},
    {ARGS("-ca.conf"), "file=a.conf"},
    {ARGS("-c", "-"), "file=-"},
    /* The short flags and their long forms. */
    {ARGS("-p", "6500", "-b", "::1", "-V", "v.akv", "-l", "debug", "-w", "3"),
     "-p:port[6500] -b:bind[::1] -V:vectors[v.akv] -l:loglevel[debug] -w:workers[3]"},
    {ARGS("-p6500", "-b::1"), "-p:port[6500] -b:bind[::1]"},
    {ARGS("-tp", "1"), "test -p:port[1]"},
    {ARGS("-p", "-1"), "-p:port[-1]"},
    {ARGS("--port", "6500", "--vectors", "v.akv"), "--port:port[6500] --vectors:vectors[v.akv]"},
    /* Any directive; its values run up to the next option. */
    {ARGS("x.conf", "--port", "6500", "--appendonly", "no", "--dir", "/tmp/x"),
     "file=x.conf --port:port[6500] --appendonly:appendonly[no] --dir:dir[/tmp/x]"},
    {ARGS("--client-output-buffer-limit", "normal", "0", "0", "0", "-t"),
     "test --client-output-buffer-limit:client-output-buffer-limit[normal|0|0|0]"},
    {ARGS("--bind", "::1", "10.0.0.1", "-b", "10.0.0.2"),
     "--bind:bind[::1|10.0.0.1] -b:bind[10.0.0.2]"},
    {ARGS("--logfile", "", "--requirepass", "--x", "y"),
     "--logfile:logfile[] --requirepass:requirepass[--x|y]"},
    {ARGS("--slowlog-log-slower-than", "-1", "-", "--count", "3"),
     "--slowlog-log-slower-than:slowlog-log-slower-than[-1|-] --count:count[3]"},
    {ARGS("--port=1", "2"), NULL}, /* "2" is then a stray argument */
    {ARGS("--port="), "--port:port[]"},
    {ARGS("--maxmemory"), "--maxmemory:maxmemory[]"},
    {ARGS("--PORT", "1", "--neighbour-lists", "7"),
     "--PORT:port[1] --neighbour-lists:neighbor-lists[7]"},
    {ARGS("--requirepass=a=b"), "--requirepass:requirepass[a=b]"},
    {ARGS("--databases", "4"), "--databases:databases[4]"},
    /* -h and -v stop the parse, as getopt did. */
    {ARGS("-h", "--bogus"), "help"},
    {ARGS("-p", "1", "--version", "-x"), "version -p:port[1]"},
    {ARGS("-tv"), "test version"},
    {ARGS("--help=x"), NULL},
};

START_TEST(test_args_parse)
{
    struct akv_config_args a;

    if (!args_valid[_i].parsed) {
        ck_assert_int_eq(akv_config_args_parse(&a, argc_of(args_valid[_i].argv),
                                               args_valid[_i].argv, err, sizeof(err)),
                         -EINVAL);
        ck_assert_ptr_null(a.opts);
        return;
    }
    ck_assert_str_eq(parse_args(&a, args_valid[_i].argv), args_valid[_i].parsed);
    akv_config_args_fini(&a);
    akv_config_args_fini(&a);
    akv_config_args_fini(NULL);
}
END_TEST

/* Usage errors, with the exact message. */
static const struct {
    const char *const *argv;
    const char *err;
} args_invalid[] = {
    {ARGS("--foo"), "unknown option '--foo' (neither a flag nor a directive; see --help)"},
    {ARGS("--foo=bar"), "unknown option '--foo' (neither a flag nor a directive; see --help)"},
    {ARGS("--requirepas", "Sw0rdfish"),
     "unknown option '--requirepas' (neither a flag nor a directive; see --help)"},
    {ARGS("--"), "unknown option '--' (neither a flag nor a directive; see --help)"},
    {ARGS("--\x1b[31m"),
     "unknown option '--\\x1b[31m' (neither a flag nor a directive; see --help)"},
    {ARGS("--save", ""), "unknown option '--save' (neither a flag nor a directive; see --help)"},
    {ARGS("--conf", "a"), "unknown option '--conf' (neither a flag nor a directive; see --help)"},
    {ARGS("-x"), "unknown option '-x'"},
    {ARGS("-tx"), "unknown option '-x'"},
    {ARGS("-p"), "option '-p' needs a value"},
    {ARGS("-t", "-c"), "option '-c' needs a value"},
    {ARGS("--config"), "option '--config' needs a value"},
    {ARGS("--test-config=yes"), "option '--test-config' takes no value"},
    {ARGS("a.conf", "b.conf"),
     "unexpected argument 'b.conf' (only the first argument may name the configuration file)"},
    {ARGS("-p", "1", "2"),
     "unexpected argument '2' (only the first argument may name the configuration file)"},
    {ARGS("-t", "-"),
     "unexpected argument '-' (only the first argument may name the configuration file)"},
    {ARGS("a.conf", "-c", "b.conf"), "option '-c': a configuration file is already given"},
    {ARGS("--config", "a", "--config=b"),
     "option '--config': a configuration file is already given"},
};

START_TEST(test_args_invalid)
{
    struct akv_config_args a;

    ck_assert_int_eq(akv_config_args_parse(&a, argc_of(args_invalid[_i].argv),
                                           args_invalid[_i].argv, err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, args_invalid[_i].err);
    ck_assert_ptr_null(a.opts);
    ck_assert_ptr_null(a.words);
    ck_assert_uint_eq(a.nopts, 0);
    akv_config_args_fini(&a);
    /* No argument at all is a valid command line. */
    ck_assert_int_eq(akv_config_args_parse(&a, 1, ARGS(NULL), err, sizeof(err)), 0);
    ck_assert_ptr_null(a.config_file);
    ck_assert_uint_eq(a.nopts, 0);
    akv_config_args_fini(&a);
}
END_TEST

/* Parses argv and applies it over what cfg holds; returns the result. */
static int apply_args(const char *const *argv)
{
    struct akv_config_args a;
    int rc;

    ck_assert_int_eq(akv_config_args_parse(&a, argc_of(argv), argv, err, sizeof(err)), 0);
    rc = akv_config_args_apply(&cfg, &a, err, sizeof(err));
    akv_config_args_fini(&a);
    return rc;
}

/* Values are checked as the file's lines are, and the message names the
 * option as it was written. */
static const struct {
    const char *const *argv;
    const char *err;
} args_bad_values[] = {
    {ARGS("--port", "99999"), "--port: bad port '99999' (expected 0..65535)"},
    {ARGS("-p", "x"), "-p: bad port 'x' (expected 0..65535)"},
    {ARGS("--PORT=7x"), "--PORT: bad port '7x' (expected 0..65535)"},
    {ARGS("--port"), "--port: 'port' takes 1 argument, got 0"},
    {ARGS("--port", "1", "2"), "--port: 'port' takes 1 argument, got 2"},
    {ARGS("--appendonly", "maybe"), "--appendonly: bad appendonly 'maybe' (expected yes|no)"},
    {ARGS("--client-output-buffer-limit", "normal", "0", "0"),
     "--client-output-buffer-limit: bad client-output-buffer-limit 'normal' (expected a hard "
     "limit in bytes, or with a unit: 64mb; 0 = none)"},
    {ARGS("--bind", "::1", "-b", "0::1"), "-b: bind address '0::1' is listed twice"},
    {ARGS("-b", "a", "-b", "b"), "-b: bad bind 'a' (expected an IPv4 or IPv6 address)"},
    {ARGS("--vectors", ""), "--vectors: bad vectors '' (expected a non-empty value)"},
    {ARGS("--databases", "0"), "--databases: bad databases '0' (expected 1..1024)"},
    {ARGS("--databases", "1025"), "--databases: bad databases '1025' (expected 1..1024)"},
    {ARGS("--requirepass", "a", "b"), "--requirepass: 'requirepass' takes 1 argument, got 2"},
};

START_TEST(test_args_bad_values)
{
    ck_assert_int_eq(apply_args(args_bad_values[_i].argv), -EINVAL);
    ck_assert_str_eq(err, args_bad_values[_i].err);
}
END_TEST

START_TEST(test_args_apply)
{
    /* The command line over a file: later wins, bind replaces the file's
     * list and then accumulates over the whole command line. */
    ck_assert_int_eq(load("port 7000\nbind 10.0.0.1\nbind 10.0.0.2\ncount 3\nappendonly yes\n"), 0);
    ck_assert_int_eq(
        apply_args(ARGS("cfg.conf", "--port", "6500", "-b", "::1", "--bind", "127.0.0.1",
                        "10.9.9.9", "--appendonly", "no", "--dir", "/tmp/x", "--logfile", "",
                        "--slowlog-log-slower-than", "-1", "--databases", "64", "--count", "4",
                        "-p", "6600", "--client-output-buffer-limit", "normal", "1mb", "0", "0")),
        0);
    ck_assert_str_eq(get("port"), "6600");
    ck_assert_str_eq(get("bind"), "::1 127.0.0.1 10.9.9.9");
    ck_assert_str_eq(get("count"), "4");
    ck_assert_str_eq(get("appendonly"), "no");
    ck_assert_str_eq(get("dir"), "/tmp/x");
    ck_assert_ptr_null(cfg.logfile);
    ck_assert_int_eq(cfg.slowlog_slower_than, -1);
    ck_assert_int_eq(cfg.databases, 64);
    ck_assert_str_eq(get("databases"), "64");
    ck_assert_str_eq(get("client-output-buffer-limit"), "1048576 0 0");
    /* Several words in one argument, as CONFIG SET takes them. */
    ck_assert_int_eq(
        apply_args(ARGS("--bind", "::1 10.0.0.3", "--client-output-buffer-limit", "32mb 4mb 10")),
        0);
    ck_assert_str_eq(get("bind"), "::1 10.0.0.3");
    ck_assert_str_eq(get("client-output-buffer-limit"), "33554432 4194304 10");
    /* A password is taken whatever it looks like. */
    ck_assert_int_eq(apply_args(ARGS("--requirepass", "--Sw0rd", "-p", "1")), 0);
    ck_assert_str_eq(cfg.requirepass, "--Sw0rd");
    /* Options before a rejected one stay applied; it changes nothing. */
    ck_assert_int_eq(apply_args(ARGS("--count", "9", "--workers", "9999", "--port", "2")), -EINVAL);
    ck_assert_str_eq(err, "--workers: bad workers '9999' (expected 0..256)");
    ck_assert_str_eq(get("count"), "9");
    ck_assert_str_eq(get("workers"), "0");
    ck_assert_str_eq(get("port"), "1");
    /* Applying the same command line again (a reload) gives the same. */
    ck_assert_int_eq(apply_args(ARGS("-b", "::1", "-b", "::2")), 0);
    ck_assert_int_eq(apply_args(ARGS("-b", "::1", "-b", "::2")), 0);
    ck_assert_str_eq(get("bind"), "::1 ::2");
}
END_TEST

/* "-" reads the configuration from standard input, and records no file. */
START_TEST(test_load_stdin)
{
    char *path = temp_file("port 43\ncount 7\n");
    int saved = dup(STDIN_FILENO);
    int fd = open(path, O_RDONLY);

    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    close(fd);
    ck_assert_int_eq(akv_config_load_file(&cfg, "-", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.port, 43);
    ck_assert_uint_eq(cfg.query.k, 7);
    ck_assert_ptr_null(cfg.config_file);
    unlink(path);
    free(path);

    path = temp_file("port 44\nworkers many\n");
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    close(fd);
    ck_assert_int_eq(akv_config_load_file(&cfg, "-", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "(stdin):2: bad workers 'many' (expected 0..256)");
    ck_assert_int_eq(dup2(saved, STDIN_FILENO), STDIN_FILENO);
    close(saved);
    unlink(path);
    free(path);
}
END_TEST

/* Loads one input the fuzzer crashed on: it must load or fail cleanly
 * (sanitizers catch the rest). */
static void replay_config(const uint8_t *data, size_t len, void *arg)
{
    struct akv_config c;
    int rc;

    (void)arg;
    ck_assert_int_eq(akv_config_init(&c), 0);
    rc = akv_config_load_mem(&c, (const char *)data, len, "regression", err, sizeof(err));
    ck_assert_msg(rc == 0 || rc == -EINVAL, "%d", rc);
    akv_config_fini(&c);
}

/* The same for the command-line target (fuzz/fuzz-args.c): the input split
 * at NUL bytes into arguments, parsed, and applied if it parses. */
static void replay_args(const uint8_t *data, size_t len, void *arg)
{
    const char *argv[66];
    char *copy = malloc(len + 1);
    struct akv_config_args a;
    struct akv_config c;
    int argc = 0, rc;

    (void)arg;
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, data, len);
    copy[len] = '\0';
    argv[argc++] = "attnkvd";
    for (size_t pos = 0; pos <= len && argc <= 64; argc++) {
        argv[argc] = copy + pos;
        pos += strlen(copy + pos) + 1;
    }
    argv[argc] = NULL;
    rc = akv_config_args_parse(&a, argc, argv, err, sizeof(err));
    ck_assert_msg(rc == 0 || rc == -EINVAL, "%d", rc);
    if (rc == 0) {
        ck_assert_int_eq(akv_config_init(&c), 0);
        rc = akv_config_args_apply(&c, &a, err, sizeof(err));
        ck_assert_msg(rc == 0 || rc == -EINVAL, "%d", rc);
        akv_config_fini(&c);
        akv_config_args_fini(&a);
    }
    free(copy);
}

START_TEST(test_fuzz_regressions)
{
    long n = tu_replay_dir("fuzz/regression/config", replay_config, NULL);
    long m = tu_replay_dir("fuzz/regression/args", replay_args, NULL);
    long seeds = tu_replay_dir("fuzz/corpus/args", replay_args, NULL);

    fprintf(stderr, "replayed %ld config and %ld args fuzz regression input(s), %ld args seeds\n",
            n < 0 ? 0 : n, m < 0 ? 0 : m, seeds < 0 ? 0 : seeds);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_default_vectors);
    tcase_add_test(tc, test_fini_twice_and_null);
    tcase_add_loop_test(tc, test_valid, 0, ARRAY_SIZE(valid));
    tcase_add_test(tc, test_fields);
    tcase_add_loop_test(tc, test_invalid, 0, ARRAY_SIZE(invalid));
    tcase_add_test(tc, test_invalid_leaves_value);
    tcase_add_test(tc, test_nul_byte);
    tcase_add_test(tc, test_name_null_and_err_null);
    tcase_add_test(tc, test_quotes_and_escapes);
    tcase_add_test(tc, test_syntax_agrees_with_inline);
    tcase_add_test(tc, test_crlf_comments_blanks);
    tcase_add_test(tc, test_long_lines);
    tcase_add_test(tc, test_many_arguments);
    tcase_add_test(tc, test_overrides);
    tcase_add_test(tc, test_bind_accumulates);
    tcase_add_test(tc, test_set);
    tcase_add_test(tc, test_get_errors);
    tcase_add_test(tc, test_get_stray_enum);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_persistence_directives);
    tcase_add_test(tc, test_parse_memory);
    tcase_add_test(tc, test_set_splits_one_string);
    tcase_add_test(tc, test_requirepass_secret);
    tcase_add_test(tc, test_runtime_directives);
    tcase_add_test(tc, test_loglevel_names);
    tcase_add_test(tc, test_agrees_with_engine);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_shipped_conf);
    tcase_add_test(tc, test_shipped_conf_documents_every_directive);
    tcase_add_test(tc, test_man_page_documents_every_directive);
    tcase_add_test(tc, test_same);
    tcase_add_test(tc, test_rewrite_mem);
    tcase_add_test(tc, test_rewrite_duplicates);
    tcase_add_test(tc, test_rewrite_file);
    tcase_add_loop_test(tc, test_args_parse, 0, ARRAY_SIZE(args_valid));
    tcase_add_loop_test(tc, test_args_invalid, 0, ARRAY_SIZE(args_invalid));
    tcase_add_loop_test(tc, test_args_bad_values, 0, ARRAY_SIZE(args_bad_values));
    tcase_add_test(tc, test_args_apply);
    tcase_add_test(tc, test_load_stdin);
    tcase_add_test(tc, test_fuzz_regressions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(config_suite());
}
