/* Fuzzes whole requests handled in-process: scim_api_handle over a fresh "sqlite::memory:" store
 * per input (so every input replays identically), holding one User and one Group (with that user
 * as member), created through the API before the fuzzed requests run.
 *
 * Input format: up to 8 requests separated by a line "%%". Each request is
 *   METHOD TARGET            e.g. "PATCH /scim/v2/Users/{user}?attributes=userName"
 *   Name: value              optional header lines, up to an empty line
 *                            (an empty line, then the body, raw bytes)
 * "{user}" and "{group}" in the target and the body are replaced by the ids of the fixtures.
 * Authorization (a valid read/write bearer token), Host and Content-Type are added unless the
 * request sets them. Checks: the status is 1xx-5xx but never 500 (no internal failure on client
 * input: no allocation fails under the fuzzer), and every status >= 400 carries a SCIM Error JSON
 * body whose "status" is the HTTP status as a string. */
#include <jansson.h>
#include <stdio.h>

#include "api/api.h"
#include "auth/token.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "fuzz.h"
#include "store/store.h"

#define MAX_REQUESTS 8
#define TOKEN "fuzz-token-0123456789abcdef"

struct fixture {
    struct scim_store *st;
    struct scim_api *api;
    char user[64], group[64];
};

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_request: %s: %s\n", what, detail ? detail : "");
    abort();
}

/* Checks the response invariants; aborts on a violation. */
static void check_response(const struct scim_response *resp)
{
    json_error_t jerr;
    json_t *body, *status;
    char want[8];

    if (resp->status < 100 || resp->status > 599 || resp->status == 500) {
        fprintf(stderr, "fuzz_request: status %d, body: %.*s\n", resp->status,
                (int)(resp->body_len > 2000 ? 2000 : resp->body_len),
                resp->body ? resp->body : "");
        abort();
    }
    if (resp->status < 400)
        return;
    snprintf(want, sizeof want, "%d", resp->status);
    if (!resp->body)
        die("error response without a body, status", want);
    body = json_loadb(resp->body, resp->body_len, 0, &jerr);
    status = json_object_get(body, "status");
    if (!json_is_string(status) || strcmp(json_string_value(status), want) != 0)
        die("error body is not a SCIM Error with the HTTP status", resp->body);
    json_decref(body);
}

static void do_request(struct fixture *fx, const char *method, const char *target,
                       struct scim_header *hdrs, size_t n_hdrs, const char *body,
                       size_t body_len, struct scim_response *resp)
{
    static const struct scim_header defaults[] = {
        {"Authorization", "Bearer " TOKEN},
        {"Host", "scim.example.com"},
        {"Content-Type", "application/scim+json"},
    };
    struct scim_request req;
    char path[4096];
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);

    memset(&req, 0, sizeof req);
    memset(resp, 0, sizeof *resp);
    if (plen >= sizeof path)
        plen = sizeof path - 1;
    memcpy(path, target, plen);
    path[plen] = '\0';
    req.method = method;
    req.raw_path = path;
    req.raw_query = q ? q + 1 : "";
    for (size_t i = 0; i < n_hdrs && req.n_headers < SCIM_MAX_REQ_HEADERS; i++)
        req.headers[req.n_headers++] = hdrs[i];
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        bool given = false;
        for (size_t j = 0; j < n_hdrs; j++)
            if (scim_strcasecmp(hdrs[j].name, defaults[i].name) == 0)
                given = true;
        if (!given && req.n_headers < SCIM_MAX_REQ_HEADERS)
            req.headers[req.n_headers++] = defaults[i];
    }
    req.body = body;
    req.body_len = body_len;
    req.remote_addr = "127.0.0.1";
    snprintf(req.request_id, sizeof req.request_id, "fuzz");
    scim_api_handle(fx->api, &req, resp);
}

/* POSTs a fixture and copies its id. */
static void create(struct fixture *fx, const char *endpoint, const char *body, char id[64])
{
    struct scim_response resp;
    json_t *v;

    do_request(fx, "POST", endpoint, NULL, 0, body, strlen(body), &resp);
    if (resp.status != 201)
        die("fixture POST failed", resp.body);
    v = json_loadb(resp.body, resp.body_len, 0, NULL);
    if (!json_is_string(json_object_get(v, "id")))
        die("fixture without id", resp.body);
    snprintf(id, 64, "%s", json_string_value(json_object_get(v, "id")));
    json_decref(v);
    scim_response_release(&resp);
}

