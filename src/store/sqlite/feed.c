/* The SQLite side of the change feed and webhooks (migration 3 of sqlite.c): event rows, the
 * per-tenant counter, webhook rows with their delivery cursor and lease. The SQL is written so
 * that the PostgreSQL backend can use the same statements with $n parameters. */
#include "store/sqlite/sqlite_feed.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "store/events.h"
#include "store/sqlite/stmt_cache.h"

static int fail(sqlite3 *db, struct scim_err *err, const char *what)
{
    return scim_err_internal(err, "sqlite %s: %s (%d)", what, sqlite3_errmsg(db),
                             sqlite3_extended_errcode(db));
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **q, struct scim_err *err)
{
    if (scim_stmt_prepare(db, sql, q) != SQLITE_OK) {
        *q = NULL;
        return fail(db, err, "prepare");
    }
    return 0;
}

static void bind_opt_text(sqlite3_stmt *q, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(q, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

static const char *text_of(sqlite3_stmt *q, int i)
{
    return (const char *)sqlite3_column_text(q, i);
}

/* ---- events ------------------------------------------------------------------------------ */

int scim_sqlite_feed_insert(sqlite3 *db, int64_t tenant, json_t *events, struct scim_err *err)
{
    size_t n = json_array_size(events), i;
    sqlite3_stmt *q = NULL;
    char *text = NULL;
    int rc = -1;
    int64_t last, now = scim_now_ms_us();
    json_t *ev;
    if (n == 0)
        return 0;
    /* the counter row is the tenant's serialisation point: seq is gap-free because it is
     * bumped in the transaction that inserts the events (a rollback takes both back) */
    if (prep(db, "INSERT INTO event_seq(tenant_id, last_seq) VALUES (?1, ?2) "
                 "ON CONFLICT(tenant_id) DO UPDATE SET last_seq = last_seq + ?2 RETURNING last_seq",
             &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, tenant);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)n);
    if (sqlite3_step(q) != SQLITE_ROW) {
        fail(db, err, "event counter");
        goto out;
    }
    last = sqlite3_column_int64(q, 0);
    scim_stmt_release(q);
    q = NULL;
    if (prep(db, "INSERT INTO events(tenant_id, seq, created, type, data) VALUES (?, ?, ?, ?, ?)",
             &q, err) < 0)
        goto out;
    json_array_foreach(events, i, ev) {
        int64_t seq = last - (int64_t)n + 1 + (int64_t)i;
        if (scim_event_finish(ev, tenant, seq, now) < 0 ||
            !(text = json_dumps(ev, JSON_COMPACT))) {
            scim_err_nomem(err);
            goto out;
        }
        sqlite3_bind_int64(q, 1, tenant);
        sqlite3_bind_int64(q, 2, seq);
        sqlite3_bind_int64(q, 3, now);
        bind_opt_text(q, 4, json_string_value(json_object_get(ev, "type")));
        sqlite3_bind_text(q, 5, text, -1, SQLITE_STATIC);
        int step = sqlite3_step(q);
        sqlite3_reset(q);
        free(text);
        text = NULL;
        if (step != SQLITE_DONE) {
            fail(db, err, "event insert");
            goto out;
        }
    }
    rc = 0;
out:
    free(text);
    scim_stmt_release(q);
    return rc;
}

struct list_ctx {
    int64_t tenant, after, count;
    const char *id;
    json_t **out;
    int64_t *last_seq;
};

static int last_seq_of(sqlite3 *db, int64_t tenant, int64_t *last, struct scim_err *err)
{
    sqlite3_stmt *q = NULL;
    if (prep(db, "SELECT last_seq FROM event_seq WHERE tenant_id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, tenant);
    int step = sqlite3_step(q);
    *last = step == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    scim_stmt_release(q);
    return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : fail(db, err, "event counter");
}

static int events_list_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct list_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    json_t *arr = json_array();
    int rc = -1, step;
    if (!arr)
        return scim_err_nomem(err);
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) { /* one snapshot */
        fail(db, err, "begin");
        goto out;
    }
    if (last_seq_of(db, x->tenant, x->last_seq, err) < 0 ||
        prep(db, "SELECT data FROM events WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
             &q, err) < 0)
        goto out;
    sqlite3_bind_int64(q, 1, x->tenant);
    sqlite3_bind_int64(q, 2, x->after);
    sqlite3_bind_int64(q, 3, x->count);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        json_error_t je;
        json_t *ev = json_loads(text_of(q, 0), 0, &je);
        if (!ev || json_array_append_new(arr, ev) < 0) {
            scim_err_internal(err, "sqlite: unreadable event row");
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        fail(db, err, "events");
        goto out;
    }
    *x->out = arr;
    arr = NULL;
    rc = 0;
out:
    scim_stmt_release(q);
    json_decref(arr);
    return rc; /* the pool rolls the read transaction back */
}

int scim_sqlite_events_list(struct scim_store *st, int64_t tenant, int64_t after, int64_t count,
                            json_t **out, int64_t *last_seq, struct scim_err *err)
{
    struct list_ctx x = {.tenant = tenant, .after = after, .count = count, .out = out,
                         .last_seq = last_seq};
    return scim_sqlite_with_conn(st, false, events_list_fn, &x, err);
}

/* ---- retention ----------------------------------------------------------------------------- */

/* Rows per delete transaction: a prune of a large backlog never holds the write lock for long. */
#define EVENTS_PRUNE_SLICE 4000

struct prune_ctx {
    int64_t tenant, before, max, lo, hi, cut;
    int64_t *ids;
    size_t n;
    int64_t deleted;
};

static int tenants_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct prune_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    int step;
    if (prep(db, "SELECT tenant_id FROM event_seq ORDER BY tenant_id", &q, err) < 0)
        return -1;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (x->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            int64_t *nb = realloc(x->ids, ncap * sizeof *nb);
            if (!nb) {
                scim_stmt_release(q);
                return scim_err_nomem(err);
            }
            x->ids = nb;
            cap = ncap;
        }
        x->ids[x->n++] = sqlite3_column_int64(q, 0);
    }
    scim_stmt_release(q);
    return step == SQLITE_DONE ? 0 : fail(db, err, "event prune tenants");
}

