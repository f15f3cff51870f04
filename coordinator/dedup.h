/*
 * coordinator/dedup.h — the duplicate-request table (P-IDEM-*).
 *
 * NNG's REQ socket resends a request after a reconnect or a resend timeout,
 * and a client may resend after a coordinator restart; every request carries
 * (client_id, request_no) so the coordinator can answer a resend with the
 * original reply instead of applying it twice.  This table remembers, per
 * client, the replies of its most recent requests: a direct-mapped
 * window indexed by request_no that grows from 8 slots up to `window` slots,
 * so short-lived clients cost little and a client's last `window`
 * consecutive request numbers are always kept.  At most `max_clients` are
 * kept; the least recently used client is evicted whole.
 *
 * An entry is *pending* from the moment its request is applied into the
 * open group until that group commits (coord_dedup_commit fills in the
 * generation) or fails (coord_dedup_abort).  A request the committer
 * refused, or whose group failed, is remembered with its status: it changed
 * nothing, but a copy of it that NNG resent while the first was queued
 * could otherwise be applied after the client was told it failed
 * (P-IDEM-2).  Requests refused before the committer (malformed, not
 * allowed) are not added: the same bytes are refused the same way.
 *
 * Concurrency: committer thread only (no internal locking).
 */
#ifndef SUTRA_COORD_DEDUP_H
#define SUTRA_COORD_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "layout/format.h"
#include "layout/wire.h"

#define COORD_DEDUP_WINDOW WIRE_IDEM_WINDOW /* clients stay inside it */
#define COORD_DEDUP_MAX_CLIENTS 65536u

/* The message of a resend answered with its original failure: the table
 * keeps the status and failed op, not the first reply's message. */
#define COORD_DEDUP_FAILED_MESSAGE \
    "this request failed when first received; its first reply said why " \
    "(P-IDEM-2)"

typedef struct coord_dedup coord_dedup;

/** The original reply of a request: applied (status 0) or failed. */
typedef struct coord_dedup_reply {
    int32_t status;       /* 0, or the failure it was answered with       */
    uint32_t failed_op;   /* with a failure; else WIRE_NO_FAILED_OP       */
    uint64_t first_seq;   /* applied: its seqs and generation             */
    uint64_t generation;  /* 0 while pending                              */
    uint32_t op_count;
    bool pending;         /* applied in the open group, not yet committed */
} coord_dedup_reply;

/**
 * @param window       request numbers kept per client, a power of two in
 *                     1..2^20.
 * @param max_clients  clients kept, >= 1.
 * @return 0 and *out (free with coord_dedup_destroy); SUTRA_EINVAL; ENOMEM.
 */
int coord_dedup_create(uint32_t window, uint32_t max_clients,
                       coord_dedup **out);

/** Free the table.  NULL is a no-op. */
void coord_dedup_destroy(coord_dedup *d);

/**
 * Find the reply of (client_id, request_no).  A hit marks the client most
 * recently used.  @return true and *out, or false (out untouched).
 */
bool coord_dedup_lookup(coord_dedup *d, uint64_t client_id,
                        uint64_t request_no, coord_dedup_reply *out);

/**
 * Whether request_no is recent enough for the table to tell whether it was
 * applied: a client numbers its requests consecutively and sends n only
 * once n − 512 was answered (P-IDEM-1, P-IDEM-2), so a number `window` or
 * more below the newest one stored for the client is a client that broke
 * those rules.  Its entry may have been overwritten by a newer request,
 * and applying it could apply a request twice; the caller refuses it
 * (SUTRA_EPROTO).  True for a client the table does not hold.  Call after
 * coord_dedup_lookup() missed.
 */
bool coord_dedup_in_window(const coord_dedup *d, uint64_t client_id,
                           uint64_t request_no);

/**
 * coord_dedup_lookup() without marking anything: it only reads the table.
 * Thread rules: the exception to "committer thread only" — once the
 * committer has stopped, the table no longer changes, and any number of
 * threads may peek at once (the server answers resends that arrive while
 * the coordinator stops this way).
 */
bool coord_dedup_peek(const coord_dedup *d, uint64_t client_id,
                      uint64_t request_no, coord_dedup_reply *out);

/**
 * Remember a request just applied into the open group, as pending.
 * May evict the least recently used client, or the oldest request of this
 * client in the same slot once the window is full.
 * @return 0 or ENOMEM (then the request is simply not remembered).
 */
int coord_dedup_add_pending(coord_dedup *d, uint64_t client_id,
                            uint64_t request_no, uint64_t first_seq,
                            uint32_t op_count);

/**
 * Remember a request that was answered with a failure without being
 * applied (nothing of it reached the open group), so that a resend gets
 * the same failure.  Evicts as coord_dedup_add_pending() does.
 * @param status     the failure, nonzero and within int16_t (every SUTRA_E*
 *                   code and errno value is).
 * @param failed_op  the index of the op that failed, or WIRE_NO_FAILED_OP.
 * @return 0; SUTRA_EINVAL for request_no 0 or a status out of range;
 *         ENOMEM (then the request is simply not remembered).
 */
int coord_dedup_add_failed(coord_dedup *d, uint64_t client_id,
                           uint64_t request_no, int32_t status,
                           uint32_t failed_op);

/** The open group committed as `generation`: every pending entry becomes a
 * committed reply with that generation. */
void coord_dedup_commit(coord_dedup *d, uint64_t generation);

/**
 * The open group failed with `status`: every pending entry becomes a failed
 * reply with that status (failed_op WIRE_NO_FAILED_OP).  With status 0 (or
 * one out of int16_t range) the entries are forgotten instead.
 */
void coord_dedup_abort(coord_dedup *d, int32_t status);

/**
 * Rebuild visitor for coord_store_recent_commits() (its coord_commit_visit
 * signature; `ctx` is the coord_dedup).  Entries must arrive newest first:
 * an entry never displaces a newer one, and clients first seen later are
 * treated as less recently used.  Entries with a nonzero status are skipped.
 */
void coord_dedup_rebuild_visit(void *ctx, const layout_commit_entry *entry,
                               uint64_t generation);

/** Clients currently kept. */
uint32_t coord_dedup_client_count(const coord_dedup *d);

/** Requests currently remembered, over all clients (O(clients)). */
uint64_t coord_dedup_entry_count(const coord_dedup *d);

#endif
