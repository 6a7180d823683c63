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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
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
    S_COUNT
};

#define RES_COLS "pk, id, created, last_modified, version, doc::text"

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
                     "display_name, active, created, last_modified, version, password_hash, doc) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11) RETURNING pk",
    [S_RES_GET] = "SELECT " RES_COLS " FROM resources WHERE tenant_id = $1 AND kind = $2 AND id = $3",
    [S_RES_GET_LOCK] = "SELECT " RES_COLS " FROM resources "
                       "WHERE tenant_id = $1 AND kind = $2 AND id = $3 FOR UPDATE",
    [S_RES_UPDATE_DOC] = "UPDATE resources SET user_name = $1, external_id = $2, display_name = $3, "
                         "active = $4, doc = $5, password_hash = coalesce($6, password_hash), "
                         "version = version + 1, last_modified = $7 WHERE pk = $8 AND version = $9",
    [S_RES_BUMP] = "UPDATE resources SET password_hash = coalesce($1, password_hash), "
                   "version = version + 1, last_modified = $2 WHERE pk = $3 AND version = $4",
    [S_RES_DELETE] = "DELETE FROM resources WHERE pk = $1",
    [S_RES_PK] = "SELECT pk FROM resources WHERE tenant_id = $1 AND kind IN (0, 1) AND id = $2",
    [S_EMAILS_DELETE] = "DELETE FROM emails WHERE resource_pk = $1",
    [S_EMAILS_INSERT] = "INSERT INTO emails(resource_pk, tenant_id, value, type, primary_) "
                        "VALUES ($1, $2, $3, $4, $5)",
    [S_MEMBER_INSERT] = "INSERT INTO members(group_pk, member_pk, display) VALUES ($1, $2, $3) "
                        "ON CONFLICT (group_pk, member_pk) DO NOTHING",
    [S_MEMBER_DELETE] = "DELETE FROM members WHERE group_pk = $1 AND member_pk = "
                        "(SELECT pk FROM resources WHERE tenant_id = $2 AND kind IN (0, 1) AND id = $3)",
    [S_MEMBERS_CLEAR] = "DELETE FROM members WHERE group_pk = $1",
    [S_MEMBERS_OF] = "SELECT x.id, x.kind, coalesce(mb.display, x.display_name, x.user_name) "
                     "FROM members mb JOIN resources x ON x.pk = mb.member_pk "
                     "WHERE mb.group_pk = $1 ORDER BY mb.seq",
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
};

static struct pg_store *ps(struct scim_store *st)
{
    return (struct pg_store *)st;
}

/* ---- parameters ------------------------------------------------------------------------ */

#define MAX_PARAMS 12

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

struct row {
    int64_t pk;
    char id[40];
    int64_t created, last_modified, version;
};

static void row_from(const PGresult *r, int i, struct row *out)
{
    out->pk = col_i64(r, i, 0);
    snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(r, i, 1));
    out->created = col_i64(r, i, 2);
    out->last_modified = col_i64(r, i, 3);
    out->version = col_i64(r, i, 4);
}

