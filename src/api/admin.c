/* The admin API under /admin/v1 (docs/admin-api.md): tenants, tokens, settings, and the
 * application's view of users and groups. Plain JSON (application/json) with its own error
 * shape {"error": {"status", "code", "message"}}; authentication and tenant loading are shared
 * with the SCIM side (api.c). */
#include "api/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"

#define ADMIN_CONTENT_TYPE "application/json"
#define ADMIN_MAX_SEG 6
#define ADMIN_MAX_COUNT 1000
#define ADMIN_DEFAULT_COUNT 100
#define TOKEN_MAX_DAYS 3650

struct adm {
    struct api_req *r;
    bool operator_;          /* the token is an admin token of the "default" tenant */
    struct scim_tenant t;    /* the tenant the path names */
    bool have_t;
    char *seg[ADMIN_MAX_SEG];
    int n;
};

/* --- responses ----------------------------------------------------------------------------- */

static void reply(struct api_req *r, int status, json_t *body)
{
    struct scim_response *resp = r->resp;
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (body && !text) {
        status = 500;
        text = scim_strdup("{\"error\":{\"status\":500,\"code\":\"internal\",\"message\":\"out of memory\"}}");
    }
    free(resp->body);
    resp->status = status;
    resp->body = text;
    resp->body_len = text ? strlen(text) : 0;
    resp->content_type = text ? ADMIN_CONTENT_TYPE : NULL;
}

static const char *code_for(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 412: return "precondition_failed";
    case 413: return "too_large";
    default: return "internal";
    }
}

static void fail_code(struct api_req *r, int status, const char *code, const char *msg)
{
    json_t *b = json_pack("{s:{s:i, s:s, s:s}}", "error", "status", status, "code", code,
                          "message", msg);
    r->admin_code = code;
    if (status == 401)
        scim_response_header(r->resp, "WWW-Authenticate", "Bearer realm=\"scimd\"");
    reply(r, status, b);
}

static void failf(struct api_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void failf(struct api_req *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    fail_code(r, status, code_for(status), msg);
}

static void fail_err(struct api_req *r, const struct scim_err *e)
{
    int status = e->status >= 400 && e->status <= 599 ? e->status : 500;
    if (status >= 500 && e->log[0])
        scim_error("request_failed id=%s status=%d cause=\"%s\"", r->req->request_id, status, e->log);
    fail_code(r, status, code_for(status), e->detail[0] ? e->detail : scim_http_reason(status));
}

static void manual_refused(struct api_req *r, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "%s is managed by SCIM and allow_manual_updates is off for this tenant", what);
    fail_code(r, 409, "manual_updates_disabled", msg);
}

static bool is(const struct api_req *r, const char *m)
{
    return strcmp(r->req->method, m) == 0;
}

static void not_allowed(struct api_req *r, const char *allowed)
{
    scim_response_header(r->resp, "Allow", allowed);
    failf(r, 405, "method %s not allowed here; allowed: %s", r->req->method, allowed);
}

static json_t *time_json(int64_t us)
{
    char ts[SCIM_DATETIME_LEN];
    if (us <= 0)
        return json_null();
    scim_datetime_format(us, ts);
    return json_string(ts);
}

/* --- query string -------------------------------------------------------------------------- */

/* The decoded value of query parameter `name` (malloc'ed), or NULL when absent. */
static char *query_get(const struct api_req *r, const char *name)
{
    const char *p = r->req->raw_query ? r->req->raw_query : "";
    size_t nlen = strlen(name);
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nlen && p[nlen] == '=' && strncmp(p, name, nlen) == 0)
            return scim_url_decode(p + nlen + 1, len - nlen - 1, true);
        p += len;
        if (*p == '&')
            p++;
    }
    return NULL;
}

struct paging {
    int64_t start, count;
};

static int paging_parse(struct api_req *r, struct paging *pg)
{
    char *s = query_get(r, "startIndex"), *c = query_get(r, "count");
    int rc = 0;
    pg->start = 1;
    pg->count = ADMIN_DEFAULT_COUNT;
    if ((s && scim_parse_i64(s, &pg->start)) || (c && scim_parse_i64(c, &pg->count))) {
        failf(r, 400, "startIndex and count must be integers");
        rc = -1;
    }
    free(s);
    free(c);
    if (pg->start < 1)
        pg->start = 1;
    if (pg->count < 0)
        pg->count = 0;
    if (pg->count > ADMIN_MAX_COUNT)
        pg->count = ADMIN_MAX_COUNT;
    return rc;
}

static json_t *list_json(json_t *items, int64_t total, int64_t start)
{
    json_t *o = json_pack("{s:O, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total,
                          "startIndex", (json_int_t)start, "count",
                          (json_int_t)json_array_size(items));
    json_decref(items);
    return o;
}

