/*
 * coordinator/store.h — the write side of storage.dat.
 *
 * The store owns the file for the coordinator: it creates or opens it,
 * recovers it after an unclean stop, applies requests into an in-memory
 * group, and commits groups (records -> sync -> in-place index words -> meta
 * slot -> sync -> publish generation -> futex wake).  It knows nothing of
 * NNG, queues or threads: the committer thread calls it, and it is the only
 * code that writes storage.dat (every write, extend and sync goes through
 * coordinator/io.h so tests can inject faults).
 *
 * Concurrency: every function here is "committer thread only" — one thread
 * at a time, no internal locking — except coord_store_stats(), which may be
 * called from any thread and reads only atomically-updated counters.
 * Reader processes see the file concurrently; the store's publication order
 * is what keeps them consistent (docs/format.md F-META-2, F-LOG-7).
 */
#ifndef SUTRA_COORD_STORE_H
#define SUTRA_COORD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout/format.h"
#include "layout/wire.h"

typedef struct coord_store coord_store;
typedef struct coord_io coord_io;

typedef struct coord_store_options {
    uint32_t vector_dim;   /* for a new file; an existing file keeps its own
                              (opening with a different nonzero dim fails
                              with SUTRA_EDIM)                            */
    uint64_t map_reserve;  /* for a new file; 0 = LAYOUT_DEFAULT_MAP_RESERVE */
    coord_io *io;          /* NULL = the real POSIX I/O layer; borrowed    */
} coord_store_options;

/* Why the last store call failed, for logs and error replies. */
typedef struct coord_error {
    int code;            /* SUTRA_E* or errno                             */
    char message[256];
} coord_error;

/**
 * Open `path` (DIR/storage.dat), creating it (mode 0640) if absent.  After an
 * unclean stop (clean_shutdown == 0), recovers before returning: picks the
 * newest valid meta slot, logically discards everything past its
 * committed_end (never truncating: live readers may map it), and repairs
 * in-place words that point past it (hash slots naming nodes >= node_count,
 * node entries >= node_count, heads newer than last_seq walked back to the
 * newest committed version, adjacency heads, counts and superseded words
 * past the recovered generation).  Records past the durable end (F-HDR-7)
 * are checked by checksum and their index words stored again (F-REC-5); a
 * log that fails (records lost in a power cut, a short copy) is rebuilt
 * from its longest valid prefix, or refused when that would discard durable
 * data (F-REC-6).  Then clears clean_shutdown and syncs.
 * The caller holds the directory lock.
 * @return 0; SUTRA_ECORRUPT (no valid meta, bad header: err says where);
 *         SUTRA_EVERSION; SUTRA_EDIM; errno.
 */
int coord_store_open(const char *path, const coord_store_options *opts,
                     coord_store **out, coord_error *err);

/**
 * Mark the file cleanly closed (clean_shutdown = 1, synced) if `clean` and
 * the store is healthy, unmap and free, whatever the result.  NULL is a
 * no-op.  @return 0; with `clean`: SUTRA_EREADONLY (the store was
 * read-only) or the errno of the sync or store that failed, in which case
 * the file is not marked clean (the next open runs recovery).
 */
int coord_store_close(coord_store *s, bool clean);

/** The outcome of applying one request into the open group. */
typedef struct coord_apply_result {
    uint64_t first_seq;   /* seq of the request's first data op, 0 if none */
    uint32_t op_count;    /* data ops applied                               */
    uint32_t failed_op;   /* on error: index of the failing op              */
    bool group_dropped;   /* on error: the open group was discarded too     */
} coord_apply_result;

/**
 * Apply every op of a decoded request to the open group, atomically: either
 * all its ops are staged, or none is (validation runs over the whole
 * request before anything is staged; so is the room it needs in the file,
 * adjacency blocks included, F-ADJ-4).  After a failure the group is
 * exactly as before, except in one case: a forget_concept whose edges'
 * tombstones (F-ADJ-5), known only once staged, would take the group past
 * map_reserve fails with SUTRA_EFULL and res->group_dropped set, and the
 * whole open group has been discarded, as by coord_store_abort().  The caller then applies the
 * group's earlier requests again, in their order: they fit as before and
 * get the same seqs.
 * Nothing becomes visible to readers until coord_store_commit().
 * client_id/request_no are recorded for the commit record's entry list.
 * Ops: learn_concept (new node or new version; content/embedding equal to
 * the current version's, or KEEP_* flags, are shared, not copied), forget_
 * concept (tombstone; SUTRA_ENOTFOUND if not live; its associations end
 * with it), learn_association / forget_association (both endpoints live at
 * the end of the request, the forgotten key live: SUTRA_ENOTFOUND
 * otherwise), flush (noted: the group will be synced).  Control ops (stats,
 * ping) must not be passed here.
 * @return 0; SUTRA_ENOTFOUND; SUTRA_EUNSUPPORTED; SUTRA_EFULL; SUTRA_EREADONLY
 *         (store failed earlier); SUTRA_EDIM, SUTRA_EINVAL, SUTRA_ETOOBIG (an
 *         op the decoder should already have refused); SUTRA_ECORRUPT (a
 *         committed record failed validation); ENOMEM.  err filled on
 *         failure; *res is written on failure too (failed_op names the op,
 *         WIRE_NO_FAILED_OP when no single op is at fault).
 */
