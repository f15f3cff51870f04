/*
 * tests/integration/test_clients.c — the coordinator against many, hostile
 * and heavy clients.
 *
 *   - 500 client connections at once (10 processes x 50 clients), every
 *     write served and applied exactly once;
 *   - garbage through a raw NNG REQ socket (random bytes, truncated and lying
 *     headers, huge op counts, messages over the size limit and over NNG's
 *     receive cap) gets error replies, or a dropped connection, while a
 *     well-behaved client keeps being served;
 *   - clients that vanish mid-request (send and close; kill -9 with a window
 *     of batches in flight): the coordinator keeps serving and every batch
 *     is applied whole or not at all;
 *   - one client flooding thousands of asynchronous writes: none dropped,
 *     each acknowledged once, a quiet client's latency stays bounded (its
 *     p50/p99 are printed) and the coordinator's memory stays bounded.
 *
 * Each test gets its own coordinator, stopped with SIGTERM afterwards: a
 * clean exit after the abuse is part of what is checked.  The test process
 * never touches NNG (see harness.h); raw sockets live in children too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "layout/wire.h"
#include "sutra/sutra.h"
#include "tests/integration/harness.h"

#define DIM 8
#define MAX_MESSAGE (1u << 20)

#define PROCS 10
#define CLIENTS_PER_PROC 50
#define CLIENTS (PROCS * CLIENTS_PER_PROC)
#define ROUNDS 3

#define KILL_BATCH_OPS 10
#define KILL_BATCHES 4000
#define KILL_WINDOW 64
#define KILL_AFTER_ACKS 150
#define HANGUP_BATCHES 100
#define HANGUP_BATCH_OPS 5

#define FLOOD 20000
#define FLOOD_WINDOW 4000
#define QUIET_MAX 4096

/* Generous on purpose: a noisy 2-core VM shares the cores between the
 * coordinator, the flood and the quiet client. */
#define QUIET_P99_LIMIT_MS 2000u
#define RSS_GROWTH_LIMIT_KB (256u << 10)

/* Item namespaces (harness_item_id's writer numbers) of each test. */
#define NS_MANY 1000u
#define NS_POLITE 2000u
#define NS_RAW 2001u
#define NS_KILL 3000u
#define NS_HANGUP 3001u
#define NS_FLOOD 4000u
#define NS_QUIET 4001u

static const char *const COORD_ARGS[] = {
    "--dim", "8", "--max-message", "1M", "--max-content", "4096",
    "--sync", "interval:100", NULL };

typedef struct shared_state {
    char dir[64];
    /* 500 connections */
    _Atomic uint32_t connected;
    _Atomic uint32_t go;
    uint64_t many_seq[CLIENTS][ROUNDS];
    /* garbage */
    _Atomic uint32_t garbage_done;
    _Atomic uint32_t polite_acked;
    _Atomic uint32_t polite_during;   /* acked while garbage was sent   */
    int garbage_fails;
    /* kill -9 */
    _Atomic uint32_t kill_submitted;  /* batches handed to submit       */
    _Atomic uint32_t kill_acked;
    _Atomic uint8_t kill_ack[KILL_BATCHES];
    /* flood */
    _Atomic uint32_t flood_started;
    _Atomic uint32_t flood_done;
    uint64_t flood_seq[FLOOD];
    uint64_t flood_ms;
    _Atomic uint32_t quiet_n;
    uint32_t quiet_us[QUIET_MAX];
    /* a peer that stops reading */
    _Atomic uint32_t stalled_sent;    /* requests written before it held */
    _Atomic uint32_t stalled_closed;  /* the coordinator hung up on it   */
} shared_state;

static shared_state *shm;
static pid_t coordinator;

/* ---- helpers ---------------------------------------------------------- */

static void concept_input(uint32_t writer, uint32_t index, char *content,
                          float *emb, sutra_concept_input *in)
{
    memset(in, 0, sizeof(*in));
    harness_item_id(writer, index, &in->id);
    in->content_len = harness_content(writer, index, 0, content, 512);
    in->content = content;
    harness_embedding(writer, index, 0, emb, DIM);
    in->embedding = emb;
    in->dim = DIM;
    in->strength = 1.0f;
    in->confidence = 0.5f;
}

static int batch_add(sutra_batch *b, uint32_t writer, uint32_t index)
{
    char content[512];
    float emb[DIM];
    sutra_concept_input in;
    concept_input(writer, index, content, emb, &in);
    return sutra_batch_learn_concept(b, &in);
}

/* A field of /proc/PID/status in kB ("VmRSS", "VmHWM"), or 0. */
static uint64_t proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    uint64_t kb = 0;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = strtoull(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* Sockets the process holds open (its connections and listeners). */
static unsigned proc_socket_count(pid_t pid)
{
    char path[64], link[512], target[64];
    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(path);
    unsigned n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len > 0) {
            target[len] = '\0';
            n += strncmp(target, "socket:", 7) == 0;
        }
    }
    if (d)
        closedir(d);
    return n;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* True when every value is nonzero and no two are equal. */
