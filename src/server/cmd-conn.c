/*
 * cmd-conn.c - the connection commands: PING, ECHO, QUIT, AUTH, READABLE
 * and HELP (COMMAND is in cmd-command.c; CLIENT, HELLO, RESET and MONITOR
 * in cmd-client.c; SELECT in cmd-keys.c).
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

int akv_cmd_authenticate(struct akv_cmd_ctx *ctx, const struct akv_slice *user,
                         const struct akv_slice *pass)
{
    const char *secret = ctx->env->config->requirepass;
    /* The user name is not secret; compare it plainly. */
    int user_ok = !user || (user->len == 7 && memcmp(user->p, "default", 7) == 0);

    /* Without a password the default user takes any, as in Redis. A
     * failed attempt leaves an authenticated connection authenticated. */
    if (secret ? secret_equal(secret, pass) && user_ok : user_ok) {
        ctx->sess->authenticated = 1;
        return 1;
    }
    return 0;
}

/* AUTH password, or the Redis 6 form AUTH username password, where "default"
 * is the only user. Redis's replies, word for word. */
int akv_cmd_do_auth(struct akv_cmd_ctx *ctx)
{
    const struct akv_slice *user = ctx->argc == 3 ? &ctx->argv[1] : NULL;

    if (ctx->argc > 3)
        return reply_syntax(ctx);
    if (!ctx->env->config->requirepass && !user)
        return akv_reply_error(ctx->out,
                               "ERR AUTH <password> called without any password configured "
                               "for the default user. Are you sure your configuration is "
                               "correct?");
    if (akv_cmd_authenticate(ctx, user, &ctx->argv[ctx->argc - 1]))
        return akv_reply_status(ctx->out, "OK");
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
