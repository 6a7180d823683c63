/* Operator-declared extension schemas: loading and validating the configuration, and the
 * loaded schema working through the registry, discovery, normalisation, filters and paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "scim/compat.h"
#include "scim/discovery.h"
#include "scim/extconfig.h"
#include "scim/filter.h"
#include "scim/resource.h"
#include "scim/schema.h"

#define ACME "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
#define EX_USER "urn:example:params:scim:schemas:extension:acme:2.0:User"
#define EX_GROUP "urn:example:params:scim:schemas:extension:acme:2.0:Group"

/* The path of a file in the source tree (ctest sets SCIMD_SOURCE_DIR). */
static const char *src_path(const char *rel)
{
    static char buf[4096];
    const char *dir = getenv("SCIMD_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", dir && *dir ? dir : ".", rel);
    return buf;
}

/* A registry with tests/data/ext/okta-custom.json loaded. */
static int setup(void **state)
{
    struct scim_err err;
    struct scim_registry *reg = scim_registry_new();
    if (!reg)
        return -1;
    scim_err_clear(&err);
    if (scim_extconfig_load_file(reg, src_path("tests/data/ext/okta-custom.json"), &err) != 0) {
        fprintf(stderr, "load failed: %s\n", err.detail);
        scim_registry_free(&reg);
        return -1;
    }
    *state = reg;
    return 0;
}

static int teardown(void **state)
{
    struct scim_registry *reg = *state;
    scim_registry_free(&reg);
    return 0;
}

/* ---- loading --------------------------------------------------------------------------- */

static void test_load_resolves(void **state)
{
    struct scim_registry *reg = *state;
    const struct scim_resource_type *rt = scim_registry_rt(reg, SCIM_RT_USER);
    const struct scim_schema *sc = NULL, *ext = scim_registry_schema(reg, ACME);
    const struct scim_attr *a = NULL, *sub = NULL;

    assert_int_equal(scim_registry_schema_count(reg), 4);
    assert_non_null(ext);
    assert_ptr_equal(scim_registry_schema_at(reg, 3), ext);
    assert_string_equal(ext->name, "AcmeUser");
    assert_int_equal(ext->n_attrs, 7);
    assert_int_equal(rt->n_extensions, 2);
    assert_ptr_equal(rt->extensions[1].schema, ext);
    assert_false(rt->extensions[1].required);
    assert_int_equal(scim_registry_rt(reg, SCIM_RT_GROUP)->n_extensions, 0);

    /* Unqualified, URN-qualified (any case), and with a sub-attribute. */
    assert_int_equal(scim_resolve_attr(rt, NULL, "LicenseType", NULL, &sc, &a, &sub), 0);
    assert_ptr_equal(sc, ext);
    assert_string_equal(a->name, "licenseType");
    assert_int_equal(a->type, SCIM_T_STRING);
    assert_string_equal(a->canonical_values[0], "basic");
    assert_string_equal(a->canonical_values[2], "enterprise");
    assert_null(a->canonical_values[3]);
    assert_string_equal(a->description, "Licence tier of the account.");
    assert_int_equal(scim_resolve_attr(rt, "URN:IETF:params:scim:schemas:extension:ACME:2.0:user",
                                       "costcenter", NULL, &sc, &a, &sub), 0);
    assert_ptr_equal(sc, ext);
    /* RFC 7643 §2.2 defaults for everything not stated. */
    assert_string_equal(a->name, "costCenter");
    assert_int_equal(a->type, SCIM_T_STRING);
    assert_false(a->multi_valued);
    assert_false(a->required);
    assert_false(a->case_exact);
    assert_int_equal(a->mutability, SCIM_MUT_READWRITE);
    assert_int_equal(a->returned, SCIM_RET_DEFAULT);
    assert_int_equal(a->uniqueness, SCIM_UNIQ_NONE);
    assert_null(a->canonical_values);
    assert_null(a->reference_types);
    assert_null(a->sub_attrs);
    assert_int_equal(scim_resolve_attr(rt, ACME, "roles", "VALUE", &sc, &a, &sub), 0);
    assert_int_equal(a->type, SCIM_T_COMPLEX);
    assert_true(a->multi_valued);
    assert_int_equal(a->n_sub_attrs, 3);
    assert_string_equal(sub->name, "value");
    assert_true(sub->required);
    assert_int_equal(scim_resolve_attr(rt, ACME, "badgeId", NULL, &sc, &a, &sub), 0);
    assert_true(a->case_exact);
    assert_int_equal(a->uniqueness, SCIM_UNIQ_SERVER);
    assert_int_equal(a->mutability, SCIM_MUT_IMMUTABLE);
    /* Not an attribute of the extension; not on Group. */
    assert_int_equal(scim_resolve_attr(rt, ACME, "userName", NULL, &sc, &a, &sub), -1);
    assert_int_equal(scim_resolve_attr(scim_registry_rt(reg, SCIM_RT_GROUP), NULL, "licenseType",
                                       NULL, &sc, &a, &sub), -1);
    /* The URN splits off attribute references. */
    const char *rest = NULL;
    assert_int_equal(scim_registry_split_urn(reg, ACME ":roles.value", &rest), strlen(ACME));
    assert_string_equal(rest, "roles.value");
}

