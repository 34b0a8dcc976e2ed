/*
 * latency.c - the latency monitor (see latency.h).
 *
 * Design: each event keeps a ring of AKV_LATENCY_SAMPLES samples, one per
 * second at most, as Redis's latency.c does: a sample within the same
 * second as the newest one only raises it. Plain data, no allocation.
 *
 * Threading: the owner's thread only (the loop thread).
 */
#include "server/latency.h"

#include <string.h>
#include <strings.h>

static const char *const names[AKV_LATENCY_EVENTS] = {"command", "fast-command"};

const char *akv_latency_event_name(unsigned ev)
{
    return ev < AKV_LATENCY_EVENTS ? names[ev] : NULL;
}

int akv_latency_event_lookup(const char *name, size_t len)
{
    for (unsigned i = 0; i < AKV_LATENCY_EVENTS; i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return (int)i;
    return -1;
}

void akv_latency_add(struct akv_latency *l, unsigned ev, int64_t now, uint32_t ms)
{
    struct akv_latency_series *s;
    unsigned prev;

    if (ev >= AKV_LATENCY_EVENTS)
        return;
    s = &l->ev[ev];
    if (ms > s->max)
        s->max = ms;
    prev = (s->next + AKV_LATENCY_SAMPLES - 1) % AKV_LATENCY_SAMPLES;
    if (s->active && s->samples[prev].time == now) {
        if (ms > s->samples[prev].ms)
            s->samples[prev].ms = ms;
        return;
    }
    s->samples[s->next] = (struct akv_latency_sample){now, ms};
    s->next = (s->next + 1) % AKV_LATENCY_SAMPLES;
    s->active = 1;
}

int akv_latency_reset(struct akv_latency *l, unsigned ev)
{
    int had;

    if (ev >= AKV_LATENCY_EVENTS)
        return 0;
    had = l->ev[ev].active;
    memset(&l->ev[ev], 0, sizeof(l->ev[ev]));
    return had;
}

const struct akv_latency_sample *akv_latency_latest(const struct akv_latency *l, unsigned ev)
{
    const struct akv_latency_series *s;

    if (ev >= AKV_LATENCY_EVENTS || !l->ev[ev].active)
        return NULL;
    s = &l->ev[ev];
    return &s->samples[(s->next + AKV_LATENCY_SAMPLES - 1) % AKV_LATENCY_SAMPLES];
}

size_t akv_latency_history(const struct akv_latency *l, unsigned ev, struct akv_latency_sample *out)
{
    const struct akv_latency_series *s;
    size_t n = 0;

    if (ev >= AKV_LATENCY_EVENTS)
        return 0;
    s = &l->ev[ev];
    /* From the oldest slot of the ring (the next to be overwritten). */
    for (unsigned i = 0; i < AKV_LATENCY_SAMPLES; i++) {
        const struct akv_latency_sample *x = &s->samples[(s->next + i) % AKV_LATENCY_SAMPLES];
        if (x->time != 0)
            out[n++] = *x;
    }
    return n;
}
