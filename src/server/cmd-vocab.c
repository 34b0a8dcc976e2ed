/*
 * cmd-vocab.c - the vocabulary's own commands (VOCAB EXISTS|INFO, EMBED,
 * SIMILARITY, DOESNTMATCH), the text options the query commands share
 * (UNKNOWN, WEIGHTING) with the reply element that names skipped words,
 * and key-normalize (the vocabulary's case folding applied to key
 * arguments before dispatch).
 *
 * Every command here runs on the loop thread: each does a bounded amount of
 * hash lookups and vector arithmetic (a text is at most AKV_TEXT_MAX bytes
 * and AKV_PHRASE_WORDS_MAX words; VOCAB EXISTS and DOESNTMATCH take at most
 * max-batch-size words), under a microsecond a word (DOESNTMATCH of 1024
 * words, VOCAB EXISTS of 1024: 0.4 and 0.6 ms, round trip included; an
 * EMBED of 4096 bytes of punctuation-laden text: 0.2 ms). A word no
 * vocabulary word can be costs one lowercasing of at most three times the
 * longest word's bytes (akv_vocab_find): 1024 upper-case words of 126
 * bytes, the worst with GloVe 6B, take 1.1 ms of the loop thread.
 *
 * key-normalize rewrites a call's key arguments before dispatch runs it
 * (akv_cmd_keys_normalize): into copies, which live until the call returns.
 *
 * Threading: the loop thread only.
 */
#include "server/cmd-impl.h"

#include <unicase.h>
#include <unistr.h>

int akv_cmd_embed_opt(struct akv_cmd_ctx *ctx, size_t i, struct akv_embed_opts *eo)
{
    const struct akv_slice *a = &ctx->argv[i];
    const struct akv_slice *v = i + 1 < ctx->argc ? a + 1 : NULL;
    char sb[AKV_QUOTE_BUF];
    int unknown = arg_is(a, "UNKNOWN");

    if (!unknown && !arg_is(a, "WEIGHTING"))
        return 0;
    if (!v) {
        int rc =
            akv_reply_errorf(ctx->out, "ERR %s needs a value", unknown ? "UNKNOWN" : "WEIGHTING");
        return rc < 0 ? rc : 1;
    }
    if (unknown && akv_unknown_parse(v->p, v->len, &eo->unknown) < 0) {
        int rc =
            akv_reply_errorf(ctx->out, "ERR unknown UNKNOWN '%s' (use error or skip)", show(v, sb));
        return rc < 0 ? rc : 1;
    }
    if (!unknown && akv_weighting_parse(v->p, v->len, &eo->weighting) < 0) {
        int rc =
            akv_reply_errorf(ctx->out, "ERR unknown WEIGHTING '%s' (use mean or sif)", show(v, sb));
        return rc < 0 ? rc : 1;
    }
    return 2;
}

int akv_cmd_skipped_copy(const char *text, const struct akv_embed_skips *sk,
                         struct akv_cmd_skipped *out)
{
    size_t bytes = 0, at = 0;

    out->n = 0;
    out->len = NULL;
    out->words = NULL;
    if (sk == NULL || sk->shown == 0)
        return 0;
    for (size_t i = 0; i < sk->shown; i++)
        bytes += sk->piece[i].len;
    out->len = malloc(sk->shown * sizeof(*out->len) + bytes);
    if (!out->len)
        return -ENOMEM;
    out->words = (char *)(out->len + sk->shown);
    for (size_t i = 0; i < sk->shown; i++) {
        memcpy(out->words + at, text + sk->piece[i].off, sk->piece[i].len);
        out->len[i] = sk->piece[i].len;
        at += sk->piece[i].len;
    }
    out->n = sk->shown;
    return 0;
}

void akv_cmd_skipped_free(struct akv_cmd_skipped *s)
{
    free(s->len);
    s->len = NULL;
    s->words = NULL;
    s->n = 0;
}

int akv_cmd_reply_skipped(struct akv_buf *out, int resp, const struct akv_cmd_skipped *s)
{
    const char *w = s->words;
    int rc;

    if (resp >= 3)
        rc = akv_reply_map(out, 3, 1);
    else
        rc = akv_reply_array(out, 2);
    rc = rc ? rc : akv_reply_bulk_str(out, "skipped");
    rc = rc ? rc : akv_reply_array(out, s->n);
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        rc = akv_reply_bulk(out, w, s->len[i]);
        w += s->len[i];
    }
    return rc;
}

