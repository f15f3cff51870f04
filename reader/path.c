/*
 * reader/path.c — paths between concepts: sutra_find_path() (fewest hops,
 * bidirectional BFS) and sutra_find_strongest_path() (largest product of
 * confidences within a hop bound), over one snapshot.
 *
 * Both run on dense node numbers, so their state is arrays indexed by node,
 * held in a caller-owned sutra_traversal that grows geometrically to the
 * largest snapshot it has served and is then reused: a worker's steady
 * state allocates nothing.  Visited marks are generation stamps (a node is
 * marked when its stamp equals the call's stamp), so nothing is cleared
 * between calls; only a wrap of the 32-bit stamp clears the arrays.
 *
 * Edges come from the adjacency cursor (reader/graph_internal.h), which
 * applies the snapshot's visibility; an edge of a forgotten concept is
 * superseded by the writer, so a visible edge always joins two live nodes
 * and the searches never look a node up by id except for the endpoints.
 *
 * Concurrency: any thread, lock-free, concurrently with the writer; one
 * traversal is used by one thread at a time.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reader/graph_internal.h"

#define PATH_NONE UINT32_MAX

/* A label of the strongest-path search: a path from its side's root. */
typedef struct path_label {
    double cost;         /* sum of -log(confidence) from the root         */
    uint32_t node;
    uint32_t hops;       /* edges from the root                           */
    uint32_t parent;     /* label it extends, PATH_NONE at the root       */
    uint32_t next_settled; /* older settled label of the same node/side   */
    float confidence;    /* of the edge from the parent (1 at the root)   */
} path_label;

typedef struct path_heap_item {
    double cost;
    uint32_t label;
} path_heap_item;

typedef struct path_heap {
    path_heap_item *items;
    size_t count, cap;
} path_heap;

/* Per-node words of one side of the strongest-path search, valid for a
 * node only when seen[node] holds the call's stamp. */
typedef struct path_weighted_side {
    uint32_t *seen;
    uint32_t *settled_hops;  /* fewest hops of a settled label, or NONE    */
    uint32_t *settled_head;  /* newest settled label, or NONE              */
    uint32_t *best_hops;     /* hops of the cheapest label pushed          */
    double *best_cost;       /* its cost                                   */
    path_heap heap;
} path_weighted_side;

struct sutra_traversal {
    uint64_t capacity;   /* nodes every BFS array holds                   */
    uint32_t stamp;      /* this call's visited mark                      */
    /* node-table chunks found during this call: reader_node_entry still
     * loads the chunk word and checks the snapshot's bounds on every
     * call; a traversal, within one snapshot, needs them once */
    const layout_node *chunk_table[LAYOUT_NODE_CHUNKS];
    /* bidirectional BFS */
    uint32_t *seen_fwd, *seen_bwd;     /* stamp when reached from each side */
    uint32_t *parent_fwd, *parent_bwd; /* the node it was reached from      */
    uint32_t *queue_fwd, *queue_bwd;   /* levels, each node at most once    */
    /* strongest path (allocated on first use) */
    uint64_t weighted_capacity;
    path_weighted_side side[2];        /* forward, backward               */
    path_label *labels;
    size_t label_count, label_cap;
};

/* ---- state ------------------------------------------------------------- */

int sutra_traversal_new(sutra_traversal **out)
{
    if (!out)
        return SUTRA_EINVAL;
    sutra_traversal *t = calloc(1, sizeof(*t));
    if (!t)
        return ENOMEM;
    *out = t;
    return 0;
}

void sutra_traversal_free(sutra_traversal *t)
{
    if (!t)
        return;
    free(t->seen_fwd);
    free(t->seen_bwd);
    free(t->parent_fwd);
    free(t->parent_bwd);
    free(t->queue_fwd);
    free(t->queue_bwd);
    for (int s = 0; s < 2; s++) {
        free(t->side[s].seen);
        free(t->side[s].settled_hops);
        free(t->side[s].settled_head);
        free(t->side[s].best_hops);
        free(t->side[s].best_cost);
        free(t->side[s].heap.items);
    }
    free(t->labels);
    free(t);
}

