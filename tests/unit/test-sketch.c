/*
 * test-sketch.c - the int8 sketch: its layout, and the bound it promises
 * (|r.x - a b (c.d)| <= R e + D n) on random and on awkward rows and
 * queries. The ranking's exactness rests on that bound never failing.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runsuite.h"
#include "engine/sketch.h"
#include "testutil.h"

struct sk {
    uint32_t dim;
    size_t count;
    uint8_t *hs, *ts; /* head and tail sections */
    double *rot;      /* NULL: unrotated */
    double eps;
    uint32_t head;
};

/* Builds the sketch, rotated (as the vocabulary file does) when rotate is
 * set and the plan accepts the dimension. */
static void sk_build(struct sk *s, const float *rows, size_t count, uint32_t dim, int rotate)
{
    s->dim = dim;
    s->count = count;
    s->rot = malloc((size_t)dim * dim * sizeof *s->rot);
    ck_assert(s->rot != NULL);
    if (!rotate || !akv_sketch_plan(rows, count, dim, s->rot, &s->eps, &s->head)) {
        free(s->rot);
        s->rot = NULL;
        s->eps = 0;
        s->head = akv_sketch_groups(dim);
    }
    s->hs = aligned_alloc(64, akv_sketch_head_bytes(count, s->head) + 64);
    s->ts = aligned_alloc(64, akv_sketch_tail_bytes(count, dim, s->head) + 64);
    ck_assert(s->hs != NULL && s->ts != NULL);
    memset(s->hs, 0, akv_sketch_head_bytes(count, s->head));
    memset(s->ts, 0, akv_sketch_tail_bytes(count, dim, s->head));
    akv_sketch_build(rows, count, dim, s->rot, s->head, s->hs, s->ts);
}

static void sk_free(struct sk *s)
{
    free(s->hs);
    free(s->ts);
    free(s->rot);
}

static int code_at(const struct sk *s, size_t i, uint32_t d)
{
    return akv_sketch_group(s->hs, s->ts, s->dim, s->head, i / 16, d / 4)[(i % 16) * 4 + d % 4] -
           128;
}

static float info_at(const struct sk *s, size_t i, unsigned which)
{
    return akv_sketch_block_info(s->hs, s->head, i / 16)[which * 16 + i % 16];
}

/* Checks the bound of every row against query r; returns the widest bound
 * relative to |r| |x| among rows with a nonzero norm. */
static double check_bound(const struct sk *s, const float *rows, const double *r)
{
    uint32_t groups = akv_sketch_groups(s->dim);
    int32_t *packed = malloc(groups * sizeof *packed);
    int8_t *qc = malloc(groups * 4);
    struct akv_sketch_query q;
    double rr = 0, widest = 0;

    akv_sketch_query(r, s->dim, s->rot, s->eps, s->head, &q, packed, qc);
    for (uint32_t d = 0; d < s->dim; d++)
        rr += r[d] * r[d];
    for (size_t i = 0; i < s->count; i++) {
        const float *x = rows + i * s->dim;
        long dot = 0, dot_head = 0;
        double exact = 0, xx = 0, approx, e;
        for (uint32_t d = 0; d < s->dim; d++) {
            dot += (long)code_at(s, i, d) * qc[d];
            if (d < 4 * s->head)
                dot_head += (long)code_at(s, i, d) * qc[d];
            exact += (double)x[d] * r[d];
            xx += (double)x[d] * x[d];
        }
        for (uint32_t d = s->dim; d < groups * 4; d++)
            ck_assert_int_eq(qc[d], 0);
        approx = (double)info_at(s, i, 0) * q.b * (double)dot;
        e = (double)q.rbound * info_at(s, i, 1) + (double)q.dbound * info_at(s, i, 2);
        ck_assert(q.finite);
        ck_assert_msg(fabs(exact - approx) <= e, "row %zu: r.x %.17g, approx %.17g, bound %.9g", i,
                      exact, approx, e);
        ck_assert(info_at(s, i, 2) >= sqrt(xx));
        /* The tail bound of the head stage. */
        ck_assert_msg(labs(dot - dot_head) <= (double)info_at(s, i, 4) * q.tbound,
                      "row %zu: tail %ld, bound %.9g", i, dot - dot_head,
                      (double)info_at(s, i, 4) * q.tbound);
        if (xx > 0 && rr > 0)
            widest = fmax(widest, e / sqrt(xx * rr));
    }
    free(packed);
    free(qc);
    return widest;
}

