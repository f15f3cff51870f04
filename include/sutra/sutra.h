/*
 * sutra.h — the public API of libsutra.
 *
 * libsutra is what API workers link: it maps a Sutra data directory's
 * storage.dat read-only and answers lookups with zero copies, no locks and no
 * system calls (the reader side), and it submits writes to the single
 * coordinator process over NNG (the client side).
 *
 * Conventions (all functions):
 *   - Functions that can fail return int: 0 on success, a negative SUTRA_E*
 *     code, or a positive errno value passed through from the OS.
 *     sutra_strerror() describes both.
 *   - A NULL where a function needs a pointer, or a handle, snapshot or
 *     iterator it did not fill, is SUTRA_EINVAL, whether or not the
 *     function's @return list names it.
 *   - Out-parameters are written only on success.
 *   - Handles are opaque; sutra_close(NULL) and the other close and free
 *     functions accept NULL and do nothing.
 *   - No global state: two handles on the same directory are independent.
 *   - Thread rules, where a function says none: functions on a reader
 *     handle or a snapshot may be called from any thread at once (they are
 *     lock-free and only read); a client handle may be used from several
 *     threads at once; an object the caller owns (snapshot, batch,
 *     iterator, traversal, pending write) is used by one thread at a time.
 *
 * Caveats:
 *   - Zero-copy views (content, embedding) point into the read-only mapping.
 *     They stay valid until sutra_close() of the handle they came from; they
 *     are never modified (Sutra never rewrites a committed byte), so a view
 *     taken at any snapshot stays correct for as long as it is valid.
 *     Writing through them is a segmentation fault.
 *   - NNG, which the client side uses, cannot be used in a child forked after
 *     its parent used it.  Reads never touch NNG, so pre-forking servers may
 *     open readers before fork().  Client handles must be created after the
 *     fork; a client used across fork() fails with SUTRA_EFORKED.
 *   - Each request is copied into a buffer NNG allocates and frees after
 *     the reply.  A bulk loader that keeps several large batches in flight
 *     (sutra_batch_submit) frees them together, and glibc's default
 *     allocator then returns that memory to the kernel and faults it in
 *     again for the next batches: on the benchmark machine that halved the
 *     throughput of two 1.8 MB batches in flight.  Such a process should
 *     raise the allocator's thresholds, e.g. mallopt(M_MMAP_THRESHOLD,
 *     32 << 20) and mallopt(M_TRIM_THRESHOLD, 64 << 20), or the same through
 *     MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_; the library leaves the
 *     process's allocator alone.  The coordinator sets these for itself.
 */
#ifndef SUTRA_SUTRA_H
#define SUTRA_SUTRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SUTRA_VERSION_MAJOR 0
#define SUTRA_VERSION_MINOR 1
#define SUTRA_VERSION_PATCH 0

/* ---- errors ----------------------------------------------------------- */

enum sutra_error {
    SUTRA_OK = 0,
    SUTRA_ECORRUPT = -1,     /* the file or a record fails validation      */
    SUTRA_EVERSION = -2,     /* unknown format major / protocol version    */
    SUTRA_ENOTFOUND = -3,    /* no such id (at this snapshot)              */
    SUTRA_EPROTO = -4,       /* malformed message                          */
    SUTRA_ETOOBIG = -5,      /* message, content or batch over a limit     */
    SUTRA_EBUSY = -6,        /* the directory is locked by a coordinator   */
    SUTRA_ECLOSED = -7,      /* the coordinator is stopping, or the client
                                was closed; no coordinator listening is
                                SUTRA_ETIMEDOUT (the dial retries)         */
    SUTRA_EFORKED = -8,      /* a client handle used after fork()          */
    SUTRA_EINVAL = -9,       /* invalid argument (NaN, bad range, NULL…)   */
    SUTRA_EDIM = -10,        /* embedding dimension differs from the file's */
    SUTRA_ETIMEDOUT = -11,   /* a deadline passed                          */
    SUTRA_ESTALE = -12,      /* generation not (or no longer) available    */
    SUTRA_EFULL = -13,       /* the file reached its maximum size          */
    SUTRA_EUNSUPPORTED = -14,/* operation not supported by this version    */
    SUTRA_ESUPERSEDED = -15, /* the file was replaced; reopen              */
    SUTRA_EREADONLY = -16,   /* the coordinator could not write (I/O
                                error); after a failed sync it refuses
                                writes until it re-verified the file       */
    SUTRA_ERETRY = -17,      /* the view changed underneath; retry         */
    SUTRA_ENOPATH = -18,     /* no path within the depth limit             */
    SUTRA_EPERM = -19,       /* this process may not write (allow-list)    */
    SUTRA_EMAPFULL = -20,    /* the file outgrew this handle's mapping     */
};

