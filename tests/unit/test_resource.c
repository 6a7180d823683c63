/* Resource normalisation (real IdP bodies), validation, projection and finishing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scim/compat.h"
#include "scim/resource.h"

#define ENT SCIM_SCHEMA_ENTERPRISE

static struct scim_registry *reg;

static int setup(void **state)
{
    (void)state;
    reg = scim_registry_new();
    return reg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    scim_registry_free(&reg);
    return 0;
}

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    return j;
}

/* Asserts that `got` equals the JSON `want` (printing both when not). */
static void expect_json(json_t *got, const char *want)
{
    json_t *w = js(want);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        char *x = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT);
        print_error("got:  %s\nwant: %s\n", g ? g : "(null)", x);
        free(g);
        free(x);
        json_decref(w);
        fail();
    }
    json_decref(w);
}

static const struct scim_resource_type *user_rt(void) { return scim_registry_rt(reg, SCIM_RT_USER); }
static const struct scim_resource_type *group_rt(void) { return scim_registry_rt(reg, SCIM_RT_GROUP); }

/* Normalises `body`; expects success. */
static void norm_ok(const struct scim_resource_type *rt, const char *body, struct scim_input *in,
                    uint32_t *compat)
{
    struct scim_err err;
    json_t *b = js(body);
    scim_err_clear(&err);
    *compat = 0;
    int rc = scim_resource_normalize(reg, rt, b, SCIM_NORM_CREATE, in, compat, &err);
    json_decref(b);
    if (rc != 0)
        fail_msg("normalize failed: %d %s", err.status, err.detail);
}

/* Normalises `body`; expects a 400 invalidValue with exactly `detail`. */
static void norm_fail(const struct scim_resource_type *rt, const char *body, const char *scim_type,
                      const char *detail)
{
    struct scim_err err;
    struct scim_input in = {0};
    uint32_t compat = 0;
    json_t *b = js(body);
    scim_err_clear(&err);
    assert_int_equal(scim_resource_normalize(reg, rt, b, SCIM_NORM_REPLACE, &in, &compat, &err), -1);
    json_decref(b);
    assert_null(in.doc);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, scim_type);
    assert_string_equal(err.detail, detail);
}

static void test_entra_post(void **state)
{
    (void)state;
    struct scim_input in = {0};
    uint32_t compat;
    norm_ok(user_rt(),
            "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\","
            "  \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\","
            "  \"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User\"],"
            " \"externalId\":\"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\","
            " \"UserName\":\"Test_User_ab6490ee@contoso.com\","
            " \"Active\":\"True\","
            " \"DisplayName\":\"Test User\","
            " \"Emails\":[{\"Primary\":\"true\",\"Type\":\"work\",\"Value\":\"t@contoso.com\"}],"
            " \"Name\":{\"FamilyName\":\"User\",\"GivenName\":\"Test\"},"
            " \"adreses\":[{\"type\":\"work\"}],"
            " \"meta\":{\"resourceType\":\"User\"},"
            " \"id\":\"client-id\","
            " \"roles\":[],"
            " \"nickName\":null,"
            " \"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER\":"
            "   {\"Department\":\"Sales\",\"Manager\":{\"Value\":\"m-1\",\"displayName\":\"Boss\"}},"
            " \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber\":\"E7\"}",
            &in, &compat);
    expect_json(in.doc,
                "{\"externalId\":\"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\","
                " \"userName\":\"Test_User_ab6490ee@contoso.com\",\"active\":true,"
                " \"displayName\":\"Test User\","
                " \"emails\":[{\"primary\":true,\"type\":\"work\",\"value\":\"t@contoso.com\"}],"
                " \"name\":{\"familyName\":\"User\",\"givenName\":\"Test\"},"
                " \"" ENT "\":{\"department\":\"Sales\",\"manager\":{\"value\":\"m-1\"},"
                "   \"employeeNumber\":\"E7\"}}");
    assert_true(json_is_true(json_object_get(in.doc, "active")));
    assert_null(in.members);
    assert_null(in.password);
    assert_true(compat & SCIM_COMPAT_STRING_BOOLEAN);
    assert_true(compat & SCIM_COMPAT_UNKNOWN_SCHEMA_URN);
    assert_true(compat & SCIM_COMPAT_READONLY_INPUT_IGNORED);
    assert_false(compat & SCIM_COMPAT_MANAGER_STRING);
    scim_input_release(&in);
}