START_TEST(test_layout)
{
    enum { N = 37, D = 6 };
    float rows[N * D];
    struct sk s;
    uint32_t groups = akv_sketch_groups(D);

    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++)
            rows[i * D + d] = (float)((i + 1) * (d % 2 ? -1 : 1) * (d + 1));
    sk_build(&s, rows, N, D, 0);
    ck_assert_uint_eq(groups, 2);
    ck_assert_uint_eq(s.head, 2);
    ck_assert_uint_eq(akv_sketch_head_bytes(N, s.head), 3 * (2 * 64 + 5 * 16 * 4));
    ck_assert_uint_eq(akv_sketch_tail_bytes(N, D, s.head), 0);
    for (int i = 0; i < N; i++) {
        /* The largest component (d = 5) gets code 127 exactly. */
        ck_assert_int_eq(code_at(&s, (size_t)i, 5), -127);
        ck_assert_float_eq(info_at(&s, (size_t)i, 0), (float)(6.0 * (i + 1) / 127.0));
        /* Padding dimensions are code 0. */
        ck_assert_int_eq(code_at(&s, (size_t)i, 6), 0);
        ck_assert_int_eq(code_at(&s, (size_t)i, 7), 0);
        ck_assert_float_eq_tol(info_at(&s, (size_t)i, 3) * info_at(&s, (size_t)i, 2), 1, 1e-6);
    }
    /* Rows past the count in the last block are code 0 too. */
    for (size_t i = N; i < 48; i++)
        for (uint32_t d = 0; d < 8; d++)
            ck_assert_int_eq(code_at(&s, i, d), 0);
    sk_free(&s);
}
END_TEST

START_TEST(test_bound_random)
{
    static const uint32_t dims[] = {1, 3, 4, 37, 100, 300};
    uint64_t seed = 7;

    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
        for (int rotate = 0; rotate < 2; rotate++) {
            uint32_t dim = dims[t];
            size_t n = 500;
            float *rows = malloc(n * dim * sizeof *rows);
            double *r = malloc(dim * sizeof *r);
            struct sk s;
            /* Correlated rows, like word vectors: a few strong directions
             * plus noise, so a rotation has something to find. */
            for (size_t i = 0; i < n; i++) {
                double a = tu_uniform(&seed, -3, 3), b = tu_uniform(&seed, -2, 2);
                for (uint32_t d = 0; d < dim; d++)
                    rows[i * dim + d] =
                        (float)(a * sin(d + 1.0) + b * cos(3.0 * d) + tu_uniform(&seed, -1, 1));
            }
            sk_build(&s, rows, n, dim, rotate);
            if (rotate && dim >= 16) {
                ck_assert_ptr_nonnull(s.rot);
                ck_assert(s.eps < 1e-10);
                ck_assert_uint_lt(s.head, akv_sketch_groups(dim));
            }
            for (int k = 0; k < 40; k++) {
                double w;
                for (uint32_t d = 0; d < dim; d++)
                    r[d] = (k % 2 ? rows[(size_t)k * dim + d] : tu_uniform(&seed, -1, 1)) *
                           (k % 3 == 0   ? 1e-3
                            : k % 3 == 1 ? 1
                                         : 1e3);
                w = check_bound(&s, rows, r);
                /* Useful as well as true: within a few percent of |r||x|
                 * (quantisation error is about 1/254 of the largest
                 * component, larger after a rotation concentrates the
                 * energy in the first axes). */
                if (dim >= 4)
                    ck_assert_msg(w < 0.1, "dim %u: bound %.4f of |r||x|", dim, w);
            }
            sk_free(&s);
            free(rows);
            free(r);
        }
    }
}
END_TEST

