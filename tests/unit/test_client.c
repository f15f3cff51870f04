/*
 * tests/unit/test_client.c — the client side of the protocol (reader/client.c,
 * reader/batch.c) without a coordinator.
 *
 * Local validation must refuse bad writes before anything is sent; a client
 * must connect while nothing listens and fail requests within their deadline;
 * a client used in a forked child must fail with SUTRA_EFORKED instead of
 * letting NNG abort the process.  A small in-process REP responder that
 * speaks protocol 1 (layout/wire.h) stands in for the coordinator to check
 * reply decoding, error messages, the max_message pre-check and hundreds of
 * pipelined requests.
 */
#include <errno.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* NNG's own allocations stay out of the leak check: the forked child in
 * test_client_forked_child inherits objects NNG's threads were working on
 * at the fork (coordinator/lsan_nng.h). */
#include "coordinator/lsan_nng.h"
#include "layout/wire.h"
#include "reader/client_internal.h"
#include "sutra/sutra.h"

#define DIM 4

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static sutra_concept_input good_input(void)
{
    static const float emb[DIM] = {1, 2, 3, 4};
    sutra_concept_input in = {0};
    sutra_id_from_name("x", 1, &in.id);
    in.content = "hello";
    in.content_len = 5;
    in.embedding = emb;
    in.dim = DIM;
    in.strength = 1.0f;
    in.confidence = 0.5f;
    return in;
}

/* ---- batches ---------------------------------------------------------- */

static void expect_rejected(sutra_batch *b, const sutra_concept_input *in, int code)
{
    size_t before = sutra_batch_count(b);
    size_t len = b->len;
    assert_int_equal(sutra_batch_learn_concept(b, in), code);
    assert_int_equal(sutra_batch_count(b), before);
    assert_int_equal(b->len, len);
}

