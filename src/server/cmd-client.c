/*
 * cmd-client.c - the commands about connections: CLIENT (ID, INFO, LIST,
 * KILL, SETNAME, GETNAME, SETINFO, REPLY, NO-EVICT, PAUSE, UNPAUSE,
 * UNBLOCK, HELP), HELLO, RESET and MONITOR, and the MONITOR line.
 *
 * Handlers never touch a connection: what belongs to the caller is in its
 * session (cmd.h), and what concerns other connections goes through the
 * env hooks that the server sets (clients, monitor_set, pause_changed).
 * Without them (in unit tests) CLIENT LIST, INFO, KILL and MONITOR say they
 * are not available.
 *
 * Threading: the loop thread (cmd.h).
 */
#include "server/cmd-impl.h"

#include <ctype.h>

/* Sorted client ids, for CLIENT LIST ID. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int reply_unavailable(struct akv_cmd_ctx *ctx, const char *what)
{
    return akv_reply_errorf(ctx->out, "ERR %s is not available here", what);
}

/* Whether s may be a client name or library attribute: printable ASCII
 * without blanks ('!' to '~'), as Redis requires, so that CLIENT LIST
 * splits on spaces. */
static int attr_ok(const struct akv_slice *s)
{
    for (size_t i = 0; i < s->len; i++)
        if (s->p[i] < '!' || s->p[i] > '~')
            return 0;
    return 1;
}

static void set_attr(char *dst, const struct akv_slice *s)
{
    memcpy(dst, s->p, s->len);
    dst[s->len] = '\0';
}

/* CLIENT SETNAME's and HELLO SETNAME's check. Returns 0 (name set), 1
 * (error replied) or -ENOMEM. */
static int set_name(struct akv_cmd_ctx *ctx, const struct akv_slice *name)
{
    int rc;

    if (!attr_ok(name))
        rc =
            akv_reply_error(ctx->out, "ERR Client names cannot contain spaces, newlines or special "
                                      "characters.");
    else if (name->len > AKV_CLIENT_NAME_MAX)
        rc = akv_reply_errorf(ctx->out, "ERR Client name is too long (%zu bytes; at most %d)",
                              name->len, AKV_CLIENT_NAME_MAX);
    else {
        set_attr(ctx->sess->name, name);
        return 0;
    }
    return rc < 0 ? rc : 1;
}

/* ------------------------------------------------------------------------
 * CLIENT LIST and INFO lines.
 */

/* The most bytes one CLIENT LIST line takes: the field names, 20 numbers
 * of at most 20 digits, the addresses, the name, the library and the
 * command. */
#define LINE_MAX_ (400 + 20 * 20 + 2 * 64 + AKV_CLIENT_NAME_MAX + 2 * AKV_CLIENT_LIB_MAX + 96)

/* Appenders for client_line: each writes at o and returns the end. A line
 * is built by hand, not with printf: with 10,000 clients CLIENT LIST is
 * 10,000 lines on the loop thread, and vsnprintf made that 50 ms. */
