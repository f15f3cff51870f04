/*
 * tests/unit/committer_fixture.h — a request handed to a running committer
 * (coordinator/committer.h) by a unit test, and the wait for its reply.
 *
 * Header-only, like store_fixture.h.  The reply callback runs on the
 * committer thread; the test thread polls `done`.
 */
#ifndef SUTRA_TESTS_COMMITTER_FIXTURE_H
#define SUTRA_TESTS_COMMITTER_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <unistd.h>

#include "coordinator/committer.h"

typedef struct cf_waiter {
    coord_request req;   /* first: the reply callback gets this address */
    _Atomic int done;
    int32_t status;
} cf_waiter;

static inline void cf_on_reply(coord_request *req, const coord_reply *rep)
{
    cf_waiter *w = (cf_waiter *)req;
    w->status = rep->status;
    atomic_store(&w->done, 1);
}

/* Submit `wire` (its buffer must stay valid until the reply). */
static inline void cf_submit(coord_committer *c, cf_waiter *w,
                             const wire_request *wire)
{
    w->req.wire = *wire;
    w->req.reply = cf_on_reply;
    coord_committer_submit(c, &w->req);
}

/* Wait up to `ms` for the reply (asserted) and return its status. */
static inline int32_t cf_wait(cf_waiter *w, int ms)
{
    for (int i = 0; i < ms && !atomic_load(&w->done); i++)
        usleep(1000);
    assert_true(atomic_load(&w->done));
    return w->status;
}

#endif