/* Grow *array from `old` to `cap` elements of `size` bytes, zeroing the new
 * part (a zero stamp never equals a live stamp).  0 or ENOMEM. */
static int path_grow(void **array, uint64_t old, uint64_t cap, size_t size)
{
    if (cap > SIZE_MAX / size)
        return ENOMEM;
    void *p = realloc(*array, (size_t)cap * size);
    if (!p)
        return ENOMEM;
    memset((uint8_t *)p + old * size, 0, (size_t)(cap - old) * size);
    *array = p;
    return 0;
}

/* The next capacity for `need` nodes: geometric, so a growing file costs
 * O(log n) reallocations over a traversal's life. */
static uint64_t path_next_capacity(uint64_t have, uint64_t need)
{
    uint64_t cap = have ? have : 1024;
    while (cap < need)
        cap *= 2;
    return cap;
}

static int path_reserve_bfs(sutra_traversal *t, uint64_t nodes)
{
    if (nodes <= t->capacity)
        return 0;
    uint64_t cap = path_next_capacity(t->capacity, nodes);
    void **arrays[] = {(void **)&t->seen_fwd, (void **)&t->seen_bwd,
                       (void **)&t->parent_fwd, (void **)&t->parent_bwd,
                       (void **)&t->queue_fwd, (void **)&t->queue_bwd};
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
        if (path_grow(arrays[i], t->capacity, cap, sizeof(uint32_t)) != 0)
            return ENOMEM; /* grown arrays stay valid; capacity unchanged */
    t->capacity = cap;
    return 0;
}

static int path_reserve_weighted(sutra_traversal *t, uint64_t nodes)
{
    if (nodes <= t->weighted_capacity)
        return 0;
    uint64_t cap = path_next_capacity(t->weighted_capacity, nodes);
    uint64_t old = t->weighted_capacity;
    for (int s = 0; s < 2; s++) {
        path_weighted_side *w = &t->side[s];
        if (path_grow((void **)&w->seen, old, cap, sizeof(uint32_t)) ||
            path_grow((void **)&w->settled_hops, old, cap, sizeof(uint32_t)) ||
            path_grow((void **)&w->settled_head, old, cap, sizeof(uint32_t)) ||
            path_grow((void **)&w->best_hops, old, cap, sizeof(uint32_t)) ||
            path_grow((void **)&w->best_cost, old, cap, sizeof(double)))
            return ENOMEM;
    }
    t->weighted_capacity = cap;
    return 0;
}

/* Start a call: a fresh visited mark and an empty chunk cache.  When the
 * 32-bit stamp wraps, every stamp array is cleared once, so an old mark can
 * never equal the new one. */
static uint32_t path_begin(sutra_traversal *t)
{
    memset(t->chunk_table, 0, sizeof(t->chunk_table));
    if (++t->stamp == 0) {
        if (t->capacity) {
            memset(t->seen_fwd, 0, (size_t)t->capacity * sizeof(uint32_t));
            memset(t->seen_bwd, 0, (size_t)t->capacity * sizeof(uint32_t));
        }
        for (int s = 0; s < 2 && t->weighted_capacity; s++)
            memset(t->side[s].seen, 0,
                   (size_t)t->weighted_capacity * sizeof(uint32_t));
        t->stamp = 1;
    }
    return t->stamp;
}

/* Node `node`'s table entry through the call's chunk cache.  The chunk
 * words of a snapshot's nodes never change once published (F-NODE-2), so
 * validating a chunk once per call is as strict as validating it for
 * every node. */
