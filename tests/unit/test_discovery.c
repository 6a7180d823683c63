/* Discovery documents: ServiceProviderConfig, ResourceTypes, Schemas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scim/discovery.h"

#define BASE "https://idm.example.org/scim/v2"

static json_int_t int_at(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static bool bool_at(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    assert_true(json_is_boolean(v));
    return json_is_true(v);
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
    json_t *v = b ? json_object_get(json_object_get(o, a), b) : json_object_get(o, a);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static void test_spc(void **state)
{
    (void)state;
    struct scim_spc_info info = {
        .base_url = BASE,
        .documentation_uri = "https://example.org/docs",
        .filter_max_results = 200,
        .bulk_supported = true,
        .bulk_max_operations = 1000,
        .bulk_max_payload = 1048576,
        .etag_supported = true,
        .sort_supported = false,
        .change_password_supported = true,
        .cursor_supported = true,
        .cursor_timeout = 3600,
        .default_page_size = 100,
    };
    json_t *spc = scim_discovery_spc(&info);
    assert_non_null(spc);
    assert_string_equal(json_string_value(json_array_get(json_object_get(spc, "schemas"), 0)),
                        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig");
    assert_string_equal(str_at(spc, "documentationUri", NULL), "https://example.org/docs");
    assert_true(bool_at(spc, "patch", "supported"));
    assert_true(bool_at(spc, "bulk", "supported"));
    assert_int_equal(int_at(spc, "bulk", "maxOperations"), 1000);
    assert_int_equal(int_at(spc, "bulk", "maxPayloadSize"), 1048576);
    assert_true(bool_at(spc, "filter", "supported"));
    assert_int_equal(int_at(spc, "filter", "maxResults"), 200);
    assert_true(bool_at(spc, "changePassword", "supported"));
    assert_false(bool_at(spc, "sort", "supported"));
    assert_true(bool_at(spc, "etag", "supported"));
    json_t *schemes = json_object_get(spc, "authenticationSchemes");
    assert_int_equal(json_array_size(schemes), 1);
    json_t *s0 = json_array_get(schemes, 0);
    assert_string_equal(str_at(s0, "type", NULL), "oauthbearertoken");
    assert_string_equal(str_at(s0, "name", NULL), "OAuth Bearer Token");
    assert_true(strlen(str_at(s0, "description", NULL)) > 0);
    assert_true(json_is_true(json_object_get(s0, "primary")));
    assert_true(bool_at(spc, "pagination", "cursor"));
    assert_true(bool_at(spc, "pagination", "index"));
    assert_string_equal(str_at(spc, "pagination", "defaultPaginationMethod"), "index");
    assert_int_equal(int_at(spc, "pagination", "defaultPageSize"), 100);
    assert_int_equal(int_at(spc, "pagination", "maxPageSize"), 200);
    assert_int_equal(int_at(spc, "pagination", "cursorTimeout"), 3600);
    assert_string_equal(str_at(spc, "meta", "resourceType"), "ServiceProviderConfig");
    assert_string_equal(str_at(spc, "meta", "location"), BASE "/ServiceProviderConfig");
    json_decref(spc);

    info.cursor_supported = false;
    info.bulk_supported = false;
    info.documentation_uri = NULL;
    info.base_url = BASE "/";
    spc = scim_discovery_spc(&info);
    assert_null(json_object_get(spc, "pagination"));
    assert_null(json_object_get(spc, "documentationUri"));
    assert_false(bool_at(spc, "bulk", "supported"));
    assert_string_equal(str_at(spc, "meta", "location"), BASE "/ServiceProviderConfig");
    json_decref(spc);
}

static void test_resource_types(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    json_t *l = scim_discovery_resource_types(reg, BASE);
    assert_string_equal(json_string_value(json_array_get(json_object_get(l, "schemas"), 0)),
                        "urn:ietf:params:scim:api:messages:2.0:ListResponse");
    assert_int_equal(json_integer_value(json_object_get(l, "totalResults")), 2);
    json_t *rs = json_object_get(l, "Resources");
    assert_int_equal(json_array_size(rs), 2);
    json_t *u = json_array_get(rs, 0);
    assert_string_equal(str_at(u, "id", NULL), "User");
    assert_string_equal(str_at(u, "name", NULL), "User");
    assert_string_equal(str_at(u, "endpoint", NULL), "/Users");
    assert_string_equal(str_at(u, "description", NULL), "User Account");
    assert_string_equal(str_at(u, "schema", NULL), "urn:ietf:params:scim:schemas:core:2.0:User");
    json_t *ext = json_array_get(json_object_get(u, "schemaExtensions"), 0);
    assert_string_equal(str_at(ext, "schema", NULL), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User");
    assert_true(json_is_false(json_object_get(ext, "required")));
    assert_string_equal(str_at(u, "meta", "location"), BASE "/ResourceTypes/User");
    assert_string_equal(str_at(u, "meta", "resourceType"), "ResourceType");
    assert_string_equal(json_string_value(json_array_get(json_object_get(u, "schemas"), 0)),
                        "urn:ietf:params:scim:schemas:core:2.0:ResourceType");
    json_t *g = json_array_get(rs, 1);
    assert_string_equal(str_at(g, "endpoint", NULL), "/Groups");
    assert_int_equal(json_array_size(json_object_get(g, "schemaExtensions")), 0);
    json_decref(l);
    scim_registry_free(&reg);
}

static json_t *find_attr(json_t *attrs, const char *name)
{
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a) {
        if (strcmp(json_string_value(json_object_get(a, "name")), name) == 0)
            return a;
    }
    fail_msg("attribute %s not found", name);
    return NULL;
}

static void test_schemas(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    json_t *l = scim_discovery_schemas(reg, BASE);
    json_t *rs = json_object_get(l, "Resources");
    assert_int_equal(json_integer_value(json_object_get(l, "totalResults")), 3);
    assert_int_equal(json_array_size(rs), 3);
    json_t *u = json_array_get(rs, 0);
    assert_string_equal(str_at(u, "id", NULL), "urn:ietf:params:scim:schemas:core:2.0:User");
    assert_string_equal(str_at(u, "name", NULL), "User");
    assert_string_equal(str_at(u, "description", NULL), "User Account");
    assert_string_equal(str_at(u, "meta", "resourceType"), "Schema");
    assert_string_equal(str_at(u, "meta", "location"),
                        BASE "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User");
    json_t *attrs = json_object_get(u, "attributes");
    json_t *un = find_attr(attrs, "userName");
    assert_string_equal(str_at(un, "type", NULL), "string");
    assert_true(json_is_false(json_object_get(un, "multiValued")));
    assert_true(json_is_true(json_object_get(un, "required")));
    assert_true(json_is_false(json_object_get(un, "caseExact")));
    assert_string_equal(str_at(un, "mutability", NULL), "readWrite");
    assert_string_equal(str_at(un, "returned", NULL), "default");
    assert_string_equal(str_at(un, "uniqueness", NULL), "server");
    assert_null(json_object_get(un, "subAttributes"));
    json_t *pw = find_attr(attrs, "password");
    assert_string_equal(str_at(pw, "mutability", NULL), "writeOnly");
    assert_string_equal(str_at(pw, "returned", NULL), "never");
    json_t *em = find_attr(attrs, "emails");
    assert_string_equal(str_at(em, "type", NULL), "complex");
    assert_true(json_is_true(json_object_get(em, "multiValued")));
    json_t *emt = find_attr(json_object_get(em, "subAttributes"), "type");
    json_t *cv = json_object_get(emt, "canonicalValues");
    assert_int_equal(json_array_size(cv), 3);
    assert_string_equal(json_string_value(json_array_get(cv, 0)), "work");
    json_t *pu = find_attr(attrs, "profileUrl");
    assert_string_equal(str_at(pu, "type", NULL), "reference");
    assert_string_equal(json_string_value(json_array_get(json_object_get(pu, "referenceTypes"), 0)), "external");
    json_t *gr = find_attr(attrs, "groups");
    assert_string_equal(str_at(gr, "mutability", NULL), "readOnly");
    json_t *ent = json_array_get(rs, 1);
    assert_string_equal(str_at(ent, "id", NULL), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User");
    json_t *mgr = find_attr(json_object_get(ent, "attributes"), "manager");
    json_t *mdn = find_attr(json_object_get(mgr, "subAttributes"), "displayName");
    assert_string_equal(str_at(mdn, "mutability", NULL), "readOnly");
    json_t *g = json_array_get(rs, 2);
    assert_string_equal(str_at(g, "description", NULL), "Group");
    json_t *mem = find_attr(json_object_get(g, "attributes"), "members");
    json_t *mv = find_attr(json_object_get(mem, "subAttributes"), "value");
    assert_string_equal(str_at(mv, "mutability", NULL), "immutable");
    json_decref(l);

    json_t *one = scim_discovery_schema(scim_registry_schema(reg, SCIM_SCHEMA_GROUP), BASE);
    assert_string_equal(str_at(one, "id", NULL), SCIM_SCHEMA_GROUP);
    assert_string_equal(json_string_value(json_array_get(json_object_get(one, "schemas"), 0)),
                        "urn:ietf:params:scim:schemas:core:2.0:Schema");
    json_decref(one);
    scim_registry_free(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spc),
        cmocka_unit_test(test_resource_types),
        cmocka_unit_test(test_schemas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
