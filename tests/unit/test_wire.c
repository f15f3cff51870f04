/*
 * tests/unit/test_wire.c — the protocol codec (layout/wire.c).
 *
 * Round trips prove the encoders and the decoder agree on every byte; then
 * one test per rule of docs/protocol.md feeds a message that breaks exactly
 * that rule and checks the error code, the failed op index and the rule id in
 * the message.  Truncation at every length and seeded random byte flips check
 * that hostile input never crashes the decoder (run under ASan/UBSan: each
 * message sits in a heap buffer of exactly its length, so any over-read is
 * caught).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator/server.h"
#include "layout/wire.h"
#include "sutra/sutra.h"

/* ---- message builder -------------------------------------------------- */

#define MSG_WORDS 8192 /* 64 KiB, 8-aligned */

typedef struct msg {
    uint64_t words[MSG_WORDS];
    size_t len;
    uint32_t ops;
} msg;

static const wire_limits LIMITS = {
    .max_message = 1u << 16,
    .max_content = 1024,
    .max_batch = 16,
    .vector_dim = 4,
};

static uint8_t *bytes(msg *m)
{
    return (uint8_t *)m->words;
}

static void msg_begin(msg *m)
{
    memset(m, 0, sizeof(*m));
    m->len = sizeof(wire_request_header);
}

/* Write the header for the ops appended so far. */
static void msg_end(msg *m)
{
    wire_request_header h;
    wire_request_header_init(&h, WIRE_SYNC_DEFAULT, 0x1234, 7, m->ops);
    memcpy(bytes(m), &h, sizeof(h));
}

static uint8_t *op_at(msg *m, size_t off)
{
    return bytes(m) + off;
}

static void fill_id(uint8_t id[16], uint8_t seed)
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(seed + i);
}

/* Append a learn op; returns its offset in the message. */
static size_t add_learn(msg *m, uint16_t flags, uint8_t id_seed,
                        const char *content, uint32_t dim)
{
    uint8_t id[16];
    float emb[16];
    fill_id(id, id_seed);
    for (uint32_t i = 0; i < dim; i++)
        emb[i] = 0.5f * (float)i - 1.0f;
    uint32_t content_len = content ? (uint32_t)strlen(content) : 0;
    size_t off = m->len;
    size_t n = wire_encode_learn_concept(op_at(m, off), flags, id, 0.75f, 0.5f,
                                         content, content_len, dim ? emb : NULL,
                                         dim);
    assert_int_equal(n, wire_learn_concept_size(content_len, dim));
    m->len += n;
    m->ops++;
    return off;
}

static size_t add_forget(msg *m, uint8_t id_seed)
{
    uint8_t id[16];
    fill_id(id, id_seed);
    size_t off = m->len;
    m->len += wire_encode_forget_concept(op_at(m, off), id);
    m->ops++;
    return off;
}

static size_t add_assoc(msg *m, uint16_t opcode, uint8_t source_seed,
                        uint8_t target_seed, uint32_t type, float confidence)
{
    uint8_t source[16], target[16];
    fill_id(source, source_seed);
    fill_id(target, target_seed);
    size_t off = m->len;
    size_t n = wire_encode_association(op_at(m, off), opcode, source, target,
                                      type, confidence);
    assert_int_equal(n, sizeof(wire_association));
    m->len += n;
    m->ops++;
    return off;
}

static size_t add_simple(msg *m, uint16_t opcode)
{
    size_t off = m->len;
    m->len += wire_encode_simple_op(op_at(m, off), opcode);
    m->ops++;
    return off;
}

/* Field pokes on a built message. */
static void poke16(msg *m, size_t off, uint16_t v) { memcpy(op_at(m, off), &v, 2); }
static void poke32(msg *m, size_t off, uint32_t v) { memcpy(op_at(m, off), &v, 4); }
static void poke64(msg *m, size_t off, uint64_t v) { memcpy(op_at(m, off), &v, 8); }
static void pokef(msg *m, size_t off, float v) { memcpy(op_at(m, off), &v, 4); }

/* ---- decode helpers ---------------------------------------------------- */

typedef struct result {
    int rc;
    uint32_t failed_op;
    const char *why;
    wire_request req;
} result;

static result decode_lim(const msg *m, const wire_limits *lim)
{
    result r;
    memset(&r.req, 0xAB, sizeof(r.req));
    r.failed_op = 0xDEADBEEF;
    r.why = NULL;
    r.rc = wire_request_decode(m->words, m->len, lim, &r.req, &r.failed_op,
                               &r.why);
    return r;
}

static result decode(const msg *m)
{
    return decode_lim(m, &LIMITS);
}

/* Assert a rejection: code, failed op, rule id prefix, and *out untouched. */
static void expect_reject(const msg *m, const wire_limits *lim, int code,
                          uint32_t failed_op, const char *rule)
{
    result r = decode_lim(m, lim);
    assert_int_equal(r.rc, code);
    assert_int_equal(r.failed_op, failed_op);
    assert_non_null(r.why);
    assert_memory_equal(r.why, rule, strlen(rule));
    wire_request pristine;
    memset(&pristine, 0xAB, sizeof(pristine));
    assert_memory_equal(&r.req, &pristine, sizeof(pristine));
}

static void reject(msg *m, int code, uint32_t failed_op, const char *rule)
{
    expect_reject(m, &LIMITS, code, failed_op, rule);
}

/* ---- round trips -------------------------------------------------------- */

static void check_learn_view(const wire_op *op, uint16_t flags, uint8_t id_seed,
                             const char *content, uint32_t dim)
{
    uint8_t id[16];
    fill_id(id, id_seed);
    assert_int_equal(op->opcode, WIRE_OP_LEARN_CONCEPT);
    assert_int_equal(op->flags, flags);
    assert_memory_equal(op->id, id, 16);
    assert_true(op->strength == 0.75f);
    assert_true(op->confidence == 0.5f);
    size_t clen = content ? strlen(content) : 0;
    assert_int_equal(op->content_len, clen);
    if (clen) {
        assert_memory_equal(op->content, content, clen);
    } else {
        assert_null(op->content);
    }
    assert_int_equal(op->dim, dim);
    if (dim) {
        assert_int_equal((uintptr_t)op->embedding % 4, 0);
        for (uint32_t i = 0; i < dim; i++)
            assert_true(op->embedding[i] == 0.5f * (float)i - 1.0f);
    } else {
        assert_null(op->embedding);
    }
}

