/*
 * attn-kernels.h - the attention step's kernels: the dot products of word
 * rows with the queries, the weighted row sums and the exponentials, behind
 * a table of function pointers that attn.c picks from at run time.
 *
 * The kernels are written once, here, with GCC/Clang vector extensions, and
 * compiled three times, each in its own file with its own target flags
 * (src/engine/meson.build): attn-portable.c for the baseline instruction
 * set, attn-avx2.c with AVX2 and attn-avx512.c with AVX-512F (eight doubles
 * a vector, and a batch's queries share each conversion of a row). None
 * fuses a multiply and an add (AVX2 is built without FMA, GCC does not
 * contract in ISO C mode, and the pragma below stops Clang), and every sum
 * is made of the same operations in the same order, so all three give
 * bit-identical results (tests/unit/test-query.c checks).
 *
 * Private to src/engine/: included by attn.c (the table type) and, with
 * AKV_ATTN_KERNEL_BODIES defined, by the three kernel files.
 */
#ifndef ATTNKV_ATTN_KERNELS_H
#define ATTNKV_ATTN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AKV_ATTN_X86 1
#endif

/* The dot products and weighted row sums take nq queries (qs and rs hold nq
 * vectors of dim) and a table laid out either by vocabulary id (slot NULL,
 * nq 1) or slot-major (entry slot[u] * nq + b for word u, query b). */
struct akv_attn_kernels {
    /* out[at(u) + b] = row u . q_b for the n words u in ids */
    void (*dots)(const float *mat, uint32_t dim, const double *qs, size_t nq, const uint32_t *ids,
                 size_t n, const uint32_t *slot, double *out);
    /* r_b += w[at(u) + b] row u for the n words u in ids */
    void (*accumulate)(double *rs, size_t nq, const float *mat, uint32_t dim, const uint32_t *ids,
                       size_t n, const uint32_t *slot, const double *w);
    /* w[i] = exp(s[i] - c) for i < n (s[i] - c <= AKV_ATTN_SHIFT_SLACK) */
    void (*exp_block)(const double *s, double c, double *w, size_t n);
};

extern const struct akv_attn_kernels akv_attn_kernels_portable;
#ifdef AKV_ATTN_X86
extern const struct akv_attn_kernels akv_attn_kernels_avx2;
extern const struct akv_attn_kernels akv_attn_kernels_avx512;
#endif

/* The largest exponent exp_block is given: attn.c moves its softmax shift
 * so that no term exceeds e^AKV_ATTN_SHIFT_SLACK. */
#define AKV_ATTN_SHIFT_SLACK 200.0

/* No build may fuse a multiply and an add where another does not: the
 * kernels, and attn.c's own sums (GCC does not contract in ISO C mode,
 * which meson.build asks for; this stops Clang). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#ifdef AKV_ATTN_KERNEL_BODIES

#define PREFETCH_AHEAD 4 /* rows; a row is a few cache lines */

typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4l __attribute__((vector_size(32)));

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The loads are macros rather than functions: a function that returns a
 * 32-byte vector has a different ABI with and without AVX. memcpy compiles
 * to unaligned vector loads. */
#define LOAD4F(dst, p)                                                                             \
    do {                                                                                           \
        v4f t_;                                                                                    \
        memcpy(&t_, (p), sizeof t_);                                                               \
        (dst) = __builtin_convertvector(t_, v4d);                                                  \
    } while (0)
#define LOAD4D(dst, p) memcpy(&(dst), (p), sizeof(dst))

/* The end of x . q once dimensions [0, d) are summed in the two four-lane
 * accumulators a0 (d mod 8 < 4) and a1 (the rest): four more dimensions
 * into a0, the last ones one by one, then the lanes in a fixed order. Every
 * kernel ends its dot products here, so all give the same bits. The
 * accumulators come by pointer: a 32-byte vector argument has a different
 * ABI with and without AVX. */
ALWAYS_INLINE double dot_finish(v4d *a0, const v4d *a1, const float *x, const double *q, uint32_t d,
                                uint32_t dim)
{
    v4d x0, q0;
    double tail = 0;

    if (d + 4 <= dim) {
        LOAD4F(x0, x + d);
        LOAD4D(q0, q + d);
        *a0 += x0 * q0;
        d += 4;
    }
    for (; d < dim; d++)
        tail += (double)x[d] * q[d];
    *a0 += *a1;
    return ((*a0)[0] + (*a0)[2]) + ((*a0)[1] + (*a0)[3]) + tail;
}

