/* The HTTP server: the only module that includes microhttpd.h. It reads each request (with a
 * body size cap), hands a transport-neutral scim_request to a handler on one of its worker
 * threads, and sends the scim_response back. */
#ifndef SCIM_HTTP_SERVER_H
#define SCIM_HTTP_SERVER_H

#include <stddef.h>

#include "common/err.h"
#include "common/exchange.h"

typedef void (*scim_http_handler_fn)(void *ctx, const struct scim_request *req,
                                     struct scim_response *resp);

struct scim_http_config {
    const char *host;           /* "127.0.0.1", "0.0.0.0", "::1" */
    unsigned short port;        /* 0 = any free port (see scim_http_port) */
    unsigned threads;           /* worker threads (thread pool) */
    size_t max_body;            /* bytes; larger bodies answer 413 via the handler */
    unsigned connection_timeout;/* seconds of inactivity before a connection is closed */
    size_t max_connections;
    const char *tls_cert_file;  /* PEM; both set = HTTPS */
    const char *tls_key_file;
};

struct scim_http_server;

/* Starts listening and serving. Returns -1 with err filled (bind failure, bad TLS files). */
int scim_http_start(const struct scim_http_config *cfg, scim_http_handler_fn handler, void *ctx,
                    struct scim_http_server **out, struct scim_err *err);
/* The port actually bound (useful with port 0). */
unsigned short scim_http_port(const struct scim_http_server *srv);
/* Stops accepting, finishes requests in flight, frees the server and NULLs the pointer. */
void scim_http_stop(struct scim_http_server **srv);

#endif