int coord_store_apply(coord_store *s, const wire_request *req,
                      coord_apply_result *res, coord_error *err);

/** True when the open group has staged requests. */
bool coord_store_group_pending(const coord_store *s);

/** True when the open group contains a flush op. */
bool coord_store_group_wants_sync(const coord_store *s);

/** Bytes staged in the open group (for group size limits). */
uint64_t coord_store_group_bytes(const coord_store *s);

/** What a commit published. */
typedef struct coord_commit_info {
    uint64_t generation;
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t committed_end;
    bool durable;         /* the group's records are on disk: an
                             acknowledgement may promise it survives      */
    bool synced;          /* and so is every word published (a full sync) */
} coord_commit_info;

/**
 * Commit the open group as one generation: extend the file if needed, write
 * the records and the commit record, store the in-place words and meta slot
 * gen % 2, publish the generation (release store) and futex-wake waiters.
 * With `sync` (or a flush in the group) the group is durable before it is
 * published: when the file has a checkpoint on disk (its durable_commit
 * names a commit record), the log below the group is already durable and
 * the group is one contiguous write, that write alone is synced (F-COM-6: out->durable, not
 * out->synced; the words wait for coord_store_sync()); otherwise one
 * fdatasync covers the whole file (F-COM-4: both flags).
 * On failure nothing is published; if the failure came after in-place words
 * were stored (a failed meta write) or was a failed sync, the store turns
 * read-only (every later apply/commit fails with SUTRA_EREADONLY) until
 * coord_store_reverify() succeeds or it is reopened.
 * An empty group is a no-op that returns the current generation.
 * @return 0; SUTRA_EFULL; ENOSPC; EIO (or another errno from the io
 *         layer); ENOMEM; SUTRA_EREADONLY.
 */
int coord_store_commit(coord_store *s, bool sync, coord_commit_info *out,
                       coord_error *err);

/** Drop the open group (nothing was written to the file). */
void coord_store_abort(coord_store *s);

/** fdatasync everything published so far (for interval policy and flush of
 * an empty group).  @return 0 or errno; a failure turns the store read-only
 * (see coord_store_reverify()). */
int coord_store_sync(coord_store *s, coord_error *err);

/*
 * The same sync in three steps, so that the fdatasync can run on another
 * thread while the writer goes on committing (the interval policy's syncs
 * and the commit policy's checkpoints):
 *
 *   coord_store_sync_begin()  writer thread, no group open: records what
 *                             is published now, which is what the sync
 *                             will be known to cover;
 *   coord_sync_run()          any thread, once: the fdatasync (or, for
 *                             coord_store_sync_begin_log(), the ranged
 *                             sync of the log); it may overlap commits,
 *                             and then also writes some of their pages,
 *                             which nothing relies on;
 *   coord_store_sync_end()    writer thread, no group open: applies the
 *                             result, as coord_store_sync() does, but
 *                             for the published state begin recorded:
 *                             `durable_end` / `durable_commit` name that
 *                             generation (F-HDR-7, F-HDR-8), and the store
 *                             counts as synced only if nothing was
 *                             published since.
 *
 * Only one sync may be between begin and end at a time, and the writer
 * must not make a whole-file sync meanwhile (coord_store_sync,
 * coord_store_reverify, a coord_store_commit with `sync` that is not
 * ranged: the gate below): the durable words must follow the syncs in
 * order.  The ranged syncs of coord_store_commit (F-COM-6) may overlap it.
 * That is safe because the ticket syncs through a second open file
 * description of the file: Linux reports a writeback error once to each
 * open file description (errseq), so a failure that the sync beside takes
 * is still reported to the writer's next ranged sync, and the other way
 * round; through one shared description, whichever call came first would
 * take it and the other would acknowledge a write whose pages were lost.
 * The same error so reaches both descriptions, and once the store has
 * turned read-only over it, coord_store_reverify() takes it from both
 * before it rewrites the file, so that it is not reported again after.
 */
typedef struct coord_sync_ticket {
    coord_io *io;
    int fd;
    uint64_t committed_end;  /* the published state the sync covers */
    uint64_t last_commit;
    const void *log_addr;    /* a sync of the log only: log_from mapped */
    uint64_t log_from;       /* ... from here to committed_end          */
} coord_sync_ticket;

