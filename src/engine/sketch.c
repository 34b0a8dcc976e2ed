/*
 * sketch.c - building the int8 sketch of the vocabulary and quantising query
 * vectors; the bound these give is explained in sketch.h.
 *
 * Every bound here is computed in double and rounded up to float, so the
 * stored residuals and norms are never smaller than the true values.
 *
 * Threading: pure functions; any thread.
 */
#include "engine/sketch.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The query norms whose bounds the float kernels compute safely (rows of
 * norm up to 1e12 or so keep every product within float's normal range);
 * a query outside is ranked by exact scores alone. */
#define SKETCH_QUERY_NORM_MIN 1e-12
#define SKETCH_QUERY_NORM_MAX 1e12

/* The smallest float not below x. */
static float round_up(double x)
{
    float f = (float)x;
    if ((double)f < x)
        f = nextafterf(f, INFINITY);
    return f;
}

static int code_of(double x, float scale)
{
    long c = lrint(x / scale);
    return c > 127 ? 127 : c < -127 ? -127 : (int)c;
}

/* Eigen-decomposition of the symmetric n x n matrix a (destroyed: its
 * diagonal ends up holding the eigenvalues) by cyclic Jacobi rotations;
 * the eigenvectors go to the columns of v. Plain and robust; n <= 512. */
static void jacobi(double *a, double *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            v[(size_t)i * n + j] = i == j;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0, diag = 0;
        for (uint32_t i = 0; i < n; i++) {
            diag += a[(size_t)i * n + i] * a[(size_t)i * n + i];
            for (uint32_t j = i + 1; j < n; j++)
                off += a[(size_t)i * n + j] * a[(size_t)i * n + j];
        }
        if (off <= 1e-30 * diag || off == 0)
            return;
        for (uint32_t p = 0; p < n; p++) {
            for (uint32_t q = p + 1; q < n; q++) {
                double apq = a[(size_t)p * n + q], theta, t, c, sn;
                if (fabs(apq) < 1e-300)
                    continue;
                theta = (a[(size_t)q * n + q] - a[(size_t)p * n + p]) / (2 * apq);
                t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                c = 1 / sqrt(t * t + 1);
                sn = t * c;
                for (uint32_t k = 0; k < n; k++) { /* columns p and q */
                    double akp = a[(size_t)k * n + p], akq = a[(size_t)k * n + q];
                    a[(size_t)k * n + p] = c * akp - sn * akq;
                    a[(size_t)k * n + q] = sn * akp + c * akq;
                }
                for (uint32_t k = 0; k < n; k++) { /* rows p and q */
                    double apk = a[(size_t)p * n + k], aqk = a[(size_t)q * n + k];
                    a[(size_t)p * n + k] = c * apk - sn * aqk;
                    a[(size_t)q * n + k] = sn * apk + c * aqk;
                }
                for (uint32_t k = 0; k < n; k++) {
                    double vkp = v[(size_t)k * n + p], vkq = v[(size_t)k * n + q];
                    v[(size_t)k * n + p] = c * vkp - sn * vkq;
                    v[(size_t)k * n + q] = sn * vkp + c * vkq;
                }
            }
        }
    }
}

