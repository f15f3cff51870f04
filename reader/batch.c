/*
 * reader/batch.c — building write batches on the client side.
 *
 * A batch is validated op by op as it is built, with the same rules the
 * coordinator applies (P-OP-2..4) wherever they do not depend on the file,
 * so an obviously bad write (NaN strength, a concept's or an association's
 * confidence outside [0, 1], a non-finite embedding value, contradictory
 * flags) fails at once with
 * SUTRA_EINVAL and is never sent.  Limits that depend on the coordinator
 * (max_content, the file's dimension, max_batch) are enforced there.
 *
 * A batch is a plain buffer owned by one thread at a time; sending it only
 * reads it, so several threads may send the same (unchanging) batch.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layout/format.h"
#include "layout/wire.h"
#include "reader/client_internal.h"

int sutra_batch_new(sutra_batch **out)
{
    if (!out)
        return SUTRA_EINVAL;
    sutra_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return ENOMEM;
    *out = b;
    return 0;
}

void sutra_batch_free(sutra_batch *batch)
{
    if (!batch)
        return;
    free(batch->ops);
    free(batch);
}

void sutra_batch_clear(sutra_batch *batch)
{
    if (!batch)
        return;
    batch->len = 0;
    batch->count = 0;
}

size_t sutra_batch_count(const sutra_batch *batch)
{
    return batch ? batch->count : 0;
}

int sutra_batch_set_sync(sutra_batch *batch, enum sutra_sync sync)
{
    if (!batch)
        return SUTRA_EINVAL;
    switch (sync) {
    case SUTRA_SYNC_DEFAULT:
        batch->wire_flags = WIRE_SYNC_DEFAULT;
        return 0;
    case SUTRA_SYNC_COMMIT:
        batch->wire_flags = WIRE_SYNC_COMMIT;
        return 0;
    case SUTRA_SYNC_NONE:
        batch->wire_flags = WIRE_SYNC_NONE;
        return 0;
    }
    return SUTRA_EINVAL; /* the batch keeps its setting */
}

/* Room for `bytes` more bytes of ops; returns the write position or NULL
 * (ENOMEM or too many ops), leaving the batch unchanged. */
static uint8_t *batch_reserve(sutra_batch *b, size_t bytes)
{
    if (b->count == UINT32_MAX || bytes > SIZE_MAX / 2 - b->len)
        return NULL;
    if (b->len + bytes > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + bytes)
            cap *= 2;
        uint8_t *ops = realloc(b->ops, cap);
        if (!ops)
            return NULL;
        b->ops = ops;
        b->cap = cap;
    }
    return b->ops + b->len;
}

static void batch_commit_op(sutra_batch *b, size_t bytes)
{
    b->len += bytes;
    b->count++;
}

/* P-OP-2..4, the part a client can check without the coordinator. */
static int batch_check_learn(const sutra_concept_input *in)
{
    const uint32_t known = SUTRA_LEARN_KEEP_CONTENT | SUTRA_LEARN_KEEP_EMBEDDING;
    if (in->flags & ~known)
        return SUTRA_EINVAL;
    if (!isfinite(in->strength) || !isfinite(in->confidence) ||
        in->confidence < 0.0f || in->confidence > 1.0f)
        return SUTRA_EINVAL;
    if (in->content_len > UINT32_MAX || in->content_len > LAYOUT_MAX_CONTENT)
        return SUTRA_ETOOBIG;
    if (in->content_len && !in->content)
        return SUTRA_EINVAL;
    if ((in->flags & SUTRA_LEARN_KEEP_CONTENT) && in->content_len)
        return SUTRA_EINVAL;
    if (!in->embedding)
        return in->dim == 0 ? 0 : SUTRA_EINVAL;
    if ((in->flags & SUTRA_LEARN_KEEP_EMBEDDING) || in->dim == 0)
        return SUTRA_EINVAL;
    if (in->dim > LAYOUT_MAX_DIM)
        return SUTRA_EDIM;
    return wire_all_finite_f32(in->embedding, in->dim) ? 0 : SUTRA_EINVAL;
}

int sutra_batch_learn_concept(sutra_batch *batch, const sutra_concept_input *in)
{
    if (!batch || !in)
        return SUTRA_EINVAL;
    int rc = batch_check_learn(in);
    if (rc != 0)
        return rc;
    uint32_t content_len = (uint32_t)in->content_len;
    uint32_t dim = in->embedding ? in->dim : 0;
    size_t bytes = wire_learn_concept_size(content_len, dim);
    uint8_t *dst = batch_reserve(batch, bytes);
    if (!dst)
        return ENOMEM;
    uint16_t flags = 0;
    if (in->flags & SUTRA_LEARN_KEEP_CONTENT)
        flags |= WIRE_LEARN_KEEP_CONTENT;
    if (in->flags & SUTRA_LEARN_KEEP_EMBEDDING)
        flags |= WIRE_LEARN_KEEP_EMBEDDING;
    size_t n = wire_encode_learn_concept(dst, flags, in->id.bytes, in->strength,
                                         in->confidence, in->content,
                                         content_len, in->embedding, dim);
    batch_commit_op(batch, n);
    return 0;
}

int sutra_batch_forget_concept(sutra_batch *batch, const sutra_id *id)
{
    if (!batch || !id)
        return SUTRA_EINVAL;
    uint8_t *dst = batch_reserve(batch, sizeof(wire_forget_concept));
    if (!dst)
        return ENOMEM;
    batch_commit_op(batch, wire_encode_forget_concept(dst, id->bytes));
    return 0;
}

/* P-OP-9/P-OP-10: one association op; confidence already checked. */
static int batch_association(sutra_batch *batch, uint16_t opcode,
                             const sutra_id *source, const sutra_id *target,
                             uint32_t type, float confidence)
{
    if (!batch || !source || !target)
        return SUTRA_EINVAL;
    uint8_t *dst = batch_reserve(batch, sizeof(wire_association));
    if (!dst)
        return ENOMEM;
    batch_commit_op(batch, wire_encode_association(dst, opcode, source->bytes,
                                                   target->bytes, type,
                                                   confidence));
    return 0;
}

int sutra_batch_learn_association(sutra_batch *batch, const sutra_id *source,
                                  const sutra_id *target, uint32_t type,
                                  float confidence)
{
    if (!isfinite(confidence) || confidence < 0.0f || confidence > 1.0f ||
        type == WIRE_ASSOC_TYPE_ANY)
        return SUTRA_EINVAL;
    return batch_association(batch, WIRE_OP_LEARN_ASSOCIATION, source, target,
                             type, confidence);
}

int sutra_batch_forget_association(sutra_batch *batch, const sutra_id *source,
                                   const sutra_id *target, uint32_t type)
{
    if (type == WIRE_ASSOC_TYPE_ANY)
        return SUTRA_EINVAL;
    return batch_association(batch, WIRE_OP_FORGET_ASSOCIATION, source, target,
                             type, 0.0f);
}

int sutra_batch_flush(sutra_batch *batch)
{
    if (!batch)
        return SUTRA_EINVAL;
    uint8_t *dst = batch_reserve(batch, sizeof(wire_op_header));
    if (!dst)
        return ENOMEM;
    batch_commit_op(batch, wire_encode_simple_op(dst, WIRE_OP_FLUSH));
    return 0;
}
