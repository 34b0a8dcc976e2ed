/*
 * check-aof.c - attnkv-check-aof: checks an append-only file, repairs a
 * damaged one (--fix cuts it at the first damage, --salvage keeps every
 * good record), and shows which stored entries a new vocabulary would stop
 * serving (--vocab).
 *
 * Usage: attnkv-check-aof [--fix | --salvage] [--yes] [--backup PATH] FILE
 *        attnkv-check-aof --vocab NEW.akv [--current OLD.akv] FILE
 *
 * A snapshot preamble (aof.h) is reported (entries, chunks, the vectors it
 * was written for). Damage before its end leaves no whole preamble to
 * keep, so a repair writes the entries of its good chunks as PUT and
 * PAYLOAD records instead (they load by embedding their text), and drops
 * its SNAPBEGIN and SNAPEND records.
 *
 * Exit status: 0 the file is good (--vocab: every entry would be served);
 * 1 damage was found (repaired with --fix or --salvage; --vocab: some
 * entries would not be served); 2 usage or I/O error; 3 a repair was
 * declined or needs confirmation: nothing was changed.
 *
 * Design. The whole file is mapped and read with akv_aof_parse and
 * akv_aof_salvage (src/persist/aof.c), the parser the daemon replays with.
 * A check reports what each repair would lose before anything changes. A
 * repair never writes into the file: the original is kept as a backup (a
 * hard link when the backup is on the same file system, else a copy,
 * fsync'd), the repaired file is written beside it under a temporary name,
 * fsync'd, checked again with the parser, and renamed over the file, then
 * the directory is fsync'd. At every moment the file's name holds either
 * the whole original or the whole repaired file, and the original stays in
 * the backup. The rename is refused if the file changed while the tool
 * read it (a daemon still writing to it).
 *
 * --vocab replays the good records (last write wins; DEL, FLUSHDB,
 * FLUSHALL, SWAPDB and MULTI records as the daemon applies them; entries
 * whose expiry time has passed dropped, as at start-up) into a table of
 * pointers into the mapping, then embeds each entry's key and value with
 * the new vocabulary (akv_embed_words, as the store does).
 *
 * Ownership: everything lives until main returns; table entries point into
 * the mapping. Threading: single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "persist/aof.h"
#include "util/text.h"

#include "attnkv/embed.h"
#include "attnkv/version.h"
#include "attnkv/vocab.h"

#define PROG "attnkv-check-aof"

/* Exit statuses. */
enum { EX_GOOD = 0, EX_DAMAGED = 1, EX_ERROR = 2, EX_DECLINED = 3 };

/* The most databases any attnkvd can load ('databases' is at most 1024,
 * AKV_CONFIG_DATABASES_MAX in src/server/config.h). */
#define DB_MAX 1024

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " [--fix | --salvage] [--yes] [--backup PATH] FILE\n"
               "       " PROG " --vocab NEW.akv [--current OLD.akv] FILE\n"
               "\n"
               "Checks an attnkvd append-only file: every record's framing and checksums.\n"
               "A damaged record or one cut short at the end is reported with its offset,\n"
               "with what each repair would lose. Stop attnkvd before repairing its file.\n"
               "\n"
               "  --fix            cut the file at the first damaged record: every record\n"
               "                   after it is lost, readable or not\n"
               "  --salvage        keep every good record, skipping only the damaged ranges\n"
               "                   (each reported); a damaged MULTI record is dropped whole\n"
               "  -y, --yes        repair without asking (needed without a terminal)\n"
               "  --backup PATH    keep the original there (default FILE.bak-<UTC time>);\n"
               "                   an existing file is never overwritten\n"
               "  --vocab NEW.akv  list the stored entries (database, key, value) that would\n"
               "                   not be served with the vocabulary NEW.akv\n"
               "  --current OLD.akv  with --vocab: the vocabulary in use, to tell entries that\n"
               "                   would stop being served from those not served now either\n"
               "\n"
               "A file that starts with a snapshot preamble (written by a rewrite) is checked\n"
               "chunk by chunk; a repair of a damaged preamble keeps the entries of its good\n"
               "chunks as records. --vocab reads the preamble's entries too, and checks their\n"
               "word ids against their text with the vectors the preamble was written for,\n"
               "when NEW.akv or OLD.akv is that file.\n"
               "\n"
               "Exit status: 0 good; 1 damaged (repaired with --fix or --salvage), or with\n"
               "--vocab some entries would not be served; 2 usage or I/O error; 3 repair\n"
               "declined or not confirmed (nothing changed).\n");
}

struct file {
    const char *path;
    int fd;
    struct stat st;
    const unsigned char *map;
    size_t len;
};

static int file_open(struct file *f, const char *path)
{
    f->path = path;
    f->map = NULL;
    /* O_NONBLOCK: a FIFO is refused below instead of waited on (it means
     * nothing to a regular file). */
    f->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f->fd < 0 || fstat(f->fd, &f->st) < 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(f->st.st_mode)) {
        fprintf(stderr, PROG ": %s: not a regular file\n", path);
        return -1;
    }
    f->len = (size_t)f->st.st_size;
    if (f->len > 0) {
        void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, f->fd, 0);
        if (m == MAP_FAILED) {
            fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
            return -1;
        }
        f->map = m;
    }
    return 0;
}

/* The top-level records of a parse that are not part of a preamble. */
static size_t plain_records(const struct akv_aof_result *res)
{
    return res->records - res->counts[AKV_AOF_SNAPBEGIN] - res->counts[AKV_AOF_SNAPCHUNK] -
           res->counts[AKV_AOF_SNAPEND];
}

