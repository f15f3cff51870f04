/*
 * coordinator/options.h — the command line of sutra-coordinator.
 *
 *   sutra-coordinator DIR [--socket URL] [--events URL]
 *     [--sync commit|interval:MS|none] [--max-message BYTES]
 *     [--max-content BYTES] [--max-batch N] [--dim N] [--contexts N]
 *     [--log-level error|warn|info|debug] [--allow-uid UID[,UID...]]
 *     [--allow-gid GID[,GID...]] [--metrics http://HOST:PORT[/PATH]]
 *     [--help] [--version]
 *
 * Parsing is pure (no file system access besides getcwd for a relative DIR,
 * and the user and group databases for names given to --allow-uid/-gid) so
 * every rule, including the socket path length, is checked before the
 * daemon touches anything, and unit tests can exercise it directly.
 */
#ifndef SUTRA_COORD_OPTIONS_H
#define SUTRA_COORD_OPTIONS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "coordinator/log.h"

/* Values of wire_stats.sync_policy (P-OP-6). */
enum coord_sync_policy {
    COORD_SYNC_COMMIT = 0,   /* reply after the group is durable           */
    COORD_SYNC_INTERVAL = 1, /* reply after publish; sync every MS          */
    COORD_SYNC_NONE = 2,     /* sync only for flush and at shutdown         */
};

#define COORD_DEFAULT_DIM 384u
#define COORD_DEFAULT_CONTEXTS 64u
#define COORD_MAX_CONTEXTS 4096u
#define COORD_DEFAULT_MAX_MESSAGE (64ull << 20)
#define COORD_DEFAULT_MAX_CONTENT (16u << 20)
#define COORD_DEFAULT_MAX_BATCH 100000u
/* Client connections served at once (--max-connections).  Each may make
 * NNG hold a buffer as large as the message it announces, up to
 * max_message + 64 KiB, while it arrives. */
#define COORD_DEFAULT_MAX_CONNECTIONS 1024u
/* sockaddr_un.sun_path holds 108 bytes including the NUL. */
#define COORD_IPC_PATH_MAX 107u
#define COORD_URL_MAX (COORD_IPC_PATH_MAX + 16u)
/* Entries of each writer allow-list (--allow-uid, --allow-gid). */
#define COORD_ALLOW_MAX 64u
/* Largest buffer a user or group lookup may grow to (a group entry holds
 * its member list). */
#define COORD_PRINCIPAL_BUFFER_MAX (1u << 20)

typedef struct coord_options {
    char dir[PATH_MAX];          /* absolute data directory, no trailing / */
    char socket_url[COORD_URL_MAX + 1]; /* REP socket                      */
    char events_url[COORD_URL_MAX + 1]; /* PUB socket                      */
    char metrics_url[COORD_URL_MAX + 1]; /* Prometheus endpoint; "" = off  */
    enum coord_sync_policy sync_policy;
    uint64_t sync_interval_ms;   /* interval policy only, >= 1             */
    uint32_t checkpoint_ms;      /* --checkpoint; 0 = the policy's default
                                    (coord_committer_config)               */
    uint64_t max_message;        /* whole request bytes                    */
    uint32_t max_content;        /* content bytes per concept              */
    bool max_content_explicit;   /* --max-content given; otherwise the
                                    default, lowered to max_message        */
    uint32_t max_batch;          /* ops per request                        */
    uint32_t dim;                /* vector dim for a new file              */
    bool dim_explicit;           /* --dim given: must match an old file    */
    uint32_t contexts;           /* concurrent requests (nng_ctx count)    */
    uint32_t max_connections;    /* client connections at once             */
    enum coord_log_level log_level;
    /* Writer allow-lists (P-AUTH-1): when either count is nonzero, only a
     * peer whose uid is in allow_uids or whose primary gid is in
     * allow_gids may send writes; ping and stats stay open. */
    uint32_t allow_uids[COORD_ALLOW_MAX];
    uint32_t allow_uid_count;
    uint32_t allow_gids[COORD_ALLOW_MAX];
    uint32_t allow_gid_count;
    bool help;                   /* --help: print usage, exit 0            */
    bool version;                /* --version: print version, exit 0       */
} coord_options;

/**
 * Parse argv (argv[0] is the program name) into *out, applying defaults.
 * A relative DIR is made absolute against the current directory; default
 * socket URLs are ipc://DIR/coordinator.sock and ipc://DIR/events.sock.
 * An ipc:// path longer than 107 bytes is refused (the kernel's limit).
 * Without --max-content the content limit is its default or max_message,
 * whichever is smaller; an explicit one above max_message is refused.
 * --allow-uid/--allow-gid take comma-separated names or numbers, may be
 * repeated (the lists add up), and need an ipc:// request socket: only IPC
 * carries the peer's credentials.  A name is resolved with
 * coord_principal_lookup(); err tells a name the database does not hold
 * from a lookup that failed.
 * @param err  receives a one-line reason on failure (may be NULL).
 * @return 0; SUTRA_EINVAL for a bad or missing argument (the caller prints
 *         usage and exits 2); *out written only on success.
 */
int coord_options_parse(int argc, char *const argv[], coord_options *out,
                        char *err, size_t err_size);

/** Parse "123", "64K", "16M", "1G" (binary multiples, case-insensitive).
 * @return 0 or SUTRA_EINVAL (empty, junk, overflow); *out on success. */
int coord_size_parse(const char *text, uint64_t *out);

/** Parse "commit", "none" or "interval:MS" (MS >= 1, may carry no suffix).
 * @return 0 or SUTRA_EINVAL; outputs on success only. */
int coord_sync_parse(const char *text, enum coord_sync_policy *policy,
                     uint64_t *interval_ms);

/** The policy's name as written on the command line ("interval"...). */
const char *coord_sync_policy_name(enum coord_sync_policy policy);

/**
 * Resolve a user name (group false) or a group name (group true) with
 * getpwnam_r/getgrnam_r, so through NSS.  The entry is read into a heap
 * buffer of `initial_size` bytes (0 counts as 1), doubled on ERANGE up to
 * COORD_PRINCIPAL_BUFFER_MAX: a group with many members outgrows any
 * fixed buffer.  The options parser starts at the C library's suggested
 * size (at least 16 KiB); tests start small to make the lookup grow.
 * @param id  receives the uid or gid, on success only.
 * @return 0; SUTRA_ENOTFOUND (the database holds no such name); or a
 *         positive errno from the lookup: ERANGE (the entry needs more than
 *         COORD_PRINCIPAL_BUFFER_MAX), ENOMEM, EIO, EMFILE, ... (the name
 *         may exist: the database could not be read).
 * Thread rules: any thread; allocates and frees within the call.
 */
int coord_principal_lookup(bool group, const char *name, size_t initial_size,
                           uint32_t *id);

/** Print the usage text. */
void coord_options_usage(FILE *to);

#endif
