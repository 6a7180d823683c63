#include "common/log.h"

#include "common/util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int current_level = SCIM_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void scim_log_set_level(enum scim_log_level level)
{
    atomic_store(&current_level, (int)level);
}

enum scim_log_level scim_log_get_level(void)
{
    return (enum scim_log_level)atomic_load(&current_level);
}

int scim_log_parse_level(const char *s, enum scim_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (scim_streq_ci(s, names[i])) {
            *out = (enum scim_log_level)i;
            return 0;
        }
    }
    if (scim_streq_ci(s, "warning")) {
        *out = SCIM_LOG_WARN;
        return 0;
    }
    return -1;
}

void scim_log(enum scim_log_level level, const char *fmt, ...)
{
    char ts[SCIM_DATETIME_LEN];
    char line[4096];
    va_list ap;
    int n;

    if ((int)level < atomic_load(&current_level))
        return;
    scim_datetime_format(scim_now_us(), ts);
    n = snprintf(line, sizeof line, "ts=%s level=%s ", ts, names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    /* One write per line so that lines from concurrent threads never interleave. */
    flockfile(stderr);
    fputs(line, stderr);
    fputc('\n', stderr);
    funlockfile(stderr);
}
