/* The PostgreSQL backend: a lazily filled pool of libpq connections, versioned migrations
 * under an advisory lock, named prepared statements, and the operations of store.h with the
 * same behaviour (errors, output) as the SQLite backend. The only code that includes libpq-fe.h.
 *
 * Concurrency: transactions run at READ COMMITTED. A read-modify-write locks its row first
 * (SELECT ... FOR UPDATE) and writes with `WHERE pk = $1 AND version = $2`, so two nodes
 * updating one resource serialise on the row lock and never lose an update. Uniqueness
 * (userName, live token names) is enforced by unique indexes, whatever node inserts.
 *
 * Failures: every operation is one transaction run by run_tx(), which retries it after a
 * serialization failure or deadlock (40001/40P01), and once on a fresh connection when a pooled
 * connection turns out to be dead before anything was committed (the server restarted). A
 * connection that fails is closed and reopened on its next use; while the server cannot be
 * reached operations fail with 503, which the API answers with Retry-After. */
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "store/events.h"
#include "store/sql/sqlgen.h"
#include "store/store_impl.h"

enum stmt_id {
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
    S_RES_GET_LOCK,
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
    S_RES_TAKEOVER,
    S_EVENT_INSERT,
    S_LOG_INSERT,
    S_COUNT
};

#define RES_COLS "pk, id, created, last_modified, version, doc::text, origin, managed_by, deprovisioned"

static const char *const stmt_sql[S_COUNT] = {
    [S_TENANT_INSERT] = "INSERT INTO tenants(name, created) VALUES ('default', $1) "
                        "ON CONFLICT (name) DO NOTHING",
    [S_TENANT_GET] = "SELECT id FROM tenants WHERE name = 'default'",
    [S_TOKEN_INSERT] = "INSERT INTO tokens(tenant_id, name, hash, scopes, created, expires) "
                       "VALUES ($1, $2, $3, $4, $5, $6)",
    [S_TOKEN_FIND] = "SELECT id, tenant_id, name, scopes, created, last_used, expires FROM tokens "
                     "WHERE hash = $1 AND revoked IS NULL AND (expires IS NULL OR expires > $2)",
    [S_TOKEN_TOUCH] = "UPDATE tokens SET last_used = $1 WHERE id = $2",
    [S_TOKEN_LIST] = "SELECT name, scopes, created, last_used, expires FROM tokens "
                     "WHERE tenant_id = $1 AND revoked IS NULL ORDER BY id",
    [S_TOKEN_REVOKE] = "UPDATE tokens SET revoked = $1 WHERE tenant_id = $2 AND name = $3 "
                       "AND revoked IS NULL",
    [S_TOKEN_COUNT] = "SELECT count(*) FROM tokens WHERE tenant_id = $1 AND revoked IS NULL "
                      "AND (expires IS NULL OR expires > $2)",
    [S_RES_INSERT] = "INSERT INTO resources(tenant_id, kind, id, user_name, external_id, "
                     "display_name, active, created, last_modified, version, password_hash, doc, origin, managed_by) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $12, $13) RETURNING pk",
    [S_RES_GET] = "SELECT " RES_COLS " FROM resources WHERE tenant_id = $1 AND kind = $2 AND id = $3",
    [S_RES_GET_LOCK] = "SELECT " RES_COLS " FROM resources "
                       "WHERE tenant_id = $1 AND kind = $2 AND id = $3 FOR UPDATE",
    [S_RES_UPDATE_DOC] = "UPDATE resources SET user_name = $1, external_id = $2, display_name = $3, "
                         "active = $4, doc = $5, password_hash = coalesce($6, password_hash), "
                         "version = version + 1, last_modified = $7 WHERE pk = $8 AND version = $9",
    [S_RES_BUMP] = "UPDATE resources SET password_hash = coalesce($1, password_hash), "
                   "version = version + 1, last_modified = $2 WHERE pk = $3 AND version = $4",
    [S_RES_DELETE] = "DELETE FROM resources WHERE pk = $1",
    [S_RES_PK] = "SELECT pk, kind FROM resources WHERE tenant_id = $1 AND kind IN (0, 1) AND id = $2 "
                 "AND NOT deprovisioned",
    [S_EMAILS_DELETE] = "DELETE FROM emails WHERE resource_pk = $1",
    [S_EMAILS_INSERT] = "INSERT INTO emails(resource_pk, tenant_id, value, type, primary_) "
                        "VALUES ($1, $2, $3, $4, $5)",
    /* a SCIM add of a pair that exists with another origin makes it the IdP's; xmax = 0 tells
     * an inserted row from an updated one */
    [S_MEMBER_INSERT] = "INSERT INTO members(group_pk, member_pk, display, origin) VALUES ($1, $2, $3, $4) "
                        "ON CONFLICT (group_pk, member_pk) DO UPDATE SET origin = "
                        "CASE WHEN EXCLUDED.origin = 'scim' THEN 'scim' ELSE members.origin END "
                        "RETURNING (xmax = 0)",
    [S_MEMBER_DELETE] = "DELETE FROM members WHERE group_pk = $1 AND member_pk = "
                        "(SELECT pk FROM resources WHERE tenant_id = $2 AND kind IN (0, 1) AND id = $3) "
                        "AND ($4::boolean OR origin = 'scim')",
    [S_MEMBERS_CLEAR] = "DELETE FROM members WHERE group_pk = $1 AND origin = 'scim'",
    [S_MEMBERS_OF] = "SELECT x.id, x.kind, coalesce(mb.display, x.display_name, x.user_name), mb.origin "
                     "FROM members mb JOIN resources x ON x.pk = mb.member_pk "
                     "WHERE mb.group_pk = $1 AND mb.origin = 'scim' AND NOT x.deprovisioned ORDER BY mb.seq",
    [S_MEMBERS_OF_ALL] = "SELECT x.id, x.kind, coalesce(mb.display, x.display_name, x.user_name), mb.origin "
                         "FROM members mb JOIN resources x ON x.pk = mb.member_pk "
                         "WHERE mb.group_pk = $1 ORDER BY mb.seq",
    [S_GROUPS_DIRECT] = "SELECT g.id, g.display_name, m.origin FROM members m "
                        "JOIN resources g ON g.pk = m.group_pk WHERE m.member_pk = $1 ORDER BY m.seq",
    [S_RES_TAKEOVER] = "UPDATE resources SET user_name = $1, external_id = $2, display_name = $3, "
                       "active = $4, doc = $5, password_hash = coalesce($6, password_hash), "
                       "origin = 'scim', managed_by = $7, deprovisioned = false, version = version + 1, "
                       "last_modified = $8 WHERE pk = $9",
    [S_EVENT_INSERT] = "INSERT INTO events(tenant_id, seq, created, type, data) VALUES ($1, $2, $3, $4, $5)",
    [S_LOG_INSERT] = "INSERT INTO provisioning_log(tenant_id, time, request_id, bulk_index, token, client, "
                     "method, path, resource_type, resource_id, user_name, display_name, status, "
                     "scim_type, detail, latency_us, compat) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                     "$10, $11, $12, $13, $14, $15, $16, $17)",
    /* direct groups, then the groups reached through nested groups (UNION stops cycles) */
    [S_GROUPS_OF] = "WITH RECURSIVE anc(pk) AS ("
                    " SELECT group_pk FROM members WHERE member_pk = $1"
                    " UNION SELECT m.group_pk FROM members m JOIN anc ON m.member_pk = anc.pk) "
                    "SELECT g.id, g.display_name, "
                    " EXISTS (SELECT 1 FROM members d WHERE d.member_pk = $1 AND d.group_pk = g.pk) AS direct "
                    "FROM anc JOIN resources g ON g.pk = anc.pk WHERE g.pk <> $1 "
                    "ORDER BY direct DESC, g.pk",
    [S_BUMP_GROUPS_OF] = "UPDATE resources SET version = version + 1, last_modified = $1 "
                         "WHERE pk IN (SELECT group_pk FROM members WHERE member_pk = $2)",
};

/* Migration n (1-based) is migrations[n - 1], numbered like the SQLite ones: each runs in one
 * transaction and records its number in schema_migrations. Never edit a released migration.
 *
 * Text columns compared case-insensitively are COLLATE "C": lower() then folds ASCII only
 * (as SQLite's NOCASE and the filter compiler do), and the lower(col) expression indexes are
 * in byte order, so prefix ranges on them are exact. emails.rowid is named after SQLite's
 * implicit rowid because the shared SQL generator orders emails by it. */
static const char *const migrations[] = {
    "CREATE TABLE tenants(id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, created bigint NOT NULL);"
    "CREATE TABLE tokens(id bigserial PRIMARY KEY, tenant_id bigint NOT NULL REFERENCES tenants(id),"
    " name text NOT NULL, hash bytea NOT NULL UNIQUE, scopes text NOT NULL, created bigint,"
    " last_used bigint, expires bigint, revoked bigint);"
    "CREATE UNIQUE INDEX tokens_live_name ON tokens(tenant_id, name) WHERE revoked IS NULL;"
    "CREATE TABLE resources(pk bigserial PRIMARY KEY, tenant_id bigint NOT NULL,"
    " kind smallint NOT NULL, id text COLLATE \"C\" NOT NULL, user_name text COLLATE \"C\","
    " external_id text COLLATE \"C\", display_name text COLLATE \"C\", active boolean,"
    " created bigint NOT NULL, last_modified bigint NOT NULL, version bigint NOT NULL,"
    " password_hash text, doc jsonb NOT NULL);"
    "CREATE UNIQUE INDEX resources_id ON resources(tenant_id, kind, id);"
    "CREATE UNIQUE INDEX resources_user_name ON resources(tenant_id, lower(user_name)) WHERE kind = 0;"
    "CREATE INDEX resources_external_id ON resources(tenant_id, kind, external_id);"
    "CREATE INDEX resources_display_name ON resources(tenant_id, kind, lower(display_name));"
    "CREATE INDEX resources_kind ON resources(tenant_id, kind, pk);"
    "CREATE TABLE emails(rowid bigserial PRIMARY KEY,"
    " resource_pk bigint NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,"
    " tenant_id bigint NOT NULL, value text COLLATE \"C\" NOT NULL, type text, primary_ smallint);"
    "CREATE INDEX emails_value ON emails(tenant_id, lower(value));"
    "CREATE INDEX emails_resource ON emails(resource_pk);"
    "CREATE TABLE members(seq bigserial PRIMARY KEY,"
    " group_pk bigint NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,"
    " member_pk bigint NOT NULL REFERENCES resources(pk) ON DELETE CASCADE,"
    " display text, UNIQUE(group_pk, member_pk));"
    "CREATE INDEX members_member ON members(member_pk, group_pk);"
    /* xsd:dateTime text -> microseconds since the epoch (NULL when not a date), for filters on
     * dateTime attributes inside the doc; a date without an offset is UTC */
    "CREATE FUNCTION scim_datetime_us(t text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE"
    " SET TimeZone = 'UTC' AS $f$ BEGIN"
    " RETURN (extract(epoch FROM t::timestamptz) * 1000000)::bigint;"
    " EXCEPTION WHEN others THEN RETURN NULL; END $f$;",
    /* 2: tenants, provisioning policies and the admin view (as SQLite's migration 2) */
    "ALTER TABLE tenants ADD COLUMN disabled boolean NOT NULL DEFAULT false;"
    "ALTER TABLE tenants ADD COLUMN settings text;"
    "ALTER TABLE resources ADD COLUMN origin text NOT NULL DEFAULT 'scim';"
    "ALTER TABLE resources ADD COLUMN managed_by text;"
    "ALTER TABLE resources ADD COLUMN deprovisioned boolean NOT NULL DEFAULT false;"
    "ALTER TABLE members ADD COLUMN origin text NOT NULL DEFAULT 'scim';"
    "CREATE INDEX tokens_tenant ON tokens(tenant_id);"
    "CREATE INDEX emails_resource_primary ON emails(resource_pk, primary_);",
    /* 3: the provisioning log (as SQLite's migration 3; bigserial ids never come back) */
    "CREATE TABLE provisioning_log(id bigserial PRIMARY KEY,"
    " tenant_id bigint NOT NULL, time bigint NOT NULL, request_id text,"
    " bulk_index integer NOT NULL DEFAULT 0, token text, client text, method text, path text,"
    " resource_type text, resource_id text, user_name text COLLATE \"C\","
    " display_name text COLLATE \"C\", status integer NOT NULL, scim_type text, detail text,"
    " latency_us bigint, compat text);"
    "CREATE INDEX provisioning_log_tenant ON provisioning_log(tenant_id, id);"
    "CREATE INDEX provisioning_log_time ON provisioning_log(time);"
    "CREATE INDEX provisioning_log_user ON provisioning_log(tenant_id, lower(user_name));",
    /* 4: the change feed and webhooks (as SQLite's migration 4) */
    "CREATE TABLE event_seq(tenant_id bigint PRIMARY KEY, last_seq bigint NOT NULL);"
    "CREATE TABLE events(tenant_id bigint NOT NULL, seq bigint NOT NULL, created bigint NOT NULL,"
    " type text NOT NULL, data text NOT NULL, PRIMARY KEY(tenant_id, seq));"
    "CREATE TABLE webhooks(pk bigserial PRIMARY KEY, tenant_id bigint NOT NULL, id text NOT NULL UNIQUE,"
    " url text NOT NULL, secret text NOT NULL, event_types text NOT NULL,"
    " enabled boolean NOT NULL DEFAULT true, created bigint NOT NULL,"
    " delivered_seq bigint NOT NULL DEFAULT 0, attempts bigint NOT NULL DEFAULT 0,"
    " next_attempt bigint NOT NULL DEFAULT 0, last_attempt bigint, last_success bigint,"
    " last_status integer, last_error text, lease_owner text, lease_expires bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX webhooks_tenant ON webhooks(tenant_id);",
};

/* Any constant: the session lock every node takes while it migrates. */
#define MIGRATION_LOCK_KEY 0x5c1dd001
#define TX_ATTEMPTS 5

struct pconn {
    PGconn *pg;
    bool prepared[S_COUNT];
    bool busy;
    bool broken;        /* the connection failed: reopen before the next use */
    char state[6];      /* SQLSTATE of the last failure */
    char constraint[64]; /* constraint of the last failure (23505) */
};

struct pg_store {
    struct scim_store base; /* first: casts between the two are valid */
    char *uri;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pconn *conns;
    int n_conns;
    /* bulk import, per table (resources, emails, members): rows written, and at the last ANALYZE (mu) */
    int64_t imported[3], analyzed_at[3];
};

static struct pg_store *ps(struct scim_store *st)
{
    return (struct pg_store *)st;
}

/* ---- parameters ------------------------------------------------------------------------ */

#define MAX_PARAMS 20

/* Values bound to a statement, all in text format; NULL is SQL NULL. */
struct params {
    int n;
    const char *v[MAX_PARAMS];
    char num[MAX_PARAMS][32];
};

static void p_i64(struct params *p, int64_t x)
{
    snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)x);
    p->v[p->n] = p->num[p->n];
    p->n++;
}

static void p_str(struct params *p, const char *s)
{
    p->v[p->n++] = s;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
    int64_t v = 0;
    if (!PQgetisnull(r, row, col))
        scim_parse_i64(PQgetvalue(r, row, col), &v);
    return v;
}

static const char *col_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* ---- errors and statements ------------------------------------------------------------- */

static bool state_is(const struct pconn *c, const char *s)
{
    return strcmp(c->state, s) == 0;
}

/* Translates a failed result: a lost or refused connection (class 08, the shutdown family
 * 57P0x, or no SQLSTATE at all because libpq itself failed) is 503 and marks the connection
 * for reopening; the rest is 500 here, refined by the callers (23505 → 409). */
static int pg_fail(struct pconn *c, const PGresult *r, struct scim_err *err, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *cons = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *msg = r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
    snprintf(c->state, sizeof(c->state), "%s", state ? state : "");
    snprintf(c->constraint, sizeof(c->constraint), "%s", cons ? cons : "");
    if (PQstatus(c->pg) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
        strncmp(state, "57P", 3) == 0) {
        c->broken = true;
        scim_err_set(err, 503, NULL, "the database is unavailable; retry later");
        return scim_err_log(err, "postgresql %.60s: %s", what, msg);
    }
    return scim_err_internal(err, "postgresql %.60s: %s [%s]", what, msg, c->state);
}

/* Runs prepared statement `id` (prepared on this connection at first use, under the name
 * "s<id>"). Returns the result (PQclear it) or NULL with err filled. */
static PGresult *run(struct pconn *c, enum stmt_id id, const struct params *p, struct scim_err *err)
{
    char name[16];
    snprintf(name, sizeof(name), "s%d", (int)id);
    if (!c->prepared[id]) {
        PGresult *r = PQprepare(c->pg, name, stmt_sql[id], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            pg_fail(c, r, err, stmt_sql[id]);
            PQclear(r);
            return NULL;
        }
        PQclear(r);
        c->prepared[id] = true;
    }
    PGresult *r = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    pg_fail(c, r, err, stmt_sql[id]);
    PQclear(r);
    return NULL;
}

/* run() for statements whose result is not needed; *changed = rows affected when given. */
static int run_cmd(struct pconn *c, enum stmt_id id, const struct params *p, int64_t *changed,
                   struct scim_err *err)
{
    PGresult *r = run(c, id, p, err);
    if (!r)
        return -1;
    if (changed)
        scim_parse_i64(PQcmdTuples(r), changed);
    PQclear(r);
    return 0;
}

/* Runs SQL text without parameters (transaction control, migrations). */
static int simple(struct pconn *c, const char *sql, struct scim_err *err)
{
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(c, r, err, sql);
    PQclear(r);
    return rc;
}

/* ---- pool ------------------------------------------------------------------------------ */

static void drop_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* NOTICEs ("... already exists, skipping") are not for the log */
}

static int conn_open(struct pg_store *s, struct pconn *c, struct scim_err *err)
{
    if (c->pg)
        PQfinish(c->pg);
    memset(c->prepared, 0, sizeof(c->prepared));
    c->broken = false;
    /* the URI's own parameters win over these defaults (expand_dbname) */
    const char *const keys[] = {"connect_timeout", "application_name", "keepalives_idle",
                                "dbname", NULL};
    const char *const vals[] = {"5", "scimd", "30", s->uri, NULL};
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg)
        return scim_err_nomem(err);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        scim_err_set(err, 503, NULL, "the database is unavailable; retry later");
        scim_err_log(err, "postgresql connect: %s", PQerrorMessage(c->pg));
        PQfinish(c->pg);
        c->pg = NULL;
        return -1;
    }
    PQsetNoticeProcessor(c->pg, drop_notice, NULL);
    return 0;
}

static struct pconn *acquire(struct pg_store *s)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        /* prefer an open connection; open a new one only when all open ones are busy */
        struct pconn *idle = NULL;
        for (int i = 0; i < s->n_conns; i++) {
            if (s->conns[i].busy)
                continue;
            if (s->conns[i].pg && !s->conns[i].broken) {
                idle = &s->conns[i];
                break;
            }
            if (!idle)
                idle = &s->conns[i];
        }
        if (idle) {
            idle->busy = true;
            pthread_mutex_unlock(&s->mu);
            return idle;
        }
        pthread_cond_wait(&s->cv, &s->mu);
    }
}