static void test_docs_example_loads(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    struct scim_err err;
    const struct scim_attr *a = NULL;
    const struct scim_schema *sc = NULL;
    assert_non_null(reg);
    scim_err_clear(&err);
    if (scim_extconfig_load_file(reg, src_path("docs/examples/extensions.json"), &err) != 0)
        fail_msg("%s", err.detail);
    assert_int_equal(scim_registry_schema_count(reg), 5);
    const struct scim_resource_type *g = scim_registry_rt(reg, SCIM_RT_GROUP);
    assert_int_equal(g->n_extensions, 1);
    assert_string_equal(g->extensions[0].schema->id, EX_GROUP);
    assert_int_equal(scim_resolve_attr(g, NULL, "quota", NULL, &sc, &a, NULL), 0);
    assert_int_equal(a->type, SCIM_T_INTEGER);
    assert_int_equal(scim_resolve_attr(scim_registry_rt(reg, SCIM_RT_USER), EX_USER, "roles",
                                       "primary", &sc, &a, NULL), 0);
    scim_registry_free(&reg);
}

/* ---- discovery ------------------------------------------------------------------------- */

static json_t *find_by(json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        if (json_is_string(json_object_get(e, key)) &&
            strcmp(json_string_value(json_object_get(e, key)), value) == 0)
            return e;
    }
    return NULL;
}

static void test_discovery(void **state)
{
    struct scim_registry *reg = *state;
    json_t *list = scim_discovery_schemas(reg, "https://h/scim/v2");
    assert_non_null(list);
    assert_int_equal(json_integer_value(json_object_get(list, "totalResults")), 4);
    json_t *s = find_by(json_object_get(list, "Resources"), "id", ACME);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "name")), "AcmeUser");
    json_t *attrs = json_object_get(s, "attributes");
    assert_int_equal(json_array_size(attrs), 7);
    json_t *lt = find_by(attrs, "name", "licenseType");
    json_t *want = json_pack("{s:s, s:s, s:b, s:s, s:b, s:b, s:s, s:s, s:s, s:[s,s,s]}", "name",
                             "licenseType", "type", "string", "multiValued", 0, "description",
                             "Licence tier of the account.", "required", 0, "caseExact", 0,
                             "mutability", "readWrite", "returned", "default", "uniqueness", "none",
                             "canonicalValues", "basic", "pro", "enterprise");
    assert_true(json_equal(lt, want));
    json_decref(want);
    json_t *roles = find_by(attrs, "name", "roles");
    assert_string_equal(json_string_value(json_object_get(roles, "type")), "complex");
    assert_true(json_is_true(json_object_get(roles, "multiValued")));
    assert_int_equal(json_array_size(json_object_get(roles, "subAttributes")), 3);
    assert_string_equal(json_string_value(json_object_get(json_object_get(s, "meta"), "location")),
                        "https://h/scim/v2/Schemas/" ACME);
    json_decref(list);

    list = scim_discovery_resource_types(reg, "https://h/scim/v2");
    assert_non_null(list);
    json_t *u = find_by(json_object_get(list, "Resources"), "id", "User");
    want = json_pack("[{s:s, s:b}, {s:s, s:b}]", "schema", SCIM_SCHEMA_ENTERPRISE, "required", 0,
                     "schema", ACME, "required", 0);
    assert_true(json_equal(json_object_get(u, "schemaExtensions"), want));
    json_decref(want);
    json_decref(list);
}

