/*
 * coordinator/main.c — sutra-coordinator: the single writer of a data
 * directory.
 *
 * Start-up order matters: signals are blocked before any thread exists (NNG
 * and the committer inherit the mask, so only the main thread ever sees
 * SIGTERM, through sigwait); the directory lock is taken before storage.dat
 * is touched; the duplicate table is rebuilt before the first request can
 * arrive; sockets listen before the committer starts so a bad address fails
 * fast.  Shutdown runs the same steps backwards and never drops a request
 * that was already handed to the committer.
 *
 * Exit status: 0 after a clean shutdown, 1 on a runtime failure (storage,
 * sockets, final sync), 2 for a usage error (an address that can never be
 * listened on included) or a directory in use.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>

#include "coordinator/committer.h"
#include "coordinator/dedup.h"
#include "coordinator/log.h"
#include "coordinator/lsan_nng.h" /* once per program: defines a hook */
#include "coordinator/metrics.h"
#include "coordinator/options.h"
#include "coordinator/server.h"
#include "coordinator/store.h"
#include "coordinator/watchdog.h"
#include "layout/format.h"
#include "sutra/sutra.h"

#define PROGRAM "sutra-coordinator"
/* Exit statuses.  2 says that starting again as is would fail the same way
 * (bad arguments, a directory in use, or one the operator must fix), so a
 * supervisor should not restart; 1 is any other failure. */
#define EXIT_FAILURE_RUNTIME 1
#define EXIT_USAGE 2
/* Commit entries read back at start-up to rebuild the duplicate table. */
#define DEDUP_REBUILD_ENTRIES (1u << 18)
/* NNG's teardown at shutdown: coord_server_close() itself waits up to 2 s
 * for replies still leaving, and a stop normally takes milliseconds. */
#define TEARDOWN_LIMIT_MS 10000u

/* ---- the data directory ---------------------------------------------- */

/* The exit status for a failure to use the data directory: errors that only
 * the operator can clear (permissions, a missing parent, a file in the
 * way, a read-only file system) are EXIT_USAGE. */
static int exit_for_errno(int e)
{
    switch (e) {
    case EACCES:
    case EPERM:
    case ENOENT:
    case ENOTDIR:
    case EEXIST:
    case EISDIR:
    case EROFS:
    case ELOOP:
    case ENAMETOOLONG:
        return EXIT_USAGE;
    default:
        return EXIT_FAILURE_RUNTIME;
    }
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0750) == 0) {
        coord_log_info("created %s", dir);
        return 0;
    }
    struct stat st;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    int e = errno;
    fprintf(stderr, PROGRAM ": cannot create %s: %s\n", dir,
            e == EEXIST ? "not a directory" : strerror(e));
    return exit_for_errno(e);
}

/* The pid the holder wrote into LOCK, or 0. */
static long lock_holder(int fd)
{
    char buf[32] = { 0 };
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

/* Take DIR/LOCK (flock, exclusive) and write our pid into it.  The fd stays
 * open, unclosed, for the life of the process: closing it drops the lock. */
static int lock_dir(const char *dir, int *fd_out)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        fprintf(stderr, PROGRAM ": cannot open %s: %s\n", path, strerror(e));
        return exit_for_errno(e);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            fprintf(stderr,
                    PROGRAM ": %s is in use by another coordinator (pid %ld)\n",
                    dir, lock_holder(fd));
            close(fd);
            return EXIT_USAGE;
        }
        fprintf(stderr, PROGRAM ": cannot lock %s: %s\n", path, strerror(e));
        close(fd);
        return EXIT_FAILURE_RUNTIME;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        coord_log_warn("cannot write the pid into %s: %s", path,
                       strerror(errno));
    *fd_out = fd;
    return 0;
}

/* ---- storage ---------------------------------------------------------- */

/* What the header says before the store opens (and recovers) the file.
 * O_NONBLOCK: a FIFO in its place must not hold the start-up in open()
 * (waiting for a writer, deaf to SIGTERM) before the store refuses it; a
 * regular file ignores the flag. */