static void print_counts(const char *path, size_t bytes, size_t records, const size_t *counts)
{
    /* SET and PUT are both sets, DEL and DELETE both deletions; the kinds
     * that came with databases and transactions are named when present. */
    printf("%s: %zu bytes, %zu good records (%zu SET, %zu DEL, %zu FLUSHALL", path, bytes, records,
           counts[AKV_AOF_SET] + counts[AKV_AOF_PUT] + counts[AKV_AOF_PAYLOAD],
           counts[AKV_AOF_DEL] + counts[AKV_AOF_DELETE], counts[AKV_AOF_FLUSHALL]);
    if (counts[AKV_AOF_PAYLOAD])
        printf(", of which %zu PAYLOAD", counts[AKV_AOF_PAYLOAD]);
    if (counts[AKV_AOF_FLUSHDB])
        printf(", %zu FLUSHDB", counts[AKV_AOF_FLUSHDB]);
    if (counts[AKV_AOF_SWAPDB])
        printf(", %zu SWAPDB", counts[AKV_AOF_SWAPDB]);
    if (counts[AKV_AOF_MULTI])
        printf(", %zu MULTI", counts[AKV_AOF_MULTI]);
    printf(")\n");
}

/* The snapshot preamble as the parse found it (res->snap: 1 open, 2
 * whole). */
/* The SNAPBEGIN record of a file whose parse found one (it is the first
 * record, and it checked out). */
static void snap_head_of(const unsigned char *map, struct akv_aof_snap_head *h)
{
    struct akv_aof_record rec;

    memset(&rec, 0, sizeof(rec));
    rec.inner = map + AKV_AOF_FILE_HEADER + AKV_AOF_REC_HEADER;
    rec.inner_len = AKV_AOF_SNAP_HEAD;
    akv_aof_snap_head_decode(&rec, h);
}

/* The kinds of entries in a preamble's good chunks. */
struct snap_kinds {
    size_t payloads, expiring;
};

static int count_kinds(void *arg, const struct akv_aof_record *r)
{
    struct snap_kinds *k = arg;
    uint32_t kids[AKV_AOF_SNAP_WORDS_MAX], vids[AKV_AOF_SNAP_WORDS_MAX];
    struct akv_aof_snap_entry e;
    size_t at = 0;

    if (r->type != AKV_AOF_SNAPCHUNK)
        return 0;
    while (akv_aof_snap_next(r, &at, &e, kids, vids)) {
        k->payloads += (e.flags & AKV_AOF_SNAP_PAYLOAD) != 0;
        k->expiring += e.expire != 0;
    }
    return 0;
}

static void print_preamble(const char *path, const unsigned char *map,
                           const struct akv_aof_result *res, const struct snap_kinds *k)
{
    struct akv_aof_snap_head h;

    if (!res->snap)
        return;
    snap_head_of(map, &h);
    printf("%s: snapshot preamble (offsets %d to %zu): %llu entries (%zu payloads, %zu with an "
           "expiry time) in %llu chunks%s, for vectors of %llu words of %u dimensions (checksums "
           "%016llx %016llx)\n",
           path, AKV_AOF_FILE_HEADER, res->snap == 2 ? res->snap_end : res->good_end,
           (unsigned long long)res->snap_entries, k->payloads, k->expiring,
           (unsigned long long)res->snap_chunks, res->snap == 2 ? "" : " before the damage",
           (unsigned long long)h.words, (unsigned)h.dim, (unsigned long long)h.meta_sum,
           (unsigned long long)h.data_sum);
}

/* Whether v is the vocabulary a SNAPBEGIN names. */
static int same_vectors(const struct akv_vocab *v, const struct akv_aof_snap_head *h)
{
    uint64_t meta, data;

    akv_vocab_checksums(v, &meta, &data);
    return h->dim == akv_vocab_dim(v) && h->words == akv_vocab_count(v) && h->meta_sum == meta &&
           h->data_sum == data;
}

/* ------------------------------------------------------------------------
 * What a repair keeps: byte ranges of the original, in order.
 */

/* A range of the original (conv 0) or of the plan's converted records
 * (conv 1: offsets into cbuf). */
struct range {
    size_t off, len;
    int conv;
};

struct plan {
    struct range *r;
    size_t n, cap;
    size_t bytes;   /* the repaired file's size */
    size_t records; /* its top-level records */
    size_t after;   /* salvage: records kept after the first damage */
    size_t after_counts[AKV_AOF_TYPES];
    size_t first_bad; /* the first damaged offset (SIZE_MAX: none) */
    size_t risky;     /* skipped records that may have deleted or moved data */
    int verbose;      /* print each skipped range */
    /* A damaged preamble: its good chunks' entries are kept as PUT and
     * PAYLOAD records (in cbuf), its SNAPBEGIN and SNAPEND dropped. */
    int convert;
    unsigned char *cbuf;
    size_t clen, ccap;
    size_t snap_kept;      /* entries of the preamble kept */
    uint64_t snap_counted; /* entries its SNAPEND counts (when it is good) */
    int snap_end_seen;
};

static int plan_add_kind(struct plan *p, size_t off, size_t len, int conv)
{
    if (p->n > 0 && p->r[p->n - 1].conv == conv && p->r[p->n - 1].off + p->r[p->n - 1].len == off) {
        p->r[p->n - 1].len += len;
    } else {
        if (p->n == p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 64;
            struct range *r = realloc(p->r, cap * sizeof(*r));
            if (!r)
                return -ENOMEM;
            p->r = r;
            p->cap = cap;
        }
        p->r[p->n++] = (struct range){off, len, conv};
    }
    p->bytes += len;
    return 0;
}

static int plan_add(struct plan *p, size_t off, size_t len)
{
    return plan_add_kind(p, off, len, 0);
}

