/* The discovery documents (RFC 7643 §5-7, RFC 7644 §4): ServiceProviderConfig, ResourceTypes and
 * Schemas, generated from the registry and the server's actual limits so they never disagree
 * with what the server does. */
#ifndef SCIM_SCIM_DISCOVERY_H
#define SCIM_SCIM_DISCOVERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "scim/schema.h"

struct scim_spc_info {
    const char *base_url;       /* absolute SCIM base, for meta.location */
    const char *documentation_uri;
    int64_t filter_max_results; /* filter.maxResults */
    bool bulk_supported;
    int64_t bulk_max_operations;
    int64_t bulk_max_payload;
    bool etag_supported;
    bool sort_supported;
    bool change_password_supported;
    bool cursor_supported;      /* RFC 9865 pagination block */
    int64_t cursor_timeout;     /* seconds */
    int64_t default_page_size;
};

/* The ServiceProviderConfig resource. New reference. */
json_t *scim_discovery_spc(const struct scim_spc_info *info);
/* One ResourceType resource, and the list of all (User first) as a complete ListResponse
 * (schemas, totalResults, itemsPerPage, startIndex 1, Resources). New references. */
json_t *scim_discovery_resource_type(const struct scim_resource_type *rt, const char *base_url);
json_t *scim_discovery_resource_types(const struct scim_registry *reg, const char *base_url);
/* One Schema resource (attributes with all their characteristics), and all of them in
 * registry order as a complete ListResponse. */
json_t *scim_discovery_schema(const struct scim_schema *schema, const char *base_url);
json_t *scim_discovery_schemas(const struct scim_registry *reg, const char *base_url);

#endif