/* ---- normalisation --------------------------------------------------------------------- */

static void test_normalize_keeps_values(void **state)
{
    struct scim_registry *reg = *state;
    const struct scim_resource_type *rt = scim_registry_rt(reg, SCIM_RT_USER);
    struct scim_input in = {0};
    struct scim_err err;
    uint32_t compat = 0;
    json_t *body = json_loads(
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ACME "\"],"
        "\"userName\":\"bjensen\","
        "\"" ACME "\":{\"LICENSETYPE\":\"pro\",\"costCenter\":\"CC-1\",\"isContractor\":\"True\","
        "\"seats\":3,\"roles\":[{\"value\":\"admin\",\"primary\":true},{\"value\":\"viewer\"}]},"
        "\"" ACME ":badgeId\":\"B-7\"}",
        0, NULL);
    assert_non_null(body);
    scim_err_clear(&err);
    if (scim_resource_normalize(reg, rt, body, SCIM_NORM_CREATE, &in, &compat, &err) != 0)
        fail_msg("%d %s", err.status, err.detail);
    json_t *want = json_loads(
        "{\"userName\":\"bjensen\",\"" ACME "\":{\"licenseType\":\"pro\",\"costCenter\":\"CC-1\","
        "\"isContractor\":true,\"seats\":3,\"badgeId\":\"B-7\","
        "\"roles\":[{\"value\":\"admin\",\"primary\":true},{\"value\":\"viewer\"}]}}",
        0, NULL);
    if (!json_equal(in.doc, want)) {
        char *s = json_dumps(in.doc, JSON_SORT_KEYS);
        fail_msg("doc: %s", s);
    }
    assert_true(compat & SCIM_COMPAT_STRING_BOOLEAN);
    json_decref(want);
    json_decref(body);
    scim_input_release(&in);
}

/* A canonicalValues list is published, not enforced. */
static void test_normalize_canonical_not_enforced(void **state)
{
    struct scim_registry *reg = *state;
    struct scim_input in = {0};
    struct scim_err err;
    uint32_t compat = 0;
    json_t *body = json_loads("{\"userName\":\"u\",\"" ACME "\":{\"licenseType\":\"trial\"}}", 0,
                              NULL);
    scim_err_clear(&err);
    assert_int_equal(scim_resource_normalize(reg, scim_registry_rt(reg, SCIM_RT_USER), body,
                                             SCIM_NORM_CREATE, &in, &compat, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(in.doc, ACME),
                                                           "licenseType")), "trial");
    json_decref(body);
    scim_input_release(&in);
}

static void norm_fail(const struct scim_registry *reg, const char *body, const char *detail)
{
    struct scim_input in = {0};
    struct scim_err err;
    uint32_t compat = 0;
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    scim_err_clear(&err);
    assert_int_equal(scim_resource_normalize(reg, scim_registry_rt(reg, SCIM_RT_USER), b,
                                             SCIM_NORM_CREATE, &in, &compat, &err), -1);
    json_decref(b);
    assert_null(in.doc);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, SCIM_TYPE_INVALID_VALUE);
    assert_string_equal(err.detail, detail);
}

static void test_normalize_wrong_type(void **state)
{
    struct scim_registry *reg = *state;
    norm_fail(reg, "{\"userName\":\"u\",\"" ACME "\":{\"seats\":\"three\"}}", "attribute \"seats\" must be an integer");
    norm_fail(reg, "{\"userName\":\"u\",\"" ACME "\":{\"isContractor\":\"maybe\"}}", "attribute \"isContractor\" must be a boolean");
    norm_fail(reg, "{\"userName\":\"u\",\"" ACME "\":{\"costCenter\":42}}", "attribute \"costCenter\" must be a string");
    norm_fail(reg, "{\"userName\":\"u\",\"" ACME "\":\"pro\"}", "attribute \"" ACME "\" must be an object");
    norm_fail(reg, "{\"userName\":\"u\",\"" ACME "\":{\"roles\":[{\"value\":\"a\",\"primary\":true},"
                   "{\"value\":\"b\",\"primary\":\"true\"}]}}",
              "attribute \"roles\" has more than one primary value");
}

