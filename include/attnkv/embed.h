/*
 * embed.h - text to vector: a word's vector, or the mean of a phrase's words.
 *
 * Tokens: text is split on ASCII whitespace (space, tab, CR, LF, VT, FF);
 * each token is looked up with akv_vocab_find (exact, then lowercase) and,
 * when the vocabulary knows it, used as it is. Only a token the vocabulary
 * does not know is split the way GloVe's corpus was tokenized: punctuation
 * before and after it comes off as tokens of its own (a trailing '.' stays
 * on when the vocabulary knows the word with it, as "mr." or "u.s."),
 * English clitics come off as "do" + "n't", "dog" + "'s", and what remains,
 * if still unknown, is cut at every punctuation character inside it
 * ("kiwi-flavoured" -> "kiwi" "-" "flavoured"). Punctuation that came off
 * a token this way does not count in the phrase's vector, unless the text
 * has nothing else (see docs/query.md, Tokens). A text every word of which
 * the vocabulary knows whole embeds exactly as before the splitting
 * existed, so stored data replays identically.
 *
 * Any thread may call these: they only read the immutable vocabulary.
 */
#ifndef ATTNKV_EMBED_H
#define ATTNKV_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "attnkv/vocab.h"

/* Longest text accepted for embedding, in bytes, and most words in a phrase
 * (after splitting; punctuation that does not count is not counted). */
#define AKV_TEXT_MAX 4096
#define AKV_PHRASE_WORDS_MAX 64

/* What a request does with a word the vocabulary does not know: refuse the
 * request, or leave the word out (a text left with no word is still
 * refused). */
enum akv_unknown {
    AKV_UNKNOWN_ERROR = 0,
    AKV_UNKNOWN_SKIP = 1,
};

/* How a phrase's words make its vector: the plain mean, or the mean weighted
 * by smooth inverse frequency (Arora, Liang and Ma, 2017): word w gets
 * a / (a + p(w)), with a = AKV_SIF_A and p(w) estimated from w's rank in the
 * vocabulary (files are in frequency order) by Zipf's law,
 * p(rank r) = 1 / ((r + 1) H_N), H_N the N-th harmonic number for a
 * vocabulary of N words. The weighted sum is divided by the sum of the
 * weights, so one word's vector is its row whatever the weighting. */
enum akv_weighting {
    AKV_WEIGHTING_MEAN = 0,
    AKV_WEIGHTING_SIF = 1,
};
#define AKV_SIF_A 1e-3

/* Parse "error"/"skip", "mean"/"sif" (any case). Return 0 or -EINVAL. */
extern const char *const akv_unknown_names[];   /* "error", "skip", NULL */
extern const char *const akv_weighting_names[]; /* "mean", "sif", NULL */
int akv_unknown_parse(const char *s, size_t len, enum akv_unknown *out);
int akv_weighting_parse(const char *s, size_t len, enum akv_weighting *out);
const char *akv_unknown_name(enum akv_unknown u);
const char *akv_weighting_name(enum akv_weighting w);

/* A request's embedding options. The zero value is the default (error,
 * mean). */
struct akv_embed_opts {
    enum akv_unknown unknown;
    enum akv_weighting weighting;
};

/* The words a request with AKV_UNKNOWN_SKIP left out, in text order: n of
 * them, the first shown (at most AKV_PHRASE_WORDS_MAX) as byte ranges of
 * the text. */
struct akv_embed_skips {
    size_t n;
    size_t shown;
    struct {
        uint32_t off, len;
    } piece[AKV_PHRASE_WORDS_MAX];
};

/* Writes the dim floats of text's vector to out (the mean, accumulated in
 * double, of its words' vectors).
 * Returns 0; -EINVAL for empty/whitespace-only, overlong or invalid UTF-8
 * text or too many words; -ENOENT when a word is not in the vocabulary, with
 * "unknown word 'x'" (and "(did you mean 'y'?)" when one edit finds one) in err. */
int akv_embed_text(const struct akv_vocab *v, const char *text, size_t len, float *out, char *err,
                   size_t errlen);

/* akv_embed_text with a request's options. With AKV_UNKNOWN_SKIP the words
 * left out are written to *sk (which may be NULL); a text with no known word
 * is -ENOENT ("no known word in the text (skipped 'x', ...)"). */
int akv_embed_text_opts(const struct akv_vocab *v, const char *text, size_t len,
                        const struct akv_embed_opts *o, float *out, struct akv_embed_skips *sk,
                        char *err, size_t errlen);

/* Splits text as akv_embed_text does and writes the vocabulary id of each
 * word, in order, to ids (room for AKV_PHRASE_WORDS_MAX), their number to *n.
 * text's vector is the mean of those words' rows. Same returns and messages
 * as akv_embed_text (*n is 0 on failure). Always AKV_UNKNOWN_ERROR: this is
 * what the store embeds keys and values with. */
int akv_embed_words(const struct akv_vocab *v, const char *text, size_t len, uint32_t *ids,
                    size_t *n, char *err, size_t errlen);

/* akv_embed_words with an unknown-word policy; sk as akv_embed_text_opts. */
int akv_embed_words_opts(const struct akv_vocab *v, const char *text, size_t len,
                         enum akv_unknown unknown, uint32_t *ids, size_t *n,
                         struct akv_embed_skips *sk, char *err, size_t errlen);

/* The smooth-inverse-frequency weight of word id (see akv_weighting). */
double akv_embed_sif_weight(const struct akv_vocab *v, uint32_t id);

/* When text is a single word in the vocabulary, returns its id; otherwise -1.
 * (Lets callers avoid copying a vector that the vocabulary already holds.) */
long akv_embed_single_id(const struct akv_vocab *v, const char *text, size_t len);

#endif
