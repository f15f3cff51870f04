/*
 * reader/verify_index.c — the index phases of sutra_verify(): the id -> node
 * hash table (F-HASH-*), the node table (F-NODE-*) and adjacency lists
 * (format.h, F-ADJ-*), each checked against what the log scan of
 * reader/verify.c learned, and last the snapshot's counts.
 *
 * All of these are in-place words that a live coordinator may be changing
 * while we read them, so each is read once with an acquire load, and a word
 * naming something newer than the snapshot is followed back the way readers
 * do (F-SNAP-1).  Such newer bytes are only complained about when the file
 * is at rest (cleanly closed, snapshot = newest generation), where nothing
 * may point past the committed end (F-REC-2).
 *
 * Linear time on hostile input: the hash check is one pass over the slots
 * (reachability from the length of the run of filled slots, not by probing
 * per node), duplicate ids go through an in-memory set, and a walk along
 * offsets either moves strictly backwards through records owned by one node
 * — so no byte is visited for two nodes — or spends v->newer_budget.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reader/verify_internal.h"

#define VERIFY_PROGRESS_STEP (1ull << 16)

#define VERIFY_REQUIRE(v, cond, off, rule, ...)                               \
    do {                                                                      \
        if (!(cond) && !verify_problem((v), (off), (rule), __VA_ARGS__))      \
            return false;                                                     \
    } while (0)

/* ---- the hash table --------------------------------------------------- */

/* One filled slot at index i, `run` filled slots ending at it (F-HASH-2,
 * F-HASH-3): a node of the snapshot, tagged with its id's hash, named once,
 * and reachable by linear probing from its id's home slot. */
static bool verify_slot(verify_ctx *v, uint64_t i, uint64_t word, uint64_t run)
{
    uint64_t slot_off = v->hash_root + LAYOUT_REGION_BODY + 8 * i;
    uint64_t mask = v->hash_slots - 1;
    uint32_t node_plus_one = (uint32_t)word;
    if (node_plus_one == 0)
        return verify_problem(v, slot_off, "F-HASH-2",
                              "filled slot %llu names no node",
                              (unsigned long long)i);
    uint64_t node = node_plus_one - 1u;
    if (node >= v->node_count) {
        VERIFY_REQUIRE(v, !v->at_rest, slot_off, "F-REC-2",
                       "slot %llu names node %llu, beyond the %llu nodes of a "
                       "file at rest", (unsigned long long)i,
                       (unsigned long long)node,
                       (unsigned long long)v->node_count);
        return true;
    }
    const layout_node *entry = verify_node(v, node);
    if (!entry)
        return true; /* its chunk was reported */
    uint64_t h = layout_id_hash(entry->id);
    VERIFY_REQUIRE(v, (word >> 32) == (h >> 32), slot_off, "F-HASH-2",
                   "slot %llu names node %llu, whose id has another tag",
                   (unsigned long long)i, (unsigned long long)node);
    if ((word >> 32) != (h >> 32))
        return true;
    VERIFY_REQUIRE(v, !(v->node_state[node] & VERIFY_NODE_HASHED), slot_off,
                   "F-HASH-2", "node %llu is named by a second slot %llu",
                   (unsigned long long)node, (unsigned long long)i);
    v->node_state[node] |= VERIFY_NODE_HASHED;
    VERIFY_REQUIRE(v, ((i - h) & mask) < run, slot_off, "F-HASH-2",
                   "node %llu at slot %llu cannot be reached from slot %llu",
                   (unsigned long long)node, (unsigned long long)i,
                   (unsigned long long)(h & mask));
    return true;
}

/* Every node of the snapshot is named by a slot. */
static bool verify_all_hashed(verify_ctx *v)
{
    for (uint64_t n = 0; n < v->nodes_ok; n++)
        VERIFY_REQUIRE(v, v->node_state[n] & VERIFY_NODE_HASHED,
                       verify_off(v, verify_node(v, n)), "F-HASH-2",
                       "node %llu is not in the hash table",
                       (unsigned long long)n);
    return true;
}

bool verify_hash(verify_ctx *v)
{
    if (v->hash_root == 0)
        return true; /* the snapshot refused it (F-HASH-1); never reached */
    const uint64_t *slots =
        (const uint64_t *)(v->map + v->hash_root + LAYOUT_REGION_BODY);
    uint64_t count = v->hash_slots, mask = count - 1, start = count;
    /* Start just after an empty slot, so every run is seen whole. */
    for (uint64_t i = 0; i < count && start == count; i++)
        if (reader_load_word(&slots[i]) == 0)
            start = i;
    if (start == count)
        return verify_problem(v, v->hash_root, "F-HASH-4",
                              "hash table of %llu slots has no empty slot",
                              (unsigned long long)count);
    uint64_t run = 0;
    for (uint64_t step = 1; step <= count; step++) {
        if (step % VERIFY_PROGRESS_STEP == 0)
            verify_progress(v, SUTRA_VERIFY_HASH, step, count);
        uint64_t i = (start + step) & mask;
        uint64_t word = reader_load_word(&slots[i]);
        if (word == 0) {
            run = 0;
            continue;
        }
        run++;
        v->rep.hash_used++;
        if (!verify_slot(v, i, word, run))
            return false;
    }
    verify_progress(v, SUTRA_VERIFY_HASH, count, count);
    return verify_all_hashed(v);
}