/** The lowest (most negative) SUTRA_E* code of this version. */
#define SUTRA_ERROR_MIN SUTRA_EMAPFULL

/** Describe an error code (negative SUTRA_E* or positive errno).  Returns a
 * static string; never NULL.  Thread-safe. */
const char *sutra_strerror(int err);

/* ---- ids -------------------------------------------------------------- */

/** A concept id: 16 opaque bytes.  Text form is 32 lowercase hex digits. */
typedef struct sutra_id {
    uint8_t bytes[16];
} sutra_id;

#define SUTRA_ID_HEX_LEN 32

/**
 * Parse 1..32 hex digits (either case) into an id; shorter input is
 * zero-padded on the left, so "00ab" and "ab" are the same id.
 * @return 0, or SUTRA_EINVAL for NULL, empty, too long or non-hex input.
 */
int sutra_id_parse(const char *hex, sutra_id *out);

/** Write the 32-digit lowercase hex form and a NUL into out[33]. */
void sutra_id_format(const sutra_id *id, char out[SUTRA_ID_HEX_LEN + 1]);

/** Derive an id from a name: XXH3-128 of the bytes, big-endian (high 64
 * bits first), so equal names give equal ids in every process. */
void sutra_id_from_name(const void *name, size_t len, sutra_id *out);

/* ---- reader ----------------------------------------------------------- */

typedef struct sutra_db sutra_db;

typedef struct sutra_open_options {
    /** Bytes of address space to map; 0 = the file's own reserve (its
     * header's map_reserve, 1 TiB by default), or as much of it as the
     * system allows (at least the file's current size) when an address-space
     * limit refuses that much.  Lookups never go past the mapping; once the
     * file outgrows it, sutra_snapshot() fails with SUTRA_EMAPFULL and the
     * directory must be reopened. */
    uint64_t map_size;
} sutra_open_options;

/**
 * Open DIR/storage.dat read-only.  O(1): maps the file, validates the header
 * and one meta slot, reads nothing else, so attaching to a multi-GB file is
 * instant.  Never writes to the file and takes no lock; any number of
 * processes may open the same directory while a coordinator writes it.
 *
 * @param dir   data directory (borrowed for the call).
 * @param opts  NULL for defaults.
 * @param out   receives the handle; free with sutra_close().
 * @return 0; ENOENT if there is no storage.dat; SUTRA_ECORRUPT (bad magic,
 *         checksum, truncated file, no valid meta slot, a committed end
 *         past the file's reserve); SUTRA_EVERSION (format major this
 *         library does not know); SUTRA_ESUPERSEDED (the file was replaced
 *         while it was opened: open again); SUTRA_EMAPFULL when the file is
 *         already larger than a mapping smaller than its reserve
 *         (opts->map_size, or an address-space limit); SUTRA_EINVAL
 *         (opts->map_size below the file's fixed pages); other errno
 *         values.
 * Thread rules: the handle may be used from any number of threads at once.
 */
int sutra_open(const char *dir, const sutra_open_options *opts, sutra_db **out);

/** Unmap and free.  Views from this handle become invalid.  Not concurrent
 * with any other use of the handle.  NULL is a no-op. */
void sutra_close(sutra_db *db);

/**
 * A consistent view of one generation.  A plain value owned by the caller:
 * no allocation, nothing to free, cheap to copy; valid for the life of the
 * handle.  Fields other than the documented ones are private.
 */
struct sutra_snapshot {
    const sutra_db *db;      /* the handle it belongs to                  */
    uint64_t generation;     /* the generation it shows                   */
    uint64_t last_seq;       /* highest seq visible                       */
    uint64_t commit_ns;      /* when that generation was committed        */
    uint64_t concept_count;  /* live concepts at that generation          */
    uint64_t private_[8];    /* library use only                          */
};

