/*
 * preflight.c - attnkvd --test-config: the checks of start-up's needs that
 * the configuration parser cannot make (preflight.h): the data directory,
 * the log file, the listening addresses and the append-only file.
 *
 * Each check does the least the daemon will do: creates and removes a file,
 * opens the log for appending (and removes it only if the check created
 * it), binds and closes a socket, opens and reads the start of the AOF.
 * Nothing is left behind.
 *
 * Ownership: no state; borrows the configuration.
 *
 * Threading: the main thread, before the daemon starts anything.
 */
#include "server/preflight.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "server/activation.h"
#include "util/log.h"
#include "util/text.h"

/* "NAME 'value' (from WHERE)" into buf, for the start of a message. */
static const char *subject(char *buf, size_t cap, const struct akv_config *c,
                           const struct akv_config_args *a, const char *name, const char *value)
{
    char where[512], shown[AKV_QUOTE_BUF];

    if (akv_config_where(c, a, name, where, sizeof(where)) == -ENOENT)
        snprintf(where, sizeof(where), "?");
    snprintf(buf, cap, "%s '%s' (from %s)", name, akv_quote(shown, value, strlen(value)), where);
    return buf;
}

static int check_dir(const struct akv_config *c, const struct akv_config_args *a, FILE *out)
{
    char who[1024], *tmp = NULL;
    struct stat st;
    int fd;

    if (stat(c->dir, &st) < 0) {
        fprintf(out, "attnkvd: %s: %s\n", subject(who, sizeof(who), c, a, "dir", c->dir),
                strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(out, "attnkvd: %s: not a directory\n",
                subject(who, sizeof(who), c, a, "dir", c->dir));
        return 1;
    }
    if (asprintf(&tmp, "%s/.attnkvd-test-config-XXXXXX", c->dir) < 0) {
        fprintf(out, "attnkvd: out of memory\n");
        return 1;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        fprintf(out, "attnkvd: %s: cannot create a file there: %s\n",
                subject(who, sizeof(who), c, a, "dir", c->dir), strerror(errno));
        free(tmp);
        return 1;
    }
    close(fd);
    unlink(tmp);
    free(tmp);
    return 0;
}

static int check_log(const struct akv_config *c, const struct akv_config_args *a, FILE *out)
{
    char who[1024], *aof = NULL;
    struct stat st;
    int existed, rc;

    if (!c->logfile || !c->logfile[0])
        return 0;
    /* The same protection the daemon sets up before opening its log. */
    if (asprintf(&aof, "%s/%s", c->dir, c->appendfilename) < 0 || akv_log_protect(aof) < 0 ||
        akv_log_protect(c->vectors) < 0) {
        free(aof);
        fprintf(out, "attnkvd: out of memory\n");
        return 1;
    }
    free(aof);
    existed = lstat(c->logfile, &st) == 0;
    rc = akv_log_open(c->logfile);
    if (rc < 0) {
        fprintf(out, "attnkvd: %s: cannot open it for appending: %s\n",
                subject(who, sizeof(who), c, a, "logfile", c->logfile), akv_log_strerror(rc));
        return 1;
    }
    akv_log_close();
    if (!existed)
        unlink(c->logfile);
    return 0;
}

/* Binds one resolved address at port and closes it. Returns 0 or -errno. */
static int try_bind(const struct addrinfo *ai, int port)
{
    struct sockaddr_storage ss;
    int fd, on = 1, rc = 0;

    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)&ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)(void *)&ss)->sin_port = htons((uint16_t)port);
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* As libuv and server.c set them up. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ai->ai_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

static int check_listen(const struct akv_config *c, const struct akv_config_args *a, FILE *out)
{
    int n = akv_activation_parse(getenv("LISTEN_FDS"), getenv("LISTEN_PID"), getpid());
    int bad = 0;

    if (n > 0) {
        fprintf(out,
                "attnkvd: socket activation: %d sockets from the service manager; bind and "
                "port not checked\n",
                n);
        return 0;
    }
    for (size_t i = 0; i < c->nbind; i++) {
        struct addrinfo hints, *res = NULL;
        char who[1024], port_where[512];
        int rc;

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
        subject(who, sizeof(who), c, a, "bind", c->bind[i]);
        if (akv_config_where(c, a, "port", port_where, sizeof(port_where)) < 0)
            snprintf(port_where, sizeof(port_where), "?");
        if (getaddrinfo(c->bind[i], NULL, &hints, &res) != 0 || !res) {
            fprintf(out, "attnkvd: %s: not an address\n", who);
            bad++;
            continue;
        }
        rc = try_bind(res, c->port);
        freeaddrinfo(res);
        if (rc == -EADDRINUSE) {
            fprintf(out,
                    "attnkvd: warning: %s, port %d (from %s): in use now (by a running "
                    "attnkvd?); start-up fails unless it is free then\n",
                    who, c->port, port_where);
        } else if (rc < 0) {
            fprintf(out, "attnkvd: %s, port %d (from %s): cannot bind: %s\n", who, c->port,
                    port_where, strerror(-rc));
            bad++;
        }
    }
    return bad;
}

static int check_aof(const struct akv_config *c, const struct akv_config_args *a, FILE *out)
{
    char who[1024], *path = NULL, head[64];
    struct stat st;
    int fd, bad = 0;

    if (!c->appendonly)
        return 0;
    if (asprintf(&path, "%s/%s", c->dir, c->appendfilename) < 0) {
        fprintf(out, "attnkvd: out of memory\n");
        return 1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) {
        free(path); /* created at start-up, in a directory checked above */
        return 0;
    }
    subject(who, sizeof(who), c, a, "appendfilename", c->appendfilename);
    if (fd < 0) {
        fprintf(out, "attnkvd: %s: cannot read %s: %s\n", who, path, strerror(errno));
        bad = 1;
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(out, "attnkvd: %s: %s is not a regular file\n", who, path);
        bad = 1;
    } else if (read(fd, head, sizeof(head)) < 0) {
        fprintf(out, "attnkvd: %s: cannot read %s: %s\n", who, path, strerror(errno));
        bad = 1;
    }
    if (fd >= 0)
        close(fd);
    free(path);
    return bad;
}

int akv_preflight_check(const struct akv_config *c, const struct akv_config_args *a, FILE *out)
{
    int dir_bad = check_dir(c, a, out), bad = dir_bad;

    bad += check_log(c, a, out);
    bad += check_listen(c, a, out);
    if (!dir_bad) /* else the AOF's problem is the directory's, said once */
        bad += check_aof(c, a, out);
    return bad;
}
