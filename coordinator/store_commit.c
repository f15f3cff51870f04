/*
 * coordinator/store_commit.c — publishing the open group as one generation
 * (docs/format.md §8, F-META-2, F-LOG-7).
 *
 * Order, and why:
 *   1. plan: the group's records are already laid out from the committed
 *      end; after them come any new regions (node chunks, a doubled hash
 *      table, adjacency blocks) and last the commit record, whose end is the
 *      new committed_end.
 *   2. extend the file if needed (large fallocate steps, never past
 *      map_reserve).
 *   3. write the records and the commit record — one pwrite when no region
 *      is allocated, which is nearly always; when that write continues a
 *      durable log in a checkpointed file and the group must be durable,
 *      it is a pwrite_sync (RWF_DSYNC), which also carries the group's new
 *      adjacency blocks, and step 5 is skipped (F-COM-6).
 *   4. store the words only the group's own regions and new nodes are
 *      reached through: new chunk offsets, new node entries (written whole
 *      with pwrite before any hash slot names the node), hash slots; then
 *      write meta slot gen % 2.
 *   5. fdatasync if syncing and step 3 did not (one per commit, see below).
 *   6. store the words that make committed structures point into the
 *      group: heads of older nodes, then adjacency entries, count words,
 *      superseded words and adjacency heads (store_assoc.c).  Readers may
 *      see any of these early; they ignore anything with seq past their
 *      snapshot or at/after its committed_end (F-LOG-7).
 *   7. release-store the generation and wake futex waiters; store
 *      durable_end (the end of the generation before: this one's step-6
 *      words are not yet on disk).
 *
 * One fdatasync, not two.  LMDB syncs the data before it writes the meta
 * because its meta is the only thing that vouches for the data.  Here every
 * record carries its own checksum and every commit record chains to the
 * previous one, so recovery does not trust a meta slot for what lies past
 * `durable_end` (F-HDR-7): it verifies that range record by record and keeps
 * the longest prefix of complete groups (F-REC-5..7), as SQLite's WAL and
 * PostgreSQL do with their checksummed logs.  A power cut before the single
 * sync returns may therefore leave the meta on disk without its records;
 * recovery then lands on the previous generation, which was the last one
 * acknowledged (F-REC-8 takes the other meta slot instead of rebuilding).
 * Nothing is acknowledged before the sync returns, so no acknowledged write
 * depends on the order in which pages reach the disk; and since no word of
 * a committed structure points into the group before the sync (step 6),
 * recovery never meets such a word naming a record that did not survive.
 * A failure before step 4 leaves nothing visible (bytes past committed_end
 * are logically absent): the group is dropped and the store stays usable.
 * A failure from step 4 on leaves words that recovery must undo, so the
 * store turns read-only until it is re-verified or reopened; a failure
 * after the meta slot was written also invalidates the slot and the commit
 * record, so that the group, reported failed, does not come back at the
 * next start.
 *
 * Ranged syncs (F-COM-6).  fdatasync writes every dirty page of the file:
 * besides the log, each commit dirties the meta slot, the header and a hash
 * slot and node entry page per new concept, scattered through the file, and
 * those writes, not the log's, set the cost of a durable commit.  Once the
 * file has a durable checkpoint (durable_commit, F-HDR-8), recovery needs
 * nothing but the log past it: the groups are checksummed and chained, and
 * F-REC-7/F-REC-9 roll forward over them from any older slot or from the
 * checkpoint itself.  So a group that continues a durable log is made
 * durable by syncing its own write, before any word or slot names it; the
 * index pages follow at the committer's checkpoint (a full sync at most
 * COORD_CHECKPOINT_MS after a commit) or when the kernel writes them back.
 *
 * Concurrency: committer thread only.
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sutra/sutra.h"

typedef struct commit_plan {
    uint64_t chunk_off[LAYOUT_NODE_CHUNKS]; /* 0 = not allocated here     */
    uint64_t hash_off;                      /* 0 = keep the current table */
    uint64_t hash_slots;
    bool hash_filled;                       /* hash_off is the table the
                                               helper filled (store_grow.c) */
    uint64_t grow_off, grow_slots;          /* the next table, allocated
                                               here, named by no roots      */
    uint64_t commit_off, commit_len;
    layout_roots roots;                     /* of the new generation      */
} commit_plan;

