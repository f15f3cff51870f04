/*
 * coordinator/store_adj.c — the committer's view of the adjacency lists
 * already in storage.dat (docs/format.md F-ADJ-*): validating ADJ_BLOCK
 * regions and their chains, walking a list's committed entries, building
 * the in-memory key index from the lists, and repairing the adjacency words
 * after an unclean stop (F-REC-4).
 *
 * The file is hostile input here as everywhere: every block is checked
 * (type, region flag, owner, capacity, size, bounds, checksum, chain
 * consistency) before an entry in it is read, and damage gives
 * SUTRA_ECORRUPT naming the node and the offset.
 *
 * The key index is built lazily, on the first request that needs it (an
 * association op, or forgetting a concept that has adjacency), so opening a
 * file costs nothing for it; a file with no live association builds an
 * empty index without reading anything.
 *
 * Concurrency: committer thread only.  Repair stores words through the io
 * seam with release order, and only words that describe the discarded
 * tail, which no reader snapshot uses.
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <string.h>

#include "sutra/sutra.h"

static uint64_t owner_word(uint32_t node, uint32_t dir)
{
    return (uint64_t)node | ((uint64_t)dir << 32);
}

static uint64_t *count_word(const coord_store *s, uint64_t block)
{
    return (uint64_t *)(void *)(s->map + block + LAYOUT_ADJ_COUNT_OFFSET);
}

static layout_adj_entry *entries_of(const coord_store *s, uint64_t block)
{
    return (layout_adj_entry *)(void *)(s->map + block +
                                        LAYOUT_ADJ_ENTRIES_OFFSET);
}

int coord_adj_block_desc(const coord_store *s, uint64_t off, uint64_t end,
                         uint32_t node, uint32_t dir, coord_adj_block *out)
{
    /* F-ADJ-1: 64-aligned, 256 << k bytes, wholly below `end`. */
    if (off % LAYOUT_REGION_ALIGN != 0 || off < LAYOUT_DATA_START ||
        off >= end || end - off < LAYOUT_ADJ_MIN_BLOCK)
        return SUTRA_ECORRUPT;
    const layout_region *r = (const layout_region *)(s->map + off);
    if (r->rec.type != LAYOUT_REC_ADJ_BLOCK ||
        !(r->rec.flags & LAYOUT_REC_F_REGION) || r->rec.seq != 0)
        return SUTRA_ECORRUPT;
    uint64_t bytes = layout_rec_size(&r->rec);
    if (bytes < LAYOUT_ADJ_MIN_BLOCK || (bytes & (bytes - 1)) != 0 ||
        bytes > end - off)
        return SUTRA_ECORRUPT;
    uint64_t cap = layout_adj_capacity(bytes);
    if (r->arg0 != owner_word(node, dir) || r->arg1 != cap ||
        r->arg2 >= off || r->reserved[1] != 0 || !layout_rec_verify(&r->rec))
        return SUTRA_ECORRUPT;
    *out = (coord_adj_block){off, bytes, cap, 0, r->reserved[0], r->arg2};
    return 0;
}

int coord_adj_block_read(const coord_store *s, uint64_t off, uint64_t end,
                         uint32_t node, uint32_t dir, coord_adj_block *out)
{
    coord_adj_block b;
    int rc = coord_adj_block_desc(s, off, end, node, dir, &b);
    if (rc)
        return rc;
    b.count = __atomic_load_n(count_word(s, off), __ATOMIC_ACQUIRE);
    if (b.count > b.cap)
        return SUTRA_ECORRUPT;
    *out = b;
    return 0;
}

/* F-ADJ-4: each older block is full, half the size, and holds the entries
 * just before this one's. */
static bool chain_link_ok(const coord_adj_block *newer,
                          const coord_adj_block *older)
{
    return older->bytes * 2 == newer->bytes && older->count == older->cap &&
           older->older + older->cap == newer->older;
}

static int chain_check(const coord_store *s, const coord_adj_block *head,
                       uint32_t node, uint32_t dir)
{
    coord_adj_block b = *head;
    while (b.prev) {
        coord_adj_block p;
        if (coord_adj_block_read(s, b.prev, b.off, node, dir, &p) != 0 ||
            !chain_link_ok(&b, &p))
            return SUTRA_ECORRUPT;
        b = p;
    }
    return b.bytes == LAYOUT_ADJ_MIN_BLOCK && b.older == 0 ? 0 : SUTRA_ECORRUPT;
}

static uint64_t *head_word(layout_node *e, uint32_t dir)
{
    return dir == LAYOUT_ADJ_OUT ? &e->out_adj : &e->in_adj;
}

