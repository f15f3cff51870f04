/*
 * coordinator/recover.c — open-time validation of storage.dat and repair
 * after an unclean stop (docs/format.md §9).
 *
 * The picked meta slot, extended by the complete groups logged after it
 * (F-REC-7, rebuild.c), defines the recovered generation; every byte at or
 * past its committed_end is logically discarded (never truncated: readers
 * may still map the file).  A crash can leave in-place words that already
 * describe a newer, unpublished group: hash slots naming nodes past
 * node_count, filled node entries past it, node chunks allocated past the
 * committed end, heads pointing at unpublished versions, adjacency count,
 * superseded and head words of an unpublished group (store_adj.c).  Repair
 * rewrites exactly those words so the file again says what the meta says.
 *
 * Everything read from the file is hostile input: region descriptors, chunk
 * offsets and version records are checked before use, and a committed
 * structure that fails a check gives SUTRA_ECORRUPT naming what and where.
 *
 * Concurrency: committer thread only, before the store accepts writes.
 * Readers may be attached: every repaired word is written with a release
 * store through the io seam, and only words past the recovered snapshot
 * change, which no reader of that snapshot looks at.
 */
#include "coordinator/store_internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sutra/sutra.h"

static bool is_pow2(uint64_t x)
{
    return x && (x & (x - 1)) == 0;
}

/* F-META-5: the roots must describe a structure inside the file. */
static int check_roots(coord_store *s, const layout_roots *r, coord_error *err)
{
    if (r->committed_end < LAYOUT_DATA_START || r->committed_end > s->file_size ||
        r->committed_end % LAYOUT_RECORD_ALIGN != 0)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-META-5: committed end %llu outside the file "
                          "(%llu bytes)", (unsigned long long)r->committed_end,
                          (unsigned long long)s->file_size);
    if (!is_pow2(r->hash_slots) || r->hash_slots < LAYOUT_HASH_MIN_SLOTS ||
        r->hash_slots > COORD_MAX_HASH_SLOTS ||
        r->node_count > r->hash_slots / 2 ||
        r->concept_count > r->node_count)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-META-5: counts out of range (nodes %llu, slots "
                          "%llu)", (unsigned long long)r->node_count,
                          (unsigned long long)r->hash_slots);
    /* F-ASSOC-3: each live key has its ASSOC record below the end; the
     * association index is sized by this count */
    if (r->assoc_count >
        (r->committed_end - LAYOUT_DATA_START) / sizeof(layout_assoc))
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-ASSOC-3: %llu live associations, more than the "
                          "log below %llu can hold",
                          (unsigned long long)r->assoc_count,
                          (unsigned long long)r->committed_end);
    if (!coord_region_valid(s, r->hash_root, r->committed_end,
                            LAYOUT_REC_HASH_TABLE, r->hash_slots, 0, 0,
                            r->hash_slots * sizeof(uint64_t)))
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-HASH-1: hash table at %llu invalid",
                          (unsigned long long)r->hash_root);
    s->hash = (uint64_t *)(s->map + r->hash_root + LAYOUT_REGION_BODY);
    if (r->generation == 0 ? r->last_commit != 0 : !coord_commit_at(s, r->last_commit))
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-COM-1: commit record at %llu invalid",
                          (unsigned long long)r->last_commit);
    return 0;
}

/* F-NODE-2: chunks covering nodes < node_count must be valid; others are
 * leftovers of an unpublished commit and are forgotten. */
