/* POST /Bulk (RFC 7644 §3.7). Each operation is replayed as an ordinary request through
 * scim_api_handle, so authentication, validation and every later policy apply to it exactly
 * as to a direct call; each is its own transaction. Operations run in dependency order so that
 * "bulkId:<id>" references may point forwards in the request. */
#include "api/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "common/buf.h"
#include "common/util.h"

#define BULK_REF "bulkId:"
#define BULK_REF_LEN (sizeof BULK_REF - 1)

enum op_state { OP_PENDING, OP_OK, OP_FAILED };

struct bulk_op {
    json_t *src;            /* the operation object (borrowed from the request) */
    const char *method;     /* canonical upper-case name, or NULL when invalid */
    const char *path;       /* as sent */
    const char *bulk_id;    /* may be NULL */
    const char *version;    /* may be NULL */
    json_t *data;           /* borrowed, may be NULL */
    size_t *deps;           /* indexes of the POST operations referenced */
    size_t n_deps;
    char *missing;          /* first referenced bulkId no operation defines (owned) */
    enum op_state state;
    char *created_id;       /* POST: the id of the new resource (owned) */
    json_t *result;         /* the BulkResponse operation (owned); NULL = not performed */
    struct scim_err bad;    /* set when the operation itself is malformed */
};

struct bulk {
    struct api_req *r;
    struct bulk_op *ops;
    size_t n;
};

/* Jansson object lookup with a case-insensitive key, since attribute names are
 * case-insensitive in SCIM (several clients send "operations"). */
static json_t *get_ci(json_t *obj, const char *name)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (scim_streq_ci(key, name))
            return v;
    }
    return NULL;
}

static const char *canonical_method(const char *m)
{
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (m && scim_streq_ci(m, methods[i]))
            return methods[i];
    return NULL;
}

static size_t find_bulk_id(const struct bulk *b, const char *id, size_t len)
{
    for (size_t j = 0; j < b->n; j++) {
        const char *bid = b->ops[j].bulk_id;
        if (bid && b->ops[j].method && strcmp(b->ops[j].method, "POST") == 0 &&
            strlen(bid) == len && memcmp(bid, id, len) == 0)
            return j;
    }
    return b->n;
}

/* Length of the bulkId after "bulkId:": it ends where a path, URL or list separator does. */
static size_t ref_len(const char *s)
{
    size_t n = strcspn(s, "/?#&,\"' ");
    return n;
}

/* Records the references found in one string. -1 on out of memory. */
static int scan_string(struct bulk *b, struct bulk_op *op, const char *s)
{
    const char *p = s;
    while ((p = strstr(p, BULK_REF)) != NULL) {
        const char *id = p + BULK_REF_LEN;
        size_t len = ref_len(id);
        size_t j = find_bulk_id(b, id, len);
        p = id + len;
        if (j == b->n) {
            if (!op->missing && !(op->missing = scim_strndup(id, len)))
                return -1;
            continue;
        }
        bool seen = false;
        for (size_t k = 0; k < op->n_deps; k++)
            seen = seen || op->deps[k] == j;
        if (seen)
            continue;
        size_t *nd = realloc(op->deps, (op->n_deps + 1) * sizeof *nd);
        if (!nd)
            return -1;
        op->deps = nd;
        op->deps[op->n_deps++] = j;
    }
    return 0;
}

static int scan_json(struct bulk *b, struct bulk_op *op, json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;

    if (json_is_string(v))
        return scan_string(b, op, json_string_value(v));
    if (json_is_object(v)) {
        json_object_foreach(v, key, item) {
            if (scan_json(b, op, item))
                return -1;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            if (scan_json(b, op, item))
                return -1;
        }
    }
    return 0;
}

/* Replaces every resolvable reference in `s`; NULL on out of memory. */
static char *subst_string(const struct bulk *b, const char *s)
{
    struct scim_buf out;
    const char *p = s, *hit;

    scim_buf_init(&out, 0);
    while ((hit = strstr(p, BULK_REF)) != NULL) {
        const char *id = hit + BULK_REF_LEN;
        size_t len = ref_len(id);
        size_t j = find_bulk_id(b, id, len);
        const char *created = j < b->n ? b->ops[j].created_id : NULL;
        if (scim_buf_add(&out, p, (size_t)(hit - p)) < 0)
            goto nomem;
        if (created ? scim_buf_adds(&out, created) < 0
                    : scim_buf_add(&out, hit, BULK_REF_LEN + len) < 0)
            goto nomem;
        p = id + len;
    }
    if (scim_buf_adds(&out, p) < 0)
        goto nomem;
    return scim_buf_take(&out);
nomem:
    scim_buf_release(&out);
    return NULL;
}

