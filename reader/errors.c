/*
 * reader/errors.c — sutra_strerror(): one static description per SUTRA_E*
 * code, and the OS's text for positive errno values.
 *
 * Callers print these from any thread, so nothing here writes shared state:
 * the SUTRA_E* table is constant, and errno text comes from strerrordesc_np()
 * (glibc's thread-safe, allocation-free table) rather than strerror(), whose
 * buffer is shared by every thread.
 */
#include <string.h>

#include "sutra/sutra.h"

static const char *const sutra_error_text[] = {
    [0] = "success",
    [-SUTRA_ECORRUPT] = "storage file or record failed validation (corrupt)",
    [-SUTRA_EVERSION] = "unknown format or protocol version",
    [-SUTRA_ENOTFOUND] = "no such id at this snapshot",
    [-SUTRA_EPROTO] = "malformed protocol message",
    [-SUTRA_ETOOBIG] = "message, content or batch over a limit",
    [-SUTRA_EBUSY] = "data directory is locked by a running coordinator",
    [-SUTRA_ECLOSED] = "coordinator not reachable or closing",
    [-SUTRA_EFORKED] = "client created before fork(); create clients after forking",
    [-SUTRA_EINVAL] = "invalid argument",
    [-SUTRA_EDIM] = "embedding dimension differs from the file's",
    [-SUTRA_ETIMEDOUT] = "deadline passed",
    [-SUTRA_ESTALE] = "generation not (or no longer) available",
    [-SUTRA_EFULL] = "storage file reached its maximum size",
    [-SUTRA_EUNSUPPORTED] = "operation not supported by this version",
    [-SUTRA_ESUPERSEDED] = "storage file was replaced by compaction; reopen",
    [-SUTRA_EREADONLY] = "coordinator stopped accepting writes after an I/O error",
    [-SUTRA_ERETRY] = "view changed underneath; retry",
    [-SUTRA_ENOPATH] = "no path within the depth limit",
    [-SUTRA_EPERM] = "this process is not allowed to write",
    [-SUTRA_EMAPFULL] = "storage file outgrew this handle's mapping; reopen",
};

#define SUTRA_ERROR_COUNT (sizeof(sutra_error_text) / sizeof(sutra_error_text[0]))

const char *sutra_strerror(int err)
{
    if (err <= 0) {
        /* Compare as unsigned long long: -INT_MIN does not fit an int. */
        unsigned long long index = (unsigned long long)(-(long long)err);
        if (index < SUTRA_ERROR_COUNT && sutra_error_text[index])
            return sutra_error_text[index];
        return "unknown Sutra error";
    }
    const char *text = strerrordesc_np(err);
    return text ? text : "unknown system error";
}