int coord_adj_head(const coord_store *s, uint32_t node, uint32_t dir,
                   coord_adj_block *out, coord_error *err)
{
    memset(out, 0, sizeof(*out));
    if (node >= s->roots.node_count)
        return 0; /* a node of the open group: nothing committed */
    layout_node *e = coord_node_entry(s, node);
    uint64_t head = e ? __atomic_load_n(head_word(e, dir), __ATOMIC_ACQUIRE) : 0;
    if (!head)
        return 0;
    coord_adj_block b;
    if (coord_adj_block_read(s, head, s->roots.committed_end, node, dir, &b) ||
        chain_check(s, &b, node, dir))
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-ADJ-4: node %u %s-list at %llu is damaged", node,
                          dir == LAYOUT_ADJ_OUT ? "out" : "in",
                          (unsigned long long)head);
    *out = b;
    return 0;
}

int coord_adj_entry_off(const coord_store *s, const coord_adj_block *head,
                        uint32_t node, uint32_t dir, uint64_t pos,
                        uint64_t *off)
{
    coord_adj_block b = *head;
    while (b.off && pos < b.older) {
        if (!b.prev ||
            coord_adj_block_read(s, b.prev, b.off, node, dir, &b) != 0)
            return SUTRA_ECORRUPT;
    }
    if (!b.off || pos >= b.older + b.count)
        return SUTRA_ECORRUPT;
    *off = b.off + LAYOUT_ADJ_ENTRIES_OFFSET +
           (pos - b.older) * sizeof(layout_adj_entry);
    return 0;
}

int coord_adj_walk(const coord_store *s, const coord_adj_block *head,
                   uint32_t node, uint32_t dir, coord_adj_visit visit,
                   void *ctx)
{
    coord_adj_block b = *head;
    while (b.off) {
        const layout_adj_entry *e = entries_of(s, b.off);
        for (uint64_t i = 0; i < b.count; i++) {
            uint64_t sup = __atomic_load_n(&e[i].superseded, __ATOMIC_RELAXED);
            int rc = visit(ctx, &e[i], b.older + i, sup);
            if (rc)
                return rc;
        }
        if (!b.prev)
            break;
        if (coord_adj_block_read(s, b.prev, b.off, node, dir, &b) != 0)
            return SUTRA_ECORRUPT;
    }
    return 0;
}

/* ---- the key index ------------------------------------------------------ */

typedef struct index_build {
    coord_store *s;
    uint32_t node;
    uint64_t filled_in;    /* keys whose in-entry was found */
} index_build;

static int index_out_entry(void *ctx, const layout_adj_entry *e, uint64_t pos,
                           uint64_t sup)
{
    index_build *b = ctx;
    coord_store *s = b->s;
    if (!layout_adj_visible(e, sup, s->roots.last_seq))
        return 0;
    if (e->node >= s->roots.node_count || s->assoc_index.count >= s->roots.assoc_count)
        return SUTRA_ECORRUPT;
    coord_assoc_slot *k = coord_assoc_put(&s->assoc_index, b->node, e->node,
                                          e->type);
    if (k->out != COORD_ASSOC_NONE)
        return SUTRA_ECORRUPT; /* F-ADJ-3: one current entry per key */
    k->out = (uint32_t)pos;
    return 0;
}

static int index_in_entry(void *ctx, const layout_adj_entry *e, uint64_t pos,
                          uint64_t sup)
{
    index_build *b = ctx;
    coord_store *s = b->s;
    if (!layout_adj_visible(e, sup, s->roots.last_seq))
        return 0;
    coord_assoc_slot *k = coord_assoc_find(&s->assoc_index, e->node, b->node,
                                           e->type);
    if (!k || k->in != COORD_ASSOC_NONE)
        return SUTRA_ECORRUPT; /* F-ADJ-2: every edge is in both lists */
    k->in = (uint32_t)pos;
    b->filled_in++;
    return 0;
}

static int index_scan(coord_store *s, uint32_t dir, index_build *b,
                      coord_error *err)
{
    coord_adj_visit visit = dir == LAYOUT_ADJ_OUT ? index_out_entry : index_in_entry;
    for (uint64_t n = 0; n < s->roots.node_count; n++) {
        coord_adj_block head;
        int rc = coord_adj_head(s, (uint32_t)n, dir, &head, err);
        if (rc)
            return rc;
        if (head.older + head.count > COORD_ADJ_MAX_LIST)
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-ADJ-4: node %llu has an oversized list",
                              (unsigned long long)n);
        b->node = (uint32_t)n;
        rc = coord_adj_walk(s, &head, (uint32_t)n, dir, visit, b);
        if (rc)
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-ADJ-3: node %llu: adjacency entries disagree "
                              "with each other or with assoc_count %llu",
                              (unsigned long long)n,
                              (unsigned long long)s->roots.assoc_count);
    }
    return 0;
}