int akv_sketch_plan(const float *rows, size_t count, uint32_t dim, double *rot, double *eps,
                    uint32_t *head)
{
    uint32_t groups = akv_sketch_groups(dim);
    size_t step = count > 50000 ? count / 50000 : 1, used = 0;
    double *a = NULL, *v = NULL, *lam = NULL, total = 0, acc = 0, frob = 0;
    uint32_t *order = NULL, hd;

    *head = groups;
    *eps = 0;
    /* Small dimensions gain nothing from a head/tail split. */
    if (dim < 16 || dim > AKV_SKETCH_ROT_DIM_MAX || count == 0)
        return 0;
    a = calloc((size_t)dim * dim, sizeof *a);
    v = malloc((size_t)dim * dim * sizeof *v);
    lam = malloc(dim * sizeof *lam);
    order = malloc(dim * sizeof *order);
    if (a == NULL || v == NULL || lam == NULL || order == NULL)
        goto none;
    /* The uncentred second moment: dot products, not distances to a mean,
     * are what the bounds split. */
    for (size_t i = 0; i < count; i += step, used++) {
        const float *x = rows + i * dim;
        if (!isfinite(x[0]))
            continue;
        for (uint32_t p = 0; p < dim; p++)
            for (uint32_t q = p; q < dim; q++)
                a[(size_t)p * dim + q] += (double)x[p] * x[q];
    }
    for (uint32_t p = 0; p < dim; p++)
        for (uint32_t q = p; q < dim; q++) {
            a[(size_t)p * dim + q] /= (double)used;
            a[(size_t)q * dim + p] = a[(size_t)p * dim + q];
        }
    for (uint32_t p = 0; p < dim * dim; p++)
        if (!isfinite(a[p]))
            goto none; /* non-finite rows: leave the sketch unrotated */
    jacobi(a, v, dim);
    for (uint32_t i = 0; i < dim; i++) {
        lam[i] = a[(size_t)i * dim + i];
        order[i] = i;
        total += fmax(lam[i], 0);
    }
    /* Largest eigenvalue first (insertion sort: dim <= 512). */
    for (uint32_t i = 1; i < dim; i++)
        for (uint32_t j = i; j > 0 && lam[order[j]] > lam[order[j - 1]]; j--) {
            uint32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (uint32_t i = 0; i < dim; i++)
        for (uint32_t k = 0; k < dim; k++)
            rot[(size_t)i * dim + k] = v[(size_t)k * dim + order[i]];
    /* The head: the fewest whole groups holding 85% of the energy. On
     * GloVe 6B 100d that is 18 of 25 groups, and a head test then leaves
     * 2-4% of the 16-word blocks (per query) needing their tail, against
     * 13-35% with the 12 groups (68%) chosen before: a block that passes
     * costs a mispredicted branch and a tail read from memory, several
     * times what the six extra groups cost every block. Measured with top-5
     * QUERYs over a 1,000-entry store and NEIGHBORS, in batches of 16:
     * about 15% less time per query at 85% than at 68%, and no better at
     * 90% (20 groups). */
    hd = 0;
    while (hd < groups && acc < 0.85 * total) {
        for (uint32_t d = 4 * hd; d < 4 * hd + 4 && d < dim; d++)
            acc += fmax(lam[order[d]], 0);
        hd++;
    }
    if (hd == 0)
        hd = 1;
    *head = hd + 1 >= groups ? groups : hd;
    /* How far rot is from orthogonal: |I - rot' rot|, Frobenius, doubled
     * for the rounding of this very computation. */
    for (uint32_t i = 0; i < dim; i++)
        for (uint32_t j = 0; j < dim; j++) {
            double m = i == j ? -1.0 : 0.0;
            for (uint32_t k = 0; k < dim; k++)
                m += rot[(size_t)k * dim + i] * rot[(size_t)k * dim + j];
            frob += m * m;
        }
    *eps = 2 * sqrt(frob) + 1e-15 * dim;
    free(a);
    free(v);
    free(lam);
    free(order);
    return 1;

none:
    free(a);
    free(v);
    free(lam);
    free(order);
    *head = groups;
    *eps = 0;
    return 0;
}

/* y = rot x (or x), in double. */
static void rotate(const double *rot, const double *x, uint32_t dim, double *y)
{
    if (rot == NULL) {
        memcpy(y, x, dim * sizeof *y);
        return;
    }
    /* Four rows at a time: four independent sums, each in the order of a
     * row alone (so the same bits), rather than one chain of dependent
     * additions. */
    uint32_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        const double *r0 = rot + (size_t)i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (uint32_t k = 0; k < dim; k++) {
            a0 += r0[k] * x[k];
            a1 += r1[k] * x[k];
            a2 += r2[k] * x[k];
            a3 += r3[k] * x[k];
        }
        y[i] = a0;
        y[i + 1] = a1;
        y[i + 2] = a2;
        y[i + 3] = a3;
    }
    for (; i < dim; i++) {
        double acc = 0;
        for (uint32_t k = 0; k < dim; k++)
            acc += rot[(size_t)i * dim + k] * x[k];
        y[i] = acc;
    }
}

/* Where code d of row i goes. */
static uint8_t *code_at(uint8_t *hs, uint8_t *ts, uint32_t dim, uint32_t head, size_t i, uint32_t d)
{
    return (uint8_t *)(uintptr_t)akv_sketch_group(hs, ts, dim, head, i / AKV_SKETCH_ROWS, d / 4) +
           (i % AKV_SKETCH_ROWS) * 4 + d % 4;
}

static float *info_at(uint8_t *hs, uint32_t head, size_t i)
{
    return (float *)(uintptr_t)akv_sketch_block_info(hs, head, i / AKV_SKETCH_ROWS);
}