/* A required extension with a required attribute; readOnly input ignored; immutable kept. */
static void test_characteristics_enforced(void **state)
{
    (void)state;
    struct scim_registry *reg = scim_registry_new();
    struct scim_input in = {0};
    struct scim_err err;
    uint32_t compat = 0;
    json_t *doc = json_loads(
        "{\"schemas\":[{\"id\":\"urn:example:x:User\",\"resourceType\":\"User\","
        "\"required\":true,\"attributes\":[{\"name\":\"tier\",\"required\":true},"
        "{\"name\":\"score\",\"type\":\"integer\",\"mutability\":\"readOnly\"},"
        "{\"name\":\"badge\",\"mutability\":\"immutable\"}]}]}", 0, NULL);
    assert_int_equal(scim_extconfig_load_json(reg, doc, "x", &err), 0);
    json_decref(doc);
    const struct scim_resource_type *rt = scim_registry_rt(reg, SCIM_RT_USER);
    assert_true(rt->extensions[1].required);

    json_t *body = json_loads("{\"userName\":\"u\"}", 0, NULL);
    scim_err_clear(&err);
    assert_int_equal(scim_resource_normalize(reg, rt, body, SCIM_NORM_CREATE, &in, &compat, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.detail, "missing required attribute tier");
    json_decref(body);

    body = json_loads("{\"userName\":\"u\",\"urn:example:x:User\":{\"tier\":\"t\",\"score\":9,"
                      "\"badge\":\"b1\"}}", 0, NULL);
    assert_int_equal(scim_resource_normalize(reg, rt, body, SCIM_NORM_CREATE, &in, &compat, &err), 0);
    json_t *want = json_loads("{\"userName\":\"u\",\"urn:example:x:User\":{\"tier\":\"t\","
                              "\"badge\":\"b1\"}}", 0, NULL);
    assert_true(json_equal(in.doc, want));
    json_t *changed = json_deep_copy(in.doc);
    json_object_set_new(json_object_get(changed, "urn:example:x:User"), "badge", json_string("b2"));
    assert_int_equal(scim_resource_check_immutable(rt, in.doc, changed, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, SCIM_TYPE_MUTABILITY);
    json_decref(changed);
    json_decref(want);
    json_decref(body);
    scim_input_release(&in);
    scim_registry_free(&reg);
}

/* ---- filters and paths ----------------------------------------------------------------- */

static bool matches(const struct scim_registry *reg, const char *filter, const char *doc)
{
    struct scim_filter *f = NULL;
    struct scim_err err;
    scim_err_clear(&err);
    if (scim_filter_parse(filter, NULL, reg, &f, &err) != 0)
        fail_msg("parse of '%s' failed: %s", filter, err.detail);
    json_t *o = json_loads(doc, 0, NULL);
    assert_non_null(o);
    bool m = scim_filter_match(f, o, scim_registry_rt(reg, SCIM_RT_USER), NULL);
    json_decref(o);
    scim_filter_free(f);
    return m;
}

static void test_filter(void **state)
{
    struct scim_registry *reg = *state;
    const char *doc = "{\"userName\":\"bjensen\",\"" ACME "\":{\"licenseType\":\"Pro\","
                      "\"badgeId\":\"B-7\",\"seats\":3,\"isContractor\":false,"
                      "\"roles\":[{\"value\":\"admin\"},{\"value\":\"viewer\"}]}}";
    /* caseExact false: "pro" matches "Pro"; badgeId is caseExact. */
    assert_true(matches(reg, ACME ":licenseType eq \"pro\"", doc));
    assert_false(matches(reg, ACME ":licenseType eq \"basic\"", doc));
    assert_true(matches(reg, ACME ":badgeId eq \"B-7\"", doc));
    assert_false(matches(reg, ACME ":badgeId eq \"b-7\"", doc));
    assert_true(matches(reg, ACME ":seats gt 2 and " ACME ":isContractor eq false", doc));
    assert_true(matches(reg, ACME ":roles[value eq \"viewer\"]", doc));
    assert_true(matches(reg, ACME ":roles.value eq \"admin\"", doc));
    assert_false(matches(reg, ACME ":costCenter pr", doc));
    assert_true(matches(reg, "not (" ACME ":costCenter pr)", doc));
}

static void test_patch_path(void **state)
{
    struct scim_registry *reg = *state;
    struct scim_path *p = NULL;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_path_parse(ACME ":roles[value eq \"admin\"].primary", NULL, reg, &p,
                                     &err), 0);
    assert_string_equal(p->a.urn, ACME);
    assert_string_equal(p->a.attr, "roles");
    assert_string_equal(p->a.sub, "primary");
    assert_non_null(p->filter);
    scim_path_free(p);
    p = NULL;
    assert_int_equal(scim_path_parse(ACME ".costCenter", NULL, reg, &p, &err), 0);
    assert_string_equal(p->a.urn, ACME);
    assert_string_equal(p->a.attr, "costCenter");
    assert_null(p->a.sub);
    scim_path_free(p);
}

/* ---- validation errors ----------------------------------------------------------------- */

/* Loads `text` into a fresh registry; expects failure with exactly `detail` and nothing added. */
static void load_fail(const char *text, const char *detail)
{
    struct scim_registry *reg = scim_registry_new();
    struct scim_err err;
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je);
    if (!doc)
        fail_msg("test JSON: %s: %s", je.text, text);
    assert_non_null(reg);
    scim_err_clear(&err);
    if (scim_extconfig_load_json(reg, doc, "ext.json", &err) != -1)
        fail_msg("loaded: %s", text);
    assert_int_equal(err.status, 400);
    if (strcmp(err.detail, detail) != 0)
        fail_msg("\n got: %s\nwant: %s", err.detail, detail);
    assert_int_equal(scim_registry_schema_count(reg), 3);
    assert_int_equal(scim_registry_rt(reg, SCIM_RT_USER)->n_extensions, 1);
    assert_int_equal(scim_registry_rt(reg, SCIM_RT_GROUP)->n_extensions, 0);
    json_decref(doc);
    scim_registry_free(&reg);
}

