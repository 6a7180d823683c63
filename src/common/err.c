#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void scim_err_clear(struct scim_err *e)
{
    e->status = 0;
    e->scim_type = NULL;
    e->detail[0] = '\0';
    e->log[0] = '\0';
    e->pos = -1;
}

__attribute__((format(printf, 5, 0))) static void vset(struct scim_err *e, int status,
                                                      const char *scim_type, int pos,
                                                      const char *fmt, va_list ap)
{
    e->status = status;
    e->scim_type = scim_type;
    e->pos = pos;
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
}

int scim_err_set(struct scim_err *e, int status, const char *scim_type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(e, status, scim_type, -1, fmt, ap);
    va_end(ap);
    return -1;
}

int scim_err_set_pos(struct scim_err *e, int status, const char *scim_type, int pos,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(e, status, scim_type, pos, fmt, ap);
    va_end(ap);
    return -1;
}

int scim_err_log(struct scim_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->log, sizeof e->log, fmt, ap);
    va_end(ap);
    return -1;
}

int scim_err_nomem(struct scim_err *e)
{
    scim_err_set(e, 500, NULL, "The server ran out of memory while handling the request.");
    return scim_err_log(e, "out of memory");
}

int scim_err_internal(struct scim_err *e, const char *fmt, ...)
{
    va_list ap;
    scim_err_set(e, 500, NULL, "Internal server error.");
    va_start(ap, fmt);
    vsnprintf(e->log, sizeof e->log, fmt, ap);
    va_end(ap);
    return -1;
}

const char *scim_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}
