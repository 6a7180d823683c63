/* The provisioning log: the bounded queue, its writer thread, and the recording of a request's
 * entry by the API (see plog.h). One queue per process: scimd serves one store. */
#include "api/plog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "common/log.h"
#include "common/util.h"
#include "scim/compat.h"

#define PLOG_BATCH 1000                       /* entries per transaction at most */
#define PLOG_FLUSH_US (200 * 1000LL)          /* a partial batch waits this long at most */
#define PLOG_DROP_WARN_US (60 * 1000000LL)    /* drops are reported at most once a minute */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* signalled when a batch is full or on stop */
    struct scim_log_entry **ring;
    size_t cap, head, len;
    bool running, stopping;
    pthread_t thread;
    struct scim_store *st;
    struct scim_plog_config cfg;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static atomic_uint_fast64_t dropped;
static atomic_bool accepting;

void scim_plog_config_defaults(struct scim_plog_config *cfg)
{
    cfg->capacity = 65536;
    cfg->retention_us = 30LL * 86400 * 1000000;
    cfg->max_entries = 1000000;
    cfg->prune_interval_us = 60 * 1000000LL;
    cfg->events_retention_us = 7LL * 86400 * 1000000;
    cfg->events_max_entries = 1000000;
}

uint64_t scim_plog_dropped(void)
{
    return (uint64_t)atomic_load(&dropped);
}

void scim_plog_record(const struct scim_log_entry *e)
{
    struct scim_log_entry *copy;

    if (!atomic_load(&accepting)) /* log not started: nothing to do, no allocation */
        return;
    if (!(copy = malloc(sizeof *copy))) {
        atomic_fetch_add(&dropped, 1);
        return;
    }
    *copy = *e;
    pthread_mutex_lock(&q.mu);
    if (!q.running || q.stopping || q.len >= q.cap) {
        pthread_mutex_unlock(&q.mu);
        free(copy);
        atomic_fetch_add(&dropped, 1);
        return;
    }
    q.ring[(q.head + q.len) % q.cap] = copy;
    q.len++;
    if (q.len >= PLOG_BATCH)
        pthread_cond_signal(&q.cv);
    pthread_mutex_unlock(&q.mu);
}

static void deadline_after(struct timespec *ts, int64_t us)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(us / 1000000);
    ts->tv_nsec += (long)(us % 1000000) * 1000;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void prune(void)
{
    struct scim_err err;
    int64_t gone = 0;
    int64_t before = q.cfg.retention_us > 0 ? scim_now_us() - q.cfg.retention_us : 0;

    scim_err_clear(&err);
    if (scim_store_log_prune(q.st, before, q.cfg.max_entries, &gone, &err))
        scim_warn("msg=\"provisioning log prune failed\" detail=\"%s\" cause=\"%s\"", err.detail,
                  err.log);
    else if (gone)
        scim_debug("msg=\"provisioning log pruned\" entries=%lld", (long long)gone);
    if (q.cfg.events_retention_us <= 0 && q.cfg.events_max_entries <= 0)
        return;
    gone = 0;
    before = q.cfg.events_retention_us > 0 ? scim_now_us() - q.cfg.events_retention_us : 0;
    scim_err_clear(&err);
    if (scim_store_events_prune(q.st, before, q.cfg.events_max_entries, &gone, &err))
        scim_warn("msg=\"change feed prune failed\" detail=\"%s\" cause=\"%s\"", err.detail,
                  err.log);
    else if (gone)
        scim_info("msg=\"change feed pruned\" events=%lld", (long long)gone);
}