#define S1(attrs) "{\"schemas\":[{\"id\":\"urn:example:acme:User\",\"resourceType\":\"User\"," \
                  "\"attributes\":[" attrs "]}]}"
#define A0 "ext.json: $.schemas[0].attributes[0]"

static void test_errors_document(void **state)
{
    (void)state;
    load_fail("[]", "ext.json: $: the configuration must be a JSON object with a \"schemas\" array");
    load_fail("{}", "ext.json: $.schemas: missing");
    load_fail("{\"schemas\":{}}", "ext.json: $.schemas: must be an array");
    load_fail("{\"schemas\":[],\"extra\":1}", "ext.json: $: unknown key \"extra\"");
    load_fail("{\"schemas\":[1]}", "ext.json: $.schemas[0]: a schema must be an object");
}

static void test_errors_schema(void **state)
{
    (void)state;
    load_fail("{\"schemas\":[{\"resourceType\":\"User\",\"attributes\":[{\"name\":\"a\"}]}]}",
              "ext.json: $.schemas[0]: missing \"id\" (the schema URN)");
    load_fail("{\"schemas\":[{\"id\":\"acme:User\",\"resourceType\":\"User\",\"attributes\":[]}]}",
              "ext.json: $.schemas[0].id: \"acme:User\" is not a valid schema URN (\"urn:\", a "
              "namespace, ':', then letters, digits and - . _ ~ : / % @ + = ; , ! $ & * ')");
    load_fail("{\"schemas\":[{\"id\":\"urn:example:acme User\",\"resourceType\":\"User\"}]}",
              "ext.json: $.schemas[0].id: \"urn:example:acme User\" is not a valid schema URN "
              "(\"urn:\", a namespace, ':', then letters, digits and - . _ ~ : / % @ + = ; , ! $ "
              "& * ')");
    load_fail("{\"schemas\":[{\"id\":\"" SCIM_SCHEMA_ENTERPRISE "\",\"resourceType\":\"User\"}]}",
              "ext.json: $.schemas[0].id: \"" SCIM_SCHEMA_ENTERPRISE "\" clashes with the existing "
              "schema " SCIM_SCHEMA_ENTERPRISE);
    load_fail("{\"schemas\":[{\"id\":\"urn:ietf:params:scim:schemas:core:2.0:user\","
              "\"resourceType\":\"User\"}]}",
              "ext.json: $.schemas[0].id: \"urn:ietf:params:scim:schemas:core:2.0:user\" clashes "
              "with the existing schema " SCIM_SCHEMA_USER);
    load_fail("{\"schemas\":[{\"id\":\"" SCIM_SCHEMA_USER ":acme\",\"resourceType\":\"User\"}]}",
              "ext.json: $.schemas[0].id: \"" SCIM_SCHEMA_USER ":acme\" clashes with the "
              "overlapping schema " SCIM_SCHEMA_USER);
    load_fail("{\"schemas\":[{\"id\":\"" SCIM_SCHEMA_SPC "\",\"resourceType\":\"User\"}]}",
              "ext.json: $.schemas[0].id: \"" SCIM_SCHEMA_SPC "\" is reserved by the SCIM protocol");
    load_fail("{\"schemas\":[{\"id\":\"" SCIM_MSG_PATCH "\",\"resourceType\":\"User\"}]}",
              "ext.json: $.schemas[0].id: \"" SCIM_MSG_PATCH "\" is reserved by the SCIM protocol");
    load_fail("{\"schemas\":[{\"id\":\"urn:example:acme:User\",\"attributes\":[]}]}",
              "ext.json: $.schemas[0]: missing \"resourceType\" (\"User\" or \"Group\")");
    load_fail("{\"schemas\":[{\"id\":\"urn:example:acme:User\",\"resourceType\":\"Device\"}]}",
              "ext.json: $.schemas[0].resourceType: must be \"User\" or \"Group\"");
    load_fail("{\"schemas\":[{\"id\":\"urn:example:acme:User\",\"resourceType\":\"User\","
              "\"required\":\"no\"}]}",
              "ext.json: $.schemas[0].required: must be true or false");
    load_fail("{\"schemas\":[{\"id\":\"urn:example:acme:User\",\"resourceType\":\"User\"}]}",
              "ext.json: $.schemas[0]: missing \"attributes\"");
    load_fail("{\"schemas\":[{\"id\":\"urn:example:acme:User\",\"resourceType\":\"User\","
              "\"attributes\":[]}]}",
              "ext.json: $.schemas[0].attributes: must declare at least one attribute");
    load_fail("{\"schemas\":[{\"id\":\"urn:example:acme:User\",\"resourceType\":\"User\","
              "\"name\":7,\"attributes\":[{\"name\":\"a\"}]}]}",
              "ext.json: $.schemas[0].name: must be a string");
    load_fail("{\"schemas\":[{\"id\":\"urn:example:acme:User\",\"resourceType\":\"User\","
              "\"Id\":\"urn:x:y\",\"attributes\":[{\"name\":\"a\"}]}]}",
              "ext.json: $.schemas[0]: key \"Id\" appears twice (as \"id\" and \"Id\")");
    /* Two schemas with the same URN, the second one failing: nothing is added. */
    load_fail("{\"schemas\":[{\"id\":\"urn:example:acme:User\",\"resourceType\":\"User\","
              "\"attributes\":[{\"name\":\"a\"}]},{\"id\":\"URN:example:acme:user\","
              "\"resourceType\":\"Group\",\"attributes\":[{\"name\":\"a\"}]}]}",
              "ext.json: $.schemas[1].id: \"URN:example:acme:user\" clashes with "
              "urn:example:acme:User declared at $.schemas[0]");
}