static bool all_distinct(uint64_t *values, size_t n)
{
    qsort(values, n, sizeof(*values), cmp_u64);
    for (size_t i = 0; i < n; i++)
        if (values[i] == 0 || (i && values[i] == values[i - 1]))
            return false;
    return true;
}

typedef struct file_view {
    sutra_db *db;
    struct sutra_snapshot snap;
    sutra_stats stats;
} file_view;

static void view_open(file_view *v)
{
    assert_int_equal(sutra_open(shm->dir, NULL, &v->db), 0);
    assert_int_equal(sutra_snapshot(v->db, &v->snap), 0);
    assert_int_equal(sutra_stats_get(&v->snap, &v->stats), 0);
}

/* 1 if the item is there byte for byte, 0 if absent; fails otherwise. */
static int item_state(const file_view *v, uint32_t writer, uint32_t index)
{
    sutra_id id;
    sutra_concept c;
    harness_item_id(writer, index, &id);
    int rc = sutra_get(&v->snap, &id, &c);
    if (rc == SUTRA_ENOTFOUND)
        return 0;
    assert_int_equal(rc, 0);
    assert_true(harness_item_matches(&c, writer, index, 0, DIM));
    return 1;
}

/* Coordinator alive and serving: a fresh process pings and writes. */
static int ping_and_write(void *arg)
{
    uint32_t index = (uint32_t)(uintptr_t)arg;
    sutra_client_options opts = { .timeout_ms = 10000 };
    sutra_client *c;
    if (sutra_client_connect(shm->dir, &opts, &c) != 0)
        return 10;
    sutra_batch *b = NULL;
    sutra_write_result r;
    int rc = sutra_ping(c) != 0                      ? 11
             : sutra_batch_new(&b) != 0              ? 12
             : batch_add(b, NS_POLITE, index) != 0   ? 13
             : sutra_batch_commit(c, b, &r) != 0     ? 14
                                                     : 0;
    sutra_batch_free(b);
    sutra_client_close(c);
    return rc;
}

static void assert_serving(uint32_t index)
{
    assert_int_equal(kill(coordinator, 0), 0);
    assert_int_equal(harness_wait(harness_spawn(ping_and_write,
                                                (void *)(uintptr_t)index)),
                     0);
}

/* ---- 500 connections -------------------------------------------------- */

static bool wait_flag(_Atomic uint32_t *flag, uint32_t value, uint64_t ms)
{
    uint64_t deadline = harness_now_ms() + ms;
    while (atomic_load(flag) < value)
        if (harness_now_ms() > deadline)
            return false;
        else
            usleep(2000);
    return true;
}

/* One process: 50 clients, all connected before any writes, then ROUNDS
 * rounds with one write of each client in flight at once. */
static int many_clients_process(void *arg)
{
    uint32_t p = (uint32_t)(uintptr_t)arg;
    sutra_client_options opts = { .timeout_ms = 30000 };
    sutra_client *c[CLIENTS_PER_PROC];
    for (uint32_t i = 0; i < CLIENTS_PER_PROC; i++)
        if (sutra_client_connect(shm->dir, &opts, &c[i]) != 0 ||
            sutra_ping(c[i]) != 0)
            return 20;
    atomic_fetch_add(&shm->connected, CLIENTS_PER_PROC);
    if (!wait_flag(&shm->go, 1, 60000))
        return 21;
    sutra_batch *b;
    if (sutra_batch_new(&b) != 0)
        return 22;
    for (uint32_t r = 0; r < ROUNDS; r++) {
        sutra_pending *pend[CLIENTS_PER_PROC];
        for (uint32_t i = 0; i < CLIENTS_PER_PROC; i++) {
            uint32_t client = p * CLIENTS_PER_PROC + i;
            sutra_batch_clear(b);
            if (batch_add(b, NS_MANY + client, r) != 0 ||
                sutra_batch_submit(c[i], b, &pend[i]) != 0)
                return 23;
        }
        for (uint32_t i = 0; i < CLIENTS_PER_PROC; i++) {
            sutra_write_result res;
            int rc = sutra_pending_wait(pend[i], -1, &res);
            sutra_pending_free(pend[i]);
            if (rc != 0 || res.op_count != 1) {
                fprintf(stderr, "client %u round %u: %s\n", i, r,
                        sutra_strerror(rc));
                return 24;
            }
            shm->many_seq[p * CLIENTS_PER_PROC + i][r] = res.first_seq;
        }
    }
    sutra_batch_free(b);
    for (uint32_t i = 0; i < CLIENTS_PER_PROC; i++)
        sutra_client_close(c[i]);
    return 0;
}

