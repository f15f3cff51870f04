/*
 * coordinator/store_apply.c — the open group: requests are validated whole,
 * then staged as records in an in-memory buffer laid out exactly as they
 * will sit in the file (starting at the committed end), plus an id -> state
 * map so later requests of the same group see earlier ones' effects.
 * Association ops also stage adjacency entries (store_assoc.c); validation
 * reserves room for everything a request can stage, so staging never fails
 * half-way.  coord_store_commit() (store_commit.c) writes the buffer with
 * pwrite and then stores the index words.
 *
 * The buffer is the group's own memory, not the mapping: a store through
 * the mapping into a page the process has not touched yet costs a page
 * fault, and on some virtual machines each one costs as much as copying
 * several kilobytes, while pwrite copies into the page cache with no fault
 * at all (docs/performance.md, "Groups written with pwrite again").
 *
 * Concurrency: committer thread only.
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/sutra.h"

#define GROUP_KEEP_BUF (16ull << 20)   /* larger buffers are freed at reset */
#define GROUP_KEEP_STAGED (1u << 16)

/* ---- the staged map --------------------------------------------------- */

static coord_staged *staged_find(const coord_group *g, const uint8_t id[16],
                                 uint64_t h)
{
    if (!g->map_cap)
        return NULL;
    uint32_t mask = g->map_cap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint32_t v = g->map[i];
        if (v == 0)
            return NULL;
        if (memcmp(g->staged[v - 1].id, id, 16) == 0)
            return &g->staged[v - 1];
    }
}

static void map_put(coord_group *g, uint32_t index)
{
    uint32_t mask = g->map_cap - 1;
    uint32_t i = (uint32_t)layout_id_hash(g->staged[index].id) & mask;
    while (g->map[i] != 0)
        i = (i + 1) & mask;
    g->map[i] = index + 1;
}

/* Make room for `more` staged ids so staging itself cannot fail. */
static int staged_reserve(coord_group *g, uint32_t more)
{
    uint64_t need = (uint64_t)g->staged_count + more;
    if (need > UINT32_MAX / 4)
        return ENOMEM;
    if (need > g->staged_cap) {
        uint32_t cap = g->staged_cap ? g->staged_cap : 64;
        while (cap < need)
            cap *= 2;
        coord_staged *st = realloc(g->staged, (size_t)cap * sizeof(*st));
        if (!st)
            return ENOMEM;
        g->staged = st;
        g->staged_cap = cap;
    }
    if ((uint64_t)g->map_cap < 2 * need + 2) {
        uint32_t cap = g->map_cap ? g->map_cap : 128;
        while ((uint64_t)cap < 2 * need + 2)
            cap *= 2;
        uint32_t *map = calloc(cap, sizeof(*map));
        if (!map)
            return ENOMEM;
        free(g->map);
        g->map = map;
        g->map_cap = cap;
        for (uint32_t i = 0; i < g->staged_count; i++)
            map_put(g, i);
    }
    return 0;
}

/* Room for `need` bytes in the group's buffer, keeping its bytes. */
int coord_group_reserve(coord_group *g, uint64_t need)
{
    if (need <= g->cap)
        return 0;
    uint64_t cap = g->cap ? g->cap : 64 * 1024;
    while (cap < need)
        cap *= 2;
    uint8_t *buf = realloc(g->buf, cap);
    if (!buf)
        return ENOMEM;
    g->buf = buf;
    g->cap = cap;
    return 0;
}

static int entries_reserve(coord_group *g)
{
    if (g->entry_count < g->entry_cap)
        return 0;
    uint32_t cap = g->entry_cap ? g->entry_cap * 2 : 64;
    layout_commit_entry *e = realloc(g->entries, (size_t)cap * sizeof(*e));
    if (!e)
        return ENOMEM;
    g->entries = e;
    g->entry_cap = cap;
    return 0;
}

