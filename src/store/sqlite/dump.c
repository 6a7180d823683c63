/* The SQLite side of scimctl db export / db import (store.h): rows to records and back. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "store/sqlite/sqlite_feed.h"

static int fail(sqlite3 *db, struct scim_err *err, const char *what)
{
    return scim_err_internal(err, "sqlite %s: %s (%d)", what, sqlite3_errmsg(db),
                             sqlite3_extended_errcode(db));
}

/* ---- export ------------------------------------------------------------------------------ */

struct export_ctx {
    scim_store_export_fn fn;
    void *ctx;
};

static json_t *col_json(sqlite3_stmt *q, int i)
{
    switch (sqlite3_column_type(q, i)) {
    case SQLITE_NULL:
        return json_null();
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(q, i));
    default:
        return json_string((const char *)sqlite3_column_text(q, i));
    }
}

/* One query, one record per row: `cols` names the columns in order; a name ending in '?' is a
 * 0/1 column exported as a boolean, in '#' a blob exported as hex, in '{' JSON text exported
 * as an object, in '~' a kind (0 User, 1 Group). */
static int export_query(sqlite3 *db, const char *type, const char *sql, const char *const *cols,
                        struct export_ctx *x, struct scim_err *err)
{
    sqlite3_stmt *q = NULL;
    int step, rc = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return fail(db, err, "export prepare");
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *rec = json_pack("{s:s}", "type", type);
        if (!rec)
            goto nomem;
        for (int i = 0; cols[i]; i++) {
            char name[32];
            size_t len = strlen(cols[i]);
            char mark = cols[i][len - 1];
            json_t *v;
            snprintf(name, sizeof name, "%.*s", (int)(strchr("?#{~", mark) ? len - 1 : len), cols[i]);
            if (mark == '?') {
                v = json_boolean(sqlite3_column_int(q, i) != 0);
            } else if (mark == '#') {
                char hex[65] = "";
                if (sqlite3_column_bytes(q, i) == 32)
                    scim_hex(sqlite3_column_blob(q, i), 32, hex);
                v = json_string(hex);
            } else if (mark == '{') {
                json_error_t je;
                v = json_loads((const char *)sqlite3_column_text(q, i), 0, &je);
            } else if (mark == '~') {
                v = json_string(sqlite3_column_int(q, i) == 0 ? "User" : "Group");
            } else {
                v = col_json(q, i);
            }
            if (!v || json_object_set_new(rec, name, v) < 0) {
                json_decref(rec);
                goto nomem;
            }
        }
        int frc = x->fn(x->ctx, rec, err);
        json_decref(rec);
        if (frc != 0) {
            rc = frc;
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        fail(db, err, "export");
        goto out;
    }
    rc = 0;
    goto out;
nomem:
    scim_err_nomem(err);
out:
    sqlite3_finalize(q);
    return rc;
}

static int export_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    static const char *const tenant_cols[] = {"id", "name", "created", "disabled?", "settings", NULL};
    static const char *const token_cols[] = {"id", "tenant_id", "name", "hash#", "scopes", "created",
                                             "last_used", "expires", "revoked", NULL};
    static const char *const res_cols[] = {"pk", "tenant_id", "kind~", "id", "created", "last_modified",
                                           "version", "password_hash", "doc{", "origin", "managed_by",
                                           "deprovisioned?", NULL};
    static const char *const member_cols[] = {"group_pk", "member_pk", "display", "origin", NULL};
    int rc;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) /* one snapshot */
        return fail(db, err, "begin");
    if ((rc = export_query(db, "tenant", "SELECT id, name, created, disabled, settings FROM tenants ORDER BY id",
                           tenant_cols, vctx, err)) != 0 ||
        (rc = export_query(db, "token",
                           "SELECT id, tenant_id, name, hash, scopes, created, last_used, expires, revoked "
                           "FROM tokens ORDER BY id",
                           token_cols, vctx, err)) != 0 ||
        (rc = export_query(db, "resource",
                           "SELECT pk, tenant_id, kind, id, created, last_modified, version, password_hash, "
                           "doc, origin, managed_by, deprovisioned FROM resources ORDER BY pk",
                           res_cols, vctx, err)) != 0 ||
        (rc = export_query(db, "member", "SELECT group_pk, member_pk, display, origin FROM members ORDER BY seq",
                           member_cols, vctx, err)) != 0)
        return rc;
    return 0; /* the pool rolls the read transaction back */
}

