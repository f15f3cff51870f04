/*
 * coordinator/options.c — parse and check the coordinator's command line.
 *
 * Every limit is checked here, before the daemon creates a directory or a
 * socket, so a typo costs nothing and a bad value never reaches the store or
 * NNG.  Flags take their value as the next argument or after '='.  The
 * socket path limit matters in practice: a data directory nested deeply
 * enough makes the default ipc:// path longer than sun_path, and NNG would
 * only fail later with an opaque "invalid address".  User and group names
 * of the allow-lists are resolved here too, once, so the request path only
 * compares numbers.
 */
#include "coordinator/options.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout/format.h"
#include "layout/wire.h"
#include "sutra/sutra.h"

static int fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_size, const char *fmt, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return SUTRA_EINVAL;
}

int coord_size_parse(const char *text, uint64_t *out)
{
    if (!text || *text < '0' || *text > '9')
        return SUTRA_EINVAL; /* no sign, no space, no empty string */
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno)
        return SUTRA_EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end != '\0')
        return SUTRA_EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return SUTRA_EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

int coord_sync_parse(const char *text, enum coord_sync_policy *policy,
                     uint64_t *interval_ms)
{
    if (!text)
        return SUTRA_EINVAL;
    if (strcmp(text, "commit") == 0 || strcmp(text, "none") == 0) {
        *policy = text[0] == 'c' ? COORD_SYNC_COMMIT : COORD_SYNC_NONE;
        *interval_ms = 0;
        return 0;
    }
    static const char prefix[] = "interval:";
    if (strncmp(text, prefix, sizeof(prefix) - 1) != 0)
        return SUTRA_EINVAL;
    const char *ms = text + sizeof(prefix) - 1;
    uint64_t v;
    /* a millisecond count, so no size suffixes; an hour is plenty */
    if (*ms < '0' || *ms > '9' || strpbrk(ms, "kKmMgG") ||
        coord_size_parse(ms, &v) != 0 || v == 0 || v > 3600000u)
        return SUTRA_EINVAL;
    *policy = COORD_SYNC_INTERVAL;
    *interval_ms = v;
    return 0;
}

const char *coord_sync_policy_name(enum coord_sync_policy policy)
{
    switch (policy) {
    case COORD_SYNC_COMMIT: return "commit";
    case COORD_SYNC_INTERVAL: return "interval";
    case COORD_SYNC_NONE: return "none";
    }
    return "?";
}

void coord_options_usage(FILE *to)
{
    fprintf(to,
        "usage: sutra-coordinator DIR [options]\n"
        "  --socket URL          requests (default ipc://DIR/coordinator.sock)\n"
        "  --events URL          generation events (default ipc://DIR/events.sock)\n"
        "  --sync POLICY         commit (default), interval:MS or none\n"
        "  --checkpoint MS       whole-file sync at most this long after a write\n"
        "                        (default 1000; 10000 under --sync none)\n"
        "  --max-message BYTES   largest request (default 64M; K/M/G suffixes)\n"
        "  --max-content BYTES   largest concept content (default 16M, or\n"
        "                        --max-message when that is smaller)\n"
        "  --max-batch N         most ops per request (default %u)\n"
        "  --dim N               embedding dimension of a new file (default %u)\n"
        "  --contexts N          requests served concurrently (default %u)\n"
        "  --max-connections N   client connections at once (default %u)\n"
        "  --log-level LEVEL     error, warn, info (default) or debug\n"
        "  --allow-uid UID,...   only these users may write (names or numbers;\n"
        "                        repeatable; ping and stats stay open)\n"
        "  --allow-gid GID,...   ...or processes whose primary group is one of these\n"
        "  --metrics URL         serve Prometheus metrics at http://HOST:PORT[/PATH]\n"
        "                        (off by default; path /metrics; port 0 = any)\n"
        "  --help, --version\n",
        COORD_DEFAULT_MAX_BATCH, COORD_DEFAULT_DIM, COORD_DEFAULT_CONTEXTS,
        COORD_DEFAULT_MAX_CONNECTIONS);
}