int coord_assoc_index_ready(coord_store *s, coord_error *err)
{
    if (s->assoc_index_built)
        return 0;
    coord_assoc_clear(&s->assoc_index);
    if (s->roots.assoc_count == 0) {
        s->assoc_index_built = true; /* nothing live: nothing to read */
        return 0;
    }
    if (coord_assoc_reserve(&s->assoc_index, s->roots.assoc_count))
        return coord_fail(err, ENOMEM, "no memory for the association index");
    index_build b = {s, 0, 0};
    int rc = index_scan(s, LAYOUT_ADJ_OUT, &b, err);
    if (!rc)
        rc = index_scan(s, LAYOUT_ADJ_IN, &b, err);
    if (!rc && (s->assoc_index.count != s->roots.assoc_count ||
                b.filled_in != s->roots.assoc_count))
        rc = coord_fail(err, SUTRA_ECORRUPT,
                        "F-ASSOC-3: %llu live associations in the lists, "
                        "assoc_count says %llu",
                        (unsigned long long)s->assoc_index.count,
                        (unsigned long long)s->roots.assoc_count);
    if (rc) {
        coord_assoc_clear(&s->assoc_index);
        return rc;
    }
    s->assoc_index_built = true;
    return 0;
}

/* ---- recovery (F-REC-4) ------------------------------------------------- */

/* Lower the count of one committed block to its entries with seq <=
 * last_seq (entries are in seq order, F-ADJ-2), zero the entries past it,
 * and reset superseded words that name a discarded seq.
 *
 * Entries past the count mean nothing to readers (F-ADJ-2), but those a
 * discarded group wrote carry seqs the log will hand out again.  Left in
 * place, a later power cut that keeps a count store without the page of
 * the entry it covers would show F-REC-5 such an entry, with a seq at or
 * below the durable generation's, as durable.  So what was discarded
 * stays discarded, as F-REC-7 does for the log.  A reader that loaded the
 * old count sees either the old seq, newer than any snapshot, or 0: both
 * are not visible (layout_adj_visible()). */
static int repair_block(coord_store *s, const coord_adj_block *b)
{
    layout_adj_entry *e = entries_of(s, b->off);
    uint64_t keep = 0;
    while (keep < b->count && e[keep].seq != 0 &&
           e[keep].seq <= s->roots.last_seq)
        keep++;
    if (keep != b->count) {
        int rc = s->io->store64(s->io, count_word(s, b->off), keep);
        if (rc)
            return rc;
    }
    for (uint64_t i = keep; i < b->cap; i++) {
        uint64_t *w = (uint64_t *)(void *)&e[i];
        for (size_t k = 0; k < sizeof(e[i]) / sizeof(uint64_t); k++) {
            int rc = w[k] ? s->io->store64(s->io, &w[k], 0) : 0;
            if (rc)
                return rc;
        }
    }
    for (uint64_t i = 0; i < keep; i++) {
        if (e[i].superseded <= s->roots.last_seq)
            continue;
        int rc = s->io->store64(s->io, &e[i].superseded, 0);
        if (rc)
            return rc;
    }
    return 0;
}

/* Walk a head word back past blocks of the discarded tail.  Those blocks
 * are read up to the file size: the crashed commit wrote them whole before
 * it stored any word naming them, so a damaged one is real damage. */
static int repair_head(coord_store *s, uint32_t node, uint32_t dir,
                       uint64_t *head_out, coord_error *err)
{
    uint64_t *word = head_word(coord_node_entry(s, node), dir);
    uint64_t head = *word;
    while (head >= s->roots.committed_end) {
        coord_adj_block b; /* only its link: its words mean nothing now */
        if (coord_adj_block_desc(s, head, s->file_size, node, dir, &b) != 0)
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-REC-4: node %u: uncommitted adjacency block "
                              "at %llu is damaged", node,
                              (unsigned long long)head);
        head = b.prev;
    }
    if (head != *word) {
        int rc = s->io->store64(s->io, word, head);
        if (rc)
            return coord_fail(err, rc, "cannot repair node %u adjacency", node);
    }
    *head_out = head;
    return 0;
}

static int repair_list(coord_store *s, uint32_t node, uint32_t dir,
                       coord_error *err)
{
    uint64_t head = 0;
    int rc = repair_head(s, node, dir, &head, err);
    if (rc || !head)
        return rc;
    coord_adj_block b;
    uint64_t end = s->roots.committed_end;
    for (uint64_t off = head; off; off = b.prev) {
        if (coord_adj_block_read(s, off, end, node, dir, &b) != 0)
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-REC-4: node %u: adjacency block at %llu is "
                              "damaged", node, (unsigned long long)off);
        rc = repair_block(s, &b);
        if (rc)
            return coord_fail(err, rc, "cannot repair node %u adjacency", node);
        end = off;
    }
    return 0;
}

int coord_adj_repair(coord_store *s, coord_error *err)
{
    for (uint64_t n = 0; n < s->roots.node_count; n++) {
        int rc = repair_list(s, (uint32_t)n, LAYOUT_ADJ_OUT, err);
        if (!rc)
            rc = repair_list(s, (uint32_t)n, LAYOUT_ADJ_IN, err);
        if (rc)
            return rc;
    }
    s->assoc_index_built = false; /* rebuilt from the repaired lists */
    return 0;
}
