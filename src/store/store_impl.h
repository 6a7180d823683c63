/* The backend interface behind store.h (after git's ref storage backends).
 *
 * A backend defines one `struct scim_store_ops` table and a struct of its own that embeds
 * `struct scim_store` as its FIRST member, so a `struct scim_store *` can be cast to the
 * backend's struct and back. store.c only dispatches: argument checks common to all backends
 * live there, everything else (transactions, SQL, translation of driver errors) lives in the
 * backend. Each operation has the contract of the store.h function of the same name. */
#ifndef SCIM_STORE_STORE_IMPL_H
#define SCIM_STORE_STORE_IMPL_H

#include "store/store.h"

/* One resource row as both backends read it (the doc travels separately as text). */
struct scim_store_row {
    int64_t pk;
    char id[SCIM_STORE_ID_MAX + 1];
    int64_t created, last_modified, version;
    char origin[16];
    char managed_by[128];
    bool deprovisioned;
};

/* The backend-independent part of a stored resource as SCIM JSON: schemas (core + each extension
 * present), id, the doc attributes, meta, and with `admin` the "_state" object. Backends add
 * members/groups themselves. `backend` names the backend in log-only errors. */
int scim_store_row_json(const char *backend, enum scim_rtype kind, const struct scim_store_row *r,
                        const char *doc_text, bool admin, json_t **out, struct scim_err *err);

struct scim_store_ops {
    const char *name; /* "sqlite", "postgresql" */
    void (*free)(struct scim_store *st);

    int (*tenant_default)(struct scim_store *st, int64_t *tenant_id, struct scim_err *err);

    /* Optional: a named 32-byte secret shared by every node on the database (scim_store_secret).
     * Insert `candidate` if the name is new (keeping an existing value), then return the stored
     * value. The table is created on first use (CREATE TABLE IF NOT EXISTS secrets(name TEXT
     * PRIMARY KEY, value BLOB/BYTEA NOT NULL)), so no migration number is needed. */
    int (*secret)(struct scim_store *st, const char *name, const unsigned char candidate[32],
                  unsigned char out[32], struct scim_err *err);

    int (*token_create)(struct scim_store *st, int64_t tenant_id, const char *name,
                        const unsigned char hash[32], const char *scopes, int64_t expires_us,
                        struct scim_err *err);
    int (*token_find)(struct scim_store *st, const unsigned char hash[32], int64_t now_us,
                      struct scim_token *out, struct scim_err *err);
    int (*token_touch)(struct scim_store *st, int64_t token_id, int64_t now_us,
                       struct scim_err *err);
    int (*token_list)(struct scim_store *st, int64_t tenant_id, json_t **out,
                      struct scim_err *err);
    int (*token_revoke)(struct scim_store *st, int64_t tenant_id, const char *name,
                        struct scim_err *err);
    int (*token_count)(struct scim_store *st, int64_t tenant_id, int64_t *n,
                       struct scim_err *err);

    int (*create)(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind, json_t *doc,
                  json_t *members, const char *password_hash, unsigned flags, json_t **out,
                  int *skipped_members, struct scim_err *err);
    int (*get)(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind, const char *id,
               unsigned flags, json_t **out, struct scim_err *err);
    int (*update)(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind, const char *id,
                  unsigned flags, scim_store_update_fn fn, void *ctx, json_t **out,
                  struct scim_err *err);
    int (*del)(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind, const char *id,
               int64_t expected_version, struct scim_err *err);
    int (*list)(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                const struct scim_store_query *q, struct scim_store_page *out,
                struct scim_err *err);
    /* Optional (NULL = 501 from scim_store_import_batch). Both backends have it: one transaction
     * per batch (SQLite: prepared inserts; PostgreSQL: multi-row INSERTs with bound values). */
    int (*import_batch)(struct scim_store *st, int64_t tenant_id, struct scim_store_import_item *items,
                  size_t n, struct scim_err *err);

    /* Tenants and policies (issue 4). A backend may leave these NULL: store.c then answers
     * 501 (the _ex calls fall back to the plain ones when no policy is asked for). */
    int (*tenant_create)(struct scim_store *st, const char *name, int64_t *id,
                         struct scim_err *err);
    /* Fills id, name, created_us, disabled and *settings_text (malloc'ed, may be NULL). */
    int (*tenant_get)(struct scim_store *st, int64_t id, const char *name, struct scim_tenant *out,
                      char **settings_text, struct scim_err *err);
    int (*tenant_list)(struct scim_store *st, json_t **out, struct scim_err *err);
    /* settings_text NULL = keep */
    int (*tenant_update)(struct scim_store *st, int64_t id, int disabled,
                         const char *settings_text, struct scim_err *err);
    int (*tenant_delete)(struct scim_store *st, int64_t id, struct scim_err *err);
    int (*tenant_stats)(struct scim_store *st, int64_t id, int64_t *users, int64_t *groups,
                        struct scim_err *err);
    int (*create_ex)(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind, json_t *doc,
                     json_t *members, const char *password_hash, struct scim_store_wopts *w,
                     unsigned flags, json_t **out, int *skipped_members, struct scim_err *err);
    int (*update_ex)(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                     const char *id, unsigned flags, scim_store_update_fn fn, void *ctx,
                     const struct scim_store_wopts *w, json_t **out, struct scim_err *err);
    int (*delete_ex)(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                     const char *id, int64_t expected_version, unsigned flags,
                     const struct scim_store_wopts *w, struct scim_err *err);

