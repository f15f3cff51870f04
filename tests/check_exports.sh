#!/bin/sh
# tests/check_exports.sh LIBSUTRA_A LIBSUTRA_SO — the library a program
# links defines no global symbol outside the sutra_ namespace, so none of
# its internals can clash with (or be interposed by) a program's own.
set -u
status=0
for lib in "$@"; do
    case "$lib" in
    *.so*) syms=$(nm -D --defined-only "$lib" | awk '{ print $3 }') ;;
    *) syms=$(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }') ;;
    esac
    if [ -z "$syms" ]; then
        echo "check_exports: $lib exports nothing" >&2
        status=1
        continue
    fi
    stray=$(printf '%s\n' "$syms" | grep -v '^sutra_' | grep -v '^_init$' | grep -v '^_fini$')
    if [ -n "$stray" ]; then
        echo "check_exports: $lib exports symbols outside sutra_*:" >&2
        printf '  %s\n' $stray >&2
        status=1
    fi
    n=$(printf '%s\n' "$syms" | grep -c '^sutra_')
    [ -z "$stray" ] && echo "check_exports: $lib: $n sutra_* symbols, nothing else"
done
exit $status
