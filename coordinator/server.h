/*
 * coordinator/server.h — the coordinator's NNG side.
 *
 * One REP socket with N contexts, each an asynchronous state machine
 * (receive -> decode -> answer or hand to the committer -> send -> receive),
 * so N requests can be in flight and a slow commit never blocks receiving;
 * once all N wait, further requests wait in NNG and in the clients
 * (backpressure, never drops).  Malformed requests, ping and stats are
 * answered from the NNG callback itself; writes go to the committer.  One
 * PUB socket carries generation events (hints, P-EVT-1).
 *
 * Life cycle, all calls from the main thread:
 *   coord_server_open      sockets listening, no context receiving yet
 *   coord_committer_start  (published hook: coord_server_publish)
 *   coord_server_start     contexts start receiving
 *   coord_server_drain     no more requests reach the committer; returns
 *                          once no callback can submit to it any more
 *   coord_committer_stop   answers everything queued
 *   coord_server_freeze    answers writes received since the drain
 *   coord_server_close     waits for replies to go out, closes, frees
 */
#ifndef SUTRA_COORD_SERVER_H
#define SUTRA_COORD_SERVER_H

#include <stddef.h>

#include "coordinator/committer.h"
#include "coordinator/metrics.h"
#include "coordinator/options.h"
#include "coordinator/store.h"

typedef struct coord_server coord_server;

/**
 * Open and listen on opts->socket_url (REP, NNG_OPT_RECVMAXSZ =
 * max_message + 64 KiB, ipc permissions 0660) and opts->events_url (PUB).
 * opts, store and counters are borrowed for the server's life.
 * @return 0 and *out; an NNG error number with `err` set.
 */
int coord_server_open(const coord_options *opts, coord_store *store,
                      coord_counters *counters, coord_server **out, char *err,
                      size_t err_size);

/** Start the contexts; writes go to `committer` (borrowed).
 * @return 0 or an NNG error number (then call coord_server_close). */
int coord_server_start(coord_server *s, coord_committer *committer);

/** coord_committer_config.published hook: send a wire_event on the PUB
 * socket without blocking.  Committer thread. */
void coord_server_publish(void *server, const coord_commit_info *info);

/** coord_metrics_source for the Prometheus endpoint: the figures of a
 * `stats` reply plus the event counters and the read-only flag.  Any
 * thread, lock-free; `server` must be open. */
void coord_server_metrics(void *server, wire_stats *st,
                          coord_metrics_extra *extra);

/** Stop handing requests to the committer (later writes wait for
 * coord_server_freeze(), other requests get SUTRA_ECLOSED) and wait until
 * no callback is between receiving a message and answering or handing it
 * over: then the committer's queue can no longer grow and nothing reads
 * the store through the server. */
void coord_server_drain(coord_server *s);

/** The reply status for a result of the store or the committer: the wire
 * carries only 0 or a negative SUTRA_E* (P-REP-3), and the reply's message
 * still names an errno.  0 and SUTRA_E* pass through; ENOSPC, EDQUOT and
 * EFBIG are SUTRA_EFULL; ENOMEM (a request the coordinator had no memory
 * to stage, refused with nothing changed) SUTRA_ETOOBIG; any other errno
 * an I/O failure that turned the store read-only, SUTRA_EREADONLY.
 * Pure; any thread. */
int32_t coord_wire_status(int rc);

/** After coord_committer_stop(), with the committer's idempotency table
 * (final now; may be NULL): answer the writes received since
 * coord_server_drain() and every later one from the table — the original
 * reply for a resend of a request the committer applied (P-IDEM-2),
 * SUTRA_ECLOSED ("not applied") for any other.  Main thread. */
void coord_server_freeze(coord_server *s, const coord_dedup *dedup);

/** After coord_server_freeze(): let pending replies leave, close both
 * sockets, free.  NULL is a no-op. */
void coord_server_close(coord_server *s);

#endif
