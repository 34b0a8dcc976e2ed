/*
 * fuzz-vecload.c - libFuzzer target for the word-vector loaders.
 *
 * The first input byte chooses the options (bits 0-1: the format, with
 * AKV_VECFMT_AUTO = 0; bits 2-3: max_bad 0..3; bits 4-5: the warning quota
 * 1..4) and the rest is handed to akv_vecload_mem, plain or gzip as it comes.
 * Besides crashes, leaks and undefined behaviour, it checks what callers
 * rely on: a failed load leaves a zeroed table and a "fuzz:line: " message;
 * a successful one holds at least one row, only finite values and only
 * valid, non-empty UTF-8 words, and its counts add up.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "attnkv/vecload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

static void check_table(const struct akv_vectab *t, const struct akv_vecload_stats *st)
{
    uint64_t skipped = 0;

    for (int k = 0; k < AKV_SKIP_NKINDS; k++)
        skipped += st->skipped[k];
    if (t->count == 0 || t->count != st->kept || st->rows != st->kept + skipped)
        abort();
    if (t->dim == 0 || t->dim > AKV_DIM_MAX || st->format == AKV_VECFMT_AUTO)
        abort();
    for (size_t i = 0; i < t->count; i++) {
        const char *w = akv_vectab_word(t, i);
        size_t len = strlen(w);
        if (len == 0 || len > AKV_WORD_MAX || u8_check((const uint8_t *)w, len))
            abort();
    }
    for (size_t i = 0; i < t->count * t->dim; i++)
        if (!isfinite(t->vecs[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct akv_vecload_opts o = {0};
    struct akv_vecload_stats st;
    struct akv_vectab t, zero;
    char err[256];
    int r;

    if (size == 0)
        return 0;
    /* Warnings are formatted for real (the quoting code runs) but dropped. */
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    o.format = (enum akv_vecfmt)(data[0] & 3);
    o.max_bad = (data[0] >> 2) & 3;
    o.max_diag_per_kind = 1u + ((data[0] >> 4) & 3);
    o.diag = devnull;

    r = akv_vecload_mem(data + 1, size - 1, "fuzz", &o, &t, &st, err, sizeof(err));
    if (r < 0) {
        memset(&zero, 0, sizeof(zero));
        if (memcmp(&t, &zero, sizeof(t)) != 0 || strncmp(err, "fuzz:", 5) != 0)
            abort();
        return 0;
    }
    check_table(&t, &st);
    akv_vectab_fini(&t);
    return 0;
}