/* One integer from a prepared single-row query: 1 found, 0 no row (or NULL), -1 error. */
static int one_i64(sqlite3 *db, sqlite3_stmt *q, int64_t *v, struct scim_err *err)
{
    int step = sqlite3_step(q), rc;
    if (step == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
        *v = sqlite3_column_int64(q, 0);
        rc = 1;
    } else {
        rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : fail(db, err, "event prune");
    }
    sqlite3_reset(q);
    return rc;
}

/* The cut of one tenant (x->cut: events lo..cut go), read in one snapshot. The age rule needs
 * the newest event older than `before`: events are numbered in commit order and stamped at
 * commit, so `created` grows with seq and a binary search over the primary key finds it in
 * ~log2(n) lookups, with no index on `created` to maintain on every write. */
static int cut_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct prune_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    int rc = -1, got;
    int64_t cut = 0, hold = 0;
    x->cut = 0;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, err, "begin");
    /* two ordered lookups on the primary key: SQLite answers min() and max() together by
     * scanning the range */
    if (prep(db, "SELECT seq FROM events WHERE tenant_id = ? ORDER BY seq LIMIT 1", &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, x->tenant);
    if ((got = one_i64(db, q, &x->lo, err)) <= 0) { /* error, or nothing kept */
        rc = got;
        goto out;
    }
    scim_stmt_release(q);
    if (prep(db, "SELECT seq FROM events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1", &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, x->tenant);
    if ((got = one_i64(db, q, &x->hi, err)) <= 0) {
        rc = got;
        goto out;
    }
    scim_stmt_release(q);
    q = NULL;
    if (x->max > 0)
        cut = x->hi - x->max;
    if (x->before > 0) {
        /* a: newest known older than before (or lo - 1); b: oldest known not older */
        int64_t a = x->lo - 1, b = x->hi + 1, created;
        if (prep(db, "SELECT created FROM events WHERE tenant_id = ? AND seq >= ? ORDER BY seq LIMIT 1",
                 &q, err) < 0)
            goto out;
        sqlite3_bind_int64(q, 1, x->tenant);
        while (b - a > 1) {
            int64_t m = a + (b - a) / 2;
            sqlite3_bind_int64(q, 2, m);
            if ((got = one_i64(db, q, &created, err)) < 0)
                goto out;
            if (got && created < x->before)
                a = m;
            else
                b = m;
        }
        if (a > cut)
            cut = a;
        scim_stmt_release(q);
        q = NULL;
    }
    if (cut >= x->lo) {
        if (prep(db, "SELECT min(delivered_seq) FROM webhooks WHERE tenant_id = ? AND enabled = 1",
                 &q, err) < 0)
            goto out;
        sqlite3_bind_int64(q, 1, x->tenant);
        if ((got = one_i64(db, q, &hold, err)) < 0)
            goto out;
        if (got && hold < cut)
            cut = hold;
        x->cut = cut;
    }
    rc = 0;
out:
    scim_stmt_release(q);
    return rc; /* the pool rolls the read transaction back */
}

/* One slice: seq lo..hi of the tenant, the webhook hold re-read in the same transaction (a
 * webhook enabled since the cut was computed keeps its events). */
static int slice_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct prune_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    if (prep(db, "DELETE FROM events WHERE tenant_id = ?1 AND seq >= ?2 AND seq <= ?3 AND seq <= "
                 "coalesce((SELECT min(delivered_seq) FROM webhooks WHERE tenant_id = ?1 "
                 "AND enabled = 1), ?3)", &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, x->tenant);
    sqlite3_bind_int64(q, 2, x->lo);
    sqlite3_bind_int64(q, 3, x->hi);
    int step = sqlite3_step(q);
    scim_stmt_release(q);
    if (step != SQLITE_DONE)
        return fail(db, err, "event prune");
    x->deleted += sqlite3_changes(db);
    return 0;
}

int scim_sqlite_events_prune(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                             int64_t *deleted, struct scim_err *err)
{
    struct prune_ctx t = {0};
    int rc = -1;
    if (scim_sqlite_with_conn(st, false, tenants_fn, &t, err) < 0)
        goto out;
    for (size_t i = 0; i < t.n; i++) {
        struct prune_ctx x = {.tenant = t.ids[i], .before = before_us, .max = max_per_tenant};
        if (scim_sqlite_with_conn(st, false, cut_fn, &x, err) < 0)
            goto out;
        int64_t cut = x.cut;
        for (int64_t from = x.lo; cut > 0 && from <= cut; from += EVENTS_PRUNE_SLICE) {
            x.lo = from;
            x.hi = cut - from < EVENTS_PRUNE_SLICE ? cut : from + EVENTS_PRUNE_SLICE - 1;
            if (scim_sqlite_with_conn(st, true, slice_fn, &x, err) < 0) {
                t.deleted += x.deleted;
                goto out;
            }
        }
        t.deleted += x.deleted;
    }
    rc = 0;
out:
    free(t.ids);
    *deleted = t.deleted;
    return rc;
}

/* ---- webhooks ---------------------------------------------------------------------------- */

struct wh_ctx {
    int64_t tenant;
    const char *id, *url, *secret, *types, *owner, *error;
    bool enabled;
    int enabled_i;
    json_t **out;
    const struct scim_webhook_job *cjob;
    struct scim_webhook_job *job;
    int64_t now, lease, cursor, attempts, next_attempt;
    int status;
};

static int wh_create_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct wh_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    if (prep(db, "INSERT INTO webhooks(tenant_id, id, url, secret, event_types, enabled, created, "
                 "delivered_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                 "coalesce((SELECT last_seq FROM event_seq WHERE tenant_id = ?1), 0))", &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, x->tenant);
    sqlite3_bind_text(q, 2, x->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, x->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, x->secret, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, x->types, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, x->enabled);
    sqlite3_bind_int64(q, 7, scim_now_ms_us());
    int step = sqlite3_step(q);
    scim_stmt_release(q);
    return step == SQLITE_DONE ? 0 : fail(db, err, "webhook insert");
}

int scim_sqlite_webhook_create(struct scim_store *st, int64_t tenant, const char *id,
                               const char *url, const char *secret, const char *event_types,
                               bool enabled, struct scim_err *err)
{
    struct wh_ctx x = {.tenant = tenant, .id = id, .url = url, .secret = secret,
                       .types = event_types, .enabled = enabled};
    return scim_sqlite_with_conn(st, true, wh_create_fn, &x, err);
}

static json_t *time_or_null(sqlite3_stmt *q, int i)
{
    char ts[SCIM_DATETIME_LEN];
    if (sqlite3_column_type(q, i) == SQLITE_NULL || sqlite3_column_int64(q, i) <= 0)
        return json_null();
    scim_datetime_format(sqlite3_column_int64(q, i), ts);
    return json_string(ts);
}

static json_t *webhook_json(sqlite3_stmt *q, int64_t now)
{
    json_error_t je;
    json_t *types = json_loads(text_of(q, 2), 0, &je);
    const char *lerr = text_of(q, 11);
    bool leased = sqlite3_column_type(q, 12) != SQLITE_NULL && sqlite3_column_int64(q, 13) > now;
    json_t *o = json_pack(
        "{s:s, s:s, s:o, s:b, s:o, s:{s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:b}}",
        "id", text_of(q, 0), "url", text_of(q, 1), "eventTypes", types ? types : json_array(),
        "enabled", sqlite3_column_int(q, 3) != 0, "created", time_or_null(q, 4), "delivery",
        "lastDeliveredSeq", (json_int_t)sqlite3_column_int64(q, 5), "latestSeq",
        (json_int_t)sqlite3_column_int64(q, 14), "pending", (json_int_t)sqlite3_column_int64(q, 15),
        "attempts", (json_int_t)sqlite3_column_int64(q, 6), "nextAttempt",
        sqlite3_column_int64(q, 15) > 0 ? time_or_null(q, 7) : json_null(), "lastAttempt",
        time_or_null(q, 8), "lastSuccess", time_or_null(q, 9), "lastStatus",
        sqlite3_column_type(q, 10) == SQLITE_NULL ? json_null()
                                                  : json_integer(sqlite3_column_int(q, 10)),
        "lastError", lerr ? json_string(lerr) : json_null(), "leased", leased);
    return o;
}

static int wh_list_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct wh_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    json_t *arr = json_array();
    int rc = -1, step;
    int64_t now = scim_now_us();
    if (!arr)
        return scim_err_nomem(err);
    if (prep(db, "SELECT w.id, w.url, w.event_types, w.enabled, w.created, w.delivered_seq, "
                 "w.attempts, w.next_attempt, w.last_attempt, w.last_success, w.last_status, "
                 "w.last_error, w.lease_owner, w.lease_expires, "
                 "coalesce((SELECT s.last_seq FROM event_seq s WHERE s.tenant_id = w.tenant_id), 0), "
                 "(SELECT count(*) FROM events e WHERE e.tenant_id = w.tenant_id AND "
                 " e.seq > w.delivered_seq AND EXISTS (SELECT 1 FROM json_each(w.event_types) j "
                 " WHERE j.value = '*' OR j.value = e.type)) "
                 "FROM webhooks w WHERE w.tenant_id = ?1 AND (?2 IS NULL OR w.id = ?2) ORDER BY w.pk",
             &q, err) < 0)
        goto out;
    sqlite3_bind_int64(q, 1, x->tenant);
    bind_opt_text(q, 2, x->id);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *o = webhook_json(q, now);
        if (!o || json_array_append_new(arr, o) < 0) {
            scim_err_nomem(err);
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        fail(db, err, "webhook list");
        goto out;
    }
    if (x->id) {
        if (json_array_size(arr) == 0) {
            scim_err_set(err, 404, NULL, "webhook %s not found", x->id);
            goto out;
        }
        *x->out = json_incref(json_array_get(arr, 0));
    } else {
        *x->out = json_incref(arr);
    }
    rc = 0;
out:
    scim_stmt_release(q);
    json_decref(arr);
    return rc;
}