/* Substitutes references in place in a private copy of the operation data. */
static int subst_json(const struct bulk *b, json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, item) {
            if (json_is_string(item)) {
                char *s = subst_string(b, json_string_value(item));
                if (!s || json_object_set_new(v, key, json_string(s))) {
                    free(s);
                    return -1;
                }
                free(s);
            } else if (subst_json(b, item)) {
                return -1;
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            if (json_is_string(item)) {
                char *s = subst_string(b, json_string_value(item));
                if (!s || json_array_set_new(v, i, json_string(s))) {
                    free(s);
                    return -1;
                }
                free(s);
            } else if (subst_json(b, item)) {
                return -1;
            }
        }
    }
    return 0;
}

/* Checks the shape of one operation; fills op->bad when it is unusable. */
static void parse_op(struct bulk *b, size_t i, json_t *src)
{
    struct bulk_op *op = &b->ops[i];
    json_t *m, *path, *bid, *ver;

    op->src = src;
    scim_err_clear(&op->bad);
    if (!json_is_object(src)) {
        scim_err_set(&op->bad, 400, SCIM_TYPE_INVALID_SYNTAX, "Each operation must be an object.");
        return;
    }
    m = get_ci(src, "method");
    path = get_ci(src, "path");
    bid = get_ci(src, "bulkId");
    ver = get_ci(src, "version");
    op->data = get_ci(src, "data");
    op->method = canonical_method(json_string_value(m));
    op->path = json_string_value(path);
    op->bulk_id = json_string_value(bid);
    op->version = json_string_value(ver);
    if (!op->method) {
        scim_err_set(&op->bad, 400, SCIM_TYPE_INVALID_VALUE,
                     "The operation method must be one of POST, PUT, PATCH or DELETE.");
        return;
    }
    if (!op->path || op->path[0] != '/' || strchr(op->path, '?')) {
        scim_err_set(&op->bad, 400, SCIM_TYPE_INVALID_VALUE,
                     "The operation path must be a resource path such as /Users or /Users/{id}.");
        return;
    }
    if ((bid && !json_is_string(bid)) || (op->bulk_id && (!*op->bulk_id ||
                                                          op->bulk_id[ref_len(op->bulk_id)]))) {
        scim_err_set(&op->bad, 400, SCIM_TYPE_INVALID_VALUE,
                     "bulkId must be a non-empty string without / ? # & , quotes or spaces.");
        return;
    }
    if (strcmp(op->method, "POST") == 0 && !op->bulk_id) {
        scim_err_set(&op->bad, 400, SCIM_TYPE_INVALID_VALUE,
                     "bulkId is required for a POST operation.");
        return;
    }
    if (ver && !json_is_string(ver)) {
        scim_err_set(&op->bad, 400, SCIM_TYPE_INVALID_VALUE, "version must be a string (an ETag).");
        return;
    }
    if (strcmp(op->method, "DELETE") != 0 && !json_is_object(op->data)) {
        scim_err_set(&op->bad, 400, SCIM_TYPE_INVALID_SYNTAX,
                     "data (an object) is required for %s operations.", op->method);
        return;
    }
    for (size_t j = 0; op->bulk_id && j < i; j++) {
        if (b->ops[j].bulk_id && strcmp(b->ops[j].bulk_id, op->bulk_id) == 0) {
            scim_err_set(&op->bad, 400, SCIM_TYPE_INVALID_VALUE,
                         "bulkId \"%s\" is used by an earlier operation of this request.",
                         op->bulk_id);
            op->bulk_id = NULL;
            return;
        }
    }
}

/* The endpoint part of an operation path must be /Users or /Groups: no nested Bulk, search or
 * discovery through Bulk. */
static bool path_allowed(const char *path, bool collection)
{
    const char *seg = path + 1;
    size_t len = strcspn(seg, "/");
    const char *rest = seg + len;
    bool ok = (len == 5 && scim_strncasecmp(seg, "Users", 5) == 0) ||
              (len == 6 && scim_strncasecmp(seg, "Groups", 6) == 0);
    if (!ok)
        return false;
    if (collection)
        return rest[0] == '\0' || (rest[0] == '/' && rest[1] == '\0');
    return rest[0] == '/' && rest[1] && !strchr(rest + 1, '/');
}