static void test_wire_learn_variants_round_trip(void **state)
{
    (void)state;
    static const struct {
        uint16_t flags;
        const char *content;
        uint32_t dim;
    } cases[] = {
        {0, NULL, 0},
        {0, "hello", 0},
        {0, "exactly8", 0},
        {0, NULL, 4},
        {0, "seven c", 4},
        {WIRE_LEARN_KEEP_CONTENT, NULL, 4},
        {WIRE_LEARN_KEEP_EMBEDDING, "x", 0},
        {WIRE_LEARN_KEEP_CONTENT | WIRE_LEARN_KEEP_EMBEDDING, NULL, 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        msg *m = malloc(sizeof(*m));
        msg_begin(m);
        add_learn(m, cases[c].flags, 9, cases[c].content, cases[c].dim);
        msg_end(m);
        result r = decode(m);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.req.header.op_count, 1);
        assert_int_equal(r.req.header.client_id, 0x1234);
        assert_int_equal(r.req.header.request_no, 7);
        assert_int_equal(r.req.data_ops, 1);
        assert_false(r.req.has_flush);
        assert_false(r.req.is_control);
        assert_int_equal(r.req.ops_len, m->len - 32);
        size_t cursor = 0;
        wire_op op;
        assert_true(wire_request_next(&r.req, &cursor, &op));
        check_learn_view(&op, cases[c].flags, 9, cases[c].content, cases[c].dim);
        assert_false(wire_request_next(&r.req, &cursor, &op));
        free(m);
    }
}

static void test_wire_learn_size_pads_to_8(void **state)
{
    (void)state;
    assert_int_equal(wire_learn_concept_size(0, 0), 40);
    assert_int_equal(wire_learn_concept_size(1, 0), 48);
    assert_int_equal(wire_learn_concept_size(8, 0), 48);
    assert_int_equal(wire_learn_concept_size(9, 0), 56);
    assert_int_equal(wire_learn_concept_size(0, 1), 48);
    assert_int_equal(wire_learn_concept_size(0, 2), 48);
    assert_int_equal(wire_learn_concept_size(0, 3), 56);
    assert_int_equal(wire_learn_concept_size(5, 3), 64); /* 40+5->48, +12 -> 64 */
}

static void test_wire_encoder_zeroes_padding(void **state)
{
    (void)state;
    uint8_t buf[128];
    memset(buf, 0xFF, sizeof(buf));
    uint8_t id[16] = {1};
    float emb[3] = {1, 2, 3};
    size_t n = wire_encode_learn_concept(buf, 0, id, 1, 1, "abc", 3, emb, 3);
    assert_int_equal(n, 64);
    for (size_t i = 43; i < 48; i++)
        assert_int_equal(buf[i], 0); /* content pad */
    for (size_t i = 60; i < 64; i++)
        assert_int_equal(buf[i], 0); /* embedding pad */
    assert_int_equal(buf[64], 0xFF); /* nothing written past the op */
}

static void test_wire_mixed_batch_round_trip(void **state)
{
    (void)state;
    msg *m = malloc(sizeof(*m));
    msg_begin(m);
    add_learn(m, 0, 1, "first", 4);
    add_forget(m, 2);
    add_learn(m, 0, 3, NULL, 0);
    add_simple(m, WIRE_OP_FLUSH);
    add_forget(m, 4);
    msg_end(m);
    result r = decode(m);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.req.data_ops, 4);
    assert_true(r.req.has_flush);
    assert_false(r.req.is_control);

    size_t cursor = 0;
    wire_op op;
    uint8_t id[16];
    assert_true(wire_request_next(&r.req, &cursor, &op));
    check_learn_view(&op, 0, 1, "first", 4);
    assert_true(wire_request_next(&r.req, &cursor, &op));
    assert_int_equal(op.opcode, WIRE_OP_FORGET_CONCEPT);
    fill_id(id, 2);
    assert_memory_equal(op.id, id, 16);
    assert_true(wire_request_next(&r.req, &cursor, &op));
    check_learn_view(&op, 0, 3, NULL, 0);
    assert_true(wire_request_next(&r.req, &cursor, &op));
    assert_int_equal(op.opcode, WIRE_OP_FLUSH);
    assert_null(op.id);
    assert_true(wire_request_next(&r.req, &cursor, &op));
    assert_int_equal(op.opcode, WIRE_OP_FORGET_CONCEPT);
    fill_id(id, 4);
    assert_memory_equal(op.id, id, 16);
    assert_false(wire_request_next(&r.req, &cursor, &op));
    assert_int_equal(cursor, r.req.ops_len);
    free(m);
}

static void check_assoc_view(const wire_op *op, uint16_t opcode,
                             uint8_t source_seed, uint8_t target_seed,
                             uint32_t type, float confidence)
{
    uint8_t id[16];
    assert_int_equal(op->opcode, opcode);
    assert_int_equal(op->flags, 0);
    fill_id(id, source_seed);
    assert_memory_equal(op->id, id, 16);
    fill_id(id, target_seed);
    assert_memory_equal(op->target, id, 16);
    assert_int_equal(op->type, type);
    assert_true(op->confidence == confidence);
    assert_null(op->content);
    assert_null(op->embedding);
}