/* A page of an in-memory array (tenants, tokens). Takes `all`. */
static json_t *page_of(json_t *all, const struct paging *pg)
{
    json_t *items = json_array();
    size_t n = json_array_size(all);
    for (int64_t i = pg->start - 1; items && i < (int64_t)n && (int64_t)json_array_size(items) < pg->count; i++)
        json_array_append(items, json_array_get(all, (size_t)i));
    json_t *o = items ? list_json(items, (int64_t)n, pg->start) : NULL;
    json_decref(all);
    return o;
}

/* --- body ---------------------------------------------------------------------------------- */

static int body_object(struct adm *a, json_t **out)
{
    struct scim_err err;
    scim_err_clear(&err);
    if (api_parse_body(a->r, out, &err)) {
        fail_err(a->r, &err);
        return -1;
    }
    return 0;
}

/* --- tenants ------------------------------------------------------------------------------- */

static json_t *tenant_json(struct api_req *r, const struct scim_tenant *t, struct scim_err *err)
{
    int64_t users = 0, groups = 0, tokens = 0;
    if (scim_store_tenant_stats(r->api->st, t->id, &users, &groups, err) ||
        scim_store_token_count(r->api->st, t->id, &tokens, err))
        return NULL;
    json_t *o = json_pack("{s:s, s:o, s:b, s:o, s:{s:I, s:I, s:I}}", "name", t->name, "created",
                          time_json(t->created_us), "disabled", t->disabled, "settings",
                          scim_tenant_settings_json(&t->settings), "stats", "users",
                          (json_int_t)users, "groups", (json_int_t)groups, "tokens",
                          (json_int_t)tokens);
    if (!o)
        scim_err_nomem(err);
    return o;
}

static void reply_tenant(struct adm *a, int status, int64_t id)
{
    struct scim_err err;
    struct scim_tenant t;
    json_t *o = NULL;
    scim_err_clear(&err);
    if (scim_store_tenant_get(a->r->api->st, id, NULL, &t, &err) == 0) {
        o = tenant_json(a->r, &t, &err);
        scim_tenant_release(&t);
    }
    if (!o)
        fail_err(a->r, &err);
    else
        reply(a->r, status, o);
}

static void tenants_collection(struct adm *a)
{
    struct api_req *r = a->r;
    struct scim_err err;
    scim_err_clear(&err);
    if (!a->operator_ && is(r, "GET")) {
        /* A tenant's own admin token sees exactly its own tenant, so that a client (scimctl)
         * can find out which tenant its token belongs to without being told. */
        struct paging pg;
        json_t *all = json_array(), *o;
        if (paging_parse(r, &pg)) {
            json_decref(all);
            return;
        }
        o = all ? tenant_json(r, &r->tenant, &err) : NULL;
        if (!o || json_array_append_new(all, o)) {
            json_decref(all);
            if (!err.status)
                scim_err_nomem(&err);
            fail_err(r, &err);
            return;
        }
        reply(r, 200, page_of(all, &pg));
        return;
    }
    if (!a->operator_) {
        failf(r, 403, "only the operator tenant's admin tokens manage tenants");
        return;
    }
    if (is(r, "GET")) {
        struct paging pg;
        json_t *ids = NULL, *all = NULL, *v;
        size_t i;
        if (paging_parse(r, &pg))
            return;
        if (scim_store_tenant_list(r->api->st, &ids, &err) || !(all = json_array())) {
            json_decref(ids);
            fail_err(r, &err);
            return;
        }
        json_array_foreach(ids, i, v) {
            struct scim_tenant t;
            json_t *o;
            if (scim_store_tenant_get(r->api->st, json_integer_value(json_object_get(v, "id")), NULL,
                                      &t, &err))
                goto fail;
            o = tenant_json(r, &t, &err);
            scim_tenant_release(&t);
            if (!o || json_array_append_new(all, o))
                goto fail;
        }
        json_decref(ids);
        reply(r, 200, page_of(all, &pg));
        return;
    fail:
        json_decref(ids);
        json_decref(all);
        fail_err(r, &err);
    } else if (is(r, "POST")) {
        json_t *body = NULL;
        struct scim_tenant t;
        if (body_object(a, &body))
            return;
        const char *name = json_string_value(json_object_get(body, "name"));
        if (!name) {
            json_decref(body);
            failf(r, 400, "\"name\" (string) is required");
            return;
        }
        if (scim_store_tenant_create(r->api->st, name, &t, &err)) {
            json_decref(body);
            fail_err(r, &err);
            return;
        }
        json_decref(body);
        reply_tenant(a, 201, t.id);
        scim_tenant_release(&t);
    } else {
        not_allowed(r, "GET, POST");
    }
}

