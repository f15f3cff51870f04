/*
 * reader/lookup.c — sutra_get() and sutra_contains(): the hot path.
 *
 * A lookup is three dependent reads in the common case: the hash slot
 * (F-HASH-2), the node entry (F-NODE-1), and the newest version record.  It
 * allocates nothing, takes no lock and makes no system call (the one
 * exception: a record newer than the snapshot that lies past the file size
 * this handle knows costs an fstat).  Checksums are not verified here — the
 * verifier does that — but every word reached through an in-place index word
 * is validated before use (type, bounds, node number, id; F-SNAP-3), since
 * the writer may be recovering underneath us.  A record newer than the
 * snapshot that fails validation means the words are moving: the lookup
 * restarts a bounded number of times, then reports SUTRA_ECORRUPT.  A record
 * inside the snapshot that fails is damage: SUTRA_ECORRUPT at once.
 *
 * Visibility (F-SNAP-1): a record is visible to a snapshot iff its offset is
 * below the snapshot's committed_end and its seq is at most its last_seq.
 * In-place words may already name newer records, so a lookup walks the
 * `prev` chain back to the newest visible version.
 */
#include <string.h>

#include "reader/reader_internal.h"

void reader_view_init(reader_view *v, const struct sutra_snapshot *snap)
{
    v->db = snap->db;
    v->committed_end = snap->private_[READER_SNAP_COMMITTED_END];
    v->last_seq = snap->last_seq;
    v->node_count = snap->private_[READER_SNAP_NODE_COUNT];
    v->hash_root = snap->private_[READER_SNAP_HASH_ROOT];
    v->hash_slots = snap->private_[READER_SNAP_HASH_SLOTS];
}

bool reader_node_chunk_valid(const sutra_db *db, uint32_t chunk, uint64_t off)
{
    if (off % LAYOUT_REGION_ALIGN != 0 || off < LAYOUT_DATA_START)
        return false;
    const layout_region *reg = (const layout_region *)(db->map + off);
    if (reg->rec.type != LAYOUT_REC_NODE_CHUNK ||
        !(reg->rec.flags & LAYOUT_REC_F_REGION) || reg->arg0 != chunk ||
        reg->arg1 != layout_node_chunk_entries(chunk) ||
        reg->arg2 != layout_node_chunk_first(chunk))
        return false;
    /* a cache of this check, shared by the handle's threads: the one
     * field of sutra_db written after open */
    __atomic_store_n((uint64_t *)&db->chunk_seen[chunk], off, __ATOMIC_RELAXED);
    return true;
}

/* The version record at `off` if it is a sane record of `node`/`id`, else
 * NULL.  Reads nothing past the mapping or past the file's known size. */
static const layout_concept *reader_version_at(const reader_view *v,
                                               uint64_t off, uint32_t node,
                                               const uint8_t id[16])
{
    const sutra_db *db = v->db;
    if (off % LAYOUT_RECORD_ALIGN != 0 || off < LAYOUT_DATA_START)
        return NULL;
    bool committed = off < v->committed_end &&
                     sizeof(layout_concept) <= v->committed_end - off;
    if (!committed && !reader_range_readable(db, off, sizeof(layout_concept)))
        return NULL;
    const layout_concept *c = (const layout_concept *)(db->map + off);
    if (c->rec.type != LAYOUT_REC_CONCEPT &&
        c->rec.type != LAYOUT_REC_CONCEPT_TOMBSTONE)
        return NULL;
    if (c->rec.length < sizeof(layout_concept) || c->node != node ||
        memcmp(c->id, id, 16) != 0 || c->prev >= off)
        return NULL;
    if (!reader_range_readable(db, off, c->rec.length))
        return NULL;
    return c;
}

/* The payload of the visible version must lie inside the snapshot
 * (F-CON-3, F-CON-4): shared content points into an earlier record, and an
 * embedding is 64-byte aligned with the file's dimension. */
static bool reader_payload_valid(const reader_view *v, const layout_concept *c)
{
    if (c->rec.type == LAYOUT_REC_CONCEPT_TOMBSTONE)
        return true;
    uint64_t end = v->committed_end;
    if (c->content_len) {
        if (c->content_off < LAYOUT_DATA_START || c->content_off > end ||
            c->content_len > end - c->content_off)
            return false;
    }
    if (c->dim) {
        uint64_t bytes = (uint64_t)c->dim * sizeof(float);
        if (c->dim != v->db->vector_dim ||
            c->embedding_off % LAYOUT_REGION_ALIGN != 0 ||
            c->embedding_off < LAYOUT_DATA_START || c->embedding_off > end ||
            bytes > end - c->embedding_off)
            return false;
    }
    return true;
}

/* Walk node's versions from its head to the newest one visible to the
 * snapshot.  Returns 0 (*out set), SUTRA_ENOTFOUND, SUTRA_ERETRY (a newer
 * record did not validate) or SUTRA_ECORRUPT. */
