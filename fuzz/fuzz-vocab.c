/*
 * fuzz-vocab.c - libFuzzer target for the binary vocabulary reader.
 *
 * The input is copied into a 64-byte-aligned buffer (as a mapped file would
 * be) and opened with akv_vocab_open_mem, with and without AKV_VOCAB_VERIFY.
 * Checksums make random bytes fail early, so the target also re-seals the
 * input: it recomputes both checksums over whatever the fuzzer produced and
 * opens that too, which lets the fuzzer reach the section and word-offset
 * validation behind them. A third pass aims at that validation directly:
 * a hash of the input chooses one of the header's offset and size fields
 * and a 64-bit value for it (values near 2^64 included), written in before
 * re-sealing; started from the valid files of fuzz/corpus/vocab, this finds
 * a section check that can wrap within seconds.
 * Whatever opens must then answer lookups, word accessors and a ranking
 * without faulting.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "attnkv/query.h"
#include "attnkv/vocab.h"
#include "vocabseal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

/* The buffer starts right after a PROT_NONE page and ends before another,
 * as a mapped file has nothing readable around it: a read outside it then
 * faults even inside libxxhash, which ASan does not instrument (that is how
 * a wrapping rot_off once read 64 bytes before the file). */
static uint8_t *guarded_alloc(size_t size, size_t *maplen)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = (size + 64 + page - 1) / page * page;
    uint8_t *m;

    *maplen = body + 2 * page;
    m = mmap(NULL, *maplen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (mprotect(m + page, body, PROT_READ | PROT_WRITE) < 0) {
        munmap(m, *maplen);
        return NULL;
    }
    return m + page;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t maplen;
    uint8_t *buf = guarded_alloc(size, &maplen);
    struct akv_vocab *v = NULL;
    char err[512];

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1 && !vs_reseal(buf, size))
            continue;
        if (pass == 2) {
            /* One header field gets a value chosen by a hash of the whole
             * input, so that every mutation tries another: near 2^64
             * (aligned, or not), small, or anything. */
            static const unsigned fields[] = {
                VS_COUNT,     VS_DIM,        VS_WORDS_OFF,  VS_WORDS_LEN, VS_OFFS_OFF,
                VS_HASH_OFF,  VS_HASH_SLOTS, VS_NORMS_OFF,  VS_MATRIX_OFF, VS_SKETCH_OFF,
                VS_TAIL_OFF,  VS_ROT_OFF};
            uint64_t h = XXH3_64bits(data, size), val;
            switch ((h >> 8) & 3) {
            case 0:
                val = (uint64_t)0 - ((h >> 16) & 0x3ff) * 64;
                break;
            case 1:
                val = (uint64_t)0 - ((h >> 16) & 0xffff);
                break;
            case 2:
                val = (h >> 16) & 0xfffff;
                break;
            default:
                val = h * 0x9e3779b97f4a7c15u;
                break;
            }
            memcpy(buf, data, size);
            if (size < VS_HDR)
                break;
            vs_put64(buf + fields[h % (sizeof(fields) / sizeof(fields[0]))], val);
            if (!vs_reseal(buf, size))
                break;
        }
        for (unsigned flags = 0; flags <= AKV_VOCAB_VERIFY; flags += AKV_VOCAB_VERIFY) {
            if (akv_vocab_open_mem(&v, buf, size, "fuzz", flags, err, sizeof err) == 0) {
                exercise(v);
                akv_vocab_destroy(v);
            } else if (strncmp(err, "fuzz: ", 6) != 0) {
                abort(); /* every refusal names the file */
            }
        }
    }
    munmap(buf - (size_t)sysconf(_SC_PAGESIZE), maplen);
    return 0;
}