static void tenant_one(struct adm *a)
{
    struct api_req *r = a->r;
    struct scim_err err;
    scim_err_clear(&err);
    if (is(r, "GET")) {
        reply_tenant(a, 200, a->t.id);
        return;
    }
    if (!is(r, "PATCH") && !is(r, "DELETE")) {
        not_allowed(r, "GET, PATCH, DELETE");
        return;
    }
    if (!a->operator_) {
        failf(r, 403, "only the operator tenant's admin tokens change or delete tenants");
        return;
    }
    if (is(r, "DELETE")) {
        if (strcmp(a->t.name, "default") == 0)
            failf(r, 409, "the default tenant cannot be deleted");
        else if (scim_store_tenant_delete(r->api->st, a->t.id, &err))
            fail_err(r, &err);
        else
            reply(r, 204, NULL);
        return;
    }
    json_t *body = NULL, *v;
    if (body_object(a, &body))
        return;
    const char *key;
    int disabled = -1;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "disabled") == 0 && json_is_boolean(v)) {
            disabled = json_is_true(v);
        } else if (strcmp(key, "settings") == 0 && json_is_object(v)) {
            if (scim_tenant_settings_apply(&a->t.settings, v, &err)) {
                json_decref(body);
                fail_err(r, &err);
                return;
            }
        } else if (strcmp(key, "name") != 0 && strcmp(key, "created") != 0 &&
                   strcmp(key, "stats") != 0) {
            json_decref(body);
            failf(r, 400, "cannot change \"%s\" (changeable: disabled, settings)", key);
            return;
        }
    }
    json_decref(body);
    if (disabled == 1 && strcmp(a->t.name, "default") == 0) {
        failf(r, 409, "the default tenant cannot be disabled");
        return;
    }
    if (scim_store_tenant_update(r->api->st, a->t.id, disabled, &a->t.settings, &err)) {
        fail_err(r, &err);
        return;
    }
    reply_tenant(a, 200, a->t.id);
}

/* --- tokens -------------------------------------------------------------------------------- */

static json_t *scopes_array(const char *scopes)
{
    json_t *arr = json_array();
    const char *p = scopes;
    while (arr && *p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n && json_array_append_new(arr, json_stringn(p, n))) {
            json_decref(arr);
            return NULL;
        }
        p += n;
    }
    return arr;
}

/* The store's token entry in the contract's shape (scopes array, lastUsed/expires null). */
static int token_entry_fix(json_t *t)
{
    json_t *arr = scopes_array(json_string_value(json_object_get(t, "scopes")));
    if (!arr || json_object_set_new(t, "scopes", arr))
        return -1;
    if (!json_object_get(t, "lastUsed") && json_object_set_new(t, "lastUsed", json_null()))
        return -1;
    if (!json_object_get(t, "expires") && json_object_set_new(t, "expires", json_null()))
        return -1;
    return 0;
}

