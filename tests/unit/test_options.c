/*
 * tests/unit/test_options.c — the coordinator's command line: defaults,
 * sizes with K/M/G suffixes, sync policies (and bad ones), every flag, and
 * the Unix socket path limit, which must fail at parse time with a message
 * naming the limit rather than later inside NNG.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/options.h"
#include "sutra/sutra.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char err[256];

static int parse(int argc, char **argv, coord_options *o)
{
    err[0] = '\0';
    return coord_options_parse(argc, argv, o, err, sizeof(err));
}

static void test_options_defaults(void **state)
{
    (void)state;
    char *argv[] = { "sutra-coordinator", "/var/lib/sutra/" };
    coord_options o;
    assert_int_equal(parse(ARGC(argv), argv, &o), 0);
    assert_string_equal(o.dir, "/var/lib/sutra");
    assert_string_equal(o.socket_url, "ipc:///var/lib/sutra/coordinator.sock");
    assert_string_equal(o.events_url, "ipc:///var/lib/sutra/events.sock");
    assert_string_equal(o.metrics_url, ""); /* off by default */
    assert_int_equal(o.sync_policy, COORD_SYNC_COMMIT);
    assert_int_equal(o.max_message, 64u << 20);
    assert_int_equal(o.max_content, 16u << 20);
    assert_int_equal(o.max_batch, COORD_DEFAULT_MAX_BATCH);
    assert_int_equal(o.dim, 384);
    assert_false(o.dim_explicit);
    assert_int_equal(o.contexts, 64);
    assert_int_equal(o.log_level, COORD_LOG_INFO);
    assert_int_equal(o.checkpoint_ms, 0); /* the policy's default */
    assert_false(o.help);
    assert_false(o.version);
}

static void test_options_relative_dir_made_absolute(void **state)
{
    (void)state;
    char cwd[PATH_MAX], want[PATH_MAX + 16];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(want, sizeof(want), "%s/data", cwd);
    char *argv[] = { "sutra-coordinator", "./data" };
    coord_options o;
    if (strlen(want) + strlen("/coordinator.sock") > COORD_IPC_PATH_MAX) {
        assert_int_equal(parse(ARGC(argv), argv, &o), SUTRA_EINVAL);
        return; /* run from a deep directory: the limit applies */
    }
    assert_int_equal(parse(ARGC(argv), argv, &o), 0);
    assert_string_equal(o.dir, want);
    assert_non_null(strstr(o.socket_url, want));
}

