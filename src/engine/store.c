/*
 * store.c - the key/value store.
 *
 * Design
 * ------
 * Entries refer to words, not vectors. A key or a value is kept as its text
 * and the vocabulary ids of its words (struct akv_store_words): a word's
 * vector is its row in the mapped vocabulary and a phrase's is the mean of
 * its words' rows, so neither needs a copy. Attention is linear in those
 * vectors (a phrase key's score k.q is the mean of its words' scores, and
 * sum_i w_i v_i is a weighted sum of word rows), so attn.c computes it from
 * the ids and the vocabulary, once per distinct word, exactly in double.
 * Only the key's norm, which cosine attention needs and which is not
 * linear, is computed at SET time (in double, from the exact mean).
 *
 * Keeping ids rather than copies of the vectors costs where the words are
 * mostly distinct (their rows are scattered over the matrix) and saves
 * where the store is large (a query streams about 50 bytes an entry instead
 * of 400 for a key's copy); docs/performance-log.md has the measurements.
 * See attn.c for how a query uses the ids.
 *
 * Storage. Entries live in slots. Slots are grouped in chunks of CHUNK_SLOTS;
 * a chunk holds each per-slot field as its own array (born and died, the key
 * and value word lists with up to AKV_STORE_WORDS_INLINE ids inline, the key
 * norms), so that a scan reads only what it uses, and the owner's own slot
 * data (text, index links) beside them. A key or value of more words keeps
 * its full id list in the slot's text allocation, after the text. Chunks are
 * allocated as the store grows and never move or shrink, and the table of
 * chunk pointers has a fixed size, so a reader never sees memory being
 * reallocated under it.
 *
 * Versions. Every write bumps store->version. A slot carries the version that
 * made it visible (born) and the one that removed it (died, 0 while live). A
 * snapshot is (version V, nslots): slot i is visible to it iff i < nslots,
 * born <= V and (died == 0 or died > V). An overwrite kills the old slot and
 * gives birth to a new one at the same version, so a snapshot sees exactly
 * one value per key, and readers never block the owner nor the owner them:
 * there is no lock at all.
 *
 * Threading rules
 *   - The owner thread (the daemon's loop thread) performs every write, takes
 *     and releases snapshots, and alone touches the key index (buckets, the
 *     slots' next/hash fields), the free lists, the snapshot list and the
 *     key-word counts (kref; readers see only kmask, below).
 *   - A reader holds a snapshot taken by the owner and handed over through
 *     something that orders memory (libuv's work queue, a mutex). Everything
 *     the snapshot can see was written before it was taken, so the reader
 *     may read those slots' word lists, norms and text without further
 *     ordering.
 *   - born and died are atomics because the owner changes them while readers
 *     look. A slot is reused only after every snapshot that could have seen
 *     its old contents is released (its death version is at or below the
 *     oldest live snapshot's version); until then its text, word lists and
 *     norm stay untouched. On reuse the owner first sets born = NEVER and
 *     then died = 0 (release), and a reader loads died before born (acquire):
 *     a reader that sees the new died = 0 therefore also sees born = NEVER or
 *     the new born, both above its version, and skips the row. Readers read
 *     only the rows they find visible.
 *
 * Key words. A query scores each word used by a key once (see attn.c), and
 * learns which words those are from the store rather than from a pass over
 * every entry: kref[u] counts the slots not yet reclaimed whose key uses
 * word u (once per slot), and bit u of kmask is set while kref[u] > 0. The
 * owner raises the counts before the slot is born and lowers them when the
 * slot is reclaimed, so a word of a key that a live snapshot can see keeps
 * its bit from before the snapshot was taken until it is released; a reader
 * (relaxed loads) may also see bits of keys written or removed since, which
 * only costs it the scoring of a word it does not need. kmask is allocated
 * with the store and never moves. vref and vmask do the same for the words
 * of values (attention gives each its place in a table before its pass).
 *
 * Writes. A put splits the key and value into words (akv_store_put_ex)
 * or takes them already split, with the key's norm (akv_store_put_words,
 * for loading a snapshot written on the same vectors: the AOF preamble);
 * both end in place().
 *
 * Payloads. A value stored as a payload (akv_store_put_ex with
 * AKV_STORE_PAYLOAD) is bytes that are not embedded: its word list is
 * empty (n = 0), which is how attention tells it apart (it takes part in
 * the softmax through its key, never in the blend; see attn.c), and its
 * bytes may be anything, NUL and CR LF included, up to AKV_STORE_VALUE_MAX.
 * The key still embeds. Every slot also keeps a 128-bit hash of its value
 * bytes (vhash, seeded per store), which FGET groups values by without
 * reading their text.
 *
 * Expiry. A slot may carry an expiry time (ms since the epoch), fixed at
 * its birth like the rest of it: a new time for a key makes a new slot,
 * as an overwrite does, so a snapshot always sees the time it was taken
 * with. A snapshot also carries the owner's clock at the moment it was
 * taken (the store's clock pointer, which the daemon advances), and a row
 * whose time has come is invisible to it, whether or not anyone has
 * deleted it yet: a query never attends to an expired key. Deleting
 * expired keys (lazily, or by the active cycle from the expiry heap, a
 * min-heap of the slots that have a time, each slot knowing its place) is
 * the owner's business above the store, since it is logged like a DEL.
 *
 * The key index is a chained hash table whose nodes are the slots themselves
 * (next field), with a power-of-two bucket count; SCAN walks it with Redis's
 * reverse-binary cursor, so keys present for a whole SCAN are returned even if
 * the table grows in between (and an overwrite keeps a key in its bucket).
 * The table doubles incrementally, as Redis's does (buckets_grow): the old
 * bucket array stays beside the new one until every old bucket has moved,
 * REHASH_STEP of them at each write and more from akv_store_rehash (the
 * server's cron); lookups, SCAN and RANDOMKEY read an old bucket that has
 * not moved yet, and a FLUSH finishes the move first.
 */
#include "attnkv/store.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <xxhash.h>

#include "attnkv/embed.h"

#define CHUNK_SHIFT 12
#define CHUNK_SLOTS ((size_t)1 << CHUNK_SHIFT)
#define CHUNK_MAX ((size_t)1 << 16) /* 268 million slots */
#define NIL UINT32_MAX
#define NEVER UINT64_MAX
/* Old buckets moved per write while the table doubles (buckets_grow). */
#define REHASH_STEP 8

