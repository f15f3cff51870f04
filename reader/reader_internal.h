/*
 * reader/reader_internal.h — what the reader's files share: the handle, the
 * snapshot's private fields, and the guarded access to the mapping.
 *
 * The mapping is hostile input that another process changes while we read
 * it.  Two rules keep a reader safe: every offset is bounds-checked against
 * the mapping and against the bytes the file is known to hold before it is
 * dereferenced (a page past EOF is SIGBUS), and every in-place word (generation,
 * hash slots, node chunk offsets, node heads) is read with an acquire load so
 * the record bytes it names are visible (F-HDR-6, F-LOG-7).
 */
#ifndef SUTRA_READER_INTERNAL_H
#define SUTRA_READER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "layout/format.h"
#include "sutra/sutra.h"

struct sutra_db {
    const uint8_t *map;        /* PROT_READ, MAP_SHARED, map_size bytes     */
    uint64_t map_size;
    uint64_t map_reserve;      /* the header's: no valid file is larger     */
    int fd;                    /* kept for fstat when the file grows        */
    uint32_t vector_dim;       /* from the validated header                 */
    uint16_t format_major;
    uint16_t format_minor;
    uint8_t uuid[16];
    uint64_t created_ns;
    /* Bytes the file is known to hold.  Only grows; relaxed atomics are
     * enough because it only bounds reads, and the file never shrinks while
     * live (docs/format.md §3).  Refreshed with fstat on the rare path where a
     * committed_end or a record lies past it. */
    uint64_t known_size;
    /* Per node-table chunk, the offset at which its NODE_CHUNK region was
     * last validated (0 = never): while chunk word k still holds that
     * offset, an entry needs only the bounds check against the snapshot
     * (reader_node_entry()).  A cache of a check, shared by every thread
     * using the handle: relaxed atomics, any thread may fill it. */
    uint64_t chunk_seen[LAYOUT_NODE_CHUNKS];
};

/* Snapshot private_[] slots. */
enum {
    READER_SNAP_COMMITTED_END = 0,
    READER_SNAP_NODE_COUNT = 1,
    READER_SNAP_HASH_ROOT = 2,
    READER_SNAP_HASH_SLOTS = 3,
    READER_SNAP_VERSION_COUNT = 4,
    READER_SNAP_TOMBSTONE_COUNT = 5,
    READER_SNAP_ASSOC_COUNT = 6,
    READER_SNAP_FILE_SIZE = 7,
};

/* Bounded retries for the seqlock and for lookups that meet a word the
 * writer is changing under them (then SUTRA_ECORRUPT). */
#define READER_SNAPSHOT_RETRIES 64
#define READER_LOOKUP_RETRIES 8

static inline const layout_header *reader_header(const sutra_db *db)
{
    return (const layout_header *)db->map;
}