int scim_sqlite_webhook_list(struct scim_store *st, int64_t tenant, const char *id, json_t **out,
                             struct scim_err *err)
{
    struct wh_ctx x = {.tenant = tenant, .id = id, .out = out};
    return scim_sqlite_with_conn(st, false, wh_list_fn, &x, err);
}

static int wh_update_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct wh_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    /* any change retries at once with a fresh backoff: the usual reason to edit a failing
     * webhook is to fix it */
    if (prep(db, "UPDATE webhooks SET url = coalesce(?1, url), event_types = coalesce(?2, event_types), "
                 "secret = coalesce(?3, secret), enabled = CASE WHEN ?4 < 0 THEN enabled ELSE ?4 END, "
                 "attempts = 0, next_attempt = 0 WHERE tenant_id = ?5 AND id = ?6", &q, err) < 0)
        return -1;
    bind_opt_text(q, 1, x->url);
    bind_opt_text(q, 2, x->types);
    bind_opt_text(q, 3, x->secret);
    sqlite3_bind_int(q, 4, x->enabled_i);
    sqlite3_bind_int64(q, 5, x->tenant);
    sqlite3_bind_text(q, 6, x->id, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    scim_stmt_release(q);
    if (step != SQLITE_DONE)
        return fail(db, err, "webhook update");
    if (sqlite3_changes(db) == 0)
        return scim_err_set(err, 404, NULL, "webhook %s not found", x->id);
    return 0;
}

