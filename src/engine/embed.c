/*
 * embed.c - text to vector, and the tokenizer that gets words out of text.
 *
 * A word's vector is its row in the vocabulary; a phrase's is the mean of its
 * words' rows (plain, or weighted by smooth inverse frequency: embed.h),
 * summed in double so that long phrases lose nothing to float rounding.
 * akv_embed_words stops before the mean: the store keeps the word ids rather
 * than a vector (see src/engine/store.c).
 *
 * The tokenizer (embed.h says what it does): a whitespace token the
 * vocabulary knows is used whole, which keeps every text that embedded
 * before splitting existed embedding to the same ids; only unknown tokens
 * are split (split_token). Splitting only ever looks words up, so it costs a
 * few hash lookups per byte at worst, and the text is at most AKV_TEXT_MAX
 * bytes.
 *
 * Threading: reads only the immutable vocabulary; any thread.
 */
#include "attnkv/embed.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unictype.h>
#include <unistr.h>

#include "util/text.h"

/* How many trailing punctuation characters a word may keep when the
 * vocabulary knows it with them ("mr." "u.s." "etc.)" is two). */
#define TRAIL_KEEP_MAX 3
/* The longest word tried without its periods and apostrophes (joined). */
#define JOINED_MAX 64

const char *const akv_unknown_names[] = {"error", "skip", NULL};
const char *const akv_weighting_names[] = {"mean", "sif", NULL};

int akv_unknown_parse(const char *s, size_t len, enum akv_unknown *out)
{
    if (len == 5 && strncasecmp(s, "error", 5) == 0)
        *out = AKV_UNKNOWN_ERROR;
    else if (len == 4 && strncasecmp(s, "skip", 4) == 0)
        *out = AKV_UNKNOWN_SKIP;
    else
        return -EINVAL;
    return 0;
}

int akv_weighting_parse(const char *s, size_t len, enum akv_weighting *out)
{
    if (len == 4 && strncasecmp(s, "mean", 4) == 0)
        *out = AKV_WEIGHTING_MEAN;
    else if (len == 3 && strncasecmp(s, "sif", 3) == 0)
        *out = AKV_WEIGHTING_SIF;
    else
        return -EINVAL;
    return 0;
}

const char *akv_unknown_name(enum akv_unknown u)
{
    return u == AKV_UNKNOWN_SKIP ? "skip" : "error";
}