static void test_options_sizes(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(coord_size_parse("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(coord_size_parse("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(coord_size_parse("64K", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(coord_size_parse("16m", &v), 0);
    assert_int_equal(v, 16u << 20);
    assert_int_equal(coord_size_parse("2G", &v), 0);
    assert_int_equal(v, 2ull << 30);
    v = 7;
    const char *bad[] = { "", "K", "12X", "-1", "+5", " 5", "1KB", "1.5M",
                          "99999999999999999999", "17179869184G", NULL };
    for (int i = 0; bad[i]; i++)
        assert_int_equal(coord_size_parse(bad[i], &v), SUTRA_EINVAL);
    assert_int_equal(v, 7); /* untouched on failure */
    assert_int_equal(coord_size_parse(NULL, &v), SUTRA_EINVAL);
}

static void test_options_sync_policies(void **state)
{
    (void)state;
    enum coord_sync_policy p = COORD_SYNC_NONE;
    uint64_t ms = 99;
    assert_int_equal(coord_sync_parse("commit", &p, &ms), 0);
    assert_int_equal(p, COORD_SYNC_COMMIT);
    assert_int_equal(ms, 0);
    assert_int_equal(coord_sync_parse("none", &p, &ms), 0);
    assert_int_equal(p, COORD_SYNC_NONE);
    assert_int_equal(coord_sync_parse("interval:250", &p, &ms), 0);
    assert_int_equal(p, COORD_SYNC_INTERVAL);
    assert_int_equal(ms, 250);
    const char *bad[] = { "", "Commit", "always", "interval", "interval:",
                          "interval:0", "interval:abc", "interval:5s",
                          "interval:1K", "interval:-5", "interval:3600001",
                          "none ", NULL };
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(coord_sync_parse(bad[i], &p, &ms), SUTRA_EINVAL);
        assert_int_equal(p, COORD_SYNC_INTERVAL); /* untouched */
        assert_int_equal(ms, 250);
    }
    char *argv[] = { "c", "/d", "--sync", "sometimes" };
    coord_options o;
    assert_int_equal(parse(ARGC(argv), argv, &o), SUTRA_EINVAL);
    assert_non_null(strstr(err, "--sync"));
    assert_string_equal(coord_sync_policy_name(COORD_SYNC_INTERVAL), "interval");
}

static void test_options_every_flag(void **state)
{
    (void)state;
    char *argv[] = { "c", "--socket", "ipc:///tmp/s.sock", "/d",
                     "--events=tcp://127.0.0.1:5555", "--sync", "interval:20",
                     "--max-message=1M", "--max-content", "4K",
                     "--max-batch", "100", "--dim", "0", "--contexts", "8",
                     "--max-connections", "32", "--log-level", "debug",
                     "--metrics", "http://127.0.0.1:9464/metrics",
                     "--checkpoint", "250" };
    coord_options o;
    assert_int_equal(parse(ARGC(argv), argv, &o), 0);
    assert_string_equal(o.dir, "/d");
    assert_string_equal(o.socket_url, "ipc:///tmp/s.sock");
    assert_string_equal(o.events_url, "tcp://127.0.0.1:5555");
    assert_int_equal(o.sync_policy, COORD_SYNC_INTERVAL);
    assert_int_equal(o.sync_interval_ms, 20);
    assert_int_equal(o.max_message, 1u << 20);
    assert_int_equal(o.max_content, 4096);
    assert_int_equal(o.max_batch, 100);
    assert_int_equal(o.max_connections, 32);
    assert_int_equal(o.dim, 0);
    assert_true(o.dim_explicit);
    assert_int_equal(o.contexts, 8);
    assert_int_equal(o.log_level, COORD_LOG_DEBUG);
    assert_string_equal(o.metrics_url, "http://127.0.0.1:9464/metrics");
    assert_int_equal(o.checkpoint_ms, 250);

    /* the largest --max-message NNG's receive limit can take */
    char *big[] = { "c", "/d", "--max-message", "4194239K" };
    assert_int_equal(parse(ARGC(big), big, &o), 0);
    assert_int_equal(o.max_message, 4194239ull << 10);
}

static void expect_bad(int argc, char **argv, const char *in_message)
{
    coord_options o;
    memset(&o, 0xAB, sizeof(o));
    assert_int_equal(parse(argc, argv, &o), SUTRA_EINVAL);
    assert_non_null(strstr(err, in_message));
    assert_int_equal(((unsigned char *)&o)[0], 0xAB); /* untouched */
}

static void test_options_bad_flags(void **state)
{
    (void)state;
    char *a1[] = { "c", "/d", "--contexts", "0" };
    expect_bad(ARGC(a1), a1, "--contexts");
    char *a2[] = { "c", "/d", "--dim", "70000" };
    expect_bad(ARGC(a2), a2, "--dim");
    char *a3[] = { "c", "/d", "--log-level", "loud" };
    expect_bad(ARGC(a3), a3, "--log-level");
    char *a4[] = { "c", "/d", "--frobnicate", "1" };
    expect_bad(ARGC(a4), a4, "unknown option");
    char *a4b[] = { "c", "/d", "--frobnicate" }; /* not "needs a value" */
    expect_bad(ARGC(a4b), a4b, "unknown option");
    char *a4c[] = { "c", "/d", "--frobnicate=2" };
    expect_bad(ARGC(a4c), a4c, "unknown option");
    /* a flag without '=' is copied into a 32-byte buffer: 31 chars fit,
     * 32 are refused before the copy */
    char *a4d[] = { "c", "/d", "--abcdefghijklmnopqrstuvwxyz123" };
    expect_bad(ARGC(a4d), a4d, "unknown option");
    char *a4e[] = { "c", "/d", "--abcdefghijklmnopqrstuvwxyz1234" };
    expect_bad(ARGC(a4e), a4e, "unknown option");
    char *a5[] = { "c", "/d", "--max-batch" };
    expect_bad(ARGC(a5), a5, "needs a value");
    char *a6[] = { "c", "--dim", "8" };
    expect_bad(ARGC(a6), a6, "missing DIR");
    char *a7[] = { "c", "/d", "/e" };
    expect_bad(ARGC(a7), a7, "unexpected argument");
    char *a8[] = { "c", "/d", "--max-message", "1K", "--max-content", "4K" };
    expect_bad(ARGC(a8), a8, "larger than");
    char *a9[] = { "c", "/d", "--max-message", "12" };
    expect_bad(ARGC(a9), a9, "--max-message");
    char *a10[] = { "c", "/d", "--max-batch", "0" };
    expect_bad(ARGC(a10), a10, "--max-batch");
    char *a11[] = { "c", "/d", "--socket", "ipc:///tmp/x", "--events",
                    "ipc:///tmp/x" };
    expect_bad(ARGC(a11), a11, "must differ");
    char *a12[] = { "c", "/d", "--socket", "nonsense" };
    expect_bad(ARGC(a12), a12, "not a URL");
    char *a13[] = { "c", "/d", "--max-content", "2G" };
    expect_bad(ARGC(a13), a13, "--max-content");
    char *a14[] = { "c", "/d", "--metrics", "tcp://127.0.0.1:9464" };
    expect_bad(ARGC(a14), a14, "--metrics");
    char *a15[] = { "c", "/d", "--metrics", "http://" };
    expect_bad(ARGC(a15), a15, "--metrics");
    /* NNG's receive limit is max_message + 64 KiB in a u32 */
    char *a16[] = { "c", "/d", "--max-message", "4194240K" };
    expect_bad(ARGC(a16), a16, "--max-message");
    char *a30[] = { "c", "/d", "--max-connections", "0" };
    expect_bad(ARGC(a30), a30, "--max-connections");
    /* counts are numbers, not sizes */
    char *a17[] = { "c", "/d", "--contexts", "1K" };
    expect_bad(ARGC(a17), a17, "--contexts");
    char *a18[] = { "c", "/d", "--dim", "1K" };
    expect_bad(ARGC(a18), a18, "--dim");
    char *a19[] = { "c", "/d", "--max-batch", "2k" };
    expect_bad(ARGC(a19), a19, "--max-batch");
    char *a20[] = { "c", "/d", "--checkpoint", "0" };
    expect_bad(ARGC(a20), a20, "--checkpoint");
    char *a21[] = { "c", "/d", "--checkpoint", "3600001" };
    expect_bad(ARGC(a21), a21, "--checkpoint");
    char *a22[] = { "c", "/d", "--checkpoint", "1s" };
    expect_bad(ARGC(a22), a22, "--checkpoint");
}

/* A --max-message below the default --max-content (docs/operations.md's
 * "--max-message 8M --max-connections 256") is a valid command line: the
 * default content limit follows it down.  Only an explicit --max-content
 * above --max-message contradicts it. */
static void test_options_max_message_below_default_content(void **state)
{
    (void)state;
    char *a[] = { "c", "/d", "--max-message", "8M", "--max-connections",
                  "256" };
    coord_options o;
    assert_int_equal(parse(ARGC(a), a, &o), 0);
    assert_int_equal(o.max_message, 8u << 20);
    assert_int_equal(o.max_content, 8u << 20);
    assert_int_equal(o.max_connections, 256);

    char *b[] = { "c", "/d", "--max-message=1K" };
    assert_int_equal(parse(ARGC(b), b, &o), 0);
    assert_int_equal(o.max_content, 1024);

    /* explicit, in either order, and not larger: kept as given */
    char *c[] = { "c", "/d", "--max-content", "4K", "--max-message", "8K" };
    assert_int_equal(parse(ARGC(c), c, &o), 0);
    assert_int_equal(o.max_content, 4096);
    /* a larger default --max-message leaves the default content limit */
    char *d[] = { "c", "/d", "--max-message", "1G" };
    assert_int_equal(parse(ARGC(d), d, &o), 0);
    assert_int_equal(o.max_content, COORD_DEFAULT_MAX_CONTENT);
    /* explicit and larger: refused (test_options_bad_flags, a8) */
    char *e[] = { "c", "/d", "--max-content", "16M", "--max-message", "8M" };
    expect_bad(ARGC(e), e, "larger than");
}

static void test_options_socket_path_too_long(void **state)
{
    (void)state;
    /* "/" + 90 chars + "/coordinator.sock" = 108 bytes > 107 */
    char dir[128];
    dir[0] = '/';
    memset(dir + 1, 'a', 90);
    dir[91] = '\0';
    char *argv[] = { "c", dir };
    expect_bad(ARGC(argv), argv, "107");
    assert_non_null(strstr(err, "--socket"));

    /* 89 chars: coordinator.sock fits exactly (107), events.sock too */
    dir[90] = '\0';
    coord_options o;
    assert_int_equal(parse(ARGC(argv), argv, &o), 0);
    assert_int_equal(strlen(o.socket_url) - strlen("ipc://"), 107);

    /* a long DIR is fine when both sockets are given explicitly */
    memset(dir + 1, 'a', 100);
    dir[101] = '\0';
    char *b[] = { "c", dir, "--socket", "ipc:///tmp/c.sock", "--events",
                  "ipc:///tmp/e.sock" };
    assert_int_equal(parse(ARGC(b), b, &o), 0);
    char longurl[160] = "ipc:///";
    memset(longurl + 7, 'b', 110);
    longurl[117] = '\0';
    char *c[] = { "c", "/d", "--events", longurl };
    expect_bad(ARGC(c), c, "--events");
}

static void test_options_allow_lists(void **state)
{
    (void)state;
    char *d[] = { "c", "/d" };
    coord_options o;
    assert_int_equal(parse(ARGC(d), d, &o), 0);
    assert_int_equal(o.allow_uid_count, 0); /* default: anyone may write */
    assert_int_equal(o.allow_gid_count, 0);

    /* names and numbers, repeatable, duplicates kept once */
    char *a[] = { "c", "/d", "--allow-uid", "0,root", "--allow-uid=nobody",
                  "--allow-gid", "nogroup,5", "--allow-uid", "1000" };
    assert_int_equal(parse(ARGC(a), a, &o), 0);
    assert_int_equal(o.allow_uid_count, 3);
    assert_int_equal(o.allow_uids[0], 0);
    assert_int_equal(o.allow_uids[1], 65534);
    assert_int_equal(o.allow_uids[2], 1000);
    assert_int_equal(o.allow_gid_count, 2);
    assert_int_equal(o.allow_gids[0], 65534);
    assert_int_equal(o.allow_gids[1], 5);

    char *b1[] = { "c", "/d", "--allow-uid", "no-such-user-here" };
    expect_bad(ARGC(b1), b1, "no user named 'no-such-user-here'");
    char *b2[] = { "c", "/d", "--allow-gid", "no-such-group-here" };
    expect_bad(ARGC(b2), b2, "no group named 'no-such-group-here'");
    char *b3[] = { "c", "/d", "--allow-uid", "1,,2" };
    expect_bad(ARGC(b3), b3, "empty");
    char *b4[] = { "c", "/d", "--allow-uid", "" };
    expect_bad(ARGC(b4), b4, "empty");
    char *b5[] = { "c", "/d", "--allow-uid", "0," };
    expect_bad(ARGC(b5), b5, "empty");
    char *b6[] = { "c", "/d", "--allow-uid", "4294967295" }; /* (uid_t)-1 */
    expect_bad(ARGC(b6), b6, "--allow-uid");
    char *b7[] = { "c", "/d", "--allow-gid", "1K" };
    expect_bad(ARGC(b7), b7, "'1K' is not a group name or number");
    char *b8[] = { "c", "/d", "--allow-uid", "-1" };
    expect_bad(ARGC(b8), b8, "--allow-uid");
    char *b9[] = { "c", "/d", "--allow-uid" };
    expect_bad(ARGC(b9), b9, "needs a value");
    /* only IPC carries the peer's credentials */
    char *b10[] = { "c", "/d", "--socket", "tcp://127.0.0.1:5555",
                    "--allow-uid", "0" };
    expect_bad(ARGC(b10), b10, "ipc://");
    char *ok[] = { "c", "/d", "--socket", "tcp://127.0.0.1:5555" };
    assert_int_equal(parse(ARGC(ok), ok, &o), 0);

    /* at most COORD_ALLOW_MAX distinct entries */
    char many[COORD_ALLOW_MAX * 8 + 16];
    size_t n = 0;
    for (uint32_t i = 0; i <= COORD_ALLOW_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "%s%u",
                              i ? "," : "", 100 + i);
    char *b11[] = { "c", "/d", "--allow-uid", many };
    expect_bad(ARGC(b11), b11, "more than");
    many[strlen(many) - 4] = '\0'; /* drop the last entry: exactly 64 */
    assert_int_equal(parse(ARGC(b11), b11, &o), 0);
    assert_int_equal(o.allow_uid_count, COORD_ALLOW_MAX);
}

/* A group with many members does not fit a fixed buffer (getgrnam_r
 * says ERANGE); the lookup grows its buffer instead of calling the name
 * unknown.  Started at 1 byte it must grow for any real entry. */
static void test_options_principal_lookup_grows_its_buffer(void **state)
{
    (void)state;
    char tiny[1];
    struct group g, *gfound = NULL;
    assert_int_equal(getgrnam_r("root", &g, tiny, sizeof(tiny), &gfound),
                     ERANGE);
    struct passwd pw, *pfound = NULL;
    assert_int_equal(getpwnam_r("root", &pw, tiny, sizeof(tiny), &pfound),
                     ERANGE);

    uint32_t id = 7;
    assert_int_equal(coord_principal_lookup(true, "root", 1, &id), 0);
    assert_int_equal(id, 0);
    id = 7;
    assert_int_equal(coord_principal_lookup(false, "root", 1, &id), 0);
    assert_int_equal(id, 0);
    assert_int_equal(coord_principal_lookup(true, "nogroup", 0, &id), 0);
    assert_int_equal(id, 65534);
    assert_int_equal(coord_principal_lookup(false, "nobody", 3, &id), 0);
    assert_int_equal(id, 65534);

    /* a name the database does not hold is not a lookup error */
    id = 7;
    assert_int_equal(coord_principal_lookup(true, "no-such-group-here", 1, &id),
                     SUTRA_ENOTFOUND);
    assert_int_equal(coord_principal_lookup(false, "no-such-user-here", 1, &id),
                     SUTRA_ENOTFOUND);
    assert_int_equal(id, 7);
}

static void test_options_help_and_version(void **state)
{
    (void)state;
    char *a[] = { "c", "--help" };
    coord_options o;
    assert_int_equal(parse(ARGC(a), a, &o), 0);
    assert_true(o.help);
    char *b[] = { "c", "--version" };
    assert_int_equal(parse(ARGC(b), b, &o), 0);
    assert_true(o.version);
    assert_false(o.help);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_options_relative_dir_made_absolute),
        cmocka_unit_test(test_options_sizes),
        cmocka_unit_test(test_options_sync_policies),
        cmocka_unit_test(test_options_every_flag),
        cmocka_unit_test(test_options_bad_flags),
        cmocka_unit_test(test_options_max_message_below_default_content),
        cmocka_unit_test(test_options_socket_path_too_long),
        cmocka_unit_test(test_options_allow_lists),
        cmocka_unit_test(test_options_principal_lookup_grows_its_buffer),
        cmocka_unit_test(test_options_help_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