static void test_clients_500_concurrent_connections(void **state)
{
    (void)state;
    file_view before;
    view_open(&before);
    uint64_t t0 = harness_now_ms();
    pid_t pids[PROCS];
    for (uint32_t p = 0; p < PROCS; p++)
        pids[p] = harness_spawn(many_clients_process, (void *)(uintptr_t)p);
    bool all_connected = wait_flag(&shm->connected, CLIENTS, 60000);
    unsigned sockets = proc_socket_count(coordinator);
    uint64_t t_connected = harness_now_ms();
    atomic_store(&shm->go, 1);
    for (uint32_t p = 0; p < PROCS; p++)
        assert_int_equal(harness_wait(pids[p]), 0);
    uint64_t t_done = harness_now_ms();
    assert_true(all_connected);
    print_message("500 clients: connected in %llu ms (coordinator holds %u "
                  "sockets), %u writes in %llu ms\n",
                  (unsigned long long)(t_connected - t0), sockets,
                  CLIENTS * ROUNDS,
                  (unsigned long long)(t_done - t_connected));
    assert_true(sockets >= CLIENTS); /* they really were connected at once */

    /* exactly once: distinct seqs, one version per write, bytes intact */
    assert_true(all_distinct(&shm->many_seq[0][0], CLIENTS * ROUNDS));
    file_view after;
    view_open(&after);
    assert_int_equal(after.stats.version_count - before.stats.version_count,
                     CLIENTS * ROUNDS);
    for (uint32_t c = 0; c < CLIENTS; c++)
        for (uint32_t r = 0; r < ROUNDS; r++)
            assert_int_equal(item_state(&after, NS_MANY + c, r), 1);
    sutra_close(before.db);
    sutra_close(after.db);
}

/* ---- garbage ---------------------------------------------------------- */

static int raw_open(nng_socket *s, int recv_timeout_ms)
{
    char url[128];
    snprintf(url, sizeof(url), "ipc://%s/coordinator.sock", shm->dir);
    int rv = nng_req0_open(s);
    if (rv == 0)
        rv = nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, recv_timeout_ms);
    if (rv == 0) /* no resends: each message is sent exactly once */
        rv = nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (rv == 0)
        rv = nng_dial(*s, url, NULL, 0);
    return rv;
}

/* Send one raw message, return the reply's status (or an NNG error as a
 * positive number, or 1000 for an undecodable reply). */
static int raw_call(nng_socket s, const void *buf, size_t len,
                    wire_reply_header *out)
{
    int rv = nng_send(s, (void *)buf, len, 0);
    if (rv != 0)
        return rv;
    void *reply;
    size_t reply_len;
    if ((rv = nng_recv(s, &reply, &reply_len, NNG_FLAG_ALLOC)) != 0)
        return rv;
    wire_reply_header h;
    const void *body;
    rv = wire_reply_decode(reply, reply_len, &h, &body) == 0 ? h.status : 1000;
    nng_free(reply, reply_len);
    if (out && rv != 1000)
        *out = h;
    return rv;
}

/* A valid one-learn request of item (NS_RAW, index) into buf. */
static size_t raw_learn(uint8_t *buf, uint64_t request_no, uint32_t index)
{
    char content[512];
    float emb[DIM];
    sutra_concept_input in;
    concept_input(NS_RAW, index, content, emb, &in);
    wire_request_header h;
    wire_request_header_init(&h, 0, 0x5eed, request_no, 1);
    memcpy(buf, &h, sizeof(h));
    return sizeof(h) + wire_encode_learn_concept(
                           buf + sizeof(h), 0, in.id.bytes, in.strength,
                           in.confidence, in.content, (uint32_t)in.content_len,
                           in.embedding, DIM);
}

#define EXPECT_STATUS(what, got, want)                                       \
    do {                                                                     \
        int got_ = (got);                                                    \
        if (got_ != (want)) {                                                \
            fprintf(stderr, "%s: got %d, want %d\n", what, got_, (want));    \
            fails++;                                                         \
        }                                                                    \
    } while (0)

/* Framing and header lies; each must be answered with its own error. */
static int send_lies(nng_socket s)
{
    int fails = 0;
    static uint8_t buf[8192] __attribute__((aligned(8)));
    wire_request_header h;
    EXPECT_STATUS("empty", raw_call(s, buf, 0, NULL), SUTRA_EPROTO);
    size_t n = raw_learn(buf, 1, 0);
    EXPECT_STATUS("truncated header", raw_call(s, buf, 20, NULL), SUTRA_EPROTO);
    EXPECT_STATUS("header only", raw_call(s, buf, 32, NULL), SUTRA_EPROTO);
    EXPECT_STATUS("truncated op", raw_call(s, buf, n - 8, NULL), SUTRA_EPROTO);
    memcpy(&h, buf, sizeof(h));
    h.op_count = 0xFFFFFFFFu; /* huge op count, one op present */
    memcpy(buf, &h, sizeof(h));
    EXPECT_STATUS("huge op count", raw_call(s, buf, n, NULL), SUTRA_ETOOBIG);
    h.op_count = 2; /* count and bytes disagree */
    memcpy(buf, &h, sizeof(h));
    EXPECT_STATUS("op count 2", raw_call(s, buf, n, NULL), SUTRA_EPROTO);
    h.op_count = 1;
    h.version = 2;
    memcpy(buf, &h, sizeof(h));
    EXPECT_STATUS("version 2", raw_call(s, buf, n, NULL), SUTRA_EVERSION);
    h.version = WIRE_VERSION;
    h.reserved = 1;
    memcpy(buf, &h, sizeof(h));
    EXPECT_STATUS("reserved", raw_call(s, buf, n, NULL), SUTRA_EPROTO);
    h.reserved = 0;
    h.client_id = 0;
    memcpy(buf, &h, sizeof(h));
    EXPECT_STATUS("client id 0", raw_call(s, buf, n, NULL), SUTRA_EPROTO);
    h.client_id = 0x5eed;
    memcpy(buf, &h, sizeof(h));
    uint32_t huge_len = 0xFFFFFFF8u; /* op length past the message */
    memcpy(buf + sizeof(h) + offsetof(wire_op_header, length), &huge_len, 4);
    EXPECT_STATUS("op length", raw_call(s, buf, n, NULL), SUTRA_EPROTO);
    n = raw_learn(buf, 2, 0);
    uint32_t content_len = 0xFFFFFFF0u; /* content claimed past the op */
    memcpy(buf + sizeof(h) + offsetof(wire_learn_concept, content_len),
           &content_len, 4);
    int rc = raw_call(s, buf, n, NULL);
    if (rc != SUTRA_EPROTO && rc != SUTRA_ETOOBIG) {
        fprintf(stderr, "content length: got %d\n", rc);
        fails++;
    }
    return fails;
}

