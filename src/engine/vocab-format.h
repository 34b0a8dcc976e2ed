/*
 * vocab-format.h - the binary vocabulary file's layout, shared by the reader
 * (vocab.c) and the writer (vocab-write.c). docs/vocab-format.md describes
 * it; vocab.c's top comment gives the sections in order.
 *
 * Private to src/engine/.
 */
#ifndef ATTNKV_VOCAB_FORMAT_H
#define ATTNKV_VOCAB_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "attnkv/vocab.h"

#define VOCAB_MAGIC "AKVVOCAB"
#define VOCAB_VERSION 2u
#define VOCAB_BYTEORDER 0x01020304u
#define VOCAB_BYTEORDER_SWAPPED 0x04030201u
#define VOCAB_ELEM_F32 1u
#define VOCAB_HASH_XXH3 1u
#define VOCAB_HDR_SIZE 256u
#define VOCAB_EMPTY UINT32_MAX

struct vocab_hdr {
    char magic[8];
    uint32_t version;
    uint32_t byteorder;
    uint64_t count;
    uint32_t dim;
    uint32_t elemtype;
    uint32_t hashfn;
    uint32_t flags;
    uint64_t file_size;
    uint64_t words_off;
    uint64_t words_len;
    uint64_t offs_off;
    uint64_t hash_off;
    uint64_t hash_slots;
    uint64_t norms_off;
    uint64_t matrix_off;
    uint64_t meta_checksum;
    uint64_t data_checksum;
    uint64_t sketch_off;  /* the sketch's head section, see sketch.h */
    uint64_t tail_off;    /* the sketch's tail section */
    uint64_t rot_off;     /* the sketch's rotation (dim x dim doubles), 0: none */
    double rot_eps;       /* >= |I - rot' rot| */
    uint32_t head_groups; /* groups in the sketch's head */
    uint32_t pad;
    uint64_t rot_checksum; /* XXH3-64 of the rotation, checked at every open */
    uint8_t reserved[VOCAB_HDR_SIZE - 168];
};

_Static_assert(sizeof(struct vocab_hdr) == VOCAB_HDR_SIZE, "header must be 256 bytes");

/* Rounds x up to a multiple of a (a power of two). */
uint64_t akv_vocab_align_up(uint64_t x, uint64_t a);

/* The word hash of the file's hash section (XXH3-64, unseeded: it is part
 * of the format). */
uint64_t akv_vocab_hash_word(const char *w, size_t len);

/* The checksum of the metadata: the header with its checksum fields zeroed,
 * then every byte after it up to the norms (words, offsets, hash and the
 * padding between them); 0 when out of memory. */
uint64_t akv_vocab_meta_checksum(const uint8_t *base, const struct vocab_hdr *h);

/* The checksum of everything from the norms to the end of the file. */
uint64_t akv_vocab_data_checksum(const uint8_t *base, const struct vocab_hdr *h);

/* akv_vocab_open_mem on a malloc'd buffer that the vocabulary then owns
 * (freed by akv_vocab_destroy; not on failure). */
int akv_vocab_open_owned(struct akv_vocab **out, uint8_t *buf, size_t size, const char *name,
                         char *err, size_t errlen);

#endif
