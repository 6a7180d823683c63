/* Filter AST → SQL text and parameters in the PostgreSQL dialect (the text the PostgreSQL
 * backend sends with $n placeholders), on hand-built ASTs: exact SQL and parameters for the
 * column, JSON, multi-valued and sort cases, and client values (injection strings) only ever
 * in parameters. The SQLite dialect is test_sqlgen.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "store/sql/sqlgen.h"

static struct scim_registry *reg;

/* ---- AST builders (freed by tree_free) ---- */

static struct scim_filter *node(enum scim_fop op)
{
    struct scim_filter *f = calloc(1, sizeof(*f));
    f->op = op;
    return f;
}

static void set_path(struct scim_filter *f, const char *urn, const char *attr, const char *sub)
{
    f->path.urn = urn ? strdup(urn) : NULL;
    f->path.attr = strdup(attr);
    f->path.sub = sub ? strdup(sub) : NULL;
}

static struct scim_filter *cmp_s(const char *attr, const char *sub, enum scim_fop op, const char *v)
{
    struct scim_filter *f = node(op);
    set_path(f, NULL, attr, sub);
    f->val.type = SCIM_V_STRING;
    f->val.str = strdup(v);
    return f;
}

static struct scim_filter *cmp_b(const char *attr, enum scim_fop op, bool b)
{
    struct scim_filter *f = node(op);
    set_path(f, NULL, attr, NULL);
    f->val.type = SCIM_V_BOOL;
    f->val.b = b;
    return f;
}

static struct scim_filter *pr(const char *attr, const char *sub)
{
    struct scim_filter *f = node(SCIM_F_PR);
    set_path(f, NULL, attr, sub);
    return f;
}

static struct scim_filter *bin(enum scim_fop op, struct scim_filter *l, struct scim_filter *r)
{
    struct scim_filter *f = node(op);
    f->left = l;
    f->right = r;
    return f;
}

static struct scim_filter *vpath(const char *attr, struct scim_filter *inner)
{
    struct scim_filter *f = node(SCIM_F_VALUEPATH);
    set_path(f, NULL, attr, NULL);
    f->left = inner;
    return f;
}

static void tree_free(struct scim_filter *f)
{
    if (!f)
        return;
    tree_free(f->left);
    tree_free(f->right);
    free(f->path.urn);
    free(f->path.attr);
    free(f->path.sub);
    free(f->val.str);
    free(f);
}

/* Compiles and compares SQL text; returns the fragment for parameter checks. */
static void expect(enum scim_rtype kind, struct scim_filter *f, const char *sql, struct scim_sql_frag *out)
{
    struct scim_err err;
    scim_err_clear(&err);
    scim_sql_frag_init(out);
    int rc = scim_sqlgen_where(&scim_sql_dialect_pg, scim_registry_rt(reg, kind), f, 7, 2, out, &err);
    if (rc != 0)
        fail_msg("compile failed: %d %s", err.status, err.detail);
    if (strcmp(scim_buf_str(&out->sql), sql) != 0)
        fail_msg("got  %s\nwant %s", scim_buf_str(&out->sql), sql);
    tree_free(f);
}

static void param_s(struct scim_sql_frag *f, size_t i, const char *want)
{
    assert_true(i < f->n_params);
    assert_int_equal(f->params[i].type, SCIM_SQL_P_TEXT);
    assert_string_equal(f->params[i].s, want);
}

static void param_i(struct scim_sql_frag *f, size_t i, int64_t want)
{
    assert_true(i < f->n_params);
    assert_int_equal(f->params[i].type, SCIM_SQL_P_INT);
    assert_int_equal(f->params[i].i, want);
}

static void test_columns(void **state)
{
    (void)state;
    struct scim_sql_frag f;
    expect(SCIM_RT_USER, cmp_s("userName", NULL, SCIM_F_EQ, "BJensen"),
           "lower(r.user_name) = $2", &f);
    param_s(&f, 0, "bjensen");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_s("userName", NULL, SCIM_F_SW, "Bj@"),
           "(lower(r.user_name) >= $2 AND lower(r.user_name) < $3)", &f);
    param_s(&f, 0, "bj@");
    param_s(&f, 1, "bj[");
    assert_int_equal(f.n_params, 2);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_s("externalId", NULL, SCIM_F_SW, "Ab"),
           "(r.external_id >= $2 AND r.external_id < $3)", &f);
    param_s(&f, 0, "Ab");
    param_s(&f, 1, "Ac");
    assert_int_equal(f.n_params, 2);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_s("externalId", NULL, SCIM_F_EQ, "Ab"),
           "r.external_id = $2", &f);
    param_s(&f, 0, "Ab");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_s("id", NULL, SCIM_F_EQ, "abc"),
           "r.id = $2", &f);
    param_s(&f, 0, "abc");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_GROUP, cmp_s("displayName", NULL, SCIM_F_EQ, "Staff"),
           "lower(r.display_name) = $2", &f);
    param_s(&f, 0, "staff");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_b("active", SCIM_F_EQ, true),
           "r.active = $2", &f);
    param_i(&f, 0, 1LL);
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_s("meta", "lastModified", SCIM_F_GT, "2020-01-01T00:00:00Z"),
           "r.last_modified > $2", &f);
    param_i(&f, 0, 1577836800000000LL);
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
}