/* The entries of a good SNAPCHUNK record, as PUT and PAYLOAD records. */
static int plan_convert(struct plan *p, const struct akv_aof_record *rec)
{
    uint32_t kids[AKV_AOF_SNAP_WORDS_MAX], vids[AKV_AOF_SNAP_WORDS_MAX];
    struct akv_aof_snap_entry e;
    size_t at = 0, start = p->clen;

    while (akv_aof_snap_next(rec, &at, &e, kids, vids)) {
        struct akv_aof_record put = {
            .type = e.flags & AKV_AOF_SNAP_PAYLOAD ? AKV_AOF_PAYLOAD : AKV_AOF_PUT,
            .db = rec->db,
            .key = e.key,
            .klen = e.klen,
            .val = e.val,
            .vlen = e.vlen,
            .expire = e.expire,
        };
        size_t n = akv_aof_rec_size(&put);
        if (p->clen + n > p->ccap) {
            size_t cap = p->ccap ? p->ccap * 2 : (size_t)1 << 20;
            unsigned char *b;
            while (cap < p->clen + n)
                cap *= 2;
            if (!(b = realloc(p->cbuf, cap)))
                return -ENOMEM;
            p->cbuf = b;
            p->ccap = cap;
        }
        akv_aof_rec_encode(p->cbuf + p->clen, &put);
        p->clen += n;
        p->records++;
        p->snap_kept++;
        if (p->first_bad != SIZE_MAX) {
            p->after++;
            p->after_counts[put.type]++;
        }
    }
    return plan_add_kind(p, start, p->clen - start, 1);
}

/* Whether a kept record is handled by the preamble's conversion (and so
 * not kept as it is). */
static int plan_snap(struct plan *p, const struct akv_aof_record *rec, int *rc)
{
    *rc = 0;
    if (rec->type == AKV_AOF_SNAPEND) {
        uint64_t chunks;
        akv_aof_snap_end_decode(rec, &p->snap_counted, &chunks);
        p->snap_end_seen = 1;
    }
    if (!p->convert || (rec->type != AKV_AOF_SNAPBEGIN && rec->type != AKV_AOF_SNAPCHUNK &&
                        rec->type != AKV_AOF_SNAPEND))
        return 0;
    if (rec->type == AKV_AOF_SNAPCHUNK)
        *rc = plan_convert(p, rec);
    return 1;
}

static int plan_keep(void *arg, const struct akv_aof_record *rec)
{
    struct plan *p = arg;
    int rc;

    if (plan_snap(p, rec, &rc))
        return rc;
    p->records++;
    if (p->first_bad != SIZE_MAX) {
        p->after++;
        p->after_counts[rec->type]++;
    }
    return plan_add(p, rec->offset, rec->size);
}

static const char *kind_text(enum akv_aof_skip_kind k)
{
    switch (k) {
    case AKV_AOF_SKIP_RECORD:
        return "one damaged record (its header checks out)";
    case AKV_AOF_SKIP_RESYNC:
        return "damaged header, up to the next good record";
    case AKV_AOF_SKIP_MULTI:
        return "a damaged MULTI record, dropped whole";
    case AKV_AOF_SKIP_TORN:
        return "incomplete last record";
    case AKV_AOF_SKIP_REST:
        return "damaged header, nothing trustworthy after it";
    }
    return "?";
}

static int plan_skip(void *arg, const struct akv_aof_skip *s)
{
    struct plan *p = arg;
    int t = s->type;
    /* A lost deletion, flush, swap or transaction may bring back or
     * misplace entries that later records assume gone. */
    int risky = t == AKV_AOF_DEL || t == AKV_AOF_DELETE || t == AKV_AOF_FLUSHALL ||
                t == AKV_AOF_FLUSHDB || t == AKV_AOF_SWAPDB || t == AKV_AOF_MULTI || t == 0;

    if (p->first_bad == SIZE_MAX)
        p->first_bad = s->offset;
    if (s->kind != AKV_AOF_SKIP_TORN && risky)
        p->risky++;
    if (p->verbose)
        printf("  skip offset %zu, %zu bytes: %s; %s%s%s\n", s->offset, s->len, kind_text(s->kind),
               s->reason, t ? ", a " : "", t ? akv_aof_type_name((enum akv_aof_type)t) : "");
    return 0;
}

/* ------------------------------------------------------------------------
 * Writing: the backup and the repaired file.
 */

/* The directory holding path, for fsync and statvfs (a copy). */
static char *dir_of(const char *path)
{
    char *c = strdup(path), *d;

    if (!c)
        return NULL;
    d = strdup(dirname(c));
    free(c);
    return d;
}

static int fsync_dir_of(const char *path)
{
    char *d = dir_of(path);
    int fd, rc = 0;

    if (!d)
        return -ENOMEM;
    fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    free(d);
    return rc;
}

/* Whether the file system holding path has room for need more bytes (and
 * a little to spare). */
static int has_room(const char *path, size_t need, char *err, size_t errlen)
{
    struct statvfs v;
    char *d = dir_of(path);
    unsigned long long avail;
    int rc;

    if (!d)
        return -ENOMEM;
    rc = statvfs(d, &v) < 0 ? -errno : 0;
    free(d);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot see the free space: %s", path, strerror(-rc));
        return rc;
    }
    avail = (unsigned long long)v.f_bavail * v.f_frsize;
    if (avail < (unsigned long long)need + (1u << 20)) {
        snprintf(err, errlen, "%s: not enough free space (%llu bytes free, %zu needed)", path,
                 avail, need);
        return -ENOSPC;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes the ranges of src (conv ranges: of conv; the fresh file header
 * first, when header is set) to a new file at path (O_EXCL), fsync'd.
 * Removes it on failure. */
static int write_new(const char *path, mode_t mode, const unsigned char *src,
                     const unsigned char *conv, const struct range *r, size_t n, int header,
                     char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode), rc = 0;

    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (header) {
        unsigned char h[AKV_AOF_FILE_HEADER];
        akv_aof_file_header(h);
        rc = write_all(fd, h, sizeof(h));
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = write_all(fd, (r[i].conv ? conv : src) + r[i].off, r[i].len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "%s: writing: %s", path, strerror(-rc));
        unlink(path);
    }
    return rc;
}

/* Keeps the original at backup: a hard link (same file system), else a
 * copy; either way durable before returning. Never replaces a file. */
