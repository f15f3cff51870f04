/*
 * reader/client.c — the client side of the coordinator protocol over NNG.
 *
 * One client is one NNG REQ socket dialled without blocking (NNG reconnects
 * by itself, so a client outlives coordinator restarts).  Every request
 * travels on its own REQ context: send, then receive, with the request's
 * deadline as the aio timeout.  The asynchronous form chains the two in an
 * aio callback.  NNG runs a callback on one of its task threads, which
 * costs a wake-up per step, so synchronous calls use a second aio without
 * one: NNG completes it on the thread that finishes the step, and the
 * caller waits on it directly (nng_aio_wait) and posts the receive itself.
 * Contexts are recycled through a small pool, so a thread's steady state
 * allocates only the NNG messages.  Requests carry the client id and a
 * per-client request number (P-IDEM-1); NNG's resends reuse them, so the
 * coordinator applies each request once.
 *
 * Fork safety: NNG panics when used in a child forked after its parent used
 * it.  A pthread_atfork child handler marks such a child, and every entry
 * point checks the mark (and the pid) before touching NNG, failing with
 * SUTRA_EFORKED instead; closing a client in such a child frees only our
 * own memory.  Readers never touch NNG, so this does not affect them.
 */
#include <errno.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "layout/wire.h"
#include "reader/client_internal.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 30000
#define CLIENT_DEFAULT_RESEND_MS 5000
#define CLIENT_POOL_MAX 64          /* idle contexts kept per client      */
#define CLIENT_ERROR_MAX 512
#define CLIENT_ERROR_SLOTS 8  /* clients per thread whose last error is kept */

static const char client_forked_message[] =
    "client created before fork(); create clients after forking";

/* ---- fork detection --------------------------------------------------- */

static bool client_nng_used;    /* this process has called into NNG       */
static bool client_in_fork;     /* forked from a process that had         */
static pthread_once_t client_atfork_once = PTHREAD_ONCE_INIT;

/* Runs in the child only, single-threaded, before fork() returns there. */
static void client_atfork_child(void)
{
    if (__atomic_load_n(&client_nng_used, __ATOMIC_RELAXED))
        __atomic_store_n(&client_in_fork, true, __ATOMIC_RELAXED);
}

static void client_atfork_register(void)
{
    pthread_atfork(NULL, NULL, client_atfork_child);
}

static bool client_process_forked(void)
{
    return __atomic_load_n(&client_in_fork, __ATOMIC_RELAXED);
}

/* ---- per-thread last error ------------------------------------------- */

/* The last message of each of the CLIENT_ERROR_SLOTS clients this thread
 * used most recently: a thread that talks to several coordinators keeps
 * each one's message apart. */
typedef struct client_error_slot {
    const sutra_client *owner;
    uint64_t used;             /* the thread's call count at its last use */
    char text[CLIENT_ERROR_MAX];
} client_error_slot;

static _Thread_local client_error_slot client_errors[CLIENT_ERROR_SLOTS];
static _Thread_local uint64_t client_error_clock;

static client_error_slot *client_error_find(const sutra_client *c)
{
    for (int i = 0; i < CLIENT_ERROR_SLOTS; i++)
        if (client_errors[i].owner == c)
            return &client_errors[i];
    return NULL;
}

static void client_error_clear(const sutra_client *c)
{
    client_error_slot *e = client_error_find(c);
    if (e) {
        e->text[0] = '\0';
        e->used = ++client_error_clock;
    }
}

static void client_error_set(const sutra_client *c, const void *text, size_t len)
{
    client_error_slot *e = client_error_find(c);
    if (!e) { /* the slot used least recently */
        e = &client_errors[0];
        for (int i = 1; i < CLIENT_ERROR_SLOTS; i++)
            if (client_errors[i].used < e->used)
                e = &client_errors[i];
    }
    if (len >= sizeof(e->text))
        len = sizeof(e->text) - 1;
    memcpy(e->text, text, len);
    e->text[len] = '\0';
    e->owner = c;
    e->used = ++client_error_clock;
}

/* ---- the handle ------------------------------------------------------- */

typedef struct client_slot client_slot;