void coord_group_reset(coord_store *s)
{
    coord_group *g = &s->group;
    if (g->cap > GROUP_KEEP_BUF) {
        free(g->buf);
        g->buf = NULL;
        g->cap = 0;
    }
    if (g->staged_cap > GROUP_KEEP_STAGED) {
        free(g->staged);
        free(g->map);
        g->staged = NULL;
        g->map = NULL;
        g->staged_cap = g->map_cap = 0;
    } else if (g->map && g->staged_count) {
        memset(g->map, 0, (size_t)g->map_cap * sizeof(*g->map));
    }
    g->len = 0;
    g->base = s->roots.committed_end;
    g->staged_count = 0;
    g->entry_count = 0;
    g->roots = s->roots;
    g->first_seq = 0;
    g->now_ns = 0;
    g->wants_sync = false;
    coord_assoc_group_reset(g);
}

void coord_group_free(coord_group *g)
{
    free(g->buf);
    free(g->staged);
    free(g->map);
    free(g->entries);
    coord_assoc_group_free(g);
    memset(g, 0, sizeof(*g));
}

/* ---- current state of an id ------------------------------------------ */

/* Bytes at an absolute offset that is either committed or staged. */
static const uint8_t *bytes_at(const coord_store *s, uint64_t off)
{
    const coord_group *g = &s->group;
    return off >= g->base ? g->buf + (off - g->base) : s->map + off;
}

/* Load the committed state of `id` into *st (zeroed first).  Returns 0,
 * SUTRA_ENOTFOUND (never learned) or SUTRA_ECORRUPT. */
static int load_committed(const coord_store *s, const uint8_t id[16],
                          coord_staged *st, coord_error *err)
{
    uint32_t node;
    memset(st, 0, sizeof(*st));
    if (coord_hash_find(s, id, &node) != 0)
        return SUTRA_ENOTFOUND;
    const layout_node *e = coord_node_entry(s, node);
    uint64_t head = __atomic_load_n(&e->head, __ATOMIC_ACQUIRE);
    const layout_concept *c =
        coord_version_at(s, head, s->roots.committed_end, node, id);
    if (!c)
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-NODE-1: node %u head %llu is not a version of "
                          "its id", node, (unsigned long long)head);
    memcpy(st->id, id, 16);
    st->node = node;
    st->head = head;
    st->first_seq = e->first_seq;
    if (c->rec.type != LAYOUT_REC_CONCEPT)
        return 0;
    st->live = true;
    st->created_ns = c->created_ns;
    if (c->content_len &&
        !coord_committed_bytes(s, c->content_off, c->content_len))
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-CON-3: content of version at %llu out of bounds",
                          (unsigned long long)head);
    if (c->dim && (c->dim != s->dim ||
                   !coord_committed_bytes(s, c->embedding_off,
                                          (uint64_t)c->dim * sizeof(float))))
        return coord_fail(err, SUTRA_ECORRUPT,
                          "F-CON-3: embedding of version at %llu invalid",
                          (unsigned long long)head);
    st->content_off = c->content_len ? c->content_off : 0;
    st->content_len = c->content_len;
    st->dim = c->dim;
    st->embedding_off = c->dim ? c->embedding_off : 0;
    return 0;
}

/* The group's view of `id`: 0 with *st (a copy), SUTRA_ENOTFOUND, or an
 * error. */
static int state_of(const coord_store *s, const uint8_t id[16],
                    coord_staged *st, coord_error *err)
{
    const coord_staged *found = staged_find(&s->group, id, layout_id_hash(id));
    if (found) {
        *st = *found;
        return 0;
    }
    return load_committed(s, id, st, err);
}

/* ---- validation (before anything is staged) --------------------------- */

/* An id as earlier ops of the same request left it. */
typedef struct seen_id {
    const uint8_t *id;
    bool live;
    bool exists;         /* has a node number (or will, once staged)        */
    bool has_node;       /* had one before this request: `node` is valid    */
    uint32_t node;
    int64_t forgot_at;   /* index of its latest forget_concept here, or -1  */
    uint64_t added;      /* live adjacency entries this request adds to it  */
    bool lists_read;     /* out_len and in_len are valid                    */
    uint64_t out_len, in_len;   /* its two lists before this request        */
    uint64_t add_out, add_in;   /* entries association ops append to them   */
} seen_id;

/* An association key an earlier op of the request wrote. */
typedef struct seen_key {
    const uint8_t *source, *target;
    uint32_t type;
    bool live;
    uint32_t at;         /* index of that op                                */
} seen_key;

