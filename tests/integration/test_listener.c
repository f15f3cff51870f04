/*
 * tests/integration/test_listener.c — the coordinator keeps accepting new
 * clients after NNG 1.5.2's listener bug (upstream issue 1518) strikes.
 *
 * The trigger is the one from the upstream report: another process tries
 * to listen on the coordinator's socket path.  Its failed attempt connects
 * to the live socket to see whether it is stale and hangs up during the
 * handshake; from then on NNG 1.5.2 accepts connections but never attaches
 * them, so new clients are never answered.  The coordinator's listener
 * watchdog (coordinator/listener.c) must notice and recreate the listener,
 * and a new client must get through well within its deadline.
 *
 * The trigger is a race inside NNG: one probe does not always break the
 * listener, so each round probes several times.  Without the watchdog the
 * test then fails at the client's deadline; with it, the client may be
 * answered at once (no breakage) or after a recreation — both are right, so
 * only the answer is asserted and the recreations are printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "sutra/sutra.h"
#include "tests/integration/harness.h"

static char *dir;

/* In a child: what a second server on the same path does. */
static int second_listener(void *arg)
{
    (void)arg;
    char url[600];
    snprintf(url, sizeof(url), "ipc://%s/coordinator.sock", dir);
    nng_socket s;
    if (nng_rep0_open(&s) != 0)
        return 1;
    int rv = nng_listen(s, url, NULL, 0);
    nng_close(s);
    return rv == NNG_EADDRINUSE ? 0 : 2;
}

/* In a child: a brand-new client must be answered within 12 s. */
static int new_client_pings(void *arg)
{
    (void)arg;
    sutra_client_options opts = { .timeout_ms = 12000, .resend_ms = 1000 };
    sutra_client *c;
    if (sutra_client_connect(dir, &opts, &c) != 0)
        return 1;
    uint64_t start = harness_now_ms();
    int rc = sutra_ping(c);
    print_message("new client answered in %llu ms (%s)\n",
                  (unsigned long long)(harness_now_ms() - start),
                  sutra_strerror(rc));
    sutra_client_close(c);
    return rc == 0 ? 0 : 3;
}

static void test_listener_recovers_from_a_probe_of_its_path(void **state)
{
    (void)state;
    dir = harness_tmpdir();
    /* NNG 1.5.2 never frees the half-open pipes its bug abandons, not even
     * at nng_close: under LeakSanitizer this coordinator would exit 1 for
     * NNG's leak, whose stacks hold no frame of ours.  Leak checking stays
     * on for every other coordinator the tests start. */
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    const char *args[] = { "--dim", "4", NULL };
    pid_t coord = harness_coordinator_start(dir, args);
    unsetenv("ASAN_OPTIONS");
    assert_true(coord > 0);
    for (int round = 0; round < 2; round++) {
        for (int probe = 0; probe < 5; probe++)
            assert_int_equal(harness_wait(harness_spawn(second_listener, NULL)),
                             0);
        assert_int_equal(harness_wait(harness_spawn(new_client_pings, NULL)), 0);
    }
    assert_int_equal(harness_coordinator_stop(coord, SIGTERM), 0);
    char cmd[700];
    snprintf(cmd, sizeof(cmd),
             "printf 'listener recreated %%s times\n' "
             "$(grep -c 'stopped accepting' '%s.log')", dir);
    if (system(cmd) != 0)
        print_message("could not count recreations\n");
    harness_rmdir(dir);
}

/* In a child: three clients fill --max-connections 3; a fourth is closed
 * at once (its pings time out) and gets in when one of them leaves. */
static int fourth_client_waits_for_a_place(void *arg)
{
    (void)arg;
    sutra_client_options opts = { .timeout_ms = 5000 };
    sutra_client *c[3];
    for (int i = 0; i < 3; i++)
        if (sutra_client_connect(dir, &opts, &c[i]) != 0 || sutra_ping(c[i]) != 0)
            return 1;
    sutra_client_options quick = { .timeout_ms = 1000 };
    sutra_client *late;
    if (sutra_client_connect(dir, &quick, &late) != 0)
        return 2;
    int rc = sutra_ping(late);
    print_message("fourth client over the cap: %s\n", sutra_strerror(rc));
    if (rc != SUTRA_ETIMEDOUT)
        return 3;
    sleep(5); /* full through two of the listener's self-probes */
    for (int i = 0; i < 3; i++) /* the three stay served */
        if (sutra_ping(c[i]) != 0)
            return 4;
    sutra_client_close(c[0]);
    for (int tries = 0; tries < 10 && rc != 0; tries++)
        rc = sutra_ping(late);
    print_message("fourth client after one left: %s\n", sutra_strerror(rc));
    sutra_client_close(late);
    sutra_client_close(c[1]);
    sutra_client_close(c[2]);
    return rc == 0 ? 0 : 5;
}

