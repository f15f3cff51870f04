/*
 * coordinator/store_assoc.c — associations in the open group and their
 * publication at commit (docs/format.md F-ASSOC-*, F-ADJ-*).
 *
 * Staging.  Every association write appends an adjacency entry to the
 * source's out-list and one to the target's in-list, and supersedes the
 * key's current entries.  The group keeps those entries in memory (`pool`,
 * in seq order, each with its list position), the committed entries it
 * supersedes (`sup`), and an overlay of the keys it wrote, so later ops of
 * the same group see its effects.  Nothing touches the file: an aborted or
 * failed group leaves it as it was.  Everything is sized by
 * coord_assoc_reserve_group() before a request is staged, so staging itself
 * never allocates.
 *
 * Commit (store_commit.c drives it, F-LOG-7): plan new ADJ_BLOCK regions
 * after the group's records (a full head gets a block of twice its size;
 * nothing is ever copied) and resolve the offsets of superseded entries;
 * write the block descriptors with the group; after the sync, store the
 * entries, then the count words, then the superseded words, then the
 * adjacency heads, all before the meta slot.  Once the generation is
 * published the overlay is folded into the committed key index.
 *
 * Concurrency: committer thread only.  Words are stored through the io
 * seam with release order; readers ignore entries past a count word and
 * entries or superseded values newer than their snapshot (F-ADJ-3).
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/sutra.h"

#define NONE COORD_ASSOC_NONE
#define GROUP_KEEP_ENTRIES (1u << 20) /* larger arrays are freed at reset */

/* ---- group state ------------------------------------------------------- */

static void free_arrays(coord_assoc_group *a)
{
    free(a->lists);
    free(a->list_map);
    free(a->pool);
    free(a->sup);
    free(a->scratch);
    free(a->blocks);
    coord_assoc_map overlay = a->overlay;
    memset(a, 0, sizeof(*a));
    a->overlay = overlay;
}

void coord_assoc_group_reset(coord_group *g)
{
    coord_assoc_group *a = &g->assoc;
    if (a->pool_cap > GROUP_KEEP_ENTRIES) {
        coord_assoc_free(&a->overlay);
        free_arrays(a);
        return;
    }
    coord_assoc_clear(&a->overlay);
    if (a->list_count)
        memset(a->list_map, 0, (size_t)a->list_map_cap * sizeof(*a->list_map));
    a->list_count = a->pool_count = a->sup_count = a->block_count = 0;
    a->block_bytes = 0;
}

void coord_assoc_group_free(coord_group *g)
{
    coord_assoc_free(&g->assoc.overlay);
    free_arrays(&g->assoc);
}

static int grow(void **arr, uint32_t *cap, uint64_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    if (need > UINT32_MAX / 2)
        return ENOMEM;
    uint64_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *p = realloc(*arr, (size_t)c * size);
    if (!p)
        return ENOMEM;
    *arr = p;
    *cap = (uint32_t)c;
    return 0;
}

