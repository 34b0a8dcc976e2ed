/*
 * attn-kernels.h - the attention step's kernels: the dot products of word
 * rows with the queries, the weighted row sums and the exponentials, behind
 * a table of function pointers that attn.c picks from at run time.
 *
 * The kernels come in three builds, each in its own file with its own
 * target flags (src/engine/meson.build): attn-portable.c (plain C and
 * fma()), attn-avx2.c (AVX2 and FMA, four doubles a vector) and
 * attn-avx512.c (AVX-512F, eight). Each is register-blocked: a row,
 * converted to double once, is multiplied into several queries while it is
 * in registers, and a query's partial sums stay in registers across many
 * rows. All follow the canonical order below, so they give bit-identical
 * results (tests/unit/test-query.c checks), whatever the batch.
 *
 * Private to src/engine/: included by attn.c (the table type) and, with
 * AKV_ATTN_KERNEL_BODIES defined, by the three kernel files.
 */
#ifndef ATTNKV_ATTN_KERNELS_H
#define ATTNKV_ATTN_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AKV_ATTN_X86 1
#endif

/* Every query vector is padded with zeros to a multiple of eight doubles
 * (AKV_ATTN_PAD): the kernels read whole groups of eight. */
#define AKV_ATTN_PAD(dim) (((size_t)(dim) + 7) & ~(size_t)7)

/* The canonical order of the sums, which every build follows exactly (so
 * all give the same bits, and a word's score or a query's blend never
 * depends on the batch it was computed in):
 *   - row . q: eight partial sums, lane l taking dimensions d = l (mod 8)
 *     one after another, each step one fused multiply-add (fma) from 0;
 *     then ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7));
 *   - the weighted row sums: r_b[d] = fma(w_jb, row_j[d], r_b[d]) for the
 *     words j in the order given.
 * The products of a float row and a double query holding floats are exact
 * in double, so only the additions round. */
struct akv_attn_kernels {
    /* out[at(u) + b] = row u . q_b for b < nq and the n words u in ids, where
     * at(u) = slot[u] * nq, or u when slot is NULL (then nq is 1); q_b is at
     * qs + b * AKV_ATTN_PAD(dim). */
    void (*dots)(const float *mat, uint32_t dim, const double *qs, size_t nq, const uint32_t *ids,
                 size_t n, const uint32_t *slot, double *out);
    /* r_b += w[j * nq + b] row ids[j] for j < n in order, b < nq, with r_b
     * at rs + b * AKV_ATTN_PAD(dim) (its padding stays as it is). */
    void (*accumulate)(double *rs, size_t nq, const float *mat, uint32_t dim, const uint32_t *ids,
                       size_t n, const double *w);
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

/* No build may fuse a multiply and an add where another does not: every
 * fused one is written as such (fma() or an FMA intrinsic), and nothing
 * else is contracted (GCC does not contract in ISO C mode, which
 * meson.build asks for; this stops Clang). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#ifdef AKV_ATTN_KERNEL_BODIES

#define PREFETCH_AHEAD 12   /* rows; a row is a few cache lines */
#define ROWBUF_DOUBLES 4096 /* a stack buffer of rows in double: 32 KB, at least one row */

typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4l __attribute__((vector_size(32)));

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define LOAD4D(dst, p) memcpy(&(dst), (p), sizeof(dst))

static inline void prefetch_row(const float *x, uint32_t dim)
{
    for (uint32_t d = 0; d < dim; d += 16)
        __builtin_prefetch(x + d, 0, 1);
}

/* Where word u's entries are in a table (see struct kernels). */
ALWAYS_INLINE size_t table_at(const uint32_t *slot, size_t nq, uint32_t u)
{
    return slot != NULL ? (size_t)slot[u] * nq : u;
}

/* The last reduction of a dot product (the canonical order above). */
ALWAYS_INLINE double dot_tree(const double *a)
{
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* Row x, converted to double and padded with zeros to AKV_ATTN_PAD(dim),
 * into buf. */
ALWAYS_INLINE void row_to_double(double *buf, const float *x, uint32_t dim)
{
    size_t pad = AKV_ATTN_PAD(dim), d;

    for (d = 0; d < dim; d++)
        buf[d] = x[d];
    for (; d < pad; d++)
        buf[d] = 0;
}

/* The portable kernels: plain C and fma() (a single rounding wherever it
 * runs: hardware where the CPU has it, else the C library's exact
 * emulation). */
ALWAYS_INLINE double dot_portable_one(const double *x, const double *q, size_t pad)
{
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};

    for (size_t d = 0; d < pad; d += 8)
        for (size_t l = 0; l < 8; l++)
            a[l] = fma(x[d + l], q[d + l], a[l]);
    return dot_tree(a);
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
