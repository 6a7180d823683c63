/* Compatibility behaviours: each tolerated deviation of a real SCIM client from RFC 7643/7644
 * has a name and a bit. Code that tolerates one records its bit in the request's compat mask;
 * the request log line lists the names (docs/compatibility.md explains each). */
#ifndef SCIM_SCIM_COMPAT_H
#define SCIM_SCIM_COMPAT_H

#include <stddef.h>
#include <stdint.h>

enum scim_compat {
    SCIM_COMPAT_STRING_BOOLEAN = 1u << 0,       /* "True"/"False" strings for booleans */
    SCIM_COMPAT_OP_CASE = 1u << 1,              /* PATCH op "Add"/"Replace"/"Remove" */
    SCIM_COMPAT_MEMBER_VALUE_REMOVE = 1u << 2,  /* remove path "members" with a value array */
    SCIM_COMPAT_CREATE_ON_FILTER_PATH = 1u << 3,/* add/replace on attr[filter].sub with no match */
    SCIM_COMPAT_NOPATH_DOTTED_KEYS = 1u << 4,   /* no-path value keys "name.givenName"/URN paths */
    SCIM_COMPAT_UNQUOTED_FILTER_VALUE = 1u << 5,/* externalId eq jyoung */
    SCIM_COMPAT_SERVICE_CONFIGURATION = 1u << 6,/* GET /serviceConfiguration */
    SCIM_COMPAT_ENDPOINT_CASE = 1u << 7,        /* /users, trailing slash */
    SCIM_COMPAT_EMPTY_OPERATIONS = 1u << 8,     /* "Operations": [] */
    SCIM_COMPAT_ADD_REPLACES_SINGLE = 1u << 9,  /* add on a single-valued attribute with a value */
    SCIM_COMPAT_MEMBER_BARE_STRING = 1u << 10,  /* members: ["id"] instead of [{"value":"id"}] */
    SCIM_COMPAT_UNKNOWN_MEMBER_SKIPPED = 1u << 11, /* a member id that does not exist is skipped */
    SCIM_COMPAT_MEMBER_DISPLAYNAME = 1u << 12,  /* member "displayName" instead of "display" */
    SCIM_COMPAT_URN_DOT_SEPARATOR = 1u << 13,   /* urn:...:User.manager */
    SCIM_COMPAT_MANAGER_STRING = 1u << 14,      /* manager as a string or a one-element array */
    SCIM_COMPAT_INVALID_ATTRIBUTES_PARAM = 1u << 15, /* attributes=emails[type eq "work"] ignored */
    SCIM_COMPAT_UNKNOWN_SCHEMA_URN = 1u << 16,  /* unknown URIs in "schemas" ignored */
    SCIM_COMPAT_READONLY_INPUT_IGNORED = 1u << 17, /* id/meta/groups/unknown attrs in input */
    SCIM_COMPAT_START_INDEX_ZERO = 1u << 18,    /* startIndex < 1 treated as 1 */
    SCIM_COMPAT_PLUS_AS_SPACE = 1u << 19,       /* '+' in the query string decoded as a space */
    SCIM_COMPAT_PATCH_ID_IN_VALUE = 1u << 20,   /* no-path value carries the resource's own id */
};

/* The name of a single behaviour ("string_boolean"), or NULL. */
const char *scim_compat_name(uint32_t bit);
/* Parses a comma-separated list of behaviour names, or "all", into a mask. Returns -1 (and the
 * first unknown name in *bad, at most badlen bytes) when a name is unknown. */
int scim_compat_parse(const char *list, uint32_t *mask, char *bad, size_t badlen);
/* Writes the comma-separated names of the bits in `mask` into `out` ("" when none). */
void scim_compat_names(uint32_t mask, char *out, size_t outlen);

#endif
