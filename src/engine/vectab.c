/*
 * vectab.c - the growable word/vector table that the loaders fill.
 *
 * Rows are appended in order and never removed, so a word's id is its
 * insertion index. Three arrays grow by doubling (word bytes, word offsets,
 * vectors), which keeps an append amortised O(1) and lets a 400,000-row file
 * load with about twenty reallocations in all.
 *
 * Duplicates are found with a private open-addressing set: hslots holds row
 * ids (UINT32_MAX marks an empty slot), indexed by XXH3-64 of the word's
 * bytes with linear probing. The set is kept at most half full, so a probe
 * sequence stays short even for an unlucky distribution of hashes.
 *
 * Invariants: offs has cap + 1 entries and offs[count] == words_len, so the
 * length of word i is always offs[i + 1] - offs[i] - 1 (the NUL excluded).
 * Row ids fit in 32 bits and UINT32_MAX is reserved for empty slots, so a
 * table holds at most UINT32_MAX - 1 rows.
 *
 * Threading: none. A table has one owner.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "attnkv/vectab.h"

#define EMPTY_SLOT UINT32_MAX
#define FIRST_ROWS 1024
#define FIRST_WORD_BYTES 16384
#define FIRST_SLOTS 2048

int akv_vectab_init(struct akv_vectab *t, uint32_t dim)
{
    memset(t, 0, sizeof(*t));
    if (dim == 0 || dim > AKV_DIM_MAX)
        return -EINVAL;
    /* Nothing is allocated yet: a table may be initialised and then never
     * used (a loader that fails on its first row), and its first rows decide
     * nothing about how large it will become. */
    t->dim = dim;
    return 0;
}

void akv_vectab_fini(struct akv_vectab *t)
{
    if (!t)
        return;
    free(t->words);
    free(t->offs);
    free(t->vecs);
    free(t->hslots);
    memset(t, 0, sizeof(*t));
}

static size_t word_len(const struct akv_vectab *t, size_t i)
{
    return (size_t)(t->offs[i + 1] - t->offs[i] - 1);
}

/* Inserts id into slots (n a power of two) at the first free place of its
 * probe sequence. The caller guarantees the set has room. */
static void slot_insert(uint32_t *slots, size_t n, uint64_t h, uint32_t id)
{
    size_t mask = n - 1;
    size_t i = (size_t)h & mask;

    while (slots[i] != EMPTY_SLOT)
        i = (i + 1) & mask;
    slots[i] = id;
}

/* Rebuilds the set with n slots from the words already stored. Rehashing
 * the words again costs less than keeping every hash for the life of the
 * table, and happens only log2(count) times. */
static int rehash(struct akv_vectab *t, size_t n)
{
    uint32_t *slots;

    if (n > SIZE_MAX / sizeof(*slots))
        return -ENOMEM;
    slots = malloc(n * sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    memset(slots, 0xff, n * sizeof(*slots));
    for (size_t i = 0; i < t->count; i++) {
        uint64_t h = XXH3_64bits(t->words + t->offs[i], word_len(t, i));
        slot_insert(slots, n, h, (uint32_t)i);
    }
    free(t->hslots);
    t->hslots = slots;
    t->hcap = n;
    return 0;
}

/* Makes room for one more row in offs and vecs. Each array is grown
 * separately, so a failure leaves the table consistent and merely holding
 * a larger allocation than it needs. */
static int grow_rows(struct akv_vectab *t)
{
    size_t cap = t->cap ? t->cap * 2 : FIRST_ROWS;
    uint64_t *offs;
    float *vecs;

    if (cap > SIZE_MAX / sizeof(float) / t->dim || cap + 1 > SIZE_MAX / sizeof(*offs))
        return -ENOMEM;
    offs = realloc(t->offs, (cap + 1) * sizeof(*offs));
    if (!offs)
        return -ENOMEM;
    if (!t->offs)
        offs[0] = 0;
    t->offs = offs;
    vecs = realloc(t->vecs, cap * t->dim * sizeof(float));
    if (!vecs)
        return -ENOMEM;
    t->vecs = vecs;
    t->cap = cap;
    return 0;
}

static int grow_words(struct akv_vectab *t, size_t need)
{
    size_t cap = t->words_cap ? t->words_cap : FIRST_WORD_BYTES;
    char *words;

    while (cap - t->words_len < need) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    words = realloc(t->words, cap);
    if (!words)
        return -ENOMEM;
    t->words = words;
    t->words_cap = cap;
    return 0;
}

int akv_vectab_add(struct akv_vectab *t, const char *word, size_t len, const float *vec)
{
    uint64_t h;
    size_t mask, i;
    int r;

    if (len == 0 || len > AKV_WORD_MAX || memchr(word, '\0', len))
        return -EINVAL;
    if (t->count >= (size_t)UINT32_MAX - 1)
        return -EOVERFLOW;

    /* The set must stay at most half full after this insertion. */
    if ((t->count + 1) * 2 > t->hcap) {
        r = rehash(t, t->hcap ? t->hcap * 2 : FIRST_SLOTS);
        if (r < 0)
            return r;
    }

    h = XXH3_64bits(word, len);
    mask = t->hcap - 1;
    for (i = (size_t)h & mask; t->hslots[i] != EMPTY_SLOT; i = (i + 1) & mask) {
        uint32_t id = t->hslots[i];
        if (word_len(t, id) == len && memcmp(t->words + t->offs[id], word, len) == 0)
            return -EEXIST;
    }

    if (t->count == t->cap) {
        r = grow_rows(t);
        if (r < 0)
            return r;
    }
    if (t->words_cap - t->words_len < len + 1) {
        r = grow_words(t, len + 1);
        if (r < 0)
            return r;
    }

    /* Everything that can fail has been done; only now is the row made
     * visible, so a failed add leaves the table exactly as it was. */
    memcpy(t->words + t->words_len, word, len);
    t->words[t->words_len + len] = '\0';
    t->words_len += len + 1;
    memcpy(t->vecs + t->count * t->dim, vec, t->dim * sizeof(float));
    t->hslots[i] = (uint32_t)t->count;
    t->count++;
    t->offs[t->count] = t->words_len;
    return 0;
}

const char *akv_vectab_word(const struct akv_vectab *t, size_t i)
{
    return t->words + t->offs[i];
}

const float *akv_vectab_vec(const struct akv_vectab *t, size_t i)
{
    return t->vecs + i * t->dim;
}