static int make_backup(const struct file *f, const char *backup, char *err, size_t errlen)
{
    struct range all = {0, f->len, 0};
    int rc;

    if (link(f->path, backup) == 0) {
        rc = fsync_dir_of(backup);
        if (rc < 0) {
            snprintf(err, errlen, "%s: fsync of its directory: %s", backup, strerror(-rc));
            unlink(backup);
        }
        return rc;
    }
    if (errno == EEXIST) {
        snprintf(err, errlen, "%s: exists already; not replacing it", backup);
        return -EEXIST;
    }
    if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != ENOTSUP) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", backup, strerror(-rc));
        return rc;
    }
    rc = has_room(backup, f->len, err, errlen);
    if (rc == 0)
        rc = write_new(backup, 0600, f->map, NULL, &all, f->len ? 1 : 0, 0, err, errlen);
    if (rc == 0 && (rc = fsync_dir_of(backup)) < 0)
        snprintf(err, errlen, "%s: fsync of its directory: %s", backup, strerror(-rc));
    return rc;
}

/* The default backup name: FILE.bak-YYYYMMDDTHHMMSSZ, then -2, -3, ... if
 * taken. */
static int default_backup(const char *path, char *out, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    struct stat st;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    for (int i = 1; i < 1000; i++) {
        int n = i == 1 ? snprintf(out, cap, "%s.bak-%s", path, stamp)
                       : snprintf(out, cap, "%s.bak-%s-%d", path, stamp, i);
        if (n < 0 || (size_t)n >= cap)
            return -ENAMETOOLONG;
        if (lstat(out, &st) < 0 && errno == ENOENT)
            return 0;
    }
    return -EEXIST;
}

/* Whether the file at f->path is still the one read (no daemon wrote to
 * it, nobody replaced it). */
static int unchanged(const struct file *f)
{
    struct stat now;

    return stat(f->path, &now) == 0 && now.st_ino == f->st.st_ino && now.st_dev == f->st.st_dev &&
           now.st_size == f->st.st_size && now.st_mtim.tv_sec == f->st.st_mtim.tv_sec &&
           now.st_mtim.tv_nsec == f->st.st_mtim.tv_nsec;
}

/* Maps the written file back and checks it parses whole, with the records
 * expected. */
static int verify_written(const char *path, size_t bytes, size_t records, char *err, size_t errlen)
{
    struct file w;
    struct akv_aof_result res;
    int ok;

    if (file_open(&w, path) < 0) {
        snprintf(err, errlen, "%s: cannot read it back", path);
        return -EIO;
    }
    akv_aof_parse(w.map, w.len, NULL, NULL, &res);
    ok = w.len == bytes && res.status == AKV_AOF_OK && res.records == records;
    if (w.map)
        munmap((void *)w.map, w.len);
    close(w.fd);
    if (!ok) {
        snprintf(err, errlen, "%s: the written file does not read back as expected", path);
        return -EIO;
    }
    return 0;
}

static int confirm(const char *question)
{
    char line[64];

    printf("%s [y/N] ", question);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 0;
    return line[0] == 'y' || line[0] == 'Y';
}

/* ------------------------------------------------------------------------
 * Checking and repairing.
 */

struct opts {
    int fix, salvage, yes;
    const char *backup;
    const char *vocab, *current;
    const char *path;
};

static int repair_at(const struct opts *o, struct file *f, const struct plan *p, int header);

/* Repairs the file a symbolic link names, not the link: the backup, the
 * temporary file and the rename all happen beside the real file. */
static int repair(const struct opts *o, struct file *f, const struct plan *p, int header)
{
    const char *given = f->path;
    char *real = realpath(given, NULL);
    int status;

    if (!real) {
        fprintf(stderr, PROG ": %s: %s\n", given, strerror(errno));
        return EX_ERROR;
    }
    if (strcmp(real, given) != 0) {
        struct stat st;
        if (lstat(given, &st) == 0 && S_ISLNK(st.st_mode))
            printf("%s: a symbolic link to %s, which is repaired\n", given, real);
    }
    f->path = real;
    status = repair_at(o, f, p, header);
    f->path = given;
    free(real);
    return status;
}

static int repair_at(const struct opts *o, struct file *f, const struct plan *p, int header)
{
    char backup[4096], tmp[4096], err[9000] = "";
    mode_t mode = f->st.st_mode & 07777;
    int rc;

    if (o->backup) {
        if (snprintf(backup, sizeof(backup), "%s", o->backup) >= (int)sizeof(backup)) {
            fprintf(stderr, PROG ": --backup: path too long\n");
            return EX_ERROR;
        }
    } else if (default_backup(f->path, backup, sizeof(backup)) < 0) {
        fprintf(stderr, PROG ": %s: no free backup name; give one with --backup\n", f->path);
        return EX_ERROR;
    }
    if (access(backup, F_OK) == 0 || errno != ENOENT) {
        fprintf(stderr, PROG ": %s: exists already; not replacing it (choose another --backup)\n",
                backup);
        return EX_ERROR;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.repair-%ld.tmp", f->path, (long)getpid()) >=
        (int)sizeof(tmp)) {
        fprintf(stderr, PROG ": %s: path too long\n", f->path);
        return EX_ERROR;
    }
    if ((rc = has_room(tmp, p->bytes + (header ? AKV_AOF_FILE_HEADER : 0), err, sizeof(err))) < 0) {
        fprintf(stderr, PROG ": not repairing: %s\n", err);
        return EX_ERROR;
    }
    if (!o->yes) {
        char q[9000];
        if (!isatty(STDIN_FILENO)) {
            fprintf(stderr,
                    PROG ": %s: not changed: a repair needs confirmation; run it on a terminal, "
                         "or pass --yes\n",
                    f->path);
            return EX_DECLINED;
        }
        snprintf(q, sizeof(q), "Repair %s (the original is kept as %s)?", f->path, backup);
        if (!confirm(q)) {
            printf("%s: not changed\n", f->path);
            return EX_DECLINED;
        }
    }
    if ((rc = make_backup(f, backup, err, sizeof(err))) < 0) {
        fprintf(stderr, PROG ": not repairing: cannot keep a backup: %s\n", err);
        return EX_ERROR;
    }
    printf("%s: original kept as %s\n", f->path, backup);
    rc = write_new(tmp, mode, f->map, p->cbuf, p->r, p->n, header, err, sizeof(err));
    if (rc == 0 && (rc = verify_written(tmp, p->bytes + (header ? AKV_AOF_FILE_HEADER : 0),
                                        p->records, err, sizeof(err))) < 0)
        unlink(tmp);
    if (rc == 0) {
        /* Keep the owner when run as root (a daemon's user owns its file). */
        if (chown(tmp, f->st.st_uid, f->st.st_gid) < 0 && errno != EPERM)
            fprintf(stderr, PROG ": %s: keeping the owner: %s\n", tmp, strerror(errno));
        if (!unchanged(f)) {
            snprintf(err, sizeof(err), "%s changed while it was read (is attnkvd still running?)",
                     f->path);
            unlink(tmp);
            rc = -EAGAIN;
        } else if (rename(tmp, f->path) < 0) {
            rc = -errno;
            snprintf(err, sizeof(err), "renaming %s to %s: %s", tmp, f->path, strerror(-rc));
            unlink(tmp);
        } else if ((rc = fsync_dir_of(f->path)) < 0) {
            /* Renamed already: the repaired file is in place, but a crash
             * could still bring back the old name's contents. */
            fprintf(stderr,
                    PROG ": %s: repaired, but the fsync of its directory failed: %s (the "
                         "original is kept as %s)\n",
                    f->path, strerror(-rc), backup);
            return EX_ERROR;
        }
    }
    if (rc < 0) {
        fprintf(stderr, PROG ": repair failed: %s; %s is as it was\n", err, f->path);
        return EX_ERROR;
    }
    return EX_DAMAGED;
}

