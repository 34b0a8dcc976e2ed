/*
 * embed.c - text to vector.
 *
 * A word's vector is its row in the vocabulary; a phrase's is the mean of its
 * words' rows, summed in double so that long phrases lose nothing to float
 * rounding. akv_embed_words stops before the mean: the store keeps the word
 * ids rather than a vector (see src/engine/store.c). Threading: reads only the
 * immutable vocabulary; any thread.
 */
#include "attnkv/embed.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "util/text.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
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

int akv_embed_words(const struct akv_vocab *v, const char *text, size_t len, uint32_t *ids,
                    size_t *n, char *err, size_t errlen)
{
    size_t nwords = 0, i = 0;

    *n = 0;
    if (len > AKV_TEXT_MAX) {
        if (err != NULL)
            snprintf(err, errlen, "text too long (%zu bytes, at most %d)", len, AKV_TEXT_MAX);
        return -EINVAL;
    }
    if (u8_check((const uint8_t *)text, len) != NULL) {
        if (err != NULL)
            snprintf(err, errlen, "text is not valid UTF-8");
        return -EINVAL;
    }
    while (i < len) {
        size_t start;
        int64_t id;
        while (i < len && is_space(text[i]))
            i++;
        if (i == len)
            break;
        start = i;
        while (i < len && !is_space(text[i]))
            i++;
        if (nwords == AKV_PHRASE_WORDS_MAX) {
            if (err != NULL)
                snprintf(err, errlen, "too many words (at most %d)", AKV_PHRASE_WORDS_MAX);
            return -EINVAL;
        }
        id = akv_vocab_find(v, text + start, i - start);
        if (id < 0)
            return unknown_word(v, text + start, i - start, err, errlen);
        ids[nwords++] = (uint32_t)id;
    }
    if (nwords == 0) {
        if (err != NULL)
            snprintf(err, errlen, "empty text");
        return -EINVAL;
    }
    *n = nwords;
    return 0;
}

int akv_embed_text(const struct akv_vocab *v, const char *text, size_t len, float *out,
                   char *err, size_t errlen)
{
    uint32_t dim = akv_vocab_dim(v), ids[AKV_PHRASE_WORDS_MAX];
    double sum[AKV_DIM_MAX];
    size_t nwords;
    int rc = akv_embed_words(v, text, len, ids, &nwords, err, errlen);

    if (rc < 0)
        return rc;
    if (nwords == 1) {
        memcpy(out, akv_vocab_vec(v, ids[0]), dim * sizeof(float));
        return 0;
    }
    memset(sum, 0, dim * sizeof(double));
    for (size_t w = 0; w < nwords; w++) {
        const float *x = akv_vocab_vec(v, ids[w]);
        for (uint32_t d = 0; d < dim; d++)
            sum[d] += x[d];
    }
    for (uint32_t d = 0; d < dim; d++)
        out[d] = (float)(sum[d] / (double)nwords);
    return 0;
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