static const layout_node *path_node_entry(sutra_traversal *t,
                                          const reader_view *v, uint32_t node)
{
    uint32_t chunk;
    uint64_t index;
    layout_node_locate(node, &chunk, &index);
    const layout_node *table = t->chunk_table[chunk];
    if (table)
        return &table[index];
    const layout_node *entry = reader_node_entry(v, node);
    if (entry)
        t->chunk_table[chunk] = entry - index;
    return entry;
}

/* The traversal state is sized by the snapshot's node_count, a word of
 * the file: before growing it, check that the node table holds the last of
 * those nodes below committed_end (F-NODE-2).  That bounds the count by
 * the file's size, so damaged roots cost SUTRA_ECORRUPT, not an allocation
 * of up to 2^32 entries per array. */
static int path_check_node_count(sutra_traversal *t, const reader_view *v)
{
    if (v->node_count == 0) /* no node to search from */
        return SUTRA_ECORRUPT;
    return path_node_entry(t, v, (uint32_t)(v->node_count - 1)) ? 0
                                                                : SUTRA_ECORRUPT;
}

/* Open node's `dir` list through the chunk cache. */
static int path_adj_open(sutra_traversal *t, const reader_view *v,
                         uint32_t node, uint32_t dir, reader_adj_cursor *c)
{
    const layout_node *entry = path_node_entry(t, v, node);
    if (!entry)
        return SUTRA_ECORRUPT;
    return reader_adj_open(v, entry, node, dir, c);
}

/* ---- endpoints and output ---------------------------------------------- */

/* The lists a side of a search reads: the forward side follows `dir`, the
 * backward side the reverse.  0 when dir is invalid. */
static unsigned path_lists(enum sutra_direction dir, bool backward)
{
    switch (dir) {
    case SUTRA_OUT: return backward ? READER_LIST_IN : READER_LIST_OUT;
    case SUTRA_IN: return backward ? READER_LIST_OUT : READER_LIST_IN;
    case SUTRA_BOTH: return READER_LIST_OUT | READER_LIST_IN;
    }
    return 0;
}

/* Resolve both endpoints to live nodes of the snapshot. */
static int path_endpoints(const reader_view *v, const sutra_id *from,
                          const sutra_id *to, uint32_t *src, uint32_t *dst)
{
    const layout_concept *version;
    int rc = reader_lookup_node(v, from->bytes, src, &version);
    if (rc == 0)
        rc = reader_lookup_node(v, to->bytes, dst, &version);
    return rc;
}

/* Write node numbers as ids into the caller's path.  0 or SUTRA_ECORRUPT. */
static int path_write_id(sutra_traversal *t, const reader_view *v,
                         uint32_t node, sutra_id *out)
{
    const layout_node *entry = path_node_entry(t, v, node);
    if (!entry)
        return SUTRA_ECORRUPT;
    memcpy(out->bytes, entry->id, sizeof(out->bytes));
    return 0;
}

/* ---- bidirectional BFS ------------------------------------------------- */

/* One side of the search: its marks, parents and the current level
 * queue[lo, hi). */
typedef struct path_side {
    uint32_t *seen, *parent, *queue;
    const uint32_t *other_seen;
    size_t lo, hi;
    unsigned lists;
} path_side;

#define PATH_PREFETCH_NODE 8  /* queue slots ahead: node entry           */
#define PATH_PREFETCH_LIST 4  /* queue slots ahead: the lists' head blocks */

/* A level's nodes are scattered over the node table and their lists over
 * the log, so expanding one costs a chain of dependent misses (node entry,
 * then block header and entries).  Prefetching in two stages, the node
 * entry of a node eight slots ahead and the head blocks of one four slots
 * ahead (whose entry has arrived by then), overlaps those chains.  Hints
 * only: nothing is read through them, so they need no validation beyond
 * staying inside the snapshot. */
