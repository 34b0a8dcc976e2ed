/*
 * check-aof.c - attnkv-check-aof: checks an append-only file and, with
 * --fix, cuts it back to its last good record.
 *
 * Usage: attnkv-check-aof [--fix] FILE
 *
 * Exit status: 0 the file is good; 1 damage was found (and, with --fix,
 * the file was truncated to the last good record); 2 usage or I/O error.
 * A file whose header is not an attnkv AOF is reported and never truncated.
 *
 * The whole file is mapped and checked with akv_aof_parse (src/persist/aof.c), the
 * same parser the daemon replays with.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/aof.h"

#include "attnkv/version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: attnkv-check-aof [--fix] FILE\n"
               "\n"
               "Checks an attnkvd append-only file: every record's framing and checksums.\n"
               "A record cut short at the end (a crash in the middle of a write) or a\n"
               "damaged one is reported with its offset; --fix truncates the file to the\n"
               "last good record, losing what follows it.\n"
               "Exit status: 0 good, 1 damaged (fixed with --fix), 2 usage or I/O error.\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int fix = 0, fd;
    struct akv_aof_result res;
    struct stat st;
    void *map = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fix") == 0) {
            fix = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("attnkv-check-aof %s\n", AKV_VERSION);
            return 0;
        } else if (argv[i][0] == '-' || path) {
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    fd = open(path, (fix ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "attnkv-check-aof: %s: %s\n", path, strerror(errno));
        return 2;
    }
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            fprintf(stderr, "attnkv-check-aof: %s: %s\n", path, strerror(errno));
            return 2;
        }
    }
    akv_aof_parse(map, (size_t)st.st_size, NULL, NULL, &res);
    if (map)
        munmap(map, (size_t)st.st_size);
    /* SET and PUT are both sets, DEL and DELETE both deletions; the kinds
     * that came with databases and transactions are named when present. */
    printf("%s: %zu bytes, %zu good records (%zu SET, %zu DEL, %zu FLUSHALL", path,
           (size_t)st.st_size, res.records, res.counts[AKV_AOF_SET] + res.counts[AKV_AOF_PUT],
           res.counts[AKV_AOF_DEL] + res.counts[AKV_AOF_DELETE], res.counts[AKV_AOF_FLUSHALL]);
    if (res.counts[AKV_AOF_FLUSHDB])
        printf(", %zu FLUSHDB", res.counts[AKV_AOF_FLUSHDB]);
    if (res.counts[AKV_AOF_SWAPDB])
        printf(", %zu SWAPDB", res.counts[AKV_AOF_SWAPDB]);
    if (res.counts[AKV_AOF_MULTI])
        printf(", %zu MULTI", res.counts[AKV_AOF_MULTI]);
    printf(")\n");
    if (res.status == AKV_AOF_OK) {
        printf("%s: OK\n", path);
        close(fd);
        return 0;
    }
    printf("%s: %s at offset %zu: %s; %llu bytes from there to the end\n", path,
           res.status == AKV_AOF_TORN ? "incomplete last record" : "damaged record", res.bad_offset,
           res.reason, (unsigned long long)((size_t)st.st_size - res.bad_offset));
    if (res.status == AKV_AOF_CORRUPT && res.bad_offset == 0) {
        printf("%s: not fixable: this is not an attnkv append-only file\n", path);
        close(fd);
        return 1;
    }
    if (!fix) {
        printf("%s: run with --fix to truncate it to %zu bytes (the last good record)\n", path,
               res.good_end);
        close(fd);
        return 1;
    }
    if (ftruncate(fd, (off_t)res.good_end) < 0 || fsync(fd) < 0) {
        fprintf(stderr, "attnkv-check-aof: %s: truncating: %s\n", path, strerror(errno));
        close(fd);
        return 2;
    }
    close(fd);
    printf("%s: truncated to %zu bytes\n", path, res.good_end);
    return 1;
}