int scim_sqlite_export_rows(struct scim_store *st, scim_store_export_fn fn, void *ctx,
                            struct scim_err *err)
{
    struct export_ctx x = {fn, ctx};
    return scim_sqlite_with_conn(st, false, export_fn, &x, err);
}

/* ---- import ------------------------------------------------------------------------------ */

static void bind_json(sqlite3_stmt *q, int i, json_t *v)
{
    if (json_is_integer(v))
        sqlite3_bind_int64(q, i, json_integer_value(v));
    else if (json_is_boolean(v))
        sqlite3_bind_int(q, i, json_is_true(v));
    else if (json_is_string(v))
        sqlite3_bind_text(q, i, json_string_value(v), -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

/* Runs `sql` with the members `keys` of rec bound in order ('#' suffix: hex to blob). */
static int import_row(sqlite3 *db, const char *sql, json_t *rec, const char *const *keys,
                      struct scim_err *err)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return fail(db, err, "import prepare");
    for (int i = 0; keys[i]; i++) {
        size_t len = strlen(keys[i]);
        if (keys[i][len - 1] == '#') {
            char name[32];
            unsigned char bin[32];
            snprintf(name, sizeof name, "%.*s", (int)len - 1, keys[i]);
            const char *hex = json_string_value(json_object_get(rec, name));
            for (size_t k = 0; k < 32; k++) {
                unsigned v = 0;
                sscanf(hex + 2 * k, "%2x", &v);
                bin[k] = (unsigned char)v;
            }
            sqlite3_bind_blob(q, i + 1, bin, 32, SQLITE_TRANSIENT);
        } else {
            bind_json(q, i + 1, json_object_get(rec, keys[i]));
        }
    }
    int step = sqlite3_step(q);
    sqlite3_finalize(q);
    return step == SQLITE_DONE ? 0 : fail(db, err, "import");
}

static int64_t count_of(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
}

static int import_resource(sqlite3 *db, json_t *rec, struct scim_err *err)
{
    json_t *doc = json_object_get(rec, "doc");
    bool user = strcmp(json_string_value(json_object_get(rec, "kind")), "User") == 0;
    char *text = json_dumps(doc, JSON_COMPACT);
    json_t *a = json_object_get(doc, "active");
    sqlite3_stmt *q = NULL;
    int rc = -1;
    if (!text)
        return scim_err_nomem(err);
    /* the indexed columns come from the doc, as on every write */
    if (sqlite3_prepare_v2(db, "INSERT INTO resources(pk, tenant_id, kind, id, user_name, external_id, "
                               "display_name, active, created, last_modified, version, password_hash, doc, "
                               "origin, managed_by, deprovisioned) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                               "?, ?, ?, ?, ?)", -1, &q, NULL) != SQLITE_OK) {
        fail(db, err, "import prepare");
        goto out;
    }
    bind_json(q, 1, json_object_get(rec, "pk"));
    bind_json(q, 2, json_object_get(rec, "tenant_id"));
    sqlite3_bind_int(q, 3, user ? 0 : 1);
    bind_json(q, 4, json_object_get(rec, "id"));
    bind_json(q, 5, user ? json_object_get(doc, "userName") : NULL);
    bind_json(q, 6, json_object_get(doc, "externalId"));
    bind_json(q, 7, json_object_get(doc, "displayName"));
    bind_json(q, 8, json_is_boolean(a) ? a : NULL);
    bind_json(q, 9, json_object_get(rec, "created"));
    bind_json(q, 10, json_object_get(rec, "last_modified"));
    bind_json(q, 11, json_object_get(rec, "version"));
    bind_json(q, 12, json_object_get(rec, "password_hash"));
    sqlite3_bind_text(q, 13, text, -1, SQLITE_STATIC);
    bind_json(q, 14, json_object_get(rec, "origin"));
    bind_json(q, 15, json_object_get(rec, "managed_by"));
    bind_json(q, 16, json_object_get(rec, "deprovisioned"));
    if (sqlite3_step(q) != SQLITE_DONE) {
        fail(db, err, "import resource");
        goto out;
    }
    sqlite3_finalize(q);
    q = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "emails"), i, e) {
        json_t *v = json_object_get(e, "value"), *prim = json_object_get(e, "primary");
        if (!json_is_string(v))
            continue;
        if (sqlite3_prepare_v2(db, "INSERT INTO emails(resource_pk, tenant_id, value, type, primary_) "
                                   "VALUES (?, ?, ?, ?, ?)", -1, &q, NULL) != SQLITE_OK) {
            fail(db, err, "import prepare");
            goto out;
        }
        bind_json(q, 1, json_object_get(rec, "pk"));
        bind_json(q, 2, json_object_get(rec, "tenant_id"));
        bind_json(q, 3, v);
        bind_json(q, 4, json_is_string(json_object_get(e, "type")) ? json_object_get(e, "type") : NULL);
        bind_json(q, 5, json_is_boolean(prim) ? prim : NULL);
        int step = sqlite3_step(q);
        sqlite3_finalize(q);
        q = NULL;
        if (step != SQLITE_DONE) {
            fail(db, err, "import e-mail");
            goto out;
        }
    }
    rc = 0;
