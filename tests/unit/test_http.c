/* The HTTP layer, driven over a real loopback socket by a minimal hand-written client so that
 * exactly the bytes under test go on the wire (raw targets, odd methods, chunked bodies). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_BODY 64

/* What the handler saw on the last request (written on an MHD worker thread). */
static struct {
    pthread_mutex_t mu;
    int calls;
    char method[32];
    char path[256];
    char query[256];
    char body[256];
    size_t body_len;
    int too_large;
    char x_test[64];
    char rid[40];
    char remote[64];
    size_t n_headers;
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void handler(void *ctx, const struct scim_request *req, struct scim_response *resp)
{
    const char *xt = scim_request_header(req, "x-test");
    (void)ctx;
    pthread_mutex_lock(&seen.mu);
    seen.calls++;
    snprintf(seen.method, sizeof seen.method, "%s", req->method);
    snprintf(seen.path, sizeof seen.path, "%s", req->raw_path);
    snprintf(seen.query, sizeof seen.query, "%s", req->raw_query);
    seen.body_len = req->body_len;
    memcpy(seen.body, req->body, req->body_len < sizeof seen.body ? req->body_len : 0);
    seen.too_large = req->body_too_large;
    snprintf(seen.x_test, sizeof seen.x_test, "%s", xt ? xt : "(none)");
    snprintf(seen.rid, sizeof seen.rid, "%s", req->request_id);
    snprintf(seen.remote, sizeof seen.remote, "%s", req->remote_addr);
    seen.n_headers = req->n_headers;
    pthread_mutex_unlock(&seen.mu);

    if (strcmp(req->raw_path, "/nostatus") == 0)
        return; /* a broken handler: the server must still answer (500) */
    if (req->body_too_large) {
        resp->status = 413;
        resp->content_type = "application/scim+json";
        resp->body = strdup("{\"status\":\"413\"}");
        resp->body_len = strlen(resp->body);
        return;
    }
    resp->status = 201;
    resp->content_type = "application/scim+json";
    resp->body = strdup("hello");
    resp->body_len = 5;
    scim_response_header(resp, "Location", "/x");
    snprintf(resp->log_extra, sizeof resp->log_extra, "token=test");
}

static struct scim_http_server *srv;
static unsigned short port;

static int setup(void **state)
{
    struct scim_http_config cfg = {.host = "127.0.0.1", .port = 0, .threads = 2,
                                   .max_body = MAX_BODY, .connection_timeout = 5,
                                   .max_connections = 16};
    struct scim_err err;
    (void)state;
    if (scim_http_start(&cfg, handler, NULL, &srv, &err) != 0) {
        fprintf(stderr, "start: %s\n", err.detail);
        return -1;
    }
    port = scim_http_port(srv);
    return port ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    scim_http_stop(&srv);
    return srv == NULL ? 0 : -1;
}

/* Sends `req` (len bytes) and reads the whole reply (the request asks for Connection: close).
 * Returns a malloc'd NUL-terminated reply. */
static char *exchange(const char *req, size_t len)
{
    struct sockaddr_in a;
    struct timeval tv = {.tv_sec = 5};
    size_t cap = 65536, got = 0;
    char *out = calloc(1, cap);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;

    assert_non_null(out);
    assert_true(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    while (got + 1 < cap && (n = recv(fd, out + got, cap - 1 - got, 0)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fd);
    return out;
}

static char *exchange_s(const char *req)
{
    return exchange(req, strlen(req));
}

static void reset_seen(void)
{
    pthread_mutex_lock(&seen.mu);
    seen.calls = 0;
    seen.method[0] = seen.path[0] = seen.query[0] = seen.body[0] = '\0';
    seen.body_len = 0;
    seen.too_large = -1;
    pthread_mutex_unlock(&seen.mu);
}

/* The value of response header `name` (case-sensitive, as MHD writes it), or NULL. */
static const char *resp_header(const char *reply, const char *name, char *buf, size_t buflen)
{
    char key[128];
    const char *p, *e;
    snprintf(key, sizeof key, "\r\n%s: ", name);
    p = strstr(reply, key);
    if (!p)
        return NULL;
    p += strlen(key);
    e = strstr(p, "\r\n");
    if (!e || (size_t)(e - p) >= buflen)
        return NULL;
    memcpy(buf, p, (size_t)(e - p));
    buf[e - p] = '\0';
    return buf;
}

static const char *resp_body(const char *reply)
{
    const char *p = strstr(reply, "\r\n\r\n");
    return p ? p + 4 : NULL;
}

static void test_raw_target_and_headers(void **state)
{
    char *r;
    char v[128];
    (void)state;
    reset_seen();
    r = exchange_s("GET /scim/v2/Users?filter=userName+eq+%22a%22&count=2 HTTP/1.1\r\n"
                   "Host: localhost\r\nX-Test: yes\r\nConnection: close\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 201 ", 13), 0);
    assert_string_equal(resp_header(r, "Content-Type", v, sizeof v), "application/scim+json");
    assert_string_equal(resp_header(r, "Location", v, sizeof v), "/x");
    assert_non_null(resp_header(r, "X-Request-Id", v, sizeof v));
    assert_int_equal(strlen(v), 32);
    assert_int_equal(strspn(v, "0123456789abcdef"), 32);
    assert_string_equal(resp_body(r), "hello");

    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.method, "GET");
    assert_string_equal(seen.path, "/scim/v2/Users");
    assert_string_equal(seen.query, "filter=userName+eq+%22a%22&count=2");
    assert_string_equal(seen.x_test, "yes");
    assert_string_equal(seen.rid, v);
    assert_string_equal(seen.remote, "127.0.0.1");
    assert_int_equal(seen.n_headers, 3);
    assert_int_equal(seen.body_len, 0);
    assert_int_equal(seen.too_large, 0);
    free(r);
}

static void test_encoded_path_kept(void **state)
{
    char *r;
    (void)state;
    reset_seen();
    r = exchange_s("GET /scim/v2/Users/a%2Fb%20c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 201 ", 13), 0);
    assert_string_equal(seen.path, "/scim/v2/Users/a%2Fb%20c");
    assert_string_equal(seen.query, "");
    free(r);
}

