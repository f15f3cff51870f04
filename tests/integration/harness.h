/*
 * tests/integration/harness.h — helpers for tests that run the real
 * coordinator binary and several reader and writer processes.
 *
 * NNG may not be used in a child forked after its parent used it, so the
 * test process itself never touches NNG: every client lives in a forked
 * child (harness_spawn), and readiness is probed from a child too.
 */
#ifndef SUTRA_TEST_HARNESS_H
#define SUTRA_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sutra/sutra.h"

/* A fresh directory under /tmp (short: IPC paths are limited to 107 bytes).
 * The caller owns the string; harness_rmdir() removes the directory (and
 * its coordinator log) and frees it. */
char *harness_tmpdir(void);
void harness_rmdir(char *dir);

/* The coordinator to test: $SUTRA_COORDINATOR, or bin/sutra-coordinator
 * in the build directory this test binary belongs to. */
const char *harness_coordinator_path(void);

/* Start `sutra-coordinator DIR args...` (NULL-terminated extra args), with
 * its stderr appended to DIR.log, and wait until it answers a ping (probed
 * from a child process).  Returns the pid, or -1 if it did not come up in
 * 10 s. */
pid_t harness_coordinator_start(const char *dir, const char *const *args);

/* Send `sig` and wait; returns the exit status (0..255), 128+signal if it
 * died of a signal, or -1 if it did not exit within 20 s (then SIGKILLed).
 * A stop that does not end as the signal asks (status 0 after SIGTERM or
 * SIGINT, death by SIGKILL after SIGKILL) prints the tail of the
 * coordinator's log to stderr. */
int harness_coordinator_stop(pid_t pid, int sig);

/* In a child just forked by `parent` (its getpid() before fork): be
 * killed (SIGKILL) when the test process dies, also across execv, so that
 * nothing a failed test started outlives the test binary.  Exits 126 if
 * the parent is already gone. */
void harness_die_with(pid_t parent);

/* Run fn(arg) in a forked child; the child exits with its return value.
 * Children of both kinds are killed (SIGKILL) when the test process dies. */
pid_t harness_spawn(int (*fn)(void *), void *arg);

/* Wait for a child; returns its exit status as above. */
int harness_wait(pid_t pid);

/* The same for at most timeout_ms; a child still running then is
 * SIGKILLed, reaped, and -1 returned. */
int harness_wait_ms(pid_t pid, uint64_t timeout_ms);

/* Anonymous MAP_SHARED memory visible to every process forked later. */
void *harness_shared_alloc(size_t bytes);

/* Deterministic test data: content and embedding of item (writer, index,
 * version).  Content length varies from 1 to 300 bytes. */
size_t harness_content(uint32_t writer, uint32_t index, uint32_t version,
                       char *buf, size_t cap);
void harness_embedding(uint32_t writer, uint32_t index, uint32_t version,
                       float *out, uint32_t dim);
void harness_item_id(uint32_t writer, uint32_t index, sutra_id *out);

/* True when `c` is exactly the (writer, index, version) item. */
bool harness_item_matches(const sutra_concept *c, uint32_t writer,
                          uint32_t index, uint32_t version, uint32_t dim);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t harness_now_ms(void);

#endif
