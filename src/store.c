/*
 * store.c - the key/value store.
 *
 * Design
 * ------
 * Entries live in slots. Slots are grouped in chunks of CHUNK_SLOTS; a chunk
 * holds the slots' key vectors and value vectors contiguously (row-major, so
 * the attention step streams through them) plus per-slot metadata. Chunks
 * are allocated as the store grows and never move or shrink, and the table
 * of chunk pointers has a fixed size, so a reader never sees memory being
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
 *     slots' next/hash fields), the free lists and the snapshot list.
 *   - A reader holds a snapshot taken by the owner and handed over through
 *     something that orders memory (libuv's work queue, a mutex). Everything
 *     the snapshot can see was written before it was taken, so the reader
 *     may read those slots' vectors and text without further ordering.
 *   - born and died are atomics because the owner changes them while readers
 *     look. A slot is reused only after every snapshot that could have seen
 *     its old contents is released (its death version is at or below the
 *     oldest live snapshot's version); until then its text and vectors stay
 *     untouched. On reuse the owner first sets born = NEVER and then died = 0
 *     (release), and a reader loads died before born (acquire): a reader that
 *     sees the new died = 0 therefore also sees born = NEVER or the new born,
 *     both above its version, and skips the row. Readers read only the rows
 *     they find visible.
 *
 * The key index is a chained hash table whose nodes are the slots themselves
 * (next field), with a power-of-two bucket count; SCAN walks it with Redis's
 * reverse-binary cursor, so keys present for a whole SCAN are returned even if
 * the table grows in between (and an overwrite keeps a key in its bucket).
 */
#include "attnkv/store.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "attnkv/embed.h"

#define CHUNK_SHIFT 12
#define CHUNK_SLOTS ((size_t)1 << CHUNK_SHIFT)
#define CHUNK_MAX ((size_t)1 << 16) /* 268 million slots */
#define NIL UINT32_MAX
#define NEVER UINT64_MAX

struct slot {
    _Atomic uint64_t born;
    _Atomic uint64_t died;
    char *text; /* key bytes, NUL, value bytes, NUL: one allocation */
    uint32_t klen;
    uint32_t vlen;
    uint32_t next; /* owner only: next slot in the bucket chain */
    uint64_t hash; /* owner only: XXH3 of the key */
};

struct chunk {
    float *keys;   /* CHUNK_SLOTS x dim */
    float *vals;   /* CHUNK_SLOTS x dim */
    float knorms[CHUNK_SLOTS];
    struct slot slots[CHUNK_SLOTS];
};

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
    struct chunk **chunks; /* CHUNK_MAX pointers */
    size_t nchunks;
    size_t nslots;         /* high-water mark of used slots */
    uint64_t version;
    size_t live;

    uint32_t *buckets; /* heads of the chains, NIL when empty */
    size_t nbuckets;   /* a power of two */

    struct retired *retired; /* FIFO ring, death versions ascending */
    size_t ret_head, ret_len, ret_cap;
    uint32_t *free_slots; /* reusable now */
    size_t nfree, free_cap;

    struct active *act; /* live snapshots, versions ascending */
    size_t nact, act_cap;

    size_t text_bytes;
};

static struct slot *slot_at(const struct akv_store *s, size_t i)
{
    return &s->chunks[i >> CHUNK_SHIFT]->slots[i & (CHUNK_SLOTS - 1)];
}

static float *key_vec(const struct akv_store *s, size_t i)
{
    return s->chunks[i >> CHUNK_SHIFT]->keys + (i & (CHUNK_SLOTS - 1)) * s->dim;
}

static float *val_vec(const struct akv_store *s, size_t i)
{
    return s->chunks[i >> CHUNK_SHIFT]->vals + (i & (CHUNK_SLOTS - 1)) * s->dim;
}