static int reader_walk_versions(const reader_view *v, const layout_node *entry,
                                uint32_t node, const uint8_t id[16],
                                const layout_concept **out)
{
    uint64_t off = reader_load_word(&entry->head);
    if (off == 0)
        return SUTRA_ERETRY; /* a committed node always has a head */
    while (off != 0) {
        const layout_concept *c = reader_version_at(v, off, node, id);
        bool inside = off < v->committed_end;
        if (!c && inside)
            return SUTRA_ECORRUPT;
        if (!c) /* newer than the snapshot: its prev link is needed */
            return reader_record_beyond_mapping(v->db, off,
                                                sizeof(layout_concept))
                       ? SUTRA_EMAPFULL
                       : SUTRA_ERETRY;
        if (inside && c->rec.seq <= v->last_seq) {
            if (!reader_payload_valid(v, c) ||
                off + c->rec.length > v->committed_end)
                return SUTRA_ECORRUPT;
            if (c->rec.type == LAYOUT_REC_CONCEPT_TOMBSTONE)
                return SUTRA_ENOTFOUND;
            *out = c;
            return 0;
        }
        off = c->prev; /* strictly smaller: reader_version_at checked */
    }
    return SUTRA_ENOTFOUND;
}

/* One probe sequence over the snapshot's hash table (F-HASH-2).  The node
 * an id names never changes once its slot is published (F-NODE-1), so a
 * probe needs no retry; only the version walk can meet moving words. */
int reader_find_node(const reader_view *v, const uint8_t id[16],
                     uint32_t *node_out, const layout_node **entry_out)
{
    if (v->hash_root == 0)
        return SUTRA_ENOTFOUND;
    uint64_t h = layout_id_hash(id);
    uint64_t tag = h >> 32;
    uint64_t mask = v->hash_slots - 1;
    const uint64_t *slots =
        (const uint64_t *)(v->db->map + v->hash_root + LAYOUT_REGION_BODY);
    uint64_t i = h & mask;
    for (uint64_t probes = 0; probes < v->hash_slots; probes++) {
        uint64_t word = reader_load_word(&slots[i]);
        if (word == 0)
            return SUTRA_ENOTFOUND;
        i = (i + 1) & mask;
        uint32_t node_plus_one = (uint32_t)word;
        if ((word >> 32) != tag || node_plus_one == 0 ||
            node_plus_one - 1u >= v->node_count)
            continue; /* another id, or a node newer than the snapshot */
        uint32_t node = node_plus_one - 1u;
        const layout_node *entry = reader_node_entry(v, node);
        if (!entry)
            return SUTRA_ECORRUPT;
        if (memcmp(entry->id, id, 16) != 0)
            continue; /* tag collision */
        *node_out = node;
        *entry_out = entry;
        return 0;
    }
    return SUTRA_ENOTFOUND;
}

int reader_node_version(const reader_view *v, const layout_node *entry,
                        uint32_t node, const layout_concept **out)
{
    for (int attempt = 0; attempt < READER_LOOKUP_RETRIES; attempt++) {
        const layout_concept *c = NULL;
        int rc = reader_walk_versions(v, entry, node, entry->id, &c);
        if (rc == 0)
            *out = c;
        if (rc != SUTRA_ERETRY)
            return rc;
    }
    return SUTRA_ECORRUPT;
}

int reader_lookup_node(const reader_view *v, const uint8_t id[16],
                       uint32_t *node, const layout_concept **out)
{
    uint32_t n = 0;
    const layout_node *entry = NULL;
    int rc = reader_find_node(v, id, &n, &entry);
    if (rc != 0)
        return rc;
    rc = reader_node_version(v, entry, n, out);
    if (rc == 0)
        *node = n;
    return rc;
}

static int reader_lookup(const struct sutra_snapshot *snap, const sutra_id *id,
                         const layout_concept **out)
{
    if (!snap || !snap->db || !id)
        return SUTRA_EINVAL;
    reader_view v;
    reader_view_init(&v, snap);
    uint32_t node;
    return reader_lookup_node(&v, id->bytes, &node, out);
}

int sutra_get(const struct sutra_snapshot *snap, const sutra_id *id,
              sutra_concept *out)
{
    if (!out)
        return SUTRA_EINVAL;
    const layout_concept *c;
    int rc = reader_lookup(snap, id, &c);
    if (rc != 0)
        return rc;
    const uint8_t *map = snap->db->map;
    memcpy(out->id.bytes, c->id, 16);
    out->content = c->content_len ? map + c->content_off : NULL;
    out->content_len = c->content_len;
    out->embedding = c->dim ? (const float *)(map + c->embedding_off) : NULL;
    out->dim = c->dim;
    out->strength = c->strength;
    out->confidence = c->confidence;
    out->created_ns = c->created_ns;
    out->updated_ns = c->updated_ns;
    out->seq = c->rec.seq;
    return 0;
}

int sutra_contains(const struct sutra_snapshot *snap, const sutra_id *id,
                   bool *found)
{
    if (!found)
        return SUTRA_EINVAL;
    const layout_concept *c;
    int rc = reader_lookup(snap, id, &c);
    if (rc != 0 && rc != SUTRA_ENOTFOUND)
        return rc;
    *found = rc == 0;
    return 0;
}