START_TEST(test_bound_awkward_rows)
{
    enum { D = 9, N = 8 };
    float rows[N * D];
    double r[D];
    struct sk s;
    uint64_t seed = 11;

    memset(rows, 0, sizeof rows); /* row 0: all zero */
    rows[1 * D + 3] = 1e30f;      /* row 1: one huge component... */
    rows[1 * D + 4] = 1e-30f;     /* ...and one lost to rounding */
    for (int d = 0; d < D; d++) {
        rows[2 * D + d] = 1e-40f;         /* row 2: denormal */
        rows[3 * D + d] = 0.5f;           /* row 3: constant, exact codes */
        rows[4 * D + d] = (float)(d - 4); /* row 4: symmetric */
        rows[5 * D + d] = d == 0 ? -1.0f : 1e-7f;
        rows[6 * D + d] = (float)tu_uniform(&seed, -1, 1);
        rows[7 * D + d] = 3.4e38f; /* row 7: near FLT_MAX */
    }
    sk_build(&s, rows, N, D, 0);
    for (int k = 0; k < 200; k++) {
        for (int d = 0; d < D; d++)
            r[d] = k % 5 == 0 ? (d == k % D) : tu_uniform(&seed, -2, 2);
        check_bound(&s, rows, r);
    }
    sk_free(&s);
}
END_TEST

START_TEST(test_nonfinite)
{
    enum { D = 4 };
    float rows[2 * D] = {1, 2, 3, 4, 1, NAN, 0, 0};
    double r[D] = {1, 1, 1, 1}, bad[D] = {0, INFINITY, 0, 0}, zero[D] = {0, 0, 0, 0};
    int32_t packed[1];
    int8_t qc[4];
    struct akv_sketch_query q;
    struct sk s;

    sk_build(&s, rows, 2, D, 1);
    /* A row with a NaN can never be pruned: infinite residual. */
    ck_assert(isinf(info_at(&s, 1, 1)));
    ck_assert_float_eq(info_at(&s, 1, 0), 0);
    akv_sketch_query(r, D, NULL, 0, 1, &q, packed, qc);
    ck_assert(q.finite);
    ck_assert_int_eq(q.sum, 4 * 127);
    akv_sketch_query(bad, D, NULL, 0, 1, &q, packed, qc);
    ck_assert(!q.finite);
    akv_sketch_query(zero, D, NULL, 0, 1, &q, packed, qc);
    ck_assert(!q.finite);
    /* Finite, but of a size whose float bounds would overflow (or lose
     * their precision): nothing is pruned, and the zero scale and codes
     * make every estimate 0, never inf * 0. */
    {
        double huge[D] = {3e38, -1e37, 2e38, 1}, tiny[D] = {1e-30, 0, -1e-31, 0};
        akv_sketch_query(huge, D, NULL, 0, 1, &q, packed, qc);
        ck_assert(!q.finite);
        ck_assert_float_eq(q.b, 0);
        ck_assert_int_eq(packed[0], 0);
        akv_sketch_query(tiny, D, NULL, 0, 1, &q, packed, qc);
        ck_assert(!q.finite);
        ck_assert_float_eq(q.b, 0);
    }
    sk_free(&s);
}
END_TEST

START_TEST(test_query_packing)
{
    double r[6] = {127, -127, 1, -1, 64, 0};
    int32_t packed[2];
    int8_t qc[8];
    struct akv_sketch_query q;
    uint32_t w;

    akv_sketch_query(r, 6, NULL, 0, 1, &q, packed, qc);
    ck_assert_float_eq(q.b, 1.0f);
    ck_assert_int_eq(q.sum, 64);
    memcpy(&w, &packed[0], 4);
    ck_assert_uint_eq(w, 0xff01817fu); /* 127, -127, 1, -1 as bytes */
    memcpy(&w, &packed[1], 4);
    ck_assert_uint_eq(w, 0x00000040u);
    /* Exact codes: the residual bound is only the margin. */
    ck_assert(q.dbound <= 1e-5 * 200);
    /* Head of one group: the tail is 64 and 0. */
    ck_assert_float_eq(q.tbound, 64.0f);
}
END_TEST

static Suite *sketch_suite(void)
{
    Suite *s = suite_create("sketch");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_bound_random);
    tcase_add_test(tc, test_bound_awkward_rows);
    tcase_add_test(tc, test_nonfinite);
    tcase_add_test(tc, test_query_packing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(sketch_suite());
}
