/* Unit tests for the filter/path parser and evaluator (src/scim/filter.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "scim/filter.h"

/* ------------------------------------------------------------------ fixtures */

/* A small hand-made schema, so metadata (caseExact, types) is known without the registry. */
static const struct scim_attr email_subs[] = {
    {.name = "value", .type = SCIM_T_STRING},
    {.name = "type", .type = SCIM_T_STRING},
    {.name = "primary", .type = SCIM_T_BOOLEAN},
};
static const struct scim_attr name_subs[] = {
    {.name = "givenName", .type = SCIM_T_STRING},
    {.name = "familyName", .type = SCIM_T_STRING},
};
static const struct scim_attr ref_subs[] = {
    {.name = "value", .type = SCIM_T_STRING, .case_exact = true},
};
static const struct scim_attr attrs[] = {
    {.name = "userName", .type = SCIM_T_STRING},
    {.name = "id", .type = SCIM_T_STRING, .case_exact = true},
    {.name = "created", .type = SCIM_T_DATETIME},
    {.name = "emails", .type = SCIM_T_COMPLEX, .multi_valued = true, .sub_attrs = email_subs,
     .n_sub_attrs = 3},
    {.name = "active", .type = SCIM_T_BOOLEAN},
    {.name = "age", .type = SCIM_T_INTEGER},
    {.name = "score", .type = SCIM_T_DECIMAL},
    {.name = "name", .type = SCIM_T_COMPLEX, .sub_attrs = name_subs, .n_sub_attrs = 2},
    {.name = "members", .type = SCIM_T_COMPLEX, .multi_valued = true, .sub_attrs = ref_subs,
     .n_sub_attrs = 1},
    {.name = "manager", .type = SCIM_T_COMPLEX, .sub_attrs = ref_subs, .n_sub_attrs = 1},
};
#define N_ATTRS (sizeof attrs / sizeof attrs[0])
/* The whole resource seen as one complex attribute: evaluating with it as `parent` takes all
 * metadata from scim_attr_sub. */
static const struct scim_attr wrapper = {.name = "r", .type = SCIM_T_COMPLEX, .sub_attrs = attrs,
                                         .n_sub_attrs = N_ATTRS};
static const struct scim_schema schema = {.id = "urn:test:core:2.0:Thing", .name = "Thing",
                                          .attrs = attrs, .n_attrs = N_ATTRS};
static const struct scim_resource_type rt = {.kind = SCIM_RT_USER, .id = "Thing", .name = "Thing",
                                             .endpoint = "/Things", .schema = &schema};

#define ENT "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

static const char *doc_text =
    "{\"userName\":\"BJensen\",\"id\":\"AbC\","
    "\"created\":\"2015-10-10T14:38:21.8617979-07:00\","
    "\"emails\":[{\"value\":\"b@Example.com\",\"type\":\"work\",\"primary\":true},"
    "{\"value\":\"bj@home.org\",\"type\":\"home\"}],"
    "\"active\":true,\"age\":42,\"score\":2.5,"
    "\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},"
    "\"nickName\":null,\"title\":\"\",\"x\":[],\"o\":{},"
    "\"members\":[{\"value\":\"u1\"},{\"value\":\"u2\"}],\"manager\":{\"value\":\"m1\"},"
    "\"schemas\":[\"urn:a\",\"urn:b\"],"
    "\"" ENT "\":{\"employeeNumber\":\"701984\",\"manager\":{\"value\":\"boss\"}}}";

static json_t *doc(void)
{
    json_error_t e;
    json_t *d = json_loads(doc_text, 0, &e);
    assert_non_null(d);
    return d;
}

static struct scim_filter *parse_ok(const char *text)
{
    struct scim_filter *f = NULL;
    struct scim_err err;
    scim_err_clear(&err);
    int rc = scim_filter_parse(text, NULL, NULL, &f, &err);
    if (rc != 0)
        fail_msg("parse of '%s' failed: %s", text, err.detail);
    assert_non_null(f);
    return f;
}

