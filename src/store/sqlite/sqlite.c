/* The SQLite backend: a pool of connections, versioned migrations, prepared statements, and
 * the resource/token operations of store.h. The only code in scimd that includes sqlite3.h.
 *
 * Threading: connections are opened with SQLITE_OPEN_NOMUTEX and each is used by one thread at
 * a time, handed out by the pool (mutex + condition variable). Writers take the database write
 * lock up front with BEGIN IMMEDIATE, so two read-then-write transactions never deadlock on a
 * lock upgrade; busy_timeout makes them queue instead of failing. On a file database the writes
 * of request traffic go through one more connection, the writer, as group-committed jobs
 * (gcommit.h; docs/INTERNALS.md "SQLite write path: group commit"). */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>

#include "common/util.h"
#include "store/events.h"
#include "store/sql/sqlgen.h"
#include "store/sqlite/ckpt.h"
#include "store/sqlite/gcommit.h"
#include "store/sqlite/sqlite_feed.h"
#include "store/sqlite/stmt_cache.h"
#include "store/store_impl.h"

enum stmt_id {
    S_BEGIN,
    S_BEGIN_IMMEDIATE,
    S_COMMIT,
    S_ROLLBACK,
    S_TENANT_INSERT,
    S_TENANT_GET,
    S_TOKEN_INSERT,
    S_TOKEN_FIND,
    S_TOKEN_TOUCH,
    S_TOKEN_LIST,
    S_TOKEN_REVOKE,
    S_TOKEN_COUNT,
    S_RES_INSERT,
    S_RES_GET,
    S_RES_UPDATE_DOC,
    S_RES_BUMP,
    S_RES_DELETE,
    S_RES_PK,
    S_EMAILS_DELETE,
    S_EMAILS_INSERT,
    S_MEMBER_INSERT,
    S_MEMBER_DELETE,
    S_MEMBERS_CLEAR,
    S_MEMBERS_OF,
    S_GROUPS_OF,
    S_BUMP_GROUPS_OF,
    S_MEMBERS_OF_ALL,
    S_GROUPS_DIRECT,
    S_TENANT_GET_BY_ID,
    S_TENANT_GET_BY_NAME,
    S_MEMBER_EXISTS,
    S_GROUPS_DIRECT_NESTED,
    S_GROUPS_OF_PAGE,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN",
    [S_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_TENANT_INSERT] = "INSERT INTO tenants(name, created) VALUES ('default', ?) "
                        "ON CONFLICT(name) DO NOTHING",
    [S_TENANT_GET] = "SELECT id FROM tenants WHERE name = 'default'",
    [S_TOKEN_INSERT] = "INSERT INTO tokens(tenant_id, name, hash, scopes, created, expires) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
    [S_TOKEN_FIND] = "SELECT id, tenant_id, name, scopes, created, last_used, expires FROM tokens "
                     "WHERE hash = ? AND revoked IS NULL AND (expires IS NULL OR expires > ?)",
    [S_TOKEN_TOUCH] = "UPDATE tokens SET last_used = ? WHERE id = ?",
    [S_TOKEN_LIST] = "SELECT name, scopes, created, last_used, expires FROM tokens "
                     "WHERE tenant_id = ? AND revoked IS NULL ORDER BY id",
    [S_TOKEN_REVOKE] = "UPDATE tokens SET revoked = ? WHERE tenant_id = ? AND name = ? "
                       "AND revoked IS NULL",
    [S_TOKEN_COUNT] = "SELECT count(*) FROM tokens WHERE tenant_id = ? AND revoked IS NULL "
                      "AND (expires IS NULL OR expires > ?)",
    [S_RES_INSERT] = "INSERT INTO resources(tenant_id, kind, id, user_name, external_id, "
                     "display_name, active, created, last_modified, version, password_hash, doc) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
    [S_RES_GET] = "SELECT pk, id, created, last_modified, version, doc, origin, managed_by, "
                  "deprovisioned FROM resources "
                  "WHERE tenant_id = ? AND kind = ? AND id = ?",
    [S_RES_UPDATE_DOC] = "UPDATE resources SET user_name = ?, external_id = ?, display_name = ?, "
                         "active = ?, doc = ?, password_hash = coalesce(?, password_hash), "
                         "version = version + 1, last_modified = ? WHERE pk = ? AND version = ?",
    [S_RES_BUMP] = "UPDATE resources SET password_hash = coalesce(?, password_hash), "
                   "version = version + 1, last_modified = ? WHERE pk = ? AND version = ?",
    [S_RES_DELETE] = "DELETE FROM resources WHERE pk = ?",
    /* kind IN (0, 1) lets the (tenant_id, kind, id) index serve a lookup of either kind */
    [S_RES_PK] = "SELECT pk, kind FROM resources WHERE tenant_id = ? AND kind IN (0, 1) AND id = ? "
                 "AND deprovisioned = 0",
    [S_EMAILS_DELETE] = "DELETE FROM emails WHERE resource_pk = ?",
    [S_EMAILS_INSERT] = "INSERT INTO emails(resource_pk, tenant_id, value, type, primary_) "
                        "VALUES (?, ?, ?, ?, ?)",
    /* a SCIM add of a pair that exists with another origin makes it the IdP's */
    [S_MEMBER_INSERT] = "INSERT INTO members(group_pk, member_pk, display, origin) VALUES (?, ?, ?, ?4) "
                        "ON CONFLICT(group_pk, member_pk) DO UPDATE SET origin = "
                        "CASE WHEN ?4 = 'scim' THEN 'scim' ELSE origin END",
    [S_MEMBER_DELETE] = "DELETE FROM members WHERE group_pk = ? AND member_pk = "
                        "(SELECT pk FROM resources WHERE tenant_id = ? AND kind IN (0, 1) AND id = ?) "
                        "AND (?4 OR origin = 'scim')",
    [S_MEMBERS_CLEAR] = "DELETE FROM members WHERE group_pk = ? AND origin = 'scim'",
    [S_MEMBERS_OF] = "SELECT x.id, x.kind, coalesce(mb.display, x.display_name, x.user_name), mb.origin "
                     "FROM members mb JOIN resources x ON x.pk = mb.member_pk "
                     "WHERE mb.group_pk = ? AND mb.origin = 'scim' AND x.deprovisioned = 0 "
                     "ORDER BY mb.seq",
    [S_MEMBERS_OF_ALL] = "SELECT x.id, x.kind, coalesce(mb.display, x.display_name, x.user_name), "
                         "mb.origin FROM members mb JOIN resources x ON x.pk = mb.member_pk "
                         "WHERE mb.group_pk = ? ORDER BY mb.seq",
    [S_GROUPS_DIRECT] = "SELECT g.id, g.display_name, m.origin FROM members m "
                        "JOIN resources g ON g.pk = m.group_pk WHERE m.member_pk = ? ORDER BY m.seq",
    [S_TENANT_GET_BY_ID] = "SELECT id, name, created, disabled, settings FROM tenants WHERE id = ?",
    [S_TENANT_GET_BY_NAME] = "SELECT id, name, created, disabled, settings FROM tenants WHERE name = ?",
    [S_MEMBER_EXISTS] = "SELECT 1 FROM members WHERE group_pk = ? AND member_pk = ?",
    /* direct groups, then the groups reached through nested groups (UNION stops cycles) */
    [S_GROUPS_OF] = "WITH RECURSIVE anc(pk) AS ("
                    " SELECT group_pk FROM members WHERE member_pk = ?1"
                    " UNION SELECT m.group_pk FROM members m JOIN anc ON m.member_pk = anc.pk) "
                    "SELECT g.id, g.display_name, "
                    " EXISTS (SELECT 1 FROM members d WHERE d.member_pk = ?1 AND d.group_pk = g.pk) AS direct "
                    "FROM anc JOIN resources g ON g.pk = anc.pk WHERE g.pk <> ?1 "
                    "ORDER BY direct DESC, g.pk",
    /* a user's direct groups, each with whether it is itself a member of a group: when none
     * is, the user has no indirect groups and S_GROUPS_OF's recursive query is not needed */
    [S_GROUPS_DIRECT_NESTED] = "SELECT g.id, g.display_name, "
                               " EXISTS (SELECT 1 FROM members n WHERE n.member_pk = g.pk) "
                               "FROM members m JOIN resources g ON g.pk = m.group_pk "
                               "WHERE m.member_pk = ?1 AND g.pk <> ?1 ORDER BY g.pk",
    /* S_GROUPS_DIRECT_NESTED for every user of a list page at once (?1: a JSON array of
     * their pks): one statement per page instead of one per user */
    [S_GROUPS_OF_PAGE] = "SELECT m.member_pk, g.id, g.display_name, "
                         " EXISTS (SELECT 1 FROM members n WHERE n.member_pk = g.pk) "
                         "FROM json_each(?1) p JOIN members m ON m.member_pk = p.value "
                         "JOIN resources g ON g.pk = m.group_pk "
                         "WHERE g.pk <> m.member_pk ORDER BY m.member_pk, g.pk",
    [S_BUMP_GROUPS_OF] = "UPDATE resources SET version = version + 1, last_modified = ? "
                         "WHERE pk IN (SELECT group_pk FROM members WHERE member_pk = ?)",
};

/* Migration n (1-based) is migrations[n - 1]; each runs in one transaction and records its
 * number in schema_migrations. Never edit a released migration: append a new one. */
static const char *const migrations[] = {
    "CREATE TABLE tenants(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL);"
    "CREATE TABLE tokens(id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    " name TEXT NOT NULL, hash BLOB NOT NULL UNIQUE, scopes TEXT NOT NULL, created INTEGER,"
    " last_used INTEGER, expires INTEGER, revoked INTEGER);"
    "CREATE UNIQUE INDEX tokens_live_name ON tokens(tenant_id, name) WHERE revoked IS NULL;"
    "CREATE TABLE resources(pk INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL,"
    " kind INTEGER NOT NULL, id TEXT NOT NULL, user_name TEXT COLLATE NOCASE, external_id TEXT,"
    " display_name TEXT COLLATE NOCASE, active INTEGER, created INTEGER NOT NULL,"
    " last_modified INTEGER NOT NULL, version INTEGER NOT NULL, password_hash TEXT,"
    " doc TEXT NOT NULL);"
    "CREATE UNIQUE INDEX resources_id ON resources(tenant_id, kind, id);"
    "CREATE UNIQUE INDEX resources_user_name ON resources(tenant_id, user_name) WHERE kind = 0;"
    "CREATE INDEX resources_external_id ON resources(tenant_id, kind, external_id);"
    "CREATE INDEX resources_display_name ON resources(tenant_id, kind, display_name);"
    "CREATE INDEX resources_kind ON resources(tenant_id, kind);" /* + rowid: creation order */
    "CREATE TABLE emails(resource_pk INTEGER NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,"
    " tenant_id INTEGER NOT NULL, value TEXT COLLATE NOCASE NOT NULL, type TEXT, primary_ INTEGER);"
    "CREATE INDEX emails_value ON emails(tenant_id, value);"
    "CREATE INDEX emails_resource ON emails(resource_pk);"
    /* seq (the rowid) keeps insertion order for the members output */
    "CREATE TABLE members(seq INTEGER PRIMARY KEY,"
    " group_pk INTEGER NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,"
    " member_pk INTEGER NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,"
    " display TEXT, UNIQUE(group_pk, member_pk));"
    "CREATE INDEX members_member ON members(member_pk, group_pk);",
    /* 2: tenants, provisioning policies and the admin view (issue 4) */
    "ALTER TABLE tenants ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tenants ADD COLUMN settings TEXT;"
    "ALTER TABLE resources ADD COLUMN origin TEXT NOT NULL DEFAULT 'scim';"
    "ALTER TABLE resources ADD COLUMN managed_by TEXT;"
    "ALTER TABLE resources ADD COLUMN deprovisioned INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE members ADD COLUMN origin TEXT NOT NULL DEFAULT 'scim';"
    "CREATE INDEX tokens_tenant ON tokens(tenant_id);"
    "CREATE INDEX emails_resource_primary ON emails(resource_pk, primary_);",
    /* 3: the provisioning log (issue 5). AUTOINCREMENT: ids never come back after a prune or a
     * tenant deletion, so "entries after id N" stays a valid way to follow the log. */
    "CREATE TABLE provisioning_log(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " tenant_id INTEGER NOT NULL, time INTEGER NOT NULL, request_id TEXT,"
    " bulk_index INTEGER NOT NULL DEFAULT 0, token TEXT, client TEXT, method TEXT, path TEXT,"
    " resource_type TEXT, resource_id TEXT, user_name TEXT COLLATE NOCASE,"
    " display_name TEXT COLLATE NOCASE, status INTEGER NOT NULL, scim_type TEXT, detail TEXT,"
    " latency_us INTEGER, compat TEXT);"
    "CREATE INDEX provisioning_log_tenant ON provisioning_log(tenant_id);" /* + rowid: id order */
    "CREATE INDEX provisioning_log_time ON provisioning_log(time);"
    "CREATE INDEX provisioning_log_user ON provisioning_log(tenant_id, user_name);",
    /* 4: the change feed and webhooks (issue 5; store/sqlite/feed.c) */
    "CREATE TABLE event_seq(tenant_id INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL);"
    "CREATE TABLE events(tenant_id INTEGER NOT NULL, seq INTEGER NOT NULL, created INTEGER NOT NULL,"
    " type TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY(tenant_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE webhooks(pk INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL, id TEXT NOT NULL UNIQUE,"
    " url TEXT NOT NULL, secret TEXT NOT NULL, event_types TEXT NOT NULL,"
    " enabled INTEGER NOT NULL DEFAULT 1, created INTEGER NOT NULL,"
    " delivered_seq INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL DEFAULT 0, last_attempt INTEGER, last_success INTEGER,"
    " last_status INTEGER, last_error TEXT, lease_owner TEXT, lease_expires INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX webhooks_tenant ON webhooks(tenant_id);",
    /* 5: SCIM lists and counts only live rows (deprovisioned = 0); with the flag in an index
     * they are answered from the index alone. Without it every unfiltered page (count(*) and
     * OFFSET) read the whole table: 1 s per GET /Users page at 1M users (BENCHMARKS.md). */
    "CREATE INDEX IF NOT EXISTS resources_live ON resources(tenant_id, kind, deprovisioned);",
    /* 6: the number of live (not deprovisioned) rows per tenant and kind, kept by triggers in
     * the writing transaction itself, so it is exact in every snapshot: the totalResults of an
     * unfiltered SCIM list without a count(*) over the index (O(N): ~500M instructions per
     * page at 1M users, BENCHMARKS.md "Read path"). */
    "CREATE TABLE resource_counts(tenant_id INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " live INTEGER NOT NULL, PRIMARY KEY(tenant_id, kind)) WITHOUT ROWID;"
    "INSERT INTO resource_counts(tenant_id, kind, live) SELECT tenant_id, kind, count(*)"
    " FROM resources WHERE deprovisioned = 0 GROUP BY tenant_id, kind;"
    "CREATE TRIGGER resource_counts_ins AFTER INSERT ON resources WHEN NEW.deprovisioned = 0 BEGIN"
    " INSERT INTO resource_counts(tenant_id, kind, live) VALUES (NEW.tenant_id, NEW.kind, 1)"
    " ON CONFLICT(tenant_id, kind) DO UPDATE SET live = live + 1; END;"
    "CREATE TRIGGER resource_counts_del AFTER DELETE ON resources WHEN OLD.deprovisioned = 0 BEGIN"
    " UPDATE resource_counts SET live = live - 1 WHERE tenant_id = OLD.tenant_id AND kind = OLD.kind; END;"
    "CREATE TRIGGER resource_counts_upd AFTER UPDATE OF tenant_id, kind, deprovisioned ON resources"
    " WHEN OLD.deprovisioned <> NEW.deprovisioned OR OLD.tenant_id <> NEW.tenant_id"
    " OR OLD.kind <> NEW.kind BEGIN"
    " UPDATE resource_counts SET live = live - 1 WHERE OLD.deprovisioned = 0"
    " AND tenant_id = OLD.tenant_id AND kind = OLD.kind;"
    " INSERT INTO resource_counts(tenant_id, kind, live) SELECT NEW.tenant_id, NEW.kind, 1"
    " WHERE NEW.deprovisioned = 0 ON CONFLICT(tenant_id, kind) DO UPDATE SET live = live + 1; END;",
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    bool busy;
    bool in_tx;      /* inside a write transaction opened by begin_write */
    bool committing; /* our own COMMIT is running */
    struct scim_stmt_cache cache; /* list queries, by SQL text (stmt_cache.h) */
    struct scim_gc *gc; /* the writer connection: its writes are group-committed jobs */
};

