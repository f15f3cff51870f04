/*
 * tests/unit/test_dedup.c — the duplicate-request table: a request is
 * answered from the table once applied (pending, then committed), failures
 * are forgotten, old request numbers leave the per-client window, whole
 * clients leave in LRU order, and the table rebuilds from commit entries
 * visited newest first (P-IDEM-2, P-IDEM-3).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "coordinator/dedup.h"
#include "sutra/sutra.h"

static coord_dedup *make(uint32_t window, uint32_t max_clients)
{
    coord_dedup *d = NULL;
    assert_int_equal(coord_dedup_create(window, max_clients, &d), 0);
    assert_non_null(d);
    return d;
}

static bool has(coord_dedup *d, uint64_t client, uint64_t request_no)
{
    coord_dedup_reply r;
    return coord_dedup_lookup(d, client, request_no, &r);
}

static void test_dedup_create_rejects_bad_sizes(void **state)
{
    (void)state;
    coord_dedup *d = (coord_dedup *)0x1;
    assert_int_equal(coord_dedup_create(0, 10, &d), SUTRA_EINVAL);
    assert_int_equal(coord_dedup_create(1000, 10, &d), SUTRA_EINVAL);
    assert_int_equal(coord_dedup_create(1u << 21, 10, &d), SUTRA_EINVAL);
    assert_int_equal(coord_dedup_create(16, 0, &d), SUTRA_EINVAL);
    assert_ptr_equal(d, (coord_dedup *)0x1); /* untouched on failure */
    coord_dedup_destroy(NULL);
}

static void test_dedup_pending_then_committed_reply(void **state)
{
    (void)state;
    coord_dedup *d = make(COORD_DEDUP_WINDOW, COORD_DEDUP_MAX_CLIENTS);
    coord_dedup_reply r = { .first_seq = 99 };
    assert_false(coord_dedup_lookup(d, 7, 1, &r));
    assert_int_equal(r.first_seq, 99); /* untouched on a miss */

    assert_int_equal(coord_dedup_add_pending(d, 7, 1, 100, 3), 0);
    assert_true(coord_dedup_lookup(d, 7, 1, &r));
    assert_true(r.pending);
    assert_int_equal(r.first_seq, 100);
    assert_int_equal(r.op_count, 3);

    coord_dedup_commit(d, 42);
    assert_true(coord_dedup_lookup(d, 7, 1, &r));
    assert_false(r.pending);
    assert_int_equal(r.generation, 42);
    assert_int_equal(r.first_seq, 100);
    assert_int_equal(r.op_count, 3);

    /* same request number, other client; other number, same client */
    assert_false(has(d, 8, 1));
    assert_false(has(d, 7, 2));
    assert_false(has(d, 7, 0));
    assert_int_equal(coord_dedup_add_pending(d, 7, 0, 1, 1), SUTRA_EINVAL);

    /* a later commit does not rewrite an earlier request's generation */
    assert_int_equal(coord_dedup_add_pending(d, 7, 2, 103, 1), 0);
    coord_dedup_commit(d, 43);
    assert_true(coord_dedup_lookup(d, 7, 1, &r));
    assert_int_equal(r.generation, 42);
    assert_true(coord_dedup_lookup(d, 7, 2, &r));
    assert_int_equal(r.generation, 43);
    assert_int_equal(coord_dedup_entry_count(d), 2);
    coord_dedup_destroy(d);
}

/* abort(0) forgets the pending entries: the group's requests may be
 * applied again. */
static void test_dedup_abort_forgets_only_pending(void **state)
{
    (void)state;
    coord_dedup *d = make(16, 4);
    assert_int_equal(coord_dedup_add_pending(d, 1, 1, 10, 1), 0);
    coord_dedup_commit(d, 5);
    assert_int_equal(coord_dedup_add_pending(d, 1, 2, 11, 1), 0);
    assert_int_equal(coord_dedup_add_pending(d, 2, 1, 12, 1), 0);
    coord_dedup_abort(d, 0);
    assert_true(has(d, 1, 1));   /* committed earlier: kept      */
    assert_false(has(d, 1, 2));  /* failed group: never applied  */
    assert_false(has(d, 2, 1));
    assert_int_equal(coord_dedup_entry_count(d), 1);
    /* the aborted request can be applied again and then remembered */
    assert_int_equal(coord_dedup_add_pending(d, 1, 2, 20, 1), 0);
    coord_dedup_commit(d, 6);
    coord_dedup_reply r;
    assert_true(coord_dedup_lookup(d, 1, 2, &r));
    assert_int_equal(r.first_seq, 20);
    assert_int_equal(r.generation, 6);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.failed_op, WIRE_NO_FAILED_OP);
    coord_dedup_destroy(d);
}