static void test_wire_association_round_trip(void **state)
{
    (void)state;
    msg *m = malloc(sizeof(*m));
    msg_begin(m);
    add_learn(m, 0, 1, NULL, 0);
    add_assoc(m, WIRE_OP_LEARN_ASSOCIATION, 1, 2, 0xFFFFFFFEu, 0.25f);
    add_assoc(m, WIRE_OP_LEARN_ASSOCIATION, 1, 1, 0, 1.0f); /* self-loop */
    /* a forget's confidence is encoded as 0 whatever the caller passed */
    size_t forget = add_assoc(m, WIRE_OP_FORGET_ASSOCIATION, 1, 2, 7, 0.75f);
    msg_end(m);
    wire_association raw;
    memcpy(&raw, op_at(m, forget), sizeof(raw));
    assert_int_equal(raw.op.length, 48);
    assert_int_equal(raw.op.flags, 0);
    assert_true(raw.confidence == 0.0f && !signbit(raw.confidence));

    result r = decode(m);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.req.data_ops, 4);
    assert_false(r.req.has_flush);
    size_t cursor = 0;
    wire_op op;
    assert_true(wire_request_next(&r.req, &cursor, &op));
    check_learn_view(&op, 0, 1, NULL, 0);
    assert_true(wire_request_next(&r.req, &cursor, &op));
    check_assoc_view(&op, WIRE_OP_LEARN_ASSOCIATION, 1, 2, 0xFFFFFFFEu, 0.25f);
    assert_true(wire_request_next(&r.req, &cursor, &op));
    check_assoc_view(&op, WIRE_OP_LEARN_ASSOCIATION, 1, 1, 0, 1.0f);
    assert_true(wire_request_next(&r.req, &cursor, &op));
    check_assoc_view(&op, WIRE_OP_FORGET_ASSOCIATION, 1, 2, 7, 0.0f);
    assert_false(wire_request_next(&r.req, &cursor, &op));
    assert_int_equal(cursor, r.req.ops_len);
    free(m);
}

static void test_wire_control_ops_alone(void **state)
{
    (void)state;
    static const uint16_t codes[] = {WIRE_OP_STATS, WIRE_OP_PING};
    for (int i = 0; i < 2; i++) {
        msg *m = malloc(sizeof(*m));
        msg_begin(m);
        add_simple(m, codes[i]);
        msg_end(m);
        result r = decode(m);
        assert_int_equal(r.rc, 0);
        assert_true(r.req.is_control);
        assert_int_equal(r.req.data_ops, 0);
        assert_false(r.req.has_flush);
        size_t cursor = 0;
        wire_op op;
        assert_true(wire_request_next(&r.req, &cursor, &op));
        assert_int_equal(op.opcode, codes[i]);
        assert_false(wire_request_next(&r.req, &cursor, &op));
        free(m);
    }
}

static void test_wire_flush_alone_and_sync_flags(void **state)
{
    (void)state;
    msg *m = malloc(sizeof(*m));
    msg_begin(m);
    add_simple(m, WIRE_OP_FLUSH);
    msg_end(m);
    static const uint16_t ok_flags[] = {WIRE_SYNC_DEFAULT, WIRE_SYNC_COMMIT,
                                        WIRE_SYNC_NONE};
    for (int i = 0; i < 3; i++) {
        poke16(m, offsetof(wire_request_header, flags), ok_flags[i]);
        result r = decode(m);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.req.header.flags, ok_flags[i]);
        assert_true(r.req.has_flush);
        assert_int_equal(r.req.data_ops, 0);
    }
    free(m);
}

static void test_wire_full_batch_at_limits(void **state)
{
    (void)state;
    msg *m = malloc(sizeof(*m));
    msg_begin(m);
    char content[1025];
    memset(content, 'c', 1024);
    content[1024] = 0;
    add_learn(m, 0, 1, content, 4); /* content_len == max_content */
    for (uint32_t i = 1; i < LIMITS.max_batch; i++)
        add_forget(m, (uint8_t)i);
    msg_end(m);
    wire_limits lim = LIMITS;
    lim.max_message = m->len; /* exactly at the limit */
    result r = decode_lim(m, &lim);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.req.data_ops, LIMITS.max_batch);
    free(m);
}

/* ---- header rules -------------------------------------------------------- */

static msg *valid_pair(void)
{
    msg *m = malloc(sizeof(*m));
    msg_begin(m);
    add_learn(m, 0, 1, "ab", 4);
    add_forget(m, 2);
    msg_end(m);
    assert_int_equal(decode(m).rc, 0);
    return m;
}

static void test_wire_reject_short_header(void **state)
{
    (void)state;
    msg *m = valid_pair();
    m->len = 31;
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-REQ-1");
    m->len = 0;
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-REQ-1");
    free(m);
}

static void test_wire_reject_bad_magic(void **state)
{
    (void)state;
    msg *m = valid_pair();
    poke32(m, 0, WIRE_REPLY_MAGIC);
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-REQ-1");
    free(m);
}

static void test_wire_reject_other_version(void **state)
{
    (void)state;
    msg *m = valid_pair();
    poke16(m, offsetof(wire_request_header, version), 2);
    reject(m, SUTRA_EVERSION, WIRE_NO_FAILED_OP, "P-REQ-2");
    poke16(m, offsetof(wire_request_header, version), 0);
    reject(m, SUTRA_EVERSION, WIRE_NO_FAILED_OP, "P-REQ-2");
    free(m);
}

static void test_wire_reject_reserved_nonzero(void **state)
{
    (void)state;
    msg *m = valid_pair();
    poke32(m, offsetof(wire_request_header, reserved), 1);
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-REQ-3");
    free(m);
}

static void test_wire_reject_unknown_request_flags(void **state)
{
    (void)state;
    msg *m = valid_pair();
    poke16(m, offsetof(wire_request_header, flags), 0x0004);
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-REQ-4");
    poke16(m, offsetof(wire_request_header, flags), 0x8000);
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-REQ-4");
    poke16(m, offsetof(wire_request_header, flags), WIRE_SYNC_MASK);
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-REQ-4");
    free(m);
}

static void test_wire_reject_zero_client_or_request(void **state)
{
    (void)state;
    msg *m = valid_pair();
    poke64(m, offsetof(wire_request_header, client_id), 0);
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-IDEM-1");
    msg_end(m);
    poke64(m, offsetof(wire_request_header, request_no), 0);
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-IDEM-1");
    free(m);
}

static void test_wire_reject_message_too_big(void **state)
{
    (void)state;
    msg *m = valid_pair();
    wire_limits lim = LIMITS;
    lim.max_message = m->len - 1;
    expect_reject(m, &lim, SUTRA_ETOOBIG, WIRE_NO_FAILED_OP, "P-REQ-5");
    free(m);
}