const char *akv_weighting_name(enum akv_weighting w)
{
    return w == AKV_WEIGHTING_SIF ? "sif" : "mean";
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* The tokenizer's state: the words it has found so far. */
struct tok {
    const struct akv_vocab *v;
    const char *text;
    enum akv_unknown unknown;
    uint32_t *ids; /* the words that count, AKV_PHRASE_WORDS_MAX */
    size_t n;
    /* Punctuation split off tokens: counts only when the text has nothing
     * else, skipped words included. */
    uint32_t punct[AKV_PHRASE_WORDS_MAX];
    size_t npunct;
    bool punct_over; /* more than AKV_PHRASE_WORDS_MAX of them */
    struct akv_embed_skips *sk;
    size_t nskipped;
    /* The first piece dropped for the vocabulary not knowing it
     * (punctuation, a clitic), for the message when nothing else is left. */
    size_t drop_off, drop_len;
    size_t skip_off, skip_len; /* the first word skipped */
    char *err;
    size_t errlen;
};

/* The length of the UTF-8 character at s[0, end) (text is valid UTF-8), and
 * whether it is punctuation or a symbol (Unicode P* or S*). */
static size_t char_at(const char *s, size_t end, bool *punct)
{
    ucs4_t uc;
    int l = u8_mbtouc(&uc, (const uint8_t *)s, end);

    if (l <= 0)
        l = 1;
    if (uc < 0x80)
        *punct = (uc >= '!' && uc <= '/') || (uc >= ':' && uc <= '@') || (uc >= '[' && uc <= '`') ||
                 (uc >= '{' && uc <= '~');
    else
        *punct =
            uc_is_general_category(uc, UC_CATEGORY_P) || uc_is_general_category(uc, UC_CATEGORY_S);
    return (size_t)l;
}

static int64_t lookup(const struct tok *t, size_t a, size_t b)
{
    int64_t id = akv_vocab_find(t->v, t->text + a, b - a);
    return id < 0 ? -1 : id;
}

static int unknown_word(const struct akv_vocab *v, const char *w, size_t len, char *err,
                        size_t errlen)
{
    char shown[AKV_QUOTE_BUF];
    int64_t s;

    akv_quote(shown, w, len);
    s = akv_vocab_suggest(v, w, len);
    if (s >= 0 && err != NULL)
        snprintf(err, errlen, "unknown word '%s' (did you mean '%s'?)", shown,
                 akv_vocab_word(v, (uint32_t)s, NULL));
    else if (err != NULL)
        snprintf(err, errlen, "unknown word '%s'", shown);
    return -ENOENT;
}

static int too_many(struct tok *t)
{
    if (t->err != NULL)
        snprintf(t->err, t->errlen, "too many words (at most %d)", AKV_PHRASE_WORDS_MAX);
    return -EINVAL;
}

/* A word (text[a, b), vocabulary id or -1) that counts. */
static int emit_word(struct tok *t, size_t a, size_t b, int64_t id)
{
    if (id < 0) {
        if (t->unknown == AKV_UNKNOWN_ERROR)
            return unknown_word(t->v, t->text + a, b - a, t->err, t->errlen);
        if (t->sk != NULL && t->sk->shown < AKV_PHRASE_WORDS_MAX) {
            t->sk->piece[t->sk->shown].off = (uint32_t)a;
            t->sk->piece[t->sk->shown].len = (uint32_t)(b - a);
            t->sk->shown++;
        }
        if (t->nskipped++ == 0) {
            t->skip_off = a;
            t->skip_len = b - a;
        }
        return 0;
    }
    if (t->n == AKV_PHRASE_WORDS_MAX)
        return too_many(t);
    t->ids[t->n++] = (uint32_t)id;
    return 0;
}

static void dropped(struct tok *t, size_t a, size_t b)
{
    if (t->drop_len == 0) {
        t->drop_off = a;
        t->drop_len = b - a;
    }
}

/* Punctuation text[a, b) split off a token: the whole run if the vocabulary
 * knows it ("--", "..."), else each character the vocabulary knows. It is
 * kept apart (see struct tok); punctuation the vocabulary does not know is
 * dropped, never an unknown word. */
static void emit_punct(struct tok *t, size_t a, size_t b)
{
    int64_t id = lookup(t, a, b);
    size_t i = a;

    if (id >= 0) {
        if (t->npunct < AKV_PHRASE_WORDS_MAX)
            t->punct[t->npunct++] = (uint32_t)id;
        else
            t->punct_over = true;
        return;
    }
    while (i < b) {
        bool p;
        size_t l = char_at(t->text + i, b - i, &p);
        if (l < b - a) {
            id = lookup(t, i, i + l);
            if (id >= 0 && t->npunct < AKV_PHRASE_WORDS_MAX)
                t->punct[t->npunct++] = (uint32_t)id;
            else if (id >= 0)
                t->punct_over = true;
            else
                dropped(t, i, i + l);
        } else if (id < 0) {
            dropped(t, i, i + l);
        }
        i += l;
    }
}

/* The English clitics of the Penn Treebank tokenization GloVe's corpus went
 * through, as the vocabulary spells them. */
static const char *const clitics[] = {"n't", "'s", "'re", "'ve", "'ll", "'m", "'d"};

/* If text[a, b) ends with a clitic (any case, with ' or U+2019), the length
 * in bytes of that ending and the clitic's ASCII spelling. */
static size_t clitic_at_end(const char *s, size_t a, size_t b, const char **spelled)
{
    for (size_t c = 0; c < sizeof(clitics) / sizeof(clitics[0]); c++) {
        const char *k = clitics[c];
        size_t kl = strlen(k), ap = strchr(k, '\'') - k;
        /* ASCII apostrophe, then the right single quotation mark (3 bytes). */
        for (int curly = 0; curly < 2; curly++) {
            size_t el = kl + (curly ? 2 : 0), j = 0;
            bool ok = true;
            if (b - a <= el)
                continue;
            for (size_t i = 0; i < kl && ok; i++) {
                const char *p = s + b - el + j;
                if (i == ap && curly) {
                    ok = memcmp(p, "\xe2\x80\x99", 3) == 0;
                    j += 3;
                    continue;
                }
                ok = (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p) == k[i];
                j++;
            }
            if (ok) {
                *spelled = k;
                return el;
            }
        }
    }
    return 0;
}

/* When the only punctuation inside text[a, b) is periods and apostrophes
 * (' or U+2019), the id of the word without them ("u.s" -> "us",
 * "rock'n'roll" -> "rocknroll": some vocabularies were made from text with
 * them removed), or -1. */
static int64_t joined(const struct tok *t, size_t a, size_t b)
{
    char buf[JOINED_MAX];
    size_t n = 0;
    bool any = false;
    int64_t id;

    if (b - a > sizeof(buf))
        return -1;
    for (size_t i = a; i < b;) {
        bool p;
        size_t l = char_at(t->text + i, b - i, &p);
        if (p) {
            if (!(l == 1 && (t->text[i] == '.' || t->text[i] == '\'')) &&
                !(l == 3 && memcmp(t->text + i, "\xe2\x80\x99", 3) == 0))
                return -1;
            any = true;
        } else {
            memcpy(buf + n, t->text + i, l);
            n += l;
        }
        i += l;
    }
    if (!any || n == 0)
        return -1;
    id = akv_vocab_find(t->v, buf, n);
    return id < 0 ? -1 : id;
}

/* text[a, b): no punctuation at either end, unknown as a whole. Cut at every
 * punctuation character inside; each run between them is a word. */
static int split_inside(struct tok *t, size_t a, size_t b)
{
    size_t i = a, w = a;
    int64_t id = joined(t, a, b);

    if (id >= 0)
        return emit_word(t, a, b, id);
    while (i < b) {
        bool p;
        size_t l = char_at(t->text + i, b - i, &p);
        if (p) {
            int rc = w < i ? emit_word(t, w, i, lookup(t, w, i)) : 0;
            if (rc < 0)
                return rc;
            emit_punct(t, i, i + l);
            w = i + l;
        }
        i += l;
    }
    return w < b ? emit_word(t, w, b, lookup(t, w, b)) : 0;
}

/* text[a, b): no punctuation at either end, unknown as a whole: a clitic
 * comes off, then what is still unknown is cut inside. */
static int split_core(struct tok *t, size_t a, size_t b)
{
    const char *spelled;
    size_t cl = clitic_at_end(t->text, a, b, &spelled);
    int64_t id;
    int rc;

    if (cl == 0)
        return split_inside(t, a, b);
    id = lookup(t, a, b - cl);
    rc = id >= 0 ? emit_word(t, a, b - cl, id) : split_inside(t, a, b - cl);
    if (rc < 0)
        return rc;
    /* A clitic the vocabulary lacks (some GloVe derivatives have none) is
     * dropped like unknown punctuation. */
    id = akv_vocab_find(t->v, spelled, strlen(spelled));
    if (id < 0) {
        dropped(t, b - cl, b);
        return 0;
    }
    return emit_word(t, b - cl, b, id);
}

/* text[a, b): a whitespace token the vocabulary does not know. */
static int split_token(struct tok *t, size_t a, size_t b)
{
    size_t p = a, q, ends[TRAIL_KEEP_MAX + 1], nends = 0;
    int rc;

    /* Leading punctuation. */
    while (p < b) {
        bool punct;
        size_t l = char_at(t->text + p, b - p, &punct);
        if (!punct)
            break;
        p += l;
    }
    if (p > a)
        emit_punct(t, a, p);
    if (p == b)
        return 0;
    /* The core [p, q) ends at the last character that is not punctuation. */
    q = p;
    for (size_t i = p; i < b;) {
        bool punct;
        size_t l = char_at(t->text + i, b - i, &punct);
        i += l;
        if (!punct)
            q = i;
    }
    /* The word keeps as many trailing punctuation characters as the
     * vocabulary knows it with (at most TRAIL_KEEP_MAX), else none. */
    ends[nends++] = q;
    for (size_t i = q; i < b && nends <= TRAIL_KEEP_MAX;) {
        bool punct;
        i += char_at(t->text + i, b - i, &punct);
        ends[nends++] = i;
    }
    for (size_t e = nends; e-- > 1;) {
        int64_t id;
        if (ends[e] == b && p == a)
            continue; /* the whole token: already known to be unknown */
        id = lookup(t, p, ends[e]);
        if (id >= 0) {
            rc = emit_word(t, p, ends[e], id);
            if (rc == 0 && ends[e] < b)
                emit_punct(t, ends[e], b);
            return rc;
        }
    }
    if (q < b || p > a) {
        int64_t id = lookup(t, p, q);
        rc = id >= 0 ? emit_word(t, p, q, id) : split_core(t, p, q);
    } else {
        rc = split_core(t, p, q);
    }
    if (rc == 0 && q < b)
        emit_punct(t, q, b);
    return rc;
}

/* Splits text into t's words. */
static int tokenize(struct tok *t, size_t len)
{
    const char *text = t->text;
    size_t i = 0;

    if (len > AKV_TEXT_MAX) {
        if (t->err != NULL)
            snprintf(t->err, t->errlen, "text too long (%zu bytes, at most %d)", len, AKV_TEXT_MAX);
        return -EINVAL;
    }
    if (u8_check((const uint8_t *)text, len) != NULL) {
        if (t->err != NULL)
            snprintf(t->err, t->errlen, "text is not valid UTF-8");
        return -EINVAL;
    }
    while (i < len) {
        size_t start;
        int64_t id;
        int rc;
        while (i < len && is_space(text[i]))
            i++;
        if (i == len)
            break;
        start = i;
        while (i < len && !is_space(text[i]))
            i++;
        id = lookup(t, start, i);
        rc = id >= 0 ? emit_word(t, start, i, id) : split_token(t, start, i);
        if (rc < 0)
            return rc;
    }
    if (t->n == 0 && t->npunct > 0 && t->nskipped == 0) {
        /* Nothing but punctuation: that is the text. (Not when words were
         * skipped: "xyzzy!" means nothing the vocabulary knows.) */
        if (t->punct_over)
            return too_many(t);
        memcpy(t->ids, t->punct, t->npunct * sizeof(t->punct[0]));
        t->n = t->npunct;
    }
    if (t->n == 0 && t->nskipped == 0 && t->drop_len > 0) {
        if (t->unknown == AKV_UNKNOWN_ERROR)
            return unknown_word(t->v, text + t->drop_off, t->drop_len, t->err, t->errlen);
        t->nskipped = 1;
        t->skip_off = t->drop_off;
        t->skip_len = t->drop_len;
        if (t->sk != NULL) {
            t->sk->piece[0].off = (uint32_t)t->drop_off;
            t->sk->piece[0].len = (uint32_t)t->drop_len;
            t->sk->shown = 1;
        }
    }
    if (t->n == 0) {
        if (t->nskipped > 0) {
            if (t->err != NULL) {
                char shown[AKV_QUOTE_BUF];
                akv_quote(shown, text + t->skip_off, t->skip_len);
                snprintf(t->err, t->errlen, "no known word in the text (unknown word '%s'%s)",
                         shown, t->nskipped > 1 ? ", ..." : "");
            }
            return -ENOENT;
        }
        if (t->err != NULL)
            snprintf(t->err, t->errlen, "empty text");
        return -EINVAL;
    }
    return 0;
}

int akv_embed_words_opts(const struct akv_vocab *v, const char *text, size_t len,
                         enum akv_unknown unknown, uint32_t *ids, size_t *n,
                         struct akv_embed_skips *sk, char *err, size_t errlen)
{
    struct tok t = {
        .v = v,
        .text = text,
        .unknown = unknown,
        .ids = ids,
        .sk = sk,
        .err = err,
        .errlen = errlen,
    };
    int rc;

    *n = 0;
    if (sk != NULL)
        sk->n = sk->shown = 0;
    rc = tokenize(&t, len);
    if (sk != NULL)
        sk->n = rc == 0 ? t.nskipped : 0;
    if (rc < 0)
        return rc;
    *n = t.n;
    return 0;
}

int akv_embed_words(const struct akv_vocab *v, const char *text, size_t len, uint32_t *ids,
                    size_t *n, char *err, size_t errlen)
{
    return akv_embed_words_opts(v, text, len, AKV_UNKNOWN_ERROR, ids, n, NULL, err, errlen);
}

double akv_embed_sif_weight(const struct akv_vocab *v, uint32_t id)
{
    double n = (double)akv_vocab_count(v);
    /* H_N = ln N + gamma + 1/(2N) - 1/(12N^2) + ..., exact to 1e-9 here. */
    double h = log(n) + 0.57721566490153286 + 1.0 / (2.0 * n) - 1.0 / (12.0 * n * n);
    double p = 1.0 / (((double)id + 1.0) * h);

    return AKV_SIF_A / (AKV_SIF_A + p);
}

int akv_embed_text_opts(const struct akv_vocab *v, const char *text, size_t len,
                        const struct akv_embed_opts *o, float *out, struct akv_embed_skips *sk,
                        char *err, size_t errlen)
{
    static const struct akv_embed_opts dflt = {AKV_UNKNOWN_ERROR, AKV_WEIGHTING_MEAN};
    uint32_t dim = akv_vocab_dim(v), ids[AKV_PHRASE_WORDS_MAX];
    double sum[AKV_DIM_MAX], wsum = 0;
    size_t nwords;
    int rc;

    if (o == NULL)
        o = &dflt;
    rc = akv_embed_words_opts(v, text, len, o->unknown, ids, &nwords, sk, err, errlen);
    if (rc < 0)
        return rc;
    if (nwords == 1) {
        memcpy(out, akv_vocab_vec(v, ids[0]), dim * sizeof(float));
        return 0;
    }
    memset(sum, 0, dim * sizeof(double));
    for (size_t w = 0; w < nwords; w++) {
        const float *x = akv_vocab_vec(v, ids[w]);
        double a = o->weighting == AKV_WEIGHTING_SIF ? akv_embed_sif_weight(v, ids[w]) : 1.0;
        for (uint32_t d = 0; d < dim; d++)
            sum[d] += a * x[d];
        wsum += a;
    }
    for (uint32_t d = 0; d < dim; d++)
        out[d] = (float)(sum[d] / wsum);
    return 0;
}

int akv_embed_text(const struct akv_vocab *v, const char *text, size_t len, float *out, char *err,
                   size_t errlen)
{
    return akv_embed_text_opts(v, text, len, NULL, out, NULL, err, errlen);
}

long akv_embed_single_id(const struct akv_vocab *v, const char *text, size_t len)
{
    size_t a = 0, b = len;
    int64_t id;

    while (a < b && is_space(text[a]))
        a++;
    while (b > a && is_space(text[b - 1]))
        b--;
    if (a == b)
        return -1;
    for (size_t i = a; i < b; i++)
        if (is_space(text[i]))
            return -1;
    id = akv_vocab_find(v, text + a, b - a);
    return id < 0 ? -1 : (long)id;
}
