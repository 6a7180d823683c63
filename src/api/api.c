/* Request routing, authentication, query parsing and response rendering. */
#include "api/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "common/buf.h"
#include "common/jsonalloc.h"
#include "common/jsondump.h"
#include "common/log.h"
#include "common/util.h"
#include "scim/compat.h"
#include "scim/discovery.h"

#define SCIM_CONTENT_TYPE "application/scim+json"

/* A token's last-used time is written at most this often, so that reads do not each cost a
 * write transaction. */
#define TOKEN_TOUCH_INTERVAL_US (60 * 1000000LL)

/* Keys each rate limiter tracks before evicting the least recently seen. */
#define RATELIMIT_SLOTS 4096

void scim_api_config_defaults(struct scim_api_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->prefix = "/scim/v2";
    cfg->public_url = NULL;
    cfg->max_body = 8u << 20;
    cfg->max_filter_length = 8192;
    cfg->max_filter_depth = 100;
    cfg->max_json_depth = 64;
    cfg->max_results = 1000;
    cfg->default_count = 1000;
    cfg->max_operations = 1000;
    cfg->max_members_per_request = 10000;
    cfg->bulk_max_operations = 1000;
    cfg->bulk_max_payload = 1u << 20;
    cfg->cursor_timeout = 3600;
}

int scim_api_new(const struct scim_api_config *cfg, struct scim_store *st,
                 const struct scim_registry *reg, struct scim_api **out, struct scim_err *err)
{
    struct scim_api *api = calloc(1, sizeof *api);
    size_t n;

    if (!api)
        return scim_err_nomem(err);
    api->cfg = *cfg;
    api->prefix = scim_strdup(cfg->prefix && *cfg->prefix ? cfg->prefix : "/scim/v2");
    api->public_url = cfg->public_url && *cfg->public_url ? scim_strdup(cfg->public_url) : NULL;
    if (!api->prefix || (cfg->public_url && *cfg->public_url && !api->public_url)) {
        scim_api_free(&api);
        return scim_err_nomem(err);
    }
    n = strlen(api->prefix);
    while (n > 1 && api->prefix[n - 1] == '/')
        api->prefix[--n] = '\0';
    if (api->public_url) {
        n = strlen(api->public_url);
        while (n > 0 && api->public_url[n - 1] == '/')
            api->public_url[--n] = '\0';
    }
    if (api->cfg.default_count > api->cfg.max_results)
        api->cfg.default_count = api->cfg.max_results;
    api->cfg.prefix = api->prefix;
    api->cfg.public_url = api->public_url;
    if (api->cfg.bulk_max_payload > api->cfg.max_body)
        api->cfg.bulk_max_payload = api->cfg.max_body;
    api->st = st;
    api->reg = reg;
    if ((cfg->rate_token.rate > 0 &&
         !(api->rl_token = scim_ratelimit_new(&cfg->rate_token, RATELIMIT_SLOTS))) ||
        (cfg->rate_tenant.rate > 0 &&
         !(api->rl_tenant = scim_ratelimit_new(&cfg->rate_tenant, RATELIMIT_SLOTS)))) {
        scim_api_free(&api);
        return scim_err_nomem(err);
    }
    if (api_cursor_init(api, err)) {
        scim_api_free(&api);
        return -1;
    }
    *out = api;
    return 0;
}

void scim_api_free(struct scim_api **api)
{
    if (!*api)
        return;
    free((*api)->prefix);
    free((*api)->public_url);
    scim_ratelimit_free(&(*api)->rl_token);
    scim_ratelimit_free(&(*api)->rl_tenant);
    free(*api);
    *api = NULL;
}

/* --- rendering ----------------------------------------------------------------------------- */

static void take_text(struct api_req *r, int status, char *text, bool had_body);

void api_json_take(struct api_req *r, int status, json_t *body)
{
    char *text = NULL;

    if (body)
        text = scim_json_dumps_compact(body); /* = json_dumps(COMPACT | ENCODE_ANY) */
    json_decref(body);
    take_text(r, status, text, body != NULL);
}

void api_text_take(struct api_req *r, int status, struct scim_buf *body)
{
    take_text(r, status, scim_buf_take(body), true);
}