/* SQLite rolls a transaction back by itself on some errors (SQLITE_NOMEM, SQLITE_FULL, ...).
 * Every later statement of the same write would then run in autocommit mode and commit on its
 * own: a partial write. While we are inside a write transaction, any commit other than our
 * explicit COMMIT is therefore vetoed (the hook's non-zero return turns it into a rollback and
 * the statement fails), so a write is all or nothing whichever statement path runs it. */
static int commit_guard(void *arg)
{
    const struct conn *c = arg;
    return c->in_tx && !c->committing;
}

/* At most this many jobs share one COMMIT: bounds how long the first job of a batch waits for
 * the jobs queued behind it. */
#define SCIM_SQLITE_GC_MAX_BATCH 64

struct sqlite_store {
    struct scim_store base; /* first: casts between the two are valid */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct conn *conns;
    int n_conns;
    struct conn *writer; /* file databases: the group-commit connection (gcommit.h) */
    struct scim_gc gc;
    struct scim_ckpt ckpt; /* checkpoints the writer's WAL off the write path (ckpt.h) */
};

static struct sqlite_store *ss(struct scim_store *st)
{
    return (struct sqlite_store *)st;
}

/* ---- errors, statements, transactions -------------------------------------------------- */

static int db_fail(struct conn *c, struct scim_err *err, const char *what)
{
    return scim_err_internal(err, "sqlite %s: %s (%d)", what, sqlite3_errmsg(c->db),
                             sqlite3_extended_errcode(c->db));
}

/* The prepared statement `id` of this connection, prepared on first use and kept for the life
 * of the connection. Always release with done(). */
static sqlite3_stmt *stmt(struct conn *c, enum stmt_id id, struct scim_err *err)
{
    if (!c->st[id] &&
        sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL) !=
            SQLITE_OK) {
        db_fail(c, err, "prepare");
        return NULL;
    }
    return c->st[id];
}

/* Text and blobs are bound SQLITE_STATIC: the caller's buffers outlive the step, and a
 * static binding never allocates, whereas a failed copy (SQLITE_TRANSIENT out of memory)
 * left the parameter NULL while the statement still ran: a token or resource "not found",
 * a member silently skipped. Clearing the bindings here leaves no pointer behind. */
static void done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

static int exec_stmt(struct conn *c, enum stmt_id id, struct scim_err *err)
{
    sqlite3_stmt *s = stmt(c, id, err);
    if (!s)
        return -1;
    int rc = sqlite3_step(s);
    done(s);
    return rc == SQLITE_DONE ? 0 : db_fail(c, err, stmt_sql[id]);
}

static int begin_write(struct conn *c, struct scim_err *err)
{
    if (c->gc)
        return scim_gc_begin(c->gc, err);
    if (exec_stmt(c, S_BEGIN_IMMEDIATE, err) < 0)
        return -1;
    c->in_tx = true;
    return 0;
}

static int commit(struct conn *c, struct scim_err *err)
{
    int rc;
    if (c->gc)
        return scim_gc_commit(c->gc, err); /* returns once the batch is durable */
    c->committing = true;
    rc = exec_stmt(c, S_COMMIT, err);
    c->committing = false;
    if (rc == 0) {
        c->in_tx = false;
        return 0;
    }
    struct scim_err ignored;
    if (!sqlite3_get_autocommit(c->db))
        exec_stmt(c, S_ROLLBACK, &ignored);
    c->in_tx = false;
    return -1;
}

static void rollback(struct conn *c)
{
    struct scim_err ignored;
    if (!sqlite3_get_autocommit(c->db))
        exec_stmt(c, S_ROLLBACK, &ignored);
    c->in_tx = false;
}

static int bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : NULL;
}

/* ---- pool -------------------------------------------------------------------------------- */

static struct conn *acquire(struct sqlite_store *s)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        for (int i = 0; i < s->n_conns; i++) {
            if (!s->conns[i].busy) {
                s->conns[i].busy = true;
                pthread_mutex_unlock(&s->mu);
                return &s->conns[i];
            }
        }
        pthread_cond_wait(&s->cv, &s->mu);
    }
}

static void release(struct sqlite_store *s, struct conn *c)
{
    if (c->gc) {
        scim_gc_leave(c->gc); /* rolls back to the job's savepoint if it did not commit */
        return;
    }
    rollback(c); /* a transaction left open by a failed path must not leak to the next user */
    pthread_mutex_lock(&s->mu);
    c->busy = false;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* The connection for a write transaction: the group-commit writer (after waiting for this
 * thread's turn) when there is one, else a pooled connection. Released with release(). */
static struct conn *acquire_writer(struct sqlite_store *s)
{
    if (!s->writer)
        return acquire(s);
    scim_gc_enter(&s->gc);
    return s->writer;
}

static void fn_datetime_us(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *t = sqlite3_value_text(argv[0]);
    int64_t us;
    if (t && scim_datetime_parse((const char *)t, &us) == 0)
        sqlite3_result_int64(ctx, us);
    else
        sqlite3_result_null(ctx);
}

static int conn_open(struct conn *c, const char *path, bool memory, int busy_ms, bool sync_normal,
                     struct scim_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        scim_err_set(err, 500, NULL, "cannot open database \"%s\": %s", path,
                     c->db ? sqlite3_errmsg(c->db) : "out of memory");
        scim_err_log(err, "sqlite open %s failed", path);
        return -1;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, busy_ms);
    sqlite3_commit_hook(c->db, commit_guard, c);
    /* WAL: readers never block the writer. synchronous=FULL: in WAL mode NORMAL would survive
     * a crash of the process (kill -9) but could lose the last commits on power loss; FULL syncs
     * the WAL at every commit, so an acknowledged write survives both. */
    const char *pragmas = memory        ? "PRAGMA foreign_keys=ON;"
                          : sync_normal ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                                          "PRAGMA foreign_keys=ON;"
                                        : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                                          "PRAGMA foreign_keys=ON;";
    char *msg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        scim_err_set(err, 500, NULL, "cannot open database \"%s\": %s", path, msg ? msg : "pragma failed");
        sqlite3_free(msg);
        return -1;
    }
    if (sqlite3_create_function(c->db, "scim_datetime_us", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                fn_datetime_us, NULL, NULL) != SQLITE_OK)
        return db_fail(c, err, "create_function");
    scim_stmt_cache_attach(&c->cache, c->db);
    return 0;
}

static int migrate(struct conn *c, struct scim_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY)",
                     NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    size_t n = sizeof(migrations) / sizeof(migrations[0]);
    for (size_t v = 1; v <= n; v++) {
        if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
        sqlite3_stmt *q = NULL;
        int have = 0;
        if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM schema_migrations WHERE version = ?", -1, &q, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_int64(q, 1, (sqlite3_int64)v);
            have = sqlite3_step(q) == SQLITE_ROW;
        }
        scim_stmt_release(q);
        if (!have) {
            char rec[96];
            snprintf(rec, sizeof(rec), "INSERT INTO schema_migrations(version) VALUES (%zu)", v);
            if (sqlite3_exec(c->db, migrations[v - 1], NULL, NULL, &msg) != SQLITE_OK ||
                sqlite3_exec(c->db, rec, NULL, NULL, &msg) != SQLITE_OK) {
                sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
                goto fail;
            }
        }
        if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
    }
    return 0;
fail:
    scim_err_internal(err, "sqlite migration: %s", msg ? msg : sqlite3_errmsg(c->db));
    sqlite3_free(msg);
    return -1;
}

static void conn_close(struct conn *c)
{
    for (int j = 0; j < S_COUNT; j++)
        sqlite3_finalize(c->st[j]);
    scim_stmt_cache_detach(c->db);
    scim_stmt_cache_clear(&c->cache);
    sqlite3_close_v2(c->db);
}

static void sqlite_free(struct scim_store *st)
{
    struct sqlite_store *s = ss(st);
    scim_ckpt_stop(&s->ckpt); /* first: the writer's WAL hook points at it */
    if (s->writer) {
        if (s->writer->gc)
            scim_gc_destroy(&s->gc);
        conn_close(s->writer);
        free(s->writer);
    }
    for (int i = 0; i < s->n_conns; i++)
        conn_close(&s->conns[i]);
    free(s->conns);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int prepare_dyn(struct conn *c, const char *sql, sqlite3_stmt **q, struct scim_err *err);

/* ---- resource output ---------------------------------------------------------------- */

static int load_members(struct conn *c, int64_t pk, bool admin, json_t *obj, struct scim_err *err)
{
    sqlite3_stmt *s = stmt(c, admin ? S_MEMBERS_OF_ALL : S_MEMBERS_OF, err);
    if (!s)
        return -1;
    json_t *arr = json_array();
    int rc;
    if (!arr || json_object_set_new(obj, "members", arr) < 0) {
        done(s);
        return scim_err_nomem(err);
    }
    sqlite3_bind_int64(s, 1, pk);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *disp = col_text(s, 2);
        json_t *m = json_pack("{s:s, s:s}", "value", col_text(s, 0), "type",
                              sqlite3_column_int(s, 1) == 0 ? "User" : "Group");
        if (!m || (disp && json_object_set_new(m, "display", json_string(disp)) < 0) ||
            (admin && json_object_set_new(m, "origin", json_string(col_text(s, 3))) < 0) ||
            json_array_append_new(arr, m) < 0) {
            json_decref(m);
            done(s);
            return scim_err_nomem(err);
        }
    }
    done(s);
    return rc == SQLITE_DONE ? 0 : db_fail(c, err, "members");
}

/* The admin view of a user's groups: direct memberships with their origin. */
static int load_groups_direct(struct conn *c, int64_t pk, json_t *obj, struct scim_err *err)
{
    sqlite3_stmt *s = stmt(c, S_GROUPS_DIRECT, err);
    if (!s)
        return -1;
    json_t *arr = json_array();
    int rc;
    if (!arr || json_object_set_new(obj, "groups", arr) < 0) {
        done(s);
        return scim_err_nomem(err);
    }
    sqlite3_bind_int64(s, 1, pk);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *disp = col_text(s, 1);
        json_t *m = json_pack("{s:s, s:s, s:s}", "value", col_text(s, 0), "type", "direct",
                              "origin", col_text(s, 2));
        if (!m || (disp && json_object_set_new(m, "display", json_string(disp)) < 0) ||
            json_array_append_new(arr, m) < 0) {
            json_decref(m);
            done(s);
            return scim_err_nomem(err);
        }
    }
    done(s);
    return rc == SQLITE_DONE ? 0 : db_fail(c, err, "groups");
}

/* The SCIM view of a user's groups: direct ones first, then those reached through nested
 * groups, each by pk. The recursive query (S_GROUPS_OF) costs ~100,000 instructions even for a
 * user in one group; most users are in no nested group, so the direct groups are read first
 * and the recursive query runs only when one of them is itself a member of a group. */
static int load_groups(struct conn *c, int64_t pk, json_t *obj, struct scim_err *err)
{
    sqlite3_stmt *s = stmt(c, S_GROUPS_DIRECT_NESTED, err);
    if (!s)
        return -1;
    json_t *arr = json_array();
    int rc;
    bool nested = false;
    if (!arr || json_object_set_new(obj, "groups", arr) < 0) {
        done(s);
        return scim_err_nomem(err);
    }
    sqlite3_bind_int64(s, 1, pk);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_int(s, 2)) {
            nested = true;
            break;
        }
        const char *disp = col_text(s, 1);
        json_t *m = json_pack("{s:s, s:s}", "value", col_text(s, 0), "type", "direct");
        if (!m || (disp && json_object_set_new(m, "display", json_string(disp)) < 0) ||
            json_array_append_new(arr, m) < 0) {
            json_decref(m);
            done(s);
            return scim_err_nomem(err);
        }
    }
    done(s);
    if (!nested)
        return rc == SQLITE_DONE ? 0 : db_fail(c, err, "groups");
    if (json_array_clear(arr) < 0)
        return scim_err_nomem(err);
    if (!(s = stmt(c, S_GROUPS_OF, err)))
        return -1;
    sqlite3_bind_int64(s, 1, pk);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *disp = col_text(s, 1);
        json_t *m = json_pack("{s:s, s:s}", "value", col_text(s, 0), "type",
                              sqlite3_column_int(s, 2) ? "direct" : "indirect");
        if (!m || (disp && json_object_set_new(m, "display", json_string(disp)) < 0) ||
            json_array_append_new(arr, m) < 0) {
            json_decref(m);
            done(s);
            return scim_err_nomem(err);
        }
    }
    done(s);
    return rc == SQLITE_DONE ? 0 : db_fail(c, err, "groups");
}

/* The SCIM object of a row: schemas, id, the doc attributes, meta, members/groups. */
static int build_resource(struct conn *c, enum scim_rtype kind, const struct scim_store_row *r,
                          const char *doc_text, unsigned flags, json_t **out, struct scim_err *err)
{
    bool admin = (flags & SCIM_STORE_ADMIN) != 0;
    json_t *obj = NULL;

    if (scim_store_row_json("sqlite", kind, r, doc_text, admin, &obj, err) < 0)
        return -1;
    if (kind == SCIM_RT_GROUP && (flags & (SCIM_STORE_MEMBERS | SCIM_STORE_LOAD_MEMBERS)) &&
        load_members(c, r->pk, admin, obj, err) < 0)
        goto fail;
    if (kind == SCIM_RT_USER && (flags & SCIM_STORE_GROUPS) &&
        (admin ? load_groups_direct(c, r->pk, obj, err) : load_groups(c, r->pk, obj, err)) < 0)
        goto fail;
    *out = obj;
    return 0;
fail:
    json_decref(obj);
    return -1;
}