struct sutra_client {
    nng_socket socket;
    pid_t pid;                  /* the process that created it           */
    uint64_t client_id;         /* P-IDEM-1: random, nonzero             */
    uint64_t next_request;      /* guarded by window_lock; first is 1    */
    int timeout_ms;
    int resend_ms;
    uint64_t max_message;       /* atomic; 0 until a stats reply said    */
    pthread_mutex_t pool_lock;  /* guards pool, pool_len, closed         */
    client_slot *pool;
    size_t pool_len;
    bool closed;
    unsigned refs;              /* atomic: the handle + live slots       */
    /* P-IDEM-2: window[n % WIRE_CLIENT_OPEN_MAX] is set while request n
     * may still be resent; request n + WIRE_CLIENT_OPEN_MAX waits for it. */
    pthread_mutex_t window_lock;
    pthread_cond_t window_cv;
    unsigned window_waiters;    /* guarded by window_lock                */
    bool window[WIRE_CLIENT_OPEN_MAX];
};

/* One request in flight: a REQ context, its aio, and the outcome. */
enum client_state { SLOT_IDLE, SLOT_SENDING, SLOT_RECEIVING, SLOT_DONE };

struct client_slot {
    sutra_client *client;
    client_slot *next;          /* pool link                              */
    nng_ctx ctx;
    nng_aio *aio;               /* callback-driven: the asynchronous form */
    nng_aio *sync_aio;          /* no callback: synchronous calls         */
    bool sync;                  /* this request runs on sync_aio          */
    pthread_mutex_t lock;       /* guards everything below                */
    pthread_cond_t done_cv;
    enum client_state state;
    bool stopping;              /* being freed: do not chain the receive  */
    int nng_result;             /* NNG error of the failed step, or 0     */
    nng_msg *reply;             /* owned by the slot once received        */
    uint64_t request_no;
    uint64_t window_no;         /* request holding a window place, or 0 */
    uint64_t deadline_ns;       /* CLOCK_MONOTONIC                        */
};

struct sutra_pending {
    client_slot *slot;
};

static uint64_t client_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int client_map_nng(int err)
{
    switch (err) {
    case 0:
        return 0;
    case NNG_ETIMEDOUT:
        return SUTRA_ETIMEDOUT;
    case NNG_ENOMEM:
        return ENOMEM;
    case NNG_EMSGSIZE:
        return SUTRA_ETOOBIG;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
        return SUTRA_EINVAL;
    default:
        return SUTRA_ECLOSED; /* closed, refused, reset, cancelled… */
    }
}

/* Every entry point: a client must not reach NNG after fork(). */
static int client_check(const sutra_client *c)
{
    if (!c)
        return SUTRA_EINVAL;
    if (client_process_forked() || c->pid != getpid()) {
        client_error_set(c, client_forked_message, sizeof(client_forked_message) - 1);
        return SUTRA_EFORKED;
    }
    client_error_clear(c);
    return 0;
}

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines
 * (client_now_ns()). */
static void client_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

static void client_release(sutra_client *c)
{
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    pthread_mutex_destroy(&c->pool_lock);
    pthread_cond_destroy(&c->window_cv);
    pthread_mutex_destroy(&c->window_lock);
    free(c);
}

/* ---- the idempotency window (P-IDEM-2) --------------------------------- */

/* Number the next request and take its place in the window: request n
 * is numbered only once request n - WIRE_CLIENT_OPEN_MAX (the previous
 * holder of its place) has ended, waiting up to `deadline_ns`.  Then every
 * request of this client that a resend could still bring to the
 * coordinator is well within the newest WIRE_IDEM_WINDOW, which the
 * coordinator remembers (wire.h); without the wait, a client with more in
 * flight could, after a reconnect, resend a request the coordinator had
 * applied and forgotten, and have it applied twice.  Numbers are handed
 * out here, under the lock, in the order places free up, so no request
 * can take a place before the older one that waits for it.  Returns 0 and
 * *no, or SUTRA_ETIMEDOUT (nothing numbered or sent). */
static int client_window_enter(sutra_client *c, uint64_t deadline_ns,
                               uint64_t *no)
{
    int rc = 0;
    pthread_mutex_lock(&c->window_lock);
    while (c->window[c->next_request % WIRE_CLIENT_OPEN_MAX] && rc == 0) {
        struct timespec ts = { (time_t)(deadline_ns / 1000000000u),
                               (long)(deadline_ns % 1000000000u) };
        c->window_waiters++;
        int w = pthread_cond_timedwait(&c->window_cv, &c->window_lock, &ts);
        c->window_waiters--;
        if (w == ETIMEDOUT &&
            c->window[c->next_request % WIRE_CLIENT_OPEN_MAX])
            rc = SUTRA_ETIMEDOUT;
    }
    if (rc == 0) {
        *no = c->next_request++;
        c->window[*no % WIRE_CLIENT_OPEN_MAX] = true;
    }
    pthread_mutex_unlock(&c->window_lock);
    return rc;
}