static void take_text(struct api_req *r, int status, char *text, bool had_body)
{
    struct scim_response *resp = r->resp;
    /* A jansson allocation that failed during this request may have silently dropped part of
     * a value (json_copy, json_object_set_new results ignored): whatever was about to be
     * answered may rest on incomplete data, so the answer is a 500. */
    if (scim_json_oom() && status < 500) {
        free(text);
        text = NULL;
    }
    if (!text && (had_body || scim_json_oom())) {
        /* Out of memory while rendering: answer a fixed 500 body. */
        static const char oom[] = "{\"schemas\":[\"" SCIM_MSG_ERROR "\"],\"status\":\"500\","
                                  "\"detail\":\"The server ran out of memory.\"}";
        status = 500;
        text = scim_strdup(oom);
    }
    free(resp->body);
    resp->status = status;
    resp->body = text;
    resp->body_len = text ? strlen(text) : 0;
    resp->content_type = SCIM_CONTENT_TYPE;
}

/* Error details may quote client input (an id, a filter, a method name): bytes that are not
 * valid UTF-8 become '?', so the Error body can always be rendered as JSON. */
static void printable_detail(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, in, n);
    out[n] = '\0';
    if (scim_utf8_valid(out, n))
        return;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] >= 0x80 || (unsigned char)out[i] < 0x20)
            out[i] = '?';
}

void api_error(struct api_req *r, const struct scim_err *e)
{
    int status = e->status >= 400 && e->status <= 599 ? e->status : 500;
    char st[8];
    char detail[SCIM_ERR_DETAIL_MAX];
    json_t *body;

    snprintf(st, sizeof st, "%d", status);
    printable_detail(e->detail[0] ? e->detail : scim_http_reason(status), detail, sizeof detail);
    body = json_pack("{s:[s],s:s,s:s}", "schemas", SCIM_MSG_ERROR, "status", st, "detail", detail);
    if (body && e->scim_type)
        json_object_set_new(body, "scimType", json_string(e->scim_type));
    r->scim_type = e->scim_type;
    snprintf(r->err_detail, sizeof r->err_detail, "%s", detail);
    if (status >= 500 && e->log[0])
        scim_error("request_failed id=%s status=%d cause=\"%s\"", r->req->request_id, status, e->log);
    else if (e->log[0])
        scim_debug("request_failed id=%s status=%d cause=\"%s\"", r->req->request_id, status, e->log);
    if (status == 401)
        scim_response_header(r->resp, "WWW-Authenticate", "Bearer realm=\"scimd\"");
    if (status == 503)
        scim_response_header(r->resp, "Retry-After", "5");
    api_json_take(r, status, body);
}

void api_etag_header(struct api_req *r, json_t *resource)
{
    const char *v = json_string_value(json_object_get(json_object_get(resource, "meta"), "version"));
    if (v)
        scim_response_header(r->resp, "ETag", v);
}

int api_compat_check(struct api_req *r, uint32_t extra, struct scim_err *err)
{
    uint32_t hit = (r->compat | extra) & r->api->cfg.compat_disabled;
    char names[256];

    if (!hit)
        return 0;
    scim_compat_names(hit, names, sizeof names);
    return scim_err_set(err, 400, SCIM_TYPE_INVALID_SYNTAX,
                        "The request relies on the compatibility behaviour %s, which this server "
                        "has turned off (see docs/compatibility.md).",
                        names);
}

/* --- request body -------------------------------------------------------------------------- */

/* Nesting depth of a JSON text (brackets outside strings), computed before parsing so that a
 * deeply nested body cannot exhaust the parser's stack. */
static int json_depth(const char *s, size_t len)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

int api_parse_body(struct api_req *r, json_t **out, struct scim_err *err)
{
    const struct scim_request *req = r->req;
    json_error_t jerr;
    json_t *v;

    if (!req->body || req->body_len == 0)
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_SYNTAX, "The request body is empty.");
    if (json_depth(req->body, req->body_len) > r->api->cfg.max_json_depth)
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_SYNTAX,
                            "The request body is nested more than %d levels deep.",
                            r->api->cfg.max_json_depth);
    v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    /* jansson may turn an allocation failure into a syntax error or a value with parts
     * missing: either way the request fails with 500. */
    if (scim_json_oom() || (!v && json_error_code(&jerr) == json_error_out_of_memory)) {
        json_decref(v);
        return scim_err_nomem(err);
    }
    if (!v)
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_SYNTAX,
                            "The request body is not valid JSON: %s (line %d, column %d).",
                            jerr.text, jerr.line, jerr.column);
    if (!json_is_object(v)) {
        json_decref(v);
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_SYNTAX,
                            "The request body must be a JSON object.");
    }
    *out = v;
    return 0;
}