/* The text options of EMBED and SIMILARITY from argv[first..]: UNKNOWN,
 * WEIGHTING, and RAW when raw is not NULL. Returns 0, 1 after an error
 * reply, or -ENOMEM. */
static int parse_text_opts(struct akv_cmd_ctx *ctx, size_t first, const char *cmd,
                           struct akv_embed_opts *eo, int *raw)
{
    char sb[AKV_QUOTE_BUF];

    for (size_t i = first; i < ctx->argc; i++) {
        int rc;
        if (raw && arg_is(&ctx->argv[i], "RAW")) {
            *raw = 1;
            continue;
        }
        rc = akv_cmd_embed_opt(ctx, i, eo);
        if (rc == 2) {
            i++;
            continue;
        }
        if (rc != 0)
            return rc;
        rc = akv_reply_errorf(ctx->out, "ERR unknown option '%s' for %s", show(&ctx->argv[i], sb),
                              cmd);
        return rc < 0 ? rc : 1;
    }
    return 0;
}

/* Embeds argv[i] into out; on failure replies the error and returns 1 (or
 * -ENOMEM). */
static int embed_arg(struct akv_cmd_ctx *ctx, size_t i, const struct akv_embed_opts *eo, float *out,
                     struct akv_embed_skips *sk)
{
    char err[256] = "";
    int rc = akv_embed_text_opts(ctx->env->vocab, ctx->argv[i].p, ctx->argv[i].len, eo, out, sk,
                                 err, sizeof(err));

    if (rc == 0)
        return 0;
    rc = akv_reply_errorf(ctx->out, "ERR %s", err[0] ? err : "text does not embed");
    return rc < 0 ? rc : 1;
}

/* EMBED text [RAW] [UNKNOWN error|skip] [WEIGHTING mean|sif]: the vector,
 * as dim doubles (bulk strings in RESP2, doubles in RESP3, with the skipped
 * words' element after them when there are some) or, with RAW, one bulk
 * string of dim little-endian FP32 values. */
int akv_cmd_do_embed(struct akv_cmd_ctx *ctx)
{
    const struct akv_vocab *voc = ctx->env->vocab;
    uint32_t dim = akv_vocab_dim(voc);
    struct akv_embed_opts eo = ctx->env->config->embed;
    struct akv_embed_skips sk;
    struct akv_cmd_skipped skipped;
    float *v;
    int raw = 0, rc, resp = resp_of(ctx);

    rc = parse_text_opts(ctx, 2, "EMBED", &eo, &raw);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    v = malloc((size_t)dim * sizeof(float));
    if (!v)
        return reply_oom(ctx->out);
    rc = embed_arg(ctx, 1, &eo, v, &sk);
    if (rc != 0) {
        free(v);
        return rc < 0 ? rc : 0;
    }
    if (raw) {
        unsigned char *b = (unsigned char *)v;
        /* FP32 little-endian whatever the host. */
        for (uint32_t d = 0; d < dim; d++) {
            uint32_t u;
            memcpy(&u, &v[d], 4);
            b[4 * d] = (unsigned char)u;
            b[4 * d + 1] = (unsigned char)(u >> 8);
            b[4 * d + 2] = (unsigned char)(u >> 16);
            b[4 * d + 3] = (unsigned char)(u >> 24);
        }
        rc = akv_reply_bulk(ctx->out, b, (size_t)dim * 4);
        free(v);
        return rc;
    }
    if (akv_cmd_skipped_copy(ctx->argv[1].p, &sk, &skipped) < 0) {
        free(v);
        return reply_oom(ctx->out);
    }
    rc = akv_reply_array(ctx->out, dim + (skipped.n > 0));
    for (uint32_t d = 0; rc == 0 && d < dim; d++)
        rc = akv_reply_double(ctx->out, resp, v[d]);
    if (rc == 0 && skipped.n > 0)
        rc = akv_cmd_reply_skipped(ctx->out, resp, &skipped);
    akv_cmd_skipped_free(&skipped);
    free(v);
    return rc;
}

/* The cosine of a and b (dim floats), in double, kept within [-1, 1]
 * (rounding took "the" against itself to 1.0000000000000002). 0 when
 * either is zero. */
static double cosine(const float *a, const float *b, uint32_t dim)
{
    double ab = 0, aa = 0, bb = 0;

    for (uint32_t d = 0; d < dim; d++) {
        ab += (double)a[d] * b[d];
        aa += (double)a[d] * a[d];
        bb += (double)b[d] * b[d];
    }
    if (aa == 0 || bb == 0)
        return 0;
    ab /= sqrt(aa) * sqrt(bb);
    return ab > 1 ? 1 : ab < -1 ? -1 : ab;
}