static char *put_mem(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

#define PUT_LIT(o, lit) put_mem((o), (lit), sizeof(lit) - 1)

static char *put_str(char *o, const char *s)
{
    return put_mem(o, s, strlen(s));
}

static char *put_u64(char *o, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o++ = tmp[--n];
    return o;
}

static char *put_i64(char *o, int64_t v)
{
    if (v < 0) {
        *o++ = '-';
        return put_u64(o, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(o, (uint64_t)v);
}

/* One CLIENT LIST line in Redis 7.2's order, ending in "\n". The fields
 * without a meaning here have Redis's value for a client without them
 * (sub=0, user=default, redir=-1, ...). */
static int client_line(struct akv_buf *b, const struct akv_client_info *ci)
{
    const struct akv_session *s = ci->sess;
    char lb[32], sb[64], *o;

    if (akv_buf_reserve(b, LINE_MAX_) < 0)
        return -ENOMEM;
    o = b->p + b->len;
    o = PUT_LIT(o, "id=");
    o = put_u64(o, s->id);
    o = PUT_LIT(o, " addr=");
    o = put_str(o, s->peer);
    o = PUT_LIT(o, " laddr=");
    o = put_str(o, s->laddr);
    o = PUT_LIT(o, " fd=");
    o = put_i64(o, ci->fd);
    o = PUT_LIT(o, " name=");
    o = put_str(o, s->name);
    o = PUT_LIT(o, " age=");
    o = put_u64(o, ci->age_s);
    o = PUT_LIT(o, " idle=");
    o = put_u64(o, ci->idle_s);
    o = PUT_LIT(o, " flags=");
    if (s->monitor)
        *o++ = 'O';
    if (ci->blocked || ci->paused)
        *o++ = 'b';
    if (ci->closing)
        *o++ = 'c';
    if (s->no_evict)
        *o++ = 'e';
    if (akv_cmd_multi_queued(s) >= 0)
        *o++ = 'x';
    if (o[-1] == '=')
        *o++ = 'N';
    o = PUT_LIT(o, " db=");
    o = put_i64(o, s->db);
    o = PUT_LIT(o, " sub=0 psub=0 ssub=0 multi=");
    o = put_i64(o, akv_cmd_multi_queued(s));
    o = PUT_LIT(o, " qbuf=");
    o = put_u64(o, ci->qbuf);
    o = PUT_LIT(o, " qbuf-free=");
    o = put_u64(o, ci->qbuf_free);
    o = PUT_LIT(o, " argv-mem=0 multi-mem=0 rbs=");
    o = put_u64(o, ci->qbuf + ci->qbuf_free);
    o = PUT_LIT(o, " rbp=");
    o = put_u64(o, ci->qbuf + ci->qbuf_free);
    o = PUT_LIT(o, " obl=");
    o = put_u64(o, ci->obl);
    o = PUT_LIT(o, " oll=");
    o = put_u64(o, ci->oll);
    o = PUT_LIT(o, " omem=");
    o = put_u64(o, ci->omem);
    o = PUT_LIT(o, " tot-mem=");
    o = put_u64(o, ci->tot_mem);
    o = PUT_LIT(o, " events=");
    if (ci->reading)
        *o++ = 'r';
    if (ci->writing)
        *o++ = 'w';
    o = PUT_LIT(o, " cmd=");
    if (!s->last_cmd) {
        o = PUT_LIT(o, "NULL");
    } else {
        o = put_str(o, lower(s->last_cmd->name, lb, sizeof(lb)));
        if (s->last_sub) {
            *o++ = '|';
            o = put_str(o, lower(s->last_sub->name, sb, sizeof(sb)));
        }
    }
    o = PUT_LIT(o, " user=default redir=-1 resp=");
    o = put_i64(o, s->resp);
    o = PUT_LIT(o, " lib-name=");
    o = put_str(o, s->lib_name);
    o = PUT_LIT(o, " lib-ver=");
    o = put_str(o, s->lib_ver);
    *o++ = '\n';
    b->len = (size_t)(o - b->p);
    return 0;
}

/* Client types as CLIENT LIST TYPE and CLIENT KILL TYPE name them: 1 for
 * normal (every client here), 0 for the others (none here), -1 unknown. */
static int client_type(const struct akv_slice *t)
{
    if (arg_is(t, "normal"))
        return 1;
    if (arg_is(t, "master") || arg_is(t, "replica") || arg_is(t, "slave") || arg_is(t, "pubsub"))
        return 0;
    return -1;
}

/* Room left before a CLIENT LIST text for its header ("=<n>\r\ntxt:"),
 * which is written once the text's length is known. */
#define LIST_HEADER_ROOM 32

struct list_acc {
    struct akv_buf *out; /* the text goes here, after start + LIST_HEADER_ROOM */
    size_t start;
    const uint64_t *ids; /* sorted; NULL: every client */
    size_t nids;
    unsigned long long limit; /* stop past this many bytes; 0: none */
};

static int list_one(void *arg, const struct akv_client_info *ci)
{
    struct list_acc *a = arg;

    if (a->ids && !bsearch(&ci->sess->id, a->ids, a->nids, sizeof(a->ids[0]), cmp_u64))
        return AKV_CLIENT_KEEP;
    if (a->limit > 0 && a->out->len - a->start > a->limit)
        return -E2BIG;
    return client_line(a->out, ci) < 0 ? -ENOMEM : AKV_CLIENT_KEEP;
}

/* CLIENT LIST [TYPE type] | [ID id ...] and CLIENT INFO. One walk over the
 * clients, O(clients) at about 0.2 µs and 270 bytes a client: the text is
 * written in place in the output buffer (sized for it first), then moved
 * up behind its header, so nothing is copied twice. */
static int client_list(struct akv_cmd_ctx *ctx, int info)
{
    struct akv_cmd_env *env = ctx->env;
    struct akv_buf *out = ctx->out;
    struct list_acc a = {.out = out, .start = out->len, .limit = env->config->obuf_hard};
    uint64_t *ids = NULL;
    int rc = 0, none = 0;

    if (!env->clients)
        return reply_unavailable(ctx, info ? "CLIENT INFO" : "CLIENT LIST");
    if (!info && ctx->argc == 4 && arg_is(&ctx->argv[2], "TYPE")) {
        int t = client_type(&ctx->argv[3]);
        char sb[AKV_QUOTE_BUF];
        if (t < 0)
            return akv_reply_errorf(out, "ERR Unknown client type '%s'", show(&ctx->argv[3], sb));
        none = t == 0;
    } else if (!info && ctx->argc > 3 && arg_is(&ctx->argv[2], "ID")) {
        a.nids = ctx->argc - 3;
        ids = malloc(a.nids * sizeof(*ids));
        if (!ids)
            return reply_oom(out);
        for (size_t i = 0; i < a.nids; i++) {
            int64_t v;
            if (parse_i64(&ctx->argv[3 + i], &v) < 0) {
                free(ids);
                return akv_reply_error(out, "ERR Invalid client ID");
            }
            ids[i] = (uint64_t)v;
        }
        qsort(ids, a.nids, sizeof(*ids), cmp_u64);
        a.ids = ids;
    } else if (!info && ctx->argc != 2) {
        return reply_syntax(ctx);
    }
    /* One allocation for the usual lines, not a doubling per few. */
    rc = akv_buf_reserve(out, LIST_HEADER_ROOM + 2 +
                                  (info ? 1 : (size_t)env->stats.connected_clients + 1) * 320);
    if (rc == 0) {
        out->len += LIST_HEADER_ROOM;
        if (!none)
            rc = env->clients(env, info ? ctx->sess : NULL, list_one, &a);
    }
    if (rc == 0) {
        size_t n = out->len - a.start - LIST_HEADER_ROOM;
        char head[LIST_HEADER_ROOM];
        int hl = resp_of(ctx) >= 3 ? snprintf(head, sizeof(head), "=%zu\r\ntxt:", n + 4)
                                   : snprintf(head, sizeof(head), "$%zu\r\n", n);
        memcpy(out->p + a.start, head, (size_t)hl);
        memmove(out->p + a.start + hl, out->p + a.start + LIST_HEADER_ROOM, n);
        out->len = a.start + (size_t)hl + n;
        rc = akv_buf_append(out, "\r\n", 2);
    }
    if (rc < 0)
        out->len = a.start;
    if (rc == -E2BIG)
        rc = akv_reply_errorf(out,
                              "ERR CLIENT LIST reply would exceed client-output-buffer-limit "
                              "(%llu bytes)",
                              env->config->obuf_hard);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------------
 * CLIENT KILL.
 */

struct kill_filter {
    const struct akv_session *self;
    const struct akv_slice *addr, *laddr;
    uint64_t id;   /* 0: any */
    int type_none; /* TYPE master/replica/pubsub: matches nobody */
    int skipme;
    size_t killed;
    int kill_self;
};

static int slice_eq(const struct akv_slice *a, const char *s)
{
    return strlen(s) == a->len && memcmp(a->p, s, a->len) == 0;
}

static int kill_one(void *arg, const struct akv_client_info *ci)
{
    struct kill_filter *k = arg;
    const struct akv_session *s = ci->sess;

    if (k->type_none || (k->addr && !slice_eq(k->addr, s->peer)) ||
        (k->laddr && !slice_eq(k->laddr, s->laddr)) || (k->id && s->id != k->id))
        return AKV_CLIENT_KEEP;
    if (s == k->self) {
        if (k->skipme)
            return AKV_CLIENT_KEEP;
        /* Closed once this reply is out, as Redis does. */
        k->kill_self = 1;
        k->killed++;
        return AKV_CLIENT_KEEP;
    }
    k->killed++;
    return AKV_CLIENT_KILL;
}

/* CLIENT KILL ip:port (replies OK or an error), or CLIENT KILL with
 * filters (replies how many were closed). As in Redis, each filter given
 * again replaces the previous one of its kind, and every filter given must
 * match. */
static int client_kill(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    struct kill_filter k = {.self = ctx->sess, .skipme = 1};
    char sb[AKV_QUOTE_BUF];
    int rc;

    if (!env->clients)
        return reply_unavailable(ctx, "CLIENT KILL");
    if (ctx->argc == 3) {
        k.addr = &ctx->argv[2];
        k.skipme = 0; /* with the old form, a client may kill itself */
    } else {
        for (size_t i = 2; i < ctx->argc; i += 2) {
            const struct akv_slice *o = &ctx->argv[i], *v;
            if (i + 1 >= ctx->argc)
                return reply_syntax(ctx);
            v = &ctx->argv[i + 1];
            if (arg_is(o, "ID")) {
                int64_t id;
                if (parse_i64(v, &id) < 0 || id < 1)
                    return akv_reply_error(ctx->out, "ERR client-id should be greater than 0");
                k.id = (uint64_t)id;
            } else if (arg_is(o, "TYPE")) {
                int t = client_type(v);
                if (t < 0)
                    return akv_reply_errorf(ctx->out, "ERR Unknown client type '%s'", show(v, sb));
                k.type_none = t == 0;
            } else if (arg_is(o, "ADDR")) {
                k.addr = v;
            } else if (arg_is(o, "LADDR")) {
                k.laddr = v;
            } else if (arg_is(o, "USER")) {
                /* "default" is the only user; every client is logged in as it. */
                if (!slice_eq(v, "default"))
                    return akv_reply_errorf(ctx->out, "ERR No such user '%s'", show(v, sb));
            } else if (arg_is(o, "SKIPME")) {
                if (arg_is(v, "yes"))
                    k.skipme = 1;
                else if (arg_is(v, "no"))
                    k.skipme = 0;
                else
                    return reply_syntax(ctx);
            } else {
                return reply_syntax(ctx);
            }
        }
    }
    rc = env->clients(env, NULL, kill_one, &k);
    if (rc < 0)
        return rc;
    if (k.kill_self)
        ctx->close_after_reply = 1;
    if (ctx->argc == 3)
        return k.killed ? akv_reply_status(ctx->out, "OK")
                        : akv_reply_error(ctx->out, "ERR No such client");
    return akv_reply_int(ctx->out, (int64_t)k.killed);
}

/* ------------------------------------------------------------------------
 * The rest of CLIENT.
 */

/* CLIENT PAUSE timeout [WRITE|ALL]: a later end or a wider mode extends a
 * pause in force, as in Redis. */
static int client_pause(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    int all = 1;
    int64_t ms;

    if (ctx->argc > 4)
        return reply_syntax(ctx);
    if (ctx->argc == 4) {
        if (arg_is(&ctx->argv[3], "WRITE"))
            all = 0;
        else if (!arg_is(&ctx->argv[3], "ALL"))
            return akv_reply_error(ctx->out, "ERR CLIENT PAUSE mode must be WRITE or ALL");
    }
    if (parse_i64(&ctx->argv[2], &ms) < 0)
        return akv_reply_error(ctx->out, "ERR timeout is not an integer or out of range");
    if (ms < 0)
        return akv_reply_error(ctx->out, "ERR timeout is negative");
    {
        uint64_t now = now_ns() / 1000000u;
        uint64_t end = (uint64_t)ms > UINT64_MAX - now ? UINT64_MAX : now + (uint64_t)ms;
        if (env->pause.end_ms == 0 || end > env->pause.end_ms)
            env->pause.end_ms = end;
        env->pause.all |= all;
    }
    if (env->pause_changed)
        env->pause_changed(env);
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_reply_sub_help(struct akv_cmd_ctx *ctx, const char *parent)
{
    const struct akv_subcmd *t = akv_cmd_subcommands();
    size_t n = 0, i;
    char line[512];
    int rc;

    for (i = 0; t[i].parent; i++)
        n += strcmp(t[i].parent, parent) == 0;
    rc = akv_reply_array(ctx->out, 1 + 2 * n);
    snprintf(line, sizeof(line),
             "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", parent);
    rc = rc ? rc : akv_reply_status(ctx->out, line);
    for (i = 0; rc == 0 && t[i].parent; i++) {
        if (strcmp(t[i].parent, parent) != 0)
            continue;
        /* The usage without the container's name. */
        rc = akv_reply_status(ctx->out, t[i].usage + strlen(parent) + 1);
        snprintf(line, sizeof(line), "    %s.", t[i].summary);
        line[4] = (char)toupper((unsigned char)line[4]);
        rc = rc ? rc : akv_reply_status(ctx->out, line);
    }
    return rc;
}

int akv_cmd_do_client(struct akv_cmd_ctx *ctx)
{
    struct akv_session *s = ctx->sess;
    const struct akv_subcmd *sc;
    const char *n;
    int rc = akv_cmd_subcommand(ctx, &sc);

    if (rc)
        return rc < 0 ? rc : 0;
    n = sc->name;
    if (strcmp(n, "ID") == 0)
        return akv_reply_int(ctx->out, (int64_t)s->id);
    if (strcmp(n, "INFO") == 0)
        return client_list(ctx, 1);
    if (strcmp(n, "LIST") == 0)
        return client_list(ctx, 0);
    if (strcmp(n, "KILL") == 0)
        return client_kill(ctx);
    if (strcmp(n, "SETNAME") == 0) {
        rc = set_name(ctx, &ctx->argv[2]);
        return rc ? (rc < 0 ? rc : 0) : akv_reply_status(ctx->out, "OK");
    }
    if (strcmp(n, "GETNAME") == 0)
        return s->name[0] ? akv_reply_bulk_str(ctx->out, s->name)
                          : akv_reply_null(ctx->out, resp_of(ctx));
    if (strcmp(n, "SETINFO") == 0) {
        const struct akv_slice *attr = &ctx->argv[2], *v = &ctx->argv[3];
        char *dst = arg_is(attr, "LIB-NAME")  ? s->lib_name
                    : arg_is(attr, "LIB-VER") ? s->lib_ver
                                              : NULL;
        char sb[AKV_QUOTE_BUF];
        if (!dst)
            return akv_reply_errorf(ctx->out, "ERR Unrecognized option '%s'", show(attr, sb));
        if (!attr_ok(v))
            return akv_reply_errorf(ctx->out,
                                    "ERR %s cannot contain spaces, newlines or special "
                                    "characters.",
                                    show(attr, sb));
        if (v->len > AKV_CLIENT_LIB_MAX)
            return akv_reply_errorf(ctx->out, "ERR %s is too long (%zu bytes; at most %d)",
                                    show(attr, sb), v->len, AKV_CLIENT_LIB_MAX);
        set_attr(dst, v);
        return akv_reply_status(ctx->out, "OK");
    }
    if (strcmp(n, "REPLY") == 0) {
        /* OFF and SKIP are not answered, as in Redis. */
        if (arg_is(&ctx->argv[2], "ON")) {
            s->reply_off = s->reply_skip = s->reply_skip_next = 0;
            return akv_reply_status(ctx->out, "OK");
        }
        if (arg_is(&ctx->argv[2], "OFF")) {
            s->reply_off = 1;
            return 0;
        }
        if (arg_is(&ctx->argv[2], "SKIP")) {
            if (!s->reply_off)
                s->reply_skip_next = 1;
            return 0;
        }
        return reply_syntax(ctx);
    }
    if (strcmp(n, "NO-EVICT") == 0) {
        if (arg_is(&ctx->argv[2], "ON"))
            s->no_evict = 1;
        else if (arg_is(&ctx->argv[2], "OFF"))
            s->no_evict = 0;
        else
            return reply_syntax(ctx);
        return akv_reply_status(ctx->out, "OK");
    }
    if (strcmp(n, "PAUSE") == 0)
        return client_pause(ctx);
    if (strcmp(n, "UNPAUSE") == 0) {
        ctx->env->pause = (struct akv_pause){0, 0};
        if (ctx->env->pause_changed)
            ctx->env->pause_changed(ctx->env);
        return akv_reply_status(ctx->out, "OK");
    }
    if (strcmp(n, "UNBLOCK") == 0) {
        int64_t id;
        if (ctx->argc > 4)
            return reply_syntax(ctx);
        if (ctx->argc == 4 && !arg_is(&ctx->argv[3], "TIMEOUT") && !arg_is(&ctx->argv[3], "ERROR"))
            return akv_reply_error(ctx->out,
                                   "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        if (parse_i64(&ctx->argv[2], &id) < 0)
            return reply_not_integer(ctx);
        /* A client waits only for a worker's job, which cannot be cut short:
         * Redis answers 0 for a client it cannot unblock. */
        return akv_reply_int(ctx->out, 0);
    }
    return akv_cmd_reply_sub_help(ctx, "CLIENT");
}

/* ------------------------------------------------------------------------
 * HELLO, RESET, MONITOR.
 */

/* HELLO [protover [AUTH username password] [SETNAME clientname]]: Redis's
 * checks and errors, in its order; the reply is a map (RESP3 once the
 * protocol is 3). server and version name attnkv, not Redis. */
int akv_cmd_do_hello(struct akv_cmd_ctx *ctx)
{
    struct akv_session *s = ctx->sess;
    int64_t ver = 0;
    size_t j = 1;
    char sb[AKV_QUOTE_BUF];
    int rc;

    if (ctx->argc >= 2) {
        if (parse_i64(&ctx->argv[1], &ver) < 0)
            return akv_reply_error(ctx->out,
                                   "ERR Protocol version is not an integer or out of range");
        if (ver < 2 || ver > 3)
            return akv_reply_error(ctx->out, "NOPROTO unsupported protocol version");
        j = 2;
    }
    for (; j < ctx->argc; j++) {
        size_t more = ctx->argc - 1 - j;
        if (arg_is(&ctx->argv[j], "AUTH") && more >= 2) {
            if (!akv_cmd_authenticate(ctx, &ctx->argv[j + 1], &ctx->argv[j + 2]))
                return akv_reply_error(ctx->out, "WRONGPASS invalid username-password pair or "
                                                 "user is disabled.");
            j += 2;
        } else if (arg_is(&ctx->argv[j], "SETNAME") && more >= 1) {
            rc = set_name(ctx, &ctx->argv[j + 1]);
            if (rc)
                return rc < 0 ? rc : 0;
            j++;
        } else {
            return akv_reply_errorf(ctx->out, "ERR Syntax error in HELLO option '%s'",
                                    show(&ctx->argv[j], sb));
        }
    }
    if (ctx->env->config->requirepass && !s->authenticated)
        return akv_reply_error(ctx->out,
                               "NOAUTH HELLO must be called with the client already "
                               "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                               "option can be used to authenticate the client and select the "
                               "RESP protocol version at the same time");
    if (ver)
        s->resp = (int)ver;
    rc = akv_reply_map(ctx->out, s->resp, 7);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "server");
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "attnkv");
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "version");
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, AKV_VERSION);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "proto");
    rc = rc ? rc : akv_reply_int(ctx->out, s->resp);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "id");
    rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)s->id);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "mode");
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "standalone");
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "role");
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "master");
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "modules");
    rc = rc ? rc : akv_reply_array(ctx->out, 0);
    return rc;
}