/* --max-connections bounds the clients served at once (each may make NNG
 * hold a buffer of up to max_message while its request arrives).  The
 * listener's own probe is not counted against it: with the socket full for
 * longer than the watchdog's checks, the listener must not be recreated
 * (which would drop every client). */
static void test_listener_connection_cap(void **state)
{
    (void)state;
    dir = harness_tmpdir();
    const char *args[] = { "--dim", "4", "--max-connections", "3", NULL };
    pid_t coord = harness_coordinator_start(dir, args);
    assert_true(coord > 0);
    assert_int_equal(harness_wait(harness_spawn(fourth_client_waits_for_a_place,
                                                NULL)),
                     0);
    assert_int_equal(harness_coordinator_stop(coord, SIGTERM), 0);
    char cmd[700];
    snprintf(cmd, sizeof(cmd),
             "grep -q 'refusing client connections' '%s.log' && "
             "! grep -q 'stopped accepting' '%s.log'", dir, dir);
    assert_int_equal(system(cmd), 0);
    harness_rmdir(dir);
}

/* ---- a TCP request socket ------------------------------------------- */

/* A free TCP port on 127.0.0.1, or 0. */
static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A connection to 127.0.0.1:port that completed NNG's SP handshake as a
 * REQ peer (the 8-byte header each way), or -1.  The test process speaks
 * the framing by hand: it never uses NNG itself (harness.h). */
static int sp_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const uint8_t hello[8] = { 0, 'S', 'P', 0, 0x00, 0x30 /* REQ */, 0, 0 };
    uint8_t peer[8];
    struct timeval tv = { 2, 0 };
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, hello, sizeof(hello)) != 8 ||
        read(fd, peer, sizeof(peer)) != 8 || peer[5] != 0x31 /* REP */) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Whether the coordinator closed fd within ms (it never writes to a peer
 * that sent no request). */
static bool closed_within(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };
    return poll(&pfd, 1, ms) > 0;
}

/* The connection cap on a request socket that is not ipc://: there the
 * listener's self-probe cannot be told from a client, so with the cap
 * reached it is refused like one.  That refusal still proves the listener
 * hands pipes over; taken for a stuck listener, it made the watchdog
 * recreate the listener every few seconds, dropping the client that was
 * being served. */
static void test_listener_connection_cap_on_tcp(void **state)
{
    (void)state;
    dir = harness_tmpdir();
    unsigned port = free_port();
    assert_true(port > 0);
    char url[64], log[600];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
    snprintf(log, sizeof(log), "%s.log", dir);
    pid_t parent = getpid();
    pid_t coord = fork();
    if (coord == 0) {
        harness_die_with(parent);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(126);
        const char *exe = harness_coordinator_path();
        execl(exe, exe, dir, "--dim", "4", "--socket", url,
              "--max-connections", "1", (char *)NULL);
        _exit(127);
    }
    assert_true(coord > 0);
    /* the one place: taken once the coordinator listens and whatever
     * connection came before has left */
    int held = -1;
    for (uint64_t until = harness_now_ms() + 10000;
         held < 0 && harness_now_ms() < until;) {
        held = sp_connect(port);
        if (held >= 0 && closed_within(held, 500)) {
            close(held);
            held = -1;
        }
        if (held < 0)
            usleep(100 * 1000);
    }
    assert_true(held >= 0);
    /* the cap holds: a second connection is closed at once */
    int second = sp_connect(port);
    if (second >= 0) {
        assert_true(closed_within(second, 2000));
        close(second);
    }
    /* and the one in place stays through several of the watchdog's
     * probes (COORD_LISTENER_CHECK_MS apart, two failures to recreate) */
    bool dropped = closed_within(held, 10000);
    close(held);
    assert_int_equal(harness_coordinator_stop(coord, SIGTERM), 0);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "grep -q 'stopped accepting' '%s'", log);
    bool recreated = system(cmd) == 0;
    harness_rmdir(dir);
    assert_false(dropped);
    assert_false(recreated);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_recovers_from_a_probe_of_its_path),
        cmocka_unit_test(test_listener_connection_cap),
        cmocka_unit_test(test_listener_connection_cap_on_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
