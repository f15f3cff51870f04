/*
 * coordinator/server.c — NNG sockets and the per-context state machines.
 *
 * Each context cycles RECV -> (WAIT) -> SEND -> RECV.  The NNG callback owns
 * the context in RECV and SEND; in WAIT the committer owns it, and its
 * reply callback starts the send.  Only one aio operation is ever pending
 * per context, so the state needs no lock: NNG's completion orders the
 * hand-overs.  Callbacks never block: decoding, ping and stats are O(message)
 * or O(1), and handing a write over is a wait-free enqueue.
 *
 * Shutdown: `closing` stops the hand-over to the committer: later writes
 * are parked until coord_server_freeze(), then answered from the (by then
 * final) idempotency table — the original reply for a resend of a request
 * the committer applied, SUTRA_ECLOSED otherwise — and every other
 * request gets SUTRA_ECLOSED at once.  A write the allow-list refuses gets
 * SUTRA_EPERM first, stopping or not.  `handling` counts callbacks between
 * receiving a message and answering, parking or handing it over, so
 * coord_server_drain() knows when the committer's queue can no longer grow
 * and no callback still reads the store's stats, and coord_server_freeze()
 * when no callback can still park (all seq_cst: each side stores its
 * word, then loads the other's).
 *
 * Who may write (P-AUTH-1): with an allow-list, each write's sender is
 * judged by the credentials the kernel recorded when its pipe connected
 * (SO_PEERCRED, read through NNG's ipc:peer-uid/gid options: not
 * forgeable).  The verdict is cached per pipe in a lock-free direct-mapped
 * table, since reading the credentials costs NNG a lookup and a system call
 * per option.
 */
#include "coordinator/server.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>

#include "coordinator/dedup.h"
#include "coordinator/listener.h"
#include "coordinator/log.h"
#include "sutra/sutra.h"

#define REPLY_MESSAGE_MAX 1024u
/* A reply NNG could not hand to its connection within this long means the
 * peer stopped reading: its connection is closed (it reconnects and
 * resends, P-IDEM-2), or each of its requests would hold a context for
 * good and, once all contexts were held, no one else would be answered. */
#define REPLY_SEND_MS 2000
#define CLOSE_SEND_WAIT_MS 2000u
#define CLOSE_GRACE_MS 50u     /* let the last replies leave the pipes */
#define VERDICT_SLOTS 4096u    /* per-pipe write verdicts; a power of two */
#define TEXT_OF(x) #x
#define VERSION_OF(a, b, c) TEXT_OF(a) "." TEXT_OF(b) "." TEXT_OF(c)
#define VERSION_TEXT \
    VERSION_OF(SUTRA_VERSION_MAJOR, SUTRA_VERSION_MINOR, SUTRA_VERSION_PATCH)

enum ctx_state { CTX_RECV, CTX_WAIT, CTX_SEND };

typedef struct coord_ctx {
    coord_request request;  /* the committer's view while in WAIT        */
    coord_server *server;
    nng_ctx ctx;
    nng_aio *aio;
    nng_msg *msg;           /* the request being served                 */
    nng_pipe pipe;          /* the connection it came on                */
    void *copy;             /* aligned copy of a misaligned body        */
    enum ctx_state state;
} coord_ctx;

struct coord_server {
    const coord_options *opts;
    coord_store *store;
    coord_counters *counters;
    coord_committer *committer;
    nng_socket rep;
    nng_socket pub;
    bool rep_open;
    bool pub_open;
    coord_listener *rep_listener; /* watched: see coordinator/listener.h */
    coord_listener *pub_listener;
    wire_limits limits;
    coord_ctx *ctxs;
    uint32_t ctx_count;
    _Atomic int closing;     /* hand no more requests to the committer   */
    _Atomic int frozen;      /* committer stopped: `dedup` is read-only   */
    const coord_dedup *dedup; /* set before `frozen`                      */
    coord_ctx **parked;      /* writes received between the two          */
    _Atomic uint32_t parked_count;
    _Atomic int stopped;     /* sockets closing: do not receive again     */
    _Atomic int handling;    /* callbacks between receive and hand-over   */
    _Atomic int sending;     /* replies handed to NNG, not yet sent       */
    uint64_t start_ns;
    bool check_writers;      /* an allow-list is configured              */
    _Atomic uint64_t refusal_logged_ns; /* connection refusals: log rate  */
    /* Cached verdicts, one word per slot: pipe id << 33 | allowed << 32 |
     * peer uid; 0 = empty (NNG pipe ids are 1..2^31-1).  Any NNG thread. */
    _Atomic uint64_t verdicts[VERDICT_SLOTS];
};