/* members (groups) or groups (users) of `pk` as a JSON array set into obj[key]. */
static int load_refs(struct pconn *c, enum stmt_id id, int64_t pk, json_t *obj, struct scim_err *err)
{
    struct params p = {0};
    p_i64(&p, pk);
    PGresult *r = run(c, id, &p, err);
    if (!r)
        return -1;
    bool members = id == S_MEMBERS_OF;
    json_t *arr = json_array();
    if (!arr || json_object_set_new(obj, members ? "members" : "groups", arr) < 0)
        goto nomem;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *type, *disp;
        if (members) {
            type = strcmp(PQgetvalue(r, i, 1), "0") == 0 ? "User" : "Group";
            disp = col_text(r, i, 2);
        } else {
            type = strcmp(PQgetvalue(r, i, 2), "t") == 0 ? "direct" : "indirect";
            disp = col_text(r, i, 1);
        }
        json_t *m = json_pack("{s:s, s:s}", "value", PQgetvalue(r, i, 0), "type", type);
        if (!m || (disp && json_object_set_new(m, "display", json_string(disp)) < 0) ||
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
static int build_resource(struct pconn *c, enum scim_rtype kind, const struct row *r,
                          const char *doc_text, unsigned flags, json_t **out, struct scim_err *err)
{
    json_error_t jerr;
    json_t *doc = json_loads(doc_text, 0, &jerr);
    json_t *obj = json_object();
    json_t *schemas = json_array();
    char created[SCIM_DATETIME_LEN], modified[SCIM_DATETIME_LEN], version[32];
    int rc = -1;
    if (!doc || !json_is_object(doc)) {
        scim_err_internal(err, "postgresql: stored doc of %s is not a JSON object", r->id);
        goto out;
    }
    if (!obj || !schemas)
        goto nomem;
    if (json_array_append_new(schemas, json_string(kind == SCIM_RT_USER ? SCIM_SCHEMA_USER
                                                                        : SCIM_SCHEMA_GROUP)) < 0)
        goto nomem;
    const char *key;
    json_t *val;
    json_object_foreach(doc, key, val) {
        if (strncmp(key, "urn:", 4) == 0 && json_array_append_new(schemas, json_string(key)) < 0)
            goto nomem;
    }
    if (json_object_set(obj, "schemas", schemas) < 0 || json_object_set_new(obj, "id", json_string(r->id)) < 0 ||
        json_object_update(obj, doc) < 0)
        goto nomem;
    scim_datetime_format(r->created, created);
    scim_datetime_format(r->last_modified, modified);
    snprintf(version, sizeof(version), "W/\"%lld\"", (long long)r->version);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:s}", "resourceType", kind == SCIM_RT_USER ? "User" : "Group",
                             "created", created, "lastModified", modified, "version", version);
    if (!meta || json_object_set_new(obj, "meta", meta) < 0)
        goto nomem;
    if (kind == SCIM_RT_GROUP && (flags & (SCIM_STORE_MEMBERS | SCIM_STORE_LOAD_MEMBERS)) &&
        load_refs(c, S_MEMBERS_OF, r->pk, obj, err) < 0)
        goto out;
    if (kind == SCIM_RT_USER && (flags & SCIM_STORE_GROUPS) && load_refs(c, S_GROUPS_OF, r->pk, obj, err) < 0)
        goto out;
    *out = obj;
    obj = NULL;
    rc = 0;
    goto out;
nomem:
    scim_err_nomem(err);
out:
    json_decref(doc);
    json_decref(obj);
    json_decref(schemas);
    return rc;
}

static const char *kind_name(enum scim_rtype kind)
{
    return kind == SCIM_RT_USER ? "User" : "Group";
}

/* Reads (and with `lock`, locks until the end of the transaction) a resource and builds it:
 * 0 with *out, or -1 (404 when absent). */
static int get_resource(struct pconn *c, int64_t tenant, enum scim_rtype kind, const char *id,
                        unsigned flags, bool lock, json_t **out, struct row *r_out, struct scim_err *err)
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
        return scim_err_set(err, 404, NULL, "%s \"%s\" not found", kind_name(kind), id);
    }
    struct row row;
    row_from(r, 0, &row);
    int rc = out ? build_resource(c, kind, &row, PQgetvalue(r, 0, 5), flags, out, err) : 0;
    PQclear(r);
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

/* pk of a resource of either kind: 1 found, 0 absent, -1 error. */
static int lookup_pk(struct pconn *c, int64_t tenant, const char *id, int64_t *pk, struct scim_err *err)
{
    struct params p = {0};
    p_i64(&p, tenant);
    p_str(&p, id);
    PGresult *r = run(c, S_RES_PK, &p, err);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found)
        *pk = col_i64(r, 0, 0);
    PQclear(r);
    return found;
}

/* Adds members one row each (INSERT ... ON CONFLICT DO NOTHING, no rewrite of the list):
 * unknown ids and the group itself are skipped and counted. */
static int add_members(struct pconn *c, int64_t tenant, int64_t group_pk, json_t *members,
                       int *skipped, struct scim_err *err)
{
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *v = json_is_string(m) ? json_string_value(m)
                                          : json_string_value(json_object_get(m, "value"));
        int64_t mpk = 0;
        int found = v ? lookup_pk(c, tenant, v, &mpk, err) : 0;
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
        if (run_cmd(c, S_MEMBER_INSERT, &p, NULL, err) < 0)
            return -1;
    }
    return 0;
}