static void test_okta_post_password(void **state)
{
    (void)state;
    struct scim_input in = {0};
    uint32_t compat;
    norm_ok(user_rt(),
            "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
            " \"userName\":\"isabella@example.com\","
            " \"name\":{\"givenName\":\"Isabella\",\"familyName\":\"Moore\"},"
            " \"emails\":[{\"primary\":true,\"value\":\"isabella@example.com\",\"type\":\"work\"}],"
            " \"displayName\":\"Isabella Moore\",\"locale\":\"en-US\",\"groups\":[],"
            " \"password\":\"1mz050nq\",\"active\":true}",
            &in, &compat);
    assert_string_equal(in.password, "1mz050nq");
    assert_null(json_object_get(in.doc, "password"));
    assert_null(json_object_get(in.doc, "groups"));
    expect_json(in.doc,
                "{\"userName\":\"isabella@example.com\","
                " \"name\":{\"givenName\":\"Isabella\",\"familyName\":\"Moore\"},"
                " \"emails\":[{\"primary\":true,\"value\":\"isabella@example.com\",\"type\":\"work\"}],"
                " \"displayName\":\"Isabella Moore\",\"locale\":\"en-US\",\"active\":true}");
    assert_int_equal(compat, SCIM_COMPAT_READONLY_INPUT_IGNORED);
    scim_input_release(&in);
}

static void test_required_and_types(void **state)
{
    (void)state;
    norm_fail(user_rt(), "{\"displayName\":\"x\"}", "invalidValue", "missing required attribute userName");
    norm_fail(user_rt(), "{\"userName\":\"\"}", "invalidValue", "missing required attribute userName");
    norm_fail(user_rt(), "{\"userName\":null}", "invalidValue", "missing required attribute userName");
    norm_fail(group_rt(), "{\"members\":[]}", "invalidValue", "missing required attribute displayName");
    norm_fail(user_rt(), "{\"userName\":\"a\",\"active\":\"yes\"}", "invalidValue",
              "attribute \"active\" must be a boolean");
    norm_fail(user_rt(), "{\"userName\":\"a\",\"active\":1}", "invalidValue",
              "attribute \"active\" must be a boolean");
    norm_fail(user_rt(), "{\"userName\":42}", "invalidValue", "attribute \"userName\" must be a string");
    norm_fail(user_rt(), "{\"userName\":\"a\",\"name\":\"Barbara\"}", "invalidValue",
              "attribute \"name\" must be an object");
    norm_fail(user_rt(), "{\"userName\":\"a\",\"emails\":[{\"value\":7}]}", "invalidValue",
              "attribute \"emails.value\" must be a string");
    norm_fail(user_rt(), "{\"userName\":\"a\",\"emails\":[\"a@b.c\"]}", "invalidValue",
              "attribute \"emails\" must be an object");
    norm_fail(user_rt(), "{\"userName\":\"a\",\"emails\":[{\"value\":\"x\",\"primary\":\"maybe\"}]}",
              "invalidValue", "attribute \"emails.primary\" must be a boolean");
    norm_fail(user_rt(), "{\"userName\":\"a\",\"password\":12}", "invalidValue",
              "attribute \"password\" must be a string");
    norm_fail(group_rt(), "{\"displayName\":\"g\",\"members\":[{\"value\":5}]}", "invalidValue",
              "attribute \"members.value\" must be a string");
    norm_fail(user_rt(), "[1]", "invalidSyntax", "request body must be a JSON object");
}

static void test_primary_unique(void **state)
{
    (void)state;
    norm_fail(user_rt(),
              "{\"userName\":\"a\",\"emails\":[{\"value\":\"x\",\"primary\":true},"
              "{\"value\":\"y\",\"Primary\":\"True\"}]}",
              "invalidValue", "attribute \"emails\" has more than one primary value");
    struct scim_input in = {0};
    uint32_t compat;
    norm_ok(user_rt(),
            "{\"userName\":\"a\",\"phoneNumbers\":[{\"value\":\"1\",\"primary\":true},"
            "{\"value\":\"2\",\"primary\":false}, null],"
            " \"emails\":{\"value\":\"single@x\",\"type\":\"work\"}}",
            &in, &compat);
    expect_json(in.doc, "{\"userName\":\"a\",\"phoneNumbers\":[{\"value\":\"1\",\"primary\":true},"
                        "{\"value\":\"2\",\"primary\":false}],"
                        "\"emails\":[{\"value\":\"single@x\",\"type\":\"work\"}]}");
    scim_input_release(&in);
}