static void test_wire_reject_op_count_zero(void **state)
{
    (void)state;
    msg *m = valid_pair();
    poke32(m, offsetof(wire_request_header, op_count), 0);
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-REQ-6");
    m->len = 32; /* header only: same rule */
    reject(m, SUTRA_EPROTO, WIRE_NO_FAILED_OP, "P-REQ-6");
    free(m);
}

static void test_wire_reject_op_count_over_batch(void **state)
{
    (void)state;
    msg *m = valid_pair();
    wire_limits lim = LIMITS;
    lim.max_batch = 1;
    expect_reject(m, &lim, SUTRA_ETOOBIG, WIRE_NO_FAILED_OP, "P-REQ-6");
    free(m);
}

/* ---- tiling rules ------------------------------------------------------- */

static void test_wire_reject_more_ops_than_count(void **state)
{
    (void)state;
    msg *m = valid_pair();
    poke32(m, offsetof(wire_request_header, op_count), 1);
    reject(m, SUTRA_EPROTO, 1, "P-REQ-7");
    free(m);
}

static void test_wire_reject_fewer_ops_than_count(void **state)
{
    (void)state;
    msg *m = valid_pair();
    poke32(m, offsetof(wire_request_header, op_count), 3);
    reject(m, SUTRA_EPROTO, 2, "P-REQ-7");
    free(m);
}

static void test_wire_reject_op_length_too_small(void **state)
{
    (void)state;
    msg *m = valid_pair();
    size_t second = 32 + wire_learn_concept_size(2, 4);
    poke32(m, second + 4, 0);
    reject(m, SUTRA_EPROTO, 1, "P-OP-1");
    poke32(m, second + 4, 4);
    reject(m, SUTRA_EPROTO, 1, "P-OP-1");
    free(m);
}

static void test_wire_reject_op_length_not_multiple_of_8(void **state)
{
    (void)state;
    msg *m = valid_pair();
    size_t second = 32 + wire_learn_concept_size(2, 4);
    poke32(m, second + 4, 20);
    reject(m, SUTRA_EPROTO, 1, "P-OP-1");
    free(m);
}

static void test_wire_reject_op_past_end(void **state)
{
    (void)state;
    msg *m = valid_pair();
    size_t second = 32 + wire_learn_concept_size(2, 4);
    poke32(m, second + 4, 32);
    reject(m, SUTRA_EPROTO, 1, "P-OP-1");
    poke32(m, second + 4, 0xFFFFFFF8u);
    reject(m, SUTRA_EPROTO, 1, "P-OP-1");
    free(m);
}

static void test_wire_reject_truncated_op_header(void **state)
{
    (void)state;
    msg *m = valid_pair();
    m->len += 4; /* 4 stray bytes where a next op header would start */
    poke32(m, offsetof(wire_request_header, op_count), 3);
    reject(m, SUTRA_EPROTO, 2, "P-OP-1");
    free(m);
}

/* ---- op rules ------------------------------------------------------------ */

/* A message whose op 1 is built by the caller after a valid learn op 0. */
static msg *with_second(void)
{
    msg *m = malloc(sizeof(*m));
    msg_begin(m);
    add_learn(m, 0, 1, NULL, 0);
    return m;
}

static const size_t SECOND = 32 + 40;

static const uint16_t ASSOC_CODES[] = {WIRE_OP_LEARN_ASSOCIATION,
                                       WIRE_OP_FORGET_ASSOCIATION};
static const char *const ASSOC_RULES[] = {"P-OP-9", "P-OP-10"};

static void test_wire_reject_association_wrong_length(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        msg *m = with_second();
        add_forget(m, 2); /* 24 bytes, reused as an association */
        msg_end(m);
        poke16(m, SECOND, ASSOC_CODES[i]);
        reject(m, SUTRA_EPROTO, 1, ASSOC_RULES[i]);
        free(m);

        m = with_second();
        add_learn(m, 0, 2, "0123456789abcdef", 0); /* 56 bytes */
        msg_end(m);
        poke16(m, SECOND, ASSOC_CODES[i]);
        reject(m, SUTRA_EPROTO, 1, ASSOC_RULES[i]);
        free(m);
    }
}

static void test_wire_reject_association_flags(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        msg *m = with_second();
        add_assoc(m, ASSOC_CODES[i], 2, 3, 1, 0.5f);
        msg_end(m);
        assert_int_equal(decode(m).rc, 0);
        poke16(m, SECOND + 2, 0x0001);
        reject(m, SUTRA_EPROTO, 1, ASSOC_RULES[i]);
        free(m);
    }
}

static void test_wire_association_confidence_range(void **state)
{
    (void)state;
    const size_t conf = SECOND + offsetof(wire_association, confidence);
    static const float ok[] = {0.0f, 1.0f, 0.5f, -0.0f, 1e-30f};
    static const float bad[] = {-0.001f, 1.001f, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        msg *m = with_second();
        add_assoc(m, WIRE_OP_LEARN_ASSOCIATION, 2, 3, 1, 0.5f);
        msg_end(m);
        pokef(m, conf, ok[i]);
        assert_int_equal(decode(m).rc, 0);
        free(m);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg *m = with_second();
        add_assoc(m, WIRE_OP_LEARN_ASSOCIATION, 2, 3, 1, 0.5f);
        msg_end(m);
        pokef(m, conf, bad[i]);
        reject(m, SUTRA_EINVAL, 1, "P-OP-9");
        free(m);
    }
    /* P-OP-10: a forget carries exactly +0.0, all bits zero. */
    static const float not_zero[] = {0.5f, -0.0f, 1.0f, NAN};
    for (size_t i = 0; i < sizeof(not_zero) / sizeof(not_zero[0]); i++) {
        msg *m = with_second();
        add_assoc(m, WIRE_OP_FORGET_ASSOCIATION, 2, 3, 1, 0.0f);
        msg_end(m);
        assert_int_equal(decode(m).rc, 0);
        pokef(m, conf, not_zero[i]);
        reject(m, SUTRA_EINVAL, 1, "P-OP-10");
        free(m);
    }
    /* 0xFFFFFFFF is every type in a reader's filter: no edge has it */
    for (int forget = 0; forget < 2; forget++) {
        msg *m = with_second();
        add_assoc(m, forget ? WIRE_OP_FORGET_ASSOCIATION
                            : WIRE_OP_LEARN_ASSOCIATION, 2, 3,
                  WIRE_ASSOC_TYPE_ANY, forget ? 0.0f : 0.5f);
        msg_end(m);
        reject(m, SUTRA_EINVAL, 1, forget ? "P-OP-10" : "P-OP-9");
        free(m);
    }
}

