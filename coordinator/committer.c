/*
 * coordinator/committer.c — drain the request queue into groups, apply,
 * commit once per group, sync per policy, then answer.
 *
 * Hand-over: producers (NNG callbacks) enqueue on a liburcu wfcqueue, which
 * is wait-free for them; this thread is the only consumer, so it dequeues
 * without the queue's lock.  Sleeping uses a futex on `sleeping`, set by the
 * committer only after it has seen the queue empty, and cleared and woken by
 * a producer only when it is set: a busy committer costs producers no system
 * call, and an idle one wakes exactly once per burst (Dekker-style: both
 * sides store, full fence, then load the other side's word).
 *
 * Group life: requests are applied as they are dequeued; the group commits
 * when the queue is empty or a bound is reached.  A request that fails to
 * apply changed nothing and is answered at once; the others are answered
 * after the commit (and its sync, when one is due), all with the same
 * generation.  Duplicates (P-IDEM-2) are answered from the table; one whose
 * original is in the open group waits for that group like the original.
 */
#include "coordinator/committer.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/log.h"
#include "sutra/sutra.h"

/*
 * liburcu's queue publishes nodes with inline-asm atomics inside an
 * uninstrumented library, so ThreadSanitizer cannot see that a request's
 * bytes were written before its enqueue; tell it explicitly.
 */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COORD_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define COORD_TSAN 1
#endif
#ifdef COORD_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define handover_release(p) __tsan_release(p)
#define handover_acquire(p) __tsan_acquire(p)
#else
#define handover_release(p) ((void)(p))
#define handover_acquire(p) ((void)(p))
#endif

struct coord_committer {
    struct __cds_wfcq_head head;
    struct cds_wfcq_tail tail;
    _Atomic int sleeping;       /* futex word: 1 while the committer waits */
    _Atomic int stopping;
    pthread_t thread;
    coord_store *store;
    coord_dedup *dedup;
    coord_counters *counters;
    coord_committer_config cfg;
    uint64_t last_sync_ns;      /* when the last sync beside began           */
    uint64_t last_checkpoint_ns; /* ... the last whole-file one               */
    struct syncer {             /* the thread of syncs beside the committer  */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool running;           /* the thread exists                         */
        bool posted;            /* (lock) a ticket awaits the thread         */
        bool done;              /* (lock) its result is ready                */
        bool quit;              /* (lock)                                    */
        int result;             /* (lock)                                    */
        coord_sync_ticket ticket;
        bool in_flight;         /* committer's: posted and not yet collected */
    } syncer;
    uint64_t last_reverify_ns;  /* read-only store: last re-verification    */
    bool read_only_logged;
    int final_status;
};

/* The open group's requests awaiting their reply, in arrival order. */
typedef struct group {
    coord_request *first;
    coord_request *last;
    uint32_t requests;
    uint32_t ops;
    bool wants_sync;     /* a flush op or a WIRE_SYNC_COMMIT request      */
    bool all_sync_none;  /* every request said WIRE_SYNC_NONE            */
} group;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* ---- hand-over -------------------------------------------------------- */

static void wake(coord_committer *c)
{
    if (atomic_exchange(&c->sleeping, 0))
        syscall(SYS_futex, (int *)&c->sleeping, FUTEX_WAKE_PRIVATE, 1, NULL,
                NULL, 0);
}

void coord_committer_submit(coord_committer *c, coord_request *req)
{
    cds_wfcq_node_init(&req->node);
    add(&c->counters->queue_depth, 1);
    handover_release(req);
    cds_wfcq_enqueue(&c->head, &c->tail, &req->node);
    /* enqueue is a full barrier (xchg); the fence makes that explicit for
     * the sleeping load below, pairing with the fence in wait_for_work */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&c->sleeping, memory_order_relaxed))
        wake(c);
}

static coord_request *dequeue(coord_committer *c)
{
    /* single consumer: the queue's dequeue lock is not needed */
    struct cds_wfcq_node *n = __cds_wfcq_dequeue_blocking(&c->head, &c->tail);
    if (!n)
        return NULL;
    atomic_fetch_sub_explicit(&c->counters->queue_depth, 1,
                              memory_order_relaxed);
    coord_request *req = caa_container_of(n, coord_request, node);
    handover_acquire(req);
    return req;
}

static bool sync_result_ready(coord_committer *c);