/* The owner's part of a slot. */
struct slot {
    /* One allocation: key bytes, NUL, value bytes, NUL, then (4-byte
     * aligned) the key's word ids if it has more than fit inline, then the
     * value's likewise. */
    char *text;
    uint32_t klen;
    uint32_t vlen;
    uint32_t next;     /* next slot in the bucket chain */
    uint32_t heap_pos; /* index in the expiry heap, NIL when it has no expiry time */
    uint64_t hash;     /* XXH3 of the key, with the store's seed */
};

struct chunk {
    _Atomic uint64_t born[CHUNK_SLOTS];
    _Atomic uint64_t died[CHUNK_SLOTS];
    /* Expiry time, ms since the epoch; 0: none. Set before born, like the
     * rest of a slot, and never changed while the slot lives (a new expiry
     * time makes a new slot). Atomic only because readers may load it for
     * rows they then find invisible. */
    _Atomic uint64_t expire[CHUNK_SLOTS];
    struct akv_store_words keys[CHUNK_SLOTS];
    struct akv_store_words vals[CHUNK_SLOTS];
    double knorms[CHUNK_SLOTS];
    struct akv_store_vhash vhash[CHUNK_SLOTS];
    struct slot slots[CHUNK_SLOTS];
};

/* What one slot costs in a chunk, whether used or not. */
#define ROW_BYTES (sizeof(struct chunk) / CHUNK_SLOTS)

struct retired {
    uint32_t slot;
    uint64_t died;
};

struct active {
    uint64_t version;
    size_t refs;
};

struct akv_store {
    const struct akv_vocab *voc;
    uint32_t dim;
    uint64_t seed; /* of the key hash: random per store, so keys cannot be chosen to collide */
    uint64_t id;   /* akv_store_id */
    struct chunk **chunks; /* CHUNK_MAX pointers */
    size_t nchunks;
    size_t nslots; /* high-water mark of used slots */
    uint64_t version;
    size_t live;
    /* A bound on the norm of every value ever set (value_norm_bound):
     * written by the owner before the entry becomes visible, read by any
     * thread (a relaxed atomic: the hand-off that carries a snapshot to a
     * reader orders it). */
    _Atomic double vnorm_max;

    uint32_t *buckets; /* heads of the chains, NIL when empty */
    size_t nbuckets;   /* a power of two */
    /* While the table doubles (see buckets_grow): the table before, of
     * nbuckets / 2 heads, whose buckets below moved have been moved into
     * buckets; NULL otherwise. */
    uint32_t *old;
    size_t moved;

    struct retired *retired; /* FIFO ring, death versions ascending */
    size_t ret_head, ret_len, ret_cap;
    uint32_t *free_slots; /* reusable now */
    size_t nfree, free_cap;

    struct active *act; /* live snapshots, versions ascending */
    size_t nact, act_cap;

    size_t text_bytes; /* the slots' text allocations, overhead included */

    /* Expiry (see "Expiry" above). */
    const uint64_t *clock; /* now, ms since the epoch; the owner's */
    uint64_t clock_zero;
    uint32_t *heap; /* slots with an expiry time, a min-heap on it */
    size_t nheap, heap_cap;

    /* The key words in use (see "Key words" above). */
    uint32_t *kref;          /* per vocabulary word */
    _Atomic uint64_t *kmask; /* bit u set iff kref[u] > 0 */
    uint32_t *vref;          /* the same for the words of values */
    _Atomic uint64_t *vmask;
    size_t nwords, nmask;
};

static struct chunk *chunk_of(const struct akv_store *s, size_t i)
{
    return s->chunks[i >> CHUNK_SHIFT];
}

static struct slot *slot_at(const struct akv_store *s, size_t i)
{
    return &chunk_of(s, i)->slots[i & (CHUNK_SLOTS - 1)];
}

/* Where the long word lists start in a text allocation. */
static size_t ids_offset(size_t klen, size_t vlen)
{
    return (klen + vlen + 2 + 3) & ~(size_t)3;
}

/* The ids of a list that does not fit inline; they go after the text. */
static size_t outside(size_t n)
{
    return n > AKV_STORE_WORDS_INLINE ? n : 0;
}

/* What malloc spends on an n-byte block, as glibc's allocator does it (an
 * 8-byte header, 16-byte granules, 32 bytes at least): entries are small,
 * so counting only the bytes asked for would undercount by a third. */
static size_t alloc_bytes(size_t n)
{
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

/* The accounted size of slot i's text allocation. */
static size_t text_alloc(const struct akv_store *s, size_t i)
{
    const struct chunk *ch = chunk_of(s, i);
    size_t j = i & (CHUNK_SLOTS - 1);
    const struct slot *sl = &ch->slots[j];

    return alloc_bytes(ids_offset(sl->klen, sl->vlen) +
                       (outside(ch->keys[j].n) + outside(ch->vals[j].n)) * sizeof(uint32_t));
}

/* All the word ids of slot i's key or value; *n gets their number. */
static const uint32_t *slot_words(const struct akv_store *s, size_t i, enum akv_store_part part,
                                  size_t *n)
{
    const struct chunk *ch = chunk_of(s, i);
    size_t j = i & (CHUNK_SLOTS - 1);
    const struct akv_store_words *w = part == AKV_STORE_KEY ? &ch->keys[j] : &ch->vals[j];
    const struct slot *sl = &ch->slots[j];
    const uint32_t *ids;

    *n = w->n;
    if (w->n <= AKV_STORE_WORDS_INLINE)
        return w->id;
    ids = (const uint32_t *)(const void *)(sl->text + ids_offset(sl->klen, sl->vlen));
    return part == AKV_STORE_KEY ? ids : ids + outside(ch->keys[j].n);
}

/* Counts one more (delta 1) or one fewer (delta -1) slot using each
 * distinct word of ids in ref, keeping mask in step. Owner only. */
static void words_count(uint32_t *ref, _Atomic uint64_t *mask, const uint32_t *ids, size_t n,
                        int delta)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = ids[i];
        uint64_t bit = (uint64_t)1 << (u & 63), m;
        size_t j = 0;
        while (j < i && ids[j] != u)
            j++;
        if (j < i)
            continue; /* counted already for this slot */
        if (delta > 0 ? ref[u]++ != 0 : --ref[u] != 0)
            continue;
        /* The owner is the only writer, so a load and a store suffice. */
        m = atomic_load_explicit(&mask[u >> 6], memory_order_relaxed);
        atomic_store_explicit(&mask[u >> 6], delta > 0 ? m | bit : m & ~bit, memory_order_relaxed);
    }
}

/* words_count for a slot's key words ids (nk) and value words vids (nv). */
static void slot_words_count(struct akv_store *s, const uint32_t *kids, size_t nk,
                             const uint32_t *vids, size_t nv, int delta)
{
    words_count(s->kref, s->kmask, kids, nk, delta);
    words_count(s->vref, s->vmask, vids, nv, delta);
}