static void test_wire_reject_unknown_opcode(void **state)
{
    (void)state;
    static const uint16_t codes[] = {0, 8, 99, 0xFFFF};
    for (int i = 0; i < 4; i++) {
        msg *m = with_second();
        add_forget(m, 2);
        msg_end(m);
        poke16(m, SECOND, codes[i]);
        reject(m, SUTRA_EPROTO, 1, "P-OP-1");
        free(m);
    }
}

static void test_wire_reject_unknown_op_flags(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, 0, 2, "x", 0);
    msg_end(m);
    poke16(m, SECOND + 2, 0x0004);
    reject(m, SUTRA_EPROTO, 1, "P-OP-2");
    free(m);

    m = with_second();
    add_forget(m, 2);
    msg_end(m);
    poke16(m, SECOND + 2, 1);
    reject(m, SUTRA_EPROTO, 1, "P-OP-5");
    free(m);

    m = with_second();
    add_simple(m, WIRE_OP_FLUSH);
    msg_end(m);
    poke16(m, SECOND + 2, 1);
    reject(m, SUTRA_EPROTO, 1, "P-OP-1");
    free(m);
}

static void test_wire_reject_learn_shorter_than_fixed(void **state)
{
    (void)state;
    msg *m = with_second();
    add_simple(m, WIRE_OP_FLUSH);
    add_simple(m, WIRE_OP_FLUSH);
    add_simple(m, WIRE_OP_FLUSH);
    msg_end(m);
    /* three 8-byte ops become one 24-byte learn_concept plus nothing */
    poke16(m, SECOND, WIRE_OP_LEARN_CONCEPT);
    poke32(m, SECOND + 4, 24);
    poke32(m, offsetof(wire_request_header, op_count), 2);
    reject(m, SUTRA_EPROTO, 1, "P-OP-2");
    free(m);
}

static void test_wire_reject_learn_length_mismatch(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, 0, 2, "abc", 0); /* 48 bytes */
    msg_end(m);
    poke32(m, SECOND + offsetof(wire_learn_concept, content_len), 9); /* needs 56 */
    reject(m, SUTRA_EPROTO, 1, "P-OP-2");
    poke32(m, SECOND + offsetof(wire_learn_concept, content_len), 3);
    poke32(m, SECOND + offsetof(wire_learn_concept, dim), 0xFFFFFFFFu);
    reject(m, SUTRA_EPROTO, 1, "P-OP-2");
    free(m);
}

static void test_wire_reject_content_too_big(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, 0, 2, "0123456789", 0);
    msg_end(m);
    wire_limits lim = LIMITS;
    lim.max_content = 9;
    expect_reject(m, &lim, SUTRA_ETOOBIG, 1, "P-OP-2");
    lim.max_content = 10;
    assert_int_equal(decode_lim(m, &lim).rc, 0);
    free(m);
}

static void test_wire_reject_wrong_dim(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, 0, 2, NULL, 2);
    msg_end(m);
    reject(m, SUTRA_EDIM, 1, "P-OP-3");
    free(m);
}

static void test_wire_reject_embedding_without_file_dim(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, 0, 2, NULL, 4);
    msg_end(m);
    wire_limits lim = LIMITS;
    lim.vector_dim = 0;
    expect_reject(m, &lim, SUTRA_EDIM, 1, "P-OP-3");
    free(m);
}

static void test_wire_reject_keep_content_with_content(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, WIRE_LEARN_KEEP_CONTENT, 2, "x", 0);
    msg_end(m);
    reject(m, SUTRA_EINVAL, 1, "P-OP-2");
    free(m);
}

static void test_wire_reject_keep_embedding_with_embedding(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, WIRE_LEARN_KEEP_EMBEDDING, 2, NULL, 4);
    msg_end(m);
    reject(m, SUTRA_EINVAL, 1, "P-OP-2");
    free(m);
}

static void test_wire_reject_non_finite_strength(void **state)
{
    (void)state;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        msg *m = with_second();
        add_learn(m, 0, 2, NULL, 0);
        msg_end(m);
        pokef(m, SECOND + offsetof(wire_learn_concept, strength), bad[i]);
        reject(m, SUTRA_EINVAL, 1, "P-OP-4");
        free(m);
    }
}

static void test_wire_confidence_range(void **state)
{
    (void)state;
    const float bad[] = {NAN, INFINITY, -0.001f, 1.001f, -1.0f};
    const float good[] = {0.0f, 1.0f, 0.25f};
    msg *m = with_second();
    add_learn(m, 0, 2, NULL, 0);
    msg_end(m);
    for (int i = 0; i < 5; i++) {
        pokef(m, SECOND + offsetof(wire_learn_concept, confidence), bad[i]);
        reject(m, SUTRA_EINVAL, 1, "P-OP-4");
    }
    for (int i = 0; i < 3; i++) {
        pokef(m, SECOND + offsetof(wire_learn_concept, confidence), good[i]);
        assert_int_equal(decode(m).rc, 0);
    }
    free(m);
}

static void test_wire_reject_non_finite_embedding(void **state)
{
    (void)state;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        msg *m = with_second();
        add_learn(m, 0, 2, "abc", 4);
        msg_end(m);
        /* last float: embedding starts at 40 + pad8(3) = 48 */
        pokef(m, SECOND + 48 + 3 * 4, bad[i]);
        reject(m, SUTRA_EINVAL, 1, "P-OP-4");
        free(m);
    }
}

static void test_wire_reject_nonzero_content_padding(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, 0, 2, "abc", 0); /* pad bytes 43..47 */
    msg_end(m);
    op_at(m, SECOND + 47)[0] = 1;
    reject(m, SUTRA_EPROTO, 1, "P-OP-2");
    free(m);
}

