/*
 * coordinator/store_internal.h — the state shared by the store's files:
 * store.c (open, create, close, stats), store_index.c (file-side lookups of
 * the hash index and node table), store_apply.c (the open group), store_commit.c
 * (publishing a group), store_grow.c (the next hash table, filled ahead)
 * and recover.c (open-time validation and repair).
 *
 * Nothing here is visible outside coordinator/store*.c and recover.c.  All
 * of it is committer-thread state except `stat`, which stats readers load
 * atomically from any thread, and what store_grow.c shares with its
 * helper thread behind `grow`.
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
/* Adjacency block bytes a group may allocate and still be synced by its
 * own write (F-COM-6): a group's blocks are written whole, zero bodies
 * included. */
#define COORD_RANGED_BLOCK_BYTES (1ull << 20)

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

/* ---- associations -------------------------------------------------------- */

#define COORD_ASSOC_NONE UINT32_MAX
/* Positions in an adjacency list are u32 in the key index; a list is refused
 * (SUTRA_EFULL) before it could reach this many entries. */
#define COORD_ADJ_MAX_LIST (1ull << 31)

/* One association key (source node, target node, type) and two references.
 * In the committed key index: the list positions of the key's current
 * entries in source's out-list and target's in-list.  In a group's overlay:
 * indices of the staged entries (coord_adj_staged), or out ==
 * COORD_ASSOC_NONE when the group forgot the key.  20 bytes. */
typedef struct coord_assoc_slot {
    uint32_t source;       /* COORD_ASSOC_NONE marks an empty slot          */
    uint32_t target;
    uint32_t type;
    uint32_t out, in;
} coord_assoc_slot;

/* Open addressing (linear probing, backward-shift deletion). */
typedef struct coord_assoc_map {
    coord_assoc_slot *slots;
    uint64_t cap;          /* power of two; 0 = nothing allocated           */
    uint64_t count;
} coord_assoc_map;

/* A validated ADJ_BLOCK of the committed file (F-ADJ-1). */
typedef struct coord_adj_block {
    uint64_t off, bytes, cap, count, older, prev;
} coord_adj_block;

/* One adjacency list (node, direction) the open group appends to. */
typedef struct coord_adj_list {
    uint32_t node, dir;
    coord_adj_block head;  /* committed head block; head.off 0 = none       */
    uint64_t committed;    /* committed entries: head.older + head.count    */
    uint32_t staged;       /* entries the group appends                     */
    uint32_t first, last;  /* its staged entries, linked through `next`     */
    uint32_t first_block;  /* new blocks planned at commit (blocks[])       */
    uint32_t block_count;
    uint64_t next_at;      /* position that needs the next new block...     */
    uint64_t next_bytes;   /* ...and that block's size (F-ADJ-4)            */
} coord_adj_list;

/* An adjacency entry staged by the group, with where it will go. */
typedef struct coord_adj_staged {
    layout_adj_entry entry;
    uint64_t pos;          /* position in its list                          */
    uint32_t list;         /* index in coord_assoc_group.lists              */
    uint32_t next;         /* next staged entry of the list, or NONE        */
} coord_adj_staged;

/* A committed entry the group supersedes (F-ADJ-3). */
typedef struct coord_adj_supersede {
    uint32_t list;
    uint64_t pos;
    uint64_t seq;
    uint64_t off;          /* the entry's offset, resolved at commit        */
} coord_adj_supersede;

/* A new ADJ_BLOCK region planned at commit. */
typedef struct coord_adj_new_block {
    uint64_t off, bytes, older, prev;
} coord_adj_new_block;

/* The open group's association state (store_assoc.c). */
typedef struct coord_assoc_group {
    coord_assoc_map overlay;        /* keys the group wrote                 */
    coord_adj_list *lists;
    uint32_t list_count, list_cap;
    uint32_t *list_map;             /* list index + 1, 0 = empty            */
    uint32_t list_map_cap;
    coord_adj_staged *pool;         /* every staged entry, in seq order     */
    uint32_t pool_count, pool_cap;
    coord_adj_supersede *sup;
    uint32_t sup_count, sup_cap;
    coord_assoc_slot *scratch;      /* keys a forget_concept collects       */
    uint32_t scratch_cap;
    coord_adj_new_block *blocks;
    uint32_t block_count, block_cap;
    uint64_t block_bytes;           /* bytes of the new blocks the staged
                                       entries need, as plan_list lays
                                       them out                         */
} coord_assoc_group;

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
    coord_assoc_group assoc;
} coord_group;

