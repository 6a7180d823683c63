/* The admin API of the change feed (docs/operations.md, "Change feed and webhooks"):
 * GET /admin/v1/tenants/{t}/events (pull, with long-poll) and /webhooks (push subscriptions). */
#include "api/internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define EVENTS_DEFAULT_COUNT 100
#define EVENTS_MAX_WAIT_S 60
/* A long-poll holds a worker thread while it waits; at most this many wait at once so that
 * the SCIM clients always keep threads (the others answer at once, like wait=0). */
#define EVENTS_MAX_WAITERS 4

static atomic_int waiters;

static int int_param(struct api_req *r, const char *name, int64_t def, int64_t *out)
{
    char *v = api_admin_query(r, name);
    int rc = 0;
    *out = def;
    if (v && scim_parse_i64(v, out) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s must be an integer", name);
        api_admin_fail(r, 400, msg);
        rc = -1;
    }
    free(v);
    return rc;
}

/* 410: the reader's position was pruned (retention). The body is a SCIM Error (schemas,
 * status, detail) with the admin API's "error" object beside it, plus the positions a client
 * needs to resynchronise: the oldest available seq and the latest one. */
static void pruned(struct api_req *r, const struct scim_err *err, int64_t oldest, int64_t last)
{
    r->admin_code = "gone";
    api_admin_reply(r, 410,
                    json_pack("{s:[s], s:s, s:s, s:{s:i, s:s, s:s}, s:I, s:I}", "schemas",
                              "urn:ietf:params:scim:api:messages:2.0:Error", "status", "410",
                              "detail", err->detail, "error", "status", 410, "code", "gone",
                              "message", err->detail, "oldestSeq", (json_int_t)oldest,
                              "latestSeq", (json_int_t)last));
}

void api_admin_events(struct api_req *r, int64_t tenant_id)
{
    struct scim_err err;
    int64_t after, count, wait, last = 0;
    json_t *items = NULL;
    scim_err_clear(&err);
    if (strcmp(r->req->method, "GET") != 0) {
        api_admin_not_allowed(r, "GET");
        return;
    }
    if (int_param(r, "after", 0, &after) || int_param(r, "count", EVENTS_DEFAULT_COUNT, &count) ||
        int_param(r, "wait", 0, &wait))
        return;
    if (after < 0 || count < 1 || wait < 0) {
        api_admin_fail(r, 400, "after and wait must be >= 0, count >= 1");
        return;
    }
    if (count > SCIM_EVENTS_MAX_COUNT)
        count = SCIM_EVENTS_MAX_COUNT;
    if (wait > EVENTS_MAX_WAIT_S)
        wait = EVENTS_MAX_WAIT_S;
    int rc;
    int64_t oldest = 0;
    if (wait > 0 && atomic_fetch_add(&waiters, 1) < EVENTS_MAX_WAITERS) {
        rc = scim_store_events_read(r->api->st, tenant_id, after, count, wait * 1000, &items, &last,
                                    &oldest, &err);
        atomic_fetch_sub(&waiters, 1);
    } else {
        if (wait > 0)
            atomic_fetch_sub(&waiters, 1);
        rc = scim_store_events_read(r->api->st, tenant_id, after, count, 0, &items, &last, &oldest,
                                    &err);
    }
    if (rc < 0 && err.status == 410) {
        pruned(r, &err, oldest, last);
        return;
    }
    if (rc < 0) {
        api_admin_fail_err(r, &err);
        return;
    }
    size_t n = json_array_size(items);
    json_int_t next = n ? json_integer_value(json_object_get(json_array_get(items, n - 1), "seq"))
                        : (json_int_t)(after < last ? after : last);
    /* after beyond the latest seq (a feed reset, e.g. a restored backup) is answered with the
     * latest seq as "next", so that a client can notice and resynchronise */
    if (!n && after > last)
        next = (json_int_t)last;
    api_admin_reply(r, 200,
                    json_pack("{s:o, s:I, s:I, s:I}", "items", items, "count", (json_int_t)n,
                              "next", next, "latestSeq", (json_int_t)last));
}

/* A new secret: "whsec_" and 32 random bytes in base64url. */
static int new_secret(char out[64])
{
    unsigned char raw[32];
    if (scim_random_bytes(raw, sizeof raw) < 0)
        return -1;
    memcpy(out, "whsec_", 6);
    scim_base64url(raw, sizeof raw, out + 6);
    return 0;
}

static bool is_method(const struct api_req *r, const char *m)
{
    return strcmp(r->req->method, m) == 0;
}

