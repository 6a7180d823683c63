/* Store dispatch: picks a backend from the URI and forwards each call through its ops table.
 * Checks that do not depend on the backend (NULL arguments, paging bounds) are made here once. */
#include "store/store_impl.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonalloc.h"
#include "common/util.h"

int scim_store_open(const char *uri, const struct scim_store_opts *opts, struct scim_store **out,
                    struct scim_err *err)
{
    *out = NULL;
    if (!uri || !*uri)
        return scim_err_internal(err, "store: empty database URI");
    if (strncmp(uri, "postgresql:", 11) == 0 || strncmp(uri, "postgres:", 9) == 0) {
        if (scim_pg_open(uri, opts, out, err) < 0)
            return -1;
    } else {
        const char *path = uri;
        if (strncmp(uri, "sqlite:", 7) == 0)
            path = uri + 7;
        if (!*path)
            return scim_err_internal(err, "store: empty SQLite path in \"%s\"", uri);
        if (scim_sqlite_open(path, opts, out, err) < 0)
            return -1;
    }
    if (!((*out)->notify = scim_event_notify_new())) {
        scim_store_free(out);
        return scim_err_nomem(err);
    }
    return 0;
}

void scim_store_free(struct scim_store **st)
{
    if (!st || !*st)
        return;
    scim_event_notify_free((*st)->notify);
    (*st)->ops->free(*st);
    *st = NULL;
}

const char *scim_store_backend(const struct scim_store *st)
{
    return st->ops->name;
}

int scim_store_tenant_default(struct scim_store *st, int64_t *tenant_id, struct scim_err *err)
{
    return st->ops->tenant_default(st, tenant_id, err);
}

int scim_store_secret(struct scim_store *st, const char *name, unsigned char out[32],
                      struct scim_err *err)
{
    unsigned char candidate[32];
    int rc;

    if (scim_random_bytes(candidate, sizeof candidate))
        return scim_err_internal(err, "no randomness for secret %s", name);
    if (!st->ops->secret) {
        /* A backend without shared secrets: a per-process one still works for one node. */
        memcpy(out, candidate, sizeof candidate);
        return 0;
    }
    rc = st->ops->secret(st, name, candidate, out, err);
    OPENSSL_cleanse(candidate, sizeof candidate);
    return rc;
}

int scim_store_token_create(struct scim_store *st, int64_t tenant_id, const char *name,
                            const unsigned char hash[32], const char *scopes, int64_t expires_us,
                            struct scim_err *err)
{
    if (!name || !*name || strlen(name) >= sizeof(((struct scim_token *)0)->name))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "token name must be 1 to 127 bytes");
    if (!scopes || strlen(scopes) >= sizeof(((struct scim_token *)0)->scopes))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "token scopes too long");
    return st->ops->token_create(st, tenant_id, name, hash, scopes, expires_us, err);
}

int scim_store_token_find(struct scim_store *st, const unsigned char hash[32], int64_t now_us,
                          struct scim_token *out, struct scim_err *err)
{
    return st->ops->token_find(st, hash, now_us, out, err);
}

int scim_store_token_touch(struct scim_store *st, int64_t token_id, int64_t now_us,
                           struct scim_err *err)
{
    return st->ops->token_touch(st, token_id, now_us, err);
}

int scim_store_token_list(struct scim_store *st, int64_t tenant_id, json_t **out,
                          struct scim_err *err)
{
    *out = NULL;
    return st->ops->token_list(st, tenant_id, out, err);
}

int scim_store_token_revoke(struct scim_store *st, int64_t tenant_id, const char *name,
                            struct scim_err *err)
{
    return st->ops->token_revoke(st, tenant_id, name, err);
}

int scim_store_token_count(struct scim_store *st, int64_t tenant_id, int64_t *n,
                           struct scim_err *err)
{
    return st->ops->token_count(st, tenant_id, n, err);
}

int scim_store_create(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind, json_t *doc,
                      json_t *members, const char *password_hash, unsigned flags, json_t **out,
                      int *skipped_members, struct scim_err *err)
{
    if (out)
        *out = NULL;
    if (skipped_members)
        *skipped_members = 0;
    if (!json_is_object(doc))
        return scim_err_internal(err, "store: create without a doc object");
    if (members && !json_is_array(members))
        return scim_err_internal(err, "store: members is not an array");
    if (!out)
        flags |= SCIM_STORE_NO_OUTPUT;
    /* A doc built while jansson was out of memory may be missing parts: never store it. */
    if (scim_json_oom())
        return scim_err_nomem(err);
    return st->ops->create(st, tenant_id, kind, doc, members, password_hash, flags, out,
                           skipped_members, err);
}