/* Parses `text` and evaluates it against the fixture document. */
static bool m(const char *text, const struct scim_resource_type *r, const struct scim_attr *parent)
{
    struct scim_filter *f = parse_ok(text);
    json_t *d = doc();
    bool res = scim_filter_match(f, d, r, parent);
    json_decref(d);
    scim_filter_free(f);
    return res;
}

#define MATCH(t) assert_true(m((t), NULL, &wrapper))
#define NOMATCH(t) assert_false(m((t), NULL, &wrapper))

static void expect_err(const char *text, const struct scim_filter_limits *lim, int pos,
                       const char *needle)
{
    struct scim_filter *f = NULL;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_filter_parse(text, lim, NULL, &f, &err), -1);
    assert_null(f);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, SCIM_TYPE_INVALID_FILTER);
    if (err.pos != pos)
        fail_msg("'%s': expected pos %d, got %d (%s)", text, pos, err.pos, err.detail);
    if (!strstr(err.detail, needle))
        fail_msg("'%s': detail '%s' lacks '%s'", text, err.detail, needle);
    char at[64];
    snprintf(at, sizeof at, "at position %d", pos);
    if (!strstr(err.detail, at))
        fail_msg("'%s': detail '%s' does not name the position", text, err.detail);
}

/* ------------------------------------------------------------------ parser API */

static void test_ast_comparison(void **state)
{
    (void)state;
    struct scim_filter *f = parse_ok("userName eq \"bjensen\" and age gt 42");
    assert_int_equal(f->op, SCIM_F_AND);
    assert_int_equal(f->pos, 0);
    const struct scim_filter *l = f->left, *r = f->right;
    assert_int_equal(l->op, SCIM_F_EQ);
    assert_string_equal(l->path.attr, "userName");
    assert_null(l->path.urn);
    assert_null(l->path.sub);
    assert_int_equal(l->val.type, SCIM_V_STRING);
    assert_string_equal(l->val.str, "bjensen");
    assert_false(l->val.bare);
    assert_int_equal(r->op, SCIM_F_GT);
    assert_int_equal(r->pos, 26);
    assert_int_equal(r->path.pos, 26);
    assert_int_equal(r->val.type, SCIM_V_NUMBER);
    assert_true(r->val.is_integer);
    assert_int_equal(r->val.i, 42);
    assert_string_equal(r->val.str, "42");
    scim_filter_free(f);
}

static void test_ast_values(void **state)
{
    (void)state;
    struct scim_filter *f = parse_ok("x eq 1.5e2");
    assert_int_equal(f->val.type, SCIM_V_NUMBER);
    assert_false(f->val.is_integer);
    assert_true(f->val.num > 149.99 && f->val.num < 150.01);
    assert_string_equal(f->val.str, "1.5e2");
    scim_filter_free(f);

    f = parse_ok("x eq -7");
    assert_true(f->val.is_integer);
    assert_int_equal(f->val.i, -7);
    scim_filter_free(f);

    /* too large for int64: still a number, not an integer */
    f = parse_ok("x eq 9223372036854775808");
    assert_int_equal(f->val.type, SCIM_V_NUMBER);
    assert_false(f->val.is_integer);
    scim_filter_free(f);

    f = parse_ok("externalId eq jyoung");
    assert_int_equal(f->val.type, SCIM_V_STRING);
    assert_true(f->val.bare);
    assert_string_equal(f->val.str, "jyoung");
    scim_filter_free(f);

    f = parse_ok("active eq TRUE");
    assert_int_equal(f->val.type, SCIM_V_BOOL);
    assert_true(f->val.b);
    scim_filter_free(f);

    f = parse_ok("x eq Null");
    assert_int_equal(f->val.type, SCIM_V_NULL);
    scim_filter_free(f);

    f = parse_ok("x eq \"\\u00e9\\ud83d\\ude00\"");
    assert_string_equal(f->val.str, "\xc3\xa9\xf0\x9f\x98\x80");
    scim_filter_free(f);
}

