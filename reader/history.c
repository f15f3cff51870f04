/*
 * reader/history.c — sutra_snapshot_at(): snapshots of older generations,
 * one at a time or a run of them for one walk (reader_snapshots_between()).
 *
 * The meta slots hold only the two newest generations; every older one is
 * described by the roots stored in its commit record (F-META-5), and commit
 * records are chained newest to oldest by prev_commit (F-COM-1, F-COM-2).  An as-of
 * snapshot walks that chain, which is O(generations back) and verifies each
 * commit record's checksum on the way: the walk is rare and cold, unlike
 * lookups, so it can afford to treat the chain as the hostile input it is.
 * What it cannot afford is to be repeated per generation by a caller that
 * wants every generation of a run (sutra-inspect follow after a burst of
 * commits): that is quadratic in the run, hence the ranged walk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reader/history_internal.h"
#include "reader/reader_internal.h"

/* The commit record at `off` if it is whole, of its F-COM-1 length, below
 * `limit` and intact.  The walk passes the newer record's offset as the
 * limit (records never overlap), so it checksums each byte of the log at
 * most once however the chain was forged. */
static const layout_commit *reader_commit_at(const sutra_db *db, uint64_t off,
                                             uint64_t limit)
{
    if (off % LAYOUT_RECORD_ALIGN != 0 || off < LAYOUT_DATA_START ||
        off > limit || sizeof(layout_commit) > limit - off)
        return NULL;
    const layout_commit *c = (const layout_commit *)(db->map + off);
    if (c->rec.type != LAYOUT_REC_COMMIT ||
        c->rec.length != sizeof(*c) + (uint64_t)c->request_count *
                                          sizeof(layout_commit_entry) ||
        c->rec.length > limit - off)
        return NULL;
    /* F-COM-1: its roots end where it ends and name it; their range is
     * what a snapshot of the generation reads */
    if (!layout_rec_verify(&c->rec) || c->roots.last_commit != off ||
        c->roots.committed_end !=
            layout_align_up(off + c->rec.length, LAYOUT_RECORD_ALIGN))
        return NULL;
    return c;
}

/* Generation 0 has no commit record: it exists only while slot 0 still
 * holds it, i.e. until generation 2 is written. */