/* Builds the BulkResponse entry of an operation. */
static int set_result(struct bulk_op *op, int status, const char *location, const char *version,
                      json_t *response_take)
{
    char st[8];
    json_t *res = json_object();

    snprintf(st, sizeof st, "%d", status);
    if (!res || json_object_set_new(res, "method", json_string(op->method ? op->method : "")) ||
        (op->bulk_id && json_object_set_new(res, "bulkId", json_string(op->bulk_id))) ||
        (version && json_object_set_new(res, "version", json_string(version))) ||
        (location && json_object_set_new(res, "location", json_string(location))) ||
        json_object_set_new(res, "status", json_string(st)) ||
        (response_take && json_object_set(res, "response", response_take))) {
        json_decref(res);
        json_decref(response_take);
        return -1;
    }
    json_decref(response_take);
    json_decref(op->result);
    op->result = res;
    op->state = status >= 200 && status < 300 ? OP_OK : OP_FAILED;
    return 0;
}

/* An operation that fails here never reaches the router: it is recorded in the provisioning
 * log from here, with its own status (performed operations are recorded by the router). */
static int fail_op(struct bulk *b, struct bulk_op *op, const struct scim_err *e)
{
    char st[8];
    json_t *body;

    api_plog_bulk_op(b->r, (size_t)(op - b->ops), op->method, op->path, op->data, e);

    snprintf(st, sizeof st, "%d", e->status);
    body = json_pack("{s:[s],s:s,s:s}", "schemas", SCIM_MSG_ERROR, "status", st, "detail",
                     e->detail[0] ? e->detail : scim_http_reason(e->status));
    if (body && e->scim_type)
        json_object_set_new(body, "scimType", json_string(e->scim_type));
    if (!body)
        return -1;
    if (set_result(op, e->status, NULL, NULL, body))
        return -1;
    op->state = OP_FAILED;
    return 0;
}

static const char *resp_header(const struct scim_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->n_headers; i++)
        if (scim_streq_ci(resp->headers[i].name, name))
            return resp->headers[i].value;
    return NULL;
}