static void release(struct pg_store *s, struct pconn *c)
{
    if (c->pg && !c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        struct scim_err ignored;
        simple(c, "ROLLBACK", &ignored); /* nothing may leak to the next user */
    }
    pthread_mutex_lock(&s->mu);
    c->busy = false;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* A usable connection: (re)opened when it never was, failed before, or was closed under us. */
static int conn_ready(struct pg_store *s, struct pconn *c, struct scim_err *err)
{
    if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK)
        return 0;
    return conn_open(s, c, err);
}

enum tx_mode { TX_WRITE, TX_READ, TX_NONE };
typedef int (*tx_fn)(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err);

/* Runs `fn` in one transaction (TX_NONE: a single statement, autocommit), retrying as
 * described at the top of the file. `fn` must set its outputs only on success, and be safe to
 * run again after a failure. */
static int run_tx(struct pg_store *s, enum tx_mode mode, tx_fn fn, void *arg, struct scim_err *err)
{
    for (int attempt = 1;; attempt++) {
        struct pconn *c = acquire(s);
        bool committing = false;
        c->state[0] = c->constraint[0] = '\0';
        int rc = conn_ready(s, c, err);
        if (rc == 0 && mode != TX_NONE)
            rc = simple(c, mode == TX_READ ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN",
                        err);
        if (rc == 0)
            rc = fn(s, c, arg, err);
        if (rc == 0 && mode != TX_NONE) {
            committing = true;
            rc = simple(c, "COMMIT", err);
        }
        bool conflict = state_is(c, "40001") || state_is(c, "40P01");
        /* a connection that died before COMMIT was sent committed nothing: safe to redo once
         * (the usual case: the first use of a pooled connection after a server restart) */
        bool stale = c->broken && !committing && attempt == 1;
        release(s, c);
        if (rc == 0 || attempt >= TX_ATTEMPTS || !(conflict || stale))
            return rc;
        scim_err_clear(err);
        if (conflict) {
            struct timespec ts = {0, 1000000L * attempt * (long)(1 + (scim_now_us() & 7))};
            nanosleep(&ts, NULL);
        }
    }
}

/* ---- migrations ---------------------------------------------------------------------------- */

static int migrate(struct pconn *c, struct scim_err *err)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%d)", MIGRATION_LOCK_KEY);
    if (simple(c, sql, err) < 0)
        return -1;
    int rc = simple(c, "CREATE TABLE IF NOT EXISTS schema_migrations(version integer PRIMARY KEY)", err);
    size_t n = sizeof(migrations) / sizeof(migrations[0]);
    for (size_t v = 1; rc == 0 && v <= n; v++) {
        char num[24];
        snprintf(num, sizeof(num), "%zu", v);
        const char *pv[1] = {num};
        if ((rc = simple(c, "BEGIN", err)) < 0)
            break;
        PGresult *r = PQexecParams(c->pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL, pv,
                                   NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = pg_fail(c, r, err, "migration check");
        } else if (PQntuples(r) == 0) {
            rc = simple(c, migrations[v - 1], err);
            if (rc == 0) {
                PGresult *ins = PQexecParams(c->pg, "INSERT INTO schema_migrations(version) VALUES ($1)", 1,
                                             NULL, pv, NULL, NULL, 0);
                if (PQresultStatus(ins) != PGRES_COMMAND_OK)
                    rc = pg_fail(c, ins, err, "migration record");
                PQclear(ins);
            }
        }
        PQclear(r);
        struct scim_err ignored;
        if (rc == 0)
            rc = simple(c, "COMMIT", err);
        else
            simple(c, "ROLLBACK", &ignored);
    }
    /* named shared secrets (scim_store_secret): no migration number, as in SQLite, where the
     * table is created on first use; here under the lock, so concurrent starts cannot race */
    if (rc == 0)
        rc = simple(c, "CREATE TABLE IF NOT EXISTS secrets(name text PRIMARY KEY, value bytea NOT NULL)", err);
    struct scim_err ignored;
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%d)", MIGRATION_LOCK_KEY);
    simple(c, sql, &ignored);
    if (rc < 0 && err->status == 500) {
        char log[SCIM_ERR_DETAIL_MAX];
        snprintf(log, sizeof(log), "%s", err->log);
        scim_err_internal(err, "postgresql migration: %s", log);
    }
    return rc;
}

static void pg_free(struct scim_store *st)
{
    struct pg_store *s = ps(st);
    for (int i = 0; i < s->n_conns; i++)
        if (s->conns[i].pg)
            PQfinish(s->conns[i].pg);
    free(s->conns);
    free(s->uri);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- resource output ---------------------------------------------------------------- */

/* A row read with RES_COLS (the doc is column 5). */
static void row_from(const PGresult *r, int i, struct scim_store_row *out)
{
    out->pk = col_i64(r, i, 0);
    scim_copy_str(out->id, sizeof(out->id), PQgetvalue(r, i, 1));
    out->created = col_i64(r, i, 2);
    out->last_modified = col_i64(r, i, 3);
    out->version = col_i64(r, i, 4);
    scim_copy_str(out->origin, sizeof(out->origin), col_text(r, i, 6) ? col_text(r, i, 6) : "scim");
    scim_copy_str(out->managed_by, sizeof(out->managed_by), col_text(r, i, 7));
    out->deprovisioned = strcmp(PQgetvalue(r, i, 8), "t") == 0;
}

/* Runs SQL text with parameters described by `types` (one letter each: 'i' int64, 't' text or
 * NULL): the result (PQclear it), or NULL with err filled. For the rarely run statements. */
static PGresult *q_exec(struct pconn *c, const char *sql, struct scim_err *err, const char *types, ...)
{
    struct params p = {0};
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i] && i < MAX_PARAMS; i++) {
        if (types[i] == 'i')
            p_i64(&p, va_arg(ap, int64_t));
        else
            p_str(&p, va_arg(ap, const char *));
    }
    va_end(ap);
    PGresult *r = PQexecParams(c->pg, sql, p.n, NULL, p.v, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    pg_fail(c, r, err, sql);
    PQclear(r);
    return NULL;
}

/* q_exec for statements whose result is not needed: rows affected, or -1. */
static int64_t q_cmd(struct pconn *c, const char *sql, struct scim_err *err, const char *types, ...)
{
    struct params p = {0};
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i] && i < MAX_PARAMS; i++) {
        if (types[i] == 'i')
            p_i64(&p, va_arg(ap, int64_t));
        else
            p_str(&p, va_arg(ap, const char *));
    }
    va_end(ap);
    PGresult *r = PQexecParams(c->pg, sql, p.n, NULL, p.v, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    int64_t n = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pg_fail(c, r, err, sql);
        PQclear(r);
        return -1;
    }
    scim_parse_i64(PQcmdTuples(r), &n);
    PQclear(r);
    return n;
}

/* members of a group (the SCIM view: origin "scim" only; the admin view: all, with origin). */
static int load_members(struct pconn *c, int64_t pk, bool admin, json_t *obj, struct scim_err *err)
{
    struct params p = {0};
    p_i64(&p, pk);
    PGresult *r = run(c, admin ? S_MEMBERS_OF_ALL : S_MEMBERS_OF, &p, err);
    if (!r)
        return -1;
    json_t *arr = json_array();
    if (!arr || json_object_set_new(obj, "members", arr) < 0)
        goto nomem;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *disp = col_text(r, i, 2);
        json_t *m = json_pack("{s:s, s:s}", "value", PQgetvalue(r, i, 0), "type",
                              strcmp(PQgetvalue(r, i, 1), "0") == 0 ? "User" : "Group");
        if (!m || (disp && json_object_set_new(m, "display", json_string(disp)) < 0) ||
            (admin && json_object_set_new(m, "origin", json_string(PQgetvalue(r, i, 3))) < 0) ||
            json_array_append_new(arr, m) < 0) {
            json_decref(m);
            goto nomem;
        }
    }
    PQclear(r);
    return 0;
nomem:
    PQclear(r);
    return scim_err_nomem(err);
}

/* groups of a user: direct and indirect (SCIM view), or direct with origin (admin view). */
static int load_groups(struct pconn *c, int64_t pk, bool admin, json_t *obj, struct scim_err *err)
{
    struct params p = {0};
    p_i64(&p, pk);
    PGresult *r = run(c, admin ? S_GROUPS_DIRECT : S_GROUPS_OF, &p, err);
    if (!r)
        return -1;
    json_t *arr = json_array();
    if (!arr || json_object_set_new(obj, "groups", arr) < 0)
        goto nomem;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *disp = col_text(r, i, 1);
        const char *type = admin || strcmp(PQgetvalue(r, i, 2), "t") == 0 ? "direct" : "indirect";
        json_t *m = json_pack("{s:s, s:s}", "value", PQgetvalue(r, i, 0), "type", type);
        if (!m || (disp && json_object_set_new(m, "display", json_string(disp)) < 0) ||
            (admin && json_object_set_new(m, "origin", json_string(PQgetvalue(r, i, 2))) < 0) ||
            json_array_append_new(arr, m) < 0) {
            json_decref(m);
            goto nomem;
        }
    }
    PQclear(r);
    return 0;
nomem:
    PQclear(r);
    return scim_err_nomem(err);
}

/* The SCIM object of a row: schemas, id, the doc attributes, meta, members/groups. */
static int build_resource(struct pconn *c, enum scim_rtype kind, const struct scim_store_row *r,
                          const char *doc_text, unsigned flags, json_t **out, struct scim_err *err)
{
    bool admin = (flags & SCIM_STORE_ADMIN) != 0;
    json_t *obj = NULL;

    if (scim_store_row_json("postgresql", kind, r, doc_text, admin, &obj, err) < 0)
        return -1;
    if (kind == SCIM_RT_GROUP && (flags & (SCIM_STORE_MEMBERS | SCIM_STORE_LOAD_MEMBERS)) &&
        load_members(c, r->pk, admin, obj, err) < 0)
        goto fail;
    if (kind == SCIM_RT_USER && (flags & SCIM_STORE_GROUPS) &&
        load_groups(c, r->pk, admin, obj, err) < 0)
        goto fail;
    *out = obj;
    return 0;
fail:
    json_decref(obj);
    return -1;
}

static const char *kind_name(enum scim_rtype kind)
{
    return kind == SCIM_RT_USER ? "User" : "Group";
}

/* Reads (and with `lock`, locks until the end of the transaction) a row by (tenant, kind, id):
 * 1 found (*doc_text malloc'ed when asked for), 0 absent, -1 error. */
static int read_row(struct pconn *c, int64_t tenant, enum scim_rtype kind, const char *id, bool lock,
                    struct scim_store_row *row, char **doc_text, struct scim_err *err)
{
    struct params p = {0};
    p_i64(&p, tenant);
    p_i64(&p, (int64_t)kind);
    p_str(&p, id);
    PGresult *r = run(c, lock ? S_RES_GET_LOCK : S_RES_GET, &p, err);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    row_from(r, 0, row);
    if (doc_text && !(*doc_text = scim_strdup(PQgetvalue(r, 0, 5)))) {
        PQclear(r);
        return scim_err_nomem(err);
    }
    PQclear(r);
    return 1;
}

/* Reads a resource and builds it (when `out` is given): 0, or -1 (404 when absent, or
 * deprovisioned outside the admin view). */
static int get_resource(struct pconn *c, int64_t tenant, enum scim_rtype kind, const char *id,
                        unsigned flags, bool lock, json_t **out, struct scim_store_row *r_out, struct scim_err *err)
{
    struct scim_store_row row;
    char *doc = NULL;
    int rc = read_row(c, tenant, kind, id, lock, &row, out ? &doc : NULL, err);
    if (rc > 0 && row.deprovisioned && !(flags & SCIM_STORE_ADMIN))
        rc = 0; /* deprovisioned: gone for the IdP */
    if (rc == 0) {
        free(doc);
        return scim_err_set(err, 404, NULL, "%s \"%s\" not found", kind_name(kind), id);
    }
    if (rc < 0)
        return -1;
    rc = out ? build_resource(c, kind, &row, doc, flags, out, err) : 0;
    free(doc);
    if (rc == 0 && r_out)
        *r_out = row;
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

static const char *bool_text(int v)
{
    return v < 0 ? NULL : v ? "true" : "false";
}

/* A failed write: the userName index is the client's 409 (same detail as SQLite). */
static int write_fail(struct pconn *c, const struct cols *k, struct scim_err *err)
{
    if (state_is(c, "23505") && strstr(c->constraint, "user_name")) {
        char log[SCIM_ERR_DETAIL_MAX];
        snprintf(log, sizeof(log), "%s", err->log);
        scim_err_set(err, 409, SCIM_TYPE_UNIQUENESS, "userName \"%s\" is already in use",
                     k->user_name ? k->user_name : "");
        return scim_err_log(err, "%s", log);
    }
    return -1;
}

static int sync_emails(struct pconn *c, int64_t tenant, int64_t pk, json_t *doc, bool had_rows,
                       struct scim_err *err)
{
    struct params p = {0};
    if (had_rows) {
        p_i64(&p, pk);
        if (run_cmd(c, S_EMAILS_DELETE, &p, NULL, err) < 0)
            return -1;
    }
    json_t *emails = json_object_get(doc, "emails");
    size_t i;
    json_t *e;
    json_array_foreach(emails, i, e) {
        const char *v = json_string_value(json_object_get(e, "value"));
        if (!v)
            continue;
        json_t *prim = json_object_get(e, "primary");
        memset(&p, 0, sizeof(p));
        p_i64(&p, pk);
        p_i64(&p, tenant);
        p_str(&p, v);
        p_str(&p, json_string_value(json_object_get(e, "type")));
        p_str(&p, json_is_boolean(prim) ? (json_is_true(prim) ? "1" : "0") : NULL);
        if (run_cmd(c, S_EMAILS_INSERT, &p, NULL, err) < 0)
            return -1;
    }
    return 0;
}

/* pk and kind of a live resource of either kind: 1 found, 0 absent, -1 error. */
static int lookup_pk(struct pconn *c, int64_t tenant, const char *id, int64_t *pk, int *kind,
                     struct scim_err *err)
{
    struct params p = {0};
    p_i64(&p, tenant);
    p_str(&p, id);
    PGresult *r = run(c, S_RES_PK, &p, err);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found) {
        *pk = col_i64(r, 0, 0);
        if (kind)
            *kind = (int)col_i64(r, 0, 1);
    }
    PQclear(r);
    return found;
}

/* The change feed's view of one group write (as in the SQLite backend): the events collected
 * so far and the memberships a "clear" removed, so that a member cleared and added back by the
 * same write yields no event. */
struct mev {
    json_t *events;  /* array (store/events.h) */
    const char *gid; /* the group's id and displayName */
    const char *gname;
    json_t *cleared; /* object: member id -> kind, or NULL */
    json_t *added;   /* when set, member_added events wait here so that removals come first */
};

/* Adds members one row each (INSERT ... ON CONFLICT, no rewrite of the list): unknown ids and
 * the group itself are skipped and counted. A membership that did not exist before yields
 * group.member_added; a SCIM add of a pair that exists with another origin makes it the IdP's. */
static int add_members(struct pconn *c, int64_t tenant, int64_t group_pk, json_t *members,
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
        struct params p = {0};
        p_i64(&p, group_pk);
        p_i64(&p, mpk);
        p_str(&p, json_string_value(json_object_get(m, "display")));
        p_str(&p, origin);
        PGresult *r = run(c, S_MEMBER_INSERT, &p, err);
        if (!r)
            return -1;
        /* xmax = 0: the row was inserted, not updated on conflict */
        bool inserted = PQntuples(r) > 0 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        if (!inserted)
            continue;
        if (ev->cleared && json_object_get(ev->cleared, v))
            json_object_del(ev->cleared, v); /* cleared and added back: no change */
        else if (scim_events_member(ev->added ? ev->added : ev->events, ev->gid, ev->gname, v, mkind,
                                    true, err) < 0)
            return -1;
    }
    return 0;
}

/* The kind of a resource by id (deprovisioned included): SCIM_RT_* or -1. */
static int kind_of(struct pconn *c, int64_t tenant, const char *id)
{
    struct scim_err ignored;
    int kind = -1;
    PGresult *r = q_exec(c, "SELECT kind FROM resources WHERE tenant_id = $1 AND kind IN (0, 1) AND id = $2",
                         &ignored, "it", tenant, id);
    if (r && PQntuples(r) > 0)
        kind = (int)col_i64(r, 0, 0);
    PQclear(r);
    return kind;
}

static int remove_members(struct pconn *c, int64_t tenant, int64_t group_pk, json_t *ids, bool any_origin,
                          struct mev *ev, struct scim_err *err)
{
    size_t i;
    json_t *m;
    json_array_foreach(ids, i, m) {
        const char *v = json_is_string(m) ? json_string_value(m)
                                          : json_string_value(json_object_get(m, "value"));
        if (!v)
            continue;
        struct params p = {0};
        int64_t changed = 0;
        p_i64(&p, group_pk);
        p_i64(&p, tenant);
        p_str(&p, v);
        p_str(&p, any_origin ? "true" : "false");
        if (run_cmd(c, S_MEMBER_DELETE, &p, &changed, err) < 0)
            return -1;
        if (changed > 0 &&
            scim_events_member(ev->events, ev->gid, ev->gname, v, kind_of(c, tenant, v), false, err) < 0)
            return -1;
    }
    return 0;
}

/* Before a "clear" of a group's SCIM members: remembers them in ev->cleared (id -> kind). */
static int note_cleared(struct pconn *c, int64_t group_pk, struct mev *ev, struct scim_err *err)
{
    if (!(ev->cleared = json_object()))
        return scim_err_nomem(err);
    PGresult *r = q_exec(c, "SELECT x.id, x.kind FROM members mb JOIN resources x ON x.pk = mb.member_pk "
                            "WHERE mb.group_pk = $1 AND mb.origin = 'scim' ORDER BY mb.seq", err, "i", group_pk);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        if (json_object_set_new(ev->cleared, PQgetvalue(r, i, 0), json_integer(col_i64(r, i, 1))) < 0) {
            PQclear(r);
            return scim_err_nomem(err);
        }
    }
    PQclear(r);
    return 0;
}

/* After the adds: the cleared members that did not come back are removals. */
static int flush_cleared(struct mev *ev, struct scim_err *err)
{
    const char *id;
    json_t *k;
    json_object_foreach(ev->cleared, id, k) {
        if (scim_events_member(ev->events, ev->gid, ev->gname, id, (int)json_integer_value(k), false, err) < 0)
            return -1;
    }
    return 0;
}

/* Before a resource leaves groups (delete, deprovision): group.member_removed for each group
 * it is a member of (only origin-"scim" memberships when scim_only). */
static int note_leaving(struct pconn *c, const char *id, int kind, int64_t pk, bool scim_only, json_t *events,
                        struct scim_err *err)
{
    PGresult *r = q_exec(c, scim_only ? "SELECT g.id, g.display_name FROM members m JOIN resources g "
                                        "ON g.pk = m.group_pk WHERE m.member_pk = $1 AND m.origin = 'scim' "
                                        "ORDER BY m.seq"
                                      : "SELECT g.id, g.display_name FROM members m JOIN resources g "
                                        "ON g.pk = m.group_pk WHERE m.member_pk = $1 ORDER BY m.seq",
                         err, "i", pk);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        if (scim_events_member(events, PQgetvalue(r, i, 0), col_text(r, i, 1), id, kind, false, err) < 0) {
            PQclear(r);
            return -1;
        }
    }
    PQclear(r);
    return 0;
}