static uint32_t list_hash(uint32_t node, uint32_t dir)
{
    uint64_t h = ((uint64_t)node * 2 + dir) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

static int list_map_reserve(coord_assoc_group *a, uint64_t lists)
{
    if ((uint64_t)a->list_map_cap >= 2 * lists + 2)
        return 0;
    uint64_t cap = a->list_map_cap ? a->list_map_cap : 128;
    while (cap < 2 * lists + 2)
        cap *= 2;
    if (cap > UINT32_MAX / 2)
        return ENOMEM;
    uint32_t *map = calloc(cap, sizeof(*map));
    if (!map)
        return ENOMEM;
    free(a->list_map);
    a->list_map = map;
    a->list_map_cap = (uint32_t)cap;
    uint32_t mask = a->list_map_cap - 1;
    for (uint32_t i = 0; i < a->list_count; i++) {
        uint32_t j = list_hash(a->lists[i].node, a->lists[i].dir) & mask;
        while (map[j])
            j = (j + 1) & mask;
        map[j] = i + 1;
    }
    return 0;
}

int coord_assoc_reserve_group(coord_store *s, uint64_t entries)
{
    coord_assoc_group *a = &s->group.assoc;
    uint64_t pool = (uint64_t)a->pool_count + entries;
    uint64_t lists = (uint64_t)a->list_count + entries;
    if (grow((void **)&a->pool, &a->pool_cap, pool, sizeof(*a->pool)) ||
        grow((void **)&a->sup, &a->sup_cap, (uint64_t)a->sup_count + entries,
             sizeof(*a->sup)) ||
        grow((void **)&a->lists, &a->list_cap, lists, sizeof(*a->lists)) ||
        list_map_reserve(a, lists) ||
        grow((void **)&a->scratch, &a->scratch_cap, entries,
             sizeof(*a->scratch)) ||
        coord_assoc_reserve(&a->overlay, entries))
        return ENOMEM;
    /* The merge after publish must not allocate. */
    if (s->assoc_index_built &&
        coord_assoc_reserve(&s->assoc_index, a->overlay.count + entries))
        return ENOMEM;
    return 0;
}

/* ---- lists ------------------------------------------------------------- */

uint64_t coord_adj_new_block_bytes(uint64_t len, uint64_t n)
{
    uint64_t total = 0;
    for (uint64_t bytes = LAYOUT_ADJ_MIN_BLOCK, start = 0;
         n && start < len + n && layout_region_fits(bytes); bytes *= 2) {
        if (start >= len)
            total += bytes;
        start += layout_adj_capacity(bytes);
    }
    return total;
}

static coord_adj_list *list_find(const coord_assoc_group *a, uint32_t node,
                                 uint32_t dir)
{
    if (!a->list_map_cap)
        return NULL;
    uint32_t mask = a->list_map_cap - 1;
    for (uint32_t j = list_hash(node, dir) & mask;; j = (j + 1) & mask) {
        uint32_t v = a->list_map[j];
        if (!v)
            return NULL;
        coord_adj_list *l = &a->lists[v - 1];
        if (l->node == node && l->dir == dir)
            return l;
    }
}

static uint32_t list_insert(coord_assoc_group *a, uint32_t node, uint32_t dir,
                            const coord_adj_block *head)
{
    uint32_t i = a->list_count++;
    /* F-ADJ-4: the first new block follows the head's capacity and is twice
     * its size; a list without blocks starts with the smallest one. */
    a->lists[i] = (coord_adj_list){
        node, dir, *head, head->older + head->count, 0, NONE, NONE, 0, 0,
        head->off ? head->older + head->cap : 0,
        head->off ? head->bytes * 2 : LAYOUT_ADJ_MIN_BLOCK};
    uint32_t mask = a->list_map_cap - 1;
    uint32_t j = list_hash(node, dir) & mask;
    while (a->list_map[j])
        j = (j + 1) & mask;
    a->list_map[j] = i + 1;
    return i;
}

const coord_adj_list *coord_assoc_group_list(const coord_store *s,
                                             uint32_t node, uint32_t dir)
{
    return list_find(&s->group.assoc, node, dir);
}

int coord_assoc_group_add_list(coord_store *s, uint32_t node, uint32_t dir,
                               const coord_adj_block *head)
{
    coord_assoc_group *a = &s->group.assoc;
    if (list_find(a, node, dir) || a->list_count >= a->list_cap)
        return SUTRA_ECORRUPT;
    list_insert(a, node, dir, head);
    return 0;
}

/* The group's list (node, dir), read from the file on first touch. */
static int list_get(coord_store *s, uint32_t node, uint32_t dir,
                    uint32_t *index, coord_error *err)
{
    coord_assoc_group *a = &s->group.assoc;
    coord_adj_list *l = list_find(a, node, dir);
    if (l) {
        *index = (uint32_t)(l - a->lists);
        return 0;
    }
    coord_adj_block head;
    int rc = coord_adj_head(s, node, dir, &head, err);
    if (rc)
        return rc;
    *index = list_insert(a, node, dir, &head);
    return 0;
}

int coord_adj_list_len(coord_store *s, uint32_t node, uint32_t dir,
                       uint64_t *len, coord_error *err)
{
    const coord_adj_list *l = list_find(&s->group.assoc, node, dir);
    if (l) {
        *len = l->committed + l->staged;
        return 0;
    }
    coord_adj_block head;
    int rc = coord_adj_head(s, node, dir, &head, err);
    if (rc)
        return rc;
    *len = head.older + head.count;
    return 0;
}

static uint32_t append_entry(coord_assoc_group *a, uint32_t list,
                             const layout_adj_entry *e)
{
    coord_adj_list *l = &a->lists[list];
    uint32_t p = a->pool_count++;
    uint64_t pos = l->committed + l->staged;
    a->pool[p] = (coord_adj_staged){*e, pos, list, NONE};
    /* The space the commit will lay out, block by block as plan_list does. */
    if (pos == l->next_at) {
        a->block_bytes += l->next_bytes;
        l->next_at += layout_adj_capacity(l->next_bytes);
        l->next_bytes *= 2;
    }
    if (l->last != NONE)
        a->pool[l->last].next = p;
    else
        l->first = p;
    l->last = p;
    l->staged++;
    return p;
}

/* ---- staging ----------------------------------------------------------- */

bool coord_assoc_group_live(const coord_store *s, uint32_t source,
                            uint32_t target, uint32_t type)
{
    const coord_assoc_slot *o =
        coord_assoc_find(&s->group.assoc.overlay, source, target, type);
    if (o)
        return o->out != NONE;
    return coord_assoc_find(&s->assoc_index, source, target, type) != NULL;
}

/* F-ADJ-3: the key's current entries get superseded = seq.  Returns
 * whether the key was live. */
static bool supersede_key(coord_store *s, coord_assoc_slot *overlay,
                          uint32_t out_list, uint32_t in_list,
                          uint32_t source, uint32_t target, uint32_t type,
                          uint64_t seq)
{
    coord_assoc_group *a = &s->group.assoc;
    if (overlay) {
        if (overlay->out == NONE)
            return false;
        a->pool[overlay->out].entry.superseded = seq;
        a->pool[overlay->in].entry.superseded = seq;
        return true;
    }
    const coord_assoc_slot *c =
        coord_assoc_find(&s->assoc_index, source, target, type);
    if (!c)
        return false;
    a->sup[a->sup_count++] = (coord_adj_supersede){out_list, c->out, seq, 0};
    a->sup[a->sup_count++] = (coord_adj_supersede){in_list, c->in, seq, 0};
    return true;
}

int coord_assoc_stage_edge(coord_store *s, uint32_t source, uint32_t target,
                           uint32_t type, float confidence, uint64_t seq,
                           bool tombstone, coord_error *err)
{
    coord_assoc_group *a = &s->group.assoc;
    uint32_t out_list, in_list;
    int rc = list_get(s, source, LAYOUT_ADJ_OUT, &out_list, err);
    if (!rc)
        rc = list_get(s, target, LAYOUT_ADJ_IN, &in_list, err);
    if (rc)
        return rc;
    coord_assoc_slot *o = coord_assoc_find(&a->overlay, source, target, type);
    bool was_live = supersede_key(s, o, out_list, in_list, source, target,
                                  type, seq);
    layout_adj_entry e = {target, type, tombstone ? 0.0f : confidence,
                          tombstone ? LAYOUT_ADJ_F_TOMBSTONE : 0u, seq, 0};
    uint32_t out = append_entry(a, out_list, &e);
    e.node = source;
    uint32_t in = append_entry(a, in_list, &e);
    if (!o)
        o = coord_assoc_put(&a->overlay, source, target, type);
    o->out = tombstone ? NONE : out;
    o->in = tombstone ? NONE : in;
    /* F-ASSOC-3: assoc_count counts live keys exactly. */
    if (!was_live && !tombstone)
        s->group.roots.assoc_count++;
    else if (was_live && tombstone)
        s->group.roots.assoc_count--;
    return 0;
}

/* Collecting the live associations of a node being forgotten. */
typedef struct collect {
    coord_store *s;
    uint32_t node, dir;
    uint32_t count;
} collect;

/* `pos` is the key's position in the list being walked, for the order. */
static void collect_key(collect *c, uint32_t source, uint32_t target,
                        uint32_t type, uint64_t pos)
{
    c->s->group.assoc.scratch[c->count++] =
        (coord_assoc_slot){source, target, type, (uint32_t)pos, NONE};
}

static int collected_cmp(const void *x, const void *y)
{
    const coord_assoc_slot *a = x, *b = y;
    return a->out < b->out ? -1 : a->out > b->out;
}

/* A committed entry is current when the group has not rewritten its key
 * and the index names this very position. */
static int collect_committed(void *ctx, const layout_adj_entry *e,
                             uint64_t pos, uint64_t superseded)
{
    (void)superseded;
    collect *c = ctx;
    if (e->flags & LAYOUT_ADJ_F_TOMBSTONE)
        return 0;
    bool out = c->dir == LAYOUT_ADJ_OUT;
    if (!out && e->node == c->node)
        return 0; /* a self-loop: found in the out-list */
    uint32_t source = out ? c->node : e->node, target = out ? e->node : c->node;
    if (coord_assoc_find(&c->s->group.assoc.overlay, source, target, e->type))
        return 0;
    const coord_assoc_slot *k =
        coord_assoc_find(&c->s->assoc_index, source, target, e->type);
    if (k && (out ? k->out : k->in) == pos)
        collect_key(c, source, target, e->type, pos);
    return 0;
}

static void collect_staged(collect *c, const coord_adj_list *l)
{
    const coord_assoc_group *a = &c->s->group.assoc;
    bool out = c->dir == LAYOUT_ADJ_OUT;
    for (uint32_t p = l->first; p != NONE; p = a->pool[p].next) {
        const layout_adj_entry *e = &a->pool[p].entry;
        if ((e->flags & LAYOUT_ADJ_F_TOMBSTONE) || (!out && e->node == c->node))
            continue;
        uint32_t source = out ? c->node : e->node;
        uint32_t target = out ? e->node : c->node;
        const coord_assoc_slot *o =
            coord_assoc_find(&a->overlay, source, target, e->type);
        if (o && (out ? o->out : o->in) == p)
            collect_key(c, source, target, e->type, a->pool[p].pos);
    }
}

int coord_assoc_stage_forget_node(coord_store *s, uint32_t node, uint64_t seq,
                                  coord_error *err)
{
    collect c = {s, node, 0, 0};
    for (uint32_t dir = LAYOUT_ADJ_OUT; dir <= LAYOUT_ADJ_IN; dir++) {
        c.dir = dir;
        /* Lists the group has not touched are only read, not registered:
         * a node without edges must not use up reserved list slots. */
        const coord_adj_list *l = list_find(&s->group.assoc, node, dir);
        coord_adj_block head;
        int rc = 0;
        if (l)
            head = l->head;
        else
            rc = coord_adj_head(s, node, dir, &head, err);
        uint32_t from = c.count;
        if (!rc)
            rc = coord_adj_walk(s, &head, node, dir, collect_committed, &c);
        if (rc)
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-ADJ-4: node %u adjacency is damaged", node);
        /* The walk visits the newest block first.  Tombstones go in list
         * order, committed entries then staged ones, which does not depend
         * on where groups ended: recovery replays several groups as one
         * (F-REC-5) and must append them where the writer did. */
        if (c.count - from > 1)
            qsort(s->group.assoc.scratch + from, c.count - from,
                  sizeof(*s->group.assoc.scratch), collected_cmp);
        if (l)
            collect_staged(&c, l);
    }
    /* F-ADJ-5: each live edge gets a tombstone at the concept's seq. */
    for (uint32_t i = 0; i < c.count; i++) {
        coord_assoc_slot k = s->group.assoc.scratch[i];
        int rc = coord_assoc_stage_edge(s, k.source, k.target, k.type, 0.0f,
                                        seq, true, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- commit ------------------------------------------------------------ */

/* The usual placement: new blocks go one after another from the cursor. */
static int place_at_cursor(void *ctx, uint32_t node, uint32_t dir,
                           uint64_t bytes, uint64_t older, uint64_t prev,
                           uint64_t *off)
{
    (void)node;
    (void)dir;
    (void)older;
    (void)prev;
    uint64_t *cursor = ctx;
    *off = layout_align_up(*cursor, LAYOUT_REGION_ALIGN);
    *cursor = *off + bytes;
    return 0;
}

static int plan_list(coord_store *s, coord_adj_list *l, coord_adj_place place,
                     void *ctx, coord_error *err)
{
    coord_assoc_group *a = &s->group.assoc;
    const coord_adj_block *h = &l->head;
    uint64_t room = h->off ? h->cap - h->count : 0;
    uint64_t left = l->staged > room ? l->staged - room : 0;
    uint64_t bytes = h->off ? h->bytes * 2 : LAYOUT_ADJ_MIN_BLOCK;
    uint64_t older = h->off ? h->older + h->cap : 0, prev = h->off;
    l->first_block = a->block_count;
    l->block_count = 0;
    /* F-ADJ-4: a full head gets a block of twice its size. */
    while (left) {
        if (!layout_region_fits(bytes))
            return coord_fail(err, SUTRA_EFULL,
                              "F-ADJ-4: adjacency list too long");
        if (grow((void **)&a->blocks, &a->block_cap, (uint64_t)a->block_count + 1,
                 sizeof(*a->blocks)))
            return coord_fail(err, ENOMEM, "no memory to plan adjacency");
        uint64_t off;
        if (place(ctx, l->node, l->dir, bytes, older, prev, &off))
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-ADJ-4: node %u has no block for entry %llu",
                              l->node, (unsigned long long)older);
        a->blocks[a->block_count++] = (coord_adj_new_block){off, bytes, older, prev};
        l->block_count++;
        uint64_t cap = layout_adj_capacity(bytes);
        left -= left < cap ? left : cap;
        older += cap;
        prev = off;
        bytes *= 2;
    }
    return 0;
}

int coord_assoc_plan(coord_store *s, uint64_t *cursor, coord_error *err)
{
    return coord_assoc_plan_placed(s, place_at_cursor, cursor, err);
}

int coord_assoc_plan_placed(coord_store *s, coord_adj_place place, void *ctx,
                            coord_error *err)
{
    coord_assoc_group *a = &s->group.assoc;
    a->block_count = 0;
    for (uint32_t i = 0; i < a->list_count; i++) {
        int rc = plan_list(s, &a->lists[i], place, ctx, err);
        if (rc)
            return rc;
    }
    for (uint32_t i = 0; i < a->sup_count; i++) {
        coord_adj_supersede *u = &a->sup[i];
        const coord_adj_list *l = &a->lists[u->list];
        if (coord_adj_entry_off(s, &l->head, l->node, l->dir, u->pos, &u->off))
            return coord_fail(err, SUTRA_ECORRUPT,
                              "F-ADJ-3: node %u has no committed entry %llu",
                              l->node, (unsigned long long)u->pos);
    }
    return 0;
}

/* The descriptor of new block b of list l (F-ADJ-1). */
static layout_region block_header(const coord_adj_list *l,
                                  const coord_adj_new_block *b)
{
    return coord_region_header(LAYOUT_REC_ADJ_BLOCK,
                               (uint64_t)l->node | (uint64_t)l->dir << 32,
                               layout_adj_capacity(b->bytes), b->prev,
                               b->older, b->bytes - LAYOUT_REGION_BODY);
}

/* Call fn for each block the group allocates, in file order; stop at the
 * first nonzero return and return it. */
static int each_new_block(const coord_store *s,
                          int (*fn)(void *ctx, const coord_adj_list *l,
                                    const coord_adj_new_block *b),
                          void *ctx)
{
    const coord_assoc_group *a = &s->group.assoc;
    for (uint32_t i = 0; i < a->list_count; i++) {
        const coord_adj_list *l = &a->lists[i];
        for (uint32_t j = 0; j < l->block_count; j++) {
            int rc = fn(ctx, l, &a->blocks[l->first_block + j]);
            if (rc)
                return rc;
        }
    }
    return 0;
}

typedef struct block_writer {
    coord_store *s;
    uint64_t dirty_end, *cursor;
} block_writer;

static int write_block(void *ctx, const coord_adj_list *l,
                       const coord_adj_new_block *b)
{
    block_writer *w = ctx;
    layout_region r = block_header(l, b);
    int rc = coord_write_region(w->s, *w->cursor, b->off, &r,
                                b->bytes - LAYOUT_REGION_BODY, w->dirty_end);
    if (!rc)
        *w->cursor = b->off + b->bytes;
    return rc;
}

int coord_assoc_write_blocks(coord_store *s, uint64_t dirty_end,
                             uint64_t *cursor)
{
    block_writer w = { s, dirty_end, cursor };
    return each_new_block(s, write_block, &w);
}

typedef struct block_layout {
    uint8_t *buf;
    uint64_t base;
} block_layout;

static int lay_out_block(void *ctx, const coord_adj_list *l,
                         const coord_adj_new_block *b)
{
    block_layout *o = ctx;
    layout_region r = block_header(l, b);
    memcpy(o->buf + (b->off - o->base), &r, sizeof(r));
    return 0;
}

void coord_assoc_lay_out_blocks(const coord_store *s, uint8_t *buf,
                                uint64_t base)
{
    block_layout o = { buf, base };
    (void)each_new_block(s, lay_out_block, &o);
}

/* Where the staged entry at `pos` of list `l` goes. */
static uint64_t staged_entry_off(const coord_assoc_group *a,
                                 const coord_adj_list *l, uint64_t pos)
{
    const coord_adj_block *h = &l->head;
    uint64_t block = h->off, first = h->older;
    if (!h->off || pos >= h->older + h->cap) {
        uint32_t j = l->first_block;
        while (pos >= a->blocks[j].older + layout_adj_capacity(a->blocks[j].bytes))
            j++;
        block = a->blocks[j].off;
        first = a->blocks[j].older;
    }
    return block + LAYOUT_ADJ_ENTRIES_OFFSET + (pos - first) * sizeof(layout_adj_entry);
}

static int store_entries(coord_store *s)
{
    const coord_assoc_group *a = &s->group.assoc;
    for (uint32_t p = 0; p < a->pool_count; p++) {
        const coord_adj_staged *st = &a->pool[p];
        uint64_t off = staged_entry_off(a, &a->lists[st->list], st->pos);
        uint64_t w[4];
        memcpy(w, &st->entry, sizeof(w));
        uint64_t *dst = (uint64_t *)(void *)(s->map + off);
        for (int i = 0; i < 4; i++) {
            int rc = s->io->store64(s->io, &dst[i], w[i]);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int store_count(coord_store *s, uint64_t block, uint64_t count)
{
    return s->io->store64(s->io,
                          (uint64_t *)(void *)(s->map + block + LAYOUT_ADJ_COUNT_OFFSET),
                          count);
}

/* F-ADJ-2: a count word after the entries it covers. */
static int store_counts(coord_store *s)
{
    const coord_assoc_group *a = &s->group.assoc;
    for (uint32_t i = 0; i < a->list_count; i++) {
        const coord_adj_list *l = &a->lists[i];
        uint64_t left = l->staged;
        if (!left)
            continue;
        int rc = 0;
        if (l->head.off && l->head.count < l->head.cap) {
            uint64_t n = l->head.cap - l->head.count;
            n = n < left ? n : left;
            rc = store_count(s, l->head.off, l->head.count + n);
            left -= n;
        }
        for (uint32_t j = 0; !rc && j < l->block_count; j++) {
            const coord_adj_new_block *b = &a->blocks[l->first_block + j];
            uint64_t cap = layout_adj_capacity(b->bytes);
            uint64_t n = left < cap ? left : cap;
            rc = store_count(s, b->off, n);
            left -= n;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int store_superseded(coord_store *s)
{
    const coord_assoc_group *a = &s->group.assoc;
    for (uint32_t i = 0; i < a->sup_count; i++) {
        layout_adj_entry *e = (layout_adj_entry *)(void *)(s->map + a->sup[i].off);
        int rc = s->io->store64(s->io, &e->superseded, a->sup[i].seq);
        if (rc)
            return rc;
    }
    return 0;
}

/* F-ADJ-4: the head word names the newest block, last of all. */
static int store_adj_heads(coord_store *s)
{
    const coord_assoc_group *a = &s->group.assoc;
    for (uint32_t i = 0; i < a->list_count; i++) {
        const coord_adj_list *l = &a->lists[i];
        if (!l->block_count)
            continue;
        layout_node *e = coord_node_entry(s, l->node);
        uint64_t *word = l->dir == LAYOUT_ADJ_OUT ? &e->out_adj : &e->in_adj;
        uint64_t newest = a->blocks[l->first_block + l->block_count - 1].off;
        int rc = s->io->store64(s->io, word, newest);
        if (rc)
            return rc;
    }
    return 0;
}

int coord_assoc_publish(coord_store *s)
{
    int rc = store_entries(s);
    if (!rc)
        rc = store_counts(s);
    if (!rc)
        rc = store_superseded(s);
    if (!rc)
        rc = store_adj_heads(s);
    return rc;
}

void coord_assoc_merge(coord_store *s)
{
    const coord_assoc_group *a = &s->group.assoc;
    if (!s->assoc_index_built || !a->overlay.count)
        return;
    for (uint64_t i = 0; i < a->overlay.cap; i++) {
        const coord_assoc_slot *o = &a->overlay.slots[i];
        if (o->source == NONE)
            continue;
        coord_assoc_slot *c =
            coord_assoc_find(&s->assoc_index, o->source, o->target, o->type);
        if (o->out == NONE) {
            if (c)
                coord_assoc_remove(&s->assoc_index, c);
            continue;
        }
        if (!c)
            c = coord_assoc_put(&s->assoc_index, o->source, o->target, o->type);
        c->out = (uint32_t)a->pool[o->out].pos;
        c->in = (uint32_t)a->pool[o->in].pos;
    }
}
