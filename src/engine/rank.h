/*
 * rank.h - nearest vocabulary words to a vector: the ranking step of every
 * QUERY and NEIGHBORS.
 *
 * Threading: reads only the immutable vocabulary. akv_rank_many and
 * akv_rank_topk run on any thread. A scan object (akv_rank_scan_*) belongs
 * to one owner, except that akv_rank_scan_work may run on several threads at
 * once for distinct part numbers; the owner calls akv_rank_scan_end after
 * every call of it has returned (and after whatever hand-off orders memory
 * between those threads and itself, such as a mutex).
 */
#ifndef ATTNKV_RANK_H
#define ATTNKV_RANK_H

#include <stddef.h>

#include "attnkv/types.h"
#include "attnkv/vocab.h"

/* Ranks every vocabulary word by nearness to r (dim doubles) under metric m
 * and writes the best min(k, count) to hits, best first: l2 by increasing
 * Euclidean distance, cosine and dot by decreasing similarity, ties by
 * increasing word id. Scores are computed in double from the float vectors.
 * Returns the number of hits (0 for k == 0, or when memory ran out). */
size_t akv_rank_topk(const struct akv_vocab *v, const double *r, enum akv_metric m, unsigned k,
                     struct akv_hit *hits);

/* One request of a shared scan: r (dim doubles), metric, k; the result goes
 * to hits (room for min(k, AKV_K_MAX)) and nhits. Optionally, only some
 * words may be answered: those with ids below limit (0: every word; the
 * vocabulary is in frequency order, so this is "the limit most frequent
 * words") and not among skip[0..nskip) (sorted ids). A word that may not be
 * answered takes no part in the scan's thresholds, so the result is the
 * exact top k of the words that may be. */
struct akv_rank_req {
    const double *r;
    enum akv_metric m;
    unsigned k;
    struct akv_hit *hits;
    size_t nhits;
    uint32_t limit;
    const uint32_t *skip;
    size_t nskip;
};

/* Whether word id may be answered under limit and skip (as above). */
int akv_rank_admits(uint32_t id, uint32_t limit, const uint32_t *skip, size_t nskip);

/* 3CosMul (Levy and Goldberg 2014, as gensim's most_similar_cosmul): with
 * c_t(x) = cos(x, t) = x.u_t / |x|, a word's score is
 *   prod_{p positive} (1 + c_p(x)) / 2  /  (prod_{n negative} (1 + c_n(x)) / 2 + 1e-6)
 * (an empty product is 1) over the unit term vectors units[0..npos)
 * (positive) and units[npos..npos+nneg) (negative), each dim doubles. A
 * request of the exhaustive double-precision scan below; hits as
 * akv_rank_req (larger is better, ties by word id). */
struct akv_cosmul_req {
    const double *units;
    const float *unitsf; /* the same rounded to float (for a bound that skips most words) */
    unsigned npos, nneg;
    unsigned k;
    uint32_t limit;
    const uint32_t *skip;
    size_t nskip;
};

/* Scores words [row0, row1) for the n requests (words a request does not
 * admit are left out) and merges them into each request's best so far,
 * hits[j * kmax ..][0..nhits[j]) with room for its k (<= kmax). A word is
 * first bounded from float estimates of its cosines; those that may enter
 * the best k are scored in double, so the result is that of an exhaustive
 * double scan. Its row is read once for all the requests. */
void akv_rank_cosmul(const struct akv_vocab *v, const struct akv_cosmul_req *reqs, size_t n,
                     uint32_t row0, uint32_t row1, struct akv_hit *hits, size_t kmax,
                     size_t *nhits);
/* Merges sorted best lists a (na) and b (nb) of the cosmul ordering into
 * out (room for k); returns the count. */
size_t akv_rank_merge_sim(const struct akv_hit *a, size_t na, const struct akv_hit *b, size_t nb,
                          unsigned k, struct akv_hit *out);

/* Ranks the vocabulary for n requests in one pass over it, each with exactly
 * the result akv_rank_topk would give it alone. Returns how many requests
 * were answered: n, or 0 (nothing written) when memory ran out. */
size_t akv_rank_many(const struct akv_vocab *v, struct akv_rank_req *reqs, size_t n);

/* The same pass shared by up to nparts threads: begin (quantises the
 * requests), work (scans chunks of the vocabulary that no other call has
 * claimed yet, until none is left; part is the calling thread's number,
 * 0 <= part < nparts, each used by at most one call), end (merges the parts,
 * rescores the survivors exactly and writes every request's hits; frees the
 * scan). Every chunk is scanned once whichever calls ran and however they
 * interleaved, so one call of work covers the whole vocabulary when no
 * other thread joins. end returns 0, or -ENOMEM when some part ran out of
 * memory (no hits are then written). A scan whose work never ran may be
 * ended to free it; it answers nothing useful then. */
struct akv_rank_scan;
int akv_rank_scan_begin(const struct akv_vocab *v, struct akv_rank_req *reqs, size_t n,
                        unsigned nparts, struct akv_rank_scan **out);
void akv_rank_scan_work(struct akv_rank_scan *s, unsigned part);
int akv_rank_scan_end(struct akv_rank_scan *s);

/* Scores the n words ids[] against r (of norm rnorm, akv_rank_norm) under
 * m exactly, and merges them into hits[0..*nhits), the best so far (room
 * for k), ordered and scored exactly as a scan orders its survivors (the
 * same bits). No word may be offered twice. */
void akv_rank_rescore(const struct akv_vocab *v, const double *r, double rnorm, enum akv_metric m,
                      unsigned k, const uint32_t *ids, size_t n, struct akv_hit *hits,
                      size_t *nhits);
/* |r| for r of dim doubles, as the exact scores compute it. */
double akv_rank_norm(const double *r, uint32_t dim);

/* The scan kernels. All three give the same answers (the dot products of
 * the int8 sketch are exact integers, and the survivors are rescored in
 * double); they differ in speed. By default the fastest one the CPU runs is
 * used, or the one the environment variable AKV_RANK_KERNEL names. */
enum akv_rank_kernel { AKV_RANK_PORTABLE = 0, AKV_RANK_AVX2, AKV_RANK_AVX512VNNI };

/* Selects a kernel by name ("portable", "avx2", "avx512vnni" or "auto").
 * Returns 0, -EINVAL for an unknown name, -ENOTSUP when this CPU (or build)
 * lacks it. Meant for start-up, tests and benchmarks: call it while no scan
 * runs. */
int akv_rank_set_kernel(const char *name);
/* The kernel in use (after the automatic choice), and its name. */
enum akv_rank_kernel akv_rank_kernel(void);
const char *akv_rank_kernel_name(enum akv_rank_kernel k);

#endif
