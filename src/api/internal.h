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
};

/* Renders `e` as a SCIM Error response. */
void api_error(struct api_req *r, const struct scim_err *e);
/* Sets a JSON response (takes the reference to `body`), Content-Type application/scim+json. */
void api_json_take(struct api_req *r, int status, json_t *body);
/* Parses the request body as one JSON object (400 invalidSyntax otherwise; depth-limited). */
int api_parse_body(struct api_req *r, json_t **out, struct scim_err *err);
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

#endif