int scim_sqlite_webhook_update(struct scim_store *st, int64_t tenant, const char *id,
                               const char *url, const char *event_types, const char *secret,
                               int enabled, struct scim_err *err)
{
    struct wh_ctx x = {.tenant = tenant, .id = id, .url = url, .types = event_types,
                       .secret = secret, .enabled_i = enabled};
    return scim_sqlite_with_conn(st, true, wh_update_fn, &x, err);
}

static int wh_delete_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct wh_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    if (prep(db, "DELETE FROM webhooks WHERE tenant_id = ? AND id = ?", &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, x->tenant);
    sqlite3_bind_text(q, 2, x->id, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    scim_stmt_release(q);
    if (step != SQLITE_DONE)
        return fail(db, err, "webhook delete");
    if (sqlite3_changes(db) == 0)
        return scim_err_set(err, 404, NULL, "webhook %s not found", x->id);
    return 0;
}

int scim_sqlite_webhook_delete(struct scim_store *st, int64_t tenant, const char *id,
                               struct scim_err *err)
{
    struct wh_ctx x = {.tenant = tenant, .id = id};
    return scim_sqlite_with_conn(st, true, wh_delete_fn, &x, err);
}

/* ---- delivery ------------------------------------------------------------------------------ */

/* Whether some webhook is due with events to deliver: 1 or 0, -1 on error. Read on a pool
 * connection before claiming: the claim is a write transaction on the writer connection,
 * and this poll runs after every committed write, so an idle claim took the writer from the
 * group commit (and SQLite's write lock) once per write with nothing to deliver. */
static int wh_due_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    const struct wh_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    if (prep(db, "SELECT EXISTS (SELECT 1 FROM webhooks w WHERE w.enabled = 1 AND w.next_attempt <= ?1"
                 " AND (w.lease_owner IS NULL OR w.lease_expires <= ?1)"
                 " AND EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = w.tenant_id"
                 "  AND e.seq > w.delivered_seq))",
             &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, x->now);
    int rc = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) != 0 : fail(db, err, "webhook due");
    scim_stmt_release(q);
    return rc;
}

