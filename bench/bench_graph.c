/*
 * bench/bench_graph.c — graph reads: neighbors, shortest path and strongest
 * path on a 1M-concept graph, beside a plain in-memory CSR of the same
 * graph in the same run, and traversal latency while a writer adds edges.
 *
 * The graph.  N concepts (SUTRA_BENCH_GRAPH_N, default 1,000,000) and ~5
 * out-edges each, grown by preferential attachment: concept i links to 5
 * earlier concepts, each picked as the endpoint of a uniformly random
 * existing edge (so with probability proportional to its degree) 80% of
 * the time and uniformly otherwise.  Preferential attachment is what gives
 * the power-law degree tail of real knowledge graphs (a few hub concepts
 * with thousands of associations, most with a handful): it makes hubs'
 * in-lists span many adjacency blocks, and makes BFS frontiers explode at
 * the hubs the way they do in production.  Types are 0..3 and confidences
 * 0.05..1.0, from a fixed seed.
 *
 * Sutra's side is written through the storage engine directly (wire-encoded
 * batches applied and committed without sync, as a --sync none coordinator
 * would, minus IPC), concepts first and then edges in batches of 10,000, so
 * hubs' in-lists grow across many commits.  The floor is a CSR (offsets +
 * targets, out- and in-lists, with types, confidences and a node -> id
 * array) over the same edge list, with its own bidirectional BFS written
 * exactly like Sutra's.  Both sides return ids, because the API does, and
 * both start from an id: the floor's neighbors call probes an in-memory
 * id -> node hash (same hash and load as the file's index) and compares
 * the id, as Sutra's does; a second row shows the floor handed the node
 * number.  Sutra alone also checks liveness and snapshot visibility.
 *
 * Metrics (median over repeats of each repeat's figure):
 *   neighbors of a degree-10 node (BOTH, any type): ns per call, iterator
 *     vs reading the CSR slices — ratio target <= 2;
 *   shortest path (BOTH, any type, max_depth 6) over random pairs: p50 and
 *     p99 — ratio target <= 2 (path lengths must agree, else the run fails);
 *   strongest path, same pairs (fewer): p50 and p99, no floor;
 *   shortest path p99 with a fresh snapshot per query while a writer thread
 *     commits 10,000 edges/s through the store, vs the same loop quiet —
 *     target <= 1.5.
 *
 * Knobs: SUTRA_BENCH_GRAPH_N, SUTRA_BENCH_PAIRS (default 1000),
 * SUTRA_BENCH_STRONG_PAIRS (default 20: each query explores most of the
 * graph, see the report), SUTRA_BENCH_REPEAT,
 * SUTRA_BENCH_QUICK (20,000 concepts).
 */
#include "bench/bench.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/store.h"
#include "layout/format.h"
#include "layout/wire.h"

#define MAX_REPEATS 64
#define EDGES_PER_NODE 5u
#define TYPES 4u
#define LOAD_BATCH 10000u
#define MAX_DEPTH 6u
#define WRITER_RATE 10000u  /* edges per second under load               */
#define WRITER_TICK_MS 10u  /* one commit per tick                       */

static volatile uint64_t sink;

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- the graph ---------------------------------------------------------- */

typedef struct edge_list {
    uint32_t *src, *dst, *type;
    float *conf;
    uint64_t count;
} edge_list;

/* Preferential attachment (see the file comment).  Node 0..5 form a seed
 * clique-ish start; every later node adds EDGES_PER_NODE distinct targets. */