static int parse_scopes(json_t *v, char out[256], struct api_req *r)
{
    static const char *const known[] = {"scim:read", "scim:write", "admin"};
    size_t i, used = 0;
    json_t *s;
    out[0] = '\0';
    if (!v) {
        snprintf(out, 256, "scim:read scim:write");
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        goto bad;
    json_array_foreach(v, i, s) {
        const char *name = json_string_value(s);
        bool ok = false;
        for (size_t k = 0; name && k < sizeof known / sizeof known[0]; k++)
            ok = ok || strcmp(name, known[k]) == 0;
        if (!ok)
            goto bad;
        if (strstr(out, name))
            continue;
        int n = snprintf(out + used, 256 - used, "%s%s", used ? " " : "", name);
        if (n < 0 || (size_t)n >= 256 - used)
            goto bad;
        used += (size_t)n;
    }
    return 0;
bad:
    failf(r, 400, "\"scopes\" must be a non-empty array of: scim:read, scim:write, admin");
    return -1;
}

static void tokens(struct adm *a)
{
    struct api_req *r = a->r;
    struct scim_err err;
    scim_err_clear(&err);
    if (a->n == 4) {
        if (!is(r, "DELETE"))
            not_allowed(r, "DELETE");
        else if (scim_store_token_revoke(r->api->st, a->t.id, a->seg[3], &err))
            fail_err(r, &err);
        else
            reply(r, 204, NULL);
        return;
    }
    if (is(r, "GET")) {
        struct paging pg;
        json_t *all = NULL, *t;
        size_t i;
        if (paging_parse(r, &pg))
            return;
        if (scim_store_token_list(r->api->st, a->t.id, &all, &err)) {
            fail_err(r, &err);
            return;
        }
        json_array_foreach(all, i, t) {
            if (token_entry_fix(t)) {
                json_decref(all);
                scim_err_nomem(&err);
                fail_err(r, &err);
                return;
            }
        }
        reply(r, 200, page_of(all, &pg));
        return;
    }
    if (!is(r, "POST")) {
        not_allowed(r, "GET, POST");
        return;
    }
    json_t *body = NULL, *days, *exp;
    char scopes[256], tok[SCIM_TOKEN_MAX];
    unsigned char hash[32];
    int64_t expires_us = 0, now = scim_now_ms_us();
    if (body_object(a, &body))
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    days = json_object_get(body, "expiresInDays");
    exp = json_object_get(body, "expires");
    if (!name || !*name || strlen(name) > 127 || strpbrk(name, " \t\r\n/")) {
        failf(r, 400, "\"name\" must be 1-127 characters without blanks or '/'");
        goto out;
    }
    if (parse_scopes(json_object_get(body, "scopes"), scopes, r))
        goto out;
    if (days && !json_is_null(days)) {
        if (!json_is_integer(days) || json_integer_value(days) < 1 ||
            json_integer_value(days) > TOKEN_MAX_DAYS) {
            failf(r, 400, "\"expiresInDays\" must be an integer from 1 to %d", TOKEN_MAX_DAYS);
            goto out;
        }
        expires_us = now + (int64_t)json_integer_value(days) * 86400 * INT64_C(1000000);
    } else if (exp && !json_is_null(exp)) {
        if (!json_is_string(exp) || scim_datetime_parse(json_string_value(exp), &expires_us) ||
            expires_us <= 0) {
            failf(r, 400, "\"expires\" must be an RFC 3339 time");
            goto out;
        }
    }
    if (scim_token_generate(tok, hash)) {
        failf(r, 500, "no randomness available");
        goto out;
    }
    if (scim_store_token_create(r->api->st, a->t.id, name, hash, scopes, expires_us, &err)) {
        scim_wipe(tok, sizeof tok);
        fail_err(r, &err);
        goto out;
    }
    json_t *o = json_pack("{s:s, s:o, s:o, s:n, s:o, s:s}", "name", name, "scopes",
                          scopes_array(scopes), "created", time_json(now), "lastUsed", "expires",
                          time_json(expires_us), "token", tok);
    scim_wipe(tok, sizeof tok);
    reply(r, 201, o);
out:
    json_decref(body);
}

/* --- settings ------------------------------------------------------------------------------ */

static void settings(struct adm *a)
{
    struct api_req *r = a->r;
    struct scim_err err;
    json_t *body = NULL;
    scim_err_clear(&err);
    if (is(r, "PATCH")) {
        if (body_object(a, &body))
            return;
        int rc = scim_tenant_settings_apply(&a->t.settings, body, &err);
        json_decref(body);
        if (rc || scim_store_tenant_update(r->api->st, a->t.id, -1, &a->t.settings, &err)) {
            fail_err(r, &err);
            return;
        }
    } else if (!is(r, "GET")) {
        not_allowed(r, "GET, PATCH");
        return;
    }
    reply(r, 200, scim_tenant_settings_json(&a->t.settings));
}

/* --- users and groups ---------------------------------------------------------------------- */

static void scim_base(const struct adm *a, char *out, size_t n)
{
    if (snprintf(out, n, "%s/tenants/%s%s", a->r->root_url, a->t.name, a->r->api->prefix) < 0)
        out[0] = '\0';
}

static const char *state_of(json_t *res)
{
    json_t *st = json_object_get(res, "_state");
    if (json_is_true(json_object_get(st, "deprovisioned")))
        return "deprovisioned";
    return json_is_false(json_object_get(res, "active")) ? "inactive" : "active";
}

/* The application's view of an admin-flagged store resource. New reference or NULL. */
static json_t *view_of(const struct adm *a, enum scim_rtype kind, json_t *res)
{
    const struct scim_resource_type *rt = scim_registry_rt(a->r->api->reg, kind);
    json_t *st = json_object_get(res, "_state");
    json_t *meta = json_object_get(res, "meta");
    json_t *full = json_deep_copy(res), *v = NULL, *list = NULL, *x;
    char base[1200];
    size_t i;
    if (!full)
        return NULL;
    json_object_del(full, "_state");
    /* the SCIM resource carries no origins */
    json_array_foreach(json_object_get(full, kind == SCIM_RT_USER ? "groups" : "members"), i, x)
        json_object_del(x, "origin");
    scim_base(a, base, sizeof base);
    if (scim_resource_finish(rt, full, base))
        goto fail;
    v = json_pack("{s:O, s:O?, s:O?, s:s, s:O, s:O, s:s, s:O?, s:O?}", "id",
                  json_object_get(res, "id"), "displayName", json_object_get(res, "displayName"),
                  "active", json_object_get(res, "active"), "state", state_of(res), "origin",
                  json_object_get(st, "origin"), "managedBy", json_object_get(st, "managedBy"),
                  "resourceType", kind == SCIM_RT_USER ? "User" : "Group", "created",
                  json_object_get(meta, "created"), "lastModified",
                  json_object_get(meta, "lastModified"));
    if (!v || json_object_set(v, "deprovisioned", json_object_get(st, "deprovisioned")))
        goto fail;
    if (kind == SCIM_RT_USER) {
        json_t *em = json_object_get(res, "emails");
        if (json_object_set(v, "userName", json_object_get(res, "userName")) ||
            json_object_set_new(v, "emails", em ? json_incref(em) : json_array()))
            goto fail;
        if (!(list = json_array()))
            goto fail;
        json_array_foreach(json_object_get(res, "groups"), i, x) {
            json_t *g = json_pack("{s:O, s:O?, s:O}", "id", json_object_get(x, "value"),
                                  "displayName", json_object_get(x, "display"), "origin",
                                  json_object_get(x, "origin"));
            if (!g || json_array_append_new(list, g))
                goto fail;
        }
        if (json_object_set_new(v, "groups", list)) {
            list = NULL;
            goto fail;
        }
        list = NULL;
    } else {
        json_t *m = json_object_get(res, "members");
        if (json_object_set_new(v, "members", m ? json_incref(m) : json_array()))
            goto fail;
    }
    if (json_object_set_new(v, "resource", full)) {
        full = NULL;
        goto fail;
    }
    return v;
fail:
    json_decref(full);
    json_decref(v);
    json_decref(list);
    return NULL;
}

static unsigned view_flags(enum scim_rtype kind)
{
    return SCIM_STORE_ADMIN | (kind == SCIM_RT_USER ? SCIM_STORE_GROUPS : SCIM_STORE_MEMBERS);
}

static void reply_view(struct adm *a, enum scim_rtype kind, int status, json_t *res)
{
    json_t *v = view_of(a, kind, res);
    if (!v)
        failf(a->r, 500, "out of memory");
    else
        reply(a->r, status, v);
}

static int state_parse(struct api_req *r, int *state)
{
    char *s = query_get(r, "state");
    static const char *const names[] = {"all", "active", "inactive", "deprovisioned"};
    *state = SCIM_STORE_STATE_ALL;
    if (!s)
        return 0;
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *state = i;
            free(s);
            return 0;
        }
    }
    free(s);
    failf(r, 400, "state must be one of: all, active, inactive, deprovisioned");
    return -1;
}