static void test_client_batch_local_validation(void **state)
{
    (void)state;
    sutra_batch *b;
    assert_int_equal(sutra_batch_new(&b), 0);
    sutra_concept_input in = good_input();
    assert_int_equal(sutra_batch_learn_concept(b, &in), 0);
    assert_int_equal(sutra_batch_count(b), 1);

    in = good_input(); in.strength = NAN;           expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.strength = INFINITY;      expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.confidence = 1.5f;        expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.confidence = -0.01f;      expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.confidence = NAN;         expect_rejected(b, &in, SUTRA_EINVAL);
    float bad_emb[DIM] = {1, NAN, 3, 4};
    in = good_input(); in.embedding = bad_emb;      expect_rejected(b, &in, SUTRA_EINVAL);
    bad_emb[1] = -INFINITY;
    in = good_input(); in.embedding = bad_emb;      expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.flags = SUTRA_LEARN_KEEP_CONTENT;   expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.flags = SUTRA_LEARN_KEEP_EMBEDDING; expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.flags = 0x80;             expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.content = NULL;           expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.embedding = NULL;         expect_rejected(b, &in, SUTRA_EINVAL); /* dim without data */
    in = good_input(); in.dim = 0;                  expect_rejected(b, &in, SUTRA_EINVAL);
    in = good_input(); in.content_len = (size_t)UINT32_MAX + 1; expect_rejected(b, &in, SUTRA_ETOOBIG);
    assert_int_equal(sutra_batch_learn_concept(b, NULL), SUTRA_EINVAL);
    assert_int_equal(sutra_batch_forget_concept(b, NULL), SUTRA_EINVAL);

    /* KEEP flags with empty content / no embedding are fine. */
    in = good_input();
    in.content = NULL; in.content_len = 0; in.embedding = NULL; in.dim = 0;
    in.flags = SUTRA_LEARN_KEEP_CONTENT | SUTRA_LEARN_KEEP_EMBEDDING;
    assert_int_equal(sutra_batch_learn_concept(b, &in), 0);
    sutra_id id;
    sutra_id_from_name("y", 1, &id);
    assert_int_equal(sutra_batch_forget_concept(b, &id), 0);
    assert_int_equal(sutra_batch_flush(b), 0);
    assert_int_equal(sutra_batch_count(b), 4);

    /* The encoded ops are exactly what the coordinator's decoder accepts. */
    size_t len = sizeof(wire_request_header) + b->len;
    uint64_t *msg = calloc(1, len);
    wire_request_header h;
    wire_request_header_init(&h, b->wire_flags, 1, 1, b->count);
    memcpy(msg, &h, sizeof(h));
    memcpy((uint8_t *)msg + sizeof(h), b->ops, b->len);
    wire_limits lim = {.max_message = 1 << 20, .max_content = 1 << 20,
                       .max_batch = 100, .vector_dim = DIM};
    wire_request req;
    uint32_t failed;
    const char *why = NULL;
    assert_int_equal(wire_request_decode(msg, len, &lim, &req, &failed, &why), 0);
    assert_int_equal(req.data_ops, 3);
    assert_true(req.has_flush);
    size_t cursor = 0;
    wire_op op;
    assert_true(wire_request_next(&req, &cursor, &op));
    assert_int_equal(op.opcode, WIRE_OP_LEARN_CONCEPT);
    assert_int_equal(op.content_len, 5);
    assert_memory_equal(op.content, "hello", 5);
    assert_int_equal(op.dim, DIM);
    assert_true(op.embedding[3] == 4.0f);
    assert_true(wire_request_next(&req, &cursor, &op));
    assert_int_equal(op.flags, WIRE_LEARN_KEEP_CONTENT | WIRE_LEARN_KEEP_EMBEDDING);
    assert_true(wire_request_next(&req, &cursor, &op));
    assert_int_equal(op.opcode, WIRE_OP_FORGET_CONCEPT);
    assert_memory_equal(op.id, id.bytes, 16);
    assert_true(wire_request_next(&req, &cursor, &op));
    assert_int_equal(op.opcode, WIRE_OP_FLUSH);
    assert_false(wire_request_next(&req, &cursor, &op));
    free(msg);

    assert_int_equal(sutra_batch_set_sync(b, SUTRA_SYNC_COMMIT), 0);
    assert_int_equal(b->wire_flags, WIRE_SYNC_COMMIT);
    assert_int_equal(sutra_batch_set_sync(b, (enum sutra_sync)7), SUTRA_EINVAL);
    assert_int_equal(b->wire_flags, WIRE_SYNC_COMMIT); /* unchanged */
    assert_int_equal(sutra_batch_set_sync(NULL, SUTRA_SYNC_NONE), SUTRA_EINVAL);
    sutra_batch_clear(b);
    assert_int_equal(sutra_batch_count(b), 0);

    /* associations: confidence in [0, 1]; SUTRA_ANY_TYPE is no type */
    assert_int_equal(sutra_batch_learn_association(b, &id, &id, 7, 0.5f), 0);
    assert_int_equal(sutra_batch_learn_association(b, &id, &id, 7, 1.5f),
                     SUTRA_EINVAL);
    assert_int_equal(sutra_batch_learn_association(b, &id, &id,
                                                   SUTRA_ANY_TYPE, 0.5f),
                     SUTRA_EINVAL);
    assert_int_equal(sutra_batch_forget_association(b, &id, &id,
                                                    SUTRA_ANY_TYPE),
                     SUTRA_EINVAL);
    assert_int_equal(sutra_batch_count(b), 1);
    sutra_batch_free(b);
    sutra_batch_free(NULL);
}

/* ---- no coordinator --------------------------------------------------- */

static void test_client_connect_targets(void **state)
{
    (void)state;
    sutra_client *c = (sutra_client *)(uintptr_t)0x1;
    assert_int_equal(sutra_client_connect(NULL, NULL, &c), SUTRA_EINVAL);
    assert_int_equal(sutra_client_connect("", NULL, &c), SUTRA_EINVAL);
    assert_int_equal(sutra_client_connect("bogus://nowhere", NULL, &c), SUTRA_EINVAL);
    sutra_client_options bad = {.timeout_ms = -5};
    assert_int_equal(sutra_client_connect("/tmp", &bad, &c), SUTRA_EINVAL);
    assert_ptr_equal(c, (sutra_client *)(uintptr_t)0x1);
    sutra_client_close(NULL);
}