/* ---- 1. plan ---------------------------------------------------------- */

/* Place from *cursor the node chunks and the hash table a group of `nodes`
 * nodes needs (F-NODE-2, F-HASH-4); with p NULL, only advance *cursor.
 * `ahead`: also the next table's region when the load has passed 3/8
 * (store_grow.c).  That region is never needed: callers plan without it
 * when the group would not fit with it (plan_fits_ahead). */
static int plan_regions(const coord_store *s, uint64_t nodes, commit_plan *p,
                        uint64_t *cursor, bool ahead, coord_error *err)
{
    for (uint32_t k = 0;
         k < LAYOUT_NODE_CHUNKS && layout_node_chunk_first(k) < nodes; k++) {
        if (s->chunk[k])
            continue;
        if (k > COORD_MAX_NODE_CHUNK)
            return coord_fail(err, SUTRA_EFULL, "node table full");
        uint64_t off = layout_align_up(*cursor, LAYOUT_REGION_ALIGN);
        if (p)
            p->chunk_off[k] = off;
        *cursor = off + LAYOUT_REGION_BODY +
                  layout_node_chunk_entries(k) * sizeof(layout_node);
    }
    uint64_t slots = s->roots.hash_slots;
    if (p)
        p->hash_slots = slots;
    if (nodes * LAYOUT_HASH_MAX_LOAD_DEN <= slots * LAYOUT_HASH_MAX_LOAD_NUM) {
        /* Past three eighths, the next table's region, for the helper to
         * fill (store_grow.c); named when the load passes one half. */
        if (!ahead || s->grow || s->grow_refused == slots ||
            nodes * COORD_GROW_AT_DEN <= slots * COORD_GROW_AT_NUM ||
            slots * 2 > COORD_MAX_HASH_SLOTS)
            return 0;
        uint64_t off = layout_align_up(*cursor, LAYOUT_REGION_ALIGN);
        if (p) {
            p->grow_off = off;
            p->grow_slots = slots * 2;
        }
        *cursor = off + LAYOUT_REGION_BODY + slots * 2 * sizeof(uint64_t);
        return 0;
    }
    uint64_t filled_off, filled_slots;
    if (coord_grow_ready(s, nodes, &filled_off, &filled_slots)) {
        if (p) {
            p->hash_slots = filled_slots;
            p->hash_off = filled_off;
            p->hash_filled = true;
        }
        return 0;
    }
    /* F-HASH-4: double until the load is at most one half. */
    while (nodes * LAYOUT_HASH_MAX_LOAD_DEN > slots * LAYOUT_HASH_MAX_LOAD_NUM)
        slots *= 2;
    if (slots > COORD_MAX_HASH_SLOTS)
        return coord_fail(err, SUTRA_EFULL, "hash index full");
    uint64_t off = layout_align_up(*cursor, LAYOUT_REGION_ALIGN);
    if (p) {
        p->hash_slots = slots;
        p->hash_off = off;
    }
    *cursor = off + LAYOUT_REGION_BODY + slots * sizeof(uint64_t);
    return 0;
}

/* The commit record of `entries` entries after `cursor` (F-COM-1): its
 * offset, its length and the end of the group. */
static uint64_t plan_record(uint64_t cursor, uint64_t entries, uint64_t *off,
                            uint64_t *len)
{
    *off = layout_align_up(cursor, LAYOUT_RECORD_ALIGN);
    *len = sizeof(layout_commit) + entries * sizeof(layout_commit_entry);
    return layout_align_up(*off + *len, LAYOUT_RECORD_ALIGN);
}

static int fail_full(const coord_store *s, coord_error *err)
{
    return coord_fail(err, SUTRA_EFULL,
                      "the file would pass its maximum size (%llu bytes)",
                      (unsigned long long)s->map_reserve);
}

static int group_fits(const coord_store *s, uint64_t more_bytes,
                      uint64_t more_blocks, uint64_t nodes, uint64_t entries,
                      bool ahead, coord_error *err)
{
    const coord_group *g = &s->group;
    uint64_t cursor = g->base + g->len + more_bytes;
    uint64_t blocks = g->assoc.block_bytes + more_blocks;
    if (cursor < g->base || cursor > s->map_reserve ||
        blocks > s->map_reserve)
        return fail_full(s, err);
    int rc = plan_regions(s, nodes, NULL, &cursor, ahead, err);
    if (rc)
        return rc;
    /* Blocks are multiples of the region alignment, laid end to end. */
    if (blocks)
        cursor = layout_align_up(cursor, LAYOUT_REGION_ALIGN) + blocks;
    uint64_t off, len;
    uint64_t end = plan_record(cursor, entries, &off, &len);
    if (end > s->map_reserve || end < cursor || len > UINT32_MAX)
        return fail_full(s, err);
    return 0;
}

