/*
 * reader/id.c — the text and name forms of concept ids.
 *
 * Ids are 16 opaque bytes.  Sutra's services historically use 16-hex-digit
 * ids, so parsing accepts 1..32 hex digits and pads on the left: "ab",
 * "00ab" and the 32-digit form all name the same id, and formatting always
 * gives the canonical 32 lowercase digits.  sutra_id_from_name() must give
 * every process (and the Python binding) the same id for the same name, so
 * its byte order is fixed: XXH3-128 high 64 bits big-endian, then the low.
 *
 * Pure functions: any thread, no shared state.
 */
#include <string.h>
#include <xxhash.h>

#include "sutra/sutra.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sutra_id_parse(const char *hex, sutra_id *out)
{
    if (!hex || !out)
        return SUTRA_EINVAL;
    size_t len = strnlen(hex, SUTRA_ID_HEX_LEN + 1);
    if (len == 0 || len > SUTRA_ID_HEX_LEN)
        return SUTRA_EINVAL;

    /* Digit i of the input is digit (32 - len + i) of the padded form. */
    sutra_id id;
    memset(&id, 0, sizeof(id));
    size_t pos = SUTRA_ID_HEX_LEN - len;
    for (size_t i = 0; i < len; i++, pos++) {
        int v = hex_value(hex[i]);
        if (v < 0)
            return SUTRA_EINVAL;
        id.bytes[pos / 2] |= (uint8_t)(pos % 2 ? v : v << 4);
    }
    *out = id;
    return 0;
}

void sutra_id_format(const sutra_id *id, char out[SUTRA_ID_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 16; i++) {
        out[2 * i] = digits[id->bytes[i] >> 4];
        out[2 * i + 1] = digits[id->bytes[i] & 0xf];
    }
    out[SUTRA_ID_HEX_LEN] = '\0';
}

static void store_be64(uint8_t *dst, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        dst[i] = (uint8_t)v;
        v >>= 8;
    }
}

void sutra_id_from_name(const void *name, size_t len, sutra_id *out)
{
    XXH128_hash_t h = XXH3_128bits(len ? name : "", len);
    store_be64(out->bytes, h.high64);
    store_be64(out->bytes + 8, h.low64);
}
