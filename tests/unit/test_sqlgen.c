/* Filter AST → SQL text and parameters (SQLite dialect), on hand-built ASTs so the compiler is
 * tested independently of the parser. */
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
    int rc = scim_sqlgen_where(&scim_sql_dialect_sqlite, scim_registry_rt(reg, kind), f, 7, 2, out, &err);
    if (rc != 0)
        fail_msg("compile failed: %d %s", err.status, err.detail);
    if (strcmp(scim_buf_str(&out->sql), sql) != 0)
        fail_msg("got  %s\nwant %s", scim_buf_str(&out->sql), sql);
    tree_free(f);
}

static void expect_err(enum scim_rtype kind, struct scim_filter *f, const char *detail)
{
    struct scim_err err;
    struct scim_sql_frag out;
    scim_err_clear(&err);
    scim_sql_frag_init(&out);
    assert_int_equal(scim_sqlgen_where(&scim_sql_dialect_sqlite, scim_registry_rt(reg, kind), f, 7, 2, &out, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, SCIM_TYPE_INVALID_FILTER);
    if (detail && strcmp(err.detail, detail) != 0)
        fail_msg("detail %s, want %s", err.detail, detail);
    scim_sql_frag_release(&out);
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
    expect(SCIM_RT_USER, cmp_s("userName", NULL, SCIM_F_EQ, "bjensen"), "r.user_name = ?", &f);
    param_s(&f, 0, "bjensen");
    assert_int_equal(f.n_params, 1);
    scim_sql_frag_release(&f);

    /* sw on an indexed NOCASE column: a prefix range over the folded prefix */
    expect(SCIM_RT_USER, cmp_s("userName", NULL, SCIM_F_SW, "Bj@"), "(r.user_name >= ? AND r.user_name < ?)", &f);
    param_s(&f, 0, "bj@");
    param_s(&f, 1, "bj["); /* '@' + 1 would be 'A', which NOCASE folds past '[' */
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER, cmp_s("externalId", NULL, SCIM_F_SW, "Ab"), "(r.external_id >= ? AND r.external_id < ?)", &f);
    param_s(&f, 0, "Ab");
    param_s(&f, 1, "Ac");
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER, cmp_s("id", NULL, SCIM_F_EQ, "abc"), "r.id = ?", &f);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_GROUP, cmp_s("displayName", NULL, SCIM_F_EQ, "Staff"), "r.display_name = ?", &f);
    scim_sql_frag_release(&f);
    expect(SCIM_RT_USER, cmp_b("active", SCIM_F_EQ, true), "r.active = ?", &f);
    param_i(&f, 0, 1);
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER, cmp_s("meta", "lastModified", SCIM_F_GT, "2020-01-01T00:00:00Z"),
           "r.last_modified > ?", &f);
    param_i(&f, 0, 1577836800000000LL);
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER, cmp_s("meta", "resourceType", SCIM_F_EQ, "User"), "'user' = lower(?)", &f);
    param_s(&f, 0, "User");
    scim_sql_frag_release(&f);
}