/* A failed group's requests keep its status (P-IDEM-2): a resend gets
 * the failure, and is not applied after the client was told it failed.
 * Committed entries are untouched. */
static void test_dedup_abort_keeps_the_failure(void **state)
{
    (void)state;
    coord_dedup *d = make(16, 4);
    assert_int_equal(coord_dedup_add_pending(d, 1, 1, 10, 1), 0);
    coord_dedup_commit(d, 5);
    assert_int_equal(coord_dedup_add_pending(d, 1, 2, 11, 3), 0);
    assert_int_equal(coord_dedup_add_pending(d, 2, 1, 14, 1), 0);
    coord_dedup_abort(d, EIO);
    coord_dedup_reply r;
    assert_true(coord_dedup_lookup(d, 1, 1, &r));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.generation, 5);
    for (uint64_t client = 1; client <= 2; client++) {
        assert_true(coord_dedup_lookup(d, client, client == 1 ? 2 : 1, &r));
        assert_int_equal(r.status, EIO);
        assert_int_equal(r.failed_op, WIRE_NO_FAILED_OP);
        assert_false(r.pending);
        assert_int_equal(r.first_seq, 0);
        assert_int_equal(r.generation, 0);
        assert_int_equal(r.op_count, 0);
    }
    assert_int_equal(coord_dedup_entry_count(d), 3);
    /* a later group commits only its own pending entries */
    assert_int_equal(coord_dedup_add_pending(d, 1, 3, 20, 1), 0);
    coord_dedup_commit(d, 6);
    assert_true(coord_dedup_lookup(d, 1, 2, &r));
    assert_int_equal(r.status, EIO);
    assert_int_equal(r.generation, 0);
    coord_dedup_destroy(d);
}

/* A request refused without being applied is remembered with its status
 * and failed op; it takes a slot like any other request and leaves the
 * window as the newest number. */
static void test_dedup_failed_request_remembered(void **state)
{
    (void)state;
    coord_dedup *d = make(16, 4);
    coord_dedup_reply r = { .first_seq = 99 };
    assert_int_equal(coord_dedup_add_failed(d, 3, 0, SUTRA_ENOTFOUND, 2),
                     SUTRA_EINVAL);
    assert_int_equal(coord_dedup_add_failed(d, 3, 1, 0, 2), SUTRA_EINVAL);
    assert_int_equal(coord_dedup_add_failed(d, 3, 1, 1 << 20, 2),
                     SUTRA_EINVAL);
    assert_false(coord_dedup_lookup(d, 3, 1, &r));
    assert_int_equal(r.first_seq, 99); /* untouched on a miss */

    assert_int_equal(coord_dedup_add_failed(d, 3, 1, SUTRA_ENOTFOUND, 2), 0);
    assert_true(coord_dedup_lookup(d, 3, 1, &r));
    assert_int_equal(r.status, SUTRA_ENOTFOUND);
    assert_int_equal(r.failed_op, 2);
    assert_int_equal(r.op_count, 0);
    assert_false(r.pending);
    assert_int_equal(coord_dedup_add_pending(d, 3, 2, 7, 1), 0);
    coord_dedup_commit(d, 9);
    assert_true(coord_dedup_lookup(d, 3, 2, &r));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.op_count, 1);
    assert_true(coord_dedup_lookup(d, 3, 1, &r));
    assert_int_equal(r.status, SUTRA_ENOTFOUND);
    /* 16 numbers later its slot goes to the newer request */
    for (uint64_t n = 3; n <= 17; n++)
        assert_int_equal(coord_dedup_add_failed(d, 3, n, ENOSPC,
                                                WIRE_NO_FAILED_OP), 0);
    assert_false(coord_dedup_lookup(d, 3, 1, &r));
    assert_false(coord_dedup_in_window(d, 3, 1));
    assert_true(coord_dedup_lookup(d, 3, 17, &r));
    assert_int_equal(r.status, ENOSPC);
    assert_int_equal(r.failed_op, WIRE_NO_FAILED_OP);
    coord_dedup_destroy(d);
}

