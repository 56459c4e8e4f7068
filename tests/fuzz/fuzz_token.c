/* fuzz_token.c - libFuzzer entry for binding-token verification.
 *
 * Every input, as a NUL-terminated string, goes to gg_token_verify, which
 * must return an error and never crash. Build like fuzz_envelope.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[GG_TOKEN_KEY_LEN] = { 1, 2, 3 };
    gg_token_claims c;
    char *s = malloc(size + 1);

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (gg_token_verify(key, s, 0, &c) == GG_OK)
        abort();            /* nobody but the key holder can make a valid MAC */
    free(s);
    return 0;
}
