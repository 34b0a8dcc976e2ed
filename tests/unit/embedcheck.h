/*
 * embedcheck.h - the invariants of the tokenizer and embedding on any bytes,
 * shared by fuzz/fuzz-embed.c and test-embed's replay of its corpus.
 * Header-only. A broken invariant aborts.
 *
 * On a vocabulary with GloVe's conventions (ec_open): every call returns 0,
 * -EINVAL or -ENOENT; a success has 1..AKV_PHRASE_WORDS_MAX valid ids and
 * finite vectors; skipped pieces lie inside the text; a text that embeds
 * with UNKNOWN error embeds to the same ids with skip and skips nothing;
 * one word's vector is its row under both weightings.
 */
#ifndef ATTNKV_EMBEDCHECK_H
#define ATTNKV_EMBEDCHECK_H

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attnkv/embed.h"
#include "attnkv/vectab.h"
#include "attnkv/vocab.h"

static const char *const ec_words[] = {
    "the", ",",      ".",      "mr.",    "smith", "do",    "n't",
    "'s",  "cherry", "please", "!",      "\"",    "hello", "u.s.",
    "us",  "kiwi",   "-",      "e-mail", "dog",   "...",   "\xc3\xa9\x63ole",
    "a",   "b",      "?",      "'",      "ab",    "ba",    "a.b",
    "(",   ")",
};

static inline struct akv_vocab *ec_open(void)
{
    struct akv_vocab *v = NULL;
    struct akv_vectab t;
    char err[256];

    if (akv_vectab_init(&t, 3) < 0)
        abort();
    for (size_t i = 0; i < sizeof(ec_words) / sizeof(ec_words[0]); i++) {
        float x[3] = {(float)i, 1.0f - (float)i / 7.0f, (float)(i % 5)};
        if (akv_vectab_add(&t, ec_words[i], strlen(ec_words[i]), x) < 0)
            abort();
    }
    if (akv_vocab_from_table(&v, &t, err, sizeof err) < 0)
        abort();
    akv_vectab_fini(&t);
    return v;
}

static inline void ec_check(const struct akv_vocab *v, const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    uint32_t ids[AKV_PHRASE_WORDS_MAX], sids[AKV_PHRASE_WORDS_MAX];
    struct akv_embed_skips sk;
    size_t n = 99, sn = 99;
    char err[256];
    float out[3];
    int rc, src;

    rc = akv_embed_words_opts(v, text, size, AKV_UNKNOWN_ERROR, ids, &n, NULL, err, sizeof err);
    src = akv_embed_words_opts(v, text, size, AKV_UNKNOWN_SKIP, sids, &sn, &sk, err, sizeof err);
    if ((rc != 0 && rc != -EINVAL && rc != -ENOENT) ||
        (src != 0 && src != -EINVAL && src != -ENOENT))
        abort();
    if ((rc < 0 && n != 0) || (src < 0 && sn != 0))
        abort();
    if (rc == 0) {
        if (n < 1 || n > AKV_PHRASE_WORDS_MAX || src != 0 || sn != n || sk.n != 0 ||
            memcmp(ids, sids, n * sizeof(ids[0])) != 0)
            abort();
    }
    if (src == 0) {
        if (sn < 1 || sn > AKV_PHRASE_WORDS_MAX || sk.shown > sk.n ||
            sk.shown > AKV_PHRASE_WORDS_MAX)
            abort();
        for (size_t i = 0; i < sn; i++)
            if (sids[i] >= akv_vocab_count(v))
                abort();
        for (size_t i = 0; i < sk.shown; i++)
            if (sk.piece[i].len == 0 || (size_t)sk.piece[i].off + sk.piece[i].len > size)
                abort();
    }
    for (int w = 0; w < 2; w++) {
        struct akv_embed_opts o = {AKV_UNKNOWN_SKIP, w ? AKV_WEIGHTING_SIF : AKV_WEIGHTING_MEAN};
        int erc = akv_embed_text_opts(v, text, size, &o, out, NULL, err, sizeof err);
        if (erc != src)
            abort();
        if (erc == 0) {
            for (int d = 0; d < 3; d++)
                if (!isfinite(out[d]))
                    abort();
            if (sn == 1 && memcmp(out, akv_vocab_vec(v, sids[0]), sizeof(out)) != 0)
                abort();
        }
    }
}

#endif