static int generate(uint32_t n, edge_list *e)
{
    uint64_t cap = (uint64_t)n * EDGES_PER_NODE;
    e->src = malloc(cap * sizeof(uint32_t));
    e->dst = malloc(cap * sizeof(uint32_t));
    e->type = malloc(cap * sizeof(uint32_t));
    e->conf = malloc(cap * sizeof(float));
    if (!e->src || !e->dst || !e->type || !e->conf)
        return ENOMEM;
    uint64_t rng = 0x6772617068ull, m = 0;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t want = i < EDGES_PER_NODE ? i : EDGES_PER_NODE;
        uint32_t picked[EDGES_PER_NODE];
        for (uint32_t k = 0; k < want;) {
            uint64_t r = rng_next(&rng);
            uint32_t t;
            if (m > 0 && r % 10 < 8) {
                uint64_t edge = (r >> 8) % m;
                t = (r >> 40) & 1 ? e->src[edge] : e->dst[edge];
            } else {
                t = (uint32_t)((r >> 8) % i);
            }
            bool dup = false;
            for (uint32_t j = 0; j < k; j++)
                dup |= picked[j] == t;
            if (dup)
                continue;
            picked[k++] = t;
            e->src[m] = i;
            e->dst[m] = t;
            e->type[m] = (uint32_t)(r >> 20) % TYPES;
            e->conf[m] = 0.05f + (float)((r >> 24) % 20) * 0.05f;
            m++;
        }
    }
    e->count = m;
    return 0;
}

static void edges_free(edge_list *e)
{
    free(e->src);
    free(e->dst);
    free(e->type);
    free(e->conf);
}

/* ---- the CSR floor --------------------------------------------------------- */

typedef struct csr_side {
    uint64_t *off;      /* [n + 1]                                      */
    uint32_t *node;     /* [m] the other endpoint                       */
    uint32_t *type;
    float *conf;
} csr_side;

typedef struct csr {
    uint32_t n;
    csr_side out, in;
    sutra_id *ids;      /* node -> id                                   */
    /* id -> node: open addressing over layout_id_hash like the file's
     * index (F-HASH-2), one word per slot = hash tag << 32 | node + 1 */
    uint64_t *slots;
    uint64_t mask;
    /* bidirectional BFS state, like sutra_traversal's */
    uint32_t stamp;
    uint32_t *seen[2], *parent[2], *queue[2];
} csr;

static int csr_side_build(csr_side *s, uint32_t n, const edge_list *e,
                          bool reverse)
{
    s->off = calloc((size_t)n + 1, sizeof(uint64_t));
    s->node = malloc(e->count * sizeof(uint32_t));
    s->type = malloc(e->count * sizeof(uint32_t));
    s->conf = malloc(e->count * sizeof(float));
    if (!s->off || !s->node || !s->type || !s->conf)
        return ENOMEM;
    for (uint64_t k = 0; k < e->count; k++)
        s->off[(reverse ? e->dst[k] : e->src[k]) + 1]++;
    for (uint32_t i = 0; i < n; i++)
        s->off[i + 1] += s->off[i];
    uint64_t *fill = malloc(((size_t)n + 1) * sizeof(uint64_t));
    if (!fill)
        return ENOMEM;
    memcpy(fill, s->off, ((size_t)n + 1) * sizeof(uint64_t));
    for (uint64_t k = 0; k < e->count; k++) {
        uint32_t from = reverse ? e->dst[k] : e->src[k];
        uint64_t at = fill[from]++;
        s->node[at] = reverse ? e->src[k] : e->dst[k];
        s->type[at] = e->type[k];
        s->conf[at] = e->conf[k];
    }
    free(fill);
    return 0;
}

/* The in-memory id -> node index: load at most 1/2, like the file's. */
static int csr_index_build(csr *g)
{
    uint64_t slots = 1024;
    while (slots < 2ull * g->n)
        slots <<= 1;
    g->slots = calloc(slots, sizeof(uint64_t));
    if (!g->slots)
        return ENOMEM;
    g->mask = slots - 1;
    for (uint32_t u = 0; u < g->n; u++) {
        uint64_t h = layout_id_hash(g->ids[u].bytes);
        uint64_t i = h & g->mask;
        while (g->slots[i] != 0)
            i = (i + 1) & g->mask;
        g->slots[i] = (h >> 32) << 32 | ((uint64_t)u + 1);
    }
    return 0;
}

/* The node of `id`, or UINT32_MAX: probe, match the tag, confirm the id. */
static uint32_t csr_lookup(const csr *g, const sutra_id *id)
{
    uint64_t h = layout_id_hash(id->bytes);
    uint64_t tag = h >> 32;
    for (uint64_t i = h & g->mask;; i = (i + 1) & g->mask) {
        uint64_t word = g->slots[i];
        if (word == 0)
            return UINT32_MAX;
        uint32_t u = (uint32_t)word - 1u;
        if ((word >> 32) == tag && memcmp(g->ids[u].bytes, id->bytes, 16) == 0)
            return u;
    }
}

