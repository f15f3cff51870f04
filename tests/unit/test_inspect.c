/*
 * tests/unit/test_inspect.c — tools/sutra-inspect as a user runs it: the
 * built binary ($SUTRA_BUILD/bin, default build/bin) is started with
 * fork/exec (no shell) on a small real file written by the store
 * (tests/unit/sample_file.h), and its output and exit codes are checked:
 * 0 on success and for a clean verify, 1 for a damaged file, 2 for usage
 * errors.  `follow` is driven live: the test commits generations through
 * the store while the tool waits on the generation word.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "layout/format.h"
#include "tests/unit/sample_file.h"
#include "tests/unit/store_fixture.h"

#define RESERVE (1ull << 30)
#define OUT_CAP (64 * 1024)

typedef struct fixture {
    sf_dir d;
    char tool[PATH_MAX + 32];
    char out[OUT_CAP];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (sf_dir_make(&f->d, "/tmp/sutra-inspect-XXXXXX") != 0)
        return -1;
    /* $SUTRA_BUILD/bin, or the bin/ beside this test's own tests/ */
    const char *build = getenv("SUTRA_BUILD");
    char self[PATH_MAX] = "build/tests/x";
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0)
        self[n] = '\0';
    *strrchr(self, '/') = '\0';
    char *up = strrchr(self, '/');
    if (up)
        *up = '\0';
    snprintf(f->tool, sizeof(f->tool), "%s/bin/sutra-inspect",
             build && *build ? build : self);
    coord_store *s = sample_open(f->d.path, RESERVE);
    if (!s || sample_standard(s) != 0)
        return -1;
    coord_store_close(s, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sf_dir_remove(&f->d);
    free(f);
    return 0;
}

/* ---- running the tool ------------------------------------------------- */

/* Start the tool with argv[1..] = args (NULL-terminated); its stdout and
 * stderr go to *out_fd. */