static void *writer(void *arg)
{
    struct scim_log_entry *batch[PLOG_BATCH];
    int64_t next_prune = scim_now_us(); /* prune once at start: flags may have shrunk */
    int64_t next_warn = 0;
    uint64_t warned = 0;
    (void)arg;

    for (;;) {
        size_t n = 0;
        bool stop;
        struct timespec ts;

        pthread_mutex_lock(&q.mu);
        if (!q.stopping && q.len < PLOG_BATCH) {
            deadline_after(&ts, PLOG_FLUSH_US);
            pthread_cond_timedwait(&q.cv, &q.mu, &ts);
        }
        while (n < PLOG_BATCH && q.len > 0) {
            batch[n++] = q.ring[q.head];
            q.head = (q.head + 1) % q.cap;
            q.len--;
        }
        stop = q.stopping && q.len == 0;
        pthread_mutex_unlock(&q.mu);

        if (n) {
            struct scim_err err;
            scim_err_clear(&err);
            if (scim_store_log_append_batch(q.st, (const struct scim_log_entry *const *)batch, n,
                                            &err)) {
                /* the entries are lost, but the requests they describe were answered */
                atomic_fetch_add(&dropped, n);
                scim_warn("msg=\"provisioning log write failed\" entries=%zu detail=\"%s\" "
                          "cause=\"%s\"", n, err.detail, err.log);
            }
            for (size_t i = 0; i < n; i++)
                free(batch[i]);
        }
        int64_t now = scim_now_us();
        uint64_t d = (uint64_t)atomic_load(&dropped);
        if (d != warned && now >= next_warn) {
            scim_warn("msg=\"provisioning log queue full: entries dropped\" dropped_total=%llu "
                      "capacity=%zu", (unsigned long long)d, q.cap);
            warned = d;
            next_warn = now + PLOG_DROP_WARN_US;
        }
        if (stop)
            break;
        if (now >= next_prune && (q.cfg.retention_us > 0 || q.cfg.max_entries > 0 ||
                                  q.cfg.events_retention_us > 0 || q.cfg.events_max_entries > 0)) {
            prune();
            next_prune = now + q.cfg.prune_interval_us;
        }
    }
    return NULL;
}

int scim_plog_start(struct scim_store *st, const struct scim_plog_config *cfg, struct scim_err *err)
{
    struct scim_plog_config c;
    if (cfg)
        c = *cfg;
    else
        scim_plog_config_defaults(&c);
    if (c.capacity == 0)
        c.capacity = 1;
    if (c.prune_interval_us <= 0)
        c.prune_interval_us = 60 * 1000000LL;

    pthread_mutex_lock(&q.mu);
    if (q.running) {
        pthread_mutex_unlock(&q.mu);
        return scim_err_internal(err, "provisioning log already started");
    }
    q.ring = calloc(c.capacity, sizeof *q.ring);
    if (!q.ring) {
        pthread_mutex_unlock(&q.mu);
        return scim_err_nomem(err);
    }
    q.cap = c.capacity;
    q.head = q.len = 0;
    q.st = st;
    q.cfg = c;
    q.stopping = false;
    if (pthread_create(&q.thread, NULL, writer, NULL) != 0) {
        free(q.ring);
        q.ring = NULL;
        pthread_mutex_unlock(&q.mu);
        return scim_err_internal(err, "cannot start the provisioning log writer");
    }
    q.running = true;
    atomic_store(&dropped, 0);
    atomic_store(&accepting, true);
    pthread_mutex_unlock(&q.mu);
    return 0;
}

void scim_plog_stop(void)
{
    pthread_mutex_lock(&q.mu);
    if (!q.running) {
        pthread_mutex_unlock(&q.mu);
        return;
    }
    q.stopping = true;
    atomic_store(&accepting, false);
    pthread_cond_signal(&q.cv);
    pthread_mutex_unlock(&q.mu);
    pthread_join(q.thread, NULL);
    pthread_mutex_lock(&q.mu);
    q.running = false;
    q.stopping = false;
    free(q.ring);
    q.ring = NULL;
    q.cap = q.len = q.head = 0;
    q.st = NULL;
    pthread_mutex_unlock(&q.mu);
    if (atomic_load(&dropped))
        scim_warn("msg=\"provisioning log: entries dropped since start\" dropped_total=%llu",
                  (unsigned long long)atomic_load(&dropped));
}

/* --- what the API records -------------------------------------------------------------------- */

/* Copies `in` (NULL = "") into `out`, truncated to fit. */
static void put(char *out, size_t outlen, const char *in)
{
    size_t n = in ? strlen(in) : 0;
    if (n >= outlen)
        n = outlen - 1;
    if (n)
        memcpy(out, in, n);
    out[n] = '\0';
}

static void copy_field(char *out, size_t outlen, const char *v)
{
    if (v && !out[0])
        put(out, outlen, v);
}