static int csr_build(csr *g, uint32_t n, const edge_list *e, const sutra_id *ids)
{
    memset(g, 0, sizeof(*g));
    g->n = n;
    g->ids = (sutra_id *)ids;
    if (csr_side_build(&g->out, n, e, false) || csr_side_build(&g->in, n, e, true) ||
        csr_index_build(g))
        return ENOMEM;
    for (int s = 0; s < 2; s++) {
        g->seen[s] = calloc(n, sizeof(uint32_t));
        g->parent[s] = malloc(n * sizeof(uint32_t));
        g->queue[s] = malloc(n * sizeof(uint32_t));
        if (!g->seen[s] || !g->parent[s] || !g->queue[s])
            return ENOMEM;
    }
    return 0;
}

static void csr_free(csr *g)
{
    csr_side *sides[] = {&g->out, &g->in};
    for (int s = 0; s < 2; s++) {
        free(sides[s]->off);
        free(sides[s]->node);
        free(sides[s]->type);
        free(sides[s]->conf);
        free(g->seen[s]);
        free(g->parent[s]);
        free(g->queue[s]);
    }
    free(g->slots);
}

/* The neighbors of node u, both directions, as the API would return them. */
static void csr_neighbors(const csr *g, uint32_t u)
{
    uint64_t acc = 0;
    const csr_side *sides[] = {&g->out, &g->in};
    for (int s = 0; s < 2; s++) {
        const csr_side *c = sides[s];
        for (uint64_t k = c->off[u + 1]; k-- > c->off[u];) {
            sutra_id id = g->ids[c->node[k]];
            acc += id.bytes[0] + c->type[k] + (uint64_t)(c->conf[k] * 100.0f);
        }
    }
    sink += acc;
}

/* The same, starting from the id as the API does: the id -> node lookup
 * first (a hash probe plus the id comparison). */
static void csr_neighbors_of_id(const csr *g, const sutra_id *id)
{
    uint32_t u = csr_lookup(g, id);
    if (u == UINT32_MAX)
        abort(); /* every benchmark id is in the index */
    csr_neighbors(g, u);
}

/* Bidirectional BFS over both directions (undirected), as reader/path.c:
 * level-synchronous, smaller frontier first, stop at the first meeting.
 * Returns the path's node count (ids written to path) or 0. */
static size_t csr_find_path(csr *g, uint32_t src, uint32_t dst, uint32_t max_depth,
                            sutra_id *path)
{
    if (src == dst) {
        path[0] = g->ids[src];
        return 1;
    }
    uint32_t stamp = ++g->stamp;
    size_t lo[2] = {0, 0}, hi[2] = {1, 1};
    g->queue[0][0] = src;
    g->queue[1][0] = dst;
    g->seen[0][src] = g->seen[1][dst] = stamp;
    g->parent[0][src] = g->parent[1][dst] = UINT32_MAX;
    uint32_t meet = UINT32_MAX, hops = 0;
    for (uint32_t depth = 0; depth < max_depth && meet == UINT32_MAX; depth++) {
        if (hi[0] == lo[0] || hi[1] == lo[1])
            return 0;
        int s = hi[0] - lo[0] <= hi[1] - lo[1] ? 0 : 1;
        uint32_t *seen = g->seen[s], *parent = g->parent[s], *q = g->queue[s];
        const uint32_t *other = g->seen[1 - s];
        size_t end = hi[s];
        for (size_t i = lo[s]; i < hi[s] && meet == UINT32_MAX; i++) {
            uint32_t u = q[i];
            const csr_side *sides[] = {&g->out, &g->in};
            for (int d = 0; d < 2 && meet == UINT32_MAX; d++) {
                const csr_side *c = sides[d];
                for (uint64_t k = c->off[u]; k < c->off[u + 1]; k++) {
                    uint32_t w = c->node[k];
                    if (seen[w] == stamp)
                        continue;
                    seen[w] = stamp;
                    parent[w] = u;
                    if (other[w] == stamp) {
                        meet = w;
                        break;
                    }
                    q[end++] = w;
                }
            }
        }
        lo[s] = hi[s];
        hi[s] = end;
        hops = depth + 1;
    }
    if (meet == UINT32_MAX)
        return 0;
    size_t at = 0;
    for (uint32_t v = meet; v != UINT32_MAX; v = g->parent[0][v])
        at++;
    size_t i = at;
    for (uint32_t v = meet; v != UINT32_MAX; v = g->parent[0][v])
        path[--i] = g->ids[v];
    for (uint32_t v = g->parent[1][meet]; v != UINT32_MAX; v = g->parent[1][v])
        path[at++] = g->ids[v];
    (void)hops;
    return at;
}