/* Lists resources in the admin view; `filter_text` NULL = all. On success *out is the page. */
static int list_views(struct adm *a, enum scim_rtype kind, const char *filter_text, int state,
                      const struct paging *pg, json_t **out, struct scim_err *err)
{
    struct api_req *r = a->r;
    struct scim_filter_limits lim = {r->api->cfg.max_filter_length, r->api->cfg.max_filter_depth};
    struct scim_filter *f = NULL;
    struct scim_store_page page;
    json_t *items = NULL, *x;
    size_t i;
    int rc = -1;
    memset(&page, 0, sizeof page);
    if (filter_text && *filter_text && scim_filter_parse(filter_text, &lim, r->api->reg, &f, err))
        return -1;
    struct scim_store_query q = {.filter = f, .start_index = pg->start, .count = pg->count,
                                 .flags = view_flags(kind), .state = state};
    if (scim_store_list(r->api->st, a->t.id, kind, &q, &page, err))
        goto out;
    if (!(items = json_array()))
        goto nomem;
    json_array_foreach(page.resources, i, x) {
        json_t *v = view_of(a, kind, x);
        if (!v || json_array_append_new(items, v))
            goto nomem;
    }
    *out = list_json(items, page.total, pg->start);
    items = NULL;
    rc = *out ? 0 : scim_err_nomem(err);
    goto out;
nomem:
    scim_err_nomem(err);
out:
    json_decref(items);
    json_decref(page.resources);
    scim_filter_free(f);
    return rc;
}

static bool scim_managed(json_t *res)
{
    const char *o = json_string_value(json_object_get(json_object_get(res, "_state"), "origin"));
    return o && strcmp(o, "scim") == 0;
}

/* The doc part of an admin-view resource. */
static json_t *doc_part(json_t *res)
{
    json_t *d = json_deep_copy(res);
    if (d) {
        json_object_del(d, "_state");
        json_object_del(d, "members");
        json_object_del(d, "groups");
    }
    return d;
}

struct admin_patch_ctx {
    struct adm *a;
    const struct scim_resource_type *rt;
    json_t *body;
    json_t *members_add;    /* members endpoint: borrowed */
    json_t *members_remove; /* members endpoint: borrowed */
    bool refused;           /* SCIM-managed and manual updates off */
};

static int admin_patch_cb(void *vctx, json_t *current, struct scim_store_change *chg,
                          struct scim_err *err)
{
    struct admin_patch_ctx *c = vctx;
    struct api_req *r = c->a->r;
    if (scim_managed(current) && !c->a->t.settings.allow_manual_updates) {
        c->refused = true;
        return scim_err_set(err, 409, NULL, "manual updates are disabled");
    }
    if (c->members_add || c->members_remove) {
        chg->modified = true;
        chg->members_add = c->members_add;
        chg->members_remove = c->members_remove;
        return 0;
    }
    struct scim_input in = {0};
    json_t *merged = doc_part(current);
    int rc = -1;
    uint32_t compat = 0;
    if (!merged || json_object_update(merged, c->body))
        return scim_err_nomem(err);
    if (scim_resource_normalize(r->api->reg, c->rt, merged, SCIM_NORM_REPLACE, &in, &compat, err))
        goto out;
    chg->modified = true;
    chg->doc = json_incref(in.doc);
    if (in.password) {
        scim_wipe(in.password, strlen(in.password));
        scim_err_set(err, 400, NULL, "passwords cannot be set through the admin API");
        goto out;
    }
    rc = 0;
out:
    scim_input_release(&in);
    json_decref(merged);
    return rc;
}

