/*
 * fuzz-glob.c - libFuzzer target for the glob compiler and matcher.
 *
 * The first byte chooses nocase and where the input splits into a pattern
 * and a string. Every pattern up to AKV_GLOB_PATTERN_MAX compiles; each is
 * matched against the string and, when both are short, checked against the
 * reference matcher of tests/unit/globref.h. Longer patterns must be refused
 * with -E2BIG.
 *
 * Threading: none. A disagreement prints both and aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/glob.h"
#include "globref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct akv_glob *g;
    size_t split, plen, slen;
    int nocase, rc, hit;

    if (size < 1)
        return 0;
    nocase = data[0] & 1;
    split = size > 1 ? (data[0] >> 1) % size : 0;
    data++;
    size--;
    if (split > size)
        split = size;
    plen = split;
    slen = size - split;
    rc = akv_glob_compile((const char *)data, plen, nocase, &g);
    if (plen > AKV_GLOB_PATTERN_MAX) {
        if (rc != -E2BIG)
            abort();
        return 0;
    }
    if (rc < 0)
        abort();
    hit = akv_glob_exec(g, (const char *)data + plen, slen);
    if (plen <= 16 && slen <= 16 &&
        hit != ref_match(data, plen, data + plen, slen, nocase)) {
        fprintf(stderr, "pattern '%.*s' string '%.*s' nocase %d: compiled %d\n", (int)plen,
                (const char *)data, (int)slen, (const char *)data + plen, nocase, hit);
        abort();
    }
    if (akv_glob_matches_all(g) && !hit)
        abort();
    akv_glob_free(g);
    return 0;
}
