/*
 * fuzz-embed.c - libFuzzer target for the tokenizer and embedding
 * (akv_embed_words_opts, akv_embed_text_opts) on a small vocabulary with
 * GloVe's conventions, under both unknown-word policies and both
 * weightings; the invariants are tests/unit/embedcheck.h's.
 *
 * Threading: none. A broken invariant aborts.
 */
#include <stddef.h>
#include <stdint.h>

#include "embedcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct akv_vocab *v;

    if (!v)
        v = ec_open();
    ec_check(v, data, size);
    return 0;
}
