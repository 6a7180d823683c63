/* GET /admin/v1/tenants/{t}/log: the provisioning log of a tenant through the admin API
 * (docs/admin-api.md, "Provisioning log"). */
#include "api/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define LOG_DEFAULT_COUNT 100
#define LOG_MAX_COUNT 1000

/* Decoded query parameters, each malloc'ed or NULL when absent. */
enum {
    P_STATUS, P_RTYPE, P_RID, P_USER, P_TOKEN, P_SINCE, P_UNTIL, P_CLIENT, P_AFTER, P_COUNT,
    P_START, P_ORDER, P_N
};
static const char *const pnames[P_N] = {"status", "resourceType", "resourceId", "user", "token",
                                        "since", "until", "client", "after", "count",
                                        "startIndex", "order"};

static int params_parse(const char *query, char *v[P_N], struct scim_err *err)
{
    const char *p = query ? query : "";
    while (*p) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        if (eq) {
            size_t nlen = (size_t)(eq - p);
            for (int i = 0; i < P_N; i++) {
                if (strlen(pnames[i]) == nlen && strncmp(p, pnames[i], nlen) == 0) {
                    free(v[i]);
                    if (!(v[i] = scim_url_decode(eq + 1, len - nlen - 1, true)))
                        return scim_err_nomem(err);
                }
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

static int parse_status(const char *s, struct scim_log_query *q, struct scim_err *err)
{
    int64_t code;
    if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
        (s[2] == 'x' || s[2] == 'X')) {
        q->status_min = (s[0] - '0') * 100;
        q->status_max = q->status_min + 99;
        return 0;
    }
    if (scim_parse_i64(s, &code) || code < 100 || code > 599)
        return scim_err_set(err, 400, NULL, "status must be 2xx, 4xx, 5xx or a status code");
    q->status_min = q->status_max = (int)code;
    return 0;
}

static int parse_time(const char *name, const char *s, int64_t *out, struct scim_err *err)
{
    if (scim_datetime_parse(s, out) || *out <= 0)
        return scim_err_set(err, 400, NULL, "%s must be an RFC 3339 date-time", name);
    return 0;
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *entry_json(const struct scim_log_entry *e)
{
    char ts[SCIM_DATETIME_LEN];
    json_t *compat = json_array(), *o;

    scim_datetime_format(e->time_us, ts);
    for (const char *p = e->compat; compat && *p;) {
        size_t len = strcspn(p, ",");
        if (len && json_array_append_new(compat, json_stringn(p, len)) < 0) {
            json_decref(compat);
            compat = NULL;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (!compat)
        return NULL;
    o = json_pack("{s:I, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:i, s:o, s:o,"
                  " s:f, s:o}",
                  "id", (json_int_t)e->id, "time", ts, "requestId", e->request_id,
                  "bulkOperation", e->bulk_index ? json_integer(e->bulk_index) : json_null(),
                  "token", str_or_null(e->token), "client", e->client[0] ? e->client : "unknown",
                  "method", e->method, "path", e->path,
                  "resourceType", str_or_null(e->resource_type),
                  "resourceId", str_or_null(e->resource_id),
                  "userName", str_or_null(e->user_name),
                  "displayName", str_or_null(e->display_name), "status", e->status,
                  "scimType", str_or_null(e->scim_type), "detail", str_or_null(e->detail),
                  "latencyMs", (double)e->latency_us / 1000.0, "compat", compat);
    return o;
}

int api_plog_admin_list(struct api_req *r, int64_t tenant_id, json_t **out, struct scim_err *err)
{
    char *v[P_N] = {NULL};
    struct scim_log_query q;
    struct scim_log_entry *rows = NULL;
    size_t n = 0;
    int64_t total = 0, start = 1;
    json_t *items = NULL;
    int rc = -1;

    memset(&q, 0, sizeof q);
    q.tenant_id = tenant_id;
    q.count = LOG_DEFAULT_COUNT;
    if (params_parse(r->req->raw_query, v, err))
        goto out;
    if (v[P_STATUS] && parse_status(v[P_STATUS], &q, err))
        goto out;
    if (v[P_RTYPE]) {
        if (scim_streq_ci(v[P_RTYPE], "User"))
            q.resource_type = "User";
        else if (scim_streq_ci(v[P_RTYPE], "Group"))
            q.resource_type = "Group";
        else {
            scim_err_set(err, 400, NULL, "resourceType must be User or Group");
            goto out;
        }
    }
    q.resource_id = v[P_RID];
    q.user = v[P_USER];
    q.token = v[P_TOKEN];
    q.client = v[P_CLIENT];
    if ((v[P_SINCE] && parse_time("since", v[P_SINCE], &q.since_us, err)) ||
        (v[P_UNTIL] && parse_time("until", v[P_UNTIL], &q.until_us, err)))
        goto out;
    if (v[P_AFTER] && (scim_parse_i64(v[P_AFTER], &q.after_id) || q.after_id < 0)) {
        scim_err_set(err, 400, NULL, "after must be an entry id");
        goto out;
    }
    if ((v[P_COUNT] && scim_parse_i64(v[P_COUNT], &q.count)) ||
        (v[P_START] && scim_parse_i64(v[P_START], &start))) {
        scim_err_set(err, 400, NULL, "startIndex and count must be integers");
        goto out;
    }
    if (v[P_ORDER]) {
        if (strcmp(v[P_ORDER], "asc") == 0)
            q.ascending = true;
        else if (strcmp(v[P_ORDER], "desc") != 0) {
            scim_err_set(err, 400, NULL, "order must be asc or desc");
            goto out;
        }
    }
    if (q.count < 0)
        q.count = 0;
    if (q.count > LOG_MAX_COUNT)
        q.count = LOG_MAX_COUNT;
    if (start < 1)
        start = 1;
    q.offset = start - 1;
    if (scim_store_log_query(r->api->st, &q, &rows, &n, &total, err))
        goto out;
    if (!(items = json_array())) {
        scim_err_nomem(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = entry_json(&rows[i]);
        if (!e || json_array_append_new(items, e) < 0) {
            scim_err_nomem(err);
            goto out;
        }
    }
    *out = json_pack("{s:O, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total,
                     "startIndex", (json_int_t)start, "count", (json_int_t)n);
    if (!*out) {
        scim_err_nomem(err);
        goto out;
    }
    rc = 0;
out:
    json_decref(items);
    free(rows);
    for (int i = 0; i < P_N; i++)
        free(v[i]);
    return rc;
}