/* A group that fits only without the next table's region gets none: the
 * table then doubles on the commit path as before (store_grow.c). */
int coord_group_fits(const coord_store *s, uint64_t more_bytes,
                     uint64_t more_blocks, uint64_t nodes, uint64_t entries,
                     coord_error *err)
{
    int rc = group_fits(s, more_bytes, more_blocks, nodes, entries, true, err);
    if (rc == SUTRA_EFULL)
        rc = group_fits(s, more_bytes, more_blocks, nodes, entries, false, err);
    return rc;
}

static int plan_commit(coord_store *s, commit_plan *p, coord_error *err)
{
    const coord_group *g = &s->group;
    uint64_t end = 0;
    for (int ahead = 1; ahead >= 0; ahead--) {
        memset(p, 0, sizeof(*p));
        uint64_t cursor = g->base + g->len;
        int rc = plan_regions(s, g->roots.node_count, p, &cursor, ahead, err);
        if (!rc)
            rc = coord_assoc_plan(s, &cursor, err);
        if (rc)
            return rc;
        end = plan_record(cursor, g->entry_count, &p->commit_off,
                          &p->commit_len);
        if ((end <= s->map_reserve && p->commit_len <= UINT32_MAX) ||
            !p->grow_off)
            break;
    }
    if (end > s->map_reserve || p->commit_len > UINT32_MAX)
        return fail_full(s, err);
    p->roots = g->roots;
    p->roots.generation = s->roots.generation + 1;
    p->roots.committed_end = end;
    p->roots.commit_ns = coord_now_ns();
    p->roots.hash_root = p->hash_off ? p->hash_off : s->roots.hash_root;
    p->roots.hash_slots = p->hash_slots;
    p->roots.last_commit = p->commit_off;
    return 0;
}

/* The commit record goes at the tail of the group buffer (F-COM-1). */
static int build_commit_record(coord_store *s, const commit_plan *p,
                               coord_error *err)
{
    coord_group *g = &s->group;
    if (coord_group_reserve(g, g->len + p->commit_len))
        return coord_fail(err, ENOMEM, "no memory for the commit record");
    layout_commit *c = (layout_commit *)(g->buf + g->len);
    memset(c, 0, p->commit_len);
    c->rec.type = LAYOUT_REC_COMMIT;
    c->rec.length = (uint32_t)p->commit_len;
    c->rec.seq = p->roots.last_seq;
    c->roots = p->roots;
    c->prev_commit = s->roots.last_commit;
    c->first_seq = g->first_seq;
    c->request_count = g->entry_count;
    memcpy(c + 1, g->entries, (size_t)g->entry_count * sizeof(*g->entries));
    layout_rec_seal(&c->rec);
    return 0;
}

/* ---- 2. extend -------------------------------------------------------- */

static int ensure_size(coord_store *s, uint64_t need, coord_error *err)
{
    if (need <= s->file_size)
        return 0;
    /* Large steps keep fallocate off the common path; never past the
     * reserve, which readers map (F-HDR-2). */
    uint64_t step = s->file_size / 8 > COORD_GROW_MIN ? s->file_size / 8
                                                      : COORD_GROW_MIN;
    uint64_t target = need > s->file_size + step ? need : s->file_size + step;
    target = layout_align_up(target, LAYOUT_PAGE_SIZE);
    if (target > s->map_reserve)
        target = s->map_reserve;
    int rc = s->io->extend(s->io, s->fd, s->file_size, target);
    if (rc)
        return coord_fail(err, rc, "cannot extend the file to %llu bytes: %s",
                          (unsigned long long)target, strerror(rc));
    s->file_size = target;
    return 0;
}

/* ---- 3. write --------------------------------------------------------- */

