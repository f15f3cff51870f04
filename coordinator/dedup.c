/*
 * coordinator/dedup.c — remember the replies of recent requests per client
 * so that a resent request is answered, not applied again (P-IDEM-2,
 * P-IDEM-3).
 *
 * Layout: a chained hash of clients (buckets sized for max_clients, never
 * resized) plus an intrusive LRU list.  Each client owns a direct-mapped
 * array of slots indexed by request_no & (capacity - 1).  Clients number
 * their requests consecutively, so the last `capacity` requests of a client
 * never collide; a collision with a different request therefore means the
 * window is too small, and the array doubles (up to `window`) instead of
 * forgetting.  Once at `window` slots a newer request replaces the one in its
 * slot, which is exactly the request `window` numbers older.
 *
 * Pending entries (applied, group not yet committed) are also listed in a
 * side array so commit and abort touch only them.  A failed request keeps
 * its status where an applied one keeps its generation and seqs.
 */
#include "coordinator/dedup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/sutra.h"

#define DEDUP_INITIAL_SLOTS 8u
#define DEDUP_MAX_WINDOW (1u << 20)

typedef struct dedup_slot {
    uint64_t request_no; /* 0 = empty (request numbers are nonzero, P-IDEM-1) */
    uint64_t first_seq;
    uint64_t generation;
    uint32_t op_count;   /* the failed op's index when status != 0          */
    int16_t status;      /* 0 = applied; else the failure (SUTRA_E*, errno) */
    uint16_t pending;
} dedup_slot;

_Static_assert(sizeof(dedup_slot) == 32, "a slot is half a cache line");

typedef struct dedup_client {
    uint64_t client_id;
    struct dedup_client *hash_next;
    struct dedup_client *lru_prev; /* towards most recently used  */
    struct dedup_client *lru_next; /* towards least recently used */
    uint32_t capacity;             /* slots, a power of two        */
    uint32_t used;
    uint64_t newest;               /* highest request_no stored    */
    dedup_slot *slots;
} dedup_client;

typedef struct dedup_key {
    uint64_t client_id;
    uint64_t request_no;
} dedup_key;

struct coord_dedup {
    uint32_t window;
    uint32_t max_clients;
    uint32_t client_count;
    uint32_t bucket_mask;
    dedup_client **buckets;
    dedup_client *lru_head; /* most recently used  */
    dedup_client *lru_tail; /* least recently used */
    dedup_key *pending;
    size_t pending_count;
    size_t pending_cap;
};

/* ---- clients: hash and LRU ------------------------------------------- */

static uint32_t bucket_of(const coord_dedup *d, uint64_t client_id)
{
    /* client ids are random, but mix anyway: a client may pick 1, 2, 3… */
    return (uint32_t)((client_id * 0x9E3779B97F4A7C15ull) >> 32) &
           d->bucket_mask;
}

static dedup_client *client_find(const coord_dedup *d, uint64_t client_id)
{
    dedup_client *c = d->buckets[bucket_of(d, client_id)];
    while (c && c->client_id != client_id)
        c = c->hash_next;
    return c;
}

static void lru_unlink(coord_dedup *d, dedup_client *c)
{
    if (c->lru_prev)
        c->lru_prev->lru_next = c->lru_next;
    else
        d->lru_head = c->lru_next;
    if (c->lru_next)
        c->lru_next->lru_prev = c->lru_prev;
    else
        d->lru_tail = c->lru_prev;
    c->lru_prev = c->lru_next = NULL;
}

static void lru_push_front(coord_dedup *d, dedup_client *c)
{
    c->lru_prev = NULL;
    c->lru_next = d->lru_head;
    if (d->lru_head)
        d->lru_head->lru_prev = c;
    d->lru_head = c;
    if (!d->lru_tail)
        d->lru_tail = c;
}

static void lru_push_back(coord_dedup *d, dedup_client *c)
{
    c->lru_next = NULL;
    c->lru_prev = d->lru_tail;
    if (d->lru_tail)
        d->lru_tail->lru_next = c;
    d->lru_tail = c;
    if (!d->lru_head)
        d->lru_head = c;
}

static void lru_touch(coord_dedup *d, dedup_client *c)
{
    if (d->lru_head != c) {
        lru_unlink(d, c);
        lru_push_front(d, c);
    }
}

static void client_remove(coord_dedup *d, dedup_client *c)
{
    dedup_client **p = &d->buckets[bucket_of(d, c->client_id)];
    while (*p != c)
        p = &(*p)->hash_next;
    *p = c->hash_next;
    lru_unlink(d, c);
    d->client_count--;
    free(c->slots);
    free(c);
}