/* Inserts the collected events in the open write transaction, numbered from the tenant's
 * counter row. The row lock taken by the upsert is held until COMMIT: writers of one tenant
 * that have events serialise here, so seq is gap-free (a rollback takes the bump back) and in
 * commit order (a reader never sees seq N+1 before N). Called last in each write, so the lock
 * is held only for the commit. */
static int feed_insert(struct pconn *c, int64_t tenant, json_t *events, struct scim_err *err)
{
    size_t n = json_array_size(events), i;
    json_t *ev;
    if (n == 0)
        return 0;
    PGresult *r = q_exec(c, "INSERT INTO event_seq(tenant_id, last_seq) VALUES ($1, $2) "
                            "ON CONFLICT (tenant_id) DO UPDATE SET last_seq = event_seq.last_seq + EXCLUDED.last_seq "
                            "RETURNING last_seq", err, "ii", tenant, (int64_t)n);
    if (!r)
        return -1;
    int64_t last = col_i64(r, 0, 0), now = scim_now_ms_us();
    PQclear(r);
    json_array_foreach(events, i, ev) {
        int64_t seq = last - (int64_t)n + 1 + (int64_t)i;
        char *text;
        if (scim_event_finish(ev, tenant, seq, now) < 0 || !(text = json_dumps(ev, JSON_COMPACT)))
            return scim_err_nomem(err);
        struct params p = {0};
        p_i64(&p, tenant);
        p_i64(&p, seq);
        p_i64(&p, now);
        p_str(&p, json_string_value(json_object_get(ev, "type")));
        p_str(&p, text);
        int rc = run_cmd(c, S_EVENT_INSERT, &p, NULL, err);
        free(text);
        if (rc < 0)
            return -1;
    }
    return 0;
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

static int check_unique_email(struct pconn *c, int64_t tenant, int64_t self_pk, json_t *doc, struct scim_err *err)
{
    const char *mail = primary_email(doc);
    if (!mail)
        return 0;
    PGresult *r = q_exec(c, "SELECT 1 FROM emails e JOIN resources r ON r.pk = e.resource_pk "
                            "WHERE e.tenant_id = $1 AND lower(e.value) = lower($2) AND r.kind = 0 "
                            "AND NOT r.deprovisioned AND r.pk <> $3 AND " PRIMARY_OR_ONLY " LIMIT 1",
                         err, "iti", tenant, mail, self_pk);
    if (!r)
        return -1;
    int taken = PQntuples(r) > 0;
    PQclear(r);
    if (taken)
        return scim_err_set(err, 409, SCIM_TYPE_UNIQUENESS,
                            "the e-mail address \"%s\" is already in use by another user", mail);
    return 0;
}

/* A candidate for linking or reviving. */
struct cand {
    int64_t pk;
    char id[SCIM_STORE_ID_MAX + 1];
    char origin[16];
    bool deprovisioned;
    char *doc_text;
};

/* Runs `sql` ($1 tenant, $2 value; columns pk, id, origin, deprovisioned, doc) and locks the
 * row it finds: 1 found (fields set, *doc_text malloc'ed), 0, -1. */
static int find_cand(struct pconn *c, const char *sql, int64_t tenant, const char *value, struct cand *k,
                     struct scim_err *err)
{
    PGresult *r = q_exec(c, sql, err, "it", tenant, value);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    k->pk = col_i64(r, 0, 0);
    snprintf(k->id, sizeof k->id, "%s", PQgetvalue(r, 0, 1));
    snprintf(k->origin, sizeof k->origin, "%s", PQgetvalue(r, 0, 2));
    k->deprovisioned = strcmp(PQgetvalue(r, 0, 3), "t") == 0;
    free(k->doc_text);
    k->doc_text = scim_strdup(PQgetvalue(r, 0, 4));
    PQclear(r);
    return k->doc_text ? 1 : scim_err_nomem(err);
}

/* Which existing row a SCIM create takes over (link or revive), if any: 1 (and *revive), 0, -1.
 * The candidate row is locked (FOR UPDATE) so that two nodes cannot take over the same row. */
static int takeover_target(struct pconn *c, int64_t tenant, enum scim_rtype kind, json_t *doc,
                           const struct scim_tenant_settings *set, struct cand *k, bool *revive,
                           struct scim_err *err)
{
    int rc = 0;
    *revive = false;
    if (kind == SCIM_RT_USER) {
        const char *un = json_string_value(json_object_get(doc, "userName"));
        const char *mail;
        if (un) {
            rc = find_cand(c, "SELECT pk, id, origin, deprovisioned, doc::text FROM resources "
                              "WHERE tenant_id = $1 AND kind = 0 AND lower(user_name) = lower($2) FOR UPDATE",
                           tenant, un, k, err);
            if (rc > 0) {
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
        }
        if (rc < 0 || !set || !set->link_existing_users || !(mail = primary_email(doc)))
            return rc < 0 ? -1 : 0;
        return find_cand(c, "SELECT r.pk, r.id, r.origin, r.deprovisioned, r.doc::text FROM emails e "
                            "JOIN resources r ON r.pk = e.resource_pk WHERE e.tenant_id = $1 AND "
                            "lower(e.value) = lower($2) AND r.kind = 0 AND r.origin = 'local' "
                            "AND NOT r.deprovisioned AND " PRIMARY_OR_ONLY " ORDER BY r.pk LIMIT 1 FOR UPDATE OF r",
                         tenant, mail, k, err);
    }
    const char *dn = json_string_value(json_object_get(doc, "displayName"));
    if (!set || !set->link_existing_groups || !dn)
        return 0;
    return find_cand(c, "SELECT pk, id, origin, deprovisioned, doc::text FROM resources WHERE tenant_id = $1 "
                        "AND kind = 1 AND lower(display_name) = lower($2) AND origin = 'local' "
                        "AND NOT deprovisioned ORDER BY pk LIMIT 1 FOR UPDATE",
                     tenant, dn, k, err);
}

static int join_default_groups(struct pconn *c, int64_t tenant, int64_t user_pk, const char *uid, json_t *groups,
                               json_t *events, struct scim_err *err)
{
    size_t i;
    json_t *g;
    int64_t now = scim_now_ms_us();
    json_array_foreach(groups, i, g) {
        const char *gid = json_string_value(g);
        if (!gid)
            continue;
        int64_t n = q_cmd(c, "INSERT INTO members(group_pk, member_pk, origin) SELECT pk, $1, 'default' "
                             "FROM resources WHERE tenant_id = $2 AND kind = 1 AND id = $3 "
                             "ON CONFLICT (group_pk, member_pk) DO NOTHING", err, "iit", user_pk, tenant, gid);
        if (n < 0)
            return -1;
        if (n == 0)
            continue;
        PGresult *r = q_exec(c, "UPDATE resources SET version = version + 1, last_modified = $1 "
                                "WHERE tenant_id = $2 AND kind = 1 AND id = $3 RETURNING display_name",
                             err, "iit", now, tenant, gid);
        if (!r)
            return -1;
        int rc = scim_events_member(events, gid, PQntuples(r) > 0 ? col_text(r, 0, 0) : NULL, uid,
                                    SCIM_RT_USER, true, err);
        PQclear(r);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- create ------------------------------------------------------------------------- */

struct create_args {
    int64_t tenant;
    enum scim_rtype kind;
    json_t *doc, *members;
    const char *password_hash;
    struct scim_store_wopts *w;
    unsigned flags;
    json_t *out;
    int skipped;
    bool linked, revived;
    size_t n_events;
};

static int tx_create(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct create_args *a = arg;
    struct scim_store_wopts *w = a->w;
    const struct scim_tenant_settings *set = w ? w->settings : NULL;
    const char *origin = w && w->origin ? w->origin : "scim";
    bool scim = strcmp(origin, "scim") == 0;
    enum scim_rtype kind = a->kind;
    char *doc_text = NULL;
    json_t *merged = NULL, *old = NULL, *out = NULL, *evs = json_array();
    char id[SCIM_STORE_ID_MAX + 1];
    struct cols k;
    struct cand cand = {0};
    bool revive = false;
    int skipped = 0, rc = -1, found = 0;
    int64_t pk;
    PGresult *r = NULL;
    if (!evs) {
        scim_err_nomem(err);
        goto out;
    }
    if (scim && (found = takeover_target(c, a->tenant, kind, a->doc, set, &cand, &revive, err)) < 0)
        goto out;
    int64_t now = scim_now_ms_us();
    if (found) {
        /* linking keeps the local attributes under the POSTed ones; reviving replaces them */
        json_error_t je;
        if (revive) {
            merged = json_incref(a->doc);
        } else if (!(merged = json_loads(cand.doc_text, 0, &je)) || json_object_update(merged, a->doc) < 0) {
            scim_err_internal(err, "postgresql: cannot merge the linked resource");
            goto out;
        }
        extract_cols(kind, merged, &k);
        if (!(doc_text = json_dumps(merged, JSON_COMPACT))) {
            scim_err_nomem(err);
            goto out;
        }
        struct params p = {0};
        p_str(&p, k.user_name);
        p_str(&p, k.external_id);
        p_str(&p, k.display_name);
        p_str(&p, bool_text(k.active));
        p_str(&p, doc_text);
        p_str(&p, a->password_hash);
        p_str(&p, w ? w->managed_by : NULL);
        p_i64(&p, now);
        p_i64(&p, cand.pk);
        if (run_cmd(c, S_RES_TAKEOVER, &p, NULL, err) < 0) {
            write_fail(c, &k, err);
            goto out;
        }
        pk = cand.pk;
        snprintf(id, sizeof id, "%s", cand.id);
        if (kind == SCIM_RT_USER && sync_emails(c, a->tenant, pk, merged, true, err) < 0)
            goto out;
        if (!revive && !(old = json_loads(cand.doc_text, 0, &je))) {
            scim_err_internal(err, "postgresql: cannot read the linked resource");
            goto out;
        }
        if (scim_events_resource(evs, kind, id, old, merged, revive ? SCIM_EV_REVIVED : SCIM_EV_LINKED, err) < 0)
            goto out;
    } else {
        extract_cols(kind, a->doc, &k);
        if (!(doc_text = json_dumps(a->doc, JSON_COMPACT))) {
            scim_err_nomem(err);
            goto out;
        }
        if (scim_uuid4(id) < 0) {
            scim_err_internal(err, "postgresql: no randomness for a new id");
            goto out;
        }
        struct params p = {0};
        p_i64(&p, a->tenant);
        p_i64(&p, (int64_t)kind);
        p_str(&p, id);
        p_str(&p, k.user_name);
        p_str(&p, k.external_id);
        p_str(&p, k.display_name);
        p_str(&p, bool_text(k.active));
        p_i64(&p, now);
        p_i64(&p, now);
        p_str(&p, a->password_hash);
        p_str(&p, doc_text);
        p_str(&p, scim ? "scim" : origin);
        p_str(&p, scim && w ? w->managed_by : NULL);
        if (!(r = run(c, S_RES_INSERT, &p, err))) {
            write_fail(c, &k, err);
            goto out;
        }
        pk = col_i64(r, 0, 0);
        PQclear(r);
        r = NULL;
        if (kind == SCIM_RT_USER && sync_emails(c, a->tenant, pk, a->doc, false, err) < 0)
            goto out;
        if (scim_events_resource(evs, kind, id, NULL, a->doc, 0, err) < 0)
            goto out;
    }
    if (kind == SCIM_RT_USER && set && set->unique_emails &&
        check_unique_email(c, a->tenant, pk, found ? merged : a->doc, err) < 0)
        goto out;
    struct mev mev = {.events = evs, .gid = id, .gname = k.display_name};
    if (kind == SCIM_RT_GROUP && a->members &&
        add_members(c, a->tenant, pk, a->members, scim ? "scim" : "local", &skipped, &mev, err) < 0)
        goto out;
    if (kind == SCIM_RT_USER && scim && set &&
        join_default_groups(c, a->tenant, pk, id, set->default_groups, evs, err) < 0)
        goto out;
    if (!(a->flags & SCIM_STORE_NO_OUTPUT) &&
        get_resource(c, a->tenant, kind, id, a->flags, false, &out, NULL, err) < 0)
        goto out;
    if (feed_insert(c, a->tenant, evs, err) < 0)
        goto out;
    json_decref(a->out); /* an earlier attempt's output */
    a->out = out;
    out = NULL;
    a->skipped = skipped;
    a->linked = found && !revive;
    a->revived = found && revive;
    a->n_events = json_array_size(evs);
    rc = 0;
out:
    json_decref(out);
    free(doc_text);
    free(cand.doc_text);
    json_decref(merged);
    json_decref(old);
    json_decref(evs);
    return rc;
}

static int pg_create_ex(struct scim_store *st, int64_t tenant, enum scim_rtype kind, json_t *doc,
                        json_t *members, const char *password_hash, struct scim_store_wopts *w,
                        unsigned flags, json_t **out, int *skipped_members, struct scim_err *err)
{
    struct create_args a = {.tenant = tenant, .kind = kind, .doc = doc, .members = members,
                            .password_hash = password_hash, .w = w, .flags = flags};
    if (run_tx(ps(st), TX_WRITE, tx_create, &a, err) < 0) {
        json_decref(a.out);
        return -1;
    }
    if (out)
        *out = a.out;
    else
        json_decref(a.out);
    if (skipped_members)
        *skipped_members = a.skipped;
    if (w) {
        w->linked = a.linked;
        w->revived = a.revived;
    }
    if (a.n_events > 0)
        scim_store_events_notify(st);
    return 0;
}

static int pg_create(struct scim_store *st, int64_t tenant, enum scim_rtype kind, json_t *doc,
                     json_t *members, const char *password_hash, unsigned flags, json_t **out,
                     int *skipped_members, struct scim_err *err)
{
    return pg_create_ex(st, tenant, kind, doc, members, password_hash, NULL, flags, out, skipped_members,
                        err);
}

/* ---- get ---------------------------------------------------------------------------- */

struct get_args {
    int64_t tenant;
    enum scim_rtype kind;
    const char *id;
    unsigned flags;
    json_t *out;
};

static int tx_get(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct get_args *a = arg;
    json_t *out = NULL;
    if (get_resource(c, a->tenant, a->kind, a->id, a->flags, false, &out, NULL, err) < 0)
        return -1;
    a->out = out;
    return 0;
}

static int pg_get(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                  unsigned flags, json_t **out, struct scim_err *err)
{
    struct get_args a = {.tenant = tenant, .kind = kind, .id = id, .flags = flags};
    /* one snapshot: the row and its members/groups agree */
    bool multi = flags & (SCIM_STORE_MEMBERS | SCIM_STORE_GROUPS);
    if (run_tx(ps(st), multi ? TX_READ : TX_NONE, tx_get, &a, err) < 0)
        return -1;
    *out = a.out;
    return 0;
}

/* ---- update ------------------------------------------------------------------------- */

struct update_args {
    int64_t tenant;
    enum scim_rtype kind;
    const char *id;
    unsigned flags;
    scim_store_update_fn fn;
    void *ctx;
    const struct scim_store_wopts *w;
    json_t *out;
    size_t n_events;
};

static bool nonempty(json_t *a)
{
    return json_is_array(a) && json_array_size(a) > 0;
}

/* Writes the row of an update (doc and indexed columns, or only the version). */
static int write_update(struct pconn *c, enum scim_rtype kind, const struct scim_store_row *r,
                        const struct scim_store_change *chg, struct scim_err *err)
{
    int64_t now = scim_now_ms_us();
    struct cols k;
    struct params p = {0};
    char *doc_text = NULL;
    int64_t changed = 0;
    int rc = -1;
    memset(&k, 0, sizeof(k));
    k.active = -1;
    if (chg->doc) {
        if (!json_is_object(chg->doc))
            return scim_err_internal(err, "store: update doc is not an object");
        extract_cols(kind, chg->doc, &k);
        if (!(doc_text = json_dumps(chg->doc, JSON_COMPACT)))
            return scim_err_nomem(err);
        p_str(&p, k.user_name);
        p_str(&p, k.external_id);
        p_str(&p, k.display_name);
        p_str(&p, bool_text(k.active));
        p_str(&p, doc_text);
        p_str(&p, chg->password_hash);
        p_i64(&p, now);
        p_i64(&p, r->pk);
        p_i64(&p, r->version);
        if (run_cmd(c, S_RES_UPDATE_DOC, &p, &changed, err) < 0) {
            write_fail(c, &k, err);
            goto out;
        }
    } else {
        p_str(&p, chg->password_hash);
        p_i64(&p, now);
        p_i64(&p, r->pk);
        p_i64(&p, r->version);
        if (run_cmd(c, S_RES_BUMP, &p, &changed, err) < 0)
            goto out;
    }
    /* the row is locked since the read (FOR UPDATE), so this holds unless that breaks */
    if (changed != 1) {
        scim_err_set(err, 412, NULL, "version mismatch: the resource changed concurrently");
        goto out;
    }
    rc = 0;
out:
    free(doc_text);
    return rc;
}

static int tx_update(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct update_args *a = arg;
    enum scim_rtype kind = a->kind;
    bool admin = (a->flags & SCIM_STORE_ADMIN) != 0;
    bool unique = a->w && a->w->settings && a->w->settings->unique_emails;
    struct scim_store_change chg = {0};
    json_t *current = NULL, *old = NULL, *out = NULL, *evs = json_array();
    struct scim_store_row r;
    struct mev mev = {.events = evs, .gid = a->id, .added = json_array()};
    int rc = -1;
    if (!evs || !mev.added) {
        scim_err_nomem(err);
        goto out;
    }
    unsigned load = a->flags & (SCIM_STORE_LOAD_MEMBERS | SCIM_STORE_GROUPS | SCIM_STORE_ADMIN);
    if (get_resource(c, a->tenant, kind, a->id, load, true, &current, &r, err) < 0)
        goto out;
    /* the callback may change `current` in place: keep what the feed compares against */
    if (!(old = doc_snapshot(current))) {
        scim_err_nomem(err);
        goto out;
    }
    if (a->fn(a->ctx, current, &chg, err) < 0)
        goto out;
    mev.gname = json_string_value(json_object_get(chg.doc ? chg.doc : old, "displayName"));
    bool members_changed = kind == SCIM_RT_GROUP &&
                           (chg.members_clear || nonempty(chg.members_add) || nonempty(chg.members_remove));
    if (chg.modified || members_changed) {
        if (write_update(c, kind, &r, &chg, err) < 0)
            goto out;
        if (chg.doc && kind == SCIM_RT_USER && sync_emails(c, a->tenant, r.pk, chg.doc, true, err) < 0)
            goto out;
        if (chg.doc && kind == SCIM_RT_USER && unique && check_unique_email(c, a->tenant, r.pk, chg.doc, err) < 0)
            goto out;
        if ((chg.doc || chg.password_hash) &&
            scim_events_resource(evs, kind, a->id, old, chg.doc ? chg.doc : old,
                                 chg.password_hash ? SCIM_EV_PASSWORD : 0, err) < 0)
            goto out;
        if (kind == SCIM_RT_GROUP) {
            if (chg.members_clear) {
                struct params p = {0};
                p_i64(&p, r.pk);
                if (note_cleared(c, r.pk, &mev, err) < 0 || run_cmd(c, S_MEMBERS_CLEAR, &p, NULL, err) < 0)
                    goto out;
            }
            if (chg.members_remove && remove_members(c, a->tenant, r.pk, chg.members_remove, admin, &mev, err) < 0)
                goto out;
            chg.skipped_members = 0;
            if (chg.members_add && add_members(c, a->tenant, r.pk, chg.members_add, admin ? "local" : "scim",
                                               &chg.skipped_members, &mev, err) < 0)
                goto out;
            if (flush_cleared(&mev, err) < 0)
                goto out;
            if (json_array_extend(evs, mev.added) < 0) {
                scim_err_nomem(err);
                goto out;
            }
        }
    }
    if (!(a->flags & SCIM_STORE_NO_OUTPUT) &&
        get_resource(c, a->tenant, kind, a->id, a->flags & ~SCIM_STORE_LOAD_MEMBERS, false, &out, NULL, err) < 0)
        goto out;
    if (feed_insert(c, a->tenant, evs, err) < 0)
        goto out;
    json_decref(a->out);
    a->out = out;
    out = NULL;
    a->n_events = json_array_size(evs);
    rc = 0;
out:
    json_decref(chg.doc);
    json_decref(current);
    json_decref(old);
    json_decref(out);
    json_decref(evs);
    json_decref(mev.cleared);
    json_decref(mev.added);
    return rc;
}

static int pg_update_ex(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                        unsigned flags, scim_store_update_fn fn, void *ctx, const struct scim_store_wopts *w,
                        json_t **out, struct scim_err *err)
{
    struct update_args a = {.tenant = tenant, .kind = kind, .id = id, .flags = flags, .fn = fn, .ctx = ctx,
                            .w = w};
    if (run_tx(ps(st), TX_WRITE, tx_update, &a, err) < 0) {
        json_decref(a.out);
        return -1;
    }
    if (out)
        *out = a.out;
    else
        json_decref(a.out);
    if (a.n_events > 0)
        scim_store_events_notify(st);
    return 0;
}

static int pg_update(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                     unsigned flags, scim_store_update_fn fn, void *ctx, json_t **out,
                     struct scim_err *err)
{
    return pg_update_ex(st, tenant, kind, id, flags, fn, ctx, NULL, out, err);
}

/* ---- delete ------------------------------------------------------------------------- */

struct delete_args {
    int64_t tenant;
    enum scim_rtype kind;
    const char *id;
    int64_t expected_version;
    unsigned flags;
    const struct scim_store_wopts *w;
};

/* delete_mode "deactivate": the user stays, inactive and invisible to the IdP. */
static int deprovision(struct pconn *c, const struct scim_store_row *r, json_t *old, struct scim_err *err)
{
    json_t *doc = json_deep_copy(old);
    char *text = NULL;
    int64_t now = scim_now_ms_us();
    int rc = -1;
    if (!doc || json_object_set_new(doc, "active", json_false()) < 0 || !(text = json_dumps(doc, JSON_COMPACT))) {
        scim_err_internal(err, "postgresql: cannot deactivate %s", r->id);
        goto out;
    }
    if (q_cmd(c, "UPDATE resources SET version = version + 1, last_modified = $1 WHERE pk IN "
                 "(SELECT group_pk FROM members WHERE member_pk = $2)", err, "ii", now, r->pk) < 0 ||
        q_cmd(c, "DELETE FROM members WHERE member_pk = $1 AND origin = 'scim'", err, "i", r->pk) < 0 ||
        q_cmd(c, "UPDATE resources SET deprovisioned = true, active = false, doc = $1, version = version + 1, "
                 "last_modified = $2 WHERE pk = $3", err, "tii", text, now, r->pk) < 0)
        goto out;
    rc = 0;
out:
    json_decref(doc);
    free(text);
    return rc;
}

static int tx_delete(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct delete_args *a = arg;
    bool admin = (a->flags & SCIM_STORE_ADMIN) != 0;
    struct scim_store_row r;
    char *doc = NULL;
    json_t *evs = json_array(), *old = NULL;
    json_error_t je;
    int rc = -1;
    if (!evs) {
        scim_err_nomem(err);
        goto out;
    }
    int found = read_row(c, a->tenant, a->kind, a->id, true, &r, &doc, err);
    if (found < 0)
        goto out;
    if (found == 0 || (r.deprovisioned && !admin)) {
        scim_err_set(err, 404, NULL, "%s \"%s\" not found", kind_name(a->kind), a->id);
        goto out;
    }
    if (a->expected_version >= 0 && a->expected_version != r.version) {
        scim_err_set(err, 412, NULL, "version mismatch");
        goto out;
    }
    if (!(old = json_loads(doc, 0, &je))) {
        scim_err_internal(err, "postgresql: stored doc of %s is not JSON", a->id);
        goto out;
    }
    bool deact = !admin && a->kind == SCIM_RT_USER && a->w && a->w->settings &&
                 a->w->settings->delete_mode == SCIM_DELETE_DEACTIVATE;
    /* the memberships it loses first, then the resource itself */
    if (note_leaving(c, a->id, (int)a->kind, r.pk, deact, evs, err) < 0 ||
        scim_events_resource(evs, a->kind, a->id, old, NULL, deact ? SCIM_EV_DEPROVISIONED : 0, err) < 0)
        goto out;
    if (deact) {
        if (deprovision(c, &r, old, err) < 0)
            goto out;
    } else {
        /* the groups that lose this member change too */
        struct params p = {0};
        p_i64(&p, scim_now_ms_us());
        p_i64(&p, r.pk);
        if (run_cmd(c, S_BUMP_GROUPS_OF, &p, NULL, err) < 0)
            goto out;
        memset(&p, 0, sizeof(p));
        p_i64(&p, r.pk); /* emails and memberships go by ON DELETE CASCADE */
        if (run_cmd(c, S_RES_DELETE, &p, NULL, err) < 0)
            goto out;
    }
    if (feed_insert(c, a->tenant, evs, err) < 0)
        goto out;
    rc = 0;
out:
    free(doc);
    json_decref(old);
    json_decref(evs);
    return rc;
}

static int pg_delete_ex(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                        int64_t expected_version, unsigned flags, const struct scim_store_wopts *w,
                        struct scim_err *err)
{
    struct delete_args a = {.tenant = tenant, .kind = kind, .id = id, .expected_version = expected_version,
                            .flags = flags, .w = w};
    if (run_tx(ps(st), TX_WRITE, tx_delete, &a, err) < 0)
        return -1;
    scim_store_events_notify(st); /* a delete always has an event */
    return 0;
}

static int pg_delete(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                     int64_t expected_version, struct scim_err *err)
{
    return pg_delete_ex(st, tenant, kind, id, expected_version, 0, NULL, err);
}

/* ---- list ---------------------------------------------------------------------------- */

/* The WHERE clause ($1 = tenant, filter values from $2) and ORDER BY of a list query. */
static int list_sql(struct scim_store *st, int64_t tenant, enum scim_rtype kind,
                    const struct scim_store_query *q, struct scim_sql_frag *where,
                    struct scim_buf *order, struct scim_err *err)
{
    static const char *const state_sql[] = {
        "", " AND NOT r.deprovisioned AND coalesce(r.active, true)",
        " AND NOT r.deprovisioned AND r.active = false", " AND r.deprovisioned"};
    const char *state = " AND NOT r.deprovisioned"; /* the SCIM view */
    if ((q->flags & SCIM_STORE_ADMIN) && q->state >= 0 && q->state <= SCIM_STORE_STATE_DEPROVISIONED)
        state = state_sql[q->state];
    /* kind as a literal: the partial userName index (WHERE kind = 0) then applies */
    if (scim_buf_printf(&where->sql, "r.tenant_id = $1 AND r.kind = %d%s", (int)kind, state) < 0)
        return scim_err_nomem(err);
    if (!q->filter && !q->sort_by)
        return scim_buf_adds(order, "r.pk") < 0 ? scim_err_nomem(err) : 0;
    if (!st->reg)
        return scim_err_internal(err, "store: no schema registry to compile the filter");
    const struct scim_resource_type *rt = scim_registry_rt(st->reg, kind);
    if (q->filter) {
        if (scim_buf_adds(&where->sql, " AND (") < 0)
            return scim_err_nomem(err);
        if (scim_sqlgen_where(&scim_sql_dialect_pg, rt, q->filter, tenant, 2, where, err) < 0)
            return -1;
        if (scim_buf_adds(&where->sql, ")") < 0)
            return scim_err_set(err, 400, SCIM_TYPE_INVALID_FILTER, "filter is too complex");
    }
    return scim_sqlgen_order(&scim_sql_dialect_pg, rt, q->sort_by, q->descending, order, err);
}

/* Text values of the tenant, the filter's parameters and `extra` trailing integers. */
struct dyn_params {
    int n;
    const char **v;
    char (*num)[32];
};

static int dyn_params_make(struct dyn_params *d, int64_t tenant, const struct scim_sql_frag *f,
                           const int64_t *extra, int n_extra)
{
    int n = 1 + (int)f->n_params + n_extra;
    d->n = n;
    d->v = calloc((size_t)n, sizeof(*d->v));
    d->num = calloc((size_t)n, sizeof(*d->num));
    if (!d->v || !d->num)
        return -1;
    snprintf(d->num[0], sizeof(d->num[0]), "%lld", (long long)tenant);
    d->v[0] = d->num[0];
    for (size_t i = 0; i < f->n_params; i++) {
        const struct scim_sql_param *p = &f->params[i];
        int j = 1 + (int)i;
        if (p->type == SCIM_SQL_P_INT)
            snprintf(d->num[j], sizeof(d->num[0]), "%lld", (long long)p->i);
        else if (p->type == SCIM_SQL_P_REAL)
            snprintf(d->num[j], sizeof(d->num[0]), "%.17g", p->d);
        d->v[j] = p->type == SCIM_SQL_P_TEXT ? p->s : d->num[j];
    }
    for (int i = 0; i < n_extra; i++) {
        int j = 1 + (int)f->n_params + i;
        snprintf(d->num[j], sizeof(d->num[0]), "%lld", (long long)extra[i]);
        d->v[j] = d->num[j];
    }
    return 0;
}

static void dyn_params_free(struct dyn_params *d)
{
    free(d->v);
    free(d->num);
}

/* A statement built at run time (filters): parameters bound, planned per execution. */
static PGresult *run_dyn(struct pconn *c, const char *sql, const struct dyn_params *d, struct scim_err *err)
{
    PGresult *r = PQexecParams(c->pg, sql, d->n, NULL, d->v, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    pg_fail(c, r, err, "list");
    scim_err_log(err, "postgresql list %.300s: %s", sql, c->pg ? PQerrorMessage(c->pg) : "");
    PQclear(r);
    return NULL;
}

struct list_args {
    int64_t tenant;
    enum scim_rtype kind;
    const struct scim_store_query *q;
    const char *where, *order;
    const struct scim_sql_frag *frag;
    int64_t total, first_pk, last_pk;
    bool more;
    json_t *out;
};

/* count(*) of the matches of a list query. */
static int count_rows(struct pconn *c, const struct list_args *a, int64_t *total, struct scim_err *err)
{
    struct dyn_params d = {0};
    struct scim_buf sql;
    PGresult *r = NULL;
    int rc = -1;
    scim_buf_init(&sql, 0);
    if (dyn_params_make(&d, a->tenant, a->frag, NULL, 0) < 0 ||
        scim_buf_printf(&sql, "SELECT count(*) FROM resources r WHERE %s", a->where) < 0) {
        scim_err_nomem(err);
        goto out;
    }
    if (!(r = run_dyn(c, scim_buf_str(&sql), &d, err)))
        goto out;
    *total = col_i64(r, 0, 0);
    rc = 0;
out:
    PQclear(r);
    dyn_params_free(&d);
    scim_buf_release(&sql);
    return rc;
}

static int tx_list(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct list_args *a = arg;
    struct dyn_params d = {0};
    struct scim_buf sql;
    PGresult *r = NULL;
    json_t *arr = json_array();
    int rc = -1;
    scim_buf_init(&sql, 0);
    int64_t extra[2] = {a->q->count, a->q->start_index - 1};
    const struct scim_store_query *q = a->q;
    bool back = q->cursor_mode && q->before_pk > 0;
    int64_t first_pk = 0, last_pk = 0, total = 0;
    bool more = false;
    /* A filtered page that is not full tells the total itself (see after the page): a lookup
     * by userName is then one query, not two. */
    bool deferred_count = q->filter && q->count > 0 &&
                          (!q->cursor_mode || (q->after_pk == 0 && q->before_pk == 0));
    if (!arr) {
        scim_err_nomem(err);
        goto out;
    }
    if (!deferred_count && count_rows(c, a, &total, err) < 0)
        goto out;
    if (q->count > 0 && (deferred_count || q->cursor_mode || total >= q->start_index)) {
        int n = 2 + (int)a->frag->n_params;
        dyn_params_free(&d);
        scim_buf_reset(&sql);
        int rc2;
        if (q->cursor_mode) {
            /* keyset paging on the primary key; one row more than asked tells whether there
             * is a next page */
            int64_t cx[2] = {back ? q->before_pk : q->after_pk, q->count + 1};
            rc2 = dyn_params_make(&d, a->tenant, a->frag, cx, 2) < 0 ||
                  scim_buf_printf(&sql, "SELECT r." RES_COLS " FROM resources r WHERE %s AND r.pk %s $%d "
                                        "ORDER BY r.pk %s LIMIT $%d",
                                  a->where, back ? "<" : ">", n, back ? "DESC" : "ASC", n + 1) < 0;
        } else {
            rc2 = dyn_params_make(&d, a->tenant, a->frag, extra, 2) < 0 ||
                  scim_buf_printf(&sql, "SELECT r." RES_COLS " FROM resources r WHERE %s ORDER BY %s "
                                        "LIMIT $%d OFFSET $%d",
                                  a->where, a->order, n, n + 1) < 0;
        }
        if (rc2) {
            scim_err_nomem(err);
            goto out;
        }
        if (!(r = run_dyn(c, scim_buf_str(&sql), &d, err)))
            goto out;
        int rows = PQntuples(r);
        if (q->cursor_mode && rows > q->count) {
            more = true;
            rows = (int)q->count;
        }
        for (int k = 0; k < rows; k++) {
            /* a backward page was read descending; it is returned ascending */
            int i = back ? rows - 1 - k : k;
            struct scim_store_row row;
            json_t *res = NULL;
            row_from(r, i, &row);
            if (!first_pk)
                first_pk = row.pk;
            last_pk = row.pk;
            if (build_resource(c, a->kind, &row, PQgetvalue(r, i, 5), q->flags, &res, err) < 0)
                goto out;
            if (json_array_append_new(arr, res) < 0) {
                scim_err_nomem(err);
                goto out;
            }
        }
    }
    if (deferred_count) {
        int64_t rows = (int64_t)json_array_size(arr);
        int64_t skipped = q->cursor_mode ? 0 : q->start_index - 1;
        if (!more && rows < q->count && (rows > 0 || skipped == 0))
            total = skipped + rows;
        else if (count_rows(c, a, &total, err) < 0)
            goto out;
    }
    a->total = total;
    a->first_pk = first_pk;
    a->last_pk = last_pk;
    a->more = more;
    json_decref(a->out);
    a->out = arr;
    arr = NULL;
    rc = 0;
out:
    PQclear(r);
    json_decref(arr);
    dyn_params_free(&d);
    scim_buf_release(&sql);
    return rc;
}

static int pg_list(struct scim_store *st, int64_t tenant, enum scim_rtype kind,
                   const struct scim_store_query *qr, struct scim_store_page *out, struct scim_err *err)
{
    struct scim_sql_frag where;
    struct scim_buf order;
    int rc = -1;
    scim_sql_frag_init(&where);
    scim_buf_init(&order, 0);
    struct list_args a = {.tenant = tenant, .kind = kind, .q = qr, .frag = &where};
    if (list_sql(st, tenant, kind, qr, &where, &order, err) < 0)
        goto out;
    a.where = scim_buf_str(&where.sql);
    a.order = scim_buf_str(&order);
    /* count and page from one snapshot */
    if (run_tx(ps(st), TX_READ, tx_list, &a, err) < 0)
        goto out;
    out->total = a.total;
    out->first_pk = a.first_pk;
    out->last_pk = a.last_pk;
    out->more = a.more;
    out->resources = a.out;
    a.out = NULL;
    rc = 0;
out:
    json_decref(a.out);
    scim_sql_frag_release(&where);
    scim_buf_release(&order);
    return rc;
}

struct explain_args {
    const char *sql;
    const struct dyn_params *d;
    char *plan;
};

static int tx_explain(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct explain_args *a = arg;
    PGresult *r = run_dyn(c, a->sql, a->d, err);
    if (!r)
        return -1;
    struct scim_buf b;
    scim_buf_init(&b, 0);
    for (int i = 0; i < PQntuples(r); i++)
        scim_buf_printf(&b, "%s\n", PQgetvalue(r, i, 0));
    PQclear(r);
    free(a->plan);
    a->plan = scim_buf_take(&b);
    return a->plan ? 0 : scim_err_nomem(err);
}

int scim_pg_explain(struct scim_store *st, int64_t tenant, enum scim_rtype kind,
                    const struct scim_store_query *qr, char **plan, struct scim_err *err)
{
    struct scim_sql_frag where;
    struct scim_buf order, sql;
    struct dyn_params d = {0};
    int rc = -1;
    *plan = NULL;
    scim_sql_frag_init(&where);
    scim_buf_init(&order, 0);
    scim_buf_init(&sql, 0);
    struct explain_args a = {0};
    if (list_sql(st, tenant, kind, qr, &where, &order, err) < 0)
        goto out;
    int n = 2 + (int)where.n_params;
    int64_t extra[2] = {qr->count, qr->start_index - 1};
    if (dyn_params_make(&d, tenant, &where, extra, 2) < 0 ||
        scim_buf_printf(&sql, "EXPLAIN SELECT r.pk FROM resources r WHERE %s ORDER BY %s LIMIT $%d OFFSET $%d",
                        scim_buf_str(&where.sql), scim_buf_str(&order), n, n + 1) < 0) {
        scim_err_nomem(err);
        goto out;
    }
    a.sql = scim_buf_str(&sql);
    a.d = &d;
    if (run_tx(ps(st), TX_NONE, tx_explain, &a, err) < 0)
        goto out;
    *plan = a.plan;
    a.plan = NULL;
    rc = 0;
out:
    free(a.plan);
    dyn_params_free(&d);
    scim_sql_frag_release(&where);
    scim_buf_release(&order);
    scim_buf_release(&sql);
    return rc;
}

static int tx_exec(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    return simple(c, arg, err);
}

int scim_pg_exec(struct scim_store *st, const char *sql, struct scim_err *err)
{
    return run_tx(ps(st), TX_NONE, tx_exec, (void *)sql, err);
}

/* ---- tenants and tokens ------------------------------------------------------------- */

static int tx_tenant_default(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct params p = {0};
    p_i64(&p, scim_now_us());
    if (run_cmd(c, S_TENANT_INSERT, &p, NULL, err) < 0)
        return -1;
    PGresult *r = run(c, S_TENANT_GET, NULL, err);
    if (!r)
        return -1;
    int rc = 0;
    if (PQntuples(r) == 1)
        *(int64_t *)arg = col_i64(r, 0, 0);
    else
        rc = scim_err_internal(err, "postgresql: the default tenant is missing");
    PQclear(r);
    return rc;
}

static int pg_tenant_default(struct scim_store *st, int64_t *tenant_id, struct scim_err *err)
{
    return run_tx(ps(st), TX_WRITE, tx_tenant_default, tenant_id, err);
}

struct token_args {
    int64_t tenant, id, now, expires;
    const char *name, *scopes;
    const unsigned char *hash;
    struct scim_token *tok;
    json_t *list;
    int64_t count;
};

/* bytea in text format: \x followed by hex digits */
static void hash_param(const unsigned char hash[32], char out[67])
{
    out[0] = '\\';
    out[1] = 'x';
    scim_hex(hash, 32, out + 2);
    out[66] = '\0';
}

static int tx_token_create(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct token_args *a = arg;
    char hex[67];
    hash_param(a->hash, hex);
    struct params p = {0};
    p_i64(&p, a->tenant);
    p_str(&p, a->name);
    p_str(&p, hex);
    p_str(&p, a->scopes);
    p_i64(&p, scim_now_us());
    if (a->expires > 0)
        p_i64(&p, a->expires);
    else
        p_str(&p, NULL);
    if (run_cmd(c, S_TOKEN_INSERT, &p, NULL, err) == 0)
        return 0;
    if (state_is(c, "23505")) {
        char log[SCIM_ERR_DETAIL_MAX];
        snprintf(log, sizeof(log), "%s", err->log);
        scim_err_set(err, 409, SCIM_TYPE_UNIQUENESS, "a token named \"%s\" already exists", a->name);
        scim_err_log(err, "%s", log);
    }
    return -1;
}

static int pg_token_create(struct scim_store *st, int64_t tenant, const char *name,
                           const unsigned char hash[32], const char *scopes, int64_t expires_us,
                           struct scim_err *err)
{
    struct token_args a = {.tenant = tenant, .name = name, .hash = hash, .scopes = scopes,
                           .expires = expires_us};
    return run_tx(ps(st), TX_NONE, tx_token_create, &a, err);
}

static int tx_token_find(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct token_args *a = arg;
    char hex[67];
    hash_param(a->hash, hex);
    struct params p = {0};
    p_str(&p, hex);
    p_i64(&p, a->now);
    PGresult *r = run(c, S_TOKEN_FIND, &p, err);
    if (!r)
        return -1;
    int rc = 0;
    if (PQntuples(r) == 0) {
        rc = scim_err_set(err, 401, NULL, "invalid or expired token");
    } else {
        struct scim_token *t = a->tok;
        memset(t, 0, sizeof(*t));
        t->id = col_i64(r, 0, 0);
        t->tenant_id = col_i64(r, 0, 1);
        snprintf(t->name, sizeof(t->name), "%s", PQgetvalue(r, 0, 2));
        snprintf(t->scopes, sizeof(t->scopes), "%s", PQgetvalue(r, 0, 3));
        t->created_us = col_i64(r, 0, 4);
        t->last_used_us = col_i64(r, 0, 5);
        t->expires_us = col_i64(r, 0, 6);
    }
    PQclear(r);
    return rc;
}

static int pg_token_find(struct scim_store *st, const unsigned char hash[32], int64_t now_us,
                         struct scim_token *out, struct scim_err *err)
{
    struct token_args a = {.hash = hash, .now = now_us, .tok = out};
    return run_tx(ps(st), TX_NONE, tx_token_find, &a, err);
}

static int tx_token_touch(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct token_args *a = arg;
    struct params p = {0};
    p_i64(&p, a->now);
    p_i64(&p, a->id);
    return run_cmd(c, S_TOKEN_TOUCH, &p, NULL, err);
}

static int pg_token_touch(struct scim_store *st, int64_t token_id, int64_t now_us, struct scim_err *err)
{
    struct token_args a = {.id = token_id, .now = now_us};
    return run_tx(ps(st), TX_NONE, tx_token_touch, &a, err);
}

static int tx_token_list(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct token_args *a = arg;
    struct params p = {0};
    p_i64(&p, a->tenant);
    PGresult *r = run(c, S_TOKEN_LIST, &p, err);
    if (!r)
        return -1;
    json_t *arr = json_array();
    if (!arr)
        goto nomem;
    for (int i = 0; i < PQntuples(r); i++) {
        char ts[SCIM_DATETIME_LEN];
        scim_datetime_format(col_i64(r, i, 2), ts);
        json_t *t = json_pack("{s:s, s:s, s:s}", "name", PQgetvalue(r, i, 0), "scopes", PQgetvalue(r, i, 1),
                              "created", ts);
        if (!t || json_array_append_new(arr, t) < 0)
            goto nomem;
        for (int j = 3; j <= 4; j++) {
            if (PQgetisnull(r, i, j))
                continue;
            scim_datetime_format(col_i64(r, i, j), ts);
            if (json_object_set_new(t, j == 3 ? "lastUsed" : "expires", json_string(ts)) < 0)
                goto nomem;
        }
    }
    PQclear(r);
    json_decref(a->list);
    a->list = arr;
    return 0;
nomem:
    PQclear(r);
    json_decref(arr);
    return scim_err_nomem(err);
}

static int pg_token_list(struct scim_store *st, int64_t tenant, json_t **out, struct scim_err *err)
{
    struct token_args a = {.tenant = tenant};
    if (run_tx(ps(st), TX_NONE, tx_token_list, &a, err) < 0) {
        json_decref(a.list);
        return -1;
    }
    *out = a.list;
    return 0;
}

static int tx_token_revoke(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct token_args *a = arg;
    struct params p = {0};
    int64_t changed = 0;
    p_i64(&p, scim_now_us());
    p_i64(&p, a->tenant);
    p_str(&p, a->name);
    if (run_cmd(c, S_TOKEN_REVOKE, &p, &changed, err) < 0)
        return -1;
    if (changed == 0)
        return scim_err_set(err, 404, NULL, "no live token named \"%s\"", a->name);
    return 0;
}

static int pg_token_revoke(struct scim_store *st, int64_t tenant, const char *name, struct scim_err *err)
{
    struct token_args a = {.tenant = tenant, .name = name};
    return run_tx(ps(st), TX_NONE, tx_token_revoke, &a, err);
}

static int tx_token_count(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct token_args *a = arg;
    struct params p = {0};
    p_i64(&p, a->tenant);
    p_i64(&p, scim_now_us());
    PGresult *r = run(c, S_TOKEN_COUNT, &p, err);
    if (!r)
        return -1;
    a->count = col_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_token_count(struct scim_store *st, int64_t tenant, int64_t *n, struct scim_err *err)
{
    struct token_args a = {.tenant = tenant};
    if (run_tx(ps(st), TX_NONE, tx_token_count, &a, err) < 0)
        return -1;
    *n = a.count;
    return 0;
}

/* ---- tenants (admin) ---------------------------------------------------------------- */

/* Runs SQL text with parameters (the rarely used admin statements): the result, or NULL. */
static PGresult *run_text(struct pconn *c, const char *sql, const struct params *p, struct scim_err *err)
{
    PGresult *r = PQexecParams(c->pg, sql, p ? p->n : 0, NULL, p ? p->v : NULL, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    pg_fail(c, r, err, sql);
    PQclear(r);
    return NULL;
}

struct tenant_args {
    int64_t id, users, groups;
    const char *name, *settings;
    int disabled;
    struct scim_tenant *out;
    char *settings_out;
    json_t *list;
};

static int tx_tenant_create(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct tenant_args *a = arg;
    struct params p = {0};
    p_str(&p, a->name);
    p_i64(&p, scim_now_ms_us());
    PGresult *r = run_text(c, "INSERT INTO tenants(name, created) VALUES ($1, $2) RETURNING id", &p, err);
    if (!r) {
        if (state_is(c, "23505"))
            scim_err_set(err, 409, SCIM_TYPE_UNIQUENESS, "a tenant named \"%s\" already exists", a->name);
        return -1;
    }
    a->id = col_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_tenant_create(struct scim_store *st, const char *name, int64_t *id, struct scim_err *err)
{
    struct tenant_args a = {.name = name};
    if (run_tx(ps(st), TX_NONE, tx_tenant_create, &a, err) < 0)
        return -1;
    *id = a.id;
    return 0;
}

static int tx_tenant_get(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct tenant_args *a = arg;
    struct params p = {0};
    if (a->name)
        p_str(&p, a->name);
    else
        p_i64(&p, a->id);
    PGresult *r = run_text(c, a->name ? "SELECT id, name, created, disabled, settings FROM tenants WHERE name = $1"
                                      : "SELECT id, name, created, disabled, settings FROM tenants WHERE id = $1",
                           &p, err);
    if (!r)
        return -1;
    int rc = 0;
    if (PQntuples(r) == 0) {
        rc = scim_err_set(err, 404, NULL, "tenant not found");
    } else {
        a->out->id = col_i64(r, 0, 0);
        snprintf(a->out->name, sizeof a->out->name, "%s", PQgetvalue(r, 0, 1));
        a->out->created_us = col_i64(r, 0, 2);
        a->out->disabled = strcmp(PQgetvalue(r, 0, 3), "t") == 0;
        free(a->settings_out);
        a->settings_out = NULL;
        if (col_text(r, 0, 4) && !(a->settings_out = scim_strdup(col_text(r, 0, 4))))
            rc = scim_err_nomem(err);
    }
    PQclear(r);
    return rc;
}

static int pg_tenant_get(struct scim_store *st, int64_t id, const char *name, struct scim_tenant *out,
                         char **settings_text, struct scim_err *err)
{
    struct tenant_args a = {.id = id, .name = name, .out = out};
    *settings_text = NULL;
    if (run_tx(ps(st), TX_NONE, tx_tenant_get, &a, err) < 0) {
        free(a.settings_out);
        return -1;
    }
    *settings_text = a.settings_out;
    return 0;
}

static int tx_tenant_list(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct tenant_args *a = arg;
    PGresult *r = run_text(c, "SELECT id, name FROM tenants ORDER BY id", NULL, err);
    if (!r)
        return -1;
    json_t *arr = json_array();
    for (int i = 0; arr && i < PQntuples(r); i++) {
        json_t *t = json_pack("{s:I, s:s}", "id", (json_int_t)col_i64(r, i, 0), "name", PQgetvalue(r, i, 1));
        if (!t || json_array_append_new(arr, t) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    PQclear(r);
    if (!arr)
        return scim_err_nomem(err);
    json_decref(a->list);
    a->list = arr;
    return 0;
}

static int pg_tenant_list(struct scim_store *st, json_t **out, struct scim_err *err)
{
    struct tenant_args a = {0};
    if (run_tx(ps(st), TX_NONE, tx_tenant_list, &a, err) < 0) {
        json_decref(a.list);
        return -1;
    }
    *out = a.list;
    return 0;
}

static int tx_tenant_update(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct tenant_args *a = arg;
    struct params p = {0};
    p_str(&p, a->disabled < 0 ? NULL : a->disabled ? "true" : "false");
    p_str(&p, a->settings);
    p_i64(&p, a->id);
    int64_t n = 0;
    PGresult *r = run_text(c, "UPDATE tenants SET disabled = coalesce($1::boolean, disabled), "
                              "settings = coalesce($2, settings) WHERE id = $3", &p, err);
    if (!r)
        return -1;
    scim_parse_i64(PQcmdTuples(r), &n);
    PQclear(r);
    return n == 0 ? scim_err_set(err, 404, NULL, "tenant not found") : 0;
}

static int pg_tenant_update(struct scim_store *st, int64_t id, int disabled, const char *settings_text,
                            struct scim_err *err)
{
    struct tenant_args a = {.id = id, .disabled = disabled, .settings = settings_text};
    return run_tx(ps(st), TX_NONE, tx_tenant_update, &a, err);
}

static int tx_tenant_delete(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct tenant_args *a = arg;
    struct params p = {0};
    p_i64(&p, a->id);
    int64_t n = 0;
    PGresult *r;
    /* emails and memberships go with their resources (ON DELETE CASCADE) */
    if (!(r = run_text(c, "DELETE FROM resources WHERE tenant_id = $1", &p, err)))
        return -1;
    PQclear(r);
    static const char *const cascade[] = {
        "DELETE FROM tokens WHERE tenant_id = $1",   "DELETE FROM provisioning_log WHERE tenant_id = $1",
        "DELETE FROM events WHERE tenant_id = $1",   "DELETE FROM event_seq WHERE tenant_id = $1",
        "DELETE FROM webhooks WHERE tenant_id = $1",
    };
    for (size_t i = 0; i < sizeof cascade / sizeof cascade[0]; i++) {
        if (!(r = run_text(c, cascade[i], &p, err)))
            return -1;
        PQclear(r);
    }
    if (!(r = run_text(c, "DELETE FROM tenants WHERE id = $1", &p, err)))
        return -1;
    scim_parse_i64(PQcmdTuples(r), &n);
    PQclear(r);
    return n == 0 ? scim_err_set(err, 404, NULL, "tenant not found") : 0;
}

static int pg_tenant_delete(struct scim_store *st, int64_t id, struct scim_err *err)
{
    struct tenant_args a = {.id = id};
    return run_tx(ps(st), TX_WRITE, tx_tenant_delete, &a, err);
}

static int tx_tenant_stats(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct tenant_args *a = arg;
    struct params p = {0};
    p_i64(&p, a->id);
    PGresult *r = run_text(c, "SELECT count(*) FILTER (WHERE kind = 0), count(*) FILTER (WHERE kind = 1) "
                              "FROM resources WHERE tenant_id = $1", &p, err);
    if (!r)
        return -1;
    a->users = col_i64(r, 0, 0);
    a->groups = col_i64(r, 0, 1);
    PQclear(r);
    return 0;
}

static int pg_tenant_stats(struct scim_store *st, int64_t id, int64_t *users, int64_t *groups,
                           struct scim_err *err)
{
    struct tenant_args a = {.id = id};
    if (run_tx(ps(st), TX_NONE, tx_tenant_stats, &a, err) < 0)
        return -1;
    *users = a.users;
    *groups = a.groups;
    return 0;
}

/* Parses 2n hex digits into n bytes: 0, or -1. */
static int unhex(const char *in, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char ch = in[2 * i + (size_t)j];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* ---- named secrets ------------------------------------------------------------------ */

struct secret_args {
    const char *name;
    const unsigned char *candidate;
    unsigned char out[32];
};

static int tx_secret(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct secret_args *a = arg;
    char hex[67];
    hash_param(a->candidate, hex);
    /* of two nodes starting at once, the first insert wins and both read its value */
    if (q_cmd(c, "INSERT INTO secrets(name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", err, "tt",
              a->name, hex) < 0)
        return -1;
    PGresult *r = q_exec(c, "SELECT value FROM secrets WHERE name = $1", err, "t", a->name);
    if (!r)
        return -1;
    const char *v = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    int rc = 0;
    if (strlen(v) != 66 || strncmp(v, "\\x", 2) != 0 || unhex(v + 2, a->out, 32) < 0)
        rc = scim_err_internal(err, "postgresql: secret %s missing or malformed", a->name);
    PQclear(r);
    return rc;
}

static int pg_secret(struct scim_store *st, const char *name, const unsigned char candidate[32],
                     unsigned char out[32], struct scim_err *err)
{
    struct secret_args a = {.name = name, .candidate = candidate};
    if (run_tx(ps(st), TX_WRITE, tx_secret, &a, err) < 0)
        return -1;
    memcpy(out, a.out, 32);
    OPENSSL_cleanse(a.out, sizeof a.out);
    return 0;
}

/* ---- provisioning log --------------------------------------------------------------- */

/* NULL for an empty field (as the SQLite backend stores it) */
static const char *opt(const char *v)
{
    return v && *v ? v : NULL;
}

struct log_args {
    const struct scim_log_entry *const *entries;
    size_t n;
    const struct scim_log_query *q;
    struct scim_log_entry *arr;
    size_t cnt;
    int64_t total;
    const char *sql;
    int64_t a, b, n_deleted;
};

static int tx_log_append(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct log_args *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        const struct scim_log_entry *e = a->entries[i];
        struct params p = {0};
        p_i64(&p, e->tenant_id);
        p_i64(&p, e->time_us);
        p_str(&p, opt(e->request_id));
        p_i64(&p, e->bulk_index);
        p_str(&p, opt(e->token));
        p_str(&p, opt(e->client));
        p_str(&p, opt(e->method));
        p_str(&p, opt(e->path));
        p_str(&p, opt(e->resource_type));
        p_str(&p, opt(e->resource_id));
        p_str(&p, opt(e->user_name));
        p_str(&p, opt(e->display_name));
        p_i64(&p, e->status);
        p_str(&p, opt(e->scim_type));
        p_str(&p, opt(e->detail));
        p_i64(&p, e->latency_us);
        p_str(&p, opt(e->compat));
        if (run_cmd(c, S_LOG_INSERT, &p, NULL, err) < 0)
            return -1;
    }
    return 0;
}

static int pg_log_append_batch(struct scim_store *st, const struct scim_log_entry *const *entries, size_t n,
                               struct scim_err *err)
{
    struct log_args a = {.entries = entries, .n = n};
    return run_tx(ps(st), TX_WRITE, tx_log_append, &a, err);
}

static void col_copy(const PGresult *r, int row, int col, char *out, size_t outlen)
{
    const char *t = col_text(r, row, col);
    snprintf(out, outlen, "%s", t ? t : "");
}

/* Appends "<cond>$n" with the next parameter n = v (text: only when set). */
static int log_where(struct scim_buf *w, struct params *p, const char *cond, const char *v)
{
    if (!v)
        return 0;
    p_str(p, v);
    return scim_buf_printf(w, "%s$%d", cond, p->n) < 0 ? -1 : 0;
}

static int log_where_i(struct scim_buf *w, struct params *p, const char *cond, int64_t v)
{
    p_i64(p, v);
    return scim_buf_printf(w, "%s$%d", cond, p->n) < 0 ? -1 : 0;
}

static int tx_log_query(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct log_args *a = arg;
    const struct scim_log_query *lq = a->q;
    struct scim_buf where, sql;
    struct params p = {0};
    PGresult *r = NULL;
    struct scim_log_entry *arr = NULL;
    int rc = -1;
    scim_buf_init(&where, 0);
    scim_buf_init(&sql, 0);
    if (log_where_i(&where, &p, " WHERE tenant_id = ", lq->tenant_id) < 0 ||
        (lq->status_min > 0 && log_where_i(&where, &p, " AND status >= ", lq->status_min) < 0) ||
        (lq->status_max > 0 && log_where_i(&where, &p, " AND status <= ", lq->status_max) < 0) ||
        (lq->since_us > 0 && log_where_i(&where, &p, " AND time >= ", lq->since_us) < 0) ||
        (lq->until_us > 0 && log_where_i(&where, &p, " AND time <= ", lq->until_us) < 0) ||
        (lq->after_id > 0 && log_where_i(&where, &p, lq->ascending ? " AND id > " : " AND id < ", lq->after_id) < 0) ||
        log_where(&where, &p, " AND resource_type = ", lq->resource_type) < 0 ||
        log_where(&where, &p, " AND resource_id = ", lq->resource_id) < 0 ||
        log_where(&where, &p, " AND token = ", lq->token) < 0 ||
        log_where(&where, &p, " AND client = ", lq->client) < 0 ||
        /* both columns compare case-insensitively, as SQLite's NOCASE */
        (lq->user && scim_buf_printf(&where, " AND (lower(user_name) = lower($%d) OR lower(display_name) = "
                                             "lower($%d))", p.n + 1, p.n + 1) < 0) ||
        scim_buf_adds(&sql, "SELECT count(*) FROM provisioning_log") < 0 ||
        scim_buf_add(&sql, where.data, where.len) < 0 || !scim_buf_str(&sql))
        goto nomem;
    if (lq->user)
        p_str(&p, lq->user); /* the $n of the user condition above */
    if (!(r = PQexecParams(c->pg, scim_buf_str(&sql), p.n, NULL, p.v, NULL, NULL, 0)) ||
        PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_fail(c, r, err, "log count");
        goto out;
    }
    int64_t total = col_i64(r, 0, 0);
    PQclear(r);
    r = NULL;
    scim_buf_reset(&sql);
    if (scim_buf_adds(&sql, "SELECT id, time, request_id, bulk_index, token, client, method, path, "
                            "resource_type, resource_id, user_name, display_name, status, scim_type, "
                            "detail, latency_us, compat FROM provisioning_log") < 0 ||
        scim_buf_add(&sql, where.data, where.len) < 0 ||
        scim_buf_printf(&sql, " ORDER BY id %s LIMIT %lld OFFSET %lld", lq->ascending ? "ASC" : "DESC",
                        (long long)lq->count, (long long)lq->offset) < 0 ||
        !scim_buf_str(&sql))
        goto nomem;
    if (!(r = PQexecParams(c->pg, scim_buf_str(&sql), p.n, NULL, p.v, NULL, NULL, 0)) ||
        PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_fail(c, r, err, "log query");
        goto out;
    }
    size_t cap = lq->count > 0 ? (size_t)lq->count : 1, cnt = 0;
    if (!(arr = calloc(cap, sizeof *arr)))
        goto nomem;
    for (int i = 0; i < PQntuples(r) && cnt < cap; i++) {
        struct scim_log_entry *e = &arr[cnt++];
        e->id = col_i64(r, i, 0);
        e->time_us = col_i64(r, i, 1);
        e->tenant_id = lq->tenant_id;
        col_copy(r, i, 2, e->request_id, sizeof e->request_id);
        e->bulk_index = (int)col_i64(r, i, 3);
        col_copy(r, i, 4, e->token, sizeof e->token);
        col_copy(r, i, 5, e->client, sizeof e->client);
        col_copy(r, i, 6, e->method, sizeof e->method);
        col_copy(r, i, 7, e->path, sizeof e->path);
        col_copy(r, i, 8, e->resource_type, sizeof e->resource_type);
        col_copy(r, i, 9, e->resource_id, sizeof e->resource_id);
        col_copy(r, i, 10, e->user_name, sizeof e->user_name);
        col_copy(r, i, 11, e->display_name, sizeof e->display_name);
        e->status = (int)col_i64(r, i, 12);
        col_copy(r, i, 13, e->scim_type, sizeof e->scim_type);
        col_copy(r, i, 14, e->detail, sizeof e->detail);
        e->latency_us = col_i64(r, i, 15);
        col_copy(r, i, 16, e->compat, sizeof e->compat);
    }
    free(a->arr);
    a->arr = arr;
    a->cnt = cnt;
    a->total = total;
    arr = NULL;
    rc = 0;
    goto out;
nomem:
    scim_err_nomem(err);
out:
    PQclear(r);
    free(arr);
    scim_buf_release(&where);
    scim_buf_release(&sql);
    return rc;
}

static int pg_log_query(struct scim_store *st, const struct scim_log_query *q, struct scim_log_entry **out,
                        size_t *n, int64_t *total, struct scim_err *err)
{
    struct log_args a = {.q = q};
    /* count and page from one snapshot */
    if (run_tx(ps(st), TX_READ, tx_log_query, &a, err) < 0) {
        free(a.arr);
        return -1;
    }
    *out = a.arr;
    *n = a.cnt;
    *total = a.total;
    return 0;
}

/* Rows go in slices, each its own short transaction, so that pruning a large backlog never
 * holds locks for long. */
#define LOG_PRUNE_SLICE 5000

static int tx_log_slice(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct log_args *a = arg;
    int64_t n = q_cmd(c, a->sql, err, "iii", a->a, a->b, (int64_t)LOG_PRUNE_SLICE);
    if (n < 0)
        return -1;
    a->n_deleted = n;
    return 0;
}

static int log_prune_slices(struct pg_store *s, const char *sql, int64_t x, int64_t y, int64_t *deleted,
                            struct scim_err *err)
{
    for (;;) {
        struct log_args a = {.sql = sql, .a = x, .b = y};
        if (run_tx(s, TX_NONE, tx_log_slice, &a, err) < 0)
            return -1;
        *deleted += a.n_deleted;
        if (a.n_deleted < LOG_PRUNE_SLICE)
            return 0;
    }
}

struct ids_args {
    const char *sql;
    int64_t x, y;
    int64_t *ids;
    size_t n;
};

/* The first column of `sql` ($1 = x, $2 = y when used) as integers. */
static int tx_ids(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct ids_args *a = arg;
    PGresult *r = strstr(a->sql, "$2") ? q_exec(c, a->sql, err, "ii", a->x, a->y)
                                       : q_exec(c, a->sql, err, "");
    if (!r)
        return -1;
    int n = PQntuples(r);
    int64_t *ids = calloc((size_t)n + 1, sizeof *ids);
    if (!ids) {
        PQclear(r);
        return scim_err_nomem(err);
    }
    for (int i = 0; i < n; i++)
        ids[i] = col_i64(r, i, 0);
    PQclear(r);
    free(a->ids);
    a->ids = ids;
    a->n = (size_t)n;
    return 0;
}

static int pg_log_prune(struct scim_store *st, int64_t before_us, int64_t max_per_tenant, int64_t *deleted,
                        struct scim_err *err)
{
    struct pg_store *s = ps(st);
    int64_t gone = 0;
    struct ids_args t = {.sql = "SELECT id FROM tenants ORDER BY id"};
    int rc = -1;
    if (before_us > 0 &&
        log_prune_slices(s, "DELETE FROM provisioning_log WHERE id IN (SELECT id FROM provisioning_log "
                            "WHERE time < $1 AND $2 = $2 LIMIT $3)",
                         before_us, 0, &gone, err) < 0)
        goto out;
    if (max_per_tenant > 0) {
        if (run_tx(s, TX_NONE, tx_ids, &t, err) < 0)
            goto out;
        for (size_t i = 0; i < t.n; i++) {
            /* the id of the newest entry beyond the limit */
            struct ids_args cut = {.sql = "SELECT id FROM provisioning_log WHERE tenant_id = $1 "
                                          "ORDER BY id DESC LIMIT 1 OFFSET $2",
                                   .x = t.ids[i], .y = max_per_tenant};
            if (run_tx(s, TX_NONE, tx_ids, &cut, err) < 0) {
                free(cut.ids);
                goto out;
            }
            int64_t c = cut.n > 0 ? cut.ids[0] : 0;
            free(cut.ids);
            if (c > 0 &&
                log_prune_slices(s, "DELETE FROM provisioning_log WHERE id IN (SELECT id FROM provisioning_log "
                                    "WHERE tenant_id = $1 AND id <= $2 LIMIT $3)",
                                 t.ids[i], c, &gone, err) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    free(t.ids);
    if (deleted)
        *deleted = gone;
    return rc;
}

/* ---- change feed retention (store.h scim_store_events_prune; same steps as SQLite's feed.c) -- */

#define EVENTS_PRUNE_SLICE 4000

struct evprune_args {
    int64_t tenant, before, max, lo, hi, cut, deleted;
};

/* One bigint of a one-row query: 1 found, 0 no row or NULL, -1 error. */
static int one_i64(struct pconn *c, const char *sql, int64_t a, int64_t b, int64_t *v,
                   struct scim_err *err)
{
    PGresult *r = q_exec(c, sql, err, strstr(sql, "$2") ? "ii" : "i", a, b);
    if (!r)
        return -1;
    int got = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0);
    if (got)
        *v = col_i64(r, 0, 0);
    PQclear(r);
    return got;
}

/* The cut of one tenant in one snapshot: the newest event older than `before` is found by a
 * binary search over the primary key (seq is commit-ordered and `created` is stamped at
 * commit, so it grows with seq), which needs no index on `created` to maintain per write. */
static int tx_events_cut(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct evprune_args *a = arg;
    int64_t lo = 0, hi = 0, cut = 0, hold = 0;
    int got = one_i64(c, "SELECT seq FROM events WHERE tenant_id = $1 ORDER BY seq LIMIT 1", a->tenant,
                      0, &lo, err);
    if (got <= 0) {
        a->cut = 0;
        return got;
    }
    if (one_i64(c, "SELECT seq FROM events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1", a->tenant, 0,
                &hi, err) < 0)
        return -1;
    if (a->max > 0)
        cut = hi - a->max;
    if (a->before > 0) {
        int64_t lo_a = lo - 1, hi_b = hi + 1, created = 0;
        while (hi_b - lo_a > 1) {
            int64_t m = lo_a + (hi_b - lo_a) / 2;
            got = one_i64(c, "SELECT created FROM events WHERE tenant_id = $1 AND seq >= $2 "
                             "ORDER BY seq LIMIT 1", a->tenant, m, &created, err);
            if (got < 0)
                return -1;
            if (got && created < a->before)
                lo_a = m;
            else
                hi_b = m;
        }
        if (lo_a > cut)
            cut = lo_a;
    }
    if (cut >= lo) {
        got = one_i64(c, "SELECT min(delivered_seq) FROM webhooks WHERE tenant_id = $1 AND enabled",
                      a->tenant, 0, &hold, err);
        if (got < 0)
            return -1;
        if (got && hold < cut)
            cut = hold;
    }
    a->lo = lo;
    a->cut = cut >= lo ? cut : 0;
    return 0;
}

/* One slice, autocommit; the webhook hold is re-read by the statement itself. */
static int tx_events_slice(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct evprune_args *a = arg;
    int64_t n = q_cmd(c, "DELETE FROM events WHERE tenant_id = $1 AND seq >= $2 AND seq <= $3 AND seq <= "
                         "coalesce((SELECT min(delivered_seq) FROM webhooks WHERE tenant_id = $1 "
                         "AND enabled), $3)", err, "iii", a->tenant, a->lo, a->hi);
    if (n < 0)
        return -1;
    a->deleted += n;
    return 0;
}

static int pg_events_prune(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                           int64_t *deleted, struct scim_err *err)
{
    struct pg_store *s = ps(st);
    struct ids_args t = {.sql = "SELECT tenant_id FROM event_seq ORDER BY tenant_id"};
    int64_t gone = 0;
    int rc = -1;
    if (run_tx(s, TX_NONE, tx_ids, &t, err) < 0)
        goto out;
    for (size_t i = 0; i < t.n; i++) {
        struct evprune_args a = {.tenant = t.ids[i], .before = before_us, .max = max_per_tenant};
        if (run_tx(s, TX_READ, tx_events_cut, &a, err) < 0)
            goto out;
        int64_t cut = a.cut;
        for (int64_t from = a.lo; cut > 0 && from <= cut; from += EVENTS_PRUNE_SLICE) {
            a.lo = from;
            a.hi = cut - from < EVENTS_PRUNE_SLICE ? cut : from + EVENTS_PRUNE_SLICE - 1;
            int64_t before_n = a.deleted;
            if (run_tx(s, TX_NONE, tx_events_slice, &a, err) < 0) {
                gone += before_n;
                goto out;
            }
        }
        gone += a.deleted;
    }
    rc = 0;
out:
    free(t.ids);
    *deleted = gone;
    return rc;
}

/* ---- change feed and webhooks ------------------------------------------------------- */

struct feed_args {
    int64_t tenant, after, count, last_seq;
    const char *id, *url, *secret, *types, *owner, *error;
    bool enabled;
    int enabled_i;
    json_t *out;
    const struct scim_webhook_job *cjob;
    struct scim_webhook_job job;
    bool claimed, lost;
    int64_t now, lease, cursor, attempts, next_attempt;
    int status;
};

static int tx_events_list(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct feed_args *a = arg;
    PGresult *r = q_exec(c, "SELECT last_seq FROM event_seq WHERE tenant_id = $1", err, "i", a->tenant);
    if (!r)
        return -1;
    int64_t last = PQntuples(r) > 0 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    if (!(r = q_exec(c, "SELECT data FROM events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3", err,
                     "iii", a->tenant, a->after, a->count)))
        return -1;
    json_t *arr = json_array();
    for (int i = 0; arr && i < PQntuples(r); i++) {
        json_error_t je;
        json_t *ev = json_loads(PQgetvalue(r, i, 0), 0, &je);
        if (!ev || json_array_append_new(arr, ev) < 0) {
            json_decref(arr);
            PQclear(r);
            return scim_err_internal(err, "postgresql: unreadable event row");
        }
    }
    PQclear(r);
    if (!arr)
        return scim_err_nomem(err);
    json_decref(a->out);
    a->out = arr;
    a->last_seq = last;
    return 0;
}

static int pg_events_list(struct scim_store *st, int64_t tenant, int64_t after, int64_t count, json_t **out,
                          int64_t *last_seq, struct scim_err *err)
{
    struct feed_args a = {.tenant = tenant, .after = after, .count = count};
    /* one snapshot: last_seq and the rows agree */
    if (run_tx(ps(st), TX_READ, tx_events_list, &a, err) < 0) {
        json_decref(a.out);
        return -1;
    }
    *out = a.out;
    *last_seq = a.last_seq;
    return 0;
}

static int tx_webhook_create(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct feed_args *a = arg;
    return q_cmd(c, "INSERT INTO webhooks(tenant_id, id, url, secret, event_types, enabled, created, "
                    "delivered_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                    "coalesce((SELECT last_seq FROM event_seq WHERE tenant_id = $1), 0))",
                 err, "ittttti", a->tenant, a->id, a->url, a->secret, a->types, a->enabled ? "true" : "false",
                 scim_now_ms_us()) < 0
               ? -1
               : 0;
}

static int pg_webhook_create(struct scim_store *st, int64_t tenant, const char *id, const char *url,
                             const char *secret, const char *event_types, bool enabled, struct scim_err *err)
{
    struct feed_args a = {.tenant = tenant, .id = id, .url = url, .secret = secret, .types = event_types,
                          .enabled = enabled};
    return run_tx(ps(st), TX_NONE, tx_webhook_create, &a, err);
}

static json_t *time_or_null(const PGresult *r, int row, int col)
{
    char ts[SCIM_DATETIME_LEN];
    if (PQgetisnull(r, row, col) || col_i64(r, row, col) <= 0)
        return json_null();
    scim_datetime_format(col_i64(r, row, col), ts);
    return json_string(ts);
}

static json_t *webhook_json(const PGresult *r, int i, int64_t now)
{
    json_error_t je;
    json_t *types = json_loads(PQgetvalue(r, i, 2), 0, &je);
    const char *lerr = col_text(r, i, 11);
    bool leased = !PQgetisnull(r, i, 12) && col_i64(r, i, 13) > now;
    return json_pack("{s:s, s:s, s:o, s:b, s:o, s:{s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:b}}",
                     "id", PQgetvalue(r, i, 0), "url", PQgetvalue(r, i, 1), "eventTypes",
                     types ? types : json_array(), "enabled", strcmp(PQgetvalue(r, i, 3), "t") == 0, "created",
                     time_or_null(r, i, 4), "delivery", "lastDeliveredSeq", (json_int_t)col_i64(r, i, 5),
                     "latestSeq", (json_int_t)col_i64(r, i, 14), "pending", (json_int_t)col_i64(r, i, 15),
                     "attempts", (json_int_t)col_i64(r, i, 6), "nextAttempt",
                     col_i64(r, i, 15) > 0 ? time_or_null(r, i, 7) : json_null(), "lastAttempt",
                     time_or_null(r, i, 8), "lastSuccess", time_or_null(r, i, 9), "lastStatus",
                     PQgetisnull(r, i, 10) ? json_null() : json_integer(col_i64(r, i, 10)), "lastError",
                     lerr ? json_string(lerr) : json_null(), "leased", leased);
}

static int tx_webhook_list(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct feed_args *a = arg;
    int64_t now = scim_now_us();
    PGresult *r = q_exec(c, "SELECT w.id, w.url, w.event_types, w.enabled, w.created, w.delivered_seq, "
                            "w.attempts, w.next_attempt, w.last_attempt, w.last_success, w.last_status, "
                            "w.last_error, w.lease_owner, w.lease_expires, "
                            "coalesce((SELECT s.last_seq FROM event_seq s WHERE s.tenant_id = w.tenant_id), 0), "
                            "(SELECT count(*) FROM events e WHERE e.tenant_id = w.tenant_id AND "
                            " e.seq > w.delivered_seq AND EXISTS (SELECT 1 FROM "
                            " jsonb_array_elements_text(w.event_types::jsonb) j(v) WHERE j.v = '*' OR j.v = e.type)) "
                            "FROM webhooks w WHERE w.tenant_id = $1 AND ($2::text IS NULL OR w.id = $2) "
                            "ORDER BY w.pk",
                         err, "it", a->tenant, a->id);
    if (!r)
        return -1;
    json_t *arr = json_array();
    for (int i = 0; arr && i < PQntuples(r); i++) {
        json_t *o = webhook_json(r, i, now);
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    PQclear(r);
    if (!arr)
        return scim_err_nomem(err);
    if (a->id && json_array_size(arr) == 0) {
        json_decref(arr);
        return scim_err_set(err, 404, NULL, "webhook %s not found", a->id);
    }
    json_decref(a->out);
    a->out = a->id ? json_incref(json_array_get(arr, 0)) : json_incref(arr);
    json_decref(arr);
    return 0;
}

static int pg_webhook_list(struct scim_store *st, int64_t tenant, const char *id, json_t **out,
                           struct scim_err *err)
{
    struct feed_args a = {.tenant = tenant, .id = id};
    if (run_tx(ps(st), TX_READ, tx_webhook_list, &a, err) < 0) {
        json_decref(a.out);
        return -1;
    }
    *out = a.out;
    return 0;
}

static int tx_webhook_update(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct feed_args *a = arg;
    /* any change retries at once with a fresh backoff: the usual reason to edit a failing
     * webhook is to fix it */
    int64_t n = q_cmd(c, "UPDATE webhooks SET url = coalesce($1, url), event_types = coalesce($2, event_types), "
                         "secret = coalesce($3, secret), "
                         "enabled = CASE WHEN $4::integer < 0 THEN enabled ELSE $4::integer <> 0 END, "
                         "attempts = 0, next_attempt = 0 WHERE tenant_id = $5 AND id = $6",
                      err, "tttiit", a->url, a->types, a->secret, (int64_t)a->enabled_i, a->tenant, a->id);
    if (n < 0)
        return -1;
    return n == 0 ? scim_err_set(err, 404, NULL, "webhook %s not found", a->id) : 0;
}

static int pg_webhook_update(struct scim_store *st, int64_t tenant, const char *id, const char *url,
                             const char *event_types, const char *secret, int enabled, struct scim_err *err)
{
    struct feed_args a = {.tenant = tenant, .id = id, .url = url, .types = event_types, .secret = secret,
                          .enabled_i = enabled};
    return run_tx(ps(st), TX_NONE, tx_webhook_update, &a, err);
}

static int tx_webhook_delete(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct feed_args *a = arg;
    int64_t n = q_cmd(c, "DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2", err, "it", a->tenant, a->id);
    if (n < 0)
        return -1;
    return n == 0 ? scim_err_set(err, 404, NULL, "webhook %s not found", a->id) : 0;
}

static int pg_webhook_delete(struct scim_store *st, int64_t tenant, const char *id, struct scim_err *err)
{
    struct feed_args a = {.tenant = tenant, .id = id};
    return run_tx(ps(st), TX_NONE, tx_webhook_delete, &a, err);
}

static int tx_webhook_claim(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct feed_args *a = arg;
    struct scim_webhook_job *j = &a->job;
    /* one conditional UPDATE: of two nodes racing, SKIP LOCKED sends the second to another row
     * (or none), and the lease condition is checked again on the row being updated */
    PGresult *r = q_exec(c, "UPDATE webhooks SET lease_owner = $1, lease_expires = $2 WHERE pk = ("
                            " SELECT w.pk FROM webhooks w WHERE w.enabled AND w.next_attempt <= $3"
                            " AND (w.lease_owner IS NULL OR w.lease_expires <= $3)"
                            " AND EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = w.tenant_id"
                            "  AND e.seq > w.delivered_seq)"
                            " ORDER BY w.next_attempt, w.pk LIMIT 1 FOR UPDATE SKIP LOCKED)"
                            " AND (lease_owner IS NULL OR lease_expires <= $3) "
                            "RETURNING pk, tenant_id, id, url, secret, event_types, delivered_seq, attempts",
                         err, "tii", a->owner, a->now + a->lease, a->now);
    if (!r)
        return -1;
    scim_webhook_job_release(j);
    a->claimed = false;
    int rc = 0;
    if (PQntuples(r) > 0) {
        json_error_t je;
        j->pk = col_i64(r, 0, 0);
        j->tenant_id = col_i64(r, 0, 1);
        snprintf(j->id, sizeof j->id, "%s", PQgetvalue(r, 0, 2));
        j->url = scim_strdup(PQgetvalue(r, 0, 3));
        j->secret = scim_strdup(PQgetvalue(r, 0, 4));
        j->event_types = json_loads(PQgetvalue(r, 0, 5), 0, &je);
        j->cursor = col_i64(r, 0, 6);
        j->attempts = col_i64(r, 0, 7);
        if (!j->url || !j->secret || !j->event_types) {
            scim_webhook_job_release(j);
            rc = scim_err_nomem(err);
        } else {
            a->claimed = true;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_webhook_claim(struct scim_store *st, const char *owner, int64_t now_us, int64_t lease_us,
                            struct scim_webhook_job *job, struct scim_err *err)
{
    struct feed_args a = {.owner = owner, .now = now_us, .lease = lease_us};
    if (run_tx(ps(st), TX_NONE, tx_webhook_claim, &a, err) < 0) {
        scim_webhook_job_release(&a.job);
        return -1;
    }
    *job = a.job;
    return a.claimed ? 1 : 0;
}

static int tx_webhook_progress(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct feed_args *a = arg;
    bool attempted = a->status != 0 || a->error;
    char status[16];
    snprintf(status, sizeof status, "%d", a->status);
    int64_t n = q_cmd(c, "UPDATE webhooks SET delivered_seq = greatest(delivered_seq, $1::bigint), "
                         "attempts = $2, next_attempt = $3, "
                         "last_attempt = CASE WHEN $4::boolean THEN $5::bigint ELSE last_attempt END, "
                         "last_success = CASE WHEN $4::boolean AND $7::text IS NULL THEN $5::bigint "
                         " ELSE last_success END, "
                         "last_status = CASE WHEN $4::boolean THEN $6::integer ELSE last_status END, "
                         "last_error = CASE WHEN $4::boolean THEN $7::text ELSE last_error END, "
                         "lease_owner = CASE WHEN $8::bigint > 0 THEN lease_owner ELSE NULL END, "
                         "lease_expires = CASE WHEN $8::bigint > 0 THEN $8::bigint ELSE 0 END "
                         "WHERE pk = $9 AND lease_owner = $10",
                      err, "iiitittiit", a->cursor, a->attempts, a->next_attempt, attempted ? "true" : "false",
                      scim_now_ms_us(), a->status ? status : NULL, a->error, a->lease, a->cjob->pk, a->owner);
    if (n < 0)
        return -1;
    a->lost = n != 1;
    return 0;
}

static int pg_webhook_progress(struct scim_store *st, const struct scim_webhook_job *job, const char *owner,
                               int64_t cursor, int64_t attempts, int64_t next_attempt_us, int status,
                               const char *error, int64_t lease_until_us, struct scim_err *err)
{
    struct feed_args a = {.cjob = job, .owner = owner, .cursor = cursor, .attempts = attempts,
                          .next_attempt = next_attempt_us, .status = status, .error = error,
                          .lease = lease_until_us};
    if (run_tx(ps(st), TX_NONE, tx_webhook_progress, &a, err) < 0)
        return -1;
    return a.lost ? 1 : 0;
}

static int tx_webhook_release(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct feed_args *a = arg;
    return q_cmd(c, "UPDATE webhooks SET lease_owner = NULL, lease_expires = 0 "
                    "WHERE left(lease_owner, length($1::text)) = $1::text", err, "t", a->owner) < 0
               ? -1
               : 0;
}

static int pg_webhook_release_leases(struct scim_store *st, const char *prefix, struct scim_err *err)
{
    struct feed_args a = {.owner = prefix};
    return run_tx(ps(st), TX_NONE, tx_webhook_release, &a, err);
}

/* ---- export and import (scimctl db export / db import) ---------------------------- */

struct dump_args {
    scim_store_export_fn fn;
    void *ctx;
    bool emitted;
    json_t *records;
};

/* One query, one record per row; a column name ending in '?' is a boolean, '#' a bytea
 * exported as hex, '{' JSON text exported as an object, '~' a kind (0 User, 1 Group),
 * '%' an integer (NULL stays null); the others are text. */
static int export_query(struct pconn *c, const char *type, const char *sql, const char *const *cols,
                        struct dump_args *a, struct scim_err *err)
{
    PGresult *r = q_exec(c, sql, err, "");
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        json_t *rec = json_pack("{s:s}", "type", type);
        for (int k = 0; rec && cols[k]; k++) {
            char name[32];
            size_t len = strlen(cols[k]);
            char mark = cols[k][len - 1];
            const char *t = col_text(r, i, k);
            json_t *v;
            snprintf(name, sizeof name, "%.*s", (int)(strchr("?#{~%", mark) ? len - 1 : len), cols[k]);
            if (!t)
                v = json_null();
            else if (mark == '?')
                v = json_boolean(strcmp(t, "t") == 0);
            else if (mark == '#')
                v = json_string(strncmp(t, "\\x", 2) == 0 ? t + 2 : t);
            else if (mark == '{')
                v = json_loads(t, 0, NULL);
            else if (mark == '~')
                v = json_string(strcmp(t, "0") == 0 ? "User" : "Group");
            else if (mark == '%')
                v = json_integer(col_i64(r, i, k));
            else
                v = json_string(t);
            if (!v || json_object_set_new(rec, name, v) < 0) {
                json_decref(rec);
                rec = NULL;
            }
        }
        if (!rec) {
            rc = scim_err_nomem(err);
            break;
        }
        a->emitted = true;
        rc = a->fn(a->ctx, rec, err);
        json_decref(rec);
    }
    PQclear(r);
    return rc;
}

static int tx_export(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    static const char *const tenant_cols[] = {"id%", "name", "created%", "disabled?", "settings", NULL};
    static const char *const token_cols[] = {"id%", "tenant_id%", "name", "hash#", "scopes", "created%",
                                             "last_used%", "expires%", "revoked%", NULL};
    static const char *const res_cols[] = {"pk%", "tenant_id%", "kind~", "id", "created%", "last_modified%",
                                           "version%", "password_hash", "doc{", "origin", "managed_by",
                                           "deprovisioned?", NULL};
    static const char *const member_cols[] = {"group_pk%", "member_pk%", "display", "origin", NULL};
    struct dump_args *a = arg;
    int rc;
    /* records already written cannot be taken back: no second attempt after a failure */
    if (a->emitted)
        return scim_err_set(err, 503, NULL, "the export was interrupted by a database failure");
    if ((rc = export_query(c, "tenant", "SELECT id, name, created, disabled, settings FROM tenants ORDER BY id",
                           tenant_cols, a, err)) != 0 ||
        (rc = export_query(c, "token",
                           "SELECT id, tenant_id, name, hash, scopes, created, last_used, expires, revoked "
                           "FROM tokens ORDER BY id",
                           token_cols, a, err)) != 0 ||
        (rc = export_query(c, "resource",
                           "SELECT pk, tenant_id, kind, id, created, last_modified, version, password_hash, "
                           "doc::text, origin, managed_by, deprovisioned FROM resources ORDER BY pk",
                           res_cols, a, err)) != 0 ||
        (rc = export_query(c, "member", "SELECT group_pk, member_pk, display, origin FROM members ORDER BY seq",
                           member_cols, a, err)) != 0)
        return rc;
    return 0;
}

static int pg_export_rows(struct scim_store *st, scim_store_export_fn fn, void *ctx, struct scim_err *err)
{
    struct dump_args a = {.fn = fn, .ctx = ctx};
    /* one snapshot (REPEATABLE READ, read only) */
    return run_tx(ps(st), TX_READ, tx_export, &a, err);
}

/* The text of a record member as a parameter (NULL for JSON null or absent). */
static const char *jtext(json_t *rec, const char *key, char buf[32])
{
    json_t *v = json_object_get(rec, key);
    if (json_is_integer(v)) {
        snprintf(buf, 32, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return json_string_value(v);
}

static int import_resource(struct pconn *c, json_t *rec, struct scim_err *err)
{
    json_t *doc = json_object_get(rec, "doc");
    enum scim_rtype kind = strcmp(json_string_value(json_object_get(rec, "kind")), "User") == 0 ? SCIM_RT_USER
                                                                                              : SCIM_RT_GROUP;
    char *text = json_dumps(doc, JSON_COMPACT);
    char b[8][32];
    struct cols k;
    int64_t pk = json_integer_value(json_object_get(rec, "pk"));
    int64_t tenant = json_integer_value(json_object_get(rec, "tenant_id"));
    if (!text)
        return scim_err_nomem(err);
    extract_cols(kind, doc, &k); /* the indexed columns come from the doc, as on every write */
    struct params p = {0};
    p_i64(&p, pk);
    p_i64(&p, tenant);
    p_i64(&p, (int64_t)kind);
    p_str(&p, jtext(rec, "id", b[0]));
    p_str(&p, k.user_name);
    p_str(&p, k.external_id);
    p_str(&p, k.display_name);
    p_str(&p, bool_text(k.active));
    p_str(&p, jtext(rec, "created", b[1]));
    p_str(&p, jtext(rec, "last_modified", b[2]));
    p_str(&p, jtext(rec, "version", b[3]));
    p_str(&p, jtext(rec, "password_hash", b[4]));
    p_str(&p, text);
    p_str(&p, jtext(rec, "origin", b[5]));
    p_str(&p, jtext(rec, "managed_by", b[6]));
    p_str(&p, jtext(rec, "deprovisioned", b[7]));
    PGresult *r = run_text(c, "INSERT INTO resources(pk, tenant_id, kind, id, user_name, external_id, "
                              "display_name, active, created, last_modified, version, password_hash, doc, "
                              "origin, managed_by, deprovisioned) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                              "$10, $11, $12, $13, $14, $15, $16)",
                           &p, err);
    free(text);
    if (!r)
        return -1;
    PQclear(r);
    return kind == SCIM_RT_USER ? sync_emails(c, tenant, pk, doc, false, err) : 0;
}

/* Runs `sql` with the members `keys` of rec as parameters, in order. */
static int import_row(struct pconn *c, const char *sql, json_t *rec, const char *const *keys, struct scim_err *err)
{
    struct params p = {0};
    char b[MAX_PARAMS][32];
    for (int i = 0; keys[i] && i < MAX_PARAMS; i++)
        p_str(&p, jtext(rec, keys[i], b[i]));
    PGresult *r = run_text(c, sql, &p, err);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static int tx_import(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    static const char *const tenant_keys[] = {"id", "name", "created", "disabled", "settings", NULL};
    static const char *const token_keys[] = {"id", "tenant_id", "name", "hash", "scopes", "created",
                                             "last_used", "expires", "revoked", NULL};
    static const char *const member_keys[] = {"group_pk", "member_pk", "display", "origin", NULL};
    struct dump_args *a = arg;
    json_t *rec;
    size_t i;
    PGresult *r = q_exec(c, "SELECT (SELECT count(*) FROM resources) + (SELECT count(*) FROM tokens) + "
                            "(SELECT count(*) FROM webhooks)", err, "");
    if (!r)
        return -1;
    int64_t n = col_i64(r, 0, 0);
    PQclear(r);
    if (n != 0)
        return scim_err_set(err, 409, NULL, "the database is not empty (it has users, groups, tokens or webhooks)");
    if (q_cmd(c, "DELETE FROM tenants", err, "") < 0)
        return -1;
    json_array_foreach(a->records, i, rec) {
        const char *type = json_string_value(json_object_get(rec, "type"));
        int rc;
        if (strcmp(type, "tenant") == 0)
            rc = import_row(c, "INSERT INTO tenants(id, name, created, disabled, settings) VALUES ($1, $2, $3, $4, $5)",
                            rec, tenant_keys, err);
        else if (strcmp(type, "token") == 0)
            rc = import_row(c, "INSERT INTO tokens(id, tenant_id, name, hash, scopes, created, last_used, expires, "
                               "revoked) VALUES ($1, $2, $3, decode($4, 'hex'), $5, $6, $7, $8, $9)",
                            rec, token_keys, err);
        else if (strcmp(type, "resource") == 0)
            rc = import_resource(c, rec, err);
        else
            rc = import_row(c, "INSERT INTO members(group_pk, member_pk, display, origin) VALUES ($1, $2, $3, $4)",
                            rec, member_keys, err);
        if (rc < 0) {
            char log[SCIM_ERR_DETAIL_MAX];
            if (err->status == 503)
                return -1;
            snprintf(log, sizeof log, "%s", err->log);
            scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "record %zu (%s) cannot be imported", i + 1, type);
            return scim_err_log(err, "%s", log);
        }
    }
    /* the next generated ids follow the imported ones */
    static const char *const seqs[] = {
        "SELECT setval(pg_get_serial_sequence('tenants', 'id'), coalesce(max(id), 0) + 1, false) FROM tenants",
        "SELECT setval(pg_get_serial_sequence('tokens', 'id'), coalesce(max(id), 0) + 1, false) FROM tokens",
        "SELECT setval(pg_get_serial_sequence('resources', 'pk'), coalesce(max(pk), 0) + 1, false) FROM resources",
    };
    for (size_t k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
        if (!(r = q_exec(c, seqs[k], err, "")))
            return -1;
        PQclear(r);
    }
    return 0;
}

static int pg_import_rows(struct scim_store *st, json_t *records, struct scim_err *err)
{
    struct dump_args a = {.records = records};
    return run_tx(ps(st), TX_WRITE, tx_import, &a, err);
}

/* ---- bulk import (scimctl import) ------------------------------------------------------ */

/* One batch is one transaction of a few set-based statements instead of round trips per row:
 * two look-ups (every id and userName the batch names, members' included), then multi-row
 * INSERTs of up to IMPORT_ROWS rows each into resources, emails and members. Client values are
 * only ever bound parameters (lists as array literals); the SQL text holds placeholders.
 * Clashes are found before writing, against the look-ups and the batch's own earlier items;
 * the resources INSERT also says ON CONFLICT DO NOTHING, so that a row another writer inserts
 * meanwhile fails its item (409) rather than the batch. As on SQLite, no change-feed events. */
#define IMPORT_ROWS 1000

/* The rows of a multi-row INSERT being collected: parameters $1..$nshared are shared by every
 * row (tenant, time), then ncols per row, in the order of the row template's '?'s. */
struct chunk {
    int nshared, ncols, rows;
    const char **v;
    char (*num)[24];
    char **owned; /* per row: a string to free once the statement ran (a doc's text), or NULL */
};

static int chunk_init(struct chunk *ch, int nshared, int ncols, struct scim_err *err)
{
    size_t slots = (size_t)nshared + (size_t)IMPORT_ROWS * (size_t)ncols;
    ch->nshared = nshared;
    ch->ncols = ncols;
    ch->rows = 0;
    ch->v = calloc(slots, sizeof(*ch->v));
    ch->num = calloc(slots, sizeof(*ch->num));
    ch->owned = calloc(IMPORT_ROWS, sizeof(*ch->owned));
    return ch->v && ch->num && ch->owned ? 0 : scim_err_nomem(err);
}

static void chunk_drop_rows(struct chunk *ch)
{
    for (int i = 0; ch->owned && i < ch->rows; i++) {
        free(ch->owned[i]);
        ch->owned[i] = NULL;
    }
    ch->rows = 0;
}

static void chunk_free(struct chunk *ch)
{
    chunk_drop_rows(ch);
    free(ch->v);
    free(ch->num);
    free(ch->owned);
    memset(ch, 0, sizeof(*ch));
}

/* Parameter index of column `col` of the current row; col < 0 is shared parameter -col. */
static int chunk_slot(const struct chunk *ch, int col)
{
    return col < 0 ? -col - 1 : ch->nshared + ch->rows * ch->ncols + col;
}

static void ch_str(struct chunk *ch, int col, const char *s)
{
    ch->v[chunk_slot(ch, col)] = s;
}

static void ch_i64(struct chunk *ch, int col, int64_t x)
{
    int i = chunk_slot(ch, col);
    snprintf(ch->num[i], sizeof(ch->num[0]), "%lld", (long long)x);
    ch->v[i] = ch->num[i];
}

/* Runs "head ROW, ROW, ... tail" for the rows collected, each ROW the template `tmpl` with its
 * '?'s numbered in turn, and empties the chunk: the result (PQclear it) or NULL with err set. */
static PGresult *chunk_run(struct pconn *c, struct chunk *ch, const char *head, const char *tmpl,
                           const char *tail, struct scim_err *err)
{
    struct scim_buf sql;
    PGresult *r = NULL;
    int next = ch->nshared + 1;
    scim_buf_init(&sql, 0);
    int ok = scim_buf_adds(&sql, head) == 0;
    for (int i = 0; ok && i < ch->rows; i++) {
        ok = !i || scim_buf_addc(&sql, ',') == 0;
        for (const char *t = tmpl; ok && *t; t++)
            ok = (*t == '?' ? scim_buf_printf(&sql, "$%d", next++) : scim_buf_addc(&sql, *t)) == 0;
    }
    ok = ok && scim_buf_adds(&sql, tail) == 0;
    if (!ok) {
        scim_err_nomem(err);
    } else {
        r = PQexecParams(c->pg, scim_buf_str(&sql), next - 1, NULL, ch->v, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            pg_fail(c, r, err, head);
            PQclear(r);
            r = NULL;
        }
    }
    scim_buf_release(&sql);
    chunk_drop_rows(ch);
    return r;
}

/* chunk_run for an INSERT without RETURNING: adds the rows inserted to *rows. */
static int import_run(struct pconn *c, struct chunk *ch, const char *head, const char *tmpl, const char *tail,
                      int64_t *rows, struct scim_err *err)
{
    PGresult *r = chunk_run(c, ch, head, tmpl, tail, err);
    if (!r)
        return -1;
    int64_t n = 0;
    scim_parse_i64(PQcmdTuples(r), &n);
    *rows += n;
    PQclear(r);
    return 0;
}

/* Lowers ASCII letters only, as lower() does on the COLLATE "C" columns (and SQLite's NOCASE). */
static char fold_c(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* s folded into b (reset first): the text, or NULL when out of memory. */
static const char *fold(struct scim_buf *b, const char *s)
{
    scim_buf_reset(b);
    for (; *s; s++)
        if (scim_buf_addc(b, fold_c(*s)) < 0)
            return NULL;
    return scim_buf_str(b);
}

/* Appends s to the array literal in b (opened with '{'): double-quoted, " and \ escaped. */
static int arr_add(struct scim_buf *b, const char *s, bool folded)
{
    if ((b->len > 1 && scim_buf_addc(b, ',') < 0) || scim_buf_addc(b, '"') < 0)
        return -1;
    for (; *s; s++) {
        if ((*s == '"' || *s == '\\') && scim_buf_addc(b, '\\') < 0)
            return -1;
        if (scim_buf_addc(b, folded ? fold_c(*s) : *s) < 0)
            return -1;
    }
    return scim_buf_addc(b, '"');
}

/* Runs a look-up whose rows are (key, pk, live) for the keys in the array literal `arr`, into
 * out: key -> pk, or 0 for a row that exists but is not live (deprovisioned). */
static int import_lookup(struct pconn *c, int64_t tenant, const char *sql, struct scim_buf *arr, json_t *out,
                         struct scim_err *err)
{
    if (arr->len <= 1)
        return 0; /* nothing to look up */
    if (scim_buf_addc(arr, '}') < 0)
        return scim_err_nomem(err);
    PGresult *r = q_exec(c, sql, err, "it", tenant, scim_buf_str(arr));
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        bool live = strcmp(PQgetvalue(r, i, 2), "t") == 0;
        if (json_object_set_new(out, PQgetvalue(r, i, 0), json_integer(live ? col_i64(r, i, 1) : 0)) < 0)
            rc = scim_err_nomem(err);
    }
    PQclear(r);
    return rc;
}

struct ibatch_args {
    int64_t tenant;
    struct scim_store_import_item *items;
    size_t n;
    int64_t rows[3]; /* out: rows inserted into resources, emails, members */
};

/* The working state of one batch. */
struct ibatch {
    json_t *db_ids, *db_names; /* committed rows the batch names: key -> pk (0: not live) */
    json_t *bid, *bname;       /* the batch's accepted items: id / folded userName -> index */
    int64_t *pk;               /* per item: the pk written, 0 while none */
    int64_t rows[3];           /* rows inserted into resources, emails, members */
    struct scim_buf key;
};

static int import_reject(struct scim_store_import_item *it, const char *what, const char *value)
{
    it->failed = true;
    scim_err_set(&it->err, 409, SCIM_TYPE_UNIQUENESS, "%s \"%s\" is already in use", what, value);
    return 0;
}

/* Resets the outputs, names the new resources and looks up everything the batch names. */
static int import_prepare(struct pconn *c, const struct ibatch_args *a, struct ibatch *b, struct scim_err *err)
{
    struct scim_buf ids, names;
    int rc = -1;
    scim_buf_init(&ids, 0);
    scim_buf_init(&names, 0);
    if (scim_buf_addc(&ids, '{') < 0 || scim_buf_addc(&names, '{') < 0)
        goto nomem;
    for (size_t i = 0; i < a->n; i++) {
        struct scim_store_import_item *it = &a->items[i];
        it->failed = false;
        it->skipped_members = 0;
        scim_err_clear(&it->err);
        if (it->id)
            snprintf(it->new_id, sizeof(it->new_id), "%s", it->id);
        else if (scim_uuid4(it->new_id) < 0) {
            scim_err_internal(err, "postgresql: no randomness for a new id");
            goto out;
        }
        if (it->id && arr_add(&ids, it->id, false) < 0)
            goto nomem;
        const char *un = json_string_value(json_object_get(it->doc, "userName"));
        if (it->kind == SCIM_RT_USER && un && arr_add(&names, un, true) < 0)
            goto nomem;
        size_t j;
        json_t *m;
        json_array_foreach(it->kind == SCIM_RT_GROUP ? it->members : NULL, j, m) {
            const char *v = json_string_value(json_object_get(m, "value"));
            const char *mun = json_string_value(json_object_get(m, "userName"));
            if ((v && arr_add(&ids, v, false) < 0) || (!v && mun && arr_add(&names, mun, true) < 0))
                goto nomem;
        }
    }
    if (import_lookup(c, a->tenant,
                      "SELECT id, pk, NOT deprovisioned FROM resources "
                      "WHERE tenant_id = $1 AND kind IN (0, 1) AND id = ANY($2::text[])",
                      &ids, b->db_ids, err) < 0 ||
        import_lookup(c, a->tenant,
                      "SELECT lower(user_name), pk, true FROM resources "
                      "WHERE tenant_id = $1 AND kind = 0 AND lower(user_name) = ANY($2::text[])",
                      &names, b->db_names, err) < 0)
        goto out;
    rc = 0;
    goto out;
nomem:
    scim_err_nomem(err);
out:
    scim_buf_release(&ids);
    scim_buf_release(&names);
    return rc;
}

/* Rejects the items that clash with a committed resource or an earlier item of the batch
 * (the id first, then the userName, as SQLite), and records the others as accepted. */
static int import_accept(const struct ibatch_args *a, struct ibatch *b, struct scim_err *err)
{
    for (size_t i = 0; i < a->n; i++) {
        struct scim_store_import_item *it = &a->items[i];
        const char *un = it->kind == SCIM_RT_USER ? json_string_value(json_object_get(it->doc, "userName")) : NULL;
        const char *lname = un ? fold(&b->key, un) : NULL;
        if (un && !lname)
            return scim_err_nomem(err);
        if (it->id && (json_object_get(b->db_ids, it->id) || json_object_get(b->bid, it->id)))
            import_reject(it, "id", it->id);
        else if (lname && (json_object_get(b->db_names, lname) || json_object_get(b->bname, lname)))
            import_reject(it, "userName", un);
        else if (json_object_set_new(b->bid, it->new_id, json_integer((json_int_t)i)) < 0 ||
                 (lname && json_object_set_new(b->bname, lname, json_integer((json_int_t)i)) < 0))
            return scim_err_nomem(err);
    }
    return 0;
}

/* Inserts the rows collected in ch into resources and records each pk against its item. */
static int import_flush_resources(struct pconn *c, struct chunk *ch, const struct ibatch_args *a,
                                  struct ibatch *b, struct scim_err *err)
{
    if (!ch->rows)
        return 0;
    PGresult *r = chunk_run(c, ch,
                            "INSERT INTO resources(tenant_id, kind, id, user_name, external_id, display_name, "
                            "active, created, last_modified, version, password_hash, doc) VALUES ",
                            "($1, ?, ?, ?, ?, ?, ?, $2, $2, 1, ?, ?)", " ON CONFLICT DO NOTHING RETURNING pk, id",
                            err);
    if (!r)
        return -1;
    b->rows[0] += PQntuples(r);
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *j = json_object_get(b->bid, PQgetvalue(r, i, 1));
        if (j && (size_t)json_integer_value(j) < a->n)
            b->pk[json_integer_value(j)] = col_i64(r, i, 0);
    }
    PQclear(r);
    return 0;
}

static int import_resources(struct pconn *c, const struct ibatch_args *a, struct ibatch *b, int64_t now,
                            struct scim_err *err)
{
    struct chunk ch = {0};
    int rc = -1;
    if (chunk_init(&ch, 2, 8, err) < 0)
        goto out;
    ch_i64(&ch, -1, a->tenant);
    ch_i64(&ch, -2, now);
    for (size_t i = 0; i < a->n; i++) {
        struct scim_store_import_item *it = &a->items[i];
        if (it->failed)
            continue;
        struct cols k;
        extract_cols(it->kind, it->doc, &k);
        if (!(ch.owned[ch.rows] = json_dumps(it->doc, JSON_COMPACT))) {
            scim_err_nomem(err);
            goto out;
        }
        ch_i64(&ch, 0, (int64_t)it->kind);
        ch_str(&ch, 1, it->new_id);
        ch_str(&ch, 2, k.user_name);
        ch_str(&ch, 3, k.external_id);
        ch_str(&ch, 4, k.display_name);
        ch_str(&ch, 5, bool_text(k.active));
        ch_str(&ch, 6, it->password_hash);
        ch_str(&ch, 7, ch.owned[ch.rows]);
        if (++ch.rows == IMPORT_ROWS && import_flush_resources(c, &ch, a, b, err) < 0)
            goto out;
    }
    if (import_flush_resources(c, &ch, a, b, err) < 0)
        goto out;
    /* not inserted: another writer took the userName or id since the look-up */
    for (size_t i = 0; i < a->n; i++) {
        struct scim_store_import_item *it = &a->items[i];
        const char *un = json_string_value(json_object_get(it->doc, "userName"));
        if (!it->failed && !b->pk[i])
            import_reject(it, it->kind == SCIM_RT_USER && un ? "userName" : "id",
                          it->kind == SCIM_RT_USER && un ? un : it->new_id);
    }
    rc = 0;
out:
    chunk_free(&ch);
    return rc;
}

static int import_emails(struct pconn *c, const struct ibatch_args *a, struct ibatch *b, struct scim_err *err)
{
    static const char head[] = "INSERT INTO emails(resource_pk, tenant_id, value, type, primary_) VALUES ";
    struct chunk ch = {0};
    int rc = -1;
    if (chunk_init(&ch, 1, 4, err) < 0)
        goto out;
    ch_i64(&ch, -1, a->tenant);
    for (size_t i = 0; i < a->n; i++) {
        if (a->items[i].kind != SCIM_RT_USER || !b->pk[i])
            continue;
        size_t j;
        json_t *e;
        json_array_foreach(json_object_get(a->items[i].doc, "emails"), j, e) {
            const char *v = json_string_value(json_object_get(e, "value"));
            json_t *prim = json_object_get(e, "primary");
            if (!v)
                continue;
            ch_i64(&ch, 0, b->pk[i]);
            ch_str(&ch, 1, v);
            ch_str(&ch, 2, json_string_value(json_object_get(e, "type")));
            ch_str(&ch, 3, json_is_boolean(prim) ? (json_is_true(prim) ? "1" : "0") : NULL);
            if (++ch.rows == IMPORT_ROWS && import_run(c, &ch, head, "(?, $1, ?, ?, ?)", "", &b->rows[1], err) < 0)
                goto out;
        }
    }
    if (ch.rows && import_run(c, &ch, head, "(?, $1, ?, ?, ?)", "", &b->rows[1], err) < 0)
        goto out;
    rc = 0;
out:
    chunk_free(&ch);
    return rc;
}

/* The pk a member of group item `gi` names: an earlier item of the batch, else a committed
 * resource (live, by id; by userName); 0 when none. */
static int64_t import_member_pk(const struct ibatch *b, size_t gi, json_t *m, struct scim_buf *key)
{
    const char *v = json_string_value(json_object_get(m, "value"));
    const char *un = json_string_value(json_object_get(m, "userName"));
    const char *k = v ? v : un ? fold(key, un) : NULL;
    if (!k)
        return 0;
    json_t *in_batch = json_object_get(v ? b->bid : b->bname, k);
    if (in_batch)
        return (size_t)json_integer_value(in_batch) < gi ? b->pk[json_integer_value(in_batch)] : 0;
    return json_integer_value(json_object_get(v ? b->db_ids : b->db_names, k));
}

static int import_members(struct pconn *c, const struct ibatch_args *a, struct ibatch *b, struct scim_err *err)
{
    static const char head[] = "INSERT INTO members(group_pk, member_pk, display, origin) VALUES ";
    struct chunk ch = {0};
    int rc = -1;
    if (chunk_init(&ch, 0, 3, err) < 0)
        goto out;
    for (size_t i = 0; i < a->n; i++) {
        struct scim_store_import_item *it = &a->items[i];
        if (it->kind != SCIM_RT_GROUP || !b->pk[i])
            continue;
        size_t j;
        json_t *m;
        json_array_foreach(it->members, j, m) {
            int64_t mpk = import_member_pk(b, i, m, &b->key);
            if (!mpk || mpk == b->pk[i]) {
                it->skipped_members++;
                continue;
            }
            ch_i64(&ch, 0, b->pk[i]);
            ch_i64(&ch, 1, mpk);
            ch_str(&ch, 2, json_string_value(json_object_get(m, "display")));
            /* origin 'scim': as if the IdP had sent them; a member listed twice is kept once */
            if (++ch.rows == IMPORT_ROWS &&
                import_run(c, &ch, head, "(?, ?, ?, 'scim')", " ON CONFLICT DO NOTHING", &b->rows[2], err) < 0)
                goto out;
        }
    }
    if (ch.rows && import_run(c, &ch, head, "(?, ?, ?, 'scim')", " ON CONFLICT DO NOTHING", &b->rows[2], err) < 0)
        goto out;
    rc = 0;
out:
    chunk_free(&ch);
    return rc;
}

static int tx_import_batch(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    const struct ibatch_args *a = arg;
    struct ibatch b = {.db_ids = json_object(), .db_names = json_object(), .bid = json_object(),
                       .bname = json_object(), .pk = calloc(a->n ? a->n : 1, sizeof(int64_t))};
    int rc = -1;
    scim_buf_init(&b.key, 0);
    if (!b.db_ids || !b.db_names || !b.bid || !b.bname || !b.pk) {
        scim_err_nomem(err);
        goto out;
    }
    if (import_prepare(c, a, &b, err) < 0 || import_accept(a, &b, err) < 0 ||
        import_resources(c, a, &b, scim_now_ms_us(), err) < 0 || import_emails(c, a, &b, err) < 0 ||
        import_members(c, a, &b, err) < 0)
        goto out;
    memcpy(((struct ibatch_args *)arg)->rows, b.rows, sizeof(b.rows));
    rc = 0;
out:
    json_decref(b.db_ids);
    json_decref(b.db_names);
    json_decref(b.bid);
    json_decref(b.bname);
    free(b.pk);
    scim_buf_release(&b.key);
    return rc;
}

static int pg_import_batch(struct scim_store *st, int64_t tenant, struct scim_store_import_item *items, size_t n,
                           struct scim_err *err)
{
    if (n == 0)
        return 0;
    struct ibatch_args a = {.tenant = tenant, .items = items, .n = n};
    int rc = run_tx(ps(st), TX_WRITE, tx_import_batch, &a, err);
    if (rc < 0) { /* nothing was written: no item carries a result */
        for (size_t i = 0; i < n; i++) {
            items[i].failed = false;
            items[i].skipped_members = 0;
            scim_err_clear(&items[i].err);
        }
        return rc;
    }
    /* A bulk load outruns autovacuum (it looks once a minute): until a table is analyzed the
     * planner guesses from stale statistics, and every User read (its groups: a recursive query
     * on members) took seconds at 100,000 members. So ANALYZE a table whenever the rows this
     * store imported into it have doubled since its last ANALYZE: a few times per import, not
     * per batch. Per table, because a directory's groups (and so its members) come last. */
    static const char *const analyze_sql[3] = {"ANALYZE resources", "ANALYZE emails", "ANALYZE members"};
    struct pg_store *s = ps(st);
    bool analyze[3];
    pthread_mutex_lock(&s->mu);
    for (int t = 0; t < 3; t++) {
        s->imported[t] += a.rows[t];
        int64_t since = s->imported[t] - s->analyzed_at[t];
        analyze[t] = since >= 1000 && since >= s->analyzed_at[t];
        if (analyze[t])
            s->analyzed_at[t] = s->imported[t];
    }
    pthread_mutex_unlock(&s->mu);
    for (int t = 0; t < 3; t++) {
        struct scim_err ignored;
        scim_err_clear(&ignored);
        if (analyze[t]) /* the batch is committed: a failed ANALYZE costs only plan quality */
            scim_pg_exec(st, analyze_sql[t], &ignored);
    }
    return 0;
}

static const struct scim_store_ops pg_ops = {
    .name = "postgresql",
    .free = pg_free,
    .tenant_default = pg_tenant_default,
    .secret = pg_secret,
    .token_create = pg_token_create,
    .token_find = pg_token_find,
    .token_touch = pg_token_touch,
    .token_list = pg_token_list,
    .token_revoke = pg_token_revoke,
    .token_count = pg_token_count,
    .create = pg_create,
    .get = pg_get,
    .update = pg_update,
    .del = pg_delete,
    .list = pg_list,
    .tenant_create = pg_tenant_create,
    .tenant_get = pg_tenant_get,
    .tenant_list = pg_tenant_list,
    .tenant_update = pg_tenant_update,
    .tenant_delete = pg_tenant_delete,
    .tenant_stats = pg_tenant_stats,
    .create_ex = pg_create_ex,
    .update_ex = pg_update_ex,
    .delete_ex = pg_delete_ex,
    .log_append_batch = pg_log_append_batch,
    .log_query = pg_log_query,
    .log_prune = pg_log_prune,
    .events_list = pg_events_list,
    .events_prune = pg_events_prune,
    .webhook_create = pg_webhook_create,
    .webhook_list = pg_webhook_list,
    .webhook_update = pg_webhook_update,
    .webhook_delete = pg_webhook_delete,
    .webhook_claim = pg_webhook_claim,
    .webhook_progress = pg_webhook_progress,
    .webhook_release_leases = pg_webhook_release_leases,
    .export_rows = pg_export_rows,
    .import_rows = pg_import_rows,
    .import_batch = pg_import_batch,
};

int scim_pg_open(const char *uri, const struct scim_store_opts *opts, struct scim_store **out,
                 struct scim_err *err)
{
    *out = NULL;
    int pool = opts && opts->pool_size > 0 ? opts->pool_size : 8;
    struct pg_store *s = calloc(1, sizeof(*s));
    if (!s)
        return scim_err_nomem(err);
    s->base.ops = &pg_ops;
    s->base.reg = opts ? opts->reg : NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->uri = scim_strdup(uri);
    s->conns = calloc((size_t)pool, sizeof(*s->conns));
    if (!s->uri || !s->conns) {
        pg_free(&s->base);
        return scim_err_nomem(err);
    }
    s->n_conns = pool;
    /* one connection now: fail early on a bad URI, and migrate; the rest open on demand */
    if (conn_open(s, &s->conns[0], err) < 0 || migrate(&s->conns[0], err) < 0) {
        pg_free(&s->base);
        return -1;
    }
    *out = &s->base;
    return 0;
}