/* NNG's receive limit counts the REQ protocol's header (one 4-byte request
 * id for a direct connection) with the body, and P-REQ-5 speaks of the
 * body. */
#define COORD_REQ_HEADER 4u

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int32_t coord_wire_status(int rc)
{
    if (wire_status_valid(rc))
        return rc;
    if (rc < 0) /* a code of the library's, not of the protocol: a bug */
        return SUTRA_EINVAL;
    if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG)
        return SUTRA_EFULL;
    if (rc == ENOMEM) /* refused, the store unchanged: smaller may fit */
        return SUTRA_ETOOBIG;
    return SUTRA_EREADONLY;
}

/* ---- sending ---------------------------------------------------------- */

static void ctx_receive(coord_ctx *x)
{
    if (atomic_load(&x->server->stopped))
        return;
    x->state = CTX_RECV;
    nng_aio_set_timeout(x->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(x->ctx, x->aio);
}

static void ctx_release_request(coord_ctx *x)
{
    nng_msg_free(x->msg); /* NULL-safe */
    x->msg = NULL;
    free(x->copy);
    x->copy = NULL;
}

/* Send one reply and release the request.  Callback or committer thread,
 * whichever owns the context. */
static void ctx_send(coord_ctx *x, const wire_reply_header *h,
                     const void *body)
{
    nng_msg *m;
    ctx_release_request(x);
    if (nng_msg_alloc(&m, sizeof(*h) + h->body_len) != 0) {
        coord_log_error("out of memory for a reply; the client will resend");
        ctx_receive(x);
        return;
    }
    uint8_t *p = nng_msg_body(m);
    memcpy(p, h, sizeof(*h));
    if (h->body_len)
        memcpy(p + sizeof(*h), body, h->body_len);
    x->state = CTX_SEND;
    atomic_fetch_add(&x->server->sending, 1);
    nng_aio_set_msg(x->aio, m);
    nng_aio_set_timeout(x->aio, REPLY_SEND_MS);
    nng_ctx_send(x->ctx, x->aio);
}

static void ctx_send_status(coord_ctx *x, uint64_t request_no, int rc,
                            uint32_t failed_op, const char *message)
{
    if (!message)
        message = ""; /* ctx_send copies body_len bytes from it */
    size_t len = strlen(message);
    if (len > REPLY_MESSAGE_MAX)
        len = REPLY_MESSAGE_MAX;
    wire_reply_header h;
    wire_reply_header_init(&h, request_no, coord_wire_status(rc), failed_op,
                           0, 0, 0, (uint32_t)len);
    if (rc)
        atomic_fetch_add_explicit(&x->server->counters->requests_failed, 1,
                                  memory_order_relaxed);
    ctx_send(x, &h, message);
}

/* The committer's reply callback (coord_reply_fn): committer thread. */
static void ctx_reply(coord_request *req, const coord_reply *r)
{
    coord_ctx *x = caa_container_of(req, coord_ctx, request);
    size_t len = r->status ? strlen(r->message) : 0;
    if (len > REPLY_MESSAGE_MAX)
        len = REPLY_MESSAGE_MAX;
    wire_reply_header h;
    wire_reply_header_init(&h, req->wire.header.request_no,
                           coord_wire_status(r->status), r->failed_op,
                           r->first_seq, r->generation, r->op_count,
                           (uint32_t)len);
    ctx_send(x, &h, r->message);
}

/* ---- requests --------------------------------------------------------- */

static void stats_fill(const coord_server *s, wire_stats *out)
{
    coord_store_stats st;
    coord_store_stats_get(s->store, &st);
    const coord_counters *c = s->counters;
    memset(out, 0, sizeof(*out));
    out->generation = st.generation;
    out->last_seq = st.last_seq;
    out->committed_end = st.committed_end;
    out->file_size = st.file_size;
    out->node_count = st.node_count;
    out->concept_count = st.concept_count;
    out->version_count = st.version_count;
    out->tombstone_count = st.tombstone_count;
    out->assoc_count = st.assoc_count;
    out->requests = atomic_load_explicit(&c->requests, memory_order_relaxed);
    out->requests_failed =
        atomic_load_explicit(&c->requests_failed, memory_order_relaxed);
    out->ops_applied =
        atomic_load_explicit(&c->ops_applied, memory_order_relaxed);
    out->commits = atomic_load_explicit(&c->commits, memory_order_relaxed);
    out->syncs = st.syncs;
    out->duplicates = atomic_load_explicit(&c->duplicates, memory_order_relaxed);
    out->queue_depth =
        atomic_load_explicit(&c->queue_depth, memory_order_relaxed);
    out->uptime_ns = monotonic_ns() - s->start_ns;
    out->max_message = s->opts->max_message;
    out->max_content = s->opts->max_content;
    out->max_batch = s->opts->max_batch;
    out->vector_dim = st.vector_dim;
    out->sync_policy = (uint32_t)s->opts->sync_policy;
    out->sync_interval_ms = s->opts->sync_interval_ms;
}

void coord_server_metrics(void *server, wire_stats *st,
                          coord_metrics_extra *extra)
{
    const coord_server *s = server;
    stats_fill(s, st);
    coord_store_stats store;
    coord_store_stats_get(s->store, &store);
    extra->read_only = store.read_only;
    extra->events_sent =
        atomic_load_explicit(&s->counters->events_sent, memory_order_relaxed);
    extra->events_failed =
        atomic_load_explicit(&s->counters->events_failed, memory_order_relaxed);
    extra->stalled_closed =
        atomic_load_explicit(&s->counters->stalled_closed, memory_order_relaxed);
    extra->groups_restaged =
        atomic_load_explicit(&s->counters->groups_restaged, memory_order_relaxed);
    extra->sync_waits =
        atomic_load_explicit(&s->counters->sync_waits, memory_order_relaxed);
    extra->connections =
        atomic_load_explicit(&s->counters->connections, memory_order_relaxed);
    extra->connections_refused = atomic_load_explicit(
        &s->counters->connections_refused, memory_order_relaxed);
    extra->version = VERSION_TEXT;
}

/* ping and stats (P-OP-6, P-OP-7): answered here, never queued. */
static void handle_control(coord_ctx *x)
{
    const wire_request *w = &x->request.wire;
    size_t cursor = 0;
    wire_op op;
    wire_stats st = { 0 };
    uint32_t body_len = 0;
    if (wire_request_next(w, &cursor, &op) && op.opcode == WIRE_OP_STATS) {
        stats_fill(x->server, &st);
        body_len = sizeof(st);
    }
    wire_reply_header h;
    wire_reply_header_init(&h, w->header.request_no, 0, WIRE_NO_FAILED_OP, 0,
                           0, 0, body_len);
    ctx_send(x, &h, &st);
}

/* The request number of a message too broken to decode, if it has one. */
static uint64_t raw_request_no(const void *body, size_t len)
{
    uint64_t n = 0;
    if (len >= offsetof(wire_request_header, request_no) + sizeof(n))
        memcpy(&n, (const uint8_t *)body + offsetof(wire_request_header,
                                                    request_no), sizeof(n));
    return n;
}

/* ---- who may write (P-AUTH-1) ---------------------------------------- */

static bool id_listed(const uint32_t *list, uint32_t count, uint64_t id)
{
    for (uint32_t i = 0; i < count; i++)
        if (list[i] == id)
            return true;
    return false;
}

static _Atomic uint64_t *verdict_slot(coord_server *s, uint32_t pipe_id)
{
    return &s->verdicts[pipe_id & (VERDICT_SLOTS - 1u)];
}

/* Whether pipe p comes from this process: the listener's own probe
 * (coordinator/listener.h), let through however many clients are
 * connected.  Only ipc:// tells the peer's pid; on other transports the
 * probe is refused like a client, and the refusal, counted in
 * connections_refused, tells the watchdog the listener works. */
static bool own_pipe(nng_pipe p)
{
    uint64_t pid = 0;
    return nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid) == 0 &&
           pid == (uint64_t)getpid();
}

