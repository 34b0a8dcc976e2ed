/*
 * vocab.c - the binary vocabulary file: mapping it, validating it and
 * looking words up (vocab-write.c writes it).
 *
 * Design. The file is laid out so that opening it costs a header check and a
 * pass over the small index sections, never over the matrix: the daemon maps
 * it read-only (MAP_SHARED), so every process using the same file shares its
 * page-cache pages, and start-up takes milliseconds once the file is cached.
 *
 *   offset 0     header, 256 bytes (struct vocab_hdr in vocab-format.h)
 *   words_off    words, each followed by NUL, in vocabulary order
 *   offs_off     (count + 1) uint64 start offsets into words; the last one
 *                equals words_len (8-byte aligned)
 *   hash_off     hash_slots uint32 ids, UINT32_MAX for an empty slot; linear
 *                probing from XXH3_64bits(word) & (hash_slots - 1)
 *   norms_off    count float32 L2 norms (4-byte aligned)
 *   sketch_off   the int8 sketch's head section: per block, its head codes
 *                and row information (64-byte aligned; sketch.h)
 *   tail_off     the sketch's tail section (64-byte aligned)
 *   rot_off      the sketch's rotation, dim x dim doubles (64-byte aligned;
 *                absent when rot_off is 0)
 *   matrix_off   count x dim float32, row-major (64-byte aligned, so SIMD
 *                kernels may use aligned loads on rows whose size allows it)
 *
 * Version 2 added the sketch sections: the ranking scan reads them instead
 * of the matrix (a quarter of the bytes), so they are computed once at
 * import and shared through the page cache like the rest of the file.
 *
 * Integrity: meta_checksum covers the header (with both checksum fields
 * zeroed) and every byte up to the norms (words, offsets, hash, padding); it
 * is always checked at open. data_checksum covers every byte from the norms
 * to the end of the file and is checked only with
 * AKV_VOCAB_VERIFY, since reading 137 MB would defeat the fast start. Every
 * offset and size is validated before use, so a corrupt file is refused with
 * a message instead of being trusted; a damaged float can only give a wrong
 * answer, never a crash.
 *
 * Threading: an open vocabulary is immutable; any thread may read it.
 */
#include "attnkv/vocab.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <unicase.h>
#include <unistr.h>
#include <xxhash.h>

#include "engine/sketch.h"
#include "engine/vocab-format.h"
#include "util/text.h"

struct akv_vocab {
    const uint8_t *base; /* start of the file or buffer */
    size_t size;
    int mapped; /* 1: munmap base; 2: free base; 0: borrowed */
    size_t count;
    uint32_t dim;
    const char *words;
    const uint64_t *offs;
    size_t word_max; /* the longest word's length in bytes */
    const uint32_t *hash;
    uint64_t hash_mask;
    const float *norms;
    const float *matrix;
    const uint8_t *sketch;
    const uint8_t *sketch_tail;
    const double *rot;
    double rot_eps;
    uint32_t head_groups;
};

uint64_t akv_vocab_align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) & ~(a - 1);
}

uint64_t akv_vocab_hash_word(const char *w, size_t len)
{
    return XXH3_64bits(w, len);
}

/* The checksum of the metadata: the header with its checksum fields zeroed,
 * then every byte after it up to the norms (words, offsets, hash and the
 * padding between them). */
uint64_t akv_vocab_meta_checksum(const uint8_t *base, const struct vocab_hdr *h)
{
    struct vocab_hdr copy;
    XXH3_state_t *st = XXH3_createState();
    uint64_t sum;

    if (st == NULL)
        return 0;
    memcpy(&copy, h, sizeof copy);
    copy.meta_checksum = 0;
    copy.data_checksum = 0;
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, &copy, sizeof copy);
    XXH3_64bits_update(st, base + VOCAB_HDR_SIZE, h->norms_off - VOCAB_HDR_SIZE);
    sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return sum;
}

/* The checksum of everything from the norms to the end of the file. */
uint64_t akv_vocab_data_checksum(const uint8_t *base, const struct vocab_hdr *h)
{
    return XXH3_64bits(base + h->norms_off, h->file_size - h->norms_off);
}