static void test_ast_valuepath(void **state)
{
    (void)state;
    struct scim_filter *f = parse_ok("emails[type eq \"work\"].value eq \"x\"");
    assert_int_equal(f->op, SCIM_F_VALUEPATH);
    assert_string_equal(f->path.attr, "emails");
    assert_null(f->path.sub);
    assert_int_equal(f->left->op, SCIM_F_AND);
    assert_string_equal(f->left->left->path.attr, "type");
    assert_string_equal(f->left->right->path.attr, "value");
    assert_int_equal(f->left->right->pos, 23);
    assert_null(f->right);
    char *s = scim_filter_to_sexp(f);
    assert_string_equal(s, "(valuepath emails (and (eq type \"work\") (eq value \"x\")))");
    free(s);
    scim_filter_free(f);
}

static void test_ast_urn(void **state)
{
    (void)state;
    struct scim_filter *f = parse_ok(ENT ":manager.value eq \"x\"");
    assert_string_equal(f->path.urn, ENT);
    assert_string_equal(f->path.attr, "manager");
    assert_string_equal(f->path.sub, "value");
    scim_filter_free(f);

    f = parse_ok(ENT ".manager eq \"x\"");
    assert_string_equal(f->path.urn, ENT);
    assert_string_equal(f->path.attr, "manager");
    assert_null(f->path.sub);
    scim_filter_free(f);

    /* lower-case word after the last ':' is an attribute with a sub-attribute */
    f = parse_ok("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName pr");
    assert_string_equal(f->path.urn, "urn:ietf:params:scim:schemas:core:2.0:User");
    assert_string_equal(f->path.attr, "name");
    assert_string_equal(f->path.sub, "givenName");
    scim_filter_free(f);
}

static void test_sexp_escapes(void **state)
{
    (void)state;
    struct scim_filter *f = parse_ok("a eq \"q\\\"b\\\\s\\u0001\" or not (b pr)");
    char *s = scim_filter_to_sexp(f);
    assert_string_equal(s, "(or (eq a \"q\\\"b\\\\s\\u0001\") (not (pr b)))");
    free(s);
    scim_filter_free(f);
}

static void test_path_parse(void **state)
{
    (void)state;
    struct scim_path *p = NULL;
    struct scim_err err;
    scim_err_clear(&err);

    assert_int_equal(scim_path_parse("emails[type eq \"work\"].value", NULL, NULL, &p, &err), 0);
    assert_string_equal(p->a.attr, "emails");
    assert_string_equal(p->a.sub, "value");
    assert_null(p->a.urn);
    assert_non_null(p->filter);
    assert_int_equal(p->filter->op, SCIM_F_EQ);
    assert_string_equal(p->filter->path.attr, "type");
    scim_path_free(p);

    assert_int_equal(scim_path_parse("name.givenName", NULL, NULL, &p, &err), 0);
    assert_string_equal(p->a.attr, "name");
    assert_string_equal(p->a.sub, "givenName");
    assert_null(p->filter);
    scim_path_free(p);

    assert_int_equal(scim_path_parse(ENT ":employeeNumber", NULL, NULL, &p, &err), 0);
    assert_string_equal(p->a.urn, ENT);
    assert_string_equal(p->a.attr, "employeeNumber");
    scim_path_free(p);

    p = NULL;
    assert_int_equal(scim_path_parse("members[value eq \"a\"] or x", NULL, NULL, &p, &err), -1);
    assert_null(p);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, SCIM_TYPE_INVALID_PATH);
    assert_int_equal(err.pos, 22);
    assert_non_null(strstr(err.detail, "invalid path"));
    assert_non_null(strstr(err.detail, "at position 22"));

    assert_int_equal(scim_path_parse("", NULL, NULL, &p, &err), -1);
    assert_int_equal(err.pos, 0);
    assert_string_equal(err.scim_type, SCIM_TYPE_INVALID_PATH);

    /* limits apply to paths too */
    const struct scim_filter_limits lim = {8, 0};
    assert_int_equal(scim_path_parse("name.givenName", &lim, NULL, &p, &err), -1);
    assert_int_equal(err.pos, 8);
}

