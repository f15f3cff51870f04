/*
 * reader/verify_adj.c — the adjacency phase of sutra_verify(): every node's
 * out- and in-lists (format.h, F-ADJ-*), block by block from the newest
 * (node.out_adj / node.in_adj) to the oldest through prev_block.
 *
 * Per block: a valid ADJ_BLOCK region owned by this node and direction
 * (F-ADJ-1), its count word within capacity, the older-entries word equal to
 * what the older blocks hold, every older block full and half the size of
 * the one after it (F-ADJ-4).  Per entry: a nonzero seq, seqs increasing in append order
 * across the whole list, the other endpoint a node of the snapshot, a
 * superseded word that is 0 or later than the entry.  Then the live edges
 * seen from both ends must agree with each other (F-ADJ-2) and with
 * roots.assoc_count (F-ASSOC-3).
 *
 * The words are in place and a live coordinator may be appending: blocks
 * past the committed end and entries with seqs past the snapshot are
 * skipped as readers skip them (F-SNAP-1).  Each block names its owner, so
 * a block is walked for one list only and the phase stays linear.
 */
#include <string.h>

#include "reader/verify_internal.h"

#define VERIFY_REQUIRE(v, cond, off, rule, ...)                               \
    do {                                                                      \
        if (!(cond) && !verify_problem((v), (off), (rule), __VA_ARGS__))      \
            return false;                                                     \
    } while (0)

typedef struct adj_walk {
    uint64_t node, dir;
    uint64_t next_seq;      /* entries seen so far have seqs >= this      */
    uint64_t newer_older;   /* the newer block's older-entries word       */
    uint64_t newer_size;    /* the newer block's size in bytes            */
    bool have_newer;
    bool gave_up;           /* a block past the snapshot did not validate */
    uint64_t live;          /* visible entries                            */
} adj_walk;

/* The region at `off` if it is an ADJ_BLOCK of this list, else NULL. */
static const layout_region *adj_block_at(const verify_ctx *v,
                                         const adj_walk *w, uint64_t off)
{
    if (off % LAYOUT_REGION_ALIGN || off < LAYOUT_DATA_START)
        return NULL;
    /* A block that starts below the committed end belongs to the snapshot
     * and must end below it too (F-ADJ-1), as readers require; only one
     * at or past the end is newer, and is read inside the file. */
    bool inside = off < v->end;
    if (inside ? LAYOUT_ADJ_MIN_BLOCK > v->end - off
               : !reader_range_readable(v->db, off, LAYOUT_ADJ_MIN_BLOCK))
        return NULL;
    const layout_region *r = (const layout_region *)(v->map + off);
    uint64_t size = layout_rec_size(&r->rec);
    if (r->rec.type != LAYOUT_REC_ADJ_BLOCK ||
        r->rec.flags != LAYOUT_REC_F_REGION || size < LAYOUT_ADJ_MIN_BLOCK ||
        (size & (size - 1)) != 0 || r->arg1 != layout_adj_capacity(size) ||
        r->arg0 != (w->node | w->dir << 32) || r->arg2 >= off ||
        !layout_rec_verify(&r->rec))
        return NULL;
    if (inside ? size > v->end - off
               : !reader_range_readable(v->db, off, size))
        return NULL;
    return r;
}

/* One entry, newest first (format.h layout_adj_entry, F-ADJ-2, F-ADJ-3). */
static bool adj_entry(verify_ctx *v, adj_walk *w, const layout_adj_entry *e)
{
    uint64_t eoff = verify_off(v, e);
    /* Equal seqs are legal: forgetting a concept appends one tombstone per
     * edge, all with the concept tombstone's seq (F-ADJ-5). */
    VERIFY_REQUIRE(v, e->seq != 0 && e->seq <= w->next_seq, eoff, "F-ADJ-2",
                   "entry seq %llu is above the next entry's %llu",
                   (unsigned long long)e->seq,
                   (unsigned long long)w->next_seq);
    w->next_seq = e->seq;
    if (e->seq > v->last_seq)
        return true; /* appended after the snapshot */
    bool tomb = e->flags & LAYOUT_ADJ_F_TOMBSTONE;
    VERIFY_REQUIRE(v, e->node < v->node_count &&
                          (e->flags & ~LAYOUT_ADJ_F_TOMBSTONE) == 0 &&
                          verify_finite(e->confidence) &&
                          e->confidence >= 0.0f && e->confidence <= 1.0f &&
                          (!tomb || e->confidence == 0.0f),
                   eoff, "F-ADJ-2", "entry names node %u, flags %#x, or a "
                   "confidence out of range", e->node, e->flags);
    uint64_t superseded = reader_load_word(&e->superseded);
    /* F-ADJ-3: superseded by a later write only; tombstones never. */
    VERIFY_REQUIRE(v, superseded == 0 || (superseded > e->seq && !tomb),
                   eoff + offsetof(layout_adj_entry, superseded), "F-ADJ-3",
                   "%s of seq %llu superseded at %llu",
                   tomb ? "tombstone entry" : "entry",
                   (unsigned long long)e->seq,
                   (unsigned long long)superseded);
    w->live += layout_adj_visible(e, superseded, v->last_seq);
    return true;
}

