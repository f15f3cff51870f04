/*
 * coordinator/listener.c — listening endpoints, and the watchdog that
 * recreates one when NNG 1.5.2 stops accepting on it (see listener.h).
 *
 * What breaks in 1.5.2 is the hand-over, not the accept: the transport
 * still accepts and completes its half of the handshake, but the pipe is
 * never attached to the socket, so the client's side looks connected while
 * its requests go nowhere.  The only trustworthy signal is therefore on
 * this side: NNG_PIPE_EV_ADD_POST on the listening socket, raised once a
 * pipe is attached.  A probe dials the endpoint with a short-lived REQ
 * socket and waits for that count to move (any client attaching in the
 * meantime proves the same thing; so does a pipe the socket's owner
 * refused on NNG_PIPE_EV_ADD_PRE, which comes after the hand-over), then
 * closes cleanly.
 */
#include "coordinator/listener.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/protocol/reqrep0/req.h>

#include "coordinator/log.h"

struct coord_listener {
    nng_socket sock;
    nng_listener listener;
    char *url;
    bool watching;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;                 /* under mu                                  */
    _Atomic uint64_t restarts;
    _Atomic uint64_t attached; /* pipes attached to sock (ADD_POST)        */
    const _Atomic uint64_t *refused; /* pipes closed at ADD_PRE, or NULL   */
};

static int listener_start(coord_listener *l, char *err, size_t err_size)
{
    int rv = nng_listener_create(&l->listener, l->sock, l->url);
    if (rv)
        l->listener = (nng_listener)NNG_LISTENER_INITIALIZER;
    if (rv == 0 && strncmp(l->url, "ipc://", 6) == 0)
        rv = nng_listener_set_int(l->listener, NNG_OPT_IPC_PERMISSIONS, 0660);
    if (rv == 0)
        rv = nng_listener_start(l->listener, 0);
    if (rv && nng_listener_id(l->listener) > 0) {
        /* created, not listening: it would stay on the socket until the
         * next retry or the close */
        nng_listener_close(l->listener);
        l->listener = (nng_listener)NNG_LISTENER_INITIALIZER;
    }
    if (rv && err)
        snprintf(err, err_size, "cannot listen on %s: %s", l->url,
                 nng_strerror(rv));
    return rv;
}

/* NNG callback, any NNG thread: a pipe was attached to the socket. */
static void listener_pipe_attached(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    (void)ev;
    atomic_fetch_add(&((coord_listener *)arg)->attached, 1);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Pipes handed over to the socket so far: attached, or refused by the
 * caller's ADD_PRE hook (see coord_listener_open()). */
static uint64_t listener_handed_over(const coord_listener *l)
{
    return atomic_load(&l->attached) + (l->refused ? atomic_load(l->refused)
                                                   : 0);
}

/* True when a pipe gets handed over to the socket within the deadline
 * after a fresh client dials it. */
static bool listener_probe(coord_listener *l)
{
    nng_socket p;
    if (nng_req0_open(&p) != 0)
        return true; /* cannot judge: assume healthy */
    uint64_t before = listener_handed_over(l);
    bool ok = true;
    if (nng_dial(p, l->url, NULL, NNG_FLAG_NONBLOCK) == 0) {
        for (unsigned waited = 0; listener_handed_over(l) == before &&
                                  waited < COORD_LISTENER_PROBE_MS;
             waited += 10)
            sleep_ms(10);
        ok = listener_handed_over(l) != before;
    }
    nng_close(p);
    return ok;
}

/* Wait up to ms unless asked to stop; returns true when stopping. */
static bool listener_wait(coord_listener *l, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000u;
    until.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->stop &&
           pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT)
        ;
    bool stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    return stop;
}

static void *listener_watch(void *arg)
{
    coord_listener *l = arg;
    unsigned fails = 0;
    while (!listener_wait(l, COORD_LISTENER_CHECK_MS)) {
        if (listener_probe(l)) {
            fails = 0;
            continue;
        }
        if (++fails < COORD_LISTENER_MAX_FAILS)
            continue;
        coord_log_warn("listener on %s stopped accepting connections (NNG "
                       "1.5 issue 1518); recreating it", l->url);
        nng_listener_close(l->listener);
        char err[256];
        int rv = listener_start(l, err, sizeof(err));
        if (rv)
            coord_log_error("%s; will retry", err);
        else
            atomic_fetch_add(&l->restarts, 1);
        fails = 0;
    }
    return NULL;
}

int coord_listener_open(nng_socket sock, const char *url, bool watch,
                        const _Atomic uint64_t *refused, coord_listener **out,
                        char *err, size_t err_size)
{
    coord_listener *l = calloc(1, sizeof(*l));
    if (!l || !(l->url = strdup(url))) {
        free(l);
        snprintf(err, err_size, "out of memory");
        return NNG_ENOMEM;
    }
    l->sock = sock;
    l->refused = refused;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &attr);
    pthread_condattr_destroy(&attr);
    int rv = 0;
    if (watch) /* before listening, so no attachment is missed */
        rv = nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST,
                             listener_pipe_attached, l);
    if (rv)
        snprintf(err, err_size, "pipe notification: %s", nng_strerror(rv));
    if (rv == 0)
        rv = listener_start(l, err, err_size);
    if (rv == 0 && watch) {
        rv = pthread_create(&l->thread, NULL, listener_watch, l);
        if (rv) {
            snprintf(err, err_size, "listener watchdog: %s", strerror(rv));
            rv = NNG_ENOMEM;
        }
        l->watching = rv == 0;
    }
    if (rv) {
        if (watch) /* the socket stays open: it must not call back into l */
            (void)nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
        coord_listener_close(l);
        return rv;
    }
    *out = l;
    return 0;
}

uint64_t coord_listener_restarts(const coord_listener *l)
{
    return l ? atomic_load(&((coord_listener *)l)->restarts) : 0;
}

void coord_listener_stop(coord_listener *l)
{
    if (!l || !l->watching)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->watching = false;
}

void coord_listener_close(coord_listener *l)
{
    if (!l)
        return;
    coord_listener_stop(l);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l->url);
    free(l);
}