/* x . q for a float row x and a double q holding floats, in double. Each
 * product is exact in double, so only the additions round. */
ALWAYS_INLINE double dot_body(const float *x, const double *q, uint32_t dim)
{
    v4d a0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0}, x0, x1, q0, q1;
    uint32_t d = 0;

    for (; d + 8 <= dim; d += 8) {
        LOAD4F(x0, x + d);
        LOAD4F(x1, x + d + 4);
        LOAD4D(q0, q + d);
        LOAD4D(q1, q + d + 4);
        a0 += x0 * q0;
        a1 += x1 * q1;
    }
    return dot_finish(&a0, &a1, x, q, d, dim);
}

static inline void prefetch_row(const float *x, uint32_t dim)
{
    for (uint32_t d = 0; d < dim; d += 16)
        __builtin_prefetch(x + d);
}

/* r += w0 x0 + w1 x1, and r += w x: the steps of the weighted row sums,
 * the same for a query alone or in a batch, so it gets the same bits. */
ALWAYS_INLINE void acc_pair(double *r, const float *x0, const float *x1, double w0, double w1,
                            uint32_t dim)
{
    v4d wv0 = {w0, w0, w0, w0}, wv1 = {w1, w1, w1, w1}, acc, xv0, xv1;
    uint32_t d = 0;

    for (; d + 4 <= dim; d += 4) {
        LOAD4D(acc, r + d);
        LOAD4F(xv0, x0 + d);
        LOAD4F(xv1, x1 + d);
        acc += wv0 * xv0 + wv1 * xv1;
        memcpy(r + d, &acc, sizeof acc);
    }
    for (; d < dim; d++)
        r[d] += w0 * x0[d] + w1 * x1[d];
}

ALWAYS_INLINE void acc_one(double *r, const float *x, double w, uint32_t dim)
{
    for (uint32_t d = 0; d < dim; d++)
        r[d] += w * x[d];
}

/* Where word u's entries are in a table (see struct kernels). */
ALWAYS_INLINE size_t table_at(const uint32_t *slot, size_t nq, uint32_t u)
{
    return slot != NULL ? (size_t)slot[u] * nq : u;
}

/* The weighted row sums' last words, ids[j0, n), one row at a time (an odd
 * word left over from the pairs). */
ALWAYS_INLINE void accumulate_rest(double *rs, size_t nq, const float *mat, uint32_t dim,
                                   const uint32_t *ids, size_t j0, size_t n, const uint32_t *slot,
                                   const double *w)
{
    for (size_t j = j0; j < n; j++) {
        const float *x = mat + (size_t)ids[j] * dim;
        const double *w0 = w + table_at(slot, nq, ids[j]);
        for (size_t b = 0; b < nq; b++)
            acc_one(rs + b * dim, x, w0[b], dim);
    }
}

/* out[at(u) + b] = row u . q_b for the n words u in ids. The rows are
 * fetched a few ahead: the words are in id order but apart, which the
 * hardware's own prefetching follows poorly. Each row is read from memory
 * once and used by every query while it is in the L1 cache. */
ALWAYS_INLINE void dots_body(const float *mat, uint32_t dim, const double *qs, size_t nq,
                             const uint32_t *ids, size_t n, const uint32_t *slot, double *out)
{
    for (size_t j = 0; j < n; j++) {
        const float *x = mat + (size_t)ids[j] * dim;
        double *o = out + table_at(slot, nq, ids[j]);
        if (j + PREFETCH_AHEAD < n)
            prefetch_row(mat + (size_t)ids[j + PREFETCH_AHEAD] * dim, dim);
        for (size_t b = 0; b < nq; b++)
            o[b] = dot_body(x, qs + b * dim, dim);
    }
}

/* r_b += w[at(u) + b] row u for the n words u in ids, two rows at a time so
 * that r_b is loaded and stored half as often. */
