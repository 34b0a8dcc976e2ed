/*
 * cmd-command.c - COMMAND [COUNT | DOCS | INFO | LIST]: what clients learn
 * about the commands, from the tables in cmd.c alone, so that a command
 * added there is described without more work.
 *
 * Design
 * ------
 * COMMAND INFO writes Redis 7's ten-field entry (name, arity, flags, key
 * positions, ACL categories, tips, key specs, subcommands) from a table row.
 * COMMAND DOCS writes Redis 7's documentation map (summary, group,
 * arguments, subcommands); redis-cli builds its hints and HELP from it. The
 * arguments are parsed from the row's usage string, written in the notation
 * of Redis's documentation:
 *   lower-case word     an argument ("key", "pattern", "count", "ip:port");
 *   UPPER word          a literal token; followed by an argument (or by a
 *                       choice), the token introduces it: "COUNT k";
 *   a|b|c (no blanks)   a choice of literals (or, after a token, of values);
 *   [ ... ]             optional;
 *   x [x ...]           x repeated (also "x ..." and "x...");
 *   p | q (blanks)      a choice between whole sequences.
 * The parser is a small recursive descent over a static string into a fixed
 * pool of nodes; a usage string it cannot read gives no arguments rather
 * than wrong ones (tests/unit/test-cmd.c parses every row).
 *
 * The group of a command (redis-cli's "help @group") comes from a short
 * list of names, else from its flags.
 *
 * Threading: the loop thread (cmd.h).
 */
#include "server/cmd-impl.h"

#include <ctype.h>

/* ------------------------------------------------------------------------
 * Usage strings to argument trees.
 */

#define NODES_MAX 64
#define NAME_MAX_ 48

enum arg_type { T_STRING, T_KEY, T_PATTERN, T_INTEGER, T_DOUBLE, T_PURE, T_ONEOF, T_BLOCK };

static const char *const type_names[] = {"string", "key",        "pattern", "integer",
                                         "double", "pure-token", "oneof",   "block"};

struct node {
    char name[NAME_MAX_];
    const char *token; /* into the usage string; NULL: none */
    size_t toklen;
    enum arg_type type;
    unsigned optional : 1, multiple : 1;
    int child[12]; /* oneof and block */
    int nchild;
};

struct parser {
    const char *p, *end;
    struct node nodes[NODES_MAX];
    int n;
    int failed;
};

/* Tokens: "[", "]", a loose "|" (with blanks around it), or a word (which
 * may hold tight '|' choices and end in "..."). */
enum tok { TK_END, TK_OPEN, TK_CLOSE, TK_BAR, TK_WORD };

static enum tok peek(struct parser *ps, const char **w, size_t *wl)
{
    const char *p = ps->p;

    while (p < ps->end && *p == ' ')
        p++;
    ps->p = p;
    if (p == ps->end)
        return TK_END;
    if (*p == '[')
        return TK_OPEN;
    if (*p == ']')
        return TK_CLOSE;
    if (*p == '|' && (p + 1 == ps->end || p[1] == ' '))
        return TK_BAR;
    *w = p;
    while (p < ps->end && *p != ' ' && *p != '[' && *p != ']')
        p++;
    *wl = (size_t)(p - *w);
    return TK_WORD;
}

static void advance(struct parser *ps, enum tok t, size_t wl)
{
    ps->p += t == TK_WORD ? wl : 1;
}

static int node_new(struct parser *ps)
{
    if (ps->n == NODES_MAX) {
        ps->failed = 1;
        return -1;
    }
    memset(&ps->nodes[ps->n], 0, sizeof(ps->nodes[0]));
    return ps->n++;
}

static void add_child(struct parser *ps, int parent, int child)
{
    struct node *n = &ps->nodes[parent];

    if (n->nchild == (int)(sizeof(n->child) / sizeof(n->child[0]))) {
        ps->failed = 1;
        return;
    }
    n->child[n->nchild++] = child;
}

