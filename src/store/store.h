/* The store: the one interface through which scimd reads and writes its data. Backends (SQLite
 * now, PostgreSQL next) implement `struct scim_store_ops` (store_impl.h); callers see only
 * these functions.
 *
 * Every row belongs to a tenant; every call names the tenant it acts for. All functions are
 * thread-safe (a backend keeps a pool of connections). Every write is one transaction: a call
 * either fully succeeds or leaves the store unchanged.
 *
 * Errors follow the err.h convention; backends translate driver failures at this boundary:
 * a UNIQUE violation becomes 409 uniqueness, a missing row 404, a version mismatch 412,
 * anything else 500 with the driver's text in err->log only. */
#ifndef SCIM_STORE_STORE_H
#define SCIM_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "scim/filter.h"
#include "scim/schema.h"

struct scim_store;

struct scim_store_opts {
    const struct scim_registry *reg; /* used to compile filters and sort keys */
    int pool_size;                   /* connections; 0 = default (8) */
    int busy_timeout_ms;             /* SQLite: wait for locks this long; 0 = default (10000) */
};

/* Opens (creating and migrating as needed) the store named by `uri`: a file path,
 * "sqlite:PATH", "sqlite::memory:" (tests), or a libpq URI "postgresql://..." / "postgres://...".
 * While a PostgreSQL server cannot be reached, operations fail with 503 (retry later). */
int scim_store_open(const char *uri, const struct scim_store_opts *opts, struct scim_store **out,
                    struct scim_err *err);
void scim_store_free(struct scim_store **st);
/* "sqlite" or "postgresql". */
const char *scim_store_backend(const struct scim_store *st);

/* --- tenants ------------------------------------------------------------------------- */

/* The id of the tenant named "default", created if missing. */
int scim_store_tenant_default(struct scim_store *st, int64_t *tenant_id, struct scim_err *err);

/* --- tokens -------------------------------------------------------------------------- */

struct scim_token {
    int64_t id;
    int64_t tenant_id;
    char name[128];
    char scopes[256];    /* space-separated: "scim:read scim:write admin" */
    int64_t created_us;
    int64_t last_used_us; /* 0 = never */
    int64_t expires_us;   /* 0 = never */
};

/* Stores a new token (only its hash). 409 uniqueness if the tenant has a live token of that name. */
int scim_store_token_create(struct scim_store *st, int64_t tenant_id, const char *name,
                            const unsigned char hash[32], const char *scopes, int64_t expires_us,
                            struct scim_err *err);
/* Finds the live (not revoked, not expired at `now_us`) token with this hash; 401 otherwise. */
int scim_store_token_find(struct scim_store *st, const unsigned char hash[32], int64_t now_us,
                          struct scim_token *out, struct scim_err *err);
/* Records a use (last-used time). */
int scim_store_token_touch(struct scim_store *st, int64_t token_id, int64_t now_us,
                           struct scim_err *err);
/* Live tokens of a tenant: array of {"name","scopes","created","lastUsed"?,"expires"?}. */
int scim_store_token_list(struct scim_store *st, int64_t tenant_id, json_t **out,
                          struct scim_err *err);
/* Revokes the live token `name`; 404 if there is none. */
int scim_store_token_revoke(struct scim_store *st, int64_t tenant_id, const char *name,
                            struct scim_err *err);
/* Number of live tokens of a tenant. */
int scim_store_token_count(struct scim_store *st, int64_t tenant_id, int64_t *n,
                           struct scim_err *err);

/* --- resources ------------------------------------------------------------------------- */

/* Flags for get/list/update/create output. */
#define SCIM_STORE_MEMBERS 0x1u      /* groups: include "members" in the output */
#define SCIM_STORE_GROUPS 0x2u       /* users: include the derived "groups" in the output */
#define SCIM_STORE_LOAD_MEMBERS 0x4u /* update: pass current members to the callback */
#define SCIM_STORE_NO_OUTPUT 0x8u    /* update/create: do not build the resulting resource */

/* Resources leave the store as full SCIM objects: "schemas" (core + extensions present), "id",
 * the doc attributes, "meta" {resourceType, created, lastModified, version: W/"<n>"}, and
 * members/groups when asked ({"value","display","type"}). meta.location and "$ref" are added by
 * the caller (scim_resource_finish). */