static void test_json(void **state)
{
    (void)state;
    struct scim_sql_frag f;
    expect(SCIM_RT_USER, cmp_s("name", "givenName", SCIM_F_EQ, "Barbara"),
           "lower((((r.doc) -> 'name' -> 'givenName' #>> '{}')) COLLATE \"C\") = $2", &f);
    param_s(&f, 0, "barbara");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_s("title", NULL, SCIM_F_CO, "50%_off\\"),
           "((r.doc) -> 'title' #>> '{}') ILIKE $2 ESCAPE '\\'", &f);
    param_s(&f, 0, "%50\\%\\_off\\\\%");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    struct scim_filter *urn = cmp_s("employeeNumber", NULL, SCIM_F_EQ, "7");
    urn->path.urn = strdup(SCIM_SCHEMA_ENTERPRISE);
    expect(SCIM_RT_USER, urn,
           "lower((((r.doc) -> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' -> 'employeeNumber' #>> '{}')) COLLATE \"C\") = $2", &f);
    param_s(&f, 0, "7");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_s("title", NULL, SCIM_F_NE, "x"),
           "coalesce(lower((((r.doc) -> 'title' #>> '{}')) COLLATE \"C\") <> $2, true)", &f);
    param_s(&f, 0, "x");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, pr("title", NULL),
           "(((r.doc) -> 'title' #>> '{}') IS NOT NULL AND ((r.doc) -> 'title' #>> '{}') NOT IN ('', '[]', '{}'))", &f);
    assert_int_equal(f.n_params, 0);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_s("meta", "created", SCIM_F_GE, "2021-06-01T12:00:00+02:00"),
           "r.created >= $2", &f);
    param_i(&f, 0, 1622541600000000LL);
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
}

static void test_multi(void **state)
{
    (void)state;
    struct scim_sql_frag f;
    expect(SCIM_RT_USER, cmp_s("emails", "value", SCIM_F_EQ, "A@B.example"),
           "r.pk IN (SELECT em.resource_pk FROM emails em WHERE em.tenant_id = $2 AND (lower(em.value) = $3))", &f);
    param_i(&f, 0, 7LL);
    param_s(&f, 1, "a@b.example");
    assert_int_equal(f.n_params, 2);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER,
           vpath("emails", bin(SCIM_F_AND, cmp_s("type", NULL, SCIM_F_EQ, "work"), cmp_s("value", NULL, SCIM_F_CO, "ex"))),
           "r.pk IN (SELECT em.resource_pk FROM emails em WHERE em.tenant_id = $2 AND ((lower((em.type) COLLATE \"C\") = $3 AND lower(em.value) ILIKE $4 ESCAPE '\\')))", &f);
    param_i(&f, 0, 7LL);
    param_s(&f, 1, "work");
    param_s(&f, 2, "%ex%");
    assert_int_equal(f.n_params, 3);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, vpath("phoneNumbers", cmp_s("type", NULL, SCIM_F_EQ, "work")),
           "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof((r.doc) -> 'phoneNumbers') WHEN 'array' THEN (r.doc) -> 'phoneNumbers' ELSE '[]'::jsonb END) WITH ORDINALITY AS e(value, pos) WHERE (lower((((e.value) -> 'type' #>> '{}')) COLLATE \"C\") = $2))", &f);
    param_s(&f, 0, "work");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_GROUP, cmp_s("members", NULL, SCIM_F_EQ, "id1"),
           "r.pk IN (SELECT mb.group_pk FROM members mb JOIN resources x ON x.pk = mb.member_pk WHERE x.tenant_id = $2 AND x.kind IN (0, 1) AND (x.id = $3))", &f);
    param_i(&f, 0, 7LL);
    param_s(&f, 1, "id1");
    assert_int_equal(f.n_params, 2);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, pr("emails", NULL),
           "coalesce(jsonb_array_length(CASE jsonb_typeof((r.doc) -> 'emails') WHEN 'array' THEN (r.doc) -> 'emails' END), 0) > 0", &f);
    assert_int_equal(f.n_params, 0);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, bin(SCIM_F_OR, cmp_s("userName", NULL, SCIM_F_EQ, "a"), bin(SCIM_F_AND, cmp_b("active", SCIM_F_EQ, false), cmp_s("title", NULL, SCIM_F_EW, "boss"))),
           "(lower(r.user_name) = $2 OR (r.active = $3 AND ((r.doc) -> 'title' #>> '{}') ILIKE $4 ESCAPE '\\'))", &f);
    param_s(&f, 0, "a");
    param_i(&f, 1, 0LL);
    param_s(&f, 2, "%boss");
    assert_int_equal(f.n_params, 3);
    scim_sql_frag_release(&f);
}