static void resource_create(struct adm *a, enum scim_rtype kind)
{
    struct api_req *r = a->r;
    const struct scim_resource_type *rt = scim_registry_rt(r->api->reg, kind);
    struct scim_err err;
    struct scim_input in = {0};
    json_t *body = NULL, *res = NULL;
    uint32_t compat = 0;
    scim_err_clear(&err);
    if (!a->t.settings.allow_manual_updates) {
        fail_code(r, 409, "manual_updates_disabled",
                  "creating users and groups needs allow_manual_updates on for this tenant");
        return;
    }
    if (body_object(a, &body))
        return;
    if (scim_resource_normalize(r->api->reg, rt, body, SCIM_NORM_CREATE, &in, &compat, &err))
        goto fail;
    if (in.password) {
        scim_wipe(in.password, strlen(in.password));
        scim_err_set(&err, 400, NULL, "passwords cannot be set through the admin API");
        goto fail;
    }
    struct scim_store_wopts w = {.settings = &a->t.settings, .origin = "local"};
    if (scim_store_create_ex(r->api->st, a->t.id, kind, in.doc, in.members, NULL, &w,
                             view_flags(kind), &res, NULL, &err))
        goto fail;
    reply_view(a, kind, 201, res);
    goto out;
fail:
    fail_err(r, &err);
out:
    scim_input_release(&in);
    json_decref(body);
    json_decref(res);
}

static void resource_update(struct adm *a, enum scim_rtype kind, const char *id, json_t *body,
                            json_t *add, json_t *remove)
{
    struct api_req *r = a->r;
    struct scim_err err;
    json_t *res = NULL;
    struct admin_patch_ctx ctx = {a, scim_registry_rt(r->api->reg, kind), body, add, remove, false};
    struct scim_store_wopts w = {.settings = &a->t.settings, .origin = "local"};
    scim_err_clear(&err);
    if (scim_store_update_ex(r->api->st, a->t.id, kind, id, view_flags(kind), admin_patch_cb, &ctx,
                             &w, add || remove ? NULL : &res, &err)) {
        if (ctx.refused)
            manual_refused(r, kind == SCIM_RT_USER ? "this user" : "this group");
        else
            fail_err(r, &err);
        return;
    }
    if (add || remove)
        reply(r, 204, NULL);
    else
        reply_view(a, kind, 200, res);
    json_decref(res);
}

static void resource_delete(struct adm *a, enum scim_rtype kind, const char *id)
{
    struct api_req *r = a->r;
    struct scim_err err;
    json_t *res = NULL;
    scim_err_clear(&err);
    if (scim_store_get(r->api->st, a->t.id, kind, id, SCIM_STORE_ADMIN, &res, &err)) {
        fail_err(r, &err);
        return;
    }
    bool refused = scim_managed(res) && !a->t.settings.allow_manual_updates;
    json_decref(res);
    if (refused) {
        manual_refused(r, kind == SCIM_RT_USER ? "this user" : "this group");
        return;
    }
    if (scim_store_delete_ex(r->api->st, a->t.id, kind, id, -1, SCIM_STORE_ADMIN, NULL, &err))
        fail_err(r, &err);
    else
        reply(r, 204, NULL);
}

static void sign_in_reply(struct adm *a, json_t *res)
{
    const char *reason = "not_found";
    json_t *user = NULL;
    if (res) {
        user = view_of(a, SCIM_RT_USER, res);
        if (!user) {
            failf(a->r, 500, "out of memory");
            return;
        }
        json_object_del(user, "resource");
        reason = state_of(res);
    }
    if (a->t.disabled)
        reason = "tenant_disabled";
    json_t *o = json_pack("{s:b, s:s, s:o}", "allowed", strcmp(reason, "active") == 0, "reason",
                          reason, "user", user ? user : json_null());
    reply(a->r, 200, o);
}