/* A learn_association whose endpoints must be live at the end (F-ASSOC-2). */
typedef struct pending_learn {
    const seen_id *source, *target;
    uint32_t index;
} pending_learn;

typedef struct request_check {
    seen_id *seen;
    uint32_t mask;
    seen_key *keys;
    uint32_t key_mask;
    pending_learn *learns;
    uint32_t learn_count;
    uint64_t bytes;      /* worst-case record bytes                         */
    uint64_t new_nodes;
    uint64_t entries;    /* worst-case adjacency entries staged             */
    uint64_t blocks;     /* bytes of new adjacency blocks it needs at least */
} request_check;

static seen_id *seen_slot(request_check *rc, const uint8_t id[16])
{
    for (uint32_t i = (uint32_t)layout_id_hash(id) & rc->mask;;
         i = (i + 1) & rc->mask)
        if (!rc->seen[i].id || memcmp(rc->seen[i].id, id, 16) == 0)
            return &rc->seen[i];
}

/* The request's view of `id`, loaded from the group on first sight. */
static int seen_get(const coord_store *s, request_check *rc,
                    const uint8_t id[16], seen_id **out, coord_error *err)
{
    seen_id *seen = seen_slot(rc, id);
    if (!seen->id) {
        coord_staged st;
        int rc_state = state_of(s, id, &st, err);
        if (rc_state != 0 && rc_state != SUTRA_ENOTFOUND)
            return rc_state;
        *seen = (seen_id){id, rc_state == 0 && st.live, rc_state == 0,
                          rc_state == 0, rc_state == 0 ? st.node : 0, -1, 0,
                          false, 0, 0, 0, 0};
    }
    *out = seen;
    return 0;
}

/* Both adjacency lists of the id as the group sees them. */
static int seen_lists(coord_store *s, seen_id *seen, coord_error *err)
{
    if (seen->lists_read)
        return 0;
    uint64_t out = 0, in = 0;
    int rc = 0;
    if (seen->has_node) {
        rc = coord_adj_list_len(s, seen->node, LAYOUT_ADJ_OUT, &out, err);
        if (!rc)
            rc = coord_adj_list_len(s, seen->node, LAYOUT_ADJ_IN, &in, err);
    }
    if (rc)
        return rc;
    seen->lists_read = true;
    seen->out_len = out;
    seen->in_len = in;
    return 0;
}

static seen_key *key_slot(request_check *rc, const wire_op *op)
{
    uint64_t h = layout_id_hash(op->id) ^
                 layout_id_hash(op->target) * 0x9E3779B97F4A7C15ull ^ op->type;
    for (uint32_t i = (uint32_t)h & rc->key_mask;; i = (i + 1) & rc->key_mask) {
        seen_key *k = &rc->keys[i];
        if (!k->source || (k->type == op->type &&
                           memcmp(k->source, op->id, 16) == 0 &&
                           memcmp(k->target, op->target, 16) == 0))
            return k;
    }
}

/* Whether the key is live after the ops before this one. */
static bool key_live(const coord_store *s, const seen_key *k,
                     const seen_id *source, const seen_id *target,
                     uint32_t type)
{
    if (k->source) /* F-ADJ-5: a later forget of an endpoint ends it */
        return k->live && source->forgot_at < (int64_t)k->at &&
               target->forgot_at < (int64_t)k->at;
    return source->forgot_at < 0 && target->forgot_at < 0 &&
           source->has_node && target->has_node &&
           coord_assoc_group_live(s, source->node, target->node, type);
}

static uint64_t learn_worst_bytes(const wire_op *op)
{
    uint64_t n = sizeof(layout_concept) + op->content_len + 7;
    if (op->dim)
        n += LAYOUT_REGION_ALIGN - 1 + (uint64_t)op->dim * sizeof(float);
    return n;
}