static void path_prefetch(sutra_traversal *t, const reader_view *v,
                          const path_side *s, size_t i)
{
    if (i + PATH_PREFETCH_NODE < s->hi) {
        uint32_t n = s->queue[i + PATH_PREFETCH_NODE];
        uint32_t chunk;
        uint64_t index;
        layout_node_locate(n, &chunk, &index);
        if (t->chunk_table[chunk])
            __builtin_prefetch(&t->chunk_table[chunk][index]);
    }
    if (i + PATH_PREFETCH_LIST < s->hi) {
        uint32_t n = s->queue[i + PATH_PREFETCH_LIST];
        uint32_t chunk;
        uint64_t index;
        layout_node_locate(n, &chunk, &index);
        const layout_node *entry =
            t->chunk_table[chunk] ? &t->chunk_table[chunk][index] : NULL;
        for (uint32_t dir = 0; entry && dir < 2; dir++) {
            if (!(s->lists & (1u << dir)))
                continue;
            uint64_t off = __atomic_load_n(dir == LAYOUT_ADJ_OUT ? &entry->out_adj
                                                                 : &entry->in_adj,
                                           __ATOMIC_RELAXED);
            if (off != 0 && off < v->committed_end &&
                2 * 64 < v->committed_end - off) {
                __builtin_prefetch(v->db->map + off);
                __builtin_prefetch(v->db->map + off + 64);
                __builtin_prefetch(v->db->map + off + 128);
            }
        }
    }
}

/* Expand the side's current level by one hop.  Returns 1 with *meet when a
 * node reached here was already reached by the other side, 0 when the
 * level was expanded without meeting, or SUTRA_ECORRUPT. */
static int path_expand_level(sutra_traversal *t, const reader_view *v,
                             path_side *s, uint32_t stamp, uint32_t type_filter,
                             uint32_t *meet)
{
    size_t end = s->hi;
    for (size_t i = s->lo; i < s->hi; i++) {
        uint32_t u = s->queue[i];
        path_prefetch(t, v, s, i);
        for (uint32_t dir = 0; dir < 2; dir++) {
            if (!(s->lists & (1u << dir)))
                continue;
            reader_adj_cursor c;
            int rc = path_adj_open(t, v, u, dir, &c);
            if (rc != 0)
                return rc;
            const layout_adj_entry *e = NULL;
            while ((rc = reader_adj_next(v, &c, type_filter, &e)) == 1) {
                uint32_t w = e->node;
                if (s->seen[w] == stamp)
                    continue;
                s->seen[w] = stamp;
                s->parent[w] = u;
                if (s->other_seen[w] == stamp) {
                    *meet = w;
                    return 1;
                }
                s->queue[end++] = w;
            }
            if (rc < 0)
                return rc;
        }
    }
    s->lo = s->hi;
    s->hi = end;
    return 0;
}

/*
 * Level-synchronous bidirectional BFS.  Invariant: while the sides have
 * expanded df and db levels without meeting, every path is longer than
 * df + db.  So the first node found by both sides, during the expansion of
 * level df + 1 (or db + 1), lies on a shortest path: its length is at least
 * df + db + 1 and at most that.  Expanding the smaller frontier keeps the
 * work near the square root of a one-sided search on expanding graphs.
 * Returns 0 with *meet and *hops, SUTRA_ENOPATH, or SUTRA_ECORRUPT.
 */
static int path_bfs(sutra_traversal *t, const reader_view *v, uint32_t src,
                    uint32_t dst, uint32_t max_depth, enum sutra_direction dir,
                    uint32_t type_filter, uint32_t *meet, uint32_t *hops)
{
    uint32_t stamp = t->stamp;
    path_side fwd = {t->seen_fwd, t->parent_fwd, t->queue_fwd, t->seen_bwd,
                     0, 1, path_lists(dir, false)};
    path_side bwd = {t->seen_bwd, t->parent_bwd, t->queue_bwd, t->seen_fwd,
                     0, 1, path_lists(dir, true)};
    fwd.queue[0] = src;
    fwd.seen[src] = stamp;
    fwd.parent[src] = PATH_NONE;
    bwd.queue[0] = dst;
    bwd.seen[dst] = stamp;
    bwd.parent[dst] = PATH_NONE;
    for (uint32_t depth = 0; depth < max_depth; depth++) {
        size_t nf = fwd.hi - fwd.lo, nb = bwd.hi - bwd.lo;
        if (nf == 0 || nb == 0)
            return SUTRA_ENOPATH; /* one side has reached all it can */
        int rc = path_expand_level(t, v, nf <= nb ? &fwd : &bwd, stamp,
                                   type_filter, meet);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            *hops = depth + 1;
            return 0;
        }
    }
    return SUTRA_ENOPATH;
}