static void test_body_delivered(void **state)
{
    static const char req[] = "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
                              "Content-Type: application/scim+json\r\nContent-Length: 8\r\n"
                              "Connection: close\r\n\r\n{\"a\":\0001}";
    char *r;
    (void)state;
    reset_seen();
    r = exchange(req, sizeof req - 1);
    assert_int_equal(strncmp(r, "HTTP/1.1 201 ", 13), 0);
    assert_string_equal(seen.method, "POST");
    assert_int_equal(seen.body_len, 8);
    assert_memory_equal(seen.body, "{\"a\":\0001}", 8);
    assert_int_equal(seen.too_large, 0);
    free(r);
}

static void test_body_at_limit(void **state)
{
    char req[512];
    char body[MAX_BODY + 1];
    char *r;
    (void)state;
    memset(body, 'x', MAX_BODY);
    body[MAX_BODY] = '\0';
    snprintf(req, sizeof req,
             "PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
             MAX_BODY, body);
    reset_seen();
    r = exchange_s(req);
    assert_int_equal(strncmp(r, "HTTP/1.1 201 ", 13), 0);
    assert_int_equal(seen.body_len, MAX_BODY);
    assert_int_equal(seen.too_large, 0);
    free(r);
}

static void test_content_length_too_large(void **state)
{
    char req[512];
    char body[MAX_BODY + 2];
    char *r;
    (void)state;
    memset(body, 'x', MAX_BODY + 1);
    body[MAX_BODY + 1] = '\0';
    snprintf(req, sizeof req,
             "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
             MAX_BODY + 1, body);
    reset_seen();
    r = exchange_s(req);
    assert_int_equal(strncmp(r, "HTTP/1.1 413 ", 13), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.too_large, 1);
    assert_int_equal(seen.body_len, 0);
    free(r);
}

static void test_expect_continue_too_large(void **state)
{
    char *r;
    (void)state;
    reset_seen();
    /* The body is never sent: the 413 must come without waiting for it. */
    r = exchange_s("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
                   "Expect: 100-continue\r\nConnection: close\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 413 ", 13), 0);
    assert_null(strstr(r, "100 Continue"));
    assert_int_equal(seen.too_large, 1);
    free(r);
}

static void test_chunked_too_large(void **state)
{
    char req[1024];
    char chunk[41];
    char *r;
    (void)state;
    memset(chunk, 'y', 40);
    chunk[40] = '\0';
    /* Two 40-byte chunks: 80 > MAX_BODY, with no Content-Length to warn in advance. */
    snprintf(req, sizeof req,
             "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
             "\r\n28\r\n%s\r\n28\r\n%s\r\n0\r\n\r\n",
             chunk, chunk);
    reset_seen();
    r = exchange_s(req);
    assert_int_equal(strncmp(r, "HTTP/1.1 413 ", 13), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.too_large, 1);
    assert_int_equal(seen.body_len, 0);
    free(r);
}

static void test_chunked_small(void **state)
{
    char *r;
    (void)state;
    reset_seen();
    r = exchange_s("PATCH /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   "Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 201 ", 13), 0);
    assert_string_equal(seen.method, "PATCH");
    assert_int_equal(seen.body_len, 5);
    assert_memory_equal(seen.body, "abcde", 5);
    free(r);
}

static void test_unknown_method(void **state)
{
    char *r;
    (void)state;
    reset_seen();
    r = exchange_s("BREW /pot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 201 ", 13), 0);
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.method, "BREW");
    assert_string_equal(seen.path, "/pot");
    free(r);
}

static void test_head(void **state)
{
    char *r;
    char v[64];
    (void)state;
    reset_seen();
    r = exchange_s("HEAD /scim/v2/Users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 201 ", 13), 0);
    assert_string_equal(seen.method, "HEAD");
    assert_string_equal(resp_header(r, "Content-Length", v, sizeof v), "5");
    assert_string_equal(resp_body(r), ""); /* no body bytes after the header block */
    free(r);
}