static void test_client_no_coordinator_times_out(void **state)
{
    (void)state;
    char dir[] = "/tmp/sutra-client-XXXXXX";
    assert_non_null(mkdtemp(dir));
    sutra_client_options o = {.timeout_ms = 300};
    sutra_client *c = NULL;
    assert_int_equal(sutra_client_connect(dir, &o, &c), 0);
    assert_non_null(c);

    uint64_t t0 = mono_ms();
    int rc = sutra_ping(c);
    uint64_t took = mono_ms() - t0;
    assert_true(rc == SUTRA_ETIMEDOUT || rc == SUTRA_ECLOSED);
    assert_true(took < 2000);

    sutra_batch *b;
    assert_int_equal(sutra_batch_new(&b), 0);
    sutra_write_result res;
    assert_int_equal(sutra_batch_commit(c, b, &res), SUTRA_EINVAL); /* empty */
    sutra_concept_input in = good_input();
    assert_int_equal(sutra_batch_learn_concept(b, &in), 0);
    t0 = mono_ms();
    rc = sutra_batch_commit(c, b, &res);
    assert_true(rc == SUTRA_ETIMEDOUT || rc == SUTRA_ECLOSED);
    assert_true(mono_ms() - t0 < 2000);

    /* Asynchronous: polls report "still in flight"; the deadline ends it. */
    sutra_pending *p;
    assert_int_equal(sutra_batch_submit(c, b, &p), 0);
    assert_int_equal(sutra_pending_wait(p, 0, &res), SUTRA_ETIMEDOUT);
    rc = sutra_pending_wait(p, -1, &res);
    assert_true(rc == SUTRA_ETIMEDOUT || rc == SUTRA_ECLOSED);
    sutra_pending_free(p);

    /* Many in flight, freed while still waiting. */
    sutra_pending *many[200];
    for (int i = 0; i < 200; i++)
        assert_int_equal(sutra_batch_submit(c, b, &many[i]), 0);
    for (int i = 0; i < 200; i++)
        sutra_pending_free(many[i]);
    sutra_batch_free(b);
    sutra_client_close(c);
    rmdir(dir);
}

/* ---- a stand-in coordinator ------------------------------------------ */

typedef struct responder {
    nng_socket sock;
    char url[128];
    pthread_t thread;
    uint64_t requests;
    uint64_t last_client_id;
    bool silent;            /* atomic: receive but never answer */
    uint32_t max_message;   /* atomic: what stats reports and P-REQ-5 uses */
} responder;

/* Under 1 MiB, where a client that only checked larger requests would
 * send ones the coordinator's transport drops without a reply. */
#define FAKE_MAX_MESSAGE (512u << 10)

static nng_msg *responder_reply(responder *r, const void *buf, size_t len)
{
    uint32_t max_message = __atomic_load_n(&r->max_message, __ATOMIC_RELAXED);
    wire_limits lim = {.max_message = max_message, .max_content = 1 << 30,
                       .max_batch = 1000, .vector_dim = DIM};
    wire_request req;
    uint32_t failed = WIRE_NO_FAILED_OP;
    const char *why = "";
    int rc = wire_request_decode(buf, len, &lim, &req, &failed, &why);
    /* REP bodies are only 4-byte aligned (the request id was trimmed off
     * their front), so read header fields with memcpy. */
    uint64_t no = 0;
    if (len >= sizeof(wire_request_header))
        memcpy(&no, (const uint8_t *)buf + offsetof(wire_request_header, request_no),
               sizeof(no));
    const void *body = NULL;
    uint32_t body_len = 0;
    wire_stats st;
    wire_op op;
    size_t cursor = 0;
    if (rc == 0) {
        r->last_client_id = req.header.client_id;
        wire_request_next(&req, &cursor, &op);
        if (op.opcode == WIRE_OP_STATS) {
            memset(&st, 0, sizeof(st));
            st.generation = 9;
            st.max_message = max_message;
            st.vector_dim = DIM;
            body = &st;
            body_len = sizeof(st);
        } else if (op.opcode == WIRE_OP_LEARN_CONCEPT && op.strength < 0) {
            rc = SUTRA_EINVAL;
            why = "P-TEST: negative strength refused";
            failed = 0;
        }
    }
    if (rc != 0) {
        body = why;
        body_len = (uint32_t)strlen(why);
    }
    wire_reply_header h;
    wire_reply_header_init(&h, no, rc, rc ? failed : WIRE_NO_FAILED_OP,
                           rc ? 0 : 100, rc ? 0 : 7, rc ? 0 : req.data_ops,
                           body_len);
    nng_msg *m;
    assert_int_equal(nng_msg_alloc(&m, 0), 0);
    nng_msg_append(m, &h, sizeof(h));
    if (body_len)
        nng_msg_append(m, body, body_len);
    return m;
}