/* The row columns of S_RES_GET and of list pages: pk, id, created, last_modified, version,
 * doc (5, not read here), origin, managed_by, deprovisioned. */
static void row_cols(sqlite3_stmt *s, struct scim_store_row *r)
{
    r->pk = sqlite3_column_int64(s, 0);
    scim_copy_str(r->id, sizeof(r->id), col_text(s, 1));
    r->created = sqlite3_column_int64(s, 2);
    r->last_modified = sqlite3_column_int64(s, 3);
    r->version = sqlite3_column_int64(s, 4);
    scim_copy_str(r->origin, sizeof(r->origin), col_text(s, 6) ? col_text(s, 6) : "scim");
    scim_copy_str(r->managed_by, sizeof(r->managed_by), col_text(s, 7));
    r->deprovisioned = sqlite3_column_int(s, 8) != 0;
}

/* Reads a row by (tenant, kind, id): 1 found (and *doc_text malloc'ed), 0 absent, -1 error. */
static int read_row(struct conn *c, int64_t tenant, enum scim_rtype kind, const char *id,
                    struct scim_store_row *r, char **doc_text, struct scim_err *err)
{
    sqlite3_stmt *s = stmt(c, S_RES_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, tenant);
    sqlite3_bind_int(s, 2, (int)kind);
    sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        done(s);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        done(s);
        return db_fail(c, err, "read resource");
    }
    row_cols(s, r);
    *doc_text = scim_strdup(col_text(s, 5));
    done(s);
    if (!*doc_text)
        return scim_err_nomem(err);
    return 1;
}

static int get_resource(struct conn *c, int64_t tenant, enum scim_rtype kind, const char *id,
                        unsigned flags, json_t **out, struct scim_store_row *r_out, struct scim_err *err)
{
    struct scim_store_row r;
    char *doc = NULL;
    int rc = read_row(c, tenant, kind, id, &r, &doc, err);
    if (rc > 0 && r.deprovisioned && !(flags & SCIM_STORE_ADMIN)) {
        free(doc); /* deprovisioned: gone for the IdP */
        doc = NULL;
        rc = 0;
    }
    if (rc == 0)
        return scim_err_set(err, 404, NULL, "%s \"%s\" not found", kind == SCIM_RT_USER ? "User" : "Group", id);
    if (rc < 0)
        return -1;
    rc = build_resource(c, kind, &r, doc, flags, out, err);
    free(doc);
    if (r_out)
        *r_out = r;
    return rc;
}

/* ---- writes ------------------------------------------------------------------------- */

/* The indexed columns, taken from the doc on every write. */
struct cols {
    const char *user_name, *external_id, *display_name;
    int active; /* -1 absent */
};

static void extract_cols(enum scim_rtype kind, json_t *doc, struct cols *k)
{
    k->user_name = kind == SCIM_RT_USER ? json_string_value(json_object_get(doc, "userName")) : NULL;
    k->external_id = json_string_value(json_object_get(doc, "externalId"));
    k->display_name = json_string_value(json_object_get(doc, "displayName"));
    json_t *a = json_object_get(doc, "active");
    k->active = json_is_boolean(a) ? json_is_true(a) : -1;
}

/* A failed write: UNIQUE on user_name is the client's 409, anything else is ours. */
static int write_fail(struct conn *c, const struct cols *k, struct scim_err *err)
{
    if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE &&
        strstr(sqlite3_errmsg(c->db), "user_name")) {
        scim_err_set(err, 409, SCIM_TYPE_UNIQUENESS, "userName \"%s\" is already in use",
                     k->user_name ? k->user_name : "");
        return scim_err_log(err, "sqlite: %s", sqlite3_errmsg(c->db));
    }
    return db_fail(c, err, "write resource");
}

/* Rewrites the emails rows of a resource from doc.emails. */
static int sync_emails(struct conn *c, int64_t tenant, int64_t pk, json_t *doc, bool had_rows,
                       struct scim_err *err)
{
    sqlite3_stmt *s;
    if (had_rows) {
        if (!(s = stmt(c, S_EMAILS_DELETE, err)))
            return -1;
        sqlite3_bind_int64(s, 1, pk);
        int rc = sqlite3_step(s);
        done(s);
        if (rc != SQLITE_DONE)
            return db_fail(c, err, "emails delete");
    }
    json_t *emails = json_object_get(doc, "emails");
    size_t i;
    json_t *e;
    json_array_foreach(emails, i, e) {
        const char *v = json_string_value(json_object_get(e, "value"));
        if (!v)
            continue;
        if (!(s = stmt(c, S_EMAILS_INSERT, err)))
            return -1;
        json_t *prim = json_object_get(e, "primary");
        sqlite3_bind_int64(s, 1, pk);
        sqlite3_bind_int64(s, 2, tenant);
        sqlite3_bind_text(s, 3, v, -1, SQLITE_STATIC);
        bind_text_or_null(s, 4, json_string_value(json_object_get(e, "type")));
        if (json_is_boolean(prim))
            sqlite3_bind_int(s, 5, json_is_true(prim));
        int rc = sqlite3_step(s);
        done(s);
        if (rc != SQLITE_DONE)
            return db_fail(c, err, "emails insert");
    }
    return 0;
}

/* pk of a resource of either kind: 1 found, 0 absent, -1 error. */
static int lookup_pk(struct conn *c, int64_t tenant, const char *id, int64_t *pk, int *kind,
                     struct scim_err *err)
{
    sqlite3_stmt *s = stmt(c, S_RES_PK, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, tenant);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *pk = sqlite3_column_int64(s, 0);
        if (kind)
            *kind = sqlite3_column_int(s, 1);
    }
    done(s);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(c, err, "member lookup");
}

/* The change feed's view of one group write: the events collected so far and the memberships
 * a "clear" removed, so that a member cleared and added back by the same write (a PUT or a
 * replace of members) yields no event. */
struct mev {
    json_t *events;     /* array (store/events.h) */
    const char *gid;    /* the group's id and displayName */
    const char *gname;
    json_t *cleared;    /* object: member id -> kind, or NULL */
    json_t *added;      /* when set, member_added events wait here so that removals come first */
};

/* 1 if the membership row exists, 0 if not, -1 error. */
static int member_exists(struct conn *c, int64_t group_pk, int64_t member_pk, struct scim_err *err)
{
    sqlite3_stmt *s = stmt(c, S_MEMBER_EXISTS, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, group_pk);
    sqlite3_bind_int64(s, 2, member_pk);
    int rc = sqlite3_step(s);
    done(s);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(c, err, "member exists");
}

/* Adds members one row each (no read of the member list): unknown ids and the group itself
 * are skipped and counted. A membership that did not exist before yields group.member_added. */
static int add_members(struct conn *c, int64_t tenant, int64_t group_pk, json_t *members,
                       const char *origin, int *skipped, struct mev *ev, struct scim_err *err)
{
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *v = json_is_string(m) ? json_string_value(m)
                                          : json_string_value(json_object_get(m, "value"));
        int64_t mpk = 0;
        int mkind = -1;
        int found = v ? lookup_pk(c, tenant, v, &mpk, &mkind, err) : 0;
        if (found < 0)
            return -1;
        if (!found || mpk == group_pk) {
            (*skipped)++;
            continue;
        }
        int existed = member_exists(c, group_pk, mpk, err);
        if (existed < 0)
            return -1;
        if (!existed) {
            if (ev->cleared && json_object_get(ev->cleared, v))
                json_object_del(ev->cleared, v); /* cleared and added back: no change */
            else if (scim_events_member(ev->added ? ev->added : ev->events, ev->gid, ev->gname, v,
                                        mkind, true, err) < 0)
                return -1;
        }
        sqlite3_stmt *s = stmt(c, S_MEMBER_INSERT, err);
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, group_pk);
        sqlite3_bind_int64(s, 2, mpk);
        bind_text_or_null(s, 3, json_string_value(json_object_get(m, "display")));
        sqlite3_bind_text(s, 4, origin, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        done(s);
        if (rc != SQLITE_DONE)
            return db_fail(c, err, "member insert");
    }
    return 0;
}

/* The kind of a resource by id (deprovisioned included): SCIM_RT_* or -1. */
static int kind_of(struct conn *c, int64_t tenant, const char *id)
{
    sqlite3_stmt *q = NULL;
    struct scim_err ignored;
    int kind = -1;
    if (prepare_dyn(c, "SELECT kind FROM resources WHERE tenant_id = ? AND kind IN (0, 1) AND id = ?",
                    &q, &ignored) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, tenant);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(q) == SQLITE_ROW)
        kind = sqlite3_column_int(q, 0);
    scim_stmt_release(q);
    return kind;
}

static int remove_members(struct conn *c, int64_t tenant, int64_t group_pk, json_t *ids,
                          bool any_origin, struct mev *ev, struct scim_err *err)
{
    size_t i;
    json_t *m;
    json_array_foreach(ids, i, m) {
        const char *v = json_is_string(m) ? json_string_value(m)
                                          : json_string_value(json_object_get(m, "value"));
        if (!v)
            continue;
        sqlite3_stmt *s = stmt(c, S_MEMBER_DELETE, err);
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, group_pk);
        sqlite3_bind_int64(s, 2, tenant);
        sqlite3_bind_text(s, 3, v, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 4, any_origin);
        int rc = sqlite3_step(s);
        done(s);
        if (rc != SQLITE_DONE)
            return db_fail(c, err, "member delete");
        if (sqlite3_changes(c->db) > 0 &&
            scim_events_member(ev->events, ev->gid, ev->gname, v, kind_of(c, tenant, v), false,
                               err) < 0)
            return -1;
    }
    return 0;
}

/* Before a "clear" of a group's SCIM members: remembers them in ev->cleared (id -> kind). */
static int note_cleared(struct conn *c, int64_t group_pk, struct mev *ev, struct scim_err *err)
{
    sqlite3_stmt *q = NULL;
    int step;
    if (!(ev->cleared = json_object()))
        return scim_err_nomem(err);
    if (prepare_dyn(c, "SELECT x.id, x.kind FROM members mb JOIN resources x ON x.pk = mb.member_pk "
                       "WHERE mb.group_pk = ? AND mb.origin = 'scim' ORDER BY mb.seq", &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, group_pk);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (json_object_set_new(ev->cleared, col_text(q, 0), json_integer(sqlite3_column_int(q, 1))) < 0) {
            scim_stmt_release(q);
            return scim_err_nomem(err);
        }
    }
    scim_stmt_release(q);
    return step == SQLITE_DONE ? 0 : db_fail(c, err, "members of");
}

/* After the adds: the cleared members that did not come back are removals. */
static int flush_cleared(struct mev *ev, struct scim_err *err)
{
    const char *id;
    json_t *k;
    json_object_foreach(ev->cleared, id, k) {
        if (scim_events_member(ev->events, ev->gid, ev->gname, id, (int)json_integer_value(k),
                               false, err) < 0)
            return -1;
    }
    return 0;
}

/* Before a resource leaves groups (delete, deprovision): group.member_removed for each group
 * it is a member of (only origin-"scim" memberships when scim_only). */
static int note_leaving(struct conn *c, int64_t tenant, const char *id, int kind, int64_t pk,
                        bool scim_only, json_t *events, struct scim_err *err)
{
    sqlite3_stmt *q = NULL;
    int step;
    (void)tenant;
    if (prepare_dyn(c, scim_only ? "SELECT g.id, g.display_name FROM members m JOIN resources g "
                                   "ON g.pk = m.group_pk WHERE m.member_pk = ? AND m.origin = 'scim' "
                                   "ORDER BY m.seq"
                                 : "SELECT g.id, g.display_name FROM members m JOIN resources g "
                                   "ON g.pk = m.group_pk WHERE m.member_pk = ? ORDER BY m.seq",
                    &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, pk);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (scim_events_member(events, col_text(q, 0), col_text(q, 1), id, kind, false, err) < 0) {
            scim_stmt_release(q);
            return -1;
        }
    }
    scim_stmt_release(q);
    return step == SQLITE_DONE ? 0 : db_fail(c, err, "groups of");
}

/* Inserts the collected events in the open transaction. */
static int feed_insert(struct conn *c, int64_t tenant, json_t *events, struct scim_err *err)
{
    return scim_sqlite_feed_insert(c->db, tenant, events, err);
}

/* A resource's doc for event comparison: the attributes of `res` (deep copies), without the
 * member lists (they have their own events and may be large). */
