/* scim_render against its reference: for every resource and attributes/excludedAttributes
 * pair below, the text scim_render writes must be byte for byte
 * scim_json_dumps_compact(scim_project(finish(resource))), and the resource must be left as
 * it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/jsondump.h"
#include "scim/resource.h"

#define ENT SCIM_SCHEMA_ENTERPRISE
#define ACME "urn:acme:params:scim:schemas:extension:2.0:User"

static struct scim_registry *reg;

/* A custom User extension with one attribute of each "returned" kind and a complex one. */
static int setup(void **state)
{
    (void)state;
    struct scim_err err;
    reg = scim_registry_new();
    if (!reg)
        return -1;
    struct scim_attr *subs = calloc(2, sizeof(*subs));
    struct scim_attr *attrs = calloc(4, sizeof(*attrs));
    struct scim_schema *sc = calloc(1, sizeof(*sc));
    subs[0].name = strdup("number");
    subs[0].type = SCIM_T_STRING;
    subs[1].name = strdup("code");
    subs[1].type = SCIM_T_STRING;
    subs[1].returned = SCIM_RET_REQUEST;
    attrs[0].name = strdup("level");
    attrs[0].type = SCIM_T_STRING;
    attrs[1].name = strdup("secret");
    attrs[1].type = SCIM_T_STRING;
    attrs[1].returned = SCIM_RET_NEVER;
    attrs[2].name = strdup("onRequest");
    attrs[2].type = SCIM_T_STRING;
    attrs[2].returned = SCIM_RET_REQUEST;
    attrs[3].name = strdup("badge");
    attrs[3].type = SCIM_T_COMPLEX;
    attrs[3].sub_attrs = subs;
    attrs[3].n_sub_attrs = 2;
    sc->id = strdup(ACME);
    sc->attrs = attrs;
    sc->n_attrs = 4;
    return scim_registry_add_schema(reg, SCIM_RT_USER, sc, false, &err);
}

static int teardown(void **state)
{
    (void)state;
    scim_registry_free(&reg);
    return 0;
}

/* Stored forms as the store hands them out (scim_store_row_json + members/groups), and some
 * that only a bug could produce, to cover every branch of finishing. */
static const char *const users[] = {
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],\"id\":\"u1\","
    "\"externalId\":\"x1\",\"userName\":\"bjensen\",\"name\":{\"givenName\":\"Barbara\","
    "\"familyName\":\"Jensen\",\"formatted\":\"Ms. Barbara J Jensen\"},\"displayName\":\"Babs\","
    "\"emails\":[{\"value\":\"b@x\",\"type\":\"work\",\"primary\":true},{\"value\":\"h@x\","
    "\"type\":\"home\"}],\"active\":true,\"password\":\"never-out\",\"title\":\"T\\u00e9\\\"q\\n\","
    "\"" ENT "\":{\"employeeNumber\":\"7\",\"manager\":{\"value\":\"m1\",\"displayName\":\"Boss\"}},"
    "\"meta\":{\"resourceType\":\"User\",\"created\":\"2026-01-01T00:00:00Z\","
    "\"lastModified\":\"2026-01-02T00:00:00Z\",\"version\":\"W/\\\"3\\\"\"},"
    "\"groups\":[{\"value\":\"g1\",\"display\":\"G1\",\"type\":\"direct\"},{\"value\":\"g2\","
    "\"type\":\"indirect\"}]}",
    /* no externalId, no extension, no groups, meta without resourceType, phone numbers */
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"u2\","
    "\"userName\":\"x\",\"phoneNumbers\":[{\"value\":\"+1\",\"type\":\"work\"}],"
    "\"meta\":{\"created\":\"2026-01-01T00:00:00Z\",\"version\":\"W/\\\"1\\\"\"},\"groups\":[]}",
    /* the custom extension, an extension key in another case, a stale $ref, a manager as a
     * string, an unknown attribute, a real number, non-object array elements */
    "{\"id\":\"u3\",\"userName\":\"y\",\"" ACME "\":{\"level\":\"3\",\"secret\":\"s\","
    "\"onRequest\":\"r\",\"badge\":{\"number\":\"9\",\"code\":\"c\"},\"other\":1.5},"
    "\"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER\":{\"manager\":\"m2\","
    "\"department\":\"D\"},\"x-unknown\":{\"a\":[1,2]},\"emails\":[\"plain\",{\"value\":\"e\"}],"
    "\"groups\":[{\"value\":\"g1\",\"$ref\":\"stale\"},{\"display\":\"no value\"},7],"
    "\"meta\":\"not an object\"}",
    /* no meta at all, no id, manager without a value, empty extension */
    "{\"userName\":\"z\",\"" ENT "\":{\"manager\":{\"displayName\":\"m\"}},\"" ACME "\":{},"
    "\"name\":{}}",
    /* meta with a location already, manager with a $ref, odd types */
    "{\"id\":\"u/5 \\u00fc\",\"userName\":\"w\",\"active\":null,\"" ENT "\":{\"manager\":"
    "{\"$ref\":\"old\",\"value\":\"m3\"}},\"meta\":{\"location\":\"old\",\"resourceType\":\"Old\"},"
    "\"emails\":{\"value\":\"not an array\"}}",
};

static const char *const groups[] = {
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"id\":\"g1\","
    "\"displayName\":\"Admins\",\"externalId\":\"e\",\"meta\":{\"resourceType\":\"Group\","
    "\"created\":\"2026-01-01T00:00:00Z\",\"version\":\"W/\\\"2\\\"\"},\"members\":["
    "{\"value\":\"u1\",\"type\":\"User\",\"display\":\"B\"},{\"value\":\"g2\",\"type\":\"group\"},"
    "{\"value\":\"u3\"},{\"type\":\"User\"}]}",
    "{\"id\":\"g2\",\"displayName\":\"Empty\",\"members\":[]}",
};