/**
 * Take a snapshot of the newest published generation (seqlock over the two
 * meta slots; lock-free, no system call unless the file has grown past the
 * size this handle last saw).
 * @return 0; SUTRA_ECORRUPT if no valid meta can be read; SUTRA_ESUPERSEDED
 *         if the file was replaced by compaction, SUTRA_EMAPFULL if it grew
 *         past this handle's mapping (for both: reopen the directory).
 * Thread rules: any thread, any process, concurrently with the writer.
 */
int sutra_snapshot(sutra_db *db, struct sutra_snapshot *out);

/**
 * Take a snapshot as of an older generation (for as-of reads), by walking
 * back the chain of commit records from the newest one: O(generations back).
 * @return 0; SUTRA_ESTALE if `generation` is newer than the published one
 *         or not present in the file; SUTRA_ECORRUPT; SUTRA_ESUPERSEDED and
 *         SUTRA_EMAPFULL as sutra_snapshot().
 */
int sutra_snapshot_at(sutra_db *db, uint64_t generation,
                      struct sutra_snapshot *out);

/** The newest published generation (one acquire load; never fails). */
uint64_t sutra_generation(const sutra_db *db);

/** The file's embedding dimension (0 = embeddings not enabled). */
uint32_t sutra_dim(const sutra_db *db);

/**
 * Block until the published generation is >= `generation` (futex on the
 * generation word in the file; no NNG).
 * @param timeout_ms  < 0 waits forever, 0 polls.
 * @return 0; SUTRA_ETIMEDOUT; EINTR is retried internally; another errno
 *         from futex(2) should the kernel refuse the wait.
 * Thread rules: any thread.
 */
int sutra_wait_generation(sutra_db *db, uint64_t generation, int timeout_ms);

/** One concept version, as a zero-copy view. */
typedef struct sutra_concept {
    sutra_id id;
    const void *content;     /* content_len bytes in the mapping; NULL when
                                content_len == 0.  Read-only; valid until
                                sutra_close().                           */
    size_t content_len;
    const float *embedding;  /* dim floats, 64-byte aligned, in the mapping;
                                NULL when the concept has none            */
    uint32_t dim;
    float strength;
    float confidence;
    uint64_t created_ns;     /* first version                             */
    uint64_t updated_ns;     /* this version                              */
    uint64_t seq;            /* this version's seq                        */
} sutra_concept;

/**
 * Look up the version of `id` visible at the snapshot.  Lock-free, no
 * allocation, and no system call, except one fstat(2) when the writer has
 * already stored a newer version past the file size this handle last saw
 * (the lookup walks back from it, and must not touch bytes past the end of
 * the file).
 * @return 0 and *out; SUTRA_ENOTFOUND (never learned, or forgotten, as of
 *         the snapshot); SUTRA_ECORRUPT (a record failed validation; the
 *         file is damaged); SUTRA_EMAPFULL (a newer version lies past a
 *         mapping opened smaller than the file grew, whose link back it
 *         needs: reopen); SUTRA_ERETRY is handled internally.
 * Thread rules: any thread, concurrently with the writer.
 */
int sutra_get(const struct sutra_snapshot *snap, const sutra_id *id,
              sutra_concept *out);

/** Like sutra_get() without filling a view: *found = whether `id` is live
 * at the snapshot.  @return 0 and *found; SUTRA_EINVAL (a NULL argument);
 * SUTRA_ECORRUPT; SUTRA_EMAPFULL as sutra_get(). */
int sutra_contains(const struct sutra_snapshot *snap, const sutra_id *id,
                   bool *found);

/** File-level statistics at a snapshot. */
typedef struct sutra_stats {
    uint64_t generation;
    uint64_t last_seq;
    uint64_t committed_end;   /* bytes of log visible at the snapshot     */
    uint64_t file_size;       /* bytes the file has been extended to      */
    uint64_t map_size;        /* bytes of address space mapped            */
    uint64_t node_count;
    uint64_t concept_count;
    uint64_t version_count;
    uint64_t tombstone_count;
    uint64_t assoc_count;
    uint64_t hash_slots;
    uint64_t created_ns;
    uint64_t commit_ns;
    uint32_t vector_dim;
    uint32_t format_major;
    uint32_t format_minor;
    bool clean_shutdown;      /* header flag as read now                  */
    uint8_t uuid[16];
} sutra_stats;