static void test_wire_reject_nonzero_embedding_padding(void **state)
{
    (void)state;
    wire_limits lim = LIMITS;
    lim.vector_dim = 3;
    msg *m = with_second();
    add_learn(m, 0, 2, NULL, 3); /* floats 40..52, pad 52..56 */
    msg_end(m);
    assert_int_equal(decode_lim(m, &lim).rc, 0);
    op_at(m, SECOND + 53)[0] = 0x80;
    expect_reject(m, &lim, SUTRA_EPROTO, 1, "P-OP-2");
    free(m);
}

static void test_wire_reject_forget_wrong_length(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, 0, 2, "abcdefg", 0); /* 48 bytes, reused as a forget */
    msg_end(m);
    poke16(m, SECOND, WIRE_OP_FORGET_CONCEPT);
    reject(m, SUTRA_EPROTO, 1, "P-OP-5");
    free(m);
}

static void test_wire_reject_simple_op_wrong_length(void **state)
{
    (void)state;
    static const uint16_t codes[] = {WIRE_OP_FLUSH, WIRE_OP_STATS, WIRE_OP_PING};
    for (int i = 0; i < 3; i++) {
        msg *m = malloc(sizeof(*m));
        msg_begin(m);
        add_forget(m, 2); /* 24 bytes, reused as a simple op */
        msg_end(m);
        poke16(m, 32, codes[i]);
        reject(m, SUTRA_EPROTO, 0, "P-OP-1");
        free(m);
    }
}

static void test_wire_reject_control_op_not_alone(void **state)
{
    (void)state;
    msg *m = with_second();
    add_simple(m, WIRE_OP_STATS);
    msg_end(m);
    reject(m, SUTRA_EPROTO, 1, "P-OP-6");
    free(m);

    m = malloc(sizeof(*m));
    msg_begin(m);
    add_simple(m, WIRE_OP_PING);
    add_simple(m, WIRE_OP_FLUSH);
    msg_end(m);
    reject(m, SUTRA_EPROTO, 0, "P-OP-7");
    free(m);
}

static void test_wire_first_bad_op_is_reported(void **state)
{
    (void)state;
    msg *m = with_second();
    add_learn(m, 0, 2, NULL, 2);         /* op 1: EDIM  */
    add_simple(m, WIRE_OP_LEARN_ASSOCIATION); /* op 2: EPROTO (length) */
    msg_end(m);
    reject(m, SUTRA_EDIM, 1, "P-OP-3");
    free(m);
}

static void test_wire_reject_misaligned_buffer(void **state)
{
    (void)state;
    msg *m = valid_pair();
    uint8_t *copy = malloc(m->len + 8);
    memcpy(copy + 2, m->words, m->len);
    wire_request out;
    uint32_t failed = 0;
    const char *why = NULL;
    assert_int_equal(wire_request_decode(copy + 2, m->len, &LIMITS, &out,
                                         &failed, &why), SUTRA_EINVAL);
    assert_int_equal(failed, WIRE_NO_FAILED_OP);
    /* 4 mod 8 is what NNG delivers: accepted */
    memcpy(copy + 4, m->words, m->len);
    assert_int_equal(wire_request_decode(copy + 4, m->len, &LIMITS, &out,
                                         &failed, &why), 0);
    free(copy);
    free(m);
}

/* ---- hostile input ------------------------------------------------------- */

static bool is_sutra_code(int rc)
{
    return rc == SUTRA_EPROTO || rc == SUTRA_EVERSION || rc == SUTRA_ETOOBIG ||
           rc == SUTRA_EDIM || rc == SUTRA_EINVAL || rc == SUTRA_EUNSUPPORTED;
}

static msg *fuzz_seed_message(void)
{
    msg *m = malloc(sizeof(*m));
    msg_begin(m);
    add_learn(m, 0, 1, "content!", 4);
    add_forget(m, 2);
    add_learn(m, WIRE_LEARN_KEEP_CONTENT, 3, NULL, 4);
    add_learn(m, WIRE_LEARN_KEEP_EMBEDDING, 4, "xyz", 0);
    add_assoc(m, WIRE_OP_LEARN_ASSOCIATION, 1, 4, 3, 0.5f);
    add_simple(m, WIRE_OP_FLUSH);
    add_assoc(m, WIRE_OP_FORGET_ASSOCIATION, 1, 4, 3, 0.0f);
    msg_end(m);
    assert_int_equal(decode(m).rc, 0);
    return m;
}

/* Decode `len` bytes from an exact-size heap copy; walk the ops on success
 * and check they add up. */
static int decode_exact(const uint8_t *src, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, src, len);
    wire_request req;
    uint32_t failed = 0;
    const char *why = NULL;
    int rc = wire_request_decode(copy, len, &LIMITS, &req, &failed, &why);
    if (rc == 0) {
        size_t cursor = 0;
        uint32_t n = 0, data = 0;
        wire_op op;
        while (wire_request_next(&req, &cursor, &op)) {
            n++;
            data += op.opcode == WIRE_OP_LEARN_CONCEPT ||
                    op.opcode == WIRE_OP_FORGET_CONCEPT ||
                    op.opcode == WIRE_OP_LEARN_ASSOCIATION ||
                    op.opcode == WIRE_OP_FORGET_ASSOCIATION;
            if (op.opcode == WIRE_OP_LEARN_ASSOCIATION)
                assert_true(op.confidence >= 0.0f && op.confidence <= 1.0f);
            for (uint32_t i = 0; i < op.dim; i++)
                assert_true(isfinite(op.embedding[i]));
            /* every view lies inside the message */
            if (op.content_len) {
                assert_true((const uint8_t *)op.content >= copy);
                assert_true((const uint8_t *)op.content + op.content_len <=
                            copy + len);
            }
            if (op.dim)
                assert_true((const uint8_t *)(op.embedding + op.dim) <=
                            copy + len);
        }
        assert_int_equal(n, req.header.op_count);
        assert_int_equal(data, req.data_ops);
        assert_int_equal(cursor, req.ops_len);
    } else {
        assert_true(is_sutra_code(rc));
        assert_non_null(why);
        assert_true(why[0] == 'P' && why[1] == '-');
    }
    free(copy);
    return rc;
}

