/*
 * rank-portable.c - the ranking scan in portable C (rank-kernels.h).
 */
#include "engine/rank-kernels.h"

void akv_rank_scan_portable(const struct akv_rank_scan *s, struct rank_part *pp, size_t b0,
                            size_t b1)
{
    const uint8_t *hs = akv_vocab_sketch(s->v), *ts = akv_vocab_sketch_tail(s->v);
    uint32_t groups = s->groups;

    for (size_t blk = b0; blk < b1; blk++) {
        const float *in = akv_sketch_block_info(hs, s->head, blk);
        unsigned lanes = block_lanes(s, blk);
        for (size_t j = 0; j < s->n; j++) {
            const struct rank_query *q = &s->q[j];
            int32_t dots[AKV_SKETCH_ROWS] = {0};
            if (q->k == 0 || pp[j].oom || blk * AKV_SKETCH_ROWS >= q->limit)
                continue;
            for (uint32_t g = 0; g < groups; g++) {
                const uint8_t *x = akv_sketch_group(hs, ts, s->dim, s->head, blk, g);
                const int8_t *c = q->codes + 4 * g;
                for (unsigned l = 0; l < AKV_SKETCH_ROWS; l++)
                    dots[l] += (x[4 * l] - 128) * c[0] + (x[4 * l + 1] - 128) * c[1] +
                               (x[4 * l + 2] - 128) * c[2] + (x[4 * l + 3] - 128) * c[3];
            }
            finish_block(q, &pp[j], in, blk * AKV_SKETCH_ROWS, lanes, dots);
        }
    }
}