static void sign_in(struct adm *a, const char *id)
{
    struct api_req *r = a->r;
    struct scim_err err;
    json_t *res = NULL;
    scim_err_clear(&err);
    if (!is(r, "GET")) {
        not_allowed(r, "GET");
        return;
    }
    if (id) {
        if (scim_store_get(r->api->st, a->t.id, SCIM_RT_USER, id, view_flags(SCIM_RT_USER), &res,
                           &err) && err.status != 404) {
            fail_err(r, &err);
            return;
        }
    } else {
        char *un = query_get(r, "userName");
        struct scim_buf f;
        json_t *page = NULL;
        struct paging pg = {1, 1};
        if (!un || !*un) {
            free(un);
            failf(r, 400, "the query parameter userName is required");
            return;
        }
        /* a filter literal: escape the JSON string characters */
        scim_buf_init(&f, 0);
        int bad = scim_buf_adds(&f, "userName eq \"");
        for (const char *p = un; *p && !bad; p++)
            bad = (*p == '"' || *p == '\\') ? scim_buf_addc(&f, '\\') || scim_buf_addc(&f, *p)
                                            : scim_buf_addc(&f, *p);
        bad = bad || scim_buf_addc(&f, '"');
        free(un);
        if (bad || list_views(a, SCIM_RT_USER, scim_buf_str(&f), SCIM_STORE_STATE_ALL, &pg, &page,
                              &err)) {
            scim_buf_release(&f);
            if (bad)
                scim_err_nomem(&err);
            fail_err(r, &err);
            return;
        }
        scim_buf_release(&f);
        json_t *first = json_array_get(json_object_get(page, "items"), 0);
        if (first) {
            /* view_of already shaped it: answer from it directly */
            json_t *user = json_deep_copy(first);
            json_decref(page);
            if (!user) {
                failf(r, 500, "out of memory");
                return;
            }
            const char *state = json_string_value(json_object_get(user, "state"));
            const char *reason = a->t.disabled ? "tenant_disabled" : state ? state : "active";
            json_object_del(user, "resource");
            reply(r, 200, json_pack("{s:b, s:s, s:o}", "allowed", strcmp(reason, "active") == 0,
                                    "reason", reason, "user", user));
            return;
        }
        json_decref(page);
    }
    sign_in_reply(a, res);
    json_decref(res);
}

static void members(struct adm *a, const char *gid)
{
    struct api_req *r = a->r;
    if (a->n == 6) { /* .../groups/{id}/members/{memberId} */
        if (!is(r, "DELETE")) {
            not_allowed(r, "DELETE");
            return;
        }
        json_t *rm = json_pack("[s]", a->seg[5]);
        resource_update(a, SCIM_RT_GROUP, gid, NULL, NULL, rm);
        json_decref(rm);
        return;
    }
    if (!is(r, "POST")) {
        not_allowed(r, "POST");
        return;
    }
    json_t *body = NULL;
    if (body_object(a, &body))
        return;
    const char *v = json_string_value(json_object_get(body, "value"));
    if (!v) {
        json_decref(body);
        failf(r, 400, "\"value\" (the id of a user or group) is required");
        return;
    }
    /* the member must exist (the store skips unknown ids silently) */
    struct scim_err err;
    json_t *x = NULL;
    scim_err_clear(&err);
    if (scim_store_get(r->api->st, a->t.id, SCIM_RT_USER, v, 0, &x, &err) &&
        scim_store_get(r->api->st, a->t.id, SCIM_RT_GROUP, v, 0, &x, &err)) {
        failf(r, 404, "no user or group with id %s", v);
        json_decref(body);
        return;
    }
    json_decref(x);
    json_t *add = json_pack("[{s:s}]", "value", v);
    json_decref(body);
    resource_update(a, SCIM_RT_GROUP, gid, NULL, add, NULL);
    json_decref(add);
}

static void resources(struct adm *a, enum scim_rtype kind)
{
    struct api_req *r = a->r;
    struct scim_err err;
    scim_err_clear(&err);
    if (a->n == 3) {
        if (is(r, "GET")) {
            struct paging pg;
            int state;
            json_t *out = NULL;
            char *filter;
            if (paging_parse(r, &pg) || state_parse(r, &state))
                return;
            filter = query_get(r, "filter");
            if (list_views(a, kind, filter, state, &pg, &out, &err))
                fail_err(r, &err);
            else
                reply(r, 200, out);
            free(filter);
        } else if (is(r, "POST")) {
            resource_create(a, kind);
        } else {
            not_allowed(r, "GET, POST");
        }
        return;
    }
    const char *id = a->seg[3];
    if (a->n >= 5) {
        if (kind == SCIM_RT_USER && a->n == 5 && strcmp(a->seg[4], "sign-in") == 0)
            sign_in(a, id);
        else if (kind == SCIM_RT_GROUP && strcmp(a->seg[4], "members") == 0)
            members(a, id);
        else
            failf(r, 404, "no such endpoint");
        return;
    }
    if (is(r, "GET")) {
        json_t *res = NULL;
        if (scim_store_get(r->api->st, a->t.id, kind, id, view_flags(kind), &res, &err))
            fail_err(r, &err);
        else
            reply_view(a, kind, 200, res);
        json_decref(res);
    } else if (is(r, "PATCH")) {
        json_t *body = NULL;
        if (body_object(a, &body))
            return;
        if (json_object_get(body, "members") || json_object_get(body, "groups")) {
            failf(r, 400, "change memberships with /groups/{id}/members");
        } else {
            json_object_del(body, "id");
            json_object_del(body, "meta");
            json_object_del(body, "schemas");
            resource_update(a, kind, id, body, NULL, NULL);
        }
        json_decref(body);
    } else if (is(r, "DELETE")) {
        resource_delete(a, kind, id);
    } else {
        not_allowed(r, "GET, PATCH, DELETE");
    }
}

