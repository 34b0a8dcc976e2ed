/*
 * refimpl.c - see refimpl.h. Clarity over speed: every score in double,
 * softmax in two passes, the whole vocabulary sorted.
 */
#include "refimpl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ref_embed(const struct akv_vocab *voc, const char *text, double *out)
{
    uint32_t dim = akv_vocab_dim(voc);
    char *copy = strdup(text), *save = NULL;
    size_t n = 0;

    memset(out, 0, dim * sizeof *out);
    for (char *w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        int64_t id = akv_vocab_find(voc, w, strlen(w));
        if (id < 0) {
            free(copy);
            return -1;
        }
        for (uint32_t d = 0; d < dim; d++)
            out[d] += akv_vocab_vec(voc, (uint32_t)id)[d];
        n++;
    }
    free(copy);
    for (uint32_t d = 0; d < dim; d++)
        out[d] /= (double)n;
    return 0;
}

static enum akv_metric sort_metric;

static int cmp(const void *a, const void *b)
{
    const struct ref_hit *x = a, *y = b;
    int better_first = sort_metric == AKV_METRIC_L2 ? (x->score < y->score) : (x->score > y->score);
    if (x->score != y->score)
        return better_first ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

size_t ref_rank(const struct akv_vocab *voc, const double *r, enum akv_metric m, unsigned k,
                struct ref_hit *hits)
{
    size_t count = akv_vocab_count(voc);
    uint32_t dim = akv_vocab_dim(voc);
    struct ref_hit *all = malloc(count * sizeof *all);
    double rr = 0;

    for (uint32_t d = 0; d < dim; d++)
        rr += r[d] * r[d];
    for (size_t i = 0; i < count; i++) {
        const float *x = akv_vocab_vec(voc, (uint32_t)i);
        double dd = 0, xr = 0, xx = 0;
        for (uint32_t d = 0; d < dim; d++) {
            dd += (x[d] - r[d]) * (x[d] - r[d]);
            xr += x[d] * r[d];
            xx += (double)x[d] * x[d];
        }
        all[i].id = (uint32_t)i;
        if (m == AKV_METRIC_L2)
            all[i].score = sqrt(dd);
        else if (m == AKV_METRIC_COSINE)
            all[i].score = (xx > 0 && rr > 0) ? xr / sqrt(xx * rr) : 0;
        else
            all[i].score = xr;
    }
    sort_metric = m;
    qsort(all, count, sizeof *all, cmp);
    if (k > count)
        k = (unsigned)count;
    memcpy(hits, all, k * sizeof *hits);
    free(all);
    return k;
}

int ref_attend(const struct akv_vocab *voc, const struct ref_entry *e, size_t n, const double *q,
               enum akv_attn_mode mode, double tau, double *r, double *weights)
{
    uint32_t dim = akv_vocab_dim(voc);
    double *s = malloc((n ? n : 1) * sizeof *s);
    double mx = -INFINITY, z = 0, qq = 0, mxe = -INFINITY, ze = 0;
    size_t nemb = 0;

    for (uint32_t d = 0; d < dim; d++)
        r[d] = 0;
    if (n == 0) {
        free(s);
        return 0;
    }
    for (uint32_t d = 0; d < dim; d++)
        qq += q[d] * q[d];
    for (size_t i = 0; i < n; i++) {
        double kq = 0, kk = 0;
        for (uint32_t d = 0; d < dim; d++) {
            kq += e[i].k[d] * q[d];
            kk += e[i].k[d] * e[i].k[d];
        }
        s[i] = mode == AKV_ATTN_DOT ? kq / tau : (kk > 0 && qq > 0 ? kq / sqrt(kk * qq) / tau : 0);
        if (s[i] > mx)
            mx = s[i];
        if (!e[i].payload && s[i] > mxe)
            mxe = s[i];
    }
    /* The blend: a softmax over the embedded entries alone. */
    for (size_t i = 0; i < n; i++)
        if (!e[i].payload) {
            double w = exp(s[i] - mxe);
            ze += w;
            nemb++;
            for (uint32_t d = 0; d < dim; d++)
                r[d] += w * e[i].v[d];
        }
    for (uint32_t d = 0; d < dim && nemb > 0; d++)
        r[d] /= ze;
    for (size_t i = 0; i < n; i++) {
        s[i] = exp(s[i] - mx);
        z += s[i];
    }
    for (size_t i = 0; i < n; i++)
        if (weights != NULL)
            weights[i] = s[i] / z;
    free(s);
    return nemb > 0;
}

static const struct ref_entry *fget_entries;

static int value_cmp(size_t a, size_t b)
{
    const struct ref_entry *x = &fget_entries[a], *y = &fget_entries[b];
    size_t n = x->vlen < y->vlen ? x->vlen : y->vlen;
    int d = n ? memcmp(x->val, y->val, n) : 0;
    return d != 0 ? d : (x->vlen > y->vlen) - (x->vlen < y->vlen);
}

static int fget_cmp(const void *a, const void *b)
{
    const struct ref_value *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    return value_cmp(x->entry, y->entry);
}

size_t ref_fget(const struct akv_vocab *voc, const struct ref_entry *e, size_t n, const double *q,
                enum akv_attn_mode mode, double tau, unsigned k, double minweight,
                struct ref_value *out)
{
    double *w = malloc((n ? n : 1) * sizeof *w), *r = calloc(akv_vocab_dim(voc), sizeof *r);
    struct ref_value *g = malloc((n ? n : 1) * sizeof *g);
    size_t ng = 0, nk = 0;

    if (n > 0)
        ref_attend(voc, e, n, q, mode, tau, r, w);
    fget_entries = e;
    /* Quadratic, and plain: every entry joins the first group of its bytes. */
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < ng && value_cmp(g[j].entry, i) != 0)
            j++;
        if (j == ng)
            g[ng++] = (struct ref_value){i, 0};
        g[j].weight += w[i];
    }
    qsort(g, ng, sizeof *g, fget_cmp);
    for (size_t j = 0; j < ng && nk < k; j++)
        if (g[j].weight >= minweight)
            out[nk++] = g[j];
    free(w);
    free(r);
    free(g);
    return nk;
}

