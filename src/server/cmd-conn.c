/*
 * cmd-conn.c - the connection commands: PING, ECHO, QUIT, AUTH,
 * HELP and COMMAND.
 *
 * Threading: the loop thread (cmd.h). AUTH compares the password in time
 * that does not depend on its contents, and no reply shows it.
 */
#include "server/cmd-impl.h"

/* ------------------------------------------------------------------------
 * Connection and server commands.
 */

int akv_cmd_do_ping(struct akv_cmd_ctx *ctx)
{
    if (ctx->argc > 2)
        return reply_wrong_arity(ctx);
    if (ctx->argc == 2)
        return akv_reply_bulk(ctx->out, ctx->argv[1].p, ctx->argv[1].len);
    return akv_reply_status(ctx->out, "PONG");
}

int akv_cmd_do_echo(struct akv_cmd_ctx *ctx)
{
    return akv_reply_bulk(ctx->out, ctx->argv[1].p, ctx->argv[1].len);
}

int akv_cmd_do_quit(struct akv_cmd_ctx *ctx)
{
    ctx->close_after_reply = 1;
    return akv_reply_status(ctx->out, "OK");
}

/* Whether attempt equals secret, in time that depends only on the attempt's
 * length: every byte of the attempt is compared (against the secret
 * repeated), with no early exit. */
static int secret_equal(const char *secret, const struct akv_slice *attempt)
{
    size_t slen = strlen(secret);
    volatile unsigned char diff = (unsigned char)(slen != attempt->len);

    if (slen == 0)
        return 0;
    for (size_t i = 0; i < attempt->len; i++)
        diff |= (unsigned char)((unsigned char)attempt->p[i] ^ (unsigned char)secret[i % slen]);
    return diff == 0;
}

/* AUTH password, or the Redis 6 form AUTH username password, where "default"
 * is the only user. Redis's replies, word for word. */
int akv_cmd_do_auth(struct akv_cmd_ctx *ctx)
{
    const char *pass = ctx->env->config->requirepass;
    const struct akv_slice *user = ctx->argc == 3 ? &ctx->argv[1] : NULL;
    int user_ok;

    if (ctx->argc > 3)
        return reply_syntax(ctx);
    /* The user name is not secret; compare it plainly. */
    user_ok = !user || (user->len == 7 && memcmp(user->p, "default", 7) == 0);
    if (!pass) {
        if (!user)
            return akv_reply_error(ctx->out,
                                   "ERR AUTH <password> called without any password configured "
                                   "for the default user. Are you sure your configuration is "
                                   "correct?");
        /* Without a password the default user takes any, as in Redis. */
        if (user_ok) {
            ctx->sess->authenticated = 1;
            return akv_reply_status(ctx->out, "OK");
        }
    } else if (secret_equal(pass, &ctx->argv[ctx->argc - 1]) && user_ok) {
        ctx->sess->authenticated = 1;
        return akv_reply_status(ctx->out, "OK");
    }
    /* A failed AUTH leaves an authenticated connection authenticated, as in
     * Redis. */
    return akv_reply_error(ctx->out,
                           "WRONGPASS invalid username-password pair or user is disabled.");
}

/* READABLE [ON|OFF]: replies as text for people, from this reply on (the
 * connection translates each reply; see proto/humanize.h). Without an
 * argument, says which mode is on. */
