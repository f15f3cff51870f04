/*
 * tests/fuzz/fuzz_request.c — libFuzzer target for the coordinator's
 * request decoder (layout/wire.c): wire_request_decode() on any bytes, with
 * limits and alignment taken from the input's first bytes (fuzz_common.h),
 * then wire_request_next() over every op it accepted, touching every byte
 * each op view names so AddressSanitizer sees any view that leaves the
 * message.  A decoded request that disagrees with itself (op count, data
 * ops, control flags) aborts: that is a decoder bug, not bad input.
 */
#include <stdint.h>
#include <stdlib.h>

#include "layout/wire.h"
#include "sutra/sutra.h"
#include "tests/fuzz/fuzz_common.h"

static volatile uint8_t sink;

static void touch(const void *p, size_t len)
{
    const volatile uint8_t *b = p;
    uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= b[i];
    sink ^= x;
}

static void walk_ops(const wire_request *req, const wire_limits *lim)
{
    size_t cursor = 0;
    wire_op op;
    uint32_t ops = 0, data = 0;
    while (wire_request_next(req, &cursor, &op)) {
        ops++;
        if (op.id)
            touch(op.id, 16);
        if (op.target)
            touch(op.target, 16);
        if (op.content_len)
            touch(op.content, op.content_len);
        if (op.dim)
            touch(op.embedding, (size_t)op.dim * sizeof(float));
        if (op.content_len > lim->max_content || (op.dim && op.dim != lim->vector_dim))
            abort(); /* accepted an op over the limits */
        data += op.opcode >= WIRE_OP_LEARN_CONCEPT &&
                op.opcode <= WIRE_OP_FORGET_ASSOCIATION;
        if (ops > req->header.op_count)
            abort();
    }
    if (ops != req->header.op_count || data != req->data_ops)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < FUZZ_PREFIX)
        return 0;
    wire_limits lim = fuzz_limits(data);
    uint8_t *msg;
    uint8_t *base = fuzz_copy(data + FUZZ_PREFIX, size - FUZZ_PREFIX,
                              fuzz_shift(data[4]), &msg);
    size_t len = size - FUZZ_PREFIX;
    wire_request req;
    uint32_t failed_op = 0;
    const char *why = NULL;
    int rc = wire_request_decode(msg, len, &lim, &req, &failed_op, &why);
    if (rc == 0) {
        if (len > lim.max_message || req.header.op_count > lim.max_batch)
            abort();
        walk_ops(&req, &lim);
    } else if (rc > 0 || rc < SUTRA_ERROR_MIN || !why) {
        abort(); /* every refusal is a SUTRA_E* code with a reason */
    }
    free(base);
    return 0;
}