static void log_previous_state(const char *path, bool *exists)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    *exists = fd >= 0 || errno != ENOENT;
    if (fd < 0)
        return;
    layout_header h;
    if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
        memcmp(h.magic, LAYOUT_MAGIC, LAYOUT_MAGIC_LEN) == 0) {
        if (h.clean_shutdown)
            coord_log_info("storage.dat was shut down cleanly at generation "
                           "%llu", (unsigned long long)h.generation);
        else
            coord_log_warn("storage.dat was not shut down cleanly (last "
                           "writer pid %llu, generation %llu): recovering",
                           (unsigned long long)h.writer_pid,
                           (unsigned long long)h.generation);
    }
    close(fd);
}

static int open_store(const coord_options *o, coord_store **out)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/storage.dat", o->dir);
    bool exists;
    log_previous_state(path, &exists);
    /* an existing file keeps its dim; only an explicit --dim is checked */
    coord_store_options so = { .vector_dim = exists && !o->dim_explicit
                                                 ? 0 : o->dim };
    coord_error err = { 0 };
    int rc = coord_store_open(path, &so, out, &err);
    if (rc == 0 && o->dim_explicit && coord_store_dim(*out) != o->dim) {
        coord_log_error("storage.dat has dim %u; --dim %u does not match",
                        coord_store_dim(*out), o->dim);
        coord_store_close(*out, true);
        *out = NULL; /* shut_down() must not close it again */
        return EXIT_USAGE;
    }
    if (rc) {
        coord_log_error("cannot open %s: %s (%s)", path, err.message,
                        sutra_strerror(rc));
        /* a file that is not Sutra's, of another major version or dim, or
         * damaged, needs the operator; so do the errnos above */
        if (rc == SUTRA_ECORRUPT || rc == SUTRA_EVERSION || rc == SUTRA_EDIM)
            return EXIT_USAGE;
        return rc > 0 ? exit_for_errno(rc) : EXIT_FAILURE_RUNTIME;
    }
    coord_store_stats st;
    coord_store_stats_get(*out, &st);
    coord_log_info("%s %s: generation %llu, last seq %llu, %llu concepts, "
                   "%llu bytes of log, dim %u",
                   exists ? "opened" : "created", path,
                   (unsigned long long)st.generation,
                   (unsigned long long)st.last_seq,
                   (unsigned long long)st.concept_count,
                   (unsigned long long)st.committed_end, st.vector_dim);
    return 0;
}

static int rebuild_dedup(coord_store *store, coord_dedup **out)
{
    int rc = coord_dedup_create(COORD_DEDUP_WINDOW, COORD_DEDUP_MAX_CLIENTS,
                                out);
    if (rc) {
        coord_log_error("duplicate table: %s", sutra_strerror(rc));
        return EXIT_FAILURE_RUNTIME;
    }
    rc = coord_store_recent_commits(store, DEDUP_REBUILD_ENTRIES,
                                    coord_dedup_rebuild_visit, *out);
    if (rc)  /* resends across this restart may apply twice: say so */
        coord_log_warn("duplicate table: commit history unreadable (%s); "
                       "only the newer records restored: resends across "
                       "this restart may apply twice", sutra_strerror(rc));
    coord_log_info("duplicate table: %llu requests of %u clients restored",
                   (unsigned long long)coord_dedup_entry_count(*out),
                   coord_dedup_client_count(*out));
    return 0;
}

/* ---- running ---------------------------------------------------------- */

/* Wait for SIGTERM or SIGINT; returns the signal. */
static int wait_for_stop(const sigset_t *set)
{
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig == SIGHUP)
            coord_log_info("SIGHUP ignored (nothing to reload)");
        /* SIGPIPE: a vanished stderr reader; nothing to do */
    }
}

typedef struct daemon_state {
    coord_store *store;
    coord_dedup *dedup;
    coord_server *server;
    coord_committer *committer;
    coord_metrics *metrics;
    coord_counters counters;
} daemon_state;

