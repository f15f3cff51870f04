/*
 * tests/fuzz/fuzz_memfile.h — a storage.dat that lives in memory, for the
 * targets that open files: a memfd, reached by path through a
 * storage.dat symlink to /proc/self/fd/N in a per-process temporary
 * directory, so that opens, extends and syncs touch no disk.  Set up once
 * per process, filled again for each input, removed at exit.
 */
#ifndef SUTRA_TESTS_FUZZ_MEMFILE_H
#define SUTRA_TESTS_FUZZ_MEMFILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct fuzz_memfile {
    int fd;         /* the memfd; -1 until set up      */
    char dir[64];   /* the directory to open            */
    char path[96];  /* dir/storage.dat, the symlink     */
} fuzz_mem = { .fd = -1 };

static void fuzz_memfile_remove(void)
{
    unlink(fuzz_mem.path);
    rmdir(fuzz_mem.dir);
}

static inline void fuzz_memfile_setup(void)
{
    if (fuzz_mem.fd >= 0)
        return;
    fuzz_mem.fd = memfd_create("storage.dat", MFD_CLOEXEC);
    strcpy(fuzz_mem.dir, "/tmp/sutra-fuzz-XXXXXX");
    if (fuzz_mem.fd < 0 || !mkdtemp(fuzz_mem.dir))
        abort();
    char target[64];
    snprintf(target, sizeof(target), "/proc/self/fd/%d", fuzz_mem.fd);
    snprintf(fuzz_mem.path, sizeof(fuzz_mem.path), "%s/storage.dat",
             fuzz_mem.dir);
    if (symlink(target, fuzz_mem.path) != 0)
        abort();
    atexit(fuzz_memfile_remove);
}

/* Make the file exactly these `size` bytes. */
static inline void fuzz_memfile_load(const uint8_t *bytes, size_t size)
{
    if (ftruncate(fuzz_mem.fd, 0) != 0 ||
        ftruncate(fuzz_mem.fd, (off_t)size) != 0)
        abort();
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(fuzz_mem.fd, bytes + done, size - done,
                           (off_t)done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
}

#endif