static int check_learn(const coord_store *s, const wire_op *op, coord_error *err)
{
    if (op->flags & ~(uint16_t)(WIRE_LEARN_KEEP_CONTENT | WIRE_LEARN_KEEP_EMBEDDING))
        return coord_fail(err, SUTRA_EPROTO,
                          "P-OP-2: unknown learn_concept flag bits");
    if ((op->flags & WIRE_LEARN_KEEP_CONTENT) && op->content_len)
        return coord_fail(err, SUTRA_EINVAL,
                          "P-OP-2: KEEP_CONTENT with content bytes");
    if ((op->flags & WIRE_LEARN_KEEP_EMBEDDING) && op->dim)
        return coord_fail(err, SUTRA_EINVAL,
                          "P-OP-2: KEEP_EMBEDDING with an embedding");
    if (op->content_len > LAYOUT_MAX_CONTENT)
        return coord_fail(err, SUTRA_ETOOBIG,
                          "P-OP-2: content longer than the format allows");
    if (op->dim && (op->dim != s->dim || !op->embedding))
        return coord_fail(err, SUTRA_EDIM,
                          "P-OP-3: embedding dimension %u, the file's is %u",
                          op->dim, s->dim);
    if (op->content_len && !op->content)
        return coord_fail(err, SUTRA_EINVAL,
                          "P-OP-2: content_len without content bytes");
    return 0;
}

/* An endpoint of an association op: it gets a node when staged. */
static int check_endpoint(coord_store *s, request_check *rc, seen_id *seen,
                          coord_error *err)
{
    if (!seen->exists) {
        seen->exists = true;
        rc->new_nodes++;
    }
    int rc_len = seen_lists(s, seen, err);
    if (rc_len)
        return rc_len;
    if (seen->out_len + seen->in_len + seen->added + 2 > COORD_ADJ_MAX_LIST)
        return coord_fail(err, SUTRA_EFULL,
                          "F-ADJ-4: too many adjacency entries on one concept");
    return 0;
}

/* learn_association / forget_association (P-OP-9, P-OP-10, F-ASSOC-2). */
static int check_assoc(coord_store *s, request_check *rc, const wire_op *op,
                       uint32_t index, coord_error *err)
{
    bool learn = op->opcode == WIRE_OP_LEARN_ASSOCIATION;
    if (!op->id || !op->target)
        return coord_fail(err, SUTRA_EINVAL,
                          learn ? "P-OP-9: association without ids"
                                : "P-OP-10: association without ids");
    if (learn && !(op->confidence >= 0.0f && op->confidence <= 1.0f))
        return coord_fail(err, SUTRA_EINVAL,
                          "P-OP-9: confidence is not a finite value in [0, 1]");
    int status = coord_assoc_index_ready(s, err);
    seen_id *source = NULL, *target = NULL;
    if (!status)
        status = seen_get(s, rc, op->id, &source, err);
    if (!status)
        status = seen_get(s, rc, op->target, &target, err);
    if (!status)
        status = check_endpoint(s, rc, source, err);
    if (!status && target != source)
        status = check_endpoint(s, rc, target, err);
    if (status)
        return status;
    seen_key *k = key_slot(rc, op);
    if (!learn && !key_live(s, k, source, target, op->type))
        return coord_fail(err, SUTRA_ENOTFOUND,
                          "P-OP-10: forget of an association that is not live");
    *k = (seen_key){op->id, op->target, op->type, learn, index};
    if (learn) {
        rc->learns[rc->learn_count++] = (pending_learn){source, target, index};
        source->added++;
        target->added++;
    }
    source->add_out++;
    target->add_in++;
    rc->entries += 2;
    rc->bytes += layout_align_up(sizeof(layout_assoc), LAYOUT_RECORD_ALIGN);
    return 0;
}

/* forget_concept: reserve for tombstoning every live edge (F-ADJ-5), whose
 * number is at most the non-tombstone entries of the node's lists. */
static int check_forget(coord_store *s, request_check *rc, seen_id *seen,
                        uint32_t index, coord_error *err)
{
    if (!seen->live)
        return coord_fail(err, SUTRA_ENOTFOUND,
                          "P-OP-5: forget of a concept that is not live");
    int status = seen_lists(s, seen, err);
    if (status)
        return status;
    uint64_t edges = seen->out_len + seen->in_len + seen->added;
    if (edges) {
        status = coord_assoc_index_ready(s, err);
        if (status)
            return status;
    }
    seen->live = false;
    seen->forgot_at = index;
    rc->entries += 2 * edges;
    rc->bytes += sizeof(layout_concept);
    return 0;
}

