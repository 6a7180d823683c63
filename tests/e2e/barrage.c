/* e2e/barrage: hostile input against one real scimd holding some data.
 *
 * Malformed, deeply nested, oversized, non-UTF-8 and NUL-carrying bodies; NULs, SQL injection
 * and path traversal in paths, ids and filters; absurd counts and indexes; unknown methods;
 * long URLs and headers, many headers; garbage bytes; HTTP/1.0; pipelining; and a slowloris
 * (50 connections dripping one header byte a second) during which a normal request must still
 * be answered promptly, and whose connections the server must close once they fall idle.
 * Each request must get the right SCIM Error (status and scimType where RFC 7644 defines one)
 * or a clean HTTP-level rejection. Afterwards every seeded resource must be unchanged and the
 * server must still answer. The idle timeout of scimd is 30 s, so this test takes ~35 s
 * (up to 45 s on a loaded machine before it gives up on an idle connection). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

#define MAX_BODY 65536
#define SLOW_CONNS 50
#define IDLE_TIMEOUT_S 30

static struct e2e_server srv;
static int fails;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
            fails++;                                                                              \
        }                                                                                         \
    } while (0)

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- raw sockets ---- */

static int connect_srv(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the server may close early on garbage: fine */
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until the server closes or `timeout_ms` passes; returns the bytes read (NUL-terminated
 * in `out`), or -1 on timeout without close (when `need_close`). */
static long recv_until_close(int fd, char *out, size_t cap, int timeout_ms)
{
    size_t len = 0;
    long deadline = now_ms() + timeout_ms;
    for (;;) {
        long left = deadline - now_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0)
            break;
        int pr = poll(&p, 1, (int)left);
        if (pr <= 0)
            continue;
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            out[len] = '\0';
            return (long)len;
        }
        size_t k = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
        memcpy(out + len, tmp, k);
        len += k;
    }
    out[len] = '\0';
    return -1;
}

/* Sends raw bytes on a fresh connection and returns the status of the first response (0 when
 * the server closed without answering, -1 when it neither answered nor closed in 10 s).
 * The whole answer is left in `out`. */
static int raw(const char *data, size_t len, char *out, size_t cap)
{
    int fd = connect_srv();
    if (fd < 0)
        return -2;
    send_all(fd, data, len);
    shutdown(fd, SHUT_WR);
    long n = recv_until_close(fd, out, cap, 10000);
    close(fd);
    if (n < 0)
        return -1;
    if (strncmp(out, "HTTP/1.", 7) != 0)
        return 0;
    return atoi(out + 9);
}

static int raw_req(const char *method, const char *target, const char *extra_headers,
                   const char *body, size_t body_len, char *out, size_t cap)
{
    size_t hcap = strlen(target) + (extra_headers ? strlen(extra_headers) : 0) + 1024;
    char *head = malloc(hcap + body_len);
    int n = snprintf(head, hcap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Connection: close\r\n%s",
                     method, target, srv.token, extra_headers ? extra_headers : "");
    if (body) {
        n += snprintf(head + n, hcap - (size_t)n,
                      "Content-Type: application/scim+json\r\nContent-Length: %zu\r\n\r\n",
                      body_len);
        memcpy(head + n, body, body_len);
        n += (int)body_len;
    } else {
        n += snprintf(head + n, hcap - (size_t)n, "\r\n");
    }
    int st = raw(head, (size_t)n, out, cap);
    free(head);
    return st;
}

/* The JSON body of a raw response (after the blank line), or NULL. */
static json_t *raw_json(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    json_error_t je;
    return p ? json_loads(p + 4, 0, &je) : NULL;
}

/* ---- expectations ---- */