/* The request a slot holds can no longer be resent (answered, or its
 * context closed or reused): free its place. */
static void client_window_leave(client_slot *s)
{
    if (s->window_no == 0)
        return;
    sutra_client *c = s->client;
    pthread_mutex_lock(&c->window_lock);
    c->window[s->window_no % WIRE_CLIENT_OPEN_MAX] = false;
    if (c->window_waiters)
        pthread_cond_broadcast(&c->window_cv);
    pthread_mutex_unlock(&c->window_lock);
    s->window_no = 0;
}

/* ---- slots: one request's context and aio ------------------------------ */

static void client_slot_done(client_slot *s, int nng_result, nng_msg *reply)
{
    /* Answered: NNG resends it no more.  Without a reply the context may
     * still hold it (client_slot_put), so it keeps its place until then. */
    if (reply)
        client_window_leave(s);
    pthread_mutex_lock(&s->lock);
    s->nng_result = nng_result;
    s->reply = reply;
    s->state = SLOT_DONE;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->lock);
}

/* A send that failed leaves its message with the aio, still ours: free it
 * and end the request with the send's error. */
static void client_slot_send_failed(client_slot *s, nng_aio *aio, int err)
{
    nng_msg *unsent = nng_aio_get_msg(aio);
    if (unsent)
        nng_msg_free(unsent);
    nng_aio_set_msg(aio, NULL);
    client_slot_done(s, err, NULL);
}

static nng_duration client_remaining_ms(const client_slot *s)
{
    uint64_t now = client_now_ns();
    if (now >= s->deadline_ns)
        return 0;
    uint64_t ms = (s->deadline_ns - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (nng_duration)ms;
}

/* aio callback: runs on an NNG thread with no NNG lock held.  After the
 * send completes it chains the receive on the same aio; after the receive
 * it records the reply.  Never blocks except on the slot's own lock. */
static void client_slot_callback(void *arg)
{
    client_slot *s = arg;
    int err = nng_aio_result(s->aio);
    pthread_mutex_lock(&s->lock);
    enum client_state state = s->state;
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);

    if (state == SLOT_SENDING) {
        if (err != 0) {
            client_slot_send_failed(s, s->aio, err);
            return;
        }
        nng_duration left = client_remaining_ms(s);
        if (stopping || left == 0) {
            client_slot_done(s, stopping ? NNG_ECANCELED : NNG_ETIMEDOUT, NULL);
            return;
        }
        pthread_mutex_lock(&s->lock);
        s->state = SLOT_RECEIVING;
        pthread_mutex_unlock(&s->lock);
        nng_aio_set_timeout(s->aio, left);
        nng_ctx_recv(s->ctx, s->aio);
        return;
    }
    if (state == SLOT_RECEIVING)
        client_slot_done(s, err, err == 0 ? nng_aio_get_msg(s->aio) : NULL);
}

/* Make a fresh slot (context + aio) on c's socket.  Returns 0 (and *out)
 * or a nonzero NNG error: the caller maps it, so that the nonzero result is
 * visible where it is tested. */
static int client_slot_create(sutra_client *c, client_slot **out)
{
    client_slot *s = calloc(1, sizeof(*s));
    if (!s)
        return NNG_ENOMEM;
    int rv = nng_ctx_open(&s->ctx, c->socket);
    if (rv == 0) {
        rv = nng_aio_alloc(&s->aio, client_slot_callback, s);
        if (rv == 0 && (rv = nng_aio_alloc(&s->sync_aio, NULL, NULL)) != 0)
            nng_aio_free(s->aio);
        if (rv != 0)
            nng_ctx_close(s->ctx);
    }
    if (rv != 0) {
        free(s);
        return rv;
    }
    nng_ctx_set_ms(s->ctx, NNG_OPT_REQ_RESENDTIME, c->resend_ms);
    pthread_mutex_init(&s->lock, NULL);
    client_cond_init(&s->done_cv);
    s->client = c;
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    *out = s;
    return 0;
}

/* NNG objects that a forked child inherited and cannot free (NNG must not
 * be called there).  Kept reachable on purpose: they are not leaks the
 * program could fix, and leak checkers should not report them. */