static void set_name(struct node *n, const char *s, size_t len)
{
    size_t i;

    if (len >= sizeof(n->name))
        len = sizeof(n->name) - 1;
    for (i = 0; i < len; i++)
        n->name[i] = (char)tolower((unsigned char)s[i]);
    n->name[len] = '\0';
}

static int is_token_word(const char *w)
{
    return isupper((unsigned char)w[0]);
}

/* The type of an argument, from its name. */
static enum arg_type placeholder_type(const char *name)
{
    static const char *const ints[] = {"count",       "n",         "k",        "timeout", "cursor",
                                       "numreplicas", "client-id", "protover", "index"};

    if (strcmp(name, "key") == 0)
        return T_KEY;
    if (strcmp(name, "pattern") == 0)
        return T_PATTERN;
    if (strcmp(name, "t") == 0 || strcmp(name, "w") == 0)
        return T_DOUBLE;
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if (strcmp(name, ints[i]) == 0)
            return T_INTEGER;
    return T_STRING;
}

/* A word: a choice if it holds '|', else a token or an argument. A
 * trailing "..." makes it repeat. */
static int parse_word(struct parser *ps, const char *w, size_t wl)
{
    const char *bar = memchr(w, '|', wl);
    int multiple = 0, id;

    if (wl > 3 && memcmp(w + wl - 3, "...", 3) == 0) {
        multiple = 1;
        wl -= 3;
    }
    id = node_new(ps);
    if (id < 0)
        return -1;
    if (bar) {
        const char *s = w, *e = w + wl;
        ps->nodes[id].type = T_ONEOF;
        while (s <= e && !ps->failed) {
            const char *q = memchr(s, '|', (size_t)(e - s));
            size_t len = q ? (size_t)(q - s) : (size_t)(e - s);
            int c = node_new(ps);
            if (c < 0)
                return -1;
            ps->nodes[c].type = T_PURE;
            ps->nodes[c].token = s;
            ps->nodes[c].toklen = len;
            set_name(&ps->nodes[c], s, len);
            add_child(ps, id, c);
            s += len + 1;
        }
        /* Redis names a choice after its alternatives: "on_off". */
        {
            char nm[NAME_MAX_];
            size_t k = 0;
            for (int i = 0; i < ps->nodes[id].nchild && k + 1 < sizeof(nm); i++) {
                const char *cn = ps->nodes[ps->nodes[id].child[i]].name;
                if (i > 0)
                    nm[k++] = '_';
                while (*cn && k + 1 < sizeof(nm))
                    nm[k++] = *cn++;
            }
            nm[k] = '\0';
            memcpy(ps->nodes[id].name, nm, k + 1);
        }
    } else if (is_token_word(w)) {
        ps->nodes[id].type = T_PURE;
        ps->nodes[id].token = w;
        ps->nodes[id].toklen = wl;
        set_name(&ps->nodes[id], w, wl);
    } else {
        set_name(&ps->nodes[id], w, wl);
        ps->nodes[id].type = placeholder_type(ps->nodes[id].name);
    }
    ps->nodes[id].multiple = (unsigned)multiple;
    return id;
}

static int parse_alt(struct parser *ps, int *items, int *nitems, int cap);

/* Whether items b[0..nb) name the same arguments as a[0..nb). */
static int same_names(struct parser *ps, const int *a, const int *b, int nb)
{
    for (int i = 0; i < nb; i++)
        if (strcmp(ps->nodes[a[i]].name, ps->nodes[b[i]].name) != 0)
            return 0;
    return 1;
}

/* A block of the items, named after them ("name_value"). */
static int make_block(struct parser *ps, const int *items, int n)
{
    int id = node_new(ps);
    size_t k = 0;

    if (id < 0)
        return -1;
    ps->nodes[id].type = T_BLOCK;
    for (int i = 0; i < n; i++) {
        const char *cn = ps->nodes[items[i]].name;
        add_child(ps, id, items[i]);
        if (i > 0 && k + 1 < NAME_MAX_)
            ps->nodes[id].name[k++] = '_';
        while (*cn && k + 1 < NAME_MAX_)
            ps->nodes[id].name[k++] = *cn++;
    }
    ps->nodes[id].name[k] = '\0';
    return id;
}