/* Frees every chunk with the text its slots still hold; nchunks becomes 0. */
static void chunks_free(struct akv_store *s)
{
    for (size_t c = 0; c < s->nchunks; c++) {
        struct chunk *ch = s->chunks[c];
        for (size_t j = 0; j < CHUNK_SLOTS; j++)
            free(ch->slots[j].text);
        free(ch->keys);
        free(ch->vals);
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
    s->chunks = calloc(CHUNK_MAX, sizeof *s->chunks);
    s->nbuckets = 16;
    s->buckets = malloc(s->nbuckets * sizeof *s->buckets);
    if (s->chunks == NULL || s->buckets == NULL) {
        akv_store_destroy(s);
        return -ENOMEM;
    }
    memset(s->buckets, 0xff, s->nbuckets * sizeof *s->buckets);
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
    free(s->retired);
    free(s->free_slots);
    free(s->act);
    free(s);
}

static int chunk_add(struct akv_store *s)
{
    struct chunk *ch;
    size_t vbytes = CHUNK_SLOTS * s->dim * sizeof(float);

    if (s->nchunks == CHUNK_MAX)
        return -ENOMEM;
    ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return -ENOMEM;
    ch->keys = aligned_alloc(64, vbytes);
    ch->vals = aligned_alloc(64, vbytes);
    if (ch->keys == NULL || ch->vals == NULL) {
        free(ch->keys);
        free(ch->vals);
        free(ch);
        return -ENOMEM;
    }
    for (size_t j = 0; j < CHUNK_SLOTS; j++) {
        atomic_init(&ch->slots[j].born, NEVER);
        atomic_init(&ch->slots[j].died, 0);
        ch->slots[j].next = NIL;
    }
    s->chunks[s->nchunks++] = ch;
    return 0;
}

/* The oldest version a live snapshot reads, or NEVER when there is none. */
static uint64_t oldest_reader(const struct akv_store *s)
{
    return s->nact > 0 ? s->act[0].version : NEVER;
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
    b = malloc(16 * sizeof *b);
    if (b != NULL) {
        memset(b, 0xff, 16 * sizeof *b);
        free(s->buckets);
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
        struct slot *sl;
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
        s->text_bytes -= (size_t)sl->klen + sl->vlen + 2;
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
    s->retired[(s->ret_head + s->ret_len) % s->ret_cap] = (struct retired){slot, died};
    s->ret_len++;
    atomic_store_explicit(&slot_at(s, slot)->died, died, memory_order_release);
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

static uint64_t key_hash(const char *k, size_t len)
{
    return XXH3_64bits(k, len);
}

/* The link (bucket head or a slot's next field) that points at key's slot,
 * or at the NIL ending its chain if the key is absent. */
static uint32_t *find_link(const struct akv_store *s, const char *key, size_t klen, uint64_t h)
{
    uint32_t *link = &s->buckets[h & (s->nbuckets - 1)];

    while (*link != NIL) {
        struct slot *sl = slot_at(s, *link);
        if (sl->hash == h && sl->klen == klen && memcmp(sl->text, key, klen) == 0)
            break;
        link = &sl->next;
    }
    return link;
}

static int buckets_grow(struct akv_store *s)
{
    size_t n = s->nbuckets * 2;
    uint32_t *b = malloc(n * sizeof *b);

    if (b == NULL)
        return -ENOMEM;
    memset(b, 0xff, n * sizeof *b);
    for (size_t i = 0; i < s->nbuckets; i++) {
        uint32_t id = s->buckets[i];
        while (id != NIL) {
            struct slot *sl = slot_at(s, id);
            uint32_t next = sl->next;
            size_t j = sl->hash & (n - 1);
            sl->next = b[j];
            b[j] = id;
            id = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    return 0;
}

int akv_store_set_vec(struct akv_store *s, const char *key, size_t klen, const char *val,
                      size_t vlen, const float *kvec, const float *vvec)
{
    uint64_t h = key_hash(key, klen), v;
    uint32_t *link, id = NIL;
    struct slot *sl;
    char *text;
    double ss = 0;
    int rc;

    if (klen == 0 || klen > UINT32_MAX / 2 || vlen > UINT32_MAX / 2)
        return -EINVAL;
    if (s->live >= s->nbuckets && (rc = buckets_grow(s)) < 0)
        return rc;
    text = malloc(klen + vlen + 2);
    if (text == NULL)
        return -ENOMEM;
    memcpy(text, key, klen);
    text[klen] = '\0';
    if (vlen > 0)
        memcpy(text + klen + 1, val, vlen);
    text[klen + 1 + vlen] = '\0';
    rc = retire_reserve(s, 1);
    if (rc == 0)
        rc = slot_alloc(s, &id);
    if (rc < 0) {
        free(text);
        return rc;
    }
    link = find_link(s, key, klen, h);

    /* Prepare the new slot while no snapshot can see it (born == NEVER). */
    sl = slot_at(s, id);
    atomic_store_explicit(&sl->born, NEVER, memory_order_relaxed);
    atomic_store_explicit(&sl->died, 0, memory_order_release);
    sl->text = text;
    sl->klen = (uint32_t)klen;
    sl->vlen = (uint32_t)vlen;
    sl->hash = h;
    memcpy(key_vec(s, id), kvec, s->dim * sizeof(float));
    memcpy(val_vec(s, id), vvec, s->dim * sizeof(float));
    for (uint32_t d = 0; d < s->dim; d++)
        ss += (double)kvec[d] * kvec[d];
    s->chunks[id >> CHUNK_SHIFT]->knorms[id & (CHUNK_SLOTS - 1)] = (float)sqrt(ss);
    s->text_bytes += klen + vlen + 2;

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
    atomic_store_explicit(&sl->born, v, memory_order_release);
    return 0;
}

int akv_store_set(struct akv_store *s, const char *key, size_t klen, const char *val,
                  size_t vlen, char *err, size_t errlen)
{
    float kv[AKV_DIM_MAX], vv[AKV_DIM_MAX];
    int rc;

    rc = akv_embed_text(s->voc, key, klen, kv, err, errlen);
    if (rc < 0)
        return rc;
    rc = akv_embed_text(s->voc, val, vlen, vv, err, errlen);
    if (rc < 0)
        return rc;
    return akv_store_set_vec(s, key, klen, val, vlen, kv, vv);
}

int akv_store_get(const struct akv_store *s, const char *key, size_t klen, const char **val,
                  size_t *vlen)
{
    uint32_t *link = find_link(s, key, klen, key_hash(key, klen));
    struct slot *sl;

    if (*link == NIL)
        return 0;
    sl = slot_at(s, *link);
    *val = sl->text + sl->klen + 1;
    *vlen = sl->vlen;
    return 1;
}

int akv_store_del(struct akv_store *s, const char *key, size_t klen)
{
    uint32_t *link = find_link(s, key, klen, key_hash(key, klen));
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
    size_t per_chunk = sizeof(struct chunk) + 2 * CHUNK_SLOTS * s->dim * sizeof(float);
    return sizeof *s + CHUNK_MAX * sizeof(void *) + s->nchunks * per_chunk + s->text_bytes +
           s->nbuckets * sizeof(uint32_t) + s->ret_cap * sizeof(struct retired) +
           s->free_cap * sizeof(uint32_t) + s->act_cap * sizeof(struct active);
}

size_t akv_store_memory_used(const struct akv_store *s)
{
    size_t per_slot = 2 * s->dim * sizeof(float) + sizeof(float) + sizeof(struct slot);
    size_t unused = s->nchunks * CHUNK_SLOTS - s->nslots + s->nfree;

    return akv_store_memory(s) - unused * per_slot;
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
        uint32_t id = s->buckets[v & mask];
        if (id == NIL)
            empty_visits++;
        while (id != NIL) {
            struct slot *sl = slot_at(s, id);
            if (fn(arg, sl->text, sl->klen, sl->text + sl->klen + 1, sl->vlen) != 0)
                return 0;
            emitted++;
            id = sl->next;
        }
        /* Increment the reversed cursor: the high bits of the masked part
         * change first, which is what keeps the guarantee across growth. */
        v |= ~mask;
        v = rev64(v);
        v++;
        v = rev64(v);
    } while (v != 0 && emitted < count && empty_visits < count * 10);
    return v;
}

void akv_store_snap_take(struct akv_store *s, struct akv_store_snap *snap)
{
    snap->version = s->version;
    snap->nslots = s->nslots;
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
        const struct chunk *ch = s->chunks[first >> CHUNK_SHIFT];
        size_t n = snap->nslots - first < CHUNK_SLOTS ? snap->nslots - first : CHUNK_SLOTS;
        size_t nvis = 0;
        int rc;
        for (size_t j = 0; j < n; j++) {
            struct slot *sl = (struct slot *)&ch->slots[j];
            uint64_t died = atomic_load_explicit(&sl->died, memory_order_acquire);
            uint64_t born = atomic_load_explicit(&sl->born, memory_order_acquire);
            visible[j] = born <= snap->version && (died == 0 || died > snap->version);
            nvis += visible[j];
        }
        if (nvis == 0)
            continue;
        rc = fn(arg, n, ch->keys, ch->vals, ch->knorms, visible, first);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void akv_store_entry_text(const struct akv_store *s, const struct akv_store_snap *snap,
                          size_t slot, const char **key, size_t *klen, const char **val,
                          size_t *vlen)
{
    const struct slot *sl = slot_at(s, slot);

    (void)snap;
    *key = sl->text;
    *klen = sl->klen;
    *val = sl->text + sl->klen + 1;
    *vlen = sl->vlen;
}