/* Frees every chunk with the text its slots still hold; nchunks becomes 0. */
static void chunks_free(struct akv_store *s)
{
    for (size_t c = 0; c < s->nchunks; c++) {
        struct chunk *ch = s->chunks[c];
        for (size_t j = 0; j < CHUNK_SLOTS; j++)
            free(ch->slots[j].text);
        free(ch);
        s->chunks[c] = NULL;
    }
    s->nchunks = 0;
}

int akv_store_create(struct akv_store **out, const struct akv_vocab *voc)
{
    struct akv_store *s = calloc(1, sizeof *s);

    *out = NULL;
    if (s == NULL)
        return -ENOMEM;
    s->voc = voc;
    s->dim = akv_vocab_dim(voc);
    /* Without the kernel's randomness, the clock and an address still
     * differ from run to run. */
    if (getrandom(&s->seed, sizeof s->seed, GRND_NONBLOCK) != (ssize_t)sizeof s->seed)
        s->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)s;
    s->clock = &s->clock_zero;
    {
        static _Atomic uint64_t next_id = 1;
        s->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    }
    /* The chunk table and the key-word counts are allocated by the first
     * write (chunk_add), so that an unused database costs little. */
    s->nbuckets = 16;
    s->buckets = malloc(s->nbuckets * sizeof *s->buckets);
    s->nwords = akv_vocab_count(voc);
    s->nmask = (s->nwords + 63) / 64;
    s->kmask = malloc(s->nmask * sizeof *s->kmask);
    s->vmask = malloc(s->nmask * sizeof *s->vmask);
    if (s->buckets == NULL || s->kmask == NULL || s->vmask == NULL) {
        akv_store_destroy(s);
        return -ENOMEM;
    }
    memset(s->buckets, 0xff, s->nbuckets * sizeof *s->buckets);
    for (size_t i = 0; i < s->nmask; i++) {
        atomic_init(&s->kmask[i], 0);
        atomic_init(&s->vmask[i], 0);
    }
    *out = s;
    return 0;
}

void akv_store_destroy(struct akv_store *s)
{
    if (s == NULL)
        return;
    if (s->chunks != NULL) {
        chunks_free(s);
        free(s->chunks);
    }
    free(s->buckets);
    free(s->old);
    free(s->retired);
    free(s->free_slots);
    free(s->act);
    free(s->heap);
    free(s->kref);
    free(s->kmask);
    free(s->vref);
    free(s->vmask);
    free(s);
}

static int chunk_add(struct akv_store *s)
{
    struct chunk *ch;

    if (s->nchunks == CHUNK_MAX)
        return -ENOMEM;
    if (s->chunks == NULL && (s->chunks = calloc(CHUNK_MAX, sizeof *s->chunks)) == NULL)
        return -ENOMEM;
    if (s->kref == NULL && (s->kref = calloc(s->nwords, sizeof *s->kref)) == NULL)
        return -ENOMEM;
    if (s->vref == NULL && (s->vref = calloc(s->nwords, sizeof *s->vref)) == NULL)
        return -ENOMEM;
    ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return -ENOMEM;
    for (size_t j = 0; j < CHUNK_SLOTS; j++) {
        atomic_init(&ch->born[j], NEVER);
        atomic_init(&ch->died[j], 0);
        atomic_init(&ch->expire[j], 0);
        ch->slots[j].next = NIL;
        ch->slots[j].heap_pos = NIL;
    }
    s->chunks[s->nchunks++] = ch;
    return 0;
}

/* The oldest version a live snapshot reads, or NEVER when there is none. */
static uint64_t oldest_reader(const struct akv_store *s)
{
    return s->nact > 0 ? s->act[0].version : NEVER;
}

/* ---- the expiry heap (owner only) ---- */

static uint64_t slot_expire(const struct akv_store *s, uint32_t id)
{
    return atomic_load_explicit(&chunk_of(s, id)->expire[id & (CHUNK_SLOTS - 1)],
                                memory_order_relaxed);
}

static void heap_put(struct akv_store *s, size_t i, uint32_t id)
{
    s->heap[i] = id;
    slot_at(s, id)->heap_pos = (uint32_t)i;
}

static void heap_up(struct akv_store *s, size_t i)
{
    uint32_t id = s->heap[i];
    uint64_t e = slot_expire(s, id);

    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (slot_expire(s, s->heap[up]) <= e)
            break;
        heap_put(s, i, s->heap[up]);
        i = up;
    }
    heap_put(s, i, id);
}

static void heap_down(struct akv_store *s, size_t i)
{
    uint32_t id = s->heap[i];
    uint64_t e = slot_expire(s, id);

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && slot_expire(s, s->heap[c + 1]) < slot_expire(s, s->heap[c]))
            c++;
        if (e <= slot_expire(s, s->heap[c]))
            break;
        heap_put(s, i, s->heap[c]);
        i = c;
    }
    heap_put(s, i, id);
}