static void test_json(void **state)
{
    (void)state;
    struct scim_sql_frag f;
    expect(SCIM_RT_USER, cmp_s("name", "givenName", SCIM_F_EQ, "Barbara"),
           "lower(json_extract(r.doc, '$.\"name\".\"givenName\"')) = ?", &f);
    param_s(&f, 0, "barbara");
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER, cmp_s("title", NULL, SCIM_F_CO, "50%_off\\"),
           "json_extract(r.doc, '$.\"title\"') LIKE ? ESCAPE '\\'", &f);
    param_s(&f, 0, "%50\\%\\_off\\\\%");
    scim_sql_frag_release(&f);

    struct scim_filter *urn = cmp_s("employeeNumber", NULL, SCIM_F_EQ, "7");
    urn->path.urn = strdup(SCIM_SCHEMA_ENTERPRISE);
    expect(SCIM_RT_USER, urn,
           "lower(json_extract(r.doc, '$.\"" SCIM_SCHEMA_ENTERPRISE "\".\"employeeNumber\"')) = ?", &f);
    scim_sql_frag_release(&f);

    /* ne matches resources without the attribute; not() treats unknown as false */
    expect(SCIM_RT_USER, cmp_s("title", NULL, SCIM_F_NE, "x"),
           "coalesce(lower(json_extract(r.doc, '$.\"title\"')) <> ?, 1)", &f);
    scim_sql_frag_release(&f);
    struct scim_filter *n = node(SCIM_F_NOT);
    n->left = cmp_s("title", NULL, SCIM_F_EQ, "x");
    expect(SCIM_RT_USER, n, "NOT coalesce(lower(json_extract(r.doc, '$.\"title\"')) = ?, 0)", &f);
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER, pr("title", NULL),
           "(json_extract(r.doc, '$.\"title\"') IS NOT NULL AND json_extract(r.doc, '$.\"title\"') NOT IN ('', '[]', '{}'))",
           &f);
    assert_int_equal(f.n_params, 0);
    scim_sql_frag_release(&f);

    struct scim_filter *nul = node(SCIM_F_EQ);
    set_path(nul, NULL, "title", NULL);
    nul->val.type = SCIM_V_NULL;
    expect(SCIM_RT_USER, nul, "(json_extract(r.doc, '$.\"title\"') IS NULL)", &f);
    scim_sql_frag_release(&f);
}

static void test_multi(void **state)
{
    (void)state;
    struct scim_sql_frag f;
    expect(SCIM_RT_USER, cmp_s("emails", "value", SCIM_F_EQ, "a@b"),
           "r.pk IN (SELECT em.resource_pk FROM emails em WHERE em.tenant_id = ? AND (em.value = ?))", &f);
    param_i(&f, 0, 7);
    param_s(&f, 1, "a@b");
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER,
           vpath("emails", bin(SCIM_F_AND, cmp_s("type", NULL, SCIM_F_EQ, "work"),
                               cmp_s("value", NULL, SCIM_F_CO, "ex"))),
           "r.pk IN (SELECT em.resource_pk FROM emails em WHERE em.tenant_id = ? AND "
           "((lower(em.type) = ? AND em.value LIKE ? ESCAPE '\\')))",
           &f);
    param_s(&f, 2, "%ex%");
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER, vpath("phoneNumbers", cmp_s("type", NULL, SCIM_F_EQ, "work")),
           "EXISTS (SELECT 1 FROM json_each(r.doc, '$.\"phoneNumbers\"') e WHERE "
           "(lower(json_extract(e.value, '$.\"type\"')) = ?))",
           &f);
    scim_sql_frag_release(&f);

    /* emails[display ...] is not in the emails table: JSON iteration */
    expect(SCIM_RT_USER, vpath("emails", cmp_s("display", NULL, SCIM_F_EQ, "x")),
           "EXISTS (SELECT 1 FROM json_each(r.doc, '$.\"emails\"') e WHERE "
           "(lower(json_extract(e.value, '$.\"display\"')) = ?))",
           &f);
    scim_sql_frag_release(&f);

    expect(SCIM_RT_GROUP, cmp_s("members", NULL, SCIM_F_EQ, "id1"),
           "r.pk IN (SELECT mb.group_pk FROM members mb JOIN resources x ON x.pk = mb.member_pk "
           "WHERE x.tenant_id = ? AND x.kind IN (0, 1) AND (x.id = ?))",
           &f);
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER, cmp_s("groups", "value", SCIM_F_EQ, "g1"),
           "r.pk IN (SELECT mb.member_pk FROM members mb JOIN resources x ON x.pk = mb.group_pk "
           "WHERE x.tenant_id = ? AND x.kind = 1 AND (x.id = ?))",
           &f);
    scim_sql_frag_release(&f);

    expect(SCIM_RT_USER, pr("emails", NULL), "coalesce(json_array_length(r.doc, '$.\"emails\"'), 0) > 0", &f);
    scim_sql_frag_release(&f);
}