/* ---- Sutra, through the storage engine ------------------------------------ */

typedef struct loader {
    coord_store *store;
    uint8_t *buf;
    size_t len;
    uint32_t ops;
    uint64_t request_no;
} loader;

static int loader_flush(loader *l)
{
    if (l->ops == 0)
        return 0;
    wire_request_header h;
    wire_request_header_init(&h, WIRE_SYNC_NONE, 1, ++l->request_no, l->ops);
    memcpy(l->buf, &h, sizeof(h));
    wire_limits lim = {.max_message = UINT64_MAX, .max_content = 0,
                       .max_batch = LOAD_BATCH, .vector_dim = 0};
    wire_request req;
    uint32_t failed = 0;
    const char *why = "";
    int rc = wire_request_decode(l->buf, l->len, &lim, &req, &failed, &why);
    if (rc != 0) {
        fprintf(stderr, "bench_graph: batch refused: %s (%s)\n",
                sutra_strerror(rc), why);
        return rc;
    }
    coord_apply_result res;
    coord_commit_info info;
    coord_error err = {0};
    rc = coord_store_apply(l->store, &req, &res, &err);
    if (rc == 0)
        rc = coord_store_commit(l->store, false, &info, &err);
    if (rc != 0)
        fprintf(stderr, "bench_graph: store: %s (%s)\n", sutra_strerror(rc),
                err.message);
    l->len = sizeof(wire_request_header);
    l->ops = 0;
    return rc;
}

static int loader_edge(loader *l, const sutra_id *s, const sutra_id *t,
                       uint32_t type, float conf)
{
    l->len += wire_encode_association(l->buf + l->len, WIRE_OP_LEARN_ASSOCIATION,
                                      s->bytes, t->bytes, type, conf);
    return ++l->ops == LOAD_BATCH ? loader_flush(l) : 0;
}

static int loader_concept(loader *l, const sutra_id *id)
{
    l->len += wire_encode_learn_concept(l->buf + l->len, 0, id->bytes, 1.0f,
                                        0.5f, NULL, 0, NULL, 0);
    return ++l->ops == LOAD_BATCH ? loader_flush(l) : 0;
}

static int build_sutra(const char *dir, uint32_t n, const sutra_id *ids,
                       const edge_list *e, loader *l)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    coord_store_options opts = {.vector_dim = 0};
    coord_error err = {0};
    memset(l, 0, sizeof(*l));
    int rc = coord_store_open(path, &opts, &l->store, &err);
    if (rc != 0) {
        fprintf(stderr, "bench_graph: coord_store_open: %s (%s)\n",
                sutra_strerror(rc), err.message);
        return rc;
    }
    size_t bytes = sizeof(wire_request_header) + LOAD_BATCH * sizeof(wire_association);
    l->buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!l->buf)
        return ENOMEM;
    l->len = sizeof(wire_request_header);
    for (uint32_t i = 0; i < n && rc == 0; i++)
        rc = loader_concept(l, &ids[i]);
    if (rc == 0)
        rc = loader_flush(l);
    for (uint64_t k = 0; k < e->count && rc == 0; k++)
        rc = loader_edge(l, &ids[e->src[k]], &ids[e->dst[k]], e->type[k],
                         e->conf[k]);
    if (rc == 0)
        rc = loader_flush(l);
    return rc;
}

/* ---- the writer thread ------------------------------------------------------ */

typedef struct writer_ctl {
    loader *l;
    const sutra_id *ids;
    uint32_t n;
    atomic_bool stop;
    uint64_t edges;       /* written while running                       */
    uint64_t elapsed_ns;
    int rc;
} writer_ctl;

