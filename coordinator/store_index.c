/*
 * coordinator/store_index.c — the committer's view of the index structures
 * already in storage.dat: bounds-checked access to committed bytes, region
 * descriptors, the node table (F-NODE-*) and the id -> node hash index
 * (F-HASH-*).
 *
 * The file is treated as hostile input even here: a damaged file must give
 * SUTRA_ECORRUPT, never a wild read.  Every function is committer thread
 * only; the only writes (coord_hash_insert) go through the io seam with
 * release stores, so reader processes probing the same table concurrently
 * see either an empty slot or a complete one.
 */
#include "coordinator/store_internal.h"

#include <string.h>

#include "sutra/sutra.h"

const void *coord_committed_bytes(const coord_store *s, uint64_t off,
                                  uint64_t len)
{
    uint64_t end = s->roots.committed_end;
    if (off < LAYOUT_DATA_START || off > end || len > end - off)
        return NULL;
    return s->map + off;
}

bool coord_region_valid(const coord_store *s, uint64_t off, uint64_t end,
                        uint16_t type, uint64_t arg0, uint64_t arg1,
                        uint64_t arg2, uint64_t body_len)
{
    /* F-LOG-3: regions are 64-aligned; F-LOG-6: descriptor checksummed. */
    uint64_t total = LAYOUT_REGION_BODY + body_len;
    if (off % LAYOUT_REGION_ALIGN != 0 || off < LAYOUT_DATA_START ||
        off > end || total > end - off || !layout_region_fits(total))
        return false;
    const layout_region *r = (const layout_region *)(s->map + off);
    return r->rec.type == type && (r->rec.flags & LAYOUT_REC_F_REGION) &&
           layout_rec_size(&r->rec) == total && r->arg0 == arg0 && r->arg1 == arg1 &&
           r->arg2 == arg2 && layout_rec_verify(&r->rec);
}

layout_node *coord_node_entry(const coord_store *s, uint32_t node)
{
    uint32_t k;
    uint64_t index;
    layout_node_locate(node, &k, &index);
    if (k >= LAYOUT_NODE_CHUNKS || !s->chunk[k])
        return NULL;
    return &s->chunk[k][index];
}

int coord_hash_find(const coord_store *s, const uint8_t id[16], uint32_t *node)
{
    uint64_t h = layout_id_hash(id);
    uint64_t mask = s->roots.hash_slots - 1;
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = 0; i <= mask; i++) {
        uint64_t v = __atomic_load_n(&s->hash[(h + i) & mask], __ATOMIC_ACQUIRE);
        if (v == 0)
            return SUTRA_ENOTFOUND;
        if ((uint32_t)(v >> 32) != tag || (uint32_t)v == 0)
            continue;
        uint32_t n = (uint32_t)v - 1;
        if (n >= s->roots.node_count)
            continue; /* F-HASH-3: a slot may name a node past the snapshot */
        const layout_node *e = coord_node_entry(s, n);
        if (e && memcmp(e->id, id, 16) == 0) {
            *node = n;
            return 0;
        }
    }
    return SUTRA_ENOTFOUND;
}

void coord_hash_prefetch(const coord_store *s, const uint8_t id[16])
{
    uint64_t mask = s->roots.hash_slots - 1;
    __builtin_prefetch(&s->hash[layout_id_hash(id) & mask], 0, 1);
}

int coord_hash_insert(coord_store *s, uint64_t *table, uint64_t slots,
                      const uint8_t id[16], uint32_t node)
{
    /* F-HASH-2: the first empty slot on the probe path; slots are filled
     * once and never moved, so concurrent probes stay correct. */
    uint64_t h = layout_id_hash(id);
    uint64_t at = layout_hash_free_slot(table, slots, h);
    if (at == slots)
        return SUTRA_EFULL; /* unreachable below the F-HASH-4 load limit */
    return s->io->store64(s->io, &table[at], layout_hash_word(h, node));
}

const layout_concept *coord_version_at(const coord_store *s, uint64_t off,
                                       uint64_t end, uint32_t node,
                                       const uint8_t id[16])
{
    if (off % LAYOUT_RECORD_ALIGN != 0 || off < LAYOUT_DATA_START ||
        off > end || sizeof(layout_concept) > end - off)
        return NULL;
    const layout_concept *c = (const layout_concept *)(s->map + off);
    if (c->rec.type != LAYOUT_REC_CONCEPT &&
        c->rec.type != LAYOUT_REC_CONCEPT_TOMBSTONE)
        return NULL;
    if (c->rec.length < sizeof(layout_concept) || c->rec.length > end - off)
        return NULL;
    if (c->node != node || memcmp(c->id, id, 16) != 0)
        return NULL;
    return c;
}
