/* The provisioning log (docs/operations.md, "Provisioning log"): every authenticated SCIM
 * request, and every operation of a Bulk request, becomes one entry in the store, per tenant.
 *
 * Recording never slows the request: the API thread only copies a small record into a bounded
 * in-memory queue; a background writer thread inserts queued entries in batches (one
 * transaction each), outside the request's transaction, and prunes old entries (and old
 * change-feed events: the retention of both runs on this thread). */
#ifndef SCIM_API_PLOG_H
#define SCIM_API_PLOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

struct scim_plog_config {
    size_t capacity;          /* queued entries at most; beyond, entries are dropped and counted
                                 (default 65536) */
    int64_t retention_us;     /* entries older than this are pruned; 0 = keep (default 30 days) */
    int64_t max_entries;      /* per tenant; older entries beyond are pruned; 0 = no limit
                                 (default 1000000) */
    int64_t prune_interval_us; /* how often the writer prunes (default 60 s); the change
                                  feed is pruned at the same times */
    int64_t events_retention_us; /* change-feed events older than this are pruned, except
                                    those a webhook has still to deliver; 0 = keep (default
                                    7 days); scim_store_events_prune */
    int64_t events_max_entries;  /* change-feed events kept per tenant, the newest; 0 = no
                                    limit (default 1000000) */
};

/* Fills `cfg` with the defaults. */
void scim_plog_config_defaults(struct scim_plog_config *cfg);

/* Starts the writer thread on `st` (which must outlive scim_plog_stop). Until this is called,
 * or after scim_plog_stop, recording is a no-op. -1 (500) if the thread cannot start. */
int scim_plog_start(struct scim_store *st, const struct scim_plog_config *cfg, struct scim_err *err);

/* Stops the writer after it has written every queued entry (call it after the HTTP server has
 * finished its requests, so no entry of an answered request is lost). No-op when not started. */
void scim_plog_stop(void);

/* Queues a copy of `e` (time, tenant... filled by the caller; id ignored). Never blocks on the
 * store: when the queue is full the entry is dropped and counted. */
void scim_plog_record(const struct scim_log_entry *e);

/* Entries dropped because the queue was full, since start. */
uint64_t scim_plog_dropped(void);

#endif
