/* Private to the SQLite backend: the change feed and webhook operations (feed.c) and the one
 * entry point of sqlite.c they use to borrow a pooled connection. */
#ifndef SCIM_STORE_SQLITE_FEED_H
#define SCIM_STORE_SQLITE_FEED_H

#include <sqlite3.h>

#include "store/store_impl.h"

typedef int (*scim_sqlite_conn_fn)(sqlite3 *db, void *ctx, struct scim_err *err);

/* sqlite.c: runs fn on a pooled connection; with `write` inside BEGIN IMMEDIATE ... COMMIT
 * (rolled back when fn fails). fn's return value is returned (>= 0 on success). */
int scim_sqlite_with_conn(struct scim_store *st, bool write, scim_sqlite_conn_fn fn, void *ctx,
                          struct scim_err *err);

/* feed.c: inserts `events` (array from store/events.h) into the tenant's feed on `db`, which
 * is inside the write transaction: bumps the tenant's counter by their number and finishes each
 * event with its seq and time. No-op for an empty array. */
int scim_sqlite_feed_insert(sqlite3 *db, int64_t tenant, json_t *events, struct scim_err *err);

/* feed.c: the ops of store_impl.h. */
int scim_sqlite_events_list(struct scim_store *st, int64_t tenant, int64_t after, int64_t count,
                            json_t **out, int64_t *last_seq, struct scim_err *err);
int scim_sqlite_events_prune(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                             int64_t *deleted, struct scim_err *err);
int scim_sqlite_webhook_create(struct scim_store *st, int64_t tenant, const char *id,
                               const char *url, const char *secret, const char *event_types,
                               bool enabled, struct scim_err *err);
int scim_sqlite_webhook_list(struct scim_store *st, int64_t tenant, const char *id, json_t **out,
                             struct scim_err *err);
int scim_sqlite_webhook_update(struct scim_store *st, int64_t tenant, const char *id,
                               const char *url, const char *event_types, const char *secret,
                               int enabled, struct scim_err *err);
int scim_sqlite_webhook_delete(struct scim_store *st, int64_t tenant, const char *id,
                               struct scim_err *err);
int scim_sqlite_webhook_claim(struct scim_store *st, const char *owner, int64_t now_us,
                              int64_t lease_us, struct scim_webhook_job *job, struct scim_err *err);
int scim_sqlite_webhook_progress(struct scim_store *st, const struct scim_webhook_job *job,
                                 const char *owner, int64_t cursor, int64_t attempts,
                                 int64_t next_attempt_us, int status, const char *error,
                                 int64_t lease_until_us, struct scim_err *err);
int scim_sqlite_webhook_release_leases(struct scim_store *st, const char *prefix,
                                       struct scim_err *err);

/* dump.c: scimctl db export / db import (store_impl.h export_rows / import_rows). */
int scim_sqlite_export_rows(struct scim_store *st, scim_store_export_fn fn, void *ctx,
                            struct scim_err *err);
int scim_sqlite_import_rows(struct scim_store *st, json_t *records, struct scim_err *err);

#endif