static json_t *doc_snapshot(json_t *res)
{
    json_t *o = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(res, key, v) {
        if (!o || strcmp(key, "members") == 0 || strcmp(key, "groups") == 0)
            continue;
        if (json_object_set_new(o, key, json_deep_copy(v)) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Runs a one-off statement with bound parameters described by `types` (one letter each:
 * 'i' int64, 't' text, 'n' text or NULL). Returns the number of changed rows, or -1. */
static int run_sql(struct conn *c, const char *sql, struct scim_err *err, const char *types, ...)
{
    sqlite3_stmt *q = NULL;
    va_list ap;
    int rc;
    if (prepare_dyn(c, sql, &q, err) < 0)
        return -1;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 'i')
            sqlite3_bind_int64(q, i + 1, va_arg(ap, int64_t));
        else
            bind_text_or_null(q, i + 1, va_arg(ap, const char *));
    }
    va_end(ap);
    rc = sqlite3_step(q);
    scim_stmt_release(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return db_fail(c, err, sql);
    return sqlite3_changes(c->db);
}

/* The primary e-mail of a user doc, else its only e-mail, else NULL. */
static const char *primary_email(json_t *doc)
{
    json_t *emails = json_object_get(doc, "emails"), *e;
    const char *only = NULL;
    size_t i, n = 0;
    json_array_foreach(emails, i, e) {
        const char *v = json_string_value(json_object_get(e, "value"));
        if (!v)
            continue;
        if (json_is_true(json_object_get(e, "primary")))
            return v;
        only = v;
        n++;
    }
    return n == 1 ? only : NULL;
}

/* An emails row that is its resource's primary-or-only address. */
#define PRIMARY_OR_ONLY "(e.primary_ = 1 OR (SELECT count(*) FROM emails o WHERE o.resource_pk = e.resource_pk) = 1)"

static int check_unique_email(struct conn *c, int64_t tenant, int64_t self_pk, json_t *doc,
                              struct scim_err *err)
{
    const char *mail = primary_email(doc);
    sqlite3_stmt *q = NULL;
    int rc;
    if (!mail)
        return 0;
    if (prepare_dyn(c, "SELECT 1 FROM emails e JOIN resources r ON r.pk = e.resource_pk "
                       "WHERE e.tenant_id = ? AND e.value = ? AND r.kind = 0 AND r.deprovisioned = 0 "
                       "AND r.pk <> ? AND " PRIMARY_OR_ONLY " LIMIT 1", &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, tenant);
    sqlite3_bind_text(q, 2, mail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, self_pk);
    rc = sqlite3_step(q);
    scim_stmt_release(q);
    if (rc == SQLITE_ROW)
        return scim_err_set(err, 409, SCIM_TYPE_UNIQUENESS,
                            "the e-mail address \"%s\" is already in use by another user", mail);
    return rc == SQLITE_DONE ? 0 : db_fail(c, err, "unique e-mail check");
}

/* A candidate for linking or reviving: 1 found (fields set, *doc_text malloc'ed), 0, -1. */
struct cand {
    int64_t pk;
    char id[SCIM_STORE_ID_MAX + 1];
    char origin[16];
    bool deprovisioned;
    char *doc_text;
};

static int find_cand(struct conn *c, const char *sql, int64_t tenant, const char *value,
                     struct cand *k, struct scim_err *err)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (prepare_dyn(c, sql, &q, err) < 0)
        return -1;
    sqlite3_bind_int64(q, 1, tenant);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        k->pk = sqlite3_column_int64(q, 0);
        snprintf(k->id, sizeof k->id, "%s", col_text(q, 1));
        snprintf(k->origin, sizeof k->origin, "%s", col_text(q, 2));
        k->deprovisioned = sqlite3_column_int(q, 3) != 0;
        k->doc_text = scim_strdup(col_text(q, 4));
        scim_stmt_release(q);
        return k->doc_text ? 1 : scim_err_nomem(err);
    }
    scim_stmt_release(q);
    return rc == SQLITE_DONE ? 0 : db_fail(c, err, "link lookup");
}

/* Which existing row a SCIM create takes over (link or revive), if any: 1 (and *revive), 0, -1. */
static int takeover_target(struct conn *c, int64_t tenant, enum scim_rtype kind, json_t *doc,
                           const struct scim_tenant_settings *set, struct cand *k, bool *revive,
                           struct scim_err *err)
{
    int rc;
    *revive = false;
    if (kind == SCIM_RT_USER) {
        const char *un = json_string_value(json_object_get(doc, "userName"));
        const char *mail;
        if (un) {
            rc = find_cand(c, "SELECT pk, id, origin, deprovisioned, doc FROM resources "
                              "WHERE tenant_id = ? AND kind = 0 AND user_name = ?", tenant, un, k, err);
            if (rc <= 0)
                goto by_mail;
            if (k->deprovisioned) {
                *revive = true;
                return 1;
            }
            if (set && set->link_existing_users && strcmp(k->origin, "local") == 0)
                return 1;
            free(k->doc_text);
            k->doc_text = NULL;
            return 0; /* the insert answers 409 */
        }
    by_mail:
        if (rc < 0 || !set || !set->link_existing_users || !(mail = primary_email(doc)))
            return rc < 0 ? -1 : 0;
        return find_cand(c, "SELECT r.pk, r.id, r.origin, r.deprovisioned, r.doc FROM emails e "
                            "JOIN resources r ON r.pk = e.resource_pk WHERE e.tenant_id = ? AND "
                            "e.value = ? AND r.kind = 0 AND r.origin = 'local' AND r.deprovisioned = 0 "
                            "AND " PRIMARY_OR_ONLY " ORDER BY r.pk LIMIT 1", tenant, mail, k, err);
    }
    const char *dn = json_string_value(json_object_get(doc, "displayName"));
    if (!set || !set->link_existing_groups || !dn)
        return 0;
    return find_cand(c, "SELECT pk, id, origin, deprovisioned, doc FROM resources WHERE tenant_id = ? "
                        "AND kind = 1 AND display_name = ? AND origin = 'local' AND deprovisioned = 0 "
                        "ORDER BY pk LIMIT 1", tenant, dn, k, err);
}

static int join_default_groups(struct conn *c, int64_t tenant, int64_t user_pk, const char *uid,
                               json_t *groups, json_t *events, struct scim_err *err)
{
    size_t i;
    json_t *g;
    int64_t now = scim_now_ms_us();
    json_array_foreach(groups, i, g) {
        const char *gid = json_string_value(g);
        int n;
        if (!gid)
            continue;
        n = run_sql(c, "INSERT INTO members(group_pk, member_pk, origin) SELECT pk, ?, 'default' "
                       "FROM resources WHERE tenant_id = ? AND kind = 1 AND id = ? "
                       "ON CONFLICT(group_pk, member_pk) DO NOTHING", err, "iit", user_pk, tenant, gid);
        if (n < 0)
            return -1;
        if (n > 0 && run_sql(c, "UPDATE resources SET version = version + 1, last_modified = ? "
                                "WHERE tenant_id = ? AND kind = 1 AND id = ?", err, "iit", now, tenant,
                             gid) < 0)
            return -1;
        if (n > 0) {
            struct scim_store_row gr;
            char *gdoc = NULL;
            json_t *gj = NULL;
            json_error_t je;
            if (read_row(c, tenant, SCIM_RT_GROUP, gid, &gr, &gdoc, err) < 0)
                return -1;
            gj = gdoc ? json_loads(gdoc, 0, &je) : NULL;
            free(gdoc);
            int rc = scim_events_member(events, gid, json_string_value(json_object_get(gj, "displayName")),
                                        uid, SCIM_RT_USER, true, err);
            json_decref(gj);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static int sqlite_create_ex(struct scim_store *st, int64_t tenant, enum scim_rtype kind, json_t *doc,
                            json_t *members, const char *password_hash, struct scim_store_wopts *w,
                            unsigned flags, json_t **out, int *skipped_members, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire_writer(s);
    const struct scim_tenant_settings *set = w ? w->settings : NULL;
    const char *origin = w && w->origin ? w->origin : "scim";
    bool scim = strcmp(origin, "scim") == 0;
    char *doc_text = NULL;
    json_t *merged = NULL;
    char id[SCIM_STORE_ID_MAX + 1];
    struct cols k;
    struct cand cand = {0};
    bool revive = false;
    int skipped = 0, rc = -1, found = 0;
    int64_t pk;
    json_t *evs = json_array(), *old = NULL;
    if (!evs) {
        scim_err_nomem(err);
        goto out;
    }
    if (begin_write(c, err) < 0)
        goto out;
    if (scim && (found = takeover_target(c, tenant, kind, doc, set, &cand, &revive, err)) < 0)
        goto out;
    int64_t now = scim_now_ms_us();
    if (found) {
        /* linking keeps the local attributes under the POSTed ones; reviving replaces them */
        json_error_t je;
        if (revive) {
            merged = json_incref(doc);
        } else {
            if (!(merged = json_loads(cand.doc_text, 0, &je)) || json_object_update(merged, doc) < 0) {
                scim_err_internal(err, "sqlite: cannot merge the linked resource");
                goto out;
            }
        }
        extract_cols(kind, merged, &k);
        if (!(doc_text = json_dumps(merged, JSON_COMPACT))) {
            scim_err_nomem(err);
            goto out;
        }
        sqlite3_stmt *q = NULL;
        if (prepare_dyn(c, "UPDATE resources SET user_name = ?, external_id = ?, display_name = ?, "
                           "active = ?, doc = ?, password_hash = coalesce(?, password_hash), "
                           "origin = 'scim', managed_by = ?, deprovisioned = 0, version = version + 1, "
                           "last_modified = ? WHERE pk = ?", &q, err) < 0)
            goto out;
        bind_text_or_null(q, 1, k.user_name);
        bind_text_or_null(q, 2, k.external_id);
        bind_text_or_null(q, 3, k.display_name);
        if (k.active >= 0)
            sqlite3_bind_int(q, 4, k.active);
        sqlite3_bind_text(q, 5, doc_text, -1, SQLITE_STATIC);
        bind_text_or_null(q, 6, password_hash);
        bind_text_or_null(q, 7, w ? w->managed_by : NULL);
        sqlite3_bind_int64(q, 8, now);
        sqlite3_bind_int64(q, 9, cand.pk);
        int step = sqlite3_step(q);
        scim_stmt_release(q);
        if (step != SQLITE_DONE) {
            write_fail(c, &k, err);
            goto out;
        }
        pk = cand.pk;
        snprintf(id, sizeof id, "%s", cand.id);
        if (kind == SCIM_RT_USER && sync_emails(c, tenant, pk, merged, true, err) < 0)
            goto out;
        if (w) {
            w->linked = !revive;
            w->revived = revive;
        }
        if (!revive && !(old = json_loads(cand.doc_text, 0, &je))) {
            scim_err_internal(err, "sqlite: cannot read the linked resource");
            goto out;
        }
        if (scim_events_resource(evs, kind, id, old, merged, revive ? SCIM_EV_REVIVED : SCIM_EV_LINKED,
                                 err) < 0)
            goto out;
    } else {
        extract_cols(kind, doc, &k);
        if (!(doc_text = json_dumps(doc, JSON_COMPACT))) {
            scim_err_nomem(err);
            goto out;
        }
        if (scim_uuid4(id) < 0) {
            scim_err_internal(err, "sqlite: no randomness for a new id");
            goto out;
        }
        sqlite3_stmt *q = stmt(c, S_RES_INSERT, err);
        if (!q)
            goto out;
        sqlite3_bind_int64(q, 1, tenant);
        sqlite3_bind_int(q, 2, (int)kind);
        sqlite3_bind_text(q, 3, id, -1, SQLITE_STATIC);
        bind_text_or_null(q, 4, k.user_name);
        bind_text_or_null(q, 5, k.external_id);
        bind_text_or_null(q, 6, k.display_name);
        if (k.active >= 0)
            sqlite3_bind_int(q, 7, k.active);
        sqlite3_bind_int64(q, 8, now);
        sqlite3_bind_int64(q, 9, now);
        bind_text_or_null(q, 10, password_hash);
        sqlite3_bind_text(q, 11, doc_text, -1, SQLITE_STATIC);
        int step = sqlite3_step(q);
        done(q);
        if (step != SQLITE_DONE) {
            write_fail(c, &k, err);
            goto out;
        }
        pk = sqlite3_last_insert_rowid(c->db);
        if (w && (!scim || w->managed_by) &&
            run_sql(c, "UPDATE resources SET origin = ?, managed_by = ? WHERE pk = ?", err, "tni",
                    origin, scim ? w->managed_by : NULL, pk) < 0)
            goto out;
        if (kind == SCIM_RT_USER && sync_emails(c, tenant, pk, doc, false, err) < 0)
            goto out;
        if (scim_events_resource(evs, kind, id, NULL, doc, 0, err) < 0)
            goto out;
    }
    if (kind == SCIM_RT_USER && set && set->unique_emails &&
        check_unique_email(c, tenant, pk, found ? merged : doc, err) < 0)
        goto out;
    struct mev mev = {.events = evs, .gid = id,
                      .gname = k.display_name};
    if (kind == SCIM_RT_GROUP && members &&
        add_members(c, tenant, pk, members, scim ? "scim" : "local", &skipped, &mev, err) < 0)
        goto out;
    if (kind == SCIM_RT_USER && scim && set &&
        join_default_groups(c, tenant, pk, id, set->default_groups, evs, err) < 0)
        goto out;
    if (feed_insert(c, tenant, evs, err) < 0)
        goto out;
    if (!(flags & SCIM_STORE_NO_OUTPUT) && get_resource(c, tenant, kind, id, flags, out, NULL, err) < 0)
        goto out;
    if (commit(c, err) < 0) {
        if (out) {
            json_decref(*out);
            *out = NULL;
        }
        goto out;
    }
    if (skipped_members)
        *skipped_members = skipped;
    if (json_array_size(evs) > 0)
        scim_store_events_notify(st);
    rc = 0;
out:
    release(s, c);
    free(doc_text);
    free(cand.doc_text);
    json_decref(merged);
    json_decref(old);
    json_decref(evs);
    return rc;
}

static int sqlite_create(struct scim_store *st, int64_t tenant, enum scim_rtype kind, json_t *doc,
                         json_t *members, const char *password_hash, unsigned flags, json_t **out,
                         int *skipped_members, struct scim_err *err)
{
    return sqlite_create_ex(st, tenant, kind, doc, members, password_hash, NULL, flags, out,
                            skipped_members, err);
}

static int sqlite_get(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                      unsigned flags, json_t **out, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    /* one read transaction: the row and its members/groups are one snapshot */
    int rc = exec_stmt(c, S_BEGIN, err);
    if (rc == 0)
        rc = get_resource(c, tenant, kind, id, flags, out, NULL, err);
    release(s, c);
    return rc;
}

static bool nonempty(json_t *a)
{
    return json_is_array(a) && json_array_size(a) > 0;
}

static int check_unique_email(struct conn *c, int64_t tenant, int64_t self_pk, json_t *doc,
                              struct scim_err *err);

static int sqlite_update_ex(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                            unsigned flags, scim_store_update_fn fn, void *ctx,
                            const struct scim_store_wopts *w, json_t **out, struct scim_err *err)
{
    bool admin = (flags & SCIM_STORE_ADMIN) != 0;
    bool unique = w && w->settings && w->settings->unique_emails;
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire_writer(s);
    struct scim_store_change chg = {0};
    json_t *current = NULL, *old = NULL, *evs = json_array();
    char *doc_text = NULL;
    struct scim_store_row r;
    struct mev mev = {.events = evs, .gid = id, .added = json_array()};
    int rc = -1;
    if (!evs || !mev.added) {
        scim_err_nomem(err);
        goto out;
    }
    if (begin_write(c, err) < 0)
        goto out;
    unsigned load = flags & (SCIM_STORE_LOAD_MEMBERS | SCIM_STORE_GROUPS | SCIM_STORE_ADMIN);
    if (get_resource(c, tenant, kind, id, load, &current, &r, err) < 0)
        goto out;
    /* the callback may change `current` in place: keep what the feed compares against */
    if (!(old = doc_snapshot(current))) {
        scim_err_nomem(err);
        goto out;
    }
    if (fn(ctx, current, &chg, err) < 0)
        goto out; /* release() rolls back */
    mev.gname = json_string_value(json_object_get(chg.doc ? chg.doc : old, "displayName"));
    bool members_changed = kind == SCIM_RT_GROUP &&
                           (chg.members_clear || nonempty(chg.members_add) || nonempty(chg.members_remove));
    if (chg.modified || members_changed) {
        int64_t now = scim_now_ms_us();
        struct cols k;
        sqlite3_stmt *q;
        if (chg.doc) {
            if (!json_is_object(chg.doc)) {
                scim_err_internal(err, "store: update doc is not an object");
                goto out;
            }
            extract_cols(kind, chg.doc, &k);
            if (!(doc_text = json_dumps(chg.doc, JSON_COMPACT))) {
                scim_err_nomem(err);
                goto out;
            }
            if (!(q = stmt(c, S_RES_UPDATE_DOC, err)))
                goto out;
            bind_text_or_null(q, 1, k.user_name);
            bind_text_or_null(q, 2, k.external_id);
            bind_text_or_null(q, 3, k.display_name);
            if (k.active >= 0)
                sqlite3_bind_int(q, 4, k.active);
            sqlite3_bind_text(q, 5, doc_text, -1, SQLITE_STATIC);
            bind_text_or_null(q, 6, chg.password_hash);
            sqlite3_bind_int64(q, 7, now);
            sqlite3_bind_int64(q, 8, r.pk);
            sqlite3_bind_int64(q, 9, r.version);
        } else {
            memset(&k, 0, sizeof(k));
            if (!(q = stmt(c, S_RES_BUMP, err)))
                goto out;
            bind_text_or_null(q, 1, chg.password_hash);
            sqlite3_bind_int64(q, 2, now);
            sqlite3_bind_int64(q, 3, r.pk);
            sqlite3_bind_int64(q, 4, r.version);
        }
        int step = sqlite3_step(q);
        done(q);
        if (step != SQLITE_DONE) {
            write_fail(c, &k, err);
            goto out;
        }
        /* the write lock is held since the read, so this only fails if that invariant breaks
         * (or on a backend without it); the caller may retry the whole update */
        if (sqlite3_changes(c->db) != 1) {
            scim_err_set(err, 412, NULL, "version mismatch: the resource changed concurrently");
            goto out;
        }
        if (chg.doc && kind == SCIM_RT_USER && sync_emails(c, tenant, r.pk, chg.doc, true, err) < 0)
            goto out;
        if (chg.doc && kind == SCIM_RT_USER && unique &&
            check_unique_email(c, tenant, r.pk, chg.doc, err) < 0)
            goto out;
        if ((chg.doc || chg.password_hash) &&
            scim_events_resource(evs, kind, id, old, chg.doc ? chg.doc : old,
                                 chg.password_hash ? SCIM_EV_PASSWORD : 0, err) < 0)
            goto out;
        if (kind == SCIM_RT_GROUP) {
            if (chg.members_clear && note_cleared(c, r.pk, &mev, err) < 0)
                goto out;
            if (chg.members_clear) {
                if (!(q = stmt(c, S_MEMBERS_CLEAR, err)))
                    goto out;
                sqlite3_bind_int64(q, 1, r.pk);
                step = sqlite3_step(q);
                done(q);
                if (step != SQLITE_DONE) {
                    db_fail(c, err, "members clear");
                    goto out;
                }
            }
            if (chg.members_remove &&
                remove_members(c, tenant, r.pk, chg.members_remove, admin, &mev, err) < 0)
                goto out;
            if (chg.members_add && add_members(c, tenant, r.pk, chg.members_add,
                                               admin ? "local" : "scim", &chg.skipped_members,
                                               &mev, err) < 0)
                goto out;
            if (flush_cleared(&mev, err) < 0)
                goto out;
            if (json_array_extend(evs, mev.added) < 0) {
                scim_err_nomem(err);
                goto out;
            }
        }
        if (feed_insert(c, tenant, evs, err) < 0)
            goto out;
    }
    if (out && !(flags & SCIM_STORE_NO_OUTPUT) &&
        get_resource(c, tenant, kind, id, flags & ~SCIM_STORE_LOAD_MEMBERS, out, NULL, err) < 0)
        goto out;
    if (commit(c, err) < 0) {
        if (out) {
            json_decref(*out);
            *out = NULL;
        }
        goto out;
    }
    if (json_array_size(evs) > 0)
        scim_store_events_notify(st);
    rc = 0;
out:
    release(s, c);
    json_decref(chg.doc);
    json_decref(current);
    json_decref(old);
    json_decref(evs);
    json_decref(mev.cleared);
    json_decref(mev.added);
    free(doc_text);
    return rc;
}

static int sqlite_update(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                         unsigned flags, scim_store_update_fn fn, void *ctx, json_t **out,
                         struct scim_err *err)
{
    return sqlite_update_ex(st, tenant, kind, id, flags, fn, ctx, NULL, out, err);
}

/* delete_mode "deactivate": the user stays, inactive and invisible to the IdP. */
static int deprovision(struct conn *c, const struct scim_store_row *r, const char *doc_text, struct scim_err *err)
{
    json_error_t je;
    json_t *doc = json_loads(doc_text, 0, &je);
    char *text = NULL;
    int64_t now = scim_now_ms_us();
    int rc = -1;
    if (!doc || json_object_set_new(doc, "active", json_false()) < 0 ||
        !(text = json_dumps(doc, JSON_COMPACT))) {
        scim_err_internal(err, "sqlite: cannot deactivate %s", r->id);
        goto out;
    }
    if (run_sql(c, "UPDATE resources SET version = version + 1, last_modified = ? WHERE pk IN "
                   "(SELECT group_pk FROM members WHERE member_pk = ?)", err, "ii", now, r->pk) < 0 ||
        run_sql(c, "DELETE FROM members WHERE member_pk = ? AND origin = 'scim'", err, "i", r->pk) < 0 ||
        run_sql(c, "UPDATE resources SET deprovisioned = 1, active = 0, doc = ?, version = version + 1, "
                   "last_modified = ? WHERE pk = ?", err, "tii", text, now, r->pk) < 0)
        goto out;
    rc = 0;
out:
    json_decref(doc);
    free(text);
    return rc;
}

static int sqlite_delete_ex(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                            int64_t expected_version, unsigned flags, const struct scim_store_wopts *w,
                            struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire_writer(s);
    struct scim_store_row r;
    char *doc = NULL;
    int rc = -1;
    bool admin = (flags & SCIM_STORE_ADMIN) != 0;
    json_t *evs = json_array(), *old = NULL;
    json_error_t je;
    if (!evs) {
        scim_err_nomem(err);
        goto out;
    }
    if (begin_write(c, err) < 0)
        goto out;
    int found = read_row(c, tenant, kind, id, &r, &doc, err);
    if (found < 0)
        goto out;
    if (found == 0 || (r.deprovisioned && !admin)) {
        scim_err_set(err, 404, NULL, "%s \"%s\" not found", kind == SCIM_RT_USER ? "User" : "Group", id);
        goto out;
    }
    if (expected_version >= 0 && expected_version != r.version) {
        scim_err_set(err, 412, NULL, "version mismatch");
        goto out;
    }
    if (!(old = json_loads(doc, 0, &je))) {
        scim_err_internal(err, "sqlite: stored doc of %s is not JSON", id);
        goto out;
    }
    bool deact = !admin && kind == SCIM_RT_USER && w && w->settings &&
                 w->settings->delete_mode == SCIM_DELETE_DEACTIVATE;
    /* the memberships it loses first, then the resource itself */
    if (note_leaving(c, tenant, id, (int)kind, r.pk, deact, evs, err) < 0 ||
        scim_events_resource(evs, kind, id, old, NULL, deact ? SCIM_EV_DEPROVISIONED : 0, err) < 0 ||
        feed_insert(c, tenant, evs, err) < 0)
        goto out;
    if (deact) {
        if (deprovision(c, &r, doc, err) < 0)
            goto out;
        rc = commit(c, err);
        if (rc == 0)
            scim_store_events_notify(st);
        goto out;
    }
    /* the groups that lose this member change too */
    sqlite3_stmt *q = stmt(c, S_BUMP_GROUPS_OF, err);
    if (!q)
        goto out;
    sqlite3_bind_int64(q, 1, scim_now_ms_us());
    sqlite3_bind_int64(q, 2, r.pk);
    int step = sqlite3_step(q);
    done(q);
    if (step != SQLITE_DONE) {
        db_fail(c, err, "bump groups");
        goto out;
    }
    if (!(q = stmt(c, S_RES_DELETE, err)))
        goto out;
    sqlite3_bind_int64(q, 1, r.pk); /* emails and memberships go by ON DELETE CASCADE */
    step = sqlite3_step(q);
    done(q);
    if (step != SQLITE_DONE) {
        db_fail(c, err, "delete");
        goto out;
    }
    rc = commit(c, err);
    if (rc == 0)
        scim_store_events_notify(st);
out:
    release(s, c);
    free(doc);
    json_decref(old);
    json_decref(evs);
    return rc;
}

static int sqlite_delete(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                         int64_t expected_version, struct scim_err *err)
{
    return sqlite_delete_ex(st, tenant, kind, id, expected_version, 0, NULL, err);
}

/* ---- list ---------------------------------------------------------------------------- */

static int bind_frag(sqlite3_stmt *q, int first, const struct scim_sql_frag *f)
{
    for (size_t i = 0; i < f->n_params; i++) {
        const struct scim_sql_param *p = &f->params[i];
        int idx = first + (int)i, rc;
        if (p->type == SCIM_SQL_P_INT)
            rc = sqlite3_bind_int64(q, idx, p->i);
        else if (p->type == SCIM_SQL_P_REAL)
            rc = sqlite3_bind_double(q, idx, p->d);
        else
            rc = sqlite3_bind_text(q, idx, p->s, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
            return -1;
    }
    return 0;
}

/* Builds the WHERE clause and ORDER BY of a list query. */
static int list_sql(struct scim_store *st, int64_t tenant, enum scim_rtype kind,
                    const struct scim_store_query *q, struct scim_sql_frag *where,
                    struct scim_buf *order, struct scim_err *err)
{
    static const char *const state_sql[] = {
        "", " AND r.deprovisioned = 0 AND coalesce(r.active, 1) <> 0",
        " AND r.deprovisioned = 0 AND r.active = 0", " AND r.deprovisioned = 1"};
    const char *state = " AND r.deprovisioned = 0"; /* the SCIM view */
    if ((q->flags & SCIM_STORE_ADMIN) && q->state >= 0 && q->state <= SCIM_STORE_STATE_DEPROVISIONED)
        state = state_sql[q->state];
    if (scim_buf_printf(&where->sql, "r.tenant_id = ? AND r.kind = %d%s", (int)kind, state) < 0)
        return scim_err_nomem(err);
    if (!q->filter && !q->sort_by)
        return scim_buf_adds(order, "r.pk") < 0 ? scim_err_nomem(err) : 0;
    if (!st->reg)
        return scim_err_internal(err, "store: no schema registry to compile the filter");
    const struct scim_resource_type *rt = scim_registry_rt(st->reg, kind);
    if (q->filter) {
        if (scim_buf_adds(&where->sql, " AND (") < 0)
            return scim_err_nomem(err);
        if (scim_sqlgen_where(&scim_sql_dialect_sqlite, rt, q->filter, tenant, 2, where, err) < 0)
            return -1;
        if (scim_buf_adds(&where->sql, ")") < 0)
            return errno == ENOMEM ? scim_err_nomem(err)
                                   : scim_err_set(err, 400, SCIM_TYPE_INVALID_FILTER,
                                                  "filter is too complex");
    }
    return scim_sqlgen_order(&scim_sql_dialect_sqlite, rt, q->sort_by, q->descending, order, err);
}

/* A statement of SQL text, from the connection's cache (stmt_cache.h): give it back with
 * scim_stmt_release. */
static int prepare_dyn(struct conn *c, const char *sql, sqlite3_stmt **q, struct scim_err *err)
{
    if (scim_stmt_prepare(c->db, sql, q) != SQLITE_OK) {
        scim_err_internal(err, "sqlite prepare: %s", sqlite3_errmsg(c->db));
        return scim_err_log(err, "sqlite prepare %s: %s", sql, sqlite3_errmsg(c->db));
    }
    return 0;
}

/* prepare_dyn for the generated list statements: from the connection's cache (stmt_cache.h).
 * The statement stays owned by the cache: release it with done(), never finalize it. */
static int prepare_cached(struct conn *c, const char *sql, sqlite3_stmt **q, struct scim_err *err)
{
    int rc = scim_stmt_cache_get(&c->cache, c->db, sql, q);
    if (rc == SQLITE_NOMEM)
        return scim_err_nomem(err);
    if (rc != SQLITE_OK) {
        scim_err_internal(err, "sqlite prepare: %s", sqlite3_errmsg(c->db));
        return scim_err_log(err, "sqlite prepare %s: %s", sql, sqlite3_errmsg(c->db));
    }
    return 0;
}

/* The "groups" of every user of a list page (rows[i] with pk pks[i]), as load_groups gives
 * them, with one statement for the whole page; a user with an indirect group (some direct
 * group is itself a member) gets load_groups' recursive query. */
struct page_user {
    int64_t pk;
    size_t idx; /* in the page */
    json_t *groups;
    bool nested;
};

static int cmp_page_user(const void *a, const void *b)
{
    int64_t x = ((const struct page_user *)a)->pk, y = ((const struct page_user *)b)->pk;
    return x < y ? -1 : x > y;
}

static int load_groups_page(struct conn *c, json_t *arr, const int64_t *pks, struct scim_err *err)
{
    size_t n = json_array_size(arr);
    struct page_user *u = calloc(n ? n : 1, sizeof(*u));
    struct scim_buf list;
    sqlite3_stmt *s = NULL;
    int rc = -1, step;
    scim_buf_init(&list, 0);
    if (!u || scim_buf_addc(&list, '[') < 0)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        u[i].pk = pks[i];
        u[i].idx = i;
        u[i].groups = json_array();
        if (!u[i].groups || json_object_set_new(json_array_get(arr, i), "groups", u[i].groups) < 0 ||
            scim_buf_printf(&list, "%s%lld", i ? "," : "", (long long)pks[i]) < 0)
            goto nomem;
    }
    if (scim_buf_addc(&list, ']') < 0)
        goto nomem;
    qsort(u, n, sizeof(*u), cmp_page_user);
    if (!(s = stmt(c, S_GROUPS_OF_PAGE, err)))
        goto out;
    sqlite3_bind_text(s, 1, scim_buf_str(&list), (int)list.len, SQLITE_STATIC);
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct page_user key = {sqlite3_column_int64(s, 0), 0, NULL, false};
        struct page_user *pu = bsearch(&key, u, n, sizeof(*u), cmp_page_user);
        if (!pu || pu->nested)
            continue;
        if (sqlite3_column_int(s, 3)) {
            pu->nested = true;
            continue;
        }
        const char *disp = col_text(s, 2);
        json_t *m = json_pack("{s:s, s:s}", "value", col_text(s, 1), "type", "direct");
        if (!m || (disp && json_object_set_new(m, "display", json_string(disp)) < 0) ||
            json_array_append_new(pu->groups, m) < 0) {
            json_decref(m);
            goto nomem;
        }
    }
    if (step != SQLITE_DONE) {
        db_fail(c, err, "groups");
        goto out;
    }
    done(s);
    s = NULL;
    for (size_t i = 0; i < n; i++)
        if (u[i].nested && load_groups(c, u[i].pk, json_array_get(arr, u[i].idx), err) < 0)
            goto out;
    rc = 0;
    goto out;
nomem:
    scim_err_nomem(err);
out:
    done(s);
    free(u);
    scim_buf_release(&list);
    return rc;
}

/* totalResults of a list: the live count of the SCIM view (resource_counts), or count(*) of
 * the matches of `where`. */
static int count_matches(struct conn *c, bool live_count, enum scim_rtype kind, int64_t tenant,
                         const struct scim_sql_frag *where, int64_t *total, struct scim_err *err)
{
    struct scim_buf sql;
    sqlite3_stmt *q = NULL;
    int rc = -1;
    scim_buf_init(&sql, 0);
    if ((live_count ? scim_buf_printf(&sql, "SELECT coalesce((SELECT live FROM resource_counts "
                                            "WHERE tenant_id = ? AND kind = %d), 0)",
                                      (int)kind)
                    : scim_buf_printf(&sql, "SELECT count(*) FROM resources r WHERE %s",
                                      scim_buf_str(&where->sql))) < 0) {
        scim_err_nomem(err);
        goto out;
    }
    if (prepare_cached(c, scim_buf_str(&sql), &q, err) < 0)
        goto out;
    sqlite3_bind_int64(q, 1, tenant);
    if ((!live_count && bind_frag(q, 2, where) < 0) || sqlite3_step(q) != SQLITE_ROW) {
        db_fail(c, err, "count");
        goto out;
    }
    *total = sqlite3_column_int64(q, 0);
    rc = 0;
out:
    done(q);
    scim_buf_release(&sql);
    return rc;
}

static int sqlite_list(struct scim_store *st, int64_t tenant, enum scim_rtype kind,
                       const struct scim_store_query *qr, struct scim_store_page *out,
                       struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct scim_sql_frag where;
    struct scim_buf order, sql;
    sqlite3_stmt *q = NULL;
    json_t *arr = NULL;
    int64_t *pks = NULL;
    size_t n_pks = 0, cap_pks = 0;
    int rc = -1;
    scim_sql_frag_init(&where);
    scim_buf_init(&order, 0);
    scim_buf_init(&sql, 0);
    struct conn *c = acquire(s);
    if (list_sql(st, tenant, kind, qr, &where, &order, err) < 0)
        goto out;
    if (exec_stmt(c, S_BEGIN, err) < 0) /* count and page from one snapshot */
        goto out;
    /* The SCIM view of an unfiltered list counts from resource_counts (migration 6), kept
     * exact by triggers; a filtered list counts its matches, unless the page itself tells the
     * total (deferred_count: see after the page). */
    bool live_count = !qr->filter && !(qr->flags & SCIM_STORE_ADMIN);
    /* users' groups for the whole page at once (load_groups_page), for pages of several */
    bool page_groups = kind == SCIM_RT_USER && (qr->flags & SCIM_STORE_GROUPS) &&
                       !(qr->flags & SCIM_STORE_ADMIN) && qr->count > 1;
    bool deferred_count = !live_count && qr->count > 0 &&
                          (!qr->cursor_mode || (qr->after_pk == 0 && qr->before_pk == 0));
    if (!deferred_count && count_matches(c, live_count, kind, tenant, &where, &out->total, err) < 0)
        goto out;
    if (!(arr = json_array())) {
        scim_err_nomem(err);
        goto out;
    }
    if (qr->count > 0 && (deferred_count || qr->cursor_mode || out->total >= qr->start_index)) {
        bool back = qr->cursor_mode && qr->before_pk > 0;
        scim_buf_reset(&sql);
        /* Cursor mode is keyset paging on the primary key: one more row than asked tells
         * whether there is a next page. */
        if (qr->cursor_mode
                ? scim_buf_printf(&sql,
                                  "SELECT r.pk, r.id, r.created, r.last_modified, r.version, "
                                  "r.doc, r.origin, r.managed_by, r.deprovisioned "
                                  "FROM resources r WHERE %s AND r.pk %s ? ORDER BY r.pk "
                                  "%s LIMIT ? OFFSET ?",
                                  scim_buf_str(&where.sql), back ? "<" : ">",
                                  back ? "DESC" : "ASC") < 0
                : scim_buf_printf(&sql,
                                  "SELECT r.pk, r.id, r.created, r.last_modified, r.version, "
                                  "r.doc, r.origin, r.managed_by, r.deprovisioned "
                                  "FROM resources r WHERE %s ORDER BY %s LIMIT ? OFFSET ?",
                                  scim_buf_str(&where.sql), scim_buf_str(&order)) < 0) {
            scim_err_nomem(err);
            goto out;
        }
        if (prepare_cached(c, scim_buf_str(&sql), &q, err) < 0)
            goto out;
        int n = 2 + (int)where.n_params;
        sqlite3_bind_int64(q, 1, tenant);
        if (bind_frag(q, 2, &where) < 0) {
            db_fail(c, err, "bind");
            goto out;
        }
        if (qr->cursor_mode) {
            sqlite3_bind_int64(q, n++, back ? qr->before_pk : qr->after_pk);
            sqlite3_bind_int64(q, n, qr->count + 1);
            sqlite3_bind_int64(q, n + 1, 0);
        } else {
            sqlite3_bind_int64(q, n, qr->count);
            sqlite3_bind_int64(q, n + 1, qr->start_index - 1);
        }
        int step;
        while ((step = sqlite3_step(q)) == SQLITE_ROW) {
            struct scim_store_row r;
            json_t *res = NULL;
            if (qr->cursor_mode && (int64_t)json_array_size(arr) == qr->count) {
                out->more = true;
                step = SQLITE_DONE;
                break;
            }
            row_cols(q, &r);
            if (qr->cursor_mode) {
                if (!out->first_pk)
                    out->first_pk = r.pk;
                out->last_pk = r.pk;
            }
            if (build_resource(c, kind, &r, col_text(q, 5),
                               page_groups ? qr->flags & ~(unsigned)SCIM_STORE_GROUPS : qr->flags,
                               &res, err) < 0)
                goto out;
            if (json_array_append_new(arr, res) < 0) {
                scim_err_nomem(err);
                goto out;
            }
            if (page_groups) {
                if (n_pks == cap_pks) {
                    size_t ncap = cap_pks ? cap_pks * 2 : 64;
                    int64_t *np = realloc(pks, ncap * sizeof(*pks));
                    if (!np) {
                        scim_err_nomem(err);
                        goto out;
                    }
                    pks = np;
                    cap_pks = ncap;
                }
                pks[n_pks++] = r.pk;
            }
        }
        if (step != SQLITE_DONE) {
            db_fail(c, err, "list");
            goto out;
        }
        if (page_groups && n_pks > 0 && load_groups_page(c, arr, pks, err) < 0)
            goto out;
        if (back) {
            /* Read backwards; the page is returned in ascending order. */
            int64_t t = out->first_pk;
            out->first_pk = out->last_pk;
            out->last_pk = t;
            for (size_t i = 0, j = json_array_size(arr); j > 1 && i < j - 1; i++, j--) {
                json_t *a = json_incref(json_array_get(arr, i));
                json_array_set(arr, i, json_array_get(arr, j - 1));
                json_array_set_new(arr, j - 1, a);
            }
        }
    }
    if (deferred_count) {
        /* A page that is not full is the end of the matches: with rows on it, or as the first
         * page, it gives the exact total without counting (a lookup by userName is one
         * index probe, not two). Otherwise count, in the same snapshot. */
        int64_t rows = (int64_t)json_array_size(arr);
        int64_t skipped = qr->cursor_mode ? 0 : qr->start_index - 1;
        if (!out->more && rows < qr->count && (rows > 0 || skipped == 0))
            out->total = skipped + rows;
        else if (count_matches(c, false, kind, tenant, &where, &out->total, err) < 0)
            goto out;
    }
    out->resources = arr;
    arr = NULL;
    rc = 0;
out:
    free(pks);
    done(q);
    release(s, c);
    json_decref(arr);
    scim_sql_frag_release(&where);
    scim_buf_release(&order);
    scim_buf_release(&sql);
    return rc;
}

int scim_sqlite_explain(struct scim_store *st, int64_t tenant, enum scim_rtype kind,
                        const struct scim_store_query *qr, char **plan, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct scim_sql_frag where;
    struct scim_buf order, sql, res;
    sqlite3_stmt *q = NULL;
    int rc = -1;
    *plan = NULL;
    scim_sql_frag_init(&where);
    scim_buf_init(&order, 0);
    scim_buf_init(&sql, 0);
    scim_buf_init(&res, 0);
    struct conn *c = acquire(s);
    if (list_sql(st, tenant, kind, qr, &where, &order, err) < 0)
        goto out;
    if (scim_buf_printf(&sql, "EXPLAIN QUERY PLAN SELECT r.pk FROM resources r WHERE %s ORDER BY %s "
                              "LIMIT ? OFFSET ?",
                        scim_buf_str(&where.sql), scim_buf_str(&order)) < 0 ||
        prepare_dyn(c, scim_buf_str(&sql), &q, err) < 0)
        goto out;
    sqlite3_bind_int64(q, 1, tenant);
    bind_frag(q, 2, &where);
    while (sqlite3_step(q) == SQLITE_ROW)
        scim_buf_printf(&res, "%s\n", col_text(q, 3));
    *plan = scim_buf_take(&res);
    rc = *plan ? 0 : scim_err_nomem(err);
out:
    scim_stmt_release(q);
    release(s, c);
    scim_sql_frag_release(&where);
    scim_buf_release(&order);
    scim_buf_release(&sql);
    scim_buf_release(&res);
    return rc;
}

/* ---- tenants and tokens ------------------------------------------------------------- */

static int sqlite_tenant_default(struct scim_store *st, int64_t *tenant_id, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire_writer(s);
    int rc = -1;
    if (begin_write(c, err) < 0)
        goto out;
    sqlite3_stmt *q = stmt(c, S_TENANT_INSERT, err);
    if (!q)
        goto out;
    sqlite3_bind_int64(q, 1, scim_now_us());
    int step = sqlite3_step(q);
    done(q);
    if (step != SQLITE_DONE) {
        db_fail(c, err, "tenant insert");
        goto out;
    }
    if (!(q = stmt(c, S_TENANT_GET, err)))
        goto out;
    step = sqlite3_step(q);
    if (step == SQLITE_ROW)
        *tenant_id = sqlite3_column_int64(q, 0);
    done(q);
    if (step != SQLITE_ROW) {
        db_fail(c, err, "tenant get");
        goto out;
    }
    rc = commit(c, err);
out:
    release(s, c);
    return rc;
}

static int sqlite_token_create(struct scim_store *st, int64_t tenant, const char *name,
                               const unsigned char hash[32], const char *scopes, int64_t expires_us,
                               struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    int rc = -1;
    sqlite3_stmt *q = stmt(c, S_TOKEN_INSERT, err);
    if (!q)
        goto out;
    sqlite3_bind_int64(q, 1, tenant);
    sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, scopes, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, scim_now_us());
    if (expires_us > 0)
        sqlite3_bind_int64(q, 6, expires_us);
    int step = sqlite3_step(q);
    done(q);
    if (step == SQLITE_DONE) {
        rc = 0;
    } else if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE) {
        scim_err_set(err, 409, SCIM_TYPE_UNIQUENESS, "a token named \"%s\" already exists", name);
        scim_err_log(err, "sqlite: %s", sqlite3_errmsg(c->db));
    } else {
        db_fail(c, err, "token insert");
    }
out:
    release(s, c);
    return rc;
}

static int sqlite_token_find(struct scim_store *st, const unsigned char hash[32], int64_t now_us,
                             struct scim_token *out, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    int rc = -1;
    sqlite3_stmt *q = stmt(c, S_TOKEN_FIND, err);
    if (!q)
        goto out;
    sqlite3_bind_blob(q, 1, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, now_us);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        memset(out, 0, sizeof(*out));
        out->id = sqlite3_column_int64(q, 0);
        out->tenant_id = sqlite3_column_int64(q, 1);
        snprintf(out->name, sizeof(out->name), "%s", col_text(q, 2));
        snprintf(out->scopes, sizeof(out->scopes), "%s", col_text(q, 3));
        out->created_us = sqlite3_column_int64(q, 4);
        out->last_used_us = sqlite3_column_int64(q, 5);
        out->expires_us = sqlite3_column_int64(q, 6);
        rc = 0;
    } else if (step == SQLITE_DONE) {
        scim_err_set(err, 401, NULL, "invalid or expired token");
    } else {
        db_fail(c, err, "token find");
    }
    done(q);
out:
    release(s, c);
    return rc;
}