/* ------------------------------------------------------------------ errors and limits */

static void test_error_positions(void **state)
{
    (void)state;
    expect_err("", NULL, 0, "empty filter");
    expect_err(NULL, NULL, 0, "empty filter");
    expect_err("userName xx \"a\"", NULL, 9,
               "expected a comparison operator after \"userName\"");
    expect_err("userName", NULL, 8, "expected a comparison operator");
    expect_err("userName eq", NULL, 11, "expected a value after \"eq\"");
    expect_err("userName eq \"abc", NULL, 12, "unterminated string");
    expect_err("userName eq \"a\\x\"", NULL, 14, "invalid escape");
    expect_err("userName eq \"a\" trailing", NULL, 16, "unexpected \"trailing\"");
    expect_err("(userName pr", NULL, 12, "expected \")\"");
    expect_err("userName pr and", NULL, 15, "expected an attribute name");
    expect_err("emails[type eq \"w\" and x[y pr]]", NULL, 24, "nested value filters");
    expect_err("emails[type eq \"w\"", NULL, 18, "expected \"]\"");
    expect_err("name.a.b pr", NULL, 6, "at most one sub-attribute");
    expect_err("a pr )", NULL, 5, "unexpected \")\"");
    expect_err("a eq \"\\ud800x\"", NULL, 6, "unpaired surrogate");
    expect_err("9a pr", NULL, 0, "expected an attribute name");
}

static void test_limits_length(void **state)
{
    (void)state;
    const struct scim_filter_limits lim = {10, 0};
    expect_err("userName eq \"bjensen\"", &lim, 10, "longer than 10 bytes");
    struct scim_filter *f = NULL;
    struct scim_err err;
    assert_int_equal(scim_filter_parse("a eq \"123\"", &lim, NULL, &f, &err), 0); /* 10 bytes */
    scim_filter_free(f);
}

static void test_limits_depth(void **state)
{
    (void)state;
    const struct scim_filter_limits one = {0, 1}, two = {0, 2};
    struct scim_filter *f = NULL;
    struct scim_err err;

    expect_err("((a pr))", &one, 1, "nesting deeper than 1 levels");
    assert_int_equal(scim_filter_parse("((a pr))", &two, NULL, &f, &err), 0);
    scim_filter_free(f);
    /* each and/or of a chain is a level of the tree */
    expect_err("a pr or b pr or c pr", &one, 13, "nesting deeper");
    assert_int_equal(scim_filter_parse("a pr or b pr", &one, NULL, &f, &err), 0);
    scim_filter_free(f);
    expect_err("not not a pr", &one, 4, "nesting deeper");
    expect_err("emails[a pr].value eq 1", &one, 6, "nesting deeper");
    expect_err("(a pr and b pr)", &one, 6, "nesting deeper");
    assert_int_equal(scim_filter_parse("emails[a pr]", &one, NULL, &f, &err), 0);
    scim_filter_free(f);
}