static int check(const struct opts *o)
{
    struct file f;
    struct akv_aof_result res;
    struct akv_aof_salvage_result sres;
    struct plan fixp = {.first_bad = SIZE_MAX}, salp = {.first_bad = SIZE_MAX};
    struct snap_kinds kinds = {0, 0};
    int rc, status;
    size_t lost;

    if (file_open(&f, o->path) < 0)
        return EX_ERROR;
    akv_aof_parse(f.map, f.len, count_kinds, &kinds, &res);
    print_counts(f.path, f.len, plain_records(&res), res.counts);
    print_preamble(f.path, f.map, &res, &kinds);
    if (res.status == AKV_AOF_OK) {
        printf("%s: OK\n", f.path);
        return EX_GOOD;
    }
    printf("%s: %s at offset %zu: %s; %zu bytes from there to the end\n", f.path,
           res.status == AKV_AOF_TORN ? "incomplete last record" : "damaged record", res.bad_offset,
           res.reason, f.len - res.bad_offset);
    if (res.status == AKV_AOF_CORRUPT && res.bad_offset == 0) {
        printf("%s: not fixable: this is not an attnkv append-only file\n", f.path);
        return EX_DAMAGED;
    }

    /* What salvage keeps, and so what is readable after the damage. Damage
     * before the end of a snapshot preamble leaves it without a whole
     * sequence of records, so a repair keeps its good chunks' entries as
     * records instead. */
    salp.verbose = 1;
    salp.convert = res.snap != 2;
    printf("%s: damaged ranges:\n", f.path);
    rc = plan_add(&salp, 0, res.good_end < AKV_AOF_FILE_HEADER ? 0 : AKV_AOF_FILE_HEADER);
    rc = rc ? rc : akv_aof_salvage(f.map, f.len, plan_keep, plan_skip, &salp, &sres);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s: %s\n", f.path, rc == -EBADMSG ? sres.reason : strerror(-rc));
        status = EX_ERROR;
        goto out;
    }
    if (res.good_end < AKV_AOF_FILE_HEADER) {
        /* A file header cut short: what is kept is a fresh, empty file. */
        salp.bytes = 0;
        salp.n = 0;
    }
    lost = f.len - res.good_end;
    if (res.snap == 1) {
        /* --fix: the file header, then the entries of the chunks before
         * the damage as records. */
        struct akv_aof_result again;
        fixp.convert = 1;
        rc = plan_add(&fixp, 0, AKV_AOF_FILE_HEADER);
        rc = rc ? rc : akv_aof_parse(f.map, f.len, plan_keep, &fixp, &again);
        if (rc < 0) {
            fprintf(stderr, PROG ": %s: %s\n", f.path, strerror(-rc));
            status = EX_ERROR;
            goto out;
        }
        printf("%s: the damage is inside the snapshot preamble: a repair keeps the entries of "
               "its good chunks as PUT records (they load by embedding their text, as records "
               "do)%s\n",
               f.path,
               salp.snap_end_seen ? ""
                                  : "; its SNAPEND record is lost, so the count of entries "
                                    "lost is not known");
        if (salp.snap_end_seen)
            printf("%s: the preamble held %llu entries: --salvage keeps %zu of them, --fix %zu\n",
                   f.path, (unsigned long long)salp.snap_counted, salp.snap_kept, fixp.snap_kept);
        printf("%s: --fix keeps the %zu entries before offset %zu and loses %zu bytes: the "
               "damaged range and the %zu records after it that are still readable",
               f.path, fixp.snap_kept, res.bad_offset, lost, salp.after);
    } else {
        if (salp.snap_kept > 0)
            printf("%s: the snapshot preamble's SNAPBEGIN record is damaged: a repair keeps the "
                   "%zu entries of its good chunks as PUT records\n",
                   f.path, salp.snap_kept);
        printf("%s: --fix cuts the file to %zu bytes, losing %zu bytes: the damaged range and "
               "the %zu records after it that are still readable",
               f.path, res.good_end, lost, salp.after);
    }
    for (int t = AKV_AOF_SET, first = 1; t < AKV_AOF_TYPES; t++) {
        if (salp.after_counts[t] == 0)
            continue;
        printf("%s%zu %s", first ? " (" : ", ", salp.after_counts[t],
               akv_aof_type_name((enum akv_aof_type)t));
        first = 0;
    }
    printf("%s\n", salp.after > 0 ? ")" : "");
    /* The records' bytes, the file header not included (as sres.kept_bytes
     * counts them, which differs when a preamble is converted). */
    printf("%s: --salvage keeps %zu records (%zu bytes) and skips %zu range%s (%zu bytes)\n",
           f.path, salp.records,
           salp.bytes - (res.good_end < AKV_AOF_FILE_HEADER ? 0 : AKV_AOF_FILE_HEADER), sres.skips,
           sres.skips == 1 ? "" : "s", sres.skipped_bytes);
    if (salp.risky > 0)
        printf(
            "%s: warning: %zu skipped range(s) may have held a DEL, FLUSHDB, FLUSHALL, SWAPDB or "
            "MULTI record; salvaging may bring back entries deleted there or put entries in "
            "the wrong database. --fix keeps only what came before the damage.\n",
            f.path, salp.risky);

    if (!o->fix && !o->salvage) {
        printf("%s: run with --fix to cut it at offset %zu, or --salvage to skip only the "
               "damaged ranges (both keep a backup and ask first)\n",
               f.path, res.good_end);
        status = EX_DAMAGED;
        goto out;
    }
    if (o->fix && fixp.convert) {
        printf("%s: --fix: %zu entries of the preamble kept, %zu bytes lost\n", f.path,
               fixp.snap_kept, lost);
        status = repair(o, &f, &fixp, 0);
        if (status == EX_DAMAGED)
            printf("%s: cut at offset %zu; the preamble's %zu entries before it written as records "
                   "(%zu bytes)\n",
                   f.path, res.bad_offset, fixp.snap_kept, fixp.bytes);
    } else if (o->fix) {
        fixp.records = res.records;
        if (plan_add(&fixp, 0, res.good_end) < 0) {
            fprintf(stderr, PROG ": out of memory\n");
            status = EX_ERROR;
            goto out;
        }
        printf("%s: --fix: %zu records kept, %zu bytes lost\n", f.path, res.records, lost);
        status = repair(o, &f, &fixp, 0);
        if (status == EX_DAMAGED)
            printf("%s: truncated to %zu bytes\n", f.path, res.good_end);
    } else {
        int header = res.good_end < AKV_AOF_FILE_HEADER;
        printf("%s: --salvage: %zu records kept, %zu bytes lost\n", f.path, salp.records,
               sres.skipped_bytes);
        status = repair(o, &f, &salp, header);
        if (status == EX_DAMAGED)
            printf("%s: salvaged: %zu records in %zu bytes\n", f.path, salp.records,
                   salp.bytes + (header ? AKV_AOF_FILE_HEADER : 0));
    }