static void *responder_main(void *arg)
{
    responder *r = arg;
    for (;;) {
        nng_msg *m;
        if (nng_recvmsg(r->sock, &m, 0) != 0)
            return NULL; /* closed */
        if (__atomic_load_n(&r->silent, __ATOMIC_ACQUIRE)) {
            nng_msg_free(m);
            __atomic_add_fetch(&r->requests, 1, __ATOMIC_RELAXED);
            continue;
        }
        nng_msg *reply = responder_reply(r, nng_msg_body(m), nng_msg_len(m));
        nng_msg_free(m);
        __atomic_add_fetch(&r->requests, 1, __ATOMIC_RELAXED);
        if (nng_sendmsg(r->sock, reply, 0) != 0)
            nng_msg_free(reply);
    }
}

static void responder_start(responder *r)
{
    memset(r, 0, sizeof(*r));
    r->max_message = FAKE_MAX_MESSAGE;
    snprintf(r->url, sizeof(r->url), "ipc:///tmp/sutra-client-test-%d.sock",
             (int)getpid());
    assert_int_equal(nng_rep0_open(&r->sock), 0);
    assert_int_equal(nng_setopt_size(r->sock, NNG_OPT_RECVMAXSZ, 64u << 20), 0);
    assert_int_equal(nng_listen(r->sock, r->url, NULL, 0), 0);
    assert_int_equal(pthread_create(&r->thread, NULL, responder_main, r), 0);
}

static void responder_stop(responder *r)
{
    nng_close(r->sock);
    pthread_join(r->thread, NULL);
    unlink(r->url + strlen("ipc://")); /* NNG leaves the socket file */
}