int scim_store_get(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind, const char *id,
                   unsigned flags, json_t **out, struct scim_err *err)
{
    *out = NULL;
    if (!id)
        return scim_err_set(err, 404, NULL, "resource not found");
    return st->ops->get(st, tenant_id, kind, id, flags, out, err);
}

struct update_guard {
    scim_store_update_fn fn;
    void *ctx;
};

/* Runs the caller's update callback, then refuses the change (rolling back) when a jansson
 * allocation failed meanwhile: the new doc may be missing parts. */
static int guarded_update(void *ctx, json_t *current, struct scim_store_change *chg,
                          struct scim_err *err)
{
    struct update_guard *g = ctx;
    if (g->fn(g->ctx, current, chg, err))
        return -1;
    if (scim_json_oom())
        return scim_err_nomem(err);
    return 0;
}

int scim_store_update(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                      const char *id, unsigned flags, scim_store_update_fn fn, void *ctx,
                      json_t **out, struct scim_err *err)
{
    struct update_guard g = {fn, ctx};

    if (out)
        *out = NULL;
    if (!out)
        flags |= SCIM_STORE_NO_OUTPUT;
    if (!id)
        return scim_err_set(err, 404, NULL, "resource not found");
    return st->ops->update(st, tenant_id, kind, id, flags, guarded_update, &g, out, err);
}

int scim_store_delete(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                      const char *id, int64_t expected_version, struct scim_err *err)
{
    if (!id)
        return scim_err_set(err, 404, NULL, "resource not found");
    return st->ops->del(st, tenant_id, kind, id, expected_version, err);
}

int scim_store_list(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                    const struct scim_store_query *q, struct scim_store_page *out,
                    struct scim_err *err)
{
    out->total = 0;
    out->resources = NULL;
    out->first_pk = out->last_pk = 0;
    out->more = false;
    if (q->start_index < 1 || q->count < 0)
        return scim_err_internal(err, "store: bad paging (startIndex %lld, count %lld)",
                                 (long long)q->start_index, (long long)q->count);
    return st->ops->list(st, tenant_id, kind, q, out, err);
}

int64_t scim_store_etag_version(const char *etag)
{
    if (!etag)
        return -1;
    if (etag[0] == 'W' && etag[1] == '/')
        etag += 2;
    size_t len = strlen(etag);
    if (len < 3 || etag[0] != '"' || etag[len - 1] != '"')
        return -1;
    char num[24];
    if (len - 2 >= sizeof(num))
        return -1;
    memcpy(num, etag + 1, len - 2);
    num[len - 2] = '\0';
    if (num[0] < '0' || num[0] > '9')
        return -1;
    int64_t v;
    if (scim_parse_i64(num, &v) != 0 || v < 0)
        return -1;
    return v;
}

int scim_store_import_batch(struct scim_store *st, int64_t tenant_id, struct scim_store_import_item *items,
                      size_t n, struct scim_err *err)
{
    for (size_t i = 0; i < n; i++) {
        items[i].new_id[0] = '\0';
        items[i].skipped_members = 0;
        items[i].failed = false;
        scim_err_clear(&items[i].err);
        if (!json_is_object(items[i].doc))
            return scim_err_internal(err, "store: import item %zu without a doc object", i);
        if (items[i].members && !json_is_array(items[i].members))
            return scim_err_internal(err, "store: import item %zu: members is not an array", i);
        if (items[i].id && (!*items[i].id || strlen(items[i].id) >= sizeof(items[i].new_id)))
            return scim_err_internal(err, "store: import item %zu: bad id", i);
    }
    if (!st->ops->import_batch)
        return scim_err_set(err, 501, NULL, "bulk import is not supported by the %s backend",
                            st->ops->name);
    return st->ops->import_batch(st, tenant_id, items, n, err);
}

/* --- tenants and policies ------------------------------------------------------------------ */

static int not_supported(struct scim_store *st, struct scim_err *err)
{
    return scim_err_set(err, 501, NULL, "this operation is not supported by the %s backend",
                        st->ops->name);
}

int scim_store_tenant_create(struct scim_store *st, const char *name, struct scim_tenant *out,
                             struct scim_err *err)
{
    int64_t id = 0;
    if (!scim_tenant_name_valid(name))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                            "tenant name must be 1-63 characters of a-z, 0-9 and '-', not starting with '-'");
    if (!st->ops->tenant_create)
        return not_supported(st, err);
    if (st->ops->tenant_create(st, name, &id, err) < 0)
        return -1;
    return out ? scim_store_tenant_get(st, id, NULL, out, err) : 0;
}

