/*
 * tests/unit/sample_file.h — build small, real storage.dat files through the
 * coordinator's store (coordinator/store.h) for the verifier and inspector
 * tests and for the fuzz seed corpus: encode requests with the wire
 * encoders, decode them as the coordinator would, apply and commit.
 *
 * Header-only (static functions) so that each test binary, which the
 * Makefile builds from one .c file, can include it.  Single-threaded.
 */
#ifndef SUTRA_TESTS_SAMPLE_FILE_H
#define SUTRA_TESTS_SAMPLE_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/store.h"
#include "layout/wire.h"
#include "sutra/sutra.h"

#define SAMPLE_DIM 4u

typedef struct sample_request {
    uint64_t words[8192]; /* 64 KiB, 8-byte aligned message buffer */
    size_t len;
    uint32_t ops;
} sample_request;

static inline void sample_begin(sample_request *r)
{
    memset(r->words, 0, sizeof(wire_request_header));
    r->len = sizeof(wire_request_header);
    r->ops = 0;
}

static inline uint8_t *sample_tail(sample_request *r)
{
    return (uint8_t *)r->words + r->len;
}

static inline sutra_id sample_id(const char *name)
{
    sutra_id id;
    sutra_id_from_name(name, strlen(name), &id);
    return id;
}

/* Learn `name` with optional content and a SAMPLE_DIM embedding. */
static inline void sample_learn(sample_request *r, const char *name,
                                const char *content, const float *embedding,
                                float strength, uint16_t flags)
{
    sutra_id id = sample_id(name);
    uint32_t len = content ? (uint32_t)strlen(content) : 0;
    r->len += wire_encode_learn_concept(sample_tail(r), flags, id.bytes,
                                        strength, 0.5f, content, len, embedding,
                                        embedding ? SAMPLE_DIM : 0);
    r->ops++;
}

static inline void sample_forget(sample_request *r, const char *name)
{
    sutra_id id = sample_id(name);
    r->len += wire_encode_forget_concept(sample_tail(r), id.bytes);
    r->ops++;
}

/* opcode WIRE_OP_LEARN_ASSOCIATION or WIRE_OP_FORGET_ASSOCIATION. */
static inline void sample_assoc(sample_request *r, uint16_t opcode,
                                const char *source, const char *target,
                                uint32_t type, float confidence)
{
    sutra_id s = sample_id(source), t = sample_id(target);
    r->len += wire_encode_association(sample_tail(r), opcode, s.bytes, t.bytes,
                                      type, confidence);
    r->ops++;
}

static inline void sample_simple(sample_request *r, uint16_t opcode)
{
    r->len += wire_encode_simple_op(sample_tail(r), opcode);
    r->ops++;
}

/* Seal the header; the message is r->words, r->len bytes. */
static inline void sample_finish(sample_request *r, uint64_t request_no)
{
    wire_request_header_init((wire_request_header *)r->words, 0, 0x5A5A,
                             request_no, r->ops);
}

/* Decode as the coordinator does and apply into the open group. */
static inline int sample_apply(coord_store *s, sample_request *r,
                               uint64_t request_no)
{
    sample_finish(r, request_no);
    wire_limits lim = {.max_message = sizeof(r->words),
                       .max_content = 1u << 16,
                       .max_batch = 1024,
                       .vector_dim = SAMPLE_DIM};
    wire_request req;
    uint32_t failed_op;
    const char *why;
    int rc = wire_request_decode(r->words, r->len, &lim, &req, &failed_op, &why);
    if (rc)
        return rc;
    coord_apply_result res;
    coord_error err;
    return coord_store_apply(s, &req, &res, &err);
}

static inline coord_store *sample_open(const char *path, uint64_t map_reserve)
{
    coord_store_options o = {.vector_dim = SAMPLE_DIM,
                             .map_reserve = map_reserve};
    coord_store *s = NULL;
    coord_error err;
    if (coord_store_open(path, &o, &s, &err) != 0) {
        fprintf(stderr, "sample_open: %s\n", err.message);
        return NULL;
    }
    return s;
}

static inline int sample_commit(coord_store *s)
{
    coord_commit_info info;
    coord_error err;
    return coord_store_commit(s, false, &info, &err);
}

/*
 * The standard sample: four generations exercising every concept record
 * shape — inline content and embeddings, shared content and embeddings
 * (KEEP_* and equal bytes), a forget, a re-learn after the forget, a batch,
 * and a flush-only request.  Returns 0 or the first error.
 */
static inline int sample_standard(coord_store *s)
{
    static const float e1[SAMPLE_DIM] = {1, 2, 3, 4};
    static const float e2[SAMPLE_DIM] = {0.5f, -1, 0, 8};
    sample_request *r = calloc(1, sizeof(*r));
    int rc = 0;
    uint64_t no = 1;
    sample_begin(r);
    sample_learn(r, "alpha", "the first concept", e1, 1.0f, 0);
    sample_learn(r, "beta", "second", NULL, 2.0f, 0);
    sample_learn(r, "gamma", "", e2, 3.0f, 0);
    if (!rc) rc = sample_apply(s, r, no++);
    if (!rc) rc = sample_commit(s);
    sample_begin(r);
    sample_learn(r, "alpha", "the first concept", e1, 1.5f, 0); /* shared */
    sample_forget(r, "beta");
    if (!rc) rc = sample_apply(s, r, no++);
    sample_begin(r);
    sample_learn(r, "gamma", NULL, NULL, 4.0f, WIRE_LEARN_KEEP_EMBEDDING);
    if (!rc) rc = sample_apply(s, r, no++);
    if (!rc) rc = sample_commit(s);
    sample_begin(r);
    sample_learn(r, "beta", "second life", e2, 5.0f, 0);
    sample_learn(r, "delta", "d", NULL, 0.25f, 0);
    sample_simple(r, WIRE_OP_FLUSH);
    if (!rc) rc = sample_apply(s, r, no++);
    if (!rc) rc = sample_commit(s);
    sample_begin(r);
    sample_simple(r, WIRE_OP_FLUSH);
    if (!rc) rc = sample_apply(s, r, no++);
    if (!rc) rc = sample_commit(s);
    free(r);
    return rc;
}

#endif