int coord_write_zeros(coord_store *s, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[1u << 16];
    while (from < to) {
        uint64_t n = to - from < sizeof(zeros) ? to - from : sizeof(zeros);
        int rc = s->io->pwrite(s->io, s->fd, zeros, (size_t)n, from);
        if (rc)
            return rc;
        from += n;
    }
    return 0;
}

/* A region: zero padding from `prev_end`, its descriptor, and zeros over
 * any part of the body that lies where stale bytes may remain. */
layout_region coord_region_header(uint16_t type, uint64_t arg0, uint64_t arg1,
                                  uint64_t arg2, uint64_t reserved0,
                                  uint64_t body_len)
{
    layout_region r = {0};
    r.rec.type = type;
    r.rec.flags = LAYOUT_REC_F_REGION;
    r.rec.length = layout_region_length(LAYOUT_REGION_BODY + body_len);
    r.arg0 = arg0;
    r.arg1 = arg1;
    r.arg2 = arg2;
    r.reserved[0] = reserved0;
    layout_rec_seal(&r.rec);
    return r;
}

int coord_write_region(coord_store *s, uint64_t prev_end, uint64_t off,
                       const layout_region *r, uint64_t body_len,
                       uint64_t dirty_end)
{
    /* The body's zeros before the descriptor: a power cut can keep a page
     * as it was between two writes, and a descriptor that checks over the
     * bytes of a discarded group (an adjacency block's count word holding
     * a region header, say) would let recovery accept the group and then
     * refuse the block.  Without the descriptor the group does not verify
     * and is discarded again (F-REC-7). */
    int rc = coord_write_zeros(s, prev_end, off);
    uint64_t body = off + LAYOUT_REGION_BODY, end = body + body_len;
    if (!rc && body < dirty_end)
        rc = coord_write_zeros(s, body, end < dirty_end ? end : dirty_end);
    if (!rc)
        rc = s->io->pwrite(s->io, s->fd, r, sizeof(*r), off);
    return rc;
}

static int write_regions(coord_store *s, const commit_plan *p,
                         uint64_t dirty_end, uint64_t *cursor)
{
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++) {
        if (!p->chunk_off[k])
            continue;
        uint64_t entries = layout_node_chunk_entries(k);
        uint64_t body = entries * sizeof(layout_node);
        layout_region r = coord_region_header(LAYOUT_REC_NODE_CHUNK, k,
                                              entries,
                                              layout_node_chunk_first(k), 0,
                                              body);
        int rc = coord_write_region(s, *cursor, p->chunk_off[k], &r, body,
                                    dirty_end);
        if (rc)
            return rc;
        *cursor = p->chunk_off[k] + LAYOUT_REGION_BODY + body;
    }
    /* A doubled table, or the next one for the helper: never both. */
    uint64_t table_off = 0, table_slots = 0;
    if (p->hash_off && !p->hash_filled) {
        table_off = p->hash_off;
        table_slots = p->hash_slots;
    } else if (p->grow_off) {
        table_off = p->grow_off;
        table_slots = p->grow_slots;
    }
    if (table_off) {
        uint64_t body = table_slots * sizeof(uint64_t);
        layout_region r = coord_region_header(LAYOUT_REC_HASH_TABLE,
                                              table_slots, 0, 0, 0, body);
        int rc = coord_write_region(s, *cursor, table_off, &r, body,
                                    dirty_end);
        if (rc)
            return rc;
        *cursor = table_off + LAYOUT_REGION_BODY + body;
    }
    return coord_assoc_write_blocks(s, dirty_end, cursor); /* F-ADJ-1 */
}

/* Whether the only regions the group allocates are adjacency blocks. */
static bool only_adjacency_blocks(const commit_plan *p)
{
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++)
        if (p->chunk_off[k])
            return false;
    return !p->grow_off && (!p->hash_off || p->hash_filled);
}

/* Whether the group can be made durable by syncing its own bytes (F-COM-6):
 * one contiguous write that continues a durable log, in a file whose
 * durable checkpoint lets recovery do without the meta slots (F-REC-9).
 * The write holds the records and the commit record, and between them any
 * adjacency blocks the group allocates (lay_out_blocks), up to
 * COORD_RANGED_BLOCK_BYTES of them: small regions whose zero bodies cost
 * less to write than a whole-file sync.  Node chunks and hash tables are
 * written as before, with a whole-file sync.  A group that names the table
 * filled ahead qualifies: its slots need not be durable with it, since
 * recovery fills again a table that the durable checkpoint's commit does
 * not name (F-REC-5). */