/* Body fields common to POST and PATCH; 0 or -1 (answered). */
static int webhook_fields(struct api_req *r, json_t *body, const char **url, json_t **types,
                          const char **secret, int *enabled)
{
    json_t *v;
    const char *bad = NULL;
    if ((v = json_object_get(body, "url")) && !(*url = json_string_value(v)))
        bad = "url must be a string";
    if ((v = json_object_get(body, "eventTypes")) && !json_is_array(v))
        bad = "eventTypes must be an array";
    else if (v)
        *types = v;
    if ((v = json_object_get(body, "secret")) && !json_is_null(v) && !(*secret = json_string_value(v)))
        bad = "secret must be a string";
    if ((v = json_object_get(body, "enabled")) && !json_is_boolean(v))
        bad = "enabled must be a boolean";
    else if (v)
        *enabled = json_is_true(v);
    const char *key;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "url") && strcmp(key, "eventTypes") && strcmp(key, "secret") &&
            strcmp(key, "enabled") && strcmp(key, "id")) {
            char msg[160];
            snprintf(msg, sizeof msg, "unknown webhook field \"%.64s\"", key);
            api_admin_fail(r, 400, msg);
            return -1;
        }
    }
    if (bad) {
        api_admin_fail(r, 400, bad);
        return -1;
    }
    return 0;
}

static void webhook_create(struct api_req *r, int64_t tenant_id)
{
    struct scim_err err;
    json_t *body = NULL, *out = NULL, *all = NULL;
    const char *url = NULL, *secret = NULL;
    json_t *types = NULL;
    int enabled = 1;
    char gen[64];
    scim_err_clear(&err);
    if (api_parse_body(r, &body, &err)) {
        api_admin_fail_err(r, &err);
        return;
    }
    if (webhook_fields(r, body, &url, &types, &secret, &enabled))
        goto out;
    if (!url) {
        api_admin_fail(r, 400, "url is required");
        goto out;
    }
    if (!types && !(types = all = json_pack("[s]", "*"))) {
        api_admin_fail(r, 500, "out of memory");
        goto out;
    }
    if (!secret) {
        if (new_secret(gen) < 0) {
            api_admin_fail(r, 500, "no randomness for a secret");
            goto out;
        }
        secret = gen;
    }
    if (scim_store_webhook_create(r->api->st, tenant_id, url, secret, types, enabled != 0, &out,
                                  &err)) {
        api_admin_fail_err(r, &err);
        goto out;
    }
    /* the only time the secret is shown */
    json_object_set_new(out, "secret", json_string(secret));
    api_admin_reply(r, 201, out);
out:
    memset(gen, 0, sizeof gen);
    json_decref(all);
    json_decref(body);
}

static void webhook_patch(struct api_req *r, int64_t tenant_id, const char *id)
{
    struct scim_err err;
    json_t *body = NULL, *out = NULL, *types = NULL;
    const char *url = NULL, *secret = NULL;
    int enabled = -1;
    scim_err_clear(&err);
    if (api_parse_body(r, &body, &err)) {
        api_admin_fail_err(r, &err);
        return;
    }
    if (webhook_fields(r, body, &url, &types, &secret, &enabled) == 0) {
        if (scim_store_webhook_update(r->api->st, tenant_id, id, url, types, secret, enabled, &out,
                                      &err))
            api_admin_fail_err(r, &err);
        else
            api_admin_reply(r, 200, out);
    }
    json_decref(body);
}

void api_admin_webhooks(struct api_req *r, int64_t tenant_id, char **seg, int n)
{
    struct scim_err err;
    json_t *out = NULL;
    scim_err_clear(&err);
    if (n == 0) {
        if (is_method(r, "GET")) {
            if (scim_store_webhook_list(r->api->st, tenant_id, &out, &err)) {
                api_admin_fail_err(r, &err);
                return;
            }
            json_int_t k = (json_int_t)json_array_size(out);
            api_admin_reply(r, 200, json_pack("{s:o, s:I, s:i, s:I}", "items", out, "total", k,
                                              "startIndex", 1, "count", k));
        } else if (is_method(r, "POST")) {
            webhook_create(r, tenant_id);
        } else {
            api_admin_not_allowed(r, "GET, POST");
        }
        return;
    }
    const char *id = seg[0];
    if (n == 2 && strcmp(seg[1], "deliveries") == 0) {
        if (!is_method(r, "GET")) {
            api_admin_not_allowed(r, "GET");
            return;
        }
        if (scim_store_webhook_get(r->api->st, tenant_id, id, &out, &err)) {
            api_admin_fail_err(r, &err);
            return;
        }
        json_t *d = json_incref(json_object_get(out, "delivery"));
        json_object_set_new(d, "webhook", json_string(id));
        json_decref(out);
        api_admin_reply(r, 200, d);
        return;
    }
    if (n != 1) {
        api_admin_fail(r, 404, "no such endpoint");
        return;
    }
    if (is_method(r, "GET")) {
        if (scim_store_webhook_get(r->api->st, tenant_id, id, &out, &err))
            api_admin_fail_err(r, &err);
        else
            api_admin_reply(r, 200, out);
    } else if (is_method(r, "PATCH")) {
        webhook_patch(r, tenant_id, id);
    } else if (is_method(r, "DELETE")) {
        if (scim_store_webhook_delete(r->api->st, tenant_id, id, &err))
            api_admin_fail_err(r, &err);
        else
            api_admin_reply(r, 204, NULL);
    } else {
        api_admin_not_allowed(r, "GET, PATCH, DELETE");
    }
}