out:
    free(fixp.r);
    free(salp.r);
    free(fixp.cbuf);
    free(salp.cbuf);
    return status;
}

/* ------------------------------------------------------------------------
 * --vocab: the stored entries the new vectors would not serve.
 */

struct entry {
    uint64_t hash;
    uint64_t gen; /* the database's generation (0: empty slot) */
    const char *key, *val;
    size_t klen, vlen;
    uint64_t expire;
    size_t offset;
    int live;
    int payload; /* a PAYLOAD record: only the key embeds */
};

struct table {
    struct entry *e;
    size_t cap, used;
    uint64_t gens[DB_MAX]; /* each database's current generation */
    uint64_t next_gen;     /* generations below floor were flushed */
    uint64_t floor;
    uint32_t bad_db; /* a record named a database >= DB_MAX */
    int has_bad_db;
    uint64_t now_ms;
    /* The vectors the snapshot preamble was written for, when given
     * (--vocab or --current): each preamble entry's word ids are checked
     * against its text split with them. */
    const struct akv_vocab *idvoc;
    size_t id_checked, id_bad;
    char id_first[AKV_QUOTE_BUF + 64];
};

/* Whether the words ids[0..n) are those of text with v. */
static int same_ids(const struct akv_vocab *v, const char *text, size_t len, const uint32_t *ids,
                    size_t n)
{
    uint32_t got[AKV_PHRASE_WORDS_MAX];
    size_t m;
    char err[128];

    return akv_embed_words(v, text, len, got, &m, err, sizeof(err)) == 0 && m == n &&
           memcmp(got, ids, n * sizeof(*ids)) == 0;
}

static uint64_t db_gen(struct table *t, uint32_t db)
{
    if (t->gens[db] < t->floor)
        t->gens[db] = ++t->next_gen;
    return t->gens[db];
}

static struct entry *slot(struct table *t, uint64_t gen, const char *key, size_t klen,
                          uint64_t *hash)
{
    uint64_t h = XXH3_64bits_withSeed(key, klen, gen);
    size_t i = (size_t)h & (t->cap - 1);

    *hash = h;
    for (;;) {
        struct entry *e = &t->e[i];
        if (e->gen == 0 ||
            (e->hash == h && e->gen == gen && e->klen == klen && memcmp(e->key, key, klen) == 0))
            return e;
        i = (i + 1) & (t->cap - 1);
    }
}

static int grow(struct table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    struct entry *old = t->e, *e = calloc(cap, sizeof(*e));

    if (!e)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (old[i].gen == 0)
            continue;
        size_t j = (size_t)old[i].hash & (cap - 1);
        while (e[j].gen != 0)
            j = (j + 1) & (cap - 1);
        e[j] = old[i];
    }
    free(old);
    t->e = e;
    t->cap = cap;
    return 0;
}

static int replay(void *arg, const struct akv_aof_record *r);

