/*
 * layout/wire.h — the bytes of the coordinator protocol, version 1.
 *
 * A request is one NNG REQ message: a 32-byte header followed by op_count
 * ops, each 8-byte aligned.  A reply is one NNG REP message: a 48-byte header
 * and an optional body.  docs/protocol.md is the normative prose (rule ids
 * P-xxx-n); this header and layout/wire.c are its only implementation, used
 * by the coordinator (decode requests, encode replies) and libsutra (encode
 * requests, decode replies).
 *
 * Decoding treats every message as hostile: every length is bounds-checked
 * before use, and a message that fails any rule is rejected whole with a
 * specific SUTRA_E* code and a message naming the rule.
 */
#ifndef SUTRA_LAYOUT_WIRE_H
#define SUTRA_LAYOUT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1u
#define WIRE_REQUEST_MAGIC 0x51545553u /* "SUTQ" */
#define WIRE_REPLY_MAGIC 0x52545553u   /* "SUTR" */
#define WIRE_EVENT_MAGIC 0x45545553u   /* "SUTE" */

/* request flags: per-request sync override (P-REQ-4) */
/* P-REQ-5: the coordinator's transport accepts messages up to max_message
 * + WIRE_RECV_SLACK and drops the connection, without a reply, past that;
 * between the two it answers SUTRA_ETOOBIG.  So a request of at most this
 * many bytes always gets an answer, and a client checks larger ones
 * against the max_message that `stats` reports before sending them. */
#define WIRE_RECV_SLACK (64u << 10)

/* P-IDEM-2: the coordinator remembers at least WIRE_IDEM_WINDOW of each
 * client's most recent request numbers, and a client sends request n only
 * once every request up to n - WIRE_CLIENT_OPEN_MAX is answered or can no
 * longer be resent.  The difference is room for copies of a request that
 * were already on their way (in the socket, or being decoded) when its
 * reply arrived: they reach the committer before a request numbered
 * WIRE_IDEM_WINDOW later can have replaced it.  Powers of two. */
#define WIRE_IDEM_WINDOW 1024u
#define WIRE_CLIENT_OPEN_MAX (WIRE_IDEM_WINDOW / 2)

#define WIRE_SYNC_MASK 0x0003u
#define WIRE_SYNC_DEFAULT 0x0000u /* the coordinator's policy             */
#define WIRE_SYNC_COMMIT 0x0001u  /* reply only after the group is durable */
#define WIRE_SYNC_NONE 0x0002u    /* reply after publish                   */

typedef struct wire_request_header {
    uint32_t magic;      /*  0 WIRE_REQUEST_MAGIC                           */
    uint16_t version;    /*  4 WIRE_VERSION                                 */
    uint16_t flags;      /*  6 WIRE_SYNC_*; other bits must be 0            */
    uint64_t client_id;  /*  8 random per client, nonzero (P-IDEM-1)        */
    uint64_t request_no; /* 16 per client, nonzero, unique (P-IDEM-1)       */
    uint32_t op_count;   /* 24 1..max_batch                                 */
    uint32_t reserved;   /* 28 0                                            */
} wire_request_header;

_Static_assert(sizeof(wire_request_header) == 32, "request header");

enum wire_opcode {
    WIRE_OP_LEARN_CONCEPT = 1,
    WIRE_OP_FORGET_CONCEPT = 2,
    WIRE_OP_LEARN_ASSOCIATION = 3,
    WIRE_OP_FORGET_ASSOCIATION = 4,
    WIRE_OP_FLUSH = 5,
    WIRE_OP_STATS = 6,              /* must be the only op            */
    WIRE_OP_PING = 7,               /* must be the only op            */
};

typedef struct wire_op_header {
    uint16_t opcode; /* 0 enum wire_opcode                               */
    uint16_t flags;  /* 2 per-op flags                                   */
    uint32_t length; /* 4 header + payload + padding, a multiple of 8    */
} wire_op_header;

_Static_assert(sizeof(wire_op_header) == 8, "op header");

/* learn_concept op flags (P-OP-2) */
#define WIRE_LEARN_KEEP_CONTENT 0x0001u   /* keep the current content;
                                             content_len must be 0      */
#define WIRE_LEARN_KEEP_EMBEDDING 0x0002u /* keep the current embedding;
                                             dim must be 0              */

/*
 * learn_concept payload: fixed part, then content_len bytes of content, then
 * zero padding to 8, then dim float32 (finite), then zero padding to 8.
 */