/* WRITER_RATE edges/s: one commit of rate * tick edges per tick, paced on
 * the clock so a slow commit is caught up, not dropped. */
static void *writer_main(void *arg)
{
    writer_ctl *w = arg;
    uint64_t rng = 0x77726974ull, t0 = bench_now_ns();
    uint32_t per_tick = WRITER_RATE * WRITER_TICK_MS / 1000;
    uint64_t ticks = 0;
    while (!atomic_load(&w->stop) && w->rc == 0) {
        for (uint32_t k = 0; k < per_tick && w->rc == 0; k++) {
            uint64_t r = rng_next(&rng);
            uint32_t s = (uint32_t)(r % w->n), t = (uint32_t)((r >> 32) % w->n);
            w->rc = loader_edge(w->l, &w->ids[s], &w->ids[t], 4 + (uint32_t)(r >> 60) % 4,
                                0.5f);
        }
        if (w->rc == 0)
            w->rc = loader_flush(w->l);
        w->edges += per_tick;
        ticks++;
        uint64_t due = t0 + ticks * WRITER_TICK_MS * 1000000ull, now = bench_now_ns();
        if (due > now)
            usleep((useconds_t)((due - now) / 1000));
    }
    w->elapsed_ns = bench_now_ns() - t0;
    return NULL;
}

/* ---- measurements ------------------------------------------------------------ */

typedef struct run {
    sutra_db *db;
    csr *g;
    const sutra_id *ids;
    uint32_t n;
    const uint32_t *deg10;    /* nodes of total degree 10               */
    size_t deg10_count;
    const uint32_t *pairs;    /* 2 per pair                             */
    size_t pair_count, strong_count;
    sutra_traversal *t;
    double *lat;
    double clock_ns;
    sutra_id *path;
    uint64_t errors;
} run;

static void sutra_neighbors_touch(const struct sutra_snapshot *s, const sutra_id *id,
                                  uint64_t *errors)
{
    sutra_neighbor_iter it;
    sutra_neighbor nb;
    uint64_t acc = 0;
    if (sutra_neighbors_begin(s, id, SUTRA_BOTH, SUTRA_ANY_TYPE, &it) != 0) {
        (*errors)++;
        return;
    }
    while (sutra_neighbors_next(&it, &nb) == 0)
        acc += nb.id.bytes[0] + nb.type + (uint64_t)(nb.confidence * 100.0f);
    sink += acc;
}

/* Who answers a neighbors call in measure_neighbors(). */
enum nb_side { NB_SUTRA, NB_CSR_ID, NB_CSR_NODE };

/* ns per neighbors call over all degree-10 nodes, one side. */
static double measure_neighbors(run *r, const struct sutra_snapshot *s,
                                enum nb_side side)
{
    uint64_t t0 = bench_now_ns();
    for (size_t q = 0; q < r->deg10_count; q++) {
        uint32_t u = r->deg10[q];
        if (side == NB_SUTRA)
            sutra_neighbors_touch(s, &r->ids[u], &r->errors);
        else if (side == NB_CSR_ID)
            csr_neighbors_of_id(r->g, &r->ids[u]);
        else
            csr_neighbors(r->g, u);
    }
    return (double)(bench_now_ns() - t0) / (double)r->deg10_count;
}

/* One shortest-path query; returns the path's node count (0 = none). */
static size_t sutra_path_once(run *r, const struct sutra_snapshot *s, uint32_t a,
                              uint32_t b)
{
    size_t len = 0;
    int rc = sutra_find_path(r->t, s, &r->ids[a], &r->ids[b], MAX_DEPTH,
                             SUTRA_BOTH, SUTRA_ANY_TYPE, r->path, MAX_DEPTH + 1,
                             &len);
    if (rc != 0 && rc != SUTRA_ENOPATH)
        r->errors++;
    return rc == 0 ? len : 0;
}

/* Per-query latencies of shortest paths over the pairs: Sutra on `s` (or a
 * fresh snapshot per query when fresh), or the CSR.  Writes p50/p99 and,
 * into lens (if not NULL), each path's length. */