/* One block of the list: its count, its older-entries word, its entries. */
static bool adj_block(verify_ctx *v, adj_walk *w, uint64_t off,
                      const layout_region *r)
{
    uint64_t cap = r->arg1, older = r->reserved[0];
    const uint64_t *count_word =
        (const uint64_t *)((const uint8_t *)r + LAYOUT_ADJ_COUNT_OFFSET);
    uint64_t count = reader_load_word(count_word);
    VERIFY_REQUIRE(v, count <= cap, off + LAYOUT_ADJ_COUNT_OFFSET, "F-ADJ-2",
                   "block count %llu beyond its capacity %llu",
                   (unsigned long long)count, (unsigned long long)cap);
    if (count > cap)
        count = cap;
    uint64_t size = layout_rec_size(&r->rec);
    if (w->have_newer) {
        VERIFY_REQUIRE(v, w->newer_older == older + count, off, "F-ADJ-1",
                       "newer block counts %llu older entries, this block "
                       "ends at %llu", (unsigned long long)w->newer_older,
                       (unsigned long long)(older + count));
        /* F-ADJ-4: only the newest block has room; each is twice the
         * size of the one before it. */
        VERIFY_REQUIRE(v, count == cap && w->newer_size == 2 * size, off,
                       "F-ADJ-4", "older block of %llu bytes holds %llu of "
                       "%llu entries under a block of %llu bytes",
                       (unsigned long long)size, (unsigned long long)count,
                       (unsigned long long)cap,
                       (unsigned long long)w->newer_size);
    }
    w->newer_older = older;
    w->newer_size = size;
    w->have_newer = true;
    if (off >= v->end)
        return true; /* a block newer than the snapshot holds newer entries */
    const layout_adj_entry *entries = (const layout_adj_entry *)(
        (const uint8_t *)r + LAYOUT_ADJ_ENTRIES_OFFSET);
    for (uint64_t i = count; i-- > 0;)
        if (!adj_entry(v, w, &entries[i]))
            return false;
    return true;
}

static bool adj_list(verify_ctx *v, adj_walk *w, uint64_t word_off,
                     uint64_t head)
{
    uint64_t off = head;
    while (off != 0) {
        const layout_region *r = adj_block_at(v, w, off);
        if (!r && off >= v->end && !v->at_rest) {
            w->gave_up = true; /* the writer is appending a block */
            return true;
        }
        if (!r)
            return verify_problem(v, off == head ? word_off : off, "F-ADJ-1",
                                  "node %llu %s list reaches %llu, not one of "
                                  "its blocks", (unsigned long long)w->node,
                                  w->dir ? "in" : "out",
                                  (unsigned long long)off);
        if (off >= v->end && !v->newer_budget--) {
            w->gave_up = true;
            return true;
        }
        if (!adj_block(v, w, off, r))
            return false;
        off = r->arg2; /* strictly back: adj_block_at checked */
    }
    VERIFY_REQUIRE(v, w->newer_older == 0 &&
                          w->newer_size == LAYOUT_ADJ_MIN_BLOCK,
                   word_off, "F-ADJ-4", "node %llu %s list: the oldest block "
                   "has %llu bytes and counts %llu older entries",
                   (unsigned long long)w->node, w->dir ? "in" : "out",
                   (unsigned long long)w->newer_size,
                   (unsigned long long)w->newer_older);
    return true;
}

bool verify_adjacency(verify_ctx *v)
{
    uint64_t live[2] = {0, 0};
    bool complete = v->nodes_ok == v->node_count;
    for (uint64_t n = 0; n < v->nodes_ok; n++) {
        const layout_node *e = verify_node(v, n);
        for (uint64_t dir = LAYOUT_ADJ_OUT; dir <= LAYOUT_ADJ_IN; dir++) {
            const uint64_t *word = dir ? &e->in_adj : &e->out_adj;
            uint64_t head = reader_load_word(word);
            if (head == 0)
                continue;
            adj_walk w = {.node = n, .dir = dir, .next_seq = UINT64_MAX};
            if (!adj_list(v, &w, verify_off(v, word), head))
                return false;
            complete = complete && !w.gave_up;
            live[dir] += w.live;
        }
        if (n % (1u << 16) == 0)
            verify_progress(v, SUTRA_VERIFY_ADJACENCY, n, v->nodes_ok);
    }
    verify_progress(v, SUTRA_VERIFY_ADJACENCY, v->nodes_ok, v->nodes_ok);
    v->rep.live_assocs = live[LAYOUT_ADJ_OUT];
    if (!complete)
        return true;
    uint64_t roots_off = v->last_commit ? v->last_commit : LAYOUT_META_OFFSET_0;
    VERIFY_REQUIRE(v, live[LAYOUT_ADJ_OUT] == live[LAYOUT_ADJ_IN], roots_off,
                   "F-ADJ-2", "%llu live edges in out-lists, %llu in in-lists",
                   (unsigned long long)live[LAYOUT_ADJ_OUT],
                   (unsigned long long)live[LAYOUT_ADJ_IN]);
    VERIFY_REQUIRE(v, live[LAYOUT_ADJ_OUT] == v->assoc_count, roots_off,
                   "F-ASSOC-3", "%llu live associations, the roots count %llu",
                   (unsigned long long)live[LAYOUT_ADJ_OUT],
                   (unsigned long long)v->assoc_count);
    return true;
}
