/*
 * vocabseal.h - for tests and the vocab fuzzer: the vocabulary header's
 * field offsets (src/engine/vocab-format.h, struct vocab_hdr) and a re-sealer that
 * recomputes both checksums over a buffer the way the writer does, so that
 * a changed header reaches the section checks behind the checksums.
 */
#ifndef ATTNKV_VOCABSEAL_H
#define ATTNKV_VOCABSEAL_H

#include <stdint.h>
#include <string.h>

#include <xxhash.h>

enum {
    VS_COUNT = 16,
    VS_DIM = 24,
    VS_FILE_SIZE = 40,
    VS_WORDS_OFF = 48,
    VS_WORDS_LEN = 56,
    VS_OFFS_OFF = 64,
    VS_HASH_OFF = 72,
    VS_HASH_SLOTS = 80,
    VS_NORMS_OFF = 88,
    VS_MATRIX_OFF = 96,
    VS_META_SUM = 104,
    VS_DATA_SUM = 112,
    VS_SKETCH_OFF = 120,
    VS_TAIL_OFF = 128,
    VS_ROT_OFF = 136,
    VS_HDR = 256,
};

static inline uint64_t vs_get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void vs_put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* Recomputes both checksums when the header's file size and norms offset
 * allow it; returns 0 if they do not. */
static inline int vs_reseal(uint8_t *buf, size_t size)
{
    uint8_t hdr[VS_HDR];
    uint64_t norms, sum;
    XXH3_state_t *st;

    if (size < VS_HDR)
        return 0;
    norms = vs_get64(buf + VS_NORMS_OFF);
    if (vs_get64(buf + VS_FILE_SIZE) != size || norms < VS_HDR || norms > size)
        return 0;
    memcpy(hdr, buf, VS_HDR);
    memset(hdr + VS_META_SUM, 0, 16);
    st = XXH3_createState();
    if (st == NULL)
        return 0;
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, hdr, VS_HDR);
    XXH3_64bits_update(st, buf + VS_HDR, norms - VS_HDR);
    sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    vs_put64(buf + VS_META_SUM, sum);
    vs_put64(buf + VS_DATA_SUM, XXH3_64bits(buf + norms, size - norms));
    return 1;
}

#endif
