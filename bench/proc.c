/*
 * bench/proc.c — child processes for the benchmarks: clients, servers and a
 * real sutra-coordinator, plus the counters that count their wake-ups.
 *
 * NNG cannot be used in a child forked after its parent used it, so the
 * benchmark parent never touches NNG: every client, every echo server and
 * the coordinator run in children, and the parent only forks, opens start
 * gates, reads /proc and collects results from shared memory.  Readiness of
 * a coordinator is therefore judged from the file system (its socket file
 * appears), not by pinging it from the parent.
 *
 * Concurrency: a bench_gate is written by several processes through C11
 * atomics on shared memory; everything else is parent-only.
 */
#include "bench/bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *bench_shared_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void bench_shared_free(void *p, size_t bytes)
{
    if (p != NULL)
        munmap(p, bytes);
}

pid_t bench_spawn(int (*fn)(void *), void *arg)
{
    fflush(NULL); /* a child must not flush the parent's buffered output */
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg) == 0 ? 0 : 1);
    if (pid < 0)
        perror("bench: fork");
    return pid;
}

int bench_wait(pid_t pid, const char *what)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("bench: waitpid");
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "bench: %s killed by signal %d\n", what,
                WTERMSIG(status));
    else
        fprintf(stderr, "bench: %s exited with %d\n", what,
                WEXITSTATUS(status));
    return -1;
}

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

/* ---- counters ------------------------------------------------------------ */

static uint64_t status_ctxsw(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[256];
    uint64_t total = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long v;
        if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
            total += v;
    }
    fclose(f);
    return total;
}

uint64_t bench_proc_ctxsw(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char status[400];
        snprintf(status, sizeof(status), "%s/%s/status", path, e->d_name);
        total += status_ctxsw(status);
    }
    closedir(d);
    return total;
}

uint64_t bench_self_ctxsw(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
}

/* ---- gates ------------------------------------------------------------------ */

void bench_gate_enter(bench_gate *g)
{
    atomic_fetch_add((_Atomic int *)&g->ready, 1);
    while (atomic_load((_Atomic int *)&g->go) == 0)
        sleep_us(50);
}

/* True if any of the children has already exited (so it will never be
 * ready); reaps nothing it does not report. */
static bool child_died(int children, const pid_t *pids)
{
    for (int i = 0; i < children; i++) {
        int status;
        if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
            fprintf(stderr, "bench: child %d exited before the start\n",
                    (int)pids[i]);
            return true;
        }
    }
    return false;
}

int bench_gate_wait(bench_gate *g, int children, const pid_t *pids)
{
    uint64_t deadline = bench_now_ns() + 60ull * 1000000000ull;
    while (atomic_load((_Atomic int *)&g->ready) < children) {
        if (child_died(children, pids) || bench_now_ns() > deadline)
            return -1;
        sleep_us(200);
    }
    return 0;
}

void bench_gate_release(bench_gate *g)
{
    g->start_ns = bench_now_ns();
    atomic_store((_Atomic int *)&g->go, 1);
}

/* ---- directories -------------------------------------------------------------- */

int bench_tempdir(const char *tag, char *out)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, 256, "%s/sutra-%s-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", tag);
    return mkdtemp(out) != NULL ? 0 : errno;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void bench_remove_tree(const char *dir)
{
    if (dir != NULL && dir[0] != '\0')
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the coordinator ------------------------------------------------------------ */

const char *bench_coord_path(void)
{
    static char path[512];
    const char *c = getenv("SUTRA_COORDINATOR");
    if (c != NULL && c[0] != '\0')
        return c;
    snprintf(path, sizeof(path), "%s/bin/sutra-coordinator", bench_build_dir());
    return path;
}

static void print_log_tail(const char *dir)
{
    char path[320], line[512];
    snprintf(path, sizeof(path), "%s/coordinator.log", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "  coordinator: %s", line);
    fclose(f);
}

static void exec_coordinator(const char *dir, const char *sync)
{
    char log[320], dim[16];
    snprintf(log, sizeof(log), "%s/coordinator.log", dir);
    snprintf(dim, sizeof(dim), "%u", BENCH_DIM);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    const char *path = bench_coord_path();
    execl(path, path, dir, "--sync", sync, "--dim", dim, "--max-message",
          "16777216", (char *)NULL);
    fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

int bench_coord_start(const char *sync, bench_coord *out)
{
    bench_coord c = { .pid = -1 };
    if (bench_tempdir("bench-coord", c.dir) != 0) {
        perror("bench: mkdtemp");
        return -1;
    }
    fflush(NULL);
    c.pid = fork();
    if (c.pid == 0)
        exec_coordinator(c.dir, sync);
    if (c.pid < 0) {
        perror("bench: fork");
        bench_remove_tree(c.dir);
        return -1;
    }
    char sock[320];
    snprintf(sock, sizeof(sock), "%s/coordinator.sock", c.dir);
    uint64_t deadline = bench_now_ns() + 30ull * 1000000000ull;
    struct stat st;
    while (stat(sock, &st) != 0) {
        int status;
        if (waitpid(c.pid, &status, WNOHANG) == c.pid ||
            bench_now_ns() > deadline) {
            fprintf(stderr, "bench: %s --sync %s did not start\n",
                    bench_coord_path(), sync);
            print_log_tail(c.dir);
            kill(c.pid, SIGKILL);
            waitpid(c.pid, &status, 0);
            bench_remove_tree(c.dir);
            return -1;
        }
        sleep_us(2000);
    }
    *out = c;
    return 0;
}

int bench_coord_stop(bench_coord *c)
{
    if (c->pid <= 0)
        return 0;
    kill(c->pid, SIGTERM);
    uint64_t deadline = bench_now_ns() + 30ull * 1000000000ull;
    int status = 0, rc = -1;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid) {
            rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
            break;
        }
        if (bench_now_ns() > deadline) {
            fprintf(stderr, "bench: coordinator ignored SIGTERM; killing\n");
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            break;
        }
        sleep_us(2000);
    }
    if (rc != 0) {
        fprintf(stderr, "bench: coordinator did not stop cleanly\n");
        print_log_tail(c->dir);
    }
    bench_remove_tree(c->dir);
    c->pid = -1;
    return rc;
}