static void test_client_request_id(void **state)
{
    char *r;
    char v[128];
    (void)state;
    reset_seen();
    r = exchange_s("GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123_x.y\r\n"
                   "Connection: close\r\n\r\n");
    assert_string_equal(resp_header(r, "X-Request-Id", v, sizeof v), "abc-123_x.y");
    assert_string_equal(seen.rid, "abc-123_x.y");
    free(r);

    /* Not taken: characters outside [A-Za-z0-9._-], or longer than 64. */
    r = exchange_s("GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad;id\r\nConnection: close\r\n\r\n");
    assert_non_null(resp_header(r, "X-Request-Id", v, sizeof v));
    assert_int_equal(strlen(v), 32);
    free(r);
    r = exchange_s("GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: "
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
                   "Connection: close\r\n\r\n");
    assert_non_null(resp_header(r, "X-Request-Id", v, sizeof v));
    assert_int_equal(strlen(v), 32);
    free(r);
}

static void test_handler_without_status(void **state)
{
    char *r;
    char v[128];
    (void)state;
    r = exchange_s("GET /nostatus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 500 ", 13), 0);
    assert_non_null(resp_header(r, "X-Request-Id", v, sizeof v));
    free(r);
}

static void test_keep_alive_two_requests(void **state)
{
    char *r;
    (void)state;
    reset_seen();
    r = exchange_s("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /two?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(r, "HTTP/1.1 201 "));
    assert_non_null(strstr(strstr(r, "HTTP/1.1 201 ") + 1, "HTTP/1.1 201 "));
    assert_int_equal(seen.calls, 2);
    assert_string_equal(seen.path, "/two");
    assert_string_equal(seen.query, "q=1");
    free(r);
}

static void test_malformed_request(void **state)
{
    char *r;
    (void)state;
    reset_seen();
    /* MHD answers this itself; the per-request context must still be freed (ASan checks). */
    r = exchange_s("GET /x HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nConnection: close\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 400 ", 13), 0);
    assert_int_equal(seen.calls, 0);
    free(r);
}

static void test_bad_host(void **state)
{
    struct scim_http_config cfg = {.host = "not-an-address", .port = 0, .threads = 1,
                                   .max_body = 10};
    struct scim_http_server *s = (void *)1;
    struct scim_err err;
    (void)state;
    assert_int_equal(scim_http_start(&cfg, handler, NULL, &s, &err), -1);
    assert_null(s);
    assert_int_equal(err.status, 500);
    assert_non_null(strstr(err.detail, "not-an-address"));

    cfg.host = "127.0.0.1";
    cfg.tls_cert_file = "/nonexistent/cert.pem";
    assert_int_equal(scim_http_start(&cfg, handler, NULL, &s, &err), -1);
    assert_non_null(strstr(err.detail, "key"));
    cfg.tls_key_file = "/nonexistent/key.pem";
    assert_int_equal(scim_http_start(&cfg, handler, NULL, &s, &err), -1);
    assert_non_null(strstr(err.detail, "/nonexistent/cert.pem"));
}

static void test_port_in_use(void **state)
{
    struct scim_http_config cfg = {.host = "127.0.0.1", .port = port, .threads = 1,
                                   .max_body = 10};
    struct scim_http_server *s = NULL;
    struct scim_err err;
    (void)state;
    assert_int_equal(scim_http_start(&cfg, handler, NULL, &s, &err), -1);
    assert_null(s);
    assert_non_null(strstr(err.detail, "cannot listen"));
}

static void test_hosts_parse(void **state)
{
    static const char *const hosts[] = {"localhost", "[::1]", "::1"};
    (void)state;
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        struct scim_http_config cfg = {.host = hosts[i], .port = 0, .threads = 1,
                                       .max_body = 10};
        struct scim_http_server *s = NULL;
        struct scim_err err;
        if (scim_http_start(&cfg, handler, NULL, &s, &err) != 0) {
            /* An IPv6-less sandbox may refuse ::1; localhost must always work. */
            assert_true(i > 0);
            continue;
        }
        assert_true(scim_http_port(s) > 0);
        scim_http_stop(&s);
        assert_null(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_target_and_headers),
        cmocka_unit_test(test_encoded_path_kept),
        cmocka_unit_test(test_body_delivered),
        cmocka_unit_test(test_body_at_limit),
        cmocka_unit_test(test_content_length_too_large),
        cmocka_unit_test(test_expect_continue_too_large),
        cmocka_unit_test(test_chunked_too_large),
        cmocka_unit_test(test_chunked_small),
        cmocka_unit_test(test_unknown_method),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_client_request_id),
        cmocka_unit_test(test_handler_without_status),
        cmocka_unit_test(test_keep_alive_two_requests),
        cmocka_unit_test(test_malformed_request),
        cmocka_unit_test(test_bad_host),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_hosts_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
