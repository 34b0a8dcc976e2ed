/*
 * replay.h - feeds saved fuzz inputs (fuzz/corpus/NAME, fuzz/regression/NAME)
 * to a test's own checker, so the ordinary test run replays everything the
 * fuzzers found or were seeded with. Header-only, shared by the suites.
 */
#ifndef ATTNKV_TEST_REPLAY_H
#define ATTNKV_TEST_REPLAY_H

#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Calls fn(data, len, arg) with the bytes of every regular file in
 * $AKV_SOURCE_ROOT/dir (the data is freed afterwards). Returns how many
 * files it replayed, or -1 when AKV_SOURCE_ROOT is unset or the folder does
 * not exist (a regression folder appears only once a fuzzer found
 * something). */
static inline long tu_replay_dir(const char *dir, void (*fn)(const uint8_t *, size_t, void *),
                                 void *arg)
{
    const char *root = getenv("AKV_SOURCE_ROOT");
    char path[4096];
    struct dirent *de;
    long count = 0;
    DIR *d;

    if (root == NULL || *root == '\0')
        return -1;
    snprintf(path, sizeof path, "%s/%s", root, dir);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        uint8_t *data;
        FILE *f;

        snprintf(path, sizeof path, "%s/%s/%s", root, dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        data = malloc(st.st_size ? (size_t)st.st_size : 1);
        f = fopen(path, "rb");
        ck_assert_msg(data && f && fread(data, 1, (size_t)st.st_size, f) == (size_t)st.st_size,
                      "cannot read %s", path);
        fclose(f);
        fn(data, (size_t)st.st_size, arg);
        free(data);
        count++;
    }
    closedir(d);
    return count;
}

#endif