static int heap_reserve(struct akv_store *s)
{
    if (s->nheap == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        uint32_t *p = realloc(s->heap, cap * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        s->heap = p;
        s->heap_cap = cap;
    }
    return 0;
}

/* Adds slot id, whose expiry time is set; room was reserved. */
static void heap_add(struct akv_store *s, uint32_t id)
{
    heap_put(s, s->nheap++, id);
    heap_up(s, s->nheap - 1);
}

static void heap_remove(struct akv_store *s, uint32_t id)
{
    struct slot *sl = slot_at(s, id);
    size_t pos = sl->heap_pos;
    uint32_t last;

    if (pos == NIL)
        return;
    sl->heap_pos = NIL;
    last = s->heap[--s->nheap];
    if (pos == s->nheap)
        return;
    heap_put(s, pos, last);
    heap_up(s, pos);
    heap_down(s, slot_at(s, last)->heap_pos);
}

/* Gives every chunk back when the store is empty and nothing can read it
 * (after FLUSHALL, typically), so that memory returns to where it started.
 * Chunks are otherwise kept: readers may hold pointers into them. */
static void release_if_empty(struct akv_store *s)
{
    uint32_t *b;

    if (s->live != 0 || s->nact != 0 || s->ret_len != 0 || s->nchunks == 0)
        return;
    chunks_free(s);
    /* Every count is 0 again: the table and the counts go too. */
    free(s->chunks);
    s->chunks = NULL;
    free(s->kref);
    s->kref = NULL;
    free(s->vref);
    s->vref = NULL;
    s->nslots = 0;
    s->text_bytes = 0;
    free(s->free_slots);
    s->free_slots = NULL;
    s->nfree = s->free_cap = 0;
    free(s->retired);
    s->retired = NULL;
    s->ret_head = s->ret_cap = 0;
    free(s->act);
    s->act = NULL;
    s->act_cap = 0;
    /* The expiry heap (empty now) is kept: a write may have reserved room
     * in it before the slot_alloc that brought us here. */
    b = malloc(16 * sizeof *b);
    if (b != NULL) {
        memset(b, 0xff, 16 * sizeof *b);
        free(s->buckets);
        free(s->old);
        s->old = NULL;
        s->moved = 0;
        s->buckets = b;
        s->nbuckets = 16;
    }
}

/* Moves retired slots that no live snapshot can see any more to the free
 * list, releasing their text. */
static void reclaim(struct akv_store *s)
{
    uint64_t oldest = oldest_reader(s);

    while (s->ret_len > 0) {
        struct retired *r = &s->retired[s->ret_head];
        const uint32_t *ids, *vids;
        struct slot *sl;
        size_t n, nv;
        if (r->died > oldest)
            break;
        if (s->nfree == s->free_cap) {
            size_t cap = s->free_cap ? s->free_cap * 2 : 64;
            uint32_t *p = realloc(s->free_slots, cap * sizeof *p);
            if (p == NULL)
                return; /* try again at the next write */
            s->free_slots = p;
            s->free_cap = cap;
        }
        sl = slot_at(s, r->slot);
        ids = slot_words(s, r->slot, AKV_STORE_KEY, &n);
        vids = slot_words(s, r->slot, AKV_STORE_VALUE, &nv);
        slot_words_count(s, ids, n, vids, nv, -1);
        s->text_bytes -= text_alloc(s, r->slot);
        free(sl->text);
        sl->text = NULL;
        s->free_slots[s->nfree++] = r->slot;
        s->ret_head = (s->ret_head + 1) % s->ret_cap;
        s->ret_len--;
    }
    release_if_empty(s);
}

/* Makes sure the retired ring can take n more entries, so that a write never
 * fails after it has started changing the store. */
static int retire_reserve(struct akv_store *s, size_t n)
{
    while (s->ret_len + n > s->ret_cap) {
        size_t cap = s->ret_cap ? s->ret_cap * 2 : 64;
        struct retired *p;
        while (cap < s->ret_len + n)
            cap *= 2;
        p = malloc(cap * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < s->ret_len; i++)
            p[i] = s->retired[(s->ret_head + i) % s->ret_cap];
        free(s->retired);
        s->retired = p;
        s->ret_head = 0;
        s->ret_cap = cap;
    }
    return 0;
}

/* Records that slot died at version died; its memory is reclaimed once no
 * live snapshot is older than that. */
static int retire(struct akv_store *s, uint32_t slot, uint64_t died)
{
    int rc = retire_reserve(s, 1);

    if (rc < 0)
        return rc;
    heap_remove(s, slot);
    s->retired[(s->ret_head + s->ret_len) % s->ret_cap] = (struct retired){slot, died};
    s->ret_len++;
    atomic_store_explicit(&chunk_of(s, slot)->died[slot & (CHUNK_SLOTS - 1)], died,
                          memory_order_release);
    return 0;
}

/* Finds a slot for a new entry: a reclaimed one, or the next unused one. */
static int slot_alloc(struct akv_store *s, uint32_t *out)
{
    int rc;

    reclaim(s);
    if (s->nfree > 0) {
        *out = s->free_slots[--s->nfree];
        return 0;
    }
    if (s->nslots >= (size_t)NIL)
        return -ENOMEM;
    if (s->nslots == s->nchunks * CHUNK_SLOTS) {
        rc = chunk_add(s);
        if (rc < 0)
            return rc;
    }
    *out = (uint32_t)s->nslots++;
    return 0;
}

static uint64_t key_hash(const struct akv_store *s, const char *k, size_t len)
{
    return XXH3_64bits_withSeed(k, len, s->seed);
}

/* The head of the chain for hash h: in the old table while its bucket has
 * not been moved yet. */
static uint32_t *head_of(const struct akv_store *s, uint64_t h)
{
    if (s->old) {
        size_t i = h & (s->nbuckets / 2 - 1);
        if (i >= s->moved)
            return &s->old[i];
    }
    return &s->buckets[h & (s->nbuckets - 1)];
}

/* The chain of bucket j of the (new) table as a walk should see it: while
 * its old bucket has not been moved, that bucket (which holds the keys of
 * j and of its sibling). */
static uint32_t chain_at(const struct akv_store *s, size_t j)
{
    if (s->old && (j & (s->nbuckets / 2 - 1)) >= s->moved)
        return s->old[j & (s->nbuckets / 2 - 1)];
    return s->buckets[j];
}

/* The link (bucket head or a slot's next field) that points at key's slot,
 * or at the NIL ending its chain if the key is absent. */
static uint32_t *find_link(const struct akv_store *s, const char *key, size_t klen, uint64_t h)
{
    uint32_t *link = head_of(s, h);

    while (*link != NIL) {
        struct slot *sl = slot_at(s, *link);
        if (sl->hash == h && sl->klen == klen && memcmp(sl->text, key, klen) == 0)
            break;
        link = &sl->next;
    }
    return link;
}

/* Moves up to n buckets of the old table into the new one (each into the
 * two it splits into, which are set up only then), and ends the doubling
 * after the last. */
static void rehash_step(struct akv_store *s, size_t n)
{
    size_t nold = s->nbuckets / 2;

    while (s->old && n-- > 0) {
        size_t i = s->moved;
        uint32_t id = s->old[i];
        s->buckets[i] = s->buckets[i + nold] = NIL;
        while (id != NIL) {
            struct slot *sl = slot_at(s, id);
            uint32_t next = sl->next;
            size_t j = sl->hash & (s->nbuckets - 1);
            sl->next = s->buckets[j];
            s->buckets[j] = id;
            id = next;
        }
        if (++s->moved == nold) {
            free(s->old);
            s->old = NULL;
            s->moved = 0;
        }
    }
}

int akv_store_rehash(struct akv_store *s, size_t n)
{
    rehash_step(s, n);
    return s->old != NULL;
}

/* Doubles the table, as Redis does, incrementally: the new table is
 * allocated (not even cleared: a bucket of it is set up when its old one
 * moves), and each write then moves REHASH_STEP old buckets (place), so
 * that no single write pays for a million keys. Until then lookups go to
 * the old bucket when it has not moved (head_of). The doubling is over
 * long before the next: that one comes nbuckets/2 inserts later. */
static int buckets_grow(struct akv_store *s)
{
    size_t n = s->nbuckets * 2;
    uint32_t *b;

    rehash_step(s, SIZE_MAX);
    b = malloc(n * sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    s->old = s->buckets;
    s->moved = 0;
    s->buckets = b;
    s->nbuckets = n;
    return 0;
}

/* The L2 norm of the mean of the rows of words ids[0..n-1], in double. */
static double key_norm(const struct akv_store *s, const uint32_t *ids, size_t n)
{
    double sum[AKV_DIM_MAX], ss = 0;

    memset(sum, 0, s->dim * sizeof *sum);
    for (size_t w = 0; w < n; w++) {
        const float *x = akv_vocab_vec(s->voc, ids[w]);
        for (uint32_t d = 0; d < s->dim; d++)
            sum[d] += x[d];
    }
    for (uint32_t d = 0; d < s->dim; d++) {
        double m = sum[d] / (double)n;
        ss += m * m;
    }
    return sqrt(ss);
}

static void words_set(struct akv_store_words *w, const uint32_t *ids, size_t n)
{
    w->n = (uint32_t)n;
    for (size_t i = 0; i < AKV_STORE_WORDS_INLINE; i++)
        w->id[i] = i < n ? ids[i] : AKV_STORE_NO_WORD;
}

/* At least the norm of a value's vector, cheaply: the mean of its words'
 * rows is no longer than the longest of them, and the vocabulary file
 * holds every row's norm (rounded to the nearest float from the double
 * norm at import, so 1e-6 relative more is above it). Reading the norms
 * rather than the rows keeps SET to one cache line per word here; like the
 * ranking's bounds, this trusts the file (its checksum covers the norms). */
static double value_norm_bound(const struct akv_store *s, const uint32_t *ids, size_t n)
{
    const float *norms = akv_vocab_norms(s->voc);
    double best = 0;

    for (size_t w = 0; w < n; w++) {
        double nm = (double)norms[ids[w]] * (1 + 1e-6);
        if (!(nm <= best))
            best = nm == nm ? nm : INFINITY;
    }
    return best;
}

/* Makes text (one allocation laid out as struct slot describes, taken
 * over) the entry of its key, with the given words, key norm and expiry
 * time, replacing the key's live slot if it has one. kids/vids may point
 * into text. Returns 0 or -ENOMEM (text is then freed). */
static int place(struct akv_store *s, uint64_t h, char *text, size_t klen, size_t vlen,
                 const uint32_t *kids, size_t nk, const uint32_t *vids, size_t nv, double knorm,
                 struct akv_store_vhash vh, uint64_t expire)
{
    uint32_t *link, id = NIL;
    struct chunk *ch;
    struct slot *sl;
    uint64_t v;
    size_t j;
    int rc = 0;

    rehash_step(s, REHASH_STEP);
    if (s->live >= s->nbuckets)
        rc = buckets_grow(s);
    if (rc == 0)
        rc = retire_reserve(s, 1);
    if (rc == 0 && expire != 0)
        rc = heap_reserve(s);
    if (rc == 0)
        rc = slot_alloc(s, &id);
    if (rc < 0) {
        free(text);
        return rc;
    }
    link = find_link(s, text, klen, h);

    /* Prepare the new slot while no snapshot can see it (born == NEVER). */
    ch = chunk_of(s, id);
    j = id & (CHUNK_SLOTS - 1);
    sl = &ch->slots[j];
    atomic_store_explicit(&ch->born[j], NEVER, memory_order_relaxed);
    atomic_store_explicit(&ch->died[j], 0, memory_order_release);
    atomic_store_explicit(&ch->expire[j], expire, memory_order_relaxed);
    sl->text = text;
    sl->klen = (uint32_t)klen;
    sl->vlen = (uint32_t)vlen;
    sl->hash = h;
    sl->heap_pos = NIL;
    words_set(&ch->keys[j], kids, nk);
    words_set(&ch->vals[j], vids, nv);
    ch->knorms[j] = knorm;
    ch->vhash[j] = vh;
    slot_words_count(s, kids, nk, vids, nv, 1);
    s->text_bytes += text_alloc(s, id);

    v = ++s->version;
    if (*link != NIL) {
        /* Overwrite: the new slot takes the old one's place in the chain. */
        uint32_t old = *link;
        sl->next = slot_at(s, old)->next;
        *link = id;
        (void)retire(s, old, v); /* cannot fail: reserved above */
    } else {
        sl->next = NIL;
        *link = id;
        s->live++;
    }
    if (expire != 0)
        heap_add(s, id); /* reserved above */
    atomic_store_explicit(&ch->born[j], v, memory_order_release);
    return 0;
}

/* The hash FGET groups values by (akv_store_vhash). */
static struct akv_store_vhash value_hash(const struct akv_store *s, const char *val, size_t vlen)
{
    XXH128_hash_t x = XXH3_128bits_withSeed(val, vlen, s->seed);

    return (struct akv_store_vhash){{x.low64, x.high64}};
}

/* Stores key and val with their words (already checked), as
 * akv_store_put_ex describes. */
static int put_words(struct akv_store *s, const char *key, size_t klen, const char *val,
                     size_t vlen, const uint32_t *kids, size_t nk, const uint32_t *vids, size_t nv,
                     const double *knorm, uint64_t expire)
{
    size_t off = ids_offset(klen, vlen);
    char *text = malloc(off + (outside(nk) + outside(nv)) * sizeof(uint32_t));

    if (text == NULL)
        return -ENOMEM;
    memcpy(text, key, klen);
    text[klen] = '\0';
    if (vlen > 0)
        memcpy(text + klen + 1, val, vlen);
    memset(text + klen + 1 + vlen, 0, off - klen - 1 - vlen);
    memcpy(text + off, kids, outside(nk) * sizeof(uint32_t));
    memcpy(text + off + outside(nk) * sizeof(uint32_t), vids, outside(nv) * sizeof(uint32_t));
    {
        double vn = value_norm_bound(s, vids, nv);
        if (!(vn <= atomic_load_explicit(&s->vnorm_max, memory_order_relaxed)))
            atomic_store_explicit(&s->vnorm_max, vn, memory_order_relaxed);
    }
    return place(s, key_hash(s, key, klen), text, klen, vlen, kids, nk, vids, nv,
                 knorm ? *knorm : key_norm(s, kids, nk), value_hash(s, val, vlen), expire);
}

int akv_store_put_ex(struct akv_store *s, const char *key, size_t klen, const char *val,
                     size_t vlen, uint64_t expire, unsigned flags, char *err, size_t errlen)
{
    uint32_t kids[AKV_PHRASE_WORDS_MAX], vids[AKV_PHRASE_WORDS_MAX];
    size_t nk, nv = 0;
    int rc;

    /* Embedding checks the lengths too: both texts are 1 .. AKV_TEXT_MAX
     * bytes once it has succeeded; a payload only has a bound of its own. */
    rc = akv_embed_words(s->voc, key, klen, kids, &nk, err, errlen);
    if (rc < 0)
        return rc;
    if (flags & AKV_STORE_PAYLOAD) {
        if (vlen > AKV_STORE_VALUE_MAX) {
            if (errlen > 0)
                snprintf(err, errlen, "payload too long (%zu bytes; at most %zu)", vlen,
                         (size_t)AKV_STORE_VALUE_MAX);
            return -EINVAL;
        }
    } else {
        rc = akv_embed_words(s->voc, val, vlen, vids, &nv, err, errlen);
        if (rc < 0)
            return rc;
    }
    return put_words(s, key, klen, val, vlen, kids, nk, vids, nv, NULL, expire);
}

int akv_store_put_words(struct akv_store *s, const char *key, size_t klen, const char *val,
                        size_t vlen, const uint32_t *kids, size_t nk, const uint32_t *vids,
                        size_t nv, const double *knorm, uint64_t expire, unsigned flags, char *err,
                        size_t errlen)
{
    size_t count = akv_vocab_count(s->voc);
    const char *why = NULL;

    if (klen == 0 || klen > AKV_TEXT_MAX)
        why = "key length out of range";
    else if (flags & AKV_STORE_PAYLOAD ? vlen > AKV_STORE_VALUE_MAX
                                       : vlen == 0 || vlen > AKV_TEXT_MAX)
        why = "value length out of range";
    else if (nk == 0 || nk > AKV_PHRASE_WORDS_MAX || nv > AKV_PHRASE_WORDS_MAX ||
             (nv == 0) != ((flags & AKV_STORE_PAYLOAD) != 0))
        why = "word count out of range";
    else if (knorm && !(*knorm >= 0 && *knorm <= INFINITY))
        why = "key norm out of range";
    for (size_t i = 0; !why && i < nk + nv; i++)
        if ((i < nk ? kids[i] : vids[i - nk]) >= count)
            why = "word id out of range";
    if (why) {
        if (errlen > 0)
            snprintf(err, errlen, "%s", why);
        return -EINVAL;
    }
    return put_words(s, key, klen, val, vlen, kids, nk, vids, nv, knorm, expire);
}

int akv_store_put(struct akv_store *s, const char *key, size_t klen, const char *val, size_t vlen,
                  uint64_t expire, char *err, size_t errlen)
{
    return akv_store_put_ex(s, key, klen, val, vlen, expire, 0, err, errlen);
}

int akv_store_set(struct akv_store *s, const char *key, size_t klen, const char *val, size_t vlen,
                  char *err, size_t errlen)
{
    return akv_store_put(s, key, klen, val, vlen, 0, err, errlen);
}

/* Whether an expiry time has come by now (0: never). */
static int is_expired(uint64_t expire, uint64_t now)
{
    return expire != 0 && expire <= now;
}

void akv_store_set_clock(struct akv_store *s, const uint64_t *now_ms)
{
    s->clock = now_ms ? now_ms : &s->clock_zero;
}

int akv_store_find(const struct akv_store *s, const char *key, size_t klen,
                   struct akv_store_found *f)
{
    uint32_t id = *find_link(s, key, klen, key_hash(s, key, klen));
    struct slot *sl;

    if (id == NIL)
        return AKV_STORE_ABSENT;
    sl = slot_at(s, id);
    f->val = sl->text + sl->klen + 1;
    f->vlen = sl->vlen;
    f->expire = slot_expire(s, id);
    f->payload = chunk_of(s, id)->vals[id & (CHUNK_SLOTS - 1)].n == 0;
    return is_expired(f->expire, *s->clock) ? AKV_STORE_EXPIRED : AKV_STORE_LIVE;
}

int akv_store_expire_set(struct akv_store *s, const char *key, size_t klen, uint64_t expire)
{
    uint64_t h = key_hash(s, key, klen);
    uint32_t id = *find_link(s, key, klen, h), kids[AKV_PHRASE_WORDS_MAX],
             vids[AKV_PHRASE_WORDS_MAX];
    const uint32_t *ids;
    const struct slot *sl;
    size_t nk, nv, size;
    double knorm;
    char *text;

    if (id == NIL || is_expired(slot_expire(s, id), *s->clock))
        return 0;
    if (slot_expire(s, id) == expire)
        return 1;
    sl = slot_at(s, id);
    ids = slot_words(s, id, AKV_STORE_KEY, &nk);
    memcpy(kids, ids, nk * sizeof *ids);
    ids = slot_words(s, id, AKV_STORE_VALUE, &nv);
    memcpy(vids, ids, nv * sizeof *ids);
    knorm = chunk_of(s, id)->knorms[id & (CHUNK_SLOTS - 1)];
    size = ids_offset(sl->klen, sl->vlen) + (outside(nk) + outside(nv)) * sizeof(uint32_t);
    text = malloc(size);
    if (text == NULL)
        return -ENOMEM;
    memcpy(text, sl->text, size);
    {
        int rc = place(s, h, text, sl->klen, sl->vlen, kids, nk, vids, nv, knorm,
                       chunk_of(s, id)->vhash[id & (CHUNK_SLOTS - 1)], expire);
        return rc < 0 ? rc : 1;
    }
}

size_t akv_store_expires(const struct akv_store *s)
{
    return s->nheap;
}

int akv_store_first_expired(const struct akv_store *s, const char **key, size_t *klen)
{
    const struct slot *sl;

    if (s->nheap == 0 || !is_expired(slot_expire(s, s->heap[0]), *s->clock))
        return 0;
    sl = slot_at(s, s->heap[0]);
    *key = sl->text;
    *klen = sl->klen;
    return 1;
}

size_t akv_store_due(const struct akv_store *s, size_t max,
                     int (*fn)(void *arg, const char *key, size_t klen, uint64_t expire), void *arg)
{
    /* The heap's due entries form a subtree at its root: walk it depth
     * first with an explicit stack, at most max of them. */
    size_t stack[128], top = 0, n = 0;

    if (s->nheap == 0 || max == 0)
        return 0;
    stack[top++] = 0;
    while (top > 0 && n < max) {
        size_t i = stack[--top];
        uint64_t e = slot_expire(s, s->heap[i]);
        const struct slot *sl;
        if (!is_expired(e, *s->clock))
            continue;
        sl = slot_at(s, s->heap[i]);
        if (fn(arg, sl->text, sl->klen, e) != 0)
            break;
        n++;
        for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < s->nheap; c++)
            if (top < sizeof(stack) / sizeof(stack[0]))
                stack[top++] = c;
    }
    return n;
}

double akv_store_value_norm_max(const struct akv_store *s)
{
    return atomic_load_explicit(&s->vnorm_max, memory_order_relaxed);
}

int akv_store_get(const struct akv_store *s, const char *key, size_t klen, const char **val,
                  size_t *vlen)
{
    uint32_t *link = find_link(s, key, klen, key_hash(s, key, klen));
    struct slot *sl;

    if (*link == NIL || is_expired(slot_expire(s, *link), *s->clock))
        return 0;
    sl = slot_at(s, *link);
    *val = sl->text + sl->klen + 1;
    *vlen = sl->vlen;
    return 1;
}

int akv_store_del(struct akv_store *s, const char *key, size_t klen)
{
    uint32_t *link = find_link(s, key, klen, key_hash(s, key, klen));
    uint32_t id = *link;

    if (id == NIL)
        return 0;
    if (retire_reserve(s, 1) < 0)
        return -ENOMEM;
    *link = slot_at(s, id)->next;
    s->live--;
    (void)retire(s, id, ++s->version);
    reclaim(s);
    return 1;
}

size_t akv_store_flush(struct akv_store *s)
{
    size_t n = s->live;
    uint64_t v;

    if (n == 0)
        return 0;
    rehash_step(s, SIZE_MAX); /* O(n) like the flush itself */
    if (retire_reserve(s, n) < 0) {
        /* Without room to record the deaths, delete key by key: each
         * deletion needs only one ring entry, freed as readers finish. */
        size_t done = 0;
        for (size_t b = 0; b < s->nbuckets; b++) {
            while (s->buckets[b] != NIL) {
                struct slot *sl = slot_at(s, s->buckets[b]);
                if (akv_store_del(s, sl->text, sl->klen) != 1)
                    return done;
                done++;
            }
        }
        return done;
    }
    for (size_t i = 0; i < s->nheap; i++)
        slot_at(s, s->heap[i])->heap_pos = NIL;
    s->nheap = 0;
    v = ++s->version;
    for (size_t b = 0; b < s->nbuckets; b++) {
        uint32_t id = s->buckets[b];
        while (id != NIL) {
            uint32_t next = slot_at(s, id)->next;
            (void)retire(s, id, v);
            id = next;
        }
        s->buckets[b] = NIL;
    }
    s->live = 0;
    reclaim(s);
    return n;
}

size_t akv_store_count(const struct akv_store *s)
{
    return s->live;
}

size_t akv_store_memory(const struct akv_store *s)
{
    return sizeof *s + (s->chunks ? CHUNK_MAX * sizeof(void *) : 0) +
           s->nchunks * sizeof(struct chunk) + s->text_bytes + s->nbuckets * sizeof(uint32_t) +
           (s->old ? s->nbuckets / 2 * sizeof(uint32_t) : 0) + s->ret_cap * sizeof(struct retired) +
           s->free_cap * sizeof(uint32_t) + s->act_cap * sizeof(struct active) +
           s->heap_cap * sizeof(uint32_t) +
           (s->kref ? s->nwords * (sizeof *s->kref + sizeof *s->vref) : 0) +
           s->nmask * (sizeof *s->kmask + sizeof *s->vmask);
}

size_t akv_store_memory_used(const struct akv_store *s)
{
    size_t unused = s->nchunks * CHUNK_SLOTS - s->nslots + s->nfree;

    return akv_store_memory(s) - unused * ROW_BYTES;
}

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    v = ((v >> 8) & 0x00ff00ff00ff00ffull) | ((v & 0x00ff00ff00ff00ffull) << 8);
    v = ((v >> 16) & 0x0000ffff0000ffffull) | ((v & 0x0000ffff0000ffffull) << 16);
    return (v >> 32) | (v << 32);
}

