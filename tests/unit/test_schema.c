/* Schema registry: built-in tables, lookups, URN splitting, extension registration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "scim/schema.h"

static void test_order_and_descriptions(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    assert_non_null(reg);
    assert_int_equal(scim_registry_schema_count(reg), 3);
    assert_string_equal(scim_registry_schema_at(reg, 0)->id, SCIM_SCHEMA_USER);
    assert_string_equal(scim_registry_schema_at(reg, 0)->description, "User Account");
    assert_string_equal(scim_registry_schema_at(reg, 1)->id, SCIM_SCHEMA_ENTERPRISE);
    assert_string_equal(scim_registry_schema_at(reg, 2)->id, SCIM_SCHEMA_GROUP);
    assert_string_equal(scim_registry_schema_at(reg, 2)->description, "Group");
    assert_null(scim_registry_schema_at(reg, 3));
    assert_ptr_equal(scim_registry_schema(reg, "URN:IETF:params:scim:schemas:core:2.0:user"),
                     scim_registry_schema_at(reg, 0));
    assert_null(scim_registry_schema(reg, "urn:x"));
    scim_registry_free(&reg);
    assert_null(reg);
}

static void test_resource_types(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    const struct scim_resource_type *u = scim_registry_rt(reg, SCIM_RT_USER);
    const struct scim_resource_type *g = scim_registry_rt(reg, SCIM_RT_GROUP);
    assert_string_equal(u->endpoint, "/Users");
    assert_string_equal(u->description, "User Account");
    assert_int_equal(u->n_extensions, 1);
    assert_string_equal(u->extensions[0].schema->id, SCIM_SCHEMA_ENTERPRISE);
    assert_false(u->extensions[0].required);
    assert_string_equal(g->endpoint, "/Groups");
    assert_int_equal(g->n_extensions, 0);
    assert_ptr_equal(scim_registry_rt_find(reg, "User"), u);
    assert_ptr_equal(scim_registry_rt_find(reg, "users"), u);
    assert_ptr_equal(scim_registry_rt_find(reg, "/USERS"), u);
    assert_ptr_equal(scim_registry_rt_find(reg, "/Groups"), g);
    assert_ptr_equal(scim_registry_rt_find(reg, "group"), g);
    assert_null(scim_registry_rt_find(reg, "Userz"));
    assert_null(scim_registry_rt_find(reg, "/Users/"));
    scim_registry_free(&reg);
}

static void test_attr_characteristics(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    const struct scim_schema *user = scim_registry_schema(reg, SCIM_SCHEMA_USER);
    const struct scim_attr *a = scim_schema_attr(user, "USERNAME");
    assert_non_null(a);
    assert_string_equal(a->name, "userName");
    assert_true(a->required);
    assert_false(a->case_exact);
    assert_int_equal(a->uniqueness, SCIM_UNIQ_SERVER);
    a = scim_schema_attr(user, "password");
    assert_int_equal(a->mutability, SCIM_MUT_WRITEONLY);
    assert_int_equal(a->returned, SCIM_RET_NEVER);
    a = scim_schema_attr(user, "groups");
    assert_int_equal(a->mutability, SCIM_MUT_READONLY);
    assert_true(a->multi_valued);
    const struct scim_attr *t = scim_attr_sub(a, "Type");
    assert_string_equal(t->canonical_values[0], "direct");
    assert_string_equal(t->canonical_values[1], "indirect");
    assert_null(t->canonical_values[2]);
    a = scim_schema_attr(user, "profileUrl");
    assert_int_equal(a->type, SCIM_T_REFERENCE);
    assert_string_equal(a->reference_types[0], "external");
    a = scim_schema_attr(user, "x509Certificates");
    assert_int_equal(scim_attr_sub(a, "value")->type, SCIM_T_BINARY);
    a = scim_schema_attr(user, "active");
    assert_int_equal(a->type, SCIM_T_BOOLEAN);
    a = scim_schema_attr(user, "name");
    assert_int_equal(a->n_sub_attrs, 6);
    assert_string_equal(scim_attr_sub(a, "honorificsuffix")->name, "honorificSuffix");
    assert_null(scim_attr_sub(scim_schema_attr(user, "userName"), "x"));

    const struct scim_schema *ent = scim_registry_schema(reg, SCIM_SCHEMA_ENTERPRISE);
    a = scim_schema_attr(ent, "manager");
    assert_int_equal(scim_attr_sub(a, "displayName")->mutability, SCIM_MUT_READONLY);
    assert_string_equal(scim_attr_sub(a, "$REF")->reference_types[0], "User");
    const struct scim_schema *grp = scim_registry_schema(reg, SCIM_SCHEMA_GROUP);
    assert_true(scim_schema_attr(grp, "displayname")->required);
    a = scim_schema_attr(grp, "members");
    assert_int_equal(scim_attr_sub(a, "value")->mutability, SCIM_MUT_IMMUTABLE);
    assert_int_equal(scim_attr_sub(a, "type")->mutability, SCIM_MUT_IMMUTABLE);

    a = scim_common_attr("ID");
    assert_int_equal(a->returned, SCIM_RET_ALWAYS);
    assert_true(a->case_exact);
    assert_int_equal(a->mutability, SCIM_MUT_READONLY);
    a = scim_common_attr("externalid");
    assert_true(a->case_exact);
    assert_int_equal(a->mutability, SCIM_MUT_READWRITE);
    a = scim_common_attr("meta");
    assert_int_equal(scim_attr_sub(a, "lastModified")->type, SCIM_T_DATETIME);
    assert_int_equal(scim_attr_sub(a, "location")->type, SCIM_T_REFERENCE);
    scim_registry_free(&reg);
}

static void test_resolve(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    const struct scim_resource_type *u = scim_registry_rt(reg, SCIM_RT_USER);
    const struct scim_schema *sc = NULL;
    const struct scim_attr *a = NULL, *s = NULL;
    assert_int_equal(scim_resolve_attr(u, NULL, "name", "FamilyName", &sc, &a, &s), 0);
    assert_string_equal(sc->id, SCIM_SCHEMA_USER);
    assert_string_equal(a->name, "name");
    assert_string_equal(s->name, "familyName");
    assert_int_equal(scim_resolve_attr(u, NULL, "meta", "created", &sc, &a, &s), 0);
    assert_null(sc);
    assert_string_equal(s->name, "created");
    assert_int_equal(scim_resolve_attr(u, NULL, "department", NULL, &sc, &a, &s), 0);
    assert_string_equal(sc->id, SCIM_SCHEMA_ENTERPRISE);
    assert_null(s);
    assert_int_equal(scim_resolve_attr(u, SCIM_SCHEMA_ENTERPRISE, "Manager", "value", &sc, &a, &s), 0);
    assert_string_equal(a->name, "manager");
    assert_int_equal(scim_resolve_attr(u, SCIM_SCHEMA_ENTERPRISE, "userName", NULL, &sc, &a, &s), -1);
    assert_int_equal(scim_resolve_attr(u, SCIM_SCHEMA_GROUP, "displayName", NULL, &sc, &a, &s), -1);
    assert_int_equal(scim_resolve_attr(u, NULL, "emails", "nope", &sc, &a, &s), -1);
    assert_int_equal(scim_resolve_attr(u, NULL, "adreses", NULL, &sc, &a, &s), -1);
    const struct scim_resource_type *g = scim_registry_rt(reg, SCIM_RT_GROUP);
    assert_int_equal(scim_resolve_attr(g, NULL, "department", NULL, &sc, &a, &s), -1);
    assert_int_equal(scim_resolve_attr(g, NULL, "MEMBERS", "value", &sc, &a, &s), 0);
    scim_registry_free(&reg);
}

static void test_split_urn(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    const char *rest = NULL;
    const char *s1 = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value";
    assert_int_equal(scim_registry_split_urn(reg, s1, &rest), strlen(SCIM_SCHEMA_ENTERPRISE));
    assert_string_equal(rest, "manager.value");
    const char *s2 = "URN:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User.manager";
    assert_int_equal(scim_registry_split_urn(reg, s2, &rest), strlen(SCIM_SCHEMA_ENTERPRISE));
    assert_string_equal(rest, "manager");
    assert_int_equal(scim_registry_split_urn(reg, "urn:ietf:params:scim:schemas:core:2.0:User:userName", &rest),
                     strlen(SCIM_SCHEMA_USER));
    assert_string_equal(rest, "userName");
    assert_int_equal(scim_registry_split_urn(reg, SCIM_SCHEMA_ENTERPRISE, &rest), strlen(SCIM_SCHEMA_ENTERPRISE));
    assert_string_equal(rest, "");
    assert_int_equal(scim_registry_split_urn(reg, "urn:ietf:params:scim:schemas:core:2.0:Users:x", &rest), 0);
    assert_int_equal(scim_registry_split_urn(reg, "userName", &rest), 0);
    scim_registry_free(&reg);
}

static void test_add_schema(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    struct scim_err err;
    struct scim_schema *sc = calloc(1, sizeof(*sc));
    struct scim_attr *attrs = calloc(1, sizeof(*attrs));
    const char **cv = calloc(3, sizeof(*cv));
    cv[0] = scim_strdup("a");
    cv[1] = scim_strdup("b");
    attrs[0].name = scim_strdup("badge");
    attrs[0].type = SCIM_T_STRING;
    attrs[0].description = scim_strdup("Badge number");
    attrs[0].canonical_values = cv;
    sc->id = scim_strdup("urn:example:params:scim:schemas:extension:acme:2.0:User");
    sc->name = scim_strdup("Acme");
    sc->attrs = attrs;
    sc->n_attrs = 1;
    scim_err_clear(&err);
    assert_int_equal(scim_registry_add_schema(reg, SCIM_RT_USER, sc, true, &err), 0);
    assert_int_equal(scim_registry_schema_count(reg), 4);
    assert_ptr_equal(scim_registry_schema_at(reg, 3), sc);
    const struct scim_resource_type *u = scim_registry_rt(reg, SCIM_RT_USER);
    assert_int_equal(u->n_extensions, 2);
    assert_true(u->extensions[1].required);
    const struct scim_schema *found = NULL;
    const struct scim_attr *a = NULL;
    assert_int_equal(scim_resolve_attr(u, NULL, "BADGE", NULL, &found, &a, NULL), 0);
    assert_ptr_equal(found, sc);

    /* Duplicate URN (any case): rejected, caller keeps ownership. */
    struct scim_schema *dup = calloc(1, sizeof(*dup));
    dup->id = scim_strdup("URN:example:params:scim:schemas:extension:acme:2.0:user");
    assert_int_equal(scim_registry_add_schema(reg, SCIM_RT_GROUP, dup, false, &err), -1);
    assert_int_equal(err.status, 409);
    assert_string_equal(err.scim_type, "uniqueness");
    scim_schema_free(dup);
    scim_registry_free(&reg);
}

static void test_enum_names(void **state)
{
    (void)state;
    assert_string_equal(scim_atype_name(SCIM_T_DATETIME), "dateTime");
    assert_string_equal(scim_atype_name(SCIM_T_COMPLEX), "complex");
    assert_string_equal(scim_mutability_name(SCIM_MUT_READWRITE), "readWrite");
    assert_string_equal(scim_mutability_name(SCIM_MUT_WRITEONLY), "writeOnly");
    assert_string_equal(scim_returned_name(SCIM_RET_REQUEST), "request");
    assert_string_equal(scim_uniqueness_name(SCIM_UNIQ_NONE), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_descriptions),
        cmocka_unit_test(test_resource_types),
        cmocka_unit_test(test_attr_characteristics),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_split_urn),
        cmocka_unit_test(test_add_schema),
        cmocka_unit_test(test_enum_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