/* Performs one operation through the normal request path. -1 only on out of memory. */
static int run_op(struct bulk *b, struct bulk_op *op)
{
    struct api_req *r = b->r;
    const struct scim_request *outer = r->req;
    struct scim_request sub;
    struct scim_response sresp;
    struct scim_err e;
    char *path = NULL, *full = NULL, *body = NULL, *location = NULL;
    json_t *data = NULL, *rjson = NULL;
    bool post;
    int rc = -1;

    memset(&sub, 0, sizeof sub);
    memset(&sresp, 0, sizeof sresp);
    scim_err_clear(&e);
    if (op->bad.status) {
        rc = fail_op(b, op, &op->bad);
        goto out;
    }
    post = strcmp(op->method, "POST") == 0;
    if (op->missing) {
        scim_err_set(&e, 409, SCIM_TYPE_INVALID_VALUE,
                     "bulkId \"%s\" is not defined by any POST operation of this request.",
                     op->missing);
        rc = fail_op(b, op, &e);
        goto out;
    }
    for (size_t k = 0; k < op->n_deps; k++) {
        const struct bulk_op *dep = &b->ops[op->deps[k]];
        if (dep->state != OP_OK) {
            scim_err_set(&e, 409, SCIM_TYPE_INVALID_VALUE,
                         dep->state == OP_FAILED
                             ? "bulkId \"%s\" refers to an operation that failed."
                             : "bulkId \"%s\" is part of a circular reference that cannot be resolved.",
                         dep->bulk_id);
            rc = fail_op(b, op, &e);
            goto out;
        }
    }
    if (!(path = subst_string(b, op->path)))
        goto out;
    if (!path_allowed(path, post)) {
        scim_err_set(&e, 400, SCIM_TYPE_INVALID_VALUE,
                     post ? "A POST operation's path must be /Users or /Groups."
                          : "The path must name one resource: /Users/{id} or /Groups/{id}.");
        rc = fail_op(b, op, &e);
        goto out;
    }
    if (op->data) {
        if (!(data = json_deep_copy(op->data)) || subst_json(b, data))
            goto out;
        if (!(body = json_dumps(data, JSON_COMPACT)))
            goto out;
    }
    {
        struct scim_buf fb;
        scim_buf_init(&fb, 0);
        if (scim_buf_adds(&fb, r->api->prefix) < 0 || scim_buf_adds(&fb, path) < 0) {
            scim_buf_release(&fb);
            goto out;
        }
        full = scim_buf_take(&fb);
        if (!full)
            goto out;
    }

    sub.method = op->method;
    sub.raw_path = full;
    sub.raw_query = "";
    sub.body = body;
    sub.body_len = body ? strlen(body) : 0;
    sub.remote_addr = outer->remote_addr;
    sub.tls = outer->tls;
    memcpy(sub.request_id, outer->request_id, sizeof sub.request_id);
    sub.bulk_index = (int)(op - b->ops) + 1; /* its own provisioning log entry */
    /* The operation carries the caller's credentials and Host (for meta.location), and its
     * User-Agent (client recognition in the provisioning log); the ETag of the operation
     * becomes its If-Match. */
    for (size_t i = 0; i < outer->n_headers && sub.n_headers < SCIM_MAX_REQ_HEADERS - 2; i++) {
        const char *n = outer->headers[i].name;
        if (scim_streq_ci(n, "Authorization") || scim_streq_ci(n, "Host") ||
            scim_streq_ci(n, "User-Agent"))
            sub.headers[sub.n_headers++] = outer->headers[i];
    }
    if (op->version)
        sub.headers[sub.n_headers++] = (struct scim_header){"If-Match", op->version};
    sub.headers[sub.n_headers++] = (struct scim_header){"Content-Type", "application/scim+json"};

    scim_api_handle(r->api, &sub, &sresp);
    /* The Bulk request's own log line names the behaviours its operations needed. */
    r->compat |= sresp.compat;

    if (sresp.body && sresp.body_len)
        rjson = json_loadb(sresp.body, sresp.body_len, 0, NULL);
    if (sresp.status >= 200 && sresp.status < 300) {
        const char *loc = resp_header(&sresp, "Location");
        if (post) {
            const char *id = json_string_value(json_object_get(rjson, "id"));
            if (!id || !(op->created_id = scim_strdup(id)))
                goto out;
        } else {
            loc = NULL;
        }
        if (!loc) {
            const char *id = post ? op->created_id : strchr(path + 1, '/') + 1;
            struct scim_buf lb;
            size_t eplen = strcspn(path + 1, "/");
            scim_buf_init(&lb, 0);
            if (scim_buf_adds(&lb, r->base_url) < 0 || scim_buf_add(&lb, path, eplen + 1) < 0 ||
                scim_buf_addc(&lb, '/') < 0 || scim_buf_adds(&lb, id) < 0) {
                scim_buf_release(&lb);
                goto out;
            }
            location = scim_buf_take(&lb);
            if (!location)
                goto out;
            loc = location;
        }
        rc = set_result(op, sresp.status, loc, resp_header(&sresp, "ETag"), NULL);
    } else {
        /* The sub-response is always a SCIM Error for these statuses. */
        rc = set_result(op, sresp.status, NULL, NULL, rjson ? json_incref(rjson) : NULL);
    }
out:
    if (rc && op->state == OP_PENDING)
        op->state = OP_FAILED;
    scim_response_release(&sresp);
    json_decref(rjson);
    json_decref(data);
    if (body)
        scim_wipe(body, strlen(body)); /* may hold a password */
    free(body);
    free(path);
    free(full);
    free(location);
    return rc;
}

/* The next operation to perform: the first pending one (in request order) whose references
 * are all settled. b->n when none is ready. */
static size_t next_ready(const struct bulk *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct bulk_op *op = &b->ops[i];
        bool ready = op->state == OP_PENDING;
        for (size_t k = 0; ready && k < op->n_deps; k++)
            ready = op->deps[k] != i && b->ops[op->deps[k]].state != OP_PENDING;
        if (ready)
            return i;
    }
    return b->n;
}