static void measure_paths(run *r, const struct sutra_snapshot *s, int side,
                          bool fresh, size_t *lens, double *p50, double *p99)
{
    for (size_t q = 0; q < r->pair_count; q++) {
        uint32_t a = r->pairs[2 * q], b = r->pairs[2 * q + 1];
        uint64_t t0 = bench_now_ns();
        size_t len;
        if (side == 0) {
            struct sutra_snapshot now;
            if (fresh && sutra_snapshot(r->db, &now) != 0)
                r->errors++;
            len = sutra_path_once(r, fresh ? &now : s, a, b);
        } else {
            len = csr_find_path(r->g, a, b, MAX_DEPTH, r->path);
        }
        double ns = (double)(bench_now_ns() - t0) - r->clock_ns;
        r->lat[q] = ns > 0 ? ns : 0;
        if (lens)
            lens[q] = len;
    }
    *p50 = bench_percentile(r->lat, r->pair_count, 50);
    *p99 = bench_percentile(r->lat, r->pair_count, 99);
}

static void measure_strongest(run *r, const struct sutra_snapshot *s, double *p50,
                              double *p99, double *found)
{
    size_t ok = 0;
    for (size_t q = 0; q < r->strong_count; q++) {
        uint32_t a = r->pairs[2 * q], b = r->pairs[2 * q + 1];
        size_t len;
        double strength;
        uint64_t t0 = bench_now_ns();
        int rc = sutra_find_strongest_path(r->t, s, &r->ids[a], &r->ids[b],
                                           MAX_DEPTH, SUTRA_BOTH, SUTRA_ANY_TYPE,
                                           r->path, MAX_DEPTH + 1, &len, &strength);
        double ns = (double)(bench_now_ns() - t0) - r->clock_ns;
        r->lat[q] = ns > 0 ? ns : 0;
        if (rc == 0)
            ok++;
        else if (rc != SUTRA_ENOPATH)
            r->errors++;
    }
    *p50 = bench_percentile(r->lat, r->strong_count, 50);
    *p99 = bench_percentile(r->lat, r->strong_count, 99);
    *found = (double)ok / (double)r->strong_count;
}

/* ---- setup ------------------------------------------------------------------ */

/* Nodes whose out + in degree is 10 (at most `cap`, from a fixed seed). */
static size_t pick_degree10(const csr *g, uint32_t *out, size_t cap)
{
    size_t k = 0;
    uint64_t rng = 0x646567ull;
    for (uint32_t tries = 0; tries < g->n * 4u && k < cap; tries++) {
        uint32_t u = (uint32_t)(rng_next(&rng) % g->n);
        uint64_t d = g->out.off[u + 1] - g->out.off[u] + g->in.off[u + 1] -
                     g->in.off[u];
        if (d == 10)
            out[k++] = u;
    }
    return k;
}

typedef struct results {
    double nb_s[MAX_REPEATS], nb_c[MAX_REPEATS], nb_cn[MAX_REPEATS];
    double p50_s[MAX_REPEATS], p50_c[MAX_REPEATS];
    double p99_s[MAX_REPEATS], p99_c[MAX_REPEATS];
    double st50[MAX_REPEATS], st99[MAX_REPEATS], st_found;
    double quiet99[MAX_REPEATS], load99[MAX_REPEATS];
    double quiet50[MAX_REPEATS], load50[MAX_REPEATS];
    double write_rate[MAX_REPEATS];
} results;