/* --- query parameters ---------------------------------------------------------------------- */

void api_query_release(struct api_query *q)
{
    free(q->filter);
    free(q->sort_by);
    free(q->sort_order);
    free(q->attributes);
    free(q->excluded);
    free(q->cursor);
    memset(q, 0, sizeof *q);
}

static int set_str(char **slot, char *value)
{
    free(*slot);
    *slot = value;
    return 0;
}

static int parse_int_param(const char *name, const char *v, int64_t *out, struct scim_err *err)
{
    if (scim_parse_i64(v, out))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                            "The query parameter %s must be an integer.", name);
    return 0;
}

/* Stores one decoded parameter. Unknown parameters (for example Entra's "aadOptscim062020"
 * flag) are ignored. */
static int query_set(struct api_req *r, const char *name, char *value, struct scim_err *err)
{
    struct api_query *q = &r->q;
    int rc = 0;

    if (scim_streq_ci(name, "filter"))
        return set_str(&q->filter, value);
    if (scim_streq_ci(name, "sortBy"))
        return set_str(&q->sort_by, value);
    if (scim_streq_ci(name, "sortOrder"))
        return set_str(&q->sort_order, value);
    if (scim_streq_ci(name, "attributes"))
        return set_str(&q->attributes, value);
    if (scim_streq_ci(name, "excludedAttributes"))
        return set_str(&q->excluded, value);
    if (scim_streq_ci(name, "cursor"))
        return set_str(&q->cursor, value);
    if (scim_streq_ci(name, "startIndex")) {
        rc = parse_int_param("startIndex", value, &q->start_index, err);
        q->has_start_index = rc == 0;
    } else if (scim_streq_ci(name, "count")) {
        rc = parse_int_param("count", value, &q->count, err);
        q->has_count = rc == 0;
    }
    free(value);
    return rc;
}

/* A percent-encoded NUL would silently cut the decoded C string (a filter "%00" would become
 * no filter at all), so it is refused wherever text is decoded. */
static bool has_encoded_nul(const char *p, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++)
        if (p[i] == '%' && p[i + 1] == '0' && p[i + 2] == '0')
            return true;
    return false;
}

int api_query_parse(struct api_req *r, struct scim_err *err)
{
    const char *p = r->req->raw_query ? r->req->raw_query : "";

    if (strchr(p, '+'))
        r->compat |= SCIM_COMPAT_PLUS_AS_SPACE;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq) {
            char *name = scim_url_decode(p, (size_t)(eq - p), true);
            char *value = scim_url_decode(eq + 1, len - (size_t)(eq - p) - 1, true);
            int rc;
            if (!name || !value) {
                free(name);
                free(value);
                return scim_err_nomem(err);
            }
            if (has_encoded_nul(p, len)) {
                rc = scim_err_set(err, 400,
                                  scim_streq_ci(name, "filter") ? SCIM_TYPE_INVALID_FILTER
                                                                : SCIM_TYPE_INVALID_VALUE,
                                  "The query parameter %s contains an encoded NUL character.",
                                  scim_streq_ci(name, "filter") ? "filter" : "value");
                free(name);
                free(value);
                return rc;
            }
            rc = query_set(r, name, value, err);
            free(name);
            if (rc)
                return -1;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

/* A SearchRequest attribute list may be an array of names or a comma-separated string. */
static int search_list(json_t *v, char **slot, struct scim_err *err)
{
    struct scim_buf b;
    size_t i;
    json_t *item;

    if (json_is_string(v))
        return set_str(slot, scim_strdup(json_string_value(v))) || !*slot ? scim_err_nomem(err) : 0;
    if (!json_is_array(v))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                            "attributes and excludedAttributes must be arrays of strings.");
    scim_buf_init(&b, 0);
    json_array_foreach(v, i, item) {
        if (!json_is_string(item)) {
            scim_buf_release(&b);
            return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                "attributes and excludedAttributes must be arrays of strings.");
        }
        if ((i && scim_buf_addc(&b, ',')) || scim_buf_adds(&b, json_string_value(item))) {
            scim_buf_release(&b);
            return scim_err_nomem(err);
        }
    }
    set_str(slot, scim_buf_take(&b));
    return *slot ? 0 : scim_err_nomem(err);
}

