/*
 * coordinator/recover_adj.c — restoring the adjacency lists of a recovered
 * generation from its log records (docs/format.md F-REC-5, F-REC-6).
 *
 * Under --sync interval and none a power cut can lose the pages that hold
 * adjacency entries, count words and superseded words while the ASSOC,
 * ASSOC_TOMBSTONE and CONCEPT_TOMBSTONE records that made them survived and
 * are covered by the recovered meta.  F-REC-4 alone would then cut the lists
 * down to what reached the disk: the recovered generation would miss
 * associations it contains.  The records are the truth, so recovery derives
 * the adjacency effects of every such record of the range again, in seq
 * order, on top of the lists as they were at the start of the range (the
 * durable generation D, whose words a successful sync put on disk), and
 * stores the result.
 *
 * The derivation is the store's own: the range is staged as one group with
 * the original seqs (coord_assoc_stage_edge, coord_assoc_stage_forget_node)
 * and published by the commit code (coord_assoc_plan_placed,
 * coord_assoc_publish).  Only two things differ from a live commit:
 *   - the group's lists start from their state at D, computed here from the
 *     file without changing a word (the head block below the range's start,
 *     its count cut to entries with seq <= D's last_seq), and the key index
 *     holds the keys of those lists visible at D;
 *   - new blocks are not allocated: the chain of a list is fixed by its
 *     number of entries (F-ADJ-4), so every block the staged entries need is
 *     an ADJ_BLOCK region of the range, found by (owner, first position) and
 *     checked against the planned size and prev_block.  A block the range
 *     does not hold means the log disagrees with itself: SUTRA_ECORRUPT.
 * The replayed assoc_count must equal the recovered roots' (F-ASSOC-3).
 *
 * After a process crash every word is already right and the replay stores
 * the same values again, so a reader of the recovered snapshot never sees a
 * list shrink; after a power cut no reader survived.
 *
 * Concurrency: committer thread only, before the store accepts writes; it
 * uses the open group and the key index, and leaves both empty.
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/sutra.h"

#define NONE COORD_ASSOC_NONE

/* ---- noting the range -------------------------------------------------- */

static bool push(uint64_t **arr, uint64_t *count, uint64_t *cap, uint64_t v)
{
    if (*count == *cap) {
        uint64_t c = *cap ? *cap * 2 : 256;
        uint64_t *p = realloc(*arr, c * sizeof(*p));
        if (!p)
            return false;
        *arr = p;
        *cap = c;
    }
    (*arr)[(*count)++] = v;
    return true;
}

void coord_adj_tail_note(coord_adj_tail *t, uint64_t off, const layout_rec *rec)
{
    bool ok = true;
    if (rec->type == LAYOUT_REC_ASSOC || rec->type == LAYOUT_REC_ASSOC_TOMBSTONE ||
        rec->type == LAYOUT_REC_CONCEPT_TOMBSTONE)
        ok = push(&t->ops, &t->op_count, &t->op_cap, off);
    else if (rec->type == LAYOUT_REC_ADJ_BLOCK)
        ok = push(&t->blocks, &t->block_count, &t->block_cap, off);
    else if (rec->type == LAYOUT_REC_COMMIT && !t->first_commit)
        t->first_commit = off;
    if (!ok)
        t->no_memory = true;
}

void coord_adj_tail_free(coord_adj_tail *t)
{
    free(t->ops);
    free(t->blocks);
    memset(t, 0, sizeof(*t));
}

/* ---- the generation the range builds on -------------------------------- */

typedef struct base_gen {
    uint64_t last_seq, assoc_count;
} base_gen;

/* D is the generation whose commit record ends right before the range: the
 * first commit of the range names it as prev_commit (F-COM-2). */
static int base_of(const coord_store *s, const coord_adj_tail *t, base_gen *out,
                   coord_error *err)
{
    memset(out, 0, sizeof(*out));
    if (t->from <= LAYOUT_DATA_START)
        return 0;
    const layout_commit *first = t->first_commit ? coord_commit_at(s, t->first_commit)
                                                 : NULL;
    if (!first)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-REC-5: the range from %llu has no commit record",
                          (unsigned long long)t->from);
    if (first->prev_commit == 0)
        return 0; /* D is generation 0: no association yet */
    const layout_commit *d = coord_commit_at(s, first->prev_commit);
    if (!d || d->roots.committed_end != t->from)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-REC-5: the durable end %llu is not the end of the "
                          "commit at %llu", (unsigned long long)t->from,
                          (unsigned long long)first->prev_commit);
    out->last_seq = d->roots.last_seq;
    out->assoc_count = d->roots.assoc_count;
    return 0;
}

