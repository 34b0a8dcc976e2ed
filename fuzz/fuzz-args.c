/*
 * fuzz-args.c - libFuzzer target for the command-line parser.
 *
 * Each input is split at NUL bytes into an argv (argv[0] = "attnkvd", at
 * most MAX_ARGS arguments), parsed with akv_config_args_parse and, when
 * that succeeds, applied to a default struct akv_config with
 * akv_config_args_apply. Besides crashes, leaks and undefined behaviour it
 * checks what main relies on: a parse succeeds or fails with -EINVAL and a
 * message, leaving nothing allocated; a success names only directives of
 * the table, with arguments inside the word array; an apply succeeds or
 * fails with -EINVAL and "FLAG: reason", where FLAG is one of the options.
 *
 * Ownership: the argv strings live in one copy of the input, freed at the
 * end of each run. Threading: libFuzzer's single thread.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every option names a directive of the table (c holds the defaults) and
 * its arguments lie inside the word array. */
static void check_parsed(const struct akv_config_args *a, const struct akv_config *c)
{
    char out[4096];

    for (size_t i = 0; i < a->nopts; i++) {
        const struct akv_config_opt *o = &a->opts[i];

        if (akv_config_get(c, o->name, out, sizeof(out)) == -ENOENT || o->first > a->nwords ||
            o->argc > a->nwords - o->first || o->flaglen < 2 || o->flag[0] != '-')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *argv[MAX_ARGS + 2];
    struct akv_config_args a;
    struct akv_config c;
    char *copy = malloc(size + 1);
    char err[512];
    int argc = 0, rc;

    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    argv[argc++] = "attnkvd";
    for (size_t pos = 0; pos <= size && argc <= MAX_ARGS; argc++) {
        argv[argc] = copy + pos;
        pos += strlen(copy + pos) + 1;
    }
    argv[argc] = NULL;

    err[0] = '\0';
    rc = akv_config_args_parse(&a, argc, argv, err, sizeof(err));
    if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
        abort();
    if (rc != 0) {
        if (!err[0] || a.opts || a.words || a.nopts || a.nwords)
            abort();
        free(copy);
        return 0;
    }
    if (akv_config_init(&c) == 0) {
        check_parsed(&a, &c);
        rc = akv_config_args_apply(&c, &a, err, sizeof(err));
        if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
            abort();
        if (rc != 0 && err[0] != '-')
            abort();
        akv_config_fini(&c);
    }
    akv_config_args_fini(&a);
    free(copy);
    return 0;
}