/* Counters readable from any thread (coord_store_stats_get). */
typedef struct coord_stat_words {
    uint64_t generation, last_seq, committed_end, file_size;
    uint64_t node_count, concept_count, version_count, tombstone_count;
    uint64_t syncs;
    uint64_t assoc_count;
    uint32_t read_only;
} coord_stat_words;

/* The next hash table, filled by a helper thread (store_grow.c). */
typedef struct coord_grow coord_grow;

/* One per open store: fields are grouped by meaning, not packed. */
struct coord_store { /* NOLINT(clang-analyzer-optin.performance.Padding) */
    coord_io *io;
    int fd;
    int sync_fd;           /* a second open file description of the file,
                              for syncs beside the writer (store.h)       */
    int (*sync_gate)(void *arg, coord_error *err); /* store.h             */
    void *sync_gate_arg;
    const uint8_t *sync_map; /* the same bytes mapped from sync_fd, for
                              ranged syncs beside the writer; NULL if the
                              address space was refused (then none)      */
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
    coord_grow *grow;      /* the next table being filled, or NULL          */
    uint64_t grow_refused; /* hash_slots of the table whose helper could not
                              start: it doubles on the commit path         */
    bool read_only;
    bool synced;           /* everything published is durable (a full sync
                              since the last commit)                        */
    uint64_t log_durable_end; /* the log below is durable: a full sync or
                              ranged syncs of every group since (F-COM-6)  */
    uint64_t zeroed_end;   /* zeros were written up to here past the end
                              (zero_ahead in store_commit.c)              */
    bool checkpointed;     /* durable_commit on disk names a commit record
                              (F-HDR-8), so recovery never needs the meta
                              slots: groups may be synced by range        */
    coord_group group;
    coord_assoc_map assoc_index; /* committed live keys; built on first use */
    bool assoc_index_built;
    coord_stat_words stat;
    bool rebuilt;          /* open ran F-REC-6 (a whole-log rebuild)      */
    bool from_checkpoint;  /* open ran F-REC-9                            */
};

/* ---- store.c ---------------------------------------------------------- */