static int fixture_open(struct fixture *fx)
{
    const struct scim_registry *reg = fuzz_reg();
    struct scim_store_opts so = {reg, 1, 0};
    struct scim_api_config cfg;
    struct scim_err err;
    unsigned char hash[32];
    int64_t tenant;
    char body[512];

    memset(fx, 0, sizeof *fx);
    scim_err_clear(&err);
    scim_api_config_defaults(&cfg);
    scim_token_hash(TOKEN, strlen(TOKEN), hash);
    if (scim_store_open("sqlite::memory:", &so, &fx->st, &err) ||
        scim_store_tenant_default(fx->st, &tenant, &err) ||
        scim_store_token_create(fx->st, tenant, "fuzz", hash, "scim:read scim:write", 0, &err) ||
        scim_api_new(&cfg, fx->st, reg, &fx->api, &err))
        die("fixture setup", err.detail);
    create(fx, "/scim/v2/Users",
           "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
           "\"userName\":\"bjensen@example.com\",\"externalId\":\"bj\",\"active\":true,"
           "\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},"
           "\"emails\":[{\"value\":\"bjensen@example.com\",\"type\":\"work\",\"primary\":true}]}",
           fx->user);
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
             "\"displayName\":\"Tour Guides\",\"members\":[{\"value\":\"%s\"}]}",
             fx->user);
    create(fx, "/scim/v2/Groups", body, fx->group);
    return 0;
}

static void fixture_close(struct fixture *fx)
{
    scim_api_free(&fx->api);
    scim_store_free(&fx->st);
}

/* Copies [s, s+n) replacing {user} and {group}. NULL on out of memory. */
static char *substitute(const struct fixture *fx, const char *s, size_t n, size_t *out_len)
{
    struct scim_buf b;
    scim_buf_init(&b, 0);
    for (size_t i = 0; i < n;) {
        if (n - i >= 6 && memcmp(s + i, "{user}", 6) == 0) {
            scim_buf_adds(&b, fx->user);
            i += 6;
        } else if (n - i >= 7 && memcmp(s + i, "{group}", 7) == 0) {
            scim_buf_adds(&b, fx->group);
            i += 7;
        } else {
            scim_buf_addc(&b, s[i++]);
        }
    }
    *out_len = b.len;
    return scim_buf_take(&b);
}

/* Runs one request text [s, s+n). */
static void run_one(struct fixture *fx, const char *s, size_t n)
{
    struct scim_header hdrs[16];
    size_t n_hdrs = 0, len, body_len = 0;
    char *text = substitute(fx, s, n, &len), *line, *eol, *sp, *body = NULL;
    struct scim_response resp;

    if (!text)
        return;
    /* Request line. */
    eol = memchr(text, '\n', len);
    if (eol)
        *eol = '\0';
    sp = strchr(text, ' ');
    if (!sp || strlen(text) != (size_t)(eol ? eol - text : (ptrdiff_t)len))
        goto out; /* no target, or a NUL inside the request line */
    *sp = '\0';
    /* Headers until an empty line; the rest is the body. */
    line = eol ? eol + 1 : text + len;
    while (line < text + len) {
        char *colon;
        eol = memchr(line, '\n', (size_t)(text + len - line));
        if (eol)
            *eol = '\0';
        if (*line == '\0') {
            body = eol ? eol + 1 : text + len;
            break;
        }
        colon = strchr(line, ':');
        if (colon && n_hdrs < sizeof hdrs / sizeof hdrs[0]) {
            *colon = '\0';
            hdrs[n_hdrs].name = line;
            hdrs[n_hdrs].value = colon + 1 + (colon[1] == ' ');
            n_hdrs++;
        }
        if (!eol)
            break;
        line = eol + 1;
    }
    if (body)
        body_len = (size_t)(text + len - body);
    do_request(fx, text, sp + 1, hdrs, n_hdrs, body_len ? body : NULL, body_len, &resp);
    check_response(&resp);
    scim_response_release(&resp);
out:
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fixture fx;
    const char *s = (const char *)data, *end = s + size;
    int count = 0;

    if (size > 65536)
        return 0;
    scim_log_set_level(SCIM_LOG_ERROR);
    fixture_open(&fx);
    while (s < end && count < MAX_REQUESTS) {
        const char *sep = NULL;
        for (const char *p = s; p + 4 <= end; p++)
            if (memcmp(p, "\n%%\n", 4) == 0) {
                sep = p;
                break;
            }
        run_one(&fx, s, (size_t)((sep ? sep : end) - s));
        count++;
        s = sep ? sep + 4 : end;
    }
    fixture_close(&fx);
    return 0;
}
