/*
 * reader/graph.c — a concept's associations: sutra_neighbors_begin/next(),
 * sutra_neighbors() and sutra_degree(), and the adjacency-list cursor that
 * the path searches (reader/path.c) share.
 *
 * A node's out- and in-edges are chains of ADJ_BLOCK regions reached
 * through the in-place words node.out_adj / node.in_adj (F-ADJ-*).  Like
 * every structure reached through an in-place word, each block is validated
 * before a byte of it is used (F-SNAP-3): alignment, type and region flag,
 * owner and direction, a size of 256 << k and the capacity it implies, a
 * prev_block strictly below it (so every chain ends), a count within the
 * capacity, and bounds against the mapping and the file.  No deduplication
 * is needed: the writer marks every entry it replaces (`superseded`) and
 * every edge of a forgotten concept, so visibility is one test per entry
 * (F-ADJ-3, layout_adj_visible()).
 *
 * The iterator is a caller-owned value: it allocates nothing and holds O(1)
 * state however many edges a node has.
 */
#include <string.h>

#include "reader/graph_internal.h"

/* ---- blocks ------------------------------------------------------------ */

/* Validate the ADJ_BLOCK at `off` as a block of node's `dir` list.  A block
 * `inside` the snapshot must lie wholly below committed_end; a newer one
 * only inside the file.  Returns the region or NULL. */
static const layout_region *reader_adj_block(const reader_view *v, uint64_t off,
                                             uint32_t node, uint32_t dir,
                                             bool inside)
{
    const sutra_db *db = v->db;
    if (off % LAYOUT_REGION_ALIGN != 0 || off < LAYOUT_DATA_START)
        return NULL;
    if (inside ? off > v->committed_end ||
                     LAYOUT_ADJ_ENTRIES_OFFSET > v->committed_end - off
               : !reader_range_readable(db, off, LAYOUT_ADJ_ENTRIES_OFFSET))
        return NULL;
    const layout_region *reg = (const layout_region *)(db->map + off);
    uint64_t size = layout_rec_size(&reg->rec);
    if (reg->rec.type != LAYOUT_REC_ADJ_BLOCK ||
        !(reg->rec.flags & LAYOUT_REC_F_REGION) ||
        size < LAYOUT_ADJ_MIN_BLOCK || (size & (size - 1)) != 0)
        return NULL;
    if (inside ? size > v->committed_end - off
               : !reader_range_readable(db, off, size))
        return NULL;
    if (reg->arg0 != ((uint64_t)node | (uint64_t)dir << 32) ||
        reg->arg1 != layout_adj_capacity(size) || reg->arg2 >= off)
        return NULL;
    return reg;
}

/* Make the block at `off` (inside the snapshot) the cursor's current one. */
static int reader_adj_enter(const reader_view *v, reader_adj_cursor *c,
                            uint64_t off)
{
    c->block = off;
    c->unread = 0;
    c->prev = 0;
    if (off == 0)
        return 0;
    const layout_region *reg = reader_adj_block(v, off, c->node, c->dir, true);
    if (!reg)
        return SUTRA_ECORRUPT;
    const uint8_t *base = v->db->map + off;
    uint64_t count = reader_load_word(
        (const uint64_t *)(base + LAYOUT_ADJ_COUNT_OFFSET));
    if (count > reg->arg1)
        return SUTRA_ECORRUPT;
    c->entries = (const layout_adj_entry *)(base + LAYOUT_ADJ_ENTRIES_OFFSET);
    c->unread = count;
    c->prev = reg->arg2;
    return 0;
}

/* From the head word's block, skip the blocks the writer appended after the
 * snapshot (at or past committed_end: they hold only newer entries, since
 * entries never move) to the newest block inside it.  SUTRA_ERETRY when a
 * newer block does not validate: the words are moving (recovery). */
static int reader_adj_skip_newer(const reader_view *v, uint32_t node,
                                 uint32_t dir, uint64_t *off)
{
    uint64_t cur = *off;
    while (cur != 0 && cur >= v->committed_end) {
        const layout_region *reg = reader_adj_block(v, cur, node, dir, false);
        if (!reg)
            return reader_record_beyond_mapping(v->db, cur,
                                                LAYOUT_ADJ_ENTRIES_OFFSET)
                       ? SUTRA_EMAPFULL
                       : SUTRA_ERETRY;
        cur = reg->arg2; /* strictly smaller: checked */
    }
    *off = cur;
    return 0;
}