static void test_errors_attributes(void **state)
{
    (void)state;
    load_fail(S1("{\"type\":\"string\"}"), A0 ": missing \"name\"");
    load_fail(S1("\"licenseType\""), A0 ": an attribute must be an object");
    load_fail(S1("{\"name\":\"1abc\"}"),
              A0 ".name: \"1abc\" is not a valid attribute name (a letter, then letters, digits, "
                 "'-' or '_')");
    load_fail(S1("{\"name\":\"cost center\"}"),
              A0 ".name: \"cost center\" is not a valid attribute name (a letter, then letters, "
                 "digits, '-' or '_')");
    load_fail(S1("{\"name\":\"$ref\"}"),
              A0 ".name: \"$ref\" is not a valid attribute name (a letter, then letters, digits, "
                 "'-' or '_')");
    load_fail(S1("{\"name\":\"a\",\"type\":\"strng\"}"),
              A0 ".type: unknown type \"strng\" (expected one of string, boolean, decimal, "
                 "integer, dateTime, binary, reference, complex)");
    load_fail(S1("{\"name\":\"a\",\"type\":true}"),
              A0 ".type: must be a string (one of string, boolean, decimal, integer, dateTime, "
                 "binary, reference, complex)");
    load_fail(S1("{\"name\":\"a\",\"mutability\":\"writeonce\"}"),
              A0 ".mutability: unknown mutability \"writeonce\" (expected one of readWrite, "
                 "readOnly, immutable, writeOnly)");
    load_fail(S1("{\"name\":\"a\",\"returned\":\"sometimes\"}"),
              A0 ".returned: unknown returned \"sometimes\" (expected one of default, always, "
                 "never, request)");
    load_fail(S1("{\"name\":\"a\",\"uniqueness\":\"unique\"}"),
              A0 ".uniqueness: unknown uniqueness \"unique\" (expected one of none, server, "
                 "global)");
    load_fail(S1("{\"name\":\"a\",\"multiValued\":\"yes\"}"), A0 ".multiValued: must be true or false");
    load_fail(S1("{\"name\":\"a\",\"caseExact\":1}"), A0 ".caseExact: must be true or false");
    load_fail(S1("{\"name\":\"a\",\"multivalue\":true}"), A0 ": unknown key \"multivalue\"");
    load_fail(S1("{\"name\":\"a\",\"required\":true,\"mutability\":\"readOnly\"}"),
              A0 ".required: a readOnly attribute cannot be required (clients cannot set it)");
    load_fail(S1("{\"name\":\"a\",\"referenceTypes\":[\"User\"]}"),
              A0 ".referenceTypes: only allowed for type \"reference\"");
    load_fail(S1("{\"name\":\"a\",\"canonicalValues\":\"basic\"}"),
              A0 ".canonicalValues: must be an array of strings");
    load_fail(S1("{\"name\":\"a\",\"canonicalValues\":[\"basic\",2]}"),
              A0 ".canonicalValues[1]: must be a non-empty string");
    load_fail(S1("{\"name\":\"a\",\"canonicalValues\":[\"basic\",\"basic\"]}"),
              A0 ".canonicalValues[1]: \"basic\" is listed twice");
    load_fail(S1("{\"name\":\"a\",\"description\":[]}"), A0 ".description: must be a string");
    load_fail(S1("{\"name\":\"costCenter\"},{\"name\":\"CostCenter\"}"),
              "ext.json: $.schemas[0].attributes[1].name: duplicate attribute name \"CostCenter\" "
              "(names are case-insensitive; see attributes[0])");
    load_fail(S1("{\"name\":\"roles\",\"type\":\"complex\"}"),
              A0 ": complex attribute \"roles\" needs \"subAttributes\"");
    load_fail(S1("{\"name\":\"roles\",\"type\":\"complex\",\"subAttributes\":[]}"),
              A0 ".subAttributes: must declare at least one attribute");
    load_fail(S1("{\"name\":\"roles\",\"type\":\"complex\",\"canonicalValues\":[\"x\"],"
                 "\"subAttributes\":[{\"name\":\"value\"}]}"),
              A0 ".canonicalValues: not allowed for type \"complex\" (declare them on a "
                 "sub-attribute)");
    load_fail(S1("{\"name\":\"a\",\"subAttributes\":[{\"name\":\"value\"}]}"),
              A0 ".subAttributes: only allowed for type \"complex\"");
    load_fail(S1("{\"name\":\"roles\",\"type\":\"complex\",\"subAttributes\":[{\"name\":\"value\"},"
                 "{\"name\":\"x\",\"type\":\"complex\",\"subAttributes\":[{\"name\":\"y\"}]}]}"),
              A0 ".subAttributes[1].type: a sub-attribute cannot be complex");
    load_fail(S1("{\"name\":\"roles\",\"type\":\"complex\",\"subAttributes\":[{\"name\":\"value\"},"
                 "{\"name\":\"VALUE\"}]}"),
              A0 ".subAttributes[1].name: duplicate attribute name \"VALUE\" (names are "
                 "case-insensitive; see subAttributes[0])");
    load_fail(S1("{\"name\":\"roles\",\"type\":\"complex\",\"subAttributes\":[{\"name\":\"v\","
                 "\"type\":\"int\"}]}"),
              A0 ".subAttributes[0].type: unknown type \"int\" (expected one of string, boolean, "
                 "decimal, integer, dateTime, binary, reference, complex)");
}