void akv_sketch_build(const float *rows, size_t count, uint32_t dim, const double *rot,
                      uint32_t head, uint8_t *hs, uint8_t *ts)
{
    uint32_t groups = akv_sketch_groups(dim);
    double *xd = malloc(2 * (size_t)dim * sizeof *xd), *y;

    if (xd == NULL) {
        /* Without scratch memory, make every row unprunable: still exact. */
        for (size_t i = 0; i < count; i++) {
            float *in = info_at(hs, head, i);
            in[16 + i % AKV_SKETCH_ROWS] = INFINITY;
            in[32 + i % AKV_SKETCH_ROWS] = INFINITY;
            in[64 + i % AKV_SKETCH_ROWS] = INFINITY;
            for (uint32_t d = 0; d < groups * 4; d++)
                *code_at(hs, ts, dim, head, i, d) = 128;
        }
        return;
    }
    y = xd + dim;
    for (size_t i = 0; i < count; i++) {
        const float *x = rows + i * dim;
        size_t lane = i % AKV_SKETCH_ROWS;
        float *in = info_at(hs, head, i);
        double amax = 0, nn = 0, yy = 0, ee = 0;
        long tail = 0;
        float scale;
        int finite = 1;

        for (uint32_t d = 0; d < dim; d++) {
            if (!isfinite(x[d]))
                finite = 0;
            xd[d] = x[d];
            nn += (double)x[d] * x[d];
        }
        if (!finite) {
            /* Never prunable: the exact score (NaN, ranked last) decides. */
            for (uint32_t d = 0; d < groups * 4; d++)
                *code_at(hs, ts, dim, head, i, d) = 128;
            in[lane] = 0;
            in[16 + lane] = INFINITY;
            in[32 + lane] = INFINITY;
            in[48 + lane] = 0;
            in[64 + lane] = INFINITY;
            continue;
        }
        rotate(rot, xd, dim, y);
        for (uint32_t d = 0; d < dim; d++) {
            if (fabs(y[d]) > amax)
                amax = fabs(y[d]);
            yy += y[d] * y[d];
        }
        scale = (float)(amax / 127.0);
        for (uint32_t d = 0; d < dim; d++) {
            /* A scale that underflowed to 0 keeps code 0: the residual is
             * then the whole row, which is still a true bound. */
            int c = scale > 0 ? code_of(y[d], scale) : 0;
            double t = y[d] - (double)scale * c;
            ee += t * t;
            if (d >= 4 * head)
                tail += (long)c * c;
            *code_at(hs, ts, dim, head, i, d) = (uint8_t)(c + 128);
        }
        for (uint32_t d = dim; d < groups * 4; d++)
            *code_at(hs, ts, dim, head, i, d) = 128;
        in[lane] = scale;
        in[16 + lane] = round_up(sqrt(ee));
        /* The larger of |x| and |y|: the bound needs |y|, the metrics |x|,
         * and the two differ by the rotation's eps at most. */
        in[32 + lane] = round_up(sqrt(fmax(nn, yy)));
        in[48 + lane] = in[32 + lane] > 0 ? (float)(1.0 / in[32 + lane]) : 0.0f;
        in[64 + lane] = round_up(sqrt((double)tail));
    }
    /* Rows past count in the last block: code 0 (stored 128); the kernels
     * never report them. */
    for (size_t i = count; i % AKV_SKETCH_ROWS != 0; i++)
        for (uint32_t d = 0; d < groups * 4; d++)
            *code_at(hs, ts, dim, head, i, d) = 128;
    free(xd);
}

void akv_sketch_query(const double *r, uint32_t dim, const double *rot, double eps, uint32_t head,
                      struct akv_sketch_query *q, int32_t *packed, int8_t *codes)
{
    uint32_t groups = akv_sketch_groups(dim);
    double amax = 0, rr = 0, dd = 0, r2 = 0, zbuf[AKV_SKETCH_ROT_DIM_MAX];
    const double *z = r;
    long tail = 0;
    int32_t sum = 0;
    int finite = 1;

    memset(q, 0, sizeof *q);
    memset(codes, 0, (size_t)groups * 4);
    for (uint32_t d = 0; d < dim; d++) {
        if (!isfinite(r[d]))
            finite = 0;
        r2 += r[d] * r[d];
    }
    if (rot != NULL) {
        if (dim > AKV_SKETCH_ROT_DIM_MAX)
            finite = 0; /* cannot rotate: prune nothing */
        else if (finite) {
            rotate(rot, r, dim, zbuf);
            z = zbuf;
        }
    }
    for (uint32_t d = 0; finite && d < dim; d++)
        if (fabs(z[d]) > amax)
            amax = fabs(z[d]);
    q->b = (float)(amax / 127.0);
    /* A zero (or vanishing) query bounds nothing usefully: every word ties,
     * so let the exact scores decide for all of them. So does one whose
     * size leaves the float arithmetic of the bounds (products of |r| and
     * the rows' norms) without its range or its precision: a client's raw
     * vector may have any finite float components. */
    q->finite = finite && q->b > 0 && isnormal(q->b) && sqrt(r2) >= SKETCH_QUERY_NORM_MIN &&
                sqrt(r2) <= SKETCH_QUERY_NORM_MAX;
    if (!q->finite)
        q->b = 0; /* the codes stay zero: every estimate is 0, never inf * 0 */
    if (q->finite) {
        for (uint32_t d = 0; d < dim; d++) {
            int c = code_of(z[d], q->b);
            double zh = (double)q->b * c;
            codes[d] = (int8_t)c;
            sum += c;
            rr += zh * zh;
            dd += (z[d] - zh) * (z[d] - zh);
            if (d >= 4 * head)
                tail += (long)c * c;
        }
    }
    q->sum = sum;
    q->rbound = round_up(sqrt(rr) * (1 + AKV_SKETCH_MU));
    q->dbound = round_up(sqrt(dd) + AKV_SKETCH_MU * sqrt(rr) + eps * sqrt(r2) * (1 + 1e-9));
    q->tbound = round_up(sqrt((double)tail));
    for (uint32_t g = 0; g < groups; g++) {
        uint32_t w = (uint32_t)(uint8_t)codes[4 * g] | (uint32_t)(uint8_t)codes[4 * g + 1] << 8 |
                     (uint32_t)(uint8_t)codes[4 * g + 2] << 16 |
                     (uint32_t)(uint8_t)codes[4 * g + 3] << 24;
        memcpy(&packed[g], &w, sizeof w);
    }
}