int reader_adj_open(const reader_view *v, const layout_node *entry,
                    uint32_t node, uint32_t dir, reader_adj_cursor *c)
{
    const uint64_t *head = dir == LAYOUT_ADJ_OUT ? &entry->out_adj : &entry->in_adj;
    c->node = node;
    c->dir = dir;
    for (int attempt = 0; attempt < READER_LOOKUP_RETRIES; attempt++) {
        uint64_t off = reader_load_word(head);
        int rc = reader_adj_skip_newer(v, node, dir, &off);
        if (rc == SUTRA_ERETRY)
            continue;
        return rc ? rc : reader_adj_enter(v, c, off);
    }
    return SUTRA_ECORRUPT;
}

int reader_adj_advance(const reader_view *v, reader_adj_cursor *c)
{
    return reader_adj_enter(v, c, c->prev);
}

/* ---- the public iterator ------------------------------------------------ */

/* sutra_neighbor_iter private_[] slots: the view, the filter, the cursor
 * being read and, for BOTH, the in-list cursor read after it.  begin opens
 * every list it will read, so the misses on both lists' first blocks
 * overlap with each other and with the liveness check. */
enum {
    GRAPH_IT_DB = 0,
    GRAPH_IT_COMMITTED_END = 1,
    GRAPH_IT_LAST_SEQ = 2,
    GRAPH_IT_NODE_COUNT = 3,
    GRAPH_IT_BLOCK = 4,
    GRAPH_IT_UNREAD = 5,
    GRAPH_IT_PREV = 6,
    GRAPH_IT_NODE_DIR = 7,     /* node | dir << 32                           */
    GRAPH_IT_FILTER = 8,
    GRAPH_IT_PENDING = 9,      /* 1 while the second cursor is unread        */
    GRAPH_IT_MAGIC = 10,       /* set by begin, so next() refuses garbage    */
    GRAPH_IT_BLOCK2 = 11,      /* the second (in-list) cursor, when PENDING  */
    GRAPH_IT_UNREAD2 = 12,
    GRAPH_IT_PREV2 = 13,
};

#define GRAPH_IT_MAGIC_VALUE 0x7375747261697472ull /* "sutraitr" */

static void graph_it_view(const sutra_neighbor_iter *it, reader_view *v)
{
    memset(v, 0, sizeof(*v));
    v->db = (const sutra_db *)(uintptr_t)it->private_[GRAPH_IT_DB];
    v->committed_end = it->private_[GRAPH_IT_COMMITTED_END];
    v->last_seq = it->private_[GRAPH_IT_LAST_SEQ];
    v->node_count = it->private_[GRAPH_IT_NODE_COUNT];
}

/* Rebuild a cursor from the slots at `at` (GRAPH_IT_BLOCK or _BLOCK2). */
static void graph_it_load_at(const sutra_neighbor_iter *it, const reader_view *v,
                             unsigned at, uint32_t dir, reader_adj_cursor *c)
{
    c->block = it->private_[at];
    c->unread = c->block ? it->private_[at + 1] : 0; /* no block, no entries */
    c->prev = it->private_[at + 2];
    c->node = (uint32_t)it->private_[GRAPH_IT_NODE_DIR];
    c->dir = dir;
    c->entries = c->block ? (const layout_adj_entry *)(v->db->map + c->block +
                                                        LAYOUT_ADJ_ENTRIES_OFFSET)
                          : NULL;
}

static void graph_it_load(const sutra_neighbor_iter *it, const reader_view *v,
                          reader_adj_cursor *c)
{
    graph_it_load_at(it, v, GRAPH_IT_BLOCK,
                     (uint32_t)(it->private_[GRAPH_IT_NODE_DIR] >> 32), c);
}

static void graph_it_store_at(sutra_neighbor_iter *it, unsigned at,
                              const reader_adj_cursor *c)
{
    it->private_[at] = c->block;
    it->private_[at + 1] = c->unread;
    it->private_[at + 2] = c->prev;
}

static void graph_it_store(sutra_neighbor_iter *it, const reader_adj_cursor *c)
{
    graph_it_store_at(it, GRAPH_IT_BLOCK, c);
    it->private_[GRAPH_IT_NODE_DIR] = (uint64_t)c->node | (uint64_t)c->dir << 32;
}

/* Make the second (in-list) cursor the current one. */
static void graph_it_next_list(sutra_neighbor_iter *it, const reader_view *v,
                               reader_adj_cursor *c)
{
    graph_it_load_at(it, v, GRAPH_IT_BLOCK2, LAYOUT_ADJ_IN, c);
    it->private_[GRAPH_IT_PENDING] = 0;
    graph_it_store(it, c);
}

#define GRAPH_PREFETCH_AHEAD 8 /* entries whose node entry is requested early */