ALWAYS_INLINE void accumulate_body(double *rs, size_t nq, const float *mat, uint32_t dim,
                                   const uint32_t *ids, size_t n, const uint32_t *slot,
                                   const double *w)
{
    size_t j = 0;

    for (; j + 2 <= n; j += 2) {
        const float *x0 = mat + (size_t)ids[j] * dim, *x1 = mat + (size_t)ids[j + 1] * dim;
        const double *w0 = w + table_at(slot, nq, ids[j]);
        const double *w1 = w + table_at(slot, nq, ids[j + 1]);
        if (j + PREFETCH_AHEAD + 1 < n) {
            prefetch_row(mat + (size_t)ids[j + PREFETCH_AHEAD] * dim, dim);
            prefetch_row(mat + (size_t)ids[j + PREFETCH_AHEAD + 1] * dim, dim);
        }
        for (size_t b = 0; b < nq; b++)
            acc_pair(rs + b * dim, x0, x1, w0[b], w1[b], dim);
    }
    accumulate_rest(rs, nq, mat, dim, ids, j, n, slot, w);
}

/* *y = exp(*x) for four x <= AKV_ATTN_SHIFT_SLACK, and 0 for x < -708 (where exp()
 * is subnormal or 0; see the top comment for why that loses nothing).
 * x = n ln2 + t with n an integer and |t| <= ln2/2 (ln2 in two parts so that
 * n ln2 is exact); exp(t) is its Taylor series to the t^13 term, whose first
 * omitted term is below 5e-18 there, and 2^n is built in the exponent bits.
 * The rounding of n uses the 1.5 * 2^52 trick (adding it leaves n in the low
 * mantissa bits), which needs no rounding instruction. The series is summed
 * by Estrin's scheme (pairs of terms, then pairs of pairs, with t^2, t^4,
 * t^8) rather than Horner's: its chain of dependent operations is a third as
 * long, so several blocks of four overlap in the processor. Within 2.2 ulp
 * of exp() over the range used (checked against long double). */
ALWAYS_INLINE void exp4(v4d *y, const v4d *x)
{
    const v4d shifter = {0x1.8p52, 0x1.8p52, 0x1.8p52, 0x1.8p52};
    const double ln2_hi = 0x1.62e42feep-1, ln2_lo = 0x1.a39ef35793c76p-33;
    v4d t = *x * 0x1.71547652b82fep0 + shifter; /* x / ln2 rounded, in the low bits */
    v4d n = t - shifter;
    v4d r = (*x - n * ln2_hi) - n * ln2_lo;
    v4d r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    v4d q0 = 1.0 + r, q1 = 1.0 / 2 + r * (1.0 / 6), q2 = 1.0 / 24 + r * (1.0 / 120);
    v4d q3 = 1.0 / 720 + r * (1.0 / 5040), q4 = 1.0 / 40320 + r * (1.0 / 362880);
    v4d q5 = 1.0 / 3628800 + r * (1.0 / 39916800), q6 = 1.0 / 479001600 + r * (1.0 / 6227020800);
    v4d s0 = q0 + q1 * r2, s1 = q2 + q3 * r2, s2 = q4 + q5 * r2;
    v4d p = (s0 + s1 * r4) + (s2 + q6 * r4) * r8;
    v4l bits, ok;

    memcpy(&bits, &t, sizeof bits);
    bits = (bits - (int64_t)0x4338000000000000 + 1023) << 52; /* 2^n */
    memcpy(&t, &bits, sizeof t);
    p *= t;
    ok = (v4l)(*x >= -708.0);
    memcpy(&bits, &p, sizeof bits);
    bits &= ok;
    memcpy(y, &bits, sizeof *y);
}

/* w[i] = exp(s[i] - c) for i < n; s[i] = -INFINITY gives 0. */
ALWAYS_INLINE void exp_block_body(const double *s, double c, double *w, size_t n)
{
    size_t i = 0;
    v4d x, y;

    for (; i + 4 <= n; i += 4) {
        LOAD4D(x, s + i);
        x -= c;
        exp4(&y, &x);
        memcpy(w + i, &y, sizeof y);
    }
    for (; i < n; i++) {
        x = (v4d){s[i] - c, 0, 0, 0};
        exp4(&y, &x);
        w[i] = y[0];
    }
}

#endif /* AKV_ATTN_KERNEL_BODIES */

#endif
