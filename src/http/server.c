#include "http/server.h"

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* TLS 1.2 and later only (GnuTLS priority string). */
#define TLS_PRIORITIES "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"
/* A PEM certificate chain or key larger than this is not one. */
#define PEM_MAX (1024 * 1024)
/* Once a body is over the limit we read and drop at most this many more bytes before giving up
 * on the connection: enough to let a client that ignores the early 413 finish a modest upload,
 * small enough that an endless chunked stream cannot hold a worker forever. */
#define DISCARD_MAX (4u * 1024 * 1024)
/* Longest path written to the request log line. */
#define LOG_PATH_MAX 256

struct scim_http_server {
    struct MHD_Daemon *daemon;
    scim_http_handler_fn handler;
    void *ctx;
    size_t max_body;
    int tls;
    unsigned short port;
    char *cert_pem;
    char *key_pem;
};

/* One per request: created by the URI log callback (the only place MHD shows the raw request
 * target), freed by the completion callback. */
struct req_ctx {
    struct scim_http_server *srv;
    char *uri;          /* raw target, split in place into path and query */
    const char *query;  /* points into uri, "" when absent */
    struct scim_buf body;
    int64_t start_us;
    size_t discarded;
    int started;        /* the headers-only first call has happened */
    int too_large;
    int oom;
    int responded;
    /* What the completion callback logs. */
    int status;
    size_t bytes;
    char method[16];
    char rid[40];
    char remote[INET6_ADDRSTRLEN];
    char log_extra[512];
};

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    scim_debug("msg=\"microhttpd\" detail=\"%s\"", msg);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    struct req_ctx *rc = calloc(1, sizeof *rc);
    char *q;
    (void)con;
    if (!rc)
        return NULL;
    rc->srv = cls;
    rc->start_us = scim_mono_us();
    rc->uri = scim_strdup(uri ? uri : "");
    if (!rc->uri) {
        free(rc);
        return NULL;
    }
    q = strchr(rc->uri, '?');
    if (q) {
        *q = '\0';
        rc->query = q + 1;
    } else {
        rc->query = "";
    }
    /* The cap is enforced before each append; the buffer's own cap is a second guard. */
    scim_buf_init(&rc->body, rc->srv->max_body ? rc->srv->max_body : 1);
    return rc;
}

/* Copies `s` into `out` with anything that could break a key=value log line replaced. */
static void log_safe(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; s && *s && o + 1 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        out[o++] = (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    out[o] = '\0';
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req_ctx *rc = *con_cls;
    (void)cls;
    (void)con;
    if (!rc)
        return;
    if (rc->responded) {
        char path[LOG_PATH_MAX];
        char method[sizeof rc->method];
        log_safe(rc->uri, path, sizeof path);
        log_safe(rc->method, method, sizeof method);
        scim_info("request id=%s method=%s path=%s status=%d latency_us=%lld bytes=%zu "
                  "remote=%s%s%s%s",
                  rc->rid, method, path, rc->status, (long long)(scim_mono_us() - rc->start_us),
                  rc->bytes, rc->remote, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1",
                  rc->log_extra[0] ? " " : "", rc->log_extra);
    }
    scim_buf_release(&rc->body);
    free(rc->uri);
    free(rc);
    *con_cls = NULL;
}

static bool valid_request_id(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 64)
            return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct scim_request *req = cls;
    (void)kind;
    if (req->n_headers >= SCIM_MAX_REQ_HEADERS)
        return MHD_NO; /* stop iterating; the rest are dropped */
    req->headers[req->n_headers].name = key;
    req->headers[req->n_headers].value = value ? value : "";
    req->n_headers++;
    return MHD_YES;
}

static void remote_address(struct MHD_Connection *con, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    snprintf(out, outlen, "-");
    if (!sa)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, out, (socklen_t)outlen);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        /* Show v4-mapped peers of a dual-stack socket as plain IPv4. */
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)outlen);
    }
}

/* A plain-text answer for the rare case where the handler cannot be called (out of memory). */
static enum MHD_Result queue_plain(struct MHD_Connection *con, struct req_ctx *rc, int status)
{
    static char msg[] = "internal server error\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof msg - 1, msg, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain");
    MHD_add_response_header(r, "X-Request-Id", rc->rid);
    ret = MHD_queue_response(con, (unsigned)status, r);
    MHD_destroy_response(r);
    rc->responded = 1;
    rc->status = status;
    rc->bytes = sizeof msg - 1;
    return ret;
}

/* Builds the scim_request, runs the handler and queues its response. */
static enum MHD_Result respond(struct MHD_Connection *con, struct req_ctx *rc, const char *method)
{
    struct scim_http_server *srv = rc->srv;
    static char empty[1];
    struct scim_request req;
    struct scim_response resp;
    struct MHD_Response *r = NULL;
    enum MHD_Result ret = MHD_NO;
    const char *client_rid;

    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    snprintf(rc->method, sizeof rc->method, "%s", method);
    remote_address(con, rc->remote, sizeof rc->remote);

