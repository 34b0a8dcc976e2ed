/*
 * vocab-write.c - writing the binary vocabulary file (vocab-format.h) from
 * a loaded vector table: the words, their hash index, the norms, the sketch
 * (sketch.h) and the matrix, with both checksums. Only the importer
 * (tools/import.c) and the tests write files; the daemon only reads them.
 *
 * akv_vocab_write writes a temporary file beside the target, fsyncs it and
 * renames it into place, so a reader never sees half a file.
 *
 * Threading: none; the table is read only.
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

/* Serialises t into a fresh 64-byte-aligned buffer of *size bytes. */
static int vocab_serialize(const struct akv_vectab *t, uint8_t **out, size_t *size, char *err,
                           size_t errlen)
{
    struct vocab_hdr h;
    uint64_t n = t->count, slots = 1;
    uint8_t *buf;
    uint64_t *offs;
    uint32_t *hash;
    float *norms;
    double *rot = NULL;

    if (n == 0 || n >= UINT32_MAX) {
        akv_errf(err, errlen, "cannot write a vocabulary of %llu words", (unsigned long long)n);
        return -EINVAL;
    }
    while (slots < 2 * n)
        slots <<= 1;

    memset(&h, 0, sizeof h);
    memcpy(h.magic, VOCAB_MAGIC, 8);
    h.version = VOCAB_VERSION;
    h.byteorder = VOCAB_BYTEORDER;
    h.count = n;
    h.dim = t->dim;
    h.elemtype = VOCAB_ELEM_F32;
    h.hashfn = VOCAB_HASH_XXH3;
    h.words_off = VOCAB_HDR_SIZE;
    h.words_len = t->words_len;
    h.offs_off = akv_vocab_align_up(h.words_off + h.words_len, 8);
    h.hash_off = h.offs_off + (n + 1) * 8;
    h.hash_slots = slots;
    h.norms_off = h.hash_off + slots * 4;
    rot = malloc((size_t)t->dim * t->dim * sizeof *rot);
    if (rot == NULL || !akv_sketch_plan(t->vecs, n, t->dim, rot, &h.rot_eps, &h.head_groups)) {
        free(rot);
        rot = NULL;
        h.head_groups = akv_sketch_groups(t->dim);
        h.rot_eps = 0;
    }
    h.sketch_off = akv_vocab_align_up(h.norms_off + n * 4, 64);
    h.tail_off = akv_vocab_align_up(h.sketch_off + akv_sketch_head_bytes(n, h.head_groups), 64);
    h.matrix_off =
        akv_vocab_align_up(h.tail_off + akv_sketch_tail_bytes(n, t->dim, h.head_groups), 64);
    if (rot != NULL) {
        h.rot_off = h.matrix_off;
        h.matrix_off =
            akv_vocab_align_up(h.rot_off + (uint64_t)t->dim * t->dim * sizeof(double), 64);
    }
    h.file_size = h.matrix_off + n * t->dim * 4;

    buf = aligned_alloc(64, akv_vocab_align_up(h.file_size, 64));
    if (buf == NULL) {
        free(rot);
        akv_errf(err, errlen, "out of memory serialising %llu words", (unsigned long long)n);
        return -ENOMEM;
    }
    memset(buf, 0, akv_vocab_align_up(h.file_size, 64));
    memcpy(buf + h.words_off, t->words, t->words_len);
    offs = (uint64_t *)(void *)(buf + h.offs_off);
    for (uint64_t i = 0; i < n; i++)
        offs[i] = t->offs[i];
    offs[n] = t->words_len;

    hash = (uint32_t *)(void *)(buf + h.hash_off);
    memset(hash, 0xff, slots * 4);
    for (uint64_t i = 0; i < n; i++) {
        const char *w = t->words + t->offs[i];
        size_t len = strlen(w);
        uint64_t j = akv_vocab_hash_word(w, len) & (slots - 1);
        while (hash[j] != VOCAB_EMPTY)
            j = (j + 1) & (slots - 1);
        hash[j] = (uint32_t)i;
    }

    norms = (float *)(void *)(buf + h.norms_off);
    memcpy(buf + h.matrix_off, t->vecs, n * t->dim * sizeof(float));
    for (uint64_t i = 0; i < n; i++) {
        const float *x = t->vecs + i * t->dim;
        double ss = 0;
        for (uint32_t d = 0; d < t->dim; d++)
            ss += (double)x[d] * x[d];
        norms[i] = (float)sqrt(ss);
    }
    if (h.rot_off != 0) {
        memcpy(buf + h.rot_off, rot, (size_t)t->dim * t->dim * sizeof *rot);
        h.rot_checksum = XXH3_64bits(buf + h.rot_off, (size_t)t->dim * t->dim * sizeof *rot);
    }
    akv_sketch_build(t->vecs, n, t->dim, h.rot_off ? rot : NULL, h.head_groups, buf + h.sketch_off,
                     buf + h.tail_off);
    free(rot);
    memcpy(buf, &h, sizeof h);
    h.meta_checksum = akv_vocab_meta_checksum(buf, &h);
    h.data_checksum = akv_vocab_data_checksum(buf, &h);
    memcpy(buf, &h, sizeof h);
    *out = buf;
    *size = h.file_size;
    return 0;
}

int akv_vocab_from_table(struct akv_vocab **out, const struct akv_vectab *t, char *err,
                         size_t errlen)
{
    uint8_t *buf;
    size_t size;
    int rc;

    *out = NULL;
    rc = vocab_serialize(t, &buf, &size, err, errlen);
    if (rc < 0)
        return rc;
    rc = akv_vocab_open_owned(out, buf, size, "(table)", err, errlen);
    if (rc < 0)
        free(buf);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int akv_vocab_write(const struct akv_vectab *t, const char *path, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t size, plen = strlen(path);
    char *tmp = NULL, *dir = NULL;
    int fd = -1, rc;

    rc = vocab_serialize(t, &buf, &size, err, errlen);
    if (rc < 0)
        return rc;
    tmp = malloc(plen + 16);
    dir = strdup(path);
    if (tmp == NULL || dir == NULL) {
        rc = -ENOMEM;
        akv_errf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        akv_errf(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(errno));
        goto fail;
    }
    rc = write_all(fd, buf, size);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (rc == 0 && fchmod(fd, 0644) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    fd = -1;
    if (rc < 0) {
        akv_errf(err, errlen, "%s: write: %s", tmp, strerror(-rc));
        unlink(tmp);
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        rc = -errno;
        akv_errf(err, errlen, "%s: rename: %s", path, strerror(errno));
        unlink(tmp);
        goto fail;
    }
    /* Make the rename itself durable. */
    {
        char *slash = strrchr(dir, '/');
        int dfd;
        if (slash == NULL)
            strcpy(dir, ".");
        else if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    rc = 0;
fail:
    free(buf);
    free(tmp);
    free(dir);
    return rc;
}