uint64_t akv_store_iter(const struct akv_store *s, uint64_t cursor, size_t count,
                        int (*fn)(void *arg, const char *key, size_t klen, const char *val,
                                  size_t vlen),
                        void *arg)
{
    uint64_t mask = s->nbuckets - 1, v = cursor;
    size_t emitted = 0, empty_visits = 0;

    if (count == 0)
        count = 1;
    do {
        /* While the table doubles, the cursor walks the old table's
         * buckets and, with each, the two of the new table it splits
         * into (as Redis's dictScan does): whichever holds the keys now. */
        uint64_t m0 = s->old ? mask >> 1 : mask, i = v & m0;
        uint32_t heads[3];
        size_t nh = 0, before = emitted;

        if (s->old && i >= s->moved)
            heads[nh++] = s->old[i];
        do {
            if (!s->old || i < s->moved)
                heads[nh++] = s->buckets[v & mask];
            /* Increment the reversed cursor: the high bits of the masked
             * part change first, which is what keeps the guarantee across
             * growth. */
            v |= ~mask;
            v = rev64(v);
            v++;
            v = rev64(v);
        } while (v & (m0 ^ mask));
        for (size_t k = 0; k < nh; k++) {
            for (uint32_t id = heads[k]; id != NIL;) {
                struct slot *sl = slot_at(s, id);
                if (!is_expired(slot_expire(s, id), *s->clock)) {
                    if (fn(arg, sl->text, sl->klen, sl->text + sl->klen + 1, sl->vlen) != 0)
                        return 0;
                    emitted++;
                }
                id = sl->next;
            }
        }
        if (emitted == before)
            empty_visits++;
    } while (v != 0 && emitted < count && empty_visits < count * 10);
    return v;
}