/* RESET: the connection as if new, keeping its id, addresses and the
 * client library's name and version (as Redis does). Releases what
 * commands attached to the session (MONITOR, and whatever
 * akv_cmd_session_fini releases). */
int akv_cmd_do_reset(struct akv_cmd_ctx *ctx)
{
    struct akv_session *s = ctx->sess;
    struct akv_session keep = *s;

    akv_cmd_session_fini(ctx->env, s);
    akv_cmd_session_init(s, keep.id, keep.peer);
    /* Logged out, unless no password is needed (Redis's default user). */
    s->authenticated = !ctx->env->config->requirepass;
    memcpy(s->laddr, keep.laddr, sizeof(s->laddr));
    memcpy(s->lib_name, keep.lib_name, sizeof(s->lib_name));
    memcpy(s->lib_ver, keep.lib_ver, sizeof(s->lib_ver));
    s->last_cmd = keep.last_cmd;
    return akv_reply_status(ctx->out, "RESET");
}

int akv_cmd_do_monitor(struct akv_cmd_ctx *ctx)
{
    if (!ctx->env->monitor_set)
        return reply_unavailable(ctx, "MONITOR");
    if (!ctx->sess->monitor)
        ctx->env->monitor_set(ctx->env, ctx->sess, 1);
    return akv_reply_status(ctx->out, "OK");
}

