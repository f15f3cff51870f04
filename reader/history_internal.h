/*
 * reader/history_internal.h — snapshots of a run of consecutive
 * generations for one walk of the commit chain.
 *
 * sutra_snapshot_at() walks the chain back from the newest commit record
 * on every call, so a caller wanting each of k recent generations pays
 * O(k^2) record reads (and checksums).  This walks once and hands the
 * snapshots out oldest first.  Not public API: sutra-inspect uses it (it
 * links the library's internals); it can become a sutra_ function if
 * clients come to need it.
 */
#ifndef SUTRA_READER_HISTORY_INTERNAL_H
#define SUTRA_READER_HISTORY_INTERNAL_H

#include <stdint.h>

#include "sutra/sutra.h"

/* Called once per generation, oldest first.  rc is 0 with `snap` the
 * generation's snapshot (borrowed for the call; copy it to keep it), or
 * the error sutra_snapshot_at() would return for that generation, with
 * `snap` NULL.  A nonzero return stops the walk. */
typedef int (*reader_history_visit)(void *ctx, uint64_t generation, int rc,
                                    const struct sutra_snapshot *snap);

/**
 * Visit generations first..last (inclusive) in order, each with what
 * sutra_snapshot_at() would answer for it: the newest published
 * generation's roots from the meta slots (read once, at the start), older
 * ones from one walk of the commit chain from the newest commit record
 * back to `first`.  Cost: that walk, O(newest - first) commit records,
 * plus 8 bytes of heap per generation in the run, freed before returning.
 * A generation the walk cannot reach (a broken link, a chain that starts
 * later in a compacted file) gets the walk's error; one newer than the
 * published generation gets SUTRA_ESTALE, as from sutra_snapshot_at().
 * @return 0 once `last` was visited; the visitor's nonzero return;
 *         SUTRA_EINVAL (db or visit NULL, first > last); ENOMEM (nothing
 *         visited).
 * Thread rules: as sutra_snapshot_at(): any thread, concurrently with the
 * writer; the visitor runs on the calling thread with nothing held.
 */
int reader_snapshots_between(sutra_db *db, uint64_t first, uint64_t last,
                             reader_history_visit visit, void *ctx);

#endif
