/* Logging: one line per event on stderr, "ts=... level=... msg=..." key=value form.
 * Never pass tokens, passwords or request bodies to these functions. Thread-safe. */
#ifndef SCIM_COMMON_LOG_H
#define SCIM_COMMON_LOG_H

enum scim_log_level { SCIM_LOG_DEBUG, SCIM_LOG_INFO, SCIM_LOG_WARN, SCIM_LOG_ERROR };

void scim_log_set_level(enum scim_log_level level);
enum scim_log_level scim_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; -1 if unknown. */
int scim_log_parse_level(const char *s, enum scim_log_level *out);
/* Logs `fmt` (key=value pairs by convention) at `level`, prefixed with ts and level. */
void scim_log(enum scim_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define scim_debug(...) scim_log(SCIM_LOG_DEBUG, __VA_ARGS__)
#define scim_info(...) scim_log(SCIM_LOG_INFO, __VA_ARGS__)
#define scim_warn(...) scim_log(SCIM_LOG_WARN, __VA_ARGS__)
#define scim_error(...) scim_log(SCIM_LOG_ERROR, __VA_ARGS__)

#endif
