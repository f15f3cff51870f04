/*
 * coordinator/lsan_nng.h — under AddressSanitizer, leave allocations made
 * inside libnng out of the exit-time leak check.  Include it in exactly one
 * translation unit of a program (it defines LeakSanitizer's hook, which
 * LeakSanitizer reads at start-up); without AddressSanitizer it is empty.
 *
 * Objects NNG still holds when a process ends are not leaks of that
 * program: NNG 1.5.2 never frees a listener that stopped attaching pipes
 * (issue 1518), nor the pipes it accepted; a reply queued on the pipe of a
 * client that died stays with that pipe; and a child forked while NNG's
 * threads were mid-work (its reaper freeing a closed context, a dialer
 * retrying) inherits objects only those threads pointed to, which the
 * child may not call NNG to free.  nng_fini() cannot reclaim them, and the
 * leak check would turn a clean exit into status 1.  Leaks of libsutra's
 * and the program's own allocations stay reported.
 */
#ifndef SUTRA_COORD_LSAN_NNG_H
#define SUTRA_COORD_LSAN_NNG_H

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SUTRA_LSAN_NNG 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SUTRA_LSAN_NNG 1
#endif

#ifdef SUTRA_LSAN_NNG
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libnng.so\n";
}
#endif

#endif