/* Make `dir` absolute (without touching it: it may not exist yet) and drop
 * trailing slashes. */
static int absolute_dir(const char *dir, char *out, size_t size, char *err,
                        size_t err_size)
{
    if (!*dir)
        return fail(err, err_size, "DIR must not be empty");
    int n;
    if (dir[0] == '/') {
        n = snprintf(out, size, "%s", dir);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return fail(err, err_size, "cannot resolve DIR: %s", strerror(errno));
        while (dir[0] == '.' && dir[1] == '/')
            dir += 2;
        n = strcmp(dir, ".") == 0 ? snprintf(out, size, "%s", cwd)
                                  : snprintf(out, size, "%s/%s", cwd, dir);
    }
    if (n < 0 || (size_t)n >= size)
        return fail(err, err_size, "DIR is too long");
    size_t len = (size_t)n;
    while (len > 1 && out[len - 1] == '/')
        out[--len] = '\0';
    return 0;
}

/* Check an NNG URL; for ipc:// the path must fit in sun_path. */
static int check_url(const char *flag, const char *url, char *err,
                     size_t err_size)
{
    if (strncmp(url, "ipc://", 6) == 0 && strlen(url + 6) > COORD_IPC_PATH_MAX)
        return fail(err, err_size,
                    "%s: socket path %s is %zu bytes; the limit for a Unix "
                    "socket is %u (use a shorter DIR or pass --socket/--events)",
                    flag, url + 6, strlen(url + 6), COORD_IPC_PATH_MAX);
    if (strlen(url) > COORD_URL_MAX)
        return fail(err, err_size, "%s: URL is longer than %u bytes", flag,
                    COORD_URL_MAX);
    if (!strstr(url, "://") || strstr(url, "://")[3] == '\0')
        return fail(err, err_size, "%s: '%s' is not a URL", flag, url);
    return 0;
}

static int default_url(char *out, const char *dir, const char *name,
                       const char *flag, char *err, size_t err_size)
{
    char url[PATH_MAX + 32];
    snprintf(url, sizeof(url), "ipc://%s/%s", dir, name);
    int rc = check_url(flag, url, err, err_size);
    if (rc == 0)
        memcpy(out, url, strlen(url) + 1);
    return rc;
}

/* A count (`size` false: decimal digits only) or a size (K/M/G allowed). */
static int parse_u32(const char *flag, const char *v, bool size, uint32_t min,
                     uint32_t max, uint32_t *out, char *err, size_t err_size)
{
    uint64_t n;
    bool digits = v[0] != '\0' && strspn(v, "0123456789") == strlen(v);
    if ((!size && !digits) || coord_size_parse(v, &n) != 0 || n < min ||
        n > max)
        return fail(err, err_size, "%s: '%s' is not a %s in %u..%u", flag, v,
                    size ? "size" : "number", min, max);
    *out = (uint32_t)n;
    return 0;
}

/* One getgrnam_r/getpwnam_r into `buf`: 0 with *id, SUTRA_ENOTFOUND, or
 * the lookup's errno (ERANGE: `buf` is too small).  POSIX lets a backend
 * report "no such name" as ENOENT or ESRCH instead of a NULL result. */
static int principal_lookup_once(bool group, const char *name, char *buf,
                                 size_t size, uint32_t *id)
{
    int rc;
    if (group) {
        struct group g, *found = NULL;
        rc = getgrnam_r(name, &g, buf, size, &found);
        if (rc == 0 && found)
            *id = (uint32_t)found->gr_gid;
        else if (rc == 0)
            rc = SUTRA_ENOTFOUND;
    } else {
        struct passwd pw, *found = NULL;
        rc = getpwnam_r(name, &pw, buf, size, &found);
        if (rc == 0 && found)
            *id = (uint32_t)found->pw_uid;
        else if (rc == 0)
            rc = SUTRA_ENOTFOUND;
    }
    return rc == ENOENT || rc == ESRCH ? SUTRA_ENOTFOUND : rc;
}