static int sqlite_token_touch(struct scim_store *st, int64_t token_id, int64_t now_us,
                              struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire_writer(s);
    int rc = -1;
    sqlite3_stmt *q = begin_write(c, err) == 0 ? stmt(c, S_TOKEN_TOUCH, err) : NULL;
    if (q) {
        sqlite3_bind_int64(q, 1, now_us);
        sqlite3_bind_int64(q, 2, token_id);
        rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_fail(c, err, "token touch");
        done(q);
        if (rc == 0)
            rc = commit(c, err);
    }
    release(s, c);
    return rc;
}

static int sqlite_token_list(struct scim_store *st, int64_t tenant, json_t **out, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    json_t *arr = json_array();
    int rc = -1, step = SQLITE_DONE;
    sqlite3_stmt *q = stmt(c, S_TOKEN_LIST, err);
    if (!q)
        goto out;
    if (!arr) {
        scim_err_nomem(err);
        goto out;
    }
    sqlite3_bind_int64(q, 1, tenant);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        char ts[SCIM_DATETIME_LEN];
        scim_datetime_format(sqlite3_column_int64(q, 2), ts);
        json_t *t = json_pack("{s:s, s:s, s:s}", "name", col_text(q, 0), "scopes", col_text(q, 1),
                              "created", ts);
        if (!t || json_array_append_new(arr, t) < 0) {
            scim_err_nomem(err);
            goto out;
        }
        for (int i = 3; i <= 4; i++) {
            if (sqlite3_column_type(q, i) == SQLITE_NULL)
                continue;
            scim_datetime_format(sqlite3_column_int64(q, i), ts);
            if (json_object_set_new(t, i == 3 ? "lastUsed" : "expires", json_string(ts)) < 0) {
                scim_err_nomem(err);
                goto out;
            }
        }
    }
    if (step != SQLITE_DONE) {
        db_fail(c, err, "token list");
        goto out;
    }
    *out = arr;
    arr = NULL;
    rc = 0;