/* NNG_PIPE_EV_ADD_PRE, on an NNG thread.
 *
 * The connection cap: NNG gives each connection a buffer as large as the
 * message it announces, up to max_message + 64 KiB, once its header has
 * arrived, so connections are what memory is bounded by.  Past
 * --max-connections a new one is closed at once (NNG then never adds it);
 * its client redials and gets in once another leaves.  Every pipe that saw
 * this event gets NNG_PIPE_EV_REM_POST, rejected ones included, which
 * takes it off the count.
 *
 * Allow-list verdicts: NNG reuses a closed pipe's id once its ids wrap, so
 * drop any verdict cached under this id before the new pipe can deliver a
 * message.  Lock-free; races only with verdict stores, which replace what
 * they saw by compare-and-swap. */
static void pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)ev;
    coord_server *s = arg;
    uint64_t open = atomic_fetch_add(&s->counters->connections, 1) + 1;
    if (open > s->opts->max_connections && !own_pipe(p)) {
        atomic_fetch_add(&s->counters->connections_refused, 1);
        uint64_t now = monotonic_ns(), last = atomic_load(&s->refusal_logged_ns);
        if (now - last >= 10000000000ull &&
            atomic_compare_exchange_strong(&s->refusal_logged_ns, &last, now))
            coord_log_warn("refusing client connections: %u are open "
                           "(--max-connections); refused so far: %llu",
                           s->opts->max_connections,
                           (unsigned long long)atomic_load(
                               &s->counters->connections_refused));
        (void)nng_pipe_close(p);
        return;
    }
    if (!s->check_writers)
        return;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    _Atomic uint64_t *slot = verdict_slot(s, id);
    uint64_t word = atomic_load_explicit(slot, memory_order_relaxed);
    if (word >> 33 == id)
        atomic_compare_exchange_strong_explicit(slot, &word, 0,
                                                memory_order_relaxed,
                                                memory_order_relaxed);
}