/** Fill *out for the snapshot.  @return 0, or SUTRA_EINVAL (a NULL
 * argument or a snapshot never taken). */
int sutra_stats_get(const struct sutra_snapshot *snap, sutra_stats *out);

/* ---- verification ------------------------------------------------------ */

/** Keep checking after the first problem and count them all. */
#define SUTRA_VERIFY_ALL 0x1u

/** The phases a verification goes through, in this order. */
enum sutra_verify_phase {
    SUTRA_VERIFY_META = 1,      /* header words, both meta slots           */
    SUTRA_VERIFY_LOG = 2,       /* every record, the commit chain          */
    SUTRA_VERIFY_HASH = 3,      /* the id -> node hash table               */
    SUTRA_VERIFY_NODES = 4,     /* the node table and its head chains      */
    SUTRA_VERIFY_ADJACENCY = 5, /* adjacency lists, if any                 */
};

typedef struct sutra_verify_options {
    uint32_t flags;  /* SUTRA_VERIFY_*; 0 = stop at the first problem      */
    /** Called now and then with the phase and its progress (done of total,
     * in the phase's own unit: bytes for the log, slots, nodes).  Runs on
     * the calling thread; must not use the report.  May be NULL. */
    void (*progress)(void *ctx, enum sutra_verify_phase phase, uint64_t done,
                     uint64_t total);
    /** Called for every problem found (the first only, unless
     * SUTRA_VERIFY_ALL), with the file offset where it was seen, the rule
     * it breaks ("F-LOG-6") and a message; both strings are valid for the
     * call only.  May be NULL. */
    void (*problem)(void *ctx, uint64_t offset, const char *rule,
                    const char *message);
    void *ctx;       /* passed to both callbacks                           */
} sutra_verify_options;

/** What a verification found.  Caller-owned; plain value. */
typedef struct sutra_verify_report {
    uint64_t problems;       /* found: 0, 1, or all of them with _ALL      */
    uint64_t offset;         /* file offset of the first problem           */
    char rule[16];           /* its rule id, e.g. "F-LOG-6"; "" if none    */
    char message[200];       /* what is wrong there                        */
    uint64_t generation;     /* the snapshot verified                      */
    uint64_t bytes;          /* log bytes scanned                          */
    uint64_t records;        /* records of every type (PAD words excluded) */
    uint64_t commits;
    uint64_t versions;       /* CONCEPT records                            */
    uint64_t tombstones;     /* CONCEPT_TOMBSTONE records                  */
    uint64_t assoc_records;  /* ASSOC and ASSOC_TOMBSTONE records          */
    uint64_t regions;        /* HASH_TABLE, NODE_CHUNK and ADJ_BLOCK       */
    uint64_t unknown;        /* records of a type this version does not
                                know, skipped by length (format §10.1)    */
    uint64_t nodes;          /* node entries checked                       */
    uint64_t live_concepts;  /* nodes whose newest version is live         */
    uint64_t live_assocs;    /* visible out-edges                          */
    uint64_t hash_used;      /* filled slots of the snapshot's hash table  */
} sutra_verify_report;

/**
 * Check everything the snapshot can see against docs/format.md: every
 * record from the data start to its committed end in log order (PAD words,
 * headers, lengths, types, alignment, checksums, region descriptors and
 * sizes), the chain of commit records and the roots each one claims, the
 * meta slots, the hash table (every slot, every node reachable, the load),
 * the node table (unique ids, first seqs, head chains), adjacency lists, and
 * the snapshot's counts.  The file is treated as hostile input: any bytes
 * give a report, never a crash.  O(committed bytes) time, O(node count)
 * memory.  Read-only: the file is not modified.
 *
 * A coordinator may be writing while this runs: index words naming records
 * newer than the snapshot are followed back as readers do (F-SNAP-1), and
 * checks that only hold for a file at rest (nothing past the snapshot,
 * F-NODE-3, F-REC-2) run only when the file is cleanly closed and the
 * snapshot is its newest generation.
 *
 * @param snap    from sutra_snapshot() or sutra_snapshot_at(); borrowed.
 * @param opts    NULL for defaults (stop at the first problem).
 * @param report  caller-owned; always written when the return is 0 or
 *                SUTRA_ECORRUPT (the one exception to "out-parameters are
 *                written only on success"), untouched otherwise.
 * @return 0 (no problem); SUTRA_ECORRUPT (report->problems >= 1, the first
 *         one's offset, rule and message filled); SUTRA_EINVAL (NULL
 *         snapshot or report); ENOMEM.
 * Thread rules: any thread; the handle may be used concurrently by others.
 */