/* A new, empty client; evicts the least recently used one when full. */
static dedup_client *client_add(coord_dedup *d, uint64_t client_id, bool older)
{
    if (d->client_count >= d->max_clients) {
        if (older)
            return NULL; /* rebuilding: every kept client is more recent */
        client_remove(d, d->lru_tail);
    }
    dedup_client *c = calloc(1, sizeof(*c));
    uint32_t capacity = d->window < DEDUP_INITIAL_SLOTS ? d->window
                                                        : DEDUP_INITIAL_SLOTS;
    dedup_slot *slots = calloc(capacity, sizeof(*slots));
    if (!c || !slots) {
        free(c);
        free(slots);
        return NULL;
    }
    c->client_id = client_id;
    c->capacity = capacity;
    c->slots = slots;
    uint32_t b = bucket_of(d, client_id);
    c->hash_next = d->buckets[b];
    d->buckets[b] = c;
    if (older)
        lru_push_back(d, c);
    else
        lru_push_front(d, c);
    d->client_count++;
    return c;
}

/* ---- slots ------------------------------------------------------------ */

static dedup_slot *slot_of(const dedup_client *c, uint64_t request_no)
{
    return &c->slots[request_no & (c->capacity - 1)];
}

/* Double the client's slots.  Entries in distinct slots mod n stay distinct
 * mod 2n, so rehashing never collides. */
static int client_grow(dedup_client *c)
{
    uint32_t capacity = c->capacity * 2;
    dedup_slot *slots = calloc(capacity, sizeof(*slots));
    if (!slots)
        return ENOMEM;
    for (uint32_t i = 0; i < c->capacity; i++)
        if (c->slots[i].request_no)
            slots[c->slots[i].request_no & (capacity - 1)] = c->slots[i];
    free(c->slots);
    c->slots = slots;
    c->capacity = capacity;
    return 0;
}

/* Store an entry.  `older` (rebuild, newest first): never displace. */
static int client_store(coord_dedup *d, dedup_client *c, const dedup_slot *e,
                        bool older)
{
    dedup_slot *s = slot_of(c, e->request_no);
    while (s->request_no && s->request_no != e->request_no &&
           c->capacity < d->window) {
        int rc = client_grow(c);
        if (rc)
            return rc;
        s = slot_of(c, e->request_no);
    }
    if (e->request_no > c->newest)
        c->newest = e->request_no;
    if (s->request_no && older)
        return 0; /* what is there is newer: keep it */
    if (!s->request_no)
        c->used++;
    *s = *e;
    return 0;
}

/* ---- public ----------------------------------------------------------- */

int coord_dedup_create(uint32_t window, uint32_t max_clients,
                       coord_dedup **out)
{
    if (window == 0 || window > DEDUP_MAX_WINDOW ||
        (window & (window - 1)) != 0 || max_clients == 0)
        return SUTRA_EINVAL;
    coord_dedup *d = calloc(1, sizeof(*d));
    if (!d)
        return ENOMEM;
    uint32_t buckets = 16;
    while (buckets < max_clients && buckets < (1u << 30))
        buckets *= 2;
    d->buckets = calloc(buckets, sizeof(*d->buckets));
    if (!d->buckets) {
        free(d);
        return ENOMEM;
    }
    d->window = window;
    d->max_clients = max_clients;
    d->bucket_mask = buckets - 1;
    *out = d;
    return 0;
}

void coord_dedup_destroy(coord_dedup *d)
{
    if (!d)
        return;
    while (d->lru_head)
        client_remove(d, d->lru_head);
    free(d->buckets);
    free(d->pending);
    free(d);
}

bool coord_dedup_peek(const coord_dedup *d, uint64_t client_id,
                      uint64_t request_no, coord_dedup_reply *out)
{
    const dedup_client *c = client_find(d, client_id);
    if (!c || request_no == 0)
        return false;
    const dedup_slot *s = slot_of(c, request_no);
    if (s->request_no != request_no)
        return false;
    *out = (coord_dedup_reply){ .status = s->status,
                                .failed_op = s->status ? s->op_count : WIRE_NO_FAILED_OP,
                                .first_seq = s->first_seq,
                                .generation = s->generation,
                                .op_count = s->status ? 0 : s->op_count,
                                .pending = s->pending != 0 };
    return true;
}

bool coord_dedup_lookup(coord_dedup *d, uint64_t client_id,
                        uint64_t request_no, coord_dedup_reply *out)
{
    if (!coord_dedup_peek(d, client_id, request_no, out))
        return false;
    lru_touch(d, client_find(d, client_id));
    return true;
}