int coord_principal_lookup(bool group, const char *name, size_t initial_size,
                           uint32_t *id)
{
    size_t size = initial_size ? initial_size : 1;
    for (;;) {
        if (size > COORD_PRINCIPAL_BUFFER_MAX)
            size = COORD_PRINCIPAL_BUFFER_MAX;
        char *buf = malloc(size);
        if (!buf)
            return ENOMEM;
        uint32_t found = 0;
        int rc = principal_lookup_once(group, name, buf, size, &found);
        free(buf);
        if (rc == 0)
            *id = found;
        /* ERANGE: the entry (a group's member list) needs a bigger buffer */
        if (rc != ERANGE || size == COORD_PRINCIPAL_BUFFER_MAX)
            return rc;
        size *= 2;
    }
}

/* The first buffer size to try: what the C library suggests, but no less
 * than 16 KiB, which holds every ordinary entry in one call. */
static size_t principal_buffer_size(bool group)
{
    long hint = sysconf(group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
    return hint > 16384 ? (size_t)hint : 16384;
}

/* A user (or group) as a decimal id or a name from the user (group)
 * database.  (uid_t)-1 is not an id: chown() and setreuid() read it as
 * "unchanged".  Returns 0; SUTRA_EINVAL for a bad number; otherwise as
 * coord_principal_lookup(). */
static int principal_parse(bool group, const char *text, uint32_t *out)
{
    if (*text >= '0' && *text <= '9') {
        uint64_t n;
        if (strpbrk(text, "kKmMgG") || coord_size_parse(text, &n) != 0 ||
            n >= UINT32_MAX)
            return SUTRA_EINVAL;
        *out = (uint32_t)n;
        return 0;
    }
    return coord_principal_lookup(group, text, principal_buffer_size(group),
                                  out);
}

/* Why `item` of a --allow-uid/-gid list could not be used: a bad number,
 * a name the database does not hold, or a database that could not answer
 * (then the name may well exist: say so rather than call it unknown). */
static int principal_fail(const char *flag, bool group, const char *item,
                          int rc, char *err, size_t err_size)
{
    const char *kind = group ? "group" : "user";
    if (rc == SUTRA_EINVAL)
        return fail(err, err_size, "%s: '%s' is not a %s name or number",
                    flag, item, kind);
    if (rc == SUTRA_ENOTFOUND)
        return fail(err, err_size, "%s: no %s named '%s'", flag, kind, item);
    if (rc == ERANGE)
        return fail(err, err_size, "%s: cannot look up %s '%s': its entry is "
                    "larger than %u KiB", flag, kind, item,
                    COORD_PRINCIPAL_BUFFER_MAX / 1024);
    return fail(err, err_size, "%s: cannot look up %s '%s': %s", flag, kind,
                item, strerror(rc));
}

/* "--allow-uid a,b,c": add each entry (once) to the list. */
static int allow_list_add(const char *flag, const char *v, uint32_t *list,
                          uint32_t *count, char *err, size_t err_size)
{
    bool group = strcmp(flag, "--allow-gid") == 0;
    for (const char *p = v;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[256];
        if (len == 0 || len >= sizeof(item))
            return fail(err, err_size, "%s: '%s' has an empty or overlong "
                        "entry", flag, v);
        memcpy(item, p, len);
        item[len] = '\0';
        uint32_t id;
        int rc = principal_parse(group, item, &id);
        if (rc != 0)
            return principal_fail(flag, group, item, rc, err, err_size);
        bool known = false;
        for (uint32_t i = 0; i < *count; i++)
            known = known || list[i] == id;
        if (!known && *count >= COORD_ALLOW_MAX)
            return fail(err, err_size, "%s: more than %u entries", flag,
                        COORD_ALLOW_MAX);
        if (!known)
            list[(*count)++] = id;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* Apply one "--flag value".  Returns 0, or SUTRA_EINVAL with err set. */
static int apply_flag(coord_options *o, const char *flag, const char *v,
                      char *err, size_t err_size)
{
    uint64_t n;
    if (strcmp(flag, "--socket") == 0 || strcmp(flag, "--events") == 0) {
        int rc = check_url(flag, v, err, err_size);
        if (rc == 0)
            snprintf(flag[2] == 's' ? o->socket_url : o->events_url,
                     COORD_URL_MAX + 1, "%s", v);
        return rc;
    }
    if (strcmp(flag, "--metrics") == 0) {
        /* checked again (host, port) when the server starts */
        if (strncmp(v, "http://", 7) != 0 || !v[7] ||
            strlen(v) > COORD_URL_MAX)
            return fail(err, err_size, "--metrics: '%s' is not an "
                        "http://HOST:PORT[/PATH] URL of at most %u bytes", v,
                        COORD_URL_MAX);
        snprintf(o->metrics_url, sizeof(o->metrics_url), "%s", v);
        return 0;
    }
    if (strcmp(flag, "--sync") == 0) {
        if (coord_sync_parse(v, &o->sync_policy, &o->sync_interval_ms) != 0)
            return fail(err, err_size, "--sync: '%s' is not commit, "
                        "interval:MS (1..3600000) or none", v);
        return 0;
    }
    if (strcmp(flag, "--checkpoint") == 0)
        return parse_u32(flag, v, false, 1, 3600000u, &o->checkpoint_ms, err,
                         err_size);
    if (strcmp(flag, "--max-message") == 0) {
        /* at least a header and one op; at most what NNG's receive limit
         * (max_message + WIRE_RECV_SLACK + the REQ header, a u32 in its IPC
         * transport) takes */
        const uint64_t top = UINT32_MAX - WIRE_RECV_SLACK - 64u;
        if (coord_size_parse(v, &n) != 0 || n < 64 || n > top)
            return fail(err, err_size, "--max-message: '%s' is not a size in "
                        "64..%llu", v, (unsigned long long)top);
        o->max_message = n;
        return 0;
    }
    if (strcmp(flag, "--max-content") == 0) {
        o->max_content_explicit = true;
        return parse_u32(flag, v, true, 0, LAYOUT_MAX_CONTENT,
                         &o->max_content, err, err_size);
    }
    if (strcmp(flag, "--max-batch") == 0)
        return parse_u32(flag, v, false, 1, UINT32_MAX, &o->max_batch, err,
                         err_size);
    if (strcmp(flag, "--dim") == 0) {
        o->dim_explicit = true;
        return parse_u32(flag, v, false, 0, LAYOUT_MAX_DIM, &o->dim, err,
                         err_size);
    }
    if (strcmp(flag, "--max-connections") == 0)
        return parse_u32(flag, v, false, 1, UINT32_MAX, &o->max_connections,
                         err, err_size);
    if (strcmp(flag, "--contexts") == 0)
        return parse_u32(flag, v, false, 1, COORD_MAX_CONTEXTS, &o->contexts,
                         err, err_size);
    if (strcmp(flag, "--allow-uid") == 0)
        return allow_list_add(flag, v, o->allow_uids, &o->allow_uid_count,
                              err, err_size);
    if (strcmp(flag, "--allow-gid") == 0)
        return allow_list_add(flag, v, o->allow_gids, &o->allow_gid_count,
                              err, err_size);
    if (strcmp(flag, "--log-level") == 0) {
        if (coord_log_level_parse(v, &o->log_level) != 0)
            return fail(err, err_size, "--log-level: '%s' is not error, warn, "
                        "info or debug", v);
        return 0;
    }
    return fail(err, err_size, "unknown option '%s'", flag);
}

static void set_defaults(coord_options *o)
{
    memset(o, 0, sizeof(*o));
    o->sync_policy = COORD_SYNC_COMMIT;
    o->max_message = COORD_DEFAULT_MAX_MESSAGE;
    o->max_content = COORD_DEFAULT_MAX_CONTENT;
    o->max_batch = COORD_DEFAULT_MAX_BATCH;
    o->dim = COORD_DEFAULT_DIM;
    o->contexts = COORD_DEFAULT_CONTEXTS;
    o->max_connections = COORD_DEFAULT_MAX_CONNECTIONS;
    o->log_level = COORD_LOG_INFO;
}

static bool known_flag(const char *flag)
{
    static const char *const flags[] = {
        "--socket", "--events", "--sync", "--checkpoint", "--max-message",
        "--max-content",
        "--max-batch", "--dim", "--contexts", "--max-connections",
        "--log-level", "--allow-uid",
        "--allow-gid", "--metrics", NULL };
    for (int i = 0; flags[i]; i++)
        if (strcmp(flag, flags[i]) == 0)
            return true;
    return false;
}

/* Walk argv; fills o (flags and DIR in o->dir as given). */
static int parse_args(int argc, char *const argv[], coord_options *o,
                      char *err, size_t err_size)
{
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            o->help = true;
            continue;
        }
        if (strcmp(arg, "--version") == 0) {
            o->version = true;
            continue;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            if (dir)
                return fail(err, err_size, "unexpected argument '%s'", arg);
            dir = arg;
            continue;
        }
        char flag[32];
        const char *value;
        const char *eq = strchr(arg, '=');
        if (eq) {
            if ((size_t)(eq - arg) >= sizeof(flag))
                return fail(err, err_size, "unknown option '%s'", arg);
            memcpy(flag, arg, (size_t)(eq - arg));
            flag[eq - arg] = '\0';
            value = eq + 1;
        } else {
            size_t n = strlen(arg);
            if (n >= sizeof(flag))
                return fail(err, err_size, "unknown option '%s'", arg);
            memcpy(flag, arg, n + 1);
            if (!known_flag(flag))
                return fail(err, err_size, "unknown option '%s'", arg);
            if (i + 1 >= argc)
                return fail(err, err_size, "%s needs a value", arg);
            value = argv[++i];
        }
        int rc = apply_flag(o, flag, value, err, err_size);
        if (rc)
            return rc;
    }
    if (o->help || o->version)
        return 0;
    if (!dir)
        return fail(err, err_size, "missing DIR");
    return absolute_dir(dir, o->dir, sizeof(o->dir), err, err_size);
}

int coord_options_parse(int argc, char *const argv[], coord_options *out,
                        char *err, size_t err_size)
{
    coord_options o;
    set_defaults(&o);
    int rc = parse_args(argc, argv, &o, err, err_size);
    if (rc)
        return rc;
    if (!o.help && !o.version) {
        /* the default content limit follows a smaller --max-message down;
         * only an explicit one can contradict it */
        if (!o.max_content_explicit && o.max_content > o.max_message)
            o.max_content = (uint32_t)o.max_message;
        if (o.max_content > o.max_message)
            return fail(err, err_size, "--max-content (%u) is larger than "
                        "--max-message (%llu)", o.max_content,
                        (unsigned long long)o.max_message);
        if (!o.socket_url[0] &&
            (rc = default_url(o.socket_url, o.dir, "coordinator.sock",
                              "--socket", err, err_size)) != 0)
            return rc;
        if (!o.events_url[0] &&
            (rc = default_url(o.events_url, o.dir, "events.sock", "--events",
                              err, err_size)) != 0)
            return rc;
        if (strcmp(o.socket_url, o.events_url) == 0)
            return fail(err, err_size, "--socket and --events must differ");
        if ((o.allow_uid_count || o.allow_gid_count) &&
            strncmp(o.socket_url, "ipc://", 6) != 0)
            return fail(err, err_size, "--allow-uid/--allow-gid need an "
                        "ipc:// --socket: only IPC tells who the peer is");
    }
    *out = o;
    return 0;
}