int coord_fail(coord_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void coord_stat_publish(coord_store *s);
uint64_t coord_now_ns(void);
void coord_count_sync(coord_store *s);
/* Store durable_commit and durable_end (F-HDR-7, F-HDR-8) for the
 * generation whose roots are `r`, after a sync that made its records and
 * words durable.  Returns 0 or the store hook's error. */
int coord_store_durable_words(coord_store *s, const layout_roots *r);
/* A full sync just made everything published durable: count it, mark the
 * store synced and store the durable words for the current roots. */
void coord_note_durable(coord_store *s);
/* The committed commit record at `off`, fully validated (F-COM-1), or NULL. */
const layout_commit *coord_commit_at(const coord_store *s, uint64_t off);

/* ---- store_commit.c ---------------------------------------------------- */

/* Zeros over [from, to) of the file, through the io seam.  0 or its error. */
int coord_write_zeros(coord_store *s, uint64_t from, uint64_t to);
/* A region's sealed descriptor (reserved[0] = `reserved0`). */
layout_region coord_region_header(uint16_t type, uint64_t arg0, uint64_t arg1,
                                  uint64_t arg2, uint64_t reserved0,
                                  uint64_t body_len);
/* Write a region's descriptor `r` at `off`, zeros from `prev_end` up to
 * it, and zeros over its `body_len` bytes of body below `dirty_end`. */
int coord_write_region(coord_store *s, uint64_t prev_end, uint64_t off,
                       const layout_region *r, uint64_t body_len,
                       uint64_t dirty_end);
/* Whether the open group, grown by `more_bytes` record bytes and
 * `more_blocks` bytes of adjacency blocks to `nodes` nodes and `entries`
 * commit entries, would still commit within map_reserve: the node chunks,
 * hash table, adjacency blocks and commit record laid out exactly as
 * coord_store_commit() will.  0, or SUTRA_EFULL with err filled. */
int coord_group_fits(const coord_store *s, uint64_t more_bytes,
                     uint64_t more_blocks, uint64_t nodes, uint64_t entries,
                     coord_error *err);

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
/* Start loading the hash slot coord_hash_find(s, id) will probe first. */
void coord_hash_prefetch(const coord_store *s, const uint8_t id[16]);
/* Insert (hash of id, node) into a table of `slots` slots. */
int coord_hash_insert(coord_store *s, uint64_t *table, uint64_t slots,
                      const uint8_t id[16], uint32_t node);
/* Read the committed version at `off` for node `node`: bounds, type, node
 * and id are checked (not the checksum).  NULL when any check fails. */
const layout_concept *coord_version_at(const coord_store *s, uint64_t off,
                                       uint64_t end, uint32_t node,
                                       const uint8_t id[16]);

/* ---- store_grow.c: the next hash table, filled ahead -------------------- */

/* A table of `slots` slots at `off` starts being filled in the background
 * once the published one holds more than COORD_GROW_AT_NUM /
 * COORD_GROW_AT_DEN of its slots in nodes. */
#define COORD_GROW_AT_NUM 3u
#define COORD_GROW_AT_DEN 8u
/* Start filling the region at `off` (written and committed, named by no
 * roots) with the published nodes.  0 or an errno (no thread: the table
 * will double on the commit path instead). */
int coord_grow_start(coord_store *s, uint64_t off, uint64_t slots);
/* The region of the table being filled, or 0 (F-META-6). */
uint64_t coord_grow_region(const coord_store *s);
/* At open or after a re-verification: take up again the next table that
 * the file's meta names (F-META-6), checked first, its slots zeroed, and
 * start filling it.  Nothing happens when the note is 0, does not name
 * such a table or the load has not passed COORD_GROW_AT_*; a failure to
 * zero or to start leaves the region dead, as before the note.  Committer
 * thread, between groups. */
void coord_grow_resume(coord_store *s, uint64_t off);
/* A generation was published: its nodes may be inserted. */
void coord_grow_published(coord_store *s);
/* Whether the table being filled can be named by a generation of `nodes`
 * nodes (F-HASH-4); its region and size if so. */
bool coord_grow_ready(const coord_store *s, uint64_t nodes, uint64_t *off,
                      uint64_t *slots);
/* Stop the helper and insert nodes it has not reached, up to `nodes` (whose
 * entries are complete): the table is then whole.  0 or the store hook's
 * error.  Ends the fill either way. */
int coord_grow_complete(coord_store *s, uint64_t nodes);
/* Stop the helper at once (within a few thousand inserts) and forget the
 * table: its region stays dead space unless coord_grow_resume() takes it
 * up again. */
void coord_grow_abandon(coord_store *s);

/* ---- store_apply.c ---------------------------------------------------- */

void coord_group_reset(coord_store *s);
/* Room for `need` bytes in the group's buffer, keeping its bytes.  0 or
 * ENOMEM. */
int coord_group_reserve(coord_group *g, uint64_t need);
void coord_group_free(coord_group *g);

/* ---- assoc_map.c: the key hash map ------------------------------------ */

/* The slot of (source, target, type), or NULL. */
coord_assoc_slot *coord_assoc_find(const coord_assoc_map *m, uint32_t source,
                                   uint32_t target, uint32_t type);
/* Make room for `more` insertions without reallocating.  0 or ENOMEM. */
int coord_assoc_reserve(coord_assoc_map *m, uint64_t more);
/* Find or insert the key (out = in = COORD_ASSOC_NONE when new); room must
 * have been reserved. */
coord_assoc_slot *coord_assoc_put(coord_assoc_map *m, uint32_t source,
                                  uint32_t target, uint32_t type);
void coord_assoc_remove(coord_assoc_map *m, coord_assoc_slot *slot);
void coord_assoc_clear(coord_assoc_map *m);
void coord_assoc_free(coord_assoc_map *m);

/* ---- store_adj.c: adjacency lists in the file -------------------------- */

/* Validate the ADJ_BLOCK at `off` for (node, dir), lying below `end`
 * (F-ADJ-1), its count word included.  0 and *out, or SUTRA_ECORRUPT. */
int coord_adj_block_read(const coord_store *s, uint64_t off, uint64_t end,
                         uint32_t node, uint32_t dir, coord_adj_block *out);
/* The same without reading the count word (out->count 0): for recovery's
 * walks over blocks whose words it stores again or discards. */
int coord_adj_block_desc(const coord_store *s, uint64_t off, uint64_t end,
                         uint32_t node, uint32_t dir, coord_adj_block *out);
/* The committed head block of a list (out->off 0 when empty), with the
 * whole chain validated.  0 or SUTRA_ECORRUPT (err filled). */
int coord_adj_head(const coord_store *s, uint32_t node, uint32_t dir,
                   coord_adj_block *out, coord_error *err);
/* Offset of the committed entry at `pos` of the list whose head is `head`. */
int coord_adj_entry_off(const coord_store *s, const coord_adj_block *head,
                        uint32_t node, uint32_t dir, uint64_t pos,
                        uint64_t *off);
/* Visit every committed entry of the list whose head is `head`, newest
 * block first; `superseded` is the entry's in-place word.  A nonzero return
 * from the visitor stops the walk and is returned. */
typedef int (*coord_adj_visit)(void *ctx, const layout_adj_entry *e,
                               uint64_t pos, uint64_t superseded);
int coord_adj_walk(const coord_store *s, const coord_adj_block *head,
                   uint32_t node, uint32_t dir, coord_adj_visit visit,
                   void *ctx);
/* Build the committed key index if it is not built yet (F-ADJ-3). */
int coord_assoc_index_ready(coord_store *s, coord_error *err);
/* F-REC-4: restore adjacency words to the recovered generation. */
int coord_adj_repair(coord_store *s, coord_error *err);

/* ---- store_assoc.c: the group's association staging and commit -------- */

void coord_assoc_group_reset(coord_group *g);
void coord_assoc_group_free(coord_group *g);
/* Length of a list as the open group sees it (committed + staged). */
int coord_adj_list_len(coord_store *s, uint32_t node, uint32_t dir,
                       uint64_t *len, coord_error *err);
/* Bytes of the new blocks that `n` more entries start in a list of `len`
 * entries: blocks double from LAYOUT_ADJ_MIN_BLOCK (F-ADJ-4), so where each
 * begins depends on the position only. */
uint64_t coord_adj_new_block_bytes(uint64_t len, uint64_t n);
/* Make room for a request that may stage `entries` adjacency entries. */
int coord_assoc_reserve_group(coord_store *s, uint64_t entries);
/* Whether the key is live as the open group sees it. */
bool coord_assoc_group_live(const coord_store *s, uint32_t source,
                            uint32_t target, uint32_t type);
/* Stage a learn (tombstone false) or forget of an association; room was
 * reserved.  0 or SUTRA_ECORRUPT. */
int coord_assoc_stage_edge(coord_store *s, uint32_t source, uint32_t target,
                           uint32_t type, float confidence, uint64_t seq,
                           bool tombstone, coord_error *err);
/* F-ADJ-5: tombstone every live association of `node` at `seq`. */
int coord_assoc_stage_forget_node(coord_store *s, uint32_t node, uint64_t seq,
                                  coord_error *err);
/* Commit steps: place new blocks from *cursor (plan), write their
 * descriptors (write), store entries, counts, superseded words and heads
 * (publish), and fold the group's keys into the committed index (after
 * the generation is published; cannot fail). */
int coord_assoc_plan(coord_store *s, uint64_t *cursor, coord_error *err);
/* Where the plan puts a new block of `bytes` for (node, dir) holding the
 * entries from position `older`, after block `prev`: 0 and *off, or nonzero
 * when there is no such place. */
typedef int (*coord_adj_place)(void *ctx, uint32_t node, uint32_t dir,
                               uint64_t bytes, uint64_t older, uint64_t prev,
                               uint64_t *off);
/* coord_assoc_plan with the blocks placed by `place` (recovery reuses the
 * blocks the log already holds). */
int coord_assoc_plan_placed(coord_store *s, coord_adj_place place, void *ctx,
                            coord_error *err);
/* Register list (node, dir) in the group with `head` as its committed head
 * (recovery: the list as it was at an older generation).  Room must have
 * been reserved; 0, or SUTRA_ECORRUPT when the list is already there. */
/* The group's list (node, dir), or NULL when the group has not touched it. */
const coord_adj_list *coord_assoc_group_list(const coord_store *s,
                                             uint32_t node, uint32_t dir);
int coord_assoc_group_add_list(coord_store *s, uint32_t node, uint32_t dir,
                               const coord_adj_block *head);
int coord_assoc_write_blocks(coord_store *s, uint64_t dirty_end,
                             uint64_t *cursor);
/* The descriptors of the group's new blocks into `buf`, which holds the
 * file from offset `base` and is zero over the blocks (store_commit.c's
 * ranged write, F-COM-6). */
void coord_assoc_lay_out_blocks(const coord_store *s, uint8_t *buf,
                                uint64_t base);
int coord_assoc_publish(coord_store *s);
void coord_assoc_merge(coord_store *s);

/* ---- recover.c -------------------------------------------------------- */

/* Validate the picked meta's roots and the node chunks it needs, and cache
 * chunk and hash pointers.  With `repair`, also restore the in-place words
 * to the recovered generation (F-REC-*).  `in_slot`: `meta` is a valid
 * slot of the file; otherwise (roots from a checkpoint's commit record,
 * F-REC-9) its slot is written and synced before its generation is
 * published (F-META-2). */
int coord_recover(coord_store *s, const layout_meta *meta, bool repair,
                  bool in_slot, coord_error *err);

/* ---- recover_adj.c: adjacency effects of the log tail (F-REC-5/6) ---- */

/* The records of a recovered range that shape adjacency, noted in log
 * (= seq) order while the range is scanned. */
typedef struct coord_adj_tail {
    uint64_t from;         /* start of the range: the generation it builds on
                              ended here (data_start: the empty file)       */
    uint64_t *ops;         /* ASSOC, ASSOC_TOMBSTONE, CONCEPT_TOMBSTONE     */
    uint64_t op_count, op_cap;
    uint64_t *blocks;      /* ADJ_BLOCK regions                             */
    uint64_t block_count, block_cap;
    uint64_t first_commit; /* the range's first commit record, 0 = none     */
    bool no_memory;
} coord_adj_tail;

/* Note one verified record of the range (any type). */
void coord_adj_tail_note(coord_adj_tail *t, uint64_t off, const layout_rec *rec);
void coord_adj_tail_free(coord_adj_tail *t);
/* Store again every adjacency word the range's records set (entries, count
 * and superseded words, heads), so the lists are exactly those of the
 * recovered generation s->roots.  0, SUTRA_ECORRUPT, ENOMEM or errno. */
int coord_adj_replay(coord_store *s, coord_adj_tail *t, coord_error *err);

/* ---- rebuild.c -------------------------------------------------------- */

/* F-REC-5: check every record between the durable end and committed_end
 * (checksums, seqs, commit bookkeeping).  0 or SUTRA_ECORRUPT (err says
 * where). */
int coord_verify_tail(coord_store *s, coord_error *err);
/* F-REC-6: rebuild the meta slot, node table, chunk words and hash table
 * from the longest valid prefix of the log.  `meta_generation` is the
 * generation the picked meta claimed.  0, SUTRA_ECORRUPT or errno. */
int coord_rebuild(coord_store *s, uint64_t meta_generation, coord_error *err);
/* F-REC-7: extend s->roots over the complete groups logged past its
 * committed end (each one's records checksummed, seqs, generation,
 * prev_commit and roots continuing the chain) and store the node chunk
 * words they allocated; *generations = how many were added.  The other
 * in-place words are left to F-REC-5 over the extended range. */
int coord_roll_forward(coord_store *s, uint64_t *generations, coord_error *err);
/* F-META-2/4: write and sync the meta slot of s->roots' generation, and
 * invalidate the other slot if it names a newer one.  0 or errno. */
int coord_write_meta(coord_store *s);
/* The same for the given roots (an earlier generation of the log). */
int coord_write_meta_roots(coord_store *s, const layout_roots *roots);
/* F-REC-7: zero the eight words at s->roots.committed_end (within the
 * file), so no later recovery rolls forward into what this one discarded.
 * The caller syncs.  0 or errno. */
int coord_seal_log_end(coord_store *s);

#endif