/* Check one data op against the state earlier ops left. */
static int check_op(coord_store *s, request_check *rc, const wire_op *op,
                    uint32_t index, coord_error *err)
{
    if (op->opcode == WIRE_OP_FLUSH)
        return 0;
    if (op->opcode == WIRE_OP_LEARN_ASSOCIATION ||
        op->opcode == WIRE_OP_FORGET_ASSOCIATION)
        return check_assoc(s, rc, op, index, err);
    if (op->opcode != WIRE_OP_LEARN_CONCEPT &&
        op->opcode != WIRE_OP_FORGET_CONCEPT)
        return coord_fail(err, SUTRA_EINVAL,
                          "P-OP-1: opcode %u is not a data op", op->opcode);
    if (!op->id)
        return coord_fail(err, SUTRA_EINVAL,
                          op->opcode == WIRE_OP_FORGET_CONCEPT
                              ? "P-OP-5: forget_concept without an id"
                              : "P-OP-2: learn_concept without an id");
    seen_id *seen;
    int status = seen_get(s, rc, op->id, &seen, err);
    if (status)
        return status;
    if (op->opcode == WIRE_OP_FORGET_CONCEPT)
        return check_forget(s, rc, seen, index, err);
    status = check_learn(s, op, err);
    if (status)
        return status;
    if (!seen->exists) {
        seen->exists = true;
        rc->new_nodes++;
    }
    seen->live = true;
    rc->bytes += learn_worst_bytes(op);
    return 0;
}

/* F-ASSOC-2: both endpoints of every learned association are live once the
 * whole request is applied. */
static int check_endpoints_live(const request_check *rc, uint32_t *failed_op,
                                coord_error *err)
{
    for (uint32_t i = 0; i < rc->learn_count; i++) {
        const pending_learn *l = &rc->learns[i];
        if (l->source->live && l->target->live)
            continue;
        *failed_op = l->index;
        return coord_fail(err, SUTRA_ENOTFOUND,
                          "P-OP-9: an endpoint of the association is not "
                          "live at the end of the request");
    }
    return 0;
}

static uint32_t table_cap(uint64_t n)
{
    uint32_t cap = 16;
    while (cap < 2 * n + 2 && cap < (1u << 31))
        cap *= 2;
    return cap;
}

static void check_free(request_check *rc)
{
    free(rc->seen);
    free(rc->keys);
    free(rc->learns);
    rc->seen = NULL;
    rc->keys = NULL;
    rc->learns = NULL;
}

#define PREFETCH_AHEAD 8

static void prefetch_op(const coord_store *s, const wire_op *op)
{
    if (op->id) /* an association's source */
        coord_hash_prefetch(s, op->id);
    if (op->target)
        coord_hash_prefetch(s, op->target);
}

/* Validate the whole request; on failure *failed_op names the op. */
static int check_request(coord_store *s, const wire_request *req,
                         request_check *rc, uint32_t *failed_op,
                         coord_error *err)
{
    uint64_t ops = req->header.op_count;
    uint32_t cap = table_cap(2 * ops), key_cap = table_cap(ops);
    rc->seen = calloc(cap, sizeof(*rc->seen));
    rc->keys = calloc(key_cap, sizeof(*rc->keys));
    rc->learns = malloc((size_t)ops * sizeof(*rc->learns));
    if (!rc->seen || !rc->keys || !rc->learns) {
        check_free(rc);
        return coord_fail(err, ENOMEM, "no memory to check a request");
    }
    rc->mask = cap - 1;
    rc->key_mask = key_cap - 1;
    size_t cursor = 0, ahead = 0;
    wire_op op, next;
    uint32_t index = 0;
    int status = 0;
    /* The hash slots of a batch's ids are random cache misses: start
     * loading them PREFETCH_AHEAD ops before they are probed. */
    for (uint32_t i = 0; i < PREFETCH_AHEAD && wire_request_next(req, &ahead, &next); i++)
        prefetch_op(s, &next);
    while (status == 0 && wire_request_next(req, &cursor, &op)) {
        if (wire_request_next(req, &ahead, &next))
            prefetch_op(s, &next);
        status = check_op(s, rc, &op, index, err);
        if (status)
            *failed_op = index;
        index++;
    }
    if (status == 0)
        status = check_endpoints_live(rc, failed_op, err);
    /* F-ADJ-4: the blocks the association ops' entries start.  The
     * tombstones of a forget_concept are counted once staged. */
    for (uint32_t i = 0; status == 0 && rc->entries && i <= rc->mask; i++) {
        const seen_id *e = &rc->seen[i];
        if (e->id && e->lists_read)
            rc->blocks += coord_adj_new_block_bytes(e->out_len, e->add_out) +
                          coord_adj_new_block_bytes(e->in_len, e->add_in);
    }
    check_free(rc);
    return status;
}