static void test_dedup_window_keeps_last_n(void **state)
{
    (void)state;
    coord_dedup *d = make(16, 4);
    for (uint64_t n = 1; n <= 16; n++)
        assert_int_equal(coord_dedup_add_pending(d, 5, n, n * 10, 1), 0);
    coord_dedup_commit(d, 1);
    for (uint64_t n = 1; n <= 16; n++)
        assert_true(has(d, 5, n)); /* growth from 8 slots lost nothing */
    assert_int_equal(coord_dedup_add_pending(d, 5, 17, 170, 1), 0);
    coord_dedup_commit(d, 2);
    assert_false(has(d, 5, 1)); /* 16 numbers older than 17: evicted */
    for (uint64_t n = 2; n <= 17; n++)
        assert_true(has(d, 5, n));
    assert_int_equal(coord_dedup_entry_count(d), 16);
    coord_dedup_destroy(d);
}

static void test_dedup_window_sparse_numbers(void **state)
{
    (void)state;
    coord_dedup *d = make(4, 4);
    /* 3 and 7 share a slot only once the window is full */
    assert_int_equal(coord_dedup_add_pending(d, 9, 3, 1, 1), 0);
    assert_int_equal(coord_dedup_add_pending(d, 9, 7, 2, 1), 0);
    coord_dedup_commit(d, 1);
    assert_false(has(d, 9, 3));
    assert_true(has(d, 9, 7));
    coord_dedup_destroy(d);
}

/* A number `window` or more below the client's newest cannot be told
 * applied or not (its slot may hold a newer request): the committer refuses
 * it.  Within the window, and for unknown clients, any number passes. */
static void test_dedup_in_window(void **state)
{
    (void)state;
    coord_dedup *d = make(COORD_DEDUP_WINDOW, COORD_DEDUP_MAX_CLIENTS);
    assert_true(coord_dedup_in_window(d, 5, 1)); /* unknown client */
    assert_int_equal(coord_dedup_add_pending(d, 5, 5000, 1, 1), 0);
    coord_dedup_commit(d, 1);
    assert_true(coord_dedup_in_window(d, 5, 5001));
    assert_true(coord_dedup_in_window(d, 5, 5000 - COORD_DEDUP_WINDOW + 1));
    assert_false(coord_dedup_in_window(d, 5, 5000 - COORD_DEDUP_WINDOW));
    assert_false(coord_dedup_in_window(d, 5, 1));
    assert_true(coord_dedup_in_window(d, 6, 1)); /* another client */
    /* a jump far ahead moves the window: the old number is refused, not
     * applied again although its slot now holds the new one */
    uint64_t far = 5000 + (1ull << 40);
    assert_int_equal(coord_dedup_add_pending(d, 5, far, 2, 1), 0);
    coord_dedup_commit(d, 2);
    assert_false(has(d, 5, 5000));
    assert_false(coord_dedup_in_window(d, 5, 5000));
    coord_dedup_destroy(d);
}

static void test_dedup_client_lru_eviction(void **state)
{
    (void)state;
    coord_dedup *d = make(8, 3);
    assert_int_equal(coord_dedup_add_pending(d, 100, 1, 1, 1), 0);
    assert_int_equal(coord_dedup_add_pending(d, 200, 1, 2, 1), 0);
    assert_int_equal(coord_dedup_add_pending(d, 300, 1, 3, 1), 0);
    coord_dedup_commit(d, 1);
    assert_true(has(d, 100, 1)); /* touch: 200 is now the LRU client */
    assert_int_equal(coord_dedup_add_pending(d, 400, 1, 4, 1), 0);
    coord_dedup_commit(d, 2);
    assert_int_equal(coord_dedup_client_count(d), 3);
    assert_false(has(d, 200, 1));
    assert_true(has(d, 100, 1));
    assert_true(has(d, 300, 1));
    assert_true(has(d, 400, 1));
    /* a new request of a kept client refreshes it too */
    assert_int_equal(coord_dedup_add_pending(d, 300, 2, 5, 1), 0);
    assert_int_equal(coord_dedup_add_pending(d, 500, 1, 6, 1), 0);
    coord_dedup_commit(d, 3);
    /* order before 500 came: 300 (just used), 400, 100 (checked first) */
    assert_false(has(d, 100, 1));
    assert_true(has(d, 400, 1));
    assert_true(has(d, 300, 1));
    assert_true(has(d, 300, 2));
    assert_true(has(d, 500, 1));
    coord_dedup_destroy(d);
}