typedef struct client_abandoned {
    struct client_abandoned *next;
    nng_aio *aio, *sync_aio;
    nng_msg *reply;
} client_abandoned;

static client_abandoned *client_abandoned_list;

static void client_abandon(const client_slot *s)
{
    client_abandoned *a = malloc(sizeof(*a));
    if (!a)
        return;
    a->aio = s->aio;
    a->sync_aio = s->sync_aio;
    a->reply = s->reply;
    a->next = __atomic_load_n(&client_abandoned_list, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&client_abandoned_list, &a->next, a,
                                        true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED)) {
    }
}

/* Free a slot's NNG objects and memory.  In a forked child (`touch_nng`
 * false) the NNG objects are abandoned instead: NNG cannot run there. */
static void client_slot_destroy(client_slot *s, bool touch_nng)
{
    if (touch_nng) {
        nng_aio_free(s->aio); /* stops and waits for the callback */
        nng_aio_free(s->sync_aio);
        nng_ctx_close(s->ctx); /* its request, if any, is resent no more */
        if (s->reply)
            nng_msg_free(s->reply);
    } else {
        client_abandon(s);
        /* NNG is gone in a forked child, and so may be a thread of the
         * parent that held window_lock at the fork: leave it alone (every
         * call here fails with SUTRA_EFORKED anyway) */
        s->window_no = 0;
    }
    client_window_leave(s);
    /* In a forked child the condition variable may still count a parent
     * thread that was waiting on it (sutra_pending_wait) at the fork;
     * glibc's pthread_cond_destroy waits for such waiters to leave, which
     * never happens there.  The memory is freed all the same. */
    if (touch_nng) {
        pthread_cond_destroy(&s->done_cv);
        pthread_mutex_destroy(&s->lock);
    }
    sutra_client *c = s->client;
    free(s);
    client_release(c);
}

static int client_slot_get(sutra_client *c, client_slot **out)
{
    pthread_mutex_lock(&c->pool_lock);
    client_slot *s = c->pool;
    if (s) {
        c->pool = s->next;
        c->pool_len--;
    }
    bool closed = c->closed;
    pthread_mutex_unlock(&c->pool_lock);
    if (closed)
        return SUTRA_ECLOSED;
    if (s) {
        *out = s;
        return 0;
    }
    return client_map_nng(client_slot_create(c, out));
}

/* Return a finished slot to the pool (or free it when the pool is full
 * or the client closed).  The slot's request must be complete.  A request
 * that ended without a reply (deadline, closed socket) may still be held
 * by its context: when the send completed only after the deadline, no
 * receive was posted, and NNG would go on resending the request until the
 * context is reused.  Closing the context drops it, so such a slot is
 * freed, not pooled. */
static void client_slot_put(client_slot *s)
{
    sutra_client *c = s->client;
    /* The callback may still be returning after it signalled completion;
     * the aio must be quiet before the next request reuses it. */
    nng_aio_wait(s->aio);
    if (s->reply)
        nng_msg_free(s->reply);
    s->reply = NULL;
    s->state = SLOT_IDLE;
    pthread_mutex_lock(&c->pool_lock);
    bool keep = !c->closed && c->pool_len < CLIENT_POOL_MAX &&
                s->nng_result == 0;
    if (keep) {
        s->next = c->pool;
        c->pool = s;
        c->pool_len++;
    }
    pthread_mutex_unlock(&c->pool_lock);
    if (!keep)
        client_slot_destroy(s, true);
}

/* ---- requests --------------------------------------------------------- */

/* The request header (P-REQ-1) at the front of msg. */
static void client_header(sutra_client *c, nng_msg *msg, uint16_t flags,
                          uint64_t request_no, uint32_t op_count)
{
    wire_request_header h;
    wire_request_header_init(&h, flags, c->client_id, request_no, op_count);
    memcpy(nng_msg_body(msg), &h, sizeof(h));
}

/* Build the request message: room for the header, then the encoded ops;
 * the header is written once the request has its number. */
static int client_message(const uint8_t *ops, size_t ops_len, nng_msg **out)
{
    nng_msg *msg = NULL;
    int rv = nng_msg_alloc(&msg, sizeof(wire_request_header) + ops_len);
    if (rv != 0)
        return client_map_nng(rv);
    if (ops_len)
        memcpy((uint8_t *)nng_msg_body(msg) + sizeof(wire_request_header), ops,
               ops_len);
    *out = msg;
    return 0;
}

