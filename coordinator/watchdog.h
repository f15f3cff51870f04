/*
 * coordinator/watchdog.h — a time limit for a step that might never return.
 *
 * The coordinator's shutdown closes the store (with its clean mark) before
 * it tears NNG down (the last replies leave, then the sockets close), and
 * NNG 1.5.2 can hang in nng_close() while it closes the pipes of clients
 * that died mid-request: in about one run in forty of
 * tests/integration/test_clients, the main thread waited in nng_close() on
 * the request socket with every NNG thread idle (NNG's issues 1543 and
 * 1813 report such hangs in later versions).  Nothing is left to lose by
 * then, so the shutdown arms a watchdog around that teardown: past its
 * limit the watchdog logs what did not finish and ends the process with
 * _exit() and the status the shutdown had reached, instead of leaving the
 * service manager to kill it.
 *
 * Thread rules: arm and disarm from one thread; the watchdog's thread is
 * its own.
 */
#ifndef SUTRA_COORD_WATCHDOG_H
#define SUTRA_COORD_WATCHDOG_H

typedef struct coord_watchdog coord_watchdog;

/**
 * Start a thread that, unless coord_watchdog_disarm() comes first, logs
 * "`what` did not finish within `limit_ms` ms" at error level and calls
 * _exit(status) once limit_ms have passed (CLOCK_MONOTONIC).  `what` is
 * borrowed until disarm.
 * @return 0 and *out; ENOMEM or pthread_create's error (then *out is
 *         NULL and nothing watches the step).
 */
int coord_watchdog_arm(unsigned limit_ms, const char *what, int status,
                       coord_watchdog **out);

/** Stop the watchdog (it does not fire afterwards), join its thread and
 * free it.  NULL is a no-op. */
void coord_watchdog_disarm(coord_watchdog *w);

#endif
