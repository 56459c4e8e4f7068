/* fuzz_config.c - libFuzzer entry for the configuration file parser.
 *
 * The input is a config file's text (cut at the first NUL, as a file read
 * by gg_config_load would be refused there). It must parse or be refused
 * with a reason; a parsed config is then read through every getter the
 * roles use and dumped, which must not crash either.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const strs[] = { "site.role", "site.name", "site.peer", "channel.allow",
                                        "security.suite", "store.path", "http.listen" };
    static const char *const ints[] = { "http.max_body", "channel.window", "store.max_depth",
                                        "security.message_ttl_ms" };
    char err[256];
    gg_config *cfg = NULL;
    char *text;
    FILE *devnull;
    size_t i;

    gg_log_set_level(GG_LOG_ERROR);
    if (size > (1u << 16))
        return 0;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    err[0] = '\0';
    if (gg_config_parse(text, "/nonexistent", &cfg, err, sizeof err) == GG_OK) {
        for (i = 0; i < sizeof strs / sizeof strs[0]; i++)
            (void)gg_config_str(cfg, strs[i]);
        for (i = 0; i < sizeof ints / sizeof ints[0]; i++)
            (void)gg_config_int(cfg, ints[i]);
        (void)gg_config_bool(cfg, "channel.tls12");
        devnull = fopen("/dev/null", "w");
        if (devnull != NULL) {
            gg_config_dump(cfg, devnull);
            fclose(devnull);
        }
        gg_config_free(cfg);
    } else if (err[0] == '\0') {
        abort();    /* every refusal names its reason */
    }
    free(text);
    return 0;
}