size_t ref_query(const struct akv_vocab *voc, const struct ref_entry *e, size_t n, const double *q,
                 enum akv_attn_mode mode, double tau, enum akv_metric m, unsigned k,
                 struct ref_hit *hits, double *weights)
{
    uint32_t dim = akv_vocab_dim(voc);
    double *r = calloc(dim, sizeof *r);
    size_t nh = 0;

    if (ref_attend(voc, e, n, q, mode, tau, r, weights))
        nh = ref_rank(voc, r, m, k, hits);
    free(r);
    return nh;
}

static int excluded(uint32_t id, uint32_t limit, const uint32_t *excl, size_t nexcl)
{
    if (limit > 0 && id >= limit)
        return 1;
    for (size_t i = 0; i < nexcl; i++)
        if (excl[i] == id)
            return 1;
    return 0;
}

/* Moves the admitted hits of all[0..n) to the front; returns their number. */
static size_t keep_admitted(struct ref_hit *all, size_t n, uint32_t limit, const uint32_t *excl,
                            size_t nexcl)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (!excluded(all[i].id, limit, excl, nexcl))
            all[j++] = all[i];
    return j;
}

size_t ref_rank_filtered(const struct akv_vocab *voc, const double *r, enum akv_metric m,
                         unsigned k, uint32_t limit, const uint32_t *excl, size_t nexcl,
                         struct ref_hit *hits)
{
    size_t count = akv_vocab_count(voc), n;
    struct ref_hit *all = malloc(count * sizeof *all);

    n = ref_rank(voc, r, m, (unsigned)count, all);
    n = keep_admitted(all, n, limit, excl, nexcl);
    if (n > k)
        n = k;
    memcpy(hits, all, n * sizeof *hits);
    free(all);
    return n;
}

void ref_3cosadd(const double *terms, unsigned npos, unsigned nneg, uint32_t dim, double *out)
{
    double nn = 0;

    for (uint32_t d = 0; d < dim; d++)
        out[d] = 0;
    for (unsigned t = 0; t < npos + nneg; t++) {
        const double *x = terms + (size_t)t * dim;
        double tn = 0;
        for (uint32_t d = 0; d < dim; d++)
            tn += x[d] * x[d];
        tn = sqrt(tn);
        for (uint32_t d = 0; d < dim; d++)
            out[d] += (t < npos ? 1 : -1) * (tn > 0 ? x[d] / tn : 0);
    }
    for (uint32_t d = 0; d < dim; d++) {
        out[d] /= (npos + nneg);
        nn += out[d] * out[d];
    }
    nn = sqrt(nn);
    for (uint32_t d = 0; d < dim; d++)
        out[d] = (float)(nn > 0 ? out[d] / nn : 0);
}

static int cmp_sim(const void *a, const void *b)
{
    const struct ref_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

size_t ref_cosmul(const struct akv_vocab *voc, const double *terms, unsigned npos, unsigned nneg,
                  unsigned k, uint32_t limit, const uint32_t *excl, size_t nexcl,
                  struct ref_hit *hits)
{
    size_t count = akv_vocab_count(voc), n = 0;
    uint32_t dim = akv_vocab_dim(voc);
    struct ref_hit *all = malloc(count * sizeof *all);

    for (size_t i = 0; i < count; i++) {
        const float *x = akv_vocab_vec(voc, (uint32_t)i);
        double num = 1, den = 1;
        if (excluded((uint32_t)i, limit, excl, nexcl))
            continue;
        for (unsigned t = 0; t < npos + nneg; t++) {
            const double *u = terms + (size_t)t * dim;
            double xu = 0, xx = 0, uu = 0, c;
            for (uint32_t d = 0; d < dim; d++) {
                xu += x[d] * u[d];
                xx += (double)x[d] * x[d];
                uu += u[d] * u[d];
            }
            c = xx > 0 && uu > 0 ? xu / sqrt(xx * uu) : 0;
            if (t < npos)
                num *= (1 + c) / 2;
            else
                den *= (1 + c) / 2;
        }
        all[n].id = (uint32_t)i;
        all[n++].score = num / (den + 1e-6);
    }
    qsort(all, n, sizeof *all, cmp_sim);
    if (n > k)
        n = k;
    memcpy(hits, all, n * sizeof *hits);
    free(all);
    return n;
}