int sutra_verify(const struct sutra_snapshot *snap,
                 const sutra_verify_options *opts,
                 sutra_verify_report *report);

/* ---- graph: associations between concepts ---------------------------- */

/** Matches every association type in a type filter. */
#define SUTRA_ANY_TYPE 0xFFFFFFFFu

/** Which edges of a concept: those where it is the source (OUT), the
 * target (IN), or either (BOTH).  For paths, OUT follows edges forwards,
 * IN backwards, BOTH ignores their direction.  With BOTH a self-loop (an
 * association from a concept to itself) is listed, and counted by
 * sutra_degree(), twice: once as OUT, once as IN. */
enum sutra_direction { SUTRA_OUT = 1, SUTRA_IN = 2, SUTRA_BOTH = 3 };

/** One association as seen from the concept that was queried. */
typedef struct sutra_neighbor {
    sutra_id id;             /* the other endpoint                        */
    uint32_t type;
    float confidence;
    uint64_t seq;            /* seq of the write that set this confidence */
    enum sutra_direction direction; /* SUTRA_OUT: id is a target of the
                                queried concept; SUTRA_IN: a source       */
} sutra_neighbor;

/**
 * Iterator over a concept's associations: a caller-owned value (no
 * allocation, nothing to free), valid for the life of the handle.
 * Fields are private.
 */
typedef struct sutra_neighbor_iter {
    uint64_t private_[16];
} sutra_neighbor_iter;

/**
 * Start iterating the associations of `id` visible at the snapshot,
 * newest first, optionally only those of one type.
 * @return 0; SUTRA_ENOTFOUND if `id` is not live at the snapshot;
 *         SUTRA_EINVAL (bad direction); SUTRA_ECORRUPT; SUTRA_EMAPFULL (a
 *         newer block of the list lies past a mapping opened smaller than
 *         the file grew: reopen).
 * Thread rules: any thread; lock-free; no allocation; no system call but
 * the one fstat(2) of sutra_get(), when a newer version or adjacency block
 * lies past the file size this handle last saw.
 */
int sutra_neighbors_begin(const struct sutra_snapshot *snap, const sutra_id *id,
                          enum sutra_direction dir, uint32_t type_filter,
                          sutra_neighbor_iter *it);

/**
 * Produce the next association.
 * @return 0 and *out; SUTRA_ENOTFOUND when there are no more (like LMDB's
 *         MDB_NOTFOUND at a cursor's end); SUTRA_ECORRUPT.
 */
int sutra_neighbors_next(sutra_neighbor_iter *it, sutra_neighbor *out);

/**
 * Copy up to `cap` associations of `id` into buf (newest first) and set
 * *total to how many are visible in all (which may exceed cap: call again
 * with a larger buffer, or use the iterator).
 * @return 0; the errors of sutra_neighbors_begin().  On an error *total is
 *         untouched and the contents of buf are unspecified (it is filled
 *         as the list is read).
 */
int sutra_neighbors(const struct sutra_snapshot *snap, const sutra_id *id,
                    enum sutra_direction dir, uint32_t type_filter,
                    sutra_neighbor *buf, size_t cap, size_t *total);

/** Count the associations of `id` (same filter as sutra_neighbors()). */
int sutra_degree(const struct sutra_snapshot *snap, const sutra_id *id,
                 enum sutra_direction dir, uint32_t type_filter,
                 uint64_t *out);

/**
 * Reusable traversal state (visited marks, queues, heaps) so that a worker
 * finding paths allocates nothing in its steady state: the state grows to
 * the largest graph it has seen and is reused by later calls.  One
 * traversal per thread at a time; it is not tied to a handle.
 */
typedef struct sutra_traversal sutra_traversal;

/** @return 0 or ENOMEM.  Free with sutra_traversal_free(). */
int sutra_traversal_new(sutra_traversal **out);
void sutra_traversal_free(sutra_traversal *t);