static void test_limits_unlimited_is_bounded(void **state)
{
    (void)state;
    /* 0 means "no configured limit", but the tree height is still capped so nothing recurses
     * without bound. */
    size_t n = 100000;
    char *s = malloc(2 * n + 16);
    assert_non_null(s);
    memset(s, '(', n);
    memcpy(s + n, "a pr", 4);
    memset(s + n + 4, ')', n);
    s[2 * n + 4] = '\0';
    expect_err(s, NULL, 1000, "nesting deeper than 1000 levels");

    char *chain = malloc(20 * n);
    assert_non_null(chain);
    size_t len = 0;
    for (size_t i = 0; i < 20000; i++) {
        memcpy(chain + len, i ? " or a pr" : "a pr", i ? 8 : 4);
        len += i ? 8 : 4;
    }
    chain[len] = '\0';
    struct scim_filter *f = NULL;
    struct scim_err err;
    assert_int_equal(scim_filter_parse(chain, NULL, NULL, &f, &err), -1);
    assert_non_null(strstr(err.detail, "nesting deeper"));
    free(chain);
    free(s);
}

/* ------------------------------------------------------------------ evaluation */

static void test_match_strings(void **state)
{
    (void)state;
    MATCH("userName eq \"bjensen\""); /* caseExact false */
    MATCH("USERNAME eq \"bjensen\""); /* attribute names are case-insensitive */
    MATCH("userName co \"JENS\"");
    MATCH("userName sw \"bj\"");
    MATCH("userName ew \"SEN\"");
    NOMATCH("userName ew \"jen\"");
    MATCH("userName ne \"x\"");
    NOMATCH("userName ne \"BJENSEN\"");
    MATCH("userName gt \"a\"");
    NOMATCH("userName lt \"b\"");
    MATCH("userName le \"bjensen\"");
    MATCH("userName sw O or userName sw B"); /* bare token */
}

static void test_match_case_exact(void **state)
{
    (void)state;
    NOMATCH("id eq \"abc\"");
    MATCH("id eq \"AbC\"");
    NOMATCH("id sw \"ab\"");
    MATCH("id ne \"abc\"");
    NOMATCH("members eq \"U1\""); /* members.value is caseExact in the fixture */
    MATCH("members eq \"u1\"");
    /* without metadata everything is case-insensitive */
    assert_true(m("id eq \"abc\"", NULL, NULL));
    /* the same metadata through the resource type */
    assert_false(m("id eq \"abc\"", &rt, NULL));
    assert_true(m("userName eq \"bjensen\"", &rt, NULL));
}

static void test_match_datetime(void **state)
{
    (void)state;
    /* 14:38:21.8617979-07:00 is 21:38:21.861797Z */
    MATCH("created eq \"2015-10-10T21:38:21.861797Z\"");
    MATCH("created gt 2015-10-10T21:38:21Z");
    NOMATCH("created lt 2015-10-10T21:38:21Z");
    MATCH("created ge \"2015-10-10T14:38:21.8617979-07:00\"");
    MATCH("created le 2015-10-11T00:00:00.0000000+02:00");
    MATCH("created gt 0001-01-03T00:00:00.0000000Z");
    NOMATCH("created gt 2015-10-10T23:38:21+01:00");
    /* lexically "2015-10-10T14..." < "2015-10-10T20...", as instants it is later */
    MATCH("created gt 2015-10-10T20:00:00Z");
    assert_true(m("created gt 2015-10-10T20:00:00Z", &rt, NULL));
}

static void test_match_numbers_booleans(void **state)
{
    (void)state;
    MATCH("age eq 42");
    MATCH("age gt 41");
    NOMATCH("age gt 42");
    MATCH("age lt 42.5");
    MATCH("age ge \"42\"");
    MATCH("score eq 2.5");
    MATCH("score gt 2");
    NOMATCH("score le 2.4e0");
    MATCH("active eq true");
    MATCH("ActiVe eq True");
    MATCH("active eq \"True\"");
    NOMATCH("active eq false");
    MATCH("active ne false");
    NOMATCH("active gt false");
    MATCH("emails[primary eq \"true\"]");
}