/* Start loading the node-table entry of a neighbor the caller will ask for
 * soon (entry `ahead` places before the cursor): an iterator's cost is one
 * random node-table read per neighbor (for its id), and issuing them early
 * overlaps those misses.  A hint only: it reads no byte through the
 * address, so it needs no validation beyond staying inside the snapshot.
 * The entries it reads are those of a validated block below its count. */
static void graph_prefetch(const reader_view *v, const reader_adj_cursor *c,
                           uint64_t ahead)
{
    if (c->unread < ahead)
        return;
    uint32_t node = c->entries[c->unread - ahead].node;
    if (node >= v->node_count)
        return;
    uint32_t chunk;
    uint64_t index;
    layout_node_locate(node, &chunk, &index);
    uint64_t off = __atomic_load_n(&reader_header(v->db)->node_chunk[chunk],
                                   __ATOMIC_RELAXED);
    uint64_t at = off + LAYOUT_REGION_BODY + index * sizeof(layout_node);
    if (off != 0 && at < v->committed_end)
        __builtin_prefetch(v->db->map + at);
}

/* The first GRAPH_PREFETCH_AHEAD neighbors of a freshly opened cursor. */
static void graph_prefetch_first(const reader_view *v, const reader_adj_cursor *c)
{
    for (uint64_t ahead = 1; ahead <= GRAPH_PREFETCH_AHEAD; ahead++)
        graph_prefetch(v, c, ahead);
}

/* Start loading the bytes begin reads after the node entry: the node's
 * newest version (the liveness check) and the first lines of each list's
 * head block (descriptor, count word, newest entries of a minimum-size
 * block), so their misses overlap instead of following one another.  A
 * hint only, like graph_prefetch(): `word` values are used as addresses
 * only inside the snapshot, and nothing is read through them here. */
static void graph_prefetch_word(const reader_view *v, const uint64_t *word,
                                uint64_t bytes)
{
    uint64_t off = __atomic_load_n(word, __ATOMIC_RELAXED);
    if (off < LAYOUT_DATA_START || off >= v->committed_end ||
        bytes > v->committed_end - off)
        return;
    for (uint64_t at = 0; at < bytes; at += 64)
        __builtin_prefetch(v->db->map + off + at);
}

static void graph_prefetch_node(const reader_view *v, const layout_node *entry,
                                unsigned lists)
{
    graph_prefetch_word(v, &entry->head, 64);
    if (lists & READER_LIST_OUT)
        graph_prefetch_word(v, &entry->out_adj, LAYOUT_ADJ_MIN_BLOCK);
    if (lists & READER_LIST_IN)
        graph_prefetch_word(v, &entry->in_adj, LAYOUT_ADJ_MIN_BLOCK);
}

/* Map the public direction to the lists it reads; 0 when invalid. */
static unsigned graph_lists(enum sutra_direction dir)
{
    switch (dir) {
    case SUTRA_OUT: return READER_LIST_OUT;
    case SUTRA_IN: return READER_LIST_IN;
    case SUTRA_BOTH: return READER_LIST_OUT | READER_LIST_IN;
    }
    return 0;
}

/* Open the lists `lists` names into `tmp`: the first into the current
 * cursor, for BOTH the in-list into the second. */
static int graph_it_open(sutra_neighbor_iter *tmp, const reader_view *v,
                         const layout_node *entry, uint32_t node, unsigned lists)
{
    reader_adj_cursor c, c2;
    uint32_t dir = (lists & READER_LIST_OUT) ? LAYOUT_ADJ_OUT : LAYOUT_ADJ_IN;
    int rc = reader_adj_open(v, entry, node, dir, &c);
    if (rc != 0)
        return rc;
    graph_prefetch_first(v, &c);
    graph_it_store(tmp, &c);
    if (lists == (READER_LIST_OUT | READER_LIST_IN)) {
        rc = reader_adj_open(v, entry, node, LAYOUT_ADJ_IN, &c2);
        if (rc != 0)
            return rc;
        graph_prefetch_first(v, &c2);
        graph_it_store_at(tmp, GRAPH_IT_BLOCK2, &c2);
        tmp->private_[GRAPH_IT_PENDING] = 1;
    }
    return 0;
}