/* Random bytes: never a valid request (the magic alone is 32 bits). */
static int send_noise(nng_socket s, unsigned count)
{
    int fails = 0;
    uint8_t buf[512];
    for (unsigned i = 0; i < count; i++) {
        uint16_t len;
        if (getrandom(&len, sizeof(len), 0) != sizeof(len) ||
            getrandom(buf, sizeof(buf), 0) != sizeof(buf)) {
            fprintf(stderr, "getrandom failed\n");
            return 1;
        }
        EXPECT_STATUS("random bytes", raw_call(s, buf, len % sizeof(buf), NULL),
                      SUTRA_EPROTO);
    }
    return fails;
}

/* Over max_message but under NNG's receive cap: a P-REQ-5 reply.  Over the
 * cap: NNG drops the connection and no reply comes; the coordinator lives
 * on (checked by the caller).  A process of its own, left by exiting: the
 * REQ socket still holds the dropped request, and NNG 1.5 can hang closing
 * a REQ socket with a request pending. */
static int oversize_client(void *arg)
{
    (void)arg;
    int fails = 0;
    size_t big = MAX_MESSAGE + WIRE_RECV_SLACK + 4096;
    uint8_t *buf = calloc(1, big);
    nng_socket s;
    if (!buf || raw_open(&s, 2000) != 0) {
        fprintf(stderr, "oversize: no memory or no connection\n");
        return 1;
    }
    raw_learn(buf, 3, 0);
    EXPECT_STATUS("over max_message", raw_call(s, buf, MAX_MESSAGE + 1024, NULL),
                  SUTRA_ETOOBIG);
    /* P-REQ-5's bound itself is answered (NNG's limit also counts the REQ
     * header) */
    EXPECT_STATUS("at max_message + slack",
                  raw_call(s, buf, MAX_MESSAGE + WIRE_RECV_SLACK, NULL),
                  SUTRA_ETOOBIG);
    int rc = raw_call(s, buf, big, NULL);
    if (rc <= 0) { /* dropped: an NNG error (reset, timeout), no reply */
        fprintf(stderr, "over the receive cap: got status %d\n", rc);
        fails++;
    }
    free(buf);
    return fails;
}

/* The library refuses a batch over max_message before sending it. */
static int library_client(void *arg)
{
    (void)arg;
    sutra_client *c;
    if (sutra_client_connect(shm->dir, NULL, &c) != 0)
        return 1;
    int fails = 0;
    sutra_server_stats a, b;
    sutra_batch *batch;
    sutra_write_result r;
    static char content[4096];
    memset(content, 'x', sizeof(content));
    if (sutra_client_stats(c, &a) != 0 || sutra_batch_new(&batch) != 0) {
        fprintf(stderr, "library client: no stats\n");
        return 1;
    }
    for (uint32_t i = 0; i < 300; i++) { /* ~1.2 MiB > 1 MiB */
        sutra_concept_input in = { .content = content,
                                   .content_len = sizeof(content),
                                   .confidence = 1.0f };
        harness_item_id(NS_RAW, 1000 + i, &in.id);
        if (sutra_batch_learn_concept(batch, &in) != 0)
            fails++;
    }
    EXPECT_STATUS("library oversize", sutra_batch_commit(c, batch, &r),
                  SUTRA_ETOOBIG);
    if (sutra_client_stats(c, &b) != 0)
        fails++;
    /* had it been sent, the coordinator would have refused it (P-REQ-5) */
    EXPECT_STATUS("failures between",
                  (int)(b.requests_failed - a.requests_failed), 0);
    sutra_batch_free(batch);
    sutra_client_close(c);
    return fails;
}

