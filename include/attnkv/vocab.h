/*
 * vocab.h - the vocabulary: the project's binary word-vector file, opened
 * read-only with mmap, and O(1) word lookup.
 *
 * File layout (version 2, all integers little-endian, see src/engine/vocab.c):
 *   header (256 bytes): magic "AKVVOCAB", version, byte-order tag, count, dim,
 *     element type, offsets and sizes of every section, checksums;
 *   words:   the words, each followed by a NUL byte, in vocabulary order;
 *   offsets: count+1 uint64 offsets into words;
 *   hash:    open-addressing table of uint32 word ids (UINT32_MAX = empty),
 *            keyed by XXH3-64 of the word's bytes;
 *   norms:   count float32 L2 norms;
 *   sketch:  an int8 copy of the matrix with per-row bounds (src/engine/sketch.h),
 *            which the ranking scan reads instead of the matrix;
 *   matrix:  count x dim float32, row-major, 64-byte aligned.
 *
 * Threading: an opened vocabulary is immutable, so any thread may call the
 * read functions at once. Open and destroy belong to one owner.
 */
#ifndef ATTNKV_VOCAB_H
#define ATTNKV_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "attnkv/vectab.h"

struct akv_vocab;

/* Flags for akv_vocab_open. */
enum {
    /* Also check the checksum of the matrix and norms (reads every page). */
    AKV_VOCAB_VERIFY = 1u << 0,
};

/* Maps the binary vocabulary file at path read-only and validates its header
 * and index sections (never trusting an offset or size it has not checked).
 * On success *out owns the mapping. Returns 0 or a negative errno, with a
 * message naming the file in err. */
int akv_vocab_open(struct akv_vocab **out, const char *path, unsigned flags, char *err,
                   size_t errlen);

/* Validates and opens a vocabulary held in memory. The buffer is borrowed: it
 * must stay valid and unchanged until akv_vocab_destroy. It must be 64-byte
 * aligned for the matrix to be aligned (it is still read correctly if not).
 * name is used in messages. Used by tests and fuzzers. */
int akv_vocab_open_mem(struct akv_vocab **out, const void *buf, size_t len, const char *name,
                       unsigned flags, char *err, size_t errlen);

/* Builds a vocabulary directly from a table (serialised into memory the
 * vocabulary owns). The table may be freed afterwards. */
int akv_vocab_from_table(struct akv_vocab **out, const struct akv_vectab *t, char *err,
                         size_t errlen);

/* Writes t as a binary vocabulary file: to a temporary file beside path,
 * fsync'd, then renamed over path, so a reader never sees half a file.
 * Returns 0 or a negative errno with a message in err. */
int akv_vocab_write(const struct akv_vectab *t, const char *path, char *err, size_t errlen);

/* Unmaps/frees. NULL is a no-op. */
void akv_vocab_destroy(struct akv_vocab *v);

size_t akv_vocab_count(const struct akv_vocab *v);
uint32_t akv_vocab_dim(const struct akv_vocab *v);
/* The row-major count x dim matrix and the per-row L2 norms. */
const float *akv_vocab_matrix(const struct akv_vocab *v);
const float *akv_vocab_norms(const struct akv_vocab *v);
/* The int8 sketch sections (layout in src/engine/sketch.h): head (codes of the
 * head groups and row information) and tail. */
const uint8_t *akv_vocab_sketch(const struct akv_vocab *v);
const uint8_t *akv_vocab_sketch_tail(const struct akv_vocab *v);
/* The sketch's rotation (dim x dim doubles, or NULL when unrotated), with
 * its orthogonality error bound and the number of head groups. */
const double *akv_vocab_sketch_rotation(const struct akv_vocab *v, double *eps, uint32_t *head);
/* Word id as a NUL-terminated string; *len (if not NULL) gets its length. */
const char *akv_vocab_word(const struct akv_vocab *v, uint32_t id, size_t *len);
const float *akv_vocab_vec(const struct akv_vocab *v, uint32_t id);
/* Size in bytes of the file or buffer behind the vocabulary. */
size_t akv_vocab_bytes(const struct akv_vocab *v);
/* The file's two checksums, as its header records them (XXH3-64 of the
 * header and word index, and of the norms, sketch and matrix). */
void akv_vocab_checksums(const struct akv_vocab *v, uint64_t *meta, uint64_t *data);

/* Looks a word up: the exact bytes first, then their Unicode lowercase (the
 * GloVe 6B vocabulary is uncased). Returns the id (>= 0) or -ENOENT; -EINVAL
 * for bytes that are not valid UTF-8 when the exact lookup failed. O(1):
 * a text more than three times as long as the vocabulary's longest word is
 * -ENOENT at once. */
int64_t akv_vocab_find(const struct akv_vocab *v, const char *word, size_t len);

/* Exact-bytes lookup only. Returns the id or -ENOENT. */
int64_t akv_vocab_find_exact(const struct akv_vocab *v, const char *word, size_t len);

/* For a word that is not in the vocabulary, the most frequent (lowest id)
 * vocabulary word one edit away (insertion, deletion, substitution or
 * transposition of a letter or digit), after lowercasing; words of more
 * than 24 bytes get none (the cost grows with the length). Returns its id
 * or -ENOENT when there is none. */
int64_t akv_vocab_suggest(const struct akv_vocab *v, const char *word, size_t len);

#endif
