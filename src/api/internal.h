/* Private to src/api: the API object and the per-request context shared by the handlers. */
#ifndef SCIM_API_INTERNAL_H
#define SCIM_API_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "common/exchange.h"
#include "scim/filter.h"
#include "scim/resource.h"
#include "store/store.h"

struct scim_api {
    struct scim_api_config cfg;
    char *prefix;     /* owned copy, no trailing slash */
    char *public_url; /* owned copy or NULL */
    struct scim_store *st;
    const struct scim_registry *reg;
    unsigned char cursor_key[32]; /* HMAC key of cursors, shared through the database (cursor.c) */
    uint32_t cursor_epoch;        /* derived from the key: tells a foreign cursor from a forged one */
    struct scim_ratelimit *rl_token;  /* NULL = no limit */
    struct scim_ratelimit *rl_tenant; /* NULL = no limit */
};

/* The SCIM query parameters (RFC 7644 §3.4.2), from the query string or a .search body. */
struct api_query {
    char *filter;
    char *sort_by;
    char *sort_order;
    char *attributes;
    char *excluded;
    char *cursor;
    bool has_start_index, has_count;
    int64_t start_index;
    int64_t count;
};

struct api_req {
    struct scim_api *api;
    const struct scim_request *req;
    struct scim_response *resp;
    struct scim_token token;
    int64_t tenant_id;
    char base_url[1024]; /* absolute SCIM base URL, no trailing slash */
    uint32_t compat;
    struct api_query q;
    const char *scim_type; /* of the error answered, for the log line */
    struct scim_tenant tenant; /* the token's tenant (settings parsed), once authenticated */
    bool have_tenant;
    const char *path_tenant;   /* /tenants/{name}/scim/v2: the decoded name, else NULL */
    char root_url[1024];       /* absolute server root URL, no trailing slash */
    const char *admin_code;    /* admin API: error code answered, for the log line */
    /* provisioning log (plog.c) */
    int64_t start_us;          /* when the request arrived */
    bool plog_scim;            /* went through the SCIM router: recorded when authenticated */
    const char *plog_rtype;    /* "User", "Group" or NULL */
    char plog_id[72];          /* resource id involved */
    char plog_user[128];       /* userName involved */
    char plog_display[128];    /* displayName involved */
    char err_detail[SCIM_ERR_DETAIL_MAX]; /* detail of the Error answered */
};

/* Provisioning log (plog.c). Copies id (when `with_id`), userName and displayName from a
 * resource or request doc into r, keeping values already noted. */
void api_plog_note(struct api_req *r, json_t *obj, bool with_id);
/* Records the request's entry (after the response is final). Only authenticated SCIM requests
 * are recorded; a 401 has no tenant and goes to the server log only. */
void api_plog_finish(struct api_req *r);
/* Records a Bulk operation that failed before it could be performed (malformed, unresolved
 * bulkId): operation `index` (0-based) of the Bulk request r. */
void api_plog_bulk_op(struct api_req *r, size_t index, const char *method, const char *path,
                      json_t *data, const struct scim_err *err);
/* The client that sent a request, from its headers, query flags and the compatibility
 * behaviours it needed (client_id.c): "entra", "okta", ..., "unknown". Never NULL. */
const char *api_client_identify(const struct scim_request *req, uint32_t compat);
/* The admin API's GET /admin/v1/tenants/{t}/log (plog_admin.c): a list per the admin
 * conventions, or -1 with err (400 on a bad parameter). */
int api_plog_admin_list(struct api_req *r, int64_t tenant_id, json_t **out, struct scim_err *err);

/* Authenticates the bearer token and loads its tenant into r->token / r->tenant (401). */
int api_authenticate(struct api_req *r, struct scim_err *err);
/* true if the token has the scope (space-separated list). */
bool api_has_scope(const struct scim_token *t, const char *scope);
/* Store write options for a SCIM request: the tenant's settings, origin scim, managedBy token. */
void api_wopts(struct api_req *r, struct scim_store_wopts *w);

/* The admin API (admin.c): `rest` is the path after "/admin/v1". */
void api_admin_handle(struct api_req *r, const char *rest);
/* Admin API helpers for handlers outside admin.c: a JSON reply (takes `body`), an error reply
 * {"error": {...}} (code from the status), a scim_err as an error reply, a decoded query
 * parameter (malloc'ed or NULL), 405 with Allow. */