static void test_client_round_trips(void **state)
{
    (void)state;
    responder r;
    responder_start(&r);
    sutra_client_options o = {.timeout_ms = 5000};
    sutra_client *c;
    assert_int_equal(sutra_client_connect(r.url, &o, &c), 0);
    assert_int_equal(sutra_ping(c), 0);
    assert_true(r.last_client_id != 0);

    sutra_write_result res = {0};
    sutra_concept_input in = good_input();
    assert_int_equal(sutra_learn_concept(c, &in, &res), 0);
    assert_int_equal(res.first_seq, 100);
    assert_int_equal(res.generation, 7);
    assert_int_equal(res.op_count, 1);
    assert_string_equal(sutra_client_last_error(c), "");

    /* A coordinator error comes back with its message. */
    in.strength = -1.0f;
    memset(&res, 0xee, sizeof(res));
    sutra_write_result before = res;
    assert_int_equal(sutra_learn_concept(c, &in, &res), SUTRA_EINVAL);
    assert_memory_equal(&res, &before, sizeof(res));
    assert_string_equal(sutra_client_last_error(c), "P-TEST: negative strength refused");
    /* another client's error in the same thread leaves c's message */
    sutra_client *c2;
    assert_int_equal(sutra_client_connect(r.url, &o, &c2), 0);
    const char *kept = sutra_client_last_error(c);
    assert_int_equal(sutra_learn_concept(c2, &in, &res), SUTRA_EINVAL);
    assert_string_equal(sutra_client_last_error(c2),
                        "P-TEST: negative strength refused");
    assert_int_equal(sutra_ping(c2), 0);
    assert_string_equal(sutra_client_last_error(c2), "");
    assert_string_equal(kept, "P-TEST: negative strength refused");
    assert_string_equal(sutra_client_last_error(c), kept);
    sutra_client_close(c2);
    assert_string_equal(sutra_client_last_error(c2), "");
    assert_int_equal(sutra_ping(c), 0);
    assert_string_equal(sutra_client_last_error(c), "");

    sutra_server_stats st;
    assert_int_equal(sutra_client_stats(c, &st), 0);
    assert_int_equal(st.generation, 9);
    assert_int_equal(st.max_message, FAKE_MAX_MESSAGE);
    assert_int_equal(st.vector_dim, DIM);

    /* Over max_message (and over the 64 KiB every coordinator takes):
     * refused locally, never sent. */
    size_t big = 600u << 10;
    char *content = calloc(1, big);
    in = good_input();
    in.content = content;
    in.content_len = big;
    uint64_t sent = __atomic_load_n(&r.requests, __ATOMIC_RELAXED);
    assert_int_equal(sutra_learn_concept(c, &in, &res), SUTRA_ETOOBIG);
    assert_int_equal(__atomic_load_n(&r.requests, __ATOMIC_RELAXED), sent);
    /* Between 64 KiB and max_message: sent. */
    in.content_len = 300u << 10;
    assert_int_equal(sutra_learn_concept(c, &in, &res), 0);
    assert_int_equal(__atomic_load_n(&r.requests, __ATOMIC_RELAXED), sent + 1);
    free(content);

    /* Hundreds in flight from one thread. */
    enum { N = 300 };
    sutra_batch *b;
    assert_int_equal(sutra_batch_new(&b), 0);
    in = good_input();
    assert_int_equal(sutra_batch_learn_concept(b, &in), 0);
    assert_int_equal(sutra_batch_forget_concept(b, &in.id), 0);
    sutra_pending **p = calloc(N, sizeof(*p));
    for (int i = 0; i < N; i++)
        assert_int_equal(sutra_batch_submit(c, b, &p[i]), 0);
    for (int i = 0; i < N; i++) {
        memset(&res, 0, sizeof(res));
        assert_int_equal(sutra_pending_wait(p[i], -1, &res), 0);
        assert_int_equal(res.op_count, 2);
        sutra_pending_free(p[i]);
    }
    free(p);
    assert_int_equal(sutra_flush(c, &res), 0);
    assert_int_equal(res.op_count, 0);
    sutra_batch_free(b);
    sutra_client_close(c);
    responder_stop(&r);
}

/* A coordinator that takes requests and never answers: the request
 * deadline must end every form of call (synchronous ones wait on an aio
 * of their own, the asynchronous form on a callback), and the client
 * must work again once answers come.  The alarm turns a wait that never
 * ends into a failure. */
static void test_client_unanswered_requests_time_out(void **state)
{
    (void)state;
    alarm(30);
    responder r;
    responder_start(&r);
    __atomic_store_n(&r.silent, true, __ATOMIC_RELEASE);
    sutra_client_options o = {.timeout_ms = 300};
    sutra_client *c;
    assert_int_equal(sutra_client_connect(r.url, &o, &c), 0);

    uint64_t t0 = mono_ms();
    assert_int_equal(sutra_ping(c), SUTRA_ETIMEDOUT);
    uint64_t took = mono_ms() - t0;
    assert_true(took >= 250 && took < 3000);
    assert_true(__atomic_load_n(&r.requests, __ATOMIC_RELAXED) >= 1);

    sutra_concept_input in = good_input();
    sutra_write_result res;
    memset(&res, 0xee, sizeof(res));
    sutra_write_result before = res;
    t0 = mono_ms();
    assert_int_equal(sutra_learn_concept(c, &in, &res), SUTRA_ETIMEDOUT);
    took = mono_ms() - t0;
    assert_true(took >= 250 && took < 3000);
    assert_memory_equal(&res, &before, sizeof(res));

    sutra_batch *b;
    assert_int_equal(sutra_batch_new(&b), 0);
    assert_int_equal(sutra_batch_learn_concept(b, &in), 0);
    sutra_pending *p;
    assert_int_equal(sutra_batch_submit(c, b, &p), 0);
    assert_int_equal(sutra_pending_wait(p, 0, &res), SUTRA_ETIMEDOUT);
    assert_int_equal(sutra_pending_wait(p, -1, &res), SUTRA_ETIMEDOUT);
    sutra_pending_free(p);
    assert_int_equal(__atomic_load_n(&r.requests, __ATOMIC_RELAXED), 3);

    /* Answers again: pooled contexts that timed out serve new requests. */
    __atomic_store_n(&r.silent, false, __ATOMIC_RELEASE);
    assert_int_equal(sutra_ping(c), 0);
    assert_int_equal(sutra_batch_commit(c, b, &res), 0);
    assert_int_equal(res.op_count, 1);
    sutra_batch_free(b);

    /* The max_message learned before a timeout is not trusted after it:
     * the coordinator may have come back with another limit. */
    size_t big = 600u << 10;
    char *content = calloc(1, big);
    in = good_input();
    in.content = content;
    in.content_len = big;
    assert_int_equal(sutra_learn_concept(c, &in, &res), SUTRA_ETOOBIG);
    __atomic_store_n(&r.silent, true, __ATOMIC_RELEASE);
    sutra_concept_input small = good_input();
    assert_int_equal(sutra_learn_concept(c, &small, &res), SUTRA_ETIMEDOUT);
    __atomic_store_n(&r.max_message, 1u << 20, __ATOMIC_RELAXED);
    __atomic_store_n(&r.silent, false, __ATOMIC_RELEASE);
    assert_int_equal(sutra_learn_concept(c, &in, &res), 0);
    free(content);
    sutra_client_close(c);
    responder_stop(&r);
    alarm(0);
}