out:
    done(q);
    release(s, c);
    json_decref(arr);
    return rc;
}

static int sqlite_token_revoke(struct scim_store *st, int64_t tenant, const char *name,
                               struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    int rc = -1;
    sqlite3_stmt *q = stmt(c, S_TOKEN_REVOKE, err);
    if (q) {
        sqlite3_bind_int64(q, 1, scim_now_us());
        sqlite3_bind_int64(q, 2, tenant);
        sqlite3_bind_text(q, 3, name, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            db_fail(c, err, "token revoke");
        else if (sqlite3_changes(c->db) == 0)
            scim_err_set(err, 404, NULL, "no live token named \"%s\"", name);
        else
            rc = 0;
        done(q);
    }
    release(s, c);
    return rc;
}

static int sqlite_secret(struct scim_store *st, const char *name, const unsigned char candidate[32],
                         unsigned char out[32], struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    sqlite3_stmt *q = NULL;
    int rc = -1;

    /* Rare (once per process start): plain statements, not prepared per connection. */
    if (sqlite3_exec(c->db,
                     "CREATE TABLE IF NOT EXISTS secrets(name TEXT PRIMARY KEY, value BLOB NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        db_fail(c, err, "secret table");
        goto out;
    }
    if (sqlite3_prepare_v2(c->db, "INSERT OR IGNORE INTO secrets(name, value) VALUES(?, ?)", -1, &q,
                           NULL) != SQLITE_OK) {
        db_fail(c, err, "secret insert");
        goto out;
    }
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, candidate, 32, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) {
        db_fail(c, err, "secret insert");
        goto out;
    }
    scim_stmt_release(q);
    q = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT value FROM secrets WHERE name = ?", -1, &q, NULL) !=
        SQLITE_OK) {
        db_fail(c, err, "secret select");
        goto out;
    }
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW || sqlite3_column_bytes(q, 0) != 32) {
        scim_err_internal(err, "sqlite: secret %s missing or malformed", name);
        goto out;
    }
    memcpy(out, sqlite3_column_blob(q, 0), 32);
    rc = 0;