static bool can_sync_range(const coord_store *s, const commit_plan *p)
{
    const coord_group *g = &s->group;
    uint64_t records_end = g->base + g->len;
    return s->checkpointed && s->log_durable_end == g->base &&
           only_adjacency_blocks(p) &&
           p->commit_off - records_end <= COORD_RANGED_BLOCK_BYTES;
}

/* For a ranged group that allocates adjacency blocks: lay the blocks out in
 * the group's buffer between the records and the commit record (moved to
 * its planned offset), with the zeros before and inside each, so the whole
 * group is one write.  0 or ENOMEM. */
static int lay_out_blocks(coord_store *s, const commit_plan *p)
{
    coord_group *g = &s->group;
    uint64_t records = g->len, commit = p->commit_off - g->base;
    if (coord_group_reserve(g, commit + p->commit_len))
        return ENOMEM;
    memmove(g->buf + commit, g->buf + records, p->commit_len);
    memset(g->buf + records, 0, commit - records);
    coord_assoc_lay_out_blocks(s, g->buf, g->base);
    return 0;
}

static int write_group(coord_store *s, const commit_plan *p, bool ranged,
                       coord_error *err)
{
    coord_group *g = &s->group;
    uint64_t dirty_end = s->dirty_end;
    /* Whatever happens below, these bytes are no longer known to be zero. */
    if (p->roots.committed_end > s->dirty_end)
        s->dirty_end = p->roots.committed_end;
    int rc;
    if (ranged) {
        if (p->commit_off != g->base + g->len && lay_out_blocks(s, p) != 0)
            return coord_fail(err, ENOMEM, "no memory to lay out the group");
        rc = s->io->pwrite_sync(s->io, s->fd, g->buf,
                                p->commit_off + p->commit_len - g->base,
                                g->base);
        /* Any error, ENOSPC included, may be the sync's: it reports every
         * writeback error of the file since the last one (pages it
         * dropped, not just these), and once reported the next fdatasync
         * succeeds without them.  So the store turns read-only like after
         * a failed fdatasync (F-COM-5, F-COM-6) and only re-verification
         * (coord_store_reverify) rewrites and syncs what may be lost. */
        if (rc) {
            s->read_only = true;
            return coord_fail(err, rc, "cannot write and sync the group: %s",
                              strerror(rc));
        }
        coord_count_sync(s);
        return 0;
    }
    if (p->commit_off == g->base + g->len) {
        rc = s->io->pwrite(s->io, s->fd, g->buf, g->len + p->commit_len, g->base);
    } else {
        uint64_t cursor = g->base + g->len;
        rc = s->io->pwrite(s->io, s->fd, g->buf, g->len, g->base);
        if (!rc)
            rc = write_regions(s, p, dirty_end, &cursor);
        if (!rc)
            rc = coord_write_zeros(s, cursor, p->commit_off);
        if (!rc)
            rc = s->io->pwrite(s->io, s->fd, g->buf + g->len, p->commit_len,
                               p->commit_off);
    }
    if (rc)
        return coord_fail(err, rc, "cannot write the group: %s", strerror(rc));
    return 0;
}

/* ---- 4. in-place words ------------------------------------------------ */

static int store_chunks(coord_store *s, const commit_plan *p)
{
    for (uint32_t k = 0; k < LAYOUT_NODE_CHUNKS; k++) {
        if (!p->chunk_off[k])
            continue;
        int rc = s->io->store64(s->io, &s->hdr->node_chunk[k], p->chunk_off[k]);
        if (rc)
            return rc;
        s->chunk[k] = (layout_node *)(s->map + p->chunk_off[k] + LAYOUT_REGION_BODY);
    }
    return 0;
}

/* Entries of new nodes written per pwrite: a run of consecutive nodes in
 * one chunk, at most this many. */
#define NEW_NODES_PER_WRITE 64u

typedef struct node_run {
    layout_node entries[NEW_NODES_PER_WRITE];
    uint32_t first;     /* node number of entries[0]                    */
    uint32_t chunk;     /* the chunk holding them                       */
    uint32_t count;
} node_run;