static int wh_claim_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct wh_ctx *x = vctx;
    struct scim_webhook_job *j = x->job;
    sqlite3_stmt *q = NULL;
    int rc = -1;
    /* one conditional UPDATE: of two nodes racing for the same row, the second finds the lease
     * taken and claims nothing */
    if (prep(db, "UPDATE webhooks SET lease_owner = ?1, lease_expires = ?2 WHERE pk = ("
                 " SELECT w.pk FROM webhooks w WHERE w.enabled = 1 AND w.next_attempt <= ?3"
                 " AND (w.lease_owner IS NULL OR w.lease_expires <= ?3)"
                 " AND EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = w.tenant_id"
                 "  AND e.seq > w.delivered_seq)"
                 " ORDER BY w.next_attempt, w.pk LIMIT 1)"
                 " AND (lease_owner IS NULL OR lease_expires <= ?3) "
                 "RETURNING pk, tenant_id, id, url, secret, event_types, delivered_seq, attempts",
             &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, x->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, x->now + x->lease);
    sqlite3_bind_int64(q, 3, x->now);
    int step = sqlite3_step(q);
    if (step == SQLITE_DONE) {
        rc = 0;
    } else if (step == SQLITE_ROW) {
        json_error_t je;
        j->pk = sqlite3_column_int64(q, 0);
        j->tenant_id = sqlite3_column_int64(q, 1);
        snprintf(j->id, sizeof j->id, "%s", text_of(q, 2));
        j->url = scim_strdup(text_of(q, 3));
        j->secret = scim_strdup(text_of(q, 4));
        j->event_types = json_loads(text_of(q, 5), 0, &je);
        j->cursor = sqlite3_column_int64(q, 6);
        j->attempts = sqlite3_column_int64(q, 7);
        if (!j->url || !j->secret || !j->event_types)
            scim_err_nomem(err);
        else
            rc = 1;
        /* RETURNING: the statement must run to completion before COMMIT */
        while (sqlite3_step(q) == SQLITE_ROW)
            ;
    } else {
        fail(db, err, "webhook claim");
    }
    scim_stmt_release(q);
    if (rc < 0)
        scim_webhook_job_release(j);
    return rc;
}