int api_query_from_search(struct api_req *r, json_t *body, struct scim_err *err)
{
    const char *key;
    json_t *v;

    json_object_foreach(body, key, v) {
        char **slot = NULL;
        if (scim_streq_ci(key, "filter"))
            slot = &r->q.filter;
        else if (scim_streq_ci(key, "sortBy"))
            slot = &r->q.sort_by;
        else if (scim_streq_ci(key, "sortOrder"))
            slot = &r->q.sort_order;
        else if (scim_streq_ci(key, "cursor"))
            slot = &r->q.cursor;
        if (slot) {
            if (json_is_null(v))
                continue;
            if (!json_is_string(v))
                return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "The search parameter %s must be a string.", key);
            set_str(slot, scim_strdup(json_string_value(v)));
            if (!*slot)
                return scim_err_nomem(err);
        } else if (scim_streq_ci(key, "attributes")) {
            if (search_list(v, &r->q.attributes, err))
                return -1;
        } else if (scim_streq_ci(key, "excludedAttributes")) {
            if (search_list(v, &r->q.excluded, err))
                return -1;
        } else if (scim_streq_ci(key, "startIndex") || scim_streq_ci(key, "count")) {
            bool is_start = scim_streq_ci(key, "startIndex");
            if (!json_is_integer(v))
                return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "The search parameter %s must be an integer.", key);
            if (is_start) {
                r->q.start_index = json_integer_value(v);
                r->q.has_start_index = true;
            } else {
                r->q.count = json_integer_value(v);
                r->q.has_count = true;
            }
        }
    }
    return 0;
}

/* --- routing ------------------------------------------------------------------------------- */

/* Splits the path after the prefix into at most 3 decoded segments. Returns the number of
 * segments, -1 when there are more, or -2 on out of memory. */
static int split_path(const char *rest, char *seg[3])
{
    int n = 0;
    const char *p = rest;
    while (*p == '/')
        p++;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 3 || has_encoded_nul(p, len))
            return -1;
        seg[n] = scim_url_decode(p, len, false);
        if (!seg[n])
            return -2;
        n++;
        p += len;
        while (*p == '/')
            p++;
    }
    return n;
}

/* Matches an endpoint name case-insensitively; records the compat bit when the case differs
 * (clients such as the Microsoft collection send "/users"). */
static bool endpoint_is(struct api_req *r, const char *seg, const char *name)
{
    if (!scim_streq_ci(seg, name))
        return false;
    if (strcmp(seg, name) != 0)
        r->compat |= SCIM_COMPAT_ENDPOINT_CASE;
    return true;
}

static bool method_is(const struct api_req *r, const char *m)
{
    return strcmp(r->req->method, m) == 0;
}

void api_method_not_allowed(struct api_req *r, const char *allowed)
{
    struct scim_err e;
    scim_err_clear(&e);
    scim_err_set(&e, 405, NULL, "The method %s is not allowed here; allowed: %s.", r->req->method,
                 allowed);
    scim_response_header(r->resp, "Allow", allowed);
    api_error(r, &e);
}

static void not_found(struct api_req *r, const char *what)
{
    struct scim_err e;
    scim_err_clear(&e);
    scim_err_set(&e, 404, NULL, "%s", what);
    api_error(r, &e);
}

static void set_base_url(struct api_req *r)
{
    const struct scim_api *api = r->api;
    if (api->public_url) {
        snprintf(r->root_url, sizeof r->root_url, "%s", api->public_url);
        snprintf(r->base_url, sizeof r->base_url, "%s%s", api->public_url, api->prefix);
    } else {
        const char *host = scim_request_header(r->req, "Host");
        /* Host is client-controlled: keep only characters that can appear in a host[:port]. */
        char clean[256];
        size_t n = 0;
        for (const char *p = host ? host : ""; *p && n + 1 < sizeof clean; p++) {
            char c = *p;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-' || c == ':' || c == '[' || c == ']')
                clean[n++] = c;
        }
        clean[n] = '\0';
        snprintf(r->root_url, sizeof r->root_url, "%s://%s", r->req->tls ? "https" : "http",
                 n ? clean : "localhost");
        snprintf(r->base_url, sizeof r->base_url, "%s%s", r->root_url, api->prefix);
    }
}