/* One repeat of the read metrics; returns -1 if the sides disagree. */
static int repeat_reads(run *r, unsigned rep, results *res, size_t *lens_s,
                        size_t *lens_c)
{
    struct sutra_snapshot s;
    if (sutra_snapshot(r->db, &s) != 0)
        return -1;
    if (rep == 0) {
        /* Warm both sides once: the CSR was just written, while the
         * mapping's pages are touched (minor faults) on first use only; a
         * serving reader runs warm. */
        double ignore;
        measure_neighbors(r, &s, NB_SUTRA);
        measure_neighbors(r, &s, NB_CSR_ID);
        measure_paths(r, &s, 0, false, NULL, &ignore, &ignore);
        measure_paths(r, &s, 1, false, NULL, &ignore, &ignore);
    }
    res->nb_s[rep] = measure_neighbors(r, &s, NB_SUTRA);
    res->nb_c[rep] = measure_neighbors(r, &s, NB_CSR_ID);
    res->nb_cn[rep] = measure_neighbors(r, &s, NB_CSR_NODE);
    measure_paths(r, &s, 0, false, lens_s, &res->p50_s[rep], &res->p99_s[rep]);
    measure_paths(r, &s, 1, false, lens_c, &res->p50_c[rep], &res->p99_c[rep]);
    for (size_t q = 0; q < r->pair_count; q++)
        if (lens_s[q] != lens_c[q]) {
            fprintf(stderr, "bench_graph: pair %zu: sutra path %zu ids, csr %zu\n",
                    q, lens_s[q], lens_c[q]);
            return -1;
        }
    measure_strongest(r, &s, &res->st50[rep], &res->st99[rep], &res->st_found);
    return 0;
}

/* One repeat of quiet vs loaded traversal latency (fresh snapshots). */
static int repeat_under_load(run *r, loader *l, unsigned rep, results *res)
{
    double p50, p99;
    measure_paths(r, NULL, 0, true, NULL, &p50, &p99);
    res->quiet50[rep] = p50;
    res->quiet99[rep] = p99;
    writer_ctl w = {.l = l, .ids = r->ids, .n = r->n};
    atomic_init(&w.stop, false);
    pthread_t th;
    if (pthread_create(&th, NULL, writer_main, &w) != 0)
        return -1;
    usleep(50000); /* the writer is in its stride */
    measure_paths(r, NULL, 0, true, NULL, &p50, &p99);
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    if (w.rc != 0)
        return -1;
    res->load50[rep] = p50;
    res->load99[rep] = p99;
    res->write_rate[rep] = (double)w.edges * 1e9 / (double)w.elapsed_ns;
    return 0;
}

static void report(const results *res, unsigned reps, uint32_t n,
                   const edge_list *e, double build_s, const run *r)
{
    char title[160];
    snprintf(title, sizeof(title),
             "graph: %u concepts, %llu edges, power-law; median of %u repeats",
             n, (unsigned long long)e->count, reps);
    bench_table_begin("graph", title, "csr");
    bench_row("build through the store (s)", build_s, NAN, NAN, NULL);
    bench_row("neighbors, degree-10 node, BOTH (ns/call)",
              bench_median(res->nb_s, reps), bench_median(res->nb_c, reps),
              bench_median(res->nb_s, reps) / bench_median(res->nb_c, reps), "<= 2");
    bench_row("  same, CSR handed the node number (no id lookup)",
              bench_median(res->nb_s, reps), bench_median(res->nb_cn, reps),
              bench_median(res->nb_s, reps) / bench_median(res->nb_cn, reps), NULL);
    double s50 = bench_median(res->p50_s, reps), c50 = bench_median(res->p50_c, reps);
    double s99 = bench_median(res->p99_s, reps), c99 = bench_median(res->p99_c, reps);
    bench_row("shortest path p50 (ns), BOTH, depth 6", s50, c50, s50 / c50, "<= 2");
    bench_row("shortest path p99 (ns), BOTH, depth 6", s99, c99, s99 / c99, "<= 2");
    bench_row("strongest path p50 (ns), BOTH, depth 6",
              bench_median(res->st50, reps), NAN, NAN, NULL);
    bench_row("strongest path p99 (ns), BOTH, depth 6",
              bench_median(res->st99, reps), NAN, NAN, NULL);
    bench_row("strongest path: pairs with a path (fraction)", res->st_found, NAN,
              NAN, NULL);

    bench_table_begin("graph-load", "shortest path, fresh snapshot per query: "
                      "writer at 10k edges/s vs quiet", "quiet");
    double l50 = bench_median(res->load50, reps), q50 = bench_median(res->quiet50, reps);
    double l99 = bench_median(res->load99, reps), q99 = bench_median(res->quiet99, reps);
    bench_row("path p50 (ns), loaded vs quiet", l50, q50, l50 / q50, NULL);
    bench_row("path p99 (ns), loaded vs quiet", l99, q99, l99 / q99, "<= 1.5");
    bench_row("writer edges/s achieved", bench_median(res->write_rate, reps), NAN,
              NAN, NULL);
    if (r->errors)
        printf("errors: %llu\n", (unsigned long long)r->errors);
}