int sutra_find_path(sutra_traversal *t, const struct sutra_snapshot *snap,
                    const sutra_id *from, const sutra_id *to,
                    uint32_t max_depth, enum sutra_direction dir,
                    uint32_t type_filter, sutra_id *path, size_t path_cap,
                    size_t *path_len)
{
    if (!t || !snap || !snap->db || !from || !to || !path_len ||
        (path_cap > 0 && !path) || path_lists(dir, false) == 0)
        return SUTRA_EINVAL;
    reader_view v;
    reader_view_init(&v, snap);
    uint32_t src, dst;
    int rc = path_endpoints(&v, from, to, &src, &dst);
    if (rc != 0)
        return rc;
    path_begin(t);
    uint32_t meet = src, hops = 0;
    if (src != dst) {
        if ((rc = path_check_node_count(t, &v)) != 0)
            return rc;
        if (path_reserve_bfs(t, v.node_count) != 0)
            return ENOMEM;
        rc = path_bfs(t, &v, src, dst, max_depth, dir, type_filter, &meet, &hops);
        if (rc != 0)
            return rc;
    }
    size_t len = (size_t)hops + 1;
    if (len > path_cap) {
        *path_len = len;
        return SUTRA_ETOOBIG;
    }
    if (src == dst) {
        if ((rc = path_write_id(t, &v, src, &path[0])) != 0)
            return rc;
        *path_len = 1;
        return 0;
    }
    /* The forward half: meet back to src, written from the meet's slot
     * towards path[0]; then the backward half: meet's successors to dst. */
    size_t at = 0;
    for (uint32_t n = meet; n != PATH_NONE; n = t->parent_fwd[n])
        at++;
    size_t i = at;
    for (uint32_t n = meet; n != PATH_NONE; n = t->parent_fwd[n])
        if ((rc = path_write_id(t, &v, n, &path[--i])) != 0)
            return rc;
    for (uint32_t n = t->parent_bwd[meet]; n != PATH_NONE; n = t->parent_bwd[n])
        if ((rc = path_write_id(t, &v, n, &path[at++])) != 0)
            return rc;
    if (at != len)
        return SUTRA_ECORRUPT; /* cannot happen: the halves add up to hops */
    *path_len = len;
    return 0;
}

/* ---- strongest path ------------------------------------------------------ */

/* Binary min-heap on cost. */
static int path_heap_push(path_heap *h, double cost, uint32_t label)
{
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        path_heap_item *p = realloc(h->items, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        h->items = p;
        h->cap = cap;
    }
    size_t i = h->count++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (h->items[up].cost <= cost)
            break;
        h->items[i] = h->items[up];
        i = up;
    }
    h->items[i] = (path_heap_item){cost, label};
    return 0;
}

static path_heap_item path_heap_pop(path_heap *h)
{
    path_heap_item top = h->items[0];
    path_heap_item last = h->items[--h->count];
    size_t n = h->count, i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && h->items[child + 1].cost < h->items[child].cost)
            child++;
        if (h->items[child].cost >= last.cost)
            break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (n > 0)
        h->items[i] = last;
    return top;
}