void api_bulk(struct api_req *r, bool exact)
{
    const struct scim_api *api = r->api;
    struct scim_err err;
    struct bulk b = {r, NULL, 0};
    json_t *body = NULL, *ops, *schemas, *foe, *out = NULL, *arr;
    int64_t fail_on = 0, errors = 0;
    size_t i;
    bool urn = false;

    scim_err_clear(&err);
    if (!exact) {
        scim_err_set(&err, 404, NULL, "No such endpoint.");
        goto fail;
    }
    if (strcmp(r->req->method, "POST") != 0) {
        scim_err_set(&err, 405, NULL, "The method %s is not allowed here; allowed: POST.",
                     r->req->method);
        scim_response_header(r->resp, "Allow", "POST");
        goto fail;
    }
    if (api->cfg.bulk_max_operations == 0) {
        scim_err_set(&err, 501, NULL, "Bulk operations are disabled on this server.");
        goto fail;
    }
    if (r->req->body_len > api->cfg.bulk_max_payload) {
        scim_err_set(&err, 413, NULL,
                     "The bulk request body is larger than maxPayloadSize (%zu bytes).",
                     api->cfg.bulk_max_payload);
        goto fail;
    }
    if (api_parse_body(r, &body, &err))
        goto fail;
    schemas = get_ci(body, "schemas");
    for (i = 0; i < json_array_size(schemas); i++)
        urn = urn || scim_streq_ci(json_string_value(json_array_get(schemas, i)) ?
                                   json_string_value(json_array_get(schemas, i)) : "",
                                   SCIM_MSG_BULK_REQ);
    if (!urn) {
        scim_err_set(&err, 400, SCIM_TYPE_INVALID_SYNTAX,
                     "schemas must contain \"" SCIM_MSG_BULK_REQ "\".");
        goto fail;
    }
    ops = get_ci(body, "Operations");
    if (!json_is_array(ops)) {
        scim_err_set(&err, 400, SCIM_TYPE_INVALID_SYNTAX, "Operations (an array) is required.");
        goto fail;
    }
    if (json_array_size(ops) > api->cfg.bulk_max_operations) {
        scim_err_set(&err, 413, NULL,
                     "The bulk request has %zu operations; maxOperations is %zu.",
                     json_array_size(ops), api->cfg.bulk_max_operations);
        goto fail;
    }
    foe = get_ci(body, "failOnErrors");
    if (foe && !json_is_null(foe)) {
        if (!json_is_integer(foe) || json_integer_value(foe) < 1) {
            scim_err_set(&err, 400, SCIM_TYPE_INVALID_VALUE,
                         "failOnErrors must be an integer of at least 1.");
            goto fail;
        }
        fail_on = json_integer_value(foe);
    }

    b.n = json_array_size(ops);
    if (b.n && !(b.ops = calloc(b.n, sizeof *b.ops))) {
        scim_err_nomem(&err);
        goto fail;
    }
    for (i = 0; i < b.n; i++)
        parse_op(&b, i, json_array_get(ops, i));
    for (i = 0; i < b.n; i++) {
        struct bulk_op *op = &b.ops[i];
        if (op->bad.status)
            continue;
        if (scan_string(&b, op, op->path) || (op->data && scan_json(&b, op, op->data))) {
            scim_err_nomem(&err);
            goto fail;
        }
    }

    for (;;) {
        size_t next = next_ready(&b);
        if (next == b.n) {
            /* Nothing is ready: what is still pending waits on a cycle (RFC 7644 §3.7.1 lets
             * the server give up with 409). */
            for (i = 0; i < b.n && (!fail_on || errors < fail_on); i++) {
                if (b.ops[i].state != OP_PENDING)
                    continue;
                scim_err_set(&err, 409, SCIM_TYPE_INVALID_VALUE,
                             "The operation is part of (or waits on) a circular bulkId reference.");
                if (fail_op(&b, &b.ops[i], &err)) {
                    scim_err_nomem(&err);
                    goto fail;
                }
                errors++;
            }
            scim_err_clear(&err);
            break;
        }
        if (run_op(&b, &b.ops[next])) {
            scim_err_nomem(&err);
            goto fail;
        }
        if (b.ops[next].state == OP_FAILED && fail_on && ++errors >= fail_on)
            break;
    }

    out = json_pack("{s:[s],s:[]}", "schemas", SCIM_MSG_BULK_RESP, "Operations");
    arr = json_object_get(out, "Operations");
    for (i = 0; out && i < b.n; i++) {
        if (b.ops[i].result && json_array_append(arr, b.ops[i].result)) {
            json_decref(out);
            out = NULL;
        }
    }
    if (!out) {
        scim_err_nomem(&err);
        goto fail;
    }
    api_json_take(r, 200, out);
    goto out;
fail:
    api_error(r, &err);
out:
    for (i = 0; i < b.n; i++) {
        free(b.ops[i].deps);
        free(b.ops[i].missing);
        free(b.ops[i].created_id);
        json_decref(b.ops[i].result);
    }
    free(b.ops);
    json_decref(body);
}
