/*
 * fixsum.h - exact, order-free sums of weights in [0, 2): each term is
 * truncated to a multiple of 2^-100 and added as a 128-bit integer, so a
 * sum has the same bits whatever the order of its terms (attention's
 * softmax sums in attn.c, FGET's group sums in query.c). Up to 2^27 terms
 * of at most 2 fit. Private to src/engine/.
 */
#ifndef ATTNKV_FIXSUM_H
#define ATTNKV_FIXSUM_H

#include <stdint.h>

/* A weight in units of 2^-100. */
__extension__ typedef unsigned __int128 akv_fix;

/* t in [0, 2) truncated to a multiple of 2^-100, as the two halves of the
 * 128-bit count of 2^-100 units (hot loops keep them apart: a 128-bit value
 * on the stack written as two halves and read back as one stalls the
 * store forwarding). */
static inline void akv_fix_split(double t, uint64_t *lo, uint64_t *hi)
{
    double a = t * 0x1p50;                           /* exact */
    int64_t h = (int64_t)a;                          /* < 2^51 */
    int64_t r = (int64_t)((a - (double)h) * 0x1p50); /* both steps exact; < 2^50 */

    *lo = (uint64_t)h << 50 | (uint64_t)r;
    *hi = (uint64_t)h >> 14;
}

static inline akv_fix akv_fix_join(uint64_t lo, uint64_t hi)
{
    return (akv_fix)hi << 64 | lo;
}

static inline akv_fix akv_fix_from(double t)
{
    uint64_t lo, hi;

    akv_fix_split(t, &lo, &hi);
    return akv_fix_join(lo, hi);
}

/* x (in units) as a double, within 2^-52 of it, and the same double for
 * the same x wherever this runs (signed conversions only: x is below
 * 2^127, and the 11 low bits dropped weigh less than the rounding of
 * anything they join). */
static inline double akv_fix_units(akv_fix x)
{
    return (double)(int64_t)(uint64_t)(x >> 64) * 0x1p64 +
           (double)(int64_t)((uint64_t)x >> 11) * 0x1p11;
}

/* x as a weight: units times 2^-100. */
static inline double akv_fix_weight(akv_fix x)
{
    return akv_fix_units(x) * 0x1p-100;
}

#endif
