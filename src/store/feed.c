/* Change feed and webhooks: dispatch to the backend, argument checks, and the in-process
 * notifier that wakes long-poll requests and the delivery thread after a commit. */
#include "store/store_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "store/events.h"

struct scim_event_notify {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    uint64_t gen;      /* bumped by every commit with events */
    bool closing;
};

struct scim_event_notify *scim_event_notify_new(void)
{
    struct scim_event_notify *n = calloc(1, sizeof *n);
    pthread_condattr_t ca;
    if (!n)
        return NULL;
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    n->gen = 1;
    return n;
}

void scim_event_notify_free(struct scim_event_notify *n)
{
    if (!n)
        return;
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

void scim_store_events_notify(struct scim_store *st)
{
    struct scim_event_notify *n = st->notify;
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->gen++;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

void scim_store_events_shutdown(struct scim_store *st)
{
    struct scim_event_notify *n = st->notify;
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->closing = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static uint64_t notify_gen(struct scim_event_notify *n)
{
    pthread_mutex_lock(&n->mu);
    uint64_t g = n->closing ? 0 : n->gen;
    pthread_mutex_unlock(&n->mu);
    return g;
}

/* Waits until the generation differs from `gen`, the store shuts down, or wait_ms passes. */
static uint64_t notify_wait(struct scim_event_notify *n, uint64_t gen, int64_t wait_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(wait_ms / 1000);
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    while (!n->closing && n->gen == gen) {
        if (pthread_cond_timedwait(&n->cv, &n->mu, &ts) == ETIMEDOUT)
            break;
    }
    uint64_t g = n->closing ? 0 : n->gen;
    pthread_mutex_unlock(&n->mu);
    return g;
}

void scim_store_events_wait_any(struct scim_store *st, uint64_t *gen, int64_t wait_ms)
{
    if (!st->notify)
        return;
    if (*gen == 0)
        *gen = notify_gen(st->notify);
    if (*gen == 0) /* closing */
        return;
    *gen = notify_wait(st->notify, *gen, wait_ms);
}

static int no_feed(struct scim_err *err)
{
    return scim_err_set(err, 501, NULL, "this store backend has no change feed");
}

int scim_store_events_list(struct scim_store *st, int64_t tenant_id, int64_t after, int64_t count,
                           json_t **out, int64_t *last_seq, struct scim_err *err)
{
    int64_t dummy;
    *out = NULL;
    if (!st->ops->events_list)
        return no_feed(err);
    if (count < 1)
        count = 1;
    if (count > SCIM_EVENTS_MAX_COUNT)
        count = SCIM_EVENTS_MAX_COUNT;
    if (after < 0)
        after = 0;
    return st->ops->events_list(st, tenant_id, after, count, out, last_seq ? last_seq : &dummy, err);
}

/* 410 when the events following `after` are gone: only a prefix of the feed is ever pruned
 * and the kept events are gap-free, so a page that does not start at after + 1 (or an empty
 * page below the latest seq) means a pruned position. */
static int check_pruned(int64_t after, json_t *items, int64_t last, int64_t *oldest,
                        struct scim_err *err)
{
    int64_t first;
    if (json_array_size(items) > 0)
        first = (int64_t)json_integer_value(json_object_get(json_array_get(items, 0), "seq"));
    else if (after < last)
        first = last + 1;
    else
        return 0;
    if (first <= after + 1)
        return 0;
    if (oldest)
        *oldest = first;
    return scim_err_set(err, 410, NULL,
                        "the events after seq %lld were pruned (retention): the oldest available "
                        "event is seq %lld; resynchronise, then read from after=%lld",
                        (long long)after, (long long)first, (long long)(first - 1));
}

static int events_wait(struct scim_store *st, int64_t tenant_id, int64_t after, int64_t count,
                       int64_t wait_ms, bool strict, json_t **out, int64_t *last_seq,
                       int64_t *oldest, struct scim_err *err)
{
    int64_t deadline = scim_mono_us() + wait_ms * 1000, last = 0;
    if (after < 0)
        after = 0;
    for (;;) {
        /* the generation is read before the query: a commit between the two bumps it, so
         * the wait below returns at once instead of missing it */
        uint64_t gen = st->notify ? notify_gen(st->notify) : 0;
        if (scim_store_events_list(st, tenant_id, after, count, out, &last, err) < 0)
            return -1;
        if (last_seq)
            *last_seq = last;
        if (strict && check_pruned(after, *out, last, oldest, err) < 0) {
            json_decref(*out);
            *out = NULL;
            return -1;
        }
        int64_t left = (deadline - scim_mono_us()) / 1000;
        if (json_array_size(*out) > 0 || left <= 0 || gen == 0)
            return 0;
        json_decref(*out);
        *out = NULL;
        /* at most 1 s: commits of other scimd nodes on the same database are only seen by
         * querying again */
        notify_wait(st->notify, gen, left < 1000 ? left : 1000);
    }
}

int scim_store_events_wait(struct scim_store *st, int64_t tenant_id, int64_t after, int64_t count,
                           int64_t wait_ms, json_t **out, int64_t *last_seq, struct scim_err *err)
{
    return events_wait(st, tenant_id, after, count, wait_ms, false, out, last_seq, NULL, err);
}

int scim_store_events_read(struct scim_store *st, int64_t tenant_id, int64_t after, int64_t count,
                           int64_t wait_ms, json_t **out, int64_t *last_seq, int64_t *oldest_seq,
                           struct scim_err *err)
{
    return events_wait(st, tenant_id, after, count, wait_ms < 0 ? 0 : wait_ms, true, out,
                       last_seq, oldest_seq, err);
}

int scim_store_events_prune(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                            int64_t *deleted, struct scim_err *err)
{
    int64_t dummy = 0;
    if (!deleted)
        deleted = &dummy;
    *deleted = 0;
    if (!st->ops->events_prune)
        return no_feed(err);
    if (before_us <= 0 && max_per_tenant <= 0)
        return 0;
    return st->ops->events_prune(st, before_us < 0 ? 0 : before_us,
                                 max_per_tenant < 0 ? 0 : max_per_tenant, deleted, err);
}

/* Validates the eventTypes array and renders it as stored text (malloc'ed). */
static char *types_text(json_t *types, struct scim_err *err)
{
    size_t i;
    json_t *t;
    if (!json_is_array(types) || json_array_size(types) == 0) {
        scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                     "eventTypes must be a non-empty array of event types or [\"*\"]");
        return NULL;
    }
    json_array_foreach(types, i, t) {
        const char *s = json_string_value(t);
        if (!s || (strcmp(s, "*") != 0 && !scim_event_type_known(s))) {
            scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "unknown event type %s%s%s",
                         s ? "\"" : "", s ? s : "(not a string)", s ? "\"" : "");
            return NULL;
        }
    }
    char *text = json_dumps(types, JSON_COMPACT);
    if (!text)
        scim_err_nomem(err);
    return text;
}

static int check_url(const char *url, struct scim_err *err)
{
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strlen(url) > 2048 || strpbrk(url, " \t\r\n"))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                            "url must be an http:// or https:// URL of at most 2048 characters");
    return 0;
}