void akv_store_snap_take(struct akv_store *s, struct akv_store_snap *snap)
{
    snap->version = s->version;
    snap->nslots = s->nslots;
    snap->now_ms = *s->clock;
    if (s->nact > 0 && s->act[s->nact - 1].version == s->version) {
        s->act[s->nact - 1].refs++;
        return;
    }
    if (s->nact == s->act_cap) {
        size_t cap = s->act_cap ? s->act_cap * 2 : 16;
        struct active *p = realloc(s->act, cap * sizeof *p);
        if (p == NULL) {
            /* Without room to record this reader, pin reclamation entirely by
             * recording it on the oldest entry, which is conservative. */
            if (s->nact > 0) {
                snap->version = s->act[0].version;
                s->act[0].refs++;
                return;
            }
            abort(); /* a 16-entry allocation failed: nothing sane is left */
        }
        s->act = p;
        s->act_cap = cap;
    }
    s->act[s->nact++] = (struct active){s->version, 1};
}

int akv_store_has_readers(const struct akv_store *s)
{
    return s->nact > 0;
}

void akv_store_snap_release(struct akv_store *s, const struct akv_store_snap *snap)
{
    for (size_t i = 0; i < s->nact; i++) {
        if (s->act[i].version != snap->version)
            continue;
        if (--s->act[i].refs == 0) {
            memmove(&s->act[i], &s->act[i + 1], (s->nact - i - 1) * sizeof *s->act);
            s->nact--;
        }
        break;
    }
    reclaim(s);
}