/* The User resource type holds at most 8 extensions; enterprise is one of them. */
static void test_errors_too_many(void **state)
{
    (void)state;
    char text[4096];
    size_t len = (size_t)snprintf(text, sizeof text, "{\"schemas\":[");
    for (int i = 0; i < 8; i++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "%s{\"id\":\"urn:example:x%d:User\",\"resourceType\":\"Users\","
                                "\"attributes\":[{\"name\":\"a\"}]}",
                                i ? "," : "", i);
    snprintf(text + len, sizeof text - len, "]}");
    load_fail(text, "ext.json: $.schemas[7].resourceType: too many extension schemas for User "
                    "(at most 8 in all, 1 built in)");
    /* Seven fit. */
    struct scim_registry *reg = scim_registry_new();
    struct scim_err err;
    char *cut = strstr(text, ",{\"id\":\"urn:example:x7");
    assert_non_null(cut);
    snprintf(cut, sizeof text - (size_t)(cut - text), "]}");
    json_t *doc = json_loads(text, 0, NULL);
    assert_int_equal(scim_extconfig_load_json(reg, doc, "ext.json", &err), 0);
    assert_int_equal(scim_registry_rt(reg, SCIM_RT_USER)->n_extensions, 8);
    json_decref(doc);
    scim_registry_free(&reg);
}