int scim_sqlite_webhook_claim(struct scim_store *st, const char *owner, int64_t now_us,
                              int64_t lease_us, struct scim_webhook_job *job, struct scim_err *err)
{
    struct wh_ctx x = {.owner = owner, .now = now_us, .lease = lease_us, .job = job};
    int due = scim_sqlite_with_conn(st, false, wh_due_fn, &x, err);
    if (due <= 0)
        return due;
    return scim_sqlite_with_conn(st, true, wh_claim_fn, &x, err);
}

static int wh_progress_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct wh_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    bool attempted = x->status != 0 || x->error;
    if (prep(db, "UPDATE webhooks SET delivered_seq = max(delivered_seq, ?1), attempts = ?2, "
                 "next_attempt = ?3, "
                 "last_attempt = CASE WHEN ?4 THEN ?5 ELSE last_attempt END, "
                 "last_success = CASE WHEN ?4 AND ?7 IS NULL THEN ?5 ELSE last_success END, "
                 "last_status = CASE WHEN ?4 THEN ?6 ELSE last_status END, "
                 "last_error = CASE WHEN ?4 THEN ?7 ELSE last_error END, "
                 "lease_owner = CASE WHEN ?8 > 0 THEN lease_owner ELSE NULL END, "
                 "lease_expires = CASE WHEN ?8 > 0 THEN ?8 ELSE 0 END "
                 "WHERE pk = ?9 AND lease_owner = ?10", &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, x->cursor);
    sqlite3_bind_int64(q, 2, x->attempts);
    sqlite3_bind_int64(q, 3, x->next_attempt);
    sqlite3_bind_int(q, 4, attempted);
    sqlite3_bind_int64(q, 5, scim_now_ms_us());
    if (x->status)
        sqlite3_bind_int(q, 6, x->status);
    bind_opt_text(q, 7, x->error);
    sqlite3_bind_int64(q, 8, x->lease);
    sqlite3_bind_int64(q, 9, x->cjob->pk);
    sqlite3_bind_text(q, 10, x->owner, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    scim_stmt_release(q);
    if (step != SQLITE_DONE)
        return fail(db, err, "webhook progress");
    return sqlite3_changes(db) == 1 ? 0 : 1;
}

int scim_sqlite_webhook_progress(struct scim_store *st, const struct scim_webhook_job *job,
                                 const char *owner, int64_t cursor, int64_t attempts,
                                 int64_t next_attempt_us, int status, const char *error,
                                 int64_t lease_until_us, struct scim_err *err)
{
    struct wh_ctx x = {.cjob = job, .owner = owner, .cursor = cursor, .attempts = attempts,
                       .next_attempt = next_attempt_us, .status = status, .error = error,
                       .lease = lease_until_us};
    return scim_sqlite_with_conn(st, true, wh_progress_fn, &x, err);
}

static int wh_release_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    struct wh_ctx *x = vctx;
    sqlite3_stmt *q = NULL;
    if (prep(db, "UPDATE webhooks SET lease_owner = NULL, lease_expires = 0 "
                 "WHERE substr(lease_owner, 1, length(?1)) = ?1", &q, err) < 0)
        return -1;
    sqlite3_bind_text(q, 1, x->owner, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    scim_stmt_release(q);
    return step == SQLITE_DONE ? 0 : fail(db, err, "webhook lease release");
}

int scim_sqlite_webhook_release_leases(struct scim_store *st, const char *prefix,
                                       struct scim_err *err)
{
    struct wh_ctx x = {.owner = prefix};
    return scim_sqlite_with_conn(st, true, wh_release_fn, &x, err);
}