int api_authenticate(struct api_req *r, struct scim_err *err)
{
    const char *auth = scim_request_header(r->req, "Authorization");
    char cred[512];
    unsigned char hash[32];
    int64_t now = scim_now_us();

    if (!auth || scim_auth_extract(auth, cred, sizeof cred))
        return scim_err_set(err, 401, NULL,
                            "Authentication required: send \"Authorization: Bearer <token>\".");
    scim_token_hash(cred, strlen(cred), hash);
    scim_wipe(cred, sizeof cred);
    if (scim_store_token_find(r->api->st, hash, now, &r->token, err)) {
        if (err->status == 401)
            scim_err_set(err, 401, NULL, "The bearer token is not valid (unknown, revoked or expired).");
        return -1;
    }
    r->tenant_id = r->token.tenant_id;
    /* read on every request (no cache): disabling a tenant takes effect at once */
    if (scim_store_tenant_get(r->api->st, r->tenant_id, NULL, &r->tenant, err))
        return err->status == 404 ? scim_err_set(err, 401, NULL, "The bearer token is not valid.") : -1;
    r->have_tenant = true;
    if (now - r->token.last_used_us > TOKEN_TOUCH_INTERVAL_US) {
        struct scim_err ignored;
        scim_err_clear(&ignored);
        if (scim_store_token_touch(r->api->st, r->token.id, now, &ignored))
            scim_warn("token_touch_failed token=%s cause=\"%s\"", r->token.name, ignored.log);
    }
    return 0;
}

/* Applies the per-token then the per-tenant limit: 429 with an integer Retry-After. */
static int rate_limit(struct api_req *r, struct scim_err *err)
{
    struct scim_api *api = r->api;
    int64_t now;
    int wait = 0;
    char v[16];

    if (!api->rl_token && !api->rl_tenant)
        return 0;
    now = scim_ratelimit_now_us();
    if (api->rl_token)
        wait = scim_ratelimit_take(api->rl_token, r->token.id, now);
    if (!wait && api->rl_tenant)
        wait = scim_ratelimit_take(api->rl_tenant, r->tenant_id, now);
    if (!wait)
        return 0;
    snprintf(v, sizeof v, "%d", wait);
    scim_response_header(r->resp, "Retry-After", v);
    return scim_err_set(err, 429, NULL, "Too many requests; retry after %d second%s.", wait,
                        wait == 1 ? "" : "s");
}

bool api_has_scope(const struct scim_token *t, const char *scope)
{
    size_t n = strlen(scope);
    const char *p = t->scopes;
    while ((p = strstr(p, scope)) != NULL) {
        bool start = p == t->scopes || p[-1] == ' ';
        bool end = p[n] == '\0' || p[n] == ' ';
        if (start && end)
            return true;
        p += n;
    }
    return false;
}

static int authorize(struct api_req *r, bool write, struct scim_err *err)
{
    const char *need = write ? "scim:write" : "scim:read";
    /* a token of another tenant on /tenants/{name}/...: that tenant does not exist for it */
    if (r->path_tenant && strcmp(r->path_tenant, r->tenant.name) != 0)
        return scim_err_set(err, 404, NULL, "No such tenant.");
    if (r->tenant.disabled)
        return scim_err_set(err, 403, NULL, "tenant is disabled");
    if (!api_has_scope(&r->token, need))
        return scim_err_set(err, 403, NULL, "The token \"%s\" lacks the scope %s.", r->token.name,
                            need);
    if (!r->tenant.settings.scim_enabled)
        return scim_err_set(err, 403, NULL, "SCIM provisioning is disabled for this tenant");
    return 0;
}

void api_wopts(struct api_req *r, struct scim_store_wopts *w)
{
    memset(w, 0, sizeof *w);
    w->settings = r->have_tenant ? &r->tenant.settings : NULL;
    w->origin = "scim";
    w->managed_by = r->token.name[0] ? r->token.name : NULL;
}