/* NNG_PIPE_EV_REM_POST: one connection fewer (see pipe_added()). */
static void pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    (void)ev;
    coord_server *s = arg;
    atomic_fetch_sub(&s->counters->connections, 1);
}

/* Judge a pipe from its peer credentials.  Returns false (denied) when
 * they cannot be read: the pipe is gone, or it is not IPC. */
static bool verdict_compute(const coord_server *s, nng_pipe p, uint64_t *uid)
{
    uint64_t gid = UINT64_MAX;
    *uid = UINT64_MAX;
    if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, uid) != 0 ||
        nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_GID, &gid) != 0)
        return false;
    const coord_options *o = s->opts;
    bool ok = id_listed(o->allow_uids, o->allow_uid_count, *uid) ||
              id_listed(o->allow_gids, o->allow_gid_count, gid);
    if (!ok)
        coord_log_info("uid %llu (gid %llu) may not write: not in the "
                       "allow-list", (unsigned long long)*uid,
                       (unsigned long long)gid);
    return ok;
}

/* May the sender of msg write?  Any NNG thread, lock-free.  On a refusal
 * *message gets the reply text. */
static bool writer_allowed(coord_server *s, nng_msg *msg, char *message,
                           size_t size)
{
    if (!s->check_writers)
        return true;
    nng_pipe p = nng_msg_get_pipe(msg);
    int id = nng_pipe_id(p);
    uint64_t uid = UINT64_MAX;
    bool ok = false;
    if (id > 0) {
        _Atomic uint64_t *slot = verdict_slot(s, (uint32_t)id);
        uint64_t word = atomic_load_explicit(slot, memory_order_relaxed);
        if (word >> 33 == (uint32_t)id) {
            ok = (word >> 32) & 1u;
            uid = (uint32_t)word;
        } else {
            ok = verdict_compute(s, p, &uid);
            if (uid < UINT32_MAX) /* credentials read: worth keeping */
                atomic_compare_exchange_strong_explicit(
                    slot, &word,
                    (uint64_t)id << 33 | (ok ? 1ull << 32 : 0) | uid,
                    memory_order_relaxed, memory_order_relaxed);
        }
    }
    if (ok)
        return true;
    if (uid < UINT32_MAX)
        snprintf(message, size, "P-AUTH-1: uid %llu may not write",
                 (unsigned long long)uid);
    else
        snprintf(message, size, "P-AUTH-1: the sender's credentials are "
                 "unknown, so it may not write");
    return false;
}

