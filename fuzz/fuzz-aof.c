/*
 * fuzz-aof.c - libFuzzer target for akv_aof_parse, the append-only file
 * parser that the daemon replays with and attnkv-check-aof checks with.
 *
 * The input is a whole file. Each record handed to the callback must lie
 * inside the input and re-encode (akv_aof_encode) to exactly the bytes it
 * was parsed from; the verdict must be consistent (OK covers every byte,
 * TORN and CORRUPT point at good_end inside the input); and the prefix up to
 * good_end, which is what "attnkv-check-aof --fix" and the daemon's torn-tail
 * cut keep, must parse as a good file with the same records.
 *
 * The same file is linked into test-aof, which replays fuzz/corpus/aof and
 * fuzz/regression/aof through LLVMFuzzerTestOneInput on every "meson test".
 *
 * Threading: none. A broken invariant prints what broke and aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist/aof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct ctx {
    const uint8_t *data;
    size_t size;
    size_t next; /* where the next record must start */
    size_t n;
};

static int on_record(void *arg, const struct akv_aof_record *r)
{
    struct ctx *c = arg;
    const char *lo = (const char *)c->data, *hi = lo + c->size;
    uint8_t *re;

    CHECK(r->offset == c->next);
    CHECK(r->size >= AKV_AOF_REC_HEADER && r->offset + r->size <= c->size);
    CHECK(r->type == AKV_AOF_SET || r->type == AKV_AOF_DEL || r->type == AKV_AOF_FLUSHALL);
    if (r->type != AKV_AOF_FLUSHALL) {
        CHECK(r->key >= lo && r->klen > 0 && r->key + r->klen <= hi);
    }
    if (r->type == AKV_AOF_SET) {
        CHECK(r->val >= lo && r->val + r->vlen <= hi);
    }
    CHECK(akv_aof_record_size(r->type, r->klen, r->vlen) == r->size);
    re = malloc(r->size);
    CHECK(re != NULL);
    CHECK(akv_aof_encode(re, r->type, r->key, r->klen, r->val, r->vlen) == r->size);
    CHECK(memcmp(re, c->data + r->offset, r->size) == 0);
    free(re);
    c->next = r->offset + r->size;
    c->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctx c = {data, size, AKV_AOF_FILE_HEADER, 0};
    struct akv_aof_result res, again;

    CHECK(akv_aof_parse(data, size, on_record, &c, &res) == 0);
    CHECK(res.records == c.n);
    CHECK(res.good_end <= size);
    CHECK(res.counts[AKV_AOF_SET] + res.counts[AKV_AOF_DEL] + res.counts[AKV_AOF_FLUSHALL] ==
          res.records);
    switch (res.status) {
    case AKV_AOF_OK:
        CHECK(size == 0 || res.good_end == size);
        break;
    case AKV_AOF_TORN:
    case AKV_AOF_CORRUPT:
        CHECK(res.bad_offset == res.good_end && res.bad_offset < size);
        CHECK(res.reason != NULL && res.reason[0] != '\0');
        break;
    default:
        CHECK(0);
    }
    if (res.records > 0) {
        CHECK(res.good_end == c.next);
    }
    /* What a repair keeps is a good file with the same records. */
    CHECK(akv_aof_parse(data, res.good_end, NULL, NULL, &again) == 0);
    CHECK(again.status == AKV_AOF_OK && again.records == res.records);
    return 0;
}