uint64_t akv_store_id(const struct akv_store *s)
{
    return s->id;
}

uint32_t akv_store_dim(const struct akv_store *s)
{
    return s->dim;
}

const struct akv_vocab *akv_store_vocab(const struct akv_store *s)
{
    return s->voc;
}

int akv_store_scan(const struct akv_store *s, const struct akv_store_snap *snap,
                   akv_store_block_fn fn, void *arg)
{
    uint8_t visible[CHUNK_SLOTS];

    for (size_t first = 0; first < snap->nslots; first += CHUNK_SLOTS) {
        struct chunk *ch = chunk_of(s, first);
        size_t n = snap->nslots - first < CHUNK_SLOTS ? snap->nslots - first : CHUNK_SLOTS;
        size_t nvis = 0;
        struct akv_store_block b;
        int rc;
        for (size_t j = 0; j < n; j++) {
            uint64_t died = atomic_load_explicit(&ch->died[j], memory_order_acquire);
            uint64_t born = atomic_load_explicit(&ch->born[j], memory_order_acquire);
            uint64_t exp = atomic_load_explicit(&ch->expire[j], memory_order_relaxed);
            /* born <= V, (died == 0 or died > V) and (exp == 0 or exp >
             * now), without branches: died - 1 and exp - 1 wrap to the
             * largest value when they are 0. */
            visible[j] = (uint8_t)((born <= snap->version) & (died - 1 >= snap->version) &
                                   (exp - 1 >= snap->now_ms));
            nvis += visible[j];
        }
        if (nvis == 0)
            continue;
        b = (struct akv_store_block){n,        first,    visible,    nvis,
                                     ch->keys, ch->vals, ch->knorms, ch->expire};
        rc = fn(arg, &b);
        if (rc != 0)
            return rc;
    }
    return 0;
}