/* Hand a write to the committer.  From here the committer owns x. */
static void handle_write(coord_ctx *x)
{
    x->state = CTX_WAIT;
    x->request.reply = ctx_reply;
    coord_committer_submit(x->server->committer, &x->request);
}

/* While stopping, a request is answered without the committer: a resend
 * of one the committer answered gets its original status (P-IDEM-2), any
 * other SUTRA_ECLOSED, which then means "not applied".  Only once the
 * committer has stopped is its table final and readable from here, so a
 * write received before that waits, parked, for coord_server_freeze(). */
static void closing_answer(coord_ctx *x)
{
    coord_server *s = x->server;
    const wire_request_header *h = &x->request.wire.header;
    coord_dedup_reply d;
    if (!x->request.wire.is_control && s->dedup &&
        coord_dedup_peek(s->dedup, h->client_id, h->request_no, &d) &&
        !d.pending) {
        atomic_fetch_add_explicit(&s->counters->duplicates, 1,
                                  memory_order_relaxed);
        coord_reply r = { .status = d.status, .failed_op = d.failed_op,
                          .first_seq = d.first_seq,
                          .generation = d.generation,
                          .op_count = d.op_count,
                          .message = d.status ? COORD_DEDUP_FAILED_MESSAGE
                                              : "" };
        ctx_reply(&x->request, &r);
        return;
    }
    ctx_send_status(x, h->request_no, SUTRA_ECLOSED, WIRE_NO_FAILED_OP,
                    "coordinator is shutting down");
}

static void handle_closing(coord_ctx *x)
{
    coord_server *s = x->server;
    if (atomic_load(&s->frozen) || x->request.wire.is_control) {
        closing_answer(x);
        return;
    }
    x->state = CTX_WAIT;
    uint32_t i = atomic_fetch_add(&s->parked_count, 1);
    s->parked[i] = x; /* < ctx_count: a parked context receives no more */
}

/* Inside the `handling` window (see the top of the file). */
static void handle_message(coord_ctx *x)
{
    coord_server *s = x->server;
    const void *body = nng_msg_body(x->msg);
    size_t len = nng_msg_len(x->msg);
    bool closing = atomic_load(&s->closing);
    if (((uintptr_t)body & 3u) != 0 && len > 0) {
        /* ops are read in place as u32 and float: wire_request_decode needs
         * 4-byte alignment (NNG 1.5 bodies sit at 4 mod 8, so this is rare) */
        if (!(x->copy = malloc(len))) {
            ctx_send_status(x, raw_request_no(body, len), SUTRA_ETOOBIG,
                            WIRE_NO_FAILED_OP, "out of memory");
            return;
        }
        body = memcpy(x->copy, body, len);
    }
    uint32_t failed_op = WIRE_NO_FAILED_OP;
    const char *why = "";
    int rc = wire_request_decode(body, len, &s->limits, &x->request.wire,
                                 &failed_op, &why);
    char denied[128];
    if (rc) {
        coord_log_debug("malformed request: %s (%d)", why, rc);
        ctx_send_status(x, raw_request_no(body, len), rc, failed_op, why);
    } else if (!x->request.wire.is_control &&
               !writer_allowed(s, x->msg, denied, sizeof(denied))) {
        /* first, also while stopping: a refused sender learns nothing of
         * the duplicate table */
        ctx_send_status(x, x->request.wire.header.request_no, SUTRA_EPERM,
                        WIRE_NO_FAILED_OP, denied);
    } else if (closing) {
        handle_closing(x);
    } else if (x->request.wire.is_control) {
        handle_control(x); /* open to anyone who can connect */
    } else {
        handle_write(x);
    }
}

