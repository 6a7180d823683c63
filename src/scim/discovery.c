/* Discovery documents built from the registry and the server's real limits, so that what the
 * server advertises is what it does (authentik reads the SPC and acts on it, quirk 47). */
#include "scim/discovery.h"

#include <string.h>

#include "common/buf.h"

/* json_pack with "s?" tolerates NULL strings; "o" steals the reference. */

static json_t *location(const char *base_url, const char *tail1, const char *tail2)
{
    struct scim_buf b;
    json_t *s = NULL;
    const char *base = base_url ? base_url : "";
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    scim_buf_init(&b, 0);
    if (scim_buf_add(&b, base, len) == 0 && scim_buf_adds(&b, tail1) == 0 &&
        (!tail2 || (scim_buf_addc(&b, '/') == 0 && scim_buf_adds(&b, tail2) == 0)))
        s = json_string(scim_buf_str(&b));
    scim_buf_release(&b);
    return s;
}

static json_t *meta(const char *resource_type, json_t *loc)
{
    if (!loc)
        return NULL;
    return json_pack("{s:s, s:o}", "resourceType", resource_type, "location", loc);
}

static json_t *list_response(json_t *resources)
{
    if (!resources)
        return NULL;
    json_int_t n = (json_int_t)json_array_size(resources);
    return json_pack("{s:[s], s:I, s:I, s:I, s:o}", "schemas", SCIM_MSG_LIST, "totalResults", n,
                     "itemsPerPage", n, "startIndex", (json_int_t)1, "Resources", resources);
}

json_t *scim_discovery_spc(const struct scim_spc_info *info)
{
    json_t *spc = json_pack(
        "{s:[s], s:{s:b}, s:{s:b, s:I, s:I}, s:{s:b, s:I}, s:{s:b}, s:{s:b}, s:{s:b},"
        " s:[{s:s, s:s, s:s, s:s, s:b}], s:o*}",
        "schemas", SCIM_SCHEMA_SPC,
        "patch", "supported", 1,
        "bulk", "supported", (int)info->bulk_supported, "maxOperations",
        (json_int_t)info->bulk_max_operations, "maxPayloadSize", (json_int_t)info->bulk_max_payload,
        "filter", "supported", 1, "maxResults", (json_int_t)info->filter_max_results,
        "changePassword", "supported", (int)info->change_password_supported,
        "sort", "supported", (int)info->sort_supported,
        "etag", "supported", (int)info->etag_supported,
        "authenticationSchemes", "type", "oauthbearertoken", "name", "OAuth Bearer Token",
        "description", "A bearer token in the Authorization header, issued by scimctl.",
        "specUri", "https://www.rfc-editor.org/info/rfc6750", "primary", 1,
        "meta", meta("ServiceProviderConfig", location(info->base_url, "/ServiceProviderConfig", NULL)));
    if (!spc)
        return NULL;
    if (info->documentation_uri &&
        json_object_set_new(spc, "documentationUri", json_string(info->documentation_uri)) < 0)
        goto fail;
    if (info->cursor_supported) {
        /* RFC 9865 §4: both methods offered, index stays the default for older clients. */
        json_t *pg = json_pack("{s:b, s:b, s:s, s:I, s:I, s:I}", "cursor", 1, "index", 1,
                               "defaultPaginationMethod", "index", "defaultPageSize",
                               (json_int_t)info->default_page_size, "maxPageSize",
                               (json_int_t)info->filter_max_results, "cursorTimeout",
                               (json_int_t)info->cursor_timeout);
        if (!pg || json_object_set_new(spc, "pagination", pg) < 0)
            goto fail;
    }
    /* Keep meta last for readability. */
    json_t *m = json_incref(json_object_get(spc, "meta"));
    if (m) {
        json_object_del(spc, "meta");
        if (json_object_set_new(spc, "meta", m) < 0)
            goto fail;
    }
    return spc;
fail:
    json_decref(spc);
    return NULL;
}

json_t *scim_discovery_resource_type(const struct scim_resource_type *rt, const char *base_url)
{
    json_t *exts = json_array();
    if (!exts)
        return NULL;
    for (size_t i = 0; i < rt->n_extensions; i++) {
        json_t *e = json_pack("{s:s, s:b}", "schema", rt->extensions[i].schema->id, "required",
                              (int)rt->extensions[i].required);
        if (!e || json_array_append_new(exts, e) < 0) {
            json_decref(exts);
            return NULL;
        }
    }
    return json_pack("{s:[s], s:s, s:s, s:s, s:s, s:s, s:o, s:o*}", "schemas", SCIM_SCHEMA_RT,
                     "id", rt->id, "name", rt->name, "endpoint", rt->endpoint, "description",
                     rt->description, "schema", rt->schema->id, "schemaExtensions", exts, "meta",
                     meta("ResourceType", location(base_url, "/ResourceTypes", rt->id)));
}

json_t *scim_discovery_resource_types(const struct scim_registry *reg, const char *base_url)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    /* User first: the Microsoft collection checks Resources[0] (quirk 48). */
    for (int k = 0; k < SCIM_RT_COUNT; k++) {
        json_t *r = scim_discovery_resource_type(scim_registry_rt(reg, (enum scim_rtype)k), base_url);
        if (!r || json_array_append_new(arr, r) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return list_response(arr);
}

static json_t *strv(const char *const *v)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; v && v[i]; i++)
        if (json_array_append_new(a, json_string(v[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *attrs_json(const struct scim_attr *attrs, size_t n);

static json_t *attr_json(const struct scim_attr *a)
{
    json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:b, s:b, s:s, s:s, s:s}", "name", a->name,
                          "type", scim_atype_name(a->type), "multiValued", (int)a->multi_valued,
                          "description", a->description ? a->description : "", "required",
                          (int)a->required, "caseExact", (int)a->case_exact, "mutability",
                          scim_mutability_name(a->mutability), "returned",
                          scim_returned_name(a->returned), "uniqueness",
                          scim_uniqueness_name(a->uniqueness));
    if (!o)
        return NULL;
    if (a->canonical_values && json_object_set_new(o, "canonicalValues", strv(a->canonical_values)) < 0)
        goto fail;
    if (a->type == SCIM_T_REFERENCE &&
        json_object_set_new(o, "referenceTypes", strv(a->reference_types)) < 0)
        goto fail;
    if (a->type == SCIM_T_COMPLEX &&
        json_object_set_new(o, "subAttributes", attrs_json(a->sub_attrs, a->n_sub_attrs)) < 0)
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

static json_t *attrs_json(const struct scim_attr *attrs, size_t n)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *a = attr_json(&attrs[i]);
        if (!a || json_array_append_new(arr, a) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *scim_discovery_schema(const struct scim_schema *schema, const char *base_url)
{
    return json_pack("{s:[s], s:s, s:s, s:s, s:o, s:o*}", "schemas", SCIM_SCHEMA_SCHEMA, "id",
                     schema->id, "name", schema->name ? schema->name : schema->id, "description",
                     schema->description ? schema->description : "", "attributes",
                     attrs_json(schema->attrs, schema->n_attrs), "meta",
                     meta("Schema", location(base_url, "/Schemas", schema->id)));
}

json_t *scim_discovery_schemas(const struct scim_registry *reg, const char *base_url)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < scim_registry_schema_count(reg); i++) {
        json_t *s = scim_discovery_schema(scim_registry_schema_at(reg, i), base_url);
        if (!s || json_array_append_new(arr, s) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return list_response(arr);
}