static void expect_scim_error(const char *what, long status, json_t *body, long want_status,
                              const char *want_type)
{
    char st[8];
    snprintf(st, sizeof st, "%ld", want_status);
    CHECK(status == want_status, "%s: status %ld, expected %ld", what, status, want_status);
    const char *bst = json_string_value(json_object_get(body, "status"));
    const char *schema = json_string_value(json_array_get(json_object_get(body, "schemas"), 0));
    CHECK(schema && !strcmp(schema, "urn:ietf:params:scim:api:messages:2.0:Error"),
          "%s: not a SCIM Error body", what);
    CHECK(bst && !strcmp(bst, st), "%s: body status %s", what, bst ? bst : "(none)");
    const char *type = json_string_value(json_object_get(body, "scimType"));
    if (want_type)
        CHECK(type && !strcmp(type, want_type), "%s: scimType %s, expected %s", what,
              type ? type : "(none)", want_type);
}

static void req_error(const char *what, const char *method, const char *path, const char *body,
                      long want_status, const char *want_type)
{
    struct e2e_response r;
    if (e2e_request(&srv, method, path, NULL, body, &r) != 0) {
        CHECK(0, "%s: transport error %s", what, r.error);
    } else {
        int before = fails;
        expect_scim_error(what, r.status, r.json, want_status, want_type);
        if (fails > before)
            fprintf(stderr, "  body: %.300s\n", r.body);
    }
    e2e_response_free(&r);
}

static void raw_error(const char *what, const char *method, const char *target, const char *body,
                      size_t body_len, long want_status, const char *want_type)
{
    static char out[1 << 20];
    int st = raw_req(method, target, NULL, body, body_len, out, sizeof out);
    json_t *j = raw_json(out);
    expect_scim_error(what, st, j, want_status, want_type);
    json_decref(j);
}

/* Filter list: returns totalResults, or -1 with the status in *status. */
static long list_total(const char *filter_raw, long *status)
{
    char *enc = e2e_urlencode(filter_raw);
    char path[70000];
    struct e2e_response r;
    long total = -1;
    snprintf(path, sizeof path, "/Users?filter=%s", enc);
    free(enc);
    *status = 0;
    if (e2e_request(&srv, "GET", path, NULL, NULL, &r) == 0) {
        *status = r.status;
        if (r.status == 200)
            total = (long)json_integer_value(json_object_get(r.json, "totalResults"));
    }
    e2e_response_free(&r);
    return total;
}

/* ---- slowloris ---- */

static int slow_fds[SLOW_CONNS];
static atomic_int slow_stop;

static void *slowloris(void *arg)
{
    static const char drip[] = "GET /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    (void)arg;
    for (size_t i = 0; !atomic_load(&slow_stop); i++) {
        char c = drip[i % (sizeof drip - 1)];
        for (int k = 0; k < SLOW_CONNS; k++)
            if (slow_fds[k] >= 0)
                send(slow_fds[k], &c, 1, MSG_NOSIGNAL);
        for (int t = 0; t < 10 && !atomic_load(&slow_stop); t++)
            usleep(100000);
    }
    return NULL;
}

/* ---- seed data ---- */

#define N_SEED 4
static char seed_path[N_SEED][128];
static json_t *seed_body[N_SEED];

static void seed(void)
{
    const char *users[] = {"alice@example.com", "bob@example.com", "carol@example.com"};
    char body[1024];
    struct e2e_response r;
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof body,
                 "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                 "\"userName\":\"%s\",\"displayName\":\"Seed %d\",\"emails\":[{\"value\":\"%s\","
                 "\"type\":\"work\",\"primary\":true}]}",
                 users[i], i, users[i]);
        if (e2e_request(&srv, "POST", "/Users", NULL, body, &r) == 0 && r.status == 201)
            snprintf(seed_path[i], sizeof seed_path[i], "/Users/%s",
                     json_string_value(json_object_get(r.json, "id")));
        else
            CHECK(0, "seed user %d: %ld %s", i, r.status, r.body);
        e2e_response_free(&r);
    }
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
             "\"displayName\":\"Seed group\",\"members\":[{\"value\":\"%s\"},{\"value\":\"%s\"}]}",
             seed_path[0] + 7, seed_path[1] + 7);
    if (e2e_request(&srv, "POST", "/Groups", NULL, body, &r) == 0 && r.status == 201)
        snprintf(seed_path[3], sizeof seed_path[3], "/Groups/%s",
                 json_string_value(json_object_get(r.json, "id")));
    else
        CHECK(0, "seed group: %ld %s", r.status, r.body);
    e2e_response_free(&r);
    for (int i = 0; i < N_SEED; i++) {
        if (e2e_request(&srv, "GET", seed_path[i], NULL, NULL, &r) == 0 && r.status == 200)
            seed_body[i] = json_incref(r.json);
        e2e_response_free(&r);
    }
}