static int path_label_add(sutra_traversal *t, const path_label *l,
                          uint32_t *index)
{
    if (t->label_count == t->label_cap) {
        size_t cap = t->label_cap ? t->label_cap * 2 : 1024;
        if (cap > PATH_NONE)
            return ENOMEM;
        path_label *p = realloc(t->labels, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        t->labels = p;
        t->label_cap = cap;
    }
    *index = (uint32_t)t->label_count++;
    t->labels[*index] = *l;
    return 0;
}

/* Reset a node's words on one side the first time the call touches it. */
static void path_weighted_touch(path_weighted_side *w, uint32_t node,
                                uint32_t stamp)
{
    if (w->seen[node] != stamp) {
        w->seen[node] = stamp;
        w->settled_hops[node] = PATH_NONE;
        w->settled_head[node] = PATH_NONE;
        w->best_hops[node] = PATH_NONE;
        w->best_cost[node] = INFINITY;
    }
}

/* The best path found so far: label `near` of side `side` at one end of
 * an edge of `confidence`, label `far` of the other side at its other end. */
typedef struct path_meet {
    double cost;
    int side;
    uint32_t near, far;
    float confidence;
} path_meet;

/* The search of one call, both sides. */
typedef struct path_search {
    sutra_traversal *t;
    const reader_view *v;
    uint32_t stamp;
    uint32_t max_depth;
    uint32_t type_filter;
    unsigned lists[2];   /* forward follows dir, backward the reverse     */
    path_meet best;
} path_search;

/* Offer the label (w, hops, cost) extending label `from` on side `s`.
 * Dropped when it cannot beat the best path, or when a label already
 * pushed or settled for w is at least as cheap with no more hops (it
 * dominates: whatever this one could reach, it reaches as cheaply within
 * the same bound). */
static int path_offer(path_search *ps, int s, uint32_t w, uint32_t hops,
                      double cost, uint32_t from, float confidence)
{
    path_weighted_side *ws = &ps->t->side[s];
    path_weighted_touch(ws, w, ps->stamp);
    if (cost >= ps->best.cost || hops >= ws->settled_hops[w] ||
        (ws->best_cost[w] <= cost && ws->best_hops[w] <= hops))
        return 0;
    if (cost < ws->best_cost[w]) {
        ws->best_cost[w] = cost;
        ws->best_hops[w] = hops;
    }
    path_label l = {cost, w, hops, from, PATH_NONE, confidence};
    uint32_t index;
    int rc = path_label_add(ps->t, &l, &index);
    return rc ? rc : path_heap_push(&ws->heap, cost, index);
}

/* Side s reached w (cost, hops) over an edge from its label `near`: join
 * it with the cheapest settled label of the other side at w whose hops fit
 * the bound.  A node's settled labels are listed newest first, i.e. fewest
 * hops and highest cost first, so the last one that fits is the cheapest. */
static void path_join(path_search *ps, int s, uint32_t near, uint32_t w,
                      double cost, uint32_t hops, float confidence)
{
    const path_weighted_side *other = &ps->t->side[1 - s];
    if (other->seen[w] != ps->stamp || hops > ps->max_depth)
        return;
    uint32_t room = ps->max_depth - hops, pick = PATH_NONE;
    for (uint32_t l = other->settled_head[w]; l != PATH_NONE;
         l = ps->t->labels[l].next_settled) {
        if (ps->t->labels[l].hops > room)
            break;
        pick = l;
    }
    if (pick == PATH_NONE)
        return;
    double total = cost + ps->t->labels[pick].cost;
    if (total < ps->best.cost)
        ps->best = (path_meet){total, s, near, pick, confidence};
}

/* Scan the edges out of settled label `index` of side s. */
static int path_relax(path_search *ps, int s, uint32_t index)
{
    sutra_traversal *t = ps->t;
    uint32_t u = t->labels[index].node;
    uint32_t hops = t->labels[index].hops + 1;
    double base = t->labels[index].cost;
    for (uint32_t dir = 0; dir < 2; dir++) {
        if (!(ps->lists[s] & (1u << dir)))
            continue;
        reader_adj_cursor c;
        int rc = path_adj_open(t, ps->v, u, dir, &c);
        if (rc != 0)
            return rc;
        const layout_adj_entry *e = NULL;
        while ((rc = reader_adj_next(ps->v, &c, ps->type_filter, &e)) == 1) {
            float conf = e->confidence;
            if (!(conf >= 0.0f && conf <= 1.0f))
                return SUTRA_ECORRUPT; /* F-ASSOC-1: 0..1, never NaN */
            if (conf == 0.0f)
                continue;
            double cost = base - log((double)conf);
            path_join(ps, s, index, e->node, cost, hops, conf);
            rc = path_offer(ps, s, e->node, hops, cost, index, conf);
            if (rc != 0)
                return rc;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Settle label `index` of side s (no settled label of its node has as few
 * hops) and scan its edges. */
static int path_settle(path_search *ps, int s, uint32_t index)
{
    path_weighted_side *ws = &ps->t->side[s];
    path_label *l = &ps->t->labels[index];
    ws->settled_hops[l->node] = l->hops;
    l->next_settled = ws->settled_head[l->node];
    ws->settled_head[l->node] = index;
    return l->hops < ps->max_depth ? path_relax(ps, s, index) : 0;
}

/* Pop side s's cheapest label; settle it unless dominated. */
static int path_settle_next(path_search *ps, int s)
{
    path_weighted_side *ws = &ps->t->side[s];
    path_heap_item top = path_heap_pop(&ws->heap);
    const path_label *l = &ps->t->labels[top.label];
    if (l->hops >= ws->settled_hops[l->node])
        return 0; /* dominated by an earlier, no costlier label */
    return path_settle(ps, s, top.label);
}

/*
 * Bidirectional label-setting search over (node, hops) states: Dijkstra on
 * -log(confidence) from both ends, where a label is a path's end node and
 * hop count.  One label per node (plain Dijkstra) would be wrong under a
 * hop bound: the cheapest path to a node may use too many hops while a
 * costlier one with fewer hops still reaches the target in time.  So each
 * side keeps, per node, the settled labels that no earlier (so no
 * costlier) settled label dominates with fewer or equal hops: each settle
 * of a node strictly lowers its hop count, at most max_depth + 1 per node.
 * Costs are non-negative (confidence <= 1), as Dijkstra requires.
 *
 * Every edge scanned from a settled label is joined with the other side's
 * settled labels at its far end (path_join).  The search stops when the
 * two heaps' minima add up to at least the best join: a cheaper path would
 * have an edge (u, w) with u settled forwards below the forward minimum
 * and w settled backwards below the backward minimum (or labels dominating
 * them), and whichever of the two settled later joined them.  Meeting in
 * the middle explores two balls of half the optimal cost instead of one
 * of the whole — on power-law graphs, orders of magnitude fewer labels.
 * A Bellman-Ford relaxation bounded to max_depth rounds would be simpler
 * but scans every reached edge once per round.
 * Returns 0 (ps->best set), SUTRA_ENOPATH, ENOMEM or SUTRA_ECORRUPT.
 */
static int path_strongest(path_search *ps, uint32_t src, uint32_t dst)
{
    sutra_traversal *t = ps->t;
    t->label_count = 0;
    ps->best.cost = INFINITY;
    /* Both roots are settled before either is expanded, so the first edge
     * between them is joined whichever side scans it. */
    uint32_t roots[2] = {src, dst}, index[2];
    int rc = 0;
    for (int s = 0; s < 2 && rc == 0; s++) {
        path_weighted_side *ws = &t->side[s];
        ws->heap.count = 0;
        path_weighted_touch(ws, roots[s], ps->stamp);
        path_label root = {0.0, roots[s], 0, PATH_NONE, PATH_NONE, 1.0f};
        rc = path_label_add(t, &root, &index[s]);
        if (rc == 0) {
            ws->settled_hops[roots[s]] = 0;
            ws->settled_head[roots[s]] = index[s];
        }
    }
    for (int s = 0; s < 2 && rc == 0; s++)
        rc = ps->max_depth > 0 ? path_relax(ps, s, index[s]) : 0;
    while (rc == 0 && t->side[0].heap.count > 0 && t->side[1].heap.count > 0) {
        double top0 = t->side[0].heap.items[0].cost;
        double top1 = t->side[1].heap.items[0].cost;
        if (top0 + top1 >= ps->best.cost)
            break;
        rc = path_settle_next(ps, top0 <= top1 ? 0 : 1);
    }
    if (rc != 0)
        return rc;
    return ps->best.cost < INFINITY ? 0 : SUTRA_ENOPATH;
}

/* Write the best path (forward labels, the joining edge, backward labels)
 * as ids and its product of confidences, taken from the confidences
 * themselves rather than exp(-cost) so it carries no logarithm rounding. */
static int path_strongest_write(path_search *ps, sutra_id *path, size_t len,
                                double *strength)
{
    sutra_traversal *t = ps->t;
    uint32_t fwd = ps->best.side == 0 ? ps->best.near : ps->best.far;
    uint32_t bwd = ps->best.side == 0 ? ps->best.far : ps->best.near;
    double product = (double)ps->best.confidence;
    size_t i = t->labels[fwd].hops + 1;
    int rc = 0;
    for (uint32_t l = fwd; l != PATH_NONE && rc == 0; l = t->labels[l].parent) {
        rc = path_write_id(t, ps->v, t->labels[l].node, &path[--i]);
        product *= (double)t->labels[l].confidence;
    }
    i = t->labels[fwd].hops + 1;
    for (uint32_t l = bwd; l != PATH_NONE && rc == 0; l = t->labels[l].parent) {
        rc = path_write_id(t, ps->v, t->labels[l].node, &path[i++]);
        product *= (double)t->labels[l].confidence;
    }
    if (rc == 0 && i != len)
        rc = SUTRA_ECORRUPT; /* cannot happen: the halves add up */
    if (rc == 0)
        *strength = product;
    return rc;
}

int sutra_find_strongest_path(sutra_traversal *t,
                              const struct sutra_snapshot *snap,
                              const sutra_id *from, const sutra_id *to,
                              uint32_t max_depth, enum sutra_direction dir,
                              uint32_t type_filter, sutra_id *path,
                              size_t path_cap, size_t *path_len,
                              double *strength)
{
    if (!t || !snap || !snap->db || !from || !to || !path_len || !strength ||
        (path_cap > 0 && !path) || path_lists(dir, false) == 0)
        return SUTRA_EINVAL;
    reader_view v;
    reader_view_init(&v, snap);
    uint32_t src, dst;
    int rc = path_endpoints(&v, from, to, &src, &dst);
    if (rc != 0)
        return rc;
    path_search ps = {t, &v, path_begin(t), max_depth, type_filter,
                      {path_lists(dir, false), path_lists(dir, true)},
                      {INFINITY, 0, PATH_NONE, PATH_NONE, 0.0f}};
    if (src == dst) {
        if (path_cap < 1) {
            *path_len = 1;
            return SUTRA_ETOOBIG;
        }
        if ((rc = path_write_id(t, &v, src, &path[0])) != 0)
            return rc;
        *path_len = 1;
        *strength = 1.0;
        return 0;
    }
    if ((rc = path_check_node_count(t, &v)) != 0)
        return rc;
    if (path_reserve_weighted(t, v.node_count) != 0)
        return ENOMEM;
    rc = path_strongest(&ps, src, dst);
    if (rc != 0)
        return rc;
    size_t len = (size_t)t->labels[ps.best.near].hops +
                 t->labels[ps.best.far].hops + 2;
    if (len > path_cap) {
        *path_len = len;
        return SUTRA_ETOOBIG;
    }
    rc = path_strongest_write(&ps, path, len, strength);
    if (rc == 0)
        *path_len = len;
    return rc;
}
