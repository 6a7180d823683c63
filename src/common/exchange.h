/* The transport-neutral request and response exchanged between the HTTP layer (src/http, the
 * only code that sees libmicrohttpd) and the API layer (src/api). */
#ifndef SCIM_COMMON_EXCHANGE_H
#define SCIM_COMMON_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

struct scim_header {
    const char *name;
    const char *value;
};

#define SCIM_MAX_REQ_HEADERS 64
#define SCIM_MAX_RESP_HEADERS 8

struct scim_request {
    const char *method;      /* "GET", ... as sent */
    const char *raw_path;    /* the request target's path, still percent-encoded, no query */
    const char *raw_query;   /* the part after '?', still encoded, or "" */
    struct scim_header headers[SCIM_MAX_REQ_HEADERS];
    size_t n_headers;
    const char *body;        /* NUL-terminated (the body may itself contain NULs: use body_len) */
    size_t body_len;
    int body_too_large;      /* the body passed the configured limit and was not read whole */
    const char *remote_addr; /* "127.0.0.1" */
    char request_id[40];     /* generated per request, also sent back as X-Request-Id */
    int tls;                 /* served over HTTPS */
    int bulk_index;          /* 0; n >= 1 for operation n of a Bulk request replayed by the API */
};

/* Returns the value of a request header (case-insensitive name), or NULL. */
const char *scim_request_header(const struct scim_request *req, const char *name);

struct scim_response {
    int status;
    char *body;               /* malloc'd, freed by the HTTP layer; NULL for no body */
    size_t body_len;
    const char *content_type; /* static string, or NULL for none */
    /* Extra headers; names static, values malloc'd and freed by the HTTP layer. */
    struct {
        const char *name;
        char *value;
    } headers[SCIM_MAX_RESP_HEADERS];
    size_t n_headers;
    /* For the request log line, filled by the API layer. */
    char log_extra[512];      /* key=value pairs: token=..., tenant=..., compat=..., scim_type=... */
    uint32_t compat;          /* compatibility behaviours the request needed (scim/compat.h) */
};

/* Adds a header to a response (value copied); -1 on out of memory or when full. */
int scim_response_header(struct scim_response *resp, const char *name, const char *value);
/* Frees body and header values, leaving an empty response. */
void scim_response_release(struct scim_response *resp);

#endif
