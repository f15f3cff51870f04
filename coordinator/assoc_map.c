/*
 * coordinator/assoc_map.c — the hash map from an association key (source
 * node, target node, type) to two 32-bit references, used twice by the
 * store: as the committed key index (references = list positions of the
 * key's current adjacency entries) and as a group's overlay (references =
 * staged entries).  The writer needs it to find the entries a new write
 * supersedes without walking adjacency lists (docs/format.md F-ADJ-3).
 *
 * Open addressing with linear probing, at most 3/4 full, and backward-shift
 * deletion (no tombstones, so probe lengths do not degrade as keys come and
 * go).  A slot is 20 bytes.  Insertions never allocate: callers reserve
 * room first, so staging and merging cannot fail half-way.
 *
 * Concurrency: committer thread only; the map is private memory.
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAP_MIN_CAP 64u

static uint64_t key_hash(uint32_t source, uint32_t target, uint32_t type)
{
    uint64_t h = ((uint64_t)source << 32 | target) * 0x9E3779B97F4A7C15ull;
    h ^= ((uint64_t)type + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static bool slot_empty(const coord_assoc_slot *s)
{
    return s->source == COORD_ASSOC_NONE;
}

coord_assoc_slot *coord_assoc_find(const coord_assoc_map *m, uint32_t source,
                                   uint32_t target, uint32_t type)
{
    if (!m->cap)
        return NULL;
    uint64_t mask = m->cap - 1;
    for (uint64_t i = key_hash(source, target, type) & mask;; i = (i + 1) & mask) {
        coord_assoc_slot *s = &m->slots[i];
        if (slot_empty(s))
            return NULL;
        if (s->source == source && s->target == target && s->type == type)
            return s;
    }
}

/* Insert a key known to be absent; room exists. */
static coord_assoc_slot *insert_new(coord_assoc_map *m,
                                    const coord_assoc_slot *v)
{
    uint64_t mask = m->cap - 1;
    uint64_t i = key_hash(v->source, v->target, v->type) & mask;
    while (!slot_empty(&m->slots[i]))
        i = (i + 1) & mask;
    m->slots[i] = *v;
    m->count++;
    return &m->slots[i];
}

static int rehash(coord_assoc_map *m, uint64_t cap)
{
    coord_assoc_slot *slots = malloc(cap * sizeof(*slots));
    if (!slots)
        return ENOMEM;
    memset(slots, 0xFF, cap * sizeof(*slots)); /* source = NONE: empty */
    coord_assoc_map next = {slots, cap, 0};
    for (uint64_t i = 0; i < m->cap; i++)
        if (!slot_empty(&m->slots[i]))
            insert_new(&next, &m->slots[i]);
    free(m->slots);
    *m = next;
    return 0;
}

int coord_assoc_reserve(coord_assoc_map *m, uint64_t more)
{
    uint64_t need = m->count + more;
    if (need > (UINT64_MAX >> 8))
        return ENOMEM;
    uint64_t cap = m->cap ? m->cap : MAP_MIN_CAP;
    while (need * 4 > cap * 3)
        cap *= 2;
    if (cap == m->cap)
        return 0;
    if (cap > SIZE_MAX / sizeof(coord_assoc_slot))
        return ENOMEM;
    return rehash(m, cap);
}

coord_assoc_slot *coord_assoc_put(coord_assoc_map *m, uint32_t source,
                                  uint32_t target, uint32_t type)
{
    coord_assoc_slot *s = coord_assoc_find(m, source, target, type);
    if (s)
        return s;
    coord_assoc_slot v = {source, target, type, COORD_ASSOC_NONE,
                          COORD_ASSOC_NONE};
    return insert_new(m, &v);
}

void coord_assoc_remove(coord_assoc_map *m, coord_assoc_slot *slot)
{
    /* Backward shift: pull later members of the probe run into the hole
     * when their home slot does not lie between the hole and them. */
    uint64_t mask = m->cap - 1;
    uint64_t hole = (uint64_t)(slot - m->slots);
    for (uint64_t i = (hole + 1) & mask;; i = (i + 1) & mask) {
        coord_assoc_slot *s = &m->slots[i];
        if (slot_empty(s))
            break;
        uint64_t home = key_hash(s->source, s->target, s->type) & mask;
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            m->slots[hole] = *s;
            hole = i;
        }
    }
    memset(&m->slots[hole], 0xFF, sizeof(m->slots[hole]));
    m->count--;
}

void coord_assoc_clear(coord_assoc_map *m)
{
    if (m->count)
        memset(m->slots, 0xFF, m->cap * sizeof(*m->slots));
    m->count = 0;
}

void coord_assoc_free(coord_assoc_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}
