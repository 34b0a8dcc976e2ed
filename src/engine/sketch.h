/*
 * sketch.h - the int8 sketch of the vocabulary matrix: a quarter-size copy
 * of every row that bounds each dot product, so the ranking scan can discard
 * almost every word without reading its float vector.
 *
 * For a row x (float) the sketch keeps a scale a = max|x_d| / 127 and codes
 * c_d = round(x_d / a) in [-127, 127], so x^ = a c. A query vector r is
 * quantised the same way at query time (r^ = b d). Then exactly
 *
 *   r.x = a b (c.d) + r^.(x - x^) + (r - r^).x
 *
 * and with e >= |x - x^|, R >= |r^|, D >= |r - r^| and n >= |x|,
 *
 *   |r.x - a b (c.d)| <= R e + D n.
 *
 * Rotation. The sketch is of y = P x rather than x, where P (dim x dim,
 * double) holds the principal axes of the vocabulary, largest variance
 * first, and the query is rotated the same way (z = P r). Then
 * r.x = z.y + r.(I - P'P).x, and |r.(I - P'P).x| <= eps |r| |x| with eps
 * >= |I - P'P| (Frobenius, so at least the spectral norm) recorded at
 * import; it is folded into D. What the rotation buys: the first `head`
 * groups carry most of every dot product, so with the norm of the tail
 * codes t = |c_tail| per row and |d_tail| per query,
 *   |c.d - c_head.d_head| <= t |d_tail|,
 * and a bound from the head alone already discards most words; the tail is
 * only read for the rest (measured on GloVe 6B 100d with a 72-dimension
 * head: 2-4% of 16-word blocks need it for a top-5 query).
 *
 * c.d is an exact integer whatever instructions compute it, so every kernel
 * (portable, AVX2, AVX-512 VNNI) gets the same interval, up to float
 * rounding that the margin AKV_SKETCH_MU covers (see rank.c).
 *
 * Layout (both sections live in the vocabulary file, see vocab.h). Rows
 * go in blocks of AKV_SKETCH_ROWS; dimensions in groups of AKV_SKETCH_GROUP.
 * A group of a block is 64 bytes: the 4 codes of row 0, then of row 1, ...
 * of row 15, stored as c + 128 (unsigned). One 64-byte load is one group
 * of 16 rows, exactly the operand of a VNNI dot-product instruction, and no
 * horizontal sums are needed. Dimensions past dim and rows past count are
 * code 0.
 *   head section: per block, its `head` groups, then its row information:
 *          5 arrays of 16 floats, scale a, residual e (rounded up), norm n
 *          (rounded up), 1/n (0 for a zero row) and the norm of the tail
 *          codes (rounded up). What every query reads is one sequential
 *          stream, which the hardware prefetcher follows.
 *   tail section: per block, its remaining groups, read only for the blocks
 *          whose head bound leaves a word in the running.
 * A row with a non-finite component gets scale 0 and residual +inf, so it
 * can never be discarded and its exact score decides.
 *
 * Threading: pure functions; any thread.
 */
#ifndef ATTNKV_SKETCH_H
#define ATTNKV_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#define AKV_SKETCH_ROWS 16
#define AKV_SKETCH_GROUP 4
#define AKV_SKETCH_BLOCK_INFO (5 * AKV_SKETCH_ROWS) /* floats of info per block */
/* Above this dimension the sketch is not rotated (the rotation would cost
 * dim^2 per query and dim^3 at import). */
#define AKV_SKETCH_ROT_DIM_MAX 512

/* Relative slack added to every bound: far above the float rounding of the
 * few operations that compute one (about 1e-6 at most), far below the
 * spread of real scores. */
#define AKV_SKETCH_MU 1e-5

static inline size_t akv_sketch_blocks(size_t count)
{
    return (count + AKV_SKETCH_ROWS - 1) / AKV_SKETCH_ROWS;
}

static inline uint32_t akv_sketch_groups(uint32_t dim)
{
    return (dim + AKV_SKETCH_GROUP - 1) / AKV_SKETCH_GROUP;
}

/* Bytes of one block in the head section and in the tail section. */
static inline size_t akv_sketch_head_rec(uint32_t head)
{
    return (size_t)head * 64 + AKV_SKETCH_BLOCK_INFO * sizeof(float);
}

static inline size_t akv_sketch_tail_rec(uint32_t dim, uint32_t head)
{
    return (size_t)(akv_sketch_groups(dim) - head) * 64;
}

/* Bytes of the head and tail sections. */
static inline size_t akv_sketch_head_bytes(size_t count, uint32_t head)
{
    return akv_sketch_blocks(count) * akv_sketch_head_rec(head);
}

static inline size_t akv_sketch_tail_bytes(size_t count, uint32_t dim, uint32_t head)
{
    return akv_sketch_blocks(count) * akv_sketch_tail_rec(dim, head);
}

/* The 64 bytes of group g of block blk. */
static inline const uint8_t *akv_sketch_group(const uint8_t *hs, const uint8_t *ts, uint32_t dim,
                                              uint32_t head, size_t blk, uint32_t g)
{
    if (g < head)
        return hs + blk * akv_sketch_head_rec(head) + (size_t)g * 64;
    return ts + blk * akv_sketch_tail_rec(dim, head) + (size_t)(g - head) * 64;
}

/* The row information of block blk. */
static inline const float *akv_sketch_block_info(const uint8_t *hs, uint32_t head, size_t blk)
{
    return (const float *)(const void *)(hs + blk * akv_sketch_head_rec(head) + (size_t)head * 64);
}

/* The rotation: computes rot (dim x dim doubles, row-major, rows = axes)
 * from the principal axes of up to 50,000 rows spread over the vocabulary,
 * *eps (>= |I - rot' rot|) and *head (groups in the head). Returns 1, or 0
 * when the sketch is better left unrotated (dim > AKV_SKETCH_ROT_DIM_MAX, or
 * too few dimensions to split): then head covers every group and rot is not
 * written. */
int akv_sketch_plan(const float *rows, size_t count, uint32_t dim, double *rot, double *eps,
                    uint32_t *head);

/* Fills the head and tail sections (64-byte aligned, zeroed by the caller
 * to their full sizes) for count rows of dim floats, rotated by rot (NULL:
 * not rotated), with head groups in the head. */
void akv_sketch_build(const float *rows, size_t count, uint32_t dim, const double *rot,
                      uint32_t head, uint8_t *hs, uint8_t *ts);

/* A quantised query. packed[g] holds the 4 signed codes of group g as the
 * little-endian bytes of one int32 (what a VNNI instruction broadcasts);
 * codes[] the same codes one per dimension (for the portable kernel). */
struct akv_sketch_query {
    float b;      /* query scale */
    float rbound; /* >= |r^| (1 + MU) */
    float dbound; /* >= |z - z^| + MU |z^| + eps |r| */
    float tbound; /* >= |d_tail| (the tail codes' norm) */
    int32_t sum;  /* sum of the codes: the VNNI kernel reads codes + 128 */
    int finite;   /* 0: nothing may be pruned (r is not finite, zero, or of a size the
                   * float bounds cannot handle: see akv_sketch_query) */
};

/* Quantises r (dim doubles), rotated by rot (NULL: not rotated; eps as
 * recorded with it); packed needs akv_sketch_groups(dim) entries and codes
 * that many times 4. */
void akv_sketch_query(const double *r, uint32_t dim, const double *rot, double eps, uint32_t head,
                      struct akv_sketch_query *q, int32_t *packed, int8_t *codes);

#endif