static int check_secret(const char *secret, struct scim_err *err)
{
    if (!secret || strlen(secret) < 16 || strlen(secret) > 256)
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                            "secret must be 16 to 256 characters");
    return 0;
}

int scim_store_webhook_create(struct scim_store *st, int64_t tenant_id, const char *url,
                              const char *secret, json_t *event_types, bool enabled, json_t **out,
                              struct scim_err *err)
{
    char id[40];
    char *types = NULL;
    int rc = -1;
    *out = NULL;
    if (!st->ops->webhook_create)
        return no_feed(err);
    if (check_url(url, err) < 0 || check_secret(secret, err) < 0 ||
        !(types = types_text(event_types, err)))
        return -1;
    if (scim_uuid4(id) < 0) {
        scim_err_internal(err, "store: no randomness for a webhook id");
        goto out;
    }
    if (st->ops->webhook_create(st, tenant_id, id, url, secret, types, enabled, err) < 0 ||
        st->ops->webhook_list(st, tenant_id, id, out, err) < 0)
        goto out;
    rc = 0;
out:
    free(types);
    return rc;
}

int scim_store_webhook_list(struct scim_store *st, int64_t tenant_id, json_t **out,
                            struct scim_err *err)
{
    *out = NULL;
    if (!st->ops->webhook_list)
        return no_feed(err);
    return st->ops->webhook_list(st, tenant_id, NULL, out, err);
}

int scim_store_webhook_get(struct scim_store *st, int64_t tenant_id, const char *id, json_t **out,
                           struct scim_err *err)
{
    *out = NULL;
    if (!st->ops->webhook_list)
        return no_feed(err);
    if (!id)
        return scim_err_set(err, 404, NULL, "webhook not found");
    return st->ops->webhook_list(st, tenant_id, id, out, err);
}

int scim_store_webhook_update(struct scim_store *st, int64_t tenant_id, const char *id,
                              const char *url, json_t *event_types, const char *secret,
                              int enabled, json_t **out, struct scim_err *err)
{
    char *types = NULL;
    int rc = -1;
    *out = NULL;
    if (!st->ops->webhook_update)
        return no_feed(err);
    if ((url && check_url(url, err) < 0) || (secret && check_secret(secret, err) < 0) ||
        (event_types && !(types = types_text(event_types, err))))
        return -1;
    if (st->ops->webhook_update(st, tenant_id, id, url, types, secret, enabled, err) < 0 ||
        st->ops->webhook_list(st, tenant_id, id, out, err) < 0)
        goto out;
    rc = 0;
out:
    free(types);
    return rc;
}

int scim_store_webhook_delete(struct scim_store *st, int64_t tenant_id, const char *id,
                              struct scim_err *err)
{
    if (!st->ops->webhook_delete)
        return no_feed(err);
    return st->ops->webhook_delete(st, tenant_id, id, err);
}

void scim_webhook_job_release(struct scim_webhook_job *job)
{
    if (!job)
        return;
    free(job->url);
    free(job->secret);
    json_decref(job->event_types);
    memset(job, 0, sizeof *job);
}

int scim_store_webhook_claim(struct scim_store *st, const char *owner, int64_t now_us,
                             int64_t lease_us, struct scim_webhook_job *job, struct scim_err *err)
{
    memset(job, 0, sizeof *job);
    if (!st->ops->webhook_claim)
        return 0;
    return st->ops->webhook_claim(st, owner, now_us, lease_us, job, err);
}

int scim_store_webhook_progress(struct scim_store *st, const struct scim_webhook_job *job,
                                const char *owner, int64_t cursor, int64_t attempts,
                                int64_t next_attempt_us, int status, const char *error,
                                int64_t lease_until_us, struct scim_err *err)
{
    if (!st->ops->webhook_progress)
        return no_feed(err);
    return st->ops->webhook_progress(st, job, owner, cursor, attempts, next_attempt_us, status,
                                     error, lease_until_us, err);
}

int scim_store_webhook_release_leases(struct scim_store *st, const char *prefix,
                                      struct scim_err *err)
{
    if (!st->ops->webhook_release_leases)
        return 0;
    return st->ops->webhook_release_leases(st, prefix, err);
}