/**
 * Shortest path by hops from `from` to `to` (bidirectional BFS) within
 * `max_depth` edges, following associations in direction `dir` whose type
 * matches `type_filter`.  The path is written as ids, `from` first and `to`
 * last (a path from a concept to itself is that one id).
 * @param path      caller buffer of path_cap ids.
 * @param path_len  receives the number of ids in the path; also set when
 *                  SUTRA_ETOOBIG says path_cap was too small.  On any
 *                  other error *path_len is not set, and path[] may hold
 *                  part of a path (SUTRA_ECORRUPT found while writing it):
 *                  read it only after a return of 0.
 * @return 0; SUTRA_ENOTFOUND (an endpoint is not live at the snapshot);
 *         SUTRA_ENOPATH (no path within max_depth); SUTRA_ETOOBIG;
 *         ENOMEM (growing the traversal state); SUTRA_ECORRUPT;
 *         SUTRA_EMAPFULL as sutra_neighbors_begin().
 * Thread rules: any thread, with its own traversal.
 */
int sutra_find_path(sutra_traversal *t, const struct sutra_snapshot *snap,
                    const sutra_id *from, const sutra_id *to,
                    uint32_t max_depth, enum sutra_direction dir,
                    uint32_t type_filter, sutra_id *path, size_t path_cap,
                    size_t *path_len);

/**
 * The path from `from` to `to` with at most `max_depth` edges that
 * maximises the product of the associations' confidences (Dijkstra on
 * -log(confidence), bounded by hop count).  Edges of confidence 0 are not
 * traversed.  *strength receives the product.  Returns as sutra_find_path().
 */
int sutra_find_strongest_path(sutra_traversal *t,
                              const struct sutra_snapshot *snap,
                              const sutra_id *from, const sutra_id *to,
                              uint32_t max_depth, enum sutra_direction dir,
                              uint32_t type_filter, sutra_id *path,
                              size_t path_cap, size_t *path_len,
                              double *strength);

/* ---- client: writes through the coordinator -------------------------- */

typedef struct sutra_client sutra_client;

typedef struct sutra_client_options {
    /** Per-request deadline in ms; 0 = 30000.  A request still unanswered
     * then fails with SUTRA_ETIMEDOUT (it may or may not have been applied;
     * committing the same batch again with sutra_batch_commit() is a new
     * request). */
    int timeout_ms;
    /** NNG resend interval in ms; 0 = 5000.  Resends reuse the request
     * number, so the coordinator applies each request once. */
    int resend_ms;
} sutra_client_options;

/**
 * Create a client for the coordinator of `target`: a data directory (its
 * socket is DIR/coordinator.sock) or an NNG URL ("ipc://…").  NNG is
 * touched only here and by writes, never by reads.  Connection is
 * asynchronous: it succeeds while the coordinator is down, and requests wait
 * (up to their deadline) for it to come up; reconnection is automatic.
 * @return 0; SUTRA_EINVAL (bad target, or a negative timeout_ms or
 *         resend_ms); SUTRA_EFORKED (this process was forked from a parent
 *         that had already used NNG); ENOMEM; other NNG failures as
 *         SUTRA_ECLOSED; an errno from getcwd(3) (a relative target) or
 *         getrandom(2) (the client id).
 * Thread rules: the handle may be used from several threads at once.
 */
int sutra_client_connect(const char *target, const sutra_client_options *opts,
                         sutra_client **out);

/** Close the socket, cancelling requests still in flight.  NULL is a no-op.
 * NNG 1.5.2 can block here for good when the connection was lost while
 * NNG was resending requests (an upstream bug, also met by the
 * coordinator's own teardown); a process that is about to exit need not
 * call this. */
void sutra_client_close(sutra_client *client);

/** What a committed write returned. */
typedef struct sutra_write_result {
    uint64_t first_seq;  /* seq of the first op; the i-th data op of a batch
                            has first_seq + i                              */
    uint64_t generation; /* wait for this generation to see the writes     */
    uint32_t op_count;   /* ops applied                                    */
} sutra_write_result;

/** A concept to learn.  Borrowed for the call. */
typedef struct sutra_concept_input {
    sutra_id id;
    const void *content;     /* may be NULL when content_len == 0          */
    size_t content_len;
    const float *embedding;  /* NULL = no embedding                        */
    uint32_t dim;            /* must equal the file's dim when embedding   */
    float strength;          /* finite                                     */
    float confidence;        /* finite, 0..1                               */
    uint32_t flags;          /* SUTRA_LEARN_*                              */
} sutra_concept_input;

