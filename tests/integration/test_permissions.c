/*
 * tests/integration/test_permissions.c — who may write (P-AUTH-1) and who
 * may read.
 *
 * The coordinator's sockets are 0660 and its storage.dat 0640, so the file
 * system decides who may connect and who may map the file; --allow-uid and
 * --allow-gid then decide, from the kernel's peer credentials, which
 * connected processes may write.  These tests run as root and fork children
 * that drop to an unprivileged user (nobody, 65534): such a child can be
 * let in to the socket (the test hands it the directory and the socket
 * through their group), is refused writes with SUTRA_EPERM while ping and
 * stats keep answering, changes nothing, and cannot open the data
 * directory at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <grp.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sutra/sutra.h"
#include "tests/integration/harness.h"

#define DIM 8
#define UNPRIVILEGED 65534u /* nobody / nogroup on Debian */

typedef struct shared_state {
    const char *dir;
    uint32_t writer;       /* item namespace of the next child       */
    int learn_rc;          /* what the child's calls returned         */
    int batch_rc;
    int flush_rc;
    int ping_rc;
    int stats_rc;
    int open_rc;
    uint64_t stats_generation;
    char last_error[256];
    _Atomic uint32_t refused;   /* writes refused with SUTRA_EPERM so far */
    uint32_t closing_replies;   /* "shutting down" answers to nobody      */
} shared_state;

static shared_state *shm;
static char *dir;          /* the current test's data directory       */
static pid_t coordinator;  /* and its coordinator                      */

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

/* Become nobody:nogroup with no supplementary groups.  Order matters:
 * groups and gid first, while still root. */
static int drop_privileges(void)
{
    if (setgroups(0, NULL) != 0 || setgid(UNPRIVILEGED) != 0 ||
        setuid(UNPRIVILEGED) != 0)
        return -1;
    return getuid() == UNPRIVILEGED && geteuid() == UNPRIVILEGED &&
                   getgid() == UNPRIVILEGED
               ? 0
               : -1;
}

/* A child's attempt at everything a client does; results go to shm. */
static int try_everything(void *arg)
{
    bool unprivileged = arg != NULL;
    if (unprivileged && drop_privileges() != 0)
        return 90;
    sutra_db *db = NULL;
    shm->open_rc = sutra_open(shm->dir, NULL, &db);
    sutra_close(db);
    sutra_client_options opts = { .timeout_ms = 5000 };
    sutra_client *c;
    if (sutra_client_connect(shm->dir, &opts, &c) != 0)
        return 91;
    shm->ping_rc = sutra_ping(c);
    sutra_server_stats st;
    shm->stats_rc = sutra_client_stats(c, &st);
    shm->stats_generation = shm->stats_rc == 0 ? st.generation : 0;
    char content[512];
    float emb[DIM];
    sutra_concept_input in;
    sutra_write_result r;
    concept_input(shm->writer, 0, content, emb, &in);
    shm->learn_rc = sutra_learn_concept(c, &in, &r);
    snprintf(shm->last_error, sizeof(shm->last_error), "%s",
             sutra_client_last_error(c));
    sutra_batch *b;
    if (sutra_batch_new(&b) != 0)
        return 92;
    concept_input(shm->writer, 1, content, emb, &in);
    sutra_batch_learn_concept(b, &in);
    concept_input(shm->writer, 2, content, emb, &in);
    sutra_batch_learn_concept(b, &in);
    shm->batch_rc = sutra_batch_commit(c, b, &r);
    sutra_batch_free(b);
    shm->flush_rc = sutra_flush(c, &r);
    sutra_client_close(c);
    return 0;
}

/* As nobody, write until the coordinator is gone, counting the refusals
 * and any answer that says it is shutting down instead. */