/* Appends s[0, n) as Redis's sdscatrepr writes it, without the quotes;
 * room for 4 * n bytes must be reserved. */
static void repr(struct akv_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *o = b->p + b->len;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\\':
        case '"':
            *o++ = '\\';
            *o++ = (char)c;
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        case '\a':
            *o++ = '\\';
            *o++ = 'a';
            break;
        case '\b':
            *o++ = '\\';
            *o++ = 'b';
            break;
        default:
            if (c >= 0x20 && c < 0x7f) {
                *o++ = (char)c;
            } else {
                *o++ = '\\';
                *o++ = 'x';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
        }
    }
    b->len = (size_t)(o - b->p);
}

int akv_cmd_monitor_line(struct akv_buf *b, const struct akv_cmd_env *env, const struct akv_cmd *c,
                         const struct akv_session *s, size_t argc, const struct akv_slice *argv)
{
    struct timespec ts;
    size_t shown = argc > MONITOR_ARGC_MAX ? MONITOR_ARGC_MAX - 1 : argc;
    int rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    rc = akv_buf_printf(b, "+%lld.%06ld [%d %s]", (long long)ts.tv_sec, ts.tv_nsec / 1000L, s->db,
                        s->peer);
    for (size_t i = 0; rc == 0 && i < shown; i++) {
        const char *p = argv[i].p;
        size_t n = argv[i].len, cut = 0;
        char note[48] = "";

        if (akv_cmd_arg_secret(env, c, argc, argv, i)) {
            p = "(redacted)";
            n = 10;
        } else if (n > MONITOR_ARG_MAX) {
            cut = n - MONITOR_ARG_MAX;
            n = MONITOR_ARG_MAX;
            snprintf(note, sizeof(note), "... (%zu more bytes)", cut);
        }
        rc = akv_buf_reserve(b, 3 + 4 * n + strlen(note));
        if (rc < 0)
            break;
        b->p[b->len++] = ' ';
        b->p[b->len++] = '"';
        repr(b, p, n);
        memcpy(b->p + b->len, note, strlen(note));
        b->len += strlen(note);
        b->p[b->len++] = '"';
    }
    if (rc == 0 && shown < argc)
        rc = akv_buf_printf(b, " \"... (%zu more arguments)\"", argc - shown);
    return rc ? rc : akv_buf_append(b, "\r\n", 2);
}