/** Keep the current version's content (content must be empty). */
#define SUTRA_LEARN_KEEP_CONTENT 0x1u
/** Keep the current version's embedding (embedding must be NULL). */
#define SUTRA_LEARN_KEEP_EMBEDDING 0x2u

/** An ordered list of write ops that commit atomically. */
typedef struct sutra_batch sutra_batch;

/** @return 0 or ENOMEM.  Free with sutra_batch_free(). */
int sutra_batch_new(sutra_batch **out);
void sutra_batch_free(sutra_batch *batch);
/** Empty the batch, keeping its memory for reuse. */
void sutra_batch_clear(sutra_batch *batch);
/** Ops in the batch. */
size_t sutra_batch_count(const sutra_batch *batch);

/** Sync override for the batch: SUTRA_SYNC_DEFAULT (the coordinator's
 * policy), SUTRA_SYNC_COMMIT (reply after the write is durable), or
 * SUTRA_SYNC_NONE (reply after it is visible).  @return 0, or SUTRA_EINVAL
 * (NULL batch, or another value: the batch keeps its setting). */
enum sutra_sync { SUTRA_SYNC_DEFAULT = 0, SUTRA_SYNC_COMMIT = 1,
                  SUTRA_SYNC_NONE = 2 };
int sutra_batch_set_sync(sutra_batch *batch, enum sutra_sync sync);

/** Append ops (the input is copied).  @return 0, SUTRA_EINVAL (non-finite
 * value, bad flags), SUTRA_EDIM (dim above 65,536, the format's limit; the
 * file's own dimension is checked at commit), SUTRA_ETOOBIG (content over 1 GiB, the format's limit;
 * the coordinator's --max-content is usually lower and is checked at
 * commit) or ENOMEM. */
int sutra_batch_learn_concept(sutra_batch *batch, const sutra_concept_input *in);
/** Forget concept `id` and end its associations.  SUTRA_ENOTFOUND at commit
 * if it is not live then.  @return 0, SUTRA_EINVAL (NULL), ENOMEM. */
int sutra_batch_forget_concept(sutra_batch *batch, const sutra_id *id);
/** Learn (or re-learn with a new confidence) the association
 * (source, target, type).  Both endpoints must be live at the end of the
 * batch, or the whole batch fails with SUTRA_ENOTFOUND.  confidence is
 * finite, 0..1; type is any value but SUTRA_ANY_TYPE (SUTRA_EINVAL: it
 * means "every type" in a filter), for forget too. */
int sutra_batch_learn_association(sutra_batch *batch, const sutra_id *source,
                                  const sutra_id *target, uint32_t type,
                                  float confidence);
/** Forget the association (source, target, type); SUTRA_ENOTFOUND at
 * commit if it is not live. */
int sutra_batch_forget_association(sutra_batch *batch, const sutra_id *source,
                                   const sutra_id *target, uint32_t type);
/** Ask for durability of everything up to this batch (any policy): its
 * reply comes once the batch and every write before it are on disk.
 * @return 0, SUTRA_EINVAL (NULL), ENOMEM. */
int sutra_batch_flush(sutra_batch *batch);

/**
 * Send a batch and wait for its reply.  The batch is all-or-nothing: on any
 * error none of its ops is applied.  `result` may be NULL when the caller
 * does not need it.
 * @return 0 and *result; the coordinator's error (SUTRA_EDIM, SUTRA_EINVAL,
 *         SUTRA_ETOOBIG, SUTRA_ENOTFOUND, SUTRA_EPROTO, SUTRA_EFULL,
 *         SUTRA_EREADONLY, SUTRA_EPERM, SUTRA_ECORRUPT…, message via
 *         sutra_client_last_error()); SUTRA_ETIMEDOUT (no reply by the
 *         deadline, which also counts any wait for a place among the
 *         client's 512 open requests, see sutra_batch_submit, and the time
 *         no coordinator was listening); SUTRA_ECLOSED (the client was
 *         closed, or the coordinator is stopping); SUTRA_EFORKED;
 *         SUTRA_EPROTO or SUTRA_EVERSION (a reply that is not protocol 1);
 *         ENOMEM.
 * Thread rules: any thread; the batch is only read.
 */