/* Say who may write, so an operator can tell a refused writer's cause. */
static void log_allow_lists(const coord_options *o)
{
    if (!o->allow_uid_count && !o->allow_gid_count) {
        coord_log_info("writers: anyone who can open the socket");
        return;
    }
    char text[2 * COORD_ALLOW_MAX * 12 + 32];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "uids");
    for (uint32_t i = 0; i < o->allow_uid_count; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, " %u",
                              o->allow_uids[i]);
    n += (size_t)snprintf(text + n, sizeof(text) - n, "; gids");
    for (uint32_t i = 0; i < o->allow_gid_count; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, " %u",
                              o->allow_gids[i]);
    coord_log_info("writers: only %s (P-AUTH-1)", text);
}

/* The exit status for a request or event socket that cannot listen: an
 * address that can never be served (a scheme NNG does not know, one it
 * cannot parse, an ipc:// path in a directory that is missing or may not
 * be written) is a bad argument; an address in use may pass. */
static int exit_for_listen(int rv)
{
    switch (rv) {
    case NNG_ENOTSUP:
    case NNG_EADDRINVAL:
    case NNG_ENOENT:
    case NNG_EPERM:
        return EXIT_USAGE;
    default:
        return (rv & NNG_ESYSERR) ? exit_for_errno(rv & ~NNG_ESYSERR)
                                  : EXIT_FAILURE_RUNTIME;
    }
}

static int start_serving(const coord_options *o, daemon_state *d)
{
    char err[512] = "";
    int src = coord_server_open(o, d->store, &d->counters, &d->server, err,
                                sizeof(err));
    if (src != 0) {
        coord_log_error("%s", err);
        return exit_for_listen(src);
    }
    /* before any request is taken: a metrics address that cannot be
     * served stops the start-up.  Status 2 (a supervisor should not
     * restart into the same failure) unless the port is only in use, which
     * may pass: the old process still closing, a brief conflict. */
    if (o->metrics_url[0]) {
        char bound[256];
        int mrc = coord_metrics_start(o->metrics_url, coord_server_metrics,
                                      d->server, &d->metrics, bound,
                                      sizeof(bound), err, sizeof(err));
        if (mrc != 0) {
            coord_log_error("%s", err);
            return mrc == NNG_EADDRINUSE ? EXIT_FAILURE_RUNTIME : EXIT_USAGE;
        }
        coord_log_info("metrics on %s", bound);
    }
    coord_committer_config cfg = {
        .sync_policy = o->sync_policy,
        .sync_interval_ms = o->sync_interval_ms,
        .checkpoint_ms = o->checkpoint_ms,
        .published = coord_server_publish,
        .published_arg = d->server,
    };
    int rc = coord_committer_start(d->store, d->dedup, &d->counters, &cfg,
                                   &d->committer);
    if (rc) {
        coord_log_error("cannot start the committer: %s", strerror(rc));
        return EXIT_FAILURE_RUNTIME;
    }
    if ((rc = coord_server_start(d->server, d->committer)) != 0) {
        coord_log_error("cannot start %u contexts: error %d", o->contexts, rc);
        return EXIT_FAILURE_RUNTIME;
    }
    coord_log_info("ready: requests on %s, events on %s, %u contexts, "
                   "sync %s", o->socket_url, o->events_url, o->contexts,
                   coord_sync_policy_name(o->sync_policy));
    log_allow_lists(o);
    return 0;
}

