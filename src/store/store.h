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

/* Longest resource id the store keeps: generated ids are 36-character UUIDs; ids given to
 * `scimctl import` / `db import` may be up to this long. */
#define SCIM_STORE_ID_MAX 64

struct scim_store_opts {
    const struct scim_registry *reg; /* used to compile filters and sort keys */
    int pool_size;                   /* connections; 0 = default (8) */
    int busy_timeout_ms;             /* SQLite: wait for locks this long; 0 = default (10000) */
    bool sqlite_sync_normal;         /* SQLite: synchronous=NORMAL instead of FULL (the default).
                                      * Both keep every acknowledged write across a crash of the
                                      * process (kill -9); after a power loss or OS crash NORMAL
                                      * may lose the last commits (never corrupts), FULL does not.
                                      * NORMAL skips the WAL fsync at each commit. */
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

/* Per-tenant provisioning policies (docs/policies.md), stored as one JSON object per tenant.
 * Parsed once per request and passed to the store calls that enforce them. */
enum scim_username_changes { SCIM_USERNAME_ALLOW, SCIM_USERNAME_REJECT };
enum scim_email_changes { SCIM_EMAIL_ALLOW, SCIM_EMAIL_IGNORE, SCIM_EMAIL_REJECT };
enum scim_delete_mode { SCIM_DELETE_HARD, SCIM_DELETE_DEACTIVATE };

struct scim_tenant_settings {
    bool scim_enabled;         /* default true */
    bool allow_manual_updates; /* default false */
    bool link_existing_users;  /* default false */
    bool link_existing_groups; /* default false */
    bool unique_emails;        /* default false */
    enum scim_username_changes username_changes;
    enum scim_email_changes email_changes;
    enum scim_delete_mode delete_mode;
    json_t *default_groups;    /* owned array of group id strings (never NULL after init/parse) */
};

/* Fills `s` with the defaults; 0, or -1 (500) on out of memory. */
int scim_tenant_settings_init(struct scim_tenant_settings *s, struct scim_err *err);
void scim_tenant_settings_release(struct scim_tenant_settings *s);
/* Applies the keys of `patch` (a JSON object) to `s`, checking every value first: an unknown key
 * or a bad value is 400 naming it and leaves `s` unchanged. Parsing stored text is the same
 * operation applied to the defaults. */
int scim_tenant_settings_apply(struct scim_tenant_settings *s, json_t *patch, struct scim_err *err);
/* Parses stored settings text (NULL or "" = defaults) into `s` (initialised here). */
int scim_tenant_settings_parse(const char *text, struct scim_tenant_settings *s,
                               struct scim_err *err);
/* All settings as a JSON object (defaults filled); new reference or NULL on out of memory. */
json_t *scim_tenant_settings_json(const struct scim_tenant_settings *s);

#define SCIM_TENANT_NAME_MAX 64

struct scim_tenant {
    int64_t id;
    char name[SCIM_TENANT_NAME_MAX];
    int64_t created_us;
    bool disabled;
    struct scim_tenant_settings settings; /* owned: scim_tenant_release() */
};

void scim_tenant_release(struct scim_tenant *t);
/* true if `name` is a valid tenant name: 1-63 characters of [a-z0-9-], not starting with '-'. */
bool scim_tenant_name_valid(const char *name);

/* Creates a tenant with default settings; 400 on a bad name, 409 uniqueness if it exists.
 * On success *out (may be NULL) is the new tenant. */
int scim_store_tenant_create(struct scim_store *st, const char *name, struct scim_tenant *out,
                             struct scim_err *err);
/* Reads a tenant by name (when `name` is not NULL, case-sensitive) or else by id; 404 if absent.
 * *out is filled (settings parsed) and must be released with scim_tenant_release(). */
int scim_store_tenant_get(struct scim_store *st, int64_t id, const char *name,
                          struct scim_tenant *out, struct scim_err *err);
/* All tenants, by creation order: array of {"id": int, "name": string}. */
int scim_store_tenant_list(struct scim_store *st, json_t **out, struct scim_err *err);
/* Updates a tenant: `disabled` < 0 keeps it; `settings` NULL keeps them (else stored as given:
 * the full settings object). 404 if absent. */
int scim_store_tenant_update(struct scim_store *st, int64_t id, int disabled,
                             const struct scim_tenant_settings *settings, struct scim_err *err);
/* Deletes a tenant and every row of it (tokens, users, groups, memberships, e-mails,
 * settings) in one transaction; 404 if absent. Refusing to delete "default" is the caller's. */
int scim_store_tenant_delete(struct scim_store *st, int64_t id, struct scim_err *err);
/* Counts for the admin view: users and groups (deprovisioned users included). */
int scim_store_tenant_stats(struct scim_store *st, int64_t id, int64_t *users, int64_t *groups,
                            struct scim_err *err);

/* A named 32-byte secret shared by every scimd node on this database (for example the key that
 * authenticates cursors), created at random on first use. */
int scim_store_secret(struct scim_store *st, const char *name, unsigned char out[32],
                      struct scim_err *err);

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
/* The application's (admin) view instead of the IdP's: deprovisioned rows are visible (get,
 * update, delete, list); the resource carries "_state": {"origin", "managedBy" (string or
 * null), "deprovisioned": bool}; a group's "members" lists every membership with its "origin"
 * ("scim" | "local" | "default"); a user's "groups" lists its direct groups with their
 * "origin"; member additions of an update are of origin "local" and removals touch any origin.
 * Without this flag (the SCIM view): deprovisioned rows do not exist (404, absent from lists,
 * not addable as members), members show only origin "scim" memberships of live resources, and
 * SCIM member changes (clear/add/remove) touch only origin "scim" memberships (an add of a
 * pair that exists with another origin turns it into "scim"). */
#define SCIM_STORE_ADMIN 0x10u

/* Write options of the policy-aware calls (create_ex, update_ex, delete_ex). NULL = defaults:
 * origin "scim", no managedBy, default settings. */
struct scim_store_wopts {
    const struct scim_tenant_settings *settings; /* NULL = defaults */
    const char *origin;     /* create: "scim" (NULL) or "local" */
    const char *managed_by; /* create: the token name recorded for SCIM-created rows */
    /* out (create_ex): the POST linked an unsynced resource / revived a deprovisioned user */
    bool linked;
    bool revived;
};

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

/* Like scim_store_create, enforcing the tenant's settings in the same transaction:
 * - unique_emails: a user whose primary (or only) e-mail equals, case-insensitively, that of
 *   another non-deprovisioned user of the tenant is 409 uniqueness;
 * - a SCIM create (origin "scim") of a userName held by a deprovisioned user revives it: same
 *   id, doc replaced by `doc`, SCIM-managed again, not deprovisioned (w->revived);
 * - link_existing_users: a SCIM create whose userName (case-insensitive), or else primary
 *   e-mail, matches a local user turns it SCIM-managed, keeping its id, with `doc` merged over
 *   its attributes (w->linked); link_existing_groups: the same for groups by displayName;
 * - default_groups: a user created (or linked or revived) by SCIM joins these groups with
 *   membership origin "default" (ids that are not groups are skipped).
 * Rows get origin w->origin and managed_by w->managed_by ("local" rows: none). */
int scim_store_create_ex(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                         json_t *doc, json_t *members, const char *password_hash,
                         struct scim_store_wopts *w, unsigned flags, json_t **out,
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

/* scim_store_update with the tenant's settings (unique_emails is checked on the new doc). */
int scim_store_update_ex(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                         const char *id, unsigned flags, scim_store_update_fn fn, void *ctx,
                         const struct scim_store_wopts *w, json_t **out, struct scim_err *err);

/* scim_store_delete with the tenant's settings and `flags` (SCIM_STORE_ADMIN): in the SCIM view
 * with delete_mode "deactivate", a user is not deleted but deprovisioned (active false,
 * invisible to SCIM, its origin-"scim" memberships removed, version bumped). Groups and the
 * admin view always delete. */
int scim_store_delete_ex(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                         const char *id, int64_t expected_version, unsigned flags,
                         const struct scim_store_wopts *w, struct scim_err *err);

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
    unsigned flags;                      /* SCIM_STORE_MEMBERS / SCIM_STORE_GROUPS / _ADMIN */
    int state;                           /* with SCIM_STORE_ADMIN: a SCIM_STORE_STATE_* */
    /* Keyset (cursor) paging, RFC 9865: with cursor_mode, start_index and sort_by are ignored
     * and the page is in creation (primary key) order: the first `count` matches with
     * pk > after_pk, or, when before_pk > 0, the last `count` matches with pk < before_pk
     * (still returned in ascending order). No OFFSET: a page costs O(count). */
    bool cursor_mode;
    int64_t after_pk;
    int64_t before_pk;
};

/* Admin list states; without SCIM_STORE_ADMIN the state is always "not deprovisioned". */
#define SCIM_STORE_STATE_ALL 0           /* everything, deprovisioned included */
#define SCIM_STORE_STATE_ACTIVE 1        /* not deprovisioned, active true or absent */
#define SCIM_STORE_STATE_INACTIVE 2      /* not deprovisioned, active false */
#define SCIM_STORE_STATE_DEPROVISIONED 3

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

/* --- bulk import of SCIM resources (scimctl import; `db import` is scim_store_import) --- */

/* One resource of an import batch. Inputs are borrowed; outputs are set by scim_store_import_batch. */
struct scim_store_import_item {
    enum scim_rtype kind;
    const char *id;            /* the id to keep (e.g. from the system migrated from), or NULL
                                * for a new UUID; must be unused by any User or Group */
    json_t *doc;               /* normalised doc (scim_input.doc) */
    json_t *members;           /* groups: array of {"value": id} or {"userName": name}, each
                                * with an optional "display"; NULL = none */
    const char *password_hash; /* or NULL */
    /* out */
    char new_id[68];           /* the id written */
    int skipped_members;       /* members that named no existing resource (or the group) */
    bool failed;               /* this item was not written; `err` says why (409 on a clash) */
    struct scim_err err;
};

/* Writes `n` resources in ONE transaction, much faster than n scim_store_create calls. An item
 * that cannot be written (userName or id in use: 409) is marked failed and the others go on;
 * -1 (store failure) rolls back the whole batch. Members resolve against everything committed
 * and the earlier items of the same batch, by id or (users) by userName. No output is built.
 * A backend without bulk import answers 501. */
int scim_store_import_batch(struct scim_store *st, int64_t tenant_id, struct scim_store_import_item *items,
                      size_t n, struct scim_err *err);

/* Parses an ETag of the form W/"<n>" or "<n>" into n; -1 if it is not one. */
int64_t scim_store_etag_version(const char *etag);

/* --- provisioning log (issue 5) ------------------------------------------------------ */

/* One SCIM request (or one operation of a Bulk request) as recorded in the provisioning log.
 * Never holds a token, a password or a request body. Text fields are NUL-terminated and
 * truncated to their size; "" = none. */
struct scim_log_entry {
    int64_t id;          /* assigned by the store (ignored by log_append_batch) */
    int64_t time_us;     /* when the request arrived */
    int64_t tenant_id;
    int64_t latency_us;
    int status;          /* HTTP status answered */
    int bulk_index;      /* 0: a request; n >= 1: operation n of the Bulk request request_id */
    char request_id[40];
    char token[128];     /* the token's name */
    char client[16];     /* "entra", "okta", ... "unknown" (api/client_id.c) */
    char method[8];
    char path[256];      /* as sent, without the query string */
    char resource_type[8]; /* "User", "Group" or "" */
    char resource_id[72];
    char user_name[128];    /* userName of the user involved, if known */
    char display_name[128]; /* displayName of the resource involved, if known */
    char scim_type[24];  /* scimType of the Error answered */
    char detail[256];    /* detail of the Error answered */
    char compat[256];    /* compatibility behaviours applied, comma-separated */
};

/* Appends `n` entries in one transaction. */
int scim_store_log_append_batch(struct scim_store *st, const struct scim_log_entry *const *entries,
                                size_t n, struct scim_err *err);

struct scim_log_query {
    int64_t tenant_id;
    int status_min, status_max;  /* inclusive; 0 = no bound */
    const char *resource_type;   /* NULL = any */
    const char *resource_id;     /* NULL = any */
    const char *user;            /* userName or displayName, exact, case-insensitive; NULL = any */
    const char *token;           /* token name; NULL = any */
    const char *client;          /* NULL = any */
    int64_t since_us, until_us;  /* inclusive time bounds; 0 = no bound */
    int64_t after_id;            /* > 0: only entries after it in the order read (id > after_id
                                    ascending, id < after_id descending) */
    bool ascending;              /* default newest first */
    int64_t offset;              /* entries to skip (startIndex - 1) */
    int64_t count;               /* page size */
};

/* Reads the entries matching `q`: *out (malloc'ed array of *n entries, free() it) and *total
 * (all matches of q, after_id included, offset and count not). */
int scim_store_log_query(struct scim_store *st, const struct scim_log_query *q,
                         struct scim_log_entry **out, size_t *n, int64_t *total,
                         struct scim_err *err);

/* Deletes entries older than `before_us` (0 = none by age) and, per tenant, all but the newest
 * `max_per_tenant` (0 = no limit). *deleted (may be NULL) = rows removed. */
int scim_store_log_prune(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                         int64_t *deleted, struct scim_err *err);
/* --- change feed and webhooks (docs/operations.md, "Change feed and webhooks") -------------- */

/* Every committed write appends its events (store/events.h) to the tenant's feed in the same
 * transaction, numbered by a per-tenant counter: seq 1, 2, 3, ... without gaps. */

#define SCIM_EVENTS_MAX_COUNT 1000

/* The events of a tenant with seq > after, in order, at most `count` (clamped to 1..1000):
 * *out is an array of event objects. *last_seq (may be NULL) is the tenant's latest seq.
 * When events after `after` were pruned it answers from the oldest kept one (webhook delivery
 * skips them); readers that must be told use scim_store_events_read (410). */
int scim_store_events_list(struct scim_store *st, int64_t tenant_id, int64_t after, int64_t count,
                           json_t **out, int64_t *last_seq, struct scim_err *err);
/* scim_store_events_list, but when no event follows `after` it waits up to wait_ms for one:
 * woken by commits of this process, and polling the database every second for commits of
 * other processes. Returns an empty array when the wait expires. */
int scim_store_events_wait(struct scim_store *st, int64_t tenant_id, int64_t after, int64_t count,
                           int64_t wait_ms, json_t **out, int64_t *last_seq, struct scim_err *err);
/* Waits up to wait_ms until this process commits an event (of any tenant) after generation
 * *gen (0 at first), then stores the current generation in *gen. For the delivery thread. */
void scim_store_events_wait_any(struct scim_store *st, uint64_t *gen, int64_t wait_ms);
/* Ends every wait at once, now and later (shutdown). */
void scim_store_events_shutdown(struct scim_store *st);

/* Retention of the change feed (docs/operations.md, "Retention of the change feed"). Deletes,
 * per tenant, the oldest events: those older than `before_us` (0 = none by age) and all but the
 * newest `max_per_tenant` (0 = no limit); an event goes when either rule selects it. Only a
 * prefix of the feed is ever deleted (the events up to a cut seq), so the kept events stay
 * gap-free, and seq numbering continues after the newest event even when none is kept. Never
 * deleted: events an enabled webhook has not yet delivered (seq > its lastDeliveredSeq), even
 * past the retention (a disabled webhook holds nothing). The rows go in slices of a few
 * thousand, each its own short write transaction, located through the (tenant_id, seq) key.
 * *deleted (may be NULL) = events removed. */
int scim_store_events_prune(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                            int64_t *deleted, struct scim_err *err);

/* For readers that must not miss events (the pull API): scim_store_events_wait (or _list when
 * wait_ms is 0), but when events after `after` have been pruned (after < oldest kept seq - 1,
 * or nothing is kept and after < the latest seq) it fails with 410, a detail naming the
 * position and the oldest available seq, and *oldest_seq (may be NULL) = that seq (the latest
 * seq + 1 when no event is kept). *last_seq (may be NULL) is set in both cases. */
int scim_store_events_read(struct scim_store *st, int64_t tenant_id, int64_t after, int64_t count,
                           int64_t wait_ms, json_t **out, int64_t *last_seq, int64_t *oldest_seq,
                           struct scim_err *err);

/* Webhooks: JSON objects {"id", "url", "eventTypes": [...], "enabled", "created",
 * "delivery": {"lastDeliveredSeq", "latestSeq", "pending", "attempts", "nextAttempt",
 * "lastAttempt", "lastSuccess", "lastStatus", "lastError", "leased"}}. The secret is
 * stored (it is needed to sign) but never returned. A new webhook starts after the tenant's
 * latest event: it receives what is committed after it was created. */
int scim_store_webhook_create(struct scim_store *st, int64_t tenant_id, const char *url,
                              const char *secret, json_t *event_types, bool enabled, json_t **out,
                              struct scim_err *err);
int scim_store_webhook_list(struct scim_store *st, int64_t tenant_id, json_t **out,
                            struct scim_err *err);
/* 404 if the tenant has no webhook `id`. */
int scim_store_webhook_get(struct scim_store *st, int64_t tenant_id, const char *id, json_t **out,
                           struct scim_err *err);
/* url / event_types / secret NULL and enabled < 0 keep the current value. */
int scim_store_webhook_update(struct scim_store *st, int64_t tenant_id, const char *id,
                              const char *url, json_t *event_types, const char *secret,
                              int enabled, json_t **out, struct scim_err *err);
int scim_store_webhook_delete(struct scim_store *st, int64_t tenant_id, const char *id,
                              struct scim_err *err);

/* A claimed webhook (delivery). */
struct scim_webhook_job {
    int64_t pk, tenant_id;
    char id[40];
    char *url, *secret;  /* owned */
    json_t *event_types; /* owned */
    int64_t cursor;      /* last delivered (or skipped) seq */
    int64_t attempts;    /* failed attempts of the event after the cursor */
};
void scim_webhook_job_release(struct scim_webhook_job *job);
/* Leases one enabled webhook that is due (next attempt <= now) and has events after its
 * cursor, and whose lease is free or expired: the lease (owner, now + lease_us) is taken with
 * one conditional UPDATE, so two nodes never hold it at once. 1 claimed, 0 none, -1 error. */
int scim_store_webhook_claim(struct scim_store *st, const char *owner, int64_t now_us,
                             int64_t lease_us, struct scim_webhook_job *job, struct scim_err *err);
/* Records progress of a leased webhook (only while `owner` holds the lease): the new cursor
 * (never moves back), attempts, next attempt time, the last HTTP status (0 = none) and error
 * (NULL = success: lastSuccess is set). lease_until_us > 0 extends the lease, 0 releases it.
 * 0; 1 if the lease was lost (nothing written); -1 error. */
int scim_store_webhook_progress(struct scim_store *st, const struct scim_webhook_job *job,
                                const char *owner, int64_t cursor, int64_t attempts,
                                int64_t next_attempt_us, int status, const char *error,
                                int64_t lease_until_us, struct scim_err *err);
/* Frees the leases held by earlier processes of this node: owners starting with `prefix`
 * (called once at start, so a restarted node resumes at once instead of waiting out its old
 * leases). */
int scim_store_webhook_release_leases(struct scim_store *st, const char *prefix,
                                      struct scim_err *err);

/* --- export and import (scimctl db export / db import) ------------------------------- */

/* The directory as records (JSON objects), each with a "type":
 *   {"type":"tenant","id","name","created","disabled","settings": text or null}
 *   {"type":"token","id","tenant_id","name","hash": hex,"scopes","created","last_used",
 *    "expires","revoked"}  (times in microseconds or null)
 *   {"type":"resource","pk","tenant_id","kind": "User"|"Group","id","created",
 *    "last_modified","version","password_hash","doc": object,"origin","managed_by",
 *    "deprovisioned"}
 *   {"type":"member","group_pk","member_pk","display","origin"}  (in insertion order)
 * Tenants come first, then tokens, resources and memberships, so that a record only refers to
 * earlier ones. The provisioning log, the change feed, webhooks and shared secrets are not
 * part of it. */
#define SCIM_STORE_EXPORT_VERSION 1

/* Called once per record (borrowed); a non-zero return stops the export with that value. */
typedef int (*scim_store_export_fn)(void *ctx, json_t *rec, struct scim_err *err);

/* Calls fn with every record of the directory, read from one snapshot. 501 when the backend
 * has no export. */
int scim_store_export(struct scim_store *st, scim_store_export_fn fn, void *ctx,
                      struct scim_err *err);

/* Loads `records` (an array of records as exported) in one transaction, keeping ids, primary
 * keys, times, versions, password hashes, origins and membership order; the indexed columns and
 * e-mail rows are derived from each doc as on any write. The database must hold no resources,
 * tokens or webhooks (409 otherwise); its (empty) tenants are replaced by the imported ones.
 * A malformed record is 400 naming its index. */
int scim_store_import(struct scim_store *st, json_t *records, struct scim_err *err);

#endif