static int attach_chunks(coord_store *s, coord_error *err)
{
    const layout_roots *r = &s->roots;
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++) {
        uint64_t off = s->hdr->node_chunk[k];
        uint64_t first = layout_node_chunk_first(k);
        uint64_t entries = layout_node_chunk_entries(k);
        bool needed = first < r->node_count;
        bool valid = off && k <= COORD_MAX_NODE_CHUNK &&
                     coord_region_valid(s, off, r->committed_end,
                                        LAYOUT_REC_NODE_CHUNK, k, entries,
                                        first, entries * sizeof(layout_node));
        if (valid) {
            s->chunk[k] = (layout_node *)(s->map + off + LAYOUT_REGION_BODY);
            continue;
        }
        s->chunk[k] = NULL; /* a failed commit may have attached it */
        if (needed)
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-NODE-2: node chunk %u at %llu invalid", k,
                              (unsigned long long)off);
        if (off) {
            int rc = s->io->store64(s->io, &s->hdr->node_chunk[k], 0);
            if (rc)
                return coord_fail(err, rc, "cannot clear node chunk %u", k);
        }
    }
    return 0;
}

/* F-HASH-3: slots filled by an unpublished group name nodes past
 * node_count.  Clearing them is safe: no published id probed past a slot
 * that was filled after it was inserted. */