/* No client value ever reaches the SQL text. */
static void test_injection(void **state)
{
    (void)state;
    const char *evil = "x'); DROP TABLE resources; --";
    struct scim_sql_frag f;
    struct scim_filter *t = bin(SCIM_F_OR, cmp_s("userName", NULL, SCIM_F_EQ, evil),
                                bin(SCIM_F_OR, cmp_s("title", NULL, SCIM_F_SW, evil),
                                    vpath("phoneNumbers", cmp_s("value", NULL, SCIM_F_EW, evil))));
    struct scim_err err;
    scim_sql_frag_init(&f);
    assert_int_equal(scim_sqlgen_where(&scim_sql_dialect_sqlite, scim_registry_rt(reg, SCIM_RT_USER), t, 7, 2, &f, &err), 0);
    assert_null(strstr(scim_buf_str(&f.sql), "DROP"));
    assert_int_equal(f.n_params, 3);
    param_s(&f, 0, evil);
    tree_free(t);
    scim_sql_frag_release(&f);
}

static void test_errors(void **state)
{
    (void)state;
    expect_err(SCIM_RT_USER, cmp_s("nosuch", NULL, SCIM_F_EQ, "x"), "unknown attribute \"nosuch\" in filter");
    expect_err(SCIM_RT_USER, cmp_b("active", SCIM_F_GT, true), NULL);
    expect_err(SCIM_RT_USER, cmp_s("active", NULL, SCIM_F_EQ, "maybe"), NULL);
    expect_err(SCIM_RT_USER, cmp_s("meta", "created", SCIM_F_CO, "2020"), NULL);
    expect_err(SCIM_RT_USER, cmp_s("meta", "created", SCIM_F_EQ, "not a date"), NULL);
    expect_err(SCIM_RT_USER, vpath("userName", cmp_s("value", NULL, SCIM_F_EQ, "x")), NULL);
    expect_err(SCIM_RT_USER, vpath("emails", cmp_s("nosub", NULL, SCIM_F_EQ, "x")), NULL);
    expect_err(SCIM_RT_GROUP, cmp_s("userName", NULL, SCIM_F_EQ, "x"), NULL);
    /* too many values */
    struct scim_filter *t = cmp_s("title", NULL, SCIM_F_EQ, "0");
    for (int i = 0; i < SCIM_SQL_MAX_PARAMS + 1; i++)
        t = bin(SCIM_F_OR, t, cmp_s("title", NULL, SCIM_F_EQ, "1"));
    expect_err(SCIM_RT_USER, t, NULL);
}

static void test_order(void **state)
{
    (void)state;
    struct scim_buf b;
    struct scim_err err;
    struct scim_attrpath p = {.attr = "userName"};
    scim_buf_init(&b, 0);
    const struct scim_resource_type *rt = scim_registry_rt(reg, SCIM_RT_USER);
    assert_int_equal(scim_sqlgen_order(&scim_sql_dialect_sqlite, rt, &p, true, &b, &err), 0);
    assert_string_equal(scim_buf_str(&b), "(r.user_name) IS NULL, r.user_name DESC, r.pk");
    scim_buf_reset(&b);
    assert_int_equal(scim_sqlgen_order(&scim_sql_dialect_sqlite, rt, NULL, false, &b, &err), 0);
    assert_string_equal(scim_buf_str(&b), "r.pk");
    scim_buf_reset(&b);
    p.attr = "name";
    p.sub = "familyName";
    assert_int_equal(scim_sqlgen_order(&scim_sql_dialect_sqlite, rt, &p, false, &b, &err), 0);
    assert_string_equal(scim_buf_str(&b), "(lower(json_extract(r.doc, '$.\"name\".\"familyName\"'))) IS NULL, "
                                          "lower(json_extract(r.doc, '$.\"name\".\"familyName\"')), r.pk");
    scim_buf_release(&b);
}

static void test_patterns(void **state)
{
    (void)state;
    char *p = scim_sql_dialect_sqlite.match_pattern("a*b?[c", SCIM_F_SW, false);
    assert_string_equal(p, "a[*]b[?][[]c*");
    free(p);
    p = scim_sql_dialect_sqlite.match_pattern("a%b", SCIM_F_EW, true);
    assert_string_equal(p, "%a\\%b");
    free(p);
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
        cmocka_unit_test(test_columns), cmocka_unit_test(test_json),   cmocka_unit_test(test_multi),
        cmocka_unit_test(test_injection), cmocka_unit_test(test_errors), cmocka_unit_test(test_order),
        cmocka_unit_test(test_patterns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
