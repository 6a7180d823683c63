/* Errors: one struct filled where a failure is detected, passed up unchanged.
 *
 * Convention for every fallible function in scimd: it returns 0 on success and -1 on failure,
 * and on failure it has filled the `struct scim_err *` it was given (which may not be NULL).
 * The struct carries everything needed to answer the client and to log the cause:
 *   status     HTTP status (400, 404, 409, ...), mapped 1:1 to the SCIM Error "status"
 *   scim_type  the RFC 7644 §3.12 scimType keyword, or NULL where the RFC defines none
 *   detail     text safe to send to the client
 *   log        text for the server log only (driver messages, SQL state); never sent
 *   pos        0-based offset in the filter or path text the error refers to, or -1
 *
 * Ownership rule for JSON, stated once for the whole code base: no function steals a reference
 * to a json_t argument unless its name ends in `_take`; a json_t returned through an out-parameter
 * or as a result is a new reference owned by the caller.
 */
#ifndef SCIM_COMMON_ERR_H
#define SCIM_COMMON_ERR_H

#include <stddef.h>

/* RFC 7644 §3.12 scimType keywords. */
#define SCIM_TYPE_INVALID_FILTER "invalidFilter"
#define SCIM_TYPE_TOO_MANY "tooMany"
#define SCIM_TYPE_UNIQUENESS "uniqueness"
#define SCIM_TYPE_MUTABILITY "mutability"
#define SCIM_TYPE_INVALID_SYNTAX "invalidSyntax"
#define SCIM_TYPE_INVALID_PATH "invalidPath"
#define SCIM_TYPE_NO_TARGET "noTarget"
#define SCIM_TYPE_INVALID_VALUE "invalidValue"
#define SCIM_TYPE_INVALID_VERS "invalidVers"
#define SCIM_TYPE_SENSITIVE "sensitive"
/* RFC 9865 (cursor paging) */
#define SCIM_TYPE_INVALID_CURSOR "invalidCursor"
#define SCIM_TYPE_EXPIRED_CURSOR "expiredCursor"

#define SCIM_ERR_DETAIL_MAX 512

struct scim_err {
    int status;
    const char *scim_type;
    char detail[SCIM_ERR_DETAIL_MAX];
    char log[SCIM_ERR_DETAIL_MAX];
    int pos;
};

/* Resets `e` to "no error". */
void scim_err_clear(struct scim_err *e);

/* Fills `e` with status, scimType (static string or NULL) and a printf-style client detail.
 * Always returns -1 so that callers can write `return scim_err_set(...)`. */
int scim_err_set(struct scim_err *e, int status, const char *scim_type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Like scim_err_set, with a position into the filter/path text. */
int scim_err_set_pos(struct scim_err *e, int status, const char *scim_type, int pos,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Adds a log-only detail (never sent to the client). Returns -1. */
int scim_err_log(struct scim_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Shorthands: out of memory (500) and an internal failure with a log-only cause (500). */
int scim_err_nomem(struct scim_err *e);
int scim_err_internal(struct scim_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The standard reason phrase for an HTTP status ("Not Found"). */
const char *scim_http_reason(int status);

#endif
