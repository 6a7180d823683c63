/* Small helpers with no SCIM, HTTP or SQL knowledge: time, identifiers, randomness, encodings,
 * ASCII case folding. */
#ifndef SCIM_COMMON_UTIL_H
#define SCIM_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wall-clock time in microseconds since the Unix epoch (UTC). */
int64_t scim_now_us(void);
/* Wall-clock time truncated to milliseconds, the precision in which resource timestamps are
 * returned (meta.created, meta.lastModified): stored values then equal what clients see, so a
 * filter such as `meta.created le "<a returned value>"` includes that resource. */
int64_t scim_now_ms_us(void);
/* Monotonic clock in microseconds, for latencies. */
int64_t scim_mono_us(void);

/* Parses an xsd:dateTime / RFC 3339 value ("2015-10-10T14:38:21.8617979-07:00",
 * "0001-01-03T00:00:00Z", "2026-01-01T00:00:00"; no offset means UTC) into microseconds since
 * the epoch (fractions beyond microseconds are truncated). Returns 0, or -1 if `s` is not one. */
int scim_datetime_parse(const char *s, int64_t *out_us);
/* Formats microseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC, milliseconds) into
 * `out`, which must hold SCIM_DATETIME_LEN bytes. */
#define SCIM_DATETIME_LEN 32
void scim_datetime_format(int64_t us, char out[SCIM_DATETIME_LEN]);

/* Fills `buf` with cryptographically secure random bytes; -1 on failure. */
int scim_random_bytes(void *buf, size_t len);
/* A random (version 4) UUID in canonical lower-case form; `out` holds 37 bytes. */
int scim_uuid4(char out[37]);

/* SHA-256 of `len` bytes. */
void scim_sha256(const void *data, size_t len, unsigned char out[32]);
/* Lower-case hex of `len` bytes into `out` (2*len+1 bytes). */
void scim_hex(const unsigned char *in, size_t len, char *out);
/* Unpadded base64url of `len` bytes into `out` (at least 4*((len+2)/3)+1 bytes). */
void scim_base64url(const unsigned char *in, size_t len, char *out);
/* Constant-time equality of two byte strings of the same length. */
bool scim_ct_equal(const void *a, const void *b, size_t len);

/* ASCII case-insensitive comparisons (SCIM names are ASCII). */
int scim_strcasecmp(const char *a, const char *b);
int scim_strncasecmp(const char *a, const char *b, size_t n);
bool scim_streq_ci(const char *a, const char *b);
/* Lower-cases ASCII letters in place. */
void scim_ascii_lower(char *s);

/* strdup/strndup that return NULL on out of memory (never abort). */
char *scim_strdup(const char *s);
/* Copies the string src (NULL: "") into dst of `size` bytes (> 0), truncated if need be, always
 * NUL-terminated: snprintf(dst, size, "%s", src) without the format machinery, for copies made
 * per row of a page. */
void scim_copy_str(char *dst, size_t size, const char *src);
char *scim_strndup(const char *s, size_t n);

/* Percent-decodes `in` (length `len`) into a new string; when `plus_is_space`, '+' becomes ' '
 * (application/x-www-form-urlencoded, as sent by Entra and others). Returns NULL on out of
 * memory; invalid escapes are kept literally. */
char *scim_url_decode(const char *in, size_t len, bool plus_is_space);

/* Parses a whole decimal integer string (optional sign); -1 unless all of `s` is one that fits. */
int scim_parse_i64(const char *s, int64_t *out);

/* Copies a database URI for display with its password hidden:
 * "postgresql://app:secret@db/scim?password=x" -> "postgresql://app:***@db/scim?password=***".
 * Plain file paths are copied unchanged. Output truncated to outlen. */
void scim_redact_uri(const char *uri, char *out, size_t outlen);

/* true if `s` (length `len`) is valid UTF-8 without NUL bytes. */
bool scim_utf8_valid(const char *s, size_t len);

#endif