static int run_all(uint32_t n, const char *dir)
{
    unsigned reps = bench_repeats();
    if (reps > MAX_REPEATS)
        reps = MAX_REPEATS;
    size_t pair_count = bench_knob("SUTRA_BENCH_PAIRS", 1000, 200);
    size_t strong_count = bench_knob("SUTRA_BENCH_STRONG_PAIRS", 20, 20);
    if (strong_count > pair_count)
        strong_count = pair_count;

    edge_list e;
    sutra_id *ids = malloc((size_t)n * sizeof(*ids));
    if (!ids || generate(n, &e) != 0)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        bench_record_id(i, &ids[i]);
    uint64_t t0 = bench_now_ns();
    loader l;
    int rc = build_sutra(dir, n, ids, &e, &l);
    double build_s = (double)(bench_now_ns() - t0) / 1e9;
    csr g;
    if (rc == 0)
        rc = csr_build(&g, n, &e, ids);
    if (rc != 0)
        return -1;

    run r = {.g = &g, .ids = ids, .n = n, .pair_count = pair_count,
             .strong_count = strong_count, .clock_ns = bench_clock_overhead_ns()};
    uint32_t *deg10 = malloc(10000 * sizeof(uint32_t));
    uint32_t *pairs = malloc(pair_count * 2 * sizeof(uint32_t));
    r.lat = malloc(pair_count * sizeof(double));
    r.path = malloc((MAX_DEPTH + 1) * sizeof(sutra_id));
    size_t *lens_s = malloc(pair_count * sizeof(size_t));
    size_t *lens_c = malloc(pair_count * sizeof(size_t));
    uint64_t rng = 0x70616972ull;
    for (size_t q = 0; q < 2 * pair_count; q++)
        pairs[q] = (uint32_t)(rng_next(&rng) % n);
    r.deg10 = deg10;
    r.deg10_count = pick_degree10(&g, deg10, 10000);
    r.pairs = pairs;
    rc = sutra_open(dir, NULL, &r.db);
    if (rc == 0)
        rc = sutra_traversal_new(&r.t);
    if (rc != 0 || r.deg10_count == 0) {
        fprintf(stderr, "bench_graph: open: %s (%zu degree-10 nodes)\n",
                sutra_strerror(rc), r.deg10_count);
        return -1;
    }
    printf("graph: %u concepts, %llu edges built in %.1f s; %zu degree-10 "
           "nodes, %zu pairs\n", n, (unsigned long long)e.count, build_s,
           r.deg10_count, pair_count);
    results *res = calloc(1, sizeof(*res));
    for (unsigned rep = 0; rep < reps && rc == 0; rep++)
        if (repeat_reads(&r, rep, res, lens_s, lens_c) != 0)
            rc = -1;
    for (unsigned rep = 0; rep < reps && rc == 0; rep++)
        if (repeat_under_load(&r, &l, rep, res) != 0)
            rc = -1;
    if (rc == 0)
        report(res, reps, n, &e, build_s, &r);
    if (r.errors)
        rc = -1;
    free(res);
    free(lens_s);
    free(lens_c);
    free(deg10);
    free(pairs);
    free(r.lat);
    free(r.path);
    sutra_traversal_free(r.t);
    sutra_close(r.db);
    coord_store_close(l.store, false);
    free(l.buf);
    csr_free(&g);
    edges_free(&e);
    free(ids);
    return rc;
}

int main(void)
{
    uint32_t n = (uint32_t)bench_knob("SUTRA_BENCH_GRAPH_N", 1000000, 20000);
    char dir[256];
    int rc = bench_tempdir("graph", dir);
    if (rc != 0) {
        fprintf(stderr, "bench_graph: tempdir: %s\n", strerror(rc));
        return 1;
    }
    rc = run_all(n, dir);
    bench_remove_tree(dir);
    if (rc == 0)
        bench_summary("bench_graph");
    return rc == 0 ? 0 : 1;
}