/* A SNAPCHUNK: each entry as the PUT (or PAYLOAD) record it stands for. */
static int replay_chunk(struct table *t, const struct akv_aof_record *r)
{
    uint32_t kids[AKV_AOF_SNAP_WORDS_MAX], vids[AKV_AOF_SNAP_WORDS_MAX];
    struct akv_aof_snap_entry e;
    size_t at = 0;
    int rc;

    while (akv_aof_snap_next(r, &at, &e, kids, vids)) {
        if (t->idvoc) {
            int ok = same_ids(t->idvoc, e.key, e.klen, kids, e.nk) &&
                     (e.nv == 0 || same_ids(t->idvoc, e.val, e.vlen, vids, e.nv));
            t->id_checked++;
            if (!ok && t->id_bad++ == 0) {
                char q[AKV_QUOTE_BUF];
                snprintf(t->id_first, sizeof(t->id_first), "db%u '%s' at offset %zu",
                         (unsigned)r->db, akv_quote(q, e.key, e.klen), r->offset);
            }
        }
        struct akv_aof_record put = {
            .type = e.flags & AKV_AOF_SNAP_PAYLOAD ? AKV_AOF_PAYLOAD : AKV_AOF_PUT,
            .db = r->db,
            .key = e.key,
            .klen = e.klen,
            .val = e.val,
            .vlen = e.vlen,
            .expire = e.expire,
            .offset = r->offset,
        };
        if ((rc = replay(t, &put)) != 0)
            return rc;
    }
    return 0;
}

static int replay(void *arg, const struct akv_aof_record *r)
{
    struct table *t = arg;
    uint32_t db = r->type == AKV_AOF_SET || r->type == AKV_AOF_DEL ||
                          r->type == AKV_AOF_SNAPBEGIN || r->type == AKV_AOF_SNAPEND
                      ? 0
                      : r->db;
    struct entry *e;
    uint64_t h, gen;

    if (db >= DB_MAX || (r->type == AKV_AOF_SWAPDB && r->db2 >= DB_MAX)) {
        t->bad_db = db >= DB_MAX ? db : r->db2;
        t->has_bad_db = 1;
        return -ERANGE;
    }
    switch (r->type) {
    case AKV_AOF_SET:
    case AKV_AOF_PUT:
    case AKV_AOF_PAYLOAD:
    case AKV_AOF_DEL:
    case AKV_AOF_DELETE:
        if (t->used * 2 >= t->cap && grow(t) < 0)
            return -ENOMEM;
        gen = db_gen(t, db);
        e = slot(t, gen, r->key, r->klen, &h);
        if (e->gen == 0) {
            if (r->type == AKV_AOF_DEL || r->type == AKV_AOF_DELETE)
                return 0;
            *e = (struct entry){.hash = h, .gen = gen, .key = r->key, .klen = r->klen};
            t->used++;
        }
        if (r->type == AKV_AOF_DEL || r->type == AKV_AOF_DELETE ||
            (r->expire != 0 && r->expire <= t->now_ms)) {
            e->live = 0; /* deleted, or already expired at replay */
            return 0;
        }
        e->live = 1;
        e->val = r->val;
        e->vlen = r->vlen;
        e->expire = r->expire;
        e->offset = r->offset;
        e->payload = r->type == AKV_AOF_PAYLOAD;
        return 0;
    case AKV_AOF_FLUSHDB:
        t->gens[db] = ++t->next_gen;
        return 0;
    case AKV_AOF_FLUSHALL:
        t->floor = ++t->next_gen;
        return 0;
    case AKV_AOF_SWAPDB: {
        uint64_t a = db_gen(t, r->db), b = db_gen(t, r->db2);
        t->gens[r->db] = b;
        t->gens[r->db2] = a;
        return 0;
    }
    case AKV_AOF_MULTI:
    case AKV_AOF_SNAPBEGIN:
    case AKV_AOF_SNAPEND:
        break;
    case AKV_AOF_SNAPCHUNK:
        return replay_chunk(t, r);
    }
    return 0;
}

struct found {
    uint32_t db;
    const struct entry *e;
    int now_ok;
};

static int found_cmp(const void *a, const void *b)
{
    const struct found *x = a, *y = b;

    if (x->db != y->db)
        return x->db < y->db ? -1 : 1;
    return x->e->offset < y->e->offset ? -1 : x->e->offset > y->e->offset;
}

struct gen_db {
    uint64_t gen;
    uint32_t db;
};