/* Send a request on a pooled slot without waiting: on the slot's
 * callback aio, or on its sync_aio when `sync` (then only
 * client_slot_wait(s, -1) may follow).  On success the slot owns the
 * message and the request is in flight. */
static int client_send(sutra_client *c, uint16_t flags, const uint8_t *ops,
                       size_t ops_len, uint32_t op_count, bool sync,
                       client_slot **out)
{
    client_slot *s = NULL;
    int rc = client_slot_get(c, &s);
    if (rc != 0)
        return rc;
    nng_msg *msg = NULL;
    rc = client_message(ops, ops_len, &msg);
    if (rc != 0) {
        client_slot_put(s);
        return rc;
    }
    s->deadline_ns = client_now_ns() + (uint64_t)c->timeout_ms * 1000000ull;
    nng_duration left = 0;
    rc = client_window_enter(c, s->deadline_ns, &s->request_no);
    if (rc == 0) {
        client_header(c, msg, flags, s->request_no, op_count);
        s->window_no = s->request_no;
        left = client_remaining_ms(s); /* the wait counts */
        if (left == 0) {
            client_window_leave(s);
            rc = SUTRA_ETIMEDOUT;
        }
    }
    if (rc != 0) { /* nothing sent */
        nng_msg_free(msg);
        client_slot_put(s);
        return rc;
    }
    s->nng_result = 0;
    s->stopping = false;
    s->state = SLOT_SENDING;
    s->sync = sync;
    nng_aio *aio = sync ? s->sync_aio : s->aio;
    nng_aio_set_msg(aio, msg);
    nng_aio_set_timeout(aio, left);
    nng_ctx_send(s->ctx, aio);
    *out = s;
    return 0;
}

/* The synchronous path: the same steps as client_slot_callback(), on the
 * caller's thread.  The receive runs on the same aio, so it waits for the
 * send; posting it on another aio at once would not help either: NNG 1.5
 * asserts if a send is cancelled (its timeout) while the context has a
 * receive pending. */
static void client_slot_run_sync(client_slot *s)
{
    nng_aio_wait(s->sync_aio);
    int err = nng_aio_result(s->sync_aio);
    if (err != 0) {
        client_slot_send_failed(s, s->sync_aio, err);
        return;
    }
    nng_duration left = client_remaining_ms(s);
    if (left == 0) {
        client_slot_done(s, NNG_ETIMEDOUT, NULL);
        return;
    }
    s->state = SLOT_RECEIVING;
    nng_aio_set_timeout(s->sync_aio, left);
    nng_ctx_recv(s->ctx, s->sync_aio);
    nng_aio_wait(s->sync_aio);
    err = nng_aio_result(s->sync_aio);
    nng_msg *reply = err == 0 ? nng_aio_get_msg(s->sync_aio) : NULL;
    nng_aio_set_msg(s->sync_aio, NULL);
    client_slot_done(s, err, reply);
}

/* Wait for a slot's request.  timeout_ms < 0: until it completes (its aio
 * has the request deadline, so that is bounded); a synchronous request is
 * only waited for that way.  Returns 0 when done, SUTRA_ETIMEDOUT when
 * timeout_ms passed first. */
