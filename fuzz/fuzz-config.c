/*
 * fuzz-config.c - libFuzzer target for the config file parser.
 *
 * Each input is applied as a whole config file with akv_config_load_mem.
 * Besides crashes, leaks and undefined behaviour, it checks two properties
 * the daemon relies on: a load either succeeds or fails with -EINVAL and a
 * "name:line: " message, and every directive's value, as akv_config_get
 * prints it, is accepted back by akv_config_set unchanged (CONFIG GET
 * output must be valid CONFIG SET input), except requirepass, which get
 * never shows (-EPERM, empty output).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Large enough for any value a 64 KiB line can set. */
static char before[AKV_CONFIG_LINE_MAX + 1];
static char after[AKV_CONFIG_LINE_MAX + 1];

static void check_round_trip(struct akv_config *c)
{
    const char *const *names = akv_config_names();
    char err[256];
    size_t i;

    for (i = 0; names[i]; i++) {
        const char *argv[AKV_CONFIG_BIND_MAX];
        size_t argc = 0;
        char *save = NULL, *tok;

        if (strcmp(names[i], "requirepass") == 0) {
            if (akv_config_get(c, names[i], before, sizeof(before)) != -EPERM || before[0])
                abort();
            continue;
        }
        if (akv_config_get(c, names[i], before, sizeof(before)) != 0)
            abort();
        strcpy(after, before);
        if (strcmp(names[i], "bind") == 0 || strcmp(names[i], "client-output-buffer-limit") == 0) {
            /* The values of several words; none contains blanks. */
            for (tok = strtok_r(after, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                if (argc == AKV_CONFIG_BIND_MAX)
                    abort();
                argv[argc++] = tok;
            }
        } else {
            argv[argc++] = after;
        }
        if (akv_config_set(c, names[i], argc, argv, err, sizeof(err)) != 0)
            abort();
        if (akv_config_get(c, names[i], after, sizeof(after)) != 0)
            abort();
        if (strcmp(before, after) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct akv_config c;
    char err[512];
    int rc;

    if (akv_config_init(&c) < 0)
        return 0;
    rc = akv_config_load_mem(&c, (const char *)data, size, "fuzz", err, sizeof(err));
    if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
        abort();
    if (rc != 0 && strncmp(err, "fuzz:", 5) != 0)
        abort();
    check_round_trip(&c);
    akv_config_fini(&c);
    return 0;
}
