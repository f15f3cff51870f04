/*
 * tests/unit/file_copy.h — a copy of a test's storage.dat in a new
 * directory, for tests that damage a file with pwrite while the store
 * that wrote it keeps its own intact.
 *
 * Header-only, like store_fixture.h.
 */
#ifndef SUTRA_TESTS_FILE_COPY_H
#define SUTRA_TESTS_FILE_COPY_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Copy the file `from` to `dir`/storage.dat, where `dir` (cap bytes) is
 * made from the mkdtemp template `templ`. */
static inline void fc_copy_file(const char *from, const char *templ,
                                char *dir, size_t cap)
{
    snprintf(dir, cap, "%s", templ);
    assert_non_null(mkdtemp(dir));
    char to[128];
    snprintf(to, sizeof(to), "%s/storage.dat", dir);
    int in = open(from, O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    assert_int_equal(n, 0);
    close(in);
    close(out);
}

#endif