static void verify_seed(void)
{
    struct e2e_response r;
    for (int i = 0; i < N_SEED; i++) {
        if (e2e_request(&srv, "GET", seed_path[i], NULL, NULL, &r) != 0 || r.status != 200) {
            CHECK(0, "seeded %s: %ld %s", seed_path[i], r.status, r.body);
        } else {
            CHECK(json_equal(r.json, seed_body[i]), "seeded %s changed: %s", seed_path[i], r.body);
        }
        e2e_response_free(&r);
    }
    long st;
    CHECK(list_total("userName pr", &st) == 3, "user count after the barrage (status %ld)", st);
}

int main(void)
{
    static char out[1 << 20];
    char maxbody[32];
    snprintf(maxbody, sizeof maxbody, "%d", MAX_BODY);
    const char *args[] = {"--max-body", maxbody};
    struct e2e_opts o = {.args = args, .n_args = 2};
    long st, total;
    int s;

    setvbuf(stdout, NULL, _IOLBF, 0);
    e2e_global_init();
    if (e2e_server_start(&srv, &o) != 0) {
        e2e_server_cleanup(&srv, 0);
        return 1;
    }
    seed();

    /* The slowloris starts first and drips during the whole barrage. */
    for (int k = 0; k < SLOW_CONNS; k++)
        slow_fds[k] = connect_srv();
    pthread_t slow;
    pthread_create(&slow, NULL, slowloris, NULL);
    long slow_started = now_ms();

    printf("bodies\n");
    req_error("truncated JSON", "POST", "/Users", "{\"userName\":", 400, "invalidSyntax");
    req_error("not JSON", "POST", "/Users", "userName=alice", 400, "invalidSyntax");
    req_error("JSON array body", "POST", "/Users", "[1,2,3]", 400, "invalidSyntax");
    req_error("trailing garbage", "POST", "/Users", "{\"userName\":\"x\"} }", 400,
              "invalidSyntax");
    {
        char *deep = malloc(60001);
        memset(deep, '[', 30000);
        memset(deep + 30000, ']', 30000);
        deep[60000] = '\0';
        req_error("deeply nested arrays", "POST", "/Users", deep, 400, "invalidSyntax");
        char *deepo = malloc(200000);
        size_t n;
        deepo[0] = '\0';
        n = (size_t)snprintf(deepo, 200000, "{\"userName\":\"deep@example.com\",\"x\":");
        for (int i = 0; i < 2000; i++)
            n += (size_t)snprintf(deepo + n, 200000 - n, "{\"a\":");
        n += (size_t)snprintf(deepo + n, 200000 - n, "1");
        for (int i = 0; i < 2001; i++)
            deepo[n++] = '}';
        deepo[n] = '\0';
        req_error("deeply nested objects", "POST", "/Users", deepo, 400, "invalidSyntax");
        /* A PATCH value nested deeply. */
        n = (size_t)snprintf(deepo, 200000,
                             "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],"
                             "\"Operations\":[{\"op\":\"add\",\"value\":");
        for (int i = 0; i < 1000; i++)
            deepo[n++] = '[';
        for (int i = 0; i < 1000; i++)
            deepo[n++] = ']';
        n += (size_t)snprintf(deepo + n, 200000 - n, "}]}");
        char p[200];
        snprintf(p, sizeof p, "%s", seed_path[0]);
        req_error("deeply nested PATCH", "PATCH", p, deepo, 400, "invalidSyntax");
        free(deep);
        free(deepo);
    }
    {
        size_t n = MAX_BODY + 1000;
        char *big = malloc(n + 1);
        int k = snprintf(big, n + 1, "{\"userName\":\"big@example.com\",\"displayName\":\"");
        memset(big + k, 'a', n - (size_t)k - 2);
        memcpy(big + n - 2, "\"}", 3);
        req_error("body over the limit", "POST", "/Users", big, 413, NULL);
        /* Declared length over the limit, body not sent. */
        char hdr[1024];
        snprintf(hdr, sizeof hdr,
                 "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/scim+json\r\nContent-Length: 99999999999\r\n\r\n",
                 srv.token);
        s = raw(hdr, strlen(hdr), out, sizeof out);
        CHECK(s == 413 || s == 400, "huge Content-Length: %d", s);
        free(big);
    }
    req_error("invalid UTF-8", "POST", "/Users",
              "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
              "\"userName\":\"bad\xff\xfe\xc3(utf8\"}",
              400, "invalidSyntax");
    req_error("overlong UTF-8 NUL", "POST", "/Users",
              "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
              "\"userName\":\"a\xc0\x80z\"}",
              400, "invalidSyntax");
    {
        static const char nul_body[] = "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:"
                                       "User\"],\"userName\":\"nul\0byte@example.com\"}";
        raw_error("raw NUL in a body", "POST", "/scim/v2/Users", nul_body, sizeof nul_body - 1,
                  400, "invalidSyntax");
        static const char nul_after[] = "{\"userName\":\"x@example.com\"}\0trailing";
        raw_error("NUL after the JSON", "POST", "/scim/v2/Users", nul_after,
                  sizeof nul_after - 1, 400, "invalidSyntax");
    }
    /* An escaped NUL is valid JSON; the value must be refused or stored intact, never cut. */
    {
        struct e2e_response r;
        e2e_request(&srv, "POST", "/Users", NULL,
                    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                    "\"userName\":\"esc\\u0000nul@example.com\"}", &r);
        CHECK(r.status == 400, "escaped NUL in userName: %ld %s", r.status, r.body);
        e2e_response_free(&r);
    }

    printf("paths, ids, filters\n");
    raw_error("NUL in a percent-encoded id", "GET", "/scim/v2/Users/abc%00def", NULL, 0, 404,
              NULL);
    raw_error("NUL in the endpoint", "GET", "/scim/v2/Users%00/x", NULL, 0, 404, NULL);
    raw_error("encoded NUL ending the endpoint", "GET", "/scim/v2/Users%00", NULL, 0, 404, NULL);
    {
        struct e2e_response r;
        e2e_request(&srv, "GET", "/Users?filter=userName%20eq%20%22a%00b%22", NULL, NULL, &r);
        expect_scim_error("NUL in a filter", r.status, r.json, 400, "invalidFilter");
        e2e_response_free(&r);
        e2e_request(&srv, "GET", "/Users?filter=%00", NULL, NULL, &r);
        expect_scim_error("filter of one NUL", r.status, r.json, 400, "invalidFilter");
        e2e_response_free(&r);
        e2e_request(&srv, "GET", "/Users?count=1%00", NULL, NULL, &r);
        expect_scim_error("NUL in count", r.status, r.json, 400, "invalidValue");
        e2e_response_free(&r);
    }
    {
        char *huge = malloc(20000);
        memset(huge, 0, 20000);
        strcpy(huge, "userName eq \"");
        memset(huge + 13, 'x', 15000);
        strcat(huge, "\"");
        total = list_total(huge, &st);
        CHECK(st == 400, "a 15 kB filter: %ld", st);
        huge[0] = '\0';
        for (int i = 0; i < 1000; i++)
            strcat(huge, "(");
        strcat(huge, "userName pr");
        for (int i = 0; i < 1000; i++)
            strcat(huge, ")");
        total = list_total(huge, &st);
        CHECK(st == 400, "a filter nested 1000 deep: %ld", st);
        huge[0] = '\0';
        for (int i = 0; i < 50; i++)
            strcat(huge, "userName eq \"a\" or ");
        strcat(huge, "userName eq \"alice@example.com\"");
        total = list_total(huge, &st);
        CHECK(st == 200 && total == 1, "50 ORs: %ld total %ld", st, total);
        /* A chain of ORs is as deep as it is long: beyond the depth limit (100) it is refused. */
        huge[0] = '\0';
        for (int i = 0; i < 300; i++)
            strcat(huge, "userName eq \"a\" or ");
        strcat(huge, "userName eq \"alice@example.com\"");
        total = list_total(huge, &st);
        CHECK(st == 400, "300 ORs: %ld total %ld", st, total);
        huge[0] = '\0';
        for (int i = 0; i < 900; i++)
            strcat(huge, "not(");
        strcat(huge, "userName pr");
        for (int i = 0; i < 900; i++)
            strcat(huge, ")");
        total = list_total(huge, &st);
        CHECK(st == 400, "a filter of 900 nested not(): %ld", st);
        free(huge);
    }
    const char *injections[] = {
        "userName eq \"' OR 1=1 --\"",
        "userName eq \"\\\"; DROP TABLE resources; --\"",
        "userName eq \"x') OR ('1'='1\"",
        "userName co \"%\"",
        "userName co \"_\"",
        "userName sw \"'\"",
        "displayName eq \"\\\\\\\" or \\\"1\\\"=\\\"1\"",
    };
    for (size_t i = 0; i < sizeof injections / sizeof injections[0]; i++) {
        total = list_total(injections[i], &st);
        CHECK(st == 200 && total == 0, "injection filter [%s]: %ld total %ld", injections[i], st,
              total);
    }
    const char *bad_filters[] = {
        "userName eq ' OR 1=1 --",
        "userName eq \"a\"; DROP TABLE resources; --",
        "1=1",
        "userName eq \"a\" OR 1=1",
        "userName) or (1 eq 1",
        "userName eq",
        "\"",
        "userName[",
        "emails[type eq \"work\" or 1=1]",
    };
    for (size_t i = 0; i < sizeof bad_filters / sizeof bad_filters[0]; i++) {
        char *enc = e2e_urlencode(bad_filters[i]);
        char path[512];
        snprintf(path, sizeof path, "/Users?filter=%s", enc);
        free(enc);
        char what[700];
        snprintf(what, sizeof what, "bad filter [%s]", bad_filters[i]);
        req_error(what, "GET", path, NULL, 400, "invalidFilter");
    }
    const char *bad_ids[] = {
        "%27%20OR%201%3D1%20--",
        "%22%3B%20DROP%20TABLE%20resources%3B%20--",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%2e%2e",
        "%252e%252e%252f",
        "*",
        "%25",
    };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        char path[256], what[600];
        snprintf(path, sizeof path, "/scim/v2/Users/%s", bad_ids[i]);
        snprintf(what, sizeof what, "GET id %s", bad_ids[i]);
        raw_error(what, "GET", path, NULL, 0, 404, NULL);
        snprintf(what, sizeof what, "DELETE id %s", bad_ids[i]);
        raw_error(what, "DELETE", path, NULL, 0, 404, NULL);
        snprintf(what, sizeof what, "PUT id %s", bad_ids[i]);
        static const char put[] = "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                                  "\"userName\":\"alice@example.com\"}";
        raw_error(what, "PUT", path, put, sizeof put - 1, 404, NULL);
    }
    raw_error("traversal out of the prefix", "GET", "/scim/v2/../../etc/passwd", NULL, 0, 404,
              NULL);
    raw_error("traversal in the endpoint", "GET", "/scim/v2/Users/../../../etc/passwd", NULL, 0,
              404, NULL);
    raw_error("encoded traversal", "GET", "/scim/v2/%2e%2e/%2e%2e/etc/passwd", NULL, 0, 404,
              NULL);

    printf("counts and indexes\n");
    {
        struct e2e_response r;
        e2e_request(&srv, "GET", "/Users?count=-1", NULL, NULL, &r);
        CHECK(r.status == 200 && json_integer_value(json_object_get(r.json, "totalResults")) == 3 &&
                  json_array_size(json_object_get(r.json, "Resources")) == 0,
              "count=-1: %ld %.200s", r.status, r.body);
        e2e_response_free(&r);
        e2e_request(&srv, "GET", "/Users?count=999999999999", NULL, NULL, &r);
        CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "Resources")) == 3,
              "count=999999999999: %ld %.200s", r.status, r.body);
        e2e_response_free(&r);
        e2e_request(&srv, "GET", "/Users?startIndex=-5&count=1", NULL, NULL, &r);
        CHECK(r.status == 200 && json_integer_value(json_object_get(r.json, "startIndex")) == 1 &&
                  json_array_size(json_object_get(r.json, "Resources")) == 1,
              "startIndex=-5: %ld %.200s", r.status, r.body);
        e2e_response_free(&r);
        e2e_request(&srv, "GET", "/Users?startIndex=9223372036854775807&count=5", NULL, NULL, &r);
        CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "Resources")) == 0,
              "startIndex=INT64_MAX: %ld %.200s", r.status, r.body);
        e2e_response_free(&r);
    }
    req_error("startIndex beyond 64 bits", "GET", "/Users?startIndex=99999999999999999999", NULL,
              400, "invalidValue");
    req_error("count beyond 64 bits", "GET", "/Users?count=-99999999999999999999", NULL, 400,
              "invalidValue");
    req_error("count not a number", "GET", "/Users?count=1e3", NULL, 400, "invalidValue");
    req_error("search with count as string", "POST", "/Users/.search",
              "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:SearchRequest\"],"
              "\"count\":\"10\"}",
              400, "invalidValue");
    {
        struct e2e_response r;
        e2e_request(&srv, "POST", "/Users/.search", NULL,
                    "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:SearchRequest\"],"
                    "\"count\":999999999999,\"startIndex\":-99999999999}",
                    &r);
        CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "Resources")) == 3,
              "search with absurd count/startIndex: %ld %.200s", r.status, r.body);
        e2e_response_free(&r);
    }

    printf("methods, URLs, headers\n");
    const char *methods[] = {"FOO", "TRACE", "OPTIONS", "CONNECT", "PROPFIND"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "method %s", methods[i]);
        raw_error(what, methods[i], "/scim/v2/Users", NULL, 0, 405, NULL);
    }
    {
        size_t n = 200000;
        char *url = malloc(n + 64);
        strcpy(url, "/scim/v2/Users?filter=");
        memset(url + strlen(url), 'a', n);
        url[n + 22] = '\0';
        s = raw_req("GET", url, NULL, NULL, 0, out, sizeof out);
        CHECK(s >= 400 && s < 500, "a 200 kB URL: %d", s);
        free(url);
        char *hdr = malloc(n + 64);
        strcpy(hdr, "X-Long: ");
        memset(hdr + 8, 'h', n);
        strcpy(hdr + 8 + n, "\r\n");
        s = raw_req("GET", "/scim/v2/Users", hdr, NULL, 0, out, sizeof out);
        CHECK(s >= 400 && s < 500, "a 200 kB header: %d", s);
        hdr[0] = '\0';
        size_t len = 0;
        for (int i = 0; i < 500; i++)
            len += (size_t)snprintf(hdr + len, n - len, "X-Many-%d: %d\r\n", i, i);
        s = raw_req("GET", "/scim/v2/Users?count=1", hdr, NULL, 0, out, sizeof out);
        CHECK(s == 200 || s == 431 || s == 400, "500 headers: %d", s);
        len = 0;
        for (int i = 0; i < 100; i++)
            len += (size_t)snprintf(hdr + len, n - len, "Authorization: Bearer x%d\r\n", i);
        s = raw_req("GET", "/scim/v2/Users?count=1", hdr, NULL, 0, out, sizeof out);
        CHECK(s == 200 || s == 401 || s == 400, "100 extra Authorization headers: %d", s);
        free(hdr);
    }
    {
        unsigned seed = 12345;
        char garbage[8192];
        for (int round = 0; round < 20; round++) {
            for (size_t i = 0; i < sizeof garbage; i++)
                garbage[i] = (char)(rand_r(&seed) & 0xff);
            s = raw(garbage, sizeof garbage, out, sizeof out);
            CHECK(s == 0 || (s >= 400 && s < 500), "garbage round %d: %d", round, s);
        }
        s = raw("\r\n\r\n\r\n", 6, out, sizeof out);
        /* Empty lines before a request line are allowed (RFC 9112 §2.2): the server may keep
         * waiting for the request, and close the connection at its idle timeout. */
        CHECK(s == -1 || s == 0 || (s >= 400 && s < 500), "blank lines: %d", s);
        static const char bad_version[] = "GET /scim/v2/Users HTTP/9.9\r\nHost: x\r\n\r\n";
        s = raw(bad_version, sizeof bad_version - 1, out, sizeof out);
        CHECK(s == 0 || s == 505 || s == 400, "HTTP/9.9: %d", s);
    }
    {
        char req[1024];
        snprintf(req, sizeof req,
                 "GET /scim/v2/Users?count=1 HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n",
                 srv.token);
        s = raw(req, strlen(req), out, sizeof out);
        CHECK(s == 200, "HTTP/1.0 request: %d", s);
        /* Pipelining: three requests in one write, answered in order. */
        size_t n = 0;
        for (int i = 0; i < 3; i++)
            n += (size_t)snprintf(req + n, sizeof req - n,
                                  "GET /scim/v2%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                  "%s\r\n%s\r\n",
                                  i == 1 ? "/Groups?count=1" : "/Users?count=1", srv.token,
                                  i == 2 ? "Connection: close\r\n" : "");
        s = raw(req, n, out, sizeof out);
        int answers = 0;
        for (const char *p = out; (p = strstr(p, "HTTP/1.1 200")) != NULL; p++)
            answers++;
        CHECK(s == 200 && answers == 3, "pipelined: %d answers (first %d)", answers, s);
        CHECK(strstr(out, "\"totalResults\":1") && strstr(out, "\"totalResults\":3"),
              "pipelined answers are not the Users, Groups, Users lists");
    }

    /* While the slowloris drips, a normal request is answered promptly. */
    {
        struct e2e_response r;
        long t0 = now_ms();
        e2e_request(&srv, "GET", "/Users?count=1", NULL, NULL, &r);
        long dt = now_ms() - t0;
        CHECK(r.status == 200 && dt < 5000, "request during the slowloris: %ld in %ld ms",
              r.status, dt);
        e2e_response_free(&r);
    }
    /* Keep dripping for at least 5 s, then fall silent: the server closes the idle
     * connections after its timeout. */
    while (now_ms() - slow_started < 5000)
        usleep(100000);
    atomic_store(&slow_stop, 1);
    pthread_join(slow, NULL);
    long idle_since = now_ms();
    int closed = 0, open_before = 0;
    for (int k = 0; k < SLOW_CONNS; k++)
        open_before += slow_fds[k] >= 0;
    CHECK(open_before == SLOW_CONNS, "only %d slowloris connections opened", open_before);
    for (int k = 0; k < SLOW_CONNS; k++) {
        if (slow_fds[k] < 0)
            continue;
        long left = (IDLE_TIMEOUT_S + 10) * 1000L - (now_ms() - idle_since);
        if (recv_until_close(slow_fds[k], out, sizeof out, left > 0 ? (int)left : 1) >= 0)
            closed++;
        close(slow_fds[k]);
    }
    printf("slowloris: %d of %d idle connections closed by the server after %ld ms\n", closed,
           open_before, now_ms() - idle_since);
    CHECK(closed == open_before, "%d idle connections still open after %d s", open_before - closed,
          IDLE_TIMEOUT_S + 10);

    verify_seed();
    {
        struct e2e_response r;
        e2e_request(&srv, "GET", "/ServiceProviderConfig", NULL, NULL, &r);
        CHECK(r.status == 200, "the server no longer answers: %ld %s", r.status, r.error);
        e2e_response_free(&r);
    }
    for (int i = 0; i < N_SEED; i++)
        json_decref(seed_body[i]);
    int stop = e2e_server_stop(&srv);
    CHECK(stop == 0, "scimd exit status %d after the barrage", stop);
    e2e_server_cleanup(&srv, fails == 0);
    printf("%s (%d failures)\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}