int sutra_neighbors_begin(const struct sutra_snapshot *snap, const sutra_id *id,
                          enum sutra_direction dir, uint32_t type_filter,
                          sutra_neighbor_iter *it)
{
    if (!snap || !snap->db || !id || !it)
        return SUTRA_EINVAL;
    unsigned lists = graph_lists(dir);
    if (lists == 0)
        return SUTRA_EINVAL;
    reader_view v;
    reader_view_init(&v, snap);
    uint32_t node;
    const layout_node *entry;
    int rc = reader_find_node(&v, id->bytes, &node, &entry);
    if (rc != 0)
        return rc;
    graph_prefetch_node(&v, entry, lists);
    const layout_concept *version;
    rc = reader_node_version(&v, entry, node, &version);
    if (rc != 0)
        return rc;
    sutra_neighbor_iter tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.private_[GRAPH_IT_DB] = (uint64_t)(uintptr_t)v.db;
    tmp.private_[GRAPH_IT_COMMITTED_END] = v.committed_end;
    tmp.private_[GRAPH_IT_LAST_SEQ] = v.last_seq;
    tmp.private_[GRAPH_IT_NODE_COUNT] = v.node_count;
    tmp.private_[GRAPH_IT_FILTER] = type_filter;
    tmp.private_[GRAPH_IT_MAGIC] = GRAPH_IT_MAGIC_VALUE;
    rc = graph_it_open(&tmp, &v, entry, node, lists);
    if (rc != 0)
        return rc;
    *it = tmp;
    return 0;
}

/* The public form of an entry seen from the queried node. */
static int graph_neighbor_fill(const reader_view *v, const layout_adj_entry *e,
                               uint32_t dir, sutra_neighbor *out)
{
    const layout_node *other = reader_node_entry(v, e->node);
    if (!other)
        return SUTRA_ECORRUPT;
    memcpy(out->id.bytes, other->id, sizeof(out->id.bytes));
    out->type = e->type;
    out->confidence = e->confidence;
    out->seq = e->seq;
    out->direction = dir == LAYOUT_ADJ_OUT ? SUTRA_OUT : SUTRA_IN;
    return 0;
}

int sutra_neighbors_next(sutra_neighbor_iter *it, sutra_neighbor *out)
{
    if (!it || !out || it->private_[GRAPH_IT_MAGIC] != GRAPH_IT_MAGIC_VALUE)
        return SUTRA_EINVAL;
    reader_view v;
    graph_it_view(it, &v);
    uint32_t filter = (uint32_t)it->private_[GRAPH_IT_FILTER];
    reader_adj_cursor c;
    graph_it_load(it, &v, &c);
    for (;;) {
        const layout_adj_entry *e = NULL;
        int rc = reader_adj_next(&v, &c, filter, &e);
        if (rc == 1) {
            graph_prefetch(&v, &c, GRAPH_PREFETCH_AHEAD);
            rc = graph_neighbor_fill(&v, e, c.dir, out);
            if (rc == 0)
                graph_it_store(it, &c);
            return rc;
        }
        if (rc < 0)
            return rc;
        if (it->private_[GRAPH_IT_PENDING] == 0) {
            graph_it_store(it, &c);
            return SUTRA_ENOTFOUND;
        }
        graph_it_next_list(it, &v, &c);
    }
}

int sutra_neighbors(const struct sutra_snapshot *snap, const sutra_id *id,
                    enum sutra_direction dir, uint32_t type_filter,
                    sutra_neighbor *buf, size_t cap, size_t *total)
{
    if (!total || (cap > 0 && !buf))
        return SUTRA_EINVAL;
    sutra_neighbor_iter it;
    int rc = sutra_neighbors_begin(snap, id, dir, type_filter, &it);
    if (rc != 0)
        return rc;
    size_t n = 0;
    sutra_neighbor nb;
    /* Entries past `cap` are only counted: fill a scratch value for them.
     * buf is filled as the list is read, so on SUTRA_ECORRUPT it may hold
     * a prefix; *total is written only on success. */
    while ((rc = sutra_neighbors_next(&it, n < cap ? &buf[n] : &nb)) == 0)
        n++;
    if (rc != SUTRA_ENOTFOUND)
        return rc;
    *total = n;
    return 0;
}

int sutra_degree(const struct sutra_snapshot *snap, const sutra_id *id,
                 enum sutra_direction dir, uint32_t type_filter, uint64_t *out)
{
    if (!out)
        return SUTRA_EINVAL;
    sutra_neighbor_iter it;
    int rc = sutra_neighbors_begin(snap, id, dir, type_filter, &it);
    if (rc != 0)
        return rc;
    /* Counting needs no ids: run the cursors directly. */
    reader_view v;
    graph_it_view(&it, &v);
    reader_adj_cursor c;
    graph_it_load(&it, &v, &c);
    uint64_t n = 0;
    for (;;) {
        const layout_adj_entry *e = NULL;
        while ((rc = reader_adj_next(&v, &c, type_filter, &e)) == 1)
            n++;
        if (rc < 0)
            return rc;
        if (it.private_[GRAPH_IT_PENDING] == 0)
            break;
        graph_it_next_list(&it, &v, &c);
    }
    *out = n;
    return 0;
}