bool coord_dedup_in_window(const coord_dedup *d, uint64_t client_id,
                           uint64_t request_no)
{
    const dedup_client *c = client_find(d, client_id);
    return !c || request_no > c->newest || c->newest - request_no < d->window;
}

static int pending_push(coord_dedup *d, uint64_t client_id,
                        uint64_t request_no)
{
    if (d->pending_count == d->pending_cap) {
        size_t cap = d->pending_cap ? d->pending_cap * 2 : 256;
        dedup_key *p = realloc(d->pending, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        d->pending = p;
        d->pending_cap = cap;
    }
    d->pending[d->pending_count].client_id = client_id;
    d->pending[d->pending_count].request_no = request_no;
    d->pending_count++;
    return 0;
}

int coord_dedup_add_pending(coord_dedup *d, uint64_t client_id,
                            uint64_t request_no, uint64_t first_seq,
                            uint32_t op_count)
{
    if (request_no == 0)
        return SUTRA_EINVAL;
    int rc = pending_push(d, client_id, request_no);
    if (rc)
        return rc;
    dedup_client *c = client_find(d, client_id);
    if (c)
        lru_touch(d, c);
    else if (!(c = client_add(d, client_id, false)))
        rc = ENOMEM;
    dedup_slot e = { .request_no = request_no, .first_seq = first_seq,
                     .op_count = op_count, .pending = 1 };
    if (rc == 0)
        rc = client_store(d, c, &e, false);
    if (rc)
        d->pending_count--;
    return rc;
}

int coord_dedup_add_failed(coord_dedup *d, uint64_t client_id,
                           uint64_t request_no, int32_t status,
                           uint32_t failed_op)
{
    if (request_no == 0 || status == 0 || status < INT16_MIN ||
        status > INT16_MAX)
        return SUTRA_EINVAL;
    dedup_client *c = client_find(d, client_id);
    if (c)
        lru_touch(d, c);
    else if (!(c = client_add(d, client_id, false)))
        return ENOMEM;
    dedup_slot e = { .request_no = request_no, .op_count = failed_op,
                     .status = (int16_t)status };
    return client_store(d, c, &e, false);
}

/* The pending slot of key k, or NULL if it was evicted meanwhile. */
static dedup_slot *pending_slot(coord_dedup *d, const dedup_key *k,
                                dedup_client **client)
{
    dedup_client *c = client_find(d, k->client_id);
    if (!c)
        return NULL;
    dedup_slot *s = slot_of(c, k->request_no);
    if (s->request_no != k->request_no || !s->pending)
        return NULL;
    *client = c;
    return s;
}

void coord_dedup_commit(coord_dedup *d, uint64_t generation)
{
    for (size_t i = 0; i < d->pending_count; i++) {
        dedup_client *c;
        dedup_slot *s = pending_slot(d, &d->pending[i], &c);
        if (s) {
            s->generation = generation;
            s->pending = 0;
        }
    }
    d->pending_count = 0;
}

void coord_dedup_abort(coord_dedup *d, int32_t status)
{
    bool keep = status != 0 && status >= INT16_MIN && status <= INT16_MAX;
    for (size_t i = 0; i < d->pending_count; i++) {
        dedup_client *c;
        dedup_slot *s = pending_slot(d, &d->pending[i], &c);
        if (!s)
            continue;
        if (keep) {
            *s = (dedup_slot){ .request_no = s->request_no,
                               .op_count = WIRE_NO_FAILED_OP,
                               .status = (int16_t)status };
        } else {
            memset(s, 0, sizeof(*s));
            c->used--;
        }
    }
    d->pending_count = 0;
}

void coord_dedup_rebuild_visit(void *ctx, const layout_commit_entry *entry,
                               uint64_t generation)
{
    coord_dedup *d = ctx;
    if (entry->status != 0 || entry->request_no == 0)
        return;
    dedup_client *c = client_find(d, entry->client_id);
    if (!c && !(c = client_add(d, entry->client_id, true)))
        return; /* table full of newer clients, or out of memory */
    dedup_slot e = { .request_no = entry->request_no,
                     .first_seq = entry->first_seq,
                     .generation = generation,
                     .op_count = entry->op_count };
    (void)client_store(d, c, &e, true);
}

uint32_t coord_dedup_client_count(const coord_dedup *d)
{
    return d->client_count;
}

uint64_t coord_dedup_entry_count(const coord_dedup *d)
{
    uint64_t n = 0;
    for (const dedup_client *c = d->lru_head; c; c = c->lru_next)
        n += c->used;
    return n;
}