/* ---- lists at D ---------------------------------------------------------- */

/* F-ADJ-4: every block older than the head is full, half its size, and the
 * oldest starts at position 0. */
static bool chain_ok(const coord_store *s, const coord_adj_block *head,
                     uint32_t node, uint32_t dir)
{
    coord_adj_block b = *head;
    while (b.prev) {
        coord_adj_block p;
        if (coord_adj_block_read(s, b.prev, b.off, node, dir, &p) != 0 ||
            p.bytes * 2 != b.bytes || p.count != p.cap ||
            p.older + p.cap != b.older)
            return false;
        b = p;
    }
    return b.bytes == LAYOUT_ADJ_MIN_BLOCK && b.older == 0;
}

/* The head block of (node, dir) at D, its count cut to D's entries (the
 * entries of D are durable and in seq order, F-ADJ-2).  out->off 0: the
 * list was empty at D. */
static int head_at_base(const coord_store *s, const coord_adj_tail *t,
                        const base_gen *d, uint32_t node, uint32_t dir,
                        coord_adj_block *out, coord_error *err)
{
    memset(out, 0, sizeof(*out));
    layout_node *e = coord_node_entry(s, node);
    uint64_t off = __atomic_load_n(dir == LAYOUT_ADJ_OUT ? &e->out_adj : &e->in_adj,
                                   __ATOMIC_ACQUIRE);
    coord_adj_block b;
    /* Blocks of the range and of a discarded commit past it come first;
     * the latter are read up to the file size, as in F-REC-4.  Only their
     * descriptors count: the replay stores the range's count words again,
     * and after a power cut one may still hold bytes of a discarded group
     * (its page lost while the descriptor's survived). */
    while (off >= t->from) {
        uint64_t end = off >= s->roots.committed_end ? s->file_size
                                                     : s->roots.committed_end;
        if (coord_adj_block_desc(s, off, end, node, dir, &b) != 0)
            goto damaged;
        off = b.prev;
    }
    if (!off)
        return 0;
    if (coord_adj_block_read(s, off, t->from, node, dir, &b) != 0 ||
        !chain_ok(s, &b, node, dir))
        goto damaged;
    const layout_adj_entry *en =
        (const layout_adj_entry *)(const void *)(s->map + off +
                                                 LAYOUT_ADJ_ENTRIES_OFFSET);
    uint64_t keep = 0;
    while (keep < b.count && en[keep].seq != 0 && en[keep].seq <= d->last_seq)
        keep++;
    b.count = keep;
    *out = b;
    return 0;
damaged:
    return coord_fail(err, SUTRA_ECORRUPT,
                      "F-REC-5: node %u %s-list at %llu is damaged", node,
                      dir == LAYOUT_ADJ_OUT ? "out" : "in",
                      (unsigned long long)off);
}

/* The state of one replay. */
typedef struct replay {
    coord_store *s;
    const coord_adj_tail *t;
    base_gen d;
    uint64_t *nodes;        /* nodes whose lists are registered, in order   */
    uint64_t node_count, node_cap;
    uint32_t node, dir;     /* the list being indexed                       */
    coord_error *err;
} replay;

/* Register both lists of `node` in the group as they were at D. */
static int add_node(replay *rp, uint32_t node)
{
    coord_store *s = rp->s;
    if (node >= s->roots.node_count || !coord_node_entry(s, node))
        return coord_fail(rp->err, SUTRA_ECORRUPT,
                          "F-ASSOC-1: a record names node %u, past the node "
                          "count %llu", node,
                          (unsigned long long)s->roots.node_count);
    if (coord_assoc_group_list(s, node, LAYOUT_ADJ_OUT))
        return 0;
    int rc = coord_assoc_reserve_group(s, 2);
    if (rc)
        return coord_fail(rp->err, rc, "no memory to replay adjacency");
    for (uint32_t dir = LAYOUT_ADJ_OUT; dir <= LAYOUT_ADJ_IN; dir++) {
        coord_adj_block head;
        rc = head_at_base(s, rp->t, &rp->d, node, dir, &head, rp->err);
        if (rc)
            return rc;
        if (coord_assoc_group_add_list(s, node, dir, &head))
            return coord_fail(rp->err, SUTRA_ECORRUPT,
                              "list of node %u registered twice", node);
    }
    if (!push(&rp->nodes, &rp->node_count, &rp->node_cap, node))
        return coord_fail(rp->err, ENOMEM, "no memory to replay adjacency");
    return 0;
}