out:
    sqlite3_finalize(q);
    free(text);
    return rc;
}

static int import_fn(sqlite3 *db, void *vctx, struct scim_err *err)
{
    static const char *const tenant_keys[] = {"id", "name", "created", "disabled", "settings", NULL};
    static const char *const token_keys[] = {"id", "tenant_id", "name", "hash#", "scopes", "created",
                                             "last_used", "expires", "revoked", NULL};
    static const char *const member_keys[] = {"group_pk", "member_pk", "display", "origin", NULL};
    json_t *records = vctx, *rec;
    size_t i;
    if (count_of(db, "SELECT (SELECT count(*) FROM resources) + (SELECT count(*) FROM tokens) + "
                     "(SELECT count(*) FROM webhooks)") != 0)
        return scim_err_set(err, 409, NULL,
                            "the database is not empty (it has users, groups, tokens or webhooks)");
    if (sqlite3_exec(db, "DELETE FROM tenants", NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, err, "import");
    json_array_foreach(records, i, rec) {
        const char *type = json_string_value(json_object_get(rec, "type"));
        int rc;
        if (strcmp(type, "tenant") == 0)
            rc = import_row(db, "INSERT INTO tenants(id, name, created, disabled, settings) VALUES (?, ?, ?, ?, ?)",
                            rec, tenant_keys, err);
        else if (strcmp(type, "token") == 0)
            rc = import_row(db, "INSERT INTO tokens(id, tenant_id, name, hash, scopes, created, last_used, "
                                "expires, revoked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            rec, token_keys, err);
        else if (strcmp(type, "resource") == 0)
            rc = import_resource(db, rec, err);
        else
            rc = import_row(db, "INSERT INTO members(group_pk, member_pk, display, origin) VALUES (?, ?, ?, ?)",
                            rec, member_keys, err);
        if (rc < 0) {
            char log[SCIM_ERR_DETAIL_MAX];
            snprintf(log, sizeof log, "%s", err->log);
            scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "record %zu (%s) cannot be imported", i + 1, type);
            return scim_err_log(err, "%s", log);
        }
    }
    return 0;
}

int scim_sqlite_import_rows(struct scim_store *st, json_t *records, struct scim_err *err)
{
    return scim_sqlite_with_conn(st, true, import_fn, records, err);
}