static void ctx_callback(void *arg)
{
    coord_ctx *x = arg;
    int rv = nng_aio_result(x->aio);
    if (x->state == CTX_SEND) {
        atomic_fetch_sub(&x->server->sending, 1);
        if (rv != 0) /* the message is still ours after a failed send */
            nng_msg_free(nng_aio_get_msg(x->aio));
        if (rv == NNG_ETIMEDOUT) {
            /* every context whose reply timed out on that connection
             * gets here; only the first close finds it open */
            if (nng_pipe_close(x->pipe) == 0) {
                coord_log_warn("a client has not taken its replies for %d "
                               "ms: closing its connection (it resends what "
                               "is still open when it reconnects)",
                               REPLY_SEND_MS);
                atomic_fetch_add_explicit(&x->server->counters->stalled_closed,
                                          1, memory_order_relaxed);
            }
        }
        if (rv != NNG_ECLOSED)
            ctx_receive(x);
        return;
    }
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return; /* the socket is closing */
    if (rv != 0) {
        /* NNG_ETIMEDOUT here is NNG's expiry of a reply that timed out
         * (above) racing the context's next receive: nothing was lost */
        if (rv == NNG_ETIMEDOUT)
            coord_log_debug("receive failed: %s", nng_strerror(rv));
        else
            coord_log_warn("receive failed: %s", nng_strerror(rv));
        ctx_receive(x);
        return;
    }
    x->msg = nng_aio_get_msg(x->aio);
    x->pipe = nng_msg_get_pipe(x->msg);
    coord_server *s = x->server;
    atomic_fetch_add_explicit(&s->counters->requests, 1, memory_order_relaxed);
    atomic_fetch_add(&s->handling, 1);
    handle_message(x); /* may hand x over: only s from here */
    atomic_fetch_sub(&s->handling, 1);
}

/* ---- life cycle ------------------------------------------------------- */

int coord_server_open(const coord_options *opts, coord_store *store,
                      coord_counters *counters, coord_server **out, char *err,
                      size_t err_size)
{
    coord_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return NNG_ENOMEM;
    }
    s->opts = opts;
    s->store = store;
    s->counters = counters;
    s->start_ns = monotonic_ns();
    s->limits.max_message = opts->max_message;
    s->limits.max_content = opts->max_content;
    s->limits.max_batch = opts->max_batch;
    s->limits.vector_dim = coord_store_dim(store);
    s->check_writers = opts->allow_uid_count || opts->allow_gid_count;
    int rv = nng_rep0_open(&s->rep);
    s->rep_open = rv == 0;
    if (rv == 0)
        rv = nng_socket_set_size(s->rep, NNG_OPT_RECVMAXSZ,
                                 (size_t)opts->max_message + WIRE_RECV_SLACK +
                                     COORD_REQ_HEADER);
    if (rv == 0) /* before any pipe can exist */
        rv = nng_pipe_notify(s->rep, NNG_PIPE_EV_ADD_PRE, pipe_added, s);
    if (rv == 0)
        rv = nng_pipe_notify(s->rep, NNG_PIPE_EV_REM_POST, pipe_removed, s);
    if (rv == 0)
        rv = coord_listener_open(s->rep, opts->socket_url, true,
                                 &counters->connections_refused,
                                 &s->rep_listener, err, err_size);
    else
        snprintf(err, err_size, "request socket: %s", nng_strerror(rv));
    if (rv == 0) {
        rv = nng_pub0_open(&s->pub);
        s->pub_open = rv == 0;
        if (rv == 0)
            rv = coord_listener_open(s->pub, opts->events_url, false, NULL,
                                     &s->pub_listener, err, err_size);
        else
            snprintf(err, err_size, "event socket: %s", nng_strerror(rv));
    }
    if (rv) {
        coord_server_close(s);
        return rv;
    }
    *out = s;
    return 0;
}

