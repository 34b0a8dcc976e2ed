/*
 * test-preflight.c - --test-config's checks (src/server/preflight.c): dir,
 * logfile, the addresses and the AOF, each problem named with its
 * directive and where the value comes from, and nothing left behind.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "server/preflight.h"

static char dir[64];
static struct akv_config cfg;
static char *out;
static size_t outlen;

static void setup(void)
{
    strcpy(dir, "/tmp/test-preflight-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(akv_config_init(&cfg), 0);
    out = NULL;
}

static void teardown(void)
{
    char cmd[128];

    akv_config_fini(&cfg);
    free(out);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void set(const char *name, const char *value)
{
    char err[256];

    ck_assert_msg(akv_config_set(&cfg, name, 1, &value, err, sizeof(err)) == 0, "%s", err);
}

/* Runs the checks; their text is in out. */
static int check(const struct akv_config_args *a)
{
    FILE *f;
    int bad;

    free(out);
    out = NULL;
    f = open_memstream(&out, &outlen);
    ck_assert_ptr_nonnull(f);
    bad = akv_preflight_check(&cfg, a, f);
    fclose(f);
    return bad;
}

static char *path(const char *name)
{
    static char p[4][128];
    static int i;

    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static int count_entries(const char *d)
{
    char cmd[160];
    FILE *f;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", d);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%d", &n), 1);
    pclose(f);
    return n;
}

START_TEST(test_all_good_leaves_nothing)
{
    set("dir", dir);
    set("logfile", path("new.log"));
    set("port", "0");
    ck_assert_msg(check(NULL) == 0, "%s", out);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(count_entries(dir), 0);
    /* An existing log is kept as it was. */
    {
        FILE *f = fopen(path("new.log"), "w");
        ck_assert_ptr_nonnull(f);
        fputs("old\n", f);
        fclose(f);
    }
    ck_assert_int_eq(check(NULL), 0);
    {
        struct stat st;
        ck_assert_int_eq(stat(path("new.log"), &st), 0);
        ck_assert_int_eq(st.st_size, 4);
    }
}
END_TEST

START_TEST(test_dir)
{
    char conf[160];
    FILE *f;

    set("dir", path("nope"));
    set("port", "0");
    ck_assert_int_eq(check(NULL), 1);
    ck_assert_msg(strstr(out, "attnkvd: dir '") && strstr(out, "nope' (from the default): No such "
                                                               "file or directory"),
                  "%s", out);
    /* From a file: file:line. */
    snprintf(conf, sizeof(conf), "%s", path("t.conf"));
    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "# x\nport 0\ndir %s\n", path("afile"));
    fclose(f);
    fclose(fopen(path("afile"), "w"));
    {
        char err[256];
        ck_assert_int_eq(akv_config_load_file(&cfg, conf, err, sizeof(err)), 0);
    }
    ck_assert_int_eq(check(NULL), 1);
    ck_assert_msg(strstr(out, "afile' (from ") && strstr(out, "t.conf:3): not a directory"), "%s",
                  out);
}
END_TEST

START_TEST(test_logfile)
{
    set("dir", dir);
    set("port", "0");
    set("logfile", path("no/such/dir.log"));
    ck_assert_int_eq(check(NULL), 1);
    ck_assert_msg(strstr(out, "attnkvd: logfile '") && strstr(out, "cannot open it for appending"),
                  "%s", out);
    /* The AOF is never a log. */
    set("logfile", path("appendonly.aof"));
    ck_assert_int_eq(check(NULL), 1);
    ck_assert_msg(strstr(out, "append-only file"), "%s", out);
    ck_assert_int_eq(count_entries(dir), 0);
}
END_TEST

START_TEST(test_aof)
{
    set("dir", dir);
    set("port", "0");
    ck_assert_int_eq(mkdir(path("appendonly.aof"), 0700), 0);
    ck_assert_int_eq(check(NULL), 1);
    ck_assert_msg(strstr(out, "appendfilename 'appendonly.aof' (from the default)") &&
                      strstr(out, "is not a regular file"),
                  "%s", out);
    set("appendonly", "no");
    ck_assert_int_eq(check(NULL), 0);
}
END_TEST

START_TEST(test_bind)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    char port[16];
    int s = socket(AF_INET, SOCK_STREAM, 0);

    set("dir", dir);
    /* An address not on this host (TEST-NET-1). */
    set("bind", "192.0.2.1");
    set("port", "0");
    ck_assert_int_eq(check(NULL), 1);
    ck_assert_msg(strstr(out, "bind '192.0.2.1' (from the default), port 0 (from the default): "
                              "cannot bind: Cannot assign requested address"),
                  "%s", out);
    /* A port in use now: a warning only. */
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s, 1), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    snprintf(port, sizeof(port), "%d", ntohs(a.sin_port));
    set("bind", "127.0.0.1");
    set("port", port);
    ck_assert_int_eq(check(NULL), 0);
    ck_assert_msg(strstr(out, "warning: bind '127.0.0.1'") && strstr(out, "in use now"), "%s", out);
    /* Socket activation: nothing is bound. */
    {
        char pid[24];
        snprintf(pid, sizeof(pid), "%ld", (long)getpid());
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDS", "1", 1);
        set("bind", "192.0.2.1");
        ck_assert_int_eq(check(NULL), 0);
        ck_assert_msg(strstr(out, "bind and port not checked"), "%s", out);
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
    }
    close(s);
}
END_TEST

/* The command line is named when it set the value. */
START_TEST(test_where_command_line)
{
    const char *argv[] = {"attnkvd", "--dir", "/nonexistent/x", "-p", "0"};
    struct akv_config_args a;
    char err[256];

    ck_assert_int_eq(akv_config_args_parse(&a, 5, argv, err, sizeof(err)), 0);
    ck_assert_int_eq(akv_config_args_apply(&cfg, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(check(&a), 1);
    ck_assert_msg(strstr(out, "dir '/nonexistent/x' (from --dir): No such file or directory"), "%s",
                  out);
    {
        char where[64];
        ck_assert_int_eq(akv_config_where(&cfg, &a, "port", where, sizeof(where)), 0);
        ck_assert_str_eq(where, "-p");
        ck_assert_int_eq(akv_config_where(&cfg, &a, "nosuch", where, sizeof(where)), -ENOENT);
    }
    akv_config_args_fini(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("preflight");
    TCase *tc = tcase_create("preflight");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_all_good_leaves_nothing);
    tcase_add_test(tc, test_dir);
    tcase_add_test(tc, test_logfile);
    tcase_add_test(tc, test_aof);
    tcase_add_test(tc, test_bind);
    tcase_add_test(tc, test_where_command_line);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