/* ---- staging ---------------------------------------------------------- */

/* Fetch or create the staged state of `id`; room was reserved. */
static coord_staged *stage_id(coord_store *s, const uint8_t id[16],
                              uint64_t seq, coord_error *err)
{
    coord_group *g = &s->group;
    uint64_t h = layout_id_hash(id);
    coord_staged *st = staged_find(g, id, h);
    if (st)
        return st;
    st = &g->staged[g->staged_count];
    int rc = load_committed(s, id, st, err);
    if (rc == SUTRA_ENOTFOUND) {
        memset(st, 0, sizeof(*st));
        memcpy(st->id, id, 16);
        st->is_new = true;
        st->node = (uint32_t)g->roots.node_count++;
        st->first_seq = seq;
    } else if (rc != 0) {
        return NULL;
    }
    map_put(g, g->staged_count++);
    return st;
}

/* Reserve an 8-aligned record of `size` bytes at the end of the buffer.
 * Its first sizeof(layout_concept) bytes (or all of a smaller record) and
 * its tail padding are zeroed (F-LOG-4); a larger record's payload is the
 * caller's to write whole, gaps included. */
static layout_concept *append_record(coord_group *g, uint64_t size,
                                     uint64_t *off)
{
    uint64_t padded = layout_align_up(size, LAYOUT_RECORD_ALIGN);
    uint8_t *p = g->buf + g->len;
    memset(p, 0, size < sizeof(layout_concept) ? size : sizeof(layout_concept));
    memset(p + size, 0, padded - size);
    *off = g->base + g->len;
    g->len += padded;
    return (layout_concept *)(void *)p;
}

static void fill_version_header(layout_concept *c, const coord_staged *st,
                                uint16_t type, uint64_t seq, uint64_t now)
{
    c->rec.type = type;
    c->rec.seq = seq;
    memcpy(c->id, st->id, 16);
    c->node = st->node;
    c->prev = st->head; /* 0 for a new node (F-CON-2) */
    c->created_ns = st->live ? st->created_ns : now;
    c->updated_ns = now;
}

static void stage_learn(coord_store *s, coord_staged *st, const wire_op *op,
                        uint64_t seq)
{
    coord_group *g = &s->group;
    uint64_t off = g->base + g->len;
    uint32_t flags = 0, inline_len = 0, inline_dim = 0;
    uint64_t content_off = 0, embedding_off = 0;
    uint32_t content_len = op->content_len, dim = op->dim;

    /* F-CON-4: content equal to the live version's is shared, not copied. */
    if (op->flags & WIRE_LEARN_KEEP_CONTENT) {
        content_len = st->live ? st->content_len : 0;
        content_off = content_len ? st->content_off : 0;
        flags |= content_len ? LAYOUT_CONCEPT_F_SHARED_CONTENT : 0;
    } else if (content_len && st->live && st->content_len == content_len &&
               memcmp(bytes_at(s, st->content_off), op->content,
                      content_len) == 0) {
        content_off = st->content_off;
        flags |= LAYOUT_CONCEPT_F_SHARED_CONTENT;
    } else {
        inline_len = content_len;
    }
    if (op->flags & WIRE_LEARN_KEEP_EMBEDDING) {
        dim = st->live ? st->dim : 0;
        embedding_off = dim ? st->embedding_off : 0;
        flags |= dim ? LAYOUT_CONCEPT_F_SHARED_EMBEDDING : 0;
    } else if (dim && st->live && st->dim == dim &&
               memcmp(bytes_at(s, st->embedding_off), op->embedding,
                      (size_t)dim * sizeof(float)) == 0) {
        embedding_off = st->embedding_off;
        flags |= LAYOUT_CONCEPT_F_SHARED_EMBEDDING;
    } else {
        inline_dim = dim;
    }
    if (dim)
        flags |= LAYOUT_CONCEPT_F_EMBEDDING;

    uint64_t size = layout_concept_size(off, inline_len, inline_dim);
    layout_concept *c = append_record(g, size, &off);
    fill_version_header(c, st, LAYOUT_REC_CONCEPT, seq, g->now_ns);
    if (inline_len) {
        content_off = off + sizeof(layout_concept);
        memcpy(c + 1, op->content, inline_len);
    }
    if (inline_dim) {
        uint64_t gap = off + sizeof(layout_concept) + inline_len;
        embedding_off = layout_align_up(gap, LAYOUT_REGION_ALIGN);
        memset((uint8_t *)c + (gap - off), 0, embedding_off - gap);
        memcpy((uint8_t *)c + (embedding_off - off), op->embedding,
               (size_t)inline_dim * sizeof(float));
    }
    c->rec.length = (uint32_t)size;
    c->concept_flags = flags;
    c->strength = op->strength;
    c->confidence = op->confidence;
    c->content_off = content_off;
    c->content_len = content_len;
    c->dim = dim;
    c->embedding_off = embedding_off;
    layout_rec_seal(&c->rec);

    if (st->is_new && !st->head)
        st->first_seq = seq; /* named first by an association op */
    if (!st->live)
        g->roots.concept_count++;
    g->roots.version_count++;
    st->created_ns = c->created_ns;
    st->live = true;
    st->touched = true;
    st->head = off;
    st->content_off = content_off;
    st->content_len = content_len;
    st->dim = dim;
    st->embedding_off = embedding_off;
}