static int garbage_client(void *arg)
{
    (void)arg;
    nng_socket s;
    if (raw_open(&s, 5000) != 0) {
        fprintf(stderr, "garbage: no connection\n");
        return 1;
    }
    int fails = send_lies(s) + send_noise(s, 200);
    static uint8_t buf[8192] __attribute__((aligned(8)));
    size_t n = raw_learn(buf, 4, 1); /* the same socket still works */
    wire_reply_header h = { 0 };
    EXPECT_STATUS("valid after garbage", raw_call(s, buf, n, &h), 0);
    EXPECT_STATUS("op count", (int)h.op_count, 1);
    nng_close(s);
    return fails;
}

/* A well-behaved client writing steadily while the garbage flies. */
static int polite_client(void *arg)
{
    (void)arg;
    sutra_client_options opts = { .timeout_ms = 10000 };
    sutra_client *c;
    if (sutra_client_connect(shm->dir, &opts, &c) != 0)
        return 30;
    char content[512];
    float emb[DIM];
    uint32_t i = 0;
    do {
        sutra_concept_input in;
        sutra_write_result r;
        concept_input(NS_POLITE, i, content, emb, &in);
        int rc = sutra_learn_concept(c, &in, &r);
        if (rc != 0) {
            fprintf(stderr, "polite write %u: %s\n", i, sutra_strerror(rc));
            return 31;
        }
        i++;
        atomic_store(&shm->polite_acked, i);
        if (!atomic_load(&shm->garbage_done))
            atomic_store(&shm->polite_during, i);
        usleep(2000);
    } while (!atomic_load(&shm->garbage_done) || i < 20);
    sutra_client_close(c);
    return 0;
}

static void test_clients_garbage_gets_errors_others_served(void **state)
{
    (void)state;
    file_view before;
    view_open(&before);
    pid_t polite = harness_spawn(polite_client, NULL);
    int garbage = harness_wait(harness_spawn(garbage_client, NULL));
    int oversize = harness_wait(harness_spawn(oversize_client, NULL));
    int library = harness_wait(harness_spawn(library_client, NULL));
    atomic_store(&shm->garbage_done, 1);
    assert_int_equal(harness_wait(polite), 0);
    assert_int_equal(garbage, 0);
    assert_int_equal(oversize, 0);
    assert_int_equal(library, 0);
    uint32_t acked = atomic_load(&shm->polite_acked);
    print_message("garbage: %u polite writes acknowledged (%u while garbage "
                  "was being sent)\n", acked, atomic_load(&shm->polite_during));
    assert_true(atomic_load(&shm->polite_during) > 0);
    assert_serving(0x10000);

    /* the garbage changed nothing: only the valid raw learn, the polite
     * writes and the final check's write were applied */
    file_view after;
    view_open(&after);
    assert_int_equal(after.stats.version_count - before.stats.version_count,
                     acked + 2);
    assert_int_equal(item_state(&after, NS_RAW, 1), 1);
    assert_int_equal(item_state(&after, NS_RAW, 0), 0);
    for (uint32_t i = 0; i < acked; i++)
        assert_int_equal(item_state(&after, NS_POLITE, i), 1);
    sutra_close(before.db);
    sutra_close(after.db);
}

/* ---- clients that vanish mid-request ---------------------------------- */

/* Batches of KILL_BATCH_OPS writes, KILL_WINDOW in flight, until killed. */
static int inflight_writer(void *arg)
{
    (void)arg;
    sutra_client *c;
    if (sutra_client_connect(shm->dir, NULL, &c) != 0)
        return 40;
    sutra_batch *b;
    if (sutra_batch_new(&b) != 0)
        return 41;
    sutra_pending *ring[KILL_WINDOW] = { 0 };
    for (uint32_t k = 0; k < KILL_BATCHES + KILL_WINDOW; k++) {
        uint32_t slot = k % KILL_WINDOW;
        if (ring[slot]) {
            sutra_write_result r;
            if (sutra_pending_wait(ring[slot], -1, &r) != 0 ||
                r.op_count != KILL_BATCH_OPS)
                return 42;
            sutra_pending_free(ring[slot]);
            ring[slot] = NULL;
            atomic_store(&shm->kill_ack[k - KILL_WINDOW], 1);
            atomic_fetch_add(&shm->kill_acked, 1);
        }
        if (k >= KILL_BATCHES)
            continue;
        sutra_batch_clear(b);
        for (uint32_t i = 0; i < KILL_BATCH_OPS; i++)
            if (batch_add(b, NS_KILL, k * KILL_BATCH_OPS + i) != 0)
                return 43;
        atomic_store(&shm->kill_submitted, k + 1); /* before it can leave */
        if (sutra_batch_submit(c, b, &ring[slot]) != 0)
            return 44;
    }
    return 0; /* not reached in the test: the parent kills first */
}

/* Batch k of the send-and-hang-up test: connect, send, and exit after
 * 0..2 ms without waiting for the reply (the kernel closes the socket;
 * NNG 1.5 can hang in nng_close of a REQ socket with a request pending, so
 * exiting is also the dependable way to hang up). */
