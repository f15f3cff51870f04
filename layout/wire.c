/*
 * layout/wire.c — encode and validate coordinator protocol messages.
 *
 * The coordinator decodes requests from any process that can reach its
 * socket, so wire_request_decode() treats every byte as hostile: it checks
 * every length before reading past it, reads scalars with memcpy (no
 * alignment assumption beyond the 4 bytes an embedding view needs), and
 * rejects a message whole, naming the first rule it breaks (docs/protocol.md,
 * P-xxx-n).  Only a message that passes every rule is handed to the
 * committer, which can then walk it with wire_request_next() without further
 * checks.  The encoders write exactly the bytes the decoder requires,
 * including zero padding, so a client built on them never produces a
 * message the coordinator refuses for its framing.
 *
 * Everything here is pure: no I/O, no allocation, no shared state; any
 * thread may call any function at any time.
 */
#include "layout/wire.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sutra/sutra.h"

/* ---- small readers --------------------------------------------------- */

static uint16_t load_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint32_t load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static float load_f32(const uint8_t *p)
{
    float v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t pad8(uint64_t n)
{
    return (n + 7u) & ~(uint64_t)7u;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* ---- learn_concept layout -------------------------------------------- */

/* Offsets of a learn_concept op's parts, relative to the op start
 * (P-OP-2): the 40-byte fixed part, content, zero pad to 8, dim floats,
 * zero pad to 8. */
typedef struct learn_layout {
    uint64_t content;     /* content bytes start                     */
    uint64_t content_end; /* content_len bytes later                 */
    uint64_t embedding;   /* floats start (content_end padded to 8)  */
    uint64_t embedding_end;
    uint64_t total;       /* embedding_end padded to 8               */
} learn_layout;

static learn_layout learn_layout_of(uint32_t content_len, uint32_t dim)
{
    learn_layout l;
    l.content = sizeof(wire_learn_concept);
    l.content_end = l.content + content_len;
    l.embedding = pad8(l.content_end);
    l.embedding_end = l.embedding + (uint64_t)dim * sizeof(float);
    l.total = pad8(l.embedding_end);
    return l;
}

size_t wire_learn_concept_size(uint32_t content_len, uint32_t dim)
{
    return (size_t)learn_layout_of(content_len, dim).total;
}

/* ---- op validation ---------------------------------------------------- */

typedef struct op_error {
    int code;
    const char *why;
} op_error;

#define OP_OK ((op_error){0, NULL})
#define OP_FAIL(c, w) ((op_error){(c), (w)})

static bool finite_f32(float v)
{
    return isfinite(v) != 0;
}

/* A float is not finite when its exponent bits are all ones.  Four lanes
 * at a time with GCC/Clang vector extensions (plain SSE2 on x86-64), the
 * verdicts ORed and looked at once at the end. */
typedef uint32_t u32x4 __attribute__((vector_size(16)));

bool wire_all_finite_f32(const void *p, uint32_t n)
{
    const uint8_t *b = p;
    const uint32_t exp = 0x7f800000u;
    const u32x4 e = { exp, exp, exp, exp };
    u32x4 bad = { 0, 0, 0, 0 };
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        u32x4 x;
        memcpy(&x, b + (size_t)i * 4, sizeof(x));
        bad |= (u32x4)((x & e) == e);
    }
    uint32_t any = bad[0] | bad[1] | bad[2] | bad[3];
    for (; i < n; i++) {
        uint32_t x;
        memcpy(&x, b + (size_t)i * 4, sizeof(x));
        any |= (x & exp) == exp;
    }
    return any == 0;
}

/* The learn_concept fields that depend on the file (P-OP-2..4). */
static op_error check_learn_fields(const uint8_t *op, uint16_t flags,
                                   uint32_t content_len, uint32_t dim,
                                   const wire_limits *lim)
{
    if (content_len > lim->max_content)
        return OP_FAIL(SUTRA_ETOOBIG,
                       "P-OP-2: content longer than the coordinator's max_content");
    if (dim != 0 && lim->vector_dim == 0)
        return OP_FAIL(SUTRA_EDIM,
                       "P-OP-3: embedding sent but the file has no embeddings");
    if (dim != 0 && dim != lim->vector_dim)
        return OP_FAIL(SUTRA_EDIM,
                       "P-OP-3: embedding dimension differs from the file's");
    if ((flags & WIRE_LEARN_KEEP_CONTENT) && content_len != 0)
        return OP_FAIL(SUTRA_EINVAL,
                       "P-OP-2: KEEP_CONTENT with content bytes");
    if ((flags & WIRE_LEARN_KEEP_EMBEDDING) && dim != 0)
        return OP_FAIL(SUTRA_EINVAL,
                       "P-OP-2: KEEP_EMBEDDING with an embedding");
    float strength = load_f32(op + offsetof(wire_learn_concept, strength));
    float confidence = load_f32(op + offsetof(wire_learn_concept, confidence));
    if (!finite_f32(strength))
        return OP_FAIL(SUTRA_EINVAL, "P-OP-4: strength is not finite");
    if (!finite_f32(confidence) || confidence < 0.0f || confidence > 1.0f)
        return OP_FAIL(SUTRA_EINVAL,
                       "P-OP-4: confidence is not a finite value in [0, 1]");
    return OP_OK;
}

/* A learn_concept op of `len` bytes at `op` (P-OP-2..4). */
static op_error check_learn(const uint8_t *op, size_t len, uint16_t flags,
                            const wire_limits *lim)
{
    if (flags & ~(uint16_t)(WIRE_LEARN_KEEP_CONTENT | WIRE_LEARN_KEEP_EMBEDDING))
        return OP_FAIL(SUTRA_EPROTO, "P-OP-2: unknown learn_concept flag bits");
    if (len < sizeof(wire_learn_concept))
        return OP_FAIL(SUTRA_EPROTO,
                       "P-OP-2: learn_concept shorter than its fixed part");
    uint32_t content_len = load_u32(op + offsetof(wire_learn_concept, content_len));
    uint32_t dim = load_u32(op + offsetof(wire_learn_concept, dim));
    /* The exact-length check comes first so that no later read leaves the
     * op; both fields are u32, so the 64-bit size cannot overflow. */
    learn_layout l = learn_layout_of(content_len, dim);
    if (l.total != len)
        return OP_FAIL(SUTRA_EPROTO,
                       "P-OP-2: learn_concept length does not match content_len and dim");
    op_error e = check_learn_fields(op, flags, content_len, dim, lim);
    if (e.code)
        return e;
    if (!wire_all_finite_f32(op + l.embedding, dim))
        return OP_FAIL(SUTRA_EINVAL, "P-OP-4: embedding value is not finite");
    if (!all_zero(op + l.content_end, l.embedding - l.content_end) ||
        !all_zero(op + l.embedding_end, l.total - l.embedding_end))
        return OP_FAIL(SUTRA_EPROTO, "P-OP-2: nonzero padding byte");
    return OP_OK;
}

/* A learn_association (P-OP-9) or forget_association (P-OP-10) op. */
static op_error check_association(const uint8_t *op, size_t len,
                                  uint16_t opcode, uint16_t flags)
{
    bool learn = opcode == WIRE_OP_LEARN_ASSOCIATION;
    if (flags)
        return OP_FAIL(SUTRA_EPROTO,
                       learn ? "P-OP-9: unknown learn_association flag bits"
                             : "P-OP-10: unknown forget_association flag bits");
    if (len != sizeof(wire_association))
        return OP_FAIL(SUTRA_EPROTO,
                       learn ? "P-OP-9: learn_association length is not 48"
                             : "P-OP-10: forget_association length is not 48");
    uint32_t type;
    memcpy(&type, op + offsetof(wire_association, type), sizeof(type));
    if (type == WIRE_ASSOC_TYPE_ANY)
        return OP_FAIL(SUTRA_EINVAL,
                       learn ? "P-OP-9: type 0xFFFFFFFF is reserved (any type)"
                             : "P-OP-10: type 0xFFFFFFFF is reserved (any type)");
    const uint8_t *field = op + offsetof(wire_association, confidence);
    if (!learn)
        return all_zero(field, sizeof(float))
                   ? OP_OK
                   : OP_FAIL(SUTRA_EINVAL,
                             "P-OP-10: forget_association confidence is not 0");
    float confidence = load_f32(field);
    if (!finite_f32(confidence) || confidence < 0.0f || confidence > 1.0f)
        return OP_FAIL(SUTRA_EINVAL,
                       "P-OP-9: confidence is not a finite value in [0, 1]");
    return OP_OK;
}

/* One op's body given its already-framed header (P-OP-1..10). */
static op_error check_op(const uint8_t *op, size_t len, const wire_limits *lim,
                         uint32_t op_count)
{
    uint16_t opcode = load_u16(op + offsetof(wire_op_header, opcode));
    uint16_t flags = load_u16(op + offsetof(wire_op_header, flags));
    switch (opcode) {
    case WIRE_OP_LEARN_CONCEPT:
        return check_learn(op, len, flags, lim);
    case WIRE_OP_FORGET_CONCEPT:
        if (flags)
            return OP_FAIL(SUTRA_EPROTO, "P-OP-5: unknown forget_concept flag bits");
        if (len != sizeof(wire_forget_concept))
            return OP_FAIL(SUTRA_EPROTO, "P-OP-5: forget_concept length is not 24");
        return OP_OK;
    case WIRE_OP_LEARN_ASSOCIATION:
    case WIRE_OP_FORGET_ASSOCIATION:
        return check_association(op, len, opcode, flags);
    case WIRE_OP_FLUSH:
    case WIRE_OP_STATS:
    case WIRE_OP_PING:
        if (flags)
            return OP_FAIL(SUTRA_EPROTO, "P-OP-1: unknown op flag bits");
        if (len != sizeof(wire_op_header))
            return OP_FAIL(SUTRA_EPROTO, "P-OP-1: flush/stats/ping length is not 8");
        if (opcode != WIRE_OP_FLUSH && op_count != 1)
            return OP_FAIL(SUTRA_EPROTO,
                           opcode == WIRE_OP_STATS
                               ? "P-OP-6: stats must be the only op of its request"
                               : "P-OP-7: ping must be the only op of its request");
        return OP_OK;
    default:
        return OP_FAIL(SUTRA_EPROTO, "P-OP-1: unknown opcode");
    }
}

/* ---- request validation ------------------------------------------------ */

/* The fixed header (P-REQ-1..6, P-IDEM-1).  Returns 0 or the error. */
static op_error check_header(const wire_request_header *h, size_t len,
                             const wire_limits *lim)
{
    if (h->magic != WIRE_REQUEST_MAGIC)
        return OP_FAIL(SUTRA_EPROTO, "P-REQ-1: bad request magic");
    if (h->version != WIRE_VERSION)
        return OP_FAIL(SUTRA_EVERSION, "P-REQ-2: unknown protocol version");
    if (h->reserved != 0)
        return OP_FAIL(SUTRA_EPROTO, "P-REQ-3: reserved header field is not zero");
    if ((h->flags & ~WIRE_SYNC_MASK) != 0 ||
        (h->flags & WIRE_SYNC_MASK) == WIRE_SYNC_MASK)
        return OP_FAIL(SUTRA_EPROTO, "P-REQ-4: unknown request flag bits");
    if (h->client_id == 0 || h->request_no == 0)
        return OP_FAIL(SUTRA_EPROTO, "P-IDEM-1: client_id and request_no must be nonzero");
    if (len > lim->max_message)
        return OP_FAIL(SUTRA_ETOOBIG, "P-REQ-5: message larger than max_message");
    if (h->op_count == 0)
        return OP_FAIL(SUTRA_EPROTO, "P-REQ-6: request has no ops");
    if (h->op_count > lim->max_batch)
        return OP_FAIL(SUTRA_ETOOBIG, "P-REQ-6: more ops than max_batch");
    return OP_OK;
}

/* Counters gathered while walking the ops. */
typedef struct op_tally {
    uint32_t data_ops;
    bool has_flush;
    bool is_control;
} op_tally;

static void tally_op(op_tally *t, uint16_t opcode)
{
    if (opcode == WIRE_OP_LEARN_CONCEPT || opcode == WIRE_OP_FORGET_CONCEPT ||
        opcode == WIRE_OP_LEARN_ASSOCIATION ||
        opcode == WIRE_OP_FORGET_ASSOCIATION)
        t->data_ops++;
    else if (opcode == WIRE_OP_FLUSH)
        t->has_flush = true;
    else
        t->is_control = true;
}

/* Walk the ops and check they tile [32, len) exactly (P-REQ-7, P-OP-1). */
static op_error check_ops(const uint8_t *msg, size_t len, uint32_t op_count,
                          const wire_limits *lim, op_tally *t,
                          uint32_t *failed_op)
{
    size_t pos = sizeof(wire_request_header);
    uint32_t i = 0;
    for (; pos < len; i++) {
        *failed_op = i;
        if (i >= op_count)
            return OP_FAIL(SUTRA_EPROTO, "P-REQ-7: bytes after the last op");
        if (len - pos < sizeof(wire_op_header))
            return OP_FAIL(SUTRA_EPROTO, "P-OP-1: op header truncated");
        uint32_t op_len = load_u32(msg + pos + offsetof(wire_op_header, length));
        if (op_len < sizeof(wire_op_header) || op_len % 8 != 0)
            return OP_FAIL(SUTRA_EPROTO,
                           "P-OP-1: op length below 8 or not a multiple of 8");
        if (op_len > len - pos)
            return OP_FAIL(SUTRA_EPROTO, "P-OP-1: op runs past the end of the message");
        op_error e = check_op(msg + pos, op_len, lim, op_count);
        if (e.code)
            return e;
        tally_op(t, load_u16(msg + pos));
        pos += op_len;
    }
    if (i != op_count) {
        *failed_op = i;
        return OP_FAIL(SUTRA_EPROTO, "P-REQ-7: fewer ops than op_count");
    }
    return OP_OK;
}

int wire_request_decode(const void *buf, size_t len, const wire_limits *lim,
                        wire_request *out, uint32_t *failed_op,
                        const char **why)
{
    const uint8_t *msg = buf;
    uint32_t bad_op = WIRE_NO_FAILED_OP;
    op_error e;
    wire_request_header h;

    if (len < sizeof(h)) {
        e = OP_FAIL(SUTRA_EPROTO, "P-REQ-1: message shorter than the 32-byte header");
    } else if ((uintptr_t)buf % sizeof(float) != 0) {
        /* Not the sender's fault: embedding views need 4-byte alignment, so
         * a caller holding an odd buffer must copy it first. */
        e = OP_FAIL(SUTRA_EINVAL,
                    "wire_request_decode: message buffer not 4-byte aligned "
                    "in memory");
    } else {
        memcpy(&h, msg, sizeof(h));
        e = check_header(&h, len, lim);
    }
    op_tally t = {0, false, false};
    if (e.code == 0)
        e = check_ops(msg, len, h.op_count, lim, &t, &bad_op);
    if (e.code) {
        *failed_op = bad_op;
        *why = e.why;
        return e.code;
    }
    out->header = h;
    out->ops = msg + sizeof(h);
    out->ops_len = len - sizeof(h);
    out->data_ops = t.data_ops;
    out->has_flush = t.has_flush;
    out->is_control = t.is_control;
    return 0;
}

/* ---- iteration ---------------------------------------------------------- */

static void view_learn(const uint8_t *p, wire_op *op)
{
    op->id = p + offsetof(wire_learn_concept, id);
    op->strength = load_f32(p + offsetof(wire_learn_concept, strength));
    op->confidence = load_f32(p + offsetof(wire_learn_concept, confidence));
    op->content_len = load_u32(p + offsetof(wire_learn_concept, content_len));
    op->dim = load_u32(p + offsetof(wire_learn_concept, dim));
    learn_layout l = learn_layout_of(op->content_len, op->dim);
    op->content = op->content_len ? (const void *)(p + l.content) : NULL;
    /* 4-byte aligned: the buffer is (checked at decode) and every offset
     * inside an op at this point is a multiple of 8. */
    op->embedding = op->dim ? (const float *)(const void *)(p + l.embedding)
                            : NULL;
}

static void view_association(const uint8_t *p, wire_op *op)
{
    op->id = p + offsetof(wire_association, source);
    op->target = p + offsetof(wire_association, target);
    op->type = load_u32(p + offsetof(wire_association, type));
    op->confidence = load_f32(p + offsetof(wire_association, confidence));
}

bool wire_request_next(const wire_request *req, size_t *cursor, wire_op *op)
{
    if (*cursor >= req->ops_len)
        return false;
    const uint8_t *p = req->ops + *cursor;
    wire_op v;
    memset(&v, 0, sizeof(v));
    v.opcode = load_u16(p + offsetof(wire_op_header, opcode));
    v.flags = load_u16(p + offsetof(wire_op_header, flags));
    if (v.opcode == WIRE_OP_LEARN_CONCEPT)
        view_learn(p, &v);
    else if (v.opcode == WIRE_OP_FORGET_CONCEPT)
        v.id = p + offsetof(wire_forget_concept, id);
    else if (v.opcode == WIRE_OP_LEARN_ASSOCIATION ||
             v.opcode == WIRE_OP_FORGET_ASSOCIATION)
        view_association(p, &v);
    *cursor += load_u32(p + offsetof(wire_op_header, length));
    *op = v;
    return true;
}

/* ---- encoding ----------------------------------------------------------- */

static void put_op_header(uint8_t *dst, uint16_t opcode, uint16_t flags,
                          uint32_t length)
{
    wire_op_header h = {opcode, flags, length};
    memcpy(dst, &h, sizeof(h));
}

size_t wire_encode_learn_concept(void *dst, uint16_t flags,
                                 const uint8_t id[16], float strength,
                                 float confidence, const void *content,
                                 uint32_t content_len, const float *embedding,
                                 uint32_t dim)
{
    uint8_t *p = dst;
    learn_layout l = learn_layout_of(content_len, dim);
    wire_learn_concept fixed;
    memset(&fixed, 0, sizeof(fixed));
    fixed.op = (wire_op_header){WIRE_OP_LEARN_CONCEPT, flags, (uint32_t)l.total};
    memcpy(fixed.id, id, sizeof(fixed.id));
    fixed.strength = strength;
    fixed.confidence = confidence;
    fixed.content_len = content_len;
    fixed.dim = dim;
    memcpy(p, &fixed, sizeof(fixed));
    if (content_len)
        memcpy(p + l.content, content, content_len);
    memset(p + l.content_end, 0, l.embedding - l.content_end);
    if (dim)
        memcpy(p + l.embedding, embedding, (size_t)dim * sizeof(float));
    memset(p + l.embedding_end, 0, l.total - l.embedding_end);
    return l.total;
}

size_t wire_encode_forget_concept(void *dst, const uint8_t id[16])
{
    wire_forget_concept f;
    memset(&f, 0, sizeof(f));
    f.op = (wire_op_header){WIRE_OP_FORGET_CONCEPT, 0, sizeof(f)};
    memcpy(f.id, id, sizeof(f.id));
    memcpy(dst, &f, sizeof(f));
    return sizeof(f);
}

size_t wire_encode_association(void *dst, uint16_t opcode,
                               const uint8_t source[16],
                               const uint8_t target[16], uint32_t type,
                               float confidence)
{
    wire_association a;
    memset(&a, 0, sizeof(a));
    a.op = (wire_op_header){opcode, 0, sizeof(a)};
    memcpy(a.source, source, sizeof(a.source));
    memcpy(a.target, target, sizeof(a.target));
    a.type = type;
    /* P-OP-10: a forget carries +0.0, all bits zero. */
    a.confidence = opcode == WIRE_OP_LEARN_ASSOCIATION ? confidence : 0.0f;
    memcpy(dst, &a, sizeof(a));
    return sizeof(a);
}

size_t wire_encode_simple_op(void *dst, uint16_t opcode)
{
    put_op_header(dst, opcode, 0, sizeof(wire_op_header));
    return sizeof(wire_op_header);
}

void wire_request_header_init(wire_request_header *h, uint16_t flags,
                              uint64_t client_id, uint64_t request_no,
                              uint32_t op_count)
{
    memset(h, 0, sizeof(*h));
    h->magic = WIRE_REQUEST_MAGIC;
    h->version = WIRE_VERSION;
    h->flags = flags;
    h->client_id = client_id;
    h->request_no = request_no;
    h->op_count = op_count;
}

/* ---- replies ------------------------------------------------------------ */

bool wire_status_valid(int32_t status)
{
    switch (status) {
    case 0:
    case SUTRA_ECORRUPT:
    case SUTRA_EVERSION:
    case SUTRA_ENOTFOUND:
    case SUTRA_EPROTO:
    case SUTRA_ETOOBIG:
    case SUTRA_ECLOSED:
    case SUTRA_EINVAL:
    case SUTRA_EDIM:
    case SUTRA_EFULL:
    case SUTRA_EUNSUPPORTED:
    case SUTRA_EREADONLY:
    case SUTRA_EPERM:
        return true;
    default:
        return false;
    }
}

int wire_reply_decode(const void *buf, size_t len, wire_reply_header *hdr,
                      const void **body)
{
    wire_reply_header h;
    if (len < sizeof(h))
        return SUTRA_EPROTO; /* P-REP-1 */
    memcpy(&h, buf, sizeof(h));
    if (h.magic != WIRE_REPLY_MAGIC)
        return SUTRA_EPROTO; /* P-REP-1 */
    if (h.version != WIRE_VERSION)
        return SUTRA_EVERSION; /* P-REP-2 */
    if (h.body_len != len - sizeof(h) || !wire_status_valid(h.status))
        return SUTRA_EPROTO; /* P-REP-3 */
    *hdr = h;
    *body = h.body_len ? (const void *)((const uint8_t *)buf + sizeof(h)) : NULL;
    return 0;
}

void wire_reply_header_init(wire_reply_header *h, uint64_t request_no,
                            int32_t status, uint32_t failed_op,
                            uint64_t first_seq, uint64_t generation,
                            uint32_t op_count, uint32_t body_len)
{
    memset(h, 0, sizeof(*h));
    h->magic = WIRE_REPLY_MAGIC;
    h->version = WIRE_VERSION;
    h->request_no = request_no;
    h->status = status;
    h->failed_op = failed_op;
    h->first_seq = first_seq;
    h->generation = generation;
    h->op_count = op_count;
    h->body_len = body_len;
}
