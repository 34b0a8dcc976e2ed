/*
 * sketch.c - building the int8 sketch of the vocabulary and quantising query
 * vectors; the bound these give is explained in sketch.h.
 *
 * Every bound here is computed in double and rounded up to float, so the
 * stored residuals and norms are never smaller than the true values.
 *
 * Threading: pure functions; any thread.
 */
#include "sketch.h"

#include <math.h>
#include <string.h>

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

void akv_sketch_build(const float *rows, size_t count, uint32_t dim, uint8_t *codes, float *info)
{
    uint32_t groups = akv_sketch_groups(dim);

    for (size_t i = 0; i < count; i++) {
        const float *x = rows + i * dim;
        size_t lane = i % AKV_SKETCH_ROWS;
        uint8_t *cb = codes + (i / AKV_SKETCH_ROWS) * groups * AKV_SKETCH_ROWS * AKV_SKETCH_GROUP;
        float *in = info + (i / AKV_SKETCH_ROWS) * AKV_SKETCH_BLOCK_INFO;
        double amax = 0, nn = 0, ee = 0;
        float scale;
        int finite = 1;

        for (uint32_t d = 0; d < dim; d++) {
            if (!isfinite(x[d]))
                finite = 0;
            else if (fabs(x[d]) > amax)
                amax = fabs(x[d]);
            nn += (double)x[d] * x[d];
        }
        if (!finite) {
            /* Never prunable: the exact score (NaN, ranked last) decides. */
            for (uint32_t d = 0; d < dim; d++)
                cb[(d / 4) * 64 + lane * 4 + d % 4] = 128;
            in[lane] = 0;
            in[16 + lane] = INFINITY;
            in[32 + lane] = INFINITY;
            in[48 + lane] = 0;
            continue;
        }
        scale = (float)(amax / 127.0);
        for (uint32_t d = 0; d < dim; d++) {
            /* A scale that underflowed to 0 keeps code 0: the residual is
             * then the whole row, which is still a true bound. */
            int c = scale > 0 ? code_of(x[d], scale) : 0;
            double t = (double)x[d] - (double)scale * c;
            ee += t * t;
            cb[(d / 4) * 64 + lane * 4 + d % 4] = (uint8_t)(c + 128);
        }
        for (uint32_t d = dim; d < groups * 4; d++)
            cb[(d / 4) * 64 + lane * 4 + d % 4] = 128;
        in[lane] = scale;
        in[16 + lane] = round_up(sqrt(ee));
        in[32 + lane] = round_up(sqrt(nn));
        in[48 + lane] = in[32 + lane] > 0 ? (float)(1.0 / in[32 + lane]) : 0.0f;
    }
    /* Rows past count in the last block: code 0 (stored 128); the kernels
     * never report them. */
    for (size_t i = count; i % AKV_SKETCH_ROWS != 0; i++) {
        uint8_t *cb = codes + (i / AKV_SKETCH_ROWS) * groups * AKV_SKETCH_ROWS * AKV_SKETCH_GROUP;
        for (uint32_t g = 0; g < groups; g++)
            memset(cb + g * 64 + (i % AKV_SKETCH_ROWS) * 4, 128, 4);
    }
}

void akv_sketch_query(const double *r, uint32_t dim, struct akv_sketch_query *q,
                      int32_t *packed, int8_t *codes)
{
    uint32_t groups = akv_sketch_groups(dim);
    double amax = 0, rr = 0, dd = 0;
    int32_t sum = 0;
    int finite = 1;

    memset(q, 0, sizeof *q);
    memset(codes, 0, (size_t)groups * 4);
    for (uint32_t d = 0; d < dim; d++) {
        if (!isfinite(r[d]))
            finite = 0;
        else if (fabs(r[d]) > amax)
            amax = fabs(r[d]);
    }
    q->b = (float)(amax / 127.0);
    /* A zero (or vanishing) query bounds nothing usefully: every word ties,
     * so let the exact scores decide for all of them. */
    q->finite = finite && q->b > 0 && isnormal(q->b);
    if (q->finite) {
        for (uint32_t d = 0; d < dim; d++) {
            int c = code_of(r[d], q->b);
            double rh = (double)q->b * c;
            codes[d] = (int8_t)c;
            sum += c;
            rr += rh * rh;
            dd += (r[d] - rh) * (r[d] - rh);
        }
    }
    q->sum = sum;
    q->rbound = round_up(sqrt(rr) * (1 + AKV_SKETCH_MU));
    q->dbound = round_up(sqrt(dd) + AKV_SKETCH_MU * sqrt(rr));
    for (uint32_t g = 0; g < groups; g++) {
        uint32_t w = (uint32_t)(uint8_t)codes[4 * g] | (uint32_t)(uint8_t)codes[4 * g + 1] << 8 |
                     (uint32_t)(uint8_t)codes[4 * g + 2] << 16 |
                     (uint32_t)(uint8_t)codes[4 * g + 3] << 24;
        memcpy(&packed[g], &w, sizeof w);
    }
}