void api_plog_note(struct api_req *r, json_t *obj, bool with_id)
{
    if (!json_is_object(obj))
        return;
    if (with_id)
        copy_field(r->plog_id, sizeof r->plog_id, json_string_value(json_object_get(obj, "id")));
    copy_field(r->plog_user, sizeof r->plog_user,
               json_string_value(json_object_get(obj, "userName")));
    copy_field(r->plog_display, sizeof r->plog_display,
               json_string_value(json_object_get(obj, "displayName")));
}

/* The value of a `userName eq "..."` comparison in a filter (the IdPs' lookup before a
 * create), so that the lookup shows up under the user's name too. */
static void user_from_filter(const char *f, char *out, size_t outlen)
{
    static const char key[] = "username eq \"";
    for (const char *p = f; p && *p; p++) {
        if (scim_strncasecmp(p, key, sizeof key - 1) == 0) {
            const char *v = p + sizeof key - 1;
            const char *end = strchr(v, '"');
            if (end && (size_t)(end - v) < outlen) {
                memcpy(out, v, (size_t)(end - v));
                out[end - v] = '\0';
            }
            return;
        }
    }
}

static void fill_common(struct api_req *r, struct scim_log_entry *e)
{
    memset(e, 0, sizeof *e);
    e->time_us = r->start_us;
    e->tenant_id = r->tenant_id;
    e->latency_us = scim_now_us() - r->start_us;
    e->bulk_index = r->req->bulk_index;
    put(e->request_id, sizeof e->request_id, r->req->request_id);
    put(e->token, sizeof e->token, r->token.name);
    put(e->method, sizeof e->method, r->req->method ? r->req->method : "");
    put(e->path, sizeof e->path, r->req->raw_path ? r->req->raw_path : "");
}

void api_plog_finish(struct api_req *r)
{
    struct scim_log_entry e;

    if (!r->plog_scim || !r->have_tenant)
        return; /* 401s and discovery: no tenant to file them under (server log only) */
    fill_common(r, &e);
    e.status = r->resp->status;
    put(e.client, sizeof e.client, api_client_identify(r->req, r->compat));
    put(e.resource_type, sizeof e.resource_type, r->plog_rtype ? r->plog_rtype : "");
    put(e.resource_id, sizeof e.resource_id, r->plog_id);
    if (!r->plog_user[0] && r->q.filter)
        user_from_filter(r->q.filter, r->plog_user, sizeof r->plog_user);
    put(e.user_name, sizeof e.user_name, r->plog_user);
    put(e.display_name, sizeof e.display_name, r->plog_display);
    if (e.status >= 400) {
        put(e.scim_type, sizeof e.scim_type, r->scim_type ? r->scim_type : "");
        put(e.detail, sizeof e.detail, r->err_detail);
    }
    scim_compat_names(r->compat, e.compat, sizeof e.compat);
    scim_plog_record(&e);
}

void api_plog_bulk_op(struct api_req *r, size_t index, const char *method, const char *path,
                      json_t *data, const struct scim_err *err)
{
    struct scim_log_entry e;

    if (!r->have_tenant)
        return;
    fill_common(r, &e);
    e.bulk_index = (int)index + 1;
    e.latency_us = 0;
    put(e.method, sizeof e.method, method ? method : "");
    snprintf(e.path, sizeof e.path, "%s%s", r->api->prefix, path ? path : "");
    put(e.client, sizeof e.client, api_client_identify(r->req, r->compat));
    if (path && scim_strncasecmp(path, "/Users", 6) == 0)
        snprintf(e.resource_type, sizeof e.resource_type, "User");
    else if (path && scim_strncasecmp(path, "/Groups", 7) == 0)
        snprintf(e.resource_type, sizeof e.resource_type, "Group");
    if (path && e.resource_type[0]) {
        const char *id = strchr(path + 1, '/');
        if (id)
            put(e.resource_id, sizeof e.resource_id, id + 1);
    }
    if (json_is_object(data)) {
        const char *u = json_string_value(json_object_get(data, "userName"));
        const char *d = json_string_value(json_object_get(data, "displayName"));
        put(e.user_name, sizeof e.user_name, u ? u : "");
        put(e.display_name, sizeof e.display_name, d ? d : "");
    }
    e.status = err->status;
    put(e.scim_type, sizeof e.scim_type, err->scim_type ? err->scim_type : "");
    put(e.detail, sizeof e.detail, err->detail);
    scim_plog_record(&e);
}