static void test_match_multivalued(void **state)
{
    (void)state;
    MATCH("emails co \"example.com\"");       /* implicit "value" of each element */
    NOMATCH("emails co \"nowhere\"");
    MATCH("emails.type eq \"home\"");
    MATCH("emails.value ew \".ORG\"");
    MATCH("members eq \"u2\"");
    NOMATCH("members eq \"u3\"");
    MATCH("manager eq \"m1\"");               /* single complex: its "value" */
    MATCH("schemas eq \"urn:b\"");
    MATCH("id eq \"AbC\" and members eq \"u1\"");
}

static void test_match_valuepath(void **state)
{
    (void)state;
    MATCH("emails[type eq \"work\"].value eq \"B@EXAMPLE.COM\"");
    MATCH("emails[type eq \"work\" and primary eq true]");
    NOMATCH("emails[type eq \"home\" and primary eq true]");
    NOMATCH("emails[type eq \"home\"].value co \"example\"");
    MATCH("emails[not (type eq \"work\")]");
    MATCH("manager[value eq \"m1\"]");
    NOMATCH("name[givenName eq \"x\"]");
    NOMATCH("missing[a pr]");
    /* evaluation of an element with the complex attribute as parent (PATCH value filters) */
    json_t *el = json_pack("{s:s,s:s}", "Type", "Work", "value", "z");
    struct scim_filter *f = parse_ok("type eq \"work\" and value pr");
    assert_true(scim_filter_match(f, el, NULL, &attrs[3]));
    scim_filter_free(f);
    json_decref(el);
    assert_true(m("emails[type eq \"work\"]", &rt, NULL));
}

static void test_match_logic_null_pr(void **state)
{
    (void)state;
    NOMATCH("not (userName eq \"bjensen\")");
    MATCH("not (userName eq \"x\")");
    MATCH("userName eq \"x\" or age eq 42");
    NOMATCH("userName eq \"x\" and age eq 42");
    MATCH("nickName eq null");
    MATCH("missing eq null");
    NOMATCH("userName eq null");
    MATCH("userName ne null");
    NOMATCH("nickName ne null");
    MATCH("userName pr");
    NOMATCH("nickName pr"); /* null */
    NOMATCH("title pr");    /* empty string */
    NOMATCH("x pr");        /* empty array */
    NOMATCH("o pr");        /* empty object */
    NOMATCH("missing pr");
    MATCH("emails pr");
    MATCH("name.givenName pr");
    NOMATCH("name.middleName pr");
    NOMATCH("missing eq \"x\"");
    MATCH("missing ne \"x\"");
    MATCH("name.familyName eq \"jensen\"");
    MATCH("name.FamilyName eq Jensen");
}

static void test_match_urn(void **state)
{
    (void)state;
    MATCH(ENT ":employeeNumber eq \"701984\"");
    MATCH(ENT ":manager.value eq \"boss\"");
    MATCH(ENT ".manager eq \"boss\"");
    MATCH("urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User:employeeNumber pr");
    NOMATCH(ENT ":userName pr"); /* not inside the extension object */
    NOMATCH("urn:example:other:1.0:Ext:employeeNumber pr");
    MATCH("urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"bjensen\"");
    assert_true(m("urn:test:core:2.0:Thing:userName eq \"bjensen\"", &rt, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ast_comparison),
        cmocka_unit_test(test_ast_values),
        cmocka_unit_test(test_ast_valuepath),
        cmocka_unit_test(test_ast_urn),
        cmocka_unit_test(test_sexp_escapes),
        cmocka_unit_test(test_path_parse),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_limits_length),
        cmocka_unit_test(test_limits_depth),
        cmocka_unit_test(test_limits_unlimited_is_bounded),
        cmocka_unit_test(test_match_strings),
        cmocka_unit_test(test_match_case_exact),
        cmocka_unit_test(test_match_datetime),
        cmocka_unit_test(test_match_numbers_booleans),
        cmocka_unit_test(test_match_multivalued),
        cmocka_unit_test(test_match_valuepath),
        cmocka_unit_test(test_match_logic_null_pr),
        cmocka_unit_test(test_match_urn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