    client_rid = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Request-Id");
    if (valid_request_id(client_rid)) {
        snprintf(rc->rid, sizeof rc->rid, "%s", client_rid);
    } else {
        unsigned char raw[16];
        if (scim_random_bytes(raw, sizeof raw) == 0)
            scim_hex(raw, sizeof raw, rc->rid);
        else
            snprintf(rc->rid, sizeof rc->rid, "%016llx", (unsigned long long)scim_now_us());
    }
    if (rc->oom)
        return queue_plain(con, rc, 500);

    req.method = method;
    req.raw_path = rc->uri;
    req.raw_query = rc->query;
    MHD_get_connection_values(con, MHD_HEADER_KIND, add_header, &req);
    req.body = rc->too_large ? "" : scim_buf_str(&rc->body);
    req.body_len = rc->too_large ? 0 : rc->body.len;
    req.body_too_large = rc->too_large;
    req.remote_addr = rc->remote;
    snprintf(req.request_id, sizeof req.request_id, "%s", rc->rid);
    req.tls = srv->tls;

    srv->handler(srv->ctx, &req, &resp);

    if (resp.status < 100 || resp.status > 599) {
        scim_error("msg=\"handler returned no valid status\" id=%s status=%d", rc->rid,
                   resp.status);
        scim_response_release(&resp);
        return queue_plain(con, rc, 500);
    }
    if (resp.body) {
        r = MHD_create_response_from_buffer(resp.body_len, resp.body, MHD_RESPMEM_MUST_FREE);
        if (r)
            resp.body = NULL; /* MHD owns it now */
    } else {
        r = MHD_create_response_from_buffer(0, empty, MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        scim_response_release(&resp);
        return queue_plain(con, rc, 500);
    }
    if (resp.content_type && MHD_add_response_header(r, "Content-Type", resp.content_type) != MHD_YES)
        goto fail;
    for (size_t i = 0; i < resp.n_headers; i++)
        if (resp.headers[i].name && resp.headers[i].value &&
            MHD_add_response_header(r, resp.headers[i].name, resp.headers[i].value) != MHD_YES)
            scim_warn("msg=\"response header refused\" id=%s name=%s", rc->rid,
                      resp.headers[i].name);
    if (MHD_add_response_header(r, "X-Request-Id", rc->rid) != MHD_YES)
        goto fail;

    rc->status = resp.status;
    rc->bytes = resp.body_len;
    snprintf(rc->log_extra, sizeof rc->log_extra, "%s", resp.log_extra);
    rc->responded = 1;
    ret = MHD_queue_response(con, (unsigned)resp.status, r);
    MHD_destroy_response(r);
    scim_response_release(&resp);
    return ret;

fail:
    MHD_destroy_response(r);
    scim_response_release(&resp);
    return queue_plain(con, rc, 500);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct req_ctx *rc = *con_cls;
    (void)cls;
    (void)url;
    (void)version;

    if (!rc)
        return MHD_NO; /* the URI callback ran out of memory: drop the connection */

    if (!rc->started) {
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
        int64_t n;
        rc->started = 1;
        /* A declared length over the limit is answered before the body is read, so a client
         * using Expect: 100-continue never sends it. */
        if (cl && scim_parse_i64(cl, &n) == 0 && n > 0 && (uint64_t)n > rc->srv->max_body) {
            rc->too_large = 1;
            return respond(con, rc, method);
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rc->responded || rc->too_large || rc->oom) {
            rc->discarded += n;
            return rc->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        if (n > rc->srv->max_body - rc->body.len) {
            /* Stop keeping the body; the handler answers 413 once the upload ends. */
            rc->too_large = 1;
            scim_buf_release(&rc->body);
            rc->discarded += n;
            return MHD_YES;
        }
        if (scim_buf_add(&rc->body, upload_data, n) != 0) {
            rc->oom = 1;
            scim_buf_release(&rc->body);
        }
        return MHD_YES;
    }

    if (rc->responded)
        return MHD_YES;
    return respond(con, rc, method);
}

/* Reads a whole PEM file (bounded) into a new NUL-terminated string. */
static char *read_pem(const char *path, struct scim_err *err)
{
    FILE *f = fopen(path, "rb");
    struct scim_buf b;
    char chunk[4096];
    size_t n;

    scim_buf_init(&b, PEM_MAX);
    if (!f) {
        scim_err_set(err, 500, NULL, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (scim_buf_add(&b, chunk, n) != 0) {
            scim_err_set(err, 500, NULL, "%s: too large or out of memory", path);
            goto fail;
        }
    }
    if (ferror(f)) {
        scim_err_set(err, 500, NULL, "cannot read %s", path);
        goto fail;
    }
    fclose(f);
    if (b.len == 0) {
        scim_err_set(err, 500, NULL, "%s is empty", path);
        scim_buf_release(&b);
        return NULL;
    }
    OPENSSL_cleanse(chunk, sizeof chunk);
    return scim_buf_take(&b);
fail:
    fclose(f);
    OPENSSL_cleanse(chunk, sizeof chunk);
    if (b.data)
        OPENSSL_cleanse(b.data, b.len);
    scim_buf_release(&b);
    return NULL;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Resolves the listen host: IPv4 or IPv6 literal (optionally in brackets), or "localhost". */
static int parse_host(const char *host, unsigned short port, struct sockaddr_in *v4,
                      struct sockaddr_in6 *v6, int *is_v6)
{
    char h[INET6_ADDRSTRLEN + 2];
    size_t len;

    if (!host || !*host || scim_streq_ci(host, "localhost"))
        host = "127.0.0.1";
    len = strlen(host);
    if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len >= sizeof h)
        return -1;
    memcpy(h, host, len);
    h[len] = '\0';

    memset(v4, 0, sizeof *v4);
    memset(v6, 0, sizeof *v6);
    if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *is_v6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *is_v6 = 1;
        return 0;
    }
    return -1;
}

int scim_http_start(const struct scim_http_config *cfg, scim_http_handler_fn handler, void *ctx,
                    struct scim_http_server **out, struct scim_err *err)
{
    struct scim_http_server *srv = NULL;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    struct sockaddr *sa;
    int is_v6 = 0;
    /* ITC lets MHD_stop_daemon wake the polling threads at once. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct MHD_OptionItem opts[8];
    size_t n = 0;
    const union MHD_DaemonInfo *di;

    *out = NULL;
    if (!cfg || !handler)
        return scim_err_internal(err, "scim_http_start: missing config or handler");
    if (parse_host(cfg->host, cfg->port, &v4, &v6, &is_v6) != 0)
        return scim_err_set(err, 500, NULL, "invalid listen address: %s", cfg->host);
    if ((cfg->tls_cert_file != NULL) != (cfg->tls_key_file != NULL))
        return scim_err_set(err, 500, NULL, "TLS needs both a certificate and a key file");

    srv = calloc(1, sizeof *srv);
    if (!srv)
        return scim_err_nomem(err);
    srv->handler = handler;
    srv->ctx = ctx;
    srv->max_body = cfg->max_body;

    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    else
        flags |= MHD_USE_POLL;
    if (is_v6)
        flags |= MHD_USE_DUAL_STACK;
    sa = is_v6 ? (struct sockaddr *)(void *)&v6 : (struct sockaddr *)(void *)&v4;

    if (cfg->threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->threads,
                                            NULL};
    if (cfg->connection_timeout > 0)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                            (intptr_t)cfg->connection_timeout, NULL};
    if (cfg->max_connections > 0)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                            (intptr_t)cfg->max_connections, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    if (cfg->tls_cert_file) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            scim_err_set(err, 500, NULL, "this libmicrohttpd was built without TLS support");
            goto fail;
        }
        srv->cert_pem = read_pem(cfg->tls_cert_file, err);
        if (!srv->cert_pem)
            goto fail;
        srv->key_pem = read_pem(cfg->tls_key_file, err);
        if (!srv->key_pem)
            goto fail;
        srv->tls = 1;
        flags |= MHD_USE_TLS;
    }

    /* Function pointers cannot travel in MHD_OptionItem's void * portably, so the callbacks
     * are passed as ordinary varargs and only the numeric limits go through the array. */
    errno = 0;
    if (srv->tls)
        srv->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, sa,
            MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_HTTPS_MEM_CERT,
            srv->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, srv->key_pem, MHD_OPTION_HTTPS_PRIORITIES,
            TLS_PRIORITIES, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    else
        srv->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, sa,
            MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!srv->daemon) {
        int e = errno;
        scim_err_set(err, 500, NULL, "cannot listen on %s port %u%s%s",
                     cfg->host ? cfg->host : "127.0.0.1", (unsigned)cfg->port,
                     e ? ": " : "", e ? strerror(e) : "");
        goto fail;
    }
    di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : cfg->port;
    *out = srv;
    return 0;

fail:
    free_secret(srv->cert_pem);
    free_secret(srv->key_pem);
    free(srv);
    return -1;
}

unsigned short scim_http_port(const struct scim_http_server *srv)
{
    return srv ? srv->port : 0;
}

void scim_http_stop(struct scim_http_server **srvp)
{
    struct scim_http_server *srv;
    if (!srvp || !*srvp)
        return;
    srv = *srvp;
    if (srv->daemon) {
        /* Closes the listening socket, waits for handlers running on the worker threads to
         * return, then closes the remaining connections. */
        MHD_stop_daemon(srv->daemon);
    }
    free_secret(srv->cert_pem);
    free_secret(srv->key_pem);
    free(srv);
    *srvp = NULL;
}