static const char *const user_params[] = {
    NULL, "", "userName", "USERNAME , name.givenName", "emails", "emails.value", "emails.type,name",
    "groups", "groups.display", "groups.$ref", "meta", "meta.created", "meta.location",
    "meta.resourceType", "id", "externalId", "password", "nosuch", "title", ENT,
    ENT ":manager", ENT ":manager.value", ENT ":manager.$ref", ENT ":employeeNumber", ACME,
    ACME ":level", ACME ":onRequest", ACME ":secret", ACME ":badge", ACME ":badge.code",
    ACME ":badge.number", "phoneNumbers.type", "x-unknown", "active", "name.formatted",
};

static const char *const group_params[] = {
    NULL, "", "members", "members.value", "members.display", "members.$ref", "members.type",
    "displayName", "meta.version", "meta.location", "externalId", "id",
};

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    return j;
}

static struct scim_attrlist *attrs(const struct scim_resource_type *rt, const char *p)
{
    struct scim_attrlist *l = NULL;
    struct scim_err err;
    uint32_t compat = 0;
    scim_err_clear(&err);
    if (scim_attrlist_parse(reg, rt, p, &l, &compat, &err) != 0)
        fail_msg("attrlist %s: %s", p, err.detail);
    return l;
}

static void compare(const struct scim_resource_type *rt, const char *text, const char *ap,
                    const char *xp, const char *base)
{
    struct scim_attrlist *a = attrs(rt, ap), *x = attrs(rt, xp);
    json_t *res = js(text), *copy = js(text);
    struct scim_buf b;

    assert_int_equal(scim_resource_finish(rt, copy, base), 0);
    json_t *proj = scim_project(rt, copy, a, x);
    char *want = scim_json_dumps_compact(proj);
    scim_buf_init(&b, 0);
    assert_int_equal(scim_buf_adds(&b, "prefix"), 0);
    assert_int_equal(scim_render(&b, rt, res, a, x, base), 0);
    if (strcmp(scim_buf_str(&b) + 6, want) != 0)
        fail_msg("attributes=%s excluded=%s\n got: %s\nwant: %s", ap ? ap : "-", xp ? xp : "-",
                 scim_buf_str(&b) + 6, want);
    char *before = json_dumps(js(text), JSON_SORT_KEYS), *after = json_dumps(res, JSON_SORT_KEYS);
    assert_string_equal(before, after); /* the resource is not changed */
    free(before);
    free(after);
    free(want);
    scim_buf_release(&b);
    json_decref(proj);
    json_decref(res);
    json_decref(copy);
    scim_attrlist_free(a);
    scim_attrlist_free(x);
}

static void run(enum scim_rtype kind, const char *const *docs, size_t n_docs,
                const char *const *params, size_t n_params)
{
    const struct scim_resource_type *rt = scim_registry_rt(reg, kind);
    const char *bases[] = {"https://h.example/scim/v2", "https://h.example/t/x/scim/v2//", "", NULL};
    for (size_t d = 0; d < n_docs; d++)
        for (size_t b = 0; b < 4; b++)
            for (size_t p = 0; p < n_params; p++) {
                compare(rt, docs[d], params[p], NULL, bases[b]);
                compare(rt, docs[d], NULL, params[p], bases[b]);
                compare(rt, docs[d], params[p], params[(p + 3) % n_params], bases[b]);
            }
}

static void test_users(void **state)
{
    (void)state;
    run(SCIM_RT_USER, users, sizeof(users) / sizeof(*users), user_params,
        sizeof(user_params) / sizeof(*user_params));
}

static void test_groups(void **state)
{
    (void)state;
    run(SCIM_RT_GROUP, groups, sizeof(groups) / sizeof(*groups), group_params,
        sizeof(group_params) / sizeof(*group_params));
}

/* A few outputs spelled out, so that the reference itself is pinned too. */
static void test_literal(void **state)
{
    (void)state;
    const struct scim_resource_type *g = scim_registry_rt(reg, SCIM_RT_GROUP);
    struct scim_buf b;
    json_t *res = js(groups[1]);
    scim_buf_init(&b, 0);
    assert_int_equal(scim_render(&b, g, res, NULL, NULL, "http://h/scim/v2/"), 0);
    assert_string_equal(scim_buf_str(&b),
                        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
                        "\"id\":\"g2\",\"displayName\":\"Empty\",\"members\":[],\"meta\":"
                        "{\"resourceType\":\"Group\",\"location\":\"http://h/scim/v2/Groups/g2\"}}");
    json_decref(res);
    scim_buf_reset(&b);
    res = js("{\"id\":\"g\",\"displayName\":\"D\",\"members\":[{\"value\":\"a\",\"type\":\"Group\"}]}");
    struct scim_attrlist *a = attrs(g, "members.$ref");
    assert_int_equal(scim_render(&b, g, res, a, NULL, "http://h"), 0);
    assert_string_equal(scim_buf_str(&b),
                        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
                        "\"id\":\"g\",\"members\":[{\"$ref\":\"http://h/Groups/a\"}]}");
    scim_attrlist_free(a);
    json_decref(res);
    scim_buf_reset(&b);
    assert_int_equal(scim_resource_location(g, "http://h/x//", "id 1", &b), 0);
    assert_string_equal(scim_buf_str(&b), "http://h/x/Groups/id 1");
    scim_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_literal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