static void test_wire_truncation_never_accepted(void **state)
{
    (void)state;
    msg *m = fuzz_seed_message();
    for (size_t len = 0; len < m->len; len++) {
        int rc = decode_exact((const uint8_t *)m->words, len);
        assert_true(rc < 0);
    }
    assert_int_equal(decode_exact((const uint8_t *)m->words, m->len), 0);
    free(m);
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void test_wire_random_flips_never_crash(void **state)
{
    (void)state;
    msg *m = fuzz_seed_message();
    uint8_t *work = malloc(m->len);
    uint64_t seed = 0x5eed5eed12345678ull;
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(work, m->words, m->len);
        int flips = 1 + (int)(xorshift64(&seed) % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = xorshift64(&seed) % m->len;
            work[at] ^= (uint8_t)(1u << (xorshift64(&seed) % 8));
        }
        if (decode_exact(work, m->len) == 0)
            accepted++;
        else
            rejected++;
    }
    /* Flips inside ids and content are legal, most others are not. */
    assert_true(accepted > 0);
    assert_true(rejected > 0);
    free(work);
    free(m);
}

/* ---- replies -------------------------------------------------------------- */

static void test_wire_reply_round_trip(void **state)
{
    (void)state;
    struct {
        wire_reply_header h;
        wire_stats stats;
    } buf;
    memset(&buf, 0, sizeof(buf));
    wire_reply_header_init(&buf.h, 77, 0, WIRE_NO_FAILED_OP, 1000, 55, 3,
                           sizeof(wire_stats));
    buf.stats.generation = 55;
    buf.stats.max_batch = 100000;
    wire_reply_header h;
    const void *body = NULL;
    assert_int_equal(wire_reply_decode(&buf, sizeof(buf), &h, &body), 0);
    assert_int_equal(h.magic, WIRE_REPLY_MAGIC);
    assert_int_equal(h.version, WIRE_VERSION);
    assert_int_equal(h.request_no, 77);
    assert_int_equal(h.status, 0);
    assert_int_equal(h.failed_op, WIRE_NO_FAILED_OP);
    assert_int_equal(h.first_seq, 1000);
    assert_int_equal(h.generation, 55);
    assert_int_equal(h.op_count, 3);
    assert_int_equal(h.body_len, sizeof(wire_stats));
    assert_ptr_equal(body, &buf.stats);
    wire_stats s;
    memcpy(&s, body, sizeof(s));
    assert_int_equal(s.generation, 55);
    assert_int_equal(s.max_batch, 100000);

    /* an error reply, no body */
    wire_reply_header_init(&buf.h, 78, SUTRA_EDIM, 4, 0, 0, 0, 0);
    body = &buf;
    assert_int_equal(wire_reply_decode(&buf, sizeof(buf.h), &h, &body), 0);
    assert_int_equal(h.status, SUTRA_EDIM);
    assert_int_equal(h.failed_op, 4);
    assert_null(body);
}

static void expect_bad_reply(const void *buf, size_t len, int code)
{
    wire_reply_header h;
    memset(&h, 0xCD, sizeof(h));
    wire_reply_header pristine = h;
    const void *body = (const void *)&h;
    assert_int_equal(wire_reply_decode(buf, len, &h, &body), code);
    assert_memory_equal(&h, &pristine, sizeof(h));
    assert_ptr_equal(body, &h);
}

static void test_wire_reply_rejects(void **state)
{
    (void)state;
    uint64_t words[16];
    wire_reply_header *r = (wire_reply_header *)words;
    memset(words, 0, sizeof(words));
    wire_reply_header_init(r, 1, 0, WIRE_NO_FAILED_OP, 1, 1, 1, 16);
    assert_int_equal(wire_reply_decode(words, 64, &(wire_reply_header){0},
                                       &(const void *){NULL}), 0);
    for (size_t len = 0; len < 48; len++)
        expect_bad_reply(words, len, SUTRA_EPROTO);  /* P-REP-1 */
    expect_bad_reply(words, 63, SUTRA_EPROTO);       /* body_len */
    expect_bad_reply(words, 72, SUTRA_EPROTO);
    r->magic = WIRE_REQUEST_MAGIC;
    expect_bad_reply(words, 64, SUTRA_EPROTO);
    r->magic = WIRE_REPLY_MAGIC;
    r->version = 2;
    expect_bad_reply(words, 64, SUTRA_EVERSION);
    r->version = WIRE_VERSION;
    r->status = 1;
    expect_bad_reply(words, 64, SUTRA_EPROTO);
    r->status = SUTRA_ERROR_MIN - 1;
    expect_bad_reply(words, 64, SUTRA_EPROTO);
    /* only the codes of protocol.md §6 */
    static const int32_t codes[] = {
        SUTRA_ECORRUPT, SUTRA_EVERSION, SUTRA_ENOTFOUND, SUTRA_EPROTO,
        SUTRA_ETOOBIG, SUTRA_ECLOSED, SUTRA_EINVAL, SUTRA_EDIM, SUTRA_EFULL,
        SUTRA_EUNSUPPORTED, SUTRA_EREADONLY, SUTRA_EPERM};
    int valid = 0;
    for (int32_t st = SUTRA_ERROR_MIN; st <= 0; st++) {
        r->status = st;
        bool listed = st == 0;
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
            listed = listed || codes[i] == st;
        if (!listed) {
            expect_bad_reply(words, 64, SUTRA_EPROTO);
            continue;
        }
        assert_int_equal(wire_reply_decode(words, 64, &(wire_reply_header){0},
                                           &(const void *){NULL}), 0);
        valid++;
    }
    assert_int_equal(valid, 13);
}

/* wire_all_finite_f32: every position of arrays of 0..13 floats (the
 * four-lane loop and its tail), starting 0 and 4 bytes past a 16-byte
 * boundary (NNG message bodies are 4-aligned, and the shifted start makes
 * the 16-byte loads unaligned), with NaN, +inf, -inf; and finite extremes
 * that must pass. */