/* The one bounds check every section goes through: [off, off + len) is
 * aligned, starts at or after *end (where the previous section ended) and
 * lies inside a file of size bytes. On success *end moves past it. Written
 * so that nothing can wrap: off <= size and len <= size - off are checked
 * before off + len is formed. */
static bool section_ok(uint64_t off, uint64_t len, uint64_t align, uint64_t *end, uint64_t size)
{
    if (off % align != 0 || off < *end || off > size || len > size - off)
        return false;
    *end = off + len;
    return true;
}

/* Validates the buffer and fills v's section pointers. */
static int vocab_attach(struct akv_vocab *v, const uint8_t *base, size_t size, const char *name,
                        unsigned flags, char *err, size_t errlen)
{
    struct vocab_hdr h;
    uint64_t n, mat_bytes, sk_bytes, tail_bytes, rot_bytes;

    if (size < VOCAB_HDR_SIZE) {
        akv_errf(err, errlen, "%s: too small for a vocabulary file (%zu bytes)", name, size);
        return -EINVAL;
    }
    memcpy(&h, base, sizeof h);
    if (memcmp(h.magic, VOCAB_MAGIC, 8) != 0) {
        akv_errf(err, errlen,
                 "%s: not an attnkv vocabulary file (bad magic); convert word vectors with "
                 "attnkv-import",
                 name);
        return -EINVAL;
    }
    if (h.byteorder == VOCAB_BYTEORDER_SWAPPED) {
        akv_errf(err, errlen, "%s: written on a machine of the other byte order; re-import it here",
                 name);
        return -EINVAL;
    }
    if (h.byteorder != VOCAB_BYTEORDER) {
        akv_errf(err, errlen, "%s: corrupt header (byte-order tag 0x%08x)", name, h.byteorder);
        return -EINVAL;
    }
    if (h.version != VOCAB_VERSION) {
        akv_errf(err, errlen,
                 "%s: format version %u, this build reads version %u; re-import it "
                 "(attnkv-import, or scripts/fetch-vectors for the default vectors)",
                 name, h.version, VOCAB_VERSION);
        return -EINVAL;
    }
    if (h.elemtype != VOCAB_ELEM_F32 || h.hashfn != VOCAB_HASH_XXH3 || h.flags != 0) {
        akv_errf(err, errlen, "%s: unsupported element type, hash or flags (%u, %u, %u)", name,
                 h.elemtype, h.hashfn, h.flags);
        return -EINVAL;
    }
    if (h.file_size != size) {
        akv_errf(err, errlen, "%s: %s: %zu bytes, the header says %llu", name,
                 size < h.file_size ? "truncated" : "trailing bytes", size,
                 (unsigned long long)h.file_size);
        return -EINVAL;
    }
    n = h.count;
    if (n == 0 || n >= UINT32_MAX || h.dim == 0 || h.dim > AKV_DIM_MAX) {
        akv_errf(err, errlen, "%s: corrupt header (count %llu, dim %u)", name,
                 (unsigned long long)n, h.dim);
        return -EINVAL;
    }
    mat_bytes = n * h.dim * sizeof(float); /* n < 2^32 and dim <= 4096: no overflow */
    if (h.head_groups == 0 || h.head_groups > akv_sketch_groups(h.dim) ||
        !(h.rot_eps >= 0 && h.rot_eps <= 1e-6)) {
        akv_errf(err, errlen, "%s: corrupt header (sketch head %u, rotation error %g)", name,
                 h.head_groups, h.rot_eps);
        return -EINVAL;
    }
    sk_bytes = akv_sketch_head_bytes(n, h.head_groups);
    tail_bytes = akv_sketch_tail_bytes(n, h.dim, h.head_groups);
    rot_bytes = (uint64_t)h.dim * h.dim * sizeof(double);
    /* The sections follow one another in this order, each inside the file,
     * and the matrix ends the file. Every size above is a product of n
     * (< 2^32), dim (<= AKV_DIM_MAX) and a small constant, so none wraps;
     * hash_slots is capped before it is multiplied. */
    {
        uint64_t end = VOCAB_HDR_SIZE;
        bool ok = h.words_off == VOCAB_HDR_SIZE && h.words_len >= n * 2 &&
                  section_ok(h.words_off, h.words_len, 1, &end, size) &&
                  section_ok(h.offs_off, (n + 1) * 8, 8, &end, size) && h.hash_slots >= n + 1 &&
                  h.hash_slots <= ((uint64_t)1 << 34) && (h.hash_slots & (h.hash_slots - 1)) == 0 &&
                  section_ok(h.hash_off, h.hash_slots * 4, 4, &end, size) &&
                  section_ok(h.norms_off, n * 4, 4, &end, size) &&
                  section_ok(h.sketch_off, sk_bytes, 64, &end, size) &&
                  section_ok(h.tail_off, tail_bytes, 64, &end, size) &&
                  (h.rot_off == 0 || (h.dim <= AKV_SKETCH_ROT_DIM_MAX &&
                                      section_ok(h.rot_off, rot_bytes, 64, &end, size))) &&
                  section_ok(h.matrix_off, mat_bytes, 64, &end, size) && end == size;
        if (!ok) {
            akv_errf(err, errlen, "%s: corrupt header (a section lies outside the file)", name);
            return -EINVAL;
        }
    }
    if (akv_vocab_meta_checksum(base, &h) != h.meta_checksum) {
        akv_errf(err, errlen, "%s: checksum mismatch in the header or word index (corrupt file)",
                 name);
        return -EINVAL;
    }
    /* The rotation is small and a damaged one would silently void every
     * bound, so it is checked at every open, not only with VERIFY. */
    if (h.rot_off != 0 && XXH3_64bits(base + h.rot_off, rot_bytes) != h.rot_checksum) {
        akv_errf(err, errlen, "%s: checksum mismatch in the sketch rotation (corrupt file)", name);
        return -EINVAL;
    }
    if ((flags & AKV_VOCAB_VERIFY) && akv_vocab_data_checksum(base, &h) != h.data_checksum) {
        akv_errf(err, errlen, "%s: checksum mismatch in the vectors (corrupt file)", name);
        return -EINVAL;
    }

    v->base = base;
    v->size = size;
    v->count = (size_t)n;
    v->dim = h.dim;
    v->words = (const char *)base + h.words_off;
    v->offs = (const uint64_t *)(const void *)(base + h.offs_off);
    v->hash = (const uint32_t *)(const void *)(base + h.hash_off);
    v->hash_mask = h.hash_slots - 1;
    v->norms = (const float *)(const void *)(base + h.norms_off);
    v->matrix = (const float *)(const void *)(base + h.matrix_off);
    v->sketch = base + h.sketch_off;
    v->sketch_tail = base + h.tail_off;
    v->rot = h.rot_off ? (const double *)(const void *)(base + h.rot_off) : NULL;
    v->rot_eps = h.rot_eps;
    v->head_groups = h.head_groups;

    /* The offsets must describe non-empty, NUL-terminated words without an
     * inner NUL: lookups and replies rely on that. The checksum makes damage
     * unlikely, but a hand-made file could still lie. */
    if (v->offs[0] != 0 || v->offs[n] != h.words_len) {
        akv_errf(err, errlen, "%s: corrupt word offsets", name);
        return -EINVAL;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a = v->offs[i], b = v->offs[i + 1];
        if (b <= a + 1 || b > h.words_len || v->words[b - 1] != '\0' ||
            memchr(v->words + a, '\0', b - a - 1) != NULL) {
            akv_errf(err, errlen, "%s: corrupt word %llu in the word list", name,
                     (unsigned long long)i);
            return -EINVAL;
        }
        if (b - a - 1 > v->word_max)
            v->word_max = (size_t)(b - a - 1);
    }
    return 0;
}