static int hangup_once(void *arg)
{
    uint32_t k = (uint32_t)(uintptr_t)arg;
    static uint8_t buf[16384] __attribute__((aligned(8)));
    wire_request_header h;
    wire_request_header_init(&h, 0, 0xdead0000u + k, 1, HANGUP_BATCH_OPS);
    memcpy(buf, &h, sizeof(h));
    size_t n = sizeof(h);
    for (uint32_t i = 0; i < HANGUP_BATCH_OPS; i++) {
        char content[512];
        float emb[DIM];
        sutra_concept_input in;
        concept_input(NS_HANGUP, k * HANGUP_BATCH_OPS + i, content, emb, &in);
        n += wire_encode_learn_concept(buf + n, 0, in.id.bytes, in.strength,
                                       in.confidence, in.content,
                                       (uint32_t)in.content_len, in.embedding,
                                       DIM);
    }
    nng_socket s;
    if (raw_open(&s, 1000) != 0 || nng_send(s, buf, n, 0) != 0)
        return 51;
    usleep(k % 3 * 1000);
    return 0;
}

/* One process per batch; this one never touches NNG, so it may fork. */
static int hangup_writer(void *arg)
{
    (void)arg;
    for (uint32_t k = 0; k < HANGUP_BATCHES; k++)
        if (harness_wait(harness_spawn(hangup_once, (void *)(uintptr_t)k)) != 0)
            return 50;
    return 0;
}

/* Items of batch k present: all, none, or (an atomicity failure) some. */
static uint32_t batch_present(const file_view *v, uint32_t ns, uint32_t k,
                              uint32_t ops)
{
    uint32_t present = 0;
    for (uint32_t i = 0; i < ops; i++)
        present += (uint32_t)item_state(v, ns, k * ops + i);
    return present;
}

static void test_clients_vanishing_clients_leave_whole_batches(void **state)
{
    (void)state;
    pid_t writer = harness_spawn(inflight_writer, NULL);
    bool acked = wait_flag(&shm->kill_acked, KILL_AFTER_ACKS, 60000);
    kill(writer, SIGKILL);
    assert_int_equal(harness_wait(writer), 128 + SIGKILL);
    assert_true(acked);
    assert_int_equal(harness_wait(harness_spawn(hangup_writer, NULL)), 0);
    assert_serving(0x20000); /* also queues behind anything left in flight */
    usleep(200000);

    file_view v;
    view_open(&v);
    uint32_t submitted = atomic_load(&shm->kill_submitted);
    uint32_t whole = 0, absent = 0, unacked_whole = 0;
    for (uint32_t k = 0; k < submitted + KILL_WINDOW && k < KILL_BATCHES; k++) {
        uint32_t n = batch_present(&v, NS_KILL, k, KILL_BATCH_OPS);
        if (n != 0 && n != KILL_BATCH_OPS)
            fail_msg("batch %u: %u of %u writes applied", k, n, KILL_BATCH_OPS);
        if (atomic_load(&shm->kill_ack[k]))
            assert_int_equal(n, KILL_BATCH_OPS);
        if (k >= submitted)
            assert_int_equal(n, 0);
        whole += n == KILL_BATCH_OPS;
        absent += n == 0;
        unacked_whole += n && !atomic_load(&shm->kill_ack[k]);
    }
    uint32_t hang_whole = 0, hang_absent = 0;
    for (uint32_t k = 0; k < HANGUP_BATCHES; k++) {
        uint32_t n = batch_present(&v, NS_HANGUP, k, HANGUP_BATCH_OPS);
        if (n != 0 && n != HANGUP_BATCH_OPS)
            fail_msg("hang-up batch %u: %u of %u writes applied", k, n,
                     HANGUP_BATCH_OPS);
        hang_whole += n != 0;
        hang_absent += n == 0;
    }
    print_message("kill -9: %u batches submitted, %u acknowledged; %u applied "
                  "whole (%u of them unacknowledged), %u absent; send-and-close:"
                  " %u applied whole, %u absent\n", submitted,
                  atomic_load(&shm->kill_acked), whole, unacked_whole, absent,
                  hang_whole, hang_absent);
    sutra_close(v.db);
}

/* ---- flood ------------------------------------------------------------ */