/* P-IDEM-2: a client never has more than WIRE_CLIENT_OPEN_MAX requests open,
 * so that whatever a reconnect makes NNG resend is still in the
 * coordinator's table.  Against a coordinator that answers nothing: the
 * window's worth goes out, the next submit waits and sends nothing, and
 * it goes out once the oldest request is given up (its pending freed). */
typedef struct window_submit {
    sutra_client *c;
    sutra_batch *b;
    sutra_pending *p;
    int rc;
    bool returned; /* atomic */
} window_submit;

static void *window_submit_run(void *arg)
{
    window_submit *w = arg;
    w->rc = sutra_batch_submit(w->c, w->b, &w->p);
    __atomic_store_n(&w->returned, true, __ATOMIC_RELEASE);
    return NULL;
}

static uint64_t wait_requests(responder *r, uint64_t want, uint64_t ms)
{
    uint64_t t0 = mono_ms(), n;
    while ((n = __atomic_load_n(&r->requests, __ATOMIC_RELAXED)) < want &&
           mono_ms() - t0 < ms)
        usleep(2000);
    return n;
}

static void test_client_open_requests_stay_in_the_window(void **state)
{
    (void)state;
    alarm(60);
    responder r;
    responder_start(&r);
    __atomic_store_n(&r.silent, true, __ATOMIC_RELEASE);
    sutra_client_options o = {.timeout_ms = 30000, .resend_ms = 60000};
    sutra_client *c;
    assert_int_equal(sutra_client_connect(r.url, &o, &c), 0);
    sutra_batch *b;
    assert_int_equal(sutra_batch_new(&b), 0);
    sutra_concept_input in = good_input();
    assert_int_equal(sutra_batch_learn_concept(b, &in), 0);

    enum { N = WIRE_CLIENT_OPEN_MAX };
    sutra_pending **p = calloc(N, sizeof(*p));
    for (int i = 0; i < N; i++)
        assert_int_equal(sutra_batch_submit(c, b, &p[i]), 0);
    assert_int_equal(wait_requests(&r, N, 10000), N);

    window_submit w = {.c = c, .b = b};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, window_submit_run, &w), 0);
    usleep(300 * 1000);
    assert_false(__atomic_load_n(&w.returned, __ATOMIC_ACQUIRE));
    assert_int_equal(__atomic_load_n(&r.requests, __ATOMIC_RELAXED), N);

    sutra_pending_free(p[0]); /* request 1 can no longer be resent */
    assert_int_equal(wait_requests(&r, N + 1, 10000), N + 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.rc, 0);
    sutra_pending_free(w.p);
    for (int i = 1; i < N; i++)
        sutra_pending_free(p[i]);
    free(p);
    sutra_batch_free(b);
    sutra_client_close(c);
    responder_stop(&r);
    alarm(0);
}

/* ---- fork ------------------------------------------------------------- */

/* Child side: every client call fails cleanly; exit status says which
 * check failed (0 = all good). */