/* Acquire load of an in-place 64-bit word of the mapping. */
static inline uint64_t reader_load_word(const uint64_t *word)
{
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

/* True when [off, off + len) lies inside the mapping and inside the bytes
 * the file holds (refreshing the known size with one fstat if needed).
 * Any thread; the only system call a lookup can make, and only for records
 * newer than its snapshot. */
bool reader_range_readable(const sutra_db *db, uint64_t off, uint64_t len);

/* Whether [off, off + len) lies past this handle's mapping (not merely past
 * the file size it knows) but inside the file's reserve, where the file may
 * grow: the read needs a bigger mapping, SUTRA_EMAPFULL, and retrying
 * cannot help.  Past the reserve nothing valid lies: that is damage. */
bool reader_beyond_mapping(const sutra_db *db, uint64_t off, uint64_t len);

/* The same for the record at `off`, whose first `head_len` bytes hold its
 * header: false while the header itself lies past the file size, and for
 * an offset no record can start at (F-LOG-2). */
bool reader_record_beyond_mapping(const sutra_db *db, uint64_t off,
                                  uint64_t head_len);

/* Validate a roots copy (from a meta slot or a commit record) and fill a
 * snapshot from it.  Returns 0 or SUTRA_ECORRUPT.  Any thread. */
int reader_snapshot_from_roots(const sutra_db *db, const layout_roots *roots,
                               uint64_t file_size, struct sutra_snapshot *out);

/* Read the roots of the newest published generation (seqlock, F-SNAP-2).
 * Returns 0, SUTRA_ECORRUPT or SUTRA_ESUPERSEDED.  Any thread. */
int reader_read_current(const sutra_db *db, layout_roots *roots,
                        uint64_t *file_size);

/* The snapshot fields a lookup or a traversal needs, unpacked once. */
typedef struct reader_view {
    const sutra_db *db;
    uint64_t committed_end;
    uint64_t last_seq;
    uint64_t node_count;
    uint64_t hash_root;
    uint64_t hash_slots;
} reader_view;

/* Unpack a snapshot (the caller checked snap and snap->db). */
void reader_view_init(reader_view *v, const struct sutra_snapshot *snap);

/* Validate node chunk `chunk`'s NODE_CHUNK region at `off` (alignment,
 * place, descriptor) and remember the offset in db->chunk_seen.  The
 * caller checked that the chunk lies below its snapshot's committed_end.
 * Out of line: a handle runs it once per chunk offset. */
bool reader_node_chunk_valid(const sutra_db *db, uint32_t chunk, uint64_t off);

/* Node `node`'s table entry (node < v->node_count), or NULL when its chunk
 * fails validation (F-NODE-2): a damaged file.  The chunk word and the
 * snapshot's bounds are checked on every call; the region's descriptor,
 * committed bytes that never change, once per chunk offset and handle
 * (sutra_db.chunk_seen), so a word naming any other offset is validated
 * again.  Inline because traversals call it once per edge.  Any thread,
 * lock-free. */
static inline const layout_node *reader_node_entry(const reader_view *v,
                                                   uint32_t node)
{
    uint32_t chunk;
    uint64_t index;
    layout_node_locate(node, &chunk, &index);
    const sutra_db *db = v->db;
    uint64_t off = __atomic_load_n(&reader_header(db)->node_chunk[chunk],
                                   __ATOMIC_ACQUIRE);
    uint64_t bytes = LAYOUT_REGION_BODY +
                     layout_node_chunk_entries(chunk) * sizeof(layout_node);
    if (off > v->committed_end || bytes > v->committed_end - off)
        return NULL;
    if ((off == 0 ||
         off != __atomic_load_n(&db->chunk_seen[chunk], __ATOMIC_RELAXED)) &&
        !reader_node_chunk_valid(db, chunk, off))
        return NULL;
    return (const layout_node *)(db->map + off + LAYOUT_REGION_BODY) + index;
}

/* Find `id` in the snapshot: 0 with its node number and visible version,
 * SUTRA_ENOTFOUND (never learned or forgotten as of the snapshot) or
 * SUTRA_ECORRUPT (including words still moving after bounded retries).
 * Any thread, lock-free, no allocation. */
int reader_lookup_node(const reader_view *v, const uint8_t id[16],
                       uint32_t *node, const layout_concept **out);

/* reader_lookup_node() in two steps, for callers that overlap other reads
 * with the version walk.  reader_find_node: the hash probe alone; 0 with
 * the node and its validated table entry, SUTRA_ENOTFOUND (no node of the
 * snapshot has the id; says nothing of liveness) or SUTRA_ECORRUPT.
 * reader_node_version: the newest version of that node visible to the
 * snapshot; 0, SUTRA_ENOTFOUND (forgotten) or SUTRA_ECORRUPT.  Any thread,
 * lock-free, no allocation. */
int reader_find_node(const reader_view *v, const uint8_t id[16],
                     uint32_t *node, const layout_node **entry);
int reader_node_version(const reader_view *v, const layout_node *entry,
                        uint32_t node, const layout_concept **out);

#endif