/* Tear down whatever was started, in reverse; returns the exit status. */
static int shut_down(daemon_state *d, int status)
{
    coord_metrics_stop(d->metrics); /* it reads the server's counters */
    d->metrics = NULL;
    if (d->server) {
        coord_server_drain(d->server);
        coord_log_info("draining: new requests are refused");
    }
    if (d->committer && coord_committer_stop(d->committer) != 0)
        status = EXIT_FAILURE_RUNTIME;
    if (d->server) /* the idempotency table is final now */
        coord_server_freeze(d->server, d->dedup);
    bool healthy = false;
    if (d->store) {
        coord_store_stats st;
        coord_store_stats_get(d->store, &st);
        healthy = !st.read_only;
        int rc = coord_store_close(d->store, healthy);
        if (rc) {
            coord_log_error("cannot mark the storage closed cleanly: %s; "
                            "the next start runs recovery", sutra_strerror(rc));
            healthy = false;
        }
        coord_log_info("storage closed %s at generation %llu",
                       healthy ? "cleanly" : "without the clean mark",
                       (unsigned long long)st.generation);
        if (!healthy)
            status = EXIT_FAILURE_RUNTIME;
    }
    /* The store is closed, with every acknowledged write in it.  What is
     * left is NNG's teardown (the last replies leave, then the sockets
     * close), and NNG 1.5.2 can hang in it (coordinator/watchdog.h). */
    coord_watchdog *watch = NULL;
    if (coord_watchdog_arm(TEARDOWN_LIMIT_MS, "closing the NNG sockets",
                           status, &watch) != 0)
        coord_log_warn("no watchdog for closing the NNG sockets");
    coord_server_close(d->server);
    coord_dedup_destroy(d->dedup);
    /* Closed sockets free their pipes and listeners on NNG's reaper
     * thread; nng_fini waits for it, so exit leaves nothing behind
     * (LeakSanitizer saw those objects when the reaper lagged). */
    nng_fini();
    coord_watchdog_disarm(watch);
    return status;
}

/*
 * Every request arrives in a buffer NNG allocates for it and frees after
 * the reply; a 1,000-op batch of 384-dim concepts is 1.8 MB.  glibc's
 * defaults serve such a size with mmap, or, once one was freed, from a
 * heap whose free top it returns to the kernel as soon as it exceeds twice
 * that size — which two batches in flight reach every time.  Each batch
 * then lands on fresh pages, one page fault per 4 KiB, which doubled the
 * cost of pipelined batches (docs/performance.md).  Fixed thresholds keep
 * freed request memory (up to 64 MiB free per heap) for the next request.
 */
static void keep_request_memory(void)
{
    /* Another allocator (a sanitizer's, a preloaded one) may refuse: it
     * then keeps its own policy, which is no error. */
    if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 ||
        mallopt(M_TRIM_THRESHOLD, 64 << 20) != 1)
        coord_log_debug("the allocator did not take the thresholds for "
                        "request memory");
}

static int run(const coord_options *o, const sigset_t *signals)
{
    int status = make_dir(o->dir);
    int lock_fd = -1;
    if (status == 0)
        status = lock_dir(o->dir, &lock_fd);
    if (status)
        return status;
    daemon_state d = { 0 };
    coord_log_info("starting (pid %ld) on %s", (long)getpid(), o->dir);
    status = open_store(o, &d.store);
    if (status == 0)
        status = rebuild_dedup(d.store, &d.dedup);
    if (status == 0)
        status = start_serving(o, &d);
    if (status == 0) {
        int sig = wait_for_stop(signals);
        coord_log_info("%s received: shutting down",
                       sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    status = shut_down(&d, status);
    coord_log_info("stopped (exit %d)", status);
    close(lock_fd); /* releases the lock last, after every byte is out */
    return status;
}

int main(int argc, char **argv)
{
    coord_options opts;
    char err[512];
    if (coord_options_parse(argc, argv, &opts, err, sizeof(err)) != 0) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        coord_options_usage(stderr);
        return EXIT_USAGE;
    }
    if (opts.help) {
        coord_options_usage(stdout);
        return 0;
    }
    if (opts.version) {
        printf(PROGRAM " %d.%d.%d (format %u.%u, protocol %u)\n",
               SUTRA_VERSION_MAJOR, SUTRA_VERSION_MINOR, SUTRA_VERSION_PATCH,
               LAYOUT_FORMAT_MAJOR, LAYOUT_FORMAT_MINOR, WIRE_VERSION);
        return 0;
    }
    coord_log_set_level(opts.log_level);
    keep_request_memory();
    /* before any thread exists, so every thread inherits the mask */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    return run(&opts, &signals);
}