int coord_server_start(coord_server *s, coord_committer *committer)
{
    s->committer = committer;
    s->ctxs = calloc(s->opts->contexts, sizeof(*s->ctxs));
    s->parked = calloc(s->opts->contexts, sizeof(*s->parked));
    if (!s->ctxs || !s->parked)
        return NNG_ENOMEM;
    for (uint32_t i = 0; i < s->opts->contexts; i++) {
        coord_ctx *x = &s->ctxs[i];
        x->server = s;
        int rv = nng_aio_alloc(&x->aio, ctx_callback, x);
        if (rv == 0 && (rv = nng_ctx_open(&x->ctx, s->rep)) != 0) {
            nng_aio_free(x->aio);
            x->aio = NULL;
        }
        if (rv)
            return rv;
        s->ctx_count = i + 1;
    }
    for (uint32_t i = 0; i < s->ctx_count; i++)
        ctx_receive(&s->ctxs[i]);
    return 0;
}

void coord_server_publish(void *server, const coord_commit_info *info)
{
    coord_server *s = server;
    wire_event ev = { .magic = WIRE_EVENT_MAGIC, .version = WIRE_VERSION,
                      .generation = info->generation,
                      .last_seq = info->last_seq,
                      .committed_end = info->committed_end };
    int rv = nng_send(s->pub, &ev, sizeof(ev), NNG_FLAG_NONBLOCK);
    atomic_fetch_add_explicit(rv ? &s->counters->events_failed
                                 : &s->counters->events_sent,
                              1, memory_order_relaxed);
}

void coord_server_drain(coord_server *s)
{
    atomic_store(&s->closing, 1);
    while (atomic_load(&s->handling) != 0)
        sched_yield(); /* a callback is a few instructions from done */
}

void coord_server_freeze(coord_server *s, const coord_dedup *dedup)
{
    s->dedup = dedup;
    atomic_store(&s->frozen, 1); /* seq_cst, like closing: see the top */
    while (atomic_load(&s->handling) != 0)
        sched_yield();
    /* every callback that parked has returned; later ones answer alone */
    uint32_t n = atomic_load(&s->parked_count);
    for (uint32_t i = 0; i < n; i++)
        closing_answer(s->parked[i]);
}

void coord_server_close(coord_server *s)
{
    if (!s)
        return;
    uint64_t deadline = monotonic_ns() + CLOSE_SEND_WAIT_MS * 1000000ull;
    while (atomic_load(&s->sending) > 0 && monotonic_ns() < deadline)
        sleep_ms(1);
    if (s->ctx_count)
        sleep_ms(CLOSE_GRACE_MS);
    atomic_store(&s->stopped, 1);
    coord_listener_stop(s->rep_listener); /* no watchdog restarts past here */
    coord_listener_stop(s->pub_listener);
    if (s->rep_open)
        nng_close(s->rep);
    if (s->pub_open)
        nng_close(s->pub);
    /* only now: until its socket is closed, NNG may still call the
     * request listener's pipe notification with it */
    coord_listener_close(s->rep_listener);
    coord_listener_close(s->pub_listener);
    for (uint32_t i = 0; i < s->ctx_count; i++) {
        coord_ctx *x = &s->ctxs[i];
        nng_aio_free(x->aio); /* waits for a running callback */
        ctx_release_request(x);
    }
    free(s->ctxs);
    free(s->parked);
    free(s);
}
