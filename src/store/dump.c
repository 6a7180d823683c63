/* scim_store_export / scim_store_import: dispatch, and the checks of imported records that
 * do not depend on the backend (so a backend's import only reads well-formed records). */
#include "store/store_impl.h"

#include <string.h>

static int not_supported(struct scim_store *st, struct scim_err *err)
{
    return scim_err_set(err, 501, NULL, "export and import are not supported by the %s backend",
                        st->ops->name);
}

int scim_store_export(struct scim_store *st, scim_store_export_fn fn, void *ctx,
                      struct scim_err *err)
{
    if (!st->ops->export_rows)
        return not_supported(st, err);
    return st->ops->export_rows(st, fn, ctx, err);
}

/* The members a record of each type must have, with their JSON type: 's' string, 'i' integer,
 * 'b' boolean, 'o' object; upper case: may also be null. */
static const struct {
    const char *type;
    const char *fields[13];
    const char *kinds;
} shapes[] = {
    {"tenant", {"id", "name", "created", "disabled", "settings"}, "isibS"},
    {"token",
     {"id", "tenant_id", "name", "hash", "scopes", "created", "last_used", "expires", "revoked"},
     "iisssIIII"},
    {"resource",
     {"pk", "tenant_id", "kind", "id", "created", "last_modified", "version", "password_hash",
      "doc", "origin", "managed_by", "deprovisioned"},
     "iissiiiSosSb"},
    {"member", {"group_pk", "member_pk", "display", "origin"}, "iiSs"},
};

static bool fits(json_t *v, char kind)
{
    if (kind >= 'A' && kind <= 'Z') {
        if (json_is_null(v))
            return true;
        kind = (char)(kind - 'A' + 'a');
    }
    switch (kind) {
    case 's':
        return json_is_string(v);
    case 'i':
        return json_is_integer(v);
    case 'b':
        return json_is_boolean(v);
    default:
        return json_is_object(v);
    }
}

static int check_record(json_t *rec, size_t index, struct scim_err *err)
{
    const char *type = json_string_value(json_object_get(rec, "type"));
    for (size_t i = 0; type && i < sizeof shapes / sizeof shapes[0]; i++) {
        if (strcmp(shapes[i].type, type) != 0)
            continue;
        for (size_t k = 0; shapes[i].kinds[k]; k++) {
            json_t *v = json_object_get(rec, shapes[i].fields[k]);
            if (!v || !fits(v, shapes[i].kinds[k]))
                return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "record %zu (%s): missing or bad \"%s\"", index + 1, type,
                                    shapes[i].fields[k]);
        }
        if (strcmp(type, "resource") == 0) {
            const char *kind = json_string_value(json_object_get(rec, "kind"));
            if (strcmp(kind, "User") != 0 && strcmp(kind, "Group") != 0)
                return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "record %zu: kind must be User or Group", index + 1);
        }
        if (strcmp(type, "token") == 0 && strlen(json_string_value(json_object_get(rec, "hash"))) != 64)
            return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                "record %zu: hash must be 64 hex digits", index + 1);
        return 0;
    }
    return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "record %zu: unknown type %s",
                        index + 1, type ? type : "(none)");
}

int scim_store_import(struct scim_store *st, json_t *records, struct scim_err *err)
{
    size_t i;
    json_t *rec;
    if (!st->ops->import_rows)
        return not_supported(st, err);
    if (!json_is_array(records))
        return scim_err_internal(err, "store: import records are not an array");
    json_array_foreach(records, i, rec) {
        if (!json_is_object(rec))
            return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "record %zu is not an object",
                                i + 1);
        if (check_record(rec, i, err) < 0)
            return -1;
    }
    return st->ops->import_rows(st, records, err);
}