int scim_store_tenant_get(struct scim_store *st, int64_t id, const char *name,
                          struct scim_tenant *out, struct scim_err *err)
{
    char *text = NULL;
    int rc;
    memset(out, 0, sizeof *out);
    if (!st->ops->tenant_get)
        return not_supported(st, err);
    if (name && strlen(name) >= sizeof out->name)
        return scim_err_set(err, 404, NULL, "tenant not found");
    if (st->ops->tenant_get(st, id, name, out, &text, err) < 0)
        return -1;
    rc = scim_tenant_settings_parse(text, &out->settings, err);
    free(text);
    return rc;
}

int scim_store_tenant_list(struct scim_store *st, json_t **out, struct scim_err *err)
{
    *out = NULL;
    if (!st->ops->tenant_list)
        return not_supported(st, err);
    return st->ops->tenant_list(st, out, err);
}

int scim_store_tenant_update(struct scim_store *st, int64_t id, int disabled,
                             const struct scim_tenant_settings *settings, struct scim_err *err)
{
    char *text = NULL;
    int rc;
    if (!st->ops->tenant_update)
        return not_supported(st, err);
    if (settings) {
        json_t *j = scim_tenant_settings_json(settings);
        text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text)
            return scim_err_nomem(err);
    }
    rc = st->ops->tenant_update(st, id, disabled, text, err);
    free(text);
    return rc;
}

int scim_store_tenant_delete(struct scim_store *st, int64_t id, struct scim_err *err)
{
    if (!st->ops->tenant_delete)
        return not_supported(st, err);
    return st->ops->tenant_delete(st, id, err);
}

int scim_store_tenant_stats(struct scim_store *st, int64_t id, int64_t *users, int64_t *groups,
                            struct scim_err *err)
{
    *users = *groups = 0;
    if (!st->ops->tenant_stats)
        return not_supported(st, err);
    return st->ops->tenant_stats(st, id, users, groups, err);
}

/* A backend without the policy-aware calls can still serve requests that ask for no policy. */
static bool plain_ok(const struct scim_store_wopts *w, unsigned flags)
{
    const struct scim_tenant_settings *s = w ? w->settings : NULL;
    if (flags & SCIM_STORE_ADMIN)
        return false;
    if (w && w->origin && strcmp(w->origin, "scim") != 0)
        return false;
    return !s || (!s->unique_emails && !s->link_existing_users && !s->link_existing_groups &&
                  s->delete_mode == SCIM_DELETE_HARD && json_array_size(s->default_groups) == 0);
}

int scim_store_create_ex(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                         json_t *doc, json_t *members, const char *password_hash,
                         struct scim_store_wopts *w, unsigned flags, json_t **out,
                         int *skipped_members, struct scim_err *err)
{
    if (w)
        w->linked = w->revived = false;
    if (!st->ops->create_ex) {
        if (!plain_ok(w, flags))
            return not_supported(st, err);
        return scim_store_create(st, tenant_id, kind, doc, members, password_hash, flags, out,
                                 skipped_members, err);
    }
    if (out)
        *out = NULL;
    if (skipped_members)
        *skipped_members = 0;
    if (!json_is_object(doc))
        return scim_err_internal(err, "store: create without a doc object");
    if (members && !json_is_array(members))
        return scim_err_internal(err, "store: members is not an array");
    if (!out)
        flags |= SCIM_STORE_NO_OUTPUT;
    if (scim_json_oom())
        return scim_err_nomem(err); /* see scim_store_create */
    return st->ops->create_ex(st, tenant_id, kind, doc, members, password_hash, w, flags, out,
                              skipped_members, err);
}

int scim_store_update_ex(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                         const char *id, unsigned flags, scim_store_update_fn fn, void *ctx,
                         const struct scim_store_wopts *w, json_t **out, struct scim_err *err)
{
    if (!st->ops->update_ex) {
        if (!plain_ok(w, flags))
            return not_supported(st, err);
        return scim_store_update(st, tenant_id, kind, id, flags, fn, ctx, out, err);
    }
    if (out)
        *out = NULL;
    if (!out)
        flags |= SCIM_STORE_NO_OUTPUT;
    if (!id)
        return scim_err_set(err, 404, NULL, "resource not found");
    struct update_guard g = {fn, ctx};
    return st->ops->update_ex(st, tenant_id, kind, id, flags, guarded_update, &g, w, out, err);
}