/* SIMILARITY a b [UNKNOWN error|skip] [WEIGHTING mean|sif]: the cosine of
 * the two texts' vectors (gensim's similarity), a double. */
int akv_cmd_do_similarity(struct akv_cmd_ctx *ctx)
{
    uint32_t dim = akv_vocab_dim(ctx->env->vocab);
    struct akv_embed_opts eo = ctx->env->config->embed;
    float *v;
    double c;
    int rc;

    rc = parse_text_opts(ctx, 3, "SIMILARITY", &eo, NULL);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    v = malloc(2 * (size_t)dim * sizeof(float));
    if (!v)
        return reply_oom(ctx->out);
    rc = embed_arg(ctx, 1, &eo, v, NULL);
    rc = rc ? rc : embed_arg(ctx, 2, &eo, v + dim, NULL);
    if (rc != 0) {
        free(v);
        return rc < 0 ? rc : 0;
    }
    c = cosine(v, v + dim, dim);
    free(v);
    return akv_reply_double(ctx->out, resp_of(ctx), c);
}

static int slice_cmp(const struct akv_slice *a, const struct akv_slice *b)
{
    int c = memcmp(a->p, b->p, a->len < b->len ? a->len : b->len);

    return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
}

/* DOESNTMATCH w [w ...]: gensim's doesnt_match. Each word's row is scaled
 * to unit length, their mean is scaled to unit length, and the word whose
 * unit row has the smallest dot product with it is the answer (ties: the
 * smaller word, byte order, as gensim's sort of (score, word) pairs).
 * Each argument is looked up as one word (akv_vocab_find: exact, then
 * lowercase); with unknown-words skip an unknown one is left out as gensim
 * leaves it out, otherwise it is an error. */
int akv_cmd_do_doesntmatch(struct akv_cmd_ctx *ctx)
{
    const struct akv_vocab *voc = ctx->env->vocab;
    uint32_t dim = akv_vocab_dim(voc);
    size_t nw = ctx->argc - 1, used = 0, best = 0;
    double *mean, bestd = 0, norm = 0;
    int64_t *ids;
    int rc = 0;

    if (nw > (size_t)ctx->env->config->max_batch_size)
        return akv_reply_errorf(ctx->out,
                                "ERR too many words for DOESNTMATCH (%zu; at most %d, "
                                "max-batch-size)",
                                nw, ctx->env->config->max_batch_size);
    ids = malloc(nw * sizeof(*ids));
    mean = calloc(dim, sizeof(double));
    if (!ids || !mean) {
        rc = reply_oom(ctx->out);
        goto out;
    }
    for (size_t i = 0; i < nw; i++) {
        const struct akv_slice *a = &ctx->argv[i + 1];
        ids[i] = akv_vocab_find(voc, a->p, a->len);
        if (ids[i] < 0 && ctx->env->config->embed.unknown == AKV_UNKNOWN_ERROR) {
            char sb[AKV_QUOTE_BUF];
            rc = akv_reply_errorf(ctx->out, "ERR unknown word '%s'", show(a, sb));
            goto out;
        }
        if (ids[i] < 0)
            continue;
        {
            const float *x = akv_vocab_vec(voc, (uint32_t)ids[i]);
            double n = akv_vocab_norms(voc)[ids[i]];
            if (n == 0)
                continue;
            for (uint32_t d = 0; d < dim; d++)
                mean[d] += x[d] / n;
        }
        used++;
    }
    if (used == 0) {
        rc = akv_reply_error(ctx->out, "ERR no known word to choose from");
        goto out;
    }
    for (uint32_t d = 0; d < dim; d++)
        norm += mean[d] * mean[d];
    norm = sqrt(norm);
    for (size_t i = 0; i < nw; i++) {
        const float *x;
        double n, dot = 0;
        if (ids[i] < 0 || (n = akv_vocab_norms(voc)[ids[i]]) == 0)
            continue;
        x = akv_vocab_vec(voc, (uint32_t)ids[i]);
        for (uint32_t d = 0; d < dim; d++)
            dot += x[d] / n * mean[d];
        dot = norm > 0 ? dot / norm : 0;
        if (best == 0 || dot < bestd ||
            (dot == bestd && slice_cmp(&ctx->argv[i + 1], &ctx->argv[best]) < 0)) {
            best = i + 1;
            bestd = dot;
        }
    }
    rc = akv_reply_bulk(ctx->out, ctx->argv[best].p, ctx->argv[best].len);
out:
    free(ids);
    free(mean);
    return rc;
}