out:
    scim_stmt_release(q);
    release(s, c);
    return rc;
}

static int sqlite_token_count(struct scim_store *st, int64_t tenant, int64_t *n, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    int rc = -1;
    sqlite3_stmt *q = stmt(c, S_TOKEN_COUNT, err);
    if (q) {
        sqlite3_bind_int64(q, 1, tenant);
        sqlite3_bind_int64(q, 2, scim_now_us());
        if (sqlite3_step(q) == SQLITE_ROW) {
            *n = sqlite3_column_int64(q, 0);
            rc = 0;
        } else {
            db_fail(c, err, "token count");
        }
        done(q);
    }
    release(s, c);
    return rc;
}

/* ---- bulk import ------------------------------------------------------------------------ */

/* The statements only the import uses, prepared once per batch (not in the per-connection table:
 * they are cold everywhere else). */
enum { I_SAVEPOINT, I_RELEASE, I_ROLLBACK_TO, I_PK_BY_USER_NAME, I_COUNT };
static const char *const import_sql[I_COUNT] = {
    [I_SAVEPOINT] = "SAVEPOINT import_item",
    [I_RELEASE] = "RELEASE import_item",
    [I_ROLLBACK_TO] = "ROLLBACK TO import_item",
    [I_PK_BY_USER_NAME] = "SELECT pk FROM resources WHERE tenant_id = ? AND kind = 0 AND user_name = ?",
};

static int import_step(struct conn *c, sqlite3_stmt *q, struct scim_err *err)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? 0 : db_fail(c, err, sqlite3_sql(q));
}

/* Adds the members of an imported group; each is {"value": id} or {"userName": name}. */
static int import_members(struct conn *c, sqlite3_stmt *by_name, int64_t tenant, int64_t group_pk,
                          json_t *members, int *skipped, struct scim_err *err)
{
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *v = json_string_value(json_object_get(m, "value"));
        const char *un = json_string_value(json_object_get(m, "userName"));
        int64_t mpk = 0;
        int found = 0;
        if (v) {
            found = lookup_pk(c, tenant, v, &mpk, NULL, err);
        } else if (un) {
            sqlite3_bind_int64(by_name, 1, tenant);
            sqlite3_bind_text(by_name, 2, un, -1, SQLITE_STATIC);
            int rc = sqlite3_step(by_name);
            if (rc == SQLITE_ROW)
                mpk = sqlite3_column_int64(by_name, 0);
            found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_fail(c, err, "member by userName");
            done(by_name);
        }
        if (found < 0)
            return -1;
        if (!found || mpk == group_pk) {
            (*skipped)++;
            continue;
        }
        sqlite3_stmt *s = stmt(c, S_MEMBER_INSERT, err);
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, group_pk);
        sqlite3_bind_int64(s, 2, mpk);
        bind_text_or_null(s, 3, json_string_value(json_object_get(m, "display")));
        sqlite3_bind_text(s, 4, "scim", -1, SQLITE_STATIC); /* as if the IdP had sent them */
        int rc = sqlite3_step(s);
        done(s);
        if (rc != SQLITE_DONE)
            return db_fail(c, err, "member insert");
    }
    return 0;
}

/* One item inside the batch transaction: 1 written, 0 rejected (item->err set), -1 failure. */
static int import_one(struct conn *c, sqlite3_stmt **iq, int64_t tenant, int64_t now,
                      struct scim_store_import_item *it, struct scim_err *err)
{
    struct cols k;
    char *doc_text = NULL;
    int64_t pk = 0;
    int rc = -1;
    extract_cols(it->kind, it->doc, &k);
    if (it->id) {
        snprintf(it->new_id, sizeof(it->new_id), "%s", it->id);
        int found = lookup_pk(c, tenant, it->id, &pk, NULL, err);
        if (found < 0)
            return -1;
        if (found) {
            scim_err_set(&it->err, 409, SCIM_TYPE_UNIQUENESS, "id \"%s\" is already in use", it->id);
            return 0;
        }
    } else if (scim_uuid4(it->new_id) < 0) {
        return scim_err_internal(err, "sqlite: no randomness for a new id");
    }
    if (!(doc_text = json_dumps(it->doc, JSON_COMPACT)))
        return scim_err_nomem(err);
    if (import_step(c, iq[I_SAVEPOINT], err) < 0)
        goto out;
    sqlite3_stmt *q = stmt(c, S_RES_INSERT, err);
    if (!q)
        goto out;
    sqlite3_bind_int64(q, 1, tenant);
    sqlite3_bind_int(q, 2, (int)it->kind);
    sqlite3_bind_text(q, 3, it->new_id, -1, SQLITE_STATIC);
    bind_text_or_null(q, 4, k.user_name);
    bind_text_or_null(q, 5, k.external_id);
    bind_text_or_null(q, 6, k.display_name);
    if (k.active >= 0)
        sqlite3_bind_int(q, 7, k.active);
    sqlite3_bind_int64(q, 8, now);
    sqlite3_bind_int64(q, 9, now);
    bind_text_or_null(q, 10, it->password_hash);
    sqlite3_bind_text(q, 11, doc_text, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    done(q);
    if (step != SQLITE_DONE) {
        /* a statement failure leaves the transaction open: undo this item only */
        write_fail(c, &k, &it->err);
        if (it->err.status == 409) {
            rc = import_step(c, iq[I_ROLLBACK_TO], err) < 0 || import_step(c, iq[I_RELEASE], err) < 0
                     ? -1 : 0;
        } else {
            *err = it->err;
        }
        goto out;
    }
    pk = sqlite3_last_insert_rowid(c->db);
    if (it->kind == SCIM_RT_USER && sync_emails(c, tenant, pk, it->doc, false, err) < 0)
        goto out;
    if (it->kind == SCIM_RT_GROUP && it->members &&
        import_members(c, iq[I_PK_BY_USER_NAME], tenant, pk, it->members, &it->skipped_members, err) < 0)
        goto out;
    if (import_step(c, iq[I_RELEASE], err) < 0)
        goto out;
    rc = 1;
out:
    free(doc_text);
    return rc;
}

static int sqlite_import(struct scim_store *st, int64_t tenant, struct scim_store_import_item *items,
                         size_t n, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    sqlite3_stmt *iq[I_COUNT] = {0};
    int rc = -1;
    for (int i = 0; i < I_COUNT; i++) {
        if (sqlite3_prepare_v2(c->db, import_sql[i], -1, &iq[i], NULL) != SQLITE_OK) {
            db_fail(c, err, "prepare import");
            goto out;
        }
    }
    /* A batch touches far more pages than the default 2 MB cache holds; without room SQLite
     * spills dirty pages to the WAL mid-transaction and rewrites them (a third of the import
     * time went to pwrite). Back to the default afterwards: server connections stay small. */
    sqlite3_exec(c->db, "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
    if (begin_write(c, err) < 0)
        goto out;
    int64_t now = scim_now_ms_us();
    for (size_t i = 0; i < n; i++) {
        int r = import_one(c, iq, tenant, now, &items[i], err);
        if (r < 0)
            goto out; /* release() rolls back the batch */
        items[i].failed = r == 0;
    }
    rc = commit(c, err);
out:
    for (int i = 0; i < I_COUNT; i++)
        sqlite3_finalize(iq[i]);
    rollback(c); /* before the pragma: it cannot run inside a failed batch's transaction */
    sqlite3_exec(c->db,
                 c == s->writer ? "PRAGMA cache_size = -2000; PRAGMA temp_store = MEMORY"
                                : "PRAGMA cache_size = -2000; PRAGMA temp_store = DEFAULT",
                 NULL, NULL, NULL);
    release(s, c);
    return rc;
}

static int sqlite_tenant_create(struct scim_store *st, const char *name, int64_t *id,
                                struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    int rc = -1;
    int n = run_sql(c, "INSERT INTO tenants(name, created) VALUES (?, ?)", err, "ti", name,
                    scim_now_ms_us());
    if (n < 0) {
        if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE)
            scim_err_set(err, 409, SCIM_TYPE_UNIQUENESS, "a tenant named \"%s\" already exists", name);
        goto out;
    }
    *id = sqlite3_last_insert_rowid(c->db);
    rc = 0;
out:
    release(s, c);
    return rc;
}

static int sqlite_tenant_get(struct scim_store *st, int64_t id, const char *name,
                             struct scim_tenant *out, char **settings_text, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    int rc = -1;
    *settings_text = NULL;
    sqlite3_stmt *q = stmt(c, name ? S_TENANT_GET_BY_NAME : S_TENANT_GET_BY_ID, err);
    if (!q)
        goto out;
    if (name)
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(q, 1, id);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        out->id = sqlite3_column_int64(q, 0);
        snprintf(out->name, sizeof out->name, "%s", col_text(q, 1));
        out->created_us = sqlite3_column_int64(q, 2);
        out->disabled = sqlite3_column_int(q, 3) != 0;
        if (col_text(q, 4) && !(*settings_text = scim_strdup(col_text(q, 4))))
            scim_err_nomem(err);
        else
            rc = 0;
    } else if (step == SQLITE_DONE) {
        scim_err_set(err, 404, NULL, "tenant not found");
    } else {
        db_fail(c, err, "tenant get");
    }
    done(q);
out:
    release(s, c);
    return rc;
}

static int sqlite_tenant_list(struct scim_store *st, json_t **out, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    sqlite3_stmt *q = NULL;
    json_t *arr = json_array();
    int rc = -1, step;
    if (!arr) {
        scim_err_nomem(err);
        goto out;
    }
    if (prepare_dyn(c, "SELECT id, name FROM tenants ORDER BY id", &q, err) < 0)
        goto out;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *t = json_pack("{s:I, s:s}", "id", (json_int_t)sqlite3_column_int64(q, 0), "name",
                              col_text(q, 1));
        if (!t || json_array_append_new(arr, t) < 0) {
            scim_err_nomem(err);
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        db_fail(c, err, "tenant list");
        goto out;
    }
    *out = arr;
    arr = NULL;
    rc = 0;
out:
    scim_stmt_release(q);
    release(s, c);
    json_decref(arr);
    return rc;
}

static int sqlite_tenant_update(struct scim_store *st, int64_t id, int disabled,
                                const char *settings_text, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    int n = run_sql(c, "UPDATE tenants SET disabled = CASE WHEN ?1 < 0 THEN disabled ELSE ?1 END, "
                       "settings = coalesce(?2, settings) WHERE id = ?3", err, "ini",
                    (int64_t)disabled, settings_text, id);
    release(s, c);
    if (n == 0)
        return scim_err_set(err, 404, NULL, "tenant not found");
    return n < 0 ? -1 : 0;
}

static int sqlite_tenant_delete(struct scim_store *st, int64_t id, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire_writer(s);
    int rc = -1, n;
    if (begin_write(c, err) < 0)
        goto out;
    /* emails and memberships go with their resources (ON DELETE CASCADE) */
    if (run_sql(c, "DELETE FROM resources WHERE tenant_id = ?", err, "i", id) < 0 ||
        run_sql(c, "DELETE FROM tokens WHERE tenant_id = ?", err, "i", id) < 0 ||
        run_sql(c, "DELETE FROM provisioning_log WHERE tenant_id = ?", err, "i", id) < 0 ||
        run_sql(c, "DELETE FROM events WHERE tenant_id = ?", err, "i", id) < 0 ||
        run_sql(c, "DELETE FROM event_seq WHERE tenant_id = ?", err, "i", id) < 0 ||
        run_sql(c, "DELETE FROM webhooks WHERE tenant_id = ?", err, "i", id) < 0 ||
        (n = run_sql(c, "DELETE FROM tenants WHERE id = ?", err, "i", id)) < 0)
        goto out;
    if (n == 0) {
        scim_err_set(err, 404, NULL, "tenant not found");
        goto out;
    }
    rc = commit(c, err);
out:
    release(s, c);
    return rc;
}

static int sqlite_tenant_stats(struct scim_store *st, int64_t id, int64_t *users, int64_t *groups,
                               struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    sqlite3_stmt *q = NULL;
    int rc = -1;
    if (prepare_dyn(c, "SELECT count(*) FILTER (WHERE kind = 0), count(*) FILTER (WHERE kind = 1) "
                       "FROM resources WHERE tenant_id = ?", &q, err) < 0)
        goto out;
    sqlite3_bind_int64(q, 1, id);
    if (sqlite3_step(q) != SQLITE_ROW) {
        db_fail(c, err, "tenant stats");
        goto out;
    }
    *users = sqlite3_column_int64(q, 0);
    *groups = sqlite3_column_int64(q, 1);
    rc = 0;
out:
    scim_stmt_release(q);
    release(s, c);
    return rc;
}

/* ---- provisioning log ------------------------------------------------------------------- */

static int bind_opt_text(sqlite3_stmt *q, int i, const char *v)
{
    return v && *v ? sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(q, i);
}