/* A sequence of items, up to "|", "]" or the end. Writes their node ids
 * into items. */
static int parse_seq(struct parser *ps, int *items, int *nitems, int cap)
{
    *nitems = 0;
    while (!ps->failed) {
        const char *w = NULL;
        size_t wl = 0;
        enum tok t = peek(ps, &w, &wl);
        int id;

        if (t == TK_END || t == TK_CLOSE || t == TK_BAR)
            return 0;
        if (t == TK_WORD && wl == 3 && memcmp(w, "...", 3) == 0) {
            /* "x ...": the item before repeats. */
            advance(ps, t, wl);
            if (*nitems == 0)
                return -1;
            ps->nodes[items[*nitems - 1]].multiple = 1;
            continue;
        }
        if (t == TK_OPEN) {
            int inner[16], ninner = 0;
            advance(ps, t, 0);
            if (parse_alt(ps, inner, &ninner, 16) < 0)
                return -1;
            if (peek(ps, &w, &wl) != TK_CLOSE)
                return -1;
            advance(ps, TK_CLOSE, 0);
            /* "x [x ...]": the group repeats what came before it. */
            if (ninner >= 1 && ninner <= *nitems && ps->nodes[inner[ninner - 1]].multiple &&
                same_names(ps, items + *nitems - ninner, inner, ninner)) {
                if (ninner == 1) {
                    ps->nodes[items[*nitems - 1]].multiple = 1;
                } else {
                    int b = make_block(ps, items + *nitems - ninner, ninner);
                    if (b < 0)
                        return -1;
                    *nitems -= ninner;
                    ps->nodes[b].multiple = 1;
                    items[(*nitems)++] = b;
                }
                continue;
            }
            if (ninner == 0)
                return -1;
            id = ninner == 1 ? inner[0] : make_block(ps, inner, ninner);
            if (id < 0)
                return -1;
            ps->nodes[id].optional = 1;
        } else {
            advance(ps, t, wl);
            id = parse_word(ps, w, wl);
            if (id < 0)
                return -1;
            /* A token followed by an argument or a choice introduces it. */
            if (ps->nodes[id].type == T_PURE) {
                const char *w2 = NULL;
                size_t wl2 = 0;
                if (peek(ps, &w2, &wl2) == TK_WORD && !(wl2 == 3 && memcmp(w2, "...", 3) == 0) &&
                    (!is_token_word(w2) || memchr(w2, '|', wl2))) {
                    const char *tok = ps->nodes[id].token;
                    size_t toklen = ps->nodes[id].toklen;
                    advance(ps, TK_WORD, wl2);
                    ps->n--; /* reuse the token's node for its argument */
                    id = parse_word(ps, w2, wl2);
                    if (id < 0)
                        return -1;
                    ps->nodes[id].token = tok;
                    ps->nodes[id].toklen = toklen;
                }
            }
        }
        if (*nitems == cap)
            return -1;
        items[(*nitems)++] = id;
    }
    return -1;
}

/* Sequences separated by loose "|": one sequence's items, or one choice. */
static int parse_alt(struct parser *ps, int *items, int *nitems, int cap)
{
    int seq[16], nseq, choice = -1;

    for (;;) {
        const char *w;
        size_t wl;
        if (parse_seq(ps, seq, &nseq, 16) < 0 || ps->failed)
            return -1;
        if (peek(ps, &w, &wl) != TK_BAR && choice < 0) {
            if (nseq > cap)
                return -1;
            memcpy(items, seq, (size_t)nseq * sizeof(int));
            *nitems = nseq;
            return 0;
        }
        if (choice < 0) {
            choice = node_new(ps);
            if (choice < 0)
                return -1;
            ps->nodes[choice].type = T_ONEOF;
        }
        if (nseq == 0)
            return -1;
        add_child(ps, choice, nseq == 1 ? seq[0] : make_block(ps, seq, nseq));
        if (peek(ps, &w, &wl) != TK_BAR)
            break;
        advance(ps, TK_BAR, 0);
    }
    {
        struct node *c = &ps->nodes[choice];
        size_t k = 0;
        for (int i = 0; i < c->nchild; i++) {
            const char *cn = ps->nodes[c->child[i]].name;
            if (i > 0 && k + 1 < NAME_MAX_)
                c->name[k++] = '_';
            while (*cn && k + 1 < NAME_MAX_)
                c->name[k++] = *cn++;
        }
        c->name[k] = '\0';
    }
    items[0] = choice;
    *nitems = 1;
    return 0;
}

