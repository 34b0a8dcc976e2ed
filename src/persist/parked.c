/*
 * parked.c - the table of text-only entries (see parked.h).
 */
#include "persist/parked.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <xxhash.h>

/* The hash is of the key alone, so that SWAPDB need only relabel. */
static struct akv_parked_ent **link_of(struct akv_parked *t, uint32_t db, const char *key,
                                       size_t klen, uint64_t h)
{
    struct akv_parked_ent **l = &t->b[h & (t->nb - 1)];

    while (*l && !((*l)->hash == h && (*l)->db == db && (*l)->klen == klen &&
                   memcmp((*l)->text, key, klen) == 0))
        l = &(*l)->next;
    return l;
}

int akv_parked_del(struct akv_parked *t, uint32_t db, const char *key, size_t klen)
{
    struct akv_parked_ent **l, *e;

    if (t->n == 0)
        return 0;
    l = link_of(t, db, key, klen, XXH3_64bits_withSeed(key, klen, t->seed));
    if (!*l)
        return 0;
    e = *l;
    *l = e->next;
    free(e);
    t->n--;
    return 1;
}

int akv_parked_put(struct akv_parked *t, uint32_t db, const char *key, size_t klen, const char *val,
                   size_t vlen, uint64_t expire, int payload)
{
    uint64_t h;
    struct akv_parked_ent *e, **l;

    if (t->nb == 0 && getrandom(&t->seed, sizeof t->seed, GRND_NONBLOCK) != (ssize_t)sizeof t->seed)
        t->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)t;
    h = XXH3_64bits_withSeed(key, klen, t->seed);
    if (t->n >= t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        struct akv_parked_ent **b = calloc(nb, sizeof(*b));
        if (!b)
            return -ENOMEM;
        for (size_t i = 0; i < t->nb; i++) {
            while (t->b[i]) {
                e = t->b[i];
                t->b[i] = e->next;
                e->next = b[e->hash & (nb - 1)];
                b[e->hash & (nb - 1)] = e;
            }
        }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    e = malloc(sizeof(*e) + klen + vlen);
    if (!e)
        return -ENOMEM;
    e->hash = h;
    e->db = db;
    e->expire = expire;
    e->payload = payload;
    e->klen = klen;
    e->vlen = vlen;
    memcpy(e->text, key, klen);
    if (vlen)
        memcpy(e->text + klen, val, vlen);
    l = link_of(t, db, key, klen, h);
    if (*l) {
        e->next = (*l)->next;
        free(*l);
        t->n--;
    } else {
        e->next = NULL;
    }
    *l = e;
    t->n++;
    return 0;
}

void akv_parked_clear(struct akv_parked *t)
{
    for (size_t i = 0; i < t->nb; i++) {
        while (t->b[i]) {
            struct akv_parked_ent *e = t->b[i];
            t->b[i] = e->next;
            free(e);
        }
    }
    t->n = 0;
}

void akv_parked_fini(struct akv_parked *t)
{
    akv_parked_clear(t);
    free(t->b);
    t->b = NULL;
    t->nb = 0;
}

int akv_parked_each(const struct akv_parked *t,
                    int (*fn)(void *arg, const struct akv_parked_ent *e), void *arg)
{
    for (size_t i = 0; i < t->nb; i++)
        for (const struct akv_parked_ent *e = t->b[i]; e; e = e->next) {
            int rc = fn(arg, e);
            if (rc)
                return rc;
        }
    return 0;
}

void akv_parked_clear_db(struct akv_parked *t, uint32_t db)
{
    for (size_t i = 0; i < t->nb; i++) {
        struct akv_parked_ent **l = &t->b[i];
        while (*l) {
            struct akv_parked_ent *e = *l;
            if (e->db != db) {
                l = &e->next;
                continue;
            }
            *l = e->next;
            free(e);
            t->n--;
        }
    }
}

void akv_parked_swap_db(struct akv_parked *t, uint32_t a, uint32_t b)
{
    for (size_t i = 0; i < t->nb; i++)
        for (struct akv_parked_ent *e = t->b[i]; e; e = e->next)
            e->db = e->db == a ? b : e->db == b ? a : e->db;
}