typedef struct wire_learn_concept {
    wire_op_header op;   /*  0                                          */
    uint8_t id[16];      /*  8                                          */
    float strength;      /* 24 finite                                   */
    float confidence;    /* 28 finite, 0..1                             */
    uint32_t content_len;/* 32 <= max_content                           */
    uint32_t dim;        /* 36 0 (no embedding) or the file's dim       */
} wire_learn_concept;

_Static_assert(sizeof(wire_learn_concept) == 40, "learn_concept");

typedef struct wire_forget_concept {
    wire_op_header op; /*  0 */
    uint8_t id[16];    /*  8 */
} wire_forget_concept;

_Static_assert(sizeof(wire_forget_concept) == 24, "forget_concept");

/* A type filter's "every type" (SUTRA_ANY_TYPE): no association has it. */
#define WIRE_ASSOC_TYPE_ANY 0xFFFFFFFFu

/* learn_association (confidence finite, 0..1) and forget_association
 * (confidence must be 0): the edge key is (source, target, type). */
typedef struct wire_association {
    wire_op_header op;  /*  0                                          */
    uint8_t source[16]; /*  8                                          */
    uint8_t target[16]; /* 24                                          */
    uint32_t type;      /* 40                                          */
    float confidence;   /* 44                                          */
} wire_association;

_Static_assert(sizeof(wire_association) == 48, "association op");

#define WIRE_NO_FAILED_OP 0xFFFFFFFFu

typedef struct wire_reply_header {
    uint32_t magic;      /*  0 WIRE_REPLY_MAGIC                             */
    uint16_t version;    /*  4 WIRE_VERSION                                 */
    uint16_t flags;      /*  6 0                                            */
    uint64_t request_no; /*  8 echoed                                       */
    int32_t status;      /* 16 0 or a negative SUTRA_E* code                */
    uint32_t failed_op;  /* 20 index of the op that failed, or NO_FAILED_OP */
    uint64_t first_seq;  /* 24 seq of the first op, 0 if none               */
    uint64_t generation; /* 32 generation that makes the writes visible     */
    uint32_t op_count;   /* 40 ops applied                                  */
    uint32_t body_len;   /* 44 bytes after the header                       */
} wire_reply_header;

_Static_assert(sizeof(wire_reply_header) == 48, "reply header");
_Static_assert(offsetof(wire_reply_header, generation) == 32, "reply");
_Static_assert(offsetof(wire_reply_header, op_count) == 40, "reply");

/* Body of a successful stats reply (P-OP-6).  A client reads
 * min(body_len, sizeof) bytes; later versions only append fields. */
typedef struct wire_stats {
    uint64_t generation;
    uint64_t last_seq;
    uint64_t committed_end;
    uint64_t file_size;
    uint64_t node_count;
    uint64_t concept_count;
    uint64_t version_count;
    uint64_t tombstone_count;
    uint64_t requests;        /* requests received since start           */
    uint64_t requests_failed; /* replied with an error                   */
    uint64_t ops_applied;
    uint64_t commits;         /* generations published since start       */
    uint64_t syncs;           /* fdatasync calls since start             */
    uint64_t duplicates;      /* resent requests answered from the cache */
    uint64_t queue_depth;     /* requests waiting for the committer now  */
    uint64_t uptime_ns;
    uint64_t max_message;
    uint64_t max_content;
    uint64_t max_batch;
    uint32_t vector_dim;
    uint32_t sync_policy;     /* 0 commit, 1 interval, 2 none            */
    uint64_t sync_interval_ms;
    uint64_t assoc_count;     /* live associations                       */
    uint64_t reserved[7];
} wire_stats;

_Static_assert(sizeof(wire_stats) == 232, "stats body");

/* Generation event on the PUB socket (P-EVT-1): a hint, never relied on. */
typedef struct wire_event {
    uint32_t magic;         /*  0 WIRE_EVENT_MAGIC */
    uint16_t version;       /*  4 */
    uint16_t flags;         /*  6 */
    uint64_t generation;    /*  8 */
    uint64_t last_seq;      /* 16 */
    uint64_t committed_end; /* 24 */
} wire_event;

_Static_assert(sizeof(wire_event) == 32, "event");

/* ---- decoding (layout/wire.c) ----------------------------------------- */

typedef struct wire_limits {
    uint64_t max_message; /* whole request bytes                         */
    uint32_t max_content; /* content bytes per concept                   */
    uint32_t max_batch;   /* ops per request                             */
    uint32_t vector_dim;  /* the file's dim; 0 = embeddings refused      */
} wire_limits;