static void test_members(void **state)
{
    (void)state;
    struct scim_input in = {0};
    uint32_t compat;
    norm_ok(group_rt(),
            "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\","
            "  \"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group\"],"
            " \"DisplayName\":\"Group1DisplayName\",\"externalId\":\"e1\","
            " \"Members\":[\"u1\",{\"Value\":\"u2\",\"displayName\":\"Two\",\"$ref\":null},"
            "  {\"value\":\"g3\",\"type\":\"Group\",\"display\":\"G\",\"displayName\":\"ignored\"},"
            "  {\"display\":\"no value\"}, null]}",
            &in, &compat);
    expect_json(in.doc, "{\"displayName\":\"Group1DisplayName\",\"externalId\":\"e1\"}");
    expect_json(in.members, "[{\"value\":\"u1\"},{\"value\":\"u2\",\"display\":\"Two\"},"
                            "{\"value\":\"g3\",\"type\":\"Group\",\"display\":\"G\"}]");
    assert_true(compat & SCIM_COMPAT_MEMBER_BARE_STRING);
    assert_true(compat & SCIM_COMPAT_MEMBER_DISPLAYNAME);
    assert_true(compat & SCIM_COMPAT_UNKNOWN_SCHEMA_URN);
    scim_input_release(&in);

    /* Okta creates groups with "members": [] - kept as an explicit empty list. */
    norm_ok(group_rt(), "{\"displayName\":\"g\",\"members\":[]}", &in, &compat);
    assert_true(json_is_array(in.members));
    assert_int_equal(json_array_size(in.members), 0);
    scim_input_release(&in);
    norm_ok(group_rt(), "{\"displayName\":\"g\"}", &in, &compat);
    assert_null(in.members);
    scim_input_release(&in);
}

static void test_manager_forms(void **state)
{
    (void)state;
    struct scim_input in = {0};
    uint32_t compat;
    norm_ok(user_rt(), "{\"userName\":\"a\",\"" ENT "\":{\"manager\":\"m-9\"}}", &in, &compat);
    expect_json(in.doc, "{\"userName\":\"a\",\"" ENT "\":{\"manager\":{\"value\":\"m-9\"}}}");
    assert_true(compat & SCIM_COMPAT_MANAGER_STRING);
    scim_input_release(&in);

    norm_ok(user_rt(),
            "{\"userName\":\"a\",\"" ENT "\":{\"manager\":[{\"$ref\":\"../Users/m-8\",\"value\":\"m-8\"}]}}",
            &in, &compat);
    expect_json(in.doc, "{\"userName\":\"a\",\"" ENT "\":{\"manager\":{\"value\":\"m-8\"}}}");
    assert_true(compat & SCIM_COMPAT_MANAGER_STRING);
    scim_input_release(&in);

    /* URN with a dot separator and a dotted sub-attribute at the top level. */
    norm_ok(user_rt(),
            "{\"userName\":\"a\",\"" ENT ".manager\":\"m-7\",\"name.givenName\":\"Bab\","
            " \"" ENT ":costCenter\":\"4130\"}",
            &in, &compat);
    expect_json(in.doc, "{\"userName\":\"a\",\"name\":{\"givenName\":\"Bab\"},"
                        "\"" ENT "\":{\"manager\":{\"value\":\"m-7\"},\"costCenter\":\"4130\"}}");
    assert_true(compat & SCIM_COMPAT_URN_DOT_SEPARATOR);
    scim_input_release(&in);

    /* An extension object whose content is all dropped disappears. */
    norm_ok(user_rt(), "{\"userName\":\"a\",\"" ENT "\":{\"bogus\":1,\"department\":null}}", &in, &compat);
    expect_json(in.doc, "{\"userName\":\"a\"}");
    scim_input_release(&in);
}

