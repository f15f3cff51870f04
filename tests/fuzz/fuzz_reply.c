/*
 * tests/fuzz/fuzz_reply.c — libFuzzer target for the client's reply decoder
 * (layout/wire.c): wire_reply_decode() on any bytes at 0 or 4 mod 8, and a
 * read of every body byte it hands out.  An accepted reply whose body does
 * not span exactly the rest of the message aborts.
 */
#include <stdint.h>
#include <stdlib.h>

#include "layout/wire.h"
#include "sutra/sutra.h"
#include "tests/fuzz/fuzz_common.h"

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t *msg;
    uint8_t *base = fuzz_copy(data + 1, size - 1, fuzz_shift(data[0]), &msg);
    size_t len = size - 1;
    wire_reply_header hdr;
    const void *body = NULL;
    int rc = wire_reply_decode(msg, len, &hdr, &body);
    if (rc == 0) {
        if ((size_t)hdr.body_len + sizeof(hdr) != len ||
            (hdr.body_len && body != msg + sizeof(hdr)) ||
            (!hdr.body_len && body))
            abort();
        const volatile uint8_t *b = body;
        uint8_t x = 0;
        for (size_t i = 0; i < hdr.body_len; i++)
            x ^= b[i];
        sink ^= x;
    } else if (rc != SUTRA_EPROTO && rc != SUTRA_EVERSION) {
        abort();
    }
    free(base);
    return 0;
}