static int write_until_gone(void *arg)
{
    (void)arg;
    if (drop_privileges() != 0)
        return 90;
    sutra_client_options opts = { .timeout_ms = 1000 };
    sutra_client *c;
    if (sutra_client_connect(shm->dir, &opts, &c) != 0)
        return 91;
    char content[512];
    float emb[DIM];
    sutra_concept_input in;
    sutra_write_result r;
    for (uint32_t i = 0;; i++) {
        concept_input(shm->writer, i, content, emb, &in);
        int rc = sutra_learn_concept(c, &in, &r);
        if (rc == SUTRA_EPERM) {
            atomic_fetch_add(&shm->refused, 1);
            continue;
        }
        shm->learn_rc = rc;
        snprintf(shm->last_error, sizeof(shm->last_error), "%s",
                 sutra_client_last_error(c));
        if (strstr(shm->last_error, "shutting down"))
            shm->closing_replies++;
        break;
    }
    _exit(0); /* no close: NNG 1.5.2 may hang in it after a lost peer */
}

/* Before each child: results that no call returns. */
static void reset_results(uint32_t writer)
{
    memset(shm, 0, sizeof(*shm));
    shm->dir = dir;
    shm->writer = writer;
    shm->learn_rc = shm->batch_rc = shm->flush_rc = 1;
    shm->ping_rc = shm->stats_rc = shm->open_rc = 1;
}

/* Let nobody reach the sockets through their group, nothing else: the
 * directory stays closed to others and storage.dat stays 0640 root:root. */
static void admit_group(void)
{
    char path[512];
    assert_int_equal(chown(dir, 0, UNPRIVILEGED), 0);
    assert_int_equal(chmod(dir, 0750), 0);
    const char *names[] = { "coordinator.sock", "events.sock" };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0660); /* sockets are 0660 */
        assert_int_equal(chown(path, 0, UNPRIVILEGED), 0);
    }
    snprintf(path, sizeof(path), "%s/storage.dat", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640); /* data is 0640 */
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_gid, 0);
}

static bool item_present(uint32_t writer, uint32_t index)
{
    sutra_db *db;
    assert_int_equal(sutra_open(dir, NULL, &db), 0);
    struct sutra_snapshot snap;
    assert_int_equal(sutra_snapshot(db, &snap), 0);
    sutra_id id;
    harness_item_id(writer, index, &id);
    sutra_concept c;
    int rc = sutra_get(&snap, &id, &c);
    bool found = rc == 0 && harness_item_matches(&c, writer, index, 0, DIM);
    assert_true(rc == 0 || rc == SUTRA_ENOTFOUND);
    sutra_close(db);
    return found;
}

static uint64_t file_generation(void)
{
    sutra_db *db;
    assert_int_equal(sutra_open(dir, NULL, &db), 0);
    uint64_t g = sutra_generation(db);
    sutra_close(db);
    return g;
}

/* A coordinator on a fresh directory; `flag` NULL for no allow-list. */
static void start(const char *flag, const char *who)
{
    const char *args[] = { "--dim", "8", flag, who, NULL };
    dir = harness_tmpdir();
    coordinator = harness_coordinator_start(dir, args);
    assert_true(coordinator > 0);
}

/* Per test, even a failed one: stop the coordinator, remove the files. */
static int stop(void **state)
{
    (void)state;
    int status = coordinator > 0
                     ? harness_coordinator_stop(coordinator, SIGTERM)
                     : 0;
    coordinator = 0;
    if (dir)
        harness_rmdir(dir);
    dir = NULL;
    return status == 0 ? 0 : -1;
}

/* --allow-uid 0: root writes, nobody is refused and cannot read either. */
static void test_permissions_uid_allow_list(void **state)
{
    (void)state;
    start("--allow-uid", "root");
    admit_group();

    reset_results(1);
    uint64_t before = file_generation();
    assert_int_equal(harness_wait(harness_spawn(try_everything, "nobody")), 0);
    assert_int_equal(shm->ping_rc, 0);       /* connected: open to anyone */
    assert_int_equal(shm->stats_rc, 0);
    assert_int_equal(shm->stats_generation, before);
    assert_int_equal(shm->learn_rc, SUTRA_EPERM);
    assert_non_null(strstr(shm->last_error, "uid 65534 may not write"));
    assert_int_equal(shm->batch_rc, SUTRA_EPERM);
    assert_int_equal(shm->flush_rc, SUTRA_EPERM);
    assert_int_equal(shm->open_rc, EACCES); /* 0750 root:nogroup, 0640 file */
    assert_int_equal(file_generation(), before); /* nothing changed */
    for (uint32_t i = 0; i < 3; i++)
        assert_false(item_present(1, i));

    reset_results(2);
    assert_int_equal(harness_wait(harness_spawn(try_everything, NULL)), 0);
    assert_int_equal(shm->open_rc, 0);
    assert_int_equal(shm->learn_rc, 0);
    assert_int_equal(shm->batch_rc, 0);
    assert_int_equal(shm->flush_rc, 0);
    for (uint32_t i = 0; i < 3; i++)
        assert_true(item_present(2, i));
    assert_true(file_generation() >= before + 2);

}