static void test_value_normalize(void **state)
{
    (void)state;
    struct scim_err err;
    uint32_t compat = 0;
    json_t *out = NULL, *v;
    const struct scim_attr *active = scim_schema_attr(user_rt()->schema, "active");
    const struct scim_attr *emails = scim_schema_attr(user_rt()->schema, "emails");
    scim_err_clear(&err);

    v = json_string("FALSE");
    assert_int_equal(scim_value_normalize(reg, active, v, false, &out, &compat, &err), 0);
    assert_true(json_is_false(out));
    assert_true(compat & SCIM_COMPAT_STRING_BOOLEAN);
    json_decref(out);
    json_decref(v);

    v = js("{\"Value\":\"w@x\",\"TYPE\":\"work\"}");
    assert_int_equal(scim_value_normalize(reg, emails, v, true, &out, &compat, &err), 0);
    expect_json(out, "{\"value\":\"w@x\",\"type\":\"work\"}");
    json_decref(out);
    assert_int_equal(scim_value_normalize(reg, emails, v, false, &out, &compat, &err), 0);
    expect_json(out, "[{\"value\":\"w@x\",\"type\":\"work\"}]");
    json_decref(out);
    json_decref(v);

    v = json_null();
    out = (json_t *)1;
    assert_int_equal(scim_value_normalize(reg, emails, v, false, &out, &compat, &err), 0);
    assert_null(out);

    /* dateTime kept as sent when it parses. */
    const struct scim_attr *created = scim_attr_sub(scim_common_attr("meta"), "created");
    v = json_string("2015-10-10T14:38:21.8617979-07:00");
    assert_int_equal(scim_value_normalize(reg, created, v, false, &out, &compat, &err), 0);
    assert_string_equal(json_string_value(out), "2015-10-10T14:38:21.8617979-07:00");
    json_decref(out);
    json_decref(v);
    v = json_string("yesterday");
    assert_int_equal(scim_value_normalize(reg, created, v, false, &out, &compat, &err), -1);
    assert_string_equal(err.detail, "attribute \"created\" must be a dateTime");
    json_decref(v);
}