/* One decoded op: views into the message buffer (borrowed from it). */
typedef struct wire_op {
    uint16_t opcode;
    uint16_t flags;
    const uint8_t *id;       /* 16 bytes; NULL for flush/stats/ping      */
    float strength;
    float confidence;
    const void *content;     /* content_len bytes, NULL when 0           */
    uint32_t content_len;
    const float *embedding;  /* dim floats (4-byte aligned), NULL when 0 */
    uint32_t dim;
    const uint8_t *target;   /* associations: 16 bytes (id is the source) */
    uint32_t type;           /* associations                             */
} wire_op;

typedef struct wire_request {
    wire_request_header header; /* copied out                            */
    const uint8_t *ops;         /* first op, in the message buffer       */
    size_t ops_len;             /* bytes of ops                          */
    uint32_t data_ops;          /* learn/forget ops (they get seqs)      */
    bool has_flush;
    bool is_control;            /* stats or ping                         */
} wire_request;

/*
 * Validate a whole request message and describe it (P-REQ-*, P-OP-*), in
 * the order docs/protocol.md §4.2 gives.  On success returns 0 and fills
 * *out (which borrows buf).  When the message breaks a rule, returns that
 * rule's status (SUTRA_EPROTO, SUTRA_EVERSION, SUTRA_ETOOBIG, SUTRA_EDIM
 * or SUTRA_EINVAL), sets *failed_op (WIRE_NO_FAILED_OP for header errors)
 * and *why to a static message that starts with the rule's id; *out is
 * untouched.
 *
 * `buf` must be 4-byte aligned: embedding views are float pointers into
 * it, and NNG 1.5 bodies are only 4 mod 8.  A message of at least 32 bytes
 * at another address is the caller's error, not the sender's: it is
 * refused before any byte is checked, with SUTRA_EINVAL, WIRE_NO_FAILED_OP
 * and a *why naming no rule.  Copy such a message to an aligned buffer
 * first (the server does); never send this result to the client.
 */
int wire_request_decode(const void *buf, size_t len, const wire_limits *lim,
                        wire_request *out, uint32_t *failed_op,
                        const char **why);

/* Iterate the ops of a decoded request: *cursor starts at 0.  Returns true
 * and fills *op while ops remain.  Only valid on a request that
 * wire_request_decode accepted. */
bool wire_request_next(const wire_request *req, size_t *cursor, wire_op *op);

/* Whether all `n` float32 values at `p` (any 4-byte alignment) are finite:
 * no NaN, no infinity (P-OP-4).  Branch-free over the whole array, so a
 * 384-float embedding costs a few dozen vector instructions. */
bool wire_all_finite_f32(const void *p, uint32_t n);

/* ---- encoding --------------------------------------------------------- */

/* Bytes of a learn_concept op with these payload sizes. */
size_t wire_learn_concept_size(uint32_t content_len, uint32_t dim);

/* Encode ops at dst (8-aligned, sized by the *_size functions).  Return the
 * bytes written. */
size_t wire_encode_learn_concept(void *dst, uint16_t flags,
                                 const uint8_t id[16], float strength,
                                 float confidence, const void *content,
                                 uint32_t content_len, const float *embedding,
                                 uint32_t dim);
size_t wire_encode_forget_concept(void *dst, const uint8_t id[16]);
/* opcode WIRE_OP_LEARN_ASSOCIATION or WIRE_OP_FORGET_ASSOCIATION; writes
 * sizeof(wire_association) bytes. */
size_t wire_encode_association(void *dst, uint16_t opcode,
                               const uint8_t source[16],
                               const uint8_t target[16], uint32_t type,
                               float confidence);
size_t wire_encode_simple_op(void *dst, uint16_t opcode); /* flush/stats/ping */

void wire_request_header_init(wire_request_header *h, uint16_t flags,
                              uint64_t client_id, uint64_t request_no,
                              uint32_t op_count);

/* True for 0 and the codes a reply may carry (protocol.md §6, P-REP-3).
 * Other SUTRA_E* codes are the client's own (ETIMEDOUT, EFORKED...) or the
 * reader's, never a coordinator's answer. */
bool wire_status_valid(int32_t status);

/* Validate a reply message (P-REP-*).  Returns 0 and fills *hdr and *body
 * (borrowed from buf) or SUTRA_EPROTO / SUTRA_EVERSION. */
int wire_reply_decode(const void *buf, size_t len, wire_reply_header *hdr,
                      const void **body);

/* Fill a reply header. */
void wire_reply_header_init(wire_reply_header *h, uint64_t request_no,
                            int32_t status, uint32_t failed_op,
                            uint64_t first_seq, uint64_t generation,
                            uint32_t op_count, uint32_t body_len);

#endif