static void test_wire_all_finite(void **state)
{
    (void)state;
    const float bad[] = { NAN, -NAN, INFINITY, -INFINITY };
    const float good[] = { 0.0f, -0.0f, 1e-45f /* denormal */, -1e-45f,
                           3.4028235e38f, -3.4028235e38f, 1.0f };
    _Alignas(16) uint8_t buf[4 + 14 * sizeof(float)];
    for (uint32_t n = 0; n <= 13; n++) {
        for (size_t shift = 0; shift <= 4; shift += 4) { /* NNG bodies: 4-aligned */
            uint8_t *p = buf + shift;
            for (uint32_t i = 0; i < n; i++) {
                float v = good[i % (sizeof(good) / sizeof(good[0]))];
                memcpy(p + i * sizeof(float), &v, sizeof(v));
            }
            assert_true(wire_all_finite_f32(p, n));
            for (uint32_t at = 0; at < n; at++) {
                for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
                    float keep;
                    memcpy(&keep, p + at * sizeof(float), sizeof(keep));
                    memcpy(p + at * sizeof(float), &bad[b], sizeof(float));
                    assert_false(wire_all_finite_f32(p, n));
                    memcpy(p + at * sizeof(float), &keep, sizeof(keep));
                }
            }
            assert_true(wire_all_finite_f32(p, n));
        }
    }
    /* a value past the length is not looked at */
    float two[3] = { 1.0f, 2.0f, NAN };
    assert_true(wire_all_finite_f32(two, 2));
    assert_false(wire_all_finite_f32(two, 3));
}

/* P-REP-3: what a client is told for each kind of store result. */
static void test_wire_status_of_store_errors(void **state)
{
    (void)state;
    assert_int_equal(coord_wire_status(0), 0);
    assert_int_equal(coord_wire_status(SUTRA_EDIM), SUTRA_EDIM);
    assert_int_equal(coord_wire_status(SUTRA_ECORRUPT), SUTRA_ECORRUPT);
    /* codes no reply may carry (P-REP-3) */
    assert_int_equal(coord_wire_status(SUTRA_ETIMEDOUT), SUTRA_EINVAL);
    assert_int_equal(coord_wire_status(SUTRA_EMAPFULL), SUTRA_EINVAL);
    for (int rc = SUTRA_ERROR_MIN - 2; rc < 300; rc++)
        assert_true(wire_status_valid(coord_wire_status(rc)));
    assert_int_equal(coord_wire_status(ENOSPC), SUTRA_EFULL);
    assert_int_equal(coord_wire_status(EDQUOT), SUTRA_EFULL);
    assert_int_equal(coord_wire_status(EFBIG), SUTRA_EFULL);
    /* refused for want of memory: the store stays writable */
    assert_int_equal(coord_wire_status(ENOMEM), SUTRA_ETOOBIG);
    assert_int_equal(coord_wire_status(EIO), SUTRA_EREADONLY);
    assert_int_equal(coord_wire_status(SUTRA_ERROR_MIN - 1), SUTRA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_all_finite),
        cmocka_unit_test(test_wire_learn_variants_round_trip),
        cmocka_unit_test(test_wire_learn_size_pads_to_8),
        cmocka_unit_test(test_wire_encoder_zeroes_padding),
        cmocka_unit_test(test_wire_mixed_batch_round_trip),
        cmocka_unit_test(test_wire_control_ops_alone),
        cmocka_unit_test(test_wire_flush_alone_and_sync_flags),
        cmocka_unit_test(test_wire_full_batch_at_limits),
        cmocka_unit_test(test_wire_reject_short_header),
        cmocka_unit_test(test_wire_reject_bad_magic),
        cmocka_unit_test(test_wire_reject_other_version),
        cmocka_unit_test(test_wire_reject_reserved_nonzero),
        cmocka_unit_test(test_wire_reject_unknown_request_flags),
        cmocka_unit_test(test_wire_reject_zero_client_or_request),
        cmocka_unit_test(test_wire_reject_message_too_big),
        cmocka_unit_test(test_wire_reject_op_count_zero),
        cmocka_unit_test(test_wire_reject_op_count_over_batch),
        cmocka_unit_test(test_wire_reject_more_ops_than_count),
        cmocka_unit_test(test_wire_reject_fewer_ops_than_count),
        cmocka_unit_test(test_wire_reject_op_length_too_small),
        cmocka_unit_test(test_wire_reject_op_length_not_multiple_of_8),
        cmocka_unit_test(test_wire_reject_op_past_end),
        cmocka_unit_test(test_wire_reject_truncated_op_header),
        cmocka_unit_test(test_wire_association_round_trip),
        cmocka_unit_test(test_wire_reject_association_wrong_length),
        cmocka_unit_test(test_wire_reject_association_flags),
        cmocka_unit_test(test_wire_association_confidence_range),
        cmocka_unit_test(test_wire_reject_unknown_opcode),
        cmocka_unit_test(test_wire_reject_unknown_op_flags),
        cmocka_unit_test(test_wire_reject_learn_shorter_than_fixed),
        cmocka_unit_test(test_wire_reject_learn_length_mismatch),
        cmocka_unit_test(test_wire_reject_content_too_big),
        cmocka_unit_test(test_wire_reject_wrong_dim),
        cmocka_unit_test(test_wire_reject_embedding_without_file_dim),
        cmocka_unit_test(test_wire_reject_keep_content_with_content),
        cmocka_unit_test(test_wire_reject_keep_embedding_with_embedding),
        cmocka_unit_test(test_wire_reject_non_finite_strength),
        cmocka_unit_test(test_wire_confidence_range),
        cmocka_unit_test(test_wire_reject_non_finite_embedding),
        cmocka_unit_test(test_wire_reject_nonzero_content_padding),
        cmocka_unit_test(test_wire_reject_nonzero_embedding_padding),
        cmocka_unit_test(test_wire_reject_forget_wrong_length),
        cmocka_unit_test(test_wire_reject_simple_op_wrong_length),
        cmocka_unit_test(test_wire_reject_control_op_not_alone),
        cmocka_unit_test(test_wire_first_bad_op_is_reported),
        cmocka_unit_test(test_wire_reject_misaligned_buffer),
        cmocka_unit_test(test_wire_truncation_never_accepted),
        cmocka_unit_test(test_wire_random_flips_never_crash),
        cmocka_unit_test(test_wire_reply_round_trip),
        cmocka_unit_test(test_wire_reply_rejects),
        cmocka_unit_test(test_wire_status_of_store_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