/* --- provisioning log (plog_admin.c) -------------------------------------------------------- */

static void provisioning_log(struct adm *a)
{
    struct scim_err err;
    json_t *list = NULL;
    scim_err_clear(&err);
    if (!is(a->r, "GET")) {
        not_allowed(a->r, "GET");
        return;
    }
    if (api_plog_admin_list(a->r, a->t.id, &list, &err))
        fail_err(a->r, &err);
    else
        reply(a->r, 200, list);
}

/* --- for the other admin handlers (feed.c) ---------------------------------------------------- */

void api_admin_reply(struct api_req *r, int status, json_t *body)
{
    reply(r, status, body);
}

void api_admin_fail(struct api_req *r, int status, const char *msg)
{
    fail_code(r, status, code_for(status), msg);
}

void api_admin_fail_err(struct api_req *r, const struct scim_err *e)
{
    fail_err(r, e);
}

char *api_admin_query(const struct api_req *r, const char *name)
{
    return query_get(r, name);
}

void api_admin_not_allowed(struct api_req *r, const char *allowed)
{
    not_allowed(r, allowed);
}

/* --- routing ------------------------------------------------------------------------------- */

static int split(const char *rest, struct adm *a)
{
    const char *p = rest;
    while (*p == '/')
        p++;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (a->n == ADMIN_MAX_SEG)
            return -1;
        if (!(a->seg[a->n] = scim_url_decode(p, len, false)))
            return -1;
        a->n++;
        p += len;
        while (*p == '/')
            p++;
    }
    return 0;
}

/* Resolves the tenant named in the path; another tenant than the token's own is 404 unless the
 * token is the operator's (never reveal that it exists). */
static int resolve_tenant(struct adm *a)
{
    struct api_req *r = a->r;
    struct scim_err err;
    scim_err_clear(&err);
    if (!a->operator_ && strcmp(a->seg[1], r->tenant.name) != 0) {
        failf(r, 404, "no such tenant");
        return -1;
    }
    if (scim_store_tenant_get(r->api->st, 0, a->seg[1], &a->t, &err)) {
        if (err.status == 404)
            failf(r, 404, "no such tenant");
        else
            fail_err(r, &err);
        return -1;
    }
    a->have_t = true;
    return 0;
}

void api_admin_handle(struct api_req *r, const char *rest)
{
    struct adm a;
    struct scim_err err;
    memset(&a, 0, sizeof a);
    a.r = r;
    scim_err_clear(&err);
    if (api_authenticate(r, &err)) {
        fail_err(r, &err);
        return;
    }
    if (!api_has_scope(&r->token, "admin")) {
        failf(r, 403, "the token \"%s\" lacks the scope admin", r->token.name);
        return;
    }
    a.operator_ = strcmp(r->tenant.name, "default") == 0;
    if (r->tenant.disabled && !a.operator_) {
        failf(r, 403, "tenant is disabled");
        return;
    }
    if (split(rest, &a) || a.n == 0 || strcmp(a.seg[0], "tenants") != 0) {
        failf(r, 404, "no such endpoint");
        goto out;
    }
    if (a.n == 1) {
        tenants_collection(&a);
        goto out;
    }
    if (resolve_tenant(&a))
        goto out;
    if (a.n == 2)
        tenant_one(&a);
    else if (strcmp(a.seg[2], "tokens") == 0 && a.n <= 4)
        tokens(&a);
    else if (strcmp(a.seg[2], "settings") == 0 && a.n == 3)
        settings(&a);
    else if (strcmp(a.seg[2], "users") == 0 && a.n <= 5)
        resources(&a, SCIM_RT_USER);
    else if (strcmp(a.seg[2], "groups") == 0 && a.n <= 6)
        resources(&a, SCIM_RT_GROUP);
    else if (strcmp(a.seg[2], "sign-in") == 0 && a.n == 3)
        sign_in(&a, NULL);
    else if (strcmp(a.seg[2], "log") == 0 && a.n == 3)
        provisioning_log(&a);
    else if (strcmp(a.seg[2], "events") == 0 && a.n == 3)
        api_admin_events(r, a.t.id);
    else if (strcmp(a.seg[2], "webhooks") == 0 && a.n <= 5)
        api_admin_webhooks(r, a.t.id, a.seg + 3, a.n - 3);
    else
        failf(r, 404, "no such endpoint");
out:
    if (a.have_t)
        scim_tenant_release(&a.t);
    for (int i = 0; i < a.n; i++)
        free(a.seg[i]);
}