static void test_validate_and_immutable(void **state)
{
    (void)state;
    struct scim_err err;
    scim_err_clear(&err);
    json_t *doc = js("{\"id\":\"1\",\"userName\":\"a\",\"emails\":[{\"value\":\"x\",\"primary\":true},"
                     "{\"value\":\"y\",\"primary\":true}]}");
    assert_int_equal(scim_resource_validate(user_rt(), doc, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, "invalidValue");
    json_decref(doc);
    doc = js("{\"id\":\"1\",\"displayName\":\"g\",\"members\":[{\"value\":\"u\"}]}");
    assert_int_equal(scim_resource_validate(group_rt(), doc, &err), 0);
    json_object_del(doc, "displayName");
    assert_int_equal(scim_resource_validate(group_rt(), doc, &err), -1);
    assert_string_equal(err.detail, "missing required attribute displayName");
    json_decref(doc);

    /* Custom extension with an immutable attribute. */
    struct scim_registry *r2 = scim_registry_new();
    struct scim_schema *sc = calloc(1, sizeof(*sc));
    struct scim_attr *attrs = calloc(1, sizeof(*attrs));
    attrs[0].name = strdup("badge");
    attrs[0].type = SCIM_T_STRING;
    attrs[0].mutability = SCIM_MUT_IMMUTABLE;
    sc->id = strdup("urn:acme:2.0:User");
    sc->attrs = attrs;
    sc->n_attrs = 1;
    assert_int_equal(scim_registry_add_schema(r2, SCIM_RT_USER, sc, false, &err), 0);
    const struct scim_resource_type *u = scim_registry_rt(r2, SCIM_RT_USER);
    json_t *o = js("{\"userName\":\"a\",\"urn:acme:2.0:User\":{\"badge\":\"1\"}}");
    json_t *n1 = js("{\"userName\":\"b\",\"urn:acme:2.0:User\":{\"badge\":\"1\"}}");
    json_t *n2 = js("{\"userName\":\"a\",\"urn:acme:2.0:User\":{\"badge\":\"2\"}}");
    json_t *n3 = js("{\"userName\":\"a\"}");
    assert_int_equal(scim_resource_check_immutable(u, o, n1, &err), 0);
    assert_int_equal(scim_resource_check_immutable(u, o, n3, &err), 0);
    assert_int_equal(scim_resource_check_immutable(u, o, n2, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, "mutability");
    assert_string_equal(err.detail, "attribute \"urn:acme:2.0:User:badge\" is immutable");
    /* Nothing set before: any value may be given. */
    assert_int_equal(scim_resource_check_immutable(u, n3, n2, &err), 0);
    json_decref(o);
    json_decref(n1);
    json_decref(n2);
    json_decref(n3);
    scim_registry_free(&r2);
}

/* ---- projection ---------------------------------------------------------------------- */

static const char *full_user =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],"
    " \"id\":\"u1\",\"externalId\":\"x1\",\"userName\":\"bjensen\","
    " \"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},"
    " \"emails\":[{\"value\":\"b@x\",\"type\":\"work\",\"primary\":true},{\"value\":\"h@x\",\"type\":\"home\"}],"
    " \"active\":true,\"password\":\"never-out\","
    " \"groups\":[{\"value\":\"g1\",\"display\":\"G1\"}],"
    " \"" ENT "\":{\"employeeNumber\":\"7\",\"manager\":{\"value\":\"m1\",\"displayName\":\"Boss\"}},"
    " \"meta\":{\"resourceType\":\"User\",\"version\":\"W/\\\"3\\\"\"}}";

/* Projects full_user (or `resource`) and compares. */
static void proj(const struct scim_resource_type *rt, const char *resource, const char *attributes,
                 const char *excluded, const char *want, uint32_t want_compat)
{
    struct scim_attrlist *a = NULL, *x = NULL;
    struct scim_err err;
    uint32_t compat = 0;
    json_t *res = js(resource ? resource : full_user);
    char *before = json_dumps(res, JSON_SORT_KEYS);
    scim_err_clear(&err);
    assert_int_equal(scim_attrlist_parse(reg, rt, attributes, &a, &compat, &err), 0);
    assert_int_equal(scim_attrlist_parse(reg, rt, excluded, &x, &compat, &err), 0);
    json_t *out = scim_project(rt, res, a, x);
    expect_json(out, want);
    assert_int_equal(compat, want_compat);
    char *after = json_dumps(res, JSON_SORT_KEYS);
    assert_string_equal(before, after); /* input untouched */
    free(before);
    free(after);
    json_decref(out);
    json_decref(res);
    scim_attrlist_free(a);
    scim_attrlist_free(x);
}

static void test_projection(void **state)
{
    (void)state;
    const char *S = "\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],\"id\":\"u1\"";
    char want[2048];

    /* 1. defaults: everything but password */
    snprintf(want, sizeof(want),
             "{%s,\"externalId\":\"x1\",\"userName\":\"bjensen\","
             "\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},"
             "\"emails\":[{\"value\":\"b@x\",\"type\":\"work\",\"primary\":true},{\"value\":\"h@x\",\"type\":\"home\"}],"
             "\"active\":true,\"groups\":[{\"value\":\"g1\",\"display\":\"G1\"}],"
             "\"" ENT "\":{\"employeeNumber\":\"7\",\"manager\":{\"value\":\"m1\",\"displayName\":\"Boss\"}},"
             "\"meta\":{\"resourceType\":\"User\",\"version\":\"W/\\\"3\\\"\"}}", S);
    proj(user_rt(), NULL, NULL, NULL, want, 0);
    /* 2. attributes=userName → schemas, id, userName */
    snprintf(want, sizeof(want), "{%s,\"userName\":\"bjensen\"}", S);
    proj(user_rt(), NULL, "userName", NULL, want, 0);
    /* 3. case-insensitive names, spaces */
    proj(user_rt(), NULL, " USERNAME , ", NULL, want, 0);
    /* 4. sub-attribute selection */
    snprintf(want, sizeof(want), "{%s,\"name\":{\"givenName\":\"Barbara\"}}", S);
    proj(user_rt(), NULL, "name.givenName", NULL, want, 0);
    /* 5. sub-attribute of a multi-valued attribute */
    snprintf(want, sizeof(want), "{%s,\"emails\":[{\"value\":\"b@x\"},{\"value\":\"h@x\"}]}", S);
    proj(user_rt(), NULL, "emails.value", NULL, want, 0);
    /* 6. URN-qualified extension attribute */
    snprintf(want, sizeof(want), "{%s,\"" ENT "\":{\"employeeNumber\":\"7\"}}", S);
    proj(user_rt(), NULL, ENT ":employeeNumber", NULL, want, 0);
    /* 7. whole extension by URN, plus manager sub-attribute with dot separator */
    snprintf(want, sizeof(want),
             "{%s,\"" ENT "\":{\"employeeNumber\":\"7\",\"manager\":{\"value\":\"m1\",\"displayName\":\"Boss\"}}}", S);
    proj(user_rt(), NULL, ENT, NULL, want, 0);
    snprintf(want, sizeof(want), "{%s,\"" ENT "\":{\"manager\":{\"value\":\"m1\"}}}", S);
    proj(user_rt(), NULL, ENT ".manager.value", NULL, want, 0);
    /* 8. password never returned, even when asked */
    snprintf(want, sizeof(want), "{%s}", S);
    proj(user_rt(), NULL, "password", NULL, want, 0);
    /* 9. unknown attribute selects nothing */
    proj(user_rt(), NULL, "nosuch", NULL, want, 0);
    /* 9b. an unknown name does not select unknown keys stored in the extension object */
    proj(user_rt(), "{\"id\":\"u1\",\"" ENT "\":{\"legacy\":1,\"department\":\"D\"}}", "nosuch", NULL,
         "{\"id\":\"u1\"}", 0);
    proj(user_rt(), "{\"id\":\"u1\",\"" ENT "\":{\"legacy\":1,\"department\":\"D\"}}", ENT, NULL,
         "{\"id\":\"u1\",\"" ENT "\":{\"legacy\":1,\"department\":\"D\"}}", 0);
    /* 10. malformed entry skipped: defaults (quirk 34) */
    struct scim_attrlist *l = NULL;
    struct scim_err err;
    uint32_t compat = 0;
    assert_int_equal(scim_attrlist_parse(reg, user_rt(), "emails[type eq \"work\"]", &l, &compat, &err), 0);
    assert_null(l);
    assert_int_equal(compat, SCIM_COMPAT_INVALID_ATTRIBUTES_PARAM);
    /* 11. malformed entry next to a good one: good one applies */
    snprintf(want, sizeof(want), "{%s,\"active\":true}", S);
    proj(user_rt(), NULL, "emails[type eq \"work\"],active", NULL, want, SCIM_COMPAT_INVALID_ATTRIBUTES_PARAM);
    /* 12. excludedAttributes: whole, sub-attribute, extension sub, id cannot be excluded */
    snprintf(want, sizeof(want),
             "{%s,\"userName\":\"bjensen\",\"name\":{\"familyName\":\"Jensen\"},\"active\":true,"
             "\"" ENT "\":{\"manager\":{\"value\":\"m1\",\"displayName\":\"Boss\"}}}", S);
    proj(user_rt(), NULL, NULL,
         "emails,name.givenName,groups,externalId,meta,id," ENT ":employeeNumber", want, 0);
    /* 13. excluding the whole extension */
    snprintf(want, sizeof(want), "{%s,\"userName\":\"bjensen\",\"active\":true}", S);
    proj(user_rt(), NULL, NULL, "emails,name,groups,externalId,meta," ENT, want, 0);
    /* 14. excluded ignored when attributes is given (RFC 7644: attributes wins) */
    snprintf(want, sizeof(want), "{%s,\"meta\":{\"resourceType\":\"User\",\"version\":\"W/\\\"3\\\"\"}}", S);
    proj(user_rt(), NULL, "meta", "meta", want, 0);
    /* 15. meta sub-attribute */
    snprintf(want, sizeof(want), "{%s,\"meta\":{\"version\":\"W/\\\"3\\\"\"}}", S);
    proj(user_rt(), NULL, "Meta.Version", NULL, want, 0);

    /* 16. groups: excludedAttributes=members */
    const char *grp = "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"id\":\"g1\","
                      "\"displayName\":\"G\",\"members\":[{\"value\":\"u1\",\"display\":\"U\"}],"
                      "\"meta\":{\"resourceType\":\"Group\"}}";
    proj(group_rt(), grp, NULL, "members",
         "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"id\":\"g1\","
         "\"displayName\":\"G\",\"meta\":{\"resourceType\":\"Group\"}}", 0);
    proj(group_rt(), grp, "members.value", NULL,
         "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"id\":\"g1\","
         "\"members\":[{\"value\":\"u1\"}]}", 0);
}

static void test_projection_includes(void **state)
{
    (void)state;
    struct scim_attrlist *a = NULL, *x = NULL;
    struct scim_err err;
    uint32_t compat = 0;
    const struct scim_resource_type *g = group_rt();
    assert_true(scim_projection_includes(g, NULL, NULL, "members"));
    assert_int_equal(scim_attrlist_parse(reg, g, "Members", &x, &compat, &err), 0);
    assert_false(scim_projection_includes(g, NULL, x, "members"));
    assert_true(scim_projection_includes(g, NULL, x, "displayName"));
    assert_true(scim_projection_includes(g, NULL, x, "id"));
    assert_int_equal(scim_attrlist_parse(reg, g, "displayName", &a, &compat, &err), 0);
    assert_false(scim_projection_includes(g, a, NULL, "members"));
    assert_true(scim_projection_includes(g, a, NULL, "id"));
    scim_attrlist_free(a);
    assert_int_equal(scim_attrlist_parse(reg, g, "members.display", &a, &compat, &err), 0);
    assert_true(scim_projection_includes(g, a, NULL, "members"));
    scim_attrlist_free(a);
    scim_attrlist_free(x);
    const struct scim_resource_type *u = user_rt();
    assert_true(scim_projection_includes(u, NULL, NULL, "groups"));
    assert_false(scim_projection_includes(u, NULL, NULL, "password"));
    assert_int_equal(compat, 0);
}

static void test_finish(void **state)
{
    (void)state;
    json_t *u = js("{\"userName\":\"b\",\"id\":\"u1\",\"meta\":{\"resourceType\":\"User\"},"
                   "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user\":"
                   "{\"manager\":{\"value\":\"m1\"}},"
                   "\"groups\":[{\"value\":\"g1\",\"display\":\"G\"}],\"schemas\":[\"bogus\"]}");
    assert_int_equal(scim_resource_finish(user_rt(), u, "https://h.example/scim/v2/"), 0);
    expect_json(u, "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],"
                   "\"id\":\"u1\",\"userName\":\"b\","
                   "\"" ENT "\":{\"manager\":{\"value\":\"m1\",\"$ref\":\"https://h.example/scim/v2/Users/m1\"}},"
                   "\"groups\":[{\"value\":\"g1\",\"display\":\"G\",\"$ref\":\"https://h.example/scim/v2/Groups/g1\"}],"
                   "\"meta\":{\"resourceType\":\"User\",\"location\":\"https://h.example/scim/v2/Users/u1\"}}");
    /* Key order: schemas first, meta last. */
    void *it = json_object_iter(u);
    assert_string_equal(json_object_iter_key(it), "schemas");
    assert_string_equal(json_object_iter_key(json_object_iter_next(u, it)), "id");
    json_decref(u);

    json_t *g = js("{\"id\":\"g9\",\"displayName\":\"G\",\"members\":[{\"value\":\"u1\"},"
                   "{\"value\":\"g2\",\"type\":\"Group\"},{\"value\":\"u3\",\"type\":\"User\"}]}");
    assert_int_equal(scim_resource_finish(group_rt(), g, "http://localhost:8080/scim/v2"), 0);
    expect_json(g, "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"id\":\"g9\","
                   "\"displayName\":\"G\",\"members\":["
                   "{\"value\":\"u1\",\"$ref\":\"http://localhost:8080/scim/v2/Users/u1\"},"
                   "{\"value\":\"g2\",\"type\":\"Group\",\"$ref\":\"http://localhost:8080/scim/v2/Groups/g2\"},"
                   "{\"value\":\"u3\",\"type\":\"User\",\"$ref\":\"http://localhost:8080/scim/v2/Users/u3\"}],"
                   "\"meta\":{\"resourceType\":\"Group\",\"location\":\"http://localhost:8080/scim/v2/Groups/g9\"}}");
    json_decref(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entra_post),
        cmocka_unit_test(test_okta_post_password),
        cmocka_unit_test(test_required_and_types),
        cmocka_unit_test(test_primary_unique),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_manager_forms),
        cmocka_unit_test(test_value_normalize),
        cmocka_unit_test(test_validate_and_immutable),
        cmocka_unit_test(test_projection),
        cmocka_unit_test(test_projection_includes),
        cmocka_unit_test(test_finish),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