/* --allow-gid nogroup: the check is by group; root (gid 0) is refused. */
static void test_permissions_gid_allow_list(void **state)
{
    (void)state;
    start("--allow-gid", "65534");
    admit_group();

    reset_results(3);
    uint64_t before = file_generation();
    assert_int_equal(harness_wait(harness_spawn(try_everything, NULL)), 0);
    assert_int_equal(shm->ping_rc, 0);
    assert_int_equal(shm->learn_rc, SUTRA_EPERM);
    assert_non_null(strstr(shm->last_error, "uid 0 may not write"));
    assert_int_equal(shm->batch_rc, SUTRA_EPERM);
    assert_int_equal(file_generation(), before);

    reset_results(4);
    assert_int_equal(harness_wait(harness_spawn(try_everything, "nobody")), 0);
    assert_int_equal(shm->learn_rc, 0);
    assert_int_equal(shm->batch_rc, 0);
    assert_int_equal(shm->open_rc, EACCES); /* may write, may not read */
    for (uint32_t i = 0; i < 3; i++) {
        assert_false(item_present(3, i));
        assert_true(item_present(4, i));
    }
}

/* Without an allow-list the socket's mode is the only gate: a process
 * that can connect may write. */
static void test_permissions_no_allow_list_admits_any_connected_peer(
    void **state)
{
    (void)state;
    start(NULL, NULL);
    admit_group();
    reset_results(5);
    assert_int_equal(harness_wait(harness_spawn(try_everything, "nobody")), 0);
    assert_int_equal(shm->learn_rc, 0);
    assert_int_equal(shm->batch_rc, 0);
    assert_true(item_present(5, 0));
}

/* While the coordinator stops it still answers writes that arrive, and
 * the allow-list still decides first: a refused sender gets SUTRA_EPERM,
 * not "shutting down" (nor another client's reply from the duplicate
 * table), until the socket closes. */
static void test_permissions_refused_while_stopping(void **state)
{
    (void)state;
    start("--allow-uid", "root");
    admit_group();
    reset_results(6);
    pid_t child = harness_spawn(write_until_gone, NULL);
    /* the child stops early only on a failure, which it records */
    for (int i = 0; i < 20000 && atomic_load(&shm->refused) < 100; i++) {
        if (waitpid(child, NULL, WNOHANG) == child) {
            print_error("the writer stopped after %u refusals: %d (%s)\n",
                        atomic_load(&shm->refused), shm->learn_rc,
                        shm->last_error);
            fail();
        }
        usleep(1000);
    }
    assert_true(atomic_load(&shm->refused) >= 100);
    assert_int_equal(harness_coordinator_stop(coordinator, SIGTERM), 0);
    coordinator = 0;
    assert_int_equal(harness_wait(child), 0);
    print_message("%u writes refused; then %d (%s)\n",
                  atomic_load(&shm->refused), shm->learn_rc, shm->last_error);
    assert_int_equal(shm->closing_replies, 0);
    assert_true(shm->learn_rc == SUTRA_ECLOSED ||
                shm->learn_rc == SUTRA_ETIMEDOUT);
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "test_permissions must run as root: it switches "
                "users to check the allow-list\n");
        return -1;
    }
    shm = harness_shared_alloc(sizeof(*shm));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_permissions_uid_allow_list, stop),
        cmocka_unit_test_teardown(test_permissions_gid_allow_list, stop),
        cmocka_unit_test_teardown(
            test_permissions_no_allow_list_admits_any_connected_peer, stop),
        cmocka_unit_test_teardown(test_permissions_refused_while_stopping,
                                  stop),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