/* Creates a resource from a normalised doc (scim_input.doc) and, for groups, its initial members
 * (array of {"value","display"?}; ids that do not exist are skipped and counted in
 * *skipped_members when given). userName is unique per tenant, case-insensitively: 409
 * uniqueness. `password_hash` may be NULL. On success *out is the new resource (unless
 * SCIM_STORE_NO_OUTPUT). */
int scim_store_create(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind, json_t *doc,
                      json_t *members, const char *password_hash, unsigned flags, json_t **out,
                      int *skipped_members, struct scim_err *err);

/* Reads one resource; 404 if no such id in this tenant and type. */
int scim_store_get(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind, const char *id,
                   unsigned flags, json_t **out, struct scim_err *err);

/* What an update callback asks the store to write. */
struct scim_store_change {
    bool modified;           /* false: nothing to write (the version is not bumped) */
    json_t *doc;             /* the new doc (full attribute set, stolen by the store); NULL = unchanged */
    const char *password_hash; /* new password hash, or NULL to keep */
    bool members_clear;      /* remove all members before adding */
    json_t *members_add;     /* array of {"value","display"?} (borrowed); unknown ids skipped */
    json_t *members_remove;  /* array of id strings (borrowed); absent ids ignored */
    int skipped_members;     /* set by the store: member ids to add that did not exist */
};

/* Called by scim_store_update inside its transaction with the current resource (as scim_store_get
 * would return it, with members when SCIM_STORE_LOAD_MEMBERS). It may modify `current` freely (it
 * is a private copy) and fills `chg`. Returning -1 (with err filled: 400, 412, ...) rolls back. */
typedef int (*scim_store_update_fn)(void *ctx, json_t *current, struct scim_store_change *chg,
                                    struct scim_err *err);

/* Read-modify-write of one resource in one transaction, serialised against other writers of the
 * same resource (and checked against the version read, so concurrent updates never lose one).
 * Bumps meta.version and meta.lastModified when something changed (membership changes included).
 * On success *out is the resulting resource (unless SCIM_STORE_NO_OUTPUT). 404 if absent;
 * 409 uniqueness on a userName clash. */
int scim_store_update(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                      const char *id, unsigned flags, scim_store_update_fn fn, void *ctx,
                      json_t **out, struct scim_err *err);

/* Deletes a resource and its memberships (both as group and as member). `expected_version` >= 0
 * makes the delete conditional (412 if the version differs); -1 = unconditional. 404 if absent. */
int scim_store_delete(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                      const char *id, int64_t expected_version, struct scim_err *err);

struct scim_store_query {
    const struct scim_filter *filter;    /* NULL = all */
    const struct scim_attrpath *sort_by; /* NULL = creation order */
    bool descending;
    int64_t start_index;                 /* 1-based, >= 1 */
    int64_t count;                       /* page size >= 0; 0 = only totalResults */
    unsigned flags;                      /* SCIM_STORE_MEMBERS / SCIM_STORE_GROUPS */
    /* Keyset (cursor) paging, RFC 9865: with cursor_mode, start_index and sort_by are ignored
     * and the page is in creation (primary key) order: the first `count` matches with
     * pk > after_pk, or, when before_pk > 0, the last `count` matches with pk < before_pk
     * (still returned in ascending order). No OFFSET: a page costs O(count). */
    bool cursor_mode;
    int64_t after_pk;
    int64_t before_pk;
};

struct scim_store_page {
    int64_t total;     /* all matches */
    json_t *resources; /* array, owned by the caller */
    /* cursor_mode only: the primary keys of the first and last resource of the page (0 when
     * empty), and whether more matches lie beyond the page in the direction read (after
     * last_pk going forward, before first_pk going backward). */
    int64_t first_pk, last_pk;
    bool more;
};

/* Lists resources matching a filter. Filters compile to parameterised SQL; an attribute the
 * resource type does not have, or an operator that does not fit the attribute's type, is
 * 400 invalidFilter. Order is stable (sort key, then creation order). */
int scim_store_list(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                    const struct scim_store_query *q, struct scim_store_page *out,
                    struct scim_err *err);

/* Parses an ETag of the form W/"<n>" or "<n>" into n; -1 if it is not one. */
int64_t scim_store_etag_version(const char *etag);

#endif