static int gen_cmp(const void *a, const void *b)
{
    const struct gen_db *x = a, *y = b;

    return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/* Whether key and value embed with v; the reason in err when not. */
static int embeds(const struct akv_vocab *v, const struct entry *e, char *err, size_t errlen,
                  int *which)
{
    uint32_t ids[AKV_PHRASE_WORDS_MAX];
    size_t n;

    *which = 0;
    if (akv_embed_words(v, e->key, e->klen, ids, &n, err, errlen) < 0)
        return 0;
    *which = 1;
    return e->payload || akv_embed_words(v, e->val, e->vlen, ids, &n, err, errlen) == 0;
}

static int vocab_check(const struct opts *o)
{
    struct akv_vocab *nv = NULL, *cv = NULL;
    struct table t = {.next_gen = DB_MAX, .floor = 1};
    struct akv_aof_result res;
    struct found *list = NULL;
    struct file f = {.fd = -1};
    struct timespec ts;
    char err[512];
    size_t live = 0, nlist = 0, by_key = 0, stop = 0, already = 0, start = 0;
    size_t dbs_seen[DB_MAX] = {0};
    struct gen_db gens[DB_MAX];
    struct akv_aof_snap_head head;
    int rc, status = EX_ERROR, has_head = 0;

    for (int i = 0; i < DB_MAX; i++)
        t.gens[i] = (uint64_t)i + 1; /* distinct, as are all later ones */
    if (akv_vocab_open(&nv, o->vocab, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    if (o->current && akv_vocab_open(&cv, o->current, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    if (file_open(&f, o->path) < 0)
        goto out;
    clock_gettime(CLOCK_REALTIME, &ts);
    t.now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    /* A preamble names its vectors in its first record: the ids are
     * checked with them when they are given. */
    {
        struct akv_aof_result first;
        akv_aof_parse(f.map, f.len < 256 ? f.len : 256, NULL, NULL, &first);
        if (first.snap) {
            snap_head_of(f.map, &head);
            has_head = 1;
            t.idvoc = cv && same_vectors(cv, &head) ? cv : same_vectors(nv, &head) ? nv : NULL;
        }
    }
    rc = akv_aof_parse(f.map, f.len, replay, &t, &res);
    if (rc == -ERANGE && t.has_bad_db) {
        fprintf(stderr, PROG ": %s: at offset %zu, a record for database %u: no attnkvd loads it\n",
                f.path, res.good_end, (unsigned)t.bad_db);
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, PROG ": %s: %s\n", f.path, strerror(-rc));
        goto out;
    }
    if (res.status == AKV_AOF_CORRUPT && res.bad_offset == 0) {
        fprintf(stderr, PROG ": %s: %s\n", f.path, res.reason);
        goto out;
    }
    if (res.status != AKV_AOF_OK)
        printf("%s: %s at offset %zu (%s): only the %zu records before it are read\n", f.path,
               res.status == AKV_AOF_TORN ? "incomplete last record" : "damaged record",
               res.bad_offset, res.reason, res.records);

    /* The live entries' databases: generation -> database, through a
     * sorted copy of the current generations. */
    for (uint32_t db = 0; db < DB_MAX; db++)
        gens[db] = (struct gen_db){db_gen(&t, db), db};
    qsort(gens, DB_MAX, sizeof(gens[0]), gen_cmp);
    for (size_t i = 0; i < t.cap; i++) {
        const struct entry *e = &t.e[i];
        struct gen_db key = {e->gen, 0}, *g;
        uint32_t db;
        char why[256];
        int which, now_ok = 1;

        if (e->gen == 0 || !e->live)
            continue;
        g = bsearch(&key, gens, DB_MAX, sizeof(gens[0]), gen_cmp);
        if (!g)
            continue; /* flushed */
        db = g->db;
        live++;
        dbs_seen[db]++;
        if (cv) {
            char cwhy[256];
            int cwhich;
            now_ok = embeds(cv, e, cwhy, sizeof(cwhy), &cwhich);
        }
        if (embeds(nv, e, why, sizeof(why), &which)) {
            start += !now_ok;
            continue;
        }
        if (nlist % 1024 == 0) {
            struct found *l = realloc(list, (nlist + 1024) * sizeof(*l));
            if (!l) {
                fprintf(stderr, PROG ": out of memory\n");
                goto out;
            }
            list = l;
        }
        list[nlist++] = (struct found){db, e, now_ok};
        by_key += which == 0;
        stop += now_ok;
        already += !now_ok;
    }
    if (nlist > 0) /* list is NULL then, which qsort may not take */
        qsort(list, nlist, sizeof(*list), found_cmp);
    for (size_t i = 0; i < nlist; i++) {
        char qk[AKV_QUOTE_BUF], qv[AKV_QUOTE_BUF], why[256];
        int which;
        embeds(nv, list[i].e, why, sizeof(why), &which);
        printf("db%u '%s' -> '%s': %s: %s%s\n", (unsigned)list[i].db,
               akv_quote(qk, list[i].e->key, list[i].e->klen),
               akv_quote(qv, list[i].e->val, list[i].e->vlen), which == 0 ? "key" : "value", why,
               cv && !list[i].now_ok ? " (not served now either)" : "");
    }
    {
        size_t ndb = 0;
        for (int i = 0; i < DB_MAX; i++)
            ndb += dbs_seen[i] > 0;
        printf("%s: %zu entries in %zu databases; with %s, %zu would not be served (%zu for a "
               "word of the key, %zu of the value)",
               f.path, live, ndb, o->vocab, nlist, by_key, nlist - by_key);
        if (cv)
            printf("; compared with %s: %zu would stop being served, %zu are not served now "
                   "either, %zu would start being served",
                   o->current, stop, already, start);
        printf("\n");
    }
    status = (cv ? stop : nlist) > 0 ? EX_DAMAGED : EX_GOOD;
    if (has_head) {
        int fits = same_vectors(nv, &head);
        printf("%s: snapshot preamble of %llu entries, written for %s: with %s, start-up %s\n",
               f.path, (unsigned long long)res.snap_entries,
               fits                            ? o->vocab
               : cv && same_vectors(cv, &head) ? o->current
                                               : "other vectors than those given",
               o->vocab,
               fits ? "stores them from their word ids"
                    : "embeds them again from their text (their word ids belong to other vectors)");
        if (t.idvoc && t.id_bad > 0) {
            printf(
                "%s: the word ids of %zu of the %zu preamble entries are not those of their text "
                "with %s (first: %s): damage the checksums did not catch\n",
                f.path, t.id_bad, t.id_checked, t.idvoc == cv ? o->current : o->vocab, t.id_first);
            status = EX_DAMAGED;
        } else if (t.idvoc) {
            printf("%s: the word ids of its %zu entries are those of their text with %s\n", f.path,
                   t.id_checked, t.idvoc == cv ? o->current : o->vocab);
        }
    }
out:
    free(list);
    free(t.e);
    akv_vocab_destroy(nv);
    akv_vocab_destroy(cv);
    return status;
}

int main(int argc, char **argv)
{
    struct opts o = {0};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--fix") == 0) {
            o.fix = 1;
        } else if (strcmp(a, "--salvage") == 0) {
            o.salvage = 1;
        } else if (strcmp(a, "--yes") == 0 || strcmp(a, "-y") == 0) {
            o.yes = 1;
        } else if ((strcmp(a, "--backup") == 0 || strcmp(a, "--vocab") == 0 ||
                    strcmp(a, "--current") == 0) &&
                   i + 1 < argc) {
            const char **dst = a[2] == 'b' ? &o.backup : a[2] == 'v' ? &o.vocab : &o.current;
            *dst = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EX_GOOD;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            printf(PROG " %s\n", AKV_VERSION);
            return EX_GOOD;
        } else if (a[0] == '-' || o.path) {
            usage(stderr);
            return EX_ERROR;
        } else {
            o.path = a;
        }
    }
    if (!o.path || (o.fix && o.salvage) || (o.current && !o.vocab) ||
        (o.vocab && (o.fix || o.salvage || o.backup)) || (o.backup && !o.fix && !o.salvage)) {
        usage(stderr);
        return EX_ERROR;
    }
    return o.vocab ? vocab_check(&o) : check(&o);
}
