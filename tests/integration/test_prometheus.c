/*
 * tests/integration/test_prometheus.c — the real coordinator's metrics
 * endpoint (`--metrics`), scraped over plain HTTP the way Prometheus does.
 *
 * A coordinator starts with `--metrics http://127.0.0.1:0/metrics` (any free
 * port; the log names the one chosen).  Writer children learn concepts,
 * forget some and link two; each scrape must then report exactly what was
 * written (generation, concepts, tombstones, associations, commits,
 * requests), answer other paths with 404, and keep answering while writes
 * go on.  A second coordinator asked to serve metrics on the same port must
 * refuse to start, with status 1 (a port in use may be freed, so a
 * supervisor retries) and the address named, rather than run without
 * them.  The test process never uses NNG (clients live in forked
 * children); the scrapes are plain sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sutra/sutra.h"
#include "tests/integration/harness.h"

#define DIM 8u
#define LEARNED 25u
#define FORGOTTEN 5u

/* ---- HTTP, by hand ------------------------------------------------------ */

/* GET `path` from 127.0.0.1:port; returns the status code and the whole
 * response in *out (malloc'd), or -1. */
static int http_get(unsigned port, const char *path, char **out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                     path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf && (r = read(fd, buf + len, cap - len - 1)) > 0)
        len += (size_t)r;
    close(fd);
    if (!buf)
        return -1;
    buf[len] = '\0';
    int status = -1;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        status = -1;
    *out = buf;
    return status;
}

/* The value of sample `name` (no labels) in a scrape, or -1. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(text, "\r\n\r\n"); p && *p;) {
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

/* The port the coordinator's log says it serves metrics on, or 0. */
static unsigned logged_port(const char *dir)
{
    char path[512], line[512];
    snprintf(path, sizeof(path), "%s.log", dir);
    FILE *f = fopen(path, "r");
    unsigned port = 0;
    while (f && fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, "metrics on http://127.0.0.1:");
        if (at)
            port = (unsigned)strtoul(at + strlen("metrics on http://127.0.0.1:"),
                                     NULL, 10);
    }
    if (f)
        fclose(f);
    return port;
}

/* ---- writers (children) ------------------------------------------------- */

typedef struct job {
    const char *dir;
    uint32_t first, count;
    bool forget;
    bool link;
} job;

static int write_job(void *arg)
{
    const job *j = arg;
    sutra_client *c = NULL;
    if (sutra_client_connect(j->dir, NULL, &c) != 0)
        return 1;
    int rc = 0;
    for (uint32_t i = j->first; rc == 0 && i < j->first + j->count; i++) {
        sutra_write_result wr;
        sutra_id id;
        harness_item_id(1, i, &id);
        if (j->forget) {
            rc = sutra_forget_concept(c, &id, &wr);
            continue;
        }
        char content[512];
        float emb[DIM];
        sutra_concept_input in = { 0 };
        in.id = id;
        in.content_len = harness_content(1, i, 0, content, sizeof(content));
        in.content = content;
        harness_embedding(1, i, 0, emb, DIM);
        in.embedding = emb;
        in.dim = DIM;
        in.strength = 1.0f;
        in.confidence = 0.5f;
        rc = sutra_learn_concept(c, &in, &wr);
    }
    if (rc == 0 && j->link) {
        sutra_id a, b;
        sutra_write_result wr;
        harness_item_id(1, 0, &a);
        harness_item_id(1, 1, &b);
        rc = sutra_learn_association(c, &a, &b, 3, 0.75f, &wr);
    }
    sutra_client_close(c);
    return rc == 0 ? 0 : 2;
}

static void run_job(const job *j)
{
    assert_int_equal(harness_wait(harness_spawn(write_job, (void *)j)), 0);
}

/* ---- the test ------------------------------------------------------------ */

