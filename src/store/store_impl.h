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

struct scim_store_ops {
    const char *name; /* "sqlite", "postgresql" */
    void (*free)(struct scim_store *st);

    int (*tenant_default)(struct scim_store *st, int64_t *tenant_id, struct scim_err *err);

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
};

/* The part common to every backend; embedded first in each backend's struct. */
struct scim_store {
    const struct scim_store_ops *ops;
    const struct scim_registry *reg; /* borrowed from the opts; outlives the store */
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
