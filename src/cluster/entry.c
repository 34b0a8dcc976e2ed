/*
 * entry.c - the cluster log entry's bytes (layout in entry.h).
 *
 * The decoder walks the whole entry once with a bounds-checked reader, so
 * that the iterators, which read without checks, can only be given
 * entries whose every length has been checked.
 *
 * Threading: none. Ownership: see entry.h.
 */
#include "cluster/entry.h"

#include <errno.h>
#include <string.h>

struct rd {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t rd_le(struct rd *r, size_t n)
{
    uint64_t v = 0;

    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static const uint8_t *rd_skip(struct rd *r, size_t n)
{
    const uint8_t *at = r->p;

    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    r->p += n;
    return at;
}

static void rd_str(struct rd *r)
{
    uint32_t n = (uint32_t)rd_le(r, 4);
    rd_skip(r, n);
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int akv_entry_decode(const void *buf, size_t len, struct akv_entry *e)
{
    struct rd r;

    memset(e, 0, sizeof(*e));
    if (len < AKV_ENTRY_HEAD) /* before any arithmetic on buf, which may be NULL */
        return -EBADMSG;
    r = (struct rd){buf, (const uint8_t *)buf + len, 0};
    if (r.p[0] != AKV_ENTRY_MAGIC || r.p[1] != AKV_ENTRY_VERSION)
        return -EBADMSG;
    e->kind = r.p[2];
    e->flags = r.p[3];
    r.p += 4;
    e->origin = rd_le(&r, 8);
    e->req = rd_le(&r, 8);
    e->now_ms = rd_le(&r, 8);
    e->term = rd_le(&r, 8);
    switch (e->kind) {
    case AKV_ENTRY_CMDS:
        if (e->flags & ~(unsigned)AKV_ENTRY_EXEC)
            return -EBADMSG;
        e->db = (uint32_t)rd_le(&r, 4);
        e->resp = (int)rd_le(&r, 1);
        if (rd_le(&r, 3) != 0 || (e->resp != 2 && e->resp != 3))
            return -EBADMSG; /* reserved bytes, or cut short */
        e->ncmds = (uint32_t)rd_le(&r, 4);
        e->cmds = r.p;
        if (e->ncmds == 0 || (e->ncmds > 1 && !(e->flags & AKV_ENTRY_EXEC)))
            return -EBADMSG;
        for (uint32_t i = 0; i < e->ncmds && !r.bad; i++) {
            uint32_t argc = (uint32_t)rd_le(&r, 4);
            if (argc == 0)
                return -EBADMSG;
            for (uint32_t j = 0; j < argc && !r.bad; j++)
                rd_str(&r);
        }
        if (e->flags & AKV_ENTRY_EXEC) {
            e->nwatch = (uint32_t)rd_le(&r, 4);
            e->watch = r.p;
            for (uint32_t i = 0; i < e->nwatch && !r.bad; i++) {
                rd_le(&r, 4);
                rd_str(&r);
                if (rd_le(&r, 1) > 1)
                    return -EBADMSG;
                rd_le(&r, 8);
                rd_str(&r);
            }
        }
        break;
    case AKV_ENTRY_EXPIRED:
        if (e->flags)
            return -EBADMSG;
        e->nkeys = (uint32_t)rd_le(&r, 4);
        e->keys = r.p;
        for (uint32_t i = 0; i < e->nkeys && !r.bad; i++) {
            rd_le(&r, 4);
            rd_str(&r);
            rd_le(&r, 8);
        }
        break;
    case AKV_ENTRY_NODE: {
        uint32_t n = (uint32_t)rd_le(&r, 4);
        e->addr = (const char *)rd_skip(&r, n);
        e->addrlen = n;
        if (e->flags)
            return -EBADMSG;
        break;
    }
    case AKV_ENTRY_VOCAB:
        if (e->flags)
            return -EBADMSG;
        e->vocab_meta = rd_le(&r, 8);
        e->vocab_data = rd_le(&r, 8);
        e->vocab_words = rd_le(&r, 8);
        e->vocab_dim = (uint32_t)rd_le(&r, 4);
        break;
    default:
        return -EBADMSG;
    }
    if (r.bad || r.end - r.p >= 8)
        return -EBADMSG;
    for (; r.p < r.end; r.p++) /* padding to a multiple of 8 bytes */
        if (*r.p != 0)
            return -EBADMSG;
    return 0;
}

const uint8_t *akv_entry_cmd(const uint8_t *p, uint32_t *argc, const uint8_t **args)
{
    const uint8_t *q;

    *argc = (uint32_t)get_le(p, 4);
    q = *args = p + 4;
    for (uint32_t i = 0; i < *argc; i++)
        q += 4 + get_le(q, 4);
    return q;
}

const uint8_t *akv_entry_arg(const uint8_t *p, const char **s, size_t *len)
{
    *len = (size_t)get_le(p, 4);
    *s = (const char *)p + 4;
    return p + 4 + *len;
}

const uint8_t *akv_entry_watch_next(const uint8_t *p, struct akv_entry_watch *w)
{
    w->db = (uint32_t)get_le(p, 4);
    p = akv_entry_arg(p + 4, &w->key, &w->klen);
    w->present = p[0];
    w->expire = get_le(p + 1, 8);
    return akv_entry_arg(p + 9, &w->val, &w->vlen);
}

const uint8_t *akv_entry_key_next(const uint8_t *p, uint32_t *db, const char **key, size_t *klen,
                                  uint64_t *expire)
{
    *db = (uint32_t)get_le(p, 4);
    p = akv_entry_arg(p + 4, key, klen);
    *expire = get_le(p, 8);
    return p + 8;
}

static int put_le(struct akv_buf *b, uint64_t v, size_t n)
{
    uint8_t t[8];

    for (size_t i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    return akv_buf_append(b, t, n);
}

int akv_entry_put_head(struct akv_buf *b, enum akv_entry_kind kind, unsigned flags, uint64_t origin,
                       uint64_t req, uint64_t now_ms)
{
    uint8_t h[4] = {AKV_ENTRY_MAGIC, AKV_ENTRY_VERSION, (uint8_t)kind, (uint8_t)flags};

    if (akv_buf_append(b, h, 4) < 0 || put_le(b, origin, 8) < 0 || put_le(b, req, 8) < 0 ||
        put_le(b, now_ms, 8) < 0 || put_le(b, 0, 8) < 0)
        return -ENOMEM;
    return 0;
}

int akv_entry_put_u8(struct akv_buf *b, uint8_t v)
{
    return put_le(b, v, 1);
}

int akv_entry_put_u32(struct akv_buf *b, uint32_t v)
{
    return put_le(b, v, 4);
}

int akv_entry_put_u64(struct akv_buf *b, uint64_t v)
{
    return put_le(b, v, 8);
}

int akv_entry_put_bytes(struct akv_buf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX)
        return -E2BIG;
    if (put_le(b, n, 4) < 0 || akv_buf_append(b, p, n) < 0)
        return -ENOMEM;
    return 0;
}

void akv_entry_stamp(void *buf, uint64_t now_ms, uint64_t term)
{
    uint8_t *p = (uint8_t *)buf + 20;

    for (size_t i = 0; i < 8; i++) {
        p[i] = (uint8_t)(now_ms >> (8 * i));
        p[8 + i] = (uint8_t)(term >> (8 * i));
    }
}
