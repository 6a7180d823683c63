/* Growable byte buffer with a size cap (after curl's dynbuf).
 * A buffer always holds a NUL-terminated string; appending past `cap` fails with -1 and
 * leaves the buffer as it was, so a caller can answer 413 or invalidFilter instead of growing
 * without bound. */
#ifndef SCIM_COMMON_BUF_H
#define SCIM_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct scim_buf {
    char *data;  /* NUL-terminated, NULL until the first append */
    size_t len;  /* bytes used, excluding the terminating NUL */
    size_t size; /* bytes allocated */
    size_t cap;  /* maximum len; 0 means SIZE_MAX/2 */
};

void scim_buf_init(struct scim_buf *b, size_t cap);
/* Frees the storage and re-initialises the buffer with the same cap. */
void scim_buf_release(struct scim_buf *b);
/* Empties the buffer, keeping its storage. */
void scim_buf_reset(struct scim_buf *b);
/* Cuts the contents back to their first len bytes (len <= b->len). */
void scim_buf_truncate(struct scim_buf *b, size_t len);
/* Appends; -1 on out of memory or when the cap would be passed (the buffer is unchanged). */
int scim_buf_add(struct scim_buf *b, const void *data, size_t len);
int scim_buf_adds(struct scim_buf *b, const char *s);
int scim_buf_addc(struct scim_buf *b, char c);
int scim_buf_printf(struct scim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int scim_buf_vprintf(struct scim_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* The contents ("" for an empty buffer); valid until the next change. */
const char *scim_buf_str(const struct scim_buf *b);
/* Hands the storage to the caller (free() it) and re-initialises the buffer; never NULL
 * unless out of memory. */
char *scim_buf_take(struct scim_buf *b);

#endif
