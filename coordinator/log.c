/*
 * coordinator/log.c — timestamped, level-filtered lines on stderr.
 *
 * Each line is formatted into a stack buffer and written with a single
 * write(2): no stdio lock, no allocation, no interleaving between threads
 * (a write of at most PIPE_BUF bytes to a pipe is atomic, and to a file
 * opened with O_APPEND as well).  The level and fd are relaxed atomics: a
 * change races harmlessly with lines being written.
 */
#include "coordinator/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sutra/sutra.h"

#define LOG_LINE_MAX 1024

static _Atomic int log_level = COORD_LOG_INFO;
static _Atomic int log_fd = STDERR_FILENO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int coord_log_level_parse(const char *name, enum coord_log_level *out)
{
    for (int i = COORD_LOG_ERROR; i <= COORD_LOG_DEBUG; i++) {
        if (name && strcmp(name, level_names[i]) == 0) {
            *out = (enum coord_log_level)i;
            return 0;
        }
    }
    return SUTRA_EINVAL;
}

const char *coord_log_level_name(enum coord_log_level level)
{
    if ((int)level < COORD_LOG_ERROR || level > COORD_LOG_DEBUG)
        return "?";
    return level_names[level];
}

void coord_log_set_level(enum coord_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

void coord_log_set_fd(int fd)
{
    atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

bool coord_log_enabled(enum coord_log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* "2026-11-22T10:00:00.123Z " into buf; returns the bytes written. */
static size_t format_timestamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);  /* reentrant and allocation-free */
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    return n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere left to report a failing stderr */
        buf += n;
        len -= (size_t)n;
    }
}

void coord_log(enum coord_log_level level, const char *fmt, ...)
{
    if (!coord_log_enabled(level))
        return;
    int saved_errno = errno; /* callers often log and then look at errno */
    char line[LOG_LINE_MAX];
    size_t len = format_timestamp(line, sizeof(line));
    int n = snprintf(line + len, sizeof(line) - len, "%-5s ",
                     coord_log_level_name(level));
    if (n > 0)
        len += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    va_end(ap);
    if (n > 0)
        len += (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* cut an over-long line, keep the newline */
    line[len++] = '\n';
    write_all(atomic_load_explicit(&log_fd, memory_order_relaxed), line, len);
    errno = saved_errno;
}
