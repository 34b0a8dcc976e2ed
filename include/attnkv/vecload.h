/*
 * vecload.h - readers for third-party word-vector files.
 *
 * Supported inputs, each plain or gzip-compressed (detected from the magic
 * bytes 1f 8b, not the name; concatenated gzip members are one stream):
 *   - GloVe text: "word v1 ... vd" per line, no header; d from the first line.
 *   - word2vec text: a "count dim" header line, then GloVe-like lines.
 *   - word2vec binary: a "count dim\n" header, then per row the word, one
 *     space, dim little-endian float32s, and an optional '\n' (a '\n' before
 *     the next word is accepted too).
 * The project's own binary format is read by vocab.h, not here.
 *
 * Text rows: the word is the bytes before the first space or tab; values are
 * separated by runs of spaces and tabs; a trailing '\r' is dropped and the
 * last line needs no '\n'. Values are read with strtof in the C locale.
 *
 * Detection (AKV_VECFMT_AUTO): a first line of exactly two unsigned integers
 * is a word2vec header, anything else starts a GloVe file. After a header,
 * the first row decides: binary if the dim*4 bytes after its word hold a
 * byte that text never has (a control byte other than tab, CR, LF; or a
 * byte >= 0x80 before the row's newline), text otherwise. Inputs that
 * defeat this (a GloVe file with one value per row whose first row is two
 * integers, a word2vec binary file of one or two dimensions whose first
 * vector happens to look like text) need the format given explicitly.
 *
 * Line numbers in messages count from 1 and include the header; in word2vec
 * binary, row n (from 1) is "line" n + 1.
 *
 * What the loaders do with malformed input (also documented in docs/vocab-format.md):
 *   stop (an error, nothing is produced):
 *     empty input; a first row from which no dimension can be read (GloVe:
 *     its values must all be numbers); a dimension of 0 or above
 *     AKV_DIM_MAX; a word2vec header that does not parse, or disagrees with
 *     the rows (the first data row must have exactly dim values); a word2vec
 *     binary file with fewer complete rows than its header announces (or a
 *     word not ended by a space within 1 MiB); gzip data that does not
 *     inflate or is cut short; more than max_bad malformed rows; no usable
 *     row at all; read errors and lack of memory.
 *   skip the row, count it, report it with file:line:
 *     a ragged row (fewer or more values than the dimension, including an
 *     empty line and a text row longer than 1 MiB); a value that is not a
 *     number; NaN or infinity (or a value beyond the float range); an empty,
 *     overlong (> AKV_WORD_MAX), invalid UTF-8 or NUL-containing word; a
 *     duplicate word (the first occurrence is kept). When a row has several
 *     problems, the first in this order is reported.
 *   warn only (a diag line, the load goes on):
 *     word2vec text whose row count differs from its header; bytes after the
 *     rows a word2vec binary header announced (they are not read).
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

/* Called now and then during a load (about every 64k rows, and once at the
 * end) so a tool can show progress: rows read, bytes consumed so far and the
 * total (0 when unknown, e.g. a pipe). Called on the loading thread. */
typedef void (*akv_vecload_progress_fn)(void *arg, uint64_t rows, uint64_t bytes_done,
                                        uint64_t bytes_total);

struct akv_vecload_opts {
    enum akv_vecfmt format;       /* AKV_VECFMT_AUTO to detect */
    uint64_t max_bad;             /* stop once more than this many rows are skipped; 0 = no limit */
    FILE *diag;                   /* where skip warnings go ("file:line: reason"); NULL = nowhere */
    unsigned max_diag_per_kind;   /* print at most this many warnings per skip kind (0 = 10) */
    akv_vecload_progress_fn progress; /* optional */
    void *progress_arg;
};

/* Reads the file at path ("-" for standard input, which is read but not
 * closed) into t, which this function initialises; on success the caller
 * owns t and must akv_vectab_fini it. Messages name the file by path
 * ("<stdin>" for "-"). opts and st may be NULL (defaults; no stats).
 * Returns 0, or a negative errno with a "file:line: reason" message in err
 * (-EINVAL for bad data, -ENOMEM, or the errno of a failed open or read,
 * then "file: reason"); on failure t is left zeroed (nothing to free). */
int akv_vecload_file(const char *path, const struct akv_vecload_opts *opts,
                     struct akv_vectab *t, struct akv_vecload_stats *st, char *err,
                     size_t errlen);

/* The same from memory (plain or gzip bytes); used by tests and the fuzzer.
 * The buffer is only read, never past len. name is used in messages (NULL:
 * "<memory>"). */
int akv_vecload_mem(const void *buf, size_t len, const char *name,
                    const struct akv_vecload_opts *opts, struct akv_vectab *t,
                    struct akv_vecload_stats *st, char *err, size_t errlen);

/* A short name for a format ("glove", "word2vec-text", "word2vec-binary"). */
const char *akv_vecfmt_name(enum akv_vecfmt f);

#endif