static int client_slot_wait(client_slot *s, int timeout_ms)
{
    if (s->sync) {
        client_slot_run_sync(s);
        return 0;
    }
    struct timespec until;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    while (s->state != SLOT_DONE) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&s->done_cv, &s->lock);
        } else if (pthread_cond_timedwait(&s->done_cv, &s->lock, &until) ==
                   ETIMEDOUT) {
            rc = s->state == SLOT_DONE ? 0 : SUTRA_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Decode a finished slot's reply (P-REP-*).  body/body_len borrow the
 * reply, which stays owned by the slot. */
static int client_slot_result(client_slot *s, wire_reply_header *hdr,
                              const void **body)
{
    if (s->nng_result != 0)
        return client_map_nng(s->nng_result);
    int rc = wire_reply_decode(nng_msg_body(s->reply), nng_msg_len(s->reply),
                               hdr, body);
    if (rc != 0)
        return rc;
    if (hdr->request_no != s->request_no)
        return SUTRA_EPROTO;
    if (hdr->status != 0) {
        client_error_set(s->client, *body ? *body : "", hdr->body_len);
        return hdr->status;
    }
    return 0;
}

static int client_write_result(client_slot *s, sutra_write_result *result)
{
    wire_reply_header hdr;
    const void *body;
    int rc = client_slot_result(s, &hdr, &body);
    if (rc == SUTRA_ETIMEDOUT) /* see client_check_size() */
        __atomic_store_n(&s->client->max_message, 0, __ATOMIC_RELAXED);
    if (rc == 0 && result) {
        result->first_seq = hdr.first_seq;
        result->generation = hdr.generation;
        result->op_count = hdr.op_count;
    }
    return rc;
}

/* One synchronous control request (stats, ping): decoded reply into
 * *hdr, and up to body_cap body bytes copied into body_out. */
static int client_control(sutra_client *c, uint16_t opcode, void *body_out,
                          size_t body_cap)
{
    uint8_t op[sizeof(wire_op_header)];
    size_t len = wire_encode_simple_op(op, opcode);
    client_slot *s = NULL;
    int rc = client_send(c, WIRE_SYNC_DEFAULT, op, len, 1, true, &s);
    if (rc != 0)
        return rc;
    client_slot_wait(s, -1);
    wire_reply_header hdr = { 0 }; /* read only when rc == 0 */
    const void *body = NULL;
    rc = client_slot_result(s, &hdr, &body);
    if (rc == 0 && body_out) {
        memset(body_out, 0, body_cap);
        size_t n = hdr.body_len < body_cap ? hdr.body_len : body_cap;
        if (n)
            memcpy(body_out, body, n);
    }
    client_slot_put(s);
    return rc;
}

/* P-REQ-5: a request over WIRE_RECV_SLACK bytes may be one the
 * coordinator's transport drops without a reply (past max_message + the
 * slack), which would look like a timeout after every resend; so learn
 * the coordinator's max_message once and refuse such a request locally
 * with SUTRA_ETOOBIG.  The value is forgotten on a timeout, in case the
 * coordinator came back with a smaller limit. */
static int client_check_size(sutra_client *c, size_t message_len)
{
    if (message_len <= WIRE_RECV_SLACK)
        return 0;
    uint64_t max = __atomic_load_n(&c->max_message, __ATOMIC_RELAXED);
    if (max == 0) {
        wire_stats st;
        int rc = client_control(c, WIRE_OP_STATS, &st, sizeof(st));
        if (rc != 0)
            return rc;
        max = st.max_message ? st.max_message : UINT64_MAX;
        __atomic_store_n(&c->max_message, max, __ATOMIC_RELAXED);
    }
    return message_len > max ? SUTRA_ETOOBIG : 0;
}

/* Checks shared by commit and submit, then the send. */
static int client_send_batch(sutra_client *c, const sutra_batch *b,
                             bool sync, client_slot **out)
{
    int rc = client_check(c);
    if (rc != 0)
        return rc;
    if (!b || b->count == 0)
        return SUTRA_EINVAL;
    rc = client_check_size(c, sizeof(wire_request_header) + b->len);
    if (rc != 0)
        return rc;
    return client_send(c, b->wire_flags, b->ops, b->len, b->count, sync, out);
}

/* ---- connect / close -------------------------------------------------- */

/* The NNG URL for `target`: URLs pass through, directories become
 * ipc://<absolute dir>/coordinator.sock. */
static int client_url(const char *target, char *url, size_t cap)
{
    if (!target || !*target)
        return SUTRA_EINVAL;
    int n;
    if (strstr(target, "://")) {
        n = snprintf(url, cap, "%s", target);
    } else if (target[0] == '/') {
        n = snprintf(url, cap, "ipc://%s/coordinator.sock", target);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return errno;
        n = snprintf(url, cap, "ipc://%s/%s/coordinator.sock", cwd, target);
    }
    return n < 0 || (size_t)n >= cap ? SUTRA_EINVAL : 0;
}

static int client_options(const sutra_client_options *opts, int *timeout_ms,
                          int *resend_ms)
{
    *timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms
                                           : CLIENT_DEFAULT_TIMEOUT_MS;
    *resend_ms = opts && opts->resend_ms ? opts->resend_ms
                                         : CLIENT_DEFAULT_RESEND_MS;
    return *timeout_ms < 0 || *resend_ms < 0 ? SUTRA_EINVAL : 0;
}

static int client_open_socket(sutra_client *c, const char *url)
{
    int rv = nng_req0_open(&c->socket);
    if (rv != 0)
        return client_map_nng(rv);
    rv = nng_socket_set_ms(c->socket, NNG_OPT_REQ_RESENDTIME, c->resend_ms);
    if (rv == 0)
        rv = nng_dial(c->socket, url, NULL, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        nng_close(c->socket);
        return client_map_nng(rv);
    }
    return 0;
}

int sutra_client_connect(const char *target, const sutra_client_options *opts,
                         sutra_client **out)
{
    if (!out)
        return SUTRA_EINVAL;
    if (client_process_forked())
        return SUTRA_EFORKED;
    char url[PATH_MAX + 64];
    int timeout_ms, resend_ms;
    int rc = client_url(target, url, sizeof(url));
    if (rc == 0)
        rc = client_options(opts, &timeout_ms, &resend_ms);
    if (rc != 0)
        return rc;
    sutra_client *c = calloc(1, sizeof(*c));
    if (!c)
        return ENOMEM;
    do {
        if (getrandom(&c->client_id, sizeof(c->client_id), 0) !=
            (ssize_t)sizeof(c->client_id)) {
            free(c);
            return errno ? errno : EIO;
        }
    } while (c->client_id == 0); /* P-IDEM-1: nonzero */
    c->pid = getpid();
    c->next_request = 1;
    c->timeout_ms = timeout_ms;
    c->resend_ms = resend_ms;
    c->refs = 1;
    pthread_mutex_init(&c->pool_lock, NULL);
    pthread_mutex_init(&c->window_lock, NULL);
    client_cond_init(&c->window_cv);

    /* Register the child handler before the first NNG call, so no fork
     * can slip between them unmarked. */
    pthread_once(&client_atfork_once, client_atfork_register);
    __atomic_store_n(&client_nng_used, true, __ATOMIC_RELAXED);
    rc = client_open_socket(c, url);
    if (rc != 0) {
        client_release(c);
        return rc;
    }
    *out = c;
    return 0;
}

void sutra_client_close(sutra_client *client)
{
    if (!client)
        return;
    client_error_slot *e = client_error_find(client);
    if (e) /* this thread's; a later client may get the same address */
        *e = (client_error_slot){ .owner = NULL };
    bool touch_nng = !client_process_forked() && client->pid == getpid();
    /* In a forked child no other thread of the parent exists, and one may
     * have held pool_lock at the fork: the child takes the pool unlocked
     * (as client_slot_destroy leaves window_lock alone there). */
    if (touch_nng)
        pthread_mutex_lock(&client->pool_lock);
    client->closed = true;
    client_slot *idle = client->pool;
    client->pool = NULL;
    client->pool_len = 0;
    if (touch_nng)
        pthread_mutex_unlock(&client->pool_lock);
    /* Closing the socket completes every request still in flight with
     * NNG_ECLOSED; pending handles stay valid until freed. */
    if (touch_nng)
        nng_close(client->socket);
    while (idle) {
        client_slot *next = idle->next;
        client_slot_destroy(idle, touch_nng);
        idle = next;
    }
    client_release(client);
}

/* ---- public requests -------------------------------------------------- */

int sutra_batch_commit(sutra_client *client, const sutra_batch *batch,
                       sutra_write_result *result)
{
    client_slot *s = NULL;
    int rc = client_send_batch(client, batch, true, &s);
    if (rc != 0)
        return rc;
    client_slot_wait(s, -1);
    rc = client_write_result(s, result);
    client_slot_put(s);
    return rc;
}

/* Single-op requests built on the stack-free path: a one-op batch. */
static int client_one_op(sutra_client *client, sutra_batch *b,
                         sutra_write_result *result)
{
    int rc = sutra_batch_commit(client, b, result);
    free(b->ops);
    return rc;
}

int sutra_learn_concept(sutra_client *client, const sutra_concept_input *in,
                        sutra_write_result *result)
{
    int rc = client_check(client);
    if (rc != 0)
        return rc;
    sutra_batch b = {0};
    rc = sutra_batch_learn_concept(&b, in);
    if (rc != 0) {
        free(b.ops);
        return rc;
    }
    return client_one_op(client, &b, result);
}

int sutra_forget_concept(sutra_client *client, const sutra_id *id,
                         sutra_write_result *result)
{
    int rc = client_check(client);
    if (rc != 0)
        return rc;
    sutra_batch b = {0};
    rc = sutra_batch_forget_concept(&b, id);
    if (rc != 0) {
        free(b.ops);
        return rc;
    }
    return client_one_op(client, &b, result);
}

int sutra_learn_association(sutra_client *client, const sutra_id *source,
                            const sutra_id *target, uint32_t type,
                            float confidence, sutra_write_result *result)
{
    int rc = client_check(client);
    if (rc != 0)
        return rc;
    sutra_batch b = {0};
    rc = sutra_batch_learn_association(&b, source, target, type, confidence);
    if (rc != 0) {
        free(b.ops);
        return rc;
    }
    return client_one_op(client, &b, result);
}

int sutra_forget_association(sutra_client *client, const sutra_id *source,
                             const sutra_id *target, uint32_t type,
                             sutra_write_result *result)
{
    int rc = client_check(client);
    if (rc != 0)
        return rc;
    sutra_batch b = {0};
    rc = sutra_batch_forget_association(&b, source, target, type);
    if (rc != 0) {
        free(b.ops);
        return rc;
    }
    return client_one_op(client, &b, result);
}

int sutra_flush(sutra_client *client, sutra_write_result *result)
{
    int rc = client_check(client);
    if (rc != 0)
        return rc;
    sutra_batch b = {0};
    rc = sutra_batch_flush(&b);
    if (rc != 0) {
        free(b.ops);
        return rc;
    }
    return client_one_op(client, &b, result);
}

int sutra_ping(sutra_client *client)
{
    int rc = client_check(client);
    if (rc != 0)
        return rc;
    return client_control(client, WIRE_OP_PING, NULL, 0);
}

int sutra_client_stats(sutra_client *client, sutra_server_stats *out)
{
    int rc = client_check(client);
    if (rc != 0)
        return rc;
    if (!out)
        return SUTRA_EINVAL;
    wire_stats st;
    rc = client_control(client, WIRE_OP_STATS, &st, sizeof(st));
    if (rc != 0)
        return rc;
    if (st.max_message)
        __atomic_store_n(&client->max_message, st.max_message, __ATOMIC_RELAXED);
    sutra_server_stats s = {
        .generation = st.generation, .last_seq = st.last_seq,
        .committed_end = st.committed_end, .file_size = st.file_size,
        .node_count = st.node_count, .concept_count = st.concept_count,
        .version_count = st.version_count,
        .tombstone_count = st.tombstone_count, .requests = st.requests,
        .requests_failed = st.requests_failed, .ops_applied = st.ops_applied,
        .commits = st.commits, .syncs = st.syncs, .duplicates = st.duplicates,
        .queue_depth = st.queue_depth, .uptime_ns = st.uptime_ns,
        .max_message = st.max_message, .max_content = st.max_content,
        .max_batch = st.max_batch, .vector_dim = st.vector_dim,
        .sync_policy = st.sync_policy, .sync_interval_ms = st.sync_interval_ms,
        .assoc_count = st.assoc_count,
    };
    *out = s;
    return 0;
}

const char *sutra_client_last_error(const sutra_client *client)
{
    const client_error_slot *e = client_error_find(client);
    return e && client ? e->text : "";
}

/* ---- asynchronous form ------------------------------------------------ */

int sutra_batch_submit(sutra_client *client, const sutra_batch *batch,
                       sutra_pending **out)
{
    if (!out)
        return SUTRA_EINVAL;
    sutra_pending *p = malloc(sizeof(*p));
    if (!p)
        return ENOMEM;
    int rc = client_send_batch(client, batch, false, &p->slot);
    if (rc != 0) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int sutra_pending_wait(sutra_pending *pending, int timeout_ms,
                       sutra_write_result *result)
{
    if (!pending)
        return SUTRA_EINVAL;
    client_slot *s = pending->slot;
    int rc = client_check(s->client);
    if (rc != 0)
        return rc;
    rc = client_slot_wait(s, timeout_ms);
    if (rc != 0)
        return rc;
    return client_write_result(s, result);
}

void sutra_pending_free(sutra_pending *pending)
{
    if (!pending)
        return;
    client_slot *s = pending->slot;
    free(pending);
    sutra_client *c = s->client;
    if (client_process_forked() || c->pid != getpid()) {
        client_slot_destroy(s, false);
        return;
    }
    pthread_mutex_lock(&s->lock);
    bool done = s->state == SLOT_DONE;
    s->stopping = true;
    pthread_mutex_unlock(&s->lock);
    if (done) {
        client_slot_put(s);
        return;
    }
    /* Still in flight: nng_aio_stop cancels it and waits for the callback,
     * after which the aio cannot be reused, so the slot is not pooled. */
    nng_aio_stop(s->aio);
    client_slot_destroy(s, true);
}
