/* Webhook delivery (docs/operations.md, "Change feed and webhooks"): one background thread per
 * scimd process that leases due webhooks in the store, POSTs their events in sequence order
 * with libcurl, and records the cursor and retry state in the database, so that deliveries
 * survive a restart and several nodes on one database never deliver the same webhook at once.
 * SCIM requests never wait for it: it has its own thread and its own store connections. */
#ifndef SCIM_FEED_DELIVERY_H
#define SCIM_FEED_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

struct scim_delivery_config {
    const char *node_id;        /* lease owner prefix; NULL = the host name */
    int64_t connect_timeout_ms; /* 0 = 5000 */
    int64_t total_timeout_ms;   /* 0 = 10000 */
    int64_t backoff_base_ms;    /* first retry delay; 0 = 1000 */
    int64_t backoff_cap_ms;     /* 0 = 600000 (10 min) */
    int64_t lease_ms;           /* 0 = 60000; must exceed total_timeout_ms */
    int batch;                  /* events delivered per lease; 0 = 100 */
};

struct scim_delivery;

/* Starts the delivery thread (and initialises libcurl: call before other threads use it). */
int scim_delivery_start(struct scim_store *st, const struct scim_delivery_config *cfg,
                        struct scim_delivery **out, struct scim_err *err);
/* Stops the thread (an HTTP request in flight ends within its timeouts) and frees it. */
void scim_delivery_stop(struct scim_delivery **d);

#define SCIM_SIGNATURE_MAX 96
/* The Scimd-Signature header value "t=<t>, v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
 * 0, or -1 on failure. */
int scim_webhook_signature(const char *secret, int64_t t, const char *body, size_t len,
                           char out[SCIM_SIGNATURE_MAX]);

/* The retry delay after `attempts` consecutive failures (>= 1): base doubled per failure,
 * capped, times a jitter factor in [0.8, 1.2) drawn from `r` in [0, 1). */
int64_t scim_delivery_backoff_ms(int64_t attempts, int64_t base_ms, int64_t cap_ms, double r);

#endif