/* VOCAB EXISTS w [w ...] | VOCAB INFO | VOCAB HELP. */
int akv_cmd_do_vocab(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd_env *env = ctx->env;
    const struct akv_vocab *voc = env->vocab;
    const struct akv_subcmd *sub;
    int rc = akv_cmd_subcommand(ctx, &sub);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (strcmp(sub->name, "HELP") == 0)
        return akv_cmd_reply_sub_help(ctx, "VOCAB");
    if (strcmp(sub->name, "EXISTS") == 0) {
        size_t n = ctx->argc - 2;
        if (n > (size_t)env->config->max_batch_size)
            return akv_reply_errorf(ctx->out,
                                    "ERR too many words for VOCAB EXISTS (%zu; at most %d, "
                                    "max-batch-size)",
                                    n, env->config->max_batch_size);
        rc = akv_reply_array(ctx->out, n);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = akv_reply_int(ctx->out,
                               akv_vocab_find(voc, ctx->argv[i + 2].p, ctx->argv[i + 2].len) >= 0);
        return rc;
    }
    /* INFO: a map in RESP3, a flat list of names and values in RESP2. */
    {
        int resp = resp_of(ctx);
        uint64_t meta, data;
        char hex[2][17];
        const char *path = env->vectors_path ? env->vectors_path : "";

        akv_vocab_checksums(voc, &meta, &data);
        snprintf(hex[0], sizeof(hex[0]), "%016" PRIx64, meta);
        snprintf(hex[1], sizeof(hex[1]), "%016" PRIx64, data);
        rc = akv_reply_map(ctx->out, resp, 8);
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "size");
        rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)akv_vocab_count(voc));
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "dim");
        rc = rc ? rc : akv_reply_int(ctx->out, akv_vocab_dim(voc));
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "file");
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, path);
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "bytes");
        rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)akv_vocab_bytes(voc));
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "meta-checksum");
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, hex[0]);
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "data-checksum");
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, hex[1]);
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "rank-kernel");
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, akv_rank_kernel_name(akv_rank_kernel()));
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "attn-kernel");
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, akv_attn_kernel_name());
        return rc;
    }
}

/* ------------------------------------------------------------------------
 * key-normalize: key arguments lowercased, whitespace collapsed.
 */

/* The most key bytes one call may have rewritten: about a millisecond of
 * lowercasing on the loop thread. A byte of a key that is not ASCII counts
 * KEYNORM_UNICODE_COST times (Unicode lowercasing is that much slower). */
#define KEYNORM_BYTES_MAX (1 << 20)
#define KEYNORM_UNICODE_COST 8

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Whether key is already in normal form (ASCII without upper case letters,
 * single spaces between words, none at the ends): the common case, which
 * needs no copy. */
static int key_is_normal(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x80 || (ch >= 'A' && ch <= 'Z'))
            return 0;
        if (is_ws(p[i]) && (p[i] != ' ' || i == 0 || i + 1 == len || p[i + 1] == ' '))
            return 0;
    }
    return 1;
}

/* Collapses whitespace in low[0, n) in place; returns the new length. */
static size_t collapse(char *low, size_t n)
{
    size_t w = 0;

    for (size_t i = 0; i < n; i++) {
        if (is_ws(low[i])) {
            if (w > 0 && low[w - 1] != ' ')
                low[w++] = ' ';
            continue;
        }
        low[w++] = low[i];
    }
    if (w > 0 && low[w - 1] == ' ')
        w--;
    return w;
}

static int is_ascii(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] >= 0x80)
            return 0;
    return 1;
}

/* ASCII lowercase of p[0, len) into out, whitespace collapsed; its length. */
static size_t normal_ascii(const char *p, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
    return collapse(out, len);
}

char *akv_cmd_key_normal(const char *p, size_t len, size_t *outlen)
{
    uint8_t *low;
    size_t n = 0;

    if (!is_ascii(p, len) && u8_check((const uint8_t *)p, len) == NULL) {
        low = u8_tolower((const uint8_t *)p, len, NULL, NULL, NULL, &n);
        if (!low)
            return NULL;
        *outlen = collapse((char *)low, n);
        return (char *)low;
    }
    /* ASCII, or not UTF-8: ASCII letters only. */
    low = malloc(len ? len : 1);
    if (!low)
        return NULL;
    *outlen = normal_ascii(p, len, (char *)low);
    return (char *)low;
}

/* Whether argument i (>= 1) of a call with argc arguments is a key, by the
 * key positions first, last (negative: from the end) and step. */