/* Visiting a list at D: the other endpoints of its visible entries. */
static int add_neighbour(void *ctx, const layout_adj_entry *e, uint64_t pos,
                         uint64_t sup)
{
    (void)pos;
    replay *rp = ctx;
    if (!layout_adj_visible(e, sup, rp->d.last_seq))
        return 0;
    return add_node(rp, e->node);
}

static int walk_at_base(replay *rp, uint32_t node, uint32_t dir,
                        coord_adj_visit visit)
{
    const coord_adj_list *l = coord_assoc_group_list(rp->s, node, dir);
    rp->node = node;
    rp->dir = dir;
    int rc = coord_adj_walk(rp->s, &l->head, node, dir, visit, rp);
    if (rc == SUTRA_ECORRUPT && !rp->err->code)
        return coord_fail(rp->err, SUTRA_ECORRUPT,
                          "F-REC-5: node %u adjacency is damaged", node);
    return rc;
}

/* Every list the range can touch: the endpoints of its association records,
 * its forgotten concepts, and their neighbours at D (F-ADJ-5 tombstones
 * their edges without naming them). */
static int add_lists(replay *rp)
{
    const coord_store *s = rp->s;
    for (uint64_t i = 0; i < rp->t->op_count; i++) {
        const layout_rec *rec = (const layout_rec *)(s->map + rp->t->ops[i]);
        int rc;
        if (rec->type == LAYOUT_REC_CONCEPT_TOMBSTONE) {
            uint32_t n = ((const layout_concept *)rec)->node;
            rc = add_node(rp, n);
            for (uint32_t dir = LAYOUT_ADJ_OUT; !rc && dir <= LAYOUT_ADJ_IN; dir++)
                rc = walk_at_base(rp, n, dir, add_neighbour);
        } else {
            const layout_assoc *a = (const layout_assoc *)rec;
            rc = add_node(rp, a->source_node);
            if (!rc)
                rc = add_node(rp, a->target_node);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Visiting a list at D: its visible entries go into the key index. */
static int index_entry(void *ctx, const layout_adj_entry *e, uint64_t pos,
                       uint64_t sup)
{
    replay *rp = ctx;
    if (!layout_adj_visible(e, sup, rp->d.last_seq))
        return 0;
    if (pos >= COORD_ADJ_MAX_LIST ||
        coord_assoc_reserve(&rp->s->assoc_index, 1))
        return ENOMEM;
    bool out = rp->dir == LAYOUT_ADJ_OUT;
    coord_assoc_slot *k = coord_assoc_put(&rp->s->assoc_index,
                                          out ? rp->node : e->node,
                                          out ? e->node : rp->node, e->type);
    uint32_t *word = out ? &k->out : &k->in;
    if (*word != NONE)
        return SUTRA_ECORRUPT; /* F-ADJ-3: one current entry per key */
    *word = (uint32_t)pos;
    return 0;
}

static int index_lists(replay *rp)
{
    for (uint64_t i = 0; i < rp->node_count; i++)
        for (uint32_t dir = LAYOUT_ADJ_OUT; dir <= LAYOUT_ADJ_IN; dir++) {
            int rc = walk_at_base(rp, (uint32_t)rp->nodes[i], dir, index_entry);
            if (rc == ENOMEM)
                return coord_fail(rp->err, ENOMEM,
                                  "no memory for the association index");
            if (rc)
                return rc;
        }
    return 0;
}

/* ---- staging the range's records -------------------------------------- */

static int stage_record(replay *rp, const layout_rec *rec)
{
    coord_store *s = rp->s;
    coord_error *err = rp->err;
    if (rec->type == LAYOUT_REC_CONCEPT_TOMBSTONE) {
        uint32_t n = ((const layout_concept *)rec)->node;
        uint64_t out = 0, in = 0;
        int rc = coord_adj_list_len(s, n, LAYOUT_ADJ_OUT, &out, err);
        if (!rc)
            rc = coord_adj_list_len(s, n, LAYOUT_ADJ_IN, &in, err);
        if (!rc && coord_assoc_reserve_group(s, 2 * (out + in)))
            rc = coord_fail(err, ENOMEM, "no memory to replay adjacency");
        return rc ? rc : coord_assoc_stage_forget_node(s, n, rec->seq, err);
    }
    const layout_assoc *a = (const layout_assoc *)rec;
    bool tomb = rec->type == LAYOUT_REC_ASSOC_TOMBSTONE;
    if (coord_assoc_reserve_group(s, 2))
        return coord_fail(err, ENOMEM, "no memory to replay adjacency");
    /* P-OP-10: a forget names a live key; a log that says otherwise is
     * damaged, not something to replay. */
    if (tomb && !coord_assoc_group_live(s, a->source_node, a->target_node,
                                        a->type))
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-ASSOC-2: the forget at seq %llu names a key that "
                          "is not live", (unsigned long long)rec->seq);
    return coord_assoc_stage_edge(s, a->source_node, a->target_node, a->type,
                                  a->confidence, rec->seq, tomb, err);
}

/* ---- placing blocks where the range has them --------------------------- */

typedef struct range_block {
    uint64_t owner, older, off;
} range_block;

static int block_cmp(const void *x, const void *y)
{
    const range_block *a = x, *b = y;
    if (a->owner != b->owner)
        return a->owner < b->owner ? -1 : 1;
    if (a->older != b->older)
        return a->older < b->older ? -1 : 1;
    return 0;
}

typedef struct placer {
    const coord_store *s;
    range_block *blocks;
    uint64_t count;
} placer;

static int place_in_range(void *ctx, uint32_t node, uint32_t dir,
                          uint64_t bytes, uint64_t older, uint64_t prev,
                          uint64_t *off)
{
    const placer *p = ctx;
    range_block key = { (uint64_t)node | (uint64_t)dir << 32, older, 0 };
    const range_block *b = bsearch(&key, p->blocks, p->count, sizeof(key),
                                   block_cmp);
    if (!b)
        return SUTRA_ECORRUPT;
    const layout_region *r = (const layout_region *)(p->s->map + b->off);
    if (layout_rec_size(&r->rec) != bytes || r->arg2 != prev ||
        r->arg1 != layout_adj_capacity(bytes))
        return SUTRA_ECORRUPT;
    *off = b->off;
    return 0;
}

static int placer_init(placer *p, const coord_store *s, const coord_adj_tail *t)
{
    p->s = s;
    p->count = t->block_count;
    p->blocks = calloc(t->block_count ? t->block_count : 1, sizeof(*p->blocks));
    if (!p->blocks)
        return ENOMEM;
    for (uint64_t i = 0; i < t->block_count; i++) {
        const layout_region *r = (const layout_region *)(s->map + t->blocks[i]);
        p->blocks[i] = (range_block){ r->arg0, r->reserved[0], t->blocks[i] };
    }
    qsort(p->blocks, p->count, sizeof(*p->blocks), block_cmp);
    return 0;
}

/* ---- the replay ---------------------------------------------------------- */

static int replay_run(replay *rp)
{
    coord_store *s = rp->s;
    int rc = base_of(s, rp->t, &rp->d, rp->err);
    if (!rc)
        rc = add_lists(rp);
    if (!rc)
        rc = index_lists(rp);
    s->group.roots.assoc_count = rp->d.assoc_count;
    for (uint64_t i = 0; !rc && i < rp->t->op_count; i++)
        rc = stage_record(rp, (const layout_rec *)(s->map + rp->t->ops[i]));
    if (rc)
        return rc;
    if (s->group.roots.assoc_count != s->roots.assoc_count)
        return coord_fail(rp->err, SUTRA_ECORRUPT,
                          "F-ASSOC-3: the log's records leave %llu live "
                          "associations, assoc_count says %llu",
                          (unsigned long long)s->group.roots.assoc_count,
                          (unsigned long long)s->roots.assoc_count);
    placer p;
    if (placer_init(&p, s, rp->t))
        return coord_fail(rp->err, ENOMEM, "no memory to replay adjacency");
    rc = coord_assoc_plan_placed(s, place_in_range, &p, rp->err);
    free(p.blocks);
    if (rc)
        return rc;
    rc = coord_assoc_publish(s); /* entries, counts, superseded, heads */
    if (rc)
        return coord_fail(rp->err, rc, "cannot store the replayed adjacency");
    return 0;
}

int coord_adj_replay(coord_store *s, coord_adj_tail *t, coord_error *err)
{
    if (t->no_memory)
        return coord_fail(err, ENOMEM, "no memory to note the log's records");
    if (t->op_count == 0)
        return 0; /* nothing in the range shapes adjacency */
    coord_group_reset(s);
    coord_assoc_clear(&s->assoc_index);
    s->assoc_index_built = false; /* the index below holds D's keys only */
    replay rp = { .s = s, .t = t, .err = err };
    int rc = replay_run(&rp);
    free(rp.nodes);
    coord_group_reset(s);
    coord_assoc_clear(&s->assoc_index);
    s->assoc_index_built = false; /* rebuilt from the lists (F-REC-4) */
    return rc;
}