int scim_store_delete_ex(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                         const char *id, int64_t expected_version, unsigned flags,
                         const struct scim_store_wopts *w, struct scim_err *err)
{
    if (!st->ops->delete_ex) {
        if (!plain_ok(w, flags))
            return not_supported(st, err);
        return scim_store_delete(st, tenant_id, kind, id, expected_version, err);
    }
    if (!id)
        return scim_err_set(err, 404, NULL, "resource not found");
    return st->ops->delete_ex(st, tenant_id, kind, id, expected_version, flags, w, err);
}

/* --- provisioning log ---------------------------------------------------------------------- */

int scim_store_log_append_batch(struct scim_store *st, const struct scim_log_entry *const *entries,
                                size_t n, struct scim_err *err)
{
    if (n == 0)
        return 0;
    if (!st->ops->log_append_batch)
        return not_supported(st, err);
    return st->ops->log_append_batch(st, entries, n, err);
}

int scim_store_log_query(struct scim_store *st, const struct scim_log_query *q,
                         struct scim_log_entry **out, size_t *n, int64_t *total,
                         struct scim_err *err)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    if (!st->ops->log_query)
        return not_supported(st, err);
    return st->ops->log_query(st, q, out, n, total, err);
}

int scim_store_log_prune(struct scim_store *st, int64_t before_us, int64_t max_per_tenant,
                         int64_t *deleted, struct scim_err *err)
{
    if (deleted)
        *deleted = 0;
    if (!st->ops->log_prune)
        return not_supported(st, err);
    return st->ops->log_prune(st, before_us, max_per_tenant, deleted, err);
}

int scim_store_row_json(const char *backend, enum scim_rtype kind, const struct scim_store_row *r,
                        const char *doc_text, bool admin, json_t **out, struct scim_err *err)
{
    json_error_t jerr;
    json_t *doc = json_loads(doc_text, 0, &jerr);
    json_t *schemas = json_array();
    char created[SCIM_DATETIME_LEN], modified[SCIM_DATETIME_LEN], version[32];
    const char *key;
    json_t *val, *meta;
    int rc = -1;

    if (!doc || !json_is_object(doc)) {
        scim_err_internal(err, "%s: stored doc of %s is not a JSON object", backend, r->id);
        goto out;
    }
    if (!schemas)
        goto nomem;
    if (json_array_append_new(schemas, json_string(kind == SCIM_RT_USER ? SCIM_SCHEMA_USER
                                                                        : SCIM_SCHEMA_GROUP)) < 0)
        goto nomem;
    json_object_foreach(doc, key, val) {
        if (strncmp(key, "urn:", 4) == 0 && json_array_append_new(schemas, json_string(key)) < 0)
            goto nomem;
    }
    /* The parsed doc becomes the resource: schemas, id and meta are added to it rather than
     * the doc being copied into a new object (a third of the cost of this function per
     * resource of a 1,000-user page). Member order is free: every output path puts schemas
     * and id first (scim_render, scim_resource_finish). */
    if (json_object_set_new(doc, "schemas", schemas) < 0) {
        schemas = NULL;
        goto nomem;
    }
    schemas = NULL;
    if (json_object_set_new(doc, "id", json_string(r->id)) < 0)
        goto nomem;
    scim_datetime_format(r->created, created);
    scim_datetime_format(r->last_modified, modified);
    snprintf(version, sizeof(version), "W/\"%lld\"", (long long)r->version);
    meta = json_object();
    if (!meta || json_object_set_new(doc, "meta", meta) < 0 ||
        json_object_set_new(meta, "resourceType", json_string(kind == SCIM_RT_USER ? "User" : "Group")) < 0 ||
        json_object_set_new(meta, "created", json_string(created)) < 0 ||
        json_object_set_new(meta, "lastModified", json_string(modified)) < 0 ||
        json_object_set_new(meta, "version", json_string(version)) < 0)
        goto nomem;
    if (admin) {
        json_t *state = json_pack("{s:s, s:s?, s:b}", "origin", r->origin, "managedBy",
                                  r->managed_by[0] ? r->managed_by : NULL, "deprovisioned",
                                  r->deprovisioned);
        if (!state || json_object_set_new(doc, "_state", state) < 0)
            goto nomem;
    }
    *out = doc;
    doc = NULL;
    rc = 0;
    goto out;
nomem:
    scim_err_nomem(err);
out:
    json_decref(doc);
    json_decref(schemas);
    return rc;
}