static layout_commit_entry entry(uint64_t client, uint64_t request_no,
                                 uint64_t first_seq, int32_t status)
{
    layout_commit_entry e = { .client_id = client, .request_no = request_no,
                              .first_seq = first_seq, .op_count = 2,
                              .status = status };
    return e;
}

static void test_dedup_rebuild_newest_first(void **state)
{
    (void)state;
    coord_dedup *d = make(2, 2);
    /* as coord_store_recent_commits() visits: newest commit first */
    layout_commit_entry e;
    e = entry(1, 3, 30, 0);
    coord_dedup_rebuild_visit(d, &e, 9);
    e = entry(2, 1, 25, 0);
    coord_dedup_rebuild_visit(d, &e, 8);
    e = entry(1, 2, 20, 0);
    coord_dedup_rebuild_visit(d, &e, 8);
    e = entry(1, 1, 10, 0);  /* slot of 3 at a full window: older, dropped */
    coord_dedup_rebuild_visit(d, &e, 7);
    e = entry(3, 1, 5, 0);   /* a third client: table full of newer ones */
    coord_dedup_rebuild_visit(d, &e, 6);
    e = entry(1, 4, 40, SUTRA_ENOTFOUND); /* not applied: never listed */
    coord_dedup_rebuild_visit(d, &e, 6);

    coord_dedup_reply r;
    assert_true(coord_dedup_lookup(d, 1, 3, &r));
    assert_int_equal(r.generation, 9);
    assert_int_equal(r.first_seq, 30);
    assert_int_equal(r.op_count, 2);
    assert_false(r.pending);
    assert_true(coord_dedup_lookup(d, 1, 2, &r));
    assert_int_equal(r.generation, 8);
    assert_false(has(d, 1, 1));
    assert_false(has(d, 1, 4));
    assert_false(has(d, 3, 1));
    assert_int_equal(coord_dedup_client_count(d), 2);

    /* client 2 was seen after client 1, so it is the LRU one; the lookups
     * above touched client 1 again anyway.  A new client evicts client 2. */
    assert_int_equal(coord_dedup_add_pending(d, 4, 1, 50, 1), 0);
    coord_dedup_commit(d, 10);
    assert_false(has(d, 2, 1));
    assert_true(has(d, 1, 3));
    assert_true(has(d, 4, 1));
    coord_dedup_destroy(d);
}

static void test_dedup_rebuild_order_sets_lru(void **state)
{
    (void)state;
    coord_dedup *d = make(8, 2);
    layout_commit_entry e = entry(10, 1, 1, 0); /* newest */
    coord_dedup_rebuild_visit(d, &e, 2);
    e = entry(20, 1, 2, 0);                     /* older  */
    coord_dedup_rebuild_visit(d, &e, 1);
    assert_int_equal(coord_dedup_add_pending(d, 30, 1, 3, 1), 0);
    coord_dedup_commit(d, 3);
    assert_false(has(d, 20, 1)); /* the older client went first */
    assert_true(has(d, 10, 1));
    assert_true(has(d, 30, 1));
    coord_dedup_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_create_rejects_bad_sizes),
        cmocka_unit_test(test_dedup_pending_then_committed_reply),
        cmocka_unit_test(test_dedup_abort_forgets_only_pending),
        cmocka_unit_test(test_dedup_abort_keeps_the_failure),
        cmocka_unit_test(test_dedup_failed_request_remembered),
        cmocka_unit_test(test_dedup_window_keeps_last_n),
        cmocka_unit_test(test_dedup_window_sparse_numbers),
        cmocka_unit_test(test_dedup_in_window),
        cmocka_unit_test(test_dedup_client_lru_eviction),
        cmocka_unit_test(test_dedup_rebuild_newest_first),
        cmocka_unit_test(test_dedup_rebuild_order_sets_lru),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
