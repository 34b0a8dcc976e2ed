/*
 * slowlog.c - the slow log (see slowlog.h).
 *
 * Design: a doubly linked list, newest at the head, so SLOWLOG GET walks
 * from the head and trimming cuts at the tail; each entry is one
 * allocation holding the entry, its argument slices and their bytes.
 */
#include "server/slowlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void akv_slowlog_init(struct akv_slowlog *sl)
{
    memset(sl, 0, sizeof(*sl));
    sl->next_id = 0;
}

void akv_slowlog_entry_free(struct akv_slowlog_entry *e)
{
    free(e);
}

void akv_slowlog_reset(struct akv_slowlog *sl)
{
    struct akv_slowlog_entry *e = sl->newest;

    while (e) {
        struct akv_slowlog_entry *next = e->older;
        free(e);
        e = next;
    }
    sl->newest = sl->oldest = NULL;
    sl->len = 0;
    sl->mem = 0;
}

/* The text that replaces what was cut: "... (N more bytes)" etc. */
#define NOTE_MAX 48

struct akv_slowlog_entry *akv_slowlog_entry_new(size_t argc, const struct akv_slice *argv,
                                                const char *peer)
{
    size_t shown = argc > AKV_SLOWLOG_ARGC_MAX ? AKV_SLOWLOG_ARGC_MAX : argc;
    size_t bytes = 0, i;
    struct akv_slowlog_entry *e;
    char *p;

    /* Room for each argument as shown: its bytes, or its first
     * AKV_SLOWLOG_ARG_MAX and a note, or (the last of a cut list) a note. */
    for (i = 0; i < shown; i++) {
        if (argc > shown && i == shown - 1)
            bytes += NOTE_MAX;
        else if (argv[i].len > AKV_SLOWLOG_ARG_MAX)
            bytes += AKV_SLOWLOG_ARG_MAX + NOTE_MAX;
        else
            bytes += argv[i].len;
    }
    e = malloc(sizeof(*e) + shown * sizeof(struct akv_slice) + bytes);
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    e->size = sizeof(*e) + shown * sizeof(struct akv_slice) + bytes;
    e->argv = (struct akv_slice *)(void *)(e + 1);
    e->argc = shown;
    p = (char *)(e->argv + shown);
    for (i = 0; i < shown; i++) {
        const struct akv_slice *a = &argv[i];
        size_t n = a->len > AKV_SLOWLOG_ARG_MAX ? AKV_SLOWLOG_ARG_MAX : a->len;
        int w = 0;

        if (argc > shown && i == shown - 1) {
            n = 0;
            w = snprintf(p, NOTE_MAX, "... (%zu more arguments)", argc - shown + 1);
        } else {
            memcpy(p, a->p, n);
            if (a->len > n)
                w = snprintf(p + n, NOTE_MAX, "... (%zu more bytes)", a->len - n);
        }
        e->argv[i].p = p;
        e->argv[i].len = n + (size_t)(w > 0 ? w : 0);
        p += e->argv[i].len;
    }
    snprintf(e->peer, sizeof(e->peer), "%s", peer ? peer : "");
    return e;
}

void akv_slowlog_trim(struct akv_slowlog *sl, size_t max_len)
{
    while (sl->len > max_len || sl->mem > AKV_SLOWLOG_MEM_MAX) {
        struct akv_slowlog_entry *e = sl->oldest;
        sl->oldest = e->newer;
        if (sl->oldest)
            sl->oldest->older = NULL;
        else
            sl->newest = NULL;
        sl->mem -= e->size;
        free(e);
        sl->len--;
    }
}

void akv_slowlog_push(struct akv_slowlog *sl, struct akv_slowlog_entry *e, int64_t when,
                      uint64_t duration_us, size_t max_len)
{
    e->id = sl->next_id++;
    e->time = when;
    e->duration_us = duration_us;
    e->newer = NULL;
    e->older = sl->newest;
    if (sl->newest)
        sl->newest->newer = e;
    else
        sl->oldest = e;
    sl->newest = e;
    sl->len++;
    sl->mem += e->size;
    akv_slowlog_trim(sl, max_len);
}