static int is_key_pos(size_t i, size_t argc, int first, int last, int step)
{
    long l = last < 0 ? (long)argc + last : last;

    if (first <= 0 || step <= 0 || (long)i < first || (long)i > l)
        return 0;
    return ((long)i - first) % step == 0;
}

/* Whether argument i needs rewriting: a key (by the positions), not longer
 * than any key can be (AKV_TEXT_MAX: max-key-len may have been lowered
 * since longer keys were stored, and they must still be named), not
 * already normal. */
static int needs_normal(const struct akv_cmd_ctx *ctx, size_t i, const int pos[3])
{
    const struct akv_slice *a = &ctx->argv[i];

    return is_key_pos(i, ctx->argc, pos[0], pos[1], pos[2]) && a->len <= AKV_TEXT_MAX &&
           !key_is_normal(a->p, a->len);
}

int akv_cmd_keys_normalize(struct akv_cmd_ctx *ctx, const struct akv_cmd *c,
                           struct akv_cmd_keynorm *kn)
{
    int pos[3] = {c->firstkey, c->lastkey, c->keystep};
    size_t bytes = 0, cost = 0, nkeys = 0, at = 0;
    struct akv_slice *argv;
    char *arena;

    kn->argv = NULL;
    kn->saved = ctx->argv;
    kn->bufs = NULL;
    kn->nbufs = 0;
    /* EXEC's commands were rewritten when they were queued; a second
     * rewrite would only cost time and could refuse what was +QUEUED (the
     * normal form may be longer: U+0130, 2 bytes, lowercases to 3). */
    if (!ctx->env->config->key_normalize || ctx->env->in_exec)
        return 0;
    if (pos[0] == 0 && ctx->argc >= 2) {
        const struct akv_subcmd *s = akv_cmd_subcommand_lookup(c, ctx->argv[1].p, ctx->argv[1].len);
        if (s) {
            pos[0] = s->firstkey;
            pos[1] = s->lastkey;
            pos[2] = s->keystep;
        }
    }
    if (pos[0] <= 0)
        return 0;
    for (size_t i = 1; i < ctx->argc; i++) {
        const struct akv_slice *a = &ctx->argv[i];
        if (needs_normal(ctx, i, pos)) {
            bytes += a->len;
            cost += a->len * (is_ascii(a->p, a->len) ? 1 : KEYNORM_UNICODE_COST);
            nkeys++;
        }
    }
    if (nkeys == 0)
        return 0;
    if (cost > KEYNORM_BYTES_MAX) {
        int rc =
            akv_reply_errorf(ctx->out,
                             "ERR too many key bytes to normalize in one call (%zu; at most "
                             "%d with key-normalize, a key that is not ASCII counting %d times "
                             "its length)",
                             cost, KEYNORM_BYTES_MAX, KEYNORM_UNICODE_COST);
        return rc < 0 ? rc : 1;
    }
    /* One block: the argument array, then the ASCII keys' normal forms
     * (never longer than the keys); other keys get a buffer each (bufs). */
    argv = malloc(ctx->argc * sizeof(*argv) + bytes + nkeys * sizeof(char *));
    if (!argv)
        return -ENOMEM;
    memcpy(argv, ctx->argv, ctx->argc * sizeof(*argv));
    kn->bufs = (char **)(void *)(argv + ctx->argc);
    arena = (char *)(kn->bufs + nkeys);
    kn->argv = argv;
    ctx->argv = argv;
    for (size_t i = 1; i < ctx->argc; i++) {
        const struct akv_slice *a = &kn->saved[i];
        size_t nl;
        char *norm;
        if (!needs_normal(ctx, i, pos))
            continue;
        if (is_ascii(a->p, a->len)) {
            nl = normal_ascii(a->p, a->len, arena + at);
            argv[i].p = arena + at;
            argv[i].len = nl;
            at += a->len;
            continue;
        }
        norm = akv_cmd_key_normal(a->p, a->len, &nl);
        if (!norm) {
            akv_cmd_keys_restore(ctx, kn);
            return -ENOMEM;
        }
        kn->bufs[kn->nbufs++] = norm;
        argv[i].p = norm;
        argv[i].len = nl;
    }
    return 0;
}

void akv_cmd_keys_restore(struct akv_cmd_ctx *ctx, struct akv_cmd_keynorm *kn)
{
    if (!kn->argv)
        return;
    ctx->argv = kn->saved;
    for (size_t i = 0; i < kn->nbufs; i++)
        free(kn->bufs[i]);
    free(kn->argv);
    kn->argv = NULL;
    kn->bufs = NULL;
    kn->nbufs = 0;
}
