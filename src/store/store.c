/* Store dispatch: picks a backend from the URI and forwards each call through its ops table.
 * Checks that do not depend on the backend (NULL arguments, paging bounds) are made here once. */
#include "store/store_impl.h"

#include <string.h>

#include "common/util.h"

int scim_store_open(const char *uri, const struct scim_store_opts *opts, struct scim_store **out,
                    struct scim_err *err)
{
    *out = NULL;
    if (!uri || !*uri)
        return scim_err_internal(err, "store: empty database URI");
    if (strncmp(uri, "postgresql:", 11) == 0 || strncmp(uri, "postgres:", 9) == 0)
        return scim_pg_open(uri, opts, out, err);
    const char *path = uri;
    if (strncmp(uri, "sqlite:", 7) == 0)
        path = uri + 7;
    if (!*path)
        return scim_err_internal(err, "store: empty SQLite path in \"%s\"", uri);
    return scim_sqlite_open(path, opts, out, err);
}

void scim_store_free(struct scim_store **st)
{
    if (!st || !*st)
        return;
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

int scim_store_update(struct scim_store *st, int64_t tenant_id, enum scim_rtype kind,
                      const char *id, unsigned flags, scim_store_update_fn fn, void *ctx,
                      json_t **out, struct scim_err *err)
{
    if (out)
        *out = NULL;
    if (!out)
        flags |= SCIM_STORE_NO_OUTPUT;
    if (!id)
        return scim_err_set(err, 404, NULL, "resource not found");
    return st->ops->update(st, tenant_id, kind, id, flags, fn, ctx, out, err);
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
