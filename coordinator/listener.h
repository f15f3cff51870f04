/*
 * coordinator/listener.h — a listening endpoint that keeps accepting.
 *
 * NNG 1.5.2 (Debian 12) has a listener bug (upstream issue #1518, fixed
 * after 1.5.2): when a peer disconnects during the SP handshake — another
 * process probing the socket path, a client killed or giving up mid-connect
 * — the listener can stop calling accept() for good.  Already-connected
 * clients keep working, new ones queue in the kernel and time out; any
 * local process could trigger it.  A watched listener probes itself: a
 * short-lived dialer's pipe must be attached to the socket within a
 * deadline; after two failed probes in a row the listener is closed and
 * recreated.  Closing
 * it also drops its connections; clients reconnect by themselves and
 * resend, and resent requests are answered once (P-IDEM-*).  The stuck
 * half-open connections the bug leaves behind are not among them: NNG
 * never made them pipes, and their descriptors stay open until the
 * process exits (docs/reliability.md, "Known limitation").
 */
#ifndef SUTRA_COORD_LISTENER_H
#define SUTRA_COORD_LISTENER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

typedef struct coord_listener coord_listener;

/* How often a watched listener probes itself, and how long a probe may
 * take to complete the handshake. */
#define COORD_LISTENER_CHECK_MS 2000u
#define COORD_LISTENER_PROBE_MS 1000u
#define COORD_LISTENER_MAX_FAILS 2u

/**
 * Listen on `url` with `sock` (ipc:// endpoints get permissions 0660).  With
 * `watch`, start the watchdog thread described above; `sock` must then be
 * a REP socket (the probe dials it with REQ), and the listener takes the
 * socket's NNG_PIPE_EV_ADD_POST notification for itself.
 * `refused` (may be NULL; borrowed until coord_listener_close()) counts the
 * pipes the caller's NNG_PIPE_EV_ADD_PRE hook closed at once: they never
 * reach ADD_POST, but reaching ADD_PRE proves the hand-over works as well,
 * so a probe counts them as attachments.  Without them a socket whose
 * hook refuses every new pipe (a connection cap reached) would look stuck
 * whenever the probe cannot be told from a client (any transport but
 * ipc://, which carries the peer's pid) and lose every connection.
 * @return 0, or an NNG error with a message in err.  On success *out is
 *         freed by coord_listener_close().
 * Thread rules: main thread.
 */
int coord_listener_open(nng_socket sock, const char *url, bool watch,
                        const _Atomic uint64_t *refused, coord_listener **out,
                        char *err, size_t err_size);

/** Times the watchdog recreated the listener.  Any thread. */
uint64_t coord_listener_restarts(const coord_listener *l);

/**
 * Stop the watchdog (joins its thread), so that nothing recreates the NNG
 * listener any more.  Call before closing the socket.  Idempotent; NULL is
 * a no-op.  Main thread.
 */
void coord_listener_stop(coord_listener *l);

/**
 * Stop the watchdog if still running, and free.  The NNG listener itself
 * is closed with its socket (nng_close).  A watched listener is the
 * argument of the socket's pipe notification, which NNG threads may run
 * until the socket is closed: close the socket first.  NULL is a no-op.
 * Main thread.
 */
void coord_listener_close(coord_listener *l);

#endif
