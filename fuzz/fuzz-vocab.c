/*
 * fuzz-vocab.c - libFuzzer target for the binary vocabulary reader.
 *
 * The input is copied into a 64-byte-aligned buffer (as a mapped file would
 * be) and opened with akv_vocab_open_mem, with and without AKV_VOCAB_VERIFY.
 * Checksums make random bytes fail early, so the target also re-seals the
 * input: it recomputes both checksums over whatever the fuzzer produced and
 * opens that too, which lets the fuzzer reach the section and word-offset
 * validation behind them. Whatever opens must then answer lookups, word
 * accessors and a ranking without faulting.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "attnkv/query.h"
#include "attnkv/vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Header offsets of the fields the re-sealing needs (src/vocab.c). */
enum { OFF_FILE_SIZE = 40, OFF_NORMS = 88, OFF_META_SUM = 104, OFF_DATA_SUM = 112, HDR = 256 };

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Recomputes both checksums the way the writer does, when the header's
 * sizes allow it; returns 0 if it could not. */
static int reseal(uint8_t *buf, size_t size)
{
    uint8_t hdr[HDR];
    uint64_t norms, sum;
    XXH3_state_t *st;

    if (size < HDR)
        return 0;
    norms = get64(buf + OFF_NORMS);
    if (get64(buf + OFF_FILE_SIZE) != size || norms < HDR || norms > size)
        return 0;
    memcpy(hdr, buf, HDR);
    memset(hdr + OFF_META_SUM, 0, 16);
    st = XXH3_createState();
    if (st == NULL)
        return 0;
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, hdr, HDR);
    XXH3_64bits_update(st, buf + HDR, norms - HDR);
    sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    memcpy(buf + OFF_META_SUM, &sum, 8);
    sum = XXH3_64bits(buf + norms, size - norms);
    memcpy(buf + OFF_DATA_SUM, &sum, 8);
    return 1;
}

static void exercise(const struct akv_vocab *v)
{
    static struct akv_query_result res;
    size_t n = akv_vocab_count(v), len;
    uint32_t dim = akv_vocab_dim(v);
    float q[AKV_DIM_MAX];

    for (size_t i = 0; i < n && i < 64; i++) {
        const char *w = akv_vocab_word(v, (uint32_t)i, &len);
        if (strlen(w) != len)
            abort(); /* validation guarantees NUL-terminated words of that length */
        /* A crafted but well-sealed index may not find the word: that is a
         * wrong answer, not a fault, so only the lookup's safety is tested. */
        (void)akv_vocab_find(v, w, len);
    }
    (void)akv_vocab_suggest(v, "rhombsu", 7);
    if (n <= 4096) {
        memcpy(q, akv_vocab_vec(v, 0), dim * sizeof(float));
        (void)akv_query_neighbors(v, q, AKV_METRIC_L2, 3, &res);
        (void)akv_query_neighbors(v, q, AKV_METRIC_COSINE, 3, &res);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = aligned_alloc(64, (size + 63) / 64 * 64 + 64);
    struct akv_vocab *v = NULL;
    char err[512];

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !reseal(buf, size))
            break;
        for (unsigned flags = 0; flags <= AKV_VOCAB_VERIFY; flags += AKV_VOCAB_VERIFY) {
            if (akv_vocab_open_mem(&v, buf, size, "fuzz", flags, err, sizeof err) == 0) {
                exercise(v);
                akv_vocab_destroy(v);
            } else if (strncmp(err, "fuzz: ", 6) != 0) {
                abort(); /* every refusal names the file */
            }
        }
    }
    free(buf);
    return 0;
}
