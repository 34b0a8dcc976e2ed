/*
 * vectab.h - an in-memory, growable table of words and their vectors.
 *
 * A vectab is what the text and word2vec loaders produce and what the binary
 * vocabulary writer (vocab.h) consumes. It is a plain builder: one owner, no
 * locking. Words are stored byte for byte, in insertion order, which becomes
 * the vocabulary order (and so the tie-break order of every ranking).
 */
#ifndef ATTNKV_VECTAB_H
#define ATTNKV_VECTAB_H

#include <stddef.h>
#include <stdint.h>

/* Longest word, in bytes, that the project accepts anywhere. */
#define AKV_WORD_MAX 1024
/* Largest vector dimension accepted; anything above is treated as corrupt. */
#define AKV_DIM_MAX 4096

struct akv_vectab {
    uint32_t dim;      /* set by akv_vectab_init, > 0 */
    size_t count;      /* number of rows */
    size_t cap;        /* allocated rows */
    char *words;       /* concatenated words, each followed by a NUL byte */
    size_t words_len;  /* bytes used in words */
    size_t words_cap;  /* bytes allocated for words */
    uint64_t *offs;    /* offs[i] = start of word i in words, and offs[count] ==
                          words_len (NULL until the first row is added) */
    float *vecs;       /* count * dim floats, row-major */
    uint32_t *hslots;  /* private open-addressing set used to find duplicates */
    size_t hcap;       /* number of hslots, a power of two */
};

/* Prepares an empty table of dimension dim (1..AKV_DIM_MAX). Nothing is
 * allocated until the first row is added.
 * Returns 0 or -EINVAL (t is then zeroed, so akv_vectab_fini is harmless). */
int akv_vectab_init(struct akv_vectab *t, uint32_t dim);

/* Frees everything the table owns; the struct itself is left zeroed. NULL is a no-op. */
void akv_vectab_fini(struct akv_vectab *t);

/* Appends a copy of word (len bytes, 1..AKV_WORD_MAX, no NUL byte inside) with
 * a copy of the dim floats of vec. Amortised O(1).
 * Returns 0, -EEXIST if the word is already present (the first occurrence
 * wins), -EINVAL for a bad word, -EOVERFLOW when the table already holds
 * UINT32_MAX - 1 rows, or -ENOMEM. On any error the table is unchanged. */
int akv_vectab_add(struct akv_vectab *t, const char *word, size_t len, const float *vec);

/* Word i as a NUL-terminated string, and its vector. i < count. */
const char *akv_vectab_word(const struct akv_vectab *t, size_t i);
const float *akv_vectab_vec(const struct akv_vectab *t, size_t i);

#endif
