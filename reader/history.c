/*
 * reader/history.c — sutra_snapshot_at(): snapshots of older generations.
 *
 * The meta slots hold only the two newest generations; every older one is
 * described by the roots stored in its commit record (F-META-5), and commit
 * records are chained newest to oldest by prev_commit (F-COM-1, F-COM-2).  An as-of
 * snapshot walks that chain, which is O(generations back) and verifies each
 * commit record's checksum on the way: the walk is rare and cold, unlike
 * lookups, so it can afford to treat the chain as the hostile input it is.
 */
#include <string.h>

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
    if (!layout_rec_verify(&c->rec) || c->roots.last_commit != off)
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

    /* Everything on the chain lies below the newest committed_end, so the
     * snapshot's range check covers every record we read. */
    if (!reader_range_readable(db, 0, now.committed_end))
        return reader_beyond_mapping(db, 0, now.committed_end) ? SUTRA_EMAPFULL
                                                               : SUTRA_ECORRUPT;
    uint64_t off = now.last_commit, limit = now.committed_end;
    uint64_t expect = now.generation; /* the first record is now's own */
    while (off != 0) {
        const layout_commit *c = reader_commit_at(db, off, limit);
        /* F-COM-2: each link is the previous generation, further back. */
        if (!c || c->roots.generation != expect || c->prev_commit >= off)
            return SUTRA_ECORRUPT;
        if (expect == generation) {
            layout_roots roots;
            memcpy(&roots, &c->roots, sizeof(roots));
            return reader_snapshot_from_roots(db, &roots, file_size, out);
        }
        expect--;
        limit = off;
        off = c->prev_commit;
    }
    /* The chain ended before `generation`: its history is not in this
     * file (a compacted file starts its chain later). */
    return SUTRA_ESTALE;
}
