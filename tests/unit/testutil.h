/*
 * testutil.h - small helpers shared by the engine's test suites: a seeded
 * random generator and random vocabularies built in memory.
 */
#ifndef ATTNKV_TESTUTIL_H
#define ATTNKV_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "attnkv/vectab.h"
#include "attnkv/vocab.h"

/* xorshift64*: deterministic across platforms, so a failing seed repeats. */
static inline uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi). */
static inline double tu_uniform(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * (double)(tu_rand(s) >> 11) / 9007199254740992.0;
}

/* A vocabulary of n words "w0", "w1", ... with uniform [-scale, scale)
 * vectors of dimension dim. Aborts the test program on failure. */
static inline struct akv_vocab *tu_random_vocab(size_t n, uint32_t dim, double scale, uint64_t seed)
{
    struct akv_vectab t;
    struct akv_vocab *v = NULL;
    float *vec = malloc(dim * sizeof *vec);
    char word[32], err[256];

    if (vec == NULL || akv_vectab_init(&t, dim) != 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(word, sizeof word, "w%zu", i);
        for (uint32_t d = 0; d < dim; d++)
            vec[d] = (float)tu_uniform(&seed, -scale, scale);
        if (akv_vectab_add(&t, word, (size_t)len, vec) != 0)
            abort();
    }
    if (akv_vocab_from_table(&v, &t, err, sizeof err) != 0) {
        fprintf(stderr, "akv_vocab_from_table: %s\n", err);
        abort();
    }
    akv_vectab_fini(&t);
    free(vec);
    return v;
}

#endif