static void file_fail(const char *rel, const char *want_suffix)
{
    struct scim_registry *reg = scim_registry_new();
    struct scim_err err;
    char want[4096];
    const char *path = src_path(rel);
    snprintf(want, sizeof want, "%s%s", path, want_suffix);
    scim_err_clear(&err);
    assert_int_equal(scim_extconfig_load_file(reg, path, &err), -1);
    assert_int_equal(err.status, 400);
    if (strcmp(err.detail, want) != 0)
        fail_msg("\n got: %s\nwant: %s", err.detail, want);
    assert_int_equal(scim_registry_schema_count(reg), 3);
    scim_registry_free(&reg);
}

static void test_errors_file(void **state)
{
    (void)state;
    file_fail("tests/data/ext/missing.json", ": cannot open: No such file or directory");
    file_fail("tests/data/ext", ": not a regular file");
    file_fail("tests/data/ext/bad-syntax.json", ":3:32: string or '}' expected near '}'");
    file_fail("tests/data/ext/bad-type.json",
              ": $.schemas[0].attributes[1].subAttributes[0].type: unknown type \"strng\" "
              "(expected one of string, boolean, decimal, integer, dateTime, binary, reference, "
              "complex)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_resolves, setup, teardown),
        cmocka_unit_test(test_docs_example_loads),
        cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normalize_keeps_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normalize_canonical_not_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normalize_wrong_type, setup, teardown),
        cmocka_unit_test(test_characteristics_enforced),
        cmocka_unit_test_setup_teardown(test_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_path, setup, teardown),
        cmocka_unit_test(test_errors_document),
        cmocka_unit_test(test_errors_schema),
        cmocka_unit_test(test_errors_attributes),
        cmocka_unit_test(test_errors_too_many),
        cmocka_unit_test(test_errors_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