static void test_injection(void **state)
{
    (void)state;
    const char *evil = "x'); DROP TABLE resources; --";
    struct scim_sql_frag f;
    struct scim_filter *t = bin(SCIM_F_OR, cmp_s("userName", NULL, SCIM_F_EQ, evil),
                                bin(SCIM_F_OR, cmp_s("title", NULL, SCIM_F_SW, evil),
                                    vpath("phoneNumbers", cmp_s("value", NULL, SCIM_F_EW, evil))));
    /* every value is a parameter: the text is the same whatever the values */
    expect(SCIM_RT_USER, t,
           "(lower(r.user_name) = $2 OR (((r.doc) -> 'title' #>> '{}') ILIKE $3 ESCAPE '\\' OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof((r.doc) -> 'phoneNumbers') WHEN 'array' THEN (r.doc) -> 'phoneNumbers' ELSE '[]'::jsonb END) WITH ORDINALITY AS e(value, pos) WHERE (((e.value) -> 'value' #>> '{}') ILIKE $4 ESCAPE '\\'))))", &f);
    param_s(&f, 0, "x'); drop table resources; --");
    param_s(&f, 1, "x'); DROP TABLE resources; --%");
    param_s(&f, 2, "%x'); DROP TABLE resources; --");
    assert_int_equal(f.n_params, 3);
    scim_sql_frag_release(&f);
}

static void test_order(void **state)
{
    (void)state;
    struct scim_buf b;
    struct scim_err err;
    struct scim_attrpath p = {.attr = "userName"};
    scim_buf_init(&b, 0);
    const struct scim_resource_type *rt = scim_registry_rt(reg, SCIM_RT_USER);
    assert_int_equal(scim_sqlgen_order(&scim_sql_dialect_pg, rt, &p, true, &b, &err), 0);
    assert_string_equal(scim_buf_str(&b), "(lower(r.user_name)) IS NULL, lower(r.user_name) DESC, r.pk");
    scim_buf_reset(&b);
    p.attr = "name";
    p.sub = "familyName";
    assert_int_equal(scim_sqlgen_order(&scim_sql_dialect_pg, rt, &p, false, &b, &err), 0);
    assert_string_equal(scim_buf_str(&b), "(lower((((r.doc) -> 'name' -> 'familyName' #>> '{}')) COLLATE \"C\")) IS NULL, lower((((r.doc) -> 'name' -> 'familyName' #>> '{}')) COLLATE \"C\"), r.pk");
    scim_buf_reset(&b);
    struct scim_attrpath e = {.attr = "emails", .sub = "value"};
    assert_int_equal(scim_sqlgen_order(&scim_sql_dialect_pg, rt, &e, false, &b, &err), 0);
    assert_string_equal(scim_buf_str(&b), "(lower(((SELECT lower(em.value) FROM emails em WHERE em.resource_pk = r.pk ORDER BY coalesce(em.primary_, 0) DESC, em.rowid LIMIT 1)) COLLATE \"C\")) IS NULL, lower(((SELECT lower(em.value) FROM emails em WHERE em.resource_pk = r.pk ORDER BY coalesce(em.primary_, 0) DESC, em.rowid LIMIT 1)) COLLATE \"C\"), r.pk");
    scim_buf_reset(&b);
    struct scim_attrpath m = {.attr = "meta", .sub = "created"};
    assert_int_equal(scim_sqlgen_order(&scim_sql_dialect_pg, rt, &m, true, &b, &err), 0);
    assert_string_equal(scim_buf_str(&b), "(r.created) IS NULL, r.created DESC, r.pk");
    scim_buf_release(&b);
}

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns),   cmocka_unit_test(test_json),  cmocka_unit_test(test_multi),
        cmocka_unit_test(test_injection), cmocka_unit_test(test_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
