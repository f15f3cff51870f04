/*
 * coordinator/log.h — the coordinator's log: one line per event on stderr.
 *
 * The daemon runs under a service manager that timestamps and collects
 * stderr, but lines are stamped here too (UTC, milliseconds) so a log copied
 * out of its journal still orders correctly.  Lines look like
 *   2026-11-22T10:00:00.123Z info  committer started
 * Logging never allocates and writes each line with one write(2), so it is
 * safe from NNG callbacks, the committer and the main thread at once, and a
 * line is never interleaved with another (lines are under PIPE_BUF).
 */
#ifndef SUTRA_COORD_LOG_H
#define SUTRA_COORD_LOG_H

#include <stdbool.h>

enum coord_log_level {
    COORD_LOG_ERROR = 0,
    COORD_LOG_WARN = 1,
    COORD_LOG_INFO = 2,
    COORD_LOG_DEBUG = 3,
};

/** Parse "error", "warn", "info" or "debug".  @return 0 or SUTRA_EINVAL;
 * *out written only on success. */
int coord_log_level_parse(const char *name, enum coord_log_level *out);

/** The level's name as printed in lines ("error", "warn", ...). */
const char *coord_log_level_name(enum coord_log_level level);

/** Set the most verbose level that is printed (default info).  Any thread;
 * takes effect for lines started afterwards (relaxed atomic). */
void coord_log_set_level(enum coord_log_level level);

/** Send lines to `fd` instead of stderr (tests).  Same rules as above. */
void coord_log_set_fd(int fd);

/** Whether a line at `level` would be printed.  Any thread, lock-free. */
bool coord_log_enabled(enum coord_log_level level);

/** Format and write one line (a trailing newline is added; longer lines are
 * cut at 1 KiB).  Any thread; no allocation, no lock. */
void coord_log(enum coord_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define coord_log_error(...) coord_log(COORD_LOG_ERROR, __VA_ARGS__)
#define coord_log_warn(...) coord_log(COORD_LOG_WARN, __VA_ARGS__)
#define coord_log_info(...) coord_log(COORD_LOG_INFO, __VA_ARGS__)
#define coord_log_debug(...)                                                 \
    do {                                                                     \
        if (coord_log_enabled(COORD_LOG_DEBUG))                              \
            coord_log(COORD_LOG_DEBUG, __VA_ARGS__);                         \
    } while (0)

#endif