static int node_run_write(coord_store *s, node_run *run)
{
    if (!run->count)
        return 0;
    const layout_node *e = coord_node_entry(s, run->first);
    int rc = s->io->pwrite(s->io, s->fd, run->entries,
                           run->count * sizeof(layout_node),
                           (uint64_t)((const uint8_t *)e - s->map));
    run->count = 0;
    return rc;
}

/*
 * F-NODE-1, F-COM-4: the whole entry of every new node (id, first_seq and
 * head) before any hash slot names it.  Nothing reaches an entry past the
 * published node_count, so these are written as file bytes, with pwrite,
 * rather than stored word by word through the mapping: the new nodes of a
 * group fill consecutive entries, and the first store through the mapping
 * to each fresh page of the table costs a page fault (with its write
 * notification to the filesystem), which pwrite does not.  The entries'
 * adjacency words stay zero until store_assoc.c stores them after the sync.
 */
static int write_new_nodes(coord_store *s)
{
    const coord_group *g = &s->group;
    node_run run;
    run.count = 0;
    for (uint32_t i = 0; i < g->staged_count; i++) {
        const coord_staged *st = &g->staged[i];
        if (!st->is_new)
            continue;
        uint32_t k;
        uint64_t index; /* unused: runs are cut at chunk boundaries */
        layout_node_locate(st->node, &k, &index);
        if (run.count == NEW_NODES_PER_WRITE ||
            (run.count && (st->node != run.first + run.count || k != run.chunk))) {
            int rc = node_run_write(s, &run);
            if (rc)
                return rc;
        }
        if (!run.count) {
            run.first = st->node;
            run.chunk = k;
        }
        layout_node *e = &run.entries[run.count++];
        memset(e, 0, sizeof(*e));
        memcpy(e->id, st->id, 16);
        e->first_seq = st->first_seq;
        e->head = st->head;
    }
    return node_run_write(s, &run);
}

#define HASH_PREFETCH_AHEAD 8

/* F-HASH-4: a doubled table holds every node; the old one is left exactly
 * as it is for snapshots that still name it. */
static int store_hash(coord_store *s, const commit_plan *p)
{
    const coord_group *g = &s->group;
    if (p->hash_filled)
        return coord_grow_complete(s, g->roots.node_count);
    if (p->hash_off) {
        uint64_t *table = (uint64_t *)(s->map + p->hash_off + LAYOUT_REGION_BODY);
        for (uint64_t n = 0; n < g->roots.node_count; n++) {
            const layout_node *e = coord_node_entry(s, (uint32_t)n);
            int rc = coord_hash_insert(s, table, p->hash_slots, e->id, (uint32_t)n);
            if (rc)
                return rc;
        }
        return 0;
    }
    for (uint32_t i = 0; i < g->staged_count; i++) {
        const coord_staged *st = &g->staged[i];
        /* The slots are random lines of a table larger than the caches:
         * start loading the one a few entries on while this one is filled. */
        if (i + HASH_PREFETCH_AHEAD < g->staged_count)
            coord_hash_prefetch(s, g->staged[i + HASH_PREFETCH_AHEAD].id);
        if (!st->is_new)
            continue;
        int rc = coord_hash_insert(s, s->hash, s->roots.hash_slots, st->id, st->node);
        if (rc)
            return rc;
    }
    return 0;
}

/* F-NODE-1: the new head of every existing node the group wrote (a new
 * node's entry already names its head: write_new_nodes). */
static int store_heads(coord_store *s)
{
    const coord_group *g = &s->group;
    for (uint32_t i = 0; i < g->staged_count; i++) {
        const coord_staged *st = &g->staged[i];
        if (!st->touched || st->is_new)
            continue;
        layout_node *e = coord_node_entry(s, st->node);
        int rc = s->io->store64(s->io, &e->head, st->head);
        if (rc)
            return rc;
    }
    return 0;
}

/* F-META-2: the whole slot, word by word; a torn slot fails its checksum
 * and the other slot still holds the previous generation. */
