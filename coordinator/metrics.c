/*
 * coordinator/metrics.c — the Prometheus text endpoint on NNG's HTTP server.
 *
 * The text is rebuilt for every scrape into a stack buffer from one call of
 * the source (a stats snapshot: each figure exact, the set not atomic, as
 * for a `stats` request) and copied into the response.  Scrapes are rare
 * and small, so nothing is cached.
 */
#include "coordinator/metrics.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "coordinator/options.h"

#define METRICS_DEFAULT_PATH "/metrics"
#define METRICS_TEXT_MAX 8192u

struct coord_metrics {
    nng_http_server *server;
    coord_metrics_source source;
    void *arg;
};

/* ---- the text ----------------------------------------------------------- */

typedef struct text {
    char *buf;
    size_t cap, len; /* len counts what the whole text needs */
} text;

static void emit(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->len < t->cap ? t->cap - t->len : 0;
    int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n;
}

static void metric(text *t, const char *name, const char *type,
                   const char *help, unsigned long long value)
{
    emit(t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type,
         name, value);
}

size_t coord_metrics_format(const wire_stats *st, const coord_metrics_extra *x,
                            char *buf, size_t cap)
{
    text t = { buf, cap, 0 };
    if (cap)
        buf[0] = '\0';
    emit(&t, "# HELP sutra_info The coordinator's version and sync policy.\n"
             "# TYPE sutra_info gauge\n"
             "sutra_info{version=\"%s\",sync_policy=\"%s\","
             "sync_interval_ms=\"%llu\"} 1\n",
         x->version,
         coord_sync_policy_name((enum coord_sync_policy)st->sync_policy),
         (unsigned long long)st->sync_interval_ms);
    metric(&t, "sutra_generation", "gauge", "Newest published generation.",
           st->generation);
    metric(&t, "sutra_last_seq", "gauge", "Sequence number of the newest write.",
           st->last_seq);
    metric(&t, "sutra_committed_bytes", "gauge",
           "End of the committed log in storage.dat.", st->committed_end);
    metric(&t, "sutra_file_bytes", "gauge", "Size of storage.dat.",
           st->file_size);
    metric(&t, "sutra_nodes", "gauge", "Ids ever learned (node numbers).",
           st->node_count);
    metric(&t, "sutra_concepts", "gauge", "Live concepts.", st->concept_count);
    metric(&t, "sutra_concept_versions", "gauge",
           "Concept versions in the log.", st->version_count);
    metric(&t, "sutra_tombstones", "gauge", "Forgotten concepts.",
           st->tombstone_count);
    metric(&t, "sutra_associations", "gauge", "Live associations.",
           st->assoc_count);
    metric(&t, "sutra_requests_total", "counter",
           "Requests received since start.", st->requests);
    metric(&t, "sutra_requests_failed_total", "counter",
           "Requests answered with an error since start.", st->requests_failed);
    metric(&t, "sutra_ops_applied_total", "counter",
           "Write ops committed since start.", st->ops_applied);
    metric(&t, "sutra_commits_total", "counter",
           "Generations published since start.", st->commits);
    metric(&t, "sutra_syncs_total", "counter",
           "Syncs since start (fdatasync and ranged).", st->syncs);
    metric(&t, "sutra_duplicate_requests_total", "counter",
           "Resent requests answered from the reply cache since start.",
           st->duplicates);
    metric(&t, "sutra_events_sent_total", "counter",
           "Generation events sent on the PUB socket since start.",
           x->events_sent);
    metric(&t, "sutra_events_failed_total", "counter",
           "Generation events the PUB socket refused since start.",
           x->events_failed);
    metric(&t, "sutra_stalled_connections_closed_total", "counter",
           "Client connections closed because the client took no reply "
           "for 2 s since start.", x->stalled_closed);
    metric(&t, "sutra_groups_restaged_total", "counter",
           "Open groups staged again because a forget_concept in them "
           "would have passed the file's maximum size, since start.",
           x->groups_restaged);
    metric(&t, "sutra_connections", "gauge",
           "Client connections open on the request socket.", x->connections);
    metric(&t, "sutra_connections_refused_total", "counter",
           "Client connections closed at once because --max-connections "
           "were open, since start.", x->connections_refused);
    metric(&t, "sutra_sync_waits_total", "counter",
           "Times the committer waited for a sync still running (the next "
           "interval sync was due, or a whole-file sync had to follow it), "
           "since start.",
           x->sync_waits);
    metric(&t, "sutra_queue_depth", "gauge",
           "Write requests waiting for the committer.", st->queue_depth);
    metric(&t, "sutra_read_only", "gauge",
           "1 while writes are refused after an I/O error.", x->read_only);
    metric(&t, "sutra_max_message_bytes", "gauge", "Largest request accepted.",
           st->max_message);
    metric(&t, "sutra_max_content_bytes", "gauge",
           "Largest concept content accepted.", st->max_content);
    metric(&t, "sutra_max_batch_ops", "gauge", "Most ops in one request.",
           st->max_batch);
    metric(&t, "sutra_vector_dim", "gauge", "Embedding dimension of the file.",
           st->vector_dim);
    emit(&t, "# HELP sutra_uptime_seconds Seconds since the coordinator "
             "began serving.\n# TYPE sutra_uptime_seconds gauge\n"
             "sutra_uptime_seconds %.3f\n", (double)st->uptime_ns / 1e9);
    return t.len;
}

