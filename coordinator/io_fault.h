/*
 * coordinator/io_fault.h — a fault-injecting coord_io for tests, in the
 * spirit of SQLite's test6.c crash VFS.
 *
 * It forwards every hook to the POSIX table (coordinator/io.h) and can, on
 * request:
 *   - make the Nth pwrite, extend, sync or in-place store from now fail with
 *     an errno (once, or on every call from then on: a disk that stays full);
 *   - make the Nth pwrite short: a random prefix of its bytes reaches the
 *     file, then it fails (what a write into a filling disk does);
 *   - "crash" at the Nth operation of any kind: that operation and every
 *     later one fail with EIO and change nothing, as if the process had died
 *     there;
 *   - simulate a power loss: every pwrite, extend and in-place store since
 *     the last successful sync is remembered with the bytes it replaced, and
 *     coord_io_fault_power_loss() rewinds the file to what a disk could hold
 *     after the cut — a random prefix of those operations (optionally with
 *     the next one torn at a random byte), or each dirty page frozen at a
 *     random point of its own history (the kernel writes pages back in any
 *     order).  A pwrite_sync is a pwrite and then a sync of its own pages
 *     (two operations, each can crash or fail): at a cut those pages keep
 *     at least what they held when it returned.  Operations covered by a
 *     failed sync stay lost even after a
 *     later sync succeeds, unless they were written again before it — the
 *     Linux behaviour that makes retrying a failed fsync unsafe.
 * Every random choice comes from the seed, so a failing run can be replayed.
 *
 * Concurrency: one table may be driven by a committer thread while a test
 * thread arms faults or reads counters; a mutex serialises them.
 */
#ifndef SUTRA_COORD_IO_FAULT_H
#define SUTRA_COORD_IO_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "coordinator/io.h"

typedef struct coord_io_fault coord_io_fault;

/* The operations that can be made to fail (open, close and sync_dir are
 * always forwarded). */
enum coord_fault_kind {
    COORD_FAULT_PWRITE = 0,
    COORD_FAULT_EXTEND,
    COORD_FAULT_SYNC,
    COORD_FAULT_STORE, /* store64 and store32 */
    COORD_FAULT_KINDS
};

/* What survives a power loss among the operations since the last
 * successful sync. */
enum coord_power_mode {
    COORD_POWER_NOTHING,     /* none of them                                  */
    COORD_POWER_PREFIX,      /* a random prefix of them, in order             */
    COORD_POWER_PREFIX_TORN, /* a random prefix, and the next pwrite torn at a
                                random byte                                    */
    COORD_POWER_PAGES,       /* each dirty 4 KiB page at a random point of its
                                own history, independently of the others       */
};

/** Create a table seeded with `seed`.  @return 0 or ENOMEM. */
int coord_io_fault_new(uint64_t seed, coord_io_fault **out);

/** Free the table; the stores opened with it must be closed.  NULL: no-op. */
void coord_io_fault_free(coord_io_fault *f);

/** The vtable to put in coord_store_options.io (borrowed from `f`). */
coord_io *coord_io_fault_io(coord_io_fault *f);

/**
 * Arm a failure: the `nth` operation of `kind` from now (1 = the next)
 * returns `err` and does nothing.  With `sticky`, every later operation of
 * that kind fails too, until coord_io_fault_disarm().  Replaces an earlier
 * arm of the same kind.
 */
void coord_io_fault_fail(coord_io_fault *f, enum coord_fault_kind kind,
                         uint64_t nth, int err, bool sticky);

/** The `nth` pwrite from now writes a random prefix (possibly empty) of its
 * bytes, then returns `err`. */
void coord_io_fault_short_write(coord_io_fault *f, uint64_t nth, int err);

/** The `nth` pwrite/extend/sync/store from now, and every operation after
 * it, fails with EIO without touching the file: the process "died" there.
 * The table stays dead until coord_io_fault_power_loss() or
 * coord_io_fault_revive(). */
void coord_io_fault_crash_at(coord_io_fault *f, uint64_t nth);

/** Cancel every armed failure, short write and pending crash. */
void coord_io_fault_disarm(coord_io_fault *f);

/** End the dead state without losing anything: what a kill -9 leaves (the
 * page cache keeps every write).  Unsynced operations stay remembered. */
void coord_io_fault_revive(coord_io_fault *f);

/**
 * Cut the power: rewind every operation since the last successful sync that
 * `mode` says did not reach the disk, restoring the bytes (and file size) it
 * replaced.  Must be called while the store that made them is still open
 * (in-place stores are rewound through its mapping); close that store with
 * coord_store_close(s, false) right after, without any other call on it.
 * Then the table is alive again, with nothing remembered.
 * @return the number of operations rewound (fully or in part).
 */
uint64_t coord_io_fault_power_loss(coord_io_fault *f, enum coord_power_mode mode);

/** Whether the table is dead after a crash. */
bool coord_io_fault_crashed(coord_io_fault *f);

/** Operations of `kind` attempted so far (including failed ones). */
uint64_t coord_io_fault_count(coord_io_fault *f, enum coord_fault_kind kind);

/** Operations of every kind attempted so far. */
uint64_t coord_io_fault_total(coord_io_fault *f);

/** Syncs that succeeded so far: sync, and the sync half of pwrite_sync. */
uint64_t coord_io_fault_syncs_done(coord_io_fault *f);

/** Faults injected so far (failures, short writes, crash refusals). */
uint64_t coord_io_fault_injected(coord_io_fault *f);

/** Operations remembered since the last successful sync, plus those a
 * failed sync lost that were not written again. */
uint64_t coord_io_fault_unsynced(coord_io_fault *f);

#endif