static int forked_child(sutra_client *c)
{
    if (sutra_ping(c) != SUTRA_EFORKED)
        return 1;
    if (strcmp(sutra_client_last_error(c),
               "client created before fork(); create clients after forking") != 0)
        return 2;
    sutra_concept_input in = good_input();
    sutra_write_result res;
    if (sutra_learn_concept(c, &in, &res) != SUTRA_EFORKED)
        return 3;
    sutra_client *again = NULL;
    if (sutra_client_connect("/tmp", NULL, &again) != SUTRA_EFORKED || again)
        return 4;
    sutra_client_close(c); /* frees without touching NNG */
    return 0;
}

static void test_client_forked_child(void **state)
{
    (void)state;
    sutra_client_options o = {.timeout_ms = 100};
    sutra_client *c;
    assert_int_equal(sutra_client_connect("/tmp/sutra-no-such-dir", &o, &c), 0);
    int rc = sutra_ping(c); /* NNG is now in use in this process */
    assert_true(rc == SUTRA_ETIMEDOUT || rc == SUTRA_ECLOSED);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        exit(forked_child(c)); /* a normal exit: atexit handlers run */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's client still works. */
    rc = sutra_ping(c);
    assert_true(rc == SUTRA_ETIMEDOUT || rc == SUTRA_ECLOSED);
    sutra_client_close(c);
}

/* A parent thread waiting on a pending write when another thread forks:
 * the child inherits the wait's condition variable with a waiter that
 * does not exist there, and freeing the pending write (and closing the
 * client) must still return at once instead of waiting for that waiter. */
typedef struct fork_waiter {
    sutra_pending *p;
    int rc;
    bool waiting; /* atomic */
} fork_waiter;

static void *fork_waiter_run(void *arg)
{
    fork_waiter *w = arg;
    sutra_write_result res;
    __atomic_store_n(&w->waiting, true, __ATOMIC_RELEASE);
    w->rc = sutra_pending_wait(w->p, -1, &res);
    return NULL;
}

static void test_client_forked_child_frees_a_waited_pending(void **state)
{
    (void)state;
    alarm(60);
    sutra_client_options o = {.timeout_ms = 3000};
    sutra_client *c;
    assert_int_equal(sutra_client_connect("/tmp/sutra-no-such-dir", &o, &c), 0);
    sutra_batch *b;
    assert_int_equal(sutra_batch_new(&b), 0);
    sutra_concept_input in = good_input();
    assert_int_equal(sutra_batch_learn_concept(b, &in), 0);
    fork_waiter w = {0};
    assert_int_equal(sutra_batch_submit(c, b, &w.p), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fork_waiter_run, &w), 0);
    while (!__atomic_load_n(&w.waiting, __ATOMIC_ACQUIRE))
        usleep(1000);
    usleep(200 * 1000); /* inside pthread_cond_wait by now */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (sutra_pending_wait(w.p, 0, NULL) != SUTRA_EFORKED)
            _exit(1);
        sutra_pending_free(w.p);
        sutra_client_close(c);
        sutra_batch_free(b);
        _exit(0);
    }
    int status = 0;
    pid_t got = 0;
    for (uint64_t t0 = mono_ms(); got == 0 && mono_ms() - t0 < 10000;) {
        got = waitpid(pid, &status, WNOHANG);
        if (got == 0)
            usleep(10 * 1000);
    }
    if (got == 0) { /* still blocked: fail, without leaving it behind */
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    assert_int_equal(got, pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* The parent's wait ends at the request's deadline, as without a fork. */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(w.rc == SUTRA_ETIMEDOUT || w.rc == SUTRA_ECLOSED);
    sutra_pending_free(w.p);
    sutra_batch_free(b);
    sutra_client_close(c);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_batch_local_validation),
        cmocka_unit_test(test_client_connect_targets),
        cmocka_unit_test(test_client_no_coordinator_times_out),
        cmocka_unit_test(test_client_round_trips),
        cmocka_unit_test(test_client_unanswered_requests_time_out),
        cmocka_unit_test(test_client_open_requests_stay_in_the_window),
        cmocka_unit_test(test_client_forked_child),
        cmocka_unit_test(test_client_forked_child_frees_a_waited_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