static int store_meta(coord_store *s, const commit_plan *p)
{
    layout_meta m = {0};
    m.roots = p->roots;
    m.file_size = s->file_size;
    /* F-META-6: the next table, for a restart to take up again */
    if (!p->hash_off)
        m.next_hash_root = p->grow_off ? p->grow_off : coord_grow_region(s);
    layout_meta_seal(&m);
    uint64_t off = p->roots.generation % 2 ? LAYOUT_META_OFFSET_1
                                           : LAYOUT_META_OFFSET_0;
    uint64_t *dst = (uint64_t *)(void *)(s->map + off);
    const uint64_t *src = (const uint64_t *)(const void *)&m;
    for (size_t i = 0; i < sizeof(m) / sizeof(uint64_t); i++) {
        int rc = s->io->store64(s->io, &dst[i], src[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* F-REC-7: a group whose commit failed before its meta slot was complete
 * was reported failed, so its commit record (complete, perhaps, in the page
 * cache) is spoiled: no later recovery rolls forward into it.  Best effort
 * and not synced: a crash right here may still let the group through,
 * whole, which F-REC-7 allows for a group never acknowledged. */
static void retract(coord_store *s, const commit_plan *p)
{
    if (p->commit_off + sizeof(uint64_t) <= s->file_size)
        (void)s->io->store64(s->io, (uint64_t *)(void *)(s->map + p->commit_off),
                             0);
}

/* F-COM-5: a commit that failed after its meta slot was written was reported
 * failed:
 * the slot (complete in the page cache, perhaps on disk) must not let a
 * later recovery bring it back.  Best effort, like retract(): a crash
 * before these stores reach the disk may still let the group through,
 * whole, which F-REC-7 allows for a group never acknowledged;
 * re-verification invalidates the slot for good. */
static void invalidate_meta(coord_store *s, const commit_plan *p)
{
    uint64_t off = p->roots.generation % 2 ? LAYOUT_META_OFFSET_1
                                           : LAYOUT_META_OFFSET_0;
    (void)s->io->store64(s->io, (uint64_t *)(void *)(s->map + off), 0);
    retract(s, p);
}

/* F-COM-4: what may reach the disk before the group's records does: words
 * that only the group's own regions or new node numbers are reached
 * through (chunk offsets, new node entries, hash slots — recovery validates
 * or clears each of them when it discards the group) and the meta slot
 * (recovery checks the records it names).  What may not: the words that
 * make committed structures point into the group (heads of existing
 * nodes, adjacency entries, counts, superseded and list heads), so they
 * are stored after the sync; until the next sync only the log holds them,
 * and recovery replays them from there (F-REC-5). */
static int publish(coord_store *s, const commit_plan *p, bool full_sync,
                   coord_error *err)
{
    int rc = store_chunks(s, p);
    if (!rc)
        rc = write_new_nodes(s);
    if (!rc)
        rc = store_hash(s, p);
    if (!rc)
        rc = store_meta(s, p);
    if (rc) {
        retract(s, p);
        return coord_fail(err, rc, "cannot store the index words: %s",
                          rc > 0 ? strerror(rc) : "index full");
    }
    if (full_sync) {
        /* Earlier unsynced generations may have been in a failed
         * writeback too: the caller turns the store read-only, and nothing
         * is reported durable until coord_store_reverify() has rewritten
         * and synced them. */
        rc = s->io->sync(s->io, s->fd);
        if (rc) {
            invalidate_meta(s, p);
            return coord_fail(err, rc, "fdatasync failed: %s", strerror(rc));
        }
        coord_count_sync(s);
    }
    rc = store_heads(s);
    if (!rc)
        rc = coord_assoc_publish(s); /* entries, counts, superseded, heads */
    if (rc) {
        invalidate_meta(s, p);
        return coord_fail(err, rc, "cannot store the index words: %s",
                          rc > 0 ? strerror(rc) : "index full");
    }
    rc = s->io->store64(s->io, &s->hdr->generation, p->roots.generation);
    if (rc) {
        invalidate_meta(s, p);
        return coord_fail(err, rc, "cannot publish the generation");
    }
    /* F-GEN-3: waiters in other processes sleep on the low 32 bits, so the
     * wake is not FUTEX_PRIVATE. */
    syscall(SYS_futex, (uint32_t *)(void *)&s->hdr->generation, FUTEX_WAKE,
            INT_MAX, NULL, NULL, 0);
    return 0;
}

/* ---- zeros ahead ------------------------------------------------------ */

#define ZERO_AHEAD (2u << 20) /* bytes past the committed end kept written */
#define ZERO_CHUNK (256u << 10)

/*
 * The file grows by fallocate, whose extents are "unwritten": the first
 * write into each one must also convert it, a journal commit that a
 * ranged sync then waits for.  Writing zeros a little ahead of the log
 * (page cache only, never synced) lets the kernel do that work off the
 * commit path: a synced 3.5 KiB append took 133 µs p50 without it and
 * 75-83 µs with 1-32 MiB of zeros ahead (ext4, docs/performance.md).  Bytes
 * past committed_end are logically absent (F-REC-1), so zeros there change
 * nothing; a failure here is left to the next group's own write to report.
 */
static void zero_ahead(coord_store *s)
{
    uint64_t from = layout_align_up(s->roots.committed_end, LAYOUT_PAGE_SIZE);
    if (s->zeroed_end > from)
        from = s->zeroed_end;
    uint64_t want = s->roots.committed_end + ZERO_AHEAD;
    if (want > s->file_size)
        want = s->file_size;
    while (from + ZERO_CHUNK <= want && coord_write_zeros(s, from, from + ZERO_CHUNK) == 0)
        from += ZERO_CHUNK;
    s->zeroed_end = from;
}

/* ---- the next hash table ---------------------------------------------- */

/* store_grow.c: start filling a table this group allocated, let the helper
 * catch up with the new generation, or forget a table that a doubling on
 * the commit path made useless.  A helper that cannot start leaves its
 * region as dead space; the table then doubles on the commit path. */
static void grow_after_commit(coord_store *s, const commit_plan *p)
{
    if (p->grow_off) {
        if (coord_grow_start(s, p->grow_off, p->grow_slots) != 0)
            s->grow_refused = s->roots.hash_slots; /* not once per group */
        return;
    }
    if (p->hash_off && !p->hash_filled)
        coord_grow_abandon(s);
    coord_grow_published(s);
}

/* ---- the whole commit ------------------------------------------------- */

static void fill_info(const coord_store *s, coord_commit_info *out,
                      uint64_t first_seq)
{
    if (!out)
        return;
    out->generation = s->roots.generation;
    out->first_seq = first_seq;
    out->last_seq = s->roots.last_seq;
    out->committed_end = s->roots.committed_end;
    out->synced = s->synced;
    out->durable = s->synced || s->log_durable_end == s->roots.committed_end;
}

int coord_store_commit(coord_store *s, bool sync, coord_commit_info *out,
                       coord_error *err)
{
    if (s->read_only)
        return coord_fail(err, SUTRA_EREADONLY,
                          "the store stopped accepting writes after an I/O "
                          "error");
    coord_group *g = &s->group;
    if (!coord_store_group_pending(s)) {
        fill_info(s, out, 0);
        return 0;
    }
    sync = sync || g->wants_sync;
    commit_plan p = {0};
    int rc = plan_commit(s, &p, err);
    if (!rc)
        rc = build_commit_record(s, &p, err);
    if (!rc)
        rc = ensure_size(s, p.roots.committed_end, err);
    bool ranged = sync && can_sync_range(s, &p);
    /* a whole-file sync must not overlap a sync begun beside (store.h) */
    if (!rc && sync && !ranged && s->sync_gate)
        rc = s->sync_gate(s->sync_gate_arg, err);
    if (!rc) {
        rc = write_group(s, &p, ranged, err);
        if (rc)
            retract(s, &p);
    }
    if (!rc) {
        rc = publish(s, &p, sync && !ranged, err);
        if (rc)
            s->read_only = true;
    }
    if (rc) {
        coord_group_reset(s);
        coord_stat_publish(s);
        return rc;
    }
    uint64_t first_seq = g->first_seq;
    layout_roots words_durable = s->roots; /* see below */
    s->roots = p.roots;
    coord_assoc_merge(s);
    if (p.hash_off)
        s->hash = (uint64_t *)(s->map + p.hash_off + LAYOUT_REGION_BODY);
    grow_after_commit(s, &p);
    s->synced = sync && !ranged;
    if (sync)
        s->log_durable_end = p.roots.committed_end;
    /* F-HDR-7: after a full sync, never before, and only as far as the
     * words stored before it: this group's heads and adjacency words were
     * stored after it, so recovery must still replay this group (F-REC-5).
     * A ranged sync leaves both words alone: only the log is durable. */
    if (s->synced)
        (void)coord_store_durable_words(s, &words_durable);
    if (ranged)
        zero_ahead(s);
    coord_group_reset(s);
    coord_stat_publish(s);
    fill_info(s, out, first_seq);
    return 0;
}