static void stage_forget(coord_store *s, coord_staged *st, uint64_t seq)
{
    coord_group *g = &s->group;
    uint64_t off;
    layout_concept *c = append_record(g, sizeof(layout_concept), &off);
    fill_version_header(c, st, LAYOUT_REC_CONCEPT_TOMBSTONE, seq, g->now_ns);
    c->rec.length = sizeof(layout_concept);
    layout_rec_seal(&c->rec);

    g->roots.concept_count--;
    g->roots.tombstone_count++;
    memset(&st->created_ns, 0,
           sizeof(*st) - offsetof(coord_staged, created_ns));
    st->live = false;
    st->touched = true;
    st->head = off;
}

/* An association write: its log record (F-ASSOC-1) and its adjacency
 * entries.  Endpoints never learned get their node here; the request
 * learns them before it ends (F-ASSOC-2). */
static int stage_assoc(coord_store *s, const wire_op *op, uint64_t seq,
                       coord_error *err)
{
    coord_group *g = &s->group;
    coord_staged *source = stage_id(s, op->id, seq, err);
    coord_staged *target = source ? stage_id(s, op->target, seq, err) : NULL;
    if (!target)
        return err ? err->code : SUTRA_ECORRUPT;
    bool learn = op->opcode == WIRE_OP_LEARN_ASSOCIATION;
    uint64_t off;
    layout_assoc *a = (layout_assoc *)(void *)append_record(
        g, sizeof(layout_assoc), &off);
    a->rec.type = learn ? LAYOUT_REC_ASSOC : LAYOUT_REC_ASSOC_TOMBSTONE;
    a->rec.length = sizeof(layout_assoc);
    a->rec.seq = seq;
    memcpy(a->source, source->id, 16);
    memcpy(a->target, target->id, 16);
    a->source_node = source->node;
    a->target_node = target->node;
    a->type = op->type;
    a->confidence = learn ? op->confidence : 0.0f;
    a->created_ns = g->now_ns;
    layout_rec_seal(&a->rec);
    return coord_assoc_stage_edge(s, source->node, target->node, op->type,
                                  a->confidence, seq, !learn, err);
}

static int stage_op(coord_store *s, const wire_op *op, uint64_t seq,
                    coord_error *err)
{
    if (op->opcode == WIRE_OP_LEARN_ASSOCIATION ||
        op->opcode == WIRE_OP_FORGET_ASSOCIATION)
        return stage_assoc(s, op, seq, err);
    coord_staged *st = stage_id(s, op->id, seq, err);
    if (!st)
        return err ? err->code : SUTRA_ECORRUPT;
    if (op->opcode == WIRE_OP_LEARN_CONCEPT) {
        stage_learn(s, st, op, seq);
        return 0;
    }
    stage_forget(s, st, seq);
    /* F-ADJ-5: the concept's associations end with it. */
    return coord_assoc_stage_forget_node(s, st->node, seq, err);
}