int akv_vocab_open_mem(struct akv_vocab **out, const void *buf, size_t len, const char *name,
                       unsigned flags, char *err, size_t errlen)
{
    struct akv_vocab *v = calloc(1, sizeof *v);
    int rc;

    *out = NULL;
    if (v == NULL)
        return -ENOMEM;
    rc = vocab_attach(v, buf, len, name ? name : "(memory)", flags, err, errlen);
    if (rc < 0) {
        free(v);
        return rc;
    }
    *out = v;
    return 0;
}

int akv_vocab_open_owned(struct akv_vocab **out, uint8_t *buf, size_t size, const char *name,
                         char *err, size_t errlen)
{
    int rc = akv_vocab_open_mem(out, buf, size, name, 0, err, errlen);

    if (rc == 0)
        (*out)->mapped = 2;
    return rc;
}

int akv_vocab_open(struct akv_vocab **out, const char *path, unsigned flags, char *err,
                   size_t errlen)
{
    struct akv_vocab *v = NULL;
    struct stat st;
    void *map = MAP_FAILED;
    int fd, rc;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        akv_errf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        akv_errf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        akv_errf(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size < (off_t)VOCAB_HDR_SIZE) {
        rc = -EINVAL;
        akv_errf(err, errlen, "%s: too small for a vocabulary file (%lld bytes)", path,
                 (long long)st.st_size);
        goto fail;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = -errno;
        akv_errf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        goto fail;
    }
    v = calloc(1, sizeof *v);
    if (v == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = vocab_attach(v, map, (size_t)st.st_size, path, flags, err, errlen);
    if (rc < 0)
        goto fail;
    v->mapped = 1;
    close(fd);
    *out = v;
    return 0;

fail:
    free(v);
    if (map != MAP_FAILED)
        munmap(map, (size_t)st.st_size);
    close(fd);
    return rc;
}

void akv_vocab_destroy(struct akv_vocab *v)
{
    if (v == NULL)
        return;
    if (v->mapped == 1)
        munmap((void *)(uintptr_t)v->base, v->size);
    else if (v->mapped == 2)
        free((void *)(uintptr_t)v->base);
    free(v);
}

size_t akv_vocab_count(const struct akv_vocab *v)
{
    return v->count;
}

uint32_t akv_vocab_dim(const struct akv_vocab *v)
{
    return v->dim;
}

const float *akv_vocab_matrix(const struct akv_vocab *v)
{
    return v->matrix;
}

const float *akv_vocab_norms(const struct akv_vocab *v)
{
    return v->norms;
}

const char *akv_vocab_word(const struct akv_vocab *v, uint32_t id, size_t *len)
{
    uint64_t a = v->offs[id];
    if (len != NULL)
        *len = (size_t)(v->offs[id + 1] - a - 1);
    return v->words + a;
}

const uint8_t *akv_vocab_sketch(const struct akv_vocab *v)
{
    return v->sketch;
}

const uint8_t *akv_vocab_sketch_tail(const struct akv_vocab *v)
{
    return v->sketch_tail;
}

const double *akv_vocab_sketch_rotation(const struct akv_vocab *v, double *eps, uint32_t *head)
{
    *eps = v->rot_eps;
    *head = v->head_groups;
    return v->rot;
}

void akv_vocab_checksums(const struct akv_vocab *v, uint64_t *meta, uint64_t *data)
{
    struct vocab_hdr h;

    memcpy(&h, v->base, sizeof(h));
    *meta = h.meta_checksum;
    *data = h.data_checksum;
}

const float *akv_vocab_vec(const struct akv_vocab *v, uint32_t id)
{
    return v->matrix + (size_t)id * v->dim;
}

size_t akv_vocab_bytes(const struct akv_vocab *v)
{
    return v->size;
}

int64_t akv_vocab_find_exact(const struct akv_vocab *v, const char *word, size_t len)
{
    uint64_t j = akv_vocab_hash_word(word, len) & v->hash_mask;

    /* The table has at least one empty slot (slots > count), so the probe
     * ends; the bound guards against a damaged index all the same. */
    for (uint64_t probes = 0; probes <= v->hash_mask; probes++) {
        uint32_t id = v->hash[j];
        size_t wl;
        const char *w;
        if (id == VOCAB_EMPTY)
            return -ENOENT;
        if (id < v->count) {
            w = akv_vocab_word(v, id, &wl);
            if (wl == len && memcmp(w, word, len) == 0)
                return id;
        }
        j = (j + 1) & v->hash_mask;
    }
    return -ENOENT;
}

/* Lowercases word into buf (Unicode full case mapping, libunistring).
 * Returns the length, or -EINVAL for invalid UTF-8 or when it does not fit. */
static long lowercase(const char *word, size_t len, char *buf, size_t cap)
{
    size_t outlen = cap;
    uint8_t *r;

    if (u8_check((const uint8_t *)word, len) != NULL)
        return -EINVAL;
    r = u8_tolower((const uint8_t *)word, len, NULL, NULL, (uint8_t *)buf, &outlen);
    if (r == NULL)
        return -EINVAL;
    if (r != (uint8_t *)buf) {
        /* libunistring allocates when the result does not fit in buf. */
        free(r);
        return -EINVAL;
    }
    return (long)outlen;
}

int64_t akv_vocab_find(const struct akv_vocab *v, const char *word, size_t len)
{
    char buf[AKV_WORD_MAX * 2];
    int64_t id;
    long n;

    /* Unicode lowercase is at least a third as long as its text (KELVIN
     * SIGN, 3 bytes, lowercases to "k"), so a text more than three times
     * as long as the longest word cannot be found: a long unknown token
     * costs no lowercasing (VOCAB EXISTS may ask about a thousand of
     * them). */
    if (len == 0 || len > 3 * v->word_max)
        return -ENOENT;
    id = akv_vocab_find_exact(v, word, len);
    if (id >= 0)
        return id;
    n = lowercase(word, len, buf, sizeof buf);
    if (n < 0)
        return n;
    if ((size_t)n == len && memcmp(buf, word, len) == 0)
        return -ENOENT;
    return akv_vocab_find_exact(v, buf, (size_t)n);
}

/* Keeps the lower of two ids (-1 = none). */
static void consider(const struct akv_vocab *v, const char *cand, size_t len, int64_t *best)
{
    int64_t id = akv_vocab_find_exact(v, cand, len);
    if (id >= 0 && (*best < 0 || id < *best))
        *best = id;
}

int64_t akv_vocab_suggest(const struct akv_vocab *v, const char *word, size_t len)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-'";
    enum { MAXW = 24 };
    char w[MAXW * 2], c[MAXW * 2 + 2];
    int64_t best = -1;
    long n = lowercase(word, len, w, sizeof w);

    /* Edit-distance-1 candidates: 54n + 25 hash probes for n letters, about
     * 12 us for a 7-letter word on GloVe 6B, 37 us at the MAXW cap (it runs
     * on the loop thread for every unknown word). Longer inputs are seldom
     * one typo away from a word and not worth it. */
    if (n <= 0 || n > MAXW)
        return -ENOENT;
    for (long i = 0; i < n; i++) { /* deletion */
        memcpy(c, w, (size_t)i);
        memcpy(c + i, w + i + 1, (size_t)(n - i - 1));
        if (n > 1)
            consider(v, c, (size_t)n - 1, &best);
    }
    for (long i = 0; i + 1 < n; i++) { /* transposition */
        memcpy(c, w, (size_t)n);
        c[i] = w[i + 1];
        c[i + 1] = w[i];
        consider(v, c, (size_t)n, &best);
    }
    for (long i = 0; i < n; i++) { /* substitution */
        memcpy(c, w, (size_t)n);
        for (const char *a = alphabet; *a; a++) {
            if (*a == w[i])
                continue;
            c[i] = *a;
            consider(v, c, (size_t)n, &best);
        }
    }
    for (long i = 0; i <= n; i++) { /* insertion */
        memcpy(c, w, (size_t)i);
        memcpy(c + i + 1, w + i, (size_t)(n - i));
        for (const char *a = alphabet; *a; a++) {
            c[i] = *a;
            consider(v, c, (size_t)n + 1, &best);
        }
    }
    return best >= 0 ? best : -ENOENT;
}
