/*
 * reader/client_internal.h — what the client's files share: the batch
 * buffer (reader/batch.c builds it, reader/client.c sends it).
 *
 * A batch holds its ops already encoded in wire format (P-OP-*), so a commit
 * is one header plus one memcpy into the NNG message, and a batch can be
 * sent any number of times without re-encoding.
 */
#ifndef SUTRA_READER_CLIENT_INTERNAL_H
#define SUTRA_READER_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sutra/sutra.h"

struct sutra_batch {
    uint8_t *ops;       /* encoded ops, each a multiple of 8 bytes; the
                           buffer comes from malloc, so every op starts
                           8-byte aligned as the encoders require         */
    size_t len;         /* bytes used                                     */
    size_t cap;         /* bytes allocated                                */
    uint32_t count;     /* ops encoded                                    */
    uint16_t wire_flags;/* WIRE_SYNC_*                                    */
};

#endif
