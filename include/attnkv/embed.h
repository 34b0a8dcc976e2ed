/*
 * embed.h - text to vector: a word's vector, or the mean of a phrase's words.
 *
 * Text is split on ASCII whitespace (space, tab, CR, LF, VT, FF); each word is
 * looked up with akv_vocab_find (exact, then lowercase). Any thread may call
 * these: they only read the immutable vocabulary.
 */
#ifndef ATTNKV_EMBED_H
#define ATTNKV_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "attnkv/vocab.h"

/* Longest text accepted for embedding, in bytes, and most words in a phrase. */
#define AKV_TEXT_MAX 4096
#define AKV_PHRASE_WORDS_MAX 64

/* Writes the dim floats of text's vector to out (the mean, accumulated in
 * double, of its words' vectors).
 * Returns 0; -EINVAL for empty/whitespace-only, overlong or invalid UTF-8
 * text or too many words; -ENOENT when a word is not in the vocabulary, with
 * "unknown word 'x'" (and "(did you mean 'y'?)" when one edit finds one) in err. */
int akv_embed_text(const struct akv_vocab *v, const char *text, size_t len, float *out,
                   char *err, size_t errlen);

/* Splits text as akv_embed_text does and writes the vocabulary id of each
 * word, in order, to ids (room for AKV_PHRASE_WORDS_MAX), their number to *n.
 * text's vector is the mean of those words' rows. Same returns and messages
 * as akv_embed_text (*n is 0 on failure). */
int akv_embed_words(const struct akv_vocab *v, const char *text, size_t len, uint32_t *ids,
                    size_t *n, char *err, size_t errlen);

/* When text is a single word in the vocabulary, returns its id; otherwise -1.
 * (Lets callers avoid copying a vector that the vocabulary already holds.) */
long akv_embed_single_id(const struct akv_vocab *v, const char *text, size_t len);

#endif