static int sqlite_log_append_batch(struct scim_store *st, const struct scim_log_entry *const *entries,
                                   size_t n, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire_writer(s);
    sqlite3_stmt *q = NULL;
    int rc = -1;
    if (begin_write(c, err) < 0)
        goto out;
    if (prepare_dyn(c, "INSERT INTO provisioning_log(tenant_id, time, request_id, bulk_index, token,"
                       " client, method, path, resource_type, resource_id, user_name, display_name,"
                       " status, scim_type, detail, latency_us, compat) VALUES (?, ?, ?, ?, ?, ?, ?,"
                       " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &q, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct scim_log_entry *e = entries[i];
        sqlite3_bind_int64(q, 1, e->tenant_id);
        sqlite3_bind_int64(q, 2, e->time_us);
        bind_opt_text(q, 3, e->request_id);
        sqlite3_bind_int(q, 4, e->bulk_index);
        bind_opt_text(q, 5, e->token);
        bind_opt_text(q, 6, e->client);
        bind_opt_text(q, 7, e->method);
        bind_opt_text(q, 8, e->path);
        bind_opt_text(q, 9, e->resource_type);
        bind_opt_text(q, 10, e->resource_id);
        bind_opt_text(q, 11, e->user_name);
        bind_opt_text(q, 12, e->display_name);
        sqlite3_bind_int(q, 13, e->status);
        bind_opt_text(q, 14, e->scim_type);
        bind_opt_text(q, 15, e->detail);
        sqlite3_bind_int64(q, 16, e->latency_us);
        bind_opt_text(q, 17, e->compat);
        if (sqlite3_step(q) != SQLITE_DONE) {
            db_fail(c, err, "log insert");
            goto out;
        }
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
    }
    rc = commit(c, err);
out:
    scim_stmt_release(q);
    release(s, c);
    return rc;
}

static void col_copy(sqlite3_stmt *q, int i, char *out, size_t outlen)
{
    const char *t = col_text(q, i);
    snprintf(out, outlen, "%s", t ? t : "");
}

/* Appends " AND <cond>" with one text parameter when `v` is set. */
static int log_where_text(struct scim_buf *w, const char *cond, const char *v, const char **params,
                          int *np)
{
    if (!v)
        return 0;
    params[(*np)++] = v;
    return scim_buf_adds(w, cond) < 0 ? -1 : 0;
}

static int sqlite_log_query(struct scim_store *st, const struct scim_log_query *lq,
                            struct scim_log_entry **out, size_t *n, int64_t *total,
                            struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = acquire(s);
    struct scim_buf where, sql;
    sqlite3_stmt *q = NULL;
    const char *tp[8];
    int ntp = 0, rc = -1, step;
    int64_t ip[8];
    int nip = 0;
    struct scim_log_entry *arr = NULL;
    size_t cnt = 0, cap;

    scim_buf_init(&where, 0);
    scim_buf_init(&sql, 0);
    /* integer parameters first (?1..), then text ones: numbered so the order of the
     * conditions does not matter */
    ip[nip++] = lq->tenant_id;
    if (scim_buf_adds(&where, " WHERE tenant_id = ?1") < 0)
        goto nomem;
    if (lq->status_min > 0) {
        ip[nip++] = lq->status_min;
        if (scim_buf_printf(&where, " AND status >= ?%d", nip) < 0)
            goto nomem;
    }
    if (lq->status_max > 0) {
        ip[nip++] = lq->status_max;
        if (scim_buf_printf(&where, " AND status <= ?%d", nip) < 0)
            goto nomem;
    }
    if (lq->since_us > 0) {
        ip[nip++] = lq->since_us;
        if (scim_buf_printf(&where, " AND time >= ?%d", nip) < 0)
            goto nomem;
    }
    if (lq->until_us > 0) {
        ip[nip++] = lq->until_us;
        if (scim_buf_printf(&where, " AND time <= ?%d", nip) < 0)
            goto nomem;
    }
    if (lq->after_id > 0) {
        ip[nip++] = lq->after_id;
        if (scim_buf_printf(&where, " AND id %c ?%d", lq->ascending ? '>' : '<', nip) < 0)
            goto nomem;
    }
    if (log_where_text(&where, " AND resource_type = ?", lq->resource_type, tp, &ntp) ||
        log_where_text(&where, " AND resource_id = ?", lq->resource_id, tp, &ntp) ||
        log_where_text(&where, " AND token = ?", lq->token, tp, &ntp) ||
        log_where_text(&where, " AND client = ?", lq->client, tp, &ntp))
        goto nomem;
    if (lq->user) {
        /* the same parameter twice: both columns are NOCASE */
        tp[ntp++] = lq->user;
        if (scim_buf_adds(&where, " AND (user_name = ? OR display_name = ?)") < 0)
            goto nomem;
        tp[ntp++] = lq->user;
    }
    /* un-numbered '?' take the numbers after the highest one used so far */
    if (scim_buf_adds(&sql, "SELECT count(*) FROM provisioning_log") < 0 ||
        scim_buf_add(&sql, where.data, where.len) < 0)
        goto nomem;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            scim_buf_reset(&sql);
            if (scim_buf_adds(&sql, "SELECT id, time, request_id, bulk_index, token, client, method,"
                                    " path, resource_type, resource_id, user_name, display_name,"
                                    " status, scim_type, detail, latency_us, compat"
                                    " FROM provisioning_log") < 0 ||
                scim_buf_add(&sql, where.data, where.len) < 0 ||
                scim_buf_printf(&sql, " ORDER BY id %s LIMIT %lld OFFSET %lld",
                              lq->ascending ? "ASC" : "DESC", (long long)lq->count,
                              (long long)lq->offset) < 0)
                goto nomem;
        }
        if (!scim_buf_str(&sql))
            goto nomem;
        if (prepare_dyn(c, scim_buf_str(&sql), &q, err) < 0)
            goto out;
        for (int i = 0; i < nip; i++)
            sqlite3_bind_int64(q, i + 1, ip[i]);
        for (int i = 0; i < ntp; i++)
            sqlite3_bind_text(q, nip + i + 1, tp[i], -1, SQLITE_STATIC);
        if (pass == 0) {
            if (sqlite3_step(q) != SQLITE_ROW) {
                db_fail(c, err, "log count");
                goto out;
            }
            *total = sqlite3_column_int64(q, 0);
            scim_stmt_release(q);
            q = NULL;
            continue;
        }
        cap = lq->count > 0 ? (size_t)lq->count : 1;
        if (!(arr = calloc(cap, sizeof *arr)))
            goto nomem;
        while (cnt < cap && (step = sqlite3_step(q)) == SQLITE_ROW) {
            struct scim_log_entry *e = &arr[cnt++];
            e->id = sqlite3_column_int64(q, 0);
            e->time_us = sqlite3_column_int64(q, 1);
            e->tenant_id = lq->tenant_id;
            col_copy(q, 2, e->request_id, sizeof e->request_id);
            e->bulk_index = sqlite3_column_int(q, 3);
            col_copy(q, 4, e->token, sizeof e->token);
            col_copy(q, 5, e->client, sizeof e->client);
            col_copy(q, 6, e->method, sizeof e->method);
            col_copy(q, 7, e->path, sizeof e->path);
            col_copy(q, 8, e->resource_type, sizeof e->resource_type);
            col_copy(q, 9, e->resource_id, sizeof e->resource_id);
            col_copy(q, 10, e->user_name, sizeof e->user_name);
            col_copy(q, 11, e->display_name, sizeof e->display_name);
            e->status = sqlite3_column_int(q, 12);
            col_copy(q, 13, e->scim_type, sizeof e->scim_type);
            col_copy(q, 14, e->detail, sizeof e->detail);
            e->latency_us = sqlite3_column_int64(q, 15);
            col_copy(q, 16, e->compat, sizeof e->compat);
        }
    }
    *out = arr;
    *n = cnt;
    arr = NULL;
    rc = 0;
    goto out;
nomem:
    scim_err_nomem(err);
out:
    free(arr);
    scim_stmt_release(q);
    scim_buf_release(&where);
    scim_buf_release(&sql);
    release(s, c);
    return rc;
}

/* Rows go in slices, each its own short transaction, so that pruning a large backlog never
 * holds the write lock for long. */
#define LOG_PRUNE_SLICE 5000

static int log_prune_slices(struct sqlite_store *s, const char *sql, int64_t a, int64_t b,
                            int64_t *deleted, struct scim_err *err)
{
    for (;;) {
        struct conn *c = acquire_writer(s);
        int n = -1;
        if (begin_write(c, err) == 0 && (n = run_sql(c, sql, err, "iii", a, b,
                                                     (int64_t)LOG_PRUNE_SLICE)) >= 0 &&
            commit(c, err) < 0)
            n = -1;
        release(s, c);
        if (n < 0)
            return -1;
        *deleted += n;
        if (n < LOG_PRUNE_SLICE)
            return 0;
    }
}

static int sqlite_log_prune(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                            int64_t *deleted, struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    int64_t gone = 0;
    int64_t *tenants = NULL;
    size_t nt = 0, cap = 0;
    int rc = -1;

    if (before_us > 0 &&
        log_prune_slices(s, "DELETE FROM provisioning_log WHERE id IN (SELECT id FROM "
                            "provisioning_log WHERE time < ?1 LIMIT ?3)",
                         before_us, 0, &gone, err) < 0)
        goto out;
    if (max_per_tenant > 0) {
        struct conn *c = acquire(s);
        sqlite3_stmt *q = NULL;
        int step = SQLITE_DONE;
        if (prepare_dyn(c, "SELECT id FROM tenants ORDER BY id", &q, err) == 0) {
            while ((step = sqlite3_step(q)) == SQLITE_ROW) {
                if (nt == cap) {
                    size_t ncap = cap ? cap * 2 : 16;
                    int64_t *nb = realloc(tenants, ncap * sizeof *nb);
                    if (!nb) {
                        step = SQLITE_NOMEM;
                        break;
                    }
                    tenants = nb;
                    cap = ncap;
                }
                tenants[nt++] = sqlite3_column_int64(q, 0);
            }
            if (step != SQLITE_DONE)
                db_fail(c, err, "log prune tenants");
        }
        scim_stmt_release(q);
        release(s, c);
        if (!q || step != SQLITE_DONE)
            goto out;
        for (size_t i = 0; i < nt; i++) {
            int64_t cut = 0;
            c = acquire(s);
            q = NULL;
            /* the id of the newest entry beyond the limit, read from the (tenant_id) index */
            if (prepare_dyn(c, "SELECT id FROM provisioning_log WHERE tenant_id = ? "
                               "ORDER BY id DESC LIMIT 1 OFFSET ?", &q, err) < 0) {
                release(s, c);
                goto out;
            }
            sqlite3_bind_int64(q, 1, tenants[i]);
            sqlite3_bind_int64(q, 2, max_per_tenant);
            step = sqlite3_step(q);
            if (step == SQLITE_ROW)
                cut = sqlite3_column_int64(q, 0);
            else if (step != SQLITE_DONE)
                db_fail(c, err, "log prune cut");
            scim_stmt_release(q);
            release(s, c);
            if (step != SQLITE_ROW && step != SQLITE_DONE)
                goto out;
            if (cut > 0 &&
                log_prune_slices(s, "DELETE FROM provisioning_log WHERE id IN (SELECT id FROM "
                                    "provisioning_log WHERE tenant_id = ?1 AND id <= ?2 LIMIT ?3)",
                                 tenants[i], cut, &gone, err) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    free(tenants);
    if (deleted)
        *deleted = gone;
    return rc;
}

static const struct scim_store_ops sqlite_ops = {
    .name = "sqlite",
    .free = sqlite_free,
    .tenant_default = sqlite_tenant_default,
    .secret = sqlite_secret,
    .token_create = sqlite_token_create,
    .token_find = sqlite_token_find,
    .token_touch = sqlite_token_touch,
    .token_list = sqlite_token_list,
    .token_revoke = sqlite_token_revoke,
    .token_count = sqlite_token_count,
    .create = sqlite_create,
    .get = sqlite_get,
    .update = sqlite_update,
    .del = sqlite_delete,
    .list = sqlite_list,
    .import_batch = sqlite_import,
    .tenant_create = sqlite_tenant_create,
    .tenant_get = sqlite_tenant_get,
    .tenant_list = sqlite_tenant_list,
    .tenant_update = sqlite_tenant_update,
    .tenant_delete = sqlite_tenant_delete,
    .tenant_stats = sqlite_tenant_stats,
    .create_ex = sqlite_create_ex,
    .update_ex = sqlite_update_ex,
    .delete_ex = sqlite_delete_ex,
    .log_append_batch = sqlite_log_append_batch,
    .log_query = sqlite_log_query,
    .log_prune = sqlite_log_prune,
    .events_list = scim_sqlite_events_list,
    .events_prune = scim_sqlite_events_prune,
    .webhook_create = scim_sqlite_webhook_create,
    .webhook_list = scim_sqlite_webhook_list,
    .webhook_update = scim_sqlite_webhook_update,
    .webhook_delete = scim_sqlite_webhook_delete,
    .webhook_claim = scim_sqlite_webhook_claim,
    .webhook_progress = scim_sqlite_webhook_progress,
    .webhook_release_leases = scim_sqlite_webhook_release_leases,
    .export_rows = scim_sqlite_export_rows,
    .import_rows = scim_sqlite_import_rows,
};

int scim_sqlite_with_conn(struct scim_store *st, bool write, scim_sqlite_conn_fn fn, void *ctx,
                          struct scim_err *err)
{
    struct sqlite_store *s = ss(st);
    struct conn *c = write ? acquire_writer(s) : acquire(s);
    int rc = -1;
    if (write && begin_write(c, err) < 0)
        goto out;
    rc = fn(c->db, ctx, err);
    if (rc >= 0 && write && commit(c, err) < 0)
        rc = -1;
out:
    release(s, c); /* rolls back whatever is still open */
    return rc;
}

int scim_sqlite_open(const char *path, const struct scim_store_opts *opts, struct scim_store **out,
                     struct scim_err *err)
{
    *out = NULL;
    bool memory = strcmp(path, ":memory:") == 0;
    int pool = opts && opts->pool_size > 0 ? opts->pool_size : 8;
    int busy = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
    if (memory)
        pool = 1; /* each :memory: connection is its own database */
    struct sqlite_store *s = calloc(1, sizeof(*s));
    if (!s)
        return scim_err_nomem(err);
    s->base.ops = &sqlite_ops;
    s->base.reg = opts ? opts->reg : NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!(s->conns = calloc((size_t)pool, sizeof(*s->conns)))) {
        sqlite_free(&s->base);
        return scim_err_nomem(err);
    }
    for (int i = 0; i < pool; i++) {
        s->n_conns = i + 1;
        if (conn_open(&s->conns[i], path, memory, busy, opts && opts->sqlite_sync_normal, err) < 0 ||
            (i == 0 && migrate(&s->conns[0], err) < 0)) {
            sqlite_free(&s->base);
            return -1;
        }
    }
    /* writes of a file database go through one connection, group-committed (gcommit.h); an
     * in-memory database is private to its one connection, which therefore writes itself */
    if (!memory) {
        if (!(s->writer = calloc(1, sizeof(*s->writer)))) {
            sqlite_free(&s->base);
            return scim_err_nomem(err);
        }
        if (conn_open(s->writer, path, false, busy, opts && opts->sqlite_sync_normal, err) < 0 ||
            scim_gc_init(&s->gc, s->writer->db, &s->writer->in_tx, &s->writer->committing,
                         SCIM_SQLITE_GC_MAX_BATCH, err) < 0) {
            sqlite_free(&s->base);
            return -1;
        }
        s->writer->gc = &s->gc;
        /* Each job of a batch runs in a savepoint, so its multi-row statements keep a
         * statement journal: in memory, not a temporary file opened and deleted about once
         * per batch (strace of the create benchmark). Only here: on the read connections a
         * large sort would then grow in memory instead of spilling to a file. */
        sqlite3_exec(s->writer->db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
        /* sync_normal too: its WAL must be checkpointed all the same */
        if (scim_ckpt_start(&s->ckpt, path, s->writer->db, err) < 0) {
            sqlite_free(&s->base);
            return -1;
        }
    }
    *out = &s->base;
    return 0;
}