void api_admin_reply(struct api_req *r, int status, json_t *body);
void api_admin_fail(struct api_req *r, int status, const char *msg);
void api_admin_fail_err(struct api_req *r, const struct scim_err *e);
char *api_admin_query(const struct api_req *r, const char *name);
void api_admin_not_allowed(struct api_req *r, const char *allowed);
/* Change feed and webhooks (feed.c): GET .../tenants/{t}/events, and .../webhooks with the
 * `n` path segments after "webhooks" in `seg`. */
void api_admin_events(struct api_req *r, int64_t tenant_id);
void api_admin_webhooks(struct api_req *r, int64_t tenant_id, char **seg, int n);

/* Provisioning policies on SCIM updates (policy.c): checks/adjusts the new doc of a user
 * against the old one (username_changes, email_changes). 0 or -1 (400 mutability). */
bool api_policy_user_active(const struct api_req *r);
int api_policy_user_update(struct api_req *r, json_t *old_doc, json_t *new_doc,
                           struct scim_err *err);

/* Renders `e` as a SCIM Error response. */
void api_error(struct api_req *r, const struct scim_err *e);
/* Sets a JSON response (takes the reference to `body`), Content-Type application/scim+json. */
void api_json_take(struct api_req *r, int status, json_t *body);
struct scim_buf;
/* api_json_take for a body already rendered as JSON text: takes the contents of `body` (the
 * buffer is emptied). */
void api_text_take(struct api_req *r, int status, struct scim_buf *body);
/* Parses the request body as one JSON object (400 invalidSyntax otherwise; depth-limited). */
int api_parse_body(struct api_req *r, json_t **out, struct scim_err *err);
/* Fails with 400 when the request has needed a compatibility behaviour the operator disabled
 * (`extra` is OR-ed with r->compat first). Called where behaviours are detected, before any
 * write is committed. */
int api_compat_check(struct api_req *r, uint32_t extra, struct scim_err *err);
/* Answers 405 with an Allow header listing `allowed` ("GET, POST"). */
void api_method_not_allowed(struct api_req *r, const char *allowed);
/* Adds the ETag header from resource.meta.version, if any. */
void api_etag_header(struct api_req *r, json_t *resource);

/* Query parameters: parse from the query string (names case-insensitive). */
int api_query_parse(struct api_req *r, struct scim_err *err);
/* Merges a SearchRequest body into r->q (body values win). */
int api_query_from_search(struct api_req *r, json_t *body, struct scim_err *err);
void api_query_release(struct api_query *q);

/* Resource endpoints (resources.c). `id` is NULL for the collection. */
void api_resource_dispatch(struct api_req *r, enum scim_rtype kind, const char *id, bool search);
/* Root-level POST /.search over all resource types. */
void api_root_search(struct api_req *r);

/* POST /Bulk (bulk.c). `exact` is false when the path has segments after /Bulk (404). */
void api_bulk(struct api_req *r, bool exact);

/* RFC 9865 cursors (cursor.c): opaque, HMAC-authenticated keyset positions. */
struct api_cursor {
    bool backward; /* true: the page before `pk`; false: the page after `pk` */
    int64_t pk;    /* 0 with !backward: the first page */
};
/* Loads the cursor key from the store (created on first use). */
int api_cursor_init(struct scim_api *api, struct scim_err *err);
/* Decodes a cursor for resource type `kind`: "" is the first page; 400 invalidCursor when it
 * is malformed or forged, 400 expiredCursor when older than cfg.cursor_timeout or issued by
 * an earlier process. */
int api_cursor_decode(const struct scim_api *api, int kind, const char *text,
                      struct api_cursor *out, struct scim_err *err);
/* Encodes a cursor into `out` (at least API_CURSOR_MAX bytes). */
#define API_CURSOR_MAX 96
void api_cursor_encode(const struct scim_api *api, int kind, const struct api_cursor *c,
                       char out[API_CURSOR_MAX]);
/* When the request has a cursor parameter, switches `q` to keyset paging (400 when combined
 * with startIndex or sortBy, or when the cursor is bad). No-op without one. */
int api_cursor_apply(struct api_req *r, int kind, struct scim_store_query *q, struct scim_err *err);
/* Adds nextCursor/previousCursor to a ListResponse of a cursor page and drops startIndex.
 * -1 on out of memory. */
int api_cursor_finish(struct api_req *r, int kind, const struct scim_store_query *q,
                      const struct scim_store_page *page, json_t *list);

#endif
