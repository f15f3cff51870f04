/*
 * coordinator/store_reverify.c — leaving the read-only state that a failed
 * sync put the store in (coord_store_reverify() in coordinator/store.h).
 *
 * Why a failed fdatasync is not simply retried: on Linux the kernel reports
 * a writeback error once and may mark the failed pages clean, so the next
 * fdatasync can succeed without writing them ("fsyncgate").  Generations
 * published since the last good sync — and, under --sync commit, the group
 * whose sync failed — may then exist only in the page cache.  The store
 * therefore refuses writes (SUTRA_EREADONLY) until this file has:
 *   1. dropped the failed group, invalidated a meta slot that names a
 *      generation past the published one and zeroed the words at the
 *      committed end (F-REC-7), so a later recovery cannot resurrect a
 *      group whose client was told it failed;
 *   2. rewritten every byte below the committed end from the mapping,
 *      dirtying again whatever the kernel may have dropped;
 *   3. run the recovery repair over the published generation (F-REC-2,
 *      F-REC-4) and checked every record past the durable end by checksum
 *      (F-REC-5);
 *   4. synced successfully.
 * The coordinator's committer calls it before refusing a write, at most
 * once per retry interval, so a disk that comes back (space freed, a
 * transient error gone) brings writes back without a restart.
 *
 * Concurrency: committer thread only.  Readers may be attached: step 2
 * writes bytes equal to what they already read, and step 3 changes only
 * words past the published generation, which no reader's snapshot uses.
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/sutra.h"

#define REWRITE_CHUNK (1u << 20)

static layout_meta *meta_slot(coord_store *s, uint64_t generation)
{
    return (layout_meta *)(s->map + (generation % 2 ? LAYOUT_META_OFFSET_1
                                                    : LAYOUT_META_OFFSET_0));
}

/* Step 2: pwrite [0, end) with its own bytes, through a bounce buffer so
 * the source is never the page being written. */
static int rewrite_published(coord_store *s, uint64_t end, coord_error *err)
{
    uint8_t *buf = malloc(REWRITE_CHUNK);
    if (!buf)
        return coord_fail(err, ENOMEM, "no memory to rewrite the file");
    int rc = 0;
    for (uint64_t off = 0; off < end && !rc; off += REWRITE_CHUNK) {
        size_t n = end - off < REWRITE_CHUNK ? (size_t)(end - off) : REWRITE_CHUNK;
        memcpy(buf, s->map + off, n);
        rc = s->io->pwrite(s->io, s->fd, buf, n, off);
    }
    free(buf);
    if (rc)
        return coord_fail(err, rc, "cannot rewrite the published file: %s",
                          strerror(rc));
    return 0;
}

int coord_store_reverify(coord_store *s, coord_error *err)
{
    if (!s->read_only)
        return 0;
    coord_store_abort(s);
    /* Step 2 copies the table being filled ahead and writes the copy back:
     * a slot the helper stored in between would be lost while the helper
     * counts it inserted.  Stop it first, and take the table up again,
     * zeroed, once the file is verified (F-META-6). */
    uint64_t ahead = coord_grow_region(s);
    coord_grow_abandon(s);
    uint64_t gen = s->roots.generation;
    layout_meta *newer = meta_slot(s, gen + 1);
    if (layout_meta_valid(newer) && newer->roots.generation > gen) {
        int rc = s->io->store64(s->io, &newer->magic, 0);
        if (rc)
            return coord_fail(err, rc, "cannot invalidate the failed meta slot");
    }
    /* F-REC-7: the failed group's records end here, so neither the
     * recovery below nor a later one rolls forward into it */
    int rc = coord_seal_log_end(s);
    if (rc)
        return coord_fail(err, rc, "cannot discard the failed group");
    const layout_meta *cur = meta_slot(s, gen);
    if (!layout_meta_valid(cur) || cur->roots.generation != gen)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-META-3: the slot of published generation %llu is "
                          "invalid", (unsigned long long)gen);
    layout_meta meta = *cur;
    /* The kernel reports a writeback error once to each open file
     * description, and the store has two (store.h): the error that turned
     * it read-only, reported through one, still waits on the other, where
     * it would fail the sync below or the next sync beside the writer
     * although step 2 writes every page again.  Take it from both first;
     * whatever those syncs say, only the pages step 2 rewrites matter. */
    (void)s->io->sync(s->io, s->fd);
    (void)s->io->sync(s->io, s->sync_fd);
    rc = rewrite_published(s, s->roots.committed_end, err);
    if (!rc)
        rc = coord_recover(s, &meta, true, true, err); /* repairs, verifies, syncs */
    if (rc)
        return rc;
    s->read_only = false;
    s->synced = true;
    s->log_durable_end = s->roots.committed_end;
    (void)coord_store_durable_words(s, &s->roots);
    coord_group_reset(s);
    coord_stat_publish(s);
    coord_grow_resume(s, ahead);
    return 0;
}