static int repair_hash(coord_store *s)
{
    for (uint64_t i = 0; i < s->roots.hash_slots; i++) {
        uint64_t v = s->hash[i];
        if (v && ((uint32_t)v == 0 || (uint32_t)v - 1 >= s->roots.node_count)) {
            int rc = s->io->store64(s->io, &s->hash[i], 0);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int zero_entry(coord_store *s, layout_node *e)
{
    static const layout_node zero;
    if (memcmp(e, &zero, sizeof(zero)) == 0)
        return 0;
    uint64_t *w = (uint64_t *)e;
    for (size_t i = 0; i < sizeof(*e) / sizeof(uint64_t); i++) {
        int rc = s->io->store64(s->io, &w[i], 0);
        if (rc)
            return rc;
    }
    return 0;
}

/* F-NODE-3: entries past node_count are zero in a recovered file. */
static int repair_entries(coord_store *s)
{
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++) {
        if (!s->chunk[k])
            continue;
        uint64_t first = layout_node_chunk_first(k);
        uint64_t entries = layout_node_chunk_entries(k);
        uint64_t from = s->roots.node_count > first ? s->roots.node_count - first : 0;
        for (uint64_t i = from; i < entries; i++) {
            int rc = zero_entry(s, &s->chunk[k][i]);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Walk node n's versions back from `head` to the newest one inside the
 * recovered snapshot.  Versions past the committed end are read up to the
 * file size: their bytes are what the crashed commit wrote, so each one is
 * checksummed before its prev link is trusted. */
static int walk_back(coord_store *s, uint32_t n, const layout_node *e,
                     uint64_t head, uint64_t *found, coord_error *err)
{
    uint64_t cur = head;
    for (;;) {
        bool committed = cur < s->roots.committed_end;
        uint64_t end = committed ? s->roots.committed_end : s->file_size;
        const layout_concept *c = coord_version_at(s, cur, end, n, e->id);
        if (!c || !layout_rec_verify(&c->rec))
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-REC-2: node %u: version at %llu is damaged; "
                              "its committed version cannot be found", n,
                              (unsigned long long)cur);
        if (committed && c->rec.seq <= s->roots.last_seq) {
            *found = cur;
            return 0;
        }
        if (c->prev == 0 || c->prev >= cur)
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-REC-2: node %u: no committed version before "
                              "%llu", n, (unsigned long long)cur);
        cur = c->prev;
    }
}

/* F-REC-2: heads newer than the snapshot go back to its newest version. */
static int repair_heads(coord_store *s, coord_error *err)
{
    for (uint64_t n = 0; n < s->roots.node_count; n++) {
        layout_node *e = coord_node_entry(s, (uint32_t)n);
        uint64_t head = e->head;
        const layout_concept *c =
            coord_version_at(s, head, s->roots.committed_end, (uint32_t)n, e->id);
        if (c && c->rec.seq <= s->roots.last_seq)
            continue;
        uint64_t found = 0;
        int rc = walk_back(s, (uint32_t)n, e, head, &found, err);
        if (rc)
            return rc;
        rc = s->io->store64(s->io, &e->head, found);
        if (rc)
            return coord_fail(err, rc, "cannot repair node %llu",
                              (unsigned long long)n);
    }
    return 0;
}

/* F-REC-7: a synced generation can outlive its meta slot (the slot is
 * rewritten two commits later, and the rewrite need not reach the disk),
 * so complete groups past the picked meta extend it.  The extended roots
 * are checked as the meta's were, and their chunks attached. */
static int roll_forward(coord_store *s, uint64_t *rolled, coord_error *err)
{
    int rc = coord_roll_forward(s, rolled, err);
    if (rc || !*rolled)
        return rc;
    rc = check_roots(s, &s->roots, err);
    return rc ? rc : attach_chunks(s, err);
}

/* Publish a rolled-forward generation G without rewriting the slot live
 * readers are reading (F-META-2): the published generation M's slot is
 * M % 2, so when G has the same parity, G - 1 (its roots are in its commit
 * record, which roll-forward verified) goes into the other slot and is
 * published first; then G's slot is no longer read by anyone. */
static int publish_rolled(coord_store *s, uint64_t published)
{
    uint64_t gen = s->roots.generation;
    if (gen % 2 == published % 2) {
        const layout_commit *last =
            (const layout_commit *)(s->map + s->roots.last_commit);
        const layout_commit *prev =
            (const layout_commit *)(s->map + last->prev_commit);
        int rc = coord_write_meta_roots(s, &prev->roots);
        if (!rc)
            rc = s->io->store64(s->io, &s->hdr->generation,
                                prev->roots.generation);
        if (rc)
            return rc;
    }
    int rc = coord_write_meta(s);
    if (!rc)
        rc = s->io->store64(s->io, &s->hdr->generation, gen);
    if (!rc)
        syscall(SYS_futex, (uint32_t *)(void *)&s->hdr->generation, FUTEX_WAKE,
                INT_MAX, NULL, NULL, 0);
    return rc;
}

int coord_recover(coord_store *s, const layout_meta *meta, bool repair,
                  bool in_slot, coord_error *err)
{
    s->roots = meta->roots; /* the bounds every check below uses */
    int rc = check_roots(s, &s->roots, err);
    if (rc)
        return rc;
    rc = attach_chunks(s, err);
    uint64_t rolled = 0;
    if (!rc && repair)
        rc = roll_forward(s, &rolled, err);
    if (!rc && repair)
        rc = coord_verify_tail(s, err); /* F-REC-5, before any word changes */
    if (rc || !repair)
        return rc;
    /* F-META-2: only a generation whose meta slot is in place may be
     * published; a rolled-forward one gets its slot at the end, and roots
     * from a checkpoint's commit record (F-REC-9) theirs now: both slots
     * are torn, and a reader woken by the word would find neither. */
    if (!in_slot)
        rc = coord_write_meta_roots(s, &meta->roots);
    if (!rc)
        rc = s->io->store64(s->io, &s->hdr->generation, meta->roots.generation);
    if (!rc)
        rc = repair_hash(s);
    if (!rc)
        rc = repair_entries(s);
    if (rc)
        return coord_fail(err, rc, "cannot repair the index words");
    rc = repair_heads(s, err);
    if (!rc)
        rc = coord_adj_repair(s, err); /* F-REC-4 */
    if (rc)
        return rc;
    rc = s->io->sync(s->io, s->fd);
    if (rc)
        return coord_fail(err, rc, "cannot sync the repaired file");
    coord_count_sync(s);
    /* F-REC-7: the rolled-forward generation gets its meta only once its
     * index words are durable */
    rc = rolled ? publish_rolled(s, meta->roots.generation) : 0;
    if (rc)
        return coord_fail(err, rc, "F-REC-7: cannot write the meta of "
                          "generation %llu", (unsigned long long)s->roots.generation);
    return 0;
}
