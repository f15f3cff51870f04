/*
 * coordinator/committer.h — the one thread that writes storage.dat.
 *
 * Requests decoded by the NNG callbacks (coordinator/server.c) are handed
 * over here through a liburcu wait-free queue; the committer thread drains
 * everything queued into one group (bounded in bytes and ops), checks each
 * request against the duplicate table, applies it to the store, commits the
 * group once, makes it durable as the sync policy and the requests ask, and
 * then answers every request of the group (group commit: one commit and at
 * most one fdatasync for any number of concurrent writers).
 *
 * The committer knows nothing of NNG: it answers through each request's
 * reply callback, so it can be driven by tests with plain structs.
 */
#ifndef SUTRA_COORD_COMMITTER_H
#define SUTRA_COORD_COMMITTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu/wfcqueue.h>

#include "coordinator/dedup.h"
#include "coordinator/options.h"
#include "coordinator/store.h"
#include "layout/wire.h"

/* A group closes at whichever bound it reaches first (or when the queue is
 * empty), so one huge burst cannot hold every reply back indefinitely. */
#define COORD_GROUP_MAX_BYTES (64ull << 20)
#define COORD_GROUP_MAX_OPS 100000u

/* Under --sync commit, how often a full fdatasync makes the index words
 * durable (F-COM-6): it bounds what recovery replays after a crash (the
 * log written since) and costs one sync of the dirty index pages. */
#define COORD_CHECKPOINT_MS 1000u

/* Under --sync none, how often the same checkpoint runs beside the writes.
 * Nothing is acknowledged on it: it bounds what a restart after a kill
 * replays (the log written since the last sync, F-REC-5) and what a power
 * cut loses, and it surfaces writeback errors, which would otherwise go
 * unseen until a flush.  The kernel writes dirty pages back within ~30 s
 * anyway; this makes it a few seconds sooner and durable. */
#define COORD_NONE_CHECKPOINT_MS 10000u

/* Server-wide counters for stats replies.  Written by any thread with
 * relaxed atomic adds, read by any thread: each value is exact, the set is
 * not a snapshot. */
typedef struct coord_counters {
    _Atomic uint64_t requests;        /* messages received                  */
    _Atomic uint64_t requests_failed; /* answered with an error             */
    _Atomic uint64_t ops_applied;     /* data ops in committed groups       */
    _Atomic uint64_t commits;         /* generations published              */
    _Atomic uint64_t duplicates;      /* resends answered from the table    */
    _Atomic uint64_t queue_depth;     /* handed over, not yet dequeued      */
    _Atomic uint64_t events_sent;
    _Atomic uint64_t events_failed;   /* PUB send refused (hint lost)       */
    _Atomic uint64_t stalled_closed;  /* connections closed: replies not
                                         taken (server.c, REPLY_SEND_MS)  */
    _Atomic uint64_t groups_restaged; /* open groups staged again after a
                                         forget_concept did not fit
                                         (F-ADJ-4, F-ADJ-5)               */
    _Atomic uint64_t connections;     /* client connections open now     */
    _Atomic uint64_t connections_refused; /* over --max-connections      */
    _Atomic uint64_t sync_waits;      /* the committer waited for the
                                         sync in flight: the next interval
                                         sync was due, or a whole-file
                                         sync (flush, a group that cannot
                                         sync by range, re-verification,
                                         stop) had to follow it           */
} coord_counters;

/** What the committer answers; `message` is borrowed for the call. */
typedef struct coord_reply {
    int32_t status;       /* 0 or a negative SUTRA_E* / positive errno     */
    uint32_t failed_op;   /* WIRE_NO_FAILED_OP unless an op failed         */
    uint64_t first_seq;
    uint64_t generation;
    uint32_t op_count;
    const char *message;  /* "" on success                                 */
} coord_reply;

typedef struct coord_request coord_request;

/** Called exactly once per submitted request, on the committer thread.
 * After it returns the committer never touches the request again, so the
 * callee may reuse it at once. */
typedef void (*coord_reply_fn)(coord_request *req, const coord_reply *reply);

/*
 * One request in flight.  The submitter fills `wire` (a decoded, non-control
 * request whose buffer stays valid until the reply) and `reply`; the rest
 * belongs to the committer from submit until the reply callback.
 */
struct coord_request {
    struct cds_wfcq_node node;
    wire_request wire;
    coord_reply_fn reply;
    /* committer private */
    coord_request *group_next;
    uint64_t first_seq;
    uint32_t op_count;
    bool staged;         /* applied to the group (not a resend of one)     */
};

typedef struct coord_committer coord_committer;

typedef struct coord_committer_config {
    enum coord_sync_policy sync_policy;
    uint64_t sync_interval_ms;         /* interval policy                 */
    uint64_t group_max_bytes;          /* 0 = COORD_GROUP_MAX_BYTES       */
    uint32_t group_max_ops;            /* 0 = COORD_GROUP_MAX_OPS         */
    uint64_t reverify_ms;              /* a read-only store is re-verified
                                          (coord_store_reverify) at most
                                          this often; 0 = 1000            */
    uint64_t checkpoint_ms;            /* full sync at most this long
                                          after a commit; 0 =
                                          COORD_CHECKPOINT_MS, or
                                          COORD_NONE_CHECKPOINT_MS under
                                          the none policy                 */
    /* Called on the committer thread after each published generation
     * (events); may be NULL.  Must not block. */
    void (*published)(void *arg, const coord_commit_info *info);
    void *published_arg;
} coord_committer_config;

/**
 * Start the committer thread.  store, dedup and counters are borrowed and
 * must outlive coord_committer_stop(); from now on only the committer thread
 * may call the store (except coord_store_stats_get) and the dedup table.
 * The caller should have blocked the signals it handles (threads inherit the
 * mask).
 * @return 0 and *out; ENOMEM; an errno from pthread_create.
 */
int coord_committer_start(coord_store *store, coord_dedup *dedup,
                          coord_counters *counters,
                          const coord_committer_config *cfg,
                          coord_committer **out);

/**
 * Hand a request to the committer.  Any thread, wait-free (one atomic
 * exchange; a futex wake only when the committer sleeps).  Ownership of
 * `req` passes to the committer until its reply callback runs.
 * Must not be called once coord_committer_stop() has begun.
 */
void coord_committer_submit(coord_committer *c, coord_request *req);

/**
 * Answer everything already submitted (committing it), sync whatever is
 * not yet durable, join the thread and free.  Call from one thread, after
 * the last coord_committer_submit() has returned.  NULL is a no-op.
 * @return 0, or the error of the final sync (the store is then read-only).
 */
int coord_committer_stop(coord_committer *c);

#endif