/* ---- the node table --------------------------------------------------- */

/* F-NODE-1: ids are unique.  An in-memory set of node numbers keyed by the
 * id hash: O(nodes) memory, expected O(1) per node. */
static bool verify_unique_ids(verify_ctx *v)
{
    uint64_t cap = 16;
    while (cap < 2 * v->nodes_ok)
        cap *= 2;
    uint32_t *set = calloc(cap, sizeof(*set));
    if (!set) {
        v->error = ENOMEM;
        return false;
    }
    bool go_on = true;
    for (uint64_t n = 0; n < v->nodes_ok && go_on; n++) {
        const layout_node *e = verify_node(v, n);
        uint64_t i = layout_id_hash(e->id) & (cap - 1);
        for (; set[i]; i = (i + 1) & (cap - 1)) {
            /* set[] holds only earlier nodes (+1), all below nodes_ok */
            const layout_node *other = verify_node(v, set[i] - 1u);
            if (other && memcmp(other->id, e->id, 16) == 0) {
                go_on = verify_problem(v, verify_off(v, e), "F-NODE-1",
                                       "node %llu has the id of node %u",
                                       (unsigned long long)n, set[i] - 1u);
                break;
            }
        }
        if (!set[i])
            set[i] = (uint32_t)n + 1u;
    }
    free(set);
    return go_on;
}

/* A record at `off` that must be a version or tombstone of node `n`; NULL
 * when it is not (or cannot be read).  Records past the committed end are
 * read only inside the file's known size. */
static const layout_concept *verify_version_at(const verify_ctx *v,
                                               uint64_t off, uint64_t n,
                                               const uint8_t id[16])
{
    if (off % LAYOUT_RECORD_ALIGN || off < LAYOUT_DATA_START)
        return NULL;
    bool inside = off < v->end && sizeof(layout_concept) <= v->end - off;
    if (!inside && !reader_range_readable(v->db, off, sizeof(layout_concept)))
        return NULL;
    const layout_concept *c = (const layout_concept *)(v->map + off);
    if ((c->rec.type != LAYOUT_REC_CONCEPT &&
         c->rec.type != LAYOUT_REC_CONCEPT_TOMBSTONE) ||
        c->rec.length < sizeof(layout_concept) || c->node != n ||
        memcmp(c->id, id, 16) != 0 || c->prev >= off)
        return NULL;
    if (inside ? c->rec.length > v->end - off
               : !reader_range_readable(v->db, off, c->rec.length))
        return NULL;
    return c;
}

/* Follow node n's head back past records newer than the snapshot.
 * Returns false to stop; *visible = the newest record inside it, or
 * UINT64_MAX when the walk had to give up on a moving writer. */
static bool verify_skip_newer(verify_ctx *v, uint64_t n, const layout_node *e,
                              uint64_t head, uint64_t *visible)
{
    uint64_t off = head;
    *visible = UINT64_MAX;
    while (off != 0 && off >= v->end) {
        VERIFY_REQUIRE(v, !v->at_rest, verify_off(v, &e->head), "F-REC-2",
                       "node %llu head %llu lies past the committed end of a "
                       "file at rest", (unsigned long long)n,
                       (unsigned long long)head);
        const layout_concept *c = verify_version_at(v, off, n, e->id);
        if (!c || v->newer_budget == 0)
            return true; /* the writer is moving the word */
        v->newer_budget--;
        off = c->prev;
    }
    *visible = off;
    return true;
}

/* Without a complete scan, walk the chain itself: every version of node n,
 * checksummed, each link strictly back (F-CON-2).  An older version ends
 * before the newer one starts (the log only grows), which also keeps the
 * hashing of a whole chain within the committed bytes: records that
 * overlap, each as long as the rest of the file, would make it quadratic. */
