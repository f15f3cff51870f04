/*
 * coordinator/metrics.h — the coordinator's Prometheus endpoint
 * (`--metrics http://HOST:PORT[/PATH]`, off by default).
 *
 * A scrape is answered on an NNG HTTP server thread from the same counters
 * as a `stats` request (coord_server_stats()): no lock, no I/O, nothing the
 * committer waits for.  The text follows the Prometheus exposition format
 * 0.0.4; metric names are listed in docs/operations.md.
 */
#ifndef SUTRA_COORD_METRICS_H
#define SUTRA_COORD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "layout/wire.h"

/** What a scrape reports besides the wire stats. */
typedef struct coord_metrics_extra {
    bool read_only;          /* the store refuses writes (failed sync)     */
    unsigned long long events_sent, events_failed;
    unsigned long long stalled_closed; /* connections closed, replies not
                                          taken                          */
    unsigned long long groups_restaged; /* open groups staged again      */
    unsigned long long sync_waits; /* waits for a sync in flight          */
    unsigned long long connections;         /* client connections open   */
    unsigned long long connections_refused; /* over --max-connections    */
    const char *version;     /* "MAJOR.MINOR.PATCH"                        */
} coord_metrics_extra;

/**
 * Write the exposition text for `st` and `extra` into buf (NUL-terminated
 * when cap > 0, truncated to cap - 1 bytes).  Pure; any thread.
 * @return the length the whole text needs, excluding the NUL (as snprintf).
 */
size_t coord_metrics_format(const wire_stats *st, const coord_metrics_extra *extra,
                            char *buf, size_t cap);

/** Fills a scrape's figures; called on an NNG thread, must not block. */
typedef void (*coord_metrics_source)(void *arg, wire_stats *st,
                                     coord_metrics_extra *extra);

typedef struct coord_metrics coord_metrics;

/**
 * Serve the metrics at `url` (http:// only; the path defaults to /metrics;
 * port 0 picks a free port).  `source` and `arg` are borrowed until
 * coord_metrics_stop().  On success `bound` receives the URL actually
 * served (with the real port).
 * @return 0 and *out; an NNG error number with `err` set (the address is
 *         in use, cannot be parsed, ...).
 */
int coord_metrics_start(const char *url, coord_metrics_source source, void *arg,
                        coord_metrics **out, char *bound, size_t bound_size,
                        char *err, size_t err_size);

/** Stop serving (waits for a scrape in progress) and free.  NULL: no-op. */
void coord_metrics_stop(coord_metrics *m);

#endif