static void discovery(struct api_req *r, int which, const char *arg)
{
    const struct scim_api *api = r->api;
    json_t *out = NULL;

    struct scim_err cerr;

    scim_err_clear(&cerr);
    if (api_compat_check(r, 0, &cerr)) {
        api_error(r, &cerr);
        return;
    }
    if (!method_is(r, "GET") && !method_is(r, "HEAD")) {
        api_method_not_allowed(r, "GET");
        return;
    }
    if (which == 0) {
        struct scim_spc_info info = {
            .base_url = r->base_url,
            .documentation_uri = "https://github.com/scimd/scimd/blob/main/README.md",
            .filter_max_results = api->cfg.max_results,
            .bulk_supported = api->cfg.bulk_max_operations > 0,
            .bulk_max_operations = (int64_t)api->cfg.bulk_max_operations,
            .bulk_max_payload = (int64_t)api->cfg.bulk_max_payload,
            .etag_supported = true,
            .sort_supported = true,
            .change_password_supported = true, /* PATCH/PUT of password is accepted (hashed) */
            .cursor_supported = true,
            .cursor_timeout = api->cfg.cursor_timeout,
            .default_page_size = api->cfg.default_count,
        };
        out = scim_discovery_spc(&info);
    } else if (which == 1) {
        if (!arg) {
            out = scim_discovery_resource_types(api->reg, r->base_url);
        } else {
            const struct scim_resource_type *rt = scim_registry_rt_find(api->reg, arg);
            if (!rt || !scim_streq_ci(rt->id, arg)) {
                not_found(r, "No such resource type.");
                return;
            }
            out = scim_discovery_resource_type(rt, r->base_url);
        }
    } else {
        if (!arg) {
            out = scim_discovery_schemas(api->reg, r->base_url);
        } else {
            const struct scim_schema *s = scim_registry_schema(api->reg, arg);
            if (!s) {
                not_found(r, "No such schema.");
                return;
            }
            out = scim_discovery_schema(s, r->base_url);
        }
    }
    if (!out) {
        struct scim_err e;
        scim_err_clear(&e);
        scim_err_nomem(&e);
        api_error(r, &e);
        return;
    }
    api_json_take(r, 200, out);
}

static void route(struct api_req *r, const char *rest)
{
    char *seg[3] = {NULL, NULL, NULL};
    int n = split_path(rest, seg);
    struct scim_err err;
    bool write = !(method_is(r, "GET") || method_is(r, "HEAD"));

    scim_err_clear(&err);
    r->plog_scim = true;
    if (n == -2) {
        scim_err_nomem(&err);
        api_error(r, &err);
        goto out;
    }
    if (n < 0) {
        not_found(r, "No such endpoint.");
        goto out;
    }
    /* Discovery endpoints need no token (RFC 7644 §4): they describe the server, not data. */
    if (n == 1 && endpoint_is(r, seg[0], "ServiceProviderConfig")) {
        discovery(r, 0, NULL);
        goto out;
    }
    if (n == 1 && endpoint_is(r, seg[0], "serviceConfiguration")) {
        r->compat |= SCIM_COMPAT_SERVICE_CONFIGURATION;
        discovery(r, 0, NULL);
        goto out;
    }
    if (n >= 1 && n <= 2 && endpoint_is(r, seg[0], "ResourceTypes")) {
        discovery(r, 1, n == 2 ? seg[1] : NULL);
        goto out;
    }
    if (n >= 1 && n <= 2 && endpoint_is(r, seg[0], "Schemas")) {
        discovery(r, 2, n == 2 ? seg[1] : NULL);
        goto out;
    }

    if (api_authenticate(r, &err) || rate_limit(r, &err) || authorize(r, write && !(n == 1 && endpoint_is(r, seg[0], ".search")) &&
                                                  !(n == 2 && endpoint_is(r, seg[1], ".search")),
                                          &err)) {
        api_error(r, &err);
        goto out;
    }
    if (api_query_parse(r, &err)) {
        api_error(r, &err);
        goto out;
    }
    if (n == 1 && endpoint_is(r, seg[0], ".search")) {
        if (!method_is(r, "POST"))
            api_method_not_allowed(r, "POST");
        else
            api_root_search(r);
        goto out;
    }
    if (n >= 1 && endpoint_is(r, seg[0], "Me")) {
        scim_err_set(&err, 501, NULL,
                     "/Me is not supported: scimd tokens belong to identity providers, not to people.");
        api_error(r, &err);
        goto out;
    }
    if (n >= 1 && endpoint_is(r, seg[0], "Bulk")) {
        api_bulk(r, n == 1);
        goto out;
    }
    if (n >= 1 && n <= 2 && (endpoint_is(r, seg[0], "Users") || endpoint_is(r, seg[0], "Groups"))) {
        enum scim_rtype kind = scim_streq_ci(seg[0], "Users") ? SCIM_RT_USER : SCIM_RT_GROUP;
        bool search = n == 2 && endpoint_is(r, seg[1], ".search");
        api_resource_dispatch(r, kind, n == 2 && !search ? seg[1] : NULL, search);
        goto out;
    }
    not_found(r, "No such endpoint.");
out:
    for (int i = 0; i < 3; i++)
        free(seg[i]);
}