static bool verify_chain(verify_ctx *v, uint64_t n, const layout_node *e,
                         uint64_t off)
{
    uint64_t seq = UINT64_MAX, oldest = 0, limit = v->end;
    while (off != 0) {
        const layout_concept *c = verify_version_at(v, off, n, e->id);
        if (c && (off >= limit || c->rec.length > limit - off))
            c = NULL;
        VERIFY_REQUIRE(v, c && c->rec.seq < seq && layout_rec_verify(&c->rec),
                       off, "F-CON-2", "node %llu's chain reaches %llu, not an "
                       "older intact record of the node ending before the "
                       "newer one", (unsigned long long)n,
                       (unsigned long long)off);
        if (!c)
            return true;
        seq = oldest = c->rec.seq;
        limit = off;
        off = c->prev;
    }
    VERIFY_REQUIRE(v, oldest == e->first_seq, verify_off(v, e), "F-NODE-1",
                   "node %llu first_seq %llu, its oldest record has %llu",
                   (unsigned long long)n, (unsigned long long)e->first_seq,
                   (unsigned long long)oldest);
    return true;
}

/* F-NODE-1: one node entry and the record its head names. */
static bool verify_node_entry(verify_ctx *v, uint64_t n)
{
    const layout_node *e = verify_node(v, n);
    uint64_t eoff = verify_off(v, e);
    VERIFY_REQUIRE(v, e->first_seq >= 1 && e->first_seq <= v->last_seq, eoff,
                   "F-NODE-1", "node %llu first_seq %llu outside 1..%llu",
                   (unsigned long long)n, (unsigned long long)e->first_seq,
                   (unsigned long long)v->last_seq);
    uint64_t head = reader_load_word(&e->head), visible;
    if (!verify_skip_newer(v, n, e, head, &visible))
        return false;
    if (visible == UINT64_MAX)
        return true;
    if (visible == 0)
        return verify_problem(v, eoff + offsetof(layout_node, head), "F-NODE-1",
                              "node %llu has no record in the snapshot (head "
                              "%llu)", (unsigned long long)n,
                              (unsigned long long)head);
    if (v->scan_complete) {
        VERIFY_REQUIRE(v, visible == v->last_off[n],
                       eoff + offsetof(layout_node, head), "F-NODE-1",
                       "node %llu head reaches %llu, its newest record is at "
                       "%llu", (unsigned long long)n,
                       (unsigned long long)visible,
                       (unsigned long long)v->last_off[n]);
    } else if (!verify_chain(v, n, e, visible)) {
        return false;
    }
    const layout_concept *c = verify_version_at(v, visible, n, e->id);
    if (c && c->rec.type == LAYOUT_REC_CONCEPT)
        v->head_live++;
    return true;
}

/* F-NODE-3: in a file at rest, entries past the node count are zero. */
static bool verify_unused_entries(verify_ctx *v)
{
    if (!v->at_rest || v->nodes_ok != v->node_count || v->node_count == 0)
        return true;
    uint32_t k;
    uint64_t index;
    layout_node_locate((uint32_t)(v->node_count - 1), &k, &index);
    for (uint64_t i = index + 1; i < layout_node_chunk_entries(k); i++) {
        const layout_node *e = &v->chunk[k][i];
        VERIFY_REQUIRE(v, verify_zero_bytes(e, sizeof(*e)), verify_off(v, e),
                       "F-NODE-3", "entry of node %llu, past the node count, "
                       "is not zero",
                       (unsigned long long)(layout_node_chunk_first(k) + i));
    }
    return true;
}

/* The snapshot's counts against what the log and the heads hold.  The
 * scan compared every commit's counts already; this covers generation 0
 * (F-META-5) and the live count as the heads see it. */
static bool verify_counts(verify_ctx *v)
{
    if (v->generation == 0)
        VERIFY_REQUIRE(v, v->node_count == 0 && v->concept_count == 0 &&
                              v->version_count == 0 && v->tombstone_count == 0 &&
                              v->assoc_count == 0 && v->last_seq == 0,
                       LAYOUT_META_OFFSET_0, "F-META-5",
                       "generation 0 with nonzero counts");
    if (v->nodes_ok == v->node_count)
        VERIFY_REQUIRE(v, v->head_live == v->concept_count,
                       v->last_commit ? v->last_commit : LAYOUT_META_OFFSET_0,
                       "F-COM-1", "%llu nodes are live, the roots count %llu",
                       (unsigned long long)v->head_live,
                       (unsigned long long)v->concept_count);
    return true;
}

bool verify_nodes(verify_ctx *v)
{
    if (!verify_unique_ids(v))
        return false;
    for (uint64_t n = 0; n < v->nodes_ok; n++) {
        if (n % VERIFY_PROGRESS_STEP == 0)
            verify_progress(v, SUTRA_VERIFY_NODES, n, v->nodes_ok);
        if (!verify_node_entry(v, n))
            return false;
        v->rep.nodes++;
    }
    verify_progress(v, SUTRA_VERIFY_NODES, v->nodes_ok, v->nodes_ok);
    return verify_unused_entries(v) && verify_counts(v);
}