/** Start a sync of what is published now.  Never fails. */
void coord_store_sync_begin(coord_store *s, coord_sync_ticket *t);

/**
 * Start a sync of the log only: the bytes from the end of the log known to
 * be durable to the published end, by range (coord_io's sync_range),
 * without the index words and meta slots the commits dirtied.  Recovery
 * rolls forward over such a log from the last checkpoint, as it does over
 * groups synced by their own write (docs/format.md F-COM-6, F-REC-7,
 * F-REC-9); the words follow at the next whole-file sync.  Only in a file
 * with a durable checkpoint: otherwise (or with nothing to sync, or no
 * second mapping) it starts a whole-file sync as coord_store_sync_begin()
 * does.  @return true for a sync of the log.  Writer thread.
 */
bool coord_store_sync_begin_log(coord_store *s, coord_sync_ticket *t);

/** Whether the log of everything published is durable (the index words
 * need not be).  Writer thread. */
bool coord_store_log_durable(const coord_store *s);

/**
 * Set the function coord_store_commit() calls before a whole-file sync of
 * a group (not before a ranged one): a caller with a sync begun beside
 * ends it there (waits for it and applies its result).  A non-zero return
 * fails the commit before anything is written, with that error and `err`
 * as the gate filled it.  NULL (the default): no gate.  Writer thread.
 */
void coord_store_set_sync_gate(coord_store *s,
                               int (*gate)(void *arg, coord_error *err),
                               void *arg);

/** The fdatasync of a begun sync; safe on any thread (it touches only the
 * file descriptor).  @return 0 or errno. */
int coord_sync_run(const coord_sync_ticket *t);

/**
 * Apply the result `rc` of coord_sync_run() for ticket `t`.  On success the
 * log below t's generation's end counts as durable and, unless t synced
 * only the log, the durable words name t's generation.
 * On failure (rc != 0) the store turns read-only, as coord_store_sync()'s
 * failure does.  A store that turned read-only meanwhile only counts the
 * sync.  @return rc; with rc != 0, err says why.
 */
int coord_store_sync_end(coord_store *s, const coord_sync_ticket *t, int rc,
                         coord_error *err);

/**
 * Make a read-only store writable again after a failed sync — only once what
 * it has published is proven on disk.  A failed fdatasync may have dropped
 * the dirty pages it covered (Linux marks them clean), so a later sync that
 * succeeds proves nothing about them.  This: invalidates a meta slot that
 * names a generation past the published one (the failed commit's), rewrites
 * every byte up to the committed end from the mapping (dirtying the pages
 * again), repairs the in-place words as recovery does (F-REC-2), checks
 * every record past the durable end by checksum (F-REC-5), and syncs.  Only
 * when all of that succeeds does the store accept writes again.  Costs a
 * rewrite of the whole committed file: it runs on an error path only.
 * The open group is dropped.  A store that is not read-only: no-op.
 * @return 0 (writable again); SUTRA_ECORRUPT (the published state does not
 *         verify: restart, so that recovery rebuilds it); errno of the
 *         rewrite or sync (still read-only; try again later).
 */
int coord_store_reverify(coord_store *s, coord_error *err);

/** Whether everything published has been synced. */
bool coord_store_synced(const coord_store *s);

/** Counters for stats replies.  Any thread. */
typedef struct coord_store_stats {
    uint64_t generation, last_seq, committed_end, file_size;
    uint64_t node_count, concept_count, version_count, tombstone_count;
    uint64_t syncs;
    uint64_t assoc_count;  /* live associations (F-ASSOC-3)               */
    uint32_t vector_dim;
    bool read_only;
    bool rebuilt_at_open;  /* recovery had to rebuild the index from the
                              whole log (F-REC-6), not just the tail      */
    bool checkpoint_at_open; /* recovery started from the last checkpoint's
                              commit record: no meta slot was usable
                              (F-REC-9)                                   */
} coord_store_stats;

void coord_store_stats_get(const coord_store *s, coord_store_stats *out);

/** The file's vector dimension. */
uint32_t coord_store_dim(const coord_store *s);

/**
 * Visit the entries of the most recent commit records, newest first, until
 * `max_entries` were visited or the log's start is reached — used at start-up
 * to rebuild the duplicate-request table so a request resent across a
 * coordinator restart is still applied once (P-IDEM-3).
 * @return 0 or SUTRA_ECORRUPT.
 */
typedef void (*coord_commit_visit)(void *ctx, const layout_commit_entry *entry,
                                   uint64_t generation);
int coord_store_recent_commits(const coord_store *s, uint64_t max_entries,
                               coord_commit_visit visit, void *ctx);

#endif
