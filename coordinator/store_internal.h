/*
 * coordinator/store_internal.h — the state shared by the store's files:
 * store.c (open, create, close, stats), store_index.c (file-side lookups of
 * the hash index and node table), store_apply.c (the open group), store_commit.c
 * (publishing a group) and recover.c (open-time validation and repair).
 *
 * Nothing here is visible outside coordinator/store*.c and recover.c.  All
 * of it is committer-thread state except `stat`, which stats readers load
 * atomically from any thread.
 */
#ifndef SUTRA_COORD_STORE_INTERNAL_H
#define SUTRA_COORD_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "coordinator/io.h"
#include "coordinator/store.h"
#include "layout/format.h"

/* A region record's length counts 64-byte units in a u32 (F-LOG-5), so one
 * region spans at most 256 GiB: a hash table of 2^34 slots, and node chunks
 * up to 21, which together hold every u32 node number the table can name
 * (nodes 0 .. 1024 * (2^22 - 1) - 1). */
#define COORD_MAX_HASH_SLOTS (1ull << 34)
#define COORD_MAX_NODE_CHUNK 21u
_Static_assert(LAYOUT_NODE_CHUNK0 * ((1ull << (COORD_MAX_NODE_CHUNK + 1)) - 1) - 1
                   <= LAYOUT_MAX_NODES,
               "node numbers fit the hash slot's 32 bits");
#define COORD_GROW_MIN (64ull << 20) /* smallest file growth step */

/* The newest state of one id as the open group sees it: either copied from
 * the file on first touch, or created by the group (is_new). */
typedef struct coord_staged {
    uint8_t id[16];
    uint32_t node;
    bool is_new;           /* node number allocated by this group           */
    bool live;             /* head is a concept version, not a tombstone    */
    bool touched;          /* the group wrote a version: head must be stored */
    uint64_t first_seq;    /* the node's first version (new nodes)          */
    uint64_t head;         /* absolute offset of the newest version         */
    uint64_t created_ns;   /* of the live version, 0 when not live          */
    uint64_t content_off;
    uint32_t content_len;
    uint32_t dim;
    uint64_t embedding_off;
} coord_staged;

/* The open group: records laid out as they will be in the file, starting at
 * `base` (the committed end), plus the id -> staged state map. */
typedef struct coord_group {
    uint8_t *buf;          /* record bytes; always a multiple of 8 long     */
    uint64_t len, cap;
    uint64_t base;         /* absolute offset of buf[0]                     */
    coord_staged *staged;  /* in first-touch order                          */
    uint32_t staged_count, staged_cap;
    uint32_t *map;         /* open addressing: staged index + 1, 0 = empty  */
    uint32_t map_cap;      /* power of two, > 2 * staged_cap                */
    layout_commit_entry *entries;
    uint32_t entry_count, entry_cap;
    layout_roots roots;    /* counters as they will be published            */
    uint64_t first_seq;
    uint64_t now_ns;       /* the group's time, taken at its first request  */
    bool wants_sync;
} coord_group;

/* Counters readable from any thread (coord_store_stats_get). */
typedef struct coord_stat_words {
    uint64_t generation, last_seq, committed_end, file_size;
    uint64_t node_count, concept_count, version_count, tombstone_count;
    uint64_t syncs;
    uint32_t read_only;
} coord_stat_words;

struct coord_store {
    coord_io *io;
    int fd;
    uint8_t *map;          /* map_reserve bytes, shared, writable           */
    uint64_t map_reserve;
    uint64_t file_size;
    uint64_t dirty_end;    /* bytes below may hold stale data past the
                              committed end; fresh regions there are zeroed */
    uint32_t dim;
    layout_header *hdr;
    layout_roots roots;    /* the published generation                      */
    layout_node *chunk[LAYOUT_NODE_CHUNKS]; /* entry arrays, NULL = none    */
    uint64_t *hash;        /* slots of roots.hash_root                       */
    bool read_only;
    bool synced;
    coord_group group;
    coord_stat_words stat;
};

/* ---- store.c ---------------------------------------------------------- */

int coord_fail(coord_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void coord_stat_publish(coord_store *s);
uint64_t coord_now_ns(void);
void coord_count_sync(coord_store *s);
/* The committed commit record at `off`, fully validated (F-COM-1), or NULL. */
const layout_commit *coord_commit_at(const coord_store *s, uint64_t off);

/* ---- store_index.c: file-side structures (committed state) ------------ */

/* Bounds-checked view of committed bytes [off, off + len). */
const void *coord_committed_bytes(const coord_store *s, uint64_t off,
                                  uint64_t len);
/* Validate a region record at `off` against type and descriptor args. */
bool coord_region_valid(const coord_store *s, uint64_t off, uint64_t end,
                        uint16_t type, uint64_t arg0, uint64_t arg1,
                        uint64_t arg2, uint64_t body_len);
/* Node n's table entry, or NULL when its chunk is not allocated. */
layout_node *coord_node_entry(const coord_store *s, uint32_t node);
/* Find `id` in the published hash table: 0 and *node, or SUTRA_ENOTFOUND. */
int coord_hash_find(const coord_store *s, const uint8_t id[16], uint32_t *node);
/* Insert (hash of id, node) into a table of `slots` slots. */
int coord_hash_insert(coord_store *s, uint64_t *table, uint64_t slots,
                      const uint8_t id[16], uint32_t node);
/* Read the committed version at `off` for node `node`: bounds, type, node
 * and id are checked (not the checksum).  NULL when any check fails. */
const layout_concept *coord_version_at(const coord_store *s, uint64_t off,
                                       uint64_t end, uint32_t node,
                                       const uint8_t id[16]);

/* ---- store_apply.c ---------------------------------------------------- */

void coord_group_reset(coord_store *s);
void coord_group_free(coord_group *g);

/* ---- recover.c -------------------------------------------------------- */

/* Validate the picked meta's roots and the node chunks it needs, and cache
 * chunk and hash pointers.  With `repair`, also restore the in-place words
 * to the recovered generation (F-REC-*). */
int coord_recover(coord_store *s, const layout_meta *meta, bool repair,
                  coord_error *err);

#endif
