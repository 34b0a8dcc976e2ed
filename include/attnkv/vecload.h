/*
 * vecload.h - readers for third-party word-vector files.
 *
 * Supported inputs, each plain or gzip-compressed (detected from the bytes,
 * not the name):
 *   - GloVe text: "word v1 ... vd" per line, no header; d from the first line.
 *   - word2vec text: a "count dim" header line, then GloVe-like lines.
 *   - word2vec binary: a "count dim\n" header, then per row the word, one
 *     space, dim little-endian float32s, and an optional '\n'.
 * The project's own binary format is read by vocab.h, not here.
 *
 * What the loaders do with malformed input (also documented in README.md):
 *   stop (an error, nothing is produced):
 *     empty input; a first row from which no dimension can be read;
 *     a dimension of 0 or above AKV_DIM_MAX; a word2vec header that does not
 *     parse or disagrees with the rows; a word2vec binary row cut short;
 *     gzip data that does not inflate; more than max_bad malformed rows.
 *   skip the row, count it, report it with file:line:
 *     a ragged row (fewer or more values than the dimension); a value that is
 *     not a number; NaN or infinity; an empty, overlong (> AKV_WORD_MAX) or
 *     invalid UTF-8 word; a duplicate word (the first occurrence is kept).
 *
 * Threading: none; a load is a plain function call on the caller's thread.
 */
#ifndef ATTNKV_VECLOAD_H
#define ATTNKV_VECLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "attnkv/vectab.h"

enum akv_vecfmt {
    AKV_VECFMT_AUTO = 0, /* detect from the first bytes */
    AKV_VECFMT_GLOVE,    /* GloVe text */
    AKV_VECFMT_W2V_TEXT, /* word2vec text */
    AKV_VECFMT_W2V_BIN,  /* word2vec binary */
};

/* Why rows were skipped; indexes akv_vecload_stats.skipped. */
enum akv_vecload_skip {
    AKV_SKIP_RAGGED = 0,
    AKV_SKIP_NOT_NUMBER,
    AKV_SKIP_NONFINITE,
    AKV_SKIP_BAD_WORD,
    AKV_SKIP_DUPLICATE,
    AKV_SKIP_NKINDS
};

struct akv_vecload_stats {
    enum akv_vecfmt format;   /* the format that was read (after detection) */
    int gzip;                 /* 1 if the input was gzip-compressed */
    uint64_t rows;            /* rows seen (data rows, not the header) */
    uint64_t kept;            /* rows added to the table */
    uint64_t skipped[AKV_SKIP_NKINDS];
    uint64_t bytes_in;        /* bytes consumed (compressed bytes for gzip) */
};

/* Called now and then during a load (about every 64k rows) so a tool can show
 * progress: bytes consumed so far and total (0 when unknown, e.g. stdin). */
typedef void (*akv_vecload_progress_fn)(void *arg, uint64_t rows, uint64_t bytes_done,
                                        uint64_t bytes_total);

struct akv_vecload_opts {
    enum akv_vecfmt format;       /* AKV_VECFMT_AUTO to detect */
    uint64_t max_bad;             /* stop after this many skipped rows; 0 = no limit */
    FILE *diag;                   /* where skip warnings go ("file:line: reason"); NULL = nowhere */
    unsigned max_diag_per_kind;   /* print at most this many warnings per skip kind (0 = 10) */
    akv_vecload_progress_fn progress; /* optional */
    void *progress_arg;
};

/* Reads the file at path ("-" for standard input) into t, which this function
 * initialises; on success the caller owns t and must akv_vectab_fini it.
 * name is used in messages (pass NULL to use path).
 * Returns 0, or a negative errno with a "file:line: reason" message in err;
 * on failure t is left finalised (nothing to free). */
int akv_vecload_file(const char *path, const struct akv_vecload_opts *opts,
                     struct akv_vectab *t, struct akv_vecload_stats *st, char *err,
                     size_t errlen);

/* The same from memory (plain or gzip bytes); used by tests and the fuzzer.
 * name is used in messages. */
int akv_vecload_mem(const void *buf, size_t len, const char *name,
                    const struct akv_vecload_opts *opts, struct akv_vectab *t,
                    struct akv_vecload_stats *st, char *err, size_t errlen);

/* A short name for a format ("glove", "word2vec-text", "word2vec-binary"). */
const char *akv_vecfmt_name(enum akv_vecfmt f);

#endif