/* ---- the server ---------------------------------------------------------- */

static void metrics_handle(nng_aio *aio)
{
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    coord_metrics *m = nng_http_handler_get_data(h);
    wire_stats st;
    coord_metrics_extra extra = { 0 };
    memset(&st, 0, sizeof(st));
    m->source(m->arg, &st, &extra);
    char body[METRICS_TEXT_MAX];
    size_t len = coord_metrics_format(&st, &extra, body, sizeof(body));
    nng_http_res *res = NULL;
    /* the text is a few KiB; a buffer too small is a bug, answered 500 */
    int rv = len >= sizeof(body) ? nng_http_res_alloc_error(&res, 500)
                                 : nng_http_res_alloc(&res);
    if (rv == 0 && len >= sizeof(body)) {
        nng_aio_set_output(aio, 0, res);
        nng_aio_finish(aio, 0);
        return;
    }
    if (rv == 0)
        rv = nng_http_res_set_header(res, "Content-Type",
                                     "text/plain; version=0.0.4; charset=utf-8");
    if (rv == 0)
        rv = nng_http_res_copy_data(res, body, len);
    if (rv != 0) {
        if (res)
            nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static int fail(char *err, size_t err_size, int rv, const char *what,
                const char *url)
{
    snprintf(err, err_size, "--metrics %s: %s: %s", url, what, nng_strerror(rv));
    return rv;
}

/* The URL the server really listens on (port 0 becomes the chosen one). */
static void bound_url(nng_http_server *server, const nng_url *u, char *out,
                      size_t size)
{
    nng_sockaddr sa;
    char host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (nng_http_server_get_addr(server, &sa) == 0) {
        if (sa.s_family == NNG_AF_INET) {
            inet_ntop(AF_INET, &sa.s_in.sa_addr, host, sizeof(host));
            port = ntohs(sa.s_in.sa_port);
        } else if (sa.s_family == NNG_AF_INET6) {
            inet_ntop(AF_INET6, sa.s_in6.sa_addr, host, sizeof(host));
            port = ntohs(sa.s_in6.sa_port);
        }
    }
    if (!host[0]) {
        snprintf(out, size, "%s://%s:%s%s", u->u_scheme, u->u_hostname,
                 u->u_port, u->u_path);
        return;
    }
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, size, "http://%s%s%s:%u%s", v6 ? "[" : "", host, v6 ? "]" : "",
             port, u->u_path[0] && strcmp(u->u_path, "/") != 0
                       ? u->u_path : METRICS_DEFAULT_PATH);
}

int coord_metrics_start(const char *url, coord_metrics_source source, void *arg,
                        coord_metrics **out, char *bound, size_t bound_size,
                        char *err, size_t err_size)
{
    nng_url *u = NULL;
    int rv = nng_url_parse(&u, url);
    if (rv != 0)
        return fail(err, err_size, rv, "not a URL", url);
    if (strcmp(u->u_scheme, "http") != 0) {
        nng_url_free(u);
        return fail(err, err_size, NNG_EADDRINVAL, "only http:// is served",
                    url);
    }
    const char *path = u->u_path[0] && strcmp(u->u_path, "/") != 0
                           ? u->u_path : METRICS_DEFAULT_PATH;
    coord_metrics *m = calloc(1, sizeof(*m));
    nng_http_handler *h = NULL;
    if (!m) {
        nng_url_free(u);
        return fail(err, err_size, NNG_ENOMEM, "no memory", url);
    }
    m->source = source;
    m->arg = arg;
    const char *what = "cannot create the HTTP server";
    rv = nng_http_server_hold(&m->server, u);
    if (rv == 0 && (what = "cannot create the handler",
                    rv = nng_http_handler_alloc(&h, path, metrics_handle)) == 0) {
        what = "cannot register the handler";
        rv = nng_http_handler_set_data(h, m, NULL);
        if (rv == 0)
            rv = nng_http_server_add_handler(m->server, h);
        if (rv != 0)
            nng_http_handler_free(h); /* not owned by the server yet */
    }
    if (rv == 0 && (what = "cannot listen", rv = nng_http_server_start(m->server)) == 0)
        bound_url(m->server, u, bound, bound_size);
    nng_url_free(u);
    if (rv != 0) {
        if (m->server)
            nng_http_server_release(m->server);
        free(m);
        return fail(err, err_size, rv, what, url);
    }
    *out = m;
    return 0;
}

void coord_metrics_stop(coord_metrics *m)
{
    if (!m)
        return;
    nng_http_server_stop(m->server);
    nng_http_server_release(m->server);
    free(m);
}
