/*
 * coordinator/store_grow.c — the next hash table, filled before it is named.
 *
 * F-HASH-4 doubles the id → node table when it would pass half full.  Done
 * on the commit path, a doubling inserts every node into a table larger
 * than the caches, and the group that triggers it waits for all of it:
 * 57-88 ms at 262,000 nodes, 284-292 ms at a million on the machine of
 * docs/performance.md, growing with the table, and every writer waits
 * behind that group.  So once the table is three eighths full the
 * committer allocates the next table's region in an ordinary group, no
 * roots naming it, and a helper thread fills it with the nodes already
 * published, catching up after each commit.  When the table must double,
 * the commit names the filled region: the committer stops the helper,
 * inserts the few nodes it has not reached and publishes (F-HASH-4, §8.1).
 *
 * The helper inserts in node order, as the committer would, so the table
 * is slot for slot the one a doubling on the commit path, F-REC-5 or
 * F-REC-6 computes.  It reads only node entries the published generation
 * counts (complete and never changed, F-NODE-1) and writes only the
 * region no roots name, which no reader and no recovery reads; its stores
 * are plain stores, outside the io seam: nothing depends on them reaching
 * the disk, even after the naming commit (which may sync by range,
 * F-COM-6): recovery fills a table again unless the commit of a durable
 * checkpoint named it (F-REC-5), and such a checkpoint's whole-file sync
 * wrote every slot stored before it.
 *
 * Concurrency: coord_grow_* are called by the committer thread only; the
 * helper shares `published`, `filled` and `stop` with it through atomics
 * and the mutex below.
 */
#include "coordinator/store_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

struct coord_grow {
    coord_store *s;
    uint64_t *table;       /* the region's slots                            */
    uint64_t off, slots;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uint64_t published;    /* nodes the helper may insert (atomic)          */
    uint64_t filled;       /* nodes 0 .. filled - 1 are in the table        */
    bool stop;             /* under lock: catch up, then exit               */
    bool quit;             /* atomic: exit now, the table is forgotten      */
};

/* The entry of a published node, found the way readers find it: through
 * the header's chunk words, which the committer stores (release) before a
 * node of the chunk is counted (F-NODE-2). */
static const layout_node *published_entry(const coord_store *s, uint64_t node)
{
    uint32_t k;
    uint64_t index;
    layout_node_locate((uint32_t)node, &k, &index);
    uint64_t off = __atomic_load_n(&s->hdr->node_chunk[k], __ATOMIC_ACQUIRE);
    return (const layout_node *)(s->map + off + LAYOUT_REGION_BODY) + index;
}

/* F-HASH-2's insertion, into a table nothing reads yet. */
static void put(uint64_t *table, uint64_t slots, const uint8_t id[16],
                uint64_t node)
{
    uint64_t h = layout_id_hash(id);
    uint64_t at = layout_hash_free_slot(table, slots, h);
    if (at < slots) /* always, below the F-HASH-4 load limit */
        __atomic_store_n(&table[at], layout_hash_word(h, node), __ATOMIC_RELAXED);
}

#define GROW_PREFETCH_AHEAD 16

#define GROW_QUIT_CHECK 4096u /* nodes inserted between looks at `quit` */

/* Insert nodes filled .. to - 1, or fewer once told to quit. */
static void fill_to(coord_grow *g, uint64_t to)
{
    uint64_t n = g->filled;
    for (; n < to; n++) {
        if (n % GROW_QUIT_CHECK == 0 && __atomic_load_n(&g->quit, __ATOMIC_RELAXED))
            break;
        if (n + GROW_PREFETCH_AHEAD < to)
            __builtin_prefetch(published_entry(g->s, n + GROW_PREFETCH_AHEAD));
        put(g->table, g->slots, published_entry(g->s, n)->id, n);
    }
    __atomic_store_n(&g->filled, n, __ATOMIC_RELEASE);
}

/* Once caught up the helper sleeps, 1 ms at first and twice as long each
 * time it wakes to nothing, up to 256 ms: under load it stays a few groups
 * behind, and an idle coordinator is not woken 1,000 times a second for
 * the days a table may take to fill.  The committer wakes it to finish. */
#define GROW_IDLE_MIN_NS 1000000L
#define GROW_IDLE_MAX_NS 256000000L