static void test_prometheus_scrape(void **state)
{
    (void)state;
    char *dir = harness_tmpdir();
    char dim[16];
    snprintf(dim, sizeof(dim), "%u", DIM);
    const char *args[] = { "--dim", dim, "--metrics",
                           "http://127.0.0.1:0/metrics", NULL };
    pid_t coord = harness_coordinator_start(dir, args);
    assert_true(coord > 0);
    /* logged before the coordinator takes requests; polled all the same */
    unsigned port = 0;
    for (uint64_t until = harness_now_ms() + 5000;
         !(port = logged_port(dir)) && harness_now_ms() < until;)
        usleep(10000);
    assert_true(port > 0);

    char *text = NULL;
    assert_int_equal(http_get(port, "/metrics", &text), 200);
    assert_non_null(strstr(text, "Content-Type: text/plain; version=0.0.4"));
    assert_true(sample(text, "sutra_generation") == 0);
    assert_true(sample(text, "sutra_concepts") == 0);
    assert_true(sample(text, "sutra_read_only") == 0);
    free(text);

    job learn = { dir, 0, LEARNED, false, true };
    run_job(&learn);
    job forget = { dir, LEARNED - FORGOTTEN, FORGOTTEN, true, false };
    run_job(&forget);

    assert_int_equal(http_get(port, "/metrics", &text), 200);
    /* one commit per request here: nothing else writes */
    double writes = LEARNED + 1 + FORGOTTEN;
    assert_true(sample(text, "sutra_generation") == writes);
    assert_true(sample(text, "sutra_last_seq") == writes);
    assert_true(sample(text, "sutra_commits_total") == writes);
    assert_true(sample(text, "sutra_ops_applied_total") == writes);
    assert_true(sample(text, "sutra_concepts") == LEARNED - FORGOTTEN);
    assert_true(sample(text, "sutra_nodes") == LEARNED);
    assert_true(sample(text, "sutra_tombstones") == FORGOTTEN);
    assert_true(sample(text, "sutra_associations") == 1);
    assert_true(sample(text, "sutra_vector_dim") == DIM);
    assert_true(sample(text, "sutra_requests_failed_total") == 0);
    /* connects ping first; every write is a request */
    assert_true(sample(text, "sutra_requests_total") >= writes);
    assert_true(sample(text, "sutra_syncs_total") >= writes); /* --sync commit */
    assert_non_null(strstr(text, "sync_policy=\"commit\""));
    free(text);

    assert_int_equal(http_get(port, "/nothing-here", &text), 404);
    free(text);

    /* the port is taken: a second coordinator refuses to start */
    char *dir2 = harness_tmpdir();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
    pid_t parent = getpid();
    pid_t second = fork();
    assert_true(second >= 0);
    if (second == 0) {
        harness_die_with(parent);
        char log_path[512];
        snprintf(log_path, sizeof(log_path), "%s.log", dir2);
        if (!freopen(log_path, "a", stderr))
            _exit(126);
        execl(harness_coordinator_path(), "sutra-coordinator", dir2,
              "--metrics", url, (char *)NULL);
        _exit(127);
    }
    int st;
    uint64_t deadline = harness_now_ms() + 10000;
    pid_t r;
    while ((r = waitpid(second, &st, WNOHANG)) == 0 && harness_now_ms() < deadline)
        usleep(10000);
    if (r == 0) {
        kill(second, SIGKILL);
        waitpid(second, &st, 0);
        fail_msg("a second coordinator served on a port already in use");
    }
    /* status 1: a port in use may be freed, so a supervisor retries */
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char log2[512], line[512];
    snprintf(log2, sizeof(log2), "%s.log", dir2);
    FILE *f = fopen(log2, "r");
    bool named = false;
    while (f && fgets(line, sizeof(line), f))
        named |= strstr(line, "--metrics") != NULL && strstr(line, url) != NULL;
    if (f)
        fclose(f);
    assert_true(named);
    harness_rmdir(dir2);

    /* still serving, and a clean stop */
    assert_int_equal(http_get(port, "/metrics", &text), 200);
    free(text);
    assert_int_equal(harness_coordinator_stop(coord, SIGTERM), 0);
    assert_true(http_get(port, "/metrics", &text) < 0); /* nothing listens */
    harness_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prometheus_scrape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