static pid_t spawn(const fixture *f, const char *const *args, int *out_fd)
{
    assert_int_equal(access(f->tool, X_OK), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[16] = {f->tool};
        for (int i = 0; args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(f->tool, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

/* Append what the tool printed within timeout_ms (or until EOF). */
static size_t read_some(int fd, char *buf, size_t len, size_t cap,
                        int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (len + 1 < cap && poll(&pfd, 1, timeout_ms) > 0) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        timeout_ms = 50; /* more may follow at once */
    }
    buf[len] = '\0';
    return len;
}

static int wait_exit(pid_t pid)
{
    int status;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fail_msg("the tool did not exit within 10 s");
    return -1;
}

/* Run to completion; returns the exit code, output in f->out. */
static int run(fixture *f, const char *const *args)
{
    int fd;
    pid_t pid = spawn(f, args, &fd);
    size_t len = 0, before;
    do {
        before = len;
        len = read_some(fd, f->out, len, sizeof(f->out), 10000);
    } while (len != before);
    close(fd);
    return wait_exit(pid);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Offset of the first CONCEPT record, found by scanning the log. */
static uint64_t first_concept(const fixture *f, uint8_t **map, size_t *len)
{
    int fd = open(f->d.path, O_RDWR);
    assert_true(fd >= 0);
    *len = (size_t)lseek(fd, 0, SEEK_END);
    *map = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(*map != MAP_FAILED);
    for (uint64_t off = LAYOUT_DATA_START; off < *len;) {
        const layout_rec *rec = (const layout_rec *)(*map + off);
        if (*(const uint64_t *)rec == 0) {
            off += 8;
            continue;
        }
        if (rec->type == LAYOUT_REC_CONCEPT)
            return off;
        off = layout_align_up(off + layout_rec_size(rec), 8);
    }
    fail_msg("no concept record");
    return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void test_inspect_help_and_usage_errors(void **state)
{
    fixture *f = *state;
    assert_int_equal(run(f, (const char *[]){"--help", NULL}), 0);
    assert_non_null(strstr(f->out, "usage: sutra-inspect COMMAND DIR"));
    assert_int_equal(run(f, (const char *[]){"--version", NULL}), 0);
    assert_non_null(strstr(f->out, "sutra-inspect 0."));
    assert_int_equal(run(f, (const char *[]){NULL}), 2);
    assert_non_null(strstr(f->out, "no command given"));
    assert_int_equal(run(f, (const char *[]){"explode", f->d.dir, NULL}), 2);
    assert_non_null(strstr(f->out, "unknown command 'explode'"));
    assert_int_equal(run(f, (const char *[]){"stats", NULL}), 2);
    assert_non_null(strstr(f->out, "no data directory"));
    assert_int_equal(run(f, (const char *[]){"dump", f->d.dir, "--limit", "ten",
                                             NULL}), 2);
    assert_non_null(strstr(f->out, "'ten' is not a number"));
    /* decimal only: no other bases, signs or spaces */
    const char *not_decimal[] = { "0x10", " 5", "+5", "-1", NULL };
    for (int i = 0; not_decimal[i]; i++) {
        assert_int_equal(run(f, (const char *[]){"dump", f->d.dir, "--limit",
                                                 not_decimal[i], NULL}), 2);
        assert_non_null(strstr(f->out, "is not a number"));
    }
    assert_int_equal(run(f, (const char *[]){"header", f->d.dir, "--json", NULL}),
                     2);
    assert_int_equal(run(f, (const char *[]){"stats", f->d.dir, "--frobnicate",
                                             NULL}), 2);
}

static void test_inspect_header(void **state)
{
    fixture *f = *state;
    assert_int_equal(run(f, (const char *[]){"header", f->d.dir, NULL}), 0);
    assert_non_null(strstr(f->out, "magic:            SUTRADAT"));
    assert_non_null(strstr(f->out, "format:           1.0"));
    assert_non_null(strstr(f->out, "vector dim:       4"));
    assert_non_null(strstr(f->out, "header:           valid"));
    assert_non_null(strstr(f->out, "generation:       4"));
    assert_non_null(strstr(f->out, "clean shutdown:   yes"));
    assert_non_null(strstr(f->out, "meta slot 0:      valid, generation 4"));
    assert_non_null(strstr(f->out, "meta slot 1:      valid, generation 3"));
}

static void test_inspect_stats_human_and_json(void **state)
{
    fixture *f = *state;
    assert_int_equal(run(f, (const char *[]){"stats", f->d.dir, NULL}), 0);
    assert_non_null(strstr(f->out, "generation:       4"));
    assert_non_null(strstr(f->out, "concepts:         4 live, 7 versions, 1 "
                                   "tombstones"));
    assert_non_null(strstr(f->out, "hash table:       1024 slots, load 0.39%"));
    assert_int_equal(run(f, (const char *[]){"stats", "--json", f->d.dir, NULL}), 0);
    assert_int_equal(count_lines(f->out), 1);
    assert_true(f->out[0] == '{');
    assert_non_null(strstr(f->out, "\"generation\":4,"));
    assert_non_null(strstr(f->out, "\"concept_count\":4,"));
    assert_non_null(strstr(f->out, "\"tombstone_count\":1,"));
    assert_non_null(strstr(f->out, "\"clean_shutdown\":true"));
}

static void test_inspect_dump(void **state)
{
    fixture *f = *state;
    assert_int_equal(run(f, (const char *[]){"dump", f->d.dir, NULL}), 0);
    /* 2 regions, 7 versions, 1 tombstone, 4 commits */
    assert_int_equal(count_lines(f->out), 14);
    assert_memory_equal(f->out, "12288 HASH_TABLE seq=0", 22);
    assert_non_null(strstr(f->out, " TOMBSTONE seq=5 len=104 "));
    assert_non_null(strstr(f->out, "content=\"the first concept\" len=17 dim=4"));
    assert_non_null(strstr(f->out, "len=17(shared) dim=4(shared) strength=1.5"));
    assert_non_null(strstr(f->out, "COMMIT seq=8 len=176 generation=4 seqs=none"));
    assert_null(strstr(f->out, "BAD-CHECKSUM"));

    uint8_t *map;
    size_t len;
    uint64_t off = first_concept(f, &map, &len);
    munmap(map, len);
    char from[32];
    snprintf(from, sizeof(from), "%llu", (unsigned long long)off);
    assert_int_equal(run(f, (const char *[]){"dump", f->d.dir, "--from", from,
                                             "--limit", "2", NULL}), 0);
    assert_int_equal(count_lines(f->out), 2);
    assert_memory_equal(f->out, from, strlen(from));
    assert_non_null(strstr(f->out, " CONCEPT seq=1 "));
    assert_int_equal(run(f, (const char *[]){"dump", f->d.dir, "--from=13", NULL}),
                     2);
}

static void test_inspect_verify_clean_and_damaged(void **state)
{
    fixture *f = *state;
    assert_int_equal(run(f, (const char *[]){"verify", f->d.dir, NULL}), 0);
    assert_non_null(strstr(f->out, "clean at generation 4"));
    assert_int_equal(run(f, (const char *[]){"verify", f->d.dir, "--generation",
                                             "2", NULL}), 0);
    assert_non_null(strstr(f->out, "clean at generation 2"));

    uint8_t *map;
    size_t len;
    uint64_t off = first_concept(f, &map, &len);
    const layout_rec *rec = (const layout_rec *)(map + off);
    uint64_t next = layout_align_up(off + rec->length, 8);
    map[off + sizeof(layout_concept)] ^= 0x40;           /* content     */
    map[next + offsetof(layout_rec, checksum)] ^= 0x40;  /* next record */
    munmap(map, len);
    char want[64];
    snprintf(want, sizeof(want), "offset %llu: F-LOG-6: checksum mismatch",
             (unsigned long long)off);
    assert_int_equal(run(f, (const char *[]){"verify", f->d.dir, NULL}), 1);
    assert_non_null(strstr(f->out, want));
    assert_int_equal(count_lines(f->out), 1);
    assert_int_equal(run(f, (const char *[]){"verify", "--all", f->d.dir, NULL}), 1);
    assert_non_null(strstr(f->out, want));
    assert_non_null(strstr(f->out, "2 problems at generation 4"));
    assert_int_equal(run(f, (const char *[]){"dump", f->d.dir, NULL}), 0);
    assert_non_null(strstr(f->out, "BAD-CHECKSUM"));
}

/* A region record of one 64-byte unit is as short as a region can be
 * (F-LOG-5); typed ADJ_BLOCK it has no count word, and dump must not
 * read one from the bytes after it (past the committed end, that is past
 * the tool's mapping). */
static void test_inspect_dump_short_adjacency_region(void **state)
{
    fixture *f = *state;
    uint8_t *map;
    size_t len;
    uint64_t off = first_concept(f, &map, &len);
    assert_int_equal(off % LAYOUT_REGION_ALIGN, 0);
    layout_region *r = (layout_region *)(map + off);
    uint64_t size = layout_align_up(layout_rec_size(&r->rec), 8);
    assert_true(size >= LAYOUT_REGION_BODY + 8);
    memset(r, 0, size);
    r->rec.type = LAYOUT_REC_ADJ_BLOCK;
    r->rec.flags = LAYOUT_REC_F_REGION;
    r->rec.length = 1; /* 64 bytes */
    layout_rec_seal(&r->rec);
    uint64_t after = 0x0123456789abcdefull; /* what a count read would see */
    memcpy(map + off + LAYOUT_REGION_BODY, &after, sizeof(after));
    munmap(map, len);
    char from[32], line[64], leaked[64];
    snprintf(from, sizeof(from), "%llu", (unsigned long long)off);
    snprintf(line, sizeof(line), "%llu ADJ_BLOCK seq=0 len=64",
             (unsigned long long)off);
    snprintf(leaked, sizeof(leaked), "count=%llu", (unsigned long long)after);
    assert_int_equal(run(f, (const char *[]){"dump", f->d.dir, "--from", from,
                                             "--limit", "1", NULL}), 0);
    assert_non_null(strstr(f->out, line));
    assert_null(strstr(f->out, leaked));
}

static void test_inspect_unopenable_file(void **state)
{
    fixture *f = *state;
    uint8_t *map;
    size_t len;
    first_concept(f, &map, &len);
    map[0] = 'X'; /* magic */
    munmap(map, len);
    assert_int_equal(run(f, (const char *[]){"verify", f->d.dir, NULL}), 1);
    assert_non_null(strstr(f->out, "offset 0: F-HDR-1: bad magic"));
    assert_int_equal(run(f, (const char *[]){"header", f->d.dir, NULL}), 1);
    assert_non_null(strstr(f->out, "header:           F-HDR-1: bad magic"));
    assert_non_null(strstr(f->out, "meta slot 0:      valid"));
    assert_int_equal(run(f, (const char *[]){"stats", f->d.dir, NULL}), 1);
    assert_non_null(strstr(f->out, "cannot open"));
    assert_int_equal(run(f, (const char *[]){"header", "/nonexistent-sutra",
                                             NULL}), 1);
    assert_non_null(strstr(f->out, "No such file"));
    assert_int_equal(run(f, (const char *[]){"stats", "/nonexistent-sutra",
                                             NULL}), 1);
    assert_non_null(strstr(f->out, "cannot open storage.dat"));
}

/* Wait until the tool printed `text`; fail after 10 s. */
static size_t expect_output(fixture *f, int fd, size_t len, const char *text)
{
    for (int i = 0; i < 100 && !strstr(f->out, text); i++)
        len = read_some(fd, f->out, len, sizeof(f->out), 100);
    assert_non_null(strstr(f->out, text));
    return len;
}

static void commit_one(coord_store *s, const char *name, uint64_t no)
{
    sample_request *r = calloc(1, sizeof(*r));
    sample_begin(r);
    sample_learn(r, name, "followed", NULL, 1.0f, 0);
    assert_int_equal(sample_apply(s, r, no), 0);
    assert_int_equal(sample_commit(s), 0);
    free(r);
}

static void test_inspect_follow_prints_each_generation(void **state)
{
    fixture *f = *state;
    int fd;
    pid_t pid = spawn(f, (const char *[]){"follow", f->d.dir, "--count", "2", NULL},
                      &fd);
    f->out[0] = '\0';
    size_t len = expect_output(f, fd, 0, "from generation 4");
    coord_store *s = sample_open(f->d.path, RESERVE);
    assert_non_null(s);
    commit_one(s, "epsilon", 50);
    commit_one(s, "zeta", 51);
    len = expect_output(f, fd, len, "generation 6 at ");
    assert_int_equal(wait_exit(pid), 0);
    close(fd);
    coord_store_close(s, true);
    assert_non_null(strstr(f->out, "generation 5 at "));
    assert_non_null(strstr(f->out, "seqs 9..9, concepts 5, versions 8"));
    assert_non_null(strstr(f->out, "seqs 10..10, concepts 6, versions 9"));
    assert_int_equal(count_lines(f->out), 3);
}

/* Many generations published between two wake-ups of the tool (it is
 * stopped while they are committed) come out as one burst: each printed
 * once, oldest first, with its own seq range and counts. */
static void test_inspect_follow_prints_a_burst_in_order(void **state)
{
    enum { BURST = 150 };
    fixture *f = *state;
    int fd;
    char count[16];
    snprintf(count, sizeof(count), "%d", BURST);
    pid_t pid = spawn(f, (const char *[]){"follow", f->d.dir, "--count", count,
                                          NULL}, &fd);
    f->out[0] = '\0';
    size_t len = expect_output(f, fd, 0, "from generation 4\n");
    assert_int_equal(kill(pid, SIGSTOP), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
    assert_true(WIFSTOPPED(status));
    coord_store *s = sample_open(f->d.path, RESERVE);
    assert_non_null(s);
    for (int i = 0; i < BURST; i++) {
        char name[16];
        snprintf(name, sizeof(name), "burst%d", i);
        commit_one(s, name, 100 + (uint64_t)i);
    }
    assert_int_equal(kill(pid, SIGCONT), 0);
    char last[32];
    snprintf(last, sizeof(last), "generation %d at ", 4 + BURST);
    expect_output(f, fd, len, last);
    assert_int_equal(wait_exit(pid), 0);
    close(fd);
    coord_store_close(s, true);
    assert_int_equal(count_lines(f->out), 1 + BURST);

    /* after the standard sample: seq 8, 4 concepts, 7 versions */
    const char *line = strchr(f->out, '\n') + 1;
    for (int i = 0; i < BURST; i++) {
        char head[32], body[96];
        snprintf(head, sizeof(head), "generation %d at ", 5 + i);
        snprintf(body, sizeof(body), ": seqs %d..%d, concepts %d, versions %d, ",
                 9 + i, 9 + i, 5 + i, 8 + i);
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        assert_memory_equal(line, head, strlen(head));
        const char *found = strstr(line, body);
        assert_true(found && found < end);
        line = end + 1;
    }
}

static void test_inspect_follow_stops_on_sigterm(void **state)
{
    fixture *f = *state;
    int fd;
    pid_t pid = spawn(f, (const char *[]){"follow", f->d.dir, NULL}, &fd);
    f->out[0] = '\0';
    expect_output(f, fd, 0, "following ");
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_exit(pid), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_inspect_help_and_usage_errors),
        T(test_inspect_header),
        T(test_inspect_stats_human_and_json),
        T(test_inspect_dump),
        T(test_inspect_verify_clean_and_damaged),
        T(test_inspect_dump_short_adjacency_region),
        T(test_inspect_unopenable_file),
        T(test_inspect_follow_prints_each_generation),
        T(test_inspect_follow_prints_a_burst_in_order),
        T(test_inspect_follow_stops_on_sigterm),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