    /* Provisioning log (issue 5); NULL = not supported (501). The SQLite backend implements
     * them (sqlite.c, table provisioning_log, migration 3). NOTE for the PostgreSQL backend
     * (dev-pg): add the same table and indexes (tenant_id, id), (time), (tenant_id, user_name
     * case-insensitive) and implement these three with the contracts of store.h. */
    int (*log_append_batch)(struct scim_store *st, const struct scim_log_entry *const *entries,
                            size_t n, struct scim_err *err);
    int (*log_query)(struct scim_store *st, const struct scim_log_query *q,
                     struct scim_log_entry **out, size_t *n, int64_t *total, struct scim_err *err);
    int (*log_prune)(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                     int64_t *deleted, struct scim_err *err);
    /* Change feed and webhooks (store.h). Every write above must insert its events
     * (store/events.h computes them) in its own transaction, numbering them from the per-tenant
     * counter, and call scim_store_events_notify() after the commit. A backend may leave these
     * NULL: store.c then answers 501.
     * PostgreSQL (dev-pg, written in parallel): same tables as SQLite migration 4 (events
     * (tenant_id, seq) primary key; event_seq(tenant_id primary key, last_seq); webhooks with
     * delivered_seq/attempts/next_attempt/lease_owner/lease_expires), the counter bumped with
     * "INSERT INTO event_seq ... ON CONFLICT (tenant_id) DO UPDATE SET last_seq =
     * event_seq.last_seq + $n RETURNING last_seq" inside the write transaction (the row lock
     * serialises writers of a tenant, which keeps seq gap-free and commit-ordered), and the claim
     * as one "UPDATE webhooks SET lease_owner = $1, lease_expires = $2 WHERE pk = (SELECT ...
     * LIMIT 1 FOR UPDATE SKIP LOCKED) AND (lease_owner IS NULL OR lease_expires <= $3)
     * RETURNING ...". */
    int (*events_list)(struct scim_store *st, int64_t tenant_id, int64_t after, int64_t count,
                       json_t **out, int64_t *last_seq, struct scim_err *err);
    /* Optional (NULL = 501): scim_store_events_prune. */
    int (*events_prune)(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                        int64_t *deleted, struct scim_err *err);
    int (*webhook_create)(struct scim_store *st, int64_t tenant_id, const char *id,
                          const char *url, const char *secret, const char *event_types,
                          bool enabled, struct scim_err *err);
    int (*webhook_list)(struct scim_store *st, int64_t tenant_id, const char *id, json_t **out,
                        struct scim_err *err); /* id NULL = all, else that one (404) */
    int (*webhook_update)(struct scim_store *st, int64_t tenant_id, const char *id,
                          const char *url, const char *event_types, const char *secret,
                          int enabled, struct scim_err *err);
    int (*webhook_delete)(struct scim_store *st, int64_t tenant_id, const char *id,
                          struct scim_err *err);
    int (*webhook_claim)(struct scim_store *st, const char *owner, int64_t now_us,
                         int64_t lease_us, struct scim_webhook_job *job, struct scim_err *err);
    int (*webhook_progress)(struct scim_store *st, const struct scim_webhook_job *job,
                            const char *owner, int64_t cursor, int64_t attempts,
                            int64_t next_attempt_us, int status, const char *error,
                            int64_t lease_until_us, struct scim_err *err);
    int (*webhook_release_leases)(struct scim_store *st, const char *prefix,
                                  struct scim_err *err);
    /* scimctl db export / db import (store.h); NULL = not supported (501). import gets an
     * array of records already checked by store/dump.c (types and required members). */
    int (*export_rows)(struct scim_store *st, scim_store_export_fn fn, void *ctx,
                       struct scim_err *err);
    int (*import_rows)(struct scim_store *st, json_t *records, struct scim_err *err);
};

struct scim_event_notify;

/* Called by a backend after committing a write that inserted events: wakes the waiters of
 * scim_store_events_wait / _wait_any. */
void scim_store_events_notify(struct scim_store *st);
/* The notifier of a store (feed.c); NULL on out of memory. */
struct scim_event_notify *scim_event_notify_new(void);
void scim_event_notify_free(struct scim_event_notify *n);

/* The part common to every backend; embedded first in each backend's struct. */
struct scim_store {
    const struct scim_store_ops *ops;
    const struct scim_registry *reg; /* borrowed from the opts; outlives the store */
    struct scim_event_notify *notify; /* set by scim_store_open (store.c) */
};

/* SQLite backend (store/sqlite). `path` is a file name or ":memory:". */
int scim_sqlite_open(const char *path, const struct scim_store_opts *opts, struct scim_store **out,
                     struct scim_err *err);

/* Test hook: the SQLite query plan (EXPLAIN QUERY PLAN details, one per line) of the page
 * query scim_store_list would run for `q`. *plan is malloc'ed. */
int scim_sqlite_explain(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                        const struct scim_store_query *q, char **plan, struct scim_err *err);

/* PostgreSQL backend (store/postgres). `uri` is a libpq URI (postgresql://... or postgres://...). */
int scim_pg_open(const char *uri, const struct scim_store_opts *opts, struct scim_store **out,
                 struct scim_err *err);

/* Test hook: the PostgreSQL plan (EXPLAIN, one line per plan line) of the page query
 * scim_store_list would run for `q`. *plan is malloc'ed. */
int scim_pg_explain(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                    const struct scim_store_query *q, char **plan, struct scim_err *err);

/* Test hook: runs SQL text without parameters on a PostgreSQL store (ANALYZE, seeding). */
int scim_pg_exec(struct scim_store *st, const char *sql, struct scim_err *err);

#endif
