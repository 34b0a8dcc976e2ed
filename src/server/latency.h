/*
 * latency.h - the latency monitor (LATENCY LATEST, HISTORY, RESET), as
 * Redis keeps it: for each event, the samples of the last
 * AKV_LATENCY_SAMPLES seconds in which the event took at least
 * latency-monitor-threshold milliseconds (one sample a second, the worst),
 * and the worst ever seen.
 *
 * The events are fixed: "command" (a command that is not O(1), QUERY and
 * the other pool jobs timed from dispatch to reply) and "fast-command" (an
 * O(1) command), as Redis names them.
 *
 * Ownership: struct akv_latency is plain data that its owner embeds (in
 * struct akv_cmd_env); zeroed, it holds no samples. Pure: no I/O, no clock
 * (the caller passes the time). Threading: loop thread only.
 */
#ifndef ATTNKV_LATENCY_H
#define ATTNKV_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#define AKV_LATENCY_SAMPLES 160 /* Redis's LATENCY_TS_LEN */

enum akv_latency_event { AKV_LATENCY_COMMAND, AKV_LATENCY_FAST_COMMAND, AKV_LATENCY_EVENTS };

struct akv_latency_sample {
    int64_t time; /* unix seconds; 0: unused */
    uint32_t ms;
};

struct akv_latency_series {
    struct akv_latency_sample samples[AKV_LATENCY_SAMPLES]; /* a ring */
    unsigned next; /* where the next second's sample goes */
    uint32_t max;  /* the worst ever (since the last reset) */
    int active;    /* has a sample (LATENCY LATEST lists it) */
};

struct akv_latency {
    struct akv_latency_series ev[AKV_LATENCY_EVENTS];
};

/* "command", "fast-command"; NULL for an unknown event. */
const char *akv_latency_event_name(unsigned ev);
/* The event called name (any case), or -1. */
int akv_latency_event_lookup(const char *name, size_t len);

/* Records that event ev took ms milliseconds at unix time now: a new
 * sample, or, within the second of the newest one, the worse of the two. */
void akv_latency_add(struct akv_latency *l, unsigned ev, int64_t now, uint32_t ms);

/* Forgets event ev's samples. Returns 1 if it had any, else 0. */
int akv_latency_reset(struct akv_latency *l, unsigned ev);

/* The newest sample of ev, or NULL when it has none. */
const struct akv_latency_sample *akv_latency_latest(const struct akv_latency *l, unsigned ev);

/* Copies ev's samples, oldest first, into out (room for
 * AKV_LATENCY_SAMPLES); returns how many. */
size_t akv_latency_history(const struct akv_latency *l, unsigned ev,
                           struct akv_latency_sample *out);

#endif