static int reader_snapshot_gen0(sutra_db *db, struct sutra_snapshot *out)
{
    const uint64_t *src = (const uint64_t *)(db->map + LAYOUT_META_OFFSET_0);
    layout_meta meta;
    uint64_t *dst = (uint64_t *)&meta;
    for (size_t i = 0; i < sizeof(meta) / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    /* A torn copy (the writer rewriting slot 0 for generation 2) fails the
     * checksum, and then generation 0 is gone anyway. */
    if (!layout_meta_valid(&meta) || meta.roots.generation != 0)
        return SUTRA_ESTALE;
    return reader_snapshot_from_roots(db, &meta.roots, meta.file_size, out);
}

/* Walk the commit chain from the newest record (now's own) back to
 * generation `oldest`, storing the offset of generation g's record in
 * found[g - oldest] for every g in [oldest, newest] it reaches
 * (1 <= oldest <= newest <= now->generation).  One pass, each record read
 * once, however many generations the caller wants.  Returns 0 when the
 * walk reached `oldest`; otherwise the answer for every generation it did
 * not reach, whose slots stay 0: SUTRA_ECORRUPT (a broken link),
 * SUTRA_ESTALE (the chain ends first: a compacted file starts its chain
 * later) or SUTRA_EMAPFULL (the log lies past this handle's mapping). */
static int reader_chain_walk(const sutra_db *db, const layout_roots *now,
                             uint64_t oldest, uint64_t newest, uint64_t *found)
{
    /* Everything on the chain lies below the newest committed_end, so the
     * snapshot's range check covers every record we read. */
    if (!reader_range_readable(db, 0, now->committed_end))
        return reader_beyond_mapping(db, 0, now->committed_end)
                   ? SUTRA_EMAPFULL
                   : SUTRA_ECORRUPT;
    uint64_t off = now->last_commit, limit = now->committed_end;
    uint64_t expect = now->generation; /* the first record is now's own */
    if (off == 0) /* F-COM-1: every generation from 1 on ends with one */
        return SUTRA_ECORRUPT;
    while (off != 0) {
        const layout_commit *c = reader_commit_at(db, off, limit);
        /* F-COM-2: each link is the previous generation, further back. */
        if (!c || c->roots.generation != expect || c->prev_commit >= off)
            return SUTRA_ECORRUPT;
        if (expect <= newest)
            found[expect - oldest] = off;
        if (expect == oldest)
            return 0;
        expect--;
        limit = off;
        off = c->prev_commit;
    }
    return SUTRA_ESTALE;
}

/* A snapshot from the roots of the commit record at `off`, which the
 * chain walk validated. */
static int reader_snapshot_from_commit(const sutra_db *db, uint64_t off,
                                       uint64_t file_size,
                                       struct sutra_snapshot *out)
{
    layout_roots roots;
    memcpy(&roots, &((const layout_commit *)(db->map + off))->roots,
           sizeof(roots));
    return reader_snapshot_from_roots(db, &roots, file_size, out);
}

int sutra_snapshot_at(sutra_db *db, uint64_t generation,
                      struct sutra_snapshot *out)
{
    if (!db || !out)
        return SUTRA_EINVAL;
    layout_roots now;
    uint64_t file_size = 0;
    int rc = reader_read_current(db, &now, &file_size);
    if (rc != 0)
        return rc;
    if (generation > now.generation)
        return SUTRA_ESTALE;
    if (generation == now.generation)
        return reader_snapshot_from_roots(db, &now, file_size, out);
    if (generation == 0)
        return reader_snapshot_gen0(db, out);
    uint64_t off = 0;
    rc = reader_chain_walk(db, &now, generation, generation, &off);
    if (rc != 0)
        return rc;
    return reader_snapshot_from_commit(db, off, file_size, out);
}

/* Generation g's snapshot as sutra_snapshot_at() would answer it, from
 * the one walk reader_snapshots_between() made.  `found` holds the
 * offsets of [walk_oldest, ...], and walk_rc answers the generations the
 * walk did not reach. */
typedef struct reader_walk {
    layout_roots now;
    uint64_t file_size;
    int read_rc;             /* reader_read_current()'s                   */
    uint64_t walk_oldest;
    uint64_t *found;
    int walk_rc;
} reader_walk;

static int reader_walk_snapshot(sutra_db *db, const reader_walk *w,
                                uint64_t g, struct sutra_snapshot *out)
{
    if (w->read_rc != 0)
        return w->read_rc;
    if (g > w->now.generation)
        return SUTRA_ESTALE;
    if (g == w->now.generation)
        return reader_snapshot_from_roots(db, &w->now, w->file_size, out);
    if (g == 0)
        return reader_snapshot_gen0(db, out);
    uint64_t off = w->found[g - w->walk_oldest];
    if (off == 0)
        return w->walk_rc;
    return reader_snapshot_from_commit(db, off, w->file_size, out);
}

int reader_snapshots_between(sutra_db *db, uint64_t first, uint64_t last,
                             reader_history_visit visit, void *ctx)
{
    if (!db || !visit || first > last)
        return SUTRA_EINVAL;
    reader_walk w = {.walk_oldest = first ? first : 1};
    w.read_rc = reader_read_current(db, &w.now, &w.file_size);
    /* The chain holds generations 1..now; now's own roots and generation
     * 0's come from the meta slots instead. */
    uint64_t walk_newest = last < w.now.generation ? last : w.now.generation;
    if (w.read_rc == 0 && walk_newest > 0 && w.walk_oldest <= walk_newest) {
        w.found = calloc(walk_newest - w.walk_oldest + 1, sizeof(uint64_t));
        if (!w.found)
            return ENOMEM;
        w.walk_rc = reader_chain_walk(db, &w.now, w.walk_oldest, walk_newest,
                                      w.found);
    }
    int stop = 0;
    for (uint64_t g = first; stop == 0; g++) {
        struct sutra_snapshot snap;
        int rc = reader_walk_snapshot(db, &w, g, &snap);
        stop = visit(ctx, g, rc, rc == 0 ? &snap : NULL);
        if (g == last)
            break;
    }
    free(w.found);
    return stop;
}
