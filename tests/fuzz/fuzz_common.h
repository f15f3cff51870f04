/*
 * tests/fuzz/fuzz_common.h — what the libFuzzer targets share: turning the
 * first bytes of an input into decoder limits, so one corpus explores
 * several limit settings, and copying the rest into a buffer with a chosen
 * alignment (NNG hands bodies 4 mod 8, so both 0 and 4 mod 8 matter).
 * tests/fuzz/seed_corpus.c writes seeds in the same layout.
 */
#ifndef SUTRA_TESTS_FUZZ_COMMON_H
#define SUTRA_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layout/wire.h"

/* Bytes of an input that choose limits and alignment; the message follows. */
#define FUZZ_PREFIX 5u

static inline wire_limits fuzz_limits(const uint8_t prefix[FUZZ_PREFIX])
{
    static const uint64_t messages[] = {32, 64, 4096, 1u << 20, UINT64_MAX};
    static const uint32_t contents[] = {0, 16, 1024, 1u << 20, UINT32_MAX};
    static const uint32_t batches[] = {1, 2, 16, 1024, UINT32_MAX};
    static const uint32_t dims[] = {0, 1, 4, 16, 65536};
    wire_limits lim = {
        .max_message = messages[prefix[0] % 5],
        .max_content = contents[prefix[1] % 5],
        .max_batch = batches[prefix[2] % 5],
        .vector_dim = dims[prefix[3] % 5],
    };
    return lim;
}

/* Misalignment of the message in memory: 0, 4 or (rarely) 1 byte. */
static inline size_t fuzz_shift(uint8_t b)
{
    return b % 8 == 7 ? 1 : (b & 1) * 4;
}

/* Copy `len` bytes to an 8-aligned allocation plus `shift`; free the
 * returned base with free(). */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t len, size_t shift,
                                 uint8_t **msg)
{
    uint64_t *base = malloc(len + shift + 8);
    if (!base)
        abort();
    *msg = (uint8_t *)base + shift;
    if (len)
        memcpy(*msg, data, len);
    return (uint8_t *)base;
}

#endif
