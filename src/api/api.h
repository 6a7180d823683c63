/* The API layer: routes a transport-neutral request to the SCIM handlers and renders the
 * response. Knows nothing of libmicrohttpd or of SQL. */
#ifndef SCIM_API_API_H
#define SCIM_API_API_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "api/ratelimit.h"
#include "common/exchange.h"
#include "scim/schema.h"
#include "store/store.h"

struct scim_api_config {
    uint32_t compat_disabled; /* compatibility behaviours turned off (scim/compat.h); a request
                                 that needs one gets 400 and changes nothing */
    const char *prefix;       /* SCIM base path, default "/scim/v2" */
    const char *public_url;   /* absolute URL of the server root as clients see it, e.g.
                                 "https://scim.example.com"; NULL = derived from Host */
    size_t max_body;          /* bytes (413 beyond) */
    size_t max_filter_length; /* bytes */
    int max_filter_depth;
    int max_json_depth;
    int64_t max_results;      /* filter.maxResults: largest page */
    int64_t default_count;    /* page size when count is absent */
    size_t max_operations;    /* PATCH operations per request */
    size_t max_members_per_request; /* member values in one request */
    size_t bulk_max_operations; /* /Bulk: Operations per request (413 beyond); 0 = Bulk off */
    size_t bulk_max_payload;    /* /Bulk: largest body in bytes (413 beyond); capped by max_body */
    int64_t cursor_timeout;     /* RFC 9865 cursorTimeout in seconds: older cursors are expired */
    struct scim_rate rate_token;  /* requests per bearer token; rate 0 = unlimited (default) */
    struct scim_rate rate_tenant; /* requests per tenant; rate 0 = unlimited (default) */
};

/* Fills `cfg` with the defaults. */
void scim_api_config_defaults(struct scim_api_config *cfg);

struct scim_api;

int scim_api_new(const struct scim_api_config *cfg, struct scim_store *st,
                 const struct scim_registry *reg, struct scim_api **out, struct scim_err *err);
void scim_api_free(struct scim_api **api);

/* Handles one request; always fills `resp` (a SCIM Error for every non-2xx status). */
void scim_api_handle(void *api, const struct scim_request *req, struct scim_response *resp);

#endif