/* Parses the arguments of usage after its first nwords words (the command's
 * name, or container and subcommand). Returns 0 with the top-level items,
 * or -1 if the string is not in the notation. */
static int parse_usage(struct parser *ps, const char *usage, int nwords, int *items, int *nitems,
                       int cap)
{
    const char *w;
    size_t wl;

    ps->p = usage;
    ps->end = usage + strlen(usage);
    ps->n = 0;
    ps->failed = 0;
    for (int i = 0; i < nwords; i++) {
        if (peek(ps, &w, &wl) != TK_WORD)
            return -1;
        advance(ps, TK_WORD, wl);
    }
    if (parse_alt(ps, items, nitems, cap) < 0 || ps->failed || peek(ps, &w, &wl) != TK_END)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------
 * COMMAND INFO.
 */

/* The container c's subcommands: the first and how many. */
static const struct akv_subcmd *subs_of(const struct akv_cmd *c, size_t *n)
{
    const struct akv_subcmd *t = akv_cmd_subcommands(), *first = NULL;

    *n = 0;
    for (; t->parent; t++) {
        if (strcmp(t->parent, c->name) == 0) {
            if (!first)
                first = t;
            (*n)++;
        }
    }
    return first;
}

static const struct {
    unsigned bit;
    const char *flag, *category;
} flag_names[] = {
    {AKV_CMD_WRITE, "write", "@write"}, {AKV_CMD_READONLY, "readonly", "@read"},
    {AKV_CMD_ADMIN, "admin", "@admin"}, {AKV_CMD_FAST, "fast", "@fast"},
    {AKV_CMD_NOAUTH, "no_auth", NULL},  {AKV_CMD_LOADING, "loading", NULL},
};

/* One entry in Redis 7's layout: name, arity, flags, first key, last key,
 * key step, ACL categories, tips, key specs, subcommands. Flags and
 * categories are sets (arrays in RESP2). */
static int reply_info_entry(struct akv_buf *out, int resp, const char *name, int arity,
                            unsigned flags, int firstkey, int lastkey, int keystep,
                            const struct akv_cmd *container)
{
    size_t nflags = 0, ncat = 1, nsub = 0, i;
    const struct akv_subcmd *sub = container ? subs_of(container, &nsub) : NULL;
    int rc;

    for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
        if (flags & flag_names[i].bit) {
            nflags++;
            ncat += flag_names[i].category != NULL;
        }
    if (flags & AKV_CMD_ADMIN)
        ncat++; /* @dangerous */
    if (flags & AKV_CMD_FAST)
        ncat--; /* @fast replaces @slow */
    rc = akv_reply_array(out, 10);
    rc = rc ? rc : akv_reply_bulk_str(out, name);
    rc = rc ? rc : akv_reply_int(out, arity);
    rc = rc ? rc : akv_reply_set(out, resp, nflags);
    for (i = 0; rc == 0 && i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
        if (flags & flag_names[i].bit)
            rc = akv_reply_status(out, flag_names[i].flag);
    rc = rc ? rc : akv_reply_int(out, firstkey);
    rc = rc ? rc : akv_reply_int(out, lastkey);
    rc = rc ? rc : akv_reply_int(out, keystep);
    rc = rc ? rc : akv_reply_set(out, resp, ncat);
    for (i = 0; rc == 0 && i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
        if ((flags & flag_names[i].bit) && flag_names[i].category)
            rc = akv_reply_status(out, flag_names[i].category);
    if (rc == 0 && !(flags & AKV_CMD_FAST))
        rc = akv_reply_status(out, "@slow");
    if (rc == 0 && (flags & AKV_CMD_ADMIN))
        rc = akv_reply_status(out, "@dangerous");
    rc = rc ? rc : akv_reply_array(out, 0); /* tips */
    rc = rc ? rc : akv_reply_array(out, 0); /* key specs */
    rc = rc ? rc : akv_reply_array(out, nsub);
    for (i = 0; rc == 0 && i < nsub; i++) {
        char full[96], pb[32], sb[64];
        snprintf(full, sizeof(full), "%s|%s", lower(sub[i].parent, pb, sizeof(pb)),
                 lower(sub[i].name, sb, sizeof(sb)));
        rc = reply_info_entry(out, resp, full, sub[i].arity, sub[i].flags, sub[i].firstkey,
                              sub[i].lastkey, sub[i].keystep, NULL);
    }
    return rc;
}

static int reply_command_info(struct akv_buf *out, int resp, const struct akv_cmd *c)
{
    char lb[32];

    return reply_info_entry(out, resp, lower(c->name, lb, sizeof(lb)), c->arity, c->flags,
                            c->firstkey, c->lastkey, c->keystep, c);
}

/* "client|kill" or "client" (any case) to a command and maybe a subcommand. */
static const struct akv_cmd *find_named(const struct akv_slice *a, const struct akv_subcmd **sub)
{
    const char *bar = memchr(a->p, '|', a->len);
    const struct akv_cmd *c;

    *sub = NULL;
    if (!bar)
        return akv_cmd_lookup(a->p, a->len);
    c = akv_cmd_lookup(a->p, (size_t)(bar - a->p));
    if (!c)
        return NULL;
    *sub = akv_cmd_subcommand_lookup(c, bar + 1, a->len - (size_t)(bar - a->p) - 1);
    return *sub ? c : NULL;
}

/* ------------------------------------------------------------------------
 * COMMAND DOCS.
 */

/* redis-cli's "help @group". */
static const char *group_of(const char *name, unsigned flags)
{
    static const struct {
        const char *name, *group;
    } groups[] = {
        {"PING", "connection"},    {"ECHO", "connection"},      {"QUIT", "connection"},
        {"HELP", "connection"},    {"AUTH", "connection"},      {"SELECT", "connection"},
        {"HELLO", "connection"},   {"RESET", "connection"},     {"CLIENT", "connection"},
        {"SET", "string"},         {"GET", "string"},           {"STRLEN", "string"},
        {"MSET", "string"},        {"MGET", "string"},          {"GETDEL", "string"},
        {"QUERY", "query"},        {"EXPLAIN", "query"},        {"NEIGHBORS", "query"},
        {"VOCAB", "query"},        {"EMBED", "query"},          {"SIMILARITY", "query"},
        {"DOESNTMATCH", "query"},  {"FGET", "query"},           {"ANALOGY", "query"},
        {"MULTI", "transactions"}, {"EXEC", "transactions"},    {"DISCARD", "transactions"},
        {"WATCH", "transactions"}, {"UNWATCH", "transactions"}, {"DBSIZE", "server"},
        {"FLUSHALL", "server"},    {"FLUSHDB", "server"},       {"WAIT", "generic"},
    };

    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (strcmp(groups[i].name, name) == 0)
            return groups[i].group;
    if (flags & (AKV_CMD_WRITE | AKV_CMD_READONLY))
        return "generic";
    return "server";
}

static int reply_arg(struct akv_buf *out, int resp, const struct parser *ps, int id)
{
    const struct node *n = &ps->nodes[id];
    size_t fields = 2 + (n->token != NULL) + (n->optional || n->multiple) + (n->nchild > 0);
    int rc;

    rc = akv_reply_map(out, resp, fields);
    rc = rc ? rc : akv_reply_bulk_str(out, "name");
    rc = rc ? rc : akv_reply_bulk_str(out, n->name);
    rc = rc ? rc : akv_reply_bulk_str(out, "type");
    rc = rc ? rc : akv_reply_bulk_str(out, type_names[n->type]);
    if (rc == 0 && n->token) {
        rc = akv_reply_bulk_str(out, "token");
        rc = rc ? rc : akv_reply_bulk(out, n->token, n->toklen);
    }
    if (rc == 0 && (n->optional || n->multiple)) {
        rc = akv_reply_bulk_str(out, "flags");
        rc = rc ? rc : akv_reply_set(out, resp, (size_t)n->optional + n->multiple);
        if (rc == 0 && n->optional)
            rc = akv_reply_status(out, "optional");
        if (rc == 0 && n->multiple)
            rc = akv_reply_status(out, "multiple");
    }
    if (rc == 0 && n->nchild > 0) {
        rc = akv_reply_bulk_str(out, "arguments");
        rc = rc ? rc : akv_reply_array(out, (size_t)n->nchild);
        for (int i = 0; rc == 0 && i < n->nchild; i++)
            rc = reply_arg(out, resp, ps, n->child[i]);
    }
    return rc;
}

/* The docs map of one command or subcommand: summary, group, and the
 * arguments parsed from usage (after nwords words), or the subcommands'
 * maps for a container. */
static int reply_docs(struct akv_buf *out, int resp, const char *usage, int nwords,
                      const char *summary, const char *group, const struct akv_cmd *container)
{
    struct parser *ps = NULL;
    int items[16], nitems = 0, rc;
    size_t nsub = 0;
    const struct akv_subcmd *sub = container ? subs_of(container, &nsub) : NULL;

    if (nsub == 0) {
        ps = malloc(sizeof(*ps));
        if (!ps)
            return -ENOMEM;
        if (parse_usage(ps, usage, nwords, items, &nitems, 16) < 0)
            nitems = 0;
    }
    rc = akv_reply_map(out, resp, 2 + (nitems > 0) + (nsub > 0));
    rc = rc ? rc : akv_reply_bulk_str(out, "summary");
    rc = rc ? rc : akv_reply_bulk_str(out, summary);
    rc = rc ? rc : akv_reply_bulk_str(out, "group");
    rc = rc ? rc : akv_reply_bulk_str(out, group);
    if (rc == 0 && nitems > 0) {
        rc = akv_reply_bulk_str(out, "arguments");
        rc = rc ? rc : akv_reply_array(out, (size_t)nitems);
        for (int i = 0; rc == 0 && i < nitems; i++)
            rc = reply_arg(out, resp, ps, items[i]);
    }
    if (rc == 0 && nsub > 0) {
        rc = akv_reply_bulk_str(out, "subcommands");
        rc = rc ? rc : akv_reply_map(out, resp, nsub);
        for (size_t i = 0; rc == 0 && i < nsub; i++) {
            char full[96], pb[32], sb[64];
            snprintf(full, sizeof(full), "%s|%s", lower(sub[i].parent, pb, sizeof(pb)),
                     lower(sub[i].name, sb, sizeof(sb)));
            rc = akv_reply_bulk_str(out, full);
            rc = rc ? rc : reply_docs(out, resp, sub[i].usage, 2, sub[i].summary, group, NULL);
        }
    }
    free(ps);
    return rc;
}

static int reply_command_docs(struct akv_buf *out, int resp, const struct akv_cmd *c)
{
    char lb[32];
    int rc = akv_reply_bulk_str(out, lower(c->name, lb, sizeof(lb)));

    return rc ? rc : reply_docs(out, resp, c->usage, 1, c->summary, group_of(c->name, c->flags), c);
}

/* ------------------------------------------------------------------------
 * The command.
 */

int akv_cmd_do_command(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd *t = akv_cmd_table();
    int resp = resp_of(ctx);
    size_t n = 0, i;
    int rc;

    while (t[n].name)
        n++;
    if (ctx->argc == 1) {
        rc = akv_reply_array(ctx->out, n);
        for (i = 0; rc == 0 && i < n; i++)
            rc = reply_command_info(ctx->out, resp, &t[i]);
        return rc;
    }
    if (arg_is(&ctx->argv[1], "COUNT") && ctx->argc == 2)
        return akv_reply_int(ctx->out, (int64_t)n);
    if (arg_is(&ctx->argv[1], "DOCS")) {
        /* Unknown names are left out, as in Redis; so the map's size
         * comes after the entries. */
        struct akv_buf tmp;
        size_t count = 0;

        if (ctx->argc - 2 > COMMAND_INFO_MAX)
            return akv_reply_errorf(ctx->out, "ERR COMMAND DOCS takes at most %d names",
                                    COMMAND_INFO_MAX);
        akv_buf_init(&tmp);
        rc = 0;
        if (ctx->argc == 2) {
            for (i = 0; rc == 0 && i < n; i++, count++)
                rc = reply_command_docs(&tmp, resp, &t[i]);
        } else {
            for (i = 2; rc == 0 && i < ctx->argc && tmp.len <= ctx->env->config->obuf_hard; i++) {
                const struct akv_subcmd *sub;
                const struct akv_cmd *c = find_named(&ctx->argv[i], &sub);
                if (!c)
                    continue;
                if (sub) {
                    char full[96], pb[32], sb[64];
                    snprintf(full, sizeof(full), "%s|%s", lower(sub->parent, pb, sizeof(pb)),
                             lower(sub->name, sb, sizeof(sb)));
                    rc = akv_reply_bulk_str(&tmp, full);
                    rc = rc ? rc
                            : reply_docs(&tmp, resp, sub->usage, 2, sub->summary,
                                         group_of(c->name, c->flags), NULL);
                } else {
                    rc = reply_command_docs(&tmp, resp, c);
                }
                count++;
            }
        }
        rc = rc ? rc : akv_reply_map(ctx->out, resp, count);
        rc = rc ? rc : akv_buf_append(ctx->out, tmp.p, tmp.len);
        akv_buf_fini(&tmp);
        return rc;
    }
    if (arg_is(&ctx->argv[1], "LIST") && ctx->argc == 2) {
        const struct akv_subcmd *sub = akv_cmd_subcommands();
        size_t nsub = 0;

        while (sub[nsub].parent)
            nsub++;
        rc = akv_reply_array(ctx->out, n + nsub);
        for (i = 0; rc == 0 && i < n; i++) {
            char lb[32];
            rc = akv_reply_bulk_str(ctx->out, lower(t[i].name, lb, sizeof(lb)));
        }
        for (i = 0; rc == 0 && i < nsub; i++) {
            char full[96], pb[32], sb[64];
            snprintf(full, sizeof(full), "%s|%s", lower(sub[i].parent, pb, sizeof(pb)),
                     lower(sub[i].name, sb, sizeof(sb)));
            rc = akv_reply_bulk_str(ctx->out, full);
        }
        return rc;
    }
    if (arg_is(&ctx->argv[1], "INFO")) {
        if (ctx->argc == 2) {
            /* Every command, as Redis 7 answers. */
            rc = akv_reply_array(ctx->out, n);
            for (i = 0; rc == 0 && i < n; i++)
                rc = reply_command_info(ctx->out, resp, &t[i]);
            return rc;
        }
        if (ctx->argc - 2 > COMMAND_INFO_MAX)
            return akv_reply_errorf(ctx->out, "ERR COMMAND INFO takes at most %d names",
                                    COMMAND_INFO_MAX);
        rc = akv_reply_array(ctx->out, ctx->argc - 2);
        for (i = 2; rc == 0 && i < ctx->argc && !reply_over_limit(ctx); i++) {
            const struct akv_subcmd *sub;
            const struct akv_cmd *c = find_named(&ctx->argv[i], &sub);
            if (!c) {
                rc = akv_reply_null(ctx->out, resp);
            } else if (sub) {
                char full[96], pb[32], sb[64];
                snprintf(full, sizeof(full), "%s|%s", lower(sub->parent, pb, sizeof(pb)),
                         lower(sub->name, sb, sizeof(sb)));
                rc = reply_info_entry(ctx->out, resp, full, sub->arity, sub->flags, sub->firstkey,
                                      sub->lastkey, sub->keystep, NULL);
            } else {
                rc = reply_command_info(ctx->out, resp, c);
            }
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