int sutra_batch_commit(sutra_client *client, const sutra_batch *batch,
                       sutra_write_result *result);

/** Single-op shorthands for sutra_batch_commit(), with its errors and
 * thread rules; `result` may be NULL. */
int sutra_learn_concept(sutra_client *client, const sutra_concept_input *in,
                        sutra_write_result *result);
int sutra_forget_concept(sutra_client *client, const sutra_id *id,
                         sutra_write_result *result);
int sutra_learn_association(sutra_client *client, const sutra_id *source,
                            const sutra_id *target, uint32_t type,
                            float confidence, sutra_write_result *result);
int sutra_forget_association(sutra_client *client, const sutra_id *source,
                             const sutra_id *target, uint32_t type,
                             sutra_write_result *result);
/** Make every acknowledged write durable now, whatever the sync policy.
 * @return 0 once they are; the errors of sutra_batch_commit() (a failed
 *         sync comes back as SUTRA_EREADONLY, or SUTRA_EFULL when the disk
 *         is full). */
int sutra_flush(sutra_client *client, sutra_write_result *result);
/** Round trip without touching storage (open to every connected process,
 * allow-list or not).  @return 0; SUTRA_ETIMEDOUT (also when no
 * coordinator is listening: the dial retries until the deadline);
 * SUTRA_ECLOSED (the client was closed, or the coordinator is stopping);
 * SUTRA_EFORKED; SUTRA_EPROTO. */
int sutra_ping(sutra_client *client);

/** The coordinator's view of itself (the wire stats body). */
typedef struct sutra_server_stats {
    uint64_t generation, last_seq, committed_end, file_size;
    uint64_t node_count, concept_count, version_count, tombstone_count;
    uint64_t requests, requests_failed, ops_applied, commits, syncs;
    uint64_t duplicates, queue_depth, uptime_ns;
    uint64_t max_message, max_content, max_batch;
    uint32_t vector_dim;
    uint32_t sync_policy;   /* 0 commit, 1 interval, 2 none */
    uint64_t sync_interval_ms;
    uint64_t assoc_count;
} sutra_server_stats;

/** Ask the coordinator for its counters and limits (a `stats` op, answered
 * without touching the committer; open to every connected process).
 * @return 0 and *out; SUTRA_EINVAL (NULL); the errors of sutra_ping().
 * Thread rules: any thread. */
int sutra_client_stats(sutra_client *client, sutra_server_stats *out);

/**
 * The message of the last error the coordinator returned to this thread
 * for `client` ("" if none, or if the last call succeeded).  Each thread
 * keeps the messages of the 8 clients it used most recently, so a thread
 * that talks to several coordinators keeps each one's message apart.
 * Valid until the thread's next call on `client`, or on more than 7 other
 * clients.
 */
const char *sutra_client_last_error(const sutra_client *client);

/* Asynchronous form: keep many writes in flight from one thread. */

typedef struct sutra_pending sutra_pending;

/**
 * Encode and send a batch without waiting.  The batch may be cleared or
 * reused as soon as this returns.  A client keeps at most 512 requests
 * open (half the coordinator's idempotency window, docs/protocol.md
 * P-IDEM-2): request n is sent once request n - 512 is answered, or, if it
 * was not, once its sutra_pending is freed; until then this call (like
 * every call that sends) waits, up to the client's timeout_ms
 * (SUTRA_ETIMEDOUT, nothing sent).
 * @return 0 and *out (free with sutra_pending_free()), or the errors of
 *         sutra_batch_commit() that are known before sending.
 */
int sutra_batch_submit(sutra_client *client, const sutra_batch *batch,
                       sutra_pending **out);

/**
 * Wait for a submitted batch.
 * @param timeout_ms  < 0 until the request's own deadline, 0 polls.
 * @return as sutra_batch_commit(); SUTRA_ETIMEDOUT when timeout_ms passed
 *         first (the request is still in flight: wait again or free it).
 */
int sutra_pending_wait(sutra_pending *pending, int timeout_ms,
                       sutra_write_result *result);

/** Free a pending write; if still in flight, stop waiting for it (the write
 * may or may not be applied).  NULL is a no-op. */
void sutra_pending_free(sutra_pending *pending);

#ifdef __cplusplus
}
#endif

#endif