/* Stage every op of a validated request; cannot fail unless the committed
 * state changed under us, which would be a bug: the store then turns
 * read-only rather than leave a half-staged request. */
static int stage_request(coord_store *s, const wire_request *req,
                         coord_apply_result *res, coord_error *err)
{
    coord_group *g = &s->group;
    size_t cursor = 0;
    wire_op op;
    while (wire_request_next(req, &cursor, &op)) {
        if (op.opcode == WIRE_OP_FLUSH) {
            g->wants_sync = true;
            continue;
        }
        uint64_t seq = ++g->roots.last_seq;
        if (stage_op(s, &op, seq, err) != 0) {
            s->read_only = true;
            coord_stat_publish(s);
            return SUTRA_EREADONLY;
        }
        if (!g->first_seq)
            g->first_seq = seq;
        if (!res->first_seq)
            res->first_seq = seq;
        res->op_count++;
    }
    return 0;
}

static int reserve_for(coord_store *s, const wire_request *req,
                       const request_check *rc, coord_error *err)
{
    coord_group *g = &s->group;
    /* Record bytes are a worst case, adjacency blocks what the association
     * ops need; the tombstones of a forgotten concept's edges are known
     * only once staged (coord_store_apply checks again). */
    int status = coord_group_fits(s, rc->bytes, rc->blocks,
                                  g->roots.node_count + rc->new_nodes,
                                  (uint64_t)g->entry_count + 1, err);
    if (status)
        return status;
    /* An association op touches two ids. */
    if (coord_group_reserve(g, g->len + rc->bytes) || entries_reserve(g) ||
        staged_reserve(g, 2 * req->data_ops) ||
        coord_assoc_reserve_group(s, rc->entries))
        return coord_fail(err, ENOMEM, "no memory to stage a request");
    return 0;
}

int coord_store_apply(coord_store *s, const wire_request *req,
                      coord_apply_result *res, coord_error *err)
{
    /* *res is written on failure too: failed_op names the op at fault. */
    coord_apply_result r = {0, 0, WIRE_NO_FAILED_OP, false};
    request_check rc = {0};
    int status;
    if (s->read_only)
        status = coord_fail(err, SUTRA_EREADONLY,
                            "the store stopped accepting writes after an I/O "
                            "error");
    else if (req->is_control)
        status = coord_fail(err, SUTRA_EINVAL,
                            "P-OP-6, P-OP-7: stats and ping touch no storage");
    else
        status = check_request(s, req, &rc, &r.failed_op, err);
    if (status == 0)
        status = reserve_for(s, req, &rc, err);
    if (status) {
        if (res)
            *res = r;
        return status;
    }
    coord_group *g = &s->group;
    if (!g->now_ns)
        g->now_ns = coord_now_ns();
    status = stage_request(s, req, &r, err);
    if (status)
        return status;
    /* Only a forget_concept whose tombstones start blocks (F-ADJ-4) can
     * pass reserve_for() and still not fit.  Staging cannot be undone op
     * by op: the whole group goes, and the caller stages its earlier
     * requests again. */
    status = coord_group_fits(s, 0, 0, g->roots.node_count,
                              (uint64_t)g->entry_count + 1, err);
    if (status) {
        coord_group_reset(s);
        r.first_seq = 0;
        r.op_count = 0;
        r.group_dropped = true;
        if (res)
            *res = r;
        return status;
    }
    g->entries[g->entry_count++] = (layout_commit_entry){
        .client_id = req->header.client_id,
        .request_no = req->header.request_no,
        .first_seq = r.first_seq,
        .op_count = r.op_count,
        .status = 0,
    };
    if (res)
        *res = r;
    return 0;
}

bool coord_store_group_pending(const coord_store *s)
{
    return s->group.entry_count > 0;
}

bool coord_store_group_wants_sync(const coord_store *s)
{
    return s->group.wants_sync;
}

uint64_t coord_store_group_bytes(const coord_store *s)
{
    return s->group.len;
}

void coord_store_abort(coord_store *s)
{
    coord_group_reset(s);
}
