/* Schema registry: the RFC 7643 schemas (User, EnterpriseUser, Group) as data, plus resource
 * types, with case-insensitive lookup of schemas, attributes and sub-attributes.
 *
 * The registry is built once at start-up (scim_registry_new) and is read-only afterwards, so it
 * is shared by all threads without locking. Operator-declared extension schemas (issue 3) are
 * added with scim_registry_add_schema before the registry is used. */
#ifndef SCIM_SCIM_SCHEMA_H
#define SCIM_SCIM_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define SCIM_SCHEMA_USER "urn:ietf:params:scim:schemas:core:2.0:User"
#define SCIM_SCHEMA_GROUP "urn:ietf:params:scim:schemas:core:2.0:Group"
#define SCIM_SCHEMA_ENTERPRISE "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define SCIM_SCHEMA_SPC "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
#define SCIM_SCHEMA_RT "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
#define SCIM_SCHEMA_SCHEMA "urn:ietf:params:scim:schemas:core:2.0:Schema"
#define SCIM_MSG_LIST "urn:ietf:params:scim:api:messages:2.0:ListResponse"
#define SCIM_MSG_ERROR "urn:ietf:params:scim:api:messages:2.0:Error"
#define SCIM_MSG_PATCH "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#define SCIM_MSG_SEARCH "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
#define SCIM_MSG_BULK_REQ "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
#define SCIM_MSG_BULK_RESP "urn:ietf:params:scim:api:messages:2.0:BulkResponse"

enum scim_atype {
    SCIM_T_STRING,
    SCIM_T_BOOLEAN,
    SCIM_T_DECIMAL,
    SCIM_T_INTEGER,
    SCIM_T_DATETIME,
    SCIM_T_BINARY,
    SCIM_T_REFERENCE,
    SCIM_T_COMPLEX,
};

enum scim_mutability { SCIM_MUT_READWRITE, SCIM_MUT_READONLY, SCIM_MUT_IMMUTABLE, SCIM_MUT_WRITEONLY };
enum scim_returned { SCIM_RET_DEFAULT, SCIM_RET_ALWAYS, SCIM_RET_NEVER, SCIM_RET_REQUEST };
enum scim_uniqueness { SCIM_UNIQ_NONE, SCIM_UNIQ_SERVER, SCIM_UNIQ_GLOBAL };

struct scim_attr {
    const char *name;               /* canonical spelling, e.g. "userName" */
    enum scim_atype type;
    bool multi_valued;
    bool required;
    bool case_exact;
    enum scim_mutability mutability;
    enum scim_returned returned;
    enum scim_uniqueness uniqueness;
    const char *description;
    const char *const *canonical_values; /* NULL-terminated, or NULL */
    const char *const *reference_types;  /* NULL-terminated, or NULL (type reference only) */
    const struct scim_attr *sub_attrs;   /* complex only */
    size_t n_sub_attrs;
};

struct scim_schema {
    const char *id; /* URN */
    const char *name;
    const char *description;
    const struct scim_attr *attrs;
    size_t n_attrs;
};

struct scim_schema_ext {
    const struct scim_schema *schema;
    bool required;
};

enum scim_rtype { SCIM_RT_USER = 0, SCIM_RT_GROUP = 1 };
#define SCIM_RT_COUNT 2

struct scim_resource_type {
    enum scim_rtype kind;
    const char *id;          /* "User" */
    const char *name;        /* "User" */
    const char *endpoint;    /* "/Users" */
    const char *description; /* "User Account" */
    const struct scim_schema *schema; /* core schema */
    struct scim_schema_ext extensions[8];
    size_t n_extensions;
};

struct scim_registry;

/* Builds the registry with the built-in schemas and resource types. NULL on out of memory. */
struct scim_registry *scim_registry_new(void);
void scim_registry_free(struct scim_registry **reg);

/* All schemas, in publication order (User, EnterpriseUser, Group, then extensions). */
size_t scim_registry_schema_count(const struct scim_registry *reg);
const struct scim_schema *scim_registry_schema_at(const struct scim_registry *reg, size_t i);
/* A schema by URN (case-insensitive), or NULL. */
const struct scim_schema *scim_registry_schema(const struct scim_registry *reg, const char *urn);
/* The resource type of a kind; never NULL. */
const struct scim_resource_type *scim_registry_rt(const struct scim_registry *reg, enum scim_rtype kind);
/* The resource type by its name or endpoint ("User", "Users", "/Users"; case-insensitive), or NULL. */
const struct scim_resource_type *scim_registry_rt_find(const struct scim_registry *reg, const char *name);

/* An attribute of `schema` by name (case-insensitive), or NULL. */
const struct scim_attr *scim_schema_attr(const struct scim_schema *schema, const char *name);
/* A sub-attribute of a complex attribute by name (case-insensitive), or NULL. */
const struct scim_attr *scim_attr_sub(const struct scim_attr *attr, const char *name);

/* The common attributes every resource has (RFC 7643 §3.1): id, externalId, meta (with its
 * sub-attributes resourceType, created, lastModified, location, version). */
const struct scim_attr *scim_common_attr(const char *name);

/* Resolves an attribute reference for a resource type.
 * `urn` may be NULL (then the core schema, the common attributes, and finally the extensions are
 * searched in that order) or a schema URN that must be the core schema or one of the type's
 * extensions. `name` is the attribute, `sub` an optional sub-attribute name.
 * On success fills *schema_out (NULL for common attributes), *attr_out and *sub_out (NULL when
 * `sub` is NULL) and returns 0; returns -1 (no error struct: callers decide the scimType) when
 * nothing matches. */
int scim_resolve_attr(const struct scim_resource_type *rt, const char *urn, const char *name,
                      const char *sub, const struct scim_schema **schema_out,
                      const struct scim_attr **attr_out, const struct scim_attr **sub_out);

/* Splits a URN-qualified attribute reference such as
 * "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value" (or with a '.'
 * after the URN, "...:2.0:User.manager") into the schema URN it starts with (one the registry
 * knows, matched case-insensitively) and the remainder ("manager.value"). Returns the length of
 * the URN prefix and sets *rest to the character after the separator; returns 0 if `s` does not
 * start with a known schema URN. A bare URN (nothing after it) also matches: *rest is then "". */
size_t scim_registry_split_urn(const struct scim_registry *reg, const char *s, const char **rest);

/* Adds an operator-declared extension schema, attached to the resource type `kind`.
 * The registry takes ownership of `schema` (allocated with malloc, strings included; freed with
 * the registry). Returns -1 with `err` filled if the URN exists already (409 uniqueness) or the
 * resource type has 8 extensions already; on failure the caller keeps ownership. */
int scim_registry_add_schema(struct scim_registry *reg, enum scim_rtype kind,
                             struct scim_schema *schema, bool required, struct scim_err *err);
/* Frees a malloc-built schema as described for scim_registry_add_schema (every string, the
 * attribute arrays, canonicalValues/referenceTypes arrays, sub-attributes). NULL is ignored. */
void scim_schema_free(struct scim_schema *schema);

/* Names for the enums as written in /Schemas ("string", "readWrite", "default", "none"). */
const char *scim_atype_name(enum scim_atype t);
const char *scim_mutability_name(enum scim_mutability m);
const char *scim_returned_name(enum scim_returned r);
const char *scim_uniqueness_name(enum scim_uniqueness u);

#endif