static void *grow_main(void *arg)
{
    coord_grow *g = arg;
    /* One call faults the whole region in, several times faster than a
     * first store into each page does; only a hint (the stores fault in
     * whatever it did not). */
    uintptr_t lo = (uintptr_t)g->table & ~(uintptr_t)(LAYOUT_PAGE_SIZE - 1);
    uintptr_t hi = (uintptr_t)(g->table + g->slots);
    (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
    long idle_ns = GROW_IDLE_MIN_NS;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        if (__atomic_load_n(&g->quit, __ATOMIC_RELAXED))
            break;
        uint64_t to = __atomic_load_n(&g->published, __ATOMIC_ACQUIRE);
        if (to > g->filled) {
            pthread_mutex_unlock(&g->lock);
            fill_to(g, to);
            pthread_mutex_lock(&g->lock);
            idle_ns = GROW_IDLE_MIN_NS;
            continue;
        }
        if (g->stop)
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += idle_ns / 1000000000L;
        until.tv_nsec += idle_ns % 1000000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
        if (idle_ns < GROW_IDLE_MAX_NS)
            idle_ns *= 2;
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int coord_grow_start(coord_store *s, uint64_t off, uint64_t slots)
{
    coord_grow *g = calloc(1, sizeof(*g));
    if (!g)
        return ENOMEM;
    g->s = s;
    g->off = off;
    g->slots = slots;
    g->table = (uint64_t *)(s->map + off + LAYOUT_REGION_BODY);
    g->published = s->roots.node_count;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&g->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (rc) {
        free(g);
        return rc;
    }
    pthread_mutex_init(&g->lock, NULL);
    rc = pthread_create(&g->thread, NULL, grow_main, g);
    if (rc) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return rc;
    }
    s->grow = g;
    return 0;
}

uint64_t coord_grow_region(const coord_store *s)
{
    return s->grow ? s->grow->off : 0;
}

/*
 * A restart, or a re-verification, ends the helper while its table is
 * named by no roots.  Without the meta's note (F-META-6) the next group
 * past three eighths would append another region and this one would stay
 * dead space: twice the table's size in the file at each restart in the
 * window.  Its slots are whatever the helper had stored, some perhaps for
 * nodes a recovery since discarded, so they are zeroed through the io
 * seam before the helper starts again: a power cut may then lose the
 * zeros as any unsynced write, and F-REC-5 fills again a table named in
 * the tail whatever it holds.
 */
void coord_grow_resume(coord_store *s, uint64_t off)
{
    uint64_t slots = s->roots.hash_slots * 2;
    if (!off || s->grow || off <= s->roots.hash_root ||
        s->roots.node_count * COORD_GROW_AT_DEN <=
            s->roots.hash_slots * COORD_GROW_AT_NUM ||
        slots > COORD_MAX_HASH_SLOTS ||
        !coord_region_valid(s, off, s->roots.committed_end,
                            LAYOUT_REC_HASH_TABLE, slots, 0, 0,
                            slots * sizeof(uint64_t)))
        return;
    /* on a failure the region stays dead; the next one is appended */
    uint64_t body = off + LAYOUT_REGION_BODY;
    if (coord_write_zeros(s, body, body + slots * sizeof(uint64_t)) == 0)
        (void)coord_grow_start(s, off, slots);
}

void coord_grow_published(coord_store *s)
{
    if (s->grow)
        __atomic_store_n(&s->grow->published, s->roots.node_count,
                         __ATOMIC_RELEASE);
}

bool coord_grow_ready(const coord_store *s, uint64_t nodes, uint64_t *off,
                      uint64_t *slots)
{
    const coord_grow *g = s->grow;
    if (!g || nodes * LAYOUT_HASH_MAX_LOAD_DEN > g->slots * LAYOUT_HASH_MAX_LOAD_NUM)
        return false;
    *off = g->off;
    *slots = g->slots;
    return true;
}

/* Stop the helper, once it has every published node (`catch_up`) or at
 * once, and free it; returns the nodes it inserted. */
static uint64_t finish(coord_store *s, bool catch_up)
{
    coord_grow *g = s->grow;
    if (!catch_up)
        __atomic_store_n(&g->quit, true, __ATOMIC_RELAXED);
    pthread_mutex_lock(&g->lock);
    g->stop = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    uint64_t filled = g->filled;
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
    s->grow = NULL;
    return filled;
}

int coord_grow_complete(coord_store *s, uint64_t nodes)
{
    uint64_t *table = s->grow->table;
    uint64_t slots = s->grow->slots;
    uint64_t filled = finish(s, true);
    /* the helper's stores become index words the roots name (io.h) */
    if (s->io->changed)
        s->io->changed(s->io, s->fd, (uint64_t)((uint8_t *)table - s->map),
                       slots * sizeof(uint64_t));
    for (uint64_t n = filled; n < nodes; n++) {
        const layout_node *e = coord_node_entry(s, (uint32_t)n);
        int rc = coord_hash_insert(s, table, slots, e->id, (uint32_t)n);
        if (rc)
            return rc;
    }
    return 0;
}

void coord_grow_abandon(coord_store *s)
{
    if (s->grow)
        (void)finish(s, false);
}
