/*
 * fuzz-config.c - libFuzzer target for the config file parser.
 *
 * Each input is applied as a whole config file with akv_config_load_mem.
 * Besides crashes, leaks and undefined behaviour, it checks two properties
 * the daemon relies on: a load either succeeds or fails with -EINVAL and a
 * "name:line: " message, and every directive's value, as akv_config_get
 * prints it, is accepted back by akv_config_set unchanged (CONFIG GET
 * output must be valid CONFIG SET input). A file that loads is then
 * rewritten (CONFIG REWRITE's akv_config_rewrite_mem) for its own settings
 * with a few changed, and the result must load back as exactly those
 * settings (or be refused as too long, never be written wrong).
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

/* CONFIG REWRITE of the input for its settings with some changed (one it
 * may set, one it may not, a secret that needs quoting) reads back as
 * those settings. */
static void check_rewrite(struct akv_config *c, const char *data, size_t size)
{
    static const char *const change[][2] = {
        {"count", "7"}, {"maxkeys", "123"}, {"requirepass", "p w\"#\\\n"}, {"bind", "::1"}};
    const char *const *names = akv_config_names();
    struct akv_config back;
    char err[512], *out = NULL;
    size_t outlen = 0;
    int rc;

    for (size_t i = 0; i < sizeof(change) / sizeof(change[0]); i++)
        if (akv_config_set(c, change[i][0], 1, &change[i][1], err, sizeof(err)) != 0)
            abort();
    rc = akv_config_rewrite_mem(c, data, size, "fuzz", &out, &outlen, err, sizeof(err));
    if (rc == -ENOMEM || (rc == -EINVAL && strstr(err, "too long for a line")))
        return;
    if (rc != 0 || strlen(out) != outlen || akv_config_init(&back) < 0)
        abort();
    if (akv_config_load_mem(&back, out, outlen, "out", err, sizeof(err)) != 0)
        abort();
    for (size_t i = 0; names[i]; i++)
        if (akv_config_same(c, &back, names[i]) != 1)
            abort();
    akv_config_fini(&back);
    free(out);
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
    if (rc == 0)
        check_rewrite(&c, (const char *)data, size);
    akv_config_fini(&c);
    return 0;
}