static int flood_client(void *arg)
{
    (void)arg;
    sutra_client_options opts = { .timeout_ms = 120000 };
    sutra_client *c;
    if (sutra_client_connect(shm->dir, &opts, &c) != 0)
        return 60;
    sutra_batch *b;
    if (sutra_batch_new(&b) != 0)
        return 61;
    static sutra_pending *ring[FLOOD_WINDOW];
    uint64_t t0 = harness_now_ms();
    for (uint32_t i = 0; i < FLOOD + FLOOD_WINDOW; i++) {
        uint32_t slot = i % FLOOD_WINDOW;
        if (ring[slot]) {
            sutra_write_result r;
            int rc = sutra_pending_wait(ring[slot], -1, &r);
            sutra_pending_free(ring[slot]);
            ring[slot] = NULL;
            if (rc != 0 || r.op_count != 1) {
                fprintf(stderr, "flood write %u: %s\n", i - FLOOD_WINDOW,
                        sutra_strerror(rc));
                return 62;
            }
            shm->flood_seq[i - FLOOD_WINDOW] = r.first_seq;
        }
        if (i >= FLOOD)
            continue;
        sutra_batch_clear(b);
        if (batch_add(b, NS_FLOOD, i) != 0 ||
            sutra_batch_submit(c, b, &ring[slot]) != 0)
            return 63;
        if (i == FLOOD_WINDOW)
            atomic_store(&shm->flood_started, 1);
    }
    shm->flood_ms = harness_now_ms() - t0;
    atomic_store(&shm->flood_done, 1);
    sutra_batch_free(b);
    sutra_client_close(c);
    return 0;
}

/* One synchronous write every 5 ms while the flood lasts. */
static int quiet_client(void *arg)
{
    (void)arg;
    sutra_client *c;
    if (sutra_client_connect(shm->dir, NULL, &c) != 0 || sutra_ping(c) != 0)
        return 70;
    if (!wait_flag(&shm->flood_started, 1, 60000))
        return 71;
    char content[512];
    float emb[DIM];
    uint32_t n = 0;
    while (!atomic_load(&shm->flood_done) && n < QUIET_MAX) {
        sutra_concept_input in;
        sutra_write_result r;
        concept_input(NS_QUIET, n, content, emb, &in);
        struct timespec a, z;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int rc = sutra_learn_concept(c, &in, &r);
        clock_gettime(CLOCK_MONOTONIC, &z);
        if (rc != 0) {
            fprintf(stderr, "quiet write %u: %s\n", n, sutra_strerror(rc));
            return 72;
        }
        shm->quiet_us[n++] = (uint32_t)((z.tv_sec - a.tv_sec) * 1000000 +
                                        (z.tv_nsec - a.tv_nsec) / 1000);
        atomic_store(&shm->quiet_n, n);
        usleep(5000);
    }
    sutra_client_close(c);
    return 0;
}

static void test_clients_flood_drops_nothing_and_stays_bounded(void **state)
{
    (void)state;
    file_view before;
    view_open(&before);
    uint64_t rss0 = proc_status_kb(coordinator, "VmRSS");
    uint64_t hwm0 = proc_status_kb(coordinator, "VmHWM");
    pid_t flood = harness_spawn(flood_client, NULL);
    pid_t quiet = harness_spawn(quiet_client, NULL);
    assert_int_equal(harness_wait(flood), 0);
    assert_int_equal(harness_wait(quiet), 0);
    uint64_t rss1 = proc_status_kb(coordinator, "VmRSS");
    uint64_t hwm1 = proc_status_kb(coordinator, "VmHWM");

    uint32_t n = atomic_load(&shm->quiet_n);
    assert_true(n >= 10);
    qsort(shm->quiet_us, n, sizeof(uint32_t), cmp_u32);
    uint32_t p50 = shm->quiet_us[n / 2];
    uint32_t p99 = shm->quiet_us[(n * 99) / 100];
    print_message("flood: %u writes, %u in flight, in %llu ms (%.0f/s); quiet "
                  "client: %u writes, p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
                  "coordinator VmRSS %llu -> %llu kB, VmHWM %llu -> %llu kB\n",
                  FLOOD, FLOOD_WINDOW, (unsigned long long)shm->flood_ms,
                  FLOOD * 1000.0 / (double)(shm->flood_ms ? shm->flood_ms : 1),
                  n, p50 / 1000.0, p99 / 1000.0, shm->quiet_us[n - 1] / 1000.0,
                  (unsigned long long)rss0, (unsigned long long)rss1,
                  (unsigned long long)hwm0, (unsigned long long)hwm1);
    assert_true(p99 < QUIET_P99_LIMIT_MS * 1000u);
    assert_true(rss0 > 0 && hwm1 > 0);
    assert_true(hwm1 < rss0 + RSS_GROWTH_LIMIT_KB);

    /* every write acknowledged once and applied once */
    assert_true(all_distinct(shm->flood_seq, FLOOD));
    file_view after;
    view_open(&after);
    assert_int_equal(after.stats.version_count - before.stats.version_count,
                     FLOOD + n);
    for (uint32_t i = 0; i < FLOOD; i++)
        assert_int_equal(item_state(&after, NS_FLOOD, i), 1);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(item_state(&after, NS_QUIET, i), 1);
    sutra_close(before.db);
    sutra_close(after.db);
}

/* ---- a peer that stops reading ----------------------------------------- */

#define STALLED_REQUESTS 20000u
#define STALLED_HOLD_MS 20000u

/* Speaks NNG's IPC framing by hand (an 8-byte SP header each way, then
 * messages as a type byte 1, a big-endian u64 length and the body: the REQ
 * request id, then the request) to write stats requests as fast as the
 * coordinator takes them while reading nothing back, as a stopped or hung
 * process would; it holds the connection until the coordinator closes it
 * or STALLED_HOLD_MS pass. */