const uint32_t *akv_store_entry_words(const struct akv_store *s, const struct akv_store_snap *snap,
                                      size_t slot, enum akv_store_part part, size_t *n)
{
    (void)snap;
    return slot_words(s, slot, part, n);
}

void akv_store_key_words(const struct akv_store *s, const struct akv_store_snap *snap,
                         uint64_t *mask)
{
    (void)snap;
    for (size_t i = 0; i < s->nmask; i++)
        mask[i] |= atomic_load_explicit(&s->kmask[i], memory_order_relaxed);
}

void akv_store_value_words(const struct akv_store *s, const struct akv_store_snap *snap,
                           uint64_t *mask)
{
    (void)snap;
    for (size_t i = 0; i < s->nmask; i++)
        mask[i] |= atomic_load_explicit(&s->vmask[i], memory_order_relaxed);
}

void akv_store_entry_text(const struct akv_store *s, const struct akv_store_snap *snap, size_t slot,
                          const char **key, size_t *klen, const char **val, size_t *vlen)
{
    const struct slot *sl = slot_at(s, slot);

    (void)snap;
    *key = sl->text;
    *klen = sl->klen;
    *val = sl->text + sl->klen + 1;
    *vlen = sl->vlen;
}

int akv_store_entry_payload(const struct akv_store *s, const struct akv_store_snap *snap,
                            size_t slot)
{
    (void)snap;
    return chunk_of(s, slot)->vals[slot & (CHUNK_SLOTS - 1)].n == 0;
}

struct akv_store_vhash akv_store_entry_vhash(const struct akv_store *s,
                                             const struct akv_store_snap *snap, size_t slot)
{
    (void)snap;
    return chunk_of(s, slot)->vhash[slot & (CHUNK_SLOTS - 1)];
}

uint64_t akv_store_entry_expire(const struct akv_store *s, const struct akv_store_snap *snap,
                                size_t slot)
{
    (void)snap;
    return slot_expire(s, (uint32_t)slot);
}

/* ------------------------------------------------------------------------
 * Inspection: what MEMORY USAGE and RANDOMKEY ask of the store (owner
 * thread). Kept apart from the rest so that it reads on its own.
 */

/* Random probes into the buckets before RANDOMKEY falls back to a walk:
 * the table grows at one key per bucket, so while it is in use a probe
 * finds a key with probability about 0.6. */
#define RANDOM_PROBES 64

size_t akv_store_entry_memory(const struct akv_store *s, const char *key, size_t klen)
{
    uint32_t id = *find_link(s, key, klen, key_hash(s, key, klen));

    if (id == NIL)
        return 0;
    /* Its row of every per-slot array, its text allocation (with the word
     * lists that do not fit inline) and its share of the bucket array. */
    return ROW_BYTES + text_alloc(s, id) + sizeof(uint32_t);
}

/* SplitMix64: the next of a sequence of well-mixed 64-bit values. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

int akv_store_random_key(const struct akv_store *s, uint64_t seed, const char **key, size_t *klen)
{
    uint64_t mask = s->nbuckets - 1, x = seed;
    uint32_t id = NIL, j;
    size_t len = 0, pick;

    if (s->live == 0)
        return 0;
    for (int t = 0; t < RANDOM_PROBES && id == NIL; t++)
        id = chain_at(s, splitmix64(&x) & mask);
    if (id == NIL) {
        /* A store that was much larger once (the table never shrinks
         * while keys remain): walk from a random bucket to the next key. */
        uint64_t start = splitmix64(&x) & mask;
        for (uint64_t i = 0; i <= mask && id == NIL; i++)
            id = chain_at(s, (start + i) & mask);
    }
    if (id == NIL)
        return 0; /* not while live > 0 */
    for (j = id; j != NIL; j = slot_at(s, j)->next)
        len++;
    for (pick = splitmix64(&x) % len; pick > 0; pick--)
        id = slot_at(s, id)->next;
    *key = slot_at(s, id)->text;
    *klen = slot_at(s, id)->klen;
    return 1;
}