static int remove_members(struct pconn *c, int64_t tenant, int64_t group_pk, json_t *ids,
                          struct scim_err *err)
{
    size_t i;
    json_t *m;
    json_array_foreach(ids, i, m) {
        const char *v = json_is_string(m) ? json_string_value(m)
                                          : json_string_value(json_object_get(m, "value"));
        if (!v)
            continue;
        struct params p = {0};
        p_i64(&p, group_pk);
        p_i64(&p, tenant);
        p_str(&p, v);
        if (run_cmd(c, S_MEMBER_DELETE, &p, NULL, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- create ------------------------------------------------------------------------- */

struct create_args {
    int64_t tenant;
    enum scim_rtype kind;
    json_t *doc, *members;
    const char *doc_text, *password_hash;
    unsigned flags;
    json_t *out;
    int skipped;
};

static int tx_create(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct create_args *a = arg;
    char id[37];
    struct cols k;
    extract_cols(a->kind, a->doc, &k);
    a->skipped = 0;
    if (scim_uuid4(id) < 0)
        return scim_err_internal(err, "postgresql: no randomness for a new id");
    int64_t now = scim_now_ms_us();
    struct params p = {0};
    p_i64(&p, a->tenant);
    p_i64(&p, (int64_t)a->kind);
    p_str(&p, id);
    p_str(&p, k.user_name);
    p_str(&p, k.external_id);
    p_str(&p, k.display_name);
    p_str(&p, bool_text(k.active));
    p_i64(&p, now);
    p_i64(&p, now);
    p_str(&p, a->password_hash);
    p_str(&p, a->doc_text);
    PGresult *r = run(c, S_RES_INSERT, &p, err);
    if (!r) {
        write_fail(c, &k, err);
        return -1;
    }
    int64_t pk = col_i64(r, 0, 0);
    PQclear(r);
    if (a->kind == SCIM_RT_USER && sync_emails(c, a->tenant, pk, a->doc, false, err) < 0)
        return -1;
    if (a->kind == SCIM_RT_GROUP && a->members &&
        add_members(c, a->tenant, pk, a->members, &a->skipped, err) < 0)
        return -1;
    json_t *out = NULL;
    if (!(a->flags & SCIM_STORE_NO_OUTPUT) &&
        get_resource(c, a->tenant, a->kind, id, a->flags, false, &out, NULL, err) < 0)
        return -1;
    json_decref(a->out); /* an earlier attempt's output */
    a->out = out;
    return 0;
}

static int pg_create(struct scim_store *st, int64_t tenant, enum scim_rtype kind, json_t *doc,
                     json_t *members, const char *password_hash, unsigned flags, json_t **out,
                     int *skipped_members, struct scim_err *err)
{
    char *doc_text = json_dumps(doc, JSON_COMPACT);
    if (!doc_text)
        return scim_err_nomem(err);
    struct create_args a = {.tenant = tenant, .kind = kind, .doc = doc, .members = members,
                            .doc_text = doc_text, .password_hash = password_hash, .flags = flags};
    int rc = run_tx(ps(st), TX_WRITE, tx_create, &a, err);
    free(doc_text);
    if (rc < 0) {
        json_decref(a.out);
        return -1;
    }
    if (out)
        *out = a.out;
    else
        json_decref(a.out);
    if (skipped_members)
        *skipped_members = a.skipped;
    return 0;
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
    json_t *out;
};

static bool nonempty(json_t *a)
{
    return json_is_array(a) && json_array_size(a) > 0;
}

static int apply_change(struct pconn *c, struct update_args *a, const struct row *r,
                        struct scim_store_change *chg, struct scim_err *err)
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
        extract_cols(a->kind, chg->doc, &k);
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
    if (chg->doc && a->kind == SCIM_RT_USER && sync_emails(c, a->tenant, r->pk, chg->doc, true, err) < 0)
        goto out;
    if (a->kind == SCIM_RT_GROUP) {
        if (chg->members_clear) {
            memset(&p, 0, sizeof(p));
            p_i64(&p, r->pk);
            if (run_cmd(c, S_MEMBERS_CLEAR, &p, NULL, err) < 0)
                goto out;
        }
        if (chg->members_remove && remove_members(c, a->tenant, r->pk, chg->members_remove, err) < 0)
            goto out;
        chg->skipped_members = 0;
        if (chg->members_add &&
            add_members(c, a->tenant, r->pk, chg->members_add, &chg->skipped_members, err) < 0)
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
    struct scim_store_change chg = {0};
    json_t *current = NULL, *out = NULL;
    struct row r;
    int rc = -1;
    unsigned load = a->flags & (SCIM_STORE_LOAD_MEMBERS | SCIM_STORE_GROUPS);
    if (get_resource(c, a->tenant, a->kind, a->id, load, true, &current, &r, err) < 0)
        goto out;
    if (a->fn(a->ctx, current, &chg, err) < 0)
        goto out;
    bool members_changed = a->kind == SCIM_RT_GROUP &&
                           (chg.members_clear || nonempty(chg.members_add) || nonempty(chg.members_remove));
    if ((chg.modified || members_changed) && apply_change(c, a, &r, &chg, err) < 0)
        goto out;
    if (!(a->flags & SCIM_STORE_NO_OUTPUT) &&
        get_resource(c, a->tenant, a->kind, a->id, a->flags & ~SCIM_STORE_LOAD_MEMBERS, false, &out, NULL,
                     err) < 0)
        goto out;
    json_decref(a->out);
    a->out = out;
    out = NULL;
    rc = 0;
out:
    json_decref(chg.doc);
    json_decref(current);
    json_decref(out);
    return rc;
}

static int pg_update(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                     unsigned flags, scim_store_update_fn fn, void *ctx, json_t **out,
                     struct scim_err *err)
{
    struct update_args a = {.tenant = tenant, .kind = kind, .id = id, .flags = flags, .fn = fn, .ctx = ctx};
    if (run_tx(ps(st), TX_WRITE, tx_update, &a, err) < 0) {
        json_decref(a.out);
        return -1;
    }
    if (out)
        *out = a.out;
    else
        json_decref(a.out);
    return 0;
}

/* ---- delete ------------------------------------------------------------------------- */

struct delete_args {
    int64_t tenant;
    enum scim_rtype kind;
    const char *id;
    int64_t expected_version;
};

static int tx_delete(struct pg_store *s, struct pconn *c, void *arg, struct scim_err *err)
{
    (void)s;
    struct delete_args *a = arg;
    struct row r;
    if (get_resource(c, a->tenant, a->kind, a->id, 0, true, NULL, &r, err) < 0)
        return -1;
    if (a->expected_version >= 0 && a->expected_version != r.version)
        return scim_err_set(err, 412, NULL, "version mismatch");
    /* the groups that lose this member change too */
    struct params p = {0};
    p_i64(&p, scim_now_ms_us());
    p_i64(&p, r.pk);
    if (run_cmd(c, S_BUMP_GROUPS_OF, &p, NULL, err) < 0)
        return -1;
    memset(&p, 0, sizeof(p));
    p_i64(&p, r.pk); /* emails and memberships go by ON DELETE CASCADE */
    return run_cmd(c, S_RES_DELETE, &p, NULL, err);
}

static int pg_delete(struct scim_store *st, int64_t tenant, enum scim_rtype kind, const char *id,
                     int64_t expected_version, struct scim_err *err)
{
    struct delete_args a = {.tenant = tenant, .kind = kind, .id = id, .expected_version = expected_version};
    return run_tx(ps(st), TX_WRITE, tx_delete, &a, err);
}

/* ---- list ---------------------------------------------------------------------------- */

/* The WHERE clause ($1 = tenant, filter values from $2) and ORDER BY of a list query. */
static int list_sql(struct scim_store *st, int64_t tenant, enum scim_rtype kind,
                    const struct scim_store_query *q, struct scim_sql_frag *where,
                    struct scim_buf *order, struct scim_err *err)
{
    /* kind as a literal: the partial userName index (WHERE kind = 0) then applies */
    if (scim_buf_printf(&where->sql, "r.tenant_id = $1 AND r.kind = %d", (int)kind) < 0)
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
    if (!arr || dyn_params_make(&d, a->tenant, a->frag, extra, 0) < 0 ||
        scim_buf_printf(&sql, "SELECT count(*) FROM resources r WHERE %s", a->where) < 0) {
        scim_err_nomem(err);
        goto out;
    }
    if (!(r = run_dyn(c, scim_buf_str(&sql), &d, err)))
        goto out;
    int64_t total = col_i64(r, 0, 0);
    PQclear(r);
    r = NULL;
    const struct scim_store_query *q = a->q;
    bool back = q->cursor_mode && q->before_pk > 0;
    int64_t first_pk = 0, last_pk = 0;
    bool more = false;
    if (q->count > 0 && (q->cursor_mode || total >= q->start_index)) {
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
            struct row row;
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
    if (!(r = run_text(c, "DELETE FROM tokens WHERE tenant_id = $1", &p, err)))
        return -1;
    PQclear(r);
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

static const struct scim_store_ops pg_ops = {
    .name = "postgresql",
    .free = pg_free,
    .tenant_default = pg_tenant_default,
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
    /* create_ex/update_ex/delete_ex (policies) are not implemented yet: store.c serves the
     * requests that ask for no policy through the plain calls and answers 501 otherwise */
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