int akv_cmd_do_readable(struct akv_cmd_ctx *ctx)
{
    if (ctx->argc == 1)
        return akv_reply_status(ctx->out, ctx->sess->readable ? "ON" : "OFF");
    if (ctx->argc > 2)
        return reply_wrong_arity(ctx);
    if (arg_is(&ctx->argv[1], "ON"))
        ctx->sess->readable = 1;
    else if (arg_is(&ctx->argv[1], "OFF"))
        ctx->sess->readable = 0;
    else
        return reply_syntax(ctx);
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_help(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd *t = akv_cmd_table();
    size_t n = 0;
    int rc;

    while (t[n].name)
        n++;
    rc = akv_reply_array(ctx->out, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char line[256];
        snprintf(line, sizeof(line), "%s - %s", t[i].usage, t[i].summary);
        rc = akv_reply_bulk_str(ctx->out, line);
    }
    return rc;
}

/* One COMMAND entry in the Redis 7 layout: name, arity, flags, first key,
 * last key, key step, ACL categories, tips, key specs, subcommands. redis-cli
 * reads the first six to drive its hints and completion. */
static int reply_command_entry(struct akv_buf *out, const struct akv_cmd *c)
{
    static const struct {
        unsigned bit;
        const char *name;
    } fl[] = {
        {AKV_CMD_WRITE, "write"},
        {AKV_CMD_READONLY, "readonly"},
        {AKV_CMD_FAST, "fast"},
        {AKV_CMD_ADMIN, "admin"},
    };
    char lb[32];
    size_t nflags = 0, i;
    int rc;

    for (i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
        nflags += (c->flags & fl[i].bit) != 0;

    rc = akv_reply_array(out, 10);
    rc = rc ? rc : akv_reply_bulk_str(out, lower(c->name, lb, sizeof(lb)));
    rc = rc ? rc : akv_reply_int(out, c->arity);
    rc = rc ? rc : akv_reply_array(out, nflags);
    for (i = 0; rc == 0 && i < sizeof(fl) / sizeof(fl[0]); i++)
        if (c->flags & fl[i].bit)
            rc = akv_reply_status(out, fl[i].name);
    rc = rc ? rc : akv_reply_int(out, c->firstkey);
    rc = rc ? rc : akv_reply_int(out, c->lastkey);
    rc = rc ? rc : akv_reply_int(out, c->keystep);
    for (i = 0; rc == 0 && i < 4; i++)
        rc = akv_reply_array(out, 0);
    return rc;
}

int akv_cmd_do_command(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd *t = akv_cmd_table();
    size_t n = 0, i;
    int rc;

    while (t[n].name)
        n++;
    if (ctx->argc == 1) {
        rc = akv_reply_array(ctx->out, n);
        for (i = 0; rc == 0 && i < n; i++)
            rc = reply_command_entry(ctx->out, &t[i]);
        return rc;
    }
    if (arg_is(&ctx->argv[1], "COUNT") && ctx->argc == 2)
        return akv_reply_int(ctx->out, (int64_t)n);
    if (arg_is(&ctx->argv[1], "DOCS"))
        /* redis-cli 7 asks for documentation to show hints; it copes with
         * an empty answer. */
        return akv_reply_array(ctx->out, 0);
    if (arg_is(&ctx->argv[1], "LIST") && ctx->argc == 2) {
        rc = akv_reply_array(ctx->out, n);
        for (i = 0; rc == 0 && i < n; i++) {
            char lb[32];
            rc = akv_reply_bulk_str(ctx->out, lower(t[i].name, lb, sizeof(lb)));
        }
        return rc;
    }
    if (arg_is(&ctx->argv[1], "INFO")) {
        if (ctx->argc - 2 > COMMAND_INFO_MAX)
            return akv_reply_errorf(ctx->out, "ERR COMMAND INFO takes at most %d names",
                                    COMMAND_INFO_MAX);
        rc = akv_reply_array(ctx->out, ctx->argc - 2);
        for (i = 2; rc == 0 && i < ctx->argc && !reply_over_limit(ctx); i++) {
            const struct akv_cmd *c = akv_cmd_lookup(ctx->argv[i].p, ctx->argv[i].len);
            rc = c ? reply_command_entry(ctx->out, c) : akv_reply_nil(ctx->out);
        }
        return rc;
    }
    {
        char sb[AKV_QUOTE_BUF];
        return akv_reply_errorf(ctx->out,
                                "ERR unknown subcommand or wrong number of arguments for "
                                "'%s'; COMMAND takes COUNT, DOCS, INFO or LIST",
                                show(&ctx->argv[1], sb));
    }
}