/* Sleep until work arrives, a stop is asked, the sync in flight ends, or
 * `timeout_ns` (0 = none).  The sync thread sets its result under its lock
 * and then wakes the committer only if `sleeping` is set: a sync that ended
 * after the committer last looked for its result, but before `sleeping`
 * was stored, is seen here instead (its lock orders the two), or the
 * committer could sleep without a deadline with the result uncollected. */
static void wait_for_work(coord_committer *c, uint64_t timeout_ns)
{
    atomic_store(&c->sleeping, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (!cds_wfcq_empty(&c->head, &c->tail) || atomic_load(&c->stopping) ||
        sync_result_ready(c)) {
        atomic_store(&c->sleeping, 0);
        return;
    }
    struct timespec ts = { (time_t)(timeout_ns / 1000000000u),
                           (long)(timeout_ns % 1000000000u) };
    /* returns at once (EAGAIN) if a producer already cleared the word */
    syscall(SYS_futex, (int *)&c->sleeping, FUTEX_WAIT_PRIVATE, 1,
            timeout_ns ? &ts : NULL, NULL, 0);
    atomic_store(&c->sleeping, 0);
}

/* ---- replies ---------------------------------------------------------- */

static void reply_error(coord_committer *c, coord_request *r, int status,
                        uint32_t failed_op, const char *message)
{
    add(&c->counters->requests_failed, 1);
    coord_reply rep = { .status = status, .failed_op = failed_op,
                        .message = message ? message : "" };
    r->reply(r, &rep);
}

static void reply_ok(coord_request *r, uint64_t first_seq, uint64_t generation,
                     uint32_t op_count)
{
    coord_reply rep = { .status = 0, .failed_op = WIRE_NO_FAILED_OP,
                        .first_seq = first_seq, .generation = generation,
                        .op_count = op_count, .message = "" };
    r->reply(r, &rep);
}

static void note_read_only(coord_committer *c, const coord_error *err)
{
    coord_store_stats st;
    coord_store_stats_get(c->store, &st);
    if (st.read_only && !c->read_only_logged) {
        c->read_only_logged = true;
        coord_log_error("storage is read-only after an I/O failure (%s); "
                        "writes are refused until it is re-verified on disk",
                        err->message);
    }
}

/* ---- syncs beside the committer --------------------------------------- */

/*
 * The interval policy's syncs and the checkpoints of every policy run on a
 * thread of their own, and the committer goes on committing while the disk
 * writes what was published: a whole-file fdatasync of several MB takes
 * milliseconds (130 ms while a bulk load fills the next hash table), and
 * on the committer thread it held every write back that long
 * (docs/performance.md).  One sync at most is in flight, and one is
 * started when due after every group, whether the queue emptied or the
 * group was full.
 *
 * Interval policy: when the next sync is due and the last has not
 * returned, the committer waits for it, so an acknowledged write is on
 * disk at most one interval and two syncs later, however slow the disk,
 * instead of the unsynced part of the log growing without bound.
 *
 * Commit policy: every group is durable before it is answered, by its own
 * ranged sync (F-COM-6), which may run while a checkpoint is in flight
 * (store.h explains why that is safe); a checkpoint only makes the index
 * words durable, so one that is due while the last still runs waits for
 * it to end rather than holding the writes.  The none policy's
 * checkpoints, every COORD_NONE_CHECKPOINT_MS, are the same.
 *
 * Every whole-file sync of the committer (a group that cannot sync by
 * range, a flush with nothing to commit, a re-verification, the last one
 * at a stop) first waits for the one in flight and takes its result.  A
 * failed sync's result is taken before the next group commits, and the
 * store is read-only from then on.  The thread wakes the committer when a
 * sync ends, so an idle committer takes the result at once.
 */
static void *syncer_main(void *arg)
{
    coord_committer *c = arg;
    struct syncer *y = &c->syncer;
    pthread_mutex_lock(&y->lock);
    for (;;) {
        while (!y->posted && !y->quit)
            pthread_cond_wait(&y->cond, &y->lock);
        if (!y->posted)
            break;
        coord_sync_ticket t = y->ticket;
        pthread_mutex_unlock(&y->lock);
        int rc = coord_sync_run(&t);
        pthread_mutex_lock(&y->lock);
        y->posted = false;
        y->result = rc;
        y->done = true;
        pthread_cond_broadcast(&y->cond);
        wake(c);
    }
    pthread_mutex_unlock(&y->lock);
    return NULL;
}

static int syncer_start(coord_committer *c)
{
    struct syncer *y = &c->syncer;
    pthread_mutex_init(&y->lock, NULL);
    pthread_cond_init(&y->cond, NULL);
    int rc = pthread_create(&y->thread, NULL, syncer_main, c);
    if (rc) {
        pthread_cond_destroy(&y->cond);
        pthread_mutex_destroy(&y->lock);
        return rc;
    }
    y->running = true;
    return 0;
}

/* After the committer has collected any sync in flight. */
static void syncer_stop(struct syncer *y)
{
    if (!y->running)
        return;
    pthread_mutex_lock(&y->lock);
    y->quit = true;
    pthread_cond_signal(&y->cond);
    pthread_mutex_unlock(&y->lock);
    pthread_join(y->thread, NULL);
    pthread_cond_destroy(&y->cond);
    pthread_mutex_destroy(&y->lock);
    y->running = false;
}

/* Hand a sync of what is published now to the sync thread: of the log
 * only when `log_only` and the store can (coord_store_sync_begin_log),
 * else of the whole file. */
static void sync_post(coord_committer *c, bool log_only)
{
    struct syncer *y = &c->syncer;
    coord_sync_ticket t;
    if (!log_only || !coord_store_sync_begin_log(c->store, &t)) {
        coord_store_sync_begin(c->store, &t);
        c->last_checkpoint_ns = now_ns();
    }
    pthread_mutex_lock(&y->lock);
    y->ticket = t;
    y->done = false;
    y->posted = true;
    pthread_cond_signal(&y->cond);
    pthread_mutex_unlock(&y->lock);
    y->in_flight = true;
    c->last_sync_ns = now_ns();
}

/* Whether the sync in flight has ended and its result awaits collection. */
static bool sync_result_ready(coord_committer *c)
{
    struct syncer *y = &c->syncer;
    if (!y->in_flight)
        return false;
    pthread_mutex_lock(&y->lock);
    bool done = y->done;
    pthread_mutex_unlock(&y->lock);
    return done;
}

/* Apply the result of the sync in flight, if there is one and it is ready,
 * or with `wait` once it is.  @return 0 or the sync's error (logged; the
 * store is then read-only and err says why). */
static int sync_collect(coord_committer *c, bool wait, coord_error *err)
{
    struct syncer *y = &c->syncer;
    if (!y->in_flight)
        return 0;
    pthread_mutex_lock(&y->lock);
    if (wait && !y->done) {
        add(&c->counters->sync_waits, 1);
        while (!y->done)
            pthread_cond_wait(&y->cond, &y->lock);
    }
    bool done = y->done;
    int rc = y->result;
    y->done = false;
    pthread_mutex_unlock(&y->lock);
    if (!done)
        return 0;
    y->in_flight = false;
    rc = coord_store_sync_end(c->store, &y->ticket, rc, err);
    if (rc) {
        coord_log_error("%s failed: %s",
                        c->cfg.sync_policy == COORD_SYNC_INTERVAL
                            ? "interval sync" : "checkpoint",
                        err->message);
        note_read_only(c, err);
    }
    return rc;
}

/* A store that turned read-only after a failed sync is re-verified before
 * a write is refused, at most once per reverify_ms, so a disk that comes
 * back brings writes back without a restart; until it succeeds every write
 * gets SUTRA_EREADONLY. */
static void maybe_reverify(coord_committer *c)
{
    coord_store_stats st;
    coord_store_stats_get(c->store, &st);
    uint64_t now = now_ns();
    if (!st.read_only ||
        now - c->last_reverify_ns < c->cfg.reverify_ms * 1000000u)
        return;
    c->last_reverify_ns = now;
    coord_error err = { 0 };
    (void)sync_collect(c, true, &err); /* it failed already, or it must not
                                          overlap the re-verification */
    int rc = coord_store_reverify(c->store, &err);
    if (rc) {
        coord_log_warn("storage is still read-only: re-verification failed "
                       "(%s)", err.message);
        return;
    }
    coord_log_info("storage re-verified on disk; accepting writes again");
    c->read_only_logged = false;
    c->last_sync_ns = now;
}

/* ---- groups ----------------------------------------------------------- */

/* `new_ops`: data ops this request adds to the group (0 for a duplicate of
 * a request already in it). */
static void group_append(group *g, coord_request *r, uint32_t new_ops)
{
    uint16_t sync = r->wire.header.flags & WIRE_SYNC_MASK;
    r->group_next = NULL;
    if (g->last)
        g->last->group_next = r;
    else
        g->first = r;
    g->last = r;
    if (g->requests++ == 0)
        g->all_sync_none = true;
    g->ops += new_ops;
    if (sync == WIRE_SYNC_COMMIT || r->wire.has_flush)
        g->wants_sync = true;
    if (sync != WIRE_SYNC_NONE)
        g->all_sync_none = false;
}

static bool group_full(const coord_committer *c, const group *g)
{
    return g->ops >= c->cfg.group_max_ops ||
           coord_store_group_bytes(c->store) >= c->cfg.group_max_bytes;
}

static void group_fail(coord_committer *c, group *g, int rc,
                       const char *message)
{
    coord_dedup_abort(c->dedup, rc); /* resends get this failure too */
    for (coord_request *r = g->first, *next; r; r = next) {
        next = r->group_next;
        reply_error(c, r, rc, WIRE_NO_FAILED_OP, message);
    }
}

/* The store dropped the open group to refuse a request that did not fit
 * (coord_store_apply(), group_dropped): stage the group's requests again.
 * Nothing changed in between, so each applies as it did, with the same
 * seqs that its reply and the duplicate table hold.  Should one not, the
 * group fails as a failed commit would. */
static void restage(coord_committer *c, group *g)
{
    add(&c->counters->groups_restaged, 1);
    for (coord_request *r = g->first; r; r = r->group_next) {
        if (!r->staged)
            continue;
        coord_apply_result res = { .failed_op = WIRE_NO_FAILED_OP };
        coord_error err = { 0 };
        int rc = coord_store_apply(c->store, &r->wire, &res, &err);
        if (rc == 0 && res.first_seq == r->first_seq &&
            res.op_count == r->op_count)
            continue;
        const char *why = err.message;
        if (rc == 0) {
            rc = SUTRA_ECORRUPT;
            why = "a request was staged again with other seqs";
        }
        coord_log_error("staging %u requests again failed: %s", g->requests,
                        why);
        coord_store_abort(c->store);
        group_fail(c, g, rc, why);
        *g = (group){ 0 };
        return;
    }
}

/* Apply one request to the open group, or answer it now. */
static void process(coord_committer *c, group *g, coord_request *r)
{
    const wire_request_header *h = &r->wire.header;
    coord_dedup_reply dup;
    if (coord_dedup_lookup(c->dedup, h->client_id, h->request_no, &dup)) {
        add(&c->counters->duplicates, 1);
        coord_log_debug("duplicate request %llu of client %016llx%s",
                        (unsigned long long)h->request_no,
                        (unsigned long long)h->client_id,
                        dup.pending ? " (original in this group)" : "");
        if (dup.status) {
            reply_error(c, r, dup.status, dup.failed_op,
                        COORD_DEDUP_FAILED_MESSAGE);
            return;
        }
        if (!dup.pending) {
            reply_ok(r, dup.first_seq, dup.generation, dup.op_count);
            return;
        }
        r->first_seq = dup.first_seq;
        r->op_count = dup.op_count;
        r->staged = false;
        group_append(g, r, 0);
        return;
    }
    if (!coord_dedup_in_window(c->dedup, h->client_id, h->request_no)) {
        char why[200];
        snprintf(why, sizeof(why),
                 "P-IDEM-1: request %llu is %u or more below the client's "
                 "newest: whether it was applied cannot be told (request "
                 "numbers must run consecutively)",
                 (unsigned long long)h->request_no, COORD_DEDUP_WINDOW);
        reply_error(c, r, SUTRA_EPROTO, WIRE_NO_FAILED_OP, why);
        return;
    }
    if (!g->requests) {
        /* a failed sync beside turns the store read-only: learn it
         * before acknowledging more */
        coord_error serr = { 0 };
        (void)sync_collect(c, false, &serr);
        maybe_reverify(c); /* never with a group open: it drops the group */
    }
    coord_apply_result res = { .failed_op = WIRE_NO_FAILED_OP };
    coord_error err = { 0 };
    int rc = coord_store_apply(c->store, &r->wire, &res, &err);
    if (rc) {
        if (rc == SUTRA_EREADONLY)
            note_read_only(c, &err);
        if (res.group_dropped && g->requests)
            restage(c, g);
        if (coord_dedup_add_failed(c->dedup, h->client_id, h->request_no, rc,
                                   res.failed_op) == ENOMEM)
            coord_log_warn("out of memory: request %llu may be applied if "
                           "resent", (unsigned long long)h->request_no);
        reply_error(c, r, rc, res.failed_op, err.message);
        return;
    }
    if (coord_dedup_add_pending(c->dedup, h->client_id, h->request_no,
                                res.first_seq, res.op_count) != 0)
        coord_log_warn("out of memory: request %llu will not be recognised "
                       "if resent", (unsigned long long)h->request_no);
    r->first_seq = res.first_seq;
    r->op_count = res.op_count;
    r->staged = true;
    group_append(g, r, res.op_count);
}

static bool group_needs_sync(const coord_committer *c, const group *g)
{
    if (g->wants_sync)
        return true;
    return c->cfg.sync_policy == COORD_SYNC_COMMIT && !g->all_sync_none;
}

/* The store's gate before a group's whole-file sync (store.h). */
static int full_sync_gate(void *arg, coord_error *err)
{
    return sync_collect(arg, true, err);
}

/* Sync after publish when the commit itself did not. */
static int sync_published(coord_committer *c, coord_error *err)
{
    int rc = sync_collect(c, true, err);
    if (rc)
        return rc;
    rc = coord_store_sync(c->store, err);
    if (rc) {
        coord_log_error("sync failed: %s", err->message);
        note_read_only(c, err);
    } else {
        c->last_sync_ns = now_ns();
    }
    return rc;
}

static void group_commit(coord_committer *c, group *g)
{
    bool sync = group_needs_sync(c, g);
    bool pending = coord_store_group_pending(c->store);
    coord_commit_info info = { 0 };
    coord_error err = { 0 };
    /* any group takes the result of the sync in flight if it is in, so
     * that no group commits once a failed sync is known (the store is then
     * read-only); one that syncs the whole file waits for it (the gate) */
    int rc = sync_collect(c, false, &err);
    if (!rc)
        rc = coord_store_commit(c->store, sync, &info, &err);
    if (rc) {
        coord_log_error("commit of %u requests failed: %s", g->requests,
                        err.message);
        coord_store_abort(c->store);
        note_read_only(c, &err);
        group_fail(c, g, rc, err.message);
        *g = (group){ 0 };
        return;
    }
    coord_dedup_commit(c->dedup, info.generation);
    if (info.synced)
        c->last_sync_ns = now_ns();
    /* A flush-only request has a commit entry like any other (F-COM-3),
     * so a group of them commits a generation of its own, made durable
     * above when `sync` asked.  Only a group with nothing staged skips
     * the commit; it still owes durability. */
    if (sync && !info.durable && !coord_store_synced(c->store) &&
        (rc = sync_published(c, &err)) != 0) {
        group_fail(c, g, rc, err.message);
        *g = (group){ 0 };
        return;
    }
    if (pending) {
        add(&c->counters->commits, 1);
        add(&c->counters->ops_applied, g->ops);
        if (c->cfg.published)
            c->cfg.published(c->cfg.published_arg, &info);
    }
    coord_log_debug("generation %llu: %u requests, %u ops%s",
                    (unsigned long long)info.generation, g->requests, g->ops,
                    info.synced ? ", synced" : info.durable ? ", durable" : "");
    for (coord_request *r = g->first, *next; r; r = next) {
        next = r->group_next;
        reply_ok(r, r->first_seq, info.generation, r->op_count);
    }
    *g = (group){ 0 };
}

/* ---- the thread ------------------------------------------------------- */

/* Interval policy: sync if data is unsynced and the interval has passed:
 * the log written since the last sync, by range, and the whole file once
 * a checkpoint interval, as for the commit policy.  A whole-file sync every
 * interval would write every index page a bulk load dirtied (a hash slot
 * and a node entry per new concept, scattered) each time again.
 * Commit policy: the same with the checkpoint interval — each group's log
 * bytes were synced before it was acknowledged (F-COM-6), and a full sync
 * now and then makes the index words durable too, so that recovery replays
 * at most an interval of the log (F-HDR-7).
 * None policy: the same, with its longer checkpoint interval; no write
 * waits for it, and a restart after a kill replays only the log written
 * since, rather than the whole file.
 * Both run beside the committer (above).  Returns how long to sleep at
 * most (0 = no deadline: the sync thread wakes the committer when it
 * ends).  A store that turned read-only is not retried: it stays unsynced
 * until restart. */
static uint64_t interval_tick(coord_committer *c)
{
    bool interval_policy = c->cfg.sync_policy == COORD_SYNC_INTERVAL;
    coord_error err = { 0 };
    (void)sync_collect(c, false, &err); /* logged */
    if (c->read_only_logged || coord_store_synced(c->store))
        return 0;
    uint64_t now = now_ns();
    uint64_t interval = (interval_policy ? c->cfg.sync_interval_ms
                                         : c->cfg.checkpoint_ms) * 1000000u;
    uint64_t checkpoint = c->cfg.checkpoint_ms * 1000000u;
    uint64_t since_checkpoint = now - c->last_checkpoint_ns;
    /* Interval policy: between checkpoints, only the log (as the commit
     * policy's groups do, F-COM-6); the index words once a checkpoint. */
    bool log_only = interval_policy && since_checkpoint < checkpoint;
    if (log_only && coord_store_log_durable(c->store))
        return checkpoint - since_checkpoint; /* only words left: they wait */
    uint64_t elapsed = now - c->last_sync_ns;
    if (elapsed < interval)
        return interval - elapsed;
    if (c->syncer.in_flight) {
        /* a checkpoint still running: the next one starts when it ends */
        if (!interval_policy)
            return 0;
        /* an interval sync still running: wait for it (the bound on what
         * an acknowledged write waits for) */
        if (sync_collect(c, true, &err) != 0 || coord_store_synced(c->store))
            return 0;
        if (log_only && coord_store_log_durable(c->store))
            return checkpoint - since_checkpoint;
    }
    sync_post(c, log_only);
    return interval;
}

static void *committer_main(void *arg)
{
    coord_committer *c = arg;
    group g = { 0 };
    coord_log_info("committer started (sync %s, checkpoint every %llu ms)",
                   coord_sync_policy_name(c->cfg.sync_policy),
                   (unsigned long long)c->cfg.checkpoint_ms);
    for (;;) {
        coord_request *r = dequeue(c);
        if (r) {
            if (g.requests && group_full(c, &g)) {
                group_commit(c, &g);
                (void)interval_tick(c); /* a queue that never empties too */
            }
            process(c, &g, r);
            continue;
        }
        if (g.requests) {
            group_commit(c, &g);
            (void)interval_tick(c); /* also under a load that never idles */
            continue;
        }
        uint64_t timeout = interval_tick(c);
        if (atomic_load(&c->stopping))
            break;
        wait_for_work(c, timeout);
    }
    coord_error err = { 0 };
    c->final_status = sync_collect(c, true, &err);
    if (!c->final_status && !coord_store_synced(c->store))
        c->final_status = sync_published(c, &err);
    coord_log_info("committer stopped");
    return NULL;
}

int coord_committer_start(coord_store *store, coord_dedup *dedup,
                          coord_counters *counters,
                          const coord_committer_config *cfg,
                          coord_committer **out)
{
    coord_committer *c = calloc(1, sizeof(*c));
    if (!c)
        return ENOMEM;
    __cds_wfcq_init(&c->head, &c->tail);
    c->store = store;
    c->dedup = dedup;
    c->counters = counters;
    c->cfg = *cfg;
    if (!c->cfg.group_max_bytes)
        c->cfg.group_max_bytes = COORD_GROUP_MAX_BYTES;
    if (!c->cfg.group_max_ops)
        c->cfg.group_max_ops = COORD_GROUP_MAX_OPS;
    if (c->cfg.sync_interval_ms == 0)
        c->cfg.sync_interval_ms = 1000;
    if (c->cfg.reverify_ms == 0)
        c->cfg.reverify_ms = 1000;
    if (c->cfg.checkpoint_ms == 0)
        c->cfg.checkpoint_ms = c->cfg.sync_policy == COORD_SYNC_NONE
                                   ? COORD_NONE_CHECKPOINT_MS
                                   : COORD_CHECKPOINT_MS;
    c->last_sync_ns = c->last_checkpoint_ns = now_ns();
    int rc = syncer_start(c);
    if (!rc) {
        coord_store_set_sync_gate(store, full_sync_gate, c);
        rc = pthread_create(&c->thread, NULL, committer_main, c);
    }
    if (rc) {
        coord_store_set_sync_gate(store, NULL, NULL);
        syncer_stop(&c->syncer);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int coord_committer_stop(coord_committer *c)
{
    if (!c)
        return 0;
    atomic_store(&c->stopping, 1);
    atomic_thread_fence(memory_order_seq_cst);
    wake(c);
    pthread_join(c->thread, NULL);
    syncer_stop(&c->syncer); /* idle: the committer collected its last sync */
    coord_store_set_sync_gate(c->store, NULL, NULL);
    int rc = c->final_status;
    free(c);
    return rc;
}