static int stalled_peer(void *arg)
{
    (void)arg;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/coordinator.sock", shm->dir);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return 80;
    const uint8_t hello[8] = { 0, 'S', 'P', 0, 0x00, 0x30 /* REQ */, 0, 0 };
    uint8_t peer[8];
    if (write(fd, hello, sizeof(hello)) != 8 ||
        read(fd, peer, sizeof(peer)) != 8 || peer[5] != 0x31 /* REP */)
        return 81;
    uint8_t frame[9 + 4 + sizeof(wire_request_header) + sizeof(wire_op_header)];
    size_t body = sizeof(frame) - 9;
    frame[0] = 1;
    for (int i = 0; i < 8; i++)
        frame[1 + i] = (uint8_t)((uint64_t)body >> (56 - 8 * i));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    uint32_t sent = 0;
    size_t off = 0; /* bytes of the current frame already written */
    uint64_t deadline = harness_now_ms() + STALLED_HOLD_MS;
    while (sent < STALLED_REQUESTS && harness_now_ms() < deadline) {
        if (off == 0) {
            uint32_t id = 0x80000000u | (sent + 1);
            for (int i = 0; i < 4; i++)
                frame[9 + i] = (uint8_t)(id >> (24 - 8 * i));
            wire_request_header h;
            wire_request_header_init(&h, WIRE_SYNC_DEFAULT, 77, sent + 1, 1);
            memcpy(frame + 13, &h, sizeof(h));
            wire_encode_simple_op(frame + 13 + sizeof(h), WIRE_OP_STATS);
        }
        ssize_t n = send(fd, frame + off, sizeof(frame) - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            if (atomic_load(&shm->stalled_sent) == 0 && sent > 0)
                atomic_store(&shm->stalled_sent, sent); /* now held up */
            usleep(1000);
            continue;
        }
        if (n < 0) { /* the coordinator hung up */
            atomic_store(&shm->stalled_closed, 1);
            break;
        }
        off += (size_t)n;
        if (off == sizeof(frame)) {
            off = 0;
            sent++;
        }
    }
    if (atomic_load(&shm->stalled_sent) == 0)
        atomic_store(&shm->stalled_sent, sent);
    /* hold, reading nothing, until the coordinator closes the connection
     * (the replies it sent stay unread) */
    while (harness_now_ms() < deadline) {
        struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };
        if (poll(&pfd, 1, 50) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP))) {
            atomic_store(&shm->stalled_closed, 1);
            break;
        }
    }
    close(fd);
    return 0;
}

/* A client that stops reading its replies, with enough requests in flight
 * to fill its connection, must not stop the coordinator from answering
 * everyone else: each reply held up holds one of the coordinator's
 * contexts, and once all are held no request is received.  The
 * coordinator closes such a connection after a reply waited REPLY_SEND_MS
 * (2 s) for it. */
static void test_clients_stalled_reader_does_not_stall_others(void **state)
{
    (void)state;
    pid_t peer = harness_spawn(stalled_peer, NULL);
    assert_true(wait_flag(&shm->stalled_sent, 1, 10000));
    print_message("stalled peer: %u stats requests written before the "
                  "connection filled\n", atomic_load(&shm->stalled_sent));
    usleep(300 * 1000); /* the coordinator's contexts are all held now */
    uint64_t t0 = harness_now_ms();
    assert_serving(0x30000); /* ping and a write, 10 s deadline */
    uint64_t took = harness_now_ms() - t0;
    print_message("another client served after %llu ms\n",
                  (unsigned long long)took);
    assert_true(wait_flag(&shm->stalled_closed, 1, 5000));
    kill(peer, SIGKILL);
    harness_wait(peer);
    assert_serving(0x30001);
}

/* ---- fixtures --------------------------------------------------------- */

static int start(void **state)
{
    (void)state;
    memset(shm, 0, sizeof(*shm));
    char *dir = harness_tmpdir();
    snprintf(shm->dir, sizeof(shm->dir), "%s", dir);
    free(dir);
    coordinator = harness_coordinator_start(shm->dir, COORD_ARGS);
    return coordinator > 0 ? 0 : -1;
}

/* Even after a failed test: a clean SIGTERM exit is part of the check. */
static int stop(void **state)
{
    (void)state;
    int status = harness_coordinator_stop(coordinator, SIGTERM); /* logs */
    harness_rmdir(strdup(shm->dir));
    return status == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    shm = harness_shared_alloc(sizeof(*shm));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_clients_500_concurrent_connections, start, stop),
        cmocka_unit_test_setup_teardown(
            test_clients_garbage_gets_errors_others_served, start, stop),
        cmocka_unit_test_setup_teardown(
            test_clients_vanishing_clients_leave_whole_batches, start, stop),
        cmocka_unit_test_setup_teardown(
            test_clients_flood_drops_nothing_and_stays_bounded, start, stop),
        cmocka_unit_test_setup_teardown(
            test_clients_stalled_reader_does_not_stall_others, start, stop),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