void scim_api_handle(void *ctx, const struct scim_request *req, struct scim_response *resp)
{
    struct scim_api *api = ctx;
    struct api_req r;
    const char *path = req->raw_path ? req->raw_path : "";
    size_t plen = strlen(api->prefix);
    char compat[512];
    char *tenant_name = NULL;

    scim_json_oom_clear();
    memset(&r, 0, sizeof r);
    r.api = api;
    r.req = req;
    r.resp = resp;
    r.tenant_id = 0;
    r.start_us = scim_now_us();
    set_base_url(&r);

    if (req->body_too_large) {
        struct scim_err e;
        scim_err_clear(&e);
        scim_err_set(&e, 413, NULL, "The request body is larger than the limit of %zu bytes.",
                     api->cfg.max_body);
        api_error(&r, &e);
    } else if (scim_strncasecmp(path, api->prefix, plen) == 0 &&
               (path[plen] == '\0' || path[plen] == '/')) {
        route(&r, path + plen);
    } else if (strncmp(path, "/admin/v1", 9) == 0 && (path[9] == '\0' || path[9] == '/')) {
        api_admin_handle(&r, path + 9);
    } else if (strncmp(path, "/tenants/", 9) == 0 && strchr(path + 9, '/') &&
               scim_strncasecmp(strchr(path + 9, '/'), api->prefix, plen) == 0 &&
               (strchr(path + 9, '/')[plen] == '\0' || strchr(path + 9, '/')[plen] == '/')) {
        /* /tenants/{name}/scim/v2/...: the same API, its URLs under the base the client used */
        const char *slash = strchr(path + 9, '/');
        tenant_name = scim_url_decode(path + 9, (size_t)(slash - path - 9), false);
        if (!tenant_name) {
            struct scim_err e;
            scim_err_clear(&e);
            scim_err_nomem(&e);
            api_error(&r, &e);
        } else {
            r.path_tenant = tenant_name;
            if (snprintf(r.base_url, sizeof r.base_url, "%s/tenants/%.*s%s", r.root_url,
                         (int)(slash - path - 9), path + 9, api->prefix) < 0)
                r.base_url[0] = '\0';
            route(&r, slash + plen);
        }
    } else {
        not_found(&r, "No such endpoint. The SCIM API is served under its base path.");
    }
    if (path[0] && path[strlen(path) - 1] == '/' && strlen(path) > plen + 1)
        r.compat |= SCIM_COMPAT_ENDPOINT_CASE;

    resp->compat |= r.compat;
    scim_compat_names(resp->compat, compat, sizeof compat);
    /* Truncation of the log fields is acceptable; the return value is checked only for errors. */
    if (snprintf(resp->log_extra, sizeof resp->log_extra, "tenant=%lld token=%s%s%s%s%s",
             (long long)r.tenant_id, r.token.name[0] ? r.token.name : "-",
             r.scim_type ? " scim_type=" : "", r.scim_type ? r.scim_type : "",
             compat[0] ? " compat=" : "", compat) < 0)
        resp->log_extra[0] = '\0';
    if (r.admin_code) {
        size_t n = strlen(resp->log_extra);
        snprintf(resp->log_extra + n, sizeof resp->log_extra - n, " admin_error=%s", r.admin_code);
    }
    api_plog_finish(&r);
    api_query_release(&r.q);
    if (r.have_tenant)
        scim_tenant_release(&r.tenant);
    free(tenant_name);
}
