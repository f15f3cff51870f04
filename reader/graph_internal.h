/*
 * reader/graph_internal.h — walking one adjacency list of one node, shared
 * by the neighbor iterator (reader/graph.c) and the path searches
 * (reader/path.c).
 *
 * A list is a chain of ADJ_BLOCK regions, newest first (F-ADJ-*).  The
 * cursor below reads it newest entry first with O(1) state: the block it is
 * in, how many of that block's entries are still unread, and the block's
 * prev_block.  Opening a cursor resolves the list's head word past blocks
 * the writer appended after the snapshot (they hold only newer entries) to
 * the newest block inside the snapshot; from there on every block is inside
 * the snapshot, so a block that fails validation is damage (SUTRA_ECORRUPT),
 * never a race.  The per-entry step is inline because path searches run it
 * for every edge they scan.
 *
 * Concurrency: any thread, lock-free, concurrently with the writer; a cursor
 * belongs to one thread.  Entries below a block's count word (acquire load)
 * are complete; `superseded` is the only word of an entry that changes, and
 * it is read with an acquire load (F-ADJ-3).
 */
#ifndef SUTRA_READER_GRAPH_INTERNAL_H
#define SUTRA_READER_GRAPH_INTERNAL_H

#include <stdint.h>

#include "reader/reader_internal.h"

/* Bit set of the lists a search reads: out-edges, in-edges or both. */
#define READER_LIST_OUT (1u << LAYOUT_ADJ_OUT)
#define READER_LIST_IN (1u << LAYOUT_ADJ_IN)

typedef struct reader_adj_cursor {
    const layout_adj_entry *entries; /* the current block's entries       */
    uint64_t block;   /* offset of the current block, 0 once exhausted     */
    uint64_t unread;  /* entries [0, unread) of the block are left         */
    uint64_t prev;    /* the current block's prev_block                    */
    uint32_t node;    /* the list's owner                                  */
    uint32_t dir;     /* LAYOUT_ADJ_OUT or LAYOUT_ADJ_IN                   */
} reader_adj_cursor;

/* Position `c` before the newest entry of node's `dir` list visible to the
 * snapshot.  node < v->node_count and `entry` is its validated node-table
 * entry (reader_node_entry()).  Returns 0, SUTRA_ECORRUPT (a block
 * inside the snapshot failed validation, or newer blocks kept failing after
 * bounded retries), or SUTRA_EMAPFULL (a block lies past this handle's
 * mapping: the file grew beyond it). */
int reader_adj_open(const reader_view *v, const layout_node *entry,
                    uint32_t node, uint32_t dir, reader_adj_cursor *c);

/* Move `c` to its current block's prev_block (block = 0 at the end of the
 * list).  Returns 0 or SUTRA_ECORRUPT.  Called by reader_adj_next(). */
int reader_adj_advance(const reader_view *v, reader_adj_cursor *c);

/* The next visible entry of type `type_filter` (or any, SUTRA_ANY_TYPE),
 * newest first.  Returns 1 and *out, 0 at the end of the list, or
 * SUTRA_ECORRUPT (an entry of the snapshot names a node it does not have). */
static inline int reader_adj_next(const reader_view *v, reader_adj_cursor *c,
                                  uint32_t type_filter,
                                  const layout_adj_entry **out)
{
    for (;;) {
        while (c->unread > 0) {
            const layout_adj_entry *e = &c->entries[--c->unread];
            if (type_filter != SUTRA_ANY_TYPE && e->type != type_filter)
                continue;
            uint64_t superseded = reader_load_word(&e->superseded);
            if (!layout_adj_visible(e, superseded, v->last_seq))
                continue;
            if (e->node >= v->node_count)
                return SUTRA_ECORRUPT;
            *out = e;
            return 1;
        }
        if (c->block == 0)
            return 0;
        int rc = reader_adj_advance(v, c);
        if (rc != 0) /* 0 or SUTRA_ECORRUPT: never 1, which means *out */
            return rc < 0 ? rc : SUTRA_ECORRUPT;
    }
}

#endif
